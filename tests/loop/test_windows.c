/*
 * What Windows has so far (issue 13): the IOCP backend's own behaviour, and
 * the RS_ENOTSUP answers of the parts not ported yet. The loop contract
 * itself is checked by the per-backend tests of the other loop files, whose
 * _iocp variants run on Windows. Elsewhere every test here skips, saying so.
 */
#include "test_util.h"

/* Skips the calling test off Windows. */
static void windows_or_skip(void) {
    if (!RESEAU_OS_WINDOWS) {
        print_message("skipped: Windows only\n");
        skip();
    }
}

static void set_flag(rs_task_t *task, void *arg, rs_task_status_t status) {
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        __atomic_store_n((int *)arg, 1, __ATOMIC_RELEASE);
    }
}

static void noop_io(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    (void)loop;
    (void)handle;
    (void)events;
    (void)user_data;
}

static void iocp_is_the_default_backend(void **state) {
    rs_event_loop_options_t opts;
    rs_event_loop_t *loop;
    int err = -1;
    (void)state;
    windows_or_skip();
    assert_true(rs_event_loop_backend_is_available(RS_EVENT_LOOP_BACKEND_IOCP));
    assert_false(rs_event_loop_backend_is_available(RS_EVENT_LOOP_BACKEND_POLL));
    assert_false(rs_event_loop_backend_is_available(RS_EVENT_LOOP_BACKEND_EPOLL));
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator; /* backend: DEFAULT */
    loop = rs_event_loop_new(&opts, &err);
    assert_non_null(loop);
    assert_int_equal(err, RS_OK);
    assert_int_equal(rs_event_loop_get_backend(loop), RS_EVENT_LOOP_BACKEND_IOCP);
    rs_event_loop_destroy(loop);
}

/* A completion port reports finished operations, not readiness. */
static void iocp_subscribe_is_not_supported(void **state) {
    rs_event_loop_t *loop;
    rs_io_handle_t handle;
    int fd_out = 12345;
    (void)state;
    windows_or_skip();
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IOCP);
    memset(&handle, 0, sizeof(handle));
    handle.fd = 0;
    assert_int_equal(rs_event_loop_subscribe(loop, &handle, RS_IO_READABLE, noop_io, NULL), RS_ENOTSUP);
    assert_null(handle.impl);
    /* Nothing was subscribed, so there is nothing to change or remove. */
    assert_int_equal(rs_event_loop_update_subscription(loop, &handle, RS_IO_WRITABLE), RS_EINVAL);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &handle), RS_EINVAL);
    /* Bad input is still refused first. */
    assert_int_equal(rs_event_loop_subscribe(loop, &handle, 0, noop_io, NULL), RS_EINVAL);
    assert_int_equal(rs_event_loop_get_fd(loop, &fd_out), RS_ENOTSUP);
    assert_int_equal(fd_out, 12345);
    rs_event_loop_destroy(loop);
}

/* Many wakes before the loop looks post one packet: once the loop has taken
 * it, a wait blocks for its whole timeout again instead of returning at once
 * for stale packets. More wakes than one wait takes packets, so that without
 * the coalescing some would be left. */
static void iocp_burst_of_wakes_leaves_no_stale_wakeup(void **state) {
#if RESEAU_OS_WINDOWS
    rs_event_loop_t *loop;
    uint64_t start;
    int i;
#endif
    (void)state;
    windows_or_skip();
#if RESEAU_OS_WINDOWS
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IOCP);
    for (i = 0; i < 4 * RS__IOCP_MAX_ENTRIES; ++i) {
        assert_true(loop->backend->wake(loop));
    }
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    start = rs_clock_now_ns();
    assert_int_equal(rs_event_loop_run_once(loop, 100), RS_OK);
    /* Windows timers may end a wait up to a tick (about 16 ms) early. */
    assert_true(rs_clock_now_ns() - start >= 80 * RS_NS_PER_MS);
    rs_event_loop_destroy(loop);
#endif
}

typedef struct late_scheduler {
    rs_event_loop_t *loop;
    rs_task_t task;
    int ran;
} late_scheduler_t;

static void schedule_after_a_while(void *user_data) {
    late_scheduler_t *l = (late_scheduler_t *)user_data;
    rs_thread_sleep_ns(50 * RS_NS_PER_MS);
    assert_int_equal(rs_event_loop_schedule_task_now(l->loop, &l->task), RS_OK);
}

/* A run_once blocked without a timeout is ended by a task from another
 * thread, which then runs in that same tick. */
