/*
 * kqueue backend (macOS, the BSDs; on Linux only against libkqueue, for
 * testing). Level-triggered EVFILT_READ / EVFILT_WRITE, one knote per filter,
 * and an EVFILT_USER knote (a self-pipe where the OS lacks it) for wakeups.
 *
 * Interest changes the core defers to a tick's end (the socket layer's) are
 * queued and handed to the kernel with the next wait, in the same kevent call;
 * their errors come back in that call's event list and are reported to the
 * owner as RS_IO_ERROR. A direct subscribe or update from the user is applied
 * at once, so that it can return the kernel's error. A removal is always
 * applied at once: its fd may be closed right after, and a knote on a closed
 * (or reused) fd number is never ours to delete later.
 *
 * Written to the FreeBSD and macOS kqueue(2) pages. libkqueue, on which this
 * is tested on Linux, differs in three ways that matter here:
 *   - its kqueue fd is a pipe's write end, never readable: rs_event_loop_get_fd
 *     returns an fd a host loop can poll only on the BSDs and macOS;
 *   - it reads SO_ERROR to fill in fflags, which clears it (see os_error);
 *   - a change's error is dropped when the same call's wait times out with no
 *     event (the BSDs return the errors at once, without waiting).
 */
#if RESEAU_HAVE_KQUEUE

/* Events taken per kevent call at least; more stay ready for the next tick. */
#define RS__KQ_MAX_EVENTS 256

/* Filter bits, kept in reg->slot: the low two are the filters the kernel holds
 * (as of the last submitted change), the next two those wanted once the queued
 * changes are submitted, and RS__KQ_QUEUED says the queue names this
 * registration. */
#define RS__KQ_READ 1u
#define RS__KQ_WRITE 2u
#define RS__KQ_HELD(slot) ((unsigned)(slot)&3u)
#define RS__KQ_WANTED(slot) (((unsigned)(slot) >> 2) & 3u)
#define RS__KQ_QUEUED 16u

/* The EVFILT_USER ident of the wakeup knote (its own namespace, not an fd). */
#define RS__KQ_WAKE_IDENT 0

typedef struct rs__kqueue {
    int kq;
    int wake_read_fd; /* the self-pipe, where there is no EVFILT_USER; else -1 */
    int wake_write_fd;
    struct kevent *changes; /* queued for the next wait */
    size_t change_count;
    size_t change_capacity;
    struct kevent *ready; /* never smaller than `changes`: each change may come back as an error */
    size_t ready_capacity;
    int ready_count;
    rs__fd_owners_t owners; /* kqueue would merge a second subscriber's knote into the first */
} rs__kqueue_t;

/* udata is void * on most systems and intptr_t on older NetBSD: both are
 * pointer-sized, so the pointer is copied in and out as bytes. */
RS__STATIC_ASSERT(sizeof(((struct kevent *)0)->udata) == sizeof(void *), kevent_udata_is_pointer_sized);

static void rs__kq_set(struct kevent *kev, uintptr_t ident, int filter, unsigned flags, unsigned fflags,
                       rs__io_registration_t *reg) {
    memset(kev, 0, sizeof(*kev));
    kev->ident = ident;
    kev->filter = (short)filter;
    kev->flags = (unsigned short)flags;
    kev->fflags = fflags;
    memcpy(&kev->udata, &reg, sizeof(reg));
}

static rs__io_registration_t *rs__kq_reg(const struct kevent *kev) {
    rs__io_registration_t *reg;
    memcpy(&reg, &kev->udata, sizeof(reg));
    return reg;
}

static unsigned rs__kq_filters(int events) {
    return ((events & RS_IO_READABLE) ? RS__KQ_READ : 0u) | ((events & RS_IO_WRITABLE) ? RS__KQ_WRITE : 0u);
}

static int rs__kq_filter_of(unsigned bit) {
    return bit == RS__KQ_READ ? EVFILT_READ : EVFILT_WRITE;
}

static void rs__kq_set_wanted(rs__io_registration_t *reg, unsigned wanted) {
    reg->slot = (reg->slot & ~(size_t)(3u << 2)) | (size_t)(wanted << 2);
}

