/* The BearSSL engine (engine.h): a BearSSL client or server context, set up
 * from a TLS context, behind rs_tls_engine_vtable_t. Every BearSSL call the
 * TLS handler needs is here; handler.c knows only the vtable. */

#define RS__TLS_RECORD_OVERHEAD (BR_SSL_BUFSIZE_OUTPUT - 16384)
/* Records we send carry at most 8 KiB: the output buffer is half of BearSSL's
 * full size (which it allows: incoming records keep the full 16 KiB), so an
 * idle connection costs 8 KiB less, for one more record per 16 KiB message. */
#define RS__TLS_OBUF_SIZE (8192 + RS__TLS_RECORD_OVERHEAD)

/* handler.c announces 2 x 85 bytes of overhead per message (it cannot name
 * BearSSL's constant). */
RS__STATIC_ASSERT(RS__TLS_RECORD_OVERHEAD == 85, tls_bearssl_record_overhead);

/* The state flags are BearSSL's own, passed through. */
RS__STATIC_ASSERT(RS_TLS_ENGINE_CLOSED == BR_SSL_CLOSED && RS_TLS_ENGINE_SENDREC == BR_SSL_SENDREC &&
                      RS_TLS_ENGINE_RECVREC == BR_SSL_RECVREC && RS_TLS_ENGINE_SENDAPP == BR_SSL_SENDAPP &&
                      RS_TLS_ENGINE_RECVAPP == BR_SSL_RECVAPP,
                  tls_engine_state_flags);

/* Server side: the context's LRU, seen through a class of our own that takes
 * the context's lock and notes whether this handshake resumed a session. */
typedef struct rs__tls_cache_view {
    const br_ssl_session_cache_class *vtable;
    rs_tls_ctx_t *ctx;
    bool resumed;
} rs__tls_cache_view_t;

typedef struct rs__tls_bearssl {
    rs_tls_engine_t base;
    rs_tls_ctx_t *ctx;
    const void *who; /* the handler, named in the log */
    rs_channel_handler_t *handler; /* the TLS handler (config->handler), woken by an answer */
    bool is_server;
    bool negotiated;
    bool resumed;
    bool peer_verified;
    union {
        br_ssl_client_context client;
        br_ssl_server_context server;
    } u;
    br_ssl_engine_context *eng;
    rs__tls_verify_t *verify; /* handshake only */
    const br_ssl_client_certificate_class *no_cert_vtable;
    rs__tls_ext_key_t ext_key; /* a key behind a sign function (>>private_key.c) */
    rs__tls_cache_view_t cache_view;
    rs__tls_error_context_t ec;
    uint8_t ip[16];
    size_t ip_len;
    unsigned char offered_id[32];
    size_t offered_id_len;
    char *session_key; /* client: the session cache's key, stored right after this struct ("" on a server) */
    /* Asynchronous signing (sign_async): the engine's state before the
     * current handshake step, and the step waiting for a signature. */
    unsigned char *saved; /* while a sign_async key handshakes; else NULL */
    int paused_step;      /* RS__TLS_STEP_... */
    size_t paused_len;

    unsigned char ibuf[BR_SSL_BUFSIZE_INPUT];
    unsigned char obuf[RS__TLS_OBUF_SIZE];
} rs__tls_bearssl_t;

static rs__tls_bearssl_t *rs__tls_bearssl_of(rs_tls_engine_t *engine) {
    return (rs__tls_bearssl_t *)engine->impl;
}

/* ---- asynchronous signing: a handshake step undone, and done again ----
 *
 * BearSSL asks for our signature from inside a step of its handshake code
 * (the ack of bytes received, or of bytes sent, that moved it on) and
 * cannot wait there. So, while a key that answers later handshakes, each
 * such step starts by saving everything the step may change: the BearSSL
 * context, both record buffers, our error notes and the X.509 wrapper
 * (whose leaf buffer is refilled from its start when a certificate is
 * read again). When do_sign had to leave its question pending, the step
 * failed; the engine puts the saved state back, as if the step had not
 * been taken, and shows the handler nothing (state 0) until the answer
 * comes. Then the op's task takes the same step again: from the same state
 * and the same bytes, BearSSL (whose random generator is in its context)
 * computes the same handshake hash and asks the same question, which
 * do_sign answers from the op. Nothing outside the saved state is touched
 * by a step but the server's session cache lookup, which is a lookup. */

