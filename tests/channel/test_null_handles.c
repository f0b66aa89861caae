/*
 * NULL handles across the public API: every function that takes a handle
 * answers a NULL one the same way, whatever layer it belongs to.
 *   int             RS_EINVAL, before any thread check
 *   void            does nothing
 *   pointer         NULL, with *err_out set to RS_EINVAL where there is one
 *   bool            false
 *   size_t/uint64_t 0 (and rs_event_loop_get_backend: DEFAULT, rs_socket_get_fd: -1)
 * A required pointer argument next to a valid handle (an out-pointer, an
 * endpoint, a slot to insert) is RS_EINVAL too, and touches nothing.
 *
 * Two tables, one row per call: the calls with a NULL handle, then the calls
 * with a valid handle and a NULL in another argument. Each row is a small
 * function that returns what the call returned, as one int. A mismatch names
 * the call; so does a crash (see name_crashing_call).
 *
 * The valid handles come from the leak-checking allocator, so a call that
 * allocates and forgets on a NULL path fails the test.
 */
#include "test_util.h"

#include <signal.h>
#include <unistd.h>

/* Any signal the watcher takes. Windows has no SIGUSR1; its watcher checks
 * the arguments and then returns RS_ENOTSUP, so the NULL rows are the same. */
#if defined(_WIN32)
#define WATCHED_SIGNAL SIGINT
#else
#define WATCHED_SIGNAL SIGUSR1
#endif

/* What a row's call returned when it is not an int: one value each, kept
 * clear of the RS_Exxx codes and of the other small results. */
enum {
    DID_NOTHING = 1000, /* a void call returned */
    GOT_NULL,           /* a NULL pointer */
    GOT_FALSE,
    GOT_ZERO,           /* a zero count, or an out-struct left all zero */
    GOT_OTHER           /* a non-NULL pointer, true, a non-zero count */
};

/* err_out before the call, so a constructor that never sets it shows. */
#define ERR_UNSET 12345

static int ptr_result(const void *p) {
    return p ? GOT_OTHER : GOT_NULL;
}

/* A constructor: NULL with *err_out reported as the result. Call it first:
 * an argument list does not order the call before the read of err. */
static int ptr_err_result(const void *p, int err) {
    return p ? GOT_OTHER : err;
}

static int bool_result(bool b) {
    return b ? GOT_OTHER : GOT_FALSE;
}

static int count_result(uint64_t n) {
    return n ? GOT_OTHER : GOT_ZERO;
}

/* ---------------------------------------------------------------- fixture */

/* Valid handles for the arguments next to the NULL one. The testing channel's
 * loop never runs on a thread of its own, so this thread is its loop thread. */
static struct {
    rs_testing_channel_t *testing;
    rs_event_loop_t *loop;
    rs_channel_t *channel;
    rs_channel_slot_t *slot;
    rs_socket_t *tcp;
    rs_socket_t *udp;
    rs_pipe_read_end_t *read_end;
    rs_pipe_write_end_t *write_end;
} fx;

/* Pointees for arguments that must be valid: never touched by a correct call. */
static rs_task_t task;
static rs_channel_task_t channel_task;
static rs_io_handle_t io_handle = {.fd = -1};
static rs_endpoint_t endpoint;
static uint8_t bytes[16];
static rs_byte_buf_t buf = {.buffer = bytes, .capacity = sizeof(bytes)};
static rs_datagram_t datagram = {.data = bytes, .capacity = sizeof(bytes)};
static rs_io_message_t message;
static const rs_channel_handler_vtable_t empty_vtable; /* every entry NULL: the defaults */
static rs_channel_handler_t handler = {.vtable = &empty_vtable};
static int local_key;

static rs_byte_cursor_t some_data(void) {
    return rs_byte_cursor_from_array(bytes, sizeof(bytes));
}

static void on_io(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    (void)loop, (void)handle, (void)events, (void)user_data;
}
static void on_async(rs_event_loop_async_t *async, void *user_data) {
    (void)async, (void)user_data;
}
static void on_task(rs_task_t *t, void *arg, rs_task_status_t status) {
    (void)t, (void)arg, (void)status;
}
static void on_channel_task(rs_channel_task_t *t, void *arg, rs_task_status_t status) {
    (void)t, (void)arg, (void)status;
}
static void on_accept(rs_socket_t *listener, int error, rs_socket_t *new_socket, void *user_data) {
    (void)listener, (void)error, (void)new_socket, (void)user_data;
}
static void on_connect(rs_socket_t *socket, int error, void *user_data) {
    (void)socket, (void)error, (void)user_data;
}
static void on_readable(rs_socket_t *socket, int error, void *user_data) {
    (void)socket, (void)error, (void)user_data;
}
static void on_written(rs_socket_t *socket, int error, size_t bytes_written, void *user_data) {
    (void)socket, (void)error, (void)bytes_written, (void)user_data;
}
static void on_pipe_readable(rs_pipe_read_end_t *read_end, int error, void *user_data) {
    (void)read_end, (void)error, (void)user_data;
}
static void on_pipe_written(rs_pipe_write_end_t *write_end, int error, size_t bytes_written, void *user_data) {
    (void)write_end, (void)error, (void)bytes_written, (void)user_data;
}
static void on_statistics(rs_channel_t *channel, const rs_channel_handler_stats_t *records, size_t count,
                          void *user_data) {
    (void)channel, (void)records, (void)count, (void)user_data;
}

static void fixture_setup(void) {
    rs_testing_channel_options_t testing_options = {.allocator = &rs_test_allocator};
    rs_socket_options_t tcp_options = {.allocator = &rs_test_allocator};
    rs_socket_options_t udp_options = {.allocator = &rs_test_allocator, .type = RS_SOCKET_DGRAM};
    int err;
    fx.testing = rs_testing_channel_new(&testing_options, &err);
    assert_non_null(fx.testing);
    fx.loop = rs_testing_channel_get_loop(fx.testing);
    fx.channel = rs_testing_channel_get_channel(fx.testing);
    fx.slot = rs_channel_get_first_slot(fx.channel);
    assert_non_null(fx.slot);
    fx.tcp = rs_socket_new(&tcp_options, &err);
    assert_non_null(fx.tcp);
    fx.udp = rs_socket_new(&udp_options, &err);
    assert_non_null(fx.udp);
    assert_int_equal(rs_pipe_new(fx.loop, fx.loop, &rs_test_allocator, &fx.read_end, &fx.write_end), RS_OK);
    rs_task_init(&task, on_task, NULL, "null_handles");
    assert_int_equal(rs_endpoint_from_ip(&endpoint, "127.0.0.1", 9), RS_OK);
}

