/* Retry strategies: one engine (rs__retry_t) behind three vtables. The
 * strategy lock guards token states, the live-token list and the random
 * state; bucket levels are atomics, so partitions never wait on each other. */

typedef enum rs__retry_kind {
    RS__RETRY_BACKOFF = 0,
    RS__RETRY_STANDARD = 1,
    RS__RETRY_NONE = 2
} rs__retry_kind_t;

typedef enum rs__retry_token_state {
    RS__TOKEN_ACQUIRING = 0, /* acquire task pending; the caller has no pointer yet */
    RS__TOKEN_IDLE = 1,
    RS__TOKEN_SCHEDULED = 2  /* retry task pending */
} rs__retry_token_state_t;

typedef struct rs__retry_bucket {
    struct rs__retry_bucket *next;
    int capacity; /* atomic */
    char name[1]; /* NUL-terminated, allocated to length */
} rs__retry_bucket_t;

typedef struct rs__retry {
    rs_retry_strategy_t base;
    rs_allocator_t allocator;
    rs__retry_kind_t kind;
    rs_event_loop_t *loop;
    rs_event_loop_group_t *group;
    uint64_t scale_ms;
    uint64_t cap_ms;
    unsigned max_retries;
    rs_retry_jitter_t jitter;
    rs_retry_random_fn *random_fn;
    void *random_user_data;
    int bucket_capacity;
    int refcount; /* atomic: the caller's, plus one per live token */
    rs_mutex_t lock;
    /* Guarded by lock: */
    uint64_t rng_state;
    rs_list_t tokens; /* every live token */
    rs__retry_bucket_t *buckets;
    bool shutting_down;
} rs__retry_t;

typedef struct rs__retry_token {
    rs_retry_token_t base;
    rs__retry_t *owner;
    rs_event_loop_t *loop;
    rs__retry_bucket_t *bucket; /* standard only */
    int refcount;               /* atomic: the caller's, plus one per pending task */
    rs_list_node_t node;
    rs_task_t acquire_task;
    rs_task_t retry_task;
    rs_task_t cancel_task;
    uint64_t acquire_deadline_ns;
    rs_retry_token_acquired_fn *on_acquired;
    void *acquired_user_data;
    rs_retry_ready_fn *on_ready;
    void *ready_user_data;
    /* Guarded by the owner's lock: */
    rs__retry_token_state_t state;
    unsigned retries;
    uint64_t last_wait_ms;
    unsigned last_cost;
    bool succeeded;
} rs__retry_token_t;

/* The built-in strategies share one vtable and tell themselves apart by kind. */
static int rs__retry_acquire(rs_retry_strategy_t *strategy, const char *partition, uint64_t timeout_ms,
                             rs_retry_token_acquired_fn *on_acquired, void *user_data);
static int rs__retry_schedule(rs_retry_token_t *token, rs_retry_error_type_t error_type, rs_retry_ready_fn *on_ready,
                              void *user_data);
static int rs__retry_record_success(rs_retry_token_t *token);
static void rs__retry_release_token(rs_retry_token_t *token);
static void rs__retry_destroy(rs_retry_strategy_t *strategy);
static const rs_retry_strategy_vtable_t rs__retry_vtable = {rs__retry_acquire, rs__retry_schedule,
                                                            rs__retry_record_success, rs__retry_release_token,
                                                            rs__retry_destroy};

static bool rs__retry_is_builtin(const rs_retry_strategy_t *s) {
    return s && s->vtable == &rs__retry_vtable;
}

/* ---- lifetime ------------------------------------------------------------ */

static void rs__retry_release(rs__retry_t *r) {
    rs__retry_bucket_t *b;
    rs_allocator_t allocator;
    if (rs__atomic_add_int(&r->refcount, -1) != 0) {
        return;
    }
    allocator = r->allocator;
    while ((b = r->buckets) != NULL) {
        r->buckets = b->next;
        rs_mem_free(&allocator, b);
    }
    rs_mutex_cleanup(&r->lock);
    rs_mem_free(&allocator, r);
}

