/*
 * rscat: a netcat with TLS, like `openssl s_client` or `ncat --ssl`, built on
 * reseau.h and reseau_tls.h in one file (RESEAU_STATIC: every reseau function
 * is static here).
 *
 *   rscat [options] HOST PORT          connect (the client bootstrap: resolve,
 *                                      Happy Eyeballs)
 *   rscat -l [options] [HOST] PORT     listen (the server bootstrap), serve one
 *                                      connection, then exit
 *
 * stdin goes to the peer and what the peer sends goes to stdout, both with
 * back-pressure: a reader thread reads stdin into RSCAT_CHUNKS buffers and
 * hands them to the loop as tasks, and reads the next only when one of its
 * writes has completed (reached the kernel); stdout is written in full,
 * blocking, before the read window is reopened, so nothing is lost and a slow
 * stdout slows the peer down. The reader waits in poll() on stdin and on a
 * wake-up pipe, so it can be told to stop and joined when the connection ends. At end of stdin the connection stays open until
 * the peer closes it, unless -q says otherwise (TLS has no half-close).
 *
 * Exit status (one per failure class; also in --help):
 *   0  the connection ended cleanly (end of stream or close_notify)
 *   1  internal error (out of memory, a thread could not start, ...)
 *   2  usage error
 *   3  name resolution failed
 *   4  connect or listen failed (refused, unreachable, timed out, address in use)
 *   5  TLS set-up failed: a CA, certificate or key file could not be loaded
 *   6  TLS: the peer's certificate was not accepted (untrusted, expired,
 *      not yet valid, wrong host name)
 *   7  TLS handshake failed otherwise (protocol version, alert, no shared
 *      cipher, ALPN, handshake timeout, client certificate required)
 *   8  the connection failed after it was set up (reset, TLS truncation)
 *   9  reading stdin or writing stdout failed
 */
#define RESEAU_STATIC
#define RESEAU_IMPLEMENTATION
#include "reseau.h"
#define RESEAU_TLS_IMPLEMENTATION
#include "reseau_tls.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    RSCAT_EXIT_OK = 0,
    RSCAT_EXIT_INTERNAL = 1,
    RSCAT_EXIT_USAGE = 2,
    RSCAT_EXIT_DNS = 3,
    RSCAT_EXIT_CONNECT = 4,
    RSCAT_EXIT_TLS_CONFIG = 5,
    RSCAT_EXIT_TLS_VERIFY = 6,
    RSCAT_EXIT_TLS_HANDSHAKE = 7,
    RSCAT_EXIT_CONNECTION = 8,
    RSCAT_EXIT_LOCAL_IO = 9
};

/* stdin buffers in flight: 4 fragments keep a socket busy while bounding what
 * a peer that stops reading makes us hold. */
#define RSCAT_CHUNKS 4
#define RSCAT_CHUNK_SIZE RS_MAX_FRAGMENT_SIZE

static const char usage_text[] =
    "usage: rscat [options] HOST PORT        connect\n"
    "       rscat -l [options] [HOST] PORT   listen for one connection (HOST: a literal\n"
    "                                        address or localhost; default all IPv4)\n"
    "options:\n"
    "  --tls               use TLS (implied by every option below but -q, -w, -v)\n"
    "  --cafile FILE       CAs that verify the peer (default: the system store)\n"
    "  --cert FILE         our certificate chain, PEM (required with -l --tls)\n"
    "  --key FILE          our private key, PEM\n"
    "  --alpn LIST         protocols offered or accepted, e.g. h2,http/1.1\n"
    "  --servername NAME   SNI and the name the certificate must carry (default: HOST)\n"
    "  --insecure          do not verify the peer's certificate\n"
    "  -q SECS             after end of stdin, close SECS seconds later (0: at once;\n"
    "                      default: wait for the peer to close)\n"
    "  -w SECS             connect and handshake timeout (default: 10)\n"
    "  -v                  print what was negotiated on stderr; -vv also reseau's log\n"
    "  -h, --help          this text\n"
    "exit status:\n"
    "  0 clean end   1 internal error   2 usage   3 name resolution   4 connect/listen\n"
    "  5 TLS files   6 peer certificate refused   7 TLS handshake   8 connection lost\n"
    "  9 stdin/stdout error\n";

