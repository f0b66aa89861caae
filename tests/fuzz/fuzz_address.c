/*
 * libFuzzer harness for the address parsers and formatters (src/net/address.c).
 *
 * Every input is tried as text by each public parser, and its leading bytes as
 * raw addresses and endpoints by the formatters. Beyond "no crash", it checks:
 *   - a failed parse or construction leaves its outputs zero-filled;
 *   - IPv4 and IPv6 parsing agree with inet_pton, which is as strict (no
 *     leading zeros in octets, "::" standing for at least one group);
 *   - a parsed IPv4 text formats back to itself: the strict grammar has one
 *     spelling per address;
 *   - parse(format(x)) == x for raw IPv4 and IPv6 bytes and for endpoints, and
 *     IPv6 formatting matches inet_ntop (RFC 5952) where both use hex groups;
 *   - a buffer one byte short gets RS_EOVERFLOW and "".
 *
 * Built and run by .ci/run (step "fuzz"), seeds in tests/fuzz/corpus/address/:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *         -I. tests/fuzz/fuzz_address.c -o fuzz_address
 *   ./fuzz_address -max_total_time=60 CORPUS_COPY_DIR
 */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Unlike assert(), kept under NDEBUG; the abort makes libFuzzer save the input. */
#define CHECK(cond) ((cond) ? (void)0 : check_failed(#cond, __LINE__))

static void check_failed(const char *what, int line) {
    fprintf(stderr, "fuzz_address.c:%d: check failed: %s\n", line, what);
    abort();
}

/* An endpoint is the largest output checked for zero-fill. */
static const uint8_t zeros[sizeof(rs_endpoint_t)];

static bool is_zeroed(const void *p, size_t len) {
    CHECK(len <= sizeof(zeros));
    return memcmp(p, zeros, len) == 0;
}

/* ---- formatting helpers -------------------------------------------------- */

typedef int format_fn(const void *what, char *buf, size_t buf_len);

static int format_v4(const void *what, char *buf, size_t buf_len) {
    return rs_ipv4_format((const uint8_t *)what, buf, buf_len);
}

static int format_v6(const void *what, char *buf, size_t buf_len) {
    return rs_ipv6_format((const uint8_t *)what, buf, buf_len);
}

static int format_endpoint(const void *what, char *buf, size_t buf_len) {
    return rs_endpoint_format((const rs_endpoint_t *)what, buf, buf_len);
}

/* Format into text (RS_ENDPOINT_TEXT_MAX bytes), and check that one byte less
 * is RS_EOVERFLOW with "" and that no buffer at all is RS_EOVERFLOW. The short
 * buffer is on the heap at its exact size, so ASan sees a write past it. */
static void format_checked(format_fn *fn, const void *what, char *text) {
    char *short_buf;
    size_t len;
    CHECK(fn(what, text, RS_ENDPOINT_TEXT_MAX) == RS_OK);
    len = strlen(text);
    CHECK(len > 0 && len < RS_ENDPOINT_TEXT_MAX);
    short_buf = (char *)malloc(len);
    CHECK(short_buf != NULL);
    memset(short_buf, 'x', len);
    CHECK(fn(what, short_buf, len) == RS_EOVERFLOW);
    CHECK(short_buf[0] == '\0');
    free(short_buf);
    CHECK(fn(what, NULL, 0) == RS_EOVERFLOW);
}

/* ---- endpoint text back to an endpoint ----------------------------------- */

/* Parse what rs_endpoint_format writes for IP endpoints: "a.b.c.d:port" or
 * "[v6%zone]:port". reseau has no public parser for it; this one is just
 * strict enough for the round trip. */
static int endpoint_from_text(rs_endpoint_t *out, const char *text) {
    char host[RS_ENDPOINT_TEXT_MAX];
    const char *colon = strrchr(text, ':');
    const char *start = text;
    size_t host_len;
    char *end;
    unsigned long port;
    if (!colon || colon[1] == '\0') {
        return RS_EINVAL;
    }
    port = strtoul(colon + 1, &end, 10);
    if (*end != '\0') {
        return RS_EINVAL;
    }
    host_len = (size_t)(colon - text);
    if (text[0] == '[') {
        if (host_len < 2 || colon[-1] != ']') {
            return RS_EINVAL;
        }
        start = text + 1;
        host_len -= 2;
    }
    if (host_len >= sizeof(host)) {
        return RS_EINVAL;
    }
    memcpy(host, start, host_len);
    host[host_len] = '\0';
    return rs_endpoint_from_ip(out, host, (uint32_t)port);
}

