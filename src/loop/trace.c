/*
 * Tracing hooks.
 *
 * The installed tracer lives in one static record, published through
 * rs__trace_current (&rs__trace_slot, or NULL when none). A hook's fast path
 * is one relaxed load of that pointer and a branch the compiler is told is
 * not taken. Past it, an emit counts itself in rs__trace_active before it
 * loads the pointer again (acquire) and calls the tracer, and uncounts itself
 * after.
 *
 * rs_trace_set_tracer (serialized by rs__trace_lock) first unpublishes the
 * record, then waits until no emit is counted, and only then rewrites and
 * republishes it. Both sides pair a read-modify-write of the counter with a
 * load or exchange of the pointer, so either the setter's read of the counter
 * sees an emit's increment (and waits for its decrement), or that emit's
 * increment comes later in the counter's order and its load sees the pointer
 * unpublished. The wait is short: once the pointer is NULL, only emits already
 * past the fast path can be counted.
 */
#if !RS__NO_TRACE
typedef struct rs__tracer {
    rs_trace_fn *fn;
    void *user_data;
} rs__tracer_t;

static rs__tracer_t rs__trace_slot;
static void *rs__trace_current; /* &rs__trace_slot while a tracer is installed */
static int rs__trace_active;    /* emits between their increment and decrement */
static rs_mutex_t rs__trace_lock = RS_MUTEX_INIT;

/* How long rs_trace_set_tracer sleeps between checks for emits in flight:
 * they are tracer calls, which are meant to take microseconds. */
#define RS__TRACE_WAIT_NS 10000u
#endif

RESEAU_API const char *rs_trace_event_name(rs_trace_event_type_t type) {
    switch (type) {
    case RS_TRACE_TASK_SCHEDULED:
        return "task_scheduled";
    case RS_TRACE_TASK_RUN:
        return "task_run";
    case RS_TRACE_TASK_CANCELED:
        return "task_canceled";
    case RS_TRACE_IO_DISPATCH:
        return "io_dispatch";
    case RS_TRACE_CHANNEL_SETUP:
        return "channel_setup";
    case RS_TRACE_CHANNEL_SHUTDOWN:
        return "channel_shutdown";
    case RS_TRACE_TLS_HANDSHAKE_BEGIN:
        return "tls_handshake_begin";
    case RS_TRACE_TLS_HANDSHAKE_END:
        return "tls_handshake_end";
    case RS_TRACE_EVENT_TYPE_COUNT:
        break;
    }
    return "unknown";
}

#if !RS__NO_TRACE
/* The slow path: a tracer was installed when the caller looked. */
static void rs__trace_emit_slow(rs_trace_event_type_t type, rs_event_loop_t *loop, const void *subject,
                                const char *name, int error, int io_events) {
    const rs__tracer_t *tracer;
    rs__atomic_add_int(&rs__trace_active, 1);
    tracer = (const rs__tracer_t *)rs__atomic_load_ptr(&rs__trace_current);
    if (tracer) {
        rs_trace_event_t event;
        event.type = type;
        event.loop = loop;
        event.timestamp_ns = rs_clock_now_ns();
        event.subject = subject;
        event.name = name;
        event.error = error;
        event.io_events = io_events;
        tracer->fn(&event, tracer->user_data);
    }
    rs__atomic_add_int(&rs__trace_active, -1);
}
#endif

/* The hook every event site calls: free of side effects and nearly of cost
 * when no tracer is installed, and nothing at all with RESEAU_NO_TRACE. */
static inline void rs__trace(rs_trace_event_type_t type, rs_event_loop_t *loop, const void *subject,
                             const char *name, int error, int io_events) {
#if RS__NO_TRACE
    (void)type;
    (void)loop;
    (void)subject;
    (void)name;
    (void)error;
    (void)io_events;
#else
    if (RS__UNLIKELY(rs__atomic_load_ptr_relaxed(&rs__trace_current) != NULL)) {
        rs__trace_emit_slow(type, loop, subject, name, error, io_events);
    }
#endif
}

RESEAU_API void rs_trace_emit(rs_trace_event_type_t type, rs_event_loop_t *loop, const void *subject,
                              const char *name, int error) {
    if ((unsigned)type >= (unsigned)RS_TRACE_EVENT_TYPE_COUNT) {
        return;
    }
    rs__trace(type, loop, subject, name, error, 0);
}

RESEAU_API int rs_trace_set_tracer(rs_trace_fn *fn, void *user_data) {
#if RS__NO_TRACE
    (void)user_data;
    return fn ? RS_ENOTSUP : RS_OK;
#else
    rs_mutex_lock(&rs__trace_lock);
    rs__atomic_exchange_ptr(&rs__trace_current, NULL);
    /* An add of 0, not a load: the read must take its place in the
     * counter's order of read-modify-writes (see the top of this file). */
    while (rs__atomic_add_int(&rs__trace_active, 0) != 0) {
        rs_thread_sleep_ns(RS__TRACE_WAIT_NS);
    }
    rs__trace_slot.fn = fn;
    rs__trace_slot.user_data = user_data;
    if (fn) {
        rs__atomic_exchange_ptr(&rs__trace_current, &rs__trace_slot);
    }
    rs_mutex_unlock(&rs__trace_lock);
    return RS_OK;
#endif
}
