/*
 * TLS interop with the OpenSSL command line tool as the real peer.
 *
 * - reseau client (client bootstrap + TLS installer, connecting to
 *   "localhost" with Happy Eyeballs) against `openssl s_server -rev`, which
 *   sends each line back reversed: data both ways, ALPN agreed, verification
 *   of the server's chain and name, and the server's close_notify on "CLOSE".
 * - SNI: `s_server -servername localhost -cert2 <EC leaf>` switches to its EC
 *   certificate only when the client's SNI is "localhost"; the suite then
 *   says ECDSA. Connecting to the IP literal sends no SNI and gets the RSA leaf.
 * - Resumption: a second connection with the same context resumes the session
 *   (s_server caches session IDs); rs_tls_info_t.resumed says so.
 * - `s_server -tls1_3` (TLS 1.3 only): RS_ETLS_PROTOCOL_VERSION.
 * - `openssl s_client` against a reseau server (server bootstrap + TLS
 *   installer, echo handler): echo, verification, ALPN and TLS 1.2 in its output,
 *   and the SNI it sent seen by reseau.
 * - tools/rscat against s_server: stdin sent, the answer on stdout, -v output
 *   and the exit status of each failure class.
 *
 * Peers listen on 127.0.0.1 on a port the test picked; every wait is bounded;
 * every child is killed in the teardown.
 */
#include "tls_interop_util.h"

#ifndef RSCAT_PATH
#error "RSCAT_PATH: the path of the rscat tool (set by meson)"
#endif

static char openssl_path[512];

/* Start `openssl s_server` on 127.0.0.1:port with server.pem and the extra
 * arguments (NULL-terminated), its output in TMPDIR/log_name. */
static pid_t start_s_server(uint16_t port, const char *log_name, const char *const *extra) {
    char accept_arg[64];
    char *argv[32];
    int n = 0;
    pid_t child;
    snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%u", (unsigned)port);
    argv[n++] = openssl_path;
    argv[n++] = (char *)"s_server";
    argv[n++] = (char *)"-accept";
    argv[n++] = accept_arg;
    argv[n++] = (char *)"-cert";
    argv[n++] = (char *)tls_test_path("server.pem");
    argv[n++] = (char *)"-key";
    argv[n++] = (char *)tls_test_path("server.key");
    while (extra && *extra) {
        argv[n++] = (char *)*extra++;
    }
    argv[n] = NULL;
    child = tix_spawn(argv, -1, tix_log_path(log_name));
    tix_wait_listening(child, port);
    return child;
}

/* "line\n" lines of printable text, and what s_server -rev answers. */
static void make_lines(char *out, char *reversed, size_t lines, size_t width) {
    size_t i, j;
    for (i = 0; i < lines; ++i) {
        char *line = out + i * (width + 1);
        char *rev = reversed + i * (width + 1);
        for (j = 0; j < width; ++j) {
            line[j] = (char)('a' + (i * 7 + j * 13 + j / 5) % 26);
        }
        line[width] = '\n';
        for (j = 0; j < width; ++j) {
            rev[j] = line[width - 1 - j];
        }
        rev[width] = '\n';
    }
    out[lines * (width + 1)] = '\0';
    reversed[lines * (width + 1)] = '\0';
}

