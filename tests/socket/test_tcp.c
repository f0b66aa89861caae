/*
 * Stream sockets over TCP (IPv4, IPv6) and Unix-domain (path, abstract name):
 * connect/accept/echo, addresses, bind errors, refused connects, thread rules,
 * destroy from inside callbacks, write completion ordering, large transfers
 * with checksums, EOF and half-close, read back-pressure, argument errors,
 * socket options, cross-thread listener close and many connections at once.
 *
 * Every behaviour runs on every loop backend; names end in _epoll/_poll/_kqueue
 * (Windows: _iocp, where what needs Unix-domain sockets, fork, fcntl or
 * Linux-only options skips, saying so; the Windows specifics are in
 * test_windows_socket.c).
 * Most tests drive the loop on the test thread with rs_event_loop_run_once,
 * so callbacks run here and record what they see; the assertions come after.
 * Tests that need a loop thread of its own use rs_event_loop_start and
 * bounded condvar waits. Every wait is bounded; only loopback is used.
 */
#include "test_util.h"

#include <errno.h>
#include <unistd.h> /* getpid, unlink: mingw-w64 has them too */
#if !defined(_WIN32)
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#endif

#define WAIT_NS (10 * RS_NS_PER_SEC)
#define BIG_WAIT_NS (90 * RS_NS_PER_SEC)

/* This file waits 10 s, not RS_TEST_RUN_UNTIL's 20 s. */
#define RUN_UNTIL(loop, cond) RS_TEST_RUN_UNTIL_NS(loop, cond, WAIT_NS)

/* ---------------------------------------------------------------- helpers */

static int g_name_seq;

static void run_ticks(rs_event_loop_t *loop, int n) {
    int i;
    for (i = 0; i < n; ++i) {
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
    }
}

typedef enum ep_kind {
    EP_IPV4,
    EP_IPV6,
    EP_UNIX_PATH,
    EP_UNIX_ABSTRACT
} ep_kind_t;

static rs_socket_domain_t kind_domain(ep_kind_t kind) {
    switch (kind) {
    case EP_IPV4:
        return RS_SOCKET_DOMAIN_IPV4;
    case EP_IPV6:
        return RS_SOCKET_DOMAIN_IPV6;
    default:
        return RS_SOCKET_DOMAIN_LOCAL;
    }
}

/* A fresh endpoint to bind: loopback with port 0, or a unique Unix name. */
static void make_endpoint(ep_kind_t kind, rs_endpoint_t *ep) {
    char name[RS_LOCAL_PATH_MAX + 1];
    switch (kind) {
    case EP_IPV4:
        assert_int_equal(rs_endpoint_from_ip(ep, "127.0.0.1", 0), RS_OK);
        break;
    case EP_IPV6:
        assert_int_equal(rs_endpoint_from_ip(ep, "::1", 0), RS_OK);
        break;
    case EP_UNIX_PATH:
        snprintf(name, sizeof(name), "/tmp/reseau-tcp-%d-%d.sock", (int)getpid(), ++g_name_seq);
        unlink(name);
        assert_int_equal(rs_endpoint_from_local(ep, name), RS_OK);
        break;
    case EP_UNIX_ABSTRACT:
        snprintf(name, sizeof(name), "@reseau-test-%d-%d", (int)getpid(), ++g_name_seq);
        assert_int_equal(rs_endpoint_from_local(ep, name), RS_OK);
        break;
    }
}

static void cleanup_endpoint(const rs_endpoint_t *ep) {
    if (ep->domain == RS_SOCKET_DOMAIN_LOCAL && ep->path[0] == '/') {
        unlink(ep->path);
    }
}

static rs_socket_options_t sock_opts(rs_socket_domain_t domain) {
    rs_socket_options_t o;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.domain = domain;
    return o;
}

static rs_socket_t *sock_new(const rs_socket_options_t *o) {
    int err = 12345;
    rs_socket_t *s = rs_socket_new(o, &err);
    assert_non_null(s);
    assert_int_equal(err, RS_OK);
    return s;
}

static int sockopt_int(int fd, int level, int name) {
#if defined(_WIN32)
    int v = 0; /* Winsock may write fewer bytes (a BOOL option in one byte, under Wine) */
    int len = (int)sizeof(v);
    assert_int_equal(getsockopt((SOCKET)fd, level, name, (char *)&v, &len), 0);
#else
    int v = -1;
    socklen_t len = (socklen_t)sizeof(v);
    assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
#endif
    return v;
}

/* Skips the calling test on Windows, saying why; call it first, before
 * anything is allocated. */
static void posix_only_or_skip(const char *why) {
#if defined(_WIN32)
    print_message("skipped on Windows: %s\n", why);
    skip();
#else
    (void)why;
#endif
}

static void unix_or_skip(void) {
    posix_only_or_skip("no Unix-domain sockets yet (RS_ENOTSUP)");
}

/* Pseudo-random bytes, reproducible from the seed. */
static void fill_pattern(uint8_t *buf, size_t n, uint64_t seed) {
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
    size_t i = 0;
    while (i < n) {
        uint64_t w;
        size_t take;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w = x * 0x2545f4914f6cdd1dULL;
        take = n - i < 8 ? n - i : 8;
        memcpy(buf + i, &w, take);
        i += take;
    }
}

/* A streaming 64-bit hash over 8-byte words: the result does not depend on
 * how the stream is cut into pieces. */
typedef struct hash64 {
    uint64_t h;
    uint64_t len;
    uint8_t carry[8];
    size_t carry_len;
} hash64_t;

static void hash_init(hash64_t *x) {
    memset(x, 0, sizeof(*x));
    x->h = 0xcbf29ce484222325ULL;
}

static void hash_word(hash64_t *x, uint64_t w) {
    x->h ^= w;
    x->h *= 0x100000001b3ULL;
    x->h ^= x->h >> 29;
}

static void hash_update(hash64_t *x, const uint8_t *p, size_t n) {
    uint64_t w;
    x->len += n;
    while (n > 0) {
        if (x->carry_len == 0 && n >= 8) {
            memcpy(&w, p, 8); /* whole words straight from the input */
            hash_word(x, w);
            p += 8;
            n -= 8;
            continue;
        }
        /* Written so -O3 can see the carry index stays below 8. */
        x->carry[x->carry_len % 8] = *p++;
        --n;
        if (++x->carry_len == 8) {
            memcpy(&w, x->carry, 8);
            hash_word(x, w);
            x->carry_len = 0;
        }
    }
}

static uint64_t hash_final(const hash64_t *in) {
    hash64_t x = *in;
    uint64_t w = 0;
    if (x.carry_len) {
        memcpy(&w, x.carry, x.carry_len);
        hash_word(&x, w);
    }
    hash_word(&x, x.len);
    return x.h;
}

static uint64_t hash_buffer(const uint8_t *p, size_t n) {
    hash64_t x;
    hash_init(&x);
    hash_update(&x, p, n);
    return hash_final(&x);
}

/* ---------------------------------------------------------------- sink: a reader */

typedef struct sink {
    uint8_t chunk[65536];
    size_t chunk_limit; /* most bytes per read (0: the whole chunk) */
    int max_reads;      /* reads per callback (0: until RS_EAGAIN) */
    uint8_t *store;     /* optional copy of everything received */
    size_t store_cap;
    bool store_overflow;
    size_t total;
    hash64_t hash;
    int calls;
    int calls_after_end;
    bool eof;
    int error;    /* first read error other than RS_EAGAIN / RS_EEOF */
    int cb_error; /* first non-zero error argument */
    bool bad_amount;
} sink_t;

static sink_t *sink_new(size_t store_cap) {
    sink_t *k = (sink_t *)calloc(1, sizeof(sink_t));
    assert_non_null(k);
    hash_init(&k->hash);
    if (store_cap) {
        k->store = (uint8_t *)malloc(store_cap);
        assert_non_null(k->store);
        k->store_cap = store_cap;
    }
    return k;
}

static void sink_free(sink_t *k) {
    if (k) {
        free(k->store);
        free(k);
    }
}

static void sink_on_readable(rs_socket_t *s, int error, void *user_data) {
    sink_t *k = (sink_t *)user_data;
    int reads = 0;
    k->calls++;
    if (k->eof || k->error) {
        k->calls_after_end++;
    }
    if (error && !k->cb_error) {
        k->cb_error = error;
    }
    for (;;) {
        size_t cap = k->chunk_limit ? k->chunk_limit : sizeof(k->chunk);
        rs_byte_buf_t buf = rs_byte_buf_from_array(k->chunk, 0, cap);
        size_t n = 12345;
        int err = rs_socket_read(s, &buf, &n);
        if (err == RS_OK) {
            if (n == 0 || n != buf.len) {
                k->bad_amount = true;
            }
            hash_update(&k->hash, k->chunk, n);
            if (k->store) {
                if (k->total + n <= k->store_cap) {
                    memcpy(k->store + k->total, k->chunk, n);
                } else {
                    k->store_overflow = true;
                }
            }
            k->total += n;
            if (k->max_reads && ++reads >= k->max_reads) {
                return;
            }
            continue;
        }
        if (n != 0) {
            k->bad_amount = true;
        }
        if (err == RS_EAGAIN) {
            return;
        }
        if (err == RS_EEOF) {
            k->eof = true;
            return;
        }
        if (!k->error) {
            k->error = err;
        }
        return;
    }
}

/* ---------------------------------------------------------------- echo: a server connection */

typedef struct echo_conn {
    rs_socket_t *sock;
    uint8_t buf[65536];
    bool writing;
    bool eof;
    size_t echoed;
    int error;
} echo_conn_t;

static void echo_on_written(rs_socket_t *s, int error, size_t n, void *user_data) {
    echo_conn_t *c = (echo_conn_t *)user_data;
    c->writing = false;
    if (error) {
        if (!c->error) {
            c->error = error;
        }
        return;
    }
    c->echoed += n;
    if (!c->eof) {
        int err = rs_socket_resume_reading(s);
        if (err && !c->error) {
            c->error = err;
        }
    }
}

/* Read one buffer, echo it, and pause reading until the echo is written. */
static void echo_on_readable(rs_socket_t *s, int error, void *user_data) {
    echo_conn_t *c = (echo_conn_t *)user_data;
    rs_byte_buf_t buf = rs_byte_buf_from_array(c->buf, 0, sizeof(c->buf));
    size_t n = 0;
    int err;
    (void)error;
    if (c->writing) {
        if (!c->error) {
            c->error = RS_ESTATE; /* readable while paused */
        }
        return;
    }
    err = rs_socket_read(s, &buf, &n);
    if (err == RS_OK) {
        c->writing = true;
        err = rs_socket_write(s, rs_byte_cursor_from_array(c->buf, buf.len), echo_on_written, c);
        if (err) {
            c->writing = false;
            if (!c->error) {
                c->error = err;
            }
            return;
        }
        err = rs_socket_pause_reading(s);
        if (err && !c->error) {
            c->error = err;
        }
    } else if (err == RS_EEOF) {
        c->eof = true;
    } else if (err != RS_EAGAIN && !c->error) {
        c->error = err;
    }
}

static echo_conn_t *echo_start(rs_socket_t *s) {
    echo_conn_t *c = (echo_conn_t *)calloc(1, sizeof(echo_conn_t));
    assert_non_null(c);
    c->sock = s;
    assert_int_equal(rs_socket_subscribe_to_readable_events(s, echo_on_readable, c), RS_OK);
    return c;
}

/* ---------------------------------------------------------------- wlog: a writer */

#define MAXW 1024

typedef struct wlog wlog_t;
typedef struct wreq {
    wlog_t *log;
    int index;
} wreq_t;

struct wlog {
    wreq_t reqs[MAXW];
    int submitted;
    int count; /* completions so far */
    int order[MAXW];
    int error[MAXW];
    size_t bytes[MAXW];
    int calls[MAXW];
    bool in_call; /* set around rs_socket_write */
    int inline_calls;
    int destroy_after_index; /* destroy *destroy_slot from this completion (-1: never) */
    rs_socket_t **destroy_slot;
    bool destroyed_in_callback;
};

static wlog_t *wlog_new(void) {
    wlog_t *l = (wlog_t *)calloc(1, sizeof(wlog_t));
    assert_non_null(l);
    l->destroy_after_index = -1;
    return l;
}

static void wlog_on_written(rs_socket_t *s, int error, size_t n, void *user_data) {
    wreq_t *r = (wreq_t *)user_data;
    wlog_t *l = r->log;
    (void)s;
    if (l->in_call) {
        l->inline_calls++;
    }
    if (l->count < MAXW) {
        l->order[l->count] = r->index;
    }
    l->count++;
    l->calls[r->index]++;
    l->error[r->index] = error;
    l->bytes[r->index] = n;
    if (l->destroy_after_index == r->index && l->destroy_slot && *l->destroy_slot) {
        rs_socket_destroy(*l->destroy_slot);
        *l->destroy_slot = NULL;
        l->destroyed_in_callback = true;
    }
}

static int wlog_write(wlog_t *l, rs_socket_t *s, const void *data, size_t len) {
    int idx = l->submitted;
    int err;
    assert_true(idx < MAXW);
    l->reqs[idx].log = l;
    l->reqs[idx].index = idx;
    l->in_call = true;
    err = rs_socket_write(s, rs_byte_cursor_from_array(data, len), wlog_on_written, &l->reqs[idx]);
    l->in_call = false;
    if (err == RS_OK) {
        l->submitted++;
    }
    return err;
}

/* ---------------------------------------------------------------- a connected pair */

typedef struct conn_pair {
    rs_event_loop_t *loop;
    rs_endpoint_t bind_ep;   /* as requested */
    rs_endpoint_t listen_ep; /* as bound */
    rs_socket_t *listener;
    rs_socket_t *client;
    rs_socket_t *server;
    int connect_calls;
    int connect_error;
    int accept_calls;
    int accept_error;
    int extra_accepts;
} conn_pair_t;

