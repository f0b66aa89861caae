/*
 * rs_channel_write_threadsafe: writes from any thread, on a testing channel.
 *
 * Covers: bytes from another thread reach the fake socket in order, each
 * write's on_done once with RS_OK after its bytes were taken; a write larger
 * than a fragment is split and completes once; the writer feels the pressure
 * at once (RS_EAGAIN past the high-water mark, bounded memory) and may go on
 * once the bytes drained; writes enter at the rightmost handler that takes
 * writes (an application handler without process_write_message is passed
 * over); after shutdown began, RS_ESHUTDOWN, and writes queued but not yet
 * delivered complete RS_ECANCELED; bad arguments; two writer threads at once
 * (each one's bytes in its own order; run it under TSan).
 */
#include "test_util.h"

typedef struct done_count {
    rs_mutex_t lock;
    int calls;
    int ok;
    int canceled;
    int other;
} done_count_t;

static void on_done(rs_channel_t *channel, int error, void *ud) {
    done_count_t *d = (done_count_t *)ud;
    assert_non_null(channel);
    rs_mutex_lock(&d->lock);
    d->calls++;
    if (error == RS_OK) {
        d->ok++;
    } else if (error == RS_ECANCELED) {
        d->canceled++;
    } else {
        d->other++;
    }
    rs_mutex_unlock(&d->lock);
}

static rs_testing_channel_t *new_tc(size_t high_water) {
    rs_testing_channel_options_t o;
    rs_testing_channel_t *tc;
    int err = RS_OK;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.write_high_water_mark = high_water;
    tc = rs_testing_channel_new(&o, &err);
    assert_non_null(tc);
    return tc;
}

/* An application handler that reads but never writes. */
static void app_destroy(rs_channel_handler_t *h) {
    test_free(h);
}

static const rs_channel_handler_vtable_t app_vtable = {NULL, NULL, NULL, NULL, NULL, NULL, app_destroy,
                                                       NULL, NULL, NULL};

typedef struct writer {
    rs_channel_t *channel;
    done_count_t *done;
    uint8_t tag;
    int writes;
    int accepted;
} writer_t;

