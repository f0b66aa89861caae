/*
 * Event-loop groups: creation and synchronous/asynchronous shutdown, loop
 * count defaults, picking loops, thread naming, the clock override, and the
 * failure paths (thread start failure, destroy from a loop thread).
 *
 * Loop threads never assert: they record under a mutex and the test thread
 * checks. Every wait is bounded.
 */
#include "test_util.h"

#include <unistd.h>

#define WAIT_NS (10 * RS_NS_PER_SEC)

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

static rs_event_loop_group_t *group_new(rs_event_loop_backend_t b, uint16_t count) {
    rs_event_loop_group_options_t opts;
    rs_event_loop_group_t *g;
    int err = 1;
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator;
    opts.loop_count = count;
    opts.backend = b;
    g = rs_event_loop_group_new(&opts, &err);
    assert_non_null(g);
    return g;
}

/* A task that records the thread it ran on. */
typedef struct where_task {
    rs_task_t task;
    rs_event_loop_t *loop;
    latch_t *latch;
    rs_thread_id_t thread;      /* under latch->mutex */
    bool on_loop_thread;
    int runs;
    int cancels;
    char name[32];
} where_task_t;

static void where_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    where_task_t *w = (where_task_t *)arg;
    char name[32];
    bool on = rs_event_loop_is_on_loop_thread(w->loop);
    (void)task;
    memset(name, 0, sizeof(name));
    (void)rs_test_thread_name(name, sizeof(name));
    rs_mutex_lock(&w->latch->mutex);
    w->thread = rs_thread_current_id();
    w->on_loop_thread = on;
    memcpy(w->name, name, sizeof(name));
    if (status == RS_TASK_STATUS_RUN) {
        w->runs++;
    } else {
        w->cancels++;
    }
    w->latch->count++;
    rs_condvar_broadcast(&w->latch->cond);
    rs_mutex_unlock(&w->latch->mutex);
}

/* ------------------------------------------------------------------------ */

static void setup_and_shutdown_sync(rs_event_loop_backend_t b) {
    rs_event_loop_group_t *g = group_new(b, 4);
    where_task_t tasks[4];
    latch_t latch;
    size_t i;
    size_t j;
    latch_init(&latch);
    assert_int_equal(rs_event_loop_group_get_loop_count(g), 4);
    for (i = 0; i < 4; ++i) {
        rs_event_loop_t *loop = rs_event_loop_group_get_loop_at(g, i);
        assert_non_null(loop);
        assert_int_equal(rs_event_loop_get_backend(loop), b);
        assert_false(rs_event_loop_is_on_loop_thread(loop)); /* each runs on its own thread */
        for (j = 0; j < i; ++j) {
            assert_ptr_not_equal(loop, rs_event_loop_group_get_loop_at(g, j));
        }
        memset(&tasks[i], 0, sizeof(tasks[i]));
        tasks[i].loop = loop;
        tasks[i].latch = &latch;
        rs_task_init(&tasks[i].task, where_fn, &tasks[i], "where");
        rs_event_loop_schedule_task_now(loop, &tasks[i].task);
    }
    assert_true(latch_wait(&latch, 4));
    rs_mutex_lock(&latch.mutex);
    for (i = 0; i < 4; ++i) {
        assert_int_equal(tasks[i].runs, 1);
        assert_true(tasks[i].on_loop_thread);
        assert_true(tasks[i].thread != rs_thread_current_id());
        for (j = 0; j < i; ++j) {
            assert_true(tasks[i].thread != tasks[j].thread);
        }
    }
    rs_mutex_unlock(&latch.mutex);
    assert_int_equal(rs_event_loop_group_destroy(g), RS_OK);
    latch_cleanup(&latch);
}
RS_TEST_PER_BACKEND(group_, setup_and_shutdown_sync)

