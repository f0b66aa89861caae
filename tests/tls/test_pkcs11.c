/* PKCS#11 against SoftHSM2: each test makes a token in its own directory
 * (SOFTHSM2_CONF), imports the test suite's RSA and EC keys into it with
 * softhsm2-util, and then:
 * - a reseau client whose key is on the token does mTLS with
 *   `openssl s_server -Verify 1` (RSA and EC): the handshake needs the
 *   CertificateVerify signature the token made;
 * - a reseau server whose key is on the token serves `openssl s_client`
 *   (RSA and EC: the token signs each ServerKeyExchange), in TLS 1.2 and in
 *   TLS 1.0 (MD5+SHA-1 for RSA, SHA-1 for ECDSA);
 * - wrong PIN, missing key, missing token label, missing slot, a module path
 *   that does not exist, a library that is not a PKCS#11 module: each its
 *   own code;
 * - the same with sign_async: the token signs on a thread of the test's,
 *   as a remote signer would, and the handshake waits for the answer
 *   (client RSA and EC with s_server -Verify 1; server RSA in TLS 1.2 and
 *   EC in TLS 1.0 with s_client);
 * - the sign hook without PKCS#11: a function that fails gives the
 *   handshake its code, and a synchronous one that answers RS_EAGAIN
 *   ("later") gives RS_ENOTSUP (later is sign_async's).
 * Skips (exit 77, saying why) without SoftHSM2's module, softhsm2-util or
 * the openssl CLI. */
#include "interop/tls_interop_util.h"

#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN_LABEL "rs-test-token"
#define USER_PIN "1234"

static char openssl_path[512];
static char softhsm_util_path[512];

/* Run a command line through the shell, its output in the test's log; fail
 * the test when it fails. */
static void run_or_fail(const char *what, const char *cmd) {
    char line[4096], log[256];
    snprintf(log, sizeof(log), "%s/commands.log", ix_tmpdir);
    snprintf(line, sizeof(line), "%s >>'%s' 2>&1", cmd, log);
    if (system(line) != 0) {
        snprintf(line, sizeof(line), "cat '%s'", log);
        (void)system(line);
        fail_msg("%s failed: %s", what, cmd);
    }
}

/* A fresh token in TMPDIR/tokens, with server.key (RSA, "rsa-key", id 01)
 * and server_ec.key (EC P-256, "ec-key", id 02) on it. The keys are the tls
 * suite's, so their certificates are signed by ca.pem. */
static void make_token(void) {
    char path[512], cmd[2048];
    FILE *f;
    snprintf(path, sizeof(path), "%s/tokens", ix_tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/softhsm2.conf", ix_tmpdir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n", ix_tmpdir);
    assert_int_equal(fclose(f), 0);
    tls_test_setenv("SOFTHSM2_CONF", path);
    snprintf(cmd, sizeof(cmd), "'%s' --init-token --free --label %s --pin %s --so-pin 87654321", softhsm_util_path,
             TOKEN_LABEL, USER_PIN);
    run_or_fail("softhsm2-util --init-token", cmd);
    snprintf(cmd, sizeof(cmd), "'%s' --import '%s' --token %s --label rsa-key --id 01 --pin %s", softhsm_util_path,
             tls_test_path("server.key"), TOKEN_LABEL, USER_PIN);
    run_or_fail("softhsm2-util --import (RSA)", cmd);
    snprintf(cmd, sizeof(cmd), "'%s' --import '%s' --token %s --label ec-key --id 02 --pin %s", softhsm_util_path,
             tls_test_path("server_ec.key"), TOKEN_LABEL, USER_PIN);
    run_or_fail("softhsm2-util --import (EC)", cmd);
}

static rs_pkcs11_lib_t *load_softhsm(void) {
    rs_pkcs11_lib_options_t lo;
    rs_pkcs11_lib_t *lib;
    int err = RS_EUNKNOWN;
    memset(&lo, 0, sizeof(lo));
    lo.allocator = &rs_test_allocator;
    lo.module_path = SOFTHSM_MODULE;
    lib = rs_pkcs11_lib_new(&lo, &err);
    if (!lib) {
        TIX_FAIL("rs_pkcs11_lib_new(%s): %s", SOFTHSM_MODULE, rs_err_name(err));
    }
    return lib;
}

