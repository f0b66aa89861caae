/*
 * The socket channel handler in real pipelines over loopback TCP, after
 * aws-c-io's socket_handler_test.c: close and EOF handling, read-to-EOF after a
 * hang-up, read back-pressure, loop pinning, statistics, writability, large
 * echoes with checksums through a 3-handler pipeline, many connections on an
 * event-loop group, and graceful versus abortive shutdown.
 *
 * Tests with a single loop run on every backend (names end in _epoll/_poll/_kqueue)
 * and drive it on the test thread with rs_event_loop_run_once, so every
 * callback runs here. Callbacks never assert: they record what they see in a
 * conn_t (CHECK), and the test asserts afterwards. Group tests run loops on
 * their own threads; loop threads and the test thread share only counters
 * under h->lock, and the test reads conn_t after the loops are joined.
 * Every wait is bounded; only loopback addresses are used.
 *
 * Scale: the big transfers (1 GiB echo, 1000 x 1 MiB) run in full in plain
 * and ASan+UBSan builds. Under TSan (detected at compile time) and under
 * valgrind (detected by its preloaded library) they are divided by 16,
 * because there they take minutes (TSan: 60-90 s per GiB), and under Wine
 * (detected by ntdll's wine_get_version) by 8; see test_scale().
 * RESEAU_TEST_SCALE=<divisor> overrides the choice.
 */
#include "test_util.h"

#include <unistd.h>

#define WAIT_NS (20 * RS_NS_PER_SEC)

/* Whether the loop's sockets hand writes to the kernel as operations that
 * complete later (io_uring's, and every IOCP socket), rather than at once. */
static bool completion_sockets(rs_event_loop_t *loop) {
#if RESEAU_OS_WINDOWS
    (void)loop;
    return true;
#else
    return rs__uring_loop_has_ops(loop);
#endif
}
#define BIG_WAIT_NS (100 * RS_NS_PER_SEC)
#define KIB ((uint64_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

/* ---------------------------------------------------------------- scale */

/* ThreadSanitizer makes this traffic ~12x slower (1 GiB: 60-90 s instead of
 * 5-7 s) and valgrind more; ASan+UBSan hardly at all, so ASan builds run the
 * full sizes. */
#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif
#ifndef TEST_TSAN
#define TEST_TSAN 0
#endif

static bool under_valgrind(void) {
    const char *preload = getenv("LD_PRELOAD");
    return preload && strstr(preload, "vgpreload") != NULL;
}

/* Wine carries every socket call through its server process: at full size
 * the big transfers take 70-180 s there on two busy cores, past the test's
 * timeout. */
static bool under_wine(void) {
#if RESEAU_OS_WINDOWS
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    return ntdll && GetProcAddress(ntdll, "wine_get_version") != NULL;
#else
    return false;
#endif
}

/* Divisor for the big transfers: 1 (full size) in plain and ASan builds. */
static uint64_t test_scale(void) {
    const char *env = getenv("RESEAU_TEST_SCALE");
    if (env && atoi(env) > 0) {
        return (uint64_t)atoi(env);
    }
    if (TEST_TSAN || under_valgrind()) {
        return 16;
    }
    return under_wine() ? 8 : 1;
}

/* ---------------------------------------------------------------- data */

/* Stream byte at position p (plus a per-stream seed) is g_pat[(seed + p) % PAT_LEN].
 * PAT_LEN is prime, so message boundaries never line up with the pattern. The
 * array carries 64 KiB past PAT_LEN so any position gives 64 KiB contiguous. */
#define PAT_LEN 65521u
#define PAT_SPAN ((size_t)65536)
static uint8_t g_pat[PAT_LEN + PAT_SPAN];

static void pat_init(void) {
    uint64_t x = 0x243F6A8885A308D3ULL;
    size_t i;
    for (i = 0; i < PAT_LEN; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        g_pat[i] = (uint8_t)(x >> 24);
    }
    for (i = 0; i < PAT_SPAN; ++i) {
        g_pat[PAT_LEN + i] = g_pat[i];
    }
}

static const uint8_t *pat_at(uint64_t pos) {
    return g_pat + (size_t)(pos % PAT_LEN);
}

/* A streaming 64-bit checksum, order-sensitive and independent of how the
 * stream is split: bytes are packed little-endian into 64-bit words. */
typedef struct cksum {
    uint64_t h;
    uint64_t carry;
    unsigned nc;
    uint64_t n;
} cksum_t;

static void ck_init(cksum_t *c) {
    c->h = 0xcbf29ce484222325ULL;
    c->carry = 0;
    c->nc = 0;
    c->n = 0;
}

static uint64_t ck_mix(uint64_t h, uint64_t w) {
    h ^= w;
    h *= 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 29);
}

static void ck_update(cksum_t *c, const uint8_t *p, size_t len) {
    c->n += len;
    while (len > 0 && c->nc != 0) {
        c->carry |= (uint64_t)*p++ << (8 * c->nc);
        --len;
        if (++c->nc == 8) {
            c->h = ck_mix(c->h, c->carry);
            c->carry = 0;
            c->nc = 0;
        }
    }
    while (len >= 8) {
        uint64_t w = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
                     (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
        c->h = ck_mix(c->h, w);
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c->carry |= (uint64_t)*p++ << (8 * c->nc);
        ++c->nc;
        --len;
    }
}

static uint64_t ck_final(const cksum_t *c) {
    return ck_mix(ck_mix(c->h, c->carry ^ ((uint64_t)c->nc << 56)), c->n);
}

/* Checksum of the first `len` bytes of stream `seed`. */
static uint64_t ck_of_stream(uint64_t seed, uint64_t len) {
    cksum_t c;
    uint64_t pos = 0;
    ck_init(&c);
    while (pos < len) {
        size_t n = len - pos < PAT_SPAN ? (size_t)(len - pos) : PAT_SPAN;
        ck_update(&c, pat_at(seed + pos), n);
        pos += n;
    }
    return ck_final(&c);
}

/* Receive side of a stream: checks every byte against the pattern, sums it. */
typedef struct stream_rx {
    uint64_t seed;
    uint64_t expect;
    uint64_t pos;
    uint64_t first_bad; /* UINT64_MAX while every byte matched */
    bool overflow;      /* more than `expect` bytes arrived */
    cksum_t ck;
} stream_rx_t;

static void rx_init(stream_rx_t *rx, uint64_t seed, uint64_t expect) {
    memset(rx, 0, sizeof(*rx));
    rx->seed = seed;
    rx->expect = expect;
    rx->first_bad = UINT64_MAX;
    ck_init(&rx->ck);
}

static void rx_feed(stream_rx_t *rx, const uint8_t *data, size_t len) {
    size_t done = 0;
    if (rx->pos + len > rx->expect) {
        rx->overflow = true;
    }
    ck_update(&rx->ck, data, len);
    while (done < len) {
        size_t n = len - done < PAT_SPAN ? len - done : PAT_SPAN;
        if (rx->first_bad == UINT64_MAX && memcmp(data + done, pat_at(rx->seed + rx->pos), n) != 0) {
            rx->first_bad = rx->pos;
        }
        rx->pos += n;
        done += n;
    }
}

static bool rx_complete(const stream_rx_t *rx) {
    return rx->pos >= rx->expect;
}

/* ---------------------------------------------------------------- connections */

typedef struct harness harness_t;

typedef enum app_kind {
    APP_PEER, /* sends its own stream, receives and checks the other side's */
    APP_ECHO  /* sends back what it receives */
} app_kind_t;

typedef enum tx_start {
    TX_NEVER = 0,
    TX_ON_SETUP,
    TX_ON_GO,        /* when the test schedules go_task */
    TX_ON_FIRST_READ /* when the first byte arrives */
} tx_start_t;

/* One end of a connection: the channel's configuration and everything its
 * callbacks observe. Owned by the test; outlives the channel. */
typedef struct conn {
    /* configuration, set before the channel exists */
    app_kind_t app;
    bool passthrough;          /* socket -> pass-through (copies) -> app */
    bool back_pressure;        /* enable_read_back_pressure */
    size_t window;             /* the app handler's initial read window */
    bool delayed;              /* window increments (PEER) or echoes (ECHO) happen a tick later */
    bool echo_inc_on_completion; /* ECHO: reopen the window when the echo reached the kernel */
    size_t high_water;
    size_t low_water;
    uint64_t tx_total;
    uint64_t tx_seed;
    tx_start_t tx_start;
    size_t tx_chunk;           /* bytes written per writability check (default 16 KiB) */
    bool tx_ignore_writability; /* write everything at once */
    size_t max_pending_after_pump; /* rs_channel_get_pending_write_bytes right after a pump (max) */
    int tx_then_shutdown;      /* after queueing everything: 1 graceful, 2 abortive */
    bool pump_in_callback;     /* resume writing inside on_writability_changed itself */
    uint64_t rx_expect;
    uint64_t rx_seed;
    bool shutdown_when_done;   /* shut down (RS_OK) once everything was sent and received */
    uint32_t stats_interval_ms;
    rs_event_loop_t *expect_loop; /* if set, every callback checks it runs on this loop's thread */
    harness_t *h;
    bool is_client;

    /* state: the channel's loop thread only */
    rs_socket_t *socket;
    rs_channel_t *channel;
    rs_channel_handler_t *sock_handler;
    rs_channel_slot_t *app_slot;
    rs_task_t hop_task;
    rs_channel_task_t go_task;
    rs_channel_task_t pump_task;
    rs_channel_task_t work_task;
    bool pump_scheduled;
    bool work_scheduled;
    rs_list_t queue;          /* ECHO delayed: messages waiting to be echoed */
    uint64_t pending_inc;     /* PEER delayed: bytes to give back to the window */
    uint64_t win_avail;       /* window granted and not yet used */
    uint64_t outstanding;     /* received and not yet given back */
    uint64_t max_outstanding;
    size_t max_message;
    bool tx_started;
    bool finished;
    uint64_t tx_sent;
    uint64_t tx_msgs;
    uint64_t tx_ok;
    uint64_t tx_ok_bytes;
    uint64_t tx_canceled;
    uint64_t tx_other;
    int tx_other_error;
    cksum_t tx_ck;
    stream_rx_t rx;
    uint64_t echo_sent;
    uint64_t pt_reads;
    uint64_t pt_writes;
    int wr_false;
    int wr_true;
    bool wr_expect;           /* the next writability event expected */
    uint64_t chunks;
    uint64_t chunks_after_true;
    uint64_t pending_at_false; /* socket bytes queued when "not writable" came (min) */
    uint64_t pending_at_true;  /* ... when "writable" came (max) */
    int connect_error;
    int setup_calls;
    int setup_error;
    int shutdown_calls;
    int shutdown_error;
    int app_shut_read;
    int app_shut_write;
    int app_shut_read_err;
    int app_shut_write_err;
    uint64_t rx_at_read_shutdown;
    int app_destroyed;
    int stats_calls;
    int stats_after_shutdown;
    uint64_t stats_sock_read;
    uint64_t stats_sock_written;
    uint64_t stats_app_read;
    uint64_t stats_last_ns;
    uint64_t stats_min_gap_ns;
    size_t stats_min_count;
    size_t stats_max_count;
    uint64_t st_read;         /* the app handler's own statistics */
    uint64_t st_written;
    bool live;                /* group tests: under h->lock */

    int check_failures;
    const char *check_expr;
    int check_line;
} conn_t;

#define CHECK(c, cond)                                                                              \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            conn_check_failed((c), #cond, __LINE__);                                                \
        }                                                                                           \
    } while (0)