typedef struct rscat_chunk {
    rs_channel_task_t task;
    size_t len;
    bool busy;
    uint8_t data[RSCAT_CHUNK_SIZE];
} rscat_chunk_t;

typedef struct rscat {
    /* options */
    const char *host;
    const char *port_text;
    uint32_t port;
    bool listen;
    bool tls;
    const char *cafile, *cert, *key, *servername;
    char alpn[512];
    bool insecure;
    int close_after_eof_s; /* -1: wait for the peer */
    uint32_t timeout_ms;
    int verbose;

    /* state, under lock */
    rs_mutex_t lock;
    rs_condvar_t cond;
    rs_channel_t *channel; /* the one connection, once set up */
    rs_channel_slot_t *slot; /* our handler's slot */
    bool have_connection;
    bool closing;  /* no more tasks may be scheduled on channel */
    bool done;     /* the connection (or the attempt) is over */
    bool listener_destroyed;
    int exit_code;
    int local_io_error;
    rscat_chunk_t chunks[RSCAT_CHUNKS];
    rs_channel_task_t eof_task;
    rs_channel_task_t close_task;
} rscat_t;

static rscat_t cat;
/* Written once when the connection is over, to wake the stdin thread. */
static int wake_pipe[2] = {-1, -1};

static int exit_code_for(int error, bool after_setup) {
    switch (error) {
    case RS_OK:
    case RS_EEOF:
        return RSCAT_EXIT_OK;
    case RS_EDNS_NOT_FOUND:
    case RS_EDNS_TRY_AGAIN:
    case RS_EDNS_FAILED:
        return RSCAT_EXIT_DNS;
    case RS_ETLS_CERT_EXPIRED:
    case RS_ETLS_CERT_NOT_YET_VALID:
    case RS_ETLS_HOSTNAME_MISMATCH:
    case RS_ETLS_UNTRUSTED:
    case RS_ETLS_BAD_CERT:
        return after_setup ? RSCAT_EXIT_CONNECTION : RSCAT_EXIT_TLS_VERIFY;
    case RS_ENOMEM:
    case RS_ETHREAD:
        return RSCAT_EXIT_INTERNAL;
    default:
        break;
    }
    if (after_setup) {
        return RSCAT_EXIT_CONNECTION;
    }
    if (error <= RS_ETLS_CERT_EXPIRED && error >= RS_ETLS_FAILED) {
        return RSCAT_EXIT_TLS_HANDSHAKE;
    }
    return RSCAT_EXIT_CONNECT;
}

static void finish(int exit_code) {
    rs_mutex_lock(&cat.lock);
    if (!cat.done) {
        cat.exit_code = exit_code;
    }
    cat.done = true;
    cat.closing = true;
    rs_condvar_broadcast(&cat.cond);
    rs_mutex_unlock(&cat.lock);
}

/* ----------------------------------------------------------- stdout side */

/* Write everything, waiting out EAGAIN (a non-blocking stdout) and EINTR. */
static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd;
            pfd.fd = fd;
            pfd.events = POLLOUT;
            pfd.revents = 0;
            (void)poll(&pfd, 1, -1);
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            return errno ? errno : EIO;
        }
    }
    return 0;
}

static int app_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    rs_channel_t *channel = rs_channel_slot_get_channel(slot);
    size_t n = message->message_data.len;
    int err = write_all(STDOUT_FILENO, message->message_data.buffer, n);
    (void)h;
    rs_channel_release_message_to_pool(channel, message);
    if (err) {
        fprintf(stderr, "rscat: writing stdout: %s\n", strerror(err));
        rs_mutex_lock(&cat.lock);
        cat.local_io_error = 1;
        rs_mutex_unlock(&cat.lock);
        rs_channel_shutdown(channel, RS_EIO);
        return RS_OK;
    }
    return rs_channel_slot_increment_read_window(slot, n); /* stdout has it: take more */
}

