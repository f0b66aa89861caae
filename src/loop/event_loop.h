/*
 * Event loop.
 *
 * One rs_event_loop_t multiplexes I/O readiness and runs tasks, on one thread
 * at a time: either a thread it owns (rs_event_loop_start / stop / wait) or the
 * caller's thread (rs_event_loop_run_once, for game engines, GUIs, firmware).
 * That thread is "the loop thread". Every callback runs on it, never inline in
 * the call that registered it.
 *
 * One tick: (1) wait for I/O, at most until the next task is due; (2) dispatch
 * I/O callbacks; (3) drain the cross-thread task queue; (4) run the tasks that
 * are due. A task scheduled during a tick runs on the next tick.
 *
 * Threads: functions marked "any thread" are thread-safe. All others must be
 * called on the loop thread; elsewhere they return RS_EWRONGTHREAD and log.
 * Before the loop first runs, the thread that created it counts as the loop
 * thread, so set-up code may subscribe before starting it.
 *
 * Readiness is level-triggered: a handle subscribed for WRITABLE is reported on
 * every tick while it stays writable, so subscribe to what you currently need
 * (rs_event_loop_update_subscription) and unsubscribe on hang-up.
 */
typedef struct rs_event_loop rs_event_loop_t;

typedef enum rs_event_loop_backend {
    RS_EVENT_LOOP_BACKEND_DEFAULT = 0, /* the best for this OS: epoll on Linux, kqueue on macOS and the BSDs, IOCP on
                                        * Windows, poll elsewhere */
    RS_EVENT_LOOP_BACKEND_EPOLL = 1,   /* Linux */
    RS_EVENT_LOOP_BACKEND_POLL = 2,    /* any POSIX system; the portable fallback */
    RS_EVENT_LOOP_BACKEND_IO_URING = 3, /* Linux 5.19+, where io_uring is allowed; sockets on completions from 6.0,
                                         * on readiness polls before (see README) */
    RS_EVENT_LOOP_BACKEND_KQUEUE = 4,  /* macOS, the BSDs; elsewhere only with RESEAU_HAVE_KQUEUE (libkqueue) */
    RS_EVENT_LOOP_BACKEND_IOCP = 5,    /* Windows: sockets and pipes on completions; no fd subscriptions (RS_ENOTSUP) */
    RS_EVENT_LOOP_BACKEND_CUSTOM = 6   /* your own wait and wakeup (rs_event_loop_custom_backend_t); no fd
                                        * subscriptions or sockets (RS_ENOTSUP); any OS, and without one */
} rs_event_loop_backend_t;

/*
 * A backend of your own: the loop's wait and wakeup come from you, for a host
 * that has its own way to sleep (firmware: WFI until an interrupt or a timer;
 * a game engine's frame loop). The loop still owns tasks, timers and the
 * cross-thread queue; data reaches channels through handlers of yours at the
 * left end of the pipeline (rs_transport_handler_new), fed from `dispatch`.
 * Such a loop has no fd subscriptions: rs_event_loop_subscribe
 * and rs_event_loop_get_fd return RS_ENOTSUP, and so sockets cannot use it.
 *
 * Worked example: a Cortex-M main loop (single-threaded build) whose UART
 * interrupt fills a ring buffer that a transport handler feeds into a channel.
 *
 *     static volatile bool g_woken;
 *     static void fw_wait(void *u, int timeout_ms) {
 *         // Sleep until an interrupt, or until the next task is due.
 *         if (timeout_ms != 0 && !g_woken && ring_empty(&uart_rx)) {
 *             if (timeout_ms > 0) arm_timer_ms(timeout_ms);
 *             __WFI();
 *         }
 *         g_woken = false;
 *     }
 *     static bool fw_wake(void *u) { g_woken = true; return true; }
 *     static void fw_dispatch(void *u) {        // after each wait
 *         uint8_t b[64]; size_t n = ring_peek(&uart_rx, b, sizeof b), took = 0;
 *         if (n) {
 *             rs_transport_handler_deliver(uart_handler, rs_byte_cursor_from_array(b, n), &took);
 *             ring_drop(&uart_rx, took);         // the rest waits for the read window
 *         }
 *     }
 *     rs_event_loop_custom_backend_t fw = {fw_wait, fw_wake, fw_dispatch, NULL, NULL};
 *     rs_event_loop_options_t lo = {0};
 *     lo.custom_backend = &fw;
 *     rs_event_loop_t *loop = rs_event_loop_new(&lo, &err);
 *     ... a channel on `loop` with uart_handler (rs_transport_handler_new) first ...
 *     for (;;) rs_event_loop_run_once(loop, -1);   // wait, dispatch, run tasks
 */
