/*
 * Helpers shared by the interop tests (test_socat.c, test_ncat.c): running a
 * real peer as a child process, and driving reseau sockets against it.
 *
 * Include after test_util.h. Everything runs on the test thread: the loop is
 * driven with rs_event_loop_run_once, so the test thread is the loop thread
 * and children are forked from a single-threaded process.
 *
 * Children run in their own process group (so the whole group, e.g. socat and
 * the `cat` it executes, can be signalled) with PR_SET_PDEATHSIG, and every
 * test's teardown (interop_teardown) kills and reaps every child it started,
 * pass or fail. Only 127.0.0.1 and Unix sockets are used; every wait is bounded.
 */
#ifndef RESEAU_INTEROP_UTIL_H
#define RESEAU_INTEROP_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define IX_WAIT_NS (20 * RS_NS_PER_SEC)
#define IX_MAX_CHILDREN 8
#define IX_MIB ((size_t)1024 * 1024)

/* The main() entries of a test made with RS_TEST_PER_BACKEND (test_util.h),
 * each variant with this file's setup and teardown. */
#define IX_PER_BACKEND_TESTS(prefix, name) RS_TEST_PER_BACKEND_TESTS_SETUP_TEARDOWN(prefix, name, ix_setup, ix_teardown)

/* ------------------------------------------------------------- children */

static pid_t ix_children[IX_MAX_CHILDREN];
static int ix_child_count;
static char ix_tmpdir[64];

/* Full path of `tool` on PATH into out; false if absent. */
static bool ix_find_tool(const char *tool, char *out, size_t out_len) {
    const char *path = getenv("PATH");
    char buf[4096];
    char *save = NULL;
    char *dir;
    if (!path || !*path) {
        path = "/usr/local/bin:/usr/bin:/bin";
    }
    snprintf(buf, sizeof(buf), "%s", path);
    for (dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        snprintf(out, out_len, "%s/%s", *dir ? dir : ".", tool);
        if (access(out, X_OK) == 0) {
            return true;
        }
    }
    return false;
}

/* Skip the test, visibly, if `tool` is missing; else its full path in out. */
#define IX_REQUIRE_TOOL(tool, out)                                                                  \
    do {                                                                                            \
        if (!ix_find_tool((tool), (out), sizeof(out))) {                                            \
            print_message("skipped: %s is not installed (Debian package %s)\n", (tool), (tool));    \
            skip();                                                                                 \
        }                                                                                           \
    } while (0)

/* Start argv[0] (a full path) with stdin from stdin_path (NULL: /dev/null),
 * stdout to /dev/null, stderr inherited. */
static pid_t ix_spawn(char *const argv[], const char *stdin_path) {
    pid_t pid;
    assert_true(ix_child_count < IX_MAX_CHILDREN);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in;
        int out;
        sigset_t none;
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1) {
            _exit(126); /* the parent is already gone */
        }
        signal(SIGPIPE, SIG_DFL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        in = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY);
        out = open("/dev/null", O_WRONLY);
        if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0) {
            _exit(125);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    setpgid(pid, pid); /* also in the parent, so a kill right away finds the group */
    ix_children[ix_child_count++] = pid;
    return pid;
}

/* Whether the child has exited; if so, *status_out gets its wait status and
 * it is no longer tracked. */