/* Sync destroy with tasks still pending: each runs once, CANCELED. */
static void sync_shutdown_cancels_pending_tasks(rs_event_loop_backend_t b) {
    rs_event_loop_group_t *g = group_new(b, 2);
    where_task_t tasks[2];
    latch_t latch;
    size_t i;
    latch_init(&latch);
    for (i = 0; i < 2; ++i) {
        rs_event_loop_t *loop = rs_event_loop_group_get_loop_at(g, i);
        memset(&tasks[i], 0, sizeof(tasks[i]));
        tasks[i].loop = loop;
        tasks[i].latch = &latch;
        rs_task_init(&tasks[i].task, where_fn, &tasks[i], "later");
        rs_event_loop_schedule_task_future(loop, &tasks[i].task, rs_event_loop_now_ns(loop) + 3600 * RS_NS_PER_SEC);
    }
    assert_int_equal(rs_event_loop_group_destroy(g), RS_OK);
    assert_int_equal(latch.count, 2);
    for (i = 0; i < 2; ++i) {
        assert_int_equal(tasks[i].runs, 0);
        assert_int_equal(tasks[i].cancels, 1);
    }
    latch_cleanup(&latch);
}
RS_TEST_PER_BACKEND(group_, sync_shutdown_cancels_pending_tasks)

typedef struct shutdown_ctx {
    latch_t latch;
    rs_thread_id_t thread; /* under latch.mutex */
} shutdown_ctx_t;

static void on_group_shutdown(void *user_data) {
    shutdown_ctx_t *c = (shutdown_ctx_t *)user_data;
    rs_mutex_lock(&c->latch.mutex);
    c->latch.count++;
    c->thread = rs_thread_current_id();
    rs_condvar_broadcast(&c->latch.cond);
    rs_mutex_unlock(&c->latch.mutex);
}

static void shutdown_async(rs_event_loop_backend_t b) {
    rs_event_loop_group_options_t opts;
    rs_event_loop_group_t *g;
    shutdown_ctx_t c;
    where_task_t tasks[2];
    latch_t task_latch;
    int err = 1;
    size_t i;
    memset(&c, 0, sizeof(c));
    latch_init(&c.latch);
    latch_init(&task_latch);
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator;
    opts.loop_count = 2;
    opts.backend = b;
    opts.on_shutdown = on_group_shutdown;
    opts.shutdown_user_data = &c;
    g = rs_event_loop_group_new(&opts, &err);
    assert_non_null(g);
    /* tasks pending at shutdown are canceled before on_shutdown fires */
    for (i = 0; i < 2; ++i) {
        rs_event_loop_t *loop = rs_event_loop_group_get_loop_at(g, i);
        memset(&tasks[i], 0, sizeof(tasks[i]));
        tasks[i].loop = loop;
        tasks[i].latch = &task_latch;
        rs_task_init(&tasks[i].task, where_fn, &tasks[i], "later");
        rs_event_loop_schedule_task_future(loop, &tasks[i].task, rs_event_loop_now_ns(loop) + 3600 * RS_NS_PER_SEC);
    }
    assert_int_equal(rs_event_loop_group_destroy(g), RS_OK);
    assert_true(latch_wait(&c.latch, 1));
    rs_thread_sleep_ns(100 * RS_NS_PER_MS); /* a second call would show; the helper exits */
    rs_mutex_lock(&c.latch.mutex);
    assert_int_equal(c.latch.count, 1);
    assert_true(c.thread != rs_thread_current_id());
    rs_mutex_unlock(&c.latch.mutex);
    rs_mutex_lock(&task_latch.mutex);
    assert_int_equal(task_latch.count, 2);
    assert_int_equal(tasks[0].cancels + tasks[1].cancels, 2);
    rs_mutex_unlock(&task_latch.mutex);
    latch_cleanup(&task_latch);
    latch_cleanup(&c.latch);
}
RS_TEST_PER_BACKEND(group_, shutdown_async)

/* Asynchronous destroy may be called from one of the group's own loops. */
typedef struct self_destroy {
    rs_task_t task;
    rs_event_loop_group_t *group;
    int rc;        /* under sc.latch.mutex */
    shutdown_ctx_t *sc;
} self_destroy_t;