static void conn_check_failed(conn_t *c, const char *expr, int line) {
    if (c->check_failures++ == 0) {
        c->check_expr = expr;
        c->check_line = line;
    }
}

static void assert_conn_ok(const conn_t *c) {
    if (c->check_failures) {
        fail_msg("%d check(s) failed in callbacks; first: line %d: %s", c->check_failures, c->check_line,
                 c->check_expr);
    }
}

static void conn_init(conn_t *c) {
    memset(c, 0, sizeof(*c));
    c->window = 256 * KIB;
    c->tx_chunk = 16 * KIB;
    c->shutdown_error = 12345;
    c->setup_error = 12345;
    c->connect_error = 12345;
    c->stats_min_gap_ns = UINT64_MAX;
    c->stats_min_count = SIZE_MAX;
    c->pending_at_false = UINT64_MAX;
    c->tx_other_error = RS_OK;
    rs_list_init(&c->queue);
    ck_init(&c->tx_ck);
    rx_init(&c->rx, 0, 0);
}

static void conn_thread_check(conn_t *c) {
    if (c->channel) {
        CHECK(c, rs_channel_is_on_loop_thread(c->channel));
    }
    if (c->expect_loop) {
        CHECK(c, rs_event_loop_is_on_loop_thread(c->expect_loop));
        if (c->channel) {
            CHECK(c, rs_channel_get_loop(c->channel) == c->expect_loop);
        }
    }
}

static void harness_on_ready(conn_t *c);
static void harness_on_done(conn_t *c);
static void pump(conn_t *c);

/* Give `n` bytes back to the app handler's read window. */
static void give_window(conn_t *c, uint64_t n) {
    if (!c->app_slot || n == 0) {
        return;
    }
    c->win_avail += n;
    CHECK(c, c->outstanding >= n);
    c->outstanding -= n;
    CHECK(c, rs_channel_slot_increment_read_window(c->app_slot, (size_t)n) == RS_OK);
}

static void maybe_finish(conn_t *c) {
    if (c->shutdown_when_done && !c->finished && rx_complete(&c->rx) && c->tx_sent >= c->tx_total) {
        c->finished = true;
        CHECK(c, rs_channel_shutdown(c->channel, RS_OK) == RS_OK);
    }
}

static void tx_written(rs_channel_t *channel, rs_io_message_t *message, int error, void *user_data) {
    conn_t *c = (conn_t *)user_data;
    (void)channel;
    conn_thread_check(c);
    if (error == RS_OK) {
        ++c->tx_ok;
        c->tx_ok_bytes += message->message_data.len;
    } else if (error == RS_ECANCELED) {
        ++c->tx_canceled;
    } else {
        ++c->tx_other;
        c->tx_other_error = error;
    }
}

static void echo_written(rs_channel_t *channel, rs_io_message_t *message, int error, void *user_data) {
    conn_t *c = (conn_t *)user_data;
    tx_written(channel, message, error, user_data);
    if (error == RS_OK && c->echo_inc_on_completion) {
        give_window(c, message->message_data.len);
    }
}

/* Send one message of `len` bytes from `data` down the pipeline. */
static bool send_write(conn_t *c, const uint8_t *data, size_t len, rs_io_message_on_completion_fn *done) {
    rs_io_message_t *m = rs_channel_acquire_message_from_pool(c->channel, RS_IO_MESSAGE_APPLICATION_DATA, len);
    int err;
    CHECK(c, m != NULL);
    if (!m) {
        rs_channel_shutdown(c->channel, RS_ENOMEM);
        return false;
    }
    CHECK(c, m->message_data.capacity >= len);
    CHECK(c, rs_byte_buf_append(&m->message_data, data, len) == RS_OK);
    m->on_completion = done;
    m->user_data = c;
    err = rs_channel_slot_send_message(c->app_slot, m, RS_CHANNEL_DIR_WRITE);
    if (err) {
        rs_channel_release_message_to_pool(c->channel, m);
        if (!c->app_shut_read) {
            CHECK(c, err == RS_OK);
            rs_channel_shutdown(c->channel, err);
        }
        return false;
    }
    ++c->tx_msgs;
    c->st_written += len;
    return true;
}

/* Queue the next `len` bytes of the conn's own stream. */
static bool send_stream(conn_t *c, size_t len) {
    const uint8_t *p = pat_at(c->tx_seed + c->tx_sent);
    if (!send_write(c, p, len, tx_written)) {
        return false;
    }
    ck_update(&c->tx_ck, p, len);
    c->tx_sent += len;
    return true;
}

/* Write while the channel is writable (or everything, if told to ignore it),
 * one tx_chunk per check, in messages of at most a fragment. */
static void pump(conn_t *c) {
    if (!c->app_slot || c->app_shut_read) {
        return;
    }
    while (c->tx_sent < c->tx_total && (c->tx_ignore_writability || rs_channel_is_writable(c->channel))) {
        uint64_t chunk_end = c->tx_sent + c->tx_chunk;
        ++c->chunks;
        if (c->wr_true > 0) {
            ++c->chunks_after_true;
        }
        if (chunk_end > c->tx_total) {
            chunk_end = c->tx_total;
        }
        while (c->tx_sent < chunk_end) {
            uint64_t n = chunk_end - c->tx_sent;
            if (n > RS_MAX_FRAGMENT_SIZE) {
                n = RS_MAX_FRAGMENT_SIZE;
            }
            if (!send_stream(c, (size_t)n)) {
                return;
            }
        }
    }
    if (rs_channel_get_pending_write_bytes(c->channel) > c->max_pending_after_pump) {
        c->max_pending_after_pump = rs_channel_get_pending_write_bytes(c->channel);
    }
    if (c->tx_sent >= c->tx_total && c->tx_then_shutdown) {
        int mode = c->tx_then_shutdown;
        c->tx_then_shutdown = 0;
        if (mode == 2) {
            CHECK(c, rs_channel_shutdown_abortively(c->channel, RS_OK) == RS_OK);
        } else {
            CHECK(c, rs_channel_shutdown(c->channel, RS_OK) == RS_OK);
        }
    }
    maybe_finish(c);
}

static void start_tx(conn_t *c) {
    if (c->tx_started) {
        return;
    }
    c->tx_started = true;
    pump(c);
}

static void pump_task_fn(rs_channel_task_t *task, void *arg, rs_task_status_t status) {
    conn_t *c = (conn_t *)arg;
    (void)task;
    c->pump_scheduled = false;
    if (status == RS_TASK_STATUS_RUN) {
        conn_thread_check(c);
        pump(c);
    }
}

static void go_task_fn(rs_channel_task_t *task, void *arg, rs_task_status_t status) {
    conn_t *c = (conn_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        conn_thread_check(c);
        start_tx(c);
    }
}

/* Echo one message's bytes back. */
static void echo_bytes(conn_t *c, const uint8_t *data, size_t len) {
    if (send_write(c, data, len, echo_written)) {
        c->echo_sent += len;
    }
}

static void release_queue(conn_t *c) {
    rs_list_node_t *node;
    while ((node = rs_list_pop_front(&c->queue)) != NULL) {
        rs_io_message_t *m = RS_CONTAINER_OF(node, rs_io_message_t, queueing_handle);
        rs_channel_release_message_to_pool(c->channel, m);
    }
}

/* The delayed half of the app: "processing" happens here, a tick after the data came. */
static void work_task_fn(rs_channel_task_t *task, void *arg, rs_task_status_t status) {
    conn_t *c = (conn_t *)arg;
    uint64_t n = 0;
    (void)task;
    c->work_scheduled = false;
    if (status != RS_TASK_STATUS_RUN) {
        release_queue(c);
        return;
    }
    conn_thread_check(c);
    if (c->app == APP_ECHO) {
        rs_list_node_t *node;
        while ((node = rs_list_pop_front(&c->queue)) != NULL) {
            rs_io_message_t *m = RS_CONTAINER_OF(node, rs_io_message_t, queueing_handle);
            size_t len = m->message_data.len;
            echo_bytes(c, m->message_data.buffer, len);
            rs_channel_release_message_to_pool(c->channel, m);
            n += len;
        }
    } else {
        n = c->pending_inc;
        c->pending_inc = 0;
    }
    give_window(c, n);
}

static void schedule_work(conn_t *c) {
    if (!c->work_scheduled) {
        c->work_scheduled = true;
        rs_channel_task_init(&c->work_task, work_task_fn, c, "test_work");
        rs_channel_schedule_task_now(c->channel, &c->work_task);
    }
}

/* ---- the application handler (rightmost) ---- */

typedef struct app_handler {
    rs_channel_handler_t h;
    conn_t *c;
} app_handler_t;

static conn_t *app_conn(rs_channel_handler_t *h) {
    return ((app_handler_t *)h->impl)->c;
}