static void rs__kq_set_held(rs__io_registration_t *reg, unsigned held) {
    reg->slot = (reg->slot & ~(size_t)3u) | (size_t)held;
}

static int rs__kq_wake_setup(rs__kqueue_t *k) {
#ifdef EVFILT_USER
    struct kevent kev;
    /* EV_CLEAR: triggers before the loop looks coalesce into one event. */
    rs__kq_set(&kev, RS__KQ_WAKE_IDENT, EVFILT_USER, EV_ADD | EV_CLEAR, 0, NULL);
    return kevent(k->kq, &kev, 1, NULL, 0, NULL) == 0 ? RS_OK : rs_result_from_errno(errno);
#else
    int fds[2];
    struct kevent kev;
    int err;
    if (pipe(fds) != 0) {
        return rs_result_from_errno(errno);
    }
    k->wake_read_fd = fds[0];
    k->wake_write_fd = fds[1];
    err = rs__set_nonblocking_cloexec(fds[0]);
    if (!err) {
        err = rs__set_nonblocking_cloexec(fds[1]);
    }
    rs__kq_set(&kev, (uintptr_t)fds[0], EVFILT_READ, EV_ADD, 0, NULL);
    if (!err && kevent(k->kq, &kev, 1, NULL, 0, NULL) != 0) {
        err = rs_result_from_errno(errno);
    }
    return err;
#endif
}

static void rs__kq_close_fds(rs__kqueue_t *k) {
    if (k->wake_read_fd >= 0) {
        close(k->wake_read_fd);
        close(k->wake_write_fd);
    }
    if (k->kq >= 0) {
        close(k->kq);
    }
}

static int rs__kq_init(rs_event_loop_t *loop) {
    int err;
    rs__kqueue_t *k = (rs__kqueue_t *)rs_mem_calloc(&loop->allocator, 1, sizeof(rs__kqueue_t));
    if (!k) {
        return RS_ENOMEM;
    }
    k->wake_read_fd = -1;
    k->wake_write_fd = -1;
    k->ready = (struct kevent *)rs_mem_calloc(&loop->allocator, RS__KQ_MAX_EVENTS, sizeof(struct kevent));
    if (!k->ready) {
        rs_mem_free(&loop->allocator, k);
        return RS_ENOMEM;
    }
    k->ready_capacity = RS__KQ_MAX_EVENTS;
    k->kq = kqueue();
    /* A kqueue is not inherited by fork() on the BSDs; libkqueue's fd would be. */
    err = k->kq < 0 || fcntl(k->kq, F_SETFD, FD_CLOEXEC) != 0 ? rs_result_from_errno(errno) : RS_OK;
    if (!err) {
        err = rs__kq_wake_setup(k);
    }
    if (err) {
        RS__LOG_ERROR(RS_LS_EVENT_LOOP, "kqueue backend setup failed: %s", rs_strerror(err));
        rs__kq_close_fds(k);
        rs_mem_free(&loop->allocator, k->ready);
        rs_mem_free(&loop->allocator, k);
        return err;
    }
    loop->backend_data = k;
    return RS_OK;
}

static void rs__kq_cleanup(rs_event_loop_t *loop) {
    rs__kqueue_t *k = (rs__kqueue_t *)rs__backend_data(loop);
    rs__kq_close_fds(k);
    rs_mem_free(&loop->allocator, k->changes);
    rs_mem_free(&loop->allocator, k->ready);
    rs__fd_owners_cleanup(&loop->allocator, &k->owners);
    rs_mem_free(&loop->allocator, k);
    loop->backend_data = NULL;
}

/* Room for `extra` more queued changes, and as many event slots, so that an
 * error for every queued change fits in the wait's event list (the kernel
 * stops applying changes once it has no room to report one). */
