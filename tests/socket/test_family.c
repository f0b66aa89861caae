/*
 * A socket whose domain option is left at RS_SOCKET_DOMAIN_DEFAULT takes its
 * family from the first endpoint it is given (bind, connect, send_to), so
 * "[::1]:port" works with default options; an explicit domain that
 * contradicts the endpoint is RS_EINVAL. Only ::1, 127.0.0.1 and Unix paths.
 */
#include "test_util.h"

#include <stdio.h>
#include <unistd.h> /* getpid, unlink: mingw-w64 has them too */

#define WAIT_NS (10 * RS_NS_PER_SEC)

static rs_event_loop_t *loop_new(void) {
    rs_event_loop_options_t o = {.allocator = &rs_test_allocator};
    rs_event_loop_t *loop = rs_event_loop_new(&o, NULL);
    assert_non_null(loop);
    return loop;
}

static rs_socket_t *socket_with(rs_socket_type_t type, rs_socket_domain_t domain) {
    rs_socket_options_t o = {.allocator = &rs_test_allocator, .type = type, .domain = domain};
    int err = RS_EUNKNOWN;
    rs_socket_t *s = rs_socket_new(&o, &err);
    assert_non_null(s);
    assert_int_equal(err, RS_OK);
    return s;
}

static rs_endpoint_t parse(const char *text) {
    rs_endpoint_t e;
    assert_int_equal(rs_endpoint_parse(&e, text), RS_OK);
    return e;
}

typedef struct conn {
    rs_socket_t *accepted;
    int connected; /* 1 ok, -1 failed */
} conn_t;

static void on_accept(rs_socket_t *l, int error, rs_socket_t *s, void *ud) {
    (void)l;
    if (error == RS_OK) {
        ((conn_t *)ud)->accepted = s;
    }
}

static void on_connect(rs_socket_t *s, int error, void *ud) {
    (void)s;
    ((conn_t *)ud)->connected = error == RS_OK ? 1 : -1;
}

static void drain(rs_event_loop_t *loop) {
    int i;
    for (i = 0; i < 5; ++i) {
        rs_event_loop_run_once(loop, 0);
    }
}

/* Listener and client both with default options: bind and connect decide. */
static void connect_with_default_options(const char *bind_text, rs_socket_domain_t expected) {
    rs_event_loop_t *loop = loop_new();
    rs_socket_t *listener = socket_with(RS_SOCKET_STREAM, RS_SOCKET_DOMAIN_DEFAULT);
    rs_socket_t *client = socket_with(RS_SOCKET_STREAM, RS_SOCKET_DOMAIN_DEFAULT);
    rs_endpoint_t local = parse(bind_text);
    rs_endpoint_t bound;
    conn_t c = {0};
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    assert_int_equal(rs_socket_get_fd(listener), -1); /* no family yet, so no OS socket */
    assert_int_equal(rs_socket_bind(listener, &local), RS_OK);
    assert_true(rs_socket_get_fd(listener) >= 0);
    assert_int_equal(rs_socket_listen(listener, 4), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(listener, &bound), RS_OK);
    assert_int_equal(bound.domain, expected);
    assert_int_equal(rs_socket_start_accept(listener, loop, on_accept, &c), RS_OK);
    assert_int_equal(rs_socket_connect(client, &bound, loop, on_connect, &c), RS_OK);
    while ((!c.connected || !c.accepted) && rs_clock_now_ns() < deadline) {
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
    }
    assert_int_equal(c.connected, 1);
    assert_non_null(c.accepted);
    assert_int_equal(rs_socket_get_bound_address(client, &local), RS_OK);
    assert_int_equal(local.domain, expected);
    rs_socket_destroy(c.accepted);
    rs_socket_destroy(client);
    rs_socket_destroy(listener);
    drain(loop);
    rs_event_loop_destroy(loop);
}

static void family_default_options_connect_over_ipv6(void **state) {
    (void)state;
    connect_with_default_options("[::1]:0", RS_SOCKET_DOMAIN_IPV6);
}

static void family_default_options_connect_over_ipv4(void **state) {
    (void)state;
    connect_with_default_options("127.0.0.1:0", RS_SOCKET_DOMAIN_IPV4);
}

