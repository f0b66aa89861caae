/*
 * Task scheduler: an ASAP FIFO plus timed tasks in a min-heap.
 *
 * Each tick moves the ASAP list and the due timed tasks into a running list
 * before running anything, so a task scheduled during a tick runs on the next
 * one (fairness), and ASAP tasks run before due timed tasks. Equal times run in
 * scheduling order (a sequence number breaks ties). If the heap cannot grow,
 * the task goes to a sorted overflow list instead: scheduling never fails and
 * a task is never lost to out-of-memory.
 */

typedef enum rs__task_state {
    RS__TASK_IDLE = 0,
    RS__TASK_XQUEUE,   /* in a loop's cross-thread queue */
    RS__TASK_ASAP,     /* in scheduler->asap */
    RS__TASK_TIMED,    /* in scheduler->timed (heap) */
    RS__TASK_OVERFLOW, /* in scheduler->overflow */
    RS__TASK_RUNNING   /* in scheduler->running, about to run this tick */
} rs__task_state_t;

/* Heap slots reserved up front, so ordinary loads never grow it. */
#define RS__SCHEDULER_INITIAL_TIMED 64

typedef struct rs__scheduler {
    rs_list_t asap;
    rs_list_t running;
    rs_list_t overflow;
    rs__heap_t timed;
    uint64_t next_seq;
    uint64_t tasks_run; /* task functions called, RUN or CANCELED */
    rs_event_loop_t *loop; /* named in trace events; set by the loop after init (NULL alone) */
} rs__scheduler_t;

/* Another thread may CAS a task's state (scheduling it cross-thread) while the
 * loop thread reads or moves it, so every access is atomic. Acquire/release is
 * a plain load/store on x86 and ARM64's ldar/stlr: free on the hot path. */
static inline int rs__task_get_state(const rs_task_t *task) {
    return rs__atomic_load_int(&task->state);
}

static inline void rs__task_set_state(rs_task_t *task, int state) {
    rs__atomic_store_int(&task->state, state);
}

RESEAU_API void rs_task_init(rs_task_t *task, rs_task_fn *fn, void *arg, const char *type_tag) {
    if (!task) {
        return;
    }
    memset(task, 0, sizeof(*task));
    task->fn = fn;
    task->arg = arg;
    task->type_tag = type_tag ? type_tag : "task";
    task->heap_index = SIZE_MAX;
    rs__task_set_state(task, RS__TASK_IDLE);
}

RESEAU_API bool rs_task_is_scheduled(const rs_task_t *task) {
    return task && rs__task_get_state(task) != RS__TASK_IDLE;
}

RESEAU_API const char *rs_task_status_name(rs_task_status_t status) {
    return status == RS_TASK_STATUS_RUN ? "run" : "canceled";
}

static bool rs__task_runs_before(const void *a, const void *b) {
    const rs_task_t *x = (const rs_task_t *)a;
    const rs_task_t *y = (const rs_task_t *)b;
    return x->run_at_ns < y->run_at_ns || (x->run_at_ns == y->run_at_ns && x->seq < y->seq);
}

static int rs__scheduler_init(rs__scheduler_t *s, const rs_allocator_t *allocator) {
    memset(s, 0, sizeof(*s));
    rs_list_init(&s->asap);
    rs_list_init(&s->running);
    rs_list_init(&s->overflow);
    return rs__heap_init(&s->timed, allocator, RS__SCHEDULER_INITIAL_TIMED, offsetof(rs_task_t, heap_index),
                         rs__task_runs_before);
}

static void rs__scheduler_schedule_now(rs__scheduler_t *s, rs_task_t *task) {
    task->run_at_ns = 0;
    task->seq = s->next_seq++;
    rs__task_set_state(task, RS__TASK_ASAP);
    rs_list_push_back(&s->asap, &task->node);
}

static void rs__scheduler_insert_overflow(rs__scheduler_t *s, rs_task_t *task) {
    rs_list_node_t *where = rs_list_end(&s->overflow);
    /* Walk back from the end: new tasks are usually the latest. */
    while (where->prev != rs_list_end(&s->overflow) &&
           rs__task_runs_before(task, RS_CONTAINER_OF(where->prev, rs_task_t, node))) {
        where = where->prev;
    }
    rs__task_set_state(task, RS__TASK_OVERFLOW);
    rs_list_insert_before(where, &task->node);
}