typedef struct rs_event_loop_custom_backend {
    /* Return when `wake` is called (also if it was called before this wait
     * began: latch it), when data of yours arrives, or after timeout_ms
     * (negative: no limit; 0: do not block). The loop passes the time to its
     * next due task. Loop thread, once per tick. Required. */
    void (*wait)(void *user_data, int timeout_ms);
    /* Make the current or next wait return at once. Called from the thread
     * that schedules a task on the loop from off the loop thread, and from
     * rs_event_loop_stop (which may be called from a signal handler: then it
     * must be async-signal-safe). Return false if the wake could not be
     * sent: the loop then waits at most 10 ms at a time until a wake gets
     * through. Required. */
    bool (*wake)(void *user_data);
    /* After each wait, before due tasks run: poll your sources and feed
     * their channels (rs_transport_handler_deliver). Loop thread. Optional. */
    void (*dispatch)(void *user_data);
    /* rs_event_loop_destroy is done with the backend, after everything on
     * the loop has ended: free what user_data holds. Optional. */
    void (*destroy)(void *user_data);
    void *user_data; /* passed to each of the above */
} rs_event_loop_custom_backend_t;

typedef struct rs_event_loop_options {
    const rs_allocator_t *allocator;  /* copied (default: NULL, libc) */
    rs_event_loop_backend_t backend;  /* (default: DEFAULT, the best for this OS) */
    rs_clock_fn *clock_fn;            /* time source for timed tasks (default: NULL, rs_clock_now_ns) */
    void *clock_user_data;            /* passed to clock_fn (default: NULL) */
    const char *thread_name;          /* name of the thread rs_event_loop_start makes (default: "rs-loop") */
    size_t thread_stack_size;         /* bytes for that thread (default: 0, the OS default) */
    /* Copied: your own wait and wakeup; `backend` must then be DEFAULT or
     * CUSTOM (default: NULL, the OS backend named by `backend`). */
    const rs_event_loop_custom_backend_t *custom_backend;
} rs_event_loop_options_t;

/* Readiness bits. Subscribe with READABLE and/or WRITABLE; HANGUP and ERROR are
 * always reported and cannot be subscribed to on their own. */
typedef enum rs_io_event {
    RS_IO_READABLE = 1,
    RS_IO_WRITABLE = 2,
    RS_IO_HANGUP = 4,
    RS_IO_ERROR = 8
} rs_io_event_t;

/* An OS handle that can be subscribed. Caller-owned; `impl` belongs to the loop
 * while subscribed and is NULL otherwise. */
typedef struct rs_io_handle {
    int fd;
    void *impl;
} rs_io_handle_t;

/* `events` is a mask of rs_io_event_t bits. Runs on the loop thread. */
typedef void rs_io_event_fn(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data);

/* Counters for tests and diagnostics. */
typedef struct rs_event_loop_stats {
    uint64_t ticks;          /* completed ticks */
    uint64_t io_events;      /* I/O callbacks dispatched */
    uint64_t tasks_run;      /* task functions called (run or canceled), reseau's own included */
    uint64_t wakeups_sent;   /* writes to the wakeup handle (cross-thread wakes) */
    uint64_t xthread_tasks;  /* tasks that came through the cross-thread queue */
} rs_event_loop_stats_t;

/* Create a loop (NULL options mean defaults). NULL on failure with *err_out
 * (may be NULL) set: RS_ENOMEM, RS_ENOTSUP for a backend this build or OS
 * lacks, RS_EINVAL for a custom backend without wait or wake, with another
 * backend than DEFAULT or CUSTOM, or CUSTOM without one, or a mapped OS
 * error. Any thread. */
RESEAU_API rs_event_loop_t *rs_event_loop_new(const rs_event_loop_options_t *options, int *err_out);

