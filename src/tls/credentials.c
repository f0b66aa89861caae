/* Trust anchors, certificate chains and private keys: PEM, then DER, then
 * BearSSL's decoders. Everything is deep-copied into memory the context owns,
 * so a context outlives the files and buffers it was made from. */

typedef struct rs__tls_anchors {
    br_x509_trust_anchor *items;
    size_t count;
    size_t capacity;
} rs__tls_anchors_t;

typedef struct rs__tls_chain {
    br_x509_certificate *certs;
    size_t count;
} rs__tls_chain_t;

/* Our private key, deep-copied out of the decoder. */
typedef struct rs__tls_key {
    int type; /* BR_KEYTYPE_RSA or BR_KEYTYPE_EC; 0 for none */
    br_rsa_private_key rsa;
    br_ec_private_key ec;
    unsigned char *bytes; /* one block holding every component */
    size_t bytes_len;
} rs__tls_key_t;

typedef struct rs__tls_dn_buf {
    rs_byte_buf_t buf;
    bool failed;
} rs__tls_dn_buf_t;

static void rs__tls_dn_append(void *ctx, const void *data, size_t len) {
    rs__tls_dn_buf_t *dn = (rs__tls_dn_buf_t *)ctx;
    if (!dn->failed && rs_byte_buf_append(&dn->buf, data, len) != RS_OK) {
        dn->failed = true;
    }
}

static void rs__tls_anchors_cleanup(const rs_allocator_t *alloc, rs__tls_anchors_t *anchors) {
    size_t i;
    for (i = 0; i < anchors->count; ++i) {
        rs_mem_free(alloc, anchors->items[i].dn.data); /* the block starts with the DN */
    }
    rs_mem_free(alloc, anchors->items);
    memset(anchors, 0, sizeof(*anchors));
}

static bool rs__tls_anchor_equal(const br_x509_trust_anchor *a, const br_x509_trust_anchor *b) {
    if (a->dn.len != b->dn.len || memcmp(a->dn.data, b->dn.data, a->dn.len) != 0 ||
        a->pkey.key_type != b->pkey.key_type) {
        return false;
    }
    if (a->pkey.key_type == BR_KEYTYPE_RSA) {
        return a->pkey.key.rsa.nlen == b->pkey.key.rsa.nlen &&
               memcmp(a->pkey.key.rsa.n, b->pkey.key.rsa.n, a->pkey.key.rsa.nlen) == 0;
    }
    return a->pkey.key.ec.qlen == b->pkey.key.ec.qlen &&
           memcmp(a->pkey.key.ec.q, b->pkey.key.ec.q, a->pkey.key.ec.qlen) == 0;
}

/* Build one anchor in one block: DN, then the key's bytes. */
static int rs__tls_anchor_make(const rs_allocator_t *alloc, const rs_byte_buf_t *dn, const br_x509_pkey *pk,
                               bool is_ca, br_x509_trust_anchor *out) {
    size_t klen = pk->key_type == BR_KEYTYPE_RSA ? pk->key.rsa.nlen + pk->key.rsa.elen : pk->key.ec.qlen;
    unsigned char *block = (unsigned char *)rs_mem_alloc(alloc, dn->len + klen + 1);
    if (!block) {
        return RS_ENOMEM;
    }
    memcpy(block, dn->buffer, dn->len);
    memset(out, 0, sizeof(*out));
    out->dn.data = block;
    out->dn.len = dn->len;
    out->flags = is_ca ? BR_X509_TA_CA : 0;
    out->pkey.key_type = pk->key_type;
    if (pk->key_type == BR_KEYTYPE_RSA) {
        out->pkey.key.rsa.n = block + dn->len;
        out->pkey.key.rsa.nlen = pk->key.rsa.nlen;
        memcpy(out->pkey.key.rsa.n, pk->key.rsa.n, pk->key.rsa.nlen);
        out->pkey.key.rsa.e = block + dn->len + pk->key.rsa.nlen;
        out->pkey.key.rsa.elen = pk->key.rsa.elen;
        memcpy(out->pkey.key.rsa.e, pk->key.rsa.e, pk->key.rsa.elen);
    } else {
        out->pkey.key.ec.curve = pk->key.ec.curve;
        out->pkey.key.ec.q = block + dn->len;
        out->pkey.key.ec.qlen = pk->key.ec.qlen;
        memcpy(out->pkey.key.ec.q, pk->key.ec.q, pk->key.ec.qlen);
    }
    return RS_OK;
}

