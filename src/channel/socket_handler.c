/* Socket channel handler. */

#define RS__SOCKET_HANDLER_READS_PER_TICK 4
/* Bytes per read system call by default: 64 KiB, like libuv. Reading only one
 * 16 KiB fragment per call tripled the recv calls and the kernel's ACK work
 * (tools/bench pump_100), so one call fills several messages. */
#define RS__SOCKET_HANDLER_READ_SIZE ((size_t)64 * 1024)
#define RS__SOCKET_HANDLER_MESSAGES_PER_READ (RS__SOCKET_HANDLER_READ_SIZE / RS_MAX_FRAGMENT_SIZE)

typedef struct rs__socket_handler {
    rs_channel_handler_t handler;
    rs_allocator_t allocator;
    rs_socket_t *socket;
    size_t max_read_size;
    uint32_t reads_per_tick;
    rs_list_t in_flight; /* messages handed to rs_socket_write, completion order = list order */
    bool read_shut;
    bool write_shutdown_pending; /* waiting for in-flight writes before closing */
    bool destroyed;              /* freed once the last in-flight write completes */
    int shutdown_error;
    int write_error;             /* the first write that failed or was canceled: accepted data not delivered */
    size_t reported_pending;     /* bytes counted toward the channel's writability */
    uint64_t bytes_read;
    uint64_t bytes_written;
} rs__socket_handler_t;

static rs__socket_handler_t *rs__sh(rs_channel_handler_t *handler) {
    return (rs__socket_handler_t *)handler->impl;
}

static void rs__socket_handler_free(rs__socket_handler_t *sh) {
    rs_allocator_t allocator = sh->allocator;
    rs_mem_free(&allocator, sh);
}

/* The shutdown's own error, else the first lost write's: a shutdown that
 * dropped accepted data never reports RS_OK. */
static int rs__socket_handler_write_shutdown_error(const rs__socket_handler_t *sh) {
    return sh->shutdown_error ? sh->shutdown_error : sh->write_error;
}

static void rs__socket_handler_finish_write_shutdown(rs__socket_handler_t *sh) {
    rs_channel_slot_t *slot = sh->handler.slot;
    sh->write_shutdown_pending = false;
    rs_socket_close(sh->socket);
    rs_channel_slot_on_handler_shutdown_complete(slot, RS_CHANNEL_DIR_WRITE, rs__socket_handler_write_shutdown_error(sh),
                                                 false);
}

/* Writability counts the bytes the kernel does not have yet: the socket's
 * queue. Resynced after each write (most go to the kernel at once) and at
 * each completion (which follows any flush on a writable event), never from
 * completions alone, which come a tick after the bytes left. */
static void rs__socket_handler_sync_pending(rs__socket_handler_t *sh) {
    size_t now = rs_socket_get_pending_write_bytes(sh->socket);
    if (now != sh->reported_pending) {
        int64_t delta = (int64_t)now - (int64_t)sh->reported_pending;
        sh->reported_pending = now;
        rs_channel_slot_add_pending_write_bytes(sh->handler.slot, delta);
    }
}

static void rs__socket_handler_on_written(rs_socket_t *socket, int error, size_t bytes_written, void *user_data) {
    rs__socket_handler_t *sh = (rs__socket_handler_t *)user_data;
    rs_list_node_t *node = rs_list_pop_front(&sh->in_flight);
    rs_io_message_t *message = RS_CONTAINER_OF(node, rs_io_message_t, queueing_handle);
    rs_channel_t *channel = message->owning_channel;
    (void)socket;
    sh->bytes_written += bytes_written;
    if (sh->destroyed) {
        /* The channel may be freed already: say so rather than hand out a dangling pointer. */
        channel = NULL;
        message->owning_channel = NULL;
    } else {
        rs__socket_handler_sync_pending(sh);
        if (error && !sh->write_error) {
            sh->write_error = error;
        }
    }
    if (message->on_completion) {
        message->on_completion(channel, message, error, message->user_data);
    }
    rs_channel_release_message_to_pool(channel, message);
    if (sh->destroyed) {
        if (rs_list_empty(&sh->in_flight)) {
            rs__socket_handler_free(sh);
        }
        return;
    }
    if (error && error != RS_ECANCELED) {
        rs_channel_shutdown(channel, error);
    }
    if (sh->write_shutdown_pending && rs_list_empty(&sh->in_flight)) {
        rs__socket_handler_finish_write_shutdown(sh);
    }
}

