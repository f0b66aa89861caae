/*
 * Channel: slots and handlers, windows, tasks, holds, writability, statistics
 * and the shutdown sequence. Follows aws-c-io's channel, with its cross-thread
 * paths made explicit: off-thread calls hop to the loop through tasks, and
 * holds keep the memory alive across the hop.
 */

typedef enum rs__channel_state {
    RS__CHANNEL_SETTING_UP = 0,
    RS__CHANNEL_ACTIVE,
    RS__CHANNEL_SHUTTING_DOWN,
    RS__CHANNEL_SHUT_DOWN
} rs__channel_state_t;

/* Window updates are sent once a slot's window has fallen to this many bytes:
 * smaller increments are batched, so the upstream is not pinged per message. */
#define RS__WINDOW_UPDATE_THRESHOLD RS_MAX_FRAGMENT_SIZE
#define RS__DEFAULT_WRITE_HIGH_WATER ((size_t)1024 * 1024)
/* Records gathered per statistics report; handlers beyond this are not reported. */
#define RS__STATS_MAX_HANDLERS 16

struct rs_channel_slot {
    rs_channel_t *channel;
    rs_channel_slot_t *adj_left;
    rs_channel_slot_t *adj_right;
    rs_channel_handler_t *handler;
    size_t window_size;
    size_t window_update_batch;
    size_t upstream_message_overhead;
};

struct rs_channel {
    rs_allocator_t allocator;
    rs_event_loop_t *loop; /* NULL once the loop was destroyed under it (detached) */
    rs_list_node_t loop_member; /* the loop's destroy shuts it down */
    rs__message_pool_t *pool;
    rs_channel_slot_t *first;
    rs__channel_state_t state;
    bool back_pressure;

    rs_channel_on_setup_completed_fn *on_setup_completed;
    rs_channel_on_shutdown_completed_fn *on_shutdown_completed;
    rs_channel_on_writability_changed_fn *on_writability_changed;
    void *user_data;
    rs_task_t setup_task;

    int shutdown_requested; /* atomic: the first rs_channel_shutdown wins */
    int shutdown_error;
    int shutdown_abort;     /* atomic: only ever set to 1 (an abortive request upgrades a graceful one) */
    int abort_requested;    /* atomic: an abortive request came after the first request */
    int abort_error;        /* atomic: its error code */
    uint32_t graceful_timeout_ms;
    rs_channel_slot_t *shutdown_slot; /* whose handler is shutting down now (NULL between handlers) */
    rs_channel_direction_t shutdown_dir;
    rs_task_t shutdown_task;
    rs_task_t abort_task;
    rs_task_t graceful_timeout_task;
    rs_task_t shutdown_complete_task;

    rs_list_t pending_tasks; /* channel tasks scheduled from the loop thread */
    rs_channel_task_t window_update_task;
    bool window_update_scheduled;

    RS__ALIGN8 uint64_t refcount; /* atomic: the owner's reference plus holds */
    int destroy_requested; /* atomic */
    bool handlers_destroyed;
    rs_task_t destroy_task;

    int64_t pending_write_bytes;
    size_t write_high_water;
    size_t write_low_water;
    bool writable;

    rs_channel_statistics_fn *stats_fn;
    void *stats_user_data;
    uint64_t stats_interval_ns;
    rs_channel_task_t stats_task;

    /* Most channels have one or two slots: the first one made lives here, so
     * a connection's channel costs one allocation less. */
    rs_channel_slot_t embedded_slot;
    bool embedded_slot_used;
    /* Writes from any thread (rs_channel_write_threadsafe): the queue is made
     * on first use, so a channel that never sees one stays small (the struct
     * fits glibc's per-thread cache, which pound_bootstrap feels). */
    void *xwrite; /* atomic: a struct rs__xwrite_state, set once */
    RS__ALIGN8 uint64_t xwrite_bytes;   /* atomic: bytes queued there, not yet in the pipeline */
    RS__ALIGN8 uint64_t pending_mirror; /* atomic: pending_write_bytes, for other threads */
};
RS__ASSERT_ALIGN8(struct rs_channel, refcount, channel_refcount);
RS__ASSERT_ALIGN8(struct rs_channel, xwrite_bytes, channel_xwrite_bytes);
RS__ASSERT_ALIGN8(struct rs_channel, pending_mirror, channel_pending_mirror);

/* RS_EINVAL for a NULL channel (it has no thread to check); RS_EWRONGTHREAD, logged,
 * off the loop thread. */
static int rs__channel_check_thread(const rs_channel_t *channel, const char *function) {
    if (!channel) {
        return RS_EINVAL;
    }
    if (rs_event_loop_is_on_loop_thread(channel->loop)) {
        return RS_OK;
    }
    RS__LOG_ERROR(RS_LS_CHANNEL, "%s: channel %p used off its loop's thread", function, (const void *)channel);
    return RS_EWRONGTHREAD;
}

/* The same for a slot's channel: RS_EINVAL for a NULL slot. */
static int rs__slot_check_thread(const rs_channel_slot_t *slot, const char *function) {
    return slot ? rs__channel_check_thread(slot->channel, function) : RS_EINVAL;
}

/* The same, then RS_EINVAL for a NULL `required` argument: the thread is
 * checked first, so a call off the loop thread always says so. */
static int rs__slot_check_call(const rs_channel_slot_t *slot, const void *required, const char *function) {
    int err = rs__slot_check_thread(slot, function);
    return err ? err : (required ? RS_OK : RS_EINVAL);
}

/* ---- creation ---- */

static void rs__channel_setup_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_channel_t *channel = (rs_channel_t *)arg;
    int error = RS_OK;
    (void)task;
    if (status != RS_TASK_STATUS_RUN) {
        error = RS_ECANCELED;
    } else {
        channel->pool = rs__message_pool_get(channel->loop, &channel->allocator);
        error = channel->pool ? RS_OK : RS_ENOMEM;
    }
    if (!error && channel->state == RS__CHANNEL_SETTING_UP) {
        channel->state = RS__CHANNEL_ACTIVE;
    }
    rs__trace(RS_TRACE_CHANNEL_SETUP, channel->loop, channel, "channel", error, 0);
    if (channel->on_setup_completed) {
        channel->on_setup_completed(channel, error, channel->user_data);
    }
}

static void rs__channel_shutdown_task(rs_task_t *task, void *arg, rs_task_status_t status);
static void rs__channel_shutdown_complete_task(rs_task_t *task, void *arg, rs_task_status_t status);
static void rs__channel_destroy_task(rs_task_t *task, void *arg, rs_task_status_t status);
static void rs__channel_abort_task(rs_task_t *task, void *arg, rs_task_status_t status);
static void rs__channel_graceful_timeout_task(rs_task_t *task, void *arg, rs_task_status_t status);
static void rs__channel_window_update_task(rs_channel_task_t *task, void *arg, rs_task_status_t status);
static void rs__channel_xwrite_task(rs_channel_task_t *task, void *arg, rs_task_status_t status);
static void rs__channel_xwrite_close(rs_channel_t *channel);
static void rs__channel_xwrite_free(rs_channel_t *channel);
static void rs__channel_update_writability(rs_channel_t *channel);

