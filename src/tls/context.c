/* TLS contexts: immutable settings shared by connections, plus the session
 * caches, which are the only mutable part (each behind its own guard). */

/* A remembered client session, keyed by "host:port:server name". */
typedef struct rs__tls_client_session {
    char key[RS_TLS_ALPN_NAME_MAX + 32];
    br_ssl_session_parameters params; /* secret: wiped when dropped */
    uint64_t last_used;
    bool used;
} rs__tls_client_session_t;

typedef struct rs__tls_alpn {
    const char *names[RS_TLS_ALPN_MAX];
    size_t count;
    char *text; /* the names point into this copy */
} rs__tls_alpn_t;

struct rs_tls_ctx {
    rs_allocator_t allocator;
    int refs; /* under lock: reseau_tls.h uses only reseau.h's public API */
    bool is_server;
    bool verify;
    rs_tls_client_auth_t client_auth;
    bool alpn_required;
    unsigned min_version;
    unsigned max_version;
    uint32_t negotiation_timeout_ms;
    int64_t verify_time_s;
    int (*random_fn)(void *random_user_data, unsigned char *out, size_t len);
    void *random_user_data;
    rs__tls_anchors_t anchors;
    rs__tls_chain_t chain;
    rs__tls_key_t key;
    int signer_key_type;
    /* A key behind a sign function (>>private_key.c): its type is the leaf's. */
    rs_tls_private_key_t ext_key;
    int ext_key_type; /* BR_KEYTYPE_RSA or BR_KEYTYPE_EC; 0 without one */
    bool ext_key_acquired;
    rs__tls_alpn_t alpn;
    const uint16_t *suites;
    size_t suite_count;

    rs_mutex_t lock; /* refs and the caches below */
    size_t cache_size; /* 0: caching off */
    rs__tls_client_session_t *client_sessions;
    uint64_t session_clock;
    /* One server cache for every loop: BearSSL's LRU is not thread-safe, so
     * it is used under the lock (one lookup or save per handshake). A cache
     * per loop would resume only the connections that land on the loop of
     * their first one. */
    br_ssl_session_cache_lru server_lru;
    unsigned char *server_store;
    size_t server_store_len;
};

/* ECDHE only (forward secrecy); AES-GCM first when the CPU has AES-NI,
 * ChaCha20 first when it does not (BearSSL's constant-time AES is slow). */
static const uint16_t rs__tls_suites_aesni[] = {
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384,
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
    BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
};
static const uint16_t rs__tls_suites_chacha[] = {
    BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384,
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
    BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
};

RESEAU_API const char *rs_tls_cipher_suite_name(uint16_t suite) {
    switch (suite) {
    case BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: return "ECDHE-ECDSA-AES128-GCM-SHA256";
    case BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: return "ECDHE-RSA-AES128-GCM-SHA256";
    case BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: return "ECDHE-ECDSA-AES256-GCM-SHA384";
    case BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: return "ECDHE-RSA-AES256-GCM-SHA384";
    case BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: return "ECDHE-ECDSA-CHACHA20-POLY1305";
    case BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: return "ECDHE-RSA-CHACHA20-POLY1305";
    case BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: return "ECDHE-ECDSA-AES128-SHA256";
    case BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: return "ECDHE-RSA-AES128-SHA256";
    case BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384: return "ECDHE-ECDSA-AES256-SHA384";
    case BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384: return "ECDHE-RSA-AES256-SHA384";
    case BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: return "ECDHE-ECDSA-AES128-SHA";
    case BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: return "ECDHE-RSA-AES128-SHA";
    case BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: return "ECDHE-ECDSA-AES256-SHA";
    case BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: return "ECDHE-RSA-AES256-SHA";
    default: return "unknown";
    }
}

/* Split "h2;http/1.1" into names. RS_EINVAL for an empty or overlong name or
 * more than RS_TLS_ALPN_MAX. */
static int rs__tls_alpn_parse(const rs_allocator_t *alloc, const char *list, rs__tls_alpn_t *out) {
    size_t len;
    char *p;
    memset(out, 0, sizeof(*out));
    if (!list) {
        return RS_OK;
    }
    len = strlen(list);
    out->text = (char *)rs_mem_alloc(alloc, len + 1);
    if (!out->text) {
        return RS_ENOMEM;
    }
    memcpy(out->text, list, len + 1);
    for (p = out->text;;) {
        char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || n > RS_TLS_ALPN_NAME_MAX || out->count == RS_TLS_ALPN_MAX) {
            rs_mem_free(alloc, out->text);
            memset(out, 0, sizeof(*out));
            return RS_EINVAL;
        }
        out->names[out->count++] = p;
        if (!end) {
            break;
        }
        *end = '\0';
        p = end + 1;
    }
    return RS_OK;
}