#define RS__TLS_STEP_NONE 0
#define RS__TLS_STEP_RECVREC 1 /* br_ssl_engine_recvrec_ack */
#define RS__TLS_STEP_SENDREC 2 /* br_ssl_engine_sendrec_ack */

static size_t rs__tls_saved_size(const rs__tls_bearssl_t *e) {
    return sizeof(e->u) + sizeof(e->ibuf) + sizeof(e->obuf) + sizeof(e->ec) + sizeof(e->cache_view) +
           sizeof(rs__tls_verify_t);
}

/* Copy the step's state to (save) or from (restore) e->saved. */
static void rs__tls_saved_copy(rs__tls_bearssl_t *e, bool save) {
    struct {
        void *p;
        size_t n;
    } parts[6];
    unsigned char *at = e->saved;
    size_t i, count = 5;
    parts[0].p = &e->u;
    parts[0].n = sizeof(e->u);
    parts[1].p = e->ibuf;
    parts[1].n = sizeof(e->ibuf);
    parts[2].p = e->obuf;
    parts[2].n = sizeof(e->obuf);
    parts[3].p = &e->ec;
    parts[3].n = sizeof(e->ec);
    parts[4].p = &e->cache_view;
    parts[4].n = sizeof(e->cache_view);
    if (e->verify) {
        parts[5].p = e->verify;
        parts[5].n = sizeof(*e->verify);
        count = 6;
    }
    for (i = 0; i < count; ++i) {
        if (save) {
            memcpy(at, parts[i].p, parts[i].n);
        } else {
            memcpy(parts[i].p, at, parts[i].n);
        }
        at += parts[i].n;
    }
}

static void rs__tls_bearssl_ack(rs__tls_bearssl_t *e, int step, size_t len) {
    if (step == RS__TLS_STEP_RECVREC) {
        br_ssl_engine_recvrec_ack(e->eng, len);
    } else {
        br_ssl_engine_sendrec_ack(e->eng, len);
    }
}

/* An ack: the step that may run the handshake code. */
static void rs__tls_bearssl_step(rs__tls_bearssl_t *e, int step, size_t len) {
    if (!e->saved) {
        rs__tls_bearssl_ack(e, step, len);
        return;
    }
    rs__tls_saved_copy(e, true);
    e->ext_key.pending = false;
    rs__tls_bearssl_ack(e, step, len);
    if (e->ext_key.pending) {
        e->ext_key.pending = false;
        rs__tls_saved_copy(e, false);
        e->paused_step = step;
        e->paused_len = len;
        RS__TLS_LOG(RS_LOG_LEVEL_DEBUG, "tls %p: the handshake waits for the private key's signature", e->who);
    }
}

static void rs__tls_bearssl_saved_free(rs__tls_bearssl_t *e) {
    if (e->saved) {
        rs_pem_wipe(e->saved, rs__tls_saved_size(e)); /* it held key material */
        rs_mem_free(&e->ctx->allocator, e->saved);
        e->saved = NULL;
    }
}

static bool rs__tls_bearssl_paused(const rs__tls_bearssl_t *e) {
    return e->paused_step != RS__TLS_STEP_NONE;
}

