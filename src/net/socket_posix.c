#if RESEAU_OS_POSIX /* Windows: >>net_win.c */
/*
 * Sockets on POSIX: non-blocking fds driven by the loop's readiness events.
 *
 * One readiness callback serves every state (connecting, listening,
 * connected); the subscribed mask always matches what the socket needs right
 * now (rs__socket_update_interest), so level-triggered readiness never spins.
 * Completions go through tasks so they are never delivered inside the call
 * that started them, and a depth counter defers freeing while any of the
 * socket's own callbacks is on the stack. What this shares with the Winsock
 * sockets (checks, connect and close paths, bind/listen) is in >>socket_core.c.
 */

/* Writes gathered into one sendmsg; IOV_MAX is far larger, this keeps the stack small. */
#define RS__WRITE_IOV_MAX 64
/* Connections accepted per readiness event before yielding to other work. High
 * enough that a burst never outgrows the kernel's accept queue between ticks
 * (64 overflowed it under 100 concurrent connects: tools/bench pound_100). */
#define RS__ACCEPT_BUDGET 1024

/* Exactly one of the two functions is set: sockets and pipe ends share the core. */
typedef struct rs__write_cb {
    rs_socket_on_write_fn *socket_fn;
    rs_pipe_on_write_fn *pipe_fn;
    void *user_data;
} rs__write_cb_t;

struct rs__write_req {
    rs_list_node_t node;
    rs_byte_cursor_t remaining;
    size_t written;
    rs__write_cb_t cb;
    int error;
};

/* A connected stream socket's completion-based I/O (net/socket_uring.c). */
typedef struct rs__socket_uring rs__socket_uring_t;

struct rs_socket {
    rs_allocator_t allocator;
    rs_socket_options_t options; /* copied; network_interface_name points at interface_name */
    char interface_name[IF_NAMESIZE];
    rs_event_loop_t *loop; /* NULL until tied to one, and once that loop was destroyed */
    rs_list_node_t loop_member; /* the loop's destroy closes it */
    rs_io_handle_t io;
    rs__socket_state_t state;
    int interest; /* the mask wanted from the loop; 0 when parked or not subscribed */
    int callback_depth;
    bool destroy_requested;
    bool is_listener;

    rs_socket_on_connect_fn *on_connect;
    void *connect_user_data;
    int connect_result;
    bool no_connect_timer; /* a caller with a timer of its own (the client bootstrap) */
    rs_task_t connect_timeout_task;
    rs_task_t connect_done_task;

    rs_socket_on_accept_fn *on_accept;
    void *accept_user_data;
    bool accepting;
    bool accept_backoff;
    uint32_t accept_backoff_ms;
    rs_task_t accept_retry_task;

    rs_socket_on_readable_fn *on_readable;
    rs_pipe_on_readable_fn *on_pipe_readable;
    void *readable_user_data;
    bool reading;
    bool read_done; /* EOF or a read error was returned: stop readable events */
    bool drained;   /* STREAM: a short read took all that waited; until readiness is reported again, a read
                     * answers RS_EAGAIN itself (see rs_socket_readv) */

    rs_list_t write_queue;
    rs_list_t completed;
    rs_list_t req_cache;
    size_t req_cache_count;
    size_t pending_write_bytes;
    int write_error; /* sticky: the error that failed the write side */
    bool write_shut;
    bool shut_write_pending;
    rs_task_t completion_task;

    rs_endpoint_t remote;
    bool has_remote;
    int deferred_recv_error; /* DGRAM without recvmmsg: see rs__dgram_recv_some */
    rs__socket_uring_t *uring; /* NULL: readiness-based */
};

static void rs__socket_on_event(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data);

/* The completion-based strategy, in net/socket_uring.c. */
static void rs__sock_uring_enter(rs_socket_t *s);
static void rs__sock_uring_update_recv(rs_socket_t *s);
static int rs__sock_uring_readv(rs_socket_t *s, rs_byte_buf_t *bufs, size_t count, size_t *amount_read);
static void rs__sock_uring_flush(rs_socket_t *s);
static void rs__sock_uring_close(rs_socket_t *s);
static void rs__sock_uring_free(rs_socket_t *s);
static bool rs__sock_uring_is_connecting(const rs_socket_t *s);
static int rs__sock_uring_connect(rs_socket_t *s, const rs__sockaddr_t *addr, socklen_t len);
static void rs__sock_uring_listen(rs_socket_t *l);
static int rs__sock_uring_update_accept(rs_socket_t *l);
static bool rs__sock_uring_reads_fd(const rs_socket_t *s);
static bool rs__sock_uring_recv_dgrams(rs_socket_t *s, rs_datagram_t *d, size_t count, size_t *received,
                                       int *result);

static int rs__errno_result(void) {
    return rs_result_from_errno(errno);
}

/* ---- creation and options ---- */

static int rs__setsockopt_int(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, &value, (socklen_t)sizeof(value)) == 0 ? RS_OK : rs__errno_result();
}

/* SO_NOSIGPIPE where sends cannot say MSG_NOSIGNAL (macOS); see platform.c. */
static int rs__set_nosigpipe(int fd) {
    if (RS__HAVE_MSG_NOSIGNAL || !RS__HAVE_SO_NOSIGPIPE) {
        return RS_OK;
    }
    return rs__setsockopt_int(fd, SOL_SOCKET, RS__SO_NOSIGPIPE, 1);
}

/* Every fd the socket layer makes or accepts goes through here: non-blocking
 * and close-on-exec (unless the call that made it said so already, as
 * `flags_given`), and no SIGPIPE on writes. */
static int rs__prepare_fd(int fd, bool flags_given) {
    int err = flags_given ? RS_OK : rs__set_nonblocking_cloexec(fd);
    return err ? err : rs__set_nosigpipe(fd);
}

/* One keepalive timer, skipped when 0; RS_ENOTSUP for a non-zero value the
 * OS cannot set per socket (`have` is its RS__HAVE_TCP_KEEPxxx). */
