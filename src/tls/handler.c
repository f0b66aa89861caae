/* The TLS channel handler: drives a TLS engine (engine.h; BearSSL unless the
 * connection options name another) from channel messages.
 *
 * The engine is pumped until nothing progresses: records it has sealed go
 * left at once, plaintext goes right as far as the window allows, queued
 * ciphertext is fed in only while the engine asks for records, and queued
 * writes only while it takes application data. Nothing spins: every pump
 * starts from a message, a window update, a completion or a task. */

/* What one record adds to its plaintext, at most, in BearSSL's TLS 1.2 (5
 * bytes of header, then IV, MAC and padding): the overhead the handler
 * announces for a message, sealed into two 8 KiB records. */
#define RS__TLS_HANDLER_RECORD_OVERHEAD 85u

typedef struct rs__tls_handler rs__tls_handler_t;

/* The TLS installer's done callback; without sockets there are no bootstraps
 * and no installers, and rs_tls_channel_add passes none. */
#if RS__NO_SOCKETS
typedef void rs__tls_install_done_fn(rs_channel_t *channel, rs_channel_slot_t *slot, int error, void *done_ctx);
#else
typedef rs_channel_installer_done_fn rs__tls_install_done_fn;
#endif

struct rs__tls_handler {
    rs_channel_handler_t handler;
    rs_tls_ctx_t *ctx;
    bool is_server;
    rs_tls_engine_t *engine; /* from start_negotiation on */
    rs_tls_engine_new_fn *engine_new;
    void *engine_user_data;
    rs_tls_engine_info_t info; /* the engine's, read when the handshake is done */
    rs__tls_alpn_t alpn; /* the connection's own list, if it overrides the context's */
    char *server_name;
    bool server_name_is_ip;
    uint32_t timeout_ms;
    rs_tls_on_negotiation_result_fn *on_negotiation_result;
    void *user_data;
    rs__tls_install_done_fn *install_done; /* set by the TLS installer */
    void *install_done_ctx;

    bool started;
    bool negotiated;
    bool reported;     /* on_negotiation_result has been called */
    bool failed;       /* the engine closed with an error, or negotiation failed */
    bool peer_closed;  /* close_notify received */
    bool close_sent;   /* the engine's close called */
    bool read_shutdown_pending;
    bool read_shut;
    bool write_shut;
    bool in_pump;
    bool pump_again;
    int result;
    uint64_t handshake_start_ns;
    uint64_t handshake_end_ns;

    rs_list_t read_queue;  /* ciphertext from the left, copy_mark = bytes fed */
    rs_list_t write_queue; /* plaintext from the right, copy_mark = bytes taken */
    rs_list_t sealed;      /* writes taken whole; copy_mark = the cipher_sent they need done */
    size_t cipher_sent;    /* ciphertext bytes sent left (wraps; compared by difference) */
    size_t cipher_done;    /* ... and completed */
    size_t window_owed;    /* ciphertext consumed since the last window update */
    uint64_t bytes_read;
    uint64_t bytes_written;
    rs_channel_task_t timeout_task;
};

static void rs__tls_destroy(rs_channel_handler_t *handler);

/* Ours if its vtable's destroy is ours (the vtable itself is defined below,
 * and C++ has no forward declaration of a static const object). */
static rs__tls_handler_t *rs__tls_of(const rs_channel_handler_t *handler) {
    return handler && handler->vtable && handler->vtable->destroy == rs__tls_destroy
               ? (rs__tls_handler_t *)handler->impl
               : NULL;
}

static rs_channel_t *rs__tls_channel(const rs__tls_handler_t *h) {
    return rs_channel_slot_get_channel(h->handler.slot);
}

static bool rs__tls_seq_reached(size_t done, size_t mark) {
    return (size_t)(done - mark) <= SIZE_MAX / 2;
}

static unsigned rs__tls_state(rs__tls_handler_t *h) {
    return h->engine->vtable->state(h->engine);
}

/* ---- write completions ---- */

static void rs__tls_complete_write(rs_channel_t *channel, rs_io_message_t *message, int error) {
    if (message->on_completion) {
        message->on_completion(channel, message, error, message->user_data);
    }
    rs_channel_release_message_to_pool(channel, message);
}

static void rs__tls_complete_sealed(rs__tls_handler_t *h, int error) {
    rs_channel_t *channel = rs__tls_channel(h);
    while (!rs_list_empty(&h->sealed)) {
        rs_io_message_t *m = RS_CONTAINER_OF(rs_list_begin(&h->sealed), rs_io_message_t, queueing_handle);
        if (!error && !rs__tls_seq_reached(h->cipher_done, m->copy_mark)) {
            break;
        }
        rs_list_remove(&m->queueing_handle);
        rs__tls_complete_write(channel, m, error);
    }
}

