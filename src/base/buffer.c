/* Byte cursor and byte buffer. */

RESEAU_API rs_byte_cursor_t rs_byte_cursor_from_array(const void *bytes, size_t len) {
    rs_byte_cursor_t cursor;
    cursor.ptr = (const uint8_t *)bytes;
    cursor.len = bytes ? len : 0;
    return cursor;
}

RESEAU_API rs_byte_cursor_t rs_byte_cursor_from_cstr(const char *str) {
    return rs_byte_cursor_from_array(str, str ? strlen(str) : 0);
}

RESEAU_API rs_byte_cursor_t rs_byte_cursor_from_buf(const rs_byte_buf_t *buf) {
    return rs_byte_cursor_from_array(buf->buffer, buf->len);
}

RESEAU_API rs_byte_cursor_t rs_byte_cursor_advance(rs_byte_cursor_t *cursor, size_t len) {
    rs_byte_cursor_t head;
    if (len > cursor->len) {
        head.ptr = NULL;
        head.len = 0;
        return head;
    }
    head.ptr = cursor->ptr;
    head.len = len;
    cursor->ptr = len ? cursor->ptr + len : cursor->ptr;
    cursor->len -= len;
    return head;
}

RESEAU_API bool rs_byte_cursor_eq(rs_byte_cursor_t a, rs_byte_cursor_t b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

RESEAU_API bool rs_byte_cursor_eq_cstr(rs_byte_cursor_t a, const char *str) {
    return rs_byte_cursor_eq(a, rs_byte_cursor_from_cstr(str));
}

RESEAU_API bool rs_byte_cursor_read(rs_byte_cursor_t *cursor, void *dest, size_t len) {
    if (len > cursor->len) {
        return false;
    }
    if (len) {
        memcpy(dest, cursor->ptr, len);
    }
    rs_byte_cursor_advance(cursor, len);
    return true;
}

RESEAU_API bool rs_byte_cursor_read_u8(rs_byte_cursor_t *cursor, uint8_t *out) {
    return rs_byte_cursor_read(cursor, out, 1);
}

/* Reads `width` bytes big-endian into a u64, or fails leaving the cursor alone. */
static bool rs__cursor_read_be(rs_byte_cursor_t *cursor, size_t width, uint64_t *out) {
    uint8_t bytes[8];
    size_t i;
    uint64_t value = 0;
    if (!rs_byte_cursor_read(cursor, bytes, width)) {
        return false;
    }
    for (i = 0; i < width; ++i) {
        value = (value << 8) | bytes[i];
    }
    *out = value;
    return true;
}

RESEAU_API bool rs_byte_cursor_read_be16(rs_byte_cursor_t *cursor, uint16_t *out) {
    uint64_t v;
    if (!rs__cursor_read_be(cursor, 2, &v)) {
        return false;
    }
    *out = (uint16_t)v;
    return true;
}

RESEAU_API bool rs_byte_cursor_read_be32(rs_byte_cursor_t *cursor, uint32_t *out) {
    uint64_t v;
    if (!rs__cursor_read_be(cursor, 4, &v)) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

RESEAU_API bool rs_byte_cursor_read_be64(rs_byte_cursor_t *cursor, uint64_t *out) {
    return rs__cursor_read_be(cursor, 8, out);
}

static bool rs__byte_buf_owns_memory(const rs_byte_buf_t *buf) {
    return buf->allocator.alloc_fn != NULL;
}

RESEAU_API int rs_byte_buf_init(rs_byte_buf_t *buf, const rs_allocator_t *allocator, size_t capacity) {
    memset(buf, 0, sizeof(*buf));
    buf->allocator = rs__allocator_copy(allocator);
    if (capacity) {
        buf->buffer = (uint8_t *)rs_mem_alloc(&buf->allocator, capacity);
        if (!buf->buffer) {
            memset(buf, 0, sizeof(*buf));
            return RS_ENOMEM;
        }
        buf->capacity = capacity;
    }
    return RS_OK;
}

RESEAU_API rs_byte_buf_t rs_byte_buf_from_array(void *bytes, size_t len, size_t capacity) {
    rs_byte_buf_t buf;
    memset(&buf, 0, sizeof(buf));
    buf.buffer = (uint8_t *)bytes;
    buf.capacity = capacity;
    buf.len = len <= capacity ? len : capacity;
    return buf;
}

RESEAU_API void rs_byte_buf_cleanup(rs_byte_buf_t *buf) {
    if (rs__byte_buf_owns_memory(buf)) {
        rs_mem_free(&buf->allocator, buf->buffer);
    }
    memset(buf, 0, sizeof(*buf));
}

RESEAU_API int rs_byte_buf_reserve(rs_byte_buf_t *buf, size_t capacity) {
    uint8_t *grown;
    if (capacity <= buf->capacity) {
        return RS_OK;
    }
    if (!rs__byte_buf_owns_memory(buf)) {
        return RS_EOVERFLOW;
    }
    grown = (uint8_t *)rs_mem_realloc(&buf->allocator, buf->buffer, buf->capacity, capacity);
    if (!grown) {
        return RS_ENOMEM;
    }
    buf->buffer = grown;
    buf->capacity = capacity;
    return RS_OK;
}

RESEAU_API int rs_byte_buf_append(rs_byte_buf_t *buf, const void *bytes, size_t len) {
    size_t needed;
    if (len == 0) {
        return RS_OK;
    }
    /* No object can exceed PTRDIFF_MAX; saying so also lets optimisers see
     * that the memcpy below is bounded. */
    if (len > (size_t)PTRDIFF_MAX || len > SIZE_MAX - buf->len) {
        return RS_EOVERFLOW;
    }
    needed = buf->len + len;
    if (needed > buf->capacity) {
        size_t doubled = buf->capacity > SIZE_MAX / 2 ? SIZE_MAX : buf->capacity * 2;
        int err = rs_byte_buf_reserve(buf, doubled > needed ? doubled : needed);
        if (err) {
            return err;
        }
    }
    memcpy(buf->buffer + buf->len, bytes, len);
    buf->len = needed;
    return RS_OK;
}

RESEAU_API int rs_byte_buf_append_cursor(rs_byte_buf_t *buf, rs_byte_cursor_t cursor) {
    return rs_byte_buf_append(buf, cursor.ptr, cursor.len);
}

/* Appends the low `width` bytes of value, big-endian. */
static int rs__byte_buf_append_be(rs_byte_buf_t *buf, uint64_t value, size_t width) {
    uint8_t bytes[8];
    size_t i;
    for (i = 0; i < width; ++i) {
        bytes[width - 1 - i] = (uint8_t)(value >> (8 * i));
    }
    return rs_byte_buf_append(buf, bytes, width);
}

RESEAU_API int rs_byte_buf_append_u8(rs_byte_buf_t *buf, uint8_t value) {
    return rs_byte_buf_append(buf, &value, 1);
}

RESEAU_API int rs_byte_buf_append_be16(rs_byte_buf_t *buf, uint16_t value) {
    return rs__byte_buf_append_be(buf, value, 2);
}

RESEAU_API int rs_byte_buf_append_be32(rs_byte_buf_t *buf, uint32_t value) {
    return rs__byte_buf_append_be(buf, value, 4);
}

RESEAU_API int rs_byte_buf_append_be64(rs_byte_buf_t *buf, uint64_t value) {
    return rs__byte_buf_append_be(buf, value, 8);
}

RESEAU_API void rs_byte_buf_reset(rs_byte_buf_t *buf) {
    buf->len = 0;
}
