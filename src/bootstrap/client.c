/*
 * Client bootstrap: resolve, Happy Eyeballs, then the shared pipeline setup.
 *
 * One rs__connect_t per rs_client_bootstrap_connect, living on the chosen
 * loop's thread from its start task on. It keeps two queues of addresses, one
 * per family, fed by the resolver's per-family answers, and alternates between
 * them, IPv6 first. Its memory goes once setup has been reported, the resolver
 * has answered (it holds our pointer until then) and every attempt's socket
 * has called back.
 */

typedef struct rs__connect rs__connect_t;

struct rs_client_bootstrap {
    rs_allocator_t allocator;
    rs_event_loop_group_t *group;
    rs_host_resolver_t *resolver;
    bool owns_resolver;
    uint32_t attempt_delay_ms;
    uint32_t resolution_delay_ms;
    rs_mutex_t lock;
    size_t refcount; /* under lock: the caller's reference plus one per connection */
};

/* One connection attempt: a socket connecting to one address. */
typedef struct rs__attempt {
    rs__connect_t *connect;
    rs_socket_t *socket;
    rs_endpoint_t address;
    rs_list_node_t node; /* in connect->attempts until its callback has fired */
} rs__attempt_t;

/* Host names shorter than this are kept in the connect record without
 * allocating. Small on purpose: the record must stay a size that malloc
 * serves from its per-thread cache (glibc: up to 1032 bytes), or each
 * connection pays more in malloc than the copy saves. */
#define RS__HOST_INLINE 64

/* Addresses of one family, in the resolver's order; `next` is the first untried. */
typedef struct rs__address_queue {
    rs_endpoint_t *items;
    size_t count;
    size_t next;
} rs__address_queue_t;

struct rs__connect {
    rs__pipeline_t pipeline; /* first: the pipeline callbacks find us from it */
    rs_client_bootstrap_t *bootstrap;
    rs_allocator_t allocator;
    rs_event_loop_t *loop;
    char *host; /* host_inline, or an allocated copy of a longer name */
    char host_inline[RS__HOST_INLINE];
    uint32_t port;
    rs_socket_options_t socket_options;
    char *interface_name; /* our copy of socket_options.network_interface_name */
    uint32_t timeout_ms;
    rs__pipeline_options_t pipeline_options;
    rs_client_on_setup_fn *on_setup;
    rs_client_on_shutdown_fn *on_shutdown;
    void *user_data;

    rs__address_queue_t queues[2]; /* [0] IPv6, [1] IPv4 */
    int next_family;               /* the queue the next attempt prefers */
    int family_answers;            /* on_family_resolved calls so far (one per family) */
    rs_list_t attempts;
    rs__attempt_t first_attempt;   /* the attempt most connections need, without allocating */
    bool first_attempt_busy;
    bool resolving;                /* the resolver still owes us on_resolved */
    bool attempt_delay_pending;    /* the attempt timer runs: wait before the next attempt */
    bool finished;                 /* a winner, or a final error */
    bool setup_reported;
    bool pipeline_running;
    int depth;                     /* callbacks of ours on the stack: free only at depth 0 */
    int last_error;
    int dns_error;

    rs_task_t start_task;
    rs_task_t attempt_timer;
    rs_task_t resolution_delay_timer;
    rs_task_t timeout_timer;
};

/* ---- bootstrap ---- */

static void rs__client_bootstrap_release(rs_client_bootstrap_t *b) {
    rs_allocator_t allocator = b->allocator;
    size_t left;
    rs_mutex_lock(&b->lock);
    left = --b->refcount;
    rs_mutex_unlock(&b->lock);
    if (left) {
        return;
    }
    if (b->owns_resolver) {
        rs_host_resolver_destroy(b->resolver);
    }
    rs_mutex_cleanup(&b->lock);
    rs_mem_free(&allocator, b);
}