static int rs__kq_reserve_changes(rs_event_loop_t *loop, rs__kqueue_t *k, size_t extra) {
    size_t needed = k->change_count + extra;
    if (needed > k->change_capacity) {
        size_t capacity = k->change_capacity ? k->change_capacity * 2 : 64;
        struct kevent *changes;
        while (capacity < needed) {
            capacity *= 2;
        }
        changes = (struct kevent *)rs_mem_realloc(&loop->allocator, k->changes,
                                                  k->change_capacity * sizeof(struct kevent),
                                                  capacity * sizeof(struct kevent));
        if (!changes) {
            return RS_ENOMEM;
        }
        k->changes = changes;
        k->change_capacity = capacity;
    }
    if (needed > k->ready_capacity) {
        size_t capacity = k->ready_capacity * 2;
        struct kevent *ready;
        while (capacity < needed) {
            capacity *= 2;
        }
        ready = (struct kevent *)rs_mem_realloc(&loop->allocator, k->ready, k->ready_capacity * sizeof(struct kevent),
                                                capacity * sizeof(struct kevent));
        if (!ready) {
            return RS_ENOMEM;
        }
        k->ready = ready;
        k->ready_capacity = capacity;
    }
    return RS_OK;
}

/* Queue the changes that take `reg` from the filters it wants now to `wanted`. */
static int rs__kq_queue(rs_event_loop_t *loop, rs__kqueue_t *k, rs__io_registration_t *reg, unsigned wanted) {
    unsigned before = RS__KQ_WANTED(reg->slot);
    unsigned bit;
    int err = rs__kq_reserve_changes(loop, k, 2);
    if (err) {
        return err;
    }
    for (bit = RS__KQ_READ; bit <= RS__KQ_WRITE; bit <<= 1) {
        if ((before ^ wanted) & bit) {
            rs__kq_set(&k->changes[k->change_count++], (uintptr_t)reg->fd, rs__kq_filter_of(bit),
                       (wanted & bit) ? EV_ADD : EV_DELETE, 0, reg);
            reg->slot |= RS__KQ_QUEUED;
        }
    }
    rs__kq_set_wanted(reg, wanted);
    return RS_OK;
}

/* Apply one filter change now; the kernel's error, mapped. */
static int rs__kq_change_now(rs__kqueue_t *k, rs__io_registration_t *reg, unsigned bit, unsigned flags) {
    struct kevent kev;
    rs__kq_set(&kev, (uintptr_t)reg->fd, rs__kq_filter_of(bit), flags, 0, reg);
    return kevent(k->kq, &kev, 1, NULL, 0, NULL) == 0 ? RS_OK : rs_result_from_errno(errno);
}

/* Take `reg` to `wanted` now, one filter at a time (a failed change in a batch
 * without room for its error would leave the rest unapplied); a failed add
 * undoes the adds before it, so the registration is as it was. */
static int rs__kq_apply_now(rs__kqueue_t *k, rs__io_registration_t *reg, unsigned wanted) {
    unsigned held = RS__KQ_HELD(reg->slot);
    unsigned added = 0;
    unsigned bit;
    for (bit = RS__KQ_READ; bit <= RS__KQ_WRITE; bit <<= 1) {
        int err;
        if (!((held ^ wanted) & bit)) {
            continue;
        }
        if (!(wanted & bit)) {
            rs__kq_change_now(k, reg, bit, EV_DELETE); /* ENOENT: already gone; nothing to undo */
            held &= ~bit;
            continue;
        }
        err = rs__kq_change_now(k, reg, bit, EV_ADD);
        if (err) {
            for (bit = RS__KQ_READ; bit <= RS__KQ_WRITE; bit <<= 1) {
                if (added & bit) {
                    rs__kq_change_now(k, reg, bit, EV_DELETE);
                    held &= ~bit;
                }
            }
            rs__kq_set_held(reg, held);
            rs__kq_set_wanted(reg, held);
            return err;
        }
        added |= bit;
        held |= bit;
    }
    rs__kq_set_held(reg, held);
    rs__kq_set_wanted(reg, held);
    return RS_OK;
}

/* A change the core deferred to the tick's end is queued; a direct one is
 * applied now, unless earlier changes of this registration are still queued,
 * which it must not overtake. */