static int rs__set_keepalive_timer(int fd, bool have, int name, uint32_t value) {
    if (value == 0) {
        return RS_OK;
    }
    if (!have) {
        return RS_ENOTSUP;
    }
    if (value > (uint32_t)INT_MAX) {
        return RS_EINVAL;
    }
    return rs__setsockopt_int(fd, IPPROTO_TCP, name, (int)value);
}

/* The three keepalive timers, by their names on this OS (see platform.c). */
static int rs__set_keepalive_timers(int fd, uint32_t idle_s, uint32_t interval_s, uint32_t probes) {
    int err = rs__set_keepalive_timer(fd, RS__HAVE_TCP_KEEPIDLE, RS__TCP_KEEPIDLE, idle_s);
    err = err ? err : rs__set_keepalive_timer(fd, RS__HAVE_TCP_KEEPINTVL, RS__TCP_KEEPINTVL, interval_s);
    return err ? err : rs__set_keepalive_timer(fd, RS__HAVE_TCP_KEEPCNT, RS__TCP_KEEPCNT, probes);
}

static bool rs__socket_is_tcp(const rs_socket_t *s) {
    return s->options.type == RS_SOCKET_STREAM &&
           (s->options.domain == RS_SOCKET_DOMAIN_IPV4 || s->options.domain == RS_SOCKET_DOMAIN_IPV6);
}

/* Options that matter on every connection, accepted ones included. */
static int rs__socket_apply_connection_options(rs_socket_t *s) {
    const rs_socket_options_t *o = &s->options;
    int fd = s->io.fd;
    int err = RS_OK;
    if (o->send_buffer_size) {
        err = rs__setsockopt_int(fd, SOL_SOCKET, SO_SNDBUF, (int)o->send_buffer_size);
    }
    if (!err && o->recv_buffer_size) {
        err = rs__setsockopt_int(fd, SOL_SOCKET, SO_RCVBUF, (int)o->recv_buffer_size);
    }
    if (!err && rs__socket_is_tcp(s) && o->tcp_nodelay) {
        err = rs__setsockopt_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    }
    if (!err && rs__socket_is_tcp(s) && o->keepalive) {
        err = rs__setsockopt_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
        if (!err) {
            err = rs__set_keepalive_timers(fd, o->keepalive_idle_s, o->keepalive_interval_s, o->keepalive_probes);
        }
    }
    return err;
}

/* network_interface_name: by name with SO_BINDTODEVICE (Linux), by index with
 * IP_BOUND_IF / IPV6_BOUND_IF (macOS, IP sockets only); RS_ENOTSUP elsewhere. */
static int rs__socket_bind_to_device(rs_socket_t *s) {
#if RS__HAVE_SO_BINDTODEVICE
    socklen_t len = (socklen_t)strlen(s->interface_name);
    return setsockopt(s->io.fd, SOL_SOCKET, SO_BINDTODEVICE, s->interface_name, len) == 0 ? RS_OK : rs__errno_result();
#elif RS__HAVE_IP_BOUND_IF
    int index = (int)if_nametoindex(s->interface_name);
    if (index == 0) {
        return RS_ENODEV;
    }
    if (s->options.domain == RS_SOCKET_DOMAIN_IPV6) {
        return rs__setsockopt_int(s->io.fd, IPPROTO_IPV6, IPV6_BOUND_IF, index);
    }
    return s->options.domain == RS_SOCKET_DOMAIN_IPV4 ? rs__setsockopt_int(s->io.fd, IPPROTO_IP, IP_BOUND_IF, index)
                                                       : RS_ENOTSUP;
#else
    (void)s;
    return RS_ENOTSUP;
#endif
}

/* Options that must be set before bind. */
static int rs__socket_apply_bind_options(rs_socket_t *s) {
    const rs_socket_options_t *o = &s->options;
    int fd = s->io.fd;
    int err = RS_OK;
    if (o->reuseaddr) {
        err = rs__setsockopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    }
    if (!err && o->reuseport) {
        err = RS__HAVE_SO_REUSEPORT ? rs__setsockopt_int(fd, SOL_SOCKET, RS__SO_REUSEPORT, 1) : RS_ENOTSUP;
    }
    if (!err && o->domain == RS_SOCKET_DOMAIN_IPV6 && o->ipv6_only != RS_SOCKET_IPV6_ONLY_DEFAULT) {
        err = rs__setsockopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, o->ipv6_only == RS_SOCKET_IPV6_ONLY_ON);
    }
    if (!err && o->network_interface_name) {
        err = rs__socket_bind_to_device(s);
    }
    return err;
}

/* The one place rs_socket_options_t defaults are applied and validated. */
static int rs__socket_apply_defaults(rs_socket_t *s, const rs_socket_options_t *options) {
    memset(&s->options, 0, sizeof(s->options));
    if (options) {
        s->options = *options;
    }
    s->options.allocator = NULL; /* copied into s->allocator; the pointer may dangle */
    if (s->options.connect_timeout_ms == 0) {
        s->options.connect_timeout_ms = RS_SOCKET_DEFAULT_CONNECT_TIMEOUT_MS;
    }
    if (s->options.type != RS_SOCKET_STREAM && s->options.type != RS_SOCKET_DGRAM) {
        return RS_EINVAL;
    }
    if (s->options.network_interface_name) {
        size_t len = strlen(s->options.network_interface_name);
        if (len == 0 || len >= sizeof(s->interface_name)) {
            return RS_EINVAL;
        }
        memcpy(s->interface_name, s->options.network_interface_name, len + 1);
        s->options.network_interface_name = s->interface_name;
    }
    return RS_OK;
}

static void rs__socket_accept_retry_task(rs_task_t *task, void *arg, rs_task_status_t status);
static void rs__socket_completion_task(rs_task_t *task, void *arg, rs_task_status_t status);