/* The op's task: the answer is here (or the channel is going down). */
static void rs__tls_bearssl_on_answer(rs_channel_task_t *task, void *arg, rs_task_status_t status) {
    rs_tls_sign_op_t *op = (rs_tls_sign_op_t *)arg;
    rs__tls_bearssl_t *e;
    bool gone;
    int step;
    (void)task;
    rs_mutex_lock(&op->lock);
    gone = op->engine_gone;
    rs_mutex_unlock(&op->lock);
    if (gone) {
        rs__tls_sign_op_free(op);
        return;
    }
    e = (rs__tls_bearssl_t *)op->engine;
    if (status != RS_TASK_STATUS_RUN || !rs__tls_bearssl_paused(e)) {
        e->ext_key.op = NULL;
        rs__tls_sign_op_free(op);
        return;
    }
    step = e->paused_step;
    e->paused_step = RS__TLS_STEP_NONE;
    e->ext_key.op_taken = false;
    rs__tls_bearssl_step(e, step, e->paused_len); /* do_sign takes the op */
    if (!e->ext_key.op_taken) {                  /* the step asked nothing this time */
        e->ext_key.op = NULL;
        rs__tls_sign_op_free(op);
    }
    rs_tls_engine_wake(e->handler);
}

/* ---- the handshake's end ---- */

/* Note what the handshake gave: resumption, verification, and (client) the
 * session to offer next time. */
static void rs__tls_bearssl_on_negotiated(rs__tls_bearssl_t *e) {
    br_ssl_session_parameters params;
    e->negotiated = true;
    br_ssl_engine_get_session_parameters(e->eng, &params);
    if (e->is_server) {
        e->resumed = e->cache_view.resumed;
    } else {
        e->resumed = e->offered_id_len && params.session_id_len == e->offered_id_len &&
                     memcmp(params.session_id, e->offered_id, e->offered_id_len) == 0;
        if (params.session_id_len) {
            rs__tls_client_session_put(e->ctx, e->session_key, &params);
        }
    }
    rs_pem_wipe(&params, sizeof(params));
    e->peer_verified = e->verify && e->verify->verified;
    if (e->resumed && !e->is_server) {
        e->peer_verified = e->ctx->verify; /* verified when the session was made */
    }
    rs__tls_verify_free(e->verify);
    e->verify = NULL;
    rs__tls_bearssl_saved_free(e); /* no more signing: renegotiation is off */
}

/* ---- the vtable ---- */

/* While a step waits for a signature the engine shows nothing: the
 * handler then waits for rs_tls_engine_wake. */
static unsigned rs__tls_bearssl_state(rs_tls_engine_t *engine) {
    rs__tls_bearssl_t *e = rs__tls_bearssl_of(engine);
    unsigned state;
    if (rs__tls_bearssl_paused(e)) {
        return 0;
    }
    state = br_ssl_engine_current_state(e->eng);
    if (!e->negotiated && (state & (BR_SSL_SENDAPP | BR_SSL_RECVAPP))) {
        rs__tls_bearssl_on_negotiated(e);
    }
    return state;
}

static unsigned char *rs__tls_bearssl_sendrec_buf(rs_tls_engine_t *engine, size_t *len) {
    rs__tls_bearssl_t *e = rs__tls_bearssl_of(engine);
    if (rs__tls_bearssl_paused(e)) {
        *len = 0;
        return NULL;
    }
    return br_ssl_engine_sendrec_buf(e->eng, len);
}

static void rs__tls_bearssl_sendrec_ack(rs_tls_engine_t *engine, size_t len) {
    rs__tls_bearssl_t *e = rs__tls_bearssl_of(engine);
    if (!rs__tls_bearssl_paused(e)) {
        rs__tls_bearssl_step(e, RS__TLS_STEP_SENDREC, len);
    }
}

static unsigned char *rs__tls_bearssl_recvrec_buf(rs_tls_engine_t *engine, size_t *len) {
    rs__tls_bearssl_t *e = rs__tls_bearssl_of(engine);
    if (rs__tls_bearssl_paused(e)) {
        *len = 0;
        return NULL;
    }
    return br_ssl_engine_recvrec_buf(e->eng, len);
}

static void rs__tls_bearssl_recvrec_ack(rs_tls_engine_t *engine, size_t len) {
    rs__tls_bearssl_t *e = rs__tls_bearssl_of(engine);
    if (!rs__tls_bearssl_paused(e)) {
        rs__tls_bearssl_step(e, RS__TLS_STEP_RECVREC, len);
    }
}

