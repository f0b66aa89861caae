/*
 * Transport handler: a channel's left end over the application's own data
 * source. Reads are pushed in by the application (deliver); writes are
 * queued and offered to its write callback from a channel task, so that a
 * write's completion never fires inside the call that queued it.
 */

typedef struct rs__transport {
    rs_channel_handler_t handler;
    rs_allocator_t allocator;
    rs_transport_callbacks_t cb;
    void *user_data;
    rs_list_t write_queue;      /* accepted messages; the head's copy_mark counts bytes taken */
    size_t write_queued;        /* bytes accepted, not yet taken */
    rs_channel_task_t write_task;
    bool write_task_scheduled;
    bool blocked;               /* write took less than offered: wait for resume_writes */
    bool read_shut;
    bool write_shutdown_pending; /* graceful: finish once the queue has drained */
    bool write_shut;
    bool destroyed;             /* destroy came while the write task was pending: it frees */
    int write_error;            /* write failed: no later byte may go out (the stream has a gap) */
    int shutdown_error;
    bool shutdown_abort;
    uint64_t bytes_read;
    uint64_t bytes_written;
} rs__transport_t;

/* Declared ahead as the handler's mark: C++ has no tentative definition of the vtable. */
static void rs__transport_destroy(rs_channel_handler_t *handler);

static rs__transport_t *rs__transport_of(const rs_channel_handler_t *handler) {
    return handler && handler->vtable && handler->vtable->destroy == rs__transport_destroy
               ? (rs__transport_t *)handler->impl
               : NULL;
}

/* The handler as the public calls need it: a transport, in a slot, on its loop's thread. */
static int rs__transport_check(const rs_channel_handler_t *handler, const char *function, rs__transport_t **out) {
    rs__transport_t *t = rs__transport_of(handler);
    if (!t || !t->handler.slot) {
        return RS_EINVAL;
    }
    if (!rs_channel_is_on_loop_thread(rs_channel_slot_get_channel(t->handler.slot))) {
        RS__LOG_ERROR(RS_LS_CHANNEL, "%s called off the channel's loop thread", function);
        return RS_EWRONGTHREAD;
    }
    *out = t;
    return RS_OK;
}

/* ---- writes ---- */

static void rs__transport_complete_write(rs__transport_t *t, rs_io_message_t *message, int error) {
    rs_channel_t *channel = message->owning_channel;
    t->write_queued -= message->message_data.len - message->copy_mark;
    if (!t->write_shut) {
        rs_channel_slot_add_pending_write_bytes(t->handler.slot, -(int64_t)message->message_data.len);
    }
    if (message->on_completion) {
        message->on_completion(channel, message, error, message->user_data);
    }
    rs_channel_release_message_to_pool(channel, message);
}

static void rs__transport_fail_writes(rs__transport_t *t, int error) {
    rs_list_node_t *node;
    while ((node = rs_list_pop_front(&t->write_queue)) != NULL) {
        rs__transport_complete_write(t, RS_CONTAINER_OF(node, rs_io_message_t, queueing_handle), error);
    }
}

static void rs__transport_finish_write_shutdown(rs__transport_t *t) {
    t->write_shutdown_pending = false;
    t->write_shut = true;
    if (t->cb.on_close) {
        t->cb.on_close(t->user_data, t->shutdown_error);
    }
    rs_channel_slot_on_handler_shutdown_complete(t->handler.slot, RS_CHANNEL_DIR_WRITE, t->shutdown_error,
                                                 t->shutdown_abort);
}

/* Offer the head message's untaken bytes; false when writing must stop. */
static bool rs__transport_write_one(rs__transport_t *t, rs_io_message_t *message) {
    rs_byte_cursor_t rest = rs_byte_cursor_from_array(message->message_data.buffer + message->copy_mark,
                                                      message->message_data.len - message->copy_mark);
    size_t taken = 0;
    int err = t->cb.write(t->user_data, rest, &taken);
    if (err || taken > rest.len) {
        err = err ? err : RS_EINVAL; /* a callback that claims more than it was given is a bug */
        RS__LOG_ERROR(RS_LS_CHANNEL, "transport handler %p: write failed: %s", (void *)t, rs_err_name(err));
        t->write_error = err;
        rs__transport_fail_writes(t, err);
        rs_channel_shutdown(rs_channel_slot_get_channel(t->handler.slot), err);
        return false;
    }
    message->copy_mark += taken;
    t->write_queued -= taken;
    t->bytes_written += taken;
    if (message->copy_mark < message->message_data.len) {
        t->blocked = true;
        return false;
    }
    rs_list_remove(&message->queueing_handle);
    rs__transport_complete_write(t, message, RS_OK);
    return true;
}

