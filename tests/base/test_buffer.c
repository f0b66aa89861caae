/* Byte cursor (non-owning view) and byte buffer (owning or wrapping storage). */
#include "test_util.h"

static bool is_zeroed(const void *p, size_t len) {
    const uint8_t *bytes = (const uint8_t *)p;
    size_t i;
    for (i = 0; i < len; ++i) {
        if (bytes[i] != 0) {
            return false;
        }
    }
    return true;
}

/* ---- cursor ------------------------------------------------------------- */

static void cursor_from_array_views_the_bytes(void **state) {
    static const uint8_t bytes[] = {1, 2, 3, 4};
    rs_byte_cursor_t c = rs_byte_cursor_from_array(bytes, sizeof(bytes));
    (void)state;
    assert_ptr_equal(c.ptr, bytes);
    assert_int_equal(c.len, 4);
}

static void cursor_from_cstr_excludes_the_nul(void **state) {
    const char *text = "hello";
    rs_byte_cursor_t c = rs_byte_cursor_from_cstr(text);
    rs_byte_cursor_t empty = rs_byte_cursor_from_cstr("");
    rs_byte_cursor_t null_cursor = rs_byte_cursor_from_cstr(NULL);
    (void)state;
    assert_ptr_equal(c.ptr, (const uint8_t *)text);
    assert_int_equal(c.len, 5);
    assert_int_equal(empty.len, 0);
    assert_int_equal(null_cursor.len, 0);
}

static void cursor_from_buf_views_the_filled_bytes(void **state) {
    rs_byte_buf_t buf;
    rs_byte_cursor_t c;
    (void)state;
    assert_int_equal(rs_byte_buf_init(&buf, &rs_test_allocator, 16), RS_OK);
    assert_int_equal(rs_byte_buf_append(&buf, "abc", 3), RS_OK);
    c = rs_byte_cursor_from_buf(&buf);
    assert_ptr_equal(c.ptr, buf.buffer);
    assert_int_equal(c.len, 3);
    assert_true(rs_byte_cursor_eq_cstr(c, "abc"));
    rs_byte_buf_cleanup(&buf);
}

static void cursor_advance_splits_off_the_front(void **state) {
    rs_byte_cursor_t c = rs_byte_cursor_from_cstr("GET /index.html");
    const uint8_t *start = c.ptr;
    rs_byte_cursor_t head;
    (void)state;
    head = rs_byte_cursor_advance(&c, 4);
    assert_ptr_equal(head.ptr, start);
    assert_int_equal(head.len, 4);
    assert_true(rs_byte_cursor_eq_cstr(head, "GET "));
    assert_ptr_equal(c.ptr, start + 4);
    assert_true(rs_byte_cursor_eq_cstr(c, "/index.html"));
    /* Advancing by everything that is left leaves an empty cursor. */
    head = rs_byte_cursor_advance(&c, 11);
    assert_true(rs_byte_cursor_eq_cstr(head, "/index.html"));
    assert_int_equal(c.len, 0);
}

static void cursor_advance_too_far_returns_empty_and_leaves_cursor(void **state) {
    rs_byte_cursor_t c = rs_byte_cursor_from_cstr("short");
    rs_byte_cursor_t before = c;
    rs_byte_cursor_t head;
    (void)state;
    head = rs_byte_cursor_advance(&c, 6);
    assert_null(head.ptr);
    assert_int_equal(head.len, 0);
    assert_ptr_equal(c.ptr, before.ptr);
    assert_int_equal(c.len, before.len);
    head = rs_byte_cursor_advance(&c, SIZE_MAX);
    assert_null(head.ptr);
    assert_int_equal(head.len, 0);
    assert_int_equal(c.len, 5);
}

static void cursor_eq_compares_contents_not_pointers(void **state) {
    char a[] = "payload";
    char b[] = "payload";
    rs_byte_cursor_t ca = rs_byte_cursor_from_cstr(a);
    rs_byte_cursor_t cb = rs_byte_cursor_from_cstr(b);
    rs_byte_cursor_t empty1 = rs_byte_cursor_from_cstr(NULL);
    rs_byte_cursor_t empty2 = rs_byte_cursor_from_array(a, 0);
    (void)state;
    assert_ptr_not_equal(ca.ptr, cb.ptr);
    assert_true(rs_byte_cursor_eq(ca, cb));
    assert_true(rs_byte_cursor_eq(ca, ca));
    assert_false(rs_byte_cursor_eq(ca, rs_byte_cursor_from_cstr("payloaD")));
    assert_false(rs_byte_cursor_eq(ca, rs_byte_cursor_from_cstr("payload!")));
    assert_false(rs_byte_cursor_eq(ca, rs_byte_cursor_from_cstr("pay")));
    assert_true(rs_byte_cursor_eq(empty1, empty2));
    assert_false(rs_byte_cursor_eq(empty1, ca));
}

