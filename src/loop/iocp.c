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
 *
 * Embedding (rs_event_loop_get_wait_handle). A host loop wants one HANDLE to
 * wait on next to its window messages, but a completion port is not a
 * documented waitable object. So the first call starts a watcher thread, the
 * only documented way to learn of a packet without the loop thread blocking
 * in the port:
 *   - the watcher takes ONE packet from the port with
 *     GetQueuedCompletionStatusEx, keeps its OVERLAPPED_ENTRY in `held`, and
 *     sets `ready_event` (a manual-reset event: the handle the host gets);
 *   - it then sleeps on `rearm_event` until the loop has taken `held`;
 *   - the loop's wait, while the watcher exists, never waits in the port: it
 *     waits on `ready_event` (WaitForSingleObject, with its usual timeout),
 *     puts `held` first in its batch, takes what else is queued without
 *     blocking, resets `ready_event`, and only then sets `rearm_event`.
 * Why this and not re-posting the packet with PostQueuedCompletionStatus:
 * the held packet goes first in the batch, ahead of the packets that came
 * after it, so the order of completions is the port's order, as without a
 * watcher; and nothing is copied back into the kernel. The loop thread and
 * the watcher never wait in the port at the same time, so no packet can go
 * to one while the other is the one to be woken. Status needs no care: the
 * NTSTATUS stays in the op's OVERLAPPED.Internal, written by the kernel
 * before the packet was queued, and SetEvent / WaitForSingleObject order the
 * memory between the threads. The cost is two thread switches per batch,
 * only on loops that asked for the handle. Destroy sets `watcher_quit`, sets
 * `rearm_event` and posts a RS__IOCP_QUIT_KEY packet (whichever the watcher
 * is blocked on), joins it, and dispatches a packet still held before it
 * drains the rest, so none is lost.
 */
#if RESEAU_OS_WINDOWS

/* Packets taken per wait; more stay queued in the port for the next tick. */
#define RS__IOCP_MAX_ENTRIES 256

/* The completion key of wakeup packets. Handles associated with the port
 * carry RS__IOCP_OP_KEY, so a packet with this one is always a wakeup. */
#define RS__IOCP_WAKE_KEY ((ULONG_PTR)0)
#define RS__IOCP_OP_KEY ((ULONG_PTR)1)
/* Posted (without an OVERLAPPED) to end the embedding watcher's wait. */
#define RS__IOCP_QUIT_KEY ((ULONG_PTR)2)
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
    size_t recv_bufs;   /* owned receive buffers of the loop's sockets (net/socket_win.c) */
    ULONG ready_count;
    OVERLAPPED_ENTRY ready[RS__IOCP_MAX_ENTRIES];

    /* The embedding watcher (see the top of this file); all unset until
     * rs_event_loop_get_wait_handle. `watching` is read by the loop thread
     * only, and set on it. */
    bool watching;
    HANDLE ready_event;     /* manual-reset: set while `held` waits for the loop */
    HANDLE rearm_event;     /* auto-reset: the loop took `held`; watch again */
    int watcher_quit;       /* atomic: destroy is stopping the watcher */
    OVERLAPPED_ENTRY held;  /* written by the watcher, read by the loop after ready_event */
    rs_thread_t watcher;
} rs__iocp_t;

static int rs__iocp_init(rs_event_loop_t *loop) {
    rs__iocp_t *iocp = (rs__iocp_t *)rs_mem_calloc(&loop->allocator, 1, sizeof(rs__iocp_t));
    if (!iocp) {
        return RS_ENOMEM;
    }
    /* The loop's thread waits on the port, or the embedding watcher does for
     * it. They never wait at once, but the watcher may not yet have blocked
     * again when the loop takes the rest of a batch: concurrency 2, so that
     * it still counts as running then does not hold the loop's take back. */
    iocp->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 2);
    if (!iocp->port) {
        DWORD os_error = GetLastError();
        RS__LOG_ERROR(RS_LS_EVENT_LOOP, "CreateIoCompletionPort failed (error %lu)", (unsigned long)os_error);
        rs_mem_free(&loop->allocator, iocp);
        return rs__result_from_win32((uint32_t)os_error);
    }
    loop->backend_data = iocp;
    return RS_OK;
}

static void rs__iocp_dispatch_ops(rs_event_loop_t *loop, rs__iocp_t *iocp);

/* The loop's sockets were closed (their operations canceled): take the last
 * packets, so that no operation is left writing into freed memory. */
static void rs__iocp_drain_pending(rs_event_loop_t *loop, rs__iocp_t *iocp) {
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
        rs__iocp_dispatch_ops(loop, iocp);
    }
}

static void rs__iocp_watch_stop(rs_event_loop_t *loop, rs__iocp_t *iocp);

