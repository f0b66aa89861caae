/*
 * Datagram sockets: UDP over IPv4 and IPv6, and Unix-domain DGRAM sockets.
 *
 * Covers send_to/recv_from with the source endpoint, connected UDP (async
 * on_connect, NULL destination), readable events on a bound DGRAM socket
 * (level-triggered), sendmmsg/recvmmsg batches, truncation, RS_EAGAIN on an
 * empty socket, argument and thread checks.
 *
 * Every test runs once per loop backend (names end in _epoll / _poll). Most
 * drive the loop with rs_event_loop_run_once on the test thread, which then is
 * the loop thread; the wrong-thread test runs the loop on its own thread and
 * touches loop-owned state only from tasks, waiting on a mutex-guarded latch.
 * Only 127.0.0.1, ::1 and Unix sockets are used. Every wait is bounded.
 */
#include "test_util.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h> /* getpid: mingw-w64 has it too */
#if defined(_WIN32)
/* Winsock comes with reseau.h; its sockets are closed with closesocket, and
 * reseau's are non-blocking already, so a peek needs no MSG_DONTWAIT. */
#define close_os_socket(fd) closesocket((SOCKET)(fd))
#define TEST_MSG_DONTWAIT 0
#define TEST_WOULD_BLOCK() (WSAGetLastError() == WSAEWOULDBLOCK)
#else
#include <sys/socket.h>
#define close_os_socket(fd) close(fd)
#define TEST_MSG_DONTWAIT MSG_DONTWAIT
#define TEST_WOULD_BLOCK() (errno == EAGAIN || errno == EWOULDBLOCK)
#endif

#define WAIT_NS (10 * RS_NS_PER_SEC)

/* ---------------------------------------------------------------- helpers */

/* Skips the calling test on Windows, saying why; call it first, before
 * anything is allocated. */
static void posix_only_or_skip(const char *why) {
#if defined(_WIN32)
    print_message("skipped on Windows: %s\n", why);
    skip();
#else
    (void)why;
#endif
}

static rs_event_loop_t *loop_new(rs_event_loop_backend_t b) {
    rs_event_loop_options_t opts;
    rs_event_loop_t *loop;
    int err = 12345;
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator;
    opts.backend = b;
    loop = rs_event_loop_new(&opts, &err);
    assert_non_null(loop);
    assert_int_equal(err, RS_OK);
    return loop;
}

/* run_once until *flag becomes non-zero, bounded by WAIT_NS. */
static bool run_until(rs_event_loop_t *loop, const int *flag) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    while (*flag == 0) {
        if (rs_clock_now_ns() > deadline) {
            return false;
        }
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
    }
    return true;
}

/* run_once until *counter reaches target, bounded by WAIT_NS. */
static bool run_until_count(rs_event_loop_t *loop, const size_t *counter, size_t target) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    while (*counter < target) {
        if (rs_clock_now_ns() > deadline) {
            return false;
        }
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
    }
    return true;
}

static void run_ticks(rs_event_loop_t *loop, int n) {
    int i;
    for (i = 0; i < n; ++i) {
        assert_int_equal(rs_event_loop_run_once(loop, 1), RS_OK);
    }
}

static rs_socket_t *dgram_new(rs_socket_domain_t domain, uint32_t recv_buffer_size) {
    rs_socket_options_t o;
    rs_socket_t *s;
    int err = 12345;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.type = RS_SOCKET_DGRAM;
    o.domain = domain;
    o.recv_buffer_size = recv_buffer_size;
    s = rs_socket_new(&o, &err);
    assert_non_null(s);
    assert_int_equal(err, RS_OK);
    return s;
}

/* Bind to ip:0 and return the bound endpoint (with the port the OS picked). */
static rs_endpoint_t bind_ip(rs_socket_t *s, const char *ip) {
    rs_endpoint_t ep;
    rs_endpoint_t bound;
    assert_int_equal(rs_endpoint_from_ip(&ep, ip, 0), RS_OK);
    assert_int_equal(rs_socket_bind(s, &ep), RS_OK);
    memset(&bound, 0, sizeof(bound));
    assert_int_equal(rs_socket_get_bound_address(s, &bound), RS_OK);
    assert_int_equal(bound.domain, ep.domain);
    assert_int_not_equal(bound.port, 0);
    return bound;
}

static bool ipv6_loopback_available(void) {
#if defined(_WIN32)
    SOCKET fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd == INVALID_SOCKET) {
        return false;
    }
#else
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd < 0) {
        return false;
    }
#endif
    struct sockaddr_in6 sa;
    bool ok;
    memset(&sa, 0, sizeof(sa));
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close_os_socket(fd);
    return ok;
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed) {
    size_t i;
    for (i = 0; i < n; ++i) {
        p[i] = (uint8_t)((seed * 131u + i * 7u + (i >> 8)) & 0xffu);
    }
}

static bool check_pattern(const uint8_t *p, size_t n, uint32_t seed) {
    size_t i;
    for (i = 0; i < n; ++i) {
        if (p[i] != (uint8_t)((seed * 131u + i * 7u + (i >> 8)) & 0xffu)) {
            return false;
        }
    }
    return true;
}

static rs_byte_cursor_t cur(const void *p, size_t n) {
    return rs_byte_cursor_from_array(p, n);
}

/* A receiver driven by readable events: reads up to max_per_call datagrams per
 * callback (0 = until RS_EAGAIN) with recv_from, and records them. */
#define RX_MAX 256
#define RX_DGRAM_MAX 2048

typedef struct rx_dgram {
    uint8_t data[RX_DGRAM_MAX];
    size_t len;
    rs_endpoint_t from;
    bool truncated;
} rx_dgram_t;

typedef struct rx {
    rs_socket_t *socket;
    rs_event_loop_t *loop;
    int calls;
    int error_calls;   /* callbacks with error != RS_OK */
    int bad_recv;      /* recv results other than RS_OK / RS_EAGAIN */
    int wrong_thread;  /* callbacks off the loop thread */
    int wrong_socket;
    int max_per_call;
    bool use_batch;    /* recv_batch instead of recv_from */
    size_t count;
    rx_dgram_t *dgrams; /* RX_MAX entries */
} rx_t;

static void rx_init(rx_t *r, rs_socket_t *s, rs_event_loop_t *loop) {
    memset(r, 0, sizeof(*r));
    r->socket = s;
    r->loop = loop;
    r->dgrams = (rx_dgram_t *)calloc(RX_MAX, sizeof(rx_dgram_t));
    assert_non_null(r->dgrams);
}

static void rx_cleanup(rx_t *r) {
    free(r->dgrams);
    r->dgrams = NULL;
}

static void rx_on_readable(rs_socket_t *s, int error, void *user_data) {
    rx_t *r = (rx_t *)user_data;
    int n = 0;
    r->calls++;
    if (error != RS_OK) {
        r->error_calls++;
    }
    if (s != r->socket) {
        r->wrong_socket++;
    }
    if (!rs_event_loop_is_on_loop_thread(r->loop)) {
        r->wrong_thread++;
    }
    while (r->count < RX_MAX && (r->max_per_call == 0 || n < r->max_per_call)) {
        int err;
        if (r->use_batch) {
            rs_datagram_t d[RS_DATAGRAM_BATCH_MAX];
            size_t want = RX_MAX - r->count;
            size_t got = 0;
            size_t i;
            if (want > RS_DATAGRAM_BATCH_MAX) {
                want = RS_DATAGRAM_BATCH_MAX;
            }
            memset(d, 0, sizeof(d));
            for (i = 0; i < want; ++i) {
                d[i].data = r->dgrams[r->count + i].data;
                d[i].capacity = RX_DGRAM_MAX;
            }
            err = rs_socket_recv_batch(s, d, want, &got);
            if (err == RS_OK) {
                if (got == 0 || got > want) {
                    r->bad_recv++;
                    return;
                }
                for (i = 0; i < got; ++i) {
                    rx_dgram_t *out = &r->dgrams[r->count + i];
                    out->len = d[i].len;
                    out->from = d[i].endpoint;
                    out->truncated = d[i].truncated;
                }
                r->count += got;
                n += (int)got;
                continue;
            }
        } else {
            rs_datagram_t d;
            memset(&d, 0, sizeof(d));
            d.data = r->dgrams[r->count].data;
            d.capacity = RX_DGRAM_MAX;
            err = rs_socket_recv_from(s, &d);
            if (err == RS_OK) {
                rx_dgram_t *out = &r->dgrams[r->count];
                out->len = d.len;
                out->from = d.endpoint;
                out->truncated = d.truncated;
                r->count++;
                n++;
                continue;
            }
        }
        if (err != RS_EAGAIN) {
            r->bad_recv++;
        }
        return;
    }
}

static void rx_check_clean(const rx_t *r) {
    assert_int_equal(r->error_calls, 0);
    assert_int_equal(r->bad_recv, 0);
    assert_int_equal(r->wrong_thread, 0);
    assert_int_equal(r->wrong_socket, 0);
}

/* ------------------------------------------------------- round trips (IP) */