static void cursor_eq_cstr_compares_whole_string(void **state) {
    rs_byte_cursor_t c = rs_byte_cursor_from_array("abcdef", 3);
    (void)state;
    assert_true(rs_byte_cursor_eq_cstr(c, "abc"));
    assert_false(rs_byte_cursor_eq_cstr(c, "abcdef"));
    assert_false(rs_byte_cursor_eq_cstr(c, "ab"));
    assert_false(rs_byte_cursor_eq_cstr(c, "abd"));
    assert_true(rs_byte_cursor_eq_cstr(rs_byte_cursor_from_cstr(NULL), ""));
    assert_false(rs_byte_cursor_eq_cstr(c, ""));
}

static void cursor_reads_big_endian_integers(void **state) {
    static const uint8_t bytes[] = {0xAB,                                           /* u8 */
                                    0x12, 0x34,                                     /* be16 */
                                    0xDE, 0xAD, 0xBE, 0xEF,                         /* be32 */
                                    0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, /* be64 */
                                    'x',  'y',  'z'};
    rs_byte_cursor_t c = rs_byte_cursor_from_array(bytes, sizeof(bytes));
    uint8_t u8 = 0;
    uint16_t u16 = 0;
    uint32_t u32 = 0;
    uint64_t u64 = 0;
    char tail[3];
    (void)state;
    assert_true(rs_byte_cursor_read_u8(&c, &u8));
    assert_int_equal(u8, 0xAB);
    assert_true(rs_byte_cursor_read_be16(&c, &u16));
    assert_int_equal(u16, 0x1234);
    assert_true(rs_byte_cursor_read_be32(&c, &u32));
    assert_int_equal(u32, 0xDEADBEEFu);
    assert_true(rs_byte_cursor_read_be64(&c, &u64));
    assert_true(u64 == UINT64_C(0x0123456789ABCDEF));
    assert_int_equal(c.len, 3);
    assert_true(rs_byte_cursor_read(&c, tail, 3));
    assert_memory_equal(tail, "xyz", 3);
    assert_int_equal(c.len, 0);
    assert_false(rs_byte_cursor_read_u8(&c, &u8));
}

static void cursor_reads_fail_on_short_input_and_leave_cursor(void **state) {
    static const uint8_t bytes[] = {1, 2, 3, 4, 5, 6, 7};
    rs_byte_cursor_t c;
    uint8_t u8 = 0x5A;
    uint16_t u16 = 0x5A5A;
    uint32_t u32 = 0x5A5A5A5Au;
    uint64_t u64 = 0x5A5A5A5A5A5A5A5Au;
    uint8_t dest[8] = {0};
    (void)state;
    c = rs_byte_cursor_from_array(bytes, 7);
    assert_false(rs_byte_cursor_read_be64(&c, &u64));
    assert_int_equal(c.len, 7);
    assert_ptr_equal(c.ptr, bytes);
    assert_true(u64 == 0x5A5A5A5A5A5A5A5Au);
    assert_false(rs_byte_cursor_read(&c, dest, 8));
    assert_int_equal(c.len, 7);
    assert_true(is_zeroed(dest, sizeof(dest)));

    c = rs_byte_cursor_from_array(bytes, 3);
    assert_false(rs_byte_cursor_read_be32(&c, &u32));
    assert_int_equal(c.len, 3);
    assert_int_equal(u32, 0x5A5A5A5Au);

    c = rs_byte_cursor_from_array(bytes, 1);
    assert_false(rs_byte_cursor_read_be16(&c, &u16));
    assert_int_equal(c.len, 1);
    assert_int_equal(u16, 0x5A5A);

    c = rs_byte_cursor_from_array(bytes, 0);
    assert_false(rs_byte_cursor_read_u8(&c, &u8));
    assert_int_equal(u8, 0x5A);
}

/* ---- owning buffer ------------------------------------------------------ */

