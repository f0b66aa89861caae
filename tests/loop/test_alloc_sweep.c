/*
 * Allocation failure sweeps for the loop layer.
 *
 * For N = 1, 2, ...: the Nth allocation fails, the scenario runs, and every
 * step must either succeed or fail cleanly with RS_ENOMEM, with nothing leaked
 * (checked after each N, not only at the end of the test). The sweep stops at
 * the first N where no failure was injected: the scenario then ran fully.
 *
 * Loop threads never assert: they record under a mutex and the test thread
 * checks. Every wait is bounded.
 */
#include "test_util.h"

#if !RESEAU_OS_WINDOWS
#include <fcntl.h>
#include <unistd.h>
#endif

#define WAIT_NS (10 * RS_NS_PER_SEC)
#define SWEEP_MAX_N 10000

/* ------------------------------------------------------------- allocator */

/* The failing allocator, plus a count of live blocks so a leak is pinned to
 * the N that caused it. */
typedef struct sweep_alloc {
    rs_allocator_t allocator; /* hand this to reseau */
    rs_test_failing_alloc_t inner;
    long live;                /* atomic */
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

static long sweep_alloc_live(sweep_alloc_t *s) {
    return __atomic_load_n(&s->live, __ATOMIC_SEQ_CST);
}

/* A scenario returns RS_OK or the first clean error it met. */
typedef int sweep_scenario_fn(const rs_allocator_t *allocator, void *ctx);

/* Run the sweep; returns the number of N values tried. */
static size_t sweep(sweep_scenario_fn *scenario, void *ctx) {
    size_t n;
    for (n = 1; n <= SWEEP_MAX_N; ++n) {
        sweep_alloc_t s;
        int rc;
        sweep_alloc_init(&s, n);
        rc = scenario(&s.allocator, ctx);
        if (sweep_alloc_live(&s) != 0) {
            fail_msg("fail_at=%zu: %ld block(s) leaked (scenario returned %s)", n, sweep_alloc_live(&s),
                     rs_err_name(rc));
        }
        if (rs_test_failing_alloc_failures(&s.inner) == 0) {
            if (rc != RS_OK) {
                fail_msg("fail_at=%zu: no failure injected, yet the scenario returned %s", n, rs_err_name(rc));
            }
            print_message("      sweep converged: the scenario makes %zu allocation(s)\n", n - 1);
            return n;
        }
        if (rc != RS_OK && rc != RS_ENOMEM) {
            fail_msg("fail_at=%zu: unclean error %s", n, rs_err_name(rc));
        }
    }
    fail_msg("the sweep did not converge within %d allocations", SWEEP_MAX_N);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

typedef struct latch {
    rs_mutex_t mutex;
    rs_condvar_t cond;
    uint64_t count;
} latch_t;

static void latch_init(latch_t *l) {
    assert_int_equal(rs_mutex_init(&l->mutex), RS_OK);
    assert_int_equal(rs_condvar_init(&l->cond), RS_OK);
    l->count = 0;
}

static void latch_cleanup(latch_t *l) {
    rs_condvar_cleanup(&l->cond);
    rs_mutex_cleanup(&l->mutex);
}

static void latch_add(latch_t *l, uint64_t n) {
    rs_mutex_lock(&l->mutex);
    l->count += n;
    rs_condvar_broadcast(&l->cond);
    rs_mutex_unlock(&l->mutex);
}

static bool latch_wait(latch_t *l, uint64_t target) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    bool ok;
    rs_mutex_lock(&l->mutex);
    while (l->count < target) {
        if (rs_condvar_wait_until(&l->cond, &l->mutex, deadline) == RS_ETIMEDOUT) {
            break;
        }
    }
    ok = l->count >= target;
    rs_mutex_unlock(&l->mutex);
    return ok;
}

static void count_task_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        latch_add((latch_t *)arg, 1);
    }
}

static void noop_on_remove(void *key, void *object, void *user_data) {
    (void)key;
    (void)object;
    (void)user_data;
}

/* ------------------------------------------- loop + subscribe + xthread */

typedef struct loop_ctx {
    rs_event_loop_backend_t backend;
} loop_ctx_t;

static void readable_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    char buf[16];
    (void)events;
    while (read(handle->fd, buf, sizeof(buf)) > 0) {
    }
    rs_event_loop_unsubscribe(loop, handle);
    latch_add((latch_t *)user_data, 1);
}

