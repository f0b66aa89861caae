/*
 * Sockets on Windows: Winsock TCP (IPv4, IPv6) driven by the loop's I/O
 * completion port (>>iocp.c), behind the same API as the readiness sockets
 * of >>socket_posix.c (ARCHITECTURE.md §4a); the code both share is in
 * >>socket_core.c.
 *
 * Each socket owns a few overlapped operations, one of each kind at a time:
 * ConnectEx, a receive or a readiness probe (below), one WSASend carrying
 * the queued writes in order, and for a listener RS__WIN_ACCEPTS_PENDING
 * AcceptEx calls.
 * Every operation's packet comes back through the port, even after
 * CancelIoEx and closesocket: the socket's memory is freed only once none is
 * pending, so the kernel never writes into freed memory. No handle skips the
 * port on success (FILE_SKIP_COMPLETION_PORT_ON_SUCCESS), so every started
 * operation has exactly one packet and there is no synchronous path to get
 * wrong.
 *
 * Reading TCP: a socket with a subscribed, unpaused reader keeps one
 * overlapped WSARecv posted into a buffer it owns (RS__WIN_RECV_BUF_SIZE);
 * its completion holds the bytes, rs_socket_read copies them out, and once
 * they are all read the next receive is posted, so the read after that
 * answers RS_EAGAIN by itself while it is in flight. After a receive that
 * filled the buffer more likely waits, so the read that empties it goes on
 * with a non-blocking WSARecv into the caller's remaining room, and later
 * reads too until a short read or WSAEWOULDBLOCK (a burst costs no round
 * trip through the port per buffer). The end (a completion of 0 bytes) and
 * errors come after the held bytes. Pausing cancels the posted receive, so
 * what comes next waits in the kernel, whose window then holds the peer
 * back; bytes a receive took before the cancel are kept. Measured against a
 * zero-byte readiness probe then non-blocking reads (the earlier design,
 * still the fallback below) with tools/bench/iocp.sh under Wine 8, a ping
 * pong costs 25.6 wineserver requests per round trip against the probe's
 * 30.8 (a hand-written owned-buffer IOCP loop: 24.4), and runs at 0.85-0.96x
 * that loop against the probe's 0.64x; the probe costs calls per message
 * that the owned receive does not (its completion, then a read the data
 * could have come with). Bulk transfer (pump_1) costs 120.6 requests per MB
 * against the probe's 129.9; its speed is within the noise here.
 *
 * Memory: an owned buffer is allocated when a receive is first posted and
 * freed when the socket closes (or, with the receive in flight, when its
 * packet comes back). A loop hands out RS__WIN_RECV_BUFS_PER_LOOP of them,
 * as libuv's Windows TCP does for its first active streams; sockets beyond,
 * and a socket whose buffer could not be allocated (which costs speed, not
 * the connection; the next post tries again), read by the zero-byte probe:
 * it tells when data (or the end, or an error) waits, then rs_socket_read
 * calls a non-blocking WSARecv straight into the caller's buffer until
 * WSAEWOULDBLOCK, and the probe is posted again. That keeps no memory per
 * idle connection (a server holding many quiet connections), so a loop's
 * owned buffers cost at most RS__WIN_RECV_BUFS_PER_LOOP * 16 KiB however many
 * connections it holds. On the probe path the read that would only say
 * WSAEWOULDBLOCK is skipped after a short read (the probe goes out at once,
 * and the next read answers RS_EAGAIN). Either way the readable callback is
 * fired by a task, again each tick while the reader has not yet been told
 * RS_EAGAIN: the level-triggered contract of the readiness path, as in
 * >>socket_uring.c.
 *
 * UDP (IPv4, IPv6) uses the same probe, but a zero-byte WSARecvFrom would
 * consume a datagram (a datagram socket drops what does not fit the buffer),
 * so the probe peeks (MSG_PEEK) and leaves the datagram for
 * rs_socket_recv_from. Sends are immediate and non-queueing as on POSIX: a
 * non-blocking WSASendTo, RS_EAGAIN when the buffer is full. ICMP port
 * unreachable comes back from Winsock as WSAECONNRESET on the next receive,
 * connected or not (Wine ends the peek with ECONNREFUSED instead); POSIX
 * reports it only on a connected socket, as ECONNREFUSED, so recv_from
 * reports RS_ECONNREFUSED once when connected and skips it otherwise (the
 * socket keeps working either way). SIO_UDP_CONNRESET is not used: turning
 * the reports off would lose them on connected sockets too.
 *
 * Not here yet (RS_ENOTSUP): multicast and broadcast options, Unix-domain
 * sockets, VSOCK, network_interface_name (SO_BINDTODEVICE has no Winsock
 * counterpart) and reuseport.
 */
#if RESEAU_OS_WINDOWS

/* Buffers gathered into one WSASend. */
#define RS__WIN_SEND_BUFS_MAX 16
/* AcceptEx calls a listener keeps posted: connections arriving together are
 * taken without waiting a round trip through the loop for each. */
#define RS__WIN_ACCEPTS_PENDING 4
/* Room AcceptEx needs per address: the largest sockaddr plus 16 bytes, as
 * its documentation requires. */
#define RS__WIN_ACCEPT_ADDR_LEN ((DWORD)(sizeof(SOCKADDR_STORAGE) + 16))
/* An owned receive buffer: one TLS record, the most a channel message
 * carries, so one completion fills one message. */
#define RS__WIN_RECV_BUF_SIZE RS_MAX_FRAGMENT_SIZE
/* Owned receive buffers a loop hands out; the sockets beyond read by the
 * zero-byte probe (see the top of this file). */
#define RS__WIN_RECV_BUFS_PER_LOOP 64

/* Test hook: the loop's limit of owned receive buffers, so that the tests
 * run the probe path too (0: every stream socket probes). */
static size_t rs__win_test_recv_bufs_per_loop = RS__WIN_RECV_BUFS_PER_LOOP;

typedef union rs__sockaddr {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    SOCKADDR_STORAGE storage;
} rs__sockaddr_t;

struct rs__write_req {
    rs_list_node_t node;
    rs_byte_cursor_t remaining;
    size_t written;
    rs_socket_on_write_fn *fn;
    void *user_data;
    int error;
};

/* One posted AcceptEx: the socket it accepts into and the addresses it fills. */
typedef struct rs__win_accept {
    rs__iocp_op_t op;
    rs_socket_t *listener;
    SOCKET accepted; /* INVALID_SOCKET unless posted */
    char addrs[2 * RS__WIN_ACCEPT_ADDR_LEN];
} rs__win_accept_t;

struct rs_socket {
    rs_allocator_t allocator;
    rs_socket_options_t options;
    rs_event_loop_t *loop; /* NULL until tied to one, and once that loop was destroyed */
    rs_list_node_t loop_member;
    SOCKET handle;
    bool associated; /* joined the loop's port (a handle joins one port for life) */
    rs__socket_state_t state;
    int callback_depth;
    bool destroy_requested;
    bool is_listener;

    rs_socket_on_connect_fn *on_connect;
    void *connect_user_data;
    int connect_result;
    bool no_connect_timer;
    rs_task_t connect_timeout_task;
    rs_task_t connect_done_task;
    rs__iocp_op_t connect_op;

    rs_socket_on_accept_fn *on_accept;
    void *accept_user_data;
    bool accepting;
    uint32_t accept_backoff_ms;
    rs_task_t accept_retry_task;
    rs__win_accept_t *accepts; /* RS__WIN_ACCEPTS_PENDING of them, for a listener */
    LPFN_ACCEPTEX accept_ex;
    LPFN_GETACCEPTEXSOCKADDRS get_accept_ex_sockaddrs;

    rs_socket_on_readable_fn *on_readable;
    void *readable_user_data;
    bool reading;
    bool read_done;      /* EOF or a read error was returned: no more readable events */
    int deferred_recv_error; /* DGRAM: for the next receive (recv_batch's after some datagrams, or the probe's) */
    bool readable;       /* the probe saw data (or the end): not yet read to RS_EAGAIN */
    bool short_read;     /* STREAM: the last read did not fill the buffers; the probe was posted at once */
    int probe_error;     /* the error the probe ended with, reported by the next read */
    rs__iocp_op_t probe_op; /* the zero-byte probe, or the receive into recv_buf */
    char *recv_buf;      /* STREAM: the owned receive buffer (RS__WIN_RECV_BUF_SIZE), or NULL */
    bool recv_owned;     /* probe_op is a receive into recv_buf, not a probe */
    bool recv_eof;       /* the owned receive met the end: RS_EEOF once the held bytes are read */
    bool recv_canceling; /* paused: CancelIoEx was called on the owned receive */
    bool recv_full;      /* the owned receive filled the buffer: more may wait in the kernel */
    size_t recv_pos;     /* the held bytes are recv_buf[recv_pos, recv_len) */
    size_t recv_len;
    rs_task_t readable_task;

    rs_list_t write_queue; /* the head requests are in flight while send_op is pending */
    rs_list_t completed;
    rs_list_t req_cache;
    size_t req_cache_count;
    size_t pending_write_bytes;
    int write_error; /* sticky: the error that failed the write side */
    bool write_shut;
    bool shut_write_pending;
    rs_task_t completion_task;
    rs__iocp_op_t send_op;
    WSABUF send_bufs[RS__WIN_SEND_BUFS_MAX];

