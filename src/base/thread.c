/* Threads, mutexes, condition variables, once, and the usable CPU count (POSIX;
 * Windows has its own in >>thread_win.c). */
#if RESEAU_OS_POSIX && !RS__NO_THREADS

static void rs__thread_set_name(const char *name) {
    if (!name[0]) {
        return;
    }
#if RESEAU_OS_LINUX
    pthread_setname_np(pthread_self(), name);
#elif RESEAU_OS_APPLE
    pthread_setname_np(name);
#elif defined(__FreeBSD__) || defined(__OpenBSD__)
    pthread_set_name_np(pthread_self(), name);
#endif
}

/* Signals that threads reseau starts are born with blocked. The signal
 * watcher keeps the set: a signalfd only sees a signal that every thread
 * blocks, and a loop thread must not take one meant for it. */
static rs_mutex_t rs__thread_sigmask_lock = RS_MUTEX_INIT;
static sigset_t rs__thread_sigmask;
static int rs__thread_sigmask_count; /* signals in the set; sigset_t has no emptiness test */

/* Unused where the watcher takes the self-pipe path, which needs no mask. */
static RS__UNUSED void rs__thread_block_in_new_threads(int signum, bool block) {
    rs_mutex_lock(&rs__thread_sigmask_lock);
    if (rs__thread_sigmask_count == 0) {
        sigemptyset(&rs__thread_sigmask);
    }
    if (block) {
        sigaddset(&rs__thread_sigmask, signum);
        rs__thread_sigmask_count++;
    } else {
        sigdelset(&rs__thread_sigmask, signum);
        rs__thread_sigmask_count--;
    }
    rs_mutex_unlock(&rs__thread_sigmask_lock);
}

/* Block the set in this thread around pthread_create, so the new thread has
 * it from its first instruction; false (nothing changed) when it is empty. */
static bool rs__thread_mask_for_child(sigset_t *old) {
    sigset_t set;
    bool any;
    rs_mutex_lock(&rs__thread_sigmask_lock);
    any = rs__thread_sigmask_count > 0;
    if (any) {
        set = rs__thread_sigmask;
    }
    rs_mutex_unlock(&rs__thread_sigmask_lock);
    return any && pthread_sigmask(SIG_BLOCK, &set, old) == 0;
}

static void *rs__thread_main(void *arg) {
    rs_thread_t *thread = (rs_thread_t *)arg;
    rs__thread_set_name(thread->name);
    thread->fn(thread->user_data);
    return NULL;
}

RESEAU_API int rs_thread_launch(rs_thread_t *thread, rs_thread_fn *fn, void *user_data,
                                const rs_thread_options_t *options) {
    pthread_attr_t attr;
    int err;
    if (!thread || !fn) {
        return RS_EINVAL;
    }
    memset(thread, 0, sizeof(*thread));
    thread->fn = fn;
    thread->user_data = user_data;
    if (options && options->name) {
        size_t i;
        for (i = 0; i < RS_THREAD_NAME_MAX && options->name[i]; ++i) {
            thread->name[i] = options->name[i];
        }
    }
    if (pthread_attr_init(&attr) != 0) {
        return RS_ENOMEM;
    }
    err = 0;
    if (options && options->stack_size) {
        err = pthread_attr_setstacksize(&attr, options->stack_size);
    }
    if (err == 0) {
        sigset_t old;
        bool masked = rs__thread_mask_for_child(&old);
        err = pthread_create(&thread->handle, &attr, rs__thread_main, thread);
        if (masked) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
        }
    }
    pthread_attr_destroy(&attr);
    if (err != 0) {
        RS__LOG_ERROR(RS_LS_THREAD, "cannot start thread '%s': %s (errno %d)", thread->name, strerror(err), err);
        return RS_ETHREAD;
    }
    thread->joinable = true;
    return RS_OK;
}

RESEAU_API int rs_thread_join(rs_thread_t *thread) {
    int err;
    if (!thread) {
        return RS_EINVAL;
    }
    if (!thread->joinable) {
        return RS_ESTATE;
    }
    if (pthread_equal(thread->handle, pthread_self())) {
        return RS_EDEADLK;
    }
    err = pthread_join(thread->handle, NULL);
    if (err != 0) {
        return rs_result_from_errno(err);
    }
    thread->joinable = false;
    return RS_OK;
}

/* Lets a joinable thread run on unjoined: nothing waits for it, and it frees
 * its own resources when it returns. */
static RS__UNUSED void rs__thread_detach(rs_thread_t *thread) {
    pthread_detach(thread->handle);
    thread->joinable = false;
}

RESEAU_API rs_thread_id_t rs_thread_current_id(void) {
    return (rs_thread_id_t)pthread_self();
}

/* The id rs_thread_current_id returns on a launched thread. */
static rs_thread_id_t rs__thread_id_of(const rs_thread_t *thread) {
    return (rs_thread_id_t)thread->handle;
}

RESEAU_API void rs_thread_sleep_ns(uint64_t ns) {
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / RS_NS_PER_SEC);
    ts.tv_nsec = (long)(ns % RS_NS_PER_SEC);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

#if RS__HAVE_CGROUP_CPU_MAX
/* CPUs allowed by a cgroup v2 "cpu.max" file ("max 100000" or "<quota> <period>"),
 * rounded up; 0 when unlimited or unreadable. */
static size_t rs__cgroup_cpu_max(const char *path) {
    char line[128];
    long long quota;
    long long period;
    FILE *f = fopen(path, "r");
    size_t cpus = 0;
    if (!f) {
        return 0;
    }
    if (fgets(line, sizeof(line), f) && sscanf(line, "%lld %lld", &quota, &period) == 2 && quota > 0 && period > 0) {
        cpus = (size_t)((quota + period - 1) / period);
    }
    fclose(f);
    return cpus;
}