static unsigned char *rs__tls_bearssl_sendapp_buf(rs_tls_engine_t *engine, size_t *len) {
    return br_ssl_engine_sendapp_buf(rs__tls_bearssl_of(engine)->eng, len);
}

static void rs__tls_bearssl_sendapp_ack(rs_tls_engine_t *engine, size_t len) {
    br_ssl_engine_sendapp_ack(rs__tls_bearssl_of(engine)->eng, len);
}

static unsigned char *rs__tls_bearssl_recvapp_buf(rs_tls_engine_t *engine, size_t *len) {
    rs__tls_bearssl_t *e = rs__tls_bearssl_of(engine);
    if (rs__tls_bearssl_paused(e)) {
        *len = 0;
        return NULL;
    }
    return br_ssl_engine_recvapp_buf(e->eng, len);
}

static void rs__tls_bearssl_recvapp_ack(rs_tls_engine_t *engine, size_t len) {
    br_ssl_engine_recvapp_ack(rs__tls_bearssl_of(engine)->eng, len);
}

static void rs__tls_bearssl_flush(rs_tls_engine_t *engine) {
    rs__tls_bearssl_t *e = rs__tls_bearssl_of(engine);
    if (!rs__tls_bearssl_paused(e)) {
        br_ssl_engine_flush(e->eng, 0);
    }
}

static void rs__tls_bearssl_close(rs_tls_engine_t *engine) {
    br_ssl_engine_close(rs__tls_bearssl_of(engine)->eng);
}

/* BearSSL's number, mapped (and logged) with what the X.509 wrapper found
 * out, for a precise code. */
static int rs__tls_bearssl_last_error(rs_tls_engine_t *engine) {
    rs__tls_bearssl_t *e = rs__tls_bearssl_of(engine);
    int err = rs__tls_bearssl_paused(e) ? BR_ERR_OK : br_ssl_engine_last_error(e->eng);
    if (err == BR_ERR_OK) {
        return RS_OK;
    }
    if (e->verify) {
        e->ec.not_yet_valid = e->verify->not_yet_valid;
        e->ec.ip_mismatch = e->verify->ip_mismatch;
    }
    return rs__tls_map_error(err, &e->ec, e->who);
}

/* During a handshake in which the server asked for our certificate and we
 * had none, a hang-up is almost surely why: BearSSL servers, and others,
 * close without an alert then. */
static int rs__tls_bearssl_hangup_error(rs_tls_engine_t *engine) {
    rs__tls_bearssl_t *e = rs__tls_bearssl_of(engine);
    if (!e->negotiated && e->ec.client_cert_requested && !e->ec.have_client_cert) {
        return RS_ETLS_CLIENT_CERT_REQUIRED;
    }
    return RS_ETLS_TRUNCATED;
}

static void rs__tls_bearssl_get_info(rs_tls_engine_t *engine, rs_tls_engine_info_t *out) {
    rs__tls_bearssl_t *e = rs__tls_bearssl_of(engine);
    if (e->negotiated) {
        out->version = (uint16_t)br_ssl_engine_get_version(e->eng);
        out->cipher_suite = e->eng->session.cipher_suite;
        out->alpn = br_ssl_engine_get_selected_protocol(e->eng);
        out->resumed = e->resumed;
        out->peer_verified = e->peer_verified;
    }
    if (e->is_server) {
        const char *sni = br_ssl_engine_get_server_name(e->eng);
        out->server_name = sni && *sni ? sni : NULL;
    }
}

static void rs__tls_bearssl_destroy(rs_tls_engine_t *engine) {
    rs__tls_bearssl_t *e = rs__tls_bearssl_of(engine);
    const rs_allocator_t *allocator = &e->ctx->allocator;
    rs_tls_sign_op_t *op = e->ext_key.op;
    if (op) { /* its answer, or its task, frees it: whichever comes last */
        rs_mutex_lock(&op->lock);
        op->engine_gone = true;
        rs_mutex_unlock(&op->lock);
    }
    rs__tls_bearssl_saved_free(e);
    rs__tls_verify_free(e->verify);
    rs_pem_wipe(e, sizeof(*e));
    rs_mem_free(allocator, e);
}

