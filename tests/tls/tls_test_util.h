/*
 * Helpers for the tls suite: test certificates made once per process by
 * make_certs.sh (openssl CLI) in a temporary directory (on Windows, where a
 * test under Wine can run no shell script, made once at build time by meson
 * into RS_TLS_CERT_DIR), and a pair of testing
 * channels (client and server) whose bytes are shuttled by hand, so a TLS
 * conversation runs in memory, deterministically, on the test thread.
 */
#ifndef RESEAU_TLS_TEST_UTIL_H
#define RESEAU_TLS_TEST_UTIL_H

#define RESEAU_TLS_IMPLEMENTATION
#include "test_util.h"
#include "reseau_tls.h"

#include <errno.h>
#include <sys/stat.h>
#if RESEAU_OS_WINDOWS
#include <direct.h> /* _mkdir */
#else
#include <unistd.h>
#endif

#if !defined(RS_TLS_CERT_SCRIPT) && !defined(RS_TLS_CERT_DIR)
#error "RS_TLS_CERT_SCRIPT: the path of tests/tls/make_certs.sh, or RS_TLS_CERT_DIR: where it ran (set by meson)"
#endif

#ifdef RS_TLS_CERT_DIR
/* Made by the build (tests/meson.build), kept for the next run. */
static const char *tls_test_cert_dir(void) {
    return RS_TLS_CERT_DIR;
}

static void tls_test_remove_cert_dir(void) {
}
#else
static char tls_test__dir[256];

/* The directory holding the test certificates (made on first call). */
static const char *tls_test_cert_dir(void) {
    if (!tls_test__dir[0]) {
        char cmd[600];
        snprintf(tls_test__dir, sizeof(tls_test__dir), "/tmp/reseau-tls-XXXXXX");
        if (!mkdtemp(tls_test__dir)) {
            fail_msg("mkdtemp failed");
        }
        snprintf(cmd, sizeof(cmd), "sh '%s' '%s'", RS_TLS_CERT_SCRIPT, tls_test__dir);
        if (system(cmd) != 0) {
            fail_msg("make_certs.sh failed; see %s/make_certs.log", tls_test__dir);
        }
    }
    return tls_test__dir;
}

static void tls_test_remove_cert_dir(void) {
    if (tls_test__dir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tls_test__dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", tls_test__dir);
        }
        tls_test__dir[0] = '\0';
    }
}
#endif

/* mkdir DIR (it may exist), for files the tests add beside the certificates. */
static RS__UNUSED void tls_test_mkdir(const char *dir) {
#if RESEAU_OS_WINDOWS
    int rc = _mkdir(dir);
#else
    int rc = mkdir(dir, 0700);
#endif
    assert_true(rc == 0 || errno == EEXIST);
}

