/*
 * Event loops: tasks (same-thread and cross-thread), I/O readiness
 * (level-triggered), run modes (own thread and run_once), the embedding API,
 * loop-local objects, thread rules, and destroy-time cleanup.
 *
 * Every test body takes the backend and runs once per backend; the test names
 * end in _epoll / _poll. Assertions only happen on the test thread: loop
 * threads record what they see, under a mutex, and the test thread checks it.
 * Every wait is bounded.
 */
#include "test_util.h"

#include <errno.h>
#if !RESEAU_OS_WINDOWS
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#define WAIT_NS (10 * RS_NS_PER_SEC)

/* ---------------------------------------------------------------- helpers */

static rs_event_loop_t *loop_new_with(rs_event_loop_backend_t b, rs_clock_fn *clock_fn, void *clock_ud) {
    rs_event_loop_options_t opts;
    rs_event_loop_t *loop;
    int err = 12345;
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator;
    opts.backend = b;
    opts.clock_fn = clock_fn;
    opts.clock_user_data = clock_ud;
    loop = rs_event_loop_new(&opts, &err);
    assert_non_null(loop);
    assert_int_equal(rs_event_loop_get_backend(loop), b);
    return loop;
}

static uint64_t fake_clock_fn(void *user_data);
static void fake_clock_set(uint64_t *clock, uint64_t v);

static void noop_io_cb_fwd(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    (void)loop;
    (void)handle;
    (void)events;
    (void)user_data;
}

static rs_event_loop_t *loop_new(rs_event_loop_backend_t b) {
    return loop_new_with(b, NULL, NULL);
}

/* The fd tests (RS_TEST_PER_BACKEND_IO) skip where the backend has no fd
 * subscriptions (IOCP, on Windows, so far), so the fd helpers below are
 * never reached there. */
static void make_pipe(int fds[2]) {
    assert_int_equal(rs_test_pipe_nonblocking(fds), 0);
}

static void make_socketpair(int fds[2]) {
#if RESEAU_OS_WINDOWS
    fds[0] = fds[1] = -1;
    fail_msg("no socketpair on Windows: an fd test was not skipped");
#else
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
#endif
}

static void write_byte(int fd) {
    char c = 'x';
    assert_int_equal(write(fd, &c, 1), 1);
}

static size_t drain_fd(int fd) {
    char buf[256];
    size_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) {
            return total;
        }
        total += (size_t)n;
    }
}

static uint64_t deadline_in(uint64_t ns) {
    return rs_clock_now_ns() + ns;
}

/* A counter guarded by a mutex, with a condvar to wait for a value. */
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

static uint64_t latch_get(latch_t *l) {
    uint64_t n;
    rs_mutex_lock(&l->mutex);
    n = l->count;
    rs_mutex_unlock(&l->mutex);
    return n;
}

/* Wait until count >= target; fail if it makes no progress for WAIT_NS. */
static bool latch_wait(latch_t *l, uint64_t target) {
    uint64_t deadline = deadline_in(WAIT_NS);
    uint64_t last;
    bool ok;
    rs_mutex_lock(&l->mutex);
    last = l->count;
    while (l->count < target) {
        if (rs_condvar_wait_until(&l->cond, &l->mutex, deadline) == RS_ETIMEDOUT) {
            if (l->count == last) {
                break;
            }
        }
        if (l->count != last) {
            last = l->count;
            deadline = deadline_in(WAIT_NS);
        }
    }
    ok = l->count >= target;
    rs_mutex_unlock(&l->mutex);
    return ok;
}

/* A task that records how it ran and bumps a latch. */
typedef struct probe {
    rs_task_t task;
    rs_event_loop_t *loop;
    latch_t *latch;
    rs_mutex_t *mutex;          /* guards the fields below (latch->mutex when latch set) */
    int runs;
    int cancels;
    bool on_loop_thread;
    rs_thread_id_t thread;
    bool scheduled_in_fn;
} probe_t;

static void probe_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    probe_t *p = (probe_t *)arg;
    bool on = rs_event_loop_is_on_loop_thread(p->loop);
    bool sched = rs_task_is_scheduled(task);
    if (p->latch) {
        rs_mutex_lock(&p->latch->mutex);
    }
    if (status == RS_TASK_STATUS_RUN) {
        p->runs++;
    } else {
        p->cancels++;
    }
    p->on_loop_thread = on;
    p->thread = rs_thread_current_id();
    p->scheduled_in_fn = sched;
    if (p->latch) {
        p->latch->count++;
        rs_condvar_broadcast(&p->latch->cond);
        rs_mutex_unlock(&p->latch->mutex);
    }
}

static void probe_init(probe_t *p, rs_event_loop_t *loop, latch_t *latch) {
    memset(p, 0, sizeof(*p));
    p->loop = loop;
    p->latch = latch;
    rs_task_init(&p->task, probe_fn, p, "probe");
}

/* Run one task on a started loop's thread and wait for it. */
typedef struct on_loop_call {
    rs_task_t task;
    void (*fn)(rs_event_loop_t *loop, void *ud);
    void *ud;
    rs_event_loop_t *loop;
    latch_t latch;
} on_loop_call_t;

static void on_loop_call_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    on_loop_call_t *c = (on_loop_call_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        c->fn(c->loop, c->ud);
    }
    latch_add(&c->latch, 1);
}

static void run_on_loop(rs_event_loop_t *loop, void (*fn)(rs_event_loop_t *, void *), void *ud) {
    on_loop_call_t c;
    bool ok;
    memset(&c, 0, sizeof(c));
    c.fn = fn;
    c.ud = ud;
    c.loop = loop;
    latch_init(&c.latch);
    rs_task_init(&c.task, on_loop_call_fn, &c, "on-loop-call");
    rs_event_loop_schedule_task_now(loop, &c.task);
    ok = latch_wait(&c.latch, 1);
    if (!ok) {
        /* cannot safely return with the task still queued */
        fail_msg("task scheduled on the loop never ran");
    }
    latch_cleanup(&c.latch);
}

/* run_once until *flag becomes non-zero (same thread), bounded by WAIT_NS. */
static bool run_until(rs_event_loop_t *loop, const int *flag) {
    uint64_t deadline = deadline_in(WAIT_NS);
    while (*flag == 0) {
        if (rs_clock_now_ns() > deadline) {
            return false;
        }
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
    }
    return true;
}

static void run_ticks(rs_event_loop_t *loop, int n, int timeout_ms) {
    int i;
    for (i = 0; i < n; ++i) {
        assert_int_equal(rs_event_loop_run_once(loop, timeout_ms), RS_OK);
    }
}

/* Start fn on a thread and join it. */
typedef struct thread_call {
    rs_thread_t thread;
    void (*fn)(void *);
    void *ud;
} thread_call_t;

static void thread_call_main(void *ud) {
    thread_call_t *c = (thread_call_t *)ud;
    c->fn(c->ud);
}

static void run_on_other_thread(void (*fn)(void *), void *ud) {
    thread_call_t c;
    memset(&c, 0, sizeof(c));
    c.fn = fn;
    c.ud = ud;
    assert_int_equal(rs_thread_launch(&c.thread, thread_call_main, &c, NULL), RS_OK);
    assert_int_equal(rs_thread_join(&c.thread), RS_OK);
}

/* Watchdog for run_once(loop, -1): wakes the loop with a task if the test
 * thread has not disarmed it within WAIT_NS. */
typedef struct watchdog {
    rs_thread_t thread;
    rs_event_loop_t *loop;
    latch_t latch; /* count 1 = disarmed */
    rs_task_t wake;
    int fired;     /* guarded by latch.mutex */
} watchdog_t;

static void watchdog_wake_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    (void)task;
    (void)arg;
    (void)status;
}

static void watchdog_main(void *ud) {
    watchdog_t *w = (watchdog_t *)ud;
    uint64_t deadline = deadline_in(WAIT_NS);
    rs_mutex_lock(&w->latch.mutex);
    while (w->latch.count == 0) {
        if (rs_condvar_wait_until(&w->latch.cond, &w->latch.mutex, deadline) == RS_ETIMEDOUT) {
            break;
        }
    }
    if (w->latch.count == 0) {
        w->fired = 1;
        rs_event_loop_schedule_task_now(w->loop, &w->wake);
    }
    rs_mutex_unlock(&w->latch.mutex);
}

static void watchdog_arm(watchdog_t *w, rs_event_loop_t *loop) {
    memset(w, 0, sizeof(*w));
    w->loop = loop;
    latch_init(&w->latch);
    rs_task_init(&w->wake, watchdog_wake_fn, w, "watchdog");
    assert_int_equal(rs_thread_launch(&w->thread, watchdog_main, w, NULL), RS_OK);
}

/* Returns whether it fired (a hang); the loop must still exist (its wake task
 * may be pending and gets canceled by destroy). */
static int watchdog_disarm(watchdog_t *w) {
    int fired;
    latch_add(&w->latch, 1);
    assert_int_equal(rs_thread_join(&w->thread), RS_OK);
    rs_mutex_lock(&w->latch.mutex);
    fired = w->fired;
    rs_mutex_unlock(&w->latch.mutex);
    latch_cleanup(&w->latch);
    return fired;
}

/* An I/O subscription that records events (same thread as run_once). */
typedef struct io_rec {
    rs_io_handle_t handle;
    int calls;
    int last_events;
    int all_events;
    bool unsubscribe_in_cb;
    bool drain_in_cb;
    bool on_loop_thread;
} io_rec_t;

static void io_rec_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    io_rec_t *r = (io_rec_t *)user_data;
    r->calls++;
    r->last_events = events;
    r->all_events |= events;
    r->on_loop_thread = rs_event_loop_is_on_loop_thread(loop);
    if (r->drain_in_cb) {
        drain_fd(handle->fd);
    }
    if (r->unsubscribe_in_cb) {
        rs_event_loop_unsubscribe(loop, handle);
    }
}

static void io_rec_init(io_rec_t *r, int fd) {
    memset(r, 0, sizeof(*r));
    r->handle.fd = fd;
    r->handle.impl = NULL;
}

/* ------------------------------------------------------------- task tests */

static void xthread_scheduled_tasks_execute(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    latch_t latch;
    probe_t now_task;
    probe_t future_task;
    probe_t serial_task;
    rs_thread_id_t main_id = rs_thread_current_id();
    latch_init(&latch);
    probe_init(&now_task, loop, &latch);
    probe_init(&future_task, loop, &latch);
    probe_init(&serial_task, loop, &latch);

    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    assert_false(rs_event_loop_is_on_loop_thread(loop));
    rs_event_loop_schedule_task_now(loop, &now_task.task);
    rs_event_loop_schedule_task_future(loop, &future_task.task, rs_event_loop_now_ns(loop) + RS_NS_PER_MS);
    rs_event_loop_schedule_task_now_serialized(loop, &serial_task.task);
    assert_true(latch_wait(&latch, 3));

    rs_mutex_lock(&latch.mutex);
    assert_int_equal(now_task.runs, 1);
    assert_int_equal(future_task.runs, 1);
    assert_int_equal(serial_task.runs, 1);
    assert_int_equal(now_task.cancels + future_task.cancels + serial_task.cancels, 0);
    assert_true(now_task.on_loop_thread);
    assert_true(future_task.on_loop_thread);
    assert_true(serial_task.on_loop_thread);
    assert_true(now_task.thread != main_id);
    assert_true(now_task.thread == future_task.thread);
    assert_false(now_task.scheduled_in_fn);
    rs_mutex_unlock(&latch.mutex);

    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    rs_event_loop_destroy(loop);
    latch_cleanup(&latch);
}
RS_TEST_PER_BACKEND(event_loop_, xthread_scheduled_tasks_execute)

/* Tasks scheduled from the loop thread go to the scheduler and never run
 * inline; a task scheduled by a task runs on the next tick. */
typedef struct chain {
    rs_task_t first;
    rs_task_t second;
    rs_event_loop_t *loop;
    int first_runs;
    int second_runs;
} chain_t;

static void chain_second_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    chain_t *c = (chain_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        c->second_runs++;
    }
}

static void chain_first_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    chain_t *c = (chain_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        c->first_runs++;
        rs_event_loop_schedule_task_now(c->loop, &c->second);
    }
}

static void task_scheduled_by_task_runs_next_tick(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    chain_t c;
    memset(&c, 0, sizeof(c));
    c.loop = loop;
    rs_task_init(&c.first, chain_first_fn, &c, "first");
    rs_task_init(&c.second, chain_second_fn, &c, "second");
    rs_event_loop_schedule_task_now(loop, &c.first);
    assert_int_equal(c.first_runs, 0); /* not inline */
    assert_true(rs_task_is_scheduled(&c.first));
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(c.first_runs, 1);
    assert_int_equal(c.second_runs, 0);
    assert_true(rs_task_is_scheduled(&c.second));
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(c.second_runs, 1);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(event_loop_, task_scheduled_by_task_runs_next_tick)

typedef struct order_task {
    rs_task_t task;
    int id;
    int *log;
    size_t *n;
} order_task_t;

static void order_task_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    order_task_t *t = (order_task_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        t->log[(*t->n)++] = t->id;
    }
}

