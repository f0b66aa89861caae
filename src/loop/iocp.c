/*
 * IOCP backend (Windows): the loop waits on an I/O completion port with
 * GetQueuedCompletionStatusEx, taking up to RS__IOCP_MAX_ENTRIES packets per
 * wait, and other threads wake it by posting a packet to the port.
 *
 * A completion port reports finished operations, not readiness, so the fd
 * subscriptions of the readiness backends have no counterpart here:
 * subscribing returns RS_ENOTSUP. Sockets will hand the port their overlapped
 * operations instead (issue 13, net/socket_win.c); until then only tasks,
 * timers, asyncs and cross-thread wakeups run on this backend.
 */
#if RESEAU_OS_WINDOWS

/* Packets taken per wait; more stay queued in the port for the next tick. */
#define RS__IOCP_MAX_ENTRIES 256

/* The completion key of wakeup packets. Overlapped operations will carry
 * their own key (never 0), so a packet with this one is always a wakeup. */
#define RS__IOCP_WAKE_KEY ((ULONG_PTR)0)

typedef struct rs__iocp {
    HANDLE port;
    /* atomic: 1 from a posted wakeup packet until the loop dequeues it, so a
     * burst of wakes posts one packet rather than filling the port. */
    int wake_posted;
    ULONG ready_count;
    OVERLAPPED_ENTRY ready[RS__IOCP_MAX_ENTRIES];
} rs__iocp_t;

static int rs__iocp_init(rs_event_loop_t *loop) {
    rs__iocp_t *iocp = (rs__iocp_t *)rs_mem_calloc(&loop->allocator, 1, sizeof(rs__iocp_t));
    if (!iocp) {
        return RS_ENOMEM;
    }
    /* One thread (the loop's) ever waits on the port: concurrency 1. */
    iocp->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (!iocp->port) {
        DWORD os_error = GetLastError();
        RS__LOG_ERROR(RS_LS_EVENT_LOOP, "CreateIoCompletionPort failed (error %lu)", (unsigned long)os_error);
        rs_mem_free(&loop->allocator, iocp);
        return rs__result_from_win32((uint32_t)os_error);
    }
    loop->backend_data = iocp;
    return RS_OK;
}

static void rs__iocp_cleanup(rs_event_loop_t *loop) {
    rs__iocp_t *iocp = (rs__iocp_t *)rs__backend_data(loop);
    CloseHandle(iocp->port);
    rs_mem_free(&loop->allocator, iocp);
    loop->backend_data = NULL;
}

static void rs__iocp_wait(rs_event_loop_t *loop, int timeout_ms) {
    rs__iocp_t *iocp = (rs__iocp_t *)rs__backend_data(loop);
    ULONG i;
    ULONG n = 0;
    /* Not alertable: no APC runs inside the wait, so it ends only by a packet
     * or the timeout, and never needs resuming as an EINTR'd wait does. */
    if (!GetQueuedCompletionStatusEx(iocp->port, iocp->ready, RS__IOCP_MAX_ENTRIES, &n,
                                     timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms, FALSE)) {
        DWORD os_error = GetLastError();
        if (os_error != WAIT_TIMEOUT) {
            RS__LOG_ERROR(RS_LS_EVENT_LOOP, "GetQueuedCompletionStatusEx failed (error %lu)", (unsigned long)os_error);
        }
        n = 0;
    }
    /* Rearm the wakeup before the core drains its cross-thread queue (after
     * dispatch): a push that comes after the drain must post a new packet. */
    for (i = 0; i < n; ++i) {
        if (iocp->ready[i].lpCompletionKey == RS__IOCP_WAKE_KEY) {
            rs__atomic_store_int(&iocp->wake_posted, 0);
        }
    }
    iocp->ready_count = n;
}

static void rs__iocp_dispatch(rs_event_loop_t *loop) {
    rs__iocp_t *iocp = (rs__iocp_t *)rs__backend_data(loop);
    /* Wakeup packets are the only ones so far, and they carry no work: the
     * core drains its queue next. */
    iocp->ready_count = 0;
}

static int rs__iocp_add(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    (void)loop;
    (void)reg;
    return RS_ENOTSUP;
}

static int rs__iocp_modify(rs_event_loop_t *loop, rs__io_registration_t *reg, int events) {
    (void)loop;
    (void)reg;
    (void)events;
    return RS_ENOTSUP;
}

static void rs__iocp_remove(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    /* add never succeeds, so nothing is ever held. */
    (void)loop;
    (void)reg;
}

static bool rs__iocp_wake(rs_event_loop_t *loop) {
    rs__iocp_t *iocp = (rs__iocp_t *)rs__backend_data(loop);
    if (rs__atomic_exchange_int(&iocp->wake_posted, 1)) {
        return true; /* a packet is already queued: the loop will wake anyway */
    }
    if (!PostQueuedCompletionStatus(iocp->port, 0, RS__IOCP_WAKE_KEY, NULL)) {
        rs__atomic_store_int(&iocp->wake_posted, 0); /* let the retry post again */
        return false;
    }
    return true;
}

static int rs__iocp_get_fd(const rs_event_loop_t *loop, int *fd_out) {
    /* A completion port is a HANDLE, not a file descriptor, and it cannot be
     * waited on by anyone but its own waiters. */
    (void)loop;
    (void)fd_out;
    return RS_ENOTSUP;
}

static const rs__backend_vtable_t rs__iocp_vtable = {
    RS_EVENT_LOOP_BACKEND_IOCP, rs__iocp_init,   rs__iocp_cleanup, rs__iocp_wait,
    rs__iocp_dispatch,          rs__iocp_add,    rs__iocp_modify,  rs__iocp_remove,
    rs__iocp_wake,              rs__iocp_get_fd, false, /* there is nothing to defer */
};

#endif /* RESEAU_OS_WINDOWS */
