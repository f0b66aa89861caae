/*
 * TLS over real loopback sockets, through the client and server bootstraps
 * (connect by name, "localhost"), on a group of two loops.
 *
 * Covers: a 64 MiB echo with read back-pressure on both sides, every byte
 * checked, ended by a clean close (the server sees RS_EEOF); resumption
 * across connections (the client's cache is keyed by host:port:name, the
 * server's is shared by its loops); a failing TLS installer (client
 * certificate required, none given) reaching both setup callbacks with its
 * code; and the ALPN installer picking the handler for the agreed protocol.
 */
#include "tls_test_util.h"

#define WAIT_NS (120 * RS_NS_PER_SEC)

typedef struct world {
    rs_mutex_t lock;
    rs_condvar_t cond;
    rs_event_loop_group_t *group;
    rs_server_bootstrap_t *server;
    rs_client_bootstrap_t *client;
    rs_server_listener_t *listener;
    uint32_t port;
    /* under lock */
    int client_setups, client_setup_error;
    int client_shutdowns, client_shutdown_error;
    int server_setups, server_setup_error;
    int server_shutdowns, server_shutdown_error;
    int listener_gone;
    bool client_verified;
    bool resumed[2]; /* client, server: of the last connection */
    char alpn[32];
    size_t bytes_checked;
    bool data_error;
} world_t;

static uint8_t pattern(size_t i) {
    return (uint8_t)((i * 2654435761u) >> 13);
}

/* ------------------------------------------------------------- handlers */

/* Server: echo each message back, and reopen the window by what it took. */
static int echo_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *m) {
    size_t n = m->message_data.len;
    (void)h;
    if (rs_channel_slot_send_message(slot, m, RS_CHANNEL_DIR_WRITE) != RS_OK) {
        rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), m);
        rs_channel_shutdown(rs_channel_slot_get_channel(slot), RS_EUNKNOWN);
    }
    return rs_channel_slot_increment_read_window(slot, n);
}

static void free_handler(rs_channel_handler_t *h) {
    test_free(h->impl);
}

static const rs_channel_handler_vtable_t echo_vtable = {echo_read, NULL, NULL, NULL, NULL, NULL, free_handler,
                                                        NULL, NULL, NULL};

/* Client: sends `total` bytes of the pattern, at most 1 MiB ahead of the
 * echo, checks every byte that comes back, and closes when all came back. */
typedef struct pump {
    rs_channel_handler_t base;
    world_t *world;
    size_t total, sent, received;
    bool bad;
} pump_t;

static void pump_send_more(pump_t *p, rs_channel_slot_t *slot) {
    rs_channel_t *channel = rs_channel_slot_get_channel(slot);
    while (p->sent < p->total && p->sent - p->received < 1024 * 1024) {
        size_t n = p->total - p->sent < RS_MAX_FRAGMENT_SIZE ? p->total - p->sent : RS_MAX_FRAGMENT_SIZE;
        rs_io_message_t *m = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, n);
        size_t i;
        if (!m) {
            rs_channel_shutdown(channel, RS_ENOMEM);
            return;
        }
        n = n < m->message_data.capacity ? n : m->message_data.capacity;
        for (i = 0; i < n; ++i) {
            m->message_data.buffer[i] = pattern(p->sent + i);
        }
        m->message_data.len = n;
        if (rs_channel_slot_send_message(slot, m, RS_CHANNEL_DIR_WRITE) != RS_OK) {
            rs_channel_release_message_to_pool(channel, m);
            rs_channel_shutdown(channel, RS_EUNKNOWN);
            return;
        }
        p->sent += n;
    }
}

