/* Threads, mutexes, condition variables, once, CPU count and the monotonic clock. */
#include "test_util.h"

#if !RESEAU_OS_WINDOWS
#include <sched.h>
#include <unistd.h>
#endif

/* Generous upper bound for waits that should end much sooner: if it is hit the
 * test fails instead of hanging. */
#define LONG_WAIT_NS (10 * RS_NS_PER_SEC)

/* Larger than any address space, so the OS refuses it whatever the overcommit policy. */
#define IMPOSSIBLE_STACK_SIZE (SIZE_MAX / 4 * 3)

/* ---- helpers ------------------------------------------------------------ */

typedef struct log_capture {
    int count;
    rs_log_level_t level;
    rs_log_subject_t subject;
} log_capture_t;

static void log_capture_fn(rs_log_level_t level, rs_log_subject_t subject, const char *message, void *user_data) {
    log_capture_t *c = (log_capture_t *)user_data;
    (void)message;
    __atomic_add_fetch(&c->count, 1, __ATOMIC_SEQ_CST);
    c->level = level;
    c->subject = subject;
}

/* ---- launch and join ---------------------------------------------------- */

typedef struct run_probe {
    void *seen_user_data;
    int value;
} run_probe_t;

static void run_probe_main(void *user_data) {
    run_probe_t *p = (run_probe_t *)user_data;
    rs_thread_sleep_ns(20 * RS_NS_PER_MS);
    p->seen_user_data = user_data;
    p->value = 42;
}

static void thread_launch_runs_fn_and_join_waits_for_it(void **state) {
    run_probe_t probe = {NULL, 0};
    rs_thread_t thread;
    (void)state;
    assert_int_equal(rs_thread_launch(&thread, run_probe_main, &probe, NULL), RS_OK);
    assert_int_equal(rs_thread_join(&thread), RS_OK);
    /* The write happened 20 ms into the thread; join must have waited for it. */
    assert_int_equal(probe.value, 42);
    assert_ptr_equal(probe.seen_user_data, &probe);
}

typedef struct name_probe {
    char name[64];
    int err;
} name_probe_t;

static void name_probe_main(void *user_data) {
    name_probe_t *p = (name_probe_t *)user_data;
#if RESEAU_OS_LINUX
    p->err = pthread_getname_np(pthread_self(), p->name, sizeof(p->name));
#elif RESEAU_OS_WINDOWS
    p->err = rs_test_thread_name(p->name, sizeof(p->name));
#else
    p->err = -1;
#endif
}

static void check_thread_name(const char *requested, const char *expected) {
    name_probe_t probe;
    rs_thread_t thread;
    rs_thread_options_t options = {.name = requested};
    memset(&probe, 0, sizeof(probe));
    assert_int_equal(rs_thread_launch(&thread, name_probe_main, &probe, &options), RS_OK);
    assert_string_equal(thread.name, expected);
    assert_int_equal(rs_thread_join(&thread), RS_OK);
#if RESEAU_OS_LINUX
    assert_int_equal(probe.err, 0);
    assert_string_equal(probe.name, expected);
#elif RESEAU_OS_WINDOWS
    /* Where Windows (or Wine) has thread descriptions, the name is there. */
    if (rs_test__get_thread_description()) {
        assert_int_equal(probe.err, 0);
        assert_string_equal(probe.name, expected);
    }
#endif
}

static void thread_name_is_visible_inside_the_thread(void **state) {
    (void)state;
    check_thread_name("rs-test-worker", "rs-test-worker");
}

static void thread_long_name_is_truncated_to_name_max(void **state) {
    (void)state;
    assert_int_equal(strlen("abcdefghijklmno"), RS_THREAD_NAME_MAX);
    check_thread_name("abcdefghijklmnopqrstuvwxyz", "abcdefghijklmno");
}

typedef struct stack_probe {
    size_t stack_size;
    int err;
} stack_probe_t;