static int rs__kq_change(rs_event_loop_t *loop, rs__io_registration_t *reg, int events) {
    rs__kqueue_t *k = (rs__kqueue_t *)rs__backend_data(loop);
    unsigned wanted = rs__kq_filters(events);
    if (loop->applying_deferred_interest || (reg->slot & RS__KQ_QUEUED)) {
        return rs__kq_queue(loop, k, reg, wanted);
    }
    return rs__kq_apply_now(k, reg, wanted);
}

static int rs__kq_add(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    rs__kqueue_t *k = (rs__kqueue_t *)rs__backend_data(loop);
    int err = rs__fd_owners_claim(&loop->allocator, &k->owners, reg);
    if (err) {
        return err;
    }
    err = rs__kq_change(loop, reg, reg->events);
    if (err) {
        rs__fd_owners_release(&k->owners, reg);
    }
    return err;
}

static int rs__kq_modify(rs_event_loop_t *loop, rs__io_registration_t *reg, int events) {
    return rs__kq_change(loop, reg, events);
}

/* Drop the queued changes that name `reg`: it is going away before the next wait. */
static void rs__kq_unqueue(rs__kqueue_t *k, const rs__io_registration_t *reg) {
    size_t i;
    size_t kept = 0;
    for (i = 0; i < k->change_count; ++i) {
        if (rs__kq_reg(&k->changes[i]) != reg) {
            k->changes[kept++] = k->changes[i];
        }
    }
    k->change_count = kept;
}

static void rs__kq_remove(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    rs__kqueue_t *k = (rs__kqueue_t *)rs__backend_data(loop);
    unsigned held = RS__KQ_HELD(reg->slot);
    unsigned bit;
    if (reg->slot & RS__KQ_QUEUED) {
        rs__kq_unqueue(k, reg);
    }
    /* What the kernel holds is deleted now. Errors are harmless: a caller that
     * already closed the fd had its knotes dropped by the kernel (EBADF). */
    for (bit = RS__KQ_READ; bit <= RS__KQ_WRITE; bit <<= 1) {
        if (held & bit) {
            rs__kq_change_now(k, reg, bit, EV_DELETE);
        }
    }
    rs__fd_owners_release(&k->owners, reg);
    reg->slot = 0;
}

/* The queued changes are about to reach the kernel: the filters each
 * registration holds are now the ones it wanted. A failed add is undone when
 * its error comes back. */
static void rs__kq_mark_submitted(rs__kqueue_t *k) {
    size_t i;
    for (i = 0; i < k->change_count; ++i) {
        rs__io_registration_t *reg = rs__kq_reg(&k->changes[i]);
        rs__kq_set_held(reg, RS__KQ_WANTED(reg->slot));
        reg->slot &= ~(size_t)RS__KQ_QUEUED;
    }
}

/* A queued change the kernel refused. ENOENT is a delete of a knote already
 * gone; anything else was an add, which the registration does not hold. */
static bool rs__kq_note_refused(struct kevent *kev) {
    rs__io_registration_t *reg = rs__kq_reg(kev);
    unsigned bit = kev->filter == EVFILT_READ ? RS__KQ_READ : RS__KQ_WRITE;
    if (!reg || kev->data == 0 || kev->data == ENOENT) {
        return false;
    }
    rs__kq_set_held(reg, RS__KQ_HELD(reg->slot) & ~bit);
    rs__kq_set_wanted(reg, RS__KQ_WANTED(reg->slot) & ~bit);
    reg->error = rs_result_from_errno((int)kev->data);
    RS__LOG_ERROR(RS_LS_EVENT_LOOP, "kqueue: fd %d refused: %s", reg->fd, rs_strerror(reg->error));
    return true;
}

