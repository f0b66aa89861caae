/* Event loop core: options, thread ownership, ticks, cross-thread tasks, subscriptions. */

static const rs__backend_vtable_t *rs__backend_lookup(rs_event_loop_backend_t backend) {
    switch (backend) {
    case RS_EVENT_LOOP_BACKEND_DEFAULT:
#if RESEAU_OS_LINUX
        return &rs__epoll_vtable;
#elif RESEAU_HAVE_KQUEUE
        return &rs__kqueue_vtable;
#elif RESEAU_OS_WINDOWS
        return &rs__iocp_vtable;
#elif RESEAU_OS_NONE
        return &rs__none_vtable;
#else
        return &rs__poll_vtable;
#endif
#if RESEAU_OS_LINUX
    case RS_EVENT_LOOP_BACKEND_EPOLL:
        return &rs__epoll_vtable;
#endif
#if RESEAU_OS_LINUX
    case RS_EVENT_LOOP_BACKEND_IO_URING:
        return &rs__uring_vtable;
#endif
#if RESEAU_HAVE_KQUEUE
    case RS_EVENT_LOOP_BACKEND_KQUEUE:
        return &rs__kqueue_vtable;
#endif
#if RESEAU_OS_POSIX
    case RS_EVENT_LOOP_BACKEND_POLL:
        return &rs__poll_vtable;
#endif
#if RESEAU_OS_WINDOWS
    case RS_EVENT_LOOP_BACKEND_IOCP:
        return &rs__iocp_vtable;
#endif
    case RS_EVENT_LOOP_BACKEND_CUSTOM:
        return &rs__custom_vtable;
    default:
        return NULL;
    }
}

RESEAU_API bool rs_event_loop_backend_is_available(rs_event_loop_backend_t backend) {
#if RESEAU_OS_LINUX
    if (backend == RS_EVENT_LOOP_BACKEND_IO_URING) {
        return rs__uring_available(); /* the kernel, a sysctl or seccomp may refuse it */
    }
#endif
    return rs__backend_lookup(backend) != NULL;
}

RESEAU_API const char *rs_event_loop_backend_name(rs_event_loop_backend_t backend) {
    switch (backend) {
    case RS_EVENT_LOOP_BACKEND_DEFAULT:
        return "default";
    case RS_EVENT_LOOP_BACKEND_EPOLL:
        return "epoll";
    case RS_EVENT_LOOP_BACKEND_POLL:
        return "poll";
    case RS_EVENT_LOOP_BACKEND_IO_URING:
        return "io_uring";
    case RS_EVENT_LOOP_BACKEND_KQUEUE:
        return "kqueue";
    case RS_EVENT_LOOP_BACKEND_IOCP:
        return "iocp";
    case RS_EVENT_LOOP_BACKEND_CUSTOM:
        return "custom";
    }
    return "unknown";
}

static uint64_t rs__default_clock(void *user_data) {
    (void)user_data;
    return rs_clock_now_ns();
}

static void rs__set_err(int *err_out, int err) {
    if (err_out) {
        *err_out = err;
    }
}

/* The one place rs_event_loop_options_t defaults are applied. */
static void rs__event_loop_apply_options(rs_event_loop_t *loop, const rs_event_loop_options_t *options) {
    static const rs_event_loop_options_t defaults = {NULL, RS_EVENT_LOOP_BACKEND_DEFAULT, NULL, NULL, NULL, 0, NULL};
    const rs_event_loop_options_t *o = options ? options : &defaults;
    const char *name = o->thread_name ? o->thread_name : "rs-loop";
    size_t i;
    loop->allocator = rs__allocator_copy(o->allocator);
    loop->clock_fn = o->clock_fn ? o->clock_fn : rs__default_clock;
    loop->clock_user_data = o->clock_fn ? o->clock_user_data : NULL;
    loop->thread_stack_size = o->thread_stack_size;
    if (o->custom_backend) {
        loop->custom = *o->custom_backend;
    }
    for (i = 0; i < RS_THREAD_NAME_MAX && name[i]; ++i) {
        loop->thread_name[i] = name[i];
    }
}

/* A custom backend needs its wait and wake, and excludes the OS backends. */
static int rs__event_loop_check_custom(const rs_event_loop_options_t *options) {
    const rs_event_loop_custom_backend_t *custom = options ? options->custom_backend : NULL;
    rs_event_loop_backend_t kind = options ? options->backend : RS_EVENT_LOOP_BACKEND_DEFAULT;
    if (!custom) {
        return kind == RS_EVENT_LOOP_BACKEND_CUSTOM ? RS_EINVAL : RS_OK;
    }
    if (kind != RS_EVENT_LOOP_BACKEND_DEFAULT && kind != RS_EVENT_LOOP_BACKEND_CUSTOM) {
        return RS_EINVAL;
    }
    return custom->wait && custom->wake ? RS_OK : RS_EINVAL;
}