static int pump_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *m) {
    pump_t *p = (pump_t *)h->impl;
    size_t n = m->message_data.len, i;
    for (i = 0; i < n && !p->bad; ++i) {
        p->bad = m->message_data.buffer[i] != pattern(p->received + i);
    }
    p->received += n;
    rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), m);
    rs_channel_slot_increment_read_window(slot, n);
    if (p->bad || p->received >= p->total) {
        rs_mutex_lock(&p->world->lock);
        p->world->bytes_checked = p->received;
        p->world->data_error = p->bad || p->received != p->total;
        rs_mutex_unlock(&p->world->lock);
        rs_channel_shutdown(rs_channel_slot_get_channel(slot), RS_OK);
        return RS_OK;
    }
    pump_send_more(p, slot);
    return RS_OK;
}

static const rs_channel_handler_vtable_t pump_vtable = {pump_read, NULL, NULL, NULL, NULL, NULL, free_handler,
                                                        NULL, NULL, NULL};

/* An installer adding one handler: echo (server) or pump (client). */
typedef struct app_installer {
    rs_channel_installer_t base;
    world_t *world;
    bool pump;
    size_t total;
} app_installer_t;

static int app_install(rs_channel_installer_t *installer, rs_channel_t *channel, rs_channel_slot_t *slot,
                       rs_channel_installer_done_fn *done, void *done_ctx) {
    app_installer_t *ai = (app_installer_t *)installer->impl;
    rs_channel_slot_t *added;
    rs_channel_handler_t *h;
    int err;
    if (ai->pump) {
        pump_t *p = (pump_t *)test_calloc(1, sizeof(*p));
        p->base.vtable = &pump_vtable;
        p->base.impl = p;
        p->world = ai->world;
        p->total = ai->total;
        h = &p->base;
    } else {
        h = (rs_channel_handler_t *)test_calloc(1, sizeof(*h));
        h->vtable = &echo_vtable;
        h->impl = h;
    }
    err = rs_channel_slot_add_handler_right(slot, h, &added);
    if (err) {
        test_free(h->impl);
        return err;
    }
    done(channel, added, RS_OK, done_ctx);
    return RS_OK;
}

static const rs_channel_installer_vtable_t app_installer_vtable = {app_install, NULL};

/* ------------------------------------------------------------ callbacks */

static void record_tls(world_t *w, rs_channel_t *channel, int side) {
    rs_tls_info_t info;
    rs_channel_handler_t *tls = rs_tls_channel_get_handler(channel);
    if (tls && rs_tls_handler_get_info(tls, &info) == RS_OK) {
        w->resumed[side] = info.resumed;
        if (side == 0) {
            w->client_verified = info.peer_verified;
            snprintf(w->alpn, sizeof(w->alpn), "%s", info.alpn ? info.alpn : "");
        }
    }
}

static void on_client_setup(rs_client_bootstrap_t *b, rs_channel_t *channel, int error, void *ud) {
    world_t *w = (world_t *)ud;
    (void)b;
    rs_mutex_lock(&w->lock);
    w->client_setups++;
    w->client_setup_error = error;
    if (!error) {
        record_tls(w, channel, 0);
    }
    rs_condvar_broadcast(&w->cond);
    rs_mutex_unlock(&w->lock);
    if (!error) {
        rs_channel_slot_t *slot = rs_channel_get_first_slot(channel);
        while (rs_channel_slot_get_right(slot)) {
            slot = rs_channel_slot_get_right(slot);
        }
        if (rs_channel_slot_get_handler(slot)->vtable == &pump_vtable) {
            pump_send_more((pump_t *)rs_channel_slot_get_handler(slot)->impl, slot);
        } else {
            rs_channel_shutdown(channel, RS_OK);
        }
    }
}

static void on_client_shutdown(rs_client_bootstrap_t *b, rs_channel_t *channel, int error, void *ud) {
    world_t *w = (world_t *)ud;
    (void)b;
    (void)channel;
    rs_mutex_lock(&w->lock);
    w->client_shutdowns++;
    w->client_shutdown_error = error;
    rs_condvar_broadcast(&w->cond);
    rs_mutex_unlock(&w->lock);
}

