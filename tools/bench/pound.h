/*
 * pound.h: the pound benchmark's bookkeeping and its libuv side, shared by
 * reseau-bench-socket (pound_100, reseau on plain sockets) and
 * reseau-bench-bootstrap (pound_bootstrap, reseau through the bootstraps).
 * Include after bench_common.h.
 *
 * A client keeps `concurrency` connections to a server on 127.0.0.1 in flight:
 * once one is connected it is closed with a reset (SO_LINGER {1, 0}, set
 * through the fd, so that no TIME_WAIT piles up and the ephemeral ports stay
 * free) and a new one starts. The server closes every connection it accepts at
 * once. Figure: connections per second: POUND_COUNT of them connected and
 * closed by the client, up to when the client is done and the server has
 * accepted and closed them all. A connection the server never sees (its listen
 * queue overflowed: the kernel drops the handshake's last ACK, and the client
 * has reset the connection before the server retries) is waited for until the
 * server has been idle for IDLE_MS, which is not counted; -v shows how many.
 *
 * libuv, on one loop run by the calling thread, as libuv's own pound
 * (libuv/test/benchmark-pound.c): the server accepts into a malloc'ed uv_tcp_t
 * and uv_close()s it (the fd closes inside uv_close; the handle is freed in the
 * close callback). A client is uv_close()d in its connect callback and its
 * uv_tcp_t reused for the next connection from the close callback.
 */
#ifndef RESEAU_BENCH_POUND_H
#define RESEAU_BENCH_POUND_H

#include <netinet/in.h>
#include <sys/socket.h>

/* Connections per pound run, and how many are in flight at once. */
#define POUND_COUNT ((size_t)20000)
#define POUND_CONCURRENCY 100

/* One run's progress, either side. Single-threaded: only the thread of the
 * loop that counts touches it. */
typedef struct pound_run {
    size_t started;   /* connects begun */
    size_t connected; /* connected and closed by the client */
    size_t accepted;  /* accepted and closed by the server */
    uint64_t client_done_ns;
    uint64_t last_accept_ns;
    uint64_t end_ns;
    bool waiting_for_server; /* the client is done; the idle check runs */
    bool finished;
    idle_watch_t accept_idle;
} pound_run_t;

/* Close with a reset rather than a FIN: no TIME_WAIT is left behind. */
static inline void set_linger_reset(int fd, const char *peer) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, (socklen_t)sizeof lg) != 0) {
        fail(peer, "setsockopt(SO_LINGER) failed");
    }
}

static inline void pound_finish(pound_run_t *run) {
    run->end_ns = run->last_accept_ns > run->client_done_ns ? run->last_accept_ns : run->client_done_ns;
    run->finished = true;
}

/* After every client close and server accept. Finishes the run when both sides
 * are done; returns true when the client is done but the server is not, and
 * the idle check (every IDLE_CHECK_MS, calling pound_idle_check) must start. */
static inline bool pound_progress(pound_run_t *run) {
    if (run->finished || run->connected < POUND_COUNT) {
        return false;
    }
    if (!run->client_done_ns) {
        run->client_done_ns = bench_now_ns();
    }
    if (run->accepted == POUND_COUNT) {
        pound_finish(run);
        return false;
    }
    bool start = !run->waiting_for_server;
    run->waiting_for_server = true;
    return start;
}

/* Returns true when the run has finished. */
static inline bool pound_idle_check(pound_run_t *run) {
    if (!run->finished && idle_watch_expired(&run->accept_idle, run->accepted)) {
        pound_finish(run);
    }
    return run->finished;
}

/* Checks the counts, and returns the rate; the work for -v's CPU cost is the
 * connections (scenario work_unit "connection"). */
static inline double pound_verify(const pound_run_t *run, const char *peer, uint64_t start_ns) {
    if (run->connected != POUND_COUNT || run->accepted > POUND_COUNT) {
        fprintf(stderr, BENCH_PROGRAM ": pound/%s: %zu connected, %zu accepted, of %zu\n", peer, run->connected,
                run->accepted, POUND_COUNT);
        exit(1);
    }
    g_work = (double)POUND_COUNT;
    return per_second(POUND_COUNT, run->end_ns - start_ns);
}

/* >>pound (libuv) */

typedef struct uv_pound uv_pound_t;

typedef struct uv_pound_conn {
    uv_tcp_t tcp;
    uv_connect_t req;
    uv_pound_t *pound;
} uv_pound_conn_t;

struct uv_pound {
    pound_run_t run;
    uv_loop_t loop;
    uv_tcp_t server;
    uv_timer_t timer;
    struct sockaddr_in addr;
    uv_pound_conn_t conns[POUND_CONCURRENCY];
};

static inline void uv_pound_connect(uv_pound_conn_t *conn);

static inline void on_uv_free_handle(uv_handle_t *handle) {
    free(handle);
}

