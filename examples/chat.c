/* chat: a line-based chat server. Every line a client sends goes to every other client. Connections live
 * on a group of loops (one per CPU), so a line read on one loop's thread is written to channels of other
 * loops: rs_channel_write_threadsafe copies the bytes and hands them to each channel's own loop.
 * Usage: chat [PORT] (default 7001; 0 picks a free port). Listens on 127.0.0.1; stops on SIGINT/SIGTERM
 * (Windows: Ctrl+C/Ctrl+Break). */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define MAX_CLIENTS 64
#define LINE_MAX_LEN 1024 /* a longer line is sent in pieces */
#ifdef _WIN32
#define SIGTERM_OR_BREAK SIGBREAK /* Windows: Ctrl+Break (no process can send SIGTERM there); Ctrl+C is SIGINT */
#else
#define SIGTERM_OR_BREAK SIGTERM
#endif

/* The channels of every connected client. A channel is in the list from its setup until its shutdown
 * callback, after which the bootstrap destroys it: so a channel found here under the lock is alive, and
 * each write below is made under the lock. (To write outside the lock, take rs_channel_acquire_hold
 * under it, and rs_channel_release_hold after the write.) */
static rs_mutex_t clients_lock = RS_MUTEX_INIT;
static rs_channel_t *clients[MAX_CLIENTS];
static atomic_bool listener_gone;

static void check(int err, const char *what) {
    if (err) fprintf(stderr, "chat: %s: %s\n", what, rs_strerror(err)), exit(1);
}

/* Send `line` (with its '\n') to every client but `from`. A client too slow to keep up (RS_EAGAIN: its
 * writes passed the high-water mark) misses the line rather than making the server's memory grow. */
static void broadcast(rs_channel_t *from, const char *line, size_t len) {
    rs_mutex_lock(&clients_lock);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i] && clients[i] != from)
            rs_channel_write_threadsafe(clients[i], rs_byte_cursor_from_array(line, len), NULL, NULL);
    rs_mutex_unlock(&clients_lock);
}

/* A connection's handler: the line so far, since a line may arrive over several reads. */
typedef struct conn {
    rs_channel_handler_t base;
    size_t len;
    char line[LINE_MAX_LEN];
} conn_t;

static int on_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    conn_t *c = h->impl;
    rs_channel_t *channel = rs_channel_slot_get_channel(slot);
    size_t n = message->message_data.len;
    for (size_t i = 0; i < n; i++) {
        c->line[c->len++] = (char)message->message_data.buffer[i];
        if (c->line[c->len - 1] == '\n' || c->len == sizeof c->line) broadcast(channel, c->line, c->len), c->len = 0;
    }
    rs_channel_release_message_to_pool(channel, message);
    return rs_channel_slot_increment_read_window(slot, n);
}

static void conn_free(rs_channel_handler_t *h) { free(h->impl); }
static const rs_channel_handler_vtable_t conn_vtable = {.process_read_message = on_read, .destroy = conn_free};

static int install(rs_channel_installer_t *installer, rs_channel_t *channel, rs_channel_slot_t *slot,
                   rs_channel_installer_done_fn *done, void *done_ctx) {
    conn_t *c = calloc(1, sizeof *c);
    rs_channel_slot_t *added;
    (void)installer;
    if (!c) return RS_ENOMEM;
    c->base = (rs_channel_handler_t){.vtable = &conn_vtable, .impl = c};
    int err = rs_channel_slot_add_handler_right(slot, &c->base, &added);
    if (err) return free(c), err;
    done(channel, added, RS_OK, done_ctx);
    return RS_OK;
}

/* Join and leave the list. A client beyond MAX_CLIENTS is turned away. */
static void on_incoming_setup(rs_server_listener_t *l, rs_channel_t *channel, int error, void *u) {
    int i = 0;
    (void)l, (void)u;
    if (error) return;
    rs_mutex_lock(&clients_lock);
    while (i < MAX_CLIENTS && clients[i]) i++;
    if (i < MAX_CLIENTS) clients[i] = channel;
    rs_mutex_unlock(&clients_lock);
    if (i == MAX_CLIENTS) rs_channel_shutdown(channel, RS_OK);
    else rs_channel_write_threadsafe(channel, rs_byte_cursor_from_cstr("* welcome\n"), NULL, NULL);
}

