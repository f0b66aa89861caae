/*
 * Allocation failure sweeps for the socket layer.
 *
 * For N = 1, 2, ...: the Nth allocation made through the scenario's allocator
 * fails, the scenario runs, and every step must either succeed or fail
 * cleanly with RS_ENOMEM, with nothing leaked (checked after each N). The
 * sweep stops at the first N where no failure was injected: the scenario then
 * ran fully.
 *
 *  (a) client: loop + client socket (failing allocator) connect to a raw
 *      loopback peer and echo 1 KiB.
 *  (b) server: loop + listener + accepted socket (failing allocator) serve a
 *      raw loopback client that sends 1 KiB and reads the echo. An accept that
 *      runs out of memory reports on_accept(RS_ENOMEM, NULL) and drops that
 *      connection; the listener keeps serving, so the client reconnects.
 *
 * Everything runs on the test thread (rs_event_loop_run_once); the raw peers
 * are serviced between ticks. Every wait is bounded.
 */
#include "test_util.h"

#include <errno.h>
#if !defined(_WIN32)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#define WAIT_NS (10 * RS_NS_PER_SEC)
#define SWEEP_MAX_N 2000
#define ECHO_LEN 1024
#define MAX_RECONNECTS 10

/* A scenario failing for a reason other than memory (a hang, wrong data): a
 * distinct code so the sweep reports it as unclean. */
#define SCENARIO_BROKEN RS_EUNKNOWN

/* ------------------------------------------------------------- allocator */

/* The failing allocator plus a live-block count, so a leak is pinned to the N
 * that caused it. With burst > 1, the burst - 1 allocations after the Nth
 * fail too (the inner allocator fails the Nth): a second failure while
 * recovering from the first. */
typedef struct sweep_alloc {
    rs_allocator_t allocator; /* hand this to reseau */
    rs_test_failing_alloc_t inner;
    size_t burst;
    size_t count;          /* atomic: allocations attempted */
    size_t extra_failures; /* atomic: failures injected here (after the Nth) */
    long live;             /* atomic */
} sweep_alloc_t;

/* Whether this allocation is one of the burst after the Nth. */
static bool sweep_alloc_extra_fail(sweep_alloc_t *s) {
    size_t n = __atomic_add_fetch(&s->count, 1, __ATOMIC_SEQ_CST);
    if (n > s->inner.fail_at && n < s->inner.fail_at + s->burst) {
        __atomic_add_fetch(&s->extra_failures, 1, __ATOMIC_SEQ_CST);
        return true;
    }
    return false;
}

static void *sweep_alloc_fn(size_t size, void *ud) {
    sweep_alloc_t *s = (sweep_alloc_t *)ud;
    void *p;
    if (sweep_alloc_extra_fail(s)) {
        return NULL;
    }
    p = s->inner.allocator.alloc_fn(size, s->inner.allocator.user_data);
    if (p) {
        __atomic_add_fetch(&s->live, 1, __ATOMIC_SEQ_CST);
    }
    return p;
}

static void *sweep_realloc_fn(void *ptr, size_t old_size, size_t new_size, void *ud) {
    sweep_alloc_t *s = (sweep_alloc_t *)ud;
    void *p;
    if (sweep_alloc_extra_fail(s)) {
        return NULL;
    }
    p = s->inner.allocator.realloc_fn(ptr, old_size, new_size, s->inner.allocator.user_data);
    if (p && !ptr) {
        __atomic_add_fetch(&s->live, 1, __ATOMIC_SEQ_CST);
    }
    return p;
}

static void sweep_free_fn(void *ptr, void *ud) {
    sweep_alloc_t *s = (sweep_alloc_t *)ud;
    if (ptr) {
        __atomic_sub_fetch(&s->live, 1, __ATOMIC_SEQ_CST);
    }
    s->inner.allocator.free_fn(ptr, s->inner.allocator.user_data);
}

static void sweep_alloc_init(sweep_alloc_t *s, size_t fail_at, size_t burst) {
    memset(s, 0, sizeof(*s));
    rs_test_failing_alloc_init(&s->inner, fail_at);
    s->burst = burst;
    s->allocator.alloc_fn = sweep_alloc_fn;
    s->allocator.realloc_fn = sweep_realloc_fn;
    s->allocator.free_fn = sweep_free_fn;
    s->allocator.user_data = s;
}

