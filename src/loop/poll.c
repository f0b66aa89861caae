/*
 * poll backend: the portable POSIX fallback, and a cross-check of the loop
 * contract against epoll. Level-triggered, a self-pipe for wakeups. Slot 0 of
 * the pollfd array is the pipe; subscriptions fill the rest and are removed by
 * swapping the last one into the hole. Dispatch works from a separate ready
 * list, so subscribing or unsubscribing inside a callback is safe.
 */
#if RESEAU_OS_POSIX

typedef struct rs__poll_ready {
    rs__io_registration_t *reg;
    int events;
} rs__poll_ready_t;

typedef struct rs__poll {
    int wake_read_fd;
    int wake_write_fd;
    struct pollfd *fds;
    rs__io_registration_t **regs; /* regs[i] owns fds[i]; regs[0] is NULL (the pipe) */
    size_t count;
    size_t capacity;
    rs__poll_ready_t *ready; /* grown only in wait, never during dispatch */
    size_t ready_capacity;
    size_t ready_count;
} rs__poll_t;

/* Initial pollfd slots, including the wakeup pipe. */
#define RS__POLL_INITIAL_CAPACITY 16

/* Drain a non-blocking wakeup fd (a self-pipe) until EAGAIN. */
static void rs__drain_fd(int fd) {
    uint8_t scratch[64];
    while (read(fd, scratch, sizeof(scratch)) > 0) {
    }
}

static int rs__poll_grow(rs_event_loop_t *loop, rs__poll_t *p, size_t capacity) {
    struct pollfd *fds;
    rs__io_registration_t **regs;
    fds = (struct pollfd *)rs_mem_realloc(&loop->allocator, p->fds, p->capacity * sizeof(*fds), capacity * sizeof(*fds));
    if (!fds) {
        return RS_ENOMEM;
    }
    p->fds = fds;
    regs = (rs__io_registration_t **)rs_mem_realloc(&loop->allocator, p->regs, p->capacity * sizeof(*regs),
                                                    capacity * sizeof(*regs));
    if (!regs) {
        /* fds grew but regs did not: keep the old capacity, which both still have. */
        return RS_ENOMEM;
    }
    p->regs = regs;
    p->capacity = capacity;
    return RS_OK;
}

static int rs__poll_init(rs_event_loop_t *loop) {
    int pipe_fds[2];
    int err;
    rs__poll_t *p = (rs__poll_t *)rs_mem_calloc(&loop->allocator, 1, sizeof(rs__poll_t));
    if (!p) {
        return RS_ENOMEM;
    }
    if (pipe(pipe_fds) != 0) {
        err = rs_result_from_errno(errno);
        RS__LOG_ERROR(RS_LS_EVENT_LOOP, "poll backend: pipe() failed: %s (errno %d)", strerror(errno), errno);
        rs_mem_free(&loop->allocator, p);
        return err;
    }
    p->wake_read_fd = pipe_fds[0];
    p->wake_write_fd = pipe_fds[1];
    err = rs__set_nonblocking_cloexec(p->wake_read_fd);
    if (!err) {
        err = rs__set_nonblocking_cloexec(p->wake_write_fd);
    }
    if (!err) {
        err = rs__poll_grow(loop, p, RS__POLL_INITIAL_CAPACITY);
    }
    if (err) {
        close(p->wake_read_fd);
        close(p->wake_write_fd);
        rs_mem_free(&loop->allocator, p->fds);
        rs_mem_free(&loop->allocator, p->regs);
        rs_mem_free(&loop->allocator, p);
        return err;
    }
    p->fds[0].fd = p->wake_read_fd;
    p->fds[0].events = POLLIN;
    p->fds[0].revents = 0;
    p->regs[0] = NULL;
    p->count = 1;
    loop->backend_data = p;
    return RS_OK;
}

static void rs__poll_cleanup(rs_event_loop_t *loop) {
    rs__poll_t *p = (rs__poll_t *)rs__backend_data(loop);
    close(p->wake_read_fd);
    close(p->wake_write_fd);
    rs_mem_free(&loop->allocator, p->fds);
    rs_mem_free(&loop->allocator, p->regs);
    rs_mem_free(&loop->allocator, p->ready);
    rs_mem_free(&loop->allocator, p);
    loop->backend_data = NULL;
}

static short rs__poll_mask(int events) {
    short mask = 0;
    if (events & RS_IO_READABLE) {
        mask |= POLLIN;
    }
    if (events & RS_IO_WRITABLE) {
        mask |= POLLOUT;
    }
    return mask;
}

static int rs__poll_ready_events(short revents) {
    int events = 0;
    if (revents & POLLIN) {
        events |= RS_IO_READABLE;
    }
    if (revents & POLLOUT) {
        events |= RS_IO_WRITABLE;
    }
    if (revents & POLLHUP) {
        events |= RS_IO_HANGUP;
    }
    if (revents & (POLLERR | POLLNVAL)) {
        events |= RS_IO_ERROR;
    }
    return events;
}