static void rs__client_bootstrap_acquire(rs_client_bootstrap_t *b) {
    rs_mutex_lock(&b->lock);
    ++b->refcount;
    rs_mutex_unlock(&b->lock);
}

static uint32_t rs__clamp_u32(uint32_t v, uint32_t lo, uint32_t hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

RESEAU_API rs_client_bootstrap_t *rs_client_bootstrap_new(const rs_client_bootstrap_options_t *options,
                                                          int *err_out) {
    rs_allocator_t allocator;
    rs_client_bootstrap_t *b;
    int err;
    if (!options || !options->group) {
        rs__set_err(err_out, RS_EINVAL);
        return NULL;
    }
    allocator = rs__allocator_copy(options->allocator);
    b = (rs_client_bootstrap_t *)rs_mem_calloc(&allocator, 1, sizeof(rs_client_bootstrap_t));
    if (!b) {
        rs__set_err(err_out, RS_ENOMEM);
        return NULL;
    }
    b->allocator = allocator;
    b->group = options->group;
    b->refcount = 1;
    b->attempt_delay_ms = rs__clamp_u32(options->connection_attempt_delay_ms ? options->connection_attempt_delay_ms
                                                                             : RS_HAPPY_EYEBALLS_ATTEMPT_DELAY_MS,
                                        RS_HAPPY_EYEBALLS_ATTEMPT_DELAY_MIN_MS, RS_HAPPY_EYEBALLS_ATTEMPT_DELAY_MAX_MS);
    b->resolution_delay_ms =
        options->resolution_delay_ms ? options->resolution_delay_ms : RS_HAPPY_EYEBALLS_RESOLUTION_DELAY_MS;
    err = rs_mutex_init(&b->lock);
    if (err) {
        goto fail;
    }
    b->resolver = options->resolver;
    if (!b->resolver) {
        rs_host_resolver_options_t ro;
        memset(&ro, 0, sizeof(ro));
        ro.allocator = &b->allocator;
        b->resolver = rs_host_resolver_new(&ro, &err);
        if (!b->resolver) {
            rs_mutex_cleanup(&b->lock);
            goto fail;
        }
        b->owns_resolver = true;
    }
    rs__set_err(err_out, RS_OK);
    return b;

fail:
    rs_mem_free(&allocator, b);
    rs__set_err(err_out, err);
    return NULL;
}

RESEAU_API void rs_client_bootstrap_destroy(rs_client_bootstrap_t *bootstrap) {
    if (bootstrap) {
        rs__client_bootstrap_release(bootstrap);
    }
}

/* ---- the connection's end ---- */

static void rs__connect_free_copies(rs__connect_t *c);

/* Free once nothing refers to us any more: see the file comment. Only from
 * rs__connect_leave, so that no caller up the stack still holds `c`. */
static void rs__connect_maybe_free(rs__connect_t *c) {
    rs_client_bootstrap_t *b = c->bootstrap;
    if (c->depth || !c->setup_reported || c->resolving || !rs_list_empty(&c->attempts) || c->pipeline_running) {
        return;
    }
    rs_mem_free(&c->allocator, c->queues[0].items);
    rs_mem_free(&c->allocator, c->queues[1].items);
    rs__connect_free_copies(c);
    rs__client_bootstrap_release(b);
}

/* Every entry point (task, socket, resolver or pipeline callback) brackets its
 * work with these: cancelling a timer runs it inline, inside another entry. */
static void rs__connect_enter(rs__connect_t *c) {
    ++c->depth;
}

static void rs__connect_leave(rs__connect_t *c) {
    --c->depth;
    rs__connect_maybe_free(c);
}

static void rs__connect_report_setup(rs__connect_t *c, rs_channel_t *channel, int error) {
    c->setup_reported = true;
    c->pipeline_options.installer_count =
        rs__installers_keep_destroyable(c->pipeline_options.installers, c->pipeline_options.installer_count);
    c->on_setup(c->bootstrap, channel, error, c->user_data);
    rs__installers_destroy(c->pipeline_options.installers, c->pipeline_options.installer_count);
}

static void rs__connect_cancel_timers(rs__connect_t *c) {
    rs_event_loop_cancel_task(c->loop, &c->attempt_timer);
    rs_event_loop_cancel_task(c->loop, &c->resolution_delay_timer);
    rs_event_loop_cancel_task(c->loop, &c->timeout_timer);
}

/* Close every attempt still connecting: each calls back with RS_ECANCELED,
 * and is freed then. */
static void rs__connect_close_attempts(rs__connect_t *c) {
    rs_list_node_t *node;
    for (node = rs_list_begin(&c->attempts); node != rs_list_end(&c->attempts); node = node->next) {
        rs__attempt_t *a = RS_CONTAINER_OF(node, rs__attempt_t, node);
        if (a->socket) {
            rs_socket_close(a->socket);
        }
    }
}

static void rs__connect_fail(rs__connect_t *c, int error) {
    if (c->finished) {
        return;
    }
    c->finished = true;
    RS__LOG_DEBUG(RS_LS_BOOTSTRAP, "connect to %s:%u failed: %s", c->host, (unsigned)c->port, rs_err_name(error));
    rs__connect_cancel_timers(c);
    rs__connect_close_attempts(c);
    rs__connect_report_setup(c, NULL, error);
}

/* ---- the pipeline over the winning socket ---- */

static rs__connect_t *rs__connect_of(rs__pipeline_t *p) {
    return RS_CONTAINER_OF(p, rs__connect_t, pipeline);
}

static void rs__connect_pipeline_setup(rs__pipeline_t *p, rs_channel_t *channel, int error) {
    rs__connect_t *c = rs__connect_of(p);
    rs__connect_enter(c);
    rs__connect_report_setup(c, channel, error);
    rs__connect_leave(c);
}

static void rs__connect_pipeline_shutdown(rs__pipeline_t *p, rs_channel_t *channel, int error) {
    rs__connect_t *c = rs__connect_of(p);
    if (c->on_shutdown) {
        c->on_shutdown(c->bootstrap, channel, error, c->user_data);
    }
}

static void rs__connect_pipeline_release(rs__pipeline_t *p) {
    rs__connect_t *c = rs__connect_of(p);
    rs__connect_enter(c);
    c->pipeline_running = false;
    rs__connect_leave(c);
}

static void rs__connect_won(rs__connect_t *c, rs__attempt_t *winner) {
    rs_socket_t *socket = winner->socket;
    int err;
    c->finished = true;
    winner->socket = NULL;
    rs__connect_cancel_timers(c);
    rs__connect_close_attempts(c);
    rs_host_resolver_record_connection_success(c->bootstrap->resolver, &winner->address);
    c->pipeline.on_setup = rs__connect_pipeline_setup;
    c->pipeline.on_shutdown = rs__connect_pipeline_shutdown;
    c->pipeline.on_release = rs__connect_pipeline_release;
    err = rs__pipeline_start(&c->pipeline, &c->allocator, c->loop, socket, &c->pipeline_options);
    if (err) {
        rs_socket_destroy(socket);
        rs__connect_report_setup(c, NULL, err);
        return;
    }
    c->pipeline_running = true;
}

/* ---- attempts ---- */

static void rs__connect_try_next(rs__connect_t *c);

/* Nothing left to try and nothing running: the connection has failed. */
static void rs__connect_check_exhausted(rs__connect_t *c) {
    if (c->finished || c->resolving || !rs_list_empty(&c->attempts)) {
        return;
    }
    if (c->queues[0].next < c->queues[0].count || c->queues[1].next < c->queues[1].count) {
        return;
    }
    rs__connect_fail(c, c->last_error ? c->last_error : (c->dns_error ? c->dns_error : RS_EDNS_NOT_FOUND));
}

static rs__attempt_t *rs__attempt_alloc(rs__connect_t *c) {
    if (!c->first_attempt_busy) {
        c->first_attempt_busy = true;
        memset(&c->first_attempt, 0, sizeof(c->first_attempt));
        return &c->first_attempt;
    }
    return (rs__attempt_t *)rs_mem_calloc(&c->allocator, 1, sizeof(rs__attempt_t));
}

static void rs__attempt_free(rs__connect_t *c, rs__attempt_t *a) {
    if (a == &c->first_attempt) {
        c->first_attempt_busy = false;
        return;
    }
    rs_mem_free(&c->allocator, a);
}

static void rs__attempt_on_connect(rs_socket_t *socket, int error, void *user_data) {
    rs__attempt_t *a = (rs__attempt_t *)user_data;
    rs__connect_t *c = a->connect;
    rs__connect_enter(c);
    rs_list_remove(&a->node);
    if (!error && !c->finished) {
        rs__connect_won(c, a); /* takes a->socket */
    } else {
        if (error != RS_ECANCELED) {
            c->last_error = error;
            rs_host_resolver_record_connection_failure(c->bootstrap->resolver, &a->address);
        }
        if (socket) {
            rs_socket_destroy(socket); /* safe inside its own callback */
        }
    }
    rs__attempt_free(c, a);
    if (!c->finished) {
        /* A failed attempt does not wait for the delay: try the next one now. */
        if (c->attempt_delay_pending) {
            rs_event_loop_cancel_task(c->loop, &c->attempt_timer);
        }
        rs__connect_try_next(c);
        rs__connect_check_exhausted(c);
    }
    rs__connect_leave(c);
}

/* The next address: alternate the families, IPv6 first; a family with nothing
 * left gives its turn to the other. NULL when both are exhausted. */
static const rs_endpoint_t *rs__connect_next_address(rs__connect_t *c) {
    int i;
    for (i = 0; i < 2; ++i) {
        rs__address_queue_t *q = &c->queues[(c->next_family + i) & 1];
        if (q->next < q->count) {
            c->next_family = ((c->next_family + i) & 1) ^ 1;
            return &q->items[q->next++];
        }
    }
    return NULL;
}

static int rs__connect_start_attempt(rs__connect_t *c, const rs_endpoint_t *address) {
    rs_socket_options_t o = c->socket_options;
    rs__attempt_t *a;
    int err = RS_OK;
    a = rs__attempt_alloc(c);
    if (!a) {
        return RS_ENOMEM;
    }
    a->connect = c;
    a->address = *address;
    a->address.port = c->port;
    o.domain = address->domain;
    a->socket = rs_socket_new(&o, &err);
    if (!a->socket) {
        rs__attempt_free(c, a);
        return err;
    }
    rs__socket_skip_connect_timer(a->socket); /* the overall timer ends it first */
    err = rs_socket_connect(a->socket, &a->address, c->loop, rs__attempt_on_connect, a);
    if (err) {
        rs_socket_destroy(a->socket);
        rs__attempt_free(c, a);
        return err;
    }
    rs_list_push_back(&c->attempts, &a->node);
    return RS_OK;
}

/* Whether another attempt may still come: an address is queued, or a family
 * has not answered yet (a late answer joins the queue). */
static bool rs__connect_may_try_more(const rs__connect_t *c) {
    return c->queues[0].next < c->queues[0].count || c->queues[1].next < c->queues[1].count ||
           (c->resolving && c->family_answers < 2);
}

/* The Connection Attempt Delay, armed only when there is something it could
 * hold back: a literal or a single address needs no timer. */
static void rs__connect_arm_attempt_timer(rs__connect_t *c) {
    if (!rs__connect_may_try_more(c)) {
        return;
    }
    c->attempt_delay_pending = true;
    rs_event_loop_schedule_task_future(c->loop, &c->attempt_timer,
                                       rs_event_loop_now_ns(c->loop) +
                                           (uint64_t)c->bootstrap->attempt_delay_ms * RS_NS_PER_MS);
}

/* Start the next attempt unless the attempt delay is still running or the
 * resolution delay holds IPv4 back. An attempt that cannot even start (no
 * memory, no such family here) counts as failed at once. */
static void rs__connect_try_next(rs__connect_t *c) {
    const rs_endpoint_t *address;
    if (c->finished || c->attempt_delay_pending || rs_task_is_scheduled(&c->resolution_delay_timer)) {
        return;
    }
    while ((address = rs__connect_next_address(c)) != NULL) {
        int err = rs__connect_start_attempt(c, address);
        if (!err) {
            rs__connect_arm_attempt_timer(c);
            return;
        }
        c->last_error = err;
    }
}

static void rs__connect_attempt_timer_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs__connect_t *c = (rs__connect_t *)arg;
    (void)task;
    rs__connect_enter(c);
    c->attempt_delay_pending = false;
    if (status == RS_TASK_STATUS_RUN) {
        rs__connect_try_next(c);
        rs__connect_check_exhausted(c);
    }
    rs__connect_leave(c);
}

