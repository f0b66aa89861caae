/*
 * The task scheduler on its own (src/loop/scheduler.c, private API): ordering,
 * tick boundaries, cancellation, cleanup, self-rescheduling and self-freeing
 * tasks, and the out-of-memory overflow path of the timed heap.
 *
 * The scheduler is single-threaded, so every test drives it directly from the
 * test thread with explicit `now` values.
 */
#include "test_util.h"

#define MAX_RECORDS 4096

typedef struct record {
    int ids[MAX_RECORDS];
    rs_task_status_t statuses[MAX_RECORDS];
    size_t count;
} record_t;

typedef struct test_task {
    rs_task_t task;
    record_t *record;
    int id;
    /* optional actions performed by the task function */
    rs__scheduler_t *sched;
    rs_task_t *to_cancel;      /* cancel this task when run */
    rs_task_t *to_schedule;    /* schedule this task ASAP when run */
    rs_task_t *to_schedule_at; /* schedule this task at schedule_at_ns when run */
    uint64_t schedule_at_ns;
    int reschedule_times;      /* reschedule itself ASAP this many times */
    bool was_scheduled_in_fn;  /* rs_task_is_scheduled() seen inside the function */
    rs_task_t *peek;           /* record rs_task_is_scheduled(peek) when run */
    bool peek_scheduled;
} test_task_t;

static void record_push(record_t *r, int id, rs_task_status_t status) {
    if (r->count < MAX_RECORDS) {
        r->ids[r->count] = id;
        r->statuses[r->count] = status;
    }
    r->count++;
}

static void test_task_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    test_task_t *t = (test_task_t *)arg;
    (void)task;
    t->was_scheduled_in_fn = rs_task_is_scheduled(&t->task);
    if (t->peek) {
        t->peek_scheduled = rs_task_is_scheduled(t->peek);
    }
    record_push(t->record, t->id, status);
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    if (t->to_cancel) {
        rs__scheduler_cancel(t->sched, t->to_cancel);
    }
    if (t->to_schedule) {
        rs__scheduler_schedule_now(t->sched, t->to_schedule);
    }
    if (t->to_schedule_at) {
        rs__scheduler_schedule_at(t->sched, t->to_schedule_at, t->schedule_at_ns);
    }
    if (t->reschedule_times > 0) {
        t->reschedule_times--;
        rs__scheduler_schedule_now(t->sched, &t->task);
    }
}

static void init_tasks(test_task_t *tasks, size_t n, record_t *rec, rs__scheduler_t *sched) {
    size_t i;
    memset(tasks, 0, n * sizeof(*tasks));
    for (i = 0; i < n; ++i) {
        tasks[i].record = rec;
        tasks[i].id = (int)i;
        tasks[i].sched = sched;
        rs_task_init(&tasks[i].task, test_task_fn, &tasks[i], "test");
    }
}

static void assert_record(const record_t *r, const int *ids, const rs_task_status_t *statuses, size_t n) {
    size_t i;
    assert_int_equal(r->count, n);
    for (i = 0; i < n; ++i) {
        assert_int_equal(r->ids[i], ids[i]);
        assert_int_equal(r->statuses[i], statuses ? statuses[i] : RS_TASK_STATUS_RUN);
    }
}

static void scheduler_new(rs__scheduler_t *s) {
    assert_int_equal(rs__scheduler_init(s, &rs_test_allocator), RS_OK);
}

/* ------------------------------------------------------------------------- */

static void scheduler_empty_has_no_tasks(void **state) {
    rs__scheduler_t s;
    uint64_t next = 12345;
    (void)state;
    scheduler_new(&s);
    assert_false(rs__scheduler_has_tasks(&s, &next));
    rs__scheduler_run_due(&s, 1000);
    assert_false(rs__scheduler_has_tasks(&s, &next));
    rs__scheduler_cleanup(&s);
}

