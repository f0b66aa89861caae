/*
 * Shared test helpers: a leak-checking allocator built on cmocka's test_malloc,
 * a fault-injecting allocator that fails the Nth allocation, and bounded
 * waits for tests that run a child process.
 *
 * Each test file is its own executable and includes reseau.h with the
 * implementation exactly once, through this header:
 *     #include "test_util.h"
 * cmocka's allocation tracking is not thread-safe, and reseau allocates from
 * loop threads, so every call here goes through one mutex.
 */
#ifndef RESEAU_TEST_UTIL_H
#define RESEAU_TEST_UTIL_H

#define RESEAU_IMPLEMENTATION
#include "reseau.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(_WIN32)
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#endif

#include <cmocka.h>

static rs_mutex_t rs_test__alloc_lock = RS_MUTEX_INIT;

static void *rs_test__alloc(size_t size, void *user_data) {
    void *p;
    (void)user_data;
    rs_mutex_lock(&rs_test__alloc_lock);
    p = _test_malloc(size, __FILE__, __LINE__);
    rs_mutex_unlock(&rs_test__alloc_lock);
    return p;
}

static void *rs_test__realloc(void *ptr, size_t old_size, size_t new_size, void *user_data) {
    void *p;
    (void)old_size;
    (void)user_data;
    rs_mutex_lock(&rs_test__alloc_lock);
    p = _test_realloc(ptr, new_size, __FILE__, __LINE__);
    rs_mutex_unlock(&rs_test__alloc_lock);
    return p;
}

static void rs_test__free(void *ptr, void *user_data) {
    (void)user_data;
    rs_mutex_lock(&rs_test__alloc_lock);
    _test_free(ptr, __FILE__, __LINE__);
    rs_mutex_unlock(&rs_test__alloc_lock);
}

/* The leak-checking allocator: cmocka fails the test if any block outlives it. */
static const rs_allocator_t rs_test_allocator = {rs_test__alloc, rs_test__realloc, rs_test__free, NULL};

/* Fault injection: fails allocation number `fail_at` (1-based; 0 = never),
 * passes everything else through to the leak-checking allocator. */
typedef struct rs_test_failing_alloc {
    rs_allocator_t allocator; /* hand this to reseau */
    size_t fail_at;
    size_t count;             /* allocations attempted so far */
    size_t failures;          /* allocations refused so far */
} rs_test_failing_alloc_t;

static void *rs_test__failing_alloc(size_t size, void *user_data) {
    rs_test_failing_alloc_t *f = (rs_test_failing_alloc_t *)user_data;
    size_t n;
    rs_mutex_lock(&rs_test__alloc_lock);
    n = ++f->count;
    if (n == f->fail_at) {
        ++f->failures;
        rs_mutex_unlock(&rs_test__alloc_lock);
        return NULL;
    }
    rs_mutex_unlock(&rs_test__alloc_lock);
    return rs_test__alloc(size, NULL);
}

static void *rs_test__failing_realloc(void *ptr, size_t old_size, size_t new_size, void *user_data) {
    rs_test_failing_alloc_t *f = (rs_test_failing_alloc_t *)user_data;
    size_t n;
    rs_mutex_lock(&rs_test__alloc_lock);
    n = ++f->count;
    if (n == f->fail_at) {
        ++f->failures;
        rs_mutex_unlock(&rs_test__alloc_lock);
        return NULL;
    }
    rs_mutex_unlock(&rs_test__alloc_lock);
    return rs_test__realloc(ptr, old_size, new_size, NULL);
}

static RS__UNUSED void rs_test_failing_alloc_init(rs_test_failing_alloc_t *f, size_t fail_at) {
    memset(f, 0, sizeof(*f));
    f->fail_at = fail_at;
    f->allocator.alloc_fn = rs_test__failing_alloc;
    f->allocator.realloc_fn = rs_test__failing_realloc;
    f->allocator.free_fn = rs_test__free;
    f->allocator.user_data = f;
}

/* Whether `mutex` could be taken without waiting (it then is held): for
 * tests that check a mutex is held, without reaching into its OS type. */
static RS__UNUSED bool rs_test_mutex_trylock(rs_mutex_t *mutex) {
#if RESEAU_OS_WINDOWS
    return TryAcquireSRWLockExclusive((PSRWLOCK)(void *)&mutex->impl) != 0;
#else
    return pthread_mutex_trylock(&mutex->impl) == 0;
#endif
}

