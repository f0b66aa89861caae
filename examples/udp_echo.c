/* udp_echo: a UDP echo server on one event loop, run on main's own thread with rs_event_loop_run: each
 * datagram goes back to where it came from. Usage: udp_echo [PORT] (default 7002; 0 picks a free port).
 * It binds 127.0.0.1, prints the port, and exits cleanly on SIGINT or SIGTERM (Windows: Ctrl+C or Ctrl+Break). */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef _WIN32
#define SIGTERM_OR_BREAK SIGBREAK /* Windows: Ctrl+Break (no process can send SIGTERM there); Ctrl+C is SIGINT */
#else
#define SIGTERM_OR_BREAK SIGTERM
#endif

static void check(int err, const char *what) {
    if (err) fprintf(stderr, "udp_echo: %s: %s\n", what, rs_strerror(err)), exit(1);
}

/* Datagrams are waiting: take each one and send it back, until RS_EAGAIN says none is left. A reply the
 * kernel cannot take now (its buffer is full) is dropped: UDP promises no delivery anyway. */
static void on_readable(rs_socket_t *socket, int error, void *user_data) {
    char buffer[65536];
    rs_datagram_t d = {.data = buffer, .capacity = sizeof buffer};
    (void)user_data;
    if (error) fprintf(stderr, "udp_echo: %s\n", rs_strerror(error)); /* RS_ECANCELED when closed */
    while (rs_socket_recv_from(socket, &d) == RS_OK)
        rs_socket_send_to(socket, &d.endpoint, rs_byte_cursor_from_array(buffer, d.len));
}

static void on_stop_signal(rs_signal_watcher_t *w, int signum, uint32_t count, void *loop) {
    (void)w, (void)count;
    fprintf(stderr, "udp_echo: signal %d, stopping\n", signum);
    rs_event_loop_stop(loop); /* rs_event_loop_run returns after this tick */
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7002, err = RS_OK;
    if (argc > 2 || port < 0 || port > 65535) return fprintf(stderr, "usage: udp_echo [PORT]\n"), 2;
    rs_event_loop_t *loop = rs_event_loop_new(NULL, &err);
    check(loop ? RS_OK : err, "rs_event_loop_new");
    rs_signal_watcher_t *on_int, *on_term;
    check(rs_signal_watcher_new(loop, SIGINT, on_stop_signal, loop, &on_int), "watch SIGINT");
    check(rs_signal_watcher_new(loop, SIGTERM_OR_BREAK, on_stop_signal, loop, &on_term), "watch SIGTERM/SIGBREAK");

    rs_socket_t *socket = rs_socket_new(&(rs_socket_options_t){.type = RS_SOCKET_DGRAM}, &err);
    check(socket ? RS_OK : err, "rs_socket_new");
    rs_endpoint_t address;
    check(rs_endpoint_from_ip(&address, "127.0.0.1", (uint32_t)port), "rs_endpoint_from_ip");
    check(rs_socket_bind(socket, &address), "rs_socket_bind");
    check(rs_socket_assign_to_loop(socket, loop), "rs_socket_assign_to_loop");
    check(rs_socket_subscribe_to_readable_events(socket, on_readable, NULL), "subscribe");
    check(rs_socket_get_bound_address(socket, &address), "rs_socket_get_bound_address");
    printf("udp_echo: listening on 127.0.0.1:%u\n", (unsigned)address.port);
    fflush(stdout);

    check(rs_event_loop_run(loop), "rs_event_loop_run"); /* main's thread is the loop's until the stop */

    rs_socket_destroy(socket); /* closes it; main is still the loop's thread */
    rs_signal_watcher_destroy(on_int);
    rs_signal_watcher_destroy(on_term);
    rs_event_loop_destroy(loop);
    return 0;
}
