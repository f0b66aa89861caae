/*
 * Testing channel: a channel on a loop stepped by hand, whose leftmost handler
 * is a fake socket. The fake socket is driven by rs_testing_channel_run rather
 * than by I/O readiness: each pass of the run delivers the pushed bytes the
 * read window allows and takes the written bytes the write limit allows.
 */

/* Ticks one run may take before it gives up: a handler that keeps rescheduling
 * itself would otherwise spin forever (RS_EBUSY tells the test). */
#define RS__TESTING_MAX_TICKS 10000
/* Runs rs_testing_channel_destroy allows a graceful shutdown (a write limit
 * flushes over several runs) before it gives up waiting. */
#define RS__TESTING_MAX_DESTROY_RUNS 10000

typedef struct rs__fake_socket {
    rs_channel_handler_t handler;
    rs_list_t write_queue; /* accepted messages; the head's copy_mark counts bytes taken */
    size_t write_queued;   /* bytes accepted, not yet taken */
    size_t window;         /* what the fake socket believes it may send (SIZE_MAX: unlimited) */
    size_t withheld;       /* increments received while withholding */
    bool withhold;
    bool read_shut;
    bool write_shutdown_pending; /* graceful: finished once the queue has drained */
    bool write_shut;
    int shutdown_error;  /* of the write direction, passed on once it finishes */
    bool shutdown_abort;
    bool reset;          /* the peer reset: fail writes, stop reading */
    bool reset_handled;
    bool eof;            /* shut the channel down once pending reads are delivered */
    bool eof_handled;
    uint64_t bytes_read;
    uint64_t bytes_written;
} rs__fake_socket_t;

struct rs_testing_channel {
    rs_allocator_t allocator;
    rs_event_loop_t *loop;
    rs_channel_t *channel;
    rs__fake_socket_t fake;
    rs_byte_buf_t reads;   /* pushed bytes; [read_offset, len) not yet delivered */
    size_t read_offset;
    rs_byte_buf_t written; /* bytes taken from written messages, not yet drained */
    size_t write_limit;    /* bytes per run (0: unlimited) */
    size_t write_budget;   /* what is left of this run's limit */
    bool setup_done;
    int setup_error;
    bool shut_down;
    int shutdown_error;
};

/* The fake socket lives inside the testing channel, which is its impl. */
static rs_testing_channel_t *rs__testing_of_handler(rs_channel_handler_t *handler) {
    return (rs_testing_channel_t *)handler->impl;
}

static rs__fake_socket_t *rs__fake_of(rs_channel_handler_t *handler) {
    return &rs__testing_of_handler(handler)->fake;
}