static const rs_tls_engine_vtable_t rs__tls_bearssl_vtable = {
    rs__tls_bearssl_state,       rs__tls_bearssl_sendrec_buf, rs__tls_bearssl_sendrec_ack,
    rs__tls_bearssl_recvrec_buf, rs__tls_bearssl_recvrec_ack, rs__tls_bearssl_sendapp_buf,
    rs__tls_bearssl_sendapp_ack, rs__tls_bearssl_recvapp_buf, rs__tls_bearssl_recvapp_ack,
    rs__tls_bearssl_flush,       rs__tls_bearssl_close,       rs__tls_bearssl_last_error,
    rs__tls_bearssl_hangup_error, rs__tls_bearssl_get_info,   rs__tls_bearssl_destroy,
};

/* ---- client certificate: none, but note that one was asked for ---- */

static rs__tls_bearssl_t *rs__tls_of_no_cert(const br_ssl_client_certificate_class **pctx) {
    return (rs__tls_bearssl_t *)(void *)((char *)(uintptr_t)pctx - offsetof(rs__tls_bearssl_t, no_cert_vtable));
}

static void rs__tls_no_cert_start_name_list(const br_ssl_client_certificate_class **pctx) {
    rs__tls_of_no_cert(pctx)->ec.client_cert_requested = true;
}

static void rs__tls_no_cert_start_name(const br_ssl_client_certificate_class **pctx, size_t len) {
    (void)pctx;
    (void)len;
}

static void rs__tls_no_cert_append_name(const br_ssl_client_certificate_class **pctx, const unsigned char *data,
                                        size_t len) {
    (void)pctx;
    (void)data;
    (void)len;
}

static void rs__tls_no_cert_end(const br_ssl_client_certificate_class **pctx) {
    (void)pctx;
}

static void rs__tls_no_cert_choose(const br_ssl_client_certificate_class **pctx, const br_ssl_client_context *cc,
                                   uint32_t auth_types, br_ssl_client_certificate *choices) {
    (void)pctx;
    (void)cc;
    (void)auth_types;
    memset(choices, 0, sizeof(*choices)); /* chain_len 0: no certificate */
}

static uint32_t rs__tls_no_cert_do_keyx(const br_ssl_client_certificate_class **pctx, unsigned char *data,
                                        size_t *len) {
    (void)pctx;
    (void)data;
    (void)len;
    return 0;
}

static size_t rs__tls_no_cert_do_sign(const br_ssl_client_certificate_class **pctx, int hash_id, size_t hv_len,
                                      unsigned char *data, size_t len) {
    (void)pctx;
    (void)hash_id;
    (void)hv_len;
    (void)data;
    (void)len;
    return 0;
}

static const br_ssl_client_certificate_class rs__tls_no_cert_class = {
    sizeof(const br_ssl_client_certificate_class *),
    rs__tls_no_cert_start_name_list,
    rs__tls_no_cert_start_name,
    rs__tls_no_cert_append_name,
    rs__tls_no_cert_end,
    rs__tls_no_cert_end,
    rs__tls_no_cert_choose,
    rs__tls_no_cert_do_keyx,
    rs__tls_no_cert_do_sign,
};

/* ---- server session cache view ---- */

static rs__tls_cache_view_t *rs__tls_cache_view_of(const br_ssl_session_cache_class **pctx) {
    return (rs__tls_cache_view_t *)(void *)((char *)(uintptr_t)pctx - offsetof(rs__tls_cache_view_t, vtable));
}

static void rs__tls_cache_save(const br_ssl_session_cache_class **pctx, br_ssl_server_context *sc,
                               const br_ssl_session_parameters *params) {
    rs__tls_cache_view_t *view = rs__tls_cache_view_of(pctx);
    br_ssl_session_cache_lru *lru = &view->ctx->server_lru;
    rs_mutex_lock(&view->ctx->lock);
    lru->vtable->save(&lru->vtable, sc, params);
    rs_mutex_unlock(&view->ctx->lock);
}