static void rs__tls_cancel_writes(rs__tls_handler_t *h, rs_list_t *queue, rs_channel_t *channel, int error) {
    while (!rs_list_empty(queue)) {
        rs_io_message_t *m = RS_CONTAINER_OF(rs_list_pop_front(queue), rs_io_message_t, queueing_handle);
        if (queue == &h->write_queue && channel) {
            rs_channel_slot_add_pending_write_bytes(h->handler.slot,
                                                    -(int64_t)(m->message_data.len - m->copy_mark));
        }
        rs__tls_complete_write(channel, m, error);
    }
}

/* A record we sent left has reached the kernel (or failed). A NULL channel
 * means our handler may be gone already: touch nothing of it. */
static void rs__tls_on_record_written(rs_channel_t *channel, rs_io_message_t *message, int error, void *user_data) {
    rs__tls_handler_t *h = (rs__tls_handler_t *)user_data;
    if (!channel) {
        return;
    }
    h->cipher_done += message->message_data.len;
    rs__tls_complete_sealed(h, error);
}

/* ---- negotiation ---- */

static void rs__tls_notify_alpn_handler(rs__tls_handler_t *h);

static void rs__tls_report(rs__tls_handler_t *h, int error) {
    if (h->reported) {
        return;
    }
    h->reported = true;
    h->result = error;
    rs_trace_emit(RS_TRACE_TLS_HANDSHAKE_END, rs_channel_get_loop(rs__tls_channel(h)), &h->handler, "tls", error);
    if (h->on_negotiation_result) {
        h->on_negotiation_result(&h->handler, h->handler.slot, error, h->user_data);
    }
    if (!error) {
        rs__tls_notify_alpn_handler(h);
    }
    if (h->install_done) {
        rs__tls_install_done_fn *done = h->install_done;
        h->install_done = NULL;
        done(rs__tls_channel(h), error ? NULL : h->handler.slot, error, h->install_done_ctx);
    }
}

/* Fail the connection: report the handshake's result if not yet done, and
 * shut the channel down. */
static void rs__tls_fail(rs__tls_handler_t *h, int error) {
    if (h->failed) {
        return;
    }
    h->failed = true;
    if (!h->negotiated) {
        h->handshake_end_ns = rs_event_loop_now_ns(rs_channel_get_loop(rs__tls_channel(h)));
    }
    rs__tls_report(h, error);
    rs_channel_shutdown(rs__tls_channel(h), error);
}

/* The client session cache's key: host:port:server name, the port from the
 * socket handler (0 without one, as on a transport handler). */
static void rs__tls_session_key(const rs__tls_handler_t *h, char *key, size_t size) {
    unsigned port = 0;
#if !RS__NO_SOCKETS
    rs_endpoint_t remote;
    rs_socket_t *socket =
        rs_socket_handler_get_socket(rs_channel_slot_get_handler(rs_channel_get_first_slot(rs__tls_channel(h))));
    if (socket && rs_socket_get_remote_address(socket, &remote) == RS_OK) {
        port = remote.port;
    }
#endif
    snprintf(key, size, "%s:%u:%s", h->server_name ? h->server_name : "", port,
             h->server_name_is_ip ? "" : (h->server_name ? h->server_name : ""));
}

static void rs__tls_on_negotiated(rs__tls_handler_t *h) {
    h->negotiated = true;
    h->handshake_end_ns = rs_event_loop_now_ns(rs_channel_get_loop(rs__tls_channel(h)));
    memset(&h->info, 0, sizeof(h->info));
    h->engine->vtable->get_info(h->engine, &h->info);
    if (!h->info.cipher_suite_name) {
        h->info.cipher_suite_name = rs_tls_cipher_suite_name(h->info.cipher_suite);
    }
    /* The timeout task stays scheduled (channel tasks cannot be canceled); it
     * finds the handshake done and does nothing. */
    RS__TLS_LOG(RS_LOG_LEVEL_DEBUG, "tls %p: negotiated %s%s, ALPN %s", (void *)h, h->info.cipher_suite_name,
                h->info.resumed ? " (resumed)" : "", h->info.alpn ? h->info.alpn : "none");
    rs__tls_report(h, RS_OK);
}

static void rs__tls_timeout_task(rs_channel_task_t *task, void *arg, rs_task_status_t status) {
    rs__tls_handler_t *h = (rs__tls_handler_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN && !h->negotiated && !h->failed) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls %p: handshake timed out after %u ms", (void *)h, (unsigned)h->timeout_ms);
        rs__tls_fail(h, RS_ETLS_HANDSHAKE_TIMEOUT);
    }
}

