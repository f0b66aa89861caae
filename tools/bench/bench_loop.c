/*
 * reseau-bench-loop: event-loop benchmarks, reseau against libuv.
 *
 * Scenarios, after libuv's own suite (libuv/test/benchmark-*.c):
 *   million_timers  1,000,000 timed tasks with staggered deadlines, created and
 *                   run on the caller's thread. Figure: timers created+run per s.
 *   async_pummel_N  N producer threads send coalescing cross-thread wakeups to
 *                   one loop: rs_event_loop_async_send against uv_async_send.
 *                   Figure: sends per second.
 *   async_queue_N   N producers deliver every item to the loop: reseau schedules
 *                   a task per item; libuv appends to a mutex-protected queue and
 *                   calls uv_async_send. Figure: items delivered per second.
 *   trace_off       the tracing hooks' cost with no tracer: 1,000,000 due timed
 *                   tasks scheduled and run (bench_trace_work.h) in reseau with
 *                   its hooks (bench_loop_hooks.c), against the same work in
 *                   reseau built with RESEAU_NO_TRACE (bench_loop_notrace.c);
 *                   both static copies, built alike. Figure: tasks/s.
 *   trace_noop      the same work with a no-op tracer installed, against no
 *                   tracer: what turning tracing on costs (two events per task).
 *   trace_stamp     the same with a tracer that takes each event's time
 *                   (rs_trace_event_timestamp_ns): the clock read added.
 *   trace_noop_io   I/O instead: one byte bounced over a socketpair whose two
 *                   ends the loop watches (two I/O dispatch events per round
 *                   trip, plus their system calls), a no-op tracer against
 *                   none. Figure: round trips per second.
 *   trace_noop_mt   trace_noop's work on two loops at once, each run by its
 *                   own thread (1,000,000 tasks each), a no-op tracer against
 *                   none: what a tracer costs when several loop threads emit
 *                   together. Figure: tasks/s of both loops together.
 *
 * Each scenario runs reseau and libuv alternately (A B A B ...), `rounds` times
 * each, and prints the median of each side and their ratio, one line per
 * scenario. Every run is bounded in count (BENCH_COUNT) and time (BENCH_RUN_LIMIT_S:
 * past it the program stops with a message naming the run).
 *
 * Usage: reseau-bench-loop [-r ROUNDS] [-v] [-only reseau|libuv] [SCENARIO...]
 *   -r     rounds per side (default: BENCH_DEFAULT_ROUNDS)
 *   -v     print every run, with the loop's counters
 *   -only  run one side only, and print no table (for profiling)
 *   SCENARIO  run only these (default: all)
 */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"

#include <uv.h>

#define BENCH_PROGRAM "reseau-bench-loop"
/* Seconds one run may take before the program gives up. */
#define BENCH_RUN_LIMIT_S 5
#define BENCH_DEFAULT_ROUNDS 7
#include "bench_common.h"

#include <sched.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "bench_trace_work.h"

/* The trace work in static copies of reseau: with its hooks (bench_loop_hooks.c)
 * and built with RESEAU_NO_TRACE (bench_loop_notrace.c). */
double bench_hooks_timers(size_t count);
double bench_notrace_timers(size_t count);

/* Timers or wakeups per run: NUM_PINGS of libuv's benchmark-async-pummel.c. */
#define BENCH_COUNT ((size_t)1000000)
/* The i-th timer is due at start + i * BENCH_TIMER_STAGGER_NS. libuv staggers
 * its million timers by 1 ms per 1000; 1 ns keeps every timer due by the time
 * the loop runs, so the run measures the loop, not the clock. */
#define BENCH_TIMER_STAGGER_NS 1
/* Tasks a producer may have in flight; a task is reused only after it ran. */
#define BENCH_RING_SIZE 1024
#define BENCH_CACHE_LINE 64

/* Zeroed, and aligned to a cache line (calloc only guarantees 16 bytes). */
static void *xcalloc_aligned(size_t count, size_t size) {
    size_t bytes = (count * size + BENCH_CACHE_LINE - 1) / BENCH_CACHE_LINE * BENCH_CACHE_LINE;
    void *p = aligned_alloc(BENCH_CACHE_LINE, bytes);
    if (!p) {
        fail("aligned_alloc", "out of memory");
    }
    return memset(p, 0, bytes);
}

/* >>million_timers */

typedef struct timers_run {
    size_t fired;
    bool in_order; /* every timer ran, in deadline order */
    rs_task_t *tasks;
    uv_timer_t *timers;
} timers_run_t;

