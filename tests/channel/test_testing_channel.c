/*
 * The testing channel itself: a pipeline on a loop stepped by hand, whose
 * leftmost handler is a fake socket.
 *
 * Covers a push/drain round trip through an echo handler (every backend, with
 * and without back-pressure), fragmenting of large pushes, asynchronous write
 * completions, the write limit (messages complete in order, only once all
 * their bytes are taken, across runs), read windows and the withheld-window
 * fault, peer reset, end of stream, abortive and graceful shutdown, destroy
 * with writes queued, and the fake socket's statistics.
 *
 * Everything runs on the test thread; the test handler is allocated from the
 * leak-checking allocator, so a handler the channel fails to destroy fails
 * the test.
 */
#include "test_util.h"

#define MAX_COMPLETIONS 64

/* ---------------------------------------------------------- test handler */

/* Rightmost handler: records what it reads; echoes it back when `echo` is set;
 * reopens its window by what it consumed when `auto_window` is set. */
typedef struct test_handler {
    rs_channel_handler_t base;
    size_t initial_window;
    bool echo;
    bool auto_window;
    rs_byte_buf_t received;
    size_t read_messages;
    size_t largest_message;
    int shutdowns[2];
    int *destroyed; /* counts destroy calls; outlives the handler */
} test_handler_t;

static int th_process_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    test_handler_t *th = (test_handler_t *)h->impl;
    size_t len = message->message_data.len;
    assert_int_equal(rs_byte_buf_append(&th->received, message->message_data.buffer, len), RS_OK);
    ++th->read_messages;
    th->largest_message = len > th->largest_message ? len : th->largest_message;
    if (th->echo) {
        /* The read message becomes the write message: ownership allows it. */
        assert_int_equal(rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE), RS_OK);
    } else {
        rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), message);
    }
    if (th->auto_window) {
        rs_channel_slot_increment_read_window(slot, len);
    }
    return RS_OK;
}

static int th_process_write(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    (void)h;
    return rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE);
}

static int th_increment_window(rs_channel_handler_t *h, rs_channel_slot_t *slot, size_t size) {
    (void)h;
    (void)slot;
    (void)size;
    return RS_OK;
}

static int th_shutdown(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_channel_direction_t dir, int error,
                       bool abort_immediately) {
    test_handler_t *th = (test_handler_t *)h->impl;
    ++th->shutdowns[dir];
    return rs_channel_slot_on_handler_shutdown_complete(slot, dir, error, abort_immediately);
}

static size_t th_initial_window(rs_channel_handler_t *h) {
    return ((test_handler_t *)h->impl)->initial_window;
}

static size_t th_overhead(rs_channel_handler_t *h) {
    (void)h;
    return 0;
}

static void th_destroy(rs_channel_handler_t *h) {
    test_handler_t *th = (test_handler_t *)h->impl;
    if (th->destroyed) {
        ++*th->destroyed;
    }
    rs_byte_buf_cleanup(&th->received);
    rs_mem_free(&rs_test_allocator, th);
}

static const rs_channel_handler_vtable_t th_vtable = {
    th_process_read, th_process_write, th_increment_window, th_shutdown, th_initial_window, th_overhead, th_destroy,
    NULL, NULL, NULL,
};

static test_handler_t *th_new(size_t initial_window, bool echo, int *destroyed) {
    test_handler_t *th = (test_handler_t *)rs_mem_calloc(&rs_test_allocator, 1, sizeof(*th));
    assert_non_null(th);
    th->base.vtable = &th_vtable;
    th->base.impl = th;
    th->initial_window = initial_window;
    th->echo = echo;
    th->auto_window = echo;
    th->destroyed = destroyed;
    assert_int_equal(rs_byte_buf_init(&th->received, &rs_test_allocator, 0), RS_OK);
    return th;
}

/* ------------------------------------------------------------- fixtures */

