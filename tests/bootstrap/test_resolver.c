/*
 * Host resolver: cache (TTL, stale-while-refresh, max_stale, LRU), failure
 * tracking and ordering, shared lookups, purge, destroy with lookups in
 * flight, name checks, allocation failures, localhost names answered without
 * a lookup, real getaddrinfo on a name the hosts file lists for both
 * families, and getaddrinfo's error codes (EAI_*, Winsock's on Windows)
 * mapped to the same results on every OS.
 *
 * Lookups go through a fake resolve function (a table of hosts, a call
 * counter and a gate that blocks workers) and a fake clock. Loops run on their
 * own threads; callbacks record under a mutex and the test thread asserts.
 * Every wait is bounded.
 */
#include "test_util.h"

#if !defined(_WIN32)
#include <netdb.h>
#endif

#define WAIT_NS (10 * RS_NS_PER_SEC)
#define TTL_MS 1000
#define MAX_ADDRS (2 * RS_HOST_RESOLVER_MAX_ADDRESSES)

/* ---------------------------------------------------------------- fake DNS */

#define FAKE_HOSTS_MAX 8

typedef struct fake_host {
    const char *name;
    int err6;
    int err4;
    const char *v6[4];
    const char *v4[4];
} fake_host_t;

/* One mutex guards the fake DNS, the clock and every probe. */
typedef struct ctx {
    rs_mutex_t mutex;
    rs_condvar_t cond;
    fake_host_t hosts[FAKE_HOSTS_MAX];
    size_t host_count;
    int unknown_err; /* answer for hosts not in the table: RS_OK gives one address per family */
    int calls;
    int blocked;     /* lookups waiting at the gate */
    bool gate_closed;
    uint64_t now_ns;
    int shutdowns;
    int purges;
    bool purge_on_loop;
    rs_event_loop_t *loop;
    rs_host_resolver_t *resolver;
} ctx_t;

static void ctx_init(ctx_t *c) {
    memset(c, 0, sizeof(*c));
    assert_int_equal(rs_mutex_init(&c->mutex), RS_OK);
    assert_int_equal(rs_condvar_init(&c->cond), RS_OK);
    c->now_ns = 1000 * RS_NS_PER_SEC;
    c->unknown_err = RS_EDNS_NOT_FOUND;
}

static void ctx_add_host(ctx_t *c, const fake_host_t *h) {
    rs_mutex_lock(&c->mutex);
    c->hosts[c->host_count++] = *h;
    rs_mutex_unlock(&c->mutex);
}

/* Replace a host's answer (the name must already be in the table). */
static void ctx_set_host(ctx_t *c, const fake_host_t *h) {
    size_t i;
    rs_mutex_lock(&c->mutex);
    for (i = 0; i < c->host_count; ++i) {
        if (strcmp(c->hosts[i].name, h->name) == 0) {
            c->hosts[i] = *h;
        }
    }
    rs_mutex_unlock(&c->mutex);
}

static int ctx_calls(ctx_t *c) {
    int n;
    rs_mutex_lock(&c->mutex);
    n = c->calls;
    rs_mutex_unlock(&c->mutex);
    return n;
}

static void ctx_advance_ms(ctx_t *c, uint64_t ms) {
    rs_mutex_lock(&c->mutex);
    c->now_ns += ms * RS_NS_PER_MS;
    rs_mutex_unlock(&c->mutex);
}

static void ctx_set_gate(ctx_t *c, bool closed) {
    rs_mutex_lock(&c->mutex);
    c->gate_closed = closed;
    rs_condvar_broadcast(&c->cond);
    rs_mutex_unlock(&c->mutex);
}

/* Wait until *value (guarded by c->mutex) reaches at least `target`. */
static bool ctx_wait_int(ctx_t *c, const int *value, int target) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    bool ok = true;
    rs_mutex_lock(&c->mutex);
    while (*value < target && ok) {
        ok = rs_condvar_wait_until(&c->cond, &c->mutex, deadline) == RS_OK;
    }
    ok = *value >= target;
    rs_mutex_unlock(&c->mutex);
    return ok;
}

static uint64_t fake_clock(void *user_data) {
    ctx_t *c = (ctx_t *)user_data;
    uint64_t now;
    rs_mutex_lock(&c->mutex);
    now = c->now_ns;
    rs_mutex_unlock(&c->mutex);
    return now;
}

static size_t fill(rs_endpoint_t *out, size_t capacity, const char *const *texts) {
    size_t n = 0;
    while (n < 4 && texts[n] && n < capacity) {
        if (rs_endpoint_from_ip(&out[n], texts[n], 0) != RS_OK) {
            break; /* the test then sees a short list */
        }
        ++n;
    }
    return n;
}

static int fake_resolve(const char *host_name, rs_socket_domain_t family, rs_endpoint_t *out, size_t capacity,
                        size_t *count_out, void *user_data) {
    static const char *const unknown_v6[] = {"2001:db8::7", NULL};
    static const char *const unknown_v4[] = {"192.0.2.7", NULL};
    ctx_t *c = (ctx_t *)user_data;
    bool v6 = family == RS_SOCKET_DOMAIN_IPV6;
    int err = RS_OK;
    size_t i;
    rs_mutex_lock(&c->mutex);
    ++c->calls;
    ++c->blocked;
    rs_condvar_broadcast(&c->cond);
    while (c->gate_closed) {
        rs_condvar_wait(&c->cond, &c->mutex);
    }
    --c->blocked;
    *count_out = 0;
    for (i = 0; i < c->host_count && strcmp(c->hosts[i].name, host_name) != 0; ++i) {
    }
    if (i < c->host_count) {
        err = v6 ? c->hosts[i].err6 : c->hosts[i].err4;
        if (err == RS_OK) {
            *count_out = fill(out, capacity, v6 ? c->hosts[i].v6 : c->hosts[i].v4);
        }
    } else {
        err = c->unknown_err;
        if (err == RS_OK) {
            *count_out = fill(out, capacity, v6 ? unknown_v6 : unknown_v4);
        }
    }
    rs_mutex_unlock(&c->mutex);
    return err;
}

static void on_shutdown_complete(void *user_data) {
    ctx_t *c = (ctx_t *)user_data;
    rs_mutex_lock(&c->mutex);
    ++c->shutdowns;
    rs_condvar_broadcast(&c->cond);
    rs_mutex_unlock(&c->mutex);
}

static void options_init(rs_host_resolver_options_t *o, ctx_t *c) {
    memset(o, 0, sizeof(*o));
    o->allocator = &rs_test_allocator;
    o->ttl_ms = TTL_MS;
    o->resolve_fn = fake_resolve;
    o->resolve_user_data = c;
    o->clock_fn = fake_clock;
    o->clock_user_data = c;
    o->on_shutdown_complete = on_shutdown_complete;
    o->shutdown_user_data = c;
}