static void reseau_client_echo_alpn_and_close_notify_with_s_server(void **state) {
    const char *extra[] = {"-rev", "-alpn", "foo,bar", NULL};
    enum { LINES = 200, WIDTH = 999 };
    char *lines = (char *)malloc(LINES * (WIDTH + 1) + 1);
    char *reversed = (char *)malloc(LINES * (WIDTH + 1) + 1);
    static tix_env_t env;
    static tix_client_t cl;
    static tix_conn_t conn;
    rs_tls_ctx_t *ctx;
    uint16_t port;
    int err;
    (void)state;
    tix_env_init(&env);
    port = ix_free_port(SOCK_STREAM);
    start_s_server(port, "s_server.log", extra);
    ctx = tix_client_ctx("ca.pem", "http/1.1;bar");
    tix_conn_init(&conn, TIX_RECORD);
    err = tix_connect(&env, &cl, &conn, "localhost", port, ctx, "localhost", NULL);
    if (err) {
        TIX_FAIL("handshake with s_server failed: %s (%s)", rs_err_name(err), rs_strerror(err));
    }
    assert_true(conn.have_info);
    assert_true(conn.info.negotiated);
    assert_true(conn.info.peer_verified);
    assert_false(conn.info.resumed);
    assert_int_equal(conn.info.version, 0x0303);
    assert_non_null(conn.info.alpn);
    assert_string_equal(conn.info.alpn, "bar"); /* the one protocol both sides have */
    assert_string_equal(conn.info.server_name, "localhost");

    /* 200 KB of lines out, each one back reversed. */
    make_lines(lines, reversed, LINES, WIDTH);
    tix_send_text(&conn, lines);
    TIX_WAIT_RECEIVED(&conn, reversed, strlen(reversed));

    /* "CLOSE": s_server ends the connection with close_notify, a clean end. */
    tix_send_text(&conn, "CLOSE\n");
    TIX_WAIT(conn.shutdown_calls > 0, "s_server did not close the connection after CLOSE");
    assert_int_equal(conn.shutdown_calls, 1);
    assert_int_equal(conn.setup_calls, 1);
    if (conn.shutdown_error != RS_EEOF) {
        TIX_FAIL("expected RS_EEOF (close_notify) at the end, got %s", rs_err_name(conn.shutdown_error));
    }
    assert_int_equal(conn.received, strlen(reversed)); /* nothing more after the answer */
    TIX_EXPECT_IN_FILE(tix_logs[0], "CONNECTION CLOSED");

    rs_tls_ctx_release(ctx);
    tix_conn_cleanup(&conn);
    tix_env_cleanup(&env);
    free(lines);
    free(reversed);
}

static void s_server_sees_sni_and_switches_certificate(void **state) {
    const char *extra[] = {"-rev", "-servername", "localhost", "-cert2", tls_test_path("server_ec.pem"),
                           "-key2", tls_test_path("server_ec.key"), NULL};
    static tix_env_t env;
    static tix_client_t cl;
    static tix_conn_t with_sni, without_sni;
    rs_tls_ctx_t *ctx;
    uint16_t port;
    int err;
    (void)state;
    tix_env_init(&env);
    port = ix_free_port(SOCK_STREAM);
    start_s_server(port, "s_server.log", extra);
    ctx = tix_client_ctx("ca.pem", NULL);

    /* SNI "localhost": s_server's servername callback picks the EC leaf. */
    tix_conn_init(&with_sni, TIX_RECORD);
    err = tix_connect(&env, &cl, &with_sni, "localhost", port, ctx, "localhost", NULL);
    if (err) {
        TIX_FAIL("handshake with SNI failed: %s", rs_err_name(err));
    }
    if (!strstr(with_sni.suite, "ECDSA")) {
        TIX_FAIL("with SNI localhost s_server should serve its EC certificate; the suite is %s", with_sni.suite);
    }
    assert_true(with_sni.info.peer_verified);
    tix_send_text(&with_sni, "sni\n");
    TIX_WAIT_RECEIVED(&with_sni, "ins\n", 4);
    tix_close(&with_sni);

    /* An IP literal: no SNI is sent (RFC 6066), s_server keeps its RSA leaf,
     * which is verified by its iPAddress name. */
    tix_conn_init(&without_sni, TIX_RECORD);
    err = tix_connect(&env, &cl, &without_sni, "127.0.0.1", port, ctx, "127.0.0.1", NULL);
    if (err) {
        TIX_FAIL("handshake without SNI failed: %s", rs_err_name(err));
    }
    if (!strstr(without_sni.suite, "ECDHE-RSA")) {
        TIX_FAIL("without SNI s_server should serve its RSA certificate; the suite is %s", without_sni.suite);
    }
    assert_true(without_sni.info.peer_verified);
    tix_close(&without_sni);

    rs_tls_ctx_release(ctx);
    tix_conn_cleanup(&with_sni);
    tix_conn_cleanup(&without_sni);
    tix_env_cleanup(&env);
}

