/*
 * reseau-bench-iocp: reseau's IOCP backend against a hand-written Winsock +
 * IOCP loop, over loopback TCP (Windows only; built in the mingw-w64 cross
 * build and run under Wine by tools/bench/iocp.sh).
 *
 * There is no libuv for mingw here, so the peer is the smallest fast IOCP
 * loop a competent programmer would write: Wine's overhead (a wineserver
 * round trip for much of Winsock) applies to both sides, and the ratio says
 * what reseau's layers cost on top of the completion port.
 *
 * The scenarios are bench_channel.c's ping_pongs and pump_1, shaped the same
 * way: the server runs on a thread of its own and the client on the calling
 * thread, TCP_NODELAY on both ends.
 *
 *   ping_pongs  One connection. The client sends "PING", the server echoes
 *               it, and the client sends the next one when the whole echo is
 *               back. reseau: both ends are channels on their own IOCP loops,
 *               a socket handler plus an echo handler (server) or a pinger
 *               handler (client), as in bench_channel.c. Hand-written: one
 *               completion port per side; the server posts an overlapped
 *               WSARecv into its buffer and, when it completes, a WSASend of
 *               what arrived, then the next WSARecv; the client keeps one
 *               WSARecv posted and a WSASend per ping. Figure: round trips per
 *               second, PING_COUNT of them or PING_TIME_NS, whichever ends
 *               first.
 *   pump_1      One connection. The client keeps PUMP_DEPTH writes of
 *               PUMP_CHUNK bytes in flight from one buffer; the server reads
 *               and discards. reseau: the client is a plain rs_socket, the
 *               server a channel (socket handler plus a sink handler that
 *               releases every message), as in bench_channel.c. Hand-written:
 *               PUMP_DEPTH overlapped WSASends on the client's port; the
 *               server keeps one overlapped WSARecv of PUMP_CHUNK bytes posted
 *               into one buffer. Figure: MB/s (10^6 bytes) consumed by the
 *               server, until PUMP_BYTES arrived or PUMP_TIME_NS passed.
 *
 *   ping_pongs_probe, pump_1_probe  For diagnosis: the same, against a
 *               hand-written loop that reads the way reseau's sockets do
 *               (socket_win.c): a zero-byte WSARecv as a readiness probe, then
 *               non-blocking recv until WSAEWOULDBLOCK, then the probe again.
 *               Set against ping_pongs and pump_1, they tell the cost of that
 *               read strategy from the cost of reseau's other layers.
 *
 * The hand-written loop dequeues with GetQueuedCompletionStatusEx (up to
 * RAW_ENTRIES packets per call). Setup is blocking connect() and accept(),
 * outside the timed part. Like reseau's sockets (socket_win.c) it does not
 * use FILE_SKIP_COMPLETION_PORT_ON_SUCCESS: every operation comes back
 * through the port.
 *
 * Each scenario runs reseau and the hand-written loop alternately (A B A B
 * ...), `rounds` times each, and prints the median of each side and their
 * ratio (bench_common.h). Every run is bounded in count and time
 * (BENCH_RUN_LIMIT_S: past it the program stops with a message naming the
 * run).
 *
 * Usage: reseau-bench-iocp.exe [-r ROUNDS] [-v] [-only reseau|iocp] [SCENARIO...]
 */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"

#define BENCH_PROGRAM "reseau-bench-iocp"
#define BENCH_NO_LIBUV
/* Seconds one run may take before the program gives up. */
#define BENCH_RUN_LIMIT_S 20
#define BENCH_DEFAULT_ROUNDS 5
#include "bench_common.h"

#include <stdatomic.h>
#include <winsock2.h>
#include <ws2tcpip.h>

/* ping_pongs: the message, and the bounds of one run (bench_channel.c's). */
#define PING_MESSAGE "PING"
#define PING_LEN (sizeof(PING_MESSAGE) - 1)
#define PING_COUNT ((size_t)200000)
#define PING_TIME_NS (2 * RS_NS_PER_SEC)
/* pump: write size, writes in flight, and the bounds of one run (bench_channel.c's). */
#define PUMP_CHUNK ((size_t)64 * 1024)
#define PUMP_DEPTH 2
#define PUMP_BYTES ((uint64_t)2 << 30)
#define PUMP_TIME_NS (2 * RS_NS_PER_SEC)
/* How often a client loop wakes to check its bounds, at most. */
#define CLIENT_TICK_MS 10
/* How long the server may take to see the connection close after a run. */
#define SERVER_DRAIN_NS (3 * RS_NS_PER_SEC)
/* Completion packets the hand-written loop takes per GetQueuedCompletionStatusEx. */
#define RAW_ENTRIES 16
/* The _probe scenarios: reads per probe before probing again, at most, as
 * reseau's socket handler reads at most 4 times per tick (reads_per_tick). */
