/*
 * Channel installers: how a bootstrap builds a pipeline.
 *
 * A bootstrap makes a channel for each connection, puts the socket handler in
 * its first slot, then runs its installers in order. Each installer adds one or
 * more handlers to the right of the slot it is given and reports, now or
 * later, through `done`. The bootstrap reports the connection as set up only
 * after the last installer is done: a TLS installer reports after the
 * handshake, so on_setup means "ready for application data". A user's
 * application handler is simply the last installer.
 *
 * Threads: install runs on the channel's loop thread, and done must be called
 * on it too, exactly once (RS_OK, or an error, which shuts the channel down
 * and reaches the bootstrap's on_setup). If the channel shuts down before an
 * installer is done (the peer hangs up during a handshake), the installer must
 * still call done, with that error; its handlers see the shutdown as usual.
 *
 * Ownership: installers are the caller's. They must stay valid until the
 * bootstrap no longer uses them: a client connection's until its on_setup
 * fires, a listener's until on_listener_destroyed fires. The bootstrap does
 * not touch them after that, so the callback (or a thread it signals) may
 * free them; except that an installer with a destroy entry gets it called
 * once, just after that callback, if the call that took the installers
 * returned RS_OK.
 */
typedef struct rs_channel_installer rs_channel_installer_t;

/* Report an installer's result. `slot` is the rightmost slot it added (the
 * next installer adds to its right), or NULL on error. Loop thread, once. */
typedef void rs_channel_installer_done_fn(rs_channel_t *channel, rs_channel_slot_t *slot, int error, void *done_ctx);

typedef struct rs_channel_installer_vtable {
    /* Add handlers to the right of `slot`, then call done(channel, rightmost
     * slot, RS_OK, done_ctx) now or later. A non-zero return means nothing
     * was added and done will not be called; the bootstrap treats it as the
     * installer's error. */
    int (*install)(rs_channel_installer_t *installer, rs_channel_t *channel, rs_channel_slot_t *slot,
                   rs_channel_installer_done_fn *done, void *done_ctx);
    /* The bootstrap is done with this installer (may be NULL). */
    void (*destroy)(rs_channel_installer_t *installer);
} rs_channel_installer_vtable_t;

/* Embed in your own struct, or point impl at it. */
struct rs_channel_installer {
    const rs_channel_installer_vtable_t *vtable;
    void *impl;
};