static void rs__iocp_cleanup(rs_event_loop_t *loop) {
    rs__iocp_t *iocp = (rs__iocp_t *)rs__backend_data(loop);
    if (iocp->watching) {
        rs__iocp_watch_stop(loop, iocp);
    }
    rs__iocp_drain_pending(loop, iocp);
    CloseHandle(iocp->port);
    rs_mem_free(&loop->allocator, iocp);
    loop->backend_data = NULL;
}

/* Take up to the room left in `ready` after `first` entries, waiting at most
 * `timeout`; the number taken. */
static ULONG rs__iocp_take(rs__iocp_t *iocp, ULONG first, DWORD timeout) {
    ULONG n = 0;
    /* Not alertable: no APC runs inside the wait, so it ends only by a packet
     * or the timeout, and never needs resuming as an EINTR'd wait does. */
    if (!GetQueuedCompletionStatusEx(iocp->port, iocp->ready + first, RS__IOCP_MAX_ENTRIES - first, &n, timeout,
                                     FALSE)) {
        DWORD os_error = GetLastError();
        if (os_error != WAIT_TIMEOUT) {
            RS__LOG_ERROR(RS_LS_EVENT_LOOP, "GetQueuedCompletionStatusEx failed (error %lu)", (unsigned long)os_error);
        }
        n = 0;
    }
    return n;
}

/* The wait while the watcher exists: the watcher's packet, then what else is
 * queued, without blocking in the port (see the top of this file). */
static ULONG rs__iocp_take_watched(rs__iocp_t *iocp, DWORD timeout) {
    ULONG n;
    DWORD r = WaitForSingleObject(iocp->ready_event, timeout);
    if (r != WAIT_OBJECT_0) {
        if (r != WAIT_TIMEOUT) {
            RS__LOG_ERROR(RS_LS_EVENT_LOOP, "waiting for the watcher failed (error %lu)", (unsigned long)GetLastError());
        }
        return 0;
    }
    iocp->ready[0] = iocp->held;
    n = 1 + rs__iocp_take(iocp, 1, 0);
    /* Reset before rearming: a packet the watcher takes next sets it again. */
    ResetEvent(iocp->ready_event);
    SetEvent(iocp->rearm_event);
    return n;
}