static void future_tasks_with_equal_times_run_in_order(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    order_task_t tasks[6];
    int log[6];
    size_t n = 0;
    size_t i;
    uint64_t now = rs_event_loop_now_ns(loop);
    /* ids 0..5 at times T+1ms, T, T+1ms, T, T, T+1ms -> 1,3,4,0,2,5 */
    static const int offsets[6] = {1, 0, 1, 0, 0, 1};
    static const int expect[6] = {1, 3, 4, 0, 2, 5};
    for (i = 0; i < 6; ++i) {
        tasks[i].id = (int)i;
        tasks[i].log = log;
        tasks[i].n = &n;
        rs_task_init(&tasks[i].task, order_task_fn, &tasks[i], "order");
        rs_event_loop_schedule_task_future(loop, &tasks[i].task, now + (uint64_t)offsets[i] * RS_NS_PER_MS);
    }
    {
        uint64_t deadline = deadline_in(WAIT_NS);
        while (n < 6 && rs_clock_now_ns() < deadline) {
            assert_int_equal(rs_event_loop_run_once(loop, 5), RS_OK);
        }
    }
    assert_int_equal(n, 6);
    for (i = 0; i < 6; ++i) {
        assert_int_equal(log[i], expect[i]);
    }
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(event_loop_, future_tasks_with_equal_times_run_in_order)

/* Destroying a started loop cancels a pending future task, and a task still in
 * the cross-thread queue; they see CANCELED and the calling thread counts as
 * the loop thread. */
static void canceled_tasks_run_on_loop_thread(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    latch_t latch;
    probe_t sync_task;
    probe_t future_task;
    probe_t queued_task;
    rs_thread_id_t main_id = rs_thread_current_id();
    latch_init(&latch);
    probe_init(&sync_task, loop, &latch);
    probe_init(&future_task, loop, &latch);
    probe_init(&queued_task, loop, &latch);

    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    rs_event_loop_schedule_task_future(loop, &future_task.task, rs_event_loop_now_ns(loop) + 3600 * RS_NS_PER_SEC);
    rs_event_loop_schedule_task_now(loop, &sync_task.task);
    assert_true(latch_wait(&latch, 1)); /* the future task has reached the scheduler */

    rs_event_loop_destroy(loop); /* stops and joins, then cancels */

    assert_int_equal(future_task.runs, 0);
    assert_int_equal(future_task.cancels, 1);
    assert_true(future_task.on_loop_thread);
    assert_true(future_task.thread == main_id);
    latch_cleanup(&latch);

    /* a stopped loop with a task in the cross-thread queue */
    latch_init(&latch);
    loop = loop_new(b);
    probe_init(&sync_task, loop, &latch);
    probe_init(&queued_task, loop, &latch);
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    rs_event_loop_schedule_task_now(loop, &sync_task.task);
    assert_true(latch_wait(&latch, 1));
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    rs_event_loop_schedule_task_now(loop, &queued_task.task);
    rs_event_loop_destroy(loop);
    assert_int_equal(queued_task.runs, 0);
    assert_int_equal(queued_task.cancels, 1);
    assert_true(queued_task.on_loop_thread);
    latch_cleanup(&latch);
}
RS_TEST_PER_BACKEND(event_loop_, canceled_tasks_run_on_loop_thread)

/* A never-started loop destroyed with tasks from another thread pending. */
typedef struct xsched {
    rs_event_loop_t *loop;
    rs_task_t *tasks[4];
    size_t n;
    bool future;
} xsched_t;

static void xsched_main(void *ud) {
    xsched_t *x = (xsched_t *)ud;
    size_t i;
    for (i = 0; i < x->n; ++i) {
        if (x->future) {
            rs_event_loop_schedule_task_future(x->loop, x->tasks[i], rs_event_loop_now_ns(x->loop));
        } else {
            rs_event_loop_schedule_task_now(x->loop, x->tasks[i]);
        }
    }
}

static void destroy_cancels_tasks_of_a_loop_that_never_ran(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    probe_t local_now;
    probe_t local_future;
    probe_t remote;
    xsched_t x;
    probe_init(&local_now, loop, NULL);
    probe_init(&local_future, loop, NULL);
    probe_init(&remote, loop, NULL);
    rs_event_loop_schedule_task_now(loop, &local_now.task);
    rs_event_loop_schedule_task_future(loop, &local_future.task, rs_event_loop_now_ns(loop) + RS_NS_PER_SEC);
    memset(&x, 0, sizeof(x));
    x.loop = loop;
    x.tasks[0] = &remote.task;
    x.n = 1;
    run_on_other_thread(xsched_main, &x);
    rs_event_loop_destroy(loop);
    assert_int_equal(local_now.runs + local_future.runs + remote.runs, 0);
    assert_int_equal(local_now.cancels, 1);
    assert_int_equal(local_future.cancels, 1);
    assert_int_equal(remote.cancels, 1);
    assert_true(local_now.on_loop_thread);
    assert_true(remote.on_loop_thread);
}
RS_TEST_PER_BACKEND(event_loop_, destroy_cancels_tasks_of_a_loop_that_never_ran)

static void cancel_task_runs_it_once_with_canceled(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    probe_t future_task;
    probe_t now_task;
    probe_t never;
    probe_init(&future_task, loop, NULL);
    probe_init(&now_task, loop, NULL);
    probe_init(&never, loop, NULL);
    rs_event_loop_schedule_task_future(loop, &future_task.task, rs_event_loop_now_ns(loop) + 3600 * RS_NS_PER_SEC);
    rs_event_loop_schedule_task_now(loop, &now_task.task);
    assert_int_equal(rs_event_loop_cancel_task(loop, &future_task.task), RS_OK);
    assert_int_equal(future_task.cancels, 1);
    assert_true(future_task.on_loop_thread);
    assert_int_equal(rs_event_loop_cancel_task(loop, &now_task.task), RS_OK);
    assert_int_equal(now_task.cancels, 1);
    /* again, and a task that was never scheduled: left alone */
    assert_int_equal(rs_event_loop_cancel_task(loop, &future_task.task), RS_OK);
    assert_int_equal(rs_event_loop_cancel_task(loop, &never.task), RS_OK);
    run_ticks(loop, 2, 0);
    assert_int_equal(future_task.cancels + now_task.cancels + never.cancels, 2);
    assert_int_equal(future_task.runs + now_task.runs + never.runs, 0);
    rs_event_loop_destroy(loop);
    assert_int_equal(future_task.cancels + now_task.cancels + never.cancels, 2);
}
RS_TEST_PER_BACKEND(event_loop_, cancel_task_runs_it_once_with_canceled)

/* Two future tasks due in the same tick: the first cancels the second, which
 * must then run once, CANCELED, and never RUN. */
typedef struct same_tick {
    rs_task_t a;
    rs_task_t b;
    rs_event_loop_t *loop;
    int a_runs;
    int b_runs;
    int b_cancels;
    bool b_scheduled_seen_by_a;
    int cancel_rc;
} same_tick_t;

static void same_tick_b_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    same_tick_t *c = (same_tick_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        c->b_runs++;
    } else {
        c->b_cancels++;
    }
}

static void same_tick_a_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    same_tick_t *c = (same_tick_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        c->a_runs++;
        c->b_scheduled_seen_by_a = rs_task_is_scheduled(&c->b);
        c->cancel_rc = rs_event_loop_cancel_task(c->loop, &c->b);
    }
}

static void cancel_by_earlier_task_of_the_same_tick(rs_event_loop_backend_t b) {
    uint64_t fake = RS_NS_PER_SEC;
    rs_event_loop_t *loop = loop_new_with(b, fake_clock_fn, &fake);
    same_tick_t c;
    int pass;
    for (pass = 0; pass < 2; ++pass) {
        memset(&c, 0, sizeof(c));
        c.loop = loop;
        rs_task_init(&c.a, same_tick_a_fn, &c, "a");
        rs_task_init(&c.b, same_tick_b_fn, &c, "b");
        if (pass == 0) { /* both timed, due together */
            rs_event_loop_schedule_task_future(loop, &c.a, fake + 10);
            rs_event_loop_schedule_task_future(loop, &c.b, fake + 20);
        } else { /* both ASAP */
            rs_event_loop_schedule_task_now(loop, &c.a);
            rs_event_loop_schedule_task_now(loop, &c.b);
        }
        fake_clock_set(&fake, fake + RS_NS_PER_SEC);
        run_ticks(loop, 1, 0);
        assert_int_equal(c.a_runs, 1);
        assert_int_equal(c.cancel_rc, RS_OK);
        assert_int_equal(c.b_runs, 0); /* canceled before its turn: never RUN */
        assert_int_equal(c.b_cancels, 1);
        assert_true(c.b_scheduled_seen_by_a);
        run_ticks(loop, 1, 0);
        assert_int_equal(c.b_runs + c.b_cancels, 1);
    }
    rs_event_loop_destroy(loop);
    assert_int_equal(c.b_runs + c.b_cancels, 1);
}
RS_TEST_PER_BACKEND(event_loop_, cancel_by_earlier_task_of_the_same_tick)

/* A task another thread scheduled, still in the cross-thread queue, is
 * scheduled: canceling it from the loop thread runs it once, CANCELED. */
static void cancel_of_task_still_in_cross_thread_queue(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    probe_t t;
    xsched_t x;
    rs_event_loop_stats_t s;
    probe_init(&t, loop, NULL);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK); /* this thread drives it */
    memset(&x, 0, sizeof(x));
    x.loop = loop;
    x.tasks[0] = &t.task;
    x.n = 1;
    run_on_other_thread(xsched_main, &x);
    assert_true(rs_task_is_scheduled(&t.task));
    assert_int_equal(rs_event_loop_cancel_task(loop, &t.task), RS_OK);
    assert_int_equal(t.cancels, 1);
    assert_true(t.on_loop_thread);
    assert_false(rs_task_is_scheduled(&t.task));
    run_ticks(loop, 2, 0);
    assert_int_equal(t.runs, 0);
    assert_int_equal(t.cancels, 1);
    rs_event_loop_get_stats(loop, &s);
    assert_int_equal(s.tasks_run, 1); /* "task functions called (run or canceled)" */
    rs_event_loop_destroy(loop);
    assert_int_equal(t.cancels, 1);
}
RS_TEST_PER_BACKEND(event_loop_, cancel_of_task_still_in_cross_thread_queue)

/* run_once from inside a task or an I/O callback of a run_once tick. */
typedef struct reentry {
    rs_task_t task;
    rs_event_loop_t *loop;
    rs_io_handle_t handle;
    int task_rc;
    int cb_rc;
    int cb_calls;
} reentry_t;

static void reentry_task_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    reentry_t *r = (reentry_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        r->task_rc = rs_event_loop_run_once(r->loop, 0);
    }
}

static void reentry_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    reentry_t *r = (reentry_t *)user_data;
    (void)events;
    r->cb_calls++;
    r->cb_rc = rs_event_loop_run_once(loop, 0);
    rs_event_loop_unsubscribe(loop, handle);
}

static void run_once_reentered_from_its_own_tick_is_busy(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    reentry_t r;
    int sv[2];
    memset(&r, 0, sizeof(r));
    r.loop = loop;
    r.task_rc = 1;
    r.cb_rc = 1;
    make_socketpair(sv);
    r.handle.fd = sv[0];
    rs_task_init(&r.task, reentry_task_fn, &r, "reentry");
    rs_event_loop_schedule_task_now(loop, &r.task);
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_WRITABLE, reentry_cb, &r), RS_OK);
    assert_true(run_until(loop, &r.cb_calls));
    assert_int_equal(r.task_rc, RS_EBUSY);
    assert_int_equal(r.cb_rc, RS_EBUSY);
    rs_event_loop_destroy(loop);
    close(sv[0]);
    close(sv[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, run_once_reentered_from_its_own_tick_is_busy)

/* At destroy, canceled tasks that schedule more tasks (now, future, and
 * serialized), unsubscribe a handle, or a local object's on_remove that
 * schedules a task: everything is canceled exactly once and released. */
typedef struct cascade {
    rs_event_loop_t *loop;
    rs_task_t root;
    rs_task_t child_now;
    rs_task_t child_future;
    rs_task_t child_serial;
    rs_task_t from_on_remove;
    rs_io_handle_t handle;
    int runs[5];
    int cancels[5];
    int unsub_rc;
    bool on_loop[5];
} cascade_t;

static void cascade_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    cascade_t *c = (cascade_t *)arg;
    int i = task == &c->root ? 0 : task == &c->child_now ? 1 : task == &c->child_future ? 2
          : task == &c->child_serial ? 3 : 4;
    c->on_loop[i] = rs_event_loop_is_on_loop_thread(c->loop);
    if (status == RS_TASK_STATUS_RUN) {
        c->runs[i]++;
        return;
    }
    c->cancels[i]++;
    if (i == 0) {
        rs_event_loop_schedule_task_now(c->loop, &c->child_now);
        rs_event_loop_schedule_task_future(c->loop, &c->child_future, rs_event_loop_now_ns(c->loop));
        rs_event_loop_schedule_task_now_serialized(c->loop, &c->child_serial);
        c->unsub_rc = rs_event_loop_unsubscribe(c->loop, &c->handle);
    }
}

