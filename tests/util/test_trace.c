/* Tracing hooks: a counting tracer sees task scheduled/run/canceled, I/O
 * dispatch on every backend, channel setup and shutdown, each with its loop,
 * subject, name and a non-decreasing timestamp (read when the tracer asks,
 * once per event); nothing once removed; a replaced tracer is never called
 * after rs_trace_set_tracer returns, also while a group of loops emits on
 * their threads and while the loop's thread is inside the old tracer, both
 * with loop threads marking their flag by a plain store (membarrier) and by
 * an exchange; loops created and destroyed while another thread replaces
 * tracers; rs_trace_emit and the event names. Built a second time with
 * RESEAU_NO_TRACE (trace_notrace): setting a tracer is RS_ENOTSUP and
 * nothing is ever traced. */
#include "test_util.h"

#define MAX_EVENTS 512

typedef struct recorder {
    rs_mutex_t lock;
    rs_trace_event_t events[MAX_EVENTS];
    size_t count;   /* recorded, at most MAX_EVENTS */
    RS__ALIGN8 uint64_t calls; /* tracer calls, all of them (atomic) */
} recorder_t;

static void recorder_init(recorder_t *r) {
    memset(r, 0, sizeof(*r));
    assert_int_equal(rs_mutex_init(&r->lock), RS_OK);
}

static void record_event(const rs_trace_event_t *event, void *user_data) {
    recorder_t *r = (recorder_t *)user_data;
    rs_trace_event_timestamp_ns(event); /* taken before the copy, so the copy has it */
    rs_mutex_lock(&r->lock);
    if (r->count < MAX_EVENTS) {
        r->events[r->count++] = *event;
    }
    rs_mutex_unlock(&r->lock);
    rs__atomic_add_u64(&r->calls, 1);
}

static RS__UNUSED uint64_t recorder_calls(recorder_t *r) {
    return rs__atomic_load_u64(&r->calls);
}

/* Events of `type` about `subject` (any subject if NULL). */
static RS__UNUSED size_t count_of(const recorder_t *r, rs_trace_event_type_t type, const void *subject) {
    size_t i, n = 0;
    for (i = 0; i < r->count; ++i) {
        if (r->events[i].type == type && (!subject || r->events[i].subject == subject)) {
            ++n;
        }
    }
    return n;
}

static RS__UNUSED const rs_trace_event_t *find_event(const recorder_t *r, rs_trace_event_type_t type, const void *subject) {
    size_t i;
    for (i = 0; i < r->count; ++i) {
        if (r->events[i].type == type && r->events[i].subject == subject) {
            return &r->events[i];
        }
    }
    return NULL;
}

/* Recorded on one thread: timestamps never go back, and every event names `loop`. */
static RS__UNUSED void assert_ordered_on(const recorder_t *r, const rs_event_loop_t *loop) {
    size_t i;
    assert_true(r->count < MAX_EVENTS);
    for (i = 0; i < r->count; ++i) {
        assert_ptr_equal(r->events[i].loop, loop);
        assert_true(r->events[i].timestamp_ns > 0);
        assert_non_null(r->events[i].name);
        if (i > 0) {
            assert_true(r->events[i].timestamp_ns >= r->events[i - 1].timestamp_ns);
        }
    }
}

static int task_runs, task_cancels;
static void count_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    (void)task;
    (void)arg;
    if (status == RS_TASK_STATUS_RUN) {
        ++task_runs;
    } else {
        ++task_cancels;
    }
}

#if !RS__NO_TRACE

static void trace_event_names(void **state) {
    (void)state;
    assert_string_equal(rs_trace_event_name(RS_TRACE_TASK_SCHEDULED), "task_scheduled");
    assert_string_equal(rs_trace_event_name(RS_TRACE_TASK_RUN), "task_run");
    assert_string_equal(rs_trace_event_name(RS_TRACE_TASK_CANCELED), "task_canceled");
    assert_string_equal(rs_trace_event_name(RS_TRACE_IO_DISPATCH), "io_dispatch");
    assert_string_equal(rs_trace_event_name(RS_TRACE_CHANNEL_SETUP), "channel_setup");
    assert_string_equal(rs_trace_event_name(RS_TRACE_CHANNEL_SHUTDOWN), "channel_shutdown");
    assert_string_equal(rs_trace_event_name(RS_TRACE_TLS_HANDSHAKE_BEGIN), "tls_handshake_begin");
    assert_string_equal(rs_trace_event_name(RS_TRACE_TLS_HANDSHAKE_END), "tls_handshake_end");
    assert_string_equal(rs_trace_event_name(RS_TRACE_EVENT_TYPE_COUNT), "unknown");
}

