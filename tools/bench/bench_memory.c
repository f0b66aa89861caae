/*
 * reseau-bench-memory: memory per idle connection of an echo server, reseau
 * against libuv, each server in a child process of its own.
 *
 *   idle_rss       KB of resident memory (VmRSS in /proc/self/status) the
 *                  server grows by per connection, COUNT connections open at
 *                  once (default DEFAULT_COUNT)
 *   idle_heap      KB of heap in use (mallinfo2: uordblks + hblkhd, every
 *                  arena) the server grows by per connection
 *   tls_idle_rss   the same for a TLS echo server on reseau_tls.h, TLS_COUNT
 *   tls_idle_heap  connections (default DEFAULT_TLS_COUNT); no peer (libuv has
 *                  no TLS): the goal is absolute, <= 40 KB (issue 15)
 *
 * The servers run one loop. reseau: a server bootstrap on a group of one loop,
 * each connection a channel with the socket handler and an echo handler (and
 * the TLS handler between them for tls_*), read back-pressure on. libuv: a
 * uv_tcp server on one loop, libuv's echo server (test/echo-server.c: a
 * malloc'd buffer per read, freed when its echo is written). The loop runs on
 * a thread of the child; the child's main thread answers the parent's
 * requests on a socketpair, and measures itself.
 *
 * The parent is the client, with plain blocking sockets (and OpenSSL for the
 * TLS handshakes, verifying the server against the demo CA). A run: one
 * connection first, which echoes a byte (pools and caches that do not grow
 * per connection), then a measurement; then COUNT connections, each echoing a
 * byte (so each has been set up and has carried data; a TLS one has finished
 * its handshake), then the second measurement. Figure: the growth divided by
 * COUNT. Lower is better: a ratio below 1 means reseau uses less than libuv.
 * Client sockets close with a reset (SO_LINGER 0), so that no TIME_WAIT keeps
 * ephemeral ports from the next run.
 *
 * Both processes need COUNT + a few descriptors: the program raises
 * RLIMIT_NOFILE to its hard limit, and lowers COUNT (saying so) if that is not
 * enough.
 *
 * Usage: reseau-bench-memory [-r ROUNDS] [-v] [-n COUNT] [-t TLS_COUNT] [plain] [tls]
 */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"
#if BENCH_WITH_TLS
#define RESEAU_TLS_IMPLEMENTATION
#include "reseau_tls.h"
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "demo_certs.h"
#endif

#include <uv.h>

#define BENCH_PROGRAM "reseau-bench-memory"
#define BENCH_DEFAULT_ROUNDS 3
#define BENCH_RUN_LIMIT_S 120
#include "bench_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define DEFAULT_COUNT 10000
#define DEFAULT_TLS_COUNT 1000
#define MAX_COUNT 100000
#define FD_MARGIN 64       /* descriptors besides the connections */
#define IO_TIMEOUT_MS 10000
#define BACKLOG 4096

/* What the server child reports. */
typedef struct measure {
    size_t rss_kb;
    size_t heap_bytes;
    size_t connections; /* set up and not shut down */
} measure_t;

typedef enum server_kind { SERVER_RESEAU, SERVER_LIBUV, SERVER_RESEAU_TLS } server_kind_t;

static const char *const g_kind_names[] = {"reseau", "libuv", "reseau TLS"};

/* >>measuring (in the server child) */

static size_t rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %zu kB", &kb) == 1) {
            break;
        }
    }
    if (f) {
        fclose(f);
    }
    return kb;
}

static size_t heap_bytes(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static atomic_size_t g_server_connections;

/* >>reseau echo server (child) */

static int echo_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    size_t n = message->message_data.len;
    (void)h;
    int err = rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE);
    if (err) {
        rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), message);
        rs_channel_shutdown(rs_channel_slot_get_channel(slot), err);
    }
    return rs_channel_slot_increment_read_window(slot, n);
}

static void echo_free(rs_channel_handler_t *h) { free(h); }

static const rs_channel_handler_vtable_t echo_vtable = {.process_read_message = echo_read, .destroy = echo_free};