typedef struct completions {
    int tags[MAX_COMPLETIONS];
    int errors[MAX_COMPLETIONS];
    size_t count;
} completions_t;

static void on_write_complete(rs_channel_t *channel, rs_io_message_t *message, int error, void *user_data) {
    completions_t *c = (completions_t *)user_data;
    (void)channel;
    assert_true(c->count < MAX_COMPLETIONS);
    c->tags[c->count] = message->message_tag;
    c->errors[c->count] = error;
    ++c->count;
}

static rs_testing_channel_t *tc_new(rs_event_loop_backend_t backend, bool back_pressure) {
    rs_testing_channel_options_t o;
    rs_testing_channel_t *tc;
    int err = 12345;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.backend = backend;
    o.enable_read_back_pressure = back_pressure;
    tc = rs_testing_channel_new(&o, &err);
    assert_non_null(tc);
    assert_int_equal(err, RS_OK);
    return tc;
}

static test_handler_t *tc_add(rs_testing_channel_t *tc, size_t window, bool echo, int *destroyed) {
    test_handler_t *th = th_new(window, echo, destroyed);
    assert_int_equal(rs_testing_channel_add_handler(tc, &th->base), RS_OK);
    return th;
}

/* Write `len` bytes of `fill` from the handler's slot, tagged for the completion log. */
static void write_from(test_handler_t *th, uint8_t fill, size_t len, int tag, completions_t *log) {
    rs_channel_t *channel = rs_channel_slot_get_channel(th->base.slot);
    rs_io_message_t *m = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, len);
    assert_non_null(m);
    memset(m->message_data.buffer, fill, len);
    m->message_data.len = len;
    m->message_tag = tag;
    m->on_completion = on_write_complete;
    m->user_data = log;
    assert_int_equal(rs_channel_slot_send_message(th->base.slot, m, RS_CHANNEL_DIR_WRITE), RS_OK);
}

static void push_pattern(rs_testing_channel_t *tc, size_t offset, size_t len) {
    uint8_t chunk[4096];
    while (len > 0) {
        size_t n = len < sizeof(chunk) ? len : sizeof(chunk);
        size_t i;
        for (i = 0; i < n; ++i) {
            chunk[i] = (uint8_t)((offset + i) * 31 + 7);
        }
        assert_int_equal(rs_testing_channel_push_read(tc, rs_byte_cursor_from_array(chunk, n)), RS_OK);
        offset += n;
        len -= n;
    }
}

static void assert_pattern(const uint8_t *bytes, size_t offset, size_t len) {
    size_t i;
    for (i = 0; i < len; ++i) {
        assert_int_equal(bytes[i], (uint8_t)((offset + i) * 31 + 7));
    }
}

/* ------------------------------------------------------------------ tests */

static void round_trip(rs_event_loop_backend_t backend, bool back_pressure) {
    rs_testing_channel_t *tc = tc_new(backend, back_pressure);
    int destroyed = 0;
    test_handler_t *echo = tc_add(tc, 64 * 1024, true, &destroyed);
    rs_byte_buf_t out;
    assert_int_equal(rs_byte_buf_init(&out, &rs_test_allocator, 0), RS_OK);
    push_pattern(tc, 0, 1000);
    assert_int_equal(rs_testing_channel_pending_read_bytes(tc), 1000);
    assert_int_equal(echo->received.len, 0); /* delivered by a run, not by the push */
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(echo->received.len, 1000);
    assert_int_equal(rs_testing_channel_pending_read_bytes(tc), 0);
    assert_int_equal(rs_testing_channel_drain_written(tc, &out), RS_OK);
    assert_int_equal(out.len, 1000);
    assert_pattern(out.buffer, 0, 1000);
    /* Drained bytes are gone from the fake socket. */
    rs_byte_buf_reset(&out);
    assert_int_equal(rs_testing_channel_drain_written(tc, &out), RS_OK);
    assert_int_equal(out.len, 0);
    assert_false(rs_testing_channel_is_shut_down(tc, NULL));
    rs_testing_channel_destroy(tc);
    assert_int_equal(destroyed, 1);
    rs_byte_buf_cleanup(&out);
}