static bool ix_child_exited(pid_t pid, int *status_out) {
    int status = 0;
    pid_t r;
    int i;
    do {
        r = waitpid(pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        return false;
    }
    for (i = 0; i < ix_child_count; ++i) {
        if (ix_children[i] == pid) {
            ix_children[i] = ix_children[--ix_child_count];
            break;
        }
    }
    if (status_out) {
        *status_out = r == pid ? status : -1;
    }
    return true;
}

/* Wait (bounded) for the child to exit by itself; false if it did not. */
static bool ix_wait_child(pid_t pid, uint64_t timeout_ns, int *status_out) {
    uint64_t deadline = rs_clock_now_ns() + timeout_ns;
    while (!ix_child_exited(pid, status_out)) {
        if (rs_clock_now_ns() > deadline) {
            return false;
        }
        rs_thread_sleep_ns(5 * RS_NS_PER_MS);
    }
    return true;
}

/* Kill (SIGTERM, then SIGKILL after a grace period) and reap every child. */
static void ix_kill_all_children(void) {
    int i;
    for (i = 0; i < ix_child_count; ++i) {
        kill(-ix_children[i], SIGTERM);
        kill(ix_children[i], SIGTERM);
    }
    while (ix_child_count > 0) {
        pid_t pid = ix_children[0];
        if (!ix_wait_child(pid, 2 * RS_NS_PER_SEC, NULL)) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
            }
            ix_children[0] = ix_children[--ix_child_count];
        }
    }
}

static void ix_rm_tmpdir(void) {
    char cmd[128];
    if (!ix_tmpdir[0]) {
        return;
    }
    /* only files the test created live here */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ix_tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "warning: could not remove %s\n", ix_tmpdir);
    }
    ix_tmpdir[0] = '\0';
}

static int ix_setup(void **state) {
    (void)state;
    ix_child_count = 0;
    snprintf(ix_tmpdir, sizeof(ix_tmpdir), "/tmp/rs-interop-XXXXXX");
    if (!mkdtemp(ix_tmpdir)) {
        ix_tmpdir[0] = '\0';
        return -1;
    }
    return 0;
}

static int ix_teardown(void **state) {
    (void)state;
    ix_kill_all_children();
    ix_rm_tmpdir();
    return 0;
}

/* A port on 127.0.0.1 that was free a moment ago (bind to 0, read, close). */
static uint16_t ix_free_port(int type) {
    struct sockaddr_in sa;
    socklen_t len = (socklen_t)sizeof(sa);
    int fd = socket(AF_INET, type, 0);
    uint16_t port;
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    assert_int_not_equal(port, 0);
    return port;
}

/* ---------------------------------------------------------------- data */

static uint64_t ix_fnv1a(uint64_t h, const uint8_t *p, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}
#define IX_FNV_INIT 14695981039346656037ull

static uint8_t *ix_make_data(size_t len, uint32_t seed) {
    uint8_t *p = (uint8_t *)malloc(len);
    uint64_t x = 0x9e3779b97f4a7c15ull ^ seed;
    size_t i;
    assert_non_null(p);
    for (i = 0; i < len; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 24);
    }
    return p;
}

