/*
 * Tracing hooks.
 *
 * One process-wide, optional tracer: a function that hears of task, I/O,
 * channel and TLS events as they happen, each with its loop and a timestamp.
 * None is installed by default, and then each hook costs one load of a
 * global and one predictable branch; with RESEAU_NO_TRACE defined the hooks
 * are compiled out entirely (and rs_trace_set_tracer returns RS_ENOTSUP).
 * With a tracer installed, an event on its loop's own thread costs two
 * plain stores to a flag of that loop's own (written by no other thread, so
 * loops on different threads do not slow each other) and the call; where
 * Linux's membarrier(2) is refused (before 4.14, seccomp) and on other
 * systems, the first store is an atomic exchange. An event on any other
 * thread (a cross-thread schedule, every rs_trace_emit) costs two atomic
 * additions on one process-wide counter instead. The clock is read only for
 * a tracer that asks for the event's time (rs_trace_event_timestamp_ns), so
 * a tracer that counts or filters events does not pay for it.
 *
 * The tracer runs on the thread where the event happens: the loop's thread,
 * except RS_TRACE_TASK_SCHEDULED, which runs on the thread that scheduled the
 * task (any thread, for a cross-thread schedule). Several threads may call it
 * at once. It must be quick, must not block, and must not call back into
 * reseau (no scheduling, no rs_trace_set_tracer; it may read the event and
 * call rs_trace_event_name). The event and what it points to are valid only
 * during the call; subject is an identity to compare, not to dereference
 * afterwards (a task may be freed as soon as it has run).
 */
typedef enum rs_trace_event_type {
    RS_TRACE_TASK_SCHEDULED = 0,     /* subject: the rs_task_t; name: its type_tag; on the scheduling thread */
    RS_TRACE_TASK_RUN = 1,           /* just before its function runs with RS_TASK_STATUS_RUN */
    RS_TRACE_TASK_CANCELED = 2,      /* just before its function runs with RS_TASK_STATUS_CANCELED */
    RS_TRACE_IO_DISPATCH = 3,        /* an I/O callback about to run; see rs_trace_event_t */
    RS_TRACE_CHANNEL_SETUP = 4,      /* subject: the rs_channel_t; before on_setup_completed; error */
    RS_TRACE_CHANNEL_SHUTDOWN = 5,   /* subject: the rs_channel_t; before on_shutdown_completed; error */
    RS_TRACE_TLS_HANDSHAKE_BEGIN = 6, /* subject: the TLS rs_channel_handler_t; negotiation started */
    RS_TRACE_TLS_HANDSHAKE_END = 7,  /* subject: the TLS handler; before on_negotiation_result; error.
                                        Once per handler, also for one whose channel ended before
                                        negotiation started (then with no BEGIN before it) */
    RS_TRACE_EVENT_TYPE_COUNT = 8
} rs_trace_event_type_t;

typedef struct rs_trace_event {
    rs_trace_event_type_t type;
    rs_event_loop_t *loop;  /* the loop the event belongs to (for TASK_SCHEDULED: the target loop) */
    uint64_t timestamp_ns;  /* 0 until rs_trace_event_timestamp_ns takes the event's time; then that
                               time. Read it through that function during the call */
    const void *subject;    /* what the event is about (see rs_trace_event_type_t) */
    const char *name;       /* a static string: the task's type_tag; "channel"; "tls"; for
                               IO_DISPATCH "io" (an fd subscription) or "io_op" (a completion op) */
    int error;              /* CHANNEL_SETUP, CHANNEL_SHUTDOWN, TLS_HANDSHAKE_END: RS_OK or the
                               RS_Exxx code the callback gets; 0 for the others */
    int io_events;          /* IO_DISPATCH of an fd subscription: the RS_IO_* bits handed to its
                               callback, subject its rs_io_handle_t. IO_DISPATCH of a completion
                               backend's socket operation (io_uring, IOCP): 0, and subject is the
                               backend's private operation record. 0 for the other events */
    const struct rs_trace_event *origin_; /* private: the event the tracer was handed */
} rs_trace_event_t;

typedef void rs_trace_fn(const rs_trace_event_t *event, void *user_data);

/*
 * Install the process-wide tracer (fn and user_data), replacing any other;
 * fn NULL removes it. Any thread, but not from inside a tracer (it would wait
 * for itself forever). Calls are serialized. When it returns, no call of the
 * previous tracer is still running and none will start: user_data of the old
 * tracer may be freed then. Events that happen while it runs may go to
 * neither tracer. Returns RS_OK, or RS_ENOTSUP when built with
 * RESEAU_NO_TRACE and fn is not NULL.
 */
RESEAU_API int rs_trace_set_tracer(rs_trace_fn *fn, void *user_data);

/* Emit an event through the installed tracer, if any (for add-ons such as
 * reseau_tls.h, and for applications with events of their own on a loop).
 * io_events is 0; a type out of range is ignored. Any thread; the tracer
 * runs on the calling thread. Nothing happens with RESEAU_NO_TRACE. */
RESEAU_API void rs_trace_emit(rs_trace_event_type_t type, rs_event_loop_t *loop, const void *subject,
                              const char *name, int error);

/*
 * The event's time: rs_clock_now_ns() (not the loop's clock_fn, so events of
 * different loops compare), read at the first call for the event and stored
 * in its timestamp_ns, so later calls give the same value; non-decreasing
 * over the events of one thread. Call it from the tracer, on the event it
 * was handed: the tracer runs as the event happens, so the read is the
 * event's time, and a tracer that never asks pays no clock read. On a copy
 * of the event it reads nothing and returns the copy's timestamp_ns (0 if
 * the time was not taken before the copy was made), so take the time before
 * copying an event. NULL gives 0. Any thread.
 */
RESEAU_API uint64_t rs_trace_event_timestamp_ns(const rs_trace_event_t *event);

/* "task_scheduled", "io_dispatch", ...; "unknown" out of range. */
RESEAU_API const char *rs_trace_event_name(rs_trace_event_type_t type);
