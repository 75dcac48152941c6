/*
 * test_error.c - the error table (suites: unit, error).
 */
#include "helpers.h"

static void
error_every_code_has_a_name_and_message(void **state)
{
    (void)state;
    static const struct {
        int code;
        const char *name;
    } table[] = {
#define ROW(name, value, msg) { value, "CAPFFI_" #name },
        CAPFFI_ERRNO_MAP(ROW)
#undef ROW
    };
    size_t n = sizeof table / sizeof table[0];
    assert_int_equal(n, 18);
    for (size_t i = 0; i < n; i++) {
        /* Codes are 0, -1, -2, ... with no gaps: numbers never change. */
        assert_int_equal(table[i].code, -(int)i);
        assert_string_equal(capffi_err_name(table[i].code), table[i].name);
        assert_true(strlen(capffi_strerror(table[i].code)) > 0);
        assert_string_not_equal(capffi_strerror(table[i].code),
                                "unknown error");
    }
    assert_int_equal(CAPFFI__ERR_LAST, -(int)n);
}

static void
error_pinned_values(void **state)
{
    (void)state;
    assert_int_equal(CAPFFI_OK, 0);
    assert_int_equal(CAPFFI_EINVAL, -1);
    assert_int_equal(CAPFFI_ETOKEN, -4);
    assert_int_equal(CAPFFI_EREVOKED, -5);
    assert_int_equal(CAPFFI_EDLOPEN, -16);
    assert_int_equal(CAPFFI_ECALLBACK, -17);
    assert_string_equal(capffi_strerror(CAPFFI_EPERM), "permission denied");
}

static void
error_unknown_codes(void **state)
{
    (void)state;
    assert_string_equal(capffi_strerror(1), "unknown error");
    assert_string_equal(capffi_strerror(-1000), "unknown error");
    assert_string_equal(capffi_err_name(42), "CAPFFI_E?");
    assert_non_null(capffi_version());
    assert_string_equal(capffi_version(), CAPFFI_VERSION_STRING);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_every_code_has_a_name_and_message),
        cmocka_unit_test(error_pinned_values),
        cmocka_unit_test(error_unknown_codes),
    };
    return RUN_TESTS("error", tests);
}
