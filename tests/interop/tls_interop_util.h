/*
 * Helpers for the TLS interop tests (test_tls_openssl.c, test_tls_gnutls.c,
 * test_tls_curl.c): reseau clients and servers made by the bootstraps with
 * the TLS installer, against real peers run as child processes.
 *
 * Include first in the test file: it includes tls/tls_test_util.h (reseau.h,
 * reseau_tls.h with their implementations, the test certificates) and
 * interop_util.h (children, ports).
 *
 * Threads: a group of one loop runs the connections; its callbacks only record
 * what happened in tix_conn_t, under tix_lock, and the test thread waits for
 * it (TIX_WAIT, bounded by IX_WAIT_NS) and asserts. Children are forked from
 * the test thread and exec at once; they are killed and reaped by
 * ix_teardown, pass or fail. A peer's output goes to a log file in the test's
 * temporary directory, and is printed when a wait or a check fails.
 */
#ifndef RESEAU_TLS_INTEROP_UTIL_H
#define RESEAU_TLS_INTEROP_UTIL_H

/* Each test uses some of the shared helpers: no unused-function warnings for
 * these headers (popped at the end of this one). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "tls/tls_test_util.h"

#include "interop_util.h"

#include <pthread.h>

#define TIX_MAX_CONNS 8
#define TIX_MAX_LOGS 4
#define TIX_RECV_CAP (4 * IX_MIB)

static pthread_mutex_t tix_lock = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------------ peer logs */

static char tix_logs[TIX_MAX_LOGS][160];
static int tix_log_count;

/* "TMPDIR/name" for a peer's output; remembered, to be printed on failure. */
static const char *tix_log_path(const char *name) {
    char *p;
    assert_true(tix_log_count < TIX_MAX_LOGS);
    p = tix_logs[tix_log_count++];
    snprintf(p, sizeof(tix_logs[0]), "%s/%s", ix_tmpdir, name);
    return p;
}

/* The whole file, NUL-terminated (malloc'd; "" if missing). */
static char *tix_read_file(const char *path, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t len = 0;
    size_t cap = 4096;
    buf = (char *)malloc(cap);
    assert_non_null(buf);
    if (f) {
        size_t n;
        while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
            len += n;
            if (cap - len - 1 == 0) {
                cap *= 2;
                buf = (char *)realloc(buf, cap);
                assert_non_null(buf);
            }
        }
        fclose(f);
    }
    buf[len] = '\0';
    if (len_out) {
        *len_out = len;
    }
    return buf;
}

/* Print the end of every peer log, for a failure message. */
static void tix_dump_logs(void) {
    int i;
    for (i = 0; i < tix_log_count; ++i) {
        size_t len = 0;
        char *text = tix_read_file(tix_logs[i], &len);
        size_t from = len > 3000 ? len - 3000 : 0;
        print_message("---- %s (%zu bytes%s) ----\n%s\n---- end ----\n", tix_logs[i], len,
                      from ? ", last 3000 shown" : "", text + from);
        free(text);
    }
}

static void tix_reset_logs(void) {
    tix_log_count = 0;
}

#define TIX_FAIL(...)                                                                               \
    do {                                                                                            \
        tix_dump_logs();                                                                            \
        fail_msg(__VA_ARGS__);                                                                      \
    } while (0)

/* Whether `needle` occurs in the file. */
static bool tix_file_contains(const char *path, const char *needle) {
    char *text = tix_read_file(path, NULL);
    bool found = strstr(text, needle) != NULL;
    free(text);
    return found;
}

#define TIX_EXPECT_IN_FILE(path, needle)                                                            \
    do {                                                                                            \
        if (!tix_file_contains((path), (needle))) {                                                 \
            TIX_FAIL("expected \"%s\" in the output of the peer (%s)", (needle), (path));           \
        }                                                                                           \
    } while (0)

