/*
 * TCP fault injection: connect timeouts (inside a network namespace with an
 * nftables DROP rule, or against a full accept queue), peer resets in the
 * middle of a write, back-pressure from a peer that stops reading, a peer that
 * trickles one byte per tick, hang-ups right after accept, and a listener
 * running out of file descriptors.
 *
 * Everything runs on the test thread: the loop is driven with
 * rs_event_loop_run_once, the peers are raw non-blocking sockets serviced
 * between ticks. Every wait is bounded. Only loopback is used, or a network
 * namespace that the test creates (in a forked child) and throws away.
 *
 * Scenarios that may run in a forked child never use cmocka asserts: they
 * print what went wrong to stderr and return a status, and count their own
 * live allocations, since cmocka's leak check does not reach into the child.
 */
#include "test_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_NS (10 * RS_NS_PER_SEC)
#define CONNECT_TIMEOUT_MS 300
#define BLACKHOLE_PORT 47001

/* Scenario results. */
#define SC_PASS 0
#define SC_FAIL 1
#define SC_ANSWERED 2 /* the black hole answered: no timeout can be provoked this way */
#define CHILD_NO_NETNS 77

/* Checks usable in a forked child: report, set rc, jump to the scenario's cleanup. */
#define SCHECK(cond, msg)                                                                           \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__, #cond, msg);     \
            rc = SC_FAIL;                                                                           \
            goto out;                                                                               \
        }                                                                                           \
    } while (0)

#define SCHECK_ERR(got, want)                                                                       \
    do {                                                                                            \
        int got_ = (got);                                                                           \
        if (got_ != (want)) {                                                                       \
            fprintf(stderr, "%s:%d: %s is %s, expected %s\n", __FILE__, __LINE__, #got,            \
                    rs_err_name(got_), rs_err_name(want));                                          \
            rc = SC_FAIL;                                                                           \
            goto out;                                                                               \
        }                                                                                           \
    } while (0)

/* ------------------------------------------------------------ allocator */

/* rs_test_allocator plus a live-block count, so leaks show in a child too. */
typedef struct counting_alloc {
    rs_allocator_t allocator;
    long live; /* atomic */
} counting_alloc_t;

static void *counting_alloc_fn(size_t size, void *ud) {
    counting_alloc_t *c = (counting_alloc_t *)ud;
    void *p = rs_test_allocator.alloc_fn(size, NULL);
    if (p) {
        __atomic_add_fetch(&c->live, 1, __ATOMIC_SEQ_CST);
    }
    return p;
}

static void *counting_realloc_fn(void *ptr, size_t old_size, size_t new_size, void *ud) {
    counting_alloc_t *c = (counting_alloc_t *)ud;
    void *p = rs_test_allocator.realloc_fn(ptr, old_size, new_size, NULL);
    if (p && !ptr) {
        __atomic_add_fetch(&c->live, 1, __ATOMIC_SEQ_CST);
    }
    return p;
}

static void counting_free_fn(void *ptr, void *ud) {
    counting_alloc_t *c = (counting_alloc_t *)ud;
    if (ptr) {
        __atomic_sub_fetch(&c->live, 1, __ATOMIC_SEQ_CST);
    }
    rs_test_allocator.free_fn(ptr, NULL);
}

static void counting_alloc_init(counting_alloc_t *c) {
    memset(c, 0, sizeof(*c));
    c->allocator.alloc_fn = counting_alloc_fn;
    c->allocator.realloc_fn = counting_realloc_fn;
    c->allocator.free_fn = counting_free_fn;
    c->allocator.user_data = c;
}

static long counting_alloc_live(counting_alloc_t *c) {
    return __atomic_load_n(&c->live, __ATOMIC_SEQ_CST);
}

/* ------------------------------------------------------------- helpers */

static uint64_t now_ns(void) {
    return rs_clock_now_ns();
}

static rs_event_loop_t *new_loop(rs_event_loop_backend_t backend, const rs_allocator_t *allocator) {
    rs_event_loop_options_t opts;
    int err = 1;
    rs_event_loop_t *loop;
    memset(&opts, 0, sizeof(opts));
    opts.allocator = allocator;
    opts.backend = backend;
    loop = rs_event_loop_new(&opts, &err);
    if (!loop) {
        fprintf(stderr, "rs_event_loop_new(%s): %s\n", rs_event_loop_backend_name(backend), rs_err_name(err));
    }
    return loop;
}

/* Called between ticks; returns true when the wait is over. May act as a peer. */
typedef bool pump_pred_fn(void *ctx);

/* Tick until pred says done or timeout_ns passes. */
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

static void pump_for(rs_event_loop_t *loop, uint64_t duration_ns) {
    uint64_t deadline = now_ns() + duration_ns;
    while (now_ns() < deadline) {
        rs_event_loop_run_once(loop, 2);
    }
}

static void noop_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    (void)task;
    (void)arg;
    (void)status;
}

/* Tick with blocking waits (no polling timeout) for duration_ns: a timed task
 * bounds the wait, so the tick count reflects what the loop really does. */
static void pump_blocking_for(rs_event_loop_t *loop, uint64_t duration_ns) {
    rs_task_t wake;
    uint64_t hard_deadline = now_ns() + duration_ns + WAIT_NS;
    rs_task_init(&wake, noop_task, NULL, "test_wake");
    rs_event_loop_schedule_task_future(loop, &wake, rs_event_loop_now_ns(loop) + duration_ns);
    while (rs_task_is_scheduled(&wake) && now_ns() < hard_deadline) {
        rs_event_loop_run_once(loop, -1);
    }
    rs_event_loop_cancel_task(loop, &wake);
}

static bool count_reached(const int *count, int target) {
    return *count >= target;
}

typedef struct count_wait {
    const int *count;
    int target;
} count_wait_t;

static bool count_wait_pred(void *ctx) {
    count_wait_t *w = (count_wait_t *)ctx;
    return count_reached(w->count, w->target);
}

static bool pump_until_count(rs_event_loop_t *loop, const int *count, int target, uint64_t timeout_ns) {
    count_wait_t w;
    w.count = count;
    w.target = target;
    return pump_until(loop, count_wait_pred, &w, timeout_ns);
}

static uint8_t pattern_byte(size_t offset) {
    return (uint8_t)((offset * 131u + offset / 251u) & 0xffu);
}

static void fill_pattern(uint8_t *buf, size_t len, size_t offset) {
    size_t i;
    for (i = 0; i < len; ++i) {
        buf[i] = pattern_byte(offset + i);
    }
}

/* A raw loopback listener on an ephemeral port. rcvbuf > 0 sets SO_RCVBUF
 * (inherited by accepted sockets). Returns the fd, or -1. */
static int raw_listener(uint16_t *port_out, int rcvbuf, int backlog) {
    struct sockaddr_in sa;
    socklen_t len = (socklen_t)sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (rcvbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, (socklen_t)sizeof(rcvbuf));
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, len) != 0 || listen(fd, backlog) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        close(fd);
        return -1;
    }
    *port_out = ntohs(sa.sin_port);
    return fd;
}

/* Accept one connection (waiting at most 10 s), non-blocking. -1 on failure. */
static int raw_accept(int lfd) {
    struct pollfd p;
    p.fd = lfd;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, 10000) != 1) {
        return -1;
    }
    return accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