static void ctx_start(ctx_t *c, rs_event_loop_backend_t backend, const rs_host_resolver_options_t *options) {
    rs_event_loop_options_t lo;
    int err = 12345;
    memset(&lo, 0, sizeof(lo));
    lo.allocator = &rs_test_allocator;
    lo.backend = backend;
    c->loop = rs_event_loop_new(&lo, &err);
    assert_non_null(c->loop);
    assert_int_equal(rs_event_loop_start(c->loop), RS_OK);
    if (options) {
        c->resolver = rs_host_resolver_new(options, &err);
        assert_non_null(c->resolver);
        assert_int_equal(err, RS_OK);
    }
}

/* Destroy the resolver, wait for on_shutdown_complete, then the loop. */
static void ctx_finish(ctx_t *c) {
    int target;
    if (c->resolver) {
        rs_mutex_lock(&c->mutex);
        target = c->shutdowns + 1;
        rs_mutex_unlock(&c->mutex);
        rs_host_resolver_destroy(c->resolver);
        assert_true(ctx_wait_int(c, &c->shutdowns, target));
        c->resolver = NULL;
    }
    rs_event_loop_destroy(c->loop);
    rs_condvar_cleanup(&c->cond);
    rs_mutex_cleanup(&c->mutex);
}

/* ---------------------------------------------------------------- probes */

/* What one request saw; written on the loop thread under c->mutex. */
typedef struct probe {
    ctx_t *ctx;
    int calls;
    int family_calls;
    int family_errors[2];      /* by call order */
    size_t family_counts[2];
    int family_after_final;
    bool off_loop_thread;
    int error;
    size_t count;
    rs_endpoint_t addrs[MAX_ADDRS];
    char name[300];
} probe_t;

static void probe_on_family(rs_host_resolver_t *resolver, const char *host_name, int error,
                            const rs_endpoint_t *addresses, size_t count, void *user_data) {
    probe_t *p = (probe_t *)user_data;
    (void)resolver;
    (void)host_name;
    (void)addresses;
    rs_mutex_lock(&p->ctx->mutex);
    if (p->calls) {
        ++p->family_after_final;
    }
    if (p->family_calls < 2) {
        p->family_errors[p->family_calls] = error;
        p->family_counts[p->family_calls] = count;
    }
    ++p->family_calls;
    p->off_loop_thread = p->off_loop_thread || !rs_event_loop_is_on_loop_thread(p->ctx->loop);
    rs_mutex_unlock(&p->ctx->mutex);
}

static void probe_on_resolved(rs_host_resolver_t *resolver, const char *host_name, int error,
                              const rs_endpoint_t *addresses, size_t count, void *user_data) {
    probe_t *p = (probe_t *)user_data;
    (void)resolver;
    rs_mutex_lock(&p->ctx->mutex);
    ++p->calls;
    p->error = error;
    p->count = count < MAX_ADDRS ? count : MAX_ADDRS;
    memcpy(p->addrs, addresses, p->count * sizeof(rs_endpoint_t));
    snprintf(p->name, sizeof(p->name), "%s", host_name);
    p->off_loop_thread = p->off_loop_thread || !rs_event_loop_is_on_loop_thread(p->ctx->loop);
    rs_condvar_broadcast(&p->ctx->cond);
    rs_mutex_unlock(&p->ctx->mutex);
}

static void probe_init(probe_t *p, ctx_t *c) {
    memset(p, 0, sizeof(*p));
    p->ctx = c;
}

static int resolve_start(ctx_t *c, const char *name, probe_t *p) {
    rs_host_resolve_request_t req;
    probe_init(p, c);
    memset(&req, 0, sizeof(req));
    req.host_name = name;
    req.loop = c->loop;
    req.on_resolved = probe_on_resolved;
    req.on_family_resolved = probe_on_family;
    req.user_data = p;
    return rs_host_resolver_resolve(c->resolver, &req);
}

/* Resolve, wait for on_resolved, and check the callback contract. */
static void resolve_wait(ctx_t *c, const char *name, probe_t *p) {
    assert_int_equal(resolve_start(c, name, p), RS_OK);
    assert_true(ctx_wait_int(c, &p->calls, 1));
    rs_mutex_lock(&c->mutex);
    assert_int_equal(p->calls, 1);
    assert_int_equal(p->family_calls, 2);
    assert_int_equal(p->family_after_final, 0);
    assert_false(p->off_loop_thread);
    assert_string_equal(p->name, name);
    rs_mutex_unlock(&c->mutex);
}

static void assert_addr(const rs_endpoint_t *e, const char *text) {
    rs_endpoint_t expected;
    assert_int_equal(rs_endpoint_from_ip(&expected, text, 0), RS_OK);
    if (!rs_endpoint_equal(e, &expected)) {
        char buf[RS_ENDPOINT_TEXT_MAX];
        rs_endpoint_format(e, buf, sizeof(buf));
        fail_msg("address %s, expected %s", buf, text);
    }
}

static void assert_order(const probe_t *p, const char *const *texts, size_t n) {
    size_t i;
    assert_int_equal(p->error, RS_OK);
    assert_int_equal(p->count, n);
    for (i = 0; i < n; ++i) {
        assert_addr(&p->addrs[i], texts[i]);
    }
}

static const fake_host_t host_a = {"a.test", RS_OK, RS_OK, {"2001:db8::a", NULL}, {"192.0.2.1", "192.0.2.2", NULL}};

/* ---------------------------------------------------------------- tests */

static void on_purged(rs_host_resolver_t *resolver, void *user_data);