static void scheduler_asap_tasks_run_in_fifo_order(void **state) {
    rs__scheduler_t s;
    record_t rec = {{0}, {0}, 0};
    test_task_t tasks[10];
    int expect[10];
    uint64_t next = 999;
    size_t i;
    (void)state;
    scheduler_new(&s);
    init_tasks(tasks, 10, &rec, &s);
    for (i = 0; i < 10; ++i) {
        rs__scheduler_schedule_now(&s, &tasks[i].task);
        assert_true(rs_task_is_scheduled(&tasks[i].task));
        expect[i] = (int)i;
    }
    assert_true(rs__scheduler_has_tasks(&s, &next));
    assert_int_equal(next, 0);
    assert_int_equal(rec.count, 0); /* never inline */
    rs__scheduler_run_due(&s, 100);
    assert_record(&rec, expect, NULL, 10);
    for (i = 0; i < 10; ++i) {
        assert_false(tasks[i].was_scheduled_in_fn);
        assert_false(rs_task_is_scheduled(&tasks[i].task));
    }
    assert_false(rs__scheduler_has_tasks(&s, &next));
    rs__scheduler_cleanup(&s);
    assert_int_equal(rec.count, 10);
}

static void scheduler_timed_tasks_run_by_time_then_fifo(void **state) {
    rs__scheduler_t s;
    record_t rec = {{0}, {0}, 0};
    test_task_t tasks[8];
    static const uint64_t times[8] = {300, 100, 200, 100, 300, 100, 50, 200};
    static const int first_tick[4] = {6, 1, 3, 5};   /* due at <= 150 */
    static const int all[8] = {6, 1, 3, 5, 2, 7, 0, 4};
    uint64_t next = 0;
    size_t i;
    (void)state;
    scheduler_new(&s);
    init_tasks(tasks, 8, &rec, &s);
    for (i = 0; i < 8; ++i) {
        rs__scheduler_schedule_at(&s, &tasks[i].task, times[i]);
    }
    assert_true(rs__scheduler_has_tasks(&s, &next));
    assert_int_equal(next, 50);

    rs__scheduler_run_due(&s, 49); /* nothing is due yet */
    assert_int_equal(rec.count, 0);

    rs__scheduler_run_due(&s, 150);
    assert_record(&rec, first_tick, NULL, 4);
    assert_true(rs__scheduler_has_tasks(&s, &next));
    assert_int_equal(next, 200);

    rs__scheduler_run_due(&s, 1000);
    assert_record(&rec, all, NULL, 8);
    assert_false(rs__scheduler_has_tasks(&s, &next));
    rs__scheduler_cleanup(&s);
}

static void scheduler_task_due_exactly_now_runs(void **state) {
    rs__scheduler_t s;
    record_t rec = {{0}, {0}, 0};
    test_task_t tasks[1];
    static const int expect[1] = {0};
    (void)state;
    scheduler_new(&s);
    init_tasks(tasks, 1, &rec, &s);
    rs__scheduler_schedule_at(&s, &tasks[0].task, 500);
    rs__scheduler_run_due(&s, 499);
    assert_int_equal(rec.count, 0);
    rs__scheduler_run_due(&s, 500);
    assert_record(&rec, expect, NULL, 1);
    rs__scheduler_cleanup(&s);
}

static void scheduler_asap_tasks_run_before_due_timed_tasks(void **state) {
    rs__scheduler_t s;
    record_t rec = {{0}, {0}, 0};
    test_task_t tasks[4];
    static const int expect[4] = {1, 3, 2, 0};
    (void)state;
    scheduler_new(&s);
    init_tasks(tasks, 4, &rec, &s);
    rs__scheduler_schedule_at(&s, &tasks[0].task, 20);
    rs__scheduler_schedule_now(&s, &tasks[1].task);
    rs__scheduler_schedule_at(&s, &tasks[2].task, 10);
    rs__scheduler_schedule_now(&s, &tasks[3].task);
    rs__scheduler_run_due(&s, 30);
    assert_record(&rec, expect, NULL, 4);
    rs__scheduler_cleanup(&s);
}

static void scheduler_task_scheduled_during_tick_runs_next_tick(void **state) {
    rs__scheduler_t s;
    record_t rec = {{0}, {0}, 0};
    test_task_t tasks[3];
    static const int tick1[1] = {0};
    static const int tick2[3] = {0, 1, 2};
    uint64_t next = 77;
    (void)state;
    scheduler_new(&s);
    init_tasks(tasks, 3, &rec, &s);
    /* task 0 schedules task 1 ASAP and task 2 at a time that is already due */
    tasks[0].to_schedule = &tasks[1].task;
    tasks[0].to_schedule_at = &tasks[2].task;
    tasks[0].schedule_at_ns = 50;
    rs__scheduler_schedule_now(&s, &tasks[0].task);

    rs__scheduler_run_due(&s, 100);
    assert_record(&rec, tick1, NULL, 1);
    assert_true(rs_task_is_scheduled(&tasks[1].task));
    assert_true(rs_task_is_scheduled(&tasks[2].task));
    assert_true(rs__scheduler_has_tasks(&s, &next));
    assert_int_equal(next, 0);

    rs__scheduler_run_due(&s, 100);
    assert_record(&rec, tick2, NULL, 3);
    assert_false(rs__scheduler_has_tasks(&s, &next));
    rs__scheduler_cleanup(&s);
}

