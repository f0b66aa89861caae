/*
 * epoll backend (Linux): level-triggered, with an eventfd for wakeups.
 * The epoll fd itself is the loop's waitable handle for host loops.
 */
#if RESEAU_OS_LINUX

/* Events taken per epoll_wait; more stay ready for the next tick (level-triggered). */
#define RS__EPOLL_MAX_EVENTS 256

typedef struct rs__epoll {
    int epoll_fd;
    int wake_fd;
    int ready_count;
    struct epoll_event ready[RS__EPOLL_MAX_EVENTS];
} rs__epoll_t;

static uint32_t rs__epoll_mask(int events) {
    uint32_t mask = 0;
    if (events & RS_IO_READABLE) {
        mask |= EPOLLIN;
    }
    if (events & RS_IO_WRITABLE) {
        mask |= EPOLLOUT;
    }
    return mask;
}

static int rs__epoll_init(rs_event_loop_t *loop) {
    struct epoll_event ev;
    int err;
    rs__epoll_t *ep = (rs__epoll_t *)rs_mem_calloc(&loop->allocator, 1, sizeof(rs__epoll_t));
    if (!ep) {
        return RS_ENOMEM;
    }
    ep->wake_fd = -1;
    ep->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (ep->epoll_fd < 0) {
        goto fail_errno;
    }
    ep->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ep->wake_fd < 0) {
        goto fail_errno;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = NULL; /* NULL marks the wakeup fd */
    if (epoll_ctl(ep->epoll_fd, EPOLL_CTL_ADD, ep->wake_fd, &ev) != 0) {
        goto fail_errno;
    }
    loop->backend_data = ep;
    return RS_OK;

fail_errno:
    err = rs_result_from_errno(errno);
    RS__LOG_ERROR(RS_LS_EVENT_LOOP, "epoll backend setup failed: %s (errno %d)", strerror(errno), errno);
    if (ep->wake_fd >= 0) {
        close(ep->wake_fd);
    }
    if (ep->epoll_fd >= 0) {
        close(ep->epoll_fd);
    }
    rs_mem_free(&loop->allocator, ep);
    return err;
}

static void rs__epoll_cleanup(rs_event_loop_t *loop) {
    rs__epoll_t *ep = (rs__epoll_t *)rs__backend_data(loop);
    close(ep->wake_fd);
    close(ep->epoll_fd);
    rs_mem_free(&loop->allocator, ep);
    loop->backend_data = NULL;
}

static void rs__epoll_wait(rs_event_loop_t *loop, int timeout_ms) {
    rs__epoll_t *ep = (rs__epoll_t *)rs__backend_data(loop);
    uint64_t deadline_ns = rs__wait_deadline_ns(timeout_ms);
    int n;
    while ((n = epoll_wait(ep->epoll_fd, ep->ready, RS__EPOLL_MAX_EVENTS, timeout_ms)) < 0 && errno == EINTR) {
        timeout_ms = rs__wait_left_ms(deadline_ns, timeout_ms);
    }
    if (n < 0) {
        RS__LOG_ERROR(RS_LS_EVENT_LOOP, "epoll_wait failed: %s (errno %d)", strerror(errno), errno);
        n = 0;
    }
    ep->ready_count = n;
}

static int rs__epoll_ready_events(uint32_t mask) {
    int events = 0;
    if (mask & EPOLLIN) {
        events |= RS_IO_READABLE;
    }
    if (mask & EPOLLOUT) {
        events |= RS_IO_WRITABLE;
    }
    if (mask & EPOLLHUP) {
        events |= RS_IO_HANGUP;
    }
    if (mask & EPOLLERR) {
        events |= RS_IO_ERROR;
    }
    return events;
}

static void rs__epoll_dispatch(rs_event_loop_t *loop) {
    rs__epoll_t *ep = (rs__epoll_t *)rs__backend_data(loop);
    int i;
    for (i = 0; i < ep->ready_count; ++i) {
        rs__io_registration_t *reg = (rs__io_registration_t *)ep->ready[i].data.ptr;
        if (!reg) {
            uint64_t count;
            /* One read resets an eventfd counter to zero. */
            if (read(ep->wake_fd, &count, sizeof(count)) < 0) {
                /* EAGAIN: another reader (none) or a spurious report; nothing to do. */
            }
            continue;
        }
        rs__registration_dispatch(loop, reg, rs__epoll_ready_events(ep->ready[i].events));
    }
    ep->ready_count = 0;
}

static int rs__epoll_ctl(rs_event_loop_t *loop, int op, rs__io_registration_t *reg, int events) {
    rs__epoll_t *ep = (rs__epoll_t *)rs__backend_data(loop);
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = rs__epoll_mask(events);
    ev.data.ptr = reg;
    if (epoll_ctl(ep->epoll_fd, op, reg->fd, &ev) != 0) {
        int err = errno;
        RS__LOG_ERROR(RS_LS_EVENT_LOOP, "epoll_ctl(fd %d) failed: %s (errno %d)", reg->fd, strerror(err), err);
        return rs_result_from_errno(err);
    }
    return RS_OK;
}

static int rs__epoll_add(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    return rs__epoll_ctl(loop, EPOLL_CTL_ADD, reg, reg->events);
}

static int rs__epoll_modify(rs_event_loop_t *loop, rs__io_registration_t *reg, int events) {
    return rs__epoll_ctl(loop, EPOLL_CTL_MOD, reg, events);
}

static void rs__epoll_remove(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    rs__epoll_t *ep = (rs__epoll_t *)rs__backend_data(loop);
    struct epoll_event ev;
    /* Fails harmlessly if the caller already closed the fd; the kernel dropped it then. */
    memset(&ev, 0, sizeof(ev));
    epoll_ctl(ep->epoll_fd, EPOLL_CTL_DEL, reg->fd, &ev);
}

static bool rs__epoll_wake(rs_event_loop_t *loop) {
    rs__epoll_t *ep = (rs__epoll_t *)rs__backend_data(loop);
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the loop will wake anyway. */
    return write(ep->wake_fd, &one, sizeof(one)) == (ssize_t)sizeof(one) || errno == EAGAIN;
}

static int rs__epoll_get_fd(const rs_event_loop_t *loop, int *fd_out) {
    const rs__epoll_t *ep = (const rs__epoll_t *)rs__backend_data(loop);
    *fd_out = ep->epoll_fd;
    return RS_OK;
}

static const rs__backend_vtable_t rs__epoll_vtable = {
    RS_EVENT_LOOP_BACKEND_EPOLL, rs__epoll_init,   rs__epoll_cleanup, rs__epoll_wait,
    rs__epoll_dispatch,          rs__epoll_add,    rs__epoll_modify,  rs__epoll_remove,
    rs__epoll_wake,              rs__epoll_get_fd,  NULL, true,
};

#endif /* RESEAU_OS_LINUX */
