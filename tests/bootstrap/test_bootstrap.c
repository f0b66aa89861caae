/*
 * Client and server bootstraps: pipelines by name or literal, installers
 * (failing, late), Happy Eyeballs (a black-holed address loses to a good one
 * after the attempt delay), all addresses refused, the overall timeout,
 * listener destroy (graceful and abortive) with connections in flight, many
 * connections spread over a group, and allocation-failure sweeps.
 *
 * Only loopback addresses. The "black hole" is a listener whose accept queue
 * is full: the kernel drops further SYNs, so a connect to it hangs.
 *
 * Loop threads never assert: they record under the world's mutex and the test
 * thread checks. Every wait is bounded.
 */
#include "test_util.h"

#if !defined(_WIN32)
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#define WAIT_NS (20 * RS_NS_PER_SEC)
#define INSTALLER_ERROR RS_EACCES /* what a failing installer reports: stands out in the results */
#define PAYLOAD "hello through the bootstraps"

/* ------------------------------------------------------------------ world */

typedef struct world {
    const rs_allocator_t *allocator;
    rs_event_loop_group_t *group;
    rs_server_bootstrap_t *server;
    rs_client_bootstrap_t *client;
    rs_host_resolver_t *resolver; /* when the test supplies the addresses */
    rs_server_listener_t *listener;
    rs_endpoint_t listen_address;

    /* The addresses the fake resolve function answers with, per family. */
    rs_endpoint_t fake_v4[4];
    size_t fake_v4_count;
    rs_endpoint_t fake_v6[4];
    size_t fake_v6_count;

    rs_mutex_t lock; /* guards everything below */
    rs_condvar_t cond;
    int server_setups;
    int server_setup_errors;
    int server_shutdowns;
    int listener_destroyed;
    int client_setups;
    int client_setup_error; /* the last one */
    int client_setup_errors;
    int client_shutdowns;
    int client_shutdown_error;
    int echoes_ok;       /* client connections that got their payload back */
    int loop_hits[8];    /* server connections per loop index */
    uint64_t setup_ns;   /* when the last client setup was reported */
    rs_endpoint_t client_peer; /* the address the last client connected to */
    bool passive_clients;      /* set up, then neither send nor close */
    rs_channel_t *client_channels[8]; /* passive clients' channels, to close them later */
    int passive_count;
} world_t;

static void world_signal(world_t *w) {
    rs_condvar_broadcast(&w->cond);
    rs_mutex_unlock(&w->lock);
}

/* Wait until *counter >= target, bounded. */
static bool world_wait(world_t *w, const int *counter, int target) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    bool ok;
    rs_mutex_lock(&w->lock);
    while (*counter < target && rs_clock_now_ns() < deadline) {
        rs_condvar_wait_until(&w->cond, &w->lock, deadline);
    }
    ok = *counter >= target;
    rs_mutex_unlock(&w->lock);
    return ok;
}

static int world_get(world_t *w, const int *counter) {
    int v;
    rs_mutex_lock(&w->lock);
    v = *counter;
    rs_mutex_unlock(&w->lock);
    return v;
}

/* ------------------------------------------------------ handlers, installers */

/* Server side: writes every message back. */
static int echo_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    size_t n = message->message_data.len;
    int err = rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE);
    (void)h;
    if (err) {
        /* Not taken (out of memory in the sweep): give up on the connection, loudly. */
        rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), message);
        rs_channel_shutdown(rs_channel_slot_get_channel(slot), err);
    }
    return rs_channel_slot_increment_read_window(slot, n);
}

static void handler_free(rs_channel_handler_t *h) {
    rs_mem_free(&rs_test_allocator, h);
}

static const rs_channel_handler_vtable_t echo_vtable = {echo_read, NULL, NULL, NULL, NULL, NULL, handler_free,
                                                        NULL, NULL, NULL};

/* Client side: sends the payload once set up, closes once it came back. */
typedef struct sink {
    rs_channel_handler_t base;
    world_t *world;
    char got[64];
    size_t len;
} sink_t;

static int sink_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    sink_t *s = (sink_t *)h->impl;
    rs_channel_t *channel = rs_channel_slot_get_channel(slot);
    size_t n = message->message_data.len;
    if (s->len + n <= sizeof(s->got)) {
        memcpy(s->got + s->len, message->message_data.buffer, n);
    }
    s->len += n;
    rs_channel_release_message_to_pool(channel, message);
    if (s->len == strlen(PAYLOAD)) {
        world_t *w = s->world;
        rs_mutex_lock(&w->lock);
        w->echoes_ok += memcmp(s->got, PAYLOAD, s->len) == 0;
        world_signal(w);
        rs_channel_shutdown(channel, RS_OK);
    }
    return rs_channel_slot_increment_read_window(slot, n);
}

static void sink_destroy(rs_channel_handler_t *h) {
    rs_mem_free(&rs_test_allocator, h->impl);
}

static const rs_channel_handler_vtable_t sink_vtable = {sink_read, NULL, NULL, NULL, NULL, NULL, sink_destroy,
                                                        NULL, NULL, NULL};

/* An installer for one of the handlers above, completing now, later (after a
 * channel task) or failing. */
typedef enum install_mode { INSTALL_NOW, INSTALL_LATER, INSTALL_FAIL, INSTALL_FAIL_LATER } install_mode_t;

typedef struct app_installer {
    rs_channel_installer_t base;
    world_t *world;
    bool client_side;
    install_mode_t mode;
    int destroyed;
} app_installer_t;

typedef struct late_done {
    rs_channel_task_t task;
    rs_channel_t *channel;
    rs_channel_slot_t *slot;
    int error;
    rs_channel_installer_done_fn *done;
    void *done_ctx;
} late_done_t;

