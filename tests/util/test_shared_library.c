/* Shared libraries: open the C library (kernel32 on Windows) and the running
 * program, find a function and call it; a plugin built with the tests,
 * copied to a path with non-ASCII characters (UTF-8; UTF-16 on Windows);
 * a missing file, a file that is not a library, a missing symbol (each with
 * its code and the loader's words in the log); close twice, close NULL and
 * bad arguments. */
#include "test_util.h"

#if !RESEAU_OS_WINDOWS
#include <unistd.h>
#endif

#ifndef RS_TEST_PLUGIN_PATH
#error "build with -DRS_TEST_PLUGIN_PATH=\"path of the test plugin\""
#endif

/* The log lines of the util subject, for checking that the loader's words are there. */
typedef struct captured_log {
    char text[2048];
    int count;
} captured_log_t;

static void capture_fn(rs_log_level_t level, rs_log_subject_t subject, const char *message, void *user_data) {
    captured_log_t *c = (captured_log_t *)user_data;
    (void)level;
    if (subject == RS_LS_UTIL) {
        snprintf(c->text, sizeof(c->text), "%s", message);
        c->count++;
    }
}

static void capture_start(captured_log_t *c) {
    rs_logger_t l;
    memset(c, 0, sizeof(*c));
    l.level = RS_LOG_LEVEL_WARN;
    l.log_fn = capture_fn;
    l.user_data = c;
    rs_log_set(&l);
}

static void capture_stop(void) {
    rs_log_set(NULL);
}

#if RESEAU_OS_WINDOWS
#define SYSTEM_LIBRARY "kernel32.dll"
#define SYSTEM_FUNCTION "GetCurrentProcessId"
typedef DWORD(WINAPI *system_fn)(void);
static unsigned long system_expected(void) {
    return (unsigned long)GetCurrentProcessId();
}
#else
#define SYSTEM_LIBRARY "libc.so.6"
#define SYSTEM_FUNCTION "getpid"
typedef pid_t (*system_fn)(void);
static unsigned long system_expected(void) {
    return (unsigned long)getpid();
}
#endif

static void open_system_library_and_call_a_function(void **state) {
    rs_shared_library_t lib;
    rs_shared_library_fn fn = NULL;
    (void)state;
    assert_int_equal(rs_shared_library_open(&lib, &rs_test_allocator, SYSTEM_LIBRARY), RS_OK);
    assert_non_null(lib.handle);
    assert_false(lib.is_self);
    assert_int_equal(rs_shared_library_find_symbol(&lib, SYSTEM_FUNCTION, &fn), RS_OK);
    assert_non_null(fn);
    assert_int_equal((unsigned long)((system_fn)fn)(), system_expected());
    rs_shared_library_close(&lib);
    assert_null(lib.handle);
}

/* NULL opens the running program: on POSIX its global scope, libc included;
 * on Windows the .exe, which exports nothing here. */
static void open_null_is_the_running_program(void **state) {
    rs_shared_library_t lib;
    rs_shared_library_fn fn = NULL;
    captured_log_t log;
    (void)state;
    assert_int_equal(rs_shared_library_open(&lib, NULL, NULL), RS_OK);
    assert_non_null(lib.handle);
    assert_true(lib.is_self);
#if RESEAU_OS_WINDOWS
    capture_start(&log);
    assert_int_equal(rs_shared_library_find_symbol(&lib, "rs_no_such_export", &fn), RS_ESHARED_LIBRARY_SYMBOL_NOT_FOUND);
    capture_stop();
    assert_null(fn);
    assert_int_equal(log.count, 1);
#else
    (void)log;
    assert_int_equal(rs_shared_library_find_symbol(&lib, "strlen", &fn), RS_OK);
    assert_int_equal(((size_t(*)(const char *))fn)("reseau"), 6);
#endif
    rs_shared_library_close(&lib);
    assert_null(lib.handle);
    assert_false(lib.is_self);
}

static void temp_dir(char *out, size_t size) {
#if RESEAU_OS_WINDOWS
    wchar_t w[MAX_PATH];
    DWORD n = GetTempPathW(MAX_PATH, w);
    assert_true(n > 0 && n < MAX_PATH);
    assert_true(WideCharToMultiByte(CP_UTF8, 0, w, -1, out, (int)size, NULL, NULL) > 0);
#else
    const char *dir = getenv("TMPDIR");
    snprintf(out, size, "%s/", dir && *dir ? dir : "/tmp");
#endif
}

