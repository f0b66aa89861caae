/*
 * Atomics.
 *
 * The implementation must compile as C99 and as C++17, and <stdatomic.h> does
 * not exist in C++17, so reseau has its own small set of rs__atomic_*
 * functions. Public structs never use _Atomic: fields stay plain types and are
 * only touched through these functions. Loads are acquire and stores release;
 * each read-modify-write states the ordering it promises. There are two
 * implementations of the set, chosen in >>config (RS__ATOMICS_INTERLOCKED):
 *   - the GCC/Clang __atomic builtins, valid in C and C++ alike: GCC, Clang,
 *     clang-cl and mingw-w64. Each call asks for exactly the promised order.
 *   - the Windows Interlocked* functions: MSVC, and mingw-w64 with
 *     RESEAU_ATOMICS_INTERLOCKED, which is how this path is tested (under
 *     Wine; MSVC itself is not tested). Every Interlocked read-modify-write is
 *     a full barrier, at least what is promised. Plain loads and stores are
 *     volatile accesses with a fence (see rs__atomic_acquire_fence).
 *   - plain loads and stores (RS__ATOMICS_PLAIN, with RESEAU_NO_THREADS):
 *     with one thread there is nobody to order against. reseau is never
 *     called from an interrupt handler, so nothing interrupts a
 *     read-modify-write that it would need to see.
 */
#if RS__ATOMICS_INTERLOCKED && !RESEAU_OS_WINDOWS
#error "reseau: RESEAU_ATOMICS_INTERLOCKED needs Windows (the Interlocked* functions)"
#endif
#if !RS__ATOMICS_PLAIN && !RS__ATOMICS_INTERLOCKED && !defined(__GNUC__) && !defined(__clang__)
#error "reseau: atomics need the GCC/Clang __atomic builtins or, on Windows, Interlocked* (RESEAU_ATOMICS_INTERLOCKED)"
#endif

/* Catches, in debug builds, a 64-bit atomic on storage that an allocator or an
 * unmarked field left 4-byte aligned. */
static inline void rs__atomic_check_u64(const uint64_t *p) {
    RESEAU_ASSERT(((uintptr_t)(const void *)p & 7u) == 0);
    (void)p;
}

#if RS__ATOMICS_PLAIN

static inline int rs__atomic_load_int(const int *p) {
    return *p;
}

static inline void rs__atomic_store_int(int *p, int value) {
    *p = value;
}

static inline int rs__atomic_exchange_int(int *p, int value) {
    int old = *p;
    *p = value;
    return old;
}

static inline bool rs__atomic_cas_int(int *p, int expected, int desired) {
    if (*p != expected) {
        return false;
    }
    *p = desired;
    return true;
}

static inline int rs__atomic_add_int(int *p, int delta) {
    *p += delta;
    return *p;
}

static inline uint64_t rs__atomic_load_u64(const uint64_t *p) {
    rs__atomic_check_u64(p);
    return *p;
}

static inline void rs__atomic_store_u64(uint64_t *p, uint64_t value) {
    rs__atomic_check_u64(p);
    *p = value;
}

static inline uint64_t rs__atomic_add_u64(uint64_t *p, uint64_t delta) {
    uint64_t old = *p;
    rs__atomic_check_u64(p);
    *p = old + delta;
    return old;
}

static inline uint64_t rs__atomic_sub_u64(uint64_t *p, uint64_t delta) {
    rs__atomic_check_u64(p);
    *p -= delta;
    return *p;
}

static inline void *rs__atomic_load_ptr(void *const *p) {
    return *p;
}

static inline void *rs__atomic_load_ptr_relaxed(void *const *p) {
    return *p;
}

static inline void *rs__atomic_exchange_ptr(void **p, void *value) {
    void *old = *p;
    *p = value;
    return old;
}

static inline bool rs__atomic_cas_ptr_weak(void **p, void **expected, void *desired) {
    if (*p != *expected) {
        *expected = *p;
        return false;
    }
    *p = desired;
    return true;
}

static inline uintptr_t rs__atomic_load_uptr(const uintptr_t *p) {
    return *p;
}

static inline int rs__atomic_load_int_sc(const int *p) {
    return *p;
}

static inline int rs__atomic_exchange_int_sc(int *p, int value) {
    return rs__atomic_exchange_int(p, value);
}

static inline void *rs__atomic_load_ptr_sc(void *const *p) {
    return *p;
}

