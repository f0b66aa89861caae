/*
 * A graceful shutdown waits for queued writes while the peer does not read,
 * and closing the socket cuts it short: the queued writes complete once each
 * (RS_OK for what reached the kernel, RS_ECANCELED for the rest) and the
 * shutdown then finishes. This is the behaviour the README documents.
 */
#include "test_util.h"

#define MESSAGES 512 /* 512 x 16 KiB = 8 MiB: far more than the kernel buffers */
#define WAIT_NS (10 * RS_NS_PER_SEC)

typedef struct ctx {
    rs_event_loop_t *loop;
    rs_socket_t *listener;
    rs_socket_t *client; /* connects, never reads */
    rs_channel_t *channel;
    rs_channel_handler_t *socket_handler;
    rs_channel_handler_t writer;
    int completions;
    int completions_ok;
    int completions_canceled;
    int completions_other;
    int shutdown_calls;
    int shutdown_error;
    bool connected;
    bool wrote;
} ctx_t;

static void on_write_done(rs_channel_t *channel, rs_io_message_t *message, int error, void *user_data) {
    ctx_t *c = (ctx_t *)user_data;
    (void)channel;
    (void)message;
    c->completions++;
    if (error == RS_OK) {
        c->completions_ok++;
    } else if (error == RS_ECANCELED) {
        c->completions_canceled++;
    } else {
        c->completions_other++;
    }
}

/* Queue MESSAGES full messages, then ask for a graceful shutdown at once. */
static void write_all_then_shutdown(ctx_t *c, rs_channel_slot_t *slot) {
    int i;
    for (i = 0; i < MESSAGES; ++i) {
        rs_io_message_t *m = rs_channel_acquire_message_from_pool(c->channel, RS_IO_MESSAGE_APPLICATION_DATA,
                                                                  RS_MAX_FRAGMENT_SIZE);
        assert_non_null(m);
        memset(m->message_data.buffer, 'x', RS_MAX_FRAGMENT_SIZE);
        m->message_data.len = RS_MAX_FRAGMENT_SIZE;
        m->on_completion = on_write_done;
        m->user_data = c;
        assert_int_equal(rs_channel_slot_send_message(slot, m, RS_CHANNEL_DIR_WRITE), RS_OK);
    }
    c->wrote = true;
    assert_int_equal(rs_channel_shutdown(c->channel, RS_OK), RS_OK);
}

static const rs_channel_handler_vtable_t writer_vtable = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};

static void on_setup(rs_channel_t *channel, int error, void *user_data) {
    ctx_t *c = (ctx_t *)user_data;
    rs_channel_slot_t *left = rs_channel_slot_new(channel, NULL);
    rs_channel_slot_t *right = rs_channel_slot_new(channel, NULL);
    assert_int_equal(error, RS_OK);
    assert_non_null(left);
    assert_non_null(right);
    assert_int_equal(rs_channel_slot_set_handler(left, c->socket_handler), RS_OK);
    assert_int_equal(rs_channel_slot_insert_right(left, right), RS_OK);
    c->writer.vtable = &writer_vtable;
    c->writer.impl = c;
    assert_int_equal(rs_channel_slot_set_handler(right, &c->writer), RS_OK);
    write_all_then_shutdown(c, right);
}

static void on_shutdown(rs_channel_t *channel, int error, void *user_data) {
    ctx_t *c = (ctx_t *)user_data;
    (void)channel;
    c->shutdown_calls++;
    c->shutdown_error = error;
}

static void on_accept(rs_socket_t *listener, int error, rs_socket_t *socket, void *user_data) {
    ctx_t *c = (ctx_t *)user_data;
    rs_channel_options_t o = {.loop = c->loop, .allocator = &rs_test_allocator, .user_data = c,
                              .on_setup_completed = on_setup, .on_shutdown_completed = on_shutdown};
    int err = RS_OK;
    (void)listener;
    assert_int_equal(error, RS_OK);
    assert_int_equal(rs_socket_assign_to_loop(socket, c->loop), RS_OK);
    c->socket_handler = rs_socket_handler_new(&rs_test_allocator, socket, NULL, &err);
    assert_non_null(c->socket_handler);
    c->channel = rs_channel_new(&o, &err);
    assert_non_null(c->channel);
}