    rs_endpoint_t remote;
    bool has_remote;
};

static void rs__win_connect_done(rs__iocp_op_t *op, int status, size_t bytes);
static void rs__win_accept_done(rs__iocp_op_t *op, int status, size_t bytes);
static void rs__win_probe_done(rs__iocp_op_t *op, int status, size_t bytes);
static void rs__win_send_done(rs__iocp_op_t *op, int status, size_t bytes);
static void rs__win_recv_buf_release(rs_socket_t *s);

/* ---- Winsock start-up, addresses ---- */

static rs_once_t rs__wsa_once = RS_ONCE_INIT;
static int rs__wsa_startup_result;

/* Winsock counts its users; reseau stays one for the life of the process,
 * since sockets may outlive any object that could call WSACleanup. */
static void rs__wsa_startup(void *user_data) {
    WSADATA data;
    int err = WSAStartup(MAKEWORD(2, 2), &data);
    (void)user_data;
    rs__wsa_startup_result = err ? rs__result_from_win32((uint32_t)err) : RS_OK;
}

static int rs__wsa_result(void) {
    return rs__result_from_win32((uint32_t)WSAGetLastError());
}

static int rs__domain_family(rs_socket_domain_t domain, int *family_out) {
    switch (domain) {
    case RS_SOCKET_DOMAIN_IPV4:
        *family_out = AF_INET;
        return RS_OK;
    case RS_SOCKET_DOMAIN_IPV6:
        *family_out = AF_INET6;
        return RS_OK;
    case RS_SOCKET_DOMAIN_LOCAL:
    case RS_SOCKET_DOMAIN_VSOCK:
        return RS_ENOTSUP;
    case RS_SOCKET_DOMAIN_DEFAULT:
        break;
    }
    return RS_EINVAL;
}

static int rs__endpoint_to_sockaddr(const rs_endpoint_t *endpoint, rs__sockaddr_t *out, int *len_out) {
    memset(out, 0, sizeof(*out));
    switch (endpoint->domain) {
    case RS_SOCKET_DOMAIN_IPV4:
        if (endpoint->port > 65535) {
            return RS_EINVAL;
        }
        out->in4.sin_family = AF_INET;
        out->in4.sin_port = htons((uint16_t)endpoint->port);
        memcpy(&out->in4.sin_addr, endpoint->addr, 4);
        *len_out = (int)sizeof(out->in4);
        return RS_OK;
    case RS_SOCKET_DOMAIN_IPV6:
        if (endpoint->port > 65535) {
            return RS_EINVAL;
        }
        out->in6.sin6_family = AF_INET6;
        out->in6.sin6_port = htons((uint16_t)endpoint->port);
        out->in6.sin6_scope_id = endpoint->scope_id;
        memcpy(&out->in6.sin6_addr, endpoint->addr, 16);
        *len_out = (int)sizeof(out->in6);
        return RS_OK;
    case RS_SOCKET_DOMAIN_LOCAL:
    case RS_SOCKET_DOMAIN_VSOCK:
        return RS_ENOTSUP;
    case RS_SOCKET_DOMAIN_DEFAULT:
        break;
    }
    return RS_EINVAL;
}

static int rs__endpoint_from_sockaddr(rs_endpoint_t *endpoint, const struct sockaddr *in, int len) {
    memset(endpoint, 0, sizeof(*endpoint));
    if (in->sa_family == AF_INET && len >= (int)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)in;
        endpoint->domain = RS_SOCKET_DOMAIN_IPV4;
        endpoint->port = ntohs(in4->sin_port);
        memcpy(endpoint->addr, &in4->sin_addr, 4);
        return RS_OK;
    }
    if (in->sa_family == AF_INET6 && len >= (int)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)in;
        endpoint->domain = RS_SOCKET_DOMAIN_IPV6;
        endpoint->port = ntohs(in6->sin6_port);
        endpoint->scope_id = in6->sin6_scope_id;
        memcpy(endpoint->addr, &in6->sin6_addr, 16);
        return RS_OK;
    }
    return (in->sa_family == AF_INET || in->sa_family == AF_INET6) ? RS_EINVAL : RS_EAFNOSUPPORT;
}

RESEAU_API int rs_endpoint_from_sockaddr(rs_endpoint_t *out, const void *sockaddr, size_t len) {
    rs__sockaddr_t in;
    int err;
    if (!out) {
        return RS_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (!sockaddr || len < sizeof(ADDRESS_FAMILY)) {
        return RS_EINVAL;
    }
    memset(&in, 0, sizeof(in));
    memcpy(&in, sockaddr, len < sizeof(in) ? len : sizeof(in)); /* aligned, and never read past len */
    err = rs__endpoint_from_sockaddr(out, &in.sa, (int)(len < sizeof(in) ? len : sizeof(in)));
    if (err) {
        memset(out, 0, sizeof(*out));
    }
    return err;
}

/* ---- the hooks of >>socket_core.h ---- */

static bool rs__socket_ops_pending(const rs_socket_t *s) {
    size_t i;
    if (s->connect_op.pending || s->probe_op.pending || s->send_op.pending) {
        return true;
    }
    for (i = 0; s->accepts && i < RS__WIN_ACCEPTS_PENDING; ++i) {
        if (s->accepts[i].op.pending) {
            return true;
        }
    }
    return false;
}

static bool rs__socket_has_handle(const rs_socket_t *s) {
    return s->handle != INVALID_SOCKET;
}

static bool rs__socket_send_in_flight(const rs_socket_t *s) {
    return s->send_op.pending;
}

static int rs__socket_os_bind(rs_socket_t *s, const rs_endpoint_t *local) {
    rs__sockaddr_t sa;
    int len;
    int err = rs__endpoint_to_sockaddr(local, &sa, &len);
    if (err) {
        return err;
    }
    if (bind(s->handle, &sa.sa, len) != 0) {
        err = rs__wsa_result();
        RS__LOG_DEBUG(RS_LS_SOCKET, "bind failed: %s (error %d)", rs_strerror(err), WSAGetLastError());
    }
    return err;
}

static int rs__socket_os_listen(rs_socket_t *s, int backlog) {
    return listen(s->handle, backlog) == 0 ? RS_OK : rs__wsa_result();
}

static int rs__socket_os_shutdown(rs_socket_t *s, rs_socket_dir_t dir) {
    return shutdown(s->handle, dir == RS_SOCKET_DIR_READ ? SD_RECEIVE : SD_SEND) == 0 ? RS_OK : rs__wsa_result();
}

/* ---- options ---- */

static int rs__setsockopt_int(SOCKET handle, int level, int name, int value) {
    DWORD v = (DWORD)value;
    return setsockopt(handle, level, name, (const char *)&v, (int)sizeof(v)) == 0 ? RS_OK : rs__wsa_result();
}

/* The per-socket keepalive options of Windows 10 1709 on; the numbers are
 * the SDK's, spelled here for older mingw headers. */
#define RS__WIN_TCP_KEEPIDLE 3
#define RS__WIN_TCP_KEEPCNT 16
#define RS__WIN_TCP_KEEPINTVL 17
/* What Windows uses for a timer SIO_KEEPALIVE_VALS must be given but the
 * caller left at 0: two hours idle, probes a second apart. */
#define RS__WIN_KEEPALIVE_IDLE_DEFAULT_S 7200
#define RS__WIN_KEEPALIVE_INTERVAL_DEFAULT_S 1

/* Idle time and interval through SIO_KEEPALIVE_VALS, which every Windows
 * (and Wine) has but which sets both at once, with keepalive itself. */
static int rs__set_keepalive_vals(SOCKET handle, bool enabled, uint32_t idle_s, uint32_t interval_s) {
    struct tcp_keepalive vals;
    DWORD bytes = 0;
    idle_s = idle_s ? idle_s : RS__WIN_KEEPALIVE_IDLE_DEFAULT_S;
    interval_s = interval_s ? interval_s : RS__WIN_KEEPALIVE_INTERVAL_DEFAULT_S;
    if (idle_s > ULONG_MAX / 1000 || interval_s > ULONG_MAX / 1000) {
        return RS_EINVAL;
    }
    vals.onoff = enabled ? 1 : 0;
    vals.keepalivetime = (ULONG)idle_s * 1000;
    vals.keepaliveinterval = (ULONG)interval_s * 1000;
    if (WSAIoctl(handle, SIO_KEEPALIVE_VALS, &vals, (DWORD)sizeof(vals), NULL, 0, &bytes, NULL, NULL) != 0) {
        return rs__wsa_result();
    }
    return RS_OK;
}

/* The three timers where non-zero. The probe count exists only as the
 * per-socket option (RS_ENOTSUP without it, checked before anything is
 * changed); idle time and interval fall back to SIO_KEEPALIVE_VALS. */
static int rs__set_keepalive_timers(SOCKET handle, bool enabled, uint32_t idle_s, uint32_t interval_s,
                                    uint32_t probes) {
    int err = RS_OK;
    if (idle_s > (uint32_t)INT_MAX || interval_s > (uint32_t)INT_MAX || probes > (uint32_t)INT_MAX) {
        return RS_EINVAL;
    }
    if (probes) {
        err = rs__setsockopt_int(handle, IPPROTO_TCP, RS__WIN_TCP_KEEPCNT, (int)probes);
        if (err) {
            return err; /* RS_ENOTSUP where the option is missing (WSAENOPROTOOPT) */
        }
    }
    if (idle_s) {
        err = rs__setsockopt_int(handle, IPPROTO_TCP, RS__WIN_TCP_KEEPIDLE, (int)idle_s);
    }
    if (!err && interval_s) {
        err = rs__setsockopt_int(handle, IPPROTO_TCP, RS__WIN_TCP_KEEPINTVL, (int)interval_s);
    }
    if (err == RS_ENOTSUP) {
        err = rs__set_keepalive_vals(handle, enabled, idle_s, interval_s);
    }
    return err;
}

static int rs__socket_apply_connection_options(rs_socket_t *s) {
    const rs_socket_options_t *o = &s->options;
    int err = RS_OK;
    if (o->send_buffer_size) {
        err = rs__setsockopt_int(s->handle, SOL_SOCKET, SO_SNDBUF, (int)o->send_buffer_size);
    }
    if (!err && o->recv_buffer_size) {
        err = rs__setsockopt_int(s->handle, SOL_SOCKET, SO_RCVBUF, (int)o->recv_buffer_size);
    }
    if (!err && o->tcp_nodelay) {
        err = rs__setsockopt_int(s->handle, IPPROTO_TCP, TCP_NODELAY, 1);
    }
    if (!err && o->keepalive) {
        err = rs__setsockopt_int(s->handle, SOL_SOCKET, SO_KEEPALIVE, 1);
        if (!err) {
            err = rs__set_keepalive_timers(s->handle, true, o->keepalive_idle_s, o->keepalive_interval_s,
                                           o->keepalive_probes);
        }
    }
    return err;
}

/* Options that must be set before bind. reuseaddr is accepted and not
 * passed on: Windows' SO_REUSEADDR lets another socket take over a port in
 * use, which is not what it means on POSIX (reusing a port in TIME_WAIT,
 * which Windows allows anyway). */
static int rs__socket_apply_bind_options(rs_socket_t *s) {
    const rs_socket_options_t *o = &s->options;
    if (o->reuseport || o->network_interface_name) {
        return RS_ENOTSUP;
    }
    if (o->domain == RS_SOCKET_DOMAIN_IPV6 && o->ipv6_only != RS_SOCKET_IPV6_ONLY_DEFAULT) {
        return rs__setsockopt_int(s->handle, IPPROTO_IPV6, IPV6_V6ONLY, o->ipv6_only == RS_SOCKET_IPV6_ONLY_ON);
    }
    return RS_OK;
}

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
        if (len == 0 || len >= RS_LOCAL_PATH_MAX) {
            return RS_EINVAL;
        }
        return RS_ENOTSUP; /* no SO_BINDTODEVICE in Winsock */
    }
    if (s->options.domain == RS_SOCKET_DOMAIN_LOCAL || s->options.domain == RS_SOCKET_DOMAIN_VSOCK) {
        return RS_ENOTSUP;
    }
    return RS_OK;
}

