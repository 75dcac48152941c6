/*
 * test_libffi_defect.c - the one known platform defect, kept visible.
 *
 * libffi before 3.4.7 on x86-64 mis-passes a struct argument over 8 bytes
 * whose first eightbyte is integer and which has float members, when it
 * lands in the sixth integer register: placing it overwrites the register
 * of an earlier floating-point argument (libffi pull request 848, in
 * 3.4.7). This program calls exactly that shape through libffi
 * (CAPFFI_FN_LIBFFI: capffi's own direct call, the default on x86-64,
 * passes it correctly and test_call.c checks that) and checks the result. meson
 * marks it as an expected failure when built against an affected libffi
 * (docs/limits.md), so the day the platform's libffi is fixed the test
 * reports an unexpected pass and the mark can go. Every other struct shape
 * is tested in test_call.c and must pass.
 */
#include "helpers.h"

#include "fixture.h"

static void
libffi_struct_in_sixth_integer_register(void **state)
{
    (void)state;
    const char *allow[] = { getenv("CAPFFI_FIXTURE_DIR"), NULL };
    assert_non_null(allow[0]);
    capffi_ctx *ctx = ctx_with(0, allow, NULL);
    capffi_token t;
    capffi_lib *lib;
    capffi_fn *fn;
    assert_ok(capffi_token_new(&t, ctx, "defect", NULL));
    assert_ok(capffi_lib_open(&lib, ctx, &t, getenv("CAPFFI_FIXTURE"), 0));
    assert_ok(
        capffi_lib_bind(&fn, lib, "fx_struct_after_ints_and_double",
                        "(i64, i64, i64, i64, i64, f64, { i64, f64 }) -> f64",
                        CAPFFI_FN_LIBFFI));
    struct fx_mixed m = { 6, 0.5 };
    capffi_value a[7], r;
    for (int i = 0; i < 5; i++)
        a[i].i64 = i + 1;
    a[5].f64 = 100.0;
    a[6].agg.ptr = &m;
    a[6].agg.len = sizeof m;
    assert_ok(capffi_fn_call(fn, a, &r));
    double direct = fx_struct_after_ints_and_double(1, 2, 3, 4, 5, 100.0, m);
    capffi_ctx_free(ctx);
    assert_true(direct == 121.5);
    if (r.f64 != 121.5)
        fail_msg("libffi passed the arguments wrongly: got %g, want 121.5",
                 r.f64);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(libffi_struct_in_sixth_integer_register),
    };
    return RUN_TESTS("libffi_defect", tests);
}