/* Copy file `from` to `to`, in C: no cp on Windows. */
static RS__UNUSED void tls_test_copy_file(const char *from, const char *to) {
    char buf[4096];
    size_t n;
    FILE *in = fopen(from, "rb");
    FILE *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
        assert_int_equal(fwrite(buf, 1, n, out), n);
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* setenv/unsetenv, and _putenv_s on Windows (an empty value removes). */
static RS__UNUSED void tls_test_setenv(const char *name, const char *value) {
#if RESEAU_OS_WINDOWS
    assert_int_equal(_putenv_s(name, value ? value : ""), 0);
#else
    assert_int_equal(value ? setenv(name, value, 1) : unsetenv(name), 0);
#endif
}

/* "DIR/name", in one of a few rotating static buffers. */
static const char *tls_test_path(const char *name) {
    static char bufs[64][400];
    static unsigned next;
    char *b = bufs[next++ % 64]; /* callers keep a few options structs alive at once */
    snprintf(b, sizeof(bufs[0]), "%s/%s", tls_test_cert_dir(), name);
    return b;
}

/* Options for a server with the leaf `name` (name.pem, name.key). */
static RS__UNUSED rs_tls_ctx_options_t tls_test_server_options(const char *name) {
    static char cert[8][64], key[8][64];
    static unsigned next;
    unsigned i = next++ % 8;
    rs_tls_ctx_options_t o;
    memset(&o, 0, sizeof(o));
    o.is_server = true;
    o.allocator = &rs_test_allocator;
    snprintf(cert[i], sizeof(cert[i]), "%s.pem", name);
    snprintf(key[i], sizeof(key[i]), "%s.key", name);
    o.cert_file = tls_test_path(cert[i]);
    o.key_file = tls_test_path(key[i]);
    return o;
}

/* Options for a client trusting ca.pem. */
static RS__UNUSED rs_tls_ctx_options_t tls_test_client_options(void) {
    rs_tls_ctx_options_t o;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.ca_file = tls_test_path("ca.pem");
    return o;
}

static RS__UNUSED rs_tls_ctx_t *tls_test_ctx(const rs_tls_ctx_options_t *o) {
    int err = RS_EUNKNOWN;
    rs_tls_ctx_t *ctx = rs_tls_ctx_new(o, &err);
    if (!ctx) {
        fail_msg("rs_tls_ctx_new: %s", rs_err_name(err));
    }
    return ctx;
}

/* ------------------------------------------------------- a key to sign with */

/* A private key of the test certificates, decoded by BearSSL, to sign with
 * as a sign hook would (rs_tls_sign_fn's contract): for tests of the hooks
 * that need no token. The decoder holds the key. */
typedef struct tls_test_key {
    br_skey_decoder_context dc;
    int type; /* BR_KEYTYPE_RSA or BR_KEYTYPE_EC */
} tls_test_key_t;

/* Load `name` (e.g. "server.key") from the certificate directory. */
static RS__UNUSED void tls_test_key_load(tls_test_key_t *k, const char *name) {
    rs_pem_list_t list;
    size_t i;
    bool found = false;
    memset(&list, 0, sizeof(list));
    assert_int_equal(rs_pem_parse_file(&rs_test_allocator, tls_test_path(name), &list), RS_OK);
    br_skey_decoder_init(&k->dc);
    for (i = 0; i < list.count && !found; ++i) {
        if (rs_pem_label_is_private_key(list.objects[i].label)) {
            br_skey_decoder_push(&k->dc, list.objects[i].data.buffer, list.objects[i].data.len);
            found = true;
        }
    }
    rs_pem_list_cleanup(&list);
    assert_true(found);
    assert_int_equal(br_skey_decoder_last_error(&k->dc), 0);
    k->type = br_skey_decoder_key_type(&k->dc);
    assert_true(k->type == BR_KEYTYPE_RSA || k->type == BR_KEYTYPE_EC);
}

/* Sign as rs_tls_sign_fn does: RS_OK, or RS_ETLS_BAD_KEY (wrong algorithm
 * for the key, no room, an unknown hash, BearSSL refused). */
static RS__UNUSED int tls_test_key_sign(const tls_test_key_t *k, rs_tls_sign_algorithm_t alg, rs_tls_hash_t hash,
                                        const uint8_t *digest, size_t digest_len, uint8_t *sig, size_t cap,
                                        size_t *sig_len) {
    if (k->type == BR_KEYTYPE_RSA && alg == RS_TLS_SIGN_RSA_PKCS1) {
        const br_rsa_private_key *sk = br_skey_decoder_get_rsa(&k->dc);
        size_t n = (sk->n_bitlen + 7) / 8;
        const unsigned char *oid;
        switch (hash) {
        case RS_TLS_HASH_MD5_SHA1: oid = NULL; break; /* no DigestInfo */
        case RS_TLS_HASH_SHA1: oid = BR_HASH_OID_SHA1; break;
        case RS_TLS_HASH_SHA224: oid = BR_HASH_OID_SHA224; break;
        case RS_TLS_HASH_SHA256: oid = BR_HASH_OID_SHA256; break;
        case RS_TLS_HASH_SHA384: oid = BR_HASH_OID_SHA384; break;
        case RS_TLS_HASH_SHA512: oid = BR_HASH_OID_SHA512; break;
        default: return RS_ETLS_BAD_KEY;
        }
        if (cap < n || !br_rsa_pkcs1_sign_get_default()(oid, digest, digest_len, sk, sig)) {
            return RS_ETLS_BAD_KEY;
        }
        *sig_len = n;
        return RS_OK;
    }
    if (k->type == BR_KEYTYPE_EC && alg == RS_TLS_SIGN_ECDSA) {
        const br_hash_class *hf;
        unsigned char out[160]; /* the longest DER signature: P-521 */
        size_t n;
        switch (hash) {
        case RS_TLS_HASH_SHA1: hf = &br_sha1_vtable; break;
        case RS_TLS_HASH_SHA224: hf = &br_sha224_vtable; break;
        case RS_TLS_HASH_SHA256: hf = &br_sha256_vtable; break;
        case RS_TLS_HASH_SHA384: hf = &br_sha384_vtable; break;
        case RS_TLS_HASH_SHA512: hf = &br_sha512_vtable; break;
        default: return RS_ETLS_BAD_KEY;
        }
        (void)digest_len;
        n = br_ecdsa_sign_asn1_get_default()(br_ec_get_default(), hf, digest, br_skey_decoder_get_ec(&k->dc), out);
        if (n == 0 || n > cap) {
            return RS_ETLS_BAD_KEY;
        }
        memcpy(sig, out, n);
        *sig_len = n;
        return RS_OK;
    }
    return RS_ETLS_BAD_KEY;
}

/* ------------------------------------------------------------ app handler */

/* The rightmost handler: records what it reads, reopens its window by what it
 * consumed (unless `hold_window`), and echoes when `echo` is set. */
typedef struct tls_test_app {
    rs_channel_handler_t base;
    rs_byte_buf_t received;
    bool echo;
    bool hold_window;
    size_t window;
    int shutdown_error[2];
    bool shut[2];
    int *destroyed;
} tls_test_app_t;

static int tls_test_app_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *m) {
    tls_test_app_t *app = (tls_test_app_t *)h->impl;
    size_t len = m->message_data.len;
    assert_int_equal(rs_byte_buf_append(&app->received, m->message_data.buffer, len), RS_OK);
    if (app->echo) {
        rs_io_message_t *out = rs_channel_acquire_message_from_pool(rs_channel_slot_get_channel(slot),
                                                                    RS_IO_MESSAGE_APPLICATION_DATA, len);
        assert_non_null(out);
        memcpy(out->message_data.buffer, m->message_data.buffer, len);
        out->message_data.len = len;
        assert_int_equal(rs_channel_slot_send_message(slot, out, RS_CHANNEL_DIR_WRITE), RS_OK);
    }
    rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), m);
    if (!app->hold_window) {
        rs_channel_slot_increment_read_window(slot, len);
    }
    return RS_OK;
}

