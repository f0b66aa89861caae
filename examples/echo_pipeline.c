/* echo_pipeline: a TCP echo server made of channels, on an event-loop group.
 * main() runs one loop itself, for the listener and four clients (plain sockets).
 * Each accepted connection moves to a loop of a group of two, in a channel of a
 * socket handler and an echo handler that writes every message back. */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define CLIENTS 4

typedef struct demo {
    rs_event_loop_group_t *group;
    rs_endpoint_t address;  /* 127.0.0.1 and the port the listener got */
    atomic_int server_open; /* server connections not closed yet */
    atomic_int failures;
    int clients_open; /* main's thread only */
} demo_t;

typedef struct client {
    demo_t *demo;
    char line[32], echo[32];
    rs_byte_buf_t reply; /* over echo[], as long as the line */
} client_t;

static void check(int err, const char *what) {
    if (err) fprintf(stderr, "echo_pipeline: %s: %s\n", what, rs_strerror(err)), exit(1);
}

/* >>server: per connection, a channel of a socket handler and an echo handler */

typedef struct echo_handler {
    rs_channel_handler_t base;
    demo_t *demo;
    rs_socket_t *socket; /* the accepted socket, until the socket handler owns it */
} echo_handler_t;

static int echo_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    size_t n = message->message_data.len;
    (void)h;
    /* The message is ours now: send it back, leftwards, to the socket handler. */
    if (rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE) != RS_OK)
        rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), message);
    return rs_channel_slot_increment_read_window(slot, n); /* done with n bytes */
}

static void echo_destroy(rs_channel_handler_t *h) { free(h->impl); }
/* Entries left NULL take their documented defaults (see rs_channel_handler_vtable_t). */
static const rs_channel_handler_vtable_t echo_vtable = {.process_read_message = echo_read, .destroy = echo_destroy};

/* On the connection's loop: the socket joins that loop, then the pipeline is built. */
static void on_server_channel_setup(rs_channel_t *channel, int error, void *user_data) {
    echo_handler_t *echo = (echo_handler_t *)user_data;
    rs_channel_slot_t *socket_slot = NULL, *echo_slot = NULL;
    rs_channel_handler_t *socket_handler = NULL;
    if (!error) error = rs_socket_assign_to_loop(echo->socket, rs_channel_get_loop(channel));
    if (!error) socket_slot = rs_channel_slot_new(channel, &error);
    if (!error) socket_handler = rs_socket_handler_new(NULL, echo->socket, NULL, &error);
    if (!error) echo->socket = NULL; /* the socket handler owns it now */
    if (!error) error = rs_channel_slot_set_handler(socket_slot, socket_handler);
    if (!error) echo_slot = rs_channel_slot_new(channel, &error);
    if (!error) error = rs_channel_slot_insert_right(socket_slot, echo_slot);
    if (!error) error = rs_channel_slot_set_handler(echo_slot, &echo->base);
    if (error) rs_channel_shutdown(channel, error);
}

static void on_server_channel_shutdown(rs_channel_t *channel, int error, void *user_data) {
    echo_handler_t *echo = (echo_handler_t *)user_data;
    demo_t *demo = echo->demo;
    printf("server: connection closed (%s)\n", rs_err_name(error)); /* RS_EEOF: the client hung up */
    if (echo->socket) rs_socket_destroy(echo->socket); /* setup failed before the socket handler took it */
    if (!echo->base.slot) free(echo);                  /* setup failed before the channel took it */
    rs_channel_destroy(channel); /* destroys the handlers, and the socket with its handler */
    if (error != RS_OK && error != RS_EEOF) atomic_fetch_add(&demo->failures, 1);
    atomic_fetch_sub(&demo->server_open, 1);
}

static void on_accept(rs_socket_t *listener, int error, rs_socket_t *socket, void *user_data) {
    demo_t *demo = (demo_t *)user_data;
    (void)listener;
    if (error) return; /* transient (out of fds, ...): the listener keeps accepting */
    echo_handler_t *echo = (echo_handler_t *)calloc(1, sizeof *echo);
    *echo = (echo_handler_t){.base = {.vtable = &echo_vtable, .impl = echo}, .demo = demo, .socket = socket};
    rs_channel_options_t options = {.loop = rs_event_loop_group_get_next_loop(demo->group), .user_data = echo,
                                    .on_setup_completed = on_server_channel_setup,
                                    .on_shutdown_completed = on_server_channel_shutdown};
    check(rs_channel_new(&options, &error) ? RS_OK : error, "rs_channel_new");
}

