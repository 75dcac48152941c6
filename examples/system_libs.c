/*
 * system_libs.c - calling real system libraries through a token.
 *
 * A token scoped to libm and libz loads them (bare sonames, resolved the
 * way the dynamic loader would), binds cos, compressBound, compress and
 * uncompress, and round-trips a text through zlib using capffi buffers.
 * Anything outside the token's scope is refused.
 */
#include <math.h>
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

    /* Resolve the two libraries once to scope a token to exactly them. */
    capffi_token all, tok;
    CHECK(capffi_token_new(&all, ctx, "setup", NULL));
    capffi_lib *m, *z;
    CHECK(capffi_lib_open(&m, ctx, &all, "libm.so.6", 0));
    CHECK(capffi_lib_open(&z, ctx, &all, "libz.so.1", 0));
    const char *paths[] = { capffi_lib_path(m), capffi_lib_path(z) };
    capffi_scope scope;
    memset(&scope, 0, sizeof scope);
    scope.rights = CAPFFI_RIGHT_DLOPEN;
    scope.paths = paths;
    scope.n_paths = 2;
    CHECK(capffi_token_new(&tok, ctx, "mathzip", &scope));
    capffi_lib_close(m);
    capffi_lib_close(z);
    CHECK(capffi_token_revoke(ctx, &all));

    CHECK(capffi_lib_open(&m, ctx, &tok, "libm.so.6", 0));
    CHECK(capffi_lib_open(&z, ctx, &tok, "libz.so.1", 0));
    printf("libm: %s\nlibz: %s\n", capffi_lib_path(m), capffi_lib_path(z));

    /* libm: cos */
    capffi_fn *cosf;
    CHECK(capffi_lib_bind(&cosf, m, "cos", "(f64) -> f64", 0));
    capffi_value x = { .f64 = 1.0 }, r;
    CHECK(capffi_fn_call(cosf, &x, &r));
    printf("cos(1.0) = %.12f (C says %.12f)\n", r.f64, cos(1.0));

    /* libz: compressBound, compress, uncompress */
    capffi_fn *bound, *compress, *uncompress;
    CHECK(capffi_lib_bind(&bound, z, "compressBound", "(u64) -> u64", 0));
    CHECK(capffi_lib_bind(&compress, z, "compress",
                          "(buffer, *u64, buffer, u64) -> i32", 0));
    CHECK(capffi_lib_bind(&uncompress, z, "uncompress",
                          "(buffer, *u64, buffer, u64) -> i32", 0));
    const char *text = "capffi capffi capffi: every dangerous operation is "
                       "gated by a capability token, token, token.";
    size_t len = strlen(text) + 1;
    capffi_value a[4];
    a[0].u64 = len;
    CHECK(capffi_fn_call(bound, a, &r));
    size_t cap = (size_t)r.u64;

    capffi_buf *src, *packed, *unpacked;
    CHECK(capffi_buf_new(&src, ctx, len));
    CHECK(capffi_buf_new(&packed, ctx, cap));
    CHECK(capffi_buf_new(&unpacked, ctx, len));
    void *p;
    CHECK(capffi_buf_data(&p, NULL, src));
    memcpy(p, text, len);

    /* zlib's uLongf *destLen, in and out: the token has no POINTER, READ
     * or WRITE right, so it is in safe mode and the length is an instance
     * of u64 (SafeFFI), never a raw address. */
    capffi_obj *dlen;
    CHECK(capffi_obj_new(&dlen, ctx, "u64"));
    CHECK(capffi_obj_set(dlen, "", (capffi_value){ .u64 = cap }));
    a[0].buf = packed;
    a[1].obj = dlen;
    a[2].buf = src;
    a[3].u64 = len;
    CHECK(capffi_fn_call(compress, a, &r));
    capffi_value packed_len;
    CHECK(capffi_obj_get(&packed_len, dlen, ""));
    printf("compress: %s, %zu bytes -> %llu bytes\n",
           r.i64 == 0 ? "Z_OK" : "error", len,
           (unsigned long long)packed_len.u64);

    CHECK(capffi_obj_set(dlen, "", (capffi_value){ .u64 = len }));
    a[0].buf = unpacked;
    a[1].obj = dlen;
    a[2].buf = packed;
    a[3].u64 = packed_len.u64;
    CHECK(capffi_fn_call(uncompress, a, &r));
    CHECK(capffi_buf_data(&p, NULL, unpacked));
    capffi_value out_len;
    CHECK(capffi_obj_get(&out_len, dlen, ""));
    printf("uncompress: %s, round trip %s\n", r.i64 == 0 ? "Z_OK" : "error",
           out_len.u64 == len && memcmp(p, text, len) == 0 ? "identical"
                                                           : "DIFFERENT");
    capffi_obj_free(dlen);

    /* Outside the token's scope. */
    capffi_lib *c;
    int rc = capffi_lib_open(&c, ctx, &tok, "libc.so.6", 0);
    printf("libc.so.6 through the same token: %s\n", capffi_err_name(rc));

    capffi_ctx_free(ctx);
    return rc == CAPFFI_EPERM ? 0 : 1;
}
