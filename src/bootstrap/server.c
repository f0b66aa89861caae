/*
 * Server bootstrap: a listener on one loop hands each accepted socket to a
 * loop picked by best-of-two, where the shared pipeline setup builds its
 * channel. The listener keeps its live connections in a list under a mutex,
 * because rs_server_bootstrap_destroy_listener may come from any thread and
 * must reach them to shut them down abortively.
 */

struct rs_server_bootstrap {
    rs_allocator_t allocator;
    rs_event_loop_group_t *group;
    rs_mutex_t lock;
    size_t refcount; /* under lock: the caller's reference plus one per listener */
};

struct rs_server_listener {
    rs_server_bootstrap_t *bootstrap;
    rs_allocator_t allocator;
    rs_event_loop_t *loop;
    rs_socket_t *socket;
    rs_endpoint_t address;
    rs__pipeline_options_t pipeline_options;
    rs_server_on_incoming_setup_fn *on_incoming_setup;
    rs_server_on_incoming_shutdown_fn *on_incoming_shutdown;
    rs_server_on_listener_destroyed_fn *on_listener_destroyed;
    void *user_data;
    rs_task_t destroyed_task;

    rs_mutex_t lock; /* guards what follows */
    rs_list_t connections; /* rs__server_conn_t with a channel that has not shut down */
    size_t live;           /* connections accepted and not yet released */
    bool destroying;
    bool closed;           /* the listening socket is closed */
    bool abort_connections;
    bool destroyed_scheduled;
    bool loop_gone; /* the loop was destroyed under the listener (its socket closed, connections ended) */
};

typedef struct rs__server_conn {
    rs__pipeline_t pipeline; /* first: the pipeline callbacks find us from it */
    rs_server_listener_t *listener;
    rs_event_loop_t *loop;
    rs_socket_t *socket;   /* until the pipeline takes it */
    rs_channel_t *channel; /* under listener->lock, while linked */
    rs_list_node_t node;
    bool linked;
    rs_task_t setup_task;
} rs__server_conn_t;

/* ---- running a call on a loop's thread and waiting for it ---- */

typedef int rs__loop_call_fn(void *arg);

typedef struct rs__loop_call {
    rs_task_t task;
    rs__loop_call_fn *fn;
    void *arg;
    int result;
    bool done;
    rs_mutex_t lock;
    rs_condvar_t cond;
} rs__loop_call_t;

static void rs__loop_call_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs__loop_call_t *call = (rs__loop_call_t *)arg;
    (void)task;
    (void)status; /* canceled: the loop is being destroyed on this thread, which owns it now */
    call->result = call->fn(call->arg);
    rs_mutex_lock(&call->lock);
    call->done = true;
    rs_condvar_signal(&call->cond);
    rs_mutex_unlock(&call->lock);
}

/* fn(arg) on `loop`'s thread: at once if this is it, else through a task, waiting. */
static int rs__run_on_loop(rs_event_loop_t *loop, rs__loop_call_fn *fn, void *arg) {
    rs__loop_call_t call;
    int err;
    if (rs_event_loop_is_on_loop_thread(loop)) {
        return fn(arg);
    }
    memset(&call, 0, sizeof(call));
    call.fn = fn;
    call.arg = arg;
    err = rs_mutex_init(&call.lock);
    if (err) {
        return err;
    }
    err = rs_condvar_init(&call.cond);
    if (err) {
        rs_mutex_cleanup(&call.lock);
        return err;
    }
    rs_task_init(&call.task, rs__loop_call_task, &call, "server_loop_call");
    rs_event_loop_schedule_task_now(loop, &call.task);
    rs_mutex_lock(&call.lock);
    while (!call.done) {
        rs_condvar_wait(&call.cond, &call.lock);
    }
    rs_mutex_unlock(&call.lock);
    rs_condvar_cleanup(&call.cond);
    rs_mutex_cleanup(&call.lock);
    return call.result;
}

/* ---- bootstrap ---- */

