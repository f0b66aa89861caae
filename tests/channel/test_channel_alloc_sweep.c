/*
 * Allocation failure sweeps for the channel layer.
 *
 * For N = 1, 2, ...: the Nth allocation fails, the scenario runs, and it must
 * end in a clean RS_ENOMEM (returned by a call, or reported through
 * on_setup_completed, a write completion or the channel's shutdown error),
 * with nothing leaked (checked after each N). The sweep stops at the first N
 * where no failure was injected: the scenario then ran fully.
 *
 * Scenarios: a channel (from the failing allocator) with setup, three slots
 * with handlers, a message each way, shutdown and destroy; and the testing
 * channel with an echo handler, everything from the failing allocator.
 *
 * In the first scenario the loop has the plain leak-checking allocator: loop
 * creation has its own sweep (tests/loop), and a loop recovers from some
 * failures inside a tick silently, by design (the poll backend retries
 * growing its ready list next tick), which would hide whether the channel
 * reported its own. Everything runs on the test thread (loops are driven
 * with run_once), and every wait is bounded.
 */
#include "test_util.h"

#define SWEEP_MAX_N 2000
#define MAX_TICKS 1000
#define HANDLERS 3
#define ECHO_BYTES (2 * RS_MAX_FRAGMENT_SIZE + 100)

/* ------------------------------------------------------------- allocator */

/* The failing allocator, plus a count of live blocks so a leak is pinned to
 * the N that caused it. */
typedef struct sweep_alloc {
    rs_allocator_t allocator; /* hand this to reseau */
    rs_test_failing_alloc_t inner;
    long live;
} sweep_alloc_t;

static void *sweep_alloc_fn(size_t size, void *ud) {
    sweep_alloc_t *s = (sweep_alloc_t *)ud;
    void *p = s->inner.allocator.alloc_fn(size, s->inner.allocator.user_data);
    if (p) {
        __atomic_add_fetch(&s->live, 1, __ATOMIC_SEQ_CST);
    }
    return p;
}

static void *sweep_realloc_fn(void *ptr, size_t old_size, size_t new_size, void *ud) {
    sweep_alloc_t *s = (sweep_alloc_t *)ud;
    void *p = s->inner.allocator.realloc_fn(ptr, old_size, new_size, s->inner.allocator.user_data);
    if (p && !ptr) {
        __atomic_add_fetch(&s->live, 1, __ATOMIC_SEQ_CST);
    }
    return p;
}

static void sweep_free_fn(void *ptr, void *ud) {
    sweep_alloc_t *s = (sweep_alloc_t *)ud;
    __atomic_sub_fetch(&s->live, 1, __ATOMIC_SEQ_CST);
    s->inner.allocator.free_fn(ptr, s->inner.allocator.user_data);
}

static void sweep_alloc_init(sweep_alloc_t *s, size_t fail_at) {
    memset(s, 0, sizeof(*s));
    rs_test_failing_alloc_init(&s->inner, fail_at);
    s->allocator.alloc_fn = sweep_alloc_fn;
    s->allocator.realloc_fn = sweep_realloc_fn;
    s->allocator.free_fn = sweep_free_fn;
    s->allocator.user_data = s;
}

/* A scenario returns RS_OK or the first error it met. */
typedef int sweep_scenario_fn(const rs_allocator_t *allocator, void *ctx);

static void sweep(sweep_scenario_fn *scenario, void *ctx) {
    size_t n;
    for (n = 1; n <= SWEEP_MAX_N; ++n) {
        sweep_alloc_t s;
        int rc;
        sweep_alloc_init(&s, n);
        rc = scenario(&s.allocator, ctx);
        if (s.live != 0) {
            fail_msg("fail_at=%zu: %ld block(s) leaked (scenario returned %s)", n, s.live, rs_err_name(rc));
        }
        if (rs_test_failing_alloc_failures(&s.inner) == 0) {
            if (rc != RS_OK) {
                fail_msg("fail_at=%zu: no failure injected, yet the scenario returned %s", n, rs_err_name(rc));
            }
            print_message("      sweep converged: the scenario makes %zu allocation(s)\n", n - 1);
            return;
        }
        if (rc != RS_ENOMEM) {
            fail_msg("fail_at=%zu: a failure was injected, but the scenario returned %s", n, rs_err_name(rc));
        }
    }
    fail_msg("the sweep did not converge within %d allocations", SWEEP_MAX_N);
}

static void note_error(int *first, int err) {
    if (*first == RS_OK && err != RS_OK) {
        *first = err;
    }
}

/* --------------------------------------------------------------- handler */