static void scheduler_cancel_runs_task_once_with_canceled(void **state) {
    rs__scheduler_t s;
    record_t rec = {{0}, {0}, 0};
    test_task_t tasks[4];
    uint64_t next = 0;
    (void)state;
    scheduler_new(&s);
    init_tasks(tasks, 4, &rec, &s);
    rs__scheduler_schedule_at(&s, &tasks[0].task, 100); /* heap */
    rs__scheduler_schedule_now(&s, &tasks[1].task);     /* ASAP list */
    rs__scheduler_schedule_at(&s, &tasks[2].task, 200);
    rs__scheduler_schedule_now(&s, &tasks[3].task);

    rs__scheduler_cancel(&s, &tasks[0].task);
    assert_int_equal(rec.count, 1);
    assert_false(rs_task_is_scheduled(&tasks[0].task));
    rs__scheduler_cancel(&s, &tasks[1].task);
    assert_int_equal(rec.count, 2);
    assert_false(rs_task_is_scheduled(&tasks[1].task));

    /* canceling again is a no-op */
    rs__scheduler_cancel(&s, &tasks[0].task);
    rs__scheduler_cancel(&s, &tasks[1].task);
    assert_int_equal(rec.count, 2);

    assert_true(rs__scheduler_has_tasks(&s, &next));
    assert_int_equal(next, 0);
    rs__scheduler_run_due(&s, 1000);
    /* task 3 (ASAP) runs before timed task 2 */
    assert_int_equal(rec.count, 4);
    assert_int_equal(rec.ids[0], 0);
    assert_int_equal(rec.ids[1], 1);
    assert_int_equal(rec.ids[2], 3);
    assert_int_equal(rec.ids[3], 2);
    assert_int_equal(rec.statuses[0], RS_TASK_STATUS_CANCELED);
    assert_int_equal(rec.statuses[1], RS_TASK_STATUS_CANCELED);
    assert_int_equal(rec.statuses[2], RS_TASK_STATUS_RUN);
    assert_int_equal(rec.statuses[3], RS_TASK_STATUS_RUN);
    assert_false(rs__scheduler_has_tasks(&s, &next));
    rs__scheduler_cleanup(&s);
    assert_int_equal(rec.count, 4);
}

static void scheduler_cancel_of_unscheduled_task_is_noop(void **state) {
    rs__scheduler_t s;
    record_t rec = {{0}, {0}, 0};
    test_task_t tasks[1];
    static const int expect[1] = {0};
    (void)state;
    scheduler_new(&s);
    init_tasks(tasks, 1, &rec, &s);
    assert_false(rs_task_is_scheduled(&tasks[0].task));
    rs__scheduler_cancel(&s, &tasks[0].task); /* never scheduled */
    assert_int_equal(rec.count, 0);
    rs__scheduler_schedule_now(&s, &tasks[0].task);
    rs__scheduler_run_due(&s, 1);
    assert_record(&rec, expect, NULL, 1);
    rs__scheduler_cancel(&s, &tasks[0].task); /* already ran */
    assert_int_equal(rec.count, 1);
    rs__scheduler_cleanup(&s);
    assert_int_equal(rec.count, 1);
}

static void scheduler_cancel_of_the_heap_top_updates_next_run(void **state) {
    rs__scheduler_t s;
    record_t rec = {{0}, {0}, 0};
    test_task_t tasks[3];
    uint64_t next = 0;
    (void)state;
    scheduler_new(&s);
    init_tasks(tasks, 3, &rec, &s);
    rs__scheduler_schedule_at(&s, &tasks[0].task, 10);
    rs__scheduler_schedule_at(&s, &tasks[1].task, 20);
    rs__scheduler_schedule_at(&s, &tasks[2].task, 30);
    rs__scheduler_cancel(&s, &tasks[0].task);
    assert_true(rs__scheduler_has_tasks(&s, &next));
    assert_int_equal(next, 20);
    rs__scheduler_cancel(&s, &tasks[1].task);
    assert_true(rs__scheduler_has_tasks(&s, &next));
    assert_int_equal(next, 30);
    rs__scheduler_cancel(&s, &tasks[2].task);
    assert_false(rs__scheduler_has_tasks(&s, &next));
    assert_int_equal(rec.count, 3);
    rs__scheduler_cleanup(&s);
    assert_int_equal(rec.count, 3);
}