static void iocp_task_from_another_thread_ends_a_blocked_wait(void **state) {
    late_scheduler_t l;
    rs_thread_t thread;
    uint64_t start;
    (void)state;
    windows_or_skip();
    memset(&l, 0, sizeof(l));
    l.loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IOCP);
    rs_task_init(&l.task, set_flag, &l.ran, "late");
    /* Owning the loop first, so the other thread's schedule goes cross-thread. */
    assert_int_equal(rs_event_loop_run_once(l.loop, 0), RS_OK);
    start = rs_clock_now_ns();
    assert_int_equal(rs_thread_launch(&thread, schedule_after_a_while, &l, NULL), RS_OK);
    assert_int_equal(rs_event_loop_run_once(l.loop, -1), RS_OK);
    assert_int_equal(__atomic_load_n(&l.ran, __ATOMIC_ACQUIRE), 1);
    assert_true(rs_clock_now_ns() - start < 5 * RS_NS_PER_SEC);
    assert_int_equal(rs_thread_join(&thread), RS_OK);
    rs_event_loop_destroy(l.loop);
}

/* ---- not ported yet: the entry points say RS_ENOTSUP ------------------- */

static void on_signal(rs_signal_watcher_t *watcher, int signum, uint32_t count, void *user_data) {
    (void)watcher;
    (void)signum;
    (void)count;
    (void)user_data;
}

static void unported_entry_points_return_enotsup(void **state) {
    rs_event_loop_t *loop;
    rs_socket_options_t so;
    rs_host_resolver_options_t ro;
    rs_pipe_read_end_t *read_end = (rs_pipe_read_end_t *)&so;
    rs_pipe_write_end_t *write_end = (rs_pipe_write_end_t *)&so;
    rs_signal_watcher_t *watcher = (rs_signal_watcher_t *)&so;
    rs_endpoint_t endpoint;
    char sockaddr[64];
    int err = 0;
    (void)state;
    windows_or_skip();
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IOCP);
    memset(&so, 0, sizeof(so));
    memset(&ro, 0, sizeof(ro));
    memset(sockaddr, 0, sizeof(sockaddr));

    so.type = RS_SOCKET_DGRAM; /* Unix-domain datagrams are not ported yet; UDP and TCP are (tests/socket) */
    so.domain = RS_SOCKET_DOMAIN_LOCAL;
    assert_null(rs_socket_new(&so, &err));
    assert_int_equal(err, RS_ENOTSUP);
    err = 0;
    assert_null(rs_host_resolver_new(&ro, &err));
    assert_int_equal(err, RS_ENOTSUP);
    assert_int_equal(rs_pipe_new(loop, loop, &rs_test_allocator, &read_end, &write_end), RS_ENOTSUP);
    assert_null(read_end);
    assert_null(write_end);
    assert_int_equal(rs_pipe_new(NULL, loop, NULL, &read_end, &write_end), RS_EINVAL);
    assert_int_equal(rs_signal_watcher_new(loop, 2, on_signal, NULL, &watcher), RS_ENOTSUP);
    assert_null(watcher);
    assert_int_equal(rs_signal_watcher_new(loop, 2, NULL, NULL, &watcher), RS_EINVAL);
    /* Family 0 (AF_UNSPEC): no address at all. */
    assert_int_equal(rs_endpoint_from_sockaddr(&endpoint, sockaddr, sizeof(sockaddr)), RS_EAFNOSUPPORT);

    /* Only NULL can reach the other calls: they answer as for a NULL handle. */
    assert_int_equal(rs_pipe_read(NULL, NULL, NULL), RS_EINVAL);
    rs_pipe_read_end_destroy(NULL);
    rs_pipe_write_end_destroy(NULL);
    assert_int_equal(rs_host_resolver_get_address_count(NULL, "x", 0), 0);
    rs_host_resolver_destroy(NULL);
    assert_int_equal(rs_signal_watcher_destroy(NULL), RS_EINVAL);
    assert_int_equal(rs_signal_watcher_get_signum(NULL), 0);
    rs_event_loop_destroy(loop);
}

/* Addresses are plain parsing: they work. */
static void addresses_work(void **state) {
    rs_endpoint_t endpoint;
    char text[64];
    (void)state;
    windows_or_skip();
    assert_int_equal(rs_endpoint_from_ip(&endpoint, "::1", 8080), RS_OK);
    assert_int_equal(rs_endpoint_format(&endpoint, text, sizeof(text)), RS_OK);
    assert_string_equal(text, "[::1]:8080");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iocp_is_the_default_backend),
        cmocka_unit_test(iocp_subscribe_is_not_supported),
        cmocka_unit_test(iocp_burst_of_wakes_leaves_no_stale_wakeup),
        cmocka_unit_test(iocp_task_from_another_thread_ends_a_blocked_wait),
        cmocka_unit_test(unported_entry_points_return_enotsup),
        cmocka_unit_test(addresses_work),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
