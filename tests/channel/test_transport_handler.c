/*
 * The transport handler (issue 16): a channel's left end over a data source
 * of the application's, on a loop with a custom backend, as firmware runs
 * it. Checked: reads within the read window and on_read_window; writes
 * offered from a task, partial takes and resume, completions once; a write
 * error, end of stream, graceful and abortive shutdown; misuse; and an echo
 * of 100 KB driven by a main loop of run_once calls, with its data fed from
 * memory, byte-exact, also under every allocation failure.
 */
#include "test_util.h"

/* ---- the firmware side: a backend and a peer in memory ---- */

typedef struct peer {
    const uint8_t *rx;        /* what the peer sends us */
    size_t rx_len;
    size_t rx_off;            /* delivered so far */
    rs_byte_buf_t tx;         /* what we sent the peer */
    size_t tx_per_call;       /* a FIFO's room per write call (0: all) */
    size_t tx_budget;         /* room left until the next dispatch (SIZE_MAX: unlimited) */
    int write_error;          /* returned by the next write, once */
    int writes;
    int window_calls;
    size_t window_total;
    int closes;
    int close_error;
    bool eof_after_rx;        /* end of stream once rx is delivered */
    bool eof_sent;
    int deliver_error;
    rs_channel_handler_t *transport;
} peer_t;

static void peer_deliver(peer_t *p) {
    size_t taken = 0;
    int err;
    if (!p->transport || p->rx_off >= p->rx_len) {
        return;
    }
    err = rs_transport_handler_deliver(p->transport, rs_byte_cursor_from_array(p->rx + p->rx_off, p->rx_len - p->rx_off),
                                       &taken);
    p->rx_off += taken;
    if (err && !p->deliver_error) {
        p->deliver_error = err;
    }
}

static void fw_wait(void *user_data, int timeout_ms) {
    (void)user_data;
    (void)timeout_ms; /* memory is always ready: nothing to sleep for */
}

static bool fw_wake(void *user_data) {
    (void)user_data;
    return true;
}

/* After each wait: the FIFO drained, so writes resume; new bytes arrived. */
static void fw_dispatch(void *user_data) {
    peer_t *p = (peer_t *)user_data;
    if (!p->transport) {
        return;
    }
    p->tx_budget = p->tx_per_call ? p->tx_per_call : SIZE_MAX;
    if (rs_transport_handler_pending_write_bytes(p->transport)) {
        rs_transport_handler_resume_writes(p->transport);
    }
    peer_deliver(p);
    if (p->eof_after_rx && !p->eof_sent && p->rx_off == p->rx_len) {
        p->eof_sent = true;
        rs_transport_handler_end_of_stream(p->transport, RS_OK);
    }
}

static int peer_write(void *user_data, rs_byte_cursor_t data, size_t *taken) {
    peer_t *p = (peer_t *)user_data;
    size_t n = data.len < p->tx_budget ? data.len : p->tx_budget;
    p->writes++;
    if (p->write_error) {
        int err = p->write_error;
        p->write_error = 0;
        return err;
    }
    if (rs_byte_buf_append(&p->tx, data.ptr, n) != RS_OK) {
        return RS_ENOMEM;
    }
    if (p->tx_budget != SIZE_MAX) {
        p->tx_budget -= n;
    }
    *taken = n;
    return RS_OK;
}

static void peer_on_window(void *user_data, size_t window) {
    peer_t *p = (peer_t *)user_data;
    p->window_calls++;
    p->window_total += window;
    peer_deliver(p);
}

static void peer_on_close(void *user_data, int error) {
    peer_t *p = (peer_t *)user_data;
    p->closes++;
    p->close_error = error;
}

/* ---- the application's handler: echo, or collect ---- */

typedef struct app {
    rs_channel_handler_t handler;
    bool echo;
    size_t window;       /* initial window */
    bool reopen;         /* reopen the window as reads are consumed */
    rs_byte_buf_t got;
    int completions;
    int completion_error;
} app_t;

