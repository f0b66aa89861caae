/*
 * Asynchronous signing (rs_tls_private_key_t.sign_async): the handshake waits
 * for a signature that comes later, in memory on testing channels, with the
 * test's own key signing (tls_test_key_t) as a token or a remote signer
 * would.
 *
 * Covers: a client's CertificateVerify (RSA and EC) and a server's
 * ServerKeyExchange (RSA and EC) answered later, with the handshake shown
 * to wait (no bytes move, no result) and then to finish and carry data; an
 * answer given inside sign_async; an answer from another thread; an error
 * answer and an error return; invalid answers; answers that come after the
 * connection timed out or was destroyed (dropped, nothing leaked); the
 * options refused; allocation failures during such a handshake.
 */
#include "tls_test_util.h"

/* The sign_async of these tests: it keeps the op (and the question) for the
 * test to answer, or answers itself according to `mode`. */
typedef enum signer_mode {
    SIGNER_LATER = 0, /* keep the op; the test answers */
    SIGNER_AT_ONCE,   /* answer from inside sign_async */
    SIGNER_THREAD,    /* answer from another thread, a little later */
    SIGNER_REFUSE     /* return `refusal`, never answer */
} signer_mode_t;

typedef struct signer {
    tls_test_key_t key;
    signer_mode_t mode;
    int refusal;
    int calls;
    rs_tls_sign_op_t *op;
    rs_tls_sign_algorithm_t algorithm;
    rs_tls_hash_t hash;
    uint8_t digest[64];
    size_t digest_len;
    size_t sig_capacity;
    rs_thread_t thread;
    bool thread_started;
    int thread_result; /* rs_tls_sign_op_complete's, from the thread */
} signer_t;

/* Sign the kept question and answer the op with the signature. */
static int signer_answer(signer_t *s) {
    uint8_t sig[512];
    size_t sig_len = 0;
    int err = tls_test_key_sign(&s->key, s->algorithm, s->hash, s->digest, s->digest_len, sig, s->sig_capacity,
                                &sig_len);
    rs_tls_sign_op_t *op = s->op;
    s->op = NULL;
    return rs_tls_sign_op_complete(op, err, err ? NULL : sig, sig_len);
}

static void signer_thread(void *arg) {
    signer_t *s = (signer_t *)arg;
    rs_thread_sleep_ns(20 * RS_NS_PER_MS);
    s->thread_result = signer_answer(s);
}

static int signer_sign_async(rs_tls_sign_op_t *op, rs_tls_sign_algorithm_t algorithm, rs_tls_hash_t hash,
                             const uint8_t *digest, size_t digest_len, size_t sig_capacity, void *user_data) {
    signer_t *s = (signer_t *)user_data;
    s->calls++;
    if (s->mode == SIGNER_REFUSE) {
        return s->refusal;
    }
    assert_null(s->op);
    assert_true(digest_len <= sizeof(s->digest));
    s->op = op;
    s->algorithm = algorithm;
    s->hash = hash;
    memcpy(s->digest, digest, digest_len);
    s->digest_len = digest_len;
    s->sig_capacity = sig_capacity;
    if (s->mode == SIGNER_AT_ONCE) {
        assert_int_equal(signer_answer(s), RS_OK);
    } else if (s->mode == SIGNER_THREAD) {
        assert_int_equal(rs_thread_launch(&s->thread, signer_thread, s, NULL), RS_OK);
        s->thread_started = true;
    }
    return RS_OK;
}

static void signer_init(signer_t *s, const char *key_file, signer_mode_t mode, rs_tls_private_key_t *pk) {
    memset(s, 0, sizeof(*s));
    tls_test_key_load(&s->key, key_file);
    s->mode = mode;
    memset(pk, 0, sizeof(*pk));
    pk->sign_async = signer_sign_async;
    pk->user_data = s;
}

static void signer_join(signer_t *s) {
    if (s->thread_started) {
        assert_int_equal(rs_thread_join(&s->thread), RS_OK);
        s->thread_started = false;
    }
}