static void pair_on_connect(rs_socket_t *s, int error, void *user_data) {
    conn_pair_t *p = (conn_pair_t *)user_data;
    (void)s;
    p->connect_calls++;
    p->connect_error = error;
}

static void pair_on_accept(rs_socket_t *listener, int error, rs_socket_t *new_socket, void *user_data) {
    conn_pair_t *p = (conn_pair_t *)user_data;
    (void)listener;
    p->accept_calls++;
    if (error) {
        p->accept_error = error;
        return;
    }
    if (p->server) {
        p->extra_accepts++;
        rs_socket_destroy(new_socket);
        return;
    }
    p->server = new_socket;
}

static void listener_open(conn_pair_t *p, const rs_socket_options_t *opts, rs_socket_on_accept_fn *on_accept,
                          void *user_data) {
    p->listener = sock_new(opts);
    assert_int_equal(rs_socket_bind(p->listener, &p->bind_ep), RS_OK);
    assert_int_equal(rs_socket_listen(p->listener, 0), RS_OK);
    assert_int_equal(rs_socket_start_accept(p->listener, p->loop, on_accept, user_data), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(p->listener, &p->listen_ep), RS_OK);
}

/* Loop, listener, connected client and accepted server (assigned to the
 * loop). `opts` (may be NULL) applies to the listener and the client; the
 * domain follows `kind`. */
static void pair_connect(conn_pair_t *p, rs_event_loop_backend_t b, ep_kind_t kind, const rs_socket_options_t *opts) {
    rs_socket_options_t o = opts ? *opts : sock_opts(kind_domain(kind));
    memset(p, 0, sizeof(*p));
    o.allocator = &rs_test_allocator;
    o.domain = kind_domain(kind);
    p->loop = rs_test_loop_new(b);
    make_endpoint(kind, &p->bind_ep);
    listener_open(p, &o, pair_on_accept, p);
    p->client = sock_new(&o);
    assert_int_equal(rs_socket_connect(p->client, &p->listen_ep, p->loop, pair_on_connect, p), RS_OK);
    RUN_UNTIL(p->loop, p->connect_calls > 0 && p->server != NULL);
    assert_int_equal(p->connect_calls, 1);
    assert_int_equal(p->connect_error, RS_OK);
    assert_int_equal(p->accept_error, RS_OK);
    assert_null(rs_socket_get_loop(p->server));
    assert_int_equal(rs_socket_assign_to_loop(p->server, p->loop), RS_OK);
    assert_ptr_equal(rs_socket_get_loop(p->server), p->loop);
    assert_ptr_equal(rs_socket_get_loop(p->client), p->loop);
}

/* Destroy the sockets, then the loop (which delivers what is still pending). */
static void pair_close(conn_pair_t *p) {
    if (p->client) {
        rs_socket_destroy(p->client);
        p->client = NULL;
    }
    if (p->server) {
        rs_socket_destroy(p->server);
        p->server = NULL;
    }
    if (p->listener) {
        rs_socket_destroy(p->listener);
        p->listener = NULL;
    }
    cleanup_endpoint(&p->bind_ep);
    rs_event_loop_destroy(p->loop);
    p->loop = NULL;
}

/* ================================================================ 1. echo */

static void echo_over(rs_event_loop_backend_t b, ep_kind_t kind) {
    conn_pair_t p;
    rs_endpoint_t client_remote, client_bound, server_remote, server_bound;
    char msg[128];
    size_t len;
    sink_t *sink = sink_new(4096);
    wlog_t *log = wlog_new();
    echo_conn_t *echo;

    pair_connect(&p, b, kind, NULL);

    /* Addresses. */
    assert_int_equal(p.listen_ep.domain, kind_domain(kind));
    assert_int_equal(rs_socket_get_remote_address(p.client, &client_remote), RS_OK);
    assert_true(rs_endpoint_equal(&client_remote, &p.listen_ep));
    assert_int_equal(rs_socket_get_bound_address(p.client, &client_bound), RS_OK);
    assert_int_equal(rs_socket_get_remote_address(p.server, &server_remote), RS_OK);
    assert_true(rs_endpoint_equal(&server_remote, &client_bound));
    assert_int_equal(rs_socket_get_bound_address(p.server, &server_bound), RS_OK);
    assert_true(rs_endpoint_equal(&server_bound, &p.listen_ep));
    if (kind == EP_IPV4 || kind == EP_IPV6) {
        size_t alen = kind == EP_IPV4 ? 4 : 16;
        assert_int_not_equal(p.listen_ep.port, 0);
        assert_int_not_equal(client_bound.port, 0);
        assert_int_not_equal(client_bound.port, p.listen_ep.port);
        assert_memory_equal(p.listen_ep.addr, p.bind_ep.addr, alen);
        assert_memory_equal(client_bound.addr, p.bind_ep.addr, alen);
    } else {
        assert_string_equal(p.listen_ep.path, p.bind_ep.path);
        assert_string_equal(client_bound.path, ""); /* the client is unnamed */
    }

    /* Echo. */
    echo = echo_start(p.server);
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.client, sink_on_readable, sink), RS_OK);
    snprintf(msg, sizeof(msg), "hello, reseau, over endpoint kind %d on backend %s", (int)kind,
             rs_event_loop_backend_name(b));
    len = strlen(msg);
    assert_int_equal(wlog_write(log, p.client, msg, len), RS_OK);
    RUN_UNTIL(p.loop, sink->total >= len && log->count == 1 && echo->echoed >= len);
    assert_int_equal(sink->total, len);
    assert_memory_equal(sink->store, msg, len);
    assert_int_equal(log->error[0], RS_OK);
    assert_int_equal(log->bytes[0], len);
    assert_int_equal(log->inline_calls, 0);
    assert_int_equal(echo->error, RS_OK);
    assert_int_equal(sink->error, RS_OK);
    assert_false(sink->bad_amount);

    pair_close(&p);
    free(echo);
    sink_free(sink);
    free(log);
}

static void tcp_echo_ipv4(rs_event_loop_backend_t b) {
    echo_over(b, EP_IPV4);
}
static void tcp_echo_ipv6(rs_event_loop_backend_t b) {
    echo_over(b, EP_IPV6);
}
static void tcp_echo_unix_path(rs_event_loop_backend_t b) {
    unix_or_skip();
    echo_over(b, EP_UNIX_PATH);
}
static void tcp_echo_unix_abstract(rs_event_loop_backend_t b) {
    unix_or_skip();
    echo_over(b, EP_UNIX_ABSTRACT);
}
RS_TEST_PER_BACKEND(, tcp_echo_ipv4)
RS_TEST_PER_BACKEND(, tcp_echo_ipv6)
RS_TEST_PER_BACKEND(, tcp_echo_unix_path)
RS_TEST_PER_BACKEND(, tcp_echo_unix_abstract)

/* ================================================================ 2. bind */

static void bind_port_zero_over(rs_event_loop_backend_t b, ep_kind_t kind) {
    conn_pair_t p;
    rs_socket_options_t o = sock_opts(kind_domain(kind));
    rs_socket_t *dup;
    rs_endpoint_t again;
    memset(&p, 0, sizeof(p));
    p.loop = rs_test_loop_new(b);
    make_endpoint(kind, &p.bind_ep);
    listener_open(&p, &o, pair_on_accept, &p);
    assert_int_not_equal(p.listen_ep.port, 0);
    assert_true(p.listen_ep.port <= 65535);
    assert_int_equal(rs_socket_get_bound_address(p.listener, &again), RS_OK);
    assert_true(rs_endpoint_equal(&again, &p.listen_ep));

    /* The same address and port again, without SO_REUSEADDR. */
    dup = sock_new(&o);
    assert_int_equal(rs_socket_bind(dup, &p.listen_ep), RS_EADDRINUSE);
    rs_socket_destroy(dup);

    /* The port is real: a client gets through. */
    p.client = sock_new(&o);
    assert_int_equal(rs_socket_connect(p.client, &p.listen_ep, p.loop, pair_on_connect, &p), RS_OK);
    RUN_UNTIL(p.loop, p.connect_calls > 0 && p.server != NULL);
    assert_int_equal(p.connect_error, RS_OK);
    pair_close(&p);
}

static void bind_port_zero_gives_a_real_port_ipv4(rs_event_loop_backend_t b) {
    bind_port_zero_over(b, EP_IPV4);
}
static void bind_port_zero_gives_a_real_port_ipv6(rs_event_loop_backend_t b) {
    bind_port_zero_over(b, EP_IPV6);
}
RS_TEST_PER_BACKEND(, bind_port_zero_gives_a_real_port_ipv4)
RS_TEST_PER_BACKEND(, bind_port_zero_gives_a_real_port_ipv6)

static void bind_same_unix_path_twice_is_addrinuse(rs_event_loop_backend_t b) {
    unix_or_skip();
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_LOCAL);
    rs_endpoint_t ep;
    rs_socket_t *a, *c;
    make_endpoint(EP_UNIX_PATH, &ep);
    a = sock_new(&o);
    assert_int_equal(rs_socket_bind(a, &ep), RS_OK);
    assert_int_equal(rs_socket_listen(a, 0), RS_OK);
    c = sock_new(&o);
    assert_int_equal(rs_socket_bind(c, &ep), RS_EADDRINUSE);
    rs_socket_destroy(c);
    rs_socket_destroy(a);
    cleanup_endpoint(&ep);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(, bind_same_unix_path_twice_is_addrinuse)

/* ================================================================ 3. connect refused */

typedef struct connect_rec {
    int calls;
    int error;
    bool in_call;     /* set around rs_socket_connect / rs_socket_destroy */
    bool inline_seen; /* a callback came while in_call */
    bool destroy_returned;
    bool after_destroy; /* destroy_returned was set when the callback came */
} connect_rec_t;

static void rec_on_connect(rs_socket_t *s, int error, void *user_data) {
    connect_rec_t *r = (connect_rec_t *)user_data;
    (void)s;
    if (r->in_call) {
        r->inline_seen = true;
    }
    r->after_destroy = r->destroy_returned;
    r->calls++;
    r->error = error;
}

/* A port that nothing listens on: bind to port 0, learn the port, close. */
static void unused_endpoint(ep_kind_t kind, rs_endpoint_t *out) {
    rs_socket_options_t o = sock_opts(kind_domain(kind));
    rs_endpoint_t ep;
    rs_socket_t *s = sock_new(&o);
    make_endpoint(kind, &ep);
    assert_int_equal(rs_socket_bind(s, &ep), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(s, out), RS_OK);
    rs_socket_destroy(s); /* a Unix path stays on disk, with no listener */
}

static void connect_refused_over(rs_event_loop_backend_t b, ep_kind_t kind) {
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_socket_options_t o = sock_opts(kind_domain(kind));
    rs_endpoint_t ep;
    connect_rec_t rec;
    rs_socket_t *s;
    int err;
    memset(&rec, 0, sizeof(rec));
    unused_endpoint(kind, &ep);
    s = sock_new(&o);
    rec.in_call = true;
    err = rs_socket_connect(s, &ep, loop, rec_on_connect, &rec);
    rec.in_call = false;
    assert_int_equal(err, RS_OK);
    assert_int_equal(rec.calls, 0); /* never inside rs_socket_connect */
    RUN_UNTIL(loop, rec.calls > 0);
    run_ticks(loop, 5);
    assert_int_equal(rec.calls, 1);
    assert_false(rec.inline_seen);
    assert_int_equal(rec.error, RS_ECONNREFUSED);
    assert_false(rs_socket_is_open(s)); /* closed after a failure */
    rs_socket_destroy(s);
    cleanup_endpoint(&ep);
    rs_event_loop_destroy(loop);
}

static void connect_refused_is_reported_async_ipv4(rs_event_loop_backend_t b) {
    connect_refused_over(b, EP_IPV4);
}
static void connect_refused_is_reported_async_ipv6(rs_event_loop_backend_t b) {
    connect_refused_over(b, EP_IPV6);
}
static void connect_refused_is_reported_async_unix_path(rs_event_loop_backend_t b) {
    unix_or_skip();
    connect_refused_over(b, EP_UNIX_PATH);
}
RS_TEST_PER_BACKEND(, connect_refused_is_reported_async_ipv4)
RS_TEST_PER_BACKEND(, connect_refused_is_reported_async_ipv6)
RS_TEST_PER_BACKEND(, connect_refused_is_reported_async_unix_path)

/* ================================================================ 4. wrong thread */

static void noop_on_connect(rs_socket_t *s, int error, void *user_data) {
    (void)s;
    (void)error;
    (void)user_data;
}

