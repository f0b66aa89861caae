/*
 * Channels: a pipeline of handlers on one event loop (Netty / aws-c-io style).
 *
 * A channel is a doubly linked list of slots; each slot holds one handler.
 * Reads flow left to right (socket -> TLS -> application), writes right to
 * left. Data travels in rs_io_message_t from the loop's message pool.
 *
 * Read windows: every slot has a window, the bytes its handler is willing to
 * receive. A handler never sends a slot more than its window
 * (rs_channel_slot_send_message returns RS_EWINDOW). A handler that consumed
 * data reopens its window with rs_channel_slot_increment_read_window; updates
 * are batched into one task that walks right to left, so the socket reads
 * only what the scarcest slot can take. With back-pressure off, windows are
 * unlimited.
 *
 * Writability: handlers that buffer writes report their pending bytes (the
 * socket handler: what its socket has not handed to the kernel yet); when the
 * total passes the high-water mark the channel reports "not writable", and
 * "writable" again below the low-water mark, so a fast writer can pause.
 *
 * Shutdown: rs_channel_shutdown (any thread) shuts the read direction left to
 * right, then the write direction right to left; each handler reports with
 * rs_channel_slot_on_handler_shutdown_complete. Then pending channel tasks are
 * canceled and on_shutdown_completed fires, once. A graceful shutdown lets
 * handlers flush queued writes; an abortive one does not. An abortive request
 * made while a graceful shutdown is in progress upgrades it: the handler now
 * shutting down is called again with abort_immediately set, and every later
 * one gets it too. Other repeats are ignored. The error reported to
 * on_shutdown_completed is the first non-OK one: the shutdown's own, or a
 * handler's (the socket handler reports RS_ECANCELED, or the socket's error,
 * when writes it had accepted were not delivered). RS_EEOF, a plain end of
 * stream, gives way to the first handler error reported after it (a TLS
 * handler reports RS_ETLS_TRUNCATED for an end of stream without close_notify).
 *
 * Threads: every function here runs on the channel's loop thread, except
 * rs_channel_shutdown, rs_channel_schedule_task_now/future,
 * rs_channel_write_threadsafe (any thread),
 * rs_channel_acquire_hold/release_hold and rs_channel_destroy (any thread).
 * Callbacks and handler functions run on the loop thread.
 */
typedef struct rs_channel rs_channel_t;
typedef struct rs_channel_slot rs_channel_slot_t;
typedef struct rs_channel_handler rs_channel_handler_t;
typedef struct rs_io_message rs_io_message_t;

/* Largest payload of one message: the TLS record size, so a message maps to one record. */
#define RS_MAX_FRAGMENT_SIZE ((size_t)16 * 1024)
/* The read window of a handler without initial_window_size, with back-pressure
 * on: four fragments keep a socket reading at full speed, and bound what a
 * handler that stops reading has to hold. */
#define RS_CHANNEL_DEFAULT_READ_WINDOW (4 * RS_MAX_FRAGMENT_SIZE)

typedef enum rs_channel_direction {
    RS_CHANNEL_DIR_READ = 0,
    RS_CHANNEL_DIR_WRITE = 1
} rs_channel_direction_t;

typedef enum rs_io_message_type {
    RS_IO_MESSAGE_APPLICATION_DATA = 0
} rs_io_message_type_t;

/* A write reached the bottom of the pipeline (RS_OK: handed to the kernel) or
 * failed (RS_ECANCELED on abortive shutdown, or the socket's error). Exactly once.
 * `channel` (and message->owning_channel) is NULL when the completion comes
 * after the handler that queued the write was destroyed (by rs_channel_destroy,
 * or by removing or replacing its slot): the channel's memory may be gone. */
typedef void rs_io_message_on_completion_fn(rs_channel_t *channel, rs_io_message_t *message, int error,
                                            void *user_data);

struct rs_io_message {
    rs_byte_buf_t message_data;      /* the payload; capacity set by the pool */
    rs_io_message_type_t message_type;
    int message_tag;                 /* free for handlers */
    size_t copy_mark;                /* free for handlers: bytes already consumed */
    rs_channel_t *owning_channel;
    rs_io_message_on_completion_fn *on_completion; /* write completion (default: none) */
    void *user_data;                 /* for on_completion */
    rs_list_node_t queueing_handle;  /* free for the handler that currently owns the message */
    /* private: */
    void *pool;
    unsigned size_class;
};