static void rs__connect_resolution_delay_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs__connect_t *c = (rs__connect_t *)arg;
    (void)task;
    rs__connect_enter(c);
    if (status == RS_TASK_STATUS_RUN) {
        rs__connect_try_next(c); /* IPv6 did not answer in time: go with IPv4 */
    }
    rs__connect_leave(c);
}

static void rs__connect_timeout_fn(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs__connect_t *c = (rs__connect_t *)arg;
    (void)task;
    /* Canceled: by us once finished (then this does nothing), or by the loop's destruction. */
    rs__connect_enter(c);
    rs__connect_fail(c, status == RS_TASK_STATUS_RUN ? RS_ETIMEDOUT : RS_ECANCELED);
    rs__connect_leave(c);
}

/* ---- resolution ---- */

static int rs__address_queue_append(rs__connect_t *c, rs__address_queue_t *q, const rs_endpoint_t *addresses,
                                    size_t count) {
    rs_endpoint_t *grown;
    if (count == 0) {
        return RS_OK;
    }
    grown = (rs_endpoint_t *)rs_mem_realloc(&c->allocator, q->items, q->count * sizeof(rs_endpoint_t),
                                            (q->count + count) * sizeof(rs_endpoint_t));
    if (!grown) {
        return RS_ENOMEM;
    }
    memcpy(grown + q->count, addresses, count * sizeof(rs_endpoint_t));
    q->items = grown;
    q->count += count;
    return RS_OK;
}