#define RAW_READS_PER_PROBE 4

/* What the pump clients write. */
static uint8_t g_chunk[PUMP_CHUNK];

/* >>ping: the client's count, shared by both sides */

typedef struct ping_run {
    size_t phase; /* bytes of the current echo received so far */
    size_t round_trips;
    uint64_t start_ns, end_ns, deadline_ns;
    bool done;
} ping_run_t;

static void ping_started(ping_run_t *run) {
    run->start_ns = bench_now_ns();
    run->deadline_ns = run->start_ns + PING_TIME_NS;
}

/* Check the echoed bytes; returns true once the run is over, and sets
 * *send_next when a whole echo came back and another ping is due. */
static bool ping_consume(ping_run_t *run, const uint8_t *data, size_t n, bool *send_next) {
    *send_next = false;
    for (size_t i = 0; i < n; i++) {
        if (data[i] != (uint8_t)PING_MESSAGE[run->phase]) {
            fail("ping_pongs", "the echo does not match the ping");
        }
        if (++run->phase < PING_LEN) {
            continue;
        }
        run->phase = 0;
        run->round_trips++;
        uint64_t now = bench_now_ns();
        if (run->round_trips >= PING_COUNT || now >= run->deadline_ns) {
            run->end_ns = now;
            run->done = true;
            return true;
        }
        *send_next = true;
    }
    return false;
}

static double ping_rate(const ping_run_t *run, const char *extra) {
    g_work = (double)run->round_trips;
    snprintf(g_detail, sizeof g_detail, "%zu round trips in %.1f ms%s", run->round_trips,
             (double)(run->end_ns - run->start_ns) / 1e6, extra);
    return per_second((double)run->round_trips, run->end_ns - run->start_ns);
}

/* >>pump: the run's bounds, shared by both sides */

typedef struct pump_run {
    atomic_uint_fast64_t received; /* bytes the server consumed */
    uint64_t start_ns, end_ns, bytes;
    int writes_in_flight;
    bool stopping;
} pump_run_t;

static void pump_started(pump_run_t *run) {
    run->start_ns = bench_now_ns();
    run->bytes = atomic_load(&run->received); /* the baseline, until the end */
}

/* Called after every client tick once the connection is up at both ends:
 * returns true once the run is over. */
static bool pump_check(pump_run_t *run) {
    uint64_t received = atomic_load_explicit(&run->received, memory_order_relaxed);
    uint64_t now = bench_now_ns();
    if (received - run->bytes >= PUMP_BYTES || now - run->start_ns >= PUMP_TIME_NS) {
        run->end_ns = now;
        run->bytes = received - run->bytes;
        return true;
    }
    return false;
}

static double pump_result(const pump_run_t *run, const char *extra) {
    g_work = (double)atomic_load(&run->received) / 1e6;
    snprintf(g_detail, sizeof g_detail, "%.1f MB in %.1f ms%s", (double)run->bytes / 1e6,
             (double)(run->end_ns - run->start_ns) / 1e6, extra);
    return per_second((double)run->bytes, run->end_ns - run->start_ns) / 1e6;
}

/* >>reseau: bench_channel.c's handlers, server and clients, for one connection */

static rs_socket_t *new_rs_tcp_socket(void) {
    rs_socket_options_t options;
    memset(&options, 0, sizeof options);
    options.tcp_nodelay = true;
    int err = RS_OK;
    rs_socket_t *socket = rs_socket_new(&options, &err);
    check_rs(socket ? RS_OK : err, "rs_socket_new");
    return socket;
}

typedef struct rs_server {
    bool echo;
    rs_endpoint_t endpoint; /* where it listens, 127.0.0.1:<port> */
    atomic_uint_fast64_t *received;
    atomic_int accepted;
    atomic_int live; /* accepted and not yet closed */
    rs_event_loop_t *loop;
    rs_socket_t *listener;
} rs_server_t;

