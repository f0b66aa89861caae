/*
 * TLS interop with GnuTLS's command line tools (Debian gnutls-bin) as the real
 * peer. The whole program is skipped (exit 77) when they are not installed.
 *
 * - reseau client (client bootstrap + TLS installer) against
 *   `gnutls-serv --echo`: 256 KiB echoed byte for byte, ALPN, verification,
 *   and our close_notify as a clean end.
 * - SNI: `gnutls-serv --sni-hostname localhost --sni-hostname-fatal` accepts
 *   our SNI "localhost" and refuses another name with a fatal alert, which
 *   reaches us as RS_ETLS_ALERT_RECEIVED: the server saw what we sent.
 * - Resumption: the second connection with the same context is resumed
 *   (gnutls-serv keeps a session database).
 * - `gnutls-cli` against a reseau server (echo handler): echo, TLS 1.2,
 *   trusted certificate and ALPN in its output; the SNI it sent seen by reseau.
 * - `gnutls-cli --resume` against a reseau server: the server's session cache
 *   resumes its second handshake, on both sides' word.
 *
 * gnutls-serv has no option to pick its address: it listens on the wildcard
 * address (on a port the test picked, for the test's duration only); the test
 * connects to it on loopback. Every wait is bounded; children are killed in
 * the teardown.
 */
#include "tls_interop_util.h"

static char serv_path[512];
static char cli_path[512];

/* Printable lines (no CR, which gnutls-serv's echo mode would rewrite). */
static char *make_text(size_t len) {
    uint8_t *raw = ix_make_data(len, 99);
    char *text = (char *)malloc(len + 1);
    size_t i;
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
    assert_non_null(text);
    for (i = 0; i < len; ++i) {
        text[i] = (i % 100 == 99) ? '\n' : alphabet[raw[i] % 64];
    }
    text[len] = '\0';
    free(raw);
    return text;
}

/* gnutls-serv on `port` with server.pem and the extra arguments. */
static pid_t start_gnutls_serv(uint16_t port, const char *const *extra) {
    char port_arg[32];
    char cert_arg[600];
    char key_arg[600];
    char *argv[24];
    int n = 0;
    pid_t child;
    snprintf(port_arg, sizeof(port_arg), "--port=%u", (unsigned)port);
    snprintf(cert_arg, sizeof(cert_arg), "--x509certfile=%s", tls_test_path("server.pem"));
    snprintf(key_arg, sizeof(key_arg), "--x509keyfile=%s", tls_test_path("server.key"));
    argv[n++] = serv_path;
    argv[n++] = port_arg;
    argv[n++] = cert_arg;
    argv[n++] = key_arg;
    while (extra && *extra) {
        argv[n++] = (char *)*extra++;
    }
    argv[n] = NULL;
    child = tix_spawn(argv, -1, tix_log_path("gnutls-serv.log"));
    tix_wait_listening(child, port);
    return child;
}

static void reseau_client_echo_with_gnutls_serv(void **state) {
    const char *extra[] = {"--echo", "--alpn=foo", "--alpn=bar", NULL};
    const size_t len = 256 * 1024;
    static tix_env_t env;
    static tix_client_t cl;
    static tix_conn_t conn;
    rs_tls_ctx_t *ctx;
    char *text;
    uint16_t port;
    int err;
    (void)state;
    tix_env_init(&env);
    port = ix_free_port(SOCK_STREAM);
    start_gnutls_serv(port, extra);
    ctx = tix_client_ctx("ca.pem", "h2;bar");
    tix_conn_init(&conn, TIX_RECORD);
    err = tix_connect(&env, &cl, &conn, "localhost", port, ctx, "localhost", NULL);
    if (err) {
        TIX_FAIL("handshake with gnutls-serv failed: %s (%s)", rs_err_name(err), rs_strerror(err));
    }
    assert_true(conn.info.negotiated);
    assert_true(conn.info.peer_verified);
    assert_int_equal(conn.info.version, 0x0303);
    assert_non_null(conn.info.alpn);
    assert_string_equal(conn.info.alpn, "bar");

    text = make_text(len);
    tix_send(&conn, text, len);
    TIX_WAIT_RECEIVED(&conn, text, len);
    tix_close(&conn);
    if (conn.shutdown_error != RS_OK) {
        TIX_FAIL("our graceful close ended with %s, expected RS_OK", rs_err_name(conn.shutdown_error));
    }
    assert_int_equal(conn.received, len);

    free(text);
    rs_tls_ctx_release(ctx);
    tix_conn_cleanup(&conn);
    tix_env_cleanup(&env);
}

