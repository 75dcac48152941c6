/*
 * fuzz_sig.c - libFuzzer harness for the signature language.
 *
 * Every input is given, as a NUL-terminated string, to the signature
 * parser and to the type-expression parser. Each must accept it or refuse
 * it with CAPFFI_ESIG (CAPFFI_ENOMEM is tolerated), never crash, never
 * leak (the sanitizers see to that), and an accepted signature must hold
 * no more than CAPFFI_MAX_ARGS parameters. Anything else aborts, which
 * libFuzzer reports as a crash with the input saved.
 *
 * Build: CC=clang meson setup BUILDDIR -Dfuzz=true; run: fuzz/run.sh.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "types/sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One context for the whole run, with named types for the inputs to use
 * ("Point", "Rect", "*Rect", "out own *Handle by f", ...). It grants FFI:
 * only such a context may define context-wide type names. */
static capffi_ctx *
context(void)
{
    static capffi_ctx *ctx;
    if (!ctx) {
        capffi_options o;
        memset(&o, 0, sizeof o);
        o.flags = CAPFFI_OPT_ALLOW_ALL;
        if (capffi_ctx_new(&ctx, &o) != CAPFFI_OK)
            abort();
        if (capffi_type_define(ctx, "Point", "{ x: f64, y: f64 }") ||
            capffi_type_define(ctx, "Rect",
                               "{ min: Point, max: Point, tag: u8 }") ||
            capffi_type_define(ctx, "Handle", "opaque"))
            abort();
    }
    return ctx;
}

/* The only outcomes allowed; a refusal's message must be printable, since
 * it may reach a terminal or a log. */
static void
check_outcome(capffi_ctx *ctx, int rc)
{
    if (rc != CAPFFI_OK && rc != CAPFFI_ESIG && rc != CAPFFI_ENOMEM)
        abort();
    if (rc == CAPFFI_ESIG) {
        for (const char *p = capffi_ctx_errmsg(ctx); *p; p++)
            if (*p < 0x20 || *p >= 0x7f)
                abort();
    }
}

static void
check_sig(const struct capffi__sig *sig)
{
    if (sig->nargs > CAPFFI_MAX_ARGS || sig->nfixed > sig->nargs || !sig->ret)
        abort();
    if (sig->variadic != (sig->nfixed < sig->nargs))
        abort();
    if (sig->ret->kind == CAPFFI__BUFFER)
        abort();
    for (size_t i = 0; i < sig->nargs; i++)
        if (!sig->args[i] || sig->args[i]->kind == CAPFFI__VOID ||
            sig->atypes[i] != sig->args[i]->ffi)
            abort();
    if (sig->atypes[sig->nargs] != NULL)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    capffi_ctx *ctx = context();
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);
    text[size] = '\0';

    struct capffi__sig sig;
    int rc = capffi__sig_parse(ctx, &sig, text);
    check_outcome(ctx, rc);
    if (rc == CAPFFI_OK)
        check_sig(&sig);
    capffi__sig_free(&sig);

    struct capffi__arena arena = { NULL };
    const struct capffi__type *t = NULL;
    rc = capffi__type_parse(ctx, &arena, "type", text, &t);
    check_outcome(ctx, rc);
    /* Only an opaque class has no size: it is reached through *NAME. */
    if (rc == CAPFFI_OK && (!t || t->kind == CAPFFI__VOID || t->align == 0 ||
                            (t->size == 0) != (t->kind == CAPFFI__OPAQUE)))
        abort();
    capffi__arena_free(&arena);

    free(text);
    return 0;
}