static void buf_init_with_zero_capacity_grows_on_append(void **state) {
    rs_byte_buf_t buf;
    (void)state;
    assert_int_equal(rs_byte_buf_init(&buf, &rs_test_allocator, 0), RS_OK);
    assert_int_equal(buf.len, 0);
    assert_int_equal(rs_byte_buf_append(&buf, "x", 1), RS_OK);
    assert_int_equal(buf.len, 1);
    assert_true(buf.capacity >= 1);
    assert_int_equal(buf.buffer[0], 'x');
    rs_byte_buf_cleanup(&buf);
}

static void buf_init_allocates_requested_capacity(void **state) {
    rs_byte_buf_t buf;
    (void)state;
    assert_int_equal(rs_byte_buf_init(&buf, &rs_test_allocator, 100), RS_OK);
    assert_non_null(buf.buffer);
    assert_int_equal(buf.len, 0);
    assert_true(buf.capacity >= 100);
    /* All of it is writable (ASan / cmocka guard bytes catch an overrun). */
    memset(buf.buffer, 0x11, 100);
    rs_byte_buf_cleanup(&buf);
}

static uint8_t pattern_byte(size_t i) {
    return (uint8_t)((i * 31u + 7u) ^ (i >> 8));
}

static void buf_append_grows_through_one_mebibyte_in_odd_chunks(void **state) {
    enum { TOTAL = 1024 * 1024 };
    static const size_t chunk_sizes[] = {1, 7, 13, 251, 4093, 3, 65537};
    uint8_t *source = (uint8_t *)test_malloc(TOTAL);
    rs_byte_buf_t buf;
    size_t offset = 0;
    size_t k = 0;
    size_t i;
    (void)state;
    for (i = 0; i < TOTAL; ++i) {
        source[i] = pattern_byte(i);
    }
    assert_int_equal(rs_byte_buf_init(&buf, &rs_test_allocator, 5), RS_OK);
    while (offset < TOTAL) {
        size_t n = chunk_sizes[k++ % (sizeof(chunk_sizes) / sizeof(chunk_sizes[0]))];
        if (n > TOTAL - offset) {
            n = TOTAL - offset;
        }
        assert_int_equal(rs_byte_buf_append(&buf, source + offset, n), RS_OK);
        offset += n;
        assert_int_equal(buf.len, offset);
        assert_true(buf.capacity >= buf.len);
    }
    assert_int_equal(buf.len, TOTAL);
    assert_memory_equal(buf.buffer, source, TOTAL);
    rs_byte_buf_cleanup(&buf);
    test_free(source);
}

static void buf_append_cursor_and_u8_append_bytes(void **state) {
    rs_byte_buf_t buf;
    (void)state;
    assert_int_equal(rs_byte_buf_init(&buf, &rs_test_allocator, 2), RS_OK);
    assert_int_equal(rs_byte_buf_append_cursor(&buf, rs_byte_cursor_from_cstr("head")), RS_OK);
    assert_int_equal(rs_byte_buf_append_u8(&buf, ':'), RS_OK);
    assert_int_equal(rs_byte_buf_append_cursor(&buf, rs_byte_cursor_from_cstr(NULL)), RS_OK);
    assert_int_equal(rs_byte_buf_append(&buf, "tail", 4), RS_OK);
    assert_true(rs_byte_cursor_eq_cstr(rs_byte_cursor_from_buf(&buf), "head:tail"));
    rs_byte_buf_cleanup(&buf);
}

static void buf_reserve_grows_capacity_and_keeps_contents(void **state) {
    rs_byte_buf_t buf;
    size_t capacity;
    (void)state;
    assert_int_equal(rs_byte_buf_init(&buf, &rs_test_allocator, 4), RS_OK);
    assert_int_equal(rs_byte_buf_append(&buf, "keep", 4), RS_OK);
    assert_int_equal(rs_byte_buf_reserve(&buf, 1000), RS_OK);
    assert_true(buf.capacity >= 1000);
    assert_int_equal(buf.len, 4);
    assert_memory_equal(buf.buffer, "keep", 4);
    memset(buf.buffer + 4, 0x22, 996);
    /* A smaller reservation never shrinks. */
    capacity = buf.capacity;
    assert_int_equal(rs_byte_buf_reserve(&buf, 10), RS_OK);
    assert_int_equal(buf.capacity, capacity);
    assert_memory_equal(buf.buffer, "keep", 4);
    rs_byte_buf_cleanup(&buf);
}

