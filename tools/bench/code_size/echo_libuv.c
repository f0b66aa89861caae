/* The same echo server on libuv, for tools/bench/code_size.sh: one loop, a
 * listening uv_tcp_t, and libuv's echo (a buffer per read, freed once
 * written). Usage: echo_libuv PORT (0: a free one; it prints it). */
#include <uv.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct echo_write { uv_write_t req; uv_buf_t buf; } echo_write_t;

static void on_closed(uv_handle_t *handle) { free(handle); }

static void on_alloc(uv_handle_t *handle, size_t size, uv_buf_t *buf) {
    (void)handle;
    buf->base = malloc(size);
    buf->len = buf->base ? size : 0;
}

static void on_written(uv_write_t *req, int status) {
    (void)status;
    free(((echo_write_t *)req)->buf.base);
    free(req);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    echo_write_t *w = nread > 0 ? malloc(sizeof *w) : NULL;
    if (nread < 0) uv_close((uv_handle_t *)stream, on_closed);
    if (!w) { free(buf->base); return; }
    w->buf = uv_buf_init(buf->base, (unsigned)nread);
    if (uv_write(&w->req, stream, &w->buf, 1, on_written)) on_written(&w->req, -1), uv_close((uv_handle_t *)stream, on_closed);
}

static void on_connection(uv_stream_t *server, int status) {
    uv_tcp_t *tcp = status ? NULL : malloc(sizeof *tcp);
    if (!tcp) return;
    uv_tcp_init(server->loop, tcp);
    if (uv_accept(server, (uv_stream_t *)tcp) || uv_read_start((uv_stream_t *)tcp, on_alloc, on_read))
        uv_close((uv_handle_t *)tcp, on_closed);
}

int main(int argc, char **argv) {
    uv_tcp_t listener;
    struct sockaddr_in addr;
    int len = sizeof addr;
    int err = uv_ip4_addr("127.0.0.1", argc > 1 ? atoi(argv[1]) : 0, &addr);
    if (!err) err = uv_tcp_init(uv_default_loop(), &listener);
    if (!err) err = uv_tcp_bind(&listener, (const struct sockaddr *)&addr, 0);
    if (!err) err = uv_listen((uv_stream_t *)&listener, SOMAXCONN, on_connection);
    if (!err) err = uv_tcp_getsockname(&listener, (struct sockaddr *)&addr, &len);
    if (err) return fprintf(stderr, "echo_libuv: %s\n", uv_strerror(err)), 1;
    printf("listening on 127.0.0.1:%u\n", (unsigned)ntohs(addr.sin_port));
    fflush(stdout);
    return uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}