static const rs_channel_handler_vtable_t app_vtable = {
    app_read, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
};
static rs_channel_handler_t app_handler = {&app_vtable, NULL, NULL};

/* Our installer: the stdin/stdout handler, for the first connection only. */
static int app_install(rs_channel_installer_t *installer, rs_channel_t *channel, rs_channel_slot_t *slot,
                       rs_channel_installer_done_fn *done, void *done_ctx) {
    rs_channel_slot_t *added = NULL;
    int err;
    (void)installer;
    rs_mutex_lock(&cat.lock);
    if (cat.have_connection || cat.done) {
        rs_mutex_unlock(&cat.lock);
        return RS_EBUSY; /* one connection at a time, as netcat */
    }
    cat.have_connection = true;
    rs_mutex_unlock(&cat.lock);
    err = rs_channel_slot_add_handler_right(slot, &app_handler, &added);
    if (err) {
        return err;
    }
    rs_mutex_lock(&cat.lock);
    cat.slot = added;
    rs_mutex_unlock(&cat.lock);
    done(channel, added, RS_OK, done_ctx);
    return RS_OK;
}

static const rs_channel_installer_vtable_t app_installer_vtable = {app_install, NULL};
static rs_channel_installer_t app_installer = {&app_installer_vtable, NULL};

/* ------------------------------------------------------------ stdin side */

static void chunk_release(rscat_chunk_t *chunk) {
    rs_mutex_lock(&cat.lock);
    chunk->busy = false;
    rs_condvar_broadcast(&cat.cond);
    rs_mutex_unlock(&cat.lock);
}

static void chunk_written(rs_channel_t *channel, rs_io_message_t *message, int error, void *user_data) {
    (void)channel, (void)message, (void)error;
    chunk_release((rscat_chunk_t *)user_data);
}

/* On the loop: send a chunk of stdin from our slot, leftwards. */
static void chunk_send_task(rs_channel_task_t *task, void *arg, rs_task_status_t status) {
    rscat_chunk_t *chunk = (rscat_chunk_t *)arg;
    rs_channel_t *channel;
    rs_io_message_t *m;
    (void)task;
    if (status != RS_TASK_STATUS_RUN) {
        chunk_release(chunk);
        return;
    }
    channel = rs_channel_slot_get_channel(cat.slot);
    m = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, chunk->len);
    if (!m) {
        chunk_release(chunk);
        rs_channel_shutdown(channel, RS_ENOMEM);
        return;
    }
    memcpy(m->message_data.buffer, chunk->data, chunk->len); /* capacity >= RS_MAX_FRAGMENT_SIZE */
    m->message_data.len = chunk->len;
    m->on_completion = chunk_written;
    m->user_data = chunk;
    if (rs_channel_slot_send_message(cat.slot, m, RS_CHANNEL_DIR_WRITE) != RS_OK) {
        rs_channel_release_message_to_pool(channel, m);
        chunk_release(chunk);
        rs_channel_shutdown(channel, RS_ESHUTDOWN);
    }
}

static void close_task(rs_channel_task_t *task, void *arg, rs_task_status_t status) {
    (void)task, (void)arg;
    if (status == RS_TASK_STATUS_RUN) {
        rs_channel_shutdown(rs_channel_slot_get_channel(cat.slot), RS_OK); /* flushes, then close_notify */
    }
}

/* On the loop, after every chunk read before it: end of stdin. */
static void eof_task(rs_channel_task_t *task, void *arg, rs_task_status_t status) {
    rs_channel_t *channel;
    (void)task, (void)arg;
    if (status != RS_TASK_STATUS_RUN || cat.close_after_eof_s < 0) {
        return;
    }
    channel = rs_channel_slot_get_channel(cat.slot);
    if (cat.close_after_eof_s == 0) {
        rs_channel_shutdown(channel, RS_OK);
        return;
    }
    rs_channel_task_init(&cat.close_task, close_task, NULL, "rscat_close");
    rs_channel_schedule_task_future(channel,
                                    &cat.close_task,
                                    rs_event_loop_now_ns(rs_channel_get_loop(channel)) +
                                        (uint64_t)cat.close_after_eof_s * RS_NS_PER_SEC);
}

