/*
 * main.c - a program built against capffi from a meson subproject.
 *
 * It opens libm through a token, binds cos, calls it and checks the result
 * against the C library's own cos. Exit status 0 on success.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <capffi.h>

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

    capffi_token tok;
    capffi_lib *m = NULL;
    capffi_fn *cosfn = NULL;
    capffi_value x = { .f64 = 1.0 }, r = { .f64 = 0.0 };
    int rc = capffi_token_new(&tok, ctx, "consumer", NULL);
    if (!rc)
        rc = capffi_lib_open(&m, ctx, &tok, "libm.so.6", 0);
    if (!rc)
        rc = capffi_lib_bind(&cosfn, m, "cos", "(f64) -> f64", 0);
    if (!rc)
        rc = capffi_fn_call(cosfn, &x, &r);
    if (rc) {
        fprintf(stderr, "capffi %s: %s: %s\n", capffi_version(),
                capffi_err_name(rc), capffi_ctx_errmsg(ctx));
    } else {
        printf("capffi %s: cos(1.0) = %.12f\n", capffi_version(), r.f64);
        if (r.f64 != cos(1.0)) {
            fprintf(stderr, "expected %.12f\n", cos(1.0));
            rc = 1;
        }
    }
    capffi_fn_free(cosfn);
    capffi_lib_close(m);
    capffi_ctx_free(ctx);
    return rc ? 1 : 0;
}