static void on_timer_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    timers_run_t *run = (timers_run_t *)arg;
    if (status != RS_TASK_STATUS_RUN || task != &run->tasks[run->fired]) {
        run->in_order = false;
    }
    run->fired++;
}

static void timers_verify(const timers_run_t *run, const char *peer) {
    if (run->fired != BENCH_COUNT || !run->in_order) {
        fprintf(stderr, "reseau-bench-loop: million_timers/%s: %zu of %zu timers fired%s\n", peer,
                run->fired, BENCH_COUNT, run->in_order ? "" : ", out of order");
        exit(1);
    }
}

static double reseau_million_timers(int unused) {
    (void)unused;
    int err = RS_OK;
    rs_event_loop_t *loop = rs_event_loop_new(NULL, &err);
    check_rs(loop ? RS_OK : err, "rs_event_loop_new");
    timers_run_t run = {.fired = 0, .in_order = true, .tasks = NULL, .timers = NULL};
    run.tasks = (rs_task_t *)xcalloc(BENCH_COUNT, sizeof(rs_task_t));
    memset(run.tasks, 0xff, BENCH_COUNT * sizeof(rs_task_t)); /* fault the pages in now */

    uint64_t start = bench_now_ns();
    uint64_t base = rs_event_loop_now_ns(loop);
    for (size_t i = 0; i < BENCH_COUNT; i++) {
        rs_task_init(&run.tasks[i], on_timer_task, &run, "timer");
        rs_event_loop_schedule_task_future(loop, &run.tasks[i], base + i * BENCH_TIMER_STAGGER_NS);
    }
    uint64_t created = bench_now_ns();
    while (run.fired < BENCH_COUNT) {
        check_rs(rs_event_loop_run_once(loop, -1), "rs_event_loop_run_once");
    }
    uint64_t end = bench_now_ns();

    timers_verify(&run, "reseau");
    rs_event_loop_stats_t stats;
    rs_event_loop_get_stats(loop, &stats);
    snprintf(g_detail, sizeof g_detail, "create %.1f ms, run %.1f ms, %llu ticks", (double)(created - start) / 1e6,
             (double)(end - created) / 1e6, (unsigned long long)stats.ticks);
    rs_event_loop_destroy(loop);
    free(run.tasks);
    return per_second(BENCH_COUNT, end - start);
}

static void on_uv_timer(uv_timer_t *timer) {
    timers_run_t *run = (timers_run_t *)timer->loop->data;
    if (timer != &run->timers[run->fired]) {
        run->in_order = false;
    }
    run->fired++;
}

static double libuv_million_timers(int unused) {
    (void)unused;
    uv_loop_t loop;
    check_uv(uv_loop_init(&loop), "uv_loop_init");
    timers_run_t run = {.fired = 0, .in_order = true, .tasks = NULL, .timers = NULL};
    run.timers = (uv_timer_t *)xcalloc(BENCH_COUNT, sizeof(uv_timer_t));
    memset(run.timers, 0xff, BENCH_COUNT * sizeof(uv_timer_t)); /* fault the pages in now */
    loop.data = &run;

    uint64_t start = bench_now_ns();
    for (size_t i = 0; i < BENCH_COUNT; i++) {
        /* Milliseconds: the 1 ns stagger rounds to 0 here, and libuv then runs
         * timers with equal timeouts in start order, the same order as reseau. */
        uint64_t timeout_ms = (uint64_t)i * BENCH_TIMER_STAGGER_NS / RS_NS_PER_MS;
        uv_timer_init(&loop, &run.timers[i]);
        uv_timer_start(&run.timers[i], on_uv_timer, timeout_ms, 0);
    }
    uint64_t created = bench_now_ns();
    check_uv(uv_run(&loop, UV_RUN_DEFAULT), "uv_run");
    uint64_t end = bench_now_ns();

    timers_verify(&run, "libuv");
    snprintf(g_detail, sizeof g_detail, "create %.1f ms, run %.1f ms", (double)(created - start) / 1e6,
             (double)(end - created) / 1e6);
    for (size_t i = 0; i < BENCH_COUNT; i++) {
        uv_close((uv_handle_t *)&run.timers[i], NULL);
    }
    check_uv(uv_run(&loop, UV_RUN_DEFAULT), "uv_run (close)");
    check_uv(uv_loop_close(&loop), "uv_loop_close");
    free(run.timers);
    return per_second(BENCH_COUNT, end - start);
}

