/* Futures: one mutex guards the state; the callback is taken out under it and
 * run or scheduled after it is dropped, so a callback may use the future. */

typedef enum rs__future_cb_kind {
    RS__FUTURE_CB_NONE = 0,
    RS__FUTURE_CB_DIRECT = 1, /* loop-less plain callback: runs inside the completing call */
    RS__FUTURE_CB_LOOP = 2,
    RS__FUTURE_CB_CHANNEL = 3
} rs__future_cb_kind_t;

typedef struct rs__future_outcome {
    bool done;
    int error;
    void *pointer;
    size_t size;
    bool boolean;
} rs__future_outcome_t;

struct rs_future {
    rs_allocator_t allocator;
    rs_mutex_t lock;
    rs_condvar_t done_cond;
    int refcount; /* atomic */
    rs_future_type_t type;
    rs_future_value_destroy_fn *value_destroy;
    void *value_destroy_user_data;
    rs_event_loop_t *home_loop;
    /* Guarded by lock: */
    rs__future_outcome_t out;
    rs__future_cb_kind_t cb_kind;
    bool cb_dispatched; /* taken out to be run or scheduled; never again */
    rs_future_fn *cb_fn;
    void *cb_user_data;
    rs_event_loop_t *cb_loop;
    rs_channel_t *cb_channel; /* holds a channel hold until the callback has run */
    rs_task_t task;
    rs_channel_task_t channel_task;
};

RESEAU_API rs_future_t *rs_future_new(const rs_future_options_t *options, int *err_out) {
    rs_future_options_t o;
    rs_future_t *f = NULL;
    int err = RS_EINVAL;
    memset(&o, 0, sizeof(o));
    if (options) {
        o = *options;
    }
    if (!rs__enum_in_range((int)o.type, (int)RS_FUTURE_VOID, (int)RS_FUTURE_BOOL) ||
        (o.value_destroy && o.type != RS_FUTURE_POINTER)) {
        goto fail;
    }
    err = RS_ENOMEM;
    f = (rs_future_t *)rs_mem_calloc(o.allocator, 1, sizeof(*f));
    if (!f) {
        goto fail;
    }
    f->allocator = *(o.allocator ? o.allocator : rs_default_allocator());
    if ((err = rs_mutex_init(&f->lock)) != RS_OK) {
        goto fail;
    }
    if ((err = rs_condvar_init(&f->done_cond)) != RS_OK) {
        rs_mutex_cleanup(&f->lock);
        goto fail;
    }
    f->refcount = 1;
    f->type = o.type;
    f->value_destroy = o.value_destroy;
    f->value_destroy_user_data = o.value_destroy_user_data;
    f->home_loop = o.loop;
    if (err_out) {
        *err_out = RS_OK;
    }
    return f;
fail:
    if (f) {
        rs_mem_free(&f->allocator, f);
    }
    if (err_out) {
        *err_out = err;
    }
    return NULL;
}

RESEAU_API rs_future_t *rs_future_acquire(rs_future_t *future) {
    if (future) {
        rs__atomic_add_int(&future->refcount, 1);
    }
    return future;
}

static void rs__future_free(rs_future_t *f) {
    rs_allocator_t allocator = f->allocator;
    if (f->out.done && f->out.error == RS_OK && f->type == RS_FUTURE_POINTER && f->value_destroy) {
        f->value_destroy(f->out.pointer, f->value_destroy_user_data);
    }
    if (f->cb_channel && !f->cb_dispatched) {
        rs_channel_release_hold(f->cb_channel);
    }
    rs_condvar_cleanup(&f->done_cond);
    rs_mutex_cleanup(&f->lock);
    rs_mem_free(&allocator, f);
}

RESEAU_API void rs_future_release(rs_future_t *future) {
    if (future && rs__atomic_add_int(&future->refcount, -1) == 0) {
        rs__future_free(future);
    }
}

static void rs__future_loop_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_future_t *f = (rs_future_t *)arg;
    (void)task;
    (void)status; /* canceled by the loop's destroy: the outcome is known, so deliver it anyway */
    f->cb_fn(f, f->cb_user_data);
    rs_future_release(f);
}

static void rs__future_channel_task(rs_channel_task_t *task, void *arg, rs_task_status_t status) {
    rs_future_t *f = (rs_future_t *)arg;
    rs_channel_t *channel = f->cb_channel;
    (void)task;
    (void)status; /* canceled by the channel's shutdown: deliver anyway, as above */
    f->cb_fn(f, f->cb_user_data);
    rs_channel_release_hold(channel);
    rs_future_release(f);
}

