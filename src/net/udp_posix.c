#if RESEAU_OS_POSIX /* Windows: >>net_win.c */
/*
 * Datagrams: immediate, non-queueing send and receive on DGRAM sockets, with
 * sendmmsg/recvmmsg batching on Linux and one sendmsg/recvmsg per datagram
 * elsewhere (RS__HAVE_MMSG). Only rs__dgram_send_some and rs__dgram_recv_some
 * differ between the two, and they give the same counts and errors.
 */

/* Fill one msghdr for `dgram`; `name` receives the destination on send. */
static int rs__dgram_prepare_send(rs_socket_t *s, const rs_endpoint_t *destination, struct iovec *iov,
                                  const void *data, size_t len, struct msghdr *msg, rs__sockaddr_t *name) {
    socklen_t name_len = 0;
    memset(msg, 0, sizeof(*msg));
    iov->iov_base = (void *)(uintptr_t)data;
    iov->iov_len = len;
    msg->msg_iov = iov;
    msg->msg_iovlen = 1;
    if (destination && !s->has_remote) {
        int err = rs__socket_take_family(s, destination);
        if (!err) {
            err = rs__endpoint_to_sockaddr(destination, name, &name_len);
        }
        if (err) {
            return err;
        }
        msg->msg_name = name;
        msg->msg_namelen = name_len;
    } else if (!s->has_remote) {
        return RS_ENOTCONN; /* no destination and not connected */
    }
    return RS_OK;
}