/* ECHO hands each read message back down as the write; SINK releases it;
 * PINGER (the ping_pongs client) checks the echo and sends the next ping. */
typedef enum handler_role { ROLE_ECHO, ROLE_SINK, ROLE_PINGER } handler_role_t;

typedef struct bench_handler {
    rs_channel_handler_t handler;
    handler_role_t role;
    rs_socket_t *socket; /* connected and assigned; the socket handler takes it */
    rs_server_t *server; /* ECHO, SINK */
    ping_run_t *ping;    /* PINGER */
    bool *closed;        /* PINGER: set when its channel has shut down */
} bench_handler_t;

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
        atomic_fetch_add_explicit(bh->server->received, n, memory_order_relaxed);
        if (rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE) != RS_OK) {
            rs_channel_release_message_to_pool(channel, message);
            rs_channel_shutdown(channel, RS_OK);
        }
        break;
    case ROLE_SINK:
        atomic_fetch_add_explicit(bh->server->received, n, memory_order_relaxed);
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
        *bh->closed = true;
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

static void on_rs_accept(rs_socket_t *listener, int error, rs_socket_t *new_socket, void *user_data) {
    rs_server_t *server = (rs_server_t *)user_data;
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

static void rs_server_start(rs_server_t *server, bool echo, atomic_uint_fast64_t *received) {
    memset(server, 0, sizeof *server);
    server->echo = echo;
    server->received = received;
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

static void rs_server_stop(rs_server_t *server, rs_event_loop_stats_t *stats) {
    uint64_t deadline = bench_now_ns() + SERVER_DRAIN_NS;
    while (atomic_load(&server->live) > 0) {
        if (bench_now_ns() > deadline) {
            fail("reseau server", "a connection is still open after the run");
        }
        rs_thread_sleep_ns(RS_NS_PER_MS);
    }
    check_rs(rs_socket_close(server->listener), "rs_socket_close"); /* any thread, for a listener */
    check_rs(rs_event_loop_stop(server->loop), "rs_event_loop_stop");
    check_rs(rs_event_loop_wait(server->loop), "rs_event_loop_wait");
    rs_event_loop_get_stats(server->loop, stats);
    rs_socket_destroy(server->listener);
    rs_event_loop_destroy(server->loop);
}

static void on_rs_ping_connect(rs_socket_t *socket, int error, void *user_data) {
    bench_handler_t *bh = (bench_handler_t *)user_data;
    check_rs(error, "ping_pongs/reseau: connect");
    new_rs_channel(rs_socket_get_loop(socket), bh);
}

static double reseau_ping_pongs(int arg) {
    (void)arg;
    rs_server_t *server = (rs_server_t *)xcalloc(1, sizeof(rs_server_t));
    atomic_uint_fast64_t received;
    ping_run_t run;
    bool closed = false;
    atomic_init(&received, 0);
    memset(&run, 0, sizeof run);
    rs_server_start(server, true, &received);

    rs_event_loop_t *loop = new_rs_loop();
    bench_handler_t *bh = bench_handler_new(ROLE_PINGER, new_rs_tcp_socket());
    bh->ping = &run;
    bh->closed = &closed;
    check_rs(rs_socket_connect(bh->socket, &server->endpoint, loop, on_rs_ping_connect, bh), "rs_socket_connect");
    while (!closed) {
        check_rs(rs_event_loop_run_once(loop, CLIENT_TICK_MS), "rs_event_loop_run_once");
    }
    rs_event_loop_stats_t client_stats, server_stats;
    rs_event_loop_get_stats(loop, &client_stats);
    rs_event_loop_destroy(loop);
    rs_server_stop(server, &server_stats);

    char extra[100];
    snprintf(extra, sizeof extra, "; ticks: client %llu, server %llu", (unsigned long long)client_stats.ticks,
             (unsigned long long)server_stats.ticks);
    free(server);
    return ping_rate(&run, extra);
}

typedef struct rs_pump_client {
    pump_run_t *run;
    rs_socket_t *socket;
    bool connected;
} rs_pump_client_t;

static void rs_pump_write(rs_pump_client_t *client);

static void on_rs_pump_written(rs_socket_t *socket, int error, size_t bytes_written, void *user_data) {
    rs_pump_client_t *client = (rs_pump_client_t *)user_data;
    (void)socket;
    (void)bytes_written;
    client->run->writes_in_flight--;
    if (error == RS_OK && !client->run->stopping) {
        rs_pump_write(client);
    } else if (error != RS_OK && error != RS_ECANCELED) {
        fail("pump/reseau: write", rs_strerror(error));
    }
}

static void rs_pump_write(rs_pump_client_t *client) {
    check_rs(rs_socket_write(client->socket, rs_byte_cursor_from_array(g_chunk, sizeof g_chunk), on_rs_pump_written,
                             client),
             "rs_socket_write");
    client->run->writes_in_flight++;
}

static void on_rs_pump_connect(rs_socket_t *socket, int error, void *user_data) {
    rs_pump_client_t *client = (rs_pump_client_t *)user_data;
    (void)socket;
    check_rs(error, "pump/reseau: connect");
    client->connected = true;
    for (int i = 0; i < PUMP_DEPTH; i++) {
        rs_pump_write(client);
    }
}

static double reseau_pump(int arg) {
    (void)arg;
    pump_run_t *run = (pump_run_t *)xcalloc(1, sizeof(pump_run_t));
    rs_server_t *server = (rs_server_t *)xcalloc(1, sizeof(rs_server_t));
    rs_pump_client_t client;
    memset(&client, 0, sizeof client);
    client.run = run;
    atomic_init(&run->received, 0);
    rs_server_start(server, false, &run->received);
    rs_event_loop_t *loop = new_rs_loop();
    client.socket = new_rs_tcp_socket();
    check_rs(rs_socket_connect(client.socket, &server->endpoint, loop, on_rs_pump_connect, &client),
             "rs_socket_connect");
    for (;;) {
        check_rs(rs_event_loop_run_once(loop, CLIENT_TICK_MS), "rs_event_loop_run_once");
        if (!run->start_ns) {
            if (client.connected && atomic_load(&server->accepted) == 1) {
                pump_started(run);
            }
        } else if (pump_check(run)) {
            break;
        }
    }
    run->stopping = true;
    check_rs(rs_socket_close(client.socket), "rs_socket_close"); /* cancels queued writes */
    while (run->writes_in_flight > 0) {
        check_rs(rs_event_loop_run_once(loop, CLIENT_TICK_MS), "rs_event_loop_run_once");
    }
    rs_socket_destroy(client.socket);
    rs_event_loop_stats_t client_stats, server_stats;
    rs_event_loop_get_stats(loop, &client_stats);
    rs_event_loop_destroy(loop);
    rs_server_stop(server, &server_stats);

    char extra[100];
    snprintf(extra, sizeof extra, "; ticks: client %llu, server %llu (%llu I/O events)",
             (unsigned long long)client_stats.ticks, (unsigned long long)server_stats.ticks,
             (unsigned long long)server_stats.io_events);
    double rate = pump_result(run, extra);
    free(server);
    free(run);
    return rate;
}

/* >>iocp: the hand-written loop */

static void fail_wsa(const char *what) {
    char why[32];
    snprintf(why, sizeof why, "Winsock error %d", WSAGetLastError());
    fail(what, why);
}

/* One overlapped operation; the packet's OVERLAPPED pointer leads back to it. */
typedef enum raw_kind { RAW_RECV, RAW_SEND, RAW_PROBE } raw_kind_t;

typedef struct raw_op {
    OVERLAPPED overlapped;
    raw_kind_t kind;
    bool pending;
    WSABUF buf;
} raw_op_t;

/* An overlapped WSARecv into data: RAW_RECV, or RAW_PROBE with len 0. */
static void raw_post_read(SOCKET s, raw_op_t *op, raw_kind_t kind, void *data, size_t len) {
    DWORD flags = 0;
    memset(&op->overlapped, 0, sizeof op->overlapped);
    op->kind = kind;
    op->buf.buf = (char *)data;
    op->buf.len = (ULONG)len;
    if (WSARecv(s, &op->buf, 1, NULL, &flags, &op->overlapped, NULL) != 0 && WSAGetLastError() != WSA_IO_PENDING) {
        fail_wsa("WSARecv");
    }
    op->pending = true;
}

static void raw_post_recv(SOCKET s, raw_op_t *op, void *data, size_t len) {
    raw_post_read(s, op, RAW_RECV, data, len);
}

/* The _probe scenarios' read, as reseau's socket_win.c does it: a zero-byte
 * WSARecv that completes when data (or the end) waits. */
static void raw_post_probe(SOCKET s, raw_op_t *op) {
    raw_post_read(s, op, RAW_PROBE, NULL, 0);
}

/* After a probe, one non-blocking recv: the bytes read, 0 on
 * WSAEWOULDBLOCK (nothing more waits), -1 at the end of the stream or on an
 * error. The caller calls again until it gets 0, as reseau's reader does. */
static int raw_recv_once(SOCKET s, uint8_t *buf, size_t cap) {
    int n = recv(s, (char *)buf, (int)cap, 0);
    if (n > 0) {
        return n;
    }
    return n < 0 && WSAGetLastError() == WSAEWOULDBLOCK ? 0 : -1;
}

static void raw_set_nonblocking(SOCKET s) {
    u_long on = 1;
    if (ioctlsocket(s, FIONBIO, &on) != 0) {
        fail_wsa("ioctlsocket FIONBIO");
    }
}

static void raw_post_send(SOCKET s, raw_op_t *op, const void *data, size_t len) {
    memset(&op->overlapped, 0, sizeof op->overlapped);
    op->kind = RAW_SEND;
    op->buf.buf = (char *)data;
    op->buf.len = (ULONG)len;
    if (WSASend(s, &op->buf, 1, NULL, 0, &op->overlapped, NULL) != 0 && WSAGetLastError() != WSA_IO_PENDING) {
        fail_wsa("WSASend");
    }
    op->pending = true;
}

/* Up to RAW_ENTRIES packets, waiting at most timeout_ms; 0 on a timeout. */
static ULONG raw_dequeue(HANDLE port, OVERLAPPED_ENTRY *entries, DWORD timeout_ms) {
    ULONG n = 0;
    if (!GetQueuedCompletionStatusEx(port, entries, RAW_ENTRIES, &n, timeout_ms, FALSE)) {
        if (GetLastError() != WAIT_TIMEOUT) {
            fail("GetQueuedCompletionStatusEx", "failed");
        }
        return 0;
    }
    return n;
}

/* The packet's status: 0 when the operation succeeded. */
static bool raw_failed(const OVERLAPPED_ENTRY *entry) {
    return entry->lpOverlapped->Internal != 0;
}

static HANDLE raw_port_for(SOCKET s) {
    HANDLE port = CreateIoCompletionPort((HANDLE)s, NULL, 0, 1);
    if (!port) {
        fail("CreateIoCompletionPort", "failed");
    }
    return port;
}

static void raw_set_nodelay(SOCKET s) {
    BOOL on = TRUE;
    if (setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&on, sizeof on) != 0) {
        fail_wsa("setsockopt TCP_NODELAY");
    }
}

/* A connected pair on 127.0.0.1, by blocking connect and accept (untimed). */
static void raw_connect_pair(SOCKET *client, SOCKET *server) {
    struct sockaddr_in addr;
    int len = (int)sizeof addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    SOCKET listener = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED);
    if (listener == INVALID_SOCKET || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(listener, 1) != 0 || getsockname(listener, (struct sockaddr *)&addr, &len) != 0) {
        fail_wsa("listener");
    }
    *client = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED);
    if (*client == INVALID_SOCKET || connect(*client, (struct sockaddr *)&addr, sizeof addr) != 0) {
        fail_wsa("connect");
    }
    *server = accept(listener, NULL, NULL);
    if (*server == INVALID_SOCKET) {
        fail_wsa("accept");
    }
    closesocket(listener);
    raw_set_nodelay(*client);
    raw_set_nodelay(*server);
}