/* Stop and join the loop's own thread if it runs one; the calling thread acts
 * as the loop thread from then on. Then, before anything is freed:
 *   1. every live channel on the loop is shut down abortively with
 *      RS_ECANCELED (its on_shutdown_completed fires once; bootstraps'
 *      on_shutdown and installers' callbacks follow as usual);
 *   2. every socket or pipe end still open is closed: a pending connect and
 *      queued writes complete with RS_ECANCELED, an accepting listener's
 *      on_accept and a reader's callback get RS_ECANCELED, each once;
 *   3. every pending task runs with RS_TASK_STATUS_CANCELED, and user
 *      subscriptions left behind are released.
 * Channels and sockets that their owners still hold afterwards are detached:
 * their only valid calls are rs_channel_destroy / rs_socket_destroy (and
 * channel holds), which then free them on the calling thread, and
 * rs_channel_get_loop returns NULL. Call from any thread except the loop's
 * own running thread, and never while run_once or rs_event_loop_run runs. */
RESEAU_API void rs_event_loop_destroy(rs_event_loop_t *loop);

RESEAU_API rs_event_loop_backend_t rs_event_loop_get_backend(const rs_event_loop_t *loop);
RESEAU_API const char *rs_event_loop_backend_name(rs_event_loop_backend_t backend);
/* Whether `backend` can be created on this OS and build (DEFAULT: always).
 * For io_uring the kernel is asked once (a throwaway ring): it may be too old,
 * or refused by the io_uring_disabled sysctl or a seccomp filter. */
RESEAU_API bool rs_event_loop_backend_is_available(rs_event_loop_backend_t backend);

/* Run the loop on a new thread. RS_EBUSY if it already runs (here or in
 * rs_event_loop_run), RS_ETHREAD if the
 * thread cannot start, RS_EINVAL for a NULL loop. Any thread.
 * RESEAU_NO_THREADS: RS_ENOTSUP (use rs_event_loop_run_once or _run). */
RESEAU_API int rs_event_loop_start(rs_event_loop_t *loop);
/* Ask the loop's own thread, or rs_event_loop_run, to return after its current
 * tick; returns at once. Harmless when repeated or when the loop is not
 * running (RS_OK); RS_EINVAL for a NULL loop. Any thread, and async-signal-
 * safe: it may be called from a signal handler (it uses int atomics and
 * write(2) only, and keeps errno). */
RESEAU_API int rs_event_loop_stop(rs_event_loop_t *loop);
/* Run the loop on the calling thread, which becomes the loop thread, until
 * rs_event_loop_stop (from a callback, another thread or a signal handler). A
 * stop requested before the call still lets it run one tick that does not
 * block; each stop ends one run. RS_OK when stopped; RS_EBUSY if the loop runs
 * on its own thread, or this thread is already inside a tick or a run;
 * RS_EWRONGTHREAD while another thread is; RS_EINVAL for a NULL loop. */
RESEAU_API int rs_event_loop_run(rs_event_loop_t *loop);
/* Join the loop's thread after rs_event_loop_stop. RS_OK if none runs;
 * RS_EDEADLK from the loop thread itself; RS_EINVAL for a NULL loop. The loop
 * may be started again. */
RESEAU_API int rs_event_loop_wait(rs_event_loop_t *loop);

/* Run one tick on the calling thread, which becomes the loop thread. Waits for
 * I/O at most timeout_ms (0: never block; negative: until I/O, a wakeup or the
 * next task is due). RS_EBUSY if the loop runs on its own thread or this thread
 * is already inside a tick or rs_event_loop_run, RS_EWRONGTHREAD while another
 * thread is,
 * RS_EINVAL for a NULL loop. */
RESEAU_API int rs_event_loop_run_once(rs_event_loop_t *loop, int timeout_ms);

/* When the next task is due, for embedding: *deadline_ns is 0 when work is ready
 * now (including tasks queued from other threads), UINT64_MAX when no task is
 * pending, else a time on the loop's clock.
 * I/O readiness is not included: poll rs_event_loop_get_fd for it (on
 * Windows, wait on rs_event_loop_get_wait_handle). RS_EINVAL for
 * a NULL loop or deadline_ns. Loop thread. */
RESEAU_API int rs_event_loop_next_deadline(rs_event_loop_t *loop, uint64_t *deadline_ns);