RESEAU_API rs_server_bootstrap_t *rs_server_bootstrap_new(const rs_server_bootstrap_options_t *options, int *err_out) {
    rs_allocator_t allocator;
    rs_server_bootstrap_t *b;
    int err;
    if (!options || !options->group) {
        rs__set_err(err_out, RS_EINVAL);
        return NULL;
    }
    allocator = rs__allocator_copy(options->allocator);
    b = (rs_server_bootstrap_t *)rs_mem_calloc(&allocator, 1, sizeof(rs_server_bootstrap_t));
    if (!b) {
        rs__set_err(err_out, RS_ENOMEM);
        return NULL;
    }
    err = rs_mutex_init(&b->lock);
    if (err) {
        rs_mem_free(&allocator, b);
        rs__set_err(err_out, err);
        return NULL;
    }
    b->allocator = allocator;
    b->group = options->group;
    b->refcount = 1;
    rs__set_err(err_out, RS_OK);
    return b;
}

static void rs__server_bootstrap_release(rs_server_bootstrap_t *b) {
    rs_allocator_t allocator = b->allocator;
    size_t left;
    rs_mutex_lock(&b->lock);
    left = --b->refcount;
    rs_mutex_unlock(&b->lock);
    if (!left) {
        rs_mutex_cleanup(&b->lock);
        rs_mem_free(&allocator, b);
    }
}

RESEAU_API void rs_server_bootstrap_destroy(rs_server_bootstrap_t *bootstrap) {
    if (bootstrap) {
        rs__server_bootstrap_release(bootstrap);
    }
}

/* ---- the listener's end ---- */

static void rs__listener_free(rs_server_listener_t *l) {
    rs_server_bootstrap_t *b = l->bootstrap;
    if (l->socket) {
        rs_socket_destroy(l->socket);
    }
    rs_mutex_cleanup(&l->lock);
    rs__pipeline_options_cleanup(&l->pipeline_options, &l->allocator);
    rs_mem_free(&l->allocator, l);
    rs__server_bootstrap_release(b);
}

static void rs__listener_destroyed_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_server_listener_t *l = (rs_server_listener_t *)arg;
    (void)task;
    (void)status; /* canceled: the loop is going away; the listener must go all the same */
    l->pipeline_options.installer_count =
        rs__installers_keep_destroyable(l->pipeline_options.installers, l->pipeline_options.installer_count);
    if (l->on_listener_destroyed) {
        l->on_listener_destroyed(l, l->user_data);
    }
    rs__installers_destroy(l->pipeline_options.installers, l->pipeline_options.installer_count);
    rs__listener_free(l);
}

/* Its loop was destroyed, which closed the socket and ended every
 * connection: finish here, on the calling thread. */
static void rs__listener_destroy_orphan(rs_server_listener_t *l) {
    RESEAU_ASSERT(l->live == 0);
    l->closed = true;
    l->destroyed_scheduled = true;
    rs__listener_destroyed_task(&l->destroyed_task, l, RS_TASK_STATUS_CANCELED);
}

/* Under l->lock: once closed and empty, on_listener_destroyed follows, once. */
static bool rs__listener_finished_locked(rs_server_listener_t *l) {
    if (!l->closed || l->live || l->destroyed_scheduled) {
        return false;
    }
    l->destroyed_scheduled = true;
    return true;
}

/* ---- connections ---- */

static rs__server_conn_t *rs__server_conn_of(rs__pipeline_t *p) {
    return RS_CONTAINER_OF(p, rs__server_conn_t, pipeline);
}

/* Its channel is shutting down or gone: destroy_listener must not reach it. */
static void rs__server_conn_unlink(rs__server_conn_t *conn) {
    rs_server_listener_t *l = conn->listener;
    rs_mutex_lock(&l->lock);
    if (conn->linked) {
        rs_list_remove(&conn->node);
        conn->linked = false;
        conn->channel = NULL;
    }
    rs_mutex_unlock(&l->lock);
}