/* ---- creation ---- */

static void rs__socket_accept_retry_task(rs_task_t *task, void *arg, rs_task_status_t status);
static void rs__socket_completion_task(rs_task_t *task, void *arg, rs_task_status_t status);
static void rs__socket_readable_task(rs_task_t *task, void *arg, rs_task_status_t status);

static rs_socket_t *rs__socket_alloc(const rs_allocator_t *allocator, const rs_socket_options_t *options, int *err_out) {
    rs_allocator_t a = rs__allocator_copy(allocator);
    rs_socket_t *s;
    int err;
    rs_once(&rs__wsa_once, rs__wsa_startup, NULL);
    if (rs__wsa_startup_result) {
        *err_out = rs__wsa_startup_result;
        return NULL;
    }
    s = (rs_socket_t *)rs_mem_calloc(&a, 1, sizeof(rs_socket_t));
    if (!s) {
        *err_out = RS_ENOMEM;
        return NULL;
    }
    s->allocator = a;
    s->handle = INVALID_SOCKET;
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
    rs_task_init(&s->readable_task, rs__socket_readable_task, s, "socket_readable");
    rs__iocp_op_init(&s->connect_op, rs__win_connect_done);
    rs__iocp_op_init(&s->probe_op, rs__win_probe_done);
    rs__iocp_op_init(&s->send_op, rs__win_send_done);
    *err_out = RS_OK;
    return s;
}

static void rs__socket_free(rs_socket_t *s) {
    rs_allocator_t allocator = s->allocator;
    rs_list_node_t *node;
    rs__event_loop_remove_member(s->loop, &s->loop_member);
    while ((node = rs_list_pop_front(&s->req_cache)) != NULL) {
        rs_mem_free(&allocator, RS_CONTAINER_OF(node, rs__write_req_t, node));
    }
    rs__win_recv_buf_release(s);
    rs_mem_free(&allocator, s->accepts);
    rs_mem_free(&allocator, s);
}

/* An overlapped, non-inheritable, non-blocking socket of the family. The
 * non-blocking mode serves rs_socket_read; overlapped calls ignore it. */
static int rs__win_new_handle(int family, bool dgram, SOCKET *out) {
    u_long nonblocking = 1;
    SOCKET h = WSASocketW(family, dgram ? SOCK_DGRAM : SOCK_STREAM, dgram ? IPPROTO_UDP : IPPROTO_TCP, NULL, 0,
                          WSA_FLAG_OVERLAPPED);
    if (h == INVALID_SOCKET) {
        int err = rs__wsa_result();
        RS__LOG_ERROR(RS_LS_SOCKET, "WSASocket failed: %s (error %d)", rs_strerror(err), WSAGetLastError());
        return err;
    }
    if (ioctlsocket(h, FIONBIO, &nonblocking) != 0) {
        int err = rs__wsa_result();
        closesocket(h);
        return err;
    }
    SetHandleInformation((HANDLE)h, HANDLE_FLAG_INHERIT, 0);
    *out = h;
    return RS_OK;
}

static int rs__socket_open_handle(rs_socket_t *s) {
    int family;
    int err = rs__domain_family(s->options.domain, &family);
    if (!err) {
        err = rs__win_new_handle(family, s->options.type == RS_SOCKET_DGRAM, &s->handle);
    }
    if (err) {
        return err;
    }
    err = rs__socket_apply_bind_options(s);
    if (!err && s->options.type == RS_SOCKET_DGRAM) {
        /* tcp_nodelay and keepalive mean nothing to UDP (POSIX ignores them too) */
        if (s->options.send_buffer_size) {
            err = rs__setsockopt_int(s->handle, SOL_SOCKET, SO_SNDBUF, (int)s->options.send_buffer_size);
        }
        if (!err && s->options.recv_buffer_size) {
            err = rs__setsockopt_int(s->handle, SOL_SOCKET, SO_RCVBUF, (int)s->options.recv_buffer_size);
        }
    } else if (!err) {
        err = rs__socket_apply_connection_options(s);
    }
    if (err) {
        RS__LOG_ERROR(RS_LS_SOCKET, "cannot apply socket options: %s", rs_strerror(err));
        closesocket(s->handle);
        s->handle = INVALID_SOCKET;
    }
    return err;
}

/* Windows socket handles are kernel handles, whose values fit in 32 bits
 * (so that 32-bit processes can share them). */
RESEAU_API int rs_socket_get_fd(const rs_socket_t *socket) {
    return socket && socket->handle != INVALID_SOCKET ? (int)socket->handle : -1;
}

/* ---- the loop ---- */

static void rs__socket_member_end(rs_list_node_t *member) {
    rs_socket_t *s = RS_CONTAINER_OF(member, rs_socket_t, loop_member);
    bool accepting = s->state == RS__SOCK_LISTENING && s->accepting && s->on_accept;
    bool reading = !accepting && rs__socket_can_read(s) && !s->read_done && s->on_readable;
    if (s->state == RS__SOCK_CLOSED) {
        return;
    }
    RS__LOG_DEBUG(RS_LS_SOCKET, "socket %p: its loop is being destroyed; closing it", (void *)s);
    rs__socket_close_now(s);
    s->callback_depth++;
    if (accepting) {
        s->on_accept(s, RS_ECANCELED, NULL, s->accept_user_data);
    } else if (reading) {
        s->on_readable(s, RS_ECANCELED, s->readable_user_data);
    }
    s->callback_depth--;
    rs__socket_maybe_free(s);
}

static const rs__loop_member_ops_t rs__socket_member_ops = {
    RS__MEMBER_SOCKET, rs__socket_member_end, rs__socket_member_detach,
};

/* Tie the socket to `loop` and its handle to the loop's port. */
static int rs__socket_tie_to_loop(rs_socket_t *s, rs_event_loop_t *loop) {
    if (s->handle != INVALID_SOCKET && !s->associated) {
        int err = rs__iocp_associate(loop, (HANDLE)s->handle);
        if (err) {
            return err;
        }
        s->associated = true;
    }
    if (s->loop != loop) {
        s->loop = loop;
        rs__event_loop_add_member(loop, &s->loop_member, &rs__socket_member_ops);
    }
    return RS_OK;
}

/* ---- freeing and closing ---- */

static void rs__socket_deliver_writes(rs_socket_t *s, rs_list_t *batch);