static void trace_counts_task_scheduled_run_and_canceled(void **state) {
    static recorder_t r;
    rs_event_loop_t *loop = rs_test_loop_new(rs_test_backends[0]);
    rs_task_t now_task, future_task, canceled_task, after_task;
    const rs_trace_event_t *scheduled, *run;
    (void)state;
    task_runs = task_cancels = 0;
    recorder_init(&r);
    rs_task_init(&now_task, count_task, NULL, "trace-now");
    rs_task_init(&future_task, count_task, NULL, "trace-future");
    rs_task_init(&canceled_task, count_task, NULL, "trace-canceled");
    rs_task_init(&after_task, count_task, NULL, "trace-after");

    assert_int_equal(rs_trace_set_tracer(record_event, &r), RS_OK);
    assert_int_equal(rs_event_loop_schedule_task_now(loop, &now_task), RS_OK);
    assert_int_equal(rs_event_loop_schedule_task_future(loop, &future_task, rs_event_loop_now_ns(loop) + RS_NS_PER_MS),
                     RS_OK);
    assert_int_equal(
        rs_event_loop_schedule_task_future(loop, &canceled_task, rs_event_loop_now_ns(loop) + 3600 * RS_NS_PER_SEC),
        RS_OK);
    assert_int_equal(rs_event_loop_cancel_task(loop, &canceled_task), RS_OK);
    RS_TEST_RUN_UNTIL(loop, task_runs == 2);
    assert_int_equal(task_cancels, 1);

    assert_int_equal(count_of(&r, RS_TRACE_TASK_SCHEDULED, &now_task), 1);
    assert_int_equal(count_of(&r, RS_TRACE_TASK_SCHEDULED, &future_task), 1);
    assert_int_equal(count_of(&r, RS_TRACE_TASK_SCHEDULED, &canceled_task), 1);
    assert_int_equal(count_of(&r, RS_TRACE_TASK_RUN, &now_task), 1);
    assert_int_equal(count_of(&r, RS_TRACE_TASK_RUN, &future_task), 1);
    assert_int_equal(count_of(&r, RS_TRACE_TASK_RUN, &canceled_task), 0);
    assert_int_equal(count_of(&r, RS_TRACE_TASK_CANCELED, &canceled_task), 1);
    assert_int_equal(count_of(&r, RS_TRACE_TASK_CANCELED, NULL), 1);
    scheduled = find_event(&r, RS_TRACE_TASK_SCHEDULED, &now_task);
    run = find_event(&r, RS_TRACE_TASK_RUN, &now_task);
    assert_string_equal(scheduled->name, "trace-now");
    assert_string_equal(run->name, "trace-now");
    assert_int_equal(run->error, 0);
    assert_int_equal(run->io_events, 0);
    assert_true(run->timestamp_ns >= scheduled->timestamp_ns);
    assert_string_equal(find_event(&r, RS_TRACE_TASK_CANCELED, &canceled_task)->name, "trace-canceled");
    assert_ordered_on(&r, loop);

    /* Removed: nothing more, though tasks still run. */
    assert_int_equal(rs_trace_set_tracer(NULL, NULL), RS_OK);
    r.count = 0;
    assert_int_equal(rs_event_loop_schedule_task_now(loop, &after_task), RS_OK);
    RS_TEST_RUN_UNTIL(loop, task_runs == 3);
    assert_int_equal(r.count, 0);
    rs_event_loop_destroy(loop);
    assert_int_equal(r.count, 0);
    rs_mutex_cleanup(&r.lock);
}

static void trace_task_canceled_by_loop_destroy(void **state) {
    static recorder_t r;
    rs_event_loop_t *loop = rs_test_loop_new(rs_test_backends[0]);
    rs_task_t task;
    (void)state;
    task_runs = task_cancels = 0;
    recorder_init(&r);
    rs_task_init(&task, count_task, NULL, "trace-left");
    assert_int_equal(rs_trace_set_tracer(record_event, &r), RS_OK);
    assert_int_equal(rs_event_loop_schedule_task_future(loop, &task, rs_event_loop_now_ns(loop) + 3600 * RS_NS_PER_SEC),
                     RS_OK);
    rs_event_loop_destroy(loop);
    assert_int_equal(rs_trace_set_tracer(NULL, NULL), RS_OK);
    assert_int_equal(task_cancels, 1);
    assert_int_equal(count_of(&r, RS_TRACE_TASK_SCHEDULED, &task), 1);
    assert_int_equal(count_of(&r, RS_TRACE_TASK_CANCELED, &task), 1);
    assert_ptr_equal(find_event(&r, RS_TRACE_TASK_CANCELED, &task)->loop, loop);
    rs_mutex_cleanup(&r.lock);
}

