/*
 * What only completion-based sockets (io_uring) have: the loop's shared
 * provided-buffer ring running dry, close with a multishot recv and a send in
 * the kernel, and the readiness fallback when the kernel lacks what they
 * need. The socket contract itself runs on io_uring in the per-backend
 * suites (tcp, socket_handler, stress, ...), on this strategy.
 *
 * The peers are plain blocking sockets of the test. Every wait is bounded;
 * every test skips, visibly, where io_uring is not usable.
 */
#include "test_util.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNS 40
#define PER_CONN (64 * 1024) /* 40 x 64 KiB: 2.5 MiB, over twice the loop's 1 MiB of buffers */

static void skip_without_uring_sockets(void) {
    rs_test_io_uring_or_skip();
    if (!rs_event_loop_backend_is_available(RS_EVENT_LOOP_BACKEND_IO_URING)) {
        print_message("io_uring is not usable here (kernel, sysctl or seccomp): skipped\n");
        skip();
    }
}

static rs__uring_t *uring_of(rs_event_loop_t *loop) {
    return (rs__uring_t *)rs__backend_data(loop);
}

static uint8_t pattern(size_t conn, size_t i) {
    return (uint8_t)(i * 7u + conn * 13u + (i >> 12));
}

typedef struct conn {
    rs_socket_t *socket;
    int peer;
    size_t received;
    size_t bad_at; /* first byte that differed; SIZE_MAX: none */
    int end;       /* what ended the stream, once read */
    int notified;
} conn_t;

typedef struct server {
    rs_event_loop_t *loop;
    rs_socket_t *listener;
    rs_endpoint_t ep;
    conn_t conns[CONNS];
    size_t accepted;
    bool read;
    size_t total;
} server_t;

static void on_readable(rs_socket_t *socket, int error, void *user_data) {
    server_t *srv = (server_t *)user_data;
    conn_t *c = NULL;
    size_t i;
    (void)error;
    for (i = 0; i < srv->accepted; ++i) {
        if (srv->conns[i].socket == socket) {
            c = &srv->conns[i];
        }
    }
    assert_non_null(c);
    c->notified++;
    if (!srv->read) {
        return; /* holds its buffers */
    }
    for (;;) {
        uint8_t data[3000]; /* not a multiple of the buffer size: chunks are split */
        rs_byte_buf_t buf = rs_byte_buf_from_array(data, 0, sizeof(data));
        size_t n = 0;
        size_t k;
        int err = rs_socket_read(socket, &buf, &n);
        if (err) {
            if (err != RS_EAGAIN) {
                c->end = err;
            }
            return;
        }
        for (k = 0; k < n; ++k) {
            if (data[k] != pattern((size_t)(c - srv->conns), c->received + k) && c->bad_at == SIZE_MAX) {
                c->bad_at = c->received + k;
            }
        }
        c->received += n;
        srv->total += n;
    }
}

static void on_accept(rs_socket_t *listener, int error, rs_socket_t *s, void *user_data) {
    server_t *srv = (server_t *)user_data;
    (void)listener;
    assert_int_equal(error, RS_OK);
    assert_true(srv->accepted < CONNS);
    srv->conns[srv->accepted].socket = s;
    srv->conns[srv->accepted].bad_at = SIZE_MAX;
    srv->accepted++;
    assert_int_equal(rs_socket_assign_to_loop(s, srv->loop), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(s, on_readable, srv), RS_OK);
}

static void server_start(server_t *srv, rs_event_loop_t *loop) {
    rs_socket_options_t o;
    rs_endpoint_t any;
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    memset(&o, 0, sizeof(o));
    o.type = RS_SOCKET_STREAM;
    o.domain = RS_SOCKET_DOMAIN_IPV4;
    o.allocator = &rs_test_allocator;
    srv->listener = rs_socket_new(&o, NULL);
    assert_non_null(srv->listener);
    assert_int_equal(rs_endpoint_from_ip(&any, "127.0.0.1", 0), RS_OK);
    assert_int_equal(rs_socket_bind(srv->listener, &any), RS_OK);
    assert_int_equal(rs_socket_listen(srv->listener, 128), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(srv->listener, &srv->ep), RS_OK);
    assert_int_equal(rs_socket_start_accept(srv->listener, loop, on_accept, srv), RS_OK);
}

static int peer_connect(const server_t *srv) {
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)srv->ep.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void server_finish(server_t *srv) {
    size_t i;
    for (i = 0; i < srv->accepted; ++i) {
        rs_socket_destroy(srv->conns[i].socket);
        if (srv->conns[i].peer >= 0) {
            close(srv->conns[i].peer);
        }
    }
    rs_socket_destroy(srv->listener);
}

static bool all_ended(const server_t *srv) {
    size_t i;
    for (i = 0; i < CONNS; ++i) {
        if (srv->conns[i].end != RS_EEOF) {
            return false;
        }
    }
    return true;
}

/* 40 connections each hold unread data worth more than the loop's buffers:
 * the ring runs dry, recvs wait for buffers, and once the readers read,
 * every byte arrives, in order, and every buffer comes back. */
