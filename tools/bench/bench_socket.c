/*
 * reseau-bench-socket: socket benchmarks over loopback, reseau against libuv.
 *
 * Scenarios, after libuv's own suite (libuv/test/benchmark-pound.c and
 * benchmark-udp-pummel.c). Both keep everything on one loop run by the calling
 * thread, as libuv's pound and pummel do, so a run measures one CPU's worth of
 * runtime plus kernel work, in the same arrangement for both runtimes.
 *
 *   pound_100   A TCP server and a client on one loop. The client keeps
 *               POUND_CONCURRENCY connections to 127.0.0.1 in flight: once one
 *               is connected it is closed with a reset (SO_LINGER {1, 0}, set
 *               through the fd in both runtimes, so that no TIME_WAIT piles up
 *               and the ephemeral ports stay free) and a new one starts. The
 *               server accepts every connection and closes it at once. Figure:
 *               connections per second: POUND_COUNT of them connected and closed
 *               by the client, up to when the client is done and the server has
 *               accepted and closed them all. A connection the server never sees
 *               (its listen queue overflowed: the kernel drops the handshake's
 *               last ACK, and the client has reset the connection before the
 *               server retries) is waited for until the server has been idle
 *               for IDLE_MS, which is not counted; -v shows how many.
 *   udp_pummel  UDP_SENDERS connected UDP sockets send 64-byte datagrams to one
 *               receiver bound to 127.0.0.1. On every loop tick each sender
 *               sends a burst of UDP_BURST datagrams; the receiver reads what is
 *               waiting. The senders stop after UDP_COUNT datagrams in all; the
 *               run ends once the receiver has been idle for IDLE_MS. UDP may
 *               drop, so only datagrams received count. Figure: datagrams
 *               received per second, up to the last one received; -v shows
 *               sent, received and ticks.
 *
 * Each scenario runs reseau and libuv alternately (A B A B ...), `rounds` times
 * each, and prints the median of each side and their ratio, one line per
 * scenario. Every run is bounded in count (POUND_COUNT, UDP_COUNT) and time
 * (BENCH_RUN_LIMIT_S: past it the program stops with a message naming the run).
 *
 * Usage: reseau-bench-socket [-r ROUNDS] [-v] [-only reseau|libuv] [SCENARIO...]
 *   -r     rounds per side (default: BENCH_DEFAULT_ROUNDS)
 *   -v     print every run, with its details
 *   -only  run one side only, and print no table (for profiling)
 *   SCENARIO  run only these (default: all)
 */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"

#include <uv.h>

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Connections per pound run, and how many are in flight at once. */
#define POUND_COUNT ((size_t)20000)
#define POUND_CONCURRENCY 100
/* Datagrams sent per udp_pummel run, by UDP_SENDERS sockets in bursts of
 * UDP_BURST per sender per tick. UDP_SENDERS * UDP_BURST stays at 32: libuv
 * stops reading after 32 datagrams per readiness event (uv__udp_recvmsg's
 * count, with recvmmsg taking 20 at a time), so a larger tick would make libuv
 * fall behind and drop by design of the scenario rather than by its speed. */
#define UDP_COUNT ((size_t)1000000)
#define UDP_SENDERS 4
#define UDP_BURST 8
#define UDP_DATAGRAM_SIZE 64
/* The receiver's batch (reseau) and room per datagram. */
#define UDP_RECV_BATCH RS_DATAGRAM_BATCH_MAX
#define UDP_RECV_ROOM 2048
/* libuv 1.44 uses recvmmsg when the buffer holds several 64 KiB slots; it takes
 * at most 20 (UV__MMSG_MAXWIDTH) per call. */
#define UV_MMSG_SLOTS 20
#define UV_MMSG_SLOT_SIZE (64 * 1024)
/* A run waits for stragglers (datagrams, connections the server has not
 * accepted yet) until nothing has arrived for IDLE_MS; checked this often. */
#define IDLE_MS 50
#define IDLE_CHECK_MS 10
/* Seconds one run may take before the program gives up. */
#define BENCH_RUN_LIMIT_S 10
#define BENCH_DEFAULT_ROUNDS 7
#define BENCH_MAX_ROUNDS 50

static bool g_verbose;
/* NULL: both sides; else "reseau" or "libuv" (-only). */
static const char *g_only;
/* Extra facts about the last run, printed with -v. */
static char g_detail[200];

/* >>helpers */

static uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * RS_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static double per_second(size_t count, uint64_t elapsed_ns) {
    return (double)count * 1e9 / (double)(elapsed_ns ? elapsed_ns : 1);
}

static void fail(const char *what, const char *why) {
    fprintf(stderr, "reseau-bench-socket: %s: %s\n", what, why);
    exit(1);
}

static void check_rs(int err, const char *what) {
    if (err != RS_OK) {
        fail(what, rs_strerror(err));
    }
}

static void check_uv(int err, const char *what) {
    if (err != 0) {
        fail(what, uv_strerror(err));
    }
}

static void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count, size);
    if (!p) {
        fail("calloc", "out of memory");
    }
    return p;
}

/* Close with a reset rather than a FIN: no TIME_WAIT is left behind. */
static void set_linger_reset(int fd, const char *peer) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, (socklen_t)sizeof lg) != 0) {
        fail(peer, "setsockopt(SO_LINGER) failed");
    }
}

/* Watches a counter for IDLE_MS without progress; poll it every IDLE_CHECK_MS. */
typedef struct idle_watch {
    size_t last_count;
    uint64_t since_ns; /* when last_count was seen first; 0 before the first poll */
} idle_watch_t;

static bool idle_watch_expired(idle_watch_t *watch, size_t count) {
    uint64_t now = bench_now_ns();
    if (count != watch->last_count || !watch->since_ns) {
        watch->last_count = count;
        watch->since_ns = now;
        return false;
    }
    return now - watch->since_ns >= (uint64_t)IDLE_MS * RS_NS_PER_MS;
}

static rs_event_loop_t *new_rs_loop(void) {
    int err = RS_OK;
    rs_event_loop_t *loop = rs_event_loop_new(NULL, &err);
    check_rs(loop ? RS_OK : err, "rs_event_loop_new");
    return loop;
}

/* >>watchdog: a run that exceeds BENCH_RUN_LIMIT_S ends the program. */

static const char *volatile g_current_run = "";

static void write_stderr(const char *s) {
    ssize_t n = write(STDERR_FILENO, s, strlen(s));
    (void)n;
}

static void on_alarm(int sig) {
    (void)sig;
    write_stderr("reseau-bench-socket: run exceeded the time limit, giving up: ");
    write_stderr(g_current_run);
    write_stderr("\n");
    _exit(2);
}

/* >>pound
 *
 * reseau: accepted sockets arrive unassigned and are destroyed at once from
 * on_accept (allowed while unassigned). A client socket is destroyed inside
 * its own on_connect, and its replacement is started there.
 *
 * libuv: the server accepts into a malloc'ed uv_tcp_t and uv_close()s it (the
 * fd closes inside uv_close; the handle is freed in the close callback). A
 * client is uv_close()d in its connect callback and its uv_tcp_t reused for
 * the next connection from the close callback, as libuv's pound does.
 */

typedef struct pound_run pound_run_t;

typedef struct uv_pound_conn {
    uv_tcp_t tcp;
    uv_connect_t req;
    pound_run_t *run;
} uv_pound_conn_t;

struct pound_run {
    size_t started;   /* connects begun */
    size_t connected; /* connected and closed by the client */
    size_t accepted;  /* accepted and closed by the server */
    uint64_t client_done_ns;
    uint64_t last_accept_ns;
    uint64_t end_ns;
    bool waiting_for_server; /* the client is done; the idle check runs */
    bool finished;
    idle_watch_t accept_idle;
    /* reseau */
    rs_event_loop_t *loop;
    rs_socket_t *listener;
    rs_endpoint_t server;
    rs_task_t idle_task;
    /* libuv */
    uv_loop_t uv_loop;
    uv_tcp_t uv_server;
    uv_timer_t uv_timer;
    struct sockaddr_in uv_addr;
    uv_pound_conn_t conns[POUND_CONCURRENCY];
};

static void pound_finish(pound_run_t *run) {
    run->end_ns = run->last_accept_ns > run->client_done_ns ? run->last_accept_ns : run->client_done_ns;
    run->finished = true;
}

/* After every client close and server accept. Finishes the run when both sides
 * are done; returns true when the client is done but the server is not, and
 * the idle check (every IDLE_CHECK_MS, calling pound_idle_check) must start. */
