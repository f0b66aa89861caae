/*
 * Event loop internals shared by the loop core and its backends.
 *
 * A backend is a vtable behind rs_event_loop_t: it waits for readiness, then
 * dispatches what it found, and it owns the wakeup mechanism. The core owns
 * tasks, threads and the bookkeeping of subscriptions (rs__io_registration_t),
 * so every backend gets the same unsubscribe-during-dispatch and sweep rules.
 */

typedef struct rs__io_registration {
    rs_event_loop_t *loop;
    rs_io_handle_t *handle;
    rs_io_event_fn *on_event;
    void *user_data;
    int fd;
    int events;          /* wanted mask: READABLE|WRITABLE, or 0 while parked (nothing reported) */
    int backend_events;  /* the mask the backend holds; 0 when the backend does not have the fd */
    int error;           /* a deferred change the backend refused (RS_Exxx), reported as RS_IO_ERROR */
    int os_error;        /* the socket error (errno) the backend read with this event, where reading it
                          * cleared it (libkqueue reads SO_ERROR); 0 if none */
    bool subscribed;     /* false once unsubscribed: queued events are skipped */
    size_t slot;         /* backend-private index (the poll backend's array slot) */
    rs_list_node_t node; /* in loop->registrations while subscribed, then retired or free */
    rs_list_node_t pending_node; /* in loop->interest_dirty or loop->interest_failed */
} rs__io_registration_t;

typedef struct rs__backend_vtable {
    rs_event_loop_backend_t kind;
    int (*init)(rs_event_loop_t *loop);
    /* Close the backend's OS resources. Registrations are already released. */
    void (*cleanup)(rs_event_loop_t *loop);
    /* Block up to timeout_ms (negative: indefinitely) and remember what is ready. */
    void (*wait)(rs_event_loop_t *loop, int timeout_ms);
    /* Call on_event for each ready registration still subscribed. */
    void (*dispatch)(rs_event_loop_t *loop);
    int (*add)(rs_event_loop_t *loop, rs__io_registration_t *reg);
    int (*modify)(rs_event_loop_t *loop, rs__io_registration_t *reg, int events);
    void (*remove)(rs_event_loop_t *loop, rs__io_registration_t *reg);
    /* Make a blocked wait return. Any thread. Returns false if the OS refused. */
    bool (*wake)(rs_event_loop_t *loop);
    int (*get_fd)(const rs_event_loop_t *loop, int *fd_out);
    /* rs_event_loop_get_wait_handle, called on the loop thread; NULL where
     * the backend has none (RS_ENOTSUP): every POSIX one, which has get_fd. */
    int (*get_wait_handle)(rs_event_loop_t *loop, void **handle_out);
    /* Interest changes made inside a tick may wait for the tick's end
     * (rs__event_loop_set_interest): worth it where each change is a system
     * call (epoll_ctl), not where it is an array write (poll). */
    bool defers_interest;
} rs__backend_vtable_t;

typedef struct rs__local_object {
    const void *key;
    void *object;
    rs_local_object_fn *on_remove;
    void *user_data;
} rs__local_object_t;

/* While a wake is lost, the loop blocks at most this long between checks of its queue. */
#define RS__LOST_WAKE_POLL_MS 10

/* An object tied to a loop that the loop's destroy must end before it frees
 * anything: a channel, a socket, or an end of a Windows pipe (POSIX pipe ends
 * are sockets). Destroy ends the channels first (their socket handlers close
 * their sockets), runs what that scheduled, then ends the sockets left, runs
 * that, then the pipe ends, and finally detaches whatever the owners still
 * hold, so that their later destroy calls never reach the freed loop. */
typedef enum rs__member_kind {
    RS__MEMBER_CHANNEL,
    RS__MEMBER_SOCKET,
    RS__MEMBER_PIPE_READ,
    RS__MEMBER_PIPE_WRITE,
    RS__MEMBER_KINDS
} rs__member_kind_t;

/* What the loop does with a member, given its list node (the member itself is
 * only that node, so that it costs a channel or a socket 16 bytes). */