RESEAU_API rs_event_loop_t *rs_event_loop_new(const rs_event_loop_options_t *options, int *err_out) {
    rs_allocator_t allocator = rs__allocator_copy(options ? options->allocator : NULL);
    rs_event_loop_backend_t kind = options ? options->backend : RS_EVENT_LOOP_BACKEND_DEFAULT;
    const rs__backend_vtable_t *backend;
    rs_event_loop_t *loop;
    int member_kind;
    int err = rs__event_loop_check_custom(options);

    if (err) {
        RS__LOG_ERROR(RS_LS_EVENT_LOOP, "a custom backend needs wait and wake, and backend DEFAULT or CUSTOM");
        rs__set_err(err_out, err);
        return NULL;
    }
    if (options && options->custom_backend) {
        kind = RS_EVENT_LOOP_BACKEND_CUSTOM;
    }
    backend = rs__backend_lookup(kind);
    if (!backend) {
        RS__LOG_ERROR(RS_LS_EVENT_LOOP, "backend '%s' is not available in this build or on this OS",
                      rs_event_loop_backend_name(kind));
        rs__set_err(err_out, RS_ENOTSUP);
        return NULL;
    }
    loop = (rs_event_loop_t *)rs_mem_calloc(&allocator, 1, sizeof(rs_event_loop_t));
    if (!loop) {
        rs__set_err(err_out, RS_ENOMEM);
        return NULL;
    }
    rs__event_loop_apply_options(loop, options);
    loop->backend = backend;
    rs_list_init(&loop->registrations);
    rs_list_init(&loop->reg_retired);
    rs_list_init(&loop->reg_free);
    rs_list_init(&loop->interest_dirty);
    rs_list_init(&loop->interest_failed);
    for (member_kind = 0; member_kind < RS__MEMBER_KINDS; ++member_kind) {
        rs_list_init(&loop->members[member_kind]);
        rs_list_init(&loop->swept[member_kind]);
    }
    loop->owner = rs_thread_current_id();
    err = rs_mutex_init(&loop->members_lock);
    if (err) {
        goto fail_lock;
    }
    err = rs__scheduler_init(&loop->scheduler, &loop->allocator);
    if (err) {
        goto fail_scheduler;
    }
    loop->scheduler.loop = loop;
    rs__trace_register_loop(loop); /* before anything can emit events for it */
    err = backend->init(loop);
    if (err) {
        goto fail_backend;
    }
    loop->load_window_start_ns = rs_clock_now_ns();
    rs__set_err(err_out, RS_OK);
    return loop;

fail_backend:
    rs__trace_unregister_loop(loop);
    rs__scheduler_cleanup(&loop->scheduler);
fail_scheduler:
    rs_mutex_cleanup(&loop->members_lock);
fail_lock:
    rs_mem_free(&allocator, loop);
    rs__set_err(err_out, err);
    return NULL;
}

RESEAU_API rs_event_loop_backend_t rs_event_loop_get_backend(const rs_event_loop_t *loop) {
    return loop ? loop->backend->kind : RS_EVENT_LOOP_BACKEND_DEFAULT;
}

RESEAU_API bool rs_event_loop_is_on_loop_thread(const rs_event_loop_t *loop) {
    return loop && rs__atomic_load_uptr(&loop->owner) == rs_thread_current_id();
}

/* RS_EINVAL for a NULL loop (it has no thread to check); RS_EWRONGTHREAD, logged,
 * off the loop thread. */
static int rs__check_loop_thread(const rs_event_loop_t *loop, const char *function) {
    if (!loop) {
        return RS_EINVAL;
    }
    if (rs_event_loop_is_on_loop_thread(loop)) {
        return RS_OK;
    }
    RS__LOG_ERROR(RS_LS_EVENT_LOOP, "%s called from a thread that does not own the loop", function);
    return RS_EWRONGTHREAD;
}

/* The same, then RS_EINVAL for a NULL `required` argument: the thread is
 * checked first, so a call off the loop thread always says so. */
static int rs__check_loop_call(const rs_event_loop_t *loop, const void *required, const char *function) {
    int err = rs__check_loop_thread(loop, function);
    return err ? err : (required ? RS_OK : RS_EINVAL);
}

RESEAU_API uint64_t rs_event_loop_now_ns(const rs_event_loop_t *loop) {
    return loop ? loop->clock_fn(loop->clock_user_data) : 0;
}

/* ---- cross-thread queue ---- */

/* Attempts per wake before it counts as lost: EINTR, and transient errors,
 * usually pass on a retry. */
#define RS__WAKE_ATTEMPTS 8

/* A wake the OS keeps refusing is remembered in wake_lost: every later push
 * wakes again (not only the empty -> non-empty one) until a wake gets through,
 * and the loop checks its queue before each wait, so one lost wake delays its
 * task only until the loop's next wakeup and never stalls later tasks. */
static bool rs__event_loop_try_wake(rs_event_loop_t *loop) {
    int attempt;
    /* int atomics and the backend's write(2) only: rs_event_loop_stop calls
     * this from signal handlers. */
    for (attempt = 0; attempt < RS__WAKE_ATTEMPTS; ++attempt) {
        if (loop->backend->wake(loop)) {
            if (rs__atomic_load_int(&loop->wake_lost)) {
                rs__atomic_store_int(&loop->wake_lost, 0);
            }
            return true;
        }
    }
    rs__atomic_store_int(&loop->wake_lost, 1);
    return false;
}

static void rs__event_loop_wake(rs_event_loop_t *loop) {
    rs__atomic_add_u64(&loop->stats.wakeups_sent, 1);
    if (!rs__event_loop_try_wake(loop)) {
        RS__LOG_ERROR(RS_LS_EVENT_LOOP, "cannot wake the loop: %s (errno %d); the next schedule retries",
                      strerror(errno), errno);
    }
}

static rs_task_t *rs__xq_next(const rs_task_t *task) {
    return task->node.next ? RS_CONTAINER_OF(task->node.next, rs_task_t, node) : NULL;
}

/* Producers wake the loop only when the queue goes from empty to non-empty:
 * a non-empty queue means a wakeup is already on its way (unless one was
 * lost). The order of successful pushes is one global order, so FIFO holds
 * across producers. The caller has already marked the task RS__TASK_XQUEUE. */