/* Once per family. The callback does not name the family, but its addresses
 * do; an empty or failed answer is known to be "the other family" once both
 * have answered, which is all the Resolution Delay needs. */
static void rs__connect_on_family(rs_host_resolver_t *resolver, const char *host_name, int error,
                                  const rs_endpoint_t *addresses, size_t count, void *user_data) {
    rs__connect_t *c = (rs__connect_t *)user_data;
    (void)resolver;
    (void)host_name;
    ++c->family_answers;
    if (c->finished) {
        return; /* the resolver still owes on_resolved: nothing to free yet */
    }
    if (error) {
        c->dns_error = error;
    } else if (count) {
        int family = addresses[0].domain == RS_SOCKET_DOMAIN_IPV4 ? 1 : 0;
        if (rs__address_queue_append(c, &c->queues[family], addresses, count)) {
            c->dns_error = RS_ENOMEM;
        }
    }
    if (c->family_answers < 2 && c->queues[0].count == 0) {
        /* IPv4 first (or nothing yet): give IPv6 the Resolution Delay before starting. */
        if (c->queues[1].count && !rs_task_is_scheduled(&c->resolution_delay_timer)) {
            rs_event_loop_schedule_task_future(c->loop, &c->resolution_delay_timer,
                                               rs_event_loop_now_ns(c->loop) +
                                                   (uint64_t)c->bootstrap->resolution_delay_ms * RS_NS_PER_MS);
        }
        return;
    }
    rs_event_loop_cancel_task(c->loop, &c->resolution_delay_timer);
    rs__connect_try_next(c);
}

