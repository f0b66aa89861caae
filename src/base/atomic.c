/*
 * Atomics.
 *
 * The implementation must compile as C99 and as C++17, and <stdatomic.h> does
 * not exist in C++17, so these wrap the GCC/Clang __atomic builtins, which are
 * valid in both. Public structs never use _Atomic: fields stay plain types and
 * are only touched through these functions. (MSVC would map to Interlocked*.)
 */
#if !defined(__GNUC__) && !defined(__clang__)
#error "reseau: atomics are implemented for GCC and Clang only so far (MSVC support is not implemented yet)"
#endif

static inline int rs__atomic_load_int(const int *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void rs__atomic_store_int(int *p, int value) {
    __atomic_store_n(p, value, __ATOMIC_RELEASE);
}

/* Returns true and stores `desired` if *p was `expected`. */
static inline int rs__atomic_exchange_int(int *p, int value) {
    return __atomic_exchange_n(p, value, __ATOMIC_ACQ_REL);
}

static inline bool rs__atomic_cas_int(int *p, int expected, int desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static inline uint64_t rs__atomic_load_u64(const uint64_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void rs__atomic_store_u64(uint64_t *p, uint64_t value) {
    __atomic_store_n(p, value, __ATOMIC_RELEASE);
}

/* Counters need atomicity, not ordering. */
static inline uint64_t rs__atomic_add_u64(uint64_t *p, uint64_t delta) {
    return __atomic_fetch_add(p, delta, __ATOMIC_RELAXED);
}

static inline void *rs__atomic_load_ptr(void *const *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void *rs__atomic_exchange_ptr(void **p, void *value) {
    return __atomic_exchange_n(p, value, __ATOMIC_ACQ_REL);
}

/* Weak CAS for retry loops: on failure *expected receives the current value. */
static inline bool rs__atomic_cas_ptr_weak(void **p, void **expected, void *desired) {
    return __atomic_compare_exchange_n(p, expected, desired, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

/* Returns the new value; acquire-release so the last owner sees every write. */
static inline uint64_t rs__atomic_sub_u64(uint64_t *p, uint64_t delta) {
    return __atomic_sub_fetch(p, delta, __ATOMIC_ACQ_REL);
}

static inline uintptr_t rs__atomic_load_uptr(const uintptr_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void rs__atomic_store_uptr(uintptr_t *p, uintptr_t value) {
    __atomic_store_n(p, value, __ATOMIC_RELEASE);
}