/* Allocate and initialise the struct around an fd (or -1); no syscalls. */
static rs_socket_t *rs__socket_alloc(const rs_allocator_t *allocator, const rs_socket_options_t *options, int *err_out) {
    rs_allocator_t a = rs__allocator_copy(allocator);
    rs_socket_t *s = (rs_socket_t *)rs_mem_calloc(&a, 1, sizeof(rs_socket_t));
    int err;
    if (!s) {
        *err_out = RS_ENOMEM;
        return NULL;
    }
    s->allocator = a;
    s->io.fd = -1;
    err = rs__socket_apply_defaults(s, options);
    if (err) {
        rs_mem_free(&a, s);
        *err_out = err;
        return NULL;
    }
    s->reading = true;
    rs_list_init(&s->write_queue);
    rs_list_init(&s->completed);
    rs_list_init(&s->req_cache);
    rs_task_init(&s->connect_timeout_task, rs__socket_connect_timeout_task, s, "socket_connect_timeout");
    rs_task_init(&s->connect_done_task, rs__socket_connect_done_task, s, "socket_connect_done");
    rs_task_init(&s->accept_retry_task, rs__socket_accept_retry_task, s, "socket_accept_retry");
    rs_task_init(&s->completion_task, rs__socket_completion_task, s, "socket_write_completion");
    *err_out = RS_OK;
    return s;
}

static void rs__socket_free(rs_socket_t *s) {
    rs_allocator_t allocator = s->allocator;
    rs_list_node_t *node;
    rs__event_loop_remove_member(s->loop, &s->loop_member);
    rs__sock_uring_free(s);
    while ((node = rs_list_pop_front(&s->req_cache)) != NULL) {
        rs_mem_free(&allocator, RS_CONTAINER_OF(node, rs__write_req_t, node));
    }
    rs_mem_free(&allocator, s);
}

static int rs__socket_open_handle(rs_socket_t *s) {
    int family;
    int type = s->options.type == RS_SOCKET_DGRAM ? SOCK_DGRAM : SOCK_STREAM;
    int err = rs__domain_family(s->options.domain, &family);
    if (err) {
        return err;
    }
    s->io.fd = socket(family, type | RS__SOCK_FLAGS, 0);
    if (s->io.fd < 0) {
        err = rs__errno_result();
        RS__LOG_ERROR(RS_LS_SOCKET, "socket() failed: %s (errno %d)", strerror(errno), errno);
        return err;
    }
    err = rs__prepare_fd(s->io.fd, RS__HAVE_SOCK_FLAGS);
    if (!err) {
        err = rs__socket_apply_bind_options(s);
    }
    if (!err) {
        err = rs__socket_apply_connection_options(s);
    }
    if (err) {
        RS__LOG_ERROR(RS_LS_SOCKET, "cannot apply socket options: %s", rs_strerror(err));
        close(s->io.fd);
        s->io.fd = -1;
    }
    return err;
}

RESEAU_API int rs_socket_get_fd(const rs_socket_t *socket) {
    return socket ? socket->io.fd : -1;
}

/* ---- readiness interest ---- */

static int rs__socket_wanted_events(const rs_socket_t *s) {
    int want = 0;
    bool has_reader = s->on_readable || s->on_pipe_readable;
    switch (s->state) {
    case RS__SOCK_CONNECTING:
        return rs__sock_uring_is_connecting(s) ? 0 : RS_IO_WRITABLE;
    case RS__SOCK_LISTENING:
        return s->accepting && !s->accept_backoff ? RS_IO_READABLE : 0;
    case RS__SOCK_CLOSED:
        return 0;
    default:
        break;
    }
    if (s->uring) {
        return 0; /* the ring receives and sends */
    }
    if (rs__socket_can_read(s) && has_reader && s->reading && !s->read_done) {
        want |= RS_IO_READABLE;
    }
    if (!rs_list_empty(&s->write_queue)) {
        want |= RS_IO_WRITABLE;
    }
    return want;
}

/* Make the loop subscription match what the socket needs now. Needing
 * nothing parks the subscription rather than ending it (only close ends it):
 * a connected socket needs nothing until its reader arrives, usually in the
 * same tick, and the loop then tells the kernel nothing at all. */
static int rs__socket_update_interest(rs_socket_t *s) {
    int want;
    int err;
    if (!s->loop || s->io.fd < 0) {
        return RS_OK;
    }
    if (s->uring && s->state == RS__SOCK_LISTENING) {
        return rs__sock_uring_update_accept(s);
    }
    want = rs__socket_wanted_events(s);
    if (want == s->interest) {
        return RS_OK;
    }
    err = rs__event_loop_set_interest(s->loop, &s->io, want, rs__socket_on_event, s);
    if (err) {
        RS__LOG_ERROR(RS_LS_SOCKET, "socket %p: cannot update readiness interest: %s", (void *)s, rs_strerror(err));
        return err;
    }
    s->interest = want;
    return RS_OK;
}

/* ---- the loop's destroy ---- */

/* Its loop is being destroyed with it open: close it. A pending connect and
 * queued writes complete RS_ECANCELED through their tasks (the destroy runs
 * them); an accepting listener's on_accept and a reader's callback hear
 * RS_ECANCELED now, once, so that their owners learn the socket is done. */
static void rs__socket_member_end(rs_list_node_t *member) {
    rs_socket_t *s = RS_CONTAINER_OF(member, rs_socket_t, loop_member);
    bool accepting = s->state == RS__SOCK_LISTENING && s->accepting && s->on_accept;
    bool reading = !accepting && s->state == RS__SOCK_CONNECTED && !s->read_done &&
                   (s->on_readable || s->on_pipe_readable);
    if (s->state == RS__SOCK_CLOSED) {
        return;
    }
    RS__LOG_DEBUG(RS_LS_SOCKET, "socket %p: its loop is being destroyed; closing it", (void *)s);
    rs__socket_close_now(s);
    s->callback_depth++;
    if (accepting) {
        s->on_accept(s, RS_ECANCELED, NULL, s->accept_user_data);
    } else if (reading && s->on_readable) {
        s->on_readable(s, RS_ECANCELED, s->readable_user_data);
    } else if (reading) {
        s->on_pipe_readable((rs_pipe_read_end_t *)(void *)s, RS_ECANCELED, s->readable_user_data);
    }
    s->callback_depth--;
    rs__socket_maybe_free(s);
}

static const rs__loop_member_ops_t rs__socket_member_ops = {
    RS__MEMBER_SOCKET, rs__socket_member_end, rs__socket_member_detach,
};

