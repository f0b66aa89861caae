/*
 * Shared test helpers: a leak-checking allocator built on cmocka's test_malloc,
 * a fault-injecting allocator that fails the Nth allocation, and bounded
 * waits for tests that run a child process.
 *
 * Each test file is its own executable and includes reseau.h with the
 * implementation exactly once, through this header:
 *     #include "test_util.h"
 * cmocka's allocation tracking is neither thread-safe nor shared between
 * threads, and reseau allocates from loop threads: see rs_test__block_t.
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
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

/* cmocka keeps its list of test_malloc blocks in a thread-local variable: a
 * block joins the list of the thread that allocated it, test_free unlinks it
 * from there (writing into that list's head), and leaks are looked for only
 * in the list of the thread that runs the tests. A block allocated on a loop
 * or writer thread and freed after that thread ended makes test_free write
 * into the dead thread's TLS: glibc leaves it in its cached stack (silent),
 * mingw's emulated TLS frees it, so under Wine the write damages the C
 * runtime's heap and a later free() crashes (issue 13). So:
 *   - blocks allocated on the test thread (the one that ran the program's
 *     constructors) are cmocka's, and a leak fails the test that made it;
 *   - blocks allocated on any other thread come from malloc and join a list
 *     of ours, under the lock; one still there at exit fails the program
 *     (rs_test__check_thread_blocks).
 * Each block starts with a header that says which it is, so any thread may
 * free any block. */
typedef struct rs_test__block {
    struct rs_test__block *prev;
    struct rs_test__block *next;
    size_t size;
    size_t magic;
} rs_test__block_t;

/* 16 or 32 bytes: what follows keeps the alignment of what came before. */
#define RS_TEST__HEADER sizeof(rs_test__block_t)
#define RS_TEST__CMOCKA_BLOCK ((size_t)0x636d6f63u) /* "cmoc" */
#define RS_TEST__THREAD_BLOCK ((size_t)0x74687264u) /* "thrd" */
#define RS_TEST__FREED_BLOCK ((size_t)0x66726565u)  /* "free" */

static rs_thread_id_t rs_test__main_thread;
static rs_test__block_t rs_test__thread_blocks = {&rs_test__thread_blocks, &rs_test__thread_blocks, 0, 0};
static size_t rs_test__thread_block_count;

static void rs_test__check_thread_blocks(void) {
    size_t count, size;
    rs_mutex_lock(&rs_test__alloc_lock);
    count = rs_test__thread_block_count;
    size = rs_test__thread_blocks.next->size;
    rs_mutex_unlock(&rs_test__alloc_lock);
    if (count) {
        fflush(stdout);
        fprintf(stderr, "ERROR: %lu block(s) allocated off the test thread were never freed (the oldest: %lu bytes)\n",
                (unsigned long)count, (unsigned long)size);
        fflush(stderr);
        _exit(1);
    }
}

__attribute__((constructor)) static void rs_test__alloc_init(void) {
    rs_test__main_thread = rs_thread_current_id();
    atexit(rs_test__check_thread_blocks);
}

/* A bad pointer or a double free: no cmocka failure (this may be another
 * thread, where cmocka cannot unwind), just a loud stop. */
static void rs_test__bad_block(const void *ptr, const char *file, int line) {
    fflush(stdout);
    fprintf(stderr, "%s:%d: test allocator: %p is not a live block (double free, or not ours)\n", file, line, ptr);
    fflush(stderr);
    abort();
}

static void *rs_test__alloc_at(size_t size, const char *file, int line) {
    rs_test__block_t *b;
    if (size > SIZE_MAX - RS_TEST__HEADER) {
        return NULL;
    }
    rs_mutex_lock(&rs_test__alloc_lock);
    if (rs_thread_current_id() == rs_test__main_thread) {
        b = (rs_test__block_t *)_test_malloc(size + RS_TEST__HEADER, file, line);
        b->magic = RS_TEST__CMOCKA_BLOCK;
        b->prev = b->next = NULL;
    } else {
        b = (rs_test__block_t *)malloc(size + RS_TEST__HEADER);
        if (b) {
            b->magic = RS_TEST__THREAD_BLOCK;
            b->prev = rs_test__thread_blocks.prev;
            b->next = &rs_test__thread_blocks;
            b->prev->next = b;
            rs_test__thread_blocks.prev = b;
            rs_test__thread_block_count++;
        }
    }
    if (b) {
        b->size = size;
    }
    rs_mutex_unlock(&rs_test__alloc_lock);
    return b ? (void *)(b + 1) : NULL;
}