static void rs__retry_token_release_ref(rs__retry_token_t *t) {
    rs__retry_t *r = t->owner;
    if (rs__atomic_add_int(&t->refcount, -1) != 0) {
        return;
    }
    rs_mutex_lock(&r->lock);
    rs_list_remove(&t->node);
    rs_mutex_unlock(&r->lock);
    rs_mem_free(&r->allocator, t);
    rs__retry_release(r);
}

static int rs__retry_new(rs__retry_kind_t kind, const rs_exponential_backoff_options_t *o, size_t capacity,
                         rs_retry_strategy_t **out) {
    rs__retry_t *r;
    int err;
    if ((!o->loop && !o->group) || o->max_retries > RS_RETRY_MAX_RETRIES_LIMIT ||
        !rs__enum_in_range((int)o->jitter, (int)RS_RETRY_JITTER_DEFAULT, (int)RS_RETRY_JITTER_DECORRELATED) ||
        capacity > (size_t)INT_MAX) {
        return RS_EINVAL;
    }
    r = (rs__retry_t *)rs_mem_calloc(o->allocator, 1, sizeof(*r));
    if (!r) {
        return RS_ENOMEM;
    }
    r->allocator = *(o->allocator ? o->allocator : rs_default_allocator());
    r->kind = kind;
    r->loop = o->loop;
    r->group = o->group;
    r->scale_ms = o->scale_ms ? o->scale_ms : RS_RETRY_DEFAULT_SCALE_MS;
    r->cap_ms = o->cap_ms ? o->cap_ms : RS_RETRY_DEFAULT_CAP_MS;
    r->max_retries = o->max_retries ? o->max_retries : RS_RETRY_DEFAULT_MAX_RETRIES;
    r->jitter = o->jitter == RS_RETRY_JITTER_DEFAULT ? RS_RETRY_JITTER_FULL : o->jitter;
    r->random_fn = o->random_fn;
    r->random_user_data = o->random_user_data;
    r->bucket_capacity = capacity ? (int)capacity : (int)RS_STANDARD_RETRY_BUCKET_CAPACITY;
    if (r->cap_ms < r->scale_ms || r->cap_ms > RS_RETRY_CAP_MS_LIMIT) {
        rs_mem_free(&r->allocator, r);
        return RS_EINVAL;
    }
    if ((err = rs_mutex_init(&r->lock)) != RS_OK) {
        rs_mem_free(&r->allocator, r);
        return err;
    }
    /* Any non-zero seed will do; xorshift needs one that is not 0. */
    r->rng_state = (rs_clock_now_ns() ^ (uint64_t)(uintptr_t)r) | 1u;
    r->refcount = 1;
    rs_list_init(&r->tokens);
    r->base.vtable = &rs__retry_vtable;
    r->base.impl = r;
    *out = &r->base;
    return RS_OK;
}

static rs_retry_strategy_t *rs__retry_new_result(int err, rs_retry_strategy_t *s, int *err_out) {
    if (err_out) {
        *err_out = err;
    }
    return err == RS_OK ? s : NULL;
}

RESEAU_API rs_retry_strategy_t *rs_retry_strategy_new_exponential_backoff(
    const rs_exponential_backoff_options_t *options, int *err_out) {
    rs_retry_strategy_t *s = NULL;
    int err = options ? rs__retry_new(RS__RETRY_BACKOFF, options, 0, &s) : RS_EINVAL;
    return rs__retry_new_result(err, s, err_out);
}

RESEAU_API rs_retry_strategy_t *rs_retry_strategy_new_standard(const rs_standard_retry_options_t *options,
                                                               int *err_out) {
    rs_retry_strategy_t *s = NULL;
    int err = options ? rs__retry_new(RS__RETRY_STANDARD, &options->backoff, options->bucket_capacity, &s)
                      : RS_EINVAL;
    return rs__retry_new_result(err, s, err_out);
}

