/* Futures: single assignment, callbacks (loop, channel, plain) that run once
 * and never inline, wait with a timeout from other threads, reference counts
 * and the value's destructor, a cross-thread race, NULL handles, and an
 * allocation-failure sweep. */
#include "test_util.h"

typedef struct cb_record {
    int calls;
    int error;
    rs_thread_id_t thread;
    rs_future_t *future;
} cb_record_t;

static void record_cb(rs_future_t *future, void *user_data) {
    cb_record_t *r = (cb_record_t *)user_data;
    r->calls++;
    r->error = rs_future_get_error(future);
    r->thread = rs_thread_current_id();
    r->future = future;
}

static int destroyed;
static void *destroyed_value;
static void count_destroy(void *value, void *user_data) {
    (void)user_data;
    destroyed++;
    destroyed_value = value;
}

static rs_future_t *new_future(rs_future_type_t type, rs_event_loop_t *loop) {
    rs_future_options_t o;
    rs_future_t *f;
    int err = -1;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.type = type;
    o.loop = loop;
    if (type == RS_FUTURE_POINTER) {
        o.value_destroy = count_destroy;
    }
    f = rs_future_new(&o, &err);
    assert_non_null(f);
    assert_int_equal(err, RS_OK);
    return f;
}

static rs_event_loop_t *new_loop(void) {
    rs_event_loop_options_t o;
    rs_event_loop_t *loop;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    loop = rs_event_loop_new(&o, NULL);
    assert_non_null(loop);
    return loop;
}

static void future_defaults_are_a_pending_plain_result(void **state) {
    rs_future_options_t o;
    rs_future_t *f;
    (void)state;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    f = rs_future_new(&o, NULL);
    assert_non_null(f);
    assert_int_equal(rs_future_get_type(f), RS_FUTURE_VOID);
    assert_false(rs_future_is_done(f));
    assert_int_equal(rs_future_get_error(f), RS_ESTATE);
    assert_int_equal(rs_future_set_result(f), RS_OK);
    assert_true(rs_future_is_done(f));
    assert_int_equal(rs_future_get_error(f), RS_OK);
    rs_future_release(f);
    /* NULL options: libc, VOID. */
    f = rs_future_new(NULL, NULL);
    assert_non_null(f);
    assert_int_equal(rs_future_get_type(f), RS_FUTURE_VOID);
    rs_future_release(f);
}

