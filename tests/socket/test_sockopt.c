/*
 * Options on a live socket: TCP_NODELAY and keepalive on a connected TCP
 * socket, TTL / hop limit, multicast (join/leave, interface, loop, TTL) and
 * broadcast on UDP. Each is checked with getsockopt, and each setter's
 * argument, type, state and thread errors are checked.
 *
 * Network safety: option setting uses loopback sockets only, and nothing is
 * joined or sent to a multicast or broadcast address on the host. Delivery
 * (multicast IPv4 over lo, IPv6 over a veth pair, broadcast to
 * 127.255.255.255) runs in a child process inside a network namespace it
 * creates itself, and is skipped, saying so, where that is not permitted.
 *
 * Windows: multicast and broadcast are RS_ENOTSUP (after the argument,
 * thread and state checks), and so are Unix-domain sockets; that is what
 * these tests check there. The netns delivery tests are Linux-only.
 */
#include "test_util.h"

#include <errno.h>
#if !defined(_WIN32)
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#define WAIT_NS (10 * RS_NS_PER_SEC)

static rs_event_loop_t *loop_new(void) {
    rs_event_loop_options_t o = {.allocator = &rs_test_allocator};
    int err = RS_EUNKNOWN;
    rs_event_loop_t *loop = rs_event_loop_new(&o, &err);
    assert_non_null(loop);
    return loop;
}

static rs_socket_t *socket_new(rs_socket_type_t type, rs_socket_domain_t domain) {
    rs_socket_options_t o = {.allocator = &rs_test_allocator, .type = type, .domain = domain};
    int err = RS_EUNKNOWN;
    rs_socket_t *s = rs_socket_new(&o, &err);
    assert_non_null(s);
    assert_int_equal(err, RS_OK);
    return s;
}

static int getsockopt_int(rs_socket_t *s, int level, int name) {
#if defined(_WIN32)
    int value = 0; /* Winsock may write fewer bytes (a BOOL option in one byte, under Wine) */
    int len = (int)sizeof(value);
    assert_int_equal(getsockopt((SOCKET)rs_socket_get_fd(s), level, name, (char *)&value, &len), 0);
#else
    int value = -1;
    socklen_t len = sizeof(value);
    assert_int_equal(getsockopt(rs_socket_get_fd(s), level, name, &value, &len), 0);
#endif
    return value;
}

/* A Unix-domain socket, or NULL on Windows, where making one is RS_ENOTSUP
 * (and so is every option on it). */
static rs_socket_t *local_socket_new(rs_socket_type_t type) {
#if defined(_WIN32)
    rs_socket_options_t o = {.allocator = &rs_test_allocator, .type = type, .domain = RS_SOCKET_DOMAIN_LOCAL};
    int err = RS_EUNKNOWN;
    assert_null(rs_socket_new(&o, &err));
    assert_int_equal(err, RS_ENOTSUP);
    return NULL;
#else
    return socket_new(type, RS_SOCKET_DOMAIN_LOCAL);
#endif
}

static rs_endpoint_t ip(const char *text, uint32_t port) {
    rs_endpoint_t e;
    assert_int_equal(rs_endpoint_from_ip(&e, text, port), RS_OK);
    return e;
}

/* ------------------------------------------------------------ TCP pair */

typedef struct tcp_pair {
    rs_event_loop_t *loop;
    rs_socket_t *listener;
    rs_socket_t *client;
    rs_socket_t *accepted;
    int connected;
} tcp_pair_t;

static void on_accept(rs_socket_t *l, int error, rs_socket_t *s, void *ud) {
    tcp_pair_t *p = (tcp_pair_t *)ud;
    (void)l;
    if (error == RS_OK) {
        p->accepted = s;
    }
}

static void on_connect(rs_socket_t *s, int error, void *ud) {
    tcp_pair_t *p = (tcp_pair_t *)ud;
    (void)s;
    p->connected = error == RS_OK ? 1 : -1;
}

