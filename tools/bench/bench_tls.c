/*
 * reseau-bench-tls: TLS on BearSSL through reseau, against OpenSSL (libssl),
 * measured in the same run (design/TESTING.md: benchmarks print a ratio).
 *
 *   tls_pump         MB/s of application data over one loopback connection,
 *                    client to server, after the handshake. reseau: both ends
 *                    in channels on a group of two loops (bootstraps, TLS
 *                    installers). OpenSSL: two threads, blocking sockets,
 *                    SSL_write/SSL_read of 16 KiB. Same suite on both:
 *                    ECDHE-ECDSA-AES128-GCM-SHA256, TLS 1.2.
 *   tls_handshakes   full handshakes/s, one after another over loopback
 *                    (connect, handshake, close), both ends in this process.
 *   tls_resumed      the same with session resumption (session IDs).
 *   tls_sign_async   full handshakes/s as tls_handshakes, with the server's key
 *                    behind sign_async, answered by a signer thread (the
 *                    shape of a remote signer or a token), against the same
 *                    handshakes with the key in memory: what asynchronous
 *                    signing costs (the state saved before each handshake
 *                    step, the step taken again, the two thread hops).
 *   tls_idle_memory  KB of heap per idle TLS connection end, 1000 connections
 *                    open at once (both ends counted: the figure is the
 *                    increase divided by 2000). OpenSSL: 1000 SSL pairs over
 *                    BIO pairs, handshaken. Lower is better (ratio < 1).
 *
 * The credentials are embedded (EC P-256). Goals (issue 9): tls_pump >= 0.75x
 * OpenSSL (BearSSL's AES-GCM is ~0.79x OpenSSL's here), <= 40 KB per idle
 * connection.
 */
#define RESEAU_IMPLEMENTATION
#define RESEAU_TLS_IMPLEMENTATION
#include "reseau.h"
#include "reseau_tls.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <uv.h>

#define BENCH_PROGRAM "reseau-bench-tls"
#define BENCH_DEFAULT_ROUNDS 3
#define BENCH_RUN_LIMIT_S 60
#include "bench_common.h"

#define PUMP_BYTES ((size_t)512 * 1024 * 1024)
#define PUMP_CHUNK ((size_t)16 * 1024)
#define HANDSHAKES 200
#define IDLE_CONNECTIONS 1000

#include "demo_certs.h"

/* ------------------------------------------------------------- reseau side */

typedef struct rs_world {
    rs_event_loop_group_t *group;
    rs_server_bootstrap_t *server;
    rs_client_bootstrap_t *client;
    rs_server_listener_t *listener;
    rs_tls_ctx_t *server_ctx, *client_ctx;
    rs_channel_installer_t *server_tls, *client_tls;
    rs_channel_installer_t app_installer;
    uint32_t port;
    _Atomic size_t received;       /* pump: bytes the server took */
    _Atomic uint64_t done_ns;      /* pump: when the last byte arrived */
    _Atomic int setups, shutdowns, server_setups, server_shutdowns, errors;
    _Atomic int resumed;
    size_t to_send;                /* pump */
    bool close_on_setup;           /* handshakes */
} rs_world_t;

static rs_world_t *g_world;
/* As the OpenSSL peer: no Nagle delay on handshake flights. */
static const rs_socket_options_t g_socket_options = {.tcp_nodelay = true};

/* Server sink: counts, reopens its window. */
static int sink_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *m) {
    size_t n = m->message_data.len;
    (void)h;
    rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), m);
    if (atomic_fetch_add(&g_world->received, n) + n >= g_world->to_send && g_world->to_send) {
        atomic_store(&g_world->done_ns, bench_now_ns());
    }
    return rs_channel_slot_increment_read_window(slot, n);
}

static void handler_free(rs_channel_handler_t *h) { free(h); }

static const rs_channel_handler_vtable_t sink_vtable = {.process_read_message = sink_read, .destroy = handler_free};

/* Client pump: keeps PUMP_IN_FLIGHT messages queued, refilling on completion. */
#define PUMP_IN_FLIGHT 32
typedef struct pumper {
    rs_channel_handler_t base;
    size_t sent;
    int in_flight;
} pumper_t;

static void pump_fill(pumper_t *p);

static void on_pump_written(rs_channel_t *channel, rs_io_message_t *m, int error, void *ud) {
    pumper_t *p = (pumper_t *)ud;
    (void)m;
    if (!channel) {
        return;
    }
    p->in_flight--;
    if (error) {
        atomic_fetch_add(&g_world->errors, 1);
        return;
    }
    pump_fill(p);
}