typedef struct rs__loop_member_ops {
    rs__member_kind_t kind;
    void (*end)(rs_list_node_t *member);    /* fire each pending callback once (RS_ECANCELED); loop thread */
    void (*detach)(rs_list_node_t *member); /* the loop is going away: forget it (no callbacks) */
} rs__loop_member_ops_t;

/* Unsubscribed registrations kept for reuse, so a connection's subscribe does
 * not allocate: enough for a burst of a few hundred connections closing in
 * one tick; beyond that they are freed. */
#define RS__REGISTRATION_CACHE 256

/* Length of the window over which busy time is summed into the load factor. */
#define RS__LOAD_FACTOR_WINDOW_NS RS_NS_PER_SEC

struct rs_event_loop {
    rs_allocator_t allocator;
    const rs__backend_vtable_t *backend;
    void *backend_data;
    rs_event_loop_custom_backend_t custom; /* the application's, for the custom backend (>>custom.c) */
    rs__scheduler_t scheduler;
    rs_clock_fn *clock_fn;
    void *clock_user_data;

    /* Cross-thread queue: a push-only lock-free stack (rs_task_t *, linked
     * through task->node.next) that the loop takes whole and reverses. A
     * mutex-protected list was measured slower (tools/bench async_queue). */
    void *xq_head;
    int wake_lost; /* atomic: a wake failed; pushes wake again until one succeeds */
    int xq_pushers; /* atomic: other threads inside rs__event_loop_xq_push (push, then wake) */

    /* Thread ownership (rs_thread_id_t, atomic) and the loop's own thread. */
    uintptr_t owner;
    rs_thread_t thread;
    int thread_running; /* atomic: rs_event_loop_start succeeded and not yet joined */
    int stop_requested; /* atomic */
    bool in_tick;       /* loop thread only: guards against re-entrant run_once */
    char thread_name[RS_THREAD_NAME_MAX + 1];
    size_t thread_stack_size;

    rs_list_t registrations; /* live subscriptions, swept at destroy */
    rs_list_t reg_retired;   /* unsubscribed during dispatch: reusable once the batch ends */
    rs_list_t reg_free;      /* reusable registrations, at most RS__REGISTRATION_CACHE */
    size_t reg_free_count;
    bool dispatching;        /* inside backend->dispatch: retired registrations may still be reported */
    rs_list_t interest_dirty;  /* wanted mask differs from the backend's: applied at the tick's end */
    rs_list_t interest_failed; /* the backend refused a deferred change: RS_IO_ERROR next dispatch */
    bool applying_deferred_interest; /* inside the tick's-end flush: the backend may queue the change */

    /* Channels and sockets on this loop (rs__loop_member_t), ended by destroy.
     * Under the lock: channels come and go on any thread. */
    rs_mutex_t members_lock;
    rs_list_t members[RS__MEMBER_KINDS];
    rs_list_t swept[RS__MEMBER_KINDS]; /* ended by destroy, still held by their owners */
    const rs__loop_member_ops_t *member_ops[RS__MEMBER_KINDS];
    int run_caller; /* atomic: rs_event_loop_run is running on a caller's thread */

    rs__local_object_t *locals;
    size_t local_count;
    size_t local_capacity;

    /* Counters; written by the loop thread (wakeups_sent by any), read by any. */
    RS__ALIGN8 rs_event_loop_stats_t stats;

    RS__ALIGN8 uint64_t load_factor; /* atomic: busy ns in the last full window */
    uint64_t load_window_start_ns;
    uint64_t load_window_busy_ns;

#if !RS__NO_TRACE
    rs__trace_loop_t trace; /* the owner's tracer calls in flight, and the live-loop list (>>trace) */
#endif
};
RS__ASSERT_ALIGN8(struct rs_event_loop, stats.ticks, loop_stats_ticks);
RS__ASSERT_ALIGN8(struct rs_event_loop, stats.io_events, loop_stats_io_events);
RS__ASSERT_ALIGN8(struct rs_event_loop, stats.tasks_run, loop_stats_tasks_run);
RS__ASSERT_ALIGN8(struct rs_event_loop, stats.wakeups_sent, loop_stats_wakeups_sent);
RS__ASSERT_ALIGN8(struct rs_event_loop, stats.xthread_tasks, loop_stats_xthread_tasks);
RS__ASSERT_ALIGN8(struct rs_event_loop, load_factor, loop_load_factor);