static void round_trip_ip(rs_event_loop_backend_t b, rs_socket_domain_t domain, const char *ip) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *a = dgram_new(domain, 0);
    rs_socket_t *bsock = dgram_new(domain, 0);
    rs_endpoint_t a_ep = bind_ip(a, ip);
    rs_endpoint_t b_ep = bind_ip(bsock, ip);
    rx_t ra;
    rx_t rb;
    uint8_t msg1[512];
    uint8_t msg2[300];
    rx_init(&ra, a, loop);
    rx_init(&rb, bsock, loop);
    fill_pattern(msg1, sizeof(msg1), 1);
    fill_pattern(msg2, sizeof(msg2), 2);

    assert_int_equal(rs_socket_assign_to_loop(a, loop), RS_OK);
    assert_int_equal(rs_socket_assign_to_loop(bsock, loop), RS_OK);
    assert_ptr_equal(rs_socket_get_loop(a), loop);
    assert_int_equal(rs_socket_subscribe_to_readable_events(a, rx_on_readable, &ra), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(bsock, rx_on_readable, &rb), RS_OK);

    /* a -> b */
    assert_int_equal(rs_socket_send_to(a, &b_ep, cur(msg1, sizeof(msg1))), RS_OK);
    assert_int_equal(rb.calls, 0); /* never inline */
    assert_true(run_until_count(loop, &rb.count, 1));
    assert_int_equal(rb.dgrams[0].len, sizeof(msg1));
    assert_false(rb.dgrams[0].truncated);
    assert_true(check_pattern(rb.dgrams[0].data, sizeof(msg1), 1));
    assert_int_equal(rb.dgrams[0].from.domain, domain);
    assert_true(rs_endpoint_equal(&rb.dgrams[0].from, &a_ep));

    /* b answers to the source it saw */
    assert_int_equal(rs_socket_send_to(bsock, &rb.dgrams[0].from, cur(msg2, sizeof(msg2))), RS_OK);
    assert_true(run_until_count(loop, &ra.count, 1));
    assert_int_equal(ra.dgrams[0].len, sizeof(msg2));
    assert_true(check_pattern(ra.dgrams[0].data, sizeof(msg2), 2));
    assert_true(rs_endpoint_equal(&ra.dgrams[0].from, &b_ep));

    /* a zero-length datagram is a datagram too */
    assert_int_equal(rs_socket_send_to(a, &b_ep, cur(msg1, 0)), RS_OK);
    assert_true(run_until_count(loop, &rb.count, 2));
    assert_int_equal(rb.dgrams[1].len, 0);
    assert_true(rs_endpoint_equal(&rb.dgrams[1].from, &a_ep));

    rx_check_clean(&ra);
    rx_check_clean(&rb);
    assert_int_equal(ra.count, 1);
    assert_int_equal(rb.count, 2);

    rs_socket_destroy(a);
    rs_socket_destroy(bsock);
    run_ticks(loop, 2);
    rs_event_loop_destroy(loop);
    rx_cleanup(&ra);
    rx_cleanup(&rb);
}

static void send_to_recv_from_ipv4_round_trip(rs_event_loop_backend_t b) {
    round_trip_ip(b, RS_SOCKET_DOMAIN_IPV4, "127.0.0.1");
}
RS_TEST_PER_BACKEND(udp_, send_to_recv_from_ipv4_round_trip)

static void send_to_recv_from_ipv6_round_trip(rs_event_loop_backend_t b) {
    if (!ipv6_loopback_available()) {
        print_message("skipped: ::1 is not available on this host\n");
        skip();
    }
    round_trip_ip(b, RS_SOCKET_DOMAIN_IPV6, "::1");
}
RS_TEST_PER_BACKEND(udp_, send_to_recv_from_ipv6_round_trip)

/* Without any loop: an unassigned socket can send and receive directly. */
static void udp_unassigned_sockets_send_and_receive(void **state) {
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *bsock = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_endpoint_t a_ep = bind_ip(a, "127.0.0.1");
    rs_endpoint_t b_ep = bind_ip(bsock, "127.0.0.1");
    uint8_t buf[64];
    rs_datagram_t d;
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    int err;
    (void)state;
    assert_null(rs_socket_get_loop(a));
    assert_int_equal(rs_socket_send_to(a, &b_ep, rs_byte_cursor_from_cstr("hello")), RS_OK);
    do {
        memset(&d, 0, sizeof(d));
        d.data = buf;
        d.capacity = sizeof(buf);
        err = rs_socket_recv_from(bsock, &d);
        if (err == RS_EAGAIN) {
            rs_thread_sleep_ns(RS_NS_PER_MS);
        }
    } while (err == RS_EAGAIN && rs_clock_now_ns() < deadline);
    assert_int_equal(err, RS_OK);
    assert_int_equal(d.len, 5);
    assert_memory_equal(buf, "hello", 5);
    assert_true(rs_endpoint_equal(&d.endpoint, &a_ep));
    rs_socket_destroy(a);
    rs_socket_destroy(bsock);
}

/* ------------------------------------------------------------ connected UDP */

typedef struct conn_rec {
    int calls;
    int error;
    rs_socket_t *socket;
    bool on_loop_thread;
    rs_event_loop_t *loop;
} conn_rec_t;

static void conn_rec_cb(rs_socket_t *s, int error, void *user_data) {
    conn_rec_t *c = (conn_rec_t *)user_data;
    c->calls++;
    c->error = error;
    c->socket = s;
    c->on_loop_thread = rs_event_loop_is_on_loop_thread(c->loop);
}

static void connected_socket_sends_without_destination(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *bsock = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *c = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_endpoint_t a_ep = bind_ip(a, "127.0.0.1");
    rs_endpoint_t b_ep = bind_ip(bsock, "127.0.0.1");
    rs_endpoint_t remote;
    conn_rec_t cr;
    rx_t ra;
    rx_t rb;
    int done = 0;
    memset(&cr, 0, sizeof(cr));
    cr.loop = loop;
    (void)bind_ip(c, "127.0.0.1");
    rx_init(&ra, a, loop);
    rx_init(&rb, bsock, loop);

    assert_int_equal(rs_socket_get_remote_address(a, &remote), RS_ENOTCONN);
    assert_int_equal(rs_socket_connect(a, &b_ep, loop, conn_rec_cb, &cr), RS_OK);
    assert_int_equal(cr.calls, 0); /* "connects" at once, but reports later */
    assert_ptr_equal(rs_socket_get_loop(a), loop);
    {
        const int *flag = &cr.calls;
        assert_true(run_until(loop, flag));
    }
    run_ticks(loop, 3);
    assert_int_equal(cr.calls, 1); /* exactly once */
    assert_int_equal(cr.error, RS_OK);
    assert_ptr_equal(cr.socket, a);
    assert_true(cr.on_loop_thread);
    assert_int_equal(rs_socket_get_remote_address(a, &remote), RS_OK);
    assert_true(rs_endpoint_equal(&remote, &b_ep));

    assert_int_equal(rs_socket_assign_to_loop(bsock, loop), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(a, rx_on_readable, &ra), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(bsock, rx_on_readable, &rb), RS_OK);

    /* NULL destination goes to the connected peer */
    assert_int_equal(rs_socket_send_to(a, NULL, rs_byte_cursor_from_cstr("ping")), RS_OK);
    assert_true(run_until_count(loop, &rb.count, 1));
    assert_int_equal(rb.dgrams[0].len, 4);
    assert_memory_equal(rb.dgrams[0].data, "ping", 4);
    assert_true(rs_endpoint_equal(&rb.dgrams[0].from, &a_ep));

    /* the peer's answer arrives */
    assert_int_equal(rs_socket_send_to(bsock, &a_ep, rs_byte_cursor_from_cstr("pong")), RS_OK);
    assert_true(run_until_count(loop, &ra.count, 1));
    assert_int_equal(ra.dgrams[0].len, 4);
    assert_memory_equal(ra.dgrams[0].data, "pong", 4);
    assert_true(rs_endpoint_equal(&ra.dgrams[0].from, &b_ep));

    /* a batch on a connected socket goes to the peer too (endpoints ignored) */
    {
        rs_datagram_t d[2];
        size_t sent = 99;
        memset(d, 0, sizeof(d));
        d[0].data = (void *)(uintptr_t)"one";
        d[0].len = 3;
        d[0].endpoint = a_ep; /* ignored once connected */
        d[1].data = (void *)(uintptr_t)"two";
        d[1].len = 3;
        d[1].endpoint = a_ep;
        assert_int_equal(rs_socket_send_batch(a, d, 2, &sent), RS_OK);
        assert_int_equal(sent, 2);
        assert_true(run_until_count(loop, &rb.count, 3));
        assert_memory_equal(rb.dgrams[1].data, "one", 3);
        assert_memory_equal(rb.dgrams[2].data, "two", 3);
    }

    /* a connected UDP socket only hears from its peer: c's datagram is filtered */
    assert_int_equal(rs_socket_send_to(c, &a_ep, rs_byte_cursor_from_cstr("intruder")), RS_OK);
    assert_int_equal(rs_socket_send_to(bsock, &a_ep, rs_byte_cursor_from_cstr("last")), RS_OK);
    assert_true(run_until_count(loop, &ra.count, 2));
    run_ticks(loop, 3);
    assert_int_equal(ra.count, 2);
    assert_memory_equal(ra.dgrams[1].data, "last", 4);

    rx_check_clean(&ra);
    rx_check_clean(&rb);
    (void)done;
    rs_socket_destroy(a);
    rs_socket_destroy(bsock);
    rs_socket_destroy(c);
    run_ticks(loop, 2);
    assert_int_equal(cr.calls, 1);
    rs_event_loop_destroy(loop);
    rx_cleanup(&ra);
    rx_cleanup(&rb);
}
RS_TEST_PER_BACKEND(udp_, connected_socket_sends_without_destination)