static int install_echo(rs_channel_installer_t *installer, rs_channel_t *channel, rs_channel_slot_t *slot,
                        rs_channel_installer_done_fn *done, void *done_ctx) {
    (void)installer;
    rs_channel_handler_t *h = malloc(sizeof *h);
    rs_channel_slot_t *added;
    if (!h) {
        return RS_ENOMEM;
    }
    *h = (rs_channel_handler_t){.vtable = &echo_vtable, .impl = h};
    int err = rs_channel_slot_add_handler_right(slot, h, &added);
    if (err) {
        free(h);
        return err;
    }
    done(channel, added, RS_OK, done_ctx);
    return RS_OK;
}

static const rs_channel_installer_vtable_t echo_installer_vtable = {.install = install_echo};

static void on_rs_setup(rs_server_listener_t *l, rs_channel_t *c, int error, void *ud) {
    (void)l, (void)c, (void)ud;
    if (error) {
        fprintf(stderr, BENCH_PROGRAM ": server: connection setup: %s\n", rs_strerror(error));
        return;
    }
    atomic_fetch_add(&g_server_connections, 1);
}

static void on_rs_shutdown(rs_server_listener_t *l, rs_channel_t *c, int error, void *ud) {
    (void)l, (void)c, (void)ud, (void)error;
    atomic_fetch_sub(&g_server_connections, 1);
}

static atomic_bool g_listener_gone;

static void on_rs_listener_destroyed(rs_server_listener_t *l, void *ud) {
    (void)l, (void)ud;
    atomic_store(&g_listener_gone, true);
}

/* As the client: no Nagle delay between the TLS handshake's flights. */
static const rs_socket_options_t g_server_socket_options = {.tcp_nodelay = true};

typedef struct rs_server {
    rs_event_loop_group_t *group;
    rs_server_bootstrap_t *bootstrap;
    rs_server_listener_t *listener;
    rs_channel_installer_t echo;
#if BENCH_WITH_TLS
    rs_tls_ctx_t *tls_ctx;
    rs_channel_installer_t *tls;
#endif
} rs_server_t;

static uint16_t rs_server_start(rs_server_t *s, bool tls) {
    int err = RS_OK;
    rs_channel_installer_t *installers[2];
    size_t count = 0;
    s->group = rs_event_loop_group_new(&(rs_event_loop_group_options_t){.loop_count = 1}, &err);
    check_rs(s->group ? RS_OK : err, "rs_event_loop_group_new");
    s->bootstrap = rs_server_bootstrap_new(&(rs_server_bootstrap_options_t){.group = s->group}, &err);
    check_rs(s->bootstrap ? RS_OK : err, "rs_server_bootstrap_new");
#if BENCH_WITH_TLS
    if (tls) {
        rs_tls_ctx_options_t o = {.is_server = true, .cert_pem = rs_byte_cursor_from_cstr(demo_cert),
                                  .key_pem = rs_byte_cursor_from_cstr(demo_key)};
        s->tls_ctx = rs_tls_ctx_new(&o, &err);
        check_rs(s->tls_ctx ? RS_OK : err, "rs_tls_ctx_new");
        s->tls = rs_tls_installer_new(&(rs_tls_connection_options_t){.ctx = s->tls_ctx}, &err);
        check_rs(s->tls ? RS_OK : err, "rs_tls_installer_new");
        installers[count++] = s->tls;
    }
#else
    (void)tls;
#endif
    s->echo = (rs_channel_installer_t){&echo_installer_vtable, NULL};
    installers[count++] = &s->echo;
    s->listener = rs_server_bootstrap_new_listener(
        s->bootstrap,
        &(rs_server_listener_options_t){.host = "127.0.0.1", .backlog = BACKLOG, .installers = installers,
                                        .socket_options = &g_server_socket_options,
                                        .installer_count = count, .enable_read_back_pressure = true,
                                        .on_incoming_setup = on_rs_setup, .on_incoming_shutdown = on_rs_shutdown,
                                        .on_listener_destroyed = on_rs_listener_destroyed},
        &err);
    check_rs(s->listener ? RS_OK : err, "rs_server_bootstrap_new_listener");
    rs_endpoint_t address;
    check_rs(rs_server_listener_get_address(s->listener, &address), "rs_server_listener_get_address");
    return (uint16_t)address.port;
}

