/*
 * reseau-bench-channel: channel pipelines over loopback TCP, reseau against libuv.
 *
 * Scenarios, after libuv's own suite (libuv/test/benchmark-ping-pongs.c and
 * benchmark-pump.c). In both runtimes the server runs on a loop thread of its
 * own and the clients on the calling thread, so client and server get a CPU
 * each, as libuv's benchmark and its helper server process do. TCP_NODELAY is
 * set on every connection, on both sides, in both runtimes.
 *
 *   ping_pongs  One connection. The client sends "PING", the server echoes it,
 *               and the client sends the next one when the whole echo is back.
 *               reseau: both ends are channels, a socket handler plus an echo
 *               handler (server) or a pinger handler (client); the echo handler
 *               hands each read message back down as the write. libuv: uv_tcp
 *               at both ends; the server is libuv's echo server (a malloc'd
 *               buffer per read, written back as is). Figure: round trips per
 *               second, PING_COUNT of them or PING_TIME_NS, whichever ends first.
 *   ping_pongs_100  The same on 100 connections at once, one ping in flight on
 *               each, from one client loop: the per-message cost of a loop
 *               with many ready sockets per tick. The clock starts when the
 *               first connection is up; PING_COUNT and PING_TIME_NS bound the
 *               sum over all of them.
 *   pump_N      N connections (1 and 100). Each client keeps PUMP_DEPTH writes
 *               of PUMP_CHUNK bytes in flight, from one buffer; the server
 *               consumes. reseau: the clients are plain rs_sockets (as libuv's
 *               are plain uv_tcp handles) and the server a channel per
 *               connection, a socket handler plus a sink handler that releases
 *               every message. libuv: a uv_tcp server reading into one 64 KiB
 *               buffer. Figure: MB/s (10^6 bytes) consumed by the server, from
 *               the moment every connection is up until PUMP_BYTES arrived or
 *               PUMP_TIME_NS passed. After pump_1, when iperf3 is installed, one
 *               3-second iperf3 run over 127.0.0.1 gives the loopback ceiling.
 *
 * Each scenario runs reseau and libuv alternately (A B A B ...), `rounds` times
 * each, and prints the median of each side and their ratio, one line per
 * scenario. Every run is bounded in count and time (BENCH_RUN_LIMIT_S: past it
 * the program stops with a message naming the run).
 *
 * Usage: reseau-bench-channel [-r ROUNDS] [-v] [-only reseau|libuv] [SCENARIO...]
 *   -r     rounds per side (default: BENCH_DEFAULT_ROUNDS)
 *   -v     print every run, with its details and the CPU time (user + system,
 *          both ends) per round trip or per MB, less noisy than the rates on a
 *          shared machine
 *   -only  run one side only, and print no table (for profiling)
 *   SCENARIO  run only these (default: all)
 */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"

#include <uv.h>

#define BENCH_PROGRAM "reseau-bench-channel"
/* Seconds one run may take before the program gives up. */
#define BENCH_RUN_LIMIT_S 10
#define BENCH_DEFAULT_ROUNDS 5
#include "bench_common.h"

#include <netinet/in.h>
#include <stdatomic.h>

/* ping_pongs: the message, and the bounds of one run. */
#define PING_MESSAGE "PING"
#define PING_LEN (sizeof(PING_MESSAGE) - 1)
#define PING_COUNT ((size_t)200000)
#define PING_TIME_NS (2 * RS_NS_PER_SEC)
/* pump: write size, writes in flight per connection, and the bounds of one run. */
#define PUMP_CHUNK ((size_t)64 * 1024)
#define PUMP_DEPTH 2
#define PUMP_MAX_CONNECTIONS 100
#define PUMP_BYTES ((uint64_t)2 << 30)
#define PUMP_TIME_NS (2 * RS_NS_PER_SEC)
/* How often a client loop wakes to check its bounds, at most. */
#define CLIENT_TICK_MS 10
/* How long the server may take to see every connection close after a run. */
#define SERVER_DRAIN_NS (3 * RS_NS_PER_SEC)
/* iperf3: seconds of the reference run, and the limit for the whole of it. */
#define IPERF_SECONDS 3
#define IPERF_LIMIT_S 20

/* What the pump clients write: one pattern-filled buffer shared by every write. */
static uint8_t g_chunk[PUMP_CHUNK];

/* >>helpers */

static rs_socket_t *new_rs_tcp_socket(void) {
    rs_socket_options_t options;
    memset(&options, 0, sizeof options);
    options.tcp_nodelay = true;
    int err = RS_OK;
    rs_socket_t *socket = rs_socket_new(&options, &err);
    check_rs(socket ? RS_OK : err, "rs_socket_new");
    return socket;
}

/* >>server: echo (ping_pongs) or sink (pump), on a loop thread of its own. */

typedef struct server {
    bool echo;
    rs_endpoint_t endpoint;     /* where it listens, 127.0.0.1:<port> */
    atomic_uint_fast64_t received; /* bytes its handlers consumed */
    atomic_int accepted;        /* connections accepted */
    atomic_int live;            /* accepted and not yet closed */
    /* reseau */
    rs_event_loop_t *loop;
    rs_socket_t *listener;
    /* libuv */
    uv_loop_t uv_loop;
    uv_tcp_t uv_listener;
    uv_async_t uv_stop;
    uv_thread_t uv_thread;
    char uv_sink[PUMP_CHUNK];
} server_t;