/* Wait, bounded, until `pred` holds (evaluated under tix_lock). */
#define TIX_WAIT(pred, ...)                                                                         \
    do {                                                                                            \
        uint64_t tix_deadline_ = rs_clock_now_ns() + IX_WAIT_NS;                                    \
        for (;;) {                                                                                  \
            bool tix_ok_;                                                                           \
            pthread_mutex_lock(&tix_lock);                                                          \
            tix_ok_ = (pred);                                                                       \
            pthread_mutex_unlock(&tix_lock);                                                        \
            if (tix_ok_) {                                                                          \
                break;                                                                              \
            }                                                                                       \
            if (rs_clock_now_ns() > tix_deadline_) {                                                \
                TIX_FAIL(__VA_ARGS__);                                                              \
            }                                                                                       \
            rs_thread_sleep_ns(5 * RS_NS_PER_MS);                                                   \
        }                                                                                           \
    } while (0)

/* ------------------------------------------------------------- children */

/* Start argv[0] (a full path) with stdin from stdin_fd (-1: /dev/null),
 * stdout to out_path (NULL: /dev/null) and stderr to err_path (NULL: with
 * stdout). Tracked like ix_spawn's children. */
static pid_t tix_spawn2(char *const argv[], int stdin_fd, const char *out_path, const char *err_path) {
    pid_t pid;
    assert_true(ix_child_count < IX_MAX_CHILDREN);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in;
        int out;
        int err;
        sigset_t none;
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1) {
            _exit(126);
        }
        signal(SIGPIPE, SIG_DFL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        in = stdin_fd >= 0 ? stdin_fd : open("/dev/null", O_RDONLY);
        out = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600) : open("/dev/null", O_WRONLY);
        err = err_path ? open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600) : out;
        if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) {
            _exit(125);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    setpgid(pid, pid);
    ix_children[ix_child_count++] = pid;
    return pid;
}

/* The same with stdout and stderr to one file. */
static pid_t tix_spawn(char *const argv[], int stdin_fd, const char *out_path) {
    return tix_spawn2(argv, stdin_fd, out_path, NULL);
}

/* A socketpair for a child's stdin: [0] for the child, [1] for the test
 * (written with send(MSG_NOSIGNAL), so a dead child is an error, not a
 * SIGPIPE). Both close-on-exec; dup2 clears it on the child's fd 0. */
static void tix_stdin_pair(int fds[2]) {
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
}

static void tix_send_stdin(int fd, const char *text) {
    size_t len = strlen(text);
    while (len) {
        ssize_t n = send(fd, text, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            TIX_FAIL("writing to the peer's stdin: %s", strerror(errno));
        }
        text += n;
        len -= (size_t)n;
    }
}

/* Whether a TCP socket listens on `port` (any address), from /proc/net/tcp{,6}:
 * a readiness check that opens no connection to the peer. */
static bool tix_port_listening(uint16_t port) {
    static const char *const files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    size_t i;
    for (i = 0; i < 2; ++i) {
        FILE *f = fopen(files[i], "r");
        char line[512];
        if (!f) {
            continue;
        }
        while (fgets(line, sizeof(line), f)) {
            char local[128];
            unsigned st = 0;
            char *colon;
            if (sscanf(line, " %*s %127s %*s %x", local, &st) != 2 || st != 0x0A) {
                continue; /* header, or not LISTEN */
            }
            colon = strrchr(local, ':');
            if (colon && strtoul(colon + 1, NULL, 16) == port) {
                fclose(f);
                return true;
            }
        }
        fclose(f);
    }
    return false;
}

/* Wait until the child listens on port; fail if it exits first. */
static void tix_wait_listening(pid_t child, uint16_t port) {
    uint64_t deadline = rs_clock_now_ns() + IX_WAIT_NS;
    int status = 0;
    while (!tix_port_listening(port)) {
        if (ix_child_exited(child, &status)) {
            TIX_FAIL("the peer exited (status 0x%x) before listening on port %u", status, (unsigned)port);
        }
        if (rs_clock_now_ns() > deadline) {
            TIX_FAIL("the peer did not listen on port %u in time", (unsigned)port);
        }
        rs_thread_sleep_ns(10 * RS_NS_PER_MS);
    }
}

