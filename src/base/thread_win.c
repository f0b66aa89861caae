/* Threads, mutexes, condition variables, once, and the usable CPU count
 * (Windows; the POSIX twin is >>thread.c). */
#if RESEAU_OS_WINDOWS && !RS__NO_THREADS

/* The public structs hold these as one void * each (see >>thread). */
RS__STATIC_ASSERT(sizeof(SRWLOCK) == sizeof(void *), srwlock_is_one_pointer);
RS__STATIC_ASSERT(sizeof(CONDITION_VARIABLE) == sizeof(void *), condvar_is_one_pointer);
RS__STATIC_ASSERT(sizeof(INIT_ONCE) == sizeof(void *), init_once_is_one_pointer);

static PSRWLOCK rs__srwlock(rs_mutex_t *mutex) {
    return (PSRWLOCK)(void *)&mutex->impl;
}

static PCONDITION_VARIABLE rs__condvar(rs_condvar_t *condvar) {
    return (PCONDITION_VARIABLE)(void *)&condvar->impl;
}

/* SetThreadDescription exists from Windows 10 1607 (and not in every Wine), so
 * it is looked up rather than linked: older systems leave threads unnamed. */
typedef HRESULT(WINAPI *rs__set_thread_description_fn)(HANDLE thread, PCWSTR description);

static void rs__thread_set_name(const char *name) {
    WCHAR wide[RS_THREAD_NAME_MAX + 1];
    HMODULE kernel32;
    FARPROC proc;
    rs__set_thread_description_fn set_description;
    if (!name[0]) {
        return;
    }
    kernel32 = GetModuleHandleW(L"kernel32.dll");
    proc = kernel32 ? GetProcAddress(kernel32, "SetThreadDescription") : NULL;
    if (!proc) {
        return;
    }
    /* A name cut inside a UTF-8 sequence fails to convert: the thread then
     * keeps no name, which is all a name is worth. */
    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, name, -1, wide, RS_THREAD_NAME_MAX + 1) == 0) {
        return;
    }
    /* FARPROC to another function pointer type: through void (*)(void), which
     * GCC's -Wcast-function-type accepts. */
    set_description = (rs__set_thread_description_fn)(void (*)(void))proc;
    set_description(GetCurrentThread(), wide);
}

static unsigned __stdcall rs__thread_main(void *arg) {
    rs_thread_t *thread = (rs_thread_t *)arg;
    rs__thread_set_name(thread->name);
    thread->fn(thread->user_data);
    return 0;
}

RESEAU_API int rs_thread_launch(rs_thread_t *thread, rs_thread_fn *fn, void *user_data,
                                const rs_thread_options_t *options) {
    unsigned stack_size = 0;
    unsigned id = 0;
    uintptr_t handle;
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
    if (options && options->stack_size) {
        if (options->stack_size > UINT_MAX) {
            RS__LOG_ERROR(RS_LS_THREAD, "cannot start thread '%s': its stack size is over 4 GiB", thread->name);
            return RS_ETHREAD;
        }
        stack_size = (unsigned)options->stack_size;
    }
    /* _beginthreadex rather than CreateThread: the C runtime sets up its
     * per-thread state (errno, strtok, ...) for threads it starts itself.
     * STACK_SIZE_PARAM_IS_A_RESERVATION makes stack_size the whole stack, as
     * on POSIX, rather than its initially committed part. */
    handle = _beginthreadex(NULL, stack_size, rs__thread_main, thread,
                            stack_size ? STACK_SIZE_PARAM_IS_A_RESERVATION : 0, &id);
    if (handle == 0) {
        int err = errno;
        RS__LOG_ERROR(RS_LS_THREAD, "cannot start thread '%s': %s (errno %d)", thread->name, strerror(err), err);
        return RS_ETHREAD;
    }
    thread->handle = (void *)handle;
    thread->id = (uint32_t)id;
    thread->joinable = true;
    return RS_OK;
}

RESEAU_API int rs_thread_join(rs_thread_t *thread) {
    if (!thread) {
        return RS_EINVAL;
    }
    if (!thread->joinable) {
        return RS_ESTATE;
    }
    if (thread->id == (uint32_t)GetCurrentThreadId()) {
        return RS_EDEADLK;
    }
    if (WaitForSingleObject((HANDLE)thread->handle, INFINITE) != WAIT_OBJECT_0) {
        return rs__result_from_win32((uint32_t)GetLastError());
    }
    CloseHandle((HANDLE)thread->handle);
    thread->handle = NULL;
    thread->joinable = false;
    return RS_OK;
}

/* Lets a joinable thread run on unjoined: its handle is closed and nothing
 * waits for it (pthread_detach). */
static RS__UNUSED void rs__thread_detach(rs_thread_t *thread) {
    CloseHandle((HANDLE)thread->handle);
    thread->handle = NULL;
    thread->joinable = false;
}

RESEAU_API rs_thread_id_t rs_thread_current_id(void) {
    /* No thread has id 0 (that is the idle process), so 0 stays invalid. */
    return (rs_thread_id_t)GetCurrentThreadId();
}

/* The id rs_thread_current_id returns on a launched thread. */
static rs_thread_id_t rs__thread_id_of(const rs_thread_t *thread) {
    return (rs_thread_id_t)thread->id;
}

RESEAU_API void rs_thread_sleep_ns(uint64_t ns) {
    /* Sleep takes milliseconds: round up so that a sleep is never shorter than
     * asked, and stay below INFINITE, which would never return. */
    uint64_t ms = ns / RS_NS_PER_MS + (ns % RS_NS_PER_MS ? 1 : 0);
    while (ms > 0) {
        DWORD chunk = ms >= (uint64_t)(INFINITE - 1) ? INFINITE - 1 : (DWORD)ms;
        Sleep(chunk);
        ms -= chunk;
    }
}