static void buf_append_be_integers_round_trip_through_cursor(void **state) {
    static const uint8_t expected[] = {0x7F, 0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04,
                                       0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10};
    rs_byte_buf_t buf;
    rs_byte_cursor_t c;
    uint8_t u8 = 0;
    uint16_t u16 = 0;
    uint32_t u32 = 0;
    uint64_t u64 = 0;
    (void)state;
    assert_int_equal(rs_byte_buf_init(&buf, &rs_test_allocator, 1), RS_OK);
    assert_int_equal(rs_byte_buf_append_u8(&buf, 0x7F), RS_OK);
    assert_int_equal(rs_byte_buf_append_be16(&buf, 0xBEEF), RS_OK);
    assert_int_equal(rs_byte_buf_append_be32(&buf, 0x01020304u), RS_OK);
    assert_int_equal(rs_byte_buf_append_be64(&buf, UINT64_C(0xFEDCBA9876543210)), RS_OK);
    /* Network byte order on the wire. */
    assert_int_equal(buf.len, sizeof(expected));
    assert_memory_equal(buf.buffer, expected, sizeof(expected));
    c = rs_byte_cursor_from_buf(&buf);
    assert_true(rs_byte_cursor_read_u8(&c, &u8));
    assert_true(rs_byte_cursor_read_be16(&c, &u16));
    assert_true(rs_byte_cursor_read_be32(&c, &u32));
    assert_true(rs_byte_cursor_read_be64(&c, &u64));
    assert_int_equal(u8, 0x7F);
    assert_int_equal(u16, 0xBEEF);
    assert_int_equal(u32, 0x01020304u);
    assert_true(u64 == UINT64_C(0xFEDCBA9876543210));
    assert_int_equal(c.len, 0);
    rs_byte_buf_cleanup(&buf);
}

static void buf_reset_forgets_contents_and_keeps_storage(void **state) {
    rs_byte_buf_t buf;
    uint8_t *storage;
    size_t capacity;
    (void)state;
    assert_int_equal(rs_byte_buf_init(&buf, &rs_test_allocator, 8), RS_OK);
    assert_int_equal(rs_byte_buf_append(&buf, "12345678", 8), RS_OK);
    storage = buf.buffer;
    capacity = buf.capacity;
    rs_byte_buf_reset(&buf);
    assert_int_equal(buf.len, 0);
    assert_ptr_equal(buf.buffer, storage);
    assert_int_equal(buf.capacity, capacity);
    assert_int_equal(rs_byte_buf_append(&buf, "ab", 2), RS_OK);
    assert_true(rs_byte_cursor_eq_cstr(rs_byte_cursor_from_buf(&buf), "ab"));
    rs_byte_buf_cleanup(&buf);
}

static void buf_cleanup_is_idempotent_and_zeroes(void **state) {
    rs_byte_buf_t buf;
    (void)state;
    assert_int_equal(rs_byte_buf_init(&buf, &rs_test_allocator, 32), RS_OK);
    assert_int_equal(rs_byte_buf_append(&buf, "data", 4), RS_OK);
    rs_byte_buf_cleanup(&buf);
    assert_true(is_zeroed(&buf, sizeof(buf)));
    rs_byte_buf_cleanup(&buf);
    assert_true(is_zeroed(&buf, sizeof(buf)));
}

static void buf_null_allocator_uses_libc(void **state) {
    rs_byte_buf_t buf;
    (void)state;
    assert_int_equal(rs_byte_buf_init(&buf, NULL, 0), RS_OK);
    assert_int_equal(rs_byte_buf_append(&buf, "libc", 4), RS_OK);
    assert_int_equal(rs_byte_buf_reserve(&buf, 4096), RS_OK);
    assert_true(rs_byte_cursor_eq_cstr(rs_byte_cursor_from_buf(&buf), "libc"));
    rs_byte_buf_cleanup(&buf);
}

/* ---- wrapped caller memory --------------------------------------------- */