static int loop_scenario(const rs_allocator_t *allocator, void *ctx_) {
    static int key;
    loop_ctx_t *ctx = (loop_ctx_t *)ctx_;
    rs_event_loop_options_t opts;
    rs_event_loop_t *loop;
    rs_io_handle_t handle;
    rs_task_t task;
    latch_t io_latch;
    latch_t task_latch;
    int fds[2];
    int first_err = RS_OK;
    bool subscribed;
    int err = 1;
    int rc;

    memset(&opts, 0, sizeof(opts));
    opts.allocator = allocator;
    opts.backend = ctx->backend;
    loop = rs_event_loop_new(&opts, &err);
    if (!loop) {
        assert_int_equal(err, RS_ENOMEM);
        return err;
    }
    assert_int_equal(err, RS_OK);
    latch_init(&io_latch);
    latch_init(&task_latch);
    assert_int_equal(rs_test_pipe_nonblocking(fds), 0);
    memset(&handle, 0, sizeof(handle));
    handle.fd = fds[0];
    rc = rs_event_loop_subscribe(loop, &handle, RS_IO_READABLE, readable_cb, &io_latch);
    subscribed = rc == RS_OK;
    if (!subscribed) {
        assert_int_equal(rc, RS_ENOMEM);
        assert_null(handle.impl);
        first_err = rc;
    }
    rc = rs_event_loop_put_local_object(loop, &key, &key, noop_on_remove, NULL);
    if (rc != RS_OK) {
        assert_int_equal(rc, RS_ENOMEM);
        if (first_err == RS_OK) {
            first_err = rc;
        }
    }
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    rs_task_init(&task, count_task_fn, &task_latch, "sweep");
    rs_event_loop_schedule_task_now(loop, &task); /* cross-thread: the loop runs elsewhere */
    assert_true(latch_wait(&task_latch, 1));
    if (subscribed) {
        assert_true(latch_wait(&io_latch, 1));
    }
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    rs_event_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
    latch_cleanup(&io_latch);
    latch_cleanup(&task_latch);
    return first_err;
}

static void loop_with_subscription_and_xthread_task(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    loop_ctx_t ctx;
    ctx.backend = b;
    assert_true(sweep(loop_scenario, &ctx) > 1);
}
RS_TEST_PER_BACKEND_IO(alloc_sweep_, loop_with_subscription_and_xthread_task)

/* --------------------------------------------- many subscriptions (growth) */

#define MANY_HANDLES 40

typedef struct many_ctx {
    rs_event_loop_backend_t backend;
} many_ctx_t;

typedef struct many_sub {
    rs_io_handle_t handle;
    int fds[2];
    int calls;
    bool subscribed;
} many_sub_t;

static void many_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    many_sub_t *m = (many_sub_t *)user_data;
    char buf[16];
    (void)events;
    while (read(handle->fd, buf, sizeof(buf)) > 0) {
    }
    m->calls++;
    rs_event_loop_unsubscribe(loop, handle);
    m->subscribed = false;
}

static int many_scenario(const rs_allocator_t *allocator, void *ctx_) {
    many_ctx_t *ctx = (many_ctx_t *)ctx_;
    rs_event_loop_options_t opts;
    rs_event_loop_t *loop;
    many_sub_t subs[MANY_HANDLES];
    int first_err = RS_OK;
    int expected = 0;
    int got;
    int err = 1;
    int i;
    uint64_t deadline;

    memset(&opts, 0, sizeof(opts));
    opts.allocator = allocator;
    opts.backend = ctx->backend;
    loop = rs_event_loop_new(&opts, &err);
    if (!loop) {
        assert_int_equal(err, RS_ENOMEM);
        return err;
    }
    memset(subs, 0, sizeof(subs));
    for (i = 0; i < MANY_HANDLES; ++i) {
        int rc;
        assert_int_equal(rs_test_pipe_nonblocking(subs[i].fds), 0);
        assert_int_equal(write(subs[i].fds[1], "x", 1), 1);
        subs[i].handle.fd = subs[i].fds[0];
        rc = rs_event_loop_subscribe(loop, &subs[i].handle, RS_IO_READABLE, many_cb, &subs[i]);
        if (rc == RS_OK) {
            subs[i].subscribed = true;
            expected++;
        } else {
            assert_int_equal(rc, RS_ENOMEM);
            assert_null(subs[i].handle.impl);
            if (first_err == RS_OK) {
                first_err = rc;
            }
        }
    }
    /* every successful subscription gets its event (run_once on this thread) */
    deadline = rs_clock_now_ns() + WAIT_NS;
    do {
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
        got = 0;
        for (i = 0; i < MANY_HANDLES; ++i) {
            got += subs[i].calls;
        }
    } while (got < expected && rs_clock_now_ns() < deadline);
    assert_int_equal(got, expected);
    /* every callback unsubscribed itself: subscribe a third again (idle pipes),
     * so destroy has live registrations to sweep */
    for (i = 0; i < MANY_HANDLES; i += 3) {
        int rc = rs_event_loop_subscribe(loop, &subs[i].handle, RS_IO_READABLE, many_cb, &subs[i]);
        if (rc != RS_OK) {
            assert_int_equal(rc, RS_ENOMEM);
            if (first_err == RS_OK) {
                first_err = rc;
            }
        }
    }
    rs_event_loop_destroy(loop);
    for (i = 0; i < MANY_HANDLES; ++i) {
        close(subs[i].fds[0]);
        close(subs[i].fds[1]);
    }
    return first_err;
}