static int tls_test_app_write(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *m) {
    (void)h;
    return rs_channel_slot_send_message(slot, m, RS_CHANNEL_DIR_WRITE);
}

static int tls_test_app_shutdown(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_channel_direction_t dir,
                                 int error, bool abort_immediately) {
    tls_test_app_t *app = (tls_test_app_t *)h->impl;
    app->shut[dir] = true;
    app->shutdown_error[dir] = error;
    return rs_channel_slot_on_handler_shutdown_complete(slot, dir, error, abort_immediately);
}

static size_t tls_test_app_window(rs_channel_handler_t *h) {
    return ((tls_test_app_t *)h->impl)->window;
}

static void tls_test_app_destroy(rs_channel_handler_t *h) {
    tls_test_app_t *app = (tls_test_app_t *)h->impl;
    if (app->destroyed) {
        ++*app->destroyed;
    }
    rs_byte_buf_cleanup(&app->received);
    test_free(app);
}

static const rs_channel_handler_vtable_t tls_test_app_vtable = {
    tls_test_app_read, tls_test_app_write, NULL, tls_test_app_shutdown, tls_test_app_window, NULL,
    tls_test_app_destroy, NULL, NULL, NULL,
};

static tls_test_app_t *tls_test_app_new(size_t window) {
    tls_test_app_t *app = (tls_test_app_t *)test_calloc(1, sizeof(*app));
    app->base.vtable = &tls_test_app_vtable;
    app->base.impl = app;
    app->window = window;
    assert_int_equal(rs_byte_buf_init(&app->received, &rs_test_allocator, 1024), RS_OK);
    return app;
}

/* Send bytes from the app handler leftwards, in messages of up to 16 KiB. */
static RS__UNUSED void tls_test_app_send(tls_test_app_t *app, const void *data, size_t len) {
    const uint8_t *p = (const uint8_t *)data;
    rs_channel_slot_t *slot = app->base.slot;
    while (len) {
        size_t n = len < RS_MAX_FRAGMENT_SIZE ? len : RS_MAX_FRAGMENT_SIZE;
        rs_io_message_t *m = rs_channel_acquire_message_from_pool(rs_channel_slot_get_channel(slot),
                                                                  RS_IO_MESSAGE_APPLICATION_DATA, n);
        assert_non_null(m);
        if (n > m->message_data.capacity) {
            n = m->message_data.capacity;
        }
        memcpy(m->message_data.buffer, p, n);
        m->message_data.len = n;
        assert_int_equal(rs_channel_slot_send_message(slot, m, RS_CHANNEL_DIR_WRITE), RS_OK);
        p += n;
        len -= n;
    }
}

/* ------------------------------------------------------------------- pair */

typedef struct tls_test_side {
    rs_testing_channel_t *tc;
    rs_channel_handler_t *tls;
    tls_test_app_t *app;
    int negotiation_calls;
    int negotiation_error;
    bool close_on_negotiation; /* shut the channel down from the negotiation callback */
} tls_test_side_t;

typedef struct tls_test_pair {
    tls_test_side_t client;
    tls_test_side_t server;
    bool client_saw_eof;
    bool server_saw_eof;
} tls_test_pair_t;