static void buf_from_array_appends_within_capacity(void **state) {
    uint8_t storage[8] = {'a', 'b', 0, 0, 0, 0, 0, 0};
    rs_byte_buf_t buf = rs_byte_buf_from_array(storage, 2, sizeof(storage));
    (void)state;
    assert_ptr_equal(buf.buffer, storage);
    assert_int_equal(buf.len, 2);
    assert_int_equal(buf.capacity, 8);
    assert_int_equal(rs_byte_buf_append(&buf, "cdef", 4), RS_OK);
    assert_int_equal(rs_byte_buf_append_be16(&buf, 0x6768), RS_OK); /* "gh" */
    assert_int_equal(buf.len, 8);
    assert_memory_equal(storage, "abcdefgh", 8);
}

static void buf_from_array_refuses_to_grow_and_keeps_content(void **state) {
    uint8_t storage[8];
    rs_byte_buf_t buf = rs_byte_buf_from_array(storage, 0, sizeof(storage));
    (void)state;
    assert_int_equal(rs_byte_buf_append(&buf, "12345", 5), RS_OK);
    assert_int_equal(rs_byte_buf_append(&buf, "6789", 4), RS_EOVERFLOW);
    assert_int_equal(buf.len, 5);
    assert_int_equal(buf.capacity, 8);
    assert_ptr_equal(buf.buffer, storage);
    assert_memory_equal(storage, "12345", 5);
    assert_int_equal(rs_byte_buf_append_be32(&buf, 0x01020304u), RS_EOVERFLOW);
    assert_int_equal(rs_byte_buf_append_be64(&buf, 1), RS_EOVERFLOW);
    assert_int_equal(buf.len, 5);
    assert_int_equal(rs_byte_buf_reserve(&buf, 9), RS_EOVERFLOW);
    assert_int_equal(rs_byte_buf_reserve(&buf, 8), RS_OK);
    assert_int_equal(buf.capacity, 8);
    assert_ptr_equal(buf.buffer, storage);
    assert_memory_equal(storage, "12345", 5);
    /* Exactly filling it still works. */
    assert_int_equal(rs_byte_buf_append(&buf, "678", 3), RS_OK);
    assert_memory_equal(storage, "12345678", 8);
}

static void buf_cleanup_of_wrapped_memory_does_not_free_it(void **state) {
    /* Heap storage from the leak checker: freeing it twice, or through the buffer,
     * would be reported, and so would never freeing it. */
    uint8_t *storage = (uint8_t *)test_malloc(16);
    rs_byte_buf_t buf = rs_byte_buf_from_array(storage, 0, 16);
    (void)state;
    assert_int_equal(rs_byte_buf_append(&buf, "wrapped", 7), RS_OK);
    rs_byte_buf_cleanup(&buf);
    assert_true(is_zeroed(&buf, sizeof(buf)));
    rs_byte_buf_cleanup(&buf);
    assert_memory_equal(storage, "wrapped", 7);
    test_free(storage);
}

/* ---- allocation failures ------------------------------------------------ */

static void buf_init_failure_returns_enomem_and_leaves_buf_zeroed(void **state) {
    rs_test_failing_alloc_t f;
    rs_byte_buf_t buf;
    (void)state;
    rs_test_failing_alloc_init(&f, 1);
    memset(&buf, 0xFF, sizeof(buf));
    assert_int_equal(rs_byte_buf_init(&buf, &f.allocator, 64), RS_ENOMEM);
    assert_int_equal(rs_test_failing_alloc_failures(&f), 1);
    assert_true(is_zeroed(&buf, sizeof(buf)));
    rs_byte_buf_cleanup(&buf);
}

static void buf_append_failure_leaves_content_intact(void **state) {
    rs_test_failing_alloc_t f;
    rs_byte_buf_t buf;
    uint8_t big[100];
    uint8_t *storage;
    size_t capacity;
    (void)state;
    memset(big, 0x33, sizeof(big));
    rs_test_failing_alloc_init(&f, 0);
    assert_int_equal(rs_byte_buf_init(&buf, &f.allocator, 4), RS_OK);
    assert_int_equal(rs_byte_buf_append(&buf, "abcd", 4), RS_OK);
    storage = buf.buffer;
    capacity = buf.capacity;
    f.fail_at = f.count + 1;
    assert_int_equal(rs_byte_buf_append(&buf, big, sizeof(big)), RS_ENOMEM);
    assert_int_equal(rs_test_failing_alloc_failures(&f), 1);
    assert_int_equal(buf.len, 4);
    assert_int_equal(buf.capacity, capacity);
    assert_ptr_equal(buf.buffer, storage);
    assert_memory_equal(buf.buffer, "abcd", 4);
    /* With memory back the same append works. */
    f.fail_at = 0;
    assert_int_equal(rs_byte_buf_append(&buf, big, sizeof(big)), RS_OK);
    assert_int_equal(buf.len, 4 + sizeof(big));
    assert_memory_equal(buf.buffer, "abcd", 4);
    assert_memory_equal(buf.buffer + 4, big, sizeof(big));
    rs_byte_buf_cleanup(&buf);
}