/* Decode one DER certificate into an anchor and append it (duplicates, as in
 * a directory holding both a bundle and its parts, are skipped). An anchor is
 * appended only once it is complete. */
static int rs__tls_anchors_add_der(const rs_allocator_t *alloc, rs__tls_anchors_t *anchors, rs_byte_cursor_t der) {
    br_x509_decoder_context dc;
    rs__tls_dn_buf_t dn;
    br_x509_trust_anchor ta;
    const br_x509_pkey *pk;
    size_t i;
    int err;
    if (rs_byte_buf_init(&dn.buf, alloc, 256) != RS_OK) {
        return RS_ENOMEM;
    }
    dn.failed = false;
    br_x509_decoder_init(&dc, rs__tls_dn_append, &dn);
    br_x509_decoder_push(&dc, der.ptr, der.len);
    pk = br_x509_decoder_get_pkey(&dc);
    if (dn.failed) {
        err = RS_ENOMEM;
    } else if (!pk || br_x509_decoder_last_error(&dc) != 0) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls: cannot decode a CA certificate: BearSSL error %d (%s)",
                    br_x509_decoder_last_error(&dc), rs__tls_engine_error_name(br_x509_decoder_last_error(&dc)));
        err = RS_ETLS_BAD_CERT;
    } else {
        err = rs__tls_anchor_make(alloc, &dn.buf, pk, br_x509_decoder_isCA(&dc) != 0, &ta);
    }
    rs_byte_buf_cleanup(&dn.buf);
    if (err) {
        return err;
    }
    for (i = 0; i < anchors->count; ++i) {
        if (rs__tls_anchor_equal(&anchors->items[i], &ta)) {
            rs_mem_free(alloc, ta.dn.data);
            return RS_OK;
        }
    }
    if (anchors->count == anchors->capacity) {
        size_t cap = anchors->capacity ? anchors->capacity * 2 : 16;
        void *grown = rs_mem_realloc(alloc, anchors->items, anchors->capacity * sizeof(*anchors->items),
                                     cap * sizeof(*anchors->items));
        if (!grown) {
            rs_mem_free(alloc, ta.dn.data);
            return RS_ENOMEM;
        }
        anchors->items = (br_x509_trust_anchor *)grown;
        anchors->capacity = cap;
    }
    anchors->items[anchors->count++] = ta;
    return RS_OK;
}

/* Add every CERTIFICATE of a parsed PEM list. `lenient` skips certificates
 * BearSSL cannot decode (a system store holds some with unsupported keys). */
static int rs__tls_anchors_add_pem_list(const rs_allocator_t *alloc, rs__tls_anchors_t *anchors,
                                        const rs_pem_list_t *list, bool lenient) {
    size_t i;
    for (i = 0; i < list->count; ++i) {
        int err;
        if (list->objects[i].type != RS_PEM_CERTIFICATE) {
            continue;
        }
        err = rs__tls_anchors_add_der(alloc, anchors, rs_byte_cursor_from_buf(&list->objects[i].data));
        if (err && !(lenient && err == RS_ETLS_BAD_CERT)) {
            return err;
        }
    }
    return RS_OK;
}

static int rs__tls_anchors_add_pem(const rs_allocator_t *alloc, rs__tls_anchors_t *anchors, rs_byte_cursor_t pem,
                                   bool lenient) {
    rs_pem_list_t list;
    int err = rs_pem_parse(alloc, pem, &list);
    if (!err) {
        err = rs__tls_anchors_add_pem_list(alloc, anchors, &list, lenient);
    }
    rs_pem_list_cleanup(&list);
    return err;
}