static void round_trip_without_and_with_back_pressure(rs_event_loop_backend_t b) {
    round_trip(b, false);
    round_trip(b, true);
}
RS_TEST_PER_BACKEND_CALL(testing_channel_, round_trip, round_trip_without_and_with_back_pressure(b))

static void testing_channel_large_push_arrives_in_fragments(void **state) {
    const size_t total = 5 * RS_MAX_FRAGMENT_SIZE + 123;
    rs_testing_channel_t *tc = tc_new(RS_EVENT_LOOP_BACKEND_DEFAULT, true);
    test_handler_t *echo = tc_add(tc, 3 * RS_MAX_FRAGMENT_SIZE, true, NULL);
    rs_byte_buf_t out;
    (void)state;
    assert_int_equal(rs_byte_buf_init(&out, &rs_test_allocator, 0), RS_OK);
    push_pattern(tc, 0, total);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(echo->received.len, total);
    assert_pattern(echo->received.buffer, 0, total);
    assert_true(echo->largest_message <= RS_MAX_FRAGMENT_SIZE);
    assert_true(echo->read_messages >= 6);
    assert_int_equal(rs_testing_channel_drain_written(tc, &out), RS_OK);
    assert_int_equal(out.len, total);
    assert_pattern(out.buffer, 0, total);
    rs_testing_channel_destroy(tc);
    rs_byte_buf_cleanup(&out);
}

static void testing_channel_write_completion_is_async(void **state) {
    rs_testing_channel_t *tc = tc_new(RS_EVENT_LOOP_BACKEND_DEFAULT, false);
    test_handler_t *app = tc_add(tc, 0, false, NULL);
    completions_t log;
    (void)state;
    memset(&log, 0, sizeof(log));
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    write_from(app, 'a', 10, 1, &log);
    assert_int_equal(log.count, 0);
    assert_int_equal(rs_testing_channel_pending_write_bytes(tc), 10);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(log.count, 1);
    assert_int_equal(log.errors[0], RS_OK);
    assert_int_equal(rs_testing_channel_pending_write_bytes(tc), 0);
    rs_testing_channel_destroy(tc);
}

/* Four 25-byte messages through a 10-byte-per-run socket: each completes, in
 * order, in the run that takes its last byte. */
static void testing_channel_write_limit_completes_in_order(void **state) {
    rs_testing_channel_t *tc = tc_new(RS_EVENT_LOOP_BACKEND_DEFAULT, false);
    test_handler_t *app = tc_add(tc, 0, false, NULL);
    static const size_t done_after_run[10] = {0, 0, 1, 1, 2, 2, 2, 3, 3, 4};
    completions_t log;
    rs_byte_buf_t out;
    size_t run, i;
    (void)state;
    memset(&log, 0, sizeof(log));
    assert_int_equal(rs_byte_buf_init(&out, &rs_test_allocator, 0), RS_OK);
    rs_testing_channel_set_write_limit(tc, 10);
    for (i = 0; i < 4; ++i) {
        write_from(app, (uint8_t)('a' + i), 25, (int)i, &log);
    }
    assert_int_equal(rs_testing_channel_pending_write_bytes(tc), 100);
    for (run = 0; run < 10; ++run) {
        assert_int_equal(rs_testing_channel_run(tc), RS_OK);
        assert_int_equal(log.count, done_after_run[run]);
        assert_int_equal(rs_testing_channel_pending_write_bytes(tc), 100 - 10 * (run + 1));
    }
    for (i = 0; i < 4; ++i) {
        assert_int_equal(log.tags[i], (int)i);
        assert_int_equal(log.errors[i], RS_OK);
    }
    assert_int_equal(rs_testing_channel_drain_written(tc, &out), RS_OK);
    assert_int_equal(out.len, 100);
    for (i = 0; i < 100; ++i) {
        assert_int_equal(out.buffer[i], 'a' + i / 25);
    }
    /* Lifting the limit takes everything in one run. */
    rs_testing_channel_set_write_limit(tc, 0);
    write_from(app, 'z', 1000, 9, &log);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(log.count, 5);
    rs_testing_channel_destroy(tc);
    rs_byte_buf_cleanup(&out);
}