/* A client whose key (cert/key files) signs through `s`, and a server that
 * requires a client certificate from ca.pem. */
static void client_signs_pair(tls_test_pair_t *p, rs_tls_ctx_t **cctx, rs_tls_ctx_t **sctx, signer_t *s,
                              const char *cert, const char *key, signer_mode_t mode) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_private_key_t pk;
    signer_init(s, key, mode, &pk);
    co.cert_file = tls_test_path(cert);
    co.private_key = &pk;
    so.client_auth = RS_TLS_CLIENT_AUTH_REQUIRED;
    so.ca_file = tls_test_path("ca.pem");
    *cctx = tls_test_ctx(&co);
    *sctx = tls_test_ctx(&so);
    tls_test_pair_init(p, *cctx, NULL, *sctx, false);
}

/* A server whose key signs through `s`. */
static void server_signs_pair(tls_test_pair_t *p, rs_tls_ctx_t **cctx, rs_tls_ctx_t **sctx, signer_t *s,
                              const char *name, signer_mode_t mode) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options(name);
    rs_tls_private_key_t pk;
    char key[64];
    snprintf(key, sizeof(key), "%s.key", name);
    signer_init(s, key, mode, &pk);
    so.key_file = NULL;
    so.private_key = &pk;
    *cctx = tls_test_ctx(&co);
    *sctx = tls_test_ctx(&so);
    tls_test_pair_init(p, *cctx, NULL, *sctx, false);
}

static void free_pair(tls_test_pair_t *p, rs_tls_ctx_t *cctx, rs_tls_ctx_t *sctx) {
    tls_test_pair_destroy(p);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

static void assert_negotiated(tls_test_pair_t *p) {
    assert_int_equal(p->client.negotiation_calls, 1);
    assert_int_equal(p->client.negotiation_error, RS_OK);
    assert_int_equal(p->server.negotiation_calls, 1);
    assert_int_equal(p->server.negotiation_error, RS_OK);
}

static void assert_echo(tls_test_pair_t *p, const char *text) {
    size_t len = strlen(text);
    p->server.app->echo = true;
    tls_test_app_send(p->client.app, text, len);
    tls_test_shuttle(p);
    assert_int_equal(p->client.app->received.len, len);
    assert_memory_equal(p->client.app->received.buffer, text, len);
}

/* The handshake waits: the question is asked once, nothing is reported, and
 * however long the bytes are shuttled, none move. */
static void assert_waiting(tls_test_pair_t *p, const signer_t *s) {
    assert_int_equal(s->calls, 1);
    assert_non_null(s->op);
    assert_int_equal(p->client.negotiation_calls, 0);
    assert_int_equal(p->server.negotiation_calls, 0);
    assert_int_equal(tls_test_shuttle(p), 0);
    assert_int_equal(tls_test_shuttle(p), 0);
    assert_int_equal(p->client.negotiation_calls, 0);
    assert_int_equal(s->calls, 1);
}

/* Answer now (on the test thread, the loops' thread), then let it finish. */
static void answer_and_finish(tls_test_pair_t *p, signer_t *s) {
    assert_int_equal(signer_answer(s), RS_OK);
    tls_test_shuttle(p);
}

/* ------------------------------------------------------------- the client */

static void client_answers_later(const char *cert, const char *key, rs_tls_sign_algorithm_t expect_alg) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    signer_t s;
    rs_tls_info_t info;
    client_signs_pair(&p, &cctx, &sctx, &s, cert, key, SIGNER_LATER);
    tls_test_shuttle(&p);
    assert_waiting(&p, &s);
    assert_int_equal(s.algorithm, expect_alg);
    assert_int_equal(s.hash, RS_TLS_HASH_SHA256);
    assert_int_equal(s.digest_len, 32);
    answer_and_finish(&p, &s);
    assert_negotiated(&p);
    assert_int_equal(s.calls, 1); /* asked once: the step done again took the answer */
    assert_int_equal(rs_tls_handler_get_info(p.server.tls, &info), RS_OK);
    assert_true(info.peer_verified); /* the server checked our CertificateVerify */
    assert_echo(&p, "signed later, by the client");
    free_pair(&p, cctx, sctx);
}