static void tcp_pair_open(tcp_pair_t *p) {
    rs_endpoint_t local = ip("127.0.0.1", 0);
    rs_endpoint_t bound;
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    memset(p, 0, sizeof(*p));
    p->loop = loop_new();
    p->listener = socket_new(RS_SOCKET_STREAM, RS_SOCKET_DOMAIN_IPV4);
    p->client = socket_new(RS_SOCKET_STREAM, RS_SOCKET_DOMAIN_IPV4);
    assert_int_equal(rs_socket_bind(p->listener, &local), RS_OK);
    assert_int_equal(rs_socket_listen(p->listener, 4), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(p->listener, &bound), RS_OK);
    assert_int_equal(rs_socket_start_accept(p->listener, p->loop, on_accept, p), RS_OK);
    assert_int_equal(rs_socket_connect(p->client, &bound, p->loop, on_connect, p), RS_OK);
    while ((!p->connected || !p->accepted) && rs_clock_now_ns() < deadline) {
        assert_int_equal(rs_event_loop_run_once(p->loop, 10), RS_OK);
    }
    assert_int_equal(p->connected, 1);
    assert_non_null(p->accepted);
    assert_int_equal(rs_socket_assign_to_loop(p->accepted, p->loop), RS_OK);
}

static void tcp_pair_close(tcp_pair_t *p) {
    int i;
    rs_socket_destroy(p->accepted);
    rs_socket_destroy(p->client);
    rs_socket_destroy(p->listener);
    for (i = 0; i < 5; ++i) {
        rs_event_loop_run_once(p->loop, 0);
    }
    rs_event_loop_destroy(p->loop);
}

/* ------------------------------------------------------------------ TCP */

static void sockopt_tcp_nodelay_on_a_connected_socket(void **state) {
    tcp_pair_t p;
    (void)state;
    tcp_pair_open(&p);
    assert_int_equal(getsockopt_int(p.client, IPPROTO_TCP, TCP_NODELAY), 0);
    assert_int_equal(rs_socket_set_tcp_nodelay(p.client, true), RS_OK);
    assert_int_equal(getsockopt_int(p.client, IPPROTO_TCP, TCP_NODELAY), 1);
    assert_int_equal(rs_socket_set_tcp_nodelay(p.accepted, true), RS_OK);
    assert_int_equal(getsockopt_int(p.accepted, IPPROTO_TCP, TCP_NODELAY), 1);
    assert_int_equal(rs_socket_set_tcp_nodelay(p.client, false), RS_OK);
    assert_int_equal(getsockopt_int(p.client, IPPROTO_TCP, TCP_NODELAY), 0);
    tcp_pair_close(&p);
}

static void sockopt_keepalive_on_a_connected_socket(void **state) {
    tcp_pair_t p;
    (void)state;
    tcp_pair_open(&p);
#if defined(_WIN32)
    /* The idle time and interval may go through SIO_KEEPALIVE_VALS, which
     * cannot be read back; the probe count is RS_ENOTSUP without its
     * per-socket option (before Windows 10 1703, and under Wine). */
    assert_int_equal(rs_socket_set_keepalive(p.client, true, 30, 5, 0), RS_OK);
    assert_int_equal(getsockopt_int(p.client, SOL_SOCKET, SO_KEEPALIVE), 1);
    {
        int err = rs_socket_set_keepalive(p.client, true, 30, 5, 4);
        if (err == RS_OK) {
            assert_int_equal(getsockopt_int(p.client, IPPROTO_TCP, 16 /* TCP_KEEPCNT */), 4);
        } else {
            assert_int_equal(err, RS_ENOTSUP);
        }
    }
    assert_int_equal(rs_socket_set_keepalive(p.client, false, 0, 0, 0), RS_OK);
    assert_int_equal(getsockopt_int(p.client, SOL_SOCKET, SO_KEEPALIVE), 0);
    assert_int_equal(rs_socket_set_keepalive(p.client, true, 0, UINT32_MAX, 0), RS_EINVAL);
#else
    assert_int_equal(rs_socket_set_keepalive(p.client, true, 30, 5, 4), RS_OK);
    assert_int_equal(getsockopt_int(p.client, SOL_SOCKET, SO_KEEPALIVE), 1);
    assert_int_equal(getsockopt_int(p.client, IPPROTO_TCP, TCP_KEEPIDLE), 30);
    assert_int_equal(getsockopt_int(p.client, IPPROTO_TCP, TCP_KEEPINTVL), 5);
    assert_int_equal(getsockopt_int(p.client, IPPROTO_TCP, TCP_KEEPCNT), 4);
    /* 0 keeps a timer as it is. */
    assert_int_equal(rs_socket_set_keepalive(p.client, true, 60, 0, 0), RS_OK);
    assert_int_equal(getsockopt_int(p.client, IPPROTO_TCP, TCP_KEEPIDLE), 60);
    assert_int_equal(getsockopt_int(p.client, IPPROTO_TCP, TCP_KEEPINTVL), 5);
    assert_int_equal(rs_socket_set_keepalive(p.client, false, 0, 0, 0), RS_OK);
    assert_int_equal(getsockopt_int(p.client, SOL_SOCKET, SO_KEEPALIVE), 0);
    /* Values the OS refuses, or an int cannot hold. */
    assert_int_equal(rs_socket_set_keepalive(p.client, true, 40000, 0, 0), RS_EINVAL);
    assert_int_equal(rs_socket_set_keepalive(p.client, true, 0, 0, 1000), RS_EINVAL);
    assert_int_equal(rs_socket_set_keepalive(p.client, true, 0, UINT32_MAX, 0), RS_EINVAL);
#endif
    tcp_pair_close(&p);
}

