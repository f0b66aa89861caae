/*
 * The loop without an OS (RESEAU_OS_NONE): tasks only, no I/O. There is
 * nothing to wait on, so a wait returns at once and run_once runs what is due;
 * firmware sleeps between calls in its own way (until an interrupt, or until
 * rs_event_loop_next_deadline), and feeds its channels through handlers of
 * its own, as the testing channel does. Subscriptions and the waitable
 * handles are RS_ENOTSUP.
 */
#if RESEAU_OS_NONE

static int rs__none_init(rs_event_loop_t *loop) {
    (void)loop;
    return RS_OK;
}

static void rs__none_cleanup(rs_event_loop_t *loop) {
    (void)loop;
}

static void rs__none_wait(rs_event_loop_t *loop, int timeout_ms) {
    (void)loop;
    (void)timeout_ms;
}

static void rs__none_dispatch(rs_event_loop_t *loop) {
    (void)loop;
}

static int rs__none_add(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    (void)loop;
    (void)reg;
    return RS_ENOTSUP;
}

static int rs__none_modify(rs_event_loop_t *loop, rs__io_registration_t *reg, int events) {
    (void)loop;
    (void)reg;
    (void)events;
    return RS_ENOTSUP;
}

static void rs__none_remove(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    (void)loop;
    (void)reg;
}

/* The one thread is the loop's, and it is not blocked: it will see the task. */
static bool rs__none_wake(rs_event_loop_t *loop) {
    (void)loop;
    return true;
}

static int rs__none_get_fd(const rs_event_loop_t *loop, int *fd_out) {
    (void)loop;
    (void)fd_out;
    return RS_ENOTSUP;
}

static const rs__backend_vtable_t rs__none_vtable = {
    RS_EVENT_LOOP_BACKEND_DEFAULT, rs__none_init,   rs__none_cleanup, rs__none_wait,   rs__none_dispatch,
    rs__none_add,                  rs__none_modify, rs__none_remove,  rs__none_wake,   rs__none_get_fd,
    NULL,                          false,
};

#endif /* RESEAU_OS_NONE */