static void stack_probe_main(void *user_data) {
    stack_probe_t *p = (stack_probe_t *)user_data;
#if RESEAU_OS_LINUX
    pthread_attr_t attr;
    p->err = pthread_getattr_np(pthread_self(), &attr);
    if (p->err == 0) {
        p->err = pthread_attr_getstacksize(&attr, &p->stack_size);
        pthread_attr_destroy(&attr);
    }
#elif RESEAU_OS_WINDOWS
    /* The whole reserved stack, from its guard page to its top. */
    ULONG_PTR low = 0;
    ULONG_PTR high = 0;
    GetCurrentThreadStackLimits(&low, &high);
    p->stack_size = (size_t)(high - low);
    p->err = 0;
#else
    p->err = -1;
#endif
}

static void thread_launch_honours_stack_size(void **state) {
    stack_probe_t probe = {0, 0};
    rs_thread_t thread;
    rs_thread_options_t options = {.name = "rs-stack", .stack_size = 1024 * 1024};
    (void)state;
    assert_int_equal(rs_thread_launch(&thread, stack_probe_main, &probe, &options), RS_OK);
    assert_int_equal(rs_thread_join(&thread), RS_OK);
#if RESEAU_OS_LINUX || RESEAU_OS_WINDOWS
    assert_int_equal(probe.err, 0);
    assert_true(probe.stack_size >= options.stack_size);
#endif
}

typedef struct self_join {
    rs_thread_t thread;
    rs_mutex_t lock;
    rs_condvar_t cond;
    bool go;
    bool done;
    int rc;
} self_join_t;

static void self_join_main(void *user_data) {
    self_join_t *s = (self_join_t *)user_data;
    rs_mutex_lock(&s->lock);
    /* Wait until rs_thread_launch has returned, so s->thread is complete. */
    while (!s->go) {
        rs_condvar_wait(&s->cond, &s->lock);
    }
    s->rc = rs_thread_join(&s->thread);
    s->done = true;
    rs_condvar_signal(&s->cond);
    rs_mutex_unlock(&s->lock);
}

static void thread_join_from_itself_returns_edeadlk(void **state) {
    self_join_t s;
    (void)state;
    memset(&s, 0, sizeof(s));
    assert_int_equal(rs_mutex_init(&s.lock), RS_OK);
    assert_int_equal(rs_condvar_init(&s.cond), RS_OK);
    assert_int_equal(rs_thread_launch(&s.thread, self_join_main, &s, NULL), RS_OK);
    rs_mutex_lock(&s.lock);
    s.go = true;
    rs_condvar_signal(&s.cond);
    while (!s.done) {
        rs_condvar_wait(&s.cond, &s.lock);
    }
    rs_mutex_unlock(&s.lock);
    assert_int_equal(s.rc, RS_EDEADLK);
    /* The failed self-join left the thread joinable. */
    assert_int_equal(rs_thread_join(&s.thread), RS_OK);
    rs_condvar_cleanup(&s.cond);
    rs_mutex_cleanup(&s.lock);
}

static void noop_main(void *user_data) {
    (void)user_data;
}

static void thread_joining_twice_returns_estate(void **state) {
    rs_thread_t thread;
    (void)state;
    assert_int_equal(rs_thread_launch(&thread, noop_main, NULL, NULL), RS_OK);
    assert_int_equal(rs_thread_join(&thread), RS_OK);
    assert_int_equal(rs_thread_join(&thread), RS_ESTATE);
}

static void thread_joining_a_never_launched_thread_returns_estate(void **state) {
    rs_thread_t thread;
    (void)state;
    memset(&thread, 0, sizeof(thread));
    assert_int_equal(rs_thread_join(&thread), RS_ESTATE);
}

static void thread_launch_without_fn_returns_einval(void **state) {
    rs_thread_t thread;
    (void)state;
    assert_int_equal(rs_thread_launch(&thread, NULL, NULL, NULL), RS_EINVAL);
}

static void flag_main(void *user_data) {
    __atomic_store_n((int *)user_data, 1, __ATOMIC_SEQ_CST);
}

