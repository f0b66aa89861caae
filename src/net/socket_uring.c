/*
 * Sockets on io_uring: the completion-based strategy (ARCHITECTURE.md §4a),
 * chosen when a socket is tied to a loop whose ring runs operations
 * (rs__uring_loop_has_ops): a listener accepts with one multishot accept, a
 * connect is one connect op with a linked timeout, and a connected socket
 * receives and sends as below. UDP sockets receive through the ring too
 * (see "Datagrams" below). Unix-domain sockets, streams and datagrams alike,
 * pipe ends (>>pipe.c) among them, stay readiness-based (socket_posix.c, on
 * the ring's one-shot polls): a Unix datagram can be longer than any buffer
 * of the ring, and a multishot recv on a Unix stream can miss the peer's end
 * of stream (see rs__sock_uring_attach).
 *
 * Receiving is one multishot recv into the loop's provided-buffer ring, so a
 * busy connection costs no system call per read: the chunks queue on the
 * socket and rs_socket_read copies them out, giving each buffer back once
 * read. The readable callback then keeps the level-triggered contract of the
 * readiness path through a task: while data or the end of the stream waits
 * and the reader reads, it is called again each tick. Buffers are few and
 * shared (256 per loop), so a socket stops receiving while it holds
 * RS__URING_RX_MAX of them or is paused, and a recv the ring ran dry for
 * (-ENOBUFS) starts again when a buffer comes back: no byte is lost either way.
 *
 * Writing is one SENDMSG at a time over the queued writes, in order; each
 * write completes once, through the completion task, as on the readiness
 * path. Close cancels both operations synchronously (the kernel is done with
 * the iovecs and the caller's bytes when rs_socket_close returns), and the
 * queued writes complete RS_ECANCELED.
 *
 * Datagrams: a UDP socket with a reader receives through one multishot
 * RECVMSG into the loop's datagram buffers (io_uring.c), each large enough for
 * any UDP datagram, so that the ring never cuts one that the caller's buffer
 * would have taken whole: truncation is decided when rs_socket_recv_from or
 * _recv_batch copies a datagram out, against the caller's capacity, as
 * recvmsg decides it (MSG_TRUNC is asked for, so the header gives the whole
 * length). The queue, the cap (RS__URING_DGRAM_RX_MAX), pause, the -ENOBUFS
 * restart and the reclaim of held buffers work as for streams; a socket error
 * (ICMP: RS_ECONNREFUSED, ...) ends the op, reaches the reader once the
 * datagrams before it are read (as the readiness path hands it SO_ERROR), and
 * receiving starts again. With no op running and nothing queued (no reader,
 * or paused), the receive calls read the fd directly, as on the readiness
 * path: nothing can then come before what the fd holds.
 *
 * Datagram sends stay direct sendmsg/sendmmsg calls (udp_posix.c), on every
 * backend. rs_socket_send_to and _send_batch are synchronous: RS_OK means the
 * kernel has the datagram, and RS_EAGAIN, RS_EMSGSIZE, ... come back from the
 * call, with an exact count for a batch. A SENDMSG op cannot say any of that
 * before the loop's next io_uring_enter, so keeping the contract would mean
 * submitting and waiting for the completion inside the call: one
 * io_uring_enter instead of one sendmmsg, for the same work plus the ring's.
 * Measured on an io_uring loop, 8-datagram bursts of 64 bytes over loopback,
 * each followed by the loop's tick: direct sendmmsg 79-83 k bursts/s, SENDMSG
 * ops waited for in the call 70-75 k, and even SENDMSG ops left for the
 * tick's io_uring_enter (which breaks the contract, and must copy the
 * datagrams since the caller may reuse its bytes) 78-81 k. The direct calls
 * are the fastest, so they stay.
 *
 * A listener's accept op runs while it accepts. Stopping cancels it, but a
 * connection the kernel accepted before the cancel still arrives: it waits,
 * as an fd, until accepting starts again, as it would have waited in the
 * kernel's queue on the readiness path. Closing the listener closes those,
 * and the kernel closes any it accepted after the cancel, as for its queue.
 */
#if RESEAU_OS_POSIX /* Windows: >>net_win.c */
#if RESEAU_OS_LINUX

/* Writes gathered into one SENDMSG. */
#define RS__URING_SEND_IOV_MAX 16
/* Received chunks a socket may hold before it stops receiving. */
#define RS__URING_RX_MAX 16
/* Datagrams a socket may hold before it stops receiving: a quarter of the
 * loop's datagram buffers, so that a few readers that do not read leave room
 * for the rest (and the reclaim task moves what they hold out of the ring). */