static void testing_channel_respects_read_window(void **state) {
    rs_testing_channel_t *tc = tc_new(RS_EVENT_LOOP_BACKEND_DEFAULT, true);
    test_handler_t *sink = tc_add(tc, 10, false, NULL);
    (void)state;
    push_pattern(tc, 0, 100);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(sink->received.len, 10);
    assert_int_equal(rs_testing_channel_pending_read_bytes(tc), 90);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(sink->received.len, 10); /* no window, no data */
    assert_int_equal(rs_channel_slot_increment_read_window(sink->base.slot, 50), RS_OK);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(sink->received.len, 60);
    assert_int_equal(rs_testing_channel_pending_read_bytes(tc), 40);
    assert_pattern(sink->received.buffer, 0, 60);
    /* Pushing more while some is pending keeps the order. */
    push_pattern(tc, 100, 20);
    assert_int_equal(rs_channel_slot_increment_read_window(sink->base.slot, 1000), RS_OK);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(sink->received.len, 120);
    assert_pattern(sink->received.buffer, 0, 120);
    rs_testing_channel_destroy(tc);
}

static void testing_channel_withheld_window_holds_reads(void **state) {
    rs_testing_channel_t *tc = tc_new(RS_EVENT_LOOP_BACKEND_DEFAULT, true);
    test_handler_t *sink = tc_add(tc, 0, false, NULL);
    (void)state;
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    rs_testing_channel_withhold_window(tc, true);
    assert_int_equal(rs_channel_slot_increment_read_window(sink->base.slot, 100), RS_OK);
    push_pattern(tc, 0, 100);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(sink->received.len, 0);
    assert_int_equal(rs_testing_channel_pending_read_bytes(tc), 100);
    rs_testing_channel_withhold_window(tc, false);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(sink->received.len, 100);
    assert_pattern(sink->received.buffer, 0, 100);
    assert_int_equal(rs_testing_channel_pending_read_bytes(tc), 0);
    rs_testing_channel_destroy(tc);
}

static void testing_channel_reset_fails_writes_and_shuts_down(void **state) {
    rs_testing_channel_t *tc = tc_new(RS_EVENT_LOOP_BACKEND_DEFAULT, false);
    test_handler_t *app = tc_add(tc, 0, false, NULL);
    completions_t log;
    int err = 0;
    (void)state;
    memset(&log, 0, sizeof(log));
    rs_testing_channel_set_write_limit(tc, 5);
    write_from(app, 'a', 10, 0, &log);
    write_from(app, 'b', 10, 1, &log);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(log.count, 0); /* half of the first message taken */
    push_pattern(tc, 0, 10);
    rs_testing_channel_inject_reset(tc);
    assert_int_equal(log.count, 0); /* acted on by the next run */
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(log.count, 2);
    assert_int_equal(log.errors[0], RS_ECONNRESET);
    assert_int_equal(log.errors[1], RS_ECONNRESET);
    assert_int_equal(log.tags[0], 0);
    assert_int_equal(log.tags[1], 1);
    assert_true(rs_testing_channel_is_shut_down(tc, &err));
    assert_int_equal(err, RS_ECONNRESET);
    assert_int_equal(app->received.len, 0); /* what the peer sent before resetting is lost */
    assert_int_equal(app->shutdowns[RS_CHANNEL_DIR_READ], 1);
    assert_int_equal(app->shutdowns[RS_CHANNEL_DIR_WRITE], 1);
    assert_int_equal(rs_testing_channel_push_read(tc, rs_byte_cursor_from_cstr("x")), RS_ENOTCONN);
    rs_testing_channel_destroy(tc);
}