static FILE *open_utf8(const char *path, const char *mode) {
#if RESEAU_OS_WINDOWS
    wchar_t wpath[1024], wmode[8];
    assert_true(MultiByteToWideChar(CP_UTF8, 0, path, -1, wpath, 1024) > 0);
    assert_true(MultiByteToWideChar(CP_UTF8, 0, mode, -1, wmode, 8) > 0);
    return _wfopen(wpath, wmode);
#else
    return fopen(path, mode);
#endif
}

static void remove_utf8(const char *path) {
#if RESEAU_OS_WINDOWS
    wchar_t wpath[1024];
    assert_true(MultiByteToWideChar(CP_UTF8, 0, path, -1, wpath, 1024) > 0);
    assert_true(DeleteFileW(wpath));
#else
    assert_int_equal(unlink(path), 0);
#endif
}

static void copy_file(const char *from, const char *to) {
    char buf[4096];
    size_t n;
    FILE *in = fopen(from, "rb");
    FILE *out = open_utf8(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
        assert_int_equal(fwrite(buf, 1, n, out), n);
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* "réseau-bibliothèque-日本" in UTF-8: Latin-1 letters and CJK, so a narrow
 * (ANSI code page) conversion on Windows could not name it. */
static void open_a_copy_under_a_non_ascii_name(void **state) {
    char path[1024];
    rs_shared_library_t lib;
    rs_shared_library_fn fn = NULL;
    (void)state;
    temp_dir(path, sizeof(path));
    snprintf(path + strlen(path), sizeof(path) - strlen(path), "r\xc3\xa9seau-biblioth\xc3\xa8que-\xe6\x97\xa5\xe6\x9c\xac-%lu%s",
             system_expected(), RESEAU_OS_WINDOWS ? ".dll" : ".so");
    copy_file(RS_TEST_PLUGIN_PATH, path);
    assert_int_equal(rs_shared_library_open(&lib, &rs_test_allocator, path), RS_OK);
    assert_int_equal(rs_shared_library_find_symbol(&lib, "rs_test_plugin_answer", &fn), RS_OK);
    assert_int_equal(((int (*)(int))fn)(4), 50);
    rs_shared_library_close(&lib);
    remove_utf8(path);
}

static void missing_file_is_load_failure_with_the_loaders_words(void **state) {
    rs_shared_library_t lib;
    captured_log_t log;
    (void)state;
    memset(&lib, 0x5a, sizeof(lib));
    capture_start(&log);
    assert_int_equal(rs_shared_library_open(&lib, &rs_test_allocator, RESEAU_OS_WINDOWS ? "rs-no-such-library.dll"
                                                                                        : "/nonexistent/librs-no-such.so"),
                     RS_ESHARED_LIBRARY_LOAD_FAILURE);
    capture_stop();
    assert_null(lib.handle); /* zeroed on failure */
    assert_false(lib.is_self);
    assert_int_equal(log.count, 1);
#if RESEAU_OS_WINDOWS
    assert_non_null(strstr(log.text, "LoadLibraryW failed"));
    assert_non_null(strstr(log.text, "error 126")); /* ERROR_MOD_NOT_FOUND */
#else
    assert_non_null(strstr(log.text, "dlopen failed"));
    assert_non_null(strstr(log.text, "No such file or directory"));
#endif
    rs_shared_library_close(&lib); /* a failed open left nothing to close */
}

static void a_file_that_is_not_a_library_is_load_failure(void **state) {
    char path[1024];
    rs_shared_library_t lib;
    captured_log_t log;
    FILE *f;
    (void)state;
    temp_dir(path, sizeof(path));
    snprintf(path + strlen(path), sizeof(path) - strlen(path), "rs-not-a-library-%lu%s", system_expected(),
             RESEAU_OS_WINDOWS ? ".dll" : ".so");
    f = open_utf8(path, "wb");
    assert_non_null(f);
    fputs("this is text, not a shared library\n", f);
    assert_int_equal(fclose(f), 0);
    capture_start(&log);
    assert_int_equal(rs_shared_library_open(&lib, NULL, path), RS_ESHARED_LIBRARY_LOAD_FAILURE);
    capture_stop();
    assert_int_equal(log.count, 1);
    assert_non_null(strstr(log.text, path));
    remove_utf8(path);
}

static void missing_symbol_is_symbol_not_found(void **state) {
    rs_shared_library_t lib;
    rs_shared_library_fn fn;
    captured_log_t log;
    (void)state;
    assert_int_equal(rs_shared_library_open(&lib, NULL, SYSTEM_LIBRARY), RS_OK);
    fn = (rs_shared_library_fn)open_system_library_and_call_a_function; /* overwritten with NULL */
    capture_start(&log);
    assert_int_equal(rs_shared_library_find_symbol(&lib, "rs_no_such_function_anywhere", &fn),
                     RS_ESHARED_LIBRARY_SYMBOL_NOT_FOUND);
    capture_stop();
    assert_null(fn);
    assert_int_equal(log.count, 1);
    assert_non_null(strstr(log.text, "rs_no_such_function_anywhere"));
    rs_shared_library_close(&lib);
}

static void close_twice_and_close_null_do_nothing(void **state) {
    rs_shared_library_t lib, zeroed;
    (void)state;
    rs_shared_library_close(NULL);
    memset(&zeroed, 0, sizeof(zeroed));
    rs_shared_library_close(&zeroed);
    assert_int_equal(rs_shared_library_open(&lib, NULL, SYSTEM_LIBRARY), RS_OK);
    rs_shared_library_close(&lib);
    assert_null(lib.handle);
    rs_shared_library_close(&lib);
    assert_null(lib.handle);
    /* The program: on Windows not refcounted, so never freed; close twice too. */
    assert_int_equal(rs_shared_library_open(&lib, NULL, NULL), RS_OK);
    rs_shared_library_close(&lib);
    rs_shared_library_close(&lib);
}

static void bad_arguments_are_einval(void **state) {
    rs_shared_library_t lib, closed;
    rs_shared_library_fn fn = (rs_shared_library_fn)bad_arguments_are_einval;
    (void)state;
    assert_int_equal(rs_shared_library_open(NULL, NULL, SYSTEM_LIBRARY), RS_EINVAL);
    memset(&lib, 0x5a, sizeof(lib));
    assert_int_equal(rs_shared_library_open(&lib, NULL, ""), RS_EINVAL);
    assert_null(lib.handle);
    assert_int_equal(rs_shared_library_find_symbol(NULL, "strlen", &fn), RS_EINVAL);
    assert_null(fn);
    memset(&closed, 0, sizeof(closed));
    assert_int_equal(rs_shared_library_find_symbol(&closed, "strlen", &fn), RS_EINVAL);
    assert_int_equal(rs_shared_library_open(&lib, NULL, SYSTEM_LIBRARY), RS_OK);
    assert_int_equal(rs_shared_library_find_symbol(&lib, NULL, &fn), RS_EINVAL);
    assert_int_equal(rs_shared_library_find_symbol(&lib, SYSTEM_FUNCTION, NULL), RS_EINVAL);
    rs_shared_library_close(&lib);
    assert_int_equal(rs_shared_library_find_symbol(&lib, SYSTEM_FUNCTION, &fn), RS_EINVAL);
}

static void error_codes_have_names_and_messages(void **state) {
    (void)state;
    assert_string_equal(rs_err_name(RS_ESHARED_LIBRARY_LOAD_FAILURE), "RS_ESHARED_LIBRARY_LOAD_FAILURE");
    assert_string_equal(rs_err_name(RS_ESHARED_LIBRARY_SYMBOL_NOT_FOUND), "RS_ESHARED_LIBRARY_SYMBOL_NOT_FOUND");
    assert_non_null(strstr(rs_strerror(RS_ESHARED_LIBRARY_SYMBOL_NOT_FOUND), "symbol"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_system_library_and_call_a_function),
        cmocka_unit_test(open_null_is_the_running_program),
        cmocka_unit_test(open_a_copy_under_a_non_ascii_name),
        cmocka_unit_test(missing_file_is_load_failure_with_the_loaders_words),
        cmocka_unit_test(a_file_that_is_not_a_library_is_load_failure),
        cmocka_unit_test(missing_symbol_is_symbol_not_found),
        cmocka_unit_test(close_twice_and_close_null_do_nothing),
        cmocka_unit_test(bad_arguments_are_einval),
        cmocka_unit_test(error_codes_have_names_and_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