static void socket_calls_off_the_loop_thread_are_refused(rs_event_loop_backend_t b) {
    conn_pair_t p;
    sink_t *sink = sink_new(4096);
    wlog_t *log = wlog_new();
    echo_conn_t *echo;
    uint8_t mem[64];
    rs_byte_buf_t buf = rs_byte_buf_from_array(mem, 0, sizeof(mem));
    size_t n = 777;
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    rs_socket_t *fresh;
    const char *msg = "still works";

    pair_connect(&p, b, EP_IPV4, NULL);
    echo = echo_start(p.server);
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.client, sink_on_readable, sink), RS_OK);
    fresh = sock_new(&o);

    assert_int_equal(rs_event_loop_start(p.loop), RS_OK);
    assert_false(rs_event_loop_is_on_loop_thread(p.loop));

    assert_int_equal(rs_socket_read(p.client, &buf, &n), RS_EWRONGTHREAD);
    assert_int_equal(n, 0);
    assert_int_equal(buf.len, 0);
    assert_int_equal(wlog_write(log, p.client, "x", 1), RS_EWRONGTHREAD);
    /* The thread is checked before the arguments: misuse off-thread says so. */
    assert_int_equal(rs_socket_write(p.client, rs_byte_cursor_from_array("x", 1), NULL, NULL), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.client, sink_on_readable, sink), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_pause_reading(p.client), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_resume_reading(p.client), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_shutdown_dir(p.client, RS_SOCKET_DIR_WRITE), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_close(p.client), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_stop_accept(p.listener), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_connect(fresh, &p.listen_ep, p.loop, noop_on_connect, NULL), RS_EWRONGTHREAD);
    assert_int_equal(rs_socket_assign_to_loop(fresh, p.loop), RS_EWRONGTHREAD);
    assert_null(rs_socket_get_loop(fresh));

    assert_int_equal(rs_event_loop_stop(p.loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(p.loop), RS_OK);
    assert_int_equal(log->count, 0);
    assert_int_equal(sink->calls, 0);

    /* Take the loop back on this thread: the refused calls changed nothing. */
    assert_int_equal(rs_event_loop_run_once(p.loop, 0), RS_OK);
    assert_true(rs_socket_is_open(p.client));
    assert_int_equal(rs_socket_get_pending_write_bytes(p.client), 0);
    assert_int_equal(wlog_write(log, p.client, msg, strlen(msg)), RS_OK);
    RUN_UNTIL(p.loop, sink->total >= strlen(msg));
    assert_int_equal(sink->total, strlen(msg));
    assert_memory_equal(sink->store, msg, strlen(msg));
    RUN_UNTIL(p.loop, log->count == 1);
    assert_int_equal(log->error[0], RS_OK);

    rs_socket_destroy(fresh);
    pair_close(&p);
    free(echo);
    sink_free(sink);
    free(log);
}
RS_TEST_PER_BACKEND(, socket_calls_off_the_loop_thread_are_refused)

/* ================================================================ 5. destroy before connect completes */

static void destroy_before_connect_over(rs_event_loop_backend_t b, ep_kind_t kind) {
    conn_pair_t p;
    rs_socket_options_t o = sock_opts(kind_domain(kind));
    connect_rec_t rec;
    rs_socket_t *s;
    memset(&p, 0, sizeof(p));
    memset(&rec, 0, sizeof(rec));
    p.loop = rs_test_loop_new(b);
    make_endpoint(kind, &p.bind_ep);
    listener_open(&p, &o, pair_on_accept, &p);

    s = sock_new(&o);
    assert_int_equal(rs_socket_connect(s, &p.listen_ep, p.loop, rec_on_connect, &rec), RS_OK);
    rec.in_call = true;
    rs_socket_destroy(s);
    rec.in_call = false;
    rec.destroy_returned = true;
    assert_int_equal(rec.calls, 0);

    RUN_UNTIL(p.loop, rec.calls > 0);
    run_ticks(p.loop, 10);
    assert_int_equal(rec.calls, 1);
    assert_false(rec.inline_seen);
    assert_true(rec.after_destroy);
    assert_int_equal(rec.error, RS_ECANCELED);
    pair_close(&p); /* the listener may or may not have accepted it */
}

static void destroy_before_connect_completes_cancels_once_ipv4(rs_event_loop_backend_t b) {
    destroy_before_connect_over(b, EP_IPV4);
}
static void destroy_before_connect_completes_cancels_once_unix_path(rs_event_loop_backend_t b) {
    unix_or_skip();
    destroy_before_connect_over(b, EP_UNIX_PATH);
}
RS_TEST_PER_BACKEND(, destroy_before_connect_completes_cancels_once_ipv4)
RS_TEST_PER_BACKEND(, destroy_before_connect_completes_cancels_once_unix_path)

/* A Unix connect to a path with no listener fails inside connect(2); the
 * failure is still reported later, exactly once, even if the socket is
 * destroyed first. (Refused or canceled: the header allows either reading.) */
static void destroy_after_immediate_refusal_completes_once(rs_event_loop_backend_t b) {
    unix_or_skip();
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_LOCAL);
    rs_endpoint_t ep;
    connect_rec_t rec;
    rs_socket_t *s;
    memset(&rec, 0, sizeof(rec));
    unused_endpoint(EP_UNIX_PATH, &ep);
    s = sock_new(&o);
    assert_int_equal(rs_socket_connect(s, &ep, loop, rec_on_connect, &rec), RS_OK);
    rec.in_call = true;
    rs_socket_destroy(s);
    rec.in_call = false;
    rec.destroy_returned = true;
    RUN_UNTIL(loop, rec.calls > 0);
    run_ticks(loop, 5);
    assert_int_equal(rec.calls, 1);
    assert_false(rec.inline_seen);
    assert_true(rec.after_destroy);
    assert_true(rec.error == RS_ECANCELED || rec.error == RS_ECONNREFUSED);
    cleanup_endpoint(&ep);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(, destroy_after_immediate_refusal_completes_once)

/* ================================================================ 6. destroy inside the accept callback */

typedef struct accept_destroyer {
    rs_socket_t *listener;
    int calls;
    int error;
} accept_destroyer_t;

static void destroying_on_accept(rs_socket_t *listener, int error, rs_socket_t *new_socket, void *user_data) {
    accept_destroyer_t *d = (accept_destroyer_t *)user_data;
    d->calls++;
    d->error = error;
    if (new_socket) {
        rs_socket_destroy(new_socket);
    }
    if (d->listener == listener) {
        rs_socket_destroy(listener);
        d->listener = NULL;
    }
}

static void destroy_listener_inside_accept_callback(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    rs_endpoint_t ep, bound;
    accept_destroyer_t d;
    connect_rec_t rec[2];
    rs_socket_t *clients[2];
    sink_t *sinks[2];
    int i;
    memset(&d, 0, sizeof(d));
    memset(rec, 0, sizeof(rec));
    make_endpoint(EP_IPV4, &ep);
    d.listener = sock_new(&o);
    assert_int_equal(rs_socket_bind(d.listener, &ep), RS_OK);
    assert_int_equal(rs_socket_listen(d.listener, 0), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(d.listener, &bound), RS_OK);
    assert_int_equal(rs_socket_start_accept(d.listener, loop, destroying_on_accept, &d), RS_OK);
    for (i = 0; i < 2; ++i) {
        clients[i] = sock_new(&o);
        sinks[i] = sink_new(0);
        assert_int_equal(rs_socket_connect(clients[i], &bound, loop, rec_on_connect, &rec[i]), RS_OK);
    }
    RUN_UNTIL(loop, d.calls > 0 && rec[0].calls > 0 && rec[1].calls > 0);
    for (i = 0; i < 2; ++i) {
        if (rec[i].error == RS_OK) {
            assert_int_equal(rs_socket_subscribe_to_readable_events(clients[i], sink_on_readable, sinks[i]), RS_OK);
        }
    }
    /* Each client sees the end of its connection (EOF or reset), or never connected. */
    RUN_UNTIL(loop, (rec[0].error || sinks[0]->eof || sinks[0]->error) &&
                        (rec[1].error || sinks[1]->eof || sinks[1]->error));
    run_ticks(loop, 5);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.error, RS_OK);
    assert_null(d.listener);
    for (i = 0; i < 2; ++i) {
        assert_int_equal(rec[i].calls, 1);
        assert_int_equal(sinks[i]->total, 0);
        rs_socket_destroy(clients[i]);
    }
    rs_event_loop_destroy(loop);
    for (i = 0; i < 2; ++i) {
        sink_free(sinks[i]);
    }
}
RS_TEST_PER_BACKEND(, destroy_listener_inside_accept_callback)

/* ================================================================ 7. destroy inside a write callback */

static void destroy_inside_write_callback_cancels_queued_writes_in_order(rs_event_loop_backend_t b) {
    conn_pair_t p;
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    wlog_t *log = wlog_new();
    const size_t big = 1024 * 1024;
    uint8_t *data = (uint8_t *)malloc(big);
    int i;
    assert_non_null(data);
    fill_pattern(data, big, 7);
    o.send_buffer_size = 65536; /* small buffers: the big writes cannot finish */
    o.recv_buffer_size = 65536;
    pair_connect(&p, b, EP_IPV4, &o);

    assert_int_equal(wlog_write(log, p.client, data, 100), RS_OK);
    for (i = 1; i <= 4; ++i) {
        assert_int_equal(wlog_write(log, p.client, data, big), RS_OK);
    }
    log->destroy_after_index = 0;
    log->destroy_slot = &p.client;
    /* The server does not read. */
    RUN_UNTIL(p.loop, log->count == 5);
    run_ticks(p.loop, 10);
    assert_true(log->destroyed_in_callback);
    assert_null(p.client);
    assert_int_equal(log->count, 5);
    assert_int_equal(log->inline_calls, 0);
    for (i = 0; i < 5; ++i) {
        assert_int_equal(log->order[i], i);
        assert_int_equal(log->calls[i], 1);
    }
    assert_int_equal(log->error[0], RS_OK);
    assert_int_equal(log->bytes[0], 100);
    for (i = 1; i <= 4; ++i) {
        assert_int_equal(log->error[i], RS_ECANCELED);
        assert_true(log->bytes[i] < big);
    }
    assert_int_equal(log->bytes[4], 0);
    pair_close(&p);
    free(log);
    free(data);
}
RS_TEST_PER_BACKEND(, destroy_inside_write_callback_cancels_queued_writes_in_order)

/* ================================================================ more destroy-in-callback cases */

typedef struct connect_destroyer {
    rs_socket_t *sock;
    int calls;
    int error;
} connect_destroyer_t;

static void destroying_on_connect(rs_socket_t *s, int error, void *user_data) {
    connect_destroyer_t *d = (connect_destroyer_t *)user_data;
    d->calls++;
    d->error = error;
    if (d->sock == s) {
        rs_socket_destroy(s);
        d->sock = NULL;
    }
}

static void destroy_inside_connect_callback(rs_event_loop_backend_t b) {
    conn_pair_t p;
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    connect_destroyer_t d;
    sink_t *sink = sink_new(0);
    memset(&p, 0, sizeof(p));
    memset(&d, 0, sizeof(d));
    p.loop = rs_test_loop_new(b);
    make_endpoint(EP_IPV4, &p.bind_ep);
    listener_open(&p, &o, pair_on_accept, &p);
    d.sock = sock_new(&o);
    assert_int_equal(rs_socket_connect(d.sock, &p.listen_ep, p.loop, destroying_on_connect, &d), RS_OK);
    RUN_UNTIL(p.loop, d.calls > 0 && p.server != NULL);
    assert_int_equal(d.error, RS_OK);
    assert_null(d.sock);
    /* The server sees the client go away. */
    assert_int_equal(rs_socket_assign_to_loop(p.server, p.loop), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.server, sink_on_readable, sink), RS_OK);
    RUN_UNTIL(p.loop, sink->eof || sink->error);
    run_ticks(p.loop, 5);
    assert_int_equal(d.calls, 1);
    assert_int_equal(sink->calls_after_end, 0);
    pair_close(&p);
    sink_free(sink);
}
RS_TEST_PER_BACKEND(, destroy_inside_connect_callback)

typedef struct readable_destroyer {
    rs_socket_t **slot;
    wlog_t *log;
    int calls;
    int completions_inside; /* write completions delivered during the destroy call */
} readable_destroyer_t;

static void destroying_on_readable(rs_socket_t *s, int error, void *user_data) {
    readable_destroyer_t *d = (readable_destroyer_t *)user_data;
    int before = d->log->count;
    (void)error;
    d->calls++;
    if (*d->slot == s) {
        d->log->in_call = true;
        rs_socket_destroy(s);
        d->log->in_call = false;
        *d->slot = NULL;
        d->completions_inside += d->log->count - before;
    }
}

static void destroy_inside_readable_callback_cancels_queued_writes(rs_event_loop_backend_t b) {
    conn_pair_t p;
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    readable_destroyer_t d;
    wlog_t *log = wlog_new();
    wlog_t *slog = wlog_new();
    const size_t big = 1024 * 1024;
    uint8_t *data = (uint8_t *)malloc(big);
    int i;
    assert_non_null(data);
    fill_pattern(data, big, 77);
    o.send_buffer_size = 65536;
    o.recv_buffer_size = 65536;
    pair_connect(&p, b, EP_IPV4, &o);
    memset(&d, 0, sizeof(d));
    d.slot = &p.client;
    d.log = log;
    for (i = 0; i < 4; ++i) {
        assert_int_equal(wlog_write(log, p.client, data, big), RS_OK);
    }
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.client, destroying_on_readable, &d), RS_OK);
    run_ticks(p.loop, 3); /* the server does not read: the queue stays full */
    assert_int_equal(log->count, 0);
    assert_true(rs_socket_get_pending_write_bytes(p.client) > 0);
    assert_int_equal(wlog_write(slog, p.server, "!", 1), RS_OK);
    RUN_UNTIL(p.loop, log->count == 4);
    run_ticks(p.loop, 5);
    assert_int_equal(d.calls, 1);
    assert_null(p.client);
    assert_int_equal(d.completions_inside, 0);
    assert_int_equal(log->inline_calls, 0);
    assert_int_equal(log->count, 4);
    for (i = 0; i < 4; ++i) {
        assert_int_equal(log->order[i], i);
        assert_int_equal(log->calls[i], 1);
        assert_int_equal(log->error[i], RS_ECANCELED);
        assert_true(log->bytes[i] < big);
    }
    assert_true(log->bytes[0] > 0); /* the bytes that did reach the kernel */
    assert_int_equal(log->bytes[3], 0);
    pair_close(&p);
    free(log);
    free(slog);
    free(data);
}
RS_TEST_PER_BACKEND(, destroy_inside_readable_callback_cancels_queued_writes)

/* ================================================================ assorted contract edges */