static void pump_fill(pumper_t *p) {
    rs_channel_slot_t *slot = p->base.slot;
    rs_channel_t *channel = rs_channel_slot_get_channel(slot);
    while (p->sent < g_world->to_send && p->in_flight < PUMP_IN_FLIGHT) {
        rs_io_message_t *m = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, PUMP_CHUNK);
        if (!m) fail("pump", "out of messages");
        memset(m->message_data.buffer, 'p', PUMP_CHUNK);
        m->message_data.len = PUMP_CHUNK;
        m->on_completion = on_pump_written;
        m->user_data = p;
        check_rs(rs_channel_slot_send_message(slot, m, RS_CHANNEL_DIR_WRITE), "send");
        p->sent += PUMP_CHUNK;
        p->in_flight++;
    }
}

static const rs_channel_handler_vtable_t pumper_vtable = {.destroy = handler_free};

static int install_app(rs_channel_installer_t *installer, rs_channel_t *channel, rs_channel_slot_t *slot,
                       rs_channel_installer_done_fn *done, void *done_ctx) {
    bool server = installer->impl != NULL;
    rs_channel_handler_t *h;
    rs_channel_slot_t *added;
    if (server) {
        h = xcalloc(1, sizeof *h);
        *h = (rs_channel_handler_t){.vtable = &sink_vtable, .impl = h};
    } else {
        pumper_t *p = xcalloc(1, sizeof *p);
        p->base = (rs_channel_handler_t){.vtable = &pumper_vtable, .impl = p};
        h = &p->base;
    }
    int err = rs_channel_slot_add_handler_right(slot, h, &added);
    if (err) return free(h), err;
    done(channel, added, RS_OK, done_ctx);
    return RS_OK;
}

static const rs_channel_installer_vtable_t app_installer_vtable = {.install = install_app};
static rs_channel_installer_t g_server_app = {&app_installer_vtable, (void *)1};
static rs_channel_installer_t g_client_app = {&app_installer_vtable, NULL};

static void on_incoming_setup(rs_server_listener_t *l, rs_channel_t *c, int error, void *ud) {
    (void)l, (void)c, (void)ud;
    if (error) fprintf(stderr, BENCH_PROGRAM ": server setup: %s\n", rs_strerror(error));
    if (error) atomic_fetch_add(&g_world->errors, 1);
    atomic_fetch_add(&g_world->server_setups, 1);
}

static void on_incoming_shutdown(rs_server_listener_t *l, rs_channel_t *c, int error, void *ud) {
    (void)l, (void)c, (void)ud, (void)error;
    atomic_fetch_add(&g_world->server_shutdowns, 1);
}

static void on_client_shutdown(rs_client_bootstrap_t *b, rs_channel_t *c, int error, void *ud);

static void on_client_setup(rs_client_bootstrap_t *b, rs_channel_t *channel, int error, void *ud) {
    (void)b, (void)ud;
    if (error) {
        fprintf(stderr, BENCH_PROGRAM ": client setup: %s\n", rs_strerror(error));
        atomic_fetch_add(&g_world->errors, 1);
        atomic_fetch_add(&g_world->setups, 1);
        atomic_fetch_add(&g_world->shutdowns, 1);
        return;
    }
    rs_tls_info_t info;
    if (rs_tls_handler_get_info(rs_tls_channel_get_handler(channel), &info) == RS_OK && info.resumed) {
        atomic_fetch_add(&g_world->resumed, 1);
    }
    atomic_fetch_add(&g_world->setups, 1);
    if (g_world->close_on_setup) {
        rs_channel_shutdown(channel, RS_OK);
        return;
    }
    if (g_world->to_send) {
        rs_channel_slot_t *slot = rs_channel_slot_get_right(rs_channel_slot_get_right(rs_channel_get_first_slot(channel)));
        pump_fill((pumper_t *)rs_channel_slot_get_handler(slot)->impl);
    }
}

static void on_client_shutdown(rs_client_bootstrap_t *b, rs_channel_t *c, int error, void *ud) {
    (void)b, (void)c, (void)ud, (void)error;
    atomic_fetch_add(&g_world->shutdowns, 1);
}

/* >>sign_async: a signer thread with the demo key, one question at a time
 * (the handshakes run one after another). */
typedef struct signer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool stop;
    rs_tls_sign_op_t *op;
    rs_tls_hash_t hash;
    unsigned char digest[64];
    size_t digest_len, sig_capacity;
    br_skey_decoder_context key;
} signer_t;