static void rs__transport_pump_writes(rs__transport_t *t) {
    while (!t->blocked && !rs_list_empty(&t->write_queue)) {
        rs_list_node_t *node = rs_list_begin(&t->write_queue);
        if (!rs__transport_write_one(t, RS_CONTAINER_OF(node, rs_io_message_t, queueing_handle))) {
            break;
        }
    }
    if (t->write_shutdown_pending && rs_list_empty(&t->write_queue)) {
        rs__transport_finish_write_shutdown(t);
    }
}

static void rs__transport_write_task(rs_channel_task_t *task, void *arg, rs_task_status_t status) {
    rs__transport_t *t = (rs__transport_t *)arg;
    (void)task;
    t->write_task_scheduled = false;
    if (t->destroyed) {
        rs_mem_free(&t->allocator, t);
        return;
    }
    if (status == RS_TASK_STATUS_RUN) {
        rs__transport_pump_writes(t);
    }
}

static void rs__transport_schedule_writes(rs__transport_t *t) {
    if (t->write_task_scheduled || t->blocked || t->write_shut) {
        return;
    }
    if (rs_channel_schedule_task_now(rs_channel_slot_get_channel(t->handler.slot), &t->write_task) == RS_OK) {
        t->write_task_scheduled = true;
    }
}

static int rs__transport_process_write(rs_channel_handler_t *handler, rs_channel_slot_t *slot,
                                       rs_io_message_t *message) {
    rs__transport_t *t = (rs__transport_t *)handler->impl;
    if (t->write_shut) {
        return RS_ENOTCONN; /* not taken: the caller keeps the message */
    }
    if (t->write_error) {
        return t->write_error; /* not taken: after a lost write, nothing more may go out */
    }
    message->copy_mark = 0;
    rs_list_push_back(&t->write_queue, &message->queueing_handle);
    t->write_queued += message->message_data.len;
    rs_channel_slot_add_pending_write_bytes(slot, (int64_t)message->message_data.len);
    rs__transport_schedule_writes(t);
    return RS_OK;
}

RESEAU_API int rs_transport_handler_resume_writes(rs_channel_handler_t *handler) {
    rs__transport_t *t = NULL;
    int err = rs__transport_check(handler, "rs_transport_handler_resume_writes", &t);
    if (err) {
        return err;
    }
    t->blocked = false;
    if (!rs_list_empty(&t->write_queue)) {
        rs__transport_schedule_writes(t);
    }
    return RS_OK;
}

RESEAU_API size_t rs_transport_handler_pending_write_bytes(const rs_channel_handler_t *handler) {
    rs__transport_t *t = rs__transport_of(handler);
    return t ? t->write_queued : 0;
}

/* ---- reads ---- */

/* Send one message of at most a fragment; RS_OK or the error the channel shuts down with. */
static int rs__transport_deliver_one(rs__transport_t *t, const uint8_t *bytes, size_t n) {
    rs_channel_t *channel = rs_channel_slot_get_channel(t->handler.slot);
    rs_io_message_t *message = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, n);
    int err;
    if (!message) {
        rs_channel_shutdown(channel, RS_ENOMEM);
        return RS_ENOMEM;
    }
    rs_byte_buf_append(&message->message_data, bytes, n);
    err = rs_channel_slot_send_message(t->handler.slot, message, RS_CHANNEL_DIR_READ);
    if (err) {
        rs_channel_release_message_to_pool(channel, message);
        rs_channel_shutdown(channel, err);
        return err;
    }
    t->bytes_read += n;
    return RS_OK;
}

RESEAU_API int rs_transport_handler_deliver(rs_channel_handler_t *handler, rs_byte_cursor_t data, size_t *taken) {
    rs__transport_t *t = NULL;
    size_t done = 0;
    int err = data.len && !data.ptr ? RS_EINVAL : rs__transport_check(handler, "rs_transport_handler_deliver", &t);
    if (!err && t->read_shut) {
        err = RS_ENOTCONN;
    }
    while (!err && done < data.len) {
        size_t window = rs_channel_slot_downstream_read_window(t->handler.slot);
        size_t n = data.len - done;
        if (window == 0) {
            break;
        }
        n = n < window ? n : window;
        n = n < RS_MAX_FRAGMENT_SIZE ? n : RS_MAX_FRAGMENT_SIZE;
        err = rs__transport_deliver_one(t, data.ptr + done, n);
        if (!err) {
            done += n;
        }
        if (!err && t->read_shut) {
            err = RS_ENOTCONN; /* the handler to the right shut the channel down */
        }
    }
    if (taken) {
        *taken = done;
    }
    return err;
}

RESEAU_API int rs_transport_handler_end_of_stream(rs_channel_handler_t *handler, int error) {
    rs__transport_t *t = NULL;
    int err = rs__transport_check(handler, "rs_transport_handler_end_of_stream", &t);
    if (err) {
        return err;
    }
    return rs_channel_shutdown(rs_channel_slot_get_channel(t->handler.slot), error ? error : RS_EEOF);
}

