/*
 * What only completion-based sockets (io_uring) have: the loop's shared
 * provided-buffer ring running dry, close with a multishot recv and a send in
 * the kernel, the multishot accept (stopped and closed with connections in
 * flight), the connect op with its linked timeout, and the readiness fallback
 * when the kernel lacks what they need. The socket contract itself runs on io_uring in the per-backend
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

/* One multishot accept takes every connection, and each accepted socket
 * knows its peer (from getpeername: the op has no address per connection). */
static void listener_accepts_through_one_multishot_op(void **state) {
    rs_event_loop_t *loop;
    server_t srv;
    size_t i;
    (void)state;
    skip_without_uring_sockets();
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    server_start(&srv, loop);
    assert_non_null(srv.listener->uring);
    assert_true(srv.listener->uring->recv.slot != 0);
    assert_int_equal(srv.listener->interest, 0); /* no readiness poll on the listener */
    for (i = 0; i < 5; ++i) {
        struct sockaddr_in local;
        socklen_t len = sizeof(local);
        rs_endpoint_t remote;
        srv.conns[i].peer = peer_connect(&srv);
        RS_TEST_RUN_UNTIL(srv.loop, srv.accepted == i + 1);
        assert_int_equal(getsockname(srv.conns[i].peer, (struct sockaddr *)&local, &len), 0);
        assert_int_equal(rs_socket_get_remote_address(srv.conns[i].socket, &remote), RS_OK);
        assert_int_equal(remote.domain, RS_SOCKET_DOMAIN_IPV4);
        assert_memory_equal(remote.addr, "\x7f\x00\x00\x01", 4);
        assert_int_equal(remote.port, ntohs(local.sin_port));
        rs_test_assert_fd_nonblocking_cloexec(srv.conns[i].socket->io.fd);
    }
    assert_true(srv.listener->uring->recv.slot != 0); /* still the same op */
    server_finish(&srv);
    rs_event_loop_destroy(loop);
}

/* Connections that arrive while the listener is stopped wait (in the kernel's
 * queue, or accepted already by the op being canceled) and all come on the
 * next start, in order; none is lost either way. */
static void connections_arriving_while_stopped_come_on_the_next_start(void **state) {
    rs_event_loop_t *loop;
    server_t srv;
    size_t i;
    int round;
    (void)state;
    skip_without_uring_sockets();
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    server_start(&srv, loop);
    for (round = 0; round < 2; ++round) {
        size_t first = srv.accepted;
        /* Round 0 stops before the connections come, round 1 after: then the
         * armed op has them accepted when its cancel is submitted. */
        if (round == 0) {
            assert_int_equal(rs_socket_stop_accept(srv.listener), RS_OK);
        }
        for (i = first; i < first + 3; ++i) {
            srv.conns[i].peer = peer_connect(&srv);
        }
        if (round == 1) {
            assert_int_equal(rs_socket_stop_accept(srv.listener), RS_OK);
        }
        for (i = 0; i < 5; ++i) {
            rs_event_loop_run_once(loop, 10);
        }
        assert_int_equal(srv.accepted, first);
        assert_int_equal(srv.listener->uring->recv.slot, 0); /* the op ended */
        assert_int_equal(rs_socket_start_accept(srv.listener, loop, on_accept, &srv), RS_OK);
        RS_TEST_RUN_UNTIL(loop, srv.accepted == first + 3);
        for (i = first; i < first + 3; ++i) { /* in order: each is the peer connected i-th */
            struct sockaddr_in local;
            socklen_t len = sizeof(local);
            rs_endpoint_t remote;
            assert_int_equal(getsockname(srv.conns[i].peer, (struct sockaddr *)&local, &len), 0);
            assert_int_equal(rs_socket_get_remote_address(srv.conns[i].socket, &remote), RS_OK);
            assert_int_equal(remote.port, ntohs(local.sin_port));
        }
    }
    server_finish(&srv);
    rs_event_loop_destroy(loop);
}

/* A connected pair of TCP fds over loopback, made without the loop. */
static void tcp_pair(int fds[2]) {
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fds[0] >= 0);
    assert_int_equal(connect(fds[0], (struct sockaddr *)&sa, sizeof(sa)), 0);
    fds[1] = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    assert_true(fds[1] >= 0);
    close(l);
}

/* Closing an accepting listener ends its op, and closing a stopped one
 * closes the connections it kept for the next start (one is handed to it
 * white-box, as the race between a cancel and an accept would: the test is
 * then not up to timing). No fd is left open, and on_accept is not called. */
static void close_listener_with_accept_in_flight_and_connections_kept(void **state) {
    rs_event_loop_t *loop;
    server_t srv;
    int fds_before;
    int kept[2];
    int round;
    char c;
    (void)state;
    skip_without_uring_sockets();
    fds_before = rs_test_open_fd_count();
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    for (round = 0; round < 2; ++round) {
        int i;
        server_start(&srv, loop);
        for (i = 0; i < 3; ++i) {
            rs_event_loop_run_once(loop, 0);
        }
        assert_true(srv.listener->uring->recv.slot != 0);
        if (round == 1) {
            tcp_pair(kept);
            assert_int_equal(rs_socket_stop_accept(srv.listener), RS_OK);
            rs__sock_uring_keep_waiting(srv.listener, kept[1]);
            assert_int_equal(srv.listener->uring->u.waiting.count, 1);
        }
        assert_int_equal(rs_socket_close(srv.listener), RS_OK);
        assert_int_equal(srv.listener->uring->recv.slot, 0);
        assert_int_equal(srv.listener->uring->u.waiting.count, 0);
        for (i = 0; i < 3; ++i) {
            rs_event_loop_run_once(loop, 10);
        }
        assert_int_equal(srv.accepted, 0);
        if (round == 1) { /* the kept connection was closed: its peer sees the end */
            assert_true(rs_test_wait_fd(kept[0], POLLIN, 10000));
            assert_true(recv(kept[0], &c, 1, 0) <= 0);
            close(kept[0]);
        }
        server_finish(&srv);
    }
    rs_event_loop_destroy(loop);
    assert_int_equal(rs_test_open_fd_count(), fds_before);
}