static signer_t g_signer;

static const br_hash_class *signer_hash_class(rs_tls_hash_t hash) {
    switch (hash) {
    case RS_TLS_HASH_SHA1: return &br_sha1_vtable;
    case RS_TLS_HASH_SHA224: return &br_sha224_vtable;
    case RS_TLS_HASH_SHA256: return &br_sha256_vtable;
    case RS_TLS_HASH_SHA384: return &br_sha384_vtable;
    case RS_TLS_HASH_SHA512: return &br_sha512_vtable;
    default: return NULL;
    }
}

static void *signer_main(void *arg) {
    signer_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->op && !s->stop) pthread_cond_wait(&s->cv, &s->mu);
        if (!s->op) break;
        rs_tls_sign_op_t *op = s->op;
        const br_hash_class *hf = signer_hash_class(s->hash);
        unsigned char sig[160];
        size_t n = hf ? br_ecdsa_sign_asn1_get_default()(br_ec_get_default(), hf, s->digest,
                                                          br_skey_decoder_get_ec(&s->key), sig)
                      : 0;
        s->op = NULL;
        pthread_mutex_unlock(&s->mu);
        if (n == 0 || n > s->sig_capacity) fail("tls_sign_async", "the signer could not sign");
        check_rs(rs_tls_sign_op_complete(op, RS_OK, sig, n), "rs_tls_sign_op_complete");
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static int signer_sign_async(rs_tls_sign_op_t *op, rs_tls_sign_algorithm_t algorithm, rs_tls_hash_t hash,
                             const uint8_t *digest, size_t digest_len, size_t sig_capacity, void *user_data) {
    signer_t *s = user_data;
    if (algorithm != RS_TLS_SIGN_ECDSA || digest_len > sizeof s->digest) return RS_ETLS_BAD_KEY;
    pthread_mutex_lock(&s->mu);
    if (s->op) fail("tls_sign_async", "two questions at once");
    s->op = op;
    s->hash = hash;
    memcpy(s->digest, digest, digest_len);
    s->digest_len = digest_len;
    s->sig_capacity = sig_capacity;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return RS_OK;
}

static void signer_start(signer_t *s) {
    rs_pem_list_t list = {0};
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    check_rs(rs_pem_parse(NULL, rs_byte_cursor_from_cstr(demo_key), &list), "rs_pem_parse");
    br_skey_decoder_init(&s->key);
    br_skey_decoder_push(&s->key, list.objects[0].data.buffer, list.objects[0].data.len);
    rs_pem_list_cleanup(&list);
    if (br_skey_decoder_key_type(&s->key) != BR_KEYTYPE_EC) fail("tls_sign_async", "the demo key is not EC");
    if (pthread_create(&s->thread, NULL, signer_main, s) != 0) fail("tls_sign_async", "pthread_create");
}