static void late_done_task(rs_channel_task_t *task, void *arg, rs_task_status_t status) {
    late_done_t *late = (late_done_t *)arg;
    (void)task;
    late->done(late->channel, status == RS_TASK_STATUS_RUN ? late->slot : NULL,
               status == RS_TASK_STATUS_RUN ? late->error : RS_ECANCELED, late->done_ctx);
    rs_mem_free(&rs_test_allocator, late);
}

static int app_install(rs_channel_installer_t *installer, rs_channel_t *channel, rs_channel_slot_t *slot,
                       rs_channel_installer_done_fn *done, void *done_ctx) {
    app_installer_t *ai = (app_installer_t *)installer->impl;
    rs_channel_handler_t *handler;
    rs_channel_slot_t *added = NULL;
    int err;
    if (ai->client_side) {
        sink_t *s = (sink_t *)rs_mem_calloc(&rs_test_allocator, 1, sizeof(sink_t));
        if (!s) {
            return RS_ENOMEM;
        }
        s->world = ai->world;
        s->base.vtable = &sink_vtable;
        s->base.impl = s;
        handler = &s->base;
    } else {
        handler = (rs_channel_handler_t *)rs_mem_calloc(&rs_test_allocator, 1, sizeof(rs_channel_handler_t));
        if (!handler) {
            return RS_ENOMEM;
        }
        handler->vtable = &echo_vtable;
        handler->impl = handler;
    }
    err = rs_channel_slot_add_handler_right(slot, handler, &added);
    if (err) {
        handler->vtable->destroy(handler);
        return err;
    }
    if (ai->mode == INSTALL_NOW) {
        done(channel, added, RS_OK, done_ctx);
    } else if (ai->mode == INSTALL_FAIL) {
        done(channel, NULL, INSTALLER_ERROR, done_ctx);
    } else {
        late_done_t *late = (late_done_t *)rs_mem_calloc(&rs_test_allocator, 1, sizeof(late_done_t));
        if (!late) {
            return RS_ENOMEM; /* the handler stays in the channel, which destroys it */
        }
        late->channel = channel;
        late->slot = added;
        late->error = ai->mode == INSTALL_FAIL_LATER ? INSTALLER_ERROR : RS_OK;
        late->done = done;
        late->done_ctx = done_ctx;
        rs_channel_task_init(&late->task, late_done_task, late, "late_install");
        rs_channel_schedule_task_future(channel, &late->task, rs_event_loop_now_ns(rs_channel_get_loop(channel)) +
                                                                  20 * RS_NS_PER_MS);
    }
    return RS_OK;
}

static void app_installer_destroy(rs_channel_installer_t *installer) {
    app_installer_t *ai = (app_installer_t *)installer->impl;
    rs_mutex_lock(&ai->world->lock);
    ai->destroyed++;
    world_signal(ai->world);
}

static const rs_channel_installer_vtable_t app_installer_vtable = {app_install, app_installer_destroy};

static void app_installer_init(app_installer_t *ai, world_t *w, bool client_side, install_mode_t mode) {
    memset(ai, 0, sizeof(*ai));
    ai->base.vtable = &app_installer_vtable;
    ai->base.impl = ai;
    ai->world = w;
    ai->client_side = client_side;
    ai->mode = mode;
}

/* ---------------------------------------------------------- server callbacks */

static int loop_index(world_t *w, rs_event_loop_t *loop) {
    size_t i;
    for (i = 0; i < rs_event_loop_group_get_loop_count(w->group) && i < 8; ++i) {
        if (rs_event_loop_group_get_loop_at(w->group, i) == loop) {
            return (int)i;
        }
    }
    return 7;
}

static void on_incoming_setup(rs_server_listener_t *listener, rs_channel_t *channel, int error, void *user_data) {
    world_t *w = (world_t *)user_data;
    (void)listener;
    rs_mutex_lock(&w->lock);
    if (error) {
        w->server_setup_errors++;
    } else {
        w->server_setups++;
        w->loop_hits[loop_index(w, rs_channel_get_loop(channel))]++;
    }
    world_signal(w);
}

static void on_incoming_shutdown(rs_server_listener_t *listener, rs_channel_t *channel, int error, void *user_data) {
    world_t *w = (world_t *)user_data;
    (void)listener;
    (void)channel;
    (void)error;
    rs_mutex_lock(&w->lock);
    w->server_shutdowns++;
    world_signal(w);
}

static void on_listener_destroyed(rs_server_listener_t *listener, void *user_data) {
    world_t *w = (world_t *)user_data;
    (void)listener;
    rs_mutex_lock(&w->lock);
    w->listener_destroyed++;
    world_signal(w);
}

/* ---------------------------------------------------------- client callbacks */

static rs_channel_slot_t *last_slot(rs_channel_t *channel) {
    rs_channel_slot_t *slot = rs_channel_get_first_slot(channel);
    while (slot && rs_channel_slot_get_right(slot)) {
        slot = rs_channel_slot_get_right(slot);
    }
    return slot;
}

static void send_payload(rs_channel_t *channel) {
    rs_io_message_t *m = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, strlen(PAYLOAD));
    if (!m) {
        rs_channel_shutdown(channel, RS_ENOMEM);
        return;
    }
    memcpy(m->message_data.buffer, PAYLOAD, strlen(PAYLOAD));
    m->message_data.len = strlen(PAYLOAD);
    if (rs_channel_slot_send_message(last_slot(channel), m, RS_CHANNEL_DIR_WRITE) != RS_OK) {
        rs_channel_release_message_to_pool(channel, m);
        rs_channel_shutdown(channel, RS_EINVAL);
    }
}