static rs_pkcs11_key_t *token_key(rs_pkcs11_lib_t *lib, const char *label, int *err) {
    rs_pkcs11_key_options_t ko;
    memset(&ko, 0, sizeof(ko));
    ko.lib = lib;
    ko.token_label = TOKEN_LABEL;
    ko.user_pin = USER_PIN;
    ko.key_label = label;
    return rs_pkcs11_key_new(&ko, err);
}

/* The token key's hook, wrapped to count the signatures the handshakes
 * asked of it (so a test knows the token signed, not something else). */
typedef struct counting_key {
    rs_tls_private_key_t inner;
    int calls;
    rs_tls_sign_algorithm_t last_algorithm;
    rs_tls_hash_t last_hash;
    /* asynchronous: the token signs on a thread of the test's, as a remote
     * signer would, and the answer comes through rs_tls_sign_op_complete */
    bool async;
    rs_tls_sign_op_t *op;
    uint8_t digest[64];
    size_t digest_len;
    size_t sig_capacity;
    rs_thread_t thread;
    bool thread_started;
    int answer_result;
} counting_key_t;

static counting_key_t counted;
/* Set by a test: the next token context signs asynchronously. */
static bool token_async_next;

static int counting_sign(rs_tls_sign_algorithm_t algorithm, rs_tls_hash_t hash, const uint8_t *digest,
                         size_t digest_len, uint8_t *sig, size_t sig_capacity, size_t *sig_len, void *user_data) {
    counting_key_t *c = (counting_key_t *)user_data;
    pthread_mutex_lock(&tix_lock);
    c->calls++;
    c->last_algorithm = algorithm;
    c->last_hash = hash;
    pthread_mutex_unlock(&tix_lock);
    return c->inner.sign(algorithm, hash, digest, digest_len, sig, sig_capacity, sig_len, c->inner.user_data);
}

static void counting_sign_thread(void *arg) {
    counting_key_t *c = (counting_key_t *)arg;
    uint8_t sig[512];
    size_t sig_len = 0;
    int err;
    rs_thread_sleep_ns(10 * RS_NS_PER_MS); /* later, for real */
    err = c->inner.sign(c->last_algorithm, c->last_hash, c->digest, c->digest_len, sig, c->sig_capacity, &sig_len,
                        c->inner.user_data);
    c->answer_result = rs_tls_sign_op_complete(c->op, err, err ? NULL : sig, sig_len);
}

static int counting_sign_async(rs_tls_sign_op_t *op, rs_tls_sign_algorithm_t algorithm, rs_tls_hash_t hash,
                               const uint8_t *digest, size_t digest_len, size_t sig_capacity, void *user_data) {
    counting_key_t *c = (counting_key_t *)user_data;
    assert_false(c->thread_started); /* one signature per handshake */
    assert_true(digest_len <= sizeof(c->digest));
    pthread_mutex_lock(&tix_lock);
    c->calls++;
    c->last_algorithm = algorithm;
    c->last_hash = hash;
    pthread_mutex_unlock(&tix_lock);
    c->op = op;
    memcpy(c->digest, digest, digest_len);
    c->digest_len = digest_len;
    c->sig_capacity = sig_capacity;
    c->thread_started = true;
    return rs_thread_launch(&c->thread, counting_sign_thread, c, NULL);
}

/* After the handshake: the signer thread answered, and is joined. */
static void counting_join(void) {
    if (counted.thread_started) {
        assert_int_equal(rs_thread_join(&counted.thread), RS_OK);
        counted.thread_started = false;
        assert_int_equal(counted.answer_result, RS_OK);
    }
}

static void counting_acquire(void *user_data) {
    counting_key_t *c = (counting_key_t *)user_data;
    c->inner.acquire(c->inner.user_data);
}

static void counting_release(void *user_data) {
    counting_key_t *c = (counting_key_t *)user_data;
    c->inner.release(c->inner.user_data);
}