static void family_default_options_connect_over_a_unix_path(void **state) {
    char path[64];
    (void)state;
    snprintf(path, sizeof(path), "/tmp/rs-family-%ld.sock", (long)getpid());
#if defined(_WIN32) /* no Unix-domain sockets there yet: the path fixes nothing */
    {
        rs_socket_t *s = socket_with(RS_SOCKET_STREAM, RS_SOCKET_DOMAIN_DEFAULT);
        rs_endpoint_t local = parse(path);
        assert_int_equal(rs_socket_bind(s, &local), RS_ENOTSUP);
        rs_socket_destroy(s);
    }
#else
    unlink(path);
    connect_with_default_options(path, RS_SOCKET_DOMAIN_LOCAL);
    unlink(path);
#endif
}

/* NULL options are the defaults too. */
static void family_null_options_connect_to_ipv6(void **state) {
    rs_event_loop_t *loop = loop_new();
    rs_socket_t *listener = socket_with(RS_SOCKET_STREAM, RS_SOCKET_DOMAIN_IPV6);
    rs_socket_t *client;
    rs_endpoint_t local = parse("[::1]:0");
    rs_endpoint_t bound;
    conn_t c = {0};
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    int err = RS_EUNKNOWN;
    (void)state;
    assert_int_equal(rs_socket_bind(listener, &local), RS_OK);
    assert_int_equal(rs_socket_listen(listener, 4), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(listener, &bound), RS_OK);
    assert_int_equal(rs_socket_start_accept(listener, loop, on_accept, &c), RS_OK);
    client = rs_socket_new(NULL, &err);
    assert_non_null(client);
    assert_int_equal(rs_socket_connect(client, &bound, loop, on_connect, &c), RS_OK);
    while ((!c.connected || !c.accepted) && rs_clock_now_ns() < deadline) {
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
    }
    assert_int_equal(c.connected, 1);
    rs_socket_destroy(c.accepted);
    rs_socket_destroy(client);
    rs_socket_destroy(listener);
    drain(loop);
    rs_event_loop_destroy(loop);
}

/* UDP: the first send_to decides, and the reply comes back on that socket. */
static void family_default_udp_send_to_ipv6(void **state) {
    rs_event_loop_t *loop = loop_new();
    rs_socket_t *rx = socket_with(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_DEFAULT);
    rs_socket_t *tx = socket_with(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_DEFAULT);
    rs_endpoint_t local = parse("[::1]:0");
    rs_endpoint_t bound;
    rs_datagram_t d;
    char buf[16];
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    int err = RS_EAGAIN;
    (void)state;
    assert_int_equal(rs_socket_bind(rx, &local), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(rx, &bound), RS_OK);
    assert_int_equal(rs_socket_send_to(tx, &bound, rs_byte_cursor_from_cstr("v6")), RS_OK);
    memset(&d, 0, sizeof(d));
    d.data = buf;
    d.capacity = sizeof(buf);
    while (err == RS_EAGAIN && rs_clock_now_ns() < deadline) {
        err = rs_socket_recv_from(rx, &d);
        if (err == RS_EAGAIN) {
            rs_event_loop_run_once(loop, 10);
        }
    }
    assert_int_equal(err, RS_OK);
    assert_int_equal(d.len, 2);
    assert_int_equal(d.endpoint.domain, RS_SOCKET_DOMAIN_IPV6);
    rs_socket_destroy(rx);
    rs_socket_destroy(tx);
    rs_event_loop_destroy(loop);
}

/* Before its family is known a socket has no OS socket: what needs one says
 * RS_ESTATE; closing and destroying work. */