static void rs__iocp_wait(rs_event_loop_t *loop, int timeout_ms) {
    rs__iocp_t *iocp = (rs__iocp_t *)rs__backend_data(loop);
    DWORD timeout = timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms;
    ULONG i;
    ULONG n = iocp->watching ? rs__iocp_take_watched(iocp, timeout) : rs__iocp_take(iocp, 0, timeout);
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
static void rs__iocp_dispatch_ops(rs_event_loop_t *loop, rs__iocp_t *iocp) {
    ULONG i;
    ULONG n = iocp->ready_count;
    iocp->ready_count = 0;
    for (i = 0; i < n; ++i) {
        OVERLAPPED_ENTRY *entry = &iocp->ready[i];
        rs__iocp_op_t *op;
        if (entry->lpCompletionKey != RS__IOCP_OP_KEY || !entry->lpOverlapped) {
            continue;
        }
        op = RS_CONTAINER_OF(entry->lpOverlapped, rs__iocp_op_t, ov);
        op->pending = false;
        --iocp->pending_ops;
        rs__trace(RS_TRACE_IO_DISPATCH, loop, op, "io_op", 0, 0);
        op->fn(op, rs__result_from_ntstatus((uint32_t)op->ov.Internal), (size_t)entry->dwNumberOfBytesTransferred);
    }
}

static void rs__iocp_dispatch(rs_event_loop_t *loop) {
    rs__iocp_dispatch_ops(loop, (rs__iocp_t *)rs__backend_data(loop));
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

/* The count of owned receive buffers the loop's sockets hold, which
 * net/socket_win.c keeps under a limit per loop. */
static size_t *rs__iocp_recv_bufs(rs_event_loop_t *loop) {
    return &((rs__iocp_t *)rs__backend_data(loop))->recv_bufs;
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
     * waited on by anyone but its own waiters: see get_wait_handle. */
    (void)loop;
    (void)fd_out;
    return RS_ENOTSUP;
}

/* How long the watcher pauses after the port refused a wait, which only a
 * broken port does (a failed operation still dequeues fine): enough not to
 * spin, short enough not to matter if it ever recovers. */
#define RS__IOCP_WATCH_RETRY_NS (10 * RS_NS_PER_MS)

/* The watcher thread: one packet at a time, handed to the loop. */
static void rs__iocp_watcher_main(void *arg) {
    rs__iocp_t *iocp = (rs__iocp_t *)arg;
    for (;;) {
        OVERLAPPED_ENTRY entry;
        ULONG n = 0;
        WaitForSingleObject(iocp->rearm_event, INFINITE);
        if (rs__atomic_load_int(&iocp->watcher_quit)) {
            return;
        }
        while (!GetQueuedCompletionStatusEx(iocp->port, &entry, 1, &n, INFINITE, FALSE) || n != 1) {
            RS__LOG_ERROR(RS_LS_EVENT_LOOP, "iocp watcher: GetQueuedCompletionStatusEx failed (error %lu)",
                          (unsigned long)GetLastError());
            rs_thread_sleep_ns(RS__IOCP_WATCH_RETRY_NS);
        }
        if (entry.lpCompletionKey == RS__IOCP_QUIT_KEY) {
            return;
        }
        iocp->held = entry;
        SetEvent(iocp->ready_event);
    }
}

static void rs__iocp_close_events(rs__iocp_t *iocp) {
    if (iocp->ready_event) {
        CloseHandle(iocp->ready_event);
        iocp->ready_event = NULL;
    }
    if (iocp->rearm_event) {
        CloseHandle(iocp->rearm_event);
        iocp->rearm_event = NULL;
    }
}

static int rs__iocp_watch_start(rs__iocp_t *iocp) {
    rs_thread_options_t options;
    int err;
    iocp->ready_event = CreateEventW(NULL, TRUE, FALSE, NULL);  /* manual-reset, clear */
    iocp->rearm_event = CreateEventW(NULL, FALSE, TRUE, NULL);  /* auto-reset, set: watch at once */
    if (!iocp->ready_event || !iocp->rearm_event) {
        DWORD os_error = GetLastError();
        RS__LOG_ERROR(RS_LS_EVENT_LOOP, "CreateEvent failed (error %lu)", (unsigned long)os_error);
        err = rs__result_from_win32((uint32_t)os_error);
        goto fail;
    }
    rs__atomic_store_int(&iocp->watcher_quit, 0);
    options.name = "rs-iocp-watch";
    options.stack_size = 0;
    err = rs_thread_launch(&iocp->watcher, rs__iocp_watcher_main, iocp, &options);
    if (err) {
        goto fail;
    }
    iocp->watching = true;
    return RS_OK;

fail:
    rs__iocp_close_events(iocp);
    return err;
}

/* Destroy: end the watcher whether it waits in the port or on rearm_event,
 * join it, and dispatch the packet it still holds, if any. */
static void rs__iocp_watch_stop(rs_event_loop_t *loop, rs__iocp_t *iocp) {
    bool logged = false;
    rs__atomic_store_int(&iocp->watcher_quit, 1);
    SetEvent(iocp->rearm_event);
    /* A port refuses a post only when out of memory: keep trying, since
     * without the packet the watcher never returns from the port. */
    while (!PostQueuedCompletionStatus(iocp->port, 0, RS__IOCP_QUIT_KEY, NULL)) {
        if (!logged) {
            RS__LOG_ERROR(RS_LS_EVENT_LOOP, "cannot post the watcher's quit packet (error %lu); retrying",
                          (unsigned long)GetLastError());
            logged = true;
        }
        rs_thread_sleep_ns(RS__IOCP_WATCH_RETRY_NS);
    }
    rs_thread_join(&iocp->watcher);
    iocp->watching = false;
    /* Still set: the loop never took `held`. Its op may be one the destroy
     * canceled, and it counts in pending_ops like any other. The quit packet,
     * if the watcher did not take it, is skipped by its key. */
    if (WaitForSingleObject(iocp->ready_event, 0) == WAIT_OBJECT_0) {
        iocp->ready[0] = iocp->held;
        iocp->ready_count = 1;
        rs__iocp_dispatch_ops(loop, iocp);
    }
    rs__iocp_close_events(iocp);
}

static int rs__iocp_get_wait_handle(rs_event_loop_t *loop, void **handle_out) {
    rs__iocp_t *iocp = (rs__iocp_t *)rs__backend_data(loop);
    if (!iocp->watching) {
        int err = rs__iocp_watch_start(iocp);
        if (err) {
            return err;
        }
    }
    *handle_out = (void *)iocp->ready_event;
    return RS_OK;
}

static const rs__backend_vtable_t rs__iocp_vtable = {
    RS_EVENT_LOOP_BACKEND_IOCP, rs__iocp_init,   rs__iocp_cleanup, rs__iocp_wait,
    rs__iocp_dispatch,          rs__iocp_add,    rs__iocp_modify,  rs__iocp_remove,
    rs__iocp_wake,              rs__iocp_get_fd, rs__iocp_get_wait_handle,
    false, /* there is nothing to defer */
};

#endif /* RESEAU_OS_WINDOWS */
