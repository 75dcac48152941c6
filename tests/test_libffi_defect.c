/*
 * test_libffi_defect.c - the one known platform defect, kept visible.
 *
 * libffi before 3.4.7 on x86-64 mis-passes a struct argument over 8 bytes
 * whose first eightbyte is integer and which has float members, when it
 * lands in the sixth integer register: placing it overwrites the register
 * of an earlier floating-point argument (libffi pull request 848, in
 * 3.4.7). This program makes exactly that call with the platform's
 * ffi_call and checks the result. meson marks it as an expected failure
 * when built against an affected libffi (docs/limits.md), so the day the
 * platform's libffi is fixed the test reports an unexpected pass and the
 * mark can go.
 *
 * capffi itself never makes this call wrongly: on x86-64 its direct call
 * (src/call/abi.c) passes the shape right, and a signature that would go
 * through an affected libffi is refused at bind time. test_call.c checks
 * both; every other struct shape is tested there and in tests/abi.
 */
#include "helpers.h"

#include <ffi.h>

#include "fixture.h"

static void
libffi_struct_in_sixth_integer_register(void **state)
{
    (void)state;
    ffi_type *fields[] = { &ffi_type_sint64, &ffi_type_double, NULL };
    ffi_type mixed = { 0, 0, FFI_TYPE_STRUCT, fields };
    ffi_type *args[] = { &ffi_type_sint64,
                         &ffi_type_sint64,
                         &ffi_type_sint64,
                         &ffi_type_sint64,
                         &ffi_type_sint64,
                         &ffi_type_double,
                         &mixed };
    ffi_cif cif;
    assert_int_equal(
        ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 7, &ffi_type_double, args), FFI_OK);
    int64_t i[5] = { 1, 2, 3, 4, 5 };
    double x = 100.0;
    struct fx_mixed m = { 6, 0.5 };
    void *av[] = { &i[0], &i[1], &i[2], &i[3], &i[4], &x, &m };
    double got = 0;
    ffi_call(&cif, FFI_FN(fx_struct_after_ints_and_double), &got, av);
    double direct = fx_struct_after_ints_and_double(1, 2, 3, 4, 5, 100.0, m);
    assert_true(direct == 121.5);
    if (got != 121.5)
        fail_msg("libffi passed the arguments wrongly: got %g, want 121.5",
                 got);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(libffi_struct_in_sixth_integer_register),
    };
    return RUN_TESTS("libffi_defect", tests);
}
