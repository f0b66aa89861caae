/* A private key behind a sign function (rs_tls_private_key_t): BearSSL's
 * client-certificate class (a client's CertificateVerify) and server policy
 * class (a server's ServerKeyExchange) of our own, which choose the
 * certificate and hash as BearSSL's single-key classes do, then hand the
 * hash to the user's sign function instead of signing in memory.
 *
 * BearSSL calls do_sign from inside its handshake code, which cannot be
 * paused: the signature must be there when do_sign returns. A synchronous
 * sign function answering RS_EAGAIN fails the handshake with RS_ENOTSUP. An
 * asynchronous one (sign_async) gets an op and answers through it: when the
 * answer is not there when do_sign returns, do_sign fails, the key notes
 * `pending`, and the BearSSL engine undoes the step that asked (see
 * rs__tls_bearssl_step); when the answer comes, the op's task has the
 * engine do the step again, and do_sign, asked the same question, takes
 * the answer from the op. */

/* Where an op is: inside sign_async, waiting for its answer, answered. */
#define RS__TLS_SIGN_CALLING 0
#define RS__TLS_SIGN_PENDING 1
#define RS__TLS_SIGN_DONE 2

/* Owned by the engine's key until it is pending, then by whichever of the
 * answer (rs_tls_sign_op_complete) and the engine comes last: the engine
 * takes the answer in the op's task, or, destroyed first, marks the op
 * engine_gone, and then the answer or the task frees it. A pending op holds
 * its channel, so the answer can always schedule the task. */
struct rs_tls_sign_op {
    rs_mutex_t lock; /* stage, engine_gone, the answer */
    int stage;
    bool engine_gone;
    bool held; /* pending at some point: it holds the channel */
    int error;
    size_t sig_len;
    unsigned char sig[512]; /* BearSSL's room for a signature (eng->pad) */
    /* the question, to check that the step done again asks the same */
    rs_tls_sign_algorithm_t algorithm;
    int hash_id;
    size_t digest_len;
    unsigned char digest[64]; /* SHA-512, the longest TLS 1.2 hash */
    size_t sig_capacity;
    const rs_allocator_t *allocator;
    rs_channel_t *channel; /* held while pending */
    rs_channel_task_t task; /* brings the answer to the loop thread */
    void *engine;           /* the rs__tls_bearssl_t that asked */
};

/* One per handler; both vtable pointers point at classes below, and BearSSL
 * hands back the address of the one it was given. */
typedef struct rs__tls_ext_key {
    const br_ssl_client_certificate_class *client_vtable;
    const br_ssl_server_policy_class *server_vtable;
    const rs_tls_ctx_t *ctx;
    rs__tls_error_context_t *ec; /* where a sign error is left for rs__tls_map_error */
    const void *who;             /* the handler, for the log */
    /* asynchronous signing (sign_async) */
    rs_channel_handler_t *handler;  /* its channel is where the answer goes */
    void *engine;                   /* the engine, for the op's task */
    rs_channel_task_fn *on_answer;  /* the engine's: runs the op's task */
    rs_tls_sign_op_t *op;           /* the op in flight or answered, not yet taken */
    bool pending;                   /* the last do_sign left its op waiting */
    bool op_taken;                  /* do_sign took the answer of op */
} rs__tls_ext_key_t;

static void rs__tls_sign_op_free(rs_tls_sign_op_t *op) {
    rs_channel_t *channel = op->held ? op->channel : NULL;
    const rs_allocator_t *allocator = op->allocator;
    rs_mutex_cleanup(&op->lock);
    rs_pem_wipe(op, sizeof(*op));
    rs_mem_free(allocator, op);
    rs_channel_release_hold(channel); /* last: it may free the channel */
}

RESEAU_API int rs_tls_sign_op_complete(rs_tls_sign_op_t *op, int error, const uint8_t *sig, size_t sig_len) {
    int ret = RS_OK;
    int stage;
    bool gone;
    if (!op) {
        return RS_EINVAL;
    }
    if (error > 0) {
        ret = RS_EINVAL;
        error = RS_ETLS_FAILED;
    } else if (error == RS_OK && (!sig || sig_len == 0 || sig_len > op->sig_capacity)) {
        ret = RS_EINVAL;
        error = RS_ETLS_BAD_KEY;
    }
    rs_mutex_lock(&op->lock);
    op->error = error;
    if (!error) {
        memcpy(op->sig, sig, sig_len);
        op->sig_len = sig_len;
    }
    stage = op->stage;
    op->stage = RS__TLS_SIGN_DONE;
    gone = op->engine_gone;
    rs_mutex_unlock(&op->lock);
    if (stage == RS__TLS_SIGN_CALLING) {
        return ret; /* answered from inside sign_async: do_sign takes it */
    }
    if (gone) {
        rs__tls_sign_op_free(op);
    } else {
        rs_channel_schedule_task_now(op->channel, &op->task); /* cannot fail: held, and not scheduled yet */
    }
    return ret;
}

/* The answer of `op` for do_sign, which asks (algorithm, hash_id, data[0..hv_len)):
 * the signature's length in data, or 0 with the error in ec->key_error.
 * Frees the op. */