static void cascade_on_remove(void *key, void *object, void *user_data) {
    cascade_t *c = (cascade_t *)user_data;
    (void)key;
    (void)object;
    rs_event_loop_schedule_task_now(c->loop, &c->from_on_remove);
}

static void destroy_cancels_tasks_scheduled_while_canceling(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    static int key;
    cascade_t c;
    int fds[2];
    int i;
    memset(&c, 0, sizeof(c));
    c.loop = loop_new(b);
    make_pipe(fds);
    c.handle.fd = fds[0];
    rs_task_init(&c.root, cascade_fn, &c, "root");
    rs_task_init(&c.child_now, cascade_fn, &c, "child-now");
    rs_task_init(&c.child_future, cascade_fn, &c, "child-future");
    rs_task_init(&c.child_serial, cascade_fn, &c, "child-serial");
    rs_task_init(&c.from_on_remove, cascade_fn, &c, "from-on-remove");
    assert_int_equal(rs_event_loop_subscribe(c.loop, &c.handle, RS_IO_READABLE, noop_io_cb_fwd, NULL), RS_OK);
    assert_int_equal(rs_event_loop_put_local_object(c.loop, &key, &key, cascade_on_remove, &c), RS_OK);
    rs_event_loop_schedule_task_future(c.loop, &c.root, rs_event_loop_now_ns(c.loop) + 3600 * RS_NS_PER_SEC);
    assert_int_equal(rs_event_loop_start(c.loop), RS_OK);
    rs_event_loop_destroy(c.loop);
    assert_int_equal(c.unsub_rc, RS_OK);
    for (i = 0; i < 5; ++i) {
        assert_int_equal(c.runs[i], 0);
        assert_int_equal(c.cancels[i], 1);
        assert_true(c.on_loop[i]);
    }
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, destroy_cancels_tasks_scheduled_while_canceling)

/* A future task never runs before its time on the loop's clock. */
typedef struct due_check {
    rs_task_t task;
    rs_event_loop_t *loop;
    uint64_t run_at;
    latch_t latch;
    uint64_t seen_now; /* under latch.mutex */
} due_check_t;

static void due_check_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    due_check_t *d = (due_check_t *)arg;
    uint64_t now = rs_event_loop_now_ns(d->loop);
    (void)task;
    (void)status;
    rs_mutex_lock(&d->latch.mutex);
    d->seen_now = now;
    d->latch.count++;
    rs_condvar_broadcast(&d->latch.cond);
    rs_mutex_unlock(&d->latch.mutex);
}

static void future_task_never_runs_early(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    due_check_t d[3];
    static const uint64_t delays_us[3] = {1500, 10000, 25300};
    int i;
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    for (i = 0; i < 3; ++i) {
        memset(&d[i], 0, sizeof(d[i]));
        latch_init(&d[i].latch);
        d[i].loop = loop;
        d[i].run_at = rs_event_loop_now_ns(loop) + delays_us[i] * 1000;
        rs_task_init(&d[i].task, due_check_fn, &d[i], "due");
        rs_event_loop_schedule_task_future(loop, &d[i].task, d[i].run_at);
    }
    for (i = 0; i < 3; ++i) {
        assert_true(latch_wait(&d[i].latch, 1));
        rs_mutex_lock(&d[i].latch.mutex);
        assert_true(d[i].seen_now >= d[i].run_at);
        rs_mutex_unlock(&d[i].latch.mutex);
    }
    rs_event_loop_destroy(loop);
    for (i = 0; i < 3; ++i) {
        latch_cleanup(&d[i].latch);
    }
}
RS_TEST_PER_BACKEND(event_loop_, future_task_never_runs_early)

/* 4 producers x 250k tasks through the serialized queue: each producer's tasks
 * run in its own order, and all of them run. */
#define FIFO_PRODUCERS 4
#define FIFO_PER_PRODUCER 250000

typedef struct fifo_ctx fifo_ctx_t;

typedef struct fifo_task {
    rs_task_t task;
    fifo_ctx_t *ctx;
    uint32_t producer;
    uint32_t seq;
} fifo_task_t;

struct fifo_ctx {
    rs_event_loop_t *loop;
    fifo_task_t *tasks;
    /* loop thread only */
    uint32_t next_seq[FIFO_PRODUCERS];
    uint64_t local_done;
    /* published under latch.mutex */
    latch_t latch;
    uint64_t out_of_order;
    uint64_t canceled;
    uint64_t off_thread;
};

static void fifo_task_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    fifo_task_t *t = RS_CONTAINER_OF(task, fifo_task_t, task);
    fifo_ctx_t *c = (fifo_ctx_t *)arg;
    bool bad_order = t->seq != c->next_seq[t->producer];
    bool off = !rs_event_loop_is_on_loop_thread(c->loop);
    c->next_seq[t->producer] = t->seq + 1;
    c->local_done++;
    if (bad_order || off || status != RS_TASK_STATUS_RUN || (c->local_done & 1023) == 0 ||
        c->local_done == (uint64_t)FIFO_PRODUCERS * FIFO_PER_PRODUCER) {
        rs_mutex_lock(&c->latch.mutex);
        c->out_of_order += bad_order;
        c->off_thread += off;
        c->canceled += status != RS_TASK_STATUS_RUN;
        c->latch.count = c->local_done;
        rs_condvar_broadcast(&c->latch.cond);
        rs_mutex_unlock(&c->latch.mutex);
    }
}

typedef struct fifo_producer {
    rs_thread_t thread;
    fifo_ctx_t *ctx;
    uint32_t index;
} fifo_producer_t;

static void fifo_producer_main(void *ud) {
    fifo_producer_t *p = (fifo_producer_t *)ud;
    fifo_task_t *base = p->ctx->tasks + (size_t)p->index * FIFO_PER_PRODUCER;
    uint32_t i;
    for (i = 0; i < FIFO_PER_PRODUCER; ++i) {
        rs_event_loop_schedule_task_now_serialized(p->ctx->loop, &base[i].task);
    }
}

static void serialized_scheduling_keeps_fifo_across_4_producers(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    fifo_ctx_t *c = (fifo_ctx_t *)calloc(1, sizeof(fifo_ctx_t));
    fifo_producer_t producers[FIFO_PRODUCERS];
    const uint64_t total = (uint64_t)FIFO_PRODUCERS * FIFO_PER_PRODUCER;
    uint32_t p;
    size_t i;
    assert_non_null(c);
    c->tasks = (fifo_task_t *)calloc((size_t)total, sizeof(fifo_task_t));
    assert_non_null(c->tasks);
    c->loop = loop_new(b);
    latch_init(&c->latch);
    for (i = 0; i < total; ++i) {
        c->tasks[i].ctx = c;
        c->tasks[i].producer = (uint32_t)(i / FIFO_PER_PRODUCER);
        c->tasks[i].seq = (uint32_t)(i % FIFO_PER_PRODUCER);
        rs_task_init(&c->tasks[i].task, fifo_task_fn, c, "fifo");
    }
    assert_int_equal(rs_event_loop_start(c->loop), RS_OK);
    for (p = 0; p < FIFO_PRODUCERS; ++p) {
        producers[p].ctx = c;
        producers[p].index = p;
        assert_int_equal(rs_thread_launch(&producers[p].thread, fifo_producer_main, &producers[p], NULL), RS_OK);
    }
    for (p = 0; p < FIFO_PRODUCERS; ++p) {
        assert_int_equal(rs_thread_join(&producers[p].thread), RS_OK);
    }
    assert_true(latch_wait(&c->latch, total));
    assert_int_equal(rs_event_loop_stop(c->loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(c->loop), RS_OK);
    rs_event_loop_destroy(c->loop);
    assert_int_equal(c->latch.count, total);
    assert_int_equal(c->out_of_order, 0);
    assert_int_equal(c->canceled, 0);
    assert_int_equal(c->off_thread, 0);
    for (p = 0; p < FIFO_PRODUCERS; ++p) {
        assert_int_equal(c->next_seq[p], FIFO_PER_PRODUCER);
    }
    latch_cleanup(&c->latch);
    free(c->tasks);
    free(c);
}
RS_TEST_PER_BACKEND(event_loop_, serialized_scheduling_keeps_fifo_across_4_producers)

/* Producers take a global ticket and schedule under one mutex: the loop must
 * run the tasks in ticket order (the serialized order across threads). */
#define TICKET_PRODUCERS 4
#define TICKET_PER_PRODUCER 5000

typedef struct ticket_ctx {
    rs_event_loop_t *loop;
    rs_mutex_t order_mutex;
    uint32_t next_ticket;     /* under order_mutex */
    struct ticket_task *tasks;
    uint32_t expected;        /* loop thread only */
    latch_t latch;
    uint64_t out_of_order;    /* under latch.mutex */
} ticket_ctx_t;

typedef struct ticket_task {
    rs_task_t task;
    uint32_t ticket;
} ticket_task_t;

static void ticket_task_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    ticket_task_t *t = RS_CONTAINER_OF(task, ticket_task_t, task);
    ticket_ctx_t *c = (ticket_ctx_t *)arg;
    bool bad = t->ticket != c->expected || status != RS_TASK_STATUS_RUN;
    c->expected = t->ticket + 1;
    rs_mutex_lock(&c->latch.mutex);
    c->out_of_order += bad;
    c->latch.count++;
    rs_condvar_broadcast(&c->latch.cond);
    rs_mutex_unlock(&c->latch.mutex);
}

static void ticket_producer_main(void *ud) {
    ticket_ctx_t *c = (ticket_ctx_t *)ud;
    int i;
    for (i = 0; i < TICKET_PER_PRODUCER; ++i) {
        ticket_task_t *t;
        rs_mutex_lock(&c->order_mutex);
        t = &c->tasks[c->next_ticket];
        t->ticket = c->next_ticket++;
        rs_event_loop_schedule_task_now_serialized(c->loop, &t->task);
        rs_mutex_unlock(&c->order_mutex);
    }
}

static void serialized_scheduling_keeps_global_order(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    ticket_ctx_t c;
    rs_thread_t threads[TICKET_PRODUCERS];
    const uint32_t total = TICKET_PRODUCERS * TICKET_PER_PRODUCER;
    uint32_t i;
    memset(&c, 0, sizeof(c));
    c.tasks = (ticket_task_t *)calloc(total, sizeof(ticket_task_t));
    assert_non_null(c.tasks);
    for (i = 0; i < total; ++i) {
        rs_task_init(&c.tasks[i].task, ticket_task_fn, &c, "ticket");
    }
    assert_int_equal(rs_mutex_init(&c.order_mutex), RS_OK);
    latch_init(&c.latch);
    c.loop = loop_new(b);
    assert_int_equal(rs_event_loop_start(c.loop), RS_OK);
    for (i = 0; i < TICKET_PRODUCERS; ++i) {
        assert_int_equal(rs_thread_launch(&threads[i], ticket_producer_main, &c, NULL), RS_OK);
    }
    for (i = 0; i < TICKET_PRODUCERS; ++i) {
        assert_int_equal(rs_thread_join(&threads[i]), RS_OK);
    }
    assert_true(latch_wait(&c.latch, total));
    rs_event_loop_destroy(c.loop);
    assert_int_equal(c.out_of_order, 0);
    assert_int_equal(c.expected, total);
    rs_mutex_cleanup(&c.order_mutex);
    latch_cleanup(&c.latch);
    free(c.tasks);
}
RS_TEST_PER_BACKEND(event_loop_, serialized_scheduling_keeps_global_order)

/* ---------------------------------------------------------- I/O readiness */

static void subscribe_and_unsubscribe(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    int fds[2];
    io_rec_t r;
    make_pipe(fds);
    io_rec_init(&r, fds[0]);
    assert_null(r.handle.impl);
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_READABLE, io_rec_cb, &r), RS_OK);
    assert_non_null(r.handle.impl);
    assert_int_equal(r.calls, 0);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_OK);
    assert_null(r.handle.impl);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_EINVAL);
    /* the same handle can be subscribed again */
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_READABLE | RS_IO_WRITABLE, io_rec_cb, &r),
                     RS_OK);
    run_ticks(loop, 1, 0);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_OK);
    run_ticks(loop, 2, 0);
    assert_int_equal(r.calls, 0);
    rs_event_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, subscribe_and_unsubscribe)

