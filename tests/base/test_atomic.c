/* The rs__atomic_* functions: what each returns and stores, 64-bit values that
 * need both halves, and atomicity under contention. The same file runs with
 * the __atomic builtins (every build) and, on Windows, with Interlocked*
 * (RESEAU_ATOMICS_INTERLOCKED, as on MSVC), also through the 32-bit Windows
 * path (RESEAU_TEST_INTERLOCKED_U64_CAS); see tests/meson.build. */
#include "test_util.h"

#include <limits.h>

/* A value whose halves differ, so a half-done 64-bit access shows. */
#define BIG UINT64_C(0x123456789abcdef0)
#define TWO_TO_32 UINT64_C(0x100000000)

/* Contention: enough rounds to interleave on 2 CPUs, few enough for Wine. */
#define THREADS 4
#define ROUNDS 20000

typedef struct counters {
    RS__ALIGN8 uint64_t u64;  /* each round adds 2^32 + 1: both halves move */
    RS__ALIGN8 uint64_t flip; /* stored 0 or all ones; never anything else */
    int added;                /* rs__atomic_add_int */
    int cas_added;            /* a CAS retry loop */
    int lock;                 /* an exchange spin lock around `guarded` */
    int guarded;
    int torn;                 /* loads of `flip` that saw a mix */
} counters_t;

RS__ASSERT_ALIGN8(counters_t, u64, test_counters_u64);
RS__ASSERT_ALIGN8(counters_t, flip, test_counters_flip);

static void atomic_build_uses_the_implementation_asked_for(void **state) {
    (void)state;
#if defined(RESEAU_ATOMICS_INTERLOCKED)
    assert_int_equal(RS__ATOMICS_INTERLOCKED, 1);
#else
    assert_int_equal(RS__ATOMICS_INTERLOCKED, 0);
#endif
#if defined(RESEAU_TEST_INTERLOCKED_U64_CAS)
    assert_int_equal(RS__ATOMIC_U64_BY_CAS, 1);
#endif
}

static void atomic_int_load_store_exchange_cas(void **state) {
    int v = 0;
    (void)state;
    rs__atomic_store_int(&v, -7);
    assert_int_equal(rs__atomic_load_int(&v), -7);

    assert_int_equal(rs__atomic_exchange_int(&v, 42), -7);
    assert_int_equal(v, 42);

    assert_true(rs__atomic_cas_int(&v, 42, INT_MIN));
    assert_int_equal(v, INT_MIN);
    assert_false(rs__atomic_cas_int(&v, 42, 5));
    assert_int_equal(v, INT_MIN);
}

static void atomic_add_int_returns_the_new_value_and_wraps(void **state) {
    int v = 10;
    (void)state;
    assert_int_equal(rs__atomic_add_int(&v, 5), 15);
    assert_int_equal(rs__atomic_add_int(&v, -20), -5);
    assert_int_equal(v, -5);
    v = INT_MAX;
    assert_int_equal(rs__atomic_add_int(&v, 1), INT_MIN);
    assert_int_equal(rs__atomic_add_int(&v, -1), INT_MAX);
}

static void atomic_u64_load_store_above_2_to_32(void **state) {
    counters_t c;
    (void)state;
    memset(&c, 0, sizeof(c));
    rs__atomic_store_u64(&c.u64, BIG);
    assert_true(rs__atomic_load_u64(&c.u64) == BIG);
    rs__atomic_store_u64(&c.u64, UINT64_MAX);
    assert_true(rs__atomic_load_u64(&c.u64) == UINT64_MAX);
    rs__atomic_store_u64(&c.u64, 0);
    assert_true(rs__atomic_load_u64(&c.u64) == 0);
}

static void atomic_add_u64_returns_the_old_value_and_carries(void **state) {
    counters_t c;
    (void)state;
    memset(&c, 0, sizeof(c));
    c.u64 = TWO_TO_32 - 1;
    assert_true(rs__atomic_add_u64(&c.u64, 1) == TWO_TO_32 - 1);
    assert_true(c.u64 == TWO_TO_32);
    assert_true(rs__atomic_add_u64(&c.u64, BIG) == TWO_TO_32);
    assert_true(c.u64 == BIG + TWO_TO_32);
    /* A delta above INT64_MAX, and a sum past UINT64_MAX, wrap. */
    c.u64 = 5;
    assert_true(rs__atomic_add_u64(&c.u64, UINT64_MAX) == 5);
    assert_true(c.u64 == 4);
}