/* The tightest cpu.max limit on the process's cgroup v2 path, walking up to the root. */
static size_t rs__cgroup_cpu_limit(void) {
    char line[512];
    char path[768];
    char *cgroup = NULL;
    char *slash;
    size_t limit = 0;
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) {
        return 0;
    }
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "0::", 3) == 0) {
            cgroup = line + 3;
            cgroup[strcspn(cgroup, "\n")] = '\0';
            break;
        }
    }
    fclose(f);
    while (cgroup && cgroup[0] == '/') {
        size_t cpus;
        snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpu.max", strcmp(cgroup, "/") == 0 ? "" : cgroup);
        cpus = rs__cgroup_cpu_max(path);
        if (cpus && (!limit || cpus < limit)) {
            limit = cpus;
        }
        slash = strrchr(cgroup, '/');
        if (slash == cgroup) {
            if (cgroup[1] == '\0') {
                break;
            }
            cgroup[1] = '\0';
        } else {
            *slash = '\0';
        }
    }
    return limit;
}
#else
static size_t rs__cgroup_cpu_limit(void) {
    return 0;
}
#endif

/* The CPUs this thread may run on: its affinity mask (Linux), else the online
 * count (sysconf: hw.activecpu on macOS, hw.ncpuonline on OpenBSD and NetBSD);
 * 0 when unknown. */
static size_t rs__cpus_allowed(void) {
#if RS__HAVE_SCHED_GETAFFINITY
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) {
        return (size_t)CPU_COUNT(&set);
    }
#endif
    {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        return online > 0 ? (size_t)online : 0;
    }
}

RESEAU_API size_t rs_usable_cpu_count(void) {
    size_t count = rs__cpus_allowed();
    size_t limit = rs__cgroup_cpu_limit();
    if (limit && (!count || limit < count)) {
        count = limit;
    }
    return count ? count : 1;
}

RESEAU_API int rs_mutex_init(rs_mutex_t *mutex) {
    return rs_result_from_errno(pthread_mutex_init(&mutex->impl, NULL));
}

RESEAU_API void rs_mutex_cleanup(rs_mutex_t *mutex) {
    pthread_mutex_destroy(&mutex->impl);
}

RESEAU_API void rs_mutex_lock(rs_mutex_t *mutex) {
    int err = pthread_mutex_lock(&mutex->impl);
    RESEAU_ASSERT(err == 0);
    (void)err;
}

RESEAU_API void rs_mutex_unlock(rs_mutex_t *mutex) {
    int err = pthread_mutex_unlock(&mutex->impl);
    RESEAU_ASSERT(err == 0);
    (void)err;
}

RESEAU_API int rs_condvar_init(rs_condvar_t *condvar) {
    pthread_condattr_t attr;
    int err = pthread_condattr_init(&attr);
    if (err != 0) {
        return rs_result_from_errno(err);
    }
#if !RESEAU_OS_APPLE
    err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
#endif
    if (err == 0) {
        err = pthread_cond_init(&condvar->impl, &attr);
    }
    pthread_condattr_destroy(&attr);
    return rs_result_from_errno(err);
}

RESEAU_API void rs_condvar_cleanup(rs_condvar_t *condvar) {
    pthread_cond_destroy(&condvar->impl);
}

RESEAU_API void rs_condvar_signal(rs_condvar_t *condvar) {
    pthread_cond_signal(&condvar->impl);
}

RESEAU_API void rs_condvar_broadcast(rs_condvar_t *condvar) {
    pthread_cond_broadcast(&condvar->impl);
}

RESEAU_API void rs_condvar_wait(rs_condvar_t *condvar, rs_mutex_t *mutex) {
    pthread_cond_wait(&condvar->impl, &mutex->impl);
}

RESEAU_API int rs_condvar_wait_until(rs_condvar_t *condvar, rs_mutex_t *mutex, uint64_t deadline_ns) {
    struct timespec ts;
    int err;
    if (rs_clock_now_ns() >= deadline_ns) {
        return RS_ETIMEDOUT;
    }
#if RESEAU_OS_APPLE
    {
        uint64_t rel = deadline_ns - rs_clock_now_ns();
        ts.tv_sec = (time_t)(rel / RS_NS_PER_SEC);
        ts.tv_nsec = (long)(rel % RS_NS_PER_SEC);
        err = pthread_cond_timedwait_relative_np(&condvar->impl, &mutex->impl, &ts);
    }
#else
    ts.tv_sec = (time_t)(deadline_ns / RS_NS_PER_SEC);
    ts.tv_nsec = (long)(deadline_ns % RS_NS_PER_SEC);
    err = pthread_cond_timedwait(&condvar->impl, &mutex->impl, &ts);
#endif
    return err == ETIMEDOUT ? RS_ETIMEDOUT : RS_OK;
}

RESEAU_API void rs_once(rs_once_t *once, void (*fn)(void *user_data), void *user_data) {
    if (rs__atomic_load_int(&once->state) == 2) {
        return;
    }
    if (rs__atomic_cas_int(&once->state, 0, 1)) {
        fn(user_data);
        rs__atomic_store_int(&once->state, 2);
        return;
    }
    /* Another thread is running fn; the wait is as short as fn itself. */
    while (rs__atomic_load_int(&once->state) != 2) {
        sched_yield();
    }
}
#endif /* RESEAU_OS_POSIX && !RS__NO_THREADS */