/* >>async pummel
 *
 * async_pummel_N compares the coalescing primitives: each producer calls
 * rs_event_loop_async_send (reseau) or uv_async_send (libuv) in a tight loop,
 * its share of BENCH_COUNT times. Both coalesce: a send made while one is
 * pending costs an atomic load, and the loop's callback runs once for all of
 * them. The figure is sends per second; -v shows the callback count.
 *
 * reseau, async_queue_N: each producer schedules its share of BENCH_COUNT tasks
 * with rs_event_loop_schedule_task_now, from a ring of BENCH_RING_SIZE
 * preallocated tasks (a task is rescheduled only after it ran). The loop runs
 * on its own thread. Every task is delivered: the figure is tasks per second.
 *
 * libuv, async_queue_N: what a libuv program writes to deliver every request,
 * as reseau does: the producer appends an item to a mutex-protected queue, then
 * calls uv_async_send; the callback drains the queue. Same ring, same count, so
 * this is the like-for-like comparison. The figure is items per second.
 *
 * With more threads than CPUs (the _4 scenarios on a 2-CPU machine) both
 * runtimes flip between two regimes from run to run: a convoy, where the loop
 * takes whole rings per wakeup, and thrashing, with a wakeup every few items.
 * -v shows the ticks (reseau) or callbacks (libuv) of each run.
 */

typedef struct pummel_run pummel_run_t;

/* Cache-line aligned, as separately allocated objects would be, so that the
 * loop finishing item n and the producer filling item n + 1 do not share a line. */
typedef struct pummel_item {
    _Alignas(BENCH_CACHE_LINE) rs_task_t task; /* reseau */
    struct pummel_item *next; /* libuv queue */
    pummel_run_t *run;
    atomic_int busy; /* 1 from scheduling until the loop ran it */
} pummel_item_t;

typedef struct pummel_producer {
    pummel_run_t *run;
    size_t quota;
    rs_thread_t rs_thread;
    uv_thread_t uv_thread;
    pummel_item_t ring[BENCH_RING_SIZE];
} pummel_producer_t;

struct pummel_run {
    int producer_count;
    pummel_producer_t *producers;
    atomic_int go;             /* producers start when this becomes 1 */
    atomic_int producers_done; /* libuv pummel: producers that sent their share */
    /* Loop thread only, until the run ends: */
    size_t delivered;
    size_t canceled;
    size_t callbacks;
    uint64_t end_ns;
    /* reseau */
    rs_event_loop_t *loop;
    rs_event_loop_async_t rs_async;
    rs_mutex_t lock;
    rs_condvar_t cond;
    bool finished;
    /* libuv */
    uv_loop_t uv_loop;
    uv_async_t async;
    uv_mutex_t queue_lock;
    pummel_item_t *head, *tail;
};

static pummel_run_t *pummel_run_new(int producer_count) {
    pummel_run_t *run = (pummel_run_t *)xcalloc(1, sizeof(pummel_run_t));
    run->producer_count = producer_count;
    run->producers = (pummel_producer_t *)xcalloc_aligned((size_t)producer_count, sizeof(pummel_producer_t));
    for (int i = 0; i < producer_count; i++) {
        pummel_producer_t *p = &run->producers[i];
        p->run = run;
        p->quota = BENCH_COUNT / (size_t)producer_count;
        for (size_t j = 0; j < BENCH_RING_SIZE; j++) {
            p->ring[j].run = run;
        }
    }
    return run;
}

static void pummel_run_free(pummel_run_t *run) {
    free(run->producers);
    free(run);
}

static size_t pummel_total(const pummel_run_t *run) {
    return run->producers[0].quota * (size_t)run->producer_count;
}

static void pummel_wait_for_go(pummel_run_t *run) {
    while (!atomic_load_explicit(&run->go, memory_order_acquire)) {
        sched_yield();
    }
}

/* The n-th item of a producer, once the loop is done with its previous use. */
static pummel_item_t *pummel_take_item(pummel_producer_t *p, size_t n) {
    pummel_item_t *item = &p->ring[n % BENCH_RING_SIZE];
    while (atomic_load_explicit(&item->busy, memory_order_acquire)) {
        sched_yield();
    }
    atomic_store_explicit(&item->busy, 1, memory_order_relaxed);
    return item;
}

/* Loop thread. Returns true for the last item of the run. */
static bool pummel_deliver(pummel_run_t *run, pummel_item_t *item) {
    atomic_store_explicit(&item->busy, 0, memory_order_release); /* the producer may reuse it now */
    if (++run->delivered < pummel_total(run)) {
        return false;
    }
    run->end_ns = bench_now_ns();
    return true;
}