static void rs__server_conn_release(rs__server_conn_t *conn) {
    rs_server_listener_t *l = conn->listener;
    bool finished;
    rs__server_conn_unlink(conn);
    if (conn->socket) {
        rs_socket_destroy(conn->socket);
    }
    rs_mem_free(&l->allocator, conn);
    rs_mutex_lock(&l->lock);
    --l->live;
    finished = rs__listener_finished_locked(l);
    rs_mutex_unlock(&l->lock);
    if (finished) {
        rs_event_loop_schedule_task_now(l->loop, &l->destroyed_task);
    }
}

static void rs__server_pipeline_setup(rs__pipeline_t *p, rs_channel_t *channel, int error) {
    rs__server_conn_t *conn = rs__server_conn_of(p);
    rs_server_listener_t *l = conn->listener;
    if (error) {
        rs__server_conn_unlink(conn);
    }
    l->on_incoming_setup(l, channel, error, l->user_data);
}

static void rs__server_pipeline_shutdown(rs__pipeline_t *p, rs_channel_t *channel, int error) {
    rs__server_conn_t *conn = rs__server_conn_of(p);
    rs_server_listener_t *l = conn->listener;
    rs__server_conn_unlink(conn);
    if (l->on_incoming_shutdown) {
        l->on_incoming_shutdown(l, channel, error, l->user_data);
    }
}

static void rs__server_pipeline_release(rs__pipeline_t *p) {
    rs__server_conn_release(rs__server_conn_of(p));
}

/* On the connection's loop: tie the socket to it and build the pipeline. */
static void rs__server_conn_setup_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs__server_conn_t *conn = (rs__server_conn_t *)arg;
    rs_server_listener_t *l = conn->listener;
    bool abort_now;
    int err = status == RS_TASK_STATUS_RUN ? RS_OK : RS_ECANCELED;
    (void)task;
    if (!err) {
        err = rs_socket_assign_to_loop(conn->socket, conn->loop);
    }
    if (!err) {
        conn->pipeline.on_setup = rs__server_pipeline_setup;
        conn->pipeline.on_shutdown = rs__server_pipeline_shutdown;
        conn->pipeline.on_release = rs__server_pipeline_release;
        err = rs__pipeline_start(&conn->pipeline, &l->allocator, conn->loop, conn->socket, &l->pipeline_options);
    }
    if (err) {
        RS__LOG_WARN(RS_LS_BOOTSTRAP, "accepted connection dropped before its pipeline: %s", rs_err_name(err));
        rs__server_conn_unlink(conn);
        l->on_incoming_setup(l, NULL, err, l->user_data);
        rs__server_conn_release(conn);
        return;
    }
    conn->socket = NULL; /* the pipeline's now */
    rs_mutex_lock(&l->lock);
    conn->channel = conn->pipeline.channel;
    abort_now = l->abort_connections;
    rs_mutex_unlock(&l->lock);
    if (abort_now) {
        rs_channel_shutdown_abortively(conn->pipeline.channel, RS_ECANCELED);
    }
}