static void on_incoming_setup(rs_server_listener_t *l, rs_channel_t *channel, int error, void *ud) {
    world_t *w = (world_t *)ud;
    (void)l;
    rs_mutex_lock(&w->lock);
    w->server_setups++;
    w->server_setup_error = error;
    if (!error) {
        record_tls(w, channel, 1);
    }
    rs_condvar_broadcast(&w->cond);
    rs_mutex_unlock(&w->lock);
}

static void on_incoming_shutdown(rs_server_listener_t *l, rs_channel_t *channel, int error, void *ud) {
    world_t *w = (world_t *)ud;
    (void)l;
    (void)channel;
    rs_mutex_lock(&w->lock);
    w->server_shutdowns++;
    w->server_shutdown_error = error;
    rs_condvar_broadcast(&w->cond);
    rs_mutex_unlock(&w->lock);
}

static void on_listener_destroyed(rs_server_listener_t *l, void *ud) {
    world_t *w = (world_t *)ud;
    (void)l;
    rs_mutex_lock(&w->lock);
    w->listener_gone = 1;
    rs_condvar_broadcast(&w->cond);
    rs_mutex_unlock(&w->lock);
}

/* Wait until *counter reaches n (under lock). */
static void wait_count(world_t *w, const int *counter, int n) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    rs_mutex_lock(&w->lock);
    while (*counter < n && rs_clock_now_ns() < deadline) {
        rs_condvar_wait_until(&w->cond, &w->lock, deadline);
    }
    rs_mutex_unlock(&w->lock);
    assert_true(*counter >= n);
}

/* --------------------------------------------------------------- world */

static void world_init(world_t *w, rs_channel_installer_t *const *server_installers, size_t n) {
    rs_event_loop_group_options_t go;
    rs_server_bootstrap_options_t so;
    rs_client_bootstrap_options_t co;
    rs_server_listener_options_t lo;
    rs_endpoint_t addr = {0};
    int err = RS_OK;
    memset(w, 0, sizeof(*w));
    assert_int_equal(rs_mutex_init(&w->lock), RS_OK);
    assert_int_equal(rs_condvar_init(&w->cond), RS_OK);
    memset(&go, 0, sizeof(go));
    go.loop_count = 2;
    go.allocator = &rs_test_allocator;
    w->group = rs_event_loop_group_new(&go, &err);
    assert_non_null(w->group);
    memset(&so, 0, sizeof(so));
    so.allocator = &rs_test_allocator;
    so.group = w->group;
    w->server = rs_server_bootstrap_new(&so, &err);
    assert_non_null(w->server);
    memset(&co, 0, sizeof(co));
    co.allocator = &rs_test_allocator;
    co.group = w->group;
    w->client = rs_client_bootstrap_new(&co, &err);
    assert_non_null(w->client);
    memset(&lo, 0, sizeof(lo));
    lo.host = "localhost";
    lo.installers = server_installers;
    lo.installer_count = n;
    lo.enable_read_back_pressure = true;
    lo.on_incoming_setup = on_incoming_setup;
    lo.on_incoming_shutdown = on_incoming_shutdown;
    lo.on_listener_destroyed = on_listener_destroyed;
    lo.user_data = w;
    w->listener = rs_server_bootstrap_new_listener(w->server, &lo, &err);
    assert_non_null(w->listener);
    assert_int_equal(rs_server_listener_get_address(w->listener, &addr), RS_OK);
    w->port = addr.port;
}

static void world_connect(world_t *w, rs_channel_installer_t *const *installers, size_t n) {
    rs_client_connect_options_t c;
    memset(&c, 0, sizeof(c));
    c.host = "localhost";
    c.port = w->port;
    c.installers = installers;
    c.installer_count = n;
    c.enable_read_back_pressure = true;
    c.on_setup = on_client_setup;
    c.on_shutdown = on_client_shutdown;
    c.user_data = w;
    assert_int_equal(rs_client_bootstrap_connect(w->client, &c), RS_OK);
}