static void rs_test__free_at(void *ptr, const char *file, int line) {
    rs_test__block_t *b;
    bool bad = false;
    if (!ptr) {
        return;
    }
    b = (rs_test__block_t *)ptr - 1;
    rs_mutex_lock(&rs_test__alloc_lock);
    if (b->magic == RS_TEST__CMOCKA_BLOCK) {
        b->magic = RS_TEST__FREED_BLOCK;
        _test_free(b, file, line);
    } else if (b->magic == RS_TEST__THREAD_BLOCK) {
        b->magic = RS_TEST__FREED_BLOCK;
        b->prev->next = b->next;
        b->next->prev = b->prev;
        rs_test__thread_block_count--;
        free(b);
    } else {
        bad = true;
    }
    rs_mutex_unlock(&rs_test__alloc_lock);
    if (bad) {
        rs_test__bad_block(ptr, file, line);
    }
}

static RS__UNUSED void *rs_test__calloc_at(size_t count, size_t size, const char *file, int line) {
    void *p;
    if (size && count > SIZE_MAX / size) {
        return NULL;
    }
    p = rs_test__alloc_at(count * size, file, line);
    if (p) {
        memset(p, 0, count * size);
    }
    return p;
}

/* A new block (of the calling thread's kind) with the old one's bytes. */
static void *rs_test__realloc_at(void *ptr, size_t new_size, const char *file, int line) {
    void *p;
    size_t old_size;
    if (!ptr) {
        return rs_test__alloc_at(new_size, file, line);
    }
    if (new_size == 0) {
        rs_test__free_at(ptr, file, line);
        return NULL;
    }
    old_size = ((rs_test__block_t *)ptr - 1)->size;
    p = rs_test__alloc_at(new_size, file, line);
    if (p) {
        memcpy(p, ptr, old_size < new_size ? old_size : new_size);
        rs_test__free_at(ptr, file, line);
    }
    return p;
}

/* cmocka's own macros, through the same blocks and the same lock, so that
 * tests may mix them with the allocator below and use them on any thread. */
#undef test_malloc
#undef test_calloc
#undef test_realloc
#undef test_free
#define test_malloc(size) rs_test__alloc_at((size), __FILE__, __LINE__)
#define test_calloc(num, size) rs_test__calloc_at((num), (size), __FILE__, __LINE__)
#define test_realloc(ptr, size) rs_test__realloc_at((ptr), (size), __FILE__, __LINE__)
#define test_free(ptr) rs_test__free_at((ptr), __FILE__, __LINE__)

static void *rs_test__alloc(size_t size, void *user_data) {
    (void)user_data;
    return rs_test__alloc_at(size, __FILE__, __LINE__);
}

static void *rs_test__realloc(void *ptr, size_t old_size, size_t new_size, void *user_data) {
    (void)old_size;
    (void)user_data;
    return rs_test__realloc_at(ptr, new_size, __FILE__, __LINE__);
}