/* Wait for the child to exit by itself; its exit status. */
static int tix_wait_exit(pid_t child, const char *what) {
    int status = 0;
    if (!ix_wait_child(child, IX_WAIT_NS, &status)) {
        TIX_FAIL("%s did not exit in time", what);
    }
    if (!WIFEXITED(status)) {
        TIX_FAIL("%s was killed (wait status 0x%x)", what, status);
    }
    return WEXITSTATUS(status);
}

/* ------------------------------------------------------------ connections */

typedef enum tix_mode {
    TIX_RECORD = 0, /* keep what arrives */
    TIX_ECHO = 1,   /* keep it and send it back */
    TIX_HTTP = 2    /* keep it; at the end of the request head, answer and close */
} tix_mode_t;

#define TIX_HTTP_BODY "hello from reseau over TLS\n"

/* One connection, either side: the application handler and what it saw. */
typedef struct tix_conn {
    rs_channel_handler_t handler; /* the rightmost handler; lives in the conn, not freed by the channel */
    tix_mode_t mode;
    rs_channel_t *channel;        /* from install until shutdown */
    rs_channel_slot_t *slot;
    int setup_calls;
    int setup_error;
    int shutdown_calls;
    int shutdown_error;
    bool have_info;
    rs_tls_info_t info; /* strings point into the copies below */
    char alpn[RS_TLS_ALPN_NAME_MAX + 1];
    char server_name[256];
    char suite[64];
    uint8_t *recv;
    size_t received;
    bool answered;
} tix_conn_t;

static void tix_conn_init(tix_conn_t *c, tix_mode_t mode) {
    memset(c, 0, sizeof(*c));
    c->mode = mode;
    c->recv = (uint8_t *)malloc(TIX_RECV_CAP);
    assert_non_null(c->recv);
}

static void tix_conn_cleanup(tix_conn_t *c) {
    free(c->recv);
    c->recv = NULL;
}

/* Send from the handler's slot, leftwards, in fragments. Loop thread. */
static int tix_send_now(tix_conn_t *c, const uint8_t *p, size_t len) {
    rs_channel_t *channel = rs_channel_slot_get_channel(c->slot);
    while (len) {
        size_t n = len < RS_MAX_FRAGMENT_SIZE ? len : RS_MAX_FRAGMENT_SIZE;
        rs_io_message_t *m = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, n);
        int err;
        if (!m) {
            return RS_ENOMEM;
        }
        memcpy(m->message_data.buffer, p, n);
        m->message_data.len = n;
        err = rs_channel_slot_send_message(c->slot, m, RS_CHANNEL_DIR_WRITE);
        if (err) {
            rs_channel_release_message_to_pool(channel, m);
            return err;
        }
        p += n;
        len -= n;
    }
    return RS_OK;
}

static void tix_http_answer(tix_conn_t *c) {
    char response[256];
    int n = snprintf(response, sizeof(response),
                     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     strlen(TIX_HTTP_BODY), TIX_HTTP_BODY);
    rs_channel_t *channel = rs_channel_slot_get_channel(c->slot);
    int err = tix_send_now(c, (const uint8_t *)response, (size_t)n);
    rs_channel_shutdown(channel, err); /* graceful: the answer goes out, then close_notify */
}

static int tix_handler_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *m) {
    tix_conn_t *c = (tix_conn_t *)h->impl;
    size_t len = m->message_data.len;
    bool answer = false;
    int err = RS_OK;
    pthread_mutex_lock(&tix_lock);
    if (c->received + len <= TIX_RECV_CAP) {
        memcpy(c->recv + c->received, m->message_data.buffer, len);
    }
    c->received += len;
    if (c->mode == TIX_HTTP && !c->answered && c->received <= TIX_RECV_CAP) {
        c->recv[c->received < TIX_RECV_CAP ? c->received : TIX_RECV_CAP - 1] = '\0';
        if (strstr((const char *)c->recv, "\r\n\r\n")) {
            c->answered = answer = true;
        }
    }
    pthread_mutex_unlock(&tix_lock);
    if (c->mode == TIX_ECHO) {
        err = tix_send_now(c, m->message_data.buffer, len);
    }
    rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), m);
    if (err) {
        rs_channel_shutdown(rs_channel_slot_get_channel(slot), err);
        return RS_OK;
    }
    if (answer) {
        tix_http_answer(c);
    }
    return rs_channel_slot_increment_read_window(slot, len);
}