static void on_incoming_shutdown(rs_server_listener_t *l, rs_channel_t *channel, int error, void *u) {
    (void)l, (void)error, (void)u;
    rs_mutex_lock(&clients_lock);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i] == channel) clients[i] = NULL;
    rs_mutex_unlock(&clients_lock);
}

static void on_listener_destroyed(rs_server_listener_t *l, void *u) { (void)l, (void)u, atomic_store(&listener_gone, true); }
static void on_stop_signal(rs_signal_watcher_t *w, int signum, uint32_t count, void *loop) {
    (void)w, (void)signum, (void)count, rs_event_loop_stop(loop);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7001, err = RS_OK;
    if (argc > 2 || port < 0 || port > 65535) return fprintf(stderr, "usage: chat [PORT]\n"), 2;
    /* Main's own loop watches the stop signals; made before the group, whose POSIX threads inherit the mask. */
    rs_event_loop_t *main_loop = rs_event_loop_new(NULL, &err);
    check(main_loop ? RS_OK : err, "rs_event_loop_new");
    rs_signal_watcher_t *on_int, *on_term;
    check(rs_signal_watcher_new(main_loop, SIGINT, on_stop_signal, main_loop, &on_int), "watch SIGINT");
    check(rs_signal_watcher_new(main_loop, SIGTERM_OR_BREAK, on_stop_signal, main_loop, &on_term), "watch SIGTERM/SIGBREAK");
    rs_event_loop_group_t *group = rs_event_loop_group_new(&(rs_event_loop_group_options_t){0}, &err);
    check(group ? RS_OK : err, "rs_event_loop_group_new");
    rs_server_bootstrap_t *server = rs_server_bootstrap_new(&(rs_server_bootstrap_options_t){.group = group}, &err);
    check(server ? RS_OK : err, "rs_server_bootstrap_new");
    static const rs_channel_installer_vtable_t installer_vtable = {.install = install};
    rs_channel_installer_t installer = {&installer_vtable, NULL}, *installers[] = {&installer};
    rs_server_listener_t *listener = rs_server_bootstrap_new_listener(server, &(rs_server_listener_options_t){
        .host = "127.0.0.1", .port = (uint32_t)port, .installers = installers, .installer_count = 1,
        .socket_options = &(rs_socket_options_t){.tcp_nodelay = true}, .enable_read_back_pressure = true,
        .on_incoming_setup = on_incoming_setup, .on_incoming_shutdown = on_incoming_shutdown,
        .on_listener_destroyed = on_listener_destroyed}, &err);
    check(listener ? RS_OK : err, "rs_server_bootstrap_new_listener");
    rs_endpoint_t address;
    check(rs_server_listener_get_address(listener, &address), "rs_server_listener_get_address");
    printf("chat: listening on 127.0.0.1:%u\n", (unsigned)address.port);
    fflush(stdout);

    check(rs_event_loop_run(main_loop), "rs_event_loop_run"); /* until a stop signal */

    rs_server_bootstrap_destroy_listener(listener, true); /* every client is cut, and leaves the list */
    uint64_t deadline = rs_clock_now_ns() + 5 * RS_NS_PER_SEC;
    while (!atomic_load(&listener_gone) && rs_clock_now_ns() < deadline) rs_thread_sleep_ns(RS_NS_PER_MS);
    rs_server_bootstrap_destroy(server);
    rs_event_loop_group_destroy(group);
    rs_signal_watcher_destroy(on_int);
    rs_signal_watcher_destroy(on_term);
    rs_event_loop_destroy(main_loop);
    return atomic_load(&listener_gone) ? 0 : 1;
}
