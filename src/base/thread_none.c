/* The single-threaded build (RESEAU_NO_THREADS) of >>thread: no thread is
 * ever started, so locks have nobody to exclude and waits nobody to wait for. */
#if RS__NO_THREADS

/* The signal watcher's mask for threads reseau starts: there are none. */
static RS__UNUSED void rs__thread_block_in_new_threads(int signum, bool block) {
    (void)signum;
    (void)block;
}

static RS__UNUSED void rs__thread_detach(rs_thread_t *thread) {
    thread->joinable = false;
}

/* No loop thread is ever launched, so this is never a running thread's id. */
static RS__UNUSED rs_thread_id_t rs__thread_id_of(const rs_thread_t *thread) {
    (void)thread;
    return 0;
}

RESEAU_API int rs_thread_launch(rs_thread_t *thread, rs_thread_fn *fn, void *user_data,
                                const rs_thread_options_t *options) {
    (void)user_data;
    (void)options;
    if (!thread || !fn) {
        return RS_EINVAL;
    }
    thread->joinable = false;
    return RS_ENOTSUP;
}

RESEAU_API int rs_thread_join(rs_thread_t *thread) {
    return thread ? RS_ENOTSUP : RS_EINVAL;
}

RESEAU_API rs_thread_id_t rs_thread_current_id(void) {
    return 1;
}

RESEAU_API void rs_thread_sleep_ns(uint64_t ns) {
#if RESEAU_OS_POSIX
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / RS_NS_PER_SEC);
    ts.tv_nsec = (long)(ns % RS_NS_PER_SEC);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
#elif RESEAU_OS_WINDOWS
    Sleep((DWORD)((ns + RS_NS_PER_MS - 1) / RS_NS_PER_MS));
#else
    (void)ns;
#endif
}

RESEAU_API size_t rs_usable_cpu_count(void) {
    return 1;
}

RESEAU_API int rs_mutex_init(rs_mutex_t *mutex) {
    mutex->unused = 0;
    return RS_OK;
}

RESEAU_API void rs_mutex_cleanup(rs_mutex_t *mutex) {
    (void)mutex;
}

RESEAU_API void rs_mutex_lock(rs_mutex_t *mutex) {
    (void)mutex;
}

RESEAU_API void rs_mutex_unlock(rs_mutex_t *mutex) {
    (void)mutex;
}

RESEAU_API int rs_condvar_init(rs_condvar_t *condvar) {
    condvar->unused = 0;
    return RS_OK;
}

RESEAU_API void rs_condvar_cleanup(rs_condvar_t *condvar) {
    (void)condvar;
}

RESEAU_API void rs_condvar_signal(rs_condvar_t *condvar) {
    (void)condvar;
}

RESEAU_API void rs_condvar_broadcast(rs_condvar_t *condvar) {
    (void)condvar;
}

RESEAU_API void rs_condvar_wait(rs_condvar_t *condvar, rs_mutex_t *mutex) {
    (void)condvar;
    (void)mutex;
}

RESEAU_API int rs_condvar_wait_until(rs_condvar_t *condvar, rs_mutex_t *mutex, uint64_t deadline_ns) {
    uint64_t now_ns = rs_clock_now_ns();
    (void)condvar;
    (void)mutex;
    if (now_ns < deadline_ns) {
        rs_thread_sleep_ns(deadline_ns - now_ns);
    }
    return RS_ETIMEDOUT;
}

RESEAU_API void rs_once(rs_once_t *once, void (*fn)(void *user_data), void *user_data) {
    if (once->state == 0) {
        once->state = 2;
        fn(user_data);
    }
}

#endif /* RS__NO_THREADS */