static void test_client_rsa_answers_later(void **state) {
    (void)state;
    client_answers_later("server.pem", "server.key", RS_TLS_SIGN_RSA_PKCS1);
}

static void test_client_ec_answers_later(void **state) {
    (void)state;
    client_answers_later("client.pem", "client.key", RS_TLS_SIGN_ECDSA);
}

/* ------------------------------------------------------------- the server */

static void server_answers_later(const char *name, rs_tls_sign_algorithm_t expect_alg, const char *suite_part) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    signer_t s;
    rs_tls_info_t info;
    server_signs_pair(&p, &cctx, &sctx, &s, name, SIGNER_LATER);
    tls_test_shuttle(&p);
    assert_waiting(&p, &s);
    assert_int_equal(s.algorithm, expect_alg);
    answer_and_finish(&p, &s);
    assert_negotiated(&p);
    assert_int_equal(s.calls, 1);
    assert_int_equal(rs_tls_handler_get_info(p.client.tls, &info), RS_OK);
    assert_true(info.peer_verified);
    assert_non_null(strstr(info.cipher_suite_name, suite_part));
    assert_echo(&p, "signed later, by the server");
    free_pair(&p, cctx, sctx);
}

static void test_server_rsa_answers_later(void **state) {
    (void)state;
    server_answers_later("server", RS_TLS_SIGN_RSA_PKCS1, "ECDHE-RSA");
}

static void test_server_ec_answers_later(void **state) {
    (void)state;
    server_answers_later("server_ec", RS_TLS_SIGN_ECDSA, "ECDHE-ECDSA");
}

/* TLS 1.0: the RSA signature is over MD5+SHA-1 (36 bytes, no DigestInfo). */
static void test_server_answers_later_in_tls10(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_private_key_t pk;
    rs_tls_ctx_t *cctx, *sctx;
    signer_t s;
    rs_tls_info_t info;
    (void)state;
    signer_init(&s, "server.key", SIGNER_LATER, &pk);
    so.key_file = NULL;
    so.private_key = &pk;
    co.min_version = RS_TLS_VERSION_1_0;
    co.max_version = RS_TLS_VERSION_1_0;
    so.min_version = RS_TLS_VERSION_1_0;
    cctx = tls_test_ctx(&co);
    sctx = tls_test_ctx(&so);
    tls_test_pair_init(&p, cctx, NULL, sctx, false);
    tls_test_shuttle(&p);
    assert_waiting(&p, &s);
    assert_int_equal(s.hash, RS_TLS_HASH_MD5_SHA1);
    assert_int_equal(s.digest_len, 36);
    answer_and_finish(&p, &s);
    assert_negotiated(&p);
    assert_int_equal(rs_tls_handler_get_info(p.client.tls, &info), RS_OK);
    assert_int_equal(info.version, 0x0301);
    assert_echo(&p, "TLS 1.0, signed later");
    free_pair(&p, cctx, sctx);
}

/* A client chain longer than BearSSL's 8 KiB output buffer (our leaf and
 * intermediate, then more CA certificates, which the server ignores once
 * the path reaches its anchor): the Certificate message is written across
 * several records, and the signature is asked for inside the ack of bytes
 * sent (the sendrec step), not of bytes received. */