/* Make room to record every subscription as ready. If memory is short, the
 * surplus stays ready in the kernel and is reported on a later tick. */
static void rs__poll_reserve_ready(rs_event_loop_t *loop, rs__poll_t *p) {
    rs__poll_ready_t *ready;
    if (p->ready_capacity >= p->capacity) {
        return;
    }
    ready = (rs__poll_ready_t *)rs_mem_realloc(&loop->allocator, p->ready, p->ready_capacity * sizeof(*ready),
                                               p->capacity * sizeof(*ready));
    if (ready) {
        p->ready = ready;
        p->ready_capacity = p->capacity;
    }
}

static void rs__poll_wait(rs_event_loop_t *loop, int timeout_ms) {
    rs__poll_t *p = (rs__poll_t *)rs__backend_data(loop);
    uint64_t deadline_ns;
    size_t i;
    int n;
    rs__poll_reserve_ready(loop, p);
    p->ready_count = 0;
    deadline_ns = rs__wait_deadline_ns(timeout_ms);
    while ((n = poll(p->fds, (nfds_t)p->count, timeout_ms)) < 0 && errno == EINTR) {
        timeout_ms = rs__wait_left_ms(deadline_ns, timeout_ms);
    }
    if (n <= 0) {
        if (n < 0) {
            RS__LOG_ERROR(RS_LS_EVENT_LOOP, "poll failed: %s (errno %d)", strerror(errno), errno);
        }
        return;
    }
    if (p->fds[0].revents) {
        rs__drain_fd(p->wake_read_fd);
    }
    for (i = 1; i < p->count && p->ready_count < p->ready_capacity; ++i) {
        if (p->fds[i].revents) {
            p->ready[p->ready_count].reg = p->regs[i];
            p->ready[p->ready_count].events = rs__poll_ready_events(p->fds[i].revents);
            ++p->ready_count;
        }
    }
}

static void rs__poll_dispatch(rs_event_loop_t *loop) {
    rs__poll_t *p = (rs__poll_t *)rs__backend_data(loop);
    size_t i;
    for (i = 0; i < p->ready_count; ++i) {
        rs__registration_dispatch(loop, p->ready[i].reg, p->ready[i].events);
    }
    p->ready_count = 0;
}

static int rs__poll_add(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    rs__poll_t *p = (rs__poll_t *)rs__backend_data(loop);
    size_t i;
    /* Match epoll, which refuses a second registration of one fd. */
    for (i = 1; i < p->count; ++i) {
        if (p->fds[i].fd == reg->fd) {
            return RS_EEXIST;
        }
    }
    if (p->count == p->capacity) {
        int err = rs__poll_grow(loop, p, p->capacity * 2);
        if (err) {
            return err;
        }
    }
    reg->slot = p->count;
    p->fds[p->count].fd = reg->fd;
    p->fds[p->count].events = rs__poll_mask(reg->events);
    p->fds[p->count].revents = 0;
    p->regs[p->count] = reg;
    ++p->count;
    return RS_OK;
}

static int rs__poll_modify(rs_event_loop_t *loop, rs__io_registration_t *reg, int events) {
    rs__poll_t *p = (rs__poll_t *)rs__backend_data(loop);
    p->fds[reg->slot].events = rs__poll_mask(events);
    return RS_OK;
}

static void rs__poll_remove(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    rs__poll_t *p = (rs__poll_t *)rs__backend_data(loop);
    size_t last = p->count - 1;
    if (reg->slot != last) {
        p->fds[reg->slot] = p->fds[last];
        p->regs[reg->slot] = p->regs[last];
        p->regs[reg->slot]->slot = reg->slot;
    }
    --p->count;
}

static bool rs__poll_wake(rs_event_loop_t *loop) {
    rs__poll_t *p = (rs__poll_t *)rs__backend_data(loop);
    uint8_t one = 1;
    /* EAGAIN: the pipe is full of unread wakeups, so the loop will wake anyway. */
    return write(p->wake_write_fd, &one, 1) == 1 || errno == EAGAIN;
}

static int rs__poll_get_fd(const rs_event_loop_t *loop, int *fd_out) {
    (void)loop;
    (void)fd_out;
    return RS_ENOTSUP;
}

static const rs__backend_vtable_t rs__poll_vtable = {
    RS_EVENT_LOOP_BACKEND_POLL, rs__poll_init, rs__poll_cleanup, rs__poll_wait,  rs__poll_dispatch,
    rs__poll_add,               rs__poll_modify, rs__poll_remove, rs__poll_wake, rs__poll_get_fd,
    NULL, /* no wait handle: get_fd is the POSIX way, and poll has none either */
    false, /* a change is an array write: nothing to save by deferring it */
};
#endif /* RESEAU_OS_POSIX */
