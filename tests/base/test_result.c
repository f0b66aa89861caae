/* Result codes: the table, names, messages, and the errno mapping. */
#include "test_util.h"

#include <errno.h>
#include <limits.h>

typedef struct result_entry {
    int value;
    const char *name;
    const char *message;
} result_entry_t;

#define RESULT_ENTRY(name, value, message) {value, #name, message},
static const result_entry_t result_table[] = {RS__RESULT_TABLE(RESULT_ENTRY)};
#undef RESULT_ENTRY
#define RESULT_COUNT (sizeof(result_table) / sizeof(result_table[0]))

static void result_ok_is_zero_and_errors_are_negative(void **state) {
    size_t i;
    (void)state;
    assert_int_equal(RS_OK, 0);
    for (i = 0; i < RESULT_COUNT; ++i) {
        if (strcmp(result_table[i].name, "RS_OK") != 0) {
            assert_true(result_table[i].value < 0);
        }
    }
}

static void result_every_code_has_name_and_message(void **state) {
    size_t i;
    (void)state;
    for (i = 0; i < RESULT_COUNT; ++i) {
        const char *name = rs_err_name(result_table[i].value);
        const char *message = rs_strerror(result_table[i].value);
        assert_non_null(name);
        assert_non_null(message);
        assert_true(strlen(name) > 3);
        assert_memory_equal(name, "RS_", 3);
        assert_string_equal(name, result_table[i].name);
        assert_true(strlen(message) > 0);
        assert_string_equal(message, result_table[i].message);
    }
}

static void result_codes_and_names_are_distinct(void **state) {
    size_t i;
    size_t j;
    (void)state;
    for (i = 0; i < RESULT_COUNT; ++i) {
        for (j = i + 1; j < RESULT_COUNT; ++j) {
            assert_int_not_equal(result_table[i].value, result_table[j].value);
            assert_string_not_equal(result_table[i].name, result_table[j].name);
            assert_string_not_equal(rs_err_name(result_table[i].value), rs_err_name(result_table[j].value));
        }
    }
}

static void result_unknown_codes_get_placeholder_name_and_message(void **state) {
    static const int unknown[] = {1, 42, -14, -98, -199, -1000, INT_MIN, INT_MAX};
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); ++i) {
        const char *message = rs_strerror(unknown[i]);
        assert_string_equal(rs_err_name(unknown[i]), "RS_E(unknown)");
        assert_non_null(message);
        assert_true(strlen(message) > 0);
    }
}

static void result_from_errno_maps_zero_to_ok(void **state) {
    (void)state;
    assert_int_equal(rs_result_from_errno(0), RS_OK);
}

static void result_from_errno_maps_os_errors_to_matching_codes(void **state) {
    static const struct {
        int os_error;
        int expected;
    } cases[] = {
        {ECONNREFUSED, RS_ECONNREFUSED},
        {ETIMEDOUT, RS_ETIMEDOUT},
        {ECONNRESET, RS_ECONNRESET},
        {ECONNABORTED, RS_ECONNABORTED},
        {EPIPE, RS_EPIPE},
        {EADDRINUSE, RS_EADDRINUSE},
        {EADDRNOTAVAIL, RS_EADDRNOTAVAIL},
        {ENETUNREACH, RS_ENETUNREACH},
        {EHOSTUNREACH, RS_EHOSTUNREACH},
        {ENETDOWN, RS_ENETDOWN},
        {EACCES, RS_EACCES},
        {EPERM, RS_EPERM},
        {EMFILE, RS_EMFILE},
        {ENFILE, RS_ENFILE},
        {ENOENT, RS_ENOENT},
        {EEXIST, RS_EEXIST},
        {ENOMEM, RS_ENOMEM},
        {EINVAL, RS_EINVAL},
        {EAGAIN, RS_EAGAIN},
        {EWOULDBLOCK, RS_EAGAIN},
        {EINTR, RS_EINTR},
        {ECANCELED, RS_ECANCELED},
        {ENOTCONN, RS_ENOTCONN},
        {EISCONN, RS_EISCONN},
        {EALREADY, RS_EALREADY},
        {EAFNOSUPPORT, RS_EAFNOSUPPORT},
        {EMSGSIZE, RS_EMSGSIZE},
        {ENOBUFS, RS_ENOBUFS},
        {ESHUTDOWN, RS_ESHUTDOWN},
        {EIO, RS_EIO},
        {ENOSPC, RS_ENOSPC},
        {EBADF, RS_EBADF},
        {EBUSY, RS_EBUSY},
        {EDEADLK, RS_EDEADLK},
        {EOVERFLOW, RS_EOVERFLOW},
        {ENOTSUP, RS_ENOTSUP},
        {EOPNOTSUPP, RS_ENOTSUP},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        int got = rs_result_from_errno(cases[i].os_error);
        if (got != cases[i].expected) {
            fail_msg("errno %d (%s) mapped to %s, expected %s", cases[i].os_error, strerror(cases[i].os_error),
                     rs_err_name(got), rs_err_name(cases[i].expected));
        }
    }
}

static void result_from_errno_maps_unusual_errors_to_unknown(void **state) {
    (void)state;
    assert_int_equal(rs_result_from_errno(EXDEV), RS_EUNKNOWN);
    assert_int_equal(rs_result_from_errno(EDOM), RS_EUNKNOWN);
    assert_int_equal(rs_result_from_errno(123456), RS_EUNKNOWN);
}

static void result_from_errno_never_returns_a_code_outside_the_table(void **state) {
    int os_error;
    (void)state;
    for (os_error = 1; os_error < 200; ++os_error) {
        int got = rs_result_from_errno(os_error);
        assert_true(got < 0);
        assert_string_not_equal(rs_err_name(got), "RS_E(unknown)");
    }
}

/* The utility codes keep their numbers: programs may have logged or stored them. */
static void result_util_codes_have_fixed_values(void **state) {
    (void)state;
    assert_int_equal(RS_ERETRY_QUOTA_EXHAUSTED, -70);
    assert_int_equal(RS_ERETRY_MAX_EXCEEDED, -71);
    assert_int_equal(RS_ERETRY_NOT_ALLOWED, -72);
    assert_int_equal(RS_ESTREAM_SEEK, -75);
    assert_string_equal(rs_err_name(RS_ERETRY_QUOTA_EXHAUSTED), "RS_ERETRY_QUOTA_EXHAUSTED");
    assert_string_equal(rs_err_name(RS_ESTREAM_SEEK), "RS_ESTREAM_SEEK");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(result_ok_is_zero_and_errors_are_negative),
        cmocka_unit_test(result_every_code_has_name_and_message),
        cmocka_unit_test(result_codes_and_names_are_distinct),
        cmocka_unit_test(result_unknown_codes_get_placeholder_name_and_message),
        cmocka_unit_test(result_from_errno_maps_zero_to_ok),
        cmocka_unit_test(result_from_errno_maps_os_errors_to_matching_codes),
        cmocka_unit_test(result_from_errno_maps_unusual_errors_to_unknown),
        cmocka_unit_test(result_from_errno_never_returns_a_code_outside_the_table),
        cmocka_unit_test(result_util_codes_have_fixed_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