/* The loop is being destroyed with the channel alive: shut it down
 * abortively; the destroy runs the shutdown to its end before going on. */
static void rs__channel_member_end(rs_list_node_t *member) {
    rs_channel_t *channel = RS_CONTAINER_OF(member, rs_channel_t, loop_member);
    RS__LOG_DEBUG(RS_LS_CHANNEL, "channel %p: its loop is being destroyed; shutting it down", (void *)channel);
    rs_channel_shutdown_abortively(channel, RS_ECANCELED);
}

/* The loop is gone and the owner still holds the (shut down) channel: its
 * rs_channel_destroy frees it on the calling thread. */
static void rs__channel_member_detach(rs_list_node_t *member) {
    RS_CONTAINER_OF(member, rs_channel_t, loop_member)->loop = NULL;
}

static const rs__loop_member_ops_t rs__channel_member_ops = {
    RS__MEMBER_CHANNEL, rs__channel_member_end, rs__channel_member_detach,
};

/* The one place rs_channel_options_t defaults are applied. */
static void rs__channel_apply_options(rs_channel_t *channel, const rs_channel_options_t *o) {
    channel->loop = o->loop;
    channel->on_setup_completed = o->on_setup_completed;
    channel->on_shutdown_completed = o->on_shutdown_completed;
    channel->on_writability_changed = o->on_writability_changed;
    channel->user_data = o->user_data;
    channel->back_pressure = o->enable_read_back_pressure;
    channel->graceful_timeout_ms = o->graceful_shutdown_timeout_ms;
    channel->write_high_water = o->write_high_water_mark ? o->write_high_water_mark : RS__DEFAULT_WRITE_HIGH_WATER;
    channel->write_low_water = o->write_low_water_mark ? o->write_low_water_mark : channel->write_high_water / 4;
    if (channel->write_low_water > channel->write_high_water) {
        channel->write_low_water = channel->write_high_water;
    }
}

RESEAU_API rs_channel_t *rs_channel_new(const rs_channel_options_t *options, int *err_out) {
    rs_allocator_t allocator;
    rs_channel_t *channel;
    if (!options || !options->loop) {
        rs__set_err(err_out, RS_EINVAL);
        return NULL;
    }
    allocator = rs__allocator_copy(options->allocator);
    channel = (rs_channel_t *)rs_mem_calloc(&allocator, 1, sizeof(rs_channel_t));
    if (!channel) {
        rs__set_err(err_out, RS_ENOMEM);
        return NULL;
    }
    channel->allocator = allocator;
    rs__channel_apply_options(channel, options);
    channel->writable = true;
    channel->refcount = 1;
    rs_list_init(&channel->pending_tasks);
    rs_task_init(&channel->setup_task, rs__channel_setup_task, channel, "channel_setup");
    rs_task_init(&channel->shutdown_task, rs__channel_shutdown_task, channel, "channel_shutdown");
    rs_task_init(&channel->shutdown_complete_task, rs__channel_shutdown_complete_task, channel,
                 "channel_shutdown_complete");
    rs_task_init(&channel->destroy_task, rs__channel_destroy_task, channel, "channel_destroy");
    rs_task_init(&channel->abort_task, rs__channel_abort_task, channel, "channel_shutdown_abort");
    rs_task_init(&channel->graceful_timeout_task, rs__channel_graceful_timeout_task, channel,
                 "channel_graceful_shutdown_timeout");
    rs_channel_task_init(&channel->window_update_task, rs__channel_window_update_task, channel,
                         "channel_window_update");
    rs__event_loop_add_member(channel->loop, &channel->loop_member, &rs__channel_member_ops);
    rs_event_loop_schedule_task_now(channel->loop, &channel->setup_task);
    rs__set_err(err_out, RS_OK);
    return channel;
}

RESEAU_API rs_event_loop_t *rs_channel_get_loop(const rs_channel_t *channel) {
    return channel ? channel->loop : NULL;
}

RESEAU_API bool rs_channel_is_on_loop_thread(const rs_channel_t *channel) {
    return channel && rs_event_loop_is_on_loop_thread(channel->loop);
}

RESEAU_API rs_channel_slot_t *rs_channel_get_first_slot(const rs_channel_t *channel) {
    return channel ? channel->first : NULL;
}

RESEAU_API bool rs_channel_is_writable(const rs_channel_t *channel) {
    return channel && channel->writable;
}

/* ---- channel tasks ---- */

RESEAU_API void rs_channel_task_init(rs_channel_task_t *task, rs_channel_task_fn *fn, void *arg, const char *type_tag) {
    if (!task) {
        return;
    }
    memset(task, 0, sizeof(*task));
    task->fn = fn;
    task->arg = arg;
    task->type_tag = type_tag ? type_tag : "channel_task";
}

static void rs__channel_task_run(rs_task_t *wrapper, void *arg, rs_task_status_t status) {
    rs_channel_task_t *task = (rs_channel_task_t *)arg;
    (void)wrapper;
    rs_list_remove(&task->node);
    if (task->channel->state == RS__CHANNEL_SHUT_DOWN) {
        status = RS_TASK_STATUS_CANCELED;
    }
    task->fn(task, task->arg, status);
}

/* A task scheduled after shutdown is not tracked (nothing would cancel it), so
 * it holds the channel until it has run, CANCELED: rs_channel_destroy in
 * between defers the free instead of leaving the task a dangling channel. */
static void rs__channel_task_run_late(rs_task_t *wrapper, void *arg, rs_task_status_t status) {
    rs_channel_task_t *task = (rs_channel_task_t *)arg;
    rs_channel_t *channel = task->channel;
    (void)wrapper;
    (void)status;
    task->fn(task, task->arg, RS_TASK_STATUS_CANCELED);
    rs_channel_release_hold(channel);
}

/* On the loop thread: track the task so shutdown can cancel it. */
static void rs__channel_task_schedule_local(rs_channel_t *channel, rs_channel_task_t *task, uint64_t run_at_ns) {
    task->channel = channel;
    if (channel->state == RS__CHANNEL_SHUT_DOWN) {
        /* Too late to run: canceled, but still never inline. */
        rs_task_init(&task->wrapper, rs__channel_task_run_late, task, task->type_tag);
        rs_channel_acquire_hold(channel);
        rs_event_loop_schedule_task_now(channel->loop, &task->wrapper);
        return;
    }
    rs_task_init(&task->wrapper, rs__channel_task_run, task, task->type_tag);
    rs_list_push_back(&channel->pending_tasks, &task->node);
    if (run_at_ns) {
        rs_event_loop_schedule_task_future(channel->loop, &task->wrapper, run_at_ns);
    } else {
        rs_event_loop_schedule_task_now(channel->loop, &task->wrapper);
    }
}