#if !RS__NO_TRACE
static rs__trace_loop_t *rs__event_loop_trace_part(rs_event_loop_t *loop) {
    return &loop->trace;
}
#endif

/* A registration from the free list, else a new one; NULL when out of memory. */
static rs__io_registration_t *rs__registration_new(rs_event_loop_t *loop, rs_io_handle_t *handle, int events,
                                                   rs_io_event_fn *on_event, void *user_data) {
    rs_list_node_t *node = rs_list_pop_front(&loop->reg_free);
    rs__io_registration_t *reg;
    if (node) {
        --loop->reg_free_count;
        reg = RS_CONTAINER_OF(node, rs__io_registration_t, node);
        memset(reg, 0, sizeof(*reg));
    } else {
        reg = (rs__io_registration_t *)rs_mem_calloc(&loop->allocator, 1, sizeof(rs__io_registration_t));
        if (!reg) {
            return NULL;
        }
    }
    reg->loop = loop;
    reg->handle = handle;
    reg->on_event = on_event;
    reg->user_data = user_data;
    reg->fd = handle->fd;
    reg->events = events;
    reg->subscribed = true;
    rs_list_node_reset(&reg->node);
    rs_list_node_reset(&reg->pending_node);
    return reg;
}

/* Keep a registration nobody can report any more for reuse, or free it. */
static void rs__registration_recycle(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    if (loop->reg_free_count < RS__REGISTRATION_CACHE) {
        rs_list_push_back(&loop->reg_free, &reg->node);
        ++loop->reg_free_count;
        return;
    }
    rs_mem_free(&loop->allocator, reg);
}

/* Unsubscribed: stop reporting now. Inside a dispatch batch the backend may
 * still hold reports naming it, so it is reused only once the batch ends. */
static void rs__registration_retire(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    reg->subscribed = false;
    reg->handle->impl = NULL;
    rs_list_remove(&reg->node);
    rs_list_remove(&reg->pending_node);
    if (loop->dispatching) {
        rs_list_push_back(&loop->reg_retired, &reg->node);
        return;
    }
    rs__registration_recycle(loop, reg);
}

/* After a dispatch batch: nothing names the retired registrations any more. */
static void rs__registration_recycle_retired(rs_event_loop_t *loop) {
    rs_list_node_t *node;
    while ((node = rs_list_pop_front(&loop->reg_retired)) != NULL) {
        rs__registration_recycle(loop, RS_CONTAINER_OF(node, rs__io_registration_t, node));
    }
}

/* Make the backend hold what the registration wants: add, modify, or (parked)
 * remove. */
static int rs__registration_apply(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    int err = RS_OK;
    if (reg->events == reg->backend_events) {
        return RS_OK;
    }
    if (reg->events == 0) {
        loop->backend->remove(loop, reg);
    } else if (reg->backend_events == 0) {
        err = loop->backend->add(loop, reg);
    } else {
        err = loop->backend->modify(loop, reg, reg->events);
    }
    if (!err) {
        reg->backend_events = reg->events;
    }
    return err;
}

/* Deliver one readiness report, filtered by the mask subscribed right now. */
static void rs__registration_dispatch(rs_event_loop_t *loop, rs__io_registration_t *reg, int ready) {
    int events;
    if (!reg->subscribed || reg->events == 0) {
        return; /* unsubscribed, or parked: nothing is wanted */
    }
    events = ready & (reg->events | RS_IO_HANGUP | RS_IO_ERROR);
    if (!events) {
        return;
    }
    rs__atomic_add_u64(&loop->stats.io_events, 1);
    rs__trace(RS_TRACE_IO_DISPATCH, loop, reg->handle, "io", 0, events);
    reg->on_event(loop, reg->handle, events, reg->user_data);
}