static void self_destroy_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    self_destroy_t *s = (self_destroy_t *)arg;
    int rc = RS_ECANCELED;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        rc = rs_event_loop_group_destroy(s->group);
    }
    rs_mutex_lock(&s->sc->latch.mutex);
    s->rc = rc;
    rs_mutex_unlock(&s->sc->latch.mutex);
}

static void shutdown_async_from_own_loop_thread(rs_event_loop_backend_t b) {
    rs_event_loop_group_options_t opts;
    shutdown_ctx_t c;
    self_destroy_t s;
    memset(&c, 0, sizeof(c));
    memset(&s, 0, sizeof(s));
    latch_init(&c.latch);
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator;
    opts.loop_count = 2;
    opts.backend = b;
    opts.on_shutdown = on_group_shutdown;
    opts.shutdown_user_data = &c;
    s.group = rs_event_loop_group_new(&opts, NULL);
    assert_non_null(s.group);
    s.sc = &c;
    s.rc = 1;
    rs_task_init(&s.task, self_destroy_fn, &s, "self-destroy");
    rs_event_loop_schedule_task_now(rs_event_loop_group_get_loop_at(s.group, 1), &s.task);
    assert_true(latch_wait(&c.latch, 1));
    rs_thread_sleep_ns(100 * RS_NS_PER_MS);
    rs_mutex_lock(&c.latch.mutex);
    assert_int_equal(c.latch.count, 1);
    assert_int_equal(s.rc, RS_OK);
    rs_mutex_unlock(&c.latch.mutex);
    latch_cleanup(&c.latch);
}
RS_TEST_PER_BACKEND(group_, shutdown_async_from_own_loop_thread)

static void group_loop_count_0_uses_usable_cpus(void **state) {
    rs_event_loop_group_t *g = group_new(RS_EVENT_LOOP_BACKEND_DEFAULT, 0);
    size_t cpus = rs_usable_cpu_count();
    size_t i;
    (void)state;
    assert_true(cpus >= 1);
    assert_int_equal(rs_event_loop_group_get_loop_count(g), cpus);
    for (i = 0; i < cpus; ++i) {
        assert_non_null(rs_event_loop_group_get_loop_at(g, i));
    }
    assert_null(rs_event_loop_group_get_loop_at(g, cpus));
    assert_int_equal(rs_event_loop_group_destroy(g), RS_OK);
}

static void group_null_options_use_defaults(void **state) {
    rs_event_loop_group_t *g;
    int err = 1;
    (void)state;
    g = rs_event_loop_group_new(NULL, &err);
    assert_non_null(g);
    assert_int_equal(rs_event_loop_group_get_loop_count(g), rs_usable_cpu_count());
    assert_int_equal(rs_event_loop_get_backend(rs_event_loop_group_get_loop_at(g, 0)), rs_test_backends[0]);
    assert_int_equal(rs_event_loop_group_destroy(g), RS_OK);
}

static void get_next_loop_spreads_over_the_group(rs_event_loop_backend_t b) {
    rs_event_loop_group_t *g = group_new(b, 4);
    int hits[4] = {0, 0, 0, 0};
    int i;
    size_t j;
    for (i = 0; i < 1000; ++i) {
        rs_event_loop_t *loop = rs_event_loop_group_get_next_loop(g);
        bool found = false;
        assert_non_null(loop);
        for (j = 0; j < 4; ++j) {
            if (loop == rs_event_loop_group_get_loop_at(g, j)) {
                hits[j]++;
                found = true;
            }
        }
        assert_true(found);
    }
    for (j = 0; j < 4; ++j) {
        assert_true(hits[j] > 0);
    }
    assert_int_equal(rs_event_loop_group_destroy(g), RS_OK);
}
RS_TEST_PER_BACKEND(group_, get_next_loop_spreads_over_the_group)

