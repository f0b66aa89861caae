/*
 * The custom backend (RS_EVENT_LOOP_BACKEND_CUSTOM): the application's own
 * wait and wakeup, from rs_event_loop_options_t.custom_backend, copied into
 * the loop. There are no fd subscriptions: data comes in through the
 * application's dispatch, which feeds transport handlers.
 */

static int rs__custom_init(rs_event_loop_t *loop) {
    (void)loop;
    return RS_OK;
}

static void rs__custom_cleanup(rs_event_loop_t *loop) {
    if (loop->custom.destroy) {
        loop->custom.destroy(loop->custom.user_data);
    }
}

static void rs__custom_wait(rs_event_loop_t *loop, int timeout_ms) {
    loop->custom.wait(loop->custom.user_data, timeout_ms);
}

static void rs__custom_dispatch(rs_event_loop_t *loop) {
    if (loop->custom.dispatch) {
        loop->custom.dispatch(loop->custom.user_data);
    }
}

static int rs__custom_add(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    (void)loop;
    (void)reg;
    return RS_ENOTSUP;
}

static int rs__custom_modify(rs_event_loop_t *loop, rs__io_registration_t *reg, int events) {
    (void)loop;
    (void)reg;
    (void)events;
    return RS_ENOTSUP;
}

static void rs__custom_remove(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    (void)loop;
    (void)reg;
}

static bool rs__custom_wake(rs_event_loop_t *loop) {
    return loop->custom.wake(loop->custom.user_data);
}

static int rs__custom_get_fd(const rs_event_loop_t *loop, int *fd_out) {
    (void)loop;
    (void)fd_out;
    return RS_ENOTSUP;
}

static const rs__backend_vtable_t rs__custom_vtable = {
    RS_EVENT_LOOP_BACKEND_CUSTOM, rs__custom_init,   rs__custom_cleanup, rs__custom_wait,   rs__custom_dispatch,
    rs__custom_add,               rs__custom_modify, rs__custom_remove,  rs__custom_wake,   rs__custom_get_fd,
    NULL,                         false,
};