static void fixture_teardown(void) {
    rs_pipe_read_end_destroy(fx.read_end);
    rs_pipe_write_end_destroy(fx.write_end);
    rs_socket_destroy(fx.udp);
    rs_socket_destroy(fx.tcp);
    rs_testing_channel_destroy(fx.testing);
    memset(&fx, 0, sizeof(fx));
}

/* ------------------------------------------------------ NULL handle calls */

/* event loop */
static int loop_destroy(void) { rs_event_loop_destroy(NULL); return DID_NOTHING; }
static int loop_schedule_now(void) { return rs_event_loop_schedule_task_now(NULL, &task); }
static int loop_schedule_serialized(void) { return rs_event_loop_schedule_task_now_serialized(NULL, &task); }
static int loop_schedule_future(void) { return rs_event_loop_schedule_task_future(NULL, &task, 1); }
static int group_destroy(void) { return rs_event_loop_group_destroy(NULL); }
static int chan_destroy(void) { rs_channel_destroy(NULL); return DID_NOTHING; }
static int chan_shutdown(void) { return rs_channel_shutdown(NULL, RS_OK); }
static int chan_shutdown_abortively(void) { return rs_channel_shutdown_abortively(NULL, RS_OK); }
static int chan_schedule_now(void) { return rs_channel_schedule_task_now(NULL, &channel_task); }
static int chan_schedule_future(void) { return rs_channel_schedule_task_future(NULL, &channel_task, 1); }
static int sock_write(void) { return rs_socket_write(NULL, rs_byte_cursor_from_array("x", 1), on_written, NULL); }
static int loop_get_backend(void) { return (int)rs_event_loop_get_backend(NULL); }
static int loop_start(void) { return rs_event_loop_start(NULL); }
static int loop_stop(void) { return rs_event_loop_stop(NULL); }
static int loop_wait(void) { return rs_event_loop_wait(NULL); }
static int loop_run_once(void) { return rs_event_loop_run_once(NULL, 0); }
static int loop_next_deadline(void) { uint64_t d; return rs_event_loop_next_deadline(NULL, &d); }
static int loop_get_fd(void) { int fd; return rs_event_loop_get_fd(NULL, &fd); }
static int loop_cancel_task(void) { return rs_event_loop_cancel_task(NULL, &task); }
static int loop_now_ns(void) { return count_result(rs_event_loop_now_ns(NULL)); }
static int loop_is_on_thread(void) { return bool_result(rs_event_loop_is_on_loop_thread(NULL)); }
static int loop_subscribe(void) { return rs_event_loop_subscribe(NULL, &io_handle, RS_IO_READABLE, on_io, NULL); }
static int loop_update(void) { return rs_event_loop_update_subscription(NULL, &io_handle, RS_IO_READABLE); }
static int loop_unsubscribe(void) { return rs_event_loop_unsubscribe(NULL, &io_handle); }
static int async_init(void) { rs_event_loop_async_init(NULL, fx.loop, on_async, NULL); return DID_NOTHING; }
static int async_send(void) { rs_event_loop_async_send(NULL); return DID_NOTHING; }
static int async_cleanup(void) { return rs_event_loop_async_cleanup(NULL); }
static int local_put(void) { return rs_event_loop_put_local_object(NULL, &local_key, &local_key, NULL, NULL); }
static int local_get(void) { void *o; return rs_event_loop_get_local_object(NULL, &local_key, &o); }
static int local_remove(void) { return rs_event_loop_remove_local_object(NULL, &local_key); }
static int loop_load_factor(void) { return count_result(rs_event_loop_get_load_factor(NULL)); }
static int loop_get_stats(void) {
    rs_event_loop_stats_t stats;
    memset(&stats, 0xab, sizeof(stats));
    rs_event_loop_get_stats(NULL, &stats);
    return count_result(stats.ticks | stats.io_events | stats.tasks_run | stats.wakeups_sent | stats.xthread_tasks);
}

static void on_signal(rs_signal_watcher_t *w, int signum, uint32_t count, void *user_data) {
    (void)w, (void)signum, (void)count, (void)user_data;
}
static int signal_new(void) { rs_signal_watcher_t *w; return rs_signal_watcher_new(NULL, WATCHED_SIGNAL, on_signal, NULL, &w); }
static int signal_destroy(void) { return rs_signal_watcher_destroy(NULL); }
static int signal_get_signum(void) { return count_result((size_t)rs_signal_watcher_get_signum(NULL)); }

/* group and task */
static int group_loop_count(void) { return count_result(rs_event_loop_group_get_loop_count(NULL)); }
static int group_loop_at(void) { return ptr_result(rs_event_loop_group_get_loop_at(NULL, 0)); }
static int group_next_loop(void) { return ptr_result(rs_event_loop_group_get_next_loop(NULL)); }
static int task_init(void) { rs_task_init(NULL, on_task, NULL, "x"); return DID_NOTHING; }
static int task_is_scheduled(void) { return bool_result(rs_task_is_scheduled(NULL)); }