static void server_count_read(server_t *server, size_t n) {
    atomic_fetch_add_explicit(&server->received, n, memory_order_relaxed);
}

/* Wait for every server connection to close once the clients have gone. */
static void server_wait_drained(server_t *server, const char *peer) {
    uint64_t deadline = bench_now_ns() + SERVER_DRAIN_NS;
    while (atomic_load(&server->live) > 0) {
        if (bench_now_ns() > deadline) {
            fprintf(stderr, "reseau-bench-channel: %s: %d server connections still open after the run\n", peer,
                    atomic_load(&server->live));
            exit(1);
        }
        rs_thread_sleep_ns(RS_NS_PER_MS);
    }
}

/* >>reseau handlers
 *
 * One handler type in three roles, always to the right of a socket handler:
 * ECHO hands each read message back down as the write; SINK releases it;
 * PINGER (the ping_pongs client) counts the echo and sends the next ping. */

typedef enum handler_role { ROLE_ECHO, ROLE_SINK, ROLE_PINGER } handler_role_t;

typedef struct ping_run ping_run_t;

typedef struct bench_handler {
    rs_channel_handler_t handler;
    handler_role_t role;
    rs_socket_t *socket; /* connected and assigned; the socket handler takes it */
    server_t *server;    /* ECHO, SINK */
    ping_run_t *ping;    /* PINGER */
} bench_handler_t;

/* One run over all its connections: the clock starts when the first is up. */
typedef struct ping_total {
    int count;
    int closed;
    size_t round_trips;
    uint64_t start_ns, end_ns, deadline_ns;
} ping_total_t;

/* One pinging connection. */
struct ping_run {
    ping_total_t *total;
    size_t phase; /* bytes of the current echo received so far */
    bool done;
    /* libuv client */
    uv_tcp_t tcp;
    uv_connect_t connect;
    char buf[PUMP_CHUNK];
};

static void ping_started(ping_run_t *run) {
    ping_total_t *total = run->total;
    if (!total->start_ns) {
        total->start_ns = bench_now_ns();
        total->deadline_ns = total->start_ns + PING_TIME_NS;
    }
}

static void ping_closed(ping_run_t *run) {
    run->total->closed++;
}

/* Check the echoed bytes; returns true once this connection is done. */
static bool ping_consume(ping_run_t *run, const uint8_t *data, size_t n, bool *send_next) {
    ping_total_t *total = run->total;
    *send_next = false;
    for (size_t i = 0; i < n; i++) {
        if (data[i] != (uint8_t)PING_MESSAGE[run->phase]) {
            fail("ping_pongs", "the echo does not match the ping");
        }
        if (++run->phase < PING_LEN) {
            continue;
        }
        run->phase = 0;
        total->round_trips++;
        uint64_t now = bench_now_ns();
        if (total->round_trips >= PING_COUNT || now >= total->deadline_ns) {
            if (now > total->end_ns) {
                total->end_ns = now;
            }
            run->done = true;
            return true;
        }
        *send_next = true;
    }
    return false;
}

/* The run's figure: round trips per second over every connection. */
static double ping_rate(const ping_total_t *total) {
    g_work = (double)total->round_trips;
    return per_second((double)total->round_trips, total->end_ns - total->start_ns);
}

static void pinger_send(rs_channel_slot_t *slot) {
    rs_channel_t *channel = rs_channel_slot_get_channel(slot);
    rs_io_message_t *message = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, PING_LEN);
    if (!message) {
        fail("ping_pongs/reseau", "no message from the pool");
    }
    rs_byte_buf_append(&message->message_data, PING_MESSAGE, PING_LEN);
    check_rs(rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE), "ping_pongs/reseau: send");
}

static int bench_process_read(rs_channel_handler_t *handler, rs_channel_slot_t *slot, rs_io_message_t *message) {
    bench_handler_t *bh = (bench_handler_t *)handler->impl;
    rs_channel_t *channel = rs_channel_slot_get_channel(slot);
    size_t n = message->message_data.len;
    bool send_next = false;
    switch (bh->role) {
    case ROLE_ECHO:
        server_count_read(bh->server, n);
        if (rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE) != RS_OK) {
            rs_channel_release_message_to_pool(channel, message);
            rs_channel_shutdown(channel, RS_OK);
        }
        break;
    case ROLE_SINK:
        server_count_read(bh->server, n);
        rs_channel_release_message_to_pool(channel, message);
        break;
    case ROLE_PINGER: {
        bool over = ping_consume(bh->ping, message->message_data.buffer, n, &send_next);
        rs_channel_release_message_to_pool(channel, message);
        if (over) {
            rs_channel_shutdown(channel, RS_OK);
        } else if (send_next) {
            pinger_send(slot);
        }
        break;
    }
    }
    return rs_channel_slot_increment_read_window(slot, n);
}

/* The rightmost handler: nothing writes through it from the right. */
static int bench_process_write(rs_channel_handler_t *handler, rs_channel_slot_t *slot, rs_io_message_t *message) {
    (void)handler;
    return rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE);
}

static int bench_increment_window(rs_channel_handler_t *handler, rs_channel_slot_t *slot, size_t size) {
    (void)handler;
    (void)slot;
    (void)size;
    return RS_OK;
}