static const rs_channel_handler_vtable_t tix_handler_vtable = {
    tix_handler_read, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
};

/* The application installer: puts the next free tix_conn_t's handler in. */
typedef struct tix_installer {
    rs_channel_installer_t base;
    tix_conn_t *conns;
    int count;
    int next;
} tix_installer_t;

static int tix_install(rs_channel_installer_t *installer, rs_channel_t *channel, rs_channel_slot_t *slot,
                       rs_channel_installer_done_fn *done, void *done_ctx) {
    tix_installer_t *ti = (tix_installer_t *)installer->impl;
    tix_conn_t *c;
    rs_channel_slot_t *added = NULL;
    int err;
    pthread_mutex_lock(&tix_lock);
    c = ti->next < ti->count ? &ti->conns[ti->next++] : NULL;
    pthread_mutex_unlock(&tix_lock);
    if (!c) {
        return RS_EBUSY;
    }
    c->handler.vtable = &tix_handler_vtable;
    c->handler.impl = c;
    err = rs_channel_slot_add_handler_right(slot, &c->handler, &added);
    if (err) {
        return err;
    }
    pthread_mutex_lock(&tix_lock);
    c->channel = channel;
    c->slot = added;
    pthread_mutex_unlock(&tix_lock);
    done(channel, added, RS_OK, done_ctx);
    return RS_OK;
}

static const rs_channel_installer_vtable_t tix_installer_vtable = {tix_install, NULL};

static void tix_installer_init(tix_installer_t *ti, tix_conn_t *conns, int count) {
    memset(ti, 0, sizeof(*ti));
    ti->base.vtable = &tix_installer_vtable;
    ti->base.impl = ti;
    ti->conns = conns;
    ti->count = count;
}

/* Copy what the TLS handler negotiated. Loop thread, under tix_lock. */
static void tix_record_info(tix_conn_t *c, rs_channel_t *channel) {
    rs_channel_handler_t *tls = rs_tls_channel_get_handler(channel);
    if (!tls || rs_tls_handler_get_info(tls, &c->info) != RS_OK) {
        return;
    }
    c->have_info = true;
    snprintf(c->alpn, sizeof(c->alpn), "%s", c->info.alpn ? c->info.alpn : "");
    snprintf(c->server_name, sizeof(c->server_name), "%s", c->info.server_name ? c->info.server_name : "");
    snprintf(c->suite, sizeof(c->suite), "%s", c->info.cipher_suite_name);
    c->info.alpn = c->info.alpn ? c->alpn : NULL;
    c->info.server_name = c->info.server_name ? c->server_name : NULL;
    c->info.cipher_suite_name = c->suite;
}

/* ---------------------------------------------------------------- env */

/* One loop, a client and a server bootstrap, all with the leak-checking
 * allocator. */
typedef struct tix_env {
    rs_event_loop_group_t *group;
    rs_client_bootstrap_t *client;
    rs_server_bootstrap_t *server;
} tix_env_t;

/* The env of the running test, destroyed by tix_teardown if the test failed
 * before tix_env_cleanup: its loop must stop before the next test. */
static tix_env_t *tix_live_env;

static void tix_env_init(tix_env_t *env) {
    rs_event_loop_group_options_t go;
    rs_client_bootstrap_options_t co;
    rs_server_bootstrap_options_t so;
    int err = RS_EUNKNOWN;
    memset(env, 0, sizeof(*env));
    tix_reset_logs();
    memset(&go, 0, sizeof(go));
    go.allocator = &rs_test_allocator;
    go.loop_count = 1;
    env->group = rs_event_loop_group_new(&go, &err);
    assert_non_null(env->group);
    memset(&co, 0, sizeof(co));
    co.allocator = &rs_test_allocator;
    co.group = env->group;
    env->client = rs_client_bootstrap_new(&co, &err);
    assert_non_null(env->client);
    memset(&so, 0, sizeof(so));
    so.allocator = &rs_test_allocator;
    so.group = env->group;
    env->server = rs_server_bootstrap_new(&so, &err);
    assert_non_null(env->server);
    tix_live_env = env;
}