/* Run or schedule the callback taken out under the lock (cb_dispatched set). */
static int rs__future_dispatch(rs_future_t *f) {
    int err = RS_OK;
    switch (f->cb_kind) {
    case RS__FUTURE_CB_DIRECT:
        f->cb_fn(f, f->cb_user_data);
        break;
    case RS__FUTURE_CB_LOOP:
        rs_future_acquire(f);
        rs_task_init(&f->task, rs__future_loop_task, f, "future_callback");
        err = rs_event_loop_schedule_task_now(f->cb_loop, &f->task);
        break;
    case RS__FUTURE_CB_CHANNEL:
        rs_future_acquire(f);
        rs_channel_task_init(&f->channel_task, rs__future_channel_task, f, "future_callback");
        err = rs_channel_schedule_task_now(f->cb_channel, &f->channel_task);
        break;
    default:
        break;
    }
    if (err != RS_OK) {
        rs_future_release(f);
    }
    return err;
}

static int rs__future_complete(rs_future_t *f, rs_future_type_t type, int error, void *pointer, size_t size,
                               bool boolean) {
    bool dispatch = false;
    int err;
    if (!f || (error == RS_OK && type != f->type) || error > 0) {
        return RS_EINVAL;
    }
    rs_mutex_lock(&f->lock);
    if (f->out.done) {
        rs_mutex_unlock(&f->lock);
        return RS_EINVAL;
    }
    f->out.done = true;
    f->out.error = error;
    f->out.pointer = pointer;
    f->out.size = size;
    f->out.boolean = boolean;
    if (f->cb_kind != RS__FUTURE_CB_NONE) {
        f->cb_dispatched = true;
        dispatch = true;
    }
    rs_condvar_broadcast(&f->done_cond);
    rs_mutex_unlock(&f->lock);
    if (dispatch && (err = rs__future_dispatch(f)) != RS_OK) {
        /* Only a loop or task misuse by the caller gets here; the value is set. */
        RS__LOG_ERROR(RS_LS_UTIL, "future %p: callback not scheduled: %s", (void *)f, rs_err_name(err));
    }
    return RS_OK;
}

RESEAU_API int rs_future_set_result(rs_future_t *future) {
    return rs__future_complete(future, RS_FUTURE_VOID, RS_OK, NULL, 0, false);
}

RESEAU_API int rs_future_set_result_pointer(rs_future_t *future, void *value) {
    return rs__future_complete(future, RS_FUTURE_POINTER, RS_OK, value, 0, false);
}

RESEAU_API int rs_future_set_result_size(rs_future_t *future, size_t value) {
    return rs__future_complete(future, RS_FUTURE_SIZE, RS_OK, NULL, value, false);
}

RESEAU_API int rs_future_set_result_bool(rs_future_t *future, bool value) {
    return rs__future_complete(future, RS_FUTURE_BOOL, RS_OK, NULL, 0, value);
}

RESEAU_API int rs_future_set_error(rs_future_t *future, int error) {
    if (error >= 0) {
        return RS_EINVAL;
    }
    return rs__future_complete(future, future ? future->type : RS_FUTURE_VOID, error, NULL, 0, false);
}

static int rs__future_register(rs_future_t *f, rs__future_cb_kind_t kind, rs_event_loop_t *loop,
                               rs_channel_t *channel, rs_future_fn *fn, void *user_data) {
    int err = RS_OK;
    bool done;
    rs_mutex_lock(&f->lock);
    if (f->cb_kind != RS__FUTURE_CB_NONE) {
        rs_mutex_unlock(&f->lock);
        return RS_EBUSY;
    }
    if (f->out.done && kind == RS__FUTURE_CB_DIRECT) {
        rs_mutex_unlock(&f->lock);
        return RS_ESTATE;
    }
    f->cb_kind = kind;
    f->cb_fn = fn;
    f->cb_user_data = user_data;
    f->cb_loop = loop;
    f->cb_channel = channel;
    if (channel) {
        rs_channel_acquire_hold(channel);
    }
    done = f->out.done;
    f->cb_dispatched = done;
    rs_mutex_unlock(&f->lock);
    if (!done) {
        return RS_OK;
    }
    /* Already complete: schedule it now; on failure the registration is undone. */
    if ((err = rs__future_dispatch(f)) != RS_OK) {
        rs_mutex_lock(&f->lock);
        f->cb_kind = RS__FUTURE_CB_NONE;
        f->cb_dispatched = false;
        f->cb_channel = NULL;
        rs_mutex_unlock(&f->lock);
        if (channel) {
            rs_channel_release_hold(channel);
        }
    }
    return err;
}