static void writable_event_on_subscribe(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    int sv[2];
    io_rec_t r;
    make_socketpair(sv);
    io_rec_init(&r, sv[0]);
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_WRITABLE, io_rec_cb, &r), RS_OK);
    assert_int_equal(r.calls, 0); /* never inline */
    assert_true(run_until(loop, &r.calls));
    assert_true(r.last_events & RS_IO_WRITABLE);
    assert_false(r.last_events & RS_IO_READABLE);
    assert_true(r.on_loop_thread);
    /* level-triggered: still writable, reported again */
    {
        int before = r.calls;
        run_ticks(loop, 1, 100);
        assert_int_equal(r.calls, before + 1);
    }
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_OK);
    rs_event_loop_destroy(loop);
    close(sv[0]);
    close(sv[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, writable_event_on_subscribe)

static void no_readable_event_before_write(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    int fds[2];
    int sv[2];
    io_rec_t r;
    io_rec_t s;
    make_pipe(fds);
    make_socketpair(sv);
    io_rec_init(&r, fds[0]);
    io_rec_init(&s, sv[0]);
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_READABLE, io_rec_cb, &r), RS_OK);
    assert_int_equal(rs_event_loop_subscribe(loop, &s.handle, RS_IO_READABLE, io_rec_cb, &s), RS_OK);
    run_ticks(loop, 3, 0);
    run_ticks(loop, 1, 50);
    assert_int_equal(r.calls, 0);
    assert_int_equal(s.calls, 0);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_OK);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &s.handle), RS_OK);
    rs_event_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
    close(sv[0]);
    close(sv[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, no_readable_event_before_write)

static void readable_event_after_write(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    int fds[2];
    io_rec_t r;
    make_pipe(fds);
    io_rec_init(&r, fds[0]);
    r.drain_in_cb = true;
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_READABLE, io_rec_cb, &r), RS_OK);
    run_ticks(loop, 1, 0);
    assert_int_equal(r.calls, 0);
    write_byte(fds[1]);
    assert_true(run_until(loop, &r.calls));
    assert_int_equal(r.calls, 1);
    assert_true(r.last_events & RS_IO_READABLE);
    assert_true(r.on_loop_thread);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_OK);
    rs_event_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, readable_event_after_write)

/* Same, with the loop on its own thread woken by the write. */
typedef struct threaded_io {
    rs_io_handle_t handle;
    latch_t latch;
    int events; /* under latch.mutex */
} threaded_io_t;

static void threaded_io_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    threaded_io_t *t = (threaded_io_t *)user_data;
    drain_fd(handle->fd);
    rs_event_loop_unsubscribe(loop, handle);
    rs_mutex_lock(&t->latch.mutex);
    t->events = events;
    t->latch.count++;
    rs_condvar_broadcast(&t->latch.cond);
    rs_mutex_unlock(&t->latch.mutex);
}

static void readable_event_wakes_a_running_loop(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    int fds[2];
    threaded_io_t t;
    make_pipe(fds);
    memset(&t, 0, sizeof(t));
    latch_init(&t.latch);
    t.handle.fd = fds[0];
    /* before the loop first runs, the creating thread is the loop thread */
    assert_int_equal(rs_event_loop_subscribe(loop, &t.handle, RS_IO_READABLE, threaded_io_cb, &t), RS_OK);
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    rs_thread_sleep_ns(5 * RS_NS_PER_MS); /* let it block in its wait */
    write_byte(fds[1]);
    assert_true(latch_wait(&t.latch, 1));
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    rs_event_loop_destroy(loop);
    assert_true(t.events & RS_IO_READABLE);
    assert_int_equal(t.latch.count, 1);
    latch_cleanup(&t.latch);
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, readable_event_wakes_a_running_loop)

static void readable_event_on_subscribe_if_data_present(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    int fds[2];
    io_rec_t r;
    make_pipe(fds);
    write_byte(fds[1]);
    io_rec_init(&r, fds[0]);
    r.drain_in_cb = true;
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_READABLE, io_rec_cb, &r), RS_OK);
    assert_int_equal(r.calls, 0);
    assert_true(run_until(loop, &r.calls));
    assert_true(r.last_events & RS_IO_READABLE);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_OK);
    rs_event_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, readable_event_on_subscribe_if_data_present)

static void readable_event_again_the_second_time(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    int fds[2];
    io_rec_t r;
    make_pipe(fds);
    io_rec_init(&r, fds[0]);
    r.drain_in_cb = true;
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_READABLE, io_rec_cb, &r), RS_OK);
    write_byte(fds[1]);
    write_byte(fds[1]);
    assert_true(run_until(loop, &r.calls));
    assert_int_equal(r.calls, 1);
    /* everything was read: no more events */
    run_ticks(loop, 3, 0);
    run_ticks(loop, 1, 20);
    assert_int_equal(r.calls, 1);
    write_byte(fds[1]);
    {
        uint64_t deadline = deadline_in(WAIT_NS);
        while (r.calls < 2 && rs_clock_now_ns() < deadline) {
            run_ticks(loop, 1, 10);
        }
    }
    assert_int_equal(r.calls, 2);
    assert_true(r.last_events & RS_IO_READABLE);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_OK);
    rs_event_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, readable_event_again_the_second_time)

/* Level-triggered: data left unread is reported on every tick. */
static void unread_data_is_reported_every_tick(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    int fds[2];
    io_rec_t r;
    make_pipe(fds);
    io_rec_init(&r, fds[0]);
    write_byte(fds[1]);
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_READABLE, io_rec_cb, &r), RS_OK);
    run_ticks(loop, 3, 100);
    assert_int_equal(r.calls, 3);
    drain_fd(fds[0]);
    run_ticks(loop, 2, 0);
    assert_int_equal(r.calls, 3);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_OK);
    rs_event_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, unread_data_is_reported_every_tick)

static void update_subscription_changes_reported_events(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    int sv[2];
    io_rec_t r;
    make_socketpair(sv);
    io_rec_init(&r, sv[0]);
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_READABLE, io_rec_cb, &r), RS_OK);
    run_ticks(loop, 2, 0);
    assert_int_equal(r.calls, 0);
    assert_int_equal(rs_event_loop_update_subscription(loop, &r.handle, RS_IO_WRITABLE), RS_OK);
    assert_true(run_until(loop, &r.calls));
    assert_true(r.last_events & RS_IO_WRITABLE);
    assert_int_equal(rs_event_loop_update_subscription(loop, &r.handle, RS_IO_READABLE), RS_OK);
    r.calls = 0;
    r.all_events = 0;
    run_ticks(loop, 3, 0);
    assert_int_equal(r.calls, 0);
    write_byte(sv[1]);
    r.drain_in_cb = true;
    assert_true(run_until(loop, &r.calls));
    assert_true(r.all_events & RS_IO_READABLE);
    assert_false(r.all_events & RS_IO_WRITABLE);
    assert_int_equal(rs_event_loop_update_subscription(loop, &r.handle, 0), RS_EINVAL);
    assert_int_equal(rs_event_loop_update_subscription(loop, &r.handle, RS_IO_HANGUP), RS_EINVAL);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_OK);
    assert_int_equal(rs_event_loop_update_subscription(loop, &r.handle, RS_IO_READABLE), RS_EINVAL);
    rs_event_loop_destroy(loop);
    close(sv[0]);
    close(sv[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, update_subscription_changes_reported_events)

static void hangup_is_reported_when_the_writer_closes(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    int fds[2];
    io_rec_t r;
    make_pipe(fds);
    io_rec_init(&r, fds[0]);
    r.unsubscribe_in_cb = true; /* a hang-up stays reported until unsubscribed */
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_READABLE, io_rec_cb, &r), RS_OK);
    close(fds[1]);
    assert_true(run_until(loop, &r.calls));
    assert_true(r.last_events & RS_IO_HANGUP);
    run_ticks(loop, 2, 0);
    assert_int_equal(r.calls, 1);
    assert_null(r.handle.impl);
    rs_event_loop_destroy(loop);
    close(fds[0]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, hangup_is_reported_when_the_writer_closes)

static void no_events_after_unsubscribe(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    int fds[2];
    int sv[2];
    io_rec_t r;
    io_rec_t w;
    make_pipe(fds);
    make_socketpair(sv);
    /* readable data pending, unsubscribed before the loop ever looked */
    io_rec_init(&r, fds[0]);
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_READABLE, io_rec_cb, &r), RS_OK);
    write_byte(fds[1]);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_OK);
    /* always writable, unsubscribed inside its first callback */
    io_rec_init(&w, sv[0]);
    w.unsubscribe_in_cb = true;
    assert_int_equal(rs_event_loop_subscribe(loop, &w.handle, RS_IO_WRITABLE, io_rec_cb, &w), RS_OK);
    assert_true(run_until(loop, &w.calls));
    run_ticks(loop, 3, 0);
    run_ticks(loop, 1, 20);
    write_byte(fds[1]);
    write_byte(sv[1]);
    run_ticks(loop, 2, 0);
    assert_int_equal(r.calls, 0);
    assert_int_equal(w.calls, 1);
    rs_event_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
    close(sv[0]);
    close(sv[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, no_events_after_unsubscribe)

/* Two handles ready in the same tick. Whichever callback runs first
 * unsubscribes the other, closes its fd and frees its handle: the other
 * callback must never run. */
typedef struct batch_ctx {
    rs_io_handle_t *handles[2];
    int read_fds[2];
    int write_fds[2];
    int calls[2];
    int first;
    int unsub_rc;
} batch_ctx_t;

static void batch_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    batch_ctx_t *c = (batch_ctx_t *)user_data;
    int me = handle == c->handles[0] ? 0 : 1;
    int other = 1 - me;
    (void)events;
    c->calls[me]++;
    if (c->first < 0) {
        c->first = me;
        c->unsub_rc = rs_event_loop_unsubscribe(loop, c->handles[other]);
        close(c->read_fds[other]);
        c->read_fds[other] = -1;
        memset(c->handles[other], 0xEE, sizeof(rs_io_handle_t));
        rs_mem_free(&rs_test_allocator, c->handles[other]);
        c->handles[other] = NULL;
    }
    drain_fd(handle->fd);
}

static void unsubscribe_inside_callback_of_same_batch(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    batch_ctx_t c;
    int i;
    int p0[2];
    int p1[2];
    memset(&c, 0, sizeof(c));
    c.first = -1;
    make_pipe(p0);
    make_pipe(p1);
    c.read_fds[0] = p0[0];
    c.write_fds[0] = p0[1];
    c.read_fds[1] = p1[0];
    c.write_fds[1] = p1[1];
    for (i = 0; i < 2; ++i) {
        c.handles[i] = (rs_io_handle_t *)rs_mem_calloc(&rs_test_allocator, 1, sizeof(rs_io_handle_t));
        assert_non_null(c.handles[i]);
        c.handles[i]->fd = c.read_fds[i];
        assert_int_equal(rs_event_loop_subscribe(loop, c.handles[i], RS_IO_READABLE, batch_cb, &c), RS_OK);
        write_byte(c.write_fds[i]);
    }
    /* both are ready now, so one wait returns both */
    assert_int_equal(rs_event_loop_run_once(loop, 1000), RS_OK);
    assert_true(c.first == 0 || c.first == 1);
    assert_int_equal(c.unsub_rc, RS_OK);
    assert_int_equal(c.calls[c.first], 1);
    assert_int_equal(c.calls[1 - c.first], 0);
    run_ticks(loop, 3, 0);
    assert_int_equal(c.calls[1 - c.first], 0);
    assert_int_equal(rs_event_loop_unsubscribe(loop, c.handles[c.first]), RS_OK);
    rs_event_loop_destroy(loop);
    rs_mem_free(&rs_test_allocator, c.handles[c.first]);
    close(c.read_fds[c.first]);
    close(c.write_fds[0]);
    close(c.write_fds[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, unsubscribe_inside_callback_of_same_batch)

/* A callback that unsubscribes its own handle, closes the fd and opens a new
 * pipe (likely reusing the fd number) and subscribes it: no stale event is
 * delivered to the new handle's callback from the old registration. */
typedef struct reuse_ctx {
    rs_io_handle_t old_handle;
    rs_io_handle_t new_handle;
    int old_calls;
    int new_calls;
    int new_fds[2];
    int sub_rc;
} reuse_ctx_t;

static void reuse_new_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    reuse_ctx_t *c = (reuse_ctx_t *)user_data;
    (void)loop;
    (void)handle;
    (void)events;
    c->new_calls++;
}

static void reuse_old_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    reuse_ctx_t *c = (reuse_ctx_t *)user_data;
    (void)events;
    c->old_calls++;
    rs_event_loop_unsubscribe(loop, handle);
    close(handle->fd);
    if (rs_test_pipe_nonblocking(c->new_fds) == 0) {
        c->new_handle.fd = c->new_fds[0];
        c->sub_rc = rs_event_loop_subscribe(loop, &c->new_handle, RS_IO_READABLE, reuse_new_cb, c);
    } else {
        c->sub_rc = -1000;
    }
}