/* A non-blocking raw client socket connecting to 127.0.0.1:port. */
static int raw_connect_start(uint16_t port) {
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
    if (connect(fd, (struct sockaddr *)&sa, (socklen_t)sizeof(sa)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Connect-callback record. */
typedef struct connect_rec {
    int calls;
    int error;
    uint64_t at_ns;
    bool check_open;
    bool open_in_cb;
} connect_rec_t;

static void on_connect_rec(rs_socket_t *socket, int error, void *user_data) {
    connect_rec_t *rec = (connect_rec_t *)user_data;
    rec->calls++;
    rec->error = error;
    rec->at_ns = now_ns();
    if (rec->check_open) {
        rec->open_in_cb = rs_socket_is_open(socket);
    }
}

static rs_socket_t *new_tcp_socket(const rs_allocator_t *allocator, uint32_t connect_timeout_ms) {
    rs_socket_options_t opts;
    int err = 1;
    rs_socket_t *s;
    memset(&opts, 0, sizeof(opts));
    opts.allocator = allocator;
    opts.connect_timeout_ms = connect_timeout_ms;
    s = rs_socket_new(&opts, &err);
    if (!s) {
        fprintf(stderr, "rs_socket_new: %s\n", rs_err_name(err));
    }
    return s;
}

/* A reseau client connected to a raw loopback peer (cmocka asserts: test process only). */
typedef struct tcp_pair {
    rs_event_loop_t *loop;
    rs_socket_t *client;
    int listen_fd;
    int peer_fd;
} tcp_pair_t;

static void tcp_pair_open(tcp_pair_t *p, rs_event_loop_backend_t backend, const rs_socket_options_t *client_opts,
                          int peer_rcvbuf) {
    rs_socket_options_t opts;
    rs_endpoint_t ep;
    connect_rec_t rec;
    uint16_t port = 0;
    int err = 1;
    memset(p, 0, sizeof(*p));
    memset(&rec, 0, sizeof(rec));
    p->peer_fd = -1;
    p->loop = new_loop(backend, &rs_test_allocator);
    assert_non_null(p->loop);
    p->listen_fd = raw_listener(&port, peer_rcvbuf, 16);
    assert_true(p->listen_fd >= 0);
    if (client_opts) {
        opts = *client_opts;
    } else {
        memset(&opts, 0, sizeof(opts));
    }
    opts.allocator = &rs_test_allocator;
    p->client = rs_socket_new(&opts, &err);
    assert_non_null(p->client);
    assert_int_equal(err, RS_OK);
    assert_int_equal(rs_endpoint_from_ip(&ep, "127.0.0.1", port), RS_OK);
    assert_int_equal(rs_socket_connect(p->client, &ep, p->loop, on_connect_rec, &rec), RS_OK);
    assert_int_equal(rec.calls, 0);
    assert_true(pump_until_count(p->loop, &rec.calls, 1, WAIT_NS));
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.error, RS_OK);
    p->peer_fd = raw_accept(p->listen_fd);
    assert_true(p->peer_fd >= 0);
}

static void tcp_pair_close(tcp_pair_t *p) {
    if (p->client) {
        rs_socket_destroy(p->client);
        p->client = NULL;
    }
    if (p->peer_fd >= 0) {
        close(p->peer_fd);
        p->peer_fd = -1;
    }
    if (p->listen_fd >= 0) {
        close(p->listen_fd);
        p->listen_fd = -1;
    }
    if (p->loop) {
        rs_event_loop_destroy(p->loop);
        p->loop = NULL;
    }
}

/* Make sure a SIGPIPE would kill the test: default action, not blocked
 * (ignored in the portable build, see rs_test_sigpipe_setup). */
static void sigpipe_default(void) {
    rs_test_sigpipe_setup();
}

/* ===================================================== connect timeouts */

/* A scenario run against an endpoint whose SYNs go unanswered. */
typedef int blackhole_scenario_fn(rs_event_loop_backend_t backend, const rs_endpoint_t *target);

/* In the (child) process: a fresh network namespace, lo up, SYNs to
 * 127.0.0.1:BLACKHOLE_PORT dropped. */
static bool netns_blackhole_setup(void) {
    char cmd[256];
    if (unshare(CLONE_NEWNET) != 0) {
        fprintf(stderr, "      unshare(CLONE_NEWNET): %s\n", strerror(errno));
        return false;
    }
    if (system("ip link set lo up >/dev/null 2>&1") != 0) {
        fprintf(stderr, "      'ip link set lo up' failed in the new namespace\n");
        return false;
    }
    snprintf(cmd, sizeof(cmd),
             "nft add table inet rs && "
             "nft add chain inet rs in '{ type filter hook input priority 0; }' && "
             "nft add rule inet rs in ip daddr 127.0.0.1 tcp dport %d drop",
             BLACKHOLE_PORT);
    if (system(cmd) != 0) {
        fprintf(stderr, "      nft could not add the DROP rule in the new namespace\n");
        return false;
    }
    return true;
}

/* Wait for the child at most 60 s; returns its wait status, or -1 (killed). */
static int wait_child(pid_t pid) {
    uint64_t deadline = now_ns() + 60 * RS_NS_PER_SEC;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return status;
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        if (now_ns() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(10000);
    }
}

/* A listener whose accept queue is full: backlog 0 holds one connection; a
 * second raw connect stays unanswered. Returns the listener fd or -1, and the
 * raw fds to close in fill[]. */
static int full_backlog_setup(rs_endpoint_t *target, int fill[8], int *fill_count) {
    uint16_t port = 0;
    int lfd = raw_listener(&port, 0, 0);
    int i;
    bool full = false;
    *fill_count = 0;
    if (lfd < 0) {
        return -1;
    }
    for (i = 0; i < 8 && !full; ++i) {
        struct pollfd p;
        int fd = raw_connect_start(port);
        if (fd < 0) {
            break;
        }
        fill[(*fill_count)++] = fd;
        p.fd = fd;
        p.events = POLLOUT;
        p.revents = 0;
        if (poll(&p, 1, 300) == 0) {
            full = true; /* this SYN was dropped: the queue is full */
        }
    }
    if (!full || rs_endpoint_from_ip(target, "127.0.0.1", port) != RS_OK) {
        for (i = 0; i < *fill_count; ++i) {
            close(fill[i]);
        }
        *fill_count = 0;
        close(lfd);
        return -1;
    }
    return lfd;
}

/* Runs `fn` inside a throw-away network namespace (forked child) where SYNs
 * are dropped; falls back to a full accept queue in this process; skips when
 * neither gives a black hole. RS_TEST_NO_NETNS=1 forces the fallback. */
static void run_blackhole(blackhole_scenario_fn *fn, rs_event_loop_backend_t backend) {
    rs_endpoint_t target;
    int fill[8];
    int fill_count = 0;
    int lfd;
    int rc;
    int i;
    const char *no_netns = getenv("RS_TEST_NO_NETNS");
    if (!no_netns || strcmp(no_netns, "1") != 0) {
        pid_t pid;
        int status;
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            if (!netns_blackhole_setup()) {
                _exit(CHILD_NO_NETNS);
            }
            if (rs_endpoint_from_ip(&target, "127.0.0.1", BLACKHOLE_PORT) != RS_OK) {
                _exit(SC_FAIL);
            }
            rc = fn(backend, &target);
            _exit(rc);
        }
        status = wait_child(pid);
        if (status == -1) {
            fail_msg("the netns child did not finish within 60 s");
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == SC_PASS) {
            print_message("      (black hole: netns + nftables DROP rule)\n");
            return;
        }
        if (!WIFEXITED(status)) {
            fail_msg("the netns child died (signal %d)", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
        }
        if (WEXITSTATUS(status) != CHILD_NO_NETNS) {
            fail_msg("the scenario failed in the netns child (exit %d; see stderr)", WEXITSTATUS(status));
        }
        print_message("      network namespace / nftables not permitted: falling back to a full accept queue\n");
    }
    lfd = full_backlog_setup(&target, fill, &fill_count);
    if (lfd < 0) {
        print_message("      SKIP: no netns and the accept queue could not be filled: cannot provoke a timeout\n");
        skip();
        return;
    }
    rc = fn(backend, &target);
    for (i = 0; i < fill_count; ++i) {
        close(fill[i]);
    }
    close(lfd);
    if (rc == SC_ANSWERED) {
        print_message("      SKIP: the full accept queue still answered: cannot provoke a timeout\n");
        skip();
        return;
    }
    print_message("      (black hole: full accept queue)\n");
    assert_int_equal(rc, SC_PASS);
}

static int scenario_connect_timeout(rs_event_loop_backend_t backend, const rs_endpoint_t *target) {
    counting_alloc_t ca;
    rs_event_loop_t *loop = NULL;
    rs_socket_t *s = NULL;
    connect_rec_t rec;
    uint64_t t0;
    uint64_t elapsed;
    int rc = SC_PASS;
    counting_alloc_init(&ca);
    memset(&rec, 0, sizeof(rec));
    rec.check_open = true;
    loop = new_loop(backend, &ca.allocator);
    SCHECK(loop != NULL, "loop");
    s = new_tcp_socket(&ca.allocator, CONNECT_TIMEOUT_MS);
    SCHECK(s != NULL, "socket");
    t0 = now_ns();
    SCHECK_ERR(rs_socket_connect(s, target, loop, on_connect_rec, &rec), RS_OK);
    SCHECK(rec.calls == 0, "on_connect ran inside rs_socket_connect");
    SCHECK(pump_until_count(loop, &rec.calls, 1, WAIT_NS), "no on_connect within 10 s");
    if (rec.error == RS_OK || rec.error == RS_ECONNREFUSED) {
        fprintf(stderr, "      the black hole answered: %s\n", rs_err_name(rec.error));
        rc = SC_ANSWERED;
        goto out;
    }
    SCHECK_ERR(rec.error, RS_ETIMEDOUT);
    elapsed = rec.at_ns - t0;
    if (elapsed < CONNECT_TIMEOUT_MS * RS_NS_PER_MS) {
        fprintf(stderr, "timeout fired after %llu ms, before the configured %d ms\n",
                (unsigned long long)(elapsed / RS_NS_PER_MS), CONNECT_TIMEOUT_MS);
        rc = SC_FAIL;
        goto out;
    }
    SCHECK(elapsed <= WAIT_NS, "timeout fired more than 10 s late");
    SCHECK(!rec.open_in_cb, "the socket was still open in on_connect(RS_ETIMEDOUT)");
    SCHECK(!rs_socket_is_open(s), "the socket is open after a failed connect");
    pump_for(loop, 200 * RS_NS_PER_MS);
    SCHECK(rec.calls == 1, "on_connect fired more than once");
out:
    if (s) {
        rs_socket_destroy(s);
    }
    if (loop) {
        rs_event_loop_destroy(loop);
    }
    if (counting_alloc_live(&ca) != 0) {
        fprintf(stderr, "%ld block(s) leaked\n", counting_alloc_live(&ca));
        rc = SC_FAIL;
    }
    return rc;
}

/* Close (or destroy) a socket while its connect is pending: one on_connect,
 * RS_ECANCELED, and nothing at the time the timeout would have fired. */
static int scenario_timeout_canceled(rs_event_loop_backend_t backend, const rs_endpoint_t *target, bool destroy) {
    counting_alloc_t ca;
    rs_event_loop_t *loop = NULL;
    rs_socket_t *s = NULL;
    connect_rec_t rec;
    uint64_t t0;
    uint64_t end;
    int rc = SC_PASS;
    counting_alloc_init(&ca);
    memset(&rec, 0, sizeof(rec));
    rec.check_open = !destroy;
    loop = new_loop(backend, &ca.allocator);
    SCHECK(loop != NULL, "loop");
    s = new_tcp_socket(&ca.allocator, CONNECT_TIMEOUT_MS);
    SCHECK(s != NULL, "socket");
    t0 = now_ns();
    SCHECK_ERR(rs_socket_connect(s, target, loop, on_connect_rec, &rec), RS_OK);
    pump_for(loop, 50 * RS_NS_PER_MS); /* well before the timeout */
    if (rec.calls != 0 && (rec.error == RS_OK || rec.error == RS_ECONNREFUSED)) {
        fprintf(stderr, "      the black hole answered: %s\n", rs_err_name(rec.error));
        rc = SC_ANSWERED;
        goto out;
    }
    SCHECK(rec.calls == 0, "on_connect fired before the socket was closed");
    if (destroy) {
        rs_socket_destroy(s);
        s = NULL;
    } else {
        SCHECK_ERR(rs_socket_close(s), RS_OK);
        SCHECK(!rs_socket_is_open(s), "open after rs_socket_close");
    }
    SCHECK(rec.calls == 0, "on_connect ran inside rs_socket_close/destroy");
    SCHECK(pump_until_count(loop, &rec.calls, 1, WAIT_NS), "no on_connect after close");
    SCHECK_ERR(rec.error, RS_ECANCELED);
    /* Wait well past the time the timeout was due. */
    end = t0 + 2 * CONNECT_TIMEOUT_MS * RS_NS_PER_MS;
    if (now_ns() < end) {
        pump_for(loop, end - now_ns());
    }
    SCHECK(rec.calls == 1, "on_connect fired again at the timeout");
    SCHECK_ERR(rec.error, RS_ECANCELED);
    if (s) {
        SCHECK(!rs_socket_is_open(s), "open after the canceled connect");
    }
out:
    if (s) {
        rs_socket_destroy(s);
    }
    if (loop) {
        rs_event_loop_destroy(loop);
    }
    if (counting_alloc_live(&ca) != 0) {
        fprintf(stderr, "%ld block(s) leaked\n", counting_alloc_live(&ca));
        rc = SC_FAIL;
    }
    return rc;
}

static int scenario_timeout_canceled_by_close(rs_event_loop_backend_t backend, const rs_endpoint_t *target) {
    return scenario_timeout_canceled(backend, target, false);
}

static int scenario_timeout_canceled_by_destroy(rs_event_loop_backend_t backend, const rs_endpoint_t *target) {
    return scenario_timeout_canceled(backend, target, true);
}

/* Destroying the socket inside on_connect(RS_ETIMEDOUT) is safe. */
static void on_connect_destroy(rs_socket_t *socket, int error, void *user_data) {
    on_connect_rec(socket, error, user_data);
    rs_socket_destroy(socket);
}

static int scenario_timeout_destroy_in_callback(rs_event_loop_backend_t backend, const rs_endpoint_t *target) {
    counting_alloc_t ca;
    rs_event_loop_t *loop = NULL;
    rs_socket_t *s = NULL;
    connect_rec_t rec;
    uint64_t t0;
    int rc = SC_PASS;
    counting_alloc_init(&ca);
    memset(&rec, 0, sizeof(rec));
    loop = new_loop(backend, &ca.allocator);
    SCHECK(loop != NULL, "loop");
    s = new_tcp_socket(&ca.allocator, CONNECT_TIMEOUT_MS);
    SCHECK(s != NULL, "socket");
    t0 = now_ns();
    SCHECK_ERR(rs_socket_connect(s, target, loop, on_connect_destroy, &rec), RS_OK);
    s = NULL; /* on_connect destroys it */
    SCHECK(pump_until_count(loop, &rec.calls, 1, WAIT_NS), "no on_connect within 10 s");
    if (rec.error == RS_OK || rec.error == RS_ECONNREFUSED) {
        fprintf(stderr, "      the black hole answered: %s\n", rs_err_name(rec.error));
        rc = SC_ANSWERED;
        goto out;
    }
    SCHECK_ERR(rec.error, RS_ETIMEDOUT);
    SCHECK(rec.at_ns - t0 >= CONNECT_TIMEOUT_MS * RS_NS_PER_MS, "the timeout fired early");
    pump_for(loop, 100 * RS_NS_PER_MS);
    SCHECK(rec.calls == 1, "on_connect fired more than once");
out:
    if (s) {
        rs_socket_destroy(s);
    }
    if (loop) {
        rs_event_loop_destroy(loop);
    }
    if (counting_alloc_live(&ca) != 0) {
        fprintf(stderr, "%ld block(s) leaked\n", counting_alloc_live(&ca));
        rc = SC_FAIL;
    }
    return rc;
}

static void connect_timeout_destroy_in_callback(rs_event_loop_backend_t backend) {
    run_blackhole(scenario_timeout_destroy_in_callback, backend);
}

static void connect_timeout(rs_event_loop_backend_t backend) {
    run_blackhole(scenario_connect_timeout, backend);
}

static void connect_timeout_canceled_by_close(rs_event_loop_backend_t backend) {
    run_blackhole(scenario_timeout_canceled_by_close, backend);
}

static void connect_timeout_canceled_by_destroy(rs_event_loop_backend_t backend) {
    run_blackhole(scenario_timeout_canceled_by_destroy, backend);
}

RS_TEST_PER_BACKEND(, connect_timeout)
RS_TEST_PER_BACKEND(, connect_timeout_canceled_by_close)
RS_TEST_PER_BACKEND(, connect_timeout_canceled_by_destroy)
RS_TEST_PER_BACKEND(, connect_timeout_destroy_in_callback)

/* ============================================== peer reset mid-write */

typedef struct write_rec {
    int calls;
    int error;
    size_t bytes_written;
    int seq; /* completion order, from a shared counter */
} write_rec_t;

static void on_write_rec(rs_socket_t *socket, int error, size_t bytes_written, void *user_data) {
    write_rec_t *rec = (write_rec_t *)user_data;
    (void)socket;
    rec->calls++;
    rec->error = error;
    rec->bytes_written = bytes_written;
}

#define RESET_WRITE_LEN ((size_t)64 * 1024 * 1024)
#define RESET_PEER_READS ((size_t)64 * 1024)

typedef struct reset_peer {
    int fd;
    size_t read;
    uint8_t buf[16384];
    bool bad_data;
} reset_peer_t;

static bool reset_peer_read_some(void *ctx) {
    reset_peer_t *p = (reset_peer_t *)ctx;
    while (p->read < RESET_PEER_READS) {
        ssize_t n = recv(p->fd, p->buf, sizeof(p->buf), 0);
        size_t i;
        if (n <= 0) {
            break;
        }
        for (i = 0; i < (size_t)n; ++i) {
            if (p->buf[i] != pattern_byte(p->read + i)) {
                p->bad_data = true;
            }
        }
        p->read += (size_t)n;
    }
    return p->read >= RESET_PEER_READS;
}

static void peer_reset_mid_write(rs_event_loop_backend_t backend) {
    tcp_pair_t p;
    reset_peer_t peer;
    write_rec_t rec;
    write_rec_t rec2;
    struct linger lg;
    uint8_t small[16] = {0};
    uint8_t *data;
    int err;
    sigpipe_default();
    data = (uint8_t *)malloc(RESET_WRITE_LEN);
    assert_non_null(data);
    fill_pattern(data, RESET_WRITE_LEN, 0);
    tcp_pair_open(&p, backend, NULL, 0);
    memset(&rec, 0, sizeof(rec));
    memset(&rec2, 0, sizeof(rec2));
    memset(&peer, 0, sizeof(peer));
    peer.fd = p.peer_fd;

    assert_int_equal(rs_socket_write(p.client, rs_byte_cursor_from_array(data, RESET_WRITE_LEN), on_write_rec, &rec),
                     RS_OK);
    assert_int_equal(rec.calls, 0);
    /* The peer reads a little, then resets the connection. */
    assert_true(pump_until(p.loop, reset_peer_read_some, &peer, WAIT_NS));
    assert_false(peer.bad_data);
    assert_int_equal(rec.calls, 0);
    assert_true(rs_socket_get_pending_write_bytes(p.client) > 0);
    lg.l_onoff = 1;
    lg.l_linger = 0;
    assert_int_equal(setsockopt(p.peer_fd, SOL_SOCKET, SO_LINGER, &lg, (socklen_t)sizeof(lg)), 0);
    close(p.peer_fd);
    p.peer_fd = -1;

    assert_true(pump_until_count(p.loop, &rec.calls, 1, WAIT_NS));
    if (rec.error != RS_ECONNRESET && rec.error != RS_EPIPE) {
        fail_msg("the write completed with %s, expected RS_ECONNRESET or RS_EPIPE", rs_err_name(rec.error));
    }
    assert_true(rec.bytes_written >= peer.read);
    assert_true(rec.bytes_written < RESET_WRITE_LEN);
    assert_int_equal(rs_socket_get_pending_write_bytes(p.client), 0);

    /* A later write fails at once with the same error, without a callback. */
    err = rs_socket_write(p.client, rs_byte_cursor_from_array(small, sizeof(small)), on_write_rec, &rec2);
    assert_int_equal(err, rec.error);
    pump_for(p.loop, 100 * RS_NS_PER_MS);
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec2.calls, 0);
    tcp_pair_close(&p);
    free(data);
}

RS_TEST_PER_BACKEND(, peer_reset_mid_write)

/* The peer closes (a FIN, no reset): a write is taken, the peer's kernel
 * answers it with a reset, and a later write fails with RS_EPIPE (or
 * RS_ECONNRESET) instead of raising SIGPIPE, which would kill the test
 * (MSG_NOSIGNAL, SO_NOSIGPIPE, or, in the portable build on Linux, SIGPIPE
 * ignored: see rs_test_sigpipe_setup). */
static void write_after_peer_close_fails_without_sigpipe(rs_event_loop_backend_t backend) {
    tcp_pair_t p;
    write_rec_t rec;
    int writes;
    int err = RS_OK;
    sigpipe_default();
    tcp_pair_open(&p, backend, NULL, 0);
    close(p.peer_fd);
    p.peer_fd = -1;
    for (writes = 0; writes < 100 && err == RS_OK; ++writes) {
        memset(&rec, 0, sizeof(rec));
        err = rs_socket_write(p.client, rs_byte_cursor_from_cstr("x"), on_write_rec, &rec);
        if (err == RS_OK) {
            assert_true(pump_until_count(p.loop, &rec.calls, 1, WAIT_NS));
            err = rec.error;
        }
        if (err == RS_OK) {
            rs_thread_sleep_ns(RS_NS_PER_MS); /* for the reset to come back */
        }
    }
    if (err != RS_EPIPE && err != RS_ECONNRESET) {
        fail_msg("%d writes after the peer closed: %s, expected RS_EPIPE or RS_ECONNRESET", writes, rs_err_name(err));
    }
    tcp_pair_close(&p);
}
RS_TEST_PER_BACKEND(, write_after_peer_close_fails_without_sigpipe)

/* ============================================ back-pressure (no reads) */

#define BP_CHUNK ((size_t)64 * 1024)
#define BP_MAX_WRITES 512 /* 32 MiB: far more than any socket buffer here */

typedef struct bp_state {
    uint8_t *data;
    write_rec_t recs[BP_MAX_WRITES];
    int completions; /* shared sequence counter */
    int queued;
    int peer_fd;
    size_t peer_read;
    bool bad_data;
    uint8_t buf[65536];
} bp_state_t;

typedef struct bp_write_ud {
    bp_state_t *st;
    int index;
} bp_write_ud_t;

static bp_write_ud_t bp_uds[BP_MAX_WRITES];

static void bp_on_write(rs_socket_t *socket, int error, size_t bytes_written, void *user_data) {
    bp_write_ud_t *ud = (bp_write_ud_t *)user_data;
    write_rec_t *rec = &ud->st->recs[ud->index];
    (void)socket;
    rec->calls++;
    rec->error = error;
    rec->bytes_written = bytes_written;
    rec->seq = ud->st->completions++;
}

static bool bp_drain_pred(void *ctx) {
    bp_state_t *st = (bp_state_t *)ctx;
    size_t total = (size_t)st->queued * BP_CHUNK;
    for (;;) {
        ssize_t n = recv(st->peer_fd, st->buf, sizeof(st->buf), 0);
        size_t i;
        if (n <= 0) {
            break;
        }
        for (i = 0; i < (size_t)n; ++i) {
            if (st->buf[i] != pattern_byte(st->peer_read + i)) {
                st->bad_data = true;
            }
        }
        st->peer_read += (size_t)n;
    }
    return st->peer_read >= total && st->completions >= st->queued;
}

/* Every completed write lies wholly inside the bytes handed to the kernel, and
 * (once completions had a tick to run) every such write has completed. */
static void bp_check_completions(bp_state_t *st, rs_socket_t *client) {
    size_t total = (size_t)st->queued * BP_CHUNK;
    size_t pending = rs_socket_get_pending_write_bytes(client);
    size_t sent = total - pending;
    int i;
    assert_true(pending <= total);
    for (i = 0; i < st->queued; ++i) {
        size_t end = (size_t)(i + 1) * BP_CHUNK;
        if (st->recs[i].calls) {
            assert_int_equal(st->recs[i].calls, 1);
            assert_int_equal(st->recs[i].error, RS_OK);
            assert_int_equal(st->recs[i].bytes_written, BP_CHUNK);
            assert_int_equal(st->recs[i].seq, i);
            if (end > sent) {
                fail_msg("write %d completed but only %zu of its last byte's %zu offset were sent", i, sent, end);
            }
        } else if (end <= sent) {
            fail_msg("write %d was fully sent (%zu <= %zu) yet did not complete", i, end, sent);
        }
    }
}

static void peer_stops_reading(rs_event_loop_backend_t backend) {
    static bp_state_t st;
    tcp_pair_t p;
    rs_socket_options_t opts;
    uint64_t deadline;
    size_t pending;
    int i;
    memset(&st, 0, sizeof(st));
    memset(&opts, 0, sizeof(opts));
    opts.send_buffer_size = 64 * 1024;
    st.data = (uint8_t *)malloc(BP_MAX_WRITES * BP_CHUNK);
    assert_non_null(st.data);
    fill_pattern(st.data, BP_MAX_WRITES * BP_CHUNK, 0);
    tcp_pair_open(&p, backend, &opts, 64 * 1024);
    st.peer_fd = p.peer_fd;

    /* Queue writes until the kernel buffers are full and bytes stay pending. */
    deadline = now_ns() + WAIT_NS;
    for (;;) {
        assert_true(st.queued < BP_MAX_WRITES);
        assert_true(now_ns() < deadline);
        bp_uds[st.queued].st = &st;
        bp_uds[st.queued].index = st.queued;
        assert_int_equal(rs_socket_write(p.client,
                                         rs_byte_cursor_from_array(st.data + (size_t)st.queued * BP_CHUNK, BP_CHUNK),
                                         bp_on_write, &bp_uds[st.queued]),
                         RS_OK);
        st.queued++;
        pump_for(p.loop, 5 * RS_NS_PER_MS);
        if (rs_socket_get_pending_write_bytes(p.client) > 0) {
            pump_for(p.loop, 100 * RS_NS_PER_MS);
            if (rs_socket_get_pending_write_bytes(p.client) > 0) {
                break;
            }
        }
    }
    pending = rs_socket_get_pending_write_bytes(p.client);
    print_message("      %d writes of %zu bytes queued, %zu bytes still pending\n", st.queued, BP_CHUNK, pending);
    bp_check_completions(&st, p.client);
    assert_true(st.completions < st.queued);

    /* While the peer does not read, bytes stay pending and no completion runs
     * ahead of the bytes handed to the kernel. (The kernel may still take a
     * few more bytes as it compacts the peer's receive queue.) */
    pump_for(p.loop, 200 * RS_NS_PER_MS);
    assert_true(rs_socket_get_pending_write_bytes(p.client) > 0);
    assert_true(st.completions < st.queued);
    bp_check_completions(&st, p.client);

    /* The peer drains: every write completes, in order, with all its bytes. */
    assert_true(pump_until(p.loop, bp_drain_pred, &st, WAIT_NS));
    pump_for(p.loop, 20 * RS_NS_PER_MS);
    assert_false(st.bad_data);
    assert_int_equal(st.peer_read, (size_t)st.queued * BP_CHUNK);
    assert_int_equal(st.completions, st.queued);
    assert_int_equal(rs_socket_get_pending_write_bytes(p.client), 0);
    for (i = 0; i < st.queued; ++i) {
        assert_int_equal(st.recs[i].calls, 1);
        assert_int_equal(st.recs[i].seq, i);
        assert_int_equal(st.recs[i].error, RS_OK);
        assert_int_equal(st.recs[i].bytes_written, BP_CHUNK);
    }
    tcp_pair_close(&p);
    free(st.data);
}

RS_TEST_PER_BACKEND(, peer_stops_reading)

/* ================================================================ trickle */

#define TRICKLE_LEN 1000

typedef struct trickle_state {
    rs_socket_t *client;
    int peer_fd;
    size_t sent;
    uint8_t got[TRICKLE_LEN + 64];
    size_t got_len;
    int readable_calls;
    int readable_errors;
    int eof_count;
    int other_error;
    bool closed_peer;
} trickle_state_t;

static void trickle_on_readable(rs_socket_t *socket, int error, void *user_data) {
    trickle_state_t *st = (trickle_state_t *)user_data;
    st->readable_calls++;
    if (error) {
        st->readable_errors++;
    }
    for (;;) {
        rs_byte_buf_t buf = rs_byte_buf_from_array(st->got, st->got_len, sizeof(st->got));
        size_t n = 0;
        int err = rs_socket_read(socket, &buf, &n);
        if (err == RS_OK) {
            st->got_len = buf.len;
            continue;
        }
        if (err == RS_EAGAIN) {
            return;
        }
        if (err == RS_EEOF) {
            st->eof_count++;
        } else {
            st->other_error = err;
        }
        return;
    }
}

/* One byte per tick, then FIN. */
static bool trickle_pred(void *ctx) {
    trickle_state_t *st = (trickle_state_t *)ctx;
    if (st->sent < TRICKLE_LEN) {
        uint8_t b = pattern_byte(st->sent);
        if (send(st->peer_fd, &b, 1, MSG_NOSIGNAL) == 1) {
            st->sent++;
        }
    } else if (!st->closed_peer && st->got_len >= TRICKLE_LEN) {
        shutdown(st->peer_fd, SHUT_WR);
        st->closed_peer = true;
    }
    return st->eof_count > 0 || st->other_error != 0;
}

static void peer_trickles_one_byte_per_tick(rs_event_loop_backend_t backend) {
    static trickle_state_t st;
    tcp_pair_t p;
    rs_socket_options_t opts;
    size_t i;
    memset(&st, 0, sizeof(st));
    memset(&opts, 0, sizeof(opts));
    opts.tcp_nodelay = true;
    tcp_pair_open(&p, backend, &opts, 0);
    st.client = p.client;
    st.peer_fd = p.peer_fd;
    /* The peer sends with no coalescing. */
    {
        int one = 1;
        setsockopt(p.peer_fd, IPPROTO_TCP, TCP_NODELAY, &one, (socklen_t)sizeof(one));
    }
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.client, trickle_on_readable, &st), RS_OK);
    assert_true(pump_until(p.loop, trickle_pred, &st, 3 * WAIT_NS));
    assert_int_equal(st.other_error, RS_OK);
    assert_int_equal(st.eof_count, 1);
    assert_int_equal(st.sent, TRICKLE_LEN);
    assert_int_equal(st.got_len, TRICKLE_LEN);
    for (i = 0; i < TRICKLE_LEN; ++i) {
        if (st.got[i] != pattern_byte(i)) {
            fail_msg("byte %zu is 0x%02x, expected 0x%02x", i, st.got[i], pattern_byte(i));
        }
    }
    assert_int_equal(st.readable_errors, 0);
    print_message("      %d readable callbacks for %d bytes\n", st.readable_calls, TRICKLE_LEN);
    /* After EOF, no more readable callbacks. */
    i = (size_t)st.readable_calls;
    pump_for(p.loop, 50 * RS_NS_PER_MS);
    assert_int_equal(st.readable_calls, (int)i);
    assert_int_equal(st.eof_count, 1);
    tcp_pair_close(&p);
}