static void rs_server_stop(rs_server_t *s) {
    rs_server_bootstrap_destroy_listener(s->listener, true);
    uint64_t deadline = bench_now_ns() + 10 * RS_NS_PER_SEC;
    while (!atomic_load(&g_listener_gone) && bench_now_ns() < deadline) {
        rs_thread_sleep_ns(RS_NS_PER_MS);
    }
    rs_server_bootstrap_destroy(s->bootstrap);
    rs_event_loop_group_destroy(s->group);
#if BENCH_WITH_TLS
    rs_tls_installer_destroy(s->tls);
    rs_tls_ctx_release(s->tls_ctx);
#endif
}

/* >>libuv echo server (child), as libuv's test/echo-server.c */

typedef struct uv_server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    pthread_t thread;
} uv_server_t;

typedef struct uv_echo_write {
    uv_write_t req;
    uv_buf_t buf;
} uv_echo_write_t;

static void uv_on_closed(uv_handle_t *handle) {
    free(handle);
    atomic_fetch_sub(&g_server_connections, 1);
}

static void uv_on_alloc(uv_handle_t *handle, size_t suggested_size, uv_buf_t *buf) {
    (void)handle;
    buf->base = malloc(suggested_size);
    buf->len = buf->base ? suggested_size : 0;
}

static void uv_on_written(uv_write_t *req, int status) {
    uv_echo_write_t *w = (uv_echo_write_t *)req;
    (void)status;
    free(w->buf.base);
    free(w);
}

static void uv_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    if (nread <= 0) {
        free(buf->base);
        if (nread < 0) {
            uv_close((uv_handle_t *)stream, uv_on_closed);
        }
        return;
    }
    uv_echo_write_t *w = malloc(sizeof *w);
    if (!w) {
        fail("libuv echo", "out of memory");
    }
    w->buf = uv_buf_init(buf->base, (unsigned)nread);
    if (uv_write(&w->req, stream, &w->buf, 1, uv_on_written) != 0) {
        uv_on_written(&w->req, -1);
        uv_close((uv_handle_t *)stream, uv_on_closed);
    }
}

static void uv_on_connection(uv_stream_t *server, int status) {
    if (status < 0) {
        return;
    }
    uv_tcp_t *tcp = malloc(sizeof *tcp);
    if (!tcp) {
        fail("libuv accept", "out of memory");
    }
    uv_tcp_init(server->loop, tcp);
    atomic_fetch_add(&g_server_connections, 1);
    if (uv_accept(server, (uv_stream_t *)tcp) != 0) {
        uv_close((uv_handle_t *)tcp, uv_on_closed);
        return;
    }
    uv_tcp_nodelay(tcp, 1); /* as the reseau server */
    check_uv(uv_read_start((uv_stream_t *)tcp, uv_on_alloc, uv_on_read), "uv_read_start");
}

static void uv_close_connection(uv_handle_t *handle, void *arg) {
    (void)arg;
    if (!uv_is_closing(handle)) {
        uv_close(handle, uv_on_closed);
    }
}

static void uv_on_stop(uv_async_t *async) {
    uv_server_t *s = async->data;
    uv_close((uv_handle_t *)&s->listener, NULL);
    uv_close((uv_handle_t *)&s->stop, NULL);
    uv_walk(&s->loop, uv_close_connection, NULL);
}

static void *uv_run_thread(void *arg) {
    uv_server_t *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

static uint16_t uv_server_start(uv_server_t *s) {
    struct sockaddr_in addr;
    int len = sizeof addr;
    check_uv(uv_loop_init(&s->loop), "uv_loop_init");
    check_uv(uv_async_init(&s->loop, &s->stop, uv_on_stop), "uv_async_init");
    s->stop.data = s;
    check_uv(uv_tcp_init(&s->loop, &s->listener), "uv_tcp_init");
    check_uv(uv_ip4_addr("127.0.0.1", 0, &addr), "uv_ip4_addr");
    check_uv(uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0), "uv_tcp_bind");
    check_uv(uv_listen((uv_stream_t *)&s->listener, BACKLOG, uv_on_connection), "uv_listen");
    check_uv(uv_tcp_getsockname(&s->listener, (struct sockaddr *)&addr, &len), "uv_tcp_getsockname");
    if (pthread_create(&s->thread, NULL, uv_run_thread, s) != 0) {
        fail("pthread_create", strerror(errno));
    }
    return ntohs(addr.sin_port);
}