static int rs__tls_anchors_add_file(const rs_allocator_t *alloc, rs__tls_anchors_t *anchors, const char *path,
                                    bool lenient) {
    rs_pem_list_t list;
    int err = rs_pem_parse_file(alloc, path, &list);
    if (err) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls: cannot load CA file %s: %s", path, rs_strerror(err));
    } else {
        err = rs__tls_anchors_add_pem_list(alloc, anchors, &list, lenient);
    }
    rs_pem_list_cleanup(&list);
    return err;
}

#if !RESEAU_OS_NONE
/* Every regular file of a directory that parses as PEM; files that are not
 * PEM (a README, a hash index) are skipped, as OpenSSL's lookup skips them. */
static int rs__tls_anchors_add_dir(const rs_allocator_t *alloc, rs__tls_anchors_t *anchors, const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *entry;
    char path[4096];
    int err = RS_OK;
    if (!d) {
        err = rs_result_from_errno(errno);
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls: cannot open CA directory %s: %s", dir, rs_strerror(err));
        return err;
    }
    while (!err && (entry = readdir(d)) != NULL) {
        struct stat st;
        rs_pem_list_t list;
        int perr;
        if (entry->d_name[0] == '.' ||
            (size_t)snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name) >= sizeof(path) ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        perr = rs_pem_parse_file(alloc, path, &list);
        if (perr == RS_ENOMEM) {
            err = perr;
        } else if (!perr) {
            err = rs__tls_anchors_add_pem_list(alloc, anchors, &list, true);
        }
        rs_pem_list_cleanup(&list);
    }
    closedir(d);
    return err;
}

static bool rs__tls_readable(const char *path) {
#if RESEAU_OS_WINDOWS
    return _access(path, 4 /* read */) == 0;
#else
    return access(path, R_OK) == 0;
#endif
}

#if RESEAU_OS_WINDOWS
/* The Windows certificate store of trusted roots ("ROOT": the machine's and
 * the user's), through crypt32. Certificates BearSSL cannot decode are
 * skipped, as in a system bundle. */
static int rs__tls_anchors_add_windows_store(const rs_allocator_t *alloc, rs__tls_anchors_t *anchors) {
    HCERTSTORE store = CertOpenSystemStoreW(0, L"ROOT");
    PCCERT_CONTEXT cert = NULL;
    int err = RS_OK;
    if (!store) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls: cannot open the Windows ROOT certificate store: error %lu",
                    (unsigned long)GetLastError());
        return RS_OK;
    }
    while (!err && (cert = CertEnumCertificatesInStore(store, cert)) != NULL) {
        if (cert->dwCertEncodingType & X509_ASN_ENCODING) {
            err = rs__tls_anchors_add_der(alloc, anchors,
                                          rs_byte_cursor_from_array(cert->pbCertEncoded, cert->cbCertEncoded));
            err = err == RS_ETLS_BAD_CERT ? RS_OK : err;
        }
    }
    if (cert) { /* left early: the enumeration did not free it */
        CertFreeCertificateContext(cert);
    }
    CertCloseStore(store, 0);
    return err;
}
#endif

/* The system store: the environment first, then the usual places (on
 * Windows, the Windows ROOT certificate store). The first one that yields
 * anchors wins. */
