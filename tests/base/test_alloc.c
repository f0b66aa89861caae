/* Allocator helpers: the libc default, NULL handling, calloc, realloc and its emulation. */
#include "test_util.h"

/* An allocator that hands out dirty memory (so calloc must zero it itself) and
 * records what it was asked for. Built on the leak-checking allocator. */
typedef struct recording_alloc {
    rs_allocator_t allocator;
    size_t alloc_calls;
    size_t realloc_calls;
    size_t free_calls;
    size_t last_old_size;
    size_t last_new_size;
} recording_alloc_t;

static void *recording_alloc_fn(size_t size, void *user_data) {
    recording_alloc_t *r = (recording_alloc_t *)user_data;
    void *p = rs_test_allocator.alloc_fn(size, NULL);
    ++r->alloc_calls;
    r->last_new_size = size;
    if (p) {
        memset(p, 0xAB, size);
    }
    return p;
}

static void *recording_realloc_fn(void *ptr, size_t old_size, size_t new_size, void *user_data) {
    recording_alloc_t *r = (recording_alloc_t *)user_data;
    ++r->realloc_calls;
    r->last_old_size = old_size;
    r->last_new_size = new_size;
    return rs_test_allocator.realloc_fn(ptr, old_size, new_size, NULL);
}

static void recording_free_fn(void *ptr, void *user_data) {
    recording_alloc_t *r = (recording_alloc_t *)user_data;
    ++r->free_calls;
    rs_test_allocator.free_fn(ptr, NULL);
}

static void recording_alloc_init(recording_alloc_t *r) {
    memset(r, 0, sizeof(*r));
    r->allocator.alloc_fn = recording_alloc_fn;
    r->allocator.realloc_fn = recording_realloc_fn;
    r->allocator.free_fn = recording_free_fn;
    r->allocator.user_data = r;
}

static void fill_pattern(uint8_t *p, size_t len, uint8_t seed) {
    size_t i;
    for (i = 0; i < len; ++i) {
        p[i] = (uint8_t)(seed + i * 7);
    }
}

static bool has_pattern(const uint8_t *p, size_t len, uint8_t seed) {
    size_t i;
    for (i = 0; i < len; ++i) {
        if (p[i] != (uint8_t)(seed + i * 7)) {
            return false;
        }
    }
    return true;
}

static void alloc_default_allocator_is_complete(void **state) {
    const rs_allocator_t *a = rs_default_allocator();
    (void)state;
    assert_non_null(a);
    assert_non_null(a->alloc_fn);
    assert_non_null(a->free_fn);
    assert_ptr_equal(a, rs_default_allocator());
}

static void alloc_null_allocator_uses_libc(void **state) {
    uint8_t *p;
    uint8_t *q;
    (void)state;
    p = (uint8_t *)rs_mem_alloc(NULL, 100);
    assert_non_null(p);
    fill_pattern(p, 100, 3);
    q = (uint8_t *)rs_mem_realloc(NULL, p, 100, 10000);
    assert_non_null(q);
    assert_true(has_pattern(q, 100, 3));
    q[9999] = 1;
    rs_mem_free(NULL, q);
    p = (uint8_t *)rs_mem_calloc(NULL, 10, 10);
    assert_non_null(p);
    assert_true(p[0] == 0 && p[99] == 0);
    rs_mem_free(NULL, p);
    rs_mem_free(NULL, NULL);
}

static void alloc_default_allocator_round_trips(void **state) {
    const rs_allocator_t *a = rs_default_allocator();
    uint8_t *p;
    (void)state;
    p = (uint8_t *)rs_mem_alloc(a, 33);
    assert_non_null(p);
    fill_pattern(p, 33, 9);
    p = (uint8_t *)rs_mem_realloc(a, p, 33, 65);
    assert_non_null(p);
    assert_true(has_pattern(p, 33, 9));
    rs_mem_free(a, p);
}

