/*
 * Datagrams: immediate, non-queueing send and receive on DGRAM sockets, with
 * sendmmsg/recvmmsg batching on Linux and a one-by-one fallback elsewhere.
 */

static int rs__socket_check_dgram(const rs_socket_t *s, const char *function) {
    int err = rs__socket_check_thread(s, function);
    if (err) {
        return err;
    }
    if (s->options.type != RS_SOCKET_DGRAM) {
        return RS_EINVAL;
    }
    /* A default-domain socket has no fd yet: its first send_to makes one. */
    return s->io.fd < 0 && !rs__socket_domain_pending(s) ? RS_EBADF : RS_OK;
}

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

RESEAU_API int rs_socket_send_to(rs_socket_t *socket, const rs_endpoint_t *destination, rs_byte_cursor_t data) {
    struct iovec iov;
    struct msghdr msg;
    rs__sockaddr_t name;
    ssize_t n;
    int err = rs__socket_check_dgram(socket, "rs_socket_send_to");
    if (!err) {
        err = rs__dgram_prepare_send(socket, destination, &iov, data.ptr, data.len, &msg, &name);
    }
    if (err) {
        return err;
    }
    do {
        n = sendmsg(socket->io.fd, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return rs__errno_result(); /* EAGAIN maps to RS_EAGAIN */
    }
    return RS_OK;
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
#if RESEAU_OS_LINUX
        struct mmsghdr msgs[RS_DATAGRAM_BATCH_MAX];
        struct iovec iovs[RS_DATAGRAM_BATCH_MAX];
        rs__sockaddr_t names[RS_DATAGRAM_BATCH_MAX];
        size_t i;
        size_t chunk = count - sent < RS_DATAGRAM_BATCH_MAX ? count - sent : RS_DATAGRAM_BATCH_MAX;
        int n;
        memset(msgs, 0, sizeof(msgs[0]) * chunk);
        for (i = 0; i < chunk; ++i) {
            const rs_datagram_t *d = &datagrams[sent + i];
            err = rs__dgram_prepare_send(socket, &d->endpoint, &iovs[i], d->data, d->len, &msgs[i].msg_hdr, &names[i]);
            if (err) {
                chunk = i; /* send the valid ones before it, then report it */
                break;
            }
        }
        if (chunk == 0) {
            break;
        }
        do {
            n = sendmmsg(socket->io.fd, msgs, (unsigned)chunk, MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            err = rs__errno_result();
            break;
        }
        sent += (size_t)n;
        if ((size_t)n < chunk || err) {
            break; /* the kernel's buffer is full, or an invalid datagram follows */
        }
#else
        const rs_datagram_t *d = &datagrams[sent];
        err = rs_socket_send_to(socket, &d->endpoint, rs_byte_cursor_from_array(d->data, d->len));
        if (!err) {
            ++sent;
        }
#endif
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

RESEAU_API int rs_socket_recv_from(rs_socket_t *socket, rs_datagram_t *datagram) {
    struct iovec iov;
    struct msghdr msg;
    rs__sockaddr_t name;
    ssize_t n;
    int err;
    err = rs__socket_check_dgram(socket, "rs_socket_recv_from"); /* NULL socket, then the thread, first */
    if (!err && (!datagram || !datagram->data || !datagram->capacity)) {
        err = RS_EINVAL;
    }
    if (!err) {
        err = rs__socket_fd_state(socket); /* nothing to receive on before the first send_to or bind */
    }
    if (err) {
        return err;
    }
    rs__dgram_prepare_recv(datagram, &iov, &msg, &name);
    do {
        n = recvmsg(socket->io.fd, &msg, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return rs__errno_result();
    }
    rs__dgram_finish_recv(datagram, &msg, &name, (size_t)n);
    return RS_OK;
}

RESEAU_API int rs_socket_recv_batch(rs_socket_t *socket, rs_datagram_t *datagrams, size_t count,
                                    size_t *received_out) {
    int err;
    size_t received = 0;
    if (received_out) {
        *received_out = 0;
    }
    err = rs__socket_check_dgram(socket, "rs_socket_recv_batch"); /* NULL socket, then the thread, first */
    if (!err && (!datagrams || !received_out)) {
        err = RS_EINVAL;
    }
    if (!err) {
        err = rs__socket_fd_state(socket); /* nothing to receive on before the first send_to or bind */
    }
    if (!err && count == 0) {
        err = RS_EINVAL;
    }
    if (err) {
        return err;
    }
#if RESEAU_OS_LINUX
    {
        struct mmsghdr msgs[RS_DATAGRAM_BATCH_MAX];
        struct iovec iovs[RS_DATAGRAM_BATCH_MAX];
        rs__sockaddr_t names[RS_DATAGRAM_BATCH_MAX];
        size_t chunk = count < RS_DATAGRAM_BATCH_MAX ? count : RS_DATAGRAM_BATCH_MAX;
        size_t i;
        int n;
        memset(msgs, 0, sizeof(msgs[0]) * chunk);
        for (i = 0; i < chunk; ++i) {
            if (!datagrams[i].data || !datagrams[i].capacity) {
                return RS_EINVAL;
            }
            rs__dgram_prepare_recv(&datagrams[i], &iovs[i], &msgs[i].msg_hdr, &names[i]);
        }
        do {
            n = recvmmsg(socket->io.fd, msgs, (unsigned)chunk, 0, NULL);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            return rs__errno_result();
        }
        for (i = 0; i < (size_t)n; ++i) {
            rs__dgram_finish_recv(&datagrams[i], &msgs[i].msg_hdr, &names[i], msgs[i].msg_len);
        }
        received = (size_t)n;
    }
#else
    while (received < count) {
        err = rs_socket_recv_from(socket, &datagrams[received]);
        if (err) {
            break;
        }
        ++received;
    }
    if (received == 0) {
        return err;
    }
#endif
    *received_out = received;
    return RS_OK;
}