static void tix_env_cleanup(tix_env_t *env) {
    tix_live_env = NULL;
    rs_client_bootstrap_destroy(env->client);
    rs_server_bootstrap_destroy(env->server);
    assert_int_equal(rs_event_loop_group_destroy(env->group), RS_OK);
}

/* ---------------------------------------------------------------- client */

static void tix_client_on_setup(rs_client_bootstrap_t *b, rs_channel_t *channel, int error, void *user_data) {
    tix_conn_t *c = (tix_conn_t *)user_data;
    (void)b;
    pthread_mutex_lock(&tix_lock);
    c->setup_calls++;
    c->setup_error = error;
    if (!error) {
        c->channel = channel;
        tix_record_info(c, channel);
    }
    pthread_mutex_unlock(&tix_lock);
}

static void tix_client_on_shutdown(rs_client_bootstrap_t *b, rs_channel_t *channel, int error, void *user_data) {
    tix_conn_t *c = (tix_conn_t *)user_data;
    (void)b, (void)channel;
    pthread_mutex_lock(&tix_lock);
    c->shutdown_calls++;
    c->shutdown_error = error;
    c->channel = NULL; /* the bootstrap destroys it after this returns */
    pthread_mutex_unlock(&tix_lock);
}

typedef struct tix_client {
    tix_installer_t app;
    tix_conn_t *conn;
} tix_client_t;

/* Connect through the client bootstrap with a TLS installer (server_name as
 * SNI and for the check; alpn overrides the context's, may be NULL) and wait
 * for on_setup. Returns the setup error. */
static int tix_connect(tix_env_t *env, tix_client_t *cl, tix_conn_t *conn, const char *host, uint16_t port,
                       rs_tls_ctx_t *ctx, const char *server_name, const char *alpn) {
    rs_tls_connection_options_t to;
    rs_client_connect_options_t cc;
    rs_channel_installer_t *installers[2];
    int err = RS_EUNKNOWN;
    memset(&to, 0, sizeof(to));
    to.ctx = ctx;
    to.server_name = server_name;
    to.alpn_list = alpn;
    installers[0] = rs_tls_installer_new(&to, &err);
    assert_non_null(installers[0]);
    cl->conn = conn;
    tix_installer_init(&cl->app, conn, 1);
    installers[1] = &cl->app.base;
    memset(&cc, 0, sizeof(cc));
    cc.host = host;
    cc.port = port;
    cc.installers = installers;
    cc.installer_count = 2;
    cc.enable_read_back_pressure = true;
    cc.on_setup = tix_client_on_setup;
    cc.on_shutdown = tix_client_on_shutdown;
    cc.user_data = conn;
    assert_int_equal(rs_client_bootstrap_connect(env->client, &cc), RS_OK);
    TIX_WAIT(conn->setup_calls > 0, "no on_setup from the client bootstrap (connect to %s port %u)", host,
             (unsigned)port);
    rs_tls_installer_destroy(installers[0]); /* the bootstrap is done with it after on_setup */
    pthread_mutex_lock(&tix_lock);
    err = conn->setup_error;
    pthread_mutex_unlock(&tix_lock);
    return err;
}

/* A heap copy of data to send, as a channel task (any thread). */
typedef struct tix_send_task {
    rs_channel_task_t task;
    tix_conn_t *conn;
    size_t len;
    uint8_t data[];
} tix_send_task_t;

static void tix_send_task_fn(rs_channel_task_t *task, void *arg, rs_task_status_t status) {
    tix_send_task_t *t = (tix_send_task_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        int err = tix_send_now(t->conn, t->data, t->len);
        if (err) {
            rs_channel_shutdown(rs_channel_slot_get_channel(t->conn->slot), err);
        }
    }
    free(t);
}