static void testing_channel_eof_after_pending_reads(void **state) {
    rs_testing_channel_t *tc = tc_new(RS_EVENT_LOOP_BACKEND_DEFAULT, true);
    test_handler_t *sink = tc_add(tc, 10, false, NULL);
    int err = 0;
    (void)state;
    push_pattern(tc, 0, 30);
    rs_testing_channel_push_eof(tc);
    assert_int_equal(rs_testing_channel_push_read(tc, rs_byte_cursor_from_cstr("late")), RS_ENOTCONN);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(sink->received.len, 10);
    assert_false(rs_testing_channel_is_shut_down(tc, NULL));
    assert_int_equal(rs_channel_slot_increment_read_window(sink->base.slot, 100), RS_OK);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(sink->received.len, 30);
    assert_pattern(sink->received.buffer, 0, 30);
    assert_true(rs_testing_channel_is_shut_down(tc, &err));
    assert_int_equal(err, RS_EEOF);
    rs_testing_channel_destroy(tc);
}

static void testing_channel_abortive_shutdown_cancels_writes(void **state) {
    rs_testing_channel_t *tc = tc_new(RS_EVENT_LOOP_BACKEND_DEFAULT, false);
    test_handler_t *app = tc_add(tc, 0, false, NULL);
    completions_t log;
    int err = 0;
    (void)state;
    memset(&log, 0, sizeof(log));
    rs_testing_channel_set_write_limit(tc, 1);
    write_from(app, 'a', 10, 0, &log);
    write_from(app, 'b', 10, 1, &log);
    assert_int_equal(rs_channel_shutdown_abortively(rs_testing_channel_get_channel(tc), RS_ECONNABORTED), RS_OK);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(log.count, 2);
    assert_int_equal(log.errors[0], RS_ECANCELED);
    assert_int_equal(log.errors[1], RS_ECANCELED);
    assert_true(rs_testing_channel_is_shut_down(tc, &err));
    assert_int_equal(err, RS_ECONNABORTED);
    assert_int_equal(rs_testing_channel_pending_write_bytes(tc), 0);
    rs_testing_channel_destroy(tc);
}

static void testing_channel_graceful_shutdown_flushes_writes(void **state) {
    rs_testing_channel_t *tc = tc_new(RS_EVENT_LOOP_BACKEND_DEFAULT, false);
    test_handler_t *app = tc_add(tc, 0, false, NULL);
    completions_t log;
    rs_byte_buf_t out;
    int runs = 0;
    int err = -1;
    (void)state;
    memset(&log, 0, sizeof(log));
    assert_int_equal(rs_byte_buf_init(&out, &rs_test_allocator, 0), RS_OK);
    rs_testing_channel_set_write_limit(tc, 10);
    write_from(app, 'a', 25, 0, &log);
    write_from(app, 'b', 25, 1, &log);
    assert_int_equal(rs_channel_shutdown(rs_testing_channel_get_channel(tc), RS_OK), RS_OK);
    while (!rs_testing_channel_is_shut_down(tc, &err) && runs < 100) {
        assert_int_equal(rs_testing_channel_run(tc), RS_OK);
        ++runs;
    }
    assert_int_equal(runs, 5);
    assert_int_equal(err, RS_OK);
    assert_int_equal(log.count, 2);
    assert_int_equal(log.errors[0], RS_OK);
    assert_int_equal(log.errors[1], RS_OK);
    assert_int_equal(rs_testing_channel_drain_written(tc, &out), RS_OK);
    assert_int_equal(out.len, 50);
    rs_testing_channel_destroy(tc);
    rs_byte_buf_cleanup(&out);
}

