/*
 * Interop with socat as the real peer.
 *
 * - TCP echo: socat listens on 127.0.0.1 and runs `cat` (and, separately, its
 *   PIPE address); reseau connects, sends 1 MiB in 16 KiB writes, reads the
 *   echo back, compares byte for byte and by checksum, half-closes and expects
 *   socat to end the stream.
 * - TCP the other way: reseau listens, `socat -u FILE:... TCP:...` connects
 *   and sends a 1 MiB file; reseau reads it to EOF and compares.
 * - The same two over Unix-domain sockets (UNIX-LISTEN / UNIX-CONNECT).
 * - UDP: socat UDP-LISTEN with PIPE echoes datagrams back, one at a time.
 *
 * Each test runs on every loop backend (RS_TEST_PER_BACKEND). Skipped, with a
 * message, when socat is not installed. Every child is killed and reaped in
 * the teardown.
 */
#include "test_util.h"

#include "interop_util.h"

static char socat_path[512];

/* ------------------------------------------------------------- TCP echo */

static void tcp_echo(rs_event_loop_backend_t b, const char *right) {
    rs_event_loop_t *loop;
    rs_endpoint_t ep;
    rs_socket_t *s;
    char listen_arg[128];
    char right_arg[64];
    uint16_t port;
    pid_t child;
    IX_REQUIRE_TOOL("socat", socat_path);
    loop = ix_loop_new(b);
    port = ix_free_port(SOCK_STREAM);
    snprintf(listen_arg, sizeof(listen_arg), "TCP-LISTEN:%u,bind=127.0.0.1,reuseaddr", (unsigned)port);
    snprintf(right_arg, sizeof(right_arg), "%s", right);
    {
        char *argv[] = {socat_path, listen_arg, right_arg, NULL};
        child = ix_spawn(argv, NULL);
    }
    assert_int_equal(rs_endpoint_from_ip(&ep, "127.0.0.1", port), RS_OK);
    s = ix_connect_retry(loop, &ep, child);
    ix_echo_round_trip(loop, s, IX_MIB, 0, true);
    rs_event_loop_destroy(loop);
}

static void tcp_echo_through_cat_1mib(rs_event_loop_backend_t b) {
    tcp_echo(b, "EXEC:cat");
}
RS_TEST_PER_BACKEND(socat_, tcp_echo_through_cat_1mib)

static void tcp_echo_through_pipe_1mib(rs_event_loop_backend_t b) {
    tcp_echo(b, "PIPE");
}
RS_TEST_PER_BACKEND(socat_, tcp_echo_through_pipe_1mib)

/* ------------------------------------------------ socat sends, reseau reads */

static void peer_sends_file(rs_event_loop_backend_t b, bool unix_domain) {
    rs_event_loop_t *loop;
    rs_endpoint_t at;
    rs_endpoint_t bound;
    rs_socket_t *listener;
    ix_acceptor_t a;
    ix_xfer_t x;
    char file[128];
    char from_arg[160];
    char to_arg[192];
    uint8_t *data;
    pid_t child;
    IX_REQUIRE_TOOL("socat", socat_path);
    loop = ix_loop_new(b);
    data = ix_make_data(IX_MIB, 7);
    snprintf(file, sizeof(file), "%s/data.bin", ix_tmpdir);
    ix_write_file(file, data, IX_MIB);
    if (unix_domain) {
        char path[128];
        snprintf(path, sizeof(path), "%s/in.sock", ix_tmpdir);
        assert_int_equal(rs_endpoint_from_local(&at, path), RS_OK);
    } else {
        assert_int_equal(rs_endpoint_from_ip(&at, "127.0.0.1", 0), RS_OK);
    }
    memset(&a, 0, sizeof(a));
    ix_xfer_init(&x, NULL, NULL, 0, IX_MIB);
    a.loop = loop;
    a.x = &x;
    listener = ix_listen(loop, &at, &a, &bound);
    snprintf(from_arg, sizeof(from_arg), "FILE:%s", file);
    if (unix_domain) {
        snprintf(to_arg, sizeof(to_arg), "UNIX-CONNECT:%s", bound.path);
    } else {
        snprintf(to_arg, sizeof(to_arg), "TCP:127.0.0.1:%u", (unsigned)bound.port);
    }
    {
        char u[] = "-u";
        char *argv[] = {socat_path, u, from_arg, to_arg, NULL};
        child = ix_spawn(argv, NULL);
    }
    ix_receive_from_child(loop, listener, &a, child, data, IX_MIB);
    rs_event_loop_destroy(loop);
    ix_xfer_cleanup(&x);
    free(data);
}