/* From another thread: hop to the loop first, holding the channel meanwhile. */
static void rs__channel_task_hop(rs_task_t *wrapper, void *arg, rs_task_status_t status) {
    rs_channel_task_t *task = (rs_channel_task_t *)arg;
    rs_channel_t *channel = task->channel;
    (void)wrapper;
    if (status == RS_TASK_STATUS_RUN) {
        rs__channel_task_schedule_local(channel, task, task->run_at_ns);
    } else {
        task->fn(task, task->arg, RS_TASK_STATUS_CANCELED);
    }
    rs_channel_release_hold(channel);
}

static int rs__channel_schedule(rs_channel_t *channel, rs_channel_task_t *task, uint64_t run_at_ns,
                                const char *function) {
    if (!channel || !task || !task->fn) {
        return RS_EINVAL;
    }
    /* The wrapper is re-initialised below: refuse before clobbering a scheduled one. */
    if (rs_task_is_scheduled(&task->wrapper)) {
        RS__LOG_ERROR(RS_LS_CHANNEL, "%s: channel task '%s' is already scheduled", function, task->type_tag);
        return RS_EBUSY;
    }
    if (rs_event_loop_is_on_loop_thread(channel->loop)) {
        rs__channel_task_schedule_local(channel, task, run_at_ns);
        return RS_OK;
    }
    rs_channel_acquire_hold(channel);
    task->channel = channel;
    rs_task_init(&task->wrapper, rs__channel_task_hop, task, task->type_tag);
    task->run_at_ns = run_at_ns; /* the hop itself runs now */
    rs_event_loop_schedule_task_now(channel->loop, &task->wrapper);
    return RS_OK;
}

RESEAU_API int rs_channel_schedule_task_now(rs_channel_t *channel, rs_channel_task_t *task) {
    return rs__channel_schedule(channel, task, 0, "rs_channel_schedule_task_now");
}

RESEAU_API int rs_channel_schedule_task_future(rs_channel_t *channel, rs_channel_task_t *task, uint64_t run_at_ns) {
    return rs__channel_schedule(channel, task, run_at_ns ? run_at_ns : 1, "rs_channel_schedule_task_future");
}

static void rs__channel_cancel_pending_tasks(rs_channel_t *channel) {
    rs_list_node_t *node;
    while ((node = rs_list_begin(&channel->pending_tasks)) != rs_list_end(&channel->pending_tasks)) {
        rs_channel_task_t *task = RS_CONTAINER_OF(node, rs_channel_task_t, node);
        rs_list_remove(node);
        rs_event_loop_cancel_task(channel->loop, &task->wrapper);
    }
}

/* ---- messages ---- */

RESEAU_API rs_io_message_t *rs_channel_acquire_message_from_pool(rs_channel_t *channel, rs_io_message_type_t type,
                                                                size_t size_hint) {
    rs_io_message_t *message;
    if (rs__channel_check_thread(channel, "rs_channel_acquire_message_from_pool") || !channel->pool) {
        return NULL;
    }
    message = rs__message_pool_acquire(channel->pool, size_hint);
    if (message) {
        message->message_type = type;
        message->owning_channel = channel;
    }
    return message;
}

RESEAU_API void rs_channel_release_message_to_pool(rs_channel_t *channel, rs_io_message_t *message) {
    (void)channel;
    if (message) {
        rs__message_pool_release((rs__message_pool_t *)message->pool, message);
    }
}

/* ---- slots ---- */

/* A zeroed slot: the embedded one if it is free, else a new one. */
static rs_channel_slot_t *rs__slot_alloc(rs_channel_t *channel) {
    if (!channel->embedded_slot_used) {
        channel->embedded_slot_used = true;
        memset(&channel->embedded_slot, 0, sizeof(channel->embedded_slot));
        return &channel->embedded_slot;
    }
    return (rs_channel_slot_t *)rs_mem_calloc(&channel->allocator, 1, sizeof(rs_channel_slot_t));
}

static void rs__slot_free(rs_channel_t *channel, rs_channel_slot_t *slot) {
    if (slot == &channel->embedded_slot) {
        channel->embedded_slot_used = false;
        return;
    }
    rs_mem_free(&channel->allocator, slot);
}

RESEAU_API rs_channel_slot_t *rs_channel_slot_new(rs_channel_t *channel, int *err_out) {
    rs_channel_slot_t *slot;
    int err = rs__channel_check_thread(channel, "rs_channel_slot_new");
    if (err) {
        rs__set_err(err_out, err);
        return NULL;
    }
    slot = rs__slot_alloc(channel);
    if (!slot) {
        rs__set_err(err_out, RS_ENOMEM);
        return NULL;
    }
    slot->channel = channel;
    slot->window_size = channel->back_pressure ? 0 : SIZE_MAX;
    if (!channel->first) {
        channel->first = slot; /* a new channel's first slot is linked at once */
    }
    rs__set_err(err_out, RS_OK);
    return slot;
}

static void rs__channel_update_overheads(rs_channel_t *channel) {
    size_t overhead = 0;
    rs_channel_slot_t *slot;
    for (slot = channel->first; slot; slot = slot->adj_right) {
        slot->upstream_message_overhead = overhead;
        if (slot->handler && slot->handler->vtable->message_overhead) { /* NULL: no overhead */
            overhead += slot->handler->vtable->message_overhead(slot->handler);
        }
    }
}

RESEAU_API int rs_channel_slot_insert_right(rs_channel_slot_t *slot, rs_channel_slot_t *to_add) {
    int err = rs__slot_check_call(slot, to_add, "rs_channel_slot_insert_right");
    if (err) {
        return err;
    }
    if (to_add == slot || to_add->channel != slot->channel) {
        return RS_EINVAL;
    }
    to_add->adj_right = slot->adj_right;
    if (slot->adj_right) {
        slot->adj_right->adj_left = to_add;
    }
    slot->adj_right = to_add;
    to_add->adj_left = slot;
    rs__channel_update_overheads(slot->channel);
    return RS_OK;
}