static void thread_launch_with_impossible_stack_size_returns_ethread(void **state) {
    rs_thread_t thread;
    rs_thread_options_t options = {.name = "rs-huge", .stack_size = IMPOSSIBLE_STACK_SIZE};
    log_capture_t capture = {0, RS_LOG_LEVEL_NONE, RS_LS_GENERAL};
    rs_logger_t logger = {.level = RS_LOG_LEVEL_TRACE, .log_fn = log_capture_fn, .user_data = &capture};
    int ran = 0;
    int rc;
    (void)state;
    rs_log_set(&logger);
    rc = rs_thread_launch(&thread, flag_main, &ran, &options);
    rs_log_set(NULL);
    assert_int_equal(rc, RS_ETHREAD);
    assert_int_equal(rs_thread_join(&thread), RS_ESTATE);
    assert_int_equal(__atomic_load_n(&ran, __ATOMIC_SEQ_CST), 0);
    /* The header promises the refusal is logged. */
    assert_int_equal(capture.count, 1);
    assert_int_equal(capture.level, RS_LOG_LEVEL_ERROR);
    assert_int_equal(capture.subject, RS_LS_THREAD);
}

/* ---- thread ids --------------------------------------------------------- */

typedef struct id_probe {
    rs_mutex_t lock;
    rs_condvar_t cond;
    int arrived;
    rs_thread_id_t first[2];
    rs_thread_id_t second[2];
} id_probe_t;

typedef struct id_worker {
    id_probe_t *probe;
    int index;
} id_worker_t;

static void id_worker_main(void *user_data) {
    id_worker_t *w = (id_worker_t *)user_data;
    id_probe_t *p = w->probe;
    rs_thread_id_t id = rs_thread_current_id();
    rs_mutex_lock(&p->lock);
    p->first[w->index] = id;
    /* Both threads stay alive until both have recorded their id, so the OS
     * cannot recycle one thread's id for the other. */
    ++p->arrived;
    rs_condvar_broadcast(&p->cond);
    while (p->arrived < 2) {
        rs_condvar_wait(&p->cond, &p->lock);
    }
    p->second[w->index] = rs_thread_current_id();
    rs_mutex_unlock(&p->lock);
}

static void thread_current_id_is_stable_and_differs_between_threads(void **state) {
    id_probe_t p;
    id_worker_t workers[2];
    rs_thread_t threads[2];
    rs_thread_id_t main_id = rs_thread_current_id();
    int i;
    (void)state;
    memset(&p, 0, sizeof(p));
    assert_int_equal(rs_mutex_init(&p.lock), RS_OK);
    assert_int_equal(rs_condvar_init(&p.cond), RS_OK);
    for (i = 0; i < 2; ++i) {
        workers[i].probe = &p;
        workers[i].index = i;
        assert_int_equal(rs_thread_launch(&threads[i], id_worker_main, &workers[i], NULL), RS_OK);
    }
    for (i = 0; i < 2; ++i) {
        assert_int_equal(rs_thread_join(&threads[i]), RS_OK);
    }
    rs_condvar_cleanup(&p.cond);
    rs_mutex_cleanup(&p.lock);

    assert_true(main_id != 0);
    assert_true(rs_thread_current_id() == main_id);
    for (i = 0; i < 2; ++i) {
        assert_true(p.first[i] != 0);
        assert_true(p.first[i] == p.second[i]);
        assert_true(p.first[i] != main_id);
    }
    assert_true(p.first[0] != p.first[1]);
}

/* ---- mutex -------------------------------------------------------------- */

#define COUNTER_THREADS 4
#define COUNTER_INCREMENTS 100000

typedef struct counter {
    rs_mutex_t lock;
    long value;
} counter_t;

static void counter_main(void *user_data) {
    counter_t *c = (counter_t *)user_data;
    int i;
    for (i = 0; i < COUNTER_INCREMENTS; ++i) {
        rs_mutex_lock(&c->lock);
        ++c->value;
        rs_mutex_unlock(&c->lock);
    }
}

static void mutex_protects_counter_incremented_by_four_threads(void **state) {
    counter_t c;
    rs_thread_t threads[COUNTER_THREADS];
    int i;
    (void)state;
    c.value = 0;
    assert_int_equal(rs_mutex_init(&c.lock), RS_OK);
    for (i = 0; i < COUNTER_THREADS; ++i) {
        assert_int_equal(rs_thread_launch(&threads[i], counter_main, &c, NULL), RS_OK);
    }
    for (i = 0; i < COUNTER_THREADS; ++i) {
        assert_int_equal(rs_thread_join(&threads[i]), RS_OK);
    }
    rs_mutex_cleanup(&c.lock);
    assert_int_equal(c.value, (long)COUNTER_THREADS * COUNTER_INCREMENTS);
}