/* An IP endpoint survives format then parse, field for field. */
static void check_endpoint_round_trip(const rs_endpoint_t *e) {
    char text[RS_ENDPOINT_TEXT_MAX];
    rs_endpoint_t back;
    format_checked(format_endpoint, e, text);
    CHECK(endpoint_from_text(&back, text) == RS_OK);
    CHECK(rs_endpoint_equal(e, &back));
    CHECK(rs_endpoint_equal(&back, e));
    CHECK(memcmp(e, &back, sizeof(back)) == 0);
}

/* ---- text inputs --------------------------------------------------------- */

static void check_ipv4_text(const char *text) {
    uint8_t got[4], want[4];
    char again[RS_ENDPOINT_TEXT_MAX];
    int result;
    memset(got, 0xAA, sizeof(got));
    result = rs_ipv4_parse(text, got);
    CHECK(result == RS_OK || result == RS_EINVAL);
    CHECK((result == RS_OK) == (inet_pton(AF_INET, text, want) == 1));
    if (result != RS_OK) {
        CHECK(is_zeroed(got, sizeof(got)));
        return;
    }
    CHECK(memcmp(got, want, 4) == 0);
    format_checked(format_v4, got, again);
    CHECK(strcmp(again, text) == 0);
}

/* The address part, before any '%', as inet_pton sees it. */
static bool ipv6_libc_parse(const char *text, uint8_t out[16]) {
    char addr[RS_ENDPOINT_TEXT_MAX];
    size_t len = strcspn(text, "%");
    if (len >= sizeof(addr)) {
        return false;
    }
    memcpy(addr, text, len);
    addr[len] = '\0';
    return inet_pton(AF_INET6, addr, out) == 1;
}

/* After a successful parse: the canonical text parses to the same bytes, and
 * formatting it again changes nothing. */
static void check_ipv6_canonical(const uint8_t addr[16]) {
    char text[RS_ENDPOINT_TEXT_MAX], again[RS_ENDPOINT_TEXT_MAX];
    uint8_t back[16];
    format_checked(format_v6, addr, text);
    CHECK(strlen(text) <= 45); /* the header promises 46 bytes suffice */
    CHECK(rs_ipv6_parse(text, back, NULL) == RS_OK);
    CHECK(memcmp(addr, back, 16) == 0);
    format_checked(format_v6, back, again);
    CHECK(strcmp(text, again) == 0);
}

static void check_ipv6_text(const char *text) {
    uint8_t got[16], want[16];
    uint32_t scope = 0xAAAAAAAAu;
    const char *zone = strchr(text, '%');
    bool libc_ok = ipv6_libc_parse(text, want);
    int result;

    /* Without a scope pointer, any zone is refused. */
    memset(got, 0xAA, sizeof(got));
    result = rs_ipv6_parse(text, got, NULL);
    CHECK(result == RS_OK || result == RS_EINVAL);
    CHECK((result == RS_OK) == (libc_ok && !zone));
    CHECK(result == RS_OK ? memcmp(got, want, 16) == 0 : is_zeroed(got, 16));

    /* With one, the zone is a number or an interface name. */
    memset(got, 0xAA, sizeof(got));
    result = rs_ipv6_parse(text, got, &scope);
    CHECK(result == RS_OK || result == RS_EINVAL);
    if (result != RS_OK) {
        CHECK(is_zeroed(got, 16) && scope == 0);
        CHECK(zone || !libc_ok); /* only a bad zone may fail a good address */
        return;
    }
    CHECK(libc_ok && memcmp(got, want, 16) == 0);
    if (!zone) {
        CHECK(scope == 0);
    } else if (zone[1] >= '0' && zone[1] <= '9' && zone[strspn(zone + 1, "0123456789") + 1] == '\0') {
        CHECK(scope == (uint32_t)strtoul(zone + 1, NULL, 10));
    } else {
        CHECK(scope == (uint32_t)if_nametoindex(zone + 1));
    }
    check_ipv6_canonical(got);
}