/* The server: echo (WSARecv, then WSASend of what came, then WSARecv again)
 * or sink (WSARecv after WSARecv), until the client closes. */
typedef struct raw_server {
    SOCKET socket;
    bool echo;
    bool probe; /* read as reseau does (the _probe scenarios) */
    /* Probe mode, echo: buf holds `sending` bytes under the WSASend, then
     * `held` bytes read since, sent when it completes. full: the reads
     * stopped at the end of buf, before WSAEWOULDBLOCK. */
    size_t sending, held;
    bool full;
    atomic_uint_fast64_t *received;
    HANDLE thread;
    uint64_t dequeues; /* GetQueuedCompletionStatusEx calls that returned packets */
    raw_op_t recv_op, send_op;
    uint8_t buf[PUMP_CHUNK];
} raw_server_t;

/* Probe mode: recv until WSAEWOULDBLOCK, sending each piece back as soon as
 * no WSASend is under way (else it waits in buf behind the one that is), and
 * probe again. Sink: every piece is dropped. */
static bool raw_server_read_ready(raw_server_t *server) {
    server->full = false;
    for (int reads = 0;; reads++) {
        if (reads == RAW_READS_PER_PROBE) {
            raw_post_probe(server->socket, &server->recv_op); /* completes at once if more waits */
            return true;
        }
        size_t used = server->sending + server->held;
        if (used == sizeof server->buf) {
            server->full = true; /* read on when the send completes */
            return true;
        }
        int n = raw_recv_once(server->socket, server->buf + used, sizeof server->buf - used);
        if (n < 0) {
            return false;
        }
        if (n == 0) {
            raw_post_probe(server->socket, &server->recv_op);
            return true;
        }
        atomic_fetch_add_explicit(server->received, (size_t)n, memory_order_relaxed);
        if (!server->echo) {
            continue;
        }
        server->held += (size_t)n;
        if (!server->send_op.pending) {
            server->sending = server->held;
            server->held = 0;
            raw_post_send(server->socket, &server->send_op, server->buf, server->sending);
        }
    }
}