static void on_connect(rs_socket_t *socket, int error, void *user_data) {
    (void)socket;
    assert_int_equal(error, RS_OK);
    ((ctx_t *)user_data)->connected = true;
}

static void run_until(ctx_t *c, const bool *flag) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    while (!*flag) {
        assert_true(rs_clock_now_ns() < deadline);
        assert_int_equal(rs_event_loop_run_once(c->loop, 10), RS_OK);
    }
}

static void run_for_ms(ctx_t *c, uint64_t ms) {
    uint64_t end = rs_clock_now_ns() + ms * RS_NS_PER_MS;
    while (rs_clock_now_ns() < end) {
        assert_int_equal(rs_event_loop_run_once(c->loop, 10), RS_OK);
    }
}

static void graceful_shutdown_waits_for_a_slow_reader_until_the_socket_closes(rs_event_loop_backend_t backend) {
    rs_event_loop_options_t lo = {.allocator = &rs_test_allocator, .backend = backend};
    rs_socket_options_t so = {.allocator = &rs_test_allocator, .send_buffer_size = 64 * 1024,
                              .recv_buffer_size = 64 * 1024};
    rs_endpoint_t ep;
    bool shut = false;
    ctx_t c;
    memset(&c, 0, sizeof(c));
    c.loop = rs_event_loop_new(&lo, NULL);
    assert_non_null(c.loop);
    c.listener = rs_socket_new(&so, NULL);
    c.client = rs_socket_new(&so, NULL);
    assert_non_null(c.listener);
    assert_non_null(c.client);
    assert_int_equal(rs_endpoint_from_ip(&ep, "127.0.0.1", 0), RS_OK);
    assert_int_equal(rs_socket_bind(c.listener, &ep), RS_OK);
    assert_int_equal(rs_socket_listen(c.listener, 0), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(c.listener, &ep), RS_OK);
    assert_int_equal(rs_socket_start_accept(c.listener, c.loop, on_accept, &c), RS_OK);
    assert_int_equal(rs_socket_connect(c.client, &ep, c.loop, on_connect, &c), RS_OK);
    run_until(&c, &c.wrote);

    /* The client never reads: the shutdown must wait, with writes still queued. */
    run_for_ms(&c, 300);
    assert_int_equal(c.shutdown_calls, 0);
    assert_true(c.completions < MESSAGES);
    assert_int_equal(c.completions_canceled, 0);

    /* Cutting it short, as the README says. */
    assert_int_equal(rs_socket_close(rs_socket_handler_get_socket(c.socket_handler)), RS_OK);
    while (!shut) {
        run_for_ms(&c, 10);
        shut = c.shutdown_calls > 0;
    }
    assert_int_equal(c.shutdown_calls, 1);
    assert_int_equal(c.shutdown_error, RS_OK);
    assert_int_equal(c.completions, MESSAGES); /* every write completed exactly once */
    assert_true(c.completions_canceled > 0);
    assert_int_equal(c.completions_other, 0);
    assert_int_equal(c.completions_ok + c.completions_canceled, MESSAGES);

    rs_channel_destroy(c.channel); /* destroys the socket handler and its socket */
    rs_socket_destroy(c.client);
    rs_socket_destroy(c.listener);
    run_for_ms(&c, 20);
    rs_event_loop_destroy(c.loop);
}

static void graceful_shutdown_slow_reader_epoll(void **state) {
    (void)state;
    graceful_shutdown_waits_for_a_slow_reader_until_the_socket_closes(RS_EVENT_LOOP_BACKEND_EPOLL);
}

static void graceful_shutdown_slow_reader_poll(void **state) {
    (void)state;
    graceful_shutdown_waits_for_a_slow_reader_until_the_socket_closes(RS_EVENT_LOOP_BACKEND_POLL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(graceful_shutdown_slow_reader_epoll),
        cmocka_unit_test(graceful_shutdown_slow_reader_poll),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
