/* echo_pipeline: a TCP echo server on localhost and four clients that connect
 * by name, all made of channels built by the bootstraps on a group of two
 * loops. With read back-pressure on, each handler reopens its window as it
 * consumes (the default window is RS_CHANNEL_DEFAULT_READ_WINDOW bytes). */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define CLIENTS 4

static atomic_int open_connections = 2 * CLIENTS; /* server and client sides */
static atomic_int failures;

static void check(int err, const char *what) {
    if (err) fprintf(stderr, "echo_pipeline: %s: %s\n", what, rs_strerror(err)), exit(1);
}

/* A handler per connection: the server's echoes, the client's checks the echo. */
typedef struct line_handler {
    rs_channel_handler_t base;
    char line[32], echo[32];
    size_t len, got;
} line_handler_t;

static int echo_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    size_t n = message->message_data.len;
    (void)h;
    /* The message is ours now: send it back, leftwards, to the socket handler. */
    int err = rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE);
    if (err) rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), message);
    if (err) rs_channel_shutdown(rs_channel_slot_get_channel(slot), err);
    return rs_channel_slot_increment_read_window(slot, n); /* done with n bytes */
}

static int check_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    line_handler_t *c = (line_handler_t *)h->impl;
    rs_channel_t *channel = rs_channel_slot_get_channel(slot);
    size_t n = message->message_data.len;
    if (c->got + n <= sizeof c->echo) memcpy(c->echo + c->got, message->message_data.buffer, n);
    c->got += n;
    rs_channel_release_message_to_pool(channel, message);
    if (c->got < c->len) return rs_channel_slot_increment_read_window(slot, n); /* more to come */
    bool ok = c->got == c->len && memcmp(c->echo, c->line, c->len) == 0;
    printf("client: sent \"%s\", echo %s\n", c->line, ok ? "matches" : "is wrong");
    if (!ok) atomic_fetch_add(&failures, 1);
    return rs_channel_shutdown(channel, RS_OK); /* the server sees the end of the stream */
}

static void handler_free(rs_channel_handler_t *h) { free(h->impl); }
/* Entries left NULL take their documented defaults (see rs_channel_handler_vtable_t). */
static const rs_channel_handler_vtable_t echo_vtable = {.process_read_message = echo_read, .destroy = handler_free};
static const rs_channel_handler_vtable_t check_vtable = {.process_read_message = check_read, .destroy = handler_free};

/* The installers: the application handler goes right of the socket handler. */
static int install(rs_channel_installer_t *installer, rs_channel_t *channel, rs_channel_slot_t *slot,
                   rs_channel_installer_done_fn *done, void *done_ctx) {
    static atomic_int next_client;
    line_handler_t *h = calloc(1, sizeof *h);
    if (!h) return RS_ENOMEM;
    h->base = (rs_channel_handler_t){.vtable = installer->impl, .impl = h};
    if (installer->impl == &check_vtable)
        h->len = (size_t)snprintf(h->line, sizeof h->line, "hello from client %d", atomic_fetch_add(&next_client, 1) + 1);
    rs_channel_slot_t *added;
    int err = rs_channel_slot_add_handler_right(slot, &h->base, &added);
    if (err) return free(h), err;
    done(channel, added, RS_OK, done_ctx);
    return RS_OK;
}

static const rs_channel_installer_vtable_t installer_vtable = {.install = install};
static rs_channel_installer_t echo_installer = {&installer_vtable, (void *)&echo_vtable};
static rs_channel_installer_t check_installer = {&installer_vtable, (void *)&check_vtable};

/* >>callbacks: each runs on its connection's loop */

static void on_incoming_setup(rs_server_listener_t *l, rs_channel_t *channel, int error, void *user_data) {
    (void)l, (void)channel, (void)user_data;
    if (error) atomic_fetch_add(&failures, 1), atomic_fetch_sub(&open_connections, 1);
}

static void on_incoming_shutdown(rs_server_listener_t *l, rs_channel_t *channel, int error, void *user_data) {
    (void)l, (void)channel, (void)user_data;
    printf("server: connection closed (%s)\n", rs_err_name(error)); /* RS_EEOF: the client hung up */
    atomic_fetch_sub(&open_connections, 1);
}