static void test_client_long_chain_answers_later(void **state) {
    static const char *parts[] = {"chain_full.pem", "ca.pem", "other_ca.pem", "inter.pem", "ca.pem",
                                  "other_ca.pem",   "inter.pem", "ca.pem", "other_ca.pem", "inter.pem"};
    const char *bundle = tls_test_path("long_client_chain.pem");
    tls_test_pair_t p;
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_private_key_t pk;
    rs_tls_ctx_t *cctx, *sctx;
    signer_t s;
    FILE *out;
    size_t i, total = 0;
    int round;
    (void)state;
    out = fopen(bundle, "wb");
    assert_non_null(out);
    for (i = 0; i < sizeof(parts) / sizeof(parts[0]); ++i) {
        char buf[8192];
        size_t n;
        FILE *in = fopen(tls_test_path(parts[i]), "rb");
        assert_non_null(in);
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
            assert_int_equal(fwrite(buf, 1, n, out), n);
            total += n;
        }
        fclose(in);
    }
    assert_int_equal(fclose(out), 0);
    assert_true(total > 3 * 8192 / 2); /* PEM: about 4/3 of the DER, which must pass 8 KiB */
    signer_init(&s, "chain_leaf.key", SIGNER_LATER, &pk);
    co.cert_file = bundle;
    co.private_key = &pk;
    so.client_auth = RS_TLS_CLIENT_AUTH_REQUIRED;
    so.ca_file = tls_test_path("ca.pem");
    cctx = tls_test_ctx(&co);
    sctx = tls_test_ctx(&so);
    tls_test_pair_init(&p, cctx, NULL, sctx, false);
    /* Shuttle a round at a time: the first records of the Certificate
     * message leave before the signature is asked for. */
    for (round = 0; round < 100 && !s.op; ++round) {
        tls_test_shuttle(&p);
    }
    assert_waiting(&p, &s);
    assert_int_equal(s.algorithm, RS_TLS_SIGN_RSA_PKCS1);
    answer_and_finish(&p, &s);
    assert_negotiated(&p);
    assert_int_equal(s.calls, 1);
    assert_echo(&p, "a long chain, signed later");
    free_pair(&p, cctx, sctx);
}

/* --------------------------------------------------------- other answers */

static void test_answer_inside_sign_async(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    signer_t s;
    (void)state;
    client_signs_pair(&p, &cctx, &sctx, &s, "client.pem", "client.key", SIGNER_AT_ONCE);
    tls_test_shuttle(&p); /* no wait: it was there when do_sign returned */
    assert_negotiated(&p);
    assert_int_equal(s.calls, 1);
    assert_echo(&p, "answered at once");
    free_pair(&p, cctx, sctx);
}

static void test_answer_from_another_thread(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    signer_t s;
    int i;
    (void)state;
    server_signs_pair(&p, &cctx, &sctx, &s, "server_ec", SIGNER_THREAD);
    /* Bounded: the thread answers 20 ms in; this gives it 10 s. */
    for (i = 0; i < 10000 && p.client.negotiation_calls == 0; ++i) {
        tls_test_shuttle(&p);
        if (p.client.negotiation_calls == 0) {
            rs_thread_sleep_ns(RS_NS_PER_MS);
        }
    }
    signer_join(&s);
    assert_int_equal(s.thread_result, RS_OK);
    assert_negotiated(&p);
    assert_int_equal(s.calls, 1);
    assert_echo(&p, "answered by another thread");
    free_pair(&p, cctx, sctx);
}

/* An error answer is the handshake's result; the server sees it fail. */
static void test_error_answer_fails_the_handshake(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    signer_t s;
    rs_tls_sign_op_t *op;
    (void)state;
    client_signs_pair(&p, &cctx, &sctx, &s, "client.pem", "client.key", SIGNER_LATER);
    tls_test_shuttle(&p);
    assert_waiting(&p, &s);
    op = s.op;
    s.op = NULL;
    assert_int_equal(rs_tls_sign_op_complete(op, RS_EACCES, NULL, 0), RS_OK);
    tls_test_shuttle(&p);
    assert_int_equal(p.client.negotiation_calls, 1);
    assert_int_equal(p.client.negotiation_error, RS_EACCES);
    assert_int_equal(p.server.negotiation_calls, 1);
    assert_true(p.server.negotiation_error != RS_OK);
    free_pair(&p, cctx, sctx);
}

