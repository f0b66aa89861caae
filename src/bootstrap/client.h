/*
 * Client bootstrap: "connect to host:port and give me a pipeline".
 *
 * rs_client_bootstrap_connect resolves the name (an IP literal or a Unix path
 * is connected to as it is, without asking the resolver), connects with Happy
 * Eyeballs (RFC 8305, with the figures of draft-ietf-happy-happyeyeballs-v3), builds a
 * channel with the socket handler in its first slot, runs the installers
 * (rs_channel_installer_t) and then calls on_setup with the ready channel.
 *
 * Happy Eyeballs: connecting starts on the first DNS answer; if the IPv4 answer
 * comes first, the IPv6 one is awaited for up to resolution_delay_ms. Attempts
 * alternate the families, IPv6 first, addresses that failed before (as the
 * resolver recorded them) last. The next attempt starts after
 * connection_attempt_delay_ms, or at once when the current one fails. The first
 * connection wins; the other attempts are closed. Answers that arrive late join
 * the list. Every failure is recorded with the resolver.
 *
 * Callbacks: on_setup fires exactly once, on the connection's loop thread,
 * never inside rs_client_bootstrap_connect: with the channel and RS_OK, or with
 * NULL and the error (the last attempt's error when every address failed,
 * RS_ETIMEDOUT after connect_timeout_ms, a DNS error, an installer's error).
 * on_shutdown fires exactly once if and only if setup succeeded, on the same
 * thread, when the channel has shut down; the bootstrap destroys the channel
 * after it returns. To close a connection, rs_channel_shutdown(channel, ...).
 *
 * Threads: every function here may be called from any thread. The bootstrap is
 * reference-counted: rs_client_bootstrap_destroy returns at once, and the
 * memory goes when the last connection made through it has shut down.
 */
typedef struct rs_client_bootstrap rs_client_bootstrap_t;

/* Connection Attempt Delay of RFC 8305 (§5), and its clamps. */
#define RS_HAPPY_EYEBALLS_ATTEMPT_DELAY_MS 250
#define RS_HAPPY_EYEBALLS_ATTEMPT_DELAY_MIN_MS 10
#define RS_HAPPY_EYEBALLS_ATTEMPT_DELAY_MAX_MS 2000
/* Resolution Delay: how long an IPv4 answer waits for the IPv6 one (§3). */
#define RS_HAPPY_EYEBALLS_RESOLUTION_DELAY_MS 50
#define RS_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS 10000

typedef struct rs_client_bootstrap_options {
    const rs_allocator_t *allocator;     /* copied (default: NULL, libc) */
    rs_event_loop_group_t *group;        /* connections go on its loops (required) */
    rs_host_resolver_t *resolver;        /* borrowed; must outlive the bootstrap (default: NULL, the
                                            bootstrap makes its own with default options) */
    uint32_t connection_attempt_delay_ms; /* clamped to 10..2000 (default: 0, meaning 250) */
    uint32_t resolution_delay_ms;        /* (default: 0, meaning 50) */
} rs_client_bootstrap_options_t;

typedef void rs_client_on_setup_fn(rs_client_bootstrap_t *bootstrap, rs_channel_t *channel, int error,
                                   void *user_data);
typedef void rs_client_on_shutdown_fn(rs_client_bootstrap_t *bootstrap, rs_channel_t *channel, int error,
                                      void *user_data);

typedef struct rs_client_connect_options {
    const char *host;      /* a name, an IPv4/IPv6 literal, or for LOCAL a path; copied (required) */
    uint32_t port;         /* 1..65535 for IPv4/IPv6; ignored for LOCAL (required) */
    /* Options of each socket (default: NULL, defaults). For a name, the domain
     * is ignored: each address uses its own family; LOCAL means a Unix path;
     * connect_timeout_ms bounds the whole connection, all attempts included
     * (default: 0, meaning RS_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS). */
    const rs_socket_options_t *socket_options;
    rs_event_loop_t *loop; /* pinned loop (default: NULL, the group's best-of-two) */
    rs_channel_installer_t *const *installers; /* run in order after the socket handler (default: none) */
    size_t installer_count;
    bool enable_read_back_pressure;  /* for the channel (default: false) */
    uint32_t graceful_shutdown_timeout_ms; /* for the channel (default: 0, none) */
    rs_client_on_setup_fn *on_setup;       /* required */
    rs_client_on_shutdown_fn *on_shutdown; /* (default: NULL) */
    void *user_data;                       /* for both (default: NULL) */
} rs_client_connect_options_t;

/* NULL with *err_out set on failure: RS_EINVAL (NULL options or no group),
 * RS_ENOMEM, or the resolver's error. Any thread. */
RESEAU_API rs_client_bootstrap_t *rs_client_bootstrap_new(const rs_client_bootstrap_options_t *options,
                                                          int *err_out);
/* Release the caller's reference; connections in flight keep it alive. Any thread. NULL does nothing. */
RESEAU_API void rs_client_bootstrap_destroy(rs_client_bootstrap_t *bootstrap);

/* Start a connection; its callbacks fire later, as described above. Any thread.
 * Errors (no callback fires, installers not taken): RS_EINVAL for a NULL
 * bootstrap, options, host or on_setup, a port of 0 or above 65535 (not LOCAL),
 * a loop not of the bootstrap's group, or a NULL installer; RS_ENOMEM. */
RESEAU_API int rs_client_bootstrap_connect(rs_client_bootstrap_t *bootstrap, const rs_client_connect_options_t *options);
