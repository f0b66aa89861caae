/*
 * http_hello_uv: examples/http_hello.c on libuv, the peer tools/bench/wrk.sh
 * measures it against. Same behaviour: HTTP/1.1 keep-alive on 127.0.0.1, a
 * fixed 13-byte body, only the request line and the end of the headers read
 * (requests must have no body), pipelined requests answered in one write,
 * HTTP/1.0 and bad request lines answered and then closed, read back-pressure
 * (reading stops while more than WRITE_HIGH_WATER bytes wait to be written).
 *
 * One loop per thread. libuv has no multi-loop server, so each loop gets its
 * best-known setup: its own listening socket on the same port with
 * SO_REUSEPORT (the kernel spreads connections across them; libuv 1.44 has no
 * flag for it, so the socket is made here and given to uv_tcp_open). Answers
 * are written with uv_write from the static response strings (one buffer per
 * pipelined answer, no copy); a connection's first write request is embedded
 * in it, more are malloc'd while it is busy. Reads go to one 64 KiB buffer per
 * loop, as reseau's socket handler reads 64 KiB.
 *
 * Usage: http_hello_uv [PORT [THREADS]] (0: a free port, one loop per CPU);
 * prints the port, exits cleanly on SIGINT or SIGTERM.
 */
#define _GNU_SOURCE /* SO_REUSEPORT, and what uv.h needs under -std=c11 */
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
static const char ok[] = HEAD "\r\nHello, World!";
static const char ok_close[] = HEAD "Connection: close\r\n\r\nHello, World!";
static const char bad_request[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
#define REQUEST_LINE_MAX 1024
#define READ_BUFFER (64 * 1024)
#define MAX_ANSWERS_PER_WRITE 64           /* more pipelined answers go in further writes */
#define WRITE_HIGH_WATER (1024 * 1024)     /* as reseau's channel default */
#define WRITE_LOW_WATER (WRITE_HIGH_WATER / 4)
#define MAX_THREADS 1024

typedef struct worker {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    pthread_t thread;
    char read_buffer[READ_BUFFER];
} worker_t;

typedef struct write_req {
    uv_write_t req;
    bool embedded;
    uv_buf_t bufs[MAX_ANSWERS_PER_WRITE];
    unsigned count;
} write_req_t;

typedef struct conn {
    uv_tcp_t tcp;
    char line[REQUEST_LINE_MAX];
    size_t line_len;
    bool in_headers, blank, closing, reading;
    bool embedded_busy;
    write_req_t embedded;
} conn_t;

static void die(const char *what, int err) {
    fprintf(stderr, "http_hello_uv: %s: %s\n", what, err ? uv_strerror(err) : strerror(errno));
    exit(1);
}

static void on_closed(uv_handle_t *handle) { free(handle); }

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    worker_t *w = handle->loop->data;
    (void)suggested;
    *buf = uv_buf_init(w->read_buffer, sizeof w->read_buffer);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status) {
    write_req_t *w = (write_req_t *)req;
    conn_t *c = req->data;
    if (w->embedded) {
        c->embedded_busy = false;
    } else {
        free(w);
    }
    if (status < 0 || uv_is_closing((uv_handle_t *)&c->tcp)) {
        return;
    }
    if (!c->reading && !c->closing && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < WRITE_LOW_WATER) {
        c->reading = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0;
    }
}

static write_req_t *new_write(conn_t *c) {
    write_req_t *w = &c->embedded;
    if (c->embedded_busy) {
        w = malloc(sizeof *w);
        if (!w) {
            return NULL;
        }
        w->embedded = false;
    } else {
        c->embedded_busy = true;
        w->embedded = true;
    }
    w->count = 0;
    w->req.data = c;
    return w;
}

static int flush(conn_t *c, write_req_t **w) {
    int err = 0;
    if (*w && (*w)->count) {
        err = uv_write(&(*w)->req, (uv_stream_t *)&c->tcp, (*w)->bufs, (*w)->count, on_written);
        if (err) {
            on_written(&(*w)->req, err);
        }
    }
    *w = NULL;
    return err;
}

static int answer(conn_t *c, write_req_t **w, const char *text, size_t len) {
    if (*w && (*w)->count == MAX_ANSWERS_PER_WRITE && flush(c, w)) {
        return -1;
    }
    if (!*w && !(*w = new_write(c))) {
        return -1;
    }
    (*w)->bufs[(*w)->count++] = uv_buf_init((char *)text, (unsigned)len);
    return 0;
}