/* ---- the time, taken only when the tracer asks */

typedef struct stamp_check {
    uint64_t first;      /* what the first ask gave */
    uint64_t copy_before; /* asked on a copy made before the first ask */
    uint64_t copy_after;  /* asked on a copy made after it */
    uint64_t unasked;     /* the field when the tracer was called */
    int calls;
    bool same_again;     /* a second ask gave the first one's value, and so did the field */
} stamp_check_t;

static void check_stamps(const rs_trace_event_t *event, void *user_data) {
    stamp_check_t *c = (stamp_check_t *)user_data;
    rs_trace_event_t before = *event, after;
    if (event->type != RS_TRACE_TASK_RUN) {
        return; /* the scheduling side is left alone: its time is never taken */
    }
    c->unasked = event->timestamp_ns;
    c->first = rs_trace_event_timestamp_ns(event);
    after = *event;
    c->same_again = rs_trace_event_timestamp_ns(event) == c->first && event->timestamp_ns == c->first;
    c->copy_before = rs_trace_event_timestamp_ns(&before);
    c->copy_after = rs_trace_event_timestamp_ns(&after);
    ++c->calls;
}

static void count_and_keep_scheduled(const rs_trace_event_t *event, void *user_data) {
    rs_trace_event_t *kept = (rs_trace_event_t *)user_data;
    if (event->type == RS_TRACE_TASK_SCHEDULED) {
        *kept = *event; /* never asked */
    }
}

/* The clock is read when the tracer asks, once per event: the value is the
 * time of the call, the same on a second ask and in the field; a copy made
 * before the ask has none (0), and one made after has it; an event whose time
 * is never asked carries 0. NULL gives 0. */
static void trace_timestamp_taken_when_asked(void **state) {
    stamp_check_t c;
    rs_trace_event_t kept;
    rs_event_loop_t *loop = rs_test_loop_new(rs_test_backends[0]);
    rs_task_t task;
    uint64_t start, end;
    (void)state;
    task_runs = task_cancels = 0;
    memset(&c, 0, sizeof(c));
    assert_int_equal(rs_trace_event_timestamp_ns(NULL), 0);

    assert_int_equal(rs_trace_set_tracer(check_stamps, &c), RS_OK);
    rs_task_init(&task, count_task, NULL, "trace-stamp");
    start = rs_clock_now_ns();
    assert_int_equal(rs_event_loop_schedule_task_now(loop, &task), RS_OK);
    RS_TEST_RUN_UNTIL(loop, task_runs == 1);
    end = rs_clock_now_ns();
    assert_int_equal(rs_trace_set_tracer(NULL, NULL), RS_OK);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.unasked, 0);
    assert_true(c.first >= start && c.first <= end);
    assert_true(c.same_again);
    assert_int_equal(c.copy_before, 0);
    assert_int_equal(c.copy_after, c.first);

    memset(&kept, 0xff, sizeof(kept));
    assert_int_equal(rs_trace_set_tracer(count_and_keep_scheduled, &kept), RS_OK);
    rs_task_init(&task, count_task, NULL, "trace-unasked");
    assert_int_equal(rs_event_loop_schedule_task_now(loop, &task), RS_OK);
    RS_TEST_RUN_UNTIL(loop, task_runs == 2);
    assert_int_equal(rs_trace_set_tracer(NULL, NULL), RS_OK);
    assert_int_equal(kept.type, RS_TRACE_TASK_SCHEDULED);
    assert_int_equal(kept.timestamp_ns, 0);
    assert_int_equal(rs_trace_event_timestamp_ns(&kept), 0); /* a copy: nothing is read */
    rs_event_loop_destroy(loop);
}

/* A task scheduled from another thread: SCHEDULED there, RUN on the loop's. */
typedef struct xthread_ctx {
    rs_event_loop_t *loop;
    rs_task_t *task;
} xthread_ctx_t;

static void schedule_from_thread(void *arg) {
    xthread_ctx_t *c = (xthread_ctx_t *)arg;
    assert_int_equal(rs_event_loop_schedule_task_now(c->loop, c->task), RS_OK);
}