/* Schedule a task on the connection unless it is closing; under the lock, so
 * on_shutdown (which sets closing before the channel goes) cannot race it. */
static bool schedule_on_connection(rs_channel_task_t *task) {
    bool ok;
    rs_mutex_lock(&cat.lock);
    ok = !cat.closing && rs_channel_schedule_task_now(cat.channel, task) == RS_OK;
    rs_mutex_unlock(&cat.lock);
    return ok;
}

static void stdin_thread(void *user_data) {
    (void)user_data;
    for (;;) {
        rscat_chunk_t *chunk = NULL;
        ssize_t n;
        int i;
        rs_mutex_lock(&cat.lock);
        while (!cat.closing && !chunk) {
            for (i = 0; i < RSCAT_CHUNKS && !chunk; ++i) {
                if (!cat.chunks[i].busy) {
                    chunk = &cat.chunks[i];
                }
            }
            if (!chunk) {
                rs_condvar_wait(&cat.cond, &cat.lock);
            }
        }
        if (cat.closing) {
            rs_mutex_unlock(&cat.lock);
            return;
        }
        chunk->busy = true;
        rs_mutex_unlock(&cat.lock);

        do {
            /* Wait for stdin or for the wake-up pipe (the connection is over:
             * return, to be joined, rather than block in read). */
            struct pollfd pfd[2];
            pfd[0].fd = STDIN_FILENO;
            pfd[0].events = POLLIN;
            pfd[0].revents = 0;
            pfd[1].fd = wake_pipe[0];
            pfd[1].events = POLLIN;
            pfd[1].revents = 0;
            if (poll(pfd, 2, -1) < 0 && errno != EINTR) {
                n = -1;
                break;
            }
            if (pfd[1].revents) {
                chunk_release(chunk);
                return;
            }
            if (!pfd[0].revents) {
                n = -1;
                errno = EINTR;
                continue;
            }
            n = read(STDIN_FILENO, chunk->data, sizeof(chunk->data));
        } while (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK));
        if (n <= 0) {
            chunk_release(chunk);
            if (n < 0) {
                fprintf(stderr, "rscat: reading stdin: %s\n", strerror(errno));
                rs_mutex_lock(&cat.lock);
                cat.local_io_error = 1;
                if (!cat.closing) {
                    rs_channel_shutdown(cat.channel, RS_EIO);
                }
                rs_mutex_unlock(&cat.lock);
                return;
            }
            rs_channel_task_init(&cat.eof_task, eof_task, NULL, "rscat_eof");
            (void)schedule_on_connection(&cat.eof_task);
            return;
        }
        chunk->len = (size_t)n;
        rs_channel_task_init(&chunk->task, chunk_send_task, chunk, "rscat_stdin");
        if (!schedule_on_connection(&chunk->task)) {
            chunk_release(chunk);
            return;
        }
    }
}

/* -------------------------------------------------------- set-up, shutdown */

static void print_tls_info(rs_channel_t *channel) {
    rs_tls_info_t info;
    rs_channel_handler_t *tls = rs_tls_channel_get_handler(channel);
    if (!tls || rs_tls_handler_get_info(tls, &info) != RS_OK) {
        return;
    }
    fprintf(stderr, "rscat: TLS %u.%u, cipher %s, ALPN %s, session %s\n", (unsigned)(info.version >> 8) - 2,
            (unsigned)(info.version & 0xff) - 1, info.cipher_suite_name, info.alpn ? info.alpn : "(none)",
            info.resumed ? "resumed" : "new");
    if (cat.listen) {
        fprintf(stderr, "rscat: client asked for server name %s; client certificate %s\n",
                info.server_name ? info.server_name : "(none)", info.peer_verified ? "verified" : "none");
    } else {
        fprintf(stderr, "rscat: server certificate %s%s%s\n",
                info.peer_verified ? "verified for " : "NOT verified (--insecure)",
                info.peer_verified ? (info.server_name ? info.server_name : "?") : "", "");
    }
}