static int app_process_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *m) {
    conn_t *c = app_conn(h);
    size_t len = m->message_data.len;
    conn_thread_check(c);
    CHECK(c, slot == c->app_slot);
    CHECK(c, m->message_type == RS_IO_MESSAGE_APPLICATION_DATA);
    CHECK(c, m->owning_channel == c->channel);
    CHECK(c, len > 0);
    CHECK(c, c->app_shut_read == 0);
    if (c->back_pressure) {
        CHECK(c, len <= c->win_avail);
        c->win_avail = len <= c->win_avail ? c->win_avail - len : 0;
    }
    c->outstanding += len;
    if (c->outstanding > c->max_outstanding) {
        c->max_outstanding = c->outstanding;
    }
    if (len > c->max_message) {
        c->max_message = len;
    }
    c->st_read += len;
    rx_feed(&c->rx, m->message_data.buffer, len);
    if (c->app == APP_ECHO) {
        if (c->delayed) {
            rs_list_push_back(&c->queue, &m->queueing_handle);
            schedule_work(c);
            return RS_OK;
        }
        echo_bytes(c, m->message_data.buffer, len);
        rs_channel_release_message_to_pool(c->channel, m);
        if (!c->echo_inc_on_completion) {
            give_window(c, len);
        }
        return RS_OK;
    }
    rs_channel_release_message_to_pool(c->channel, m);
    if (c->delayed) {
        c->pending_inc += len;
        schedule_work(c);
    } else {
        give_window(c, len);
    }
    if (c->tx_start == TX_ON_FIRST_READ) {
        start_tx(c);
    }
    maybe_finish(c);
    return RS_OK;
}

static int app_process_write(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *m) {
    conn_t *c = app_conn(h);
    (void)slot;
    (void)m;
    CHECK(c, !"the rightmost handler received a write");
    return RS_EINVAL;
}

static int app_increment_window(rs_channel_handler_t *h, rs_channel_slot_t *slot, size_t size) {
    conn_t *c = app_conn(h);
    (void)slot;
    (void)size;
    conn_thread_check(c);
    return RS_OK;
}

static int app_shutdown(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_channel_direction_t dir, int error,
                        bool abort_immediately) {
    conn_t *c = app_conn(h);
    conn_thread_check(c);
    if (dir == RS_CHANNEL_DIR_READ) {
        CHECK(c, c->app_shut_write == 0);
        ++c->app_shut_read;
        c->app_shut_read_err = error;
        c->rx_at_read_shutdown = c->rx.pos;
    } else {
        CHECK(c, c->app_shut_read == 1);
        ++c->app_shut_write;
        c->app_shut_write_err = error;
    }
    return rs_channel_slot_on_handler_shutdown_complete(slot, dir, error, abort_immediately);
}

static size_t app_initial_window(rs_channel_handler_t *h) {
    conn_t *c = app_conn(h);
    conn_thread_check(c);
    return c->window;
}

static size_t app_overhead(rs_channel_handler_t *h) {
    (void)h;
    return 0;
}

static void app_destroy(rs_channel_handler_t *h) {
    conn_t *c = app_conn(h);
    conn_thread_check(c);
    ++c->app_destroyed;
    release_queue(c);
    c->app_slot = NULL;
    rs_mem_free(&rs_test_allocator, h->impl);
}

static void app_reset_stats(rs_channel_handler_t *h) {
    conn_t *c = app_conn(h);
    c->st_read = 0;
    c->st_written = 0;
}

static void app_gather_stats(rs_channel_handler_t *h, rs_channel_handler_stats_t *out) {
    conn_t *c = app_conn(h);
    out->handler_name = "app";
    out->bytes_read = c->st_read;
    out->bytes_written = c->st_written;
}

static const rs_channel_handler_vtable_t app_vtable = {
    app_process_read, app_process_write, app_increment_window, app_shutdown,    app_initial_window,
    app_overhead,     app_destroy,       app_reset_stats,      app_gather_stats, NULL,
};

/* ---- the pass-through handler (middle): copies every message both ways ---- */

typedef struct pt_handler {
    rs_channel_handler_t h;
    conn_t *c;
} pt_handler_t;

static int pt_process_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *m) {
    conn_t *c = ((pt_handler_t *)h->impl)->c;
    rs_io_message_t *copy;
    int err;
    conn_thread_check(c);
    copy = rs_channel_acquire_message_from_pool(c->channel, RS_IO_MESSAGE_APPLICATION_DATA, m->message_data.len);
    CHECK(c, copy != NULL);
    if (!copy) {
        return RS_ENOMEM;
    }
    CHECK(c, rs_byte_buf_append(&copy->message_data, m->message_data.buffer, m->message_data.len) == RS_OK);
    err = rs_channel_slot_send_message(slot, copy, RS_CHANNEL_DIR_READ);
    CHECK(c, err == RS_OK);
    if (err) {
        rs_channel_release_message_to_pool(c->channel, copy);
        return err; /* not taken: the socket handler still owns m */
    }
    rs_channel_release_message_to_pool(c->channel, m);
    ++c->pt_reads;
    return RS_OK;
}

/* The copy reached the bottom: complete the original, exactly once. */
static void pt_write_done(rs_channel_t *channel, rs_io_message_t *copy, int error, void *user_data) {
    rs_io_message_t *orig = (rs_io_message_t *)user_data;
    (void)copy;
    if (orig->on_completion) {
        orig->on_completion(channel, orig, error, orig->user_data);
    }
    rs_channel_release_message_to_pool(channel, orig);
}

static int pt_process_write(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *m) {
    conn_t *c = ((pt_handler_t *)h->impl)->c;
    rs_io_message_t *copy;
    int err;
    conn_thread_check(c);
    copy = rs_channel_acquire_message_from_pool(c->channel, RS_IO_MESSAGE_APPLICATION_DATA, m->message_data.len);
    if (!copy) {
        return RS_ENOMEM;
    }
    rs_byte_buf_append(&copy->message_data, m->message_data.buffer, m->message_data.len);
    copy->on_completion = pt_write_done;
    copy->user_data = m;
    err = rs_channel_slot_send_message(slot, copy, RS_CHANNEL_DIR_WRITE);
    if (err) {
        rs_channel_release_message_to_pool(c->channel, copy);
        return err;
    }
    ++c->pt_writes;
    return RS_OK;
}

/* Mirror the right neighbour's window: pass every increment on. */
static int pt_increment_window(rs_channel_handler_t *h, rs_channel_slot_t *slot, size_t size) {
    conn_t *c = ((pt_handler_t *)h->impl)->c;
    conn_thread_check(c);
    return rs_channel_slot_increment_read_window(slot, size);
}

static int pt_shutdown(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_channel_direction_t dir, int error,
                       bool abort_immediately) {
    conn_t *c = ((pt_handler_t *)h->impl)->c;
    conn_thread_check(c);
    return rs_channel_slot_on_handler_shutdown_complete(slot, dir, error, abort_immediately);
}

static size_t pt_initial_window(rs_channel_handler_t *h) {
    (void)h;
    return 0; /* everything comes from the right neighbour */
}

static void pt_destroy(rs_channel_handler_t *h) {
    rs_mem_free(&rs_test_allocator, h->impl);
}

static const rs_channel_handler_vtable_t pt_vtable = {
    pt_process_read, pt_process_write, pt_increment_window, pt_shutdown, pt_initial_window,
    app_overhead,    pt_destroy,       NULL,                NULL,        NULL,
};

/* ---- channel callbacks ---- */

static void conn_on_stats(rs_channel_t *channel, const rs_channel_handler_stats_t *records, size_t count,
                          void *user_data) {
    conn_t *c = (conn_t *)user_data;
    uint64_t now = rs_clock_now_ns();
    size_t i;
    CHECK(c, channel == c->channel);
    conn_thread_check(c);
    if (c->shutdown_calls) {
        ++c->stats_after_shutdown;
    }
    if (c->stats_calls > 0 && now - c->stats_last_ns < c->stats_min_gap_ns) {
        c->stats_min_gap_ns = now - c->stats_last_ns;
    }
    c->stats_last_ns = now;
    ++c->stats_calls;
    if (count < c->stats_min_count) {
        c->stats_min_count = count;
    }
    if (count > c->stats_max_count) {
        c->stats_max_count = count;
    }
    CHECK(c, count >= 1 && records[0].handler_name && strcmp(records[0].handler_name, "socket") == 0);
    for (i = 0; i < count; ++i) {
        CHECK(c, records[i].handler_name != NULL);
        if (!records[i].handler_name) {
            continue;
        }
        if (strcmp(records[i].handler_name, "socket") == 0) {
            c->stats_sock_read += records[i].bytes_read;
            c->stats_sock_written += records[i].bytes_written;
        } else if (strcmp(records[i].handler_name, "app") == 0) {
            c->stats_app_read += records[i].bytes_read;
        }
    }
}

static void conn_on_writability(rs_channel_t *channel, bool writable, void *user_data) {
    conn_t *c = (conn_t *)user_data;
    uint64_t pending = c->socket ? rs_socket_get_pending_write_bytes(c->socket) : 0;
    CHECK(c, channel == c->channel);
    conn_thread_check(c);
    CHECK(c, writable == c->wr_expect); /* events alternate, starting with "not writable" */
    CHECK(c, rs_channel_is_writable(channel) == writable);
    c->wr_expect = !writable;
    if (!writable) {
        ++c->wr_false;
        if (pending < c->pending_at_false) {
            c->pending_at_false = pending;
        }
        return;
    }
    ++c->wr_true;
    if (pending > c->pending_at_true) {
        c->pending_at_true = pending;
    }
    if (!c->tx_started || c->tx_sent >= c->tx_total) {
        return;
    }
    if (c->pump_in_callback) {
        pump(c);
    } else if (!c->pump_scheduled) {
        c->pump_scheduled = true;
        rs_channel_task_init(&c->pump_task, pump_task_fn, c, "test_pump");
        rs_channel_schedule_task_now(channel, &c->pump_task);
    }
}