/* From now on the socket lives on `loop`, whose destroy will close it. */
static void rs__socket_tie_to_loop(rs_socket_t *s, rs_event_loop_t *loop) {
    if (s->loop == loop) {
        return; /* tied already (a listener accepting again) */
    }
    s->loop = loop;
    rs__event_loop_add_member(loop, &s->loop_member, &rs__socket_member_ops);
}

/* ---- freeing and closing ---- */

static void rs__socket_schedule_completions(rs_socket_t *s) {
    if (!rs_list_empty(&s->completed) && !rs_task_is_scheduled(&s->completion_task)) {
        rs_event_loop_schedule_task_now(s->loop, &s->completion_task);
    }
}

/* Fail every queued write with `error`; each completes, in order, through the completion task. */
static void rs__socket_fail_writes(rs_socket_t *s, int error) {
    rs_list_node_t *node;
    while ((node = rs_list_pop_front(&s->write_queue)) != NULL) {
        rs__write_req_t *req = RS_CONTAINER_OF(node, rs__write_req_t, node);
        req->error = error;
        rs_list_push_back(&s->completed, &req->node);
    }
    s->pending_write_bytes = 0;
    rs__socket_schedule_completions(s);
}

/* Close the fd and end everything in flight. A pending connect completes with
 * RS_ECANCELED, unless keep_connect: then the caller, which is failing the
 * connect itself, reports its own error. */
static void rs__socket_close_internal(rs_socket_t *s, bool keep_connect) {
    if (s->state == RS__SOCK_CLOSED) {
        return;
    }
    if (s->io.impl) {
        rs_event_loop_unsubscribe(s->loop, &s->io);
    }
    s->interest = 0;
    rs__sock_uring_close(s);
    if (s->io.fd >= 0) {
        close(s->io.fd);
        s->io.fd = -1;
    }
    s->state = RS__SOCK_CLOSED;
    s->accepting = false;
    if (!s->loop) {
        return;
    }
    rs_event_loop_cancel_task(s->loop, &s->accept_retry_task);
    rs_event_loop_cancel_task(s->loop, &s->connect_timeout_task);
    if (s->on_connect && !keep_connect) {
        s->connect_result = RS_ECANCELED;
        if (!rs_task_is_scheduled(&s->connect_done_task)) {
            rs_event_loop_schedule_task_now(s->loop, &s->connect_done_task);
        }
    }
    rs__socket_fail_writes(s, RS_ECANCELED);
}

/* ---- the hooks of >>socket_core.h ---- */

static bool rs__socket_has_handle(const rs_socket_t *s) {
    return s->io.fd >= 0;
}

/* io_uring's close cancels synchronously, so nothing is ever left in flight. */
static bool rs__socket_ops_pending(const rs_socket_t *s) {
    (void)s;
    return false;
}

/* Unsent bytes stay on the write queue until the kernel took them. */
static bool rs__socket_send_in_flight(const rs_socket_t *s) {
    (void)s;
    return false;
}

static int rs__socket_os_bind(rs_socket_t *s, const rs_endpoint_t *local) {
    rs__sockaddr_t sa;
    socklen_t len;
    int err = rs__endpoint_to_sockaddr(local, &sa, &len);
    if (err) {
        return err;
    }
    if (bind(s->io.fd, &sa.sa, len) != 0) {
        err = rs__errno_result();
        RS__LOG_DEBUG(RS_LS_SOCKET, "bind failed: %s (errno %d)", strerror(errno), errno);
    }
    return err;
}

static int rs__socket_os_listen(rs_socket_t *s, int backlog) {
    return listen(s->io.fd, backlog) == 0 ? RS_OK : rs__errno_result();
}

static int rs__socket_os_shutdown(rs_socket_t *s, rs_socket_dir_t dir) {
    return shutdown(s->io.fd, dir == RS_SOCKET_DIR_READ ? SHUT_RD : SHUT_WR) == 0 ? RS_OK : rs__errno_result();
}

/* ---- bind, listen, addresses ---- */

static int rs__socket_check_endpoint(const rs_socket_t *s, const rs_endpoint_t *endpoint) {
    if (!endpoint || endpoint->domain != s->options.domain) {
        return RS_EINVAL;
    }
    return RS_OK;
}

/* The endpoint must be of the socket's domain; a socket at the default domain
 * takes the endpoint's and makes its OS socket now. */
static int rs__socket_take_family(rs_socket_t *s, const rs_endpoint_t *endpoint) {
    int err;
    if (!endpoint) {
        return RS_EINVAL;
    }
    if (s->state == RS__SOCK_CLOSED) {
        return RS_EBADF;
    }
    if (!rs__socket_domain_pending(s)) {
        return rs__socket_check_endpoint(s, endpoint);
    }
    if (endpoint->domain == RS_SOCKET_DOMAIN_DEFAULT) {
        return RS_EINVAL;
    }
    s->options.domain = endpoint->domain;
    err = rs__socket_open_handle(s);
    if (err) {
        s->options.domain = RS_SOCKET_DOMAIN_DEFAULT;
        return err;
    }
    /* Assigned and subscribed before it had an fd: subscribe it now (a
     * datagram socket on a loop with ops receives through the ring). */
    rs__sock_uring_enter(s);
    return rs__socket_update_interest(s);
}

static int rs__socket_name(int fd, bool peer, rs_endpoint_t *out) {
    rs__sockaddr_t sa;
    socklen_t len = (socklen_t)sizeof(sa);
    int r;
    memset(&sa, 0, sizeof(sa));
    r = peer ? getpeername(fd, &sa.sa, &len) : getsockname(fd, &sa.sa, &len);
    if (r != 0) {
        return rs__errno_result();
    }
    return rs__endpoint_from_sockaddr(out, &sa, len);
}

RESEAU_API int rs_socket_get_bound_address(const rs_socket_t *socket, rs_endpoint_t *out) {
    int err;
    if (!socket || !out) {
        return RS_EINVAL;
    }
    err = rs__socket_fd_state(socket);
    return err ? err : rs__socket_name(socket->io.fd, false, out);
}

/* ---- accepting ---- */

