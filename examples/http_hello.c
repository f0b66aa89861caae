/* http_hello: an HTTP/1.1 keep-alive responder on a server bootstrap, one loop per CPU, answering every request
 * with "Hello, World!". A benchmark target (tools/bench/wrk.sh), not an HTTP library: it reads only the request
 * line and the end of the headers, so requests must have no body. Usage: http_hello [PORT [THREADS]] (0: a free
 * port, one loop per CPU). Listens on 127.0.0.1, prints the port, exits on SIGINT/SIGTERM (Windows: ^C, ^Break). */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
static const char ok[] = HEAD "\r\nHello, World!";
static const char ok_close[] = HEAD "Connection: close\r\n\r\nHello, World!"; /* to HTTP/1.0 */
static const char bad_request[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
#define REQUEST_LINE_MAX 1024 /* a longer request line is refused */
#define OUT_HINT 1024         /* a pooled 1 KiB message holds a dozen pipelined answers */
static atomic_bool listener_gone;
#ifdef _WIN32
static const int stops[] = {SIGINT, SIGBREAK}; /* Ctrl+C, Ctrl+Break: no SIGTERM can come on Windows */
#else
static const int stops[] = {SIGINT, SIGTERM};
#endif
static void check(int err, const char *what) { if (err) fprintf(stderr, "http_hello: %s: %s\n", what, rs_strerror(err)), exit(1); }
typedef struct conn {
    rs_channel_handler_t base;
    char line[REQUEST_LINE_MAX];
    size_t line_len; /* the request line so far: it may span reads */
    bool in_headers; /* the request line is done; waiting for the empty line */
    bool blank;      /* the header line so far holds nothing but CR */
    bool closing;    /* answered, then shut down: read nothing more */
    size_t held;     /* bytes consumed whose window waits for our answers to drain */
} conn_t;

/* Append `text` to the answers in *out; a full message is sent first. */
static int answer(rs_channel_slot_t *slot, rs_io_message_t **out, const char *text) {
    size_t len = strlen(text);
    rs_channel_t *channel = rs_channel_slot_get_channel(slot);
    if (*out && (*out)->message_data.capacity - (*out)->message_data.len < len) {
        int err = rs_channel_slot_send_message(slot, *out, RS_CHANNEL_DIR_WRITE);
        if (err) return err; /* *out is still ours: the caller releases it */
        *out = NULL;
    }
    if (!*out && !(*out = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, OUT_HINT)))
        return RS_ENOMEM;
    memcpy((*out)->message_data.buffer + (*out)->message_data.len, text, len);
    (*out)->message_data.len += len;
    return RS_OK;
}

/* The answer to a request line "METHOD TARGET HTTP/1.x"; HTTP/1.0 and bad lines get a close after it. */
static const char *answer_for(conn_t *c) {
    char *v = c->line_len > 9 ? c->line + c->line_len - 9 : NULL, *sp = memchr(c->line, ' ', c->line_len);
    bool valid = v && sp && sp < v && v[0] == ' ' && memcmp(v + 1, "HTTP/1.", 7) == 0 && (v[8] == '1' || v[8] == '0');
    c->closing = !valid || v[8] == '0';
    return !valid ? bad_request : c->closing ? ok_close : ok;
}

/* Reading resumes as the answers drain, so a client that pipelines without reading stalls, bounded. */
static void on_written(rs_channel_t *channel, rs_io_message_t *m, int error, void *user_data) {
    conn_t *c = user_data;
    (void)m;
    if (channel && !error && c->held && rs_channel_is_writable(channel))
        rs_channel_slot_increment_read_window(c->base.slot, c->held), c->held = 0;
}

static int on_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    conn_t *c = h->impl;
    rs_channel_t *channel = rs_channel_slot_get_channel(slot);
    const char *p = (const char *)message->message_data.buffer, *end = p + message->message_data.len;
    size_t consumed = message->message_data.len;
    rs_io_message_t *out = NULL;
    int err = RS_OK;
    while (p < end && !c->closing && !err) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if (!c->in_headers && c->line_len + n > REQUEST_LINE_MAX) c->closing = true, err = answer(slot, &out, bad_request);
        else if (!c->in_headers) memcpy(c->line + c->line_len, p, n), c->line_len += n;
        for (size_t i = 0; c->in_headers && c->blank && i < n; i++) c->blank = p[i] == '\r';
        if (!nl || c->closing) break;
        p = nl + 1;
        if (!c->in_headers) { /* end of the request line; empty lines before one are allowed */
            c->line_len -= c->line_len && c->line[c->line_len - 1] == '\r';
            c->in_headers = c->line_len > 0;
        } else if (c->blank) { /* the empty line: the request is complete */
            err = answer(slot, &out, answer_for(c));
            c->in_headers = false, c->line_len = 0;
        }
        c->blank = true;
    }
    rs_channel_release_message_to_pool(channel, message);
    if (out && !err) out->on_completion = on_written, out->user_data = c;
    if (out && !err) err = rs_channel_slot_send_message(slot, out, RS_CHANNEL_DIR_WRITE);
    if (out && err) rs_channel_release_message_to_pool(channel, out);
    if (err || c->closing) return rs_channel_shutdown(channel, err), RS_OK; /* graceful: answers flush first */
    if (!rs_channel_is_writable(channel)) return c->held += consumed, RS_OK;
    consumed += c->held, c->held = 0;
    return rs_channel_slot_increment_read_window(slot, consumed);
}