static void rs_test__free(void *ptr, void *user_data) {
    (void)user_data;
    rs_test__free_at(ptr, __FILE__, __LINE__);
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

/* First statement of a test that needs threads (a loop started on its own
 * thread, a group, other threads scheduling or calling): in the
 * RESEAU_NO_THREADS build (suite nothreads) it is skipped, saying so, since
 * all it could see there is RS_ENOTSUP. */
#if RS__NO_THREADS
#define RS_TEST_NEEDS_THREADS()                                                     \
    do {                                                                            \
        print_message("skipped: needs threads (RESEAU_NO_THREADS build)\n");       \
        skip();                                                                     \
    } while (0)
#else
#define RS_TEST_NEEDS_THREADS() ((void)0)
#endif

/* Whether `mutex` could be taken without waiting (it then is held): for
 * tests that check a mutex is held, without reaching into its OS type. */
static RS__UNUSED bool rs_test_mutex_trylock(rs_mutex_t *mutex) {
#if RS__NO_THREADS
    (void)mutex; /* nothing is ever held: the lock is a no-op */
    return true;
#elif RESEAU_OS_WINDOWS
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
#elif RS__NO_THREADS
    (void)buf;
    (void)size;
    return -1; /* no thread was named */
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
#endif /* !_WIN32 */

/* ---- Child processes and raw loopback sockets: for tests that run an
 * example as a child and talk to it over 127.0.0.1, the same on POSIX and
 * on Windows (Wine). Every wait is bounded.
 *
 * On Windows the test first calls rs_test_console_open: a console of its own
 * (under Wine, a process run from a pipe has none that takes control
 * events), which its children share, so that Ctrl+C and Ctrl+Break sent to
 * "every process on this console" (GenerateConsoleCtrlEvent with group 0)
 * reach only the test, which ignores them, and its child. The child is not
 * put in a process group of its own: CREATE_NEW_PROCESS_GROUP would make it
 * ignore Ctrl+C, the one event Wine 8 can generate. */
#if defined(_WIN32)
typedef SOCKET rs_test_sock_t;
typedef HANDLE rs_test_pipe_t;  /* the read end of a child's output */
typedef HANDLE rs_test_child_t; /* the child's process handle */
#define RS_TEST_NO_CHILD NULL
#else
typedef int rs_test_sock_t;
typedef int rs_test_pipe_t;
typedef pid_t rs_test_child_t;
#define RS_TEST_NO_CHILD ((pid_t)-1)
#endif

/* A monotonic clock in milliseconds. */
static RS__UNUSED int64_t rs_test_now_ms(void) {
    return (int64_t)(rs_clock_now_ns() / RS_NS_PER_MS);
}

#if defined(_WIN32)
/* The test's own console handler: the events it sends its child reach it too. */
static BOOL WINAPI rs_test__ignore_console_event(DWORD event) {
    return event == CTRL_C_EVENT || event == CTRL_BREAK_EVENT;
}
#endif

/* Windows: a console of the test's own (see above), and Winsock started for
 * the raw sockets. Elsewhere nothing. 0, or -1 saying why on stderr. */
static RS__UNUSED int rs_test_console_open(void) {
#if defined(_WIN32)
    WSADATA data;
    if (WSAStartup(MAKEWORD(2, 2), &data) != 0) {
        fprintf(stderr, "WSAStartup failed\n");
        return -1;
    }
    FreeConsole();
    if (!AllocConsole()) {
        fprintf(stderr, "AllocConsole failed: error %lu\n", (unsigned long)GetLastError());
        return -1;
    }
    SetConsoleCtrlHandler(NULL, FALSE); /* what children inherit: Ctrl+C not ignored */
    SetConsoleCtrlHandler(rs_test__ignore_console_event, TRUE);
#endif
    return 0;
}

static RS__UNUSED void rs_test_sock_close(rs_test_sock_t fd) {
#if defined(_WIN32)
    closesocket(fd);
#else
    close(fd);
#endif
}

static RS__UNUSED void rs_test_pipe_close(rs_test_pipe_t p) {
#if defined(_WIN32)
    CloseHandle(p);
#else
    close(p);
#endif
}

/* Wait for fd to be ready for `events` (POLLIN, POLLOUT); false on timeout. */
static RS__UNUSED bool rs_test_wait_fd(rs_test_sock_t fd, short events, int timeout_ms) {
#if defined(_WIN32)
    WSAPOLLFD p;
    p.fd = fd;
    p.events = events;
    p.revents = 0;
    return WSAPoll(&p, 1, timeout_ms) > 0;
#else
    struct pollfd p = {.fd = fd, .events = events};
    int n;
    do {
        n = poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    return n > 0;
#endif
}

/* A blocking TCP connection to 127.0.0.1:port, with Nagle off so that each
 * small write leaves at once. */
static RS__UNUSED rs_test_sock_t rs_test_connect_loopback(uint16_t port) {
    struct sockaddr_in a;
    int one = 1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rs_test_sock_t fd = socket(AF_INET, SOCK_STREAM, 0);
#if defined(_WIN32)
    assert_true(fd != INVALID_SOCKET);
#else
    assert_true(fd >= 0);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one), 0);
    return fd;
}

/* The child's exit status (POSIX: 128 + the signal if one killed it), or -1
 * if it did not exit within timeout_ms. Once it has exited, the child is
 * reaped (Windows: its handle closed). */
static RS__UNUSED int rs_test_wait_exit(rs_test_child_t child, int timeout_ms) {
#if defined(_WIN32)
    DWORD code = 0;
    if (WaitForSingleObject(child, (DWORD)timeout_ms) != WAIT_OBJECT_0 || !GetExitCodeProcess(child, &code)) {
        return -1;
    }
    CloseHandle(child);
    return (int)code;
#else
    int64_t deadline = rs_test_now_ms() + timeout_ms;
    int status;
    while (rs_test_now_ms() < deadline) {
        pid_t r = waitpid(child, &status, WNOHANG);
        if (r == child) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        rs_thread_sleep_ns(10 * RS_NS_PER_MS);
    }
    return -1;
#endif
}

/* End the child at once (SIGKILL, TerminateProcess); reap it with
 * rs_test_wait_exit. */
static RS__UNUSED void rs_test_kill(rs_test_child_t child) {
#if defined(_WIN32)
    TerminateProcess(child, 137);
#else
    kill(child, SIGKILL);
#endif
}

/* Ask the child to stop: SIGINT, or on Windows Ctrl+C to the test's console
 * (the one event Wine 8 can generate). True if it was sent. */
static RS__UNUSED bool rs_test_interrupt(rs_test_child_t child) {
#if defined(_WIN32)
    (void)child;
    return GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0) != 0;
#else
    return kill(child, SIGINT) == 0;
#endif
}

