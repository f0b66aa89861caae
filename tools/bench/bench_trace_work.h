/*
 * The work of the trace_* scenarios of reseau-bench-loop, included by
 * bench_loop.c (hooks in) and by bench_loop_notrace.c (the same reseau built
 * with RESEAU_NO_TRACE), so that both sides time the same code.
 *
 * Timed tasks, all already due, scheduled and then run on the caller's
 * thread: two hooks per task (TASK_SCHEDULED, TASK_RUN) and nearly nothing
 * else per task, so the hooks' share of the time is as large as it gets in
 * a loop. Returns tasks (scheduled and run) per second; 0 if a task was lost.
 */
#ifndef RESEAU_BENCH_TRACE_WORK_H
#define RESEAU_BENCH_TRACE_WORK_H

static void trace_work_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        ++*(size_t *)arg;
    }
}

static double trace_work_timers(size_t count) {
    int err = RS_OK;
    rs_event_loop_t *loop = rs_event_loop_new(NULL, &err);
    rs_task_t *tasks = (rs_task_t *)calloc(count, sizeof(rs_task_t));
    size_t fired = 0, i;
    uint64_t start, base, end;
    if (!loop || !tasks) {
        free(tasks);
        rs_event_loop_destroy(loop);
        return 0;
    }
    memset(tasks, 0xff, count * sizeof(rs_task_t)); /* fault the pages in now */
    start = rs_clock_now_ns();
    base = rs_event_loop_now_ns(loop);
    for (i = 0; i < count; i++) {
        rs_task_init(&tasks[i], trace_work_task, &fired, "timer");
        rs_event_loop_schedule_task_future(loop, &tasks[i], base + i); /* 1 ns apart, as million_timers */
    }
    while (fired < count) {
        if (rs_event_loop_run_once(loop, -1) != RS_OK) {
            break;
        }
    }
    end = rs_clock_now_ns();
    rs_event_loop_destroy(loop);
    free(tasks);
    return fired == count ? (double)count * 1e9 / (double)(end - start > 0 ? end - start : 1) : 0;
}

#endif