/* Probe mode: the echo's WSASend completed; send what was read since. */
static bool raw_server_probe_sent(raw_server_t *server) {
    memmove(server->buf, server->buf + server->sending, server->held);
    server->sending = server->held;
    server->held = 0;
    if (server->sending) {
        raw_post_send(server->socket, &server->send_op, server->buf, server->sending);
    }
    return !server->full || raw_server_read_ready(server);
}

/* Handles one packet; returns false once the connection is over. */
static bool raw_server_complete(raw_server_t *server, const OVERLAPPED_ENTRY *entry) {
    raw_op_t *op = (raw_op_t *)entry->lpOverlapped;
    size_t n = entry->dwNumberOfBytesTransferred;
    op->pending = false;
    if (raw_failed(entry) || (op->kind == RAW_RECV && n == 0)) {
        return false; /* the client closed or reset */
    }
    if (op->kind == RAW_PROBE) {
        return raw_server_read_ready(server);
    }
    if (op->kind == RAW_SEND) {
        if (n < op->buf.len) {
            raw_post_send(server->socket, &server->send_op, op->buf.buf + n, op->buf.len - n);
        } else if (server->probe) {
            return raw_server_probe_sent(server);
        } else {
            raw_post_recv(server->socket, &server->recv_op, server->buf, sizeof server->buf);
        }
        return true;
    }
    atomic_fetch_add_explicit(server->received, n, memory_order_relaxed);
    if (server->echo) {
        raw_post_send(server->socket, &server->send_op, server->buf, n);
    } else {
        raw_post_recv(server->socket, &server->recv_op, server->buf, sizeof server->buf);
    }
    return true;
}