static void second_connection_to_s_server_is_resumed(void **state) {
    const char *extra[] = {"-rev", NULL};
    static tix_env_t env;
    static tix_client_t cl;
    static tix_conn_t first, second;
    rs_tls_ctx_t *ctx;
    uint16_t port;
    int err;
    (void)state;
    tix_env_init(&env);
    port = ix_free_port(SOCK_STREAM);
    start_s_server(port, "s_server.log", extra);
    ctx = tix_client_ctx("ca.pem", NULL);

    tix_conn_init(&first, TIX_RECORD);
    err = tix_connect(&env, &cl, &first, "localhost", port, ctx, "localhost", NULL);
    if (err) {
        TIX_FAIL("first handshake failed: %s", rs_err_name(err));
    }
    assert_false(first.info.resumed);
    tix_send_text(&first, "one\n");
    TIX_WAIT_RECEIVED(&first, "eno\n", 4);
    tix_close(&first); /* close_notify: the session stays resumable */

    tix_conn_init(&second, TIX_RECORD);
    err = tix_connect(&env, &cl, &second, "localhost", port, ctx, "localhost", NULL);
    if (err) {
        TIX_FAIL("second handshake failed: %s", rs_err_name(err));
    }
    if (!second.info.resumed) {
        TIX_FAIL("the second connection with the same context was not resumed");
    }
    assert_true(second.info.negotiated);
    assert_int_equal(second.info.cipher_suite, first.info.cipher_suite);
    tix_send_text(&second, "two\n");
    TIX_WAIT_RECEIVED(&second, "owt\n", 4);
    tix_close(&second);

    rs_tls_ctx_release(ctx);
    tix_conn_cleanup(&first);
    tix_conn_cleanup(&second);
    tix_env_cleanup(&env);
}

static void tls13_only_s_server_gives_protocol_version_error(void **state) {
    const char *extra[] = {"-tls1_3", "-rev", NULL}; /* -rev: s_server ends at EOF on stdin otherwise */
    static tix_env_t env;
    static tix_client_t cl;
    static tix_conn_t conn;
    rs_tls_ctx_t *ctx;
    uint16_t port;
    int err;
    (void)state;
    tix_env_init(&env);
    port = ix_free_port(SOCK_STREAM);
    start_s_server(port, "s_server.log", extra);
    ctx = tix_client_ctx("ca.pem", NULL);
    tix_conn_init(&conn, TIX_RECORD);
    err = tix_connect(&env, &cl, &conn, "localhost", port, ctx, "localhost", NULL);
    if (err != RS_ETLS_PROTOCOL_VERSION) {
        TIX_FAIL("against a TLS 1.3-only server: expected RS_ETLS_PROTOCOL_VERSION, got %s", rs_err_name(err));
    }
    assert_int_equal(conn.shutdown_calls, 0); /* setup failed: no shutdown callback */
    rs_tls_ctx_release(ctx);
    tix_conn_cleanup(&conn);
    tix_env_cleanup(&env);
}