static void rs__kq_wait(rs_event_loop_t *loop, int timeout_ms) {
    rs__kqueue_t *k = (rs__kqueue_t *)rs__backend_data(loop);
    uint64_t deadline_ns = rs__wait_deadline_ns(timeout_ms);
    size_t change_count = k->change_count;
    int n;
    int i;
    rs__kq_mark_submitted(k);
    for (;;) {
        struct timespec ts;
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        n = kevent(k->kq, k->changes, (int)change_count, k->ready, (int)k->ready_capacity, timeout_ms < 0 ? NULL : &ts);
        if (n >= 0 || errno != EINTR) {
            break;
        }
        /* The changes were applied before the wait began: not again. */
        change_count = 0;
        timeout_ms = rs__wait_left_ms(deadline_ns, timeout_ms);
    }
    k->change_count = 0;
    if (n < 0) {
        RS__LOG_ERROR(RS_LS_EVENT_LOOP, "kevent failed: %s (errno %d)", strerror(errno), errno);
        n = 0;
    }
    for (i = 0; i < n; ++i) {
        if ((k->ready[i].flags & EV_ERROR) && !rs__kq_note_refused(&k->ready[i])) {
            k->ready[i].filter = 0; /* nothing to report: dispatch skips it */
        }
    }
    k->ready_count = n;
}

static int rs__kq_ready_events(const struct kevent *kev) {
    int events = kev->filter == EVFILT_READ ? RS_IO_READABLE : RS_IO_WRITABLE;
    if (kev->flags & EV_ERROR) {
        return RS_IO_ERROR; /* a refused change (rs__kq_note_refused) */
    }
    /* EV_EOF comes with the data still unread (kev->data bytes): the owner
     * reads it all before it sees the end of the stream, as with EPOLLHUP. */
    if (kev->flags & EV_EOF) {
        events |= RS_IO_HANGUP;
        if (kev->fflags) {
            events |= RS_IO_ERROR; /* fflags holds the socket error */
        }
    }
    return events;
}

static void rs__kq_dispatch(rs_event_loop_t *loop) {
    rs__kqueue_t *k = (rs__kqueue_t *)rs__backend_data(loop);
    int i;
    for (i = 0; i < k->ready_count; ++i) {
        const struct kevent *kev = &k->ready[i];
        rs__io_registration_t *reg = rs__kq_reg(kev);
        if (kev->filter != EVFILT_READ && kev->filter != EVFILT_WRITE) {
            continue; /* the EVFILT_USER wakeup (EV_CLEAR resets it), or a skipped error */
        }
        if (!reg) {
            rs__drain_fd(k->wake_read_fd); /* the self-pipe */
            continue;
        }
        /* FreeBSD and macOS leave SO_ERROR set when they report it in fflags;
         * libkqueue reads (and so clears) it: the socket layer asks for this. */
        reg->os_error = (kev->flags & EV_EOF) ? (int)kev->fflags : 0;
        rs__registration_dispatch(loop, reg, rs__kq_ready_events(kev));
    }
    k->ready_count = 0;
}

static bool rs__kq_wake(rs_event_loop_t *loop) {
    rs__kqueue_t *k = (rs__kqueue_t *)rs__backend_data(loop);
#ifdef EVFILT_USER
    struct kevent kev;
    rs__kq_set(&kev, RS__KQ_WAKE_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, NULL);
    return kevent(k->kq, &kev, 1, NULL, 0, NULL) == 0;
#else
    uint8_t one = 1;
    /* EAGAIN: the pipe is full of unread wakeups, so the loop will wake anyway. */
    return write(k->wake_write_fd, &one, 1) == 1 || errno == EAGAIN;
#endif
}

static int rs__kq_get_fd(const rs_event_loop_t *loop, int *fd_out) {
    const rs__kqueue_t *k = (const rs__kqueue_t *)rs__backend_data(loop);
    *fd_out = k->kq;
    return RS_OK;
}

static const rs__backend_vtable_t rs__kqueue_vtable = {
    RS_EVENT_LOOP_BACKEND_KQUEUE, rs__kq_init,   rs__kq_cleanup, rs__kq_wait,
    rs__kq_dispatch,              rs__kq_add,    rs__kq_modify,  rs__kq_remove,
    rs__kq_wake,                  rs__kq_get_fd, NULL, true, /* deferred changes ride on the next wait's kevent call */
};

#endif /* RESEAU_HAVE_KQUEUE */