/* ---- the pump ---- */

/* Sealed records go left, each in its own message. */
static int rs__tls_send_records(rs__tls_handler_t *h, bool *progress) {
    rs_channel_t *channel = rs__tls_channel(h);
    size_t len;
    unsigned char *buf;
    while ((buf = h->engine->vtable->sendrec_buf(h->engine, &len)) != NULL && len > 0) {
        size_t n = len < RS_MAX_FRAGMENT_SIZE ? len : RS_MAX_FRAGMENT_SIZE;
        rs_io_message_t *m = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, n);
        int err;
        if (!m) {
            return RS_ENOMEM;
        }
        if (n > m->message_data.capacity) {
            n = m->message_data.capacity;
        }
        memcpy(m->message_data.buffer, buf, n);
        m->message_data.len = n;
        m->on_completion = rs__tls_on_record_written;
        m->user_data = h;
        err = rs_channel_slot_send_message(h->handler.slot, m, RS_CHANNEL_DIR_WRITE);
        if (err) {
            rs_channel_release_message_to_pool(channel, m);
            return err;
        }
        h->engine->vtable->sendrec_ack(h->engine, n);
        h->cipher_sent += n;
        h->bytes_written += n;
        *progress = true;
    }
    return RS_OK;
}

/* Plaintext goes right, as far as the window allows. With no handler to the
 * right it is dropped (nobody could read it). */
static int rs__tls_deliver(rs__tls_handler_t *h, bool *progress) {
    rs_channel_t *channel = rs__tls_channel(h);
    rs_channel_slot_t *right = rs_channel_slot_get_right(h->handler.slot);
    size_t len;
    unsigned char *buf;
    if (h->read_shut) {
        return RS_OK;
    }
    while ((buf = h->engine->vtable->recvapp_buf(h->engine, &len)) != NULL && len > 0) {
        size_t window = right && rs_channel_slot_get_handler(right) ? rs_channel_slot_downstream_read_window(h->handler.slot) : len;
        size_t n = len < window ? len : window;
        rs_io_message_t *m;
        int err;
        if (n == 0) {
            break;
        }
        if (!right || !rs_channel_slot_get_handler(right)) {
            h->engine->vtable->recvapp_ack(h->engine, n);
            *progress = true;
            continue;
        }
        if (n > RS_MAX_FRAGMENT_SIZE) {
            n = RS_MAX_FRAGMENT_SIZE;
        }
        m = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, n);
        if (!m) {
            return RS_ENOMEM;
        }
        if (n > m->message_data.capacity) {
            n = m->message_data.capacity;
        }
        memcpy(m->message_data.buffer, buf, n);
        m->message_data.len = n;
        h->engine->vtable->recvapp_ack(h->engine, n);
        *progress = true;
        err = rs_channel_slot_send_message(h->handler.slot, m, RS_CHANNEL_DIR_READ);
        if (err) {
            rs_channel_release_message_to_pool(channel, m);
            return err;
        }
    }
    return RS_OK;
}

/* Queued ciphertext goes into the engine while it asks for records. */
static void rs__tls_feed(rs__tls_handler_t *h, bool *progress) {
    size_t len;
    unsigned char *buf;
    while (!rs_list_empty(&h->read_queue) && (buf = h->engine->vtable->recvrec_buf(h->engine, &len)) != NULL &&
           len > 0) {
        rs_io_message_t *m = RS_CONTAINER_OF(rs_list_begin(&h->read_queue), rs_io_message_t, queueing_handle);
        size_t left = m->message_data.len - m->copy_mark;
        size_t n = left < len ? left : len;
        memcpy(buf, m->message_data.buffer + m->copy_mark, n);
        h->engine->vtable->recvrec_ack(h->engine, n);
        m->copy_mark += n;
        h->window_owed += n;
        *progress = true;
        if (m->copy_mark == m->message_data.len) {
            rs_list_remove(&m->queueing_handle);
            rs_channel_release_message_to_pool(rs__tls_channel(h), m);
        }
        if (!h->negotiated && (rs__tls_state(h) & (RS_TLS_ENGINE_SENDAPP | RS_TLS_ENGINE_RECVAPP))) {
            /* The handshake just finished: note it before feeding more, for
             * a close_notify right behind the Finished would hide it. */
            break;
        }
    }
}

/* Queued writes go into the engine; each batch is sealed at once (a write is
 * a flush: nobody waits for a record to fill up). */