static int app_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    app_t *a = (app_t *)h->impl;
    size_t len = message->message_data.len;
    if (a->echo) {
        if (rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE) != RS_OK) {
            rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), message);
        }
    } else {
        rs_byte_buf_append(&a->got, message->message_data.buffer, len);
        rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), message);
    }
    return a->reopen ? rs_channel_slot_increment_read_window(slot, len) : RS_OK;
}

static int app_shutdown(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_channel_direction_t dir, int error,
                        bool abort_immediately) {
    (void)h;
    return rs_channel_slot_on_handler_shutdown_complete(slot, dir, error, abort_immediately);
}

static size_t app_window(rs_channel_handler_t *h) {
    return ((app_t *)h->impl)->window;
}

static void app_destroy(rs_channel_handler_t *h) {
    rs_byte_buf_cleanup(&((app_t *)h->impl)->got);
}

static const rs_channel_handler_vtable_t app_vtable = {
    app_read, NULL, NULL, app_shutdown, app_window, NULL, app_destroy, NULL, NULL, NULL,
};

static void on_write_done(rs_channel_t *channel, rs_io_message_t *message, int error, void *user_data) {
    app_t *a = (app_t *)user_data;
    (void)channel;
    (void)message;
    a->completions++;
    if (error && !a->completion_error) {
        a->completion_error = error;
    }
}

/* Write `len` bytes of `c` from the app's slot, as one message. */
static void app_write(app_t *a, char c, size_t len) {
    rs_channel_t *channel = rs_channel_slot_get_channel(a->handler.slot);
    rs_io_message_t *m = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, len);
    assert_non_null(m);
    memset(m->message_data.buffer, c, len);
    m->message_data.len = len;
    m->on_completion = on_write_done;
    m->user_data = a;
    assert_int_equal(rs_channel_slot_send_message(a->handler.slot, m, RS_CHANNEL_DIR_WRITE), RS_OK);
}

/* ---- a world: loop, channel, transport, app ---- */

typedef struct world {
    peer_t peer;
    app_t app;
    rs_event_loop_t *loop;
    rs_channel_t *channel;
    bool setup;
    int setup_error;
    bool shut_down;
    int shutdown_error;
} world_t;

static void on_setup(rs_channel_t *channel, int error, void *user_data) {
    world_t *w = (world_t *)user_data;
    (void)channel;
    w->setup = true;
    w->setup_error = error;
}

static void on_shutdown(rs_channel_t *channel, int error, void *user_data) {
    world_t *w = (world_t *)user_data;
    (void)channel;
    w->shut_down = true;
    w->shutdown_error = error;
}

static void run_ticks(world_t *w, int n) {
    int i;
    for (i = 0; i < n; ++i) {
        assert_int_equal(rs_event_loop_run_once(w->loop, 0), RS_OK);
    }
}