RESEAU_API int rs_channel_slot_insert_left(rs_channel_slot_t *slot, rs_channel_slot_t *to_add) {
    int err = rs__slot_check_call(slot, to_add, "rs_channel_slot_insert_left");
    if (err) {
        return err;
    }
    if (to_add == slot || to_add->channel != slot->channel) {
        return RS_EINVAL;
    }
    to_add->adj_left = slot->adj_left;
    if (slot->adj_left) {
        slot->adj_left->adj_right = to_add;
    } else {
        slot->channel->first = to_add;
    }
    slot->adj_left = to_add;
    to_add->adj_right = slot;
    rs__channel_update_overheads(slot->channel);
    return RS_OK;
}

RESEAU_API int rs_channel_slot_insert_end(rs_channel_t *channel, rs_channel_slot_t *to_add) {
    rs_channel_slot_t *last;
    int err;
    if (!channel || !to_add) {
        return RS_EINVAL;
    }
    err = rs__channel_check_thread(channel, "rs_channel_slot_insert_end");
    if (err) {
        return err;
    }
    if (to_add->channel != channel || to_add->adj_left || to_add->adj_right) {
        return RS_EINVAL; /* another channel's slot, or one already linked */
    }
    last = channel->first;
    if (!last || last == to_add) {
        channel->first = to_add;
        return RS_OK;
    }
    while (last->adj_right) {
        last = last->adj_right;
    }
    return rs_channel_slot_insert_right(last, to_add);
}

static void rs__channel_handler_destroy(rs_channel_handler_t *handler) {
    if (handler && handler->vtable->destroy) {
        handler->vtable->destroy(handler);
    }
}

RESEAU_API int rs_channel_slot_remove(rs_channel_slot_t *slot) {
    rs_channel_t *channel;
    int err = rs__slot_check_thread(slot, "rs_channel_slot_remove");
    if (err) {
        return err;
    }
    channel = slot->channel;
    if (slot->adj_left) {
        slot->adj_left->adj_right = slot->adj_right;
    }
    if (slot->adj_right) {
        slot->adj_right->adj_left = slot->adj_left;
    }
    if (channel->first == slot) {
        channel->first = slot->adj_right;
    }
    rs__channel_handler_destroy(slot->handler);
    rs__slot_free(channel, slot);
    rs__channel_update_overheads(channel);
    return RS_OK;
}

/* Ask the upstream handler to send: batched into the window update task. */
static void rs__channel_schedule_window_update(rs_channel_t *channel) {
    if (!channel->window_update_scheduled) {
        channel->window_update_scheduled = true;
        rs_channel_schedule_task_now(channel, &channel->window_update_task);
    }
}

RESEAU_API int rs_channel_slot_set_handler(rs_channel_slot_t *slot, rs_channel_handler_t *handler) {
    int err = rs__slot_check_call(slot, handler, "rs_channel_slot_set_handler");
    if (err) {
        return err;
    }
    if (!handler->vtable) {
        return RS_EINVAL;
    }
    slot->handler = handler;
    handler->slot = slot;
    rs__channel_update_overheads(slot->channel);
    if (slot->channel->back_pressure) {
        slot->window_update_batch += handler->vtable->initial_window_size
                                         ? handler->vtable->initial_window_size(handler)
                                         : RS_CHANNEL_DEFAULT_READ_WINDOW;
    }
    /* Tell the upstream handler there is a new reader, with or without windows. */
    rs__channel_schedule_window_update(slot->channel);
    return RS_OK;
}

RESEAU_API int rs_channel_slot_replace_handler(rs_channel_slot_t *slot, rs_channel_handler_t *new_handler) {
    rs_channel_handler_t *old;
    int err;
    if (!slot) {
        return RS_EINVAL;
    }
    old = slot->handler;
    err = rs_channel_slot_set_handler(slot, new_handler);
    if (err) {
        return err;
    }
    rs__channel_handler_destroy(old);
    return RS_OK;
}

RESEAU_API int rs_channel_slot_add_handler_right(rs_channel_slot_t *slot, rs_channel_handler_t *handler,
                                                 rs_channel_slot_t **slot_out) {
    rs_channel_slot_t *added;
    int err = RS_OK;
    if (slot_out) {
        *slot_out = NULL;
    }
    if (!slot || !handler) {
        return RS_EINVAL;
    }
    added = rs_channel_slot_new(rs_channel_slot_get_channel(slot), &err);
    if (!added) {
        return err;
    }
    err = rs_channel_slot_insert_right(slot, added);
    if (!err) {
        err = rs_channel_slot_set_handler(added, handler);
    }
    if (err) {
        rs_channel_slot_remove(added); /* unlinks it if linked, frees it; the handler stays the caller's */
        return err;
    }
    if (slot_out) {
        *slot_out = added;
    }
    return RS_OK;
}

RESEAU_API rs_channel_handler_t *rs_channel_slot_get_handler(const rs_channel_slot_t *slot) {
    return slot ? slot->handler : NULL;
}

RESEAU_API rs_channel_slot_t *rs_channel_slot_get_left(const rs_channel_slot_t *slot) {
    return slot ? slot->adj_left : NULL;
}

RESEAU_API rs_channel_slot_t *rs_channel_slot_get_right(const rs_channel_slot_t *slot) {
    return slot ? slot->adj_right : NULL;
}

RESEAU_API rs_channel_t *rs_channel_slot_get_channel(const rs_channel_slot_t *slot) {
    return slot ? slot->channel : NULL;
}

RESEAU_API size_t rs_channel_slot_upstream_message_overhead(const rs_channel_slot_t *slot) {
    return slot ? slot->upstream_message_overhead : 0;
}

RESEAU_API size_t rs_channel_slot_downstream_read_window(const rs_channel_slot_t *slot) {
    if (!slot || !slot->adj_right || !slot->adj_right->handler) {
        return 0;
    }
    return slot->channel->back_pressure ? slot->adj_right->window_size : SIZE_MAX;
}

RESEAU_API int rs_channel_slot_send_message(rs_channel_slot_t *slot, rs_io_message_t *message,
                                           rs_channel_direction_t dir) {
    rs_channel_slot_t *next;
    int err = rs__slot_check_call(slot, message, "rs_channel_slot_send_message");
    if (err) {
        return err;
    }
    if (dir != RS_CHANNEL_DIR_READ && dir != RS_CHANNEL_DIR_WRITE) {
        return RS_EINVAL;
    }
    next = dir == RS_CHANNEL_DIR_READ ? slot->adj_right : slot->adj_left;
    if (!next || !next->handler) {
        return RS_ENOTCONN;
    }
    if (dir == RS_CHANNEL_DIR_WRITE) {
        if (!next->handler->vtable->process_write_message) {
            return RS_ENOTSUP; /* a handler that never expects writes */
        }
        return next->handler->vtable->process_write_message(next->handler, next, message);
    }
    if (!next->handler->vtable->process_read_message) {
        return RS_ENOTSUP; /* refused before it costs any window */
    }
    if (slot->channel->back_pressure) {
        if (message->message_data.len > next->window_size) {
            RS__LOG_ERROR(RS_LS_CHANNEL, "channel %p: a handler sent %u bytes past a window of %u",
                          (void *)slot->channel, (unsigned)message->message_data.len, (unsigned)next->window_size);
            return RS_EWINDOW;
        }
        next->window_size -= message->message_data.len;
    }
    return next->handler->vtable->process_read_message(next->handler, next, message);
}