static void tls_test_on_negotiation(rs_channel_handler_t *handler, rs_channel_slot_t *slot, int error, void *ud) {
    tls_test_side_t *side = (tls_test_side_t *)ud;
    assert_ptr_equal(handler, side->tls);
    side->negotiation_calls++;
    side->negotiation_error = error;
    if (side->close_on_negotiation && !error) {
        rs_channel_shutdown(rs_channel_slot_get_channel(slot), RS_OK);
    }
}

/* One side: a testing channel, a TLS handler, an app handler; negotiation
 * started. `conn` may be NULL (defaults, server_name "localhost"). */
static RS__UNUSED void tls_test_side_init(tls_test_side_t *side, rs_tls_ctx_t *ctx,
                                          const rs_tls_connection_options_t *conn, bool back_pressure) {
    rs_testing_channel_options_t to;
    rs_tls_connection_options_t co;
    int err = RS_EUNKNOWN;
    memset(side, 0, sizeof(*side));
    memset(&to, 0, sizeof(to));
    to.allocator = &rs_test_allocator;
    to.enable_read_back_pressure = back_pressure;
    side->tc = rs_testing_channel_new(&to, &err);
    assert_non_null(side->tc);
    if (conn) {
        co = *conn;
    } else {
        memset(&co, 0, sizeof(co));
        co.server_name = "localhost";
    }
    co.ctx = ctx;
    co.on_negotiation_result = tls_test_on_negotiation;
    co.user_data = side;
    side->tls = rs_tls_handler_new(&co, &err);
    assert_non_null(side->tls);
    assert_int_equal(rs_testing_channel_add_handler(side->tc, side->tls), RS_OK);
    side->app = tls_test_app_new(back_pressure ? 64 * 1024 : SIZE_MAX);
    assert_int_equal(rs_testing_channel_add_handler(side->tc, &side->app->base), RS_OK);
    assert_int_equal(rs_tls_handler_start_negotiation(side->tls), RS_OK);
}

/* Move bytes both ways until nothing moves. Returns the bytes moved. */
static RS__UNUSED size_t tls_test_shuttle(tls_test_pair_t *p) {
    size_t total = 0;
    int quiet = 0;
    rs_byte_buf_t buf;
    assert_int_equal(rs_byte_buf_init(&buf, &rs_test_allocator, 4096), RS_OK);
    while (quiet < 2) {
        size_t moved = 0;
        rs_testing_channel_run(p->client.tc);
        rs_testing_channel_run(p->server.tc);
        rs_byte_buf_reset(&buf);
        assert_int_equal(rs_testing_channel_drain_written(p->client.tc, &buf), RS_OK);
        if (buf.len && !rs_testing_channel_is_shut_down(p->server.tc, NULL)) {
            rs_testing_channel_push_read(p->server.tc, rs_byte_cursor_from_buf(&buf));
        }
        moved += buf.len;
        rs_byte_buf_reset(&buf);
        assert_int_equal(rs_testing_channel_drain_written(p->server.tc, &buf), RS_OK);
        if (buf.len && !rs_testing_channel_is_shut_down(p->client.tc, NULL)) {
            rs_testing_channel_push_read(p->client.tc, rs_byte_cursor_from_buf(&buf));
        }
        moved += buf.len;
        total += moved;
        /* A side that went down closes its "socket": the other sees the FIN. */
        if (rs_testing_channel_is_shut_down(p->client.tc, NULL) && !p->server_saw_eof) {
            p->server_saw_eof = true;
            rs_testing_channel_push_eof(p->server.tc);
            moved = 1;
        }
        if (rs_testing_channel_is_shut_down(p->server.tc, NULL) && !p->client_saw_eof) {
            p->client_saw_eof = true;
            rs_testing_channel_push_eof(p->client.tc);
            moved = 1;
        }
        quiet = moved ? 0 : quiet + 1;
    }
    rs_byte_buf_cleanup(&buf);
    return total;
}

static RS__UNUSED void tls_test_pair_init(tls_test_pair_t *p, rs_tls_ctx_t *client_ctx,
                                          const rs_tls_connection_options_t *client_conn, rs_tls_ctx_t *server_ctx,
                                          bool back_pressure) {
    memset(p, 0, sizeof(*p));
    tls_test_side_init(&p->client, client_ctx, client_conn, back_pressure);
    tls_test_side_init(&p->server, server_ctx, NULL, back_pressure);
}

static RS__UNUSED void tls_test_pair_destroy(tls_test_pair_t *p) {
    rs_testing_channel_destroy(p->client.tc);
    rs_testing_channel_destroy(p->server.tc);
}

#endif /* RESEAU_TLS_TEST_UTIL_H */