static void rs__event_loop_xq_push(rs_event_loop_t *loop, rs_task_t *task) {
    void *head;
    /* Counted from before the push to after the wake: once pushed, the task
     * may run at once and destroy the loop (a task that destroys its own
     * group), and rs__event_loop_free waits for this count to drop before it
     * closes what the wake writes to. */
    rs__atomic_add_int(&loop->xq_pushers, 1);
    head = rs__atomic_load_ptr(&loop->xq_head);
    task->node.prev = NULL;
    do {
        task->node.next = head ? &((rs_task_t *)head)->node : NULL;
    } while (!rs__atomic_cas_ptr_weak(&loop->xq_head, &head, task));
    if (!head || rs__atomic_load_int(&loop->wake_lost)) {
        rs__event_loop_wake(loop);
    }
    rs__atomic_add_int(&loop->xq_pushers, -1);
}

static bool rs__event_loop_xq_empty(rs_event_loop_t *loop) {
    return rs__atomic_load_ptr(&loop->xq_head) == NULL;
}

/* Take the whole stack in O(1) and hand it to the scheduler in push order.
 * One pass: the stack is newest-first, so pushing each task to the front of a
 * list rebuilds FIFO order; "now" tasks are then spliced in whole, and only
 * timed tasks (rare cross-thread) go through the heap one by one. */
static void rs__event_loop_xq_drain(rs_event_loop_t *loop) {
    rs_task_t *stack = (rs_task_t *)rs__atomic_exchange_ptr(&loop->xq_head, NULL);
    rs_list_t now;
    rs_list_t timed;
    rs_list_node_t *node;
    uint64_t count = 0;
    if (!stack) {
        return;
    }
    rs_list_init(&now);
    rs_list_init(&timed);
    while (stack) {
        rs_task_t *next = rs__xq_next(stack);
        /* A timed task stays XQUEUE until the heap takes it: were it IDLE in
         * between, another thread could claim it into the queue again. */
        if (stack->run_at_ns == 0) {
            rs__task_set_state(stack, RS__TASK_ASAP);
        }
        rs_list_push_front(stack->run_at_ns == 0 ? &now : &timed, &stack->node);
        stack = next;
        ++count;
    }
    rs__scheduler_splice_asap(&loop->scheduler, &now);
    while ((node = rs_list_pop_front(&timed)) != NULL) {
        rs_task_t *task = RS_CONTAINER_OF(node, rs_task_t, node);
        rs__scheduler_schedule_at(&loop->scheduler, task, task->run_at_ns);
    }
    rs__atomic_add_u64(&loop->stats.xthread_tasks, count);
}

/* A task may be in one place at a time: scheduling it again before it ran
 * would corrupt the queue it is in. Off the loop thread, the claim is a CAS, so
 * two threads racing to schedule one task cannot both win. */
static int rs__task_claim(rs_event_loop_t *loop, rs_task_t *task, bool cross_thread, const char *function) {
    if (!loop || !task || !task->fn) {
        return RS_EINVAL;
    }
    if (cross_thread ? rs__atomic_cas_int(&task->state, RS__TASK_IDLE, RS__TASK_XQUEUE)
                     : rs__task_get_state(task) == RS__TASK_IDLE) {
        return RS_OK;
    }
    RS__LOG_ERROR(RS_LS_TASK, "%s: task '%s' is already scheduled", function, task->type_tag);
    return RS_EBUSY;
}

/* Cross-thread: through the queue, with run_at_ns 0 meaning "now". */
static int rs__schedule_cross_thread(rs_event_loop_t *loop, rs_task_t *task, uint64_t run_at_ns,
                                     const char *function) {
    int err = rs__task_claim(loop, task, true, function);
    if (err) {
        return err;
    }
    task->run_at_ns = run_at_ns;
    /* Before the push: once queued, the task may run and be freed. */
    rs__trace(RS_TRACE_TASK_SCHEDULED, loop, task, task->type_tag, 0, 0);
    rs__event_loop_xq_push(loop, task);
    return RS_OK;
}

RESEAU_API int rs_event_loop_schedule_task_now(rs_event_loop_t *loop, rs_task_t *task) {
    int err;
    if (!loop || !rs_event_loop_is_on_loop_thread(loop)) {
        return rs__schedule_cross_thread(loop, task, 0, "rs_event_loop_schedule_task_now");
    }
    err = rs__task_claim(loop, task, false, "rs_event_loop_schedule_task_now");
    if (!err) {
        rs__trace(RS_TRACE_TASK_SCHEDULED, loop, task, task->type_tag, 0, 0);
        rs__scheduler_schedule_now(&loop->scheduler, task);
    }
    return err;
}

RESEAU_API int rs_event_loop_schedule_task_now_serialized(rs_event_loop_t *loop, rs_task_t *task) {
    return rs__schedule_cross_thread(loop, task, 0, "rs_event_loop_schedule_task_now_serialized");
}

RESEAU_API int rs_event_loop_schedule_task_future(rs_event_loop_t *loop, rs_task_t *task, uint64_t run_at_ns) {
    int err;
    if (!loop || !rs_event_loop_is_on_loop_thread(loop)) {
        /* run_at_ns 0 marks "now" in the queue; time 0 has passed on any clock anyway. */
        return rs__schedule_cross_thread(loop, task, run_at_ns, "rs_event_loop_schedule_task_future");
    }
    err = rs__task_claim(loop, task, false, "rs_event_loop_schedule_task_future");
    if (!err) {
        rs__trace(RS_TRACE_TASK_SCHEDULED, loop, task, task->type_tag, 0, 0);
        rs__scheduler_schedule_at(&loop->scheduler, task, run_at_ns);
    }
    return err;
}

RESEAU_API int rs_event_loop_cancel_task(rs_event_loop_t *loop, rs_task_t *task) {
    int err = rs__check_loop_call(loop, task, "rs_event_loop_cancel_task");
    if (err) {
        return err;
    }
    if (rs__task_get_state(task) == RS__TASK_XQUEUE) {
        /* A lock-free stack cannot unlink from the middle: take the whole
         * queue first (order kept), then cancel from the scheduler. */
        rs__event_loop_xq_drain(loop);
    }
    rs__scheduler_cancel(&loop->scheduler, task);
    rs__atomic_store_u64(&loop->stats.tasks_run, loop->scheduler.tasks_run);
    return RS_OK;
}