static void on_client_setup(rs_client_bootstrap_t *bootstrap, rs_channel_t *channel, int error, void *user_data) {
    world_t *w = (world_t *)user_data;
    rs_endpoint_t peer;
    (void)bootstrap;
    memset(&peer, 0, sizeof(peer));
    if (!error) {
        rs_channel_slot_t *first = rs_channel_get_first_slot(channel);
        rs_socket_get_remote_address(rs_socket_handler_get_socket(rs_channel_slot_get_handler(first)), &peer);
        if (!w->passive_clients) {
            send_payload(channel);
        }
    }
    rs_mutex_lock(&w->lock);
    if (!error && w->passive_clients && w->passive_count < 8) {
        w->client_channels[w->passive_count++] = channel;
    }
    if (error) {
        w->client_setup_errors++;
        w->client_setup_error = error;
    } else {
        w->client_setups++;
        w->client_peer = peer;
    }
    w->setup_ns = rs_clock_now_ns();
    world_signal(w);
}

static void on_client_shutdown(rs_client_bootstrap_t *bootstrap, rs_channel_t *channel, int error, void *user_data) {
    world_t *w = (world_t *)user_data;
    (void)bootstrap;
    (void)channel;
    rs_mutex_lock(&w->lock);
    w->client_shutdowns++;
    w->client_shutdown_error = error;
    world_signal(w);
}

/* ------------------------------------------------------ resolver and world */

static int fake_resolve(const char *host_name, rs_socket_domain_t family, rs_endpoint_t *out, size_t capacity,
                        size_t *count_out, void *user_data) {
    world_t *w = (world_t *)user_data;
    const rs_endpoint_t *src = family == RS_SOCKET_DOMAIN_IPV6 ? w->fake_v6 : w->fake_v4;
    size_t n = family == RS_SOCKET_DOMAIN_IPV6 ? w->fake_v6_count : w->fake_v4_count;
    (void)host_name;
    if (n > capacity) {
        n = capacity;
    }
    memcpy(out, src, n * sizeof(*out));
    *count_out = n;
    return RS_OK;
}

static int resolver_gone;

static void on_resolver_shutdown(void *user_data) {
    (void)user_data;
    __atomic_store_n(&resolver_gone, 1, __ATOMIC_SEQ_CST);
}

typedef struct world_options {
    rs_event_loop_backend_t backend;
    uint16_t loops;
    bool fake_dns;
    uint32_t attempt_delay_ms;
    const rs_allocator_t *allocator; /* (default: the leak-checking one) */
} world_options_t;

/* Returns an error instead of asserting, for the allocation-failure sweep. */
static int world_try_init(world_t *w, const world_options_t *o) {
    rs_event_loop_group_options_t go;
    rs_host_resolver_options_t ro;
    rs_client_bootstrap_options_t co;
    rs_server_bootstrap_options_t so;
    int err = RS_OK;
    memset(w, 0, sizeof(*w));
    assert_int_equal(rs_mutex_init(&w->lock), RS_OK);
    assert_int_equal(rs_condvar_init(&w->cond), RS_OK);
    w->allocator = o->allocator ? o->allocator : &rs_test_allocator;
    memset(&go, 0, sizeof(go));
    go.allocator = &rs_test_allocator; /* the loops are not what a sweep is about */
    go.backend = o->backend;
    go.loop_count = o->loops ? o->loops : 2;
    w->group = rs_event_loop_group_new(&go, &err);
    assert_non_null(w->group);
    memset(&ro, 0, sizeof(ro));
    ro.allocator = w->allocator;
    ro.resolve_fn = o->fake_dns ? fake_resolve : NULL;
    ro.resolve_user_data = w;
    ro.on_shutdown_complete = on_resolver_shutdown;
    __atomic_store_n(&resolver_gone, 0, __ATOMIC_SEQ_CST);
    w->resolver = rs_host_resolver_new(&ro, &err);
    if (!w->resolver) {
        __atomic_store_n(&resolver_gone, 1, __ATOMIC_SEQ_CST);
        return err;
    }
    memset(&co, 0, sizeof(co));
    co.allocator = w->allocator;
    co.group = w->group;
    co.resolver = w->resolver;
    co.connection_attempt_delay_ms = o->attempt_delay_ms;
    w->client = rs_client_bootstrap_new(&co, &err);
    if (!w->client) {
        return err;
    }
    memset(&so, 0, sizeof(so));
    so.allocator = w->allocator;
    so.group = w->group;
    w->server = rs_server_bootstrap_new(&so, &err);
    return w->server ? RS_OK : err;
}

static void world_init(world_t *w, const world_options_t *o) {
    assert_int_equal(world_try_init(w, o), RS_OK);
}

static void wait_for_resolver_gone(void) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    while (!__atomic_load_n(&resolver_gone, __ATOMIC_SEQ_CST) && rs_clock_now_ns() < deadline) {
        rs_thread_sleep_ns(RS_NS_PER_MS);
    }
    assert_true(__atomic_load_n(&resolver_gone, __ATOMIC_SEQ_CST));
}

static void world_cleanup(world_t *w) {
    if (w->listener) {
        assert_int_equal(rs_server_bootstrap_destroy_listener(w->listener, false), RS_OK);
        assert_true(world_wait(w, &w->listener_destroyed, 1));
    }
    rs_client_bootstrap_destroy(w->client);
    rs_server_bootstrap_destroy(w->server);
    rs_host_resolver_destroy(w->resolver);
    wait_for_resolver_gone();
    assert_int_equal(rs_event_loop_group_destroy(w->group), RS_OK);
    rs_condvar_cleanup(&w->cond);
    rs_mutex_cleanup(&w->lock);
}