/* A file descriptor that becomes readable when the loop has I/O or a
 * cross-thread wakeup to process; poll it from a host loop, then call
 * rs_event_loop_run_once(loop, 0). Never read from it or close it.
 * *fd_out is set on RS_OK; RS_ENOTSUP for the poll backend, which has no single
 * waitable handle, and for IOCP, whose port is a HANDLE and not waitable (use
 * rs_event_loop_get_wait_handle there); RS_EINVAL for a NULL loop or fd_out.
 * Any thread. On kqueue it is the kqueue fd, which the BSDs and macOS make
 * pollable; libkqueue's is not. */
RESEAU_API int rs_event_loop_get_fd(const rs_event_loop_t *loop, int *fd_out);

/* The Windows twin of rs_event_loop_get_fd: a HANDLE (given as void *, so this
 * header needs no <windows.h>) for a host loop to wait on with
 * WaitForSingleObject or MsgWaitForMultipleObjects, then call
 * rs_event_loop_run_once(loop, 0).
 * It is a manual-reset event, signaled from the moment the loop has a packet
 * to process (an I/O operation finished; another thread scheduled a task,
 * sent an async or stopped the loop) until a run_once takes it in, which
 * resets it; waiting on it does not reset it. Not included, as with get_fd:
 * timers and tasks scheduled on the loop thread itself. Bound the wait with
 * rs_event_loop_next_deadline, which counts both.
 * The loop owns the handle: never CloseHandle, SetEvent or ResetEvent it. It
 * stays valid until rs_event_loop_destroy, and every call returns the same
 * one. The first call starts a helper thread that waits in the completion
 * port for the loop (loops that never call this have none); destroy stops
 * and joins it, and no completion is lost.
 * *handle_out is set on RS_OK. RS_EINVAL for a NULL loop or handle_out;
 * RS_ENOTSUP on every backend but IOCP (on POSIX use rs_event_loop_get_fd);
 * RS_EWRONGTHREAD off the loop thread; RS_ETHREAD if the helper thread cannot
 * start; the mapped OS error if the event cannot be made. Loop thread: on a
 * loop run by rs_event_loop_start that means its callbacks, where it works
 * but serves no purpose. */
RESEAU_API int rs_event_loop_get_wait_handle(rs_event_loop_t *loop, void **handle_out);

/* Schedule `task` to run on the next tick. Any thread. From the loop thread it
 * goes straight to the scheduler; from others, through the cross-thread queue.
 * RS_OK, or: RS_EINVAL for a NULL loop or task, or a task without a function
 * (see rs_task_init); RS_EBUSY if the task is already scheduled (on any loop)
 * and has not started running; it is left where it is. A task scheduled onto a
 * loop that is stopped waits for the loop to run again, or runs CANCELED, once,
 * when the loop is destroyed. */
RESEAU_API int rs_event_loop_schedule_task_now(rs_event_loop_t *loop, rs_task_t *task);
/* Like _now, but always through the cross-thread queue, so tasks scheduled with
 * this call run in the order they were scheduled, across all threads. Same results. */
RESEAU_API int rs_event_loop_schedule_task_now_serialized(rs_event_loop_t *loop, rs_task_t *task);
/* Schedule `task` to run once the loop's clock reaches run_at_ns. Any thread.
 * Tasks due at the same time run in the order they were scheduled. Same
 * results as _now. */
RESEAU_API int rs_event_loop_schedule_task_future(rs_event_loop_t *loop, rs_task_t *task, uint64_t run_at_ns);
/* Run a scheduled task now with RS_TASK_STATUS_CANCELED (O(log n)). A task that
 * is not scheduled is left alone (RS_OK). RS_EINVAL for a NULL loop or task.
 * Loop thread. */
RESEAU_API int rs_event_loop_cancel_task(rs_event_loop_t *loop, rs_task_t *task);

/* The loop's clock (its override, if set). Any thread. */
RESEAU_API uint64_t rs_event_loop_now_ns(const rs_event_loop_t *loop);
RESEAU_API bool rs_event_loop_is_on_loop_thread(const rs_event_loop_t *loop);

/* Report readiness of `handle` to on_event. `events` must be a non-zero mask of
 * READABLE|WRITABLE only; handle->fd must be valid. RS_EINVAL for a NULL loop,
 * handle or on_event, a negative fd or a bad mask; RS_EBUSY if the handle is
 * already subscribed, RS_EEXIST if another handle already subscribed the same
 * fd; RS_ENOMEM, or the backend's mapped OS error; RS_ENOTSUP on IOCP
 * (Windows), which has no readiness subscriptions yet. Loop thread. */