static void rs__server_on_accept(rs_socket_t *listener_socket, int error, rs_socket_t *socket, void *user_data) {
    rs_server_listener_t *l = (rs_server_listener_t *)user_data;
    rs__server_conn_t *conn;
    bool refused;
    (void)listener_socket;
    if (error == RS_ECANCELED) {
        /* The loop is being destroyed: the listener waits, inert, for
         * rs_server_bootstrap_destroy_listener, which then frees it on the
         * calling thread. */
        rs_mutex_lock(&l->lock);
        l->loop_gone = true;
        rs_mutex_unlock(&l->lock);
        return;
    }
    if (error) {
        RS__LOG_WARN(RS_LS_BOOTSTRAP, "accept failed (%s); the listener keeps serving", rs_err_name(error));
        return;
    }
    conn = (rs__server_conn_t *)rs_mem_calloc(&l->allocator, 1, sizeof(rs__server_conn_t));
    if (!conn) {
        RS__LOG_WARN(RS_LS_BOOTSTRAP, "no memory for an accepted connection; closed");
        rs_socket_destroy(socket);
        return;
    }
    conn->listener = l;
    conn->socket = socket;
    conn->loop = rs_event_loop_group_get_next_loop(l->bootstrap->group);
    rs_task_init(&conn->setup_task, rs__server_conn_setup_task, conn, "server_connection_setup");
    rs_mutex_lock(&l->lock);
    refused = l->destroying;
    if (!refused) {
        rs_list_push_back(&l->connections, &conn->node);
        conn->linked = true;
        ++l->live;
    }
    rs_mutex_unlock(&l->lock);
    if (refused) {
        rs_socket_destroy(socket);
        rs_mem_free(&l->allocator, conn);
        return;
    }
    rs_event_loop_schedule_task_now(conn->loop, &conn->setup_task);
}

/* ---- listener ---- */

/* The endpoint to bind: a literal, "localhost", a path, or any address. */
static int rs__listener_endpoint(const rs_server_listener_options_t *o, rs_socket_domain_t *domain,
                                 rs_endpoint_t *out) {
    const char *host = o->host;
    if (*domain == RS_SOCKET_DOMAIN_LOCAL) {
        return host ? rs_endpoint_from_local(out, host) : RS_EINVAL;
    }
    if (*domain != RS_SOCKET_DOMAIN_DEFAULT && *domain != RS_SOCKET_DOMAIN_IPV4 &&
        *domain != RS_SOCKET_DOMAIN_IPV6) {
        return RS_EINVAL;
    }
    if (!host) {
        host = *domain == RS_SOCKET_DOMAIN_IPV6 ? "::" : "0.0.0.0";
    } else if (strcmp(host, "localhost") == 0) {
        host = *domain == RS_SOCKET_DOMAIN_IPV6 ? "::1" : "127.0.0.1";
    }
    if (rs_endpoint_from_ip(out, host, o->port) != RS_OK) {
        return RS_EINVAL; /* names other than localhost would need a lookup: not here */
    }
    *domain = out->domain; /* a literal decides the family */
    return RS_OK;
}

static int rs__listener_start_accept(void *arg) {
    rs_server_listener_t *l = (rs_server_listener_t *)arg;
    return rs_socket_start_accept(l->socket, l->loop, rs__server_on_accept, l);
}

static int rs__listener_close(void *arg) {
    rs_server_listener_t *l = (rs_server_listener_t *)arg;
    return rs_socket_close(l->socket);
}

static int rs__listener_open(rs_server_listener_t *l, const rs_server_listener_options_t *o) {
    rs_socket_options_t so;
    int err = RS_OK;
    memset(&so, 0, sizeof(so));
    if (o->socket_options) {
        so = *o->socket_options;
    }
    so.allocator = &l->allocator;
    so.type = RS_SOCKET_STREAM;
    err = rs__listener_endpoint(o, &so.domain, &l->address);
    if (err) {
        return err;
    }
    l->socket = rs_socket_new(&so, &err);
    if (!l->socket) {
        return err;
    }
    err = rs_socket_bind(l->socket, &l->address);
    if (!err) {
        err = rs_socket_listen(l->socket, o->backlog);
    }
    if (!err) {
        err = rs_socket_get_bound_address(l->socket, &l->address);
    }
    if (!err) {
        err = rs__run_on_loop(l->loop, rs__listener_start_accept, l);
    }
    return err;
}

static int rs__listener_check_options(const rs_server_listener_options_t *o) {
    return o->on_incoming_setup ? rs__installers_check(o->installers, o->installer_count) : RS_EINVAL;
}