static void conn_on_setup(rs_channel_t *channel, int error, void *user_data) {
    conn_t *c = (conn_t *)user_data;
    rs_channel_slot_t *s1;
    rs_channel_slot_t *s_app;
    app_handler_t *app;
    int err = 12345;
    ++c->setup_calls;
    c->setup_error = error;
    CHECK(c, channel == c->channel);
    conn_thread_check(c);
    CHECK(c, error == RS_OK);
    if (error) {
        rs_socket_destroy(c->socket);
        c->socket = NULL;
        rs_channel_destroy(channel);
        c->channel = NULL;
        harness_on_done(c);
        return;
    }
    CHECK(c, rs_channel_get_loop(channel) == rs_socket_get_loop(c->socket));
    s1 = rs_channel_slot_new(channel, &err);
    CHECK(c, s1 != NULL && err == RS_OK);
    c->sock_handler = rs_socket_handler_new(&rs_test_allocator, c->socket, NULL, &err);
    CHECK(c, c->sock_handler != NULL && err == RS_OK);
    if (!s1 || !c->sock_handler) {
        rs_channel_shutdown(channel, err ? err : RS_ENOMEM);
        return;
    }
    CHECK(c, rs_socket_handler_get_socket(c->sock_handler) == c->socket);
    CHECK(c, rs_channel_slot_set_handler(s1, c->sock_handler) == RS_OK);
    CHECK(c, rs_channel_get_first_slot(channel) == s1);
    if (c->passthrough) {
        pt_handler_t *pt = (pt_handler_t *)rs_mem_calloc(&rs_test_allocator, 1, sizeof(*pt));
        rs_channel_slot_t *s2 = rs_channel_slot_new(channel, &err);
        CHECK(c, pt != NULL && s2 != NULL);
        pt->c = c;
        pt->h.vtable = &pt_vtable;
        pt->h.impl = pt;
        CHECK(c, rs_channel_slot_insert_right(s1, s2) == RS_OK);
        CHECK(c, rs_channel_slot_set_handler(s2, &pt->h) == RS_OK);
        s1 = s2;
    }
    app = (app_handler_t *)rs_mem_calloc(&rs_test_allocator, 1, sizeof(*app));
    s_app = rs_channel_slot_new(channel, &err);
    CHECK(c, app != NULL && s_app != NULL);
    app->c = c;
    app->h.vtable = &app_vtable;
    app->h.impl = app;
    CHECK(c, rs_channel_slot_insert_right(s1, s_app) == RS_OK);
    c->app_slot = s_app;
    c->win_avail = c->window;
    CHECK(c, rs_channel_slot_set_handler(s_app, &app->h) == RS_OK);
    CHECK(c, rs_channel_slot_get_right(s1) == s_app && rs_channel_slot_get_left(s_app) == s1);
    if (c->stats_interval_ms) {
        CHECK(c, rs_channel_set_statistics_handler(channel, c->stats_interval_ms, conn_on_stats, c) == RS_OK);
    }
    harness_on_ready(c);
    if (c->tx_start == TX_ON_SETUP) {
        start_tx(c);
    }
}

static void conn_on_shutdown(rs_channel_t *channel, int error, void *user_data) {
    conn_t *c = (conn_t *)user_data;
    CHECK(c, channel == c->channel);
    conn_thread_check(c);
    ++c->shutdown_calls;
    c->shutdown_error = error;
    harness_on_done(c);
    rs_channel_destroy(channel); /* safe from inside the callback */
}

/* Build a channel over a connected socket that is assigned to `loop`
 * (on that loop's thread). The pipeline is made in conn_on_setup. */
static void conn_start_channel(conn_t *c, rs_socket_t *socket, rs_event_loop_t *loop) {
    rs_channel_options_t o;
    int err = 12345;
    memset(&o, 0, sizeof(o));
    o.loop = loop;
    o.allocator = &rs_test_allocator;
    o.on_setup_completed = conn_on_setup;
    o.on_shutdown_completed = conn_on_shutdown;
    o.on_writability_changed = conn_on_writability;
    o.user_data = c;
    o.enable_read_back_pressure = c->back_pressure;
    o.write_high_water_mark = c->high_water;
    o.write_low_water_mark = c->low_water;
    c->socket = socket;
    rx_init(&c->rx, c->rx_seed, c->rx_expect);
    c->channel = rs_channel_new(&o, &err);
    CHECK(c, c->channel != NULL && err == RS_OK);
    if (!c->channel) {
        rs_socket_destroy(socket);
        c->socket = NULL;
        harness_on_done(c);
    }
}

/* ---------------------------------------------------------------- single-loop helpers */

static void run_ticks(rs_event_loop_t *loop, int n) {
    int i;
    for (i = 0; i < n; ++i) {
        assert_int_equal(rs_event_loop_run_once(loop, 1), RS_OK);
    }
}

/* A listener that hands its one connection to `conn`, on the listener's loop. */
typedef struct server {
    rs_event_loop_t *loop;
    rs_socket_t *listener;
    rs_endpoint_t ep;
    conn_t *conn;
    int accepted;
    int accept_errors;
    int extra;
} server_t;

static void server_on_accept(rs_socket_t *listener, int error, rs_socket_t *ns, void *user_data) {
    server_t *s = (server_t *)user_data;
    (void)listener;
    if (error || !ns) {
        ++s->accept_errors;
        return;
    }
    if (s->accepted++ > 0) {
        ++s->extra;
        rs_socket_destroy(ns);
        return;
    }
    if (rs_socket_assign_to_loop(ns, s->loop) != RS_OK) {
        ++s->accept_errors;
        rs_socket_destroy(ns);
        return;
    }
    conn_start_channel(s->conn, ns, s->loop);
}

static rs_socket_options_t sock_opts(rs_socket_domain_t domain) {
    rs_socket_options_t o;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.domain = domain;
    return o;
}

static void server_listen(server_t *s, rs_event_loop_t *loop, const rs_socket_options_t *opts, conn_t *conn) {
    int err = 12345;
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->conn = conn;
    s->listener = rs_socket_new(opts, &err);
    assert_non_null(s->listener);
    assert_int_equal(rs_endpoint_from_ip(&s->ep, opts->domain == RS_SOCKET_DOMAIN_IPV6 ? "::1" : "127.0.0.1", 0),
                     RS_OK);
    assert_int_equal(rs_socket_bind(s->listener, &s->ep), RS_OK);
    assert_int_equal(rs_socket_listen(s->listener, 0), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(s->listener, &s->ep), RS_OK);
    assert_int_equal(rs_socket_start_accept(s->listener, loop, server_on_accept, s), RS_OK);
}

/* A client channel: connect, then the pipeline described by `c`. */
static void client_on_connect(rs_socket_t *socket, int error, void *user_data) {
    conn_t *c = (conn_t *)user_data;
    c->connect_error = error;
    if (error) {
        rs_socket_destroy(socket);
        harness_on_done(c);
        return;
    }
    conn_start_channel(c, socket, rs_socket_get_loop(socket));
}

static void client_connect(conn_t *c, rs_event_loop_t *loop, const rs_endpoint_t *ep) {
    rs_socket_options_t o = sock_opts(ep->domain);
    int err = 12345;
    rs_socket_t *s = rs_socket_new(&o, &err);
    assert_non_null(s);
    assert_int_equal(rs_socket_connect(s, ep, loop, client_on_connect, c), RS_OK);
}

/* A plain-socket client: reads (optionally paced) and checks a stream, and can
 * write one buffer and then close. */
typedef struct raw_client {
    rs_socket_t *sock;
    int connect_error;
    bool connected;
    stream_rx_t rx;
    bool hold_reading;   /* do not read yet */
    size_t read_budget;  /* bytes per readable callback (0: until EAGAIN) */
    bool eof;
    int read_error;
    int reads_after_end;
    uint8_t *tx_buf;
    size_t tx_len;
    bool close_after_write;
    int written;
    int write_error;
    size_t write_bytes;
} raw_client_t;

static void raw_on_readable(rs_socket_t *socket, int error, void *user_data) {
    raw_client_t *r = (raw_client_t *)user_data;
    uint8_t buf[16384];
    size_t total = 0;
    (void)error;
    if (r->eof || r->read_error) {
        ++r->reads_after_end;
        return;
    }
    if (r->hold_reading) {
        rs_socket_pause_reading(socket);
        return;
    }
    for (;;) {
        rs_byte_buf_t b = rs_byte_buf_from_array(buf, 0, sizeof(buf));
        size_t n = 0;
        int err;
        if (r->read_budget && total >= r->read_budget) {
            return;
        }
        if (r->read_budget && r->read_budget - total < b.capacity) {
            b.capacity = r->read_budget - total;
        }
        err = rs_socket_read(socket, &b, &n);
        if (err == RS_EAGAIN) {
            return;
        }
        if (err == RS_EEOF) {
            r->eof = true;
            return;
        }
        if (err) {
            r->read_error = err;
            return;
        }
        rx_feed(&r->rx, buf, n);
        total += n;
    }
}

static void raw_on_written(rs_socket_t *socket, int error, size_t bytes_written, void *user_data) {
    raw_client_t *r = (raw_client_t *)user_data;
    ++r->written;
    r->write_error = error;
    r->write_bytes = bytes_written;
    if (r->close_after_write) {
        rs_socket_close(socket); /* the bytes are in the kernel: FIN follows them */
    }
}

static void raw_on_connect(rs_socket_t *socket, int error, void *user_data) {
    raw_client_t *r = (raw_client_t *)user_data;
    r->connect_error = error;
    if (error) {
        return;
    }
    r->connected = true;
    rs_socket_subscribe_to_readable_events(socket, raw_on_readable, r);
    if (r->hold_reading) {
        rs_socket_pause_reading(socket);
    }
    if (r->tx_len) {
        rs_socket_write(socket, rs_byte_cursor_from_array(r->tx_buf, r->tx_len), raw_on_written, r);
    }
}

static void raw_connect(raw_client_t *r, rs_event_loop_t *loop, const rs_endpoint_t *ep, uint32_t recv_buffer) {
    rs_socket_options_t o = sock_opts(ep->domain);
    int err = 12345;
    o.recv_buffer_size = recv_buffer;
    r->connect_error = 12345;
    r->sock = rs_socket_new(&o, &err);
    assert_non_null(r->sock);
    assert_int_equal(rs_socket_connect(r->sock, ep, loop, raw_on_connect, r), RS_OK);
}

