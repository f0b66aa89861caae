/* Addresses: strict IPv4/IPv6 parsing, RFC 5952 formatting, endpoints. */
#include "test_util.h"

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#endif

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

/* ---- IPv4 parsing -------------------------------------------------------- */

typedef struct ipv4_case {
    const char *text;
    int result;
    uint8_t bytes[4];
} ipv4_case_t;

static const ipv4_case_t ipv4_cases[] = {
    {"0.0.0.0", RS_OK, {0, 0, 0, 0}},
    {"255.255.255.255", RS_OK, {255, 255, 255, 255}},
    {"1.2.3.4", RS_OK, {1, 2, 3, 4}},
    {"127.0.0.1", RS_OK, {127, 0, 0, 1}},
    {"10.0.0.255", RS_OK, {10, 0, 0, 255}},
    {"192.168.100.200", RS_OK, {192, 168, 100, 200}},
    {"", RS_EINVAL, {0}},
    {"256.0.0.1", RS_EINVAL, {0}},
    {"1.2.3.256", RS_EINVAL, {0}},
    {"999.1.1.1", RS_EINVAL, {0}},
    {"1.2.3.1000", RS_EINVAL, {0}},
    {"1.2.3", RS_EINVAL, {0}},
    {"1.2.3.4.5", RS_EINVAL, {0}},
    {"1..2.3", RS_EINVAL, {0}},
    {"1.2.3.", RS_EINVAL, {0}},
    {".1.2.3", RS_EINVAL, {0}},
    {"1.2.3.4.", RS_EINVAL, {0}},
    {" 1.2.3.4", RS_EINVAL, {0}},
    {"1.2.3.4 ", RS_EINVAL, {0}},
    {"1.2.3.4\n", RS_EINVAL, {0}},
    {"01.2.3.4", RS_EINVAL, {0}},
    {"1.2.3.04", RS_EINVAL, {0}},
    {"00.0.0.0", RS_EINVAL, {0}},
    {"+1.2.3.4", RS_EINVAL, {0}},
    {"1.-2.3.4", RS_EINVAL, {0}},
    {"0x1.2.3.4", RS_EINVAL, {0}},
    {"1.2.3.a", RS_EINVAL, {0}},
    {"1,2,3,4", RS_EINVAL, {0}},
    {"1.2.3.4%1", RS_EINVAL, {0}},
    {"1.2.3.4:80", RS_EINVAL, {0}},
    {"::1", RS_EINVAL, {0}},
    {"16909060", RS_EINVAL, {0}},
};

static void check_ipv4_case(const ipv4_case_t *c) {
    uint8_t out[4];
    int result;
    memset(out, 0xAA, sizeof(out));
    result = rs_ipv4_parse(c->text, out);
    if (result != c->result) {
        fail_msg("ipv4 \"%s\": got %s, want %s", c->text, rs_err_name(result), rs_err_name(c->result));
    }
    if (memcmp(out, c->bytes, 4) != 0) { /* zero-filled on error */
        fail_msg("ipv4 \"%s\": wrong bytes", c->text);
    }
}

static void ipv4_parse_accepts_and_rejects_the_table(void **state) {
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(ipv4_cases) / sizeof(ipv4_cases[0]); ++i) {
        check_ipv4_case(&ipv4_cases[i]);
    }
}

static void ipv4_parse_rejects_null(void **state) {
    uint8_t out[4] = {9, 9, 9, 9};
    (void)state;
    assert_int_equal(rs_ipv4_parse(NULL, out), RS_EINVAL);
    assert_true(is_zeroed(out, sizeof(out)));
    assert_int_equal(rs_ipv4_parse("1.2.3.4", NULL), RS_EINVAL);
}

static void ipv4_round_trips_through_format(void **state) {
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(ipv4_cases) / sizeof(ipv4_cases[0]); ++i) {
        uint8_t out[4], again[4];
        char text[16];
        if (ipv4_cases[i].result != RS_OK) {
            continue;
        }
        assert_int_equal(rs_ipv4_parse(ipv4_cases[i].text, out), RS_OK);
        assert_int_equal(rs_ipv4_format(out, text, sizeof(text)), RS_OK);
        assert_string_equal(text, ipv4_cases[i].text); /* every valid case is canonical */
        assert_int_equal(rs_ipv4_parse(text, again), RS_OK);
        assert_memory_equal(out, again, 4);
    }
}

/* ---- IPv6 parsing -------------------------------------------------------- */

typedef struct ipv6_case {
    const char *text;
    bool with_zone; /* pass a scope_id_out */
    int result;
    uint16_t groups[8];
    uint32_t scope_id; /* for a named zone ("%lo"), looked up at run time instead */
    const char *canonical; /* RFC 5952 text for valid cases */
} ipv6_case_t;