/* Run argv[0] as a child, its stdout (and stderr too if `both`) into a pipe
 * whose read end goes to *out. POSIX: the child dies with the test
 * (PR_SET_PDEATHSIG on Linux). Windows: the child inherits every inheritable
 * handle, sockets included, so a socket the child must not hold open is
 * best made after it starts. The child, or RS_TEST_NO_CHILD. */
static RS__UNUSED rs_test_child_t rs_test_spawn(char *const argv[], bool both, rs_test_pipe_t *out) {
    fflush(stdout);
    fflush(stderr);
#if defined(_WIN32)
    SECURITY_ATTRIBUTES sa;
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    HANDLE rd, wr;
    char cmd[2048];
    size_t len = 0;
    size_t i;
    BOOL ok;
    cmd[0] = '\0';
    for (i = 0; argv[i]; ++i) { /* none of the tests' arguments holds a quote */
        int n = snprintf(cmd + len, sizeof cmd - len, "%s\"%s\"", i ? " " : "", argv[i]);
        if (n < 0 || (size_t)n >= sizeof cmd - len) {
            return RS_TEST_NO_CHILD;
        }
        len += (size_t)n;
    }
    memset(&sa, 0, sizeof sa);
    sa.nLength = sizeof sa;
    sa.bInheritHandle = TRUE;
    if (!CreatePipe(&rd, &wr, &sa, 0)) {
        return RS_TEST_NO_CHILD;
    }
    SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0);
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    si.hStdOutput = wr;
    si.hStdError = both ? wr : GetStdHandle(STD_ERROR_HANDLE);
    ok = CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
    CloseHandle(wr);
    if (!ok) {
        print_message("CreateProcess(%s) failed: error %lu\n", cmd, (unsigned long)GetLastError());
        CloseHandle(rd);
        return RS_TEST_NO_CHILD;
    }
    CloseHandle(pi.hThread);
    *out = rd;
    return pi.hProcess;
#else
    int fds[2];
    if (pipe(fds) != 0) {
        return RS_TEST_NO_CHILD;
    }
    pid_t pid = fork();
    if (pid == 0) {
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        dup2(fds[1], STDOUT_FILENO);
        if (both) {
            dup2(fds[1], STDERR_FILENO);
        }
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return RS_TEST_NO_CHILD;
    }
    *out = fds[0];
    return pid;