static int bench_shutdown(rs_channel_handler_t *handler, rs_channel_slot_t *slot, rs_channel_direction_t dir,
                          int error_code, bool abort_immediately) {
    (void)handler;
    return rs_channel_slot_on_handler_shutdown_complete(slot, dir, error_code, abort_immediately);
}

static size_t bench_initial_window(rs_channel_handler_t *handler) {
    (void)handler;
    return SIZE_MAX;
}

static size_t bench_overhead(rs_channel_handler_t *handler) {
    (void)handler;
    return 0;
}

static void bench_destroy(rs_channel_handler_t *handler) {
    free(handler->impl);
}

static const rs_channel_handler_vtable_t g_bench_vtable = {
    .process_read_message = bench_process_read,
    .process_write_message = bench_process_write,
    .increment_read_window = bench_increment_window,
    .shutdown = bench_shutdown,
    .initial_window_size = bench_initial_window,
    .message_overhead = bench_overhead,
    .destroy = bench_destroy,
};

static bench_handler_t *bench_handler_new(handler_role_t role, rs_socket_t *socket) {
    bench_handler_t *bh = (bench_handler_t *)xcalloc(1, sizeof(bench_handler_t));
    bh->handler.vtable = &g_bench_vtable;
    bh->handler.impl = bh;
    bh->role = role;
    bh->socket = socket;
    return bh;
}

/* Socket handler on the left, the bench handler on its right. */
static void on_channel_setup(rs_channel_t *channel, int error, void *user_data) {
    bench_handler_t *bh = (bench_handler_t *)user_data;
    check_rs(error, "channel setup");
    rs_channel_slot_t *socket_slot = rs_channel_slot_new(channel, &error);
    check_rs(socket_slot ? RS_OK : error, "rs_channel_slot_new");
    rs_channel_handler_t *socket_handler = rs_socket_handler_new(NULL, bh->socket, NULL, &error);
    check_rs(socket_handler ? RS_OK : error, "rs_socket_handler_new");
    check_rs(rs_channel_slot_set_handler(socket_slot, socket_handler), "rs_channel_slot_set_handler");
    rs_channel_slot_t *app_slot = rs_channel_slot_new(channel, &error);
    check_rs(app_slot ? RS_OK : error, "rs_channel_slot_new");
    check_rs(rs_channel_slot_insert_right(socket_slot, app_slot), "rs_channel_slot_insert_right");
    check_rs(rs_channel_slot_set_handler(app_slot, &bh->handler), "rs_channel_slot_set_handler");
    if (bh->role == ROLE_PINGER) {
        ping_started(bh->ping);
        pinger_send(app_slot);
    }
}

static void on_channel_shutdown(rs_channel_t *channel, int error, void *user_data) {
    bench_handler_t *bh = (bench_handler_t *)user_data;
    (void)error; /* the server sees RS_EEOF when the client goes; either way the run is over */
    if (bh->role == ROLE_PINGER) {
        ping_closed(bh->ping);
    } else {
        atomic_fetch_sub(&bh->server->live, 1);
    }
    rs_channel_destroy(channel); /* destroys the handlers, and the socket with its handler */
}

static void new_rs_channel(rs_event_loop_t *loop, bench_handler_t *bh) {
    rs_channel_options_t options;
    memset(&options, 0, sizeof options);
    options.loop = loop;
    options.on_setup_completed = on_channel_setup;
    options.on_shutdown_completed = on_channel_shutdown;
    options.user_data = bh;
    int err = RS_OK;
    rs_channel_t *channel = rs_channel_new(&options, &err);
    check_rs(channel ? RS_OK : err, "rs_channel_new");
}

/* >>reseau server */

static void on_rs_accept(rs_socket_t *listener, int error, rs_socket_t *new_socket, void *user_data) {
    server_t *server = (server_t *)user_data;
    (void)listener;
    if (error != RS_OK) {
        return; /* transient; the listener keeps serving */
    }
    check_rs(rs_socket_assign_to_loop(new_socket, server->loop), "rs_socket_assign_to_loop");
    bench_handler_t *bh = bench_handler_new(server->echo ? ROLE_ECHO : ROLE_SINK, new_socket);
    bh->server = server;
    atomic_fetch_add(&server->accepted, 1);
    atomic_fetch_add(&server->live, 1);
    new_rs_channel(server->loop, bh);
}

static void rs_server_start(server_t *server, bool echo) {
    memset(server, 0, sizeof *server);
    server->echo = echo;
    server->loop = new_rs_loop();
    server->listener = new_rs_tcp_socket();
    check_rs(rs_endpoint_from_ip(&server->endpoint, "127.0.0.1", 0), "rs_endpoint_from_ip");
    check_rs(rs_socket_bind(server->listener, &server->endpoint), "rs_socket_bind");
    check_rs(rs_socket_listen(server->listener, 0), "rs_socket_listen");
    check_rs(rs_socket_get_bound_address(server->listener, &server->endpoint), "rs_socket_get_bound_address");
    /* Before the loop first runs, this thread counts as its loop thread. */
    check_rs(rs_socket_start_accept(server->listener, server->loop, on_rs_accept, server), "rs_socket_start_accept");
    check_rs(rs_event_loop_start(server->loop), "rs_event_loop_start");
}

