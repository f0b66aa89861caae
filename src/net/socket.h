/*
 * Sockets: TCP and UDP over IPv4 and IPv6, Unix-domain and VSOCK (Linux).
 *
 * Every socket is non-blocking and close-on-exec from creation and never
 * raises SIGPIPE. Lifecycle:
 *   rs_socket_new -> [rs_socket_bind] -> rs_socket_connect           (client)
 *   rs_socket_new -> rs_socket_bind -> rs_socket_listen -> rs_socket_start_accept
 *   ... -> rs_socket_close -> rs_socket_destroy
 *
 * Family: a socket whose options leave `domain` at RS_SOCKET_DOMAIN_DEFAULT
 * takes it from the first endpoint it is given (rs_socket_bind,
 * rs_socket_connect, rs_socket_send_to or _send_batch), and only then makes
 * its OS socket, with the options applied. Until then rs_socket_get_fd is -1,
 * and calls that need the OS socket (listen, get_bound_address, recv_from,
 * the option setters) return RS_ESTATE. That first endpoint fixes the family
 * even if its call fails. An explicit domain must match every endpoint
 * (RS_EINVAL otherwise).
 *
 * Threads: a new socket belongs to no loop, and one thread at a time may set it
 * up (options, bind, listen). rs_socket_connect, rs_socket_start_accept and
 * rs_socket_assign_to_loop tie it to a loop; from then on it must be used on
 * that loop's thread (RS_EWRONGTHREAD otherwise), except that a listener may
 * be closed from any thread. Accepted sockets arrive unassigned: call
 * rs_socket_assign_to_loop (on the target loop's thread) before using them.
 *
 * Callbacks run on the socket's loop thread and never inside the call that
 * started the operation. A call that returns an error never invokes its
 * callback. Closing or destroying the socket inside any of its own callbacks
 * is safe. Closing completes every operation still in flight exactly once,
 * with RS_ECANCELED.
 */
typedef struct rs_socket rs_socket_t;

typedef enum rs_socket_type {
    RS_SOCKET_STREAM = 0, /* TCP, or SOCK_STREAM for LOCAL/VSOCK (the default) */
    RS_SOCKET_DGRAM = 1   /* UDP, or SOCK_DGRAM for LOCAL */
} rs_socket_type_t;

typedef enum rs_socket_ipv6_only {
    RS_SOCKET_IPV6_ONLY_DEFAULT = 0, /* leave IPV6_V6ONLY as the OS sets it */
    RS_SOCKET_IPV6_ONLY_ON = 1,      /* IPv6 only */
    RS_SOCKET_IPV6_ONLY_OFF = 2      /* dual stack: IPv4 peers appear as ::ffff:a.b.c.d */
} rs_socket_ipv6_only_t;

typedef enum rs_socket_dir {
    RS_SOCKET_DIR_READ = 1,
    RS_SOCKET_DIR_WRITE = 2,
    RS_SOCKET_DIR_BOTH = 3
} rs_socket_dir_t;

/* Connect timeout applied when the option is 0. */
#define RS_SOCKET_DEFAULT_CONNECT_TIMEOUT_MS 3000

typedef struct rs_socket_options {
    const rs_allocator_t *allocator;    /* copied (default: NULL, libc) */
    rs_socket_type_t type;              /* (default: STREAM) */
    rs_socket_domain_t domain;          /* (default: DEFAULT, the first endpoint's: see below) */
    uint32_t connect_timeout_ms;        /* (default: 0, meaning RS_SOCKET_DEFAULT_CONNECT_TIMEOUT_MS) */
    bool keepalive;                     /* SO_KEEPALIVE on TCP (default: false) */
    uint32_t keepalive_idle_s;          /* TCP_KEEPIDLE (macOS: TCP_KEEPALIVE): idle seconds before the first
                                         * probe (default: 0, OS). The three timers are as for
                                         * rs_socket_set_keepalive, RS_ENOTSUP included */
    uint32_t keepalive_interval_s;      /* TCP_KEEPINTVL: seconds between probes (default: 0, OS) */
    uint32_t keepalive_probes;          /* TCP_KEEPCNT: unanswered probes before reset (default: 0, OS) */
    bool tcp_nodelay;                   /* TCP_NODELAY, no Nagle delay (default: false) */
    bool reuseaddr;                     /* SO_REUSEADDR before bind (default: false) */
    bool reuseport;                     /* SO_REUSEPORT before bind (default: false) */
    uint32_t send_buffer_size;          /* SO_SNDBUF in bytes (default: 0, OS) */
    uint32_t recv_buffer_size;          /* SO_RCVBUF in bytes (default: 0, OS) */
    const char *network_interface_name; /* SO_BINDTODEVICE (macOS: IP_BOUND_IF or IPV6_BOUND_IF), copied
                                         * (default: NULL); RS_ENOTSUP elsewhere, and on macOS for
                                         * non-IP sockets; RS_ENODEV for an unknown name */
    rs_socket_ipv6_only_t ipv6_only;    /* IPV6_V6ONLY for IPv6 sockets (default: DEFAULT, the OS's) */
} rs_socket_options_t;