static void world_destroy(world_t *w) {
    assert_int_equal(rs_server_bootstrap_destroy_listener(w->listener, false), RS_OK);
    wait_count(w, &w->listener_gone, 1);
    rs_client_bootstrap_destroy(w->client);
    rs_server_bootstrap_destroy(w->server);
    rs_event_loop_group_destroy(w->group);
    rs_condvar_cleanup(&w->cond);
    rs_mutex_cleanup(&w->lock);
}

static rs_channel_installer_t *tls_installer(rs_tls_ctx_t *ctx, const char *name) {
    rs_tls_connection_options_t o;
    rs_channel_installer_t *i;
    int err = RS_OK;
    memset(&o, 0, sizeof(o));
    o.ctx = ctx;
    o.server_name = name;
    i = rs_tls_installer_new(&o, &err);
    assert_non_null(i);
    return i;
}

/* ---------------------------------------------------------------- tests */

static void test_echo_64mib_with_back_pressure(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_ctx_t *cctx = tls_test_ctx(&co), *sctx = tls_test_ctx(&so);
    app_installer_t echo = {{&app_installer_vtable, NULL}, NULL, false, 0};
    app_installer_t pump = {{&app_installer_vtable, NULL}, NULL, true, 64u * 1024 * 1024};
    rs_channel_installer_t *server_inst[2], *client_inst[2];
    world_t w;
    (void)state;
    echo.base.impl = &echo;
    pump.base.impl = &pump;
    server_inst[0] = tls_installer(sctx, NULL);
    server_inst[1] = &echo.base;
    client_inst[0] = tls_installer(cctx, "localhost");
    client_inst[1] = &pump.base;
    world_init(&w, server_inst, 2);
    echo.world = pump.world = &w;
    world_connect(&w, client_inst, 2);
    wait_count(&w, &w.client_shutdowns, 1);
    wait_count(&w, &w.server_shutdowns, 1);
    assert_int_equal(w.client_setup_error, RS_OK);
    assert_true(w.client_verified);
    assert_false(w.data_error);
    assert_int_equal(w.bytes_checked, pump.total);
    assert_int_equal(w.client_shutdown_error, RS_OK);
    assert_int_equal(w.server_shutdown_error, RS_EEOF); /* close_notify, then the FIN */
    world_destroy(&w);
    rs_tls_installer_destroy(client_inst[0]);
    rs_tls_installer_destroy(server_inst[0]);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

static void test_resumption_over_sockets(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server_ec");
    rs_tls_ctx_t *cctx = tls_test_ctx(&co), *sctx = tls_test_ctx(&so);
    app_installer_t echo = {{&app_installer_vtable, NULL}, NULL, false, 0};
    app_installer_t pump = {{&app_installer_vtable, NULL}, NULL, true, 1000};
    rs_channel_installer_t *server_inst[2], *client_inst[2];
    world_t w;
    int round;
    (void)state;
    echo.base.impl = &echo;
    pump.base.impl = &pump;
    server_inst[0] = tls_installer(sctx, NULL);
    server_inst[1] = &echo.base;
    client_inst[0] = tls_installer(cctx, "localhost");
    client_inst[1] = &pump.base;
    world_init(&w, server_inst, 2);
    echo.world = pump.world = &w;
    /* Connections land on either loop: each after the first is resumed. */
    for (round = 0; round < 4; ++round) {
        world_connect(&w, client_inst, 2);
        wait_count(&w, &w.client_shutdowns, round + 1);
        wait_count(&w, &w.server_setups, round + 1);
        assert_int_equal(w.client_setup_error, RS_OK);
        assert_false(w.data_error);
        assert_int_equal(w.resumed[0], round > 0);
        assert_int_equal(w.resumed[1], round > 0);
    }
    wait_count(&w, &w.server_shutdowns, 4);
    world_destroy(&w);
    rs_tls_installer_destroy(client_inst[0]);
    rs_tls_installer_destroy(server_inst[0]);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

static void test_failing_tls_installer(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_ctx_t *cctx, *sctx;
    app_installer_t echo = {{&app_installer_vtable, NULL}, NULL, false, 0};
    app_installer_t pump = {{&app_installer_vtable, NULL}, NULL, true, 1000};
    rs_channel_installer_t *server_inst[2], *client_inst[2];
    world_t w;
    (void)state;
    so.client_auth = RS_TLS_CLIENT_AUTH_REQUIRED;
    so.ca_file = tls_test_path("ca.pem");
    cctx = tls_test_ctx(&co);
    sctx = tls_test_ctx(&so);
    echo.base.impl = &echo;
    pump.base.impl = &pump;
    server_inst[0] = tls_installer(sctx, NULL);
    server_inst[1] = &echo.base;
    client_inst[0] = tls_installer(cctx, "localhost");
    client_inst[1] = &pump.base;
    world_init(&w, server_inst, 2);
    world_connect(&w, client_inst, 2);
    wait_count(&w, &w.client_setups, 1);
    wait_count(&w, &w.server_setups, 1);
    assert_int_equal(w.client_setup_error, RS_ETLS_CLIENT_CERT_REQUIRED);
    assert_int_equal(w.server_setup_error, RS_ETLS_CLIENT_CERT_REQUIRED);
    world_destroy(&w);
    assert_int_equal(w.client_shutdowns, 0); /* a failed setup has no shutdown callback */
    rs_tls_installer_destroy(client_inst[0]);
    rs_tls_installer_destroy(server_inst[0]);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

static rs_channel_handler_t *pick_echo(rs_channel_slot_t *slot, const char *protocol, void *ud) {
    rs_channel_handler_t *h;
    (void)slot;
    (void)ud;
    if (!protocol || strcmp(protocol, "x-echo") != 0) {
        return NULL;
    }
    h = (rs_channel_handler_t *)test_calloc(1, sizeof(*h));
    h->vtable = &echo_vtable;
    h->impl = h;
    return h;
}

static void test_alpn_installer(void **state) {
    rs_tls_ctx_options_t co = tls_test_client_options();
    rs_tls_ctx_options_t so = tls_test_server_options("server");
    rs_tls_ctx_t *cctx, *sctx;
    app_installer_t pump = {{&app_installer_vtable, NULL}, NULL, true, 100000};
    rs_channel_installer_t *server_inst[2], *client_inst[2];
    world_t w;
    int err = RS_OK;
    (void)state;
    co.alpn_list = "h2;x-echo";
    so.alpn_list = "x-echo;http/1.1";
    cctx = tls_test_ctx(&co);
    sctx = tls_test_ctx(&so);
    pump.base.impl = &pump;
    server_inst[0] = tls_installer(sctx, NULL);
    server_inst[1] = rs_tls_alpn_installer_new(&rs_test_allocator, pick_echo, NULL, &err);
    assert_non_null(server_inst[1]);
    client_inst[0] = tls_installer(cctx, "localhost");
    client_inst[1] = &pump.base;
    world_init(&w, server_inst, 2);
    pump.world = &w;
    world_connect(&w, client_inst, 2);
    wait_count(&w, &w.client_shutdowns, 1);
    assert_int_equal(w.client_setup_error, RS_OK);
    assert_string_equal(w.alpn, "x-echo");
    assert_false(w.data_error);
    assert_int_equal(w.bytes_checked, pump.total);
    wait_count(&w, &w.server_shutdowns, 1);
    world_destroy(&w);
    rs_tls_installer_destroy(server_inst[1]);
    rs_tls_installer_destroy(client_inst[0]);
    rs_tls_installer_destroy(server_inst[0]);
    rs_tls_ctx_release(cctx);
    rs_tls_ctx_release(sctx);
}

static int teardown_suite(void **state) {
    (void)state;
    tls_test_remove_cert_dir();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_64mib_with_back_pressure),
        cmocka_unit_test(test_resumption_over_sockets),
        cmocka_unit_test(test_failing_tls_installer),
        cmocka_unit_test(test_alpn_installer),
    };
    tls_test_cert_dir();
    return cmocka_run_group_tests_name("tls_bootstrap", tests, NULL, teardown_suite);
}
