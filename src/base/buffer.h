/*
 * Byte cursor and byte buffer.
 *
 * rs_byte_cursor_t is a non-owning view (pointer + length) that reads advance.
 * rs_byte_buf_t owns growable storage from the allocator it was initialised
 * with, or wraps caller memory (allocator-less, fixed capacity). Neither is
 * thread-safe.
 */
typedef struct rs_byte_cursor {
    const uint8_t *ptr;
    size_t len;
} rs_byte_cursor_t;

typedef struct rs_byte_buf {
    uint8_t *buffer;
    size_t len;
    size_t capacity;
    /* Copied at init; a zeroed allocator means the buffer wraps caller memory and cannot grow. */
    rs_allocator_t allocator;
} rs_byte_buf_t;

RESEAU_API rs_byte_cursor_t rs_byte_cursor_from_array(const void *bytes, size_t len);
/* View of a NUL-terminated string, without the NUL. NULL gives an empty cursor. */
RESEAU_API rs_byte_cursor_t rs_byte_cursor_from_cstr(const char *str);
/* View of the buffer's filled bytes [0, len). */
RESEAU_API rs_byte_cursor_t rs_byte_cursor_from_buf(const rs_byte_buf_t *buf);
/* Split off the first `len` bytes: returns them and advances the cursor. An empty
 * cursor (ptr NULL) if fewer than `len` remain; the cursor is then unchanged. */
RESEAU_API rs_byte_cursor_t rs_byte_cursor_advance(rs_byte_cursor_t *cursor, size_t len);
RESEAU_API bool rs_byte_cursor_eq(rs_byte_cursor_t a, rs_byte_cursor_t b);
RESEAU_API bool rs_byte_cursor_eq_cstr(rs_byte_cursor_t a, const char *str);
/* Big-endian readers: false (cursor unchanged) when too few bytes remain. */
RESEAU_API bool rs_byte_cursor_read(rs_byte_cursor_t *cursor, void *dest, size_t len);
RESEAU_API bool rs_byte_cursor_read_u8(rs_byte_cursor_t *cursor, uint8_t *out);
RESEAU_API bool rs_byte_cursor_read_be16(rs_byte_cursor_t *cursor, uint16_t *out);
RESEAU_API bool rs_byte_cursor_read_be32(rs_byte_cursor_t *cursor, uint32_t *out);
RESEAU_API bool rs_byte_cursor_read_be64(rs_byte_cursor_t *cursor, uint64_t *out);

/* Owning buffer with `capacity` bytes (0 allowed). RS_ENOMEM on failure (buf zeroed). */
RESEAU_API int rs_byte_buf_init(rs_byte_buf_t *buf, const rs_allocator_t *allocator, size_t capacity);
/* Wrap caller memory of `capacity` bytes, `len` (capped at capacity) already filled.
 * Never grows, never frees. */
RESEAU_API rs_byte_buf_t rs_byte_buf_from_array(void *bytes, size_t len, size_t capacity);
/* Free owned storage (no-op for wrapped memory) and zero the struct. Idempotent. */
RESEAU_API void rs_byte_buf_cleanup(rs_byte_buf_t *buf);
/* Ensure capacity >= `capacity`. RS_ENOMEM, or RS_EOVERFLOW for a wrapped buffer; contents kept. */
RESEAU_API int rs_byte_buf_reserve(rs_byte_buf_t *buf, size_t capacity);
/* Append bytes, growing (doubling) as needed. On error nothing is appended:
 * RS_ENOMEM, or RS_EOVERFLOW (a wrapped buffer that is full, or a size overflow). */
RESEAU_API int rs_byte_buf_append(rs_byte_buf_t *buf, const void *bytes, size_t len);
RESEAU_API int rs_byte_buf_append_cursor(rs_byte_buf_t *buf, rs_byte_cursor_t cursor);
RESEAU_API int rs_byte_buf_append_u8(rs_byte_buf_t *buf, uint8_t value);
RESEAU_API int rs_byte_buf_append_be16(rs_byte_buf_t *buf, uint16_t value);
RESEAU_API int rs_byte_buf_append_be32(rs_byte_buf_t *buf, uint32_t value);
RESEAU_API int rs_byte_buf_append_be64(rs_byte_buf_t *buf, uint64_t value);
/* Forget the contents (len = 0), keep the storage. */
RESEAU_API void rs_byte_buf_reset(rs_byte_buf_t *buf);