static void resolve_rejects_null_arguments(void **state) {
    ctx_t c;
    rs_host_resolver_options_t o;
    rs_host_resolve_request_t req;
    probe_t p;
    (void)state;
    ctx_init(&c);
    options_init(&o, &c);
    ctx_start(&c, rs_test_backends[0], &o);
    probe_init(&p, &c);
    memset(&req, 0, sizeof(req));
    req.host_name = "a.test";
    req.loop = c.loop;
    req.on_resolved = probe_on_resolved;
    req.user_data = &p;
    assert_int_equal(rs_host_resolver_resolve(NULL, &req), RS_EINVAL);
    assert_int_equal(rs_host_resolver_resolve(c.resolver, NULL), RS_EINVAL);
    req.host_name = NULL;
    assert_int_equal(rs_host_resolver_resolve(c.resolver, &req), RS_EINVAL);
    req.host_name = "a.test";
    req.loop = NULL;
    assert_int_equal(rs_host_resolver_resolve(c.resolver, &req), RS_EINVAL);
    req.loop = c.loop;
    req.on_resolved = NULL;
    assert_int_equal(rs_host_resolver_resolve(c.resolver, &req), RS_EINVAL);
    assert_int_equal(rs_host_resolver_record_connection_failure(NULL, &p.addrs[0]), RS_EINVAL);
    assert_int_equal(rs_host_resolver_record_connection_failure(c.resolver, NULL), RS_EINVAL);
    assert_int_equal(rs_host_resolver_record_connection_success(c.resolver, NULL), RS_EINVAL);
    assert_int_equal(rs_host_resolver_purge_host(NULL, "a.test", NULL, NULL, NULL), RS_EINVAL);
    assert_int_equal(rs_host_resolver_purge_host(c.resolver, NULL, NULL, NULL, NULL), RS_EINVAL);
    assert_int_equal(rs_host_resolver_purge_all(NULL, NULL, NULL, NULL), RS_EINVAL);
    /* A callback needs a loop to run on. */
    assert_int_equal(rs_host_resolver_purge_all(c.resolver, NULL, on_purged, &c), RS_EINVAL);
    assert_int_equal(rs_host_resolver_purge_all(c.resolver, NULL, NULL, NULL), RS_OK);
    assert_int_equal(rs_host_resolver_get_address_count(NULL, "a.test", 3), 0);
    assert_int_equal(rs_host_resolver_get_address_count(c.resolver, NULL, 3), 0);
    rs_host_resolver_destroy(NULL);
    assert_int_equal(ctx_calls(&c), 0);
    /* NULL options are the defaults (libc allocator). */
    rs_host_resolver_destroy(rs_host_resolver_new(NULL, NULL));
    ctx_finish(&c);
}

static void resolve_rejects_bad_names_without_a_lookup(void **state) {
    ctx_t c;
    rs_host_resolver_options_t o;
    probe_t p;
    char name[320];
    size_t i;
    (void)state;
    ctx_init(&c);
    options_init(&o, &c);
    ctx_start(&c, rs_test_backends[0], &o);
    assert_int_equal(resolve_start(&c, "", &p), RS_EINVAL);
    assert_int_equal(resolve_start(&c, ".", &p), RS_EINVAL);
    assert_int_equal(resolve_start(&c, "a..b", &p), RS_EINVAL);
    assert_int_equal(resolve_start(&c, ".a", &p), RS_EINVAL);
    assert_int_equal(resolve_start(&c, "a.b..", &p), RS_EINVAL);
    memset(name, 'a', 300);
    name[300] = '\0';
    assert_int_equal(resolve_start(&c, name, &p), RS_EINVAL);
    memset(name, 'b', 64);
    memcpy(name + 64, ".test", 6);
    assert_int_equal(resolve_start(&c, name, &p), RS_EINVAL);
    /* 254 bytes: too long; with a trailing dot that is not counted, fine. */
    memset(name, 'c', 254);
    for (i = 60; i < 254; i += 61) {
        name[i] = '.';
    }
    name[254] = '\0';
    assert_int_equal(resolve_start(&c, name, &p), RS_EINVAL);
    name[253] = '.';
    assert_int_equal(ctx_calls(&c), 0);
    resolve_wait(&c, name, &p); /* 253 bytes plus the dot: a lookup, not found */
    assert_int_equal(p.error, RS_EDNS_NOT_FOUND);
    assert_int_equal(p.count, 0);
    assert_int_equal(ctx_calls(&c), 2);
    /* A 63-byte label is fine. */
    memset(name, 'd', 63);
    memcpy(name + 63, ".test", 6);
    resolve_wait(&c, name, &p);
    assert_int_equal(p.error, RS_EDNS_NOT_FOUND);
    ctx_finish(&c);
}

/* Literals are answered on the next tick without a worker: the other family
 * reports no addresses; a zone becomes the scope id. */
static void literals_never_reach_a_worker(rs_event_loop_backend_t backend) {
    ctx_t c;
    rs_host_resolver_options_t o;
    probe_t p;
    (void)o;
    ctx_init(&c);
    options_init(&o, &c);
    ctx_start(&c, backend, &o);
    resolve_wait(&c, "127.0.0.1", &p);
    assert_int_equal(p.count, 1);
    assert_addr(&p.addrs[0], "127.0.0.1");
    assert_int_equal(p.family_errors[0], RS_OK);
    assert_int_equal(p.family_errors[1], RS_OK);
    assert_int_equal(p.family_counts[0], 0); /* IPv6 reported first when both are ready */
    assert_int_equal(p.family_counts[1], 1);
    resolve_wait(&c, "::1", &p);
    assert_int_equal(p.count, 1);
    assert_addr(&p.addrs[0], "::1");
#if !defined(_WIN32) /* zones by interface name are RS_ENOTSUP there (>>address.c); numbers work */
    resolve_wait(&c, "fe80::1%lo", &p);
    assert_int_equal(p.count, 1);
    assert_int_equal(p.addrs[0].domain, RS_SOCKET_DOMAIN_IPV6);
    assert_int_equal(p.addrs[0].scope_id, if_nametoindex("lo"));
#endif
    resolve_wait(&c, "fe80::2%7", &p);
    assert_int_equal(p.addrs[0].scope_id, 7);
    /* localhost names (RFC 6761): loopback of both families, IPv6 first, no lookup. */
    {
        static const char *const names[] = {"localhost", "LocalHost.", "db.localhost"};
        static const char *const loopback[] = {"::1", "127.0.0.1"};
        size_t i;
        for (i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
            resolve_wait(&c, names[i], &p);
            assert_int_equal(p.error, RS_OK);
            assert_order(&p, loopback, 2);
        }
    }
    assert_int_equal(ctx_calls(&c), 0);
    resolve_wait(&c, "notlocalhost", &p); /* only the label "localhost" and names under it */
    assert_true(ctx_calls(&c) > 0);
    assert_int_equal(rs_host_resolver_get_address_count(c.resolver, "127.0.0.1", 3), 0);
    ctx_finish(&c);
}
RS_TEST_PER_BACKEND(resolver_, literals_never_reach_a_worker)

/* First resolve: one lookup per family; then cache hits reach no worker; past
 * the TTL the stale records are served at once while one refresh runs, and the
 * refreshed records are served after it. Names are case-insensitive. */
