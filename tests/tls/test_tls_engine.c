/* The TLS handler over an engine of the test's own (engine.h): a toy
 * protocol whose records are a type byte, a 2-byte big-endian length and the
 * payload XORed with a key. The client's hello carries the server name and
 * its ALPN list; the server answers with the protocol it picked. Both ends
 * run the toy engine, on two testing channels whose bytes the test moves. */
#include "tls_test_util.h"

#define TOY_KEY 0x5Au
#define TOY_HEADER 3u
#define TOY_MAX_PAYLOAD 4096u
#define TOY_OUT_SIZE (4u * (TOY_HEADER + TOY_MAX_PAYLOAD))
#define TOY_HELLO 'H'
#define TOY_DATA 'D'
#define TOY_CLOSE 'C'
/* The toy engine's own code for a malformed record, to see it reach the
 * channel's shutdown unchanged. */
#define TOY_ERR_MALFORMED RS_ETLS_PROTOCOL

typedef struct toy_engine {
    rs_tls_engine_t base;
    const rs_allocator_t *allocator;
    bool is_server;
    bool negotiated;
    bool close_queued;
    bool closed;
    int error;
    int *destroyed; /* counts destroys, for the test */
    char server_name[64]; /* server: the client's SNI */
    char alpn[32];        /* the agreed protocol */
    char offered[8][32];  /* the ALPN names this side knows */
    size_t offered_count;
    unsigned char in[TOY_HEADER + TOY_MAX_PAYLOAD]; /* the record being received */
    size_t in_len;
    unsigned char app_in[TOY_MAX_PAYLOAD]; /* opened plaintext */
    size_t app_in_off, app_in_len;
    unsigned char app_out[TOY_MAX_PAYLOAD]; /* plaintext waiting to be sealed */
    size_t app_out_len;
    unsigned char out[TOY_OUT_SIZE]; /* records to send */
    size_t out_off, out_len;
} toy_engine_t;

typedef struct toy_settings {
    int *destroyed;
    int fail_with; /* the factory fails with this code (0: it does not) */
} toy_settings_t;

static toy_engine_t *toy_of(rs_tls_engine_t *engine) {
    return (toy_engine_t *)engine->impl;
}

static void toy_seal(toy_engine_t *e, unsigned char type, const unsigned char *payload, size_t len) {
    unsigned char *p;
    size_t i;
    if (e->out_off && e->out_off == e->out_len) {
        e->out_off = e->out_len = 0;
    }
    assert_true(e->out_len + TOY_HEADER + len <= sizeof(e->out));
    p = e->out + e->out_len;
    p[0] = type;
    p[1] = (unsigned char)(len >> 8);
    p[2] = (unsigned char)len;
    for (i = 0; i < len; ++i) {
        p[TOY_HEADER + i] = (unsigned char)(payload[i] ^ TOY_KEY);
    }
    e->out_len += TOY_HEADER + len;
}

static bool toy_out_has_room(const toy_engine_t *e) {
    return sizeof(e->out) - (e->out_len - e->out_off) >= 2 * (TOY_HEADER + TOY_MAX_PAYLOAD) &&
           sizeof(e->out) - e->out_len >= TOY_HEADER + TOY_MAX_PAYLOAD;
}

static void toy_fail(toy_engine_t *e, int error) {
    e->closed = true;
    e->error = error;
}

/* Hello payload: name length, name, then each ALPN name (length, bytes). */
static void toy_send_hello(toy_engine_t *e, const char *name) {
    unsigned char p[256];
    size_t n = 0, i, len = name ? strlen(name) : 0;
    p[n++] = (unsigned char)len;
    memcpy(p + n, name ? name : "", len);
    n += len;
    for (i = 0; i < e->offered_count; ++i) {
        len = strlen(e->offered[i]);
        p[n++] = (unsigned char)len;
        memcpy(p + n, e->offered[i], len);
        n += len;
    }
    toy_seal(e, TOY_HELLO, p, n);
}