static void rs__tls_take_writes(rs__tls_handler_t *h, bool *progress) {
    rs_list_t taken;
    size_t len;
    unsigned char *buf;
    bool any = false;
    rs_list_init(&taken);
    while (!rs_list_empty(&h->write_queue) && (buf = h->engine->vtable->sendapp_buf(h->engine, &len)) != NULL &&
           len > 0) {
        rs_io_message_t *m = RS_CONTAINER_OF(rs_list_begin(&h->write_queue), rs_io_message_t, queueing_handle);
        size_t left = m->message_data.len - m->copy_mark;
        size_t n = left < len ? left : len;
        memcpy(buf, m->message_data.buffer + m->copy_mark, n);
        h->engine->vtable->sendapp_ack(h->engine, n);
        m->copy_mark += n;
        rs_channel_slot_add_pending_write_bytes(h->handler.slot, -(int64_t)n);
        any = true;
        if (m->copy_mark == m->message_data.len) {
            rs_list_remove(&m->queueing_handle);
            rs_list_push_back(&taken, &m->queueing_handle);
        }
    }
    if (!any) {
        return;
    }
    *progress = true;
    h->engine->vtable->flush(h->engine);
    /* Everything taken is in the records now waiting to go left. */
    buf = h->engine->vtable->sendrec_buf(h->engine, &len);
    while (!rs_list_empty(&taken)) {
        rs_io_message_t *m = RS_CONTAINER_OF(rs_list_pop_front(&taken), rs_io_message_t, queueing_handle);
        m->copy_mark = h->cipher_sent + (buf ? len : 0);
        rs_list_push_back(&h->sealed, &m->queueing_handle);
    }
}

static bool rs__tls_read_drained(rs__tls_handler_t *h) {
    size_t len;
    return rs_list_empty(&h->read_queue) &&
           (h->read_shut || !h->engine || h->engine->vtable->recvapp_buf(h->engine, &len) == NULL || len == 0);
}

/* The peer hung up without close_notify: the engine may know why better
 * (BearSSL: a client certificate was asked for and we had none). */
static int rs__tls_hangup_error(const rs__tls_handler_t *h) {
    if (h->engine && h->engine->vtable->hangup_error) {
        return h->engine->vtable->hangup_error(h->engine);
    }
    return RS_ETLS_TRUNCATED;
}

/* What to report for a handshake that the channel ended with error_code. A
 * write that met the peer's close (RS_EPIPE, RS_ECONNRESET) is the same
 * hang-up as the end of stream that a read would have seen a moment later,
 * so it says the same: which of the two comes first is a race. */
static int rs__tls_lost_error(const rs__tls_handler_t *h, int error_code) {
    if ((error_code == RS_EPIPE || error_code == RS_ECONNRESET) &&
        rs__tls_hangup_error(h) == RS_ETLS_CLIENT_CERT_REQUIRED) {
        return RS_ETLS_CLIENT_CERT_REQUIRED;
    }
    return error_code ? error_code : RS_ECANCELED;
}

static void rs__tls_finish_read_shutdown(rs__tls_handler_t *h) {
    int error = RS_OK;
    h->read_shutdown_pending = false;
    h->read_shut = true;
    if (!h->peer_closed && !h->failed) {
        error = rs__tls_hangup_error(h);
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls %p: the peer closed the connection without close_notify%s", (void *)h,
                    h->negotiated ? "" : " during the handshake");
    }
    if (!h->reported) {
        rs__tls_report(h, error ? error : rs__tls_hangup_error(h));
    }
    rs_channel_slot_on_handler_shutdown_complete(h->handler.slot, RS_CHANNEL_DIR_READ, error, false);
}

/* The engine has closed: cleanly (close_notify) or with an error. */
static void rs__tls_on_engine_closed(rs__tls_handler_t *h) {
    int err = h->engine->vtable->last_error(h->engine);
    if (err != RS_OK) {
        rs__tls_fail(h, err);
        return;
    }
    if (!h->peer_closed && !h->close_sent) {
        h->peer_closed = true;
        RS__TLS_LOG(RS_LOG_LEVEL_DEBUG, "tls %p: close_notify received", (void *)h);
    }
    if (h->peer_closed && rs__tls_read_drained(h)) {
        if (!h->negotiated) {
            rs__tls_fail(h, RS_ETLS_TRUNCATED);
        } else {
            rs_channel_shutdown(rs__tls_channel(h), RS_EEOF);
        }
    }
}