typedef struct connect_result {
    int calls;
    int error;
} connect_result_t;

static void on_connected(rs_socket_t *socket, int error, void *user_data) {
    connect_result_t *r = (connect_result_t *)user_data;
    (void)socket;
    r->calls++;
    r->error = error;
}

static rs_socket_t *client_new(void) {
    rs_socket_options_t o;
    rs_socket_t *s;
    memset(&o, 0, sizeof(o));
    o.type = RS_SOCKET_STREAM;
    o.domain = RS_SOCKET_DOMAIN_IPV4;
    o.connect_timeout_ms = 5000;
    o.allocator = &rs_test_allocator;
    s = rs_socket_new(&o, NULL);
    assert_non_null(s);
    return s;
}

/* A connect is one op (with its linked timeout) and the connected socket
 * goes on with completion-based I/O; a refused one fails through the op. */
static void connect_runs_as_one_op(void **state) {
    rs_event_loop_t *loop;
    server_t srv;
    connect_result_t r;
    write_result_t w;
    rs_socket_t *client;
    rs_endpoint_t closed;
    (void)state;
    skip_without_uring_sockets();
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    server_start(&srv, loop);
    srv.read = true;
    client = client_new();
    memset(&r, 0, sizeof(r));
    assert_int_equal(rs_socket_connect(client, &srv.ep, loop, on_connected, &r), RS_OK);
    assert_non_null(client->uring);
    assert_true(client->uring->connecting);
    assert_true(client->uring->connect_timed);
    assert_int_equal(client->interest, 0); /* no readiness poll for the connect */
    RS_TEST_RUN_UNTIL(loop, r.calls == 1 && srv.accepted == 1);
    assert_int_equal(r.error, RS_OK);
    assert_false(client->uring->connecting);
    memset(&w, 0, sizeof(w));
    assert_int_equal(rs_socket_write(client, rs_byte_cursor_from_cstr("x"), on_written, &w), RS_OK);
    RS_TEST_RUN_UNTIL(loop, srv.total == 1 && w.calls == 1);
    assert_int_equal(w.error, RS_OK);
    rs_socket_destroy(client);
    /* Refused: the port of a listener closed just now. */
    closed = srv.ep;
    server_finish(&srv);
    client = client_new();
    memset(&r, 0, sizeof(r));
    assert_int_equal(rs_socket_connect(client, &closed, loop, on_connected, &r), RS_OK);
    assert_true(client->uring->connecting);
    RS_TEST_RUN_UNTIL(loop, r.calls == 1);
    assert_int_equal(r.error, RS_ECONNREFUSED);
    assert_false(rs_socket_is_open(client));
    rs_socket_destroy(client);
    rs_event_loop_destroy(loop);
}

/* Close with the connect op in flight (queued, or in the kernel): on_connect
 * once, RS_ECANCELED, and nothing more when the linked timeout would fire. */
static void close_with_connect_in_flight(void **state) {
    rs_event_loop_t *loop;
    server_t srv;
    int submitted;
    (void)state;
    skip_without_uring_sockets();
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    server_start(&srv, loop);
    for (submitted = 0; submitted < 2; ++submitted) {
        connect_result_t r;
        rs_socket_t *client = client_new();
        int i;
        client->options.connect_timeout_ms = 50;
        memset(&r, 0, sizeof(r));
        assert_int_equal(rs_socket_connect(client, &srv.ep, loop, on_connected, &r), RS_OK);
        assert_true(client->uring->send.slot != 0);
        if (submitted) {
            assert_int_equal(rs__uring_submit(uring_of(loop)), RS_OK);
        }
        assert_int_equal(rs_socket_close(client), RS_OK);
        assert_int_equal(client->uring->send.slot, 0);
        RS_TEST_RUN_UNTIL(loop, r.calls == 1);
        for (i = 0; i < 10; ++i) { /* past the linked timeout: nothing more */
            rs_event_loop_run_once(loop, 10);
        }
        assert_int_equal(r.calls, 1);
        assert_int_equal(r.error, RS_ECANCELED);
        rs_socket_destroy(client);
    }
    server_finish(&srv);
    rs_event_loop_destroy(loop);
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
        cmocka_unit_test(listener_accepts_through_one_multishot_op),
        cmocka_unit_test(connections_arriving_while_stopped_come_on_the_next_start),
        cmocka_unit_test(close_listener_with_accept_in_flight_and_connections_kept),
        cmocka_unit_test(connect_runs_as_one_op),
        cmocka_unit_test(close_with_connect_in_flight),
    };
    rs_test_sigpipe_setup();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