static void gnutls_serv_checks_the_sni_we_send(void **state) {
    const char *extra[] = {"--echo", "--sni-hostname=localhost", "--sni-hostname-fatal", NULL};
    static tix_env_t env;
    static tix_client_t cl;
    static tix_conn_t right, wrong;
    rs_tls_ctx_t *ctx;
    uint16_t port;
    int err;
    (void)state;
    tix_env_init(&env);
    port = ix_free_port(SOCK_STREAM);
    start_gnutls_serv(port, extra);
    ctx = tix_client_ctx("ca.pem", NULL);

    tix_conn_init(&right, TIX_RECORD);
    err = tix_connect(&env, &cl, &right, "localhost", port, ctx, "localhost", NULL);
    if (err) {
        TIX_FAIL("handshake with SNI localhost failed: %s", rs_err_name(err));
    }
    tix_send_text(&right, "sni ok\n");
    TIX_WAIT_RECEIVED(&right, "sni ok\n", 7);
    tix_close(&right);

    /* Another name: gnutls-serv ends the handshake with unrecognized_name. */
    tix_conn_init(&wrong, TIX_RECORD);
    err = tix_connect(&env, &cl, &wrong, "localhost", port, ctx, "wrong.example", NULL);
    if (err != RS_ETLS_ALERT_RECEIVED) {
        TIX_FAIL("SNI wrong.example: expected RS_ETLS_ALERT_RECEIVED (unrecognized_name), got %s",
                 rs_err_name(err));
    }
    TIX_EXPECT_IN_FILE(tix_logs[0], "SNI host name not recognised");

    rs_tls_ctx_release(ctx);
    tix_conn_cleanup(&right);
    tix_conn_cleanup(&wrong);
    tix_env_cleanup(&env);
}

static void second_connection_to_gnutls_serv_is_resumed(void **state) {
    const char *extra[] = {"--echo", NULL};
    static tix_env_t env;
    static tix_client_t cl;
    static tix_conn_t first, second;
    rs_tls_ctx_t *ctx;
    uint16_t port;
    int err;
    (void)state;
    tix_env_init(&env);
    port = ix_free_port(SOCK_STREAM);
    start_gnutls_serv(port, extra);
    ctx = tix_client_ctx("ca.pem", NULL);

    tix_conn_init(&first, TIX_RECORD);
    err = tix_connect(&env, &cl, &first, "localhost", port, ctx, "localhost", NULL);
    if (err) {
        TIX_FAIL("first handshake failed: %s", rs_err_name(err));
    }
    assert_false(first.info.resumed);
    tix_send_text(&first, "one\n");
    TIX_WAIT_RECEIVED(&first, "one\n", 4);
    tix_close(&first);

    tix_conn_init(&second, TIX_RECORD);
    err = tix_connect(&env, &cl, &second, "localhost", port, ctx, "localhost", NULL);
    if (err) {
        TIX_FAIL("second handshake failed: %s", rs_err_name(err));
    }
    if (!second.info.resumed) {
        TIX_FAIL("the second connection to gnutls-serv with the same context was not resumed");
    }
    tix_send_text(&second, "two\n");
    TIX_WAIT_RECEIVED(&second, "two\n", 4);
    tix_close(&second);

    rs_tls_ctx_release(ctx);
    tix_conn_cleanup(&first);
    tix_conn_cleanup(&second);
    tix_env_cleanup(&env);
}

/* gnutls-cli to localhost:port with our CA, stdin from the pair. */
static pid_t start_gnutls_cli(uint16_t port, int stdin_fd, bool resume, const char *log) {
    char port_arg[32];
    char ca_arg[600];
    char *argv[12];
    int n = 0;
    snprintf(port_arg, sizeof(port_arg), "--port=%u", (unsigned)port);
    snprintf(ca_arg, sizeof(ca_arg), "--x509cafile=%s", tls_test_path("ca.pem"));
    argv[n++] = cli_path;
    argv[n++] = port_arg;
    argv[n++] = ca_arg;
    argv[n++] = (char *)"--alpn=echo";
    if (resume) {
        argv[n++] = (char *)"--resume";
    }
    argv[n++] = (char *)"localhost";
    argv[n] = NULL;
    return tix_spawn(argv, stdin_fd, log);
}

/* Send a line through gnutls-cli, see it come back, close its stdin and
 * expect a clean exit. */