static int rs__tls_pump_once(rs__tls_handler_t *h, bool *progress) {
    unsigned state = rs__tls_state(h);
    int err = RS_OK;
    if (!h->negotiated && (state & (RS_TLS_ENGINE_SENDAPP | RS_TLS_ENGINE_RECVAPP))) {
        /* First, so that an ALPN handler is replaced before data reaches it. */
        rs__tls_on_negotiated(h);
        *progress = true;
        if (h->failed) {
            return RS_OK;
        }
    }
    if (state & RS_TLS_ENGINE_SENDREC) {
        err = rs__tls_send_records(h, progress);
    }
    if (!err && (state & RS_TLS_ENGINE_RECVAPP)) {
        err = rs__tls_deliver(h, progress);
    }
    if (!err && (state & RS_TLS_ENGINE_RECVREC)) {
        rs__tls_feed(h, progress);
    }
    if (!err && (state & RS_TLS_ENGINE_SENDAPP)) {
        rs__tls_take_writes(h, progress);
    }
    return err;
}

static void rs__tls_pump(rs__tls_handler_t *h) {
    if (h->in_pump) {
        h->pump_again = true; /* a callback we made re-entered us: the outer pump goes round again */
        return;
    }
    h->in_pump = true;
    do {
        bool progress = true;
        h->pump_again = false;
        while (progress && !h->failed) {
            int err;
            progress = false;
            if (rs__tls_state(h) & RS_TLS_ENGINE_CLOSED) {
                rs__tls_deliver(h, &progress);
                rs__tls_send_records(h, &progress);
                rs__tls_on_engine_closed(h);
                break;
            }
            err = rs__tls_pump_once(h, &progress);
            if (err) {
                rs__tls_fail(h, err);
            }
        }
    } while (h->pump_again && !h->failed);
    h->in_pump = false;
    if (h->window_owed && !h->read_shut) {
        size_t n = h->window_owed;
        h->window_owed = 0;
        rs_channel_slot_increment_read_window(h->handler.slot, n);
    }
    if (h->read_shutdown_pending && (rs__tls_read_drained(h) || h->failed)) {
        rs__tls_finish_read_shutdown(h);
    }
}

/* The engine moved on its own (an asynchronous operation came back). */
RESEAU_API int rs_tls_engine_wake(rs_channel_handler_t *handler) {
    rs__tls_handler_t *h = rs__tls_of(handler);
    if (!h) {
        return RS_EINVAL;
    }
    if (h->engine && !h->failed && !h->read_shut) {
        rs__tls_pump(h);
    }
    return RS_OK;
}

/* ---- the vtable ---- */

static int rs__tls_process_read(rs_channel_handler_t *handler, rs_channel_slot_t *slot, rs_io_message_t *message) {
    rs__tls_handler_t *h = (rs__tls_handler_t *)handler->impl;
    (void)slot;
    h->bytes_read += message->message_data.len;
    if (h->failed || h->read_shut || !h->started) {
        rs_channel_release_message_to_pool(rs__tls_channel(h), message);
        return RS_OK;
    }
    message->copy_mark = 0;
    rs_list_push_back(&h->read_queue, &message->queueing_handle);
    rs__tls_pump(h);
    return RS_OK;
}

static int rs__tls_process_write(rs_channel_handler_t *handler, rs_channel_slot_t *slot, rs_io_message_t *message) {
    rs__tls_handler_t *h = (rs__tls_handler_t *)handler->impl;
    (void)slot;
    if (h->failed || h->write_shut || h->close_sent) {
        return RS_ESHUTDOWN;
    }
    message->copy_mark = 0;
    rs_list_push_back(&h->write_queue, &message->queueing_handle);
    rs_channel_slot_add_pending_write_bytes(h->handler.slot, (int64_t)message->message_data.len);
    if (h->started) {
        rs__tls_pump(h);
    }
    return RS_OK;
}

static int rs__tls_increment_window(rs_channel_handler_t *handler, rs_channel_slot_t *slot, size_t size) {
    rs__tls_handler_t *h = (rs__tls_handler_t *)handler->impl;
    (void)slot;
    (void)size;
    if (h->started) {
        rs__tls_pump(h);
    }
    return RS_OK;
}

static void rs__tls_shutdown_write(rs__tls_handler_t *h, int error_code, bool abort_immediately) {
    rs_channel_t *channel = rs__tls_channel(h);
    h->write_shut = true;
    if (abort_immediately || !h->negotiated || h->failed) {
        rs__tls_cancel_writes(h, &h->write_queue, channel, RS_ECANCELED);
    } else {
        bool progress = false;
        h->in_pump = true;
        rs__tls_take_writes(h, &progress);
        rs__tls_send_records(h, &progress);
        if (!rs_list_empty(&h->write_queue)) { /* the engine refused: it is closing */
            rs__tls_cancel_writes(h, &h->write_queue, channel, RS_ECANCELED);
        }
        if (!(rs__tls_state(h) & RS_TLS_ENGINE_CLOSED)) {
            h->engine->vtable->close(h->engine);
            h->close_sent = true;
            rs__tls_send_records(h, &progress); /* close_notify */
        }
        h->in_pump = false;
    }
    rs_channel_slot_on_handler_shutdown_complete(h->handler.slot, RS_CHANNEL_DIR_WRITE, error_code, abort_immediately);
}