static bool pound_progress(pound_run_t *run) {
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
static bool pound_idle_check(pound_run_t *run) {
    if (!run->finished && idle_watch_expired(&run->accept_idle, run->accepted)) {
        pound_finish(run);
    }
    return run->finished;
}

static void pound_verify(const pound_run_t *run, const char *peer) {
    if (run->connected != POUND_COUNT || run->accepted > POUND_COUNT) {
        fprintf(stderr, "reseau-bench-socket: pound/%s: %zu connected, %zu accepted, of %zu\n", peer, run->connected,
                run->accepted, POUND_COUNT);
        exit(1);
    }
}

/* reseau */

static void reseau_pound_connect(pound_run_t *run);

static void on_rs_pound_idle_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    pound_run_t *run = (pound_run_t *)arg;
    if (status == RS_TASK_STATUS_RUN && !pound_idle_check(run)) {
        rs_event_loop_schedule_task_future(run->loop, task,
                                           rs_event_loop_now_ns(run->loop) + IDLE_CHECK_MS * RS_NS_PER_MS);
    }
}

static void reseau_pound_progress(pound_run_t *run) {
    if (pound_progress(run)) {
        rs_event_loop_schedule_task_now(run->loop, &run->idle_task);
    }
}

static void on_rs_pound_accept(rs_socket_t *listener, int error, rs_socket_t *new_socket, void *user_data) {
    pound_run_t *run = (pound_run_t *)user_data;
    (void)listener;
    check_rs(error, "pound/reseau: accept");
    rs_socket_destroy(new_socket);
    run->accepted++;
    run->last_accept_ns = bench_now_ns();
    reseau_pound_progress(run);
}

static void on_rs_pound_connect(rs_socket_t *socket, int error, void *user_data) {
    pound_run_t *run = (pound_run_t *)user_data;
    check_rs(error, "pound/reseau: connect");
    set_linger_reset(rs_socket_get_fd(socket), "pound/reseau");
    rs_socket_destroy(socket);
    run->connected++;
    if (run->started < POUND_COUNT) {
        reseau_pound_connect(run);
    }
    reseau_pound_progress(run);
}

static void reseau_pound_connect(pound_run_t *run) {
    int err = RS_OK;
    rs_socket_t *socket = rs_socket_new(NULL, &err);
    check_rs(socket ? RS_OK : err, "pound/reseau: rs_socket_new");
    check_rs(rs_socket_connect(socket, &run->server, run->loop, on_rs_pound_connect, run), "rs_socket_connect");
    run->started++;
}

static double reseau_pound(int concurrency) {
    pound_run_t *run = (pound_run_t *)xcalloc(1, sizeof(pound_run_t));
    run->loop = new_rs_loop();
    int err = RS_OK;
    run->listener = rs_socket_new(NULL, &err);
    check_rs(run->listener ? RS_OK : err, "pound/reseau: rs_socket_new (listener)");
    rs_endpoint_t local;
    check_rs(rs_endpoint_from_ip(&local, "127.0.0.1", 0), "rs_endpoint_from_ip");
    check_rs(rs_socket_bind(run->listener, &local), "rs_socket_bind");
    check_rs(rs_socket_listen(run->listener, 0), "rs_socket_listen");
    check_rs(rs_socket_get_bound_address(run->listener, &run->server), "rs_socket_get_bound_address");
    check_rs(rs_socket_start_accept(run->listener, run->loop, on_rs_pound_accept, run), "rs_socket_start_accept");
    rs_task_init(&run->idle_task, on_rs_pound_idle_task, run, "pound_idle");

    uint64_t start = bench_now_ns();
    for (int i = 0; i < concurrency; i++) {
        reseau_pound_connect(run);
    }
    while (!run->finished) {
        check_rs(rs_event_loop_run_once(run->loop, -1), "rs_event_loop_run_once");
    }

    pound_verify(run, "reseau");
    rs_event_loop_stats_t stats;
    rs_event_loop_get_stats(run->loop, &stats);
    snprintf(g_detail, sizeof g_detail, "%zu connections in %.1f ms, %zu never accepted, %llu ticks", run->connected,
             (double)(run->end_ns - start) / 1e6, POUND_COUNT - run->accepted, (unsigned long long)stats.ticks);
    rs_socket_destroy(run->listener);
    rs_event_loop_destroy(run->loop);
    double rate = per_second(POUND_COUNT, run->end_ns - start);
    free(run);
    return rate;
}

/* libuv */

static void uv_pound_connect(uv_pound_conn_t *conn);

static void on_uv_free_handle(uv_handle_t *handle) {
    free(handle);
}