static int rs__transport_increment_window(rs_channel_handler_t *handler, rs_channel_slot_t *slot, size_t size) {
    rs__transport_t *t = (rs__transport_t *)handler->impl;
    (void)slot;
    if (!t->read_shut && t->cb.on_read_window) {
        t->cb.on_read_window(t->user_data, size);
    }
    return RS_OK;
}

static void rs__transport_trigger_read(rs_channel_handler_t *handler) {
    rs__transport_t *t = (rs__transport_t *)handler->impl;
    if (!t->read_shut && t->cb.on_read_window) {
        t->cb.on_read_window(t->user_data, rs_channel_slot_downstream_read_window(t->handler.slot));
    }
}

/* ---- the rest of the handler ---- */

static int rs__transport_process_read(rs_channel_handler_t *handler, rs_channel_slot_t *slot,
                                      rs_io_message_t *message) {
    (void)handler;
    (void)slot;
    (void)message;
    RS__LOG_ERROR(RS_LS_CHANNEL, "a transport handler is leftmost; it received a read message");
    return RS_EINVAL;
}

static int rs__transport_shutdown(rs_channel_handler_t *handler, rs_channel_slot_t *slot, rs_channel_direction_t dir,
                                  int error_code, bool abort_immediately) {
    rs__transport_t *t = (rs__transport_t *)handler->impl;
    if (dir == RS_CHANNEL_DIR_READ) {
        t->read_shut = true;
        return rs_channel_slot_on_handler_shutdown_complete(slot, dir, error_code, abort_immediately);
    }
    t->shutdown_error = error_code;
    t->shutdown_abort = abort_immediately;
    if (abort_immediately && !rs_list_empty(&t->write_queue)) {
        /* As the socket handler: dropping accepted writes is never a clean close. */
        if (!t->shutdown_error) {
            t->shutdown_error = RS_ECANCELED;
        }
        rs__transport_fail_writes(t, RS_ECANCELED);
    }
    if (!rs_list_empty(&t->write_queue)) {
        t->write_shutdown_pending = true; /* graceful: the write task finishes it */
        rs__transport_schedule_writes(t);
        return RS_OK;
    }
    rs__transport_finish_write_shutdown(t);
    return RS_OK;
}

static size_t rs__transport_initial_window(rs_channel_handler_t *handler) {
    (void)handler;
    return SIZE_MAX; /* nothing sends to the leftmost slot */
}

static size_t rs__transport_overhead(rs_channel_handler_t *handler) {
    (void)handler;
    return 0;
}

/* Writes still queued complete once, as canceled. A pending write task
 * (only when the slot is removed from a live channel) frees the handler. */
static void rs__transport_destroy(rs_channel_handler_t *handler) {
    rs__transport_t *t = (rs__transport_t *)handler->impl;
    t->write_shut = true;
    rs__transport_fail_writes(t, RS_ECANCELED);
    t->handler.slot = NULL;
    if (t->write_task_scheduled) {
        t->destroyed = true;
        return;
    }
    rs_mem_free(&t->allocator, t);
}

static void rs__transport_reset_stats(rs_channel_handler_t *handler) {
    rs__transport_t *t = (rs__transport_t *)handler->impl;
    t->bytes_read = 0;
    t->bytes_written = 0;
}

static void rs__transport_gather_stats(rs_channel_handler_t *handler, rs_channel_handler_stats_t *stats) {
    rs__transport_t *t = (rs__transport_t *)handler->impl;
    stats->handler_name = "transport";
    stats->bytes_read = t->bytes_read;
    stats->bytes_written = t->bytes_written;
}

static const rs_channel_handler_vtable_t rs__transport_vtable = {
    rs__transport_process_read, rs__transport_process_write, rs__transport_increment_window,
    rs__transport_shutdown,     rs__transport_initial_window, rs__transport_overhead,
    rs__transport_destroy,      rs__transport_reset_stats,    rs__transport_gather_stats,
    rs__transport_trigger_read,
};

RESEAU_API rs_channel_handler_t *rs_transport_handler_new(const rs_transport_handler_options_t *options,
                                                          int *err_out) {
    rs_allocator_t allocator;
    rs__transport_t *t;
    if (!options || !options->callbacks.write) {
        if (err_out) {
            *err_out = RS_EINVAL;
        }
        return NULL;
    }
    allocator = rs__allocator_copy(options->allocator);
    t = (rs__transport_t *)rs_mem_calloc(&allocator, 1, sizeof(*t));
    if (!t) {
        if (err_out) {
            *err_out = RS_ENOMEM;
        }
        return NULL;
    }
    t->allocator = allocator;
    t->cb = options->callbacks;
    t->user_data = options->user_data;
    rs_list_init(&t->write_queue);
    rs_channel_task_init(&t->write_task, rs__transport_write_task, t, "transport_write");
    t->handler.vtable = &rs__transport_vtable;
    t->handler.impl = t;
    if (err_out) {
        *err_out = RS_OK;
    }
    return &t->handler;
}
