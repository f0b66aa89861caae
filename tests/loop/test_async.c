/* Coalescing cross-thread wakeups (rs_event_loop_async_t), on every backend. */
#include "test_util.h"

#define ASYNC_PRODUCERS 4
#define ASYNC_SENDS_PER_PRODUCER 50000
#define WAIT_NS (10 * RS_NS_PER_SEC)

typedef struct async_ctx {
    rs_event_loop_async_t async;
    rs_mutex_t lock;
    rs_condvar_t cond;
    uint64_t calls;           /* fn calls, under lock */
    uint64_t sends_seen;      /* value of `sends` when fn last ran, under lock */
    uint64_t sends;           /* atomic: sends made so far */
    bool on_loop_thread;      /* fn always ran on the loop thread, under lock */
    int resend_in_fn;         /* fn sends again this many times */
} async_ctx_t;

static void ctx_init(async_ctx_t *c) {
    memset(c, 0, sizeof(*c));
    assert_int_equal(rs_mutex_init(&c->lock), RS_OK);
    assert_int_equal(rs_condvar_init(&c->cond), RS_OK);
    c->on_loop_thread = true;
}

static void ctx_cleanup(async_ctx_t *c) {
    rs_condvar_cleanup(&c->cond);
    rs_mutex_cleanup(&c->lock);
}

static void on_async(rs_event_loop_async_t *async, void *user_data) {
    async_ctx_t *c = (async_ctx_t *)user_data;
    rs_mutex_lock(&c->lock);
    c->calls++;
    c->sends_seen = __atomic_load_n(&c->sends, __ATOMIC_ACQUIRE);
    c->on_loop_thread = c->on_loop_thread && rs_event_loop_is_on_loop_thread(async->loop);
    if (c->resend_in_fn > 0) {
        c->resend_in_fn--;
        rs_event_loop_async_send(async);
    }
    rs_condvar_broadcast(&c->cond);
    rs_mutex_unlock(&c->lock);
}

/* Wait until fn has run after `sends` sends were made; false on timeout. */
static bool wait_seen(async_ctx_t *c, uint64_t sends) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    bool ok = true;
    rs_mutex_lock(&c->lock);
    while (c->sends_seen < sends && ok) {
        ok = rs_condvar_wait_until(&c->cond, &c->lock, deadline) == RS_OK || c->sends_seen >= sends;
    }
    rs_mutex_unlock(&c->lock);
    return ok;
}

static rs_event_loop_t *new_loop(rs_event_loop_backend_t backend) {
    rs_event_loop_options_t o = {.allocator = &rs_test_allocator, .backend = backend};
    int err = RS_EUNKNOWN;
    rs_event_loop_t *loop = rs_event_loop_new(&o, &err);
    assert_non_null(loop);
    assert_int_equal(err, RS_OK);
    return loop;
}

static void producer_main(void *arg) {
    async_ctx_t *c = (async_ctx_t *)arg;
    int i;
    for (i = 0; i < ASYNC_SENDS_PER_PRODUCER; ++i) {
        __atomic_add_fetch(&c->sends, 1, __ATOMIC_RELEASE);
        rs_event_loop_async_send(&c->async);
    }
}

static void sends_from_many_threads_coalesce_and_none_is_lost(rs_event_loop_backend_t backend) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = new_loop(backend);
    rs_thread_t producers[ASYNC_PRODUCERS];
    rs_event_loop_stats_t stats;
    async_ctx_t c;
    uint64_t total = (uint64_t)ASYNC_PRODUCERS * ASYNC_SENDS_PER_PRODUCER;
    int i;
    ctx_init(&c);
    rs_event_loop_async_init(&c.async, loop, on_async, &c);
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    for (i = 0; i < ASYNC_PRODUCERS; ++i) {
        assert_int_equal(rs_thread_launch(&producers[i], producer_main, &c, NULL), RS_OK);
    }
    for (i = 0; i < ASYNC_PRODUCERS; ++i) {
        assert_int_equal(rs_thread_join(&producers[i]), RS_OK);
    }
    /* Every send is followed by a call that saw it: the last one too. */
    assert_true(wait_seen(&c, total));
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    rs_event_loop_get_stats(loop, &stats);
    assert_true(c.calls >= 1);
    assert_true(c.calls <= total);
    assert_true(stats.xthread_tasks <= total);
    assert_true(c.on_loop_thread);
    assert_int_equal(rs_event_loop_async_cleanup(&c.async), RS_OK);
    rs_event_loop_destroy(loop);
    ctx_cleanup(&c);
}