static void uv_pound_close_all(pound_run_t *run) {
    uv_close((uv_handle_t *)&run->uv_server, NULL);
    uv_close((uv_handle_t *)&run->uv_timer, NULL);
}

static void on_uv_pound_idle_timer(uv_timer_t *timer) {
    pound_run_t *run = (pound_run_t *)timer->data;
    if (pound_idle_check(run)) {
        uv_pound_close_all(run);
    }
}

static void uv_pound_progress(pound_run_t *run) {
    if (pound_progress(run)) {
        check_uv(uv_timer_start(&run->uv_timer, on_uv_pound_idle_timer, IDLE_CHECK_MS, IDLE_CHECK_MS),
                 "uv_timer_start");
    } else if (run->finished && !uv_is_closing((uv_handle_t *)&run->uv_server)) {
        uv_pound_close_all(run);
    }
}

static void on_uv_pound_connection(uv_stream_t *server, int status) {
    pound_run_t *run = (pound_run_t *)server->data;
    check_uv(status, "pound/libuv: connection");
    uv_tcp_t *client = (uv_tcp_t *)malloc(sizeof(uv_tcp_t));
    if (!client) {
        fail("malloc", "out of memory");
    }
    check_uv(uv_tcp_init(&run->uv_loop, client), "uv_tcp_init");
    check_uv(uv_accept(server, (uv_stream_t *)client), "uv_accept");
    uv_close((uv_handle_t *)client, on_uv_free_handle);
    run->accepted++;
    run->last_accept_ns = bench_now_ns();
    uv_pound_progress(run);
}

static void on_uv_pound_closed(uv_handle_t *handle) {
    uv_pound_conn_t *conn = (uv_pound_conn_t *)handle->data;
    pound_run_t *run = conn->run;
    run->connected++;
    if (run->started < POUND_COUNT) {
        uv_pound_connect(conn);
    }
    uv_pound_progress(run);
}

static void on_uv_pound_connect(uv_connect_t *req, int status) {
    uv_pound_conn_t *conn = (uv_pound_conn_t *)req->data;
    check_uv(status, "pound/libuv: connect");
    uv_os_fd_t fd;
    check_uv(uv_fileno((uv_handle_t *)&conn->tcp, &fd), "uv_fileno");
    set_linger_reset(fd, "pound/libuv");
    uv_close((uv_handle_t *)&conn->tcp, on_uv_pound_closed);
}

static void uv_pound_connect(uv_pound_conn_t *conn) {
    pound_run_t *run = conn->run;
    check_uv(uv_tcp_init(&run->uv_loop, &conn->tcp), "uv_tcp_init");
    conn->tcp.data = conn;
    conn->req.data = conn;
    check_uv(uv_tcp_connect(&conn->req, &conn->tcp, (const struct sockaddr *)&run->uv_addr, on_uv_pound_connect),
             "uv_tcp_connect");
    run->started++;
}

static double libuv_pound(int concurrency) {
    pound_run_t *run = (pound_run_t *)xcalloc(1, sizeof(pound_run_t));
    check_uv(uv_loop_init(&run->uv_loop), "uv_loop_init");
    check_uv(uv_tcp_init(&run->uv_loop, &run->uv_server), "uv_tcp_init");
    run->uv_server.data = run;
    check_uv(uv_timer_init(&run->uv_loop, &run->uv_timer), "uv_timer_init");
    run->uv_timer.data = run;
    check_uv(uv_ip4_addr("127.0.0.1", 0, &run->uv_addr), "uv_ip4_addr");
    check_uv(uv_tcp_bind(&run->uv_server, (const struct sockaddr *)&run->uv_addr, 0), "uv_tcp_bind");
    check_uv(uv_listen((uv_stream_t *)&run->uv_server, SOMAXCONN, on_uv_pound_connection), "uv_listen");
    int len = (int)sizeof run->uv_addr;
    check_uv(uv_tcp_getsockname(&run->uv_server, (struct sockaddr *)&run->uv_addr, &len), "uv_tcp_getsockname");

    uint64_t start = bench_now_ns();
    for (int i = 0; i < concurrency; i++) {
        run->conns[i].run = run;
        uv_pound_connect(&run->conns[i]);
    }
    check_uv(uv_run(&run->uv_loop, UV_RUN_DEFAULT), "uv_run");

    pound_verify(run, "libuv");
    snprintf(g_detail, sizeof g_detail, "%zu connections in %.1f ms, %zu never accepted", run->connected,
             (double)(run->end_ns - start) / 1e6, POUND_COUNT - run->accepted);
    check_uv(uv_loop_close(&run->uv_loop), "uv_loop_close");
    double rate = per_second(POUND_COUNT, run->end_ns - start);
    free(run);
    return rate;
}

