/*
 * demo_timers: timers and cross-thread tasks on an event-loop group.
 *
 * main() creates a group of two loops, each on its own thread. It schedules
 * three timers (future tasks) and three tasks to run as soon as possible, on
 * loops picked by rs_event_loop_group_get_next_loop, then waits until all six
 * have run. Each task prints which loop ran it and when. Finally the group is
 * shut down asynchronously: destroy returns at once and on_group_shutdown runs
 * once every loop has stopped.
 *
 * Build and run:  meson setup build && meson compile -C build && ./build/examples/demo_timers
 */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"

#include <stdio.h>

#define DEMO_LOOPS 2
#define DEMO_TIMERS 3
#define DEMO_TASKS 3
#define DEMO_TIMER_STEP_MS 10 /* timer i fires after (i + 1) * 10 ms */

/* State shared by main and the loop threads; `lock` guards the counters. */
typedef struct demo {
    rs_event_loop_group_t *group;
    uint64_t start_ns;
    rs_mutex_t lock;
    rs_condvar_t changed;
    int pending;    /* tasks scheduled but not yet run */
    bool shut_down; /* on_group_shutdown has run */
} demo_t;

/* One unit of work. rs_task_t is embedded: scheduling never allocates. */
typedef struct demo_job {
    rs_task_t task;
    demo_t *demo;
    rs_event_loop_t *loop;
    int id;
    uint64_t delay_ms; /* 0: run as soon as possible */
} demo_job_t;

static int loop_index(const demo_t *demo, const rs_event_loop_t *loop) {
    for (size_t i = 0; i < rs_event_loop_group_get_loop_count(demo->group); i++) {
        if (rs_event_loop_group_get_loop_at(demo->group, i) == loop) {
            return (int)i;
        }
    }
    return -1;
}

/* Runs on the job's loop thread, exactly once. */
static void on_job(rs_task_t *task, void *arg, rs_task_status_t status) {
    (void)task;
    demo_job_t *job = (demo_job_t *)arg;
    demo_t *demo = job->demo;
    unsigned long long after_ms = (unsigned long long)((rs_clock_now_ns() - demo->start_ns) / RS_NS_PER_MS);
    const char *what = job->delay_ms ? "timer" : "task";
    const char *verb = job->delay_ms ? "fired" : "ran";

    if (status == RS_TASK_STATUS_CANCELED) {
        printf("[loop %d] %s %d canceled\n", loop_index(demo, job->loop), what, job->id);
    } else {
        printf("[loop %d] %s %d %s after %llu ms\n", loop_index(demo, job->loop), what, job->id, verb, after_ms);
    }

    rs_mutex_lock(&demo->lock);
    if (--demo->pending == 0) {
        rs_condvar_signal(&demo->changed);
    }
    rs_mutex_unlock(&demo->lock);
}

/* Runs on a helper thread once every loop of the group has stopped and been freed. */
static void on_group_shutdown(void *user_data) {
    demo_t *demo = (demo_t *)user_data;
    rs_mutex_lock(&demo->lock);
    demo->shut_down = true;
    rs_condvar_signal(&demo->changed);
    rs_mutex_unlock(&demo->lock);
}

int main(void) {
    demo_t demo = {.group = NULL, .start_ns = 0, .pending = 0, .shut_down = false};
    demo_job_t jobs[DEMO_TIMERS + DEMO_TASKS];
    rs_mutex_init(&demo.lock);
    rs_condvar_init(&demo.changed);

    rs_event_loop_group_options_t options = {
        .loop_count = DEMO_LOOPS,
        .thread_name_prefix = "demo",
        .on_shutdown = on_group_shutdown,
        .shutdown_user_data = &demo,
    };
    int err = RS_OK;
    demo.group = rs_event_loop_group_new(&options, &err);
    if (!demo.group) {
        fprintf(stderr, "demo_timers: cannot create the loops: %s\n", rs_strerror(err));
        return 1;
    }

    demo.start_ns = rs_clock_now_ns();
    demo.pending = DEMO_TIMERS + DEMO_TASKS;
    for (int i = 0; i < DEMO_TIMERS + DEMO_TASKS; i++) {
        demo_job_t *job = &jobs[i];
        job->demo = &demo;
        job->loop = rs_event_loop_group_get_next_loop(demo.group);
        job->id = i < DEMO_TIMERS ? i + 1 : i - DEMO_TIMERS + 1;
        job->delay_ms = i < DEMO_TIMERS ? (uint64_t)(i + 1) * DEMO_TIMER_STEP_MS : 0;
        rs_task_init(&job->task, on_job, job, job->delay_ms ? "demo-timer" : "demo-task");
        if (job->delay_ms) {
            /* Deadlines are on the loop's clock. */
            uint64_t run_at = rs_event_loop_now_ns(job->loop) + job->delay_ms * RS_NS_PER_MS;
            rs_event_loop_schedule_task_future(job->loop, &job->task, run_at);
        } else {
            rs_event_loop_schedule_task_now(job->loop, &job->task);
        }
    }

    /* The jobs live on this stack frame: wait until every one has run. */
    rs_mutex_lock(&demo.lock);
    while (demo.pending > 0) {
        rs_condvar_wait(&demo.changed, &demo.lock);
    }
    rs_mutex_unlock(&demo.lock);

    /* Asynchronous shutdown: returns at once; on_group_shutdown reports the end. */
    err = rs_event_loop_group_destroy(demo.group);
    if (err != RS_OK) {
        fprintf(stderr, "demo_timers: cannot shut down: %s\n", rs_strerror(err));
        return 1;
    }
    rs_mutex_lock(&demo.lock);
    while (!demo.shut_down) {
        rs_condvar_wait(&demo.changed, &demo.lock);
    }
    rs_mutex_unlock(&demo.lock);
    printf("all %d jobs done, group shut down\n", DEMO_TIMERS + DEMO_TASKS);

    rs_condvar_cleanup(&demo.changed);
    rs_mutex_cleanup(&demo.lock);
    return 0;
}