static int rs__socket_handler_process_write(rs_channel_handler_t *handler, rs_channel_slot_t *slot,
                                            rs_io_message_t *message) {
    rs__socket_handler_t *sh = rs__sh(handler);
    int err = rs_socket_write(sh->socket, rs_byte_cursor_from_buf(&message->message_data),
                              rs__socket_handler_on_written, sh);
    if (err) {
        return err; /* not taken: the caller still owns the message */
    }
    rs_list_push_back(&sh->in_flight, &message->queueing_handle);
    (void)slot;
    rs__socket_handler_sync_pending(sh);
    return RS_OK;
}

static int rs__socket_handler_process_read(rs_channel_handler_t *handler, rs_channel_slot_t *slot,
                                           rs_io_message_t *message) {
    (void)handler;
    (void)slot;
    (void)message;
    RS__LOG_ERROR(RS_LS_CHANNEL, "the socket handler must be the leftmost handler; it received a read message");
    return RS_EINVAL;
}

/* Take up to `want` bytes' worth of messages from the pool, each at most one
 * fragment. Returns how many were taken (0 when out of memory). */
static size_t rs__socket_handler_take_messages(rs_channel_t *channel, size_t want, rs_io_message_t **messages,
                                               rs_byte_buf_t *bufs) {
    size_t count = 0;
    while (want > 0 && count < RS__SOCKET_HANDLER_MESSAGES_PER_READ) {
        size_t size = want < RS_MAX_FRAGMENT_SIZE ? want : RS_MAX_FRAGMENT_SIZE;
        rs_io_message_t *message = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, size);
        if (!message) {
            break;
        }
        messages[count] = message;
        bufs[count] = message->message_data;
        ++count;
        want -= size;
    }
    return count;
}

/* Pass the filled messages on, in order, and return the unused ones. */
static int rs__socket_handler_deliver(rs_channel_slot_t *slot, rs_io_message_t **messages, rs_byte_buf_t *bufs,
                                      size_t count) {
    rs_channel_t *channel = rs_channel_slot_get_channel(slot);
    int err = RS_OK;
    size_t i;
    for (i = 0; i < count; ++i) {
        messages[i]->message_data.len = bufs[i].len;
        if (err || bufs[i].len == 0) {
            rs_channel_release_message_to_pool(channel, messages[i]);
            continue;
        }
        err = rs_channel_slot_send_message(slot, messages[i], RS_CHANNEL_DIR_READ);
        if (err) {
            rs_channel_release_message_to_pool(channel, messages[i]);
        }
    }
    return err;
}

/* One read system call filling up to RS__SOCKET_HANDLER_MESSAGES_PER_READ
 * messages. Returns RS_OK to keep reading, anything else to stop. */
static int rs__socket_handler_read_once(rs__socket_handler_t *sh, size_t want) {
    rs_channel_slot_t *slot = sh->handler.slot;
    rs_channel_t *channel = rs_channel_slot_get_channel(slot);
    rs_io_message_t *messages[RS__SOCKET_HANDLER_MESSAGES_PER_READ];
    rs_byte_buf_t bufs[RS__SOCKET_HANDLER_MESSAGES_PER_READ];
    size_t n = 0;
    size_t count = rs__socket_handler_take_messages(channel, want, messages, bufs);
    int err;
    if (count == 0) {
        rs_channel_shutdown(channel, RS_ENOMEM);
        return RS_ENOMEM;
    }
    err = rs_socket_readv(sh->socket, bufs, count, &n);
    sh->bytes_read += n;
    if (err) {
        for (; count > 0; --count) {
            rs_channel_release_message_to_pool(channel, messages[count - 1]);
        }
        if (err != RS_EAGAIN) {
            sh->read_shut = true; /* EOF or an error: everything before it was delivered */
            rs_channel_shutdown(channel, err);
        }
        return err;
    }
    err = rs__socket_handler_deliver(slot, messages, bufs, count);
    if (err) {
        rs_channel_shutdown(channel, err);
    }
    return err;
}