/* reseau */

static void on_pummel_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    (void)task;
    pummel_item_t *item = (pummel_item_t *)arg;
    pummel_run_t *run = item->run;
    if (status != RS_TASK_STATUS_RUN) {
        run->canceled++;
    }
    if (pummel_deliver(run, item)) {
        rs_mutex_lock(&run->lock);
        run->finished = true;
        rs_condvar_signal(&run->cond);
        rs_mutex_unlock(&run->lock);
    }
}

static void reseau_producer_main(void *arg) {
    pummel_producer_t *p = (pummel_producer_t *)arg;
    pummel_wait_for_go(p->run);
    for (size_t n = 0; n < p->quota; n++) {
        pummel_item_t *item = pummel_take_item(p, n);
        rs_task_init(&item->task, on_pummel_task, item, "pummel");
        rs_event_loop_schedule_task_now(p->run->loop, &item->task);
    }
}

static double reseau_async_queue(int producer_count) {
    pummel_run_t *run = pummel_run_new(producer_count);
    int err = RS_OK;
    run->loop = rs_event_loop_new(NULL, &err);
    check_rs(run->loop ? RS_OK : err, "rs_event_loop_new");
    check_rs(rs_mutex_init(&run->lock), "rs_mutex_init");
    check_rs(rs_condvar_init(&run->cond), "rs_condvar_init");
    check_rs(rs_event_loop_start(run->loop), "rs_event_loop_start");
    rs_thread_options_t options = {.name = "bench-producer", .stack_size = 0};
    for (int i = 0; i < producer_count; i++) {
        pummel_producer_t *p = &run->producers[i];
        check_rs(rs_thread_launch(&p->rs_thread, reseau_producer_main, p, &options), "rs_thread_launch");
    }

    uint64_t start = bench_now_ns();
    atomic_store_explicit(&run->go, 1, memory_order_release);
    rs_mutex_lock(&run->lock);
    while (!run->finished) {
        rs_condvar_wait(&run->cond, &run->lock);
    }
    rs_mutex_unlock(&run->lock);

    for (int i = 0; i < producer_count; i++) {
        check_rs(rs_thread_join(&run->producers[i].rs_thread), "rs_thread_join");
    }
    rs_event_loop_stats_t stats;
    rs_event_loop_get_stats(run->loop, &stats);
    rs_event_loop_destroy(run->loop);
    if (run->canceled) {
        fprintf(stderr, "reseau-bench-loop: async_pummel/reseau: %zu tasks canceled\n", run->canceled);
        exit(1);
    }
    snprintf(g_detail, sizeof g_detail, "%zu tasks in %.1f ms, %llu ticks, %llu wakeups sent, %llu xthread tasks",
             run->delivered, (double)(run->end_ns - start) / 1e6, (unsigned long long)stats.ticks,
             (unsigned long long)stats.wakeups_sent, (unsigned long long)stats.xthread_tasks);
    double rate = per_second(run->delivered, run->end_ns - start);
    rs_condvar_cleanup(&run->cond);
    rs_mutex_cleanup(&run->lock);
    pummel_run_free(run);
    return rate;
}

/* reseau async_pummel: rs_event_loop_async_send, which coalesces like uv_async_send. */

static void on_reseau_async(rs_event_loop_async_t *async, void *user_data) {
    pummel_run_t *run = (pummel_run_t *)user_data;
    (void)async;
    run->callbacks++;
    if (atomic_load(&run->producers_done) == run->producer_count && !run->end_ns) {
        run->end_ns = bench_now_ns();
        rs_mutex_lock(&run->lock);
        run->finished = true;
        rs_condvar_signal(&run->cond);
        rs_mutex_unlock(&run->lock);
    }
}

static void reseau_async_producer_main(void *arg) {
    pummel_producer_t *p = (pummel_producer_t *)arg;
    pummel_wait_for_go(p->run);
    for (size_t n = 0; n < p->quota; n++) {
        rs_event_loop_async_send(&p->run->rs_async);
    }
    atomic_fetch_add(&p->run->producers_done, 1);
    rs_event_loop_async_send(&p->run->rs_async); /* a callback after this point sees producers_done */
}

