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

/* uint64_t as the 64-bit atomics see it. i386 aligns uint64_t to 4 only, and on
 * a pointer to that clang emits libatomic calls (and warns), while gcc's inline
 * code assumes 8 anyway. The fields are declared RS__ALIGN8; this says so. */
typedef uint64_t rs__u64_aligned8_t __attribute__((aligned(8)));

/* Catches, in debug builds, a 64-bit atomic on storage that an allocator or an
 * unmarked field left 4-byte aligned. */
static inline void rs__atomic_check_u64(const uint64_t *p) {
    RESEAU_ASSERT(((uintptr_t)(const void *)p & 7u) == 0);
    (void)p;
}

static inline uint64_t rs__atomic_load_u64(const uint64_t *p) {
    rs__atomic_check_u64(p);
    return __atomic_load_n((const rs__u64_aligned8_t *)p, __ATOMIC_ACQUIRE);
}

static inline void rs__atomic_store_u64(uint64_t *p, uint64_t value) {
    rs__atomic_check_u64(p);
    __atomic_store_n((rs__u64_aligned8_t *)p, value, __ATOMIC_RELEASE);
}

/* Counters need atomicity, not ordering. */
static inline uint64_t rs__atomic_add_u64(uint64_t *p, uint64_t delta) {
    rs__atomic_check_u64(p);
    return __atomic_fetch_add((rs__u64_aligned8_t *)p, delta, __ATOMIC_RELAXED);
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
    rs__atomic_check_u64(p);
    return __atomic_sub_fetch((rs__u64_aligned8_t *)p, delta, __ATOMIC_ACQ_REL);
}

static inline uintptr_t rs__atomic_load_uptr(const uintptr_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void rs__atomic_store_uptr(uintptr_t *p, uintptr_t value) {
    __atomic_store_n(p, value, __ATOMIC_RELEASE);
}

/* Returns the new value; acquire-release so that, for a reference count, the
 * thread that drops the last reference sees every other owner's writes. */
static inline int rs__atomic_add_int(int *p, int delta) {
    return __atomic_add_fetch(p, delta, __ATOMIC_ACQ_REL);
}