static void rs__tls_alpn_cleanup(const rs_allocator_t *alloc, rs__tls_alpn_t *alpn) {
    rs_mem_free(alloc, alpn->text);
    memset(alpn, 0, sizeof(*alpn));
}

static int rs__tls_version_value(rs_tls_version_t v, unsigned *out) {
    switch (v) {
    case RS_TLS_VERSION_DEFAULT: *out = BR_TLS12; return RS_OK;
    case RS_TLS_VERSION_1_0: *out = BR_TLS10; return RS_OK;
    case RS_TLS_VERSION_1_1: *out = BR_TLS11; return RS_OK;
    case RS_TLS_VERSION_1_2: *out = BR_TLS12; return RS_OK;
    default: return RS_EINVAL;
    }
}

static int rs__tls_ctx_check_options(const rs_tls_ctx_options_t *o) {
    bool has_cert = o->cert_file || o->cert_pem.len;
    bool has_key = o->key_file || o->key_pem.len || o->private_key;
    const rs_tls_private_key_t *pk = o->private_key;
    if (pk && (!pk->sign == !pk->sign_async || !pk->acquire != !pk->release || o->key_file || o->key_pem.len)) {
        return RS_EINVAL;
    }
    if ((o->cert_file && o->cert_pem.len) || (o->key_file && o->key_pem.len) || has_cert != has_key ||
        (o->is_server && !has_cert) || (!o->is_server && o->client_auth != RS_TLS_CLIENT_AUTH_NONE) ||
        (unsigned)o->client_auth > RS_TLS_CLIENT_AUTH_REQUIRED || (o->ca_pem.len && !o->ca_pem.ptr) ||
        (o->cert_pem.len && !o->cert_pem.ptr) || (o->key_pem.len && !o->key_pem.ptr)) {
        return RS_EINVAL;
    }
    return RS_OK;
}

static int rs__tls_ctx_load_trust(rs_tls_ctx_t *ctx, const rs_tls_ctx_options_t *o) {
    const rs_allocator_t *alloc = &ctx->allocator;
    bool needed = ctx->is_server ? ctx->client_auth != RS_TLS_CLIENT_AUTH_NONE : ctx->verify;
    bool given = o->ca_file || o->ca_dir || o->ca_pem.len;
    int err = RS_OK;
    if (o->ca_file) {
        err = rs__tls_anchors_add_file(alloc, &ctx->anchors, o->ca_file, false);
    }
    if (!err && o->ca_dir) {
        err = rs__tls_anchors_add_dir(alloc, &ctx->anchors, o->ca_dir);
    }
    if (!err && o->ca_pem.len) {
        err = rs__tls_anchors_add_pem(alloc, &ctx->anchors, o->ca_pem, false);
    }
    if (!err && (o->use_system_trust || (!given && needed))) {
        err = rs__tls_anchors_add_system(alloc, &ctx->anchors);
    }
    if (!err && needed && ctx->anchors.count == 0) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls: verification is on and no CA certificate was found");
        err = RS_ETLS_NO_TRUST_ANCHORS;
    }
    return err;
}

/* A key behind a sign function: it signs for the leaf's key, which must be
 * RSA or EC (the only kinds BearSSL signs with). */
static int rs__tls_ext_key_take(rs_tls_ctx_t *ctx, const rs_tls_private_key_t *pk, const rs__tls_leaf_t *leaf) {
    if (leaf->key_type != BR_KEYTYPE_RSA && leaf->key_type != BR_KEYTYPE_EC) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls: the certificate's key is neither RSA nor EC");
        return RS_ETLS_BAD_KEY;
    }
    ctx->ext_key = *pk;
    ctx->ext_key_type = leaf->key_type;
    if (pk->acquire) {
        pk->acquire(pk->user_data);
        ctx->ext_key_acquired = true;
    }
    return RS_OK;
}

