/*
 * The TLS handler in memory: a client and a server on two testing channels,
 * their bytes shuttled by hand. Certificates come from make_certs.sh.
 *
 * Covers: handshakes with RSA and EC servers and an intermediate chain; echo
 * of data both ways, with back-pressure, checksummed; ALPN agreement,
 * mismatch and a required protocol; each verification failure's own code
 * (host name, IP address, expired, not yet valid, untrusted, self-signed);
 * verification off; IP-literal names; mTLS required, optional and missing;
 * session resumption; clean close (RS_EEOF) and truncation; a peer that
 * trickles one byte at a time; a reset during the handshake; renegotiation
 * refused; negotiation timeout; hang-up during the handshake; no common
 * version; write completions; context errors; and allocation-failure sweeps
 * over context creation and handshake setup; the tracer's handshake begin
 * and end events.
 */
#include "tls_test_util.h"

/* ------------------------------------------------------------ handshakes */

static void run_handshake(rs_tls_ctx_t *client_ctx, const rs_tls_connection_options_t *conn, rs_tls_ctx_t *server_ctx,
                          tls_test_pair_t *p) {
    tls_test_pair_init(p, client_ctx, conn, server_ctx, false);
    tls_test_shuttle(p);
}

static void assert_echo(tls_test_pair_t *p, const char *text) {
    size_t len = strlen(text);
    p->server.app->echo = true;
    tls_test_app_send(p->client.app, text, len);
    tls_test_shuttle(p);
    assert_int_equal(p->server.app->received.len, len);
    assert_memory_equal(p->server.app->received.buffer, text, len);
    assert_int_equal(p->client.app->received.len, len);
    assert_memory_equal(p->client.app->received.buffer, text, len);
}

static void handshake_ok_with(const char *server_name_file, const char *expect_suite_part) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options(server_name_file);
    rs_tls_ctx_t *cctx = tls_test_ctx(&co);
    rs_tls_ctx_t *sctx = tls_test_ctx(&so);
    tls_test_pair_t p;
    rs_tls_info_t info;
    run_handshake(cctx, NULL, sctx, &p);
    assert_int_equal(p.client.negotiation_calls, 1);
    assert_int_equal(p.client.negotiation_error, RS_OK);
    assert_int_equal(p.server.negotiation_calls, 1);
    assert_int_equal(p.server.negotiation_error, RS_OK);
    assert_int_equal(rs_tls_handler_get_info(p.client.tls, &info), RS_OK);
    assert_true(info.negotiated);
    assert_true(info.peer_verified);
    assert_false(info.resumed);
    assert_int_equal(info.version, 0x0303);
    assert_non_null(strstr(info.cipher_suite_name, expect_suite_part));
    assert_null(info.alpn);
    assert_string_equal(info.server_name, "localhost");
    assert_true(info.handshake_end_ns >= info.handshake_start_ns && info.handshake_start_ns > 0);
    assert_int_equal(rs_tls_handler_get_info(p.server.tls, &info), RS_OK);
    assert_true(info.negotiated);
    assert_string_equal(info.server_name, "localhost"); /* the SNI the client sent */
    assert_echo(&p, "hello over TLS");
    tls_test_pair_destroy(&p);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

static void test_handshake_rsa(void **state) {
    (void)state;
    handshake_ok_with("server", "ECDHE-RSA");
}

static void test_handshake_ec(void **state) {
    (void)state;
    handshake_ok_with("server_ec", "ECDHE-ECDSA");
}

