/*
 * What only completion-based sockets (io_uring) have: the loop's shared
 * provided-buffer ring running dry, close with a multishot recv and a send in
 * the kernel, the multishot accept (stopped and closed with connections in
 * flight), the connect op with its linked timeout, and the readiness fallback
 * when the kernel lacks what they need; UDP sockets on the multishot recvmsg
 * (order, sources, truncation against the reader's buffer, the datagram ring
 * running dry, pause, close, ICMP errors); and Unix-domain sockets staying
 * readiness-based: datagram sockets, and streams (pipe ends, a Unix
 * listener and what it accepts, a Unix connect). The socket contract
 * itself runs on io_uring in the per-backend suites (tcp, udp,
 * socket_handler, stress, ...), on this strategy.
 *
 * The peers are plain blocking sockets of the test. Every wait is bounded;
 * every test skips, visibly, where io_uring is not usable.
 */
#include "test_util.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
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
    bool hold; /* its reader does not read (yet) */
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
    if (!srv->read || c->hold) {
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

/* A socket of `type` and `domain`, default options, on the test allocator. */
static rs_socket_t *socket_of(rs_socket_type_t type, rs_socket_domain_t domain) {
    rs_socket_options_t o;
    rs_socket_t *s;
    memset(&o, 0, sizeof(o));
    o.type = type;
    o.domain = domain;
    o.allocator = &rs_test_allocator;
    s = rs_socket_new(&o, NULL);
    assert_non_null(s);
    return s;
}

/* A listener of `domain` bound to `address` (an IP, or a Unix path). */
static void server_start_on(server_t *srv, rs_event_loop_t *loop, rs_socket_domain_t domain, const char *address) {
    rs_endpoint_t any;
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->listener = socket_of(RS_SOCKET_STREAM, domain);
    if (domain == RS_SOCKET_DOMAIN_LOCAL) {
        assert_int_equal(rs_endpoint_from_local(&any, address), RS_OK);
    } else {
        assert_int_equal(rs_endpoint_from_ip(&any, address, 0), RS_OK);
    }
    assert_int_equal(rs_socket_bind(srv->listener, &any), RS_OK);
    assert_int_equal(rs_socket_listen(srv->listener, 128), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(srv->listener, &srv->ep), RS_OK);
    assert_int_equal(rs_socket_start_accept(srv->listener, loop, on_accept, srv), RS_OK);
}

static void server_start(server_t *srv, rs_event_loop_t *loop) {
    server_start_on(srv, loop, RS_SOCKET_DOMAIN_IPV4, "127.0.0.1");
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

/* Every stream buffer is back in the ring; then the server and its loop go. */
static void server_finish_with_buffers_back(server_t *srv) {
    assert_int_equal(uring_of(srv->loop)->pb[RS__URING_GROUP_STREAM].free, RS__URING_BUF_COUNT);
    server_finish(srv);
    rs_event_loop_destroy(srv->loop);
}

/* Ticks that wait for nothing: what is due comes, and nothing more should. */
static void run_idle_ticks(rs_event_loop_t *loop, int n) {
    int i;
    for (i = 0; i < n; ++i) {
        rs_event_loop_run_once(loop, 0);
    }
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
    /* The ring ran dry (a recv waited for buffers); held data has moved out of
     * it since, perhaps, so the dry state itself may be gone by now. */
    RS_TEST_RUN_UNTIL(loop, uring_of(loop)->starve_count > 0);
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
    assert_int_equal(uring_of(loop)->pb[RS__URING_GROUP_STREAM].free, RS__URING_BUF_COUNT);
    assert_true(rs_list_empty(&uring_of(loop)->pb[RS__URING_GROUP_STREAM].starved));
    server_finish(&srv);
    rs_event_loop_destroy(loop);
    free(data);
}

/* Readers that do not read must not stop the others: 20 connections whose
 * readers hold their data hold more than the loop's buffers. Their data moves
 * out of the ring, so a 21st connection still receives all it is sent; then
 * the holders read theirs, every byte in order, and the buffers and the
 * memory the held data moved to are all given back. */
static void holders_do_not_starve_readers(void **state) {
    const size_t holders = 20; /* x 64 KiB each: 1.25 MiB, over the 1 MiB ring */
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
    server_start(&srv, loop);
    srv.read = true;
    for (i = 0; i <= holders; ++i) {
        int fd = peer_connect(&srv);
        RS_TEST_RUN_UNTIL(loop, srv.accepted == i + 1);
        srv.conns[i].peer = fd;
        srv.conns[i].hold = i < holders;
    }
    for (i = 0; i < holders; ++i) {
        for (k = 0; k < PER_CONN; ++k) {
            data[k] = pattern(i, k);
        }
        rs_test_send_all(srv.conns[i].peer, data, PER_CONN, 10000);
    }
    /* The holders now keep what they received (at most 16 chunks each). */
    for (k = 0; k < 20; ++k) {
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
    }
    for (k = 0; k < PER_CONN; ++k) {
        data[k] = pattern(holders, k);
    }
    rs_test_send_all(srv.conns[holders].peer, data, PER_CONN, 10000);
    RS_TEST_RUN_UNTIL_NS(loop, srv.conns[holders].received == PER_CONN, 5 * RS_NS_PER_SEC);
    assert_true(srv.conns[holders].bad_at == SIZE_MAX);
    for (i = 0; i < holders; ++i) {
        assert_int_equal(srv.conns[i].received, 0);
        srv.conns[i].hold = false;
    }
    RS_TEST_RUN_UNTIL(loop, srv.total == (holders + 1) * PER_CONN);
    for (i = 0; i <= holders; ++i) {
        assert_int_equal(srv.conns[i].received, PER_CONN);
        assert_true(srv.conns[i].bad_at == SIZE_MAX);
    }
    assert_int_equal(uring_of(loop)->pb[RS__URING_GROUP_STREAM].free, RS__URING_BUF_COUNT);
    assert_true(rs_list_empty(&uring_of(loop)->pb[RS__URING_GROUP_STREAM].starved));
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
    run_idle_ticks(loop, 5); /* nothing more comes */
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
    server_finish_with_buffers_back(&srv);
    free(data);
}

static int accept_eio_count;

/* on_accept, counting the RS_EIO that dropped completions give. */
static void on_accept_or_eio(rs_socket_t *listener, int error, rs_socket_t *s, void *user_data) {
    if (error) {
        assert_int_equal(error, RS_EIO);
        assert_null(s);
        accept_eio_count++;
        return;
    }
    on_accept(listener, error, s, user_data);
}

/* -EBADR: the kernel dropped completions, so any op in flight may have lost
 * one. Each ends once with RS_EIO: the reader after the bytes it had (never
 * past a gap), the write in flight, the listener's accept, which then
 * accepts again. */
static void dropped_completions_end_the_ops_in_flight(void **state) {
    const size_t big = 16 * 1024 * 1024;
    rs_event_loop_t *loop;
    server_t srv;
    write_result_t w;
    uint8_t *data;
    uint8_t first[3];
    rs_socket_t *s;
    uint64_t until;
    size_t i;
    (void)state;
    skip_without_uring_sockets();
    data = (uint8_t *)calloc(1, big);
    assert_non_null(data);
    accept_eio_count = 0;
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    server_start(&srv, loop);
    assert_int_equal(rs_socket_stop_accept(srv.listener), RS_OK);
    assert_int_equal(rs_socket_start_accept(srv.listener, loop, on_accept_or_eio, &srv), RS_OK);
    srv.read = true;
    srv.conns[0].peer = peer_connect(&srv);
    RS_TEST_RUN_UNTIL(loop, srv.accepted == 1);
    s = srv.conns[0].socket;
    for (i = 0; i < sizeof(first); ++i) {
        first[i] = pattern(0, i);
    }
    assert_int_equal(send(srv.conns[0].peer, first, sizeof(first), 0), (ssize_t)sizeof(first));
    RS_TEST_RUN_UNTIL(loop, srv.conns[0].received == sizeof(first));
    memset(&w, 0, sizeof(w));
    assert_int_equal(rs_socket_write(s, rs_byte_cursor_from_array(data, big), on_written, &w), RS_OK);
    until = rs_event_loop_now_ns(loop) + 100 * RS_NS_PER_MS;
    RS_TEST_RUN_UNTIL(loop, rs_event_loop_now_ns(loop) >= until);
    assert_true(s->uring->recv.slot != 0); /* all three in the kernel */
    assert_true(s->uring->send.slot != 0);
    assert_true(srv.listener->uring->recv.slot != 0);
    rs__uring_test_fake_ebadr = true;
    RS_TEST_RUN_UNTIL(loop, w.calls > 0 && srv.conns[0].end != 0 && accept_eio_count > 0);
    assert_int_equal(w.error, RS_EIO);
    assert_true(w.written < big);
    assert_int_equal(srv.conns[0].end, RS_EIO);
    assert_int_equal(srv.conns[0].received, sizeof(first));
    assert_int_equal(srv.conns[0].bad_at, SIZE_MAX);
    /* The listener accepts again; nothing is reported twice. */
    srv.conns[1].peer = peer_connect(&srv);
    RS_TEST_RUN_UNTIL(loop, srv.accepted == 2);
    run_idle_ticks(loop, 5);
    assert_int_equal(w.calls, 1);
    assert_int_equal(accept_eio_count, 1);
    server_finish_with_buffers_back(&srv);
    free(data);
}

/* A ring of two submission and two completion entries under 40 busy
 * connections: SQEs wait for room, multishot recv completions overflow the
 * CQ (the kernel keeps them) and come back later. Every byte arrives in
 * order, and a write on each connection completes once. */
static void tiny_ring_with_ops_loses_no_byte(void **state) {
    rs_event_loop_t *loop;
    server_t srv;
    uint8_t *data;
    write_result_t w[CONNS];
    size_t i;
    size_t k;
    (void)state;
    skip_without_uring_sockets();
    data = (uint8_t *)malloc(PER_CONN);
    assert_non_null(data);
    memset(w, 0, sizeof(w));
    rs__uring_test_sq_entries = 2;
    rs__uring_test_cq_entries = 2;
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    rs__uring_test_sq_entries = 0;
    rs__uring_test_cq_entries = 0;
    assert_true(rs__uring_loop_has_ops(loop));
    server_start(&srv, loop);
    srv.read = true;
    for (i = 0; i < CONNS; ++i) {
        srv.conns[i].peer = peer_connect(&srv);
        RS_TEST_RUN_UNTIL(loop, srv.accepted == i + 1);
        assert_non_null(srv.conns[i].socket->uring);
    }
    for (i = 0; i < CONNS; ++i) {
        for (k = 0; k < PER_CONN; ++k) {
            data[k] = pattern(i, k);
        }
        rs_test_send_all(srv.conns[i].peer, data, PER_CONN, 10000);
        assert_int_equal(rs_socket_write(srv.conns[i].socket, rs_byte_cursor_from_array("done", 4), on_written, &w[i]),
                         RS_OK);
    }
    RS_TEST_RUN_UNTIL(loop, srv.total == (size_t)CONNS * PER_CONN);
    for (i = 0; i < CONNS; ++i) {
        char got[4];
        RS_TEST_RUN_UNTIL(loop, w[i].calls > 0);
        assert_int_equal(w[i].calls, 1);
        assert_int_equal(w[i].error, RS_OK);
        assert_int_equal(srv.conns[i].received, PER_CONN);
        assert_true(srv.conns[i].bad_at == SIZE_MAX);
        assert_true(rs_test_wait_fd(srv.conns[i].peer, POLLIN, 10000));
        assert_int_equal(recv(srv.conns[i].peer, got, sizeof(got), MSG_WAITALL), 4);
        assert_memory_equal(got, "done", 4);
        close(srv.conns[i].peer);
        srv.conns[i].peer = -1;
    }
    assert_true(uring_of(loop)->sq_full_count > 0); /* both limits were met */
    assert_true(uring_of(loop)->cq_overflow_count > 0);
    RS_TEST_RUN_UNTIL(loop, all_ended(&srv));
    server_finish_with_buffers_back(&srv);
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
    int kept[2] = {-1, -1};
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

/* -EBADR with a connect op in the kernel (its SYN dropped by a full accept
 * queue): on_connect once, RS_EIO, the socket closed; nothing more when the
 * linked timeout would have fired. */
static void dropped_completions_end_a_connect(void **state) {
    rs_event_loop_t *loop;
    rs_test_black_hole_t bh;
    connect_result_t r;
    rs_socket_t *client;
    rs_endpoint_t target;
    int i;
    (void)state;
    skip_without_uring_sockets();
    rs_test_black_hole_open(&bh, "127.0.0.1", 0);
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    assert_int_equal(rs_endpoint_from_ip(&target, "127.0.0.1", bh.port), RS_OK);
    client = client_new();
    client->options.connect_timeout_ms = 200;
    memset(&r, 0, sizeof(r));
    assert_int_equal(rs_socket_connect(client, &target, loop, on_connected, &r), RS_OK);
    assert_int_equal(rs__uring_submit(uring_of(loop)), RS_OK);
    assert_true(client->uring->connecting);
    assert_int_equal(r.calls, 0);
    rs__uring_test_fake_ebadr = true;
    RS_TEST_RUN_UNTIL(loop, r.calls == 1);
    assert_int_equal(r.error, RS_EIO);
    assert_false(rs_socket_is_open(client));
    for (i = 0; i < 30; ++i) { /* past the linked timeout: nothing more */
        rs_event_loop_run_once(loop, 10);
    }
    assert_int_equal(r.calls, 1);
    rs_socket_destroy(client);
    rs_event_loop_destroy(loop);
    rs_test_black_hole_close(&bh);
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

/* Pipe ends are connected Unix stream sockets: on a loop with ops they stay
 * readiness-based (the ring's polls), since a multishot recv on AF_UNIX can
 * miss the end of the stream. In order, each write completed once, and the
 * end of the stream after the data. */
typedef struct pipe_run {
    rs_pipe_read_end_t *reader;
    uint8_t got[3 * 100000 + 1]; /* room for one more read, which must see the end */
    size_t received;
    int end;
    size_t completed;
    size_t completed_bytes;
    int write_error;
} pipe_run_t;

static void on_pipe_readable(rs_pipe_read_end_t *reader, int error, void *user_data) {
    pipe_run_t *run = (pipe_run_t *)user_data;
    for (;;) {
        rs_byte_buf_t buf = rs_byte_buf_from_array(run->got + run->received, 0, sizeof(run->got) - run->received);
        size_t n = 0;
        int err = error ? error : rs_pipe_read(reader, &buf, &n);
        run->received += n;
        if (err) {
            if (err != RS_EAGAIN) {
                run->end = err;
            }
            return;
        }
    }
}

static void on_pipe_written(rs_pipe_write_end_t *writer, int error, size_t written, void *user_data) {
    pipe_run_t *run = (pipe_run_t *)user_data;
    (void)writer;
    run->completed++;
    run->completed_bytes += written;
    if (error) {
        run->write_error = error;
    }
}

static void pipe_ends_stay_readiness_based(void **state) {
    static uint8_t data[3 * 100000];
    rs_event_loop_t *loop;
    rs_pipe_write_end_t *writer;
    pipe_run_t *run;
    size_t k;
    (void)state;
    skip_without_uring_sockets(); /* before any allocation: a skip must not leak */
    run = (pipe_run_t *)test_calloc(1, sizeof(*run));
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    assert_true(rs__uring_loop_has_ops(loop));
    assert_int_equal(rs_pipe_new(loop, loop, NULL, &run->reader, &writer), RS_OK);
    assert_int_equal(rs_pipe_subscribe_to_readable_events(run->reader, on_pipe_readable, run), RS_OK);
    for (k = 0; k < sizeof(data); ++k) {
        data[k] = pattern(1, k);
    }
    for (k = 0; k < 3; ++k) {
        rs_byte_cursor_t chunk = rs_byte_cursor_from_array(data + k * 100000, 100000);
        assert_int_equal(rs_pipe_write(writer, chunk, on_pipe_written, run), RS_OK);
    }
    RS_TEST_RUN_UNTIL(loop, run->completed == 3 && run->received == sizeof(data));
    assert_null(((rs_socket_t *)(void *)run->reader)->uring);
    assert_null(((rs_socket_t *)(void *)writer)->uring);
    assert_true(((rs_socket_t *)(void *)run->reader)->interest != 0); /* the readiness poll */
    assert_int_equal(run->write_error, RS_OK);
    assert_int_equal(run->completed_bytes, sizeof(data));
    assert_memory_equal(run->got, data, sizeof(data));
    rs_pipe_write_end_destroy(writer);
    RS_TEST_RUN_UNTIL(loop, run->end != 0);
    assert_int_equal(run->end, RS_EEOF);
    rs_pipe_read_end_destroy(run->reader);
    rs_event_loop_destroy(loop);
    test_free(run);
}

#define UNIX_ROUNDS 20
#define UNIX_BYTES 123

/* Unix-domain streams stay readiness-based on a loop with ops: the listener,
 * what it accepts and a client that connects. Each of UNIX_ROUNDS clients
 * writes UNIX_BYTES and closes, and the server reads them and then the end
 * of the stream, every time: the close racing the data is what a multishot
 * recv on AF_UNIX can miss (liburing issue 1549). */
static void unix_streams_stay_readiness_based(void **state) {
    static server_t srv;
    rs_event_loop_t *loop;
    char path[64];
    size_t i, k;
    (void)state;
    skip_without_uring_sockets();
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    assert_true(rs__uring_loop_has_ops(loop));
    snprintf(path, sizeof(path), "@rs-test-uring-unix-%ld", (long)getpid());
    server_start_on(&srv, loop, RS_SOCKET_DOMAIN_LOCAL, path);
    srv.read = true;
    assert_null(srv.listener->uring);
    for (i = 0; i < UNIX_ROUNDS; ++i) {
        uint8_t data[UNIX_BYTES];
        rs_socket_t *client = socket_of(RS_SOCKET_STREAM, RS_SOCKET_DOMAIN_LOCAL);
        connect_result_t r;
        write_result_t w;
        memset(&r, 0, sizeof(r));
        assert_int_equal(rs_socket_connect(client, &srv.ep, loop, on_connected, &r), RS_OK);
        RS_TEST_RUN_UNTIL(loop, r.calls == 1 && srv.accepted == i + 1);
        assert_int_equal(r.error, RS_OK);
        assert_null(client->uring);
        assert_null(srv.conns[i].socket->uring);
        srv.conns[i].peer = -1;
        for (k = 0; k < sizeof(data); ++k) {
            data[k] = pattern(i, k);
        }
        memset(&w, 0, sizeof(w));
        assert_int_equal(rs_socket_write(client, rs_byte_cursor_from_array(data, sizeof(data)), on_written, &w), RS_OK);
        RS_TEST_RUN_UNTIL(loop, w.calls == 1);
        assert_int_equal(w.error, RS_OK);
        rs_socket_destroy(client);
        RS_TEST_RUN_UNTIL(loop, srv.conns[i].end != 0);
        assert_int_equal(srv.conns[i].end, RS_EEOF);
        assert_int_equal(srv.conns[i].received, UNIX_BYTES);
        assert_true(srv.conns[i].bad_at == SIZE_MAX);
    }
    server_finish(&srv);
    rs_event_loop_destroy(loop);
}

/* ---- datagram sockets ---- */

#define DGRAM_ROOM 65536 /* a reader's buffer: any UDP datagram fits */
#define DGRAM_MAX_SEEN 512

/* A UDP socket of the loop whose reader records what it receives: the
 * sequence number in the first two bytes, the length, the source, the
 * truncation flag. */
typedef struct dgram_rx {
    rs_socket_t *socket;
    rs_endpoint_t ep;
    unsigned char *room; /* DGRAM_ROOM bytes */
    size_t capacity;     /* what each receive offers (default: DGRAM_ROOM) */
    bool hold;           /* the reader does not read (yet) */
    bool batch;          /* rs_socket_recv_batch rather than rs_socket_recv_from */
    int calls;
    int error_calls;
    int last_error;
    int bad_recv;
    size_t count;
    uint16_t seq[DGRAM_MAX_SEEN];
    size_t len[DGRAM_MAX_SEEN];
    bool truncated[DGRAM_MAX_SEEN];
    rs_endpoint_t from[DGRAM_MAX_SEEN];
    unsigned char head[DGRAM_MAX_SEEN][4];
} dgram_rx_t;

static void dgram_record(dgram_rx_t *r, const rs_datagram_t *d) {
    if (r->count < DGRAM_MAX_SEEN) {
        r->seq[r->count] = d->len >= 2 ? (uint16_t)(((const unsigned char *)d->data)[0] | ((const unsigned char *)d->data)[1] << 8) : 0xffff;
        r->len[r->count] = d->len;
        r->truncated[r->count] = d->truncated;
        r->from[r->count] = d->endpoint;
        memcpy(r->head[r->count], d->data, d->len < 4 ? d->len : 4);
    }
    r->count++;
}

static void on_dgram_readable(rs_socket_t *socket, int error, void *user_data) {
    dgram_rx_t *r = (dgram_rx_t *)user_data;
    r->calls++;
    if (error) {
        r->error_calls++;
        r->last_error = error;
    }
    while (!r->hold) {
        rs_datagram_t d[4];
        size_t n = 0;
        size_t i;
        int err;
        memset(d, 0, sizeof(d));
        for (i = 0; i < 4; ++i) { /* each in turn gets the whole room: recorded before the next is read */
            d[i].data = r->room;
            d[i].capacity = r->capacity;
        }
        if (r->batch) {
            err = rs_socket_recv_batch(socket, d, 1, &n);
        } else {
            err = rs_socket_recv_from(socket, &d[0]);
            n = err == RS_OK ? 1 : 0;
        }
        if (err) {
            if (err != RS_EAGAIN) {
                r->bad_recv++;
            }
            return;
        }
        dgram_record(r, &d[0]);
    }
}

static void dgram_rx_start(dgram_rx_t *r, rs_event_loop_t *loop, rs_socket_domain_t domain, const char *ip) {
    rs_socket_options_t o;
    rs_endpoint_t any;
    memset(r, 0, sizeof(*r));
    r->room = (unsigned char *)test_malloc(DGRAM_ROOM);
    r->capacity = DGRAM_ROOM;
    memset(&o, 0, sizeof(o));
    o.type = RS_SOCKET_DGRAM;
    o.domain = domain;
    o.allocator = &rs_test_allocator;
    o.recv_buffer_size = 1024 * 1024; /* loopback drops nothing the tests send */
    r->socket = rs_socket_new(&o, NULL);
    assert_non_null(r->socket);
    if (domain == RS_SOCKET_DOMAIN_LOCAL) {
        assert_int_equal(rs_endpoint_from_local(&any, ip), RS_OK);
    } else {
        assert_int_equal(rs_endpoint_from_ip(&any, ip, 0), RS_OK);
    }
    assert_int_equal(rs_socket_bind(r->socket, &any), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(r->socket, &r->ep), RS_OK);
    assert_int_equal(rs_socket_assign_to_loop(r->socket, loop), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(r->socket, on_dgram_readable, r), RS_OK);
}

static void dgram_rx_finish(dgram_rx_t *r) {
    rs_socket_destroy(r->socket);
    test_free(r->room);
}

/* A plain UDP socket of the test on 127.0.0.1, bound; its port in *port. */
static int udp_peer(uint16_t *port) {
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int big = 1024 * 1024;
    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)), 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Send datagram `seq` of `len` bytes (at least 2: the sequence number first)
 * from `fd` to `to`. */
static void udp_send_seq(int fd, const rs_endpoint_t *to, uint16_t seq, size_t len) {
    static unsigned char buf[65507];
    struct sockaddr_in sa;
    size_t k;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)to->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (k = 0; k < len; ++k) {
        buf[k] = (unsigned char)(k * 31u + seq);
    }
    if (len >= 2) {
        buf[0] = (unsigned char)(seq & 0xff);
        buf[1] = (unsigned char)(seq >> 8);
    }
    assert_int_equal(sendto(fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa)), (ssize_t)len);
}

static rs__uring_pbuf_t *dgram_bufs(rs_event_loop_t *loop) {
    return &uring_of(loop)->pb[RS__URING_GROUP_DGRAM];
}

/* A UDP socket with a reader receives through one multishot recvmsg, with no
 * readiness poll: every datagram, in order, with its source and length (an
 * empty one, and one of the largest size, included), and every buffer comes
 * back. */
static void udp_datagrams_run_on_ops(void **state) {
    static const size_t lens[] = {2, 64, 0, 1500, 4096, 4097, 65507, 3};
    rs_event_loop_t *loop;
    dgram_rx_t *r;
    uint16_t port;
    int peer;
    size_t i;
    (void)state;
    skip_without_uring_sockets();
    r = (dgram_rx_t *)test_calloc(1, sizeof(*r));
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    dgram_rx_start(r, loop, RS_SOCKET_DOMAIN_IPV4, "127.0.0.1");
    assert_non_null(r->socket->uring);
    assert_int_equal(r->socket->interest, 0); /* no readiness poll */
    assert_true(r->socket->uring->recv.slot != 0);
    peer = udp_peer(&port);
    for (i = 0; i < 200; ++i) {
        udp_send_seq(peer, &r->ep, (uint16_t)i, i < sizeof(lens) / sizeof(lens[0]) ? lens[i] : 2 + i % 300);
    }
    RS_TEST_RUN_UNTIL(loop, r->count == 200);
    for (i = 0; i < 200; ++i) {
        size_t len = i < sizeof(lens) / sizeof(lens[0]) ? lens[i] : 2 + i % 300;
        assert_int_equal(r->len[i], len);
        assert_false(r->truncated[i]);
        if (len >= 2) {
            assert_int_equal(r->seq[i], i); /* in order */
        }
        assert_int_equal(r->from[i].domain, RS_SOCKET_DOMAIN_IPV4);
        assert_memory_equal(r->from[i].addr, "\x7f\x00\x00\x01", 4);
        assert_int_equal(r->from[i].port, port);
    }
    assert_int_equal(r->bad_recv, 0);
    assert_int_equal(r->error_calls, 0);
    assert_true(r->socket->uring->recv.slot != 0); /* still armed */
    assert_int_equal(r->socket->interest, 0);
    assert_int_equal(dgram_bufs(loop)->free, RS__URING_DGRAM_BUF_COUNT);
    close(peer);
    dgram_rx_finish(r);
    rs_event_loop_destroy(loop);
    test_free(r);
}

/* The reader's buffer, not the ring's, decides truncation, as with
 * recvmsg: longer than the capacity is cut and flagged, exactly the capacity
 * is not; through both receive calls. */
static void udp_truncation_on_ops(void **state) {
    rs_event_loop_t *loop;
    dgram_rx_t *r;
    uint16_t port;
    int peer;
    int round;
    (void)state;
    skip_without_uring_sockets();
    r = (dgram_rx_t *)test_calloc(1, sizeof(*r));
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    dgram_rx_start(r, loop, RS_SOCKET_DOMAIN_IPV4, "127.0.0.1");
    peer = udp_peer(&port);
    r->capacity = 100;
    for (round = 0; round < 2; ++round) {
        size_t first = r->count;
        r->batch = round == 1;
        udp_send_seq(peer, &r->ep, 1, 1000);
        udp_send_seq(peer, &r->ep, 2, 50);
        udp_send_seq(peer, &r->ep, 3, 100);
        udp_send_seq(peer, &r->ep, 4, 65507);
        RS_TEST_RUN_UNTIL(loop, r->count == first + 4);
        assert_true(r->truncated[first]);
        assert_int_equal(r->len[first], 100);
        assert_int_equal(r->seq[first], 1);
        assert_false(r->truncated[first + 1]);
        assert_int_equal(r->len[first + 1], 50);
        assert_false(r->truncated[first + 2]);
        assert_int_equal(r->len[first + 2], 100);
        assert_true(r->truncated[first + 3]);
        assert_int_equal(r->len[first + 3], 100);
        assert_int_equal(r->seq[first + 3], 4);
        assert_int_equal(r->from[first + 3].port, port);
    }
    assert_int_equal(r->bad_recv, 0);
    assert_true(r->socket->uring != NULL);
    assert_int_equal(dgram_bufs(loop)->free, RS__URING_DGRAM_BUF_COUNT);
    close(peer);
    dgram_rx_finish(r);
    rs_event_loop_destroy(loop);
    test_free(r);
}

#define DGRAM_SOCKETS 8
#define DGRAM_EACH 60 /* 8 x 60 datagrams: the 8 readers' caps (32 each) are twice the ring's 128 buffers */

/* Readers that hold their datagrams run the datagram ring dry: recvs wait for
 * buffers, the held datagrams move out of the ring, so every socket fills to
 * its cap; once the readers read, every datagram arrives once, in order, and
 * every buffer comes back. None that the kernel kept is lost. */
static void udp_dry_ring_loses_no_datagram(void **state) {
    rs_event_loop_t *loop;
    dgram_rx_t *rx;
    uint16_t port;
    int peer;
    size_t i;
    size_t k;
    (void)state;
    skip_without_uring_sockets();
    rx = (dgram_rx_t *)test_calloc(DGRAM_SOCKETS, sizeof(*rx));
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    peer = udp_peer(&port);
    for (i = 0; i < DGRAM_SOCKETS; ++i) {
        dgram_rx_start(&rx[i], loop, RS_SOCKET_DOMAIN_IPV4, "127.0.0.1");
        rx[i].hold = true;
    }
    for (k = 0; k < DGRAM_EACH; ++k) {
        for (i = 0; i < DGRAM_SOCKETS; ++i) {
            udp_send_seq(peer, &rx[i].ep, (uint16_t)k, 2 + (k * 37 + i) % 1400);
        }
    }
    RS_TEST_RUN_UNTIL(loop, uring_of(loop)->starve_count > 0);
    /* Every socket reaches its cap: those that starved received once the
     * held datagrams left the ring. */
    for (i = 0; i < DGRAM_SOCKETS; ++i) {
        RS_TEST_RUN_UNTIL(loop, rs__uring_rxq_units(&rx[i].socket->uring->rxq) >= RS__URING_DGRAM_RX_MAX);
        assert_int_equal(rx[i].count, 0);
    }
    for (i = 0; i < DGRAM_SOCKETS; ++i) {
        rx[i].hold = false;
    }
    for (i = 0; i < DGRAM_SOCKETS; ++i) {
        RS_TEST_RUN_UNTIL(loop, rx[i].count == DGRAM_EACH);
    }
    for (i = 0; i < DGRAM_SOCKETS; ++i) {
        for (k = 0; k < DGRAM_EACH; ++k) {
            assert_int_equal(rx[i].seq[k], k);
            assert_int_equal(rx[i].len[k], 2 + (k * 37 + i) % 1400);
            assert_int_equal(rx[i].from[k].port, port);
            assert_false(rx[i].truncated[k]);
        }
        assert_int_equal(rx[i].bad_recv, 0);
    }
    assert_int_equal(dgram_bufs(loop)->free, RS__URING_DGRAM_BUF_COUNT);
    assert_true(rs_list_empty(&dgram_bufs(loop)->starved));
    close(peer);
    for (i = 0; i < DGRAM_SOCKETS; ++i) {
        dgram_rx_finish(&rx[i]);
    }
    rs_event_loop_destroy(loop);
    test_free(rx);
}

/* Paused, the socket's recv ends and the datagrams wait in the kernel, where
 * a receive call outside the callback takes them directly, in order; resumed,
 * the recv runs again and the rest arrive, in order. */
static void udp_pause_and_resume_on_ops(void **state) {
    rs_event_loop_t *loop;
    dgram_rx_t *r;
    uint16_t port;
    int peer;
    int calls;
    size_t k;
    rs_datagram_t d;
    (void)state;
    skip_without_uring_sockets();
    r = (dgram_rx_t *)test_calloc(1, sizeof(*r));
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    dgram_rx_start(r, loop, RS_SOCKET_DOMAIN_IPV4, "127.0.0.1");
    peer = udp_peer(&port);
    udp_send_seq(peer, &r->ep, 0, 10);
    RS_TEST_RUN_UNTIL(loop, r->count == 1);
    assert_int_equal(rs_socket_pause_reading(r->socket), RS_OK);
    RS_TEST_RUN_UNTIL(loop, r->socket->uring->recv.slot == 0); /* its cancel completed */
    calls = r->calls;
    for (k = 1; k <= 5; ++k) {
        udp_send_seq(peer, &r->ep, (uint16_t)k, 10);
    }
    for (k = 0; k < 5; ++k) {
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
    }
    assert_int_equal(r->calls, calls); /* paused: not called */
    assert_int_equal(r->count, 1);
    memset(&d, 0, sizeof(d));
    d.data = r->room;
    d.capacity = DGRAM_ROOM;
    assert_int_equal(rs_socket_recv_from(r->socket, &d), RS_OK); /* from the fd: the next in line */
    dgram_record(r, &d);
    assert_int_equal(r->seq[1], 1);
    assert_int_equal(rs_socket_resume_reading(r->socket), RS_OK);
    assert_true(r->socket->uring->recv.slot != 0);
    RS_TEST_RUN_UNTIL(loop, r->count == 6);
    for (k = 0; k < 6; ++k) {
        assert_int_equal(r->seq[k], k);
        assert_int_equal(r->from[k].port, port);
    }
    assert_int_equal(r->bad_recv, 0);
    close(peer);
    dgram_rx_finish(r);
    rs_event_loop_destroy(loop);
    test_free(r);
}

static void on_dgram_connected(rs_socket_t *socket, int error, void *user_data) {
    connect_result_t *c = (connect_result_t *)user_data;
    (void)socket;
    c->calls++;
    c->error = error;
}

/* Close with the recv op queued (round 0, the on_connect not yet delivered)
 * or in the kernel with datagrams held (round 1): the op ends at once, the
 * on_connect completes once with RS_ECANCELED, the reader is not called
 * again, and every buffer is back. Then a loop destroyed under a reading
 * socket: its reader hears RS_ECANCELED once. */
static void udp_close_with_recv_in_flight(void **state) {
    rs_event_loop_t *loop;
    dgram_rx_t *r;
    uint16_t port;
    int peer;
    int round;
    int calls = 0;
    (void)state;
    skip_without_uring_sockets();
    r = (dgram_rx_t *)test_calloc(1, sizeof(*r));
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    peer = udp_peer(&port);
    for (round = 0; round < 3; ++round) {
        connect_result_t c;
        rs_endpoint_t to;
        int i;
        dgram_rx_start(r, loop, RS_SOCKET_DOMAIN_IPV4, "127.0.0.1");
        assert_int_equal(rs_endpoint_from_ip(&to, "127.0.0.1", port), RS_OK);
        memset(&c, 0, sizeof(c));
        assert_int_equal(rs_socket_connect(r->socket, &to, loop, on_dgram_connected, &c), RS_OK);
        assert_true(r->socket->uring->recv.slot != 0);
        r->hold = true;
        if (round > 0) {
            RS_TEST_RUN_UNTIL(loop, c.calls == 1);
            udp_send_seq(peer, &r->ep, 7, 100);
            udp_send_seq(peer, &r->ep, 8, 100);
            RS_TEST_RUN_UNTIL(loop, r->socket->uring->rxq.count == 2);
            assert_true(r->socket->uring->recv.slot != 0);
        }
        calls = r->calls;
        if (round == 2) {
            break; /* the loop's destroy closes it */
        }
        assert_int_equal(rs_socket_close(r->socket), RS_OK);
        assert_int_equal(r->socket->uring->recv.slot, 0);
        assert_int_equal(dgram_bufs(loop)->free, RS__URING_DGRAM_BUF_COUNT);
        RS_TEST_RUN_UNTIL(loop, c.calls == 1);
        for (i = 0; i < 5; ++i) {
            assert_int_equal(rs_event_loop_run_once(loop, 1), RS_OK);
        }
        assert_int_equal(c.calls, 1);
        assert_int_equal(c.error, round == 0 ? RS_ECANCELED : RS_OK);
        assert_int_equal(r->calls, calls); /* closed: not called again */
        assert_int_equal(r->count, 0);
        dgram_rx_finish(r);
    }
    rs_event_loop_destroy(loop); /* closes the socket of round 2 */
    assert_int_equal(r->calls, calls + 1);
    assert_int_equal(r->error_calls, 1);
    assert_int_equal(r->last_error, RS_ECANCELED);
    close(peer);
    dgram_rx_finish(r);
    test_free(r);
}

/* -EBADR with a UDP recv op in flight: the reader hears RS_EIO once, after
 * the datagrams it already had, and receiving goes on. */
static void dropped_completions_end_a_udp_recv(void **state) {
    rs_event_loop_t *loop;
    dgram_rx_t *r;
    uint16_t port;
    int peer;
    (void)state;
    skip_without_uring_sockets();
    r = (dgram_rx_t *)test_calloc(1, sizeof(*r));
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    peer = udp_peer(&port);
    dgram_rx_start(r, loop, RS_SOCKET_DOMAIN_IPV4, "127.0.0.1");
    udp_send_seq(peer, &r->ep, 1, 100);
    RS_TEST_RUN_UNTIL(loop, r->count == 1);
    assert_true(r->socket->uring->recv.slot != 0);
    rs__uring_test_fake_ebadr = true;
    RS_TEST_RUN_UNTIL(loop, r->error_calls == 1);
    assert_int_equal(r->last_error, RS_EIO);
    assert_int_equal(r->count, 1);
    udp_send_seq(peer, &r->ep, 2, 100);
    RS_TEST_RUN_UNTIL(loop, r->count == 2);
    assert_int_equal(r->seq[1], 2);
    run_idle_ticks(loop, 5);
    assert_int_equal(r->error_calls, 1);
    assert_int_equal(r->bad_recv, 0);
    close(peer);
    dgram_rx_finish(r);
    assert_int_equal(dgram_bufs(loop)->free, RS__URING_DGRAM_BUF_COUNT);
    rs_event_loop_destroy(loop);
    test_free(r);
}

/* An ICMP error (a connected socket's peer port is closed) ends the recvmsg
 * op: the reader hears RS_ECONNREFUSED once, as from the readiness path's
 * SO_ERROR, and the op runs again; nothing spins. */
static void udp_icmp_error_on_ops(void **state) {
    rs_event_loop_t *loop;
    dgram_rx_t *r;
    connect_result_t c;
    rs_endpoint_t gone;
    uint16_t port;
    int peer;
    int calls;
    int i;
    (void)state;
    skip_without_uring_sockets();
    r = (dgram_rx_t *)test_calloc(1, sizeof(*r));
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    peer = udp_peer(&port);
    close(peer); /* its port is now closed */
    dgram_rx_start(r, loop, RS_SOCKET_DOMAIN_IPV4, "127.0.0.1");
    assert_int_equal(rs_endpoint_from_ip(&gone, "127.0.0.1", port), RS_OK);
    memset(&c, 0, sizeof(c));
    assert_int_equal(rs_socket_connect(r->socket, &gone, loop, on_dgram_connected, &c), RS_OK);
    RS_TEST_RUN_UNTIL(loop, c.calls == 1);
    assert_int_equal(rs_socket_send_to(r->socket, NULL, rs_byte_cursor_from_cstr("anyone?")), RS_OK);
    RS_TEST_RUN_UNTIL(loop, r->error_calls == 1);
    assert_int_equal(r->last_error, RS_ECONNREFUSED);
    assert_non_null(r->socket->uring);
    assert_true(r->socket->uring->recv.slot != 0); /* receiving again */
    calls = r->calls;
    for (i = 0; i < 5; ++i) {
        assert_int_equal(rs_event_loop_run_once(loop, 1), RS_OK);
    }
    assert_int_equal(r->calls, calls);
    assert_int_equal(r->bad_recv, 0);
    assert_int_equal(r->count, 0);
    dgram_rx_finish(r);
    rs_event_loop_destroy(loop);
    test_free(r);
}

/* Every allocation of a UDP socket's life on a loop with ops, failed in turn
 * (the loop's own included): each ends in a clean RS_ENOMEM from the call
 * that needed it, or the reader hears RS_ENOMEM once and receiving goes on;
 * the datagrams all arrive either way, nothing leaks. */
static void udp_on_ops_allocation_failures_are_clean(void **state) {
    rs_test_failing_alloc_t f;
    size_t n;
    uint16_t port;
    int peer;
    (void)state;
    skip_without_uring_sockets();
    peer = udp_peer(&port);
    for (n = 1; n < 1000; ++n) {
        rs_event_loop_options_t lo;
        rs_socket_options_t o;
        rs_event_loop_t *loop;
        dgram_rx_t *r;
        rs_endpoint_t any;
        int err = RS_OK;
        size_t k;
        rs_test_failing_alloc_init(&f, n);
        memset(&lo, 0, sizeof(lo));
        lo.allocator = &f.allocator;
        lo.backend = RS_EVENT_LOOP_BACKEND_IO_URING;
        loop = rs_event_loop_new(&lo, &err);
        if (!loop) {
            assert_int_equal(err, RS_ENOMEM);
            continue;
        }
        r = (dgram_rx_t *)test_calloc(1, sizeof(*r));
        r->room = (unsigned char *)test_malloc(DGRAM_ROOM);
        r->capacity = DGRAM_ROOM;
        memset(&o, 0, sizeof(o));
        o.type = RS_SOCKET_DGRAM;
        o.domain = RS_SOCKET_DOMAIN_IPV4;
        o.allocator = &f.allocator;
        r->socket = rs_socket_new(&o, &err);
        if (r->socket) {
            assert_int_equal(rs_endpoint_from_ip(&any, "127.0.0.1", 0), RS_OK);
            assert_int_equal(rs_socket_bind(r->socket, &any), RS_OK);
            assert_int_equal(rs_socket_get_bound_address(r->socket, &r->ep), RS_OK);
            err = rs_socket_assign_to_loop(r->socket, loop);
            if (!err) {
                err = rs_socket_subscribe_to_readable_events(r->socket, on_dgram_readable, r);
            }
        }
        if (!err) {
            for (k = 0; k < 3; ++k) {
                udp_send_seq(peer, &r->ep, (uint16_t)k, 20);
            }
            RS_TEST_RUN_UNTIL(loop, r->count == 3);
            for (k = 0; k < 3; ++k) {
                assert_int_equal(r->seq[k], k);
            }
            /* at most the one failure, heard by the callback or by a receive call */
            assert_true(r->error_calls + r->bad_recv <= 1);
            assert_true(r->error_calls == 0 || r->last_error == RS_ENOMEM);
        } else {
            assert_int_equal(err, RS_ENOMEM);
        }
        rs_socket_destroy(r->socket);
        rs_event_loop_destroy(loop);
        test_free(r->room);
        test_free(r);
        if (f.failures == 0) {
            break; /* the whole scenario ran without a failure */
        }
    }
    assert_int_equal(f.failures, 0);
    print_message("%zu allocations failed in turn\n", n - 1);
    close(peer);
}

/* Unix datagram sockets stay readiness-based on a loop with ops (a datagram
 * there can be longer than the ring's buffers), and work. */
static void local_dgram_sockets_stay_readiness_based(void **state) {
    rs_event_loop_t *loop;
    dgram_rx_t *r;
    rs_socket_t *sender;
    char path[64];
    (void)state;
    skip_without_uring_sockets();
    snprintf(path, sizeof(path), "@rs-test-uring-dgram-%ld", (long)getpid());
    r = (dgram_rx_t *)test_calloc(1, sizeof(*r));
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    dgram_rx_start(r, loop, RS_SOCKET_DOMAIN_LOCAL, path);
    assert_null(r->socket->uring);
    sender = socket_of(RS_SOCKET_DGRAM, RS_SOCKET_DOMAIN_LOCAL);
    assert_int_equal(rs_socket_send_to(sender, &r->ep, rs_byte_cursor_from_cstr("hi")), RS_OK);
    RS_TEST_RUN_UNTIL(loop, r->count == 1);
    assert_int_equal(r->len[0], 2);
    assert_memory_equal(r->head[0], "hi", 2);
    rs_socket_destroy(sender);
    dgram_rx_finish(r);
    rs_event_loop_destroy(loop);
    test_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dry_buffer_ring_loses_no_byte),
        cmocka_unit_test(tiny_ring_with_ops_loses_no_byte),
        cmocka_unit_test(holders_do_not_starve_readers),
        cmocka_unit_test(close_with_recv_and_send_in_flight),
        cmocka_unit_test(dropped_completions_end_the_ops_in_flight),
        cmocka_unit_test(readiness_sockets_without_the_kernel_features),
        cmocka_unit_test(listener_accepts_through_one_multishot_op),
        cmocka_unit_test(connections_arriving_while_stopped_come_on_the_next_start),
        cmocka_unit_test(close_listener_with_accept_in_flight_and_connections_kept),
        cmocka_unit_test(connect_runs_as_one_op),
        cmocka_unit_test(close_with_connect_in_flight),
        cmocka_unit_test(dropped_completions_end_a_connect),
        cmocka_unit_test(pipe_ends_stay_readiness_based),
        cmocka_unit_test(unix_streams_stay_readiness_based),
        cmocka_unit_test(udp_datagrams_run_on_ops),
        cmocka_unit_test(udp_truncation_on_ops),
        cmocka_unit_test(udp_dry_ring_loses_no_datagram),
        cmocka_unit_test(udp_pause_and_resume_on_ops),
        cmocka_unit_test(udp_close_with_recv_in_flight),
        cmocka_unit_test(udp_icmp_error_on_ops),
        cmocka_unit_test(dropped_completions_end_a_udp_recv),
        cmocka_unit_test(udp_on_ops_allocation_failures_are_clean),
        cmocka_unit_test(local_dgram_sockets_stay_readiness_based),
    };
    rs_test_sigpipe_setup();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