/* Writes "tag, sequence number" records of 8 bytes, retrying on RS_EAGAIN. */
static void writer_main(void *arg) {
    writer_t *w = (writer_t *)arg;
    int i;
    for (i = 0; i < w->writes; ++i) {
        uint8_t rec[8] = {w->tag, 0, 0, 0, (uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        int err, spins = 0;
        while ((err = rs_channel_write_threadsafe(w->channel, rs_byte_cursor_from_array(rec, 8), on_done, w->done)) ==
                   RS_EAGAIN &&
               spins++ < 200000) {
            rs_thread_sleep_ns(10000);
        }
        if (err != RS_OK) {
            break;
        }
        w->accepted++;
    }
}

static void drain(rs_testing_channel_t *tc, rs_byte_buf_t *out) {
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(rs_testing_channel_drain_written(tc, out), RS_OK);
}

static void threadsafe_write_from_another_thread_arrives_in_order(void **state) {
    rs_testing_channel_t *tc = new_tc(0);
    done_count_t done = {RS_MUTEX_INIT, 0, 0, 0, 0};
    writer_t w = {rs_testing_channel_get_channel(tc), &done, 7, 2000, 0};
    rs_byte_buf_t out;
    rs_thread_t t;
    uint64_t deadline = rs_clock_now_ns() + 60 * RS_NS_PER_SEC;
    int i;
    (void)state;
    assert_int_equal(rs_byte_buf_init(&out, &rs_test_allocator, 1024), RS_OK);
    assert_int_equal(rs_thread_launch(&t, writer_main, &w, NULL), RS_OK);
    while (out.len < 2000 * 8 && rs_clock_now_ns() < deadline) {
        drain(tc, &out);
    }
    assert_int_equal(rs_thread_join(&t), RS_OK);
    drain(tc, &out);
    assert_int_equal(w.accepted, 2000);
    assert_int_equal(out.len, 2000 * 8);
    for (i = 0; i < 2000; ++i) {
        const uint8_t *r = out.buffer + i * 8;
        assert_int_equal(r[0], 7);
        assert_int_equal(((int)r[6] << 8) | r[7], i & 0xffff);
    }
    assert_int_equal(done.calls, 2000);
    assert_int_equal(done.ok, 2000);
    rs_byte_buf_cleanup(&out);
    rs_testing_channel_destroy(tc);
}

static void threadsafe_write_large_is_split_and_completes_once(void **state) {
    rs_testing_channel_t *tc = new_tc(0);
    done_count_t done = {RS_MUTEX_INIT, 0, 0, 0, 0};
    size_t len = 3 * RS_MAX_FRAGMENT_SIZE + 123, i;
    uint8_t *data = (uint8_t *)test_malloc(len);
    rs_byte_buf_t out;
    (void)state;
    for (i = 0; i < len; ++i) {
        data[i] = (uint8_t)(i * 31);
    }
    assert_int_equal(rs_byte_buf_init(&out, &rs_test_allocator, len), RS_OK);
    assert_int_equal(rs_channel_write_threadsafe(rs_testing_channel_get_channel(tc), rs_byte_cursor_from_array(data, len),
                                                 on_done, &done),
                     RS_OK);
    rs_testing_channel_set_write_limit(tc, RS_MAX_FRAGMENT_SIZE / 2);
    drain(tc, &out);
    assert_int_equal(done.calls, 0); /* not all of it taken yet */
    rs_testing_channel_set_write_limit(tc, 0);
    drain(tc, &out);
    drain(tc, &out);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.buffer, data, len);
    assert_int_equal(done.calls, 1);
    assert_int_equal(done.ok, 1);
    test_free(data);
    rs_byte_buf_cleanup(&out);
    rs_testing_channel_destroy(tc);
}

static void threadsafe_write_is_bounded_by_the_high_water_mark(void **state) {
    rs_testing_channel_t *tc = new_tc(1000);
    rs_channel_t *channel = rs_testing_channel_get_channel(tc);
    done_count_t done = {RS_MUTEX_INIT, 0, 0, 0, 0};
    uint8_t chunk[300];
    rs_byte_buf_t out;
    int accepted = 0, err;
    (void)state;
    memset(chunk, 'w', sizeof(chunk));
    assert_int_equal(rs_byte_buf_init(&out, &rs_test_allocator, 1024), RS_OK);
    /* Nothing runs the loop meanwhile: the queue alone must stop the writer. */
    while ((err = rs_channel_write_threadsafe(channel, rs_byte_cursor_from_array(chunk, sizeof(chunk)), on_done,
                                              &done)) == RS_OK) {
        ++accepted;
        assert_true(accepted < 100);
    }
    assert_int_equal(err, RS_EAGAIN);
    assert_int_equal(accepted, 4); /* 0, 300, 600, 900 were under 1000; 1200 is over */
    drain(tc, &out);
    assert_int_equal(out.len, 4 * sizeof(chunk));
    assert_int_equal(done.ok, 4);
    assert_true(rs_channel_is_writable(channel));
    assert_int_equal(rs_channel_write_threadsafe(channel, rs_byte_cursor_from_array(chunk, sizeof(chunk)), on_done,
                                                 &done),
                     RS_OK);
    drain(tc, &out);
    assert_int_equal(done.ok, 5);
    rs_byte_buf_cleanup(&out);
    rs_testing_channel_destroy(tc);
}

static void threadsafe_write_enters_at_the_rightmost_handler_that_takes_writes(void **state) {
    rs_testing_channel_t *tc = new_tc(0);
    done_count_t done = {RS_MUTEX_INIT, 0, 0, 0, 0};
    rs_channel_handler_t *app = (rs_channel_handler_t *)test_calloc(1, sizeof(*app));
    rs_byte_buf_t out;
    (void)state;
    app->vtable = &app_vtable;
    app->impl = app;
    assert_int_equal(rs_testing_channel_add_handler(tc, app), RS_OK);
    assert_int_equal(rs_byte_buf_init(&out, &rs_test_allocator, 64), RS_OK);
    assert_int_equal(rs_channel_write_threadsafe(rs_testing_channel_get_channel(tc), rs_byte_cursor_from_cstr("hi"),
                                                 on_done, &done),
                     RS_OK);
    drain(tc, &out);
    assert_int_equal(out.len, 2);
    assert_int_equal(done.ok, 1);
    rs_byte_buf_cleanup(&out);
    rs_testing_channel_destroy(tc);
}

static void threadsafe_write_after_shutdown_is_refused_and_queued_ones_cancel(void **state) {
    rs_testing_channel_t *tc = new_tc(0);
    rs_channel_t *channel = rs_testing_channel_get_channel(tc);
    done_count_t done = {RS_MUTEX_INIT, 0, 0, 0, 0};
    (void)state;
    /* Queued before the shutdown, delivered never: canceled. */
    assert_int_equal(rs_channel_write_threadsafe(channel, rs_byte_cursor_from_cstr("late"), on_done, &done), RS_OK);
    assert_int_equal(rs_channel_shutdown(channel, RS_OK), RS_OK);
    assert_int_equal(rs_channel_write_threadsafe(channel, rs_byte_cursor_from_cstr("later"), on_done, &done),
                     RS_ESHUTDOWN);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_true(rs_testing_channel_is_shut_down(tc, NULL));
    assert_int_equal(done.calls, 1);
    assert_int_equal(done.ok + done.canceled, 1); /* the task may run before the shutdown does */
    rs_testing_channel_destroy(tc);
}

static void threadsafe_write_bad_arguments(void **state) {
    rs_testing_channel_t *tc = new_tc(0);
    rs_channel_t *channel = rs_testing_channel_get_channel(tc);
    rs_byte_cursor_t null_data;
    (void)state;
    memset(&null_data, 0, sizeof(null_data));
    assert_int_equal(rs_channel_write_threadsafe(NULL, rs_byte_cursor_from_cstr("x"), NULL, NULL), RS_EINVAL);
    assert_int_equal(rs_channel_write_threadsafe(channel, rs_byte_cursor_from_cstr(""), NULL, NULL), RS_EINVAL);
    null_data.len = 4;
    assert_int_equal(rs_channel_write_threadsafe(channel, null_data, NULL, NULL), RS_EINVAL);
    /* on_done may be NULL. */
    assert_int_equal(rs_channel_write_threadsafe(channel, rs_byte_cursor_from_cstr("x"), NULL, NULL), RS_OK);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    rs_testing_channel_destroy(tc);
}

static void threadsafe_write_two_writer_threads(void **state) {
    rs_testing_channel_t *tc = new_tc(4096);
    done_count_t done = {RS_MUTEX_INIT, 0, 0, 0, 0};
    writer_t a = {rs_testing_channel_get_channel(tc), &done, 1, 3000, 0};
    writer_t b = {rs_testing_channel_get_channel(tc), &done, 2, 3000, 0};
    rs_byte_buf_t out;
    rs_thread_t ta, tb;
    uint64_t deadline = rs_clock_now_ns() + 60 * RS_NS_PER_SEC;
    int next[3] = {0, 0, 0};
    size_t i;
    (void)state;
    assert_int_equal(rs_byte_buf_init(&out, &rs_test_allocator, 1024), RS_OK);
    assert_int_equal(rs_thread_launch(&ta, writer_main, &a, NULL), RS_OK);
    assert_int_equal(rs_thread_launch(&tb, writer_main, &b, NULL), RS_OK);
    while (out.len < 6000 * 8 && rs_clock_now_ns() < deadline) {
        drain(tc, &out);
    }
    assert_int_equal(rs_thread_join(&ta), RS_OK);
    assert_int_equal(rs_thread_join(&tb), RS_OK);
    drain(tc, &out);
    assert_int_equal(a.accepted + b.accepted, 6000);
    assert_int_equal(out.len, 6000 * 8);
    for (i = 0; i < out.len; i += 8) {
        const uint8_t *r = out.buffer + i;
        int seq = ((int)r[6] << 8) | r[7];
        assert_true(r[0] == 1 || r[0] == 2);
        assert_int_equal(seq, next[r[0]]); /* each writer's records in its own order */
        next[r[0]]++;
    }
    assert_int_equal(done.ok, 6000);
    rs_byte_buf_cleanup(&out);
    rs_testing_channel_destroy(tc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(threadsafe_write_from_another_thread_arrives_in_order),
        cmocka_unit_test(threadsafe_write_large_is_split_and_completes_once),
        cmocka_unit_test(threadsafe_write_is_bounded_by_the_high_water_mark),
        cmocka_unit_test(threadsafe_write_enters_at_the_rightmost_handler_that_takes_writes),
        cmocka_unit_test(threadsafe_write_after_shutdown_is_refused_and_queued_ones_cancel),
        cmocka_unit_test(threadsafe_write_bad_arguments),
        cmocka_unit_test(threadsafe_write_two_writer_threads),
    };
    return cmocka_run_group_tests_name("threadsafe_write", tests, NULL, NULL);
}
