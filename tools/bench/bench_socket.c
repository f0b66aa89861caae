/*
 * reseau-bench-socket: socket benchmarks over loopback, reseau against libuv.
 *
 * Scenarios, after libuv's own suite (libuv/test/benchmark-pound.c and
 * benchmark-udp-pummel.c). Both keep everything on one loop run by the calling
 * thread, as libuv's pound and pummel do, so a run measures one CPU's worth of
 * runtime plus kernel work, in the same arrangement for both runtimes.
 *
 *   pound_100   A TCP server and a client on one loop; pound.h describes the
 *               scenario, its figure and its libuv side. reseau uses plain
 *               rs_sockets.
 *   udp_pummel  UDP_SENDERS connected UDP sockets send 64-byte datagrams to one
 *               receiver bound to 127.0.0.1. On every loop tick each sender
 *               sends a burst of UDP_BURST datagrams; the receiver reads what is
 *               waiting. The senders stop after UDP_COUNT datagrams in all; the
 *               run ends once the receiver has been idle for IDLE_MS. UDP may
 *               drop, so only datagrams received count. Figure: datagrams
 *               received per second, up to the last one received; -v shows
 *               sent, received and ticks.
 *   pipe_pump   512 MiB through one pipe (rs_pipe; libuv: uv_pipe_open on the
 *               same kind of socketpair), both ends on one loop, 64 KiB writes
 *               four at a time, reads into 256 KiB. Figure: MB/s (10^6 bytes)
 *               read, until the reader sees the end of the stream.
 *
 * The _io_uring scenarios run reseau's side on the io_uring backend.
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

#define BENCH_PROGRAM "reseau-bench-socket"
/* Seconds one run may take before the program gives up. */
#define BENCH_RUN_LIMIT_S 10
#define BENCH_DEFAULT_ROUNDS 7
#include "bench_common.h"
#include "pound.h"

#include <netinet/in.h>

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

/* >>pound (reseau; the scenario and its libuv side are in pound.h)
 *
 * Accepted sockets arrive unassigned and are destroyed at once from on_accept
 * (allowed while unassigned). A client socket is destroyed inside its own
 * on_connect, and its replacement is started there.
 */

typedef struct rs_pound {
    pound_run_t run;
    rs_event_loop_t *loop;
    rs_socket_t *listener;
    rs_endpoint_t server;
    rs_task_t idle_task;
} rs_pound_t;

static void reseau_pound_connect(rs_pound_t *pound);

static void on_rs_pound_idle_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_pound_t *pound = (rs_pound_t *)arg;
    if (status == RS_TASK_STATUS_RUN && !pound_idle_check(&pound->run)) {
        rs_event_loop_schedule_task_future(pound->loop, task,
                                           rs_event_loop_now_ns(pound->loop) + IDLE_CHECK_MS * RS_NS_PER_MS);
    }
}

static void reseau_pound_progress(rs_pound_t *pound) {
    if (pound_progress(&pound->run)) {
        rs_event_loop_schedule_task_now(pound->loop, &pound->idle_task);
    }
}

static void on_rs_pound_accept(rs_socket_t *listener, int error, rs_socket_t *new_socket, void *user_data) {
    rs_pound_t *pound = (rs_pound_t *)user_data;
    (void)listener;
    check_rs(error, "pound/reseau: accept");
    rs_socket_destroy(new_socket);
    pound->run.accepted++;
    pound->run.last_accept_ns = bench_now_ns();
    reseau_pound_progress(pound);
}

static void on_rs_pound_connect(rs_socket_t *socket, int error, void *user_data) {
    rs_pound_t *pound = (rs_pound_t *)user_data;
    check_rs(error, "pound/reseau: connect");
    set_linger_reset(rs_socket_get_fd(socket), "pound/reseau");
    rs_socket_destroy(socket);
    pound->run.connected++;
    if (pound->run.started < POUND_COUNT) {
        reseau_pound_connect(pound);
    }
    reseau_pound_progress(pound);
}