static void sockopt_tcp_options_refuse_other_sockets(void **state) {
    rs_socket_t *udp = socket_new(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_IPV4);
    rs_socket_t *unix_stream = local_socket_new(RS_SOCKET_STREAM);
    rs_socket_t *closed = socket_new(RS_SOCKET_STREAM, RS_SOCKET_DOMAIN_IPV4);
    (void)state;
    assert_int_equal(rs_socket_set_tcp_nodelay(NULL, true), RS_EINVAL);
    assert_int_equal(rs_socket_set_keepalive(NULL, true, 0, 0, 0), RS_EINVAL);
    assert_int_equal(rs_socket_set_tcp_nodelay(udp, true), RS_EINVAL);
    assert_int_equal(rs_socket_set_keepalive(udp, true, 0, 0, 0), RS_EINVAL);
    if (unix_stream) {
        assert_int_equal(rs_socket_set_tcp_nodelay(unix_stream, true), RS_EINVAL);
        assert_int_equal(rs_socket_set_keepalive(unix_stream, true, 0, 0, 0), RS_EINVAL);
    }
    assert_int_equal(rs_socket_close(closed), RS_OK);
    assert_int_equal(rs_socket_set_tcp_nodelay(closed, true), RS_EBADF);
    assert_int_equal(rs_socket_set_keepalive(closed, true, 0, 0, 0), RS_EBADF);
    assert_int_equal(rs_socket_set_ttl(closed, 64), RS_EBADF);
    rs_socket_destroy(udp);
    rs_socket_destroy(unix_stream);
    rs_socket_destroy(closed);
}

/* ------------------------------------------------------------ TTL, UDP */

static void sockopt_ttl_and_hop_limit(void **state) {
    rs_socket_t *v4 = socket_new(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_IPV4);
    rs_socket_t *v6 = socket_new(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_IPV6);
    rs_socket_t *tcp = socket_new(RS_SOCKET_STREAM, RS_SOCKET_DOMAIN_IPV4);
    rs_socket_t *local = local_socket_new(RS_SOCKET_DGRAM);
    (void)state;
    assert_int_equal(rs_socket_set_ttl(v4, 17), RS_OK);
    assert_int_equal(getsockopt_int(v4, IPPROTO_IP, IP_TTL), 17);
    assert_int_equal(rs_socket_set_ttl(v6, 18), RS_OK);
    assert_int_equal(getsockopt_int(v6, IPPROTO_IPV6, IPV6_UNICAST_HOPS), 18);
    assert_int_equal(rs_socket_set_ttl(tcp, 255), RS_OK);
    assert_int_equal(getsockopt_int(tcp, IPPROTO_IP, IP_TTL), 255);
    assert_int_equal(rs_socket_set_ttl(v4, 0), RS_EINVAL);
    assert_int_equal(rs_socket_set_ttl(v4, 256), RS_EINVAL);
    if (local) {
        assert_int_equal(rs_socket_set_ttl(local, 64), RS_EINVAL);
    }
    assert_int_equal(rs_socket_set_ttl(NULL, 64), RS_EINVAL);
    rs_socket_destroy(v4);
    rs_socket_destroy(v6);
    rs_socket_destroy(tcp);
    rs_socket_destroy(local);
}