static inline void uv_pound_close_all(uv_pound_t *pound) {
    uv_close((uv_handle_t *)&pound->server, NULL);
    uv_close((uv_handle_t *)&pound->timer, NULL);
}

static inline void on_uv_pound_idle_timer(uv_timer_t *timer) {
    uv_pound_t *pound = (uv_pound_t *)timer->data;
    if (pound_idle_check(&pound->run)) {
        uv_pound_close_all(pound);
    }
}

static inline void uv_pound_progress(uv_pound_t *pound) {
    if (pound_progress(&pound->run)) {
        check_uv(uv_timer_start(&pound->timer, on_uv_pound_idle_timer, IDLE_CHECK_MS, IDLE_CHECK_MS),
                 "uv_timer_start");
    } else if (pound->run.finished && !uv_is_closing((uv_handle_t *)&pound->server)) {
        uv_pound_close_all(pound);
    }
}

static inline void on_uv_pound_connection(uv_stream_t *server, int status) {
    uv_pound_t *pound = (uv_pound_t *)server->data;
    check_uv(status, "pound/libuv: connection");
    uv_tcp_t *client = (uv_tcp_t *)malloc(sizeof(uv_tcp_t));
    if (!client) {
        fail("malloc", "out of memory");
    }
    check_uv(uv_tcp_init(&pound->loop, client), "uv_tcp_init");
    check_uv(uv_accept(server, (uv_stream_t *)client), "uv_accept");
    uv_close((uv_handle_t *)client, on_uv_free_handle);
    pound->run.accepted++;
    pound->run.last_accept_ns = bench_now_ns();
    uv_pound_progress(pound);
}

static inline void on_uv_pound_closed(uv_handle_t *handle) {
    uv_pound_conn_t *conn = (uv_pound_conn_t *)handle->data;
    uv_pound_t *pound = conn->pound;
    pound->run.connected++;
    if (pound->run.started < POUND_COUNT) {
        uv_pound_connect(conn);
    }
    uv_pound_progress(pound);
}

static inline void on_uv_pound_connect(uv_connect_t *req, int status) {
    uv_pound_conn_t *conn = (uv_pound_conn_t *)req->data;
    check_uv(status, "pound/libuv: connect");
    uv_os_fd_t fd;
    check_uv(uv_fileno((uv_handle_t *)&conn->tcp, &fd), "uv_fileno");
    set_linger_reset(fd, "pound/libuv");
    uv_close((uv_handle_t *)&conn->tcp, on_uv_pound_closed);
}

static inline void uv_pound_connect(uv_pound_conn_t *conn) {
    uv_pound_t *pound = conn->pound;
    check_uv(uv_tcp_init(&pound->loop, &conn->tcp), "uv_tcp_init");
    conn->tcp.data = conn;
    conn->req.data = conn;
    check_uv(uv_tcp_connect(&conn->req, &conn->tcp, (const struct sockaddr *)&pound->addr, on_uv_pound_connect),
             "uv_tcp_connect");
    pound->run.started++;
}

static inline double libuv_pound(int concurrency) {
    uv_pound_t *pound = (uv_pound_t *)xcalloc(1, sizeof(uv_pound_t));
    check_uv(uv_loop_init(&pound->loop), "uv_loop_init");
    check_uv(uv_tcp_init(&pound->loop, &pound->server), "uv_tcp_init");
    pound->server.data = pound;
    check_uv(uv_timer_init(&pound->loop, &pound->timer), "uv_timer_init");
    pound->timer.data = pound;
    check_uv(uv_ip4_addr("127.0.0.1", 0, &pound->addr), "uv_ip4_addr");
    check_uv(uv_tcp_bind(&pound->server, (const struct sockaddr *)&pound->addr, 0), "uv_tcp_bind");
    check_uv(uv_listen((uv_stream_t *)&pound->server, SOMAXCONN, on_uv_pound_connection), "uv_listen");
    int len = (int)sizeof pound->addr;
    check_uv(uv_tcp_getsockname(&pound->server, (struct sockaddr *)&pound->addr, &len), "uv_tcp_getsockname");

    uint64_t start = bench_now_ns();
    for (int i = 0; i < concurrency; i++) {
        pound->conns[i].pound = pound;
        uv_pound_connect(&pound->conns[i]);
    }
    check_uv(uv_run(&pound->loop, UV_RUN_DEFAULT), "uv_run");

    double rate = pound_verify(&pound->run, "libuv", start);
    snprintf(g_detail, sizeof g_detail, "%zu connections in %.1f ms, %zu never accepted", pound->run.connected,
             (double)(pound->run.end_ns - start) / 1e6, POUND_COUNT - pound->run.accepted);
    check_uv(uv_loop_close(&pound->loop), "uv_loop_close");
    free(pound);
    return rate;
}

#endif /* RESEAU_BENCH_POUND_H */