static void zero_length_write_completes_in_order(rs_event_loop_backend_t b) {
    conn_pair_t p;
    sink_t *sink = sink_new(16);
    wlog_t *log = wlog_new();
    int err, i, expected;
    pair_connect(&p, b, EP_IPV4, NULL);
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.server, sink_on_readable, sink), RS_OK);
    assert_int_equal(wlog_write(log, p.client, "a", 1), RS_OK);
    err = wlog_write(log, p.client, "", 0);
    /* Either refused up front, or completed like any other write. */
    assert_true(err == RS_OK || err == RS_EINVAL);
    assert_int_equal(wlog_write(log, p.client, "b", 1), RS_OK);
    expected = err == RS_OK ? 3 : 2;
    RUN_UNTIL(p.loop, log->count == expected && sink->total >= 2);
    run_ticks(p.loop, 3);
    assert_int_equal(log->count, expected);
    for (i = 0; i < expected; ++i) {
        assert_int_equal(log->order[i], i);
        assert_int_equal(log->error[i], RS_OK);
    }
    if (err == RS_OK) {
        assert_int_equal(log->bytes[1], 0);
    }
    assert_int_equal(sink->total, 2);
    assert_memory_equal(sink->store, "ab", 2);
    pair_close(&p);
    sink_free(sink);
    free(log);
}
RS_TEST_PER_BACKEND(, zero_length_write_completes_in_order)

static void client_bound_before_connect_keeps_its_address(rs_event_loop_backend_t b) {
    conn_pair_t p;
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    rs_endpoint_t local, bound, after, seen;
    memset(&p, 0, sizeof(p));
    p.loop = rs_test_loop_new(b);
    make_endpoint(EP_IPV4, &p.bind_ep);
    listener_open(&p, &o, pair_on_accept, &p);
    p.client = sock_new(&o);
    make_endpoint(EP_IPV4, &local);
    assert_int_equal(rs_socket_bind(p.client, &local), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(p.client, &bound), RS_OK);
    assert_int_not_equal(bound.port, 0);
    assert_int_equal(rs_socket_connect(p.client, &p.listen_ep, p.loop, pair_on_connect, &p), RS_OK);
    RUN_UNTIL(p.loop, p.connect_calls > 0 && p.server != NULL);
    assert_int_equal(p.connect_error, RS_OK);
    assert_int_equal(rs_socket_get_bound_address(p.client, &after), RS_OK);
    assert_true(rs_endpoint_equal(&after, &bound));
    assert_int_equal(rs_socket_get_remote_address(p.server, &seen), RS_OK);
    assert_true(rs_endpoint_equal(&seen, &bound));
    pair_close(&p);
}
RS_TEST_PER_BACKEND(, client_bound_before_connect_keeps_its_address)

/* An accepted socket is handed, unassigned, to a second loop on its own thread. */
typedef struct handoff {
    rs_task_t task;
    rs_event_loop_t *loop_b;
    rs_socket_t *sock;
    echo_conn_t *echo; /* allocated by the test thread, used only on loop B */
    int err;
    bool wrong_thread;
    rs_mutex_t mutex;
    rs_condvar_t cond;
    int stage; /* 1: assigned, 2: destroyed */
} handoff_t;

static void handoff_signal(handoff_t *h, int stage) {
    rs_mutex_lock(&h->mutex);
    h->stage = stage;
    rs_condvar_broadcast(&h->cond);
    rs_mutex_unlock(&h->mutex);
}

static bool handoff_wait(handoff_t *h, int stage) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    bool ok;
    rs_mutex_lock(&h->mutex);
    while (h->stage < stage) {
        if (rs_condvar_wait_until(&h->cond, &h->mutex, deadline) == RS_ETIMEDOUT) {
            break;
        }
    }
    ok = h->stage >= stage;
    rs_mutex_unlock(&h->mutex);
    return ok;
}

static void handoff_assign_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    handoff_t *h = (handoff_t *)arg;
    int err = RS_OK;
    (void)task;
    if (status != RS_TASK_STATUS_RUN) {
        err = RS_ECANCELED;
    }
    if (!rs_event_loop_is_on_loop_thread(h->loop_b)) {
        h->wrong_thread = true;
    }
    if (!err) {
        err = rs_socket_assign_to_loop(h->sock, h->loop_b);
    }
    if (!err) {
        h->echo->sock = h->sock;
        err = rs_socket_subscribe_to_readable_events(h->sock, echo_on_readable, h->echo);
    }
    h->err = err;
    handoff_signal(h, 1);
}

static void handoff_destroy_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    handoff_t *h = (handoff_t *)arg;
    (void)task;
    (void)status;
    rs_socket_destroy(h->sock);
    handoff_signal(h, 2);
}

static void handoff_on_accept(rs_socket_t *l, int error, rs_socket_t *new_socket, void *user_data) {
    handoff_t *h = (handoff_t *)user_data;
    (void)l;
    if (error || h->sock) {
        if (new_socket) {
            rs_socket_destroy(new_socket);
        }
        return;
    }
    h->sock = new_socket;
    rs_task_init(&h->task, handoff_assign_task, h, "test_handoff_assign");
    rs_event_loop_schedule_task_now(h->loop_b, &h->task);
}

static void accepted_socket_can_move_to_another_loop(rs_event_loop_backend_t b) {
    conn_pair_t p;
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    handoff_t *h = (handoff_t *)calloc(1, sizeof(handoff_t));
    sink_t *sink = sink_new(256);
    wlog_t *log = wlog_new();
    const char *msg = "across loops";
    assert_non_null(h);
    assert_int_equal(rs_mutex_init(&h->mutex), RS_OK);
    assert_int_equal(rs_condvar_init(&h->cond), RS_OK);
    h->echo = (echo_conn_t *)calloc(1, sizeof(echo_conn_t));
    assert_non_null(h->echo);
    h->loop_b = rs_test_loop_new(b);
    assert_int_equal(rs_event_loop_start(h->loop_b), RS_OK);

    memset(&p, 0, sizeof(p));
    p.loop = rs_test_loop_new(b);
    make_endpoint(EP_IPV4, &p.bind_ep);
    listener_open(&p, &o, handoff_on_accept, h);
    p.client = sock_new(&o);
    assert_int_equal(rs_socket_connect(p.client, &p.listen_ep, p.loop, pair_on_connect, &p), RS_OK);
    RUN_UNTIL(p.loop, p.connect_calls > 0);
    assert_int_equal(p.connect_error, RS_OK);
    assert_true(handoff_wait(h, 1));
    rs_mutex_lock(&h->mutex);
    assert_int_equal(h->err, RS_OK);
    assert_false(h->wrong_thread);
    rs_mutex_unlock(&h->mutex);

    assert_int_equal(rs_socket_subscribe_to_readable_events(p.client, sink_on_readable, sink), RS_OK);
    assert_int_equal(wlog_write(log, p.client, msg, strlen(msg)), RS_OK);
    RUN_UNTIL(p.loop, sink->total >= strlen(msg) && log->count == 1);
    assert_memory_equal(sink->store, msg, strlen(msg));

    rs_task_init(&h->task, handoff_destroy_task, h, "test_handoff_destroy");
    rs_event_loop_schedule_task_now(h->loop_b, &h->task);
    assert_true(handoff_wait(h, 2));
    rs_event_loop_destroy(h->loop_b);
    assert_int_equal(h->echo->error, RS_OK);
    assert_int_equal(h->echo->echoed, strlen(msg));
    h->sock = NULL;
    pair_close(&p);
    rs_condvar_cleanup(&h->cond);
    rs_mutex_cleanup(&h->mutex);
    free(h->echo);
    free(h);
    sink_free(sink);
    free(log);
}
RS_TEST_PER_BACKEND(, accepted_socket_can_move_to_another_loop)

/* socket.h: rs_socket_destroy may be called from any thread "once closed with
 * nothing in flight". Run in a child process: the failure mode is an abort. */
static int child_destroy_closed_off_thread(rs_event_loop_backend_t b) {
    rs_event_loop_options_t lo;
    rs_socket_options_t o;
    conn_pair_t p;
    rs_event_loop_t *loop;
    uint64_t deadline;
    int i;
    memset(&lo, 0, sizeof(lo));
    lo.backend = b;
    memset(&o, 0, sizeof(o)); /* libc allocator: cmocka's is not for a child */
    memset(&p, 0, sizeof(p));
    loop = rs_event_loop_new(&lo, NULL);
    if (!loop) {
        return 10;
    }
    p.loop = loop;
    if (rs_endpoint_from_ip(&p.bind_ep, "127.0.0.1", 0) != RS_OK) {
        return 11;
    }
    p.listener = rs_socket_new(&o, NULL);
    p.client = rs_socket_new(&o, NULL);
    if (!p.listener || !p.client || rs_socket_bind(p.listener, &p.bind_ep) || rs_socket_listen(p.listener, 0) ||
        rs_socket_start_accept(p.listener, loop, pair_on_accept, &p) ||
        rs_socket_get_bound_address(p.listener, &p.listen_ep) ||
        rs_socket_connect(p.client, &p.listen_ep, loop, pair_on_connect, &p)) {
        return 12;
    }
    deadline = rs_clock_now_ns() + WAIT_NS;
    while (!(p.connect_calls && p.server)) {
        if (rs_clock_now_ns() > deadline || rs_event_loop_run_once(loop, 10)) {
            return 13;
        }
    }
    if (p.connect_error || rs_socket_close(p.client)) {
        return 14;
    }
    for (i = 0; i < 5; ++i) {
        rs_event_loop_run_once(loop, 0);
    }
    if (rs_event_loop_start(loop)) {
        return 15;
    }
    rs_socket_destroy(p.client); /* closed, nothing in flight, off the loop thread */
    rs_event_loop_stop(loop);
    rs_event_loop_wait(loop);
    rs_event_loop_run_once(loop, 0);
    rs_socket_destroy(p.server);
    rs_socket_destroy(p.listener);
    rs_event_loop_destroy(loop);
    return 0;
}

#if defined(_WIN32)
/* No fork: the scenario runs in the test's own process. */
static void closed_socket_can_be_destroyed_from_any_thread(rs_event_loop_backend_t b) {
    assert_int_equal(child_destroy_closed_off_thread(b), 0);
}
#else
static void closed_socket_can_be_destroyed_from_any_thread(rs_event_loop_backend_t b) {
    uint64_t deadline;
    int status = 0;
    pid_t got = 0;
    pid_t pid;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        _exit(child_destroy_closed_off_thread(b));
    }
    deadline = rs_clock_now_ns() + WAIT_NS;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 && rs_clock_now_ns() < deadline) {
        rs_thread_sleep_ns(5 * RS_NS_PER_MS);
    }
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("child hung destroying a closed socket off its loop thread");
    }
    assert_int_equal(got, pid);
    if (WIFSIGNALED(status)) {
        fail_msg("child killed by signal %d destroying a closed socket off its loop thread", WTERMSIG(status));
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}
#endif
RS_TEST_PER_BACKEND(, closed_socket_can_be_destroyed_from_any_thread)

/* Both ends readable in one tick; whichever callback runs first destroys the
 * other socket, whose queued event must then be skipped (ASan sees a use
 * after free otherwise). */
static int bytes_waiting(const rs_socket_t *s);

typedef struct cross_destroyer {
    rs_socket_t **self;
    rs_socket_t **other;
    int *calls;
    int *calls_after_destroy;
} cross_destroyer_t;

static void cross_destroying_on_readable(rs_socket_t *s, int error, void *user_data) {
    cross_destroyer_t *d = (cross_destroyer_t *)user_data;
    (void)error;
    (*d->calls)++;
    if (*d->self != s) {
        (*d->calls_after_destroy)++;
        return;
    }
    if (*d->other) {
        rs_socket_destroy(*d->other);
        *d->other = NULL;
    }
    for (;;) { /* drain, so level-triggered readiness goes quiet */
        uint8_t mem[16];
        rs_byte_buf_t buf = rs_byte_buf_from_array(mem, 0, sizeof(mem));
        if (rs_socket_read(s, &buf, NULL) != RS_OK) {
            break;
        }
    }
}

static void destroy_peer_from_a_callback_in_the_same_tick(rs_event_loop_backend_t b) {
    conn_pair_t p;
    cross_destroyer_t dc, ds;
    wlog_t *log = wlog_new();
    int calls = 0, after = 0;
    pair_connect(&p, b, EP_IPV4, NULL);
    dc.self = &p.client;
    dc.other = &p.server;
    ds.self = &p.server;
    ds.other = &p.client;
    dc.calls = ds.calls = &calls;
    dc.calls_after_destroy = ds.calls_after_destroy = &after;
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.client, cross_destroying_on_readable, &dc), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.server, cross_destroying_on_readable, &ds), RS_OK);
    assert_int_equal(rs_socket_pause_reading(p.client), RS_OK);
    assert_int_equal(rs_socket_pause_reading(p.server), RS_OK);
    assert_int_equal(wlog_write(log, p.client, "c", 1), RS_OK);
    assert_int_equal(wlog_write(log, p.server, "s", 1), RS_OK);
    RUN_UNTIL(p.loop, log->count == 2 && bytes_waiting(p.client) == 1 && bytes_waiting(p.server) == 1);
    assert_int_equal(calls, 0);
    /* Nothing in flight now: a destroy frees at once. */
    assert_int_equal(rs_socket_resume_reading(p.client), RS_OK);
    assert_int_equal(rs_socket_resume_reading(p.server), RS_OK);
    RUN_UNTIL(p.loop, calls > 0);
    run_ticks(p.loop, 5);
    assert_true(calls >= 1 && calls <= 2); /* the survivor: its byte, then perhaps EOF */
    assert_int_equal(after, 0);            /* the destroyed one: never */
    assert_true((p.client == NULL) != (p.server == NULL));
    pair_close(&p);
    free(log);
}
RS_TEST_PER_BACKEND(, destroy_peer_from_a_callback_in_the_same_tick)