static void cache_hits_and_ttl_refresh(rs_event_loop_backend_t backend) {
    static const char *const first[] = {"2001:db8::a", "192.0.2.1", "192.0.2.2"};
    static const fake_host_t changed = {
        "a.test", RS_OK, RS_OK, {"2001:db8::b", "2001:db8::c", NULL}, {"192.0.2.3", NULL}};
    static const char *const second[] = {"2001:db8::b", "192.0.2.3", "2001:db8::c"};
    ctx_t c;
    rs_host_resolver_options_t o;
    probe_t p;
    int i;
    ctx_init(&c);
    ctx_add_host(&c, &host_a);
    options_init(&o, &c);
    ctx_start(&c, backend, &o);
    resolve_wait(&c, "a.test", &p);
    assert_order(&p, first, 3);
    assert_int_equal(ctx_calls(&c), 2);
    for (i = 0; i < 5; ++i) {
        resolve_wait(&c, i % 2 ? "A.Test" : "a.test", &p);
        assert_order(&p, first, 3);
    }
    assert_int_equal(ctx_calls(&c), 2);
    assert_int_equal(rs_host_resolver_get_address_count(c.resolver, "a.test", RS_HOST_FAMILY_IPV4), 2);
    assert_int_equal(rs_host_resolver_get_address_count(c.resolver, "a.test", RS_HOST_FAMILY_IPV6), 1);
    assert_int_equal(rs_host_resolver_get_address_count(c.resolver, "a.test", 3), 3);
    ctx_set_host(&c, &changed);
    ctx_advance_ms(&c, TTL_MS + 1);
    resolve_wait(&c, "a.test", &p);
    assert_order(&p, first, 3); /* stale, served at once */
    assert_true(ctx_wait_int(&c, &c.calls, 4));
    /* The refresh is in once both families show their new counts. */
    for (i = 0; i < 10000 && (rs_host_resolver_get_address_count(c.resolver, "a.test", RS_HOST_FAMILY_IPV6) != 2 ||
                              rs_host_resolver_get_address_count(c.resolver, "a.test", RS_HOST_FAMILY_IPV4) != 1);
         ++i) {
        rs_thread_sleep_ns(RS_NS_PER_MS);
    }
    resolve_wait(&c, "a.test", &p);
    assert_order(&p, second, 3);
    assert_int_equal(ctx_calls(&c), 4);
    ctx_finish(&c);
}
RS_TEST_PER_BACKEND(resolver_, cache_hits_and_ttl_refresh)

/* A refresh that fails keeps the last good records until they are max_stale
 * old; then they are dropped and the failure is reported. (A failed refresh
 * changes nothing observable, so the test resolves until the next one starts.) */
static void stale_records_served_while_refresh_fails(rs_event_loop_backend_t backend) {
    static const char *const first[] = {"2001:db8::a", "192.0.2.1", "192.0.2.2"};
    static const fake_host_t failing = {"a.test", RS_EDNS_TRY_AGAIN, RS_EDNS_TRY_AGAIN, {NULL}, {NULL}};
    ctx_t c;
    rs_host_resolver_options_t o;
    probe_t p;
    int i;
    ctx_init(&c);
    ctx_add_host(&c, &host_a);
    options_init(&o, &c);
    o.max_stale_ms = 3 * TTL_MS;
    ctx_start(&c, backend, &o);
    resolve_wait(&c, "a.test", &p);
    assert_order(&p, first, 3);
    ctx_set_host(&c, &failing);
    ctx_advance_ms(&c, TTL_MS + 500);
    for (i = 0; i < 10000 && ctx_calls(&c) < 6; ++i) {
        resolve_wait(&c, "a.test", &p);
        assert_order(&p, first, 3); /* stale, while refreshes fail */
        rs_thread_sleep_ns(RS_NS_PER_MS / 10);
    }
    assert_true(ctx_calls(&c) >= 6);
    assert_int_equal(rs_host_resolver_get_address_count(c.resolver, "a.test", 3), 3);
    ctx_advance_ms(&c, 2 * TTL_MS);
    assert_int_equal(rs_host_resolver_get_address_count(c.resolver, "a.test", 3), 0);
    resolve_wait(&c, "a.test", &p);
    assert_int_equal(p.error, RS_EDNS_TRY_AGAIN);
    assert_int_equal(p.count, 0);
    assert_int_equal(p.family_errors[0], RS_EDNS_TRY_AGAIN);
    assert_int_equal(p.family_errors[1], RS_EDNS_TRY_AGAIN);
    ctx_finish(&c);
}
RS_TEST_PER_BACKEND(resolver_, stale_records_served_while_refresh_fails)

/* Errors from the resolve function: not found in both families is
 * RS_EDNS_NOT_FOUND; one family answering is success; a hard failure wins
 * over "not found". */
static void lookup_errors_are_reported(rs_event_loop_backend_t backend) {
    static const fake_host_t v4only = {"v4.test", RS_EDNS_NOT_FOUND, RS_OK, {NULL}, {"192.0.2.9", NULL}};
    static const fake_host_t broken = {"broken.test", RS_EDNS_NOT_FOUND, RS_EDNS_FAILED, {NULL}, {NULL}};
    static const fake_host_t empty = {"empty.test", RS_OK, RS_OK, {NULL}, {NULL}};
    static const fake_host_t oom = {"oom.test", RS_ENOMEM, RS_ENOMEM, {NULL}, {NULL}};
    static const char *const v4[] = {"192.0.2.9"};
    ctx_t c;
    rs_host_resolver_options_t o;
    probe_t p;
    ctx_init(&c);
    ctx_add_host(&c, &v4only);
    ctx_add_host(&c, &broken);
    ctx_add_host(&c, &empty);
    ctx_add_host(&c, &oom);
    options_init(&o, &c);
    ctx_start(&c, backend, &o);
    resolve_wait(&c, "nowhere.test", &p);
    assert_int_equal(p.error, RS_EDNS_NOT_FOUND);
    resolve_wait(&c, "v4.test", &p);
    assert_order(&p, v4, 1);
    resolve_wait(&c, "broken.test", &p);
    assert_int_equal(p.error, RS_EDNS_FAILED);
    resolve_wait(&c, "empty.test", &p);
    assert_int_equal(p.error, RS_EDNS_NOT_FOUND);
    assert_int_equal(p.family_errors[0], RS_OK);
    assert_int_equal(p.family_counts[0], 0);
    resolve_wait(&c, "oom.test", &p);
    assert_int_equal(p.error, RS_ENOMEM);
    /* "not found" and empty answers are cached; failures are not. */
    assert_int_equal(ctx_calls(&c), 10);
    resolve_wait(&c, "nowhere.test", &p);
    resolve_wait(&c, "v4.test", &p);
    resolve_wait(&c, "empty.test", &p);
    assert_int_equal(ctx_calls(&c), 10);
    resolve_wait(&c, "broken.test", &p);
    assert_int_equal(ctx_calls(&c), 11); /* the cached AAAA "not found" stays; A is asked again */
    ctx_finish(&c);
}
RS_TEST_PER_BACKEND(resolver_, lookup_errors_are_reported)