RS_TEST_PER_BACKEND(, peer_trickles_one_byte_per_tick)

/* The other direction: reseau writes one byte per tick, each its own write;
 * the peer gets every byte in order, and completions come in order. */
typedef struct trickle_write_state {
    rs_socket_t *client;
    int peer_fd;
    uint8_t src[TRICKLE_LEN];
    uint8_t got[TRICKLE_LEN + 64];
    size_t got_len;
    int written;
    int completions;
    int bad_completion;
    int write_error;
} trickle_write_state_t;

static void trickle_write_done(rs_socket_t *socket, int error, size_t bytes_written, void *user_data) {
    trickle_write_state_t *st = (trickle_write_state_t *)user_data;
    (void)socket;
    if (error != RS_OK || bytes_written != 1) {
        st->bad_completion++;
    }
    st->completions++;
}

static bool trickle_write_pred(void *ctx) {
    trickle_write_state_t *st = (trickle_write_state_t *)ctx;
    ssize_t n;
    if (st->written < TRICKLE_LEN && !st->write_error) {
        st->write_error = rs_socket_write(st->client, rs_byte_cursor_from_array(&st->src[st->written], 1),
                                          trickle_write_done, st);
        st->written++;
    }
    n = recv(st->peer_fd, st->got + st->got_len, sizeof(st->got) - st->got_len, 0);
    if (n > 0) {
        st->got_len += (size_t)n;
    }
    return st->write_error != 0 || (st->got_len >= TRICKLE_LEN && st->completions >= TRICKLE_LEN);
}