typedef struct rs_channel_handler_stats {
    const char *handler_name;
    uint64_t bytes_read;
    uint64_t bytes_written;
    uint64_t handshake_start_ns; /* TLS: 0 when not applicable */
    uint64_t handshake_end_ns;
} rs_channel_handler_stats_t;

/* The handler contract. Ownership: a message passed to process_read_message or
 * process_write_message belongs to the handler from then on; it must forward it
 * or release it (rs_channel_release_message_to_pool), and must return RS_OK if
 * it took it. A non-zero return means the message was not taken.
 * Every entry may be NULL, with these defaults: process_*_message refuse
 * messages (RS_ENOTSUP); increment_read_window ignores the update; shutdown
 * completes at once; initial_window_size is RS_CHANNEL_DEFAULT_READ_WINDOW
 * with read back-pressure on (so a handler that never reopens its window
 * stalls its reader, as back-pressure means) and unlimited without it;
 * message_overhead is 0; destroy does nothing; the statistics entries and
 * trigger_read are skipped. So an application handler at the right end often
 * needs only process_read_message and destroy. */
typedef struct rs_channel_handler_vtable {
    int (*process_read_message)(rs_channel_handler_t *handler, rs_channel_slot_t *slot, rs_io_message_t *message);
    int (*process_write_message)(rs_channel_handler_t *handler, rs_channel_slot_t *slot, rs_io_message_t *message);
    /* The slot to the right can take `size` more bytes. */
    int (*increment_read_window)(rs_channel_handler_t *handler, rs_channel_slot_t *slot, size_t size);
    /* Shut one direction down, then call rs_channel_slot_on_handler_shutdown_complete
     * (now or later). abort_immediately: drop queued work instead of flushing it.
     * While a graceful shutdown of a direction is pending (not yet completed),
     * this may be called again for the same direction with abort_immediately
     * set, when the shutdown is upgraded: stop flushing and complete once. */
    int (*shutdown)(rs_channel_handler_t *handler, rs_channel_slot_t *slot, rs_channel_direction_t dir, int error_code,
                    bool abort_immediately);
    size_t (*initial_window_size)(rs_channel_handler_t *handler);
    /* Bytes this handler adds to each message written through it (TLS framing). */
    size_t (*message_overhead)(rs_channel_handler_t *handler);
    /* Free the handler. Called once, when the channel is destroyed. */
    void (*destroy)(rs_channel_handler_t *handler);
    /* Optional (may be NULL): */
    void (*reset_statistics)(rs_channel_handler_t *handler);
    void (*gather_statistics)(rs_channel_handler_t *handler, rs_channel_handler_stats_t *stats_out);
    /* Ask a data source (the socket handler) to read now, e.g. after a pause. */
    void (*trigger_read)(rs_channel_handler_t *handler);
} rs_channel_handler_vtable_t;

/* Embed in your handler's struct; set vtable and impl before rs_channel_slot_set_handler. */
struct rs_channel_handler {
    const rs_channel_handler_vtable_t *vtable;
    void *impl;
    rs_channel_slot_t *slot; /* set by the channel */
};

typedef void rs_channel_on_setup_completed_fn(rs_channel_t *channel, int error, void *user_data);
/* A write made with rs_channel_write_threadsafe is done: RS_OK once all its
 * bytes reached the kernel; RS_ECANCELED if the channel shut down before they
 * entered the pipeline; else the first error of the handlers. Loop thread, once. */
typedef void rs_channel_write_done_fn(rs_channel_t *channel, int error, void *user_data);
typedef void rs_channel_on_shutdown_completed_fn(rs_channel_t *channel, int error, void *user_data);
typedef void rs_channel_on_writability_changed_fn(rs_channel_t *channel, bool writable, void *user_data);