static int rs__tls_anchors_add_system(const rs_allocator_t *alloc, rs__tls_anchors_t *anchors) {
#if !RESEAU_OS_WINDOWS
    static const char *const files[] = {
        "/etc/ssl/certs/ca-certificates.crt",                /* Debian, Ubuntu, Alpine, Arch */
        "/etc/pki/tls/certs/ca-bundle.crt",                  /* RHEL, Fedora, CentOS */
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* RHEL 7+ */
        "/etc/ssl/ca-bundle.pem",                            /* openSUSE */
        "/etc/ssl/cert.pem",                                 /* Alpine, macOS, the BSDs */
    };
    static const char *const dirs[] = {"/etc/ssl/certs", "/etc/pki/tls/certs"};
    size_t i;
#endif
    const char *env_file = getenv("SSL_CERT_FILE");
    const char *env_dir = getenv("SSL_CERT_DIR");
    size_t before = anchors->count;
    int err;
    if (env_file && *env_file && rs__tls_readable(env_file)) {
        err = rs__tls_anchors_add_file(alloc, anchors, env_file, true);
        if (err == RS_ENOMEM || anchors->count > before) {
            return err;
        }
    }
    if (env_dir && *env_dir) {
        err = rs__tls_anchors_add_dir(alloc, anchors, env_dir);
        if (err == RS_ENOMEM || anchors->count > before) {
            return err;
        }
    }
#if RESEAU_OS_WINDOWS
    return rs__tls_anchors_add_windows_store(alloc, anchors);
#else
    for (i = 0; i < sizeof(files) / sizeof(files[0]); ++i) {
        if (rs__tls_readable(files[i])) {
            err = rs__tls_anchors_add_file(alloc, anchors, files[i], true);
            if (err == RS_ENOMEM || anchors->count > before) {
                return err;
            }
        }
    }
    for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); ++i) {
        err = rs__tls_anchors_add_dir(alloc, anchors, dirs[i]);
        if (err == RS_ENOMEM || anchors->count > before) {
            return err;
        }
    }
    return RS_OK;
#endif
}
#else
/* Without an OS there are no directories and no system store: rs_tls_ctx_new
 * refuses ca_dir and use_system_trust there, and discovery finds nothing. */
static int rs__tls_anchors_add_dir(const rs_allocator_t *alloc, rs__tls_anchors_t *anchors, const char *dir) {
    (void)alloc;
    (void)anchors;
    (void)dir;
    return RS_ENOTSUP;
}

static int rs__tls_anchors_add_system(const rs_allocator_t *alloc, rs__tls_anchors_t *anchors) {
    (void)alloc;
    (void)anchors;
    return RS_OK;
}
#endif /* !RESEAU_OS_NONE */

static void rs__tls_chain_cleanup(const rs_allocator_t *alloc, rs__tls_chain_t *chain) {
    size_t i;
    for (i = 0; i < chain->count; ++i) {
        rs_mem_free(alloc, chain->certs[i].data);
    }
    rs_mem_free(alloc, chain->certs);
    memset(chain, 0, sizeof(*chain));
}

/* Parse PEM from a file or memory. */
static int rs__tls_parse_source(const rs_allocator_t *alloc, const char *file, rs_byte_cursor_t mem,
                                rs_pem_list_t *out) {
    int err = file ? rs_pem_parse_file(alloc, file, out) : rs_pem_parse(alloc, mem, out);
    if (err) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls: cannot load %s: %s", file ? file : "PEM from memory", rs_strerror(err));
    }
    return err;
}

static int rs__tls_chain_load(const rs_allocator_t *alloc, const char *file, rs_byte_cursor_t mem,
                              rs__tls_chain_t *chain) {
    rs_pem_list_t list;
    size_t i, n = 0;
    int err = rs__tls_parse_source(alloc, file, mem, &list);
    if (err) {
        return err;
    }
    for (i = 0; i < list.count; ++i) {
        n += list.objects[i].type == RS_PEM_CERTIFICATE;
    }
    if (n == 0) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls: no CERTIFICATE in %s", file ? file : "the chain given");
        rs_pem_list_cleanup(&list);
        return RS_ETLS_BAD_CERT;
    }
    chain->certs = (br_x509_certificate *)rs_mem_calloc(alloc, n, sizeof(*chain->certs));
    for (i = 0; chain->certs && i < list.count; ++i) {
        const rs_pem_object_t *obj = &list.objects[i];
        unsigned char *copy;
        if (obj->type != RS_PEM_CERTIFICATE) {
            continue;
        }
        copy = (unsigned char *)rs_mem_alloc(alloc, obj->data.len ? obj->data.len : 1);
        if (!copy) {
            break;
        }
        memcpy(copy, obj->data.buffer, obj->data.len);
        chain->certs[chain->count].data = copy;
        chain->certs[chain->count].data_len = obj->data.len;
        chain->count++;
    }
    rs_pem_list_cleanup(&list);
    if (chain->count != n) {
        rs__tls_chain_cleanup(alloc, chain);
        return RS_ENOMEM;
    }
    return RS_OK;
}