/* A context with `cert` and its key on the token (counted in `counted`). */
static rs_tls_ctx_t *token_ctx_version(bool is_server, const char *cert, rs_pkcs11_key_t *key,
                                       rs_tls_version_t version) {
    rs_tls_ctx_options_t o;
    rs_tls_private_key_t pk;
    rs_tls_ctx_t *ctx;
    int err = RS_EUNKNOWN;
    bool async = token_async_next;
    token_async_next = false; /* for this context only */
    memset(&counted, 0, sizeof(counted));
    memset(&pk, 0, sizeof(pk));
    counted.async = async;
    assert_int_equal(rs_pkcs11_key_get_tls_private_key(key, &counted.inner), RS_OK);
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.is_server = is_server;
    o.ca_file = tls_test_path("ca.pem");
    o.cert_file = tls_test_path(cert);
    if (async) {
        pk.sign_async = counting_sign_async;
    } else {
        pk.sign = counting_sign;
    }
    pk.acquire = counting_acquire;
    pk.release = counting_release;
    pk.user_data = &counted;
    o.private_key = &pk;
    o.min_version = version;
    o.max_version = version;
    ctx = rs_tls_ctx_new(&o, &err);
    if (!ctx) {
        TIX_FAIL("rs_tls_ctx_new with a token key: %s", rs_err_name(err));
    }
    return ctx;
}

static rs_tls_ctx_t *token_ctx(bool is_server, const char *cert, rs_pkcs11_key_t *key) {
    return token_ctx_version(is_server, cert, key, RS_TLS_VERSION_1_2);
}

/* s_server -Verify 1: a client certificate is required, checked against
 * ca.pem, and its CertificateVerify signature with it. -rev answers each
 * line reversed. */
static pid_t start_s_server_verify(uint16_t port, const char *log_name) {
    char accept_arg[64];
    pid_t child;
    snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%u", (unsigned)port);
    {
        char *argv[] = {openssl_path, (char *)"s_server", (char *)"-accept", accept_arg, (char *)"-cert",
                        (char *)tls_test_path("server.pem"), (char *)"-key", (char *)tls_test_path("server.key"),
                        (char *)"-CAfile", (char *)tls_test_path("ca.pem"), (char *)"-Verify", (char *)"1",
                        (char *)"-verify_return_error", (char *)"-rev", NULL};
        child = tix_spawn(argv, -1, tix_log_path(log_name));
    }
    tix_wait_listening(child, port);
    return child;
}

/* The reseau client's key (for `cert`) is `label` on the token. */
static void client_key_on_token_mtls(const char *cert, const char *label, const char *log_name) {
    static tix_env_t env;
    static tix_client_t cl;
    static tix_conn_t conn;
    rs_pkcs11_lib_t *lib;
    rs_pkcs11_key_t *key;
    rs_tls_ctx_t *ctx;
    uint16_t port;
    int err = RS_EUNKNOWN;
    make_token();
    lib = load_softhsm();
    key = token_key(lib, label, &err);
    if (!key) {
        TIX_FAIL("rs_pkcs11_key_new(%s): %s", label, rs_err_name(err));
    }
    ctx = token_ctx(false, cert, key);
    rs_pkcs11_key_release(key); /* the context holds its own reference */
    rs_pkcs11_lib_release(lib); /* and the key holds the library */
    tix_env_init(&env);
    port = ix_free_port(SOCK_STREAM);
    start_s_server_verify(port, log_name);
    tix_conn_init(&conn, TIX_RECORD);
    err = tix_connect(&env, &cl, &conn, "localhost", port, ctx, "localhost", NULL);
    if (err) {
        TIX_FAIL("mTLS handshake with s_server -Verify 1 failed: %s (%s)", rs_err_name(err), rs_strerror(err));
    }
    assert_true(conn.info.negotiated);
    assert_int_equal(conn.info.version, 0x0303);
    tix_send_text(&conn, "signed on the token\n");
    TIX_WAIT_RECEIVED(&conn, "nekot eht no dengis\n", 20);
    /* s_server got the client's certificate, verified it, and checked the
     * CertificateVerify signature made with it. */
    TIX_EXPECT_IN_FILE(tix_logs[0], "Peer certificate: CN = localhost");
    TIX_EXPECT_IN_FILE(tix_logs[0], "Verification: OK");
    TIX_EXPECT_IN_FILE(tix_logs[0], strstr(cert, "_ec") ? "Signature type: ECDSA" : "Signature type: RSA");
    assert_int_equal(counted.calls, 1); /* the CertificateVerify, signed on the token */
    assert_int_equal(counted.last_algorithm, strstr(cert, "_ec") ? RS_TLS_SIGN_ECDSA : RS_TLS_SIGN_RSA_PKCS1);
    assert_int_equal(counted.last_hash, RS_TLS_HASH_SHA256);
    counting_join();
    tix_close(&conn);
    TIX_WAIT(conn.shutdown_calls > 0, "the client connection did not shut down");
    tix_conn_cleanup(&conn);
    tix_env_cleanup(&env);
    rs_tls_ctx_release(ctx); /* the last reference: key, session and module go */
}