/* >>clients: plain sockets that send a line and check the echo */

/* A failed write shows as a missing echo, so the completion has nothing to do. */
static void on_client_written(rs_socket_t *s, int e, size_t n, void *u) { (void)s, (void)e, (void)n, (void)u; }
static void on_client_readable(rs_socket_t *socket, int error, void *user_data) {
    client_t *c = (client_t *)user_data;
    while (c->reply.len < c->reply.capacity && (error = rs_socket_read(socket, &c->reply, NULL)) == RS_OK) {}
    if (c->reply.len < c->reply.capacity && error == RS_EAGAIN) return; /* the rest is on its way */
    bool ok = c->reply.len == c->reply.capacity && memcmp(c->echo, c->line, c->reply.len) == 0;
    printf("client: sent \"%s\", echo %s\n", c->line, ok ? "matches" : "is wrong");
    rs_socket_destroy(socket); /* closes it: the server sees the end of the stream */
    c->demo->failures += ok ? 0 : 1;
    c->demo->clients_open--;
}

static void on_client_connect(rs_socket_t *socket, int error, void *user_data) {
    check(error, "connect");
    check(rs_socket_subscribe_to_readable_events(socket, on_client_readable, user_data), "subscribe");
    client_t *c = (client_t *)user_data;
    check(rs_socket_write(socket, rs_byte_cursor_from_cstr(c->line), on_client_written, c), "rs_socket_write");
}

int main(void) {
    static demo_t demo = {.server_open = CLIENTS, .clients_open = CLIENTS};
    client_t clients[CLIENTS];
    int err = RS_OK;
    demo.group = rs_event_loop_group_new(&(rs_event_loop_group_options_t){.loop_count = 2}, &err);
    check(demo.group ? RS_OK : err, "rs_event_loop_group_new");
    rs_event_loop_t *main_loop = rs_event_loop_new(NULL, &err); /* run by this thread, below */
    check(main_loop ? RS_OK : err, "rs_event_loop_new");
    rs_socket_t *listener = rs_socket_new(NULL, &err);
    check(listener ? RS_OK : err, "rs_socket_new");
    check(rs_endpoint_from_ip(&demo.address, "127.0.0.1", 0), "rs_endpoint_from_ip"); /* port 0: any free one */
    check(rs_socket_bind(listener, &demo.address), "rs_socket_bind");
    check(rs_socket_listen(listener, 0), "rs_socket_listen");
    check(rs_socket_get_bound_address(listener, &demo.address), "rs_socket_get_bound_address");
    check(rs_socket_start_accept(listener, main_loop, on_accept, &demo), "rs_socket_start_accept");
    printf("server: listening on 127.0.0.1:%u\n", (unsigned)demo.address.port);
    for (int i = 0; i < CLIENTS; i++) {
        client_t *c = &clients[i];
        *c = (client_t){.demo = &demo};
        snprintf(c->line, sizeof c->line, "hello from client %d", i + 1);
        c->reply = rs_byte_buf_from_array(c->echo, 0, strlen(c->line));
        rs_socket_t *socket = rs_socket_new(NULL, &err);
        check(socket ? RS_OK : err, "rs_socket_new");
        check(rs_socket_connect(socket, &demo.address, main_loop, on_client_connect, c), "rs_socket_connect");
    }
    uint64_t deadline = rs_clock_now_ns() + 5 * RS_NS_PER_SEC; /* bounded, whatever happens */
    while ((demo.clients_open > 0 || atomic_load(&demo.server_open) > 0) && rs_clock_now_ns() < deadline) {
        rs_event_loop_run_once(main_loop, 10);
    }
    bool all_done = demo.clients_open == 0 && atomic_load(&demo.server_open) == 0;
    rs_socket_destroy(listener);
    rs_event_loop_destroy(main_loop);
    rs_event_loop_group_destroy(demo.group); /* stops and joins every loop */
    int failures = atomic_load(&demo.failures);
    printf("%d clients, %d failures%s; all shut down\n", CLIENTS, failures, all_done ? "" : ", timed out");
    return all_done && failures == 0 ? 0 : 1;
}