static void reseau_pound_connect(rs_pound_t *pound) {
    int err = RS_OK;
    rs_socket_t *socket = rs_socket_new(NULL, &err);
    check_rs(socket ? RS_OK : err, "pound/reseau: rs_socket_new");
    check_rs(rs_socket_connect(socket, &pound->server, pound->loop, on_rs_pound_connect, pound), "rs_socket_connect");
    pound->run.started++;
}

static double reseau_pound(int concurrency) {
    rs_pound_t *pound = (rs_pound_t *)xcalloc(1, sizeof(rs_pound_t));
    pound->loop = new_rs_loop();
    int err = RS_OK;
    pound->listener = rs_socket_new(NULL, &err);
    check_rs(pound->listener ? RS_OK : err, "pound/reseau: rs_socket_new (listener)");
    rs_endpoint_t local;
    check_rs(rs_endpoint_from_ip(&local, "127.0.0.1", 0), "rs_endpoint_from_ip");
    check_rs(rs_socket_bind(pound->listener, &local), "rs_socket_bind");
    check_rs(rs_socket_listen(pound->listener, 0), "rs_socket_listen");
    check_rs(rs_socket_get_bound_address(pound->listener, &pound->server), "rs_socket_get_bound_address");
    check_rs(rs_socket_start_accept(pound->listener, pound->loop, on_rs_pound_accept, pound), "rs_socket_start_accept");
    rs_task_init(&pound->idle_task, on_rs_pound_idle_task, pound, "pound_idle");

    uint64_t start = bench_now_ns();
    for (int i = 0; i < concurrency; i++) {
        reseau_pound_connect(pound);
    }
    while (!pound->run.finished) {
        check_rs(rs_event_loop_run_once(pound->loop, -1), "rs_event_loop_run_once");
    }

    double rate = pound_verify(&pound->run, "reseau", start);
    rs_event_loop_stats_t stats;
    rs_event_loop_get_stats(pound->loop, &stats);
    snprintf(g_detail, sizeof g_detail, "%zu connections in %.1f ms, %zu never accepted, %llu ticks",
             pound->run.connected, (double)(pound->run.end_ns - start) / 1e6, POUND_COUNT - pound->run.accepted,
             (unsigned long long)stats.ticks);
    rs_socket_destroy(pound->listener);
    rs_event_loop_destroy(pound->loop);
    free(pound);
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

/* >>pipe_pump: PIPE_BYTES through one pipe whose two ends are on one loop.
 *
 * reseau: rs_pipe_new (a Unix socketpair shut down to one direction) with
 * PIPE_CHUNK writes, PIPE_IN_FLIGHT at a time, and a reader that reads all
 * that waits into a PIPE_READ_ROOM buffer. libuv: the same socketpair, each
 * end opened with uv_pipe_open, the same writes with uv_write, and uv_read_start
 * with a PIPE_READ_ROOM buffer. The writer ends once everything is written;
 * the run ends when the reader sees the end of the stream. */

#define PIPE_BYTES ((uint64_t)512 * 1024 * 1024)
#define PIPE_CHUNK (64 * 1024)
#define PIPE_IN_FLIGHT 4
#define PIPE_READ_ROOM (256 * 1024)

static uint8_t g_pipe_chunk[PIPE_CHUNK];
static uint8_t g_pipe_room[PIPE_READ_ROOM];

static double pipe_rate(uint64_t bytes, uint64_t start, const char *side) {
    uint64_t elapsed = bench_now_ns() - start;
    if (bytes != PIPE_BYTES) {
        fprintf(stderr, BENCH_PROGRAM ": pipe_pump/%s: %llu bytes arrived of %llu\n", side, (unsigned long long)bytes,
                (unsigned long long)PIPE_BYTES);
        exit(1);
    }
    g_work = (double)bytes / 1e6;
    return (double)bytes / 1e6 / ((double)(elapsed ? elapsed : 1) / 1e9);
}

typedef struct rs_pipe_pump {
    rs_pipe_read_end_t *reader;
    rs_pipe_write_end_t *writer;
    uint64_t queued;   /* bytes handed to rs_pipe_write */
    uint64_t written;  /* bytes whose write completed */
    uint64_t received;
    bool ended;
} rs_pipe_pump_t;

static void on_rs_pipe_written(rs_pipe_write_end_t *writer, int error, size_t written, void *user_data);

static void rs_pipe_pump_fill(rs_pipe_pump_t *p) {
    while (p->queued < PIPE_BYTES && p->queued - p->written < (uint64_t)PIPE_IN_FLIGHT * PIPE_CHUNK) {
        check_rs(rs_pipe_write(p->writer, rs_byte_cursor_from_array(g_pipe_chunk, PIPE_CHUNK), on_rs_pipe_written, p),
                 "rs_pipe_write");
        p->queued += PIPE_CHUNK;
    }
}

static void on_rs_pipe_written(rs_pipe_write_end_t *writer, int error, size_t written, void *user_data) {
    rs_pipe_pump_t *p = (rs_pipe_pump_t *)user_data;
    check_rs(error, "pipe write");
    p->written += written;
    rs_pipe_pump_fill(p);
    if (p->written == PIPE_BYTES) {
        rs_pipe_write_end_destroy(writer); /* the reader sees the end of the stream */
        p->writer = NULL;
    }
}

static void on_rs_pipe_readable(rs_pipe_read_end_t *reader, int error, void *user_data) {
    rs_pipe_pump_t *p = (rs_pipe_pump_t *)user_data;
    check_rs(error, "pipe readable");
    for (;;) {
        rs_byte_buf_t buf = rs_byte_buf_from_array(g_pipe_room, 0, sizeof(g_pipe_room));
        size_t n = 0;
        int err = rs_pipe_read(reader, &buf, &n);
        p->received += n;
        if (err == RS_EAGAIN) {
            return;
        }
        if (err == RS_EEOF) {
            p->ended = true;
            return;
        }
        check_rs(err, "rs_pipe_read");
    }
}

static double reseau_pipe_pump(int unused) {
    rs_pipe_pump_t p;
    rs_event_loop_t *loop = new_rs_loop();
    uint64_t start;
    (void)unused;
    memset(&p, 0, sizeof(p));
    check_rs(rs_pipe_new(loop, loop, NULL, &p.reader, &p.writer), "rs_pipe_new");
    check_rs(rs_pipe_subscribe_to_readable_events(p.reader, on_rs_pipe_readable, &p), "rs_pipe_subscribe");
    start = bench_now_ns();
    rs_pipe_pump_fill(&p);
    while (!p.ended) {
        check_rs(rs_event_loop_run_once(loop, -1), "rs_event_loop_run_once");
    }
    double rate = pipe_rate(p.received, start, "reseau");
    rs_pipe_read_end_destroy(p.reader);
    rs_event_loop_destroy(loop);
    return rate;
}

typedef struct uv_pipe_pump {
    uv_pipe_t reader;
    uv_pipe_t writer;
    uv_write_t reqs[PIPE_IN_FLIGHT];
    bool req_busy[PIPE_IN_FLIGHT];
    uint64_t queued;
    uint64_t written;
    uint64_t received;
    bool ended;
} uv_pipe_pump_t;

static void on_uv_pipe_written(uv_write_t *req, int status);

static void uv_pipe_pump_fill(uv_pipe_pump_t *p) {
    int i;
    for (i = 0; i < PIPE_IN_FLIGHT && p->queued < PIPE_BYTES; ++i) {
        if (!p->req_busy[i]) {
            uv_buf_t b = uv_buf_init((char *)g_pipe_chunk, PIPE_CHUNK);
            p->reqs[i].data = p;
            check_uv(uv_write(&p->reqs[i], (uv_stream_t *)&p->writer, &b, 1, on_uv_pipe_written), "uv_write");
            p->req_busy[i] = true;
            p->queued += PIPE_CHUNK;
        }
    }
}

static void on_uv_pipe_written(uv_write_t *req, int status) {
    uv_pipe_pump_t *p = (uv_pipe_pump_t *)req->data;
    check_uv(status, "pipe write");
    p->req_busy[req - p->reqs] = false;
    p->written += PIPE_CHUNK;
    uv_pipe_pump_fill(p);
    if (p->written == PIPE_BYTES) {
        uv_close((uv_handle_t *)&p->writer, NULL); /* closes the fd: the reader sees the end */
    }
}

static void on_uv_pipe_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    (void)handle;
    (void)suggested;
    *buf = uv_buf_init((char *)g_pipe_room, sizeof(g_pipe_room));
}