static int rs__tls_cache_load(const br_ssl_session_cache_class **pctx, br_ssl_server_context *sc,
                              br_ssl_session_parameters *params) {
    rs__tls_cache_view_t *view = rs__tls_cache_view_of(pctx);
    br_ssl_session_cache_lru *lru = &view->ctx->server_lru;
    int found;
    rs_mutex_lock(&view->ctx->lock);
    found = lru->vtable->load(&lru->vtable, sc, params);
    rs_mutex_unlock(&view->ctx->lock);
    view->resumed = found != 0;
    return found;
}

static const br_ssl_session_cache_class rs__tls_cache_view_class = {
    sizeof(rs__tls_cache_view_t),
    rs__tls_cache_save,
    rs__tls_cache_load,
};

/* ---- set-up ---- */

#if !RESEAU_OS_NONE
/* `len` random bytes from the OS. Windows: BCryptGenRandom with the system's
 * preferred generator, the documented, supported call (Vista and later;
 * RtlGenRandom is its older, undocumented twin), needing no algorithm handle;
 * it costs -lbcrypt. */
static int rs__tls_os_random(unsigned char *out, size_t len) {
#if RESEAU_OS_WINDOWS
    if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, out, (ULONG)len, BCRYPT_USE_SYSTEM_PREFERRED_RNG))) {
        return RS_ETLS_FAILED;
    }
#else
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(out + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return RS_ETLS_FAILED;
        }
        got += (size_t)n;
    }
#endif
    return RS_OK;
}
#endif

/* 32 bytes of seed: from the context's random_fn if it has one, else from
 * the OS (without an OS, rs_tls_ctx_new requires random_fn). */
static int rs__tls_entropy(const rs_tls_ctx_t *ctx, br_ssl_engine_context *eng) {
    unsigned char seed[32];
    int err;
    if (ctx->random_fn) {
        err = ctx->random_fn(ctx->random_user_data, seed, sizeof(seed));
        err = err > 0 ? RS_ETLS_FAILED : err;
    } else {
#if RESEAU_OS_NONE
        err = RS_ENOTSUP;
#else
        err = rs__tls_os_random(seed, sizeof(seed));
#endif
    }
    if (!err) {
        br_ssl_engine_inject_entropy(eng, seed, sizeof(seed));
    }
    rs_pem_wipe(seed, sizeof(seed));
    return err;
}

static void rs__tls_engine_common(rs__tls_bearssl_t *e, const rs_tls_engine_config_t *config) {
    br_ssl_engine_set_buffers_bidi(e->eng, e->ibuf, sizeof(e->ibuf), e->obuf, sizeof(e->obuf));
    br_ssl_engine_set_versions(e->eng, e->ctx->min_version, e->ctx->max_version);
    br_ssl_engine_add_flags(e->eng, BR_OPT_NO_RENEGOTIATION);
    if (config->alpn_count) {
        /* BearSSL keeps the array (which outlives us) and its API is not const. */
        br_ssl_engine_set_protocol_names(e->eng, (const char **)(uintptr_t)config->alpn_names, config->alpn_count);
        if (e->is_server && e->ctx->alpn_required) {
            br_ssl_engine_add_flags(e->eng, BR_OPT_FAIL_ON_ALPN_MISMATCH);
        }
    }
}