static void many_subscriptions(rs_event_loop_backend_t b) {
    many_ctx_t ctx;
    ctx.backend = b;
    assert_true(sweep(many_scenario, &ctx) > 1);
}
RS_TEST_PER_BACKEND_IO(alloc_sweep_, many_subscriptions)

/* ----------------------------------------------------- group of 2 loops */

static int group_scenario(const rs_allocator_t *allocator, void *ctx_) {
    rs_event_loop_group_options_t opts;
    rs_event_loop_group_t *g;
    rs_task_t tasks[2];
    latch_t latch;
    int err = 1;
    size_t i;
    (void)ctx_;
    memset(&opts, 0, sizeof(opts));
    opts.allocator = allocator;
    opts.loop_count = 2;
    g = rs_event_loop_group_new(&opts, &err);
    if (!g) {
        assert_int_equal(err, RS_ENOMEM);
        return err;
    }
    assert_int_equal(err, RS_OK);
    latch_init(&latch);
    for (i = 0; i < 2; ++i) {
        rs_task_init(&tasks[i], count_task_fn, &latch, "sweep");
        rs_event_loop_schedule_task_now(rs_event_loop_group_get_loop_at(g, i), &tasks[i]);
    }
    assert_true(latch_wait(&latch, 2));
    assert_int_equal(rs_event_loop_group_destroy(g), RS_OK);
    latch_cleanup(&latch);
    return RS_OK;
}

static void alloc_sweep_group_of_two_loops(void **state) {
    RS_TEST_NEEDS_THREADS();
    (void)state;
    assert_true(sweep(group_scenario, NULL) > 1);
}

/* ----------------------------------------- many future tasks (heap growth) */

#define FUTURE_TASKS 500

typedef struct future_ctx {
    rs_event_loop_backend_t backend;
} future_ctx_t;

typedef struct future_task {
    rs_task_t task;
    uint64_t at;
    int id;
    int runs;
    int cancels;
    int *order;
    size_t *n;
} future_task_t;

static void future_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    future_task_t *t = (future_task_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        t->runs++;
        t->order[(*t->n)++] = t->id;
    } else {
        t->cancels++;
    }
}

static uint64_t fake_clock_fn(void *user_data) {
    return __atomic_load_n((const uint64_t *)user_data, __ATOMIC_SEQ_CST);
}