/* Connected (error RS_OK), or failed: RS_ECONNREFUSED, RS_ETIMEDOUT,
 * RS_ECANCELED (closed first), ... After a failure the socket is closed. */
typedef void rs_socket_on_connect_fn(rs_socket_t *socket, int error, void *user_data);
/* A new connection (error RS_OK, new_socket unassigned and owned by you), or a
 * transient accept error (new_socket NULL: RS_EMFILE, RS_ENFILE, RS_ENOMEM,
 * ...) after which the listener keeps serving, backing off while fds are short. */
typedef void rs_socket_on_accept_fn(rs_socket_t *listener, int error, rs_socket_t *new_socket, void *user_data);
/* Data, end of stream or an error may be waiting: call rs_socket_read (or
 * rs_socket_recv_from) until RS_EAGAIN. Level-triggered: called again every
 * tick while unread data remains, unless reading is paused. */
typedef void rs_socket_on_readable_fn(rs_socket_t *socket, int error, void *user_data);
/* One write finished: all bytes written (RS_OK), or failed/canceled, with the
 * bytes that did reach the kernel.
 * On io_uring loops, reads, writes, accepts and connects in flight end with
 * RS_EIO if the kernel dropped completions (a completion-queue overflow it
 * had no memory to keep): what they did is then unknown, so the stream may
 * have a gap, and its socket should be closed. */
typedef void rs_socket_on_write_fn(rs_socket_t *socket, int error, size_t bytes_written, void *user_data);

/* Create an unassigned socket with the options applied (NULL options: TCP,
 * family from the first endpoint). NULL with *err_out set on failure
 * (RS_EINVAL, RS_ENOMEM, RS_EAFNOSUPPORT, RS_ENOTSUP, RS_EMFILE, ...; with
 * the default domain the OS errors come from the first bind, connect or
 * send_to instead). Any thread. */
RESEAU_API rs_socket_t *rs_socket_new(const rs_socket_options_t *options, int *err_out);
/* Close (if open) and free. In-flight operations complete with RS_ECANCELED
 * first, after this returns; the memory is released once they have. Loop
 * thread (any thread while unassigned or once closed with nothing in flight). */
RESEAU_API void rs_socket_destroy(rs_socket_t *socket);
/* Close the OS socket; in-flight operations complete with RS_ECANCELED.
 * Idempotent. Loop thread (any thread while unassigned). A listener may be
 * closed from any thread: the call then blocks until its loop has closed it,
 * so that loop must be running. RS_OK; RS_EINVAL for a NULL socket;
 * RS_EWRONGTHREAD for a non-listener off its loop's thread; off-thread on a
 * listener, the error creating the mutex or condvar to wait on. */
RESEAU_API int rs_socket_close(rs_socket_t *socket);
RESEAU_API bool rs_socket_is_open(const rs_socket_t *socket);

/* Bind to a local endpoint of the socket's domain (or, at the default domain,
 * make the socket of the endpoint's); port 0 picks a free port (see
 * rs_socket_get_bound_address). RS_EINVAL for a NULL socket or local, or an
 * endpoint of another domain; RS_EWRONGTHREAD off its loop's thread;
 * RS_ESTATE once bound or used; RS_EBADF once closed; RS_EADDRINUSE,
 * RS_EADDRNOTAVAIL, RS_EACCES, RS_EMFILE, ... */
RESEAU_API int rs_socket_bind(rs_socket_t *socket, const rs_endpoint_t *local);
/* RS_EINVAL for a NULL socket or out, RS_ESTATE before a default-domain socket
 * has its family, RS_EBADF once closed, or the OS error. */
RESEAU_API int rs_socket_get_bound_address(const rs_socket_t *socket, rs_endpoint_t *out);
/* The peer of a connected or accepted socket. RS_ENOTCONN otherwise, and for an
 * accepted socket whose peer had reset it before the address was read (io_uring
 * loops read it after the accept); RS_EINVAL for a NULL socket or out. */
RESEAU_API int rs_socket_get_remote_address(const rs_socket_t *socket, rs_endpoint_t *out);