static void uv_server_stop(uv_server_t *s) {
    uv_async_send(&s->stop);
    pthread_join(s->thread, NULL);
    check_uv(uv_loop_close(&s->loop), "uv_loop_close");
}

/* >>the child: start the server, send its port, answer 'm' (measure) until 'q' */

static void write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fail("control socket", "write failed");
        }
        p += n;
        len -= (size_t)n;
    }
}

static bool read_all(int fd, void *data, size_t len) {
    char *p = data;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static void server_child(server_kind_t kind, int control) {
    rs_server_t rs = {0};
    uv_server_t uv = {0};
    uint16_t port = kind == SERVER_LIBUV ? uv_server_start(&uv) : rs_server_start(&rs, kind == SERVER_RESEAU_TLS);
    write_all(control, &port, sizeof port);
    char command;
    while (read_all(control, &command, 1) && command == 'm') {
        malloc_trim(0); /* as bench_tls: freed memory goes back, in both servers */
        measure_t m = {.rss_kb = rss_kb(), .heap_bytes = heap_bytes(), .connections = atomic_load(&g_server_connections)};
        write_all(control, &m, sizeof m);
    }
    if (kind == SERVER_LIBUV) {
        uv_server_stop(&uv);
    } else {
        rs_server_stop(&rs);
    }
    _exit(0);
}

/* >>the parent: the client */

typedef struct server_proc {
    pid_t pid;
    int control;
    uint16_t port;
} server_proc_t;

static server_proc_t spawn_server(server_kind_t kind) {
    int fds[2];
    server_proc_t p = {0};
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        fail("socketpair", strerror(errno));
    }
    fflush(stdout);
    p.pid = fork();
    if (p.pid < 0) {
        fail("fork", strerror(errno));
    }
    if (p.pid == 0) {
        alarm(BENCH_RUN_LIMIT_S + 30); /* whatever the parent does, the child ends */
        close(fds[0]);
        server_child(kind, fds[1]);
    }
    close(fds[1]);
    p.control = fds[0];
    struct pollfd pfd = {.fd = p.control, .events = POLLIN};
    if (poll(&pfd, 1, IO_TIMEOUT_MS) != 1 || !read_all(p.control, &p.port, sizeof p.port)) {
        fail(g_kind_names[kind], "the server did not start");
    }
    return p;
}

static measure_t measure_server(const server_proc_t *p) {
    measure_t m;
    write_all(p->control, "m", 1);
    struct pollfd pfd = {.fd = p->control, .events = POLLIN};
    if (poll(&pfd, 1, IO_TIMEOUT_MS) != 1 || !read_all(p->control, &m, sizeof m)) {
        fail("measure", "the server did not answer");
    }
    return m;
}

static void stop_server(server_proc_t *p) {
    int status = 0;
    write_all(p->control, "q", 1);
    close(p->control);
    if (waitpid(p->pid, &status, 0) != p->pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fail("server", "did not exit cleanly");
    }
}

static int connect_to(uint16_t port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail("socket", strerror(errno));
    }
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        fail("connect", strerror(errno));
    }
    struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close with a reset: no TIME_WAIT */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    int one = 1; /* no Nagle delay (40 ms with delayed ACKs) between handshake flights */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void wait_readable(int fd) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, IO_TIMEOUT_MS) != 1) {
        fail("echo", "timed out");
    }
}

/* A byte out and back on a plain connection. */
static void plain_echo(int fd) {
    char c = 'x';
    if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) {
        fail("echo", strerror(errno));
    }
    wait_readable(fd);
    if (recv(fd, &c, 1, 0) != 1 || c != 'x') {
        fail("echo", "wrong or missing byte");
    }
}