/* A buffer holding the first `len` bytes of stream `seed`. */
static uint8_t *stream_buf(uint64_t seed, size_t len) {
    uint8_t *b = (uint8_t *)test_malloc(len);
    size_t pos = 0;
    while (pos < len) {
        size_t n = len - pos < PAT_SPAN ? len - pos : PAT_SPAN;
        memcpy(b + pos, pat_at(seed + pos), n);
        pos += n;
    }
    return b;
}

static void finish_loop(rs_event_loop_t *loop, server_t *s, rs_socket_t *extra) {
    if (extra) {
        rs_socket_destroy(extra);
    }
    if (s && s->listener) {
        rs_socket_destroy(s->listener);
        s->listener = NULL;
    }
    run_ticks(loop, 3);
    rs_event_loop_destroy(loop);
}

/* ---------------------------------------------------------------- group harness */

struct harness {
    rs_mutex_t lock;
    size_t ready;
    size_t done;
    size_t failed_connects;
    bool listening;
};

static void harness_on_ready(conn_t *c) {
    if (!c->h) {
        return;
    }
    rs_mutex_lock(&c->h->lock);
    c->live = true;
    ++c->h->ready;
    rs_mutex_unlock(&c->h->lock);
}

static void harness_on_done(conn_t *c) {
    if (!c->h) {
        return;
    }
    rs_mutex_lock(&c->h->lock);
    c->live = false;
    ++c->h->done;
    if (c->is_client && c->connect_error != RS_OK) {
        ++c->h->failed_connects;
    }
    rs_mutex_unlock(&c->h->lock);
}

/* ================================================================ tests */

/* The client closes: the server channel shuts down with RS_EEOF, the handler
 * sees READ then WRITE shutdown, on_shutdown_completed fires exactly once, and
 * destroying the channel inside it is safe (the leak check proves the rest). */
static void server_shuts_down_with_eof_when_client_closes(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_socket_options_t lo = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    server_t srv;
    conn_t sc;
    raw_client_t rc;
    conn_init(&sc);
    sc.app = APP_ECHO;
    memset(&rc, 0, sizeof(rc));
    rx_init(&rc.rx, 7, 4 * KIB);
    rc.tx_buf = stream_buf(7, 4 * KIB);
    rc.tx_len = 4 * KIB;
    server_listen(&srv, loop, &lo, &sc);
    raw_connect(&rc, loop, &srv.ep, 0);
    /* Exchange a little first, so the channel is fully up. */
    RS_TEST_RUN_UNTIL(loop, rx_complete(&rc.rx) || rc.read_error || rc.eof);
    assert_int_equal(rc.rx.pos, 4 * KIB);
    assert_int_equal(rc.rx.first_bad, UINT64_MAX);
    assert_int_equal(sc.shutdown_calls, 0);
    assert_int_equal(rs_socket_close(rc.sock), RS_OK);
    RS_TEST_RUN_UNTIL(loop, sc.shutdown_calls > 0);
    run_ticks(loop, 20);
    assert_int_equal(sc.setup_calls, 1);
    assert_int_equal(sc.shutdown_calls, 1);
    assert_int_equal(sc.shutdown_error, RS_EEOF);
    assert_int_equal(sc.app_shut_read, 1);
    assert_int_equal(sc.app_shut_write, 1);
    assert_int_equal(sc.app_shut_read_err, RS_EEOF);
    assert_int_equal(sc.app_shut_write_err, RS_EEOF);
    assert_int_equal(sc.app_destroyed, 1);
    assert_int_equal(sc.rx.pos, 4 * KIB);
    assert_int_equal(sc.tx_ok, sc.tx_msgs);
    assert_int_equal(srv.accepted, 1);
    assert_conn_ok(&sc);
    finish_loop(loop, &srv, rc.sock);
    test_free(rc.tx_buf);
}
RS_TEST_PER_BACKEND(, server_shuts_down_with_eof_when_client_closes)

/* The peer writes 1 MiB and closes at once. The app takes its data slowly (a
 * 32 KiB window given back a tick later), so the FIN waits behind most of the
 * data; every byte must still reach the app before the channel shuts down. */
static void read_to_eof_after_hangup(rs_event_loop_backend_t b, rs_socket_domain_t domain) {
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_socket_options_t lo = sock_opts(domain);
    server_t srv;
    conn_t sc;
    raw_client_t rc;
    const size_t total = (size_t)MIB;
    conn_init(&sc);
    sc.app = APP_PEER;
    sc.back_pressure = true;
    sc.window = 32 * KIB;
    sc.delayed = true;
    sc.rx_seed = 99;
    sc.rx_expect = total;
    memset(&rc, 0, sizeof(rc));
    rx_init(&rc.rx, 0, 0);
    rc.tx_buf = stream_buf(99, total);
    rc.tx_len = total;
    rc.close_after_write = true;
    server_listen(&srv, loop, &lo, &sc);
    raw_connect(&rc, loop, &srv.ep, 0);
    RS_TEST_RUN_UNTIL(loop, sc.shutdown_calls > 0);
    run_ticks(loop, 5);
    assert_int_equal(rc.written, 1);
    assert_int_equal(rc.write_error, RS_OK);
    assert_int_equal(sc.shutdown_calls, 1);
    assert_int_equal(sc.shutdown_error, RS_EEOF);
    assert_int_equal(sc.rx_at_read_shutdown, total); /* all data before the shutdown */
    assert_int_equal(sc.rx.pos, total);
    assert_int_equal(sc.rx.first_bad, UINT64_MAX);
    assert_false(sc.rx.overflow);
    assert_int_equal(ck_final(&sc.rx.ck), ck_of_stream(99, total));
    assert_true(sc.max_outstanding <= sc.window);
    assert_conn_ok(&sc);
    finish_loop(loop, &srv, rc.sock);
    test_free(rc.tx_buf);
}

static void read_to_eof_delivers_all_data_first_ipv4(rs_event_loop_backend_t b) {
    read_to_eof_after_hangup(b, RS_SOCKET_DOMAIN_IPV4);
}
static void read_to_eof_delivers_all_data_first_ipv6(rs_event_loop_backend_t b) {
    read_to_eof_after_hangup(b, RS_SOCKET_DOMAIN_IPV6);
}
RS_TEST_PER_BACKEND(, read_to_eof_delivers_all_data_first_ipv4)
RS_TEST_PER_BACKEND(, read_to_eof_delivers_all_data_first_ipv6)

/* Back-pressure: the server app has a 4 KiB window and gives bytes back only
 * after "processing" them a tick later. 8 MiB echoes intact, and the app never
 * holds more than its window. */
static void echo_with_read_back_pressure(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_socket_options_t lo = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    server_t srv;
    conn_t sc;
    conn_t cc;
    const uint64_t total = 8 * MIB;
    conn_init(&sc);
    sc.app = APP_ECHO;
    sc.back_pressure = true;
    sc.window = 4 * KIB;
    sc.delayed = true;
    sc.rx_seed = 3;
    sc.rx_expect = total;
    conn_init(&cc);
    cc.is_client = true;
    cc.app = APP_PEER;
    cc.tx_seed = 3;
    cc.tx_total = total;
    cc.tx_start = TX_ON_SETUP;
    cc.rx_seed = 3;
    cc.rx_expect = total;
    cc.shutdown_when_done = true;
    server_listen(&srv, loop, &lo, &sc);
    client_connect(&cc, loop, &srv.ep);
    RS_TEST_RUN_UNTIL_NS(loop, cc.shutdown_calls > 0 && sc.shutdown_calls > 0, BIG_WAIT_NS);
    assert_int_equal(cc.shutdown_error, RS_OK);
    assert_int_equal(sc.shutdown_error, RS_EEOF);
    assert_int_equal(cc.rx.pos, total);
    assert_int_equal(cc.rx.first_bad, UINT64_MAX);
    assert_int_equal(sc.rx.pos, total);
    assert_int_equal(sc.echo_sent, total);
    assert_true(sc.max_message <= 4 * KIB);
    assert_true(sc.max_outstanding <= 4 * KIB); /* never more than the window at once */
    assert_true(sc.max_outstanding > 0);
    assert_int_equal(ck_final(&cc.rx.ck), ck_final(&cc.tx_ck));
    assert_int_equal(ck_final(&sc.rx.ck), ck_final(&cc.tx_ck));
    assert_int_equal(cc.tx_ok, cc.tx_msgs);
    assert_int_equal(sc.tx_ok, sc.tx_msgs);
    assert_conn_ok(&sc);
    assert_conn_ok(&cc);
    finish_loop(loop, &srv, NULL);
}
RS_TEST_PER_BACKEND(, echo_with_read_back_pressure)

/* Loop pinning: the listener runs on loop A, the accepted socket is moved to
 * loop B, and the channel built on it lives on B: every handler function and
 * channel callback runs on B's thread. The client channel stays on A. Both
 * loops run on threads of their own. */
typedef struct pin_ctx {
    rs_event_loop_t *a;
    rs_event_loop_t *b;
    conn_t *sc;
    rs_socket_t *accepted;
    int assign_on_a; /* rs_socket_assign_to_loop(B) from A's thread */
    int assign_on_b;
    int accept_calls;
} pin_ctx_t;

static harness_t g_pin_h;

static void pin_hop_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    pin_ctx_t *p = (pin_ctx_t *)arg;
    (void)task;
    if (status != RS_TASK_STATUS_RUN) {
        rs_socket_destroy(p->accepted);
        return;
    }
    p->assign_on_b = rs_socket_assign_to_loop(p->accepted, p->b);
    CHECK(p->sc, rs_socket_get_loop(p->accepted) == p->b);
    conn_start_channel(p->sc, p->accepted, p->b);
}

static void pin_on_accept(rs_socket_t *listener, int error, rs_socket_t *ns, void *user_data) {
    pin_ctx_t *p = (pin_ctx_t *)user_data;
    (void)listener;
    CHECK(p->sc, rs_event_loop_is_on_loop_thread(p->a));
    if (error || !ns) {
        return;
    }
    if (p->accept_calls++ > 0) {
        rs_socket_destroy(ns);
        return;
    }
    p->accepted = ns;
    p->assign_on_a = rs_socket_assign_to_loop(ns, p->b); /* wrong thread: refused */
    rs_task_init(&p->sc->hop_task, pin_hop_task, p, "test_hop");
    rs_event_loop_schedule_task_now(p->b, &p->sc->hop_task);
}