#if defined(_WIN32)
/* Not ported there: each setter makes its checks, then says RS_ENOTSUP. */
static void sockopt_multicast_and_broadcast_settings(void **state) {
    rs_socket_t *v4 = socket_new(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_IPV4);
    rs_socket_t *v6 = socket_new(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_IPV6);
    rs_endpoint_t lo4 = ip("127.0.0.1", 0);
    rs_endpoint_t g4 = ip("239.1.2.3", 0);
    (void)state;
    assert_int_equal(rs_socket_set_multicast_loop(v4, false), RS_ENOTSUP);
    assert_int_equal(rs_socket_set_multicast_loop(v6, false), RS_ENOTSUP);
    assert_int_equal(rs_socket_set_multicast_ttl(v4, 4), RS_ENOTSUP);
    assert_int_equal(rs_socket_set_multicast_ttl(v6, 5), RS_ENOTSUP);
    assert_int_equal(rs_socket_set_multicast_ttl(v4, 256), RS_EINVAL);
    assert_int_equal(rs_socket_set_multicast_interface(v4, &lo4, 0), RS_ENOTSUP);
    assert_int_equal(rs_socket_join_multicast_group(v4, &g4, NULL, 0), RS_ENOTSUP);
    assert_int_equal(rs_socket_leave_multicast_group(v4, &g4, NULL, 0), RS_ENOTSUP);
    assert_int_equal(rs_socket_set_broadcast(v4, true), RS_ENOTSUP);
    rs_socket_destroy(v4);
    rs_socket_destroy(v6);
}
#else
/* Setting these sends nothing, so it is safe on the host. */
static void sockopt_multicast_and_broadcast_settings(void **state) {
    rs_socket_t *v4 = socket_new(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_IPV4);
    rs_socket_t *v6 = socket_new(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_IPV6);
    rs_endpoint_t lo4 = ip("127.0.0.1", 0);
    struct in_addr ifaddr;
    socklen_t len = sizeof(ifaddr);
    (void)state;
    assert_int_equal(rs_socket_set_multicast_loop(v4, false), RS_OK);
    assert_int_equal(getsockopt_int(v4, IPPROTO_IP, IP_MULTICAST_LOOP) & 0xff, 0);
    assert_int_equal(rs_socket_set_multicast_loop(v4, true), RS_OK);
    assert_int_equal(getsockopt_int(v4, IPPROTO_IP, IP_MULTICAST_LOOP) & 0xff, 1);
    assert_int_equal(rs_socket_set_multicast_loop(v6, false), RS_OK);
    assert_int_equal(getsockopt_int(v6, IPPROTO_IPV6, IPV6_MULTICAST_LOOP), 0);
    assert_int_equal(rs_socket_set_multicast_ttl(v4, 4), RS_OK);
    assert_int_equal(getsockopt_int(v4, IPPROTO_IP, IP_MULTICAST_TTL) & 0xff, 4);
    assert_int_equal(rs_socket_set_multicast_ttl(v6, 5), RS_OK);
    assert_int_equal(getsockopt_int(v6, IPPROTO_IPV6, IPV6_MULTICAST_HOPS), 5);
    assert_int_equal(rs_socket_set_multicast_ttl(v4, 256), RS_EINVAL);
    assert_int_equal(rs_socket_set_multicast_interface(v4, &lo4, 0), RS_OK);
    assert_int_equal(getsockopt(rs_socket_get_fd(v4), IPPROTO_IP, IP_MULTICAST_IF, &ifaddr, &len), 0);
    assert_int_equal(ntohl(ifaddr.s_addr), 0x7f000001);
    assert_int_equal(rs_socket_set_multicast_interface(v6, NULL, if_nametoindex("lo")), RS_OK);
    assert_int_equal(getsockopt_int(v6, IPPROTO_IPV6, IPV6_MULTICAST_IF), (int)if_nametoindex("lo"));
    assert_int_equal(rs_socket_set_multicast_interface(v6, &lo4, 0), RS_EINVAL);
    assert_int_equal(rs_socket_set_broadcast(v4, true), RS_OK);
    assert_int_equal(getsockopt_int(v4, SOL_SOCKET, SO_BROADCAST), 1);
    assert_int_equal(rs_socket_set_broadcast(v4, false), RS_OK);
    assert_int_equal(getsockopt_int(v4, SOL_SOCKET, SO_BROADCAST), 0);
    assert_int_equal(rs_socket_set_broadcast(v6, true), RS_EINVAL);
    rs_socket_destroy(v4);
    rs_socket_destroy(v6);
}
#endif