#if BENCH_WITH_TLS
static SSL_CTX *g_client_ctx;

static SSL_CTX *client_ctx(void) {
    if (g_client_ctx) {
        return g_client_ctx;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    BIO *b = BIO_new_mem_buf(demo_ca, -1);
    X509 *ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    if (!ctx || !ca || X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca) != 1) {
        fail("OpenSSL", "client context");
    }
    X509_free(ca);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* a full handshake each */
    g_client_ctx = ctx;
    return ctx;
}

/* Handshake (verifying the server), then a byte out and back. */
static SSL *tls_echo(int fd) {
    SSL *ssl = SSL_new(client_ctx());
    char c = 'x';
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    if (SSL_connect(ssl) != 1) {
        fail("SSL_connect", ERR_reason_error_string(ERR_get_error()));
    }
    if (SSL_write(ssl, &c, 1) != 1 || SSL_read(ssl, &c, 1) != 1 || c != 'x') {
        fail("TLS echo", "wrong or missing byte");
    }
    return ssl;
}
#endif

typedef struct run_result {
    double rss_kb;  /* per connection */
    double heap_kb; /* per connection */
} run_result_t;

/* One run against a fresh server of `kind`: the growth per connection. */
static run_result_t measure_run(server_kind_t kind, size_t count) {
    server_proc_t server = spawn_server(kind);
    bool tls = kind == SERVER_RESEAU_TLS;
    int *fds = xcalloc(count + 1, sizeof *fds);
    void **ssl = xcalloc(count + 1, sizeof *ssl);
    for (size_t i = 0; i <= count; i++) {
        static measure_t before;
        fds[i] = connect_to(server.port);
#if BENCH_WITH_TLS
        if (tls) {
            ssl[i] = tls_echo(fds[i]);
        } else
#endif
        {
            plain_echo(fds[i]);
        }
        if (i == 0) {
            before = measure_server(&server);
        }
        if (i == count) {
            measure_t after = measure_server(&server);
            if (after.connections != count + 1) {
                fprintf(stderr, BENCH_PROGRAM ": %s: the server has %zu connections, expected %zu\n",
                        g_kind_names[kind], after.connections, count + 1);
                exit(1);
            }
            run_result_t r = {.rss_kb = ((double)after.rss_kb - (double)before.rss_kb) / (double)count,
                              .heap_kb = ((double)after.heap_bytes - (double)before.heap_bytes) / 1024.0 / (double)count};
            snprintf(g_detail, sizeof g_detail, "RSS %zu -> %zu KB, heap %.1f -> %.1f MB", before.rss_kb,
                     after.rss_kb, (double)before.heap_bytes / 1e6, (double)after.heap_bytes / 1e6);
            for (size_t k = 0; k <= count; k++) {
#if BENCH_WITH_TLS
                if (ssl[k]) {
                    SSL_free(ssl[k]); /* no close_notify: the reset below ends it */
                }
#endif
                close(fds[k]);
            }
            free(fds);
            free(ssl);
            stop_server(&server);
            return r;
        }
    }
    (void)tls;
    fail("measure_run", "unreachable");
    return (run_result_t){0};
}

/* >>the runner: like bench_common's, with two figures per run */

static void print_line(const char *name, const char *peer, double r, double p) {
    if (p >= 0) {
        printf("%-16s  reseau=%11.1fKB  %s=%11.1fKB  ratio=%.2f\n", name, r, peer, p, r / p);
    } else {
        printf("%-16s  reseau=%11.1fKB  (no peer; goal <= 40 KB)\n", name, r);
    }
}

