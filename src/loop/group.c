/* Event-loop group: N loops on N named threads, best-of-two picking, async shutdown. */

struct rs_event_loop_group {
    rs_allocator_t allocator;
    rs_event_loop_t **loops;
    size_t loop_count;
    RS__ALIGN8 uint64_t pick_counter; /* atomic; seeds the best-of-two choice */
    rs_event_loop_group_shutdown_fn *on_shutdown;
    void *shutdown_user_data;
    /* Asynchronous destroy: the helper thread waits for `launched` before it
     * frees the group, because the launching thread still writes cleanup_thread. */
    rs_thread_t cleanup_thread;
    rs_mutex_t launch_lock;
    rs_condvar_t launch_cond;
    bool launched;
};
RS__ASSERT_ALIGN8(struct rs_event_loop_group, pick_counter, group_pick_counter);

/* Longest thread name prefix kept, leaving room for "-<index>". */
#define RS__GROUP_NAME_PREFIX_MAX 9

/* Every loop is stopped and joined before any is destroyed: until then a
 * running loop may still schedule onto another. Live channels and sockets are
 * ended, and tasks left on a stopped loop, or scheduled onto it by a
 * neighbour's last tick or by canceled tasks, run CANCELED, once, before any
 * loop's memory goes. */
static void rs__group_stop_and_free(rs_event_loop_group_t *group) {
    rs_allocator_t allocator = group->allocator;
    size_t i;
    for (i = 0; i < group->loop_count; ++i) {
        if (group->loops[i]) {
            rs_event_loop_stop(group->loops[i]);
        }
    }
    for (i = 0; i < group->loop_count; ++i) {
        if (group->loops[i]) {
            rs__event_loop_halt(group->loops[i]);
        }
    }
    rs__event_loops_wind_down(group->loops, group->loop_count);
    for (i = 0; i < group->loop_count; ++i) {
        if (group->loops[i]) {
            rs__event_loop_free(group->loops[i]);
        }
    }
    rs_mem_free(&allocator, group->loops);
    rs_condvar_cleanup(&group->launch_cond);
    rs_mutex_cleanup(&group->launch_lock);
    rs_mem_free(&allocator, group);
}

static int rs__group_start_loop(rs_event_loop_group_t *group, size_t index,
                                const rs_event_loop_group_options_t *o) {
    rs_event_loop_options_t loop_options;
    /* Room for every digit of a 32-bit unsigned index, so snprintf never truncates
     * (gcc -Wformat-truncation on i686 cannot bound the index); the loop then cuts
     * the name to RS_THREAD_NAME_MAX, as before. */
    char name[RS__GROUP_NAME_PREFIX_MAX + sizeof("-4294967295")];
    const char *prefix = o->thread_name_prefix ? o->thread_name_prefix : "rs-el";
    int err;
    snprintf(name, sizeof(name), "%.*s-%u", RS__GROUP_NAME_PREFIX_MAX, prefix, (unsigned)index);
    memset(&loop_options, 0, sizeof(loop_options));
    loop_options.allocator = &group->allocator;
    loop_options.backend = o->backend;
    loop_options.clock_fn = o->clock_fn;
    loop_options.clock_user_data = o->clock_user_data;
    loop_options.thread_name = name;
    loop_options.thread_stack_size = o->thread_stack_size;
    group->loops[index] = rs_event_loop_new(&loop_options, &err);
    if (!group->loops[index]) {
        return err;
    }
    return rs_event_loop_start(group->loops[index]);
}