RESEAU_API rs_retry_strategy_t *rs_retry_strategy_new_no_retry(const rs_no_retry_options_t *options, int *err_out) {
    rs_exponential_backoff_options_t o;
    rs_retry_strategy_t *s = NULL;
    int err = RS_EINVAL;
    if (options) {
        memset(&o, 0, sizeof(o));
        o.allocator = options->allocator;
        o.loop = options->loop;
        o.group = options->group;
        err = rs__retry_new(RS__RETRY_NONE, &o, 0, &s);
    }
    return rs__retry_new_result(err, s, err_out);
}

static void rs__retry_cancel_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs__retry_token_t *t = (rs__retry_token_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        /* Each runs its function once with CANCELED; one not scheduled is left alone. */
        rs_event_loop_cancel_task(t->loop, &t->retry_task);
        rs_event_loop_cancel_task(t->loop, &t->acquire_task);
    }
    rs__retry_token_release_ref(t);
}

/* Pending tasks can only be canceled on their loop's thread, so each token
 * with one gets a task there that cancels it. */
static void rs__retry_destroy(rs_retry_strategy_t *strategy) {
    rs__retry_t *r = (rs__retry_t *)strategy->impl;
    rs_list_node_t *n;
    rs_mutex_lock(&r->lock);
    r->shutting_down = true;
    for (n = rs_list_begin(&r->tokens); n != rs_list_end(&r->tokens); n = n->next) {
        rs__retry_token_t *t = (rs__retry_token_t *)(void *)((char *)n - offsetof(rs__retry_token_t, node));
        if (t->state == RS__TOKEN_IDLE) {
            continue;
        }
        rs__atomic_add_int(&t->refcount, 1);
        rs_task_init(&t->cancel_task, rs__retry_cancel_task, t, "retry_cancel");
        if (rs_event_loop_schedule_task_now(t->loop, &t->cancel_task) != RS_OK) {
            rs__atomic_add_int(&t->refcount, -1); /* not the last: the pending task holds one */
        }
    }
    rs_mutex_unlock(&r->lock);
    rs__retry_release(r);
}

/* ---- buckets (standard) -------------------------------------------------- */

static const char *rs__retry_partition_name(const char *partition) {
    return partition ? partition : "";
}

/* Called with the lock held. NULL if absent. */
static rs__retry_bucket_t *rs__retry_find_bucket(rs__retry_t *r, const char *name) {
    rs__retry_bucket_t *b;
    for (b = r->buckets; b; b = b->next) {
        if (strcmp(b->name, name) == 0) {
            return b;
        }
    }
    return NULL;
}

/* Buckets live as long as the strategy, so tokens may point at them. */
static rs__retry_bucket_t *rs__retry_get_bucket(rs__retry_t *r, const char *partition) {
    const char *name = rs__retry_partition_name(partition);
    size_t len = strlen(name);
    rs__retry_bucket_t *b;
    rs_mutex_lock(&r->lock);
    b = rs__retry_find_bucket(r, name);
    if (!b && len < SIZE_MAX - sizeof(*b)) {
        b = (rs__retry_bucket_t *)rs_mem_alloc(&r->allocator, sizeof(*b) + len);
        if (b) {
            memcpy(b->name, name, len + 1);
            b->capacity = r->bucket_capacity;
            b->next = r->buckets;
            r->buckets = b;
        }
    }
    rs_mutex_unlock(&r->lock);
    return b;
}

static bool rs__retry_bucket_take(rs__retry_bucket_t *b, int cost) {
    int level = rs__atomic_load_int(&b->capacity);
    while (level >= cost) {
        if (rs__atomic_cas_int(&b->capacity, level, level - cost)) {
            return true;
        }
        level = rs__atomic_load_int(&b->capacity);
    }
    return false;
}

static void rs__retry_bucket_give(rs__retry_bucket_t *b, int amount, int max) {
    int level = rs__atomic_load_int(&b->capacity);
    while (!rs__atomic_cas_int(&b->capacity, level, level + amount > max ? max : level + amount)) {
        level = rs__atomic_load_int(&b->capacity);
    }
}