static const ipv6_case_t ipv6_cases[] = {
    {"::", false, RS_OK, {0}, 0, "::"},
    {"::1", false, RS_OK, {0, 0, 0, 0, 0, 0, 0, 1}, 0, "::1"},
    {"1::", false, RS_OK, {1}, 0, "1::"},
    {"1::8", false, RS_OK, {1, 0, 0, 0, 0, 0, 0, 8}, 0, "1::8"},
    {"fe80::1%1", true, RS_OK, {0xfe80, 0, 0, 0, 0, 0, 0, 1}, 1, "fe80::1"},
#if defined(_WIN32) /* interface names are not looked up there, only indexes */
    {"fe80::1%lo", true, RS_ENOTSUP, {0}, 0, NULL},
#else
    {"fe80::1%lo", true, RS_OK, {0xfe80, 0, 0, 0, 0, 0, 0, 1}, 0, "fe80::1"},
#endif
    {"fe80::1%4294967295", true, RS_OK, {0xfe80, 0, 0, 0, 0, 0, 0, 1}, 4294967295u, "fe80::1"},
    {"::1", true, RS_OK, {0, 0, 0, 0, 0, 0, 0, 1}, 0, "::1"},
    {"::ffff:1.2.3.4", false, RS_OK, {0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304}, 0, "::ffff:1.2.3.4"},
    {"::ffff:0.0.0.0", false, RS_OK, {0, 0, 0, 0, 0, 0xffff, 0, 0}, 0, "::ffff:0.0.0.0"},
    {"0:0:0:0:0:ffff:102:304", false, RS_OK, {0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304}, 0, "::ffff:1.2.3.4"},
    {"::1.2.3.4", false, RS_OK, {0, 0, 0, 0, 0, 0, 0x0102, 0x0304}, 0, "::102:304"},
    {"1:2:3:4:5:6:7:8", false, RS_OK, {1, 2, 3, 4, 5, 6, 7, 8}, 0, "1:2:3:4:5:6:7:8"},
    {"1:2:3:4:5:6:7::", false, RS_OK, {1, 2, 3, 4, 5, 6, 7, 0}, 0, "1:2:3:4:5:6:7:0"},
    {"::2:3:4:5:6:7:8", false, RS_OK, {0, 2, 3, 4, 5, 6, 7, 8}, 0, "0:2:3:4:5:6:7:8"},
    {"1:2:3:4:5:6:1.2.3.4", false, RS_OK, {1, 2, 3, 4, 5, 6, 0x0102, 0x0304}, 0, "1:2:3:4:5:6:102:304"},
    {"1::255.255.255.255", false, RS_OK, {1, 0, 0, 0, 0, 0, 0xffff, 0xffff}, 0, "1::ffff:ffff"},
    {"2001:db8:0:0:1:0:0:1", false, RS_OK, {0x2001, 0xdb8, 0, 0, 1, 0, 0, 1}, 0, "2001:db8::1:0:0:1"},
    {"2001:db8:0:1:1:1:1:1", false, RS_OK, {0x2001, 0xdb8, 0, 1, 1, 1, 1, 1}, 0, "2001:db8:0:1:1:1:1:1"},
    {"0:0:0:0:0:0:0:0", false, RS_OK, {0}, 0, "::"},
    {"1:0:0:2:0:0:0:3", false, RS_OK, {1, 0, 0, 2, 0, 0, 0, 3}, 0, "1:0:0:2::3"},
    {"1:0:0:2:0:0:3:4", false, RS_OK, {1, 0, 0, 2, 0, 0, 3, 4}, 0, "1::2:0:0:3:4"},
    {"2001:DB8::ABCD:Ef", false, RS_OK, {0x2001, 0xdb8, 0, 0, 0, 0, 0xabcd, 0xef}, 0, "2001:db8::abcd:ef"},
    {"2001:0db8:0000:0000:0000:0000:0000:0001", false, RS_OK, {0x2001, 0xdb8, 0, 0, 0, 0, 0, 1}, 0, "2001:db8::1"},
    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false, RS_OK,
     {0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff}, 0,
     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
    {"", false, RS_EINVAL, {0}, 0, NULL},
    {":", false, RS_EINVAL, {0}, 0, NULL},
    {":::", false, RS_EINVAL, {0}, 0, NULL},
    {"1:::2", false, RS_EINVAL, {0}, 0, NULL},
    {"1::2::3", false, RS_EINVAL, {0}, 0, NULL},
    {"::1::", false, RS_EINVAL, {0}, 0, NULL},
    {":1::", false, RS_EINVAL, {0}, 0, NULL},
    {"1::2:", false, RS_EINVAL, {0}, 0, NULL},
    {":1:2:3:4:5:6:7:8", false, RS_EINVAL, {0}, 0, NULL},
    {"1:2:3:4:5:6:7:8:", false, RS_EINVAL, {0}, 0, NULL},
    {"1:2:3:4:5:6:7", false, RS_EINVAL, {0}, 0, NULL},
    {"1:2:3:4:5:6:7:8:9", false, RS_EINVAL, {0}, 0, NULL},
    {"1::2:3:4:5:6:7:8", false, RS_EINVAL, {0}, 0, NULL},
    {"1:2:3:4:5:6:7:8::", false, RS_EINVAL, {0}, 0, NULL},
    {"12345::", false, RS_EINVAL, {0}, 0, NULL},
    {"::02001", false, RS_EINVAL, {0}, 0, NULL},
    {"g::1", false, RS_EINVAL, {0}, 0, NULL},
    {"::1x", false, RS_EINVAL, {0}, 0, NULL},
    {" ::1", false, RS_EINVAL, {0}, 0, NULL},
    {"::1 ", false, RS_EINVAL, {0}, 0, NULL},
    {"[::1]", false, RS_EINVAL, {0}, 0, NULL},
    {"1:2:3:4:5:6:7:1.2.3.4", false, RS_EINVAL, {0}, 0, NULL},
    {"1:2:3:4:5:6::1.2.3.4", false, RS_EINVAL, {0}, 0, NULL},
    {"::ffff:1.2.3.04", false, RS_EINVAL, {0}, 0, NULL},
    {"::ffff:256.1.1.1", false, RS_EINVAL, {0}, 0, NULL},
    {"::1.2.3", false, RS_EINVAL, {0}, 0, NULL},
    {"::1.2.3.4:1", false, RS_EINVAL, {0}, 0, NULL},
    {"::1.2.3.4.5", false, RS_EINVAL, {0}, 0, NULL},
    {"::a1.2.3.4", false, RS_EINVAL, {0}, 0, NULL},
    {"1.2.3.4", false, RS_EINVAL, {0}, 0, NULL},
    {"1.2.3.4%1", true, RS_EINVAL, {0}, 0, NULL},
    {"fe80::1%1", false, RS_EINVAL, {0}, 0, NULL},
    {"fe80::1%", true, RS_EINVAL, {0}, 0, NULL},
#if defined(_WIN32)
    {"fe80::1%nosuchif0", true, RS_ENOTSUP, {0}, 0, NULL},
#else
    {"fe80::1%nosuchif0", true, RS_EINVAL, {0}, 0, NULL},
#endif
    {"fe80::1%4294967296", true, RS_EINVAL, {0}, 0, NULL},
#if defined(_WIN32) /* "1%1" is not all digits: a name */
    {"fe80::1%1%1", true, RS_ENOTSUP, {0}, 0, NULL},
#else
    {"fe80::1%1%1", true, RS_EINVAL, {0}, 0, NULL},
#endif
    {"%1", true, RS_EINVAL, {0}, 0, NULL},
    {"[fe80::1%1]", true, RS_EINVAL, {0}, 0, NULL},
};