/* Forwards reads right and writes left; the ends consume them (a write that
 * reaches the left end completes with RS_OK there). */
typedef struct relay {
    rs_channel_handler_t base;
    rs_allocator_t allocator;
} relay_t;

static int relay_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    (void)h;
    if (rs_channel_slot_get_right(slot)) {
        return rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_READ);
    }
    rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), message);
    return RS_OK;
}

static int relay_write(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    (void)h;
    if (rs_channel_slot_get_left(slot)) {
        return rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE);
    }
    if (message->on_completion) {
        message->on_completion(rs_channel_slot_get_channel(slot), message, RS_OK, message->user_data);
    }
    rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), message);
    return RS_OK;
}

static int relay_window(rs_channel_handler_t *h, rs_channel_slot_t *slot, size_t size) {
    (void)h;
    (void)slot;
    (void)size;
    return RS_OK;
}

static int relay_shutdown(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_channel_direction_t dir, int error,
                          bool abort_immediately) {
    (void)h;
    return rs_channel_slot_on_handler_shutdown_complete(slot, dir, error, abort_immediately);
}

static size_t relay_initial_window(rs_channel_handler_t *h) {
    (void)h;
    return SIZE_MAX;
}

static size_t relay_overhead(rs_channel_handler_t *h) {
    (void)h;
    return 0;
}

static void relay_destroy(rs_channel_handler_t *h) {
    relay_t *r = (relay_t *)h->impl;
    rs_allocator_t allocator = r->allocator;
    rs_mem_free(&allocator, r);
}

static const rs_channel_handler_vtable_t relay_vtable = {
    relay_read, relay_write, relay_window, relay_shutdown, relay_initial_window, relay_overhead, relay_destroy,
    NULL,       NULL,        NULL,
};

static relay_t *relay_new(const rs_allocator_t *allocator) {
    relay_t *r = (relay_t *)rs_mem_calloc(allocator, 1, sizeof(*r));
    if (r) {
        r->base.vtable = &relay_vtable;
        r->base.impl = r;
        r->allocator = *allocator;
    }
    return r;
}

/* ---------------------------------------------- channel on a bare loop */

typedef struct bare_ctx {
    rs_event_loop_backend_t backend;
    int setup_calls;
    int setup_error;
    int shutdown_calls;
    int shutdown_error;
} bare_ctx_t;

static void bare_on_setup(rs_channel_t *channel, int error, void *user_data) {
    bare_ctx_t *c = (bare_ctx_t *)user_data;
    (void)channel;
    ++c->setup_calls;
    c->setup_error = error;
}

static void bare_on_shutdown(rs_channel_t *channel, int error, void *user_data) {
    bare_ctx_t *c = (bare_ctx_t *)user_data;
    (void)channel;
    ++c->shutdown_calls;
    c->shutdown_error = error;
}

static void run_until(rs_event_loop_t *loop, const int *counter) {
    int i;
    for (i = 0; i < MAX_TICKS && *counter == 0; ++i) {
        assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    }
    assert_true(*counter > 0);
}

static int add_relays(rs_channel_t *channel, const rs_allocator_t *allocator) {
    int i;
    for (i = 0; i < HANDLERS; ++i) {
        int err = RS_ENOMEM;
        relay_t *r = relay_new(allocator);
        rs_channel_slot_t *slot = r ? rs_channel_slot_new(channel, &err) : NULL;
        if (!slot) {
            rs_mem_free(allocator, r);
            return err;
        }
        assert_int_equal(rs_channel_slot_insert_end(channel, slot), RS_OK);
        assert_int_equal(rs_channel_slot_set_handler(slot, &r->base), RS_OK);
    }
    return RS_OK;
}

static void on_write_done(rs_channel_t *channel, rs_io_message_t *message, int error, void *user_data) {
    (void)channel;
    (void)message;
    note_error((int *)user_data, error);
}

/* One read left to right, one write right to left. */
static int send_both_ways(rs_channel_t *channel) {
    rs_channel_slot_t *first = rs_channel_get_first_slot(channel);
    rs_channel_slot_t *last = first;
    rs_io_message_t *m;
    int write_result = RS_OK;
    while (rs_channel_slot_get_right(last)) {
        last = rs_channel_slot_get_right(last);
    }
    m = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, 64);
    if (!m) {
        return RS_ENOMEM;
    }
    m->message_data.len = 64;
    assert_int_equal(rs_channel_slot_send_message(first, m, RS_CHANNEL_DIR_READ), RS_OK);
    m = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, 64);
    if (!m) {
        return RS_ENOMEM;
    }
    m->message_data.len = 64;
    m->on_completion = on_write_done;
    m->user_data = &write_result;
    assert_int_equal(rs_channel_slot_send_message(last, m, RS_CHANNEL_DIR_WRITE), RS_OK);
    return write_result;
}

