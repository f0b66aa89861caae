/*
 * Tracing hooks.
 *
 * The installed tracer lives in one static record, published through
 * rs__trace_current (&rs__trace_slot, or NULL when none). A hook's fast path
 * is one relaxed load of that pointer and a branch the compiler is told is
 * not taken. Past it, an emit marks itself in flight, loads the pointer
 * again and calls the tracer, and unmarks itself after. Where it marks itself
 * depends on the thread:
 *
 *   - On the loop's own thread (the event's loop is owned by the calling
 *     thread: rs_event_loop_is_on_loop_thread), in the loop's own flag,
 *     rs__trace_loop_t.active, which no other thread writes: its depth + 1
 *     (so a nested emit cannot clear an outer one's mark), then a load of the
 *     pointer, and after the call a release store of the depth back. The
 *     flag has a cache line to itself, so that line stays in the loop
 *     thread's cache: no write shared between loops, the point of having it
 *     (reseau-bench-loop trace_noop_mt). Only one thread owns a loop at a
 *     time, and a change of owner (start, wait, run, destroy) happens after
 *     the old owner's last use, so the flag has one writer at a time.
 *     The mark and the load must not be seen in the other order by the
 *     setter (a store followed by a load of another location may be, on
 *     every processor), and there are two ways to keep them in order:
 *       - plain marks, once membarrier(2)'s private expedited barrier is
 *         registered (rs__trace_plain_marks): a store and a load, with only
 *         the compiler kept from swapping them, and the setter issues the
 *         barrier, which runs a full memory barrier on every thread of the
 *         process, between its unpublishing and its reads of the flags. The
 *         locked exchange this saves was most of an event's cost once the
 *         clock read went (reseau-bench-loop trace_noop);
 *       - otherwise, a sequentially consistent exchange and load.
 *   - Anywhere else (a task scheduled from another thread, an event with no
 *     loop, and every rs_trace_emit, which any thread may call for any loop
 *     at any time, even while the loop changes owner): in the process-wide
 *     counter rs__trace_active, with a read-modify-write each way.
 *
 * rs_trace_set_tracer (serialized by rs__trace_lock) first unpublishes the
 * record (a sequentially consistent exchange), then waits until the counter
 * is 0 and then, for each live loop, until its flag is 0, and only then
 * rewrites and republishes the record. Why no emit is missed:
 *   - the counter: both sides pair a read-modify-write of the counter with a
 *     load or exchange of the pointer, so either the setter's read of the
 *     counter (an add of 0) sees an emit's increment, and waits for its
 *     decrement, or that increment comes later in the counter's order and
 *     its load sees the pointer unpublished.
 *   - a loop's flag, exchanged: the emit's exchange and load and the
 *     setter's exchange and load are all sequentially consistent, so they
 *     have one order that keeps each thread's program order. If the emit's
 *     load saw the old record, it came before the setter's exchange, so the
 *     emit's exchange came before the setter's load of the flag, which then
 *     reads that mark or a later write: a later mark (the setter waits on),
 *     or the release store that ended this call (which the setter's load
 *     synchronizes with). Loads and stores that are only acquire and release
 *     would allow both sides to miss each other's write; that is why these
 *     four are not.
 *   - a loop's flag, plainly marked: the barrier makes the emitting thread
 *     run a full barrier at some point while the setter is inside it (or
 *     the thread was switched, which is one). If that point came before the
 *     mark, the unpublishing (before the barrier) is visible to the load
 *     after the mark, which then sees no record. If it came after the mark,
 *     the mark is visible to the setter's read of the flag (after the
 *     barrier), which waits for it. Plain marks are only used once the
 *     barrier is registered, and from then on every setter issues it; an
 *     emit that reads rs__trace_plain_marks as 0 exchanges, which is correct
 *     with or without the barrier.
 *   - live loops: every loop is on the list rs__trace_loops from
 *     rs_event_loop_new until the end of its destroy (after its last event),
 *     and the setter holds rs__trace_loops_lock while it walks the list and
 *     waits, so a loop cannot be freed under it (its destroy waits for the
 *     lock). A loop created meanwhile starts with its flag 0.
 * The waits are short: once the pointer is NULL, only emits already past the
 * fast path can be marked. Under RESEAU_NO_THREADS there is one thread, and
 * all of this still holds (trivially).
 */
#if !RS__NO_TRACE
typedef struct rs__tracer {
    rs_trace_fn *fn;
    void *user_data;
} rs__tracer_t;

/* Room on each side of a loop's flag: more than a cache line, so that no
 * other field (some are written by other threads) shares its line. */
#define RS__TRACE_FLAG_PAD 64

