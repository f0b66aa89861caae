/*
 * A graceful shutdown waits for queued writes while the peer does not read,
 * and can be cut short three ways: closing the socket, an abortive shutdown
 * request (which upgrades the graceful one), or the channel's graceful
 * shutdown timeout. Each way, the queued writes complete once each (RS_OK for
 * what reached the kernel, RS_ECANCELED for the rest), the shutdown finishes,
 * and it reports an error, because accepted data was not delivered. Also: a
 * write that completes after its handler was destroyed carries no channel.
 */
#include "test_util.h"

#define MESSAGES 512 /* 512 x 16 KiB = 8 MiB: far more than the kernel buffers */
#define WAIT_NS (10 * RS_NS_PER_SEC)

typedef enum cut {
    CUT_BY_CLOSING_THE_SOCKET,
    CUT_BY_ABORTIVE_SHUTDOWN,
    CUT_BY_TIMEOUT,
    CUT_BY_REMOVING_THE_SOCKET_SLOT /* no shutdown: the handler is destroyed with writes in flight */
} cut_t;

/* Long enough that the 300 ms "still waiting" check passes under any load. */
#define GRACEFUL_TIMEOUT_MS 1500

typedef struct ctx {
    cut_t cut;
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
    int completions_with_channel;
    int shutdown_calls;
    int shutdown_error;
    bool connected;
    bool wrote;
} ctx_t;

static void on_write_done(rs_channel_t *channel, rs_io_message_t *message, int error, void *user_data) {
    ctx_t *c = (ctx_t *)user_data;
    c->completions++;
    if (channel || message->owning_channel) {
        c->completions_with_channel++;
    }
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
    if (c->cut != CUT_BY_REMOVING_THE_SOCKET_SLOT) {
        assert_int_equal(rs_channel_shutdown(c->channel, RS_OK), RS_OK);
    }
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
                              .on_setup_completed = on_setup, .on_shutdown_completed = on_shutdown,
                              .graceful_shutdown_timeout_ms = c->cut == CUT_BY_TIMEOUT ? GRACEFUL_TIMEOUT_MS : 0};
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

static void cut_short(ctx_t *c) {
    switch (c->cut) {
    case CUT_BY_CLOSING_THE_SOCKET: /* as the README says */
        assert_int_equal(rs_socket_close(rs_socket_handler_get_socket(c->socket_handler)), RS_OK);
        break;
    case CUT_BY_ABORTIVE_SHUTDOWN: /* before the fix, dropped as a repeat: the shutdown stalled */
        assert_int_equal(rs_channel_shutdown_abortively(c->channel, RS_OK), RS_OK);
        assert_int_equal(rs_channel_shutdown_abortively(c->channel, RS_OK), RS_OK); /* a repeat is harmless */
        break;
    case CUT_BY_TIMEOUT:
    case CUT_BY_REMOVING_THE_SOCKET_SLOT:
        break;
    }
}

static int expected_error(cut_t cut) {
    return cut == CUT_BY_TIMEOUT ? RS_ETIMEDOUT : RS_ECANCELED;
}

static void connect_and_write(ctx_t *c, rs_event_loop_backend_t backend) {
    rs_event_loop_options_t lo = {.allocator = &rs_test_allocator, .backend = backend};
    rs_socket_options_t so = {.allocator = &rs_test_allocator, .send_buffer_size = 64 * 1024,
                              .recv_buffer_size = 64 * 1024};
    rs_endpoint_t ep;
    c->loop = rs_event_loop_new(&lo, NULL);
    assert_non_null(c->loop);
    c->listener = rs_socket_new(&so, NULL);
    c->client = rs_socket_new(&so, NULL);
    assert_non_null(c->listener);
    assert_non_null(c->client);
    assert_int_equal(rs_endpoint_from_ip(&ep, "127.0.0.1", 0), RS_OK);
    assert_int_equal(rs_socket_bind(c->listener, &ep), RS_OK);
    assert_int_equal(rs_socket_listen(c->listener, 0), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(c->listener, &ep), RS_OK);
    assert_int_equal(rs_socket_start_accept(c->listener, c->loop, on_accept, c), RS_OK);
    assert_int_equal(rs_socket_connect(c->client, &ep, c->loop, on_connect, c), RS_OK);
    run_until(c, &c->wrote);
}