#define RS__URING_DGRAM_RX_MAX 32
/* Where a datagram's payload starts in its buffer: after the recvmsg header
 * and the room given to the source address. */
#define RS__URING_DGRAM_NAME_ROOM sizeof(struct sockaddr_storage)
#define RS__URING_DGRAM_HEAD (sizeof(rs__uring_recvmsg_out_t) + RS__URING_DGRAM_NAME_ROOM)
RS__STATIC_ASSERT(RS__URING_DGRAM_BUF_SIZE - RS__URING_DGRAM_HEAD >= 65535, uring_dgram_buffer_holds_any_udp_datagram);

struct rs__socket_uring {
    rs_socket_t *socket;
    rs__uring_op_t recv; /* a listener's accept */
    rs__uring_op_t send; /* the connect, until connected */
    rs__uring_rxq_t rxq;
    int rx_end; /* RS_EEOF or the error that ended receiving, reported once rxq is read */
    /* A datagram socket's: the error that ended its recv (ICMP: RS_ECONNREFUSED,
     * ...), reported once the datagrams before it are read; receiving then
     * starts again, as the error is not the socket's end. */
    int dgram_error;
    struct msghdr recv_msg;  /* a datagram socket's recvmsg: room for the source, no iovec */
    rs__sockaddr_t recv_name; /* recv_msg's msg_name: the kernel wants one, and writes to the buffer instead */
    rs_task_t readable_task; /* a listener's: hands out the connections that waited */
    bool connecting;    /* the connect op runs */
    bool connect_timed; /* the connect has a linked timeout: -ECANCELED means it fired */
    bool polled;        /* read without a subscription: receive anyway, as the kernel queues for such a
                         * reader on the readiness path */
    union {
        struct { /* connected */
            struct msghdr msg;
            struct iovec iov[RS__URING_SEND_IOV_MAX];
        } io;
        struct { /* connecting: what the kernel reads when it takes the SQEs */
            rs__sockaddr_t addr;
            rs__uring_timespec_t timeout;
        } connect;
        struct { /* a listener: connections accepted while it did not accept */
            int *fds;
            size_t count;
            size_t capacity;
        } waiting;
    } u;
};

static void rs__sock_uring_recv_done(rs_event_loop_t *loop, rs__uring_op_t *op, int res, uint32_t cqe_flags);
static void rs__sock_uring_send_done(rs_event_loop_t *loop, rs__uring_op_t *op, int res, uint32_t cqe_flags);
static void rs__sock_uring_readable_task(rs_task_t *task, void *arg, rs_task_status_t status);
static void rs__sock_uring_accept_done(rs_event_loop_t *loop, rs__uring_op_t *op, int res, uint32_t cqe_flags);
static void rs__sock_uring_connect_done(rs_event_loop_t *loop, rs__uring_op_t *op, int res, uint32_t cqe_flags);
static void rs__sock_uring_waiting_task(rs_task_t *task, void *arg, rs_task_status_t status);

static bool rs__sock_uring_is_dgram(const rs_socket_t *s) {
    return s->options.type == RS_SOCKET_DGRAM;
}

/* A datagram socket receives through the ring if it is UDP (a Unix datagram
 * can be longer than any buffer of the ring: those stay readiness-based), has
 * its OS socket, and its loop has datagram buffers. */
static bool rs__sock_uring_dgram_fits(rs_socket_t *s) {
    return (s->options.domain == RS_SOCKET_DOMAIN_IPV4 || s->options.domain == RS_SOCKET_DOMAIN_IPV6) &&
           s->io.fd >= 0 && rs__uring_loop_has_dgram_ops(s->loop);
}

/* The strategy's state, made on first use; NULL (out of memory, a loop
 * without ops, a Unix-domain socket) keeps the socket readiness-based, which
 * is always correct.
 * Unix-domain streams (pipe ends too) are left to readiness because the
 * kernel's multishot recv on AF_UNIX can miss the peer's end of stream: no
 * final completion when the close races the recv's re-arm (seen here on 6.18
 * about once in 7 runs of a 35,000-byte pipe transfer under load; liburing
 * issue 1549). A recv op per chunk avoids that, but costs a trip through the
 * ring per 4 KiB buffer: reseau-bench-socket pipe_pump_io_uring measured
 * 0.12-0.14x libuv that way, against 1.12-1.13x on readiness (as on epoll;
 * the multishot recv did about half of that); round trips of 64 bytes were
 * no slower on readiness (407-435 k/s against 400-421 k/s). */