static void stop_accept_pauses_accepting(rs_event_loop_backend_t b) {
    conn_pair_t p;
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    memset(&p, 0, sizeof(p));
    p.loop = rs_test_loop_new(b);
    make_endpoint(EP_IPV4, &p.bind_ep);
    listener_open(&p, &o, pair_on_accept, &p);
    assert_int_equal(rs_socket_stop_accept(p.listener), RS_OK);
    p.client = sock_new(&o);
    assert_int_equal(rs_socket_connect(p.client, &p.listen_ep, p.loop, pair_on_connect, &p), RS_OK);
    RUN_UNTIL(p.loop, p.connect_calls > 0); /* the kernel completes it from the backlog */
    assert_int_equal(p.connect_error, RS_OK);
    run_ticks(p.loop, 10);
    assert_int_equal(p.accept_calls, 0);
    assert_int_equal(rs_socket_start_accept(p.listener, p.loop, pair_on_accept, &p), RS_OK);
    RUN_UNTIL(p.loop, p.accept_calls > 0);
    assert_int_equal(p.accept_calls, 1);
    assert_non_null(p.server);
    pair_close(&p);
}
RS_TEST_PER_BACKEND(, stop_accept_pauses_accepting)

/* ================================================================ 8. write completion */

static void write_completion_is_async_and_in_order(rs_event_loop_backend_t b) {
    conn_pair_t p;
    wlog_t *log = wlog_new();
    size_t sizes[100];
    size_t total = 0, off = 0;
    uint8_t *data;
    sink_t *sink;
    int i;
    for (i = 0; i < 100; ++i) {
        sizes[i] = 1 + ((size_t)i * 7919u + (size_t)(i % 7) * 131071u) % 40000u;
        total += sizes[i];
    }
    data = (uint8_t *)malloc(total);
    assert_non_null(data);
    fill_pattern(data, total, 8);
    sink = sink_new(total);
    pair_connect(&p, b, EP_IPV4, NULL);
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.server, sink_on_readable, sink), RS_OK);

    for (i = 0; i < 100; ++i) {
        assert_int_equal(wlog_write(log, p.client, data + off, sizes[i]), RS_OK);
        off += sizes[i];
    }
    assert_int_equal(log->count, 0); /* nothing completes inside rs_socket_write */
    assert_true(rs_socket_get_pending_write_bytes(p.client) <= total);

    RUN_UNTIL(p.loop, log->count == 100 && sink->total >= total);
    assert_int_equal(log->inline_calls, 0);
    for (i = 0; i < 100; ++i) {
        assert_int_equal(log->order[i], i);
        assert_int_equal(log->calls[i], 1);
        assert_int_equal(log->error[i], RS_OK);
        assert_int_equal(log->bytes[i], sizes[i]);
    }
    assert_int_equal(rs_socket_get_pending_write_bytes(p.client), 0);
    assert_int_equal(sink->total, total);
    assert_false(sink->store_overflow);
    assert_memory_equal(sink->store, data, total);

    /* A write from a completion callback also completes later. */
    assert_int_equal(wlog_write(log, p.client, data, 10), RS_OK);
    assert_int_equal(log->count, 100);
    RUN_UNTIL(p.loop, log->count == 101);
    assert_int_equal(log->inline_calls, 0);

    pair_close(&p);
    sink_free(sink);
    free(log);
    free(data);
}
RS_TEST_PER_BACKEND(, write_completion_is_async_and_in_order)

/* ================================================================ 9. large writes */

#define LARGE_SIZE ((size_t)64 * 1024 * 1024)

static void large_write_over(rs_event_loop_backend_t b, ep_kind_t kind, int chunks) {
    conn_pair_t p;
    wlog_t *log = wlog_new();
    uint8_t *data = (uint8_t *)malloc(LARGE_SIZE);
    sink_t *sink = sink_new(0);
    uint64_t expect;
    size_t off = 0;
    int i;
    assert_non_null(data);
    fill_pattern(data, LARGE_SIZE, 9);
    expect = hash_buffer(data, LARGE_SIZE);
    pair_connect(&p, b, kind, NULL);
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.server, sink_on_readable, sink), RS_OK);

    if (chunks == 1) {
        assert_int_equal(wlog_write(log, p.client, data, LARGE_SIZE), RS_OK);
        off = LARGE_SIZE;
    } else {
        size_t base = LARGE_SIZE / (size_t)chunks;
        for (i = 0; i < chunks; ++i) {
            size_t d = ((size_t)(i / 2) * 7919u) % 60000u;
            size_t len = (i % 2) ? base + d : base - d;
            if (i == chunks - 1) {
                len = LARGE_SIZE - off;
            }
            assert_int_equal(wlog_write(log, p.client, data + off, len), RS_OK);
            off += len;
        }
    }
    assert_int_equal(off, LARGE_SIZE);
    assert_int_equal(log->submitted, chunks);
    RS_TEST_RUN_UNTIL_NS(p.loop, log->count == chunks && sink->total >= LARGE_SIZE, BIG_WAIT_NS);
    assert_int_equal(sink->total, LARGE_SIZE);
    assert_int_equal(sink->error, RS_OK);
    assert_false(sink->bad_amount);
    assert_true(hash_final(&sink->hash) == expect);
    assert_int_equal(log->inline_calls, 0);
    off = 0;
    for (i = 0; i < chunks; ++i) {
        assert_int_equal(log->order[i], i);
        assert_int_equal(log->error[i], RS_OK);
        off += log->bytes[i];
    }
    assert_int_equal(off, LARGE_SIZE);

    assert_int_equal(rs_socket_shutdown_dir(p.client, RS_SOCKET_DIR_WRITE), RS_OK);
    RUN_UNTIL(p.loop, sink->eof || sink->error);
    assert_true(sink->eof);
    assert_int_equal(sink->total, LARGE_SIZE);

    pair_close(&p);
    sink_free(sink);
    free(log);
    free(data);
}

static void large_write_64mib_in_one_write(rs_event_loop_backend_t b) {
    large_write_over(b, EP_IPV4, 1);
}
static void large_write_64mib_in_1000_writes(rs_event_loop_backend_t b) {
    large_write_over(b, EP_IPV4, 1000);
}
static void large_write_64mib_in_one_write_unix_path(rs_event_loop_backend_t b) {
    unix_or_skip();
    large_write_over(b, EP_UNIX_PATH, 1);
}
RS_TEST_PER_BACKEND(, large_write_64mib_in_one_write)
RS_TEST_PER_BACKEND(, large_write_64mib_in_1000_writes)
RS_TEST_PER_BACKEND(, large_write_64mib_in_one_write_unix_path)

/* ================================================================ 10. EOF after hang-up */

static void read_delivers_all_data_before_eof_then_stops(rs_event_loop_backend_t b) {
    conn_pair_t p;
    const size_t size = 1024 * 1024;
    uint8_t *data = (uint8_t *)malloc(size);
    sink_t *sink = sink_new(size);
    wlog_t *log = wlog_new();
    int calls;
    assert_non_null(data);
    fill_pattern(data, size, 10);
    pair_connect(&p, b, EP_IPV4, NULL);
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.client, sink_on_readable, sink), RS_OK);

    /* The server writes 1 MiB and destroys itself once the write is done. */
    log->destroy_after_index = 0;
    log->destroy_slot = &p.server;
    assert_int_equal(wlog_write(log, p.server, data, size), RS_OK);
    RUN_UNTIL(p.loop, sink->eof || sink->error);
    assert_true(log->destroyed_in_callback);
    assert_int_equal(log->error[0], RS_OK);
    assert_int_equal(log->bytes[0], size);
    assert_true(sink->eof);
    assert_int_equal(sink->error, RS_OK);
    assert_int_equal(sink->total, size);
    assert_memory_equal(sink->store, data, size);

    /* Nothing more comes, and the readable callback does not spin. */
    calls = sink->calls;
    run_ticks(p.loop, 20);
    assert_int_equal(sink->calls, calls);
    assert_int_equal(sink->calls_after_end, 0);

    pair_close(&p);
    sink_free(sink);
    free(log);
    free(data);
}
RS_TEST_PER_BACKEND(, read_delivers_all_data_before_eof_then_stops)

/* ================================================================ 11. half-close */

static void half_close_both_directions(rs_event_loop_backend_t b) {
    conn_pair_t p;
    sink_t *cs = sink_new(256); /* client side */
    sink_t *ss = sink_new(256); /* server side */
    wlog_t *clog = wlog_new();
    wlog_t *slog = wlog_new();
    const char *ping = "ping";
    const char *pong = "pong after your FIN";
    pair_connect(&p, b, EP_IPV4, NULL);
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.client, sink_on_readable, cs), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.server, sink_on_readable, ss), RS_OK);

    /* Client -> server, then the client shuts its write side. */
    assert_int_equal(wlog_write(clog, p.client, ping, strlen(ping)), RS_OK);
    assert_int_equal(rs_socket_shutdown_dir(p.client, RS_SOCKET_DIR_WRITE), RS_OK);
    assert_int_equal(wlog_write(clog, p.client, ping, strlen(ping)), RS_ESHUTDOWN);
    RUN_UNTIL(p.loop, ss->eof || ss->error);
    assert_true(ss->eof);
    assert_int_equal(ss->total, strlen(ping));
    assert_memory_equal(ss->store, ping, strlen(ping));
    RUN_UNTIL(p.loop, clog->count == 1);
    assert_int_equal(clog->error[0], RS_OK);

    /* The server can still write; the client can still read. */
    assert_int_equal(wlog_write(slog, p.server, pong, strlen(pong)), RS_OK);
    RUN_UNTIL(p.loop, cs->total >= strlen(pong) && slog->count == 1);
    assert_int_equal(cs->total, strlen(pong));
    assert_memory_equal(cs->store, pong, strlen(pong));
    assert_int_equal(slog->error[0], RS_OK);
    assert_false(cs->eof);
    assert_int_equal(cs->error, RS_OK);

    /* Now the other way. */
    assert_int_equal(rs_socket_shutdown_dir(p.server, RS_SOCKET_DIR_WRITE), RS_OK);
    RUN_UNTIL(p.loop, cs->eof || cs->error);
    assert_true(cs->eof);
    assert_int_equal(cs->total, strlen(pong));
    assert_int_equal(wlog_write(slog, p.server, pong, strlen(pong)), RS_ESHUTDOWN);
    run_ticks(p.loop, 5);
    assert_int_equal(cs->calls_after_end, 0);
    assert_int_equal(ss->calls_after_end, 0);

    pair_close(&p);
    sink_free(cs);
    sink_free(ss);
    free(clog);
    free(slog);
}
RS_TEST_PER_BACKEND(, half_close_both_directions)

static void shutdown_write_sends_queued_writes_before_fin(rs_event_loop_backend_t b) {
    conn_pair_t p;
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    const size_t sizes[3] = {4 * 1024 * 1024, 1024 * 1024, 100};
    const size_t total = 4 * 1024 * 1024 + 1024 * 1024 + 100;
    uint8_t *data = (uint8_t *)malloc(total);
    sink_t *ss = sink_new(0);
    wlog_t *log = wlog_new();
    size_t off = 0;
    int i;
    assert_non_null(data);
    fill_pattern(data, total, 11);
    o.send_buffer_size = 65536;
    pair_connect(&p, b, EP_IPV4, &o);
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.server, sink_on_readable, ss), RS_OK);
    for (i = 0; i < 3; ++i) {
        assert_int_equal(wlog_write(log, p.client, data + off, sizes[i]), RS_OK);
        off += sizes[i];
    }
    assert_true(rs_socket_get_pending_write_bytes(p.client) > 0); /* still queued */
    assert_int_equal(rs_socket_shutdown_dir(p.client, RS_SOCKET_DIR_WRITE), RS_OK);
    assert_int_equal(wlog_write(log, p.client, data, 1), RS_ESHUTDOWN);
    RS_TEST_RUN_UNTIL_NS(p.loop, ss->eof || ss->error, BIG_WAIT_NS);
    assert_true(ss->eof);
    assert_int_equal(ss->error, RS_OK);
    assert_int_equal(ss->total, total);
    assert_true(hash_final(&ss->hash) == hash_buffer(data, total));
    RUN_UNTIL(p.loop, log->count == 3);
    for (i = 0; i < 3; ++i) {
        assert_int_equal(log->order[i], i);
        assert_int_equal(log->error[i], RS_OK);
        assert_int_equal(log->bytes[i], sizes[i]);
    }
    pair_close(&p);
    sink_free(ss);
    free(log);
    free(data);
}
RS_TEST_PER_BACKEND(, shutdown_write_sends_queued_writes_before_fin)

/* ================================================================ 12. pause / resume, level-triggered */

static int bytes_waiting(const rs_socket_t *s) {
#if defined(_WIN32)
    u_long n = 0;
    assert_int_equal(ioctlsocket((SOCKET)rs_socket_get_fd(s), FIONREAD, &n), 0);
    return (int)n;
#else
    int n = -1;
    assert_int_equal(ioctl(rs_socket_get_fd(s), FIONREAD, &n), 0);
    return n;
#endif
}

/* Bytes written straight to a socket's descriptor: they are in the peer's
 * kernel queue when this returns (loopback), with no loop tick in between. */
static void raw_send(const rs_socket_t *s, const char *data, int len) {
#if defined(_WIN32)
    assert_int_equal(send((SOCKET)rs_socket_get_fd(s), data, len, 0), len);
#else
    assert_int_equal(send(rs_socket_get_fd(s), data, (size_t)len, 0), len);
#endif
}

/* Waits, bounded, until `want` bytes wait in the kernel for s. */
static void wait_bytes_waiting(const rs_socket_t *s, int want) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    while (bytes_waiting(s) != want) {
        assert_true(rs_clock_now_ns() < deadline);
        rs_thread_sleep_ns(RS_NS_PER_MS);
    }
}

