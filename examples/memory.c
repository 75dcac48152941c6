/*
 * memory.c - passing memory to native code, with libz and libc.
 *
 * libz compresses from one capffi buffer into another, writing the
 * compressed length into an out-parameter that lives in a third buffer;
 * the host reads the result through views. Then the address of the
 * compressed buffer is taken with capffi_ptr_of, the buffer is freed, and
 * native code still decompresses from that address: the pin keeps the
 * bytes until capffi_buf_unpin. libc's div returns a struct, received
 * into a buffer and read by field name. Along the way: an empty buffer
 * passes NULL, a wrapped buffer's release callback, an unbounded view of
 * a string native code returned, a refused out-of-bounds read, a second
 * free, and a view that dies with its token. See docs/memory.md.
 */
#include <stdio.h>
#include <string.h>

#include <capffi.h>

#define CHECK(call)                                                            \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_) {                                                             \
            fprintf(stderr, "%s: %s: %s\n", #call, capffi_err_name(rc_),       \
                    capffi_ctx_errmsg(ctx));                                   \
            return 1;                                                          \
        }                                                                      \
    } while (0)

/* A call that must fail with `code`; its message is printed. */
#define EXPECT(code, call)                                                     \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != (code)) {                                                   \
            fprintf(stderr, "%s: expected %s, got %s\n", #call,                \
                    capffi_err_name(code), capffi_err_name(rc_));              \
            return 1;                                                          \
        }                                                                      \
        printf("  refused as expected: %s (%s)\n", capffi_err_name(rc_),       \
               capffi_ctx_errmsg(ctx));                                        \
    } while (0)

#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: not true: %s\n", __FILE__, __LINE__,       \
                    #cond);                                                    \
            return 1;                                                          \
        }                                                                      \
    } while (0)

#define Z_OK 0
#define Z_BEST_COMPRESSION 9

/* The host's own memory, lent to capffi with capffi_buf_wrap. */
static char text[] = "Every dangerous operation is gated by a capability "
                     "token. Every dangerous operation is gated by a "
                     "capability token. Every dangerous operation is gated "
                     "by a capability token.";

static int released;

static void
release_text(void *payload, void *mem)
{
    (void)payload;
    released++;
    printf("  release callback: capffi hands back %p (the host's array)\n",
           mem);
}