static double reseau_async_pummel(int producer_count) {
    pummel_run_t *run = pummel_run_new(producer_count);
    int err = RS_OK;
    run->loop = rs_event_loop_new(NULL, &err);
    check_rs(run->loop ? RS_OK : err, "rs_event_loop_new");
    check_rs(rs_mutex_init(&run->lock), "rs_mutex_init");
    check_rs(rs_condvar_init(&run->cond), "rs_condvar_init");
    rs_event_loop_async_init(&run->rs_async, run->loop, on_reseau_async, run);
    check_rs(rs_event_loop_start(run->loop), "rs_event_loop_start");
    rs_thread_options_t options = {.name = "bench-producer", .stack_size = 0};
    for (int i = 0; i < producer_count; i++) {
        pummel_producer_t *p = &run->producers[i];
        check_rs(rs_thread_launch(&p->rs_thread, reseau_async_producer_main, p, &options), "rs_thread_launch");
    }

    uint64_t start = bench_now_ns();
    atomic_store_explicit(&run->go, 1, memory_order_release);
    rs_mutex_lock(&run->lock);
    while (!run->finished) {
        rs_condvar_wait(&run->cond, &run->lock);
    }
    rs_mutex_unlock(&run->lock);
    for (int i = 0; i < producer_count; i++) {
        check_rs(rs_thread_join(&run->producers[i].rs_thread), "rs_thread_join");
    }
    check_rs(rs_event_loop_stop(run->loop), "rs_event_loop_stop");
    check_rs(rs_event_loop_wait(run->loop), "rs_event_loop_wait");
    check_rs(rs_event_loop_async_cleanup(&run->rs_async), "rs_event_loop_async_cleanup");
    rs_event_loop_destroy(run->loop);
    size_t count = pummel_total(run);
    snprintf(g_detail, sizeof g_detail, "%zu sends in %.1f ms, %zu callbacks", count,
             (double)(run->end_ns - start) / 1e6, run->callbacks);
    double rate = per_second(count, run->end_ns - start);
    rs_condvar_cleanup(&run->cond);
    rs_mutex_cleanup(&run->lock);
    pummel_run_free(run);
    return rate;
}

/* libuv: shared set-up and tear-down. The loop runs on a thread of its own, as
 * reseau's does, while the calling thread waits for it. */

static void uv_loop_thread_main(void *arg) {
    pummel_run_t *run = (pummel_run_t *)arg;
    check_uv(uv_run(&run->uv_loop, UV_RUN_DEFAULT), "uv_run");
}

static double libuv_pummel_run(int producer_count, uv_async_cb on_async, uv_thread_cb producer_main,
                               const char *unit) {
    pummel_run_t *run = pummel_run_new(producer_count);
    check_uv(uv_loop_init(&run->uv_loop), "uv_loop_init");
    check_uv(uv_mutex_init(&run->queue_lock), "uv_mutex_init");
    check_uv(uv_async_init(&run->uv_loop, &run->async, on_async), "uv_async_init");
    run->async.data = run;
    for (int i = 0; i < producer_count; i++) {
        pummel_producer_t *p = &run->producers[i];
        check_uv(uv_thread_create(&p->uv_thread, producer_main, p), "uv_thread_create");
    }

    uv_thread_t loop_thread;
    check_uv(uv_thread_create(&loop_thread, uv_loop_thread_main, run), "uv_thread_create");

    uint64_t start = bench_now_ns();
    atomic_store_explicit(&run->go, 1, memory_order_release);
    check_uv(uv_thread_join(&loop_thread), "uv_thread_join");

    for (int i = 0; i < producer_count; i++) {
        check_uv(uv_thread_join(&run->producers[i].uv_thread), "uv_thread_join");
    }
    check_uv(uv_loop_close(&run->uv_loop), "uv_loop_close");
    uv_mutex_destroy(&run->queue_lock);
    size_t count = pummel_total(run);
    snprintf(g_detail, sizeof g_detail, "%zu %s in %.1f ms, %zu callbacks", count, unit,
             (double)(run->end_ns - start) / 1e6, run->callbacks);
    double rate = per_second(count, run->end_ns - start);
    pummel_run_free(run);
    return rate;
}

/* libuv async_pummel: bare uv_async_send; sends coalesce. */

static void on_uv_pummel_async(uv_async_t *async) {
    pummel_run_t *run = (pummel_run_t *)async->data;
    run->callbacks++;
    if (atomic_load(&run->producers_done) == run->producer_count) {
        run->end_ns = bench_now_ns();
        uv_close((uv_handle_t *)async, NULL);
    }
}

static void uv_pummel_producer_main(void *arg) {
    pummel_producer_t *p = (pummel_producer_t *)arg;
    pummel_wait_for_go(p->run);
    for (size_t n = 0; n < p->quota; n++) {
        uv_async_send(&p->run->async);
    }
    atomic_fetch_add(&p->run->producers_done, 1);
    uv_async_send(&p->run->async); /* a callback after this point sees producers_done */
}