typedef struct short_read {
    rs_socket_t *peer;
    sink_t *sink; /* reads from the second call on */
    int calls;
    uint8_t got[64];
    size_t first_n;
    int second_err;
    size_t second_n;
} short_read_t;

/* First call: a short read, then five more bytes reach the kernel, then a
 * second read within the same callback. */
static void short_read_on_readable(rs_socket_t *s, int error, void *user_data) {
    short_read_t *t = (short_read_t *)user_data;
    rs_byte_buf_t buf = rs_byte_buf_from_array(t->got, 0, sizeof(t->got));
    if (t->calls++ > 0) {
        sink_on_readable(s, error, t->sink);
        return;
    }
    assert_int_equal(rs_socket_read(s, &buf, &t->first_n), RS_OK);
    assert_int_equal(t->first_n, 5);
    raw_send(t->peer, "56789", 5);
    t->second_err = rs_socket_read(s, &buf, &t->second_n);
}

/* A read that fills less than it asked for took all that waited, so the
 * next one would only say EAGAIN: the readiness backends answer that without
 * a system call. Bytes that arrive in between must still reach the reader,
 * through the next readable event. */
static void data_after_a_short_read_is_still_reported(rs_event_loop_backend_t b) {
    static const char later[] = "56789";
    conn_pair_t p;
    short_read_t t;
    memset(&t, 0, sizeof(t));
    t.sink = sink_new(16);
    pair_connect(&p, b, EP_IPV4, NULL);
    t.peer = p.client;
    raw_send(p.client, "01234", 5);
    if (b != RS_EVENT_LOOP_BACKEND_IO_URING) {
        wait_bytes_waiting(p.server, 5);
    }
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.server, short_read_on_readable, &t), RS_OK);
    RUN_UNTIL(p.loop, t.first_n + t.second_n + t.sink->total == 10);
    assert_memory_equal(t.got, "01234", 5);
    if (b == RS_EVENT_LOOP_BACKEND_IO_URING) {
        /* Completions: the second read copies whatever the ring has received. */
        assert_true(t.second_err == RS_OK || t.second_err == RS_EAGAIN);
        assert_memory_equal(t.got + 5, "56789", t.second_n);
        assert_memory_equal(t.sink->store, &later[t.second_n], t.sink->total);
    } else {
        assert_int_equal(t.second_err, RS_EAGAIN); /* no system call for it */
        assert_int_equal(t.second_n, 0);
        assert_int_equal(t.sink->total, 5);
        assert_memory_equal(t.sink->store, "56789", 5);
    }
    assert_int_equal(t.sink->error, RS_OK);
    pair_close(&p);
    sink_free(t.sink);
}
RS_TEST_PER_BACKEND(, data_after_a_short_read_is_still_reported)

/* The end of the stream that came with the last bytes is reported after a
 * short read took them. */
static void eof_after_a_short_read_is_reported(rs_event_loop_backend_t b) {
    conn_pair_t p;
    sink_t *sink = sink_new(16);
    pair_connect(&p, b, EP_IPV4, NULL);
    raw_send(p.client, "01234", 5);
    assert_int_equal(rs_socket_shutdown_dir(p.client, RS_SOCKET_DIR_WRITE), RS_OK);
    if (b != RS_EVENT_LOOP_BACKEND_IO_URING) {
        wait_bytes_waiting(p.server, 5);
    }
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.server, sink_on_readable, sink), RS_OK);
    RUN_UNTIL(p.loop, sink->eof || sink->error);
    assert_int_equal(sink->error, RS_OK);
    assert_int_equal(sink->total, 5);
    assert_memory_equal(sink->store, "01234", 5);
    pair_close(&p);
    sink_free(sink);
}
RS_TEST_PER_BACKEND(, eof_after_a_short_read_is_reported)

/* A caller that reads without a subscription gets no readable events, so a
 * short read must not make its next read answer RS_EAGAIN by itself. */
static void short_read_without_a_reader_still_reads(rs_event_loop_backend_t b) {
    conn_pair_t p;
    uint8_t got[64];
    rs_byte_buf_t buf = rs_byte_buf_from_array(got, 0, sizeof(got));
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    size_t n = 0;
    int err;
    pair_connect(&p, b, EP_IPV4, NULL);
    raw_send(p.client, "01234", 5);
    while (buf.len < 5) {
        assert_true(rs_clock_now_ns() < deadline);
        rs_event_loop_run_once(p.loop, 1);
        err = rs_socket_read(p.server, &buf, &n);
        assert_true(err == RS_OK || err == RS_EAGAIN);
    }
    raw_send(p.client, "56789", 5);
    if (b != RS_EVENT_LOOP_BACKEND_IO_URING) {
        wait_bytes_waiting(p.server, 5);
        assert_int_equal(rs_socket_read(p.server, &buf, &n), RS_OK);
    }
    while (buf.len < 10) {
        assert_true(rs_clock_now_ns() < deadline);
        rs_event_loop_run_once(p.loop, 1);
        err = rs_socket_read(p.server, &buf, &n);
        assert_true(err == RS_OK || err == RS_EAGAIN);
    }
    assert_memory_equal(got, "0123456789", 10);
    pair_close(&p);
}
RS_TEST_PER_BACKEND(, short_read_without_a_reader_still_reads)

static void pause_reading_stops_readable_callbacks(rs_event_loop_backend_t b) {
    conn_pair_t p;
    sink_t *sink = sink_new(4096);
    wlog_t *log = wlog_new();
    uint8_t data[2000];
    int round;
    fill_pattern(data, sizeof(data), 12);
    pair_connect(&p, b, EP_IPV4, NULL);
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.client, sink_on_readable, sink), RS_OK);

    for (round = 0; round < 2; ++round) {
        int calls = sink->calls;
        assert_int_equal(rs_socket_pause_reading(p.client), RS_OK);
        assert_int_equal(wlog_write(log, p.server, data + round * 1000, 1000), RS_OK);
        RUN_UNTIL(p.loop, bytes_waiting(p.client) == 1000);
        run_ticks(p.loop, 20);
        assert_int_equal(sink->calls, calls); /* data waits, no callbacks */
        assert_int_equal(sink->total, (size_t)round * 1000);
        assert_int_equal(rs_socket_resume_reading(p.client), RS_OK);
        RUN_UNTIL(p.loop, sink->total >= (size_t)(round + 1) * 1000);
        assert_int_equal(sink->total, (size_t)(round + 1) * 1000);
    }
    assert_memory_equal(sink->store, data, sizeof(data));
    assert_int_equal(sink->error, RS_OK);
    pair_close(&p);
    sink_free(sink);
    free(log);
}
RS_TEST_PER_BACKEND(, pause_reading_stops_readable_callbacks)

static void readable_is_level_triggered(rs_event_loop_backend_t b) {
    conn_pair_t p;
    sink_t *sink = sink_new(4096);
    wlog_t *log = wlog_new();
    uint8_t data[1000];
    fill_pattern(data, sizeof(data), 13);
    pair_connect(&p, b, EP_IPV4, NULL);
    sink->chunk_limit = 100; /* one read of 100 bytes per callback */
    sink->max_reads = 1;
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.client, sink_on_readable, sink), RS_OK);
    assert_int_equal(wlog_write(log, p.server, data, sizeof(data)), RS_OK);
    RUN_UNTIL(p.loop, sink->total >= sizeof(data));
    assert_int_equal(sink->total, sizeof(data));
    assert_true(sink->calls >= 10);
    assert_memory_equal(sink->store, data, sizeof(data));
    pair_close(&p);
    sink_free(sink);
    free(log);
}
RS_TEST_PER_BACKEND(, readable_is_level_triggered)

/* ================================================================ 13. errors */

static void write_on_unconnected_socket_is_enotconn(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    rs_socket_t *s = sock_new(&o);
    wlog_t *log = wlog_new();
    rs_endpoint_t ep;
    assert_int_equal(wlog_write(log, s, "x", 1), RS_ENOTCONN);
    assert_int_equal(rs_socket_get_remote_address(s, &ep), RS_ENOTCONN);
    make_endpoint(EP_IPV4, &ep);
    assert_int_equal(rs_socket_bind(s, &ep), RS_OK);
    assert_int_equal(wlog_write(log, s, "x", 1), RS_ENOTCONN);
    assert_int_equal(rs_socket_listen(s, 0), RS_OK);
    assert_int_equal(wlog_write(log, s, "x", 1), RS_ENOTCONN);
    run_ticks(loop, 3);
    assert_int_equal(log->count, 0);
    rs_socket_destroy(s);
    rs_event_loop_destroy(loop);
    free(log);
}
RS_TEST_PER_BACKEND(, write_on_unconnected_socket_is_enotconn)

static void write_after_shutdown_is_eshutdown(rs_event_loop_backend_t b) {
    conn_pair_t p;
    wlog_t *log = wlog_new();
    pair_connect(&p, b, EP_IPV4, NULL);
    assert_int_equal(rs_socket_shutdown_dir(p.client, RS_SOCKET_DIR_WRITE), RS_OK);
    assert_int_equal(wlog_write(log, p.client, "x", 1), RS_ESHUTDOWN);
    assert_int_equal(wlog_write(log, p.client, "y", 1), RS_ESHUTDOWN);
    assert_int_equal(rs_socket_get_pending_write_bytes(p.client), 0);
    /* The read side of the other end still works. */
    assert_int_equal(wlog_write(log, p.server, "z", 1), RS_OK);
    RUN_UNTIL(p.loop, log->count == 1);
    assert_int_equal(log->error[0], RS_OK);
    run_ticks(p.loop, 3);
    assert_int_equal(log->count, 1);
    pair_close(&p);
    free(log);
}
RS_TEST_PER_BACKEND(, write_after_shutdown_is_eshutdown)

static void invalid_arguments_are_einval(rs_event_loop_backend_t b) {
    conn_pair_t p;
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    rs_socket_options_t bad;
    rs_socket_t *s;
    wlog_t *log = wlog_new();
    rs_endpoint_t v6, zero;
    uint8_t mem[4];
    rs_byte_buf_t full = rs_byte_buf_from_array(mem, sizeof(mem), sizeof(mem));
    size_t n = 5;
    int err = 0;
    connect_rec_t rec;
    memset(&rec, 0, sizeof(rec));
    pair_connect(&p, b, EP_IPV4, NULL);

    /* Construction. */
    bad = o;
    bad.type = (rs_socket_type_t)7;
    assert_null(rs_socket_new(&bad, &err));
    assert_int_equal(err, RS_EINVAL);
    bad = o;
    bad.network_interface_name = "";
    err = 0;
    assert_null(rs_socket_new(&bad, &err));
    assert_int_equal(err, RS_EINVAL);

    /* Connected sockets. */
    assert_int_equal(rs_socket_write(NULL, rs_byte_cursor_from_cstr("x"), wlog_on_written, NULL), RS_EINVAL);
    assert_int_equal(rs_socket_write(p.client, rs_byte_cursor_from_cstr("x"), NULL, NULL), RS_EINVAL);
    assert_int_equal(rs_socket_read(p.client, &full, &n), RS_EINVAL);
    assert_int_equal(n, 0);
    assert_int_equal(rs_socket_read(p.client, NULL, &n), RS_EINVAL);
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.client, NULL, NULL), RS_EINVAL);
    assert_int_equal(rs_socket_shutdown_dir(p.client, (rs_socket_dir_t)0), RS_EINVAL);
    assert_int_equal(rs_socket_shutdown_dir(p.client, (rs_socket_dir_t)8), RS_EINVAL);
    assert_int_equal(rs_socket_get_bound_address(p.client, NULL), RS_EINVAL);
    assert_int_equal(rs_socket_get_remote_address(p.client, NULL), RS_EINVAL);
    assert_int_equal(rs_socket_assign_to_loop(p.server, p.loop), RS_EBUSY);
    assert_int_equal(rs_socket_close(NULL), RS_EINVAL);

    /* Connect and bind arguments. */
    s = sock_new(&o);
    zero = p.listen_ep;
    zero.port = 0;
    assert_int_equal(rs_endpoint_from_ip(&v6, "::1", p.listen_ep.port), RS_OK);
    assert_int_equal(rs_socket_connect(s, &zero, p.loop, rec_on_connect, &rec), RS_EINVAL);
    assert_int_equal(rs_socket_connect(s, &v6, p.loop, rec_on_connect, &rec), RS_EINVAL);
    assert_int_equal(rs_socket_connect(s, NULL, p.loop, rec_on_connect, &rec), RS_EINVAL);
    assert_int_equal(rs_socket_connect(s, &p.listen_ep, NULL, rec_on_connect, &rec), RS_EINVAL);
    assert_int_equal(rs_socket_connect(s, &p.listen_ep, p.loop, NULL, &rec), RS_EINVAL);
    assert_int_equal(rs_socket_bind(s, &v6), RS_EINVAL);
    assert_int_equal(rs_socket_bind(s, NULL), RS_EINVAL);
    assert_int_equal(rs_socket_start_accept(s, p.loop, NULL, NULL), RS_EINVAL);
    run_ticks(p.loop, 5);
    assert_int_equal(rec.calls, 0); /* a call that fails never calls back */
    assert_null(rs_socket_get_loop(s));

    /* The socket is still good for a proper connect. */
    assert_int_equal(rs_socket_connect(s, &p.listen_ep, p.loop, rec_on_connect, &rec), RS_OK);
    RUN_UNTIL(p.loop, rec.calls > 0);
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.error, RS_OK);
    RUN_UNTIL(p.loop, p.extra_accepts == 1);
    rs_socket_destroy(s);
    assert_int_equal(log->count, 0);
    pair_close(&p);
    free(log);
}
RS_TEST_PER_BACKEND(, invalid_arguments_are_einval)

/* ================================================================ 14. options */

