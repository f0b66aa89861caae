/*
 * Socket channel handler: the left end of a pipeline over a connected socket.
 *
 * Each read system call takes min(downstream window, max_read_size) bytes,
 * delivered as messages of at most RS_MAX_FRAGMENT_SIZE; at most a per-tick
 * budget of reads, so connections on one loop share it fairly. It pauses
 * reading while the window is closed. All data
 * that arrived before a hang-up is delivered before the channel shuts down
 * (with RS_EEOF for a clean end of stream, or the socket's error). Writes are
 * queued on the socket (coalesced with sendmsg) and each message's completion
 * fires once. A graceful write shutdown waits for queued writes to reach the
 * kernel before closing; an abortive one cancels them.
 *
 * The handler owns the socket, which must be connected and assigned to the
 * channel's loop. Loop thread only.
 */
typedef struct rs_socket_handler_options {
    size_t max_read_size;    /* bytes per read system call, at most 64 KiB (default: 0, 64 KiB) */
    uint32_t reads_per_tick; /* read system calls per readiness event (default: 0, 4) */
} rs_socket_handler_options_t;

/* NULL options mean defaults. NULL with *err_out set on failure: RS_EINVAL for
 * a NULL, unassigned or closed socket; RS_EWRONGTHREAD off the socket's loop
 * thread; RS_ENOMEM. On success the socket belongs to the handler (destroyed with it). */
RESEAU_API rs_channel_handler_t *rs_socket_handler_new(const rs_allocator_t *allocator, rs_socket_t *socket,
                                                       const rs_socket_handler_options_t *options, int *err_out);
/* The handler's socket, e.g. for its addresses; NULL for NULL or for a handler
 * that is not a socket handler. Loop thread. */
RESEAU_API rs_socket_t *rs_socket_handler_get_socket(const rs_channel_handler_t *handler);