static void closed_fd_reused_in_callback_gets_no_stale_events(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    reuse_ctx_t c;
    int fds[2];
    memset(&c, 0, sizeof(c));
    make_pipe(fds);
    c.old_handle.fd = fds[0];
    assert_int_equal(rs_event_loop_subscribe(loop, &c.old_handle, RS_IO_READABLE, reuse_old_cb, &c), RS_OK);
    write_byte(fds[1]);
    assert_true(run_until(loop, &c.old_calls));
    assert_int_equal(c.sub_rc, RS_OK);
    run_ticks(loop, 3, 0);
    run_ticks(loop, 1, 20);
    assert_int_equal(c.old_calls, 1);
    assert_int_equal(c.new_calls, 0); /* the new pipe is empty */
    write_byte(c.new_fds[1]);
    assert_true(run_until(loop, &c.new_calls));
    assert_int_equal(c.old_calls, 1);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &c.new_handle), RS_OK);
    rs_event_loop_destroy(loop);
    close(fds[1]);
    close(c.new_fds[0]);
    close(c.new_fds[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, closed_fd_reused_in_callback_gets_no_stale_events)

static void invalid_masks_are_rejected(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    int fds[2];
    io_rec_t r;
    static const int bad[] = {0, 16, RS_IO_HANGUP, RS_IO_ERROR, RS_IO_HANGUP | RS_IO_ERROR, RS_IO_READABLE | 32,
                              RS_IO_READABLE | RS_IO_HANGUP, RS_IO_WRITABLE | RS_IO_ERROR, -1};
    size_t i;
    make_pipe(fds);
    io_rec_init(&r, fds[0]);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, bad[i], io_rec_cb, &r), RS_EINVAL);
        assert_null(r.handle.impl);
    }
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_READABLE, io_rec_cb, &r), RS_OK);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        assert_int_equal(rs_event_loop_update_subscription(loop, &r.handle, bad[i]), RS_EINVAL);
    }
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_OK);
    run_ticks(loop, 1, 0);
    assert_int_equal(r.calls, 0);
    rs_event_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, invalid_masks_are_rejected)

static void double_subscribe_is_busy(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    int fds[2];
    io_rec_t r;
    io_rec_t r2;
    make_pipe(fds);
    io_rec_init(&r, fds[0]);
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_READABLE, io_rec_cb, &r), RS_OK);
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_READABLE, io_rec_cb, &r), RS_EBUSY);
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_WRITABLE, io_rec_cb, &r), RS_EBUSY);
    /* still subscribed and working */
    write_byte(fds[1]);
    r.drain_in_cb = true;
    assert_true(run_until(loop, &r.calls));
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_OK);
    /* a second handle for the same fd after the first is gone */
    io_rec_init(&r2, fds[0]);
    assert_int_equal(rs_event_loop_subscribe(loop, &r2.handle, RS_IO_READABLE, io_rec_cb, &r2), RS_OK);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r2.handle), RS_OK);
    rs_event_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, double_subscribe_is_busy)

static void unsubscribe_of_unsubscribed_handle_is_invalid(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_event_loop_t *other = loop_new(b);
    int fds[2];
    io_rec_t r;
    make_pipe(fds);
    io_rec_init(&r, fds[0]);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_EINVAL);
    /* subscribed to another loop */
    assert_int_equal(rs_event_loop_subscribe(other, &r.handle, RS_IO_READABLE, io_rec_cb, &r), RS_OK);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_EINVAL);
    assert_int_equal(rs_event_loop_update_subscription(loop, &r.handle, RS_IO_WRITABLE), RS_EINVAL);
    assert_int_equal(rs_event_loop_unsubscribe(other, &r.handle), RS_OK);
    rs_event_loop_destroy(other);
    rs_event_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, unsubscribe_of_unsubscribed_handle_is_invalid)

/* Destroy with subscriptions left behind (idle, ready, unsubscribed in a
 * callback a moment ago) releases everything: cmocka fails on a leak. */
static void destroy_with_live_subscriptions_releases_them(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    int p[3][2];
    io_rec_t r[3];
    int i;
    for (i = 0; i < 3; ++i) {
        make_pipe(p[i]);
        io_rec_init(&r[i], p[i][0]);
        assert_int_equal(rs_event_loop_subscribe(loop, &r[i].handle, RS_IO_READABLE, io_rec_cb, &r[i]), RS_OK);
    }
    r[2].unsubscribe_in_cb = true;
    write_byte(p[1][1]);
    write_byte(p[2][1]);
    assert_true(run_until(loop, &r[2].calls));
    rs_event_loop_destroy(loop);
    for (i = 0; i < 3; ++i) {
        close(p[i][0]);
        close(p[i][1]);
    }

    /* and on a loop that ran on its own thread */
    loop = loop_new(b);
    for (i = 0; i < 3; ++i) {
        make_pipe(p[i]);
        io_rec_init(&r[i], p[i][0]);
        assert_int_equal(rs_event_loop_subscribe(loop, &r[i].handle, RS_IO_READABLE, io_rec_cb, &r[i]), RS_OK);
    }
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    rs_event_loop_destroy(loop); /* without stop: destroy stops and joins */
    for (i = 0; i < 3; ++i) {
        close(p[i][0]);
        close(p[i][1]);
    }
}
RS_TEST_PER_BACKEND_IO(event_loop_, destroy_with_live_subscriptions_releases_them)

/* More handles ready at once than one wait returns (epoll takes 256 per
 * call): level-triggered readiness reports every one within a few ticks. */
#define MANY_READY 300

typedef struct many_ready {
    rs_io_handle_t handle;
    int fds[2];
    int calls;
} many_ready_t;

static void many_ready_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    many_ready_t *m = (many_ready_t *)user_data;
    (void)events;
    m->calls++;
    drain_fd(handle->fd);
    rs_event_loop_unsubscribe(loop, handle);
}

static void more_ready_handles_than_one_batch_are_all_reported(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    many_ready_t *m = (many_ready_t *)calloc(MANY_READY, sizeof(many_ready_t));
    uint64_t deadline = deadline_in(WAIT_NS);
    int total;
    int i;
    assert_non_null(m);
    for (i = 0; i < MANY_READY; ++i) {
        make_pipe(m[i].fds);
        write_byte(m[i].fds[1]);
        m[i].handle.fd = m[i].fds[0];
        assert_int_equal(rs_event_loop_subscribe(loop, &m[i].handle, RS_IO_READABLE, many_ready_cb, &m[i]), RS_OK);
    }
    do {
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
        total = 0;
        for (i = 0; i < MANY_READY; ++i) {
            total += m[i].calls;
        }
    } while (total < MANY_READY && rs_clock_now_ns() < deadline);
    for (i = 0; i < MANY_READY; ++i) {
        assert_int_equal(m[i].calls, 1);
    }
    rs_event_loop_destroy(loop);
    for (i = 0; i < MANY_READY; ++i) {
        close(m[i].fds[0]);
        close(m[i].fds[1]);
    }
    free(m);
}
RS_TEST_PER_BACKEND_IO(event_loop_, more_ready_handles_than_one_batch_are_all_reported)

/* Subscribing a new handle from inside a callback: it is reported on a later
 * tick, never in the batch that was already collected. */
typedef struct late_sub {
    rs_io_handle_t first;
    rs_io_handle_t second;
    int first_calls;
    int second_calls;
    int sub_rc;
    uint64_t first_tick;
    uint64_t second_tick;
    rs_event_loop_t *loop;
} late_sub_t;

static void late_second_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    late_sub_t *l = (late_sub_t *)user_data;
    rs_event_loop_stats_t s;
    (void)events;
    rs_event_loop_get_stats(loop, &s);
    l->second_tick = s.ticks;
    l->second_calls++;
    drain_fd(handle->fd);
    rs_event_loop_unsubscribe(loop, handle);
}

static void late_first_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    late_sub_t *l = (late_sub_t *)user_data;
    rs_event_loop_stats_t s;
    (void)events;
    rs_event_loop_get_stats(loop, &s);
    l->first_tick = s.ticks;
    l->first_calls++;
    drain_fd(handle->fd);
    rs_event_loop_unsubscribe(loop, handle);
    l->sub_rc = rs_event_loop_subscribe(loop, &l->second, RS_IO_READABLE, late_second_cb, l);
}

static void subscribe_inside_callback_is_reported_later(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    late_sub_t l;
    int p1[2];
    int p2[2];
    memset(&l, 0, sizeof(l));
    l.loop = loop;
    make_pipe(p1);
    make_pipe(p2);
    write_byte(p1[1]);
    write_byte(p2[1]); /* the second pipe is ready before it is subscribed */
    l.first.fd = p1[0];
    l.second.fd = p2[0];
    assert_int_equal(rs_event_loop_subscribe(loop, &l.first, RS_IO_READABLE, late_first_cb, &l), RS_OK);
    assert_true(run_until(loop, &l.first_calls));
    assert_int_equal(l.sub_rc, RS_OK);
    assert_int_equal(l.second_calls, 0); /* not inline, not in the same batch */
    assert_true(run_until(loop, &l.second_calls));
    assert_true(l.second_tick > l.first_tick);
    rs_event_loop_destroy(loop);
    close(p1[0]);
    close(p1[1]);
    close(p2[0]);
    close(p2[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, subscribe_inside_callback_is_reported_later)

/* ----------------------------------------------------------- run control */

static void stop_then_restart(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    latch_t latch;
    probe_t first;
    probe_t second;
    latch_init(&latch);
    probe_init(&first, loop, &latch);
    probe_init(&second, loop, &latch);
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    assert_int_equal(rs_event_loop_start(loop), RS_EBUSY);
    rs_event_loop_schedule_task_now(loop, &first.task);
    assert_true(latch_wait(&latch, 1));
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);

    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    rs_event_loop_schedule_task_now(loop, &second.task);
    assert_true(latch_wait(&latch, 2));
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    assert_int_equal(first.runs, 1);
    assert_int_equal(second.runs, 1);
    assert_true(second.on_loop_thread);

    /* and after that, run_once on this thread works */
    probe_init(&first, loop, NULL);
    rs_event_loop_schedule_task_now(loop, &first.task);
    {
        uint64_t deadline = deadline_in(WAIT_NS);
        while (first.runs == 0 && rs_clock_now_ns() < deadline) {
            assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
        }
    }
    assert_int_equal(first.runs, 1);
    assert_true(first.on_loop_thread);
    rs_event_loop_destroy(loop);
    latch_cleanup(&latch);
}
RS_TEST_PER_BACKEND(event_loop_, stop_then_restart)

static void stop_task_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        rs_event_loop_stop((rs_event_loop_t *)arg);
    }
}

static void multiple_stops_are_harmless(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    rs_task_t stopper;
    assert_int_equal(rs_event_loop_stop(loop), RS_OK); /* not running */
    assert_int_equal(rs_event_loop_wait(loop), RS_OK); /* nothing to join */
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);

    /* a stop from inside a task on the loop thread */
    rs_task_init(&stopper, stop_task_fn, loop, "stopper");
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    rs_event_loop_schedule_task_now(loop, &stopper);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK); /* returns once the task stopped it */
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(event_loop_, multiple_stops_are_harmless)

/* A task that reschedules itself every tick does not starve a timer due in
 * 10 ms, nor a readable pipe. */
typedef struct fair_ctx {
    rs_event_loop_t *loop;
    rs_task_t spinner;
    rs_task_t timer;
    rs_io_handle_t handle;
    uint64_t spins;      /* loop thread only */
    latch_t latch;       /* +1 timer, +1 readable */
    int timer_ran;       /* under latch.mutex */
    int readable_seen;   /* under latch.mutex */
} fair_ctx_t;

static void fair_spinner_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    fair_ctx_t *c = (fair_ctx_t *)arg;
    if (status == RS_TASK_STATUS_RUN) {
        c->spins++;
        rs_event_loop_schedule_task_now(c->loop, task);
    }
}

static void fair_timer_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    fair_ctx_t *c = (fair_ctx_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        rs_mutex_lock(&c->latch.mutex);
        c->timer_ran++;
        c->latch.count++;
        rs_condvar_broadcast(&c->latch.cond);
        rs_mutex_unlock(&c->latch.mutex);
    }
}

static void fair_io_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    fair_ctx_t *c = (fair_ctx_t *)user_data;
    (void)events;
    drain_fd(handle->fd);
    rs_event_loop_unsubscribe(loop, handle);
    rs_mutex_lock(&c->latch.mutex);
    c->readable_seen++;
    c->latch.count++;
    rs_condvar_broadcast(&c->latch.cond);
    rs_mutex_unlock(&c->latch.mutex);
}

static void fairness_busy_task_does_not_starve_timers_or_io(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    fair_ctx_t c;
    int fds[2];
    bool ok;
    memset(&c, 0, sizeof(c));
    latch_init(&c.latch);
    c.loop = loop_new(b);
    make_pipe(fds);
    c.handle.fd = fds[0];
    rs_task_init(&c.spinner, fair_spinner_fn, &c, "spinner");
    rs_task_init(&c.timer, fair_timer_fn, &c, "timer");
    assert_int_equal(rs_event_loop_subscribe(c.loop, &c.handle, RS_IO_READABLE, fair_io_cb, &c), RS_OK);
    rs_event_loop_schedule_task_now(c.loop, &c.spinner);
    rs_event_loop_schedule_task_future(c.loop, &c.timer, rs_event_loop_now_ns(c.loop) + 10 * RS_NS_PER_MS);
    assert_int_equal(rs_event_loop_start(c.loop), RS_OK);
    rs_thread_sleep_ns(2 * RS_NS_PER_MS);
    write_byte(fds[1]);
    ok = latch_wait(&c.latch, 2);
    assert_int_equal(rs_event_loop_stop(c.loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(c.loop), RS_OK);
    assert_true(ok);
    assert_int_equal(c.timer_ran, 1);
    assert_int_equal(c.readable_seen, 1);
    assert_true(c.spins > 1);
    rs_event_loop_destroy(c.loop); /* cancels the spinner */
    latch_cleanup(&c.latch);
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, fairness_busy_task_does_not_starve_timers_or_io)

/* 10k cross-thread tasks scheduled while the loop is busy in a task: the
 * wakeups coalesce and every task runs. */
#define COALESCE_TASKS 10000

typedef struct coalesce_ctx {
    rs_task_t gate_task;
    rs_task_t *tasks;
    latch_t gate;       /* count 1: entered; the test adds 1 to open */
    latch_t done;
    int gate_timed_out; /* under gate.mutex */
} coalesce_ctx_t;

static void coalesce_gate_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    coalesce_ctx_t *c = (coalesce_ctx_t *)arg;
    uint64_t deadline = deadline_in(WAIT_NS);
    (void)task;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    rs_mutex_lock(&c->gate.mutex);
    c->gate.count = 1;
    rs_condvar_broadcast(&c->gate.cond);
    while (c->gate.count < 2) {
        if (rs_condvar_wait_until(&c->gate.cond, &c->gate.mutex, deadline) == RS_ETIMEDOUT) {
            c->gate_timed_out = 1;
            break;
        }
    }
    rs_mutex_unlock(&c->gate.mutex);
}