static void client_rsa_key_on_token_does_mtls_with_s_server(void **state) {
    (void)state;
    client_key_on_token_mtls("server.pem", "rsa-key", "s_server_rsa.log");
}

static void client_ec_key_on_token_does_mtls_with_s_server(void **state) {
    (void)state;
    client_key_on_token_mtls("server_ec.pem", "ec-key", "s_server_ec.log");
}

/* A reseau server whose key is on the token; s_client verifies its chain
 * and the ServerKeyExchange signature. */
static void server_key_on_token_serves_s_client(const char *cert, const char *label, const char *log_name,
                                                bool tls10) {
    static tix_env_t env;
    static tix_server_t server;
    rs_pkcs11_lib_t *lib;
    rs_pkcs11_key_t *key;
    rs_tls_ctx_t *ctx;
    char connect_arg[64];
    const char *log;
    int in[2];
    pid_t child;
    int status;
    int err = RS_EUNKNOWN;
    make_token();
    lib = load_softhsm();
    key = token_key(lib, label, &err);
    if (!key) {
        TIX_FAIL("rs_pkcs11_key_new(%s): %s", label, rs_err_name(err));
    }
    ctx = token_ctx_version(true, cert, key, tls10 ? RS_TLS_VERSION_1_0 : RS_TLS_VERSION_1_2);
    rs_pkcs11_key_release(key);
    rs_pkcs11_lib_release(lib);
    tix_env_init(&env);
    tix_server_start(&env, &server, ctx, TIX_ECHO);
    snprintf(connect_arg, sizeof(connect_arg), "127.0.0.1:%u", (unsigned)server.port);
    tix_stdin_pair(in);
    log = tix_log_path(log_name);
    {
        char *argv[] = {openssl_path, (char *)"s_client", (char *)"-connect", connect_arg, (char *)"-servername",
                        (char *)"localhost", (char *)"-CAfile", (char *)tls_test_path("ca.pem"),
                        (char *)"-verify_return_error", NULL, NULL, NULL, NULL};
        if (tls10) { /* OpenSSL 3 refuses TLS 1.0 below security level 0 */
            argv[9] = (char *)"-tls1";
            argv[10] = (char *)"-cipher";
            argv[11] = (char *)"DEFAULT@SECLEVEL=0";
        }
        child = tix_spawn(argv, in[0], log);
    }
    close(in[0]);
    tix_send_stdin(in[1], "ping from s_client\n");
    TIX_WAIT(server.conns[0].received >= 19, "the reseau server got %zu bytes from s_client, expected 19",
             server.conns[0].received);
    {
        uint64_t deadline = rs_clock_now_ns() + IX_WAIT_NS;
        while (!tix_file_contains(log, "ping from s_client")) {
            if (rs_clock_now_ns() > deadline) {
                TIX_FAIL("s_client did not print the echo");
            }
            rs_thread_sleep_ns(10 * RS_NS_PER_MS);
        }
    }
    close(in[1]);
    status = tix_wait_exit(child, "s_client");
    if (status != 0) {
        TIX_FAIL("s_client exited with status %d", status);
    }
    TIX_EXPECT_IN_FILE(log, "Verify return code: 0 (ok)");
    TIX_EXPECT_IN_FILE(log, tls10 ? "Protocol  : TLSv1\n" : "Protocol  : TLSv1.2");
    assert_int_equal(server.setup_errors, 0);
    assert_int_equal(counted.calls, 1); /* the ServerKeyExchange, signed on the token */
    assert_int_equal(counted.last_algorithm, strstr(cert, "_ec") ? RS_TLS_SIGN_ECDSA : RS_TLS_SIGN_RSA_PKCS1);
    /* TLS 1.2: the best hash s_client offers; 1.0: MD5+SHA-1 for RSA (no
     * DigestInfo), SHA-1 for ECDSA. */
    assert_int_equal(counted.last_hash, !tls10 ? RS_TLS_HASH_SHA256
                                        : strstr(cert, "_ec") ? RS_TLS_HASH_SHA1 : RS_TLS_HASH_MD5_SHA1);
    counting_join();
    tix_server_stop(&server);
    rs_tls_ctx_release(ctx);
    tix_env_cleanup(&env);
}

static void server_rsa_key_on_token_serves_s_client(void **state) {
    (void)state;
    server_key_on_token_serves_s_client("server.pem", "rsa-key", "s_client_rsa.log", false);
}