static void rs__scheduler_schedule_at(rs__scheduler_t *s, rs_task_t *task, uint64_t run_at_ns) {
    task->run_at_ns = run_at_ns;
    task->seq = s->next_seq++;
    if (rs__heap_push(&s->timed, task) == RS_OK) {
        rs__task_set_state(task, RS__TASK_TIMED);
        return;
    }
    RS__LOG_WARN(RS_LS_TASK, "timer heap cannot grow (out of memory); task '%s' uses the slow overflow list",
                 task->type_tag);
    rs__scheduler_insert_overflow(s, task);
}

/* Append a batch of ASAP tasks, already in FIFO order and marked ASAP, in O(1). */
static void rs__scheduler_splice_asap(rs__scheduler_t *s, rs_list_t *batch) {
    rs_list_splice_back(&s->asap, batch);
}

/* Unlink a task from whichever scheduler structure holds it. */
static void rs__scheduler_unlink(rs__scheduler_t *s, rs_task_t *task) {
    if (rs__task_get_state(task) == RS__TASK_TIMED) {
        rs__heap_remove(&s->timed, task);
    } else {
        rs_list_remove(&task->node);
    }
    rs__task_set_state(task, RS__TASK_IDLE);
}

static void rs__scheduler_cancel(rs__scheduler_t *s, rs_task_t *task) {
    int state = rs__task_get_state(task);
    if (state == RS__TASK_IDLE || state == RS__TASK_XQUEUE) {
        return;
    }
    rs__scheduler_unlink(s, task);
    ++s->tasks_run;
    rs__trace(RS_TRACE_TASK_CANCELED, s->loop, task, task->type_tag, 0, 0);
    task->fn(task, task->arg, RS_TASK_STATUS_CANCELED);
}

/* The earliest timed task, from the heap or the overflow list; NULL if none. */
static rs_task_t *rs__scheduler_next_timed(const rs__scheduler_t *s) {
    rs_task_t *heap_top = (rs_task_t *)rs__heap_top(&s->timed);
    rs_task_t *overflow_head = NULL;
    if (!rs_list_empty(&s->overflow)) {
        overflow_head = RS_CONTAINER_OF(s->overflow.sentinel.next, rs_task_t, node);
    }
    if (!heap_top) {
        return overflow_head;
    }
    if (!overflow_head) {
        return heap_top;
    }
    return rs__task_runs_before(overflow_head, heap_top) ? overflow_head : heap_top;
}

static void rs__scheduler_run_due(rs__scheduler_t *s, uint64_t now_ns) {
    rs_task_t *task;
    rs_list_node_t *node;
    rs_list_splice_back(&s->running, &s->asap);
    while ((task = rs__scheduler_next_timed(s)) != NULL && task->run_at_ns <= now_ns) {
        rs__scheduler_unlink(s, task);
        rs__task_set_state(task, RS__TASK_RUNNING); /* still cancelable until its turn comes */
        rs_list_push_back(&s->running, &task->node);
    }
    for (node = s->running.sentinel.next; node != rs_list_end(&s->running); node = s->running.sentinel.next) {
        task = RS_CONTAINER_OF(node, rs_task_t, node);
        rs_list_remove(node);
        rs__task_set_state(task, RS__TASK_IDLE);
        ++s->tasks_run;
        rs__trace(RS_TRACE_TASK_RUN, s->loop, task, task->type_tag, 0, 0);
        task->fn(task, task->arg, RS_TASK_STATUS_RUN);
    }
}

/* Moves ASAP tasks too, so callers can tell "work now" (0) from "nothing" (false). */
static bool rs__scheduler_has_tasks(const rs__scheduler_t *s, uint64_t *next_run_ns) {
    rs_task_t *timed;
    if (!rs_list_empty(&s->asap) || !rs_list_empty(&s->running)) {
        *next_run_ns = 0;
        return true;
    }
    timed = rs__scheduler_next_timed(s);
    *next_run_ns = timed ? timed->run_at_ns : UINT64_MAX;
    return timed != NULL;
}

/* Run every task with CANCELED until none is left, including tasks that the
 * canceled ones schedule meanwhile. */
static void rs__scheduler_cancel_all(rs__scheduler_t *s) {
    for (;;) {
        rs_task_t *task = NULL;
        if (!rs_list_empty(&s->running)) {
            task = RS_CONTAINER_OF(s->running.sentinel.next, rs_task_t, node);
        } else if (!rs_list_empty(&s->asap)) {
            task = RS_CONTAINER_OF(s->asap.sentinel.next, rs_task_t, node);
        } else {
            task = rs__scheduler_next_timed(s);
        }
        if (!task) {
            return;
        }
        rs__scheduler_cancel(s, task);
    }
}

static void rs__scheduler_cleanup(rs__scheduler_t *s) {
    rs__scheduler_cancel_all(s);
    rs__heap_cleanup(&s->timed);
}