static int rs__tls_shutdown(rs_channel_handler_t *handler, rs_channel_slot_t *slot, rs_channel_direction_t dir,
                            int error_code, bool abort_immediately) {
    rs__tls_handler_t *h = (rs__tls_handler_t *)handler->impl;
    (void)slot;
    if (dir == RS_CHANNEL_DIR_WRITE) {
        if (!h->write_shut) {
            rs__tls_shutdown_write(h, error_code, abort_immediately);
        }
        return RS_OK;
    }
    if (h->read_shut) {
        return RS_OK;
    }
    if (!h->reported && error_code != RS_EEOF) {
        /* The channel went down during the handshake for another reason. */
        h->failed = true;
        rs__tls_report(h, rs__tls_lost_error(h, error_code));
    }
    if (error_code == RS_EEOF && !abort_immediately && h->started && !h->failed && !h->peer_closed) {
        /* The peer's end of stream: deliver what arrived before it first. */
        h->read_shutdown_pending = true;
        rs__tls_pump(h);
        return RS_OK;
    }
    if (error_code == RS_EEOF && h->read_shutdown_pending) {
        return RS_OK; /* still draining */
    }
    h->read_shutdown_pending = false;
    h->read_shut = true;
    if (!h->reported) {
        h->failed = true;
        rs__tls_report(h, error_code == RS_EEOF ? rs__tls_hangup_error(h) : (error_code ? error_code : RS_ECANCELED));
    }
    rs_channel_slot_on_handler_shutdown_complete(
        h->handler.slot, RS_CHANNEL_DIR_READ,
        error_code == RS_EEOF && !h->peer_closed && h->started ? rs__tls_hangup_error(h) : error_code,
        abort_immediately);
    return RS_OK;
}

static size_t rs__tls_initial_window(rs_channel_handler_t *handler) {
    (void)handler;
    return RS_CHANNEL_DEFAULT_READ_WINDOW;
}

static size_t rs__tls_message_overhead(rs_channel_handler_t *handler) {
    (void)handler;
    /* A full message becomes two records of at most 8 KiB (BearSSL's; another
     * engine's overhead may differ: this is a hint for the handlers to the
     * right, which the handler does not rely on). */
    return 2 * RS__TLS_HANDLER_RECORD_OVERHEAD;
}

static void rs__tls_free(rs__tls_handler_t *h) {
    rs_tls_ctx_t *ctx = h->ctx;
    if (h->engine) { /* first: it may point into our ALPN list */
        h->engine->vtable->destroy(h->engine);
        h->engine = NULL;
    }
    rs__tls_alpn_cleanup(&ctx->allocator, &h->alpn);
    rs_mem_free(&ctx->allocator, h->server_name);
    rs_pem_wipe(h, sizeof(*h));
    rs_mem_free(&ctx->allocator, h);
    rs_tls_ctx_release(ctx);
}

static void rs__tls_destroy(rs_channel_handler_t *handler) {
    rs__tls_handler_t *h = (rs__tls_handler_t *)handler->impl;
    /* The channel is going away: completions get NULL, as the socket handler's do. */
    rs__tls_cancel_writes(h, &h->write_queue, NULL, RS_ECANCELED);
    rs__tls_cancel_writes(h, &h->sealed, NULL, RS_ECANCELED);
    while (!rs_list_empty(&h->read_queue)) {
        rs_io_message_t *m = RS_CONTAINER_OF(rs_list_pop_front(&h->read_queue), rs_io_message_t, queueing_handle);
        rs_channel_release_message_to_pool(NULL, m);
    }
    rs__tls_free(h);
}

static void rs__tls_reset_stats(rs_channel_handler_t *handler) {
    rs__tls_handler_t *h = (rs__tls_handler_t *)handler->impl;
    h->bytes_read = 0;
    h->bytes_written = 0;
}

static void rs__tls_gather_stats(rs_channel_handler_t *handler, rs_channel_handler_stats_t *stats) {
    rs__tls_handler_t *h = (rs__tls_handler_t *)handler->impl;
    stats->handler_name = h->is_server ? "tls-server" : "tls-client";
    stats->bytes_read = h->bytes_read;
    stats->bytes_written = h->bytes_written;
    stats->handshake_start_ns = h->handshake_start_ns;
    stats->handshake_end_ns = h->handshake_end_ns;
}