static void rs__tls_key_cleanup(const rs_allocator_t *alloc, rs__tls_key_t *key) {
    if (key->bytes) {
        rs_pem_wipe(key->bytes, key->bytes_len);
        rs_mem_free(alloc, key->bytes);
    }
    rs_pem_wipe(key, sizeof(*key));
}

/* Copy n bytes into the key's block at *pos; returns where they went. */
static unsigned char *rs__tls_key_put(unsigned char *block, size_t *pos, const unsigned char *src, size_t n) {
    unsigned char *dst = block + *pos;
    memcpy(dst, src, n);
    *pos += n;
    return dst;
}

static int rs__tls_key_copy(const rs_allocator_t *alloc, const br_skey_decoder_context *dc, rs__tls_key_t *key) {
    size_t pos = 0;
    key->type = br_skey_decoder_key_type(dc);
    if (key->type == BR_KEYTYPE_RSA) {
        const br_rsa_private_key *sk = br_skey_decoder_get_rsa(dc);
        key->bytes_len = sk->plen + sk->qlen + sk->dplen + sk->dqlen + sk->iqlen;
        key->bytes = (unsigned char *)rs_mem_alloc(alloc, key->bytes_len);
        if (!key->bytes) {
            return RS_ENOMEM;
        }
        key->rsa = *sk;
        key->rsa.p = rs__tls_key_put(key->bytes, &pos, sk->p, sk->plen);
        key->rsa.q = rs__tls_key_put(key->bytes, &pos, sk->q, sk->qlen);
        key->rsa.dp = rs__tls_key_put(key->bytes, &pos, sk->dp, sk->dplen);
        key->rsa.dq = rs__tls_key_put(key->bytes, &pos, sk->dq, sk->dqlen);
        key->rsa.iq = rs__tls_key_put(key->bytes, &pos, sk->iq, sk->iqlen);
        return RS_OK;
    }
    if (key->type == BR_KEYTYPE_EC) {
        const br_ec_private_key *sk = br_skey_decoder_get_ec(dc);
        key->bytes_len = sk->xlen;
        key->bytes = (unsigned char *)rs_mem_alloc(alloc, key->bytes_len ? key->bytes_len : 1);
        if (!key->bytes) {
            return RS_ENOMEM;
        }
        key->ec = *sk;
        key->ec.x = rs__tls_key_put(key->bytes, &pos, sk->x, sk->xlen);
        return RS_OK;
    }
    return RS_ETLS_BAD_KEY;
}

static int rs__tls_key_load(const rs_allocator_t *alloc, const char *file, rs_byte_cursor_t mem, rs__tls_key_t *key) {
    rs_pem_list_t list;
    br_skey_decoder_context *dc;
    size_t i;
    int err = rs__tls_parse_source(alloc, file, mem, &list);
    if (err) {
        return err;
    }
    for (i = 0; i < list.count; ++i) {
        rs_pem_type_t t = list.objects[i].type;
        if (t == RS_PEM_PRIVATE_KEY || t == RS_PEM_RSA_PRIVATE_KEY || t == RS_PEM_EC_PRIVATE_KEY) {
            break;
        }
    }
    if (i == list.count) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls: no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY in %s",
                    file ? file : "the key given");
        rs_pem_list_cleanup(&list);
        return RS_ETLS_BAD_KEY;
    }
    /* The decoder holds the key's bytes: keep it off the stack, and wipe it. */
    dc = (br_skey_decoder_context *)rs_mem_alloc(alloc, sizeof(*dc));
    if (!dc) {
        rs_pem_list_cleanup(&list);
        return RS_ENOMEM;
    }
    br_skey_decoder_init(dc);
    br_skey_decoder_push(dc, list.objects[i].data.buffer, list.objects[i].data.len);
    if (br_skey_decoder_last_error(dc) != 0) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls: cannot decode the private key: BearSSL error %d (%s)",
                    br_skey_decoder_last_error(dc), rs__tls_engine_error_name(br_skey_decoder_last_error(dc)));
        err = RS_ETLS_BAD_KEY;
    } else {
        err = rs__tls_key_copy(alloc, dc, key);
    }
    rs_pem_wipe(dc, sizeof(*dc));
    rs_mem_free(alloc, dc);
    rs_pem_list_cleanup(&list);
    if (err) {
        rs__tls_key_cleanup(alloc, key);
    }
    return err;
}