static void rs__socket_schedule_completions(rs_socket_t *s) {
    if (rs_list_empty(&s->completed) || rs_task_is_scheduled(&s->completion_task)) {
        return;
    }
    if (s->loop) {
        rs_event_loop_schedule_task_now(s->loop, &s->completion_task);
        return;
    }
    /* The loop's destroy is taking the last packets: there is no tick left
     * to deliver them on, and each write still completes exactly once. */
    rs__socket_deliver_writes(s, &s->completed);
}

/* Fail every queued write with `error`, in order. Writes a WSASend is still
 * carrying wait for its packet: the kernel may be reading their bytes until
 * then, and their callbacks let the owner free them. */
static void rs__socket_fail_writes(rs_socket_t *s, int error) {
    rs_list_node_t *node;
    if (!s->write_error) {
        s->write_error = error;
    }
    if (s->send_op.pending) {
        return; /* rs__win_send_done fails them */
    }
    while ((node = rs_list_pop_front(&s->write_queue)) != NULL) {
        rs__write_req_t *req = RS_CONTAINER_OF(node, rs__write_req_t, node);
        req->error = s->write_error;
        rs_list_push_back(&s->completed, &req->node);
    }
    s->pending_write_bytes = 0;
    rs__socket_schedule_completions(s);
}

/* Cancel what the kernel holds and close the handle. The packets of the
 * canceled operations still come, each to its op's function. */
static void rs__socket_close_handle(rs_socket_t *s) {
    if (s->handle == INVALID_SOCKET) {
        return;
    }
    if (rs__socket_ops_pending(s)) {
        CancelIoEx((HANDLE)s->handle, NULL);
    }
    closesocket(s->handle);
    s->handle = INVALID_SOCKET;
}

static void rs__socket_close_internal(rs_socket_t *s, bool keep_connect) {
    if (s->state == RS__SOCK_CLOSED) {
        return;
    }
    rs__socket_close_handle(s);
    s->state = RS__SOCK_CLOSED;
    s->accepting = false;
    rs__win_recv_buf_release(s); /* unless the kernel still holds it: then when its packet comes */
    if (!s->loop) {
        return;
    }
    rs_event_loop_cancel_task(s->loop, &s->accept_retry_task);
    rs_event_loop_cancel_task(s->loop, &s->connect_timeout_task);
    rs_event_loop_cancel_task(s->loop, &s->readable_task);
    if (s->on_connect && !keep_connect) {
        s->connect_result = RS_ECANCELED;
        if (!rs_task_is_scheduled(&s->connect_done_task)) {
            rs_event_loop_schedule_task_now(s->loop, &s->connect_done_task);
        }
    }
    s->write_error = RS_ECANCELED;
    rs__socket_fail_writes(s, RS_ECANCELED);
}

/* ---- bind, listen, addresses ---- */

static void rs__socket_update_reading(rs_socket_t *s);

static int rs__socket_take_family(rs_socket_t *s, const rs_endpoint_t *endpoint) {
    int err;
    if (!endpoint) {
        return RS_EINVAL;
    }
    if (s->state == RS__SOCK_CLOSED) {
        return RS_EBADF;
    }
    if (!rs__socket_domain_pending(s)) {
        return endpoint->domain == s->options.domain ? RS_OK : RS_EINVAL;
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
    if (s->loop) {
        err = rs__socket_tie_to_loop(s, s->loop);
        if (!err) {
            rs__socket_update_reading(s); /* subscribed before it had a handle */
        }
    }
    return err;
}

RESEAU_API int rs_socket_get_bound_address(const rs_socket_t *socket, rs_endpoint_t *out) {
    rs__sockaddr_t sa;
    int len = (int)sizeof(sa);
    int err;
    if (!socket || !out) {
        return RS_EINVAL;
    }
    err = rs__socket_fd_state(socket);
    if (err) {
        return err;
    }
    memset(&sa, 0, sizeof(sa));
    if (getsockname(socket->handle, &sa.sa, &len) != 0) {
        return rs__wsa_result();
    }
    return rs__endpoint_from_sockaddr(out, &sa.sa, len);
}

/* An extension function (AcceptEx, ConnectEx, ...) of the socket's provider:
 * looked up rather than linked, so that only ws2_32 is needed. */
static int rs__win_extension(SOCKET h, GUID guid, void *fn_out, size_t fn_size) {
    DWORD bytes = 0;
    if (WSAIoctl(h, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, (DWORD)sizeof(guid), fn_out, (DWORD)fn_size, &bytes,
                 NULL, NULL) != 0) {
        int err = rs__wsa_result();
        RS__LOG_ERROR(RS_LS_SOCKET, "cannot find a Winsock extension function: %s", rs_strerror(err));
        return err;
    }
    return RS_OK;
}

/* ---- accepting ---- */

/* Start an AcceptEx on `a`: into a fresh socket of the listener's family. */
static int rs__win_post_accept(rs_socket_t *l, rs__win_accept_t *a) {
    DWORD bytes = 0;
    int family;
    int err = rs__domain_family(l->options.domain, &family);
    if (!err) {
        err = rs__win_new_handle(family, false, &a->accepted);
    }
    if (err) {
        return err;
    }
    if (!l->accept_ex(l->handle, a->accepted, a->addrs, 0, RS__WIN_ACCEPT_ADDR_LEN, RS__WIN_ACCEPT_ADDR_LEN, &bytes,
                      rs__iocp_op_overlapped(&a->op))) {
        int os_error = WSAGetLastError();
        if (os_error != ERROR_IO_PENDING) {
            closesocket(a->accepted);
            a->accepted = INVALID_SOCKET;
            return rs__result_from_win32((uint32_t)os_error);
        }
    }
    rs__iocp_op_started(l->loop, &a->op);
    return RS_OK;
}

static void rs__socket_accept_backoff(rs_socket_t *l, int error) {
    uint32_t ms = l->accept_backoff_ms ? l->accept_backoff_ms * 2 : RS__ACCEPT_BACKOFF_MIN_MS;
    l->accept_backoff_ms = ms > RS__ACCEPT_BACKOFF_MAX_MS ? RS__ACCEPT_BACKOFF_MAX_MS : ms;
    RS__LOG_WARN(RS_LS_SOCKET, "listener %p cannot accept (%s); retrying in %u ms", (void *)l, rs_strerror(error),
                 (unsigned)l->accept_backoff_ms);
    if (!rs_task_is_scheduled(&l->accept_retry_task)) {
        rs_event_loop_schedule_task_future(l->loop, &l->accept_retry_task,
                                           rs_event_loop_now_ns(l->loop) + l->accept_backoff_ms * RS_NS_PER_MS);
    }
}

/* Keep every idle accept slot posted while accepting. RS_OK, or the error
 * that left slots idle (a retry is then scheduled). */
static int rs__win_post_accepts(rs_socket_t *l) {
    size_t i;
    for (i = 0; i < RS__WIN_ACCEPTS_PENDING; ++i) {
        rs__win_accept_t *a = &l->accepts[i];
        int err;
        if (l->state != RS__SOCK_LISTENING || !l->accepting || rs_task_is_scheduled(&l->accept_retry_task)) {
            return RS_OK;
        }
        if (a->op.pending) {
            continue;
        }
        err = rs__win_post_accept(l, a);
        if (err) {
            rs__socket_accept_backoff(l, err);
            return err;
        }
    }
    return RS_OK;
}

static void rs__socket_accept_retry_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_socket_t *l = (rs_socket_t *)arg;
    (void)task;
    if (status != RS_TASK_STATUS_RUN || l->state != RS__SOCK_LISTENING) {
        return;
    }
    if (rs__win_post_accepts(l) == RS_OK) {
        l->accept_backoff_ms = 0;
    }
}

/* Wrap an accepted handle in an unassigned socket with the listener's options. */
static rs_socket_t *rs__socket_from_accepted(rs_socket_t *l, rs__win_accept_t *a, int *err_out) {
    struct sockaddr *local = NULL;
    struct sockaddr *remote = NULL;
    int local_len = 0;
    int remote_len = 0;
    rs_socket_t *s;
    /* Before any other use of the new socket: it inherits the listener's
     * properties and getsockname, getpeername and shutdown work on it. */
    if (setsockopt(a->accepted, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (const char *)&l->handle,
                   (int)sizeof(l->handle)) != 0) {
        *err_out = rs__wsa_result();
        return NULL;
    }
    s = rs__socket_alloc(&l->allocator, &l->options, err_out);
    if (!s) {
        return NULL;
    }
    s->handle = a->accepted;
    *err_out = rs__socket_apply_connection_options(s);
    if (*err_out) {
        s->handle = INVALID_SOCKET;
        rs__socket_free(s);
        return NULL;
    }
    /* AcceptEx writes the local address first, then the remote one. */
    l->get_accept_ex_sockaddrs(a->addrs, 0, RS__WIN_ACCEPT_ADDR_LEN, RS__WIN_ACCEPT_ADDR_LEN, &local, &local_len,
                               &remote, &remote_len);
    s->has_remote = remote && rs__endpoint_from_sockaddr(&s->remote, remote, remote_len) == RS_OK;
    s->state = RS__SOCK_CONNECTED;
    return s;
}