static rs_mutex_t static_mutex = RS_MUTEX_INIT;

static void mutex_static_initializer_is_usable(void **state) {
    (void)state;
    rs_mutex_lock(&static_mutex);
    /* Held: another attempt must not succeed. */
    assert_false(rs_test_mutex_trylock(&static_mutex));
    rs_mutex_unlock(&static_mutex);
    assert_true(rs_test_mutex_trylock(&static_mutex));
    rs_mutex_unlock(&static_mutex);
}

/* ---- condition variables ------------------------------------------------ */

#define WAITERS 4

typedef struct wake_probe {
    rs_mutex_t lock;
    rs_condvar_t cond;
    int waiting;
    bool flag;
    int woken;
    int timed_out;
} wake_probe_t;

static void waiter_main(void *user_data) {
    wake_probe_t *p = (wake_probe_t *)user_data;
    uint64_t deadline = rs_clock_now_ns() + LONG_WAIT_NS;
    rs_mutex_lock(&p->lock);
    ++p->waiting;
    while (!p->flag) {
        if (rs_condvar_wait_until(&p->cond, &p->lock, deadline) == RS_ETIMEDOUT) {
            ++p->timed_out;
            break;
        }
    }
    if (p->flag) {
        ++p->woken;
    }
    rs_mutex_unlock(&p->lock);
}

/* Start `count` waiters and return once every one of them is blocked in the wait:
 * a waiter holds the lock from ++waiting until the wait releases it. */
static void start_waiters(wake_probe_t *p, rs_thread_t *threads, int count) {
    int i;
    memset(p, 0, sizeof(*p));
    assert_int_equal(rs_mutex_init(&p->lock), RS_OK);
    assert_int_equal(rs_condvar_init(&p->cond), RS_OK);
    for (i = 0; i < count; ++i) {
        assert_int_equal(rs_thread_launch(&threads[i], waiter_main, p, NULL), RS_OK);
    }
    rs_mutex_lock(&p->lock);
    while (p->waiting < count) {
        rs_mutex_unlock(&p->lock);
        rs_thread_sleep_ns(RS_NS_PER_MS);
        rs_mutex_lock(&p->lock);
    }
    rs_mutex_unlock(&p->lock);
}

static void finish_waiters(wake_probe_t *p, rs_thread_t *threads, int count) {
    int i;
    for (i = 0; i < count; ++i) {
        assert_int_equal(rs_thread_join(&threads[i]), RS_OK);
    }
    rs_condvar_cleanup(&p->cond);
    rs_mutex_cleanup(&p->lock);
}

static void condvar_signal_wakes_a_waiter(void **state) {
    wake_probe_t p;
    rs_thread_t thread;
    (void)state;
    start_waiters(&p, &thread, 1);
    rs_mutex_lock(&p.lock);
    p.flag = true;
    rs_condvar_signal(&p.cond);
    rs_mutex_unlock(&p.lock);
    finish_waiters(&p, &thread, 1);
    assert_int_equal(p.woken, 1);
    assert_int_equal(p.timed_out, 0);
}

static void condvar_broadcast_wakes_every_waiter(void **state) {
    wake_probe_t p;
    rs_thread_t threads[WAITERS];
    (void)state;
    start_waiters(&p, threads, WAITERS);
    rs_mutex_lock(&p.lock);
    p.flag = true;
    rs_condvar_broadcast(&p.cond);
    rs_mutex_unlock(&p.lock);
    finish_waiters(&p, threads, WAITERS);
    assert_int_equal(p.woken, WAITERS);
    assert_int_equal(p.timed_out, 0);
}