static void check_endpoint_text(const char *text, uint32_t port) {
    rs_endpoint_t e;
    int result;
    memset(&e, 0xAA, sizeof(e));
    result = rs_endpoint_from_ip(&e, text, port + 65536u); /* ports are 16 bits */
    CHECK(result == RS_EINVAL && is_zeroed(&e, sizeof(e)));

    memset(&e, 0xAA, sizeof(e));
    result = rs_endpoint_from_ip(&e, text, port);
    CHECK(result == RS_OK || result == RS_EINVAL);
    if (result != RS_OK) {
        CHECK(is_zeroed(&e, sizeof(e)));
        return;
    }
    CHECK(e.port == port);
    CHECK(e.domain == (strchr(text, ':') ? RS_SOCKET_DOMAIN_IPV6 : RS_SOCKET_DOMAIN_IPV4));
    check_endpoint_round_trip(&e);
}

static void check_local_text(const char *text) {
    rs_endpoint_t e;
    char again[RS_ENDPOINT_TEXT_MAX];
    size_t len = strlen(text);
    bool valid = len > 0 && len <= RS_LOCAL_PATH_MAX && strcmp(text, "@") != 0;
    int result;
    memset(&e, 0xAA, sizeof(e));
    result = rs_endpoint_from_local(&e, text);
    CHECK(result == (valid ? RS_OK : RS_EINVAL));
    if (result != RS_OK) {
        CHECK(is_zeroed(&e, sizeof(e)));
        return;
    }
    CHECK(e.domain == RS_SOCKET_DOMAIN_LOCAL);
    format_checked(format_endpoint, &e, again);
    CHECK(strcmp(again, text) == 0);
}

/* ---- raw inputs ---------------------------------------------------------- */

/* glibc's inet_ntop writes IPv4-compatible addresses (::a.b.c.d, deprecated
 * by RFC 4291) as a dotted quad, RFC 5952 and reseau in hex: compare the rest. */
static void check_ipv6_bytes(const uint8_t addr[16]) {
    char text[RS_ENDPOINT_TEXT_MAX], libc[INET6_ADDRSTRLEN];
    format_checked(format_v6, addr, text);
    CHECK(inet_ntop(AF_INET6, addr, libc, sizeof(libc)) != NULL);
    if (!is_zeroed(addr, 12)) {
        CHECK(strcmp(text, libc) == 0);
    }
    check_ipv6_canonical(addr);
}

static void check_ipv4_bytes(const uint8_t addr[4]) {
    char text[RS_ENDPOINT_TEXT_MAX], libc[INET_ADDRSTRLEN];
    uint8_t back[4];
    format_checked(format_v4, addr, text);
    CHECK(inet_ntop(AF_INET, addr, libc, sizeof(libc)) != NULL);
    CHECK(strcmp(text, libc) == 0);
    CHECK(rs_ipv4_parse(text, back) == RS_OK);
    CHECK(memcmp(addr, back, 4) == 0);
}

static uint32_t read_u32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Layout: 16 address bytes, 4 scope bytes, 2 port bytes. */
static void check_raw_endpoint(const uint8_t *data) {
    rs_endpoint_t e;
    memset(&e, 0, sizeof(e));
    e.domain = RS_SOCKET_DOMAIN_IPV6;
    memcpy(e.addr, data, 16);
    e.scope_id = read_u32(data + 16);
    e.port = (uint32_t)data[20] << 8 | data[21];
    check_endpoint_round_trip(&e);
    e.domain = RS_SOCKET_DOMAIN_IPV4;
    memset(e.addr + 4, 0, 12);
    e.scope_id = 0;
    check_endpoint_round_trip(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A heap copy of exactly size + 1 bytes, so ASan sees any read past the NUL. */
    char *text = (char *)malloc(size + 1);
    uint32_t port = size >= 2 ? ((uint32_t)data[0] << 8 | data[1]) : (uint32_t)size;
    if (!text) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    check_ipv4_text(text);
    check_ipv6_text(text);
    check_endpoint_text(text, port);
    check_local_text(text);
    free(text);

    if (size >= 4) {
        check_ipv4_bytes(data);
    }
    if (size >= 16) {
        check_ipv6_bytes(data);
    }
    if (size >= 22) {
        check_raw_endpoint(data);
    }
    return 0;
}
