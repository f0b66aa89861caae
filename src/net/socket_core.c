/*
 * The socket code both platforms share (see >>socket_core.h): argument and
 * thread checks, the connect and close paths, the write-request cache and the
 * calls that differ only in one OS call, made through the platform's hooks.
 */

/* RS_EINVAL for a NULL socket (it has no thread to check); RS_EWRONGTHREAD, logged,
 * off the thread of the loop it is tied to. */
static int rs__socket_check_thread(const rs_socket_t *s, const char *function) {
    if (!s) {
        return RS_EINVAL;
    }
    if (!s->loop || rs_event_loop_is_on_loop_thread(s->loop)) {
        return RS_OK;
    }
    RS__LOG_ERROR(RS_LS_SOCKET, "%s: socket %p used off its loop's thread", function, (const void *)s);
    return RS_EWRONGTHREAD;
}

/* The same, then RS_EINVAL for a NULL `required` argument: the thread is
 * checked first, so a call off the loop thread always says so. */
static int rs__socket_check_call(const rs_socket_t *s, const void *required, const char *function) {
    int err = rs__socket_check_thread(s, function);
    return err ? err : (required ? RS_OK : RS_EINVAL);
}

/* The socket waits for its first endpoint to choose its family (and make its
 * OS socket): see rs_socket_options_t.domain. */
static bool rs__socket_domain_pending(const rs_socket_t *s) {
    return s->options.domain == RS_SOCKET_DOMAIN_DEFAULT && s->state != RS__SOCK_CLOSED;
}

/* The loop is gone and the owner still holds the (closed) socket: its
 * rs_socket_destroy frees it on the calling thread. */
static void rs__socket_member_detach(rs_list_node_t *member) {
    RS_CONTAINER_OF(member, rs_socket_t, loop_member)->loop = NULL;
}

static void rs__socket_close_now(rs_socket_t *s) {
    rs__socket_close_internal(s, false);
}

static void rs__socket_deliver_accept(rs_socket_t *l, int error, rs_socket_t *new_socket) {
    if (l->on_accept) {
        l->on_accept(l, error, new_socket, l->accept_user_data);
    } else if (new_socket) {
        rs__socket_close_now(new_socket);
        rs__socket_free(new_socket);
    }
}

static void rs__socket_deliver_connect(rs_socket_t *s, int error) {
    rs_socket_on_connect_fn *on_connect = s->on_connect;
    s->on_connect = NULL;
    if (on_connect) {
        on_connect(s, error, s->connect_user_data);
    }
}

static void rs__socket_connect_done_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_socket_t *s = (rs_socket_t *)arg;
    (void)task;
    (void)status; /* delivered either way: exactly one on_connect per connect */
    s->callback_depth++;
    rs__socket_deliver_connect(s, s->connect_result);
    s->callback_depth--;
    rs__socket_maybe_free(s);
}

static void rs__socket_connect_timeout_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_socket_t *s = (rs_socket_t *)arg;
    (void)task;
    if (status != RS_TASK_STATUS_RUN || s->state != RS__SOCK_CONNECTING) {
        return;
    }
    RS__LOG_DEBUG(RS_LS_SOCKET, "socket %p: connect timed out after %u ms", (void *)s,
                  (unsigned)s->options.connect_timeout_ms);
    rs__socket_close_internal(s, true);
    s->callback_depth++;
    rs__socket_deliver_connect(s, RS_ETIMEDOUT);
    s->callback_depth--;
    rs__socket_maybe_free(s);
}

static void rs__socket_connect_later(rs_socket_t *s, int result) {
    s->connect_result = result;
    rs_event_loop_schedule_task_now(s->loop, &s->connect_done_task);
}

/* For the client bootstrap, whose overall timer bounds every attempt: one
 * timer per connection instead of two. The socket then never times out by
 * itself, so the caller must close it. */
static void rs__socket_skip_connect_timer(rs_socket_t *socket) {
    socket->no_connect_timer = true;
}

static bool rs__socket_can_read(const rs_socket_t *s) {
    if (s->state == RS__SOCK_CONNECTED) {
        return true;
    }
    return s->options.type == RS_SOCKET_DGRAM && (s->state == RS__SOCK_INIT || s->state == RS__SOCK_BOUND);
}

