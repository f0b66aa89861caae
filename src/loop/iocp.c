/*
 * IOCP backend (Windows): the loop waits on an I/O completion port with
 * GetQueuedCompletionStatusEx, taking up to RS__IOCP_MAX_ENTRIES packets per
 * wait, and other threads wake it by posting a packet to the port.
 *
 * A completion port reports finished operations, not readiness, so the fd
 * subscriptions of the readiness backends have no counterpart here:
 * subscribing returns RS_ENOTSUP. Sockets (net/socket_win.c) associate their
 * handle with the port (rs__iocp_associate) and start overlapped operations
 * wrapped in an rs__iocp_op_t; each packet that comes back runs its op's
 * function on the loop thread, with the status read from the OVERLAPPED.
 *
 * An op's memory belongs to the kernel from the moment the operation is
 * started until its packet is dequeued, even after CancelIoEx: `pending`
 * says which, and an owner frees nothing while it holds a pending op. The
 * port counts pending ops, so that destroying the loop can wait for the
 * packets of operations its sockets canceled.
 */
#if RESEAU_OS_WINDOWS

/* Packets taken per wait; more stay queued in the port for the next tick. */
#define RS__IOCP_MAX_ENTRIES 256

/* The completion key of wakeup packets. Handles associated with the port
 * carry RS__IOCP_OP_KEY, so a packet with this one is always a wakeup. */
#define RS__IOCP_WAKE_KEY ((ULONG_PTR)0)
#define RS__IOCP_OP_KEY ((ULONG_PTR)1)
/* How long destroying a loop waits for the packets of canceled operations.
 * CancelIoEx completes them at once on a closed socket; the bound only keeps
 * a misbehaving driver from hanging the destroy (the memory is then leaked
 * on purpose rather than freed under the kernel). */
#define RS__IOCP_DRAIN_TIMEOUT_MS 5000

typedef struct rs__iocp_op rs__iocp_op_t;
/* An operation finished: `status` is RS_OK or the RS_Exxx code of the
 * NTSTATUS it ended with, `bytes` what it transferred. Runs on the loop
 * thread, or inside the loop's destroy (the op's owner is closed by then). */
typedef void rs__iocp_op_fn(rs__iocp_op_t *op, int status, size_t bytes);

/* An overlapped operation. Embedded in its owner; `ov` must not be touched
 * while pending. */
struct rs__iocp_op {
    OVERLAPPED ov;
    rs__iocp_op_fn *fn;
    bool pending;
};

typedef struct rs__iocp {
    HANDLE port;
    /* atomic: 1 from a posted wakeup packet until the loop dequeues it, so a
     * burst of wakes posts one packet rather than filling the port. */
    int wake_posted;
    size_t pending_ops; /* started operations whose packet has not been dispatched */
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

static void rs__iocp_dispatch_ops(rs__iocp_t *iocp);

/* The loop's sockets were closed (their operations canceled): take the last
 * packets, so that no operation is left writing into freed memory. */
static void rs__iocp_drain_pending(rs__iocp_t *iocp) {
    ULONGLONG deadline = GetTickCount64() + RS__IOCP_DRAIN_TIMEOUT_MS;
    while (iocp->pending_ops > 0) {
        ULONGLONG now = GetTickCount64();
        ULONG n = 0;
        if (now >= deadline) {
            RS__LOG_ERROR(RS_LS_EVENT_LOOP, "iocp: %lu operations never completed; their memory is leaked",
                          (unsigned long)iocp->pending_ops);
            return;
        }
        if (!GetQueuedCompletionStatusEx(iocp->port, iocp->ready, RS__IOCP_MAX_ENTRIES, &n, (DWORD)(deadline - now),
                                         FALSE)) {
            n = 0;
        }
        iocp->ready_count = n;
        rs__iocp_dispatch_ops(iocp);
    }
}

static void rs__iocp_cleanup(rs_event_loop_t *loop) {
    rs__iocp_t *iocp = (rs__iocp_t *)rs__backend_data(loop);
    rs__iocp_drain_pending(iocp);
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

/* Run each dequeued operation's function. Wakeup packets carry no work: the
 * core drains its queue next. The batch is read before any function runs
 * only through the entries themselves, and an op stays pending (its owner
 * alive) until its own entry is reached. */
static void rs__iocp_dispatch_ops(rs__iocp_t *iocp) {
    ULONG i;
    ULONG n = iocp->ready_count;
    iocp->ready_count = 0;
    for (i = 0; i < n; ++i) {
        OVERLAPPED_ENTRY *entry = &iocp->ready[i];
        rs__iocp_op_t *op;
        if (entry->lpCompletionKey == RS__IOCP_WAKE_KEY || !entry->lpOverlapped) {
            continue;
        }
        op = RS_CONTAINER_OF(entry->lpOverlapped, rs__iocp_op_t, ov);
        op->pending = false;
        --iocp->pending_ops;
        op->fn(op, rs__result_from_ntstatus((uint32_t)op->ov.Internal), (size_t)entry->dwNumberOfBytesTransferred);
    }
}

static void rs__iocp_dispatch(rs_event_loop_t *loop) {
    rs__iocp_dispatch_ops((rs__iocp_t *)rs__backend_data(loop));
}

/* Whether the loop runs on a completion port (the sockets need one). */
static bool rs__iocp_loop_has_port(const rs_event_loop_t *loop) {
    return rs_event_loop_get_backend(loop) == RS_EVENT_LOOP_BACKEND_IOCP;
}

/* Route the completions of `handle` to the loop's port. A handle joins one
 * port for life. RS_ENOTSUP on a loop without one. */
static int rs__iocp_associate(rs_event_loop_t *loop, HANDLE handle) {
    rs__iocp_t *iocp;
    if (!rs__iocp_loop_has_port(loop)) {
        return RS_ENOTSUP;
    }
    iocp = (rs__iocp_t *)rs__backend_data(loop);
    if (!CreateIoCompletionPort(handle, iocp->port, RS__IOCP_OP_KEY, 0)) {
        DWORD os_error = GetLastError();
        RS__LOG_ERROR(RS_LS_EVENT_LOOP, "cannot associate a handle with the port (error %lu)", (unsigned long)os_error);
        return rs__result_from_win32((uint32_t)os_error);
    }
    return RS_OK;
}

/* Ready `op` to be handed to an overlapped call. */
static void rs__iocp_op_init(rs__iocp_op_t *op, rs__iocp_op_fn *fn) {
    memset(op, 0, sizeof(*op));
    op->fn = fn;
}

/* The overlapped call for `op` was made: call this when it returned success
 * or ERROR_IO_PENDING (a packet will come either way, since no handle skips
 * the port on success), never when it failed at once. */
static void rs__iocp_op_started(rs_event_loop_t *loop, rs__iocp_op_t *op) {
    rs__iocp_t *iocp = (rs__iocp_t *)rs__backend_data(loop);
    op->pending = true;
    ++iocp->pending_ops;
}

/* Clear the OVERLAPPED before reuse: the kernel reads its offsets and event. */
static OVERLAPPED *rs__iocp_op_overlapped(rs__iocp_op_t *op) {
    memset(&op->ov, 0, sizeof(op->ov));
    return &op->ov;
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