static void conn_free(rs_channel_handler_t *h) { free(h->impl); }
static const rs_channel_handler_vtable_t conn_vtable = {.process_read_message = on_read, .destroy = conn_free};
static int install(rs_channel_installer_t *installer, rs_channel_t *channel, rs_channel_slot_t *slot,
                   rs_channel_installer_done_fn *done, void *done_ctx) {
    conn_t *c = calloc(1, sizeof *c);
    rs_channel_slot_t *added;
    (void)installer;
    if (c) c->base = (rs_channel_handler_t){.vtable = &conn_vtable, .impl = c};
    int err = c ? rs_channel_slot_add_handler_right(slot, &c->base, &added) : RS_ENOMEM;
    if (!err) done(channel, added, RS_OK, done_ctx);
    return err ? free(c), err : RS_OK;
}
/* A connection whose pipeline could not be built costs that client only: nothing to do. */
static void on_incoming_setup(rs_server_listener_t *l, rs_channel_t *c, int e, void *u) { (void)l, (void)c, (void)e, (void)u; }
static void on_listener_destroyed(rs_server_listener_t *l, void *u) { (void)l, (void)u, atomic_store(&listener_gone, true); }
static void on_stop(rs_signal_watcher_t *w, int s, uint32_t n, void *loop) { (void)w, (void)s, (void)n, rs_event_loop_stop(loop); }

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0, threads = argc > 2 ? atoi(argv[2]) : 0, err = RS_OK;
    if (argc > 3 || port < 0 || port > 65535 || threads < 0 || threads > 1024)
        return fprintf(stderr, "usage: http_hello [PORT [THREADS]]  (0: any free port, one loop per CPU)\n"), 2;
    /* Main's own loop runs on_stop, and its watchers die with it; made before the group, whose POSIX threads inherit the mask. */
    rs_event_loop_t *loop = rs_event_loop_new(NULL, &err);
    check(loop ? RS_OK : err, "rs_event_loop_new");
    for (int i = 0; i < 2; i++) check(rs_signal_watcher_new(loop, stops[i], on_stop, loop, &(rs_signal_watcher_t *){0}), "watch");
    rs_event_loop_group_t *group = rs_event_loop_group_new(&(rs_event_loop_group_options_t){.loop_count = (uint16_t)threads}, &err);
    check(group ? RS_OK : err, "rs_event_loop_group_new");
    rs_server_bootstrap_t *server = rs_server_bootstrap_new(&(rs_server_bootstrap_options_t){.group = group}, &err);
    check(server ? RS_OK : err, "rs_server_bootstrap_new");
    static const rs_channel_installer_vtable_t installer_vtable = {.install = install};
    rs_channel_installer_t installer = {&installer_vtable, NULL}, *installers[] = {&installer};
    rs_server_listener_t *listener = rs_server_bootstrap_new_listener(server, &(rs_server_listener_options_t){
        .host = "127.0.0.1", .port = (uint32_t)port, .backlog = 4096 /* wrk opens all its connections at once */,
        .socket_options = &(rs_socket_options_t){.tcp_nodelay = true}, .installers = installers, .installer_count = 1,
        .enable_read_back_pressure = true, .on_incoming_setup = on_incoming_setup,
        .on_listener_destroyed = on_listener_destroyed}, &err);
    check(listener ? RS_OK : err, "rs_server_bootstrap_new_listener");
    rs_endpoint_t address;
    check(rs_server_listener_get_address(listener, &address), "rs_server_listener_get_address");
    printf("http_hello: listening on 127.0.0.1:%u\n", (unsigned)address.port), fflush(stdout); /* a test waits for it */
    check(rs_event_loop_run(loop), "rs_event_loop_run"); /* until a stop signal */
    rs_server_bootstrap_destroy_listener(listener, true); /* keep-alive connections are cut */
    uint64_t deadline = rs_clock_now_ns() + 5 * RS_NS_PER_SEC; /* bounded, whatever happens */
    while (!atomic_load(&listener_gone) && rs_clock_now_ns() < deadline) rs_thread_sleep_ns(RS_NS_PER_MS);
    rs_server_bootstrap_destroy(server);
    rs_event_loop_group_destroy(group), rs_event_loop_destroy(loop); /* the watchers go with loop */
    return atomic_load(&listener_gone) ? 0 : 1;
}