#if RESEAU_OS_WINDOWS
/* GetThreadDescription, looked up as reseau looks up its setter (Windows 10
 * 1607 and later, and Wine, have it); NULL where it is missing. */
typedef HRESULT(WINAPI *rs_test__get_thread_description_fn)(HANDLE thread, PWSTR *description);

static RS__UNUSED rs_test__get_thread_description_fn rs_test__get_thread_description(void) {
    HMODULE kernel32 = GetModuleHandleW(L"kernel32.dll");
    FARPROC proc = kernel32 ? GetProcAddress(kernel32, "GetThreadDescription") : NULL;
    return proc ? (rs_test__get_thread_description_fn)(void (*)(void))proc : NULL;
}
#endif

/* The calling thread's name as the OS shows it, into buf (NUL-terminated):
 * pthread_getname_np, or GetThreadDescription on Windows. 0, or non-zero
 * where the OS cannot say. */
static RS__UNUSED int rs_test_thread_name(char *buf, size_t size) {
#if RESEAU_OS_WINDOWS
    rs_test__get_thread_description_fn get = rs_test__get_thread_description();
    PWSTR wide = NULL;
    int err = -1;
    if (get && SUCCEEDED(get(GetCurrentThread(), &wide))) {
        err = WideCharToMultiByte(CP_UTF8, 0, wide, -1, buf, (int)size, NULL, NULL) > 0 ? 0 : -1;
        LocalFree(wide);
    }
    return err;
#else
    return pthread_getname_np(pthread_self(), buf, size);
#endif
}

/* The CPUs online, as the OS counts them; 0 if unknown. */
static RS__UNUSED long rs_test_online_cpus(void) {
#if RESEAU_OS_WINDOWS
    SYSTEM_INFO info;
    GetSystemInfo(&info);
    return (long)info.dwNumberOfProcessors;
#else
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? online : 0;
#endif
}

/* Read a counter that loop threads update. */
static RS__UNUSED size_t rs_test_failing_alloc_failures(rs_test_failing_alloc_t *f) {
    size_t n;
    rs_mutex_lock(&rs_test__alloc_lock);
    n = f->failures;
    rs_mutex_unlock(&rs_test__alloc_lock);
    return n;
}

/* ---- Per-backend tests. A behaviour written once as
 *     static void foo(rs_event_loop_backend_t b) { ... }
 *     RS_TEST_PER_BACKEND(event_loop_, foo)
 * becomes the cmocka tests event_loop_foo_epoll, event_loop_foo_poll,
 * event_loop_foo_kqueue, event_loop_foo_io_uring and event_loop_foo_iocp,
 * listed in main() with
 *     RS_TEST_PER_BACKEND_TESTS(event_loop_, foo),
 * The prefix may be empty: RS_TEST_PER_BACKEND(, foo) gives foo_epoll.
 * RS_TEST_PER_BACKEND_CALL(prefix, name, call) is the same with any
 * expression as the body, in which `b` is the backend:
 *     RS_TEST_PER_BACKEND_CALL(, cut_by_timeout, cut_short(b, CUT_BY_TIMEOUT))
 *
 * Each variant first calls rs_test_backend_or_skip(b), so a backend that is
 * not in this build (kqueue on Linux without libkqueue) or not allowed here
 * (io_uring under a seccomp filter or the io_uring_disabled sysctl) shows as
 * SKIPPED, and
 * a build with -DRS_TEST_ONLY_BACKEND=RS_EVENT_LOOP_BACKEND_KQUEUE runs only
 * the kqueue variants (tests that are not per-backend still run). */

/* Skips the calling test (cmocka's skip()) unless backend b is to be tested
 * here. Call it before the test allocates anything: with cmocka 1.1.5, a
 * skipped test that leaves test_malloc blocks behind makes the executable
 * exit 255 while its report lists no failure. */
/* Whether the test runs under valgrind (its preloaded library is there). */
static RS__UNUSED bool rs_test_under_valgrind(void) {
    const char *preload = getenv("LD_PRELOAD");
    return preload && strstr(preload, "vgpreload") != NULL;
}

/* valgrind 3.19 (Debian 12) hangs in the io_uring tests: their waits in
 * io_uring_enter never return under it. The io_uring variants are skipped
 * there, saying so; ASan, UBSan and TSan run them. */