static void on_client_setup(rs_client_bootstrap_t *b, rs_channel_t *channel, int error, void *user_data) {
    (void)b, (void)user_data;
    if (error) {
        fprintf(stderr, "client: connect failed: %s\n", rs_strerror(error));
        atomic_fetch_add(&failures, 1), atomic_fetch_sub(&open_connections, 1);
        return;
    }
    /* The check handler sits in the last slot: write its line from there. */
    rs_channel_slot_t *slot = rs_channel_slot_get_right(rs_channel_get_first_slot(channel));
    line_handler_t *c = (line_handler_t *)rs_channel_slot_get_handler(slot)->impl;
    rs_io_message_t *m = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, c->len);
    if (m) memcpy(m->message_data.buffer, c->line, c->len), m->message_data.len = c->len;
    if (!m || rs_channel_slot_send_message(slot, m, RS_CHANNEL_DIR_WRITE) != RS_OK) {
        if (m) rs_channel_release_message_to_pool(channel, m);
        rs_channel_shutdown(channel, RS_ENOMEM);
    }
}

static void on_client_shutdown(rs_client_bootstrap_t *b, rs_channel_t *channel, int error, void *user_data) {
    (void)b, (void)channel, (void)user_data;
    if (error != RS_OK) atomic_fetch_add(&failures, 1);
    atomic_fetch_sub(&open_connections, 1);
}

int main(void) {
    int err = RS_OK;
    rs_event_loop_group_t *group = rs_event_loop_group_new(&(rs_event_loop_group_options_t){.loop_count = 2}, &err);
    check(group ? RS_OK : err, "rs_event_loop_group_new");
    rs_server_bootstrap_t *server = rs_server_bootstrap_new(&(rs_server_bootstrap_options_t){.group = group}, &err);
    check(server ? RS_OK : err, "rs_server_bootstrap_new");
    rs_channel_installer_t *server_installers[] = {&echo_installer}, *client_installers[] = {&check_installer};
    rs_server_listener_t *listener = rs_server_bootstrap_new_listener(server, &(rs_server_listener_options_t){
        .host = "localhost", .port = 0, /* any free port */ .installers = server_installers, .installer_count = 1,
        .on_incoming_setup = on_incoming_setup, .on_incoming_shutdown = on_incoming_shutdown,
        .enable_read_back_pressure = true /* each handler reopens its window as it consumes */}, &err);
    check(listener ? RS_OK : err, "rs_server_bootstrap_new_listener");
    rs_endpoint_t address;
    check(rs_server_listener_get_address(listener, &address), "rs_server_listener_get_address");
    printf("server: listening on localhost:%u\n", (unsigned)address.port);
    rs_client_bootstrap_t *client = rs_client_bootstrap_new(&(rs_client_bootstrap_options_t){.group = group}, &err);
    check(client ? RS_OK : err, "rs_client_bootstrap_new");
    for (int i = 0; i < CLIENTS; i++) {
        check(rs_client_bootstrap_connect(client, &(rs_client_connect_options_t){
                  .host = "localhost", .port = address.port, .installers = client_installers, .installer_count = 1,
                  .on_setup = on_client_setup, .on_shutdown = on_client_shutdown, .enable_read_back_pressure = true}),
              "rs_client_bootstrap_connect");
    }
    uint64_t deadline = rs_clock_now_ns() + 5 * RS_NS_PER_SEC; /* bounded, whatever happens */
    while (atomic_load(&open_connections) > 0 && rs_clock_now_ns() < deadline) rs_thread_sleep_ns(RS_NS_PER_MS);
    bool all_done = atomic_load(&open_connections) == 0;
    rs_server_bootstrap_destroy_listener(listener, true);
    rs_client_bootstrap_destroy(client);
    rs_server_bootstrap_destroy(server);
    rs_event_loop_group_destroy(group); /* stops and joins every loop */
    int failed = atomic_load(&failures);
    printf("%d clients, %d failures%s; all shut down\n", CLIENTS, failed, all_done ? "" : ", timed out");
    return all_done && failed == 0 ? 0 : 1;
}