static const rs_channel_handler_vtable_t rs__tls_handler_vtable = {
    rs__tls_process_read,     rs__tls_process_write, rs__tls_increment_window, rs__tls_shutdown,
    rs__tls_initial_window,   rs__tls_message_overhead, rs__tls_destroy,     rs__tls_reset_stats,
    rs__tls_gather_stats,     NULL,
};

/* ---- set-up ---- */

/* Make the engine (the handshake starts): RS_OK, or the factory's error. */
static int rs__tls_engine_start(rs__tls_handler_t *h) {
    rs_tls_engine_config_t config;
    char key[sizeof(((rs__tls_client_session_t *)0)->key)];
    const rs__tls_alpn_t *alpn = h->alpn.count ? &h->alpn : &h->ctx->alpn;
    rs_tls_engine_new_fn *engine_new = h->engine_new ? h->engine_new : rs_tls_engine_bearssl_new;
    int err = RS_ETLS_FAILED;
    memset(&config, 0, sizeof(config));
    config.ctx = h->ctx;
    config.allocator = &h->ctx->allocator;
    config.handler = &h->handler;
    config.is_server = h->is_server;
    config.alpn_names = alpn->names;
    config.alpn_count = alpn->count;
    if (!h->is_server) {
        config.server_name = h->server_name;
        rs__tls_session_key(h, key, sizeof(key));
        config.session_key = key;
    }
    h->engine = engine_new(&config, h->engine_user_data, &err);
    if (!h->engine) {
        return err != RS_OK ? err : RS_ETLS_FAILED;
    }
    return RS_OK;
}

RESEAU_API rs_channel_handler_t *rs_tls_handler_new(const rs_tls_connection_options_t *options, int *err_out) {
    rs__tls_handler_t *h = NULL;
    rs_tls_ctx_t *ctx;
    int err = RS_EINVAL;
    if (!options || !options->ctx) {
        goto fail;
    }
    ctx = options->ctx;
    h = (rs__tls_handler_t *)rs_mem_calloc(&ctx->allocator, 1, sizeof(*h));
    if (!h) {
        err = RS_ENOMEM;
        goto fail;
    }
    rs_tls_ctx_acquire(ctx);
    h->ctx = ctx;
    h->is_server = ctx->is_server;
    h->engine_new = options->engine_new;
    h->engine_user_data = options->engine_user_data;
    h->handler.vtable = &rs__tls_handler_vtable;
    h->handler.impl = h;
    h->timeout_ms = options->negotiation_timeout_ms ? options->negotiation_timeout_ms : ctx->negotiation_timeout_ms;
    h->on_negotiation_result = options->on_negotiation_result;
    h->user_data = options->user_data;
    rs_list_init(&h->read_queue);
    rs_list_init(&h->write_queue);
    rs_list_init(&h->sealed);
    rs_channel_task_init(&h->timeout_task, rs__tls_timeout_task, h, "tls-negotiation-timeout");
    err = rs__tls_alpn_parse(&ctx->allocator, options->alpn_list, &h->alpn);
    if (!err && options->server_name && !ctx->is_server) {
        size_t len = strlen(options->server_name);
        h->server_name = (char *)rs_mem_alloc(&ctx->allocator, len + 1);
        if (!h->server_name) {
            err = RS_ENOMEM;
        } else {
            uint8_t ip[16];
            uint32_t scope;
            memcpy(h->server_name, options->server_name, len + 1);
            h->server_name_is_ip = rs_ipv4_parse(h->server_name, ip) == RS_OK ||
                                   rs_ipv6_parse(h->server_name, ip, &scope) == RS_OK;
        }
    }
    if (err) {
        rs__tls_free(h);
        goto fail;
    }
    if (err_out) {
        *err_out = RS_OK;
    }
    return &h->handler;
fail:
    if (err_out) {
        *err_out = err;
    }
    return NULL;
}

RESEAU_API void rs_tls_handler_destroy(rs_channel_handler_t *handler) {
    rs__tls_handler_t *h = rs__tls_of(handler);
    if (h && !handler->slot) {
        rs__tls_free(h);
    }
}