static int world_try_listen_in(world_t *w, app_installer_t *installer, rs_socket_domain_t domain, const char *host,
                               uint32_t port) {
    rs_channel_installer_t *list[1];
    rs_server_listener_options_t lo;
    rs_socket_options_t so;
    int err = RS_OK;
    memset(&so, 0, sizeof(so));
    so.domain = domain;
    memset(&lo, 0, sizeof(lo));
    lo.socket_options = &so;
    lo.host = host;
    lo.port = port;
    list[0] = &installer->base;
    lo.installers = list;
    lo.installer_count = 1;
    lo.on_incoming_setup = on_incoming_setup;
    lo.on_incoming_shutdown = on_incoming_shutdown;
    lo.on_listener_destroyed = on_listener_destroyed;
    lo.user_data = w;
    w->listener = rs_server_bootstrap_new_listener(w->server, &lo, &err);
    if (w->listener) {
        assert_int_equal(rs_server_listener_get_address(w->listener, &w->listen_address), RS_OK);
    }
    return err;
}

static int world_try_listen(world_t *w, app_installer_t *installer, const char *host, uint32_t port) {
    return world_try_listen_in(w, installer, RS_SOCKET_DOMAIN_IPV4, host, port);
}

static void world_listen(world_t *w, app_installer_t *installer, const char *host) {
    assert_int_equal(world_try_listen(w, installer, host, 0), RS_OK);
}

static int world_connect_in(world_t *w, app_installer_t *installer, rs_socket_domain_t domain, const char *host,
                            uint32_t port, uint32_t timeout_ms) {
    rs_channel_installer_t *list[1];
    rs_client_connect_options_t co;
    rs_socket_options_t so;
    memset(&so, 0, sizeof(so));
    so.domain = domain;
    so.connect_timeout_ms = timeout_ms;
    memset(&co, 0, sizeof(co));
    co.host = host;
    co.port = port;
    co.socket_options = &so;
    list[0] = &installer->base;
    co.installers = list;
    co.installer_count = 1;
    co.on_setup = on_client_setup;
    co.on_shutdown = on_client_shutdown;
    co.user_data = w;
    return rs_client_bootstrap_connect(w->client, &co);
}

static int world_connect(world_t *w, app_installer_t *installer, const char *host, uint32_t port,
                         uint32_t timeout_ms) {
    return world_connect_in(w, installer, RS_SOCKET_DOMAIN_IPV4, host, port, timeout_ms);
}

static rs_endpoint_t ip(const char *text, uint32_t port) {
    rs_endpoint_t ep;
    assert_int_equal(rs_endpoint_from_ip(&ep, text, port), RS_OK);
    return ep;
}

/* A port with nothing listening on 127.0.0.1 (nor, in practice, on 127.0.0.3). */
static uint32_t closed_port(void) {
    rs_socket_t *s = rs_socket_new(NULL, NULL);
    rs_endpoint_t ep = ip("127.0.0.1", 0);
    assert_non_null(s);
    assert_int_equal(rs_socket_bind(s, &ep), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(s, &ep), RS_OK);
    rs_socket_destroy(s);
    return ep.port;
}

/* ================================================================= tests */

/* A literal address: setup, one echo, shutdown, every callback exactly once. */
static void connect_by_literal_echoes_and_shuts_down_once(rs_event_loop_backend_t b) {
    world_options_t o = {.backend = b};
    app_installer_t server_side, client_side;
    world_t w;
    world_init(&w, &o);
    app_installer_init(&server_side, &w, false, INSTALL_NOW);
    app_installer_init(&client_side, &w, true, INSTALL_NOW);
    world_listen(&w, &server_side, "127.0.0.1");
    assert_int_equal(world_connect(&w, &client_side, "127.0.0.1", w.listen_address.port, 0), RS_OK);
    assert_true(world_wait(&w, &w.client_shutdowns, 1));
    assert_true(world_wait(&w, &w.server_shutdowns, 1));
    assert_true(world_wait(&w, &client_side.destroyed, 1)); /* after on_setup */
    rs_thread_sleep_ns(20 * RS_NS_PER_MS);                 /* nothing fires twice */
    rs_mutex_lock(&w.lock);
    assert_int_equal(w.echoes_ok, 1);
    assert_int_equal(w.client_setups, 1);
    assert_int_equal(w.client_setup_errors, 0);
    assert_int_equal(w.client_shutdowns, 1);
    assert_int_equal(w.client_shutdown_error, RS_OK);
    assert_int_equal(w.server_setups, 1);
    assert_int_equal(w.server_shutdowns, 1);
    assert_int_equal(server_side.destroyed, 0); /* the listener still uses it */
    rs_mutex_unlock(&w.lock);
    world_cleanup(&w);
    assert_int_equal(server_side.destroyed, 1);
    assert_int_equal(client_side.destroyed, 1);
    assert_int_equal(w.listener_destroyed, 1);
}
RS_TEST_PER_BACKEND(bootstrap_, connect_by_literal_echoes_and_shuts_down_once)

/* "localhost" through getaddrinfo, to a listener on 127.0.0.1 only: if ::1 is
 * among the answers it is tried first and refused; the IPv4 address wins. */