/* Task 0 runs first in the tick and cancels tasks 1 (ASAP) and 3 (timed), which
 * are already in the same tick's running list: each runs once, CANCELED. */
static void scheduler_task_canceled_by_earlier_task_of_same_tick(void **state) {
    rs__scheduler_t s;
    record_t rec = {{0}, {0}, 0};
    test_task_t tasks[5];
    size_t i;
    int seen[5] = {0, 0, 0, 0, 0};
    (void)state;
    scheduler_new(&s);
    init_tasks(tasks, 5, &rec, &s);
    tasks[0].to_cancel = &tasks[1].task;
    rs__scheduler_schedule_now(&s, &tasks[0].task);
    rs__scheduler_schedule_now(&s, &tasks[1].task);
    rs__scheduler_schedule_now(&s, &tasks[2].task);
    rs__scheduler_schedule_at(&s, &tasks[3].task, 5);
    rs__scheduler_schedule_at(&s, &tasks[4].task, 5);
    /* task 2 (ASAP, so before the timed ones) cancels timed task 3 */
    tasks[2].to_cancel = &tasks[3].task;

    rs__scheduler_run_due(&s, 10);
    assert_int_equal(rec.count, 5);
    for (i = 0; i < rec.count; ++i) {
        int id = rec.ids[i];
        assert_true(id >= 0 && id < 5);
        seen[id]++;
        if (id == 1 || id == 3) {
            assert_int_equal(rec.statuses[i], RS_TASK_STATUS_CANCELED);
        } else {
            assert_int_equal(rec.statuses[i], RS_TASK_STATUS_RUN);
        }
    }
    for (i = 0; i < 5; ++i) {
        assert_int_equal(seen[i], 1);
    }
    /* order of the RUN ones is unchanged: 0, 2, 4 */
    {
        int runs[3];
        size_t n = 0;
        for (i = 0; i < rec.count; ++i) {
            if (rec.statuses[i] == RS_TASK_STATUS_RUN) {
                runs[n++] = rec.ids[i];
            }
        }
        assert_int_equal(n, 3);
        assert_int_equal(runs[0], 0);
        assert_int_equal(runs[1], 2);
        assert_int_equal(runs[2], 4);
    }
    /* tick 2: nothing left to run, nothing runs twice */
    rs__scheduler_run_due(&s, 20);
    assert_int_equal(rec.count, 5);
    rs__scheduler_cleanup(&s);
    assert_int_equal(rec.count, 5);
}

/* "True from scheduling until just before its function is called": a task
 * already moved to this tick's running list is still scheduled. */
static void scheduler_task_due_this_tick_is_still_scheduled(void **state) {
    rs__scheduler_t s;
    record_t rec = {{0}, {0}, 0};
    test_task_t tasks[3];
    (void)state;
    scheduler_new(&s);
    init_tasks(tasks, 3, &rec, &s);
    tasks[0].peek = &tasks[1].task; /* ASAP, later in the same tick */
    tasks[1].peek = &tasks[2].task; /* timed, due in the same tick */
    rs__scheduler_schedule_now(&s, &tasks[0].task);
    rs__scheduler_schedule_now(&s, &tasks[1].task);
    rs__scheduler_schedule_at(&s, &tasks[2].task, 5);
    rs__scheduler_run_due(&s, 10);
    assert_int_equal(rec.count, 3);
    assert_true(tasks[0].peek_scheduled);
    assert_true(tasks[1].peek_scheduled);
    assert_false(tasks[2].was_scheduled_in_fn);
    rs__scheduler_cleanup(&s);
}