RESEAU_API size_t rs_standard_retry_get_capacity(rs_retry_strategy_t *strategy, const char *partition) {
    rs__retry_t *r;
    rs__retry_bucket_t *b;
    int level;
    if (!rs__retry_is_builtin(strategy) || ((rs__retry_t *)strategy->impl)->kind != RS__RETRY_STANDARD) {
        return 0;
    }
    r = (rs__retry_t *)strategy->impl;
    rs_mutex_lock(&r->lock);
    b = rs__retry_find_bucket(r, rs__retry_partition_name(partition));
    level = b ? rs__atomic_load_int(&b->capacity) : r->bucket_capacity;
    rs_mutex_unlock(&r->lock);
    return (size_t)level;
}

/* ---- acquire ------------------------------------------------------------- */

static void rs__retry_deliver_acquired(rs__retry_token_t *t, int error) {
    t->on_acquired(&t->owner->base, error, error == RS_OK ? &t->base : NULL, t->acquired_user_data);
    if (error != RS_OK) {
        rs__retry_token_release_ref(t); /* the reference the caller never got */
    }
}

/* The token leaves ACQUIRING before any callback: a token whose last
 * reference is going must not look pending to rs__retry_destroy. */
static void rs__retry_acquire_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs__retry_token_t *t = (rs__retry_token_t *)arg;
    rs__retry_t *r = t->owner;
    int result = RS_OK;
    uint64_t now;
    (void)task;
    rs_mutex_lock(&r->lock);
    if (status == RS_TASK_STATUS_CANCELED || r->shutting_down) {
        result = RS_ECANCELED;
    } else if (t->bucket && rs__atomic_load_int(&t->bucket->capacity) == 0) {
        now = rs_event_loop_now_ns(t->loop);
        result = RS_ERETRY_QUOTA_EXHAUSTED;
        if (now < t->acquire_deadline_ns &&
            rs_event_loop_schedule_task_future(t->loop, &t->acquire_task,
                                               now + RS_STANDARD_RETRY_ACQUIRE_POLL_MS * RS_NS_PER_MS) == RS_OK) {
            rs_mutex_unlock(&r->lock);
            return; /* look again later; still ACQUIRING */
        }
    }
    t->state = RS__TOKEN_IDLE;
    rs_mutex_unlock(&r->lock);
    rs__retry_deliver_acquired(t, result);
}

static int rs__retry_acquire(rs_retry_strategy_t *strategy, const char *partition, uint64_t timeout_ms,
                             rs_retry_token_acquired_fn *on_acquired, void *user_data) {
    rs__retry_t *r = (rs__retry_t *)strategy->impl;
    rs__retry_bucket_t *bucket = NULL;
    rs__retry_token_t *t;
    rs_event_loop_t *loop = r->loop ? r->loop : rs_event_loop_group_get_next_loop(r->group);
    int err;
    if (r->kind == RS__RETRY_STANDARD) {
        if (!(bucket = rs__retry_get_bucket(r, partition))) {
            return RS_ENOMEM;
        }
        if (timeout_ms == 0 && rs__atomic_load_int(&bucket->capacity) == 0) {
            return RS_ERETRY_QUOTA_EXHAUSTED;
        }
    }
    if (!loop) {
        return RS_EINVAL;
    }
    t = (rs__retry_token_t *)rs_mem_calloc(&r->allocator, 1, sizeof(*t));
    if (!t) {
        return RS_ENOMEM;
    }
    t->base.strategy = strategy;
    t->base.impl = t;
    t->owner = r;
    t->loop = loop;
    t->bucket = bucket;
    t->refcount = 1;
    t->on_acquired = on_acquired;
    t->acquired_user_data = user_data;
    timeout_ms = timeout_ms > RS_RETRY_CAP_MS_LIMIT ? RS_RETRY_CAP_MS_LIMIT : timeout_ms;
    t->acquire_deadline_ns = rs_event_loop_now_ns(loop) + timeout_ms * RS_NS_PER_MS;
    rs_task_init(&t->acquire_task, rs__retry_acquire_task, t, "retry_acquire");
    rs_mutex_lock(&r->lock);
    err = r->shutting_down ? RS_ECANCELED : rs_event_loop_schedule_task_now(loop, &t->acquire_task);
    if (err == RS_OK) {
        t->state = RS__TOKEN_ACQUIRING;
        rs_list_push_back(&r->tokens, &t->node);
        rs__atomic_add_int(&r->refcount, 1);
    }
    rs_mutex_unlock(&r->lock);
    if (err != RS_OK) {
        rs_mem_free(&r->allocator, t);
    }
    return err;
}