static void test_handshake_intermediate_chain(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("chain_leaf");
    rs_tls_ctx_t *cctx, *sctx;
    tls_test_pair_t p;
    (void)state;
    so.cert_file = tls_test_path("chain_full.pem");
    cctx = tls_test_ctx(&co);
    sctx = tls_test_ctx(&so);
    run_handshake(cctx, NULL, sctx, &p);
    assert_int_equal(p.client.negotiation_error, RS_OK);
    assert_echo(&p, "through an intermediate");
    tls_test_pair_destroy(&p);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

/* ------------------------------------------------------------ tracing */

/* The TLS events of a tracer (this test runs on one thread). */
typedef struct tls_trace_log {
    rs_trace_event_t events[64];
    size_t count;
} tls_trace_log_t;

static void tls_trace_record(const rs_trace_event_t *event, void *user_data) {
    tls_trace_log_t *log = (tls_trace_log_t *)user_data;
    if ((event->type == RS_TRACE_TLS_HANDSHAKE_BEGIN || event->type == RS_TRACE_TLS_HANDSHAKE_END) &&
        log->count < sizeof(log->events) / sizeof(log->events[0])) {
        rs_trace_event_timestamp_ns(event); /* taken before the copy, so the copy has it */
        log->events[log->count++] = *event;
    }
}

/* The one event of `type` about `side`'s handler, on its loop. */
static const rs_trace_event_t *tls_trace_find(const tls_trace_log_t *log, rs_trace_event_type_t type,
                                              const tls_test_side_t *side) {
    const rs_trace_event_t *found = NULL;
    size_t i;
    for (i = 0; i < log->count; ++i) {
        if (log->events[i].type == type && log->events[i].subject == (const void *)side->tls) {
            assert_null(found);
            found = &log->events[i];
        }
    }
    assert_non_null(found);
    assert_ptr_equal(found->loop, rs_testing_channel_get_loop(side->tc));
    assert_string_equal(found->name, "tls");
    return found;
}

static void test_trace_handshake_begin_and_end(void **state) {
    static tls_trace_log_t log;
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_ctx_t *cctx = tls_test_ctx(&co);
    rs_tls_ctx_t *sctx = tls_test_ctx(&so);
    rs_tls_ctx_options_t bad = tls_test_client_options();
    rs_tls_ctx_t *bad_ctx;
    const rs_trace_event_t *begin, *end;
    tls_test_pair_t p;
    (void)state;
    memset(&log, 0, sizeof(log));
    assert_int_equal(rs_trace_set_tracer(tls_trace_record, &log), RS_OK);
    run_handshake(cctx, NULL, sctx, &p);
    assert_int_equal(p.client.negotiation_error, RS_OK);
    assert_int_equal(log.count, 4);
    begin = tls_trace_find(&log, RS_TRACE_TLS_HANDSHAKE_BEGIN, &p.client);
    end = tls_trace_find(&log, RS_TRACE_TLS_HANDSHAKE_END, &p.client);
    assert_int_equal(begin->error, RS_OK);
    assert_int_equal(end->error, RS_OK);
    assert_true(begin->timestamp_ns > 0);
    assert_true(end->timestamp_ns >= begin->timestamp_ns);
    assert_int_equal(tls_trace_find(&log, RS_TRACE_TLS_HANDSHAKE_END, &p.server)->error, RS_OK);
    tls_trace_find(&log, RS_TRACE_TLS_HANDSHAKE_BEGIN, &p.server);
    tls_test_pair_destroy(&p);

    /* A failed handshake ends with the error its callback gets. */
    memset(&log, 0, sizeof(log));
    bad.ca_file = tls_test_path("other_ca.pem");
    bad_ctx = tls_test_ctx(&bad);
    run_handshake(bad_ctx, NULL, sctx, &p);
    assert_int_equal(p.client.negotiation_error, RS_ETLS_UNTRUSTED);
    tls_trace_find(&log, RS_TRACE_TLS_HANDSHAKE_BEGIN, &p.client);
    assert_int_equal(tls_trace_find(&log, RS_TRACE_TLS_HANDSHAKE_END, &p.client)->error, RS_ETLS_UNTRUSTED);
    assert_int_equal(tls_trace_find(&log, RS_TRACE_TLS_HANDSHAKE_END, &p.server)->error,
                     p.server.negotiation_error);
    tls_test_pair_destroy(&p);

    /* Removed: no more events. */
    assert_int_equal(rs_trace_set_tracer(NULL, NULL), RS_OK);
    memset(&log, 0, sizeof(log));
    run_handshake(cctx, NULL, sctx, &p);
    assert_int_equal(p.client.negotiation_error, RS_OK);
    assert_int_equal(log.count, 0);
    tls_test_pair_destroy(&p);
    rs_tls_ctx_release(bad_ctx);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

/* ------------------------------------------------------- verification */

/* Handshake a client (options co, server name `name`) with a server using
 * `leaf`; return the client's negotiation error, check the server failed too. */
static int client_result(rs_tls_ctx_options_t co, const char *leaf, const char *name) {
    rs_tls_ctx_options_t so = tls_test_server_options(leaf);
    rs_tls_ctx_t *cctx = tls_test_ctx(&co);
    rs_tls_ctx_t *sctx = tls_test_ctx(&so);
    rs_tls_connection_options_t conn;
    tls_test_pair_t p;
    int err, shut_err = RS_OK;
    memset(&conn, 0, sizeof(conn));
    conn.server_name = name;
    run_handshake(cctx, &conn, sctx, &p);
    assert_int_equal(p.client.negotiation_calls, 1);
    err = p.client.negotiation_error;
    if (err) {
        assert_true(rs_testing_channel_is_shut_down(p.client.tc, &shut_err));
        assert_int_equal(shut_err, err);
        assert_int_equal(p.server.negotiation_calls, 1);
        assert_int_not_equal(p.server.negotiation_error, RS_OK);
    }
    tls_test_pair_destroy(&p);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
    return err;
}

static void test_verify_hostname_mismatch(void **state) {
    (void)state;
    assert_int_equal(client_result(tls_test_client_options(), "wronghost", "localhost"), RS_ETLS_HOSTNAME_MISMATCH);
    assert_int_equal(client_result(tls_test_client_options(), "server", "other.example"), RS_ETLS_HOSTNAME_MISMATCH);
}

static void test_verify_ip_literals(void **state) {
    (void)state;
    /* BearSSL has no iPAddress matching: ours. SNI is not sent for them. */
    assert_int_equal(client_result(tls_test_client_options(), "server", "127.0.0.1"), RS_OK);
    assert_int_equal(client_result(tls_test_client_options(), "server", "::1"), RS_OK);
    assert_int_equal(client_result(tls_test_client_options(), "wronghost", "10.9.8.7"), RS_OK);
    assert_int_equal(client_result(tls_test_client_options(), "server", "127.0.0.2"), RS_ETLS_HOSTNAME_MISMATCH);
    assert_int_equal(client_result(tls_test_client_options(), "wronghost", "127.0.0.1"), RS_ETLS_HOSTNAME_MISMATCH);
}

static void test_verify_expired_and_future(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    (void)state;
    assert_int_equal(client_result(co, "expired", "localhost"), RS_ETLS_CERT_EXPIRED);
    assert_int_equal(client_result(co, "future", "localhost"), RS_ETLS_CERT_NOT_YET_VALID);
    /* The clock override: a valid leaf, seen from 2100 and from 2000. */
    co.verify_time_s = 4102444800; /* 2100-01-01 */
    assert_int_equal(client_result(co, "server", "localhost"), RS_ETLS_CERT_EXPIRED);
    co.verify_time_s = 946684800; /* 2000-01-01 */
    assert_int_equal(client_result(co, "server", "localhost"), RS_ETLS_CERT_NOT_YET_VALID);
}

static void test_verify_untrusted(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    (void)state;
    co.ca_file = tls_test_path("other_ca.pem");
    assert_int_equal(client_result(co, "server", "localhost"), RS_ETLS_UNTRUSTED);
    assert_int_equal(client_result(tls_test_client_options(), "selfsigned", "localhost"), RS_ETLS_UNTRUSTED);
    /* A chain without its intermediate cannot be built either. */
    assert_int_equal(client_result(tls_test_client_options(), "chain_leaf", "localhost"), RS_ETLS_UNTRUSTED);
}

static void test_verify_off(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("selfsigned");
    rs_tls_ctx_t *cctx, *sctx;
    tls_test_pair_t p;
    rs_tls_info_t info;
    (void)state;
    co.ca_file = NULL;
    co.insecure_skip_verify = true;
    cctx = tls_test_ctx(&co);
    sctx = tls_test_ctx(&so);
    assert_int_equal(rs_tls_ctx_trust_anchor_count(cctx), 0);
    run_handshake(cctx, NULL, sctx, &p);
    assert_int_equal(p.client.negotiation_error, RS_OK);
    assert_int_equal(rs_tls_handler_get_info(p.client.tls, &info), RS_OK);
    assert_false(info.peer_verified);
    assert_echo(&p, "unverified but encrypted");
    tls_test_pair_destroy(&p);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

static void test_verify_no_server_name(void **state) {
    (void)state;
    assert_int_equal(client_result(tls_test_client_options(), "server", NULL), RS_ETLS_HOSTNAME_MISMATCH);
}

/* ------------------------------------------------------------------ ALPN */

static void alpn_case(const char *client_list, const char *server_list, bool required, int expect_err,
                      const char *expect_protocol) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_ctx_t *cctx, *sctx;
    tls_test_pair_t p;
    co.alpn_list = client_list;
    so.alpn_list = server_list;
    so.alpn_required = required;
    cctx = tls_test_ctx(&co);
    sctx = tls_test_ctx(&so);
    run_handshake(cctx, NULL, sctx, &p);
    assert_int_equal(p.client.negotiation_error, expect_err);
    assert_int_equal(p.server.negotiation_error, expect_err);
    if (!expect_err) {
        if (expect_protocol) {
            assert_string_equal(rs_tls_handler_get_alpn(p.client.tls), expect_protocol);
            assert_string_equal(rs_tls_handler_get_alpn(p.server.tls), expect_protocol);
        } else {
            assert_null(rs_tls_handler_get_alpn(p.client.tls));
            assert_null(rs_tls_handler_get_alpn(p.server.tls));
        }
    }
    tls_test_pair_destroy(&p);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

static void test_alpn(void **state) {
    (void)state;
    alpn_case("h2;http/1.1", "http/1.1", false, RS_OK, "http/1.1");
    alpn_case("h2;http/1.1", "h2;http/1.1", false, RS_OK, "h2");
    alpn_case("foo", "bar", false, RS_OK, NULL);          /* no protocol, handshake goes on */
    alpn_case(NULL, "h2", false, RS_OK, NULL);
    alpn_case("foo", "bar", true, RS_ETLS_ALPN_MISMATCH, NULL);
}

/* The ALPN handler replaces itself with the protocol's handler. */
typedef struct alpn_pick {
    char protocol[32];
    int calls;
    tls_test_app_t *app;
} alpn_pick_t;

static rs_channel_handler_t *pick_handler(rs_channel_slot_t *slot, const char *protocol, void *ud) {
    alpn_pick_t *pick = (alpn_pick_t *)ud;
    (void)slot;
    pick->calls++;
    snprintf(pick->protocol, sizeof(pick->protocol), "%s", protocol ? protocol : "(none)");
    pick->app = tls_test_app_new(SIZE_MAX);
    pick->app->echo = true;
    return &pick->app->base;
}

static void test_alpn_handler_replaces_itself(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_ctx_t *cctx, *sctx;
    tls_test_side_t client;
    rs_testing_channel_t *server_tc;
    rs_channel_handler_t *server_tls, *alpn;
    rs_tls_connection_options_t conn;
    alpn_pick_t pick;
    tls_test_pair_t p;
    int err;
    (void)state;
    memset(&pick, 0, sizeof(pick));
    co.alpn_list = "x-test;http/1.1";
    so.alpn_list = "x-test";
    cctx = tls_test_ctx(&co);
    sctx = tls_test_ctx(&so);
    tls_test_side_init(&client, cctx, NULL, false);
    server_tc = rs_testing_channel_new(NULL, &err);
    assert_non_null(server_tc);
    memset(&conn, 0, sizeof(conn));
    conn.ctx = sctx;
    server_tls = rs_tls_handler_new(&conn, &err);
    assert_non_null(server_tls);
    assert_int_equal(rs_testing_channel_add_handler(server_tc, server_tls), RS_OK);
    alpn = rs_tls_alpn_handler_new(&rs_test_allocator, pick_handler, &pick, &err);
    assert_non_null(alpn);
    assert_int_equal(rs_testing_channel_add_handler(server_tc, alpn), RS_OK);
    assert_int_equal(rs_tls_handler_start_negotiation(server_tls), RS_OK);
    memset(&p, 0, sizeof(p));
    p.client = client;
    p.server.tc = server_tc;
    tls_test_shuttle(&p);
    assert_int_equal(pick.calls, 1);
    assert_string_equal(pick.protocol, "x-test");
    tls_test_app_send(p.client.app, "ping", 4);
    tls_test_shuttle(&p);
    assert_int_equal(p.client.app->received.len, 4);
    assert_memory_equal(p.client.app->received.buffer, "ping", 4);
    rs_testing_channel_destroy(client.tc);
    rs_testing_channel_destroy(server_tc);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

/* ------------------------------------------------------------------ mTLS */

static void mtls_case(rs_tls_client_auth_t auth, bool client_has_cert, int expect_client, int expect_server,
                      bool expect_server_verified) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_ctx_t *cctx, *sctx;
    tls_test_pair_t p;
    rs_tls_info_t info;
    if (client_has_cert) {
        co.cert_file = tls_test_path("client.pem");
        co.key_file = tls_test_path("client.key");
    }
    so.client_auth = auth;
    so.ca_file = tls_test_path("ca.pem");
    cctx = tls_test_ctx(&co);
    sctx = tls_test_ctx(&so);
    run_handshake(cctx, NULL, sctx, &p);
    assert_int_equal(p.server.negotiation_error, expect_server);
    assert_int_equal(p.client.negotiation_error, expect_client);
    if (!expect_server) {
        assert_int_equal(rs_tls_handler_get_info(p.server.tls, &info), RS_OK);
        assert_int_equal(info.peer_verified, expect_server_verified);
        assert_echo(&p, "mutual");
    }
    tls_test_pair_destroy(&p);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

static void test_mtls(void **state) {
    (void)state;
    mtls_case(RS_TLS_CLIENT_AUTH_REQUIRED, true, RS_OK, RS_OK, true);
    mtls_case(RS_TLS_CLIENT_AUTH_OPTIONAL, true, RS_OK, RS_OK, true);
    mtls_case(RS_TLS_CLIENT_AUTH_OPTIONAL, false, RS_OK, RS_OK, false);
    mtls_case(RS_TLS_CLIENT_AUTH_REQUIRED, false, RS_ETLS_CLIENT_CERT_REQUIRED, RS_ETLS_CLIENT_CERT_REQUIRED, false);
}

/* ------------------------------------------------------------ resumption */

static void test_resumption(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_ctx_t *cctx, *sctx;
    tls_test_pair_t p;
    rs_tls_info_t ci, si;
    int round;
    (void)state;
    cctx = tls_test_ctx(&co);
    sctx = tls_test_ctx(&so);
    /* Each pair has loops of its own: the server's cache is the context's. */
    for (round = 0; round < 3; ++round) {
        if (round == 2) {
            rs_tls_ctx_flush_sessions(cctx);
        }
        run_handshake(cctx, NULL, sctx, &p);
        assert_int_equal(p.client.negotiation_error, RS_OK);
        assert_int_equal(rs_tls_handler_get_info(p.client.tls, &ci), RS_OK);
        assert_int_equal(rs_tls_handler_get_info(p.server.tls, &si), RS_OK);
        /* The first and the one after the flush are full; the second is resumed, on both sides. */
        assert_int_equal(ci.resumed, round == 1);
        assert_int_equal(si.resumed, round == 1);
        assert_true(ci.peer_verified);
        assert_echo(&p, "again");
        tls_test_pair_destroy(&p);
    }
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

/* A client that closes as soon as its resumed handshake is done sends its
 * Finished and close_notify together: the server must still see the
 * handshake finish (once a regression: it reported truncation). */
static void test_resumed_then_closed_at_once(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_ctx_t *cctx, *sctx;
    tls_test_pair_t p;
    int round, err = RS_EUNKNOWN;
    (void)state;
    cctx = tls_test_ctx(&co);
    sctx = tls_test_ctx(&so);
    for (round = 0; round < 2; ++round) {
        tls_test_pair_init(&p, cctx, NULL, sctx, false);
        p.client.close_on_negotiation = true;
        tls_test_shuttle(&p);
        assert_int_equal(p.client.negotiation_error, RS_OK);
        assert_int_equal(p.server.negotiation_calls, 1);
        assert_int_equal(p.server.negotiation_error, RS_OK);
        assert_true(rs_testing_channel_is_shut_down(p.server.tc, &err));
        assert_int_equal(err, RS_EEOF);
        tls_test_pair_destroy(&p);
    }
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

/* --------------------------------------------------------- close, errors */

static void make_pair(tls_test_pair_t *p, rs_tls_ctx_t **cctx, rs_tls_ctx_t **sctx, bool back_pressure) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    *cctx = tls_test_ctx(&co);
    *sctx = tls_test_ctx(&so);
    tls_test_pair_init(p, *cctx, NULL, *sctx, back_pressure);
}

static void free_pair(tls_test_pair_t *p, rs_tls_ctx_t *cctx, rs_tls_ctx_t *sctx) {
    tls_test_pair_destroy(p);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

/* The client is made to ask for renegotiation (our handlers never do): the
 * server refuses it and never makes a second handshake. */
static void test_renegotiation_refused(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    rs__tls_handler_t *client;
    br_ssl_engine_context *eng;
    rs_tls_info_t before, after;
    int err = RS_OK;
    (void)state;
    make_pair(&p, &cctx, &sctx, false);
    tls_test_shuttle(&p);
    assert_int_equal(rs_tls_handler_get_info(p.server.tls, &before), RS_OK);
    client = (rs__tls_handler_t *)p.client.tls->impl;
    eng = ((rs__tls_bearssl_t *)client->engine->impl)->eng;
    br_ssl_engine_remove_flags(eng, BR_OPT_NO_RENEGOTIATION);
    assert_int_not_equal(br_ssl_engine_renegotiate(eng), 0);
    rs__tls_pump(client);
    tls_test_shuttle(&p);
    assert_int_equal(p.server.negotiation_calls, 1);
    assert_int_equal(rs_tls_handler_get_info(p.server.tls, &after), RS_OK);
    assert_int_equal(after.handshake_end_ns, before.handshake_end_ns);
    /* BearSSL's client gives up when refused, and hangs up without
     * close_notify: the server reports that, after no second handshake. */
    assert_true(rs_testing_channel_is_shut_down(p.client.tc, &err));
    assert_int_equal(err, RS_ETLS_RENEGOTIATION); /* the server's no_renegotiation alert */
    assert_true(rs_testing_channel_is_shut_down(p.server.tc, &err));
    assert_int_equal(err, RS_ETLS_TRUNCATED);
    free_pair(&p, cctx, sctx);
}

static void test_clean_close_is_eof(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    int err = RS_EUNKNOWN;
    (void)state;
    make_pair(&p, &cctx, &sctx, false);
    tls_test_shuttle(&p);
    tls_test_app_send(p.server.app, "last words", 10);
    assert_int_equal(rs_channel_shutdown(rs_testing_channel_get_channel(p.server.tc), RS_OK), RS_OK);
    tls_test_shuttle(&p);
    assert_true(rs_testing_channel_is_shut_down(p.server.tc, &err));
    assert_int_equal(err, RS_OK);
    /* Everything sent before close_notify arrives, then a clean end of stream. */
    assert_int_equal(p.client.app->received.len, 10);
    assert_true(rs_testing_channel_is_shut_down(p.client.tc, &err));
    assert_int_equal(err, RS_EEOF);
    free_pair(&p, cctx, sctx);
}

static void test_truncation_detected(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    int err = RS_EUNKNOWN;
    (void)state;
    make_pair(&p, &cctx, &sctx, false);
    tls_test_shuttle(&p);
    tls_test_app_send(p.server.app, "cut", 3);
    tls_test_shuttle(&p);
    rs_testing_channel_push_eof(p.client.tc); /* the TCP FIN, without close_notify */
    rs_testing_channel_run(p.client.tc);
    rs_testing_channel_run(p.client.tc);
    assert_int_equal(p.client.app->received.len, 3);
    assert_true(rs_testing_channel_is_shut_down(p.client.tc, &err));
    assert_int_equal(err, RS_ETLS_TRUNCATED);
    free_pair(&p, cctx, sctx);
}

static void test_hangup_during_handshake(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    int err = RS_EUNKNOWN;
    (void)state;
    make_pair(&p, &cctx, &sctx, false);
    rs_testing_channel_run(p.client.tc); /* ClientHello written, never answered */
    rs_testing_channel_push_eof(p.client.tc);
    rs_testing_channel_run(p.client.tc);
    rs_testing_channel_run(p.client.tc);
    assert_int_equal(p.client.negotiation_calls, 1);
    assert_int_equal(p.client.negotiation_error, RS_ETLS_TRUNCATED);
    assert_true(rs_testing_channel_is_shut_down(p.client.tc, &err));
    assert_int_equal(err, RS_ETLS_TRUNCATED);
    free_pair(&p, cctx, sctx);
}

/* Every byte of the handshake and of the data arrives on its own, both ways. */
static void test_trickle_one_byte_at_a_time(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    rs_byte_buf_t buf;
    int rounds = 0;
    bool moved = true;
    (void)state;
    make_pair(&p, &cctx, &sctx, true);
    p.server.app->echo = true;
    tls_test_app_send(p.client.app, "trickled", 8); /* waits for the handshake */
    assert_int_equal(rs_byte_buf_init(&buf, &rs_test_allocator, 4096), RS_OK);
    while (moved && rounds++ < 100000) {
        tls_test_side_t *from[2] = {&p.client, &p.server}, *to[2] = {&p.server, &p.client};
        int k;
        moved = false;
        for (k = 0; k < 2; ++k) {
            size_t i;
            rs_testing_channel_run(from[k]->tc);
            rs_byte_buf_reset(&buf);
            assert_int_equal(rs_testing_channel_drain_written(from[k]->tc, &buf), RS_OK);
            for (i = 0; i < buf.len; ++i) {
                rs_testing_channel_push_read(to[k]->tc, rs_byte_cursor_from_array(buf.buffer + i, 1));
                rs_testing_channel_run(to[k]->tc);
            }
            moved = moved || buf.len > 0;
        }
    }
    rs_byte_buf_cleanup(&buf);
    assert_int_equal(p.client.negotiation_error, RS_OK);
    assert_int_equal(p.server.negotiation_error, RS_OK);
    assert_int_equal(p.client.app->received.len, 8);
    assert_memory_equal(p.client.app->received.buffer, "trickled", 8);
    free_pair(&p, cctx, sctx);
}

/* A reset in the middle of the handshake is the handshake's result. */
static void test_reset_during_handshake(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    rs_byte_buf_t buf;
    int err = RS_OK;
    (void)state;
    make_pair(&p, &cctx, &sctx, false);
    /* ClientHello to the server, its answer back to the client, then a reset. */
    assert_int_equal(rs_byte_buf_init(&buf, &rs_test_allocator, 4096), RS_OK);
    rs_testing_channel_run(p.client.tc);
    assert_int_equal(rs_testing_channel_drain_written(p.client.tc, &buf), RS_OK);
    rs_testing_channel_push_read(p.server.tc, rs_byte_cursor_from_buf(&buf));
    rs_testing_channel_run(p.server.tc);
    rs_byte_buf_reset(&buf);
    assert_int_equal(rs_testing_channel_drain_written(p.server.tc, &buf), RS_OK);
    rs_testing_channel_push_read(p.client.tc, rs_byte_cursor_from_buf(&buf));
    rs_testing_channel_inject_reset(p.client.tc);
    rs_testing_channel_run(p.client.tc);
    rs_testing_channel_run(p.client.tc);
    rs_byte_buf_cleanup(&buf);
    assert_int_equal(p.client.negotiation_calls, 1);
    assert_int_equal(p.client.negotiation_error, RS_ECONNRESET);
    assert_true(rs_testing_channel_is_shut_down(p.client.tc, &err));
    assert_int_equal(err, RS_ECONNRESET);
    free_pair(&p, cctx, sctx);
}

static void test_negotiation_timeout(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_t *cctx;
    tls_test_side_t side;
    rs_tls_connection_options_t conn;
    int err = RS_EUNKNOWN, i;
    (void)state;
    cctx = tls_test_ctx(&co);
    memset(&conn, 0, sizeof(conn));
    conn.server_name = "localhost";
    conn.negotiation_timeout_ms = 30;
    tls_test_side_init(&side, cctx, &conn, false);
    for (i = 0; i < 500 && !rs_testing_channel_is_shut_down(side.tc, NULL); ++i) {
        rs_thread_sleep_ns(5 * RS_NS_PER_MS);
        rs_testing_channel_run(side.tc);
    }
    assert_int_equal(side.negotiation_calls, 1);
    assert_int_equal(side.negotiation_error, RS_ETLS_HANDSHAKE_TIMEOUT);
    assert_true(rs_testing_channel_is_shut_down(side.tc, &err));
    assert_int_equal(err, RS_ETLS_HANDSHAKE_TIMEOUT);
    rs_testing_channel_destroy(side.tc);
    rs_tls_ctx_release(cctx);
}

static void test_no_common_version(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_ctx_t *cctx, *sctx;
    tls_test_pair_t p;
    (void)state;
    so.min_version = RS_TLS_VERSION_1_0;
    so.max_version = RS_TLS_VERSION_1_1;
    cctx = tls_test_ctx(&co);
    sctx = tls_test_ctx(&so);
    run_handshake(cctx, NULL, sctx, &p);
    /* The server answers with TLS 1.1, which the client refuses; BearSSL
     * sends no alert, so the server sees a hang-up. */
    assert_int_equal(p.client.negotiation_error, RS_ETLS_PROTOCOL_VERSION);
    assert_int_equal(p.server.negotiation_error, RS_ETLS_TRUNCATED);
    tls_test_pair_destroy(&p);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

static void test_tls11_when_both_allow_it(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_ctx_t *cctx, *sctx;
    tls_test_pair_t p;
    rs_tls_info_t info;
    (void)state;
    co.min_version = RS_TLS_VERSION_1_0;
    so.min_version = RS_TLS_VERSION_1_0;
    so.max_version = RS_TLS_VERSION_1_1;
    cctx = tls_test_ctx(&co);
    sctx = tls_test_ctx(&so);
    run_handshake(cctx, NULL, sctx, &p);
    assert_int_equal(p.client.negotiation_error, RS_OK);
    assert_int_equal(rs_tls_handler_get_info(p.client.tls, &info), RS_OK);
    assert_int_equal(info.version, 0x0302);
    assert_echo(&p, "older");
    tls_test_pair_destroy(&p);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

/* -------------------------------------------------- data, back-pressure */

static uint64_t checksum(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    size_t i;
    for (i = 0; i < n; ++i) {
        h = (h ^ p[i]) * 1099511628211ull;
    }
    return h;
}

static void test_bulk_with_back_pressure(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    size_t total = 4 * 1024 * 1024, i;
    uint8_t *data = (uint8_t *)test_malloc(total);
    (void)state;
    for (i = 0; i < total; ++i) {
        data[i] = (uint8_t)(i * 7 + (i >> 11));
    }
    make_pair(&p, &cctx, &sctx, true);
    tls_test_shuttle(&p);
    assert_int_equal(p.client.negotiation_error, RS_OK);
    p.server.app->echo = true;
    for (i = 0; i < total; i += 256 * 1024) {
        tls_test_app_send(p.client.app, data + i, 256 * 1024);
        tls_test_shuttle(&p);
    }
    assert_int_equal(p.server.app->received.len, total);
    assert_int_equal(p.client.app->received.len, total);
    assert_true(checksum(p.client.app->received.buffer, total) == checksum(data, total));
    assert_true(checksum(p.server.app->received.buffer, total) == checksum(data, total));
    test_free(data);
    free_pair(&p, cctx, sctx);
}

static void test_window_closed_holds_plaintext(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    char big[40000];
    (void)state;
    memset(big, 'x', sizeof(big));
    make_pair(&p, &cctx, &sctx, true);
    tls_test_shuttle(&p);
    p.client.app->hold_window = true;
    p.client.app->window = 1000;
    /* The app's window is already open at 64 KiB; it now keeps what it reads. */
    tls_test_app_send(p.server.app, big, sizeof(big));
    tls_test_shuttle(&p);
    assert_int_equal(p.client.app->received.len, sizeof(big));
    tls_test_app_send(p.server.app, big, sizeof(big));
    tls_test_shuttle(&p);
    /* 64 KiB of window: the rest waits in the TLS handler, not lost. */
    assert_int_equal(p.client.app->received.len, 64 * 1024);
    p.client.app->hold_window = false;
    rs_channel_slot_increment_read_window(p.client.app->base.slot, 64 * 1024);
    tls_test_shuttle(&p);
    assert_int_equal(p.client.app->received.len, 2 * sizeof(big));
    free_pair(&p, cctx, sctx);
}

typedef struct completions {
    int calls;
    int error;
} completions_t;

static void on_write_done(rs_channel_t *channel, rs_io_message_t *m, int error, void *ud) {
    completions_t *c = (completions_t *)ud;
    (void)channel;
    (void)m;
    c->calls++;
    c->error = error;
}

static void test_write_completes_after_ciphertext_leaves(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    completions_t done = {0, RS_EUNKNOWN};
    rs_io_message_t *m;
    rs_channel_slot_t *slot;
    (void)state;
    make_pair(&p, &cctx, &sctx, false);
    tls_test_shuttle(&p);
    slot = p.client.app->base.slot;
    rs_testing_channel_set_write_limit(p.client.tc, 10);
    m = rs_channel_acquire_message_from_pool(rs_channel_slot_get_channel(slot), RS_IO_MESSAGE_APPLICATION_DATA, 100);
    memset(m->message_data.buffer, 'a', 100);
    m->message_data.len = 100;
    m->on_completion = on_write_done;
    m->user_data = &done;
    assert_int_equal(rs_channel_slot_send_message(slot, m, RS_CHANNEL_DIR_WRITE), RS_OK);
    rs_testing_channel_run(p.client.tc);
    assert_int_equal(done.calls, 0); /* 10 of ~130 ciphertext bytes taken */
    rs_testing_channel_set_write_limit(p.client.tc, 0);
    tls_test_shuttle(&p);
    assert_int_equal(done.calls, 1);
    assert_int_equal(done.error, RS_OK);
    assert_int_equal(p.server.app->received.len, 100);
    free_pair(&p, cctx, sctx);
}

static void test_writes_before_handshake_wait(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    (void)state;
    make_pair(&p, &cctx, &sctx, false);
    tls_test_app_send(p.client.app, "early", 5); /* queued until the handshake is done */
    tls_test_shuttle(&p);
    assert_int_equal(p.server.app->received.len, 5);
    assert_memory_equal(p.server.app->received.buffer, "early", 5);
    free_pair(&p, cctx, sctx);
}

static void test_abortive_shutdown_cancels_queued_writes(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    completions_t done = {0, RS_EUNKNOWN};
    rs_io_message_t *m;
    rs_channel_slot_t *slot;
    (void)state;
    make_pair(&p, &cctx, &sctx, false);
    slot = p.client.app->base.slot; /* handshake not done: the write waits in the TLS handler */
    m = rs_channel_acquire_message_from_pool(rs_channel_slot_get_channel(slot), RS_IO_MESSAGE_APPLICATION_DATA, 10);
    m->message_data.len = 10;
    memset(m->message_data.buffer, 'b', 10);
    m->on_completion = on_write_done;
    m->user_data = &done;
    assert_int_equal(rs_channel_slot_send_message(slot, m, RS_CHANNEL_DIR_WRITE), RS_OK);
    assert_true(rs_channel_get_pending_write_bytes(rs_testing_channel_get_channel(p.client.tc)) >= 10);
    assert_int_equal(rs_channel_shutdown_abortively(rs_testing_channel_get_channel(p.client.tc), RS_OK), RS_OK);
    rs_testing_channel_run(p.client.tc);
    assert_int_equal(done.calls, 1);
    assert_int_equal(done.error, RS_ECANCELED);
    assert_int_equal(p.client.negotiation_calls, 1);
    assert_int_not_equal(p.client.negotiation_error, RS_OK);
    free_pair(&p, cctx, sctx);
}

/* --------------------------------------------------------- context errors */

static void test_ctx_errors(void **state) {
    rs_tls_ctx_options_t o;
    int err = RS_OK;
    (void)state;
    assert_null(rs_tls_ctx_new(NULL, &err));
    assert_int_equal(err, RS_EINVAL);
    /* A server needs a chain and a key. */
    memset(&o, 0, sizeof(o));
    o.is_server = true;
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    /* The key does not match the certificate. */
    o = tls_test_server_options("server");
    o.key_file = tls_test_path("wronghost.key");
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_ETLS_BAD_KEY);
    o = tls_test_server_options("server");
    o.key_file = tls_test_path("server_ec.key"); /* EC key, RSA certificate */
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_ETLS_BAD_KEY);
    /* A certificate file where the key should be. */
    o = tls_test_server_options("server");
    o.key_file = tls_test_path("server.pem");
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_ETLS_BAD_KEY);
    /* Missing files. */
    o = tls_test_server_options("nope");
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_ENOENT);
    o = tls_test_client_options();
    o.ca_file = tls_test_path("missing.pem");
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_ENOENT);
    /* A CA file with no certificate in it. */
    o = tls_test_client_options();
    o.ca_file = tls_test_path("client.key");
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_ETLS_NO_TRUST_ANCHORS);
    /* Malformed PEM in memory. */
    o = tls_test_client_options();
    o.ca_file = NULL;
    o.ca_pem = rs_byte_cursor_from_cstr("-----BEGIN CERTIFICATE-----\nnot*base64\n-----END CERTIFICATE-----\n");
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_EPEM_BAD_BASE64);
    /* A certificate whose DER is not X.509. */
    o.ca_pem = rs_byte_cursor_from_cstr("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_ETLS_BAD_CERT);
    /* Bad ALPN lists, bad versions, client_auth on a client, file and memory both. */
    o = tls_test_client_options();
    o.alpn_list = "h2;;http/1.1";
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    o.alpn_list = "";
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    o = tls_test_client_options();
    o.min_version = RS_TLS_VERSION_1_2;
    o.max_version = RS_TLS_VERSION_1_1;
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    o = tls_test_client_options();
    o.client_auth = RS_TLS_CLIENT_AUTH_REQUIRED;
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    o = tls_test_server_options("server");
    o.cert_pem = rs_byte_cursor_from_cstr("x");
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    /* Server asking for client certificates with no CA: nothing to verify them with. */
    o = tls_test_server_options("server");
    o.client_auth = RS_TLS_CLIENT_AUTH_REQUIRED;
    o.ca_pem = rs_byte_cursor_from_cstr("no pem here");
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_EPEM_NO_OBJECT);
}

static void test_ctx_trust_sources(void **state) {
    rs_tls_ctx_options_t o = tls_test_client_options();
    rs_tls_ctx_t *ctx;
    char dir[400];
    char file[500];
    rs_byte_buf_t pem;
    FILE *f;
    (void)state;
    ctx = tls_test_ctx(&o);
    assert_int_equal(rs_tls_ctx_trust_anchor_count(ctx), 1);
    rs_tls_ctx_release(ctx);
    /* A directory: two CAs, plus a file that is not PEM, plus a duplicate. */
    snprintf(dir, sizeof(dir), "%s/cadir", tls_test_cert_dir());
    tls_test_mkdir(dir);
    snprintf(file, sizeof(file), "%s/ca.pem", dir);
    tls_test_copy_file(tls_test_path("ca.pem"), file);
    snprintf(file, sizeof(file), "%s/other_ca.pem", dir);
    tls_test_copy_file(tls_test_path("other_ca.pem"), file);
    snprintf(file, sizeof(file), "%s/dup.pem", dir);
    tls_test_copy_file(tls_test_path("ca.pem"), file);
    snprintf(file, sizeof(file), "%s/README", dir);
    f = fopen(file, "wb");
    assert_non_null(f);
    fputs("hi\n", f);
    assert_int_equal(fclose(f), 0);
    o.ca_file = NULL;
    o.ca_dir = dir;
    ctx = tls_test_ctx(&o);
    assert_int_equal(rs_tls_ctx_trust_anchor_count(ctx), 2);
    rs_tls_ctx_release(ctx);
    /* Memory. */
    f = fopen(tls_test_path("ca.pem"), "rb");
    assert_non_null(f);
    assert_int_equal(rs_byte_buf_init(&pem, &rs_test_allocator, 8192), RS_OK);
    pem.len = fread(pem.buffer, 1, pem.capacity, f);
    fclose(f);
    o.ca_dir = NULL;
    o.ca_pem = rs_byte_cursor_from_buf(&pem);
    ctx = tls_test_ctx(&o);
    rs_byte_buf_cleanup(&pem); /* copied: the context does not need it */
    assert_int_equal(rs_tls_ctx_trust_anchor_count(ctx), 1);
    rs_tls_ctx_release(ctx);
    /* SSL_CERT_FILE steers the system store. */
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    tls_test_setenv("SSL_CERT_FILE", tls_test_path("other_ca.pem"));
    ctx = tls_test_ctx(&o);
    tls_test_setenv("SSL_CERT_FILE", NULL);
    assert_int_equal(rs_tls_ctx_trust_anchor_count(ctx), 1);
    rs_tls_ctx_release(ctx);
#if RESEAU_OS_WINDOWS
    {
        /* Without the variables (Wine passes the Unix ones on), the Windows
         * ROOT store: Wine fills it from the host's CA bundle. */
        const char *env_file = getenv("SSL_CERT_FILE");
        const char *env_dir = getenv("SSL_CERT_DIR");
        char saved_file[1024], saved_dir[1024];
        snprintf(saved_file, sizeof(saved_file), "%s", env_file ? env_file : "");
        snprintf(saved_dir, sizeof(saved_dir), "%s", env_dir ? env_dir : "");
        tls_test_setenv("SSL_CERT_FILE", NULL);
        tls_test_setenv("SSL_CERT_DIR", NULL);
        ctx = tls_test_ctx(&o);
        print_message("Windows ROOT store: %u anchors\n", (unsigned)rs_tls_ctx_trust_anchor_count(ctx));
        assert_true(rs_tls_ctx_trust_anchor_count(ctx) > 0);
        rs_tls_ctx_release(ctx);
        tls_test_setenv("SSL_CERT_FILE", saved_file);
        tls_test_setenv("SSL_CERT_DIR", saved_dir);
    }
#endif
}

static void test_handler_errors(void **state) {
    rs_tls_ctx_options_t o = tls_test_client_options();
    rs_tls_ctx_t *ctx = tls_test_ctx(&o);
    rs_tls_connection_options_t conn;
    rs_channel_handler_t *h;
    rs_tls_info_t info;
    int err = RS_OK;
    (void)state;
    memset(&conn, 0, sizeof(conn));
    assert_null(rs_tls_handler_new(NULL, &err));
    assert_int_equal(err, RS_EINVAL);
    assert_null(rs_tls_handler_new(&conn, &err)); /* no ctx */
    assert_int_equal(err, RS_EINVAL);
    conn.ctx = ctx;
    conn.alpn_list = ";";
    assert_null(rs_tls_handler_new(&conn, &err));
    assert_int_equal(err, RS_EINVAL);
    assert_null(rs_tls_installer_new(&conn, &err));
    assert_int_equal(err, RS_EINVAL);
    conn.alpn_list = NULL;
    h = rs_tls_handler_new(&conn, &err);
    assert_non_null(h);
    assert_int_equal(rs_tls_handler_start_negotiation(h), RS_ESTATE); /* not in a slot */
    assert_int_equal(rs_tls_handler_start_negotiation(NULL), RS_EINVAL);
    assert_int_equal(rs_tls_handler_get_info(NULL, &info), RS_EINVAL);
    assert_int_equal(rs_tls_handler_get_info(h, NULL), RS_EINVAL);
    assert_int_equal(rs_tls_handler_get_info(h, &info), RS_OK);
    assert_false(info.negotiated);
    assert_null(rs_tls_handler_get_alpn(h));
    rs_tls_handler_destroy(h);
    rs_tls_handler_destroy(NULL);
    assert_null(rs_tls_alpn_handler_new(NULL, NULL, NULL, &err));
    assert_int_equal(err, RS_EINVAL);
    assert_null(rs_tls_alpn_installer_new(NULL, NULL, NULL, &err));
    assert_int_equal(err, RS_EINVAL);
    assert_string_equal(rs_tls_cipher_suite_name(0), "unknown");
    rs_tls_ctx_acquire(NULL);
    rs_tls_ctx_release(NULL);
    assert_int_equal(rs_tls_ctx_trust_anchor_count(NULL), 0);
    rs_tls_ctx_release(ctx);
}

/* ------------------------------------------------------ random source */

typedef struct rng {
    int calls;
    size_t bytes;
    uint32_t state;
    int fail_with; /* returned instead of bytes, when set */
} rng_t;

static int test_random(void *user_data, unsigned char *out, size_t len) {
    rng_t *r = (rng_t *)user_data;
    size_t i;
    r->calls++;
    if (r->fail_with) {
        return r->fail_with;
    }
    for (i = 0; i < len; ++i) { /* xorshift: a test's stand-in for a hardware RNG */
        r->state ^= r->state << 13;
        r->state ^= r->state >> 17;
        r->state ^= r->state << 5;
        out[i] = (unsigned char)r->state;
    }
    r->bytes += len;
    return RS_OK;
}

/* random_fn replaces the OS as each connection's seed: asked once per end. */
static void test_random_fn_seeds_each_connection(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rng_t crng = {0, 0, 0x1234567u, 0};
    rng_t srng = {0, 0, 0x7654321u, 0};
    rs_tls_ctx_t *cctx, *sctx;
    tls_test_pair_t p;
    (void)state;
    co.random_fn = test_random;
    co.random_user_data = &crng;
    so.random_fn = test_random;
    so.random_user_data = &srng;
    cctx = tls_test_ctx(&co);
    sctx = tls_test_ctx(&so);
    run_handshake(cctx, NULL, sctx, &p);
    assert_int_equal(p.client.negotiation_error, RS_OK);
    assert_int_equal(p.server.negotiation_error, RS_OK);
    assert_int_equal(crng.calls, 1);
    assert_int_equal(srng.calls, 1);
    assert_int_equal(crng.bytes, 32);
    assert_echo(&p, "seeded by the application");
    tls_test_pair_destroy(&p);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

/* A random source that fails: the connection does not start, with its error. */
static void test_random_fn_failure_stops_the_handshake(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rng_t rng = {0, 0, 1u, RS_EIO};
    rs_tls_connection_options_t conn;
    rs_testing_channel_options_t to;
    rs_testing_channel_t *tc;
    rs_tls_ctx_t *ctx;
    rs_channel_slot_t *added = (rs_channel_slot_t *)&added;
    (void)state;
    co.random_fn = test_random;
    co.random_user_data = &rng;
    ctx = tls_test_ctx(&co);
    memset(&to, 0, sizeof(to));
    to.allocator = &rs_test_allocator;
    tc = rs_testing_channel_new(&to, NULL);
    assert_non_null(tc);
    memset(&conn, 0, sizeof(conn));
    conn.ctx = ctx;
    conn.server_name = "localhost";
    assert_int_equal(rs_tls_channel_add(rs_channel_get_first_slot(rs_testing_channel_get_channel(tc)), &conn, &added),
                     RS_EIO);
    assert_int_equal(rng.calls, 1);
    assert_null(rs_channel_slot_get_right(rs_channel_get_first_slot(rs_testing_channel_get_channel(tc))));
    rs_testing_channel_destroy(tc);
    rs_tls_ctx_release(ctx);
}

/* ------------------------------------------------------ allocation sweeps */

static void test_ctx_alloc_sweep(void **state) {
    size_t fail_at;
    (void)state;
    for (fail_at = 1; fail_at < 10000; ++fail_at) {
        rs_test_failing_alloc_t fa;
        rs_tls_ctx_options_t o = tls_test_server_options("chain_leaf");
        rs_tls_ctx_t *ctx;
        int err = RS_OK;
        rs_test_failing_alloc_init(&fa, fail_at);
        o.allocator = &fa.allocator;
        o.cert_file = tls_test_path("chain_full.pem");
        o.client_auth = RS_TLS_CLIENT_AUTH_OPTIONAL;
        o.ca_file = tls_test_path("ca.pem");
        o.alpn_list = "h2;http/1.1";
        ctx = rs_tls_ctx_new(&o, &err);
        if (ctx) {
            assert_int_equal(fa.failures, 0);
            rs_tls_ctx_release(ctx);
            break;
        }
        assert_int_equal(err, RS_ENOMEM);
    }
    assert_true(fail_at > 5);
}

static void test_handshake_alloc_sweep(void **state) {
    size_t fail_at;
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_ctx_t *cctx, *sctx;
    (void)state;
    co.alpn_list = "h2";
    cctx = tls_test_ctx(&co);
    sctx = tls_test_ctx(&so);
    for (fail_at = 1; fail_at < 10000; ++fail_at) {
        rs_test_failing_alloc_t fa;
        rs_testing_channel_options_t to;
        rs_testing_channel_t *tc;
        rs_tls_connection_options_t conn;
        int err = RS_OK;
        rs_test_failing_alloc_init(&fa, fail_at);
        memset(&to, 0, sizeof(to));
        to.allocator = &fa.allocator;
        tc = rs_testing_channel_new(&to, &err);
        if (!tc) {
            assert_int_equal(err, RS_ENOMEM);
            continue;
        }
        memset(&conn, 0, sizeof(conn));
        conn.ctx = cctx;
        conn.server_name = "localhost";
        conn.alpn_list = "h2;x";
        /* The handler allocates from the context's allocator; the channel's
         * pool and slot from the failing one. */
        err = rs_tls_channel_add(rs_channel_get_first_slot(rs_testing_channel_get_channel(tc)), &conn, NULL);
        if (err == RS_OK) {
            rs_testing_channel_run(tc);
        } else {
            assert_int_equal(err, RS_ENOMEM);
        }
        rs_testing_channel_destroy(tc);
        if (fa.failures == 0) {
            break;
        }
    }
    assert_true(fail_at > 1);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

static void test_handshake_ctx_alloc_sweep(void **state) {
    size_t fail_at;
    (void)state;
    for (fail_at = 1; fail_at < 10000; ++fail_at) {
        rs_test_failing_alloc_t fa;
        rs_tls_ctx_options_t co = tls_test_client_options();
        rs_tls_ctx_options_t so = tls_test_server_options("server");
        rs_tls_ctx_t *cctx, *sctx;
        tls_test_pair_t p;
        rs_tls_connection_options_t conn;
        rs_channel_handler_t *h;
        int err = RS_OK, shut = RS_OK;
        bool done;
        sctx = tls_test_ctx(&so);
        rs_test_failing_alloc_init(&fa, fail_at);
        co.allocator = &fa.allocator;
        cctx = rs_tls_ctx_new(&co, &err);
        if (!cctx) {
            assert_int_equal(err, RS_ENOMEM);
            rs_tls_ctx_release(sctx);
            continue;
        }
        memset(&p, 0, sizeof(p));
        tls_test_side_init(&p.server, sctx, NULL, false);
        p.client.tc = rs_testing_channel_new(NULL, &err);
        assert_non_null(p.client.tc);
        memset(&conn, 0, sizeof(conn));
        conn.ctx = cctx;
        conn.server_name = "127.0.0.1";
        h = rs_tls_handler_new(&conn, &err);
        if (!h) {
            assert_int_equal(err, RS_ENOMEM);
        } else {
            assert_int_equal(rs_testing_channel_add_handler(p.client.tc, h), RS_OK);
            err = rs_tls_handler_start_negotiation(h);
            if (err) {
                assert_int_equal(err, RS_ENOMEM);
            } else {
                tls_test_shuttle(&p);
            }
        }
        done = fa.failures == 0;
        if (done) {
            assert_false(rs_testing_channel_is_shut_down(p.client.tc, &shut));
        }
        tls_test_pair_destroy(&p);
        rs_tls_ctx_release(cctx);
        rs_tls_ctx_release(sctx);
        if (done) {
            break;
        }
    }
    assert_true(fail_at > 3);
}

static int teardown_suite(void **state) {
    (void)state;
    tls_test_remove_cert_dir();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_rsa),
        cmocka_unit_test(test_handshake_ec),
        cmocka_unit_test(test_handshake_intermediate_chain),
        cmocka_unit_test(test_trace_handshake_begin_and_end),
        cmocka_unit_test(test_verify_hostname_mismatch),
        cmocka_unit_test(test_verify_ip_literals),
        cmocka_unit_test(test_verify_expired_and_future),
        cmocka_unit_test(test_verify_untrusted),
        cmocka_unit_test(test_verify_off),
        cmocka_unit_test(test_verify_no_server_name),
        cmocka_unit_test(test_alpn),
        cmocka_unit_test(test_alpn_handler_replaces_itself),
        cmocka_unit_test(test_mtls),
        cmocka_unit_test(test_resumption),
        cmocka_unit_test(test_resumed_then_closed_at_once),
        cmocka_unit_test(test_renegotiation_refused),
        cmocka_unit_test(test_clean_close_is_eof),
        cmocka_unit_test(test_truncation_detected),
        cmocka_unit_test(test_hangup_during_handshake),
        cmocka_unit_test(test_trickle_one_byte_at_a_time),
        cmocka_unit_test(test_reset_during_handshake),
        cmocka_unit_test(test_negotiation_timeout),
        cmocka_unit_test(test_no_common_version),
        cmocka_unit_test(test_tls11_when_both_allow_it),
        cmocka_unit_test(test_bulk_with_back_pressure),
        cmocka_unit_test(test_window_closed_holds_plaintext),
        cmocka_unit_test(test_write_completes_after_ciphertext_leaves),
        cmocka_unit_test(test_writes_before_handshake_wait),
        cmocka_unit_test(test_abortive_shutdown_cancels_queued_writes),
        cmocka_unit_test(test_ctx_errors),
        cmocka_unit_test(test_ctx_trust_sources),
        cmocka_unit_test(test_handler_errors),
        cmocka_unit_test(test_random_fn_seeds_each_connection),
        cmocka_unit_test(test_random_fn_failure_stops_the_handshake),
        cmocka_unit_test(test_ctx_alloc_sweep),
        cmocka_unit_test(test_handshake_alloc_sweep),
        cmocka_unit_test(test_handshake_ctx_alloc_sweep),
    };
    tls_test_cert_dir();
    return cmocka_run_group_tests_name("tls", tests, NULL, teardown_suite);
}