static void group_get_next_loop_of_one_loop_group(void **state) {
    rs_event_loop_group_t *g = group_new(RS_EVENT_LOOP_BACKEND_DEFAULT, 1);
    int i;
    (void)state;
    for (i = 0; i < 10; ++i) {
        assert_ptr_equal(rs_event_loop_group_get_next_loop(g), rs_event_loop_group_get_loop_at(g, 0));
    }
    assert_int_equal(rs_event_loop_group_destroy(g), RS_OK);
}

/* get_next_loop from several threads at once (TSan). */
typedef struct picker {
    rs_thread_t thread;
    rs_event_loop_group_t *group;
    int null_results;
} picker_t;

static void picker_main(void *ud) {
    picker_t *p = (picker_t *)ud;
    int i;
    for (i = 0; i < 2000; ++i) {
        if (rs_event_loop_group_get_next_loop(p->group) == NULL) {
            p->null_results++;
        }
        (void)rs_event_loop_group_get_loop_count(p->group);
    }
}

static void group_get_next_loop_from_many_threads(void **state) {
    rs_event_loop_group_t *g = group_new(RS_EVENT_LOOP_BACKEND_DEFAULT, 3);
    picker_t pickers[4];
    int i;
    (void)state;
    for (i = 0; i < 4; ++i) {
        memset(&pickers[i], 0, sizeof(pickers[i]));
        pickers[i].group = g;
        assert_int_equal(rs_thread_launch(&pickers[i].thread, picker_main, &pickers[i], NULL), RS_OK);
    }
    for (i = 0; i < 4; ++i) {
        assert_int_equal(rs_thread_join(&pickers[i].thread), RS_OK);
        assert_int_equal(pickers[i].null_results, 0);
    }
    assert_int_equal(rs_event_loop_group_destroy(g), RS_OK);
}

static void group_get_loop_at_out_of_range_is_null(void **state) {
    rs_event_loop_group_t *g = group_new(RS_EVENT_LOOP_BACKEND_DEFAULT, 4);
    (void)state;
    assert_non_null(rs_event_loop_group_get_loop_at(g, 3));
    assert_null(rs_event_loop_group_get_loop_at(g, 4));
    assert_null(rs_event_loop_group_get_loop_at(g, 1000));
    assert_null(rs_event_loop_group_get_loop_at(g, SIZE_MAX));
    assert_int_equal(rs_event_loop_group_destroy(g), RS_OK);
}

/* Sync destroy from a loop thread of the group is refused with RS_EDEADLK. */
typedef struct deadlk_task {
    rs_task_t task;
    rs_event_loop_group_t *group;
    latch_t latch;
    int rc; /* under latch.mutex */
} deadlk_task_t;

static void deadlk_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    deadlk_task_t *d = (deadlk_task_t *)arg;
    int rc = RS_ECANCELED;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        rc = rs_event_loop_group_destroy(d->group);
    }
    rs_mutex_lock(&d->latch.mutex);
    d->rc = rc;
    d->latch.count++;
    rs_condvar_broadcast(&d->latch.cond);
    rs_mutex_unlock(&d->latch.mutex);
}

static void destroy_from_own_loop_thread_is_deadlk(rs_event_loop_backend_t b) {
    deadlk_task_t d;
    memset(&d, 0, sizeof(d));
    latch_init(&d.latch);
    d.group = group_new(b, 2);
    rs_task_init(&d.task, deadlk_fn, &d, "destroy-from-loop");
    rs_event_loop_schedule_task_now(rs_event_loop_group_get_loop_at(d.group, 1), &d.task);
    assert_true(latch_wait(&d.latch, 1));
    rs_mutex_lock(&d.latch.mutex);
    assert_int_equal(d.rc, RS_EDEADLK);
    rs_mutex_unlock(&d.latch.mutex);
    /* nothing was done: the group still works */
    assert_int_equal(rs_event_loop_group_get_loop_count(d.group), 2);
    assert_int_equal(rs_event_loop_group_destroy(d.group), RS_OK);
    latch_cleanup(&d.latch);
}
RS_TEST_PER_BACKEND(group_, destroy_from_own_loop_thread_is_deadlk)