static long sweep_alloc_live(sweep_alloc_t *s) {
    return __atomic_load_n(&s->live, __ATOMIC_SEQ_CST);
}

static size_t sweep_alloc_failures(sweep_alloc_t *s) {
    return rs_test_failing_alloc_failures(&s->inner) + __atomic_load_n(&s->extra_failures, __ATOMIC_SEQ_CST);
}

/* A scenario returns RS_OK or the first clean error it met (RS_ENOMEM); it
 * writes a description of anything unclean into why. */
typedef int sweep_scenario_fn(const rs_allocator_t *allocator, rs_event_loop_backend_t backend, char *why,
                              size_t why_len);

static void sweep(sweep_scenario_fn *scenario, rs_event_loop_backend_t backend, size_t burst) {
    size_t n;
    size_t enomem_runs = 0;
    for (n = 1; n <= SWEEP_MAX_N; ++n) {
        sweep_alloc_t s;
        char why[256];
        int rc;
        why[0] = '\0';
        sweep_alloc_init(&s, n, burst);
        rc = scenario(&s.allocator, backend, why, sizeof(why));
        if (getenv("RS_SWEEP_VERBOSE")) {
            print_message("      fail_at=%zu: %s %s\n", n, rs_err_name(rc), why);
        }
        if (sweep_alloc_live(&s) != 0) {
            fail_msg("fail_at=%zu: %ld block(s) leaked (scenario returned %s)", n, sweep_alloc_live(&s),
                     rs_err_name(rc));
        }
        if (rc != RS_OK && rc != RS_ENOMEM) {
            fail_msg("fail_at=%zu: unclean result %s: %s", n, rs_err_name(rc), why);
        }
        if (sweep_alloc_failures(&s) == 0) {
            if (rc != RS_OK) {
                fail_msg("fail_at=%zu: no failure injected, yet the scenario returned %s", n, rs_err_name(rc));
            }
            print_message("      sweep converged: %zu allocation(s), %zu run(s) ended in RS_ENOMEM\n", n - 1,
                          enomem_runs);
            return;
        }
        if (rc == RS_ENOMEM) {
            enomem_runs++;
        }
    }
    fail_msg("the sweep did not converge within %d allocations", SWEEP_MAX_N);
}

/* ---------------------------------------------------------------- helpers */

static uint64_t now_ns(void) {
    return rs_clock_now_ns();
}

typedef bool pump_pred_fn(void *ctx);

/* Tick until pred says done or timeout_ns passes; pred may act as a peer. */
static bool pump_until(rs_event_loop_t *loop, pump_pred_fn *pred, void *ctx, uint64_t timeout_ns) {
    uint64_t deadline = now_ns() + timeout_ns;
    for (;;) {
        if (pred(ctx)) {
            return true;
        }
        if (now_ns() >= deadline) {
            return false;
        }
        rs_event_loop_run_once(loop, 2);
    }
}

static uint8_t pattern_byte(size_t offset) {
    return (uint8_t)((offset * 167u + 13u) & 0xffu);
}

/* The raw peers' socket calls: on Windows through Winsock, a SOCKET as an int
 * (as rs_socket_get_fd gives it) and its errors in errno's terms, so the
 * peers read the same on both. */
#if defined(_WIN32)
static int raw_errno(void) {
    switch (WSAGetLastError()) {
    case WSAEWOULDBLOCK:
        return EAGAIN; /* a non-blocking connect in progress too */
    case WSAENOTCONN:
        return ENOTCONN;
    default:
        return EIO;
    }
}

static int raw_socket(void) {
    u_long on = 1;
    SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (s == INVALID_SOCKET || ioctlsocket(s, FIONBIO, &on) != 0) {
        errno = raw_errno();
        if (s != INVALID_SOCKET) {
            closesocket(s);
        }
        return -1;
    }
    return (int)s;
}

static void raw_close(int fd) {
    closesocket((SOCKET)fd);
}

/* Winsock's accepted socket inherits the listener's non-blocking mode. */
static int raw_accept(int fd) {
    SOCKET s = accept((SOCKET)fd, NULL, NULL);
    return s == INVALID_SOCKET ? -1 : (int)s;
}

static long raw_recv(int fd, void *buf, size_t len) {
    int n = recv((SOCKET)fd, (char *)buf, (int)len, 0);
    if (n < 0) {
        errno = raw_errno();
    }
    return n;
}