static void coalesce_task_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    coalesce_ctx_t *c = (coalesce_ctx_t *)arg;
    (void)task;
    (void)status;
    latch_add(&c->done, 1);
}

static void wake_coalescing(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    coalesce_ctx_t c;
    rs_event_loop_stats_t stats;
    size_t i;
    memset(&c, 0, sizeof(c));
    latch_init(&c.gate);
    latch_init(&c.done);
    c.tasks = (rs_task_t *)calloc(COALESCE_TASKS, sizeof(rs_task_t));
    assert_non_null(c.tasks);
    rs_task_init(&c.gate_task, coalesce_gate_fn, &c, "gate");
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    rs_event_loop_schedule_task_now(loop, &c.gate_task);
    assert_true(latch_wait(&c.gate, 1)); /* the loop is now busy in the gate task */
    for (i = 0; i < COALESCE_TASKS; ++i) {
        rs_task_init(&c.tasks[i], coalesce_task_fn, &c, "burst");
        rs_event_loop_schedule_task_now(loop, &c.tasks[i]);
    }
    latch_add(&c.gate, 1); /* open the gate */
    assert_true(latch_wait(&c.done, COALESCE_TASKS));
    rs_event_loop_get_stats(loop, &stats);
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    rs_event_loop_destroy(loop);
    assert_int_equal(c.gate_timed_out, 0);
    assert_int_equal(latch_get(&c.done), COALESCE_TASKS);
    assert_true(stats.wakeups_sent >= 1);
    assert_true(stats.wakeups_sent < 1000);
    assert_true(stats.xthread_tasks >= COALESCE_TASKS);
    free(c.tasks);
    latch_cleanup(&c.gate);
    latch_cleanup(&c.done);
}
RS_TEST_PER_BACKEND(event_loop_, wake_coalescing)

/* --------------------------------------------------------- embedding API */

static uint64_t fake_clock_fn(void *user_data) {
    return __atomic_load_n((const uint64_t *)user_data, __ATOMIC_SEQ_CST);
}

static void fake_clock_set(uint64_t *clock, uint64_t v) {
    __atomic_store_n(clock, v, __ATOMIC_SEQ_CST);
}

static void clock_override_drives_timed_tasks(rs_event_loop_backend_t b) {
    uint64_t fake = 1 * RS_NS_PER_SEC;
    rs_event_loop_t *loop = loop_new_with(b, fake_clock_fn, &fake);
    probe_t t;
    uint64_t deadline = 0;
    probe_init(&t, loop, NULL);
    assert_int_equal(rs_event_loop_now_ns(loop), RS_NS_PER_SEC);
    rs_event_loop_schedule_task_future(loop, &t.task, 5 * RS_NS_PER_SEC);
    assert_int_equal(rs_event_loop_next_deadline(loop, &deadline), RS_OK);
    assert_int_equal(deadline, 5 * RS_NS_PER_SEC);
    run_ticks(loop, 3, 0);
    run_ticks(loop, 1, 20); /* real time passes; the fake clock does not */
    assert_int_equal(t.runs, 0);
    fake_clock_set(&fake, 5 * RS_NS_PER_SEC - 1);
    assert_int_equal(rs_event_loop_now_ns(loop), 5 * RS_NS_PER_SEC - 1);
    run_ticks(loop, 2, 0);
    assert_int_equal(t.runs, 0);
    fake_clock_set(&fake, 5 * RS_NS_PER_SEC);
    run_ticks(loop, 1, 0);
    assert_int_equal(t.runs, 1);
    assert_int_equal(t.cancels, 0);
    assert_int_equal(rs_event_loop_next_deadline(loop, &deadline), RS_OK);
    assert_int_equal(deadline, UINT64_MAX);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(event_loop_, clock_override_drives_timed_tasks)

static void run_once_with_timeout_0_never_blocks(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    int fds[2];
    io_rec_t r;
    probe_t later;
    uint64_t start;
    make_pipe(fds);
    io_rec_init(&r, fds[0]);
    probe_init(&later, loop, NULL);
    start = rs_clock_now_ns();
    run_ticks(loop, 3, 0); /* nothing at all */
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_READABLE, io_rec_cb, &r), RS_OK);
    rs_event_loop_schedule_task_future(loop, &later.task, rs_event_loop_now_ns(loop) + 3600 * RS_NS_PER_SEC);
    run_ticks(loop, 3, 0); /* an idle handle and a far task */
    assert_true(rs_clock_now_ns() - start < RS_NS_PER_SEC); /* a hang check, not a speed check */
    assert_int_equal(r.calls, 0);
    assert_int_equal(later.runs, 0);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_OK);
    rs_event_loop_destroy(loop);
    assert_int_equal(later.cancels, 1);
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, run_once_with_timeout_0_never_blocks)

static void run_once_negative_timeout_returns_on_task_due(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    probe_t t;
    watchdog_t w;
    probe_init(&t, loop, NULL);
    rs_event_loop_schedule_task_future(loop, &t.task, rs_event_loop_now_ns(loop) + 20 * RS_NS_PER_MS);
    watchdog_arm(&w, loop);
    assert_int_equal(rs_event_loop_run_once(loop, -1), RS_OK);
    assert_int_equal(watchdog_disarm(&w), 0);
    assert_int_equal(t.runs, 1); /* the wait lasted until the task was due */
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(event_loop_, run_once_negative_timeout_returns_on_task_due)

/* run_once(-1) with nothing scheduled returns on a cross-thread wakeup. */
typedef struct delayed_sched {
    rs_event_loop_t *loop;
    rs_task_t *task;
} delayed_sched_t;

static void delayed_sched_main(void *ud) {
    delayed_sched_t *d = (delayed_sched_t *)ud;
    rs_thread_sleep_ns(20 * RS_NS_PER_MS);
    rs_event_loop_schedule_task_now(d->loop, d->task);
}

static void run_once_negative_timeout_returns_on_wakeup(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    probe_t t;
    watchdog_t w;
    rs_thread_t thread;
    delayed_sched_t d;
    int fired;
    probe_init(&t, loop, NULL);
    d.loop = loop;
    d.task = &t.task;
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK); /* this thread is the loop thread */
    watchdog_arm(&w, loop);
    assert_int_equal(rs_thread_launch(&thread, delayed_sched_main, &d, NULL), RS_OK);
    assert_int_equal(rs_event_loop_run_once(loop, -1), RS_OK);
    fired = watchdog_disarm(&w);
    assert_int_equal(rs_thread_join(&thread), RS_OK);
    if (t.runs == 0 && !fired) {
        /* woken but the task is run on the next tick at the latest */
        run_ticks(loop, 1, 0);
    }
    assert_int_equal(fired, 0);
    assert_int_equal(t.runs, 1);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(event_loop_, run_once_negative_timeout_returns_on_wakeup)

static void next_deadline_values(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    probe_t now_task;
    probe_t future_task;
    uint64_t d = 1;
    uint64_t at;
    probe_init(&now_task, loop, NULL);
    probe_init(&future_task, loop, NULL);
    assert_int_equal(rs_event_loop_next_deadline(loop, &d), RS_OK);
    assert_int_equal(d, UINT64_MAX);

    at = rs_event_loop_now_ns(loop) + 3600 * RS_NS_PER_SEC;
    rs_event_loop_schedule_task_future(loop, &future_task.task, at);
    assert_int_equal(rs_event_loop_next_deadline(loop, &d), RS_OK);
    assert_int_equal(d, at);

    rs_event_loop_schedule_task_now(loop, &now_task.task);
    assert_int_equal(rs_event_loop_next_deadline(loop, &d), RS_OK);
    assert_int_equal(d, 0);

    run_ticks(loop, 1, 0);
    assert_int_equal(now_task.runs, 1);
    assert_int_equal(rs_event_loop_next_deadline(loop, &d), RS_OK);
    assert_int_equal(d, at);

    assert_int_equal(rs_event_loop_cancel_task(loop, &future_task.task), RS_OK);
    assert_int_equal(rs_event_loop_next_deadline(loop, &d), RS_OK);
    assert_int_equal(d, UINT64_MAX);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(event_loop_, next_deadline_values)

static bool fd_readable(int fd, int timeout_ms) {
#if RESEAU_OS_WINDOWS
    (void)fd;
    (void)timeout_ms;
    fail_msg("no poll on Windows: IOCP has no get_fd");
    return false;
#else
    struct pollfd p;
    int rc;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    do {
        rc = poll(&p, 1, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    return rc > 0 && (p.revents & POLLIN);
#endif
}

static void get_fd_signals_work_for_host_loops(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    int fd = -1;
    probe_t t;
    xsched_t x;
    int fds[2];
    io_rec_t r;
    int rc = rs_event_loop_get_fd(loop, &fd);
    /* poll has no fd to hand out, nor IOCP (its port is not waitable). kqueue
     * and io_uring take the epoll path below: the kqueue fd and the ring fd
     * are themselves pollable. */
    if (b == RS_EVENT_LOOP_BACKEND_POLL || b == RS_EVENT_LOOP_BACKEND_IOCP) {
        assert_int_equal(rc, RS_ENOTSUP);
        rs_event_loop_destroy(loop);
        return;
    }
    assert_int_equal(rc, RS_OK);
    assert_true(fd >= 0);
#if RESEAU_OS_LINUX
    if (b == RS_EVENT_LOOP_BACKEND_KQUEUE) {
        /* libkqueue's kqueue fd is a pipe's write end, never readable (the
         * BSDs' and macOS's is): nothing more to check on Linux. */
        rs_event_loop_destroy(loop);
        return;
    }
#endif
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK); /* this thread drives it */
    assert_false(fd_readable(fd, 0));

    /* a cross-thread schedule makes it readable */
    probe_init(&t, loop, NULL);
    memset(&x, 0, sizeof(x));
    x.loop = loop;
    x.tasks[0] = &t.task;
    x.n = 1;
    run_on_other_thread(xsched_main, &x);
    assert_true(fd_readable(fd, 10000));
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(t.runs, 1);
    assert_false(fd_readable(fd, 0)); /* drained: a host loop does not spin */

    /* so does I/O readiness */
    make_pipe(fds);
    io_rec_init(&r, fds[0]);
    r.drain_in_cb = true;
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_READABLE, io_rec_cb, &r), RS_OK);
    run_ticks(loop, 1, 0);
    assert_false(fd_readable(fd, 0));
    write_byte(fds[1]);
    assert_true(fd_readable(fd, 10000));
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(r.calls, 1);
    assert_false(fd_readable(fd, 0));
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_OK);
    rs_event_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND(event_loop_, get_fd_signals_work_for_host_loops)

/* The Windows twin of get_fd (tests/loop/test_windows.c tests it in use):
 * only IOCP has one; every POSIX backend says RS_ENOTSUP and leaves the
 * output alone. NULL arguments are RS_EINVAL everywhere. */
static void get_wait_handle_is_for_iocp_only(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    void *handle = NULL;
    void *again = NULL;
    assert_int_equal(rs_event_loop_get_wait_handle(NULL, &handle), RS_EINVAL);
    assert_int_equal(rs_event_loop_get_wait_handle(loop, NULL), RS_EINVAL);
    if (b == RS_EVENT_LOOP_BACKEND_IOCP) {
        assert_int_equal(rs_event_loop_get_wait_handle(loop, &handle), RS_OK);
        assert_non_null(handle);
        assert_int_equal(rs_event_loop_get_wait_handle(loop, &again), RS_OK);
        assert_ptr_equal(handle, again);
    } else {
        assert_int_equal(rs_event_loop_get_wait_handle(loop, &handle), RS_ENOTSUP);
        assert_null(handle);
    }
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(event_loop_, get_wait_handle_is_for_iocp_only)

static void stats_count_ticks_tasks_and_events(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    rs_event_loop_stats_t s;
    probe_t local[3];
    probe_t remote[2];
    probe_t canceled;
    xsched_t x;
    int sv[2];
    io_rec_t r;
    int i;
    rs_event_loop_get_stats(loop, &s);
    assert_int_equal(s.ticks, 0);
    assert_int_equal(s.tasks_run, 0);
    assert_int_equal(s.io_events, 0);
    assert_int_equal(s.xthread_tasks, 0);
    run_ticks(loop, 2, 0);
    rs_event_loop_get_stats(loop, &s);
    assert_int_equal(s.ticks, 2);

    for (i = 0; i < 3; ++i) {
        probe_init(&local[i], loop, NULL);
        rs_event_loop_schedule_task_now(loop, &local[i].task);
    }
    run_ticks(loop, 1, 0);
    rs_event_loop_get_stats(loop, &s);
    assert_int_equal(s.ticks, 3);
    assert_int_equal(s.tasks_run, 3);
    assert_int_equal(s.xthread_tasks, 0);

    memset(&x, 0, sizeof(x));
    x.loop = loop;
    for (i = 0; i < 2; ++i) {
        probe_init(&remote[i], loop, NULL);
        x.tasks[i] = &remote[i].task;
    }
    x.n = 2;
    run_on_other_thread(xsched_main, &x);
    run_ticks(loop, 1, 1000);
    assert_int_equal(remote[0].runs + remote[1].runs, 2);
    rs_event_loop_get_stats(loop, &s);
    assert_int_equal(s.tasks_run, 5);
    assert_int_equal(s.xthread_tasks, 2);
    assert_true(s.wakeups_sent >= 1);

    probe_init(&canceled, loop, NULL);
    rs_event_loop_schedule_task_future(loop, &canceled.task, rs_event_loop_now_ns(loop) + 3600 * RS_NS_PER_SEC);
    assert_int_equal(rs_event_loop_cancel_task(loop, &canceled.task), RS_OK);
    run_ticks(loop, 1, 0); /* the counters may be a tick behind */
    rs_event_loop_get_stats(loop, &s);
    assert_int_equal(s.tasks_run, 6);

    make_socketpair(sv);
    io_rec_init(&r, sv[0]);
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_WRITABLE, io_rec_cb, &r), RS_OK);
    assert_true(run_until(loop, &r.calls));
    rs_event_loop_get_stats(loop, &s);
    assert_int_equal(s.io_events, (uint64_t)r.calls);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &r.handle), RS_OK);
    rs_event_loop_destroy(loop);
    close(sv[0]);
    close(sv[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, stats_count_ticks_tasks_and_events)

/* ------------------------------------------------------------ thread rules */

typedef struct wrong_thread_ctx {
    rs_event_loop_t *loop;
    rs_io_handle_t subscribed;
    rs_io_handle_t fresh;
    rs_task_t future;
    int future_runs;
    int future_cancels;
} wrong_thread_ctx_t;

static void wt_future_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    wrong_thread_ctx_t *c = (wrong_thread_ctx_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        c->future_runs++;
    } else {
        c->future_cancels++;
    }
}