/* >>udp pummel
 *
 * Each runtime with its natural best API:
 * reseau: the senders are connected DGRAM sockets; a task that reschedules
 *   itself runs once per tick and sends each sender's burst with one
 *   rs_socket_send_batch (sendmmsg). The receiver reads in on_readable with
 *   rs_socket_recv_batch (recvmmsg, UDP_RECV_BATCH at a time) until a batch
 *   comes back short; readable events are level-triggered, so anything that
 *   arrives later is reported on the next tick.
 * libuv: the senders are uv_udp_connect()ed; a uv_idle_t runs once per loop
 *   iteration and sends each burst with uv_udp_try_send, one sendmsg per
 *   datagram (libuv 1.44 has no batched immediate send; uv_udp_send queues a
 *   request per datagram and flushes the queue with sendmmsg only on the next
 *   iteration, which is slower here). The receiver is uv_udp_init_ex'ed with
 *   UV_UDP_RECVMMSG and given UV_MMSG_SLOTS slots of 64 KiB, so libuv reads
 *   with recvmmsg, 20 datagrams per call and up to 32 per readiness event.
 */

typedef struct udp_run {
    size_t quota;    /* datagrams per sender */
    size_t sent[UDP_SENDERS];
    size_t sent_total;
    size_t received;
    size_t ticks; /* send bursts */
    uint64_t last_rx_ns;
    idle_watch_t rx_idle;
    bool sending_done;
    bool finished;
    char payload[UDP_DATAGRAM_SIZE];
    /* reseau */
    rs_event_loop_t *loop;
    rs_socket_t *receiver;
    rs_socket_t *senders[UDP_SENDERS];
    int connects_pending;
    rs_task_t send_task;
    rs_task_t idle_task;
    rs_datagram_t out[UDP_BURST];
    rs_datagram_t in[UDP_RECV_BATCH];
    char *in_room;
    /* libuv */
    uv_loop_t uv_loop;
    uv_udp_t uv_receiver;
    uv_udp_t uv_senders[UDP_SENDERS];
    uv_idle_t uv_idle;
    uv_timer_t uv_timer;
    char *uv_room;
} udp_run_t;

static udp_run_t *udp_run_new(void) {
    udp_run_t *run = (udp_run_t *)xcalloc(1, sizeof(udp_run_t));
    run->quota = UDP_COUNT / UDP_SENDERS;
    memset(run->payload, 'p', sizeof run->payload);
    return run;
}

static double udp_finish(udp_run_t *run, uint64_t start, const char *peer) {
    if (run->received == 0 || run->sent_total != run->quota * UDP_SENDERS) {
        fprintf(stderr, "reseau-bench-socket: udp_pummel/%s: %zu sent, %zu received\n", peer, run->sent_total,
                run->received);
        exit(1);
    }
    snprintf(g_detail, sizeof g_detail, "%zu sent, %zu received (%zu lost) in %.1f ms, %zu send ticks",
             run->sent_total, run->received, run->sent_total - run->received,
             (double)(run->last_rx_ns - start) / 1e6, run->ticks);
    return per_second(run->received, run->last_rx_ns - start);
}

/* reseau */

static void on_rs_udp_readable(rs_socket_t *socket, int error, void *user_data) {
    udp_run_t *run = (udp_run_t *)user_data;
    check_rs(error, "udp_pummel/reseau: readable");
    size_t n;
    do {
        n = 0;
        int err = rs_socket_recv_batch(socket, run->in, UDP_RECV_BATCH, &n);
        if (err == RS_EAGAIN) {
            break;
        }
        check_rs(err, "rs_socket_recv_batch");
        run->received += n;
    } while (n == UDP_RECV_BATCH);
    run->last_rx_ns = bench_now_ns();
}

static void on_rs_udp_idle_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    udp_run_t *run = (udp_run_t *)arg;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    if (idle_watch_expired(&run->rx_idle, run->received)) {
        run->finished = true;
        return;
    }
    rs_event_loop_schedule_task_future(run->loop, task, rs_event_loop_now_ns(run->loop) + IDLE_CHECK_MS * RS_NS_PER_MS);
}