#endif
}

/* Read from a child's output into buf (NUL-terminated) until it holds `until`
 * or the end, for at most timeout_ms. The bytes kept. On Windows the CRs
 * the C runtime's text mode puts before each LF are dropped, so that lines
 * read the same everywhere. */
static RS__UNUSED size_t rs_test_read_until(rs_test_pipe_t p, char *buf, size_t size, const char *until, int timeout_ms) {
    int64_t deadline = rs_test_now_ms() + timeout_ms;
    size_t len = 0;
    buf[0] = '\0';
    while (len < size - 1 && !strstr(buf, until)) {
        int64_t left = deadline - rs_test_now_ms();
        if (left <= 0) {
            break;
        }
#if defined(_WIN32)
        /* An anonymous pipe cannot be waited on: peek, and nap while it is empty. */
        DWORD avail = 0, n = 0;
        if (!PeekNamedPipe(p, NULL, 0, NULL, &avail, NULL)) {
            break; /* the child has gone */
        }
        if (avail == 0) {
            Sleep(10);
            continue;
        }
        if (!ReadFile(p, buf + len, (DWORD)(size - 1 - len) < avail ? (DWORD)(size - 1 - len) : avail, &n, NULL) ||
            n == 0) {
            break;
        }
        DWORD kept = 0;
        for (DWORD i = 0; i < n; ++i) {
            if (buf[len + i] != '\r') {
                buf[len + kept++] = buf[len + i];
            }
        }
        n = kept;
#else
        ssize_t n;
        struct pollfd pfd = {.fd = p, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) <= 0 || (n = read(p, buf + len, size - 1 - len)) <= 0) {
            break;
        }
#endif
        len += (size_t)n;
        buf[len] = '\0';
    }
    return len;
}

/* Send all of `data` on a blocking or non-blocking socket; a stall longer
 * than timeout_ms fails the test. */
static RS__UNUSED void rs_test_send_all(rs_test_sock_t fd, const void *data, size_t len, int timeout_ms) {
    const char *p = (const char *)data;
    while (len) {
        assert_true(rs_test_wait_fd(fd, POLLOUT, timeout_ms));
#if defined(_WIN32)
        int n = send(fd, p, (int)len, 0);
#else
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
#endif
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Read exactly len bytes, each within timeout_ms of the last, and compare
 * them with `expected`. */
static RS__UNUSED void rs_test_expect_bytes(rs_test_sock_t fd, const void *expected, size_t len, int timeout_ms) {
    char *got = (char *)calloc(1, len + 1);
    size_t have = 0;
    assert_non_null(got);
    while (have < len) {
        if (!rs_test_wait_fd(fd, POLLIN, timeout_ms)) {
            fail_msg("timed out after %zu of %zu bytes: \"%.200s\"", have, len, got);
        }
#if defined(_WIN32)
        int n = recv(fd, got + have, (int)(len - have), 0);
#else
        ssize_t n = recv(fd, got + have, len - have, 0);
#endif
        if (n <= 0) {
            fail_msg("connection ended after %zu of %zu bytes: \"%.200s\"", have, len, got);
        }
        have += (size_t)n;
    }
    assert_memory_equal(got, expected, len);
    free(got);
}

/* ---- A black hole: connects that hang, on loopback. */

/* A listener at `address` whose accept queue is full: the kernel drops the
 * SYNs of any further connect, which then hangs (the test's stand-in for an
 * unreachable address, without leaving loopback). Linux does this; Windows
 * answers such a SYN with a reset (a refusal), so on Windows the black hole
 * exists only under Wine, whose sockets are the Linux host's. Raw sockets,
 * not reseau's: the fillers must never be accepted. */
#if defined(_WIN32)
typedef SOCKET rs_test_bh_fd_t;
#define RS_TEST_BH_INVALID INVALID_SOCKET
#else
typedef int rs_test_bh_fd_t;
#define RS_TEST_BH_INVALID (-1)
#endif

typedef struct rs_test_black_hole {
    rs_test_bh_fd_t listener;
    rs_test_bh_fd_t fillers[16];
    int filler_count;
    uint16_t port; /* where it listens */
} rs_test_black_hole_t;

/* Skips the calling test, saying so, where no black hole can be made: call
 * it first, before anything is allocated. */
static RS__UNUSED void rs_test_black_hole_or_skip(void) {
#if defined(_WIN32)
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    if (!ntdll || !GetProcAddress(ntdll, "wine_get_version")) {
        print_message("skipped on Windows outside Wine: a full accept queue refuses SYNs, it does not drop them\n");
        skip();
    }
#endif
}

static RS__UNUSED void rs_test_bh_close(rs_test_bh_fd_t fd) {
#if defined(_WIN32)
    closesocket(fd);
#else
    close(fd);
#endif
}

/* A TCP socket, non-blocking if asked. */
static RS__UNUSED rs_test_bh_fd_t rs_test_bh_socket(bool nonblocking) {
#if defined(_WIN32)
    u_long on = nonblocking ? 1 : 0;
    SOCKET fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd != INVALID_SOCKET && ioctlsocket(fd, FIONBIO, &on) != 0) {
        closesocket(fd);
        fd = INVALID_SOCKET;
    }
    return fd;
#else
    return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
#endif
}

/* Connect without blocking: true once connected within 200 ms, false if the
 * connect is still pending then (its SYN was dropped). */
static RS__UNUSED bool rs_test_bh_connects(rs_test_bh_fd_t fd, const struct sockaddr_in *sa) {
#if defined(_WIN32)
    fd_set writable;
    struct timeval tv = {0, 200 * 1000};
    if (connect(fd, (const struct sockaddr *)sa, (int)sizeof(*sa)) == 0) {
        return true;
    }
    assert_int_equal(WSAGetLastError(), WSAEWOULDBLOCK);
    FD_ZERO(&writable);
    FD_SET(fd, &writable);
    return select(0, NULL, &writable, NULL, &tv) != 0;
#else
    struct pollfd pfd;
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0) {
        return true;
    }
    assert_int_equal(errno, EINPROGRESS);
    pfd.fd = fd;
    pfd.events = POLLOUT;
    pfd.revents = 0;
    return poll(&pfd, 1, 200) != 0;
#endif
}

