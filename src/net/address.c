/*
 * Addresses: strict IPv4/IPv6 text parsers, canonical (RFC 5952) formatters,
 * and endpoint construction, formatting and comparison.
 *
 * Error convention: on any error every output (address bytes, scope id,
 * endpoint) is left zero-filled, never half-written, and a text buffer with
 * room for at least one byte holds "".
 */

/* Longest interface name accepted as an IPv6 zone, NUL included. */
#if RESEAU_OS_POSIX
#define RS__ZONE_NAME_MAX IF_NAMESIZE
#else
#define RS__ZONE_NAME_MAX 256
#endif

/* Highest IPv4/IPv6 port (16 bits on the wire). */
#define RS__IP_PORT_MAX 65535u

/* ---- character helpers --------------------------------------------------- */

static bool rs__addr_is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* The value of a hex digit in either case, or -1. */
static int rs__addr_hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* ---- IPv4 parsing -------------------------------------------------------- */

/* One octet at *p: 1-3 decimal digits, no leading zero, at most 255. */
static int rs__ipv4_parse_octet(const char **p, const char *end, uint8_t *out) {
    const char *s = *p;
    unsigned value = 0;
    size_t n = 0;
    while (s + n < end && rs__addr_is_digit(s[n]) && n < 4) {
        value = value * 10 + (unsigned)(s[n] - '0');
        ++n;
    }
    if (n == 0 || n > 3 || value > 255 || (n > 1 && s[0] == '0')) {
        return RS_EINVAL;
    }
    *out = (uint8_t)value;
    *p = s + n;
    return RS_OK;
}

/* A dotted quad filling exactly [text, end). */
static int rs__ipv4_parse_range(const char *text, const char *end, uint8_t out[4]) {
    const char *p = text;
    int i;
    for (i = 0; i < 4; ++i) {
        if (i > 0) {
            if (p == end || *p != '.') {
                return RS_EINVAL;
            }
            ++p;
        }
        if (rs__ipv4_parse_octet(&p, end, &out[i]) != RS_OK) {
            return RS_EINVAL;
        }
    }
    return p == end ? RS_OK : RS_EINVAL;
}

RESEAU_API int rs_ipv4_parse(const char *text, uint8_t out[4]) {
    uint8_t bytes[4];
    if (!out) {
        return RS_EINVAL;
    }
    memset(out, 0, 4);
    if (!text || rs__ipv4_parse_range(text, text + strlen(text), bytes) != RS_OK) {
        return RS_EINVAL;
    }
    memcpy(out, bytes, 4);
    return RS_OK;
}

/* ---- IPv6 parsing -------------------------------------------------------- */

/* The groups as written, before "::" is expanded. */
typedef struct rs__ipv6_groups {
    uint16_t group[8];
    int count; /* groups seen; an embedded dotted quad counts as two */
    int gap;   /* groups written before "::", or -1 when there is none */
} rs__ipv6_groups_t;

/* An embedded dotted quad: it fills the rest of the text and is two groups. */
static int rs__ipv6_parse_tail_ipv4(rs__ipv6_groups_t *g, const char *text, const char *end) {
    uint8_t v4[4];
    if (g->count > 6 || rs__ipv4_parse_range(text, end, v4) != RS_OK) {
        return RS_EINVAL;
    }
    g->group[g->count++] = (uint16_t)((v4[0] << 8) | v4[1]);
    g->group[g->count++] = (uint16_t)((v4[2] << 8) | v4[3]);
    return RS_OK;
}

/* One group at *p: 1-4 hex digits, or a dotted quad that ends the text. */
static int rs__ipv6_parse_group(rs__ipv6_groups_t *g, const char **p, const char *end) {
    const char *s = *p;
    unsigned value = 0;
    size_t n = 0;
    if (g->count == 8) {
        return RS_EINVAL;
    }
    while (s + n < end && rs__addr_hex_value(s[n]) >= 0) {
        value = n < 4 ? value * 16 + (unsigned)rs__addr_hex_value(s[n]) : value;
        ++n;
    }
    if (s + n < end && s[n] == '.') {
        *p = end;
        return rs__ipv6_parse_tail_ipv4(g, s, end);
    }
    if (n == 0 || n > 4) {
        return RS_EINVAL;
    }
    g->group[g->count++] = (uint16_t)value;
    *p = s + n;
    return RS_OK;
}