/* ---- schedule_retry ------------------------------------------------------ */

/* Uniform in [lo, hi]. Called with the lock held. */
static uint64_t rs__retry_uniform(rs__retry_t *r, uint64_t lo, uint64_t hi) {
    uint64_t x;
    uint64_t span = hi - lo + 1u;
    if (r->random_fn) {
        x = r->random_fn(r->random_user_data);
    } else {
        /* xorshift64*: good enough to spread clients apart; not for secrets. */
        r->rng_state ^= r->rng_state >> 12;
        r->rng_state ^= r->rng_state << 25;
        r->rng_state ^= r->rng_state >> 27;
        x = r->rng_state * UINT64_C(2685821657736338717);
    }
    return span == 0 ? x : lo + x % span;
}

/* The wait before retry number t->retries. Called with the lock held. */
static uint64_t rs__retry_wait_ms(rs__retry_t *r, rs__retry_token_t *t) {
    uint64_t exp = t->retries >= 63u || r->scale_ms > (r->cap_ms >> t->retries) ? r->cap_ms
                                                                               : r->scale_ms << t->retries;
    uint64_t last = t->retries == 0 ? r->scale_ms : t->last_wait_ms;
    uint64_t hi;
    switch (r->jitter) {
    case RS_RETRY_JITTER_NONE:
        return exp;
    case RS_RETRY_JITTER_DECORRELATED:
        hi = last > r->cap_ms / 3u ? r->cap_ms : 3u * last;
        return rs__retry_uniform(r, r->scale_ms, hi < r->scale_ms ? r->scale_ms : hi);
    default:
        return rs__retry_uniform(r, 0, exp);
    }
}

static void rs__retry_ready_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs__retry_token_t *t = (rs__retry_token_t *)arg;
    rs__retry_t *r = t->owner;
    bool canceled;
    (void)task;
    rs_mutex_lock(&r->lock);
    t->state = RS__TOKEN_IDLE;
    canceled = status == RS_TASK_STATUS_CANCELED || r->shutting_down;
    rs_mutex_unlock(&r->lock);
    t->on_ready(&t->base, canceled ? RS_ECANCELED : RS_OK, t->ready_user_data);
    rs__retry_token_release_ref(t);
}

static int rs__retry_schedule(rs_retry_token_t *token, rs_retry_error_type_t error_type, rs_retry_ready_fn *on_ready,
                              void *user_data) {
    rs__retry_token_t *t = (rs__retry_token_t *)token->impl;
    rs__retry_t *r = t->owner;
    unsigned cost = error_type == RS_RETRY_ERROR_TRANSIENT ? RS_STANDARD_RETRY_COST_TRANSIENT : RS_STANDARD_RETRY_COST;
    uint64_t wait_ms;
    int err = RS_OK;
    rs_mutex_lock(&r->lock);
    if (r->shutting_down) {
        err = RS_ECANCELED;
    } else if (t->state != RS__TOKEN_IDLE) {
        err = RS_EBUSY;
    } else if (r->kind == RS__RETRY_NONE) {
        err = RS_ERETRY_NOT_ALLOWED;
    } else if (t->retries >= r->max_retries) {
        err = RS_ERETRY_MAX_EXCEEDED;
    } else if (t->bucket && !rs__retry_bucket_take(t->bucket, (int)cost)) {
        err = RS_ERETRY_QUOTA_EXHAUSTED;
    }
    if (err != RS_OK) {
        rs_mutex_unlock(&r->lock);
        return err;
    }
    wait_ms = rs__retry_wait_ms(r, t);
    t->on_ready = on_ready;
    t->ready_user_data = user_data;
    rs__atomic_add_int(&t->refcount, 1);
    rs_task_init(&t->retry_task, rs__retry_ready_task, t, "retry_wait");
    err = rs_event_loop_schedule_task_future(t->loop, &t->retry_task,
                                             rs_event_loop_now_ns(t->loop) + wait_ms * RS_NS_PER_MS);
    if (err == RS_OK) {
        t->state = RS__TOKEN_SCHEDULED;
        t->retries++;
        t->last_wait_ms = wait_ms;
        t->last_cost = t->bucket ? cost : 0;
    } else {
        rs__atomic_add_int(&t->refcount, -1); /* not the last: the caller holds one */
        if (t->bucket) {
            rs__retry_bucket_give(t->bucket, (int)cost, r->bucket_capacity);
        }
    }
    rs_mutex_unlock(&r->lock);
    return err;
}