static void on_rs_udp_send_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    udp_run_t *run = (udp_run_t *)arg;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    run->ticks++;
    bool more = false;
    for (int i = 0; i < UDP_SENDERS; i++) {
        size_t left = run->quota - run->sent[i];
        if (left == 0) {
            continue;
        }
        size_t n = 0;
        int err = rs_socket_send_batch(run->senders[i], run->out, left < UDP_BURST ? left : UDP_BURST, &n);
        if (err != RS_EAGAIN) {
            check_rs(err, "rs_socket_send_batch");
        }
        run->sent[i] += n;
        run->sent_total += n;
        more = more || run->sent[i] < run->quota;
    }
    if (more) {
        rs_event_loop_schedule_task_now(run->loop, task);
        return;
    }
    run->sending_done = true;
    rs_event_loop_schedule_task_now(run->loop, &run->idle_task);
}

static void on_rs_udp_connected(rs_socket_t *socket, int error, void *user_data) {
    udp_run_t *run = (udp_run_t *)user_data;
    (void)socket;
    check_rs(error, "udp_pummel/reseau: connect");
    run->connects_pending--;
}

static rs_socket_t *new_rs_udp_socket(void) {
    rs_socket_options_t options;
    memset(&options, 0, sizeof options);
    options.type = RS_SOCKET_DGRAM;
    int err = RS_OK;
    rs_socket_t *socket = rs_socket_new(&options, &err);
    check_rs(socket ? RS_OK : err, "udp_pummel/reseau: rs_socket_new");
    return socket;
}

static double reseau_udp_pummel(int unused) {
    (void)unused;
    udp_run_t *run = udp_run_new();
    run->loop = new_rs_loop();
    run->in_room = (char *)xcalloc(UDP_RECV_BATCH, UDP_RECV_ROOM);
    for (size_t i = 0; i < UDP_RECV_BATCH; i++) {
        run->in[i].data = run->in_room + i * UDP_RECV_ROOM;
        run->in[i].capacity = UDP_RECV_ROOM;
    }
    for (size_t i = 0; i < UDP_BURST; i++) {
        run->out[i].data = run->payload;
        run->out[i].len = sizeof run->payload;
    }

    rs_endpoint_t local, server;
    check_rs(rs_endpoint_from_ip(&local, "127.0.0.1", 0), "rs_endpoint_from_ip");
    run->receiver = new_rs_udp_socket();
    check_rs(rs_socket_bind(run->receiver, &local), "rs_socket_bind");
    check_rs(rs_socket_get_bound_address(run->receiver, &server), "rs_socket_get_bound_address");
    check_rs(rs_socket_assign_to_loop(run->receiver, run->loop), "rs_socket_assign_to_loop");
    check_rs(rs_socket_subscribe_to_readable_events(run->receiver, on_rs_udp_readable, run),
             "rs_socket_subscribe_to_readable_events");
    for (int i = 0; i < UDP_SENDERS; i++) {
        run->senders[i] = new_rs_udp_socket();
        check_rs(rs_socket_connect(run->senders[i], &server, run->loop, on_rs_udp_connected, run),
                 "rs_socket_connect");
        run->connects_pending++;
    }
    while (run->connects_pending > 0) {
        check_rs(rs_event_loop_run_once(run->loop, -1), "rs_event_loop_run_once");
    }
    rs_task_init(&run->send_task, on_rs_udp_send_task, run, "udp_send");
    rs_task_init(&run->idle_task, on_rs_udp_idle_task, run, "udp_idle");

    uint64_t start = bench_now_ns();
    rs_event_loop_schedule_task_now(run->loop, &run->send_task);
    while (!run->finished) {
        check_rs(rs_event_loop_run_once(run->loop, -1), "rs_event_loop_run_once");
    }

    double rate = udp_finish(run, start, "reseau");
    for (int i = 0; i < UDP_SENDERS; i++) {
        rs_socket_destroy(run->senders[i]);
    }
    rs_socket_destroy(run->receiver);
    rs_event_loop_destroy(run->loop);
    free(run->in_room);
    free(run);
    return rate;
}

/* libuv */

static void on_uv_udp_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    udp_run_t *run = (udp_run_t *)handle->data;
    (void)suggested;
    *buf = uv_buf_init(run->uv_room, UV_MMSG_SLOTS * UV_MMSG_SLOT_SIZE);
}