static void scheduler_cleanup_cancels_every_remaining_task(void **state) {
    rs__scheduler_t s;
    record_t rec = {{0}, {0}, 0};
    test_task_t tasks[20];
    int seen[20];
    size_t i;
    (void)state;
    memset(seen, 0, sizeof(seen));
    scheduler_new(&s);
    init_tasks(tasks, 20, &rec, &s);
    for (i = 0; i < 20; ++i) {
        if (i % 3 == 0) {
            rs__scheduler_schedule_now(&s, &tasks[i].task);
        } else {
            rs__scheduler_schedule_at(&s, &tasks[i].task, 1000 + (uint64_t)(i % 4) * 10);
        }
    }
    rs__scheduler_cleanup(&s);
    assert_int_equal(rec.count, 20);
    for (i = 0; i < rec.count; ++i) {
        assert_int_equal(rec.statuses[i], RS_TASK_STATUS_CANCELED);
        seen[rec.ids[i]]++;
    }
    for (i = 0; i < 20; ++i) {
        assert_int_equal(seen[i], 1);
        assert_false(rs_task_is_scheduled(&tasks[i].task));
    }
}

static void scheduler_task_can_reschedule_itself(void **state) {
    rs__scheduler_t s;
    record_t rec = {{0}, {0}, 0};
    test_task_t tasks[1];
    uint64_t next = 5;
    int tick;
    (void)state;
    scheduler_new(&s);
    init_tasks(tasks, 1, &rec, &s);
    tasks[0].reschedule_times = 3;
    rs__scheduler_schedule_now(&s, &tasks[0].task);
    for (tick = 1; tick <= 4; ++tick) {
        rs__scheduler_run_due(&s, (uint64_t)tick);
        assert_int_equal(rec.count, (size_t)tick); /* exactly once per tick */
    }
    assert_false(rs__scheduler_has_tasks(&s, &next));
    rs__scheduler_run_due(&s, 10);
    assert_int_equal(rec.count, 4);
    rs__scheduler_cleanup(&s);
    assert_int_equal(rec.count, 4);
}

/* A timed task reschedules itself at a later time from its own function. */
typedef struct timer_self {
    rs_task_t task;
    rs__scheduler_t *sched;
    int runs;
    uint64_t period;
    uint64_t last_now;
} timer_self_t;

static void timer_self_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    timer_self_t *t = (timer_self_t *)arg;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    t->runs++;
    if (t->runs < 5) {
        rs__scheduler_schedule_at(t->sched, task, t->last_now + t->period);
    }
}

static void scheduler_timed_task_can_reschedule_itself(void **state) {
    rs__scheduler_t s;
    timer_self_t t;
    uint64_t now;
    uint64_t next = 0;
    (void)state;
    scheduler_new(&s);
    memset(&t, 0, sizeof(t));
    t.sched = &s;
    t.period = 100;
    rs_task_init(&t.task, timer_self_fn, &t, "timer");
    rs__scheduler_schedule_at(&s, &t.task, 100);
    for (now = 100; now <= 500; now += 100) {
        t.last_now = now;
        rs__scheduler_run_due(&s, now);
        assert_int_equal(t.runs, (int)(now / 100));
        if (t.runs < 5) {
            assert_true(rs__scheduler_has_tasks(&s, &next));
            assert_int_equal(next, now + 100);
        }
    }
    assert_false(rs__scheduler_has_tasks(&s, &next));
    rs__scheduler_cleanup(&s);
}

/* A task freeing its own memory inside its function, in the middle of a tick,
 * on cancel, and during cleanup. ASan/valgrind catch any later touch. */
typedef struct self_freeing {
    rs_task_t task;
    int *runs;
    int *canceled;
} self_freeing_t;

static void self_freeing_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    self_freeing_t *t = (self_freeing_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        (*t->runs)++;
    } else {
        (*t->canceled)++;
    }
    memset(t, 0xA5, sizeof(*t));
    rs_mem_free(&rs_test_allocator, t);
}

static self_freeing_t *self_freeing_new(int *runs, int *canceled) {
    self_freeing_t *t = (self_freeing_t *)rs_mem_alloc(&rs_test_allocator, sizeof(self_freeing_t));
    assert_non_null(t);
    t->runs = runs;
    t->canceled = canceled;
    rs_task_init(&t->task, self_freeing_fn, t, "self-freeing");
    return t;
}