static void unconnected_send_without_destination_is_enotconn(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *u = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_datagram_t d;
    size_t sent = 99;
    /* unbound, unassigned */
    assert_int_equal(rs_socket_send_to(u, NULL, rs_byte_cursor_from_cstr("x")), RS_ENOTCONN);
    /* bound and assigned, still not connected */
    (void)bind_ip(a, "127.0.0.1");
    assert_int_equal(rs_socket_assign_to_loop(a, loop), RS_OK);
    assert_int_equal(rs_socket_send_to(a, NULL, rs_byte_cursor_from_cstr("x")), RS_ENOTCONN);
    /* send_batch takes each destination from the datagram: one of another
     * domain is refused before anything is sent */
    memset(&d, 0, sizeof(d));
    d.data = (void *)(uintptr_t)"x";
    d.len = 1;
    assert_int_equal(rs_endpoint_from_local(&d.endpoint, "/nonexistent/x.sock"), RS_OK);
    assert_int_equal(rs_socket_send_batch(a, &d, 1, &sent), RS_EINVAL);
    assert_int_equal(sent, 0);
    rs_socket_destroy(a);
    rs_socket_destroy(u);
    run_ticks(loop, 1);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(udp_, unconnected_send_without_destination_is_enotconn)

/* ------------------------------------------------------------ readable events */

static void readable_events_are_level_triggered(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *bsock = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_endpoint_t b_ep = bind_ip(bsock, "127.0.0.1");
    rx_t rb;
    int i;
    int calls_before;
    rx_init(&rb, bsock, loop);
    rb.max_per_call = 1; /* leave the rest queued: level-triggered must call again */
    (void)bind_ip(a, "127.0.0.1");

    /* subscribing before assigning to a loop is refused */
    assert_int_equal(rs_socket_subscribe_to_readable_events(bsock, rx_on_readable, &rb), RS_ESTATE);
    assert_int_equal(rs_socket_assign_to_loop(bsock, loop), RS_OK);
    assert_int_equal(rs_socket_assign_to_loop(bsock, loop), RS_EBUSY);
    assert_int_equal(rs_socket_subscribe_to_readable_events(bsock, rx_on_readable, &rb), RS_OK);

    /* nothing waiting: no callbacks */
    run_ticks(loop, 5);
    assert_int_equal(rb.calls, 0);

    for (i = 0; i < 5; ++i) {
        uint8_t m[16];
        fill_pattern(m, sizeof(m), (uint32_t)i);
        assert_int_equal(rs_socket_send_to(a, &b_ep, cur(m, sizeof(m))), RS_OK);
    }
    assert_true(run_until_count(loop, &rb.count, 5));
    assert_true(rb.calls >= 5);
    for (i = 0; i < 5; ++i) {
        assert_int_equal(rb.dgrams[i].len, 16);
        assert_true(check_pattern(rb.dgrams[i].data, 16, (uint32_t)i));
    }

    /* drained: no more callbacks */
    calls_before = rb.calls;
    run_ticks(loop, 5);
    assert_true(rb.calls <= calls_before + 1); /* at most one that finds RS_EAGAIN */
    calls_before = rb.calls;
    run_ticks(loop, 5);
    assert_int_equal(rb.calls, calls_before);

    /* paused: data waits; resumed: it is delivered */
    assert_int_equal(rs_socket_pause_reading(bsock), RS_OK);
    assert_int_equal(rs_socket_send_to(a, &b_ep, rs_byte_cursor_from_cstr("later")), RS_OK);
    run_ticks(loop, 5);
    assert_int_equal(rb.calls, calls_before);
    assert_int_equal(rs_socket_resume_reading(bsock), RS_OK);
    assert_true(run_until_count(loop, &rb.count, 6));
    assert_int_equal(rb.dgrams[5].len, 5);
    assert_memory_equal(rb.dgrams[5].data, "later", 5);

    rx_check_clean(&rb);
    rs_socket_destroy(a);
    rs_socket_destroy(bsock);
    run_ticks(loop, 2);
    rs_event_loop_destroy(loop);
    rx_cleanup(&rb);
}
RS_TEST_PER_BACKEND(udp_, readable_events_are_level_triggered)

/* Destroying a subscribed socket inside its own readable callback is safe. */
typedef struct destroy_in_cb {
    rs_socket_t *socket;
    int calls;
} destroy_in_cb_t;

static void destroy_in_cb_fn(rs_socket_t *s, int error, void *user_data) {
    destroy_in_cb_t *d = (destroy_in_cb_t *)user_data;
    (void)error;
    d->calls++;
    rs_socket_destroy(s);
    d->socket = NULL;
}

static void destroy_inside_readable_callback(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *bsock = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_endpoint_t b_ep = bind_ip(bsock, "127.0.0.1");
    destroy_in_cb_t d;
    int i;
    memset(&d, 0, sizeof(d));
    d.socket = bsock;
    assert_int_equal(rs_socket_assign_to_loop(bsock, loop), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(bsock, destroy_in_cb_fn, &d), RS_OK);
    for (i = 0; i < 3; ++i) {
        assert_int_equal(rs_socket_send_to(a, &b_ep, rs_byte_cursor_from_cstr("x")), RS_OK);
    }
    assert_true(run_until(loop, &d.calls));
    run_ticks(loop, 5);
    assert_int_equal(d.calls, 1);
    assert_null(d.socket);
    rs_socket_destroy(a);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(udp_, destroy_inside_readable_callback)

/* ------------------------------------------------------------------ batches */

#define BATCH_COUNT 200
#define BATCH_LEN 100

static void send_batch_200_and_recv_batch(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    /* a big receive buffer, so that loopback does not drop any of the 200 */
    rs_socket_t *bsock = dgram_new(RS_SOCKET_DOMAIN_IPV4, 2u * 1024u * 1024u);
    rs_endpoint_t a_ep = bind_ip(a, "127.0.0.1");
    rs_endpoint_t b_ep = bind_ip(bsock, "127.0.0.1");
    rs_datagram_t *out = (rs_datagram_t *)calloc(BATCH_COUNT, sizeof(rs_datagram_t));
    uint8_t(*payload)[BATCH_LEN] = (uint8_t(*)[BATCH_LEN])calloc(BATCH_COUNT, BATCH_LEN);
    bool seen[BATCH_COUNT];
    size_t total_sent = 0;
    size_t i;
    int attempts = 0;
    rx_t rb;
    assert_non_null(out);
    assert_non_null(payload);
    memset(seen, 0, sizeof(seen));
    rx_init(&rb, bsock, loop);
    rb.use_batch = true;

    for (i = 0; i < BATCH_COUNT; ++i) {
        fill_pattern(payload[i], BATCH_LEN, (uint32_t)i);
        payload[i][0] = (uint8_t)(i & 0xff);
        payload[i][1] = (uint8_t)(i >> 8);
        out[i].data = payload[i];
        out[i].len = BATCH_LEN;
        out[i].endpoint = b_ep;
    }
    assert_int_equal(rs_socket_assign_to_loop(a, loop), RS_OK);
    assert_int_equal(rs_socket_assign_to_loop(bsock, loop), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(bsock, rx_on_readable, &rb), RS_OK);

    /* one call for all 200; the kernel may take fewer (partial count, RS_OK) */
    while (total_sent < BATCH_COUNT && attempts < 1000) {
        size_t sent = 12345;
        int err = rs_socket_send_batch(a, out + total_sent, BATCH_COUNT - total_sent, &sent);
        if (attempts == 0) {
            assert_int_equal(err, RS_OK);
        }
        if (err == RS_OK) {
            assert_true(sent > 0 && sent <= BATCH_COUNT - total_sent);
            total_sent += sent;
        } else {
            assert_int_equal(err, RS_EAGAIN);
            assert_int_equal(sent, 0);
            run_ticks(loop, 1);
        }
        attempts++;
    }
    assert_int_equal(total_sent, BATCH_COUNT);

    assert_true(run_until_count(loop, &rb.count, BATCH_COUNT));
    run_ticks(loop, 3);
    assert_int_equal(rb.count, BATCH_COUNT);
    rx_check_clean(&rb);
    for (i = 0; i < BATCH_COUNT; ++i) {
        const rx_dgram_t *d = &rb.dgrams[i];
        size_t idx;
        assert_int_equal(d->len, BATCH_LEN);
        assert_false(d->truncated);
        assert_true(rs_endpoint_equal(&d->from, &a_ep));
        idx = (size_t)d->data[0] | ((size_t)d->data[1] << 8);
        assert_true(idx < BATCH_COUNT);
        assert_false(seen[idx]);
        seen[idx] = true;
        assert_memory_equal(d->data, payload[idx], BATCH_LEN);
    }

    /* recv_batch never returns more than RS_DATAGRAM_BATCH_MAX per call, and
     * count/received must be valid */
    {
        rs_datagram_t d[1];
        size_t got = 7;
        uint8_t buf[8];
        memset(d, 0, sizeof(d));
        d[0].data = buf;
        d[0].capacity = sizeof(buf);
        assert_int_equal(rs_socket_recv_batch(bsock, d, 1, NULL), RS_EINVAL);
        assert_int_equal(rs_socket_send_batch(a, out, 1, NULL), RS_EINVAL);
        assert_int_equal(rs_socket_recv_batch(bsock, d, 1, &got), RS_EAGAIN);
        assert_int_equal(got, 0);
    }

    rs_socket_destroy(a);
    rs_socket_destroy(bsock);
    run_ticks(loop, 2);
    rs_event_loop_destroy(loop);
    rx_cleanup(&rb);
    free(out);
    free(payload);
}
RS_TEST_PER_BACKEND(udp_, send_batch_200_and_recv_batch)

/* Many datagrams in one readable callback: one recv_batch call returns up to
 * RS_DATAGRAM_BATCH_MAX, the second call the rest. */
static void udp_recv_batch_caps_at_batch_max(void **state) {
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *bsock = dgram_new(RS_SOCKET_DOMAIN_IPV4, 1024u * 1024u);
    rs_endpoint_t b_ep = bind_ip(bsock, "127.0.0.1");
    rs_datagram_t send[RS_DATAGRAM_BATCH_MAX + 6];
    rs_datagram_t recv[RS_DATAGRAM_BATCH_MAX + 6];
    uint8_t bufs[RS_DATAGRAM_BATCH_MAX + 6][8];
    size_t n = RS_DATAGRAM_BATCH_MAX + 6;
    size_t sent = 0;
    size_t got = 0;
    size_t total = 0;
    size_t i;
    int tries = 0;
    (void)state;
    memset(send, 0, sizeof(send));
    for (i = 0; i < n; ++i) {
        send[i].data = (void *)(uintptr_t)"datagram";
        send[i].len = 8;
        send[i].endpoint = b_ep;
    }
    assert_int_equal(rs_socket_send_batch(a, send, n, &sent), RS_OK);
    assert_int_equal(sent, n);
    while (total < n && tries++ < 1000) {
        int err;
        memset(recv, 0, sizeof(recv));
        for (i = 0; i < n; ++i) {
            recv[i].data = bufs[i];
            recv[i].capacity = sizeof(bufs[i]);
        }
        err = rs_socket_recv_batch(bsock, recv, n, &got);
        if (err == RS_EAGAIN) {
            rs_thread_sleep_ns(RS_NS_PER_MS);
            continue;
        }
        assert_int_equal(err, RS_OK);
        assert_true(got > 0 && got <= RS_DATAGRAM_BATCH_MAX);
        for (i = 0; i < got; ++i) {
            assert_int_equal(recv[i].len, 8);
            assert_memory_equal(bufs[i], "datagram", 8);
        }
        total += got;
    }
    assert_int_equal(total, n);
    rs_socket_destroy(a);
    rs_socket_destroy(bsock);
}

/* The batch calls give the same counts with sendmmsg/recvmmsg and with one
 * sendmsg/recvmsg per datagram (the RESEAU_TEST_PORTABLE_POSIX build): over
 * Unix datagram sockets, where a send is in the receiver's queue when it
 * returns, so every count is exact. Also: both fds are non-blocking and
 * close-on-exec. */
static void udp_batch_counts_are_exact_including_partial_batches(void **state) {
    posix_only_or_skip("no Unix-domain sockets on Windows yet (RS_ENOTSUP)");
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_LOCAL, 0);
    rs_socket_t *bsock = dgram_new(RS_SOCKET_DOMAIN_LOCAL, 0);
    char a_path[64];
    char b_path[64];
    rs_endpoint_t a_ep;
    rs_endpoint_t b_ep;
    rs_datagram_t out[5];
    rs_datagram_t in[8];
    uint8_t bufs[8][4];
    static const char *const payload[] = {"d0", "d1", "d2", "d3", "d4"};
    size_t n = 99;
    size_t i;
    (void)state;
    snprintf(a_path, sizeof(a_path), "/tmp/rs-udp-batch-%ld-a.sock", (long)getpid());
    snprintf(b_path, sizeof(b_path), "/tmp/rs-udp-batch-%ld-b.sock", (long)getpid());
    unlink(a_path);
    unlink(b_path);
    assert_int_equal(rs_endpoint_from_local(&a_ep, a_path), RS_OK);
    assert_int_equal(rs_endpoint_from_local(&b_ep, b_path), RS_OK);
    assert_int_equal(rs_socket_bind(a, &a_ep), RS_OK);
    assert_int_equal(rs_socket_bind(bsock, &b_ep), RS_OK);
#if !defined(_WIN32) /* skipped there, above */
    rs_test_assert_fd_nonblocking_cloexec(rs_socket_get_fd(a));
    rs_test_assert_fd_nonblocking_cloexec(rs_socket_get_fd(bsock));
#endif
    memset(out, 0, sizeof(out));
    for (i = 0; i < 5; ++i) {
        out[i].data = (void *)(uintptr_t)payload[i];
        out[i].len = 2;
        out[i].endpoint = b_ep;
    }
    memset(in, 0, sizeof(in));
    for (i = 0; i < 8; ++i) {
        in[i].data = bufs[i];
        in[i].capacity = sizeof(bufs[i]);
    }

    assert_int_equal(rs_socket_send_batch(a, out, 5, &n), RS_OK);
    assert_int_equal(n, 5);
    /* 3 of 5, then the 2 left of a batch of 8, in order, then none */
    assert_int_equal(rs_socket_recv_batch(bsock, in, 3, &n), RS_OK);
    assert_int_equal(n, 3);
    assert_int_equal(rs_socket_recv_batch(bsock, in + 3, 8 - 3, &n), RS_OK);
    assert_int_equal(n, 2);
    for (i = 0; i < 5; ++i) {
        assert_int_equal(in[i].len, 2);
        assert_memory_equal(bufs[i], payload[i], 2);
        assert_false(in[i].truncated);
        assert_string_equal(in[i].endpoint.path, a_path);
    }
    assert_int_equal(rs_socket_recv_batch(bsock, in, 8, &n), RS_EAGAIN);
    assert_int_equal(n, 0);

    /* A buffer missing anywhere in the batch: RS_EINVAL before anything is
     * received, so nothing is lost. */
    assert_int_equal(rs_socket_send_batch(a, out, 2, &n), RS_OK);
    assert_int_equal(n, 2);
    in[1].capacity = 0;
    assert_int_equal(rs_socket_recv_batch(bsock, in, 8, &n), RS_EINVAL);
    assert_int_equal(n, 0);
    in[1].capacity = sizeof(bufs[1]);
    assert_int_equal(rs_socket_recv_batch(bsock, in, 0, &n), RS_EINVAL);
    assert_int_equal(rs_socket_recv_batch(bsock, in, 8, &n), RS_OK);
    assert_int_equal(n, 2);

    /* A send batch with a wrong-domain datagram third: the two before it. */
    assert_int_equal(rs_endpoint_from_ip(&out[2].endpoint, "127.0.0.1", 9), RS_OK);
    assert_int_equal(rs_socket_send_batch(a, out, 5, &n), RS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rs_socket_recv_batch(bsock, in, 8, &n), RS_OK);
    assert_int_equal(n, 2);

    rs_socket_destroy(a);
    rs_socket_destroy(bsock);
    unlink(a_path);
    unlink(b_path);
}

/* --------------------------------------------------------------- truncation */

/* Winsock fails a 1-byte peek at a longer datagram (WSAEMSGSIZE), which
 * still says one waits; POSIX truncates and succeeds. */
static bool peek_truncated(void) {
#if defined(_WIN32)
    return WSAGetLastError() == WSAEMSGSIZE;
#else
    return false;
#endif
}

/* Wait (bounded) until `s` has a datagram waiting, by peeking at its fd. */
static void wait_for_datagram(rs_socket_t *s) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    char c;
    while (recv(rs_socket_get_fd(s), &c, 1, MSG_PEEK | TEST_MSG_DONTWAIT) < 0 && !peek_truncated()) {
        assert_true(TEST_WOULD_BLOCK());
        assert_true(rs_clock_now_ns() < deadline);
        rs_thread_sleep_ns(RS_NS_PER_MS);
    }
}