/* Send from the test thread: the data is copied and sent on the loop. */
static void tix_send(tix_conn_t *c, const void *data, size_t len) {
    tix_send_task_t *t = (tix_send_task_t *)malloc(sizeof(*t) + len);
    int err;
    assert_non_null(t);
    t->conn = c;
    t->len = len;
    memcpy(t->data, data, len);
    rs_channel_task_init(&t->task, tix_send_task_fn, t, "tix_send");
    pthread_mutex_lock(&tix_lock);
    err = c->channel && c->shutdown_calls == 0 ? rs_channel_schedule_task_now(c->channel, &t->task) : RS_ESTATE;
    pthread_mutex_unlock(&tix_lock);
    if (err) {
        free(t);
        TIX_FAIL("cannot send on the connection: %s", rs_err_name(err));
    }
}

static void tix_send_text(tix_conn_t *c, const char *text) {
    tix_send(c, text, strlen(text));
}

/* Graceful close from the test thread (close_notify), then wait for it. */
static void tix_close(tix_conn_t *c) {
    pthread_mutex_lock(&tix_lock);
    if (c->channel && c->shutdown_calls == 0) {
        rs_channel_shutdown(c->channel, RS_OK);
    }
    pthread_mutex_unlock(&tix_lock);
    TIX_WAIT(c->shutdown_calls > 0, "the connection did not shut down");
}

/* Whether the connection has received at least `len` bytes equal to `want`. */
static bool tix_received_is(const tix_conn_t *c, const void *want, size_t len) {
    return c->received >= len && c->received <= TIX_RECV_CAP && memcmp(c->recv, want, len) == 0;
}

/* Wait until `len` bytes arrived (or the connection ended), then check them. */
static void tix_wait_received(tix_conn_t *c, const void *want, size_t len) {
    size_t got;
    bool same;
    TIX_WAIT(c->received >= len || c->shutdown_calls > 0, "expected %zu bytes from the peer, got %zu", len,
             c->received);
    pthread_mutex_lock(&tix_lock);
    got = c->received;
    same = tix_received_is(c, want, len);
    pthread_mutex_unlock(&tix_lock);
    if (!same) {
        TIX_FAIL("the peer sent %zu bytes, expected %zu: %s", got, len,
                 got < len ? "too few (the connection ended)" : "different bytes");
    }
}

#define TIX_WAIT_RECEIVED(c, want, len) tix_wait_received((c), (want), (len))

/* ---------------------------------------------------------------- server */

typedef struct tix_server {
    tix_installer_t app;
    rs_channel_installer_t *tls;
    tix_conn_t conns[TIX_MAX_CONNS];
    rs_server_listener_t *listener;
    uint16_t port;
    int setup_errors;
    int last_setup_error;
    bool destroyed;
} tix_server_t;

static tix_conn_t *tix_server_find(tix_server_t *s, rs_channel_t *channel) {
    int i;
    for (i = 0; i < TIX_MAX_CONNS; ++i) {
        if (s->conns[i].channel == channel) {
            return &s->conns[i];
        }
    }
    return NULL;
}

static void tix_server_on_setup(rs_server_listener_t *l, rs_channel_t *channel, int error, void *user_data) {
    tix_server_t *s = (tix_server_t *)user_data;
    tix_conn_t *c;
    (void)l;
    pthread_mutex_lock(&tix_lock);
    c = error ? NULL : tix_server_find(s, channel);
    if (!c) {
        s->setup_errors++;
        s->last_setup_error = error ? error : RS_ESTATE;
    } else {
        c->setup_calls++;
        tix_record_info(c, channel);
    }
    pthread_mutex_unlock(&tix_lock);
}

static void tix_server_on_shutdown(rs_server_listener_t *l, rs_channel_t *channel, int error, void *user_data) {
    tix_server_t *s = (tix_server_t *)user_data;
    tix_conn_t *c;
    (void)l;
    pthread_mutex_lock(&tix_lock);
    c = tix_server_find(s, channel);
    if (c) {
        c->shutdown_calls++;
        c->shutdown_error = error;
        c->channel = NULL;
    }
    pthread_mutex_unlock(&tix_lock);
}

