/* The smallest useful echo server on reseau, for tools/bench/code_size.sh:
 * one loop run by the main thread, a listening socket, and for each accepted
 * connection a channel with the socket handler and an echo handler (read
 * back-pressure on). Usage: echo_reseau PORT (0: a free one; it prints it). */
#define RESEAU_IMPLEMENTATION
#define RESEAU_STATIC
#include "reseau.h"
#include <stdio.h>
#include <stdlib.h>

static rs_event_loop_t *g_loop;

static int echo_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *m) {
    size_t n = m->message_data.len;
    (void)h;
    if (rs_channel_slot_send_message(slot, m, RS_CHANNEL_DIR_WRITE) != RS_OK) {
        rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), m);
        rs_channel_shutdown(rs_channel_slot_get_channel(slot), RS_ENOMEM);
    }
    return rs_channel_slot_increment_read_window(slot, n);
}

static void echo_free(rs_channel_handler_t *h) { free(h); }
static const rs_channel_handler_vtable_t echo_vtable = {.process_read_message = echo_read, .destroy = echo_free};

/* The channel is ready for slots: the socket handler, then the echo handler. */
static void on_setup(rs_channel_t *channel, int error, void *socket) {
    int err = error;
    rs_channel_slot_t *left = err ? NULL : rs_channel_slot_new(channel, &err);
    rs_channel_handler_t *sh = err ? NULL : rs_socket_handler_new(NULL, socket, NULL, &err);
    if (!err) err = rs_channel_slot_set_handler(left, sh);
    rs_channel_slot_t *right = err ? NULL : rs_channel_slot_new(channel, &err);
    rs_channel_handler_t *echo = err ? NULL : malloc(sizeof *echo);
    if (!err && !echo) err = RS_ENOMEM;
    if (!err) *echo = (rs_channel_handler_t){.vtable = &echo_vtable, .impl = echo};
    if (!err) err = rs_channel_slot_insert_right(left, right);
    if (!err) err = rs_channel_slot_set_handler(right, echo);
    if (err && !sh) rs_socket_destroy(socket); /* else the socket handler owns it */
    if (err) rs_channel_shutdown(channel, err);
}

static void on_shutdown(rs_channel_t *channel, int error, void *socket) {
    (void)error, (void)socket;
    rs_channel_destroy(channel); /* and its handlers, the socket handler's socket with it */
}

static void on_accept(rs_socket_t *listener, int error, rs_socket_t *socket, void *user_data) {
    int err = error;
    (void)listener, (void)user_data;
    if (err) return;
    err = rs_socket_assign_to_loop(socket, g_loop);
    rs_channel_t *channel = err ? NULL : rs_channel_new(&(rs_channel_options_t){.loop = g_loop,
        .on_setup_completed = on_setup, .on_shutdown_completed = on_shutdown, .user_data = socket,
        .enable_read_back_pressure = true}, &err);
    if (!channel) rs_socket_destroy(socket);
}

int main(int argc, char **argv) {
    int err = RS_OK;
    rs_endpoint_t address;
    g_loop = rs_event_loop_new(NULL, &err);
    rs_socket_t *listener = g_loop ? rs_socket_new(NULL, &err) : NULL;
    if (listener) err = rs_endpoint_from_ip(&address, "127.0.0.1", (uint32_t)(argc > 1 ? atoi(argv[1]) : 0));
    if (!err) err = rs_socket_bind(listener, &address);
    if (!err) err = rs_socket_listen(listener, 0);
    if (!err) err = rs_socket_get_bound_address(listener, &address);
    if (!err) err = rs_socket_start_accept(listener, g_loop, on_accept, NULL);
    if (err) return fprintf(stderr, "echo_reseau: %s\n", rs_strerror(err)), 1;
    printf("listening on 127.0.0.1:%u\n", (unsigned)address.port);
    fflush(stdout);
    for (;;) rs_event_loop_run_once(g_loop, -1);
}