/* Stream sockets only; backlog <= 0 means SOMAXCONN. RS_EINVAL for a NULL or
 * DGRAM socket, RS_EWRONGTHREAD off its loop's thread, RS_ESTATE unless new or
 * bound (or before a default-domain socket has its family: bind it first), or
 * the OS error (RS_EADDRINUSE, ...). */
RESEAU_API int rs_socket_listen(rs_socket_t *socket, int backlog);
/* Ties the listener to `loop` and accepts until stopped or closed; on_accept
 * runs on that loop's thread. Call on `loop`'s thread. RS_EINVAL for a NULL
 * listener, loop or on_accept; RS_EBUSY if tied to another loop;
 * RS_EWRONGTHREAD off `loop`'s thread; RS_ESTATE unless listening; or the
 * OS error registering with the loop (RS_ENOMEM, ...; on io_uring also RS_EAGAIN
 * when the submission queue is full and the kernel takes none of it). */
RESEAU_API int rs_socket_start_accept(rs_socket_t *listener, rs_event_loop_t *loop, rs_socket_on_accept_fn *on_accept,
                                      void *user_data);
/* Connections that arrive meanwhile wait for the next rs_socket_start_accept
 * (in the kernel's queue, or on io_uring loops those the accept op had taken
 * on the listener), and are closed if the listener closes first. RS_EINVAL for
 * a NULL listener, RS_EWRONGTHREAD off its loop's thread, RS_ESTATE unless
 * listening, or the loop's subscription error. */
RESEAU_API int rs_socket_stop_accept(rs_socket_t *listener);

/* Start connecting to `remote`, tied to `loop`; on_connect fires exactly once
 * (RS_ETIMEDOUT after connect_timeout_ms). A DGRAM socket "connects" at once
 * (the callback still comes later). RS_EINVAL for a NULL socket, remote, loop or
 * on_connect, a port of 0 or an endpoint of another domain; RS_EBUSY if tied to
 * another loop; RS_EWRONGTHREAD off `loop`'s thread; RS_EBADF once closed;
 * RS_ESTATE unless new or bound; or the loop's subscription error (RS_ENOMEM, ...; on io_uring
 * also RS_EAGAIN when the submission queue is full and the kernel takes none of it; the socket is
 * then closed). An OS refusal (RS_ECONNREFUSED, ...) comes through on_connect. Loop thread. */
RESEAU_API int rs_socket_connect(rs_socket_t *socket, const rs_endpoint_t *remote, rs_event_loop_t *loop,
                                 rs_socket_on_connect_fn *on_connect, void *user_data);
/* Tie an accepted (or any unassigned) socket to `loop`. RS_EBUSY if already
 * tied to a loop, RS_EINVAL for a NULL socket or loop, RS_EWRONGTHREAD off
 * `loop`'s thread, or the loop's subscription error. Call it on `loop`'s thread. */
RESEAU_API int rs_socket_assign_to_loop(rs_socket_t *socket, rs_event_loop_t *loop);
/* NULL while unassigned. Any thread. */
RESEAU_API rs_event_loop_t *rs_socket_get_loop(const rs_socket_t *socket);

/* Call on_readable whenever data (or EOF, or an error) is waiting. Replaces an
 * earlier subscription. RS_EINVAL for a NULL socket or on_readable; RS_ESTATE
 * while unassigned; RS_ENOTCONN for a stream socket not connected, RS_EBADF once
 * closed; RS_EWRONGTHREAD, or the loop's subscription error (RS_ENOMEM, ...). Loop thread. */
RESEAU_API int rs_socket_subscribe_to_readable_events(rs_socket_t *socket, rs_socket_on_readable_fn *on_readable,
                                                     void *user_data);
/* Stop and restart readable callbacks (back-pressure) without unsubscribing.
 * RS_EINVAL for a NULL socket. */
RESEAU_API int rs_socket_pause_reading(rs_socket_t *socket);
RESEAU_API int rs_socket_resume_reading(rs_socket_t *socket);
/* Read into buf's free space [len, capacity); adds the bytes to buf->len.
 * RS_EAGAIN when nothing is waiting, or, for a subscribed reader on a stream
 * socket, after a read that filled less than it asked for: that read took
 * all that waited, and the next readable callback tells of what came since
 * (the system call that would only have said so is skipped). RS_EEOF at end of stream (after all data),
 * RS_EINVAL for a NULL socket or buf or when buf has no free space, RS_EBADF
 * once closed, else the error (RS_ECONNRESET, ...). amount_read may be NULL. */