static rs__socket_uring_t *rs__sock_uring_attach(rs_socket_t *s) {
    rs__socket_uring_t *x;
    if (s->uring) {
        return s->uring;
    }
    if (s->options.domain == RS_SOCKET_DOMAIN_LOCAL) {
        return NULL;
    }
    if (rs__sock_uring_is_dgram(s) ? !rs__sock_uring_dgram_fits(s) : !rs__uring_loop_has_ops(s->loop)) {
        return NULL;
    }
    x = (rs__socket_uring_t *)rs_mem_calloc(&s->allocator, 1, sizeof(*x));
    if (!x) {
        RS__LOG_WARN(RS_LS_SOCKET, "socket %p: no memory for completion-based I/O; using readiness", (void *)s);
        return NULL;
    }
    x->socket = s;
    x->recv.fn = rs__sock_uring_recv_done;
    x->recv.fd = s->io.fd;
    x->send.fn = rs__sock_uring_send_done;
    x->send.fd = s->io.fd;
    if (rs__sock_uring_is_dgram(s)) {
        x->rxq.group = RS__URING_GROUP_DGRAM;
        x->recv_msg.msg_name = &x->recv_name;
        x->recv_msg.msg_namelen = (socklen_t)RS__URING_DGRAM_NAME_ROOM;
    }
    rs_task_init(&x->readable_task, rs__sock_uring_readable_task, s, "socket_uring_readable");
    s->uring = x;
    return x;
}

static bool rs__sock_uring_has_reader(const rs_socket_t *s) {
    return s->on_readable || s->on_pipe_readable;
}

static bool rs__sock_uring_wants_recv(const rs_socket_t *s) {
    const rs__socket_uring_t *x = s->uring;
    size_t cap = rs__sock_uring_is_dgram(s) ? RS__URING_DGRAM_RX_MAX : RS__URING_RX_MAX;
    bool reader = rs__sock_uring_has_reader(s) ? s->reading : x->polled;
    return rs__socket_can_read(s) && reader && !s->read_done && !x->rx_end && !x->dgram_error &&
           rs__uring_rxq_units(&x->rxq) < cap;
}

/* Whether the reader has something to hear about: data, or the stream's end,
 * or a datagram socket's error. */
static bool rs__sock_uring_has_news(const rs_socket_t *s) {
    const rs__socket_uring_t *x = s->uring;
    return rs__socket_can_read(s) && rs__sock_uring_has_reader(s) && s->reading && !s->read_done &&
           (!rs__uring_rxq_is_empty(&x->rxq) || x->rx_end || x->dgram_error);
}

static void rs__sock_uring_schedule_readable(rs_socket_t *s) {
    if (rs__sock_uring_has_news(s) && !rs_task_is_scheduled(&s->uring->readable_task)) {
        rs_event_loop_schedule_task_now(s->loop, &s->uring->readable_task);
    }
}

/* Start or stop receiving, to match what the socket wants now. A recv being
 * canceled is started again from its last completion, if still wanted. */
static void rs__sock_uring_update_recv(rs_socket_t *s) {
    rs__socket_uring_t *x = s->uring;
    bool want;
    if (!x) {
        return;
    }
    want = rs__sock_uring_wants_recv(s);
    if (want && !x->recv.slot && !x->recv.starved) {
        int err = rs__sock_uring_is_dgram(s) ? rs__uring_op_recvmsg(s->loop, &x->recv, &x->recv_msg)
                                             : rs__uring_op_recv(s->loop, &x->recv);
        if (err) {
            /* No slot (out of memory) or no room in the queue: nothing would
             * ever be received, so the reader hears it. A stream ends there;
             * a datagram socket tries again once its reader has heard. */
            RS__LOG_ERROR(RS_LS_SOCKET, "socket %p: cannot start receiving: %s", (void *)s, rs_strerror(err));
            if (rs__sock_uring_is_dgram(s)) {
                x->dgram_error = err;
            } else {
                x->rx_end = err;
            }
            rs__sock_uring_schedule_readable(s);
        }
    } else if (!want && (x->recv.slot || x->recv.starved)) {
        rs__uring_op_cancel(s->loop, &x->recv);
    }
    rs__sock_uring_schedule_readable(s); /* a reader resumed, or new, hears of what waits */
}

/* The socket is connected (or, for datagrams, has its OS socket) on a loop
 * that runs operations: from now on it receives (and a stream socket sends)
 * through the ring. Staying readiness-based (out of memory) is always
 * correct, only slower. */
static void rs__sock_uring_enter(rs_socket_t *s) {
    if (!s->loop || s->io.fd < 0 || !rs__socket_can_read(s) || !rs__sock_uring_attach(s)) {
        return;
    }
    rs__socket_update_interest(s); /* parks a poll left from connecting */
    rs__sock_uring_update_recv(s);
    if (!rs_list_empty(&s->write_queue)) {
        rs__socket_flush(s);
    }
}