static size_t rs__tls_ext_key_take_answer(rs__tls_ext_key_t *k, rs_tls_sign_op_t *op, rs_tls_sign_algorithm_t alg,
                                          int hash_id, unsigned char *data, size_t hv_len, size_t len) {
    size_t sig_len = 0;
    int err = op->error;
    if (!err && (op->algorithm != alg || op->hash_id != hash_id || op->digest_len != hv_len ||
                 memcmp(op->digest, data, hv_len) != 0 || op->sig_len > len)) {
        RS__TLS_LOG(RS_LOG_LEVEL_ERROR, "tls %p: the handshake step done again asked for another signature", k->who);
        err = RS_ETLS_FAILED;
    }
    if (!err) {
        memcpy(data, op->sig, op->sig_len);
        sig_len = op->sig_len;
    } else {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls %p: the private key could not sign: %s (%s)", k->who, rs_err_name(err),
                    rs_strerror(err));
        k->ec->key_error = err;
    }
    rs__tls_sign_op_free(op);
    return sig_len;
}

/* Ask sign_async, or take the answer to the question asked before. */
static size_t rs__tls_ext_key_sign_async(rs__tls_ext_key_t *k, rs_tls_sign_algorithm_t alg, int hash_id,
                                         unsigned char *data, size_t hv_len, size_t len) {
    const rs_tls_private_key_t *pk = &k->ctx->ext_key;
    rs_tls_sign_op_t *op = k->op;
    int err, stage;
    if (op) { /* the step done again, with the answer */
        k->op = NULL;
        k->op_taken = true;
        return rs__tls_ext_key_take_answer(k, op, alg, hash_id, data, hv_len, len);
    }
    op = (rs_tls_sign_op_t *)rs_mem_calloc(&k->ctx->allocator, 1, sizeof(*op));
    if (!op) {
        k->ec->key_error = RS_ENOMEM;
        return 0;
    }
    err = rs_mutex_init(&op->lock);
    if (err) {
        rs_mem_free(&k->ctx->allocator, op);
        k->ec->key_error = err;
        return 0;
    }
    op->stage = RS__TLS_SIGN_CALLING;
    op->algorithm = alg;
    op->hash_id = hash_id;
    op->digest_len = hv_len;
    memcpy(op->digest, data, hv_len);
    op->sig_capacity = len < sizeof(op->sig) ? len : sizeof(op->sig);
    op->allocator = &k->ctx->allocator;
    op->channel = rs_channel_slot_get_channel(k->handler->slot);
    op->engine = k->engine;
    rs_channel_task_init(&op->task, k->on_answer, op, "tls-sign-answer");
    err = pk->sign_async(op, alg, (rs_tls_hash_t)hash_id, op->digest, hv_len, op->sig_capacity, pk->user_data);
    rs_mutex_lock(&op->lock);
    stage = op->stage;
    if (!err && stage == RS__TLS_SIGN_CALLING) {
        /* The hold first: from the unlock on, the answer may come on another
         * thread and schedule the task on the channel. */
        rs_channel_acquire_hold(op->channel);
        op->held = true;
        op->stage = RS__TLS_SIGN_PENDING;
    }
    rs_mutex_unlock(&op->lock);
    if (err) {
        if (stage == RS__TLS_SIGN_DONE) {
            RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls %p: sign_async both answered and returned %s; the error counts",
                        k->who, rs_err_name(err));
        }
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls %p: the private key could not sign: %s (%s)", k->who, rs_err_name(err),
                    rs_strerror(err));
        rs__tls_sign_op_free(op);
        k->ec->key_error = err > 0 ? RS_ETLS_FAILED : err;
        return 0;
    }
    if (stage == RS__TLS_SIGN_DONE) { /* answered at once */
        return rs__tls_ext_key_take_answer(k, op, alg, hash_id, data, hv_len, len);
    }
    k->op = op;
    k->pending = true;
    return 0;
}

/* Call the sign function on the hash BearSSL left in data[0..hv_len) and
 * put the signature there (at most len bytes). Returns its length, or 0 for
 * BearSSL to fail the handshake, with the reason in ec->key_error (or, for
 * an asynchronous answer still to come, k->pending set). */
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
    if (pk->sign_async) {
        return rs__tls_ext_key_sign_async(k, alg, hash_id, data, hv_len, len);
    }
    memcpy(digest, data, hv_len); /* data is also the output buffer */
    err = pk->sign(alg, (rs_tls_hash_t)hash_id, digest, hv_len, data, len, &sig_len, pk->user_data);
    if (err == RS_EAGAIN) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls %p: the private key's sign function asked to answer later; a "
                    "synchronous sign function cannot (use sign_async)", k->who);
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

/* What an asynchronous sign function needs: where to send the answer, and
 * the engine's task that takes it. */
static void rs__tls_ext_key_set_async(rs__tls_ext_key_t *k, rs_channel_handler_t *handler, void *engine,
                                      rs_channel_task_fn *on_answer) {
    k->handler = handler;
    k->engine = engine;
    k->on_answer = on_answer;
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