static void dry_buffer_ring_loses_no_byte(void **state) {
    rs_event_loop_t *loop;
    server_t srv;
    uint8_t *data;
    size_t i;
    size_t k;
    (void)state;
    skip_without_uring_sockets();
    data = (uint8_t *)malloc(PER_CONN);
    assert_non_null(data);
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    assert_true(rs__uring_loop_has_ops(loop));
    server_start(&srv, loop);
    for (i = 0; i < CONNS; ++i) {
        int fd = peer_connect(&srv);
        for (k = 0; k < PER_CONN; ++k) {
            data[k] = pattern(i, k);
        }
        RS_TEST_RUN_UNTIL(loop, srv.accepted == i + 1);
        srv.conns[i].peer = fd;
        rs_test_send_all(fd, data, PER_CONN, 10000); /* fits the socket buffers: the loop reads nothing yet */
    }
    for (i = 0; i < CONNS; ++i) {
        assert_non_null(srv.conns[i].socket->uring); /* the completion-based strategy is the one under test */
    }
    RS_TEST_RUN_UNTIL(loop, uring_of(loop)->bufs_free == 0 && !rs_list_empty(&uring_of(loop)->starved));
    srv.read = true;
    RS_TEST_RUN_UNTIL(loop, srv.total == (size_t)CONNS * PER_CONN);
    for (i = 0; i < CONNS; ++i) {
        assert_int_equal(srv.conns[i].received, PER_CONN);
        assert_true(srv.conns[i].bad_at == SIZE_MAX);
        assert_true(srv.conns[i].notified > 0);
        close(srv.conns[i].peer);
        srv.conns[i].peer = -1;
    }
    RS_TEST_RUN_UNTIL(loop, all_ended(&srv));
    assert_int_equal(uring_of(loop)->bufs_free, RS__URING_BUF_COUNT);
    assert_true(rs_list_empty(&uring_of(loop)->starved));
    server_finish(&srv);
    rs_event_loop_destroy(loop);
    free(data);
}

typedef struct write_result {
    int calls;
    int error;
    size_t written;
} write_result_t;

static void on_written(rs_socket_t *socket, int error, size_t written, void *user_data) {
    write_result_t *w = (write_result_t *)user_data;
    (void)socket;
    w->calls++;
    w->error = error;
    w->written = written;
}

/* A peer that never reads: the send stays in the kernel, next to the armed
 * multishot recv. Close ends both at once: the write completes RS_ECANCELED
 * exactly once, with the bytes that did leave, the peer sees the connection
 * end, and the buffers are all back. */
static void close_with_recv_and_send_in_flight(void **state) {
    const size_t big = 16 * 1024 * 1024;
    rs_event_loop_t *loop;
    server_t srv;
    write_result_t w;
    uint8_t *data;
    rs_socket_t *s;
    uint64_t until;
    char sink[65536];
    ssize_t n;
    size_t got = 0;
    (void)state;
    skip_without_uring_sockets();
    data = (uint8_t *)calloc(1, big);
    assert_non_null(data);
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    server_start(&srv, loop);
    srv.read = true;
    srv.conns[0].peer = peer_connect(&srv);
    RS_TEST_RUN_UNTIL(loop, srv.accepted == 1);
    s = srv.conns[0].socket;
    assert_non_null(s->uring);
    memset(&w, 0, sizeof(w));
    assert_int_equal(rs_socket_write(s, rs_byte_cursor_from_array(data, big), on_written, &w), RS_OK);
    until = rs_event_loop_now_ns(loop) + 200 * RS_NS_PER_MS;
    RS_TEST_RUN_UNTIL(loop, rs_event_loop_now_ns(loop) >= until);
    assert_true(s->uring->recv.slot != 0); /* both in the kernel */
    assert_true(s->uring->send.slot != 0);
    assert_int_equal(w.calls, 0);
    assert_int_equal(rs_socket_close(s), RS_OK);
    assert_int_equal(s->uring->recv.slot, 0);
    assert_int_equal(s->uring->send.slot, 0);
    RS_TEST_RUN_UNTIL(loop, w.calls > 0);
    {
        int i;
        for (i = 0; i < 5; ++i) { /* nothing more comes */
            rs_event_loop_run_once(loop, 0);
        }
    }
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.error, RS_ECANCELED);
    assert_true(w.written < big);
    /* The peer reads what was sent, then the end (reset or FIN). */
    for (;;) {
        assert_true(rs_test_wait_fd(srv.conns[0].peer, POLLIN, 10000));
        n = recv(srv.conns[0].peer, sink, sizeof(sink), 0);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    assert_true(got <= big);
    assert_int_equal(uring_of(loop)->bufs_free, RS__URING_BUF_COUNT);
    server_finish(&srv);
    rs_event_loop_destroy(loop);
    free(data);
}

/* A kernel without what completion-based sockets need (simulated with the
 * test hook) keeps every socket of the loop readiness-based, and they work. */
static void readiness_sockets_without_the_kernel_features(void **state) {
    rs_event_loop_t *loop;
    server_t srv;
    uint8_t data[1000];
    size_t k;
    (void)state;
    skip_without_uring_sockets();
    rs__uring_test_readiness_sockets = true;
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    rs__uring_test_readiness_sockets = false;
    assert_false(rs__uring_loop_has_ops(loop));
    server_start(&srv, loop);
    srv.read = true;
    srv.conns[0].peer = peer_connect(&srv);
    RS_TEST_RUN_UNTIL(loop, srv.accepted == 1);
    assert_null(srv.conns[0].socket->uring);
    for (k = 0; k < sizeof(data); ++k) {
        data[k] = pattern(0, k);
    }
    rs_test_send_all(srv.conns[0].peer, data, sizeof(data), 10000);
    close(srv.conns[0].peer);
    srv.conns[0].peer = -1;
    RS_TEST_RUN_UNTIL(loop, srv.conns[0].end == RS_EEOF);
    assert_int_equal(srv.conns[0].received, sizeof(data));
    assert_true(srv.conns[0].bad_at == SIZE_MAX);
    server_finish(&srv);
    rs_event_loop_destroy(loop);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dry_buffer_ring_loses_no_byte),
        cmocka_unit_test(close_with_recv_and_send_in_flight),
        cmocka_unit_test(readiness_sockets_without_the_kernel_features),
    };
    rs_test_sigpipe_setup();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