static size_t pin_done(void) {
    size_t n;
    rs_mutex_lock(&g_pin_h.lock);
    n = g_pin_h.done;
    rs_mutex_unlock(&g_pin_h.lock);
    return n;
}

static void channel_runs_on_its_socket_loop(rs_event_loop_backend_t backend) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *a = rs_test_loop_new(backend);
    rs_event_loop_t *b = rs_test_loop_new(backend);
    rs_socket_options_t lo = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    rs_socket_t *listener;
    rs_endpoint_t ep;
    pin_ctx_t p;
    conn_t sc;
    conn_t cc;
    int err = 12345;
    uint64_t deadline;
    const uint64_t total = 256 * KIB;
    memset(&g_pin_h, 0, sizeof(g_pin_h));
    assert_int_equal(rs_mutex_init(&g_pin_h.lock), RS_OK);
    conn_init(&sc);
    sc.app = APP_ECHO;
    sc.back_pressure = true;
    sc.window = 16 * KIB;
    sc.echo_inc_on_completion = true;
    sc.rx_seed = 5;
    sc.rx_expect = total;
    sc.expect_loop = b;
    sc.h = &g_pin_h;
    conn_init(&cc);
    cc.is_client = true;
    cc.app = APP_PEER;
    cc.tx_seed = 5;
    cc.tx_total = total;
    cc.tx_start = TX_ON_SETUP;
    cc.rx_seed = 5;
    cc.rx_expect = total;
    cc.shutdown_when_done = true;
    cc.expect_loop = a;
    cc.h = &g_pin_h;
    memset(&p, 0, sizeof(p));
    p.a = a;
    p.b = b;
    p.sc = &sc;
    /* Before a loop first runs, its creating thread counts as its loop thread. */
    listener = rs_socket_new(&lo, &err);
    assert_non_null(listener);
    assert_int_equal(rs_endpoint_from_ip(&ep, "127.0.0.1", 0), RS_OK);
    assert_int_equal(rs_socket_bind(listener, &ep), RS_OK);
    assert_int_equal(rs_socket_listen(listener, 0), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(listener, &ep), RS_OK);
    assert_int_equal(rs_socket_start_accept(listener, a, pin_on_accept, &p), RS_OK);
    client_connect(&cc, a, &ep);
    assert_int_equal(rs_event_loop_start(a), RS_OK);
    assert_int_equal(rs_event_loop_start(b), RS_OK);
    deadline = rs_clock_now_ns() + WAIT_NS;
    while (pin_done() < 2 && rs_clock_now_ns() < deadline) {
        rs_thread_sleep_ns(2 * RS_NS_PER_MS);
    }
    rs_socket_destroy(listener); /* a listener may be destroyed from any thread */
    rs_event_loop_destroy(a);    /* joins the loop threads: their writes are visible below */
    rs_event_loop_destroy(b);
    rs_mutex_cleanup(&g_pin_h.lock);
    assert_int_equal(g_pin_h.done, 2);
    assert_int_equal(p.assign_on_a, RS_EWRONGTHREAD);
    assert_int_equal(p.assign_on_b, RS_OK);
    assert_int_equal(sc.setup_error, RS_OK);
    assert_int_equal(cc.setup_error, RS_OK);
    assert_int_equal(sc.shutdown_error, RS_EEOF);
    assert_int_equal(cc.shutdown_error, RS_OK);
    assert_int_equal(cc.rx.pos, total);
    assert_int_equal(cc.rx.first_bad, UINT64_MAX);
    assert_int_equal(sc.rx.pos, total);
    assert_conn_ok(&sc); /* includes every "on B's thread" check */
    assert_conn_ok(&cc);
}
RS_TEST_PER_BACKEND(, channel_runs_on_its_socket_loop)

/* Statistics every 20 ms: the socket handler's record comes first and its
 * byte counts (reset each interval) add up to the traffic; reports stop at
 * shutdown. */
static void statistics_are_reported(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_socket_options_t lo = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    server_t srv;
    conn_t sc;
    conn_t cc;
    const uint64_t total = 512 * KIB;
    uint64_t t0;
    conn_init(&sc);
    sc.app = APP_ECHO;
    sc.rx_seed = 11;
    sc.rx_expect = total;
    sc.stats_interval_ms = 20;
    conn_init(&cc);
    cc.is_client = true;
    cc.app = APP_PEER;
    cc.tx_seed = 11;
    cc.tx_total = total;
    cc.tx_start = TX_ON_SETUP;
    cc.rx_seed = 11;
    cc.rx_expect = total;
    server_listen(&srv, loop, &lo, &sc);
    client_connect(&cc, loop, &srv.ep);
    RS_TEST_RUN_UNTIL(loop, rx_complete(&cc.rx));
    /* The reports catch up with the traffic within a few intervals. */
    RS_TEST_RUN_UNTIL(loop, sc.stats_sock_read >= total && sc.stats_sock_written >= total && sc.stats_calls >= 3);
    assert_int_equal(sc.stats_sock_read, total);
    assert_int_equal(sc.stats_sock_written, total);
    assert_int_equal(sc.stats_app_read, total);
    assert_int_equal(sc.stats_min_count, 2); /* socket and app; the pass-through-less pipeline */
    assert_int_equal(sc.stats_max_count, 2);
    assert_true(sc.stats_min_gap_ns >= 19 * RS_NS_PER_MS); /* never more often than asked */
    assert_int_equal(rs_channel_shutdown(cc.channel, RS_OK), RS_OK);
    RS_TEST_RUN_UNTIL(loop, sc.shutdown_calls > 0 && cc.shutdown_calls > 0);
    t0 = rs_clock_now_ns();
    while (rs_clock_now_ns() - t0 < 60 * RS_NS_PER_MS) {
        assert_int_equal(rs_event_loop_run_once(loop, 5), RS_OK);
    }
    assert_int_equal(sc.stats_after_shutdown, 0);
    assert_int_equal(sc.shutdown_error, RS_EEOF);
    assert_conn_ok(&sc);
    assert_conn_ok(&cc);
    finish_loop(loop, &srv, NULL);
}
RS_TEST_PER_BACKEND(, statistics_are_reported)

/* Writability: the server writes 64 KiB chunks (four fragments each) while
 * the channel is writable, to a client that first does not read and then
 * reads 16 KiB per tick. "Not writable" must come, the writer pauses, then
 * "writable" comes once the client drains and the writer resumes (inside the
 * callback itself). Everything arrives intact. */
static void writability_pauses_and_resumes_writer(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_socket_options_t lo = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    server_t srv;
    conn_t sc;
    raw_client_t rc;
    const uint64_t total = 8 * MIB;
    conn_init(&sc);
    sc.app = APP_PEER;
    sc.tx_seed = 21;
    sc.tx_total = total;
    sc.tx_chunk = 64 * KIB;
    sc.tx_start = TX_ON_SETUP;
    sc.tx_then_shutdown = 1;
    sc.pump_in_callback = true;
    sc.high_water = 256 * KIB;
    sc.low_water = 64 * KIB;
    lo.send_buffer_size = 64 * 1024;
    memset(&rc, 0, sizeof(rc));
    rx_init(&rc.rx, 21, total);
    rc.hold_reading = true;
    rc.read_budget = 16 * KIB;
    server_listen(&srv, loop, &lo, &sc);
    raw_connect(&rc, loop, &srv.ep, 64 * 1024);
    RS_TEST_RUN_UNTIL(loop, sc.wr_false > 0 || sc.check_failures > 0);
    assert_conn_ok(&sc);
    /* Completions of bytes the kernel took may bring a few more cycles; once
     * the kernel buffers are full the writer stays paused at the high-water mark. */
    run_ticks(loop, 50);
    {
        uint64_t sent = sc.tx_sent;
        int flips = sc.wr_false + sc.wr_true;
        run_ticks(loop, 20);
        assert_int_equal(sc.tx_sent, sent); /* paused */
        assert_int_equal(sc.wr_false + sc.wr_true, flips);
    }
    assert_int_equal(sc.wr_false, sc.wr_true + 1);
    assert_true(sc.tx_sent < total);
    assert_false(rs_channel_is_writable(sc.channel));
    sc.chunks_after_true = 0; /* from here: chunks written after a "writable" */
    rc.hold_reading = false;
    assert_int_equal(rs_socket_resume_reading(rc.sock), RS_OK);
    RS_TEST_RUN_UNTIL_NS(loop, (rc.eof || rc.read_error) && sc.shutdown_calls > 0, BIG_WAIT_NS);
    assert_int_equal(rc.read_error, RS_OK);
    assert_int_equal(rc.rx.pos, total);
    assert_int_equal(rc.rx.first_bad, UINT64_MAX);
    assert_int_equal(ck_final(&rc.rx.ck), ck_final(&sc.tx_ck));
    assert_true(sc.wr_true >= 1);
    assert_true(sc.wr_false >= sc.wr_true);
    assert_true(sc.chunks_after_true > 0); /* resumed */
    assert_true(sc.pending_at_true <= sc.low_water);
    assert_int_equal(sc.tx_sent, total);
    assert_int_equal(sc.tx_ok, sc.tx_msgs);
    assert_int_equal(sc.shutdown_error, RS_OK);
    assert_conn_ok(&sc);
    finish_loop(loop, &srv, rc.sock);
}
RS_TEST_PER_BACKEND(, writability_pauses_and_resumes_writer)

/* A burst of 2,600 small writes to a peer that keeps up: each goes to the
 * kernel at once, so the channel stays writable with nothing pending. Before,
 * bytes counted until their completions ran a tick later, so the burst turned
 * writability off (260 KB "pending" against a 64 KiB mark) while the socket
 * had nothing queued. */