static int rs__tls_setup_client(rs__tls_bearssl_t *e, const rs_tls_engine_config_t *config) {
    rs_tls_ctx_t *ctx = e->ctx;
    br_ssl_client_context *cc = &e->u.client;
    br_ssl_session_parameters params;
    const char *server_name = config->server_name;
    int err = rs__tls_verify_new(ctx, e->ip_len ? e->ip : NULL, e->ip_len, &e->verify);
    if (err) {
        return err;
    }
    e->verify->no_name = ctx->verify && !server_name;
    br_ssl_client_init_full(cc, &e->verify->minimal, ctx->anchors.items, ctx->anchors.count);
    rs__tls_verify_set_time(e->verify, ctx);
    br_ssl_engine_set_suites(&cc->eng, ctx->suites, ctx->suite_count);
    e->eng = &cc->eng;
    rs__tls_engine_common(e, config);
    br_ssl_engine_set_x509(&cc->eng, &e->verify->vtable);
    if (ctx->ext_key_type) {
        rs__tls_ext_key_init(&e->ext_key, ctx, &e->ec, e->who);
        rs__tls_ext_key_setup_client(&e->ext_key, cc);
        e->ec.have_client_cert = true;
    } else if (ctx->key.type == BR_KEYTYPE_RSA) {
        br_ssl_client_set_single_rsa(cc, ctx->chain.certs, ctx->chain.count, &ctx->key.rsa,
                                     br_rsa_pkcs1_sign_get_default());
        e->ec.have_client_cert = true;
    } else if (ctx->key.type == BR_KEYTYPE_EC) {
        br_ssl_client_set_single_ec(cc, ctx->chain.certs, ctx->chain.count, &ctx->key.ec, BR_KEYTYPE_SIGN,
                                    (unsigned)ctx->signer_key_type, br_ec_get_default(),
                                    br_ecdsa_sign_asn1_get_default());
        e->ec.have_client_cert = true;
    } else {
        e->no_cert_vtable = &rs__tls_no_cert_class;
        br_ssl_client_set_client_certificate(cc, &e->no_cert_vtable);
    }
    err = rs__tls_entropy(ctx, &cc->eng);
    if (err) {
        return err;
    }
    if (e->session_key[0] && rs__tls_client_session_get(ctx, e->session_key, &params)) {
        br_ssl_engine_set_session_parameters(&cc->eng, &params);
        memcpy(e->offered_id, params.session_id, params.session_id_len);
        e->offered_id_len = params.session_id_len;
        rs_pem_wipe(&params, sizeof(params));
    }
    /* An IP literal is neither sent as SNI nor checked as a DNS name. */
    if (!br_ssl_client_reset(cc, e->ip_len ? NULL : server_name, e->offered_id_len != 0)) {
        return rs__tls_map_error(br_ssl_engine_last_error(&cc->eng), &e->ec, e->who);
    }
    return RS_OK;
}

static int rs__tls_setup_server(rs__tls_bearssl_t *e, const rs_tls_engine_config_t *config) {
    rs_tls_ctx_t *ctx = e->ctx;
    br_ssl_server_context *sc = &e->u.server;
    int err;
    if (ctx->ext_key_type) {
        rs__tls_ext_key_init(&e->ext_key, ctx, &e->ec, e->who);
        rs__tls_ext_key_setup_server(&e->ext_key, sc);
    } else if (ctx->key.type == BR_KEYTYPE_RSA) {
        br_ssl_server_init_full_rsa(sc, ctx->chain.certs, ctx->chain.count, &ctx->key.rsa);
        /* Signing only: no static-RSA key exchange (no forward secrecy). */
        br_ssl_server_set_single_rsa(sc, ctx->chain.certs, ctx->chain.count, &ctx->key.rsa, BR_KEYTYPE_SIGN,
                                     br_rsa_private_get_default(), br_rsa_pkcs1_sign_get_default());
    } else {
        br_ssl_server_init_full_ec(sc, ctx->chain.certs, ctx->chain.count, (unsigned)ctx->signer_key_type,
                                   &ctx->key.ec);
        br_ssl_server_set_single_ec(sc, ctx->chain.certs, ctx->chain.count, &ctx->key.ec, BR_KEYTYPE_SIGN,
                                    (unsigned)ctx->signer_key_type, br_ec_get_default(),
                                    br_ecdsa_sign_asn1_get_default());
    }
    br_ssl_engine_set_suites(&sc->eng, ctx->suites, ctx->suite_count);
    e->eng = &sc->eng;
    rs__tls_engine_common(e, config);
    if (ctx->client_auth != RS_TLS_CLIENT_AUTH_NONE) {
        err = rs__tls_verify_new(ctx, NULL, 0, &e->verify);
        if (err) {
            return err;
        }
        br_ssl_engine_set_default_rsavrfy(&sc->eng);
        br_ssl_engine_set_default_ecdsa(&sc->eng);
        br_ssl_engine_set_x509(&sc->eng, &e->verify->vtable);
        br_ssl_server_set_trust_anchor_names_alt(sc, ctx->anchors.items, ctx->anchors.count);
        if (ctx->client_auth == RS_TLS_CLIENT_AUTH_OPTIONAL) {
            br_ssl_engine_add_flags(&sc->eng, BR_OPT_TOLERATE_NO_CLIENT_AUTH);
        }
    }
    if (ctx->server_store) {
        e->cache_view.vtable = &rs__tls_cache_view_class;
        e->cache_view.ctx = ctx;
        br_ssl_server_set_cache(sc, &e->cache_view.vtable);
    }
    err = rs__tls_entropy(ctx, &sc->eng);
    if (err) {
        return err;
    }
    if (!br_ssl_server_reset(sc)) {
        return rs__tls_map_error(br_ssl_engine_last_error(&sc->eng), &e->ec, e->who);
    }
    return RS_OK;
}