static void check_connection_options(const rs_socket_t *s) {
    int fd = rs_socket_get_fd(s);
    assert_true(fd >= 0);
    assert_int_not_equal(sockopt_int(fd, IPPROTO_TCP, TCP_NODELAY), 0);
    assert_int_not_equal(sockopt_int(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
#if defined(_WIN32)
    /* Winsock's keepalive timers cannot be read back everywhere (Wine), and
     * its buffers are not doubled. */
    assert_true(sockopt_int(fd, SOL_SOCKET, SO_SNDBUF) >= 65536);
    assert_true(sockopt_int(fd, SOL_SOCKET, SO_RCVBUF) >= 98304);
#else
    assert_int_equal(sockopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE), 31);
    assert_int_equal(sockopt_int(fd, IPPROTO_TCP, TCP_KEEPINTVL), 7);
    assert_int_equal(sockopt_int(fd, IPPROTO_TCP, TCP_KEEPCNT), 4);
    assert_int_equal(sockopt_int(fd, SOL_SOCKET, SO_SNDBUF), 2 * 65536); /* Linux doubles them */
    assert_int_equal(sockopt_int(fd, SOL_SOCKET, SO_RCVBUF), 2 * 98304);
#endif
}

static void socket_options_reach_the_fd(rs_event_loop_backend_t b) {
    conn_pair_t p;
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    rs_socket_t *plain;
    o.tcp_nodelay = true;
    o.keepalive = true;
    o.keepalive_idle_s = 31;
    o.keepalive_interval_s = 7;
#if !defined(_WIN32) /* the probe count needs Windows 10 1703 (not Wine): RS_ENOTSUP there */
    o.keepalive_probes = 4;
#endif
    o.send_buffer_size = 65536;
    o.recv_buffer_size = 98304;
    pair_connect(&p, b, EP_IPV4, &o);
    check_connection_options(p.client);
    check_connection_options(p.server); /* accepted sockets get the listener's options */

    /* Defaults leave them off. */
    o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    plain = sock_new(&o);
    assert_int_equal(sockopt_int(rs_socket_get_fd(plain), IPPROTO_TCP, TCP_NODELAY), 0);
    assert_int_equal(sockopt_int(rs_socket_get_fd(plain), SOL_SOCKET, SO_KEEPALIVE), 0);
    assert_int_equal(sockopt_int(rs_socket_get_fd(plain), SOL_SOCKET, SO_REUSEADDR), 0);
    rs_socket_destroy(plain);
    pair_close(&p);
}
RS_TEST_PER_BACKEND(, socket_options_reach_the_fd)

/* Listener, connecting and accepted sockets alike, in both builds (accept4 and
 * SOCK_NONBLOCK | SOCK_CLOEXEC, or accept/socket then fcntl). */
#if !defined(_WIN32)
static void created_and_accepted_sockets_are_nonblocking_and_cloexec(rs_event_loop_backend_t b) {
    static const ep_kind_t kinds[] = {EP_IPV4, EP_UNIX_PATH};
    size_t i;
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); ++i) {
        conn_pair_t p;
        pair_connect(&p, b, kinds[i], NULL);
        rs_test_assert_fd_nonblocking_cloexec(rs_socket_get_fd(p.listener));
        rs_test_assert_fd_nonblocking_cloexec(rs_socket_get_fd(p.client));
        rs_test_assert_fd_nonblocking_cloexec(rs_socket_get_fd(p.server));
        pair_close(&p);
    }
}
#else
static void created_and_accepted_sockets_are_nonblocking_and_cloexec(rs_event_loop_backend_t b) {
    (void)b;
    posix_only_or_skip("no fcntl; Winsock handles are made non-inheritable and non-blocking by socket_win.c");
}
#endif
RS_TEST_PER_BACKEND(, created_and_accepted_sockets_are_nonblocking_and_cloexec)

static void ipv6_only_on_and_off(rs_event_loop_backend_t b) {
    conn_pair_t p;
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV6);
    rs_socket_options_t o4 = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    rs_socket_t *on;
    rs_endpoint_t v4, remote;
    static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    sink_t *sink = sink_new(64);
    wlog_t *log = wlog_new();

    o.ipv6_only = RS_SOCKET_IPV6_ONLY_ON;
    on = sock_new(&o);
    assert_int_equal(sockopt_int(rs_socket_get_fd(on), IPPROTO_IPV6, IPV6_V6ONLY), 1);
    rs_socket_destroy(on);

    /* Dual stack: a listener on :: takes an IPv4 client. */
    memset(&p, 0, sizeof(p));
    p.loop = rs_test_loop_new(b);
    o.ipv6_only = RS_SOCKET_IPV6_ONLY_OFF;
    assert_int_equal(rs_endpoint_from_ip(&p.bind_ep, "::", 0), RS_OK);
    listener_open(&p, &o, pair_on_accept, &p);
    assert_int_equal(sockopt_int(rs_socket_get_fd(p.listener), IPPROTO_IPV6, IPV6_V6ONLY), 0);
    assert_int_equal(rs_endpoint_from_ip(&v4, "127.0.0.1", p.listen_ep.port), RS_OK);
    p.client = sock_new(&o4);
    assert_int_equal(rs_socket_connect(p.client, &v4, p.loop, pair_on_connect, &p), RS_OK);
    RUN_UNTIL(p.loop, p.connect_calls > 0 && p.server != NULL);
    assert_int_equal(p.connect_error, RS_OK);
    assert_int_equal(rs_socket_get_remote_address(p.server, &remote), RS_OK);
    assert_int_equal(remote.domain, RS_SOCKET_DOMAIN_IPV6);
    assert_memory_equal(remote.addr, mapped, 16);
    assert_int_equal(rs_socket_assign_to_loop(p.server, p.loop), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(p.server, sink_on_readable, sink), RS_OK);
    assert_int_equal(wlog_write(log, p.client, "dual", 4), RS_OK);
    RUN_UNTIL(p.loop, sink->total >= 4 && log->count == 1);
    assert_memory_equal(sink->store, "dual", 4);
    pair_close(&p);
    sink_free(sink);
    free(log);
}
RS_TEST_PER_BACKEND(, ipv6_only_on_and_off)

#if !defined(_WIN32)
static void bind_to_interface_lo_works(rs_event_loop_backend_t b) {
    conn_pair_t p;
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    char name[IF_NAMESIZE + 1];
    socklen_t len = (socklen_t)sizeof(name);
    o.network_interface_name = "lo";
    pair_connect(&p, b, EP_IPV4, &o);
    memset(name, 0, sizeof(name));
    assert_int_equal(getsockopt(rs_socket_get_fd(p.client), SOL_SOCKET, SO_BINDTODEVICE, name, &len), 0);
    assert_string_equal(name, "lo");
    pair_close(&p);
}
#else
static void bind_to_interface_lo_works(rs_event_loop_backend_t b) {
    (void)b;
    posix_only_or_skip("no SO_BINDTODEVICE: RS_ENOTSUP (test_windows_socket.c)");
}
#endif
RS_TEST_PER_BACKEND(, bind_to_interface_lo_works)

static void bind_to_missing_interface_is_enodev(rs_event_loop_backend_t b) {
    posix_only_or_skip("no SO_BINDTODEVICE: RS_ENOTSUP (test_windows_socket.c)");
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    int err = 0;
    o.network_interface_name = "nosuchif0";
    assert_null(rs_socket_new(&o, &err));
    assert_int_equal(err, RS_ENODEV);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(, bind_to_missing_interface_is_enodev)

typedef struct accept_count {
    int calls[2];
    int errors;
} accept_count_t;

static void counting_on_accept_0(rs_socket_t *l, int error, rs_socket_t *new_socket, void *user_data) {
    accept_count_t *c = (accept_count_t *)user_data;
    (void)l;
    if (error) {
        c->errors++;
        return;
    }
    c->calls[0]++;
    rs_socket_destroy(new_socket);
}

static void counting_on_accept_1(rs_socket_t *l, int error, rs_socket_t *new_socket, void *user_data) {
    accept_count_t *c = (accept_count_t *)user_data;
    (void)l;
    if (error) {
        c->errors++;
        return;
    }
    c->calls[1]++;
    rs_socket_destroy(new_socket);
}

static int connect_calls_sum(const connect_rec_t *rec, int n) {
    int i, sum = 0;
    for (i = 0; i < n; ++i) {
        sum += rec[i].calls;
    }
    return sum;
}

static void reuseport_allows_two_listeners(rs_event_loop_backend_t b) {
    posix_only_or_skip("no SO_REUSEPORT: RS_ENOTSUP (test_windows_socket.c)");
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    rs_socket_t *l0, *l1;
    rs_socket_t *clients[16];
    connect_rec_t rec[16];
    accept_count_t count;
    rs_endpoint_t ep, bound, bound1;
    int i;
    memset(&count, 0, sizeof(count));
    memset(rec, 0, sizeof(rec));
    o.reuseport = true;
    make_endpoint(EP_IPV4, &ep);
    l0 = sock_new(&o);
#if !defined(_WIN32) /* skipped there, above */
    assert_int_equal(sockopt_int(rs_socket_get_fd(l0), SOL_SOCKET, SO_REUSEPORT), 1);
#endif
    assert_int_equal(rs_socket_bind(l0, &ep), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(l0, &bound), RS_OK);
    l1 = sock_new(&o);
    assert_int_equal(rs_socket_bind(l1, &bound), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(l1, &bound1), RS_OK);
    assert_true(rs_endpoint_equal(&bound, &bound1));
    assert_int_equal(rs_socket_listen(l0, 0), RS_OK);
    assert_int_equal(rs_socket_listen(l1, 0), RS_OK);
    assert_int_equal(rs_socket_start_accept(l0, loop, counting_on_accept_0, &count), RS_OK);
    assert_int_equal(rs_socket_start_accept(l1, loop, counting_on_accept_1, &count), RS_OK);
    for (i = 0; i < 16; ++i) {
        clients[i] = sock_new(&o);
        assert_int_equal(rs_socket_connect(clients[i], &bound, loop, rec_on_connect, &rec[i]), RS_OK);
    }
    RUN_UNTIL(loop, count.calls[0] + count.calls[1] == 16);
    RUN_UNTIL(loop, connect_calls_sum(rec, 16) == 16);
    for (i = 0; i < 16; ++i) {
        assert_int_equal(rec[i].error, RS_OK);
        rs_socket_destroy(clients[i]);
    }
    assert_int_equal(count.errors, 0);
    rs_socket_destroy(l0);
    rs_socket_destroy(l1);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(, reuseport_allows_two_listeners)

/* ================================================================ 15. listener closed from another thread */

typedef struct xaccept {
    rs_mutex_t mutex;
    rs_condvar_t cond;
    int accepted;
    int errors;
    bool off_thread; /* a callback ran off the loop thread */
    rs_event_loop_t *loop;
} xaccept_t;

static void xaccept_on_accept(rs_socket_t *l, int error, rs_socket_t *new_socket, void *user_data) {
    xaccept_t *x = (xaccept_t *)user_data;
    bool on_thread = rs_event_loop_is_on_loop_thread(x->loop);
    (void)l;
    if (new_socket) {
        rs_socket_destroy(new_socket);
    }
    rs_mutex_lock(&x->mutex);
    if (!on_thread) {
        x->off_thread = true;
    }
    if (error) {
        x->errors++;
    } else {
        x->accepted++;
    }
    rs_condvar_broadcast(&x->cond);
    rs_mutex_unlock(&x->mutex);
}

static int xaccept_wait(xaccept_t *x, int n) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    int got;
    rs_mutex_lock(&x->mutex);
    while (x->accepted < n) {
        if (rs_condvar_wait_until(&x->cond, &x->mutex, deadline) == RS_ETIMEDOUT) {
            break;
        }
    }
    got = x->accepted;
    rs_mutex_unlock(&x->mutex);
    return got;
}

/* A blocking connect from this thread; returns 0 or errno. */
#if defined(_WIN32)
static int raw_connect_ipv4(const rs_endpoint_t *ep) {
    struct sockaddr_in sin;
    SOCKET h = socket(AF_INET, SOCK_STREAM, 0);
    int e = 0;
    assert_true(h != INVALID_SOCKET);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)ep->port);
    memcpy(&sin.sin_addr, ep->addr, 4);
    if (connect(h, (const struct sockaddr *)&sin, (int)sizeof(sin)) != 0) {
        e = WSAGetLastError() == WSAECONNREFUSED ? ECONNREFUSED : WSAGetLastError();
    }
    closesocket(h);
    return e;
}
#else
static int raw_connect_ipv4(const rs_endpoint_t *ep) {
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int r, e = 0;
    assert_true(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)ep->port);
    memcpy(&sin.sin_addr, ep->addr, 4);
    r = connect(fd, (const struct sockaddr *)&sin, (socklen_t)sizeof(sin));
    if (r != 0) {
        e = errno;
    }
    close(fd);
    return e;
}
#endif