static void rs__win_accept_done(rs__iocp_op_t *op, int status, size_t bytes) {
    rs__win_accept_t *a = RS_CONTAINER_OF(op, rs__win_accept_t, op);
    rs_socket_t *l = a->listener;
    rs_socket_t *s = NULL;
    int err = status;
    (void)bytes;
    l->callback_depth++;
    if (l->state != RS__SOCK_LISTENING || !l->loop) {
        closesocket(a->accepted);
    } else {
        if (!err) {
            s = rs__socket_from_accepted(l, a, &err);
        }
        if (!s) {
            closesocket(a->accepted);
        }
        if (s) {
            l->accept_backoff_ms = 0;
            rs__socket_deliver_accept(l, RS_OK, s);
        } else if (err == RS_ENOMEM || err == RS_EMFILE || err == RS_ENOBUFS) {
            rs__socket_deliver_accept(l, err, NULL);
            rs__socket_accept_backoff(l, err);
        } else if (err != RS_ECANCELED) {
            /* The connection died before it was taken (reset, aborted):
             * the next one may well be fine. */
            RS__LOG_DEBUG(RS_LS_SOCKET, "listener %p: an accept failed: %s", (void *)l, rs_strerror(err));
        }
    }
    a->accepted = INVALID_SOCKET;
    if (l->state == RS__SOCK_LISTENING && l->loop) {
        rs__win_post_accepts(l);
    }
    l->callback_depth--;
    rs__socket_maybe_free(l);
}

RESEAU_API int rs_socket_start_accept(rs_socket_t *listener, rs_event_loop_t *loop, rs_socket_on_accept_fn *on_accept,
                                      void *user_data) {
    GUID accept_guid = WSAID_ACCEPTEX;
    GUID sockaddrs_guid = WSAID_GETACCEPTEXSOCKADDRS;
    size_t i;
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
    if (!listener->accepts) {
        listener->accepts = (rs__win_accept_t *)rs_mem_calloc(&listener->allocator, RS__WIN_ACCEPTS_PENDING,
                                                              sizeof(rs__win_accept_t));
        if (!listener->accepts) {
            return RS_ENOMEM;
        }
        for (i = 0; i < RS__WIN_ACCEPTS_PENDING; ++i) {
            rs__iocp_op_init(&listener->accepts[i].op, rs__win_accept_done);
            listener->accepts[i].listener = listener;
            listener->accepts[i].accepted = INVALID_SOCKET;
        }
    }
    err = listener->accept_ex ? RS_OK
                              : rs__win_extension(listener->handle, accept_guid, &listener->accept_ex,
                                                  sizeof(listener->accept_ex));
    if (!err && !listener->get_accept_ex_sockaddrs) {
        err = rs__win_extension(listener->handle, sockaddrs_guid, &listener->get_accept_ex_sockaddrs,
                                sizeof(listener->get_accept_ex_sockaddrs));
    }
    if (!err) {
        err = rs__socket_tie_to_loop(listener, loop);
    }
    if (err) {
        return err;
    }
    listener->on_accept = on_accept;
    listener->accept_user_data = user_data;
    listener->accepting = true;
    /* A failure to post is retried by the back-off task: the listener is
     * accepting either way, as on POSIX when the first accept hits EMFILE. */
    rs__win_post_accepts(listener);
    return RS_OK;
}

RESEAU_API int rs_socket_stop_accept(rs_socket_t *listener) {
    size_t i;
    int err = rs__socket_check_thread(listener, "rs_socket_stop_accept");
    if (err) {
        return err;
    }
    if (listener->state != RS__SOCK_LISTENING) {
        return RS_ESTATE;
    }
    listener->accepting = false;
    rs_event_loop_cancel_task(listener->loop, &listener->accept_retry_task);
    for (i = 0; listener->accepts && i < RS__WIN_ACCEPTS_PENDING; ++i) {
        if (listener->accepts[i].op.pending) {
            CancelIoEx((HANDLE)listener->handle, &listener->accepts[i].op.ov);
        }
    }
    return RS_OK;
}

/* ---- connecting ---- */

static void rs__win_connect_done(rs__iocp_op_t *op, int status, size_t bytes) {
    rs_socket_t *s = RS_CONTAINER_OF(op, rs_socket_t, connect_op);
    int err = status;
    (void)bytes;
    if (s->state != RS__SOCK_CONNECTING) {
        rs__socket_maybe_free(s); /* timed out or closed: that was reported already */
        return;
    }
    rs_event_loop_cancel_task(s->loop, &s->connect_timeout_task);
    /* Before any other use of the socket: getpeername, shutdown and
     * SO_UPDATE_... need the connected state ConnectEx leaves unset. */
    if (!err && setsockopt(s->handle, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0) != 0) {
        err = rs__wsa_result();
    }
    s->callback_depth++;
    if (err) {
        RS__LOG_DEBUG(RS_LS_SOCKET, "socket %p: connect failed: %s", (void *)s, rs_strerror(err));
        rs__socket_close_internal(s, true);
    } else {
        s->state = RS__SOCK_CONNECTED;
        s->has_remote = true; /* s->remote was kept from rs_socket_connect */
    }
    rs__socket_deliver_connect(s, err);
    s->callback_depth--;
    rs__socket_maybe_free(s);
}

/* ConnectEx needs a bound socket: an unbound one is bound to the any-address
 * of its family, port 0, as connect() would do implicitly. */
static int rs__win_bind_any(rs_socket_t *s) {
    rs__sockaddr_t sa;
    int len;
    memset(&sa, 0, sizeof(sa));
    if (s->options.domain == RS_SOCKET_DOMAIN_IPV6) {
        sa.in6.sin6_family = AF_INET6;
        len = (int)sizeof(sa.in6);
    } else {
        sa.in4.sin_family = AF_INET;
        len = (int)sizeof(sa.in4);
    }
    if (bind(s->handle, &sa.sa, len) != 0) {
        return rs__wsa_result();
    }
    s->state = RS__SOCK_BOUND;
    return RS_OK;
}

/* A UDP "connect" only fixes the peer: done at once, reported on the next tick. */
static int rs__win_dgram_connect(rs_socket_t *s, const rs__sockaddr_t *sa, int len, rs_event_loop_t *loop,
                                 rs_socket_on_connect_fn *on_connect, void *user_data) {
    int err = rs__socket_tie_to_loop(s, loop);
    if (err) {
        return err;
    }
    if (connect(s->handle, &sa->sa, len) != 0) {
        err = rs__wsa_result();
        rs__socket_close_now(s); /* as POSIX: the socket is closed and nothing calls back */
        return err;
    }
    s->on_connect = on_connect;
    s->connect_user_data = user_data;
    s->state = RS__SOCK_CONNECTED;
    s->has_remote = true; /* s->remote was set by the caller */
    rs__socket_connect_later(s, RS_OK);
    rs__socket_update_reading(s);
    return RS_OK;
}

RESEAU_API int rs_socket_connect(rs_socket_t *socket, const rs_endpoint_t *remote, rs_event_loop_t *loop,
                                 rs_socket_on_connect_fn *on_connect, void *user_data) {
    GUID connect_guid = WSAID_CONNECTEX;
    LPFN_CONNECTEX connect_ex = NULL;
    rs__sockaddr_t sa;
    int len;
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
    if (!err && remote->port == 0) {
        err = RS_EINVAL;
    }
    if (!err && socket->state != RS__SOCK_INIT && socket->state != RS__SOCK_BOUND) {
        err = RS_ESTATE;
    }
    if (!err) {
        err = rs__endpoint_to_sockaddr(remote, &sa, &len);
    }
    if (!err && socket->options.type == RS_SOCKET_DGRAM) {
        socket->remote = *remote;
        return rs__win_dgram_connect(socket, &sa, len, loop, on_connect, user_data);
    }
    if (!err) {
        err = rs__win_extension(socket->handle, connect_guid, &connect_ex, sizeof(connect_ex));
    }
    if (!err) {
        err = rs__socket_tie_to_loop(socket, loop);
    }
    if (err) {
        return err;
    }
    socket->on_connect = on_connect;
    socket->connect_user_data = user_data;
    socket->remote = *remote;
    err = socket->state == RS__SOCK_INIT ? rs__win_bind_any(socket) : RS_OK;
    if (!err && !connect_ex(socket->handle, &sa.sa, len, NULL, 0, NULL, rs__iocp_op_overlapped(&socket->connect_op))) {
        int os_error = WSAGetLastError();
        if (os_error != ERROR_IO_PENDING) {
            err = rs__result_from_win32((uint32_t)os_error);
        }
    }
    if (err) {
        /* Refused at once: still reported later, never inline. */
        rs__socket_close_internal(socket, true);
        rs__socket_connect_later(socket, err);
        return RS_OK;
    }
    rs__iocp_op_started(loop, &socket->connect_op);
    socket->state = RS__SOCK_CONNECTING;
    if (!socket->no_connect_timer) {
        rs_event_loop_schedule_task_future(loop, &socket->connect_timeout_task,
                                           rs_event_loop_now_ns(loop) +
                                               socket->options.connect_timeout_ms * RS_NS_PER_MS);
    }
    return RS_OK;
}

RESEAU_API int rs_socket_assign_to_loop(rs_socket_t *socket, rs_event_loop_t *loop) {
    int err;
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
    err = rs__socket_tie_to_loop(socket, loop);
    if (!err) {
        rs__socket_update_reading(socket);
    }
    return err;
}

/* ---- reading ---- */

static bool rs__socket_wants_reads(const rs_socket_t *s) {
    return rs__socket_can_read(s) && s->handle != INVALID_SOCKET && s->loop && s->on_readable && s->reading &&
           !s->read_done;
}