static void tix_server_on_destroyed(rs_server_listener_t *l, void *user_data) {
    tix_server_t *s = (tix_server_t *)user_data;
    (void)l;
    pthread_mutex_lock(&tix_lock);
    s->destroyed = true;
    pthread_mutex_unlock(&tix_lock);
}

/* A TLS server on 127.0.0.1, a port picked by the system, each connection's
 * handler in `mode`. */
static void tix_server_start(tix_env_t *env, tix_server_t *s, rs_tls_ctx_t *ctx, tix_mode_t mode) {
    rs_tls_connection_options_t to;
    rs_server_listener_options_t lo;
    rs_channel_installer_t *installers[2];
    rs_endpoint_t ep;
    int err = RS_EUNKNOWN;
    int i;
    memset(&ep, 0, sizeof(ep));
    memset(s, 0, sizeof(*s));
    for (i = 0; i < TIX_MAX_CONNS; ++i) {
        tix_conn_init(&s->conns[i], mode);
    }
    memset(&to, 0, sizeof(to));
    to.ctx = ctx;
    s->tls = rs_tls_installer_new(&to, &err);
    assert_non_null(s->tls);
    tix_installer_init(&s->app, s->conns, TIX_MAX_CONNS);
    installers[0] = s->tls;
    installers[1] = &s->app.base;
    memset(&lo, 0, sizeof(lo));
    lo.host = "127.0.0.1";
    lo.installers = installers;
    lo.installer_count = 2;
    lo.enable_read_back_pressure = true;
    lo.on_incoming_setup = tix_server_on_setup;
    lo.on_incoming_shutdown = tix_server_on_shutdown;
    lo.on_listener_destroyed = tix_server_on_destroyed;
    lo.user_data = s;
    s->listener = rs_server_bootstrap_new_listener(env->server, &lo, &err);
    if (!s->listener) {
        fail_msg("rs_server_bootstrap_new_listener: %s", rs_err_name(err));
    }
    assert_int_equal(rs_server_listener_get_address(s->listener, &ep), RS_OK);
    s->port = (uint16_t)ep.port;
}

/* Destroy the listener (connections aborted), wait for it, then free the TLS
 * installer, which the bootstrap no longer uses. */
static void tix_server_stop(tix_server_t *s) {
    int i;
    assert_int_equal(rs_server_bootstrap_destroy_listener(s->listener, true), RS_OK);
    TIX_WAIT(s->destroyed, "on_listener_destroyed did not fire");
    rs_tls_installer_destroy(s->tls);
    for (i = 0; i < TIX_MAX_CONNS; ++i) {
        tix_conn_cleanup(&s->conns[i]);
    }
}

static rs_tls_ctx_t *tix_client_ctx(const char *ca, const char *alpn) {
    rs_tls_ctx_options_t o = tls_test_client_options();
    o.ca_file = tls_test_path(ca);
    o.alpn_list = alpn;
    return tls_test_ctx(&o);
}

static rs_tls_ctx_t *tix_server_ctx(const char *leaf, const char *alpn) {
    rs_tls_ctx_options_t o = tls_test_server_options(leaf);
    o.alpn_list = alpn;
    return tls_test_ctx(&o);
}

/* Teardown: after a failure, stop the test's loop first (so no callback
 * touches the test's state any more; what it held leaks, and the failure
 * says so), then kill and reap the children and remove the directory. Tests
 * keep the state their callbacks write (env, conns, servers) in static
 * storage, never on the stack a failure unwinds. */
static int tix_teardown(void **state) {
    if (tix_live_env) {
        tix_env_t *env = tix_live_env;
        tix_live_env = NULL;
        rs_event_loop_group_destroy(env->group);
    }
    return ix_teardown(state);
}

#pragma GCC diagnostic pop

#endif /* RESEAU_TLS_INTEROP_UTIL_H */
