/*
 * Monotonic clock.
 *
 * All reseau timestamps are nanoseconds from an arbitrary fixed origin on a clock
 * that never goes backwards (CLOCK_MONOTONIC). Any thread.
 */
#define RS_NS_PER_MS ((uint64_t)1000000)
#define RS_NS_PER_SEC ((uint64_t)1000000000)

/* Current monotonic time in nanoseconds. Without an OS (RESEAU_OS_NONE), the
 * C library's clock(), or 0 where it has none. */
RESEAU_API uint64_t rs_clock_now_ns(void);

/* A clock source: returns the current time in ns. Used to override a loop's clock in tests. */
typedef uint64_t rs_clock_fn(void *user_data);
