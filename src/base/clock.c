/* Monotonic clock. */

RESEAU_API uint64_t rs_clock_now_ns(void) {
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail with a valid pointer on any supported OS. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * RS_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}