static RS__UNUSED void rs_test_io_uring_or_skip(void) {
    if (rs_test_under_valgrind()) {
        print_message("skipped: io_uring does not run under valgrind 3.19\n");
        skip();
    }
}

static RS__UNUSED void rs_test_backend_or_skip(rs_event_loop_backend_t b) {
#ifdef RS_TEST_ONLY_BACKEND
    if (b != (RS_TEST_ONLY_BACKEND)) {
        print_message("skipped: this build tests only the %s backend\n",
                      rs_event_loop_backend_name(RS_TEST_ONLY_BACKEND));
        skip();
    }
#endif
    if (b == RS_EVENT_LOOP_BACKEND_IO_URING) {
        rs_test_io_uring_or_skip();
    }
    if (!rs_event_loop_backend_is_available(b)) {
        print_message("skipped: the %s backend is not in this build or not allowed here\n",
                      rs_event_loop_backend_name(b));
        skip();
    }
}

/* Skips the calling test (before it allocates anything) on a backend without
 * fd subscriptions: IOCP, on Windows, until sockets are ported there. */
static RS__UNUSED void rs_test_io_or_skip(rs_event_loop_backend_t b) {
    if (b == RS_EVENT_LOOP_BACKEND_IOCP) {
        print_message("skipped: the iocp backend has no fd subscriptions yet (RS_ENOTSUP)\n");
        skip();
    }
}

#define RS_TEST__ONE_BACKEND(fn, backend, call)                                                     \
    static void fn(void **state) {                                                                  \
        rs_event_loop_backend_t b = (backend);                                                      \
        (void)state;                                                                                \
        rs_test_backend_or_skip(b);                                                                 \
        call;                                                                                       \
    }