static void rs__socket_schedule_readable(rs_socket_t *s) {
    if (rs__socket_wants_reads(s) && s->readable && !rs_task_is_scheduled(&s->readable_task)) {
        rs_event_loop_schedule_task_now(s->loop, &s->readable_task);
    }
}

/* An owned receive buffer for a stream socket, within the loop's limit.
 * false leaves the socket on the probe: over the limit, or out of memory
 * (the probe needs none, so a failed allocation costs speed, never the
 * connection; the next post tries again). */
static bool rs__win_recv_buf_take(rs_socket_t *s) {
    size_t *count;
    if (s->recv_buf) {
        return true;
    }
    count = rs__iocp_recv_bufs(s->loop);
    if (s->options.type != RS_SOCKET_STREAM || *count >= rs__win_test_recv_bufs_per_loop) {
        return false;
    }
    s->recv_buf = (char *)rs_mem_alloc(&s->allocator, RS__WIN_RECV_BUF_SIZE);
    if (!s->recv_buf) {
        return false;
    }
    ++*count;
    return true;
}

/* Free the owned buffer, unless the kernel may still write into it. Bytes
 * still held are dropped: only a closed or freed socket gives it back. */
static void rs__win_recv_buf_release(rs_socket_t *s) {
    if (!s->recv_buf || s->probe_op.pending) {
        return;
    }
    rs_mem_free(&s->allocator, s->recv_buf);
    s->recv_buf = NULL;
    s->recv_pos = 0;
    s->recv_len = 0;
    if (s->loop) { /* else the loop, and its count, are gone */
        --*rs__iocp_recv_bufs(s->loop);
    }
}

/* Post the receive (into the owned buffer) or the zero-byte probe when the
 * reader waits for news and none is known, else hear of what is known. */
static void rs__socket_update_reading(rs_socket_t *s) {
    if (rs__socket_wants_reads(s) && !s->readable && !s->probe_op.pending) {
        WSABUF buf;
        DWORD flags = 0;
        int r;
        s->recv_owned = rs__win_recv_buf_take(s);
        buf.len = s->recv_owned ? RS__WIN_RECV_BUF_SIZE : 0;
        buf.buf = s->recv_owned ? s->recv_buf : NULL;
        if (s->options.type == RS_SOCKET_DGRAM) {
            /* Peek: a plain zero-byte receive would take the datagram and
             * drop its bytes (they do not fit), losing it. */
            flags = MSG_PEEK;
            r = WSARecvFrom(s->handle, &buf, 1, NULL, &flags, NULL, NULL, rs__iocp_op_overlapped(&s->probe_op), NULL);
        } else {
            r = WSARecv(s->handle, &buf, 1, NULL, &flags, rs__iocp_op_overlapped(&s->probe_op), NULL);
        }
        if (r != 0 && WSAGetLastError() != WSA_IO_PENDING) {
            /* The socket is broken: the read says how. */
            s->probe_error = rs__wsa_result();
            s->readable = true;
        } else {
            rs__iocp_op_started(s->loop, &s->probe_op);
        }
    } else if (!rs__socket_wants_reads(s) && s->recv_owned && s->probe_op.pending && !s->recv_canceling &&
               s->handle != INVALID_SOCKET) {
        /* Paused: what comes next waits in the kernel, whose window holds
         * the peer back, rather than in the buffer. Bytes the receive took
         * before the cancel are kept (rs__win_probe_done). */
        s->recv_canceling = true;
        CancelIoEx((HANDLE)s->handle, &s->probe_op.ov);
    }
    rs__socket_schedule_readable(s);
}

static void rs__win_probe_done(rs__iocp_op_t *op, int status, size_t bytes) {
    rs_socket_t *s = RS_CONTAINER_OF(op, rs_socket_t, probe_op);
    s->recv_canceling = false;
    if (s->recv_owned && bytes > 0) {
        status = RS_OK; /* a receive the cancel came too late for: its bytes are the stream's */
    }
    if (rs__socket_can_read(s) && s->state != RS__SOCK_CLOSED && status != RS_ECANCELED) {
        s->readable = true;
        s->probe_error = status;
        if (s->recv_owned) {
            /* Held for rs_socket_readv; the end or the error after them. */
            s->recv_pos = 0;
            s->recv_len = bytes;
            s->recv_full = bytes == RS__WIN_RECV_BUF_SIZE;
            s->recv_eof = status == RS_OK && bytes == 0;
        } else if (s->options.type == RS_SOCKET_DGRAM) {
            /* UDP: the peek may end "too small" for the datagram it found,
             * which is news, not an error. ICMP port unreachable may end it
             * (Wine: ECONNREFUSED, consumed by the peek): kept for the next
             * receive when connected, dropped otherwise, as in recv_from. */
            s->probe_error = RS_OK;
            if ((status == RS_ECONNREFUSED || status == RS_ECONNRESET) && s->has_remote) {
                s->deferred_recv_error = RS_ECONNREFUSED;
            }
        }
        rs__socket_schedule_readable(s);
    } else if (status == RS_ECANCELED && s->state != RS__SOCK_CLOSED) {
        rs__socket_update_reading(s); /* paused, and perhaps resumed since */
    }
    if (s->state == RS__SOCK_CLOSED) {
        rs__win_recv_buf_release(s);
    }
    rs__socket_maybe_free(s);
}

/* Called again each tick while news waits and the reader has not read it to
 * RS_EAGAIN: the level-triggered contract of the readiness path. */
static void rs__socket_readable_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_socket_t *s = (rs_socket_t *)arg;
    (void)task;
    if (status != RS_TASK_STATUS_RUN || !rs__socket_wants_reads(s) || !s->readable) {
        return;
    }
    s->callback_depth++;
    s->on_readable(s, RS_OK, s->readable_user_data); /* an error comes from the read, after the data */
    s->callback_depth--;
    rs__socket_update_reading(s);
    rs__socket_maybe_free(s);
}

RESEAU_API int rs_socket_subscribe_to_readable_events(rs_socket_t *socket, rs_socket_on_readable_fn *on_readable,
                                                     void *user_data) {
    int err = rs__socket_check_thread(socket, "rs_socket_subscribe_to_readable_events");
    if (err) {
        return err;
    }
    if (!on_readable) {
        return RS_EINVAL;
    }
    if (!socket->loop) {
        return RS_ESTATE;
    }
    if (!rs__socket_can_read(socket)) {
        return socket->state == RS__SOCK_CLOSED ? RS_EBADF : RS_ENOTCONN;
    }
    socket->on_readable = on_readable;
    socket->readable_user_data = user_data;
    socket->reading = true;
    rs__socket_update_reading(socket);
    return RS_OK;
}

static int rs__socket_set_reading(rs_socket_t *s, bool reading, const char *function) {
    int err = rs__socket_check_thread(s, function);
    if (err) {
        return err;
    }
    s->reading = reading;
    if (s->loop) {
        rs__socket_update_reading(s);
    }
    return RS_OK;
}

/* Nothing more will come (EOF or an error was returned). */
static int rs__socket_read_finished(rs_socket_t *s, int result) {
    s->read_done = true;
    s->readable = false;
    return result;
}

static size_t rs__win_fill_wsabufs(rs_byte_buf_t *bufs, size_t count, WSABUF *wsabufs);
static size_t rs__wsabufs_room(const WSABUF *bufs, size_t count);

/* After the held bytes of a receive that filled the buffer, with room left:
 * more likely waits, so a non-blocking read takes it straight into the
 * caller's buffer (a burst costs no round trip through the port per owned
 * buffer). What it meets besides bytes is kept for the next read, after
 * them; WSAEWOULDBLOCK posts the next receive. */
static size_t rs__win_read_after_held(rs_socket_t *s, rs_byte_buf_t *bufs, size_t count) {
    WSABUF wsabufs[RS_SOCKET_READV_MAX];
    DWORD n = 0;
    DWORD flags = 0;
    size_t used = rs__win_fill_wsabufs(bufs, count, wsabufs);
    s->recv_full = false;
    if (used == 0) {
        return 0; /* no room: the next read asks */
    }
    if (WSARecv(s->handle, wsabufs, (DWORD)used, &n, &flags, NULL, NULL) == 0) {
        s->recv_eof = n == 0;
        rs__bufs_credit(bufs, count, (size_t)n);
        if (n > 0 && (size_t)n < rs__wsabufs_room(wsabufs, used) && rs__socket_wants_reads(s)) {
            s->readable = false; /* all that waited: the receive now, as after a short one */
            rs__socket_update_reading(s);
        }
        return (size_t)n;
    }
    if (WSAGetLastError() != WSAEWOULDBLOCK) {
        s->probe_error = rs__wsa_result();
        return 0;
    }
    s->readable = false;
    rs__socket_update_reading(s);
    return 0;
}

/* Copy held bytes into the caller's buffers. Once none is left after a
 * short receive, the kernel had no more: the next receive goes out at once,
 * and the read after this one answers RS_EAGAIN by itself while it is in
 * flight. */
