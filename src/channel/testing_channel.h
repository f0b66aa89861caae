/*
 * Testing channel: run a pipeline without sockets, on a loop you step by hand.
 *
 * A public helper for testing your own handlers. It owns an event loop that
 * never runs on its own thread (you drive it with rs_testing_channel_run),
 * and a channel whose leftmost handler is a fake socket: bytes you push are
 * delivered rightwards as read messages (respecting read windows), and bytes
 * the pipeline writes are collected for you to drain. Faults can be injected:
 * partial writes, a withheld read window, and a peer reset.
 *
 * Everything here runs on the thread that created the testing channel.
 */
typedef struct rs_testing_channel rs_testing_channel_t;

typedef struct rs_testing_channel_options {
    const rs_allocator_t *allocator;  /* copied (default: NULL, libc) */
    bool enable_read_back_pressure;   /* (default: false) */
    rs_event_loop_backend_t backend;  /* of the loop it owns (default: DEFAULT) */
    size_t write_high_water_mark;     /* of the channel (default: 0, the channel's default) */
} rs_testing_channel_options_t;

/* Create the loop and channel, run setup, and insert the fake socket. NULL
 * options mean defaults. NULL with *err_out set: RS_ENOMEM, or the error of
 * rs_event_loop_new, rs_channel_new or the channel's setup. */
RESEAU_API rs_testing_channel_t *rs_testing_channel_new(const rs_testing_channel_options_t *options, int *err_out);
/* Shut down (if needed), run until done, and free everything. */
RESEAU_API void rs_testing_channel_destroy(rs_testing_channel_t *testing);

RESEAU_API rs_channel_t *rs_testing_channel_get_channel(const rs_testing_channel_t *testing);
RESEAU_API rs_event_loop_t *rs_testing_channel_get_loop(const rs_testing_channel_t *testing);
/* Append a slot holding `handler` at the right end. RS_EINVAL for a NULL
 * testing channel or handler, or a handler without a vtable; RS_ENOMEM. */
RESEAU_API int rs_testing_channel_add_handler(rs_testing_channel_t *testing, rs_channel_handler_t *handler);
/* Run loop ticks until nothing is ready now (timers in the future are left).
 * RS_EBUSY if work is still ready after many ticks, an error of
 * rs_event_loop_run_once, or RS_EINVAL for a NULL testing channel. */
RESEAU_API int rs_testing_channel_run(rs_testing_channel_t *testing);

/* Queue bytes as if the peer sent them (copied). They are delivered on the
 * next run, in messages of at most RS_MAX_FRAGMENT_SIZE, as far as the window
 * to the right allows; the rest waits for a window update. RS_ENOTCONN after
 * an injected end of stream or reset, RS_ENOMEM, RS_EINVAL for a NULL testing
 * channel. */
RESEAU_API int rs_testing_channel_push_read(rs_testing_channel_t *testing, rs_byte_cursor_t data);
/* Bytes pushed but not yet delivered (held back by the window). */
RESEAU_API size_t rs_testing_channel_pending_read_bytes(const rs_testing_channel_t *testing);
/* Move everything the pipeline has written so far into `out` (appended).
 * RS_EINVAL for a NULL testing channel or out; RS_ENOMEM or RS_EOVERFLOW when
 * `out` cannot grow (the written bytes are kept). */
RESEAU_API int rs_testing_channel_drain_written(rs_testing_channel_t *testing, rs_byte_buf_t *out);
/* Writes accepted by the fake socket but not yet completed (see the write limit). */
RESEAU_API size_t rs_testing_channel_pending_write_bytes(const rs_testing_channel_t *testing);

/* Faults. A write limit makes the fake socket take at most `bytes_per_run`
 * bytes per run, completing messages only as their bytes are taken (0: no
 * limit, the default). */
RESEAU_API void rs_testing_channel_set_write_limit(rs_testing_channel_t *testing, size_t bytes_per_run);
/* While withheld, window increments reaching the fake socket are recorded but
 * not acted on; releasing applies them. */
RESEAU_API void rs_testing_channel_withhold_window(rs_testing_channel_t *testing, bool withhold);
/* The peer resets: queued writes complete with RS_ECONNRESET and the channel
 * shuts down with RS_ECONNRESET. */
RESEAU_API void rs_testing_channel_inject_reset(rs_testing_channel_t *testing);
/* End of stream from the peer: the channel shuts down with RS_EEOF after the
 * pushed bytes are delivered. */
RESEAU_API void rs_testing_channel_push_eof(rs_testing_channel_t *testing);

/* Whether on_shutdown_completed has fired, and its error (RS_OK until then).
 * error_out may be NULL. */
RESEAU_API bool rs_testing_channel_is_shut_down(const rs_testing_channel_t *testing, int *error_out);
