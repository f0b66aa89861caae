/*
 * The custom backend (RS_EVENT_LOOP_BACKEND_CUSTOM, issue 16): a loop whose
 * wait and wakeup are the application's. Checked: the options that are
 * refused, the order of the calls (wait with the time to the next task, then
 * dispatch, then tasks), destroy once, a wake from another thread ending a
 * blocked wait, and that fd subscriptions and sockets say RS_ENOTSUP.
 */
#include "test_util.h"

typedef struct fw {
    int waits;
    int dispatches;
    int destroys;
    int wakes;
    int last_timeout_ms;
    int wake_result; /* what wake returns: 1 true, 0 false */
    char trace[64];  /* 'w' wait, 'd' dispatch, 't' task */
    size_t trace_len;
    rs_mutex_t lock; /* the threaded test: a wake from another thread */
    rs_condvar_t cond;
    bool woken;
} fw_t;

static void fw_note(fw_t *f, char c) {
    if (f->trace_len + 1 < sizeof(f->trace)) {
        f->trace[f->trace_len++] = c;
    }
}

static void fw_wait(void *user_data, int timeout_ms) {
    fw_t *f = (fw_t *)user_data;
    f->waits++;
    f->last_timeout_ms = timeout_ms;
    fw_note(f, 'w');
}

static bool fw_wake(void *user_data) {
    fw_t *f = (fw_t *)user_data;
    f->wakes++;
    return f->wake_result != 0;
}

static void fw_dispatch(void *user_data) {
    fw_t *f = (fw_t *)user_data;
    f->dispatches++;
    fw_note(f, 'd');
}

static void fw_destroy(void *user_data) {
    ((fw_t *)user_data)->destroys++;
}

static rs_event_loop_custom_backend_t fw_backend(fw_t *f) {
    rs_event_loop_custom_backend_t b;
    memset(&b, 0, sizeof(b));
    b.wait = fw_wait;
    b.wake = fw_wake;
    b.dispatch = fw_dispatch;
    b.destroy = fw_destroy;
    b.user_data = f;
    return b;
}

static rs_event_loop_t *fw_loop(const rs_event_loop_custom_backend_t *b) {
    rs_event_loop_options_t o;
    rs_event_loop_t *loop;
    int err = -1;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.custom_backend = b;
    loop = rs_event_loop_new(&o, &err);
    assert_non_null(loop);
    assert_int_equal(err, RS_OK);
    return loop;
}

static void task_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    fw_t *f = (fw_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        fw_note(f, 't');
    }
}