static void socket_trickles_one_byte_per_tick(rs_event_loop_backend_t backend) {
    static trickle_write_state_t st;
    tcp_pair_t p;
    rs_socket_options_t opts;
    memset(&st, 0, sizeof(st));
    memset(&opts, 0, sizeof(opts));
    opts.tcp_nodelay = true;
    fill_pattern(st.src, sizeof(st.src), 7);
    tcp_pair_open(&p, backend, &opts, 0);
    st.client = p.client;
    st.peer_fd = p.peer_fd;
    assert_true(pump_until(p.loop, trickle_write_pred, &st, 3 * WAIT_NS));
    assert_int_equal(st.write_error, RS_OK);
    assert_int_equal(st.completions, TRICKLE_LEN);
    assert_int_equal(st.bad_completion, 0);
    assert_int_equal(st.got_len, TRICKLE_LEN);
    assert_memory_equal(st.got, st.src, TRICKLE_LEN);
    tcp_pair_close(&p);
}

RS_TEST_PER_BACKEND(, socket_trickles_one_byte_per_tick)

/* ============================================ hang-up right after accept */

#define HANGUP_ROUNDS 10

typedef struct hangup_state {
    int accepted;
    int accept_errors;
    /* current client */
    connect_rec_t conn;
    write_rec_t wrec;
    bool write_data;
    bool subscribed;
    int cb_error;     /* first non-zero error passed to on_readable */
    int terminal;     /* what the read that ended the read side returned */
    int terminal_calls;
    int setup_error;
    size_t stray_bytes;
    uint8_t payload[16];
} hangup_state_t;