static void rs_server_stop(server_t *server, rs_event_loop_stats_t *stats) {
    server_wait_drained(server, "reseau");
    check_rs(rs_socket_close(server->listener), "rs_socket_close"); /* any thread, for a listener */
    check_rs(rs_event_loop_stop(server->loop), "rs_event_loop_stop");
    check_rs(rs_event_loop_wait(server->loop), "rs_event_loop_wait");
    rs_event_loop_get_stats(server->loop, stats);
    rs_socket_destroy(server->listener);
    rs_event_loop_destroy(server->loop);
}

/* >>libuv server */

typedef struct uv_conn {
    uv_tcp_t tcp;
    server_t *server;
} uv_conn_t;

typedef struct uv_echo_write {
    uv_write_t req;
    uv_buf_t buf;
} uv_echo_write_t;

static void on_uv_conn_closed(uv_handle_t *handle) {
    uv_conn_t *conn = (uv_conn_t *)handle->data;
    atomic_fetch_sub(&conn->server->live, 1);
    free(conn);
}

/* libuv's echo server (test/echo-server.c): a fresh buffer per read. */
static void on_uv_echo_alloc(uv_handle_t *handle, size_t suggested_size, uv_buf_t *buf) {
    (void)handle;
    buf->base = (char *)malloc(suggested_size);
    buf->len = buf->base ? suggested_size : 0;
}

static void on_uv_sink_alloc(uv_handle_t *handle, size_t suggested_size, uv_buf_t *buf) {
    uv_conn_t *conn = (uv_conn_t *)handle->data;
    (void)suggested_size;
    *buf = uv_buf_init(conn->server->uv_sink, (unsigned)sizeof conn->server->uv_sink);
}

static void on_uv_echo_written(uv_write_t *req, int status) {
    uv_echo_write_t *w = (uv_echo_write_t *)req;
    (void)status; /* a failed echo shows as a stalled client */
    free(w->buf.base);
    free(w);
}

static void on_uv_server_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    uv_conn_t *conn = (uv_conn_t *)stream->data;
    server_t *server = conn->server;
    if (nread > 0) {
        server_count_read(server, (size_t)nread);
        if (server->echo) {
            uv_echo_write_t *w = (uv_echo_write_t *)malloc(sizeof(uv_echo_write_t));
            if (!w) {
                fail("libuv echo", "out of memory");
            }
            w->buf = uv_buf_init(buf->base, (unsigned)nread);
            check_uv(uv_write(&w->req, stream, &w->buf, 1, on_uv_echo_written), "uv_write");
        }
        return;
    }
    if (server->echo) {
        free(buf->base);
    }
    if (nread < 0 && !uv_is_closing((uv_handle_t *)stream)) {
        uv_close((uv_handle_t *)stream, on_uv_conn_closed);
    }
}

static void on_uv_connection(uv_stream_t *listener, int status) {
    server_t *server = (server_t *)listener->loop->data;
    check_uv(status, "libuv connection");
    uv_conn_t *conn = (uv_conn_t *)xcalloc(1, sizeof(uv_conn_t));
    conn->server = server;
    check_uv(uv_tcp_init(listener->loop, &conn->tcp), "uv_tcp_init");
    conn->tcp.data = conn;
    check_uv(uv_accept(listener, (uv_stream_t *)&conn->tcp), "uv_accept");
    check_uv(uv_tcp_nodelay(&conn->tcp, 1), "uv_tcp_nodelay");
    atomic_fetch_add(&server->accepted, 1);
    atomic_fetch_add(&server->live, 1);
    check_uv(uv_read_start((uv_stream_t *)&conn->tcp, server->echo ? on_uv_echo_alloc : on_uv_sink_alloc,
                           on_uv_server_read),
             "uv_read_start");
}

static void on_uv_walk_close(uv_handle_t *handle, void *arg) {
    (void)arg;
    if (!uv_is_closing(handle)) {
        uv_close(handle, handle->type == UV_TCP && handle->data ? on_uv_conn_closed : NULL);
    }
}

static void on_uv_server_stop(uv_async_t *async) {
    uv_walk(async->loop, on_uv_walk_close, NULL);
}

static void uv_server_main(void *arg) {
    server_t *server = (server_t *)arg;
    check_uv(uv_run(&server->uv_loop, UV_RUN_DEFAULT), "uv_run (server)");
}

static void uv_server_start(server_t *server, bool echo) {
    memset(server, 0, sizeof *server);
    server->echo = echo;
    check_uv(uv_loop_init(&server->uv_loop), "uv_loop_init");
    check_uv(uv_tcp_init(&server->uv_loop, &server->uv_listener), "uv_tcp_init");
    server->uv_listener.data = NULL; /* not a connection: on_uv_walk_close tells them apart by data */
    struct sockaddr_in addr;
    check_uv(uv_ip4_addr("127.0.0.1", 0, &addr), "uv_ip4_addr");
    check_uv(uv_tcp_bind(&server->uv_listener, (const struct sockaddr *)&addr, 0), "uv_tcp_bind");
    int len = (int)sizeof addr;
    check_uv(uv_tcp_getsockname(&server->uv_listener, (struct sockaddr *)&addr, &len), "uv_tcp_getsockname");
    check_rs(rs_endpoint_from_ip(&server->endpoint, "127.0.0.1", ntohs(addr.sin_port)), "rs_endpoint_from_ip");
    check_uv(uv_async_init(&server->uv_loop, &server->uv_stop, on_uv_server_stop), "uv_async_init");
    /* The listener's callback finds the server through the stream's loop data. */
    server->uv_loop.data = server;
    check_uv(uv_listen((uv_stream_t *)&server->uv_listener, SOMAXCONN, on_uv_connection), "uv_listen");
    check_uv(uv_thread_create(&server->uv_thread, uv_server_main, server), "uv_thread_create");
}

