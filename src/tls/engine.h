/*
 * TLS engines: the record layer and handshake under the TLS handler.
 *
 * The TLS handler (below) moves bytes between the channel and an engine; the
 * engine does the protocol. reseau's own engine is BearSSL (TLS 1.0-1.2).
 * Another one (a TLS 1.3 library, say) plugs in through a factory in
 * rs_tls_connection_options_t (engine_new, engine_user_data): the handler
 * calls it once, from rs_tls_handler_start_negotiation, and from then on
 * drives the engine only through its vtable. Everything else stays the
 * handler's: read windows, write completions, back-pressure, shutdown order,
 * the negotiation timeout and callback, the ALPN handler, statistics.
 *
 * The engine is four buffers, as BearSSL's engine is:
 *   sendrec  records the engine has made, for the handler to send;
 *   recvrec  room for records received, for the handler to fill;
 *   sendapp  room for plaintext to seal, for the handler to fill;
 *   recvapp  plaintext the engine has opened, for the handler to deliver.
 * Each `*_buf` returns a pointer into the engine's own memory and its length
 * in *len (NULL, or *len 0: nothing now); the handler then reads or writes at
 * most that many bytes there and calls the matching `*_ack` with how many it
 * used (always 1..*len). A pointer is valid until the next call on the
 * engine. `state` says which buffers are open (RS_TLS_ENGINE_... flags); an
 * engine must open recvrec whenever it waits for bytes from the peer, and
 * progress made by an ack (a record opened, a reply made) must show in the
 * buffers at once: the handler pumps until nothing moves, and then waits for
 * the socket (it never polls an engine).
 *
 * The handshake is the engine's business: it starts on creation (a client's
 * first flight is ready in sendrec), and it is done when the engine first
 * opens sendapp or recvapp; the handler then reads `get_info` and reports
 * the negotiation. Plaintext handed to sendapp is sealed when the engine
 * wishes, and at the latest on `flush` (the handler flushes after every
 * batch of writes): after flush, every byte taken must be in records in
 * sendrec, for the handler completes a write once the sendrec bytes of that
 * moment have reached the kernel. `close` queues the close message (close_notify) in
 * sendrec; a close message from the peer, or a fatal error, sets
 * RS_TLS_ENGINE_CLOSED, after which `last_error` says which: RS_OK for a
 * close message, or the failure (an RS_E... code, RS_ETLS_... for protocol
 * failures). Plaintext that arrived before the close stays readable from
 * recvapp, and records still in sendrec (an alert) are still sent.
 *
 * Ownership: the engine is the handler's from the factory's return, freed
 * with vtable->destroy when the handler goes (destroy is called on a closed
 * engine or not, with data still in its buffers or not).
 * Threads: the factory and every vtable call but destroy run on the
 * channel's loop thread; destroy runs where the channel frees its handlers
 * (after the channel's shutdown, on the thread that destroys it, which may be
 * another). Never two calls at once, and a call never re-enters: an engine
 * needs no locks of its own.
 */

/* state flags: the values of BearSSL's BR_SSL_... (the BearSSL engine passes
 * its state through unchanged). */
#define RS_TLS_ENGINE_CLOSED 0x0001u  /* closed: see last_error; nothing more moves in */
#define RS_TLS_ENGINE_SENDREC 0x0002u /* records to send (sendrec_buf) */
#define RS_TLS_ENGINE_RECVREC 0x0004u /* wants records from the peer (recvrec_buf) */
#define RS_TLS_ENGINE_SENDAPP 0x0008u /* takes plaintext to seal (sendapp_buf) */
#define RS_TLS_ENGINE_RECVAPP 0x0010u /* has plaintext to deliver (recvapp_buf) */

typedef struct rs_tls_engine rs_tls_engine_t;

/* What the engine negotiated. The strings are the engine's, valid while it
 * lives; unknown fields stay zero/NULL. */
typedef struct rs_tls_engine_info {
    uint16_t version;              /* e.g. 0x0303 for TLS 1.2, 0x0304 for TLS 1.3 */
    uint16_t cipher_suite;         /* IANA number */
    const char *cipher_suite_name; /* NULL: the handler names cipher_suite (rs_tls_cipher_suite_name) */
    const char *alpn;              /* the agreed protocol, or NULL */
    const char *server_name;       /* server: the client's SNI, or NULL (a client's is the handler's) */
    bool resumed;                  /* an abbreviated handshake */
    bool peer_verified;            /* the peer's certificate was verified */
} rs_tls_engine_info_t;