static void alloc_test_allocator_round_trips(void **state) {
    uint8_t *p;
    uint8_t *q;
    (void)state;
    p = (uint8_t *)rs_mem_alloc(&rs_test_allocator, 64);
    assert_non_null(p);
    fill_pattern(p, 64, 1);
    q = (uint8_t *)rs_mem_realloc(&rs_test_allocator, p, 64, 4096);
    assert_non_null(q);
    assert_true(has_pattern(q, 64, 1));
    q = (uint8_t *)rs_mem_realloc(&rs_test_allocator, q, 4096, 16);
    assert_non_null(q);
    assert_true(has_pattern(q, 16, 1));
    rs_mem_free(&rs_test_allocator, q);
}

static void alloc_size_zero_returns_null_without_calling_allocator(void **state) {
    recording_alloc_t r;
    (void)state;
    recording_alloc_init(&r);
    assert_null(rs_mem_alloc(&r.allocator, 0));
    assert_null(rs_mem_calloc(&r.allocator, 0, 16));
    assert_null(rs_mem_calloc(&r.allocator, 16, 0));
    assert_null(rs_mem_realloc(&r.allocator, NULL, 0, 0));
    assert_int_equal(r.alloc_calls, 0);
    assert_int_equal(r.realloc_calls, 0);
    assert_null(rs_mem_alloc(NULL, 0));
}

static void alloc_free_null_does_not_call_allocator(void **state) {
    recording_alloc_t r;
    (void)state;
    recording_alloc_init(&r);
    rs_mem_free(&r.allocator, NULL);
    assert_int_equal(r.free_calls, 0);
}

static void alloc_passes_user_data_and_sizes_through(void **state) {
    recording_alloc_t r;
    void *p;
    (void)state;
    recording_alloc_init(&r);
    p = rs_mem_alloc(&r.allocator, 48);
    assert_non_null(p);
    assert_int_equal(r.alloc_calls, 1);
    assert_int_equal(r.last_new_size, 48);
    p = rs_mem_realloc(&r.allocator, p, 48, 96);
    assert_non_null(p);
    assert_int_equal(r.realloc_calls, 1);
    assert_int_equal(r.last_old_size, 48);
    assert_int_equal(r.last_new_size, 96);
    rs_mem_free(&r.allocator, p);
    assert_int_equal(r.free_calls, 1);
}

static void alloc_calloc_overflow_returns_null_without_calling_allocator(void **state) {
    recording_alloc_t r;
    (void)state;
    recording_alloc_init(&r);
    assert_null(rs_mem_calloc(&r.allocator, SIZE_MAX / 2, 3));
    assert_null(rs_mem_calloc(&r.allocator, 3, SIZE_MAX / 2));
    assert_null(rs_mem_calloc(&r.allocator, SIZE_MAX, SIZE_MAX));
    assert_null(rs_mem_calloc(&r.allocator, (SIZE_MAX >> (sizeof(size_t) * 4)) + 2,
                              (SIZE_MAX >> (sizeof(size_t) * 4)) + 2));
    assert_int_equal(r.alloc_calls, 0);
    assert_int_equal(r.realloc_calls, 0);
}

static void alloc_calloc_zeroes_dirty_memory(void **state) {
    recording_alloc_t r;
    uint8_t *p;
    size_t i;
    (void)state;
    recording_alloc_init(&r);
    p = (uint8_t *)rs_mem_calloc(&r.allocator, 37, 11);
    assert_non_null(p);
    assert_int_equal(r.alloc_calls, 1);
    assert_int_equal(r.last_new_size, 37 * 11);
    for (i = 0; i < 37 * 11; ++i) {
        assert_int_equal(p[i], 0);
    }
    rs_mem_free(&r.allocator, p);
}

static void alloc_realloc_of_null_allocates(void **state) {
    recording_alloc_t r;
    void *p;
    (void)state;
    recording_alloc_init(&r);
    p = rs_mem_realloc(&r.allocator, NULL, 0, 40);
    assert_non_null(p);
    assert_int_equal(r.alloc_calls + r.realloc_calls, 1);
    rs_mem_free(&r.allocator, p);
    assert_int_equal(r.free_calls, 1);
}