static long raw_send(int fd, const void *buf, size_t len) {
    int n = send((SOCKET)fd, (const char *)buf, (int)len, 0);
    if (n < 0) {
        errno = raw_errno();
    }
    return n;
}
#else
static int raw_socket(void) {
    return socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

static void raw_close(int fd) {
    close(fd);
}

static int raw_accept(int fd) {
    return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

static long raw_recv(int fd, void *buf, size_t len) {
    return (long)recv(fd, buf, len, 0);
}

static long raw_send(int fd, const void *buf, size_t len) {
    return (long)send(fd, buf, len, MSG_NOSIGNAL);
}
#endif

static int raw_listener(uint16_t *port_out) {
    struct sockaddr_in sa;
    socklen_t len = (socklen_t)sizeof(sa);
    int fd = raw_socket();
    if (fd < 0) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, len) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        raw_close(fd);
        return -1;
    }
    *port_out = ntohs(sa.sin_port);
    return fd;
}

static int raw_connect_start(uint16_t port) {
    struct sockaddr_in sa;
    int fd = raw_socket();
    if (fd < 0) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
#if defined(_WIN32)
    if (connect((SOCKET)fd, (struct sockaddr *)&sa, (int)sizeof(sa)) != 0 && raw_errno() != EAGAIN) {
#else
    if (connect(fd, (struct sockaddr *)&sa, (socklen_t)sizeof(sa)) != 0 && errno != EINPROGRESS) {
#endif
        raw_close(fd);
        return -1;
    }
    return fd;
}

/* Record the first error that is not RS_ENOMEM as unclean. */
static void note_error(int *first_err, int err) {
    if (err && (*first_err == RS_OK || *first_err == RS_ENOMEM)) {
        *first_err = err;
    }
}

/* =================================================== (a) client connect */

typedef struct client_ctx {
    rs_socket_t *socket;
    int connect_calls;
    int connect_error;
    int first_err;         /* RS_OK, RS_ENOMEM, or something unclean */
    bool dead;             /* the client gave up cleanly (an RS_ENOMEM) */
    int write_calls;
    int write_error;
    size_t write_bytes;
    uint8_t out[ECHO_LEN];
    uint8_t in[ECHO_LEN + 64];
    size_t in_len;
    bool eof;
    /* the raw peer */
    int listen_fd;
    int peer_fd;
    uint8_t peer_buf[ECHO_LEN * 2];
    size_t peer_have;
    size_t peer_sent;
} client_ctx_t;

static void client_on_written(rs_socket_t *socket, int error, size_t bytes_written, void *user_data) {
    client_ctx_t *c = (client_ctx_t *)user_data;
    (void)socket;
    c->write_calls++;
    c->write_error = error;
    c->write_bytes = bytes_written;
}

static void client_on_readable(rs_socket_t *socket, int error, void *user_data) {
    client_ctx_t *c = (client_ctx_t *)user_data;
    note_error(&c->first_err, error);
    for (;;) {
        rs_byte_buf_t buf = rs_byte_buf_from_array(c->in, c->in_len, sizeof(c->in));
        int err = rs_socket_read(socket, &buf, NULL);
        if (err == RS_OK) {
            c->in_len = buf.len;
            continue;
        }
        if (err == RS_EAGAIN) {
            return;
        }
        if (err == RS_EEOF) {
            c->eof = true;
        } else {
            note_error(&c->first_err, err);
        }
        return;
    }
}

static void client_on_connect(rs_socket_t *socket, int error, void *user_data) {
    client_ctx_t *c = (client_ctx_t *)user_data;
    int err;
    c->connect_calls++;
    c->connect_error = error;
    if (error) {
        note_error(&c->first_err, error);
        c->dead = true;
        return;
    }
    err = rs_socket_subscribe_to_readable_events(socket, client_on_readable, c);
    if (!err) {
        err = rs_socket_write(socket, rs_byte_cursor_from_array(c->out, sizeof(c->out)), client_on_written, c);
    }
    if (err) {
        note_error(&c->first_err, err);
        c->dead = true;
    }
}

/* The raw echo peer, between ticks. Done when the echo is back, or the client gave up. */
static bool client_pred(void *ctx) {
    client_ctx_t *c = (client_ctx_t *)ctx;
    if (c->peer_fd < 0) {
        c->peer_fd = raw_accept(c->listen_fd);
    }
    if (c->peer_fd >= 0) {
        long n = raw_recv(c->peer_fd, c->peer_buf + c->peer_have, sizeof(c->peer_buf) - c->peer_have);
        if (n > 0) {
            c->peer_have += (size_t)n;
        }
        if (c->peer_sent < c->peer_have) {
            n = raw_send(c->peer_fd, c->peer_buf + c->peer_sent, c->peer_have - c->peer_sent);
            if (n > 0) {
                c->peer_sent += (size_t)n;
            }
        }
    }
    if (c->dead || (c->first_err != RS_OK && c->first_err != RS_ENOMEM)) {
        return true;
    }
    return c->connect_calls > 0 && c->write_calls > 0 && (c->in_len >= ECHO_LEN || c->eof);
}

static int client_scenario(const rs_allocator_t *allocator, rs_event_loop_backend_t backend, char *why,
                           size_t why_len) {
    static client_ctx_t c;
    rs_event_loop_options_t lopts;
    rs_socket_options_t sopts;
    rs_event_loop_t *loop;
    rs_endpoint_t ep;
    uint16_t port = 0;
    int err = 1;
    size_t i;
    int rc = RS_OK;

    memset(&c, 0, sizeof(c));
    c.peer_fd = -1;
    for (i = 0; i < ECHO_LEN; ++i) {
        c.out[i] = pattern_byte(i);
    }
    memset(&lopts, 0, sizeof(lopts));
    lopts.allocator = allocator;
    lopts.backend = backend;
    loop = rs_event_loop_new(&lopts, &err);
    if (!loop) {
        snprintf(why, why_len, "rs_event_loop_new failed");
        return err;
    }
    c.listen_fd = raw_listener(&port);
    if (c.listen_fd < 0) {
        rs_event_loop_destroy(loop);
        snprintf(why, why_len, "raw listener: %s", strerror(errno));
        return SCENARIO_BROKEN;
    }
    memset(&sopts, 0, sizeof(sopts));
    sopts.allocator = allocator;
    c.socket = rs_socket_new(&sopts, &err);
    if (!c.socket) {
        snprintf(why, why_len, "rs_socket_new failed");
        rc = err;
        goto out;
    }
    rs_endpoint_from_ip(&ep, "127.0.0.1", port);
    err = rs_socket_connect(c.socket, &ep, loop, client_on_connect, &c);
    if (err) {
        snprintf(why, why_len, "rs_socket_connect failed");
        rc = err;
        goto out;
    }
    if (c.connect_calls != 0) {
        snprintf(why, why_len, "on_connect ran inside rs_socket_connect");
        rc = SCENARIO_BROKEN;
        goto out;
    }
    if (!pump_until(loop, client_pred, &c, WAIT_NS)) {
        snprintf(why, why_len, "stuck: connect %d/%s, write %d, echoed %zu/%d", c.connect_calls,
                 rs_err_name(c.connect_error), c.write_calls, c.in_len, ECHO_LEN);
        rc = SCENARIO_BROKEN;
        goto out;
    }
    rc = c.first_err;
    if (rc == RS_OK && !c.dead) {
        if (c.write_error != RS_OK || c.write_bytes != ECHO_LEN || c.write_calls != 1) {
            snprintf(why, why_len, "write completion %d x %s, %zu bytes", c.write_calls, rs_err_name(c.write_error),
                     c.write_bytes);
            rc = c.write_error ? c.write_error : SCENARIO_BROKEN;
        } else if (c.in_len != ECHO_LEN || memcmp(c.in, c.out, ECHO_LEN) != 0) {
            snprintf(why, why_len, "echo mismatch (%zu bytes, eof %d)", c.in_len, (int)c.eof);
            rc = SCENARIO_BROKEN;
        }
    } else if (rc != RS_OK) {
        snprintf(why, why_len, "first error %s", rs_err_name(rc));
    }
out:
    if (c.socket) {
        rs_socket_destroy(c.socket);
        c.socket = NULL;
    }
    /* Destroying the loop delivers what is still in flight (RS_ECANCELED). */
    rs_event_loop_destroy(loop);
    if (c.peer_fd >= 0) {
        raw_close(c.peer_fd);
    }
    raw_close(c.listen_fd);
    if (rc == RS_OK && c.connect_calls != 1) {
        snprintf(why, why_len, "on_connect fired %d times", c.connect_calls);
        rc = SCENARIO_BROKEN;
    }
    return rc;
}

static void socket_alloc_sweep_client_connect_echo(rs_event_loop_backend_t backend) {
    sweep(client_scenario, backend, 1);
}

/* Two consecutive allocations fail: recovery paths meet a second failure. */
static void socket_alloc_sweep_client_connect_echo_double_fault(rs_event_loop_backend_t backend) {
    sweep(client_scenario, backend, 2);
}

RS_TEST_PER_BACKEND(, socket_alloc_sweep_client_connect_echo)
RS_TEST_PER_BACKEND(, socket_alloc_sweep_client_connect_echo_double_fault)

/* ============================= (a') client bulk write, no reader subscribed */

/* A write larger than the socket buffers, on a socket with no readable
 * subscription: the first sendmsg is partial, so the socket must subscribe
 * for WRITABLE from inside rs_socket_write's flush. */
#define BULK_LEN ((size_t)8 * 1024 * 1024)

typedef struct bulk_ctx {
    rs_socket_t *socket;
    int connect_calls;
    int connect_error;
    int write_err;      /* what rs_socket_write returned */
    int write_calls;
    int write_error;
    size_t write_bytes;
    uint8_t *out;
    int listen_fd;
    int peer_fd;
    size_t peer_read;
    bool bad_data;
    uint8_t peer_buf[65536];
} bulk_ctx_t;

static void bulk_on_written(rs_socket_t *socket, int error, size_t bytes_written, void *user_data) {
    bulk_ctx_t *b = (bulk_ctx_t *)user_data;
    (void)socket;
    b->write_calls++;
    b->write_error = error;
    b->write_bytes = bytes_written;
}

static void bulk_on_connect(rs_socket_t *socket, int error, void *user_data) {
    bulk_ctx_t *b = (bulk_ctx_t *)user_data;
    b->connect_calls++;
    b->connect_error = error;
    if (!error) {
        b->write_err = rs_socket_write(socket, rs_byte_cursor_from_array(b->out, BULK_LEN), bulk_on_written, b);
    }
}

static bool bulk_pred(void *ctx) {
    bulk_ctx_t *b = (bulk_ctx_t *)ctx;
    if (b->peer_fd < 0) {
        b->peer_fd = raw_accept(b->listen_fd);
    }
    if (b->peer_fd >= 0) {
        for (;;) {
            long n = raw_recv(b->peer_fd, b->peer_buf, sizeof(b->peer_buf));
            size_t i;
            if (n <= 0) {
                break;
            }
            for (i = 0; i < (size_t)n; ++i) {
                if (b->peer_buf[i] != pattern_byte(b->peer_read + i)) {
                    b->bad_data = true;
                }
            }
            b->peer_read += (size_t)n;
        }
    }
    if (b->connect_calls > 0 && (b->connect_error || b->write_err)) {
        return true;
    }
    return b->write_calls > 0 && (b->write_error || b->peer_read >= BULK_LEN);
}

static int bulk_scenario(const rs_allocator_t *allocator, rs_event_loop_backend_t backend, char *why,
                         size_t why_len) {
    static bulk_ctx_t b;
    static uint8_t *out;
    rs_event_loop_options_t lopts;
    rs_socket_options_t sopts;
    rs_event_loop_t *loop;
    rs_endpoint_t ep;
    uint16_t port = 0;
    int err = 1;
    size_t i;
    int rc = RS_OK;

    if (!out) {
        out = (uint8_t *)malloc(BULK_LEN); /* test data, kept for the whole run */
        if (!out) {
            snprintf(why, why_len, "malloc");
            return SCENARIO_BROKEN;
        }
        for (i = 0; i < BULK_LEN; ++i) {
            out[i] = pattern_byte(i);
        }
    }
    memset(&b, 0, sizeof(b));
    b.out = out;
    b.peer_fd = -1;
    memset(&lopts, 0, sizeof(lopts));
    lopts.allocator = allocator;
    lopts.backend = backend;
    loop = rs_event_loop_new(&lopts, &err);
    if (!loop) {
        snprintf(why, why_len, "rs_event_loop_new failed");
        return err;
    }
    b.listen_fd = raw_listener(&port);
    if (b.listen_fd < 0) {
        rs_event_loop_destroy(loop);
        snprintf(why, why_len, "raw listener: %s", strerror(errno));
        return SCENARIO_BROKEN;
    }
    memset(&sopts, 0, sizeof(sopts));
    sopts.allocator = allocator;
    sopts.send_buffer_size = 64 * 1024; /* so that the first sendmsg is partial */
    b.socket = rs_socket_new(&sopts, &err);
    if (!b.socket) {
        snprintf(why, why_len, "rs_socket_new failed");
        rc = err;
        goto out;
    }
    rs_endpoint_from_ip(&ep, "127.0.0.1", port);
    err = rs_socket_connect(b.socket, &ep, loop, bulk_on_connect, &b);
    if (err) {
        snprintf(why, why_len, "rs_socket_connect failed");
        rc = err;
        goto out;
    }
    if (!pump_until(loop, bulk_pred, &b, WAIT_NS)) {
        snprintf(why, why_len, "stuck: connect %d/%s, write %s, %d completion(s), peer got %zu/%zu, pending %zu",
                 b.connect_calls, rs_err_name(b.connect_error), rs_err_name(b.write_err), b.write_calls,
                 b.peer_read, BULK_LEN, rs_socket_get_pending_write_bytes(b.socket));
        rc = SCENARIO_BROKEN;
        goto out;
    }
    if (b.connect_error) {
        rc = b.connect_error;
        snprintf(why, why_len, "on_connect(%s)", rs_err_name(rc));
    } else if (b.write_err) {
        rc = b.write_err;
        snprintf(why, why_len, "rs_socket_write: %s", rs_err_name(rc));
    } else if (b.write_error) {
        rc = b.write_error;
        snprintf(why, why_len, "write completed with %s", rs_err_name(rc));
    } else if (b.write_calls != 1 || b.write_bytes != BULK_LEN || b.peer_read != BULK_LEN || b.bad_data) {
        snprintf(why, why_len, "%d completion(s), %zu bytes written, peer got %zu%s", b.write_calls, b.write_bytes,
                 b.peer_read, b.bad_data ? " (corrupt)" : "");
        rc = SCENARIO_BROKEN;
    }
out:
    if (b.socket) {
        rs_socket_destroy(b.socket);
        b.socket = NULL;
    }
    rs_event_loop_destroy(loop);
    if (b.peer_fd >= 0) {
        raw_close(b.peer_fd);
    }
    raw_close(b.listen_fd);
    return rc;
}

static void socket_alloc_sweep_client_bulk_write(rs_event_loop_backend_t backend) {
    sweep(bulk_scenario, backend, 1);
}

RS_TEST_PER_BACKEND(, socket_alloc_sweep_client_bulk_write)

/* ============================================= (b) server listen/accept */

typedef struct server_ctx {
    rs_event_loop_t *loop;
    rs_socket_t *listener;
    rs_socket_t *conn;       /* the current accepted connection */
    int first_err;           /* RS_OK, RS_ENOMEM, or something unclean */
    int accepts;
    int accept_enomem;
    int conn_failures;       /* connections dropped after an RS_ENOMEM */
    uint8_t srv_buf[ECHO_LEN * 2];
    size_t srv_len;
    int srv_writes;
    int srv_write_completions;
    /* the raw client */
    uint16_t port;
    int client_fd;
    int attempts;
    uint8_t out[ECHO_LEN];
    size_t sent;
    uint8_t in[ECHO_LEN + 64];
    size_t in_len;
    bool broken;             /* too many reconnects, or a raw socket error */
} server_ctx_t;

static void server_drop_conn(server_ctx_t *s, int err) {
    note_error(&s->first_err, err);
    if (err == RS_ENOMEM) {
        s->conn_failures++;
    }
    if (s->conn) {
        rs_socket_destroy(s->conn);
        s->conn = NULL;
    }
}

static void server_on_written(rs_socket_t *socket, int error, size_t bytes_written, void *user_data) {
    server_ctx_t *s = (server_ctx_t *)user_data;
    (void)socket;
    (void)bytes_written;
    s->srv_write_completions++;
    if (error != RS_OK && error != RS_ECANCELED && error != RS_ECONNRESET && error != RS_EPIPE) {
        note_error(&s->first_err, error);
    }
}

static void server_on_readable(rs_socket_t *socket, int error, void *user_data) {
    server_ctx_t *s = (server_ctx_t *)user_data;
    (void)error;
    for (;;) {
        rs_byte_buf_t buf = rs_byte_buf_from_array(s->srv_buf, s->srv_len, sizeof(s->srv_buf));
        size_t start = s->srv_len;
        int err = rs_socket_read(socket, &buf, NULL);
        if (err == RS_OK) {
            s->srv_len = buf.len;
            err = rs_socket_write(socket, rs_byte_cursor_from_array(s->srv_buf + start, buf.len - start),
                                  server_on_written, s);
            if (err) {
                server_drop_conn(s, err);
                return;
            }
            s->srv_writes++;
            continue;
        }
        if (err == RS_EAGAIN) {
            return;
        }
        /* EOF or a reset: the client gave up on this connection. */
        if (err != RS_EEOF && err != RS_ECONNRESET && err != RS_EPIPE) {
            note_error(&s->first_err, err);
        }
        server_drop_conn(s, RS_OK);
        return;
    }
}

static void server_on_accept(rs_socket_t *listener, int error, rs_socket_t *new_socket, void *user_data) {
    server_ctx_t *s = (server_ctx_t *)user_data;
    int err;
    (void)listener;
    if (error) {
        if (new_socket) {
            note_error(&s->first_err, SCENARIO_BROKEN);
            rs_socket_destroy(new_socket);
            return;
        }
        if (error == RS_ENOMEM) {
            s->accept_enomem++;
            note_error(&s->first_err, RS_ENOMEM);
        } else {
            note_error(&s->first_err, error);
        }
        return; /* the listener keeps serving */
    }
    if (!new_socket) {
        note_error(&s->first_err, SCENARIO_BROKEN);
        return;
    }
    s->accepts++;
    if (s->conn) {
        server_drop_conn(s, RS_OK); /* an older connection the client abandoned */
    }
    s->conn = new_socket;
    s->srv_len = 0;
    err = rs_socket_assign_to_loop(new_socket, s->loop);
    if (!err) {
        err = rs_socket_subscribe_to_readable_events(new_socket, server_on_readable, s);
    }
    if (err) {
        server_drop_conn(s, err);
    }
}

static void raw_client_reset(server_ctx_t *s) {
    if (s->client_fd >= 0) {
        raw_close(s->client_fd);
        s->client_fd = -1;
    }
    s->sent = 0;
    s->in_len = 0;
}

/* The raw client, between ticks: (re)connect, send 1 KiB, read the echo. */
static bool server_pred(void *ctx) {
    server_ctx_t *s = (server_ctx_t *)ctx;
    long n;
    if (s->first_err != RS_OK && s->first_err != RS_ENOMEM) {
        return true;
    }
    if (s->client_fd < 0) {
        if (s->attempts >= MAX_RECONNECTS) {
            s->broken = true;
            return true;
        }
        s->attempts++;
        s->client_fd = raw_connect_start(s->port);
        if (s->client_fd < 0) {
            s->broken = true;
            return true;
        }
    }
    if (s->sent < ECHO_LEN) {
        n = raw_send(s->client_fd, s->out + s->sent, ECHO_LEN - s->sent);
        if (n > 0) {
            s->sent += (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN) {
            raw_client_reset(s); /* the server dropped us: reconnect */
            return false;
        }
    }
    n = raw_recv(s->client_fd, s->in + s->in_len, sizeof(s->in) - s->in_len);
    if (n > 0) {
        s->in_len += (size_t)n;
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)) {
        if (s->in_len < ECHO_LEN) {
            raw_client_reset(s); /* the server dropped us: reconnect */
        }
        return false;
    }
    return s->in_len >= ECHO_LEN;
}

static int server_scenario(const rs_allocator_t *allocator, rs_event_loop_backend_t backend, char *why,
                           size_t why_len) {
    static server_ctx_t s;
    rs_event_loop_options_t lopts;
    rs_socket_options_t sopts;
    rs_endpoint_t ep;
    int err = 1;
    size_t i;
    int rc = RS_OK;

    memset(&s, 0, sizeof(s));
    s.client_fd = -1;
    for (i = 0; i < ECHO_LEN; ++i) {
        s.out[i] = pattern_byte(i + 5);
    }
    memset(&lopts, 0, sizeof(lopts));
    lopts.allocator = allocator;
    lopts.backend = backend;
    s.loop = rs_event_loop_new(&lopts, &err);
    if (!s.loop) {
        snprintf(why, why_len, "rs_event_loop_new failed");
        return err;
    }
    memset(&sopts, 0, sizeof(sopts));
    sopts.allocator = allocator;
    s.listener = rs_socket_new(&sopts, &err);
    if (!s.listener) {
        snprintf(why, why_len, "rs_socket_new failed");
        rc = err;
        goto out;
    }
    rs_endpoint_from_ip(&ep, "127.0.0.1", 0);
    err = rs_socket_bind(s.listener, &ep);
    if (!err) {
        err = rs_socket_listen(s.listener, 0);
    }
    if (!err) {
        err = rs_socket_start_accept(s.listener, s.loop, server_on_accept, &s);
    }
    if (!err) {
        err = rs_socket_get_bound_address(s.listener, &ep);
    }
    if (err) {
        snprintf(why, why_len, "listener setup failed");
        rc = err;
        goto out;
    }
    s.port = (uint16_t)ep.port;
    if (!pump_until(s.loop, server_pred, &s, WAIT_NS)) {
        snprintf(why, why_len,
                 "stuck: %d attempt(s), %d accept(s), %d accept ENOMEM, %d dropped, sent %zu, echoed %zu/%d",
                 s.attempts, s.accepts, s.accept_enomem, s.conn_failures, s.sent, s.in_len, ECHO_LEN);
        rc = SCENARIO_BROKEN;
        goto out;
    }
    if (s.broken) {
        snprintf(why, why_len, "the raw client gave up after %d attempt(s) (%d accept ENOMEM, %d dropped)",
                 s.attempts, s.accept_enomem, s.conn_failures);
        rc = SCENARIO_BROKEN;
        goto out;
    }
    rc = s.first_err;
    if (rc != RS_OK && rc != RS_ENOMEM) {
        snprintf(why, why_len, "first error %s", rs_err_name(rc));
        goto out;
    }
    if (s.in_len != ECHO_LEN || memcmp(s.in, s.out, ECHO_LEN) != 0) {
        snprintf(why, why_len, "echo mismatch (%zu bytes)", s.in_len);
        rc = SCENARIO_BROKEN;
        goto out;
    }
    snprintf(why, why_len, "(%d attempt(s), %d accept(s), %d accept ENOMEM, %d dropped)", s.attempts, s.accepts,
             s.accept_enomem, s.conn_failures);
out:
    if (s.conn) {
        rs_socket_destroy(s.conn);
        s.conn = NULL;
    }
    if (s.listener) {
        rs_socket_destroy(s.listener);
        s.listener = NULL;
    }
    rs_event_loop_destroy(s.loop);
    raw_client_reset(&s);
    return rc;
}

static void socket_alloc_sweep_server_accept_echo(rs_event_loop_backend_t backend) {
    sweep(server_scenario, backend, 1);
}

/* Two consecutive allocations fail: e.g. an accept runs out of memory, then
 * so does the listener's re-arming after the back-off. */
static void socket_alloc_sweep_server_accept_echo_double_fault(rs_event_loop_backend_t backend) {
    sweep(server_scenario, backend, 2);
}

RS_TEST_PER_BACKEND(, socket_alloc_sweep_server_accept_echo)
RS_TEST_PER_BACKEND(, socket_alloc_sweep_server_accept_echo_double_fault)

int main(void) {
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(, socket_alloc_sweep_client_connect_echo),
        RS_TEST_PER_BACKEND_TESTS(, socket_alloc_sweep_server_accept_echo),
        RS_TEST_PER_BACKEND_TESTS(, socket_alloc_sweep_client_bulk_write),
        RS_TEST_PER_BACKEND_TESTS(, socket_alloc_sweep_client_connect_echo_double_fault),
        RS_TEST_PER_BACKEND_TESTS(, socket_alloc_sweep_server_accept_echo_double_fault),
    };
#if defined(_WIN32)
    /* The raw peers may open Winsock sockets before reseau's first socket
     * starts Winsock. */
    WSADATA wsa;
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
        fprintf(stderr, "WSAStartup failed\n");
        return 1;
    }
#endif
    return cmocka_run_group_tests(tests, NULL, NULL);
}