/* Split [p, end) into groups and note where "::" stands. A lone leading or
 * trailing ':' or a second "::" leaves an empty group, which fails. */
static int rs__ipv6_scan(rs__ipv6_groups_t *g, const char *p, const char *end) {
    g->count = 0;
    g->gap = -1;
    if (end - p >= 2 && p[0] == ':' && p[1] == ':') {
        g->gap = 0;
        p += 2;
        if (p == end) {
            return RS_OK;
        }
    }
    for (;;) {
        if (rs__ipv6_parse_group(g, &p, end) != RS_OK) {
            return RS_EINVAL;
        }
        if (p == end) {
            return RS_OK;
        }
        if (*p++ != ':') {
            return RS_EINVAL;
        }
        if (p < end && *p == ':') {
            if (g->gap >= 0) {
                return RS_EINVAL;
            }
            g->gap = g->count;
            if (++p == end) {
                return RS_OK;
            }
        }
    }
}

/* Expand "::" (one or more zero groups) and write 16 network-order bytes. */
static int rs__ipv6_expand(const rs__ipv6_groups_t *g, uint8_t out[16]) {
    uint16_t full[8];
    int head = g->gap < 0 ? g->count : g->gap;
    int tail = g->count - head;
    int i;
    if (g->gap < 0 ? g->count != 8 : g->count > 7) {
        return RS_EINVAL;
    }
    memset(full, 0, sizeof(full));
    for (i = 0; i < head; ++i) {
        full[i] = g->group[i];
    }
    for (i = 0; i < tail; ++i) {
        full[8 - tail + i] = g->group[head + i];
    }
    for (i = 0; i < 8; ++i) {
        out[2 * i] = (uint8_t)(full[i] >> 8);
        out[2 * i + 1] = (uint8_t)(full[i] & 0xff);
    }
    return RS_OK;
}

/* A decimal zone: digits only, fitting in 32 bits. */
static int rs__ipv6_zone_number(const char *zone, uint32_t *out) {
    uint64_t value = 0;
    for (; *zone; ++zone) {
        if (!rs__addr_is_digit(*zone)) {
            return RS_EINVAL;
        }
        value = value * 10 + (uint64_t)(*zone - '0');
        if (value > UINT32_MAX) {
            return RS_EINVAL;
        }
    }
    *out = (uint32_t)value;
    return RS_OK;
}

/* A zone naming an interface that exists on this host. */
static int rs__ipv6_zone_name(const char *zone, uint32_t *out) {
#if RESEAU_OS_POSIX
    unsigned index;
    if (strlen(zone) >= RS__ZONE_NAME_MAX) {
        return RS_EINVAL;
    }
    index = if_nametoindex(zone);
    if (index == 0) {
        return RS_EINVAL;
    }
    *out = (uint32_t)index;
    return RS_OK;
#else
    (void)zone;
    (void)out;
    return RS_ENOTSUP;
#endif
}

/* The text after '%': a number when it is all digits, else an interface name. */
static int rs__ipv6_parse_zone(const char *zone, uint32_t *out) {
    const char *p = zone;
    if (*zone == '\0') {
        return RS_EINVAL;
    }
    while (rs__addr_is_digit(*p)) {
        ++p;
    }
    return *p == '\0' ? rs__ipv6_zone_number(zone, out) : rs__ipv6_zone_name(zone, out);
}

RESEAU_API int rs_ipv6_parse(const char *text, uint8_t out[16], uint32_t *scope_id_out) {
    rs__ipv6_groups_t groups;
    uint8_t bytes[16];
    uint32_t scope = 0;
    const char *zone;
    int result;
    if (!out) {
        return RS_EINVAL;
    }
    memset(out, 0, 16);
    if (scope_id_out) {
        *scope_id_out = 0;
    }
    if (!text) {
        return RS_EINVAL;
    }
    zone = strchr(text, '%');
    if (zone && !scope_id_out) {
        return RS_EINVAL;
    }
    result = rs__ipv6_scan(&groups, text, zone ? zone : text + strlen(text));
    if (result == RS_OK) {
        result = rs__ipv6_expand(&groups, bytes);
    }
    if (result == RS_OK && zone) {
        result = rs__ipv6_parse_zone(zone + 1, &scope);
    }
    if (result != RS_OK) {
        return result;
    }
    memcpy(out, bytes, 16);
    if (scope_id_out) {
        *scope_id_out = scope;
    }
    return RS_OK;
}