static void connect_by_name_to_a_one_family_listener(rs_event_loop_backend_t b) {
    world_options_t o = {.backend = b};
    app_installer_t server_side, client_side;
    rs_endpoint_t want = ip("127.0.0.1", 0);
    world_t w;
    world_init(&w, &o);
    app_installer_init(&server_side, &w, false, INSTALL_NOW);
    app_installer_init(&client_side, &w, true, INSTALL_NOW);
    world_listen(&w, &server_side, "127.0.0.1");
    assert_int_equal(world_connect(&w, &client_side, "localhost", w.listen_address.port, 0), RS_OK);
    assert_true(world_wait(&w, &w.client_shutdowns, 1));
    rs_mutex_lock(&w.lock);
    assert_int_equal(w.client_setups, 1);
    assert_int_equal(w.echoes_ok, 1);
    assert_int_equal(w.client_peer.domain, RS_SOCKET_DOMAIN_IPV4);
    assert_memory_equal(w.client_peer.addr, want.addr, 4);
    rs_mutex_unlock(&w.lock);
    world_cleanup(&w);
}
RS_TEST_PER_BACKEND(bootstrap_, connect_by_name_to_a_one_family_listener)

/* Happy Eyeballs: the first address is a black hole, the second is good. The
 * good one wins once the attempt delay has passed (checked loosely: not
 * before it), and the hanging attempt is closed (nothing leaks). */
#define ATTEMPT_DELAY_MS 150

static void black_hole_first_loses_after_the_attempt_delay(rs_event_loop_backend_t b) {
    world_options_t o = {.backend = b, .fake_dns = true, .attempt_delay_ms = ATTEMPT_DELAY_MS};
    app_installer_t server_side, client_side;
    rs_test_black_hole_t bh;
    uint64_t start;
    rs_endpoint_t want = ip("127.0.0.1", 0);
    world_t w;
    rs_test_black_hole_or_skip();
    world_init(&w, &o);
    app_installer_init(&server_side, &w, false, INSTALL_NOW);
    app_installer_init(&client_side, &w, true, INSTALL_NOW);
    world_listen(&w, &server_side, "127.0.0.1");
    rs_test_black_hole_open(&bh, "127.0.0.2", (uint16_t)w.listen_address.port);
    w.fake_v4[0] = ip("127.0.0.2", 0);
    w.fake_v4[1] = ip("127.0.0.1", 0);
    w.fake_v4_count = 2;
    start = rs_clock_now_ns();
    assert_int_equal(world_connect(&w, &client_side, "black-hole.test", w.listen_address.port, 0), RS_OK);
    assert_true(world_wait(&w, &w.client_shutdowns, 1));
    rs_mutex_lock(&w.lock);
    assert_int_equal(w.client_setups, 1);
    assert_int_equal(w.client_setup_errors, 0);
    assert_int_equal(w.echoes_ok, 1);
    assert_memory_equal(w.client_peer.addr, want.addr, 4);
    assert_true(w.setup_ns - start >= (uint64_t)(ATTEMPT_DELAY_MS - 10) * RS_NS_PER_MS);
    rs_mutex_unlock(&w.lock);
    world_cleanup(&w);
    rs_test_black_hole_close(&bh);
}
RS_TEST_PER_BACKEND(bootstrap_, black_hole_first_loses_after_the_attempt_delay)

/* Both families interleave, IPv6 first: a refused ::1 and a refused
 * 127.0.0.3, then the good 127.0.0.1: each failure starts the next attempt at
 * once (no attempt delay is waited), so this is fast even with a long delay. */
static void refused_attempts_move_on_at_once(rs_event_loop_backend_t b) {
    world_options_t o = {.backend = b, .fake_dns = true, .attempt_delay_ms = 2000};
    app_installer_t server_side, client_side;
    uint64_t start;
    rs_endpoint_t want = ip("127.0.0.1", 0);
    world_t w;
    world_init(&w, &o);
    app_installer_init(&server_side, &w, false, INSTALL_NOW);
    app_installer_init(&client_side, &w, true, INSTALL_NOW);
    world_listen(&w, &server_side, "127.0.0.1");
    w.fake_v6[0] = ip("::1", 0);
    w.fake_v6_count = 1;
    w.fake_v4[0] = ip("127.0.0.3", 0);
    w.fake_v4[1] = ip("127.0.0.1", 0);
    w.fake_v4_count = 2;
    start = rs_clock_now_ns();
    assert_int_equal(world_connect(&w, &client_side, "mixed.test", w.listen_address.port, 0), RS_OK);
    assert_true(world_wait(&w, &w.client_shutdowns, 1));
    rs_mutex_lock(&w.lock);
    assert_int_equal(w.client_setups, 1);
    assert_memory_equal(w.client_peer.addr, want.addr, 4);
    assert_true(w.setup_ns - start < 2000 * RS_NS_PER_MS); /* never waited a full attempt delay */
    rs_mutex_unlock(&w.lock);
    world_cleanup(&w);
}
RS_TEST_PER_BACKEND(bootstrap_, refused_attempts_move_on_at_once)

/* Every address refused: one setup error, the last attempt's, and no shutdown. */
static void all_addresses_refused_is_one_error(rs_event_loop_backend_t b) {
    world_options_t o = {.backend = b, .fake_dns = true};
    app_installer_t client_side;
    uint32_t port = closed_port();
    world_t w;
    world_init(&w, &o);
    app_installer_init(&client_side, &w, true, INSTALL_NOW);
    w.fake_v4[0] = ip("127.0.0.1", 0);
    w.fake_v4[1] = ip("127.0.0.3", 0);
    w.fake_v4_count = 2;
    assert_int_equal(world_connect(&w, &client_side, "refused.test", port, 0), RS_OK);
    assert_true(world_wait(&w, &w.client_setup_errors, 1));
    assert_true(world_wait(&w, &client_side.destroyed, 1));
    rs_thread_sleep_ns(20 * RS_NS_PER_MS);
    rs_mutex_lock(&w.lock);
    assert_int_equal(w.client_setup_errors, 1);
    assert_int_equal(w.client_setup_error, RS_ECONNREFUSED);
    assert_int_equal(w.client_setups, 0);
    assert_int_equal(w.client_shutdowns, 0);
    rs_mutex_unlock(&w.lock);
    world_cleanup(&w);
}
RS_TEST_PER_BACKEND(bootstrap_, all_addresses_refused_is_one_error)