/* The leaf's public key and its issuer's key type, from the chain's first
 * certificate. */
typedef struct rs__tls_leaf {
    int key_type;
    int signer_key_type;
    unsigned char pub[BR_EC_KBUF_PUB_MAX_SIZE > 1024 ? BR_EC_KBUF_PUB_MAX_SIZE : 1024];
    size_t pub_len; /* RSA: the modulus; EC: the point */
} rs__tls_leaf_t;

static void rs__tls_dn_ignore(void *ctx, const void *data, size_t len) {
    (void)ctx;
    (void)data;
    (void)len;
}

static int rs__tls_leaf_decode(const br_x509_certificate *cert, rs__tls_leaf_t *leaf) {
    br_x509_decoder_context dc;
    const br_x509_pkey *pk;
    br_x509_decoder_init(&dc, rs__tls_dn_ignore, NULL);
    br_x509_decoder_push(&dc, cert->data, cert->data_len);
    pk = br_x509_decoder_get_pkey(&dc);
    if (!pk || br_x509_decoder_last_error(&dc) != 0) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls: cannot decode our certificate: BearSSL error %d (%s)",
                    br_x509_decoder_last_error(&dc), rs__tls_engine_error_name(br_x509_decoder_last_error(&dc)));
        return RS_ETLS_BAD_CERT;
    }
    leaf->key_type = pk->key_type;
    leaf->signer_key_type = br_x509_decoder_get_signer_key_type(&dc);
    if (pk->key_type == BR_KEYTYPE_RSA) {
        const unsigned char *n = pk->key.rsa.n;
        size_t nlen = pk->key.rsa.nlen;
        while (nlen > 0 && *n == 0) { /* compare without leading zeros */
            ++n;
            --nlen;
        }
        if (nlen > sizeof(leaf->pub)) {
            return RS_ETLS_BAD_CERT;
        }
        memcpy(leaf->pub, n, nlen);
        leaf->pub_len = nlen;
    } else {
        if (pk->key.ec.qlen > sizeof(leaf->pub)) {
            return RS_ETLS_BAD_CERT;
        }
        memcpy(leaf->pub, pk->key.ec.q, pk->key.ec.qlen);
        leaf->pub_len = pk->key.ec.qlen;
    }
    return RS_OK;
}

/* The key must be the one the leaf certifies: otherwise every handshake
 * would fail later, with a confusing error on the peer's side. */
static int rs__tls_key_matches_leaf(const rs__tls_key_t *key, const rs__tls_leaf_t *leaf) {
    unsigned char pub[1024];
    size_t len;
    const unsigned char *p = pub;
    if (key->type != leaf->key_type) {
        return RS_ETLS_BAD_KEY;
    }
    if (key->type == BR_KEYTYPE_RSA) {
        br_rsa_compute_modulus modulus = br_rsa_compute_modulus_get_default();
        len = modulus(NULL, &key->rsa);
        if (len == 0 || len > sizeof(pub) || modulus(pub, &key->rsa) != len) {
            return RS_ETLS_BAD_KEY;
        }
        while (len > 0 && *p == 0) {
            ++p;
            --len;
        }
    } else {
        br_ec_public_key pk;
        unsigned char kbuf[BR_EC_KBUF_PUB_MAX_SIZE];
        len = br_ec_compute_pub(br_ec_get_default(), &pk, kbuf, &key->ec);
        if (len == 0) {
            return RS_ETLS_BAD_KEY;
        }
        memcpy(pub, pk.q, pk.qlen);
        len = pk.qlen;
    }
    if (len != leaf->pub_len || memcmp(p, leaf->pub, len) != 0) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls: the private key does not match the certificate");
        return RS_ETLS_BAD_KEY;
    }
    return RS_OK;
}