/* Non-blocking and close-on-exec, for fds made without SOCK_NONBLOCK/SOCK_CLOEXEC
 * (pipes, and sockets off Linux): shared by the poll backend and the socket layer. */
#if RESEAU_OS_POSIX
static int rs__set_nonblocking_cloexec(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        return rs_result_from_errno(errno);
    }
    return RS_OK;
}
#endif

/* Which registration holds each fd number: for backends whose kernel would
 * not refuse a second subscriber of one fd as epoll does (kqueue merges it
 * into the first knote, io_uring polls it twice), so that it gets RS_EEXIST
 * on every backend. Indexed by fd, grown to the highest fd subscribed. */
typedef struct rs__fd_owners {
    rs__io_registration_t **by_fd;
    size_t capacity;
} rs__fd_owners_t;

/* Record that `reg` holds its fd; RS_EEXIST if another one does; RS_ENOMEM. */
static RS__UNUSED int rs__fd_owners_claim(rs_allocator_t *allocator, rs__fd_owners_t *owners,
                                          rs__io_registration_t *reg) {
    size_t fd = (size_t)reg->fd;
    if (fd >= owners->capacity) {
        size_t capacity = owners->capacity ? owners->capacity : 64;
        rs__io_registration_t **by_fd;
        while (capacity <= fd) {
            capacity *= 2;
        }
        by_fd = (rs__io_registration_t **)rs_mem_realloc(allocator, owners->by_fd, owners->capacity * sizeof(*by_fd),
                                                         capacity * sizeof(*by_fd));
        if (!by_fd) {
            return RS_ENOMEM;
        }
        memset(by_fd + owners->capacity, 0, (capacity - owners->capacity) * sizeof(*by_fd));
        owners->by_fd = by_fd;
        owners->capacity = capacity;
    }
    if (owners->by_fd[fd] && owners->by_fd[fd] != reg) {
        return RS_EEXIST;
    }
    owners->by_fd[fd] = reg;
    return RS_OK;
}

static RS__UNUSED void rs__fd_owners_release(rs__fd_owners_t *owners, const rs__io_registration_t *reg) {
    size_t fd = (size_t)reg->fd;
    if (fd < owners->capacity && owners->by_fd[fd] == reg) {
        owners->by_fd[fd] = NULL;
    }
}

static RS__UNUSED void rs__fd_owners_cleanup(rs_allocator_t *allocator, rs__fd_owners_t *owners) {
    rs_mem_free(allocator, owners->by_fd);
    owners->by_fd = NULL;
    owners->capacity = 0;
}

/* A wait interrupted by a signal (EINTR) is resumed until its deadline: the
 * loop's own wakeups never rely on EINTR (rs_event_loop_stop writes the wake
 * fd, which ends the resumed wait at once), and io_uring's task work
 * interrupts blocking calls of any thread that ever had a ring. The deadline
 * of a wait of timeout_ms (0 when it does not time out or does not block): */
static RS__UNUSED uint64_t rs__wait_deadline_ns(int timeout_ms) {
    return timeout_ms > 0 ? rs_clock_now_ns() + (uint64_t)timeout_ms * RS_NS_PER_MS : 0;
}

/* The timeout of the resumed wait: -1 (none, as before), or the milliseconds
 * left until the deadline, rounded up so that it never ends early. */
static RS__UNUSED int rs__wait_left_ms(uint64_t deadline_ns, int timeout_ms) {
    uint64_t now_ns;
    if (timeout_ms < 0) {
        return -1;
    }
    now_ns = rs_clock_now_ns();
    return now_ns >= deadline_ns ? 0 : (int)((deadline_ns - now_ns + RS_NS_PER_MS - 1) / RS_NS_PER_MS);
}

/* Backends reach the loop's data through these, never through globals. */
static inline void *rs__backend_data(const rs_event_loop_t *loop) {
    return loop->backend_data;
}