static void on_uv_udp_recv(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                           unsigned flags) {
    udp_run_t *run = (udp_run_t *)handle->data;
    (void)buf;
    (void)addr;
    if (nread < 0) {
        check_uv((int)nread, "udp_pummel/libuv: recv");
    }
    if (nread > 0) {
        run->received++;
    }
    if (flags & UV_UDP_MMSG_FREE) { /* the end of one recvmmsg batch */
        run->last_rx_ns = bench_now_ns();
    }
}

static void on_uv_udp_idle_timer(uv_timer_t *timer) {
    udp_run_t *run = (udp_run_t *)timer->data;
    if (!idle_watch_expired(&run->rx_idle, run->received)) {
        return;
    }
    run->finished = true;
    uv_close((uv_handle_t *)&run->uv_timer, NULL);
    uv_close((uv_handle_t *)&run->uv_idle, NULL);
    uv_close((uv_handle_t *)&run->uv_receiver, NULL);
    for (int i = 0; i < UDP_SENDERS; i++) {
        uv_close((uv_handle_t *)&run->uv_senders[i], NULL);
    }
}

static void on_uv_udp_send_idle(uv_idle_t *idle) {
    udp_run_t *run = (udp_run_t *)idle->data;
    uv_buf_t buf = uv_buf_init(run->payload, sizeof run->payload);
    run->ticks++;
    bool more = false;
    for (int i = 0; i < UDP_SENDERS; i++) {
        size_t left = run->quota - run->sent[i];
        size_t burst = left < UDP_BURST ? left : UDP_BURST;
        for (size_t j = 0; j < burst; j++) {
            int r = uv_udp_try_send(&run->uv_senders[i], &buf, 1, NULL);
            if (r == UV_EAGAIN) {
                break;
            }
            if (r < 0) {
                check_uv(r, "uv_udp_try_send");
            }
            run->sent[i]++;
            run->sent_total++;
        }
        more = more || run->sent[i] < run->quota;
    }
    if (more) {
        return;
    }
    run->sending_done = true;
    uv_idle_stop(idle);
    check_uv(uv_timer_start(&run->uv_timer, on_uv_udp_idle_timer, IDLE_CHECK_MS, IDLE_CHECK_MS),
             "uv_timer_start");
}

static double libuv_udp_pummel(int unused) {
    (void)unused;
    udp_run_t *run = udp_run_new();
    run->uv_room = (char *)xcalloc(UV_MMSG_SLOTS, UV_MMSG_SLOT_SIZE);
    uv_loop_t *loop = &run->uv_loop;
    check_uv(uv_loop_init(loop), "uv_loop_init");

    struct sockaddr_in addr;
    check_uv(uv_ip4_addr("127.0.0.1", 0, &addr), "uv_ip4_addr");
    check_uv(uv_udp_init_ex(loop, &run->uv_receiver, AF_INET | UV_UDP_RECVMMSG), "uv_udp_init_ex");
    run->uv_receiver.data = run;
    check_uv(uv_udp_bind(&run->uv_receiver, (const struct sockaddr *)&addr, 0), "uv_udp_bind");
    int len = (int)sizeof addr;
    check_uv(uv_udp_getsockname(&run->uv_receiver, (struct sockaddr *)&addr, &len), "uv_udp_getsockname");
    if (!uv_udp_using_recvmmsg(&run->uv_receiver)) {
        fail("udp_pummel/libuv", "recvmmsg not in use");
    }
    check_uv(uv_udp_recv_start(&run->uv_receiver, on_uv_udp_alloc, on_uv_udp_recv), "uv_udp_recv_start");
    for (int i = 0; i < UDP_SENDERS; i++) {
        check_uv(uv_udp_init(loop, &run->uv_senders[i]), "uv_udp_init");
        check_uv(uv_udp_connect(&run->uv_senders[i], (const struct sockaddr *)&addr), "uv_udp_connect");
    }
    check_uv(uv_idle_init(loop, &run->uv_idle), "uv_idle_init");
    run->uv_idle.data = run;
    check_uv(uv_timer_init(loop, &run->uv_timer), "uv_timer_init");
    run->uv_timer.data = run;

    uint64_t start = bench_now_ns();
    check_uv(uv_idle_start(&run->uv_idle, on_uv_udp_send_idle), "uv_idle_start");
    check_uv(uv_run(loop, UV_RUN_DEFAULT), "uv_run");

    double rate = udp_finish(run, start, "libuv");
    check_uv(uv_loop_close(loop), "uv_loop_close");
    free(run->uv_room);
    free(run);
    return rate;
}