static void ix_write_file(const char *path, const uint8_t *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* ---------------------------------------------------------------- loops */

static rs_event_loop_t *ix_loop_new(rs_event_loop_backend_t b) {
    rs_event_loop_options_t opts;
    rs_event_loop_t *loop;
    int err = 12345;
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator;
    opts.backend = b;
    loop = rs_event_loop_new(&opts, &err);
    assert_non_null(loop);
    assert_int_equal(err, RS_OK);
    return loop;
}

static void ix_run_ticks(rs_event_loop_t *loop, int n) {
    int i;
    for (i = 0; i < n; ++i) {
        assert_int_equal(rs_event_loop_run_once(loop, 1), RS_OK);
    }
}

/* ----------------------------------------------------------- connecting */

typedef struct ix_conn {
    int calls;
    int error;
} ix_conn_t;

static void ix_on_connect(rs_socket_t *s, int error, void *user_data) {
    ix_conn_t *c = (ix_conn_t *)user_data;
    (void)s;
    c->calls++;
    c->error = error;
}

static rs_socket_t *ix_stream_new(rs_socket_domain_t domain) {
    rs_socket_options_t o;
    rs_socket_t *s;
    int err = 12345;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.domain = domain;
    o.type = RS_SOCKET_STREAM;
    o.connect_timeout_ms = 2000;
    s = rs_socket_new(&o, &err);
    assert_non_null(s);
    assert_int_equal(err, RS_OK);
    return s;
}

/* Connect to the peer the child runs, retrying while it is not listening yet. */
static rs_socket_t *ix_connect_retry(rs_event_loop_t *loop, const rs_endpoint_t *ep, pid_t child) {
    uint64_t deadline = rs_clock_now_ns() + IX_WAIT_NS;
    int attempts = 0;
    int last = RS_OK;
    for (;;) {
        rs_socket_t *s = ix_stream_new(ep->domain);
        ix_conn_t c;
        int status = 0;
        memset(&c, 0, sizeof(c));
        assert_int_equal(rs_socket_connect(s, ep, loop, ix_on_connect, &c), RS_OK);
        while (c.calls == 0 && rs_clock_now_ns() < deadline + 5 * RS_NS_PER_SEC) {
            assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
        }
        assert_int_equal(c.calls, 1);
        attempts++;
        if (c.error == RS_OK) {
            return s;
        }
        last = c.error;
        rs_socket_destroy(s);
        ix_run_ticks(loop, 1);
        if (ix_child_exited(child, &status)) {
            fail_msg("the peer exited (status 0x%x) before accepting a connection", status);
        }
        if (rs_clock_now_ns() > deadline) {
            fail_msg("could not connect to the peer after %d attempts: %s", attempts, rs_err_name(last));
        }
        rs_thread_sleep_ns(20 * RS_NS_PER_MS);
    }
}

/* --------------------------------------------------- transfers over TCP */

/* Sends `len` bytes in `chunk`-sized writes (all queued at once) and/or
 * receives into `recv` until the expected length, EOF or an error. */
typedef struct ix_xfer {
    rs_socket_t *socket;
    const uint8_t *data;
    size_t len;
    size_t chunk;
    size_t window;   /* at most this many bytes sent and not yet echoed back (0: no limit) */
    size_t next_off; /* bytes handed to rs_socket_write so far */
    size_t issued;
    size_t completions;
    size_t written;
    int write_errors;
    int write_return;
    uint8_t *recv;
    size_t recv_cap;
    size_t received;
    int eof;
    int read_error;
    int readable_errors;
} ix_xfer_t;

static void ix_xfer_init(ix_xfer_t *x, rs_socket_t *s, const uint8_t *data, size_t len, size_t expect_recv) {
    memset(x, 0, sizeof(x[0]));
    x->socket = s;
    x->data = data;
    x->len = len;
    x->chunk = 16 * 1024;
    x->recv_cap = expect_recv + 64 * 1024; /* room to notice extra bytes */
    x->recv = (uint8_t *)malloc(x->recv_cap);
    assert_non_null(x->recv);
}

static void ix_xfer_cleanup(ix_xfer_t *x) {
    free(x->recv);
    x->recv = NULL;
}

static void ix_on_written(rs_socket_t *s, int error, size_t bytes_written, void *user_data) {
    ix_xfer_t *x = (ix_xfer_t *)user_data;
    (void)s;
    x->completions++;
    x->written += bytes_written;
    if (error != RS_OK) {
        x->write_errors++;
    }
}

static void ix_on_readable(rs_socket_t *s, int error, void *user_data) {
    ix_xfer_t *x = (ix_xfer_t *)user_data;
    if (error != RS_OK) {
        x->readable_errors++;
    }
    for (;;) {
        rs_byte_buf_t buf;
        int err;
        if (x->received >= x->recv_cap) {
            return; /* far too much data; the test fails on the count */
        }
        buf = rs_byte_buf_from_array(x->recv, x->received, x->recv_cap);
        err = rs_socket_read(s, &buf, NULL);
        if (err == RS_OK) {
            x->received = buf.len;
            continue;
        }
        if (err == RS_EAGAIN) {
            return;
        }
        if (err == RS_EEOF) {
            x->eof++;
        } else {
            x->read_error = err;
        }
        return;
    }
}

/* Queue writes: everything at once, or as far as the window allows. */
static void ix_xfer_pump(ix_xfer_t *x) {
    while (x->next_off < x->len && !x->write_return &&
           (x->window == 0 || x->next_off < x->received + x->window)) {
        size_t n = x->len - x->next_off < x->chunk ? x->len - x->next_off : x->chunk;
        int err = rs_socket_write(x->socket, rs_byte_cursor_from_array(x->data + x->next_off, n), ix_on_written, x);
        if (err != RS_OK) {
            x->write_return = err;
            return;
        }
        x->next_off += n;
        x->issued++;
    }
}

/* Run the loop until the predicate holds or the peer stops making progress
 * for IX_WAIT_NS. */
static bool ix_run_xfer_until(rs_event_loop_t *loop, ix_xfer_t *x, bool (*done)(const ix_xfer_t *)) {
    uint64_t deadline = rs_clock_now_ns() + IX_WAIT_NS;
    size_t last_received = x->received;
    size_t last_completions = x->completions;
    while (!done(x)) {
        if (x->read_error || x->eof) {
            return done(x);
        }
        if (x->received != last_received || x->completions != last_completions) {
            last_received = x->received;
            last_completions = x->completions;
            deadline = rs_clock_now_ns() + IX_WAIT_NS;
        }
        if (rs_clock_now_ns() > deadline) {
            return false;
        }
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
        ix_xfer_pump(x);
    }
    return true;
}

static bool ix_echo_done(const ix_xfer_t *x) {
    return x->received >= x->len && x->next_off == x->len && x->completions == x->issued;
}

static bool ix_eof_seen(const ix_xfer_t *x) {
    return x->eof > 0;
}

/* The full echo round trip over a connected socket: `len` bytes out in 16 KiB
 * writes, the same bytes back, checked byte for byte and by checksum. With
 * window 0 every write is queued at once; otherwise at most `window` bytes are
 * out and not yet echoed. With half_close, shut the write side afterwards and
 * expect the peer to end the stream (socat does; ncat --exec drops data after
 * a half-close). */
static void ix_echo_round_trip(rs_event_loop_t *loop, rs_socket_t *s, size_t len, size_t window, bool half_close) {
    uint8_t *data = ix_make_data(len, (uint32_t)len);
    uint64_t want = ix_fnv1a(IX_FNV_INIT, data, len);
    ix_xfer_t x;
    ix_xfer_init(&x, s, data, len, len);
    x.window = window;
    assert_int_equal(rs_socket_subscribe_to_readable_events(s, ix_on_readable, &x), RS_OK);
    ix_xfer_pump(&x);
    assert_int_equal(x.write_return, RS_OK);
    assert_true(x.issued > 0);
    assert_int_equal(x.completions, 0); /* never inline */
    if (!ix_run_xfer_until(loop, &x, ix_echo_done)) {
        fail_msg("echo incomplete: queued %zu, sent %zu/%zu bytes (%zu of %zu writes done), got %zu back, eof %d, read error %s",
                 x.next_off, x.written, len, x.completions, x.issued, x.received, x.eof, rs_err_name(x.read_error));
    }
    assert_int_equal(x.write_return, RS_OK);
    assert_int_equal(x.write_errors, 0);
    assert_int_equal(x.written, len);
    assert_int_equal(x.read_error, RS_OK);
    assert_int_equal(x.readable_errors, 0);
    assert_int_equal(x.received, len);
    assert_true(ix_fnv1a(IX_FNV_INIT, x.recv, x.received) == want);
    assert_memory_equal(x.recv, data, len);
    if (half_close) {
        assert_int_equal(rs_socket_shutdown_dir(s, RS_SOCKET_DIR_WRITE), RS_OK);
        if (!ix_run_xfer_until(loop, &x, ix_eof_seen)) {
            fail_msg("no end of stream from the peer after a half-close (read error %s)", rs_err_name(x.read_error));
        }
        assert_int_equal(x.eof, 1);
        assert_int_equal(x.received, len); /* nothing extra */
    }
    rs_socket_destroy(s);
    ix_run_ticks(loop, 2);
    ix_xfer_cleanup(&x);
    free(data);
}

/* ------------------------------------------------- receiving from a peer */

typedef struct ix_acceptor {
    rs_event_loop_t *loop;
    rs_socket_t *conn;
    ix_xfer_t *x;
    int accepts;
    int accept_errors;
    int extra;
    int setup_error;
} ix_acceptor_t;

static void ix_on_accept(rs_socket_t *listener, int error, rs_socket_t *new_socket, void *user_data) {
    ix_acceptor_t *a = (ix_acceptor_t *)user_data;
    int err;
    (void)listener;
    if (error != RS_OK || !new_socket) {
        a->accept_errors++;
        return;
    }
    a->accepts++;
    if (a->conn) {
        a->extra++;
        rs_socket_destroy(new_socket);
        return;
    }
    a->conn = new_socket;
    a->x->socket = new_socket;
    err = rs_socket_assign_to_loop(new_socket, a->loop);
    if (!err) {
        err = rs_socket_subscribe_to_readable_events(new_socket, ix_on_readable, a->x);
    }
    if (err) {
        a->setup_error = err;
    }
}

/* A listener on 127.0.0.1:0 (or a Unix path); the bound endpoint in *bound. */
static rs_socket_t *ix_listen(rs_event_loop_t *loop, const rs_endpoint_t *at, ix_acceptor_t *a, rs_endpoint_t *bound) {
    rs_socket_t *l = ix_stream_new(at->domain);
    assert_int_equal(rs_socket_bind(l, at), RS_OK);
    assert_int_equal(rs_socket_listen(l, 16), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(l, bound), RS_OK);
    assert_int_equal(rs_socket_start_accept(l, loop, ix_on_accept, a), RS_OK);
    return l;
}

/* Accept one connection from the child and read everything it sends until
 * EOF; compare with `data`; expect the child to exit with status 0. */
static void ix_receive_from_child(rs_event_loop_t *loop, rs_socket_t *listener, ix_acceptor_t *a, pid_t child,
                                  const uint8_t *data, size_t len) {
    ix_xfer_t *x = a->x;
    uint64_t deadline = rs_clock_now_ns() + IX_WAIT_NS;
    int status = -1;
    while (a->accepts == 0) {
        if (rs_clock_now_ns() > deadline) {
            fail_msg("the peer never connected");
        }
        if (a->accept_errors) {
            fail_msg("accept failed");
        }
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
    }
    assert_int_equal(a->setup_error, RS_OK);
    if (!ix_run_xfer_until(loop, x, ix_eof_seen)) {
        fail_msg("no end of stream: got %zu of %zu bytes, read error %s", x->received, len,
                 rs_err_name(x->read_error));
    }
    assert_int_equal(x->read_error, RS_OK);
    assert_int_equal(x->readable_errors, 0);
    assert_int_equal(x->eof, 1);
    assert_int_equal(x->received, len);
    assert_true(ix_fnv1a(IX_FNV_INIT, x->recv, x->received) == ix_fnv1a(IX_FNV_INIT, data, len));
    assert_memory_equal(x->recv, data, len);
    assert_int_equal(a->extra, 0);
    assert_int_equal(a->accept_errors, 0);
    if (!ix_wait_child(child, IX_WAIT_NS, &status)) {
        fail_msg("the peer did not exit after sending");
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    rs_socket_destroy(a->conn);
    a->conn = NULL;
    assert_int_equal(rs_socket_close(listener), RS_OK);
    rs_socket_destroy(listener);
    ix_run_ticks(loop, 2);
}

#endif /* RESEAU_INTEROP_UTIL_H */