/* ---- coalescing cross-thread wakeups (rs_event_loop_async_t) ---- */

static void rs__async_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_event_loop_async_t *async = (rs_event_loop_async_t *)arg;
    (void)task;
    /* Clear before calling fn, so a send racing with fn is never lost. */
    rs__atomic_store_int(&async->pending, 0);
    if (status == RS_TASK_STATUS_RUN) {
        async->fn(async, async->user_data);
    }
}

RESEAU_API void rs_event_loop_async_init(rs_event_loop_async_t *async, rs_event_loop_t *loop,
                                         rs_event_loop_async_fn *fn, void *user_data) {
    if (!async) {
        return;
    }
    memset(async, 0, sizeof(*async));
    rs_task_init(&async->task, rs__async_task, async, "event_loop_async");
    async->loop = loop;
    async->fn = fn;
    async->user_data = user_data;
}

RESEAU_API void rs_event_loop_async_send(rs_event_loop_async_t *async) {
    if (!async || !async->loop) {
        return;
    }
    if (rs__atomic_load_int(&async->pending) || rs__atomic_exchange_int(&async->pending, 1)) {
        return; /* already on its way */
    }
    /* `pending` makes this the only sender, and the task is idle once fn has started. */
    rs__task_set_state(&async->task, RS__TASK_XQUEUE);
    async->task.run_at_ns = 0;
    rs__event_loop_xq_push(async->loop, &async->task);
}

RESEAU_API int rs_event_loop_async_cleanup(rs_event_loop_async_t *async) {
    int err;
    if (!async) {
        return RS_EINVAL;
    }
    err = rs__check_loop_thread(async->loop, "rs_event_loop_async_cleanup");
    if (err) {
        return err;
    }
    if (rs__atomic_load_int(&async->pending)) {
        return rs_event_loop_cancel_task(async->loop, &async->task);
    }
    return RS_OK;
}

/* ---- deferred interest ---- */

/* End of a tick: tell the backend what each changed registration wants now.
 * A change the backend refuses is reported to its owner as RS_IO_ERROR in the
 * next dispatch (rs__io_handle_error says which error). */
static void rs__event_loop_flush_interest(rs_event_loop_t *loop) {
    rs_list_node_t *node;
    loop->applying_deferred_interest = true;
    while ((node = rs_list_pop_front(&loop->interest_dirty)) != NULL) {
        rs__io_registration_t *reg = RS_CONTAINER_OF(node, rs__io_registration_t, pending_node);
        int err = rs__registration_apply(loop, reg);
        if (err) {
            reg->error = err;
            rs_list_push_back(&loop->interest_failed, &reg->pending_node);
        }
    }
    loop->applying_deferred_interest = false;
}

/* Inside dispatch: each registration whose deferred change failed hears of it once. */
static void rs__event_loop_report_failed_interest(rs_event_loop_t *loop) {
    rs_list_node_t *node;
    while ((node = rs_list_pop_front(&loop->interest_failed)) != NULL) {
        rs__io_registration_t *reg = RS_CONTAINER_OF(node, rs__io_registration_t, pending_node);
        rs__registration_dispatch(loop, reg, RS_IO_ERROR);
    }
}

/* Watch `handle` for `events`, subscribing it first if it is not; 0 parks it:
 * it stays subscribed, nothing is reported, and the backend drops the fd at the
 * tick's end if it is still parked then. For the socket layer, whose fds are
 * its own: inside a tick on a backend where each change is a system call, the
 * backend is told once, at the tick's end, so interest that changes and
 * changes back within a tick (connected then reading; accepted then closed)
 * costs no system call. Errors: RS_ENOMEM; outside a tick, the backend's.
 * (Unused, like the two below, where no socket layer is built: Windows.) */
static RS__UNUSED int rs__event_loop_set_interest(rs_event_loop_t *loop, rs_io_handle_t *handle, int events,
                                                 rs_io_event_fn *on_event, void *user_data) {
    rs__io_registration_t *reg = (rs__io_registration_t *)handle->impl;
    int previous;
    int err;
    if (!reg) {
        reg = rs__registration_new(loop, handle, 0, on_event, user_data);
        if (!reg) {
            return RS_ENOMEM;
        }
        rs_list_push_back(&loop->registrations, &reg->node);
        handle->impl = reg;
    }
    previous = reg->events;
    reg->events = events;
    reg->error = RS_OK;
    if (loop->in_tick && loop->backend->defers_interest) {
        if (!rs_list_node_is_linked(&reg->pending_node)) {
            rs_list_push_back(&loop->interest_dirty, &reg->pending_node);
        }
        return RS_OK;
    }
    err = rs__registration_apply(loop, reg);
    if (err && previous == 0 && reg->backend_events == 0) {
        rs__registration_retire(loop, reg); /* never reached the backend: as if never subscribed */
    } else if (err) {
        reg->events = previous;
    }
    return err;
}

/* The error of a deferred interest change the backend refused, else RS_OK. */
static RS__UNUSED int rs__io_handle_error(const rs_io_handle_t *handle) {
    const rs__io_registration_t *reg = (const rs__io_registration_t *)handle->impl;
    return reg ? reg->error : RS_OK;
}

/* The socket error (errno) the backend saw with the event being delivered, or
 * 0: for the socket layer when SO_ERROR reads 0 because the backend read it. */
static RS__UNUSED int rs__io_handle_os_error(const rs_io_handle_t *handle) {
    const rs__io_registration_t *reg = (const rs__io_registration_t *)handle->impl;
    return reg ? reg->os_error : 0;
}

