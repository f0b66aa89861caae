/*
 * TLS 1.0-1.2 on BearSSL, as a channel handler.
 *
 * A TLS context (rs_tls_ctx_t) holds what connections share: the role
 * (client or server), the trust store, our certificate chain and key, the
 * ALPN list, the version range, the session cache. It is immutable after
 * creation, reference counted, and may be shared by any number of
 * connections on any loops.
 *
 * A TLS handler sits in a channel slot to the right of the socket handler
 * (or of a transport handler, where there are no sockets):
 * ciphertext flows through its left side, plaintext through its right side.
 * It honours read windows both ways (it holds at most its window of
 * ciphertext, and decrypts only what the right can take), reports the
 * plaintext it holds as pending write bytes (so writability covers it),
 * seals each write message into records at once, and completes a write
 * message only when the ciphertext that carries it has reached the kernel.
 * Writes made before the handshake is done wait for it.
 *
 * Shutdown: a graceful write shutdown seals what is queued, sends
 * close_notify, and lets the socket flush it; an abortive one drops what is
 * queued (each write completes RS_ECANCELED). A peer's close_notify shuts the
 * channel down with RS_EEOF, as a plain socket's end of stream does; an end
 * of stream without close_notify is RS_ETLS_TRUNCATED, once every record
 * that arrived before it is delivered. Renegotiation is refused.
 *
 * Errors: every failure has its own code (result.h, RS_ETLS_...), and the log
 * (subject "tls") says what BearSSL reported, by name. Another engine (see
 * engine.h, above) reports its own codes.
 *
 * Threads: contexts may be created, acquired and released on any thread.
 * Handlers, installers' install and every callback run on the channel's loop
 * thread.
 */
typedef struct rs_tls_ctx rs_tls_ctx_t;

typedef enum rs_tls_version {
    RS_TLS_VERSION_DEFAULT = 0, /* TLS 1.2 */
    RS_TLS_VERSION_1_0 = 0x0301,
    RS_TLS_VERSION_1_1 = 0x0302,
    RS_TLS_VERSION_1_2 = 0x0303
} rs_tls_version_t;

typedef enum rs_tls_client_auth {
    RS_TLS_CLIENT_AUTH_NONE = 0,     /* no certificate asked for */
    RS_TLS_CLIENT_AUTH_OPTIONAL = 1, /* asked for; verified when given */
    RS_TLS_CLIENT_AUTH_REQUIRED = 2  /* asked for and required: RS_ETLS_CLIENT_CERT_REQUIRED without one */
} rs_tls_client_auth_t;

/* Largest ALPN list, and longest name in it (RFC 7301 allows 255). */
#define RS_TLS_ALPN_MAX 16
#define RS_TLS_ALPN_NAME_MAX 255

/* Default negotiation timeout, and default session cache sizes. */
#define RS_TLS_DEFAULT_NEGOTIATION_TIMEOUT_MS 10000u
#define RS_TLS_DEFAULT_SESSION_CACHE 256u

/* A private key that stays where it is (a PKCS#11 token: see >>pkcs11; a TPM;
 * a remote signer): instead of key_file/key_pem, a context may take a sign
 * function, which the handshake calls for the one signature our side makes:
 * a client's CertificateVerify (mTLS), a server's ServerKeyExchange (ECDHE).
 * The key's type (RSA or EC) is the certificate's (cert_file/cert_pem stay
 * required); suites and hashes are chosen to match it, as for a key in
 * memory. */
typedef enum rs_tls_sign_algorithm {
    RS_TLS_SIGN_RSA_PKCS1 = 1, /* RSASSA-PKCS1-v1_5 (RFC 8017): the signature is as long as the modulus */
    RS_TLS_SIGN_ECDSA = 2      /* ECDSA: the signature DER-encoded (SEQUENCE of r, s), as TLS sends it */
} rs_tls_sign_algorithm_t;

/* The hash of what is signed; the numbers are TLS 1.2's HashAlgorithm
 * (RFC 5246, 7.4.1.4.1). */
typedef enum rs_tls_hash {
    RS_TLS_HASH_MD5_SHA1 = 0, /* TLS 1.0/1.1 with RSA: MD5 then SHA-1, 36 bytes, signed with no DigestInfo */
    RS_TLS_HASH_SHA1 = 2,
    RS_TLS_HASH_SHA224 = 3,
    RS_TLS_HASH_SHA256 = 4,
    RS_TLS_HASH_SHA384 = 5,
    RS_TLS_HASH_SHA512 = 6
} rs_tls_hash_t;