/* The connection is ready (after the handshake, with TLS). Loop thread. */
static void connection_ready(rs_channel_t *channel) {
    rs_mutex_lock(&cat.lock);
    cat.channel = channel;
    rs_condvar_broadcast(&cat.cond);
    rs_mutex_unlock(&cat.lock);
    if (cat.verbose) {
        fprintf(stderr, "rscat: connected\n");
        if (cat.tls) {
            print_tls_info(channel);
        }
    }
}

static void connection_closed(int error) {
    int code = exit_code_for(error, true);
    bool local;
    rs_mutex_lock(&cat.lock);
    cat.closing = true; /* the channel goes after this returns */
    local = cat.local_io_error != 0;
    rs_mutex_unlock(&cat.lock);
    if (local) {
        code = RSCAT_EXIT_LOCAL_IO;
    } else if (code != RSCAT_EXIT_OK) {
        fprintf(stderr, "rscat: connection lost: %s (%s)\n", rs_strerror(error), rs_err_name(error));
    } else if (cat.verbose) {
        fprintf(stderr, "rscat: connection closed (%s)\n", rs_err_name(error));
    }
    finish(code);
}

static void client_on_setup(rs_client_bootstrap_t *b, rs_channel_t *channel, int error, void *user_data) {
    (void)b, (void)user_data;
    if (error) {
        fprintf(stderr, "rscat: connecting to %s port %u: %s (%s)\n", cat.host, (unsigned)cat.port,
                rs_strerror(error), rs_err_name(error));
        finish(exit_code_for(error, false));
        return;
    }
    connection_ready(channel);
}

static void client_on_shutdown(rs_client_bootstrap_t *b, rs_channel_t *channel, int error, void *user_data) {
    (void)b, (void)channel, (void)user_data;
    connection_closed(error);
}

static void server_on_setup(rs_server_listener_t *l, rs_channel_t *channel, int error, void *user_data) {
    bool ours;
    (void)l, (void)user_data;
    if (error) {
        if (error != RS_EBUSY) {
            fprintf(stderr, "rscat: incoming connection failed: %s (%s)\n", rs_strerror(error), rs_err_name(error));
        }
        rs_mutex_lock(&cat.lock);
        ours = !cat.have_connection; /* not a second connection refused while we serve one */
        rs_mutex_unlock(&cat.lock);
        if (ours) {
            finish(exit_code_for(error, false)); /* the handshake of our connection failed */
        }
        return;
    }
    connection_ready(channel);
}

static void server_on_shutdown(rs_server_listener_t *l, rs_channel_t *channel, int error, void *user_data) {
    (void)l, (void)channel, (void)user_data;
    connection_closed(error);
}

static void server_on_destroyed(rs_server_listener_t *l, void *user_data) {
    (void)l, (void)user_data;
    rs_mutex_lock(&cat.lock);
    cat.listener_destroyed = true;
    rs_condvar_broadcast(&cat.cond);
    rs_mutex_unlock(&cat.lock);
}

/* --------------------------------------------------------------- options */

static int usage_error(const char *what, const char *arg) {
    fprintf(stderr, "rscat: %s%s%s\n%s", what, arg ? ": " : "", arg ? arg : "", usage_text);
    return RSCAT_EXIT_USAGE;
}

