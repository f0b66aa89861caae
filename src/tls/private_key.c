/* A private key behind a sign function (rs_tls_private_key_t): BearSSL's
 * client-certificate class (a client's CertificateVerify) and server policy
 * class (a server's ServerKeyExchange) of our own, which choose the
 * certificate and hash as BearSSL's single-key classes do, then hand the
 * hash to the user's sign function instead of signing in memory.
 *
 * BearSSL calls do_sign from inside its handshake code, which cannot be
 * paused: the signature must be there when do_sign returns. So the hook is
 * synchronous, and a sign function answering RS_EAGAIN fails the handshake
 * with RS_ENOTSUP. */

/* One per handler; both vtable pointers point at classes below, and BearSSL
 * hands back the address of the one it was given. */
typedef struct rs__tls_ext_key {
    const br_ssl_client_certificate_class *client_vtable;
    const br_ssl_server_policy_class *server_vtable;
    const rs_tls_ctx_t *ctx;
    rs__tls_error_context_t *ec; /* where a sign error is left for rs__tls_map_error */
    const void *who;             /* the handler, for the log */
} rs__tls_ext_key_t;

/* Call the sign function on the hash BearSSL left in data[0..hv_len) and
 * put the signature there (at most len bytes). Returns its length, or 0 for
 * BearSSL to fail the handshake, with the reason in ec->key_error. */
static size_t rs__tls_ext_key_sign(rs__tls_ext_key_t *k, int hash_id, unsigned char *data, size_t hv_len, size_t len) {
    const rs_tls_private_key_t *pk = &k->ctx->ext_key;
    rs_tls_sign_algorithm_t alg = k->ctx->ext_key_type == BR_KEYTYPE_RSA ? RS_TLS_SIGN_RSA_PKCS1 : RS_TLS_SIGN_ECDSA;
    unsigned char digest[64]; /* SHA-512, the longest TLS 1.2 hash */
    size_t sig_len = 0;
    int err;
    if (hv_len > sizeof(digest)) {
        k->ec->key_error = RS_ETLS_FAILED;
        return 0;
    }
    memcpy(digest, data, hv_len); /* data is also the output buffer */
    err = pk->sign(alg, (rs_tls_hash_t)hash_id, digest, hv_len, data, len, &sig_len, pk->user_data);
    if (err == RS_EAGAIN) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls %p: the private key's sign function asked to answer later; BearSSL "
                    "cannot pause a handshake, so asynchronous signing is not supported", k->who);
        err = RS_ENOTSUP;
    } else if (!err && (sig_len == 0 || sig_len > len)) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls %p: the private key's sign function gave %lu bytes (room for %lu)", k->who,
                    (unsigned long)sig_len, (unsigned long)len);
        err = RS_ETLS_BAD_KEY;
    }
    if (err) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls %p: the private key could not sign: %s (%s)", k->who, rs_err_name(err),
                    rs_strerror(err));
        k->ec->key_error = err;
        return 0;
    }
    return sig_len;
}

/* The hash to sign with, of those in `bits` (bit n: hash n): SHA-256 first
 * (every TLS 1.2 peer has it, and it is the cheapest strong one), then the
 * longer ones, SHA-224, and SHA-1 last. 0 when none. */
static int rs__tls_ext_choose_hash(unsigned bits) {
    static const int order[] = {br_sha256_ID, br_sha384_ID, br_sha512_ID, br_sha224_ID, br_sha1_ID};
    size_t i;
    for (i = 0; i < sizeof(order) / sizeof(order[0]); ++i) {
        if ((bits >> order[i]) & 1) {
            return order[i];
        }
    }
    return 0;
}

/* ---- client: a certificate and a CertificateVerify signature ---------------- */

static void rs__tls_ext_cc_none0(const br_ssl_client_certificate_class **pctx) {
    (void)pctx;
}

static void rs__tls_ext_cc_none1(const br_ssl_client_certificate_class **pctx, size_t len) {
    (void)pctx;
    (void)len;
}

static void rs__tls_ext_cc_none2(const br_ssl_client_certificate_class **pctx, const unsigned char *data,
                                 size_t len) {
    (void)pctx;
    (void)data;
    (void)len;
}

/* auth_types: bit n is "RSA signatures with hash n" (bit 0: MD5+SHA-1 of TLS
 * 1.0/1.1), bit 8+n the same for ECDSA. With no usable hash, no certificate
 * is sent (the server then decides whether that is fatal). */
static void rs__tls_ext_cc_choose(const br_ssl_client_certificate_class **pctx, const br_ssl_client_context *cc,
                                  uint32_t auth_types, br_ssl_client_certificate *choices) {
    rs__tls_ext_key_t *k = RS_CONTAINER_OF(pctx, rs__tls_ext_key_t, client_vtable);
    bool rsa = k->ctx->ext_key_type == BR_KEYTYPE_RSA;
    unsigned bits = rsa ? (unsigned)(auth_types & 0xFF) : (unsigned)((auth_types >> 8) & 0xFF);
    int hash_id = rs__tls_ext_choose_hash(bits);
    (void)cc;
    memset(choices, 0, sizeof(*choices));
    if (hash_id == 0 && !(rsa && (bits & 1))) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls %p: the server takes no %s client signature with a hash we have", k->who,
                    rsa ? "RSA" : "ECDSA");
        return;
    }
    choices->auth_type = rsa ? BR_AUTH_RSA : BR_AUTH_ECDSA;
    choices->hash_id = hash_id;
    choices->chain = k->ctx->chain.certs;
    choices->chain_len = k->ctx->chain.count;
}