/* A failed address goes after the healthy ones (families still interleaved,
 * IPv6 first) until it connects again or its record expires. */
static void failure_recording_reorders_and_expires(rs_event_loop_backend_t backend) {
    static const fake_host_t host = {
        "f.test", RS_OK, RS_OK, {"2001:db8::1", "2001:db8::2", NULL}, {"192.0.2.1", "192.0.2.2", NULL}};
    static const char *const healthy[] = {"2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2"};
    static const char *const v6_failed[] = {"2001:db8::2", "192.0.2.1", "192.0.2.2", "2001:db8::1"};
    static const char *const two_failed[] = {"2001:db8::2", "192.0.2.2", "2001:db8::1", "192.0.2.1"};
    rs_endpoint_t a6;
    rs_endpoint_t a4;
    rs_endpoint_t other;
    ctx_t c;
    rs_host_resolver_options_t o;
    probe_t p;
    ctx_init(&c);
    ctx_add_host(&c, &host);
    options_init(&o, &c);
    ctx_start(&c, backend, &o);
    assert_int_equal(rs_endpoint_from_ip(&a6, "2001:db8::1", 443), RS_OK);
    assert_int_equal(rs_endpoint_from_ip(&a4, "192.0.2.1", 80), RS_OK);
    assert_int_equal(rs_endpoint_from_ip(&other, "198.51.100.1", 80), RS_OK);
    assert_int_equal(rs_host_resolver_record_connection_failure(c.resolver, &a6), RS_ENOENT);
    resolve_wait(&c, "f.test", &p);
    assert_order(&p, healthy, 4);
    assert_int_equal(rs_host_resolver_record_connection_failure(c.resolver, &a6), RS_OK);
    assert_int_equal(rs_host_resolver_record_connection_failure(c.resolver, &other), RS_ENOENT);
    resolve_wait(&c, "f.test", &p);
    assert_order(&p, v6_failed, 4);
    assert_int_equal(rs_host_resolver_record_connection_failure(c.resolver, &a4), RS_OK);
    resolve_wait(&c, "f.test", &p);
    assert_order(&p, two_failed, 4);
    assert_int_equal(rs_host_resolver_record_connection_success(c.resolver, &a6), RS_OK);
    assert_int_equal(rs_host_resolver_record_connection_success(c.resolver, &a4), RS_OK);
    resolve_wait(&c, "f.test", &p);
    assert_order(&p, healthy, 4);
    /* Expiry: past the TTL the mark no longer counts, and the refresh clears it. */
    assert_int_equal(rs_host_resolver_record_connection_failure(c.resolver, &a6), RS_OK);
    ctx_advance_ms(&c, TTL_MS + 1);
    resolve_wait(&c, "f.test", &p);
    assert_order(&p, healthy, 4);
    assert_true(ctx_wait_int(&c, &c.calls, 4));
    ctx_advance_ms(&c, 1); /* still fresh for the refreshed records */
    resolve_wait(&c, "f.test", &p);
    assert_order(&p, healthy, 4);
    assert_int_equal(ctx_calls(&c), 4);
    ctx_finish(&c);
}
RS_TEST_PER_BACKEND(resolver_, failure_recording_reorders_and_expires)

/* At max_entries the least recently used host is evicted whole. */
static void lru_eviction_at_max_entries(rs_event_loop_backend_t backend) {
    ctx_t c;
    rs_host_resolver_options_t o;
    probe_t p;
    ctx_init(&c);
    c.unknown_err = RS_OK;
    options_init(&o, &c);
    o.max_entries = 3;
    ctx_start(&c, backend, &o);
    resolve_wait(&c, "h1.test", &p);
    resolve_wait(&c, "h2.test", &p);
    resolve_wait(&c, "h3.test", &p);
    assert_int_equal(ctx_calls(&c), 6);
    resolve_wait(&c, "h1.test", &p); /* h2 is now the least recently used */
    assert_int_equal(ctx_calls(&c), 6);
    resolve_wait(&c, "h4.test", &p);
    assert_int_equal(ctx_calls(&c), 8);
    assert_int_equal(rs_host_resolver_get_address_count(c.resolver, "h2.test", 3), 0);
    assert_int_equal(rs_host_resolver_get_address_count(c.resolver, "h1.test", 3), 2);
    resolve_wait(&c, "h1.test", &p);
    resolve_wait(&c, "h3.test", &p);
    resolve_wait(&c, "h4.test", &p);
    assert_int_equal(ctx_calls(&c), 8);
    resolve_wait(&c, "h2.test", &p); /* evicts h1 */
    assert_int_equal(ctx_calls(&c), 10);
    assert_int_equal(p.error, RS_OK);
    assert_int_equal(p.count, 2);
    assert_int_equal(rs_host_resolver_get_address_count(c.resolver, "h1.test", 3), 0);
    ctx_finish(&c);
}
RS_TEST_PER_BACKEND(resolver_, lru_eviction_at_max_entries)

/* Requests for one host while its lookup runs wait for it: one job per family. */
static void concurrent_resolves_share_one_lookup(rs_event_loop_backend_t backend) {
    enum { N = 20 };
    static const char *const first[] = {"2001:db8::a", "192.0.2.1", "192.0.2.2"};
    ctx_t c;
    rs_host_resolver_options_t o;
    probe_t *probes = (probe_t *)test_calloc(N, sizeof(probe_t));
    int i;
    ctx_init(&c);
    ctx_add_host(&c, &host_a);
    options_init(&o, &c);
    o.worker_count = 4;
    ctx_start(&c, backend, &o);
    ctx_set_gate(&c, true);
    for (i = 0; i < N; ++i) {
        assert_int_equal(resolve_start(&c, "a.test", &probes[i]), RS_OK);
    }
    assert_true(ctx_wait_int(&c, &c.blocked, 2));
    ctx_set_gate(&c, false);
    for (i = 0; i < N; ++i) {
        assert_true(ctx_wait_int(&c, &probes[i].calls, 1));
    }
    rs_mutex_lock(&c.mutex);
    for (i = 0; i < N; ++i) {
        assert_int_equal(probes[i].calls, 1);
        assert_int_equal(probes[i].family_calls, 2);
        assert_order(&probes[i], first, 3);
    }
    rs_mutex_unlock(&c.mutex);
    assert_int_equal(ctx_calls(&c), 2);
    ctx_finish(&c);
    test_free(probes);
}
RS_TEST_PER_BACKEND(resolver_, concurrent_resolves_share_one_lookup)