static void noop_io_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    (void)loop;
    (void)handle;
    (void)events;
    (void)user_data;
}

static void noop_on_remove(void *key, void *object, void *user_data) {
    (void)key;
    (void)object;
    (void)user_data;
}

static void nothing_on_loop(rs_event_loop_t *loop, void *ud) {
    (void)loop;
    (void)ud;
}

static void wrong_thread_calls(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    static int key;
    wrong_thread_ctx_t c;
    int p1[2];
    int p2[2];
    void *obj = NULL;
    uint64_t d = 0;
    memset(&c, 0, sizeof(c));
    c.loop = loop_new(b);
    make_pipe(p1);
    make_pipe(p2);
    c.subscribed.fd = p1[0];
    c.fresh.fd = p2[0];
    rs_task_init(&c.future, wt_future_fn, &c, "future");
    assert_true(rs_event_loop_is_on_loop_thread(c.loop)); /* creator, before the first run */
    assert_int_equal(rs_event_loop_subscribe(c.loop, &c.subscribed, RS_IO_READABLE, noop_io_cb, NULL), RS_OK);
    rs_event_loop_schedule_task_future(c.loop, &c.future, rs_event_loop_now_ns(c.loop) + 3600 * RS_NS_PER_SEC);
    assert_int_equal(rs_event_loop_start(c.loop), RS_OK);
    run_on_loop(c.loop, nothing_on_loop, NULL); /* the loop thread has taken over */

    assert_false(rs_event_loop_is_on_loop_thread(c.loop));
    assert_int_equal(rs_event_loop_subscribe(c.loop, &c.fresh, RS_IO_READABLE, noop_io_cb, NULL),
                     RS_EWRONGTHREAD);
    assert_null(c.fresh.impl);
    assert_int_equal(rs_event_loop_update_subscription(c.loop, &c.subscribed, RS_IO_WRITABLE), RS_EWRONGTHREAD);
    assert_int_equal(rs_event_loop_unsubscribe(c.loop, &c.subscribed), RS_EWRONGTHREAD);
    assert_int_equal(rs_event_loop_cancel_task(c.loop, &c.future), RS_EWRONGTHREAD);
    assert_int_equal(rs_event_loop_put_local_object(c.loop, &key, &key, noop_on_remove, NULL), RS_EWRONGTHREAD);
    assert_int_equal(rs_event_loop_get_local_object(c.loop, &key, &obj), RS_EWRONGTHREAD);
    assert_int_equal(rs_event_loop_remove_local_object(c.loop, &key), RS_EWRONGTHREAD);
    assert_int_equal(rs_event_loop_next_deadline(c.loop, &d), RS_EWRONGTHREAD);

    assert_int_equal(rs_event_loop_stop(c.loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(c.loop), RS_OK);
    rs_event_loop_destroy(c.loop); /* releases the subscription, cancels the task */
    assert_int_equal(c.future_runs, 0);
    assert_int_equal(c.future_cancels, 1);
    close(p1[0]);
    close(p1[1]);
    close(p2[0]);
    close(p2[1]);
}
RS_TEST_PER_BACKEND_IO(event_loop_, wrong_thread_calls)

static void run_once_on_started_loop_is_busy(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_EBUSY); /* right after start */
    run_on_loop(loop, nothing_on_loop, NULL);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_EBUSY);
    assert_int_equal(rs_event_loop_run_once(loop, -1), RS_EBUSY);
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(event_loop_, run_once_on_started_loop_is_busy)

typedef struct in_task_results {
    int wait_rc;
    int start_rc;
    int run_once_rc;
    bool on_loop;
} in_task_results_t;

static void calls_from_loop_thread(rs_event_loop_t *loop, void *ud) {
    in_task_results_t *r = (in_task_results_t *)ud;
    r->on_loop = rs_event_loop_is_on_loop_thread(loop);
    r->wait_rc = rs_event_loop_wait(loop);
    r->start_rc = rs_event_loop_start(loop);
    r->run_once_rc = rs_event_loop_run_once(loop, 0);
}

static void wait_from_the_loop_thread_is_deadlk(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    in_task_results_t r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    run_on_loop(loop, calls_from_loop_thread, &r); /* the latch orders these writes */
    assert_true(r.on_loop);
    assert_int_equal(r.wait_rc, RS_EDEADLK);
    assert_int_equal(r.start_rc, RS_EBUSY);
    assert_int_equal(r.run_once_rc, RS_EBUSY);
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(event_loop_, wait_from_the_loop_thread_is_deadlk)

/* Any-thread functions used concurrently with a running loop (TSan checks). */
typedef struct reader_ctx {
    rs_event_loop_t *loop;
    uint64_t sum;
    int on_loop_thread;
} reader_ctx_t;

static void reader_main(void *ud) {
    reader_ctx_t *r = (reader_ctx_t *)ud;
    int i;
    for (i = 0; i < 2000; ++i) {
        rs_event_loop_stats_t s;
        r->sum += rs_event_loop_get_load_factor(r->loop);
        rs_event_loop_get_stats(r->loop, &s);
        r->sum += s.ticks;
        r->sum += rs_event_loop_now_ns(r->loop) & 1;
        r->on_loop_thread += rs_event_loop_is_on_loop_thread(r->loop) ? 1 : 0;
    }
}

static void load_factor_and_stats_readable_from_another_thread(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    latch_t latch;
    probe_t tasks[200];
    reader_ctx_t r;
    rs_thread_t thread;
    int i;
    latch_init(&latch);
    memset(&r, 0, sizeof(r));
    r.loop = loop;
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    assert_int_equal(rs_thread_launch(&thread, reader_main, &r, NULL), RS_OK);
    for (i = 0; i < 200; ++i) {
        probe_init(&tasks[i], loop, &latch);
        rs_event_loop_schedule_task_now(loop, &tasks[i].task);
        if (i % 20 == 0) {
            rs_thread_sleep_ns(100000);
        }
    }
    (void)rs_event_loop_get_load_factor(loop);
    assert_true(latch_wait(&latch, 200));
    assert_int_equal(rs_thread_join(&thread), RS_OK);
    assert_int_equal(r.on_loop_thread, 0);
    (void)r.sum;
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    rs_event_loop_destroy(loop);
    latch_cleanup(&latch);
}
RS_TEST_PER_BACKEND(event_loop_, load_factor_and_stats_readable_from_another_thread)

/* ---------------------------------------------------------- local objects */

typedef struct removal_log {
    int calls;
    void *last_key;
    void *last_object;
    void *last_user_data;
    bool on_loop;
    rs_event_loop_t *loop;
} removal_log_t;

static void log_on_remove(void *key, void *object, void *user_data) {
    removal_log_t *l = (removal_log_t *)user_data;
    l->calls++;
    l->last_key = key;
    l->last_object = object;
    l->last_user_data = user_data;
    l->on_loop = rs_event_loop_is_on_loop_thread(l->loop);
}

static void free_on_remove(void *key, void *object, void *user_data) {
    int *count = (int *)user_data;
    (void)key;
    (*count)++;
    rs_mem_free(&rs_test_allocator, object);
}

static void local_objects_put_get_replace_remove(rs_event_loop_backend_t b) {
    static int key1;
    static int key2;
    static int keys[100];
    rs_event_loop_t *loop = loop_new(b);
    removal_log_t log;
    int obj1 = 1;
    int obj2 = 2;
    int freed = 0;
    void *out = NULL;
    int i;
    memset(&log, 0, sizeof(log));
    log.loop = loop;

    assert_int_equal(rs_event_loop_get_local_object(loop, &key1, &out), RS_ENOENT);
    assert_int_equal(rs_event_loop_remove_local_object(loop, &key1), RS_ENOENT);

    assert_int_equal(rs_event_loop_put_local_object(loop, &key1, &obj1, log_on_remove, &log), RS_OK);
    assert_int_equal(rs_event_loop_get_local_object(loop, &key1, &out), RS_OK);
    assert_ptr_equal(out, &obj1);
    assert_int_equal(log.calls, 0);

    /* replace: on_remove sees the old object */
    assert_int_equal(rs_event_loop_put_local_object(loop, &key1, &obj2, log_on_remove, &log), RS_OK);
    assert_int_equal(log.calls, 1);
    assert_ptr_equal(log.last_key, &key1);
    assert_ptr_equal(log.last_object, &obj1);
    assert_ptr_equal(log.last_user_data, &log);
    assert_true(log.on_loop);
    assert_int_equal(rs_event_loop_get_local_object(loop, &key1, &out), RS_OK);
    assert_ptr_equal(out, &obj2);

    /* remove */
    assert_int_equal(rs_event_loop_remove_local_object(loop, &key1), RS_OK);
    assert_int_equal(log.calls, 2);
    assert_ptr_equal(log.last_object, &obj2);
    assert_int_equal(rs_event_loop_get_local_object(loop, &key1, &out), RS_ENOENT);
    assert_int_equal(rs_event_loop_remove_local_object(loop, &key1), RS_ENOENT);
    assert_int_equal(log.calls, 2);

    /* NULL on_remove is allowed */
    assert_int_equal(rs_event_loop_put_local_object(loop, &key2, &obj1, NULL, NULL), RS_OK);
    assert_int_equal(rs_event_loop_remove_local_object(loop, &key2), RS_OK);

    /* many keys, each with a heap object freed by on_remove at destroy */
    for (i = 0; i < 100; ++i) {
        int *o = (int *)rs_mem_alloc(&rs_test_allocator, sizeof(int));
        assert_non_null(o);
        *o = i;
        assert_int_equal(rs_event_loop_put_local_object(loop, &keys[i], o, free_on_remove, &freed), RS_OK);
    }
    for (i = 0; i < 100; ++i) {
        assert_int_equal(rs_event_loop_get_local_object(loop, &keys[i], &out), RS_OK);
        assert_int_equal(*(int *)out, i);
    }
    for (i = 0; i < 100; i += 2) {
        assert_int_equal(rs_event_loop_remove_local_object(loop, &keys[i]), RS_OK);
    }
    assert_int_equal(freed, 50);
    for (i = 1; i < 100; i += 2) {
        assert_int_equal(rs_event_loop_get_local_object(loop, &keys[i], &out), RS_OK);
        assert_int_equal(*(int *)out, i);
    }
    assert_int_equal(rs_event_loop_put_local_object(loop, &key1, &obj1, log_on_remove, &log), RS_OK);
    rs_event_loop_destroy(loop);
    assert_int_equal(freed, 100);
    assert_int_equal(log.calls, 3);
    assert_ptr_equal(log.last_object, &obj1);
    assert_true(log.on_loop);
}
RS_TEST_PER_BACKEND(event_loop_, local_objects_put_get_replace_remove)

/* ------------------------------------------------------------- backends */

/* Scheduling a task that is already scheduled is refused with RS_EBUSY and
 * leaves it where it is: it still runs once, at its first time. Before, the
 * second schedule linked the task into two structures and hung the loop. */
static void scheduling_a_scheduled_task_is_busy(rs_event_loop_backend_t b) {
    uint64_t clock = 1000 * RS_NS_PER_SEC;
    rs_event_loop_t *loop = loop_new_with(b, fake_clock_fn, &clock);
    probe_t p;
    probe_t unset;
    probe_init(&p, loop, NULL);
    assert_int_equal(rs_event_loop_schedule_task_future(loop, &p.task, clock + RS_NS_PER_SEC), RS_OK);
    assert_int_equal(rs_event_loop_schedule_task_now(loop, &p.task), RS_EBUSY);
    assert_int_equal(rs_event_loop_schedule_task_future(loop, &p.task, clock), RS_EBUSY);
    assert_int_equal(rs_event_loop_schedule_task_now_serialized(loop, &p.task), RS_EBUSY);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(p.runs, 0); /* still at its first time, not moved to "now" */
    fake_clock_set(&clock, clock + RS_NS_PER_SEC);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(p.runs, 1);
    /* Once it has run it may be scheduled again; queued cross-thread counts as scheduled too. */
    assert_int_equal(rs_event_loop_schedule_task_now_serialized(loop, &p.task), RS_OK);
    assert_int_equal(rs_event_loop_schedule_task_now(loop, &p.task), RS_EBUSY);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(p.runs, 2);
    /* A task that was never initialised has no function to run. */
    memset(&unset, 0, sizeof(unset));
    assert_int_equal(rs_event_loop_schedule_task_now(loop, &unset.task), RS_EINVAL);
    assert_int_equal(rs_event_loop_schedule_task_now(NULL, &p.task), RS_EINVAL);
    assert_int_equal(rs_event_loop_schedule_task_future(loop, NULL, 0), RS_EINVAL);
    rs_event_loop_destroy(loop);
    assert_int_equal(p.cancels, 0);
}
RS_TEST_PER_BACKEND(event_loop_, scheduling_a_scheduled_task_is_busy)

/* The same from another thread, while the loop runs: the second schedule of a
 * task still in the cross-thread queue or the scheduler is RS_EBUSY. */
static void cross_thread_double_schedule_is_busy(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = loop_new(b);
    latch_t latch;
    probe_t p;
    latch_init(&latch);
    probe_init(&p, loop, &latch);
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    assert_int_equal(rs_event_loop_schedule_task_future(loop, &p.task, rs_event_loop_now_ns(loop) + 3600 * RS_NS_PER_SEC),
                     RS_OK);
    assert_int_equal(rs_event_loop_schedule_task_now(loop, &p.task), RS_EBUSY);
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    rs_event_loop_destroy(loop);
    assert_int_equal(p.runs, 0);
    assert_int_equal(p.cancels, 1);
    latch_cleanup(&latch);
}
RS_TEST_PER_BACKEND(event_loop_, cross_thread_double_schedule_is_busy)

/* A wake the OS refuses must not stall the cross-thread queue. The backend's
 * wake is replaced (white box: the tests compile the implementation) by one
 * that fails as told, then calls the real one. */
static const rs__backend_vtable_t *flaky_real_backend;
static int flaky_eintr_left; /* atomic: EINTR failures still to report */
static int flaky_eio_left;   /* atomic: EIO failures still to report */
static int flaky_calls;      /* atomic */

static bool flaky_wake(rs_event_loop_t *loop) {
    __atomic_add_fetch(&flaky_calls, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&flaky_eintr_left, __ATOMIC_SEQ_CST) > 0) {
        __atomic_sub_fetch(&flaky_eintr_left, 1, __ATOMIC_SEQ_CST);
        errno = EINTR;
        return false;
    }
    if (__atomic_load_n(&flaky_eio_left, __ATOMIC_SEQ_CST) > 0) {
        __atomic_sub_fetch(&flaky_eio_left, 1, __ATOMIC_SEQ_CST);
        errno = EIO;
        return false;
    }
    return flaky_real_backend->wake(loop);
}

