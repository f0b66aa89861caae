/*
 * PEM: a line scanner, the BEGIN/END lines, strict base64 decoding straight
 * into each object's buffer, the encoder, and wiping.
 *
 * Parsing reads the input once, a line at a time. Outside an object a line is
 * text unless it starts with dashes and BEGIN or END. At a BEGIN line the
 * object's lines are scanned up to its END line (structure first: END, labels,
 * headers, truncation), counting base64 characters; then one buffer of the
 * exact decoded size is allocated and the body decoded into it. There is no
 * intermediate copy, so a private key's bytes live in one buffer only, which
 * cleanup wipes. Each object joins the list before its buffers are allocated,
 * so one cleanup path frees (and wipes) whatever an error leaves behind.
 */

/* The dashes around a boundary label: exactly five on each side (RFC 7468). */
#define RS__PEM_DASHES "-----"
#define RS__PEM_DASH_COUNT 5
/* Base64 characters per encoded line: RFC 7468 generators wrap at 64. */
#define RS__PEM_LINE_CHARS 64
/* First capacity of the object array; it doubles after that. */
#define RS__PEM_INITIAL_OBJECTS 4
/* First buffer for reading a file; it doubles up to RS_PEM_FILE_MAX + 1. */
#define RS__PEM_FILE_CHUNK 4096

RESEAU_API void rs_pem_wipe(void *ptr, size_t len) {
    /* Stores through a volatile pointer are observable, so they cannot be
     * removed as dead even right before free(). */
    volatile uint8_t *p = (volatile uint8_t *)ptr;
    size_t i;
    for (i = 0; i < len; ++i) {
        p[i] = 0;
    }
}

/* ---- labels -------------------------------------------------------------- */

typedef struct rs__pem_type_name {
    const char *label;
    rs_pem_type_t type;
} rs__pem_type_name_t;

static const rs__pem_type_name_t rs__pem_type_names[] = {
    {"CERTIFICATE", RS_PEM_CERTIFICATE},
    {"PRIVATE KEY", RS_PEM_PRIVATE_KEY},
    {"RSA PRIVATE KEY", RS_PEM_RSA_PRIVATE_KEY},
    {"EC PRIVATE KEY", RS_PEM_EC_PRIVATE_KEY},
    {"PUBLIC KEY", RS_PEM_PUBLIC_KEY},
    {"X509 CRL", RS_PEM_X509_CRL},
    {"CERTIFICATE REQUEST", RS_PEM_CERTIFICATE_REQUEST},
};

RESEAU_API rs_pem_type_t rs_pem_type_from_label(const char *label) {
    size_t i;
    if (!label) {
        return RS_PEM_OTHER;
    }
    for (i = 0; i < sizeof(rs__pem_type_names) / sizeof(rs__pem_type_names[0]); ++i) {
        if (strcmp(label, rs__pem_type_names[i].label) == 0) {
            return rs__pem_type_names[i].type;
        }
    }
    return RS_PEM_OTHER;
}

RESEAU_API bool rs_pem_label_is_private_key(const char *label) {
    return label && strstr(label, "PRIVATE KEY") != NULL;
}

/* RFC 7468: label = [ labelchar *( ["-" / SP] labelchar ) ], where a
 * labelchar is printable ASCII other than '-'. Empty is valid. */
static bool rs__pem_label_valid(const uint8_t *p, size_t len) {
    size_t i;
    for (i = 0; i < len; ++i) {
        uint8_t c = p[i];
        if (c == ' ' || c == '-') {
            if (i == 0 || i + 1 == len || p[i - 1] == ' ' || p[i - 1] == '-') {
                return false;
            }
        } else if (c < 0x21 || c > 0x7E) {
            return false;
        }
    }
    return true;
}

/* ---- lines --------------------------------------------------------------- */

/* One line, without its end and without surrounding blanks. */
typedef struct rs__pem_line {
    const uint8_t *ptr;
    size_t len;
    bool terminated; /* a CR or LF followed it (else it ends the input) */
} rs__pem_line_t;

