#if RESEAU_OS_POSIX /* Windows: >>pipe_win.c */
/*
 * Pipes, as a Unix socketpair shut down to one direction: the socket core gives
 * them asynchronous, ordered writes, and MSG_NOSIGNAL (SO_NOSIGPIPE on macOS)
 * keeps a write to a pipe whose reader is gone from raising SIGPIPE (a plain
 * pipe() cannot promise that without process-wide signal handling). Each end
 * is an rs_socket_t underneath; on io_uring loops, a readiness-based one, as
 * every Unix-domain socket is there (>>socket_uring.c).
 */

static rs_socket_t *rs__pipe_socket(const void *end) {
    return (rs_socket_t *)(uintptr_t)end;
}

/* Wrap one end of the pair; the fd is closed on failure. */
static rs_socket_t *rs__pipe_end_new(const rs_allocator_t *allocator, int fd, int shut_how, int *err_out) {
    rs_socket_options_t options;
    rs_socket_t *s;
    memset(&options, 0, sizeof(options));
    options.domain = RS_SOCKET_DOMAIN_LOCAL;
    s = rs__socket_alloc(allocator, &options, err_out);
    if (!s) {
        close(fd);
        return NULL;
    }
    s->io.fd = fd;
    *err_out = rs__prepare_fd(fd, RS__HAVE_SOCK_FLAGS);
    if (!*err_out && shutdown(fd, shut_how) != 0) {
        *err_out = rs__errno_result();
    }
    if (*err_out) {
        close(fd);
        s->io.fd = -1;
        rs__socket_free(s);
        return NULL;
    }
    s->state = RS__SOCK_CONNECTED;
    return s;
}

/* Tie an end to its loop; the caller is on that loop's thread or the loop has not run yet. */
static void rs__pipe_end_set_loop(rs_socket_t *s, rs_event_loop_t *loop) {
    rs__socket_tie_to_loop(s, loop);
}

RESEAU_API int rs_pipe_new(rs_event_loop_t *read_loop, rs_event_loop_t *write_loop, const rs_allocator_t *allocator,
                           rs_pipe_read_end_t **read_end_out, rs_pipe_write_end_t **write_end_out) {
    int fds[2];
    int err;
    rs_socket_t *reader;
    rs_socket_t *writer;
    if (read_end_out) {
        *read_end_out = NULL;
    }
    if (write_end_out) {
        *write_end_out = NULL;
    }
    if (!read_loop || !write_loop || !read_end_out || !write_end_out) {
        return RS_EINVAL;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | RS__SOCK_FLAGS, 0, fds) != 0) {
        err = rs__errno_result();
        RS__LOG_ERROR(RS_LS_SOCKET, "socketpair failed: %s (errno %d)", strerror(errno), errno);
        return err;
    }
    reader = rs__pipe_end_new(allocator, fds[0], SHUT_WR, &err);
    if (!reader) {
        close(fds[1]);
        return err;
    }
    writer = rs__pipe_end_new(allocator, fds[1], SHUT_RD, &err);
    if (!writer) {
        rs__socket_close_now(reader);
        rs__socket_free(reader);
        return err;
    }
    rs__pipe_end_set_loop(reader, read_loop);
    rs__pipe_end_set_loop(writer, write_loop);
    *read_end_out = (rs_pipe_read_end_t *)(void *)reader;
    *write_end_out = (rs_pipe_write_end_t *)(void *)writer;
    return RS_OK;
}

RESEAU_API int rs_pipe_subscribe_to_readable_events(rs_pipe_read_end_t *read_end, rs_pipe_on_readable_fn *on_readable,
                                                   void *user_data) {
    if (!read_end) {
        return RS_EINVAL;
    }
    return rs__socket_set_reader(rs__pipe_socket(read_end), NULL, on_readable, user_data);
}

RESEAU_API int rs_pipe_read(rs_pipe_read_end_t *read_end, rs_byte_buf_t *buf, size_t *amount_read) {
    if (!read_end) {
        return RS_EINVAL;
    }
    return rs_socket_read(rs__pipe_socket(read_end), buf, amount_read);
}

RESEAU_API void rs_pipe_read_end_destroy(rs_pipe_read_end_t *read_end) {
    rs_socket_destroy(rs__pipe_socket(read_end));
}

RESEAU_API int rs_pipe_write(rs_pipe_write_end_t *write_end, rs_byte_cursor_t data, rs_pipe_on_write_fn *on_written,
                             void *user_data) {
    rs__write_cb_t cb;
    if (!write_end) {
        return RS_EINVAL;
    }
    cb.socket_fn = NULL;
    cb.pipe_fn = on_written;
    cb.user_data = user_data;
    return rs__socket_write(rs__pipe_socket(write_end), data, cb);
}

RESEAU_API void rs_pipe_write_end_destroy(rs_pipe_write_end_t *write_end) {
    rs_socket_destroy(rs__pipe_socket(write_end));
}
#endif /* RESEAU_OS_POSIX */