static void on_purged(rs_host_resolver_t *resolver, void *user_data) {
    ctx_t *c = (ctx_t *)user_data;
    (void)resolver;
    rs_mutex_lock(&c->mutex);
    ++c->purges;
    c->purge_on_loop = rs_event_loop_is_on_loop_thread(c->loop);
    rs_condvar_broadcast(&c->cond);
    rs_mutex_unlock(&c->mutex);
}

static void purge_host_and_purge_all(rs_event_loop_backend_t backend) {
    ctx_t c;
    rs_host_resolver_options_t o;
    probe_t p;
    ctx_init(&c);
    c.unknown_err = RS_OK;
    options_init(&o, &c);
    ctx_start(&c, backend, &o);
    resolve_wait(&c, "h1.test", &p);
    resolve_wait(&c, "h2.test", &p);
    assert_int_equal(ctx_calls(&c), 4);
    assert_int_equal(rs_host_resolver_purge_host(c.resolver, "nothere.test", c.loop, on_purged, &c), RS_ENOENT);
    assert_int_equal(rs_host_resolver_purge_host(c.resolver, "H1.test", c.loop, on_purged, &c), RS_OK);
    assert_true(ctx_wait_int(&c, &c.purges, 1));
    assert_true(c.purge_on_loop);
    assert_int_equal(rs_host_resolver_get_address_count(c.resolver, "h1.test", 3), 0);
    assert_int_equal(rs_host_resolver_get_address_count(c.resolver, "h2.test", 3), 2);
    resolve_wait(&c, "h2.test", &p);
    assert_int_equal(ctx_calls(&c), 4);
    resolve_wait(&c, "h1.test", &p);
    assert_int_equal(ctx_calls(&c), 6);
    assert_int_equal(rs_host_resolver_purge_all(c.resolver, c.loop, on_purged, &c), RS_OK);
    assert_true(ctx_wait_int(&c, &c.purges, 2));
    assert_int_equal(rs_host_resolver_get_address_count(c.resolver, "h1.test", 3), 0);
    assert_int_equal(rs_host_resolver_get_address_count(c.resolver, "h2.test", 3), 0);
    assert_int_equal(rs_host_resolver_purge_all(c.resolver, NULL, NULL, NULL), RS_OK);
    resolve_wait(&c, "h2.test", &p);
    assert_int_equal(ctx_calls(&c), 8);
    /* A purge while the lookup runs: the waiting request still gets its answer. */
    ctx_set_gate(&c, true);
    assert_int_equal(resolve_start(&c, "h3.test", &p), RS_OK);
    assert_true(ctx_wait_int(&c, &c.blocked, 2));
    assert_int_equal(rs_host_resolver_purge_host(c.resolver, "h3.test", c.loop, on_purged, &c), RS_OK);
    ctx_set_gate(&c, false);
    assert_true(ctx_wait_int(&c, &p.calls, 1));
    assert_int_equal(p.error, RS_OK);
    assert_int_equal(p.count, 2);
    assert_true(ctx_wait_int(&c, &c.purges, 3));
    assert_int_equal(rs_host_resolver_get_address_count(c.resolver, "h3.test", 3), 0);
    ctx_finish(&c);
}
RS_TEST_PER_BACKEND(resolver_, purge_host_and_purge_all)

/* Destroy with 100 hosts' lookups queued or blocked in the resolve function:
 * every request completes once with RS_ECANCELED on its loop; the memory goes
 * once the blocked workers return. */
static void destroy_with_lookups_in_flight(rs_event_loop_backend_t backend) {
    enum { N = 100 };
    ctx_t c;
    rs_host_resolver_options_t o;
    probe_t *probes = (probe_t *)test_calloc(N, sizeof(probe_t));
    probe_t late;
    char name[32];
    int i;
    ctx_init(&c);
    c.unknown_err = RS_OK;
    options_init(&o, &c);
    ctx_start(&c, backend, &o);
    ctx_set_gate(&c, true);
    for (i = 0; i < N; ++i) {
        snprintf(name, sizeof(name), "host%d.test", i);
        assert_int_equal(resolve_start(&c, name, &probes[i]), RS_OK);
    }
    assert_true(ctx_wait_int(&c, &c.blocked, 2));
    rs_host_resolver_destroy(c.resolver);
    /* The workers still hold it, blocked: a late resolve is refused. */
    assert_int_equal(resolve_start(&c, "late.test", &late), RS_ESHUTDOWN);
    for (i = 0; i < N; ++i) {
        assert_true(ctx_wait_int(&c, &probes[i].calls, 1));
    }
    rs_mutex_lock(&c.mutex);
    assert_int_equal(c.shutdowns, 0); /* two workers are still in the resolve function */
    for (i = 0; i < N; ++i) {
        assert_int_equal(probes[i].calls, 1);
        assert_int_equal(probes[i].error, RS_ECANCELED);
        assert_int_equal(probes[i].count, 0);
        assert_int_equal(probes[i].family_calls, 2);
        assert_int_equal(probes[i].family_errors[0], RS_ECANCELED);
        assert_false(probes[i].off_loop_thread);
    }
    rs_mutex_unlock(&c.mutex);
    ctx_set_gate(&c, false);
    assert_true(ctx_wait_int(&c, &c.shutdowns, 1));
    c.resolver = NULL;
    assert_int_equal(ctx_calls(&c), 2);
    ctx_finish(&c);
    test_free(probes);
}
RS_TEST_PER_BACKEND(resolver_, destroy_with_lookups_in_flight)

/* Callbacks never run inside the resolve call, even on the loop's own thread;
 * a loop destroyed before delivery completes the request with RS_ECANCELED
 * on the destroying thread. The loop here runs on the test thread. */