static bool parse_uint(const char *text, unsigned long max, unsigned long *out) {
    char *end = NULL;
    unsigned long v;
    if (!text || !*text || *text == '-') {
        return false;
    }
    errno = 0;
    v = strtoul(text, &end, 10);
    if (errno || *end || v > max) {
        return false;
    }
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv) {
    const char *positional[2];
    int npos = 0;
    int i;
    unsigned long v;
    cat.close_after_eof_s = -1;
    cat.timeout_ms = 10000;
    for (i = 1; i < argc; ++i) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
#define RSCAT_NEED_ARG()                                                                            \
    do {                                                                                            \
        if (!next) {                                                                                \
            return usage_error("missing value for", a);                                             \
        }                                                                                           \
        ++i;                                                                                        \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            exit(RSCAT_EXIT_OK);
        } else if (!strcmp(a, "-l")) {
            cat.listen = true;
        } else if (!strcmp(a, "-v")) {
            cat.verbose++;
        } else if (!strcmp(a, "-vv")) {
            cat.verbose += 2;
        } else if (!strcmp(a, "--tls")) {
            cat.tls = true;
        } else if (!strcmp(a, "--insecure")) {
            cat.tls = cat.insecure = true;
        } else if (!strcmp(a, "--cafile")) {
            RSCAT_NEED_ARG();
            cat.tls = true, cat.cafile = next;
        } else if (!strcmp(a, "--cert")) {
            RSCAT_NEED_ARG();
            cat.tls = true, cat.cert = next;
        } else if (!strcmp(a, "--key")) {
            RSCAT_NEED_ARG();
            cat.tls = true, cat.key = next;
        } else if (!strcmp(a, "--servername")) {
            RSCAT_NEED_ARG();
            cat.tls = true, cat.servername = next;
        } else if (!strcmp(a, "--alpn")) {
            char *p;
            RSCAT_NEED_ARG();
            if (strlen(next) >= sizeof(cat.alpn)) {
                return usage_error("ALPN list too long", next);
            }
            strcpy(cat.alpn, next);
            for (p = cat.alpn; *p; ++p) {
                if (*p == ',') {
                    *p = ';'; /* reseau separates with ';' */
                }
            }
            cat.tls = true;
        } else if (!strcmp(a, "-q")) {
            RSCAT_NEED_ARG();
            if (!parse_uint(next, 86400, &v)) {
                return usage_error("-q wants seconds", next);
            }
            cat.close_after_eof_s = (int)v;
        } else if (!strcmp(a, "-w")) {
            RSCAT_NEED_ARG();
            if (!parse_uint(next, 86400, &v) || v == 0) {
                return usage_error("-w wants seconds (at least 1)", next);
            }
            cat.timeout_ms = (uint32_t)v * 1000u;
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("unknown option", a);
        } else if (npos < 2) {
            positional[npos++] = a;
        } else {
            return usage_error("too many arguments", a);
        }
#undef RSCAT_NEED_ARG
    }
    if (npos == 0 || (!cat.listen && npos != 2)) {
        return usage_error(cat.listen ? "missing PORT" : "want HOST and PORT", NULL);
    }
    cat.host = npos == 2 ? positional[0] : NULL;
    cat.port_text = positional[npos - 1];
    if (!parse_uint(cat.port_text, 65535, &v) || (v == 0 && !cat.listen)) {
        return usage_error("bad port", cat.port_text);
    }
    cat.port = (uint32_t)v;
    if (cat.listen && cat.tls && (!cat.cert || !cat.key)) {
        return usage_error("listening with TLS needs --cert and --key", NULL);
    }
    if (!!cat.cert != !!cat.key) {
        return usage_error("--cert and --key go together", NULL);
    }
    return RSCAT_EXIT_OK;
}

static rs_tls_ctx_t *make_tls_ctx(int *exit_code) {
    rs_tls_ctx_options_t o;
    rs_tls_ctx_t *ctx;
    int err = RS_OK;
    memset(&o, 0, sizeof(o));
    o.is_server = cat.listen;
    o.ca_file = cat.cafile;
    o.insecure_skip_verify = cat.insecure || (cat.listen && !cat.cafile);
    if (cat.listen && cat.cafile) {
        o.client_auth = RS_TLS_CLIENT_AUTH_OPTIONAL; /* a CA given to a server verifies clients */
    }
    o.cert_file = cat.cert;
    o.key_file = cat.key;
    o.alpn_list = cat.alpn[0] ? cat.alpn : NULL;
    o.negotiation_timeout_ms = cat.timeout_ms;
    ctx = rs_tls_ctx_new(&o, &err);
    if (!ctx) {
        fprintf(stderr, "rscat: TLS set-up: %s (%s)\n", rs_strerror(err), rs_err_name(err));
        *exit_code = err == RS_ENOMEM ? RSCAT_EXIT_INTERNAL : err == RS_EINVAL ? RSCAT_EXIT_USAGE
                                                                                : RSCAT_EXIT_TLS_CONFIG;
    }
    return ctx;
}