static void trace_cross_thread_schedule(void **state) {
    static recorder_t r;
    rs_event_loop_t *loop;
    rs_task_t task;
    rs_thread_t thread;
    xthread_ctx_t c;
    (void)state;
    RS_TEST_NEEDS_THREADS();
    loop = rs_test_loop_new(rs_test_backends[0]);
    task_runs = task_cancels = 0;
    recorder_init(&r);
    rs_task_init(&task, count_task, NULL, "trace-xthread");
    c.loop = loop;
    c.task = &task;
    assert_int_equal(rs_trace_set_tracer(record_event, &r), RS_OK);
    assert_int_equal(rs_thread_launch(&thread, schedule_from_thread, &c, NULL), RS_OK);
    assert_int_equal(rs_thread_join(&thread), RS_OK);
    RS_TEST_RUN_UNTIL(loop, task_runs == 1);
    assert_int_equal(rs_trace_set_tracer(NULL, NULL), RS_OK);
    assert_int_equal(count_of(&r, RS_TRACE_TASK_SCHEDULED, &task), 1);
    assert_int_equal(count_of(&r, RS_TRACE_TASK_RUN, &task), 1);
    assert_ptr_equal(find_event(&r, RS_TRACE_TASK_SCHEDULED, &task)->loop, loop);
    assert_true(find_event(&r, RS_TRACE_TASK_RUN, &task)->timestamp_ns >=
                find_event(&r, RS_TRACE_TASK_SCHEDULED, &task)->timestamp_ns);
    rs_event_loop_destroy(loop);
    rs_mutex_cleanup(&r.lock);
}

/* ---- I/O dispatch, per backend */

static int io_calls;
static int io_seen_events;
static void on_io(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    char buf[8];
    (void)loop;
    (void)user_data;
    ++io_calls;
    io_seen_events = events;
    while (read(handle->fd, buf, sizeof(buf)) > 0) {
    }
}

static void trace_io_dispatch(rs_event_loop_backend_t b) {
    static recorder_t r;
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_io_handle_t handle;
    int fds[2];
    const rs_trace_event_t *ev;
    io_calls = 0;
    io_seen_events = 0;
    recorder_init(&r);
    assert_int_equal(rs_test_pipe_nonblocking(fds), 0);
    memset(&handle, 0, sizeof(handle));
    handle.fd = fds[0];
    assert_int_equal(rs_trace_set_tracer(record_event, &r), RS_OK);
    assert_int_equal(rs_event_loop_subscribe(loop, &handle, RS_IO_READABLE, on_io, NULL), RS_OK);
    assert_int_equal(write(fds[1], "x", 1), 1);
    RS_TEST_RUN_UNTIL(loop, io_calls >= 1);
    assert_int_equal(rs_trace_set_tracer(NULL, NULL), RS_OK);
    /* One event per callback, before it, about the handle, with its bits. */
    assert_int_equal(count_of(&r, RS_TRACE_IO_DISPATCH, &handle), (size_t)io_calls);
    ev = find_event(&r, RS_TRACE_IO_DISPATCH, &handle);
    assert_non_null(ev);
    assert_string_equal(ev->name, "io");
    assert_true(ev->io_events & RS_IO_READABLE);
    assert_int_equal(ev->io_events, io_seen_events);
    assert_int_equal(ev->error, 0);
    assert_ordered_on(&r, loop);

    /* Not traced once removed. */
    r.count = 0;
    assert_int_equal(write(fds[1], "y", 1), 1);
    RS_TEST_RUN_UNTIL(loop, io_calls >= 2);
    assert_int_equal(r.count, 0);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &handle), RS_OK);
    rs_event_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
    rs_mutex_cleanup(&r.lock);
}

RS_TEST_PER_BACKEND_IO(test_, trace_io_dispatch)

/* ---- channel setup and shutdown, through the testing channel */

static void trace_channel_setup_and_shutdown(void **state) {
    static recorder_t r;
    rs_testing_channel_options_t o;
    rs_testing_channel_t *tc;
    rs_channel_t *channel;
    rs_event_loop_t *loop;
    const rs_trace_event_t *ev;
    int err = -1;
    (void)state;
    recorder_init(&r);
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    assert_int_equal(rs_trace_set_tracer(record_event, &r), RS_OK);
    tc = rs_testing_channel_new(&o, &err);
    assert_non_null(tc);
    channel = rs_testing_channel_get_channel(tc);
    loop = rs_testing_channel_get_loop(tc);
    assert_int_equal(count_of(&r, RS_TRACE_CHANNEL_SETUP, channel), 1);
    ev = find_event(&r, RS_TRACE_CHANNEL_SETUP, channel);
    assert_int_equal(ev->error, RS_OK);
    assert_ptr_equal(ev->loop, loop);
    assert_string_equal(ev->name, "channel");
    assert_int_equal(count_of(&r, RS_TRACE_CHANNEL_SHUTDOWN, channel), 0);

    assert_int_equal(rs_channel_shutdown(channel, RS_ECONNABORTED), RS_OK);
    assert_int_equal(rs_testing_channel_run(tc), RS_OK);
    assert_true(rs_testing_channel_is_shut_down(tc, &err));
    assert_int_equal(count_of(&r, RS_TRACE_CHANNEL_SHUTDOWN, channel), 1);
    ev = find_event(&r, RS_TRACE_CHANNEL_SHUTDOWN, channel);
    assert_int_equal(ev->error, RS_ECONNABORTED);
    assert_ptr_equal(ev->loop, loop);
    assert_true(ev->timestamp_ns >= find_event(&r, RS_TRACE_CHANNEL_SETUP, channel)->timestamp_ns);
    /* The channel's own tasks were traced too, all on its loop. */
    assert_true(count_of(&r, RS_TRACE_TASK_RUN, NULL) > 0);
    assert_ordered_on(&r, loop);
    rs_testing_channel_destroy(tc);
    assert_int_equal(rs_trace_set_tracer(NULL, NULL), RS_OK);
    rs_mutex_cleanup(&r.lock);
}