#define IPV6_CASE_COUNT (sizeof(ipv6_cases) / sizeof(ipv6_cases[0]))

static void groups_to_bytes(const uint16_t groups[8], uint8_t out[16]) {
    int i;
    for (i = 0; i < 8; ++i) {
        out[2 * i] = (uint8_t)(groups[i] >> 8);
        out[2 * i + 1] = (uint8_t)(groups[i] & 0xff);
    }
}

static uint32_t expected_scope(const ipv6_case_t *c) {
    const char *zone = strchr(c->text, '%');
    if (c->result != RS_OK) {
        return 0;
    }
#if !defined(_WIN32) /* no named zone parses there (see the table) */
    if (zone && !(zone[1] >= '0' && zone[1] <= '9')) {
        return (uint32_t)if_nametoindex(zone + 1);
    }
#else
    (void)zone;
#endif
    return c->scope_id;
}

static void check_ipv6_case(const ipv6_case_t *c) {
    uint8_t out[16], want[16];
    uint32_t scope = 0xAAAAAAAAu;
    int result;
    memset(out, 0xAA, sizeof(out));
    groups_to_bytes(c->groups, want);
    result = rs_ipv6_parse(c->text, out, c->with_zone ? &scope : NULL);
    if (result != c->result) {
        fail_msg("ipv6 \"%s\": got %s, want %s", c->text, rs_err_name(result), rs_err_name(c->result));
    }
    if (memcmp(out, want, 16) != 0) { /* zero-filled on error */
        fail_msg("ipv6 \"%s\": wrong bytes", c->text);
    }
    if (c->with_zone && scope != expected_scope(c)) {
        fail_msg("ipv6 \"%s\": scope %u, want %u", c->text, (unsigned)scope, (unsigned)expected_scope(c));
    }
}