static void custom_backend_refused_options(void **state) {
    fw_t f;
    rs_event_loop_custom_backend_t b;
    rs_event_loop_options_t o;
    int err = 0;
    (void)state;
    memset(&f, 0, sizeof(f));
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;

    o.backend = RS_EVENT_LOOP_BACKEND_CUSTOM; /* CUSTOM without one */
    assert_null(rs_event_loop_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);

    b = fw_backend(&f);
    b.wait = NULL;
    o.custom_backend = &b;
    err = 0;
    assert_null(rs_event_loop_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);

    b = fw_backend(&f);
    b.wake = NULL;
    err = 0;
    assert_null(rs_event_loop_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);

    b = fw_backend(&f);
    o.backend = RS_EVENT_LOOP_BACKEND_POLL; /* a custom backend and an OS one */
    err = 0;
    assert_null(rs_event_loop_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    assert_int_equal(f.destroys, 0); /* refused options never reach the backend */
}

static void custom_backend_ticks_wait_dispatch_then_tasks(void **state) {
    fw_t f;
    rs_event_loop_custom_backend_t b;
    rs_event_loop_t *loop;
    rs_task_t t1, t2;
    int fd = 0;
    (void)state;
    memset(&f, 0, sizeof(f));
    b = fw_backend(&f);
    loop = fw_loop(&b);
    b.user_data = NULL; /* the loop copied the struct */
    assert_int_equal(rs_event_loop_get_backend(loop), RS_EVENT_LOOP_BACKEND_CUSTOM);
    assert_string_equal(rs_event_loop_backend_name(RS_EVENT_LOOP_BACKEND_CUSTOM), "custom");
    assert_true(rs_event_loop_backend_is_available(RS_EVENT_LOOP_BACKEND_CUSTOM));
    assert_int_equal(rs_event_loop_get_fd(loop, &fd), RS_ENOTSUP);

    rs_task_init(&t1, task_fn, &f, "t1");
    assert_int_equal(rs_event_loop_schedule_task_now(loop, &t1), RS_OK);
    assert_int_equal(rs_event_loop_run_once(loop, -1), RS_OK);
    assert_int_equal(f.last_timeout_ms, 0); /* a task is due: no blocking */
    assert_string_equal(f.trace, "wdt");

    /* Nothing due: the caller's limit passes through; a timer bounds it. */
    assert_int_equal(rs_event_loop_run_once(loop, 250), RS_OK);
    assert_int_equal(f.last_timeout_ms, 250);
    assert_int_equal(rs_event_loop_run_once(loop, -1), RS_OK);
    assert_int_equal(f.last_timeout_ms, -1);
    rs_task_init(&t2, task_fn, &f, "t2");
    assert_int_equal(rs_event_loop_schedule_task_future(loop, &t2, rs_event_loop_now_ns(loop) + 5 * RS_NS_PER_SEC),
                     RS_OK);
    assert_int_equal(rs_event_loop_run_once(loop, -1), RS_OK);
    assert_true(f.last_timeout_ms > 4000 && f.last_timeout_ms <= 5000);
    assert_int_equal(f.waits, 4);
    assert_int_equal(f.dispatches, 4);
    assert_int_equal(f.wakes, 0); /* scheduling on the loop thread wakes nothing */

    rs_event_loop_destroy(loop); /* t2 runs canceled; the backend is destroyed once */
    assert_int_equal(f.destroys, 1);
    assert_string_equal(f.trace, "wdtwdwdwd");
}

static void io_fn(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    (void)loop;
    (void)handle;
    (void)events;
    (void)user_data;
    fail_msg("a custom loop reported I/O");
}

#if !RS__NO_SOCKETS
static void on_socket_readable(rs_socket_t *socket, int error, void *user_data) {
    (void)socket;
    (void)error;
    (void)user_data;
    fail_msg("a socket on a custom loop reported readable");
}
#endif

static void custom_backend_has_no_fd_subscriptions(void **state) {
    fw_t f;
    rs_event_loop_custom_backend_t b;
    rs_event_loop_t *loop;
    rs_io_handle_t h;
    (void)state;
    memset(&f, 0, sizeof(f));
    b = fw_backend(&f);
    b.dispatch = NULL; /* optional */
    b.destroy = NULL;  /* optional */
    loop = fw_loop(&b);
    memset(&h, 0, sizeof(h));
    h.fd = 0;
    assert_int_equal(rs_event_loop_subscribe(loop, &h, RS_IO_READABLE, io_fn, NULL), RS_ENOTSUP);
    assert_null(h.impl);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(f.waits, 1);
    assert_int_equal(f.dispatches, 0);
#if !RS__NO_SOCKETS
    {
        rs_socket_options_t so;
        rs_socket_t *s;
        int err = 0;
        memset(&so, 0, sizeof(so));
        so.allocator = &rs_test_allocator;
        s = rs_socket_new(&so, &err);
        assert_non_null(s);
        err = rs_socket_assign_to_loop(s, loop);
        if (err == RS_OK) {
            /* POSIX assigns. An unconnected socket stops at RS_ENOTCONN before
             * the backend: the backend's RS_ENOTSUP is checked above, through
             * rs_event_loop_subscribe; here only that no read is ever armed. */
            err = rs_socket_subscribe_to_readable_events(s, on_socket_readable, NULL);
            assert_true(err != RS_OK);
        } else {
            assert_int_equal(err, RS_ENOTSUP);
        }
        rs_socket_destroy(s);
    }
#endif
    rs_event_loop_destroy(loop);
    assert_int_equal(f.destroys, 0);
}

/* ---- a wake from another thread ends a blocked wait ---- */

static void fw_blocking_wait(void *user_data, int timeout_ms) {
    fw_t *f = (fw_t *)user_data;
    uint64_t deadline = rs_clock_now_ns() + RS_TEST_WAIT_NS;
    f->waits++;
    f->last_timeout_ms = timeout_ms;
    rs_mutex_lock(&f->lock);
    while (!f->woken && timeout_ms != 0 && rs_clock_now_ns() < deadline) {
        rs_condvar_wait_until(&f->cond, &f->lock, rs_clock_now_ns() + 10 * RS_NS_PER_MS);
    }
    f->woken = false; /* the latch: a wake before the wait counts too */
    rs_mutex_unlock(&f->lock);
}

static bool fw_cond_wake(void *user_data) {
    fw_t *f = (fw_t *)user_data;
    rs_mutex_lock(&f->lock);
    f->wakes++;
    f->woken = true;
    rs_condvar_broadcast(&f->cond);
    rs_mutex_unlock(&f->lock);
    return true;
}

typedef struct pusher {
    rs_event_loop_t *loop;
    rs_task_t task;
    int ran;
} pusher_t;

static void pushed_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        ((pusher_t *)arg)->ran++;
    }
}