/* Sign `digest` (digest_len bytes, the hash given) with the key; for RSA the
 * function adds the DigestInfo for the hash (none for MD5_SHA1) and the
 * PKCS #1 v1.5 padding. Write at most sig_capacity bytes to `sig` and their
 * number to *sig_len; return RS_OK, or an error code, which becomes the
 * handshake's result (and is logged). The answer is given before returning
 * (for one given later, see rs_tls_sign_async_fn); returning RS_EAGAIN
 * ("later") fails the handshake with RS_ENOTSUP. Called on the loop thread
 * of the connection that handshakes, and so possibly on several loops at
 * once: it must be thread-safe. It blocks that loop while it runs. */
typedef int rs_tls_sign_fn(rs_tls_sign_algorithm_t algorithm, rs_tls_hash_t hash, const uint8_t *digest,
                           size_t digest_len, uint8_t *sig, size_t sig_capacity, size_t *sig_len, void *user_data);

/* A signature being made asynchronously (see rs_tls_sign_async_fn). */
typedef struct rs_tls_sign_op rs_tls_sign_op_t;

/* Start signing `digest`, as rs_tls_sign_fn signs it, and answer later with
 * rs_tls_sign_op_complete(op, ...), from any thread (a signer thread, a
 * remote signer's reply, a TPM's completion), or at once from inside this
 * call. Meanwhile the handshake waits and the loop goes on with everything
 * else; the connection's negotiation timeout still runs. Return RS_OK when
 * the signature is under way (then complete `op` exactly once), or an error
 * code, which becomes the handshake's result (then do not complete it).
 * digest is valid during the call only; the signature may have up to
 * sig_capacity bytes. Called on the connection's loop thread, possibly on
 * several loops at once: it must be thread-safe.
 *
 * How, with BearSSL, which asks for the signature inside its handshake code
 * and cannot pause there: while such a key handshakes, the engine saves its
 * state (about 34 KiB, for the handshake only) before each step; a step
 * that needs the signature is undone, and done again with it once it is
 * there. The handshake on the wire is the same as with rs_tls_sign_fn.
 *
 * Example: a remote signer whose replies arrive on a thread of its own.
 *
 *   static int my_sign_async(rs_tls_sign_op_t *op, rs_tls_sign_algorithm_t alg,
 *                            rs_tls_hash_t hash, const uint8_t *digest,
 *                            size_t digest_len, size_t sig_capacity, void *ud) {
 *       // copy what it needs, queue the request with op as its tag
 *       return my_signer_request(ud, op, alg, hash, digest, digest_len);
 *   }
 *   // on the signer's reply thread:
 *   rs_tls_sign_op_complete(reply->op, reply->ok ? RS_OK : RS_EACCES,
 *                           reply->sig, reply->sig_len);
 *
 *   rs_tls_private_key_t key = {0};
 *   key.sign_async = my_sign_async;
 *   key.user_data = my_signer;
 *   options.private_key = &key;   // and cert_file: the key's certificate */
typedef int rs_tls_sign_async_fn(rs_tls_sign_op_t *op, rs_tls_sign_algorithm_t algorithm, rs_tls_hash_t hash,
                                 const uint8_t *digest, size_t digest_len, size_t sig_capacity, void *user_data);

/* Answer an asynchronous signature: error RS_OK with the signature (sig_len
 * bytes at sig, copied), or an error code, which becomes the handshake's
 * result (RS_EAGAIN included; a positive one becomes RS_ETLS_FAILED). Any
 * thread, exactly once per op; op is gone when this returns. The handshake
 * goes on on the connection's loop thread. If the connection ended in the
 * meantime (timeout, peer hang-up, shutdown, the channel destroyed), the
 * answer is dropped; the channel's memory is held until it comes, so a
 * signature that never comes leaks the channel. The connection's event loop
 * must outlive the op. Returns RS_OK; RS_EINVAL for a NULL op (nothing
 * happens), or for error RS_OK with a NULL or empty signature, one longer
 * than sig_capacity, or a positive error (the op is answered all the same:
 * the handshake fails with RS_ETLS_BAD_KEY, or RS_ETLS_FAILED). */
RESEAU_API int rs_tls_sign_op_complete(rs_tls_sign_op_t *op, int error, const uint8_t *sig, size_t sig_len);

typedef struct rs_tls_private_key {
    rs_tls_sign_fn *sign; /* this, or sign_async: exactly one of the two */
    /* Called once when a context takes the key (in rs_tls_ctx_new, once the
     * certificate is loaded), and once when that context lets it go (it is
     * freed, or rs_tls_ctx_new fails later), so user_data lives as long as
     * the context needs it. Both or neither (default: NULL, the caller keeps
     * user_data alive until every context using it is freed). Any thread. */
    void (*acquire)(void *user_data);
    void (*release)(void *user_data);
    void *user_data;
    rs_tls_sign_async_fn *sign_async; /* instead of sign: the answer may come later */
} rs_tls_private_key_t;