static void uv_server_stop(server_t *server) {
    server_wait_drained(server, "libuv");
    check_uv(uv_async_send(&server->uv_stop), "uv_async_send");
    check_uv(uv_thread_join(&server->uv_thread), "uv_thread_join");
    check_uv(uv_loop_close(&server->uv_loop), "uv_loop_close");
}

/* >>ping_pongs */

static void on_rs_ping_connect(rs_socket_t *socket, int error, void *user_data) {
    bench_handler_t *bh = (bench_handler_t *)user_data;
    check_rs(error, "ping_pongs/reseau: connect");
    (void)socket;
    new_rs_channel(rs_socket_get_loop(bh->socket), bh);
}

/* `connections` pinging connections (0 means 1) on the client loop. */
static double reseau_ping_pongs(int connections) {
    int n = connections > 0 ? connections : 1;
    server_t *server = (server_t *)xcalloc(1, sizeof(server_t));
    ping_total_t total;
    ping_run_t *runs = (ping_run_t *)xcalloc((size_t)n, sizeof(ping_run_t));
    memset(&total, 0, sizeof total);
    total.count = n;
    rs_server_start(server, true);

    rs_event_loop_t *loop = new_rs_loop();
    for (int i = 0; i < n; i++) {
        bench_handler_t *bh = bench_handler_new(ROLE_PINGER, new_rs_tcp_socket());
        runs[i].total = &total;
        bh->ping = &runs[i];
        check_rs(rs_socket_connect(bh->socket, &server->endpoint, loop, on_rs_ping_connect, bh), "rs_socket_connect");
    }
    while (total.closed < n) {
        check_rs(rs_event_loop_run_once(loop, CLIENT_TICK_MS), "rs_event_loop_run_once");
    }
    rs_event_loop_stats_t client_stats, server_stats;
    rs_event_loop_get_stats(loop, &client_stats);
    rs_event_loop_destroy(loop);
    rs_server_stop(server, &server_stats);

    snprintf(g_detail, sizeof g_detail, "%zu round trips on %d connections in %.1f ms; ticks: client %llu, server %llu",
             total.round_trips, n, (double)(total.end_ns - total.start_ns) / 1e6,
             (unsigned long long)client_stats.ticks, (unsigned long long)server_stats.ticks);
    double rate = ping_rate(&total);
    free(runs);
    free(server);
    return rate;
}

static void on_uv_ping_closed(uv_handle_t *handle) {
    ping_closed((ping_run_t *)handle->data);
}

static void on_uv_ping_written(uv_write_t *req, int status) {
    check_uv(status, "ping_pongs/libuv: write");
    free(req);
}

/* libuv's ping-pongs client: a malloc'd request per ping. */
static void uv_ping_send(ping_run_t *run) {
    static char message[] = PING_MESSAGE;
    uv_write_t *req = (uv_write_t *)malloc(sizeof(uv_write_t));
    if (!req) {
        fail("ping_pongs/libuv", "out of memory");
    }
    uv_buf_t buf = uv_buf_init(message, (unsigned)PING_LEN);
    check_uv(uv_write(req, (uv_stream_t *)&run->tcp, &buf, 1, on_uv_ping_written), "uv_write");
}

static void on_uv_ping_alloc(uv_handle_t *handle, size_t suggested_size, uv_buf_t *buf) {
    ping_run_t *run = (ping_run_t *)handle->data;
    (void)suggested_size;
    *buf = uv_buf_init(run->buf, (unsigned)sizeof run->buf);
}

static void on_uv_ping_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    ping_run_t *run = (ping_run_t *)stream->data;
    bool send_next = false;
    if (nread < 0) {
        fail("ping_pongs/libuv: read", uv_strerror((int)nread));
    }
    if (ping_consume(run, (const uint8_t *)buf->base, (size_t)nread, &send_next)) {
        uv_close((uv_handle_t *)stream, on_uv_ping_closed);
    } else if (send_next) {
        uv_ping_send(run);
    }
}

static void on_uv_ping_connect(uv_connect_t *req, int status) {
    ping_run_t *run = (ping_run_t *)req->data;
    check_uv(status, "ping_pongs/libuv: connect");
    check_uv(uv_read_start((uv_stream_t *)&run->tcp, on_uv_ping_alloc, on_uv_ping_read), "uv_read_start");
    ping_started(run);
    uv_ping_send(run);
}

static void uv_connect_to(uv_tcp_t *tcp, uv_connect_t *req, const server_t *server, uv_connect_cb cb) {
    struct sockaddr_in addr;
    check_uv(uv_ip4_addr("127.0.0.1", (int)server->endpoint.port, &addr), "uv_ip4_addr");
    check_uv(uv_tcp_connect(req, tcp, (const struct sockaddr *)&addr, cb), "uv_tcp_connect");
}