/* socket */
static int sock_set_nodelay(void) { return rs_socket_set_tcp_nodelay(NULL, true); }
static int sock_set_keepalive(void) { return rs_socket_set_keepalive(NULL, true, 0, 0, 0); }
static int sock_set_ttl(void) { return rs_socket_set_ttl(NULL, 64); }
static int sock_join(void) { return rs_socket_join_multicast_group(NULL, &endpoint, NULL, 0); }
static int sock_leave(void) { return rs_socket_leave_multicast_group(NULL, &endpoint, NULL, 0); }
static int sock_mc_interface(void) { return rs_socket_set_multicast_interface(NULL, NULL, 0); }
static int sock_mc_loop(void) { return rs_socket_set_multicast_loop(NULL, true); }
static int sock_mc_ttl(void) { return rs_socket_set_multicast_ttl(NULL, 1); }
static int sock_broadcast(void) { return rs_socket_set_broadcast(NULL, true); }
static int sock_destroy(void) { rs_socket_destroy(NULL); return DID_NOTHING; }
static int sock_close(void) { return rs_socket_close(NULL); }
static int sock_is_open(void) { return bool_result(rs_socket_is_open(NULL)); }
static int sock_bind(void) { return rs_socket_bind(NULL, &endpoint); }
static int sock_bound_address(void) { return rs_socket_get_bound_address(NULL, &endpoint); }
static int sock_remote_address(void) { return rs_socket_get_remote_address(NULL, &endpoint); }
static int sock_listen(void) { return rs_socket_listen(NULL, 0); }
static int sock_start_accept(void) { return rs_socket_start_accept(NULL, fx.loop, on_accept, NULL); }
static int sock_stop_accept(void) { return rs_socket_stop_accept(NULL); }
static int sock_connect(void) { return rs_socket_connect(NULL, &endpoint, fx.loop, on_connect, NULL); }
static int sock_assign(void) { return rs_socket_assign_to_loop(NULL, fx.loop); }
static int sock_get_loop(void) { return ptr_result(rs_socket_get_loop(NULL)); }
static int sock_subscribe(void) { return rs_socket_subscribe_to_readable_events(NULL, on_readable, NULL); }
static int sock_pause(void) { return rs_socket_pause_reading(NULL); }
static int sock_resume(void) { return rs_socket_resume_reading(NULL); }
static int sock_read(void) { size_t n; return rs_socket_read(NULL, &buf, &n); }
static int sock_readv(void) { size_t n; return rs_socket_readv(NULL, &buf, 1, &n); }
static int sock_pending_write(void) { return count_result(rs_socket_get_pending_write_bytes(NULL)); }
static int sock_shutdown_dir(void) { return rs_socket_shutdown_dir(NULL, RS_SOCKET_DIR_BOTH); }
static int sock_get_fd(void) { return rs_socket_get_fd(NULL); }
static int sock_send_to(void) { return rs_socket_send_to(NULL, &endpoint, some_data()); }
static int sock_send_batch(void) { size_t n; return rs_socket_send_batch(NULL, &datagram, 1, &n); }
static int sock_recv_from(void) { return rs_socket_recv_from(NULL, &datagram); }
static int sock_recv_batch(void) { size_t n; return rs_socket_recv_batch(NULL, &datagram, 1, &n); }

/* pipe */
static int pipe_new_no_read_loop(void) {
    rs_pipe_read_end_t *r;
    rs_pipe_write_end_t *w;
    return rs_pipe_new(NULL, fx.loop, &rs_test_allocator, &r, &w);
}
static int pipe_new_no_write_loop(void) {
    rs_pipe_read_end_t *r;
    rs_pipe_write_end_t *w;
    return rs_pipe_new(fx.loop, NULL, &rs_test_allocator, &r, &w);
}
static int pipe_subscribe(void) { return rs_pipe_subscribe_to_readable_events(NULL, on_pipe_readable, NULL); }
static int pipe_read(void) { size_t n; return rs_pipe_read(NULL, &buf, &n); }
static int pipe_read_end_destroy(void) { rs_pipe_read_end_destroy(NULL); return DID_NOTHING; }
static int pipe_write(void) { return rs_pipe_write(NULL, some_data(), on_pipe_written, NULL); }
static int pipe_write_end_destroy(void) { rs_pipe_write_end_destroy(NULL); return DID_NOTHING; }

/* channel */
static int chan_new_without_loop(void) {
    rs_channel_options_t options = {.allocator = &rs_test_allocator};
    int err = ERR_UNSET;
    rs_channel_t *channel = rs_channel_new(&options, &err);
    return ptr_err_result(channel, err);
}
static int chan_acquire_hold(void) { rs_channel_acquire_hold(NULL); return DID_NOTHING; }
static int chan_release_hold(void) { rs_channel_release_hold(NULL); return DID_NOTHING; }
static int chan_get_loop(void) { return ptr_result(rs_channel_get_loop(NULL)); }
static int chan_is_on_thread(void) { return bool_result(rs_channel_is_on_loop_thread(NULL)); }
static int chan_first_slot(void) { return ptr_result(rs_channel_get_first_slot(NULL)); }
static int chan_is_writable(void) { return bool_result(rs_channel_is_writable(NULL)); }
static int chan_pending_write_bytes(void) { return count_result(rs_channel_get_pending_write_bytes(NULL)); }
static int chan_task_init(void) { rs_channel_task_init(NULL, on_channel_task, NULL, NULL); return DID_NOTHING; }
static int chan_acquire_message(void) {
    return ptr_result(rs_channel_acquire_message_from_pool(NULL, RS_IO_MESSAGE_APPLICATION_DATA, 64));
}
static int chan_release_message(void) { rs_channel_release_message_to_pool(NULL, NULL); return DID_NOTHING; }
static int chan_set_statistics(void) { return rs_channel_set_statistics_handler(NULL, 1000, on_statistics, NULL); }