int
main(void)
{
    capffi_options opts;
    memset(&opts, 0, sizeof opts);
    opts.flags = CAPFFI_OPT_ALLOW_ALL;
    capffi_ctx *ctx = NULL;
    if (capffi_ctx_new(&ctx, &opts)) {
        fprintf(stderr, "capffi_ctx_new: %s\n", capffi_ctx_errmsg(NULL));
        return 1;
    }
    CHECK(capffi_audit_record(ctx, 256));

    /* A token for exactly libz and libc, with the memory rights this
     * program uses: READ for views of native memory, POINTER for
     * capffi_ptr_of and the unbounded view. (WRITE would be needed only
     * to write native memory through a view; views of buffers need no
     * token at all.) */
    capffi_token all, tok;
    CHECK(capffi_token_new(&all, ctx, "setup", NULL));
    capffi_lib *z, *c;
    CHECK(capffi_lib_open(&z, ctx, &all, "libz.so.1", 0));
    CHECK(capffi_lib_open(&c, ctx, &all, "libc.so.6", 0));
    const char *paths[] = { capffi_lib_path(z), capffi_lib_path(c) };
    capffi_scope scope;
    memset(&scope, 0, sizeof scope);
    scope.rights =
        CAPFFI_RIGHT_DLOPEN | CAPFFI_RIGHT_READ | CAPFFI_RIGHT_POINTER;
    scope.paths = paths;
    scope.n_paths = 2;
    CHECK(capffi_token_new(&tok, ctx, "memory", &scope));
    capffi_lib_close(z);
    capffi_lib_close(c);
    CHECK(capffi_token_revoke(ctx, &all));

    CHECK(capffi_lib_open(&z, ctx, &tok, "libz.so.1", 0));
    CHECK(capffi_lib_open(&c, ctx, &tok, "libc.so.6", 0));
    printf("libz: %s\nlibc: %s\n", capffi_lib_path(z), capffi_lib_path(c));

    capffi_fn *bound, *compress2, *uncompress, *adler32, *version, *divfn;
    CHECK(capffi_lib_bind(&bound, z, "compressBound", "(u64) -> u64", 0));
    /* dest, &destLen, source, sourceLen, level: destLen is an in/out
     * uLongf (8 bytes), passed as a buffer too. */
    CHECK(capffi_lib_bind(&compress2, z, "compress2",
                          "(buffer, buffer, buffer, u64, i32) -> i32", 0));
    /* The source is a raw address here: the pinned one, below. */
    CHECK(capffi_lib_bind(&uncompress, z, "uncompress",
                          "(buffer, buffer, pointer, u64) -> i32", 0));
    CHECK(capffi_lib_bind(&adler32, z, "adler32", "(u64, buffer, u32) -> u64",
                          0));
    CHECK(capffi_lib_bind(&version, z, "zlibVersion", "() -> pointer", 0));
    CHECK(capffi_lib_bind(&divfn, c, "div",
                          "(i32, i32) -> { quot: i32, rem: i32 }", 0));

    /* 1. An empty buffer is passed as NULL: adler32(0, NULL, 0) is zlib's
     *    initial checksum, 1 (with a non-NULL pointer it would return 0). */
    printf("\n1. an empty buffer passes NULL\n");
    capffi_buf *empty;
    CHECK(capffi_buf_new(&empty, ctx, 0));
    capffi_value a[5], r;
    a[0].u64 = 0;
    a[1].buf = empty;
    a[2].u64 = 0;
    CHECK(capffi_fn_call(adler32, a, &r));
    printf("  adler32(0, <empty buffer>, 0) = %llu\n",
           (unsigned long long)r.u64);
    REQUIRE(r.u64 == 1);
    capffi_buf_free(empty);

    /* 2. Compress from a wrapped buffer (the host's array) into a new
     *    one; the compressed length comes back in a third buffer. */
    printf("\n2. libz compresses one buffer into another\n");
    size_t len = sizeof text - 1;
    capffi_buf *src, *packed, *destlen;
    CHECK(capffi_buf_wrap(&src, ctx, text, len, release_text, NULL));
    a[0].u64 = len;
    CHECK(capffi_fn_call(bound, a, &r));
    size_t cap = (size_t)r.u64;
    CHECK(capffi_buf_new(&packed, ctx, cap));
    CHECK(capffi_buf_new(&destlen, ctx, 8));

    capffi_view *lv;
    CHECK(
        capffi_view_of_buf(&lv, destlen, CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE));
    CHECK(capffi_view_set(lv, 0, "u64", (capffi_value){ .u64 = cap }));
    a[0].buf = packed;
    a[1].buf = destlen;
    a[2].buf = src;
    a[3].u64 = len;
    a[4].i64 = Z_BEST_COMPRESSION;
    CHECK(capffi_fn_call(compress2, a, &r));
    REQUIRE(r.i64 == Z_OK);
    capffi_value n;
    CHECK(capffi_view_get(&n, lv, 0, "u64"));
    size_t packed_len = (size_t)n.u64;
    printf("  compress2: Z_OK, %zu bytes -> %zu bytes (room for %zu)\n", len,
           packed_len, cap);
    REQUIRE(packed_len > 2 && packed_len < len);

    /* 3. Read the result through a view of the buffer: no token. */
    printf("\n3. reading the result through a view of the buffer\n");
    capffi_view *pv;
    CHECK(capffi_view_of_buf(&pv, packed, CAPFFI_VIEW_READ));
    capffi_value b0, b1;
    CHECK(capffi_view_get(&b0, pv, 0, "u8"));
    CHECK(capffi_view_get(&b1, pv, 1, "u8"));
    printf("  zlib header: 0x%02llx 0x%02llx (deflate, 32 KiB window, "
           "check %s)\n",
           (unsigned long long)b0.u64, (unsigned long long)b1.u64,
           (b0.u64 * 256 + b1.u64) % 31 == 0 ? "ok" : "BAD");
    REQUIRE(b0.u64 == 0x78 && (b0.u64 * 256 + b1.u64) % 31 == 0);
    /* The trailer is the Adler-32 of the text, big-endian, unaligned. */
    unsigned char trailer[4];
    CHECK(capffi_view_copy(trailer, pv, packed_len - 4, 4));
    unsigned long sum = (unsigned long)trailer[0] << 24 |
                        (unsigned long)trailer[1] << 16 |
                        (unsigned long)trailer[2] << 8 | trailer[3];
    a[0].u64 = 1;
    a[1].buf = src;
    a[2].u64 = len;
    CHECK(capffi_fn_call(adler32, a, &r));
    printf(
        "  trailer at offset %zu: adler32 0x%08lx (libz computes 0x%08llx)\n",
        packed_len - 4, sum, (unsigned long long)r.u64);
    REQUIRE(sum == r.u64);
    printf("  pins on the compressed buffer while the view lives: %zu\n",
           capffi_buf_pins(packed));
    REQUIRE(capffi_buf_pins(packed) == 1);
    printf("  reading one byte past the buffer:\n");
    EXPECT(CAPFFI_EBOUNDS, capffi_view_get(&b0, pv, cap, "u8"));
    capffi_view_free(pv);

    /* 4. Pinning: native code keeps the address; the host frees the
     *    buffer; the bytes stay until the pin is dropped. */
    printf("\n4. capffi_ptr_of pins the buffer\n");
    void *addr;
    CHECK(capffi_ptr_of(&addr, ctx, &tok, packed));
    printf("  address %p, pins %zu\n", addr, capffi_buf_pins(packed));
    capffi_buf_free(packed);
    printf("  capffi_buf_free(packed): deferred, pins still %zu\n",
           capffi_buf_pins(packed));
    REQUIRE(capffi_buf_pins(packed) == 1);
    void *p;
    printf("  the host's handle is freed:\n");
    EXPECT(CAPFFI_EINVAL, capffi_buf_data(&p, NULL, packed));

    /* Native code reads the pinned bytes through the raw address. */
    capffi_buf *unpacked;
    CHECK(capffi_buf_new(&unpacked, ctx, len));
    CHECK(capffi_view_set(lv, 0, "u64", (capffi_value){ .u64 = len }));
    a[0].buf = unpacked;
    a[1].buf = destlen;
    a[2].p = addr;
    a[3].u64 = packed_len;
    CHECK(capffi_fn_call(uncompress, a, &r));
    REQUIRE(r.i64 == Z_OK);
    CHECK(capffi_view_get(&n, lv, 0, "u64"));
    CHECK(capffi_buf_data(&p, NULL, unpacked));
    int same = n.u64 == len && memcmp(p, text, len) == 0;
    printf("  uncompress from the address after the free: Z_OK, %llu bytes, "
           "%s\n",
           (unsigned long long)n.u64, same ? "identical" : "DIFFERENT");
    REQUIRE(same);

    /* The host may look at the address too, through a token (READ). */
    capffi_view *av;
    CHECK(capffi_view_new(&av, ctx, &tok, addr, packed_len, CAPFFI_VIEW_READ));
    CHECK(capffi_view_get(&b0, av, 0, "u8"));
    printf("  a view of the address (token, READ): byte 0 is still 0x%02llx\n",
           (unsigned long long)b0.u64);
    REQUIRE(b0.u64 == 0x78);
    capffi_view_free(av); /* before the bytes go: a view does not keep them */

    CHECK(capffi_buf_unpin(packed));
    printf("  capffi_buf_unpin: the bytes are released, pins %zu; the "
           "address must not be used any more\n",
           capffi_buf_pins(packed));
    REQUIRE(capffi_buf_pins(packed) == 0);
    printf("  a second capffi_buf_free of the same handle:\n");
    capffi_buf_free(packed);
    printf("  refused, with a message (%s) and an audit event (%zu buf.free "
           "refused)\n",
           capffi_ctx_errmsg(ctx),
           capffi_audit_count(ctx, CAPFFI_OP_BUF_FREE, CAPFFI_EINVAL, NULL));
    REQUIRE(capffi_audit_count(ctx, CAPFFI_OP_BUF_FREE, CAPFFI_EINVAL, NULL) ==
            1);

    /* 5. A struct result, received into a buffer, read by field name. */
    printf("\n5. a struct result read by field name\n");
    capffi_buf *res;
    CHECK(capffi_buf_new(&res, ctx, capffi_fn_result_size(divfn)));
    capffi_value ret;
    CHECK(capffi_buf_data(&ret.agg.ptr, &ret.agg.len, res));
    capffi_view *rv;
    CHECK(capffi_view_of_buf(&rv, res, CAPFFI_VIEW_READ));
    capffi_field fq, fr;
    CHECK(capffi_fn_result_field(&fq, divfn, "quot"));
    CHECK(capffi_fn_result_field(&fr, divfn, "rem"));
    printf("  div_t: quot at offset %zu (%s), rem at offset %zu (%s), %zu "
           "bytes\n",
           fq.offset, fq.type, fr.offset, fr.type,
           capffi_fn_result_size(divfn));
    static const int32_t cases[][2] = { { 47, 5 }, { -7, 2 } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        a[0].i64 = cases[i][0];
        a[1].i64 = cases[i][1];
        CHECK(capffi_fn_call(divfn, a, &ret));
        capffi_value q, m;
        CHECK(capffi_view_get(&q, rv, fq.offset, fq.type));
        CHECK(capffi_view_get(&m, rv, fr.offset, fr.type));
        printf("  div(%d, %d) = { quot: %lld, rem: %lld }\n", cases[i][0],
               cases[i][1], (long long)q.i64, (long long)m.i64);
        REQUIRE(q.i64 == cases[i][0] / cases[i][1] &&
                m.i64 == cases[i][0] % cases[i][1]);
    }
    capffi_view_free(rv);
    capffi_buf_free(res);

    /* 6. A string native code returned, of unknown length: an unbounded
     *    view (READ + POINTER, audited), through a narrower token. */
    printf("\n6. an unbounded view of a string libz returned\n");
    capffi_token reader;
    memset(&scope, 0, sizeof scope);
    scope.rights = CAPFFI_RIGHT_READ | CAPFFI_RIGHT_POINTER;
    CHECK(capffi_token_attenuate(&reader, ctx, &tok, &scope));
    CHECK(capffi_fn_call(version, NULL, &r));
    capffi_view *sv;
    CHECK(capffi_view_new(&sv, ctx, &reader, r.p, 0,
                          CAPFFI_VIEW_READ | CAPFFI_VIEW_UNBOUNDED));
    const char *s;
    size_t slen;
    CHECK(capffi_view_cstr(&s, &slen, sv, 0));
    printf("  zlibVersion() = \"%s\" (%zu bytes)\n", s, slen);
    REQUIRE(slen > 0);
    CHECK(capffi_token_revoke(ctx, &reader));
    printf("  after revoking the token the view was made through:\n");
    EXPECT(CAPFFI_EREVOKED, capffi_view_cstr(&s, &slen, sv, 0));
    capffi_view_free(sv);

    /* 7. What the audit trail holds. */
    printf("\n7. audit\n");
    size_t made = capffi_audit_count(ctx, CAPFFI_OP_VIEW_NEW, CAPFFI_OK, NULL);
    size_t refused = capffi_audit_count(ctx, CAPFFI_OP_VIEW_ACCESS,
                                        CAPFFI_AUDIT_ANY_STATUS, NULL);
    size_t pinned = capffi_audit_count(ctx, CAPFFI_OP_PTR_OF, CAPFFI_OK, NULL);
    printf("  view.new: %zu (the views made through a token; views of "
           "buffers need none)\n",
           made);
    printf("  view.access: %zu (the refused accesses; successful ones are "
           "not recorded)\n",
           refused);
    printf("  ptr.of: %zu\n", pinned);
    REQUIRE(made == 2 && refused == 2 && pinned == 1);

    capffi_view_free(lv);
    capffi_buf_free(destlen);
    capffi_buf_free(unpacked);
    printf("\nfreeing the wrapped buffer:\n");
    capffi_buf_free(src);
    REQUIRE(released == 1);
    capffi_ctx_free(ctx);
    printf("done\n");
    return 0;
}