static void condvar_wait_until_times_out(void **state) {
    rs_mutex_t lock;
    rs_condvar_t cond;
    uint64_t start;
    uint64_t deadline;
    uint64_t end;
    int rc;
    int spurious = 0;
    (void)state;
    assert_int_equal(rs_mutex_init(&lock), RS_OK);
    assert_int_equal(rs_condvar_init(&cond), RS_OK);
    start = rs_clock_now_ns();
    deadline = start + 30 * RS_NS_PER_MS;
    rs_mutex_lock(&lock);
    /* Nobody signals; RS_OK can only be a spurious wakeup. */
    while ((rc = rs_condvar_wait_until(&cond, &lock, deadline)) == RS_OK && spurious < 1000) {
        ++spurious;
    }
    rs_mutex_unlock(&lock);
    end = rs_clock_now_ns();
    rs_condvar_cleanup(&cond);
    rs_mutex_cleanup(&lock);
    assert_int_equal(rc, RS_ETIMEDOUT);
    assert_true(end >= deadline);
    assert_true(end - start >= 30 * RS_NS_PER_MS);
}

static void condvar_wait_until_past_deadline_times_out_at_once(void **state) {
    rs_mutex_t lock;
    rs_condvar_t cond;
    (void)state;
    assert_int_equal(rs_mutex_init(&lock), RS_OK);
    assert_int_equal(rs_condvar_init(&cond), RS_OK);
    rs_mutex_lock(&lock);
    assert_int_equal(rs_condvar_wait_until(&cond, &lock, 0), RS_ETIMEDOUT);
    assert_int_equal(rs_condvar_wait_until(&cond, &lock, rs_clock_now_ns()), RS_ETIMEDOUT);
    /* The mutex is still held by us after the call. */
    assert_false(rs_test_mutex_trylock(&lock));
    rs_mutex_unlock(&lock);
    rs_condvar_cleanup(&cond);
    rs_mutex_cleanup(&lock);
}

/* ---- once --------------------------------------------------------------- */

#define ONCE_THREADS 8

typedef struct once_probe {
    rs_once_t once;
    rs_mutex_t lock;
    rs_condvar_t cond;
    bool go;
    int calls;
    int completed;
    int returned_early;
    void *seen_user_data;
} once_probe_t;

static void once_fn(void *user_data) {
    once_probe_t *p = (once_probe_t *)user_data;
    __atomic_add_fetch(&p->calls, 1, __ATOMIC_SEQ_CST);
    p->seen_user_data = user_data;
    /* Slow enough that the other threads arrive while it runs. */
    rs_thread_sleep_ns(10 * RS_NS_PER_MS);
    __atomic_store_n(&p->completed, 1, __ATOMIC_SEQ_CST);
}

static void once_racer_main(void *user_data) {
    once_probe_t *p = (once_probe_t *)user_data;
    rs_mutex_lock(&p->lock);
    while (!p->go) {
        rs_condvar_wait(&p->cond, &p->lock);
    }
    rs_mutex_unlock(&p->lock);
    rs_once(&p->once, once_fn, p);
    /* rs_once must not return before fn has finished, in any thread. */
    if (!__atomic_load_n(&p->completed, __ATOMIC_SEQ_CST)) {
        __atomic_add_fetch(&p->returned_early, 1, __ATOMIC_SEQ_CST);
    }
}

static void once_runs_exactly_once_under_eight_racing_threads(void **state) {
    once_probe_t p;
    rs_once_t init = RS_ONCE_INIT;
    rs_thread_t threads[ONCE_THREADS];
    int i;
    (void)state;
    memset(&p, 0, sizeof(p));
    p.once = init;
    assert_int_equal(rs_mutex_init(&p.lock), RS_OK);
    assert_int_equal(rs_condvar_init(&p.cond), RS_OK);
    for (i = 0; i < ONCE_THREADS; ++i) {
        assert_int_equal(rs_thread_launch(&threads[i], once_racer_main, &p, NULL), RS_OK);
    }
    rs_mutex_lock(&p.lock);
    p.go = true;
    rs_condvar_broadcast(&p.cond);
    rs_mutex_unlock(&p.lock);
    for (i = 0; i < ONCE_THREADS; ++i) {
        assert_int_equal(rs_thread_join(&threads[i]), RS_OK);
    }
    /* A later call on the same flag does nothing. */
    rs_once(&p.once, once_fn, &p);
    rs_condvar_cleanup(&p.cond);
    rs_mutex_cleanup(&p.lock);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.completed, 1);
    assert_int_equal(p.returned_early, 0);
    assert_ptr_equal(p.seen_user_data, &p);
}