static void ipv6_parse_accepts_and_rejects_the_table(void **state) {
    size_t i;
    (void)state;
    for (i = 0; i < IPV6_CASE_COUNT; ++i) {
        check_ipv6_case(&ipv6_cases[i]);
    }
}

static void ipv6_lo_zone_is_a_real_interface(void **state) {
    (void)state;
#if defined(_WIN32)
    {
        uint8_t out[16];
        uint32_t scope = 7;
        assert_int_equal(rs_ipv6_parse("fe80::1%1", out, &scope), RS_OK); /* an index still parses */
        assert_int_equal(scope, 1);
    }
#else
    assert_true(if_nametoindex("lo") != 0); /* the "%lo" case above relies on it */
#endif
}

static void ipv6_parse_rejects_null(void **state) {
    uint8_t out[16];
    uint32_t scope = 7;
    (void)state;
    memset(out, 0xAA, sizeof(out));
    assert_int_equal(rs_ipv6_parse(NULL, out, &scope), RS_EINVAL);
    assert_true(is_zeroed(out, sizeof(out)));
    assert_int_equal(scope, 0);
    assert_int_equal(rs_ipv6_parse("::1", NULL, NULL), RS_EINVAL);
}

static void ipv6_parse_without_zone_sets_scope_zero(void **state) {
    uint8_t out[16];
    uint32_t scope = 7;
    (void)state;
    assert_int_equal(rs_ipv6_parse("fe80::1", out, &scope), RS_OK);
    assert_int_equal(scope, 0);
}

static void ipv6_formats_canonically_and_round_trips(void **state) {
    size_t i;
    (void)state;
    for (i = 0; i < IPV6_CASE_COUNT; ++i) {
        const ipv6_case_t *c = &ipv6_cases[i];
        uint8_t out[16], again[16];
        uint32_t scope = 0;
        char text[46];
        if (c->result != RS_OK) {
            continue;
        }
        assert_int_equal(rs_ipv6_parse(c->text, out, &scope), RS_OK);
        assert_int_equal(rs_ipv6_format(out, text, sizeof(text)), RS_OK);
        if (strcmp(text, c->canonical) != 0) {
            fail_msg("ipv6 \"%s\": formatted \"%s\", want \"%s\"", c->text, text, c->canonical);
        }
        assert_int_equal(rs_ipv6_parse(text, again, NULL), RS_OK);
        assert_memory_equal(out, again, 16);
    }
}

/* ---- formatting ---------------------------------------------------------- */

static void ipv6_format_collapses_only_runs_of_two_or_more(void **state) {
    static const uint8_t one_zero[16] = {0, 1, 0, 0, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7};
    static const uint8_t mapped_like[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 1, 2, 3, 4};
    char text[46];
    (void)state;
    assert_int_equal(rs_ipv6_format(one_zero, text, sizeof(text)), RS_OK);
    assert_string_equal(text, "1:0:2:3:4:5:6:7");
    assert_int_equal(rs_ipv6_format(mapped_like, text, sizeof(text)), RS_OK);
    assert_string_equal(text, "::fffe:102:304"); /* only ::ffff:0:0/96 gets a dotted quad */
}

static void ipv4_format_overflow_leaves_empty_text(void **state) {
    static const uint8_t addr[4] = {255, 255, 255, 255};
    char text[16];
    (void)state;
    assert_int_equal(rs_ipv4_format(addr, text, 16), RS_OK);
    assert_string_equal(text, "255.255.255.255");
    memset(text, 'x', sizeof(text));
    assert_int_equal(rs_ipv4_format(addr, text, 15), RS_EOVERFLOW);
    assert_int_equal(text[0], '\0');
    assert_int_equal(rs_ipv4_format(addr, text, 1), RS_EOVERFLOW);
    assert_int_equal(text[0], '\0');
    assert_int_equal(rs_ipv4_format(addr, NULL, 0), RS_EOVERFLOW);
    assert_int_equal(rs_ipv4_format(NULL, text, sizeof(text)), RS_EINVAL);
    assert_int_equal(rs_ipv4_format(addr, NULL, 16), RS_EINVAL);
}

static void ipv6_format_overflow_leaves_empty_text(void **state) {
    uint8_t addr[16];
    char text[46];
    const char *full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    (void)state;
    memset(addr, 0xff, sizeof(addr));
    assert_int_equal(rs_ipv6_format(addr, text, strlen(full) + 1), RS_OK);
    assert_string_equal(text, full);
    memset(text, 'x', sizeof(text));
    assert_int_equal(rs_ipv6_format(addr, text, strlen(full)), RS_EOVERFLOW);
    assert_int_equal(text[0], '\0');
    assert_int_equal(rs_ipv6_format(addr, NULL, 0), RS_EOVERFLOW);
    assert_int_equal(rs_ipv6_format(NULL, text, sizeof(text)), RS_EINVAL);
}