/* Wrong arguments fail before any system call: nothing is joined here. */
static void sockopt_udp_options_refuse_bad_arguments(void **state) {
    rs_socket_t *v4 = socket_new(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_IPV4);
    rs_socket_t *v6 = socket_new(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_IPV6);
    rs_socket_t *tcp = socket_new(RS_SOCKET_STREAM, RS_SOCKET_DOMAIN_IPV4);
    rs_socket_t *closed = socket_new(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_IPV4);
    rs_endpoint_t g4 = ip("239.1.2.3", 0);
    rs_endpoint_t g6 = ip("ff12::1234", 0);
    rs_endpoint_t unicast = ip("127.0.0.1", 0);
    rs_endpoint_t lo6 = ip("::1", 0);
    (void)state;
    assert_int_equal(rs_socket_join_multicast_group(NULL, &g4, NULL, 0), RS_EINVAL);
    assert_int_equal(rs_socket_join_multicast_group(v4, NULL, NULL, 0), RS_EINVAL);
#if defined(_WIN32) /* the group and interface are not looked at before RS_ENOTSUP */
    (void)unicast, (void)lo6, (void)g6;
#else
    assert_int_equal(rs_socket_join_multicast_group(v4, &unicast, NULL, 0), RS_EINVAL);
    assert_int_equal(rs_socket_join_multicast_group(v4, &g6, NULL, 0), RS_EINVAL);
    assert_int_equal(rs_socket_join_multicast_group(v6, &g4, NULL, 0), RS_EINVAL);
    assert_int_equal(rs_socket_join_multicast_group(v6, &g6, &lo6, 0), RS_EINVAL);
    assert_int_equal(rs_socket_join_multicast_group(v4, &g4, &lo6, 0), RS_EINVAL);
#endif
    assert_int_equal(rs_socket_join_multicast_group(tcp, &g4, NULL, 0), RS_EINVAL);
    assert_int_equal(rs_socket_leave_multicast_group(tcp, &g4, NULL, 0), RS_EINVAL);
    assert_int_equal(rs_socket_set_multicast_loop(tcp, true), RS_EINVAL);
    assert_int_equal(rs_socket_set_multicast_ttl(tcp, 1), RS_EINVAL);
    assert_int_equal(rs_socket_set_multicast_interface(tcp, NULL, 0), RS_EINVAL);
    assert_int_equal(rs_socket_set_broadcast(tcp, true), RS_EINVAL);
    assert_int_equal(rs_socket_close(closed), RS_OK);
    assert_int_equal(rs_socket_join_multicast_group(closed, &g4, NULL, 0), RS_EBADF);
    assert_int_equal(rs_socket_set_broadcast(closed, true), RS_EBADF);
    assert_int_equal(rs_socket_set_multicast_loop(closed, true), RS_EBADF);
    rs_socket_destroy(v4);
    rs_socket_destroy(v6);
    rs_socket_destroy(tcp);
    rs_socket_destroy(closed);
}