static void future_rejects_bad_options(void **state) {
    rs_future_options_t o;
    int err = 0;
    (void)state;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.type = (rs_future_type_t)4;
    assert_null(rs_future_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    o.type = RS_FUTURE_SIZE;
    o.value_destroy = count_destroy;
    assert_null(rs_future_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);
}

static void future_set_twice_is_einval_and_keeps_the_first_value(void **state) {
    int a = 1;
    int b = 2;
    rs_future_t *f = new_future(RS_FUTURE_POINTER, NULL);
    (void)state;
    destroyed = 0;
    assert_int_equal(rs_future_set_result_pointer(f, &a), RS_OK);
    assert_int_equal(rs_future_set_result_pointer(f, &b), RS_EINVAL);
    assert_int_equal(rs_future_set_error(f, RS_EIO), RS_EINVAL);
    assert_ptr_equal(rs_future_get_pointer(f), &a);
    assert_int_equal(rs_future_get_error(f), RS_OK);
    rs_future_release(f);
    assert_int_equal(destroyed, 1);
    assert_ptr_equal(destroyed_value, &a);

    f = new_future(RS_FUTURE_SIZE, NULL);
    assert_int_equal(rs_future_set_error(f, RS_ETIMEDOUT), RS_OK);
    assert_int_equal(rs_future_set_result_size(f, 7), RS_EINVAL);
    assert_int_equal(rs_future_get_error(f), RS_ETIMEDOUT);
    assert_int_equal(rs_future_get_size(f), 0);
    rs_future_release(f);
}

static void future_values_of_each_type_and_type_mismatch(void **state) {
    rs_future_t *f;
    (void)state;
    f = new_future(RS_FUTURE_SIZE, NULL);
    assert_int_equal(rs_future_set_result_bool(f, true), RS_EINVAL);
    assert_int_equal(rs_future_set_result(f), RS_EINVAL);
    assert_int_equal(rs_future_set_result_size(f, (size_t)-1), RS_OK);
    assert_true(rs_future_get_size(f) == (size_t)-1);
    assert_false(rs_future_get_bool(f));
    assert_null(rs_future_get_pointer(f));
    rs_future_release(f);

    f = new_future(RS_FUTURE_BOOL, NULL);
    assert_false(rs_future_get_bool(f)); /* pending */
    assert_int_equal(rs_future_set_result_pointer(f, f), RS_EINVAL);
    assert_int_equal(rs_future_set_error(f, RS_OK), RS_EINVAL);
    assert_int_equal(rs_future_set_error(f, 5), RS_EINVAL);
    assert_int_equal(rs_future_set_result_bool(f, true), RS_OK);
    assert_true(rs_future_get_bool(f));
    assert_int_equal(rs_future_get_size(f), 0);
    rs_future_release(f);
}

static void future_error_keeps_the_destructor_away(void **state) {
    rs_future_t *f = new_future(RS_FUTURE_POINTER, NULL);
    (void)state;
    destroyed = 0;
    assert_int_equal(rs_future_set_error(f, RS_ECONNRESET), RS_OK);
    assert_null(rs_future_get_pointer(f));
    rs_future_release(f);
    assert_int_equal(destroyed, 0);
}

static void future_loop_callback_registered_before_set_runs_later_on_the_loop(void **state) {
    rs_event_loop_t *loop = new_loop();
    rs_future_t *f = new_future(RS_FUTURE_BOOL, NULL);
    cb_record_t r;
    (void)state;
    memset(&r, 0, sizeof(r));
    assert_int_equal(rs_future_register_event_loop_callback(f, loop, record_cb, &r), RS_OK);
    assert_int_equal(r.calls, 0);
    assert_int_equal(rs_future_set_result_bool(f, true), RS_OK);
    assert_int_equal(r.calls, 0); /* not inline in set either: it is a loop task */
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(r.calls, 1);
    assert_ptr_equal(r.future, f);
    assert_true(r.thread == rs_thread_current_id());
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(r.calls, 1);
    rs_future_release(f);
    rs_event_loop_destroy(loop);
}

static void future_loop_callback_registered_after_set_runs_async_exactly_once(void **state) {
    rs_event_loop_t *loop = new_loop();
    rs_future_t *f = new_future(RS_FUTURE_VOID, NULL);
    cb_record_t r;
    (void)state;
    memset(&r, 0, sizeof(r));
    assert_int_equal(rs_future_set_error(f, RS_ECONNREFUSED), RS_OK);
    assert_int_equal(rs_future_register_event_loop_callback(f, loop, record_cb, &r), RS_OK);
    assert_int_equal(r.calls, 0);
    rs_future_release(f); /* the pending callback keeps it alive */
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.error, RS_ECONNREFUSED);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(r.calls, 1);
    rs_event_loop_destroy(loop);
}

static void future_second_callback_is_ebusy(void **state) {
    rs_event_loop_t *loop = new_loop();
    rs_future_t *f = new_future(RS_FUTURE_VOID, loop);
    cb_record_t r;
    (void)state;
    memset(&r, 0, sizeof(r));
    assert_int_equal(rs_future_register_callback(f, record_cb, &r), RS_OK);
    assert_int_equal(rs_future_register_callback(f, record_cb, &r), RS_EBUSY);
    assert_int_equal(rs_future_register_event_loop_callback(f, loop, record_cb, &r), RS_EBUSY);
    assert_int_equal(rs_future_set_result(f), RS_OK);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(r.calls, 1);
    assert_int_equal(rs_future_register_callback(f, record_cb, &r), RS_EBUSY);
    rs_future_release(f);
    rs_event_loop_destroy(loop);
}

static void future_plain_callback_with_a_loop_runs_on_that_loop(void **state) {
    rs_event_loop_t *loop = new_loop();
    rs_future_t *f = new_future(RS_FUTURE_SIZE, loop);
    cb_record_t r;
    (void)state;
    memset(&r, 0, sizeof(r));
    assert_int_equal(rs_future_set_result_size(f, 42), RS_OK);
    assert_int_equal(rs_future_register_callback(f, record_cb, &r), RS_OK);
    assert_int_equal(r.calls, 0);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(r.calls, 1);
    assert_int_equal(rs_future_get_size(f), 42);
    rs_future_release(f);
    rs_event_loop_destroy(loop);
}

static void future_plain_callback_without_a_loop_runs_in_the_completing_call(void **state) {
    rs_future_t *f = new_future(RS_FUTURE_VOID, NULL);
    cb_record_t r;
    (void)state;
    memset(&r, 0, sizeof(r));
    assert_int_equal(rs_future_register_callback(f, record_cb, &r), RS_OK);
    assert_int_equal(r.calls, 0);
    assert_int_equal(rs_future_set_result(f), RS_OK);
    assert_int_equal(r.calls, 1);
    rs_future_release(f);
    /* Registered after completion with no loop to run it on: refused, never inline. */
    f = new_future(RS_FUTURE_VOID, NULL);
    assert_int_equal(rs_future_set_result(f), RS_OK);
    assert_int_equal(rs_future_register_callback(f, record_cb, &r), RS_ESTATE);
    assert_int_equal(r.calls, 1);
    rs_future_release(f);
}