/* Credit `n` bytes read by a scatter read to the buffers, in order. */
static void rs__bufs_credit(rs_byte_buf_t *bufs, size_t count, size_t n) {
    size_t i;
    for (i = 0; i < count && n > 0; ++i) {
        size_t room = bufs[i].capacity - bufs[i].len;
        size_t take = n < room ? n : room;
        bufs[i].len += take;
        n -= take;
    }
}

static rs__write_req_t *rs__socket_take_req(rs_socket_t *s) {
    rs_list_node_t *node = rs_list_pop_front(&s->req_cache);
    if (node) {
        --s->req_cache_count;
        return RS_CONTAINER_OF(node, rs__write_req_t, node);
    }
    return (rs__write_req_t *)rs_mem_calloc(&s->allocator, 1, sizeof(rs__write_req_t));
}

RESEAU_API int rs_socket_resume_reading(rs_socket_t *socket) {
    return rs__socket_set_reading(socket, true, "rs_socket_resume_reading");
}

RESEAU_API int rs_socket_read(rs_socket_t *socket, rs_byte_buf_t *buf, size_t *amount_read) {
    if (!buf) {
        if (amount_read) {
            *amount_read = 0;
        }
        return RS_EINVAL;
    }
    return rs_socket_readv(socket, buf, 1, amount_read);
}

RESEAU_API int rs_socket_pause_reading(rs_socket_t *socket) {
    return rs__socket_set_reading(socket, false, "rs_socket_pause_reading");
}

RESEAU_API bool rs_socket_is_open(const rs_socket_t *socket) {
    return socket && socket->state != RS__SOCK_CLOSED;
}

RESEAU_API int rs_socket_get_remote_address(const rs_socket_t *socket, rs_endpoint_t *out) {
    if (!socket || !out) {
        return RS_EINVAL;
    }
    if (!socket->has_remote) {
        return RS_ENOTCONN;
    }
    *out = socket->remote;
    return RS_OK;
}

RESEAU_API size_t rs_socket_get_pending_write_bytes(const rs_socket_t *socket) {
    return socket ? socket->pending_write_bytes : 0;
}

RESEAU_API rs_event_loop_t *rs_socket_get_loop(const rs_socket_t *socket) {
    return socket ? socket->loop : NULL;
}

static void rs__socket_recycle_req(rs_socket_t *s, rs__write_req_t *req) {
    if (s->req_cache_count < RS__WRITE_REQ_CACHE) {
        rs_list_push_back(&s->req_cache, &req->node);
        ++s->req_cache_count;
        return;
    }
    rs_mem_free(&s->allocator, req);
}

RESEAU_API rs_socket_t *rs_socket_new(const rs_socket_options_t *options, int *err_out) {
    int err;
    rs_socket_t *s = rs__socket_alloc(options ? options->allocator : NULL, options, &err);
    if (s && !rs__socket_domain_pending(s)) {
        err = rs__socket_open_handle(s);
        if (err) {
            rs__socket_free(s);
            s = NULL;
        }
    }
    rs__set_err(err_out, err);
    return s;
}

/* RS_OK while the OS socket is open; RS_ESTATE before it exists; RS_EBADF once closed. */
static int rs__socket_fd_state(const rs_socket_t *s) {
    if (rs__socket_domain_pending(s)) {
        return RS_ESTATE;
    }
    return rs__socket_has_handle(s) ? RS_OK : RS_EBADF;
}

RESEAU_API int rs_socket_listen(rs_socket_t *socket, int backlog) {
    int err = rs__socket_check_thread(socket, "rs_socket_listen");
    if (err) {
        return err;
    }
    if (socket->options.type != RS_SOCKET_STREAM) {
        return RS_EINVAL;
    }
    if ((socket->state != RS__SOCK_INIT && socket->state != RS__SOCK_BOUND) || rs__socket_domain_pending(socket)) {
        return RS_ESTATE;
    }
    err = rs__socket_os_listen(socket, backlog > 0 ? backlog : SOMAXCONN);
    if (err) {
        return err;
    }
    socket->state = RS__SOCK_LISTENING;
    socket->is_listener = true;
    return RS_OK;
}