/* ---- endpoints ----------------------------------------------------------- */

static void endpoint_from_ip_picks_the_domain_by_content(void **state) {
    rs_endpoint_t e;
    static const uint8_t v6_one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    (void)state;
    assert_int_equal(rs_endpoint_from_ip(&e, "10.1.2.3", 8080), RS_OK);
    assert_int_equal(e.domain, RS_SOCKET_DOMAIN_IPV4);
    assert_int_equal(e.port, 8080);
    assert_memory_equal(e.addr, "\x0a\x01\x02\x03", 4);
    assert_true(is_zeroed(e.addr + 4, 12));
    assert_int_equal(rs_endpoint_from_ip(&e, "::1", 65535), RS_OK);
    assert_int_equal(e.domain, RS_SOCKET_DOMAIN_IPV6);
    assert_int_equal(e.port, 65535);
    assert_memory_equal(e.addr, v6_one, 16);
    assert_int_equal(e.scope_id, 0);
    assert_int_equal(rs_endpoint_from_ip(&e, "fe80::1%3", 0), RS_OK);
    assert_int_equal(e.scope_id, 3);
    assert_int_equal(e.port, 0);
}

static void endpoint_from_ip_rejects_and_zeroes(void **state) {
    static const char *bad[] = {"1.2.3.4%1", "256.1.1.1", "", "::1::", "[::1]", "localhost"};
    rs_endpoint_t e;
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        memset(&e, 0xAA, sizeof(e));
        assert_int_equal(rs_endpoint_from_ip(&e, bad[i], 80), RS_EINVAL);
        assert_true(is_zeroed(&e, sizeof(e)));
    }
    memset(&e, 0xAA, sizeof(e));
    memset(&e, 0xAA, sizeof(e));
#if defined(_WIN32) /* a zone name is not looked up there */
    assert_int_equal(rs_endpoint_from_ip(&e, "fe80::1%nosuchif0", 80), RS_ENOTSUP);
#else
    assert_int_equal(rs_endpoint_from_ip(&e, "fe80::1%nosuchif0", 80), RS_EINVAL);
#endif
    assert_true(is_zeroed(&e, sizeof(e)));
    memset(&e, 0xAA, sizeof(e));
    assert_int_equal(rs_endpoint_from_ip(&e, "1.2.3.4", 65536), RS_EINVAL);
    assert_true(is_zeroed(&e, sizeof(e)));
    assert_int_equal(rs_endpoint_from_ip(&e, "::1", 65536), RS_EINVAL);
    assert_int_equal(rs_endpoint_from_ip(&e, NULL, 80), RS_EINVAL);
    assert_int_equal(rs_endpoint_from_ip(NULL, "1.2.3.4", 80), RS_EINVAL);
}

static void endpoint_from_local_checks_length(void **state) {
    rs_endpoint_t e;
    char path[RS_LOCAL_PATH_MAX + 2];
    (void)state;
    assert_int_equal(rs_endpoint_from_local(&e, "/run/x.sock"), RS_OK);
    assert_int_equal(e.domain, RS_SOCKET_DOMAIN_LOCAL);
    assert_string_equal(e.path, "/run/x.sock");
    memset(path, 'p', sizeof(path));
    path[RS_LOCAL_PATH_MAX] = '\0';
    assert_int_equal(rs_endpoint_from_local(&e, path), RS_OK);
    assert_string_equal(e.path, path);
    path[RS_LOCAL_PATH_MAX] = 'p';
    path[RS_LOCAL_PATH_MAX + 1] = '\0';
    memset(&e, 0xAA, sizeof(e));
    assert_int_equal(rs_endpoint_from_local(&e, path), RS_EINVAL);
    assert_true(is_zeroed(&e, sizeof(e)));
    assert_int_equal(rs_endpoint_from_local(&e, ""), RS_EINVAL);
    assert_int_equal(rs_endpoint_from_local(&e, "@"), RS_EINVAL);
    assert_int_equal(rs_endpoint_from_local(&e, NULL), RS_EINVAL);
    assert_int_equal(rs_endpoint_from_local(NULL, "/x"), RS_EINVAL);
}

static void endpoint_from_local_abstract_is_linux_only(void **state) {
    rs_endpoint_t e;
    int result = rs_endpoint_from_local(&e, "@reseau-test");
    (void)state;
#if RESEAU_OS_LINUX
    assert_int_equal(result, RS_OK);
    assert_string_equal(e.path, "@reseau-test");
#else
    assert_int_equal(result, RS_ENOTSUP);
    assert_true(is_zeroed(&e, sizeof(e)));
#endif
}