static double libuv_ping_pongs(int connections) {
    int n = connections > 0 ? connections : 1;
    server_t *server = (server_t *)xcalloc(1, sizeof(server_t));
    ping_total_t total;
    ping_run_t *runs = (ping_run_t *)xcalloc((size_t)n, sizeof(ping_run_t));
    memset(&total, 0, sizeof total);
    total.count = n;
    uv_server_start(server, true);

    uv_loop_t loop;
    check_uv(uv_loop_init(&loop), "uv_loop_init");
    for (int i = 0; i < n; i++) {
        ping_run_t *run = &runs[i];
        run->total = &total;
        check_uv(uv_tcp_init(&loop, &run->tcp), "uv_tcp_init");
        check_uv(uv_tcp_nodelay(&run->tcp, 1), "uv_tcp_nodelay");
        run->tcp.data = run;
        run->connect.data = run;
        uv_connect_to(&run->tcp, &run->connect, server, on_uv_ping_connect);
    }
    check_uv(uv_run(&loop, UV_RUN_DEFAULT), "uv_run");
    check_uv(uv_loop_close(&loop), "uv_loop_close");
    uv_server_stop(server);

    snprintf(g_detail, sizeof g_detail, "%zu round trips on %d connections in %.1f ms", total.round_trips, n,
             (double)(total.end_ns - total.start_ns) / 1e6);
    double rate = ping_rate(&total);
    free(runs);
    free(server);
    return rate;
}

/* >>pump */

typedef struct pump_run pump_run_t;

typedef struct pump_conn {
    pump_run_t *run;
    rs_socket_t *socket;
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t writes[PUMP_DEPTH];
} pump_conn_t;

struct pump_run {
    int count;
    pump_conn_t conns[PUMP_MAX_CONNECTIONS];
    int connected;
    int writes_in_flight;
    bool stopping;
    uint64_t start_ns, end_ns, bytes;
    server_t server;
    uv_timer_t uv_tick;
};

static pump_run_t *pump_run_new(int count) {
    pump_run_t *run = (pump_run_t *)xcalloc(1, sizeof(pump_run_t));
    run->count = count;
    for (int i = 0; i < count; i++) {
        run->conns[i].run = run;
    }
    return run;
}

/* Called after every client tick: starts the clock once every connection is
 * up at both ends, and returns true once the run is over. */
static bool pump_check(pump_run_t *run) {
    server_t *server = &run->server;
    uint64_t received = atomic_load_explicit(&server->received, memory_order_relaxed);
    uint64_t now = bench_now_ns();
    if (!run->start_ns) {
        if (run->connected == run->count && atomic_load(&server->accepted) == run->count) {
            run->start_ns = now;
            run->bytes = received; /* the baseline, until the end */
        }
        return false;
    }
    if (received - run->bytes >= PUMP_BYTES || now - run->start_ns >= PUMP_TIME_NS) {
        run->end_ns = now;
        run->bytes = received - run->bytes;
        return true;
    }
    return false;
}

static double pump_result(const pump_run_t *run, const char *extra) {
    g_work = (double)atomic_load(&run->server.received) / 1e6;
    double seconds = (double)(run->end_ns - run->start_ns) / 1e9;
    snprintf(g_detail, sizeof g_detail, "%.1f MB in %.1f ms%s", (double)run->bytes / 1e6, seconds * 1e3, extra);
    return per_second((double)run->bytes, run->end_ns - run->start_ns) / 1e6;
}

/* reseau clients: plain sockets. */

static void rs_pump_write(pump_conn_t *conn);

static void on_rs_pump_written(rs_socket_t *socket, int error, size_t bytes_written, void *user_data) {
    pump_conn_t *conn = (pump_conn_t *)user_data;
    (void)socket;
    (void)bytes_written;
    conn->run->writes_in_flight--;
    if (error == RS_OK && !conn->run->stopping) {
        rs_pump_write(conn);
    } else if (error != RS_OK && error != RS_ECANCELED) {
        fail("pump/reseau: write", rs_strerror(error));
    }
}

static void rs_pump_write(pump_conn_t *conn) {
    check_rs(rs_socket_write(conn->socket, rs_byte_cursor_from_array(g_chunk, sizeof g_chunk), on_rs_pump_written,
                             conn),
             "rs_socket_write");
    conn->run->writes_in_flight++;
}

static void on_rs_pump_connect(rs_socket_t *socket, int error, void *user_data) {
    pump_conn_t *conn = (pump_conn_t *)user_data;
    (void)socket;
    check_rs(error, "pump/reseau: connect");
    conn->run->connected++;
    for (int i = 0; i < PUMP_DEPTH; i++) {
        rs_pump_write(conn);
    }
}