static void hangup_on_accept(rs_socket_t *listener, int error, rs_socket_t *new_socket, void *user_data) {
    hangup_state_t *st = (hangup_state_t *)user_data;
    (void)listener;
    if (error) {
        st->accept_errors++;
        return;
    }
    st->accepted++;
    rs_socket_destroy(new_socket); /* hang up at once */
}

static void hangup_on_readable(rs_socket_t *socket, int error, void *user_data) {
    hangup_state_t *st = (hangup_state_t *)user_data;
    uint8_t tmp[64];
    if (error && !st->cb_error) {
        st->cb_error = error;
    }
    for (;;) {
        rs_byte_buf_t buf = rs_byte_buf_from_array(tmp, 0, sizeof(tmp));
        int err = rs_socket_read(socket, &buf, NULL);
        if (err == RS_OK) {
            st->stray_bytes += buf.len;
            continue;
        }
        if (err == RS_EAGAIN) {
            return;
        }
        if (st->terminal_calls == 0) {
            st->terminal = err;
        }
        st->terminal_calls++;
        return;
    }
}

static void hangup_on_connect(rs_socket_t *socket, int error, void *user_data) {
    hangup_state_t *st = (hangup_state_t *)user_data;
    on_connect_rec(socket, error, &st->conn);
    if (error) {
        return;
    }
    st->setup_error = rs_socket_subscribe_to_readable_events(socket, hangup_on_readable, st);
    if (!st->setup_error) {
        st->subscribed = true;
    }
    if (!st->setup_error && st->write_data) {
        st->setup_error = rs_socket_write(socket, rs_byte_cursor_from_array(st->payload, sizeof(st->payload)),
                                          on_write_rec, &st->wrec);
    }
}