/* Read what the window allows, up to the per-tick budget. Level-triggered
 * readiness brings us back next tick if more is waiting, which is what lets
 * other connections on the loop have their turn. */
static void rs__socket_handler_read(rs__socket_handler_t *sh) {
    rs_channel_slot_t *slot = sh->handler.slot;
    uint32_t i;
    for (i = 0; i < sh->reads_per_tick && !sh->read_shut; ++i) {
        size_t window = rs_channel_slot_downstream_read_window(slot);
        size_t want = window < sh->max_read_size ? window : sh->max_read_size;
        if (want == 0) {
            rs_socket_pause_reading(sh->socket);
            return;
        }
        if (rs__socket_handler_read_once(sh, want) != RS_OK) {
            return;
        }
    }
}

static void rs__socket_handler_on_readable(rs_socket_t *socket, int error, void *user_data) {
    rs__socket_handler_t *sh = (rs__socket_handler_t *)user_data;
    (void)socket;
    (void)error; /* the read reports it, after any data that came first */
    if (sh->handler.slot) {
        rs__socket_handler_read(sh);
    }
}

static int rs__socket_handler_increment_window(rs_channel_handler_t *handler, rs_channel_slot_t *slot, size_t size) {
    rs__socket_handler_t *sh = rs__sh(handler);
    (void)slot;
    (void)size;
    if (sh->read_shut) {
        return RS_OK;
    }
    return rs_socket_resume_reading(sh->socket);
}

static int rs__socket_handler_shutdown(rs_channel_handler_t *handler, rs_channel_slot_t *slot,
                                       rs_channel_direction_t dir, int error_code, bool abort_immediately) {
    rs__socket_handler_t *sh = rs__sh(handler);
    if (dir == RS_CHANNEL_DIR_READ) {
        sh->read_shut = true;
        rs_socket_pause_reading(sh->socket);
        if (abort_immediately) {
            rs_socket_close(sh->socket);
        }
        return rs_channel_slot_on_handler_shutdown_complete(slot, dir, error_code, abort_immediately);
    }
    sh->shutdown_error = error_code;
    if (!abort_immediately && !rs_list_empty(&sh->in_flight) && rs_socket_is_open(sh->socket)) {
        sh->write_shutdown_pending = true; /* finished by the last write completion */
        return RS_OK;
    }
    /* Abortive, first or as an upgrade of the pending graceful shutdown. */
    sh->write_shutdown_pending = false;
    if (!rs_list_empty(&sh->in_flight) && !sh->write_error) {
        sh->write_error = RS_ECANCELED; /* the queued writes are about to be canceled */
    }
    rs_socket_close(sh->socket); /* cancels queued writes: they complete with RS_ECANCELED */
    return rs_channel_slot_on_handler_shutdown_complete(slot, dir, rs__socket_handler_write_shutdown_error(sh),
                                                       abort_immediately);
}

static size_t rs__socket_handler_initial_window(rs_channel_handler_t *handler) {
    (void)handler;
    return SIZE_MAX;
}

static size_t rs__socket_handler_overhead(rs_channel_handler_t *handler) {
    (void)handler;
    return 0;
}