/* ---- text building ------------------------------------------------------- */

/* A bounded scratch string; every endpoint fits in RS_ENDPOINT_TEXT_MAX. */
typedef struct rs__addr_text {
    char data[RS_ENDPOINT_TEXT_MAX];
    size_t len;
} rs__addr_text_t;

static void rs__addr_text_init(rs__addr_text_t *t) {
    t->len = 0;
    t->data[0] = '\0';
}

static void rs__addr_text_char(rs__addr_text_t *t, char c) {
    if (t->len + 1 < sizeof(t->data)) {
        t->data[t->len++] = c;
        t->data[t->len] = '\0';
    }
}

static void rs__addr_text_str(rs__addr_text_t *t, const char *s) {
    for (; *s; ++s) {
        rs__addr_text_char(t, *s);
    }
}

static void rs__addr_text_u32(rs__addr_text_t *t, uint32_t value) {
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (n > 0) {
        rs__addr_text_char(t, digits[--n]);
    }
}

/* Lowercase hex without leading zeros. */
static void rs__addr_text_hex16(rs__addr_text_t *t, unsigned value) {
    static const char hex[] = "0123456789abcdef";
    int shift;
    bool started = false;
    for (shift = 12; shift >= 0; shift -= 4) {
        unsigned nibble = (value >> shift) & 0xfu;
        if (nibble != 0 || started || shift == 0) {
            rs__addr_text_char(t, hex[nibble]);
            started = true;
        }
    }
}

/* Copy the finished text out, or RS_EOVERFLOW leaving "" when it does not fit. */
static int rs__addr_text_copy_out(const rs__addr_text_t *t, char *buf, size_t buf_len) {
    if (!buf || buf_len < t->len + 1) {
        if (buf && buf_len > 0) {
            buf[0] = '\0';
        }
        return RS_EOVERFLOW;
    }
    memcpy(buf, t->data, t->len + 1);
    return RS_OK;
}

/* ---- IPv4 / IPv6 formatting ---------------------------------------------- */

static void rs__addr_text_ipv4(rs__addr_text_t *t, const uint8_t addr[4]) {
    int i;
    for (i = 0; i < 4; ++i) {
        if (i > 0) {
            rs__addr_text_char(t, '.');
        }
        rs__addr_text_u32(t, addr[i]);
    }
}

/* The first longest run of two or more zero groups; *len is 0 without one. */
static void rs__ipv6_zero_run(const uint16_t group[8], int *start, int *len) {
    int i = 0;
    *start = -1;
    *len = 0;
    while (i < 8) {
        int j = i;
        while (j < 8 && group[j] == 0) {
            ++j;
        }
        if (j - i >= 2 && j - i > *len) {
            *start = i;
            *len = j - i;
        }
        i = j > i ? j : i + 1;
    }
}

/* ::ffff:0:0/96 (RFC 4291 section 2.5.5.2). */
static bool rs__ipv6_is_v4_mapped(const uint8_t addr[16]) {
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(addr, prefix, sizeof(prefix)) == 0;
}

static void rs__addr_text_ipv6(rs__addr_text_t *t, const uint8_t addr[16]) {
    uint16_t group[8];
    int i, run_start, run_len;
    if (rs__ipv6_is_v4_mapped(addr)) {
        rs__addr_text_str(t, "::ffff:");
        rs__addr_text_ipv4(t, addr + 12);
        return;
    }
    for (i = 0; i < 8; ++i) {
        group[i] = (uint16_t)((addr[2 * i] << 8) | addr[2 * i + 1]);
    }
    rs__ipv6_zero_run(group, &run_start, &run_len);
    for (i = 0; i < 8; ++i) {
        if (i == run_start) {
            rs__addr_text_str(t, "::");
            i += run_len - 1;
            continue;
        }
        if (i > 0 && i != run_start + run_len) {
            rs__addr_text_char(t, ':');
        }
        rs__addr_text_hex16(t, group[i]);
    }
}

