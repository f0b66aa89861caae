/* tcp_echo: a TCP echo server on a server bootstrap over a group of loops, one per CPU. Each connection
 * gets an application handler that sends back what it reads; read back-pressure is on, so a client that
 * sends without reading stalls once the echoes pile up. Usage: tcp_echo [PORT] (default 7000; 0 picks a
 * free port). It listens on 127.0.0.1, prints the port, and exits cleanly on SIGINT or SIGTERM (Windows: Ctrl+C
 * or Ctrl+Break). */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef _WIN32
#define SIGTERM_OR_BREAK SIGBREAK /* Windows: Ctrl+Break (no process can send SIGTERM there); Ctrl+C is SIGINT */
#else
#define SIGTERM_OR_BREAK SIGTERM
#endif

static atomic_bool listener_gone;

static void check(int err, const char *what) {
    if (err) fprintf(stderr, "tcp_echo: %s: %s\n", what, rs_strerror(err)), exit(1);
}

/* The echo handler: each message read is ours, so send the very same message back, leftwards, to the
 * socket handler. Its read window reopens only once the echo has reached the kernel (on_echoed), so a
 * client that sends without reading stalls after a window's worth instead of filling our memory. */
static void on_echoed(rs_channel_t *channel, rs_io_message_t *message, int error, void *len) {
    (void)message;
    if (!channel || error) return; /* the connection is going away */
    rs_channel_slot_t *echo_slot = rs_channel_slot_get_right(rs_channel_get_first_slot(channel));
    rs_channel_slot_increment_read_window(echo_slot, (size_t)(uintptr_t)len);
}

static int echo_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    rs_channel_t *channel = rs_channel_slot_get_channel(slot);
    (void)h;
    message->on_completion = on_echoed, message->user_data = (void *)(uintptr_t)message->message_data.len;
    int err = rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE);
    if (err) rs_channel_release_message_to_pool(channel, message), rs_channel_shutdown(channel, err);
    return RS_OK;
}

static void echo_free(rs_channel_handler_t *h) { free(h); }
static const rs_channel_handler_vtable_t echo_vtable = {.process_read_message = echo_read, .destroy = echo_free};

/* The installer puts an echo handler right of the socket handler on every accepted connection. */
static int install(rs_channel_installer_t *installer, rs_channel_t *channel, rs_channel_slot_t *slot,
                   rs_channel_installer_done_fn *done, void *done_ctx) {
    rs_channel_handler_t *h = malloc(sizeof *h);
    rs_channel_slot_t *added;
    (void)installer;
    if (!h) return RS_ENOMEM;
    *h = (rs_channel_handler_t){.vtable = &echo_vtable, .impl = h};
    int err = rs_channel_slot_add_handler_right(slot, h, &added);
    if (err) return free(h), err;
    done(channel, added, RS_OK, done_ctx);
    return RS_OK;
}

static void on_incoming_setup(rs_server_listener_t *l, rs_channel_t *c, int e, void *u) { (void)l, (void)c, (void)e, (void)u; }
static void on_listener_destroyed(rs_server_listener_t *l, void *u) { (void)l, (void)u, atomic_store(&listener_gone, true); }

/* Runs on the main loop's thread (main's), never in a signal handler: just end rs_event_loop_run. */
static void on_stop_signal(rs_signal_watcher_t *w, int signum, uint32_t count, void *loop) {
    (void)w, (void)count;
    fprintf(stderr, "tcp_echo: signal %d, stopping\n", signum);
    rs_event_loop_stop(loop);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7000, err = RS_OK;
    if (argc > 2 || port < 0 || port > 65535) return fprintf(stderr, "usage: tcp_echo [PORT]\n"), 2;
    /* A loop for main's thread, watching the stop signals. On POSIX the watchers block those signals here,
     * before the group starts its threads, so every thread inherits the mask and only the watchers see them. */
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
        .enable_read_back_pressure = true, .on_incoming_setup = on_incoming_setup,
        .on_listener_destroyed = on_listener_destroyed}, &err);
    check(listener ? RS_OK : err, "rs_server_bootstrap_new_listener");
    rs_endpoint_t address;
    check(rs_server_listener_get_address(listener, &address), "rs_server_listener_get_address");
    printf("tcp_echo: listening on 127.0.0.1:%u\n", (unsigned)address.port);
    fflush(stdout);

    check(rs_event_loop_run(main_loop), "rs_event_loop_run"); /* until a stop signal */

    rs_server_bootstrap_destroy_listener(listener, true); /* open connections are cut */
    uint64_t deadline = rs_clock_now_ns() + 5 * RS_NS_PER_SEC;
    while (!atomic_load(&listener_gone) && rs_clock_now_ns() < deadline) rs_thread_sleep_ns(RS_NS_PER_MS);
    rs_server_bootstrap_destroy(server);
    rs_event_loop_group_destroy(group); /* stops and joins every loop */
    rs_signal_watcher_destroy(on_int);
    rs_signal_watcher_destroy(on_term);
    rs_event_loop_destroy(main_loop);
    return atomic_load(&listener_gone) ? 0 : 1;
}