/* An invalid answer still answers: the handshake fails with its code. */
static void bad_answer(size_t extra, int error, int expect) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    signer_t s;
    rs_tls_sign_op_t *op;
    uint8_t sig[600];
    memset(sig, 0x5a, sizeof(sig));
    server_signs_pair(&p, &cctx, &sctx, &s, "server", SIGNER_LATER);
    tls_test_shuttle(&p);
    assert_waiting(&p, &s);
    op = s.op;
    s.op = NULL;
    assert_true(s.sig_capacity + extra <= sizeof(sig));
    assert_int_equal(rs_tls_sign_op_complete(op, error, error ? NULL : sig, s.sig_capacity + extra), RS_EINVAL);
    tls_test_shuttle(&p);
    assert_int_equal(p.server.negotiation_calls, 1);
    assert_int_equal(p.server.negotiation_error, expect);
    assert_int_equal(p.client.negotiation_calls, 1);
    assert_true(p.client.negotiation_error != RS_OK);
    free_pair(&p, cctx, sctx);
}

static void test_invalid_answers(void **state) {
    (void)state;
    assert_int_equal(rs_tls_sign_op_complete(NULL, RS_OK, NULL, 0), RS_EINVAL);
    bad_answer(1, RS_OK, RS_ETLS_BAD_KEY); /* longer than sig_capacity */
    bad_answer(0, 5, RS_ETLS_FAILED);     /* a positive error */
}

/* A signature that is well formed but wrong: the peer refuses it. */
static void test_wrong_signature_is_refused_by_the_peer(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    signer_t s;
    (void)state;
    server_signs_pair(&p, &cctx, &sctx, &s, "server_ec", SIGNER_LATER);
    tls_test_shuttle(&p);
    assert_waiting(&p, &s);
    s.digest[0] ^= 1; /* sign another hash */
    assert_int_equal(signer_answer(&s), RS_OK);
    tls_test_shuttle(&p);
    assert_int_equal(p.client.negotiation_calls, 1);
    assert_int_equal(p.client.negotiation_error, RS_ETLS_PROTOCOL); /* BearSSL: bad signature */
    free_pair(&p, cctx, sctx);
}

static void test_sign_async_error_return(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    signer_t s;
    (void)state;
    client_signs_pair(&p, &cctx, &sctx, &s, "client.pem", "client.key", SIGNER_REFUSE);
    s.refusal = RS_EACCES;
    tls_test_shuttle(&p);
    assert_int_equal(s.calls, 1);
    assert_int_equal(p.client.negotiation_calls, 1);
    assert_int_equal(p.client.negotiation_error, RS_EACCES);
    free_pair(&p, cctx, sctx);
}

/* --------------------------------------------- answers after the end */

/* The client times out waiting; the answer that comes after is dropped. */
static void test_answer_after_the_timeout(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_private_key_t pk;
    rs_tls_ctx_t *cctx, *sctx;
    rs_tls_connection_options_t conn;
    tls_test_pair_t p;
    signer_t s;
    int i, err = RS_OK;
    (void)state;
    signer_init(&s, "client.key", SIGNER_LATER, &pk);
    co.cert_file = tls_test_path("client.pem");
    co.private_key = &pk;
    so.client_auth = RS_TLS_CLIENT_AUTH_REQUIRED;
    so.ca_file = tls_test_path("ca.pem");
    cctx = tls_test_ctx(&co);
    sctx = tls_test_ctx(&so);
    memset(&conn, 0, sizeof(conn));
    conn.server_name = "localhost";
    conn.negotiation_timeout_ms = 30;
    tls_test_pair_init(&p, cctx, &conn, sctx, false);
    tls_test_shuttle(&p);
    assert_int_equal(s.calls, 1);
    assert_non_null(s.op);
    for (i = 0; i < 500 && !rs_testing_channel_is_shut_down(p.client.tc, NULL); ++i) {
        rs_thread_sleep_ns(5 * RS_NS_PER_MS);
        rs_testing_channel_run(p.client.tc);
    }
    assert_int_equal(p.client.negotiation_calls, 1);
    assert_int_equal(p.client.negotiation_error, RS_ETLS_HANDSHAKE_TIMEOUT);
    assert_true(rs_testing_channel_is_shut_down(p.client.tc, &err));
    assert_int_equal(signer_answer(&s), RS_OK); /* dropped */
    tls_test_shuttle(&p);
    assert_int_equal(p.client.negotiation_calls, 1);
    free_pair(&p, cctx, sctx); /* the test allocator checks that the op went */
}