static int rs__win_read_held(rs_socket_t *s, rs_byte_buf_t *bufs, size_t count, size_t *amount_read) {
    size_t n = 0;
    size_t i;
    for (i = 0; i < count && s->recv_pos < s->recv_len; ++i) {
        size_t room = bufs[i].capacity - bufs[i].len;
        size_t take = s->recv_len - s->recv_pos < room ? s->recv_len - s->recv_pos : room;
        memcpy(bufs[i].buffer + bufs[i].len, s->recv_buf + s->recv_pos, take);
        bufs[i].len += take;
        s->recv_pos += take;
        n += take;
    }
    if (s->recv_pos == s->recv_len && s->recv_full) {
        n += rs__win_read_after_held(s, bufs, count);
    } else if (s->recv_pos == s->recv_len && !s->recv_eof && !s->probe_error) {
        s->readable = false;
        rs__socket_update_reading(s);
    }
    if (amount_read) {
        *amount_read = n;
    }
    return RS_OK;
}

/* The read of a socket whose last receive went into its owned buffer: the
 * held bytes, then the end or the error that followed them, else RS_EAGAIN
 * while the receive is in flight. RS_EAGAIN, never WSARecv, there: a
 * non-blocking read beside the posted receive could take bytes that arrived
 * after the ones the posted receive will hold. */
static bool rs__win_read_owned(rs_socket_t *s, rs_byte_buf_t *bufs, size_t count, size_t *amount_read, int *result) {
    if (s->recv_pos < s->recv_len) {
        *result = rs__win_read_held(s, bufs, count, amount_read);
    } else if (s->recv_owned && s->recv_eof) {
        *result = rs__socket_read_finished(s, RS_EEOF);
    } else if (s->recv_owned && s->probe_error) {
        *result = rs__socket_read_finished(s, s->probe_error);
    } else if (s->recv_owned && s->probe_op.pending) {
        s->readable = false;
        *result = RS_EAGAIN;
    } else {
        return false; /* nothing in flight: a plain non-blocking read */
    }
    return true;
}

/* The room left in `bufs` as WSABUFs (at most `count`); how many. */
static size_t rs__win_fill_wsabufs(rs_byte_buf_t *bufs, size_t count, WSABUF *wsabufs) {
    size_t used = 0;
    size_t i;
    for (i = 0; i < count; ++i) {
        if (bufs[i].len < bufs[i].capacity) {
            size_t room = bufs[i].capacity - bufs[i].len;
            wsabufs[used].buf = (char *)(bufs[i].buffer + bufs[i].len);
            wsabufs[used].len = room > (size_t)ULONG_MAX ? ULONG_MAX : (ULONG)room;
            ++used;
        }
    }
    return used;
}

static size_t rs__wsabufs_room(const WSABUF *bufs, size_t count) {
    size_t room = 0;
    size_t i;
    for (i = 0; i < count; ++i) {
        room += bufs[i].len;
    }
    return room;
}

RESEAU_API int rs_socket_readv(rs_socket_t *socket, rs_byte_buf_t *bufs, size_t count, size_t *amount_read) {
    WSABUF wsabufs[RS_SOCKET_READV_MAX];
    DWORD n = 0;
    DWORD flags = 0;
    DWORD used = 0;
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
    used = (DWORD)rs__win_fill_wsabufs(bufs, count, wsabufs);
    if (used == 0) {
        return RS_EINVAL;
    }
    if (socket->handle == INVALID_SOCKET) {
        return RS_EBADF;
    }
    if (socket->read_done) {
        return RS_EEOF;
    }
    if (rs__win_read_owned(socket, bufs, count, amount_read, &err)) {
        return err;
    }
    if (socket->short_read) {
        socket->short_read = false;
        if (socket->probe_op.pending && !socket->readable) {
            return RS_EAGAIN; /* the probe, posted after the short read, tells of what comes next */
        }
    }
    if (WSARecv(socket->handle, wsabufs, used, &n, &flags, NULL, NULL) == 0) {
        if (n == 0) {
            return rs__socket_read_finished(socket, RS_EEOF);
        }
        rs__bufs_credit(bufs, count, (size_t)n);
        if (amount_read) {
            *amount_read = (size_t)n;
        }
        if (socket->options.type == RS_SOCKET_STREAM && (size_t)n < rs__wsabufs_room(wsabufs, used) &&
            rs__socket_wants_reads(socket)) {
            /* A short read took all that waited: the next read would only say
             * WSAEWOULDBLOCK. For a subscribed reader, post the probe now
             * instead, and let that read answer RS_EAGAIN by itself (above);
             * data that came in between completes the probe at once, so the
             * reader still hears of it. A caller without a subscription hears
             * of no probe, so its reads always ask Winsock. */
            socket->readable = false;
            socket->short_read = true;
            rs__socket_update_reading(socket);
        }
        return RS_OK;
    }
    if (WSAGetLastError() != WSAEWOULDBLOCK) {
        return rs__socket_read_finished(socket, rs__wsa_result());
    }
    if (socket->probe_error) {
        return rs__socket_read_finished(socket, socket->probe_error);
    }
    socket->readable = false;
    if (socket->loop) {
        rs__socket_update_reading(socket); /* the probe again, for the next data */
    }
    return RS_EAGAIN;
}

/* ---- writing ---- */

static void rs__socket_deliver_writes(rs_socket_t *s, rs_list_t *list) {
    rs_list_t batch;
    rs_list_node_t *node;
    rs_list_init(&batch);
    rs_list_swap(&batch, list);
    s->callback_depth++;
    while ((node = rs_list_pop_front(&batch)) != NULL) {
        rs__write_req_t req = *RS_CONTAINER_OF(node, rs__write_req_t, node);
        rs__socket_recycle_req(s, RS_CONTAINER_OF(node, rs__write_req_t, node));
        if (req.fn) {
            req.fn(s, req.error, req.written, req.user_data);
        }
    }
    s->callback_depth--;
}

static void rs__socket_completion_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_socket_t *s = (rs_socket_t *)arg;
    (void)task;
    (void)status; /* completions are delivered either way: exactly once each */
    /* Only what completed before this task ran: completions of writes made by
     * these callbacks wait for the next tick. */
    rs__socket_deliver_writes(s, &s->completed);
    rs__socket_maybe_free(s);
}