static size_t rs__size_add_saturating(size_t a, size_t b) {
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

RESEAU_API int rs_channel_slot_increment_read_window(rs_channel_slot_t *slot, size_t size) {
    rs_channel_t *channel;
    int err = rs__slot_check_thread(slot, "rs_channel_slot_increment_read_window");
    if (err) {
        return err;
    }
    channel = slot->channel;
    if (!channel->back_pressure || channel->state >= RS__CHANNEL_SHUTTING_DOWN) {
        return RS_OK;
    }
    slot->window_update_batch = rs__size_add_saturating(slot->window_update_batch, size);
    if (slot->window_size <= RS__WINDOW_UPDATE_THRESHOLD) {
        rs__channel_schedule_window_update(channel);
    }
    return RS_OK;
}

/* Walk right to left: apply each slot's batched increment to its window, and
 * tell the handler on its left how much more it may send. */
static void rs__channel_window_update_task(rs_channel_task_t *task, void *arg, rs_task_status_t status) {
    rs_channel_t *channel = (rs_channel_t *)arg;
    rs_channel_slot_t *slot = channel->first;
    (void)task;
    channel->window_update_scheduled = false;
    if (status != RS_TASK_STATUS_RUN || channel->state >= RS__CHANNEL_SHUTTING_DOWN || !slot) {
        return;
    }
    while (slot->adj_right) {
        slot = slot->adj_right;
    }
    for (; slot && slot->adj_left; slot = slot->adj_left) {
        rs_channel_slot_t *upstream = slot->adj_left;
        size_t update;
        if (!upstream->handler || !slot->handler) {
            continue;
        }
        update = channel->back_pressure ? slot->window_update_batch : SIZE_MAX;
        if (channel->back_pressure) {
            slot->window_size = rs__size_add_saturating(slot->window_size, update);
            slot->window_update_batch = 0;
        }
        if (upstream->handler->vtable->increment_read_window &&
            upstream->handler->vtable->increment_read_window(upstream->handler, upstream, update) != RS_OK) {
            rs_channel_shutdown(channel, RS_EWINDOW);
            return;
        }
    }
}

/* ---- writability ---- */

RESEAU_API size_t rs_channel_get_pending_write_bytes(const rs_channel_t *channel) {
    return channel ? (size_t)channel->pending_write_bytes : 0;
}

RESEAU_API void rs_channel_slot_add_pending_write_bytes(rs_channel_slot_t *slot, int64_t delta) {
    rs_channel_t *channel;
    if (!slot) {
        return;
    }
    channel = slot->channel;
    channel->pending_write_bytes += delta;
    if (channel->pending_write_bytes < 0) {
        channel->pending_write_bytes = 0;
    }
    rs__channel_update_writability(channel);
}

/* Writable unless the bytes written and not yet in the kernel, here or queued
 * by other threads, pass the high-water mark; again below the low one. Loop
 * thread. */
static void rs__channel_update_writability(rs_channel_t *channel) {
    uint64_t pending = (uint64_t)channel->pending_write_bytes + rs__atomic_load_u64(&channel->xwrite_bytes);
    rs__atomic_store_u64(&channel->pending_mirror, (uint64_t)channel->pending_write_bytes);
    if (channel->writable && pending > channel->write_high_water) {
        channel->writable = false;
    } else if (!channel->writable && pending <= channel->write_low_water) {
        channel->writable = true;
    } else {
        return;
    }
    if (channel->on_writability_changed) {
        channel->on_writability_changed(channel, channel->writable, channel->user_data);
    }
}

/* ---- shutdown ---- */

static bool rs__channel_aborting(rs_channel_t *channel) {
    return rs__atomic_load_int(&channel->shutdown_abort) != 0;
}

/* The first request starts the shutdown; a later abortive one upgrades it
 * (a graceful shutdown stalled on a peer that does not read can be cut short).
 * Other repeats are ignored. Any thread. */
static int rs__channel_request_shutdown(rs_channel_t *channel, int error_code, bool abort_immediately) {
    if (!channel) {
        return RS_EINVAL;
    }
    if (!channel->loop) {
        return RS_OK; /* detached: its loop's destroy shut it down */
    }
    if (rs__atomic_cas_int(&channel->shutdown_requested, 0, 1)) {
        channel->shutdown_error = error_code;
        if (abort_immediately) {
            rs__atomic_store_int(&channel->shutdown_abort, 1); /* never stored back to 0: see abort_task */
        }
        rs_event_loop_schedule_task_now(channel->loop, &channel->shutdown_task);
        return RS_OK;
    }
    if (abort_immediately && rs__atomic_cas_int(&channel->abort_requested, 0, 1)) {
        rs__atomic_store_int(&channel->abort_error, error_code);
        rs_channel_acquire_hold(channel); /* released by the abort task */
        rs_event_loop_schedule_task_now(channel->loop, &channel->abort_task);
    }
    return RS_OK;
}

RESEAU_API int rs_channel_shutdown(rs_channel_t *channel, int error_code) {
    return rs__channel_request_shutdown(channel, error_code, false);
}

RESEAU_API int rs_channel_shutdown_abortively(rs_channel_t *channel, int error_code) {
    return rs__channel_request_shutdown(channel, error_code, true);
}

/* Turn the shutdown in progress abortive: the handler now shutting down is
 * asked again, with abort_immediately, and every later one gets it too. Before
 * the shutdown task has run, the flag alone is enough. Loop thread. */
static void rs__channel_escalate_shutdown(rs_channel_t *channel, int error_code) {
    rs_channel_slot_t *slot = channel->shutdown_slot;
    rs__atomic_store_int(&channel->shutdown_abort, 1);
    if (channel->state != RS__CHANNEL_SHUTTING_DOWN) {
        return; /* not started yet (the shutdown task reads the flag), or already done */
    }
    if (!channel->shutdown_error) {
        channel->shutdown_error = error_code;
    }
    if (slot && slot->handler && slot->handler->vtable->shutdown) {
        RS__LOG_DEBUG(RS_LS_CHANNEL, "channel %p: graceful shutdown made abortive (%s)", (void *)channel,
                      rs_err_name(error_code));
        slot->handler->vtable->shutdown(slot->handler, slot, channel->shutdown_dir, channel->shutdown_error, true);
    }
}

static void rs__channel_abort_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_channel_t *channel = (rs_channel_t *)arg;
    (void)task;
    (void)status; /* canceled means the loop is going away: abort all the same */
    rs__channel_escalate_shutdown(channel, rs__atomic_load_int(&channel->abort_error));
    rs_channel_release_hold(channel);
}