/* A job object's hard CPU-rate cap, as a number of CPUs rounded up (CpuRate
 * is in hundredths of a percent of all the machine's CPUs); 0 when the
 * process is in no job, or its job has no such cap. */
static size_t rs__job_cpu_limit(void) {
    JOBOBJECT_CPU_RATE_CONTROL_INFORMATION info;
    SYSTEM_INFO system;
    uint64_t cpus;
    memset(&info, 0, sizeof(info));
    if (!QueryInformationJobObject(NULL, JobObjectCpuRateControlInformation, &info, sizeof(info), NULL)) {
        return 0;
    }
    if (!(info.ControlFlags & JOB_OBJECT_CPU_RATE_CONTROL_ENABLE) ||
        !(info.ControlFlags & JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP) ||
        (info.ControlFlags & JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED) ||
        info.CpuRate == 0) {
        return 0;
    }
    GetSystemInfo(&system);
    cpus = ((uint64_t)system.dwNumberOfProcessors * info.CpuRate + 9999) / 10000;
    return (size_t)(cpus ? cpus : 1);
}

/* The CPUs in the process's affinity mask (its processor group only: a
 * process starts in one group, and its threads stay there unless moved). */
static size_t rs__cpus_allowed(void) {
    DWORD_PTR process_mask;
    DWORD_PTR system_mask;
    size_t count = 0;
    if (GetProcessAffinityMask(GetCurrentProcess(), &process_mask, &system_mask)) {
        while (process_mask) {
            process_mask &= process_mask - 1;
            count++;
        }
    }
    if (!count) {
        SYSTEM_INFO system;
        GetSystemInfo(&system);
        count = system.dwNumberOfProcessors;
    }
    return count;
}

RESEAU_API size_t rs_usable_cpu_count(void) {
    size_t count = rs__cpus_allowed();
    size_t limit = rs__job_cpu_limit();
    if (limit && (!count || limit < count)) {
        count = limit;
    }
    return count ? count : 1;
}

RESEAU_API int rs_mutex_init(rs_mutex_t *mutex) {
    InitializeSRWLock(rs__srwlock(mutex));
    return RS_OK;
}

RESEAU_API void rs_mutex_cleanup(rs_mutex_t *mutex) {
    /* An SRWLOCK owns no resources. */
    (void)mutex;
}

RESEAU_API void rs_mutex_lock(rs_mutex_t *mutex) {
    AcquireSRWLockExclusive(rs__srwlock(mutex));
}

RESEAU_API void rs_mutex_unlock(rs_mutex_t *mutex) {
    ReleaseSRWLockExclusive(rs__srwlock(mutex));
}

RESEAU_API int rs_condvar_init(rs_condvar_t *condvar) {
    InitializeConditionVariable(rs__condvar(condvar));
    return RS_OK;
}

RESEAU_API void rs_condvar_cleanup(rs_condvar_t *condvar) {
    /* A CONDITION_VARIABLE owns no resources. */
    (void)condvar;
}

RESEAU_API void rs_condvar_signal(rs_condvar_t *condvar) {
    WakeConditionVariable(rs__condvar(condvar));
}

RESEAU_API void rs_condvar_broadcast(rs_condvar_t *condvar) {
    WakeAllConditionVariable(rs__condvar(condvar));
}

RESEAU_API void rs_condvar_wait(rs_condvar_t *condvar, rs_mutex_t *mutex) {
    SleepConditionVariableSRW(rs__condvar(condvar), rs__srwlock(mutex), INFINITE, 0);
}

RESEAU_API int rs_condvar_wait_until(rs_condvar_t *condvar, rs_mutex_t *mutex, uint64_t deadline_ns) {
    uint64_t now = rs_clock_now_ns();
    uint64_t rel;
    DWORD ms;
    if (now >= deadline_ns) {
        return RS_ETIMEDOUT;
    }
    /* The wait takes relative milliseconds on the same monotonic source as
     * rs_clock_now_ns; rounded up, so it never ends before the deadline, and
     * capped below INFINITE. A capped or early (timer-granularity) timeout
     * reports RS_OK, a spurious wakeup the caller's loop absorbs. */
    rel = deadline_ns - now;
    rel = rel / RS_NS_PER_MS + (rel % RS_NS_PER_MS ? 1 : 0);
    ms = rel >= (uint64_t)(INFINITE - 1) ? INFINITE - 1 : (DWORD)rel;
    if (!SleepConditionVariableSRW(rs__condvar(condvar), rs__srwlock(mutex), ms, 0) &&
        GetLastError() == ERROR_TIMEOUT && rs_clock_now_ns() >= deadline_ns) {
        return RS_ETIMEDOUT;
    }
    return RS_OK;
}

typedef struct rs__once_call {
    void (*fn)(void *user_data);
    void *user_data;
} rs__once_call_t;

static BOOL CALLBACK rs__once_main(PINIT_ONCE once, PVOID param, PVOID *context) {
    rs__once_call_t *call = (rs__once_call_t *)param;
    (void)once;
    (void)context;
    call->fn(call->user_data);
    return TRUE;
}

RESEAU_API void rs_once(rs_once_t *once, void (*fn)(void *user_data), void *user_data) {
    rs__once_call_t call;
    call.fn = fn;
    call.user_data = user_data;
    /* InitOnce blocks the other callers (no spinning) until fn returns. */
    InitOnceExecuteOnce((PINIT_ONCE)(void *)&once->impl, rs__once_main, &call, NULL);
}

#endif /* RESEAU_OS_WINDOWS && !RS__NO_THREADS */