static void rs__socket_handler_destroy(rs_channel_handler_t *handler) {
    rs__socket_handler_t *sh = rs__sh(handler);
    sh->destroyed = true;
    rs_socket_destroy(sh->socket); /* any queued writes complete with RS_ECANCELED first */
    if (rs_list_empty(&sh->in_flight)) {
        rs__socket_handler_free(sh);
    }
}

static void rs__socket_handler_reset_stats(rs_channel_handler_t *handler) {
    rs__socket_handler_t *sh = rs__sh(handler);
    sh->bytes_read = 0;
    sh->bytes_written = 0;
}

static void rs__socket_handler_gather_stats(rs_channel_handler_t *handler, rs_channel_handler_stats_t *stats) {
    rs__socket_handler_t *sh = rs__sh(handler);
    stats->handler_name = "socket";
    stats->bytes_read = sh->bytes_read;
    stats->bytes_written = sh->bytes_written;
}

static void rs__socket_handler_trigger_read(rs_channel_handler_t *handler) {
    rs__socket_handler_t *sh = rs__sh(handler);
    if (!sh->read_shut) {
        rs_socket_resume_reading(sh->socket);
    }
}

static const rs_channel_handler_vtable_t rs__socket_handler_vtable = {
    rs__socket_handler_process_read,    rs__socket_handler_process_write, rs__socket_handler_increment_window,
    rs__socket_handler_shutdown,        rs__socket_handler_initial_window, rs__socket_handler_overhead,
    rs__socket_handler_destroy,         rs__socket_handler_reset_stats,  rs__socket_handler_gather_stats,
    rs__socket_handler_trigger_read,
};

RESEAU_API rs_channel_handler_t *rs_socket_handler_new(const rs_allocator_t *allocator, rs_socket_t *socket,
                                                       const rs_socket_handler_options_t *options, int *err_out) {
    rs_allocator_t a = rs__allocator_copy(allocator);
    rs__socket_handler_t *sh;
    int err;
    if (!socket || !rs_socket_get_loop(socket) || !rs_socket_is_open(socket)) {
        rs__set_err(err_out, RS_EINVAL);
        return NULL;
    }
    if (!rs_event_loop_is_on_loop_thread(rs_socket_get_loop(socket))) {
        rs__set_err(err_out, RS_EWRONGTHREAD);
        return NULL;
    }
    sh = (rs__socket_handler_t *)rs_mem_calloc(&a, 1, sizeof(rs__socket_handler_t));
    if (!sh) {
        rs__set_err(err_out, RS_ENOMEM);
        return NULL;
    }
    sh->allocator = a;
    sh->socket = socket;
    sh->max_read_size = options && options->max_read_size ? options->max_read_size : RS__SOCKET_HANDLER_READ_SIZE;
    if (sh->max_read_size > RS__SOCKET_HANDLER_READ_SIZE) {
        sh->max_read_size = RS__SOCKET_HANDLER_READ_SIZE;
    }
    sh->reads_per_tick = options && options->reads_per_tick ? options->reads_per_tick : RS__SOCKET_HANDLER_READS_PER_TICK;
    rs_list_init(&sh->in_flight);
    sh->handler.vtable = &rs__socket_handler_vtable;
    sh->handler.impl = sh;
    /* Reading starts paused; the first window update (a handler attached to
     * the right) or trigger_read resumes it. */
    err = rs_socket_subscribe_to_readable_events(socket, rs__socket_handler_on_readable, sh);
    if (!err) {
        err = rs_socket_pause_reading(socket);
    }
    if (err) {
        rs_mem_free(&a, sh);
        rs__set_err(err_out, err);
        return NULL;
    }
    rs__set_err(err_out, RS_OK);
    return &sh->handler;
}

RESEAU_API rs_socket_t *rs_socket_handler_get_socket(const rs_channel_handler_t *handler) {
    /* Any handler may be asked (e.g. TLS looks at the first slot's for the peer's port). */
    if (!handler || handler->vtable != &rs__socket_handler_vtable) {
        return NULL;
    }
    return ((const rs__socket_handler_t *)handler->impl)->socket;
}