static void run_pair(const char *prefix, server_kind_t reseau_kind, bool with_peer, size_t count, int rounds) {
    double rss[2][BENCH_MAX_ROUNDS], heap[2][BENCH_MAX_ROUNDS];
    for (int i = 0; i < rounds; i++) {
        for (int side = 0; side < (with_peer ? 2 : 1); side++) {
            server_kind_t kind = side ? SERVER_LIBUV : reseau_kind;
            static char label[64];
            snprintf(label, sizeof label, "%sidle/%s", prefix, g_kind_names[kind]);
            g_current_run = label;
            g_detail[0] = '\0';
            alarm(BENCH_RUN_LIMIT_S);
            run_result_t r = measure_run(kind, count);
            alarm(0);
            rss[side][i] = r.rss_kb;
            heap[side][i] = r.heap_kb;
            if (g_verbose) {
                printf("  %-22s RSS %6.2f KB, heap %6.2f KB per connection (%zu connections; %s)\n", label, r.rss_kb,
                       r.heap_kb, count, g_detail);
            }
        }
    }
    char name[64];
    snprintf(name, sizeof name, "%sidle_rss", prefix);
    print_line(name, "libuv", median(rss[0], rounds), with_peer ? median(rss[1], rounds) : -1);
    snprintf(name, sizeof name, "%sidle_heap", prefix);
    print_line(name, "libuv", median(heap[0], rounds), with_peer ? median(heap[1], rounds) : -1);
}

/* Raise RLIMIT_NOFILE for `count` connections (both processes inherit it);
 * returns the count that fits. */
static size_t fit_descriptors(size_t count, const char *what) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return count;
    }
    rlim_t want = (rlim_t)count + FD_MARGIN;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want) {
        size_t fit = rl.rlim_cur > FD_MARGIN * 2 ? (size_t)rl.rlim_cur - FD_MARGIN : 0;
        fprintf(stderr, BENCH_PROGRAM ": the open-file limit is %llu: %s runs with %zu connections, not %zu\n",
                (unsigned long long)rl.rlim_cur, what, fit, count);
        return fit;
    }
    return count;
}

static int usage(void) {
    fprintf(stderr, "usage: " BENCH_PROGRAM " [-r ROUNDS] [-v] [-n COUNT] [-t TLS_COUNT] [plain] [tls]\n");
    return 2;
}

int main(int argc, char **argv) {
    int rounds = BENCH_DEFAULT_ROUNDS, arg = 1;
    long count = DEFAULT_COUNT, tls_count = DEFAULT_TLS_COUNT;
    bool plain = false, tls = false;
    for (; arg < argc; arg++) {
        if (strcmp(argv[arg], "-v") == 0) {
            g_verbose = true;
        } else if (strcmp(argv[arg], "-r") == 0 && arg + 1 < argc) {
            rounds = atoi(argv[++arg]);
        } else if (strcmp(argv[arg], "-n") == 0 && arg + 1 < argc) {
            count = atol(argv[++arg]);
        } else if (strcmp(argv[arg], "-t") == 0 && arg + 1 < argc) {
            tls_count = atol(argv[++arg]);
        } else if (strcmp(argv[arg], "plain") == 0) {
            plain = true;
        } else if (strcmp(argv[arg], "tls") == 0) {
            tls = true;
        } else {
            return usage();
        }
    }
    if (rounds < 1 || rounds > BENCH_MAX_ROUNDS || count < 1 || count > MAX_COUNT || tls_count < 1 ||
        tls_count > MAX_COUNT) {
        return usage();
    }
    if (!plain && !tls) {
        plain = tls = true;
    }
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("# " BENCH_PROGRAM ": median of %d runs per side, alternating reseau/peer; %zu CPUs, libuv %s\n", rounds,
           rs_usable_cpu_count(), uv_version_string());
    if (plain) {
        size_t n = fit_descriptors((size_t)count, "plain");
        if (n) {
            printf("# idle_*: KB per idle connection of an echo server (%zu connections); lower is better\n", n);
            run_pair("", SERVER_RESEAU, true, n, rounds);
        }
    }
#if BENCH_WITH_TLS
    if (tls) {
        size_t n = fit_descriptors((size_t)tls_count, "tls");
        if (n) {
            printf("# tls_idle_*: KB per idle TLS connection of a reseau TLS echo server (%zu connections)\n", n);
            run_pair("tls_", SERVER_RESEAU_TLS, false, n, rounds);
        }
        SSL_CTX_free(g_client_ctx);
    }
#else
    if (tls) {
        printf("# tls_idle_*: not built (needs BearSSL, libbearssl-dev, and OpenSSL, libssl-dev)\n");
    }
#endif
    return 0;
}