static void testing_channel_destroy_completes_queued_writes_once(void **state) {
    rs_testing_channel_t *tc = tc_new(RS_EVENT_LOOP_BACKEND_DEFAULT, false);
    test_handler_t *app = tc_add(tc, 0, false, NULL);
    int destroyed = 0;
    completions_t log;
    (void)state;
    memset(&log, 0, sizeof(log));
    app->destroyed = &destroyed;
    rs_testing_channel_set_write_limit(tc, 3);
    write_from(app, 'a', 10, 0, &log);
    write_from(app, 'b', 10, 1, &log);
    rs_testing_channel_destroy(tc); /* flushes gracefully, a few bytes per run */
    assert_int_equal(log.count, 2);
    assert_int_equal(log.errors[0], RS_OK);
    assert_int_equal(log.errors[1], RS_OK);
    assert_int_equal(destroyed, 1);
}

static void testing_channel_reports_statistics(void **state) {
    rs_testing_channel_t *tc = tc_new(RS_EVENT_LOOP_BACKEND_DEFAULT, false);
    rs_channel_slot_t *first = rs_channel_get_first_slot(rs_testing_channel_get_channel(tc));
    rs_channel_handler_t *fake = rs_channel_slot_get_handler(first);
    rs_channel_handler_stats_t stats;
    (void)state;
    tc_add(tc, 0, true, NULL);
    push_pattern(tc, 0, 300);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    memset(&stats, 0, sizeof(stats));
    fake->vtable->gather_statistics(fake, &stats);
    assert_non_null(stats.handler_name);
    assert_int_equal(stats.bytes_read, 300);
    assert_int_equal(stats.bytes_written, 300);
    fake->vtable->reset_statistics(fake);
    memset(&stats, 0, sizeof(stats));
    fake->vtable->gather_statistics(fake, &stats);
    assert_int_equal(stats.bytes_read, 0);
    assert_int_equal(stats.bytes_written, 0);
    rs_testing_channel_destroy(tc);
}

/* On a backend other than the default where the OS has one (poll on Linux). */
#define ACCESSORS_BACKEND (rs_test_backends[RS_TEST_BACKEND_COUNT - 1])

static void testing_channel_accessors(void **state) {
    rs_testing_channel_t *tc = tc_new(ACCESSORS_BACKEND, false);
    rs_channel_t *channel = rs_testing_channel_get_channel(tc);
    (void)state;
    assert_non_null(channel);
    assert_ptr_equal(rs_channel_get_loop(channel), rs_testing_channel_get_loop(tc));
    assert_int_equal(rs_event_loop_get_backend(rs_testing_channel_get_loop(tc)), ACCESSORS_BACKEND);
    assert_non_null(rs_channel_get_first_slot(channel));
    assert_null(rs_channel_slot_get_right(rs_channel_get_first_slot(channel)));
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(rs_testing_channel_pending_read_bytes(tc), 0);
    assert_int_equal(rs_testing_channel_pending_write_bytes(tc), 0);
    rs_testing_channel_destroy(tc);
    rs_testing_channel_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(testing_channel_, round_trip),
        cmocka_unit_test(testing_channel_large_push_arrives_in_fragments),
        cmocka_unit_test(testing_channel_write_completion_is_async),
        cmocka_unit_test(testing_channel_write_limit_completes_in_order),
        cmocka_unit_test(testing_channel_respects_read_window),
        cmocka_unit_test(testing_channel_withheld_window_holds_reads),
        cmocka_unit_test(testing_channel_reset_fails_writes_and_shuts_down),
        cmocka_unit_test(testing_channel_eof_after_pending_reads),
        cmocka_unit_test(testing_channel_abortive_shutdown_cancels_writes),
        cmocka_unit_test(testing_channel_graceful_shutdown_flushes_writes),
        cmocka_unit_test(testing_channel_destroy_completes_queued_writes_once),
        cmocka_unit_test(testing_channel_reports_statistics),
        cmocka_unit_test(testing_channel_accessors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