static int rs__tls_ctx_load_identity(rs_tls_ctx_t *ctx, const rs_tls_ctx_options_t *o) {
    rs__tls_leaf_t *leaf;
    int err;
    if (!o->cert_file && !o->cert_pem.len) {
        return RS_OK;
    }
    err = rs__tls_chain_load(&ctx->allocator, o->cert_file, o->cert_pem, &ctx->chain);
    if (!err && !o->private_key) {
        err = rs__tls_key_load(&ctx->allocator, o->key_file, o->key_pem, &ctx->key);
    }
    if (err) {
        return err;
    }
    leaf = (rs__tls_leaf_t *)rs_mem_alloc(&ctx->allocator, sizeof(*leaf));
    if (!leaf) {
        return RS_ENOMEM;
    }
    err = rs__tls_leaf_decode(&ctx->chain.certs[0], leaf);
    if (!err && o->private_key) {
        err = rs__tls_ext_key_take(ctx, o->private_key, leaf);
    } else if (!err) {
        err = rs__tls_key_matches_leaf(&ctx->key, leaf);
    }
    if (!err) {
        ctx->signer_key_type = leaf->signer_key_type;
    }
    rs_mem_free(&ctx->allocator, leaf);
    return err;
}

static void rs__tls_ctx_free(rs_tls_ctx_t *ctx) {
    rs_allocator_t alloc = ctx->allocator;
    if (ctx->server_store) {
        rs_pem_wipe(ctx->server_store, ctx->server_store_len);
        rs_mem_free(&alloc, ctx->server_store);
    }
    if (ctx->client_sessions) {
        rs_pem_wipe(ctx->client_sessions, ctx->cache_size * sizeof(*ctx->client_sessions));
        rs_mem_free(&alloc, ctx->client_sessions);
    }
    rs__tls_anchors_cleanup(&alloc, &ctx->anchors);
    rs__tls_chain_cleanup(&alloc, &ctx->chain);
    rs__tls_key_cleanup(&alloc, &ctx->key);
    if (ctx->ext_key_acquired) {
        ctx->ext_key.release(ctx->ext_key.user_data);
    }
    rs__tls_alpn_cleanup(&alloc, &ctx->alpn);
    rs_mutex_cleanup(&ctx->lock);
    rs_mem_free(&alloc, ctx);
}

static int rs__tls_ctx_init(rs_tls_ctx_t *ctx, const rs_tls_ctx_options_t *o) {
    int err = rs__tls_version_value(o->min_version, &ctx->min_version);
    if (!err) {
        err = rs__tls_version_value(o->max_version, &ctx->max_version);
    }
    if (!err && ctx->min_version > ctx->max_version) {
        err = RS_EINVAL;
    }
    if (!err) {
        err = rs__tls_alpn_parse(&ctx->allocator, o->alpn_list, &ctx->alpn);
    }
    if (!err) {
        err = rs__tls_ctx_load_identity(ctx, o);
    }
    if (!err) {
        err = rs__tls_ctx_load_trust(ctx, o);
    }
    if (!err && ctx->cache_size && !ctx->is_server) {
        ctx->client_sessions = (rs__tls_client_session_t *)rs_mem_calloc(&ctx->allocator, ctx->cache_size,
                                                                         sizeof(*ctx->client_sessions));
        err = ctx->client_sessions ? RS_OK : RS_ENOMEM;
    }
    if (!err && ctx->cache_size && ctx->is_server) {
        ctx->server_store_len = ctx->cache_size * 100; /* BearSSL's entry size */
        ctx->server_store = (unsigned char *)rs_mem_alloc(&ctx->allocator, ctx->server_store_len);
        err = ctx->server_store ? RS_OK : RS_ENOMEM;
        if (!err) {
            br_ssl_session_cache_lru_init(&ctx->server_lru, ctx->server_store, ctx->server_store_len);
        }
    }
    return err;
}