static void future_callback_still_runs_when_its_loop_is_destroyed(void **state) {
    rs_event_loop_t *loop = new_loop();
    rs_future_t *f = new_future(RS_FUTURE_VOID, NULL);
    cb_record_t r;
    (void)state;
    memset(&r, 0, sizeof(r));
    assert_int_equal(rs_future_register_event_loop_callback(f, loop, record_cb, &r), RS_OK);
    assert_int_equal(rs_future_set_result(f), RS_OK);
    rs_future_release(f);
    rs_event_loop_destroy(loop);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.error, RS_OK);
}

static void future_channel_callback_runs_as_a_channel_task(void **state) {
    rs_testing_channel_options_t o;
    rs_testing_channel_t *tc;
    rs_future_t *f = new_future(RS_FUTURE_VOID, NULL);
    cb_record_t r;
    (void)state;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    tc = rs_testing_channel_new(&o, NULL);
    assert_non_null(tc);
    memset(&r, 0, sizeof(r));
    assert_int_equal(rs_future_register_channel_callback(f, rs_testing_channel_get_channel(tc), record_cb, &r), RS_OK);
    assert_int_equal(rs_future_set_result(f), RS_OK);
    assert_int_equal(r.calls, 0);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_int_equal(r.calls, 1);
    rs_future_release(f);
    /* Registered after completion, and left pending across the channel's end. */
    f = new_future(RS_FUTURE_VOID, NULL);
    assert_int_equal(rs_future_set_result(f), RS_OK);
    assert_int_equal(rs_future_register_channel_callback(f, rs_testing_channel_get_channel(tc), record_cb, &r), RS_OK);
    assert_int_equal(r.calls, 1);
    rs_future_release(f);
    rs_testing_channel_destroy(tc);
    assert_int_equal(r.calls, 2);
}

static void future_registered_channel_callback_never_completed_releases_its_hold(void **state) {
    rs_testing_channel_options_t o;
    rs_testing_channel_t *tc;
    rs_future_t *f = new_future(RS_FUTURE_VOID, NULL);
    cb_record_t r;
    (void)state;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    tc = rs_testing_channel_new(&o, NULL);
    assert_non_null(tc);
    memset(&r, 0, sizeof(r));
    assert_int_equal(rs_future_register_channel_callback(f, rs_testing_channel_get_channel(tc), record_cb, &r), RS_OK);
    rs_future_release(f); /* never completed: the hold goes with the future */
    rs_testing_channel_destroy(tc);
    assert_int_equal(r.calls, 0);
}

typedef struct setter {
    rs_future_t *future;
    uint64_t delay_ns;
    int result;
} setter_t;

static void set_later(void *arg) {
    setter_t *s = (setter_t *)arg;
    rs_thread_sleep_ns(s->delay_ns);
    s->result = rs_future_set_result_size(s->future, 99);
}

static void future_wait_times_out_then_sees_a_set_from_another_thread(void **state) {
    rs_future_t *f = new_future(RS_FUTURE_SIZE, NULL);
    rs_thread_t t;
    setter_t s;
    uint64_t start = rs_clock_now_ns();
    (void)state;
    assert_int_equal(rs_future_wait(f, 20 * RS_NS_PER_MS), RS_ETIMEDOUT);
    assert_true(rs_clock_now_ns() - start >= 20 * RS_NS_PER_MS);
    s.future = f;
    s.delay_ns = 20 * RS_NS_PER_MS;
    s.result = -1;
    assert_int_equal(rs_thread_launch(&t, set_later, &s, NULL), RS_OK);
    assert_int_equal(rs_future_wait(f, 10 * RS_NS_PER_SEC), RS_OK);
    assert_int_equal(rs_future_get_size(f), 99);
    assert_int_equal(rs_thread_join(&t), RS_OK);
    assert_int_equal(s.result, RS_OK);
    assert_int_equal(rs_future_wait(f, 0), RS_OK);
    rs_future_release(f);
    /* No limit. */
    f = new_future(RS_FUTURE_SIZE, NULL);
    s.future = f;
    assert_int_equal(rs_thread_launch(&t, set_later, &s, NULL), RS_OK);
    assert_int_equal(rs_future_wait(f, UINT64_MAX), RS_OK);
    assert_int_equal(rs_thread_join(&t), RS_OK);
    rs_future_release(f);
}