static bool toy_knows(const toy_engine_t *e, const char *name) {
    size_t i;
    for (i = 0; i < e->offered_count; ++i) {
        if (strcmp(e->offered[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static void toy_on_hello(toy_engine_t *e, const unsigned char *p, size_t len) {
    size_t off = 0;
    size_t name_len;
    if (e->negotiated || len < 1 || (name_len = p[0]) + 1 > len || name_len >= sizeof(e->server_name)) {
        toy_fail(e, TOY_ERR_MALFORMED);
        return;
    }
    if (e->is_server) {
        memcpy(e->server_name, p + 1, name_len);
    }
    off = 1 + name_len;
    while (off < len) {
        char name[32];
        size_t n = p[off++];
        if (n == 0 || n >= sizeof(name) || off + n > len) {
            toy_fail(e, TOY_ERR_MALFORMED);
            return;
        }
        memcpy(name, p + off, n);
        name[n] = '\0';
        off += n;
        if (!e->alpn[0] && (!e->is_server || toy_knows(e, name))) {
            memcpy(e->alpn, name, n + 1);
        }
    }
    if (e->is_server) { /* answer with the pick alone */
        e->offered_count = 0;
        if (e->alpn[0]) {
            memcpy(e->offered[0], e->alpn, strlen(e->alpn) + 1);
            e->offered_count = 1;
        }
        toy_send_hello(e, NULL);
    }
    e->negotiated = true;
}

static void toy_on_record(toy_engine_t *e) {
    unsigned char *payload = e->in + TOY_HEADER;
    size_t len = e->in_len - TOY_HEADER;
    size_t i;
    for (i = 0; i < len; ++i) {
        payload[i] = (unsigned char)(payload[i] ^ TOY_KEY);
    }
    e->in_len = 0;
    switch (e->in[0]) {
    case TOY_HELLO:
        toy_on_hello(e, payload, len);
        break;
    case TOY_DATA:
        if (!e->negotiated) {
            toy_fail(e, TOY_ERR_MALFORMED);
            break;
        }
        memcpy(e->app_in, payload, len);
        e->app_in_off = 0;
        e->app_in_len = len;
        break;
    case TOY_CLOSE:
        e->closed = true; /* an orderly close: error stays RS_OK */
        break;
    default:
        toy_fail(e, TOY_ERR_MALFORMED);
        break;
    }
}

static unsigned toy_state(rs_tls_engine_t *engine) {
    toy_engine_t *e = toy_of(engine);
    unsigned s = 0;
    if (e->closed) {
        return RS_TLS_ENGINE_CLOSED;
    }
    if (e->out_len > e->out_off) {
        s |= RS_TLS_ENGINE_SENDREC;
    }
    if (e->app_in_len > e->app_in_off) {
        s |= RS_TLS_ENGINE_RECVAPP;
    } else if (!e->close_queued) {
        s |= RS_TLS_ENGINE_RECVREC; /* one record at a time: back-pressure */
    }
    if (e->negotiated && !e->close_queued && toy_out_has_room(e)) {
        s |= RS_TLS_ENGINE_SENDAPP;
    }
    return s;
}

static unsigned char *toy_sendrec_buf(rs_tls_engine_t *engine, size_t *len) {
    toy_engine_t *e = toy_of(engine);
    *len = e->out_len - e->out_off;
    return *len ? e->out + e->out_off : NULL;
}

static void toy_sendrec_ack(rs_tls_engine_t *engine, size_t len) {
    toy_engine_t *e = toy_of(engine);
    assert_true(len > 0 && len <= e->out_len - e->out_off);
    e->out_off += len;
    if (e->out_off == e->out_len) {
        e->out_off = e->out_len = 0;
        if (e->close_queued) {
            e->closed = true; /* our close is out: done */
        }
    }
}

static unsigned char *toy_recvrec_buf(rs_tls_engine_t *engine, size_t *len) {
    toy_engine_t *e = toy_of(engine);
    size_t want;
    if (e->closed || e->close_queued || e->app_in_len > e->app_in_off) {
        *len = 0;
        return NULL;
    }
    if (e->in_len < TOY_HEADER) {
        want = TOY_HEADER - e->in_len;
    } else {
        want = TOY_HEADER + (((size_t)e->in[1] << 8) | e->in[2]) - e->in_len;
    }
    *len = want;
    return e->in + e->in_len;
}

static void toy_recvrec_ack(rs_tls_engine_t *engine, size_t len) {
    toy_engine_t *e = toy_of(engine);
    size_t record_len;
    assert_true(len > 0);
    e->in_len += len;
    if (e->in_len < TOY_HEADER) {
        return;
    }
    record_len = ((size_t)e->in[1] << 8) | e->in[2];
    if (record_len > TOY_MAX_PAYLOAD) {
        toy_fail(e, TOY_ERR_MALFORMED);
        return;
    }
    if (e->in_len == TOY_HEADER + record_len) {
        toy_on_record(e);
    }
}

static unsigned char *toy_sendapp_buf(rs_tls_engine_t *engine, size_t *len) {
    toy_engine_t *e = toy_of(engine);
    if (!(toy_state(engine) & RS_TLS_ENGINE_SENDAPP)) {
        *len = 0;
        return NULL;
    }
    *len = sizeof(e->app_out) - e->app_out_len;
    return e->app_out + e->app_out_len;
}

static void toy_flush(rs_tls_engine_t *engine) {
    toy_engine_t *e = toy_of(engine);
    if (e->app_out_len) {
        toy_seal(e, TOY_DATA, e->app_out, e->app_out_len);
        e->app_out_len = 0;
    }
}

static void toy_sendapp_ack(rs_tls_engine_t *engine, size_t len) {
    toy_engine_t *e = toy_of(engine);
    assert_true(len > 0 && e->app_out_len + len <= sizeof(e->app_out));
    e->app_out_len += len;
    if (e->app_out_len == sizeof(e->app_out)) {
        toy_flush(engine); /* a full record */
    }
}

static unsigned char *toy_recvapp_buf(rs_tls_engine_t *engine, size_t *len) {
    toy_engine_t *e = toy_of(engine);
    *len = e->app_in_len - e->app_in_off;
    return *len ? e->app_in + e->app_in_off : NULL;
}

static void toy_recvapp_ack(rs_tls_engine_t *engine, size_t len) {
    toy_engine_t *e = toy_of(engine);
    assert_true(len > 0 && len <= e->app_in_len - e->app_in_off);
    e->app_in_off += len;
    if (e->app_in_off == e->app_in_len) {
        e->app_in_off = e->app_in_len = 0;
    }
}

static void toy_close(rs_tls_engine_t *engine) {
    toy_engine_t *e = toy_of(engine);
    assert_false(e->closed);
    toy_flush(engine);
    toy_seal(e, TOY_CLOSE, NULL, 0);
    e->close_queued = true;
}

static int toy_last_error(rs_tls_engine_t *engine) {
    return toy_of(engine)->error;
}

static void toy_get_info(rs_tls_engine_t *engine, rs_tls_engine_info_t *out) {
    toy_engine_t *e = toy_of(engine);
    if (e->negotiated) {
        out->version = 0x7f01;
        out->cipher_suite_name = "XOR-TOY";
        out->alpn = e->alpn[0] ? e->alpn : NULL;
    }
    if (e->is_server && e->server_name[0]) {
        out->server_name = e->server_name;
    }
}

static void toy_destroy(rs_tls_engine_t *engine) {
    toy_engine_t *e = toy_of(engine);
    if (e->destroyed) {
        ++*e->destroyed;
    }
    rs_mem_free(e->allocator, e);
}

static const rs_tls_engine_vtable_t toy_vtable = {
    toy_state,       toy_sendrec_buf, toy_sendrec_ack, toy_recvrec_buf, toy_recvrec_ack,
    toy_sendapp_buf, toy_sendapp_ack, toy_recvapp_buf, toy_recvapp_ack, toy_flush,
    toy_close,       toy_last_error,  NULL,            toy_get_info,    toy_destroy,
};

static rs_tls_engine_t *toy_engine_new(const rs_tls_engine_config_t *config, void *user_data, int *err_out) {
    toy_settings_t *settings = (toy_settings_t *)user_data;
    toy_engine_t *e;
    size_t i;
    if (settings && settings->fail_with) {
        *err_out = settings->fail_with;
        return NULL;
    }
    e = (toy_engine_t *)rs_mem_calloc(config->allocator, 1, sizeof(*e));
    if (!e) {
        *err_out = RS_ENOMEM;
        return NULL;
    }
    e->base.vtable = &toy_vtable;
    e->base.impl = e;
    e->allocator = config->allocator;
    e->is_server = config->is_server;
    e->destroyed = settings ? settings->destroyed : NULL;
    for (i = 0; i < config->alpn_count && i < 8; ++i) {
        snprintf(e->offered[i], sizeof(e->offered[i]), "%s", config->alpn_names[i]);
    }
    e->offered_count = i;
    if (!e->is_server) {
        toy_send_hello(e, config->server_name);
    }
    return &e->base;
}

/* ------------------------------------------------------------------ tests */

static rs_tls_ctx_t *toy_ctx(bool is_server, const rs_allocator_t *allocator) {
    rs_tls_ctx_options_t o = is_server ? tls_test_server_options("server") : tls_test_client_options();
    o.allocator = allocator;
    return tls_test_ctx(&o);
}

static void toy_side_init(tls_test_side_t *side, rs_tls_ctx_t *ctx, toy_settings_t *settings, const char *alpn,
                          bool back_pressure) {
    rs_tls_connection_options_t c;
    memset(&c, 0, sizeof(c));
    c.server_name = "localhost";
    c.alpn_list = alpn;
    c.engine_new = toy_engine_new;
    c.engine_user_data = settings;
    tls_test_side_init(side, ctx, &c, back_pressure);
}

typedef struct toy_pair {
    tls_test_pair_t p;
    rs_tls_ctx_t *cctx, *sctx;
    toy_settings_t settings;
    int destroyed;
} toy_pair_t;

static void toy_pair_init(toy_pair_t *t, bool back_pressure) {
    memset(t, 0, sizeof(*t));
    t->settings.destroyed = &t->destroyed;
    t->cctx = toy_ctx(false, &rs_test_allocator);
    t->sctx = toy_ctx(true, &rs_test_allocator);
    toy_side_init(&t->p.client, t->cctx, &t->settings, "toy/2;toy/1", back_pressure);
    toy_side_init(&t->p.server, t->sctx, &t->settings, "toy/1", back_pressure);
}

static void toy_pair_free(toy_pair_t *t) {
    tls_test_pair_destroy(&t->p);
    assert_int_equal(t->destroyed, 2);
    rs_tls_ctx_release(t->cctx);
    rs_tls_ctx_release(t->sctx);
}

/* Run one side, and take what it wrote. */
static void toy_take_written(tls_test_side_t *side, rs_byte_buf_t *out) {
    rs_byte_buf_reset(out);
    assert_int_equal(rs_testing_channel_run(side->tc), RS_OK);
    assert_int_equal(rs_testing_channel_drain_written(side->tc, out), RS_OK);
}

/* The bytes a toy record of `type` carrying `data` looks like on the wire. */
static void toy_expected_record(rs_byte_buf_t *out, unsigned char type, const void *data, size_t len) {
    unsigned char header[TOY_HEADER];
    size_t i;
    header[0] = type;
    header[1] = (unsigned char)(len >> 8);
    header[2] = (unsigned char)len;
    assert_int_equal(rs_byte_buf_append(out, header, sizeof(header)), RS_OK);
    for (i = 0; i < len; ++i) {
        unsigned char b = (unsigned char)(((const unsigned char *)data)[i] ^ TOY_KEY);
        assert_int_equal(rs_byte_buf_append(out, &b, 1), RS_OK);
    }
}

static void fill_pattern(unsigned char *buf, size_t len, unsigned seed) {
    size_t i;
    for (i = 0; i < len; ++i) {
        buf[i] = (unsigned char)((i * 131u + seed) >> 3);
    }
}

static void tls_engine_handshake_reports_and_info(void **state) {
    toy_pair_t t;
    rs_tls_info_t ci, si;
    (void)state;
    toy_pair_init(&t, false);
    tls_test_shuttle(&t.p);
    assert_int_equal(t.p.client.negotiation_calls, 1);
    assert_int_equal(t.p.client.negotiation_error, RS_OK);
    assert_int_equal(t.p.server.negotiation_calls, 1);
    assert_int_equal(t.p.server.negotiation_error, RS_OK);
    assert_int_equal(rs_tls_handler_get_info(t.p.client.tls, &ci), RS_OK);
    assert_int_equal(rs_tls_handler_get_info(t.p.server.tls, &si), RS_OK);
    assert_true(ci.negotiated && si.negotiated);
    assert_int_equal(ci.version, 0x7f01);
    assert_string_equal(ci.cipher_suite_name, "XOR-TOY");
    assert_false(ci.resumed);
    assert_false(ci.peer_verified);
    /* The engine's ALPN pick and the client's SNI, through the handler. */
    assert_string_equal(ci.alpn, "toy/1");
    assert_string_equal(si.alpn, "toy/1");
    assert_string_equal(rs_tls_handler_get_alpn(t.p.client.tls), "toy/1");
    assert_string_equal(si.server_name, "localhost");
    assert_string_equal(ci.server_name, "localhost");
    assert_true(ci.handshake_end_ns >= ci.handshake_start_ns && ci.handshake_start_ns > 0);
    toy_pair_free(&t);
}

static void tls_engine_data_both_ways_is_transformed_on_the_wire(void **state) {
    toy_pair_t t;
    rs_byte_buf_t wire, expected;
    static unsigned char big[100000];
    const char *hello = "hello through the toy engine";
    (void)state;
    fill_pattern(big, sizeof(big), 7);
    toy_pair_init(&t, false);
    tls_test_shuttle(&t.p);
    assert_int_equal(rs_byte_buf_init(&wire, &rs_test_allocator, 1024), RS_OK);
    assert_int_equal(rs_byte_buf_init(&expected, &rs_test_allocator, 1024), RS_OK);

    /* One write is one record: header, then every byte XORed. */
    tls_test_app_send(t.p.client.app, hello, strlen(hello));
    toy_take_written(&t.p.client, &wire);
    toy_expected_record(&expected, TOY_DATA, hello, strlen(hello));
    assert_int_equal(wire.len, expected.len);
    assert_memory_equal(wire.buffer, expected.buffer, wire.len);
    assert_null(memchr(wire.buffer, 'h', wire.len)); /* no plaintext: "hello" XOR 0x5A has no 'h' */
    assert_int_equal(rs_testing_channel_push_read(t.p.server.tc, rs_byte_cursor_from_buf(&wire)), RS_OK);
    tls_test_shuttle(&t.p);
    assert_int_equal(t.p.server.app->received.len, strlen(hello));
    assert_memory_equal(t.p.server.app->received.buffer, hello, strlen(hello));

    /* Much more, the other way: split into records, delivered byte-exact. */
    tls_test_app_send(t.p.server.app, big, sizeof(big));
    tls_test_shuttle(&t.p);
    assert_int_equal(t.p.client.app->received.len, sizeof(big));
    assert_memory_equal(t.p.client.app->received.buffer, big, sizeof(big));
    rs_byte_buf_cleanup(&wire);
    rs_byte_buf_cleanup(&expected);
    toy_pair_free(&t);
}

/* The receiving app holds its window: the handler takes no more ciphertext
 * than its window, and the rest flows when the app reopens it. */
static void tls_engine_back_pressure_holds_and_resumes(void **state) {
    toy_pair_t t;
    static unsigned char big[300000];
    size_t got;
    (void)state;
    fill_pattern(big, sizeof(big), 3);
    toy_pair_init(&t, true);
    tls_test_shuttle(&t.p);
    assert_int_equal(t.p.server.negotiation_error, RS_OK);
    t.p.server.app->hold_window = true;
    tls_test_app_send(t.p.client.app, big, sizeof(big));
    tls_test_shuttle(&t.p);
    got = t.p.server.app->received.len;
    assert_true(got > 0);
    assert_true(got <= 64 * 1024); /* the app's window */
    assert_true(rs_testing_channel_pending_read_bytes(t.p.server.tc) > 0); /* the rest waits */
    /* Reopen: give back what was consumed while held; the rest flows. */
    t.p.server.app->hold_window = false;
    rs_channel_slot_increment_read_window(t.p.server.app->base.slot, got);
    tls_test_shuttle(&t.p);
    assert_int_equal(t.p.server.app->received.len, sizeof(big));
    assert_memory_equal(t.p.server.app->received.buffer, big, sizeof(big));
    toy_pair_free(&t);
}

/* A record the engine cannot parse: the channel shuts down with the
 * engine's own error code. */
static void tls_engine_malformed_record_fails_with_engine_code(void **state) {
    toy_pair_t t;
    static const unsigned char bad[] = {'?', 0, 1, 0x00};
    int err = RS_OK;
    (void)state;
    toy_pair_init(&t, false);
    tls_test_shuttle(&t.p);
    assert_int_equal(rs_testing_channel_push_read(t.p.client.tc, rs_byte_cursor_from_array(bad, sizeof(bad))),
                     RS_OK);
    assert_int_equal(rs_testing_channel_run(t.p.client.tc), RS_OK);
    assert_true(rs_testing_channel_is_shut_down(t.p.client.tc, &err));
    assert_int_equal(err, TOY_ERR_MALFORMED);
    assert_int_equal(t.p.client.negotiation_calls, 1); /* reported once, at the handshake */
    toy_pair_free(&t);
}

/* During the handshake the engine's error is the negotiation's result too;
 * an oversized length is malformed as well. */
static void tls_engine_malformed_hello_fails_negotiation(void **state) {
    toy_pair_t t;
    static const unsigned char bad[] = {TOY_HELLO, 0xff, 0xff};
    int err = RS_OK;
    (void)state;
    toy_pair_init(&t, false);
    assert_int_equal(rs_testing_channel_push_read(t.p.client.tc, rs_byte_cursor_from_array(bad, sizeof(bad))),
                     RS_OK);
    assert_int_equal(rs_testing_channel_run(t.p.client.tc), RS_OK);
    assert_int_equal(t.p.client.negotiation_calls, 1);
    assert_int_equal(t.p.client.negotiation_error, TOY_ERR_MALFORMED);
    assert_true(rs_testing_channel_is_shut_down(t.p.client.tc, &err));
    assert_int_equal(err, TOY_ERR_MALFORMED);
    toy_pair_free(&t);
}

/* A hang-up before the handshake ends, with an engine that has no
 * hangup_error: RS_ETLS_TRUNCATED. */
static void tls_engine_hangup_during_handshake_is_truncated(void **state) {
    toy_pair_t t;
    int err = RS_OK;
    (void)state;
    toy_pair_init(&t, false);
    rs_testing_channel_push_eof(t.p.client.tc);
    assert_int_equal(rs_testing_channel_run(t.p.client.tc), RS_OK);
    assert_true(rs_testing_channel_is_shut_down(t.p.client.tc, &err));
    assert_int_equal(err, RS_ETLS_TRUNCATED);
    assert_int_equal(t.p.client.negotiation_error, RS_ETLS_TRUNCATED);
    toy_pair_free(&t);
}

/* A graceful shutdown seals what is queued, then sends the close record; the
 * peer sees an orderly close (RS_EEOF) after every byte. */
static void tls_engine_close_sends_close_message(void **state) {
    toy_pair_t t;
    rs_byte_buf_t wire, expected;
    const char *last = "last words";
    int err = RS_OK;
    (void)state;
    toy_pair_init(&t, false);
    tls_test_shuttle(&t.p);
    assert_int_equal(rs_byte_buf_init(&wire, &rs_test_allocator, 256), RS_OK);
    assert_int_equal(rs_byte_buf_init(&expected, &rs_test_allocator, 256), RS_OK);
    tls_test_app_send(t.p.client.app, last, strlen(last));
    rs_channel_shutdown(rs_testing_channel_get_channel(t.p.client.tc), RS_OK);
    toy_take_written(&t.p.client, &wire);
    toy_expected_record(&expected, TOY_DATA, last, strlen(last));
    toy_expected_record(&expected, TOY_CLOSE, NULL, 0);
    assert_int_equal(wire.len, expected.len);
    assert_memory_equal(wire.buffer, expected.buffer, wire.len);
    assert_true(rs_testing_channel_is_shut_down(t.p.client.tc, &err));
    assert_int_equal(err, RS_OK);
    assert_int_equal(rs_testing_channel_push_read(t.p.server.tc, rs_byte_cursor_from_buf(&wire)), RS_OK);
    assert_int_equal(rs_testing_channel_run(t.p.server.tc), RS_OK);
    assert_true(rs_testing_channel_is_shut_down(t.p.server.tc, &err));
    assert_int_equal(err, RS_EEOF);
    assert_int_equal(t.p.server.app->received.len, strlen(last));
    assert_memory_equal(t.p.server.app->received.buffer, last, strlen(last));
    rs_byte_buf_cleanup(&wire);
    rs_byte_buf_cleanup(&expected);
    toy_pair_free(&t);
}

/* The factory's error is start_negotiation's; nothing is left behind. */
static void tls_engine_factory_error_is_returned(void **state) {
    rs_tls_ctx_t *ctx;
    rs_testing_channel_t *tc;
    rs_tls_connection_options_t c;
    rs_channel_handler_t *h;
    toy_settings_t settings;
    int err = RS_OK;
    (void)state;
    ctx = toy_ctx(false, &rs_test_allocator);
    tc = rs_testing_channel_new(NULL, &err);
    assert_non_null(tc);
    memset(&settings, 0, sizeof(settings));
    settings.fail_with = RS_ENOTSUP;
    memset(&c, 0, sizeof(c));
    c.ctx = ctx;
    c.engine_new = toy_engine_new;
    c.engine_user_data = &settings;
    h = rs_tls_handler_new(&c, &err);
    assert_non_null(h);
    assert_int_equal(rs_testing_channel_add_handler(tc, h), RS_OK);
    assert_int_equal(rs_tls_handler_start_negotiation(h), RS_ENOTSUP);
    rs_testing_channel_destroy(tc);
    rs_tls_ctx_release(ctx);
    /* The default engine refuses a config without a context. */
    assert_null(rs_tls_engine_bearssl_new(NULL, NULL, &err));
    assert_int_equal(err, RS_EINVAL);
}

/* Every allocation of the handler and the engine fails in turn (they use the
 * context's allocator): each failure is RS_ENOMEM from rs_tls_handler_new or
 * start_negotiation, and nothing leaks (the test allocator checks). */
static void tls_engine_alloc_failure_sweep(void **state) {
    size_t fail_at;
    int start_failures = 0;
    (void)state;
    for (fail_at = 1; fail_at < 1000; ++fail_at) {
        rs_test_failing_alloc_t fa;
        toy_pair_t t;
        rs_channel_handler_t *h;
        rs_tls_connection_options_t c;
        int err = RS_OK;
        bool done;
        memset(&t, 0, sizeof(t));
        t.settings.destroyed = &t.destroyed;
        t.sctx = toy_ctx(true, &rs_test_allocator);
        tls_test_side_init(&t.p.server, t.sctx, NULL, false); /* a BearSSL server: the client never reaches it */
        t.p.client.tc = rs_testing_channel_new(NULL, &err);
        assert_non_null(t.p.client.tc);
        rs_test_failing_alloc_init(&fa, 0);
        t.cctx = toy_ctx(false, &fa.allocator);
        fa.fail_at = fa.count + fail_at; /* count from here: the handler and the engine */
        memset(&c, 0, sizeof(c));
        c.ctx = t.cctx;
        c.server_name = "localhost";
        c.alpn_list = "toy/1";
        c.engine_new = toy_engine_new;
        c.engine_user_data = &t.settings;
        h = rs_tls_handler_new(&c, &err);
        if (!h) {
            assert_int_equal(err, RS_ENOMEM);
        } else {
            assert_int_equal(rs_testing_channel_add_handler(t.p.client.tc, h), RS_OK);
            err = rs_tls_handler_start_negotiation(h);
            if (err) {
                assert_int_equal(err, RS_ENOMEM);
                assert_int_equal(t.destroyed, 0);
                ++start_failures;
            } else {
                assert_int_equal(rs_testing_channel_run(t.p.client.tc), RS_OK);
            }
        }
        done = fa.failures == 0;
        rs_testing_channel_destroy(t.p.client.tc);
        rs_testing_channel_destroy(t.p.server.tc);
        if (h && !err) {
            assert_int_equal(t.destroyed, 1);
        }
        rs_tls_ctx_release(t.cctx);
        rs_tls_ctx_release(t.sctx);
        if (done) {
            break;
        }
    }
    assert_true(fail_at > 2);            /* the handler's allocations were refused ... */
    assert_int_equal(start_failures, 1); /* ... and the engine's, once */
}

static void toy_install_done(rs_channel_t *channel, rs_channel_slot_t *slot, int error, void *ctx) {
    int *result = (int *)ctx;
    (void)channel;
    assert_true(error != RS_OK || slot != NULL);
    *result = error;
}

/* The installer copies the options, engine included: both ends, installed
 * as a bootstrap would, negotiate through the toy engine. */
static void tls_engine_through_installers(void **state) {
    toy_pair_t t;
    rs_channel_installer_t *ci, *si;
    rs_tls_connection_options_t c;
    rs_tls_info_t info;
    int cdone = 1, sdone = 1, err = RS_OK;
    (void)state;
    memset(&t, 0, sizeof(t));
    t.settings.destroyed = &t.destroyed;
    t.cctx = toy_ctx(false, &rs_test_allocator);
    t.sctx = toy_ctx(true, &rs_test_allocator);
    memset(&c, 0, sizeof(c));
    c.engine_new = toy_engine_new;
    c.engine_user_data = &t.settings;
    c.ctx = t.sctx;
    si = rs_tls_installer_new(&c, &err);
    assert_non_null(si);
    c.ctx = t.cctx;
    c.server_name = "localhost";
    ci = rs_tls_installer_new(&c, &err);
    assert_non_null(ci);
    t.p.client.tc = rs_testing_channel_new(NULL, &err);
    t.p.server.tc = rs_testing_channel_new(NULL, &err);
    assert_non_null(t.p.client.tc);
    assert_non_null(t.p.server.tc);
    assert_int_equal(ci->vtable->install(ci, rs_testing_channel_get_channel(t.p.client.tc),
                                         rs_channel_get_first_slot(rs_testing_channel_get_channel(t.p.client.tc)),
                                         toy_install_done, &cdone),
                     RS_OK);
    assert_int_equal(si->vtable->install(si, rs_testing_channel_get_channel(t.p.server.tc),
                                         rs_channel_get_first_slot(rs_testing_channel_get_channel(t.p.server.tc)),
                                         toy_install_done, &sdone),
                     RS_OK);
    tls_test_shuttle(&t.p);
    assert_int_equal(cdone, RS_OK);
    assert_int_equal(sdone, RS_OK);
    assert_int_equal(
        rs_tls_handler_get_info(rs_tls_channel_get_handler(rs_testing_channel_get_channel(t.p.server.tc)), &info),
        RS_OK);
    assert_string_equal(info.cipher_suite_name, "XOR-TOY");
    assert_string_equal(info.server_name, "localhost");
    rs_tls_installer_destroy(ci);
    rs_tls_installer_destroy(si);
    toy_pair_free(&t);
}

static int teardown_suite(void **state) {
    (void)state;
    tls_test_remove_cert_dir();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tls_engine_handshake_reports_and_info),
        cmocka_unit_test(tls_engine_data_both_ways_is_transformed_on_the_wire),
        cmocka_unit_test(tls_engine_back_pressure_holds_and_resumes),
        cmocka_unit_test(tls_engine_malformed_record_fails_with_engine_code),
        cmocka_unit_test(tls_engine_malformed_hello_fails_negotiation),
        cmocka_unit_test(tls_engine_hangup_during_handshake_is_truncated),
        cmocka_unit_test(tls_engine_close_sends_close_message),
        cmocka_unit_test(tls_engine_factory_error_is_returned),
        cmocka_unit_test(tls_engine_alloc_failure_sweep),
        cmocka_unit_test(tls_engine_through_installers),
    };
    tls_test_cert_dir();
    return cmocka_run_group_tests_name("tls_engine", tests, NULL, teardown_suite);
}