/* ---- rs_trace_emit, for add-ons */

static void trace_emit_reaches_the_tracer_and_ignores_bad_types(void **state) {
    static recorder_t r;
    int subject;
    (void)state;
    recorder_init(&r);
    rs_trace_emit(RS_TRACE_TLS_HANDSHAKE_BEGIN, NULL, &subject, "mine", RS_OK); /* none installed */
    assert_int_equal(rs_trace_set_tracer(record_event, &r), RS_OK);
    rs_trace_emit(RS_TRACE_TLS_HANDSHAKE_END, NULL, &subject, "mine", RS_ETIMEDOUT);
    rs_trace_emit(RS_TRACE_EVENT_TYPE_COUNT, NULL, &subject, "mine", RS_OK);
    rs_trace_emit((rs_trace_event_type_t)-1, NULL, &subject, "mine", RS_OK);
    assert_int_equal(rs_trace_set_tracer(NULL, NULL), RS_OK);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.events[0].type, RS_TRACE_TLS_HANDSHAKE_END);
    assert_ptr_equal(r.events[0].subject, &subject);
    assert_string_equal(r.events[0].name, "mine");
    assert_int_equal(r.events[0].error, RS_ETIMEDOUT);
    assert_null(r.events[0].loop);
    rs_mutex_cleanup(&r.lock);
}

/* ---- many loops: a group whose threads emit while the tracer is swapped */

#define GROUP_LOOPS 3
#define GROUP_ROUNDS 40
#define GROUP_TASKS_PER_LOOP 8

typedef struct group_task {
    rs_task_t task;
    rs_event_loop_t *loop;
    int *remaining; /* atomic */
} group_task_t;

static void group_task_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    group_task_t *g = (group_task_t *)arg;
    (void)task;
    (void)status;
    rs__atomic_add_int(g->remaining, -1);
}

/* The old tracer's count is read after set_tracer returns and must never
 * change afterwards: no call of a replaced tracer is running or starts. */
static void trace_group_tracer_swap_under_load(void **state) {
    static recorder_t a, b;
    static group_task_t tasks[GROUP_LOOPS][GROUP_TASKS_PER_LOOP];
    rs_event_loop_group_options_t go;
    rs_event_loop_group_t *group;
    rs_event_loop_t *loops[GROUP_LOOPS];
    int remaining;
    int err = -1;
    int round;
    size_t i, j;
    (void)state;
    RS_TEST_NEEDS_THREADS();
    recorder_init(&a);
    recorder_init(&b);
    memset(&go, 0, sizeof(go));
    go.allocator = &rs_test_allocator;
    go.loop_count = GROUP_LOOPS;
    group = rs_event_loop_group_new(&go, &err);
    assert_non_null(group);
    for (i = 0; i < GROUP_LOOPS; ++i) {
        loops[i] = rs_event_loop_group_get_loop_at(group, i);
    }
    for (round = 0; round < GROUP_ROUNDS; ++round) {
        recorder_t *now = (round % 2) ? &a : &b;
        recorder_t *old = (round % 2) ? &b : &a;
        uint64_t old_calls = 0;
        rs__atomic_store_int(&remaining, GROUP_LOOPS * GROUP_TASKS_PER_LOOP);
        for (i = 0; i < GROUP_LOOPS; ++i) {
            for (j = 0; j < GROUP_TASKS_PER_LOOP; ++j) {
                group_task_t *g = &tasks[i][j];
                g->loop = loops[i];
                g->remaining = &remaining;
                rs_task_init(&g->task, group_task_fn, g, "trace-group");
                assert_int_equal(rs_event_loop_schedule_task_now(g->loop, &g->task), RS_OK);
            }
            if (i == 0) {
                /* Swap while the loops are running these. */
                assert_int_equal(rs_trace_set_tracer(record_event, now), RS_OK);
                old_calls = recorder_calls(old);
            }
        }
        while (rs__atomic_load_int(&remaining) > 0) {
            rs_thread_sleep_ns(100 * 1000);
        }
        assert_true(recorder_calls(old) == old_calls);
    }
    assert_int_equal(rs_trace_set_tracer(NULL, NULL), RS_OK);
    assert_int_equal(rs_event_loop_group_destroy(group), RS_OK);
    /* Both saw events, and every recorded one names one of the group's loops. */
    assert_true(recorder_calls(&a) > 0);
    assert_true(recorder_calls(&b) > 0);
    for (i = 0; i < a.count; ++i) {
        bool ours = false;
        for (j = 0; j < GROUP_LOOPS; ++j) {
            ours = ours || a.events[i].loop == loops[j];
        }
        assert_true(ours);
    }
    rs_mutex_cleanup(&a.lock);
    rs_mutex_cleanup(&b.lock);
}