static rs_event_loop_t *loop_with_flaky_wake(rs_event_loop_backend_t b, rs__backend_vtable_t *copy, int eintr,
                                             int eio) {
    rs_event_loop_t *loop = loop_new(b);
    flaky_real_backend = loop->backend;
    *copy = *loop->backend;
    copy->wake = flaky_wake;
    loop->backend = copy;
    __atomic_store_n(&flaky_eintr_left, eintr, __ATOMIC_SEQ_CST);
    __atomic_store_n(&flaky_eio_left, eio, __ATOMIC_SEQ_CST);
    __atomic_store_n(&flaky_calls, 0, __ATOMIC_SEQ_CST);
    return loop;
}

static void wake_interrupted_by_a_signal_is_retried(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs__backend_vtable_t copy;
    rs_event_loop_t *loop = loop_with_flaky_wake(b, &copy, 3, 0);
    latch_t latch;
    probe_t p;
    latch_init(&latch);
    probe_init(&p, loop, &latch);
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    run_on_loop(loop, nothing_on_loop, NULL); /* the loop is now blocked in its wait */
    __atomic_store_n(&flaky_calls, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&flaky_eintr_left, 3, __ATOMIC_SEQ_CST);
    assert_int_equal(rs_event_loop_schedule_task_now(loop, &p.task), RS_OK);
    assert_int_equal(__atomic_load_n(&flaky_calls, __ATOMIC_SEQ_CST), 4); /* 3 x EINTR, then through */
    assert_false(__atomic_load_n(&loop->wake_lost, __ATOMIC_SEQ_CST));
    assert_true(latch_wait(&latch, 1));
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    rs_event_loop_destroy(loop);
    assert_int_equal(p.runs, 1);
    latch_cleanup(&latch);
}
RS_TEST_PER_BACKEND(event_loop_, wake_interrupted_by_a_signal_is_retried)

/* A wake refused on every attempt (EIO) is lost: the task behind it waits for
 * the loop's next wakeup, and the next schedule is that wakeup (it wakes even
 * though the queue was not empty). Before the fix the loop slept on, and every
 * later cross-thread task stalled behind the first. */
static void lost_wake_does_not_stall_later_tasks(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs__backend_vtable_t copy;
    rs_event_loop_t *loop = loop_with_flaky_wake(b, &copy, 0, 0);
    latch_t latch;
    probe_t first;
    probe_t second;
    latch_init(&latch);
    probe_init(&first, loop, &latch);
    probe_init(&second, loop, &latch);
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    run_on_loop(loop, nothing_on_loop, NULL);
    __atomic_store_n(&flaky_eio_left, RS__WAKE_ATTEMPTS, __ATOMIC_SEQ_CST);
    __atomic_store_n(&flaky_calls, 0, __ATOMIC_SEQ_CST);
    assert_int_equal(rs_event_loop_schedule_task_now(loop, &first.task), RS_OK);
    assert_int_equal(__atomic_load_n(&flaky_calls, __ATOMIC_SEQ_CST), RS__WAKE_ATTEMPTS);
    assert_int_equal(rs_event_loop_schedule_task_now(loop, &second.task), RS_OK);
    assert_int_equal(__atomic_load_n(&flaky_calls, __ATOMIC_SEQ_CST), RS__WAKE_ATTEMPTS + 1);
    assert_true(latch_wait(&latch, 2));
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    rs_event_loop_destroy(loop);
    assert_int_equal(first.runs, 1);
    assert_int_equal(second.runs, 1);
    latch_cleanup(&latch);
}
RS_TEST_PER_BACKEND(event_loop_, lost_wake_does_not_stall_later_tasks)

static void event_loop_unavailable_backends_are_not_supported(void **state) {
    /* io_uring is in every Linux build; whether the kernel allows it is
     * tested in test_io_uring.c. */
    static const rs_event_loop_backend_t missing[] = {
#if !RESEAU_HAVE_KQUEUE
        RS_EVENT_LOOP_BACKEND_KQUEUE,
#endif
#if RESEAU_OS_WINDOWS
        RS_EVENT_LOOP_BACKEND_EPOLL, RS_EVENT_LOOP_BACKEND_POLL, RS_EVENT_LOOP_BACKEND_IO_URING};
#else
        RS_EVENT_LOOP_BACKEND_IOCP};
#endif
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(missing) / sizeof(missing[0]); ++i) {
        rs_event_loop_options_t opts;
        int err = 0;
        memset(&opts, 0, sizeof(opts));
        opts.allocator = &rs_test_allocator;
        opts.backend = missing[i];
        assert_false(rs_event_loop_backend_is_available(missing[i]));
        assert_null(rs_event_loop_new(&opts, &err));
        assert_int_equal(err, RS_ENOTSUP);
        assert_null(rs_event_loop_new(&opts, NULL)); /* err_out may be NULL */
        assert_non_null(rs_event_loop_backend_name(missing[i]));
    }
}

static void event_loop_available_backends_are_created(void **state) {
    rs_event_loop_options_t opts;
    rs_event_loop_t *loop;
    int err = -1;
    size_t i;
    (void)state;
    assert_true(rs_event_loop_backend_is_available(RS_EVENT_LOOP_BACKEND_DEFAULT));
    for (i = 0; i < RS_TEST_BACKEND_COUNT; ++i) {
        assert_true(rs_event_loop_backend_is_available(rs_test_backends[i]));
        assert_non_null(rs_event_loop_backend_name(rs_test_backends[i]));
    }
    assert_string_not_equal(rs_event_loop_backend_name(RS_EVENT_LOOP_BACKEND_EPOLL),
                            rs_event_loop_backend_name(RS_EVENT_LOOP_BACKEND_POLL));
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator;
    loop = rs_event_loop_new(&opts, &err);
    assert_non_null(loop);
    assert_int_equal(rs_event_loop_get_backend(loop), rs_test_backends[0]); /* this OS's default */
    rs_event_loop_destroy(loop);
    /* NULL options: libc allocator, defaults */
    loop = rs_event_loop_new(NULL, NULL);
    assert_non_null(loop);
    rs_event_loop_destroy(loop);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(event_loop_, xthread_scheduled_tasks_execute),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, task_scheduled_by_task_runs_next_tick),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, future_tasks_with_equal_times_run_in_order),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, canceled_tasks_run_on_loop_thread),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, destroy_cancels_tasks_of_a_loop_that_never_ran),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, cancel_task_runs_it_once_with_canceled),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, cancel_by_earlier_task_of_the_same_tick),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, cancel_of_task_still_in_cross_thread_queue),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, run_once_reentered_from_its_own_tick_is_busy),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, destroy_cancels_tasks_scheduled_while_canceling),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, future_task_never_runs_early),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, serialized_scheduling_keeps_fifo_across_4_producers),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, serialized_scheduling_keeps_global_order),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, subscribe_and_unsubscribe),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, writable_event_on_subscribe),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, no_readable_event_before_write),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, readable_event_after_write),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, readable_event_wakes_a_running_loop),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, readable_event_on_subscribe_if_data_present),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, readable_event_again_the_second_time),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, unread_data_is_reported_every_tick),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, update_subscription_changes_reported_events),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, hangup_is_reported_when_the_writer_closes),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, no_events_after_unsubscribe),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, unsubscribe_inside_callback_of_same_batch),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, more_ready_handles_than_one_batch_are_all_reported),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, subscribe_inside_callback_is_reported_later),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, closed_fd_reused_in_callback_gets_no_stale_events),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, invalid_masks_are_rejected),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, double_subscribe_is_busy),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, unsubscribe_of_unsubscribed_handle_is_invalid),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, destroy_with_live_subscriptions_releases_them),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, stop_then_restart),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, multiple_stops_are_harmless),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, fairness_busy_task_does_not_starve_timers_or_io),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, wake_coalescing),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, clock_override_drives_timed_tasks),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, run_once_with_timeout_0_never_blocks),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, run_once_negative_timeout_returns_on_task_due),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, run_once_negative_timeout_returns_on_wakeup),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, next_deadline_values),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, get_fd_signals_work_for_host_loops),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, get_wait_handle_is_for_iocp_only),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, stats_count_ticks_tasks_and_events),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, wrong_thread_calls),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, run_once_on_started_loop_is_busy),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, wait_from_the_loop_thread_is_deadlk),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, load_factor_and_stats_readable_from_another_thread),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, local_objects_put_get_replace_remove),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, scheduling_a_scheduled_task_is_busy),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, cross_thread_double_schedule_is_busy),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, wake_interrupted_by_a_signal_is_retried),
        RS_TEST_PER_BACKEND_TESTS(event_loop_, lost_wake_does_not_stall_later_tasks),
        cmocka_unit_test(event_loop_unavailable_backends_are_not_supported),
        cmocka_unit_test(event_loop_available_backends_are_created),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
