/*
 * libFuzzer harness for the TLS handler (src/tls/handler.c) driving BearSSL:
 * a client handler on a testing channel is fed the input (but its last byte,
 * which holds flags) as the bytes the server sent, in chunks whose sizes come
 * from the flags, with back-pressure on or off and the application window
 * reopened or not as the flags say, then an end of stream or a shutdown. Beyond "no crash", it checks:
 *   - the negotiation result is reported at most once, and once the channel
 *     has shut down, exactly once;
 *   - a failed negotiation gives an RS_ETLS_... code (or RS_ENOMEM/RS_EEOF-
 *     derived truncation), never RS_OK followed by a failure report;
 *   - after destroy every allocation was freed (a counting allocator).
 * Verification is off, so certificates are decoded but need no trust chain.
 *
 * Built and run by .ci/run (step "fuzz"), seeds in tests/fuzz/corpus/tls/
 * (a real server flight, RSA and EC, answering the client's hello, and an
 * alert):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *         -I. tests/fuzz/fuzz_tls.c -o fuzz_tls -lbearssl
 *   ./fuzz_tls -max_total_time=60 CORPUS_COPY_DIR
 */
#define RESEAU_IMPLEMENTATION
#define RESEAU_TLS_IMPLEMENTATION
#include "reseau.h"
#include "reseau_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) ((cond) ? (void)0 : check_failed(#cond, __LINE__))

static void check_failed(const char *what, int line) {
    fprintf(stderr, "fuzz_tls: check failed at line %d: %s\n", line, what);
    abort();
}

static long live_blocks;

static void *count_alloc(size_t size, void *ud) {
    void *p = malloc(size);
    (void)ud;
    live_blocks += p != NULL;
    return p;
}

static void *count_realloc(void *ptr, size_t old_size, size_t new_size, void *ud) {
    void *p = realloc(ptr, new_size);
    (void)old_size;
    (void)ud;
    live_blocks += p && !ptr;
    return p;
}

static void count_free(void *ptr, void *ud) {
    (void)ud;
    live_blocks -= ptr != NULL;
    free(ptr);
}

static const rs_allocator_t counting = {count_alloc, count_realloc, count_free, NULL};

typedef struct result {
    int calls;
    int error;
} result_t;

static void on_negotiation(rs_channel_handler_t *handler, rs_channel_slot_t *slot, int error, void *ud) {
    result_t *r = (result_t *)ud;
    (void)handler;
    (void)slot;
    r->calls++;
    r->error = error;
}

/* A sink to the right of TLS: takes plaintext, reopens its window when told. */
typedef struct sink {
    rs_channel_handler_t base;
    bool reopen;
} sink_t;

static int sink_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *m) {
    sink_t *s = (sink_t *)h->impl;
    size_t n = m->message_data.len;
    rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), m);
    if (s->reopen) {
        rs_channel_slot_increment_read_window(slot, n);
    }
    return RS_OK;
}

static void sink_destroy(rs_channel_handler_t *h) {
    (void)h; /* lives on the fuzz function's stack */
}

static const rs_channel_handler_vtable_t sink_vtable = {sink_read, NULL, NULL, NULL, NULL, NULL, sink_destroy,
                                                        NULL, NULL, NULL};

static rs_tls_ctx_t *client_ctx(void) {
    static rs_tls_ctx_t *ctx;
    if (!ctx) {
        rs_tls_ctx_options_t o;
        int err = RS_OK;
        memset(&o, 0, sizeof(o));
        o.insecure_skip_verify = true;
        o.alpn_list = "h2;http/1.1";
        o.min_version = RS_TLS_VERSION_1_0;
        o.allocator = &counting;
        ctx = rs_tls_ctx_new(&o, &err);
        CHECK(ctx != NULL);
    }
    return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rs_testing_channel_options_t to;
    rs_testing_channel_t *tc;
    rs_tls_connection_options_t conn;
    rs_channel_handler_t *tls;
    sink_t sink;
    result_t result = {0, RS_OK};
    long before;
    int err = RS_OK, shut = RS_OK;
    /* The last byte holds the flags, so a seed is a real byte stream plus one byte. */
    uint8_t flags = size ? data[size - 1] : 0;
    size_t len = size ? size - 1 : 0;
    uint32_t split = 2166136261u ^ flags;
    rs_tls_ctx_t *ctx = client_ctx();
    before = live_blocks;
    memset(&to, 0, sizeof(to));
    to.allocator = &counting;
    to.enable_read_back_pressure = (flags & 1) != 0;
    tc = rs_testing_channel_new(&to, &err);
    CHECK(tc != NULL);
    memset(&conn, 0, sizeof(conn));
    conn.ctx = ctx;
    conn.server_name = (flags & 2) ? "127.0.0.1" : "localhost";
    conn.on_negotiation_result = on_negotiation;
    conn.user_data = &result;
    tls = rs_tls_handler_new(&conn, &err);
    CHECK(tls != NULL);
    CHECK(rs_testing_channel_add_handler(tc, tls) == RS_OK);
    sink.base.vtable = &sink_vtable;
    sink.base.impl = &sink;
    sink.reopen = (flags & 4) == 0;
    CHECK(rs_testing_channel_add_handler(tc, &sink.base) == RS_OK);
    CHECK(rs_tls_handler_start_negotiation(tls) == RS_OK);
    rs_testing_channel_run(tc);
    {
        size_t pos = 0;
        /* Chunks of 1..512 bytes, sizes drawn from the flags: records split
         * anywhere, as TCP may split them. */
        while (pos < len) {
            size_t n;
            split = split * 1664525u + 1013904223u;
            n = (size_t)(split >> 23) + 1;
            if (n > len - pos) {
                n = len - pos;
            }
            rs_testing_channel_push_read(tc, rs_byte_cursor_from_array(data + pos, n));
            rs_testing_channel_run(tc);
            CHECK(result.calls <= 1);
            pos += n;
        }
    }
    if (flags & 8) {
        rs_testing_channel_push_eof(tc);
    } else {
        rs_channel_shutdown(rs_testing_channel_get_channel(tc), RS_OK);
    }
    rs_testing_channel_run(tc);
    rs_testing_channel_run(tc);
    CHECK(result.calls <= 1);
    if (rs_testing_channel_is_shut_down(tc, &shut)) {
        CHECK(result.calls == 1);
    }
    if (result.calls && result.error != RS_OK) {
        CHECK(result.error <= RS_ETLS_CERT_EXPIRED || result.error == RS_ENOMEM || result.error == RS_ECANCELED);
    }
    rs_testing_channel_destroy(tc);
    CHECK(live_blocks == before);
    return 0;
}