static void atomic_sub_u64_returns_the_new_value_and_borrows(void **state) {
    counters_t c;
    (void)state;
    memset(&c, 0, sizeof(c));
    c.u64 = TWO_TO_32;
    assert_true(rs__atomic_sub_u64(&c.u64, 1) == TWO_TO_32 - 1);
    assert_true(rs__atomic_sub_u64(&c.u64, TWO_TO_32 - 1) == 0);
    assert_true(rs__atomic_sub_u64(&c.u64, 1) == UINT64_MAX);
    c.u64 = BIG;
    assert_true(rs__atomic_sub_u64(&c.u64, BIG - 1) == 1);
}

static void atomic_ptr_load_exchange_cas(void **state) {
    int a = 0, b = 0;
    void *p = &a;
    void *expected = &b;
    (void)state;
    assert_ptr_equal(rs__atomic_load_ptr(&p), &a);
    assert_ptr_equal(rs__atomic_exchange_ptr(&p, &b), &a);
    assert_ptr_equal(p, &b);

    /* Weak: a spurious failure is allowed, so retry while the value is the
     * expected one; a failure hands back the current value. */
    expected = &a;
    assert_false(rs__atomic_cas_ptr_weak(&p, &expected, NULL));
    assert_ptr_equal(expected, &b);
    assert_ptr_equal(p, &b);
    while (!rs__atomic_cas_ptr_weak(&p, &expected, NULL)) {
        assert_ptr_equal(expected, &b);
    }
    assert_null(p);
}

static void atomic_uptr_load_store(void **state) {
    uintptr_t v = 0;
    (void)state;
    rs__atomic_store_uptr(&v, UINTPTR_MAX);
    assert_true(rs__atomic_load_uptr(&v) == UINTPTR_MAX);
    rs__atomic_store_uptr(&v, 1);
    assert_true(rs__atomic_load_uptr(&v) == 1);
}

static void contend(void *arg) {
    counters_t *c = (counters_t *)arg;
    int i, seen;
    uint64_t f;
    for (i = 0; i < ROUNDS; i++) {
        rs__atomic_add_u64(&c->u64, TWO_TO_32 + 1);
        rs__atomic_add_int(&c->added, 1);
        do {
            seen = rs__atomic_load_int(&c->cas_added);
        } while (!rs__atomic_cas_int(&c->cas_added, seen, seen + 1));
        while (rs__atomic_exchange_int(&c->lock, 1) != 0) {
        }
        c->guarded++; /* plain: the lock's acquire and release order it */
        rs__atomic_store_int(&c->lock, 0);

        rs__atomic_store_u64(&c->flip, (i & 1) ? UINT64_MAX : 0);
        f = rs__atomic_load_u64(&c->flip);
        if (f != 0 && f != UINT64_MAX) {
            rs__atomic_add_int(&c->torn, 1);
        }
    }
}

static void atomic_ops_stay_atomic_under_contention(void **state) {
    counters_t c;
    rs_thread_t threads[THREADS];
    int i;
    (void)state;
    memset(&c, 0, sizeof(c));
    for (i = 0; i < THREADS; i++) {
        assert_int_equal(rs_thread_launch(&threads[i], contend, &c, NULL), RS_OK);
    }
    for (i = 0; i < THREADS; i++) {
        assert_int_equal(rs_thread_join(&threads[i]), RS_OK);
    }
    assert_true(c.u64 == (uint64_t)THREADS * ROUNDS * (TWO_TO_32 + 1));
    assert_int_equal(c.added, THREADS * ROUNDS);
    assert_int_equal(c.cas_added, THREADS * ROUNDS);
    assert_int_equal(c.guarded, THREADS * ROUNDS);
    assert_int_equal(c.torn, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(atomic_build_uses_the_implementation_asked_for),
        cmocka_unit_test(atomic_int_load_store_exchange_cas),
        cmocka_unit_test(atomic_add_int_returns_the_new_value_and_wraps),
        cmocka_unit_test(atomic_u64_load_store_above_2_to_32),
        cmocka_unit_test(atomic_add_u64_returns_the_old_value_and_carries),
        cmocka_unit_test(atomic_sub_u64_returns_the_new_value_and_borrows),
        cmocka_unit_test(atomic_ptr_load_exchange_cas),
        cmocka_unit_test(atomic_uptr_load_store),
        cmocka_unit_test(atomic_ops_stay_atomic_under_contention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
