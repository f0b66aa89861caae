/*
 * Sockets on io_uring: the completion-based strategy of a connected stream
 * socket (ARCHITECTURE.md §4a), chosen when it is tied to a loop whose ring
 * runs operations (rs__uring_loop_has_ops). Listening and connecting stay
 * readiness-based (socket_posix.c): they happen once per connection.
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
 */
#if RESEAU_OS_POSIX /* Windows: >>net_win.c */
#if RESEAU_OS_LINUX

/* Writes gathered into one SENDMSG. */
#define RS__URING_SEND_IOV_MAX 16
/* Received chunks a socket may hold before it stops receiving. */
#define RS__URING_RX_MAX 16

struct rs__socket_uring {
    rs_socket_t *socket;
    rs__uring_op_t recv;
    rs__uring_op_t send;
    rs__uring_rxq_t rxq;
    int rx_end; /* RS_EEOF or the error that ended receiving, reported once rxq is read */
    rs_task_t readable_task;
    struct msghdr msg;
    struct iovec iov[RS__URING_SEND_IOV_MAX];
};

static void rs__sock_uring_recv_done(rs_event_loop_t *loop, rs__uring_op_t *op, int res, uint32_t cqe_flags);
static void rs__sock_uring_send_done(rs_event_loop_t *loop, rs__uring_op_t *op, int res, uint32_t cqe_flags);
static void rs__sock_uring_readable_task(rs_task_t *task, void *arg, rs_task_status_t status);

static bool rs__sock_uring_has_reader(const rs_socket_t *s) {
    return s->on_readable || s->on_pipe_readable;
}

static bool rs__sock_uring_wants_recv(const rs_socket_t *s) {
    const rs__socket_uring_t *x = s->uring;
    return s->state == RS__SOCK_CONNECTED && rs__sock_uring_has_reader(s) && s->reading && !s->read_done &&
           !x->rx_end && x->rxq.count < RS__URING_RX_MAX;
}

/* Whether the reader has something to hear about: data, or the stream's end. */
static bool rs__sock_uring_has_news(const rs_socket_t *s) {
    return s->state == RS__SOCK_CONNECTED && rs__sock_uring_has_reader(s) && s->reading && !s->read_done &&
           (s->uring->rxq.count || s->uring->rx_end);
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
        int err = rs__uring_op_recv(s->loop, &x->recv);
        if (err) {
            /* No slot (out of memory) or no room in the queue: nothing would
             * ever be received, so the reader hears it. */
            RS__LOG_ERROR(RS_LS_SOCKET, "socket %p: cannot start receiving: %s", (void *)s, rs_strerror(err));
            x->rx_end = err;
            rs__sock_uring_schedule_readable(s);
        }
    } else if (!want && (x->recv.slot || x->recv.starved)) {
        rs__uring_op_cancel(s->loop, &x->recv);
    }
    rs__sock_uring_schedule_readable(s); /* a reader resumed, or new, hears of what waits */
}

/* The socket is connected on a loop that runs operations: from now on it
 * receives and sends through the ring. Staying readiness-based (out of
 * memory) is always correct, only slower. */
static void rs__sock_uring_enter(rs_socket_t *s) {
    rs__socket_uring_t *x;
    if (s->uring || s->options.type != RS_SOCKET_STREAM || s->state != RS__SOCK_CONNECTED ||
        !rs__uring_loop_has_ops(s->loop)) {
        return;
    }
    x = (rs__socket_uring_t *)rs_mem_calloc(&s->allocator, 1, sizeof(*x));
    if (!x) {
        RS__LOG_WARN(RS_LS_SOCKET, "socket %p: no memory for completion-based I/O; using readiness", (void *)s);
        return;
    }
    x->socket = s;
    x->recv.fn = rs__sock_uring_recv_done;
    x->recv.fd = s->io.fd;
    x->send.fn = rs__sock_uring_send_done;
    x->send.fd = s->io.fd;
    rs_task_init(&x->readable_task, rs__sock_uring_readable_task, s, "socket_uring_readable");
    s->uring = x;
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
        /* res > 0: a chunk; the kernel attaches no buffer to an end or an error */
        rs__uring_rxq_push(loop, &x->rxq, cqe_flags >> RS__IORING_CQE_BUFFER_SHIFT, (uint32_t)res);
    } else if (res == 0) {
        x->rx_end = RS_EEOF;
    } else if (res == -ENOBUFS) {
        if (rs__sock_uring_wants_recv(s)) {
            rs__uring_op_wait_for_buffers(loop, op);
        }
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
    if (status != RS_TASK_STATUS_RUN || !rs__sock_uring_has_news(s)) {
        return;
    }
    s->callback_depth++;
    rs__socket_notify_readable(s, 0); /* RS_OK: an error comes from the read, after the data */
    s->callback_depth--;
    if (s->state == RS__SOCK_CONNECTED) {
        rs__sock_uring_schedule_readable(s);
    }
    rs__socket_maybe_free(s);
}

/* rs_socket_readv on a completion-based socket: out of the queued chunks. */
static int rs__sock_uring_readv(rs_socket_t *s, rs_byte_buf_t *bufs, size_t count, size_t *amount_read) {
    rs__socket_uring_t *x = s->uring;
    size_t total = 0;
    size_t i;
    for (i = 0; i < count && x->rxq.count; ++i) {
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
            x->iov[n].iov_base = (void *)(uintptr_t)req->remaining.ptr;
            x->iov[n].iov_len = req->remaining.len;
            ++n;
        }
        memset(&x->msg, 0, sizeof(x->msg));
        x->msg.msg_iov = x->iov;
        x->msg.msg_iovlen = n;
        err = rs__uring_op_sendmsg(s->loop, &x->send, &x->msg);
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
    } else {
        s->write_error = rs_result_from_errno(-res);
        RS__LOG_DEBUG(RS_LS_SOCKET, "socket %p: write failed: %s", (void *)s, rs_strerror(s->write_error));
        rs__socket_fail_writes(s, s->write_error);
    }
    rs__sock_uring_flush(s);
}

/* Before the fd is closed: end both operations (synchronously) and give the
 * unread chunks back. The queued writes are failed by the caller. */
static void rs__sock_uring_close(rs_socket_t *s) {
    rs__socket_uring_t *x = s->uring;
    if (!x || !s->loop) {
        return;
    }
    rs__uring_op_abandon(s->loop, &x->recv);
    rs__uring_op_abandon(s->loop, &x->send);
    rs__uring_rxq_clear(s->loop, &x->rxq);
    rs_event_loop_cancel_task(s->loop, &x->readable_task);
}

static void rs__sock_uring_free(rs_socket_t *s) {
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
static void rs__sock_uring_close(rs_socket_t *s) {
    (void)s;
}
static void rs__sock_uring_free(rs_socket_t *s) {
    (void)s;
}

#endif /* RESEAU_OS_LINUX */
#endif /* RESEAU_OS_POSIX */