typedef struct rs_tls_engine_vtable {
    /* RS_TLS_ENGINE_... flags. */
    unsigned (*state)(rs_tls_engine_t *engine);
    /* Records to send (handshake, data, alerts, close). */
    unsigned char *(*sendrec_buf)(rs_tls_engine_t *engine, size_t *len);
    void (*sendrec_ack)(rs_tls_engine_t *engine, size_t len);
    /* Room for bytes received from the peer (a record, or part of one). */
    unsigned char *(*recvrec_buf)(rs_tls_engine_t *engine, size_t *len);
    void (*recvrec_ack)(rs_tls_engine_t *engine, size_t len);
    /* Room for plaintext to seal ("encrypt"). */
    unsigned char *(*sendapp_buf)(rs_tls_engine_t *engine, size_t *len);
    void (*sendapp_ack)(rs_tls_engine_t *engine, size_t len);
    /* Plaintext opened from records ("decrypt"). */
    unsigned char *(*recvapp_buf)(rs_tls_engine_t *engine, size_t *len);
    void (*recvapp_ack)(rs_tls_engine_t *engine, size_t len);
    /* Seal the plaintext taken so far into records now. */
    void (*flush)(rs_tls_engine_t *engine);
    /* Queue the close message (close_notify); the engine then closes (sets
     * RS_TLS_ENGINE_CLOSED) when it is sent and, if it waits for it, the
     * peer's is received. Called at most once, after the handshake, on an
     * engine not closed. */
    void (*close)(rs_tls_engine_t *engine);
    /* Once closed: RS_OK for an orderly close, else why the engine failed
     * (any RS_E... code; the BearSSL engine gives the RS_ETLS_... ones that
     * tls.h's functions list). Before that: RS_OK. */
    int (*last_error)(rs_tls_engine_t *engine);
    /* The error for a peer that hung up (end of stream) without a close
     * message. May be NULL: RS_ETLS_TRUNCATED. */
    int (*hangup_error)(rs_tls_engine_t *engine);
    /* Fill *out (zeroed by the handler first). Called after the handshake,
     * and on a server at any time for the SNI. */
    void (*get_info)(rs_tls_engine_t *engine, rs_tls_engine_info_t *out);
    /* Free the engine and everything it holds. */
    void (*destroy)(rs_tls_engine_t *engine);
} rs_tls_engine_vtable_t;

/* An engine: a vtable and the engine's own data. The engine allocates it
 * (usually inside its own struct) and frees it in destroy. */
struct rs_tls_engine {
    const rs_tls_engine_vtable_t *vtable; /* every entry set, but hangup_error */
    void *impl;
};

/* What the handler tells the factory about the connection. The pointers are
 * valid during the call only, but ctx and alpn_names (and its strings), which
 * outlive the engine. */
typedef struct rs_tls_engine_config {
    struct rs_tls_ctx *ctx;          /* the connection's context: the role, and what BearSSL uses */
    const rs_allocator_t *allocator; /* the context's */
    rs_channel_handler_t *handler;   /* the TLS handler (for logs; in a slot) */
    bool is_server;
    const char *server_name;         /* client: the name to send and check, or NULL */
    const char *const *alpn_names;   /* protocols to offer or accept, in order */
    size_t alpn_count;
    const char *session_key;         /* client: "host:port:sni", a key for a session cache */
} rs_tls_engine_config_t;

/* Make an engine for one connection and start its handshake. On failure,
 * return NULL and set *err_out (never NULL here) to an RS_E... code: the
 * handler's rs_tls_handler_start_negotiation returns it (RS_ENOMEM for
 * memory). Loop thread.
 *
 * Example: an engine of your own, for one client connection.
 *
 *   static rs_tls_engine_t *my_engine_new(const rs_tls_engine_config_t *cfg,
 *                                         void *user_data, int *err_out) {
 *       my_engine_t *e = my_alloc(cfg->allocator, ...);    // your struct
 *       if (!e) { *err_out = RS_ENOMEM; return NULL; }
 *       e->base.vtable = &my_engine_vtable;   // state, sendrec_buf, ...
 *       e->base.impl = e;
 *       my_start_handshake(e, cfg->server_name);  // hello into sendrec
 *       return &e->base;
 *   }
 *
 *   rs_tls_connection_options_t c = {0};
 *   c.ctx = ctx;                 // still required: the role and allocator
 *   c.server_name = "example.org";
 *   c.engine_new = my_engine_new;   // NULL: BearSSL
 *   c.engine_user_data = my_settings;
 *   rs_channel_installer_t *tls = rs_tls_installer_new(&c, &err);
 *
 * tests/tls/test_tls_engine.c has a complete (toy) engine. */
typedef rs_tls_engine_t *rs_tls_engine_new_fn(const rs_tls_engine_config_t *config, void *user_data, int *err_out);

/* For an engine whose state changes outside the handler's calls (an
 * asynchronous operation of its own has finished): the handler pumps it
 * again, as after bytes from the peer. An engine waiting for such an
 * operation opens none of its buffers meanwhile (state 0), and the handler
 * waits. `handler` is the config's. On the loop thread of the handler's
 * channel, never from inside a vtable call (from a task: see
 * rs_channel_schedule_task_now). RS_OK, or RS_EINVAL for NULL or a handler
 * that is not a TLS handler. The BearSSL engine calls it when an
 * asynchronous signature (rs_tls_sign_async_fn) comes back. */
RESEAU_API int rs_tls_engine_wake(rs_channel_handler_t *handler);

/* The BearSSL engine, the default: the factory used when engine_new is NULL.
 * user_data is unused. Errors: RS_EINVAL (config or its ctx NULL; no
 * handler, with a key that signs asynchronously), RS_ENOMEM,
 * RS_ETLS_FAILED (no entropy from the OS), or the RS_ETLS_... code of
 * BearSSL's refusal of the settings. */
RESEAU_API rs_tls_engine_t *rs_tls_engine_bearssl_new(const rs_tls_engine_config_t *config, void *user_data,
                                                      int *err_out);