typedef enum rs__pem_line_kind {
    RS__PEM_LINE_TEXT = 0,
    RS__PEM_LINE_BEGIN = 1,
    RS__PEM_LINE_END = 2
} rs__pem_line_kind_t;

static bool rs__pem_is_blank(uint8_t c) {
    return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

static bool rs__pem_is_space(uint8_t c) {
    return rs__pem_is_blank(c) || c == '\r' || c == '\n';
}

/* Split the next line off *rest; false at the end of the input. CR, LF and
 * CRLF all end a line (CRLF as a line and an empty one, which is harmless). */
static bool rs__pem_next_line(rs_byte_cursor_t *rest, rs__pem_line_t *line) {
    size_t n = 0;
    if (rest->len == 0) {
        return false;
    }
    while (n < rest->len && rest->ptr[n] != '\n' && rest->ptr[n] != '\r') {
        ++n;
    }
    line->ptr = rest->ptr;
    line->len = n;
    line->terminated = n < rest->len;
    rs_byte_cursor_advance(rest, line->terminated ? n + 1 : n);
    while (line->len && rs__pem_is_blank(line->ptr[0])) {
        ++line->ptr;
        --line->len;
    }
    while (line->len && rs__pem_is_blank(line->ptr[line->len - 1])) {
        --line->len;
    }
    return true;
}

static bool rs__pem_has_prefix(const uint8_t *p, size_t len, const char *prefix) {
    size_t n = strlen(prefix);
    return len >= n && memcmp(p, prefix, n) == 0;
}

/* A line that starts with five dashes, maybe more, then BEGIN or END is meant
 * as a boundary; whether it is a good one is checked later. */
static rs__pem_line_kind_t rs__pem_line_kind(const rs__pem_line_t *line) {
    size_t i = 0;
    if (!rs__pem_has_prefix(line->ptr, line->len, RS__PEM_DASHES)) {
        return RS__PEM_LINE_TEXT;
    }
    while (i < line->len && line->ptr[i] == '-') {
        ++i;
    }
    if (rs__pem_has_prefix(line->ptr + i, line->len - i, "BEGIN")) {
        return RS__PEM_LINE_BEGIN;
    }
    if (rs__pem_has_prefix(line->ptr + i, line->len - i, "END")) {
        return RS__PEM_LINE_END;
    }
    return RS__PEM_LINE_TEXT;
}

static bool rs__pem_contains_dashes(const uint8_t *p, size_t len) {
    size_t i;
    for (i = 0; i + RS__PEM_DASH_COUNT <= len; ++i) {
        if (memcmp(p + i, RS__PEM_DASHES, RS__PEM_DASH_COUNT) == 0) {
            return true;
        }
    }
    return false;
}

/* An unterminated last line (the input was cut there) that is the start of
 * a valid boundary line: a prefix of `opening` ("-----BEGIN " or "-----END "),
 * or `opening` and then no closing dashes yet. */
static bool rs__pem_is_cut_boundary(const rs__pem_line_t *line, const char *opening) {
    size_t n = strlen(opening);
    if (line->terminated) {
        return false;
    }
    if (line->len < n) {
        return memcmp(line->ptr, opening, line->len) == 0;
    }
    return memcmp(line->ptr, opening, n) == 0 && !rs__pem_contains_dashes(line->ptr + n, line->len - n);
}

/* Check that the line is exactly `opening` label "-----" (opening is
 * "-----BEGIN " or "-----END ") and point *label into it. RS_EPEM_TRUNCATED
 * for the start of such a line cut at the end of the input,
 * RS_EPEM_BAD_BOUNDARY for anything else. */
static int rs__pem_parse_boundary(const rs__pem_line_t *line, const char *opening, rs_byte_cursor_t *label) {
    size_t prefix = strlen(opening);
    const uint8_t *p = line->ptr;
    if (rs__pem_is_cut_boundary(line, opening)) {
        return RS_EPEM_TRUNCATED;
    }
    if (line->len < prefix + RS__PEM_DASH_COUNT || memcmp(p, opening, prefix) != 0 ||
        memcmp(p + line->len - RS__PEM_DASH_COUNT, RS__PEM_DASHES, RS__PEM_DASH_COUNT) != 0) {
        return RS_EPEM_BAD_BOUNDARY;
    }
    *label = rs_byte_cursor_from_array(p + prefix, line->len - prefix - RS__PEM_DASH_COUNT);
    if (!rs__pem_label_valid(label->ptr, label->len)) {
        return RS_EPEM_BAD_BOUNDARY;
    }
    return RS_OK;
}

/* ---- base64 -------------------------------------------------------------- */

static const char rs__pem_base64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of a base64 character, or -1. */
static int rs__pem_base64_value(uint8_t c) {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

/* Strictly decode the base64 in [p, p + len), blanks and line ends allowed
 * anywhere, into out (room for 3 bytes per 4 characters). Padding only ends
 * the text, at most two '=', the length a multiple of 4, unused bits zero:
 * so every byte string has exactly one accepted encoding (up to whitespace). */
static int rs__pem_base64_decode(const uint8_t *p, size_t len, uint8_t *out, size_t *out_len) {
    /* Holds key material for a moment: wiped through a volatile pointer below. */
    uint32_t quad = 0;
    volatile uint32_t *quad_wipe = &quad;
    unsigned chars = 0, pad = 0;
    size_t i, o = 0;
    bool done = false;
    int err = RS_EPEM_BAD_BASE64;
    for (i = 0; i < len; ++i) {
        int value = p[i] == '=' ? 0 : rs__pem_base64_value(p[i]);
        if (rs__pem_is_space(p[i])) {
            continue;
        }
        /* Nothing after a padded quad; '=' only as a quad's 3rd or 4th
         * character; no data after '='. */
        if (done || value < 0 || (p[i] == '=' && chars < 2) || (p[i] != '=' && pad)) {
            goto out;
        }
        pad += p[i] == '=';
        quad = quad << 6 | (uint32_t)value;
        if (++chars < 4) {
            continue;
        }
        if ((pad == 1 && (quad & 0xFFu) != 0) || (pad == 2 && (quad & 0xFFFFu) != 0)) {
            goto out; /* non-zero bits under the padding */
        }
        out[o++] = (uint8_t)(quad >> 16);
        if (pad < 2) {
            out[o++] = (uint8_t)(quad >> 8);
        }
        if (pad < 1) {
            out[o++] = (uint8_t)quad;
        }
        done = pad > 0;
        quad = 0;
        chars = 0;
    }
    if (chars == 0) {
        *out_len = o;
        err = RS_OK;
    }
out:
    *quad_wipe = 0;
    return err;
}

/* Base64 of `len` bytes into dst, which has room for 4 * ceil(len / 3). */
static size_t rs__pem_base64_encode(const uint8_t *src, size_t len, char *dst) {
    size_t i, o = 0;
    for (i = 0; i < len; i += 3) {
        size_t left = len - i;
        uint32_t v = (uint32_t)src[i] << 16 | (left > 1 ? (uint32_t)src[i + 1] << 8 : 0u) |
                     (left > 2 ? (uint32_t)src[i + 2] : 0u);
        dst[o++] = rs__pem_base64_chars[(v >> 18) & 63u];
        dst[o++] = rs__pem_base64_chars[(v >> 12) & 63u];
        dst[o++] = left > 1 ? rs__pem_base64_chars[(v >> 6) & 63u] : '=';
        dst[o++] = left > 2 ? rs__pem_base64_chars[v & 63u] : '=';
    }
    return o;
}

/* ---- the list ------------------------------------------------------------ */

static void rs__pem_list_init(rs_pem_list_t *list, const rs_allocator_t *allocator) {
    memset(list, 0, sizeof(*list));
    list->allocator = rs__allocator_copy(allocator);
}

static void rs__pem_object_cleanup(rs_pem_list_t *list, rs_pem_object_t *object) {
    if (rs_pem_label_is_private_key(object->label)) {
        rs_pem_wipe(object->data.buffer, object->data.capacity);
    }
    rs_byte_buf_cleanup(&object->data);
    rs_mem_free(&list->allocator, object->label);
    memset(object, 0, sizeof(*object));
}

RESEAU_API void rs_pem_list_cleanup(rs_pem_list_t *list) {
    size_t i;
    if (!list) {
        return;
    }
    for (i = 0; i < list->count; ++i) {
        rs__pem_object_cleanup(list, &list->objects[i]);
    }
    rs_mem_free(&list->allocator, list->objects);
    memset(list, 0, sizeof(*list));
}

/* Append a zeroed object; NULL on RS_ENOMEM. */
static rs_pem_object_t *rs__pem_list_push(rs_pem_list_t *list) {
    rs_pem_object_t *object;
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : RS__PEM_INITIAL_OBJECTS;
        rs_pem_object_t *grown;
        if (capacity > SIZE_MAX / sizeof(*grown)) {
            return NULL;
        }
        grown = (rs_pem_object_t *)rs_mem_realloc(&list->allocator, list->objects,
                                                  list->capacity * sizeof(*grown), capacity * sizeof(*grown));
        if (!grown) {
            return NULL;
        }
        list->objects = grown;
        list->capacity = capacity;
    }
    object = &list->objects[list->count++];
    memset(object, 0, sizeof(*object));
    return object;
}

/* ---- parsing ------------------------------------------------------------- */

/* Scan an object's lines, from just after its BEGIN line, up to and including
 * its END line. On success *body covers the lines between, *chars counts
 * their non-blank characters, and *rest is past the END line. */
static int rs__pem_scan_body(rs_byte_cursor_t *rest, rs_byte_cursor_t label, rs_byte_cursor_t *body,
                             size_t *chars) {
    rs__pem_line_t line;
    const uint8_t *start = rest->ptr;
    size_t count = 0, i;
    while (rs__pem_next_line(rest, &line)) {
        rs__pem_line_kind_t kind = rs__pem_line_kind(&line);
        if (kind == RS__PEM_LINE_END) {
            rs_byte_cursor_t end_label;
            int err = rs__pem_parse_boundary(&line, RS__PEM_DASHES "END ", &end_label);
            if (err) {
                return err;
            }
            if (!rs_byte_cursor_eq(label, end_label)) {
                return RS_EPEM_LABEL_MISMATCH;
            }
            *body = rs_byte_cursor_from_array(start, (size_t)(line.ptr - start));
            *chars = count;
            return RS_OK;
        }
        if (kind == RS__PEM_LINE_BEGIN) {
            return RS_EPEM_NO_END;
        }
        if (!line.terminated && line.len) {
            return RS_EPEM_TRUNCATED;
        }
        if (memchr(line.ptr, ':', line.len)) {
            return RS_EPEM_HEADERS;
        }
        for (i = 0; i < line.len; ++i) {
            count += !rs__pem_is_blank(line.ptr[i]);
        }
    }
    return RS_EPEM_NO_END;
}

/* Parse the object whose BEGIN line is `begin` into a new list entry. */
static int rs__pem_parse_object(rs_pem_list_t *list, const rs__pem_line_t *begin, rs_byte_cursor_t *rest) {
    rs_byte_cursor_t label, body;
    rs_pem_object_t *object;
    size_t chars = 0;
    int err = rs__pem_parse_boundary(begin, RS__PEM_DASHES "BEGIN ", &label);
    if (err) {
        return err;
    }
    err = rs__pem_scan_body(rest, label, &body, &chars);
    if (err) {
        return err;
    }
    object = rs__pem_list_push(list);
    if (!object) {
        return RS_ENOMEM;
    }
    /* The label first: cleanup decides from it whether to wipe the data. */
    object->label = (char *)rs_mem_alloc(&list->allocator, label.len + 1);
    if (!object->label) {
        return RS_ENOMEM;
    }
    if (label.len) {
        memcpy(object->label, label.ptr, label.len);
    }
    object->label[label.len] = '\0';
    object->type = rs_pem_type_from_label(object->label);
    err = rs_byte_buf_init(&object->data, &list->allocator, chars / 4 * 3);
    if (err) {
        return err;
    }
    return rs__pem_base64_decode(body.ptr, body.len, object->data.buffer, &object->data.len);
}

RESEAU_API int rs_pem_parse(const rs_allocator_t *allocator, rs_byte_cursor_t text, rs_pem_list_t *out) {
    rs_pem_list_t list;
    rs__pem_line_t line;
    int err = RS_OK;
    if (!out) {
        return RS_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (!text.ptr && text.len) {
        return RS_EINVAL;
    }
    rs__pem_list_init(&list, allocator);
    while (rs__pem_next_line(&text, &line)) {
        rs__pem_line_kind_t kind = rs__pem_line_kind(&line);
        if (kind == RS__PEM_LINE_END) {
            err = RS_EPEM_NO_BEGIN;
        } else if (kind == RS__PEM_LINE_BEGIN) {
            err = rs__pem_parse_object(&list, &line, &text);
        } else if (line.len >= RS__PEM_DASH_COUNT && rs__pem_is_cut_boundary(&line, RS__PEM_DASHES "BEGIN ")) {
            err = RS_EPEM_TRUNCATED;
        }
        if (err) {
            goto error;
        }
    }
    if (list.count == 0) {
        err = RS_EPEM_NO_OBJECT;
        goto error;
    }
    *out = list;
    return RS_OK;
error:
    rs_pem_list_cleanup(&list);
    return err;
}

/* ---- files --------------------------------------------------------------- */

static int rs__pem_file_error(int os_error) {
    if (os_error == EISDIR) {
        return RS_EINVAL;
    }
    return os_error ? rs_result_from_errno(os_error) : RS_EIO;
}

/* fopen failed. The Windows C runtime cannot open a directory either, but
 * says EACCES (Win32 ERROR_ACCESS_DENIED) where POSIX says EISDIR. */
static int rs__pem_open_error(const char *path, int os_error) {
#if RESEAU_OS_WINDOWS
    DWORD attributes;
    if (os_error == EACCES) {
        attributes = GetFileAttributesA(path);
        if (attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY)) {
            return RS_EINVAL;
        }
    }
#else
    (void)path;
#endif
    return rs__pem_file_error(os_error);
}

/* Double the file buffer (up to RS_PEM_FILE_MAX + 1 bytes, one more than
 * allowed, to see a file that is too large). Not realloc: the old block may
 * hold a key, so it is wiped before it is freed. */
static int rs__pem_file_grow(const rs_allocator_t *allocator, uint8_t **buf, size_t *capacity, size_t len) {
    size_t grown_capacity = *capacity ? *capacity * 2 : RS__PEM_FILE_CHUNK;
    uint8_t *grown;
    if (grown_capacity > (size_t)RS_PEM_FILE_MAX + 1) {
        grown_capacity = (size_t)RS_PEM_FILE_MAX + 1;
    }
    grown = (uint8_t *)rs_mem_alloc(allocator, grown_capacity);
    if (!grown) {
        return RS_ENOMEM;
    }
    if (len) {
        memcpy(grown, *buf, len);
    }
    rs_pem_wipe(*buf, *capacity);
    rs_mem_free(allocator, *buf);
    *buf = grown;
    *capacity = grown_capacity;
    return RS_OK;
}

/* Read all of f into *buf (capacity *capacity, *len bytes filled). */
static int rs__pem_read_all(const rs_allocator_t *allocator, FILE *f, uint8_t **buf, size_t *capacity, size_t *len) {
    for (;;) {
        size_t want, got;
        if (*len == *capacity) {
            int err;
            if (*len > (size_t)RS_PEM_FILE_MAX) {
                return RS_EPEM_TOO_LARGE;
            }
            err = rs__pem_file_grow(allocator, buf, capacity, *len);
            if (err) {
                return err;
            }
        }
        want = *capacity - *len;
        errno = 0;
        got = fread(*buf + *len, 1, want, f);
        *len += got;
        if (got < want) {
            return ferror(f) ? rs__pem_file_error(errno) : RS_OK;
        }
    }
}

RESEAU_API int rs_pem_parse_file(const rs_allocator_t *allocator, const char *path, rs_pem_list_t *out) {
    uint8_t *buf = NULL;
    size_t capacity = 0, len = 0;
    FILE *f;
    int err;
    if (!out) {
        return RS_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (!path) {
        return RS_EINVAL;
    }
    f = fopen(path, "rb");
    if (!f) {
        return rs__pem_open_error(path, errno);
    }
    err = rs__pem_read_all(allocator, f, &buf, &capacity, &len);
    fclose(f);
    if (!err) {
        err = rs_pem_parse(allocator, rs_byte_cursor_from_array(buf, len), out);
    }
    rs_pem_wipe(buf, capacity);
    rs_mem_free(allocator, buf);
    return err;
}

/* ---- encoding ------------------------------------------------------------ */

static char *rs__pem_put(char *dst, const char *s) {
    size_t n = strlen(s);
    memcpy(dst, s, n);
    return dst + n;
}

/* "-----" keyword label "-----\n" at dst. */
static char *rs__pem_put_boundary(char *dst, const char *keyword, const char *label) {
    dst = rs__pem_put(dst, RS__PEM_DASHES);
    dst = rs__pem_put(dst, keyword);
    dst = rs__pem_put(dst, label);
    dst = rs__pem_put(dst, RS__PEM_DASHES "\n");
    return dst;
}

RESEAU_API int rs_pem_encode(const rs_allocator_t *allocator, const char *label, rs_byte_cursor_t der,
                             rs_byte_buf_t *out) {
    size_t label_len, b64_len, line_count, total, i;
    char *dst;
    int err;
    if (!out) {
        return RS_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (!label || (!der.ptr && der.len)) {
        return RS_EINVAL;
    }
    label_len = strlen(label);
    if (!rs__pem_label_valid((const uint8_t *)label, label_len)) {
        return RS_EINVAL;
    }
    /* Bounded so that the sums below cannot wrap: base64 with line ends is
     * under 0.7 * SIZE_MAX, two labels under 0.25 * SIZE_MAX. */
    if (der.len > SIZE_MAX / 2 || label_len > SIZE_MAX / 8) {
        return RS_EOVERFLOW;
    }
    b64_len = (der.len / 3 + (der.len % 3 != 0)) * 4;
    line_count = b64_len / RS__PEM_LINE_CHARS + (b64_len % RS__PEM_LINE_CHARS != 0);
    /* "-----BEGIN " label "-----\n", body and line ends, "-----END " label "-----\n", NUL */
    total = 2 * RS__PEM_DASH_COUNT + strlen("BEGIN ") + label_len + 1 + b64_len + line_count +
            2 * RS__PEM_DASH_COUNT + strlen("END ") + label_len + 1 + 1;
    err = rs_byte_buf_init(out, allocator, total);
    if (err) {
        return err;
    }
    dst = rs__pem_put_boundary((char *)out->buffer, "BEGIN ", label);
    for (i = 0; i < der.len; i += RS__PEM_LINE_CHARS / 4 * 3) {
        size_t chunk = der.len - i < RS__PEM_LINE_CHARS / 4 * 3 ? der.len - i : RS__PEM_LINE_CHARS / 4 * 3;
        dst += rs__pem_base64_encode(der.ptr + i, chunk, dst);
        *dst++ = '\n';
    }
    dst = rs__pem_put_boundary(dst, "END ", label);
    *dst = '\0';
    out->len = (size_t)(dst - (char *)out->buffer);
    RESEAU_ASSERT(out->len + 1 == total);
    return RS_OK;
}