static void family_unknown_until_the_first_endpoint(void **state) {
    rs_socket_t *s = socket_with(RS_SOCKET_STREAM, RS_SOCKET_DOMAIN_DEFAULT);
    rs_socket_t *u = socket_with(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_DEFAULT);
    rs_socket_t *closed = socket_with(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_DEFAULT);
    rs_endpoint_t out;
    rs_endpoint_t zero;
    rs_datagram_t d;
    char buf[8];
    (void)state;
    memset(&zero, 0, sizeof(zero)); /* domain DEFAULT: names nothing */
    memset(&d, 0, sizeof(d));
    d.data = buf;
    d.capacity = sizeof(buf);
    assert_int_equal(rs_socket_get_fd(s), -1);
    assert_true(rs_socket_is_open(s));
    assert_int_equal(rs_socket_listen(s, 1), RS_ESTATE);
    assert_int_equal(rs_socket_get_bound_address(s, &out), RS_ESTATE);
    assert_int_equal(rs_socket_set_tcp_nodelay(s, true), RS_ESTATE);
    assert_int_equal(rs_socket_set_ttl(u, 9), RS_ESTATE);
    assert_int_equal(rs_socket_set_ttl(u, 0), RS_EINVAL); /* a bad value says so first */
    assert_int_equal(rs_socket_join_multicast_group(u, NULL, NULL, 0), RS_EINVAL);
    assert_int_equal(rs_socket_recv_from(u, &d), RS_ESTATE);
    assert_int_equal(rs_socket_bind(s, &zero), RS_EINVAL);
    assert_int_equal(rs_socket_get_fd(s), -1);
    assert_int_equal(rs_socket_close(closed), RS_OK);
    out = parse("127.0.0.1:9");
    assert_int_equal(rs_socket_bind(closed, &out), RS_EBADF);
    assert_int_equal(rs_socket_send_to(closed, &out, rs_byte_cursor_from_cstr("x")), RS_EBADF);
    assert_int_equal(rs_socket_get_bound_address(closed, &out), RS_EBADF);
    assert_int_equal(rs_socket_close(s), RS_OK);
    rs_socket_destroy(s);
    rs_socket_destroy(u);
    rs_socket_destroy(closed);
}

/* An explicit domain must match the endpoint: no silent switch. */
static void family_explicit_domain_that_contradicts_the_endpoint(void **state) {
    rs_event_loop_t *loop = loop_new();
    rs_socket_t *v4 = socket_with(RS_SOCKET_STREAM, RS_SOCKET_DOMAIN_IPV4);
    rs_socket_t *v6 = socket_with(RS_SOCKET_STREAM, RS_SOCKET_DOMAIN_IPV6);
    rs_socket_t *u4 = socket_with(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_IPV4);
    rs_endpoint_t e6 = parse("[::1]:80");
    rs_endpoint_t e4 = parse("127.0.0.1:80");
    conn_t c = {0};
    (void)state;
    assert_int_equal(rs_socket_connect(v4, &e6, loop, on_connect, &c), RS_EINVAL);
    assert_int_equal(rs_socket_bind(v6, &e4), RS_EINVAL);
    assert_int_equal(rs_socket_send_to(u4, &e6, rs_byte_cursor_from_cstr("x")), RS_EINVAL);
    /* The first endpoint fixes a default socket's family, even if that call fails. */
    rs_socket_destroy(v4);
    v4 = socket_with(RS_SOCKET_STREAM, RS_SOCKET_DOMAIN_DEFAULT);
    e4 = parse("192.0.2.1:0"); /* TEST-NET-1: on no interface here; bind sends nothing */
    assert_int_equal(rs_socket_bind(v4, &e4), RS_EADDRNOTAVAIL);
    assert_int_equal(rs_socket_bind(v4, &e6), RS_EINVAL);
    rs_socket_destroy(v4);
    rs_socket_destroy(v6);
    rs_socket_destroy(u4);
    drain(loop);
    rs_event_loop_destroy(loop);
    assert_int_equal(c.connected, 0); /* a call that returns an error never calls back */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(family_default_options_connect_over_ipv6),
        cmocka_unit_test(family_default_options_connect_over_ipv4),
        cmocka_unit_test(family_default_options_connect_over_a_unix_path),
        cmocka_unit_test(family_null_options_connect_to_ipv6),
        cmocka_unit_test(family_default_udp_send_to_ipv6),
        cmocka_unit_test(family_unknown_until_the_first_endpoint),
        cmocka_unit_test(family_explicit_domain_that_contradicts_the_endpoint),
    };
    return cmocka_run_group_tests_name("family", tests, NULL, NULL);
}