static double libuv_async_pummel(int producer_count) {
    return libuv_pummel_run(producer_count, on_uv_pummel_async, uv_pummel_producer_main, "sends");
}

/* libuv async_queue: a mutex-protected queue plus uv_async_send per item. */

static void on_uv_queue_async(uv_async_t *async) {
    pummel_run_t *run = (pummel_run_t *)async->data;
    run->callbacks++;
    uv_mutex_lock(&run->queue_lock);
    pummel_item_t *item = run->head;
    run->head = run->tail = NULL;
    uv_mutex_unlock(&run->queue_lock);
    bool last = false;
    while (item) {
        pummel_item_t *next = item->next;
        last = pummel_deliver(run, item);
        item = next;
    }
    if (last) {
        uv_close((uv_handle_t *)async, NULL);
    }
}

static void uv_queue_producer_main(void *arg) {
    pummel_producer_t *p = (pummel_producer_t *)arg;
    pummel_run_t *run = p->run;
    pummel_wait_for_go(run);
    for (size_t n = 0; n < p->quota; n++) {
        pummel_item_t *item = pummel_take_item(p, n);
        item->next = NULL;
        uv_mutex_lock(&run->queue_lock);
        if (run->tail) {
            run->tail->next = item;
        } else {
            run->head = item;
        }
        run->tail = item;
        uv_mutex_unlock(&run->queue_lock);
        uv_async_send(&run->async);
    }
}

static double libuv_async_queue(int producer_count) {
    return libuv_pummel_run(producer_count, on_uv_queue_async, uv_queue_producer_main, "items");
}

/* >>trace: the hooks' cost (bench_trace_work.h) */

static double checked_trace_rate(double rate, const char *side) {
    if (rate <= 0) {
        fprintf(stderr, "reseau-bench-loop: trace/%s: the loop failed or lost a task\n", side);
        exit(1);
    }
    return rate;
}

static void noop_tracer(const rs_trace_event_t *event, void *user_data) {
    (void)event;
    ++*(uint64_t *)user_data;
}

static double trace_untraced(int unused) {
    (void)unused;
    return checked_trace_rate(trace_work_timers(BENCH_COUNT), "untraced");
}

static double trace_hooks_in(int unused) {
    (void)unused;
    return checked_trace_rate(bench_hooks_timers(BENCH_COUNT), "hooks in");
}

static double trace_compiled_out(int unused) {
    (void)unused;
    return checked_trace_rate(bench_notrace_timers(BENCH_COUNT), "compiled out");
}

/* A tracer that takes every event's time, as one that records them would. */
typedef struct stamp_sum {
    uint64_t events;
    uint64_t last_ns; /* the latest time taken: kept, so the read is not dropped */
} stamp_sum_t;

static void stamping_tracer(const rs_trace_event_t *event, void *user_data) {
    stamp_sum_t *sum = (stamp_sum_t *)user_data;
    ++sum->events;
    sum->last_ns = rs_trace_event_timestamp_ns(event);
}

/* trace_work_timers with `fn` installed; it counts into the uint64_t that
 * user_data starts with. */
static double trace_work_traced(rs_trace_fn *fn, void *user_data, const char *scenario) {
    uint64_t *events = (uint64_t *)user_data;
    *events = 0;
    check_rs(rs_trace_set_tracer(fn, user_data), "rs_trace_set_tracer");
    double rate = trace_work_timers(BENCH_COUNT);
    check_rs(rs_trace_set_tracer(NULL, NULL), "rs_trace_set_tracer");
    /* scheduled + run per task, and the loop's own */
    if (*events < 2 * BENCH_COUNT) {
        fprintf(stderr, "reseau-bench-loop: %s: %llu events for %zu tasks\n", scenario, (unsigned long long)*events,
                BENCH_COUNT);
        exit(1);
    }
    snprintf(g_detail, sizeof g_detail, "%llu events", (unsigned long long)*events);
    return checked_trace_rate(rate, scenario);
}

static double trace_noop(int unused) {
    static uint64_t events;
    (void)unused;
    return trace_work_traced(noop_tracer, &events, "trace_noop");
}

static double trace_stamp(int unused) {
    static stamp_sum_t sum;
    double rate;
    (void)unused;
    rate = trace_work_traced(stamping_tracer, &sum, "trace_stamp");
    if (sum.last_ns == 0) {
        fprintf(stderr, "reseau-bench-loop: trace_stamp: no time taken\n");
        exit(1);
    }
    return rate;
}