static void endpoint_from_vsock_is_linux_only(void **state) {
    rs_endpoint_t e;
    int result = rs_endpoint_from_vsock(&e, 3, 1024);
    (void)state;
#if RESEAU_OS_LINUX
    assert_int_equal(result, RS_OK);
    assert_int_equal(e.domain, RS_SOCKET_DOMAIN_VSOCK);
    assert_int_equal(e.vsock_cid, 3);
    assert_int_equal(e.port, 1024);
#else
    assert_int_equal(result, RS_ENOTSUP);
    assert_true(is_zeroed(&e, sizeof(e)));
#endif
    assert_int_equal(rs_endpoint_from_vsock(NULL, 3, 1024), RS_EINVAL);
}

static void expect_endpoint_text(const rs_endpoint_t *e, const char *want) {
    char text[RS_ENDPOINT_TEXT_MAX];
    assert_int_equal(rs_endpoint_format(e, text, sizeof(text)), RS_OK);
    assert_string_equal(text, want);
}

static void endpoint_format_covers_every_domain(void **state) {
    rs_endpoint_t e;
    (void)state;
    assert_int_equal(rs_endpoint_from_ip(&e, "127.0.0.1", 80), RS_OK);
    expect_endpoint_text(&e, "127.0.0.1:80");
    assert_int_equal(rs_endpoint_from_ip(&e, "::1", 80), RS_OK);
    expect_endpoint_text(&e, "[::1]:80");
    assert_int_equal(rs_endpoint_from_ip(&e, "FE80:0::1%2", 80), RS_OK);
    expect_endpoint_text(&e, "[fe80::1%2]:80");
    assert_int_equal(rs_endpoint_from_ip(&e, "::ffff:10.0.0.1", 443), RS_OK);
    expect_endpoint_text(&e, "[::ffff:10.0.0.1]:443");
    assert_int_equal(rs_endpoint_from_local(&e, "/run/x.sock"), RS_OK);
    expect_endpoint_text(&e, "/run/x.sock");
#if RESEAU_OS_LINUX
    assert_int_equal(rs_endpoint_from_local(&e, "@name"), RS_OK);
    expect_endpoint_text(&e, "@name");
    assert_int_equal(rs_endpoint_from_vsock(&e, 3, 1024), RS_OK);
    expect_endpoint_text(&e, "vsock:3:1024");
#endif
}