static void repeated_sends_before_a_tick_run_fn_once(rs_event_loop_backend_t backend) {
    rs_event_loop_t *loop = new_loop(backend);
    async_ctx_t c;
    int i;
    ctx_init(&c);
    rs_event_loop_async_init(&c.async, loop, on_async, &c);
    for (i = 0; i < 100; ++i) {
        rs_event_loop_async_send(&c.async);
    }
    assert_int_equal(c.calls, 0); /* never inline */
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(c.calls, 1);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(c.calls, 1);
    rs_event_loop_destroy(loop);
    ctx_cleanup(&c);
}

static void send_inside_fn_runs_fn_again_next_tick(rs_event_loop_backend_t backend) {
    rs_event_loop_t *loop = new_loop(backend);
    async_ctx_t c;
    ctx_init(&c);
    c.resend_in_fn = 1;
    rs_event_loop_async_init(&c.async, loop, on_async, &c);
    rs_event_loop_async_send(&c.async);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(c.calls, 1);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(c.calls, 2);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(c.calls, 2);
    rs_event_loop_destroy(loop);
    ctx_cleanup(&c);
}

static void cleanup_drops_a_pending_send_without_calling_fn(rs_event_loop_backend_t backend) {
    rs_event_loop_t *loop = new_loop(backend);
    async_ctx_t c;
    ctx_init(&c);
    rs_event_loop_async_init(&c.async, loop, on_async, &c);
    rs_event_loop_async_send(&c.async);
    assert_int_equal(rs_event_loop_async_cleanup(&c.async), RS_OK);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(c.calls, 0);
    /* A fresh send after cleanup works again. */
    rs_event_loop_async_init(&c.async, loop, on_async, &c);
    rs_event_loop_async_send(&c.async);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(c.calls, 1);
    rs_event_loop_destroy(loop);
    ctx_cleanup(&c);
}

static void cleanup_off_the_loop_thread_is_refused(rs_event_loop_backend_t backend) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = new_loop(backend);
    async_ctx_t c;
    ctx_init(&c);
    rs_event_loop_async_init(&c.async, loop, on_async, &c);
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    assert_int_equal(rs_event_loop_async_cleanup(&c.async), RS_EWRONGTHREAD);
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    assert_int_equal(rs_event_loop_async_cleanup(&c.async), RS_OK);
    rs_event_loop_destroy(loop);
    ctx_cleanup(&c);
}

RS_TEST_PER_BACKEND(async_, sends_from_many_threads_coalesce_and_none_is_lost)
RS_TEST_PER_BACKEND(async_, repeated_sends_before_a_tick_run_fn_once)
RS_TEST_PER_BACKEND(async_, send_inside_fn_runs_fn_again_next_tick)
RS_TEST_PER_BACKEND(async_, cleanup_drops_a_pending_send_without_calling_fn)
RS_TEST_PER_BACKEND(async_, cleanup_off_the_loop_thread_is_refused)

int main(void) {
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(async_, sends_from_many_threads_coalesce_and_none_is_lost),
        RS_TEST_PER_BACKEND_TESTS(async_, repeated_sends_before_a_tick_run_fn_once),
        RS_TEST_PER_BACKEND_TESTS(async_, send_inside_fn_runs_fn_again_next_tick),
        RS_TEST_PER_BACKEND_TESTS(async_, cleanup_drops_a_pending_send_without_calling_fn),
        RS_TEST_PER_BACKEND_TESTS(async_, cleanup_off_the_loop_thread_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