static void buf_reserve_failure_leaves_content_intact(void **state) {
    rs_test_failing_alloc_t f;
    rs_byte_buf_t buf;
    (void)state;
    rs_test_failing_alloc_init(&f, 0);
    assert_int_equal(rs_byte_buf_init(&buf, &f.allocator, 4), RS_OK);
    assert_int_equal(rs_byte_buf_append(&buf, "wxyz", 4), RS_OK);
    f.fail_at = f.count + 1;
    assert_int_equal(rs_byte_buf_reserve(&buf, 4096), RS_ENOMEM);
    assert_int_equal(buf.len, 4);
    assert_true(buf.capacity >= 4 && buf.capacity < 4096);
    assert_memory_equal(buf.buffer, "wxyz", 4);
    rs_byte_buf_cleanup(&buf);
}

static void buf_append_with_overflowing_length_fails_cleanly(void **state) {
    rs_byte_buf_t buf;
    uint8_t byte = 1;
    int rc;
    (void)state;
    assert_int_equal(rs_byte_buf_init(&buf, &rs_test_allocator, 8), RS_OK);
    assert_int_equal(rs_byte_buf_append(&buf, "ab", 2), RS_OK);
    /* len + SIZE_MAX wraps around; it must be refused before any copy. */
    rc = rs_byte_buf_append(&buf, &byte, SIZE_MAX);
    assert_true(rc == RS_EOVERFLOW || rc == RS_ENOMEM);
    assert_int_equal(buf.len, 2);
    assert_memory_equal(buf.buffer, "ab", 2);
    rc = rs_byte_buf_append(&buf, &byte, SIZE_MAX - 1);
    assert_true(rc == RS_EOVERFLOW || rc == RS_ENOMEM);
    assert_int_equal(buf.len, 2);
    /* (A SIZE_MAX reserve is not tested: cmocka's test_malloc fails the test on
     * huge sizes instead of returning NULL, and ASan aborts on them.) */
    rs_byte_buf_cleanup(&buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cursor_from_array_views_the_bytes),
        cmocka_unit_test(cursor_from_cstr_excludes_the_nul),
        cmocka_unit_test(cursor_from_buf_views_the_filled_bytes),
        cmocka_unit_test(cursor_advance_splits_off_the_front),
        cmocka_unit_test(cursor_advance_too_far_returns_empty_and_leaves_cursor),
        cmocka_unit_test(cursor_eq_compares_contents_not_pointers),
        cmocka_unit_test(cursor_eq_cstr_compares_whole_string),
        cmocka_unit_test(cursor_reads_big_endian_integers),
        cmocka_unit_test(cursor_reads_fail_on_short_input_and_leave_cursor),
        cmocka_unit_test(buf_init_with_zero_capacity_grows_on_append),
        cmocka_unit_test(buf_init_allocates_requested_capacity),
        cmocka_unit_test(buf_append_grows_through_one_mebibyte_in_odd_chunks),
        cmocka_unit_test(buf_append_cursor_and_u8_append_bytes),
        cmocka_unit_test(buf_reserve_grows_capacity_and_keeps_contents),
        cmocka_unit_test(buf_append_be_integers_round_trip_through_cursor),
        cmocka_unit_test(buf_reset_forgets_contents_and_keeps_storage),
        cmocka_unit_test(buf_cleanup_is_idempotent_and_zeroes),
        cmocka_unit_test(buf_null_allocator_uses_libc),
        cmocka_unit_test(buf_from_array_appends_within_capacity),
        cmocka_unit_test(buf_from_array_refuses_to_grow_and_keeps_content),
        cmocka_unit_test(buf_cleanup_of_wrapped_memory_does_not_free_it),
        cmocka_unit_test(buf_init_failure_returns_enomem_and_leaves_buf_zeroed),
        cmocka_unit_test(buf_append_failure_leaves_content_intact),
        cmocka_unit_test(buf_reserve_failure_leaves_content_intact),
        cmocka_unit_test(buf_append_with_overflowing_length_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