static void tcp_peer_sends_file_to_reseau_listener(rs_event_loop_backend_t b) {
    peer_sends_file(b, false);
}
RS_TEST_PER_BACKEND(socat_, tcp_peer_sends_file_to_reseau_listener)

static void unix_peer_sends_file_to_reseau_listener(rs_event_loop_backend_t b) {
    peer_sends_file(b, true);
}
RS_TEST_PER_BACKEND(socat_, unix_peer_sends_file_to_reseau_listener)

/* ------------------------------------------------------------- Unix echo */

static void unix_echo_through_cat_1mib(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop;
    rs_endpoint_t ep;
    rs_socket_t *s;
    char path[128];
    char listen_arg[160];
    char cat_arg[] = "EXEC:cat";
    pid_t child;
    IX_REQUIRE_TOOL("socat", socat_path);
    loop = ix_loop_new(b);
    snprintf(path, sizeof(path), "%s/echo.sock", ix_tmpdir);
    snprintf(listen_arg, sizeof(listen_arg), "UNIX-LISTEN:%s", path);
    {
        char *argv[] = {socat_path, listen_arg, cat_arg, NULL};
        child = ix_spawn(argv, NULL);
    }
    assert_int_equal(rs_endpoint_from_local(&ep, path), RS_OK);
    s = ix_connect_retry(loop, &ep, child);
    {
        rs_endpoint_t remote;
        assert_int_equal(rs_socket_get_remote_address(s, &remote), RS_OK);
        assert_int_equal(remote.domain, RS_SOCKET_DOMAIN_LOCAL);
        assert_string_equal(remote.path, path);
    }
    ix_echo_round_trip(loop, s, IX_MIB, 0, true);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(socat_, unix_echo_through_cat_1mib)

/* ------------------------------------------------------------- UDP echo */

#define UDP_ROUNDS 100

typedef struct udp_echo {
    rs_socket_t *socket;
    uint32_t expect_seq;
    uint32_t matched;  /* echoes received for expect_seq */
    int bad;           /* wrong length/content, or a foreign source */
    int stale;         /* duplicates of earlier datagrams (resends) */
    int recv_errors;
    rs_endpoint_t peer;
} udp_echo_t;

static void udp_payload(uint8_t *p, size_t len, uint32_t seq) {
    size_t i;
    p[0] = (uint8_t)(seq >> 24);
    p[1] = (uint8_t)(seq >> 16);
    p[2] = (uint8_t)(seq >> 8);
    p[3] = (uint8_t)seq;
    for (i = 4; i < len; ++i) {
        p[i] = (uint8_t)(seq * 7u + i);
    }
}

static size_t udp_len(uint32_t seq) {
    return 64 + (seq * 97u) % 1200u;
}

static void udp_on_readable(rs_socket_t *s, int error, void *user_data) {
    udp_echo_t *u = (udp_echo_t *)user_data;
    (void)error;
    for (;;) {
        uint8_t buf[2048];
        uint8_t want[2048];
        rs_datagram_t d;
        uint32_t seq;
        int err;
        memset(&d, 0, sizeof(d));
        d.data = buf;
        d.capacity = sizeof(buf);
        err = rs_socket_recv_from(s, &d);
        if (err == RS_EAGAIN) {
            return;
        }
        if (err != RS_OK) {
            u->recv_errors++;
            return;
        }
        if (d.len < 4 || !rs_endpoint_equal(&d.endpoint, &u->peer)) {
            u->bad++;
            continue;
        }
        seq = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) | ((uint32_t)buf[2] << 8) | buf[3];
        if (seq < u->expect_seq) {
            u->stale++;
            continue;
        }
        udp_payload(want, udp_len(seq), seq);
        if (seq != u->expect_seq || d.len != udp_len(seq) || d.truncated || memcmp(buf, want, d.len) != 0) {
            u->bad++;
            continue;
        }
        u->matched++;
    }
}