static void rs__connect_on_resolved(rs_host_resolver_t *resolver, const char *host_name, int error,
                                    const rs_endpoint_t *addresses, size_t count, void *user_data) {
    rs__connect_t *c = (rs__connect_t *)user_data;
    (void)resolver;
    (void)host_name;
    (void)addresses;
    (void)count;
    rs__connect_enter(c);
    c->resolving = false;
    if (error) {
        c->dns_error = error;
    }
    if (!c->finished) {
        /* Every answer is in: nothing more to wait for. */
        rs_event_loop_cancel_task(c->loop, &c->resolution_delay_timer);
        rs__connect_try_next(c);
        rs__connect_check_exhausted(c);
    }
    rs__connect_leave(c);
}

static int rs__connect_resolve(rs__connect_t *c) {
    rs_host_resolve_request_t request;
    int err;
    memset(&request, 0, sizeof(request));
    request.host_name = c->host;
    request.loop = c->loop;
    request.on_resolved = rs__connect_on_resolved;
    request.on_family_resolved = rs__connect_on_family;
    request.user_data = c;
    c->resolving = true;
    err = rs_host_resolver_resolve(c->bootstrap->resolver, &request);
    if (err) {
        c->resolving = false;
    }
    return err;
}

/* A Unix path, or an IP literal: the one address, with nothing to resolve.
 * The resolver would answer a literal the same way, but through a record, its
 * lock and a task of its own. RS_ENOENT when the host is a name. */