/* ---- the replacement guarantee on a loop's own thread, and loops that
 * come and go while tracers are replaced */

/* Waits (sleeping) until cond, for at most RS_TEST_WAIT_NS; fails past that. */
#define TRACE_WAIT_FOR(cond)                                                                        \
    do {                                                                                            \
        uint64_t trace_wait_deadline_ = rs_clock_now_ns() + RS_TEST_WAIT_NS;                        \
        while (!(cond)) {                                                                           \
            assert_true(rs_clock_now_ns() < trace_wait_deadline_);                                  \
            rs_thread_sleep_ns(50 * 1000);                                                          \
        }                                                                                           \
    } while (0)

/* A tracer that stays inside each call for a while, saying so. */
typedef struct slow_tracer {
    int running;                /* atomic: calls under way */
    int loop_thread_calls;      /* atomic: calls made on the loop's own thread */
    rs_event_loop_t *loop;
    RS__ALIGN8 uint64_t calls;  /* atomic: calls started */
} slow_tracer_t;

#define SLOW_TRACER_SLEEP_NS (200 * 1000)

static void slow_trace(const rs_trace_event_t *event, void *user_data) {
    slow_tracer_t *t = (slow_tracer_t *)user_data;
    rs__atomic_add_int(&t->running, 1);
    rs__atomic_add_u64(&t->calls, 1);
    if (rs_event_loop_is_on_loop_thread(t->loop) && event->loop == t->loop) {
        rs__atomic_add_int(&t->loop_thread_calls, 1);
    }
    rs_thread_sleep_ns(SLOW_TRACER_SLEEP_NS);
    rs__atomic_add_int(&t->running, -1);
}

/* A task that schedules itself again from the loop's thread until told to
 * stop: a steady stream of SCHEDULED and RUN events on that thread. */
typedef struct spinning_task {
    rs_task_t task;
    rs_event_loop_t *loop;
    int stop; /* atomic */
    int stopped; /* atomic */
} spinning_task_t;

static void spin_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    spinning_task_t *s = (spinning_task_t *)arg;
    if (status != RS_TASK_STATUS_RUN || rs__atomic_load_int(&s->stop)) {
        rs__atomic_store_int(&s->stopped, 1);
        return;
    }
    rs_task_init(task, spin_task, s, "trace-spin");
    assert_int_equal(rs_event_loop_schedule_task_now(s->loop, task), RS_OK);
}

#define LOOP_THREAD_SWAP_ROUNDS 6

/* The loop thread is inside a call of the old tracer when the main thread
 * replaces it: rs_trace_set_tracer returns only once that call is over, and
 * the old tracer is never called again. */