RESEAU_API int rs_socket_read(rs_socket_t *socket, rs_byte_buf_t *buf, size_t *amount_read);
/* Scatter read: fill the free space of bufs[0], then bufs[1], ... in one system
 * call (at most RS_SOCKET_READV_MAX buffers). Same results as rs_socket_read,
 * and RS_EINVAL for a count of 0 or above the maximum; *amount_read is the
 * total added across the buffers. */
#define RS_SOCKET_READV_MAX 16
RESEAU_API int rs_socket_readv(rs_socket_t *socket, rs_byte_buf_t *bufs, size_t count, size_t *amount_read);

/* Queue `data` for writing (stream sockets). The bytes are not copied: keep
 * them valid until on_written, which fires exactly once per write, in order.
 * Loop thread. Errors, checked in this order (on_written is not called):
 *   RS_EINVAL        NULL socket;
 *   RS_EWRONGTHREAD  called off the socket's loop thread;
 *   RS_EINVAL        NULL on_written, NULL data.ptr with a non-zero length,
 *                    or a DGRAM socket;
 *   RS_EBADF         the socket is closed;
 *   RS_ENOTCONN      not connected (or not yet tied to a loop);
 *   RS_ESHUTDOWN     the write side was shut down;
 *   RS_EPIPE, RS_ECONNRESET, ...  the error an earlier write hit;
 *   RS_ENOMEM        no memory for the request. */
RESEAU_API int rs_socket_write(rs_socket_t *socket, rs_byte_cursor_t data, rs_socket_on_write_fn *on_written,
                               void *user_data);
/* Bytes queued by rs_socket_write and not yet handed to the kernel. */
RESEAU_API size_t rs_socket_get_pending_write_bytes(const rs_socket_t *socket);
/* Shut down one or both directions. Shutting the write side waits for queued
 * writes to reach the kernel first, then sends FIN. RS_EINVAL for a NULL socket
 * or a bad dir, RS_ENOTCONN unless connected, RS_EBADF once closed, or the OS
 * error. Loop thread. */
RESEAU_API int rs_socket_shutdown_dir(rs_socket_t *socket, rs_socket_dir_t dir);

/* The OS file descriptor, for diagnostics and socket options reseau lacks;
 * -1 when closed (or for a NULL socket). Do not close it or change its blocking mode. */
RESEAU_API int rs_socket_get_fd(const rs_socket_t *socket);

/* ---- Datagrams (DGRAM sockets) ---- */

typedef struct rs_datagram {
    void *data;             /* send: the bytes; receive: the buffer to fill */
    size_t capacity;        /* receive: size of the buffer (unused for send) */
    size_t len;             /* send: bytes to send; receive: bytes received */
    rs_endpoint_t endpoint; /* send: destination (ignored once connected); receive: source */
    bool truncated;         /* receive: the datagram was longer than capacity; the rest is lost */
} rs_datagram_t;

/* Longest batch passed to the kernel in one call (sendmmsg/recvmmsg). */
#define RS_DATAGRAM_BATCH_MAX 64

/* Send one datagram now, without queueing: RS_OK once the kernel has it,
 * RS_EAGAIN when its buffer is full (retry on a later tick), RS_EMSGSIZE, ...
 * RS_EINVAL for a NULL or STREAM socket or a destination of another domain;
 * RS_EBADF once closed; RS_EWRONGTHREAD off its loop's thread. `destination`
 * may be NULL on a connected socket (else RS_ENOTCONN). The first destination
 * gives a default-domain socket its family. Loop thread once assigned. */
RESEAU_API int rs_socket_send_to(rs_socket_t *socket, const rs_endpoint_t *destination, rs_byte_cursor_t data);
/* Send up to `count` datagrams with as few system calls as possible
 * (sendmmsg on Linux, one sendmsg each elsewhere, with the same results).
 * *sent_out says how many left; on an error after some were sent, RS_OK is
 * returned with the partial count. Errors as for rs_socket_send_to, and
 * RS_EINVAL for NULL datagrams or sent_out. */
RESEAU_API int rs_socket_send_batch(rs_socket_t *socket, const rs_datagram_t *datagrams, size_t count,
                                    size_t *sent_out);
/* Receive one datagram into datagram->data (capacity bytes), with its source.
 * RS_EAGAIN when none is waiting. (On an io_uring loop, a UDP socket with a
 * reader receives through the ring: a datagram the kernel has just taken is
 * read after the loop's next tick, when the readable callback says so.) RS_EINVAL for a NULL or STREAM socket, a NULL
 * datagram or one without a buffer; RS_EWRONGTHREAD off its loop's thread;
 * RS_ESTATE before a default-domain socket has its family; RS_EBADF once
 * closed. */