static void udp_echo_through_pipe(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop;
    rs_socket_options_t o;
    rs_socket_t *s;
    rs_endpoint_t local;
    udp_echo_t u;
    char listen_arg[128];
    char pipe_arg[] = "PIPE";
    uint16_t port;
    uint32_t seq;
    pid_t child;
    int err = 0;
    int resends = 0;
    IX_REQUIRE_TOOL("socat", socat_path);
    loop = ix_loop_new(b);
    port = ix_free_port(SOCK_DGRAM);
    snprintf(listen_arg, sizeof(listen_arg), "UDP-LISTEN:%u,bind=127.0.0.1", (unsigned)port);
    {
        char *argv[] = {socat_path, listen_arg, pipe_arg, NULL};
        child = ix_spawn(argv, NULL);
    }
    memset(&u, 0, sizeof(u));
    assert_int_equal(rs_endpoint_from_ip(&u.peer, "127.0.0.1", port), RS_OK);
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.type = RS_SOCKET_DGRAM;
    s = rs_socket_new(&o, &err);
    assert_non_null(s);
    u.socket = s;
    assert_int_equal(rs_endpoint_from_ip(&local, "127.0.0.1", 0), RS_OK);
    assert_int_equal(rs_socket_bind(s, &local), RS_OK);
    assert_int_equal(rs_socket_assign_to_loop(s, loop), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(s, udp_on_readable, &u), RS_OK);

    /* ping-pong: one datagram in flight at a time, so socat's pipe never
     * merges two; resend after 200 ms (the first ones go out before socat
     * listens). */
    for (seq = 0; seq < UDP_ROUNDS; ++seq) {
        uint8_t p[2048];
        uint64_t deadline = rs_clock_now_ns() + IX_WAIT_NS;
        u.expect_seq = seq;
        u.matched = 0;
        udp_payload(p, udp_len(seq), seq);
        while (u.matched == 0) {
            uint64_t resend_at = rs_clock_now_ns() + 200 * RS_NS_PER_MS;
            int status;
            assert_int_equal(rs_socket_send_to(s, &u.peer, rs_byte_cursor_from_array(p, udp_len(seq))), RS_OK);
            while (u.matched == 0 && rs_clock_now_ns() < resend_at) {
                assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
            }
            if (u.matched) {
                break;
            }
            resends++;
            if (ix_child_exited(child, &status)) {
                fail_msg("socat exited (status 0x%x)", status);
            }
            if (rs_clock_now_ns() > deadline) {
                fail_msg("no echo for datagram %u after %d resends", (unsigned)seq, resends);
            }
        }
        assert_int_equal(u.matched, 1);
    }
    assert_int_equal(u.bad, 0);
    assert_int_equal(u.recv_errors, 0);
    rs_socket_destroy(s);
    ix_run_ticks(loop, 2);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(socat_, udp_echo_through_pipe)

int main(void) {
    const struct CMUnitTest tests[] = {
        IX_PER_BACKEND_TESTS(socat_, tcp_echo_through_cat_1mib),
        IX_PER_BACKEND_TESTS(socat_, tcp_echo_through_pipe_1mib),
        IX_PER_BACKEND_TESTS(socat_, tcp_peer_sends_file_to_reseau_listener),
        IX_PER_BACKEND_TESTS(socat_, unix_echo_through_cat_1mib),
        IX_PER_BACKEND_TESTS(socat_, unix_peer_sends_file_to_reseau_listener),
        IX_PER_BACKEND_TESTS(socat_, udp_echo_through_pipe),
    };
    /* SIGPIPE stays at its default: reseau must never raise it. */
    signal(SIGPIPE, SIG_DFL);
    return cmocka_run_group_tests_name("socat", tests, NULL, NULL);
}