static void on_uv_pipe_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    uv_pipe_pump_t *p = (uv_pipe_pump_t *)stream->data;
    (void)buf;
    if (nread > 0) {
        p->received += (uint64_t)nread;
    } else if (nread == UV_EOF) {
        p->ended = true;
        uv_close((uv_handle_t *)stream, NULL);
    } else if (nread < 0) {
        check_uv((int)nread, "pipe read");
    }
}

static double libuv_pipe_pump(int unused) {
    uv_loop_t loop;
    uv_pipe_pump_t *p = (uv_pipe_pump_t *)xcalloc(1, sizeof(*p));
    int fds[2];
    uint64_t start;
    (void)unused;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0 || shutdown(fds[0], SHUT_WR) != 0 ||
        shutdown(fds[1], SHUT_RD) != 0) {
        fail("socketpair", strerror(errno));
    }
    check_uv(uv_loop_init(&loop), "uv_loop_init");
    check_uv(uv_pipe_init(&loop, &p->reader, 0), "uv_pipe_init");
    check_uv(uv_pipe_init(&loop, &p->writer, 0), "uv_pipe_init");
    check_uv(uv_pipe_open(&p->reader, fds[0]), "uv_pipe_open");
    check_uv(uv_pipe_open(&p->writer, fds[1]), "uv_pipe_open");
    p->reader.data = p;
    check_uv(uv_read_start((uv_stream_t *)&p->reader, on_uv_pipe_alloc, on_uv_pipe_read), "uv_read_start");
    start = bench_now_ns();
    uv_pipe_pump_fill(p);
    while (!p->ended) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    double rate = pipe_rate(p->received, start, "libuv");
    uv_run(&loop, UV_RUN_DEFAULT); /* the closes */
    check_uv(uv_loop_close(&loop), "uv_loop_close");
    free(p);
    return rate;
}