/* Credit `n` written bytes to the queue head, completing whole requests. */
static void rs__socket_credit_written(rs_socket_t *s, size_t n) {
    while (n > 0 || (!rs_list_empty(&s->write_queue) &&
                     RS_CONTAINER_OF(rs_list_begin(&s->write_queue), rs__write_req_t, node)->remaining.len == 0)) {
        rs__write_req_t *req;
        size_t take;
        if (rs_list_empty(&s->write_queue)) {
            break;
        }
        req = RS_CONTAINER_OF(rs_list_begin(&s->write_queue), rs__write_req_t, node);
        take = n < req->remaining.len ? n : req->remaining.len;
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

/* Start one WSASend over the head of the queue, unless one is under way. */
static void rs__socket_flush(rs_socket_t *s) {
    if (!s->send_op.pending && !rs_list_empty(&s->write_queue) && s->state == RS__SOCK_CONNECTED) {
        rs_list_node_t *node;
        DWORD count = 0;
        for (node = rs_list_begin(&s->write_queue);
             node != rs_list_end(&s->write_queue) && count < RS__WIN_SEND_BUFS_MAX; node = node->next) {
            rs__write_req_t *req = RS_CONTAINER_OF(node, rs__write_req_t, node);
            size_t len = req->remaining.len;
            s->send_bufs[count].buf = (char *)(uintptr_t)req->remaining.ptr;
            s->send_bufs[count].len = len > (size_t)ULONG_MAX ? ULONG_MAX : (ULONG)len;
            ++count;
            if (len > (size_t)ULONG_MAX) {
                break; /* the rest of it goes in the next send */
            }
        }
        if (WSASend(s->handle, s->send_bufs, count, NULL, 0, rs__iocp_op_overlapped(&s->send_op), NULL) != 0 &&
            WSAGetLastError() != WSA_IO_PENDING) {
            int err = rs__wsa_result();
            RS__LOG_DEBUG(RS_LS_SOCKET, "socket %p: write failed: %s", (void *)s, rs_strerror(err));
            rs__socket_fail_writes(s, err);
        } else {
            rs__iocp_op_started(s->loop, &s->send_op);
        }
    }
    if (rs_list_empty(&s->write_queue) && !s->send_op.pending && s->shut_write_pending) {
        rs__socket_shutdown_write_now(s);
    }
    rs__socket_schedule_completions(s);
}

static void rs__win_send_done(rs__iocp_op_t *op, int status, size_t bytes) {
    rs_socket_t *s = RS_CONTAINER_OF(op, rs_socket_t, send_op);
    rs__socket_credit_written(s, bytes);
    if (status && status != RS_ECANCELED) {
        RS__LOG_DEBUG(RS_LS_SOCKET, "socket %p: write failed: %s", (void *)s, rs_strerror(status));
    }
    if (status || s->write_error) {
        rs__socket_fail_writes(s, status ? status : s->write_error);
    } else {
        rs__socket_flush(s);
    }
    rs__socket_schedule_completions(s);
    rs__socket_maybe_free(s);
}

RESEAU_API int rs_socket_write(rs_socket_t *socket, rs_byte_cursor_t data, rs_socket_on_write_fn *on_written,
                               void *user_data) {
    rs__write_req_t *req;
    int err = rs__socket_check_thread(socket, "rs_socket_write"); /* first: misuse off-thread says so */
    if (err) {
        return err;
    }
    if (!on_written || (!data.ptr && data.len) || socket->options.type != RS_SOCKET_STREAM) {
        return RS_EINVAL;
    }
    if (socket->state != RS__SOCK_CONNECTED || !socket->loop) {
        return socket->state == RS__SOCK_CLOSED ? RS_EBADF : RS_ENOTCONN;
    }
    if (socket->write_shut) {
        return RS_ESHUTDOWN;
    }
    if (socket->write_error) {
        return socket->write_error;
    }
    req = rs__socket_take_req(socket);
    if (!req) {
        return RS_ENOMEM;
    }
    memset(req, 0, sizeof(*req));
    req->remaining = data;
    req->fn = on_written;
    req->user_data = user_data;
    rs_list_push_back(&socket->write_queue, &req->node);
    socket->pending_write_bytes += data.len;
    rs__socket_flush(socket);
    return RS_OK;
}

/* ---- options on a live socket ---- */

/* The common checks of the setters, in the documented order. */
static int rs__socket_check_option(const rs_socket_t *s, bool type_ok, const char *function) {
    int err = rs__socket_check_thread(s, function);
    if (err) {
        return err;
    }
    if (!type_ok) {
        return RS_EINVAL;
    }
    return rs__socket_fd_state(s);
}

static bool rs__socket_is_ip(const rs_socket_t *s) {
    return s->options.domain == RS_SOCKET_DOMAIN_IPV4 || s->options.domain == RS_SOCKET_DOMAIN_IPV6 ||
           s->options.domain == RS_SOCKET_DOMAIN_DEFAULT;
}

/* TCP options: RS_EINVAL on a UDP socket, as on POSIX (Winsock would take them). */
static bool rs__socket_is_tcp(const rs_socket_t *s) {
    return s->options.type == RS_SOCKET_STREAM && rs__socket_is_ip(s);
}

RESEAU_API int rs_socket_set_tcp_nodelay(rs_socket_t *socket, bool enabled) {
    int err = rs__socket_check_option(socket, socket && rs__socket_is_tcp(socket), "rs_socket_set_tcp_nodelay");
    return err ? err : rs__setsockopt_int(socket->handle, IPPROTO_TCP, TCP_NODELAY, enabled ? 1 : 0);
}

RESEAU_API int rs_socket_set_keepalive(rs_socket_t *socket, bool enabled, uint32_t idle_s, uint32_t interval_s,
                                       uint32_t probes) {
    int err = rs__socket_check_option(socket, socket && rs__socket_is_tcp(socket), "rs_socket_set_keepalive");
    if (err) {
        return err;
    }
    err = rs__setsockopt_int(socket->handle, SOL_SOCKET, SO_KEEPALIVE, enabled ? 1 : 0);
    return err ? err : rs__set_keepalive_timers(socket->handle, enabled, idle_s, interval_s, probes);
}

RESEAU_API int rs_socket_set_ttl(rs_socket_t *socket, uint32_t ttl) {
    int err = rs__socket_check_option(socket, socket && rs__socket_is_ip(socket) && ttl >= 1 && ttl <= 255,
                                      "rs_socket_set_ttl");
    if (err) {
        return err;
    }
    if (socket->options.domain == RS_SOCKET_DOMAIN_IPV6) {
        return rs__setsockopt_int(socket->handle, IPPROTO_IPV6, IPV6_UNICAST_HOPS, (int)ttl);
    }
    return rs__setsockopt_int(socket->handle, IPPROTO_IP, IP_TTL, (int)ttl);
}

/* ---- datagrams ---- */

/* Send one datagram; the socket was checked. */
static int rs__dgram_send_one(rs_socket_t *s, const rs_endpoint_t *destination, const void *data, size_t len) {
    rs__sockaddr_t name;
    int name_len = 0;
    WSABUF buf;
    DWORD sent = 0;
    int r;
    if (destination && !s->has_remote) {
        int err = rs__socket_take_family(s, destination);
        if (!err) {
            err = rs__endpoint_to_sockaddr(destination, &name, &name_len);
        }
        if (err) {
            return err;
        }
    } else if (!s->has_remote) {
        return RS_ENOTCONN; /* no destination and not connected */
    }
    if (len > (size_t)ULONG_MAX) {
        return RS_EMSGSIZE;
    }
    buf.buf = (char *)(uintptr_t)data;
    buf.len = (ULONG)len;
    if (s->has_remote) {
        r = WSASend(s->handle, &buf, 1, &sent, 0, NULL, NULL);
    } else {
        r = WSASendTo(s->handle, &buf, 1, &sent, 0, &name.sa, name_len, NULL, NULL);
    }
    /* Non-blocking: WSAEWOULDBLOCK is RS_EAGAIN, retried by the caller. */
    return r == 0 ? RS_OK : rs__wsa_result();
}

RESEAU_API int rs_socket_send_batch(rs_socket_t *socket, const rs_datagram_t *datagrams, size_t count,
                                    size_t *sent_out) {
    size_t sent = 0;
    int err;
    if (sent_out) {
        *sent_out = 0;
    }
    err = rs__socket_check_dgram(socket, "rs_socket_send_batch"); /* NULL socket, then the thread, first */
    if (!err && (!datagrams || !sent_out)) {
        err = RS_EINVAL;
    }
    /* Winsock has no sendmmsg: one WSASendTo each, stopping at the first error. */
    while (!err && sent < count) {
        err = rs__dgram_send_one(socket, &datagrams[sent].endpoint, datagrams[sent].data, datagrams[sent].len);
        if (!err) {
            ++sent;
        }
    }
    if (sent_out) {
        *sent_out = sent;
    }
    return sent > 0 ? RS_OK : err;
}

/* Receive one datagram; the socket and the datagram were checked. */
static int rs__dgram_recv_one(rs_socket_t *s, rs_datagram_t *d) {
    for (;;) {
        rs__sockaddr_t name;
        int name_len = (int)sizeof(name);
        WSABUF buf;
        DWORD n = 0;
        DWORD flags = 0;
        int os_error;
        memset(&name, 0, sizeof(name));
        buf.buf = (char *)d->data;
        buf.len = d->capacity > (size_t)ULONG_MAX ? ULONG_MAX : (ULONG)d->capacity;
        d->truncated = false;
        if (WSARecvFrom(s->handle, &buf, 1, &n, &flags, &name.sa, &name_len, NULL, NULL) == 0) {
            d->len = (size_t)n;
        } else {
            os_error = WSAGetLastError();
            if (os_error == WSAEMSGSIZE) {
                /* Winsock fills the buffer and drops the rest, as MSG_TRUNC says on POSIX. */
                d->len = buf.len;
                d->truncated = true;
            } else if (os_error == WSAECONNRESET) {
                /* ICMP port unreachable for an earlier send: POSIX reports it
                 * (as ECONNREFUSED) only on a connected socket. */
                if (s->has_remote) {
                    return RS_ECONNREFUSED;
                }
                continue;
            } else {
                if (os_error == WSAEWOULDBLOCK) {
                    s->readable = false;
                    if (s->loop) {
                        rs__socket_update_reading(s); /* the probe again, for the next datagram */
                    }
                }
                return rs__result_from_win32((uint32_t)os_error);
            }
        }
        if (rs__endpoint_from_sockaddr(&d->endpoint, &name.sa, name_len) != RS_OK) {
            memset(&d->endpoint, 0, sizeof(d->endpoint));
        }
        return RS_OK;
    }
}

RESEAU_API int rs_socket_recv_batch(rs_socket_t *socket, rs_datagram_t *datagrams, size_t count,
                                    size_t *received_out) {
    size_t chunk = count < RS_DATAGRAM_BATCH_MAX ? count : RS_DATAGRAM_BATCH_MAX;
    size_t received = 0;
    size_t i;
    int err;
    if (received_out) {
        *received_out = 0;
    }
    err = rs__dgram_check_recv(socket, datagrams && received_out, "rs_socket_recv_batch");
    if (!err && count == 0) {
        err = RS_EINVAL;
    }
    for (i = 0; !err && i < chunk; ++i) {
        if (!datagrams[i].data || !datagrams[i].capacity) {
            err = RS_EINVAL; /* before anything is received, whichever it is */
        }
    }
    err = err ? err : rs__dgram_take_deferred_error(socket);
    /* Winsock has no recvmmsg: one WSARecvFrom each. An error after some
     * datagrams is kept for the next receive, as recvmmsg keeps it. */
    while (!err && received < chunk) {
        err = rs__dgram_recv_one(socket, &datagrams[received]);
        if (!err) {
            ++received;
        }
    }
    if (err && received > 0) {
        if (err != RS_EAGAIN) {
            socket->deferred_recv_error = err;
        }
        err = RS_OK;
    }
    if (err) {
        return err;
    }
    *received_out = received;
    return RS_OK;
}

/* Multicast and broadcast are not ported yet: RS_ENOTSUP for a UDP socket
 * (after the checks every option setter makes, `args_ok` among them, so a
 * bad argument is RS_EINVAL before the socket's state, as on POSIX),
 * RS_EINVAL otherwise. */
static int rs__socket_dgram_option_unsupported(const rs_socket_t *s, bool args_ok, const char *function) {
    int err = rs__socket_check_option(
        s, s && s->options.type == RS_SOCKET_DGRAM && rs__socket_is_ip(s) && args_ok, function);
    return err ? err : RS_ENOTSUP;
}

#endif /* RESEAU_OS_WINDOWS */