typedef struct rs_tls_ctx_options {
    bool is_server;                  /* (default: false, a client context) */
    const rs_allocator_t *allocator; /* copied (default: NULL, libc) */

    /* Trust store: the CAs that verify the peer. Any combination of these is
     * loaded; when none is given and verification is on, the system store is
     * discovered: $SSL_CERT_FILE, $SSL_CERT_DIR, then the Debian, RHEL and
     * Alpine bundles and directories (on Windows, the Windows ROOT
     * certificate store after the two variables). (defaults: NULL / empty) */
    const char *ca_file;    /* a PEM bundle */
    const char *ca_dir;     /* every regular file in it that holds PEM certificates */
    rs_byte_cursor_t ca_pem; /* PEM text in memory (copied) */
    bool use_system_trust;  /* load the system store as well as the above (default: false) */

    /* Verification of the peer is on unless this is set (a client then takes
     * any certificate; a server asks for none). (default: false, verify) */
    bool insecure_skip_verify;

    /* Our certificate chain (leaf first) and private key, PEM: RSA or EC, the
     * key as PKCS #8, RSA or EC PRIVATE KEY. Required on a server; on a client
     * they are offered when the server asks (mTLS). A file or memory, not
     * both. (default: none) */
    const char *cert_file;
    const char *key_file;
    rs_byte_cursor_t cert_pem; /* copied */
    rs_byte_cursor_t key_pem;  /* copied, and wiped when freed */
    /* Our private key as a sign function (see rs_tls_private_key_t), instead
     * of key_file/key_pem: the key never enters this process. Copied.
     * (default: NULL) */
    const rs_tls_private_key_t *private_key;

    rs_tls_client_auth_t client_auth; /* server only (default: NONE) */

    /* Protocols offered (client) or accepted (server), in order of preference,
     * separated by ';' as in "h2;http/1.1". (default: NULL, no ALPN) */
    const char *alpn_list;
    /* A server fails the handshake with RS_ETLS_ALPN_MISMATCH (and the
     * no_application_protocol alert) when the client's protocols and ours
     * share none, instead of going on without a protocol. (default: false) */
    bool alpn_required;

    rs_tls_version_t min_version; /* (default: TLS 1.2) */
    rs_tls_version_t max_version; /* (default: TLS 1.2) */

    uint32_t negotiation_timeout_ms; /* (default: 0, RS_TLS_DEFAULT_NEGOTIATION_TIMEOUT_MS) */

    /* Session resumption (session IDs): a client remembers a session per
     * host:port:server name; a server keeps one LRU cache shared by all its
     * loops, under a lock. Entries (100 bytes each on a server)
     * (default: 0, RS_TLS_DEFAULT_SESSION_CACHE). */
    size_t session_cache_size;
    bool disable_session_cache; /* (default: false) */

    /* Time used to check certificate validity, in seconds since the epoch.
     * For tests, and for firmware whose C library has no clock. (default: 0,
     * the C library's time()) */
    int64_t verify_time_s;

    /* Where each connection's 32-byte random seed comes from: fill `out`
     * with `len` bytes from a hardware RNG or a DRBG of yours and return
     * RS_OK, or a negative RS_Exxx, which rs_tls_handler_start_negotiation
     * (and so the handshake) returns. Called on the connection's loop thread.
     * (default: NULL, the OS: getrandom, or BCryptGenRandom on Windows;
     * without an OS (RESEAU_OS_NONE) there is none, and it is required) */
    int (*random_fn)(void *random_user_data, unsigned char *out, size_t len);
    void *random_user_data; /* (default: NULL) */
} rs_tls_ctx_options_t;

/* Create a context. The caller holds one reference (release it with
 * rs_tls_ctx_release). Files are read here, on the calling thread. NULL with
 * *err_out (err_out may be NULL):
 *   RS_EINVAL             options NULL; a file and memory both given for the
 *                         chain or the key (private_key counts as a key, and
 *                         takes exactly one of sign and sign_async, and
 *                         acquire and release both or neither); a server without chain and key; a
 *                         client with a chain but no key or the reverse; an
 *                         ALPN list with an empty, overlong or too many names;
 *                         min_version above max_version or an unknown version;
 *                         client_auth on a client;
 *   RS_ENOENT, RS_EACCES, RS_EIO  a file or directory that cannot be read;
 *   RS_EPEM_...           malformed PEM;
 *   RS_ETLS_NO_TRUST_ANCHORS  verification on and no CA found (none given and
 *                         no system store, or files with no certificate);
 *   RS_ETLS_BAD_CERT      a certificate BearSSL cannot decode;
 *   RS_ETLS_BAD_KEY       no private key, an unsupported one, or one that does
 *                         not match the leaf certificate;
 *   RS_ENOTSUP            without an OS: no random_fn; ca_dir or
 *                         use_system_trust (no directories or system store);
 *   RS_ENOMEM.
 * Any thread. */