#define RS_TEST_PER_BACKEND_CALL(prefix, name, call)                                                \
    RS_TEST__ONE_BACKEND(prefix##name##_epoll, RS_EVENT_LOOP_BACKEND_EPOLL, call)                   \
    RS_TEST__ONE_BACKEND(prefix##name##_poll, RS_EVENT_LOOP_BACKEND_POLL, call)                     \
    RS_TEST__ONE_BACKEND(prefix##name##_kqueue, RS_EVENT_LOOP_BACKEND_KQUEUE, call)                 \
    RS_TEST__ONE_BACKEND(prefix##name##_io_uring, RS_EVENT_LOOP_BACKEND_IO_URING, call)             \
    RS_TEST__ONE_BACKEND(prefix##name##_iocp, RS_EVENT_LOOP_BACKEND_IOCP, call)

#define RS_TEST_PER_BACKEND(prefix, name) RS_TEST_PER_BACKEND_CALL(prefix, name, name(b))

/* For tests that subscribe fds: skipped, saying so, where the backend has no
 * fd subscriptions (IOCP, on Windows, so far), before they allocate. */
#define RS_TEST_PER_BACKEND_IO(prefix, name) RS_TEST_PER_BACKEND_CALL(prefix, name, rs_test_io_or_skip(b); name(b))

/* A non-blocking, close-on-exec pipe for the fd tests; 0, or -1 with errno
 * (always on Windows, where those tests skip before they get here). */
static RS__UNUSED int rs_test_pipe_nonblocking(int fds[2]) {
#if RESEAU_OS_WINDOWS
    fds[0] = fds[1] = -1;
    errno = ENOSYS;
    return -1;
#elif defined(__linux__)
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
#else
    if (pipe(fds) != 0) {
        return -1;
    }
    if (rs__set_nonblocking_cloexec(fds[0]) != RS_OK || rs__set_nonblocking_cloexec(fds[1]) != RS_OK) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    return 0;
#endif
}

/* The entries for main()'s CMUnitTest array; the _SETUP_TEARDOWN form gives
 * each variant cmocka setup and teardown functions. */
#define RS_TEST_PER_BACKEND_TESTS_SETUP_TEARDOWN(prefix, name, setup, teardown)                     \
    cmocka_unit_test_setup_teardown(prefix##name##_epoll, setup, teardown),                         \
        cmocka_unit_test_setup_teardown(prefix##name##_poll, setup, teardown),                      \
        cmocka_unit_test_setup_teardown(prefix##name##_kqueue, setup, teardown),                    \
        cmocka_unit_test_setup_teardown(prefix##name##_io_uring, setup, teardown),                  \
        cmocka_unit_test_setup_teardown(prefix##name##_iocp, setup, teardown)

#define RS_TEST_PER_BACKEND_TESTS(prefix, name) RS_TEST_PER_BACKEND_TESTS_SETUP_TEARDOWN(prefix, name, NULL, NULL)

/* A loop on backend b with the leak-checking allocator; fails the test if it
 * cannot be made. */
static RS__UNUSED rs_event_loop_t *rs_test_loop_new(rs_event_loop_backend_t b) {
    rs_event_loop_options_t opts;
    rs_event_loop_t *loop;
    int err = -1;
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator;
    opts.backend = b;
    loop = rs_event_loop_new(&opts, &err);
    assert_non_null(loop);
    assert_int_equal(err, RS_OK);
    assert_int_equal(rs_event_loop_get_backend(loop), b);
    return loop;
}

/* The backends this OS must provide (Linux: epoll and poll; Windows: IOCP),
 * its default first. kqueue is not here: on Linux it exists only in a build
 * against libkqueue. */
#if RESEAU_OS_WINDOWS
static const rs_event_loop_backend_t rs_test_backends[] = {RS_EVENT_LOOP_BACKEND_IOCP};
#else
static const rs_event_loop_backend_t rs_test_backends[] = {RS_EVENT_LOOP_BACKEND_EPOLL, RS_EVENT_LOOP_BACKEND_POLL};
#endif
#define RS_TEST_BACKEND_COUNT (sizeof(rs_test_backends) / sizeof(rs_test_backends[0]))

/* ---- Driving a loop on the test thread. */

/* The bound of RS_TEST_RUN_UNTIL. */
#define RS_TEST_WAIT_NS (20 * RS_NS_PER_SEC)

/* Run the loop on this thread (rs_event_loop_run_once, 10 ms at most per
 * tick) until `cond` holds; fail the test after `ns`. `cond` is evaluated
 * again after every tick, so it must have no side effects. */
#define RS_TEST_RUN_UNTIL_NS(loop, cond, ns)                                                        \
    do {                                                                                            \
        uint64_t rs_test_run_deadline_ = rs_clock_now_ns() + (ns);                                  \
        while (!(cond)) {                                                                           \
            if (rs_clock_now_ns() > rs_test_run_deadline_) {                                        \
                fail_msg("timed out waiting for: %s", #cond);                                       \
            }                                                                                       \
            assert_int_equal(rs_event_loop_run_once((loop), 10), RS_OK);                            \
        }                                                                                           \
    } while (0)

#define RS_TEST_RUN_UNTIL(loop, cond) RS_TEST_RUN_UNTIL_NS(loop, cond, RS_TEST_WAIT_NS)

#if !defined(_WIN32)
/* ---- Child processes: for tests that run an example as a child and talk
 * to it over sockets on the loopback. Every wait is bounded. */

/* ---- SIGPIPE. reseau keeps a write to a closed peer from raising it
 * (MSG_NOSIGNAL, or SO_NOSIGPIPE on macOS), except where the system has
 * neither: only the RESEAU_TEST_PORTABLE_POSIX build on Linux, which takes the
 * macOS path without macOS's SO_NOSIGPIPE. A program on such a system must
 * ignore SIGPIPE, so those test programs do, from their start; the write then
 * fails with RS_EPIPE all the same, which the tests check. */
#define RS_TEST_SIGPIPE_IGNORED (!RS__HAVE_MSG_NOSIGNAL && !RS__HAVE_SO_NOSIGPIPE)
#if RS_TEST_SIGPIPE_IGNORED
__attribute__((constructor)) static void rs_test__ignore_sigpipe(void) {
    signal(SIGPIPE, SIG_IGN);
}
#endif

/* For a test of writes to closed peers: SIGPIPE at its default action and
 * unblocked (loop threads inherit the mask), so a write that raised it would
 * kill the test; ignored instead where reseau cannot prevent it (above). */
static RS__UNUSED void rs_test_sigpipe_setup(void) {
    struct sigaction sa;
    sigset_t set;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = RS_TEST_SIGPIPE_IGNORED ? SIG_IGN : SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* Every fd reseau makes or accepts is non-blocking and close-on-exec, whether
 * the flags came with the call (SOCK_NONBLOCK, accept4) or from fcntl after
 * it (macOS, and the RESEAU_TEST_PORTABLE_POSIX build). */
static RS__UNUSED void rs_test_assert_fd_nonblocking_cloexec(int fd) {
    int fl = fcntl(fd, F_GETFL);
    int fd_flags = fcntl(fd, F_GETFD);
    assert_true(fd >= 0);
    assert_true(fl >= 0 && fd_flags >= 0);
    assert_true((fl & O_NONBLOCK) != 0);
    assert_true((fd_flags & FD_CLOEXEC) != 0);
}

/* A monotonic clock in milliseconds. */
static RS__UNUSED int64_t rs_test_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for fd to be ready for `events` (POLLIN, POLLOUT); false on timeout. */
static RS__UNUSED bool rs_test_wait_fd(int fd, short events, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = events};
    int n;
    do {
        n = poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    return n > 0;
}

#ifdef __linux__
#include <dirent.h>
/* How many fds the process has open (Linux: /proc/self/fd), to compare before
 * and after: a difference is a leak, or an fd closed that should not be. */
static RS__UNUSED int rs_test_open_fd_count(void) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n - 1; /* the directory's own fd */
}
#endif

/* The child's exit status (128 + the signal if one killed it), or -1 if it
 * did not exit within timeout_ms. */
static RS__UNUSED int rs_test_wait_exit(pid_t pid, int timeout_ms) {
    int64_t deadline = rs_test_now_ms() + timeout_ms;
    int status;
    while (rs_test_now_ms() < deadline) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        rs_thread_sleep_ns(10 * RS_NS_PER_MS);
    }
    return -1;
}

/* Run argv[0] as a child that dies with the test (PR_SET_PDEATHSIG on
 * Linux), its stdout (and stderr too if `both`) into a pipe whose read end
 * goes to *out_fd. The child's pid, or -1. */
static RS__UNUSED pid_t rs_test_spawn(char *const argv[], bool both, int *out_fd) {
    int out[2];
    if (pipe(out) != 0) {
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        dup2(out[1], STDOUT_FILENO);
        if (both) {
            dup2(out[1], STDERR_FILENO);
        }
        close(out[0]);
        close(out[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(out[1]);
    if (pid < 0) {
        close(out[0]);
        return -1;
    }
    *out_fd = out[0];
    return pid;
}

/* Read from fd into buf (NUL-terminated) until it holds `until` or the end,
 * for at most timeout_ms. The bytes read. */
static RS__UNUSED size_t rs_test_read_until(int fd, char *buf, size_t size, const char *until, int timeout_ms) {
    int64_t deadline = rs_test_now_ms() + timeout_ms;
    size_t len = 0;
    buf[0] = '\0';
    while (len < size - 1 && !strstr(buf, until)) {
        int64_t left = deadline - rs_test_now_ms();
        ssize_t n;
        if (left <= 0 || !rs_test_wait_fd(fd, POLLIN, (int)left) || (n = read(fd, buf + len, size - 1 - len)) <= 0) {
            break;
        }
        len += (size_t)n;
        buf[len] = '\0';
    }
    return len;
}

/* Send all of `data` on a blocking or non-blocking socket; a stall longer
 * than timeout_ms fails the test. */
static RS__UNUSED void rs_test_send_all(int fd, const void *data, size_t len, int timeout_ms) {
    const char *p = data;
    while (len) {
        assert_true(rs_test_wait_fd(fd, POLLOUT, timeout_ms));
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Read exactly len bytes, each within timeout_ms of the last, and compare
 * them with `expected`. */
static RS__UNUSED void rs_test_expect_bytes(int fd, const void *expected, size_t len, int timeout_ms) {
    char *got = calloc(1, len + 1);
    size_t have = 0;
    assert_non_null(got);
    while (have < len) {
        if (!rs_test_wait_fd(fd, POLLIN, timeout_ms)) {
            fail_msg("timed out after %zu of %zu bytes: \"%.200s\"", have, len, got);
        }
        ssize_t n = recv(fd, got + have, len - have, 0);
        if (n <= 0) {
            fail_msg("connection ended after %zu of %zu bytes: \"%.200s\"", have, len, got);
        }
        have += (size_t)n;
    }
    assert_memory_equal(got, expected, len);
    free(got);
}
#endif /* !_WIN32 */

#endif /* RESEAU_TEST_UTIL_H */