static void endpoint_format_longest_fits_the_text_max(void **state) {
    rs_endpoint_t e;
    char path[RS_LOCAL_PATH_MAX + 1];
    (void)state;
    assert_int_equal(rs_endpoint_from_ip(&e, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295", 65535), RS_OK);
    expect_endpoint_text(&e, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535");
    memset(path, 'p', sizeof(path));
    path[RS_LOCAL_PATH_MAX] = '\0';
    assert_int_equal(rs_endpoint_from_local(&e, path), RS_OK);
    expect_endpoint_text(&e, path);
}

static void endpoint_format_overflow_and_bad_input(void **state) {
    rs_endpoint_t e;
    char text[RS_ENDPOINT_TEXT_MAX];
    (void)state;
    assert_int_equal(rs_endpoint_from_ip(&e, "1.2.3.4", 80), RS_OK);
    assert_int_equal(rs_endpoint_format(&e, text, strlen("1.2.3.4:80") + 1), RS_OK);
    memset(text, 'x', sizeof(text));
    assert_int_equal(rs_endpoint_format(&e, text, strlen("1.2.3.4:80")), RS_EOVERFLOW);
    assert_int_equal(text[0], '\0');
    assert_int_equal(rs_endpoint_format(&e, NULL, 0), RS_EOVERFLOW);
    assert_int_equal(rs_endpoint_format(NULL, text, sizeof(text)), RS_EINVAL);
    assert_int_equal(text[0], '\0');
    e.domain = (rs_socket_domain_t)42;
    memset(text, 'x', sizeof(text));
    assert_int_equal(rs_endpoint_format(&e, text, sizeof(text)), RS_EINVAL);
    assert_int_equal(text[0], '\0');
}

static void endpoint_equal_compares_what_matters(void **state) {
    rs_endpoint_t a, b;
    (void)state;
    assert_int_equal(rs_endpoint_from_ip(&a, "1.2.3.4", 80), RS_OK);
    assert_int_equal(rs_endpoint_from_ip(&b, "1.2.3.4", 80), RS_OK);
    assert_true(rs_endpoint_equal(&a, &b));
    b.scope_id = 9; /* ignored for IPv4 */
    b.addr[10] = 1;
    memcpy(b.path, "junk", 5);
    assert_true(rs_endpoint_equal(&a, &b));
    b.port = 81;
    assert_false(rs_endpoint_equal(&a, &b));
    assert_int_equal(rs_endpoint_from_ip(&b, "1.2.3.5", 80), RS_OK);
    assert_false(rs_endpoint_equal(&a, &b));
    assert_int_equal(rs_endpoint_from_ip(&b, "::ffff:1.2.3.4", 80), RS_OK);
    assert_false(rs_endpoint_equal(&a, &b)); /* different domains */

    assert_int_equal(rs_endpoint_from_ip(&a, "fe80::1%1", 80), RS_OK);
    assert_int_equal(rs_endpoint_from_ip(&b, "FE80:0:0::1%1", 80), RS_OK);
    assert_true(rs_endpoint_equal(&a, &b));
    b.scope_id = 2;
    assert_false(rs_endpoint_equal(&a, &b));

    assert_int_equal(rs_endpoint_from_local(&a, "/tmp/a"), RS_OK);
    assert_int_equal(rs_endpoint_from_local(&b, "/tmp/a"), RS_OK);
    b.port = 5; /* ignored for LOCAL */
    assert_true(rs_endpoint_equal(&a, &b));
    assert_int_equal(rs_endpoint_from_local(&b, "/tmp/b"), RS_OK);
    assert_false(rs_endpoint_equal(&a, &b));

    assert_true(rs_endpoint_equal(NULL, NULL));
    assert_false(rs_endpoint_equal(&a, NULL));
    assert_false(rs_endpoint_equal(NULL, &a));
}

static void endpoint_equal_vsock(void **state) {
    rs_endpoint_t a, b;
    (void)state;
#if RESEAU_OS_LINUX
    assert_int_equal(rs_endpoint_from_vsock(&a, 3, 1024), RS_OK);
    assert_int_equal(rs_endpoint_from_vsock(&b, 3, 1024), RS_OK);
    assert_true(rs_endpoint_equal(&a, &b));
    b.vsock_cid = 4;
    assert_false(rs_endpoint_equal(&a, &b));
    b.vsock_cid = 3;
    b.port = 1025;
    assert_false(rs_endpoint_equal(&a, &b));
#else
    (void)a;
    (void)b;
    skip();
#endif
}

/* ------------------------------------------ parse what format writes */

static void endpoint_parse_reads_what_format_writes(void **state) {
    static const char *const texts[] = {"127.0.0.1:80", "0.0.0.0:0", "255.255.255.255:65535", "[::1]:80",
                                        "[::]:0", "[2001:db8::1]:443", "[fe80::1%7]:8080", "[::ffff:1.2.3.4]:1",
                                        "/run/x.sock",
#if RESEAU_OS_LINUX
                                        "@abstract", "vsock:3:1024", "vsock:4294967295:0"
#endif
    };
    size_t i;
    (void)state;
#if !RESEAU_OS_LINUX
    {
        static const char *const linux_only[] = {"@abstract", "vsock:3:1024", "vsock:4294967295:0"};
        for (i = 0; i < sizeof(linux_only) / sizeof(linux_only[0]); ++i) {
            rs_endpoint_t ep;
            memset(&ep, 0xab, sizeof(ep));
            assert_int_equal(rs_endpoint_parse(&ep, linux_only[i]), RS_ENOTSUP);
            assert_true(is_zeroed(&ep, sizeof(ep)));
        }
    }
#endif
    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); ++i) {
        rs_endpoint_t ep, again;
        char buf[RS_ENDPOINT_TEXT_MAX];
        assert_int_equal(rs_endpoint_parse(&ep, texts[i]), RS_OK);
        assert_int_equal(rs_endpoint_format(&ep, buf, sizeof(buf)), RS_OK);
        assert_string_equal(buf, texts[i]);
        assert_int_equal(rs_endpoint_parse(&again, buf), RS_OK);
        assert_true(rs_endpoint_equal(&ep, &again));
    }
}

static void endpoint_parse_refuses_malformed_text(void **state) {
    static const char *const bad[] = {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
                                      "127.0.0.1:+80", "127.0.0.1:8a", "::1:80", "[::1]", "[::1]80", "[::1:80",
                                      "[127.0.0.1]:80", "[]:80", ":80", "1.2.3:80", "host:80", "vsock:", "vsock:3",
                                      "vsock::3", "vsock:3:", "vsock:x:1", "vsock:3:99999999999",
                                      "[::1]:80x", "127.0.0.1:080000"};
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        rs_endpoint_t ep;
        memset(&ep, 0xab, sizeof(ep));
        if (rs_endpoint_parse(&ep, bad[i]) != RS_EINVAL) {
            fail_msg("\"%s\" was not refused", bad[i]);
        }
        assert_int_equal(ep.port, 0); /* zeroed on error */
    }
    assert_int_equal(rs_endpoint_parse(NULL, "127.0.0.1:1"), RS_EINVAL);
    {
        rs_endpoint_t ep;
        assert_int_equal(rs_endpoint_parse(&ep, NULL), RS_EINVAL);
    }
}

