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
#ifdef ESHUTDOWN /* not in the Windows C runtime */
        {ESHUTDOWN, RS_ESHUTDOWN},
#endif
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

#if RESEAU_OS_WINDOWS
/* Winsock's errors come through rs_result_from_errno (WSAGetLastError values
 * are above every errno value) and land where their POSIX twins do. */
static void result_from_errno_maps_winsock_errors_like_posix(void **state) {
    static const struct {
        int os_error;
        int expected;
    } cases[] = {
        {WSAECONNREFUSED, RS_ECONNREFUSED}, {WSAETIMEDOUT, RS_ETIMEDOUT},     {WSAECONNRESET, RS_ECONNRESET},
        {WSAECONNABORTED, RS_ECONNABORTED}, {WSAEADDRINUSE, RS_EADDRINUSE},   {WSAEADDRNOTAVAIL, RS_EADDRNOTAVAIL},
        {WSAENETUNREACH, RS_ENETUNREACH},   {WSAEHOSTUNREACH, RS_EHOSTUNREACH}, {WSAENETDOWN, RS_ENETDOWN},
        {WSAEACCES, RS_EACCES},             {WSAEMFILE, RS_EMFILE},           {WSAEINVAL, RS_EINVAL},
        {WSAEWOULDBLOCK, RS_EAGAIN},        {WSAEINTR, RS_EINTR},             {WSAENOTCONN, RS_ENOTCONN},
        {WSAEISCONN, RS_EISCONN},           {WSAEALREADY, RS_EALREADY},       {WSAEINPROGRESS, RS_EALREADY},
        {WSAEAFNOSUPPORT, RS_EAFNOSUPPORT}, {WSAEMSGSIZE, RS_EMSGSIZE},       {WSAENOBUFS, RS_ENOBUFS},
        {WSAESHUTDOWN, RS_ESHUTDOWN},       {WSAEOPNOTSUPP, RS_ENOTSUP},      {WSAENOTSOCK, RS_EBADF},
        {WSAHOST_NOT_FOUND, RS_EDNS_NOT_FOUND}, {WSATRY_AGAIN, RS_EDNS_TRY_AGAIN},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        int got = rs_result_from_errno(cases[i].os_error);
        if (got != cases[i].expected) {
            fail_msg("Winsock error %d mapped to %s, expected %s", cases[i].os_error, rs_err_name(got),
                     rs_err_name(cases[i].expected));
        }
    }
    assert_int_equal(rs_result_from_errno(WSASYSNOTREADY), RS_EUNKNOWN);
}

/* Win32 errors overlap errno values (5 is EIO and ERROR_ACCESS_DENIED), so
 * they have their own mapping; an overlapped socket operation completes with
 * these rather than the WSAE* codes. */
static void result_from_win32_maps_system_errors_like_posix(void **state) {
    static const struct {
        uint32_t os_error;
        int expected;
    } cases[] = {
        {ERROR_ACCESS_DENIED, RS_EACCES},
        {ERROR_NOT_ENOUGH_MEMORY, RS_ENOMEM},
        {ERROR_OUTOFMEMORY, RS_ENOMEM},
        {ERROR_INVALID_PARAMETER, RS_EINVAL},
        {ERROR_INVALID_HANDLE, RS_EBADF},
        {ERROR_FILE_NOT_FOUND, RS_ENOENT},
        {ERROR_ALREADY_EXISTS, RS_EEXIST},
        {ERROR_TOO_MANY_OPEN_FILES, RS_EMFILE},
        {ERROR_OPERATION_ABORTED, RS_ECANCELED},
        {WAIT_TIMEOUT, RS_ETIMEDOUT},
        {ERROR_BROKEN_PIPE, RS_EPIPE},
        {ERROR_PIPE_BUSY, RS_EBUSY},
        {ERROR_HANDLE_EOF, RS_EEOF},
        {ERROR_CONNECTION_REFUSED, RS_ECONNREFUSED},
        {ERROR_NETNAME_DELETED, RS_ECONNRESET},
        {ERROR_CONNECTION_ABORTED, RS_ECONNABORTED},
        {ERROR_NETWORK_UNREACHABLE, RS_ENETUNREACH},
        {ERROR_HOST_UNREACHABLE, RS_EHOSTUNREACH},
        {ERROR_ADDRESS_ALREADY_ASSOCIATED, RS_EADDRINUSE},
        {ERROR_NOT_SUPPORTED, RS_ENOTSUP},
        {WSAECONNRESET, RS_ECONNRESET},
    };
    size_t i;
    (void)state;
    assert_int_equal(rs__result_from_win32(0), RS_OK);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        int got = rs__result_from_win32(cases[i].os_error);
        if (got != cases[i].expected) {
            fail_msg("Win32 error %lu mapped to %s, expected %s", (unsigned long)cases[i].os_error,
                     rs_err_name(got), rs_err_name(cases[i].expected));
        }
    }
    assert_int_equal(rs__result_from_win32(ERROR_INVALID_FUNCTION), RS_EUNKNOWN);
}
#endif

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
#if RESEAU_OS_WINDOWS
        cmocka_unit_test(result_from_errno_maps_winsock_errors_like_posix),
        cmocka_unit_test(result_from_win32_maps_system_errors_like_posix),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