static int rs__connect_direct_address(rs__connect_t *c, rs_endpoint_t *out) {
    if (c->socket_options.domain == RS_SOCKET_DOMAIN_LOCAL) {
        return rs_endpoint_from_local(out, c->host);
    }
    return rs_endpoint_from_ip(out, c->host, c->port) == RS_OK ? RS_OK : RS_ENOENT;
}

static int rs__connect_start(rs__connect_t *c) {
    rs_endpoint_t direct;
    int err;
    rs_event_loop_schedule_task_future(c->loop, &c->timeout_timer,
                                       rs_event_loop_now_ns(c->loop) + (uint64_t)c->timeout_ms * RS_NS_PER_MS);
    err = rs__connect_direct_address(c, &direct);
    if (err == RS_ENOENT) {
        return rs__connect_resolve(c);
    }
    if (!err) {
        err = rs__address_queue_append(c, &c->queues[direct.domain == RS_SOCKET_DOMAIN_IPV4 ? 1 : 0], &direct, 1);
    }
    if (!err) {
        rs__connect_try_next(c);
        rs__connect_check_exhausted(c);
    }
    return err;
}

/* On the connection's loop: resolve (or, for a Unix path, connect at once). */
static void rs__connect_start_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs__connect_t *c = (rs__connect_t *)arg;
    int err = status == RS_TASK_STATUS_RUN ? RS_OK : RS_ECANCELED; /* canceled: the loop is being destroyed */
    (void)task;
    rs__connect_enter(c);
    if (!err) {
        err = rs__connect_start(c);
    }
    if (err) {
        rs__connect_fail(c, err);
    }
    rs__connect_leave(c);
}

/* ---- connect ---- */

static char *rs__strdup(const rs_allocator_t *allocator, const char *s) {
    size_t n = strlen(s) + 1;
    char *copy = (char *)rs_mem_alloc(allocator, n);
    if (copy) {
        memcpy(copy, s, n);
    }
    return copy;
}

static bool rs__group_has_loop(rs_event_loop_group_t *group, rs_event_loop_t *loop) {
    size_t i;
    for (i = 0; i < rs_event_loop_group_get_loop_count(group); ++i) {
        if (rs_event_loop_group_get_loop_at(group, i) == loop) {
            return true;
        }
    }
    return false;
}