static bool hangup_done_pred(void *ctx) {
    hangup_state_t *st = (hangup_state_t *)ctx;
    if (st->conn.calls == 0) {
        return false;
    }
    if (st->conn.error != RS_OK || st->setup_error) {
        return true;
    }
    return st->terminal_calls > 0 && (!st->write_data || st->wrec.calls > 0);
}

static void hangup_during_connect_accept(rs_event_loop_backend_t backend) {
    static hangup_state_t st;
    rs_event_loop_t *loop = new_loop(backend, &rs_test_allocator);
    rs_socket_options_t opts;
    rs_socket_t *listener;
    rs_endpoint_t ep;
    int err = 1;
    int round;
    int eofs = 0;
    int resets = 0;
    assert_non_null(loop);
    memset(&st, 0, sizeof(st));
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator;
    listener = rs_socket_new(&opts, &err);
    assert_non_null(listener);
    assert_int_equal(rs_endpoint_from_ip(&ep, "127.0.0.1", 0), RS_OK);
    assert_int_equal(rs_socket_bind(listener, &ep), RS_OK);
    assert_int_equal(rs_socket_listen(listener, 0), RS_OK);
    assert_int_equal(rs_socket_start_accept(listener, loop, hangup_on_accept, &st), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(listener, &ep), RS_OK);

    for (round = 0; round < HANGUP_ROUNDS; ++round) {
        rs_socket_t *client = rs_socket_new(&opts, &err);
        int accepted_before = st.accepted;
        assert_non_null(client);
        memset(&st.conn, 0, sizeof(st.conn));
        memset(&st.wrec, 0, sizeof(st.wrec));
        st.write_data = (round % 2) == 1;
        st.subscribed = false;
        st.cb_error = 0;
        st.terminal = 0;
        st.terminal_calls = 0;
        st.setup_error = 0;
        assert_int_equal(rs_socket_connect(client, &ep, loop, hangup_on_connect, &st), RS_OK);
        if (!pump_until(loop, hangup_done_pred, &st, WAIT_NS)) {
            fail_msg("round %d: stuck (connect calls %d/%s, terminal calls %d, write calls %d)", round, st.conn.calls,
                     rs_err_name(st.conn.error), st.terminal_calls, st.wrec.calls);
        }
        assert_int_equal(st.conn.calls, 1);
        assert_int_equal(st.setup_error, RS_OK);
        if (st.conn.error != RS_OK) {
            /* The reset beat the connect completion: acceptable. */
            if (st.conn.error != RS_ECONNRESET) {
                fail_msg("round %d: on_connect(%s)", round, rs_err_name(st.conn.error));
            }
            resets++;
        } else {
            /* Linux reports an RST that follows the peer's FIN (our side in
             * CLOSE_WAIT, i.e. we wrote after the peer closed) as EPIPE. */
            if (st.terminal != RS_EEOF && st.terminal != RS_ECONNRESET && st.terminal != RS_EPIPE) {
                fail_msg("round %d: the read side ended with %s, expected RS_EEOF, RS_ECONNRESET or RS_EPIPE",
                         round, rs_err_name(st.terminal));
            }
            if (st.cb_error != RS_OK && st.cb_error != RS_ECONNRESET && st.cb_error != RS_EPIPE) {
                fail_msg("round %d: on_readable got %s", round, rs_err_name(st.cb_error));
            }
            if (!st.write_data && st.terminal != RS_EEOF) {
                fail_msg("round %d: nothing was written, yet the read side ended with %s, not RS_EEOF", round,
                         rs_err_name(st.terminal));
            }
            assert_int_equal(st.terminal_calls, 1);
            if (st.terminal == RS_EEOF) {
                eofs++;
            } else {
                resets++;
            }
            if (st.write_data) {
                assert_int_equal(st.wrec.calls, 1);
                if (st.wrec.error != RS_OK && st.wrec.error != RS_ECONNRESET && st.wrec.error != RS_EPIPE) {
                    fail_msg("round %d: write completed with %s", round, rs_err_name(st.wrec.error));
                }
            }
        }
        assert_int_equal(st.stray_bytes, 0);
        /* the listener did accept it (it may take a tick) */
        assert_true(pump_until_count(loop, &st.accepted, accepted_before + 1, WAIT_NS));
        /* Nothing else fires for this client. */
        {
            int wcalls = st.wrec.calls;
            int tcalls = st.terminal_calls;
            pump_for(loop, 20 * RS_NS_PER_MS);
            assert_int_equal(st.wrec.calls, wcalls);
            assert_int_equal(st.terminal_calls, tcalls);
            assert_int_equal(st.conn.calls, 1);
        }
        rs_socket_destroy(client);
    }
    print_message("      %d rounds: %d EOF, %d reset/EPIPE\n", HANGUP_ROUNDS, eofs, resets);
    assert_int_equal(st.accept_errors, 0);
    assert_int_equal(st.accepted, HANGUP_ROUNDS);
    rs_socket_destroy(listener);
    rs_event_loop_destroy(loop);
}