RESEAU_API int rs_event_loop_subscribe(rs_event_loop_t *loop, rs_io_handle_t *handle, int events,
                                       rs_io_event_fn *on_event, void *user_data);
/* Change the subscribed mask (same rules as subscribe); RS_EINVAL for a NULL
 * loop or handle, or a handle not subscribed to this loop. Loop thread. */
RESEAU_API int rs_event_loop_update_subscription(rs_event_loop_t *loop, rs_io_handle_t *handle, int events);
/* Stop reporting `handle`. Events for it still queued in the current dispatch
 * batch are skipped. The handle (and its fd) may be freed or closed as soon as
 * this returns; the loop releases its own record later, even at shutdown.
 * RS_EINVAL for a NULL loop or handle, or a handle not subscribed to this loop.
 * Loop thread. */
RESEAU_API int rs_event_loop_unsubscribe(rs_event_loop_t *loop, rs_io_handle_t *handle);

/* A coalescing cross-thread wakeup (libuv's uv_async_t; not a POSIX signal,
 * for those see rs_signal_watcher_new): any number of rs_event_loop_async_send
 * calls, from any threads, before the loop gets to it cause one call of fn on
 * the loop thread; a send during or after that call causes another. The caller
 * owns the storage: embed it; init and cleanup on the loop thread. */
typedef struct rs_event_loop_async rs_event_loop_async_t;
typedef void rs_event_loop_async_fn(rs_event_loop_async_t *async, void *user_data);
struct rs_event_loop_async {
    rs_task_t task;             /* private */
    rs_event_loop_t *loop;      /* private */
    rs_event_loop_async_fn *fn; /* private */
    void *user_data;            /* private */
    int pending;                /* private, atomic: 1 from a send until fn starts */
};
/* An async initialised with a NULL loop never fires: sends do nothing and
 * cleanup returns RS_EINVAL. A NULL async is ignored. */
RESEAU_API void rs_event_loop_async_init(rs_event_loop_async_t *async, rs_event_loop_t *loop,
                                         rs_event_loop_async_fn *fn, void *user_data);
/* Any thread. Costs one atomic exchange when a send is already pending. */
RESEAU_API void rs_event_loop_async_send(rs_event_loop_async_t *async);
/* Drop a pending send without calling fn. After this (on the loop thread) the
 * async's memory may be freed, provided no thread sends to it any more.
 * RS_EINVAL for a NULL async or one without a loop; RS_EWRONGTHREAD off the
 * loop thread. */
RESEAU_API int rs_event_loop_async_cleanup(rs_event_loop_async_t *async);

/* Loop-local objects: a small map from a caller-chosen key pointer to an object,
 * for per-loop singletons (message pools, caches). on_remove, if set, runs when
 * the entry is replaced, removed, or the loop is destroyed. Loop thread. */
typedef void rs_local_object_fn(void *key, void *object, void *user_data);
/* RS_EINVAL for a NULL loop or key; RS_ENOMEM. */
RESEAU_API int rs_event_loop_put_local_object(rs_event_loop_t *loop, const void *key, void *object,
                                              rs_local_object_fn *on_remove, void *user_data);
/* RS_ENOENT if absent, RS_EINVAL for a NULL loop. object_out may be NULL. */
RESEAU_API int rs_event_loop_get_local_object(rs_event_loop_t *loop, const void *key, void **object_out);
/* Runs on_remove. RS_ENOENT if absent, RS_EINVAL for a NULL loop. */
RESEAU_API int rs_event_loop_remove_local_object(rs_event_loop_t *loop, const void *key);

/* Busy nanoseconds (not waiting for I/O) during the last full second, published
 * once per second; used to balance work across a group. Any thread. */
RESEAU_API uint64_t rs_event_loop_get_load_factor(const rs_event_loop_t *loop);
/* Copy the counters. Any thread (the values may be a tick behind). A NULL loop
 * gives all zeros. */
RESEAU_API void rs_event_loop_get_stats(const rs_event_loop_t *loop, rs_event_loop_stats_t *stats_out);