/* ---------------------------------------------------------- wrong thread */

static void sockopt_setters_off_the_loop_thread(void **state) {
    rs_event_loop_t *loop = loop_new();
    rs_socket_t *udp = socket_new(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_IPV4);
    rs_endpoint_t g4 = ip("239.1.2.3", 0);
    int i;
    (void)state;
    /* Tied to the loop while this thread is its thread, then the loop moves
     * to its own thread: from here on, this thread is the wrong one. */
    assert_int_equal(rs_socket_assign_to_loop(udp, loop), RS_OK);
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    assert_int_equal(rs_socket_set_ttl(udp, 9), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_set_broadcast(udp, true), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_set_multicast_loop(udp, true), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_set_multicast_ttl(udp, 1), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_set_multicast_interface(udp, NULL, 0), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_join_multicast_group(udp, &g4, NULL, 0), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_leave_multicast_group(udp, &g4, NULL, 0), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_set_tcp_nodelay(udp, true), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_set_keepalive(udp, true, 0, 0, 0), RS_EWRONGTHREAD);
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    assert_int_not_equal(getsockopt_int(udp, IPPROTO_IP, IP_TTL), 9);
    rs_socket_destroy(udp);
    for (i = 0; i < 3; ++i) {
        rs_event_loop_run_once(loop, 0);
    }
    rs_event_loop_destroy(loop);
}

/* ------------------------------------------------ delivery inside a netns */

#if !defined(_WIN32) /* Linux network namespaces, and Windows has no multicast here (above) */

enum { CHILD_PASS = 0, CHILD_FAIL = 1, CHILD_NO_NETNS = 77, CHILD_NO_VETH = 78 };