RESEAU_API rs_tls_ctx_t *rs_tls_ctx_new(const rs_tls_ctx_options_t *options, int *err_out) {
    const rs_allocator_t *alloc;
    rs_tls_ctx_t *ctx;
    int err = options ? rs__tls_ctx_check_options(options) : RS_EINVAL;
#if RESEAU_OS_NONE
    if (!err && (!options->random_fn || options->ca_dir || options->use_system_trust)) {
        RS__TLS_LOG(RS_LOG_LEVEL_ERROR, "tls: without an OS a context needs random_fn, and has no ca_dir or "
                                        "system store");
        err = RS_ENOTSUP;
    }
#endif
    if (err) {
        goto fail;
    }
    alloc = options->allocator ? options->allocator : rs_default_allocator();
    ctx = (rs_tls_ctx_t *)rs_mem_calloc(alloc, 1, sizeof(*ctx));
    if (!ctx) {
        err = RS_ENOMEM;
        goto fail;
    }
    ctx->allocator = *alloc;
    ctx->refs = 1;
    if (rs_mutex_init(&ctx->lock) != RS_OK) {
        rs_mem_free(alloc, ctx);
        err = RS_ENOMEM;
        goto fail;
    }
    ctx->is_server = options->is_server;
    ctx->verify = !options->insecure_skip_verify;
    ctx->client_auth = options->insecure_skip_verify ? RS_TLS_CLIENT_AUTH_NONE : options->client_auth;
    ctx->alpn_required = options->alpn_required;
    ctx->negotiation_timeout_ms =
        options->negotiation_timeout_ms ? options->negotiation_timeout_ms : RS_TLS_DEFAULT_NEGOTIATION_TIMEOUT_MS;
    ctx->verify_time_s = options->verify_time_s;
    ctx->random_fn = options->random_fn;
    ctx->random_user_data = options->random_user_data;
    ctx->cache_size = options->disable_session_cache ? 0
                      : options->session_cache_size ? options->session_cache_size
                                                    : RS_TLS_DEFAULT_SESSION_CACHE;
    if (br_aes_x86ni_ctr_get_vtable() != NULL) {
        ctx->suites = rs__tls_suites_aesni;
        ctx->suite_count = sizeof(rs__tls_suites_aesni) / sizeof(rs__tls_suites_aesni[0]);
    } else {
        ctx->suites = rs__tls_suites_chacha;
        ctx->suite_count = sizeof(rs__tls_suites_chacha) / sizeof(rs__tls_suites_chacha[0]);
    }
    err = rs__tls_ctx_init(ctx, options);
    if (err) {
        rs__tls_ctx_free(ctx);
        goto fail;
    }
    if (err_out) {
        *err_out = RS_OK;
    }
    return ctx;
fail:
    if (err_out) {
        *err_out = err;
    }
    return NULL;
}

RESEAU_API void rs_tls_ctx_acquire(rs_tls_ctx_t *ctx) {
    if (ctx) {
        rs_mutex_lock(&ctx->lock);
        ctx->refs++;
        rs_mutex_unlock(&ctx->lock);
    }
}

RESEAU_API void rs_tls_ctx_release(rs_tls_ctx_t *ctx) {
    int left;
    if (!ctx) {
        return;
    }
    rs_mutex_lock(&ctx->lock);
    left = --ctx->refs;
    rs_mutex_unlock(&ctx->lock);
    if (left == 0) {
        rs__tls_ctx_free(ctx);
    }
}

RESEAU_API size_t rs_tls_ctx_trust_anchor_count(const rs_tls_ctx_t *ctx) {
    return ctx ? ctx->anchors.count : 0;
}

RESEAU_API void rs_tls_ctx_flush_sessions(rs_tls_ctx_t *ctx) {
    if (!ctx || !ctx->client_sessions) {
        return;
    }
    rs_mutex_lock(&ctx->lock);
    rs_pem_wipe(ctx->client_sessions, ctx->cache_size * sizeof(*ctx->client_sessions));
    rs_mutex_unlock(&ctx->lock);
}

/* Client cache. `key` is at most sizeof(entry->key) - 1 bytes (callers cut it). */
static bool rs__tls_client_session_get(rs_tls_ctx_t *ctx, const char *key, br_ssl_session_parameters *out) {
    size_t i;
    bool found = false;
    if (!ctx->client_sessions) {
        return false;
    }
    rs_mutex_lock(&ctx->lock);
    for (i = 0; i < ctx->cache_size; ++i) {
        rs__tls_client_session_t *s = &ctx->client_sessions[i];
        if (s->used && strcmp(s->key, key) == 0) {
            *out = s->params;
            s->last_used = ++ctx->session_clock;
            found = true;
            break;
        }
    }
    rs_mutex_unlock(&ctx->lock);
    return found;
}

static void rs__tls_client_session_put(rs_tls_ctx_t *ctx, const char *key, const br_ssl_session_parameters *params) {
    rs__tls_client_session_t *slot = NULL;
    size_t i;
    if (!ctx->client_sessions) {
        return;
    }
    rs_mutex_lock(&ctx->lock);
    for (i = 0; i < ctx->cache_size; ++i) {
        rs__tls_client_session_t *s = &ctx->client_sessions[i];
        if (s->used && strcmp(s->key, key) == 0) {
            slot = s;
            break;
        }
        if (!slot || (slot->used && (!s->used || s->last_used < slot->last_used))) {
            slot = s; /* the least recently used, or a free one */
        }
    }
    slot->used = true;
    snprintf(slot->key, sizeof(slot->key), "%s", key);
    slot->params = *params;
    slot->last_used = ++ctx->session_clock;
    rs_mutex_unlock(&ctx->lock);
}