/* Static ECDH (the key in a key exchange) is never chosen above. */
static uint32_t rs__tls_ext_cc_do_keyx(const br_ssl_client_certificate_class **pctx, unsigned char *data,
                                       size_t *len) {
    (void)pctx;
    (void)data;
    (void)len;
    return 0;
}

static size_t rs__tls_ext_cc_do_sign(const br_ssl_client_certificate_class **pctx, int hash_id, size_t hv_len,
                                     unsigned char *data, size_t len) {
    return rs__tls_ext_key_sign(RS_CONTAINER_OF(pctx, rs__tls_ext_key_t, client_vtable), hash_id, data, hv_len,
                                len);
}

static const br_ssl_client_certificate_class rs__tls_ext_client_class = {
    sizeof(rs__tls_ext_key_t), rs__tls_ext_cc_none0, rs__tls_ext_cc_none1, rs__tls_ext_cc_none2,
    rs__tls_ext_cc_none0,      rs__tls_ext_cc_none0, rs__tls_ext_cc_choose, rs__tls_ext_cc_do_keyx,
    rs__tls_ext_cc_do_sign,
};

/* ---- server: a suite, a certificate and a ServerKeyExchange signature ------- */

/* The first client suite (the client's order, as BearSSL's own policies)
 * whose key exchange is ECDHE signed with our key type. The hash: the best
 * the client offers for our key type in TLS 1.2; before it, MD5+SHA-1 for
 * RSA (hash 0) and SHA-1 for ECDSA. algo_id is 0xFF00 + hash, "sign this
 * hash", as BearSSL's policies give it. */
static int rs__tls_ext_sp_choose(const br_ssl_server_policy_class **pctx, const br_ssl_server_context *sc,
                                 br_ssl_server_choices *choices) {
    rs__tls_ext_key_t *k = RS_CONTAINER_OF(pctx, rs__tls_ext_key_t, server_vtable);
    bool rsa = k->ctx->ext_key_type == BR_KEYTYPE_RSA;
    unsigned want = rsa ? BR_SSLKEYX_ECDHE_RSA : BR_SSLKEYX_ECDHE_ECDSA;
    unsigned hashes = br_ssl_server_get_client_hashes(sc);
    const br_suite_translated *st;
    size_t i, n;
    unsigned hash_id;
    if (sc->eng.session.version < BR_TLS12) {
        hash_id = rsa ? 0 : br_sha1_ID;
    } else {
        hash_id = (unsigned)rs__tls_ext_choose_hash(rsa ? (hashes & 0xFF) : ((hashes >> 8) & 0xFF));
        if (hash_id == 0) {
            return 0; /* no hash in common for our key type */
        }
    }
    st = br_ssl_server_get_client_suites(sc, &n);
    for (i = 0; i < n; ++i) {
        if ((unsigned)(st[i][1] >> 12) == want) {
            choices->cipher_suite = st[i][0];
            choices->algo_id = 0xFF00 + hash_id;
            choices->chain = k->ctx->chain.certs;
            choices->chain_len = k->ctx->chain.count;
            return 1;
        }
    }
    return 0;
}

/* Neither RSA key exchange nor static ECDH is ever chosen above. */
static uint32_t rs__tls_ext_sp_do_keyx(const br_ssl_server_policy_class **pctx, unsigned char *data, size_t *len) {
    (void)pctx;
    (void)data;
    (void)len;
    return 0;
}

static size_t rs__tls_ext_sp_do_sign(const br_ssl_server_policy_class **pctx, unsigned algo_id, unsigned char *data,
                                     size_t hv_len, size_t len) {
    return rs__tls_ext_key_sign(RS_CONTAINER_OF(pctx, rs__tls_ext_key_t, server_vtable), (int)(algo_id & 0xFF), data,
                                hv_len, len);
}

static const br_ssl_server_policy_class rs__tls_ext_server_class = {
    sizeof(rs__tls_ext_key_t),
    rs__tls_ext_sp_choose,
    rs__tls_ext_sp_do_keyx,
    rs__tls_ext_sp_do_sign,
};

static void rs__tls_ext_key_init(rs__tls_ext_key_t *k, const rs_tls_ctx_t *ctx, rs__tls_error_context_t *ec,
                                 const void *who) {
    k->client_vtable = &rs__tls_ext_client_class;
    k->server_vtable = &rs__tls_ext_server_class;
    k->ctx = ctx;
    k->ec = ec;
    k->who = who;
}

/* A client: offer the chain when asked, sign through the hook. */
static void rs__tls_ext_key_setup_client(rs__tls_ext_key_t *k, br_ssl_client_context *cc) {
    br_ssl_client_set_client_certificate(cc, &k->client_vtable);
}

/* A server: BearSSL's full initialisation (suites, hashes, ECDHE) for the
 * key's type, whose key pointer is only stored by the single-key policy that
 * the policy set next replaces. */
static void rs__tls_ext_key_setup_server(rs__tls_ext_key_t *k, br_ssl_server_context *sc) {
    const rs_tls_ctx_t *ctx = k->ctx;
    if (ctx->ext_key_type == BR_KEYTYPE_RSA) {
        br_ssl_server_init_full_rsa(sc, ctx->chain.certs, ctx->chain.count, NULL);
    } else {
        br_ssl_server_init_full_ec(sc, ctx->chain.certs, ctx->chain.count, (unsigned)ctx->signer_key_type, NULL);
    }
    br_ssl_server_set_policy(sc, &k->server_vtable);
}