/* Both channels destroyed while the op waits; the answer frees it. */
static void test_answer_after_the_channel_is_destroyed(void **state) {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    signer_t s;
    (void)state;
    server_signs_pair(&p, &cctx, &sctx, &s, "server", SIGNER_LATER);
    tls_test_shuttle(&p);
    assert_waiting(&p, &s);
    tls_test_pair_destroy(&p);
    assert_int_equal(signer_answer(&s), RS_OK);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

/* The same, the answer coming from another thread while the test thread
 * destroys the channels. */
static void test_answer_from_a_thread_races_the_destroy(void **state) {
    int round;
    (void)state;
    for (round = 0; round < 20; ++round) {
        tls_test_pair_t p;
        rs_tls_ctx_t *cctx, *sctx;
        signer_t s;
        client_signs_pair(&p, &cctx, &sctx, &s, "client.pem", "client.key", SIGNER_THREAD);
        tls_test_shuttle(&p);
        assert_int_equal(s.calls, 1);
        if (round % 2) {
            rs_thread_sleep_ns(20 * RS_NS_PER_MS); /* about when the thread answers */
        }
        tls_test_pair_destroy(&p);
        signer_join(&s);
        assert_int_equal(s.thread_result, RS_OK);
        rs_tls_ctx_release(cctx);
        rs_tls_ctx_release(sctx);
    }
}

/* ------------------------------------------------------------ refusals */

static int unused_sign(rs_tls_sign_algorithm_t algorithm, rs_tls_hash_t hash, const uint8_t *digest,
                       size_t digest_len, uint8_t *sig, size_t sig_capacity, size_t *sig_len, void *user_data) {
    (void)algorithm;
    (void)hash;
    (void)digest;
    (void)digest_len;
    (void)sig;
    (void)sig_capacity;
    (void)sig_len;
    (void)user_data;
    return RS_EACCES;
}

static void test_options_refused(void **state) {
    rs_tls_ctx_options_t o = tls_test_server_options("server");
    rs_tls_private_key_t pk;
    rs_tls_engine_config_t config;
    rs_tls_ctx_t *ctx;
    signer_t s;
    int err = RS_OK;
    (void)state;
    signer_init(&s, "server.key", SIGNER_LATER, &pk);
    o.key_file = NULL;
    o.private_key = &pk;
    pk.sign = unused_sign; /* both */
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    pk.sign = NULL;
    pk.sign_async = NULL; /* neither */
    err = RS_OK;
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    /* The BearSSL engine made without a handler cannot bring an answer back. */
    pk.sign_async = signer_sign_async;
    ctx = tls_test_ctx(&o);
    memset(&config, 0, sizeof(config));
    config.ctx = ctx;
    config.allocator = &rs_test_allocator;
    config.is_server = true;
    err = RS_OK;
    assert_null(rs_tls_engine_bearssl_new(&config, NULL, &err));
    assert_int_equal(err, RS_EINVAL);
    rs_tls_ctx_release(ctx);
    assert_int_equal(rs_tls_engine_wake(NULL), RS_EINVAL);
}

/* ---------------------------------------------------- allocation failures */

/* Each allocation of the client's context during a handshake that waits for
 * its signature fails in turn: the client's handshake fails with RS_ENOMEM
 * (or completes, past the failure points), and nothing leaks. */
static void test_allocation_failures(void **state) {
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_ctx_t *sctx;
    size_t fail_at;
    int completed = 0, failed = 0;
    (void)state;
    so.client_auth = RS_TLS_CLIENT_AUTH_REQUIRED;
    so.ca_file = tls_test_path("ca.pem");
    sctx = tls_test_ctx(&so);
    for (fail_at = 1; fail_at < 200; ++fail_at) {
        rs_tls_ctx_options_t co = tls_test_client_options();
        rs_tls_private_key_t pk;
        rs_test_failing_alloc_t fa;
        rs_tls_ctx_t *cctx;
        tls_test_pair_t p;
        rs_tls_connection_options_t conn;
        signer_t s;
        int err = RS_OK;
        signer_init(&s, "client.key", SIGNER_LATER, &pk);
        rs_test_failing_alloc_init(&fa, fail_at);
        co.allocator = &fa.allocator;
        co.cert_file = tls_test_path("client.pem");
        co.private_key = &pk;
        cctx = rs_tls_ctx_new(&co, &err);
        if (!cctx) {
            assert_int_equal(err, RS_ENOMEM);
            continue;
        }
        memset(&p, 0, sizeof(p));
        tls_test_side_init(&p.server, sctx, NULL, false);
        /* The client side by hand: its handler's allocations may fail. */
        {
            rs_testing_channel_options_t to;
            memset(&to, 0, sizeof(to));
            to.allocator = &rs_test_allocator;
            p.client.tc = rs_testing_channel_new(&to, &err);
            assert_non_null(p.client.tc);
            memset(&conn, 0, sizeof(conn));
            conn.ctx = cctx;
            conn.server_name = "localhost";
            conn.on_negotiation_result = tls_test_on_negotiation;
            conn.user_data = &p.client;
            p.client.tls = rs_tls_handler_new(&conn, &err);
        }
        if (p.client.tls) {
            assert_int_equal(rs_testing_channel_add_handler(p.client.tc, p.client.tls), RS_OK);
            p.client.app = tls_test_app_new(SIZE_MAX);
            assert_int_equal(rs_testing_channel_add_handler(p.client.tc, &p.client.app->base), RS_OK);
            err = rs_tls_handler_start_negotiation(p.client.tls);
            if (err == RS_OK) {
                tls_test_shuttle(&p);
                if (s.op) {
                    assert_int_equal(signer_answer(&s), RS_OK);
                    tls_test_shuttle(&p);
                }
                assert_int_equal(p.client.negotiation_calls, 1);
                err = p.client.negotiation_error;
            }
        } else {
            assert_int_equal(err, RS_ENOMEM);
        }
        if (err == RS_OK) {
            ++completed;
        } else {
            assert_int_equal(err, RS_ENOMEM);
            ++failed;
        }
        tls_test_pair_destroy(&p);
        rs_tls_ctx_release(cctx);
        if (fa.failures == 0) {
            break;
        }
    }
    print_message("allocation sweep: %d handshakes failed with RS_ENOMEM, then one completed\n", failed);
    assert_int_equal(completed, 1);
    assert_true(failed >= 3); /* the handler, the engine, its saved state, the op... */
    rs_tls_ctx_release(sctx);
}

static int teardown_suite(void **state) {
    (void)state;
    tls_test_remove_cert_dir();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_rsa_answers_later),
        cmocka_unit_test(test_client_ec_answers_later),
        cmocka_unit_test(test_server_rsa_answers_later),
        cmocka_unit_test(test_server_ec_answers_later),
        cmocka_unit_test(test_server_answers_later_in_tls10),
        cmocka_unit_test(test_client_long_chain_answers_later),
        cmocka_unit_test(test_answer_inside_sign_async),
        cmocka_unit_test(test_answer_from_another_thread),
        cmocka_unit_test(test_error_answer_fails_the_handshake),
        cmocka_unit_test(test_invalid_answers),
        cmocka_unit_test(test_wrong_signature_is_refused_by_the_peer),
        cmocka_unit_test(test_sign_async_error_return),
        cmocka_unit_test(test_answer_after_the_timeout),
        cmocka_unit_test(test_answer_after_the_channel_is_destroyed),
        cmocka_unit_test(test_answer_from_a_thread_races_the_destroy),
        cmocka_unit_test(test_options_refused),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests_name("tls_sign_async", tests, NULL, teardown_suite);
}