RESEAU_API rs_tls_ctx_t *rs_tls_ctx_new(const rs_tls_ctx_options_t *options, int *err_out);
/* Take and drop references. The last release frees the context (handlers
 * hold their own reference). NULL: no-op. Any thread. */
RESEAU_API void rs_tls_ctx_acquire(rs_tls_ctx_t *ctx);
RESEAU_API void rs_tls_ctx_release(rs_tls_ctx_t *ctx);
/* Number of trust anchors loaded (0 for NULL). Any thread. */
RESEAU_API size_t rs_tls_ctx_trust_anchor_count(const rs_tls_ctx_t *ctx);
/* Forget every session a client context remembers (a server's cache keeps
 * its entries until they age out). Any thread. */
RESEAU_API void rs_tls_ctx_flush_sessions(rs_tls_ctx_t *ctx);

/* What a handler negotiated. `handler` is the TLS handler. Called once per
 * handler, on the loop thread, when the handshake succeeded (error RS_OK) or
 * failed; the channel is shut down after a failure. */
typedef void rs_tls_on_negotiation_result_fn(rs_channel_handler_t *handler, rs_channel_slot_t *slot, int error,
                                             void *user_data);

typedef struct rs_tls_connection_options {
    rs_tls_ctx_t *ctx; /* required; the handler takes its own reference */
    /* Client: the name sent as SNI and checked against the certificate. An IP
     * literal is not sent (RFC 6066) and is checked against the certificate's
     * iPAddress names. NULL: no SNI, and with verification on the handshake
     * fails with RS_ETLS_HOSTNAME_MISMATCH (nothing to check against).
     * Copied. Ignored by a server. (default: NULL) */
    const char *server_name;
    const char *alpn_list;           /* overrides the context's (default: NULL) */
    uint32_t negotiation_timeout_ms; /* overrides the context's (default: 0) */
    rs_tls_on_negotiation_result_fn *on_negotiation_result; /* (default: NULL) */
    void *user_data;
    /* The TLS engine (engine.h): a factory the handler calls once, from
     * rs_tls_handler_start_negotiation, with engine_user_data. The context
     * still gives the role, allocator, ALPN list and timeout; the rest of it
     * is BearSSL's, for another engine to use or ignore. (default: NULL,
     * rs_tls_engine_bearssl_new) */
    rs_tls_engine_new_fn *engine_new;
    void *engine_user_data;
} rs_tls_connection_options_t;

/* Create a TLS handler (client or server, as the context is). Put it in a
 * slot (rs_channel_slot_set_handler or rs_channel_slot_add_handler_right),
 * then call rs_tls_handler_start_negotiation. The channel owns it from the
 * moment it is in a slot (it is freed with the channel); before that, free it
 * with rs_tls_handler_destroy. NULL with *err_out: RS_EINVAL (options or ctx
 * NULL, a bad ALPN list), RS_ENOMEM. Any thread. */
RESEAU_API rs_channel_handler_t *rs_tls_handler_new(const rs_tls_connection_options_t *options, int *err_out);
/* Free a handler that was never put in a slot. NULL: no-op. */
RESEAU_API void rs_tls_handler_destroy(rs_channel_handler_t *handler);
/* Make the engine, start the handshake (a client sends its hello) and the
 * negotiation timer. RS_EINVAL for NULL or a handler that is not a TLS
 * handler, RS_ESTATE when it is not in a slot or has started already,
 * RS_EWRONGTHREAD off the loop thread, or the engine factory's error (for
 * BearSSL: RS_ENOMEM, RS_ETLS_FAILED, or the RS_ETLS_... code of a refused
 * setting). Loop thread. */
RESEAU_API int rs_tls_handler_start_negotiation(rs_channel_handler_t *handler);

/* One call for a hand-built channel: create a handler, add it in a new slot to
 * the right of `slot`, and start negotiating. The slot is returned through
 * *slot_out (may be NULL). Errors: those of rs_tls_handler_new, of
 * rs_channel_slot_add_handler_right and of start_negotiation. Loop thread. */