/* Only a black hole: the overall timeout ends it with RS_ETIMEDOUT. An empty
 * answer is RS_EDNS_NOT_FOUND-like: no address, no attempt. */
static void overall_timeout_and_no_address(rs_event_loop_backend_t b) {
    world_options_t o = {.backend = b, .fake_dns = true};
    app_installer_t server_side, client_side;
    rs_test_black_hole_t bh;
    world_t w;
    rs_test_black_hole_or_skip();
    world_init(&w, &o);
    app_installer_init(&server_side, &w, false, INSTALL_NOW);
    app_installer_init(&client_side, &w, true, INSTALL_NOW);
    world_listen(&w, &server_side, "127.0.0.1");
    rs_test_black_hole_open(&bh, "127.0.0.2", (uint16_t)w.listen_address.port);
    w.fake_v4[0] = ip("127.0.0.2", 0);
    w.fake_v4_count = 1;
    assert_int_equal(world_connect(&w, &client_side, "timeout.test", w.listen_address.port, 300), RS_OK);
    assert_true(world_wait(&w, &w.client_setup_errors, 1));
    rs_mutex_lock(&w.lock);
    assert_int_equal(w.client_setup_error, RS_ETIMEDOUT);
    rs_mutex_unlock(&w.lock);
    w.fake_v4_count = 0;
    assert_int_equal(world_connect(&w, &client_side, "nothing.test", w.listen_address.port, 0), RS_OK);
    assert_true(world_wait(&w, &w.client_setup_errors, 2));
    rs_mutex_lock(&w.lock);
    assert_true(w.client_setup_error == RS_EDNS_NOT_FOUND);
    assert_int_equal(w.client_setups, 0);
    rs_mutex_unlock(&w.lock);
    world_cleanup(&w);
    rs_test_black_hole_close(&bh);
}
RS_TEST_PER_BACKEND(bootstrap_, overall_timeout_and_no_address)

/* An installer that fails (at once or later) reaches on_setup with its error;
 * the channel is shut down and no on_shutdown follows. One that completes
 * later delays on_setup until it does. */
static void installers_that_fail_or_finish_late(rs_event_loop_backend_t b) {
    static const install_mode_t modes[] = {INSTALL_FAIL, INSTALL_FAIL_LATER, INSTALL_LATER};
    world_options_t o = {.backend = b};
    app_installer_t server_side;
    size_t i;
    world_t w;
    world_init(&w, &o);
    app_installer_init(&server_side, &w, false, INSTALL_NOW);
    world_listen(&w, &server_side, "127.0.0.1");
    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); ++i) {
        app_installer_t client_side;
        int errors = world_get(&w, &w.client_setup_errors);
        int setups = world_get(&w, &w.client_setups);
        app_installer_init(&client_side, &w, true, modes[i]);
        assert_int_equal(world_connect(&w, &client_side, "127.0.0.1", w.listen_address.port, 0), RS_OK);
        assert_true(world_wait(&w, &client_side.destroyed, 1));
        rs_mutex_lock(&w.lock);
        if (modes[i] == INSTALL_LATER) {
            assert_int_equal(w.client_setups, setups + 1);
            assert_int_equal(w.client_setup_errors, errors);
        } else {
            assert_int_equal(w.client_setup_errors, errors + 1);
            assert_int_equal(w.client_setup_error, INSTALLER_ERROR);
            assert_int_equal(w.client_setups, setups);
        }
        rs_mutex_unlock(&w.lock);
    }
    assert_true(world_wait(&w, &w.client_shutdowns, 1)); /* only the successful one */
    assert_true(world_wait(&w, &w.server_shutdowns, 3));
    rs_thread_sleep_ns(20 * RS_NS_PER_MS);
    assert_int_equal(world_get(&w, &w.client_shutdowns), 1);
    world_cleanup(&w);
}
RS_TEST_PER_BACKEND(bootstrap_, installers_that_fail_or_finish_late)

/* A Unix-domain path: no resolution, one attempt, the same pipeline. */
#if defined(_WIN32)
static void connect_to_a_unix_path(rs_event_loop_backend_t b) {
    (void)b;
    print_message("skipped on Windows: no Unix-domain sockets yet (RS_ENOTSUP)\n");
    skip();
}
#else
static void connect_to_a_unix_path(rs_event_loop_backend_t b) {
    world_options_t o = {.backend = b};
    app_installer_t server_side, client_side;
    char path[64];
    world_t w;
    snprintf(path, sizeof(path), "/tmp/reseau-bootstrap-%d.sock", (int)getpid());
    unlink(path);
    world_init(&w, &o);
    app_installer_init(&server_side, &w, false, INSTALL_NOW);
    app_installer_init(&client_side, &w, true, INSTALL_NOW);
    assert_int_equal(world_try_listen_in(&w, &server_side, RS_SOCKET_DOMAIN_LOCAL, path, 0), RS_OK);
    assert_int_equal(world_connect_in(&w, &client_side, RS_SOCKET_DOMAIN_LOCAL, path, 0, 0), RS_OK);
    assert_true(world_wait(&w, &w.client_shutdowns, 1));
    assert_true(world_wait(&w, &w.server_shutdowns, 1));
    rs_mutex_lock(&w.lock);
    assert_int_equal(w.client_setups, 1);
    assert_int_equal(w.echoes_ok, 1);
    rs_mutex_unlock(&w.lock);
    world_cleanup(&w);
    unlink(path);
}
#endif
RS_TEST_PER_BACKEND(bootstrap_, connect_to_a_unix_path)