RESEAU_API rs_tls_engine_t *rs_tls_engine_bearssl_new(const rs_tls_engine_config_t *config, void *user_data,
                                                      int *err_out) {
    rs__tls_bearssl_t *e;
    rs_tls_ctx_t *ctx;
    size_t key_len = 0;
    int err;
    (void)user_data;
    if (!config || !config->ctx) {
        err = RS_EINVAL;
        goto fail;
    }
    ctx = config->ctx;
    if (!config->is_server && config->session_key) {
        key_len = strlen(config->session_key);
        if (key_len >= sizeof(((rs__tls_client_session_t *)0)->key)) {
            key_len = sizeof(((rs__tls_client_session_t *)0)->key) - 1; /* as the cache would cut it */
        }
    }
    e = (rs__tls_bearssl_t *)rs_mem_calloc(&ctx->allocator, 1, sizeof(*e) + key_len + 1);
    if (!e) {
        err = RS_ENOMEM;
        goto fail;
    }
    e->session_key = (char *)(e + 1);
    memcpy(e->session_key, config->session_key ? config->session_key : "", key_len);
    e->base.vtable = &rs__tls_bearssl_vtable;
    e->base.impl = e;
    e->ctx = ctx;
    e->who = config->handler;
    e->handler = config->handler;
    e->is_server = config->is_server;
    e->ec.is_server = config->is_server;
    if (ctx->ext_key.sign_async) {
        /* Its answer goes to the handler's channel (see rs__tls_bearssl_step). */
        if (!config->handler) {
            err = RS_EINVAL;
            rs__tls_bearssl_destroy(&e->base);
            goto fail;
        }
        e->saved = (unsigned char *)rs_mem_alloc(&ctx->allocator, rs__tls_saved_size(e));
        if (!e->saved) {
            err = RS_ENOMEM;
            rs__tls_bearssl_destroy(&e->base);
            goto fail;
        }
        rs__tls_ext_key_set_async(&e->ext_key, config->handler, e, rs__tls_bearssl_on_answer);
    }
    if (!e->is_server && config->server_name) {
        uint32_t scope;
        if (rs_ipv4_parse(config->server_name, e->ip) == RS_OK) {
            e->ip_len = 4;
        } else if (rs_ipv6_parse(config->server_name, e->ip, &scope) == RS_OK) {
            e->ip_len = 16;
        }
    }
    err = e->is_server ? rs__tls_setup_server(e, config) : rs__tls_setup_client(e, config);
    if (err) {
        rs__tls_bearssl_destroy(&e->base);
        goto fail;
    }
    if (err_out) {
        *err_out = RS_OK;
    }
    return &e->base;
fail:
    if (err_out) {
        *err_out = err;
    }
    return NULL;
}
