/* client_by_name: connect to a server by host name through the client bootstrap (which resolves the name
 * and races the addresses, Happy Eyeballs style), send one line, print the reply line, and exit.
 * Usage: client_by_name PORT [HOST [LINE]] (HOST defaults to localhost). Try it against examples/tcp_echo.
 * Exits 0 after a reply, 1 with a message on failure (name not found, connection refused, ...). */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char line[1024];            /* what we send, ending in '\n' */
static char reply[1024];           /* what came back so far */
static size_t reply_len;           /* only touched on the connection's loop thread */
static atomic_int result = -1;     /* -1 while running, then the exit status */

/* The reply handler: gather bytes until a '\n' (or a full buffer), print the line, then close. */
static int on_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    rs_channel_t *channel = rs_channel_slot_get_channel(slot);
    size_t n = message->message_data.len, room = sizeof reply - 1 - reply_len;
    (void)h;
    memcpy(reply + reply_len, message->message_data.buffer, n < room ? n : room);
    reply_len += n < room ? n : room;
    rs_channel_release_message_to_pool(channel, message);
    if (!memchr(reply, '\n', reply_len) && reply_len < sizeof reply - 1)
        return rs_channel_slot_increment_read_window(slot, n); /* more to come */
    printf("reply: %s%s", reply, reply[reply_len - 1] == '\n' ? "" : "\n");
    atomic_store(&result, 0);
    return rs_channel_shutdown(channel, RS_OK);
}

static void handler_free(rs_channel_handler_t *h) { free(h); }
static const rs_channel_handler_vtable_t reply_vtable = {.process_read_message = on_read, .destroy = handler_free};

static int install(rs_channel_installer_t *installer, rs_channel_t *channel, rs_channel_slot_t *slot,
                   rs_channel_installer_done_fn *done, void *done_ctx) {
    rs_channel_handler_t *h = malloc(sizeof *h);
    rs_channel_slot_t *added;
    (void)installer;
    if (!h) return RS_ENOMEM;
    *h = (rs_channel_handler_t){.vtable = &reply_vtable, .impl = h};
    int err = rs_channel_slot_add_handler_right(slot, h, &added);
    if (err) return free(h), err;
    done(channel, added, RS_OK, done_ctx);
    return RS_OK;
}

/* Connected (the pipeline is ready) or failed. On success, write our line. */
static void on_setup(rs_client_bootstrap_t *b, rs_channel_t *channel, int error, void *host) {
    (void)b;
    if (error) {
        fprintf(stderr, "client_by_name: cannot connect to %s: %s\n", (const char *)host, rs_strerror(error));
        atomic_store(&result, 1); /* no on_shutdown follows a failed setup */
        return;
    }
    error = rs_channel_write_threadsafe(channel, rs_byte_cursor_from_array(line, strlen(line)), NULL, NULL);
    if (error) rs_channel_shutdown(channel, error);
}

/* The channel is closed: by us after the reply, or by the server or an error before it. */
static void on_shutdown(rs_client_bootstrap_t *b, rs_channel_t *channel, int error, void *host) {
    (void)b, (void)channel;
    if (atomic_load(&result) == 0) return;
    fprintf(stderr, "client_by_name: %s closed the connection before replying: %s\n", (const char *)host,
            rs_strerror(error ? error : RS_EEOF));
    atomic_store(&result, 1);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0, err = RS_OK;
    const char *host = argc > 2 ? argv[2] : "localhost";
    if (argc < 2 || argc > 4 || port <= 0 || port > 65535)
        return fprintf(stderr, "usage: client_by_name PORT [HOST [LINE]]\n"), 2;
    snprintf(line, sizeof line, "%s\n", argc > 3 ? argv[3] : "hello from client_by_name");

    rs_event_loop_group_t *group = rs_event_loop_group_new(&(rs_event_loop_group_options_t){.loop_count = 1}, &err);
    rs_client_bootstrap_t *client = group ? rs_client_bootstrap_new(&(rs_client_bootstrap_options_t){.group = group}, &err) : NULL;
    if (client) {
        static const rs_channel_installer_vtable_t installer_vtable = {.install = install};
        /* Static: the bootstrap uses the installer until the connection is set up. */
        static rs_channel_installer_t installer = {&installer_vtable, NULL};
        rs_channel_installer_t *installers[] = {&installer};
        err = rs_client_bootstrap_connect(client, &(rs_client_connect_options_t){
            .host = host, .port = (uint32_t)port, .installers = installers, .installer_count = 1,
            .on_setup = on_setup, .on_shutdown = on_shutdown, .user_data = (void *)host});
    }
    if (!client || err) return fprintf(stderr, "client_by_name: %s\n", rs_strerror(err)), 1;

    /* Everything happens on the group's loop; wait here for the outcome, bounded. */
    uint64_t deadline = rs_clock_now_ns() + 10 * RS_NS_PER_SEC;
    while (atomic_load(&result) < 0 && rs_clock_now_ns() < deadline) rs_thread_sleep_ns(RS_NS_PER_MS);
    if (atomic_load(&result) < 0) fprintf(stderr, "client_by_name: no reply from %s in 10 s\n", host), result = 1;
    rs_client_bootstrap_destroy(client);
    rs_event_loop_group_destroy(group); /* a connection still open is cut */
    return atomic_load(&result);
}