static void count_call(void *user_data) {
    ++*(int *)user_data;
}

static void once_flags_are_independent(void **state) {
    rs_once_t a = RS_ONCE_INIT;
    rs_once_t b = RS_ONCE_INIT;
    int calls_a = 0;
    int calls_b = 0;
    (void)state;
    rs_once(&a, count_call, &calls_a);
    rs_once(&a, count_call, &calls_a);
    assert_int_equal(calls_a, 1);
    assert_int_equal(calls_b, 0);
    rs_once(&b, count_call, &calls_b);
    rs_once(&b, count_call, &calls_b);
    assert_int_equal(calls_a, 1);
    assert_int_equal(calls_b, 1);
}

/* ---- CPU count and clock ------------------------------------------------ */

static void usable_cpu_count_is_between_one_and_online_cpus(void **state) {
    size_t count = rs_usable_cpu_count();
    long online = rs_test_online_cpus();
    (void)state;
    assert_true(count >= 1);
    if (online > 0) {
        assert_true(count <= (size_t)online);
    }
#if RESEAU_OS_LINUX
    {
        cpu_set_t set;
        CPU_ZERO(&set);
        if (sched_getaffinity(0, sizeof(set), &set) == 0) {
            assert_true(count <= (size_t)CPU_COUNT(&set));
        }
    }
#endif
    assert_int_equal(rs_usable_cpu_count(), count);
}

static void clock_is_monotonic(void **state) {
    uint64_t previous = rs_clock_now_ns();
    int i;
    (void)state;
    assert_true(previous > 0);
    for (i = 0; i < 10000; ++i) {
        uint64_t now = rs_clock_now_ns();
        assert_true(now >= previous);
        previous = now;
    }
}

static void clock_advances_across_sleep_by_at_least_the_sleep(void **state) {
    uint64_t start;
    uint64_t end;
    (void)state;
    start = rs_clock_now_ns();
    rs_thread_sleep_ns(2 * RS_NS_PER_MS);
    end = rs_clock_now_ns();
    assert_true(end - start >= 2 * RS_NS_PER_MS);
    start = rs_clock_now_ns();
    rs_thread_sleep_ns(0);
    end = rs_clock_now_ns();
    assert_true(end >= start);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(thread_launch_runs_fn_and_join_waits_for_it),
        cmocka_unit_test(thread_name_is_visible_inside_the_thread),
        cmocka_unit_test(thread_long_name_is_truncated_to_name_max),
        cmocka_unit_test(thread_launch_honours_stack_size),
        cmocka_unit_test(thread_join_from_itself_returns_edeadlk),
        cmocka_unit_test(thread_joining_twice_returns_estate),
        cmocka_unit_test(thread_joining_a_never_launched_thread_returns_estate),
        cmocka_unit_test(thread_launch_without_fn_returns_einval),
        cmocka_unit_test(thread_launch_with_impossible_stack_size_returns_ethread),
        cmocka_unit_test(thread_current_id_is_stable_and_differs_between_threads),
        cmocka_unit_test(mutex_protects_counter_incremented_by_four_threads),
        cmocka_unit_test(mutex_static_initializer_is_usable),
        cmocka_unit_test(condvar_signal_wakes_a_waiter),
        cmocka_unit_test(condvar_broadcast_wakes_every_waiter),
        cmocka_unit_test(condvar_wait_until_times_out),
        cmocka_unit_test(condvar_wait_until_past_deadline_times_out_at_once),
        cmocka_unit_test(once_runs_exactly_once_under_eight_racing_threads),
        cmocka_unit_test(once_flags_are_independent),
        cmocka_unit_test(usable_cpu_count_is_between_one_and_online_cpus),
        cmocka_unit_test(clock_is_monotonic),
        cmocka_unit_test(clock_advances_across_sleep_by_at_least_the_sleep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