static size_t rs__testing_size_add(size_t a, size_t b) {
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* ---- writes ---- */

static void rs__fake_complete_write(rs__fake_socket_t *fake, rs_io_message_t *message, int error) {
    rs_channel_t *channel = message->owning_channel;
    size_t untaken = message->message_data.len - message->copy_mark;
    fake->write_queued -= untaken;
    if (!fake->write_shut) {
        /* After write shutdown the slot may be gone (destroy): report nothing. */
        rs_channel_slot_add_pending_write_bytes(fake->handler.slot, -(int64_t)message->message_data.len);
    }
    if (message->on_completion) {
        message->on_completion(channel, message, error, message->user_data);
    }
    rs_channel_release_message_to_pool(channel, message);
}

static void rs__fake_fail_writes(rs__fake_socket_t *fake, int error) {
    rs_list_node_t *node;
    while ((node = rs_list_pop_front(&fake->write_queue)) != NULL) {
        rs__fake_complete_write(fake, RS_CONTAINER_OF(node, rs_io_message_t, queueing_handle), error);
    }
}

static void rs__fake_finish_write_shutdown(rs__fake_socket_t *fake) {
    fake->write_shutdown_pending = false;
    fake->write_shut = true;
    rs_channel_slot_on_handler_shutdown_complete(fake->handler.slot, RS_CHANNEL_DIR_WRITE, fake->shutdown_error,
                                                 fake->shutdown_abort);
}

/* Take bytes from a message (advancing its copy_mark), as far as the run's budget allows. */
static int rs__fake_take_bytes(rs_testing_channel_t *t, rs_io_message_t *message) {
    size_t want = message->message_data.len - message->copy_mark;
    size_t n = want < t->write_budget ? want : t->write_budget;
    int err = rs_byte_buf_append(&t->written, message->message_data.buffer + message->copy_mark, n);
    if (err) {
        return err;
    }
    message->copy_mark += n;
    t->fake.write_queued -= n;
    t->fake.bytes_written += n;
    if (t->write_limit) {
        t->write_budget -= n;
    }
    return RS_OK;
}

static void rs__fake_pump_writes(rs_testing_channel_t *t) {
    rs__fake_socket_t *fake = &t->fake;
    if (fake->reset) {
        rs__fake_fail_writes(fake, RS_ECONNRESET); /* a reset peer takes nothing more */
    }
    while (!rs_list_empty(&fake->write_queue) && t->write_budget > 0) {
        rs_list_node_t *node = rs_list_begin(&fake->write_queue);
        rs_io_message_t *message = RS_CONTAINER_OF(node, rs_io_message_t, queueing_handle);
        int err = rs__fake_take_bytes(t, message);
        if (err) {
            /* Like a socket error: every queued write fails, and the channel goes down. */
            rs__fake_fail_writes(fake, err);
            rs_channel_shutdown(t->channel, err);
            break;
        }
        if (message->copy_mark < message->message_data.len) {
            return; /* the budget ran out mid-message */
        }
        rs_list_remove(node);
        rs__fake_complete_write(fake, message, RS_OK);
    }
    if (fake->write_shutdown_pending && rs_list_empty(&fake->write_queue)) {
        rs__fake_finish_write_shutdown(fake);
    }
}

static int rs__fake_process_write(rs_channel_handler_t *handler, rs_channel_slot_t *slot, rs_io_message_t *message) {
    rs__fake_socket_t *fake = rs__fake_of(handler);
    if (fake->write_shut) {
        return RS_ENOTCONN; /* not taken: the caller keeps the message */
    }
    /* Completed later, by a run: a write completion never fires inside the write. */
    message->copy_mark = 0;
    rs_list_push_back(&fake->write_queue, &message->queueing_handle);
    fake->write_queued += message->message_data.len;
    rs_channel_slot_add_pending_write_bytes(slot, (int64_t)message->message_data.len);
    return RS_OK;
}

/* ---- reads ---- */

static size_t rs__testing_pending_reads(const rs_testing_channel_t *t) {
    return t->reads.len - t->read_offset;
}

static size_t rs__fake_read_allowance(rs_testing_channel_t *t) {
    size_t window = rs_channel_slot_downstream_read_window(t->fake.handler.slot);
    size_t n = rs__testing_pending_reads(t);
    if (t->fake.read_shut || t->fake.reset) {
        return 0;
    }
    n = n < window ? n : window;
    return n < t->fake.window ? n : t->fake.window;
}

/* Deliver one message of at most a fragment; false when delivery must stop. */
static bool rs__fake_deliver_one(rs_testing_channel_t *t, size_t n) {
    rs_io_message_t *message;
    int err;
    n = n < RS_MAX_FRAGMENT_SIZE ? n : RS_MAX_FRAGMENT_SIZE;
    message = rs_channel_acquire_message_from_pool(t->channel, RS_IO_MESSAGE_APPLICATION_DATA, n);
    if (!message) {
        rs_channel_shutdown(t->channel, RS_ENOMEM);
        return false;
    }
    rs_byte_buf_append(&message->message_data, t->reads.buffer + t->read_offset, n);
    t->read_offset += n;
    t->fake.bytes_read += n;
    if (t->fake.window != SIZE_MAX) {
        t->fake.window -= n;
    }
    err = rs_channel_slot_send_message(t->fake.handler.slot, message, RS_CHANNEL_DIR_READ);
    if (err) {
        rs_channel_release_message_to_pool(t->channel, message);
        rs_channel_shutdown(t->channel, err);
        return false;
    }
    return true;
}

static void rs__fake_deliver_reads(rs_testing_channel_t *t) {
    size_t n;
    while ((n = rs__fake_read_allowance(t)) > 0) {
        if (!rs__fake_deliver_one(t, n)) {
            return;
        }
    }
    if (rs__testing_pending_reads(t) == 0) {
        rs_byte_buf_reset(&t->reads); /* keep the storage: steady state does not allocate */
        t->read_offset = 0;
    }
}

static int rs__fake_increment_window(rs_channel_handler_t *handler, rs_channel_slot_t *slot, size_t size) {
    rs__fake_socket_t *fake = rs__fake_of(handler);
    (void)slot;
    if (fake->withhold) {
        fake->withheld = rs__testing_size_add(fake->withheld, size);
        return RS_OK;
    }
    fake->window = rs__testing_size_add(fake->window, size);
    rs__fake_deliver_reads(rs__testing_of_handler(handler));
    return RS_OK;
}

static void rs__fake_trigger_read(rs_channel_handler_t *handler) {
    rs__fake_deliver_reads(rs__testing_of_handler(handler));
}

/* ---- peer events: reset and end of stream ---- */

static void rs__fake_handle_peer(rs_testing_channel_t *t) {
    rs__fake_socket_t *fake = &t->fake;
    if (fake->reset && !fake->reset_handled) {
        fake->reset_handled = true;
        /* A reset peer discards what it had not read, and so do we. */
        rs_byte_buf_reset(&t->reads);
        t->read_offset = 0;
        rs_channel_shutdown(t->channel, RS_ECONNRESET);
    }
    if (fake->eof && !fake->eof_handled && rs__testing_pending_reads(t) == 0) {
        fake->eof_handled = true;
        rs_channel_shutdown(t->channel, RS_EEOF);
    }
}

/* ---- the rest of the handler ---- */

static int rs__fake_process_read(rs_channel_handler_t *handler, rs_channel_slot_t *slot, rs_io_message_t *message) {
    (void)handler;
    (void)slot;
    (void)message;
    RS__LOG_ERROR(RS_LS_CHANNEL, "the testing channel's fake socket is leftmost; it received a read message");
    return RS_EINVAL;
}

static int rs__fake_shutdown(rs_channel_handler_t *handler, rs_channel_slot_t *slot, rs_channel_direction_t dir,
                             int error_code, bool abort_immediately) {
    rs__fake_socket_t *fake = rs__fake_of(handler);
    if (dir == RS_CHANNEL_DIR_READ) {
        fake->read_shut = true;
        return rs_channel_slot_on_handler_shutdown_complete(slot, dir, error_code, abort_immediately);
    }
    fake->shutdown_error = error_code;
    fake->shutdown_abort = abort_immediately;
    if ((abort_immediately || fake->reset) && !rs_list_empty(&fake->write_queue)) {
        /* Like the socket handler: dropping accepted writes is never a clean close. Also
         * the upgrade of a pending graceful shutdown, which this call may be. */
        int lost = fake->reset ? RS_ECONNRESET : RS_ECANCELED;
        if (!fake->shutdown_error) {
            fake->shutdown_error = lost;
        }
        rs__fake_fail_writes(fake, lost);
    }
    if (!rs_list_empty(&fake->write_queue)) {
        fake->write_shutdown_pending = true; /* graceful: a later run flushes, then finishes */
        return RS_OK;
    }
    rs__fake_finish_write_shutdown(fake);
    return RS_OK;
}

static size_t rs__fake_initial_window(rs_channel_handler_t *handler) {
    (void)handler;
    return SIZE_MAX; /* nothing sends to the leftmost slot */
}

static size_t rs__fake_overhead(rs_channel_handler_t *handler) {
    (void)handler;
    return 0;
}

/* The fake socket lives inside the testing channel; destroy only settles the
 * writes still queued, which complete once, as canceled. */
static void rs__fake_destroy(rs_channel_handler_t *handler) {
    rs__fake_socket_t *fake = rs__fake_of(handler);
    fake->write_shut = true;
    rs__fake_fail_writes(fake, RS_ECANCELED);
    fake->handler.slot = NULL;
}

static void rs__fake_reset_stats(rs_channel_handler_t *handler) {
    rs__fake_socket_t *fake = rs__fake_of(handler);
    fake->bytes_read = 0;
    fake->bytes_written = 0;
}

static void rs__fake_gather_stats(rs_channel_handler_t *handler, rs_channel_handler_stats_t *stats) {
    rs__fake_socket_t *fake = rs__fake_of(handler);
    stats->handler_name = "testing_socket";
    stats->bytes_read = fake->bytes_read;
    stats->bytes_written = fake->bytes_written;
}

static const rs_channel_handler_vtable_t rs__fake_socket_vtable = {
    rs__fake_process_read, rs__fake_process_write, rs__fake_increment_window, rs__fake_shutdown,
    rs__fake_initial_window, rs__fake_overhead, rs__fake_destroy, rs__fake_reset_stats,
    rs__fake_gather_stats, rs__fake_trigger_read,
};

/* ---- running ---- */

static bool rs__fake_has_work(rs_testing_channel_t *t) {
    rs__fake_socket_t *fake = &t->fake;
    if (!fake->handler.slot) {
        return false;
    }
    if (fake->reset && !fake->reset_handled) {
        return true;
    }
    if (fake->eof && !fake->eof_handled && rs__testing_pending_reads(t) == 0) {
        return true;
    }
    if ((t->write_budget > 0 || fake->reset) && (!rs_list_empty(&fake->write_queue) || fake->write_shutdown_pending)) {
        return true;
    }
    return rs__fake_read_allowance(t) > 0;
}

/* One pass of the fake socket: peer events, then reads, then writes. */
static void rs__fake_pump(rs_testing_channel_t *t) {
    if (!t->fake.handler.slot) {
        return;
    }
    rs__fake_handle_peer(t);
    rs__fake_deliver_reads(t);
    rs__fake_handle_peer(t); /* end of stream once the last bytes went out */
    rs__fake_pump_writes(t);
}

/* Whether the loop has a task due now. */
static bool rs__testing_loop_ready(rs_testing_channel_t *t) {
    uint64_t deadline = UINT64_MAX;
    rs_event_loop_next_deadline(t->loop, &deadline);
    return deadline <= rs_event_loop_now_ns(t->loop);
}

/* Tick the loop alone (no fake socket) until nothing is due, or `done` is set. */
static int rs__testing_run_loop(rs_testing_channel_t *t, const bool *done) {
    int i;
    for (i = 0; i < RS__TESTING_MAX_TICKS; ++i) {
        int err = rs_event_loop_run_once(t->loop, 0);
        if (err) {
            return err;
        }
        if ((done && *done) || (!done && !rs__testing_loop_ready(t))) {
            return RS_OK;
        }
    }
    return RS_EBUSY;
}

RESEAU_API int rs_testing_channel_run(rs_testing_channel_t *testing) {
    int i;
    if (!testing) {
        return RS_EINVAL;
    }
    testing->write_budget = testing->write_limit ? testing->write_limit : SIZE_MAX;
    for (i = 0; i < RS__TESTING_MAX_TICKS; ++i) {
        int err;
        rs__fake_pump(testing);
        err = rs_event_loop_run_once(testing->loop, 0);
        if (err) {
            return err;
        }
        if (!rs__testing_loop_ready(testing) && !rs__fake_has_work(testing)) {
            return RS_OK;
        }
    }
    return RS_EBUSY;
}

/* ---- creation and destruction ---- */

static void rs__testing_on_setup(rs_channel_t *channel, int error, void *user_data) {
    rs_testing_channel_t *t = (rs_testing_channel_t *)user_data;
    (void)channel;
    t->setup_done = true;
    t->setup_error = error;
}

static void rs__testing_on_shutdown(rs_channel_t *channel, int error, void *user_data) {
    rs_testing_channel_t *t = (rs_testing_channel_t *)user_data;
    (void)channel;
    t->shut_down = true;
    t->shutdown_error = error;
}

static int rs__testing_new_loop(rs_testing_channel_t *t, const rs_testing_channel_options_t *options) {
    rs_event_loop_options_t lo;
    int err = RS_OK;
    memset(&lo, 0, sizeof(lo));
    lo.allocator = &t->allocator;
    lo.backend = options->backend;
    t->loop = rs_event_loop_new(&lo, &err);
    return t->loop ? RS_OK : err;
}

static int rs__testing_new_channel(rs_testing_channel_t *t, const rs_testing_channel_options_t *options) {
    rs_channel_options_t co;
    int err = RS_OK;
    memset(&co, 0, sizeof(co));
    co.loop = t->loop;
    co.allocator = &t->allocator;
    co.on_setup_completed = rs__testing_on_setup;
    co.on_shutdown_completed = rs__testing_on_shutdown;
    co.user_data = t;
    co.enable_read_back_pressure = options->enable_read_back_pressure;
    co.write_high_water_mark = options->write_high_water_mark;
    t->channel = rs_channel_new(&co, &err);
    if (!t->channel) {
        return err;
    }
    err = rs__testing_run_loop(t, &t->setup_done);
    return err ? err : t->setup_error;
}

static int rs__testing_insert_fake(rs_testing_channel_t *t) {
    rs_channel_slot_t *slot;
    int err = RS_OK;
    t->fake.handler.vtable = &rs__fake_socket_vtable;
    t->fake.handler.impl = t;
    slot = rs_channel_slot_new(t->channel, &err);
    if (!slot) {
        return err;
    }
    /* A new channel's first slot is linked at once: no insert needed. */
    return rs_channel_slot_set_handler(slot, &t->fake.handler);
}

/* Shut the channel down if needed, let it finish, and free it. */
static void rs__testing_close_channel(rs_testing_channel_t *t) {
    int i;
    if (t->setup_done && !t->setup_error) {
        rs_channel_shutdown(t->channel, RS_OK);
        /* Each run brings a new write budget, so a graceful flush completes. */
        for (i = 0; i < RS__TESTING_MAX_DESTROY_RUNS && !t->shut_down; ++i) {
            rs_testing_channel_run(t);
        }
        if (!t->shut_down) {
            RS__LOG_ERROR(RS_LS_CHANNEL, "testing channel %p: shutdown did not complete", (void *)t);
        }
    }
    rs_channel_destroy(t->channel);
    rs__testing_run_loop(t, NULL);
    t->channel = NULL;
}

RESEAU_API void rs_testing_channel_destroy(rs_testing_channel_t *testing) {
    rs_allocator_t allocator;
    if (!testing) {
        return;
    }
    if (testing->channel) {
        rs__testing_close_channel(testing);
    }
    if (testing->loop) {
        rs_event_loop_destroy(testing->loop);
    }
    rs_byte_buf_cleanup(&testing->reads);
    rs_byte_buf_cleanup(&testing->written);
    allocator = testing->allocator;
    rs_mem_free(&allocator, testing);
}

RESEAU_API rs_testing_channel_t *rs_testing_channel_new(const rs_testing_channel_options_t *options, int *err_out) {
    rs_testing_channel_options_t defaults;
    rs_allocator_t allocator;
    rs_testing_channel_t *t;
    int err;
    if (!options) {
        memset(&defaults, 0, sizeof(defaults));
        options = &defaults;
    }
    allocator = rs__allocator_copy(options->allocator);
    t = (rs_testing_channel_t *)rs_mem_calloc(&allocator, 1, sizeof(rs_testing_channel_t));
    if (!t) {
        rs__set_err(err_out, RS_ENOMEM);
        return NULL;
    }
    t->allocator = allocator;
    rs_list_init(&t->fake.write_queue);
    rs_byte_buf_init(&t->reads, &t->allocator, 0);
    rs_byte_buf_init(&t->written, &t->allocator, 0);
    err = rs__testing_new_loop(t, options);
    if (!err) {
        err = rs__testing_new_channel(t, options);
    }
    if (!err) {
        err = rs__testing_insert_fake(t);
    }
    if (err) {
        rs_testing_channel_destroy(t);
        t = NULL;
    }
    rs__set_err(err_out, err);
    return t;
}

/* ---- accessors and faults ---- */

RESEAU_API rs_channel_t *rs_testing_channel_get_channel(const rs_testing_channel_t *testing) {
    return testing ? testing->channel : NULL;
}

RESEAU_API rs_event_loop_t *rs_testing_channel_get_loop(const rs_testing_channel_t *testing) {
    return testing ? testing->loop : NULL;
}

RESEAU_API int rs_testing_channel_add_handler(rs_testing_channel_t *testing, rs_channel_handler_t *handler) {
    int err = RS_OK;
    rs_channel_slot_t *slot;
    if (!testing || !handler) {
        return RS_EINVAL;
    }
    slot = rs_channel_slot_new(testing->channel, &err);
    if (!slot) {
        return err;
    }
    err = rs_channel_slot_insert_end(testing->channel, slot);
    if (!err) {
        err = rs_channel_slot_set_handler(slot, handler);
    }
    if (err) {
        rs_channel_slot_remove(slot); /* it holds no handler yet: the caller keeps `handler` */
    }
    return err;
}

RESEAU_API int rs_testing_channel_push_read(rs_testing_channel_t *testing, rs_byte_cursor_t data) {
    if (!testing) {
        return RS_EINVAL;
    }
    if (testing->fake.eof || testing->fake.reset) {
        return RS_ENOTCONN;
    }
    if (testing->read_offset > 0) {
        /* Move the undelivered bytes to the front, so the buffer does not keep growing. */
        size_t pending = rs__testing_pending_reads(testing);
        memmove(testing->reads.buffer, testing->reads.buffer + testing->read_offset, pending);
        testing->reads.len = pending;
        testing->read_offset = 0;
    }
    return rs_byte_buf_append_cursor(&testing->reads, data);
}

RESEAU_API size_t rs_testing_channel_pending_read_bytes(const rs_testing_channel_t *testing) {
    return testing ? rs__testing_pending_reads(testing) : 0;
}

RESEAU_API int rs_testing_channel_drain_written(rs_testing_channel_t *testing, rs_byte_buf_t *out) {
    int err;
    if (!testing || !out) {
        return RS_EINVAL;
    }
    err = rs_byte_buf_append(out, testing->written.buffer, testing->written.len);
    if (!err) {
        rs_byte_buf_reset(&testing->written);
    }
    return err;
}

RESEAU_API size_t rs_testing_channel_pending_write_bytes(const rs_testing_channel_t *testing) {
    return testing ? testing->fake.write_queued : 0;
}

RESEAU_API void rs_testing_channel_set_write_limit(rs_testing_channel_t *testing, size_t bytes_per_run) {
    if (!testing) {
        return;
    }
    testing->write_limit = bytes_per_run;
}

RESEAU_API void rs_testing_channel_withhold_window(rs_testing_channel_t *testing, bool withhold) {
    rs__fake_socket_t *fake;
    if (!testing) {
        return;
    }
    fake = &testing->fake;
    fake->withhold = withhold;
    if (!withhold) {
        /* Applied by the next run, like any window update. */
        fake->window = rs__testing_size_add(fake->window, fake->withheld);
        fake->withheld = 0;
    }
}

RESEAU_API void rs_testing_channel_inject_reset(rs_testing_channel_t *testing) {
    if (!testing) {
        return;
    }
    testing->fake.reset = true; /* acted on by the next run */
}

RESEAU_API void rs_testing_channel_push_eof(rs_testing_channel_t *testing) {
    if (!testing) {
        return;
    }
    testing->fake.eof = true; /* acted on by a run, after the pushed bytes */
}

RESEAU_API bool rs_testing_channel_is_shut_down(const rs_testing_channel_t *testing, int *error_out) {
    bool shut_down = testing && testing->shut_down;
    if (error_out) {
        *error_out = shut_down ? testing->shutdown_error : RS_OK;
    }
    return shut_down;
}