/* Send one datagram; the socket was checked. */
static int rs__dgram_send_one(rs_socket_t *s, const rs_endpoint_t *destination, const void *data, size_t len) {
    struct iovec iov;
    struct msghdr msg;
    rs__sockaddr_t name;
    ssize_t n;
    int err = rs__dgram_prepare_send(s, destination, &iov, data, len, &msg, &name);
    if (err) {
        return err;
    }
    do {
        n = sendmsg(s->io.fd, &msg, RS__MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? rs__errno_result() : RS_OK; /* EAGAIN maps to RS_EAGAIN */
}

/* Send up to `count` (at most RS_DATAGRAM_BATCH_MAX) datagrams in order;
 * *sent_out counts those sent. Returns the error that stopped it at
 * d[*sent_out], or RS_OK (sendmmsg may stop early and not say why). */
static int rs__dgram_send_some(rs_socket_t *s, const rs_datagram_t *d, size_t count, size_t *sent_out) {
#if RS__HAVE_MMSG
    struct mmsghdr msgs[RS_DATAGRAM_BATCH_MAX];
    struct iovec iovs[RS_DATAGRAM_BATCH_MAX];
    rs__sockaddr_t names[RS_DATAGRAM_BATCH_MAX];
    size_t valid;
    int err = RS_OK;
    int n;
    *sent_out = 0;
    memset(msgs, 0, sizeof(msgs[0]) * count);
    for (valid = 0; valid < count; ++valid) {
        err = rs__dgram_prepare_send(s, &d[valid].endpoint, &iovs[valid], d[valid].data, d[valid].len,
                                     &msgs[valid].msg_hdr, &names[valid]);
        if (err) {
            break; /* send the valid ones before it, then report it */
        }
    }
    if (valid == 0) {
        return err;
    }
    do {
        n = sendmmsg(s->io.fd, msgs, (unsigned)valid, RS__MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return rs__errno_result();
    }
    *sent_out = (size_t)n;
    return (size_t)n < valid ? RS_OK : err;
#else
    int err = RS_OK;
    for (*sent_out = 0; *sent_out < count; ++*sent_out) {
        err = rs__dgram_send_one(s, &d[*sent_out].endpoint, d[*sent_out].data, d[*sent_out].len);
        if (err) {
            break;
        }
    }
    return err;
#endif
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
    while (!err && sent < count) {
        size_t chunk = count - sent < RS_DATAGRAM_BATCH_MAX ? count - sent : RS_DATAGRAM_BATCH_MAX;
        size_t n = 0;
        err = rs__dgram_send_some(socket, datagrams + sent, chunk, &n);
        sent += n;
        if (n < chunk) {
            break; /* the kernel's buffer is full, or an invalid datagram follows */
        }
    }
    if (sent_out) {
        *sent_out = sent;
    }
    return sent > 0 ? RS_OK : err;
}

static void rs__dgram_prepare_recv(rs_datagram_t *d, struct iovec *iov, struct msghdr *msg, rs__sockaddr_t *name) {
    memset(msg, 0, sizeof(*msg));
    memset(name, 0, sizeof(*name));
    iov->iov_base = d->data;
    iov->iov_len = d->capacity;
    msg->msg_iov = iov;
    msg->msg_iovlen = 1;
    msg->msg_name = name;
    msg->msg_namelen = (socklen_t)sizeof(*name);
}

static void rs__dgram_finish_recv(rs_datagram_t *d, const struct msghdr *msg, const rs__sockaddr_t *name, size_t len) {
    d->len = len;
    d->truncated = (msg->msg_flags & MSG_TRUNC) != 0;
    if (rs__endpoint_from_sockaddr(&d->endpoint, name, msg->msg_namelen) != RS_OK) {
        memset(&d->endpoint, 0, sizeof(d->endpoint));
    }
}

/* Receive one datagram; the socket and the datagram were checked. */
static int rs__dgram_recv_one(rs_socket_t *s, rs_datagram_t *d) {
    struct iovec iov;
    struct msghdr msg;
    rs__sockaddr_t name;
    ssize_t n;
    size_t taken;
    int result;
    if (rs__sock_uring_recv_dgrams(s, d, 1, &taken, &result)) {
        return result; /* received through the ring (>>socket_uring.c) */
    }
    rs__dgram_prepare_recv(d, &iov, &msg, &name);
    do {
        n = recvmsg(s->io.fd, &msg, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return rs__errno_result();
    }
    rs__dgram_finish_recv(d, &msg, &name, (size_t)n);
    return RS_OK;
}

/* Receive up to `count` (at most RS_DATAGRAM_BATCH_MAX, each with a buffer)
 * datagrams; *received_out counts them. An error after some were received is
 * kept for the next receive call, as recvmmsg keeps it (in the socket's
 * SO_ERROR); EAGAIN just ends the batch. */
static int rs__dgram_recv_some_fd(rs_socket_t *s, rs_datagram_t *d, size_t count, size_t *received_out) {
#if RS__HAVE_MMSG
    struct mmsghdr msgs[RS_DATAGRAM_BATCH_MAX];
    struct iovec iovs[RS_DATAGRAM_BATCH_MAX];
    rs__sockaddr_t names[RS_DATAGRAM_BATCH_MAX];
    size_t i;
    int n;
    *received_out = 0;
    memset(msgs, 0, sizeof(msgs[0]) * count);
    for (i = 0; i < count; ++i) {
        rs__dgram_prepare_recv(&d[i], &iovs[i], &msgs[i].msg_hdr, &names[i]);
    }
    do {
        n = recvmmsg(s->io.fd, msgs, (unsigned)count, 0, NULL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return rs__errno_result();
    }
    for (i = 0; i < (size_t)n; ++i) {
        rs__dgram_finish_recv(&d[i], &msgs[i].msg_hdr, &names[i], msgs[i].msg_len);
    }
    *received_out = (size_t)n;
    return RS_OK;
#else
    int err = RS_OK;
    for (*received_out = 0; *received_out < count; ++*received_out) {
        err = rs__dgram_recv_one(s, &d[*received_out]);
        if (err) {
            break;
        }
    }
    if (err && err != RS_EAGAIN && *received_out > 0) {
        s->deferred_recv_error = err;
    }
    return *received_out > 0 ? RS_OK : err;
#endif
}

/* The same, out of what the ring received where it receives (>>socket_uring.c). */
static int rs__dgram_recv_some(rs_socket_t *s, rs_datagram_t *d, size_t count, size_t *received_out) {
    int result;
    if (rs__sock_uring_recv_dgrams(s, d, count, received_out, &result)) {
        return result;
    }
    return rs__dgram_recv_some_fd(s, d, count, received_out);
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
    if (!err) {
        err = rs__dgram_recv_some(socket, datagrams, chunk, &received);
    }
    if (err) {
        return err;
    }
    *received_out = received;
    return RS_OK;
}
#endif /* RESEAU_OS_POSIX */