RESEAU_API int rs_socket_bind(rs_socket_t *socket, const rs_endpoint_t *local) {
    int err = rs__socket_check_call(socket, local, "rs_socket_bind");
    if (!err) {
        err = rs__socket_take_family(socket, local);
    }
    if (!err && socket->state != RS__SOCK_INIT) {
        err = RS_ESTATE;
    }
    if (!err) {
        err = rs__socket_os_bind(socket, local);
    }
    if (err) {
        return err;
    }
    socket->state = RS__SOCK_BOUND;
    return RS_OK;
}

RESEAU_API int rs_socket_shutdown_dir(rs_socket_t *socket, rs_socket_dir_t dir) {
    int err = rs__socket_check_thread(socket, "rs_socket_shutdown_dir");
    if (err) {
        return err;
    }
    if ((dir & RS_SOCKET_DIR_BOTH) == 0 || (dir & ~RS_SOCKET_DIR_BOTH) != 0) {
        return RS_EINVAL;
    }
    if (socket->state != RS__SOCK_CONNECTED) {
        return socket->state == RS__SOCK_CLOSED ? RS_EBADF : RS_ENOTCONN;
    }
    if (dir & RS_SOCKET_DIR_READ) {
        err = rs__socket_os_shutdown(socket, RS_SOCKET_DIR_READ);
        if (err) {
            return err;
        }
    }
    if ((dir & RS_SOCKET_DIR_WRITE) && !socket->write_shut) {
        socket->write_shut = true;
        if (rs_list_empty(&socket->write_queue) && !rs__socket_send_in_flight(socket)) {
            rs__socket_shutdown_write_now(socket);
        } else {
            socket->shut_write_pending = true; /* after the queued bytes */
        }
    }
    return RS_OK;
}

static void rs__socket_shutdown_write_now(rs_socket_t *s) {
    s->shut_write_pending = false;
    if (rs__socket_has_handle(s)) {
        int err = rs__socket_os_shutdown(s, RS_SOCKET_DIR_WRITE);
        if (err) {
            RS__LOG_DEBUG(RS_LS_SOCKET, "socket %p: write shutdown failed: %s", (void *)s, rs_strerror(err));
        }
    }
}

/* The checks both receive calls share; `valid` is the caller's verdict on
 * its arguments, which comes after the socket's own checks. */
static int rs__dgram_check_recv(const rs_socket_t *s, bool valid, const char *function) {
    int err = rs__socket_check_dgram(s, function); /* NULL socket, then the thread, first */
    if (!err && !valid) {
        err = RS_EINVAL;
    }
    return err ? err : rs__socket_fd_state(s); /* nothing to receive on before the first send_to or bind */
}

/* An error that a batch receive met after some datagrams, kept for the next
 * receive call (see rs__dgram_recv_some); RS_OK if none. */
static int rs__dgram_take_deferred_error(rs_socket_t *s) {
    int err = s->deferred_recv_error;
    s->deferred_recv_error = RS_OK;
    return err;
}

RESEAU_API int rs_socket_send_to(rs_socket_t *socket, const rs_endpoint_t *destination, rs_byte_cursor_t data) {
    int err = rs__socket_check_dgram(socket, "rs_socket_send_to");
    return err ? err : rs__dgram_send_one(socket, destination, data.ptr, data.len);
}

RESEAU_API int rs_socket_recv_from(rs_socket_t *socket, rs_datagram_t *datagram) {
    bool valid = datagram && datagram->data && datagram->capacity;
    int err = rs__dgram_check_recv(socket, valid, "rs_socket_recv_from");
    err = err ? err : rs__dgram_take_deferred_error(socket);
    return err ? err : rs__dgram_recv_one(socket, datagram);
}

static int rs__socket_check_dgram(const rs_socket_t *s, const char *function) {
    int err = rs__socket_check_thread(s, function);
    if (err) {
        return err;
    }
    if (s->options.type != RS_SOCKET_DGRAM) {
        return RS_EINVAL;
    }
    /* A default-domain socket has no OS socket yet: its first send_to makes one. */
    return !rs__socket_has_handle(s) && !rs__socket_domain_pending(s) ? RS_EBADF : RS_OK;
}