/* Wrap an accepted fd in an unassigned socket with the listener's options. */
static rs_socket_t *rs__socket_from_accepted(rs_socket_t *listener, int fd, const rs__sockaddr_t *sa, socklen_t len,
                                             int *err_out) {
    rs_socket_t *s = rs__socket_alloc(&listener->allocator, &listener->options, err_out);
    if (!s) {
        return NULL;
    }
    s->io.fd = fd;
    *err_out = rs__prepare_fd(fd, RS__HAVE_ACCEPT4);
    if (!*err_out) {
        *err_out = rs__socket_apply_connection_options(s);
    }
    if (*err_out) {
        s->io.fd = -1;
        rs__socket_free(s);
        return NULL;
    }
    s->state = RS__SOCK_CONNECTED;
    s->has_remote = rs__endpoint_from_sockaddr(&s->remote, sa, len) == RS_OK;
    return s;
}

/* accept4 with the flags where there is one; otherwise rs__socket_from_accepted
 * sets them (rs__prepare_fd). */
static int rs__accept_fd(int listen_fd, rs__sockaddr_t *sa, socklen_t *len) {
    *len = (socklen_t)sizeof(*sa);
#if RS__HAVE_ACCEPT4
    return accept4(listen_fd, &sa->sa, len, RS__SOCK_FLAGS);
#else
    return accept(listen_fd, &sa->sa, len);
#endif
}

/* Errors after which the next accept may well succeed (Linux reports pending
 * network errors of the new connection through accept). */
static bool rs__accept_error_is_transient(int os_error) {
    switch (os_error) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EOPNOTSUPP:
        return true;
    default:
        return false;
    }
}

static bool rs__accept_error_is_exhaustion(int os_error) {
    return os_error == EMFILE || os_error == ENFILE || os_error == ENOBUFS || os_error == ENOMEM;
}

/* Out of fds or memory: stop polling the listener for a while instead of
 * spinning on a readiness that accept cannot consume. */
static void rs__socket_accept_backoff(rs_socket_t *l, int error) {
    uint32_t ms = l->accept_backoff_ms ? l->accept_backoff_ms * 2 : RS__ACCEPT_BACKOFF_MIN_MS;
    l->accept_backoff_ms = ms > RS__ACCEPT_BACKOFF_MAX_MS ? RS__ACCEPT_BACKOFF_MAX_MS : ms;
    l->accept_backoff = true;
    rs__socket_update_interest(l);
    RS__LOG_WARN(RS_LS_SOCKET, "listener %p cannot accept (%s); retrying in %u ms", (void *)l, rs_strerror(error),
                 (unsigned)l->accept_backoff_ms);
    /* On io_uring, connections the op took still arrive while it backs off,
     * and each may fail again: the retry moves later rather than twice. */
    rs_event_loop_cancel_task(l->loop, &l->accept_retry_task);
    rs_event_loop_schedule_task_future(l->loop, &l->accept_retry_task,
                                       rs_event_loop_now_ns(l->loop) + l->accept_backoff_ms * RS_NS_PER_MS);
    rs__socket_deliver_accept(l, error, NULL);
}

static void rs__socket_accept_retry_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_socket_t *l = (rs_socket_t *)arg;
    (void)task;
    int err;
    if (status != RS_TASK_STATUS_RUN || l->state != RS__SOCK_LISTENING) {
        return;
    }
    l->accept_backoff = false;
    err = rs__socket_update_interest(l);
    if (err) {
        rs__socket_accept_backoff(l, err); /* cannot even watch the listener: try again later */
    }
}

static void rs__socket_accept_some(rs_socket_t *l) {
    int i;
    for (i = 0; i < RS__ACCEPT_BUDGET && l->state == RS__SOCK_LISTENING && l->accepting; ++i) {
        rs__sockaddr_t sa;
        socklen_t len;
        rs_socket_t *s;
        int err;
        int fd = rs__accept_fd(l->io.fd, &sa, &len);
        if (fd < 0) {
            int os_error = errno;
            if (os_error == EAGAIN || os_error == EWOULDBLOCK) {
                return;
            }
            if (rs__accept_error_is_transient(os_error)) {
                continue;
            }
            if (rs__accept_error_is_exhaustion(os_error)) {
                rs__socket_accept_backoff(l, rs_result_from_errno(os_error));
                return;
            }
            RS__LOG_ERROR(RS_LS_SOCKET, "accept failed: %s (errno %d)", strerror(os_error), os_error);
            rs__socket_deliver_accept(l, rs_result_from_errno(os_error), NULL);
            return;
        }
        s = rs__socket_from_accepted(l, fd, &sa, len, &err);
        if (!s) {
            close(fd);
            rs__socket_accept_backoff(l, err);
            return;
        }
        l->accept_backoff_ms = 0;
        rs__socket_deliver_accept(l, RS_OK, s);
    }
}

RESEAU_API int rs_socket_start_accept(rs_socket_t *listener, rs_event_loop_t *loop, rs_socket_on_accept_fn *on_accept,
                                      void *user_data) {
    int err;
    if (!listener || !loop || !on_accept) {
        return RS_EINVAL;
    }
    if (listener->loop && listener->loop != loop) {
        return RS_EBUSY;
    }
    if (!rs_event_loop_is_on_loop_thread(loop)) {
        RS__LOG_ERROR(RS_LS_SOCKET, "rs_socket_start_accept called off the loop's thread");
        return RS_EWRONGTHREAD;
    }
    if (listener->state != RS__SOCK_LISTENING) {
        return RS_ESTATE;
    }
    rs__socket_tie_to_loop(listener, loop);
    rs__sock_uring_listen(listener);
    listener->on_accept = on_accept;
    listener->accept_user_data = user_data;
    listener->accepting = true;
    err = rs__socket_update_interest(listener);
    if (err) {
        listener->accepting = false;
    }
    return err;
}

RESEAU_API int rs_socket_stop_accept(rs_socket_t *listener) {
    int err = rs__socket_check_thread(listener, "rs_socket_stop_accept");
    if (err) {
        return err;
    }
    if (listener->state != RS__SOCK_LISTENING) {
        return RS_ESTATE;
    }
    listener->accepting = false;
    rs_event_loop_cancel_task(listener->loop, &listener->accept_retry_task);
    listener->accept_backoff = false;
    return rs__socket_update_interest(listener);
}

/* ---- connecting ---- */