static void trace_replaced_while_running_on_loop_thread(void **state) {
    static slow_tracer_t tracers[2];
    static spinning_task_t spin;
    rs_event_loop_t *loop;
    int round;
    (void)state;
    RS_TEST_NEEDS_THREADS();
    loop = rs_test_loop_new(rs_test_backends[0]);
    memset(tracers, 0, sizeof(tracers));
    memset(&spin, 0, sizeof(spin));
    tracers[0].loop = tracers[1].loop = loop;
    spin.loop = loop;
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    rs_task_init(&spin.task, spin_task, &spin, "trace-spin");
    assert_int_equal(rs_event_loop_schedule_task_now(loop, &spin.task), RS_OK);
    assert_int_equal(rs_trace_set_tracer(slow_trace, &tracers[0]), RS_OK);
    for (round = 0; round < LOOP_THREAD_SWAP_ROUNDS; ++round) {
        slow_tracer_t *old = &tracers[round % 2];
        slow_tracer_t *next = &tracers[(round + 1) % 2];
        uint64_t old_calls;
        int settle;
        /* Wait until the loop thread is inside the old tracer, then replace it. */
        TRACE_WAIT_FOR(rs__atomic_load_int(&old->loop_thread_calls) > 0 && rs__atomic_load_int(&old->running) > 0);
        assert_int_equal(rs_trace_set_tracer(slow_trace, next), RS_OK);
        assert_int_equal(rs__atomic_load_int(&old->running), 0);
        old_calls = rs__atomic_load_u64(&old->calls);
        /* Let the loop thread go on through several calls of the new one. */
        for (settle = 0; settle < 5; ++settle) {
            uint64_t seen = rs__atomic_load_u64(&next->calls);
            TRACE_WAIT_FOR(rs__atomic_load_u64(&next->calls) > seen);
            assert_int_equal(rs__atomic_load_int(&old->running), 0);
        }
        assert_true(rs__atomic_load_u64(&old->calls) == old_calls);
        /* The next round waits for new calls of this one's successor. */
        rs__atomic_store_int(&old->loop_thread_calls, 0);
    }
    rs__atomic_store_int(&spin.stop, 1);
    TRACE_WAIT_FOR(rs__atomic_load_int(&spin.stopped));
    assert_int_equal(rs_trace_set_tracer(NULL, NULL), RS_OK);
    assert_int_equal(rs__atomic_load_int(&tracers[0].running), 0);
    assert_int_equal(rs__atomic_load_int(&tracers[1].running), 0);
    assert_true(rs__atomic_load_int(&tracers[LOOP_THREAD_SWAP_ROUNDS % 2].loop_thread_calls) > 0);
    rs_event_loop_destroy(loop);
}

/* Replaces the tracer over and over until told to stop (or a bound). */
typedef struct swapper {
    recorder_t *recorders[2];
    int stop;  /* atomic */
    int swaps; /* swaps made */
} swapper_t;

#define SWAPPER_MAX_SWAPS 200000

static void swap_tracers(void *arg) {
    swapper_t *w = (swapper_t *)arg;
    while (!rs__atomic_load_int(&w->stop) && w->swaps < SWAPPER_MAX_SWAPS) {
        assert_int_equal(rs_trace_set_tracer(record_event, w->recorders[w->swaps % 2]), RS_OK);
        if (w->swaps % 3 == 0) {
            assert_int_equal(rs_trace_set_tracer(NULL, NULL), RS_OK);
        }
        ++w->swaps;
    }
}

#define CHURN_LOOPS 40

static int churn_runs; /* atomic */
static void churn_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    (void)task;
    (void)arg;
    if (status == RS_TASK_STATUS_RUN) {
        rs__atomic_add_int(&churn_runs, 1);
    }
}

/* Loops created, run (on their own thread or on this one) and destroyed while
 * another thread replaces the tracer without pause: a destroy never races the
 * setter's walk over the live loops. */
static void trace_loops_come_and_go_while_tracer_replaced(void **state) {
    static recorder_t a, b;
    swapper_t w;
    rs_thread_t thread;
    int i;
    (void)state;
    RS_TEST_NEEDS_THREADS();
    recorder_init(&a);
    recorder_init(&b);
    memset(&w, 0, sizeof(w));
    w.recorders[0] = &a;
    w.recorders[1] = &b;
    rs__atomic_store_int(&churn_runs, 0);
    assert_int_equal(rs_thread_launch(&thread, swap_tracers, &w, NULL), RS_OK);
    for (i = 0; i < CHURN_LOOPS; ++i) {
        rs_event_loop_t *loop = rs_test_loop_new(rs_test_backends[0]);
        rs_task_t tasks[2];
        int target = rs__atomic_load_int(&churn_runs) + 1;
        rs_task_init(&tasks[0], churn_task, NULL, "trace-churn");
        rs_task_init(&tasks[1], churn_task, NULL, "trace-churn-left");
        if (i % 2) {
            /* On its own thread; the second task is left for destroy to cancel. */
            assert_int_equal(rs_event_loop_start(loop), RS_OK);
            assert_int_equal(rs_event_loop_schedule_task_now(loop, &tasks[0]), RS_OK);
            assert_int_equal(rs_event_loop_schedule_task_future(loop, &tasks[1], UINT64_MAX), RS_OK);
            TRACE_WAIT_FOR(rs__atomic_load_int(&churn_runs) >= target);
        } else {
            assert_int_equal(rs_event_loop_schedule_task_now(loop, &tasks[0]), RS_OK);
            assert_int_equal(rs_event_loop_schedule_task_future(loop, &tasks[1], UINT64_MAX), RS_OK);
            RS_TEST_RUN_UNTIL(loop, rs__atomic_load_int(&churn_runs) >= target);
        }
        rs_event_loop_destroy(loop);
    }
    rs__atomic_store_int(&w.stop, 1);
    assert_int_equal(rs_thread_join(&thread), RS_OK);
    assert_int_equal(rs_trace_set_tracer(NULL, NULL), RS_OK);
    assert_int_equal(rs__atomic_load_int(&churn_runs), CHURN_LOOPS);
    assert_true(w.swaps > 0);
    rs_mutex_cleanup(&a.lock);
    rs_mutex_cleanup(&b.lock);
}

