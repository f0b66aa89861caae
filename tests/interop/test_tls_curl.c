/*
 * TLS interop with curl (OpenSSL inside) against a small reseau HTTPS
 * responder: a server bootstrap with the TLS installer and a handler that
 * answers the first request head on each connection with a fixed body and
 * then closes gracefully (close_notify). Skipped (exit 77) without curl.
 *
 * - `curl --cacert ca.pem https://localhost:PORT/`: the body arrives, curl
 *   reports TLS 1.2 and the ALPN protocol the responder chose, and reseau saw
 *   curl's SNI and request.
 * - Two URLs in one curl run: two connections (the responder closes each),
 *   the second resumed from the reseau server's session cache.
 * - curl trusting another CA refuses the responder (exit 60), and the
 *   responder's handshake fails with the alert curl sent.
 *
 * The responder listens on 127.0.0.1 on a port the system picked; curl's
 * "localhost" may try ::1 first, which is refused, then 127.0.0.1. Every wait
 * is bounded; curl is killed in the teardown if it is still running.
 */
#include "tls_interop_util.h"

static char curl_path[512];

/* curl -sS -v --cacert CA [urls...] -o BODY; its log in curl.log. */
static pid_t start_curl(const char *ca, uint16_t port, int urls, const char **body_paths) {
    static char url[2][96];
    static char body[2][160];
    char *argv[24];
    int n = 0;
    int i;
    argv[n++] = curl_path;
    argv[n++] = (char *)"-sS";
    argv[n++] = (char *)"-v";
    argv[n++] = (char *)"--max-time";
    argv[n++] = (char *)"20";
    argv[n++] = (char *)"--cacert";
    argv[n++] = (char *)tls_test_path(ca);
    for (i = 0; i < urls; ++i) {
        snprintf(url[i], sizeof(url[i]), "https://localhost:%u/%s", (unsigned)port, i == 0 ? "" : "again");
        snprintf(body[i], sizeof(body[i]), "%s/body%d", ix_tmpdir, i);
        argv[n++] = (char *)"-o";
        argv[n++] = body[i];
        argv[n++] = url[i];
        if (body_paths) {
            body_paths[i] = body[i];
        }
    }
    argv[n] = NULL;
    return tix_spawn(argv, -1, tix_log_path("curl.log"));
}

static void expect_body(const char *path) {
    char *body = tix_read_file(path, NULL);
    if (strcmp(body, TIX_HTTP_BODY) != 0) {
        print_message("body: \"%s\"\n", body);
        free(body);
        TIX_FAIL("curl did not save the responder's body in %s", path);
    }
    free(body);
}

static void curl_gets_a_page_from_reseau_https_responder(void **state) {
    static tix_env_t env;
    static tix_server_t server;
    rs_tls_ctx_t *ctx;
    const char *body;
    pid_t child;
    int status;
    (void)state;
    tix_env_init(&env);
    ctx = tix_server_ctx("server", "http/1.1");
    tix_server_start(&env, &server, ctx, TIX_HTTP);
    child = start_curl("ca.pem", server.port, 1, &body);
    status = tix_wait_exit(child, "curl");
    if (status != 0) {
        TIX_FAIL("curl exited with status %d", status);
    }
    expect_body(body);
    TIX_EXPECT_IN_FILE(tix_logs[0], "SSL connection using TLSv1.2");
    TIX_EXPECT_IN_FILE(tix_logs[0], "server accepted http/1.1");
    TIX_EXPECT_IN_FILE(tix_logs[0], "SSL certificate verify ok");
    TIX_WAIT(server.conns[0].shutdown_calls > 0, "the responder's connection did not shut down");
    assert_int_equal(server.setup_errors, 0);
    assert_true(server.conns[0].answered);
    assert_string_equal(server.conns[0].server_name, "localhost");
    assert_string_equal(server.conns[0].alpn, "http/1.1");
    assert_true(server.conns[0].received > 16);
    assert_memory_equal(server.conns[0].recv, "GET / HTTP/1.1\r\n", 16);
    tix_server_stop(&server);
    rs_tls_ctx_release(ctx);
    tix_env_cleanup(&env);
}

static void curl_second_connection_is_resumed_by_reseau_server(void **state) {
    static tix_env_t env;
    static tix_server_t server;
    rs_tls_ctx_t *ctx;
    const char *body[2];
    pid_t child;
    int status;
    (void)state;
    tix_env_init(&env);
    ctx = tix_server_ctx("server", "http/1.1");
    tix_server_start(&env, &server, ctx, TIX_HTTP);
    child = start_curl("ca.pem", server.port, 2, body);
    status = tix_wait_exit(child, "curl");
    if (status != 0) {
        TIX_FAIL("curl exited with status %d", status);
    }
    expect_body(body[0]);
    expect_body(body[1]);
    TIX_WAIT(server.conns[1].shutdown_calls > 0, "the responder's second connection did not shut down");
    assert_int_equal(server.setup_errors, 0);
    assert_false(server.conns[0].info.resumed);
    if (!server.conns[1].info.resumed) {
        TIX_FAIL("curl's second connection was not resumed by the reseau server");
    }
    assert_memory_equal(server.conns[1].recv, "GET /again HTTP/1.1\r\n", 21);
    tix_server_stop(&server);
    rs_tls_ctx_release(ctx);
    tix_env_cleanup(&env);
}

static void curl_with_another_ca_refuses_reseau_responder(void **state) {
    static tix_env_t env;
    static tix_server_t server;
    rs_tls_ctx_t *ctx;
    pid_t child;
    int status;
    (void)state;
    tix_env_init(&env);
    ctx = tix_server_ctx("server", "http/1.1");
    tix_server_start(&env, &server, ctx, TIX_HTTP);
    child = start_curl("other_ca.pem", server.port, 1, NULL);
    status = tix_wait_exit(child, "curl");
    if (status != 60) {
        TIX_FAIL("curl trusting another CA exited with status %d, expected 60 (peer certificate refused)", status);
    }
    TIX_WAIT(server.setup_errors > 0, "the responder did not report the failed handshake");
    if (server.last_setup_error != RS_ETLS_ALERT_RECEIVED) {
        TIX_FAIL("expected RS_ETLS_ALERT_RECEIVED (curl's alert), got %s", rs_err_name(server.last_setup_error));
    }
    assert_int_equal(server.conns[0].setup_calls, 0);
    tix_server_stop(&server);
    rs_tls_ctx_release(ctx);
    tix_env_cleanup(&env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(curl_gets_a_page_from_reseau_https_responder, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(curl_second_connection_is_resumed_by_reseau_server, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(curl_with_another_ca_refuses_reseau_responder, ix_setup, tix_teardown),
    };
    int failed;
    if (!ix_find_tool("curl", curl_path, sizeof(curl_path))) {
        printf("skipped: curl is not installed (Debian package curl)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_DFL); /* reseau must never raise it */
    failed = cmocka_run_group_tests_name("tls_curl", tests, NULL, NULL);
    tls_test_remove_cert_dir();
    return failed;
}