/* A loop's part (rs_event_loop_t.trace, >>event_loop_private.c). */
typedef struct rs__trace_loop {
    char pad_before[RS__TRACE_FLAG_PAD];
    int active; /* the loop's owner's emits in flight (nested depth); atomic */
    char pad_after[RS__TRACE_FLAG_PAD];
    struct rs__trace_loop *prev, *next; /* on rs__trace_loops, under rs__trace_loops_lock */
} rs__trace_loop_t;

static rs__tracer_t rs__trace_slot;
static void *rs__trace_current; /* &rs__trace_slot while a tracer is installed */
static int rs__trace_active;    /* emits off their loop's thread between increment and decrement */
static rs_mutex_t rs__trace_lock = RS_MUTEX_INIT;
static rs__trace_loop_t *rs__trace_loops; /* every live loop's part */
static rs_mutex_t rs__trace_loops_lock = RS_MUTEX_INIT;
/* 1 once the barrier is registered: owner emits mark with a plain store
 * (see the top). Only a setter sets it, to 1, under rs__trace_lock; a test
 * may clear it to take the exchanging path. Atomic. */
static int rs__trace_plain_marks;
#if RS__HAVE_MEMBARRIER
static bool rs__trace_barrier_registered; /* under rs__trace_lock */
#endif

/* How long rs_trace_set_tracer sleeps between checks for emits in flight:
 * they are tracer calls, which are meant to take microseconds. */
#define RS__TRACE_WAIT_NS 10000u

/* >>event_loop_private.c: &loop->trace. */
static rs__trace_loop_t *rs__event_loop_trace_part(rs_event_loop_t *loop);
#endif

/* A new loop, before anything can emit events for it: onto the live list. */
static void rs__trace_register_loop(rs_event_loop_t *loop) {
#if RS__NO_TRACE
    (void)loop;
#else
    rs__trace_loop_t *part = rs__event_loop_trace_part(loop);
    rs_mutex_lock(&rs__trace_loops_lock);
    part->active = 0;
    part->prev = NULL;
    part->next = rs__trace_loops;
    if (rs__trace_loops) {
        rs__trace_loops->prev = part;
    }
    rs__trace_loops = part;
    rs_mutex_unlock(&rs__trace_loops_lock);
#endif
}

/* A loop about to be freed, after its last event: off the list. Waits for a
 * rs_trace_set_tracer that is walking the list. */
static void rs__trace_unregister_loop(rs_event_loop_t *loop) {
#if RS__NO_TRACE
    (void)loop;
#else
    rs__trace_loop_t *part = rs__event_loop_trace_part(loop);
    rs_mutex_lock(&rs__trace_loops_lock);
    if (part->prev) {
        part->prev->next = part->next;
    } else {
        rs__trace_loops = part->next;
    }
    if (part->next) {
        part->next->prev = part->prev;
    }
    part->prev = part->next = NULL;
    rs_mutex_unlock(&rs__trace_loops_lock);
#endif
}

RESEAU_API uint64_t rs_trace_event_timestamp_ns(const rs_trace_event_t *event) {
    if (!event) {
        return 0;
    }
    if (event->origin_ == event && event->timestamp_ns == 0) {
        /* The event the tracer was handed, a non-const local of
         * rs__trace_call's: the const is the tracer's promise, not storage. */
        ((rs_trace_event_t *)event)->timestamp_ns = rs_clock_now_ns();
    }
    return event->timestamp_ns;
}

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
#if RS__HAVE_MEMBARRIER
/* <linux/membarrier.h>'s commands, which older kernel headers lack. */
#define RS__MEMBARRIER_CMD_PRIVATE_EXPEDITED (1 << 3)
#define RS__MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED (1 << 4)
#endif

/* The setter's side of plain marks: a full barrier on every thread of the
 * process, once registered. Under rs__trace_lock. */
static void rs__trace_barrier(void) {
#if RS__HAVE_MEMBARRIER
    if (rs__trace_barrier_registered &&
        syscall(__NR_membarrier, RS__MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0) != 0) {
        /* The kernel refuses it only to an unregistered process. Should it
         * ever, the exchanges come back, and the marks already stored get a
         * millisecond to leave their store buffers (nanoseconds, in fact)
         * before the flags are read. */
        RS__LOG_ERROR(RS_LS_EVENT_LOOP, "membarrier failed after registering (errno %d); tracing exchanges again",
                      errno);
        rs__atomic_store_int(&rs__trace_plain_marks, 0);
        rs__trace_barrier_registered = false;
        rs_thread_sleep_ns(1000000u);
    }
#endif
}

/* Before a tracer is first published: registers the barrier and turns plain
 * marks on, where the kernel allows it (4.14+, not refused by seccomp).
 * Under rs__trace_lock. */