static void small_write_burst_keeps_a_channel_writable(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_socket_options_t lo = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    server_t srv;
    conn_t sc;
    raw_client_t rc;
    const uint64_t total = 2600 * 100;
    conn_init(&sc);
    sc.app = APP_PEER;
    sc.tx_seed = 22;
    sc.tx_total = total;
    sc.tx_chunk = 100;
    sc.tx_ignore_writability = true;
    sc.tx_start = TX_ON_SETUP;
    sc.tx_then_shutdown = 1;
    sc.high_water = 64 * KIB;
    sc.low_water = 16 * KIB;
    lo.send_buffer_size = 1024 * 1024; /* room for the whole burst: the peer keeps up */
    memset(&rc, 0, sizeof(rc));
    rx_init(&rc.rx, 22, total);
    server_listen(&srv, loop, &lo, &sc);
    raw_connect(&rc, loop, &srv.ep, 1024 * 1024);
    RS_TEST_RUN_UNTIL_NS(loop, (rc.eof || rc.read_error) && sc.shutdown_calls > 0, BIG_WAIT_NS);
    assert_int_equal(rc.read_error, RS_OK);
    assert_int_equal(rc.rx.pos, total);
    assert_int_equal(ck_final(&rc.rx.ck), ck_final(&sc.tx_ck));
    assert_int_equal(sc.tx_msgs, 2600);
    if (completion_sockets(loop)) {
        /* Completion-based sockets hand a tick's writes to the kernel at the
         * tick's end, as one SENDMSG: until then they really are pending, and
         * a burst over the high-water mark within one tick turns writability
         * off, then on again once sent. */
        assert_int_equal(sc.wr_false, sc.wr_true);
    } else {
        assert_int_equal(sc.wr_false, 0); /* never "not writable" */
        assert_int_equal(sc.max_pending_after_pump, 0);
    }
    assert_conn_ok(&sc);
    finish_loop(loop, &srv, rc.sock);
}
RS_TEST_PER_BACKEND(, small_write_burst_keeps_a_channel_writable)

/* 1 GiB (plain build; see test_scale) echoed through socket -> pass-through
 * (copies each message both ways) -> echo, with back-pressure on the server
 * and 64-bit checksums on both sides: nothing lost, nothing duplicated. */
static void echo_1gib_through_three_handlers(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_socket_options_t lo = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    server_t srv;
    conn_t sc;
    conn_t cc;
    const uint64_t total = GIB / test_scale();
    uint64_t expect_ck;
    conn_init(&sc);
    sc.app = APP_ECHO;
    sc.passthrough = true;
    sc.back_pressure = true;
    sc.window = 256 * KIB;
    sc.echo_inc_on_completion = true;
    sc.rx_seed = 1;
    sc.rx_expect = total;
    conn_init(&cc);
    cc.is_client = true;
    cc.app = APP_PEER;
    cc.tx_seed = 1;
    cc.tx_total = total;
    cc.tx_start = TX_ON_SETUP;
    cc.rx_seed = 1;
    cc.rx_expect = total;
    cc.shutdown_when_done = true;
    server_listen(&srv, loop, &lo, &sc);
    client_connect(&cc, loop, &srv.ep);
    RS_TEST_RUN_UNTIL_NS(loop,
                         (cc.shutdown_calls > 0 && sc.shutdown_calls > 0) || cc.check_failures || sc.check_failures,
                         BIG_WAIT_NS);
    assert_conn_ok(&sc);
    assert_conn_ok(&cc);
    RS_TEST_RUN_UNTIL(loop, cc.shutdown_calls > 0 && sc.shutdown_calls > 0);
    expect_ck = ck_of_stream(1, total);
    assert_int_equal(cc.tx_sent, total);
    assert_int_equal(ck_final(&cc.tx_ck), expect_ck);
    assert_int_equal(sc.rx.pos, total);
    assert_false(sc.rx.overflow);
    assert_int_equal(sc.rx.first_bad, UINT64_MAX);
    assert_int_equal(ck_final(&sc.rx.ck), expect_ck);
    assert_int_equal(cc.rx.pos, total);
    assert_false(cc.rx.overflow);
    assert_int_equal(cc.rx.first_bad, UINT64_MAX);
    assert_int_equal(ck_final(&cc.rx.ck), expect_ck);
    assert_int_equal(sc.echo_sent, total);
    assert_int_equal(sc.pt_writes, sc.tx_msgs); /* every echo went through the copy */
    assert_true(sc.pt_reads > 0);
    assert_int_equal(sc.tx_ok, sc.tx_msgs); /* each original completed once, via the copy */
    assert_int_equal(sc.tx_ok_bytes, total);
    assert_int_equal(cc.tx_ok, cc.tx_msgs);
    assert_int_equal(cc.tx_ok_bytes, total);
    assert_int_equal(cc.shutdown_error, RS_OK);
    assert_int_equal(sc.shutdown_error, RS_EEOF);
    finish_loop(loop, &srv, NULL);
}
RS_TEST_PER_BACKEND(, echo_1gib_through_three_handlers)

/* Graceful shutdown right after queueing 4 MiB: every byte still reaches the
 * client, then EOF; every write completes with RS_OK. */
static void shutdown_after_burst(rs_event_loop_backend_t b, bool abortive) {
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_socket_options_t lo = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    server_t srv;
    conn_t sc;
    raw_client_t rc;
    const uint64_t total = 4 * MIB;
    conn_init(&sc);
    sc.app = APP_PEER;
    sc.tx_seed = 31;
    sc.tx_total = total;
    sc.tx_start = TX_ON_SETUP;
    sc.tx_ignore_writability = true;
    sc.tx_then_shutdown = abortive ? 2 : 1;
    if (abortive) {
        lo.send_buffer_size = 32 * 1024; /* so most of it is still queued when the abort comes */
    }
    memset(&rc, 0, sizeof(rc));
    rx_init(&rc.rx, 31, total);
    server_listen(&srv, loop, &lo, &sc);
    raw_connect(&rc, loop, &srv.ep, abortive ? 32 * 1024 : 0);
    RS_TEST_RUN_UNTIL_NS(loop, (rc.eof || rc.read_error) && sc.shutdown_calls > 0, BIG_WAIT_NS);
    run_ticks(loop, 5);
    assert_int_equal(sc.shutdown_calls, 1);
    assert_int_equal(sc.tx_sent, total);
    assert_int_equal(sc.tx_msgs, total / RS_MAX_FRAGMENT_SIZE);
    assert_int_equal(sc.tx_ok + sc.tx_canceled + sc.tx_other, sc.tx_msgs); /* each completed once */
    assert_int_equal(sc.tx_other, 0);
    assert_int_equal(rc.rx.first_bad, UINT64_MAX); /* whatever arrived is the right prefix */
    if (!abortive) {
        assert_int_equal(sc.shutdown_error, RS_OK);
        assert_int_equal(sc.tx_ok, sc.tx_msgs);
        assert_int_equal(sc.tx_canceled, 0);
        assert_true(rc.eof);
        assert_int_equal(rc.read_error, RS_OK);
        assert_int_equal(rc.rx.pos, total);
        assert_int_equal(ck_final(&rc.rx.ck), ck_final(&sc.tx_ck));
    } else {
        assert_true(sc.tx_canceled > 0);
        assert_true(rc.rx.pos < total);
        assert_true(rc.rx.pos >= sc.tx_ok_bytes);
        assert_true(rc.eof || rc.read_error == RS_ECONNRESET);
    }
    assert_conn_ok(&sc);
    finish_loop(loop, &srv, rc.sock);
}

static void graceful_shutdown_flushes_queued_writes(rs_event_loop_backend_t b) {
    shutdown_after_burst(b, false);
}
static void abortive_shutdown_cancels_queued_writes(rs_event_loop_backend_t b) {
    shutdown_after_burst(b, true);
}
RS_TEST_PER_BACKEND(, graceful_shutdown_flushes_queued_writes)
RS_TEST_PER_BACKEND(, abortive_shutdown_cancels_queued_writes)

/* ---------------------------------------------------------------- many connections */

/* N connections over an event-loop group: the listener accepts on loop 0 and
 * hands every other connection to loop 1 (assigning it on that loop's thread);
 * clients alternate between the loops. All connect first; only then does
 * every client start sending (so they really are concurrent). */
typedef struct group_run {
    harness_t h;
    rs_event_loop_group_t *group;
    rs_event_loop_t *loops[2];
    rs_socket_t *listener;
    rs_endpoint_t ep;
    size_t n;
    conn_t *srv;
    conn_t *cli;
    size_t accepted; /* loop 0 only */
    int accept_errors;
    int listen_result;
} group_run_t;

static void group_hop_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    conn_t *c = (conn_t *)arg;
    rs_socket_t *s = c->socket;
    rs_event_loop_t *loop = c->expect_loop;
    (void)task;
    c->socket = NULL;
    if (status != RS_TASK_STATUS_RUN || rs_socket_assign_to_loop(s, loop) != RS_OK) {
        CHECK(c, !"could not move the accepted socket");
        rs_socket_destroy(s);
        harness_on_done(c);
        return;
    }
    conn_start_channel(c, s, loop);
}

static void group_on_accept(rs_socket_t *listener, int error, rs_socket_t *ns, void *user_data) {
    group_run_t *g = (group_run_t *)user_data;
    conn_t *c;
    (void)listener;
    if (error || !ns) {
        ++g->accept_errors;
        return;
    }
    if (g->accepted >= g->n) {
        ++g->accept_errors;
        rs_socket_destroy(ns);
        return;
    }
    c = &g->srv[g->accepted];
    c->expect_loop = g->loops[g->accepted % 2];
    ++g->accepted;
    if (c->expect_loop == g->loops[0]) {
        if (rs_socket_assign_to_loop(ns, c->expect_loop) != RS_OK) {
            CHECK(c, !"assign failed");
            rs_socket_destroy(ns);
            harness_on_done(c);
            return;
        }
        conn_start_channel(c, ns, c->expect_loop);
        return;
    }
    c->socket = ns;
    rs_task_init(&c->hop_task, group_hop_task, c, "test_hop");
    rs_event_loop_schedule_task_now(c->expect_loop, &c->hop_task);
}

static void group_connect_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    conn_t *c = (conn_t *)arg;
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    group_run_t *g = (group_run_t *)(void *)c->h;
    rs_socket_t *s;
    int err = 12345;
    (void)task;
    if (status != RS_TASK_STATUS_RUN) {
        c->connect_error = RS_ECANCELED;
        harness_on_done(c);
        return;
    }
    s = rs_socket_new(&o, &err);
    if (!s) {
        c->connect_error = err;
        harness_on_done(c);
        return;
    }
    err = rs_socket_connect(s, &g->ep, c->expect_loop, client_on_connect, c);
    if (err) {
        c->connect_error = err;
        rs_socket_destroy(s);
        harness_on_done(c);
    }
}