typedef struct rs_channel_options {
    rs_event_loop_t *loop;                                /* required */
    const rs_allocator_t *allocator;                      /* copied (default: NULL, libc) */
    rs_channel_on_setup_completed_fn *on_setup_completed; /* fired once, asynchronously (default: NULL) */
    rs_channel_on_shutdown_completed_fn *on_shutdown_completed; /* fired once (default: NULL) */
    void *user_data;                                      /* for the three callbacks (default: NULL) */
    bool enable_read_back_pressure;                       /* windows enforced (default: false, unlimited) */
    size_t write_high_water_mark;                         /* bytes (default: 0, meaning 1 MiB) */
    size_t write_low_water_mark;                          /* bytes (default: 0, meaning high / 4) */
    rs_channel_on_writability_changed_fn *on_writability_changed; /* (default: NULL) */
    /* A graceful shutdown that has not finished after this long turns abortive,
     * with RS_ETIMEDOUT unless it already had an error: for peers that stop
     * reading. (default: 0, wait as long as the peer takes) */
    uint32_t graceful_shutdown_timeout_ms;
} rs_channel_options_t;

/* Create a channel on options->loop. on_setup_completed fires later on the
 * loop thread (its error RS_ENOMEM or RS_ECANCELED if setup failed); add slots
 * then. NULL with *err_out RS_EINVAL for NULL options (not accepted) or a NULL
 * loop, RS_ENOMEM. Any thread. */
RESEAU_API rs_channel_t *rs_channel_new(const rs_channel_options_t *options, int *err_out);
/* Destroy handlers and free the channel once shutdown has completed and every
 * hold is released; before that, the destroy is deferred. Any thread. */
RESEAU_API void rs_channel_destroy(rs_channel_t *channel);
/* Start shutting down with `error_code` (RS_OK for a normal close). Any thread;
 * the handlers' shutdown and on_shutdown_completed run later on the loop thread;
 * repeats are ignored. RS_OK, or RS_EINVAL for a NULL channel. */
RESEAU_API int rs_channel_shutdown(rs_channel_t *channel, int error_code);
/* Like rs_channel_shutdown, but handlers drop queued writes instead of flushing.
 * After a graceful request it upgrades the shutdown in progress (once); its
 * error_code is used if the shutdown had none. RS_OK, or RS_EINVAL for NULL. */
RESEAU_API int rs_channel_shutdown_abortively(rs_channel_t *channel, int error_code);
/* Holds keep the memory alive across rs_channel_destroy. Any thread. */
RESEAU_API void rs_channel_acquire_hold(rs_channel_t *channel);
RESEAU_API void rs_channel_release_hold(rs_channel_t *channel);

RESEAU_API rs_event_loop_t *rs_channel_get_loop(const rs_channel_t *channel);
RESEAU_API bool rs_channel_is_on_loop_thread(const rs_channel_t *channel);
RESEAU_API rs_channel_slot_t *rs_channel_get_first_slot(const rs_channel_t *channel);
RESEAU_API bool rs_channel_is_writable(const rs_channel_t *channel);
/* Bytes the handlers hold that have not reached the kernel yet (for the socket
 * handler: its socket's queue), as writability counts them. 0 for NULL. Loop thread. */
RESEAU_API size_t rs_channel_get_pending_write_bytes(const rs_channel_t *channel);

/* Write `data` from ANY thread: the bytes are copied, and enter the pipeline
 * on the loop thread, in order, at the rightmost handler that takes writes
 * (as if the handlers right of it had passed them on), in messages of at most
 * RS_MAX_FRAGMENT_SIZE. From this call on they count toward the channel's
 * pending write bytes and writability, so the writer feels the pressure at
 * once: while the bytes written and not yet in the kernel pass the high-water
 * mark, the call returns RS_EAGAIN, and on_writability_changed(true) says when
 * to go on. So memory stays bounded by the high-water mark plus one write.
 * on_done (may be NULL) runs once, on the loop thread (see
 * rs_channel_write_done_fn). The channel must not be destroyed during the
 * call (hold it: rs_channel_acquire_hold). Errors: RS_EINVAL (NULL channel,
 * empty or NULL data), RS_EAGAIN (over the high-water mark), RS_ESHUTDOWN
 * (shutdown began), RS_ENOMEM. On error on_done is not called. */