static const char *answer_for(conn_t *c, size_t *len) {
    char *v = c->line_len > 9 ? c->line + c->line_len - 9 : NULL, *sp = memchr(c->line, ' ', c->line_len);
    bool valid = v && sp && sp < v && v[0] == ' ' && memcmp(v + 1, "HTTP/1.", 7) == 0 && (v[8] == '1' || v[8] == '0');
    c->closing = !valid || v[8] == '0';
    const char *text = !valid ? bad_request : c->closing ? ok_close : ok;
    *len = !valid ? sizeof bad_request - 1 : c->closing ? sizeof ok_close - 1 : sizeof ok - 1;
    return text;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
    (void)status;
    uv_close((uv_handle_t *)req->handle, on_closed);
    free(req);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    conn_t *c = (conn_t *)stream;
    if (nread < 0) {
        uv_close((uv_handle_t *)stream, on_closed);
        return;
    }
    const char *p = buf->base, *end = p + nread;
    write_req_t *w = NULL;
    int err = 0;
    while (p < end && !c->closing && !err) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if (!c->in_headers && c->line_len + n > REQUEST_LINE_MAX) {
            c->closing = true, err = answer(c, &w, bad_request, sizeof bad_request - 1);
        } else if (!c->in_headers) {
            memcpy(c->line + c->line_len, p, n), c->line_len += n;
        }
        for (size_t i = 0; c->in_headers && c->blank && i < n; i++) {
            c->blank = p[i] == '\r';
        }
        if (!nl || c->closing) {
            break;
        }
        p = nl + 1;
        if (!c->in_headers) {
            c->line_len -= c->line_len && c->line[c->line_len - 1] == '\r';
            c->in_headers = c->line_len > 0;
        } else if (c->blank) {
            size_t len;
            const char *text = answer_for(c, &len);
            err = answer(c, &w, text, len);
            c->in_headers = false, c->line_len = 0;
        }
        c->blank = true;
    }
    if (!err) {
        err = flush(c, &w);
    } else if (w) {
        on_written(&w->req, -1); /* release it */
    }
    if (err) {
        uv_close((uv_handle_t *)stream, on_closed);
    } else if (c->closing) {
        uv_read_stop(stream);
        uv_shutdown_t *req = malloc(sizeof *req);
        if (!req || uv_shutdown(req, stream, on_shutdown) != 0) {
            free(req);
            uv_close((uv_handle_t *)stream, on_closed);
        }
    } else if (uv_stream_get_write_queue_size(stream) > WRITE_HIGH_WATER) {
        uv_read_stop(stream);
        c->reading = false;
    }
}

static void on_connection(uv_stream_t *server, int status) {
    if (status < 0) {
        return;
    }
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        return;
    }
    uv_tcp_init(server->loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->reading = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0;
}

/* What is left open is connections, which are malloc'd. */
static void close_connection(uv_handle_t *handle, void *arg) {
    (void)arg;
    if (!uv_is_closing(handle)) {
        uv_close(handle, on_closed);
    }
}

static void on_stop(uv_async_t *async) {
    worker_t *w = async->data;
    uv_close((uv_handle_t *)&w->listener, NULL); /* both in the worker, not malloc'd */
    uv_close((uv_handle_t *)&w->stop, NULL);
    uv_walk(&w->loop, close_connection, NULL);
}

static void *run_worker(void *arg) {
    worker_t *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* A listening socket on 127.0.0.1:*port with SO_REUSEPORT; *port is set when 0. */
static int reuseport_listener(uint16_t *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(*port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        die("listening socket", 0);
    }
    *port = ntohs(a.sin_port);
    return fd;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0, threads = argc > 2 ? atoi(argv[2]) : 0, sig;
    if (argc > 3 || port < 0 || port > 65535 || threads < 0 || threads > MAX_THREADS) {
        fprintf(stderr, "usage: http_hello_uv [PORT [THREADS]]  (0: any free port, one loop per CPU)\n");
        return 2;
    }
    if (threads == 0) {
        threads = (int)uv_available_parallelism();
    }
    sigset_t stop;
    sigemptyset(&stop), sigaddset(&stop, SIGINT), sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    worker_t *workers = calloc((size_t)threads, sizeof *workers);
    if (!workers) {
        die("calloc", 0);
    }
    uint16_t bound = (uint16_t)port;
    for (int i = 0; i < threads; i++) {
        worker_t *w = &workers[i];
        int err = uv_loop_init(&w->loop);
        if (err) die("uv_loop_init", err);
        w->loop.data = w;
        w->stop.data = w;
        if ((err = uv_async_init(&w->loop, &w->stop, on_stop))) die("uv_async_init", err);
        if ((err = uv_tcp_init(&w->loop, &w->listener))) die("uv_tcp_init", err);
        if ((err = uv_tcp_open(&w->listener, reuseport_listener(&bound)))) die("uv_tcp_open", err);
        if ((err = uv_listen((uv_stream_t *)&w->listener, 4096, on_connection))) die("uv_listen", err);
    }
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&workers[i].thread, NULL, run_worker, &workers[i]) != 0) die("pthread_create", 0);
    }
    printf("http_hello_uv: listening on 127.0.0.1:%u\n", (unsigned)bound);
    fflush(stdout);
    sigwait(&stop, &sig);
    for (int i = 0; i < threads; i++) {
        uv_async_send(&workers[i].stop);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(workers[i].thread, NULL);
        uv_loop_close(&workers[i].loop);
    }
    free(workers);
    return 0;
}
