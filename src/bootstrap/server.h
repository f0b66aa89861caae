/*
 * Server bootstrap: a listener whose accepted connections arrive as pipelines.
 *
 * The listener accepts on one loop of the group; each accepted connection gets
 * a channel on a loop picked by best-of-two, with the socket handler in its
 * first slot, then the installers (rs_channel_installer_t), then
 * on_incoming_setup. Accepting survives running out of file descriptors
 * (EMFILE/ENFILE): it logs, backs off and keeps serving.
 *
 * Callbacks: on_incoming_setup fires once per accepted connection, on that
 * connection's loop thread: with the channel and RS_OK, or with NULL and the
 * error when its pipeline could not be built (then no shutdown follows).
 * on_incoming_shutdown fires once for each connection whose setup succeeded,
 * when its channel has shut down; the bootstrap destroys the channel after it
 * returns. on_listener_destroyed fires once, on the listener's loop thread,
 * after rs_server_bootstrap_destroy_listener, once the listener is closed and
 * every connection accepted through it has shut down.
 *
 * Threads: every function here may be called from any thread.
 * rs_server_bootstrap_new_listener and _destroy_listener block until the
 * listener's loop has started or stopped accepting (immediately when called on
 * that loop's thread), so that loop must be running. The bootstrap is
 * reference-counted: rs_server_bootstrap_destroy returns at once, and the
 * memory goes when its last listener is destroyed.
 */
typedef struct rs_server_bootstrap rs_server_bootstrap_t;
typedef struct rs_server_listener rs_server_listener_t;

typedef struct rs_server_bootstrap_options {
    const rs_allocator_t *allocator; /* copied (default: NULL, libc) */
    rs_event_loop_group_t *group;    /* listeners and connections go on its loops (required) */
} rs_server_bootstrap_options_t;

typedef void rs_server_on_incoming_setup_fn(rs_server_listener_t *listener, rs_channel_t *channel, int error,
                                            void *user_data);
typedef void rs_server_on_incoming_shutdown_fn(rs_server_listener_t *listener, rs_channel_t *channel, int error,
                                               void *user_data);
typedef void rs_server_on_listener_destroyed_fn(rs_server_listener_t *listener, void *user_data);

typedef struct rs_server_listener_options {
    /* A literal IPv4/IPv6 address (it decides the family), "localhost" (the
     * loopback address of the socket's domain; IPv4 at the default domain), a
     * path for LOCAL, or NULL for every address of the domain (0.0.0.0 or ::;
     * 0.0.0.0 at the default domain). Copied. (default: NULL) */
    const char *host;
    uint32_t port;                             /* 0 picks a free port (default: 0) */
    const rs_socket_options_t *socket_options; /* listener and accepted sockets (default: NULL, TCP) */
    int backlog;                               /* (default: 0, SOMAXCONN) */
    rs_channel_installer_t *const *installers; /* run in order after the socket handler (default: none) */
    size_t installer_count;
    bool enable_read_back_pressure;            /* for each channel (default: false) */
    uint32_t graceful_shutdown_timeout_ms;     /* for each channel (default: 0, none) */
    rs_server_on_incoming_setup_fn *on_incoming_setup;         /* required */
    rs_server_on_incoming_shutdown_fn *on_incoming_shutdown;   /* (default: NULL) */
    rs_server_on_listener_destroyed_fn *on_listener_destroyed; /* (default: NULL) */
    void *user_data;                                           /* for the three (default: NULL) */
} rs_server_listener_options_t;

/* NULL with *err_out set: RS_EINVAL (NULL options or no group), RS_ENOMEM. Any thread. */
RESEAU_API rs_server_bootstrap_t *rs_server_bootstrap_new(const rs_server_bootstrap_options_t *options, int *err_out);
/* Release the caller's reference; listeners keep it alive. Any thread. NULL does nothing. */
RESEAU_API void rs_server_bootstrap_destroy(rs_server_bootstrap_t *bootstrap);

/* Bind, listen and start accepting. NULL with *err_out set: RS_EINVAL (NULL
 * bootstrap, options or on_incoming_setup, a host that is not a literal,
 * "localhost" or a path, a NULL installer), RS_EADDRINUSE, RS_EACCES,
 * RS_ENOMEM, RS_EMFILE, ... (nothing is left behind, installers not taken). */
RESEAU_API rs_server_listener_t *rs_server_bootstrap_new_listener(rs_server_bootstrap_t *bootstrap,
                                                                  const rs_server_listener_options_t *options,
                                                                  int *err_out);
/* The bound address (with the port picked for port 0). RS_EINVAL for NULLs. */
RESEAU_API int rs_server_listener_get_address(const rs_server_listener_t *listener, rs_endpoint_t *out);
/* Stop accepting and close the listener; connections in flight finish on
 * their own, or, with abort_connections, are shut down abortively
 * (RS_ECANCELED). on_listener_destroyed follows, once, on the listener's
 * loop; the listener is freed when it returns, which may be before this call
 * returns on another thread. RS_EINVAL for NULL; RS_EALREADY if already
 * called, for as long as the listener still exists (a second call is only
 * safe while something keeps it alive, such as a connection in flight).
 * After the group was destroyed under a live listener (which closed its
 * socket and ended its connections), this call frees it on the calling
 * thread, firing on_listener_destroyed there, once. */
RESEAU_API int rs_server_bootstrap_destroy_listener(rs_server_listener_t *listener, bool abort_connections);