#define CHILD_CHECK(cond)                                                                            \
    do {                                                                                             \
        if (!(cond)) {                                                                               \
            fprintf(stderr, "      child: %s:%d: %s\n", __FILE__, __LINE__, #cond);                  \
            return CHILD_FAIL;                                                                       \
        }                                                                                            \
    } while (0)

/* Receive one datagram on `s`, driving the loop for at most wait_ms. */
static int recv_within(rs_event_loop_t *loop, rs_socket_t *s, char *buf, size_t cap, int wait_ms) {
    uint64_t deadline = rs_clock_now_ns() + (uint64_t)wait_ms * RS_NS_PER_MS;
    for (;;) {
        rs_datagram_t d;
        int err;
        memset(&d, 0, sizeof(d));
        d.data = buf;
        d.capacity = cap;
        err = rs_socket_recv_from(s, &d);
        if (err == RS_OK) {
            return (int)d.len;
        }
        if (err != RS_EAGAIN || rs_clock_now_ns() >= deadline) {
            return -1;
        }
        rs_event_loop_run_once(loop, 10);
    }
}

static rs_socket_t *bound_udp(rs_socket_domain_t domain, const char *addr, uint32_t *port) {
    rs_socket_options_t o = {.type = RS_SOCKET_DGRAM, .domain = domain};
    rs_socket_t *s = rs_socket_new(&o, NULL);
    rs_endpoint_t local;
    rs_endpoint_t bound;
    if (!s || rs_endpoint_from_ip(&local, addr, *port) != RS_OK || rs_socket_bind(s, &local) != RS_OK ||
        rs_socket_get_bound_address(s, &bound) != RS_OK) {
        rs_socket_destroy(s);
        return NULL;
    }
    *port = bound.port;
    return s;
}

/* IPv4 multicast over lo, then broadcast to 127.255.255.255. */
static int child_ipv4_delivery(void) {
    rs_event_loop_t *loop = rs_event_loop_new(NULL, NULL);
    uint32_t port = 0;
    rs_socket_t *rx = bound_udp(RS_SOCKET_DOMAIN_IPV4, "0.0.0.0", &port);
    uint32_t tx_port = 0;
    rs_socket_t *tx = bound_udp(RS_SOCKET_DOMAIN_IPV4, "127.0.0.1", &tx_port);
    rs_endpoint_t group;
    rs_endpoint_t lo = ip("127.0.0.1", 0);
    rs_endpoint_t bcast;
    char buf[64];
    CHILD_CHECK(loop && rx && tx);
    CHILD_CHECK(rs_endpoint_from_ip(&group, "239.1.2.3", port) == RS_OK);
    CHILD_CHECK(rs_endpoint_from_ip(&bcast, "127.255.255.255", port) == RS_OK);
    CHILD_CHECK(rs_socket_assign_to_loop(rx, loop) == RS_OK);
    CHILD_CHECK(rs_socket_join_multicast_group(rx, &group, &lo, 0) == RS_OK);
    CHILD_CHECK(rs_socket_set_multicast_interface(tx, &lo, 0) == RS_OK);
    CHILD_CHECK(rs_socket_set_multicast_ttl(tx, 1) == RS_OK);
    CHILD_CHECK(rs_socket_send_to(tx, &group, rs_byte_cursor_from_cstr("mc4")) == RS_OK);
    CHILD_CHECK(recv_within(loop, rx, buf, sizeof(buf), 2000) == 3 && memcmp(buf, "mc4", 3) == 0);
    /* Left: nothing arrives. */
    CHILD_CHECK(rs_socket_leave_multicast_group(rx, &group, &lo, 0) == RS_OK);
    CHILD_CHECK(rs_socket_send_to(tx, &group, rs_byte_cursor_from_cstr("left")) == RS_OK);
    CHILD_CHECK(recv_within(loop, rx, buf, sizeof(buf), 200) < 0);
    CHILD_CHECK(rs_socket_leave_multicast_group(rx, &group, &lo, 0) == RS_EADDRNOTAVAIL);
    /* Broadcast needs SO_BROADCAST. */
    CHILD_CHECK(rs_socket_send_to(tx, &bcast, rs_byte_cursor_from_cstr("no")) == RS_EACCES);
    CHILD_CHECK(rs_socket_set_broadcast(tx, true) == RS_OK);
    CHILD_CHECK(rs_socket_send_to(tx, &bcast, rs_byte_cursor_from_cstr("bc")) == RS_OK);
    CHILD_CHECK(recv_within(loop, rx, buf, sizeof(buf), 2000) == 2 && memcmp(buf, "bc", 2) == 0);
    rs_socket_destroy(rx);
    rs_socket_destroy(tx);
    rs_event_loop_run_once(loop, 0);
    rs_event_loop_destroy(loop);
    return CHILD_PASS;
}

/* IPv6 multicast on a veth end: lo does not deliver IPv6 multicast. */
static int child_ipv6_delivery(void) {
    rs_event_loop_t *loop;
    uint32_t port = 0;
    uint32_t tx_port = 0;
    rs_socket_t *rx;
    rs_socket_t *tx;
    rs_endpoint_t group;
    uint32_t index;
    char buf[64];
    if (system("ip link add rsv0 type veth peer name rsv1 >/dev/null 2>&1 && ip link set rsv0 up && "
               "ip link set rsv1 up && ip -6 addr add fd00:5e::1/64 dev rsv0 nodad") != 0) {
        return CHILD_NO_VETH;
    }
    index = if_nametoindex("rsv0");
    loop = rs_event_loop_new(NULL, NULL);
    rx = bound_udp(RS_SOCKET_DOMAIN_IPV6, "::", &port);
    tx = bound_udp(RS_SOCKET_DOMAIN_IPV6, "::", &tx_port);
    CHILD_CHECK(loop && rx && tx && index != 0);
    CHILD_CHECK(rs_endpoint_from_ip(&group, "ff12::5e:1", port) == RS_OK);
    group.scope_id = index;
    CHILD_CHECK(rs_socket_assign_to_loop(rx, loop) == RS_OK);
    CHILD_CHECK(rs_socket_join_multicast_group(rx, &group, NULL, index) == RS_OK);
    CHILD_CHECK(rs_socket_set_multicast_interface(tx, NULL, index) == RS_OK);
    CHILD_CHECK(rs_socket_set_multicast_ttl(tx, 1) == RS_OK);
    CHILD_CHECK(rs_socket_send_to(tx, &group, rs_byte_cursor_from_cstr("mc6")) == RS_OK);
    CHILD_CHECK(recv_within(loop, rx, buf, sizeof(buf), 2000) == 3 && memcmp(buf, "mc6", 3) == 0);
    /* Multicast loop off: this host's members no longer get it (on lo it
     * would still come back, as lo's own transmission; hence the veth). */
    CHILD_CHECK(rs_socket_set_multicast_loop(tx, false) == RS_OK);
    CHILD_CHECK(rs_socket_send_to(tx, &group, rs_byte_cursor_from_cstr("off")) == RS_OK);
    CHILD_CHECK(recv_within(loop, rx, buf, sizeof(buf), 200) < 0);
    CHILD_CHECK(rs_socket_set_multicast_loop(tx, true) == RS_OK);
    CHILD_CHECK(rs_socket_leave_multicast_group(rx, &group, NULL, index) == RS_OK);
    CHILD_CHECK(rs_socket_send_to(tx, &group, rs_byte_cursor_from_cstr("left")) == RS_OK);
    CHILD_CHECK(recv_within(loop, rx, buf, sizeof(buf), 200) < 0);
    rs_socket_destroy(rx);
    rs_socket_destroy(tx);
    rs_event_loop_run_once(loop, 0);
    rs_event_loop_destroy(loop);
    return CHILD_PASS;
}

/* A private network namespace with lo up and routing 224.0.0.0/4. */
static bool netns_setup(void) {
    if (unshare(CLONE_NEWNET) != 0) {
        fprintf(stderr, "      unshare(CLONE_NEWNET): %s\n", strerror(errno));
        return false;
    }
    return system("ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo") == 0;
}

static int run_in_netns(int (*scenario)(void)) {
    int status = 0;
    uint64_t deadline = rs_clock_now_ns() + 60 * RS_NS_PER_SEC;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        _exit(netns_setup() ? scenario() : CHILD_NO_NETNS);
    }
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            break;
        }
        if (rs_clock_now_ns() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("the netns child did not finish within 60 s");
        }
        usleep(10000);
    }
    if (!WIFEXITED(status)) {
        fail_msg("the netns child died (signal %d)", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    }
    return WEXITSTATUS(status);
}