static void push_thread(void *arg) {
    pusher_t *p = (pusher_t *)arg;
    rs_thread_sleep_ns(50 * RS_NS_PER_MS); /* let the loop block first (not required: the wake latches) */
    assert_int_equal(rs_event_loop_schedule_task_now(p->loop, &p->task), RS_OK);
}

static void custom_backend_wake_from_another_thread(void **state) {
    fw_t f;
    rs_event_loop_custom_backend_t b;
    pusher_t p;
    rs_thread_t thread;
    uint64_t start;
    (void)state;
    RS_TEST_NEEDS_THREADS();
    memset(&f, 0, sizeof(f));
    memset(&p, 0, sizeof(p));
    assert_int_equal(rs_mutex_init(&f.lock), RS_OK);
    assert_int_equal(rs_condvar_init(&f.cond), RS_OK);
    b = fw_backend(&f);
    b.wait = fw_blocking_wait;
    b.wake = fw_cond_wake;
    p.loop = fw_loop(&b);
    rs_task_init(&p.task, pushed_fn, &p, "pushed");
    assert_int_equal(rs_thread_launch(&thread, push_thread, &p, NULL), RS_OK);
    start = rs_clock_now_ns();
    while (!p.ran && rs_clock_now_ns() - start < RS_TEST_WAIT_NS) {
        assert_int_equal(rs_event_loop_run_once(p.loop, -1), RS_OK); /* blocks until the wake */
    }
    assert_int_equal(rs_thread_join(&thread), RS_OK);
    assert_int_equal(p.ran, 1);
    assert_true(f.wakes >= 1);
    assert_int_equal(f.last_timeout_ms, -1); /* it really blocked without a limit */
    rs_event_loop_destroy(p.loop);
    assert_int_equal(f.destroys, 1);
    rs_condvar_cleanup(&f.cond);
    rs_mutex_cleanup(&f.lock);
}

typedef struct stopper {
    rs_event_loop_t *loop;
    fw_t *f;
} stopper_t;

static void stop_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    stopper_t *s = (stopper_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        fw_note(s->f, 't');
        assert_int_equal(rs_event_loop_stop(s->loop), RS_OK);
    }
}

/* A custom loop whose wake answers `wake_result`, and a task on it that stops it. */
static void stopper_open(stopper_t *s, fw_t *f, int wake_result, rs_task_t *t) {
    rs_event_loop_custom_backend_t b;
    memset(f, 0, sizeof(*f));
    f->wake_result = wake_result;
    b = fw_backend(f);
    s->loop = fw_loop(&b);
    s->f = f;
    rs_task_init(t, stop_fn, s, "stop");
}

/* rs_event_loop_run on a custom loop: stop wakes the backend, and run returns. */
static void custom_backend_run_until_stopped(void **state) {
    fw_t f;
    stopper_t s;
    rs_task_t t;
    (void)state;
    stopper_open(&s, &f, 1, &t);
    assert_int_equal(rs_event_loop_schedule_task_future(s.loop, &t, rs_event_loop_now_ns(s.loop) + RS_NS_PER_MS),
                     RS_OK);
    assert_int_equal(rs_event_loop_run(s.loop), RS_OK);
    assert_int_equal(f.wakes, 1);
    assert_true(f.waits >= 1 && f.dispatches == f.waits); /* every tick waited, then dispatched */
    rs_event_loop_destroy(s.loop);
    assert_int_equal(f.destroys, 1);
}

/* A wake the backend refuses is not lost: the loop bounds its next waits. */
static void custom_backend_refused_wake_bounds_the_wait(void **state) {
    fw_t f;
    stopper_t s;
    rs_task_t t;
    (void)state;
    stopper_open(&s, &f, 0, &t);
    assert_int_equal(rs_event_loop_schedule_task_now(s.loop, &t), RS_OK);
    assert_int_equal(rs_event_loop_run(s.loop), RS_OK); /* the stop's wake fails, run still returns */
    assert_true(f.wakes >= 1);
    assert_int_equal(rs_event_loop_run_once(s.loop, -1), RS_OK);
    assert_true(f.last_timeout_ms >= 0 && f.last_timeout_ms <= 10); /* not -1: the loop polls until a wake works */
    rs_event_loop_destroy(s.loop);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(custom_backend_refused_options),
        cmocka_unit_test(custom_backend_ticks_wait_dispatch_then_tasks),
        cmocka_unit_test(custom_backend_has_no_fd_subscriptions),
        cmocka_unit_test(custom_backend_wake_from_another_thread),
        cmocka_unit_test(custom_backend_run_until_stopped),
        cmocka_unit_test(custom_backend_refused_wake_bounds_the_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
