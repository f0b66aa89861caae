/*
 * The monotonic clock, and a loop's clock (rs_clock_now_ns or its override).
 */
#include "test_util.h"

static void clock_now_is_monotonic(void **state) {
    uint64_t prev = rs_clock_now_ns();
    int i;
    (void)state;
    assert_true(prev > 0);
    for (i = 0; i < 1000; ++i) {
        uint64_t now = rs_clock_now_ns();
        assert_true(now >= prev);
        prev = now;
    }
}

/* A sleep lasts at least as long as asked: a lower bound, not a speed check. */
static void clock_advances_across_a_sleep(void **state) {
    uint64_t before;
    uint64_t after;
    (void)state;
    before = rs_clock_now_ns();
    rs_thread_sleep_ns(2 * RS_NS_PER_MS);
    after = rs_clock_now_ns();
    assert_true(after - before >= 2 * RS_NS_PER_MS);
}

/* Monotonic across threads too: a reading taken after another thread's
 * reading (ordered by a join) is never smaller. */
typedef struct reading {
    uint64_t ns;
} reading_t;

static void take_reading(void *ud) {
    ((reading_t *)ud)->ns = rs_clock_now_ns();
}

static void clock_is_monotonic_across_threads(void **state) {
    RS_TEST_NEEDS_THREADS();
    int i;
    (void)state;
    for (i = 0; i < 20; ++i) {
        rs_thread_t t;
        reading_t r;
        uint64_t before = rs_clock_now_ns();
        assert_int_equal(rs_thread_launch(&t, take_reading, &r, NULL), RS_OK);
        assert_int_equal(rs_thread_join(&t), RS_OK);
        assert_true(r.ns >= before);
        assert_true(rs_clock_now_ns() >= r.ns);
    }
}

typedef struct fake_clock {
    uint64_t now; /* atomic */
    int calls;    /* atomic */
} fake_clock_t;

static uint64_t fake_clock_fn(void *user_data) {
    fake_clock_t *c = (fake_clock_t *)user_data;
    __atomic_add_fetch(&c->calls, 1, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&c->now, __ATOMIC_SEQ_CST);
}

static rs_event_loop_t *loop_with_clock(rs_event_loop_backend_t b, fake_clock_t *c) {
    rs_event_loop_options_t opts;
    rs_event_loop_t *loop;
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator;
    opts.backend = b;
    if (c) {
        opts.clock_fn = fake_clock_fn;
        opts.clock_user_data = c;
    }
    loop = rs_event_loop_new(&opts, NULL);
    assert_non_null(loop);
    return loop;
}

typedef struct now_reader {
    rs_event_loop_t *loop;
    uint64_t value;
} now_reader_t;

static void read_loop_now(void *ud) {
    now_reader_t *r = (now_reader_t *)ud;
    r->value = rs_event_loop_now_ns(r->loop);
}

static void loop_now_uses_the_override(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    fake_clock_t c;
    rs_event_loop_t *loop;
    now_reader_t r;
    rs_thread_t t;
    c.now = 7 * RS_NS_PER_SEC;
    c.calls = 0;
    loop = loop_with_clock(b, &c);
    assert_int_equal(rs_event_loop_now_ns(loop), 7 * RS_NS_PER_SEC);
    assert_true(__atomic_load_n(&c.calls, __ATOMIC_SEQ_CST) > 0); /* user_data reached the hook */
    __atomic_store_n(&c.now, 9 * RS_NS_PER_SEC + 5, __ATOMIC_SEQ_CST);
    assert_int_equal(rs_event_loop_now_ns(loop), 9 * RS_NS_PER_SEC + 5);
    /* any thread */
    r.loop = loop;
    r.value = 0;
    assert_int_equal(rs_thread_launch(&t, read_loop_now, &r, NULL), RS_OK);
    assert_int_equal(rs_thread_join(&t), RS_OK);
    assert_int_equal(r.value, 9 * RS_NS_PER_SEC + 5);
    /* the override also runs the loop: a tick does not disturb it */
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(rs_event_loop_now_ns(loop), 9 * RS_NS_PER_SEC + 5);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(clock_, loop_now_uses_the_override)

static void loop_now_defaults_to_the_monotonic_clock(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_with_clock(b, NULL);
    uint64_t before = rs_clock_now_ns();
    uint64_t mid = rs_event_loop_now_ns(loop);
    uint64_t after = rs_clock_now_ns();
    assert_true(before <= mid);
    assert_true(mid <= after);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(clock_, loop_now_defaults_to_the_monotonic_clock)

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clock_now_is_monotonic),
        cmocka_unit_test(clock_advances_across_a_sleep),
        cmocka_unit_test(clock_is_monotonic_across_threads),
        RS_TEST_PER_BACKEND_TESTS(clock_, loop_now_uses_the_override),
        RS_TEST_PER_BACKEND_TESTS(clock_, loop_now_defaults_to_the_monotonic_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