static void delivery_is_never_inline_and_loop_destroy_cancels(rs_event_loop_backend_t backend) {
    ctx_t c;
    rs_host_resolver_options_t o;
    rs_event_loop_options_t lo;
    rs_event_loop_t *own_loop;
    rs_event_loop_t *shared_loop;
    probe_t p;
    int i;
    ctx_init(&c);
    ctx_add_host(&c, &host_a);
    options_init(&o, &c);
    ctx_start(&c, backend, &o);
    memset(&lo, 0, sizeof(lo));
    lo.allocator = &rs_test_allocator;
    lo.backend = backend;
    own_loop = rs_event_loop_new(&lo, NULL);
    assert_non_null(own_loop);
    resolve_wait(&c, "a.test", &p); /* cached from now on */
    shared_loop = c.loop;
    c.loop = own_loop;
    for (i = 0; i < 3; ++i) {
        assert_int_equal(resolve_start(&c, i == 0 ? "192.0.2.5" : "a.test", &p), RS_OK);
        assert_int_equal(p.calls, 0);
        assert_int_equal(p.family_calls, 0);
        assert_int_equal(rs_event_loop_run_once(own_loop, 0), RS_OK);
        assert_int_equal(p.calls, 1);
        assert_int_equal(p.error, RS_OK);
        assert_int_equal(p.family_calls, 2);
    }
    assert_int_equal(resolve_start(&c, "a.test", &p), RS_OK);
    rs_event_loop_destroy(own_loop);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.error, RS_ECANCELED);
    assert_int_equal(p.count, 0);
    assert_int_equal(p.family_calls, 2);
    assert_int_equal(p.family_after_final, 0);
    assert_int_equal(ctx_calls(&c), 2);
    c.loop = shared_loop;
    ctx_finish(&c);
}
RS_TEST_PER_BACKEND(resolver_, delivery_is_never_inline_and_loop_destroy_cancels)

/* Destroy without any lookup completes at once. */
static void destroy_without_lookups_completes(void **state) {
    ctx_t c;
    rs_host_resolver_options_t o;
    probe_t p;
    (void)state;
    ctx_init(&c);
    options_init(&o, &c);
    ctx_start(&c, rs_test_backends[0], &o);
    resolve_wait(&c, "127.0.0.1", &p);
    ctx_finish(&c);
}

/* Fail the Nth allocation of a resolver's life (new, a cached and an uncached
 * resolve, a literal, a purge) until the scenario passes: every N ends in a
 * clean error or success, callbacks once, nothing leaked. */
static int sweep_resolve(ctx_t *c, const char *name, probe_t *p) {
    int err = resolve_start(c, name, p);
    if (err == RS_OK) {
        assert_true(ctx_wait_int(c, &p->calls, 1));
        rs_mutex_lock(&c->mutex);
        assert_int_equal(p->calls, 1);
        assert_true(p->error == RS_OK || p->error == RS_ENOMEM);
        rs_mutex_unlock(&c->mutex);
        return p->error;
    }
    assert_int_equal(err, RS_ENOMEM);
    return err;
}

static void alloc_failure_sweep_over_resolve(rs_event_loop_backend_t backend) {
    size_t n;
    for (n = 1; n < 1000; ++n) {
        rs_test_failing_alloc_t fa;
        ctx_t c;
        rs_host_resolver_options_t o;
        probe_t p;
        int err;
        int failed = 0;
        ctx_init(&c);
        c.unknown_err = RS_OK;
        options_init(&o, &c);
        rs_test_failing_alloc_init(&fa, n);
        o.allocator = &fa.allocator;
        ctx_start(&c, backend, NULL);
        c.resolver = rs_host_resolver_new(&o, &err);
        if (!c.resolver) {
            assert_int_equal(err, RS_ENOMEM);
            ctx_finish(&c);
            continue;
        }
        failed |= sweep_resolve(&c, "x.test", &p);
        failed |= sweep_resolve(&c, "x.test", &p);
        failed |= sweep_resolve(&c, "y.test", &p);
        failed |= sweep_resolve(&c, "::1", &p);
        err = rs_host_resolver_purge_all(c.resolver, c.loop, on_purged, &c);
        assert_true(err == RS_OK || err == RS_ENOMEM);
        if (err == RS_OK) {
            assert_true(ctx_wait_int(&c, &c.purges, 1));
        }
        failed |= err;
        ctx_finish(&c);
        if (!failed && rs_test_failing_alloc_failures(&fa) == 0) {
            return;
        }
    }
    fail_msg("the sweep never passed");
}
RS_TEST_PER_BACKEND(resolver_, alloc_failure_sweep_over_resolve)

/* The real getaddrinfo, on a name /etc/hosts gives both an IPv4 and an IPv6
 * address (not a localhost name: those never reach getaddrinfo). A name
 * missing from the file for either family would send a DNS query off this
 * host, which the tests never do; without such a name the test says so and
 * checks nothing more. */
/* The hosts file getaddrinfo reads. Windows: its own, or under Wine (whose
 * getaddrinfo is the Linux host's) the Linux file, through drive Z:. */
static FILE *hosts_file_open(void) {
#if defined(_WIN32)
    char path[MAX_PATH];
    UINT n = GetSystemDirectoryA(path, (UINT)sizeof(path));
    FILE *f = NULL;
    if (n > 0 && n + sizeof("\\drivers\\etc\\hosts") <= sizeof(path)) {
        strcat(path, "\\drivers\\etc\\hosts");
        f = fopen(path, "r");
    }
    return f ? f : fopen("Z:\\etc\\hosts", "r");
#else
    return fopen("/etc/hosts", "r");
#endif
}