static void rs__sock_uring_recv_done(rs_event_loop_t *loop, rs__uring_op_t *op, int res, uint32_t cqe_flags) {
    rs__socket_uring_t *x = RS_CONTAINER_OF(op, rs__socket_uring_t, recv);
    rs_socket_t *s = x->socket;
    if (cqe_flags & RS__IORING_CQE_F_BUFFER) {
        /* res > 0: a chunk, or a datagram (its header, source and payload);
         * the kernel attaches no buffer to an end or an error */
        rs__uring_rxq_push(loop, &x->rxq, cqe_flags >> RS__IORING_CQE_BUFFER_SHIFT, (uint32_t)res);
    } else if (res == 0 && !rs__sock_uring_is_dgram(s)) {
        x->rx_end = RS_EEOF;
    } else if (res == -ENOBUFS) {
        if (rs__sock_uring_wants_recv(s)) {
            rs__uring_op_wait_for_buffers(loop, op);
        }
    } else if (res < 0 && res != -ECANCELED && rs__sock_uring_is_dgram(s)) {
        x->dgram_error = rs_result_from_errno(-res);
    } else if (res < 0 && res != -ECANCELED) {
        x->rx_end = rs_result_from_errno(-res);
    }
    if (!(cqe_flags & RS__IORING_CQE_F_MORE) || !rs__sock_uring_wants_recv(s)) {
        rs__sock_uring_update_recv(s);
    }
    rs__sock_uring_schedule_readable(s);
}

/* Called again each tick while data waits and the reader reads: the
 * level-triggered contract of the readiness path. */
static void rs__sock_uring_readable_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_socket_t *s = (rs_socket_t *)arg;
    (void)task;
    rs__socket_uring_t *x = s->uring;
    if (status != RS_TASK_STATUS_RUN || !rs__sock_uring_has_news(s)) {
        return;
    }
    s->callback_depth++;
    if (x->dgram_error && rs__uring_rxq_is_empty(&x->rxq) && s->on_readable) {
        /* As the readiness path reports a socket error (it reads SO_ERROR),
         * once; receiving starts again. */
        int error = x->dgram_error;
        x->dgram_error = RS_OK;
        rs__sock_uring_update_recv(s);
        s->on_readable(s, error, s->readable_user_data);
    } else {
        rs__socket_notify_readable(s, 0); /* RS_OK: an error comes from the read, after the data */
    }
    s->callback_depth--;
    if (rs__socket_can_read(s)) {
        rs__sock_uring_schedule_readable(s);
    }
    rs__socket_maybe_free(s);
}

/* ---- datagrams ---- */

/* Whether a datagram socket's receive calls go to the fd itself, as on the
 * readiness path: nothing is queued and no recv op runs (no reader, or
 * paused), so the fd's queue is next in line. */
static bool rs__sock_uring_reads_fd(const rs_socket_t *s) {
    const rs__socket_uring_t *x = s->uring;
    return !x || (rs__sock_uring_is_dgram(s) && !x->recv.slot && !x->dgram_error && rs__uring_rxq_is_empty(&x->rxq));
}

/* One queued datagram as its buffer holds it: the header, the source and
 * what the buffer kept of the payload. */
typedef struct rs__sock_uring_dgram {
    const unsigned char *payload;
    size_t len;      /* in the buffer */
    size_t full_len; /* the datagram's */
    rs__sockaddr_t name;
    socklen_t name_len;
} rs__sock_uring_dgram_t;

static bool rs__sock_uring_front_dgram(rs_socket_t *s, rs__sock_uring_dgram_t *g) {
    const unsigned char *p;
    size_t len;
    rs__uring_recvmsg_out_t out;
    if (!rs__uring_rxq_front(s->loop, &s->uring->rxq, &p, &len)) {
        return false;
    }
    memcpy(&out, p, sizeof(out)); /* a spilled record may be unaligned */
    memset(&g->name, 0, sizeof(g->name));
    g->name_len = (socklen_t)(out.namelen < RS__URING_DGRAM_NAME_ROOM ? out.namelen : RS__URING_DGRAM_NAME_ROOM);
    memcpy(&g->name, p + sizeof(out), (size_t)g->name_len);
    g->payload = p + RS__URING_DGRAM_HEAD;
    g->len = len > RS__URING_DGRAM_HEAD ? len - RS__URING_DGRAM_HEAD : 0;
    g->full_len = out.payloadlen > g->len ? out.payloadlen : g->len;
    return true;
}