static void s_client_echo_with_reseau_server(void **state) {
    static tix_env_t env;
    static tix_server_t server;
    rs_tls_ctx_t *ctx;
    char connect_arg[64];
    const char *log;
    int in[2];
    pid_t child;
    int status;
    (void)state;
    tix_env_init(&env);
    ctx = tix_server_ctx("server", "h2;echo");
    tix_server_start(&env, &server, ctx, TIX_ECHO);
    snprintf(connect_arg, sizeof(connect_arg), "127.0.0.1:%u", (unsigned)server.port);
    tix_stdin_pair(in);
    log = tix_log_path("s_client.log");
    {
        char *argv[] = {openssl_path, (char *)"s_client", (char *)"-connect", connect_arg, (char *)"-servername",
                        (char *)"localhost", (char *)"-CAfile", (char *)tls_test_path("ca.pem"),
                        (char *)"-verify_return_error", (char *)"-alpn", (char *)"echo", NULL};
        child = tix_spawn(argv, in[0], log);
    }
    close(in[0]);
    tix_send_stdin(in[1], "ping from s_client\n");
    TIX_WAIT(server.conns[0].received >= 19, "the reseau server got %zu bytes from s_client, expected 19",
             server.conns[0].received);
    {
        uint64_t deadline = rs_clock_now_ns() + IX_WAIT_NS;
        while (!tix_file_contains(log, "ping from s_client")) { /* the echo, printed by s_client */
            if (rs_clock_now_ns() > deadline) {
                TIX_FAIL("s_client did not print the echo");
            }
            rs_thread_sleep_ns(10 * RS_NS_PER_MS);
        }
    }
    close(in[1]); /* end of stdin: s_client sends close_notify and exits */
    status = tix_wait_exit(child, "s_client");
    if (status != 0) {
        TIX_FAIL("s_client exited with status %d", status);
    }
    TIX_EXPECT_IN_FILE(log, "Protocol  : TLSv1.2");
    TIX_EXPECT_IN_FILE(log, "Verify return code: 0 (ok)");
    TIX_EXPECT_IN_FILE(log, "ALPN protocol: echo");
    TIX_WAIT(server.conns[0].shutdown_calls > 0, "the reseau server's connection did not shut down");
    assert_true(server.conns[0].have_info);
    assert_string_equal(server.conns[0].server_name, "localhost"); /* the SNI s_client sent */
    assert_string_equal(server.conns[0].alpn, "echo");
    assert_int_equal(server.conns[0].info.version, 0x0303);
    if (server.conns[0].shutdown_error != RS_EEOF) {
        TIX_FAIL("expected RS_EEOF (s_client's close_notify), got %s", rs_err_name(server.conns[0].shutdown_error));
    }
    assert_int_equal(server.setup_errors, 0);
    assert_true(tix_received_is(&server.conns[0], "ping from s_client\n", 19));
    tix_server_stop(&server);
    rs_tls_ctx_release(ctx);
    tix_env_cleanup(&env);
}

/* s_client offering only static-RSA suites, which a reseau server never
 * accepts (no forward secrecy): the server's handshake fails with
 * RS_ETLS_NO_SHARED_CIPHER, and s_client fails too. */
static void s_client_without_shared_cipher_is_refused(void **state) {
    static tix_env_t env;
    static tix_server_t server;
    rs_tls_ctx_t *ctx;
    char connect_arg[64];
    const char *log;
    int in[2];
    pid_t child;
    int status;
    (void)state;
    tix_env_init(&env);
    ctx = tix_server_ctx("server", NULL);
    tix_server_start(&env, &server, ctx, TIX_ECHO);
    snprintf(connect_arg, sizeof(connect_arg), "127.0.0.1:%u", (unsigned)server.port);
    tix_stdin_pair(in);
    log = tix_log_path("s_client_cipher.log");
    {
        char *argv[] = {openssl_path, (char *)"s_client", (char *)"-connect", connect_arg, (char *)"-tls1_2",
                        (char *)"-cipher", (char *)"AES128-SHA:AES256-GCM-SHA384", (char *)"-CAfile",
                        (char *)tls_test_path("ca.pem"), NULL};
        child = tix_spawn(argv, in[0], log);
    }
    close(in[0]);
    TIX_WAIT(server.setup_errors > 0, "the reseau server did not refuse s_client's static-RSA suites");
    close(in[1]);
    status = tix_wait_exit(child, "s_client");
    if (status == 0) {
        TIX_FAIL("s_client succeeded with static-RSA suites only");
    }
    if (server.last_setup_error != RS_ETLS_NO_SHARED_CIPHER) {
        TIX_FAIL("expected RS_ETLS_NO_SHARED_CIPHER, got %s", rs_err_name(server.last_setup_error));
    }
    tix_server_stop(&server);
    rs_tls_ctx_release(ctx);
    tix_env_cleanup(&env);
}

/* Regression: a caller may free its TLS installer as soon as the bootstrap's
 * callback fires, in the callback itself. The bootstraps used to call the
 * installers' destroy entries after on_setup and on_listener_destroyed,
 * reading the freed installer. */