static rs_socket_domain_t domain_of(const char *host) {
    uint8_t a6[16];
    uint32_t scope = 0;
    return host && rs_ipv6_parse(host, a6, &scope) == RS_OK ? RS_SOCKET_DOMAIN_IPV6 : RS_SOCKET_DOMAIN_IPV4;
}

/* ------------------------------------------------------------------ main */

static int run(rs_event_loop_group_t *group, rs_tls_ctx_t *ctx) {
    rs_channel_installer_t *installers[2];
    rs_channel_installer_t *tls_installer = NULL;
    rs_socket_options_t so;
    rs_tls_connection_options_t co;
    rs_client_bootstrap_t *client = NULL;
    rs_server_bootstrap_t *server = NULL;
    rs_server_listener_t *listener = NULL;
    rs_thread_t reader;
    bool reader_started = false;
    size_t n = 0;
    int err = RS_OK;
    int code;

    memset(&co, 0, sizeof(co));
    if (ctx) {
        co.ctx = ctx;
        co.server_name = cat.servername ? cat.servername : cat.host;
        tls_installer = rs_tls_installer_new(&co, &err);
        if (!tls_installer) {
            fprintf(stderr, "rscat: TLS installer: %s\n", rs_strerror(err));
            return RSCAT_EXIT_INTERNAL;
        }
        installers[n++] = tls_installer;
    }
    installers[n++] = &app_installer;
    memset(&so, 0, sizeof(so));
    so.type = RS_SOCKET_STREAM;
    so.domain = domain_of(cat.host);
    so.connect_timeout_ms = cat.timeout_ms;

    if (cat.listen) {
        rs_server_bootstrap_options_t bo;
        rs_server_listener_options_t lo;
        memset(&bo, 0, sizeof(bo));
        bo.group = group;
        server = rs_server_bootstrap_new(&bo, &err);
        if (server) {
            memset(&lo, 0, sizeof(lo));
            lo.host = cat.host;
            lo.port = cat.port;
            lo.socket_options = &so;
            lo.installers = installers;
            lo.installer_count = n;
            lo.enable_read_back_pressure = true;
            lo.on_incoming_setup = server_on_setup;
            lo.on_incoming_shutdown = server_on_shutdown;
            lo.on_listener_destroyed = server_on_destroyed;
            listener = rs_server_bootstrap_new_listener(server, &lo, &err);
        }
        if (!listener) {
            fprintf(stderr, "rscat: listening on %s port %s: %s (%s)\n", cat.host ? cat.host : "*", cat.port_text,
                    rs_strerror(err), rs_err_name(err));
            rs_tls_installer_destroy(tls_installer);
            rs_server_bootstrap_destroy(server);
            return err == RS_ENOMEM ? RSCAT_EXIT_INTERNAL : RSCAT_EXIT_CONNECT;
        }
        if (cat.verbose) {
            rs_endpoint_t ep;
            char text[128];
            if (rs_server_listener_get_address(listener, &ep) == RS_OK &&
                rs_endpoint_format(&ep, text, sizeof(text)) == RS_OK) {
                fprintf(stderr, "rscat: listening on %s\n", text);
            }
        }
    } else {
        rs_client_bootstrap_options_t bo;
        rs_client_connect_options_t cc;
        memset(&bo, 0, sizeof(bo));
        bo.group = group;
        client = rs_client_bootstrap_new(&bo, &err);
        if (client) {
            memset(&cc, 0, sizeof(cc));
            cc.host = cat.host;
            cc.port = cat.port;
            cc.socket_options = &so;
            cc.installers = installers;
            cc.installer_count = n;
            cc.enable_read_back_pressure = true;
            cc.on_setup = client_on_setup;
            cc.on_shutdown = client_on_shutdown;
            err = rs_client_bootstrap_connect(client, &cc);
        }
        if (err) {
            fprintf(stderr, "rscat: connect: %s (%s)\n", rs_strerror(err), rs_err_name(err));
            rs_tls_installer_destroy(tls_installer);
            rs_client_bootstrap_destroy(client);
            return err == RS_ENOMEM ? RSCAT_EXIT_INTERNAL : RSCAT_EXIT_USAGE;
        }
    }

    /* Wait for the connection, then feed it stdin until it is over. */
    rs_mutex_lock(&cat.lock);
    while (!cat.done && !cat.channel) {
        rs_condvar_wait(&cat.cond, &cat.lock);
    }
    rs_mutex_unlock(&cat.lock);
    if (cat.channel) {
        if (rs_thread_launch(&reader, stdin_thread, NULL, NULL) == RS_OK) {
            reader_started = true;
        } else {
            fprintf(stderr, "rscat: cannot start the stdin thread\n");
            rs_mutex_lock(&cat.lock);
            cat.exit_code = RSCAT_EXIT_INTERNAL;
            cat.done = true;
            if (!cat.closing) {
                rs_channel_shutdown(cat.channel, RS_ETHREAD);
            }
            rs_mutex_unlock(&cat.lock);
        }
    }
    rs_mutex_lock(&cat.lock);
    while (!cat.done) {
        rs_condvar_wait(&cat.cond, &cat.lock);
    }
    code = cat.exit_code;
    rs_mutex_unlock(&cat.lock);

    if (listener) {
        rs_server_bootstrap_destroy_listener(listener, true);
        rs_mutex_lock(&cat.lock);
        while (!cat.listener_destroyed) {
            rs_condvar_wait(&cat.cond, &cat.lock);
        }
        rs_mutex_unlock(&cat.lock);
        rs_server_bootstrap_destroy(server);
    }
    rs_client_bootstrap_destroy(client);
    rs_tls_installer_destroy(tls_installer); /* the bootstraps are done with it (on_setup or the listener's end) */
    if (reader_started) {
        ssize_t w;
        do {
            w = write(wake_pipe[1], "x", 1); /* closing is set: the stdin thread returns */
        } while (w < 0 && errno == EINTR);
        rs_mutex_lock(&cat.lock);
        rs_condvar_broadcast(&cat.cond);
        rs_mutex_unlock(&cat.lock);
        rs_thread_join(&reader);
    }
    return code;
}

