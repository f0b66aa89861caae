/*
 * The pipeline of one bootstrapped connection, shared by the client and the
 * server: a connected socket becomes a channel with the socket handler in its
 * first slot, then the installers run in order, then the owner hears "set up"
 * (once, with the channel or an error) and, only after a successful setup,
 * "shut down" (once). The channel is destroyed after the last report.
 * Everything here runs on the connection's loop thread.
 */

typedef struct rs__pipeline rs__pipeline_t;

/* channel is NULL when error is set. */
typedef void rs__pipeline_setup_fn(rs__pipeline_t *pipeline, rs_channel_t *channel, int error);
typedef void rs__pipeline_shutdown_fn(rs__pipeline_t *pipeline, rs_channel_t *channel, int error);
/* Called once, last: the owner may free the pipeline's memory. */
typedef void rs__pipeline_release_fn(rs__pipeline_t *pipeline);

/* What every connection of a client connect or a listener shares: the
 * bootstrap's own copy of the caller's installer list, and channel options. */
typedef struct rs__pipeline_options {
    rs_channel_installer_t **installers; /* owned array; the installers are the caller's */
    size_t installer_count;
    bool enable_read_back_pressure;
    uint32_t graceful_shutdown_timeout_ms;
} rs__pipeline_options_t;

struct rs__pipeline {
    rs_allocator_t allocator;
    rs_event_loop_t *loop;
    rs_socket_t *socket; /* ours until the socket handler takes it */
    rs_channel_t *channel;
    rs__pipeline_options_t options;
    size_t next_installer;
    bool installer_busy;   /* an installer has not called done yet */
    bool setup_reported;
    bool shut_down;        /* the channel's shutdown has completed */
    int setup_error;
    rs__pipeline_setup_fn *on_setup;
    rs__pipeline_shutdown_fn *on_shutdown;
    rs__pipeline_release_fn *on_release;
};

static void rs__pipeline_report_setup(rs__pipeline_t *p, int error) {
    p->setup_reported = true;
    p->on_setup(p, error ? NULL : p->channel, error);
}

/* The end: every report made, the channel shut down, no installer pending. */
static void rs__pipeline_maybe_release(rs__pipeline_t *p) {
    if (!p->shut_down || p->installer_busy) {
        return;
    }
    rs_channel_destroy(p->channel);
    p->channel = NULL;
    p->on_release(p);
}

/* Setup failed: the channel goes down, and its shutdown completion reports. */
static void rs__pipeline_fail(rs__pipeline_t *p, int error) {
    if (!p->setup_error) {
        p->setup_error = error;
    }
    rs_channel_shutdown(p->channel, error);
}

static void rs__pipeline_run_installers(rs__pipeline_t *p, rs_channel_slot_t *slot);

static void rs__pipeline_installer_done(rs_channel_t *channel, rs_channel_slot_t *slot, int error, void *ctx) {
    rs__pipeline_t *p = (rs__pipeline_t *)ctx;
    (void)channel;
    if (!p->installer_busy) {
        RS__LOG_ERROR(RS_LS_BOOTSTRAP, "an installer reported done twice; ignored");
        return;
    }
    p->installer_busy = false;
    if (p->shut_down) {
        rs__pipeline_maybe_release(p); /* the channel went down while it worked */
        return;
    }
    if (!error && !slot) {
        error = RS_EINVAL; /* nowhere for the next installer to add to */
    }
    if (error) {
        rs__pipeline_fail(p, error);
        return;
    }
    rs__pipeline_run_installers(p, slot);
}

/* Each installer adds to the right of the previous one's rightmost slot. done
 * may come inside install; the recursion is bounded by the installer count. */
static void rs__pipeline_run_installers(rs__pipeline_t *p, rs_channel_slot_t *slot) {
    rs_channel_installer_t *installer;
    int err;
    if (p->next_installer == p->options.installer_count) {
        rs__pipeline_report_setup(p, RS_OK);
        return;
    }
    installer = p->options.installers[p->next_installer++];
    p->installer_busy = true;
    err = installer->vtable->install(installer, p->channel, slot, rs__pipeline_installer_done, p);
    if (err) {
        p->installer_busy = false;
        rs__pipeline_fail(p, err);
    }
}

static void rs__pipeline_on_channel_setup(rs_channel_t *channel, int error, void *user_data) {
    rs__pipeline_t *p = (rs__pipeline_t *)user_data;
    rs_channel_slot_t *slot = NULL;
    rs_channel_handler_t *handler = NULL;
    if (!error) {
        slot = rs_channel_slot_new(channel, &error);
    }
    if (!error) {
        handler = rs_socket_handler_new(&p->allocator, p->socket, NULL, &error);
    }
    if (!error) {
        p->socket = NULL; /* the handler owns it now, and the channel owns the handler */
        error = rs_channel_slot_set_handler(slot, handler);
        RESEAU_ASSERT(error == RS_OK); /* a fresh slot on its own thread cannot refuse */
    }
    if (error) {
        rs__pipeline_fail(p, error);
        return;
    }
    rs__pipeline_run_installers(p, slot);
}