static void rs__channel_graceful_timeout_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_channel_t *channel = (rs_channel_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        RS__LOG_DEBUG(RS_LS_CHANNEL, "channel %p: graceful shutdown timed out after %u ms", (void *)channel,
                      (unsigned)channel->graceful_timeout_ms);
        rs__channel_escalate_shutdown(channel, RS_ETIMEDOUT);
    }
}

/* The first slot, at or right of `slot`, that has a handler. */
static rs_channel_slot_t *rs__slot_with_handler_rightwards(rs_channel_slot_t *slot) {
    while (slot && !slot->handler) {
        slot = slot->adj_right;
    }
    return slot;
}

static rs_channel_slot_t *rs__slot_with_handler_leftwards(rs_channel_slot_t *slot) {
    while (slot && !slot->handler) {
        slot = slot->adj_left;
    }
    return slot;
}

static void rs__channel_finish_shutdown(rs_channel_t *channel) {
    if (!rs_task_is_scheduled(&channel->shutdown_complete_task)) {
        rs_event_loop_schedule_task_now(channel->loop, &channel->shutdown_complete_task);
    }
}

static void rs__slot_shutdown(rs_channel_slot_t *slot, rs_channel_direction_t dir) {
    rs_channel_t *channel = slot->channel;
    channel->shutdown_slot = slot;
    channel->shutdown_dir = dir;
    if (!slot->handler->vtable->shutdown) {
        /* Nothing to flush or release: this handler's part is done at once. */
        rs_channel_slot_on_handler_shutdown_complete(slot, dir, channel->shutdown_error,
                                                     rs__channel_aborting(channel));
        return;
    }
    slot->handler->vtable->shutdown(slot->handler, slot, dir, channel->shutdown_error, rs__channel_aborting(channel));
}

static void rs__channel_shutdown_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_channel_t *channel = (rs_channel_t *)arg;
    rs_channel_slot_t *first;
    (void)task;
    (void)status; /* canceled means the loop is going away: shut down all the same */
    if (channel->state >= RS__CHANNEL_SHUTTING_DOWN) {
        return;
    }
    channel->state = RS__CHANNEL_SHUTTING_DOWN;
    rs__channel_xwrite_close(channel);
    if (!channel->shutdown_error && rs__atomic_load_int(&channel->abort_requested)) {
        channel->shutdown_error = rs__atomic_load_int(&channel->abort_error); /* upgraded before we started */
    }
    RS__LOG_DEBUG(RS_LS_CHANNEL, "channel %p: shutting down (%s)", (void *)channel,
                  rs_err_name(channel->shutdown_error));
    if (channel->graceful_timeout_ms && !rs__channel_aborting(channel)) {
        rs_event_loop_schedule_task_future(channel->loop, &channel->graceful_timeout_task,
                                           rs_event_loop_now_ns(channel->loop) +
                                               (uint64_t)channel->graceful_timeout_ms * RS_NS_PER_MS);
    }
    first = rs__slot_with_handler_rightwards(channel->first);
    if (first) {
        rs__slot_shutdown(first, RS_CHANNEL_DIR_READ);
    } else {
        rs__channel_finish_shutdown(channel);
    }
}

RESEAU_API int rs_channel_slot_on_handler_shutdown_complete(rs_channel_slot_t *slot, rs_channel_direction_t dir,
                                                           int error_code, bool abort_immediately) {
    rs_channel_t *channel;
    rs_channel_slot_t *next;
    int err = rs__slot_check_thread(slot, "rs_channel_slot_on_handler_shutdown_complete");
    if (err) {
        return err;
    }
    if (dir != RS_CHANNEL_DIR_READ && dir != RS_CHANNEL_DIR_WRITE) {
        return RS_EINVAL;
    }
    channel = slot->channel;
    if (channel->state == RS__CHANNEL_SHUT_DOWN) {
        return RS_OK;
    }
    channel->shutdown_slot = NULL;
    /* A plain end of stream gives way to what a handler found out about it
     * (TLS: the peer hung up without close_notify). */
    if ((!channel->shutdown_error || channel->shutdown_error == RS_EEOF) && error_code && error_code != RS_EEOF) {
        channel->shutdown_error = error_code;
    }
    if (abort_immediately) {
        rs__atomic_store_int(&channel->shutdown_abort, 1);
    }
    if (dir == RS_CHANNEL_DIR_READ) {
        next = rs__slot_with_handler_rightwards(slot->adj_right);
        /* At the right end, the write direction starts back from there. */
        rs__slot_shutdown(next ? next : slot, next ? RS_CHANNEL_DIR_READ : RS_CHANNEL_DIR_WRITE);
        return RS_OK;
    }
    next = rs__slot_with_handler_leftwards(slot->adj_left);
    if (next) {
        rs__slot_shutdown(next, RS_CHANNEL_DIR_WRITE);
    } else {
        rs__channel_finish_shutdown(channel);
    }
    return RS_OK;
}

static void rs__channel_destroy_handlers(rs_channel_t *channel) {
    rs_channel_slot_t *slot = channel->first;
    channel->first = NULL;
    while (slot) {
        rs_channel_slot_t *next = slot->adj_right;
        rs__channel_handler_destroy(slot->handler);
        rs__slot_free(channel, slot);
        slot = next;
    }
    channel->handlers_destroyed = true;
}

static void rs__channel_free(rs_channel_t *channel) {
    rs_allocator_t allocator = channel->allocator;
    rs__event_loop_remove_member(channel->loop, &channel->loop_member);
    rs__channel_xwrite_free(channel);
    rs_mem_free(&allocator, channel);
}

static void rs__channel_shutdown_complete_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_channel_t *channel = (rs_channel_t *)arg;
    (void)task;
    (void)status;
    channel->state = RS__CHANNEL_SHUT_DOWN;
    rs_event_loop_cancel_task(channel->loop, &channel->graceful_timeout_task);
    rs__channel_cancel_pending_tasks(channel);
    /* The callback may destroy the channel: keep the memory until we are done. */
    rs_channel_acquire_hold(channel);
    rs__trace(RS_TRACE_CHANNEL_SHUTDOWN, channel->loop, channel, "channel", channel->shutdown_error, 0);
    if (channel->on_shutdown_completed) {
        channel->on_shutdown_completed(channel, channel->shutdown_error, channel->user_data);
    }
    if (rs__atomic_load_int(&channel->destroy_requested) && !channel->handlers_destroyed) {
        rs__channel_destroy_handlers(channel);
        rs_channel_release_hold(channel); /* the owner's reference, kept until now */
    }
    rs_channel_release_hold(channel);
}