/* slots */
static int slot_new(void) {
    int err = ERR_UNSET;
    rs_channel_slot_t *slot = rs_channel_slot_new(NULL, &err);
    return ptr_err_result(slot, err);
}
static int slot_insert_end(void) { return rs_channel_slot_insert_end(NULL, fx.slot); }
static int slot_insert_right(void) { return rs_channel_slot_insert_right(NULL, fx.slot); }
static int slot_insert_left(void) { return rs_channel_slot_insert_left(NULL, fx.slot); }
static int slot_remove(void) { return rs_channel_slot_remove(NULL); }
static int slot_replace_handler(void) { return rs_channel_slot_replace_handler(NULL, &handler); }
static int slot_set_handler(void) { return rs_channel_slot_set_handler(NULL, &handler); }
static int slot_get_handler(void) { return ptr_result(rs_channel_slot_get_handler(NULL)); }
static int slot_get_left(void) { return ptr_result(rs_channel_slot_get_left(NULL)); }
static int slot_get_right(void) { return ptr_result(rs_channel_slot_get_right(NULL)); }
static int slot_get_channel(void) { return ptr_result(rs_channel_slot_get_channel(NULL)); }
static int slot_send_message(void) { return rs_channel_slot_send_message(NULL, &message, RS_CHANNEL_DIR_READ); }
static int slot_increment_window(void) { return rs_channel_slot_increment_read_window(NULL, 1); }
static int slot_downstream_window(void) { return count_result(rs_channel_slot_downstream_read_window(NULL)); }
static int slot_upstream_overhead(void) { return count_result(rs_channel_slot_upstream_message_overhead(NULL)); }
static int slot_add_pending(void) { rs_channel_slot_add_pending_write_bytes(NULL, 1); return DID_NOTHING; }
static int slot_shutdown_complete(void) {
    return rs_channel_slot_on_handler_shutdown_complete(NULL, RS_CHANNEL_DIR_READ, RS_OK, false);
}

/* socket handler */
static int sh_new(void) {
    int err = ERR_UNSET;
    rs_channel_handler_t *h = rs_socket_handler_new(&rs_test_allocator, NULL, NULL, &err);
    return ptr_err_result(h, err);
}
static int sh_get_socket(void) { return ptr_result(rs_socket_handler_get_socket(NULL)); }

/* testing channel */
static int tc_destroy(void) { rs_testing_channel_destroy(NULL); return DID_NOTHING; }
static int tc_get_channel(void) { return ptr_result(rs_testing_channel_get_channel(NULL)); }
static int tc_get_loop(void) { return ptr_result(rs_testing_channel_get_loop(NULL)); }
static int tc_add_handler(void) { return rs_testing_channel_add_handler(NULL, &handler); }
static int tc_run(void) { return rs_testing_channel_run(NULL); }
static int tc_push_read(void) { return rs_testing_channel_push_read(NULL, some_data()); }
static int tc_pending_read(void) { return count_result(rs_testing_channel_pending_read_bytes(NULL)); }
static int tc_drain_written(void) { return rs_testing_channel_drain_written(NULL, &buf); }
static int tc_pending_write(void) { return count_result(rs_testing_channel_pending_write_bytes(NULL)); }
static int tc_set_write_limit(void) { rs_testing_channel_set_write_limit(NULL, 1); return DID_NOTHING; }
static int tc_withhold_window(void) { rs_testing_channel_withhold_window(NULL, true); return DID_NOTHING; }
static int tc_inject_reset(void) { rs_testing_channel_inject_reset(NULL); return DID_NOTHING; }
static int tc_push_eof(void) { rs_testing_channel_push_eof(NULL); return DID_NOTHING; }
/* false, with *error_out zeroed (RS_OK) like any out of a non-int call */
static int tc_is_shut_down(void) {
    int err = ERR_UNSET;
    bool shut = rs_testing_channel_is_shut_down(NULL, &err);
    return shut || err != RS_OK ? GOT_OTHER : GOT_FALSE;
}

/* ------------------------------------- NULL arguments next to valid handles */

static int loop_next_deadline_no_out(void) { return rs_event_loop_next_deadline(fx.loop, NULL); }
static int loop_get_fd_no_out(void) { return rs_event_loop_get_fd(fx.loop, NULL); }
static int loop_cancel_no_task(void) { return rs_event_loop_cancel_task(fx.loop, NULL); }
static int loop_subscribe_no_handle(void) {
    return rs_event_loop_subscribe(fx.loop, NULL, RS_IO_READABLE, on_io, NULL);
}
static int loop_update_no_handle(void) { return rs_event_loop_update_subscription(fx.loop, NULL, RS_IO_READABLE); }
static int loop_unsubscribe_no_handle(void) { return rs_event_loop_unsubscribe(fx.loop, NULL); }
static int local_put_no_key(void) { return rs_event_loop_put_local_object(fx.loop, NULL, &local_key, NULL, NULL); }
static int loop_get_stats_no_out(void) { rs_event_loop_get_stats(fx.loop, NULL); return DID_NOTHING; }
static int signal_new_no_fn(void) { rs_signal_watcher_t *w; return rs_signal_watcher_new(fx.loop, WATCHED_SIGNAL, NULL, NULL, &w); }
static int signal_new_no_out(void) { return rs_signal_watcher_new(fx.loop, WATCHED_SIGNAL, on_signal, NULL, NULL); }
static int sock_join_no_group(void) { return rs_socket_join_multicast_group(fx.udp, NULL, NULL, 0); }
static int sock_leave_no_group(void) { return rs_socket_leave_multicast_group(fx.udp, NULL, NULL, 0); }
/* An async tied to no loop: sending does nothing, cleaning it up is RS_EINVAL. */
static int async_without_loop(void) {
    rs_event_loop_async_t async;
    rs_event_loop_async_init(&async, NULL, on_async, NULL);
    rs_event_loop_async_send(&async);
    return rs_event_loop_async_cleanup(&async);
}

