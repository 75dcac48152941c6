/*
 * fuzz_layout.c - libFuzzer harness for the layout language (classes)
 * and for field paths into their instances.
 *
 * An input is a layout, then field paths, each after a '#':
 * "{ a: i32, b: [4]u8 }#a#b[3]". The layout is defined as class L with
 * capffi_type_define and given to capffi_obj_new as a type expression;
 * an instance of L (and of "[2]L") is then read, written, measured and
 * compiled into an accessor at every path. Each call must succeed or
 * refuse with one of the codes its header lists, never crash, never read
 * or write outside the instance's bytes (AddressSanitizer sees to that:
 * an instance's bytes are allocated to its exact size), never leak. A
 * field's offset and size must lie within its class. Anything else
 * aborts, which libFuzzer reports as a crash with the input saved.
 *
 * A fresh context for every input, so an input's outcome never depends
 * on the inputs before it (a context costs some 50 us).
 *
 * Build: CC=clang meson setup BUILDDIR -Dfuzz=true; run: fuzz/run.sh.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "capffi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_PATHS = 16 };

/* A context that grants FFI (only such a context defines context-wide
 * names), with classes for layouts to use by name: a struct, one that
 * nests it, and an opaque handle. */
static capffi_ctx *
context(void)
{
    capffi_ctx *ctx;
    capffi_options o;
    memset(&o, 0, sizeof o);
    o.flags = CAPFFI_OPT_ALLOW_ALL;
    if (capffi_ctx_new(&ctx, &o) != CAPFFI_OK)
        abort();
    if (capffi_type_define(ctx, "Point", "{ x: f64, y: f64 }") ||
        capffi_type_define(ctx, "Rect",
                           "{ readonly min: Point, max: Point, tag: [3]u8, "
                           "next: *Point }") ||
        capffi_type_define(ctx, "Handle", "opaque"))
        abort();
    return ctx;
}

static bool
is_any(int rc, const int *ok, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rc == ok[i])
            return true;
    return false;
}

/* rc must be one of the codes listed; a parse error's message is
 * printable (it names a byte in hex), since it may reach a terminal or a
 * log. Other messages quote the caller's text as given. */
#define EXPECT(ctx, rc, ...)                                                   \
    do {                                                                       \
        static const int ok_[] = { CAPFFI_OK, CAPFFI_ENOMEM, __VA_ARGS__ };    \
        if (!is_any((rc), ok_, sizeof ok_ / sizeof ok_[0]))                    \
            abort();                                                           \
        if ((rc) == CAPFFI_ESIG)                                               \
            printable(capffi_ctx_errmsg(ctx));                                 \
    } while (0)

static void
printable(const char *msg)
{
    for (const char *p = msg; *p; p++)
        if (*p < 0x20 || *p >= 0x7f)
            abort();
}

/* Every access at path on o. */
static void
probe(capffi_ctx *ctx, capffi_obj *o, const char *path)
{
    capffi_value v;
    int rc = capffi_obj_get(&v, o, path);
    EXPECT(ctx, rc, CAPFFI_ENOTFOUND, CAPFFI_EBOUNDS, CAPFFI_ETYPE,
           CAPFFI_EPERM);
    /* Every byte of the instance is zero (capffi_obj_new zeroes it, and
     * only zeros are written below): so is every value read, and a
     * `*NAME` field gives no instance. */
    if (rc == CAPFFI_OK && v.u64 != 0)
        abort();
    size_t n;
    rc = capffi_obj_len(&n, o, path);
    EXPECT(ctx, rc, CAPFFI_ENOTFOUND, CAPFFI_EBOUNDS, CAPFFI_ETYPE);
    if (rc == CAPFFI_OK && n == 0)
        abort();
    capffi_value zero;
    memset(&zero, 0, sizeof zero);
    rc = capffi_obj_set(o, path, zero);
    EXPECT(ctx, rc, CAPFFI_ENOTFOUND, CAPFFI_EBOUNDS, CAPFFI_ETYPE,
           CAPFFI_EPERM);
    capffi_accessor acc;
    rc = capffi_obj_accessor(&acc, o, path);
    EXPECT(ctx, rc, CAPFFI_ENOTFOUND, CAPFFI_EBOUNDS, CAPFFI_ETYPE,
           CAPFFI_EPERM);
    if (rc == CAPFFI_OK) {
        capffi_value a;
        if (capffi_obj_read(&a, o, &acc) != CAPFFI_OK)
            abort();
        rc = capffi_obj_write(o, &acc, zero);
        EXPECT(ctx, rc, CAPFFI_EPERM);
        /* Everything the instance holds is zero: a read gives zero. */
        if (a.u64 != 0)
            abort();
    }
}

/* An instance of cls and every path on it. */
static void
instance(capffi_ctx *ctx, const char *cls, char **paths, size_t npaths)
{
    capffi_obj *o = NULL;
    int rc = capffi_obj_new(&o, ctx, cls);
    EXPECT(ctx, rc, CAPFFI_ETYPE, CAPFFI_ESIG, CAPFFI_ENOTFOUND);
    if (rc != CAPFFI_OK)
        return;
    if (!o || capffi_obj_status(o) != CAPFFI_OK)
        abort();
    for (size_t i = 0; i < npaths; i++)
        probe(ctx, o, paths[i]);
    capffi_obj_free(o);
    if (capffi_obj_status(o) != CAPFFI_EINVAL)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);
    text[size] = '\0';
    char *paths[MAX_PATHS];
    size_t npaths = 0;
    for (char *p = strchr(text, '#'); p && npaths < MAX_PATHS;
         p = strchr(p, '#')) {
        *p++ = '\0';
        paths[npaths++] = p;
    }
    for (char *p = npaths ? paths[npaths - 1] : NULL; p && *p; p++)
        if (*p == '#')
            *p = '\0';

    capffi_ctx *ctx = context();
    int rc = capffi_type_define(ctx, "L", text);
    EXPECT(ctx, rc, CAPFFI_ESIG);
    if (rc == CAPFFI_OK) {
        size_t lsize = 0, align = 0;
        if (capffi_type_size(&lsize, &align, ctx, "L") != CAPFFI_OK)
            abort();
        /* An opaque class has no size and no field. */
        bool opaque = lsize == 0;
        if (!opaque &&
            (align == 0 || (align & (align - 1)) || lsize % align != 0))
            abort();
        for (size_t i = 0; !opaque && i < npaths; i++) {
            capffi_field f;
            int frc = capffi_type_field(&f, ctx, "L", paths[i]);
            EXPECT(ctx, frc, CAPFFI_ENOTFOUND, CAPFFI_EBOUNDS);
            if (frc == CAPFFI_OK &&
                (f.offset > lsize || f.size > lsize - f.offset || !f.type))
                abort();
        }
        instance(ctx, "L", paths, npaths);
        instance(ctx, "[2]L", paths, npaths);
    }
    /* The same text as a type expression ("[4]i32", "{ a: u8 }", ...). */
    instance(ctx, text, paths, npaths);
    capffi_ctx_free(ctx);
    free(text);
    return 0;
}