RESEAU_API int rs_ipv4_format(const uint8_t addr[4], char *buf, size_t buf_len) {
    rs__addr_text_t text;
    if (!addr || (!buf && buf_len > 0)) {
        return RS_EINVAL;
    }
    rs__addr_text_init(&text);
    rs__addr_text_ipv4(&text, addr);
    return rs__addr_text_copy_out(&text, buf, buf_len);
}

RESEAU_API int rs_ipv6_format(const uint8_t addr[16], char *buf, size_t buf_len) {
    rs__addr_text_t text;
    if (!addr || (!buf && buf_len > 0)) {
        return RS_EINVAL;
    }
    rs__addr_text_init(&text);
    rs__addr_text_ipv6(&text, addr);
    return rs__addr_text_copy_out(&text, buf, buf_len);
}

/* ---- endpoints ----------------------------------------------------------- */

RESEAU_API int rs_endpoint_from_ip(rs_endpoint_t *out, const char *text, uint32_t port) {
    int result;
    if (!out) {
        return RS_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (!text || port > RS__IP_PORT_MAX) {
        return RS_EINVAL;
    }
    if (strchr(text, ':')) {
        out->domain = RS_SOCKET_DOMAIN_IPV6;
        result = rs_ipv6_parse(text, out->addr, &out->scope_id);
    } else {
        out->domain = RS_SOCKET_DOMAIN_IPV4;
        result = rs_ipv4_parse(text, out->addr);
    }
    if (result != RS_OK) {
        memset(out, 0, sizeof(*out));
        return result;
    }
    out->port = port;
    return RS_OK;
}

/* A Linux abstract name is "@name" with a non-empty name. */
RESEAU_API int rs_endpoint_from_local(rs_endpoint_t *out, const char *path) {
    size_t len;
    if (!out) {
        return RS_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (!path) {
        return RS_EINVAL;
    }
    len = strlen(path);
    if (len == 0 || len > RS_LOCAL_PATH_MAX || (path[0] == '@' && len == 1)) {
        return RS_EINVAL;
    }
    if (path[0] == '@' && !RS__HAVE_ABSTRACT_UNIX) {
        return RS_ENOTSUP;
    }
    out->domain = RS_SOCKET_DOMAIN_LOCAL;
    memcpy(out->path, path, len + 1);
    return RS_OK;
}

RESEAU_API int rs_endpoint_from_vsock(rs_endpoint_t *out, uint32_t cid, uint32_t port) {
    if (!out) {
        return RS_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (!RS__HAVE_VSOCK) {
        return RS_ENOTSUP;
    }
    out->domain = RS_SOCKET_DOMAIN_VSOCK;
    out->vsock_cid = cid;
    out->port = port;
    return RS_OK;
}

/* The path up to its NUL, never past the end of the field. */
static void rs__addr_text_path(rs__addr_text_t *t, const char *path) {
    size_t i;
    for (i = 0; i <= RS_LOCAL_PATH_MAX && path[i]; ++i) {
        rs__addr_text_char(t, path[i]);
    }
}

static int rs__addr_text_endpoint(rs__addr_text_t *t, const rs_endpoint_t *e) {
    switch (e->domain) {
    case RS_SOCKET_DOMAIN_IPV4:
        rs__addr_text_ipv4(t, e->addr);
        break;
    case RS_SOCKET_DOMAIN_IPV6:
        rs__addr_text_char(t, '[');
        rs__addr_text_ipv6(t, e->addr);
        if (e->scope_id != 0) {
            rs__addr_text_char(t, '%');
            rs__addr_text_u32(t, e->scope_id);
        }
        rs__addr_text_char(t, ']');
        break;
    case RS_SOCKET_DOMAIN_LOCAL:
        rs__addr_text_path(t, e->path);
        return RS_OK;
    case RS_SOCKET_DOMAIN_VSOCK:
        rs__addr_text_str(t, "vsock:");
        rs__addr_text_u32(t, e->vsock_cid);
        break;
    default:
        return RS_EINVAL;
    }
    rs__addr_text_char(t, ':');
    rs__addr_text_u32(t, e->port);
    return RS_OK;
}

RESEAU_API int rs_endpoint_format(const rs_endpoint_t *endpoint, char *buf, size_t buf_len) {
    rs__addr_text_t text;
    if (!buf && buf_len > 0) {
        return RS_EINVAL;
    }
    rs__addr_text_init(&text);
    if (!endpoint || rs__addr_text_endpoint(&text, endpoint) != RS_OK) {
        if (buf_len > 0) {
            buf[0] = '\0';
        }
        return RS_EINVAL;
    }
    return rs__addr_text_copy_out(&text, buf, buf_len);
}

/* Compares only the fields that matter for the domain. */
RESEAU_API bool rs_endpoint_equal(const rs_endpoint_t *a, const rs_endpoint_t *b) {
    if (a == b) {
        return true;
    }
    if (!a || !b || a->domain != b->domain) {
        return false;
    }
    switch (a->domain) {
    case RS_SOCKET_DOMAIN_IPV4:
        return a->port == b->port && memcmp(a->addr, b->addr, 4) == 0;
    case RS_SOCKET_DOMAIN_IPV6:
        return a->port == b->port && a->scope_id == b->scope_id && memcmp(a->addr, b->addr, 16) == 0;
    case RS_SOCKET_DOMAIN_LOCAL:
        return strncmp(a->path, b->path, sizeof(a->path)) == 0;
    case RS_SOCKET_DOMAIN_VSOCK:
        return a->port == b->port && a->vsock_cid == b->vsock_cid;
    default:
        return false;
    }
}

/* Decimal digits only, no sign, at most `max`. */
static bool rs__parse_decimal(const char *text, uint32_t max, uint32_t *out) {
    uint64_t value = 0;
    if (!*text) {
        return false;
    }
    for (; *text; ++text) {
        if (*text < '0' || *text > '9') {
            return false;
        }
        value = value * 10 + (uint64_t)(*text - '0');
        if (value > max) {
            return false;
        }
    }
    *out = (uint32_t)value;
    return true;
}

/* "[v6]:port" or "v4:port": split at the port's colon into host and port. */
static int rs__endpoint_parse_ip(rs_endpoint_t *out, const char *text) {
    char host[RS_ENDPOINT_TEXT_MAX];
    const char *colon;
    size_t host_len;
    uint32_t port;
    bool bracketed = text[0] == '[';
    if (bracketed) {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':') {
            return RS_EINVAL;
        }
        colon = close + 1;
        ++text;
        host_len = (size_t)(close - text);
    } else {
        colon = strchr(text, ':');
        if (!colon || strchr(colon + 1, ':')) {
            return RS_EINVAL; /* no port, or an IPv6 address without brackets */
        }
        host_len = (size_t)(colon - text);
    }
    if (host_len == 0 || host_len >= sizeof(host) || !rs__parse_decimal(colon + 1, RS__IP_PORT_MAX, &port)) {
        return RS_EINVAL;
    }
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    if (bracketed != (strchr(host, ':') != NULL)) {
        return RS_EINVAL; /* brackets around IPv4, or IPv6 without them */
    }
    return rs_endpoint_from_ip(out, host, port);
}

static int rs__endpoint_parse_vsock(rs_endpoint_t *out, const char *text) {
    char cid_text[16];
    const char *colon = strchr(text, ':');
    uint32_t cid, port;
    size_t n = colon ? (size_t)(colon - text) : 0;
    if (!colon || n == 0 || n >= sizeof(cid_text)) {
        return RS_EINVAL;
    }
    memcpy(cid_text, text, n);
    cid_text[n] = '\0';
    if (!rs__parse_decimal(cid_text, UINT32_MAX, &cid) || !rs__parse_decimal(colon + 1, UINT32_MAX, &port)) {
        return RS_EINVAL;
    }
    return rs_endpoint_from_vsock(out, cid, port);
}

RESEAU_API int rs_endpoint_parse(rs_endpoint_t *out, const char *text) {
    int err;
    if (!out) {
        return RS_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (!text || !*text) {
        return RS_EINVAL;
    }
    if (text[0] == '/' || text[0] == '@') {
        return rs_endpoint_from_local(out, text);
    }
    if (strncmp(text, "vsock:", 6) == 0) {
        err = rs__endpoint_parse_vsock(out, text + 6);
    } else {
        err = rs__endpoint_parse_ip(out, text);
    }
    if (err) {
        memset(out, 0, sizeof(*out));
    }
    return err;
}