/* Destroy on the loop thread: handlers now if shutdown is done, else when it is. */
static void rs__channel_destroy_on_loop(rs_channel_t *channel) {
    rs__atomic_store_int(&channel->destroy_requested, 1);
    if (channel->state == RS__CHANNEL_SHUT_DOWN || channel->state == RS__CHANNEL_SETTING_UP) {
        if (channel->state == RS__CHANNEL_SETTING_UP && rs_task_is_scheduled(&channel->setup_task)) {
            rs_event_loop_cancel_task(channel->loop, &channel->setup_task);
        }
        rs__channel_destroy_handlers(channel);
        rs__channel_cancel_pending_tasks(channel);
        rs_channel_release_hold(channel);
        return;
    }
    /* Deferred: the shutdown completion destroys the handlers. Start it if
     * nobody has, so a destroyed channel never lingers. */
    rs_channel_shutdown(channel, RS_OK);
}

static void rs__channel_destroy_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_channel_t *channel = (rs_channel_t *)arg;
    (void)task;
    (void)status;
    rs__channel_destroy_on_loop(channel);
}

/* Its loop was destroyed, which shut it down: nothing of it is in flight. */
static void rs__channel_destroy_detached(rs_channel_t *channel) {
    rs__atomic_store_int(&channel->destroy_requested, 1);
    if (!channel->handlers_destroyed) {
        rs__channel_destroy_handlers(channel);
    }
    rs_channel_release_hold(channel);
}

RESEAU_API void rs_channel_destroy(rs_channel_t *channel) {
    if (!channel) {
        return;
    }
    if (!channel->loop) {
        rs__channel_destroy_detached(channel);
    } else if (rs_event_loop_is_on_loop_thread(channel->loop)) {
        rs__channel_destroy_on_loop(channel);
    } else {
        rs_event_loop_schedule_task_now(channel->loop, &channel->destroy_task);
    }
}

RESEAU_API void rs_channel_acquire_hold(rs_channel_t *channel) {
    if (!channel) {
        return;
    }
    rs__atomic_add_u64(&channel->refcount, 1);
}

RESEAU_API void rs_channel_release_hold(rs_channel_t *channel) {
    if (!channel) {
        return;
    }
    if (rs__atomic_sub_u64(&channel->refcount, 1) == 0) {
        rs__channel_free(channel);
    }
}

/* ---- statistics ---- */

static void rs__channel_stats_task(rs_channel_task_t *task, void *arg, rs_task_status_t status) {
    rs_channel_t *channel = (rs_channel_t *)arg;
    rs_channel_handler_stats_t records[RS__STATS_MAX_HANDLERS];
    rs_channel_slot_t *slot;
    size_t count = 0;
    if (status != RS_TASK_STATUS_RUN || !channel->stats_fn) {
        return;
    }
    for (slot = channel->first; slot && count < RS__STATS_MAX_HANDLERS; slot = slot->adj_right) {
        rs_channel_handler_t *h = slot->handler;
        if (!h || !h->vtable->gather_statistics) {
            continue;
        }
        memset(&records[count], 0, sizeof(records[count]));
        h->vtable->gather_statistics(h, &records[count]);
        if (h->vtable->reset_statistics) {
            h->vtable->reset_statistics(h);
        }
        ++count;
    }
    channel->stats_fn(channel, records, count, channel->stats_user_data);
    rs_channel_schedule_task_future(channel, task, rs_event_loop_now_ns(channel->loop) + channel->stats_interval_ns);
}

RESEAU_API int rs_channel_set_statistics_handler(rs_channel_t *channel, uint32_t interval_ms,
                                                 rs_channel_statistics_fn *fn, void *user_data) {
    int err = rs__channel_check_thread(channel, "rs_channel_set_statistics_handler");
    if (err) {
        return err;
    }
    if (rs_task_is_scheduled(&channel->stats_task.wrapper)) {
        rs_list_remove(&channel->stats_task.node);
        rs_event_loop_cancel_task(channel->loop, &channel->stats_task.wrapper);
    }
    channel->stats_fn = interval_ms ? fn : NULL;
    channel->stats_user_data = user_data;
    channel->stats_interval_ns = (uint64_t)interval_ms * RS_NS_PER_MS;
    if (channel->stats_fn) {
        rs_channel_task_init(&channel->stats_task, rs__channel_stats_task, channel, "channel_statistics");
        rs_channel_schedule_task_future(channel, &channel->stats_task,
                                        rs_event_loop_now_ns(channel->loop) + channel->stats_interval_ns);
    }
    return RS_OK;
}

/* ---- writes from any thread ---- */

/* The queue of writes from other threads, made on first use. */
struct rs__xwrite_state {
    rs_mutex_t lock;
    rs_list_t queue;     /* under lock */
    bool scheduled;      /* under lock: task is scheduled */
    bool closed;         /* under lock: shutdown began, writes refused */
    rs_channel_task_t task;
};

/* One rs_channel_write_threadsafe call: its bytes follow the struct. It lives
 * until the last message carrying its bytes has completed. */
typedef struct rs__xwrite {
    rs_list_node_t node;
    rs_channel_t *channel;
    rs_channel_write_done_fn *on_done;
    void *user_data;
    size_t len;
    size_t parts_left; /* messages sent and not completed, +1 while still sending */
    int error;         /* the first error among them */
} rs__xwrite_t;

static uint8_t *rs__xwrite_data(rs__xwrite_t *w) {
    return (uint8_t *)(w + 1);
}

static void rs__xwrite_finish(rs__xwrite_t *w) {
    rs_channel_t *channel = w->channel;
    rs_allocator_t allocator = channel->allocator;
    if (w->on_done) {
        w->on_done(channel, w->error, w->user_data);
    }
    rs_mem_free(&allocator, w);
}

static void rs__xwrite_part_done(rs_channel_t *channel, rs_io_message_t *message, int error, void *user_data) {
    rs__xwrite_t *w = (rs__xwrite_t *)user_data;
    (void)channel;
    (void)message;
    if (error && !w->error) {
        w->error = error;
    }
    if (--w->parts_left == 0) {
        rs__xwrite_finish(w);
    }
}

/* The rightmost handler that takes writes: where a write from outside the
 * pipeline enters it, as if the handlers right of it had passed it on. */
static rs_channel_slot_t *rs__channel_write_entry(rs_channel_t *channel) {
    rs_channel_slot_t *slot = channel->first, *entry = NULL;
    for (; slot; slot = slot->adj_right) {
        if (slot->handler && slot->handler->vtable->process_write_message) {
            entry = slot;
        }
    }
    return entry;
}