static void teardown(ctx_t *c) {
    rs_socket_destroy(c->client);
    rs_socket_destroy(c->listener);
    run_for_ms(c, 20);
    rs_event_loop_destroy(c->loop);
}

static void stalled_graceful_shutdown_is_cut_short(rs_event_loop_backend_t backend, cut_t cut) {
    bool shut = false;
    ctx_t c;
    memset(&c, 0, sizeof(c));
    c.cut = cut;
    connect_and_write(&c, backend);

    /* The client never reads: the shutdown must wait, with writes still queued. */
    run_for_ms(&c, 300);
    assert_int_equal(c.shutdown_calls, 0);
    assert_true(c.completions < MESSAGES);
    assert_int_equal(c.completions_canceled, 0);

    cut_short(&c);
    while (!shut) {
        run_for_ms(&c, 10); /* bounded by run_for_ms's own deadline checks and the test timeout */
        shut = c.shutdown_calls > 0;
    }
    assert_int_equal(c.shutdown_calls, 1);
    /* Before the fix, closing the socket reported RS_OK although writes were canceled. */
    assert_int_equal(c.shutdown_error, expected_error(cut));
    assert_int_equal(c.completions, MESSAGES); /* every write completed exactly once */
    assert_true(c.completions_canceled > 0);
    assert_int_equal(c.completions_other, 0);
    assert_int_equal(c.completions_ok + c.completions_canceled, MESSAGES);
    assert_int_equal(c.completions_with_channel, MESSAGES); /* the handler was alive for all of them */

    rs_channel_destroy(c.channel); /* destroys the socket handler and its socket */
    teardown(&c);
}

/* The socket handler is destroyed (its slot removed, then the channel
 * destroyed) while writes are queued on its socket: they complete once each,
 * canceled, after the destroy, and with no channel pointer (before the fix,
 * one that could dangle). */
static void write_completions_after_handler_destroy_carry_no_channel(rs_event_loop_backend_t backend) {
    ctx_t c;
    memset(&c, 0, sizeof(c));
    c.cut = CUT_BY_REMOVING_THE_SOCKET_SLOT;
    connect_and_write(&c, backend);
    run_for_ms(&c, 50);
    assert_true(c.completions < MESSAGES);
    assert_int_equal(c.completions_with_channel, c.completions);
    assert_int_equal(rs_channel_slot_remove(rs_channel_get_first_slot(c.channel)), RS_OK);
    rs_channel_destroy(c.channel);
    /* On IOCP the canceled writes complete when their packets come back:
     * later, and under load much later, than the destroy. */
    RS_TEST_RUN_UNTIL(c.loop, c.completions == MESSAGES && c.shutdown_calls > 0);
    assert_int_equal(c.completions, MESSAGES);
    assert_true(c.completions_canceled > 0);
    assert_int_equal(c.completions_ok + c.completions_canceled, MESSAGES);
    assert_int_equal(c.completions_with_channel, c.completions_ok);
    assert_int_equal(c.shutdown_calls, 1);
    teardown(&c);
}

RS_TEST_PER_BACKEND_CALL(, stalled_shutdown_cut_by_closing_the_socket,
                         stalled_graceful_shutdown_is_cut_short(b, CUT_BY_CLOSING_THE_SOCKET))
RS_TEST_PER_BACKEND_CALL(, stalled_shutdown_upgraded_by_an_abortive_request,
                         stalled_graceful_shutdown_is_cut_short(b, CUT_BY_ABORTIVE_SHUTDOWN))
RS_TEST_PER_BACKEND_CALL(, stalled_shutdown_turns_abortive_after_its_timeout,
                         stalled_graceful_shutdown_is_cut_short(b, CUT_BY_TIMEOUT))
RS_TEST_PER_BACKEND_CALL(, write_completions_after_handler_destroy_carry_no_channel_test,
                         write_completions_after_handler_destroy_carry_no_channel(b))

int main(void) {
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(, stalled_shutdown_cut_by_closing_the_socket),
        RS_TEST_PER_BACKEND_TESTS(, stalled_shutdown_upgraded_by_an_abortive_request),
        RS_TEST_PER_BACKEND_TESTS(, stalled_shutdown_turns_abortive_after_its_timeout),
        RS_TEST_PER_BACKEND_TESTS(, write_completions_after_handler_destroy_carry_no_channel_test),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
