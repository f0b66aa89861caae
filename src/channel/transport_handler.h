/*
 * Transport handler: the left end of a pipeline over a data source of yours,
 * where there is no OS socket (firmware's lwIP or modem sockets, a UART, a
 * radio, shared memory). It is the socket handler's contract without the
 * socket, and the testing channel's fake socket made public:
 *   - you hand it received bytes with rs_transport_handler_deliver, which
 *     copies as many as the read window allows into read messages and sends
 *     them rightwards; the rest stays yours until on_read_window says the
 *     window opened;
 *   - bytes the pipeline writes are queued and offered to your `write`
 *     callback from a loop task (never inside the write that queued them);
 *     take what you can, and call rs_transport_handler_resume_writes when
 *     you can take more. A message's completion fires once all its bytes
 *     were taken (RS_OK), or with RS_ECANCELED or your error;
 *   - when your peer closes, rs_transport_handler_end_of_stream shuts the
 *     channel down with RS_EEOF (or the error you give).
 * A graceful write shutdown waits until the queued bytes were taken, then
 * calls on_close; an abortive one fails them with RS_ECANCELED first.
 * See rs_event_loop_custom_backend_t for a firmware main loop that feeds it.
 *
 * Threads: every function and callback here runs on the channel's loop
 * thread (functions called elsewhere return RS_EWRONGTHREAD).
 */
typedef struct rs_transport_callbacks {
    /* Send `data` to your peer: set *taken to the bytes you took (0 to
     * data.len) and return RS_OK; call rs_transport_handler_resume_writes
     * once you can take more after taking less. Or return a negative RS_Exxx:
     * every queued write fails with it, later writes are refused with it
     * (so the stream never has a gap), and the channel shuts down with it.
     * Required. */
    int (*write)(void *user_data, rs_byte_cursor_t data, size_t *taken);
    /* The read window opened by `window` more bytes (SIZE_MAX without
     * back-pressure): deliver what you held back. Optional. */
    void (*on_read_window)(void *user_data, size_t window);
    /* The channel's write side has shut down (after every queued byte was
     * taken, unless abortive): close your end. `error` is the shutdown's
     * error. Optional. */
    void (*on_close)(void *user_data, int error);
} rs_transport_callbacks_t;

typedef struct rs_transport_handler_options {
    const rs_allocator_t *allocator;     /* copied (default: NULL, libc) */
    rs_transport_callbacks_t callbacks;  /* copied; write is required */
    void *user_data;                     /* passed to the callbacks (default: NULL) */
} rs_transport_handler_options_t;

/* A transport handler, to put in the leftmost slot of a channel with
 * rs_channel_slot_set_handler; the slot owns it from then on (destroyed with
 * the channel). Before that, free it with handler->vtable->destroy(handler).
 * NULL with *err_out set: RS_EINVAL for NULL options or no write callback;
 * RS_ENOMEM. Any thread. */
RESEAU_API rs_channel_handler_t *rs_transport_handler_new(const rs_transport_handler_options_t *options,
                                                          int *err_out);
/* Bytes received from your peer: copied into read messages (of at most
 * RS_MAX_FRAGMENT_SIZE) and sent rightwards, as far as the read window
 * allows; *taken (may be NULL) says how many were taken, and the rest is
 * yours to deliver again after on_read_window. RS_OK (also when the window is
 * closed and nothing was taken); RS_EINVAL for a handler that is not a
 * transport handler or not in a slot, or NULL data with a length;
 * RS_EWRONGTHREAD; RS_ENOTCONN once the read side shut down; RS_ENOMEM when
 * no message could be had (the channel then shuts down with RS_ENOMEM); or
 * the error of the handler to the right, which the channel shuts down with.
 * *taken is set in every case: no byte is counted twice or lost. */
RESEAU_API int rs_transport_handler_deliver(rs_channel_handler_t *handler, rs_byte_cursor_t data, size_t *taken);
/* Your transport can take bytes again: queued writes are offered to `write`
 * from a loop task. RS_OK; RS_EINVAL for a handler that is not a transport
 * handler or not in a slot; RS_EWRONGTHREAD. */
RESEAU_API int rs_transport_handler_resume_writes(rs_channel_handler_t *handler);
/* Your peer closed: the channel shuts down with `error` (RS_OK means a plain
 * end of stream, RS_EEOF), after what you delivered. Deliver first.
 * RS_OK; RS_EINVAL for a handler that is not a transport handler or not in a
 * slot; RS_EWRONGTHREAD. */
RESEAU_API int rs_transport_handler_end_of_stream(rs_channel_handler_t *handler, int error);
/* Bytes queued and not yet taken by `write`; 0 for NULL or another handler. */
RESEAU_API size_t rs_transport_handler_pending_write_bytes(const rs_channel_handler_t *handler);