typedef struct rs__cross_thread_close {
    rs_task_t task;
    rs_socket_t *socket;
    rs_mutex_t lock;
    rs_condvar_t cond;
    bool destroy; /* and free it, once the kernel holds nothing of it */
    bool done;
} rs__cross_thread_close_t;

static void rs__cross_thread_close_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs__cross_thread_close_t *xc = (rs__cross_thread_close_t *)arg;
    (void)task;
    (void)status; /* canceled means the loop is being destroyed: close all the same */
    rs__socket_close_now(xc->socket);
    if (xc->destroy) {
        /* Set here, on the loop thread, where its completions are handled. */
        xc->socket->destroy_requested = true;
        rs__socket_maybe_free(xc->socket);
    }
    rs_mutex_lock(&xc->lock);
    xc->done = true;
    rs_condvar_signal(&xc->cond);
    rs_mutex_unlock(&xc->lock);
}

/* Close a listener from a thread other than its loop's, waiting until done;
 * with destroy, the loop also frees it once nothing of it is in flight. */
static int rs__socket_close_listener_from_afar(rs_socket_t *s, bool destroy) {
    rs__cross_thread_close_t xc;
    int err;
    memset(&xc, 0, sizeof(xc));
    xc.socket = s;
    xc.destroy = destroy;
    err = rs_mutex_init(&xc.lock);
    if (err) {
        return err;
    }
    err = rs_condvar_init(&xc.cond);
    if (err) {
        rs_mutex_cleanup(&xc.lock);
        return err;
    }
    rs_task_init(&xc.task, rs__cross_thread_close_task, &xc, "socket_cross_thread_close");
    rs_event_loop_schedule_task_now(s->loop, &xc.task);
    rs_mutex_lock(&xc.lock);
    while (!xc.done) {
        rs_condvar_wait(&xc.cond, &xc.lock);
    }
    rs_mutex_unlock(&xc.lock);
    rs_condvar_cleanup(&xc.cond);
    rs_mutex_cleanup(&xc.lock);
    return RS_OK;
}

RESEAU_API int rs_socket_close(rs_socket_t *socket) {
    if (!socket) {
        return RS_EINVAL;
    }
    if (socket->loop && !rs_event_loop_is_on_loop_thread(socket->loop)) {
        if (socket->is_listener) {
            return rs__socket_close_listener_from_afar(socket, false);
        }
        return rs__socket_check_thread(socket, "rs_socket_close");
    }
    rs__socket_close_now(socket);
    return RS_OK;
}

RESEAU_API void rs_socket_destroy(rs_socket_t *socket) {
    if (!socket) {
        return;
    }
    if (socket->loop && !rs_event_loop_is_on_loop_thread(socket->loop)) {
        if (socket->state == RS__SOCK_CLOSED && socket->callback_depth == 0 && !rs__socket_ops_pending(socket) &&
            !rs_task_is_scheduled(&socket->completion_task) && !rs_task_is_scheduled(&socket->connect_done_task)) {
            rs__socket_free(socket);
            return;
        }
        if (!socket->is_listener) {
            RS__LOG_ERROR(RS_LS_SOCKET, "rs_socket_destroy: socket %p destroyed off its loop's thread; leaked",
                          (void *)socket);
            RESEAU_ASSERT(!"rs_socket_destroy off the socket's loop thread");
            return;
        }
        /* A listener: its loop closes it and frees it once nothing of it is in flight. */
        rs__socket_close_listener_from_afar(socket, true);
        return;
    }
    rs__socket_close_now(socket);
    socket->destroy_requested = true;
    rs__socket_maybe_free(socket);
}

static void rs__socket_maybe_free(rs_socket_t *s) {
    if (!s->destroy_requested || s->callback_depth > 0 || rs__socket_ops_pending(s)) {
        return; /* the kernel still owns memory in it, or a callback is on the stack */
    }
    if (rs_task_is_scheduled(&s->completion_task) || rs_task_is_scheduled(&s->connect_done_task)) {
        return; /* freed after they deliver their RS_ECANCELED completions */
    }
    rs__socket_free(s);
}