RS_TEST_PER_BACKEND(, hangup_during_connect_accept)

/* ============================================================== EMFILE */

#define EMFILE_CLIENTS 50
#define EMFILE_HEADROOM 100 /* fds between the highest open fd and the lowered limit */
#define EMFILE_MAX_DUMMIES 4096
#define EMFILE_FREE_SLOTS 2

typedef struct emfile_state {
    rs_socket_t *accepted[EMFILE_CLIENTS + 8];
    int accepted_count;
    int extra_accepts; /* beyond the array; destroyed at once */
    int emfile_calls;
    int other_errors;
    int other_error;
    int error_with_socket;
    bool count_lost; /* under valgrind: an EMFILE lost its connection */
} emfile_state_t;

static bool emfile_all_served(void *ctx) {
    emfile_state_t *st = (emfile_state_t *)ctx;
    return st->accepted_count + (st->count_lost ? st->emfile_calls : 0) >= EMFILE_CLIENTS;
}

static void emfile_on_accept(rs_socket_t *listener, int error, rs_socket_t *new_socket, void *user_data) {
    emfile_state_t *st = (emfile_state_t *)user_data;
    (void)listener;
    if (error) {
        if (new_socket) {
            st->error_with_socket++;
        }
        if (error == RS_EMFILE || error == RS_ENFILE) {
            st->emfile_calls++;
        } else {
            st->other_errors++;
            st->other_error = error;
        }
        return;
    }
    if (!new_socket) {
        st->error_with_socket++;
        return;
    }
    if (st->accepted_count < (int)(sizeof(st->accepted) / sizeof(st->accepted[0]))) {
        st->accepted[st->accepted_count++] = new_socket; /* keep it: it holds an fd */
    } else {
        st->extra_accepts++;
        rs_socket_destroy(new_socket);
    }
}