static void server_rsa_key_on_token_serves_tls10_s_client(void **state) {
    (void)state;
    server_key_on_token_serves_s_client("server.pem", "rsa-key", "s_client_rsa10.log", true);
}

static void server_ec_key_on_token_serves_tls10_s_client(void **state) {
    (void)state;
    server_key_on_token_serves_s_client("server_ec.pem", "ec-key", "s_client_ec10.log", true);
}

/* The same with sign_async: the token signs on a thread, and the handshake
 * waits for the answer (a remote signer's shape). */
static void client_ec_key_on_token_signs_on_a_thread_for_s_server(void **state) {
    (void)state;
    token_async_next = true;
    client_key_on_token_mtls("server_ec.pem", "ec-key", "s_server_ec_async.log");
}

static void client_rsa_key_on_token_signs_on_a_thread_for_s_server(void **state) {
    (void)state;
    token_async_next = true;
    client_key_on_token_mtls("server.pem", "rsa-key", "s_server_rsa_async.log");
}

static void server_rsa_key_on_token_signs_on_a_thread_for_s_client(void **state) {
    (void)state;
    token_async_next = true;
    server_key_on_token_serves_s_client("server.pem", "rsa-key", "s_client_rsa_async.log", false);
}

static void server_ec_key_on_token_signs_on_a_thread_for_tls10_s_client(void **state) {
    (void)state;
    token_async_next = true;
    server_key_on_token_serves_s_client("server_ec.pem", "ec-key", "s_client_ec10_async.log", true);
}

static void server_ec_key_on_token_serves_s_client(void **state) {
    (void)state;
    server_key_on_token_serves_s_client("server_ec.pem", "ec-key", "s_client_ec.log", false);
}

static void key_errors_have_their_codes(void **state) {
    rs_pkcs11_key_options_t ko;
    rs_pkcs11_lib_options_t lo;
    rs_pkcs11_lib_t *lib;
    static const uint8_t id02[] = {0x02}, id77[] = {0x77};
    rs_pkcs11_key_t *key;
    int err = RS_EUNKNOWN;
    (void)state;
    make_token();
    lib = load_softhsm();

    memset(&ko, 0, sizeof(ko));
    ko.lib = lib;
    ko.token_label = TOKEN_LABEL;
    ko.key_label = "rsa-key";
    ko.user_pin = "9999"; /* wrong PIN */
    assert_null(rs_pkcs11_key_new(&ko, &err));
    assert_int_equal(err, RS_EPKCS11_PIN_INCORRECT);

    ko.user_pin = USER_PIN;
    ko.key_label = "no-such-key";
    assert_null(rs_pkcs11_key_new(&ko, &err));
    assert_int_equal(err, RS_EPKCS11_KEY_NOT_FOUND);

    ko.key_label = NULL; /* by CKA_ID */
    ko.key_id = rs_byte_cursor_from_array(id77, sizeof(id77));
    assert_null(rs_pkcs11_key_new(&ko, &err));
    assert_int_equal(err, RS_EPKCS11_KEY_NOT_FOUND);
    ko.key_id = rs_byte_cursor_from_array(id02, sizeof(id02));
    key = rs_pkcs11_key_new(&ko, &err);
    assert_non_null(key);
    assert_int_equal(err, RS_OK);
    rs_pkcs11_key_release(key);

    ko.user_pin = NULL; /* not logged in: private objects are invisible */
    assert_null(rs_pkcs11_key_new(&ko, &err));
    assert_int_equal(err, RS_EPKCS11_KEY_NOT_FOUND);

    ko.user_pin = USER_PIN;
    ko.token_label = "no-such-token";
    assert_null(rs_pkcs11_key_new(&ko, &err));
    assert_int_equal(err, RS_EPKCS11_TOKEN_NOT_FOUND);
    ko.token_label = NULL;
    ko.use_slot_id = true;
    ko.slot_id = 0xdead; /* no slot has that id */
    assert_null(rs_pkcs11_key_new(&ko, &err));
    assert_int_equal(err, RS_EPKCS11_TOKEN_NOT_FOUND);

    /* Bad arguments. */
    assert_null(rs_pkcs11_key_new(NULL, &err));
    assert_int_equal(err, RS_EINVAL);
    memset(&ko, 0, sizeof(ko));
    ko.lib = lib;
    ko.key_label = "rsa-key"; /* no token */
    assert_null(rs_pkcs11_key_new(&ko, &err));
    assert_int_equal(err, RS_EINVAL);
    ko.token_label = TOKEN_LABEL;
    ko.key_label = NULL; /* no key */
    assert_null(rs_pkcs11_key_new(&ko, &err));
    assert_int_equal(err, RS_EINVAL);
    assert_int_equal(rs_pkcs11_key_get_tls_private_key(NULL, NULL), RS_EINVAL);
    rs_pkcs11_key_release(NULL);
    rs_pkcs11_lib_release(lib);

    /* Modules: a path that does not exist; a library that is not a module. */
    memset(&lo, 0, sizeof(lo));
    lo.allocator = &rs_test_allocator;
    lo.module_path = "/nonexistent/libno-such-pkcs11.so";
    assert_null(rs_pkcs11_lib_new(&lo, &err));
    assert_int_equal(err, RS_ESHARED_LIBRARY_LOAD_FAILURE);
    lo.module_path = "libc.so.6";
    assert_null(rs_pkcs11_lib_new(&lo, &err));
    assert_int_equal(err, RS_ESHARED_LIBRARY_SYMBOL_NOT_FOUND);
    lo.module_path = NULL;
    assert_null(rs_pkcs11_lib_new(&lo, &err));
    assert_int_equal(err, RS_EINVAL);
    assert_null(rs_pkcs11_lib_new(NULL, &err));
    assert_int_equal(err, RS_EINVAL);
    rs_pkcs11_lib_release(NULL);
}