/* Many connections over a 4-loop group: every one set up and shut down once,
 * and best-of-two spreads them (each loop gets a fair share, loosely). */
#define MANY 1000
#define MANY_BATCH 100

static void many_connections_spread_over_the_group(rs_event_loop_backend_t b) {
    world_options_t o = {.backend = b, .loops = 4};
    app_installer_t server_side, client_side;
    int i, done = 0;
    world_t w;
    world_init(&w, &o);
    app_installer_init(&server_side, &w, false, INSTALL_NOW);
    app_installer_init(&client_side, &w, true, INSTALL_NOW);
    world_listen(&w, &server_side, "127.0.0.1");
    while (done < MANY) {
        for (i = 0; i < MANY_BATCH; ++i) {
            assert_int_equal(world_connect(&w, &client_side, "127.0.0.1", w.listen_address.port, 0), RS_OK);
        }
        done += MANY_BATCH;
        assert_true(world_wait(&w, &w.client_shutdowns, done));
        assert_true(world_wait(&w, &w.server_shutdowns, done));
    }
    assert_true(world_wait(&w, &client_side.destroyed, MANY));
    rs_mutex_lock(&w.lock);
    assert_int_equal(w.echoes_ok, MANY);
    assert_int_equal(w.client_setups, MANY);
    assert_int_equal(w.client_setup_errors, 0);
    assert_int_equal(w.server_setups, MANY);
    for (i = 0; i < 4; ++i) {
        assert_true(w.loop_hits[i] >= MANY / 4 / 3); /* a third of an even share at least */
    }
    rs_mutex_unlock(&w.lock);
    world_cleanup(&w);
}
RS_TEST_PER_BACKEND(bootstrap_, many_connections_spread_over_the_group)

/* Destroying the listener with connections in flight: gracefully, it waits
 * for them (new connects are refused meanwhile); abortively, it shuts them
 * down. on_listener_destroyed fires once, after the last one. */
#define IN_FLIGHT 3

static void destroy_listener_with_connections_in_flight(rs_event_loop_backend_t b, bool abortive) {
    world_options_t o = {.backend = b};
    app_installer_t server_side, client_side;
    int i;
    world_t w;
    world_init(&w, &o);
    w.passive_clients = true;
    app_installer_init(&server_side, &w, false, INSTALL_NOW);
    app_installer_init(&client_side, &w, true, INSTALL_NOW);
    world_listen(&w, &server_side, "127.0.0.1");
    for (i = 0; i < IN_FLIGHT; ++i) {
        assert_int_equal(world_connect(&w, &client_side, "127.0.0.1", w.listen_address.port, 0), RS_OK);
    }
    assert_true(world_wait(&w, &w.server_setups, IN_FLIGHT));
    assert_true(world_wait(&w, &w.client_setups, IN_FLIGHT));
    assert_int_equal(rs_server_bootstrap_destroy_listener(w.listener, abortive), RS_OK);
    if (!abortive) {
        /* The passive clients keep the listener alive, so a second call is
         * safe here; after an abortive destroy it may already be freed. */
        assert_int_equal(rs_server_bootstrap_destroy_listener(w.listener, abortive), RS_EALREADY);
        rs_thread_sleep_ns(100 * RS_NS_PER_MS);
        assert_int_equal(world_get(&w, &w.listener_destroyed), 0); /* still waiting for them */
        assert_int_equal(world_get(&w, &w.server_shutdowns), 0);
        /* The listener is closed: a new connect is refused. */
        assert_int_equal(world_connect(&w, &client_side, "127.0.0.1", w.listen_address.port, 0), RS_OK);
        assert_true(world_wait(&w, &w.client_setup_errors, 1));
        assert_int_equal(w.client_setup_error, RS_ECONNREFUSED);
        for (i = 0; i < IN_FLIGHT; ++i) {
            assert_int_equal(rs_channel_shutdown(w.client_channels[i], RS_OK), RS_OK);
        }
    }
    assert_true(world_wait(&w, &w.listener_destroyed, 1));
    assert_true(world_wait(&w, &w.client_shutdowns, IN_FLIGHT));
    rs_mutex_lock(&w.lock);
    assert_int_equal(w.server_shutdowns, IN_FLIGHT); /* all before the listener's end */
    assert_int_equal(w.listener_destroyed, 1);
    rs_mutex_unlock(&w.lock);
    w.listener = NULL;
    world_cleanup(&w);
    assert_int_equal(server_side.destroyed, 1);
}

static void destroy_listener_gracefully_waits_for_connections(rs_event_loop_backend_t b) {
    destroy_listener_with_connections_in_flight(b, false);
}
RS_TEST_PER_BACKEND(bootstrap_, destroy_listener_gracefully_waits_for_connections)

static void destroy_listener_abortively_shuts_connections_down(rs_event_loop_backend_t b) {
    destroy_listener_with_connections_in_flight(b, true);
}
RS_TEST_PER_BACKEND(bootstrap_, destroy_listener_abortively_shuts_connections_down)