/* ---- success and release ------------------------------------------------- */

static int rs__retry_record_success(rs_retry_token_t *token) {
    rs__retry_token_t *t = (rs__retry_token_t *)token->impl;
    rs__retry_t *r = t->owner;
    int refund;
    rs_mutex_lock(&r->lock);
    if (t->succeeded) {
        rs_mutex_unlock(&r->lock);
        return RS_ESTATE;
    }
    t->succeeded = true;
    refund = t->retries == 0 ? (int)RS_STANDARD_RETRY_NO_RETRY_REFUND : (int)t->last_cost;
    rs_mutex_unlock(&r->lock);
    if (t->bucket) {
        rs__retry_bucket_give(t->bucket, refund, r->bucket_capacity);
    }
    return RS_OK;
}

static void rs__retry_release_token(rs_retry_token_t *token) {
    rs__retry_token_release_ref((rs__retry_token_t *)token->impl);
}

/* ---- the generic API ----------------------------------------------------- */

RESEAU_API void rs_retry_strategy_destroy(rs_retry_strategy_t *strategy) {
    if (strategy && strategy->vtable && strategy->vtable->destroy) {
        strategy->vtable->destroy(strategy);
    }
}

RESEAU_API int rs_retry_strategy_acquire_token(rs_retry_strategy_t *strategy, const char *partition,
                                               uint64_t timeout_ms, rs_retry_token_acquired_fn *on_acquired,
                                               void *user_data) {
    if (!strategy || !strategy->vtable || !strategy->vtable->acquire_token || !on_acquired) {
        return RS_EINVAL;
    }
    return strategy->vtable->acquire_token(strategy, partition, timeout_ms, on_acquired, user_data);
}

RESEAU_API int rs_retry_strategy_schedule_retry(rs_retry_token_t *token, rs_retry_error_type_t error_type,
                                                rs_retry_ready_fn *on_ready, void *user_data) {
    if (!token || !token->strategy || !token->strategy->vtable || !token->strategy->vtable->schedule_retry ||
        !on_ready ||
        !rs__enum_in_range((int)error_type, (int)RS_RETRY_ERROR_TRANSIENT, (int)RS_RETRY_ERROR_CLIENT)) {
        return RS_EINVAL;
    }
    return token->strategy->vtable->schedule_retry(token, error_type, on_ready, user_data);
}

RESEAU_API int rs_retry_token_record_success(rs_retry_token_t *token) {
    if (!token || !token->strategy || !token->strategy->vtable || !token->strategy->vtable->record_success) {
        return RS_EINVAL;
    }
    return token->strategy->vtable->record_success(token);
}

RESEAU_API void rs_retry_token_release(rs_retry_token_t *token) {
    if (token && token->strategy && token->strategy->vtable && token->strategy->vtable->release_token) {
        token->strategy->vtable->release_token(token);
    }
}

RESEAU_API unsigned rs_retry_token_get_retry_count(const rs_retry_token_t *token) {
    rs__retry_token_t *t;
    unsigned n;
    if (!token || !rs__retry_is_builtin(token->strategy)) {
        return 0;
    }
    t = (rs__retry_token_t *)token->impl;
    rs_mutex_lock(&t->owner->lock);
    n = t->retries;
    rs_mutex_unlock(&t->owner->lock);
    return n;
}