/* ---- ticks ---- */

/* Milliseconds to wait for I/O: until the next task is due, capped by the caller. */
static int rs__event_loop_wait_timeout(rs_event_loop_t *loop, int timeout_ms) {
    uint64_t next_ns;
    uint64_t now_ns;
    uint64_t wait_ms;
    if (!rs__event_loop_xq_empty(loop)) {
        return 0; /* queued before we got here: its wake may be the one that was lost */
    }
    if (rs__atomic_load_int(&loop->wake_lost) && (timeout_ms < 0 || timeout_ms > RS__LOST_WAKE_POLL_MS)) {
        timeout_ms = RS__LOST_WAKE_POLL_MS;
    }
    if (!rs__scheduler_has_tasks(&loop->scheduler, &next_ns)) {
        return timeout_ms < 0 ? -1 : timeout_ms;
    }
    now_ns = rs_event_loop_now_ns(loop);
    if (next_ns <= now_ns) {
        return 0;
    }
    wait_ms = (next_ns - now_ns + RS_NS_PER_MS - 1) / RS_NS_PER_MS;
    if (wait_ms > (uint64_t)INT_MAX) {
        wait_ms = (uint64_t)INT_MAX;
    }
    if (timeout_ms >= 0 && (uint64_t)timeout_ms < wait_ms) {
        return timeout_ms;
    }
    return (int)wait_ms;
}

/* Busy time (not waiting) summed per window and published for load balancing. */
static void rs__event_loop_account_load(rs_event_loop_t *loop, uint64_t busy_start_ns) {
    uint64_t now_ns = rs_clock_now_ns();
    loop->load_window_busy_ns += now_ns - busy_start_ns;
    if (now_ns - loop->load_window_start_ns >= RS__LOAD_FACTOR_WINDOW_NS) {
        rs__atomic_store_u64(&loop->load_factor, loop->load_window_busy_ns);
        loop->load_window_busy_ns = 0;
        loop->load_window_start_ns = now_ns;
    }
}

static void rs__event_loop_tick(rs_event_loop_t *loop, int timeout_ms) {
    uint64_t busy_start_ns;
    loop->in_tick = true;
    loop->backend->wait(loop, rs__event_loop_wait_timeout(loop, timeout_ms));
    busy_start_ns = rs_clock_now_ns();
    loop->dispatching = true;
    loop->backend->dispatch(loop);
    rs__event_loop_report_failed_interest(loop);
    loop->dispatching = false;
    rs__registration_recycle_retired(loop);
    if (rs__atomic_load_int(&loop->wake_lost)) {
        /* Cleared before draining: a wake lost after this point sets it again. */
        rs__atomic_store_int(&loop->wake_lost, 0);
    }
    rs__event_loop_xq_drain(loop);
    rs__scheduler_run_due(&loop->scheduler, rs_event_loop_now_ns(loop));
    rs__event_loop_flush_interest(loop);
    rs__atomic_store_u64(&loop->stats.tasks_run, loop->scheduler.tasks_run);
    rs__atomic_add_u64(&loop->stats.ticks, 1);
    rs__event_loop_account_load(loop, busy_start_ns);
    loop->in_tick = false;
}

/* Whether the calling thread may run ticks itself: RS_EBUSY if the loop runs on
 * its own thread or this thread is already inside a tick or rs_event_loop_run,
 * RS_EWRONGTHREAD while another thread is. */
static int rs__event_loop_check_idle(rs_event_loop_t *loop) {
    if (rs__atomic_load_int(&loop->thread_running)) {
        return RS_EBUSY;
    }
    if (loop->in_tick || rs__atomic_load_int(&loop->run_caller)) {
        return rs_event_loop_is_on_loop_thread(loop) ? RS_EBUSY : RS_EWRONGTHREAD;
    }
    return RS_OK;
}

RESEAU_API int rs_event_loop_run_once(rs_event_loop_t *loop, int timeout_ms) {
    int err = loop ? rs__event_loop_check_idle(loop) : RS_EINVAL;
    if (err) {
        return err;
    }
    rs__atomic_store_uptr(&loop->owner, rs_thread_current_id());
    rs__event_loop_tick(loop, timeout_ms);
    return RS_OK;
}

RESEAU_API int rs_event_loop_next_deadline(rs_event_loop_t *loop, uint64_t *deadline_ns) {
    int err = rs__check_loop_call(loop, deadline_ns, "rs_event_loop_next_deadline");
    if (err) {
        return err;
    }
    rs__scheduler_has_tasks(&loop->scheduler, deadline_ns);
    if (!rs__event_loop_xq_empty(loop)) {
        *deadline_ns = 0; /* cross-thread work is waiting */
    }
    return RS_OK;
}

RESEAU_API int rs_event_loop_get_fd(const rs_event_loop_t *loop, int *fd_out) {
    if (!loop || !fd_out) {
        return RS_EINVAL;
    }
    return loop->backend->get_fd(loop, fd_out);
}

RESEAU_API int rs_event_loop_get_wait_handle(rs_event_loop_t *loop, void **handle_out) {
    int err;
    if (!loop || !handle_out) {
        return RS_EINVAL;
    }
    if (!loop->backend->get_wait_handle) {
        return RS_ENOTSUP;
    }
    err = rs__check_loop_call(loop, handle_out, "rs_event_loop_get_wait_handle");
    if (err) {
        return err;
    }
    return loop->backend->get_wait_handle(loop, handle_out);
}

/* ---- own thread ---- */