static void future_wait_on_its_own_loop_thread_is_edeadlk(void **state) {
    rs_event_loop_t *loop = new_loop();
    rs_future_t *f = new_future(RS_FUTURE_VOID, loop);
    (void)state;
    assert_int_equal(rs_future_wait(f, 0), RS_EDEADLK);
    rs_future_release(f);
    rs_event_loop_destroy(loop);
}

static void future_destructor_runs_once_when_the_last_reference_goes(void **state) {
    rs_event_loop_t *loop = new_loop();
    rs_future_t *f = new_future(RS_FUTURE_POINTER, NULL);
    cb_record_t r;
    int v = 0;
    (void)state;
    destroyed = 0;
    memset(&r, 0, sizeof(r));
    assert_ptr_equal(rs_future_acquire(f), f);
    assert_int_equal(rs_future_register_event_loop_callback(f, loop, record_cb, &r), RS_OK);
    assert_int_equal(rs_future_set_result_pointer(f, &v), RS_OK);
    rs_future_release(f);
    rs_future_release(f); /* both callers' references gone; the callback holds one */
    assert_int_equal(destroyed, 0);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(r.calls, 1);
    assert_int_equal(destroyed, 1);
    assert_ptr_equal(destroyed_value, &v);
    rs_event_loop_destroy(loop);
    assert_int_equal(destroyed, 1);
}

/* ---- cross-thread: many setters race, one wins; the callback runs once ---- */

#define RACERS 4

typedef struct racer {
    rs_future_t *future;
    size_t value;
    int result;
} racer_t;

static void race_set(void *arg) {
    racer_t *r = (racer_t *)arg;
    r->result = rs_future_set_result_size(r->future, r->value);
}

typedef struct race_cb {
    rs_mutex_t lock;
    rs_condvar_t cond;
    int calls;
    bool on_loop;
    rs_event_loop_t *loop;
    size_t value;
} race_cb_t;

static void race_done(rs_future_t *future, void *user_data) {
    race_cb_t *c = (race_cb_t *)user_data;
    rs_mutex_lock(&c->lock);
    c->calls++;
    c->on_loop = rs_event_loop_is_on_loop_thread(c->loop);
    c->value = rs_future_get_size(future);
    rs_condvar_broadcast(&c->cond);
    rs_mutex_unlock(&c->lock);
}

static void future_cross_thread_set_race_has_one_winner(void **state) {
    rs_event_loop_t *loop = new_loop();
    race_cb_t c;
    int round;
    (void)state;
    memset(&c, 0, sizeof(c));
    assert_int_equal(rs_mutex_init(&c.lock), RS_OK);
    assert_int_equal(rs_condvar_init(&c.cond), RS_OK);
    c.loop = loop;
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    for (round = 0; round < 50; ++round) {
        rs_future_t *f = new_future(RS_FUTURE_SIZE, loop);
        rs_thread_t threads[RACERS];
        racer_t racers[RACERS];
        int i;
        int wins = 0;
        rs_mutex_lock(&c.lock);
        c.calls = 0;
        rs_mutex_unlock(&c.lock);
        assert_int_equal(rs_future_register_callback(f, race_done, &c), RS_OK);
        for (i = 0; i < RACERS; ++i) {
            racers[i].future = f;
            racers[i].value = (size_t)i + 1;
            assert_int_equal(rs_thread_launch(&threads[i], race_set, &racers[i], NULL), RS_OK);
        }
        for (i = 0; i < RACERS; ++i) {
            assert_int_equal(rs_thread_join(&threads[i]), RS_OK);
            if (racers[i].result == RS_OK) {
                wins++;
                assert_int_equal(rs_future_get_size(f), racers[i].value);
            } else {
                assert_int_equal(racers[i].result, RS_EINVAL);
            }
        }
        assert_int_equal(wins, 1);
        rs_mutex_lock(&c.lock);
        while (c.calls == 0) {
            rs_condvar_wait(&c.cond, &c.lock);
        }
        assert_int_equal(c.calls, 1);
        assert_true(c.on_loop);
        assert_int_equal(c.value, rs_future_get_size(f));
        rs_mutex_unlock(&c.lock);
        rs_future_release(f);
    }
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    rs_event_loop_destroy(loop);
    assert_int_equal(c.calls, 1);
    rs_condvar_cleanup(&c.cond);
    rs_mutex_cleanup(&c.lock);
}