static inline void *rs__atomic_exchange_ptr_sc(void **p, void *value) {
    return rs__atomic_exchange_ptr(p, value);
}

static inline void rs__atomic_compiler_barrier(void) {
}

static inline void rs__atomic_store_uptr(uintptr_t *p, uintptr_t value) {
    *p = value;
}

#elif !RS__ATOMICS_INTERLOCKED

static inline int rs__atomic_load_int(const int *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void rs__atomic_store_int(int *p, int value) {
    __atomic_store_n(p, value, __ATOMIC_RELEASE);
}

/* Returns the previous value; acquire-release. */
static inline int rs__atomic_exchange_int(int *p, int value) {
    return __atomic_exchange_n(p, value, __ATOMIC_ACQ_REL);
}

/* Returns true and stores `desired` if *p was `expected`; acquire-release. */
static inline bool rs__atomic_cas_int(int *p, int expected, int desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Returns the new value; acquire-release so that, for a reference count, the
 * thread that drops the last reference sees every other owner's writes. */
static inline int rs__atomic_add_int(int *p, int delta) {
    return __atomic_add_fetch(p, delta, __ATOMIC_ACQ_REL);
}

/* uint64_t as the 64-bit atomics see it. i386 aligns uint64_t to 4 only, and on
 * a pointer to that clang emits libatomic calls (and warns), while gcc's inline
 * code assumes 8 anyway. The fields are declared RS__ALIGN8; this says so. */
typedef uint64_t rs__u64_aligned8_t __attribute__((aligned(8)));

static inline uint64_t rs__atomic_load_u64(const uint64_t *p) {
    rs__atomic_check_u64(p);
    return __atomic_load_n((const rs__u64_aligned8_t *)p, __ATOMIC_ACQUIRE);
}

static inline void rs__atomic_store_u64(uint64_t *p, uint64_t value) {
    rs__atomic_check_u64(p);
    __atomic_store_n((rs__u64_aligned8_t *)p, value, __ATOMIC_RELEASE);
}

/* Returns the previous value. Counters need atomicity, not ordering. */
static inline uint64_t rs__atomic_add_u64(uint64_t *p, uint64_t delta) {
    rs__atomic_check_u64(p);
    return __atomic_fetch_add((rs__u64_aligned8_t *)p, delta, __ATOMIC_RELAXED);
}

/* Returns the new value; acquire-release so the last owner sees every write. */
static inline uint64_t rs__atomic_sub_u64(uint64_t *p, uint64_t delta) {
    rs__atomic_check_u64(p);
    return __atomic_sub_fetch((rs__u64_aligned8_t *)p, delta, __ATOMIC_ACQ_REL);
}

static inline void *rs__atomic_load_ptr(void *const *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* No ordering: for a flag tested on a hot path, whose reader then takes an
 * ordered path to what the flag guards. */
static inline void *rs__atomic_load_ptr_relaxed(void *const *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Returns the previous value; acquire-release. */
static inline void *rs__atomic_exchange_ptr(void **p, void *value) {
    return __atomic_exchange_n(p, value, __ATOMIC_ACQ_REL);
}

/* Weak CAS for retry loops (it may fail spuriously): release on success; on
 * failure *expected receives the current value, with no ordering. */
static inline bool rs__atomic_cas_ptr_weak(void **p, void **expected, void *desired) {
    return __atomic_compare_exchange_n(p, expected, desired, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

static inline uintptr_t rs__atomic_load_uptr(const uintptr_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void rs__atomic_store_uptr(uintptr_t *p, uintptr_t value) {
    __atomic_store_n(p, value, __ATOMIC_RELEASE);
}

/* Sequentially consistent, all four: for a handshake where each of two
 * threads writes one variable and then reads the other's (the tracer's
 * in-flight flags, >>trace), which acquire and release alone do not order. */
static inline int rs__atomic_load_int_sc(const int *p) {
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static inline int rs__atomic_exchange_int_sc(int *p, int value) {
    return __atomic_exchange_n(p, value, __ATOMIC_SEQ_CST);
}

static inline void *rs__atomic_load_ptr_sc(void *const *p) {
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static inline void *rs__atomic_exchange_ptr_sc(void **p, void *value) {
    return __atomic_exchange_n(p, value, __ATOMIC_SEQ_CST);
}

/* Keeps the compiler, not the processor, from moving accesses across it
 * (a signal fence): for the side of an asymmetric barrier whose other side
 * is membarrier(2) (>>trace). */
static inline void rs__atomic_compiler_barrier(void) {
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

#else /* RS__ATOMICS_INTERLOCKED */

/* Interlocked* take LONG, which is int's size on every Windows (LLP64); the
 * int fields are passed to it as LONG. */
RS__STATIC_ASSERT(sizeof(LONG) == sizeof(int), interlocked_long_is_int);

/* x86 and x64 keep loads in order with later loads and stores, and stores in
 * order with earlier stores (TSO), so an aligned plain load is already an
 * acquire and a plain store a release: only the compiler must be kept from
 * moving other accesses across them. _ReadWriteBarrier does that, whatever
 * /volatile says (the default /volatile:ms gives the same for volatile
 * accesses on x86 and x64; /volatile:iso does not). ARM64 reorders freely,
 * so there it is a hardware barrier, MemoryBarrier (dmb). ARM64EC defines
 * _M_X64 but runs ARM64 code, hence its exclusion. */
#if defined(_M_IX86) || (defined(_M_X64) && !defined(_M_ARM64EC)) || defined(__i386__) || defined(__x86_64__)
#define RS__ATOMIC_TSO (1)
#else
#define RS__ATOMIC_TSO (0)
#endif

/* 32-bit Windows has no 64-bit load or store that cannot tear; its one 64-bit
 * atomic access is InterlockedCompareExchange64 (cmpxchg8b), so there every
 * 64-bit operation is one, loads included. RESEAU_TEST_INTERLOCKED_U64_CAS
 * takes that path on 64-bit Windows, so that tests run it under Wine. */
#if !defined(_WIN64) || defined(RESEAU_TEST_INTERLOCKED_U64_CAS)
#define RS__ATOMIC_U64_BY_CAS (1)
#else
#define RS__ATOMIC_U64_BY_CAS (0)
#endif

/* After a volatile load: later accesses stay after it. */
static inline void rs__atomic_acquire_fence(void) {
#if RS__ATOMIC_TSO
    _ReadWriteBarrier();
#else
    MemoryBarrier();
#endif
}

/* Before a volatile store: earlier accesses stay before it. */
static inline void rs__atomic_release_fence(void) {
#if RS__ATOMIC_TSO
    _ReadWriteBarrier();
#else
    MemoryBarrier();
#endif
}

/* The loads and stores below are volatile, so each is one access of the
 * field's size; aligned, such an access never tears on x86, x64 or ARM64. */

static inline int rs__atomic_load_int(const int *p) {
    int value = *(const volatile int *)p;
    rs__atomic_acquire_fence();
    return value;
}

static inline void rs__atomic_store_int(int *p, int value) {
    rs__atomic_release_fence();
    *(volatile int *)p = value;
}

static inline int rs__atomic_exchange_int(int *p, int value) {
    return (int)InterlockedExchange((volatile LONG *)p, (LONG)value);
}

static inline bool rs__atomic_cas_int(int *p, int expected, int desired) {
    return InterlockedCompareExchange((volatile LONG *)p, (LONG)desired, (LONG)expected) == (LONG)expected;
}

/* The sum is formed in unsigned arithmetic: it wraps, as the builtin does,
 * where signed overflow would be undefined. */
static inline int rs__atomic_add_int(int *p, int delta) {
    LONG old = InterlockedExchangeAdd((volatile LONG *)p, (LONG)delta);
    return (int)((unsigned)old + (unsigned)delta);
}

/* Returns the previous value; a full barrier. */
static inline uint64_t rs__atomic_cas_u64_value(const uint64_t *p, uint64_t expected, uint64_t desired) {
    return (uint64_t)InterlockedCompareExchange64((volatile LONG64 *)p, (LONG64)desired, (LONG64)expected);
}

#if RS__ATOMIC_U64_BY_CAS
/* Each starts by guessing 0, which costs no extra access: a wrong guess makes
 * the exchange fail and return the value that is there. A load "exchanges" 0
 * for 0, which writes nothing, but cmpxchg8b still needs writable memory:
 * every 64-bit atomic in reseau is a field or a static that reseau writes. */

static inline uint64_t rs__atomic_load_u64(const uint64_t *p) {
    rs__atomic_check_u64(p);
    return rs__atomic_cas_u64_value(p, 0, 0);
}

static inline void rs__atomic_store_u64(uint64_t *p, uint64_t value) {
    uint64_t seen = 0, old;
    rs__atomic_check_u64(p);
    while ((old = rs__atomic_cas_u64_value(p, seen, value)) != seen) {
        seen = old;
    }
}

static inline uint64_t rs__atomic_add_u64(uint64_t *p, uint64_t delta) {
    uint64_t seen = 0, old;
    rs__atomic_check_u64(p);
    while ((old = rs__atomic_cas_u64_value(p, seen, seen + delta)) != seen) {
        seen = old;
    }
    return old;
}

#else

static inline uint64_t rs__atomic_load_u64(const uint64_t *p) {
    uint64_t value;
    rs__atomic_check_u64(p);
    value = *(const volatile uint64_t *)p;
    rs__atomic_acquire_fence();
    return value;
}

static inline void rs__atomic_store_u64(uint64_t *p, uint64_t value) {
    rs__atomic_check_u64(p);
    rs__atomic_release_fence();
    *(volatile uint64_t *)p = value;
}

/* A delta above INT64_MAX converts to LONG64 modulo 2^64 (every Windows
 * compiler is two's complement), and the addition wraps the same way. */
static inline uint64_t rs__atomic_add_u64(uint64_t *p, uint64_t delta) {
    rs__atomic_check_u64(p);
    return (uint64_t)InterlockedExchangeAdd64((volatile LONG64 *)p, (LONG64)delta);
}

#endif /* RS__ATOMIC_U64_BY_CAS */

static inline uint64_t rs__atomic_sub_u64(uint64_t *p, uint64_t delta) {
    return rs__atomic_add_u64(p, (uint64_t)0 - delta) - delta;
}

static inline void *rs__atomic_load_ptr(void *const *p) {
    void *value = *(void *const volatile *)p;
    rs__atomic_acquire_fence();
    return value;
}

/* A pointer-sized aligned volatile load does not tear; no fence. */
static inline void *rs__atomic_load_ptr_relaxed(void *const *p) {
    return *(void *const volatile *)p;
}

static inline void *rs__atomic_exchange_ptr(void **p, void *value) {
    return InterlockedExchangePointer((void *volatile *)p, value);
}

/* Never fails spuriously; still only for retry loops, as its name says. */
static inline bool rs__atomic_cas_ptr_weak(void **p, void **expected, void *desired) {
    void *seen = InterlockedCompareExchangePointer((void *volatile *)p, desired, *expected);
    if (seen == *expected) {
        return true;
    }
    *expected = seen;
    return false;
}

/* uintptr_t is pointer-sized, so its aligned volatile access does not tear on
 * 32-bit Windows either. */
static inline uintptr_t rs__atomic_load_uptr(const uintptr_t *p) {
    uintptr_t value = *(const volatile uintptr_t *)p;
    rs__atomic_acquire_fence();
    return value;
}

static inline void rs__atomic_store_uptr(uintptr_t *p, uintptr_t value) {
    rs__atomic_release_fence();
    *(volatile uintptr_t *)p = value;
}

/* Sequentially consistent (see the GCC/Clang set). The exchanges are
 * Interlocked*, full barriers, and they are the only sequentially consistent
 * writes, so on x86 and x64 a plain load is already in their single order
 * (only a locked instruction's store could otherwise pass it); on ARM64 the
 * load is fenced on both sides. */
static inline void rs__atomic_sc_load_fence(void) {
#if RS__ATOMIC_TSO
    _ReadWriteBarrier();
#else
    MemoryBarrier();
#endif
}

static inline int rs__atomic_load_int_sc(const int *p) {
    int value;
    rs__atomic_sc_load_fence();
    value = *(const volatile int *)p;
    rs__atomic_sc_load_fence();
    return value;
}

static inline int rs__atomic_exchange_int_sc(int *p, int value) {
    return rs__atomic_exchange_int(p, value);
}

static inline void *rs__atomic_load_ptr_sc(void *const *p) {
    void *value;
    rs__atomic_sc_load_fence();
    value = *(void *const volatile *)p;
    rs__atomic_sc_load_fence();
    return value;
}

static inline void *rs__atomic_exchange_ptr_sc(void **p, void *value) {
    return rs__atomic_exchange_ptr(p, value);
}

static inline void rs__atomic_compiler_barrier(void) {
    _ReadWriteBarrier();
}

#endif /* RS__ATOMICS_INTERLOCKED */