RESEAU_API int rs_channel_write_threadsafe(rs_channel_t *channel, rs_byte_cursor_t data,
                                          rs_channel_write_done_fn *on_done, void *user_data);

/* Channel tasks: canceled (run with CANCELED) at shutdown; scheduled after
 * shutdown, they run as CANCELED at once (still asynchronously), and the
 * channel's memory stays valid until they have run, even across
 * rs_channel_destroy. */
typedef struct rs_channel_task rs_channel_task_t;
typedef void rs_channel_task_fn(rs_channel_task_t *task, void *arg, rs_task_status_t status);
struct rs_channel_task {
    rs_task_t wrapper;     /* private */
    rs_list_node_t node;   /* private */
    rs_channel_t *channel; /* private */
    uint64_t run_at_ns;    /* private: carried across the hop to the loop thread */
    rs_channel_task_fn *fn;
    void *arg;
    const char *type_tag;
};
RESEAU_API void rs_channel_task_init(rs_channel_task_t *task, rs_channel_task_fn *fn, void *arg, const char *type_tag);
/* Any thread. RS_OK, or: RS_EINVAL for a NULL channel or task, or a task not
 * initialised with rs_channel_task_init; RS_EBUSY if the task is already
 * scheduled and has not started running (it is left where it is). */
RESEAU_API int rs_channel_schedule_task_now(rs_channel_t *channel, rs_channel_task_t *task);
RESEAU_API int rs_channel_schedule_task_future(rs_channel_t *channel, rs_channel_task_t *task, uint64_t run_at_ns);

/* Messages from the loop's pool: capacity min(size_hint, RS_MAX_FRAGMENT_SIZE +
 * 1 KiB of framing room). Memory follows the hint: a message comes from the
 * smallest size class that fits (128 B, 1 KiB, a fragment with framing room),
 * and reused blocks make steady-state I/O allocation-free. NULL on
 * out-of-memory, for a NULL channel, off the loop thread, or before setup
 * completed. Loop thread. */
RESEAU_API rs_io_message_t *rs_channel_acquire_message_from_pool(rs_channel_t *channel, rs_io_message_type_t type,
                                                                size_t size_hint);
/* The message goes back to its own pool: `channel` is not used and may be NULL.
 * A NULL message is ignored. */
RESEAU_API void rs_channel_release_message_to_pool(rs_channel_t *channel, rs_io_message_t *message);

/* ---- slots ---- */

/* NULL with *err_out set: RS_EINVAL for a NULL channel, RS_EWRONGTHREAD, RS_ENOMEM. */
RESEAU_API rs_channel_slot_t *rs_channel_slot_new(rs_channel_t *channel, int *err_out);
/* Append to_add (a slot of this channel, not linked yet) at the right end.
 * Loop thread. RS_EINVAL for a NULL channel or to_add, a slot of another
 * channel or one already linked; RS_EWRONGTHREAD off the loop thread. */
RESEAU_API int rs_channel_slot_insert_end(rs_channel_t *channel, rs_channel_slot_t *to_add);
/* RS_EINVAL for a NULL slot; RS_EWRONGTHREAD off the loop thread; RS_EINVAL for
 * a NULL to_add, or a to_add of another channel (or slot itself). */
RESEAU_API int rs_channel_slot_insert_right(rs_channel_slot_t *slot, rs_channel_slot_t *to_add);
RESEAU_API int rs_channel_slot_insert_left(rs_channel_slot_t *slot, rs_channel_slot_t *to_add);
/* Unlink and free the slot and destroy its handler. RS_EINVAL for a NULL slot,
 * RS_EWRONGTHREAD off the loop thread. */
RESEAU_API int rs_channel_slot_remove(rs_channel_slot_t *slot);
/* Put `new_handler` in place of the slot's handler, which is destroyed (ALPN-style).
 * Errors as for rs_channel_slot_set_handler; the old handler is then kept. */