static void rs__event_loop_thread_main(void *arg) {
    rs_event_loop_t *loop = (rs_event_loop_t *)arg;
    rs__atomic_store_uptr(&loop->owner, rs_thread_current_id());
    RS__LOG_DEBUG(RS_LS_EVENT_LOOP, "loop %p running on thread '%s'", (void *)loop, loop->thread_name);
    while (!rs__atomic_load_int(&loop->stop_requested)) {
        rs__event_loop_tick(loop, -1);
    }
}

RESEAU_API int rs_event_loop_start(rs_event_loop_t *loop) {
    rs_thread_options_t options;
    int err;
    if (!loop) {
        return RS_EINVAL;
    }
    if (rs__atomic_load_int(&loop->thread_running) || rs__atomic_load_int(&loop->run_caller)) {
        return RS_EBUSY;
    }
    rs__atomic_store_int(&loop->stop_requested, 0);
    rs__atomic_store_int(&loop->thread_running, 1);
    options.name = loop->thread_name;
    options.stack_size = loop->thread_stack_size;
    err = rs_thread_launch(&loop->thread, rs__event_loop_thread_main, loop, &options);
    if (err) {
        rs__atomic_store_int(&loop->thread_running, 0);
        return err;
    }
    rs__atomic_store_uptr(&loop->owner, rs__thread_id_of(&loop->thread));
    return RS_OK;
}

RESEAU_API int rs_event_loop_stop(rs_event_loop_t *loop) {
    int saved_errno = errno;
    if (!loop) {
        return RS_EINVAL;
    }
    rs__atomic_store_int(&loop->stop_requested, 1);
    /* Only a running loop needs waking; run_once callers decide for themselves.
     * No log, no 64-bit counter, errno kept: this must stay async-signal-safe
     * (int atomics and write(2) only). A wake that fails is retried by the
     * loop itself within RS__LOST_WAKE_POLL_MS. */
    if (rs__atomic_load_int(&loop->thread_running) || rs__atomic_load_int(&loop->run_caller)) {
        rs__event_loop_try_wake(loop);
    }
    errno = saved_errno;
    return RS_OK;
}

RESEAU_API int rs_event_loop_run(rs_event_loop_t *loop) {
    int err = loop ? rs__event_loop_check_idle(loop) : RS_EINVAL;
    if (err) {
        return err;
    }
    rs__atomic_store_uptr(&loop->owner, rs_thread_current_id());
    rs__atomic_store_int(&loop->run_caller, 1);
    /* A stop asked for before we got here still gets one tick, without blocking. */
    do {
        rs__event_loop_tick(loop, rs__atomic_load_int(&loop->stop_requested) ? 0 : -1);
    } while (!rs__atomic_load_int(&loop->stop_requested));
    rs__atomic_store_int(&loop->stop_requested, 0);
    rs__atomic_store_int(&loop->run_caller, 0);
    return RS_OK;
}

RESEAU_API int rs_event_loop_wait(rs_event_loop_t *loop) {
    int err;
    if (!loop) {
        return RS_EINVAL;
    }
    if (!rs__atomic_load_int(&loop->thread_running)) {
        return RS_OK;
    }
    if (rs_event_loop_is_on_loop_thread(loop)) {
        return RS_EDEADLK;
    }
    err = rs_thread_join(&loop->thread);
    if (err) {
        return err;
    }
    rs__atomic_store_int(&loop->thread_running, 0);
    rs__atomic_store_uptr(&loop->owner, rs_thread_current_id());
    return RS_OK;
}

/* ---- subscriptions ---- */

static bool rs__valid_event_mask(int events) {
    return events != 0 && (events & ~(RS_IO_READABLE | RS_IO_WRITABLE)) == 0;
}

RESEAU_API int rs_event_loop_subscribe(rs_event_loop_t *loop, rs_io_handle_t *handle, int events,
                                       rs_io_event_fn *on_event, void *user_data) {
    rs__io_registration_t *reg;
    int err = rs__check_loop_call(loop, handle, "rs_event_loop_subscribe");
    if (err) {
        return err;
    }
    if (handle->fd < 0 || !on_event || !rs__valid_event_mask(events)) {
        return RS_EINVAL;
    }
    if (handle->impl) {
        return RS_EBUSY;
    }
    reg = rs__registration_new(loop, handle, events, on_event, user_data);
    if (!reg) {
        return RS_ENOMEM;
    }
    err = rs__registration_apply(loop, reg);
    if (err) {
        rs__registration_recycle(loop, reg);
        return err;
    }
    rs_list_push_back(&loop->registrations, &reg->node);
    handle->impl = reg;
    return RS_OK;
}

/* The handle's registration, if it is subscribed to this loop. */
static rs__io_registration_t *rs__registration_of(rs_event_loop_t *loop, rs_io_handle_t *handle) {
    rs__io_registration_t *reg;
    if (!handle || !handle->impl) {
        return NULL;
    }
    reg = (rs__io_registration_t *)handle->impl;
    return reg->loop == loop && reg->subscribed ? reg : NULL;
}

RESEAU_API int rs_event_loop_update_subscription(rs_event_loop_t *loop, rs_io_handle_t *handle, int events) {
    rs__io_registration_t *reg;
    int err = rs__check_loop_call(loop, handle, "rs_event_loop_update_subscription");
    if (err) {
        return err;
    }
    reg = rs__registration_of(loop, handle);
    if (!reg || !rs__valid_event_mask(events)) {
        return RS_EINVAL;
    }
    if (events == reg->events) {
        return RS_OK;
    }
    reg->events = events;
    rs_list_remove(&reg->pending_node); /* applied now: nothing left for the tick's end */
    err = rs__registration_apply(loop, reg);
    if (err) {
        reg->events = reg->backend_events;
    }
    return err;
}