static void group_listen_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    group_run_t *g = (group_run_t *)arg;
    int result = RS_ECANCELED;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        result = rs_socket_start_accept(g->listener, g->loops[0], group_on_accept, g);
    }
    rs_mutex_lock(&g->h.lock);
    g->listen_result = result;
    g->h.listening = true;
    rs_mutex_unlock(&g->h.lock);
}

static void group_counts(group_run_t *g, size_t *ready, size_t *done, size_t *failed) {
    rs_mutex_lock(&g->h.lock);
    *ready = g->h.ready;
    *done = g->h.done;
    *failed = g->h.failed_connects;
    rs_mutex_unlock(&g->h.lock);
}

/* Wait until ready (or done) reaches `target`; false on timeout. */
static bool group_wait(group_run_t *g, bool for_done, size_t target, uint64_t deadline) {
    for (;;) {
        size_t ready;
        size_t done;
        size_t failed;
        group_counts(g, &ready, &done, &failed);
        if ((for_done ? done : ready + done) >= target) {
            return true;
        }
        if (rs_clock_now_ns() > deadline) {
            return false;
        }
        rs_thread_sleep_ns(2 * RS_NS_PER_MS);
    }
}

/* Shut down whatever is still open, abortively, so teardown stays clean after a failure. */
static void group_abort(group_run_t *g) {
    size_t i;
    rs_mutex_lock(&g->h.lock);
    for (i = 0; i < g->n; ++i) {
        if (g->srv[i].live) {
            rs_channel_shutdown_abortively(g->srv[i].channel, RS_ECANCELED);
        }
        if (g->cli[i].live) {
            rs_channel_shutdown_abortively(g->cli[i].channel, RS_ECANCELED);
        }
    }
    rs_mutex_unlock(&g->h.lock);
}

static void echo_many_connections_on_group(size_t n, uint64_t per_conn, uint64_t limit_ns) {
    group_run_t g;
    rs_event_loop_group_options_t go;
    rs_socket_options_t lo = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    rs_task_t listen_task;
    uint64_t deadline = rs_clock_now_ns() + limit_ns;
    size_t i;
    size_t ready;
    size_t done;
    size_t failed;
    bool ok = true;
    const char *stage = "";
    int err = 12345;
    uint64_t expect_ck = ck_of_stream(1000, per_conn);
    memset(&g, 0, sizeof(g));
    assert_int_equal(rs_mutex_init(&g.h.lock), RS_OK);
    g.n = n;
    g.srv = (conn_t *)test_calloc(n, sizeof(conn_t));
    g.cli = (conn_t *)test_calloc(n, sizeof(conn_t));
    for (i = 0; i < n; ++i) {
        conn_t *s = &g.srv[i];
        conn_t *c = &g.cli[i];
        conn_init(s);
        s->app = APP_ECHO;
        s->back_pressure = true;
        s->window = 64 * KIB;
        s->echo_inc_on_completion = true;
        s->rx_seed = 1000;
        s->rx_expect = per_conn;
        s->h = &g.h;
        conn_init(c);
        c->is_client = true;
        c->app = APP_PEER;
        c->tx_seed = 1000;
        c->tx_total = per_conn;
        c->tx_start = TX_ON_GO;
        c->rx_seed = 1000;
        c->rx_expect = per_conn;
        c->shutdown_when_done = true;
        c->high_water = 64 * KIB;
        c->h = &g.h;
    }
    memset(&go, 0, sizeof(go));
    go.allocator = &rs_test_allocator;
    go.loop_count = 2;
    g.group = rs_event_loop_group_new(&go, &err);
    assert_non_null(g.group);
    g.loops[0] = rs_event_loop_group_get_loop_at(g.group, 0);
    g.loops[1] = rs_event_loop_group_get_loop_at(g.group, 1);
    g.listener = rs_socket_new(&lo, &err);
    assert_non_null(g.listener);
    assert_int_equal(rs_endpoint_from_ip(&g.ep, "127.0.0.1", 0), RS_OK);
    assert_int_equal(rs_socket_bind(g.listener, &g.ep), RS_OK);
    assert_int_equal(rs_socket_listen(g.listener, 0), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(g.listener, &g.ep), RS_OK);
    rs_task_init(&listen_task, group_listen_task, &g, "test_listen");
    rs_event_loop_schedule_task_now(g.loops[0], &listen_task);
    for (;;) {
        bool listening;
        rs_mutex_lock(&g.h.lock);
        listening = g.h.listening;
        err = listening ? g.listen_result : RS_ETIMEDOUT;
        rs_mutex_unlock(&g.h.lock);
        if (listening || rs_clock_now_ns() > deadline) {
            break;
        }
        rs_thread_sleep_ns(RS_NS_PER_MS);
    }
    assert_int_equal(err, RS_OK); /* rs_socket_start_accept's result */
    /* Connect in batches, so the accept queue never overflows (a dropped SYN costs a 1 s retry). */
    for (i = 0; i < n && ok; i += 256) {
        size_t end = i + 256 < n ? i + 256 : n;
        size_t j;
        for (j = i; j < end; ++j) {
            conn_t *c = &g.cli[j];
            c->expect_loop = g.loops[j % 2];
            rs_task_init(&c->hop_task, group_connect_task, c, "test_connect");
            rs_event_loop_schedule_task_now(c->expect_loop, &c->hop_task);
        }
        /* Both ends of each connection are set up (ready), or failed (done). */
        if (!group_wait(&g, false, 2 * end, deadline)) {
            ok = false;
            stage = "connecting";
        }
    }
    group_counts(&g, &ready, &done, &failed);
    if (ok && (done != 0 || ready != 2 * n)) {
        ok = false;
        stage = "setting up (a connection failed)";
    }
    if (ok) {
        for (i = 0; i < n; ++i) {
            /* Only a live channel (one that has not shut down) is sure to be allocated;
             * the lock is taken per connection so loop threads are never held up long. */
            rs_mutex_lock(&g.h.lock);
            if (g.cli[i].live) {
                rs_channel_task_init(&g.cli[i].go_task, go_task_fn, &g.cli[i], "test_go");
                rs_channel_schedule_task_now(g.cli[i].channel, &g.cli[i].go_task);
            }
            rs_mutex_unlock(&g.h.lock);
        }
        if (!group_wait(&g, true, 2 * n, deadline)) {
            ok = false;
            stage = "transferring";
        }
    }
    if (!ok) {
        group_abort(&g);
        group_wait(&g, true, 2 * n, rs_clock_now_ns() + 10 * RS_NS_PER_SEC);
    }
    group_counts(&g, &ready, &done, &failed);
    rs_socket_destroy(g.listener);
    assert_int_equal(rs_event_loop_group_destroy(g.group), RS_OK); /* joins: conn_t is ours again */
    rs_mutex_cleanup(&g.h.lock);
    if (!ok) {
        test_free(g.srv);
        test_free(g.cli);
        fail_msg("%s timed out or failed: ready %zu, done %zu of %zu, failed connects %zu, accepted %zu",
                 stage, ready, done, 2 * n, failed, g.accepted);
    }
    assert_int_equal(g.accept_errors, 0);
    assert_int_equal(g.accepted, n);
    for (i = 0; i < n; ++i) {
        conn_t *s = &g.srv[i];
        conn_t *c = &g.cli[i];
        assert_conn_ok(s);
        assert_conn_ok(c);
        assert_int_equal(c->connect_error, RS_OK);
        assert_int_equal(c->shutdown_error, RS_OK);
        assert_int_equal(s->shutdown_error, RS_EEOF);
        assert_int_equal(c->shutdown_calls, 1);
        assert_int_equal(s->shutdown_calls, 1);
        assert_int_equal(c->tx_sent, per_conn);
        assert_int_equal(c->tx_ok, c->tx_msgs);
        assert_int_equal(c->rx.pos, per_conn);
        assert_int_equal(c->rx.first_bad, UINT64_MAX);
        assert_false(c->rx.overflow);
        assert_int_equal(ck_final(&c->rx.ck), expect_ck);
        assert_int_equal(ck_final(&c->tx_ck), expect_ck);
        assert_int_equal(s->rx.pos, per_conn);
        assert_int_equal(s->rx.first_bad, UINT64_MAX);
        assert_int_equal(ck_final(&s->rx.ck), expect_ck);
        assert_int_equal(s->tx_ok, s->tx_msgs);
        assert_int_equal(s->app_destroyed, 1);
        assert_int_equal(c->app_destroyed, 1);
    }
    test_free(g.srv);
    test_free(g.cli);
}

/* 1000 connections on a 2-loop group, each echoing 1 MiB (plain build; see test_scale). */
static void echo_1mib_on_1000_connections_group(void **state) {
    RS_TEST_NEEDS_THREADS();
    uint64_t scale = test_scale();
    (void)state;
    echo_many_connections_on_group(1000, MIB / scale, BIG_WAIT_NS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(, server_shuts_down_with_eof_when_client_closes),
        RS_TEST_PER_BACKEND_TESTS(, read_to_eof_delivers_all_data_first_ipv4),
        RS_TEST_PER_BACKEND_TESTS(, read_to_eof_delivers_all_data_first_ipv6),
        RS_TEST_PER_BACKEND_TESTS(, echo_with_read_back_pressure),
        RS_TEST_PER_BACKEND_TESTS(, channel_runs_on_its_socket_loop),
        RS_TEST_PER_BACKEND_TESTS(, statistics_are_reported),
        RS_TEST_PER_BACKEND_TESTS(, writability_pauses_and_resumes_writer),
        RS_TEST_PER_BACKEND_TESTS(, small_write_burst_keeps_a_channel_writable),
        RS_TEST_PER_BACKEND_TESTS(, graceful_shutdown_flushes_queued_writes),
        RS_TEST_PER_BACKEND_TESTS(, abortive_shutdown_cancels_queued_writes),
        RS_TEST_PER_BACKEND_TESTS(, echo_1gib_through_three_handlers),
        cmocka_unit_test(echo_1mib_on_1000_connections_group),
    };
    pat_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