/* Like wait_for_datagram, but gives up quietly after a short while. */
static void wait_for_datagram_or_timeout(rs_socket_t *s) {
    uint64_t deadline = rs_clock_now_ns() + 200 * RS_NS_PER_MS;
    char c;
    while (recv(rs_socket_get_fd(s), &c, 1, MSG_PEEK | TEST_MSG_DONTWAIT) < 0 && !peek_truncated() &&
           rs_clock_now_ns() < deadline) {
        rs_thread_sleep_ns(RS_NS_PER_MS);
    }
}

static void recv_from_truncates_long_datagram(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *bsock = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_endpoint_t a_ep = bind_ip(a, "127.0.0.1");
    rs_endpoint_t b_ep = bind_ip(bsock, "127.0.0.1");
    uint8_t big[1000];
    uint8_t small[100];
    rs_datagram_t d;
    fill_pattern(big, sizeof(big), 9);
    assert_int_equal(rs_socket_assign_to_loop(a, loop), RS_OK);
    assert_int_equal(rs_socket_assign_to_loop(bsock, loop), RS_OK);

    assert_int_equal(rs_socket_send_to(a, &b_ep, cur(big, sizeof(big))), RS_OK);
    assert_int_equal(rs_socket_send_to(a, &b_ep, cur(big, 50)), RS_OK);
    wait_for_datagram(bsock);

    memset(&d, 0, sizeof(d));
    memset(small, 0, sizeof(small));
    d.data = small;
    d.capacity = sizeof(small);
    assert_int_equal(rs_socket_recv_from(bsock, &d), RS_OK);
    assert_true(d.truncated);
    assert_int_equal(d.len, 100);
    assert_memory_equal(small, big, 100);
    assert_true(rs_endpoint_equal(&d.endpoint, &a_ep));

    /* the rest of the long datagram is gone; the next one is whole */
    wait_for_datagram(bsock);
    memset(&d, 0, sizeof(d));
    d.data = small;
    d.capacity = sizeof(small);
    d.truncated = true; /* must be reset */
    assert_int_equal(rs_socket_recv_from(bsock, &d), RS_OK);
    assert_false(d.truncated);
    assert_int_equal(d.len, 50);
    assert_memory_equal(small, big, 50);

    memset(&d, 0, sizeof(d));
    d.data = small;
    d.capacity = sizeof(small);
    assert_int_equal(rs_socket_recv_from(bsock, &d), RS_EAGAIN);

    rs_socket_destroy(a);
    rs_socket_destroy(bsock);
    run_ticks(loop, 1);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(udp_, recv_from_truncates_long_datagram)

static void recv_batch_truncates_long_datagram(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *bsock = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_endpoint_t a_ep = bind_ip(a, "127.0.0.1");
    rs_endpoint_t b_ep = bind_ip(bsock, "127.0.0.1");
    uint8_t big[1000];
    uint8_t small[3][100];
    rs_datagram_t d[3];
    size_t total = 0;
    size_t i;
    int tries = 0;
    fill_pattern(big, sizeof(big), 11);
    assert_int_equal(rs_socket_assign_to_loop(a, loop), RS_OK);
    assert_int_equal(rs_socket_assign_to_loop(bsock, loop), RS_OK);

    assert_int_equal(rs_socket_send_to(a, &b_ep, cur(big, sizeof(big))), RS_OK);
    assert_int_equal(rs_socket_send_to(a, &b_ep, cur(big, 50)), RS_OK);
    assert_int_equal(rs_socket_send_to(a, &b_ep, cur(big + 1, 100)), RS_OK);

    memset(d, 0, sizeof(d));
    for (i = 0; i < 3; ++i) {
        d[i].data = small[i];
        d[i].capacity = sizeof(small[i]);
        d[i].truncated = true; /* must be reset where the datagram fits */
    }
    /* usually all three in one call; loop in case they arrive one by one */
    while (total < 3 && tries++ < 1000) {
        size_t got = 0;
        int err;
        wait_for_datagram(bsock);
        err = rs_socket_recv_batch(bsock, d + total, 3 - total, &got);
        assert_int_equal(err, RS_OK);
        assert_true(got >= 1 && got <= 3 - total);
        total += got;
    }
    assert_int_equal(total, 3);
    assert_true(d[0].truncated);
    assert_int_equal(d[0].len, 100);
    assert_memory_equal(small[0], big, 100);
    assert_false(d[1].truncated);
    assert_int_equal(d[1].len, 50);
    assert_memory_equal(small[1], big, 50);
    assert_false(d[2].truncated); /* exactly the capacity is not truncated */
    assert_int_equal(d[2].len, 100);
    assert_memory_equal(small[2], big + 1, 100);
    for (i = 0; i < 3; ++i) {
        assert_true(rs_endpoint_equal(&d[i].endpoint, &a_ep));
    }

    rs_socket_destroy(a);
    rs_socket_destroy(bsock);
    run_ticks(loop, 1);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(udp_, recv_batch_truncates_long_datagram)

/* ------------------------------------------------------------ error results */

static void recv_on_empty_socket_is_eagain(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *s = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *u = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    uint8_t buf[64];
    rs_datagram_t d[2];
    size_t got = 99;
    memset(d, 0, sizeof(d));
    d[0].data = buf;
    d[0].capacity = 32;
    d[1].data = buf + 32;
    d[1].capacity = 32;
    (void)bind_ip(s, "127.0.0.1");

    /* unassigned */
    assert_int_equal(rs_socket_recv_from(s, &d[0]), RS_EAGAIN);
    assert_int_equal(rs_socket_recv_batch(s, d, 2, &got), RS_EAGAIN);
    assert_int_equal(got, 0);
    /* never bound either */
    assert_int_equal(rs_socket_recv_from(u, &d[0]), RS_EAGAIN);
    /* assigned to a loop */
    assert_int_equal(rs_socket_assign_to_loop(s, loop), RS_OK);
    run_ticks(loop, 2);
    assert_int_equal(rs_socket_recv_from(s, &d[0]), RS_EAGAIN);
    got = 99;
    assert_int_equal(rs_socket_recv_batch(s, d, 2, &got), RS_EAGAIN);
    assert_int_equal(got, 0);

    /* bad receive buffers */
    d[0].capacity = 0;
    assert_int_equal(rs_socket_recv_from(s, &d[0]), RS_EINVAL);
    assert_int_equal(rs_socket_recv_from(s, NULL), RS_EINVAL);

    rs_socket_destroy(s);
    rs_socket_destroy(u);
    run_ticks(loop, 1);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(udp_, recv_on_empty_socket_is_eagain)

static void send_to_wrong_domain_is_einval(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *v4 = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *sink = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_endpoint_t sink_ep = bind_ip(sink, "127.0.0.1");
    rs_endpoint_t v6_ep;
    rs_endpoint_t local_ep;
    rs_datagram_t d;
    uint8_t buf[16];
    size_t sent = 99;
    (void)bind_ip(v4, "127.0.0.1");
    assert_int_equal(rs_endpoint_from_ip(&v6_ep, "::1", sink_ep.port), RS_OK);
    assert_int_equal(rs_endpoint_from_local(&local_ep, "/tmp/rs-test-udp-none.sock"), RS_OK);
    assert_int_equal(rs_socket_assign_to_loop(v4, loop), RS_OK);

    assert_int_equal(rs_socket_send_to(v4, &v6_ep, rs_byte_cursor_from_cstr("x")), RS_EINVAL);
    assert_int_equal(rs_socket_send_to(v4, &local_ep, rs_byte_cursor_from_cstr("x")), RS_EINVAL);
    memset(&d, 0, sizeof(d));
    d.data = (void *)(uintptr_t)"x";
    d.len = 1;
    d.endpoint = v6_ep;
    assert_int_equal(rs_socket_send_batch(v4, &d, 1, &sent), RS_EINVAL);
    assert_int_equal(sent, 0);
    /* nothing went out */
    memset(&d, 0, sizeof(d));
    d.data = buf;
    d.capacity = sizeof(buf);
    assert_int_equal(rs_socket_recv_from(sink, &d), RS_EAGAIN);
    /* connect checks the domain too */
    {
        conn_rec_t cr;
        memset(&cr, 0, sizeof(cr));
        cr.loop = loop;
        assert_int_equal(rs_socket_connect(v4, &v6_ep, loop, conn_rec_cb, &cr), RS_EINVAL);
        run_ticks(loop, 2);
        assert_int_equal(cr.calls, 0);
    }

    if (ipv6_loopback_available()) {
        rs_socket_t *v6 = dgram_new(RS_SOCKET_DOMAIN_IPV6, 0);
        (void)bind_ip(v6, "::1");
        assert_int_equal(rs_socket_send_to(v6, &sink_ep, rs_byte_cursor_from_cstr("x")), RS_EINVAL);
        rs_socket_destroy(v6);
    }

    rs_socket_destroy(v4);
    rs_socket_destroy(sink);
    run_ticks(loop, 1);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(udp_, send_to_wrong_domain_is_einval)

typedef struct write_rec {
    int calls;
} write_rec_t;

static void write_rec_cb(rs_socket_t *s, int error, size_t bytes_written, void *user_data) {
    write_rec_t *w = (write_rec_t *)user_data;
    (void)s;
    (void)error;
    (void)bytes_written;
    w->calls++;
}

static void write_on_dgram_socket_is_einval(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *bsock = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_endpoint_t b_ep = bind_ip(bsock, "127.0.0.1");
    rs_socket_t *stream;
    rs_socket_options_t o;
    write_rec_t w;
    conn_rec_t cr;
    uint8_t buf[8];
    rs_datagram_t d;
    int err = 0;
    memset(&w, 0, sizeof(w));
    memset(&cr, 0, sizeof(cr));
    cr.loop = loop;
    (void)bind_ip(a, "127.0.0.1");

    /* unassigned */
    assert_int_equal(rs_socket_write(a, rs_byte_cursor_from_cstr("x"), write_rec_cb, &w), RS_EINVAL);
    /* connected DGRAM */
    assert_int_equal(rs_socket_connect(a, &b_ep, loop, conn_rec_cb, &cr), RS_OK);
    assert_true(run_until(loop, &cr.calls));
    assert_int_equal(cr.error, RS_OK);
    assert_int_equal(rs_socket_write(a, rs_byte_cursor_from_cstr("x"), write_rec_cb, &w), RS_EINVAL);
    run_ticks(loop, 3);
    assert_int_equal(w.calls, 0); /* an error return never invokes the callback */
    assert_int_equal(rs_socket_get_pending_write_bytes(a), 0);
    memset(&d, 0, sizeof(d));
    d.data = buf;
    d.capacity = sizeof(buf);
    assert_int_equal(rs_socket_recv_from(bsock, &d), RS_EAGAIN);

    /* and the datagram calls on a STREAM socket are RS_EINVAL */
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    stream = rs_socket_new(&o, &err);
    assert_non_null(stream);
    assert_int_equal(rs_socket_send_to(stream, &b_ep, rs_byte_cursor_from_cstr("x")), RS_EINVAL);
    assert_int_equal(rs_socket_recv_from(stream, &d), RS_EINVAL);
    rs_socket_destroy(stream);

    rs_socket_destroy(a);
    rs_socket_destroy(bsock);
    run_ticks(loop, 2);
    assert_int_equal(cr.calls, 1);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(udp_, write_on_dgram_socket_is_einval)

/* Operations on a closed DGRAM socket fail cleanly. */
static void udp_closed_socket_rejects_datagram_calls(void **state) {
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *bsock = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_endpoint_t b_ep = bind_ip(bsock, "127.0.0.1");
    rs_datagram_t d;
    uint8_t buf[8];
    (void)state;
    assert_int_equal(rs_socket_close(a), RS_OK);
    assert_false(rs_socket_is_open(a));
    assert_int_equal(rs_socket_close(a), RS_OK); /* idempotent */
    assert_int_equal(rs_socket_get_fd(a), -1);
    assert_int_not_equal(rs_socket_send_to(a, &b_ep, rs_byte_cursor_from_cstr("x")), RS_OK);
    memset(&d, 0, sizeof(d));
    d.data = buf;
    d.capacity = sizeof(buf);
    assert_int_not_equal(rs_socket_recv_from(a, &d), RS_OK);
    assert_int_not_equal(rs_socket_recv_from(a, &d), RS_EAGAIN);
    rs_socket_destroy(a);
    rs_socket_destroy(bsock);
}

/* ------------------------------------------------------------- wrong thread */

typedef struct wt_latch {
    rs_mutex_t mutex;
    rs_condvar_t cond;
    int count;
} wt_latch_t;

static void wt_latch_add(wt_latch_t *l) {
    rs_mutex_lock(&l->mutex);
    l->count++;
    rs_condvar_broadcast(&l->cond);
    rs_mutex_unlock(&l->mutex);
}

static bool wt_latch_wait(wt_latch_t *l, int target) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    bool ok;
    rs_mutex_lock(&l->mutex);
    while (l->count < target) {
        if (rs_condvar_wait_until(&l->cond, &l->mutex, deadline) == RS_ETIMEDOUT) {
            break;
        }
    }
    ok = l->count >= target;
    rs_mutex_unlock(&l->mutex);
    return ok;
}

typedef struct wt_ctx {
    rs_task_t task;
    rs_event_loop_t *loop;
    rs_socket_t *socket;
    rs_endpoint_t dest;
    int step; /* 0: assign + subscribe, 1: send on the right thread, 2: destroy */
    int assign_err;
    int subscribe_err;
    int send_err;
    wt_latch_t latch;
} wt_ctx_t;

static void wt_noop_readable(rs_socket_t *s, int error, void *user_data) {
    rs_datagram_t d;
    uint8_t buf[16];
    (void)error;
    (void)user_data;
    memset(&d, 0, sizeof(d));
    d.data = buf;
    d.capacity = sizeof(buf);
    while (rs_socket_recv_from(s, &d) == RS_OK) {
    }
}

static void wt_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    wt_ctx_t *c = (wt_ctx_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        int step;
        rs_mutex_lock(&c->latch.mutex);
        step = c->step;
        rs_mutex_unlock(&c->latch.mutex);
        if (step == 0) {
            int a = rs_socket_assign_to_loop(c->socket, c->loop);
            int s = rs_socket_subscribe_to_readable_events(c->socket, wt_noop_readable, NULL);
            rs_mutex_lock(&c->latch.mutex);
            c->assign_err = a;
            c->subscribe_err = s;
            rs_mutex_unlock(&c->latch.mutex);
        } else if (step == 1) {
            int e = rs_socket_send_to(c->socket, &c->dest, rs_byte_cursor_from_cstr("right"));
            rs_mutex_lock(&c->latch.mutex);
            c->send_err = e;
            rs_mutex_unlock(&c->latch.mutex);
        } else {
            rs_socket_destroy(c->socket);
        }
    }
    wt_latch_add(&c->latch);
}

static void wt_run_step(wt_ctx_t *c, int step, int expected_count) {
    rs_mutex_lock(&c->latch.mutex);
    c->step = step;
    rs_mutex_unlock(&c->latch.mutex);
    rs_task_init(&c->task, wt_task, c, "udp-wrong-thread");
    rs_event_loop_schedule_task_now(c->loop, &c->task);
    if (!wt_latch_wait(&c->latch, expected_count)) {
        fail_msg("loop task did not run");
    }
}

static void wrong_thread_send_is_rejected(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *s = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *sink = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_endpoint_t sink_ep = bind_ip(sink, "127.0.0.1");
    rs_datagram_t d;
    uint8_t buf[16];
    size_t n = 99;
    wt_ctx_t c;
    write_rec_t w;
    memset(&c, 0, sizeof(c));
    memset(&w, 0, sizeof(w));
    assert_int_equal(rs_mutex_init(&c.latch.mutex), RS_OK);
    assert_int_equal(rs_condvar_init(&c.latch.cond), RS_OK);
    c.loop = loop;
    c.socket = s;
    c.dest = sink_ep;
    (void)bind_ip(s, "127.0.0.1");

    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    /* assign_to_loop from a thread that is not the loop's */
    assert_int_equal(rs_socket_assign_to_loop(s, loop), RS_EWRONGTHREAD);
    assert_null(rs_socket_get_loop(s));
    wt_run_step(&c, 0, 1);
    rs_mutex_lock(&c.latch.mutex);
    assert_int_equal(c.assign_err, RS_OK);
    assert_int_equal(c.subscribe_err, RS_OK);
    rs_mutex_unlock(&c.latch.mutex);
    assert_ptr_equal(rs_socket_get_loop(s), loop);

    /* from the test thread: every loop-thread call is refused */
    assert_int_equal(rs_socket_send_to(s, &sink_ep, rs_byte_cursor_from_cstr("wrong")), RS_EWRONGTHREAD);
    memset(&d, 0, sizeof(d));
    d.data = (void *)(uintptr_t)"wrong";
    d.len = 5;
    d.endpoint = sink_ep;
    assert_int_equal(rs_socket_send_batch(s, &d, 1, &n), RS_EWRONGTHREAD);
    assert_int_equal(n, 0);
    memset(&d, 0, sizeof(d));
    d.data = buf;
    d.capacity = sizeof(buf);
    assert_int_equal(rs_socket_recv_from(s, &d), RS_EWRONGTHREAD);
    n = 99;
    assert_int_equal(rs_socket_recv_batch(s, &d, 1, &n), RS_EWRONGTHREAD);
    assert_int_equal(n, 0);
    assert_int_equal(rs_socket_write(s, rs_byte_cursor_from_cstr("x"), write_rec_cb, &w), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_subscribe_to_readable_events(s, wt_noop_readable, NULL), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_pause_reading(s), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_close(s), RS_EWRONGTHREAD);
    assert_true(rs_socket_is_open(s));

    /* nothing was sent by the refused calls */
    memset(&d, 0, sizeof(d));
    d.data = buf;
    d.capacity = sizeof(buf);
    assert_int_equal(rs_socket_recv_from(sink, &d), RS_EAGAIN);

    /* on the loop thread it works */
    wt_run_step(&c, 1, 2);
    rs_mutex_lock(&c.latch.mutex);
    assert_int_equal(c.send_err, RS_OK);
    rs_mutex_unlock(&c.latch.mutex);
    wait_for_datagram(sink);
    assert_int_equal(rs_socket_recv_from(sink, &d), RS_OK);
    assert_int_equal(d.len, 5);
    assert_memory_equal(buf, "right", 5);

    wt_run_step(&c, 2, 3);
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    rs_event_loop_destroy(loop);
    rs_socket_destroy(sink);
    assert_int_equal(w.calls, 0);
    rs_condvar_cleanup(&c.latch.cond);
    rs_mutex_cleanup(&c.latch.mutex);
}
RS_TEST_PER_BACKEND(udp_, wrong_thread_send_is_rejected)

/* -------------------------------------------------------- Unix DGRAM sockets */

static void local_round_trip(rs_event_loop_backend_t b, const char *a_path, const char *b_path) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_LOCAL, 0);
    rs_socket_t *bsock = dgram_new(RS_SOCKET_DOMAIN_LOCAL, 0);
    rs_endpoint_t a_ep;
    rs_endpoint_t b_ep;
    rs_endpoint_t bound;
    rs_endpoint_t v4;
    conn_rec_t cr;
    rx_t ra;
    rx_t rb;
    uint8_t msg[1500];
    size_t sent = 0;
    rs_datagram_t batch[3];
    size_t i;
    memset(&cr, 0, sizeof(cr));
    cr.loop = loop;
    fill_pattern(msg, sizeof(msg), 5);
    rx_init(&ra, a, loop);
    rx_init(&rb, bsock, loop);

    assert_int_equal(rs_endpoint_from_local(&a_ep, a_path), RS_OK);
    assert_int_equal(rs_endpoint_from_local(&b_ep, b_path), RS_OK);
    assert_int_equal(rs_socket_bind(a, &a_ep), RS_OK);
    assert_int_equal(rs_socket_bind(bsock, &b_ep), RS_OK);
    memset(&bound, 0, sizeof(bound));
    assert_int_equal(rs_socket_get_bound_address(bsock, &bound), RS_OK);
    assert_int_equal(bound.domain, RS_SOCKET_DOMAIN_LOCAL);
    assert_string_equal(bound.path, b_path);

    assert_int_equal(rs_socket_assign_to_loop(a, loop), RS_OK);
    assert_int_equal(rs_socket_assign_to_loop(bsock, loop), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(a, rx_on_readable, &ra), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(bsock, rx_on_readable, &rb), RS_OK);

    /* a -> b with the source path */
    assert_int_equal(rs_socket_send_to(a, &b_ep, cur(msg, sizeof(msg))), RS_OK);
    assert_true(run_until_count(loop, &rb.count, 1));
    assert_int_equal(rb.dgrams[0].len, sizeof(msg));
    assert_false(rb.dgrams[0].truncated);
    assert_true(check_pattern(rb.dgrams[0].data, sizeof(msg), 5));
    assert_int_equal(rb.dgrams[0].from.domain, RS_SOCKET_DOMAIN_LOCAL);
    assert_string_equal(rb.dgrams[0].from.path, a_path);

    /* b answers the source it saw */
    assert_int_equal(rs_socket_send_to(bsock, &rb.dgrams[0].from, rs_byte_cursor_from_cstr("back")), RS_OK);
    assert_true(run_until_count(loop, &ra.count, 1));
    assert_int_equal(ra.dgrams[0].len, 4);
    assert_memory_equal(ra.dgrams[0].data, "back", 4);
    assert_string_equal(ra.dgrams[0].from.path, b_path);

    /* a batch, in order (Unix datagrams are reliable and ordered) */
    memset(batch, 0, sizeof(batch));
    for (i = 0; i < 3; ++i) {
        batch[i].data = msg + i;
        batch[i].len = 10 + i;
        batch[i].endpoint = b_ep;
    }
    assert_int_equal(rs_socket_send_batch(a, batch, 3, &sent), RS_OK);
    assert_int_equal(sent, 3);
    assert_true(run_until_count(loop, &rb.count, 4));
    for (i = 0; i < 3; ++i) {
        assert_int_equal(rb.dgrams[1 + i].len, 10 + i);
        assert_memory_equal(rb.dgrams[1 + i].data, msg + i, 10 + i);
        assert_string_equal(rb.dgrams[1 + i].from.path, a_path);
    }

    /* connected Unix DGRAM: NULL destination */
    assert_int_equal(rs_socket_connect(a, &b_ep, loop, conn_rec_cb, &cr), RS_OK);
    assert_true(run_until(loop, &cr.calls));
    assert_int_equal(cr.error, RS_OK);
    assert_int_equal(rs_socket_send_to(a, NULL, rs_byte_cursor_from_cstr("conn")), RS_OK);
    assert_true(run_until_count(loop, &rb.count, 5));
    assert_memory_equal(rb.dgrams[4].data, "conn", 4);

    /* wrong domain */
    assert_int_equal(rs_endpoint_from_ip(&v4, "127.0.0.1", 9), RS_OK);
    assert_int_equal(rs_socket_send_to(bsock, &v4, rs_byte_cursor_from_cstr("x")), RS_EINVAL);

    rx_check_clean(&ra);
    rx_check_clean(&rb);
    rs_socket_destroy(a);
    rs_socket_destroy(bsock);
    run_ticks(loop, 2);
    assert_int_equal(cr.calls, 1);
    rs_event_loop_destroy(loop);
    rx_cleanup(&ra);
    rx_cleanup(&rb);
}

static void local_dgram_round_trip_path(rs_event_loop_backend_t b) {
    posix_only_or_skip("no Unix-domain sockets on Windows yet (RS_ENOTSUP)");
#if defined(_WIN32)
    (void)b;
#else
    char dir[] = "/tmp/rs-udp-XXXXXX";
    char a_path[64];
    char b_path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(a_path, sizeof(a_path), "%s/a.sock", dir);
    snprintf(b_path, sizeof(b_path), "%s/b.sock", dir);
    local_round_trip(b, a_path, b_path);
    unlink(a_path);
    unlink(b_path);
    rmdir(dir);
#endif
}
RS_TEST_PER_BACKEND(udp_, local_dgram_round_trip_path)

static void local_dgram_round_trip_abstract(rs_event_loop_backend_t b) {
    posix_only_or_skip("no Unix-domain sockets on Windows yet (RS_ENOTSUP)");
    char a_name[64];
    char b_name[64];
    snprintf(a_name, sizeof(a_name), "@rs-test-udp-%ld-%d-a", (long)getpid(), (int)b);
    snprintf(b_name, sizeof(b_name), "@rs-test-udp-%ld-%d-b", (long)getpid(), (int)b);
    local_round_trip(b, a_name, b_name);
}
RS_TEST_PER_BACKEND(udp_, local_dgram_round_trip_abstract)

/* ------------------------------------------------------- more edge cases */

/* A connected UDP socket whose peer port is closed: loopback answers with
 * ICMP port unreachable, reported as RS_ECONNREFUSED (to the readable
 * callback or by recv_from); the socket keeps working afterwards. */
typedef struct refused_rec {
    int calls;
    int cb_refused;
    int recv_refused;
    int recv_other;
    size_t received;
    uint8_t last[16];
} refused_rec_t;

static void refused_on_readable(rs_socket_t *s, int error, void *user_data) {
    refused_rec_t *r = (refused_rec_t *)user_data;
    r->calls++;
    if (error == RS_ECONNREFUSED) {
        r->cb_refused++;
    } else if (error != RS_OK) {
        r->recv_other++;
    }
    for (;;) {
        rs_datagram_t d;
        int err;
        memset(&d, 0, sizeof(d));
        d.data = r->last;
        d.capacity = sizeof(r->last);
        err = rs_socket_recv_from(s, &d);
        if (err == RS_OK) {
            r->received++;
            continue;
        }
        if (err == RS_ECONNREFUSED) {
            r->recv_refused++;
            continue;
        }
        if (err != RS_EAGAIN) {
            r->recv_other++;
        }
        return;
    }
}

static bool refused_seen(const refused_rec_t *r) {
    return r->cb_refused + r->recv_refused > 0;
}

static void connected_to_closed_port_reports_econnrefused(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *gone = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_endpoint_t gone_ep = bind_ip(gone, "127.0.0.1");
    refused_rec_t r;
    conn_rec_t cr;
    uint64_t deadline;
    int flag = 0;
    memset(&r, 0, sizeof(r));
    memset(&cr, 0, sizeof(cr));
    cr.loop = loop;
    rs_socket_destroy(gone); /* its port is now closed */
    (void)bind_ip(a, "127.0.0.1");
    assert_int_equal(rs_socket_connect(a, &gone_ep, loop, conn_rec_cb, &cr), RS_OK);
    assert_true(run_until(loop, &cr.calls));
    assert_int_equal(cr.error, RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(a, refused_on_readable, &r), RS_OK);
    assert_int_equal(rs_socket_send_to(a, NULL, rs_byte_cursor_from_cstr("anyone?")), RS_OK);
    deadline = rs_clock_now_ns() + WAIT_NS;
    while (!refused_seen(&r) && rs_clock_now_ns() < deadline) {
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
    }
    if (!refused_seen(&r)) {
        fail_msg("no RS_ECONNREFUSED after sending to a closed port (%d callbacks, %d other errors)", r.calls,
                 r.recv_other);
    }
    assert_int_equal(r.recv_other, 0);
    assert_int_equal(r.received, 0);
    /* the error was consumed: no more callbacks spin on it */
    run_ticks(loop, 3);
    flag = r.calls;
    run_ticks(loop, 5);
    assert_int_equal(r.calls, flag);
    /* and the socket still sends */
    assert_int_equal(rs_socket_send_to(a, NULL, rs_byte_cursor_from_cstr("again")), RS_OK);
    rs_socket_destroy(a);
    run_ticks(loop, 2);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(udp_, connected_to_closed_port_reports_econnrefused)

static void oversized_datagram_is_emsgsize(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *bsock = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_endpoint_t b_ep = bind_ip(bsock, "127.0.0.1");
    size_t big_len = 70000; /* more than an IPv4 UDP datagram can carry */
    uint8_t *big = (uint8_t *)calloc(1, big_len);
    rs_datagram_t d;
    size_t sent = 99;
    assert_non_null(big);
    assert_int_equal(rs_socket_assign_to_loop(a, loop), RS_OK);
    assert_int_equal(rs_socket_send_to(a, &b_ep, cur(big, big_len)), RS_EMSGSIZE);
    memset(&d, 0, sizeof(d));
    d.data = big;
    d.len = big_len;
    d.endpoint = b_ep;
    assert_int_equal(rs_socket_send_batch(a, &d, 1, &sent), RS_EMSGSIZE);
    assert_int_equal(sent, 0);
    /* the largest one that fits goes through */
    assert_int_equal(rs_socket_send_to(a, &b_ep, cur(big, 65507)), RS_OK);
    rs_socket_destroy(a);
    rs_socket_destroy(bsock);
    run_ticks(loop, 1);
    rs_event_loop_destroy(loop);
    free(big);
}
RS_TEST_PER_BACKEND(udp_, oversized_datagram_is_emsgsize)

/* Unix datagrams are not dropped: with the receiver's queue full the sender
 * gets RS_EAGAIN, and send_batch reports a partial count with RS_OK. */
static void local_dgram_full_queue_is_eagain_and_partial_batch(rs_event_loop_backend_t b) {
    posix_only_or_skip("no Unix-domain sockets on Windows yet (RS_ENOTSUP)");
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_LOCAL, 0);
    rs_socket_t *bsock = dgram_new(RS_SOCKET_DOMAIN_LOCAL, 0);
    rs_endpoint_t a_ep;
    rs_endpoint_t b_ep;
    rs_datagram_t batch[100];
    size_t sent = 0;
    size_t queued = 0;
    size_t got = 0;
    size_t i;
    int err = RS_OK;
    char a_name[64];
    char b_name[64];
    snprintf(a_name, sizeof(a_name), "@rs-test-udpq-%ld-%d-a", (long)getpid(), (int)b);
    snprintf(b_name, sizeof(b_name), "@rs-test-udpq-%ld-%d-b", (long)getpid(), (int)b);
    assert_int_equal(rs_endpoint_from_local(&a_ep, a_name), RS_OK);
    assert_int_equal(rs_endpoint_from_local(&b_ep, b_name), RS_OK);
    assert_int_equal(rs_socket_bind(a, &a_ep), RS_OK);
    assert_int_equal(rs_socket_bind(bsock, &b_ep), RS_OK);
    assert_int_equal(rs_socket_assign_to_loop(a, loop), RS_OK);
    assert_int_equal(rs_socket_assign_to_loop(bsock, loop), RS_OK);

    /* fill the receiver's queue (bounded: the queue holds far fewer than 100000) */
    for (i = 0; i < 100000; ++i) {
        err = rs_socket_send_to(a, &b_ep, rs_byte_cursor_from_cstr("fill"));
        if (err != RS_OK) {
            break;
        }
        queued++;
    }
    assert_int_equal(err, RS_EAGAIN); /* non-blocking, never a silent drop */
    assert_true(queued > 0);
    /* a batch into a full queue: nothing sent, RS_EAGAIN */
    memset(batch, 0, sizeof(batch));
    for (i = 0; i < 100; ++i) {
        batch[i].data = (void *)(uintptr_t)"b";
        batch[i].len = 1;
        batch[i].endpoint = b_ep;
    }
    assert_int_equal(rs_socket_send_batch(a, batch, 100, &sent), RS_EAGAIN);
    assert_int_equal(sent, 0);
    /* make room for a few: the batch sends some, not all, and says so */
    for (i = 0; i < 3; ++i) {
        uint8_t buf[8];
        rs_datagram_t d;
        memset(&d, 0, sizeof(d));
        d.data = buf;
        d.capacity = sizeof(buf);
        assert_int_equal(rs_socket_recv_from(bsock, &d), RS_OK);
        assert_int_equal(d.len, 4);
        assert_string_equal(d.endpoint.path, a_name);
    }
    sent = 0;
    assert_int_equal(rs_socket_send_batch(a, batch, 100, &sent), RS_OK);
    assert_true(sent >= 1 && sent < 100);
    /* everything queued arrives, in order */
    for (;;) {
        uint8_t buf[8];
        rs_datagram_t d;
        memset(&d, 0, sizeof(d));
        d.data = buf;
        d.capacity = sizeof(buf);
        err = rs_socket_recv_from(bsock, &d);
        if (err != RS_OK) {
            break;
        }
        if (got < queued - 3) {
            assert_int_equal(d.len, 4);
        } else {
            assert_int_equal(d.len, 1);
        }
        got++;
    }
    assert_int_equal(err, RS_EAGAIN);
    assert_int_equal(got, queued - 3 + sent);
    rs_socket_destroy(a);
    rs_socket_destroy(bsock);
    run_ticks(loop, 1);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(udp_, local_dgram_full_queue_is_eagain_and_partial_batch)

/* A batch whose third datagram is invalid: the two before it are sent and
 * counted (RS_OK, partial count), as the one-by-one fallback does; the
 * invalid one is then first and reported on its own. */
static void send_batch_stops_at_invalid_datagram(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_socket_t *bsock = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_endpoint_t b_ep = bind_ip(bsock, "127.0.0.1");
    rs_datagram_t d[3];
    rs_datagram_t r;
    uint8_t buf[8];
    size_t sent = 99;
    int err;
    size_t got = 0;
    assert_int_equal(rs_socket_assign_to_loop(a, loop), RS_OK);
    memset(d, 0, sizeof(d));
    d[0].data = (void *)(uintptr_t)"one";
    d[0].len = 3;
    d[0].endpoint = b_ep;
    d[1].data = (void *)(uintptr_t)"two";
    d[1].len = 3;
    d[1].endpoint = b_ep;
    d[2].data = (void *)(uintptr_t)"bad";
    d[2].len = 3;
    assert_int_equal(rs_endpoint_from_ip(&d[2].endpoint, "::1", b_ep.port), RS_OK);
    err = rs_socket_send_batch(a, d, 3, &sent);
    /* count what arrived whatever happened, to report it precisely */
    wait_for_datagram_or_timeout(bsock);
    for (;;) {
        memset(&r, 0, sizeof(r));
        r.data = buf;
        r.capacity = sizeof(buf);
        if (rs_socket_recv_from(bsock, &r) != RS_OK) {
            break;
        }
        got++;
    }
    if (err != RS_OK || sent != 2 || got != 2) {
        fail_msg("send_batch([ok, ok, wrong domain]) returned %s with *sent_out %zu and %zu datagrams "
                 "delivered; want RS_OK, 2, 2 (the valid prefix is sent, as the non-Linux path does)",
                 rs_err_name(err), sent, got);
    }
    assert_int_equal(rs_socket_send_batch(a, d + 2, 1, &sent), RS_EINVAL);
    assert_int_equal(sent, 0);
    rs_socket_destroy(a);
    rs_socket_destroy(bsock);
    run_ticks(loop, 1);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(udp_, send_batch_stops_at_invalid_datagram)

/* Closing or destroying a DGRAM socket before its on_connect was delivered:
 * on_connect still fires exactly once, with RS_ECANCELED. */
static void connect_then_close_delivers_ecanceled(rs_event_loop_backend_t b) {
    int round;
    for (round = 0; round < 2; ++round) {
        rs_event_loop_t *loop = loop_new(b);
        rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
        rs_socket_t *bsock = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
        rs_endpoint_t b_ep = bind_ip(bsock, "127.0.0.1");
        conn_rec_t cr;
        memset(&cr, 0, sizeof(cr));
        cr.loop = loop;
        assert_int_equal(rs_socket_connect(a, &b_ep, loop, conn_rec_cb, &cr), RS_OK);
        if (round == 0) {
            assert_int_equal(rs_socket_close(a), RS_OK);
        } else {
            rs_socket_destroy(a);
        }
        assert_int_equal(cr.calls, 0);
        assert_true(run_until(loop, &cr.calls));
        run_ticks(loop, 3);
        assert_int_equal(cr.calls, 1);
        assert_int_equal(cr.error, RS_ECANCELED);
        if (round == 0) {
            assert_false(rs_socket_is_open(a));
            rs_socket_destroy(a);
        }
        rs_socket_destroy(bsock);
        run_ticks(loop, 2);
        rs_event_loop_destroy(loop);
    }
}
RS_TEST_PER_BACKEND(udp_, connect_then_close_delivers_ecanceled)

static void connect_to_port_zero_is_einval(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    rs_endpoint_t ep;
    conn_rec_t cr;
    memset(&cr, 0, sizeof(cr));
    cr.loop = loop;
    assert_int_equal(rs_endpoint_from_ip(&ep, "127.0.0.1", 0), RS_OK);
    assert_int_equal(rs_socket_connect(a, &ep, loop, conn_rec_cb, &cr), RS_EINVAL);
    assert_int_equal(rs_socket_connect(a, NULL, loop, conn_rec_cb, &cr), RS_EINVAL);
    run_ticks(loop, 2);
    assert_int_equal(cr.calls, 0);
    rs_socket_destroy(a);
    run_ticks(loop, 1);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(udp_, connect_to_port_zero_is_einval)

/* Dual stack: an IPv6 socket with IPV6_V6ONLY off, bound to the IPv4-mapped
 * loopback, hears an IPv4 sender as ::ffff:127.0.0.1 and can answer it. */
static void dual_stack_socket_sees_ipv4_mapped_source(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop;
    rs_socket_options_t o;
    rs_socket_t *v6;
    rs_socket_t *v4;
    rs_endpoint_t v4_ep;
    rs_endpoint_t v6_ep;
    rs_endpoint_t mapped_v4;
    rs_endpoint_t dest;
    rx_t r6;
    rx_t r4;
    int err = 0;
    char text[RS_ENDPOINT_TEXT_MAX];
    if (!ipv6_loopback_available()) {
        print_message("skipped: IPv6 is not available on this host\n");
        skip();
    }
    loop = loop_new(b);
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.type = RS_SOCKET_DGRAM;
    o.domain = RS_SOCKET_DOMAIN_IPV6;
    o.ipv6_only = RS_SOCKET_IPV6_ONLY_OFF;
    v6 = rs_socket_new(&o, &err);
    assert_non_null(v6);
    v6_ep = bind_ip(v6, "::ffff:127.0.0.1");
    v4 = dgram_new(RS_SOCKET_DOMAIN_IPV4, 0);
    v4_ep = bind_ip(v4, "127.0.0.1");
    rx_init(&r6, v6, loop);
    rx_init(&r4, v4, loop);
    assert_int_equal(rs_socket_assign_to_loop(v6, loop), RS_OK);
    assert_int_equal(rs_socket_assign_to_loop(v4, loop), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(v6, rx_on_readable, &r6), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(v4, rx_on_readable, &r4), RS_OK);

    assert_int_equal(rs_endpoint_from_ip(&dest, "127.0.0.1", v6_ep.port), RS_OK);
    assert_int_equal(rs_socket_send_to(v4, &dest, rs_byte_cursor_from_cstr("v4->v6")), RS_OK);
    assert_true(run_until_count(loop, &r6.count, 1));
    assert_int_equal(r6.dgrams[0].from.domain, RS_SOCKET_DOMAIN_IPV6);
    assert_int_equal(rs_endpoint_from_ip(&mapped_v4, "::ffff:127.0.0.1", v4_ep.port), RS_OK);
    assert_int_equal(rs_endpoint_format(&r6.dgrams[0].from, text, sizeof(text)), RS_OK);
    if (!rs_endpoint_equal(&r6.dgrams[0].from, &mapped_v4)) {
        fail_msg("source seen as %s", text);
    }
    assert_int_equal(rs_socket_send_to(v6, &r6.dgrams[0].from, rs_byte_cursor_from_cstr("v6->v4")), RS_OK);
    assert_true(run_until_count(loop, &r4.count, 1));
    assert_memory_equal(r4.dgrams[0].data, "v6->v4", 6);
    assert_int_equal(r4.dgrams[0].from.domain, RS_SOCKET_DOMAIN_IPV4);
    assert_int_equal(r4.dgrams[0].from.port, v6_ep.port);
    rx_check_clean(&r6);
    rx_check_clean(&r4);
    rs_socket_destroy(v6);
    rs_socket_destroy(v4);
    run_ticks(loop, 1);
    rs_event_loop_destroy(loop);
    rx_cleanup(&r6);
    rx_cleanup(&r4);
}
RS_TEST_PER_BACKEND(udp_, dual_stack_socket_sees_ipv4_mapped_source)

/* A Unix DGRAM connect to a path nobody bound fails, reported later (never
 * inline), and leaves the socket closed. */
static void local_dgram_connect_to_missing_path_fails_async(rs_event_loop_backend_t b) {
    posix_only_or_skip("no Unix-domain sockets on Windows yet (RS_ENOTSUP)");
    rs_event_loop_t *loop = loop_new(b);
    rs_socket_t *a = dgram_new(RS_SOCKET_DOMAIN_LOCAL, 0);
    rs_endpoint_t ep;
    conn_rec_t cr;
    char path[96];
    memset(&cr, 0, sizeof(cr));
    cr.loop = loop;
    snprintf(path, sizeof(path), "/tmp/rs-test-udp-missing-%ld-%d.sock", (long)getpid(), (int)b);
    unlink(path);
    assert_int_equal(rs_endpoint_from_local(&ep, path), RS_OK);
    assert_int_equal(rs_socket_connect(a, &ep, loop, conn_rec_cb, &cr), RS_OK);
    assert_int_equal(cr.calls, 0);
    assert_true(run_until(loop, &cr.calls));
    run_ticks(loop, 3);
    assert_int_equal(cr.calls, 1);
    assert_int_not_equal(cr.error, RS_OK);
    assert_true(cr.on_loop_thread);
    assert_false(rs_socket_is_open(a));
    assert_int_not_equal(rs_socket_send_to(a, NULL, rs_byte_cursor_from_cstr("x")), RS_OK);
    rs_socket_destroy(a);
    run_ticks(loop, 1);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(udp_, local_dgram_connect_to_missing_path_fails_async)

int main(void) {
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(udp_, send_to_recv_from_ipv4_round_trip),
        RS_TEST_PER_BACKEND_TESTS(udp_, send_to_recv_from_ipv6_round_trip),
        cmocka_unit_test(udp_unassigned_sockets_send_and_receive),
        RS_TEST_PER_BACKEND_TESTS(udp_, connected_socket_sends_without_destination),
        RS_TEST_PER_BACKEND_TESTS(udp_, unconnected_send_without_destination_is_enotconn),
        RS_TEST_PER_BACKEND_TESTS(udp_, readable_events_are_level_triggered),
        RS_TEST_PER_BACKEND_TESTS(udp_, destroy_inside_readable_callback),
        RS_TEST_PER_BACKEND_TESTS(udp_, send_batch_200_and_recv_batch),
        cmocka_unit_test(udp_recv_batch_caps_at_batch_max),
        RS_TEST_PER_BACKEND_TESTS(udp_, recv_from_truncates_long_datagram),
        RS_TEST_PER_BACKEND_TESTS(udp_, recv_batch_truncates_long_datagram),
        RS_TEST_PER_BACKEND_TESTS(udp_, recv_on_empty_socket_is_eagain),
        RS_TEST_PER_BACKEND_TESTS(udp_, send_to_wrong_domain_is_einval),
        RS_TEST_PER_BACKEND_TESTS(udp_, write_on_dgram_socket_is_einval),
        cmocka_unit_test(udp_batch_counts_are_exact_including_partial_batches),
        cmocka_unit_test(udp_closed_socket_rejects_datagram_calls),
        RS_TEST_PER_BACKEND_TESTS(udp_, wrong_thread_send_is_rejected),
        RS_TEST_PER_BACKEND_TESTS(udp_, local_dgram_round_trip_path),
        RS_TEST_PER_BACKEND_TESTS(udp_, local_dgram_round_trip_abstract),
        RS_TEST_PER_BACKEND_TESTS(udp_, connected_to_closed_port_reports_econnrefused),
        RS_TEST_PER_BACKEND_TESTS(udp_, oversized_datagram_is_emsgsize),
        RS_TEST_PER_BACKEND_TESTS(udp_, local_dgram_full_queue_is_eagain_and_partial_batch),
        RS_TEST_PER_BACKEND_TESTS(udp_, send_batch_stops_at_invalid_datagram),
        RS_TEST_PER_BACKEND_TESTS(udp_, connect_then_close_delivers_ecanceled),
        RS_TEST_PER_BACKEND_TESTS(udp_, connect_to_port_zero_is_einval),
        RS_TEST_PER_BACKEND_TESTS(udp_, dual_stack_socket_sees_ipv4_mapped_source),
        RS_TEST_PER_BACKEND_TESTS(udp_, local_dgram_connect_to_missing_path_fails_async),
    };
    return cmocka_run_group_tests_name("udp", tests, NULL, NULL);
}