RESEAU_API rs_event_loop_group_t *rs_event_loop_group_new(const rs_event_loop_group_options_t *options,
                                                          int *err_out) {
    rs_event_loop_group_options_t o;
    rs_event_loop_group_t *group;
    rs_allocator_t allocator;
    size_t i;
    int err;

    if (RS__NO_THREADS) {
        /* A group is loops on threads of their own. */
        rs__set_err(err_out, RS_ENOTSUP);
        return NULL;
    }
    memset(&o, 0, sizeof(o));
    if (options) {
        o = *options;
    }
    allocator = rs__allocator_copy(o.allocator);
    group = (rs_event_loop_group_t *)rs_mem_calloc(&allocator, 1, sizeof(rs_event_loop_group_t));
    if (!group) {
        rs__set_err(err_out, RS_ENOMEM);
        return NULL;
    }
    group->allocator = allocator;
    group->loop_count = o.loop_count ? o.loop_count : rs_usable_cpu_count();
    group->on_shutdown = o.on_shutdown;
    group->shutdown_user_data = o.shutdown_user_data;
    err = rs_mutex_init(&group->launch_lock);
    if (err) {
        rs_mem_free(&allocator, group);
        rs__set_err(err_out, err);
        return NULL;
    }
    err = rs_condvar_init(&group->launch_cond);
    if (err) {
        rs_mutex_cleanup(&group->launch_lock);
        rs_mem_free(&allocator, group);
        rs__set_err(err_out, err);
        return NULL;
    }
    group->loops = (rs_event_loop_t **)rs_mem_calloc(&allocator, group->loop_count, sizeof(rs_event_loop_t *));
    err = group->loops ? RS_OK : RS_ENOMEM;
    for (i = 0; !err && i < group->loop_count; ++i) {
        err = rs__group_start_loop(group, i, &o);
    }
    if (err) {
        RS__LOG_ERROR(RS_LS_EVENT_LOOP, "event-loop group setup failed at loop %u of %u: %s", (unsigned)i,
                      (unsigned)group->loop_count, rs_strerror(err));
        if (!group->loops) {
            group->loop_count = 0;
        }
        rs__group_stop_and_free(group);
        rs__set_err(err_out, err);
        return NULL;
    }
    rs__set_err(err_out, RS_OK);
    return group;
}

static bool rs__group_owns_current_thread(const rs_event_loop_group_t *group) {
    size_t i;
    for (i = 0; i < group->loop_count; ++i) {
        if (rs_event_loop_is_on_loop_thread(group->loops[i])) {
            return true;
        }
    }
    return false;
}

static void rs__group_cleanup_thread_main(void *arg) {
    rs_event_loop_group_t *group = (rs_event_loop_group_t *)arg;
    rs_event_loop_group_shutdown_fn *on_shutdown = group->on_shutdown;
    void *user_data = group->shutdown_user_data;
    rs_mutex_lock(&group->launch_lock);
    while (!group->launched) {
        rs_condvar_wait(&group->launch_cond, &group->launch_lock);
    }
    rs_mutex_unlock(&group->launch_lock);
    rs__group_stop_and_free(group);
    on_shutdown(user_data);
}

RESEAU_API int rs_event_loop_group_destroy(rs_event_loop_group_t *group) {
    rs_thread_options_t options;
    int err;
    if (!group) {
        return RS_EINVAL;
    }
    if (!group->on_shutdown) {
        if (rs__group_owns_current_thread(group)) {
            RS__LOG_ERROR(RS_LS_EVENT_LOOP, "synchronous group destroy from one of its own loop threads would deadlock");
            return RS_EDEADLK;
        }
        rs__group_stop_and_free(group);
        return RS_OK;
    }
    options.name = "rs-el-cleanup";
    options.stack_size = 0;
    rs_mutex_lock(&group->launch_lock);
    err = rs_thread_launch(&group->cleanup_thread, rs__group_cleanup_thread_main, group, &options);
    if (!err) {
        /* Nobody joins the helper: it frees the group it lives in. */
        rs__thread_detach(&group->cleanup_thread);
        group->launched = true;
        rs_condvar_signal(&group->launch_cond);
    }
    rs_mutex_unlock(&group->launch_lock);
    return err;
}

RESEAU_API size_t rs_event_loop_group_get_loop_count(const rs_event_loop_group_t *group) {
    return group ? group->loop_count : 0;
}

RESEAU_API rs_event_loop_t *rs_event_loop_group_get_loop_at(const rs_event_loop_group_t *group, size_t index) {
    return group && index < group->loop_count ? group->loops[index] : NULL;
}

/* splitmix64: a well-mixed value from a counter, without shared PRNG state. */
static uint64_t rs__mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

RESEAU_API rs_event_loop_t *rs_event_loop_group_get_next_loop(rs_event_loop_group_t *group) {
    uint64_t r;
    size_t a;
    size_t b;
    if (!group) {
        return NULL;
    }
    if (group->loop_count == 1) {
        return group->loops[0];
    }
    r = rs__mix64(rs__atomic_add_u64(&group->pick_counter, 1));
    a = (size_t)(r % group->loop_count);
    b = (size_t)((r >> 32) % (group->loop_count - 1));
    if (b >= a) {
        ++b; /* a different loop than a, uniformly */
    }
    return rs_event_loop_get_load_factor(group->loops[a]) <= rs_event_loop_get_load_factor(group->loops[b])
               ? group->loops[a]
               : group->loops[b];
}