static int sock_bind_no_endpoint(void) { return rs_socket_bind(fx.tcp, NULL); }
static int sock_bound_address_no_out(void) { return rs_socket_get_bound_address(fx.tcp, NULL); }
static int sock_remote_address_no_out(void) { return rs_socket_get_remote_address(fx.tcp, NULL); }
static int sock_start_accept_no_loop(void) { return rs_socket_start_accept(fx.tcp, NULL, on_accept, NULL); }
static int sock_connect_no_endpoint(void) { return rs_socket_connect(fx.tcp, NULL, fx.loop, on_connect, NULL); }
static int sock_connect_no_loop(void) { return rs_socket_connect(fx.tcp, &endpoint, NULL, on_connect, NULL); }
static int sock_assign_no_loop(void) { return rs_socket_assign_to_loop(fx.tcp, NULL); }
static int sock_read_no_buf(void) { size_t n; return rs_socket_read(fx.tcp, NULL, &n); }
static int loop_schedule_now_no_task(void) { return rs_event_loop_schedule_task_now(fx.loop, NULL); }
static int loop_schedule_serialized_no_task(void) { return rs_event_loop_schedule_task_now_serialized(fx.loop, NULL); }
static int loop_schedule_future_no_task(void) { return rs_event_loop_schedule_task_future(fx.loop, NULL, 1); }
static int chan_schedule_now_no_task(void) { return rs_channel_schedule_task_now(fx.channel, NULL); }
static int chan_schedule_future_no_task(void) { return rs_channel_schedule_task_future(fx.channel, NULL, 1); }
static int sock_write_no_callback(void) { return rs_socket_write(fx.tcp, rs_byte_cursor_from_array("x", 1), NULL, NULL); }
static int sock_readv_no_bufs(void) { size_t n; return rs_socket_readv(fx.tcp, NULL, 1, &n); }
static int sock_send_batch_no_datagrams(void) { size_t n; return rs_socket_send_batch(fx.udp, NULL, 1, &n); }
static int sock_send_batch_no_out(void) { return rs_socket_send_batch(fx.udp, &datagram, 1, NULL); }
static int sock_recv_from_no_datagram(void) { return rs_socket_recv_from(fx.udp, NULL); }
static int sock_recv_batch_no_datagrams(void) { size_t n; return rs_socket_recv_batch(fx.udp, NULL, 1, &n); }
static int sock_recv_batch_no_out(void) { return rs_socket_recv_batch(fx.udp, &datagram, 1, NULL); }

static int pipe_new_no_read_out(void) {
    rs_pipe_write_end_t *w;
    return rs_pipe_new(fx.loop, fx.loop, &rs_test_allocator, NULL, &w);
}
static int pipe_new_no_write_out(void) {
    rs_pipe_read_end_t *r;
    return rs_pipe_new(fx.loop, fx.loop, &rs_test_allocator, &r, NULL);
}
static int pipe_read_no_buf(void) { size_t n; return rs_pipe_read(fx.read_end, NULL, &n); }

static int slot_insert_end_no_slot(void) { return rs_channel_slot_insert_end(fx.channel, NULL); }
static int slot_insert_right_no_slot(void) { return rs_channel_slot_insert_right(fx.slot, NULL); }
static int slot_insert_left_no_slot(void) { return rs_channel_slot_insert_left(fx.slot, NULL); }
static int slot_set_no_handler(void) { return rs_channel_slot_set_handler(fx.slot, NULL); }
static int slot_replace_no_handler(void) { return rs_channel_slot_replace_handler(fx.slot, NULL); }
static int slot_send_no_message(void) { return rs_channel_slot_send_message(fx.slot, NULL, RS_CHANNEL_DIR_READ); }
static int chan_release_no_message(void) { rs_channel_release_message_to_pool(fx.channel, NULL); return DID_NOTHING; }

static int tc_add_no_handler(void) { return rs_testing_channel_add_handler(fx.testing, NULL); }
static int tc_drain_no_out(void) { return rs_testing_channel_drain_written(fx.testing, NULL); }

/* ------------------------------------------------------------------ runner */

typedef struct row {
    const char *call;
    int (*fn)(void);
    int expected;
} row_t;