/* Copy the front datagram into `d` (its capacity, with the source and the
 * truncation flag, as recvmsg fills them) and give its buffer back. */
static bool rs__sock_uring_take_dgram(rs_socket_t *s, rs_datagram_t *d) {
    rs__sock_uring_dgram_t g;
    size_t n;
    if (!rs__sock_uring_front_dgram(s, &g)) {
        return false;
    }
    n = g.len < d->capacity ? g.len : d->capacity;
    memcpy(d->data, g.payload, n);
    d->len = n;
    d->truncated = g.full_len > n;
    if (rs__endpoint_from_sockaddr(&d->endpoint, &g.name, g.name_len) != RS_OK) {
        memset(&d->endpoint, 0, sizeof(d->endpoint));
    }
    rs__uring_rxq_pop_front(s->loop, &s->uring->rxq);
    return true;
}

/* rs_socket_recv_from and _recv_batch: up to `count` queued datagrams, in
 * order, or the error that ended the recv once none is left before it.
 * false when the caller receives from the fd itself (rs__sock_uring_reads_fd). */
static bool rs__sock_uring_recv_dgrams(rs_socket_t *s, rs_datagram_t *d, size_t count, size_t *received,
                                       int *result) {
    rs__socket_uring_t *x = s->uring;
    size_t n = 0;
    if (rs__sock_uring_reads_fd(s)) {
        return false;
    }
    while (n < count && rs__sock_uring_take_dgram(s, &d[n])) {
        ++n;
    }
    *received = n;
    *result = n ? RS_OK : RS_EAGAIN;
    if (!n && x->dgram_error) {
        *result = x->dgram_error;
        x->dgram_error = RS_OK;
    }
    rs__sock_uring_update_recv(s); /* below the cap again, or past the error */
    return true;
}

/* rs_socket_readv on a datagram socket: one datagram, cut to the buffers. */
static int rs__sock_uring_readv_dgram(rs_socket_t *s, rs_byte_buf_t *bufs, size_t count, size_t *amount_read) {
    rs__socket_uring_t *x = s->uring;
    rs__sock_uring_dgram_t g;
    size_t done = 0;
    size_t i;
    int err;
    if (!rs__sock_uring_front_dgram(s, &g)) {
        err = x->dgram_error ? x->dgram_error : RS_EAGAIN;
        x->dgram_error = RS_OK;
        rs__sock_uring_update_recv(s);
        return err;
    }
    for (i = 0; i < count && done < g.len; ++i) {
        size_t room = bufs[i].capacity - bufs[i].len;
        size_t take = g.len - done < room ? g.len - done : room;
        memcpy(bufs[i].buffer + bufs[i].len, g.payload + done, take);
        bufs[i].len += take;
        done += take;
    }
    rs__uring_rxq_pop_front(s->loop, &x->rxq);
    if (amount_read) {
        *amount_read = done;
    }
    rs__sock_uring_update_recv(s);
    return RS_OK;
}

/* ---- streams ---- */

/* rs_socket_readv on a completion-based socket: out of the queued chunks. */
static int rs__sock_uring_readv(rs_socket_t *s, rs_byte_buf_t *bufs, size_t count, size_t *amount_read) {
    rs__socket_uring_t *x = s->uring;
    size_t total = 0;
    size_t i;
    if (rs__sock_uring_is_dgram(s)) {
        return rs__sock_uring_readv_dgram(s, bufs, count, amount_read);
    }
    for (i = 0; i < count && !rs__uring_rxq_is_empty(&x->rxq); ++i) {
        size_t room = bufs[i].capacity - bufs[i].len;
        size_t n = rs__uring_rxq_copy(s->loop, &x->rxq, bufs[i].buffer + bufs[i].len, room);
        bufs[i].len += n;
        total += n;
    }
    if (total > 0) {
        if (amount_read) {
            *amount_read = total;
        }
        rs__sock_uring_update_recv(s); /* below the cap again */
        return RS_OK;
    }
    if (x->rx_end) {
        rs__socket_read_finished(s);
        return x->rx_end;
    }
    x->polled = true;
    rs__sock_uring_update_recv(s);
    return RS_EAGAIN;
}