static void sockopt_ipv4_multicast_and_broadcast_delivery_in_a_netns(void **state) {
    int rc = run_in_netns(child_ipv4_delivery);
    (void)state;
    if (rc == CHILD_NO_NETNS) {
        print_message("      SKIP: network namespaces are not permitted here: IPv4 multicast/broadcast delivery "
                      "not tested\n");
        return;
    }
    assert_int_equal(rc, CHILD_PASS);
}

static void sockopt_ipv6_multicast_delivery_in_a_netns(void **state) {
    int rc = run_in_netns(child_ipv6_delivery);
    (void)state;
    if (rc == CHILD_NO_NETNS || rc == CHILD_NO_VETH) {
        print_message("      SKIP: %s: IPv6 multicast delivery not tested\n",
                      rc == CHILD_NO_NETNS ? "network namespaces are not permitted here"
                                           : "no veth pair in the namespace");
        return;
    }
    assert_int_equal(rc, CHILD_PASS);
}
#endif

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sockopt_tcp_nodelay_on_a_connected_socket),
        cmocka_unit_test(sockopt_keepalive_on_a_connected_socket),
        cmocka_unit_test(sockopt_tcp_options_refuse_other_sockets),
        cmocka_unit_test(sockopt_ttl_and_hop_limit),
        cmocka_unit_test(sockopt_multicast_and_broadcast_settings),
        cmocka_unit_test(sockopt_udp_options_refuse_bad_arguments),
        cmocka_unit_test(sockopt_setters_off_the_loop_thread),
#if !defined(_WIN32)
        cmocka_unit_test(sockopt_ipv4_multicast_and_broadcast_delivery_in_a_netns),
        cmocka_unit_test(sockopt_ipv6_multicast_delivery_in_a_netns),
#endif
    };
    return cmocka_run_group_tests_name("sockopt", tests, NULL, NULL);
}