static void alloc_realloc_is_emulated_when_realloc_fn_is_null(void **state) {
    recording_alloc_t r;
    uint8_t *p;
    (void)state;
    recording_alloc_init(&r);
    r.allocator.realloc_fn = NULL;
    p = (uint8_t *)rs_mem_alloc(&r.allocator, 16);
    assert_non_null(p);
    fill_pattern(p, 16, 5);

    /* Grow: the first 16 bytes survive, and the rest is writable. */
    p = (uint8_t *)rs_mem_realloc(&r.allocator, p, 16, 4096);
    assert_non_null(p);
    assert_true(has_pattern(p, 16, 5));
    assert_int_equal(r.alloc_calls, 2);
    assert_int_equal(r.free_calls, 1);
    fill_pattern(p, 4096, 6);

    /* Shrink: only new_size bytes are copied (ASan catches an over-read/write). */
    p = (uint8_t *)rs_mem_realloc(&r.allocator, p, 4096, 8);
    assert_non_null(p);
    assert_true(has_pattern(p, 8, 6));
    assert_int_equal(r.alloc_calls, 3);
    assert_int_equal(r.free_calls, 2);
    rs_mem_free(&r.allocator, p);
}

static void alloc_realloc_failure_leaves_old_block_valid(void **state) {
    rs_test_failing_alloc_t f;
    uint8_t *p;
    uint8_t *q;
    (void)state;
    rs_test_failing_alloc_init(&f, 2); /* 1: the alloc, 2: the realloc */
    p = (uint8_t *)rs_mem_alloc(&f.allocator, 32);
    assert_non_null(p);
    fill_pattern(p, 32, 11);
    q = (uint8_t *)rs_mem_realloc(&f.allocator, p, 32, 1024);
    assert_null(q);
    assert_int_equal(rs_test_failing_alloc_failures(&f), 1);
    assert_true(has_pattern(p, 32, 11));
    /* The old block is still owned by the caller and still reallocatable. */
    q = (uint8_t *)rs_mem_realloc(&f.allocator, p, 32, 1024);
    assert_non_null(q);
    assert_true(has_pattern(q, 32, 11));
    rs_mem_free(&f.allocator, q);
}

static void alloc_emulated_realloc_failure_leaves_old_block_valid(void **state) {
    rs_test_failing_alloc_t f;
    uint8_t *p;
    (void)state;
    rs_test_failing_alloc_init(&f, 2);
    f.allocator.realloc_fn = NULL;
    p = (uint8_t *)rs_mem_alloc(&f.allocator, 32);
    assert_non_null(p);
    fill_pattern(p, 32, 13);
    assert_null(rs_mem_realloc(&f.allocator, p, 32, 2048));
    assert_int_equal(f.count, 2);
    assert_true(has_pattern(p, 32, 13));
    rs_mem_free(&f.allocator, p);
}

static void alloc_failure_returns_null(void **state) {
    rs_test_failing_alloc_t f;
    (void)state;
    rs_test_failing_alloc_init(&f, 1);
    assert_null(rs_mem_alloc(&f.allocator, 10));
    rs_test_failing_alloc_init(&f, 1);
    assert_null(rs_mem_calloc(&f.allocator, 2, 10));
    assert_int_equal(f.failures, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(alloc_default_allocator_is_complete),
        cmocka_unit_test(alloc_null_allocator_uses_libc),
        cmocka_unit_test(alloc_default_allocator_round_trips),
        cmocka_unit_test(alloc_test_allocator_round_trips),
        cmocka_unit_test(alloc_size_zero_returns_null_without_calling_allocator),
        cmocka_unit_test(alloc_free_null_does_not_call_allocator),
        cmocka_unit_test(alloc_passes_user_data_and_sizes_through),
        cmocka_unit_test(alloc_calloc_overflow_returns_null_without_calling_allocator),
        cmocka_unit_test(alloc_calloc_zeroes_dirty_memory),
        cmocka_unit_test(alloc_realloc_of_null_allocates),
        cmocka_unit_test(alloc_realloc_is_emulated_when_realloc_fn_is_null),
        cmocka_unit_test(alloc_realloc_failure_leaves_old_block_valid),
        cmocka_unit_test(alloc_emulated_realloc_failure_leaves_old_block_valid),
        cmocka_unit_test(alloc_failure_returns_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
