/*
 * Threads, mutexes, condition variables, once.
 *
 * Thin, allocation-free wrappers. The structs are caller-owned storage: init
 * them in place and never copy a live one. Every function here may be called
 * from any thread (rs_thread_join not from the thread being joined).
 *
 * RESEAU_NO_THREADS: there is one thread. rs_thread_launch and rs_thread_join
 * return RS_ENOTSUP; mutexes, condition variables and once need no OS and
 * cannot fail (see each function); rs_thread_current_id is always 1 and
 * rs_usable_cpu_count 1.
 */
#if RS__NO_THREADS
/* Nothing to lock: the int only keeps the struct non-empty, as C requires. */
typedef struct rs_mutex {
    int unused;
} rs_mutex_t;
#define RS_MUTEX_INIT {0}

typedef struct rs_condvar {
    int unused;
} rs_condvar_t;

typedef struct rs_once {
    int state; /* 0 not run, 2 done */
} rs_once_t;
#define RS_ONCE_INIT {0}

#elif RESEAU_OS_POSIX
typedef struct rs_mutex {
    pthread_mutex_t impl;
} rs_mutex_t;
/* Static initializer for a process-lifetime mutex (no cleanup needed). */
#define RS_MUTEX_INIT {PTHREAD_MUTEX_INITIALIZER}

typedef struct rs_condvar {
    pthread_cond_t impl;
} rs_condvar_t;

/* Once-flag: 0 not run, 1 running, 2 done. Accessed only through rs_once(). */
typedef struct rs_once {
    int state;
} rs_once_t;
#define RS_ONCE_INIT {0}

#else
/* Windows: an SRWLOCK, a CONDITION_VARIABLE and an INIT_ONCE are each one
 * pointer, all zeros when unused. They are held as void * so that the
 * declarations need no <windows.h>, which would put its macros (min, max,
 * near, ERROR, ...) into every file that includes reseau.h; the
 * implementation checks that the sizes match. */
typedef struct rs_mutex {
    void *impl;
} rs_mutex_t;
/* Static initializer for a process-lifetime mutex (no cleanup needed). */
#define RS_MUTEX_INIT {NULL}

typedef struct rs_condvar {
    void *impl;
} rs_condvar_t;

/* Accessed only through rs_once(). */
typedef struct rs_once {
    void *impl;
} rs_once_t;
#define RS_ONCE_INIT {NULL}
#endif

/* Identifies a thread; compare with ==. 0 is never a valid id. */
typedef uintptr_t rs_thread_id_t;

typedef void rs_thread_fn(void *user_data);

/* Longest thread name kept, in bytes, without the NUL (Linux limits names to 15). */
#define RS_THREAD_NAME_MAX 15

typedef struct rs_thread_options {
    const char *name;  /* shown by ps/top/gdb, truncated to RS_THREAD_NAME_MAX (default: unnamed) */
    size_t stack_size; /* bytes (default: 0, the OS default) */
} rs_thread_options_t;

/* A joinable thread. Caller-owned; must stay valid until rs_thread_join returns. */
typedef struct rs_thread {
    rs_thread_fn *fn;
    void *user_data;
    char name[RS_THREAD_NAME_MAX + 1];
    bool joinable;
#if RS__NO_THREADS
    void *handle; /* never set: no thread is ever launched */
#elif RESEAU_OS_POSIX
    pthread_t handle;
#else
    void *handle;      /* the HANDLE _beginthreadex returned */
    uint32_t id;       /* its thread id, for the join-from-itself check */
#endif
} rs_thread_t;

/* Start fn(user_data) on a new thread. RS_EINVAL for a NULL thread or fn,
 * RS_ENOMEM if thread attributes cannot be made (POSIX), RS_ETHREAD (logged)
 * if the OS refuses (a bad stack_size included); no allocation.
 * RESEAU_NO_THREADS: always RS_ENOTSUP (RS_EINVAL first for NULL). */
RESEAU_API int rs_thread_launch(rs_thread_t *thread, rs_thread_fn *fn, void *user_data,
                                const rs_thread_options_t *options);
/* Wait for the thread to finish. RS_EINVAL for NULL, RS_EDEADLK from the thread
 * itself, RS_ESTATE if not joinable, or the mapped OS error from pthread_join
 * (WaitForSingleObject on Windows). RESEAU_NO_THREADS: RS_ENOTSUP. */
RESEAU_API int rs_thread_join(rs_thread_t *thread);
RESEAU_API rs_thread_id_t rs_thread_current_id(void);
/* Without an OS (RESEAU_OS_NONE) this returns at once: firmware sleeps its own
 * way (WFI, an RTOS delay), which reseau cannot know. */
RESEAU_API void rs_thread_sleep_ns(uint64_t ns);

/* The number of CPUs this process may actually use: the affinity mask, capped by a
 * cgroup v2 `cpu.max` quota anywhere up the process's cgroup path (Linux), or
 * by a job object's hard CPU-rate cap (Windows). At least 1. */
RESEAU_API size_t rs_usable_cpu_count(void);

/* RS_OK, or the OS error mapped by rs_result_from_errno (RS_ENOMEM, RS_EAGAIN, ...).
 * Always RS_OK on Windows, where an SRWLOCK needs no resources. */
RESEAU_API int rs_mutex_init(rs_mutex_t *mutex);
RESEAU_API void rs_mutex_cleanup(rs_mutex_t *mutex);
RESEAU_API void rs_mutex_lock(rs_mutex_t *mutex);
RESEAU_API void rs_mutex_unlock(rs_mutex_t *mutex);

/* Waits use the monotonic clock, so wall-clock jumps do not shorten or stretch them. */
/* RS_OK, or the OS error mapped by rs_result_from_errno (RS_ENOMEM, RS_EAGAIN, ...).
 * Always RS_OK on Windows (a CONDITION_VARIABLE needs no resources). */
RESEAU_API int rs_condvar_init(rs_condvar_t *condvar);
RESEAU_API void rs_condvar_cleanup(rs_condvar_t *condvar);
RESEAU_API void rs_condvar_signal(rs_condvar_t *condvar);
RESEAU_API void rs_condvar_broadcast(rs_condvar_t *condvar);
/* Spurious wakeups happen: wait in a loop on your predicate.
 * RESEAU_NO_THREADS: no other thread can signal, so a wait returns at once,
 * and rs_condvar_wait_until sleeps (rs_thread_sleep_ns) until the deadline
 * and returns RS_ETIMEDOUT. */
RESEAU_API void rs_condvar_wait(rs_condvar_t *condvar, rs_mutex_t *mutex);
/* RS_ETIMEDOUT once rs_clock_now_ns() >= deadline_ns, else RS_OK. */
RESEAU_API int rs_condvar_wait_until(rs_condvar_t *condvar, rs_mutex_t *mutex, uint64_t deadline_ns);

/* Run fn(user_data) exactly once per rs_once_t, however many threads call this. */
RESEAU_API void rs_once(rs_once_t *once, void (*fn)(void *user_data), void *user_data);