static void rs__trace_enable_plain_marks(void) {
#if RS__HAVE_MEMBARRIER
    if (!rs__trace_barrier_registered &&
        syscall(__NR_membarrier, RS__MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0) {
        rs__trace_barrier_registered = true;
        rs__atomic_store_int(&rs__trace_plain_marks, 1);
    }
#endif
}

static void rs__trace_call(const rs__tracer_t *tracer, rs_trace_event_type_t type, rs_event_loop_t *loop,
                           const void *subject, const char *name, int error, int io_events) {
    rs_trace_event_t event;
    event.type = type;
    event.loop = loop;
    event.timestamp_ns = 0; /* read on demand: rs_trace_event_timestamp_ns */
    event.subject = subject;
    event.name = name;
    event.error = error;
    event.io_events = io_events;
    event.origin_ = &event;
    tracer->fn(&event, tracer->user_data);
}

/* An emit counted in the process-wide counter: any thread, any loop or none. */
static void rs__trace_emit_shared(rs_trace_event_type_t type, rs_event_loop_t *loop, const void *subject,
                                  const char *name, int error, int io_events) {
    const rs__tracer_t *tracer;
    rs__atomic_add_int(&rs__trace_active, 1);
    tracer = (const rs__tracer_t *)rs__atomic_load_ptr(&rs__trace_current);
    if (tracer) {
        rs__trace_call(tracer, type, loop, subject, name, error, io_events);
    }
    rs__atomic_add_int(&rs__trace_active, -1);
}

/* The slow path: a tracer was installed when the caller looked. On the
 * loop's own thread the emit marks the loop's flag, elsewhere the counter. */
static void rs__trace_emit_slow(rs_trace_event_type_t type, rs_event_loop_t *loop, const void *subject,
                                const char *name, int error, int io_events) {
    if (loop && rs_event_loop_is_on_loop_thread(loop)) {
        rs__trace_loop_t *part = rs__event_loop_trace_part(loop);
        int depth = rs__atomic_load_int(&part->active); /* our own last write: only we write it */
        const rs__tracer_t *tracer;
        if (rs__atomic_load_int(&rs__trace_plain_marks)) {
            rs__atomic_store_int(&part->active, depth + 1);
            rs__atomic_compiler_barrier();
            tracer = (const rs__tracer_t *)rs__atomic_load_ptr(&rs__trace_current);
        } else {
            rs__atomic_exchange_int_sc(&part->active, depth + 1);
            tracer = (const rs__tracer_t *)rs__atomic_load_ptr_sc(&rs__trace_current);
        }
        if (tracer) {
            rs__trace_call(tracer, type, loop, subject, name, error, io_events);
        }
        rs__atomic_store_int(&part->active, depth);
        return;
    }
    rs__trace_emit_shared(type, loop, subject, name, error, io_events);
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
#if RS__NO_TRACE
    (void)loop;
    (void)subject;
    (void)name;
    (void)error;
#else
    /* The counter, never the loop's flag: this may run on a thread that owns
     * the loop only until another thread starts it (see the top). */
    if (rs__atomic_load_ptr_relaxed(&rs__trace_current) != NULL) {
        rs__trace_emit_shared(type, loop, subject, name, error, 0);
    }
#endif
}

RESEAU_API int rs_trace_set_tracer(rs_trace_fn *fn, void *user_data) {
#if RS__NO_TRACE
    (void)user_data;
    return fn ? RS_ENOTSUP : RS_OK;
#else
    rs__trace_loop_t *part;
    rs_mutex_lock(&rs__trace_lock);
    rs__atomic_exchange_ptr_sc(&rs__trace_current, NULL);
    rs__trace_barrier();
    /* An add of 0, not a load: the read must take its place in the
     * counter's order of read-modify-writes (see the top of this file). */
    while (rs__atomic_add_int(&rs__trace_active, 0) != 0) {
        rs_thread_sleep_ns(RS__TRACE_WAIT_NS);
    }
    rs_mutex_lock(&rs__trace_loops_lock);
    for (part = rs__trace_loops; part; part = part->next) {
        while (rs__atomic_load_int_sc(&part->active) != 0) {
            rs_thread_sleep_ns(RS__TRACE_WAIT_NS);
        }
    }
    rs_mutex_unlock(&rs__trace_loops_lock);
    rs__trace_slot.fn = fn;
    rs__trace_slot.user_data = user_data;
    if (fn) {
        rs__trace_enable_plain_marks();
        rs__atomic_exchange_ptr_sc(&rs__trace_current, &rs__trace_slot);
    }
    rs_mutex_unlock(&rs__trace_lock);
    return RS_OK;
#endif
}