static DWORD WINAPI raw_server_main(LPVOID arg) {
    raw_server_t *server = (raw_server_t *)arg;
    OVERLAPPED_ENTRY entries[RAW_ENTRIES];
    HANDLE port = raw_port_for(server->socket);
    bool open = true;
    uint64_t deadline = bench_now_ns() + (uint64_t)BENCH_RUN_LIMIT_S * RS_NS_PER_SEC;
    if (server->probe) {
        raw_set_nonblocking(server->socket);
        raw_post_probe(server->socket, &server->recv_op);
    } else {
        raw_post_recv(server->socket, &server->recv_op, server->buf, sizeof server->buf);
    }
    while (open && bench_now_ns() < deadline) {
        ULONG n = raw_dequeue(port, entries, CLIENT_TICK_MS);
        server->dequeues += n > 0;
        for (ULONG i = 0; i < n; i++) {
            open = raw_server_complete(server, &entries[i]) && open;
        }
    }
    closesocket(server->socket); /* ends what is still posted; drain its packets */
    while ((server->recv_op.pending || server->send_op.pending) && bench_now_ns() < deadline) {
        ULONG n = raw_dequeue(port, entries, CLIENT_TICK_MS);
        for (ULONG i = 0; i < n; i++) {
            ((raw_op_t *)entries[i].lpOverlapped)->pending = false;
        }
    }
    CloseHandle(port);
    return 0;
}