RESEAU_API int rs_channel_slot_replace_handler(rs_channel_slot_t *slot, rs_channel_handler_t *new_handler);
/* Attach the handler; the slot's window becomes its initial_window_size.
 * Loop thread. RS_EINVAL for a NULL slot; RS_EWRONGTHREAD off the loop thread
 * (checked before the rest); RS_EINVAL for a NULL handler or one without a vtable. */
RESEAU_API int rs_channel_slot_set_handler(rs_channel_slot_t *slot, rs_channel_handler_t *handler);
/* Add `handler` in a new slot to the right of `slot` (insert_right +
 * set_handler), as installers and TLS do. The slot is returned through
 * *slot_out (may be NULL). RS_EINVAL for NULLs, RS_ENOMEM, RS_EWRONGTHREAD
 * off the loop thread; on error no slot is left and the handler stays the
 * caller's. Loop thread. */
RESEAU_API int rs_channel_slot_add_handler_right(rs_channel_slot_t *slot, rs_channel_handler_t *handler,
                                                 rs_channel_slot_t **slot_out);
RESEAU_API rs_channel_handler_t *rs_channel_slot_get_handler(const rs_channel_slot_t *slot);
RESEAU_API rs_channel_slot_t *rs_channel_slot_get_left(const rs_channel_slot_t *slot);
RESEAU_API rs_channel_slot_t *rs_channel_slot_get_right(const rs_channel_slot_t *slot);
RESEAU_API rs_channel_t *rs_channel_slot_get_channel(const rs_channel_slot_t *slot);

/* Pass a message on: READ goes to the right neighbour, WRITE to the left.
 * Loop thread. The neighbour's process_*_message runs inside this call
 * (synchronously, re-entrantly), not from a task. RS_EINVAL for a NULL slot
 * or message or another `dir`, RS_EWRONGTHREAD off the loop thread (checked
 * before the message), RS_EWINDOW if a READ
 * message is larger than the right slot's window, RS_ENOTCONN if there is no
 * neighbour that way, RS_ENOTSUP if its handler takes no messages that way
 * (no window is used then); the caller then keeps the message. Otherwise what the neighbour's handler
 * returned (on success it owns the message). */
RESEAU_API int rs_channel_slot_send_message(rs_channel_slot_t *slot, rs_io_message_t *message,
                                           rs_channel_direction_t dir);
/* The slot's handler can take `size` more bytes; batched, propagated leftwards.
 * RS_EINVAL for a NULL slot, RS_EWRONGTHREAD off the loop thread. */
RESEAU_API int rs_channel_slot_increment_read_window(rs_channel_slot_t *slot, size_t size);
/* How much may be sent to the right neighbour now (SIZE_MAX without back-pressure). */
RESEAU_API size_t rs_channel_slot_downstream_read_window(const rs_channel_slot_t *slot);
/* Sum of message_overhead of the handlers to the left of `slot`. */
RESEAU_API size_t rs_channel_slot_upstream_message_overhead(const rs_channel_slot_t *slot);
/* Handlers that buffer writes report their queued bytes (delta may be negative). */
RESEAU_API void rs_channel_slot_add_pending_write_bytes(rs_channel_slot_t *slot, int64_t delta);
/* A handler's part of shutdown is done; the channel moves to the next one (its
 * handler's shutdown runs inside this call). RS_OK (also once already shut
 * down); RS_EINVAL for a NULL slot or another `dir`, RS_EWRONGTHREAD off
 * the loop thread. */
RESEAU_API int rs_channel_slot_on_handler_shutdown_complete(rs_channel_slot_t *slot, rs_channel_direction_t dir,
                                                           int error_code, bool abort_immediately);

/* ---- statistics ---- */

/* Called every interval with one record per handler, left to right. */
typedef void rs_channel_statistics_fn(rs_channel_t *channel, const rs_channel_handler_stats_t *records, size_t count,
                                      void *user_data);
/* interval_ms 0 or fn NULL turns reporting off. RS_EINVAL for a NULL channel,
 * RS_EWRONGTHREAD off the loop thread. Loop thread. */
RESEAU_API int rs_channel_set_statistics_handler(rs_channel_t *channel, uint32_t interval_ms,
                                                 rs_channel_statistics_fn *fn, void *user_data);