static void endpoint_from_sockaddr_each_family(void **state) {
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
#if defined(_WIN32)
    struct sockaddr_storage un;
#else
    struct sockaddr_un un;
#endif
    rs_endpoint_t ep;
    char buf[RS_ENDPOINT_TEXT_MAX];
    (void)state;
    memset(&in4, 0, sizeof(in4));
    in4.sin_family = AF_INET;
    in4.sin_port = htons(8080);
    in4.sin_addr.s_addr = htonl(0x7f000001);
    assert_int_equal(rs_endpoint_from_sockaddr(&ep, &in4, sizeof(in4)), RS_OK);
    assert_int_equal(rs_endpoint_format(&ep, buf, sizeof(buf)), RS_OK);
    assert_string_equal(buf, "127.0.0.1:8080");
    memset(&in6, 0, sizeof(in6));
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(443);
    in6.sin6_addr.s6_addr[15] = 1;
    in6.sin6_scope_id = 3;
    assert_int_equal(rs_endpoint_from_sockaddr(&ep, &in6, sizeof(in6)), RS_OK);
    assert_int_equal(rs_endpoint_format(&ep, buf, sizeof(buf)), RS_OK);
    assert_string_equal(buf, "[::1%3]:443");
    memset(&un, 0, sizeof(un));
#if defined(_WIN32) /* no Unix-domain endpoints there: another family */
    un.ss_family = AF_UNIX;
    memcpy((char *)&un + sizeof(un.ss_family), "/tmp/s", 7);
    assert_int_equal(rs_endpoint_from_sockaddr(&ep, &un, sizeof(un.ss_family) + 7), RS_EAFNOSUPPORT);
    assert_int_equal(ep.domain, RS_SOCKET_DOMAIN_DEFAULT);
#else
    un.sun_family = AF_UNIX;
    strcpy(un.sun_path, "/tmp/s");
    assert_int_equal(rs_endpoint_from_sockaddr(&ep, &un, offsetof(struct sockaddr_un, sun_path) + 7), RS_OK);
    assert_int_equal(ep.domain, RS_SOCKET_DOMAIN_LOCAL);
    assert_string_equal(ep.path, "/tmp/s");
#endif
    /* Too short for its family, unknown family, NULLs. */
    assert_int_equal(rs_endpoint_from_sockaddr(&ep, &in4, sizeof(in4) - 1), RS_EINVAL);
    assert_int_equal(rs_endpoint_from_sockaddr(&ep, &in6, sizeof(struct sockaddr_in)), RS_EINVAL);
    assert_int_equal(rs_endpoint_from_sockaddr(&ep, &in4, 1), RS_EINVAL);
    in4.sin_family = AF_APPLETALK;
    assert_int_equal(rs_endpoint_from_sockaddr(&ep, &in4, sizeof(in4)), RS_EAFNOSUPPORT);
    assert_int_equal(ep.port, 0);
    assert_int_equal(rs_endpoint_from_sockaddr(NULL, &in4, sizeof(in4)), RS_EINVAL);
    assert_int_equal(rs_endpoint_from_sockaddr(&ep, NULL, sizeof(in4)), RS_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ipv4_parse_accepts_and_rejects_the_table),
        cmocka_unit_test(ipv4_parse_rejects_null),
        cmocka_unit_test(ipv4_round_trips_through_format),
        cmocka_unit_test(ipv6_parse_accepts_and_rejects_the_table),
        cmocka_unit_test(ipv6_lo_zone_is_a_real_interface),
        cmocka_unit_test(ipv6_parse_rejects_null),
        cmocka_unit_test(ipv6_parse_without_zone_sets_scope_zero),
        cmocka_unit_test(ipv6_formats_canonically_and_round_trips),
        cmocka_unit_test(ipv6_format_collapses_only_runs_of_two_or_more),
        cmocka_unit_test(ipv4_format_overflow_leaves_empty_text),
        cmocka_unit_test(ipv6_format_overflow_leaves_empty_text),
        cmocka_unit_test(endpoint_from_ip_picks_the_domain_by_content),
        cmocka_unit_test(endpoint_from_ip_rejects_and_zeroes),
        cmocka_unit_test(endpoint_from_local_checks_length),
        cmocka_unit_test(endpoint_from_local_abstract_is_linux_only),
        cmocka_unit_test(endpoint_from_vsock_is_linux_only),
        cmocka_unit_test(endpoint_format_covers_every_domain),
        cmocka_unit_test(endpoint_format_longest_fits_the_text_max),
        cmocka_unit_test(endpoint_format_overflow_and_bad_input),
        cmocka_unit_test(endpoint_equal_compares_what_matters),
        cmocka_unit_test(endpoint_equal_vsock),
        cmocka_unit_test(endpoint_parse_reads_what_format_writes),
        cmocka_unit_test(endpoint_parse_refuses_malformed_text),
        cmocka_unit_test(endpoint_from_sockaddr_each_family),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