RESEAU_API int rs_socket_recv_from(rs_socket_t *socket, rs_datagram_t *datagram);
/* Receive up to `count` datagrams, at most RS_DATAGRAM_BATCH_MAX (recvmmsg on
 * Linux, one recvmsg each elsewhere, with the same results); *received_out
 * counts them. Errors as for rs_socket_recv_from (after some were received,
 * RS_OK with the partial count), and RS_EINVAL for NULL datagrams or
 * received_out, a count of 0, or a datagram among the first
 * RS_DATAGRAM_BATCH_MAX without a buffer (then none is received). */
RESEAU_API int rs_socket_recv_batch(rs_socket_t *socket, rs_datagram_t *datagrams, size_t count,
                                    size_t *received_out);

/* ---- Options on a live socket ----
 * Each takes effect at once, on a socket that is open (bound, connected,
 * listening or not). Common errors, checked in this order: RS_EINVAL for a
 * NULL socket; RS_EWRONGTHREAD off the thread of the loop it is tied to;
 * RS_EINVAL for the wrong socket type or domain, or a bad value; RS_ESTATE
 * while a socket left at the default domain has no OS socket yet (before its
 * first bind, connect or send_to); RS_EBADF once closed; else the OS error
 * from setsockopt. */

/* TCP_NODELAY on a TCP socket (a listener passes it to sockets it accepts). */
RESEAU_API int rs_socket_set_tcp_nodelay(rs_socket_t *socket, bool enabled);
/* SO_KEEPALIVE on a TCP socket, with TCP_KEEPIDLE (macOS: TCP_KEEPALIVE),
 * TCP_KEEPINTVL and TCP_KEEPCNT where non-zero (0 keeps the current value).
 * The OS bounds them (Linux: idle and interval 1..32767 s, probes 1..127):
 * RS_EINVAL outside. RS_ENOTSUP for a non-zero value where the OS has no such
 * per-socket option (OpenBSD: none of the three); nothing is changed then. */
RESEAU_API int rs_socket_set_keepalive(rs_socket_t *socket, bool enabled, uint32_t idle_s, uint32_t interval_s,
                                       uint32_t probes);
/* Unicast TTL (IPv4 IP_TTL) or hop limit (IPv6 IPV6_UNICAST_HOPS), 1..255,
 * on any IPv4 or IPv6 socket. */
RESEAU_API int rs_socket_set_ttl(rs_socket_t *socket, uint32_t ttl);

/* UDP only (DGRAM, IPv4 or IPv6); the group's domain must match the socket's.
 * Join or leave a multicast group (224.0.0.0/4, ff00::/8; the port is
 * ignored) on one interface: IPv4 by its address (interface_address, IPv4,
 * or NULL) or, on Linux, its index (RS_ENOTSUP elsewhere); IPv6 by index only
 * (interface_address must be NULL). Neither (NULL and 0) lets the OS pick by
 * its routes. Joining sends an IGMP/MLD report on that interface. Leaving a
 * group not joined is the OS error (RS_EADDRNOTAVAIL). On Windows these
 * multicast setters and rs_socket_set_broadcast are not ported yet: after
 * the common checks above they return RS_ENOTSUP. */
RESEAU_API int rs_socket_join_multicast_group(rs_socket_t *socket, const rs_endpoint_t *group,
                                              const rs_endpoint_t *interface_address, uint32_t interface_index);
RESEAU_API int rs_socket_leave_multicast_group(rs_socket_t *socket, const rs_endpoint_t *group,
                                               const rs_endpoint_t *interface_address, uint32_t interface_index);
/* The interface multicast datagrams leave by (IP_MULTICAST_IF,
 * IPV6_MULTICAST_IF), named as for join. */
RESEAU_API int rs_socket_set_multicast_interface(rs_socket_t *socket, const rs_endpoint_t *interface_address,
                                                 uint32_t interface_index);
/* Whether this host's own group members get the datagrams this socket sends
 * (IP_MULTICAST_LOOP, IPV6_MULTICAST_LOOP; the OS default is on). */
RESEAU_API int rs_socket_set_multicast_loop(rs_socket_t *socket, bool enabled);
/* TTL / hop limit of multicast datagrams, 0..255 (the OS default is 1: this
 * link only). */
RESEAU_API int rs_socket_set_multicast_ttl(rs_socket_t *socket, uint32_t ttl);
/* SO_BROADCAST on an IPv4 UDP socket: without it, sending to a broadcast
 * address fails with RS_EACCES. */
RESEAU_API int rs_socket_set_broadcast(rs_socket_t *socket, bool enabled);