/* A sign hook of the user's own that fails with `answer`. */
static int failing_sign(rs_tls_sign_algorithm_t algorithm, rs_tls_hash_t hash, const uint8_t *digest,
                        size_t digest_len, uint8_t *sig, size_t sig_capacity, size_t *sig_len, void *user_data) {
    int *answer = (int *)user_data;
    (void)algorithm, (void)hash, (void)digest, (void)digest_len, (void)sig, (void)sig_capacity, (void)sig_len;
    return answer[0]++ >= 0 ? answer[1] : RS_OK; /* answer[0] counts the calls */
}

static void sign_hook_failure(int answer, int expected, const char *log_name) {
    static tix_env_t env;
    static tix_client_t cl;
    static tix_conn_t conn;
    static int calls_and_answer[2];
    rs_tls_ctx_options_t o;
    rs_tls_private_key_t pk;
    rs_tls_ctx_t *ctx;
    uint16_t port;
    int err = RS_EUNKNOWN;
    calls_and_answer[0] = 0;
    calls_and_answer[1] = answer;
    memset(&pk, 0, sizeof(pk));
    pk.sign = failing_sign;
    pk.user_data = calls_and_answer;
    o = tls_test_client_options();
    o.cert_file = tls_test_path("client.pem");
    o.private_key = &pk;
    ctx = rs_tls_ctx_new(&o, &err);
    assert_non_null(ctx);
    tix_env_init(&env);
    port = ix_free_port(SOCK_STREAM);
    start_s_server_verify(port, log_name);
    tix_conn_init(&conn, TIX_RECORD);
    err = tix_connect(&env, &cl, &conn, "localhost", port, ctx, "localhost", NULL);
    if (err != expected) {
        TIX_FAIL("expected %s from the handshake, got %s", rs_err_name(expected), rs_err_name(err));
    }
    assert_int_equal(calls_and_answer[0], 1);
    tix_conn_cleanup(&conn);
    tix_env_cleanup(&env);
    rs_tls_ctx_release(ctx);
}

static void sign_hook_error_is_the_handshake_result(void **state) {
    (void)state;
    sign_hook_failure(RS_EACCES, RS_EACCES, "s_server_hook_error.log");
}

static void sign_hook_answering_later_is_enotsup(void **state) {
    (void)state;
    sign_hook_failure(RS_EAGAIN, RS_ENOTSUP, "s_server_hook_later.log");
}

static void private_key_options_are_checked(void **state) {
    rs_tls_ctx_options_t o;
    rs_tls_private_key_t pk;
    int err = RS_EUNKNOWN;
    (void)state;
    memset(&pk, 0, sizeof(pk));
    o = tls_test_client_options();
    o.cert_file = tls_test_path("client.pem");
    o.private_key = &pk; /* no sign function */
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    pk.sign = failing_sign;
    pk.release = free; /* release without acquire */
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    pk.release = NULL;
    o.key_file = tls_test_path("client.key"); /* a key twice */
    assert_null(rs_tls_ctx_new(&o, &err));
    assert_int_equal(err, RS_EINVAL);
}