/* Argument checks: nothing is taken, no callback fires. */
static void bad_arguments_are_einval(void **state) {
    world_options_t o = {.backend = rs_test_backends[0]};
    app_installer_t client_side;
    rs_client_connect_options_t co;
    rs_server_listener_options_t lo;
    rs_channel_installer_t *null_installer[1] = {NULL};
    int err = RS_OK;
    world_t w;
    (void)state;
    world_init(&w, &o);
    app_installer_init(&client_side, &w, true, INSTALL_NOW);
    assert_int_equal(world_connect(&w, &client_side, "127.0.0.1", 0, 0), RS_EINVAL);
    assert_int_equal(world_connect(&w, &client_side, "127.0.0.1", 70000, 0), RS_EINVAL);
    memset(&co, 0, sizeof(co));
    co.host = "127.0.0.1";
    co.port = 1;
    assert_int_equal(rs_client_bootstrap_connect(w.client, &co), RS_EINVAL); /* no on_setup */
    co.on_setup = on_client_setup;
    co.installers = null_installer;
    co.installer_count = 1;
    assert_int_equal(rs_client_bootstrap_connect(w.client, &co), RS_EINVAL);
    assert_int_equal(rs_client_bootstrap_connect(NULL, &co), RS_EINVAL);
    assert_int_equal(rs_client_bootstrap_connect(w.client, NULL), RS_EINVAL);
    assert_null(rs_client_bootstrap_new(NULL, &err));
    assert_int_equal(err, RS_EINVAL);
    assert_null(rs_server_bootstrap_new(NULL, &err));
    assert_int_equal(err, RS_EINVAL);
    memset(&lo, 0, sizeof(lo));
    assert_null(rs_server_bootstrap_new_listener(w.server, &lo, &err)); /* no on_incoming_setup */
    assert_int_equal(err, RS_EINVAL);
    lo.on_incoming_setup = on_incoming_setup;
    lo.host = "example.invalid"; /* names other than localhost are not looked up */
    assert_null(rs_server_bootstrap_new_listener(w.server, &lo, &err));
    assert_int_equal(err, RS_EINVAL);
    assert_int_equal(rs_server_bootstrap_destroy_listener(NULL, false), RS_EINVAL);
    assert_int_equal(rs_server_listener_get_address(NULL, NULL), RS_EINVAL);
    rs_thread_sleep_ns(20 * RS_NS_PER_MS);
    assert_int_equal(world_get(&w, &w.client_setups) + world_get(&w, &w.client_setup_errors), 0);
    assert_int_equal(client_side.destroyed, 0);
    world_cleanup(&w);
}

/* Allocation failure at every step of a whole connection (resolver, both
 * bootstraps, listener, connect, accept, both pipelines): each run ends
 * cleanly, callbacks at most once each, and nothing leaks. */
static void allocation_failure_sweep_over_connect_and_accept(void **state) {
    size_t fail_at;
    (void)state;
    for (fail_at = 1;; ++fail_at) {
        rs_test_failing_alloc_t fa;
        world_options_t o = {.backend = rs_test_backends[0], .fake_dns = true};
        app_installer_t server_side, client_side;
        bool listening = false;
        int err;
        world_t w;
        rs_test_failing_alloc_init(&fa, fail_at);
        o.allocator = &fa.allocator;
        err = world_try_init(&w, &o);
        w.fake_v4[0] = ip("127.0.0.1", 0);
        w.fake_v4_count = 1;
        app_installer_init(&server_side, &w, false, INSTALL_NOW);
        app_installer_init(&client_side, &w, true, INSTALL_NOW);
        if (!err) {
            err = world_try_listen(&w, &server_side, "127.0.0.1", 0);
            listening = err == RS_OK;
        }
        if (!err) {
            err = world_connect(&w, &client_side, "localhost.test", w.listen_address.port, 0);
        }
        if (!err) {
            /* Setup is reported once, then, if it succeeded, shutdown once. */
            assert_true(world_wait(&w, &client_side.destroyed, 1));
            if (world_get(&w, &w.client_setups)) {
                assert_true(world_wait(&w, &w.client_shutdowns, 1));
            }
            assert_int_equal(world_get(&w, &w.client_setups) + world_get(&w, &w.client_setup_errors), 1);
        } else {
            assert_int_equal(err, RS_ENOMEM);
        }
        if (!listening) {
            w.listener = NULL;
        }
        world_cleanup(&w);
        if (rs_test_failing_alloc_failures(&fa) == 0) {
            assert_int_equal(w.echoes_ok, 1); /* the run with no failure works */
            break;
        }
        assert_true(fail_at < 2000);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(bootstrap_, connect_by_literal_echoes_and_shuts_down_once),
        RS_TEST_PER_BACKEND_TESTS(bootstrap_, connect_by_name_to_a_one_family_listener),
        RS_TEST_PER_BACKEND_TESTS(bootstrap_, black_hole_first_loses_after_the_attempt_delay),
        RS_TEST_PER_BACKEND_TESTS(bootstrap_, refused_attempts_move_on_at_once),
        RS_TEST_PER_BACKEND_TESTS(bootstrap_, all_addresses_refused_is_one_error),
        RS_TEST_PER_BACKEND_TESTS(bootstrap_, overall_timeout_and_no_address),
        RS_TEST_PER_BACKEND_TESTS(bootstrap_, installers_that_fail_or_finish_late),
        RS_TEST_PER_BACKEND_TESTS(bootstrap_, connect_to_a_unix_path),
        RS_TEST_PER_BACKEND_TESTS(bootstrap_, many_connections_spread_over_the_group),
        RS_TEST_PER_BACKEND_TESTS(bootstrap_, destroy_listener_gracefully_waits_for_connections),
        RS_TEST_PER_BACKEND_TESTS(bootstrap_, destroy_listener_abortively_shuts_connections_down),
        cmocka_unit_test(bad_arguments_are_einval),
        cmocka_unit_test(allocation_failure_sweep_over_connect_and_accept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