/* Opens the black hole at ip:port (port 0: one the kernel picks, then in
 * bh->port). Close it with rs_test_black_hole_close. */
static RS__UNUSED void rs_test_black_hole_open(rs_test_black_hole_t *bh, const char *ip, uint16_t port) {
    struct sockaddr_in sa;
    socklen_t sa_len = (socklen_t)sizeof(sa);
    uint8_t addr[4];
    int one = 1;
    memset(bh, 0, sizeof(*bh));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    assert_int_equal(rs_ipv4_parse(ip, addr), RS_OK);
    memcpy(&sa.sin_addr, addr, 4);
    bh->listener = rs_test_bh_socket(false);
    assert_true(bh->listener != RS_TEST_BH_INVALID);
    setsockopt(bh->listener, SOL_SOCKET, SO_REUSEADDR, (const char *)&one, sizeof(one));
    assert_int_equal(bind(bh->listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(bh->listener, (struct sockaddr *)&sa, &sa_len), 0);
    bh->port = ntohs(sa.sin_port);
    assert_int_equal(listen(bh->listener, 0), 0);
    /* Fill the queue: connect until one does not complete at once. */
    while (bh->filler_count < 16) {
        rs_test_bh_fd_t fd = rs_test_bh_socket(true);
        assert_true(fd != RS_TEST_BH_INVALID);
        bh->fillers[bh->filler_count++] = fd;
        if (!rs_test_bh_connects(fd, &sa)) {
            return; /* this SYN was dropped: the queue is full */
        }
    }
    fail_msg("the accept queue of %s:%u never filled", ip, (unsigned)bh->port);
}

static RS__UNUSED void rs_test_black_hole_close(rs_test_black_hole_t *bh) {
    int i;
    for (i = 0; i < bh->filler_count; ++i) {
        rs_test_bh_close(bh->fillers[i]);
    }
    rs_test_bh_close(bh->listener);
}

#endif /* RESEAU_TEST_UTIL_H */