static void future_null_handles(void **state) {
    rs_event_loop_t *loop = new_loop();
    rs_future_t *f = new_future(RS_FUTURE_VOID, NULL);
    cb_record_t r;
    (void)state;
    assert_null(rs_future_acquire(NULL));
    rs_future_release(NULL);
    assert_int_equal(rs_future_set_result(NULL), RS_EINVAL);
    assert_int_equal(rs_future_set_result_pointer(NULL, &r), RS_EINVAL);
    assert_int_equal(rs_future_set_result_size(NULL, 1), RS_EINVAL);
    assert_int_equal(rs_future_set_result_bool(NULL, true), RS_EINVAL);
    assert_int_equal(rs_future_set_error(NULL, RS_EIO), RS_EINVAL);
    assert_int_equal(rs_future_register_callback(NULL, record_cb, &r), RS_EINVAL);
    assert_int_equal(rs_future_register_callback(f, NULL, &r), RS_EINVAL);
    assert_int_equal(rs_future_register_event_loop_callback(NULL, loop, record_cb, &r), RS_EINVAL);
    assert_int_equal(rs_future_register_event_loop_callback(f, NULL, record_cb, &r), RS_EINVAL);
    assert_int_equal(rs_future_register_event_loop_callback(f, loop, NULL, &r), RS_EINVAL);
    assert_int_equal(rs_future_register_channel_callback(NULL, NULL, record_cb, &r), RS_EINVAL);
    assert_int_equal(rs_future_register_channel_callback(f, NULL, record_cb, &r), RS_EINVAL);
    assert_int_equal(rs_future_wait(NULL, 0), RS_EINVAL);
    assert_false(rs_future_is_done(NULL));
    assert_int_equal(rs_future_get_error(NULL), RS_EINVAL);
    assert_null(rs_future_get_pointer(NULL));
    assert_int_equal(rs_future_get_size(NULL), 0);
    assert_false(rs_future_get_bool(NULL));
    assert_int_equal(rs_future_get_type(NULL), RS_FUTURE_VOID);
    rs_future_release(f);
    rs_event_loop_destroy(loop);
}

static void future_alloc_sweep(void **state) {
    size_t n;
    (void)state;
    for (n = 1; n < 100; ++n) {
        rs_test_failing_alloc_t fa;
        rs_future_options_t o;
        rs_future_t *f;
        int err = 0;
        rs_test_failing_alloc_init(&fa, n);
        memset(&o, 0, sizeof(o));
        o.allocator = &fa.allocator;
        o.type = RS_FUTURE_BOOL;
        f = rs_future_new(&o, &err);
        if (f) {
            assert_int_equal(err, RS_OK);
            assert_int_equal(rs_future_set_result_bool(f, true), RS_OK);
            rs_future_release(f);
            print_message("      sweep converged: rs_future_new makes %zu allocation(s)\n", n - 1);
            return;
        }
        assert_int_equal(err, RS_ENOMEM);
        assert_int_equal(rs_test_failing_alloc_failures(&fa), 1);
    }
    fail_msg("the sweep did not converge");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(future_defaults_are_a_pending_plain_result),
        cmocka_unit_test(future_rejects_bad_options),
        cmocka_unit_test(future_set_twice_is_einval_and_keeps_the_first_value),
        cmocka_unit_test(future_values_of_each_type_and_type_mismatch),
        cmocka_unit_test(future_error_keeps_the_destructor_away),
        cmocka_unit_test(future_loop_callback_registered_before_set_runs_later_on_the_loop),
        cmocka_unit_test(future_loop_callback_registered_after_set_runs_async_exactly_once),
        cmocka_unit_test(future_second_callback_is_ebusy),
        cmocka_unit_test(future_plain_callback_with_a_loop_runs_on_that_loop),
        cmocka_unit_test(future_plain_callback_without_a_loop_runs_in_the_completing_call),
        cmocka_unit_test(future_callback_still_runs_when_its_loop_is_destroyed),
        cmocka_unit_test(future_channel_callback_runs_as_a_channel_task),
        cmocka_unit_test(future_registered_channel_callback_never_completed_releases_its_hold),
        cmocka_unit_test(future_wait_times_out_then_sees_a_set_from_another_thread),
        cmocka_unit_test(future_wait_on_its_own_loop_thread_is_edeadlk),
        cmocka_unit_test(future_destructor_runs_once_when_the_last_reference_goes),
        cmocka_unit_test(future_cross_thread_set_race_has_one_winner),
        cmocka_unit_test(future_null_handles),
        cmocka_unit_test(future_alloc_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