static void bare_teardown(rs_event_loop_t *loop, rs_channel_t *channel, bare_ctx_t *c) {
    if (c->setup_calls && c->setup_error == RS_OK) {
        assert_int_equal(rs_channel_shutdown(channel, RS_OK), RS_OK);
        run_until(loop, &c->shutdown_calls);
        assert_int_equal(c->shutdown_calls, 1);
    }
    rs_channel_destroy(channel);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    rs_event_loop_destroy(loop);
}

static int channel_scenario(const rs_allocator_t *allocator, void *ctx_) {
    bare_ctx_t *c = (bare_ctx_t *)ctx_;
    rs_event_loop_options_t lo;
    rs_channel_options_t co;
    rs_event_loop_t *loop;
    rs_channel_t *channel;
    int err = RS_OK;
    memset(&lo, 0, sizeof(lo));
    lo.allocator = &rs_test_allocator;
    lo.backend = c->backend;
    c->setup_calls = c->shutdown_calls = 0;
    c->setup_error = c->shutdown_error = RS_OK;
    loop = rs_event_loop_new(&lo, &err);
    if (!loop) {
        return err;
    }
    memset(&co, 0, sizeof(co));
    co.loop = loop;
    co.allocator = allocator;
    co.on_setup_completed = bare_on_setup;
    co.on_shutdown_completed = bare_on_shutdown;
    co.user_data = c;
    channel = rs_channel_new(&co, &err);
    if (!channel) {
        rs_event_loop_destroy(loop);
        return err;
    }
    run_until(loop, &c->setup_calls);
    err = c->setup_error;
    if (!err) {
        err = add_relays(channel, allocator);
    }
    if (!err) {
        err = send_both_ways(channel);
    }
    bare_teardown(loop, channel, c);
    return err;
}

static void sweep_channel(rs_event_loop_backend_t backend) {
    bare_ctx_t c;
    memset(&c, 0, sizeof(c));
    c.backend = backend;
    sweep(channel_scenario, &c);
}

RS_TEST_PER_BACKEND_CALL(channel_alloc_sweep_, setup_slots_shutdown, sweep_channel(b))

/* ------------------------------------------------------ testing channel */

/* Echoes reads back as writes. */
static int echo_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    (void)h;
    return rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE);
}

static const rs_channel_handler_vtable_t echo_vtable = {
    echo_read, relay_write, relay_window, relay_shutdown, relay_initial_window, relay_overhead, relay_destroy,
    NULL,      NULL,        NULL,
};

static int echo_through(rs_testing_channel_t *tc, const rs_allocator_t *allocator) {
    static uint8_t data[ECHO_BYTES];
    rs_byte_buf_t out;
    int err = rs_testing_channel_push_read(tc, rs_byte_cursor_from_array(data, sizeof(data)));
    int shutdown_error = RS_OK;
    if (err) {
        return err;
    }
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    if (rs_testing_channel_is_shut_down(tc, &shutdown_error)) {
        return shutdown_error; /* a message or the written buffer could not be had */
    }
    err = rs_byte_buf_init(&out, allocator, 0);
    if (!err) {
        err = rs_testing_channel_drain_written(tc, &out);
    }
    if (!err) {
        assert_int_equal(out.len, sizeof(data));
    }
    rs_byte_buf_cleanup(&out);
    return err;
}

static int testing_channel_scenario(const rs_allocator_t *allocator, void *ctx) {
    rs_testing_channel_options_t o;
    rs_testing_channel_t *tc;
    relay_t *echo;
    int err = RS_OK;
    (void)ctx;
    memset(&o, 0, sizeof(o));
    o.allocator = allocator;
    o.enable_read_back_pressure = true;
    tc = rs_testing_channel_new(&o, &err);
    if (!tc) {
        return err;
    }
    echo = relay_new(allocator);
    if (!echo) {
        rs_testing_channel_destroy(tc);
        return RS_ENOMEM;
    }
    echo->base.vtable = &echo_vtable;
    err = rs_testing_channel_add_handler(tc, &echo->base);
    if (err) {
        rs_mem_free(allocator, echo); /* not taken: still ours */
    } else {
        err = echo_through(tc, allocator);
    }
    rs_testing_channel_destroy(tc);
    return err;
}

static void channel_alloc_sweep_testing_channel(void **state) {
    (void)state;
    sweep(testing_channel_scenario, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(channel_alloc_sweep_, setup_slots_shutdown),
        cmocka_unit_test(channel_alloc_sweep_testing_channel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