RESEAU_API int rs_event_loop_unsubscribe(rs_event_loop_t *loop, rs_io_handle_t *handle) {
    rs__io_registration_t *reg;
    int err = rs__check_loop_call(loop, handle, "rs_event_loop_unsubscribe");
    if (err) {
        return err;
    }
    reg = rs__registration_of(loop, handle);
    if (!reg) {
        return RS_EINVAL;
    }
    if (reg->backend_events) {
        loop->backend->remove(loop, reg);
    }
    rs__registration_retire(loop, reg);
    return RS_OK;
}

/* ---- loop-local objects ---- */

static rs__local_object_t *rs__local_find(rs_event_loop_t *loop, const void *key) {
    size_t i;
    for (i = 0; i < loop->local_count; ++i) {
        if (loop->locals[i].key == key) {
            return &loop->locals[i];
        }
    }
    return NULL;
}

static void rs__local_release(rs__local_object_t entry) {
    if (entry.on_remove) {
        entry.on_remove((void *)entry.key, entry.object, entry.user_data);
    }
}

RESEAU_API int rs_event_loop_put_local_object(rs_event_loop_t *loop, const void *key, void *object,
                                              rs_local_object_fn *on_remove, void *user_data) {
    rs__local_object_t *slot;
    rs__local_object_t old;
    int err = rs__check_loop_call(loop, key, "rs_event_loop_put_local_object");
    if (err) {
        return err;
    }
    slot = rs__local_find(loop, key);
    if (!slot) {
        if (loop->local_count == loop->local_capacity) {
            size_t capacity = loop->local_capacity ? loop->local_capacity * 2 : 4;
            rs__local_object_t *grown = (rs__local_object_t *)rs_mem_realloc(
                &loop->allocator, loop->locals, loop->local_capacity * sizeof(*grown), capacity * sizeof(*grown));
            if (!grown) {
                return RS_ENOMEM;
            }
            loop->locals = grown;
            loop->local_capacity = capacity;
        }
        slot = &loop->locals[loop->local_count++];
        slot->on_remove = NULL;
    }
    old = *slot;
    slot->key = key;
    slot->object = object;
    slot->on_remove = on_remove;
    slot->user_data = user_data;
    if (old.on_remove && old.key == key) {
        rs__local_release(old);
    }
    return RS_OK;
}

RESEAU_API int rs_event_loop_get_local_object(rs_event_loop_t *loop, const void *key, void **object_out) {
    rs__local_object_t *slot;
    int err = rs__check_loop_thread(loop, "rs_event_loop_get_local_object");
    if (err) {
        return err;
    }
    slot = rs__local_find(loop, key);
    if (!slot) {
        return RS_ENOENT;
    }
    if (object_out) {
        *object_out = slot->object;
    }
    return RS_OK;
}

RESEAU_API int rs_event_loop_remove_local_object(rs_event_loop_t *loop, const void *key) {
    rs__local_object_t *slot;
    rs__local_object_t old;
    int err = rs__check_loop_thread(loop, "rs_event_loop_remove_local_object");
    if (err) {
        return err;
    }
    slot = rs__local_find(loop, key);
    if (!slot) {
        return RS_ENOENT;
    }
    old = *slot;
    *slot = loop->locals[--loop->local_count];
    rs__local_release(old);
    return RS_OK;
}

/* ---- members: what destroy must end first ---- */

/* Tie `member` to `loop`. Any thread. */
static void rs__event_loop_add_member(rs_event_loop_t *loop, rs_list_node_t *member, const rs__loop_member_ops_t *ops) {
    rs_mutex_lock(&loop->members_lock);
    loop->member_ops[ops->kind] = ops;
    rs_list_push_back(&loop->members[ops->kind], member);
    rs_mutex_unlock(&loop->members_lock);
}

/* Untie it (when it is freed). Harmless if it was never tied. Any thread. */
static void rs__event_loop_remove_member(rs_event_loop_t *loop, rs_list_node_t *member) {
    if (!loop) {
        return; /* never tied, or detached by the loop's destroy */
    }
    rs_mutex_lock(&loop->members_lock);
    rs_list_remove(member);
    rs_mutex_unlock(&loop->members_lock);
}

/* End every member of one kind, one at a time and without the lock held, so
 * that their callbacks may free members. */
static void rs__event_loop_end_members(rs_event_loop_t *loop, rs__member_kind_t kind) {
    for (;;) {
        rs_list_node_t *member;
        rs_mutex_lock(&loop->members_lock);
        member = rs_list_pop_front(&loop->members[kind]);
        if (member) {
            rs_list_push_back(&loop->swept[kind], member);
        }
        rs_mutex_unlock(&loop->members_lock);
        if (!member) {
            return;
        }
        loop->member_ops[kind]->end(member);
    }
}

/* The last step before the loop's memory goes: owners may still hold members,
 * which must no longer point at it. */
static void rs__event_loop_detach_members(rs_event_loop_t *loop) {
    int kind;
    rs_mutex_lock(&loop->members_lock);
    for (kind = 0; kind < RS__MEMBER_KINDS; ++kind) {
        rs_list_node_t *member;
        rs_list_splice_back(&loop->swept[kind], &loop->members[kind]);
        while ((member = rs_list_pop_front(&loop->swept[kind])) != NULL) {
            loop->member_ops[kind]->detach(member);
        }
    }
    rs_mutex_unlock(&loop->members_lock);
}

/* ---- stats, load, destroy ---- */

RESEAU_API uint64_t rs_event_loop_get_load_factor(const rs_event_loop_t *loop) {
    return loop ? rs__atomic_load_u64(&loop->load_factor) : 0;
}