RESEAU_API int rs_tls_handler_start_negotiation(rs_channel_handler_t *handler) {
    rs__tls_handler_t *h = rs__tls_of(handler);
    rs_channel_t *channel;
    rs_event_loop_t *loop;
    int err;
    if (!h) {
        return RS_EINVAL;
    }
    if (!handler->slot) {
        return RS_ESTATE;
    }
    channel = rs__tls_channel(h);
    if (!rs_channel_is_on_loop_thread(channel)) {
        return RS_EWRONGTHREAD;
    }
    if (h->started) {
        return RS_ESTATE;
    }
    loop = rs_channel_get_loop(channel);
    h->started = true;
    h->handshake_start_ns = rs_event_loop_now_ns(loop);
    err = rs__tls_engine_start(h);
    if (err) {
        h->started = false;
        return err;
    }
    if (rs_channel_schedule_task_future(channel, &h->timeout_task,
                                        h->handshake_start_ns + (uint64_t)h->timeout_ms * RS_NS_PER_MS) != RS_OK) {
        h->engine->vtable->destroy(h->engine);
        h->engine = NULL;
        h->started = false;
        return RS_ESTATE;
    }
    rs_trace_emit(RS_TRACE_TLS_HANDSHAKE_BEGIN, loop, &h->handler, "tls", RS_OK);
    rs__tls_pump(h);
    return RS_OK;
}

/* Add a handler right of `slot` and start it; on error nothing is left added. */
static int rs__tls_add(rs_channel_slot_t *slot, const rs_tls_connection_options_t *options,
                       rs__tls_install_done_fn *done, void *done_ctx, rs_channel_slot_t **slot_out) {
    rs_channel_slot_t *added = NULL;
    rs_channel_handler_t *handler;
    int err;
    if (!slot || !options) {
        return RS_EINVAL;
    }
    if (!rs_channel_is_on_loop_thread(rs_channel_slot_get_channel(slot))) {
        return RS_EWRONGTHREAD;
    }
    handler = rs_tls_handler_new(options, &err);
    if (!handler) {
        return err;
    }
    ((rs__tls_handler_t *)handler->impl)->install_done = done;
    ((rs__tls_handler_t *)handler->impl)->install_done_ctx = done_ctx;
    err = rs_channel_slot_add_handler_right(slot, handler, &added);
    if (err) {
        rs_tls_handler_destroy(handler);
        return err;
    }
    err = rs_tls_handler_start_negotiation(handler);
    if (err) {
        /* The slot owns the handler now: take it out, and let it go. */
        ((rs__tls_handler_t *)handler->impl)->install_done = NULL;
        rs_channel_slot_remove(added);
        return err;
    }
    if (slot_out) {
        *slot_out = added;
    }
    return RS_OK;
}

RESEAU_API int rs_tls_channel_add(rs_channel_slot_t *slot, const rs_tls_connection_options_t *options,
                                  rs_channel_slot_t **slot_out) {
    return rs__tls_add(slot, options, NULL, NULL, slot_out);
}

RESEAU_API int rs_tls_handler_get_info(const rs_channel_handler_t *handler, rs_tls_info_t *out) {
    const rs__tls_handler_t *h = rs__tls_of(handler);
    if (!h || !out) {
        return RS_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    out->negotiated = h->negotiated;
    out->result = h->result;
    out->handshake_start_ns = h->handshake_start_ns;
    out->handshake_end_ns = h->handshake_end_ns;
    out->cipher_suite_name = "none";
    if (h->negotiated) {
        out->resumed = h->info.resumed;
        out->peer_verified = h->info.peer_verified;
        out->version = h->info.version;
        out->cipher_suite = h->info.cipher_suite;
        out->cipher_suite_name = h->info.cipher_suite_name;
        out->alpn = h->info.alpn;
    }
    if (h->is_server) {
        if (h->engine) { /* the SNI is known before the handshake ends */
            rs_tls_engine_info_t info;
            memset(&info, 0, sizeof(info));
            h->engine->vtable->get_info(h->engine, &info);
            out->server_name = info.server_name;
        }
    } else {
        out->server_name = h->server_name;
    }
    return RS_OK;
}

RESEAU_API const char *rs_tls_handler_get_alpn(const rs_channel_handler_t *handler) {
    const rs__tls_handler_t *h = rs__tls_of(handler);
    if (!h || !h->negotiated) {
        return NULL;
    }
    return h->info.alpn;
}

RESEAU_API rs_channel_handler_t *rs_tls_channel_get_handler(const rs_channel_t *channel) {
    rs_channel_slot_t *slot = rs_channel_get_first_slot(channel);
    for (; slot; slot = rs_channel_slot_get_right(slot)) {
        rs_channel_handler_t *handler = rs_channel_slot_get_handler(slot);
        if (rs__tls_of(handler)) {
            return handler;
        }
    }
    return NULL;
}