RESEAU_API rs_server_listener_t *rs_server_bootstrap_new_listener(rs_server_bootstrap_t *bootstrap,
                                                                  const rs_server_listener_options_t *options,
                                                                  int *err_out) {
    rs_server_listener_t *l;
    int err;
    if (!bootstrap || !options) {
        rs__set_err(err_out, RS_EINVAL);
        return NULL;
    }
    err = rs__listener_check_options(options);
    if (err) {
        rs__set_err(err_out, err);
        return NULL;
    }
    l = (rs_server_listener_t *)rs_mem_calloc(&bootstrap->allocator, 1, sizeof(rs_server_listener_t));
    if (!l) {
        rs__set_err(err_out, RS_ENOMEM);
        return NULL;
    }
    l->allocator = bootstrap->allocator;
    l->bootstrap = bootstrap;
    err = rs_mutex_init(&l->lock);
    if (err) {
        rs_mem_free(&l->allocator, l);
        rs__set_err(err_out, err);
        return NULL;
    }
    rs_list_init(&l->connections);
    err = rs__pipeline_options_init(&l->pipeline_options, &l->allocator, options->installers,
                                    options->installer_count, options->enable_read_back_pressure,
                                    options->graceful_shutdown_timeout_ms);
    if (err) {
        goto fail;
    }
    l->on_incoming_setup = options->on_incoming_setup;
    l->on_incoming_shutdown = options->on_incoming_shutdown;
    l->on_listener_destroyed = options->on_listener_destroyed;
    l->user_data = options->user_data;
    l->loop = rs_event_loop_group_get_next_loop(bootstrap->group);
    rs_task_init(&l->destroyed_task, rs__listener_destroyed_task, l, "server_listener_destroyed");
    rs_mutex_lock(&bootstrap->lock);
    ++bootstrap->refcount;
    rs_mutex_unlock(&bootstrap->lock);
    err = rs__listener_open(l, options);
    if (err) {
        if (l->socket) {
            rs__run_on_loop(l->loop, rs__listener_close, l); /* tied to the loop if accepting started */
        }
        rs__listener_free(l); /* releases the bootstrap reference */
        rs__set_err(err_out, err);
        return NULL;
    }
    rs__set_err(err_out, RS_OK);
    return l;

fail:
    rs_mutex_cleanup(&l->lock);
    rs_mem_free(&l->allocator, l);
    rs__set_err(err_out, err);
    return NULL;
}

RESEAU_API int rs_server_listener_get_address(const rs_server_listener_t *listener, rs_endpoint_t *out) {
    if (!listener || !out) {
        return RS_EINVAL;
    }
    *out = listener->address;
    return RS_OK;
}

RESEAU_API int rs_server_bootstrap_destroy_listener(rs_server_listener_t *listener, bool abort_connections) {
    rs_server_listener_t *l = listener;
    rs_list_node_t *node;
    bool finished;
    if (!l) {
        return RS_EINVAL;
    }
    rs_mutex_lock(&l->lock);
    if (l->destroying) {
        rs_mutex_unlock(&l->lock);
        return RS_EALREADY;
    }
    l->destroying = true; /* accepts from now on are closed at once */
    l->abort_connections = abort_connections;
    if (l->loop_gone) {
        rs_mutex_unlock(&l->lock);
        rs__listener_destroy_orphan(l);
        return RS_OK;
    }
    rs_mutex_unlock(&l->lock);
    rs__run_on_loop(l->loop, rs__listener_close, l);
    rs_mutex_lock(&l->lock);
    l->closed = true;
    if (abort_connections) {
        for (node = rs_list_begin(&l->connections); node != rs_list_end(&l->connections); node = node->next) {
            rs__server_conn_t *conn = RS_CONTAINER_OF(node, rs__server_conn_t, node);
            if (conn->channel) {
                rs_channel_shutdown_abortively(conn->channel, RS_ECANCELED); /* any thread */
            }
        }
    }
    finished = rs__listener_finished_locked(l);
    rs_mutex_unlock(&l->lock);
    if (finished) {
        rs_event_loop_schedule_task_now(l->loop, &l->destroyed_task);
    }
    return RS_OK;
}