static const row_t null_handle_rows[] = {
    {"rs_event_loop_destroy(NULL)", loop_destroy, DID_NOTHING},
    {"rs_event_loop_schedule_task_now(NULL, &task)", loop_schedule_now, RS_EINVAL},
    {"rs_event_loop_schedule_task_now_serialized(NULL, &task)", loop_schedule_serialized, RS_EINVAL},
    {"rs_event_loop_schedule_task_future(NULL, &task, 1)", loop_schedule_future, RS_EINVAL},
    {"rs_event_loop_group_destroy(NULL)", group_destroy, RS_EINVAL},
    {"rs_channel_destroy(NULL)", chan_destroy, DID_NOTHING},
    {"rs_channel_shutdown(NULL, RS_OK)", chan_shutdown, RS_EINVAL},
    {"rs_channel_shutdown_abortively(NULL, RS_OK)", chan_shutdown_abortively, RS_EINVAL},
    {"rs_channel_schedule_task_now(NULL, &task)", chan_schedule_now, RS_EINVAL},
    {"rs_channel_schedule_task_future(NULL, &task, 1)", chan_schedule_future, RS_EINVAL},
    {"rs_socket_write(NULL, data, on_written, NULL)", sock_write, RS_EINVAL},
    {"rs_event_loop_get_backend(NULL)", loop_get_backend, RS_EVENT_LOOP_BACKEND_DEFAULT},
    {"rs_event_loop_start(NULL)", loop_start, RS_EINVAL},
    {"rs_event_loop_stop(NULL)", loop_stop, RS_EINVAL},
    {"rs_event_loop_wait(NULL)", loop_wait, RS_EINVAL},
    {"rs_event_loop_run_once(NULL, 0)", loop_run_once, RS_EINVAL},
    {"rs_event_loop_next_deadline(NULL, &d)", loop_next_deadline, RS_EINVAL},
    {"rs_event_loop_get_fd(NULL, &fd)", loop_get_fd, RS_EINVAL},
    {"rs_event_loop_cancel_task(NULL, task)", loop_cancel_task, RS_EINVAL},
    {"rs_event_loop_now_ns(NULL)", loop_now_ns, GOT_ZERO},
    {"rs_event_loop_is_on_loop_thread(NULL)", loop_is_on_thread, GOT_FALSE},
    {"rs_event_loop_subscribe(NULL, handle, ...)", loop_subscribe, RS_EINVAL},
    {"rs_event_loop_update_subscription(NULL, handle, ...)", loop_update, RS_EINVAL},
    {"rs_event_loop_unsubscribe(NULL, handle)", loop_unsubscribe, RS_EINVAL},
    {"rs_event_loop_async_init(NULL, loop, ...)", async_init, DID_NOTHING},
    {"rs_event_loop_async_send(NULL)", async_send, DID_NOTHING},
    {"rs_event_loop_async_cleanup(NULL)", async_cleanup, RS_EINVAL},
    {"rs_signal_watcher_new(NULL, signum, ...)", signal_new, RS_EINVAL},
    {"rs_signal_watcher_destroy(NULL)", signal_destroy, RS_EINVAL},
    {"rs_signal_watcher_get_signum(NULL)", signal_get_signum, GOT_ZERO},
    {"rs_socket_set_tcp_nodelay(NULL, true)", sock_set_nodelay, RS_EINVAL},
    {"rs_socket_set_keepalive(NULL, ...)", sock_set_keepalive, RS_EINVAL},
    {"rs_socket_set_ttl(NULL, 64)", sock_set_ttl, RS_EINVAL},
    {"rs_socket_join_multicast_group(NULL, group, ...)", sock_join, RS_EINVAL},
    {"rs_socket_leave_multicast_group(NULL, group, ...)", sock_leave, RS_EINVAL},
    {"rs_socket_set_multicast_interface(NULL, ...)", sock_mc_interface, RS_EINVAL},
    {"rs_socket_set_multicast_loop(NULL, true)", sock_mc_loop, RS_EINVAL},
    {"rs_socket_set_multicast_ttl(NULL, 1)", sock_mc_ttl, RS_EINVAL},
    {"rs_socket_set_broadcast(NULL, true)", sock_broadcast, RS_EINVAL},
    {"rs_event_loop_put_local_object(NULL, key, ...)", local_put, RS_EINVAL},
    {"rs_event_loop_get_local_object(NULL, key, &o)", local_get, RS_EINVAL},
    {"rs_event_loop_remove_local_object(NULL, key)", local_remove, RS_EINVAL},
    {"rs_event_loop_get_load_factor(NULL)", loop_load_factor, GOT_ZERO},
    {"rs_event_loop_get_stats(NULL, &stats) zeroes stats", loop_get_stats, GOT_ZERO},
    {"rs_event_loop_group_get_loop_count(NULL)", group_loop_count, GOT_ZERO},
    {"rs_event_loop_group_get_loop_at(NULL, 0)", group_loop_at, GOT_NULL},
    {"rs_event_loop_group_get_next_loop(NULL)", group_next_loop, GOT_NULL},
    {"rs_task_init(NULL, ...)", task_init, DID_NOTHING},
    {"rs_task_is_scheduled(NULL)", task_is_scheduled, GOT_FALSE},
    {"rs_socket_destroy(NULL)", sock_destroy, DID_NOTHING},
    {"rs_socket_close(NULL)", sock_close, RS_EINVAL},
    {"rs_socket_is_open(NULL)", sock_is_open, GOT_FALSE},
    {"rs_socket_bind(NULL, endpoint)", sock_bind, RS_EINVAL},
    {"rs_socket_get_bound_address(NULL, &out)", sock_bound_address, RS_EINVAL},
    {"rs_socket_get_remote_address(NULL, &out)", sock_remote_address, RS_EINVAL},
    {"rs_socket_listen(NULL, 0)", sock_listen, RS_EINVAL},
    {"rs_socket_start_accept(NULL, loop, ...)", sock_start_accept, RS_EINVAL},
    {"rs_socket_stop_accept(NULL)", sock_stop_accept, RS_EINVAL},
    {"rs_socket_connect(NULL, endpoint, loop, ...)", sock_connect, RS_EINVAL},
    {"rs_socket_assign_to_loop(NULL, loop)", sock_assign, RS_EINVAL},
    {"rs_socket_get_loop(NULL)", sock_get_loop, GOT_NULL},
    {"rs_socket_subscribe_to_readable_events(NULL, ...)", sock_subscribe, RS_EINVAL},
    {"rs_socket_pause_reading(NULL)", sock_pause, RS_EINVAL},
    {"rs_socket_resume_reading(NULL)", sock_resume, RS_EINVAL},
    {"rs_socket_read(NULL, buf, &n)", sock_read, RS_EINVAL},
    {"rs_socket_readv(NULL, bufs, 1, &n)", sock_readv, RS_EINVAL},
    {"rs_socket_get_pending_write_bytes(NULL)", sock_pending_write, GOT_ZERO},
    {"rs_socket_shutdown_dir(NULL, BOTH)", sock_shutdown_dir, RS_EINVAL},
    {"rs_socket_get_fd(NULL)", sock_get_fd, -1},
    {"rs_socket_send_to(NULL, endpoint, data)", sock_send_to, RS_EINVAL},
    {"rs_socket_send_batch(NULL, datagrams, 1, &n)", sock_send_batch, RS_EINVAL},
    {"rs_socket_recv_from(NULL, datagram)", sock_recv_from, RS_EINVAL},
    {"rs_socket_recv_batch(NULL, datagrams, 1, &n)", sock_recv_batch, RS_EINVAL},
    {"rs_pipe_new(NULL, loop, ...)", pipe_new_no_read_loop, RS_EINVAL},
    {"rs_pipe_new(loop, NULL, ...)", pipe_new_no_write_loop, RS_EINVAL},
    {"rs_pipe_subscribe_to_readable_events(NULL, ...)", pipe_subscribe, RS_EINVAL},
    {"rs_pipe_read(NULL, buf, &n)", pipe_read, RS_EINVAL},
    {"rs_pipe_read_end_destroy(NULL)", pipe_read_end_destroy, DID_NOTHING},
    {"rs_pipe_write(NULL, data, ...)", pipe_write, RS_EINVAL},
    {"rs_pipe_write_end_destroy(NULL)", pipe_write_end_destroy, DID_NOTHING},
    {"rs_channel_new(options with a NULL loop, &err)", chan_new_without_loop, RS_EINVAL},
    {"rs_channel_acquire_hold(NULL)", chan_acquire_hold, DID_NOTHING},
    {"rs_channel_release_hold(NULL)", chan_release_hold, DID_NOTHING},
    {"rs_channel_get_loop(NULL)", chan_get_loop, GOT_NULL},
    {"rs_channel_is_on_loop_thread(NULL)", chan_is_on_thread, GOT_FALSE},
    {"rs_channel_get_first_slot(NULL)", chan_first_slot, GOT_NULL},
    {"rs_channel_is_writable(NULL)", chan_is_writable, GOT_FALSE},
    {"rs_channel_get_pending_write_bytes(NULL)", chan_pending_write_bytes, GOT_ZERO},
    {"rs_channel_task_init(NULL, ...)", chan_task_init, DID_NOTHING},
    {"rs_channel_acquire_message_from_pool(NULL, ...)", chan_acquire_message, GOT_NULL},
    {"rs_channel_release_message_to_pool(NULL, NULL)", chan_release_message, DID_NOTHING},
    {"rs_channel_set_statistics_handler(NULL, ...)", chan_set_statistics, RS_EINVAL},
    {"rs_channel_slot_new(NULL, &err)", slot_new, RS_EINVAL},
    {"rs_channel_slot_insert_end(NULL, slot)", slot_insert_end, RS_EINVAL},
    {"rs_channel_slot_insert_right(NULL, slot)", slot_insert_right, RS_EINVAL},
    {"rs_channel_slot_insert_left(NULL, slot)", slot_insert_left, RS_EINVAL},
    {"rs_channel_slot_remove(NULL)", slot_remove, RS_EINVAL},
    {"rs_channel_slot_replace_handler(NULL, handler)", slot_replace_handler, RS_EINVAL},
    {"rs_channel_slot_set_handler(NULL, handler)", slot_set_handler, RS_EINVAL},
    {"rs_channel_slot_get_handler(NULL)", slot_get_handler, GOT_NULL},
    {"rs_channel_slot_get_left(NULL)", slot_get_left, GOT_NULL},
    {"rs_channel_slot_get_right(NULL)", slot_get_right, GOT_NULL},
    {"rs_channel_slot_get_channel(NULL)", slot_get_channel, GOT_NULL},
    {"rs_channel_slot_send_message(NULL, message, READ)", slot_send_message, RS_EINVAL},
    {"rs_channel_slot_increment_read_window(NULL, 1)", slot_increment_window, RS_EINVAL},
    {"rs_channel_slot_downstream_read_window(NULL)", slot_downstream_window, GOT_ZERO},
    {"rs_channel_slot_upstream_message_overhead(NULL)", slot_upstream_overhead, GOT_ZERO},
    {"rs_channel_slot_add_pending_write_bytes(NULL, 1)", slot_add_pending, DID_NOTHING},
    {"rs_channel_slot_on_handler_shutdown_complete(NULL, ...)", slot_shutdown_complete, RS_EINVAL},
    {"rs_socket_handler_new(allocator, NULL, NULL, &err)", sh_new, RS_EINVAL},
    {"rs_socket_handler_get_socket(NULL)", sh_get_socket, GOT_NULL},
    {"rs_testing_channel_destroy(NULL)", tc_destroy, DID_NOTHING},
    {"rs_testing_channel_get_channel(NULL)", tc_get_channel, GOT_NULL},
    {"rs_testing_channel_get_loop(NULL)", tc_get_loop, GOT_NULL},
    {"rs_testing_channel_add_handler(NULL, handler)", tc_add_handler, RS_EINVAL},
    {"rs_testing_channel_run(NULL)", tc_run, RS_EINVAL},
    {"rs_testing_channel_push_read(NULL, data)", tc_push_read, RS_EINVAL},
    {"rs_testing_channel_pending_read_bytes(NULL)", tc_pending_read, GOT_ZERO},
    {"rs_testing_channel_drain_written(NULL, buf)", tc_drain_written, RS_EINVAL},
    {"rs_testing_channel_pending_write_bytes(NULL)", tc_pending_write, GOT_ZERO},
    {"rs_testing_channel_set_write_limit(NULL, 1)", tc_set_write_limit, DID_NOTHING},
    {"rs_testing_channel_withhold_window(NULL, true)", tc_withhold_window, DID_NOTHING},
    {"rs_testing_channel_inject_reset(NULL)", tc_inject_reset, DID_NOTHING},
    {"rs_testing_channel_push_eof(NULL)", tc_push_eof, DID_NOTHING},
    {"rs_testing_channel_is_shut_down(NULL, &err) (err RS_OK)", tc_is_shut_down, GOT_FALSE},
};