/* Send what is queued, one SENDMSG at a time. */
static void rs__sock_uring_flush(rs_socket_t *s) {
    rs__socket_uring_t *x = s->uring;
    if (!x->send.slot && !rs_list_empty(&s->write_queue) && s->state == RS__SOCK_CONNECTED) {
        rs_list_node_t *node;
        size_t n = 0;
        int err;
        for (node = rs_list_begin(&s->write_queue); node != rs_list_end(&s->write_queue) && n < RS__URING_SEND_IOV_MAX;
             node = node->next) {
            rs__write_req_t *req = RS_CONTAINER_OF(node, rs__write_req_t, node);
            x->u.io.iov[n].iov_base = (void *)(uintptr_t)req->remaining.ptr;
            x->u.io.iov[n].iov_len = req->remaining.len;
            ++n;
        }
        memset(&x->u.io.msg, 0, sizeof(x->u.io.msg));
        x->u.io.msg.msg_iov = x->u.io.iov;
        x->u.io.msg.msg_iovlen = n;
        err = rs__uring_op_sendmsg(s->loop, &x->send, &x->u.io.msg);
        if (err) {
            s->write_error = err;
            RS__LOG_ERROR(RS_LS_SOCKET, "socket %p: cannot queue a send: %s", (void *)s, rs_strerror(err));
            rs__socket_fail_writes(s, err);
        }
    }
    if (rs_list_empty(&s->write_queue) && s->shut_write_pending) {
        rs__socket_shutdown_write_now(s);
    }
    rs__socket_schedule_completions(s);
}

static void rs__sock_uring_send_done(rs_event_loop_t *loop, rs__uring_op_t *op, int res, uint32_t cqe_flags) {
    rs__socket_uring_t *x = RS_CONTAINER_OF(op, rs__socket_uring_t, send);
    rs_socket_t *s = x->socket;
    (void)loop;
    (void)cqe_flags;
    if (res >= 0) {
        rs__socket_credit_written(s, (size_t)res);
    } else if (res == -EAGAIN) {
        /* The kernel gives up after one wait for room when the fd is
         * non-blocking (a Unix socket's peer queue can stay full past the
         * wakeup); nothing was sent: send again. */
    } else {
        s->write_error = rs_result_from_errno(-res);
        RS__LOG_DEBUG(RS_LS_SOCKET, "socket %p: write failed: %s", (void *)s, rs_strerror(s->write_error));
        rs__socket_fail_writes(s, s->write_error);
    }
    rs__sock_uring_flush(s);
}

/* ---- connecting ---- */

static bool rs__sock_uring_is_connecting(const rs_socket_t *s) {
    return s->uring && s->uring->connecting;
}

/* rs_socket_connect on a loop with ops: RS_OK once the connect op is queued
 * (the socket is then CONNECTING, and its timeout is the linked one);
 * RS_ENOTSUP to connect by readiness instead; RS_ENOMEM, or RS_EAGAIN when
 * the kernel takes nothing from a full submission queue. */
static int rs__sock_uring_connect(rs_socket_t *s, const rs__sockaddr_t *addr, socklen_t len) {
    rs__socket_uring_t *x = rs__sock_uring_is_dgram(s) ? NULL : rs__sock_uring_attach(s); /* UDP connects at once */
    const rs__uring_timespec_t *timeout = NULL;
    int err;
    if (!x) {
        return RS_ENOTSUP;
    }
    memcpy(&x->u.connect.addr, addr, (size_t)len);
    x->connect_timed = !s->no_connect_timer;
    if (x->connect_timed) {
        x->u.connect.timeout.tv_sec = (long long)(s->options.connect_timeout_ms / 1000);
        x->u.connect.timeout.tv_nsec = (long long)(s->options.connect_timeout_ms % 1000) * 1000000LL;
        timeout = &x->u.connect.timeout;
    }
    x->send.fn = rs__sock_uring_connect_done;
    err = rs__uring_op_connect(s->loop, &x->send, &x->u.connect.addr, (uint32_t)len, timeout);
    if (err) {
        x->send.fn = rs__sock_uring_send_done;
        return err;
    }
    x->connecting = true;
    s->state = RS__SOCK_CONNECTING;
    return RS_OK;
}

static void rs__sock_uring_connect_done(rs_event_loop_t *loop, rs__uring_op_t *op, int res, uint32_t cqe_flags) {
    rs__socket_uring_t *x = RS_CONTAINER_OF(op, rs__socket_uring_t, send);
    rs_socket_t *s = x->socket;
    (void)loop;
    (void)cqe_flags;
    x->send.fn = rs__sock_uring_send_done; /* the kernel is done with u.connect: u.io from now on */
    x->connecting = false;
    s->callback_depth++;
    if (res == 0) {
        s->state = RS__SOCK_CONNECTED;
        s->has_remote = true; /* s->remote was kept from rs_socket_connect */
        rs__sock_uring_enter(s);
        rs__socket_deliver_connect(s, RS_OK);
    } else {
        int err = res == -ECANCELED && x->connect_timed ? RS_ETIMEDOUT : rs_result_from_errno(-res);
        RS__LOG_DEBUG(RS_LS_SOCKET, "socket %p: connect failed: %s", (void *)s, rs_strerror(err));
        rs__socket_close_internal(s, true);
        rs__socket_deliver_connect(s, err);
    }
    s->callback_depth--;
    rs__socket_maybe_free(s);
}