static double reseau_pump(int count) {
    pump_run_t *run = pump_run_new(count);
    rs_server_start(&run->server, false);
    rs_event_loop_t *loop = new_rs_loop();
    for (int i = 0; i < count; i++) {
        pump_conn_t *conn = &run->conns[i];
        conn->socket = new_rs_tcp_socket();
        check_rs(rs_socket_connect(conn->socket, &run->server.endpoint, loop, on_rs_pump_connect, conn),
                 "rs_socket_connect");
    }
    do {
        check_rs(rs_event_loop_run_once(loop, CLIENT_TICK_MS), "rs_event_loop_run_once");
    } while (!pump_check(run));

    run->stopping = true;
    for (int i = 0; i < count; i++) {
        check_rs(rs_socket_close(run->conns[i].socket), "rs_socket_close"); /* cancels queued writes */
    }
    while (run->writes_in_flight > 0) {
        check_rs(rs_event_loop_run_once(loop, CLIENT_TICK_MS), "rs_event_loop_run_once");
    }
    for (int i = 0; i < count; i++) {
        rs_socket_destroy(run->conns[i].socket);
    }
    rs_event_loop_stats_t client_stats, server_stats;
    rs_event_loop_get_stats(loop, &client_stats);
    rs_event_loop_destroy(loop);
    rs_server_stop(&run->server, &server_stats);

    char extra[100];
    snprintf(extra, sizeof extra, "; ticks: client %llu, server %llu (%llu I/O events)",
             (unsigned long long)client_stats.ticks, (unsigned long long)server_stats.ticks,
             (unsigned long long)server_stats.io_events);
    double rate = pump_result(run, extra);
    free(run);
    return rate;
}

/* libuv clients: plain uv_tcp handles. */

static void on_uv_pump_written(uv_write_t *req, int status) {
    pump_conn_t *conn = (pump_conn_t *)req->data;
    conn->run->writes_in_flight--;
    if (status == 0 && !conn->run->stopping) {
        uv_buf_t buf = uv_buf_init((char *)g_chunk, (unsigned)sizeof g_chunk);
        check_uv(uv_write(req, (uv_stream_t *)&conn->tcp, &buf, 1, on_uv_pump_written), "uv_write");
        conn->run->writes_in_flight++;
    } else if (status != 0 && status != UV_ECANCELED) {
        fail("pump/libuv: write", uv_strerror(status));
    }
}

static void on_uv_pump_connect(uv_connect_t *req, int status) {
    pump_conn_t *conn = (pump_conn_t *)req->data;
    check_uv(status, "pump/libuv: connect");
    conn->run->connected++;
    for (int i = 0; i < PUMP_DEPTH; i++) {
        uv_buf_t buf = uv_buf_init((char *)g_chunk, (unsigned)sizeof g_chunk);
        conn->writes[i].data = conn;
        check_uv(uv_write(&conn->writes[i], (uv_stream_t *)&conn->tcp, &buf, 1, on_uv_pump_written), "uv_write");
        conn->run->writes_in_flight++;
    }
}

/* Wakes the client loop now and then, as CLIENT_TICK_MS does for reseau's. */
static void on_uv_pump_tick(uv_timer_t *timer) {
    (void)timer;
}

static double libuv_pump(int count) {
    pump_run_t *run = pump_run_new(count);
    uv_server_start(&run->server, false);
    uv_loop_t loop;
    check_uv(uv_loop_init(&loop), "uv_loop_init");
    check_uv(uv_timer_init(&loop, &run->uv_tick), "uv_timer_init");
    check_uv(uv_timer_start(&run->uv_tick, on_uv_pump_tick, CLIENT_TICK_MS, CLIENT_TICK_MS), "uv_timer_start");
    for (int i = 0; i < count; i++) {
        pump_conn_t *conn = &run->conns[i];
        check_uv(uv_tcp_init(&loop, &conn->tcp), "uv_tcp_init");
        check_uv(uv_tcp_nodelay(&conn->tcp, 1), "uv_tcp_nodelay");
        conn->connect.data = conn;
        uv_connect_to(&conn->tcp, &conn->connect, &run->server, on_uv_pump_connect);
    }
    do {
        uv_run(&loop, UV_RUN_ONCE);
    } while (!pump_check(run));

    run->stopping = true;
    for (int i = 0; i < count; i++) {
        uv_close((uv_handle_t *)&run->conns[i].tcp, NULL); /* cancels queued writes */
    }
    uv_close((uv_handle_t *)&run->uv_tick, NULL);
    check_uv(uv_run(&loop, UV_RUN_DEFAULT), "uv_run");
    check_uv(uv_loop_close(&loop), "uv_loop_close");
    uv_server_stop(&run->server);

    double rate = pump_result(run, "");
    free(run);
    return rate;
}

/* >>iperf3: the loopback ceiling, for reference. */

/* MB/s of one iperf3 run over 127.0.0.1, or a negative number if iperf3 is
 * missing or failed. */
static double iperf3_ceiling(void) {
    if (system("command -v iperf3 >/dev/null 2>&1") != 0) {
        return -1;
    }
    /* A free port: bind to port 0, read it back, close. */
    rs_socket_t *probe = new_rs_tcp_socket();
    rs_endpoint_t endpoint;
    check_rs(rs_endpoint_from_ip(&endpoint, "127.0.0.1", 0), "rs_endpoint_from_ip");
    check_rs(rs_socket_bind(probe, &endpoint), "rs_socket_bind");
    check_rs(rs_socket_get_bound_address(probe, &endpoint), "rs_socket_get_bound_address");
    rs_socket_destroy(probe);

    char command[200];
    snprintf(command, sizeof command, "timeout %d iperf3 -s -1 -B 127.0.0.1 -p %u >/dev/null 2>&1 &",
             IPERF_LIMIT_S, (unsigned)endpoint.port);
    if (system(command) != 0) {
        return -1;
    }
    static char output[1 << 16];
    for (int attempt = 0; attempt < 20; attempt++) {
        rs_thread_sleep_ns(100 * RS_NS_PER_MS); /* let the server start listening */
        snprintf(command, sizeof command, "timeout %d iperf3 -c 127.0.0.1 -p %u -t %d -J 2>/dev/null",
                 IPERF_LIMIT_S, (unsigned)endpoint.port, IPERF_SECONDS);
        FILE *pipe = popen(command, "r");
        if (!pipe) {
            return -1;
        }
        size_t len = fread(output, 1, sizeof output - 1, pipe);
        pclose(pipe);
        output[len] = '\0';
        const char *sum = strstr(output, "\"sum_received\"");
        const char *bps = sum ? strstr(sum, "\"bits_per_second\":") : NULL;
        if (bps) {
            return strtod(bps + strlen("\"bits_per_second\":"), NULL) / 8 / 1e6;
        }
    }
    return -1;
}