static void signer_stop(signer_t *s) {
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

static rs_tls_ctx_t *rs_ctx(bool server, bool cache, bool sign_async) {
    int err = RS_OK;
    rs_tls_ctx_options_t o = {.is_server = server, .disable_session_cache = !cache};
    rs_tls_private_key_t pk = {.sign_async = signer_sign_async, .user_data = &g_signer};
    if (server) {
        o.cert_pem = rs_byte_cursor_from_cstr(demo_cert);
        if (sign_async) {
            o.private_key = &pk;
        } else {
            o.key_pem = rs_byte_cursor_from_cstr(demo_key);
        }
    } else {
        o.ca_pem = rs_byte_cursor_from_cstr(demo_ca);
    }
    rs_tls_ctx_t *ctx = rs_tls_ctx_new(&o, &err);
    check_rs(ctx ? RS_OK : err, "rs_tls_ctx_new");
    return ctx;
}

static void rs_world_init(rs_world_t *w, bool cache, bool sign_async) {
    int err = RS_OK;
    memset(w, 0, sizeof *w);
    g_world = w;
    w->server_ctx = rs_ctx(true, cache, sign_async);
    w->client_ctx = rs_ctx(false, cache, false);
    w->server_tls = rs_tls_installer_new(&(rs_tls_connection_options_t){.ctx = w->server_ctx}, &err);
    w->client_tls = rs_tls_installer_new(&(rs_tls_connection_options_t){.ctx = w->client_ctx, .server_name = "localhost"}, &err);
    check_rs(w->server_tls && w->client_tls ? RS_OK : err, "rs_tls_installer_new");
    w->group = rs_event_loop_group_new(&(rs_event_loop_group_options_t){.loop_count = 2}, &err);
    check_rs(w->group ? RS_OK : err, "group");
    w->server = rs_server_bootstrap_new(&(rs_server_bootstrap_options_t){.group = w->group}, &err);
    w->client = rs_client_bootstrap_new(&(rs_client_bootstrap_options_t){.group = w->group}, &err);
    check_rs(w->server && w->client ? RS_OK : err, "bootstraps");
    rs_channel_installer_t *inst[] = {w->server_tls, &g_server_app};
    w->listener = rs_server_bootstrap_new_listener(w->server, &(rs_server_listener_options_t){
        .host = "127.0.0.1", .installers = inst, .installer_count = 2, .enable_read_back_pressure = true,
        .backlog = 2048, .socket_options = &g_socket_options, .on_incoming_setup = on_incoming_setup, .on_incoming_shutdown = on_incoming_shutdown}, &err);
    check_rs(w->listener ? RS_OK : err, "listener");
    rs_endpoint_t addr;
    check_rs(rs_server_listener_get_address(w->listener, &addr), "address");
    w->port = addr.port;
}

static void rs_world_connect(rs_world_t *w) {
    rs_channel_installer_t *inst[] = {w->client_tls, &g_client_app};
    check_rs(rs_client_bootstrap_connect(w->client, &(rs_client_connect_options_t){
        .host = "127.0.0.1", .port = w->port, .installers = inst, .installer_count = 2,
        .socket_options = &g_socket_options, .enable_read_back_pressure = true, .on_setup = on_client_setup, .on_shutdown = on_client_shutdown}),
        "connect");
}

static void wait_for(_Atomic int *counter, int n) {
    uint64_t deadline = bench_now_ns() + 50 * RS_NS_PER_SEC;
    while (atomic_load(counter) < n) {
        if (bench_now_ns() > deadline) fail("wait", "timed out");
        rs_thread_sleep_ns(100 * 1000);
    }
}

static void rs_world_destroy(rs_world_t *w) {
    rs_server_bootstrap_destroy_listener(w->listener, true);
    rs_client_bootstrap_destroy(w->client);
    rs_server_bootstrap_destroy(w->server);
    rs_event_loop_group_destroy(w->group);
    rs_tls_installer_destroy(w->server_tls);
    rs_tls_installer_destroy(w->client_tls);
    rs_tls_ctx_release(w->server_ctx);
    rs_tls_ctx_release(w->client_ctx);
    if (atomic_load(&w->errors)) fail("reseau", "a connection failed");
}

static double reseau_pump(int arg) {
    rs_world_t *w = xcalloc(1, sizeof *w);
    (void)arg;
    rs_world_init(w, false, false);
    w->to_send = PUMP_BYTES;
    uint64_t start = bench_now_ns();
    rs_world_connect(w);
    wait_for(&w->setups, 1);
    start = bench_now_ns(); /* after the handshake, as the peer measures */
    uint64_t deadline = start + 50 * RS_NS_PER_SEC;
    while (atomic_load(&w->received) < PUMP_BYTES && bench_now_ns() < deadline) rs_thread_sleep_ns(RS_NS_PER_MS);
    double mb = (double)atomic_load(&w->received) / 1e6, secs = (double)(atomic_load(&w->done_ns) - start) / 1e9;
    if (atomic_load(&w->received) < PUMP_BYTES) fail("tls_pump", "timed out");
    rs_world_destroy(w);
    free(w);
    return mb / secs;
}

/* arg: 0 full handshakes, 1 resumed, 2 full with the server's key behind
 * sign_async (the signer thread). */
static double reseau_handshakes(int arg) {
    rs_world_t *w = xcalloc(1, sizeof *w);
    bool resumed = arg == 1, sign_async = arg == 2;
    if (sign_async) signer_start(&g_signer);
    rs_world_init(w, resumed, sign_async);
    w->close_on_setup = true;
    if (resumed) { /* a first, full one, whose session the others resume */
        rs_world_connect(w);
        wait_for(&w->shutdowns, 1);
        atomic_store(&w->setups, 0), atomic_store(&w->shutdowns, 0), atomic_store(&w->resumed, 0);
    }
    uint64_t start = bench_now_ns();
    for (int i = 0; i < HANDSHAKES; i++) {
        rs_world_connect(w);
        wait_for(&w->shutdowns, i + 1);
    }
    uint64_t elapsed = bench_now_ns() - start;
    if (resumed && atomic_load(&w->resumed) != HANDSHAKES) fail("tls_resumed", "a handshake was not resumed");
    g_work = HANDSHAKES;
    rs_world_destroy(w);
    free(w);
    if (sign_async) signer_stop(&g_signer);
    return per_second(HANDSHAKES, elapsed);
}

static double reseau_handshakes_key_in_memory(int arg) {
    (void)arg;
    return reseau_handshakes(0);
}

static size_t heap_in_use(void) {
    malloc_trim(0);
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static double reseau_idle_memory(int arg) {
    rs_world_t *w = xcalloc(1, sizeof *w);
    (void)arg;
    rs_world_init(w, false, false);
    w->close_on_setup = false;
    /* One connection first: pools and caches that do not grow per connection. */
    rs_world_connect(w);
    wait_for(&w->setups, 1);
    wait_for(&w->server_setups, 1);
    size_t before = heap_in_use();
    for (int i = 0; i < IDLE_CONNECTIONS; i++) {
        rs_world_connect(w);
        if (i % 64 == 63) wait_for(&w->setups, i + 2); /* do not overflow the accept queue */
    }
    wait_for(&w->setups, IDLE_CONNECTIONS + 1);
    wait_for(&w->server_setups, IDLE_CONNECTIONS + 1);
    size_t after = heap_in_use();
    rs_world_destroy(w);
    free(w);
    return (double)(after - before) / (2.0 * IDLE_CONNECTIONS) / 1024.0;
}

/* ------------------------------------------------------------ OpenSSL side */

static SSL_CTX *ossl_ctx(bool server, bool cache) {
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) fail("SSL_CTX_new", "failed");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256");
    BIO *b;
    if (server) {
        b = BIO_new_mem_buf(demo_cert, -1);
        X509 *cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
        b = BIO_new_mem_buf(demo_key, -1);
        EVP_PKEY *key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        BIO_free(b);
        if (!cert || !key || SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1)
            fail("OpenSSL", "credentials");
        X509_free(cert);
        EVP_PKEY_free(key);
        SSL_CTX_set_session_cache_mode(ctx, cache ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET); /* session IDs, as BearSSL */
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"bench", 5);
    } else {
        b = BIO_new_mem_buf(demo_ca, -1);
        X509 *ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
        if (!ca || X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca) != 1) fail("OpenSSL", "CA");
        X509_free(ca);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    return ctx;
}

