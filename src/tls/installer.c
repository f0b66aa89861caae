/* The TLS and ALPN installers, and the ALPN handler. The installers are the
 * bootstraps' (>>installer), so without sockets only the handler is here. */

#if !RS__NO_SOCKETS

typedef struct rs__tls_installer {
    rs_channel_installer_t base;
    rs_tls_connection_options_t options; /* ctx referenced; strings copied below */
    char *server_name;
    char *alpn_list;
} rs__tls_installer_t;

static int rs__tls_installer_install(rs_channel_installer_t *installer, rs_channel_t *channel,
                                     rs_channel_slot_t *slot, rs_channel_installer_done_fn *done, void *done_ctx) {
    rs__tls_installer_t *ti = (rs__tls_installer_t *)installer->impl;
    (void)channel;
    return rs__tls_add(slot, &ti->options, done, done_ctx, NULL);
}

static void rs__tls_installer_free(rs__tls_installer_t *ti) {
    rs_tls_ctx_t *ctx = ti->options.ctx;
    rs_mem_free(&ctx->allocator, ti->server_name);
    rs_mem_free(&ctx->allocator, ti->alpn_list);
    rs_mem_free(&ctx->allocator, ti);
    rs_tls_ctx_release(ctx);
}

/* No destroy entry: one installer serves any number of connections, and its
 * owner frees it (rs_tls_installer_destroy) when the bootstraps are done. */
static const rs_channel_installer_vtable_t rs__tls_installer_vtable = {
    rs__tls_installer_install,
    NULL,
};

static char *rs__tls_strdup(const rs_allocator_t *alloc, const char *text, int *err) {
    size_t len;
    char *copy;
    if (!text) {
        return NULL;
    }
    len = strlen(text);
    copy = (char *)rs_mem_alloc(alloc, len + 1);
    if (!copy) {
        *err = RS_ENOMEM;
        return NULL;
    }
    memcpy(copy, text, len + 1);
    return copy;
}

RESEAU_API rs_channel_installer_t *rs_tls_installer_new(const rs_tls_connection_options_t *options, int *err_out) {
    rs__tls_installer_t *ti;
    rs__tls_alpn_t check;
    rs_tls_ctx_t *ctx;
    int err = RS_EINVAL;
    if (!options || !options->ctx) {
        goto fail;
    }
    ctx = options->ctx;
    err = rs__tls_alpn_parse(&ctx->allocator, options->alpn_list, &check); /* refuse a bad list now, not per connection */
    if (err) {
        goto fail;
    }
    rs__tls_alpn_cleanup(&ctx->allocator, &check);
    ti = (rs__tls_installer_t *)rs_mem_calloc(&ctx->allocator, 1, sizeof(*ti));
    if (!ti) {
        err = RS_ENOMEM;
        goto fail;
    }
    rs_tls_ctx_acquire(ctx);
    ti->base.vtable = &rs__tls_installer_vtable;
    ti->base.impl = ti;
    ti->options = *options;
    ti->server_name = rs__tls_strdup(&ctx->allocator, options->server_name, &err);
    ti->alpn_list = rs__tls_strdup(&ctx->allocator, options->alpn_list, &err);
    ti->options.server_name = ti->server_name;
    ti->options.alpn_list = ti->alpn_list;
    if (err) {
        rs__tls_installer_free(ti);
        goto fail;
    }
    if (err_out) {
        *err_out = RS_OK;
    }
    return &ti->base;
fail:
    if (err_out) {
        *err_out = err;
    }
    return NULL;
}

#endif /* !RS__NO_SOCKETS */

/* ---- ALPN ---- */

typedef struct rs__tls_alpn_handler {
    rs_channel_handler_t handler;
    rs_allocator_t allocator;
    rs_tls_alpn_on_protocol_fn *on_protocol;
    void *user_data;
} rs__tls_alpn_handler_t;

static void rs__tls_alpn_destroy(rs_channel_handler_t *handler) {
    rs__tls_alpn_handler_t *ah = (rs__tls_alpn_handler_t *)handler->impl;
    rs_allocator_t alloc = ah->allocator;
    rs_mem_free(&alloc, ah);
}

static int rs__tls_alpn_process_read(rs_channel_handler_t *handler, rs_channel_slot_t *slot,
                                     rs_io_message_t *message) {
    (void)handler;
    (void)slot;
    (void)message;
    return RS_ESTATE; /* data before the protocol is known: the TLS handler never sends any */
}

static const rs_channel_handler_vtable_t rs__tls_alpn_vtable = {
    rs__tls_alpn_process_read, NULL, NULL, NULL, NULL, NULL, rs__tls_alpn_destroy, NULL, NULL, NULL,
};

/* Ask the user for the protocol's handler and put it in the ALPN handler's
 * slot (which destroys the ALPN handler: touch nothing of it afterwards). */
static void rs__tls_alpn_resolve(rs_channel_handler_t *alpn, const char *protocol) {
    rs__tls_alpn_handler_t *ah = (rs__tls_alpn_handler_t *)alpn->impl;
    rs_channel_slot_t *slot = alpn->slot;
    rs_channel_t *channel = rs_channel_slot_get_channel(slot);
    rs_channel_handler_t *next = ah->on_protocol(slot, protocol, ah->user_data);
    int err;
    if (!next) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls: no handler for protocol %s", protocol ? protocol : "(none)");
        rs_channel_shutdown(channel, RS_ETLS_ALPN_MISMATCH);
        return;
    }
    err = rs_channel_slot_replace_handler(slot, next);
    if (err) {
        if (next->vtable->destroy) {
            next->vtable->destroy(next);
        }
        rs_channel_shutdown(channel, err);
    }
}