/* Build the world on `allocator`; RS_OK or the first error (everything made is then freed). */
static int world_open(world_t *w, const rs_allocator_t *allocator, size_t app_window_size, bool back_pressure) {
    rs_event_loop_custom_backend_t b;
    rs_event_loop_options_t lo;
    rs_channel_options_t co;
    rs_transport_handler_options_t to;
    rs_channel_slot_t *s1, *s2;
    int err = RS_OK;
    int tick;

    memset(&b, 0, sizeof(b));
    b.wait = fw_wait;
    b.wake = fw_wake;
    b.dispatch = fw_dispatch;
    b.user_data = &w->peer;
    memset(&lo, 0, sizeof(lo));
    lo.allocator = allocator;
    lo.custom_backend = &b;
    if (rs_byte_buf_init(&w->peer.tx, allocator, 0) != RS_OK) {
        return RS_ENOMEM;
    }
    w->peer.tx_budget = SIZE_MAX;
    w->app.handler.vtable = &app_vtable;
    w->app.handler.impl = &w->app;
    w->app.window = app_window_size;
    if (rs_byte_buf_init(&w->app.got, allocator, 0) != RS_OK) {
        rs_byte_buf_cleanup(&w->peer.tx);
        return RS_ENOMEM;
    }
    w->loop = rs_event_loop_new(&lo, &err);
    if (!w->loop) {
        goto fail_loop;
    }
    memset(&co, 0, sizeof(co));
    co.loop = w->loop;
    co.on_setup_completed = on_setup;
    co.on_shutdown_completed = on_shutdown;
    co.user_data = w;
    co.enable_read_back_pressure = back_pressure;
    w->channel = rs_channel_new(&co, &err);
    if (!w->channel) {
        goto fail_channel;
    }
    for (tick = 0; tick < 10 && !w->setup; ++tick) {
        rs_event_loop_run_once(w->loop, 0);
    }
    err = w->setup ? w->setup_error : RS_ETIMEDOUT;
    if (err) {
        goto fail_setup;
    }
    memset(&to, 0, sizeof(to));
    to.allocator = allocator;
    to.callbacks.write = peer_write;
    to.callbacks.on_read_window = peer_on_window;
    to.callbacks.on_close = peer_on_close;
    to.user_data = &w->peer;
    w->peer.transport = rs_transport_handler_new(&to, &err);
    if (!w->peer.transport) {
        goto fail_setup;
    }
    s1 = rs_channel_slot_new(w->channel, &err);
    if (!s1 || (err = rs_channel_slot_insert_end(w->channel, s1)) != RS_OK ||
        (err = rs_channel_slot_set_handler(s1, w->peer.transport)) != RS_OK) {
        w->peer.transport->vtable->destroy(w->peer.transport);
        w->peer.transport = NULL;
        goto fail_setup;
    }
    s2 = rs_channel_slot_new(w->channel, &err);
    if (!s2 || (err = rs_channel_slot_insert_end(w->channel, s2)) != RS_OK ||
        (err = rs_channel_slot_set_handler(s2, &w->app.handler)) != RS_OK) {
        goto fail_setup;
    }
    /* The app's initial window reaches the transport in a window update task. */
    for (tick = 0; tick < 3; ++tick) {
        rs_event_loop_run_once(w->loop, 0);
    }
    if (w->shut_down) {
        err = w->shutdown_error ? w->shutdown_error : RS_ECANCELED;
        rs_channel_destroy(w->channel);
        w->channel = NULL;
        goto fail_channel;
    }
    return RS_OK;

fail_setup:
    rs_channel_shutdown(w->channel, err);
    for (tick = 0; tick < 100 && !w->shut_down; ++tick) {
        rs_event_loop_run_once(w->loop, 0);
    }
    rs_channel_destroy(w->channel);
fail_channel:
    rs_event_loop_destroy(w->loop);
fail_loop:
    if (!w->app.handler.slot) {
        rs_byte_buf_cleanup(&w->app.got);
    }
    rs_byte_buf_cleanup(&w->peer.tx);
    return err;
}

static void world_close(world_t *w) {
    int tick;
    rs_channel_shutdown(w->channel, RS_OK);
    for (tick = 0; tick < 1000 && !w->shut_down; ++tick) {
        rs_event_loop_run_once(w->loop, 0);
    }
    assert_true(w->shut_down);
    rs_channel_destroy(w->channel);
    rs_event_loop_destroy(w->loop);
    rs_byte_buf_cleanup(&w->peer.tx);
}

static world_t *world_new(size_t app_window_size, bool back_pressure) {
    world_t *w = (world_t *)test_calloc(1, sizeof(world_t));
    assert_int_equal(world_open(w, &rs_test_allocator, app_window_size, back_pressure), RS_OK);
    return w;
}

/* ---- tests ---- */