/* Round trips per trace_noop_io run. */
#define BENCH_IO_ROUND_TRIPS ((size_t)200000)

typedef struct io_bounce {
    rs_io_handle_t ends[2];
    size_t left; /* round trips still to make */
    bool failed;
} io_bounce_t;

/* End 1 echoes; end 0 counts a round trip and sends the next byte. */
static void on_bounce_readable(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    io_bounce_t *b = (io_bounce_t *)user_data;
    char byte;
    (void)loop;
    (void)events;
    if (read(handle->fd, &byte, 1) != 1) {
        return; /* spurious: nothing yet */
    }
    if (handle == &b->ends[0] && --b->left == 0) {
        return;
    }
    if (write(handle->fd, &byte, 1) != 1) {
        b->failed = true;
    }
}

static double io_bounce_run(bool traced) {
    static uint64_t events;
    io_bounce_t b;
    int fds[2];
    int err = RS_OK;
    memset(&b, 0, sizeof b);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
        fail("socketpair", strerror(errno));
    }
    rs_event_loop_t *loop = rs_event_loop_new(NULL, &err);
    check_rs(loop ? RS_OK : err, "rs_event_loop_new");
    b.left = BENCH_IO_ROUND_TRIPS;
    for (int i = 0; i < 2; i++) {
        b.ends[i].fd = fds[i];
        check_rs(rs_event_loop_subscribe(loop, &b.ends[i], RS_IO_READABLE, on_bounce_readable, &b),
                 "rs_event_loop_subscribe");
    }
    events = 0;
    if (traced) {
        check_rs(rs_trace_set_tracer(noop_tracer, &events), "rs_trace_set_tracer");
    }
    uint64_t start = bench_now_ns();
    if (write(fds[0], "x", 1) != 1) {
        fail("write", strerror(errno));
    }
    while (b.left > 0 && !b.failed) {
        check_rs(rs_event_loop_run_once(loop, -1), "rs_event_loop_run_once");
    }
    uint64_t end = bench_now_ns();
    check_rs(rs_trace_set_tracer(NULL, NULL), "rs_trace_set_tracer");
    if (b.failed || (traced && events < 2 * BENCH_IO_ROUND_TRIPS)) {
        fprintf(stderr, "reseau-bench-loop: trace_noop_io: a write failed or events were missed (%llu)\n",
                (unsigned long long)events);
        exit(1);
    }
    if (traced) {
        snprintf(g_detail, sizeof g_detail, "%llu events", (unsigned long long)events);
    }
    for (int i = 0; i < 2; i++) {
        check_rs(rs_event_loop_unsubscribe(loop, &b.ends[i]), "rs_event_loop_unsubscribe");
    }
    rs_event_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
    return per_second((double)BENCH_IO_ROUND_TRIPS, end - start);
}

static double trace_noop_io(int unused) {
    (void)unused;
    return io_bounce_run(true);
}

static double trace_untraced_io(int unused) {
    (void)unused;
    return io_bounce_run(false);
}

/* trace_noop_mt: two loop threads at once (bench_trace_work.h's work). */

#define BENCH_MT_LOOPS 2

typedef struct mt_worker {
    rs_thread_t thread;
    atomic_int *ready; /* workers at the start line */
    size_t count;
    uint64_t start_ns, end_ns;
    uint64_t events; /* counted by this thread's tracer calls */
    bool failed;
} mt_worker_t;

/* Each worker's thread counts its own events: no line shared between them. */
static _Thread_local uint64_t t_mt_events;

static void noop_tracer_mt(const rs_trace_event_t *event, void *user_data) {
    (void)event;
    (void)user_data;
    ++t_mt_events;
}

static void mt_worker_main(void *arg) {
    mt_worker_t *w = (mt_worker_t *)arg;
    int err = RS_OK;
    rs_event_loop_t *loop = rs_event_loop_new(NULL, &err);
    rs_task_t *tasks = (rs_task_t *)calloc(w->count, sizeof(rs_task_t));
    size_t fired = 0;
    t_mt_events = 0;
    if (loop && tasks) {
        memset(tasks, 0xff, w->count * sizeof(rs_task_t)); /* fault the pages in now */
    }
    /* Both threads start timing together, whatever happened above. */
    atomic_fetch_add(w->ready, 1);
    while (atomic_load(w->ready) < BENCH_MT_LOOPS) {
        sched_yield();
    }
    if (!loop || !tasks) {
        w->failed = true;
        free(tasks);
        rs_event_loop_destroy(loop);
        return;
    }
    w->start_ns = rs_clock_now_ns();
    uint64_t base = rs_event_loop_now_ns(loop);
    for (size_t i = 0; i < w->count; i++) {
        rs_task_init(&tasks[i], trace_work_task, &fired, "timer");
        rs_event_loop_schedule_task_future(loop, &tasks[i], base + i);
    }
    while (fired < w->count) {
        if (rs_event_loop_run_once(loop, -1) != RS_OK) {
            break;
        }
    }
    w->end_ns = rs_clock_now_ns();
    w->failed = fired != w->count;
    w->events = t_mt_events;
    rs_event_loop_destroy(loop);
    free(tasks);
}