/* An allocator that overwrites every block it frees, so a read after free
 * fails at once, without ASan too (the freed vtable pointer is garbage). It
 * passes through the leak-checking allocator, with the size in a header. */
#define SCRIBBLE_HEADER 16

static void *scribble_alloc(size_t size, void *user_data) {
    uint8_t *p = (uint8_t *)rs_test_allocator.alloc_fn(size + SCRIBBLE_HEADER, user_data);
    if (!p) {
        return NULL;
    }
    memcpy(p, &size, sizeof(size));
    return p + SCRIBBLE_HEADER;
}

static void scribble_free(void *ptr, void *user_data) {
    uint8_t *p = (uint8_t *)ptr - SCRIBBLE_HEADER;
    size_t size;
    if (!ptr) {
        return;
    }
    memcpy(&size, p, sizeof(size));
    memset(ptr, 0xdb, size);
    rs_test_allocator.free_fn(p, user_data);
}

static void *scribble_realloc(void *ptr, size_t old_size, size_t new_size, void *user_data) {
    void *q = scribble_alloc(new_size, user_data);
    if (!q) {
        return NULL;
    }
    if (ptr) {
        size_t size;
        memcpy(&size, (uint8_t *)ptr - SCRIBBLE_HEADER, sizeof(size));
        memcpy(q, ptr, size < new_size ? size : new_size);
        scribble_free(ptr, user_data);
    }
    (void)old_size;
    return q;
}

static const rs_allocator_t scribble_allocator = {scribble_alloc, scribble_realloc, scribble_free, NULL};

typedef struct freeing_client {
    tix_conn_t conn; /* first: tix_client_on_setup takes the same pointer */
    rs_channel_installer_t *tls;
} freeing_client_t;

static void freeing_on_setup(rs_client_bootstrap_t *b, rs_channel_t *channel, int error, void *user_data) {
    freeing_client_t *fc = (freeing_client_t *)user_data;
    rs_tls_installer_destroy(fc->tls); /* the bootstrap no longer uses it */
    fc->tls = NULL;
    tix_client_on_setup(b, channel, error, &fc->conn);
}

typedef struct freeing_listener {
    rs_channel_installer_t *tls;
    bool destroyed;
} freeing_listener_t;

static void freeing_on_incoming_setup(rs_server_listener_t *l, rs_channel_t *channel, int error, void *user_data) {
    (void)l, (void)channel, (void)error, (void)user_data;
}

static void freeing_on_listener_destroyed(rs_server_listener_t *l, void *user_data) {
    freeing_listener_t *fl = (freeing_listener_t *)user_data;
    (void)l;
    rs_tls_installer_destroy(fl->tls);
    pthread_mutex_lock(&tix_lock);
    fl->tls = NULL;
    fl->destroyed = true;
    pthread_mutex_unlock(&tix_lock);
}

