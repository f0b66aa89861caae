/*
 * Interop with ncat (Nmap's netcat) as the real peer.
 *
 * - TCP echo: `ncat -l 127.0.0.1 <port> --exec /bin/cat`; reseau connects,
 *   sends 1 MiB in 16 KiB writes, reads the echo back and compares byte for
 *   byte and by checksum. Two ncat limits shape this test:
 *   - ncat relays between the socket and `cat` through two pipes with
 *     blocking writes, so it deadlocks (in ncat, with any client) once more
 *     than about a pipe's worth of data is in flight; hence at most
 *     NCAT_WINDOW bytes are sent ahead of the echo.
 *   - it drops the bytes still in `cat` once the client half-closes, so there
 *     is no half-close check here (test_socat.c has one).
 * - The same over a Unix-domain socket (`ncat -lU <path> --exec /bin/cat`).
 * - TCP the other way: reseau listens, `ncat --send-only 127.0.0.1 <port>`
 *   with stdin from a 1 MiB file connects and sends it; reseau reads to EOF.
 *
 * Each test runs on every loop backend (RS_TEST_PER_BACKEND). Skipped, with a
 * message, when ncat is not installed. Every child is killed and reaped in
 * the teardown.
 */
#include "test_util.h"

#include "interop_util.h"

/* Bytes sent ahead of the echo: well under a 64 KiB pipe (see above). */
#define NCAT_WINDOW ((size_t)32 * 1024)

static char ncat_path[512];
static char cat_path[512];

static void tcp_echo_through_exec_cat_1mib(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop;
    rs_endpoint_t ep;
    rs_socket_t *s;
    char port_arg[16];
    char l[] = "-l";
    char host[] = "127.0.0.1";
    char exec_opt[] = "--exec";
    uint16_t port;
    pid_t child;
    IX_REQUIRE_TOOL("ncat", ncat_path);
    IX_REQUIRE_TOOL("cat", cat_path);
    loop = ix_loop_new(b);
    port = ix_free_port(SOCK_STREAM);
    snprintf(port_arg, sizeof(port_arg), "%u", (unsigned)port);
    {
        char *argv[] = {ncat_path, l, host, port_arg, exec_opt, cat_path, NULL};
        child = ix_spawn(argv, NULL);
    }
    assert_int_equal(rs_endpoint_from_ip(&ep, "127.0.0.1", port), RS_OK);
    s = ix_connect_retry(loop, &ep, child);
    ix_echo_round_trip(loop, s, IX_MIB, NCAT_WINDOW, false);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(ncat_, tcp_echo_through_exec_cat_1mib)

static void unix_echo_through_exec_cat_1mib(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop;
    rs_endpoint_t ep;
    rs_socket_t *s;
    char path[128];
    char lu[] = "-lU";
    char exec_opt[] = "--exec";
    pid_t child;
    IX_REQUIRE_TOOL("ncat", ncat_path);
    IX_REQUIRE_TOOL("cat", cat_path);
    loop = ix_loop_new(b);
    snprintf(path, sizeof(path), "%s/echo.sock", ix_tmpdir);
    {
        char *argv[] = {ncat_path, lu, path, exec_opt, cat_path, NULL};
        child = ix_spawn(argv, NULL);
    }
    assert_int_equal(rs_endpoint_from_local(&ep, path), RS_OK);
    s = ix_connect_retry(loop, &ep, child);
    ix_echo_round_trip(loop, s, IX_MIB, NCAT_WINDOW, false);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(ncat_, unix_echo_through_exec_cat_1mib)

static void send_only_peer_sends_file_to_reseau_listener(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop;
    rs_endpoint_t at;
    rs_endpoint_t bound;
    rs_socket_t *listener;
    ix_acceptor_t a;
    ix_xfer_t x;
    char file[128];
    char port_arg[16];
    char send_only[] = "--send-only";
    char host[] = "127.0.0.1";
    uint8_t *data;
    pid_t child;
    IX_REQUIRE_TOOL("ncat", ncat_path);
    loop = ix_loop_new(b);
    data = ix_make_data(IX_MIB, 3);
    snprintf(file, sizeof(file), "%s/data.bin", ix_tmpdir);
    ix_write_file(file, data, IX_MIB);
    assert_int_equal(rs_endpoint_from_ip(&at, "127.0.0.1", 0), RS_OK);
    memset(&a, 0, sizeof(a));
    ix_xfer_init(&x, NULL, NULL, 0, IX_MIB);
    a.loop = loop;
    a.x = &x;
    listener = ix_listen(loop, &at, &a, &bound);
    snprintf(port_arg, sizeof(port_arg), "%u", (unsigned)bound.port);
    {
        char *argv[] = {ncat_path, send_only, host, port_arg, NULL};
        child = ix_spawn(argv, file); /* ncat ... < file */
    }
    ix_receive_from_child(loop, listener, &a, child, data, IX_MIB);
    rs_event_loop_destroy(loop);
    ix_xfer_cleanup(&x);
    free(data);
}
RS_TEST_PER_BACKEND(ncat_, send_only_peer_sends_file_to_reseau_listener)

static void unix_send_only_peer_sends_file_to_reseau_listener(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop;
    rs_endpoint_t at;
    rs_endpoint_t bound;
    rs_socket_t *listener;
    ix_acceptor_t a;
    ix_xfer_t x;
    char file[128];
    char path[128];
    char send_only[] = "--send-only";
    char u_opt[] = "-U";
    uint8_t *data;
    pid_t child;
    IX_REQUIRE_TOOL("ncat", ncat_path);
    loop = ix_loop_new(b);
    data = ix_make_data(IX_MIB, 5);
    snprintf(file, sizeof(file), "%s/data.bin", ix_tmpdir);
    snprintf(path, sizeof(path), "%s/in.sock", ix_tmpdir);
    ix_write_file(file, data, IX_MIB);
    assert_int_equal(rs_endpoint_from_local(&at, path), RS_OK);
    memset(&a, 0, sizeof(a));
    ix_xfer_init(&x, NULL, NULL, 0, IX_MIB);
    a.loop = loop;
    a.x = &x;
    listener = ix_listen(loop, &at, &a, &bound);
    {
        char *argv[] = {ncat_path, u_opt, send_only, path, NULL};
        child = ix_spawn(argv, file);
    }
    ix_receive_from_child(loop, listener, &a, child, data, IX_MIB);
    rs_event_loop_destroy(loop);
    ix_xfer_cleanup(&x);
    free(data);
}
RS_TEST_PER_BACKEND(ncat_, unix_send_only_peer_sends_file_to_reseau_listener)

int main(void) {
    const struct CMUnitTest tests[] = {
        IX_PER_BACKEND_TESTS(ncat_, tcp_echo_through_exec_cat_1mib),
        IX_PER_BACKEND_TESTS(ncat_, unix_echo_through_exec_cat_1mib),
        IX_PER_BACKEND_TESTS(ncat_, send_only_peer_sends_file_to_reseau_listener),
        IX_PER_BACKEND_TESTS(ncat_, unix_send_only_peer_sends_file_to_reseau_listener),
    };
    /* SIGPIPE stays at its default: reseau must never raise it. */
    signal(SIGPIPE, SIG_DFL);
    return cmocka_run_group_tests_name("ncat", tests, NULL, NULL);
}