/* ---- both ways of marking a loop's flag (see trace.c's top comment) */

/* Plain marks are on exactly where the kernel offers membarrier's private
 * expedited barrier (asked with MEMBARRIER_CMD_QUERY, 0), once a tracer has
 * been installed. */
static void trace_plain_marks_where_membarrier_allows(void **state) {
    bool offered = false;
    (void)state;
#if RS__HAVE_MEMBARRIER
    {
        long commands = syscall(__NR_membarrier, 0, 0);
        offered = commands > 0 && (commands & RS__MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0;
    }
#endif
    assert_int_equal(rs_trace_set_tracer(record_event, NULL), RS_OK);
    assert_int_equal(rs_trace_set_tracer(NULL, NULL), RS_OK);
    assert_int_equal(rs__atomic_load_int(&rs__trace_plain_marks), offered ? 1 : 0);
    if (!offered) {
        print_message("[ NOTE     ] no membarrier here: loop threads' emits exchange\n");
    }
}

/* Runs a test with plain marks off: loop threads' emits take the exchanging
 * path, as where membarrier is refused. A tracer is installed and removed
 * first, so that the barrier is registered already and nothing turns the
 * marks back on meanwhile. */
static void with_exchanged_marks(void (*test)(void **), void **state) {
    int was;
    assert_int_equal(rs_trace_set_tracer(record_event, NULL), RS_OK);
    assert_int_equal(rs_trace_set_tracer(NULL, NULL), RS_OK);
    was = rs__atomic_load_int(&rs__trace_plain_marks);
    rs__atomic_store_int(&rs__trace_plain_marks, 0);
    test(state);
    rs__atomic_store_int(&rs__trace_plain_marks, was);
}

static void trace_group_tracer_swap_under_load_exchanged(void **state) {
    with_exchanged_marks(trace_group_tracer_swap_under_load, state);
}

static void trace_replaced_while_running_on_loop_thread_exchanged(void **state) {
    with_exchanged_marks(trace_replaced_while_running_on_loop_thread, state);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trace_event_names),
        cmocka_unit_test(trace_timestamp_taken_when_asked),
        cmocka_unit_test(trace_plain_marks_where_membarrier_allows),
        cmocka_unit_test(trace_counts_task_scheduled_run_and_canceled),
        cmocka_unit_test(trace_task_canceled_by_loop_destroy),
        cmocka_unit_test(trace_cross_thread_schedule),
        RS_TEST_PER_BACKEND_TESTS(test_, trace_io_dispatch),
        cmocka_unit_test(trace_channel_setup_and_shutdown),
        cmocka_unit_test(trace_emit_reaches_the_tracer_and_ignores_bad_types),
        cmocka_unit_test(trace_group_tracer_swap_under_load),
        cmocka_unit_test(trace_replaced_while_running_on_loop_thread),
        cmocka_unit_test(trace_loops_come_and_go_while_tracer_replaced),
        cmocka_unit_test(trace_group_tracer_swap_under_load_exchanged),
        cmocka_unit_test(trace_replaced_while_running_on_loop_thread_exchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* RS__NO_TRACE */

static void trace_compiled_out_setting_is_enotsup_and_nothing_is_traced(void **state) {
    static recorder_t r;
    rs_event_loop_t *loop = rs_test_loop_new(rs_test_backends[0]);
    rs_task_t task;
    int subject;
    (void)state;
    task_runs = task_cancels = 0;
    recorder_init(&r);
    assert_int_equal(rs_trace_set_tracer(record_event, &r), RS_ENOTSUP);
    assert_int_equal(rs_trace_set_tracer(NULL, NULL), RS_OK);
    rs_task_init(&task, count_task, NULL, "trace-off");
    assert_int_equal(rs_event_loop_schedule_task_now(loop, &task), RS_OK);
    RS_TEST_RUN_UNTIL(loop, task_runs == 1);
    rs_trace_emit(RS_TRACE_TLS_HANDSHAKE_BEGIN, loop, &subject, "mine", RS_OK);
    rs_event_loop_destroy(loop);
    assert_int_equal(r.calls, 0);
    assert_string_equal(rs_trace_event_name(RS_TRACE_IO_DISPATCH), "io_dispatch");
    rs_mutex_cleanup(&r.lock);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trace_compiled_out_setting_is_enotsup_and_nothing_is_traced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