static void tls_installer_may_be_freed_in_bootstrap_callbacks(void **state) {
    const char *extra[] = {"-rev", NULL};
    static tix_env_t env;
    static tix_installer_t app;
    static freeing_client_t fc;
    static freeing_listener_t fl;
    rs_tls_connection_options_t to;
    rs_client_connect_options_t cc;
    rs_server_listener_options_t lo;
    rs_channel_installer_t *installers[2];
    rs_server_listener_t *listener;
    rs_tls_ctx_t *ctx, *server_ctx;
    uint16_t port;
    int err = RS_EUNKNOWN;
    (void)state;
    tix_env_init(&env);
    port = ix_free_port(SOCK_STREAM);
    start_s_server(port, "s_server.log", extra);

    /* Client: on_setup frees the installer; the connection then works. */
    {
        rs_tls_ctx_options_t o = tls_test_client_options();
        o.allocator = &scribble_allocator; /* the installer's memory is the context's */
        ctx = tls_test_ctx(&o);
    }
    tix_conn_init(&fc.conn, TIX_RECORD);
    memset(&to, 0, sizeof(to));
    to.ctx = ctx;
    to.server_name = "localhost";
    fc.tls = rs_tls_installer_new(&to, &err);
    assert_non_null(fc.tls);
    tix_installer_init(&app, &fc.conn, 1);
    installers[0] = fc.tls;
    installers[1] = &app.base;
    memset(&cc, 0, sizeof(cc));
    cc.host = "localhost";
    cc.port = port;
    cc.installers = installers;
    cc.installer_count = 2;
    cc.on_setup = freeing_on_setup;
    cc.on_shutdown = tix_client_on_shutdown;
    cc.user_data = &fc;
    assert_int_equal(rs_client_bootstrap_connect(env.client, &cc), RS_OK);
    TIX_WAIT(fc.conn.setup_calls > 0, "no on_setup");
    if (fc.conn.setup_error) {
        TIX_FAIL("handshake failed: %s", rs_err_name(fc.conn.setup_error));
    }
    tix_send_text(&fc.conn, "abc\n");
    TIX_WAIT_RECEIVED(&fc.conn, "cba\n", 4);
    tix_close(&fc.conn);

    /* Listener: on_listener_destroyed frees the installer. */
    {
        rs_tls_ctx_options_t o = tls_test_server_options("server");
        o.allocator = &scribble_allocator;
        server_ctx = tls_test_ctx(&o);
    }
    memset(&to, 0, sizeof(to));
    to.ctx = server_ctx;
    fl.tls = rs_tls_installer_new(&to, &err);
    fl.destroyed = false;
    assert_non_null(fl.tls);
    memset(&lo, 0, sizeof(lo));
    lo.host = "127.0.0.1";
    lo.installers = &fl.tls;
    lo.installer_count = 1;
    lo.on_incoming_setup = freeing_on_incoming_setup;
    lo.on_listener_destroyed = freeing_on_listener_destroyed;
    lo.user_data = &fl;
    listener = rs_server_bootstrap_new_listener(env.server, &lo, &err);
    if (!listener) {
        fail_msg("rs_server_bootstrap_new_listener: %s", rs_err_name(err));
    }
    assert_int_equal(rs_server_bootstrap_destroy_listener(listener, true), RS_OK);
    TIX_WAIT(fl.destroyed, "on_listener_destroyed did not fire");

    tix_env_cleanup(&env);
    rs_tls_ctx_release(ctx);
    rs_tls_ctx_release(server_ctx);
    tix_conn_cleanup(&fc.conn);
}

/* rscat with stdin from a file, stdout and stderr to files; its exit status. */
static int run_rscat(const char *const *args, const char *input, const char *out_name, const char *err_name) {
    char in_path[160];
    char *argv[24];
    int n = 0;
    int in_fd;
    pid_t child;
    int status;
    const char *out_path;
    char *const *p;
    snprintf(in_path, sizeof(in_path), "%s/rscat.in", ix_tmpdir);
    ix_write_file(in_path, (const uint8_t *)input, strlen(input));
    argv[n++] = (char *)RSCAT_PATH;
    for (p = (char *const *)args; *p; ++p) {
        argv[n++] = *p;
    }
    argv[n] = NULL;
    in_fd = open(in_path, O_RDONLY | O_CLOEXEC);
    assert_true(in_fd >= 0);
    out_path = tix_log_path(out_name);
    child = tix_spawn2(argv, in_fd, out_path, tix_log_path(err_name));
    close(in_fd);
    status = tix_wait_exit(child, "rscat");
    return status;
}