static void rs__pipeline_on_channel_shutdown(rs_channel_t *channel, int error, void *user_data) {
    rs__pipeline_t *p = (rs__pipeline_t *)user_data;
    (void)channel;
    p->shut_down = true;
    if (p->socket) {
        rs_socket_destroy(p->socket); /* setup failed before the handler took it */
        p->socket = NULL;
    }
    if (!p->setup_reported) {
        rs__pipeline_report_setup(p, p->setup_error ? p->setup_error : (error ? error : RS_ECONNABORTED));
    } else if (p->on_shutdown) {
        p->on_shutdown(p, channel, error);
    }
    rs__pipeline_maybe_release(p);
}

/* Build the pipeline over `socket`, connected and tied to `loop`, whose
 * thread this is. The pipeline takes the socket. RS_ENOMEM (nothing taken,
 * nothing reported) if the channel cannot be made. */
static int rs__pipeline_start(rs__pipeline_t *p, const rs_allocator_t *allocator, rs_event_loop_t *loop,
                              rs_socket_t *socket, const rs__pipeline_options_t *options) {
    rs_channel_options_t co;
    int err = RS_OK;
    p->allocator = *allocator;
    p->loop = loop;
    p->socket = socket;
    p->options = *options;
    memset(&co, 0, sizeof(co));
    co.loop = loop;
    co.allocator = allocator;
    co.on_setup_completed = rs__pipeline_on_channel_setup;
    co.on_shutdown_completed = rs__pipeline_on_channel_shutdown;
    co.user_data = p;
    co.enable_read_back_pressure = options->enable_read_back_pressure;
    co.graceful_shutdown_timeout_ms = options->graceful_shutdown_timeout_ms;
    p->channel = rs_channel_new(&co, &err);
    if (!p->channel) {
        p->socket = NULL;
        return err;
    }
    return RS_OK;
}

/* ---- installers ---- */

/* RS_EINVAL unless every installer has an install entry. */
static int rs__installers_check(rs_channel_installer_t *const *installers, size_t count) {
    size_t i;
    if (count && !installers) {
        return RS_EINVAL;
    }
    for (i = 0; i < count; ++i) {
        if (!installers[i] || !installers[i]->vtable || !installers[i]->vtable->install) {
            return RS_EINVAL;
        }
    }
    return RS_OK;
}

/* Fill `out`, copying the list (not the installers). RS_ENOMEM. */
static int rs__pipeline_options_init(rs__pipeline_options_t *out, const rs_allocator_t *allocator,
                                     rs_channel_installer_t *const *installers, size_t count,
                                     bool enable_read_back_pressure, uint32_t graceful_shutdown_timeout_ms) {
    memset(out, 0, sizeof(*out));
    if (count) {
        out->installers = (rs_channel_installer_t **)rs_mem_alloc(allocator, count * sizeof(*out->installers));
        if (!out->installers) {
            return RS_ENOMEM;
        }
        memcpy(out->installers, installers, count * sizeof(*out->installers));
    }
    out->installer_count = count;
    out->enable_read_back_pressure = enable_read_back_pressure;
    out->graceful_shutdown_timeout_ms = graceful_shutdown_timeout_ms;
    return RS_OK;
}

static void rs__pipeline_options_cleanup(rs__pipeline_options_t *o, const rs_allocator_t *allocator) {
    rs_mem_free(allocator, o->installers);
    o->installers = NULL;
}

/* Just before the callback that ends the bootstrap's use of the installers
 * (on_setup, on_listener_destroyed): keep, in the bootstrap's own copy of the
 * list, only those with a destroy entry, and return how many. Those without
 * are the caller's, who may free them as soon as the callback fires (in it, or
 * on a thread it signals): after it, the bootstrap must not read them. */
static size_t rs__installers_keep_destroyable(rs_channel_installer_t **installers, size_t count) {
    size_t i;
    size_t kept = 0;
    for (i = 0; i < count; ++i) {
        if (installers[i]->vtable->destroy) {
            installers[kept++] = installers[i];
        }
    }
    return kept;
}

/* The bootstrap is done with them: each one's destroy, once. */
static void rs__installers_destroy(rs_channel_installer_t **installers, size_t count) {
    size_t i;
    for (i = 0; i < count; ++i) {
        if (installers[i]->vtable->destroy) {
            installers[i]->vtable->destroy(installers[i]);
        }
    }
}