static void scheduler_task_can_free_itself_in_its_function(void **state) {
    rs__scheduler_t s;
    int runs = 0;
    int canceled = 0;
    int i;
    self_freeing_t *to_cancel_heap;
    self_freeing_t *to_cancel_asap;
    (void)state;
    scheduler_new(&s);
    for (i = 0; i < 8; ++i) {
        rs__scheduler_schedule_now(&s, &self_freeing_new(&runs, &canceled)->task);
        rs__scheduler_schedule_at(&s, &self_freeing_new(&runs, &canceled)->task, 10 + (uint64_t)(i % 3));
    }
    to_cancel_heap = self_freeing_new(&runs, &canceled);
    rs__scheduler_schedule_at(&s, &to_cancel_heap->task, 15);
    to_cancel_asap = self_freeing_new(&runs, &canceled);
    rs__scheduler_schedule_now(&s, &to_cancel_asap->task);
    rs__scheduler_cancel(&s, &to_cancel_heap->task);
    rs__scheduler_cancel(&s, &to_cancel_asap->task);
    assert_int_equal(canceled, 2);

    rs__scheduler_run_due(&s, 20);
    assert_int_equal(runs, 16);

    /* left for cleanup */
    rs__scheduler_schedule_now(&s, &self_freeing_new(&runs, &canceled)->task);
    rs__scheduler_schedule_at(&s, &self_freeing_new(&runs, &canceled)->task, 1000);
    rs__scheduler_cleanup(&s);
    assert_int_equal(runs, 16);
    assert_int_equal(canceled, 4);
}

/* Deterministic pseudo-random times with many duplicates. */
static uint64_t lcg_next(uint64_t *x) {
    *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
    return *x >> 33;
}

#define OOM_TASKS 200

typedef struct oom_task {
    rs_task_t task;
    uint64_t at;
    int id;
    bool canceled;
    int runs;
    int *order;
    size_t *order_count;
} oom_task_t;

static void oom_task_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    oom_task_t *t = (oom_task_t *)arg;
    (void)task;
    t->runs++;
    if (status == RS_TASK_STATUS_CANCELED) {
        t->canceled = true;
        return;
    }
    if (*t->order_count < OOM_TASKS) {
        t->order[*t->order_count] = t->id;
    }
    (*t->order_count)++;
}

/* One pass of the OOM scenario with `alloc`. Returns RS_OK, or the init error. */
static int oom_scenario(const rs_allocator_t *alloc, uint64_t seed) {
    rs__scheduler_t s;
    oom_task_t *tasks;
    int order[OOM_TASKS];
    size_t order_count = 0;
    size_t i;
    size_t expected_runs = 0;
    uint64_t x = seed;
    uint64_t next = 0;
    int rc;

    rc = rs__scheduler_init(&s, alloc);
    if (rc != RS_OK) {
        assert_int_equal(rc, RS_ENOMEM);
        return rc;
    }
    tasks = (oom_task_t *)calloc(OOM_TASKS, sizeof(oom_task_t));
    assert_non_null(tasks);
    for (i = 0; i < OOM_TASKS; ++i) {
        tasks[i].id = (int)i;
        tasks[i].at = 100 + lcg_next(&x) % 40; /* ~5 tasks per time value */
        tasks[i].order = order;
        tasks[i].order_count = &order_count;
        rs_task_init(&tasks[i].task, oom_task_fn, &tasks[i], "oom");
        rs__scheduler_schedule_at(&s, &tasks[i].task, tasks[i].at);
    }
    /* cancel every seventh task: some sit in the heap, some in the overflow */
    for (i = 3; i < OOM_TASKS; i += 7) {
        rs__scheduler_cancel(&s, &tasks[i].task);
    }
    for (i = 0; i < OOM_TASKS; ++i) {
        if (!tasks[i].canceled) {
            expected_runs++;
        }
        assert_int_equal(tasks[i].runs, tasks[i].canceled ? 1 : 0);
    }
    /* the earliest remaining time is reported */
    {
        uint64_t min_at = UINT64_MAX;
        for (i = 0; i < OOM_TASKS; ++i) {
            if (!tasks[i].canceled && tasks[i].at < min_at) {
                min_at = tasks[i].at;
            }
        }
        assert_true(rs__scheduler_has_tasks(&s, &next));
        assert_int_equal(next, min_at);
    }
    /* run in two ticks: half the times, then the rest */
    rs__scheduler_run_due(&s, 119);
    for (i = 0; i < order_count; ++i) {
        assert_true(tasks[order[i]].at <= 119);
    }
    rs__scheduler_run_due(&s, 1000);
    assert_int_equal(order_count, expected_runs);
    for (i = 1; i < order_count; ++i) {
        const oom_task_t *a = &tasks[order[i - 1]];
        const oom_task_t *b = &tasks[order[i]];
        /* by time, then FIFO (ids are in scheduling order) */
        assert_true(a->at < b->at || (a->at == b->at && a->id < b->id));
    }
    for (i = 0; i < OOM_TASKS; ++i) {
        assert_int_equal(tasks[i].runs, 1);
    }
    assert_false(rs__scheduler_has_tasks(&s, &next));
    rs__scheduler_cleanup(&s);
    free(tasks);
    return RS_OK;
}