/* ---- a listener ---- */

/* rs_socket_start_accept: a listener on a loop with ops accepts through it. */
static void rs__sock_uring_listen(rs_socket_t *l) {
    rs__socket_uring_t *x = l->uring ? l->uring : rs__sock_uring_attach(l);
    if (x && x->recv.fn != rs__sock_uring_accept_done) { /* once: its task may be queued when it accepts again */
        x->recv.fn = rs__sock_uring_accept_done;
        rs_task_init(&x->readable_task, rs__sock_uring_waiting_task, l, "socket_uring_accept_waiting");
    }
}

/* Run the accept op while the listener accepts, and hand out the
 * connections that waited: rs__socket_update_interest of a listener with
 * ops. A canceled op still running is started again by its last completion.
 * RS_OK, RS_ENOMEM, or RS_EAGAIN (full submission queue). */
static int rs__sock_uring_update_accept(rs_socket_t *l) {
    rs__socket_uring_t *x = l->uring;
    if (l->state == RS__SOCK_LISTENING && l->accepting && !l->accept_backoff) {
        if (x->u.waiting.count && !rs_task_is_scheduled(&x->readable_task)) {
            rs_event_loop_schedule_task_now(l->loop, &x->readable_task);
        }
        return x->recv.slot ? RS_OK : rs__uring_op_accept(l->loop, &x->recv);
    }
    rs__uring_op_cancel(l->loop, &x->recv);
    return RS_OK;
}

/* An accepted fd becomes a socket for on_accept (the peer's address comes
 * from getpeername: a multishot accept has nowhere to put each one). */