RESEAU_API int rs_future_register_callback(rs_future_t *future, rs_future_fn *fn, void *user_data) {
    if (!future || !fn) {
        return RS_EINVAL;
    }
    if (future->home_loop) {
        return rs__future_register(future, RS__FUTURE_CB_LOOP, future->home_loop, NULL, fn, user_data);
    }
    return rs__future_register(future, RS__FUTURE_CB_DIRECT, NULL, NULL, fn, user_data);
}

RESEAU_API int rs_future_register_event_loop_callback(rs_future_t *future, rs_event_loop_t *loop, rs_future_fn *fn,
                                                      void *user_data) {
    if (!future || !loop || !fn) {
        return RS_EINVAL;
    }
    return rs__future_register(future, RS__FUTURE_CB_LOOP, loop, NULL, fn, user_data);
}

RESEAU_API int rs_future_register_channel_callback(rs_future_t *future, rs_channel_t *channel, rs_future_fn *fn,
                                                   void *user_data) {
    if (!future || !channel || !fn) {
        return RS_EINVAL;
    }
    return rs__future_register(future, RS__FUTURE_CB_CHANNEL, NULL, channel, fn, user_data);
}

RESEAU_API int rs_future_wait(rs_future_t *future, uint64_t timeout_ns) {
    uint64_t deadline;
    int err = RS_OK;
    if (!future) {
        return RS_EINVAL;
    }
    if (future->home_loop && rs_event_loop_is_on_loop_thread(future->home_loop)) {
        return RS_EDEADLK;
    }
    deadline = rs_clock_now_ns();
    deadline = timeout_ns > UINT64_MAX - deadline ? UINT64_MAX : deadline + timeout_ns;
    if (RS__NO_THREADS && deadline == UINT64_MAX && !future->out.done) {
        return RS_EDEADLK; /* rs_condvar_wait returns at once there: this would spin forever */
    }
    rs_mutex_lock(&future->lock);
    while (!future->out.done && err == RS_OK) {
        if (deadline == UINT64_MAX) {
            rs_condvar_wait(&future->done_cond, &future->lock);
        } else {
            err = rs_condvar_wait_until(&future->done_cond, &future->lock, deadline);
        }
    }
    err = future->out.done ? RS_OK : RS_ETIMEDOUT;
    rs_mutex_unlock(&future->lock);
    return err;
}

/* Getters lock because another thread may be completing the future; the cast
 * drops const only to take the mutex. */
static bool rs__future_snapshot(const rs_future_t *future, rs__future_outcome_t *copy) {
    rs_future_t *f = (rs_future_t *)future;
    if (!f) {
        return false;
    }
    rs_mutex_lock(&f->lock);
    *copy = f->out;
    rs_mutex_unlock(&f->lock);
    return copy->done;
}

RESEAU_API bool rs_future_is_done(const rs_future_t *future) {
    rs__future_outcome_t s;
    return rs__future_snapshot(future, &s);
}

RESEAU_API int rs_future_get_error(const rs_future_t *future) {
    rs__future_outcome_t s;
    if (!future) {
        return RS_EINVAL;
    }
    return rs__future_snapshot(future, &s) ? s.error : RS_ESTATE;
}

RESEAU_API void *rs_future_get_pointer(const rs_future_t *future) {
    rs__future_outcome_t s;
    if (!rs__future_snapshot(future, &s) || s.error != RS_OK || future->type != RS_FUTURE_POINTER) {
        return NULL;
    }
    return s.pointer;
}

RESEAU_API size_t rs_future_get_size(const rs_future_t *future) {
    rs__future_outcome_t s;
    if (!rs__future_snapshot(future, &s) || s.error != RS_OK || future->type != RS_FUTURE_SIZE) {
        return 0;
    }
    return s.size;
}

RESEAU_API bool rs_future_get_bool(const rs_future_t *future) {
    rs__future_outcome_t s;
    if (!rs__future_snapshot(future, &s) || s.error != RS_OK || future->type != RS_FUTURE_BOOL) {
        return false;
    }
    return s.boolean;
}

RESEAU_API rs_future_type_t rs_future_get_type(const rs_future_t *future) {
    return future ? future->type : RS_FUTURE_VOID;
}