static void scheduler_heap_oom_overflow_keeps_order(void **state) {
    size_t n;
    bool converged = false;
    size_t overflow_runs = 0;
    (void)state;
    for (n = 1; n <= 10000; ++n) {
        rs_test_failing_alloc_t f;
        int rc;
        rs_test_failing_alloc_init(&f, n);
        rc = oom_scenario(&f.allocator, 42 + n);
        if (rs_test_failing_alloc_failures(&f) == 0) {
            assert_int_equal(rc, RS_OK);
            converged = true;
            break;
        }
        if (rc == RS_OK) {
            overflow_runs++;
        }
    }
    assert_true(converged);
    /* at least one injected failure hit heap growth rather than init */
    assert_true(overflow_runs > 0);
}

/* Every heap growth fails after the first allocation: everything goes through
 * the overflow path and order still holds. */
typedef struct fail_after {
    rs_allocator_t allocator;
    size_t allowed;
    size_t count;
} fail_after_t;

static void *fail_after_alloc(size_t size, void *ud) {
    fail_after_t *f = (fail_after_t *)ud;
    if (++f->count > f->allowed) {
        return NULL;
    }
    return rs_test_allocator.alloc_fn(size, NULL);
}

static void *fail_after_realloc(void *ptr, size_t old_size, size_t new_size, void *ud) {
    fail_after_t *f = (fail_after_t *)ud;
    if (++f->count > f->allowed) {
        return NULL;
    }
    return rs_test_allocator.realloc_fn(ptr, old_size, new_size, NULL);
}

static void fail_after_free(void *ptr, void *ud) {
    (void)ud;
    rs_test_allocator.free_fn(ptr, NULL);
}

static void scheduler_heap_that_never_grows_still_runs_everything_in_order(void **state) {
    size_t allowed;
    (void)state;
    for (allowed = 0; allowed <= 3; ++allowed) {
        fail_after_t f;
        int rc;
        f.allocator.alloc_fn = fail_after_alloc;
        f.allocator.realloc_fn = fail_after_realloc;
        f.allocator.free_fn = fail_after_free;
        f.allocator.user_data = &f;
        f.allowed = allowed;
        f.count = 0;
        rc = oom_scenario(&f.allocator, 7 + allowed);
        assert_true(rc == RS_OK || rc == RS_ENOMEM);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scheduler_empty_has_no_tasks),
        cmocka_unit_test(scheduler_asap_tasks_run_in_fifo_order),
        cmocka_unit_test(scheduler_timed_tasks_run_by_time_then_fifo),
        cmocka_unit_test(scheduler_task_due_exactly_now_runs),
        cmocka_unit_test(scheduler_asap_tasks_run_before_due_timed_tasks),
        cmocka_unit_test(scheduler_task_scheduled_during_tick_runs_next_tick),
        cmocka_unit_test(scheduler_cancel_runs_task_once_with_canceled),
        cmocka_unit_test(scheduler_cancel_of_unscheduled_task_is_noop),
        cmocka_unit_test(scheduler_cancel_of_the_heap_top_updates_next_run),
        cmocka_unit_test(scheduler_task_canceled_by_earlier_task_of_same_tick),
        cmocka_unit_test(scheduler_task_due_this_tick_is_still_scheduled),
        cmocka_unit_test(scheduler_cleanup_cancels_every_remaining_task),
        cmocka_unit_test(scheduler_task_can_reschedule_itself),
        cmocka_unit_test(scheduler_timed_task_can_reschedule_itself),
        cmocka_unit_test(scheduler_task_can_free_itself_in_its_function),
        cmocka_unit_test(scheduler_heap_oom_overflow_keeps_order),
        cmocka_unit_test(scheduler_heap_that_never_grows_still_runs_everything_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