/* >>runner */

/* After pump_1: the loopback ceiling and each side's share of it. */
static void print_iperf3_ceiling(const scenario_t *s, double reseau_pump_1, double libuv_pump_1) {
    (void)s;
    g_current_run = "iperf3";
    alarm(IPERF_LIMIT_S + 5);
    double ceiling = iperf3_ceiling();
    alarm(0);
    if (ceiling <= 0) {
        printf("# iperf3: not installed or failed (apt-get install -y iperf3): no loopback ceiling\n");
        return;
    }
    printf("%-16s  ceiling=%10.1f MB/s  pump_1/iperf3: reseau=%.2f  libuv=%.2f\n", "iperf3_1", ceiling,
           reseau_pump_1 / ceiling, libuv_pump_1 / ceiling);
}

/* io_uring against libuv, in the same run as epoll against libuv above. */
BENCH_ON_BACKEND(io_uring_ping_pongs, reseau_ping_pongs, RS_EVENT_LOOP_BACKEND_IO_URING)
BENCH_ON_BACKEND(io_uring_pump, reseau_pump, RS_EVENT_LOOP_BACKEND_IO_URING)

#if RESEAU_HAVE_KQUEUE
/* The kqueue build (-Dkqueue_prefix) adds two scenarios: kqueue against epoll. */
BENCH_ON_BACKEND(kqueue_ping_pongs, reseau_ping_pongs, RS_EVENT_LOOP_BACKEND_KQUEUE)
BENCH_ON_BACKEND(epoll_ping_pongs, reseau_ping_pongs, RS_EVENT_LOOP_BACKEND_EPOLL)
BENCH_ON_BACKEND(kqueue_pump, reseau_pump, RS_EVENT_LOOP_BACKEND_KQUEUE)
BENCH_ON_BACKEND(epoll_pump, reseau_pump, RS_EVENT_LOOP_BACKEND_EPOLL)
#endif

static const scenario_t g_scenarios[] = {
    {.name = "ping_pongs", .reseau_fn = reseau_ping_pongs, .peer_fn = libuv_ping_pongs, .work_unit = "round trip"},
    {.name = "ping_pongs_100", .reseau_fn = reseau_ping_pongs, .peer_fn = libuv_ping_pongs, .arg = 100,
     .work_unit = "round trip"},
    {.name = "pump_1", .reseau_fn = reseau_pump, .peer_fn = libuv_pump, .arg = 1, .unit = " MB/s", .work_unit = "MB",
     .after = print_iperf3_ceiling},
    {.name = "pump_100", .reseau_fn = reseau_pump, .peer_fn = libuv_pump, .arg = 100, .unit = " MB/s", .work_unit = "MB"},
    /* "reseau" is the io_uring backend in these (completion-based sockets). */
    {.name = "ping_pongs_io_uring", .reseau_fn = io_uring_ping_pongs, .peer_fn = libuv_ping_pongs,
     .work_unit = "round trip"},
    {.name = "ping_pongs_100_io_uring", .reseau_fn = io_uring_ping_pongs, .peer_fn = libuv_ping_pongs, .arg = 100,
     .work_unit = "round trip"},
    {.name = "pump_1_io_uring", .reseau_fn = io_uring_pump, .peer_fn = libuv_pump, .arg = 1, .unit = " MB/s",
     .work_unit = "MB"},
    {.name = "pump_100_io_uring", .reseau_fn = io_uring_pump, .peer_fn = libuv_pump, .arg = 100, .unit = " MB/s",
     .work_unit = "MB"},
#if RESEAU_HAVE_KQUEUE
    /* "reseau" is the kqueue backend here, its peer the epoll backend. */
    {.name = "ping_pongs_kqueue", .reseau_fn = kqueue_ping_pongs, .peer_fn = epoll_ping_pongs, .peer = "epoll",
     .work_unit = "round trip"},
    {.name = "pump_100_kqueue", .reseau_fn = kqueue_pump, .peer_fn = epoll_pump, .arg = 100, .peer = "epoll",
     .unit = " MB/s", .work_unit = "MB"},
#endif
};

int main(int argc, char **argv) {
    for (size_t i = 0; i < sizeof g_chunk; i++) {
        g_chunk[i] = (uint8_t)(i * 31 + (i >> 8));
    }
    return bench_main(argc, argv, g_scenarios, sizeof g_scenarios / sizeof g_scenarios[0]);
}