static void group_thread_start_failure_is_an_error(void **state) {
    rs_event_loop_group_options_t opts;
    int err = 0;
    (void)state;
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator;
    opts.loop_count = 3;
    /* More than any address space can map, on 32-bit as on 64-bit; a multiple
     * of every page size up to 64 KiB, so no libc rejects it merely as unaligned. */
    opts.thread_stack_size = SIZE_MAX & ~(size_t)0xFFFF;
    assert_null(rs_event_loop_group_new(&opts, &err));
    assert_int_equal(err, RS_ETHREAD);
    /* err_out may be NULL */
    assert_null(rs_event_loop_group_new(&opts, NULL));
}

static void group_unavailable_backend_is_not_supported(void **state) {
    rs_event_loop_group_options_t opts;
    int err = 0;
    (void)state;
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator;
    opts.loop_count = 2;
#if RESEAU_OS_WINDOWS
    opts.backend = RS_EVENT_LOOP_BACKEND_EPOLL; /* Linux only */
#else
    opts.backend = RS_EVENT_LOOP_BACKEND_IOCP; /* Windows only */
#endif
    assert_null(rs_event_loop_group_new(&opts, &err));
    assert_int_equal(err, RS_ENOTSUP);
}

static void group_threads_are_named_by_prefix_and_index(void **state) {
    rs_event_loop_group_options_t opts;
    rs_event_loop_group_t *g;
    where_task_t tasks[3];
    latch_t latch;
    size_t i;
    (void)state;
    latch_init(&latch);
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator;
    opts.loop_count = 3;
    opts.thread_name_prefix = "tgrp";
    g = rs_event_loop_group_new(&opts, NULL);
    assert_non_null(g);
    for (i = 0; i < 3; ++i) {
        memset(&tasks[i], 0, sizeof(tasks[i]));
        tasks[i].loop = rs_event_loop_group_get_loop_at(g, i);
        tasks[i].latch = &latch;
        rs_task_init(&tasks[i].task, where_fn, &tasks[i], "name");
        rs_event_loop_schedule_task_now(tasks[i].loop, &tasks[i].task);
    }
    assert_true(latch_wait(&latch, 3));
    rs_mutex_lock(&latch.mutex);
    assert_string_equal(tasks[0].name, "tgrp-0");
    assert_string_equal(tasks[1].name, "tgrp-1");
    assert_string_equal(tasks[2].name, "tgrp-2");
    rs_mutex_unlock(&latch.mutex);
    assert_int_equal(rs_event_loop_group_destroy(g), RS_OK);
    latch_cleanup(&latch);
}

static uint64_t fake_clock_fn(void *user_data) {
    return __atomic_load_n((const uint64_t *)user_data, __ATOMIC_SEQ_CST);
}

static void group_clock_override_applies_to_every_loop(void **state) {
    rs_event_loop_group_options_t opts;
    rs_event_loop_group_t *g;
    uint64_t fake = 42 * RS_NS_PER_SEC;
    size_t i;
    (void)state;
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator;
    opts.loop_count = 2;
    opts.clock_fn = fake_clock_fn;
    opts.clock_user_data = &fake;
    g = rs_event_loop_group_new(&opts, NULL);
    assert_non_null(g);
    for (i = 0; i < 2; ++i) {
        assert_int_equal(rs_event_loop_now_ns(rs_event_loop_group_get_loop_at(g, i)), 42 * RS_NS_PER_SEC);
    }
    __atomic_store_n(&fake, 43 * RS_NS_PER_SEC, __ATOMIC_SEQ_CST);
    for (i = 0; i < 2; ++i) {
        assert_int_equal(rs_event_loop_now_ns(rs_event_loop_group_get_loop_at(g, i)), 43 * RS_NS_PER_SEC);
    }
    assert_int_equal(rs_event_loop_group_destroy(g), RS_OK);
}

