/* Peer certificate checks around BearSSL's minimal X.509 engine.
 *
 * The wrapper class sees every certificate of the peer's chain: it forwards
 * them to the minimal engine (when verifying), decodes each one's validity
 * dates (BearSSL reports "expired" for a certificate that is not valid yet
 * too), keeps the leaf for our iPAddress check (BearSSL has none), and, with
 * verification off, decodes only the leaf's key: the minimal engine would
 * stop before extracting it. It lives only during the handshake. */

#define RS__TLS_LEAF_MAX (16u * 1024u)

typedef struct rs__tls_verify {
    const br_x509_class *vtable; /* first: BearSSL passes &vtable around */
    br_x509_minimal_context minimal;
    br_x509_decoder_context decoder;
    const rs_allocator_t *allocator;
    bool verify;        /* run the minimal engine */
    bool check_ip;      /* match ip[] against the leaf's iPAddress names */
    bool no_name;       /* verifying, and no name to check the leaf against */
    uint8_t ip[16];
    size_t ip_len;
    int64_t now_s;      /* for the not-yet-valid check */
    unsigned cert_index;
    bool in_cert;       /* between start_cert and end_cert: the decoder is initialised */
    bool not_yet_valid;
    bool ip_mismatch;
    bool verified;
    unsigned char *leaf; /* the leaf's DER, for the iPAddress check */
    size_t leaf_len;
    bool leaf_overflow;
    br_x509_pkey leaf_key; /* verification off: the leaf's key, copied */
    unsigned char leaf_key_bytes[1024];
} rs__tls_verify_t;

static rs__tls_verify_t *rs__tls_verify_of(const br_x509_class *const *ctx) {
    return (rs__tls_verify_t *)(void *)((char *)(uintptr_t)ctx - offsetof(rs__tls_verify_t, vtable));
}

static void rs__tls_verify_start_chain(const br_x509_class **ctx, const char *server_name) {
    rs__tls_verify_t *v = rs__tls_verify_of(ctx);
    v->cert_index = 0;
    v->leaf_len = 0;
    v->leaf_overflow = false;
    if (v->verify) {
        /* An IP literal is not a DNS name: the minimal engine skips the name
         * check when given none, and ours runs at the end of the chain. */
        v->minimal.vtable->start_chain(&v->minimal.vtable, v->check_ip ? NULL : server_name);
    }
}

static void rs__tls_verify_start_cert(const br_x509_class **ctx, uint32_t length) {
    rs__tls_verify_t *v = rs__tls_verify_of(ctx);
    br_x509_decoder_init(&v->decoder, rs__tls_dn_ignore, NULL);
    v->in_cert = true;
    if (v->verify) {
        v->minimal.vtable->start_cert(&v->minimal.vtable, length);
    }
}

static void rs__tls_verify_append(const br_x509_class **ctx, const unsigned char *buf, size_t len) {
    rs__tls_verify_t *v = rs__tls_verify_of(ctx);
    /* A malformed Certificate message can bring bytes with no start_cert
     * before them: the decoder is not set up then (found by fuzz_tls). */
    /* Nor may it be pushed more once it has failed or finished: BearSSL's
     * decoder stops its interpreter then, and another push crashes. */
    if (v->in_cert && br_x509_decoder_last_error(&v->decoder) == BR_ERR_X509_TRUNCATED) {
        br_x509_decoder_push(&v->decoder, buf, len);
    }
    if (v->cert_index == 0 && v->check_ip && !v->leaf_overflow) {
        if (v->leaf_len + len > RS__TLS_LEAF_MAX) {
            v->leaf_overflow = true;
        } else {
            memcpy(v->leaf + v->leaf_len, buf, len);
            v->leaf_len += len;
        }
    }
    if (v->verify) {
        v->minimal.vtable->append(&v->minimal.vtable, buf, len);
    }
}

/* Days since 0000-01-01 and seconds, as BearSSL counts, for a Unix time. */
static void rs__tls_days_secs(int64_t t, uint32_t *days, uint32_t *secs) {
    *days = (uint32_t)(t / 86400 + 719528);
    *secs = (uint32_t)(t % 86400);
}