static void rs__sock_uring_hand_out(rs_socket_t *l, int fd) {
    rs__sockaddr_t sa;
    socklen_t len = (socklen_t)sizeof(sa);
    rs_socket_t *s;
    int err;
    memset(&sa, 0, sizeof(sa));
    if (getpeername(fd, &sa.sa, &len) != 0) {
        len = 0; /* reset already: the socket has no remote endpoint, and its first read says why */
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

/* A connection accepted after rs_socket_stop_accept waits for the next
 * start. Out of memory it is closed: the peer sees a reset, the log says so. */
static void rs__sock_uring_keep_waiting(rs_socket_t *l, int fd) {
    rs__socket_uring_t *x = l->uring;
    if (x->u.waiting.count == x->u.waiting.capacity) {
        size_t capacity = x->u.waiting.capacity ? x->u.waiting.capacity * 2 : 8;
        int *fds = (int *)rs_mem_realloc(&l->allocator, x->u.waiting.fds, x->u.waiting.capacity * sizeof(int),
                                         capacity * sizeof(int));
        if (!fds) {
            RS__LOG_ERROR(RS_LS_SOCKET, "listener %p: no memory to keep a connection accepted while stopped; closed",
                          (void *)l);
            close(fd);
            return;
        }
        x->u.waiting.fds = fds;
        x->u.waiting.capacity = capacity;
    }
    x->u.waiting.fds[x->u.waiting.count++] = fd;
}

static void rs__sock_uring_accept_failed(rs_socket_t *l, int os_error) {
    if (rs__accept_error_is_transient(os_error)) {
        return;
    }
    if (rs__accept_error_is_exhaustion(os_error)) {
        rs__socket_accept_backoff(l, rs_result_from_errno(os_error));
        return;
    }
    RS__LOG_ERROR(RS_LS_SOCKET, "accept failed: %s (errno %d)", strerror(os_error), os_error);
    rs__socket_deliver_accept(l, rs_result_from_errno(os_error), NULL);
}

static void rs__sock_uring_accept_done(rs_event_loop_t *loop, rs__uring_op_t *op, int res, uint32_t cqe_flags) {
    rs__socket_uring_t *x = RS_CONTAINER_OF(op, rs__socket_uring_t, recv);
    rs_socket_t *l = x->socket;
    (void)loop;
    l->callback_depth++;
    if (res >= 0 && l->accepting) {
        rs__sock_uring_hand_out(l, res);
    } else if (res >= 0) {
        rs__sock_uring_keep_waiting(l, res);
    } else if (res != -ECANCELED) {
        rs__sock_uring_accept_failed(l, -res);
    }
    if (!(cqe_flags & RS__IORING_CQE_F_MORE) && l->state == RS__SOCK_LISTENING && !x->recv.slot) {
        int err = rs__sock_uring_update_accept(l);
        if (err) {
            rs__socket_accept_backoff(l, err); /* cannot queue the accept now: later */
        }
    }
    l->callback_depth--;
    rs__socket_maybe_free(l);
}

/* The connections that waited while the listener did not accept, in order. */
static void rs__sock_uring_waiting_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_socket_t *l = (rs_socket_t *)arg;
    rs__socket_uring_t *x = l->uring;
    (void)task;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    l->callback_depth++;
    while (x->u.waiting.count && l->state == RS__SOCK_LISTENING && l->accepting) {
        int fd = x->u.waiting.fds[0];
        --x->u.waiting.count;
        memmove(x->u.waiting.fds, x->u.waiting.fds + 1, x->u.waiting.count * sizeof(int));
        rs__sock_uring_hand_out(l, fd);
    }
    l->callback_depth--;
    rs__socket_maybe_free(l);
}

/* ---- closing ---- */

/* At close, what is still queued goes to the kernel if it has room now, as
 * the readiness path would have sent it when it was written; the caller
 * cancels the rest. */
static void rs__sock_uring_send_rest_now(rs_socket_t *s) {
    while (s->state == RS__SOCK_CONNECTED && !s->write_error && !rs_list_empty(&s->write_queue)) {
        ssize_t n = rs__socket_send_queued(s);
        if (n < 0) {
            return;
        }
        rs__socket_credit_written(s, (size_t)n);
        if (n == 0) {
            return;
        }
    }
}

/* Before the fd is closed: end the operations (synchronously), give the
 * unread chunks back, and close the connections a listener kept. The queued
 * writes are failed by the caller. */
static void rs__sock_uring_close(rs_socket_t *s) {
    rs__socket_uring_t *x = s->uring;
    if (!x || !s->loop) {
        return;
    }
    int32_t sent = 0;
    rs__uring_op_abandon(s->loop, &x->recv);
    /* A send that already ran (the submission before the cancel runs a queued
     * one) put its bytes in the kernel: those writes report them. */
    if (rs__uring_op_abandon_with_result(s->loop, &x->send, &sent) && sent > 0 && !x->connecting) {
        rs__socket_credit_written(s, (size_t)sent);
    }
    rs__sock_uring_send_rest_now(s);
    x->connecting = false;
    rs__uring_rxq_clear(s->loop, &x->rxq);
    rs_event_loop_cancel_task(s->loop, &x->readable_task);
    if (s->is_listener) {
        while (x->u.waiting.count) {
            close(x->u.waiting.fds[--x->u.waiting.count]);
        }
    }
}

static void rs__sock_uring_free(rs_socket_t *s) {
    if (s->uring && s->is_listener) {
        rs_mem_free(&s->allocator, s->uring->u.waiting.fds);
    }
    rs_mem_free(&s->allocator, s->uring);
    s->uring = NULL;
}

#else /* !RESEAU_OS_LINUX: every socket is readiness-based */

static void rs__sock_uring_enter(rs_socket_t *s) {
    (void)s;
}
static void rs__sock_uring_update_recv(rs_socket_t *s) {
    (void)s;
}
static int rs__sock_uring_readv(rs_socket_t *s, rs_byte_buf_t *bufs, size_t count, size_t *amount_read) {
    (void)s;
    (void)bufs;
    (void)count;
    (void)amount_read;
    return RS_ENOTSUP;
}
static void rs__sock_uring_flush(rs_socket_t *s) {
    (void)s;
}
static bool rs__sock_uring_reads_fd(const rs_socket_t *s) {
    (void)s;
    return true;
}
static bool rs__sock_uring_recv_dgrams(rs_socket_t *s, rs_datagram_t *d, size_t count, size_t *received,
                                       int *result) {
    (void)s;
    (void)d;
    (void)count;
    (void)received;
    (void)result;
    return false;
}
static void rs__sock_uring_close(rs_socket_t *s) {
    (void)s;
}
static void rs__sock_uring_free(rs_socket_t *s) {
    (void)s;
}
static bool rs__sock_uring_is_connecting(const rs_socket_t *s) {
    (void)s;
    return false;
}
static int rs__sock_uring_connect(rs_socket_t *s, const rs__sockaddr_t *addr, socklen_t len) {
    (void)s;
    (void)addr;
    (void)len;
    return RS_ENOTSUP;
}
static void rs__sock_uring_listen(rs_socket_t *l) {
    (void)l;
}
static int rs__sock_uring_update_accept(rs_socket_t *l) {
    (void)l;
    return RS_ENOTSUP;
}

#endif /* RESEAU_OS_LINUX */
#endif /* RESEAU_OS_POSIX */