RESEAU_API int rs_tls_channel_add(rs_channel_slot_t *slot, const rs_tls_connection_options_t *options,
                                  rs_channel_slot_t **slot_out);

typedef struct rs_tls_info {
    bool negotiated;          /* the handshake succeeded */
    bool resumed;             /* the session was resumed (abbreviated handshake) */
    bool peer_verified;       /* the peer's certificate chain was verified */
    uint16_t version;         /* 0x0303 for TLS 1.2; 0 before the handshake */
    uint16_t cipher_suite;    /* IANA number; 0 before the handshake */
    const char *cipher_suite_name; /* e.g. "ECDHE-RSA-AES128-GCM-SHA256"; never NULL */
    const char *alpn;         /* the negotiated protocol, or NULL; valid while the handler lives */
    const char *server_name;  /* client: the name asked for; server: the client's SNI, or NULL */
    uint64_t handshake_start_ns; /* loop clock; 0 before start */
    uint64_t handshake_end_ns;   /* 0 until done */
    int result;               /* RS_OK, or the handshake's error */
} rs_tls_info_t;

/* Fill *out for a TLS handler. RS_EINVAL for NULLs or a handler that is not a
 * TLS handler. Loop thread. */
RESEAU_API int rs_tls_handler_get_info(const rs_channel_handler_t *handler, rs_tls_info_t *out);
/* The negotiated protocol, or NULL (none, or not a TLS handler). Loop thread. */
RESEAU_API const char *rs_tls_handler_get_alpn(const rs_channel_handler_t *handler);
/* The TLS handler in a channel (the leftmost one), or NULL. Loop thread. */
RESEAU_API rs_channel_handler_t *rs_tls_channel_get_handler(const rs_channel_t *channel);
/* The OpenSSL-style name of a suite ("ECDHE-ECDSA-AES128-GCM-SHA256"), or "unknown". */
RESEAU_API const char *rs_tls_cipher_suite_name(uint16_t suite);

#if !RS__NO_SOCKETS
/* An installer for either bootstrap: it adds a TLS handler and reports done
 * when the handshake has finished (or failed: its RS_ETLS_... code reaches
 * on_setup), so on_setup means "ready for application data". The options are
 * copied (the context is referenced). One installer serves any number of
 * connections and listeners; it is the caller's (its vtable has no destroy
 * entry, so a bootstrap never frees it): free it with
 * rs_tls_installer_destroy once the bootstraps no longer use it (see
 * installer.h for when). NULL with *err_out: RS_EINVAL (options or ctx NULL,
 * a bad ALPN list), RS_ENOMEM. Any thread. */
RESEAU_API rs_channel_installer_t *rs_tls_installer_new(const rs_tls_connection_options_t *options, int *err_out);
/* Free a TLS or ALPN installer. NULL, or another kind of installer: no-op.
 * Any thread. */
RESEAU_API void rs_tls_installer_destroy(rs_channel_installer_t *installer);

#endif

/* ALPN: a handler that waits, to the right of a TLS handler, for the
 * negotiation, then asks `on_protocol` for the handler of the negotiated
 * protocol (protocol is NULL when none was agreed) and replaces itself with
 * it in its slot. on_protocol runs on the loop thread; returning NULL shuts
 * the channel down with RS_ETLS_ALPN_MISMATCH. */
typedef rs_channel_handler_t *rs_tls_alpn_on_protocol_fn(rs_channel_slot_t *slot, const char *protocol,
                                                         void *user_data);
/* NULL with *err_out: RS_EINVAL (NULL callback), RS_ENOMEM. Any thread. The
 * handler is the channel's once in a slot, as any handler. */
RESEAU_API rs_channel_handler_t *rs_tls_alpn_handler_new(const rs_allocator_t *allocator,
                                                         rs_tls_alpn_on_protocol_fn *on_protocol, void *user_data,
                                                         int *err_out);
#if !RS__NO_SOCKETS
/* An installer that adds, after the TLS installer, the handler on_protocol
 * returns for the agreed protocol (an ALPN handler if the handshake is not
 * done yet); on_protocol returning NULL fails the setup with
 * RS_ETLS_ALPN_MISMATCH. Owned and freed as the TLS installer
 * (rs_tls_installer_destroy). Same errors as rs_tls_alpn_handler_new. */
RESEAU_API rs_channel_installer_t *rs_tls_alpn_installer_new(const rs_allocator_t *allocator,
                                                             rs_tls_alpn_on_protocol_fn *on_protocol,
                                                             void *user_data, int *err_out);
#endif