int main(int argc, char **argv) {
    rs_event_loop_group_options_t go;
    rs_event_loop_group_t *group;
    rs_tls_ctx_t *ctx = NULL;
    rs_logger_t logger;
    int err = RS_OK;
    int code = parse_args(argc, argv);
    if (code != RSCAT_EXIT_OK) {
        return code;
    }
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is an EPIPE, class 9 */
    if (cat.verbose > 1) {
        memset(&logger, 0, sizeof(logger));
        logger.level = RS_LOG_LEVEL_DEBUG;
        logger.log_fn = rs_log_stderr;
        rs_log_set(&logger);
    }
    if (rs_mutex_init(&cat.lock) != RS_OK || rs_condvar_init(&cat.cond) != RS_OK || pipe(wake_pipe) != 0) {
        return RSCAT_EXIT_INTERNAL;
    }
    if (cat.tls) {
        ctx = make_tls_ctx(&code);
        if (!ctx) {
            return code;
        }
    }
    memset(&go, 0, sizeof(go));
    go.loop_count = 1; /* one connection */
    go.thread_name_prefix = "rscat";
    group = rs_event_loop_group_new(&go, &err);
    if (!group) {
        fprintf(stderr, "rscat: event loop: %s\n", rs_strerror(err));
        rs_tls_ctx_release(ctx);
        return RSCAT_EXIT_INTERNAL;
    }
    code = run(group, ctx);
    rs_event_loop_group_destroy(group);
    rs_tls_ctx_release(ctx);
    fflush(stdout);
    rs_condvar_cleanup(&cat.cond);
    rs_mutex_cleanup(&cat.lock);
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    return code;
}