static const row_t null_argument_rows[] = {
    {"rs_event_loop_next_deadline(loop, NULL)", loop_next_deadline_no_out, RS_EINVAL},
    {"rs_event_loop_get_fd(loop, NULL)", loop_get_fd_no_out, RS_EINVAL},
    {"rs_event_loop_cancel_task(loop, NULL)", loop_cancel_no_task, RS_EINVAL},
    {"rs_event_loop_subscribe(loop, NULL, ...)", loop_subscribe_no_handle, RS_EINVAL},
    {"rs_event_loop_update_subscription(loop, NULL, ...)", loop_update_no_handle, RS_EINVAL},
    {"rs_event_loop_unsubscribe(loop, NULL)", loop_unsubscribe_no_handle, RS_EINVAL},
    {"rs_event_loop_put_local_object(loop, NULL, ...)", local_put_no_key, RS_EINVAL},
    {"rs_event_loop_get_stats(loop, NULL)", loop_get_stats_no_out, DID_NOTHING},
    {"rs_event_loop_async_cleanup(async initialised with a NULL loop)", async_without_loop, RS_EINVAL},
    {"rs_signal_watcher_new(loop, signum, NULL, ...)", signal_new_no_fn, RS_EINVAL},
    {"rs_signal_watcher_new(loop, signum, fn, ud, NULL)", signal_new_no_out, RS_EINVAL},
    {"rs_socket_join_multicast_group(udp, NULL, ...)", sock_join_no_group, RS_EINVAL},
    {"rs_socket_leave_multicast_group(udp, NULL, ...)", sock_leave_no_group, RS_EINVAL},
    {"rs_socket_bind(socket, NULL)", sock_bind_no_endpoint, RS_EINVAL},
    {"rs_socket_get_bound_address(socket, NULL)", sock_bound_address_no_out, RS_EINVAL},
    {"rs_socket_get_remote_address(socket, NULL)", sock_remote_address_no_out, RS_EINVAL},
    {"rs_socket_start_accept(socket, NULL, ...)", sock_start_accept_no_loop, RS_EINVAL},
    {"rs_socket_connect(socket, NULL, loop, ...)", sock_connect_no_endpoint, RS_EINVAL},
    {"rs_socket_connect(socket, endpoint, NULL, ...)", sock_connect_no_loop, RS_EINVAL},
    {"rs_socket_assign_to_loop(socket, NULL)", sock_assign_no_loop, RS_EINVAL},
    {"rs_socket_read(socket, NULL, &n)", sock_read_no_buf, RS_EINVAL},
    {"rs_event_loop_schedule_task_now(loop, NULL)", loop_schedule_now_no_task, RS_EINVAL},
    {"rs_event_loop_schedule_task_now_serialized(loop, NULL)", loop_schedule_serialized_no_task, RS_EINVAL},
    {"rs_event_loop_schedule_task_future(loop, NULL, 1)", loop_schedule_future_no_task, RS_EINVAL},
    {"rs_channel_schedule_task_now(channel, NULL)", chan_schedule_now_no_task, RS_EINVAL},
    {"rs_channel_schedule_task_future(channel, NULL, 1)", chan_schedule_future_no_task, RS_EINVAL},
    {"rs_socket_write(socket, data, NULL, NULL)", sock_write_no_callback, RS_EINVAL},
    {"rs_socket_readv(socket, NULL, 1, &n)", sock_readv_no_bufs, RS_EINVAL},
    {"rs_socket_send_batch(socket, NULL, 1, &n)", sock_send_batch_no_datagrams, RS_EINVAL},
    {"rs_socket_send_batch(socket, datagrams, 1, NULL)", sock_send_batch_no_out, RS_EINVAL},
    {"rs_socket_recv_from(socket, NULL)", sock_recv_from_no_datagram, RS_EINVAL},
    {"rs_socket_recv_batch(socket, NULL, 1, &n)", sock_recv_batch_no_datagrams, RS_EINVAL},
    {"rs_socket_recv_batch(socket, datagrams, 1, NULL)", sock_recv_batch_no_out, RS_EINVAL},
    {"rs_pipe_new(loop, loop, allocator, NULL, &w)", pipe_new_no_read_out, RS_EINVAL},
    {"rs_pipe_new(loop, loop, allocator, &r, NULL)", pipe_new_no_write_out, RS_EINVAL},
    {"rs_pipe_read(read_end, NULL, &n)", pipe_read_no_buf, RS_EINVAL},
    {"rs_channel_slot_insert_end(channel, NULL)", slot_insert_end_no_slot, RS_EINVAL},
    {"rs_channel_slot_insert_right(slot, NULL)", slot_insert_right_no_slot, RS_EINVAL},
    {"rs_channel_slot_insert_left(slot, NULL)", slot_insert_left_no_slot, RS_EINVAL},
    {"rs_channel_slot_set_handler(slot, NULL)", slot_set_no_handler, RS_EINVAL},
    {"rs_channel_slot_replace_handler(slot, NULL)", slot_replace_no_handler, RS_EINVAL},
    {"rs_channel_slot_send_message(slot, NULL, READ)", slot_send_no_message, RS_EINVAL},
    {"rs_channel_release_message_to_pool(channel, NULL)", chan_release_no_message, DID_NOTHING},
    {"rs_testing_channel_add_handler(testing, NULL)", tc_add_no_handler, RS_EINVAL},
    {"rs_testing_channel_drain_written(testing, NULL)", tc_drain_no_out, RS_EINVAL},
};

