/* Monotonic clock. */

#if RESEAU_OS_POSIX
RESEAU_API uint64_t rs_clock_now_ns(void) {
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail with a valid pointer on any supported OS. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * RS_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}
#elif RESEAU_OS_NONE
/* Standard C's processor time is the only clock a bare-metal C library has;
 * newlib and picolibc take it from _times() or the application's retargeting,
 * so it is what the firmware makes it (a SysTick count, say). Where it is
 * unavailable, clock() returns (clock_t)-1: the time then stands still at 0,
 * and each loop should be given its own clock_fn. */
RESEAU_API uint64_t rs_clock_now_ns(void) {
    const uint64_t per_sec = (uint64_t)CLOCKS_PER_SEC;
    clock_t ticks = clock();
    uint64_t t;
    if (ticks == (clock_t)-1) {
        return 0;
    }
    t = (uint64_t)ticks;
    return t / per_sec * RS_NS_PER_SEC + t % per_sec * RS_NS_PER_SEC / per_sec;
}
#else
/* QueryPerformanceCounter ticks at a fixed frequency, read once: it cannot
 * change while the system runs. 0 until the first call; racing first calls
 * store the same value. */
static RS__ALIGN8 uint64_t rs__qpc_frequency;

RESEAU_API uint64_t rs_clock_now_ns(void) {
    LARGE_INTEGER counter;
    uint64_t freq = rs__atomic_load_u64(&rs__qpc_frequency);
    uint64_t ticks;
    if (!freq) {
        LARGE_INTEGER f;
        /* Cannot fail on Windows XP and later. */
        QueryPerformanceFrequency(&f);
        freq = (uint64_t)f.QuadPart;
        rs__atomic_store_u64(&rs__qpc_frequency, freq);
    }
    QueryPerformanceCounter(&counter);
    ticks = (uint64_t)counter.QuadPart;
    /* ticks * 1e9 would overflow after 30 minutes at a 10 MHz counter: whole
     * seconds and the remainder are converted apart. The remainder is below
     * freq, so remainder * 1e9 fits while freq < 18 GHz. */
    return ticks / freq * RS_NS_PER_SEC + ticks % freq * RS_NS_PER_SEC / freq;
}
#endif