typedef struct ossl_run {
    int listen_fd;
    uint16_t port;
    SSL_CTX *server_ctx;
    int connections;   /* to accept */
    size_t to_read;    /* per connection */
    uint64_t done_ns;
} ossl_run_t;

static int tcp_listener(uint16_t *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 128) ||
        getsockname(fd, (struct sockaddr *)&a, &len))
        fail("listener", "socket");
    *port = ntohs(a.sin_port);
    return fd;
}

static int tcp_connect(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) fail("connect", "socket");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void *ossl_server(void *arg) {
    ossl_run_t *r = arg;
    static char buf[PUMP_CHUNK];
    for (int i = 0; i < r->connections; i++) {
        int fd = accept(r->listen_fd, NULL, NULL), one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        SSL *ssl = SSL_new(r->server_ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1) fail("SSL_accept", ERR_reason_error_string(ERR_get_error()));
        size_t got = 0;
        while (got < r->to_read) {
            int n = SSL_read(ssl, buf, sizeof buf);
            if (n <= 0) fail("SSL_read", "failed");
            got += (size_t)n;
        }
        if (r->to_read) r->done_ns = bench_now_ns();
        SSL_shutdown(ssl);
        SSL_free(ssl);
        close(fd);
    }
    return NULL;
}

static double openssl_connections(int connections, size_t bytes, bool cache, int *resumed_out) {
    ossl_run_t r = {.connections = connections, .to_read = bytes};
    SSL_CTX *client_ctx = ossl_ctx(false, cache);
    r.server_ctx = ossl_ctx(true, cache);
    r.listen_fd = tcp_listener(&r.port);
    pthread_t t;
    pthread_create(&t, NULL, ossl_server, &r);
    static char chunk[PUMP_CHUNK];
    memset(chunk, 'p', sizeof chunk);
    SSL_SESSION *session = NULL;
    uint64_t start = bench_now_ns();
    int resumed = 0;
    for (int i = 0; i < connections; i++) {
        int fd = tcp_connect(r.port);
        SSL *ssl = SSL_new(client_ctx);
        SSL_set_fd(ssl, fd);
        SSL_set_tlsext_host_name(ssl, "localhost");
        SSL_set1_host(ssl, "localhost");
        if (session) SSL_set_session(ssl, session);
        if (SSL_connect(ssl) != 1) fail("SSL_connect", ERR_reason_error_string(ERR_get_error()));
        resumed += SSL_session_reused(ssl);
        if (cache && !session) session = SSL_get1_session(ssl);
        if (bytes) {
            start = bench_now_ns(); /* after the handshake */
            for (size_t sent = 0; sent < bytes; sent += sizeof chunk)
                if (SSL_write(ssl, chunk, sizeof chunk) <= 0) fail("SSL_write", "failed");
        }
        SSL_shutdown(ssl);
        SSL_free(ssl);
        close(fd);
    }
    pthread_join(t, NULL);
    uint64_t end = bytes ? r.done_ns : bench_now_ns();
    if (session) SSL_SESSION_free(session);
    close(r.listen_fd);
    SSL_CTX_free(client_ctx);
    SSL_CTX_free(r.server_ctx);
    if (resumed_out) *resumed_out = resumed;
    return bytes ? (double)bytes / 1e6 / ((double)(end - start) / 1e9) : per_second(connections, end - start);
}