static void rs__tls_verify_end_cert(const br_x509_class **ctx) {
    rs__tls_verify_t *v = rs__tls_verify_of(ctx);
    uint32_t days, secs;
    if (v->in_cert && br_x509_decoder_last_error(&v->decoder) == 0) {
        rs__tls_days_secs(v->now_s, &days, &secs);
        if (days < v->decoder.notbefore_days || (days == v->decoder.notbefore_days && secs < v->decoder.notbefore_seconds)) {
            v->not_yet_valid = true;
        }
        if (v->cert_index == 0 && !v->verify) {
            const br_x509_pkey *pk = br_x509_decoder_get_pkey(&v->decoder);
            size_t n = pk ? (pk->key_type == BR_KEYTYPE_RSA ? pk->key.rsa.nlen + pk->key.rsa.elen : pk->key.ec.qlen) : 0;
            if (pk && n <= sizeof(v->leaf_key_bytes)) {
                v->leaf_key = *pk;
                if (pk->key_type == BR_KEYTYPE_RSA) {
                    memcpy(v->leaf_key_bytes, pk->key.rsa.n, pk->key.rsa.nlen);
                    memcpy(v->leaf_key_bytes + pk->key.rsa.nlen, pk->key.rsa.e, pk->key.rsa.elen);
                    v->leaf_key.key.rsa.n = v->leaf_key_bytes;
                    v->leaf_key.key.rsa.e = v->leaf_key_bytes + pk->key.rsa.nlen;
                } else {
                    memcpy(v->leaf_key_bytes, pk->key.ec.q, pk->key.ec.qlen);
                    v->leaf_key.key.ec.q = v->leaf_key_bytes;
                }
            }
        }
    }
    v->in_cert = false;
    v->cert_index++;
    if (v->verify) {
        v->minimal.vtable->end_cert(&v->minimal.vtable);
    }
}

/* ---- a small DER reader, for the leaf's subjectAltName ---- */

/* Read one element: its tag, and its contents in *body. False when malformed. */
static bool rs__der_next(rs_byte_cursor_t *in, uint8_t *tag, rs_byte_cursor_t *body) {
    uint8_t b;
    size_t len = 0;
    if (!rs_byte_cursor_read_u8(in, tag) || !rs_byte_cursor_read_u8(in, &b)) {
        return false;
    }
    if (b & 0x80) {
        unsigned n = b & 0x7f;
        if (n == 0 || n > 4) {
            return false;
        }
        while (n--) {
            if (!rs_byte_cursor_read_u8(in, &b)) {
                return false;
            }
            len = (len << 8) | b;
        }
    } else {
        len = b;
    }
    if (len > in->len) {
        return false;
    }
    *body = rs_byte_cursor_advance(in, len);
    return true;
}

/* The extnValue of subjectAltName (2.5.29.17) in a certificate, if any. */
static bool rs__der_find_san(rs_byte_cursor_t cert, rs_byte_cursor_t *san) {
    static const uint8_t oid[] = {0x55, 0x1d, 0x11};
    rs_byte_cursor_t c, tbs, field, exts, ext, part;
    uint8_t tag;
    if (!rs__der_next(&cert, &tag, &c) || tag != 0x30 || !rs__der_next(&c, &tag, &tbs) || tag != 0x30) {
        return false;
    }
    while (tbs.len) {
        if (!rs__der_next(&tbs, &tag, &field)) {
            return false;
        }
        if (tag != 0xa3) { /* [3] extensions */
            continue;
        }
        if (!rs__der_next(&field, &tag, &exts) || tag != 0x30) {
            return false;
        }
        while (exts.len) {
            if (!rs__der_next(&exts, &tag, &ext) || tag != 0x30 || !rs__der_next(&ext, &tag, &part) || tag != 0x06) {
                return false;
            }
            if (part.len != sizeof(oid) || memcmp(part.ptr, oid, sizeof(oid)) != 0) {
                continue;
            }
            if (!rs__der_next(&ext, &tag, &part)) {
                return false;
            }
            if (tag == 0x01 && !rs__der_next(&ext, &tag, &part)) { /* critical flag */
                return false;
            }
            if (tag != 0x04 || !rs__der_next(&part, &tag, san) || tag != 0x30) {
                return false;
            }
            return true;
        }
    }
    return false;
}