static void rs__tls_notify_alpn_handler(rs__tls_handler_t *h) {
    rs_channel_slot_t *right = rs_channel_slot_get_right(h->handler.slot);
    rs_channel_handler_t *next = right ? rs_channel_slot_get_handler(right) : NULL;
    if (next && next->vtable == &rs__tls_alpn_vtable) {
        rs__tls_alpn_resolve(next, h->info.alpn);
    }
}

RESEAU_API rs_channel_handler_t *rs_tls_alpn_handler_new(const rs_allocator_t *allocator,
                                                         rs_tls_alpn_on_protocol_fn *on_protocol, void *user_data,
                                                         int *err_out) {
    rs__tls_alpn_handler_t *ah;
    const rs_allocator_t *alloc = allocator ? allocator : rs_default_allocator();
    int err = RS_EINVAL;
    if (on_protocol) {
        ah = (rs__tls_alpn_handler_t *)rs_mem_calloc(alloc, 1, sizeof(*ah));
        err = ah ? RS_OK : RS_ENOMEM;
        if (ah) {
            ah->allocator = *alloc;
            ah->on_protocol = on_protocol;
            ah->user_data = user_data;
            ah->handler.vtable = &rs__tls_alpn_vtable;
            ah->handler.impl = ah;
            if (err_out) {
                *err_out = RS_OK;
            }
            return &ah->handler;
        }
    }
    if (err_out) {
        *err_out = err;
    }
    return NULL;
}

#if !RS__NO_SOCKETS
typedef struct rs__tls_alpn_installer {
    rs_channel_installer_t base;
    rs_allocator_t allocator;
    rs_tls_alpn_on_protocol_fn *on_protocol;
    void *user_data;
} rs__tls_alpn_installer_t;

/* After the TLS installer the handshake is done: add the protocol's handler
 * directly. Otherwise (a TLS handler still negotiating) add a waiting ALPN
 * handler. */
static int rs__tls_alpn_install(rs_channel_installer_t *installer, rs_channel_t *channel, rs_channel_slot_t *slot,
                                rs_channel_installer_done_fn *done, void *done_ctx) {
    rs__tls_alpn_installer_t *ai = (rs__tls_alpn_installer_t *)installer->impl;
    rs__tls_handler_t *tls = rs__tls_of(rs_channel_slot_get_handler(slot));
    rs_channel_handler_t *next;
    rs_channel_slot_t *added = NULL;
    int err;
    if (tls && tls->negotiated) {
        next = ai->on_protocol(slot, tls->info.alpn, ai->user_data);
        if (!next) {
            return RS_ETLS_ALPN_MISMATCH;
        }
    } else {
        next = rs_tls_alpn_handler_new(&ai->allocator, ai->on_protocol, ai->user_data, &err);
        if (!next) {
            return err;
        }
    }
    err = rs_channel_slot_add_handler_right(slot, next, &added);
    if (err) {
        if (next->vtable->destroy) {
            next->vtable->destroy(next);
        }
        return err;
    }
    done(channel, added, RS_OK, done_ctx);
    return RS_OK;
}

static const rs_channel_installer_vtable_t rs__tls_alpn_installer_vtable = {
    rs__tls_alpn_install,
    NULL, /* as the TLS installer: freed by its owner */
};

RESEAU_API rs_channel_installer_t *rs_tls_alpn_installer_new(const rs_allocator_t *allocator,
                                                             rs_tls_alpn_on_protocol_fn *on_protocol,
                                                             void *user_data, int *err_out) {
    const rs_allocator_t *alloc = allocator ? allocator : rs_default_allocator();
    rs__tls_alpn_installer_t *ai;
    int err = RS_EINVAL;
    if (on_protocol) {
        ai = (rs__tls_alpn_installer_t *)rs_mem_calloc(alloc, 1, sizeof(*ai));
        err = ai ? RS_OK : RS_ENOMEM;
        if (ai) {
            ai->allocator = *alloc;
            ai->on_protocol = on_protocol;
            ai->user_data = user_data;
            ai->base.vtable = &rs__tls_alpn_installer_vtable;
            ai->base.impl = ai;
            if (err_out) {
                *err_out = RS_OK;
            }
            return &ai->base;
        }
    }
    if (err_out) {
        *err_out = err;
    }
    return NULL;
}

RESEAU_API void rs_tls_installer_destroy(rs_channel_installer_t *installer) {
    if (!installer) {
        return;
    }
    if (installer->vtable == &rs__tls_installer_vtable) {
        rs__tls_installer_free((rs__tls_installer_t *)installer->impl);
    } else if (installer->vtable == &rs__tls_alpn_installer_vtable) {
        rs__tls_alpn_installer_t *ai = (rs__tls_alpn_installer_t *)installer->impl;
        rs_allocator_t alloc = ai->allocator;
        rs_mem_free(&alloc, ai);
    }
}
#endif /* !RS__NO_SOCKETS */