#define ROW_COUNT(rows) (sizeof(rows) / sizeof((rows)[0]))

/* cmocka reports a crash by its signal only; this says which call it was. */
static const char *volatile current_call;
static void (*cmocka_on_segv)(int);

static void say(const char *text) {
    ssize_t n = write(STDERR_FILENO, text, strlen(text));
    (void)n;
}

static void name_crashing_call(int sig) {
    say("crashed in ");
    say(current_call ? current_call : "?");
    say("\n");
    /* Returning re-runs the faulting access, which cmocka's handler then reports. */
    signal(sig, cmocka_on_segv);
}

static const char *result_name(int result) {
    switch (result) {
    case DID_NOTHING:
        return "did nothing";
    case GOT_NULL:
        return "NULL";
    case GOT_FALSE:
        return "false";
    case GOT_ZERO:
        return "zero";
    case GOT_OTHER:
        return "non-NULL, true or non-zero";
    default:
        return rs_err_name(result);
    }
}

static void run_rows(const row_t *rows, size_t count) {
    size_t failures = 0;
    size_t i;
    cmocka_on_segv = signal(SIGSEGV, name_crashing_call);
    for (i = 0; i < count; ++i) {
        int got;
        current_call = rows[i].call;
        got = rows[i].fn();
        if (got != rows[i].expected) {
            print_error("%s returned %d (%s), expected %d (%s)\n", rows[i].call, got, result_name(got),
                        rows[i].expected, result_name(rows[i].expected));
            ++failures;
        }
    }
    current_call = NULL;
    signal(SIGSEGV, cmocka_on_segv);
    assert_int_equal(failures, 0);
}

static void null_handle_returns_einval_or_does_nothing(void **state) {
    (void)state;
    fixture_setup();
    run_rows(null_handle_rows, ROW_COUNT(null_handle_rows));
    fixture_teardown();
}

static void null_required_argument_beside_valid_handle_returns_einval(void **state) {
    (void)state;
    fixture_setup();
    run_rows(null_argument_rows, ROW_COUNT(null_argument_rows));
    /* Nothing was linked, replaced or queued: the pipeline is as it was. */
    assert_ptr_equal(rs_channel_get_first_slot(fx.channel), fx.slot);
    assert_null(rs_channel_slot_get_right(fx.slot));
    assert_int_equal(rs_testing_channel_run(fx.testing), RS_OK);
    assert_false(rs_testing_channel_is_shut_down(fx.testing, NULL));
    fixture_teardown();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(null_handle_returns_einval_or_does_nothing),
        cmocka_unit_test(null_required_argument_beside_valid_handle_returns_einval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