static int future_scenario(const rs_allocator_t *allocator, void *ctx_) {
    future_ctx_t *ctx = (future_ctx_t *)ctx_;
    rs_event_loop_options_t opts;
    rs_event_loop_t *loop;
    future_task_t *tasks;
    int *order;
    size_t n = 0;
    size_t i;
    size_t expected = 0;
    uint64_t fake = RS_NS_PER_SEC;
    uint64_t x = 12345;
    int err = 1;
    int ticks;

    memset(&opts, 0, sizeof(opts));
    opts.allocator = allocator;
    opts.backend = ctx->backend;
    opts.clock_fn = fake_clock_fn;
    opts.clock_user_data = &fake;
    loop = rs_event_loop_new(&opts, &err);
    if (!loop) {
        assert_int_equal(err, RS_ENOMEM);
        return err;
    }
    tasks = (future_task_t *)calloc(FUTURE_TASKS, sizeof(future_task_t));
    order = (int *)calloc(FUTURE_TASKS, sizeof(int));
    assert_non_null(tasks);
    assert_non_null(order);
    for (i = 0; i < FUTURE_TASKS; ++i) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        tasks[i].id = (int)i;
        tasks[i].at = 2 * RS_NS_PER_SEC + (x >> 33) % 100; /* many equal times */
        tasks[i].order = order;
        tasks[i].n = &n;
        rs_task_init(&tasks[i].task, future_fn, &tasks[i], "future");
        rs_event_loop_schedule_task_future(loop, &tasks[i].task, tasks[i].at);
    }
    for (i = 5; i < FUTURE_TASKS; i += 11) {
        assert_int_equal(rs_event_loop_cancel_task(loop, &tasks[i].task), RS_OK);
    }
    for (i = 0; i < FUTURE_TASKS; ++i) {
        expected += tasks[i].cancels ? 0 : 1;
    }
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(n, 0); /* none is due yet */
    __atomic_store_n(&fake, 3 * RS_NS_PER_SEC, __ATOMIC_SEQ_CST);
    for (ticks = 0; ticks < 5 && n < expected; ++ticks) {
        assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    }
    assert_int_equal(n, expected);
    for (i = 1; i < n; ++i) {
        const future_task_t *a = &tasks[order[i - 1]];
        const future_task_t *b = &tasks[order[i]];
        assert_true(a->at < b->at || (a->at == b->at && a->id < b->id));
    }
    for (i = 0; i < FUTURE_TASKS; ++i) {
        assert_int_equal(tasks[i].runs + tasks[i].cancels, 1);
    }
    rs_event_loop_destroy(loop);
    free(tasks);
    free(order);
    return RS_OK;
}

static void many_future_tasks_all_run_in_order(rs_event_loop_backend_t b) {
    future_ctx_t ctx;
    ctx.backend = b;
    assert_true(sweep(future_scenario, &ctx) > 1);
}
RS_TEST_PER_BACKEND(alloc_sweep_, many_future_tasks_all_run_in_order)

/* ---------------------------------------------------- loop-local objects */

static void local_free_on_remove(void *key, void *object, void *user_data) {
    (void)key;
    (void)user_data;
    free(object);
}

static int locals_scenario(const rs_allocator_t *allocator, void *ctx_) {
    static int keys[20];
    rs_event_loop_options_t opts;
    rs_event_loop_t *loop;
    bool present[20];
    int first_err = RS_OK;
    int err = 1;
    int i;
    (void)ctx_;
    memset(&opts, 0, sizeof(opts));
    opts.allocator = allocator;
    loop = rs_event_loop_new(&opts, &err);
    if (!loop) {
        assert_int_equal(err, RS_ENOMEM);
        return err;
    }
    for (i = 0; i < 20; ++i) {
        int *o = (int *)malloc(sizeof(int));
        int rc;
        assert_non_null(o);
        *o = i;
        rc = rs_event_loop_put_local_object(loop, &keys[i], o, local_free_on_remove, NULL);
        present[i] = rc == RS_OK;
        if (rc != RS_OK) {
            assert_int_equal(rc, RS_ENOMEM);
            free(o); /* not taken */
            if (first_err == RS_OK) {
                first_err = rc;
            }
        }
    }
    for (i = 0; i < 20; ++i) {
        void *out = NULL;
        int rc = rs_event_loop_get_local_object(loop, &keys[i], &out);
        if (present[i]) {
            assert_int_equal(rc, RS_OK);
            assert_int_equal(*(int *)out, i);
        } else {
            assert_int_equal(rc, RS_ENOENT);
        }
    }
    rs_event_loop_destroy(loop); /* frees what was put */
    return first_err;
}

static void alloc_sweep_loop_local_objects(void **state) {
    (void)state;
    assert_true(sweep(locals_scenario, NULL) > 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(alloc_sweep_, loop_with_subscription_and_xthread_task),
        RS_TEST_PER_BACKEND_TESTS(alloc_sweep_, many_subscriptions),
        cmocka_unit_test(alloc_sweep_group_of_two_loops),
        RS_TEST_PER_BACKEND_TESTS(alloc_sweep_, many_future_tasks_all_run_in_order),
        cmocka_unit_test(alloc_sweep_loop_local_objects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