static void listener_closed_from_another_thread(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    rs_socket_t *l;
    rs_endpoint_t ep, bound;
    xaccept_t x;
    memset(&x, 0, sizeof(x));
    assert_int_equal(rs_mutex_init(&x.mutex), RS_OK);
    assert_int_equal(rs_condvar_init(&x.cond), RS_OK);
    x.loop = loop;
    make_endpoint(EP_IPV4, &ep);
    l = sock_new(&o);
    assert_int_equal(rs_socket_bind(l, &ep), RS_OK);
    assert_int_equal(rs_socket_listen(l, 0), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(l, &bound), RS_OK);
    assert_int_equal(rs_socket_start_accept(l, loop, xaccept_on_accept, &x), RS_OK);
    assert_int_equal(rs_event_loop_start(loop), RS_OK);

    assert_int_equal(raw_connect_ipv4(&bound), 0);
    assert_int_equal(xaccept_wait(&x, 1), 1);

    /* Blocks until the loop has closed it. */
    assert_int_equal(rs_socket_close(l), RS_OK);
    assert_false(rs_socket_is_open(l));
    assert_int_equal(rs_socket_get_fd(l), -1);
    assert_int_equal(raw_connect_ipv4(&bound), ECONNREFUSED);
    assert_int_equal(rs_socket_close(l), RS_OK); /* idempotent, still from afar */
    rs_socket_destroy(l); /* closed, nothing in flight: any thread */

    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    rs_mutex_lock(&x.mutex);
    assert_int_equal(x.accepted, 1);
    assert_int_equal(x.errors, 0);
    assert_false(x.off_thread);
    rs_mutex_unlock(&x.mutex);
    rs_event_loop_destroy(loop);
    rs_condvar_cleanup(&x.cond);
    rs_mutex_cleanup(&x.mutex);
}
RS_TEST_PER_BACKEND(, listener_closed_from_another_thread)

/* ================================================================ 16. many connections */

#define MANY 200
#define MANY_BYTES 65536

typedef struct many_client {
    rs_socket_t *sock;
    sink_t *sink;
    uint8_t *data;
    int connect_calls;
    int connect_error;
    int setup_error;
    int write_calls;
    int write_error;
} many_client_t;

typedef struct many_server {
    rs_event_loop_t *loop;
    echo_conn_t *conns[MANY + 8];
    int n;
    int accept_errors;
    int setup_error;
} many_server_t;

static void many_on_written(rs_socket_t *s, int error, size_t n, void *user_data) {
    many_client_t *c = (many_client_t *)user_data;
    (void)s;
    (void)n;
    c->write_calls++;
    c->write_error = error;
}

static void many_on_connect(rs_socket_t *s, int error, void *user_data) {
    many_client_t *c = (many_client_t *)user_data;
    int err;
    c->connect_calls++;
    c->connect_error = error;
    if (error) {
        return;
    }
    err = rs_socket_subscribe_to_readable_events(s, sink_on_readable, c->sink);
    if (!err) {
        err = rs_socket_write(s, rs_byte_cursor_from_array(c->data, MANY_BYTES), many_on_written, c);
    }
    c->setup_error = err;
}

static void many_on_accept(rs_socket_t *l, int error, rs_socket_t *new_socket, void *user_data) {
    many_server_t *m = (many_server_t *)user_data;
    echo_conn_t *c;
    int err;
    (void)l;
    if (error) {
        m->accept_errors++;
        return;
    }
    if (m->n >= MANY + 8) {
        rs_socket_destroy(new_socket);
        m->setup_error = RS_EOVERFLOW;
        return;
    }
    c = (echo_conn_t *)calloc(1, sizeof(echo_conn_t));
    if (!c) {
        rs_socket_destroy(new_socket);
        m->setup_error = RS_ENOMEM;
        return;
    }
    c->sock = new_socket;
    m->conns[m->n++] = c;
    err = rs_socket_assign_to_loop(new_socket, m->loop);
    if (!err) {
        err = rs_socket_subscribe_to_readable_events(new_socket, echo_on_readable, c);
    }
    if (err) {
        m->setup_error = err;
    }
}

static int many_done(many_client_t *clients) {
    int i, done = 0;
    for (i = 0; i < MANY; ++i) {
        if (clients[i].sink->total >= MANY_BYTES || clients[i].connect_error || clients[i].sink->error ||
            clients[i].sink->eof) {
            ++done;
        }
    }
    return done;
}

static int many_write_calls(many_client_t *clients) {
    int i, n = 0;
    for (i = 0; i < MANY; ++i) {
        n += clients[i].write_calls;
    }
    return n;
}

static void many_connections_over(rs_event_loop_backend_t b, ep_kind_t kind) {
    rs_socket_options_t o = sock_opts(kind_domain(kind));
    many_server_t *m = (many_server_t *)calloc(1, sizeof(many_server_t));
    many_client_t *clients = (many_client_t *)calloc(MANY, sizeof(many_client_t));
    rs_socket_t *listener;
    rs_endpoint_t ep, bound;
    int i;
    assert_non_null(m);
    assert_non_null(clients);
    m->loop = rs_test_loop_new(b);
    make_endpoint(kind, &ep);
    listener = sock_new(&o);
    assert_int_equal(rs_socket_bind(listener, &ep), RS_OK);
    assert_int_equal(rs_socket_listen(listener, 0), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(listener, &bound), RS_OK);
    assert_int_equal(rs_socket_start_accept(listener, m->loop, many_on_accept, m), RS_OK);
    for (i = 0; i < MANY; ++i) {
        many_client_t *c = &clients[i];
        c->sink = sink_new(MANY_BYTES);
        c->data = (uint8_t *)malloc(MANY_BYTES);
        assert_non_null(c->data);
        fill_pattern(c->data, MANY_BYTES, 1000 + (uint64_t)i);
        c->sock = sock_new(&o);
        assert_int_equal(rs_socket_connect(c->sock, &bound, m->loop, many_on_connect, c), RS_OK);
    }
    RS_TEST_RUN_UNTIL_NS(m->loop, many_done(clients) == MANY, BIG_WAIT_NS);
    RUN_UNTIL(m->loop, many_write_calls(clients) == MANY);
    assert_int_equal(m->n, MANY);
    assert_int_equal(m->accept_errors, 0);
    assert_int_equal(m->setup_error, RS_OK);
    for (i = 0; i < MANY; ++i) {
        many_client_t *c = &clients[i];
        assert_int_equal(c->connect_calls, 1);
        assert_int_equal(c->connect_error, RS_OK);
        assert_int_equal(c->setup_error, RS_OK);
        assert_int_equal(c->write_calls, 1);
        assert_int_equal(c->write_error, RS_OK);
        assert_int_equal(c->sink->error, RS_OK);
        assert_int_equal(c->sink->total, MANY_BYTES);
        assert_memory_equal(c->sink->store, c->data, MANY_BYTES);
    }
    for (i = 0; i < m->n; ++i) {
        assert_int_equal(m->conns[i]->error, RS_OK);
        assert_int_equal(m->conns[i]->echoed, MANY_BYTES);
    }

    for (i = 0; i < MANY; ++i) {
        rs_socket_destroy(clients[i].sock);
    }
    for (i = 0; i < m->n; ++i) {
        rs_socket_destroy(m->conns[i]->sock);
    }
    rs_socket_destroy(listener);
    cleanup_endpoint(&ep);
    rs_event_loop_destroy(m->loop);
    for (i = 0; i < m->n; ++i) {
        free(m->conns[i]);
    }
    for (i = 0; i < MANY; ++i) {
        sink_free(clients[i].sink);
        free(clients[i].data);
    }
    free(clients);
    free(m);
}
static void many_connections_echo_concurrently(rs_event_loop_backend_t b) {
    many_connections_over(b, EP_IPV4);
}
static void many_connections_echo_concurrently_unix_path(rs_event_loop_backend_t b) {
    unix_or_skip();
    many_connections_over(b, EP_UNIX_PATH);
}
RS_TEST_PER_BACKEND(, many_connections_echo_concurrently)
RS_TEST_PER_BACKEND(, many_connections_echo_concurrently_unix_path)

/* ---------------------------------------------------------------- main */

/* rs_socket_write's documented results on a socket that is not writable:
 * closed (RS_EBADF), unconnected (RS_ENOTCONN), bad arguments (RS_EINVAL);
 * none of them calls on_written. */
static void socket_write_results_are_documented(rs_event_loop_backend_t b) {
    conn_pair_t p;
    wlog_t *log = wlog_new();
    rs_socket_options_t o = sock_opts(RS_SOCKET_DOMAIN_IPV4);
    rs_socket_t *fresh = sock_new(&o);
    rs_byte_cursor_t no_bytes;
    pair_connect(&p, b, EP_IPV4, NULL);
    log->reqs[0].log = log;
    assert_int_equal(rs_socket_write(NULL, rs_byte_cursor_from_array("x", 1), wlog_on_written, &log->reqs[0]),
                     RS_EINVAL);
    assert_int_equal(rs_socket_write(p.client, rs_byte_cursor_from_array("x", 1), NULL, NULL), RS_EINVAL);
    no_bytes.ptr = NULL;
    no_bytes.len = 1;
    assert_int_equal(rs_socket_write(p.client, no_bytes, wlog_on_written, &log->reqs[0]), RS_EINVAL);
    assert_int_equal(wlog_write(log, fresh, "x", 1), RS_ENOTCONN);
    assert_int_equal(rs_socket_close(p.client), RS_OK);
    assert_int_equal(wlog_write(log, p.client, "x", 1), RS_EBADF);
    assert_int_equal(rs_event_loop_run_once(p.loop, 0), RS_OK);
    assert_int_equal(log->count, 0);
    rs_socket_destroy(fresh);
    pair_close(&p);
    free(log);
}
RS_TEST_PER_BACKEND(, socket_write_results_are_documented)

int main(void) {
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(, tcp_echo_ipv4),
        RS_TEST_PER_BACKEND_TESTS(, tcp_echo_ipv6),
        RS_TEST_PER_BACKEND_TESTS(, tcp_echo_unix_path),
        RS_TEST_PER_BACKEND_TESTS(, tcp_echo_unix_abstract),
        RS_TEST_PER_BACKEND_TESTS(, bind_port_zero_gives_a_real_port_ipv4),
        RS_TEST_PER_BACKEND_TESTS(, bind_port_zero_gives_a_real_port_ipv6),
        RS_TEST_PER_BACKEND_TESTS(, bind_same_unix_path_twice_is_addrinuse),
        RS_TEST_PER_BACKEND_TESTS(, connect_refused_is_reported_async_ipv4),
        RS_TEST_PER_BACKEND_TESTS(, connect_refused_is_reported_async_ipv6),
        RS_TEST_PER_BACKEND_TESTS(, connect_refused_is_reported_async_unix_path),
        RS_TEST_PER_BACKEND_TESTS(, socket_calls_off_the_loop_thread_are_refused),
        RS_TEST_PER_BACKEND_TESTS(, socket_write_results_are_documented),
        RS_TEST_PER_BACKEND_TESTS(, destroy_before_connect_completes_cancels_once_ipv4),
        RS_TEST_PER_BACKEND_TESTS(, destroy_before_connect_completes_cancels_once_unix_path),
        RS_TEST_PER_BACKEND_TESTS(, destroy_after_immediate_refusal_completes_once),
        RS_TEST_PER_BACKEND_TESTS(, destroy_listener_inside_accept_callback),
        RS_TEST_PER_BACKEND_TESTS(, destroy_inside_write_callback_cancels_queued_writes_in_order),
        RS_TEST_PER_BACKEND_TESTS(, destroy_inside_connect_callback),
        RS_TEST_PER_BACKEND_TESTS(, destroy_inside_readable_callback_cancels_queued_writes),
        RS_TEST_PER_BACKEND_TESTS(, zero_length_write_completes_in_order),
        RS_TEST_PER_BACKEND_TESTS(, data_after_a_short_read_is_still_reported),
        RS_TEST_PER_BACKEND_TESTS(, eof_after_a_short_read_is_reported),
        RS_TEST_PER_BACKEND_TESTS(, short_read_without_a_reader_still_reads),
        RS_TEST_PER_BACKEND_TESTS(, client_bound_before_connect_keeps_its_address),
        RS_TEST_PER_BACKEND_TESTS(, accepted_socket_can_move_to_another_loop),
        RS_TEST_PER_BACKEND_TESTS(, closed_socket_can_be_destroyed_from_any_thread),
        RS_TEST_PER_BACKEND_TESTS(, destroy_peer_from_a_callback_in_the_same_tick),
        RS_TEST_PER_BACKEND_TESTS(, stop_accept_pauses_accepting),
        RS_TEST_PER_BACKEND_TESTS(, write_completion_is_async_and_in_order),
        RS_TEST_PER_BACKEND_TESTS(, large_write_64mib_in_one_write),
        RS_TEST_PER_BACKEND_TESTS(, large_write_64mib_in_1000_writes),
        RS_TEST_PER_BACKEND_TESTS(, large_write_64mib_in_one_write_unix_path),
        RS_TEST_PER_BACKEND_TESTS(, read_delivers_all_data_before_eof_then_stops),
        RS_TEST_PER_BACKEND_TESTS(, half_close_both_directions),
        RS_TEST_PER_BACKEND_TESTS(, shutdown_write_sends_queued_writes_before_fin),
        RS_TEST_PER_BACKEND_TESTS(, pause_reading_stops_readable_callbacks),
        RS_TEST_PER_BACKEND_TESTS(, readable_is_level_triggered),
        RS_TEST_PER_BACKEND_TESTS(, write_on_unconnected_socket_is_enotconn),
        RS_TEST_PER_BACKEND_TESTS(, write_after_shutdown_is_eshutdown),
        RS_TEST_PER_BACKEND_TESTS(, invalid_arguments_are_einval),
        RS_TEST_PER_BACKEND_TESTS(, socket_options_reach_the_fd),
        RS_TEST_PER_BACKEND_TESTS(, ipv6_only_on_and_off),
        RS_TEST_PER_BACKEND_TESTS(, bind_to_interface_lo_works),
        RS_TEST_PER_BACKEND_TESTS(, bind_to_missing_interface_is_enodev),
        RS_TEST_PER_BACKEND_TESTS(, reuseport_allows_two_listeners),
        RS_TEST_PER_BACKEND_TESTS(, listener_closed_from_another_thread),
        RS_TEST_PER_BACKEND_TESTS(, many_connections_echo_concurrently),
        RS_TEST_PER_BACKEND_TESTS(, many_connections_echo_concurrently_unix_path),
        RS_TEST_PER_BACKEND_TESTS(, created_and_accepted_sockets_are_nonblocking_and_cloexec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