RESEAU_API void rs_event_loop_get_stats(const rs_event_loop_t *loop, rs_event_loop_stats_t *stats_out) {
    if (!stats_out) {
        return;
    }
    if (!loop) {
        memset(stats_out, 0, sizeof(*stats_out));
        return;
    }
    stats_out->ticks = rs__atomic_load_u64(&loop->stats.ticks);
    stats_out->io_events = rs__atomic_load_u64(&loop->stats.io_events);
    stats_out->tasks_run = rs__atomic_load_u64(&loop->stats.tasks_run);
    stats_out->wakeups_sent = rs__atomic_load_u64(&loop->stats.wakeups_sent);
    stats_out->xthread_tasks = rs__atomic_load_u64(&loop->stats.xthread_tasks);
}

/* Cancel every task, including those queued cross-thread and those that
 * canceled tasks schedule while being canceled. Returns whether any task ran. */
static bool rs__event_loop_cancel_everything(rs_event_loop_t *loop) {
    uint64_t before = loop->scheduler.tasks_run;
    do {
        rs__event_loop_xq_drain(loop);
        rs__scheduler_cancel_all(&loop->scheduler);
    } while (!rs__event_loop_xq_empty(loop));
    return loop->scheduler.tasks_run != before;
}

static void rs__event_loop_release_locals(rs_event_loop_t *loop) {
    while (loop->local_count) {
        rs__local_object_t old = loop->locals[--loop->local_count];
        rs__local_release(old);
    }
    rs_mem_free(&loop->allocator, loop->locals);
    loop->locals = NULL;
    loop->local_capacity = 0;
}

/* Subscriptions the user never removed: take them out of the backend and free them. */
static void rs__event_loop_sweep_registrations(rs_event_loop_t *loop) {
    rs_list_node_t *node;
    while ((node = rs_list_pop_front(&loop->registrations)) != NULL) {
        rs__io_registration_t *reg = RS_CONTAINER_OF(node, rs__io_registration_t, node);
        RS__LOG_DEBUG(RS_LS_EVENT_LOOP, "releasing fd %d, still subscribed at loop destroy", reg->fd);
        if (reg->backend_events) {
            loop->backend->remove(loop, reg);
        }
        rs_list_remove(&reg->pending_node);
        reg->handle->impl = NULL;
        rs_mem_free(&loop->allocator, reg);
    }
    rs__registration_recycle_retired(loop);
    while ((node = rs_list_pop_front(&loop->reg_free)) != NULL) {
        rs_mem_free(&loop->allocator, RS_CONTAINER_OF(node, rs__io_registration_t, node));
    }
    loop->reg_free_count = 0;
}

/* Destroy, step 1: stop and join the loop's own thread; the calling thread
 * becomes the loop thread. False (nothing done) on the loop's own thread. */
static bool rs__event_loop_halt(rs_event_loop_t *loop) {
    if (rs__atomic_load_int(&loop->thread_running)) {
        if (rs_event_loop_is_on_loop_thread(loop)) {
            RS__LOG_ERROR(RS_LS_EVENT_LOOP, "rs_event_loop_destroy called on the loop's own thread; ignored");
            RESEAU_ASSERT(!"rs_event_loop_destroy on the loop's own thread");
            return false;
        }
        rs_event_loop_stop(loop);
        rs_event_loop_wait(loop);
    }
    rs__atomic_store_uptr(&loop->owner, rs_thread_current_id());
    return true;
}

/* Destroy, step 2: run what is left, CANCELED, until quiet. Tasks may land on
 * other halted loops meanwhile, so a group repeats this over all of its loops
 * until none had work; only then is any loop freed. */
static bool rs__event_loop_drain_canceled(rs_event_loop_t *loop) {
    bool ran = rs__event_loop_cancel_everything(loop);
    if (loop->local_count) {
        rs__event_loop_release_locals(loop);
        rs__event_loop_cancel_everything(loop);
        ran = true;
    }
    return ran;
}

/* Destroy, step 2 for halted loops (one, or a group's): end the live
 * channels, run what that scheduled, end the sockets left, run that, then
 * drain until every loop is quiet. Tasks may cross between the loops, so
 * each pass covers all of them before the next starts. */
static void rs__event_loops_drain(rs_event_loop_t **loops, size_t count) {
    bool ran;
    size_t i;
    do {
        ran = false;
        for (i = 0; i < count; ++i) {
            if (loops[i] && rs__event_loop_drain_canceled(loops[i])) {
                ran = true;
            }
        }
    } while (ran);
}

static void rs__event_loops_wind_down(rs_event_loop_t **loops, size_t count) {
    int kind;
    size_t i;
    for (kind = 0; kind < RS__MEMBER_KINDS; ++kind) {
        for (i = 0; i < count; ++i) {
            if (loops[i]) {
                rs__event_loop_end_members(loops[i], (rs__member_kind_t)kind);
            }
        }
        rs__event_loops_drain(loops, count);
    }
}

/* Destroy, step 3: release the OS resources and the memory. */
static void rs__event_loop_free(rs_event_loop_t *loop) {
    rs_allocator_t allocator = loop->allocator;
    rs__event_loop_detach_members(loop);
    rs__event_loop_release_locals(loop); /* frees the (now empty) array */
    rs__event_loop_sweep_registrations(loop);
    rs__scheduler_cleanup(&loop->scheduler);
    /* A thread whose push ran the task that led here may still be waking
     * the loop: its wake is a few instructions and one system call away. */
    while (rs__atomic_add_int(&loop->xq_pushers, 0) != 0) {
        rs_thread_sleep_ns(1000);
    }
    loop->backend->cleanup(loop);
    rs_mutex_cleanup(&loop->members_lock);
    rs__trace_unregister_loop(loop); /* after its last event */
    rs_mem_free(&allocator, loop);
}

RESEAU_API void rs_event_loop_destroy(rs_event_loop_t *loop) {
    if (!loop || !rs__event_loop_halt(loop)) {
        return;
    }
    rs__event_loops_wind_down(&loop, 1);
    rs__event_loop_free(loop);
}