/* Hand one queued write to the pipeline, in messages of at most a fragment. */
static void rs__channel_xwrite_deliver(rs_channel_t *channel, rs__xwrite_t *w) {
    rs_channel_slot_t *entry = rs__channel_write_entry(channel);
    size_t offset = 0;
    w->parts_left = 1; /* held while sending */
    while (offset < w->len && !w->error) {
        size_t n = w->len - offset < RS_MAX_FRAGMENT_SIZE ? w->len - offset : RS_MAX_FRAGMENT_SIZE;
        rs_io_message_t *m;
        int err;
        if (!entry) {
            w->error = RS_ENOTCONN;
            break;
        }
        m = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, n);
        if (!m) {
            w->error = RS_ENOMEM;
            break;
        }
        n = n < m->message_data.capacity ? n : m->message_data.capacity;
        memcpy(m->message_data.buffer, rs__xwrite_data(w) + offset, n);
        m->message_data.len = n;
        m->on_completion = rs__xwrite_part_done;
        m->user_data = w;
        w->parts_left++;
        err = entry->handler->vtable->process_write_message(entry->handler, entry, m);
        if (err) {
            w->parts_left--;
            w->error = err;
            rs_channel_release_message_to_pool(channel, m);
            break;
        }
        offset += n;
    }
    if (--w->parts_left == 0) {
        rs__xwrite_finish(w);
    }
}

static void rs__channel_xwrite_task(rs_channel_task_t *task, void *arg, rs_task_status_t status) {
    rs_channel_t *channel = (rs_channel_t *)arg;
    struct rs__xwrite_state *xw = (struct rs__xwrite_state *)rs__atomic_load_ptr(&channel->xwrite);
    rs_list_t batch;
    (void)task;
    rs_list_init(&batch);
    rs_mutex_lock(&xw->lock);
    rs_list_splice_back(&batch, &xw->queue);
    xw->scheduled = false;
    rs_mutex_unlock(&xw->lock);
    while (!rs_list_empty(&batch)) {
        rs__xwrite_t *w = RS_CONTAINER_OF(rs_list_pop_front(&batch), rs__xwrite_t, node);
        /* Out of the queue's count and into the handlers' in one step, so
         * writability never sees the bytes twice or not at all. */
        rs__atomic_sub_u64(&channel->xwrite_bytes, w->len);
        if (status != RS_TASK_STATUS_RUN || channel->state >= RS__CHANNEL_SHUTTING_DOWN) {
            w->error = RS_ECANCELED;
            rs__xwrite_finish(w);
        } else {
            rs__channel_xwrite_deliver(channel, w);
        }
    }
    rs__channel_update_writability(channel);
}

/* Shutdown began: refuse new writes; those queued run CANCELED by the task. */
static void rs__channel_xwrite_close(rs_channel_t *channel) {
    struct rs__xwrite_state *xw = (struct rs__xwrite_state *)rs__atomic_load_ptr(&channel->xwrite);
    if (xw) {
        rs_mutex_lock(&xw->lock);
        xw->closed = true;
        rs_mutex_unlock(&xw->lock);
    }
}

static void rs__channel_xwrite_free(rs_channel_t *channel) {
    struct rs__xwrite_state *xw = (struct rs__xwrite_state *)channel->xwrite;
    if (xw) {
        RESEAU_ASSERT(rs_list_empty(&xw->queue)); /* drained (CANCELED at worst) by the task */
        rs_mutex_cleanup(&xw->lock);
        rs_mem_free(&channel->allocator, xw);
    }
}

/* The queue, made by the first writer (a racing second one frees its own). */
static struct rs__xwrite_state *rs__channel_xwrite_state(rs_channel_t *channel) {
    struct rs__xwrite_state *xw = (struct rs__xwrite_state *)rs__atomic_load_ptr(&channel->xwrite);
    void *expected = NULL;
    if (xw) {
        return xw;
    }
    xw = (struct rs__xwrite_state *)rs_mem_calloc(&channel->allocator, 1, sizeof(*xw));
    if (!xw) {
        return NULL;
    }
    if (rs_mutex_init(&xw->lock) != RS_OK) {
        rs_mem_free(&channel->allocator, xw);
        return NULL;
    }
    rs_list_init(&xw->queue);
    rs_channel_task_init(&xw->task, rs__channel_xwrite_task, channel, "channel_threadsafe_write");
    while (!rs__atomic_cas_ptr_weak(&channel->xwrite, &expected, xw)) {
        if (expected) {
            rs_mutex_cleanup(&xw->lock);
            rs_mem_free(&channel->allocator, xw);
            /* Again with acquire: the winner's initialisation must be seen. */
            return (struct rs__xwrite_state *)rs__atomic_load_ptr(&channel->xwrite);
        }
    }
    return xw;
}

RESEAU_API int rs_channel_write_threadsafe(rs_channel_t *channel, rs_byte_cursor_t data,
                                          rs_channel_write_done_fn *on_done, void *user_data) {
    struct rs__xwrite_state *xw;
    rs__xwrite_t *w;
    bool schedule;
    if (!channel || data.len == 0 || !data.ptr || data.len > SIZE_MAX - sizeof(rs__xwrite_t)) {
        return RS_EINVAL;
    }
    if (rs__atomic_load_int(&channel->shutdown_requested)) {
        return RS_ESHUTDOWN;
    }
    /* Bounded: over the high-water mark, the writer is told to wait for
     * on_writability_changed, instead of queueing without end. */
    if (rs__atomic_load_u64(&channel->pending_mirror) + rs__atomic_load_u64(&channel->xwrite_bytes) >
        channel->write_high_water) {
        return RS_EAGAIN;
    }
    xw = rs__channel_xwrite_state(channel);
    w = xw ? (rs__xwrite_t *)rs_mem_alloc(&channel->allocator, sizeof(*w) + data.len) : NULL;
    if (!w) {
        return RS_ENOMEM;
    }
    memset(w, 0, sizeof(*w));
    w->channel = channel;
    w->on_done = on_done;
    w->user_data = user_data;
    w->len = data.len;
    memcpy(rs__xwrite_data(w), data.ptr, data.len);
    rs_mutex_lock(&xw->lock);
    if (xw->closed) {
        rs_mutex_unlock(&xw->lock);
        rs_mem_free(&channel->allocator, w);
        return RS_ESHUTDOWN;
    }
    rs_list_push_back(&xw->queue, &w->node);
    rs__atomic_add_u64(&channel->xwrite_bytes, data.len);
    schedule = !xw->scheduled;
    xw->scheduled = true;
    if (schedule) {
        /* Under the lock: the task cannot run (and clear the flag) before it is scheduled. */
        rs_channel_schedule_task_now(channel, &xw->task);
    }
    rs_mutex_unlock(&xw->lock);
    return RS_OK;
}