/* >>runner */

typedef double bench_fn(int arg);

typedef struct scenario {
    const char *name;
    bench_fn *reseau_fn;
    bench_fn *libuv_fn;
    int arg;
} scenario_t;

static const scenario_t g_scenarios[] = {
    {"pound_100", reseau_pound, libuv_pound, POUND_CONCURRENCY},
    {"udp_pummel", reseau_udp_pummel, libuv_udp_pummel, 0},
};
#define SCENARIO_COUNT (sizeof g_scenarios / sizeof g_scenarios[0])

static double run_one(const scenario_t *s, const char *peer, bench_fn *fn) {
    static char label[64];
    snprintf(label, sizeof label, "%s/%s", s->name, peer);
    g_current_run = label;
    g_detail[0] = '\0';
    alarm(BENCH_RUN_LIMIT_S);
    double rate = fn(s->arg);
    alarm(0);
    if (g_verbose) {
        printf("  %-22s %12.0f/s  %s\n", label, rate, g_detail);
        fflush(stdout);
    }
    return rate;
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, int count) {
    qsort(values, (size_t)count, sizeof(double), compare_double);
    return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

static void run_scenario(const scenario_t *s, int rounds) {
    double reseau[BENCH_MAX_ROUNDS], libuv[BENCH_MAX_ROUNDS];
    if (g_only) {
        bool is_reseau = strcmp(g_only, "reseau") == 0;
        for (int i = 0; i < rounds; i++) {
            double rate = run_one(s, g_only, is_reseau ? s->reseau_fn : s->libuv_fn);
            printf("%-16s  %s=%11.0f/s\n", s->name, g_only, rate);
        }
        return;
    }
    for (int i = 0; i < rounds; i++) {
        reseau[i] = run_one(s, "reseau", s->reseau_fn);
        libuv[i] = run_one(s, "libuv", s->libuv_fn);
    }
    double r = median(reseau, rounds), u = median(libuv, rounds);
    printf("%-16s  reseau=%11.0f/s  libuv=%11.0f/s  ratio=%.2f\n", s->name, r, u, r / u);
    fflush(stdout);
}

static int usage(void) {
    fprintf(stderr, "usage: reseau-bench-socket [-r ROUNDS] [-v] [-only reseau|libuv] [SCENARIO...]\nscenarios:");
    for (size_t i = 0; i < SCENARIO_COUNT; i++) {
        fprintf(stderr, " %s", g_scenarios[i].name);
    }
    fprintf(stderr, "\n");
    return 2;
}

static bool is_selected(const char *name, char **names, int count) {
    for (int i = 0; i < count; i++) {
        if (strcmp(names[i], name) == 0) {
            return true;
        }
    }
    return count == 0;
}

int main(int argc, char **argv) {
    int rounds = BENCH_DEFAULT_ROUNDS;
    int arg = 1;
    for (; arg < argc && argv[arg][0] == '-'; arg++) {
        if (strcmp(argv[arg], "-v") == 0) {
            g_verbose = true;
        } else if (strcmp(argv[arg], "-only") == 0 && arg + 1 < argc) {
            g_only = argv[++arg];
            if (strcmp(g_only, "reseau") != 0 && strcmp(g_only, "libuv") != 0) {
                return usage();
            }
        } else if (strcmp(argv[arg], "-r") == 0 && arg + 1 < argc) {
            rounds = atoi(argv[++arg]);
            if (rounds < 1 || rounds > BENCH_MAX_ROUNDS) {
                return usage();
            }
        } else {
            return usage();
        }
    }
    for (int i = arg; i < argc; i++) {
        bool known = false;
        for (size_t j = 0; j < SCENARIO_COUNT; j++) {
            known = known || strcmp(argv[i], g_scenarios[j].name) == 0;
        }
        if (!known) {
            return usage();
        }
    }
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("# reseau-bench-socket: median of %d runs per side, alternating reseau/libuv; %zu CPUs, libuv %s\n",
           rounds, rs_usable_cpu_count(), uv_version_string());
    for (size_t i = 0; i < SCENARIO_COUNT; i++) {
        if (is_selected(g_scenarios[i].name, argv + arg, argc - arg)) {
            run_scenario(&g_scenarios[i], rounds);
        }
    }
    return 0;
}