static void rscat_against_s_server(void **state) {
    const char *extra[] = {"-rev", "-alpn", "foo", NULL};
    const char *tls13[] = {"-tls1_3", "-rev", NULL};
    char port_arg[16];
    char port13_arg[16];
    char closed_arg[16];
    uint16_t port, port13;
    int status;
    size_t out_len = 0;
    char *out;
    (void)state;
    tix_reset_logs();
    port = ix_free_port(SOCK_STREAM);
    start_s_server(port, "s_server.log", extra);
    snprintf(port_arg, sizeof(port_arg), "%u", (unsigned)port);

    /* Lines in, the reversed lines out, then "CLOSE": a clean end, status 0. */
    {
        const char *args[] = {"-v", "--cafile", tls_test_path("ca.pem"), "--alpn", "foo", "localhost", port_arg, NULL};
        status = run_rscat(args, "hello rscat\nsecond line\nCLOSE\n", "rscat.out", "rscat.err");
    }
    if (status != 0) {
        TIX_FAIL("rscat exited with status %d, expected 0", status);
    }
    out = tix_read_file(tix_logs[1], &out_len);
    if (strcmp(out, "tacsr olleh\nenil dnoces\n") != 0) {
        free(out);
        TIX_FAIL("rscat's stdout is not s_server's answer");
    }
    free(out);
    TIX_EXPECT_IN_FILE(tix_logs[2], "TLS 1.2");
    TIX_EXPECT_IN_FILE(tix_logs[2], "ALPN foo");
    TIX_EXPECT_IN_FILE(tix_logs[2], "server certificate verified for localhost");

    /* A CA that did not sign the server's chain: class 6. */
    tix_reset_logs();
    {
        const char *args[] = {"--cafile", tls_test_path("other_ca.pem"), "localhost", port_arg, NULL};
        status = run_rscat(args, "x\n", "rscat_untrusted.out", "rscat_untrusted.err");
    }
    if (status != 6) {
        TIX_FAIL("rscat with an unrelated CA: status %d, expected 6 (certificate refused)", status);
    }
    TIX_EXPECT_IN_FILE(tix_logs[1], "RS_ETLS_UNTRUSTED");

    /* A TLS 1.3-only server: class 7. */
    tix_reset_logs();
    port13 = ix_free_port(SOCK_STREAM);
    start_s_server(port13, "s_server13.log", tls13);
    snprintf(port13_arg, sizeof(port13_arg), "%u", (unsigned)port13);
    {
        const char *args[] = {"--cafile", tls_test_path("ca.pem"), "localhost", port13_arg, NULL};
        status = run_rscat(args, "x\n", "rscat13.out", "rscat13.err");
    }
    if (status != 7) {
        TIX_FAIL("rscat against a TLS 1.3-only server: status %d, expected 7 (handshake)", status);
    }
    TIX_EXPECT_IN_FILE(tix_logs[2], "RS_ETLS_PROTOCOL_VERSION");

    /* Nobody listening: class 4. */
    tix_reset_logs();
    snprintf(closed_arg, sizeof(closed_arg), "%u", (unsigned)ix_free_port(SOCK_STREAM));
    {
        const char *args[] = {"--cafile", tls_test_path("ca.pem"), "127.0.0.1", closed_arg, NULL};
        status = run_rscat(args, "x\n", "rscat_refused.out", "rscat_refused.err");
    }
    if (status != 4) {
        TIX_FAIL("rscat to a closed port: status %d, expected 4 (connect)", status);
    }

    /* A bad option: class 2. */
    tix_reset_logs();
    {
        const char *args[] = {"--no-such-option", "localhost", port_arg, NULL};
        status = run_rscat(args, "", "rscat_usage.out", "rscat_usage.err");
    }
    if (status != 2) {
        TIX_FAIL("rscat with a bad option: status %d, expected 2 (usage)", status);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(reseau_client_echo_alpn_and_close_notify_with_s_server, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(s_server_sees_sni_and_switches_certificate, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(second_connection_to_s_server_is_resumed, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(tls13_only_s_server_gives_protocol_version_error, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(s_client_echo_with_reseau_server, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(s_client_without_shared_cipher_is_refused, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(rscat_against_s_server, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(tls_installer_may_be_freed_in_bootstrap_callbacks, ix_setup, tix_teardown),
    };
    int failed;
    if (!ix_find_tool("openssl", openssl_path, sizeof(openssl_path))) {
        printf("skipped: the openssl CLI is not installed (Debian package openssl)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_DFL); /* reseau must never raise it */
    failed = cmocka_run_group_tests_name("tls_openssl", tests, NULL, NULL);
    tls_test_remove_cert_dir();
    return failed;
}