/* The socket's pending error (errno), taken once: SO_ERROR, or the error the
 * loop's backend read with this event if it cleared SO_ERROR doing so. */
static int rs__socket_take_error(rs_socket_t *s) {
    int so_error = 0;
    socklen_t len = (socklen_t)sizeof(so_error);
    if (getsockopt(s->io.fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) {
        return errno;
    }
    return so_error ? so_error : rs__io_handle_os_error(&s->io);
}

static void rs__socket_finish_connect(rs_socket_t *s, int events) {
    int so_error = rs__socket_take_error(s);
    int err;
    if (!so_error && !(events & RS_IO_WRITABLE)) {
        if (!(events & (RS_IO_HANGUP | RS_IO_ERROR))) {
            return; /* not done yet */
        }
        so_error = ECONNRESET;
    }
    rs_event_loop_cancel_task(s->loop, &s->connect_timeout_task);
    if (so_error) {
        err = rs_result_from_errno(so_error);
        RS__LOG_DEBUG(RS_LS_SOCKET, "socket %p: connect failed: %s", (void *)s, rs_strerror(err));
        rs__socket_close_internal(s, true);
        rs__socket_deliver_connect(s, err);
        return;
    }
    s->state = RS__SOCK_CONNECTED;
    s->has_remote = true; /* s->remote was kept from rs_socket_connect: no getpeername needed */
    rs__sock_uring_enter(s);
    err = rs__socket_update_interest(s);
    rs__socket_deliver_connect(s, err);
}

RESEAU_API int rs_socket_connect(rs_socket_t *socket, const rs_endpoint_t *remote, rs_event_loop_t *loop,
                                 rs_socket_on_connect_fn *on_connect, void *user_data) {
    rs__sockaddr_t sa;
    socklen_t len;
    int err;
    if (!socket || !remote || !loop || !on_connect) {
        return RS_EINVAL;
    }
    if (socket->loop && socket->loop != loop) {
        return RS_EBUSY;
    }
    if (!rs_event_loop_is_on_loop_thread(loop)) {
        RS__LOG_ERROR(RS_LS_SOCKET, "rs_socket_connect called off the loop's thread");
        return RS_EWRONGTHREAD;
    }
    err = rs__socket_take_family(socket, remote);
    if (!err && (remote->domain == RS_SOCKET_DOMAIN_IPV4 || remote->domain == RS_SOCKET_DOMAIN_IPV6) &&
        remote->port == 0) {
        err = RS_EINVAL;
    }
    if (!err && socket->state != RS__SOCK_INIT && socket->state != RS__SOCK_BOUND) {
        err = RS_ESTATE;
    }
    if (!err) {
        err = rs__endpoint_to_sockaddr(remote, &sa, &len);
    }
    if (err) {
        return err;
    }
    rs__socket_tie_to_loop(socket, loop);
    socket->on_connect = on_connect;
    socket->connect_user_data = user_data;
    socket->remote = *remote;
    err = rs__sock_uring_connect(socket, &sa, len);
    if (err != RS_ENOTSUP) {
        if (err) {
            socket->on_connect = NULL; /* a call that returns an error never calls back */
            rs__socket_close_now(socket);
        }
        return err;
    }
    if (connect(socket->io.fd, &sa.sa, len) == 0) {
        socket->state = RS__SOCK_CONNECTED;
        socket->has_remote = true;
        rs__sock_uring_enter(socket);
        rs__socket_connect_later(socket, rs__socket_update_interest(socket));
        return RS_OK;
    }
    if (errno != EINPROGRESS) {
        /* Refused at once (common for Unix sockets): still reported later, never inline. */
        err = rs__errno_result();
        rs__socket_close_internal(socket, true);
        rs__socket_connect_later(socket, err);
        return RS_OK;
    }
    socket->state = RS__SOCK_CONNECTING;
    err = rs__socket_update_interest(socket);
    if (err) {
        socket->on_connect = NULL; /* a call that returns an error never calls back */
        rs__socket_close_now(socket);
        return err;
    }
    if (!socket->no_connect_timer) {
        rs_event_loop_schedule_task_future(loop, &socket->connect_timeout_task,
                                           rs_event_loop_now_ns(loop) +
                                               socket->options.connect_timeout_ms * RS_NS_PER_MS);
    }
    return RS_OK;
}

RESEAU_API int rs_socket_assign_to_loop(rs_socket_t *socket, rs_event_loop_t *loop) {
    if (!socket || !loop) {
        return RS_EINVAL;
    }
    if (socket->loop) {
        return RS_EBUSY;
    }
    if (!rs_event_loop_is_on_loop_thread(loop)) {
        RS__LOG_ERROR(RS_LS_SOCKET, "rs_socket_assign_to_loop called off the target loop's thread");
        return RS_EWRONGTHREAD;
    }
    rs__socket_tie_to_loop(socket, loop);
    rs__sock_uring_enter(socket);
    return rs__socket_update_interest(socket);
}

/* ---- reading ---- */

static int rs__socket_set_reader(rs_socket_t *s, rs_socket_on_readable_fn *fn, rs_pipe_on_readable_fn *pipe_fn,
                                 void *user_data) {
    int err = rs__socket_check_thread(s, "rs_socket_subscribe_to_readable_events");
    if (err) {
        return err;
    }
    if (!fn && !pipe_fn) {
        return RS_EINVAL;
    }
    if (!s->loop) {
        return RS_ESTATE; /* assign it to a loop first */
    }
    if (!rs__socket_can_read(s)) {
        return s->state == RS__SOCK_CLOSED ? RS_EBADF : RS_ENOTCONN;
    }
    s->on_readable = fn;
    s->on_pipe_readable = pipe_fn;
    s->readable_user_data = user_data;
    s->reading = true;
    s->drained = false;
    err = rs__socket_update_interest(s);
    if (err) {
        s->on_readable = NULL;
        s->on_pipe_readable = NULL;
    }
    rs__sock_uring_update_recv(s);
    return err;
}

RESEAU_API int rs_socket_subscribe_to_readable_events(rs_socket_t *socket, rs_socket_on_readable_fn *on_readable,
                                                     void *user_data) {
    return rs__socket_set_reader(socket, on_readable, NULL, user_data);
}

static int rs__socket_set_reading(rs_socket_t *s, bool reading, const char *function) {
    int err = rs__socket_check_thread(s, function);
    if (err) {
        return err;
    }
    s->reading = reading;
    s->drained = false;
    rs__sock_uring_update_recv(s);
    return rs__socket_update_interest(s);
}

/* After EOF or a read error nothing more will come: stop readable events so a
 * level-triggered hang-up does not spin the loop. */
static void rs__socket_read_finished(rs_socket_t *s) {
    s->read_done = true;
    rs__socket_update_interest(s);
}

/* A stream read that filled less than it asked for took all that waited, so
 * the next read would only say EAGAIN: a system call for nothing, on every
 * readable event of a request-response connection. Skip it while readiness
 * will be reported again: the reader is subscribed and not paused, so the
 * level-triggered loop reports anything that arrives, including the end of
 * the stream, and the event clears the flag (rs__socket_on_event). A caller
 * that reads without a subscription always asks the kernel. */
static void rs__socket_note_short_read(rs_socket_t *s, const struct iovec *iov, size_t iov_count, size_t n) {
    size_t room = 0;
    size_t i;
    if (s->options.type != RS_SOCKET_STREAM || !(rs__socket_wanted_events(s) & RS_IO_READABLE)) {
        return;
    }
    for (i = 0; i < iov_count; ++i) {
        room += iov[i].iov_len;
    }
    s->drained = n < room;
}

RESEAU_API int rs_socket_readv(rs_socket_t *socket, rs_byte_buf_t *bufs, size_t count, size_t *amount_read) {
    struct iovec iov[RS_SOCKET_READV_MAX];
    struct msghdr msg;
    size_t i;
    size_t iov_count = 0;
    ssize_t n;
    int err = rs__socket_check_call(socket, bufs, "rs_socket_read");
    if (amount_read) {
        *amount_read = 0;
    }
    if (err) {
        return err;
    }
    if (count == 0 || count > RS_SOCKET_READV_MAX) {
        return RS_EINVAL;
    }
    for (i = 0; i < count; ++i) {
        if (bufs[i].len < bufs[i].capacity) {
            iov[iov_count].iov_base = bufs[i].buffer + bufs[i].len;
            iov[iov_count].iov_len = bufs[i].capacity - bufs[i].len;
            ++iov_count;
        }
    }
    if (iov_count == 0) {
        return RS_EINVAL; /* no free space anywhere */
    }
    if (socket->io.fd < 0) {
        return RS_EBADF;
    }
    if (!rs__sock_uring_reads_fd(socket)) {
        return rs__sock_uring_readv(socket, bufs, count, amount_read);
    }
    if (socket->drained) {
        return RS_EAGAIN;
    }
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = iov;
    msg.msg_iovlen = iov_count;
    do {
        n = recvmsg(socket->io.fd, &msg, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        rs__bufs_credit(bufs, count, (size_t)n);
        if (amount_read) {
            *amount_read = (size_t)n;
        }
        rs__socket_note_short_read(socket, iov, iov_count, (size_t)n);
        return RS_OK;
    }
    if (n == 0) {
        rs__socket_read_finished(socket);
        return RS_EEOF;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return RS_EAGAIN;
    }
    err = rs__errno_result();
    rs__socket_read_finished(socket);
    return err;
}

static void rs__socket_notify_readable(rs_socket_t *s, int events) {
    int error = RS_OK;
    if (events & RS_IO_ERROR) {
        int so_error = rs__socket_take_error(s);
        if (so_error) {
            error = rs_result_from_errno(so_error);
        }
    }
    if (s->on_readable) {
        s->on_readable(s, error, s->readable_user_data);
    } else if (s->on_pipe_readable) {
        s->on_pipe_readable((rs_pipe_read_end_t *)(void *)s, error, s->readable_user_data);
    }
}

/* ---- writing ---- */

static void rs__socket_deliver_write(rs_socket_t *s, const rs__write_req_t *req) {
    if (req->cb.socket_fn) {
        req->cb.socket_fn(s, req->error, req->written, req->cb.user_data);
    } else if (req->cb.pipe_fn) {
        req->cb.pipe_fn((rs_pipe_write_end_t *)(void *)s, req->error, req->written, req->cb.user_data);
    }
}

static void rs__socket_completion_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_socket_t *s = (rs_socket_t *)arg;
    rs_list_t batch;
    rs_list_node_t *node;
    (void)task;
    (void)status; /* completions are delivered either way: exactly once each */
    /* Only what completed before this task ran: completions of writes made by
     * these callbacks wait for the next tick. */
    rs_list_init(&batch);
    rs_list_swap(&batch, &s->completed);
    s->callback_depth++;
    while ((node = rs_list_pop_front(&batch)) != NULL) {
        rs__write_req_t req = *RS_CONTAINER_OF(node, rs__write_req_t, node);
        rs__socket_recycle_req(s, RS_CONTAINER_OF(node, rs__write_req_t, node));
        rs__socket_deliver_write(s, &req);
    }
    s->callback_depth--;
    rs__socket_maybe_free(s);
}

/* Gather up to RS__WRITE_IOV_MAX queued writes into one sendmsg. */
static ssize_t rs__socket_send_queued(rs_socket_t *s) {
    struct iovec iov[RS__WRITE_IOV_MAX];
    struct msghdr msg;
    rs_list_node_t *node;
    int count = 0;
    ssize_t n;
    for (node = rs_list_begin(&s->write_queue); node != rs_list_end(&s->write_queue) && count < RS__WRITE_IOV_MAX;
         node = node->next) {
        rs__write_req_t *req = RS_CONTAINER_OF(node, rs__write_req_t, node);
        iov[count].iov_base = (void *)(uintptr_t)req->remaining.ptr;
        iov[count].iov_len = req->remaining.len;
        ++count;
    }
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = iov;
    msg.msg_iovlen = (size_t)count;
    do {
        n = sendmsg(s->io.fd, &msg, RS__MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* Credit `n` written bytes to the queue head, completing whole requests. */
static void rs__socket_credit_written(rs_socket_t *s, size_t n) {
    while (n > 0 || (!rs_list_empty(&s->write_queue) &&
                     RS_CONTAINER_OF(rs_list_begin(&s->write_queue), rs__write_req_t, node)->remaining.len == 0)) {
        rs__write_req_t *req = RS_CONTAINER_OF(rs_list_begin(&s->write_queue), rs__write_req_t, node);
        size_t take = n < req->remaining.len ? n : req->remaining.len;
        rs_byte_cursor_advance(&req->remaining, take);
        req->written += take;
        s->pending_write_bytes -= take;
        n -= take;
        if (req->remaining.len > 0) {
            break;
        }
        rs_list_remove(&req->node);
        req->error = RS_OK;
        rs_list_push_back(&s->completed, &req->node);
    }
}

/* Write as much as the kernel takes now. */
static void rs__socket_flush(rs_socket_t *s) {
    if (s->uring) {
        rs__sock_uring_flush(s);
        return;
    }
    while (!rs_list_empty(&s->write_queue) && s->io.fd >= 0) {
        ssize_t n = rs__socket_send_queued(s);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                s->write_error = rs__errno_result();
                RS__LOG_DEBUG(RS_LS_SOCKET, "socket %p: write failed: %s", (void *)s, rs_strerror(s->write_error));
                rs__socket_fail_writes(s, s->write_error);
            }
            break;
        }
        rs__socket_credit_written(s, (size_t)n);
    }
    if (rs_list_empty(&s->write_queue) && s->shut_write_pending) {
        rs__socket_shutdown_write_now(s);
    }
    if (rs__socket_update_interest(s) != RS_OK && !rs_list_empty(&s->write_queue)) {
        /* Without a writable subscription the rest would never be sent: fail it. */
        s->write_error = RS_ENOMEM;
        rs__socket_fail_writes(s, s->write_error);
    }
    rs__socket_schedule_completions(s);
}

static int rs__socket_write(rs_socket_t *s, rs_byte_cursor_t data, rs__write_cb_t cb) {
    rs__write_req_t *req;
    bool was_idle;
    int err = rs__socket_check_thread(s, "rs_socket_write"); /* first: misuse off-thread says so */
    if (err) {
        return err;
    }
    if ((!cb.socket_fn && !cb.pipe_fn) || (!data.ptr && data.len) || s->options.type != RS_SOCKET_STREAM) {
        return RS_EINVAL;
    }
    if (s->state != RS__SOCK_CONNECTED || !s->loop) {
        return s->state == RS__SOCK_CLOSED ? RS_EBADF : RS_ENOTCONN;
    }
    if (s->write_shut) {
        return RS_ESHUTDOWN;
    }
    if (s->write_error) {
        return s->write_error;
    }
    req = rs__socket_take_req(s);
    if (!req) {
        return RS_ENOMEM;
    }
    memset(req, 0, sizeof(*req));
    req->remaining = data;
    req->cb = cb;
    was_idle = rs_list_empty(&s->write_queue);
    rs_list_push_back(&s->write_queue, &req->node);
    s->pending_write_bytes += data.len;
    if (was_idle) {
        rs__socket_flush(s); /* optimistic: most writes finish at once */
        return RS_OK;
    }
    err = rs__socket_update_interest(s);
    if (err) {
        rs_list_remove(&req->node);
        s->pending_write_bytes -= data.len;
        rs__socket_recycle_req(s, req);
    }
    return err;
}

RESEAU_API int rs_socket_write(rs_socket_t *socket, rs_byte_cursor_t data, rs_socket_on_write_fn *on_written,
                               void *user_data) {
    rs__write_cb_t cb;
    if (!socket) {
        return RS_EINVAL;
    }
    cb.socket_fn = on_written;
    cb.pipe_fn = NULL;
    cb.user_data = user_data;
    return rs__socket_write(socket, data, cb);
}

/* ---- readiness ---- */

/* The loop could not watch the fd (the kernel refused a deferred interest
 * change, e.g. out of memory): nothing would ever be reported, so end what
 * is waiting with that error. A listener backs off and tries again. */
static void rs__socket_on_io_error(rs_socket_t *s, int error) {
    RS__LOG_ERROR(RS_LS_SOCKET, "socket %p: the loop cannot watch it: %s", (void *)s, rs_strerror(error));
    if (s->state == RS__SOCK_CONNECTING) {
        rs_event_loop_cancel_task(s->loop, &s->connect_timeout_task);
        rs__socket_close_internal(s, true);
        rs__socket_deliver_connect(s, error);
        return;
    }
    if (s->state == RS__SOCK_LISTENING) {
        s->interest = 0;
        rs__socket_accept_backoff(s, error);
        return;
    }
    s->write_error = error;
    rs__socket_fail_writes(s, error);
    if (s->interest & RS_IO_READABLE) {
        if (s->on_readable) {
            s->on_readable(s, error, s->readable_user_data);
        } else if (s->on_pipe_readable) {
            s->on_pipe_readable((rs_pipe_read_end_t *)(void *)s, error, s->readable_user_data);
        }
    }
}

static void rs__socket_on_event(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    rs_socket_t *s = (rs_socket_t *)user_data;
    int io_error = (events & RS_IO_ERROR) ? rs__io_handle_error(handle) : RS_OK;
    (void)loop;
    s->callback_depth++;
    s->drained = false;
    if (io_error) {
        rs__socket_on_io_error(s, io_error);
    } else if (s->state == RS__SOCK_CONNECTING) {
        rs__socket_finish_connect(s, events);
    } else if (s->state == RS__SOCK_LISTENING) {
        rs__socket_accept_some(s);
    } else {
        if ((events & (RS_IO_WRITABLE | RS_IO_HANGUP | RS_IO_ERROR)) && !rs_list_empty(&s->write_queue)) {
            rs__socket_flush(s);
        }
        if (s->state != RS__SOCK_CLOSED && (s->interest & RS_IO_READABLE) &&
            (events & (RS_IO_READABLE | RS_IO_HANGUP | RS_IO_ERROR))) {
            rs__socket_notify_readable(s, events);
        }
    }
    s->callback_depth--;
    rs__socket_maybe_free(s);
}
#endif /* RESEAU_OS_POSIX */