static double openssl_pump(int arg) {
    (void)arg;
    return openssl_connections(1, PUMP_BYTES, false, NULL);
}

static double openssl_handshakes(int resumed) {
    int n = 0;
    g_work = HANDSHAKES;
    double rate = openssl_connections(HANDSHAKES + (resumed ? 1 : 0), 0, resumed, &n);
    if (resumed && n != HANDSHAKES) fail("tls_resumed/openssl", "a handshake was not resumed");
    return rate;
}

/* 1000 SSL pairs over BIO pairs, handshaken in this thread. */
static double openssl_idle_memory(int arg) {
    (void)arg;
    SSL_CTX *cctx = ossl_ctx(false, false), *sctx = ossl_ctx(true, false);
    SSL **ssl = xcalloc(2 * IDLE_CONNECTIONS + 2, sizeof *ssl);
    size_t before = 0;
    for (int i = 0; i <= IDLE_CONNECTIONS; i++) {
        if (i == 1) before = heap_in_use(); /* after a first pair, as for reseau */
        BIO *cb, *sb;
        BIO_new_bio_pair(&cb, 0, &sb, 0);
        SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
        SSL_set_bio(c, cb, cb);
        SSL_set_bio(s, sb, sb);
        SSL_set_tlsext_host_name(c, "localhost");
        SSL_set_connect_state(c);
        SSL_set_accept_state(s);
        for (int k = 0; k < 20 && (!SSL_is_init_finished(c) || !SSL_is_init_finished(s)); k++) {
            SSL_do_handshake(c);
            SSL_do_handshake(s);
        }
        if (!SSL_is_init_finished(c) || !SSL_is_init_finished(s)) fail("OpenSSL", "BIO-pair handshake");
        ssl[2 * i] = c;
        ssl[2 * i + 1] = s;
    }
    size_t after = heap_in_use();
    for (int i = 0; i < 2 * IDLE_CONNECTIONS + 2; i++) SSL_free(ssl[i]);
    free(ssl);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return (double)(after - before) / (2.0 * IDLE_CONNECTIONS) / 1024.0;
}

static const scenario_t g_scenarios[] = {
    {.name = "tls_pump", .reseau_fn = reseau_pump, .peer_fn = openssl_pump, .peer = "openssl", .unit = "MB/s"},
    {.name = "tls_handshakes", .reseau_fn = reseau_handshakes, .peer_fn = openssl_handshakes, .arg = 0,
     .peer = "openssl", .work_unit = "handshake"},
    {.name = "tls_resumed", .reseau_fn = reseau_handshakes, .peer_fn = openssl_handshakes, .arg = 1,
     .peer = "openssl", .work_unit = "handshake"},
    {.name = "tls_sign_async", .reseau_fn = reseau_handshakes, .peer_fn = reseau_handshakes_key_in_memory,
     .arg = 2, .peer = "key_in_memory", .work_unit = "handshake"},
    {.name = "tls_idle_memory", .reseau_fn = reseau_idle_memory, .peer_fn = openssl_idle_memory, .peer = "openssl",
     .unit = "KB"},
};

int main(int argc, char **argv) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 8192) {
        rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return bench_main(argc, argv, g_scenarios, sizeof g_scenarios / sizeof g_scenarios[0]);
}