/* Whether the certificate names this address among its iPAddress SANs. */
static bool rs__tls_cert_has_ip(rs_byte_cursor_t cert, const uint8_t *ip, size_t ip_len) {
    rs_byte_cursor_t san, name;
    uint8_t tag;
    if (!rs__der_find_san(cert, &san)) {
        return false;
    }
    while (san.len) {
        if (!rs__der_next(&san, &tag, &name)) {
            return false;
        }
        if (tag == 0x87 && name.len == ip_len && memcmp(name.ptr, ip, ip_len) == 0) {
            return true;
        }
    }
    return false;
}

static unsigned rs__tls_verify_end_chain(const br_x509_class **ctx) {
    rs__tls_verify_t *v = rs__tls_verify_of(ctx);
    unsigned err;
    if (!v->verify) {
        return v->cert_index > 0 && v->leaf_key.key_type ? 0 : BR_ERR_X509_EMPTY_CHAIN;
    }
    err = v->minimal.vtable->end_chain(&v->minimal.vtable);
    if (err == 0 && v->no_name) {
        /* A chain is worth nothing without a name to hold its leaf to. */
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls: no server name to verify the certificate against");
        err = BR_ERR_X509_BAD_SERVER_NAME;
    }
    if (err == 0 && v->check_ip) {
        if (v->leaf_overflow ||
            !rs__tls_cert_has_ip(rs_byte_cursor_from_array(v->leaf, v->leaf_len), v->ip, v->ip_len)) {
            v->ip_mismatch = true;
            err = BR_ERR_X509_BAD_SERVER_NAME;
        }
    }
    v->verified = err == 0;
    return err;
}

static const br_x509_pkey *rs__tls_verify_get_pkey(const br_x509_class *const *ctx, unsigned *usages) {
    rs__tls_verify_t *v = rs__tls_verify_of(ctx);
    if (!v->verify) {
        if (usages) {
            *usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN;
        }
        return v->leaf_key.key_type ? &v->leaf_key : NULL;
    }
    return v->minimal.vtable->get_pkey(&v->minimal.vtable, usages);
}

static const br_x509_class rs__tls_verify_class = {
    sizeof(rs__tls_verify_t),   rs__tls_verify_start_chain, rs__tls_verify_start_cert, rs__tls_verify_append,
    rs__tls_verify_end_cert,    rs__tls_verify_end_chain,   rs__tls_verify_get_pkey,
};

/* Pin the time of the checks, if the context says so. Again after any
 * re-initialisation of the minimal engine (br_ssl_client_init_full). */
static void rs__tls_verify_set_time(rs__tls_verify_t *v, const rs_tls_ctx_t *ctx) {
    uint32_t days, secs;
    if (ctx->verify_time_s) {
        rs__tls_days_secs(ctx->verify_time_s, &days, &secs);
        br_x509_minimal_set_time(&v->minimal, days, secs);
    }
}

/* Set up the wrapper for one handshake. `ip`: the server's address when the
 * name connected to is an IP literal (ip_len 4 or 16), else NULL. */
static int rs__tls_verify_new(const rs_tls_ctx_t *ctx, const uint8_t *ip, size_t ip_len, rs__tls_verify_t **out) {
    rs__tls_verify_t *v = (rs__tls_verify_t *)rs_mem_calloc(&ctx->allocator, 1, sizeof(*v));
    if (!v) {
        return RS_ENOMEM;
    }
    v->allocator = &ctx->allocator;
    v->vtable = &rs__tls_verify_class;
    v->verify = ctx->verify;
    v->now_s = ctx->verify_time_s ? ctx->verify_time_s : (int64_t)time(NULL);
    if (ip && v->verify) {
        v->leaf = (unsigned char *)rs_mem_alloc(&ctx->allocator, RS__TLS_LEAF_MAX);
        if (!v->leaf) {
            rs_mem_free(&ctx->allocator, v);
            return RS_ENOMEM;
        }
        v->check_ip = true;
        memcpy(v->ip, ip, ip_len);
        v->ip_len = ip_len;
    }
    br_x509_minimal_init_full(&v->minimal, ctx->anchors.items, ctx->anchors.count);
    rs__tls_verify_set_time(v, ctx);
    *out = v;
    return RS_OK;
}

static void rs__tls_verify_free(rs__tls_verify_t *v) {
    if (v) {
        const rs_allocator_t *alloc = v->allocator;
        rs_mem_free(alloc, v->leaf);
        rs_mem_free(alloc, v);
    }
}