static void transport_new_refuses_bad_options(void **state) {
    rs_transport_handler_options_t o;
    rs_test_failing_alloc_t fa;
    rs_channel_handler_t *h;
    int err = 0;
    (void)state;
    assert_null(rs_transport_handler_new(NULL, &err));
    assert_int_equal(err, RS_EINVAL);
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    err = 0;
    assert_null(rs_transport_handler_new(&o, &err)); /* no write callback */
    assert_int_equal(err, RS_EINVAL);
    o.callbacks.write = peer_write;
    rs_test_failing_alloc_init(&fa, 1);
    o.allocator = &fa.allocator;
    err = 0;
    assert_null(rs_transport_handler_new(&o, &err));
    assert_int_equal(err, RS_ENOMEM);
    o.allocator = &rs_test_allocator;
    h = rs_transport_handler_new(&o, &err);
    assert_non_null(h);
    assert_int_equal(err, RS_OK);
    /* Not in a slot yet: the calls that need a channel refuse. */
    assert_int_equal(rs_transport_handler_deliver(h, rs_byte_cursor_from_cstr("x"), NULL), RS_EINVAL);
    assert_int_equal(rs_transport_handler_resume_writes(h), RS_EINVAL);
    assert_int_equal(rs_transport_handler_end_of_stream(h, RS_OK), RS_EINVAL);
    assert_int_equal(rs_transport_handler_pending_write_bytes(h), 0);
    h->vtable->destroy(h);
    assert_int_equal(rs_transport_handler_resume_writes(NULL), RS_EINVAL);
    assert_int_equal(rs_transport_handler_pending_write_bytes(NULL), 0);
}