static void gnutls_cli_round_trip(tix_conn_t *conn, pid_t child, int in_fd, const char *log) {
    const char *line = "ping from gnutls-cli\n";
    uint64_t deadline;
    int status;
    tix_send_stdin(in_fd, line);
    TIX_WAIT(conn->received >= strlen(line), "the reseau server got %zu bytes from gnutls-cli, expected %zu",
             conn->received, strlen(line));
    deadline = rs_clock_now_ns() + IX_WAIT_NS;
    /* gnutls-cli prints what it receives (its stdin is not echoed): the echo */
    while (!tix_file_contains(log, "ping from gnutls-cli")) {
        if (rs_clock_now_ns() > deadline) {
            TIX_FAIL("gnutls-cli did not print the echo");
        }
        rs_thread_sleep_ns(10 * RS_NS_PER_MS);
    }
    close(in_fd); /* end of stdin: gnutls-cli says goodbye and exits */
    status = tix_wait_exit(child, "gnutls-cli");
    if (status != 0) {
        TIX_FAIL("gnutls-cli exited with status %d", status);
    }
}

static void gnutls_cli_echo_with_reseau_server(void **state) {
    static tix_env_t env;
    static tix_server_t server;
    rs_tls_ctx_t *ctx;
    const char *log;
    int in[2];
    pid_t child;
    (void)state;
    tix_env_init(&env);
    ctx = tix_server_ctx("server", "h2;echo");
    tix_server_start(&env, &server, ctx, TIX_ECHO);
    tix_stdin_pair(in);
    log = tix_log_path("gnutls-cli.log");
    child = start_gnutls_cli(server.port, in[0], false, log);
    close(in[0]);
    gnutls_cli_round_trip(&server.conns[0], child, in[1], log);
    TIX_EXPECT_IN_FILE(log, "- Status: The certificate is trusted.");
    TIX_EXPECT_IN_FILE(log, "- Description: (TLS1.2");
    TIX_EXPECT_IN_FILE(log, "- Application protocol: echo");
    TIX_WAIT(server.conns[0].shutdown_calls > 0, "the reseau server's connection did not shut down");
    assert_string_equal(server.conns[0].server_name, "localhost");
    assert_string_equal(server.conns[0].alpn, "echo");
    if (server.conns[0].shutdown_error != RS_EEOF) {
        TIX_FAIL("expected RS_EEOF (gnutls-cli's close_notify), got %s",
                 rs_err_name(server.conns[0].shutdown_error));
    }
    assert_int_equal(server.setup_errors, 0);
    tix_server_stop(&server);
    rs_tls_ctx_release(ctx);
    tix_env_cleanup(&env);
}

static void gnutls_cli_resumes_with_reseau_server(void **state) {
    static tix_env_t env;
    static tix_server_t server;
    rs_tls_ctx_t *ctx;
    const char *log;
    int in[2];
    pid_t child;
    (void)state;
    tix_env_init(&env);
    ctx = tix_server_ctx("server", "echo");
    tix_server_start(&env, &server, ctx, TIX_ECHO);
    tix_stdin_pair(in);
    log = tix_log_path("gnutls-cli.log");
    child = start_gnutls_cli(server.port, in[0], true, log);
    close(in[0]);
    /* --resume: a first handshake, closed; then a second, resumed, used. */
    TIX_WAIT(server.conns[1].setup_calls > 0, "gnutls-cli --resume made no second connection");
    gnutls_cli_round_trip(&server.conns[1], child, in[1], log);
    TIX_EXPECT_IN_FILE(log, "*** This is a resumed session");
    assert_false(server.conns[0].info.resumed);
    if (!server.conns[1].info.resumed) {
        TIX_FAIL("the reseau server did not resume gnutls-cli's second handshake");
    }
    assert_int_equal(server.setup_errors, 0);
    tix_server_stop(&server);
    rs_tls_ctx_release(ctx);
    tix_env_cleanup(&env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(reseau_client_echo_with_gnutls_serv, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(gnutls_serv_checks_the_sni_we_send, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(second_connection_to_gnutls_serv_is_resumed, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(gnutls_cli_echo_with_reseau_server, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(gnutls_cli_resumes_with_reseau_server, ix_setup, tix_teardown),
    };
    int failed;
    if (!ix_find_tool("gnutls-serv", serv_path, sizeof(serv_path)) ||
        !ix_find_tool("gnutls-cli", cli_path, sizeof(cli_path))) {
        printf("skipped: gnutls-serv and gnutls-cli are not installed (Debian package gnutls-bin)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_DFL); /* reseau must never raise it */
    failed = cmocka_run_group_tests_name("tls_gnutls", tests, NULL, NULL);
    tls_test_remove_cert_dir();
    return failed;
}