/* Tasks bouncing between two loops while the group is destroyed: every task
 * ends exactly once, CANCELED, and no loop is touched after it is freed (ASan,
 * TSan). Before the fix, destroy freed loop 0 while loop 1 could still
 * schedule onto it. Repeated, because the window is a few instructions wide. */
#define PING_PONG_TASKS 8
#define PING_PONG_ROUNDS 40

typedef struct ping_pong {
    rs_task_t task;
    rs_event_loop_t *loops[2];
    int side;
    uint64_t runs;     /* atomic */
    uint64_t cancels;  /* atomic */
} ping_pong_t;

static void ping_pong_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    ping_pong_t *p = (ping_pong_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_CANCELED) {
        __atomic_add_fetch(&p->cancels, 1, __ATOMIC_SEQ_CST);
        return;
    }
    __atomic_add_fetch(&p->runs, 1, __ATOMIC_SEQ_CST);
    p->side ^= 1;
    rs_event_loop_schedule_task_now(p->loops[p->side], &p->task);
}

static void destroy_while_loops_hand_tasks_to_each_other(rs_event_loop_backend_t b) {
    int round;
    for (round = 0; round < PING_PONG_ROUNDS; ++round) {
        rs_event_loop_group_t *g = group_new(b, 2);
        ping_pong_t tasks[PING_PONG_TASKS];
        uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
        int i;
        memset(tasks, 0, sizeof(tasks));
        for (i = 0; i < PING_PONG_TASKS; ++i) {
            tasks[i].loops[0] = rs_event_loop_group_get_loop_at(g, 0);
            tasks[i].loops[1] = rs_event_loop_group_get_loop_at(g, 1);
            tasks[i].side = i & 1;
            rs_task_init(&tasks[i].task, ping_pong_fn, &tasks[i], "ping_pong");
            assert_int_equal(rs_event_loop_schedule_task_now(tasks[i].loops[tasks[i].side], &tasks[i].task), RS_OK);
        }
        /* Let the bouncing get going before the destroy, bounded in time. */
        while (__atomic_load_n(&tasks[PING_PONG_TASKS - 1].runs, __ATOMIC_SEQ_CST) < 10 &&
               rs_clock_now_ns() < deadline) {
            rs_thread_sleep_ns(RS_NS_PER_MS / 10);
        }
        assert_int_equal(rs_event_loop_group_destroy(g), RS_OK);
        for (i = 0; i < PING_PONG_TASKS; ++i) {
            assert_true(tasks[i].runs > 0);
            assert_int_equal(tasks[i].cancels, 1);
        }
    }
}
RS_TEST_PER_BACKEND(group_, destroy_while_loops_hand_tasks_to_each_other)

int main(void) {
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(group_, setup_and_shutdown_sync),
        RS_TEST_PER_BACKEND_TESTS(group_, sync_shutdown_cancels_pending_tasks),
        RS_TEST_PER_BACKEND_TESTS(group_, shutdown_async),
        RS_TEST_PER_BACKEND_TESTS(group_, shutdown_async_from_own_loop_thread),
        cmocka_unit_test(group_loop_count_0_uses_usable_cpus),
        cmocka_unit_test(group_null_options_use_defaults),
        RS_TEST_PER_BACKEND_TESTS(group_, get_next_loop_spreads_over_the_group),
        cmocka_unit_test(group_get_next_loop_of_one_loop_group),
        cmocka_unit_test(group_get_next_loop_from_many_threads),
        cmocka_unit_test(group_get_loop_at_out_of_range_is_null),
        RS_TEST_PER_BACKEND_TESTS(group_, destroy_from_own_loop_thread_is_deadlk),
        cmocka_unit_test(group_thread_start_failure_is_an_error),
        cmocka_unit_test(group_unavailable_backend_is_not_supported),
        cmocka_unit_test(group_threads_are_named_by_prefix_and_index),
        cmocka_unit_test(group_clock_override_applies_to_every_loop),
        RS_TEST_PER_BACKEND_TESTS(group_, destroy_while_loops_hand_tasks_to_each_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