static int rs__connect_check_options(const rs_client_bootstrap_t *b, const rs_client_connect_options_t *o) {
    bool local = o->socket_options && o->socket_options->domain == RS_SOCKET_DOMAIN_LOCAL;
    if (!o->host || !o->on_setup || (!local && (o->port == 0 || o->port > 65535))) {
        return RS_EINVAL;
    }
    if (o->loop && !rs__group_has_loop(b->group, o->loop)) {
        return RS_EINVAL;
    }
    return rs__installers_check(o->installers, o->installer_count);
}

/* The copies a connection keeps of the caller's options. */
static int rs__connect_copy_options(rs__connect_t *c, const rs_client_connect_options_t *o) {
    size_t host_len = strlen(o->host);
    if (host_len < sizeof(c->host_inline)) {
        memcpy(c->host_inline, o->host, host_len + 1);
        c->host = c->host_inline;
    } else {
        c->host = rs__strdup(&c->allocator, o->host);
    }
    if (!c->host) {
        return RS_ENOMEM;
    }
    if (o->socket_options) {
        c->socket_options = *o->socket_options;
    }
    c->socket_options.allocator = &c->allocator;
    if (c->socket_options.network_interface_name) {
        c->interface_name = rs__strdup(&c->allocator, c->socket_options.network_interface_name);
        if (!c->interface_name) {
            return RS_ENOMEM;
        }
        c->socket_options.network_interface_name = c->interface_name;
    }
    return rs__pipeline_options_init(&c->pipeline_options, &c->allocator, o->installers, o->installer_count,
                                     o->enable_read_back_pressure, o->graceful_shutdown_timeout_ms);
}

static void rs__connect_free_copies(rs__connect_t *c) {
    rs__pipeline_options_cleanup(&c->pipeline_options, &c->allocator);
    rs_mem_free(&c->allocator, c->interface_name);
    if (c->host != c->host_inline) {
        rs_mem_free(&c->allocator, c->host);
    }
    rs_mem_free(&c->allocator, c);
}

RESEAU_API int rs_client_bootstrap_connect(rs_client_bootstrap_t *bootstrap, const rs_client_connect_options_t *options) {
    rs__connect_t *c;
    int err;
    if (!bootstrap || !options) {
        return RS_EINVAL;
    }
    err = rs__connect_check_options(bootstrap, options);
    if (err) {
        return err;
    }
    c = (rs__connect_t *)rs_mem_calloc(&bootstrap->allocator, 1, sizeof(rs__connect_t));
    if (!c) {
        return RS_ENOMEM;
    }
    c->allocator = bootstrap->allocator;
    err = rs__connect_copy_options(c, options);
    if (err) {
        rs__connect_free_copies(c);
        return err;
    }
    c->bootstrap = bootstrap;
    c->port = options->port;
    c->timeout_ms = c->socket_options.connect_timeout_ms ? c->socket_options.connect_timeout_ms
                                                         : RS_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS;
    c->loop = options->loop ? options->loop : rs_event_loop_group_get_next_loop(bootstrap->group);
    c->on_setup = options->on_setup;
    c->on_shutdown = options->on_shutdown;
    c->user_data = options->user_data;
    rs_list_init(&c->attempts);
    rs_task_init(&c->start_task, rs__connect_start_task, c, "client_connect_start");
    rs_task_init(&c->attempt_timer, rs__connect_attempt_timer_fn, c, "happy_eyeballs_attempt_delay");
    rs_task_init(&c->resolution_delay_timer, rs__connect_resolution_delay_fn, c, "happy_eyeballs_resolution_delay");
    rs_task_init(&c->timeout_timer, rs__connect_timeout_fn, c, "client_connect_timeout");
    rs__client_bootstrap_acquire(bootstrap);
    rs_event_loop_schedule_task_now(c->loop, &c->start_task);
    return RS_OK;
}