/* Fail each allocation of loading the module, opening a key and making a
 * context on it, in turn, until none fails: each failure is RS_ENOMEM with
 * nothing leaked (the leak-checking allocator would say). */
static void allocation_failures_are_enomem_and_leak_nothing(void **state) {
    size_t n;
    (void)state;
    make_token();
    for (n = 1;; ++n) {
        rs_test_failing_alloc_t fa;
        rs_pkcs11_lib_options_t lo;
        rs_pkcs11_key_options_t ko;
        rs_tls_ctx_options_t o;
        rs_tls_private_key_t pk;
        rs_pkcs11_lib_t *lib;
        rs_pkcs11_key_t *key = NULL;
        rs_tls_ctx_t *ctx = NULL;
        int err = RS_EUNKNOWN;
        rs_test_failing_alloc_init(&fa, n);
        memset(&lo, 0, sizeof(lo));
        lo.allocator = &fa.allocator;
        lo.module_path = SOFTHSM_MODULE;
        lib = rs_pkcs11_lib_new(&lo, &err);
        if (lib) {
            memset(&ko, 0, sizeof(ko));
            ko.lib = lib;
            ko.token_label = TOKEN_LABEL;
            ko.user_pin = USER_PIN;
            ko.key_label = "ec-key";
            key = rs_pkcs11_key_new(&ko, &err);
            rs_pkcs11_lib_release(lib);
        }
        if (key) {
            assert_int_equal(rs_pkcs11_key_get_tls_private_key(key, &pk), RS_OK);
            o = tls_test_client_options();
            o.allocator = &fa.allocator;
            o.cert_file = tls_test_path("server_ec.pem");
            o.private_key = &pk;
            ctx = rs_tls_ctx_new(&o, &err);
            rs_pkcs11_key_release(key);
        }
        if (ctx) {
            rs_tls_ctx_release(ctx);
            assert_int_equal(fa.failures, 0);
            break;
        }
        assert_int_equal(err, RS_ENOMEM);
        assert_int_equal(fa.failures, 1);
    }
    print_message("allocation sweep: %zu allocations, each failure RS_ENOMEM\n", n - 1);
    assert_true(n > 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(client_rsa_key_on_token_does_mtls_with_s_server, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(client_ec_key_on_token_does_mtls_with_s_server, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(server_rsa_key_on_token_serves_s_client, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(server_ec_key_on_token_serves_s_client, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(server_rsa_key_on_token_serves_tls10_s_client, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(server_ec_key_on_token_serves_tls10_s_client, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(client_ec_key_on_token_signs_on_a_thread_for_s_server, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(client_rsa_key_on_token_signs_on_a_thread_for_s_server, ix_setup,
                                        tix_teardown),
        cmocka_unit_test_setup_teardown(server_rsa_key_on_token_signs_on_a_thread_for_s_client, ix_setup,
                                        tix_teardown),
        cmocka_unit_test_setup_teardown(server_ec_key_on_token_signs_on_a_thread_for_tls10_s_client, ix_setup,
                                        tix_teardown),
        cmocka_unit_test_setup_teardown(key_errors_have_their_codes, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(sign_hook_error_is_the_handshake_result, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(sign_hook_answering_later_is_enotsup, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(private_key_options_are_checked, ix_setup, tix_teardown),
        cmocka_unit_test_setup_teardown(allocation_failures_are_enomem_and_leak_nothing, ix_setup, tix_teardown),
    };
    int failed;
    if (access(SOFTHSM_MODULE, R_OK) != 0) {
        printf("skipped: no SoftHSM2 module at %s (Debian package softhsm2)\n", SOFTHSM_MODULE);
        return 77;
    }
    if (!ix_find_tool("softhsm2-util", softhsm_util_path, sizeof(softhsm_util_path))) {
        printf("skipped: softhsm2-util is not installed (Debian package softhsm2)\n");
        return 77;
    }
    if (!ix_find_tool("openssl", openssl_path, sizeof(openssl_path))) {
        printf("skipped: the openssl CLI is not installed (Debian package openssl)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_DFL);
    failed = cmocka_run_group_tests_name("tls_pkcs11", tests, NULL, NULL);
    tls_test_remove_cert_dir();
    return failed;
}