static void transport_deliver_respects_the_read_window(void **state) {
    static const char data[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    world_t *w = world_new(10, true);
    size_t taken = 99;
    rs_channel_slot_t *app_slot = w->app.handler.slot;
    rs_byte_cursor_t bad = {NULL, 5};
    (void)state;
    /* Another handler is refused. */
    assert_int_equal(rs_transport_handler_deliver(&w->app.handler, rs_byte_cursor_from_cstr("x"), &taken), RS_EINVAL);
    assert_int_equal(rs_transport_handler_deliver(w->peer.transport, bad, &taken), RS_EINVAL);

    assert_int_equal(rs_transport_handler_deliver(w->peer.transport, rs_byte_cursor_from_cstr(data), &taken), RS_OK);
    assert_int_equal(taken, 10);
    assert_int_equal(w->app.got.len, 10);
    assert_int_equal(rs_transport_handler_deliver(w->peer.transport, rs_byte_cursor_from_cstr(data + 10), &taken),
                     RS_OK);
    assert_int_equal(taken, 0); /* the window is closed: nothing lost, the caller keeps it */

    /* The app reopens its window: on_read_window is called, and the peer delivers the rest. */
    w->peer.rx = (const uint8_t *)data + 10;
    w->peer.rx_len = sizeof(data) - 1 - 10;
    assert_int_equal(rs_channel_slot_increment_read_window(app_slot, 30), RS_OK);
    run_ticks(w, 3);
    assert_int_equal(w->peer.window_calls, 2); /* the initial window, then the app's increment */
    assert_int_equal(w->peer.window_total, 10 + 30);
    assert_int_equal(w->app.got.len, sizeof(data) - 1);
    assert_memory_equal(w->app.got.buffer, data, sizeof(data) - 1);
    world_close(w);
    assert_int_equal(w->shutdown_error, RS_OK);
    assert_int_equal(w->peer.closes, 1);
    test_free(w);
}

static void transport_writes_from_a_task_partial_then_resumed(void **state) {
    world_t *w = world_new(SIZE_MAX, false);
    (void)state;
    w->peer.tx_per_call = 100;
    w->peer.tx_budget = 100;
    app_write(&w->app, 'a', 250);
    app_write(&w->app, 'b', 50);
    assert_int_equal(w->peer.writes, 0); /* never inside the write that queued it */
    assert_int_equal(rs_transport_handler_pending_write_bytes(w->peer.transport), 300);
    assert_int_equal(rs_channel_get_pending_write_bytes(w->channel), 300);
    run_ticks(w, 1); /* dispatch resets the budget to 100, then the task offers */
    assert_int_equal(w->peer.tx.len, 100);
    assert_int_equal(w->app.completions, 0);
    assert_int_equal(rs_transport_handler_pending_write_bytes(w->peer.transport), 200);
    run_ticks(w, 4);
    assert_int_equal(w->peer.tx.len, 300);
    assert_int_equal(w->app.completions, 2);
    assert_int_equal(w->app.completion_error, RS_OK);
    assert_int_equal(rs_channel_get_pending_write_bytes(w->channel), 0);
    assert_int_equal(w->peer.tx.buffer[249], 'a');
    assert_int_equal(w->peer.tx.buffer[250], 'b');
    world_close(w);
    assert_int_equal(w->peer.closes, 1);
    assert_int_equal(w->peer.close_error, RS_OK);
    test_free(w);
}

static void transport_write_error_fails_writes_and_shuts_down(void **state) {
    world_t *w = world_new(SIZE_MAX, false);
    (void)state;
    w->peer.write_error = RS_ECONNRESET;
    app_write(&w->app, 'a', 10);
    app_write(&w->app, 'b', 10);
    run_ticks(w, 5);
    assert_int_equal(w->app.completions, 2);
    assert_int_equal(w->app.completion_error, RS_ECONNRESET);
    assert_true(w->shut_down);
    assert_int_equal(w->shutdown_error, RS_ECONNRESET);
    rs_channel_destroy(w->channel);
    rs_event_loop_destroy(w->loop);
    rs_byte_buf_cleanup(&w->peer.tx);
    test_free(w);
}

static void transport_graceful_shutdown_waits_for_queued_writes(void **state) {
    world_t *w = world_new(SIZE_MAX, false);
    (void)state;
    w->peer.tx_per_call = 1; /* a byte per tick */
    w->peer.tx_budget = 0;
    app_write(&w->app, 'z', 5);
    rs_channel_shutdown(w->channel, RS_OK);
    run_ticks(w, 2);
    assert_false(w->shut_down);
    assert_int_equal(w->peer.closes, 0);
    run_ticks(w, 20);
    assert_true(w->shut_down);
    assert_int_equal(w->shutdown_error, RS_OK);
    assert_int_equal(w->peer.tx.len, 5);
    assert_int_equal(w->app.completions, 1);
    assert_int_equal(w->app.completion_error, RS_OK);
    assert_int_equal(w->peer.closes, 1);
    rs_channel_destroy(w->channel);
    rs_event_loop_destroy(w->loop);
    rs_byte_buf_cleanup(&w->peer.tx);
    test_free(w);
}

static void transport_abortive_shutdown_cancels_queued_writes(void **state) {
    world_t *w = world_new(SIZE_MAX, false);
    (void)state;
    w->peer.tx_per_call = 1;
    w->peer.tx_budget = 0;
    app_write(&w->app, 'z', 5);
    rs_channel_shutdown_abortively(w->channel, RS_OK);
    run_ticks(w, 5);
    assert_true(w->shut_down);
    assert_int_equal(w->shutdown_error, RS_ECANCELED);
    assert_int_equal(w->app.completions, 1);
    assert_int_equal(w->app.completion_error, RS_ECANCELED);
    assert_int_equal(w->peer.closes, 1);
    assert_int_equal(w->peer.close_error, RS_ECANCELED);
    rs_channel_destroy(w->channel);
    rs_event_loop_destroy(w->loop);
    rs_byte_buf_cleanup(&w->peer.tx);
    test_free(w);
}

static void transport_end_of_stream_after_the_data(void **state) {
    static const char data[] = "last words";
    world_t *w = world_new(SIZE_MAX, false);
    size_t taken = 0;
    (void)state;
    w->peer.rx = (const uint8_t *)data;
    w->peer.rx_len = sizeof(data) - 1;
    w->peer.eof_after_rx = true;
    run_ticks(w, 5);
    assert_true(w->shut_down);
    assert_int_equal(w->shutdown_error, RS_EEOF);
    assert_int_equal(w->app.got.len, sizeof(data) - 1);
    assert_int_equal(rs_transport_handler_deliver(w->peer.transport, rs_byte_cursor_from_cstr("late"), &taken),
                     RS_ENOTCONN);
    assert_int_equal(taken, 0);
    rs_channel_destroy(w->channel);
    rs_event_loop_destroy(w->loop);
    rs_byte_buf_cleanup(&w->peer.tx);
    test_free(w);
}

/* ---- the firmware echo ---- */

#define ECHO_BYTES ((size_t)100 * 1024)

/* The firmware main loop: run_once until the peer has its bytes back. */
static int echo_run(world_t *w, const uint8_t *input) {
    int tick;
    w->app.echo = true;
    w->app.reopen = true;
    w->peer.rx = input;
    w->peer.rx_len = ECHO_BYTES;
    w->peer.tx_per_call = 3000; /* a small FIFO: writes block and resume */
    for (tick = 0; tick < 100000 && w->peer.tx.len < ECHO_BYTES && !w->shut_down; ++tick) {
        rs_event_loop_run_once(w->loop, -1);
    }
    return w->shut_down ? (w->shutdown_error ? w->shutdown_error : RS_ECANCELED) : RS_OK;
}

static uint8_t *echo_input(void) {
    uint8_t *input = (uint8_t *)test_malloc(ECHO_BYTES);
    uint32_t x = 2463534242u;
    size_t i;
    for (i = 0; i < ECHO_BYTES; ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        input[i] = (uint8_t)x;
    }
    return input;
}

static void transport_firmware_echo_is_byte_exact(void **state) {
    uint8_t *input = echo_input();
    world_t *w = world_new(4 * RS_MAX_FRAGMENT_SIZE / 8, true); /* a window smaller than the data */
    (void)state;
    assert_int_equal(echo_run(w, input), RS_OK);
    assert_int_equal(w->peer.tx.len, ECHO_BYTES);
    assert_memory_equal(w->peer.tx.buffer, input, ECHO_BYTES);
    assert_true(w->peer.window_calls > 0);
    world_close(w);
    test_free(w);
    test_free(input);
}

/* Every allocation failing in turn: RS_ENOMEM somewhere, or a byte-exact echo; no leak either way. */
static void transport_firmware_echo_under_allocation_failures(void **state) {
    uint8_t *input = echo_input();
    size_t fail_at;
    int ok = 0, failed = 0;
    (void)state;
    for (fail_at = 1; fail_at < 200; ++fail_at) {
        rs_test_failing_alloc_t fa;
        world_t *w = (world_t *)test_calloc(1, sizeof(world_t));
        int err;
        rs_test_failing_alloc_init(&fa, fail_at);
        err = world_open(w, &fa.allocator, 4096, true);
        if (err) {
            assert_int_equal(err, RS_ENOMEM);
            failed++;
            test_free(w);
            continue;
        }
        err = echo_run(w, input);
        if (err == RS_OK) {
            assert_memory_equal(w->peer.tx.buffer, input, w->peer.tx.len);
            assert_int_equal(w->peer.tx.len, ECHO_BYTES);
            ok++;
            world_close(w);
        } else {
            if (err != RS_ENOMEM || (w->peer.tx.len && memcmp(w->peer.tx.buffer, input, w->peer.tx.len) != 0)) {
                fail_msg("allocation %zu failing: %s, %zu bytes back", fail_at, rs_err_name(err), w->peer.tx.len);
            }
            failed++;
            rs_channel_destroy(w->channel);
            rs_event_loop_destroy(w->loop);
            rs_byte_buf_cleanup(&w->peer.tx);
        }
        test_free(w);
        if (fa.failures == 0) {
            break; /* past the last allocation */
        }
    }
    assert_true(failed > 0);
    assert_true(ok > 0);
    test_free(input);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(transport_new_refuses_bad_options),
        cmocka_unit_test(transport_deliver_respects_the_read_window),
        cmocka_unit_test(transport_writes_from_a_task_partial_then_resumed),
        cmocka_unit_test(transport_write_error_fails_writes_and_shuts_down),
        cmocka_unit_test(transport_graceful_shutdown_waits_for_queued_writes),
        cmocka_unit_test(transport_abortive_shutdown_cancels_queued_writes),
        cmocka_unit_test(transport_end_of_stream_after_the_data),
        cmocka_unit_test(transport_firmware_echo_is_byte_exact),
        cmocka_unit_test(transport_firmware_echo_under_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