static bool hosts_name_with_both_families(char *name, size_t size) {
    char line[512];
    char v4_names[2048] = " ";
    char v6_names[2048] = " ";
    FILE *f = hosts_file_open();
    if (!f) {
        return false;
    }
    while (fgets(line, sizeof(line), f)) {
        char *save = NULL;
        char *addr = strtok_r(line, " \t\r\n", &save);
        char *tok;
        uint8_t bytes[16];
        char *names;
        if (!addr || addr[0] == '#') {
            continue;
        }
        names = rs_ipv4_parse(addr, bytes) == RS_OK ? v4_names
                : rs_ipv6_parse(addr, bytes, NULL) == RS_OK ? v6_names : NULL;
        while (names && (tok = strtok_r(NULL, " \t\r\n", &save)) != NULL && tok[0] != '#') {
            if (strlen(names) + strlen(tok) + 2 < sizeof(v4_names)) {
                strcat(names, tok);
                strcat(names, " ");
            }
        }
    }
    fclose(f);
    {
        char *save = NULL;
        char *tok;
        for (tok = strtok_r(v4_names, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
            char needle[300];
            snprintf(needle, sizeof(needle), " %s ", tok);
            if (!strstr(tok, "localhost") && strstr(v6_names, needle) && strlen(tok) < size) {
                strcpy(name, tok);
                return true;
            }
        }
    }
    return false;
}

static void hosts_file_name_resolves_with_getaddrinfo(rs_event_loop_backend_t backend) {
    ctx_t c;
    rs_host_resolver_options_t o;
    probe_t p;
    char name[256];
    if (!hosts_name_with_both_families(name, sizeof(name))) {
        printf("# real getaddrinfo not exercised: the hosts file has no name with both an IPv4 and an IPv6 "
               "address, and any other name would send DNS queries off this host\n");
        return;
    }
    ctx_init(&c);
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.on_shutdown_complete = on_shutdown_complete;
    o.shutdown_user_data = &c;
    ctx_start(&c, backend, &o);
    resolve_wait(&c, name, &p);
    printf("# %s: %u addresses through getaddrinfo\n", name, (unsigned)p.count);
    assert_int_equal(p.error, RS_OK);
    assert_true(p.count >= 2);
    assert_int_equal(p.addrs[0].domain, RS_SOCKET_DOMAIN_IPV6); /* IPv6 first */
    assert_int_equal(p.addrs[1].domain, RS_SOCKET_DOMAIN_IPV4);
    ctx_finish(&c);
}
RS_TEST_PER_BACKEND(resolver_, hosts_file_name_resolves_with_getaddrinfo)

/* The default lookup itself, which the resolver never calls for a literal:
 * getaddrinfo takes numeric hosts without sending any query, so this runs the
 * OS's getaddrinfo (Winsock's on Windows, after the start-up that
 * rs_host_resolver_new does) and the conversion of its answers. */
static void default_lookup_takes_numeric_hosts(void **state) {
    rs_endpoint_t found[RS_HOST_RESOLVER_MAX_ADDRESSES];
    rs_host_resolver_t *r;
    size_t count = 99;
    int err = 12345;
    (void)state;
    r = rs_host_resolver_new(NULL, &err);
    assert_non_null(r);
    assert_int_equal(err, RS_OK);
    assert_int_equal(rs__resolver_getaddrinfo("127.0.0.1", RS_SOCKET_DOMAIN_IPV4, found, RS_HOST_RESOLVER_MAX_ADDRESSES,
                                              &count, NULL),
                     RS_OK);
    assert_int_equal(count, 1);
    assert_addr(&found[0], "127.0.0.1");
    count = 99;
    assert_int_equal(rs__resolver_getaddrinfo("::1", RS_SOCKET_DOMAIN_IPV6, found, RS_HOST_RESOLVER_MAX_ADDRESSES,
                                              &count, NULL),
                     RS_OK);
    assert_int_equal(count, 1);
    assert_addr(&found[0], "::1");
    count = 99;
    assert_int_equal(rs__resolver_getaddrinfo("::1", RS_SOCKET_DOMAIN_IPV6, found, 0, &count, NULL), RS_OK);
    assert_int_equal(count, 0);
    rs_host_resolver_destroy(r);
}

/* getaddrinfo's failures mean the same on every OS: POSIX's EAI_* codes and
 * Windows' Winsock codes (which its EAI_* names alias) give the same results. */
static void gai_errors_map_to_the_same_results(void **state) {
    (void)state;
    assert_int_equal(rs__gai_error_result(EAI_NONAME), RS_EDNS_NOT_FOUND);
    assert_int_equal(rs__gai_error_result(EAI_AGAIN), RS_EDNS_TRY_AGAIN);
    assert_int_equal(rs__gai_error_result(EAI_MEMORY), RS_ENOMEM);
    assert_int_equal(rs__gai_error_result(EAI_FAIL), RS_EDNS_FAILED);
    assert_int_equal(rs__gai_error_result(EAI_FAMILY), RS_EDNS_FAILED);
    assert_int_equal(rs__gai_error_result(EAI_BADFLAGS), RS_EDNS_FAILED);
#if defined(_WIN32)
    assert_int_equal(rs__gai_error_result(WSAHOST_NOT_FOUND), RS_EDNS_NOT_FOUND);
    assert_int_equal(rs__gai_error_result(WSANO_DATA), RS_EDNS_NOT_FOUND); /* no records of that family */
    assert_int_equal(rs__gai_error_result(WSATRY_AGAIN), RS_EDNS_TRY_AGAIN);
    assert_int_equal(rs__gai_error_result(WSA_NOT_ENOUGH_MEMORY), RS_ENOMEM);
    assert_int_equal(rs__gai_error_result(WSAEAFNOSUPPORT), RS_EDNS_FAILED); /* EAI_FAMILY */
    assert_int_equal(rs__gai_error_result(WSANO_RECOVERY), RS_EDNS_FAILED);  /* EAI_FAIL */
    assert_int_equal(rs__gai_error_result(WSAEINVAL), RS_EDNS_FAILED);       /* EAI_BADFLAGS */
#else
#if defined(EAI_NODATA)
    assert_int_equal(rs__gai_error_result(EAI_NODATA), RS_EDNS_NOT_FOUND);
#endif
#if defined(EAI_ADDRFAMILY)
    assert_int_equal(rs__gai_error_result(EAI_ADDRFAMILY), RS_EDNS_NOT_FOUND);
#endif
    assert_int_equal(rs__gai_error_result(EAI_SYSTEM), RS_EDNS_FAILED);
#endif
}

int main(void) {
    /* The real-getaddrinfo test runs first: glibc frees a thread's DNS state
     * only as that (detached) worker thread exits, just after
     * on_shutdown_complete, and LeakSanitizer runs at process exit; the
     * other tests give that thread time to finish. */
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(resolver_, hosts_file_name_resolves_with_getaddrinfo),
        cmocka_unit_test(default_lookup_takes_numeric_hosts),
        cmocka_unit_test(gai_errors_map_to_the_same_results),
        cmocka_unit_test(resolve_rejects_null_arguments),
        cmocka_unit_test(resolve_rejects_bad_names_without_a_lookup),
        cmocka_unit_test(destroy_without_lookups_completes),
        RS_TEST_PER_BACKEND_TESTS(resolver_, literals_never_reach_a_worker),
        RS_TEST_PER_BACKEND_TESTS(resolver_, cache_hits_and_ttl_refresh),
        RS_TEST_PER_BACKEND_TESTS(resolver_, stale_records_served_while_refresh_fails),
        RS_TEST_PER_BACKEND_TESTS(resolver_, lookup_errors_are_reported),
        RS_TEST_PER_BACKEND_TESTS(resolver_, failure_recording_reorders_and_expires),
        RS_TEST_PER_BACKEND_TESTS(resolver_, lru_eviction_at_max_entries),
        RS_TEST_PER_BACKEND_TESTS(resolver_, concurrent_resolves_share_one_lookup),
        RS_TEST_PER_BACKEND_TESTS(resolver_, purge_host_and_purge_all),
        RS_TEST_PER_BACKEND_TESTS(resolver_, destroy_with_lookups_in_flight),
        RS_TEST_PER_BACKEND_TESTS(resolver_, delivery_is_never_inline_and_loop_destroy_cancels),
        RS_TEST_PER_BACKEND_TESTS(resolver_, alloc_failure_sweep_over_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