static void raw_server_start(raw_server_t *server, SOCKET s, bool echo, bool probe,
                             atomic_uint_fast64_t *received) {
    server->socket = s;
    server->echo = echo;
    server->probe = probe;
    server->received = received;
    server->thread = CreateThread(NULL, 0, raw_server_main, server, 0, NULL);
    if (!server->thread) {
        fail("CreateThread", "the server did not start");
    }
}

static void raw_server_join(raw_server_t *server) {
    if (WaitForSingleObject(server->thread, (DWORD)(SERVER_DRAIN_NS / RS_NS_PER_MS)) != WAIT_OBJECT_0) {
        fail("iocp server", "still running after the run");
    }
    CloseHandle(server->thread);
}

/* Closes the client and waits for every posted operation's packet. */
static void raw_client_close(SOCKET s, HANDLE port, raw_op_t *ops, int count) {
    OVERLAPPED_ENTRY entries[RAW_ENTRIES];
    uint64_t deadline = bench_now_ns() + SERVER_DRAIN_NS;
    closesocket(s);
    for (;;) {
        bool pending = false;
        for (int i = 0; i < count; i++) {
            pending = pending || ops[i].pending;
        }
        if (!pending) {
            break;
        }
        if (bench_now_ns() > deadline) {
            fail("iocp client", "operations still pending after closesocket");
        }
        ULONG n = raw_dequeue(port, entries, CLIENT_TICK_MS);
        for (ULONG i = 0; i < n; i++) {
            ((raw_op_t *)entries[i].lpOverlapped)->pending = false;
        }
    }
    CloseHandle(port);
}

/* arg: 1 reads as reseau does (probe, then recv until WSAEWOULDBLOCK). */
static double iocp_ping_pongs(int arg) {
    static const char message[] = PING_MESSAGE;
    bool probe = arg == 1;
    raw_server_t *server = (raw_server_t *)xcalloc(1, sizeof(raw_server_t));
    atomic_uint_fast64_t received;
    ping_run_t run;
    SOCKET client, accepted;
    raw_op_t ops[2]; /* recv, send */
    uint8_t buf[PUMP_CHUNK];
    OVERLAPPED_ENTRY entries[RAW_ENTRIES];
    bool send_due = false;
    uint64_t dequeues = 0;
    atomic_init(&received, 0);
    memset(&run, 0, sizeof run);
    memset(ops, 0, sizeof ops);
    raw_connect_pair(&client, &accepted);
    raw_server_start(server, accepted, true, probe, &received);
    HANDLE port = raw_port_for(client);

    ping_started(&run);
    if (probe) {
        raw_set_nonblocking(client);
        raw_post_probe(client, &ops[0]);
    } else {
        raw_post_recv(client, &ops[0], buf, sizeof buf);
    }
    raw_post_send(client, &ops[1], message, PING_LEN);
    while (!run.done) {
        ULONG n = raw_dequeue(port, entries, CLIENT_TICK_MS);
        dequeues += n > 0;
        for (ULONG i = 0; i < n && !run.done; i++) {
            raw_op_t *op = (raw_op_t *)entries[i].lpOverlapped;
            size_t got = entries[i].dwNumberOfBytesTransferred;
            op->pending = false;
            if (raw_failed(&entries[i]) || (op->kind == RAW_RECV && got == 0)) {
                fail("ping_pongs/iocp", "the connection failed");
            }
            bool send_next = false;
            if (op->kind == RAW_PROBE) {
                /* As reseau: each piece is handled (and the next ping sent)
                 * before the next recv; WSAEWOULDBLOCK ends the reads. */
                int got_now;
                while (!run.done && (got_now = raw_recv_once(client, buf, sizeof buf)) != 0) {
                    if (got_now < 0) {
                        fail("ping_pongs/iocp", "the server closed");
                    }
                    ping_consume(&run, buf, (size_t)got_now, &send_next);
                    if (send_next && !ops[1].pending) {
                        raw_post_send(client, &ops[1], message, PING_LEN);
                    } else if (send_next) {
                        send_due = true;
                    }
                }
                if (!run.done) {
                    raw_post_probe(client, &ops[0]);
                }
            } else if (op->kind == RAW_RECV && !ping_consume(&run, buf, got, &send_next)) {
                raw_post_recv(client, &ops[0], buf, sizeof buf);
            }
            send_due = send_due || (send_next && op->kind == RAW_RECV);
        }
        /* One send at a time: the next ping waits for the last send's packet. */
        if (send_due && !ops[1].pending && !run.done) {
            raw_post_send(client, &ops[1], message, PING_LEN);
            send_due = false;
        }
        if (bench_now_ns() > run.deadline_ns + SERVER_DRAIN_NS) {
            fail("ping_pongs/iocp", "the echo stopped");
        }
    }
    raw_client_close(client, port, ops, 2);
    raw_server_join(server);

    char extra[100];
    snprintf(extra, sizeof extra, "; dequeues: client %llu, server %llu", (unsigned long long)dequeues,
             (unsigned long long)server->dequeues);
    free(server);
    return ping_rate(&run, extra);
}