/* Valgrind emulates RLIMIT_NOFILE: the kernel's accept succeeds, then
 * valgrind closes the new fd and returns EMFILE, so each such connection is
 * lost for good (not a reseau behaviour). */
static bool running_under_valgrind(void) {
    const char *preload = getenv("LD_PRELOAD");
    return preload && strstr(preload, "vgpreload") != NULL;
}

static int highest_open_fd(void) {
    int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int highest = probe;
    int fd;
    /* Scan a generous range above the probe: fds are allocated lowest-first,
     * but earlier closes may leave holes. */
    for (fd = 0; fd < probe + 1024; ++fd) {
        if (fcntl(fd, F_GETFD) != -1) {
            highest = fd;
        }
    }
    if (probe >= 0) {
        close(probe);
    }
    return highest;
}

static void listener_emfile_keeps_serving(rs_event_loop_backend_t backend) {
    static emfile_state_t st;
    static int dummies[EMFILE_MAX_DUMMIES];
    int clients[EMFILE_CLIENTS];
    rs_event_loop_t *loop;
    rs_socket_options_t opts;
    rs_socket_t *listener;
    rs_endpoint_t ep;
    rs_event_loop_stats_t s0;
    rs_event_loop_stats_t s1;
    struct rlimit old_limit;
    struct rlimit low;
    struct sockaddr_in sa;
    int dummy_count = 0;
    int err = 1;
    int i;
    bool got_emfile;
    bool all_accepted;
    int accepted_while_short;
    uint64_t spin_ticks;

    memset(&st, 0, sizeof(st));
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old_limit), 0);
    loop = new_loop(backend, &rs_test_allocator);
    assert_non_null(loop);
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator;
    listener = rs_socket_new(&opts, &err);
    assert_non_null(listener);
    assert_int_equal(rs_endpoint_from_ip(&ep, "127.0.0.1", 0), RS_OK);
    assert_int_equal(rs_socket_bind(listener, &ep), RS_OK);
    assert_int_equal(rs_socket_listen(listener, 0), RS_OK);
    assert_int_equal(rs_socket_start_accept(listener, loop, emfile_on_accept, &st), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(listener, &ep), RS_OK);

    /* The client sockets exist before the fds run short (they connect later). */
    for (i = 0; i < EMFILE_CLIENTS; ++i) {
        clients[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(clients[i] >= 0);
    }

    low = old_limit;
    low.rlim_cur = (rlim_t)highest_open_fd() + 1 + EMFILE_HEADROOM;
    if (old_limit.rlim_cur != RLIM_INFINITY && low.rlim_cur > old_limit.rlim_cur) {
        low.rlim_cur = old_limit.rlim_cur;
    }
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    /* ---- no cmocka asserts until the limit is restored ---- */
    while (dummy_count < EMFILE_MAX_DUMMIES) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            break;
        }
        dummies[dummy_count++] = fd;
    }
    for (i = 0; i < EMFILE_FREE_SLOTS && dummy_count > 0; ++i) {
        close(dummies[--dummy_count]);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)ep.port);
    for (i = 0; i < EMFILE_CLIENTS; ++i) {
        if (connect(clients[i], (struct sockaddr *)&sa, (socklen_t)sizeof(sa)) != 0 && errno != EINPROGRESS) {
            break;
        }
    }
    got_emfile = pump_until_count(loop, &st.emfile_calls, 1, WAIT_NS);
    accepted_while_short = st.accepted_count;

    /* Spin check: while fds are short, the loop must sleep between retries. */
    rs_event_loop_get_stats(loop, &s0);
    pump_blocking_for(loop, 500 * RS_NS_PER_MS);
    rs_event_loop_get_stats(loop, &s1);
    spin_ticks = s1.ticks - s0.ticks;

    /* fds come back: the listener serves every pending connection. */
    while (dummy_count > 0) {
        close(dummies[--dummy_count]);
    }
    st.count_lost = running_under_valgrind();
    all_accepted = pump_until(loop, emfile_all_served, &st, WAIT_NS);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old_limit), 0);
    /* ---- the limit is back ---- */

    print_message("      %d accepted while short, %d EMFILE callbacks, %llu ticks in 500 ms of back-off\n",
                  accepted_while_short, st.emfile_calls, (unsigned long long)spin_ticks);
    for (i = 0; i < EMFILE_CLIENTS; ++i) {
        close(clients[i]);
    }
    for (i = 0; i < st.accepted_count; ++i) {
        rs_socket_destroy(st.accepted[i]);
    }
    rs_socket_destroy(listener);
    rs_event_loop_destroy(loop);

    assert_true(got_emfile);
    assert_true(accepted_while_short <= EMFILE_FREE_SLOTS);
    assert_int_equal(st.error_with_socket, 0);
    if (st.other_errors) {
        fail_msg("on_accept reported %d other error(s), last %s", st.other_errors, rs_err_name(st.other_error));
    }
    if (spin_ticks >= 200) {
        fail_msg("the loop spun while out of fds: %llu ticks in 500 ms", (unsigned long long)spin_ticks);
    }
    if (st.count_lost && all_accepted) {
        print_message("      valgrind: %d connection(s) lost to its emulated fd limit; %d accepted\n",
                      EMFILE_CLIENTS - st.accepted_count, st.accepted_count);
    } else {
        all_accepted = all_accepted && st.accepted_count == EMFILE_CLIENTS;
    }
    if (!all_accepted) {
        fail_msg("only %d of %d pending connections were accepted once fds came back (%d EMFILE callbacks)",
                 st.accepted_count, EMFILE_CLIENTS, st.emfile_calls);
    }
    assert_int_equal(st.extra_accepts, 0);
}

RS_TEST_PER_BACKEND(, listener_emfile_keeps_serving)

int main(void) {
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(, connect_timeout),
        RS_TEST_PER_BACKEND_TESTS(, connect_timeout_canceled_by_close),
        RS_TEST_PER_BACKEND_TESTS(, connect_timeout_canceled_by_destroy),
        RS_TEST_PER_BACKEND_TESTS(, connect_timeout_destroy_in_callback),
        RS_TEST_PER_BACKEND_TESTS(, peer_reset_mid_write),
        RS_TEST_PER_BACKEND_TESTS(, peer_stops_reading),
        RS_TEST_PER_BACKEND_TESTS(, peer_trickles_one_byte_per_tick),
        RS_TEST_PER_BACKEND_TESTS(, socket_trickles_one_byte_per_tick),
        RS_TEST_PER_BACKEND_TESTS(, hangup_during_connect_accept),
        RS_TEST_PER_BACKEND_TESTS(, listener_emfile_keeps_serving),
        RS_TEST_PER_BACKEND_TESTS(, write_after_peer_close_fails_without_sigpipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