/* >>runner */

BENCH_ON_BACKEND(io_uring_pound, reseau_pound, RS_EVENT_LOOP_BACKEND_IO_URING)
BENCH_ON_BACKEND(io_uring_udp_pummel, reseau_udp_pummel, RS_EVENT_LOOP_BACKEND_IO_URING)
BENCH_ON_BACKEND(io_uring_pipe_pump, reseau_pipe_pump, RS_EVENT_LOOP_BACKEND_IO_URING)

static const scenario_t g_scenarios[] = {
    {.name = "pound_100", .reseau_fn = reseau_pound, .peer_fn = libuv_pound, .arg = POUND_CONCURRENCY,
     .work_unit = "connection"},
    {.name = "udp_pummel", .reseau_fn = reseau_udp_pummel, .peer_fn = libuv_udp_pummel, .arg = 0},
    /* "reseau" is the io_uring backend here (readiness polls so far). */
    {.name = "pound_100_io_uring", .reseau_fn = io_uring_pound, .peer_fn = libuv_pound, .arg = POUND_CONCURRENCY,
     .work_unit = "connection"},
    {.name = "udp_pummel_io_uring", .reseau_fn = io_uring_udp_pummel, .peer_fn = libuv_udp_pummel, .arg = 0},
    {.name = "pipe_pump", .reseau_fn = reseau_pipe_pump, .peer_fn = libuv_pipe_pump, .unit = " MB/s", .work_unit = "MB"},
    {.name = "pipe_pump_io_uring", .reseau_fn = io_uring_pipe_pump, .peer_fn = libuv_pipe_pump, .unit = " MB/s",
     .work_unit = "MB"},
};

int main(int argc, char **argv) {
    return bench_main(argc, argv, g_scenarios, sizeof g_scenarios / sizeof g_scenarios[0]);
}