/* arg: 1 makes the server read as reseau does (probe, then recv until WSAEWOULDBLOCK). */
static double iocp_pump(int arg) {
    pump_run_t *run = (pump_run_t *)xcalloc(1, sizeof(pump_run_t));
    raw_server_t *server = (raw_server_t *)xcalloc(1, sizeof(raw_server_t));
    SOCKET client, accepted;
    raw_op_t ops[PUMP_DEPTH];
    OVERLAPPED_ENTRY entries[RAW_ENTRIES];
    uint64_t dequeues = 0;
    atomic_init(&run->received, 0);
    memset(ops, 0, sizeof ops);
    raw_connect_pair(&client, &accepted);
    raw_server_start(server, accepted, false, arg == 1, &run->received);
    HANDLE port = raw_port_for(client);

    pump_started(run);
    for (int i = 0; i < PUMP_DEPTH; i++) {
        raw_post_send(client, &ops[i], g_chunk, sizeof g_chunk);
    }
    do {
        ULONG n = raw_dequeue(port, entries, CLIENT_TICK_MS);
        dequeues += n > 0;
        for (ULONG i = 0; i < n; i++) {
            raw_op_t *op = (raw_op_t *)entries[i].lpOverlapped;
            op->pending = false;
            if (raw_failed(&entries[i])) {
                fail("pump/iocp", "a write failed");
            }
            raw_post_send(client, op, g_chunk, sizeof g_chunk);
        }
    } while (!pump_check(run));
    run->stopping = true;
    raw_client_close(client, port, ops, PUMP_DEPTH);
    raw_server_join(server);

    char extra[100];
    snprintf(extra, sizeof extra, "; dequeues: client %llu, server %llu", (unsigned long long)dequeues,
             (unsigned long long)server->dequeues);
    double rate = pump_result(run, extra);
    free(server);
    free(run);
    return rate;
}

/* >>runner */

/* The _probe scenarios are for diagnosis: the same reseau runs against a
 * hand-written loop that reads the way reseau does (a zero-byte WSARecv, then
 * non-blocking recv until WSAEWOULDBLOCK), so their ratio leaves out what
 * the read strategy costs and shows what reseau's own layers cost. */
static const scenario_t g_scenarios[] = {
    {.name = "ping_pongs", .reseau_fn = reseau_ping_pongs, .peer_fn = iocp_ping_pongs, .peer = "iocp",
     .work_unit = "round trip"},
    {.name = "pump_1", .reseau_fn = reseau_pump, .peer_fn = iocp_pump, .peer = "iocp", .unit = " MB/s",
     .work_unit = "MB"},
    {.name = "ping_pongs_probe", .reseau_fn = reseau_ping_pongs, .peer_fn = iocp_ping_pongs, .arg = 1,
     .peer = "iocp_probe", .work_unit = "round trip"},
    {.name = "pump_1_probe", .reseau_fn = reseau_pump, .peer_fn = iocp_pump, .arg = 1, .peer = "iocp_probe",
     .unit = " MB/s", .work_unit = "MB"},
};

int main(int argc, char **argv) {
    WSADATA wsa;
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
        fail("WSAStartup", "failed");
    }
    for (size_t i = 0; i < sizeof g_chunk; i++) {
        g_chunk[i] = (uint8_t)(i * 31 + (i >> 8));
    }
    int status = bench_main(argc, argv, g_scenarios, sizeof g_scenarios / sizeof g_scenarios[0]);
    WSACleanup();
    return status;
}