/* Both loops' tasks per second, from the first start to the last end. */
static double trace_mt_run(bool traced) {
    static uint64_t unused_user_data;
    mt_worker_t workers[BENCH_MT_LOOPS];
    atomic_int ready;
    uint64_t first_start = UINT64_MAX, last_end = 0, events = 0;
    atomic_init(&ready, 0);
    if (traced) {
        check_rs(rs_trace_set_tracer(noop_tracer_mt, &unused_user_data), "rs_trace_set_tracer");
    }
    for (int i = 0; i < BENCH_MT_LOOPS; i++) {
        memset(&workers[i], 0, sizeof workers[i]);
        workers[i].ready = &ready;
        workers[i].count = BENCH_COUNT;
        check_rs(rs_thread_launch(&workers[i].thread, mt_worker_main, &workers[i], NULL), "rs_thread_launch");
    }
    for (int i = 0; i < BENCH_MT_LOOPS; i++) {
        check_rs(rs_thread_join(&workers[i].thread), "rs_thread_join");
    }
    check_rs(rs_trace_set_tracer(NULL, NULL), "rs_trace_set_tracer");
    for (int i = 0; i < BENCH_MT_LOOPS; i++) {
        if (workers[i].failed || (traced && workers[i].events < 2 * BENCH_COUNT)) {
            fprintf(stderr, "reseau-bench-loop: trace_noop_mt: a loop failed or events were missed (%llu)\n",
                    (unsigned long long)workers[i].events);
            exit(1);
        }
        first_start = workers[i].start_ns < first_start ? workers[i].start_ns : first_start;
        last_end = workers[i].end_ns > last_end ? workers[i].end_ns : last_end;
        events += workers[i].events;
    }
    if (traced) {
        snprintf(g_detail, sizeof g_detail, "%llu events", (unsigned long long)events);
    }
    return per_second((double)(BENCH_MT_LOOPS * BENCH_COUNT), last_end - first_start);
}

static double trace_noop_mt(int unused) {
    (void)unused;
    return trace_mt_run(true);
}

static double trace_untraced_mt(int unused) {
    (void)unused;
    return trace_mt_run(false);
}

/* >>runner */

static const scenario_t g_scenarios[] = {
    {.name = "million_timers", .reseau_fn = reseau_million_timers, .peer_fn = libuv_million_timers, .arg = 0},
    {.name = "async_pummel_1", .reseau_fn = reseau_async_pummel, .peer_fn = libuv_async_pummel, .arg = 1},
    {.name = "async_pummel_4", .reseau_fn = reseau_async_pummel, .peer_fn = libuv_async_pummel, .arg = 4},
    {.name = "async_queue_1", .reseau_fn = reseau_async_queue, .peer_fn = libuv_async_queue, .arg = 1},
    {.name = "async_queue_4", .reseau_fn = reseau_async_queue, .peer_fn = libuv_async_queue, .arg = 4},
    {.name = "trace_off", .reseau_fn = trace_hooks_in, .peer_fn = trace_compiled_out, .peer = "no_trace_build"},
    {.name = "trace_noop", .reseau_fn = trace_noop, .peer_fn = trace_untraced, .peer = "no_tracer"},
    {.name = "trace_stamp", .reseau_fn = trace_stamp, .peer_fn = trace_untraced, .peer = "no_tracer"},
    {.name = "trace_noop_io", .reseau_fn = trace_noop_io, .peer_fn = trace_untraced_io, .peer = "no_tracer"},
    {.name = "trace_noop_mt", .reseau_fn = trace_noop_mt, .peer_fn = trace_untraced_mt, .peer = "no_tracer"},
};

int main(int argc, char **argv) {
    return bench_main(argc, argv, g_scenarios, sizeof g_scenarios / sizeof g_scenarios[0]);
}
