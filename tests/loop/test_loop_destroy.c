/*
 * Destroying a loop or a group with work still on it (issue 10, item 5), and
 * running a loop on the caller's thread with rs_event_loop_run.
 *
 * The house rule: destroying an object with work in flight completes each
 * piece once with RS_ECANCELED. A loop destroyed with open sockets closes
 * them and fires each pending callback once; one destroyed with live channels
 * shuts them down abortively. Objects their owners still hold afterwards are
 * detached, and their own destroy frees them. The leak-checking allocator
 * catches anything left; fds are checked closed with fcntl (on Windows,
 * sockets with getsockopt).
 * Only loopback addresses are used; every wait is bounded.
 */
#include "test_util.h"

#if !defined(_WIN32)
#include <fcntl.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>
#endif

#define WAIT_NS (20 * RS_NS_PER_SEC)
#define BIG_WRITE ((size_t)32 * 1024 * 1024)

#if defined(_WIN32)
static bool fd_is_closed(int fd) {
    int type = 0;
    int len = (int)sizeof(type);
    return getsockopt((SOCKET)fd, SOL_SOCKET, SO_TYPE, (char *)&type, &len) != 0 &&
           WSAGetLastError() == WSAENOTSOCK;
}
#else
static bool fd_is_closed(int fd) {
    return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}
#endif

static rs_event_loop_t *new_loop(rs_event_loop_backend_t b) {
    rs_event_loop_options_t o;
    rs_event_loop_t *loop;
    int err;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.backend = b;
    loop = rs_event_loop_new(&o, &err);
    assert_non_null(loop);
    return loop;
}

/* ---- sockets left open ---- */

typedef struct calls {
    int count;
    int last_error;
} calls_t;

typedef struct sockets_world {
    rs_socket_t *listener;
    rs_socket_t *client;   /* connected, with a big write the peer never reads */
    rs_socket_t *accepted; /* with a reader */
    rs_socket_t *pending;  /* connect started, never run */
    rs_pipe_read_end_t *pipe_in;
    rs_pipe_write_end_t *pipe_out;
    calls_t accept_ok, accept_err, connect, reader, write, pending_connect, pipe_reader;
} sockets_world_t;

static void record(calls_t *c, int error) {
    c->count++;
    c->last_error = error;
}

static void on_accept(rs_socket_t *listener, int error, rs_socket_t *socket, void *user_data) {
    sockets_world_t *w = (sockets_world_t *)user_data;
    (void)listener;
    if (error) {
        record(&w->accept_err, error);
        return;
    }
    record(&w->accept_ok, error);
    w->accepted = socket;
}

static void on_connect(rs_socket_t *socket, int error, void *user_data) {
    (void)socket;
    record(&((sockets_world_t *)user_data)->connect, error);
}

static void on_pending_connect(rs_socket_t *socket, int error, void *user_data) {
    (void)socket;
    record(&((sockets_world_t *)user_data)->pending_connect, error);
}

static void on_readable(rs_socket_t *socket, int error, void *user_data) {
    (void)socket;
    if (error) { /* readiness itself is not counted: nobody sends to it */
        record(&((sockets_world_t *)user_data)->reader, error);
    }
}

static void on_written(rs_socket_t *socket, int error, size_t bytes_written, void *user_data) {
    (void)socket;
    (void)bytes_written;
    record(&((sockets_world_t *)user_data)->write, error);
}

static void on_pipe_readable(rs_pipe_read_end_t *end, int error, void *user_data) {
    (void)end;
    if (error) {
        record(&((sockets_world_t *)user_data)->pipe_reader, error);
    }
}

static rs_socket_t *new_tcp_socket(void) {
    rs_socket_options_t so;
    rs_socket_t *s;
    memset(&so, 0, sizeof(so));
    so.allocator = &rs_test_allocator;
    so.type = RS_SOCKET_STREAM;
    so.domain = RS_SOCKET_DOMAIN_IPV4;
    s = rs_socket_new(&so, NULL);
    assert_non_null(s);
    return s;
}

static void open_sockets(sockets_world_t *w, rs_event_loop_t *loop) {
    rs_endpoint_t any, bound;
    static uint8_t big[BIG_WRITE];
    assert_int_equal(rs_endpoint_from_ip(&any, "127.0.0.1", 0), RS_OK);
    w->listener = new_tcp_socket();
    assert_int_equal(rs_socket_bind(w->listener, &any), RS_OK);
    assert_int_equal(rs_socket_listen(w->listener, 16), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(w->listener, &bound), RS_OK);
    assert_int_equal(rs_socket_start_accept(w->listener, loop, on_accept, w), RS_OK);
    w->client = new_tcp_socket();
    assert_int_equal(rs_socket_connect(w->client, &bound, loop, on_connect, w), RS_OK);
    RS_TEST_RUN_UNTIL(loop, w->connect.count == 1 && w->accept_ok.count == 1);
    assert_int_equal(w->connect.last_error, RS_OK);
    assert_int_equal(rs_socket_assign_to_loop(w->accepted, loop), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(w->accepted, on_readable, w), RS_OK);
    /* More than the socket buffers hold: part of it stays queued. */
    assert_int_equal(rs_socket_write(w->client, rs_byte_cursor_from_array(big, sizeof(big)), on_written, w),
                     RS_OK);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    w->pending = new_tcp_socket();
    assert_int_equal(rs_socket_connect(w->pending, &bound, loop, on_pending_connect, w), RS_OK);
    assert_int_equal(rs_pipe_new(loop, loop, &rs_test_allocator, &w->pipe_in, &w->pipe_out), RS_OK);
    assert_int_equal(rs_pipe_subscribe_to_readable_events(w->pipe_in, on_pipe_readable, w), RS_OK);
}

static void loop_destroy_closes_open_sockets(rs_event_loop_backend_t b) {
    sockets_world_t w;
    rs_event_loop_t *loop = new_loop(b);
    int fds[4];
    size_t i;
    memset(&w, 0, sizeof(w));
    open_sockets(&w, loop);
    fds[0] = rs_socket_get_fd(w.listener);
    fds[1] = rs_socket_get_fd(w.client);
    fds[2] = rs_socket_get_fd(w.accepted);
    fds[3] = rs_socket_get_fd(w.pending);
    for (i = 0; i < 4; ++i) {
        assert_false(fd_is_closed(fds[i]));
    }

    rs_event_loop_destroy(loop);

    for (i = 0; i < 4; ++i) {
        assert_true(fd_is_closed(fds[i]));
    }
    assert_false(rs_socket_is_open(w.client));
    assert_null(rs_socket_get_loop(w.client)); /* detached: the loop is gone */
    assert_int_equal(w.accept_err.count, 1);
    assert_int_equal(w.accept_err.last_error, RS_ECANCELED);
    assert_int_equal(w.reader.count, 1);
    assert_int_equal(w.reader.last_error, RS_ECANCELED);
    assert_int_equal(w.write.count, 1);
    assert_int_equal(w.write.last_error, RS_ECANCELED);
    assert_int_equal(w.pipe_reader.count, 1);
    assert_int_equal(w.pipe_reader.last_error, RS_ECANCELED);
    /* Loopback may finish the handshake before the loop ever polls it; either
     * way the callback fires exactly once. */
    assert_int_equal(w.pending_connect.count, 1);
    assert_true(w.pending_connect.last_error == RS_ECANCELED || w.pending_connect.last_error == RS_OK);
    assert_int_equal(w.connect.count, 1);

    /* The owners' destroy calls free them here, without the loop. */
    rs_socket_destroy(w.listener);
    rs_socket_destroy(w.client);
    rs_socket_destroy(w.accepted);
    rs_socket_destroy(w.pending);
    rs_pipe_read_end_destroy(w.pipe_in);
    rs_pipe_write_end_destroy(w.pipe_out);
}
RS_TEST_PER_BACKEND(, loop_destroy_closes_open_sockets)

/* A socket its owner destroys inside the RS_ECANCELED callback is freed there. */
static void on_readable_destroy(rs_socket_t *socket, int error, void *user_data) {
    if (error) {
        (*(int *)user_data)++;
        rs_socket_destroy(socket);
    }
}

static void on_accept_keep(rs_socket_t *listener, int error, rs_socket_t *socket, void *user_data) {
    (void)listener;
    if (!error) {
        *(rs_socket_t **)user_data = socket;
    }
}

static void on_connect_count(rs_socket_t *socket, int error, void *user_data) {
    (void)socket;
    (void)error;
    (*(int *)user_data)++;
}

static void socket_destroyed_in_its_canceled_callback(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = new_loop(b);
    rs_socket_t *listener = new_tcp_socket();
    rs_socket_t *client = new_tcp_socket();
    rs_socket_t *accepted = NULL;
    rs_endpoint_t any, bound;
    int connected = 0, canceled = 0;
    assert_int_equal(rs_endpoint_from_ip(&any, "127.0.0.1", 0), RS_OK);
    assert_int_equal(rs_socket_bind(listener, &any), RS_OK);
    assert_int_equal(rs_socket_listen(listener, 4), RS_OK);
    assert_int_equal(rs_socket_get_bound_address(listener, &bound), RS_OK);
    assert_int_equal(rs_socket_start_accept(listener, loop, on_accept_keep, &accepted), RS_OK);
    assert_int_equal(rs_socket_connect(client, &bound, loop, on_connect_count, &connected), RS_OK);
    RS_TEST_RUN_UNTIL(loop, connected == 1 && accepted != NULL);
    assert_int_equal(rs_socket_assign_to_loop(accepted, loop), RS_OK);
    assert_int_equal(rs_socket_subscribe_to_readable_events(accepted, on_readable_destroy, &canceled), RS_OK);
    rs_event_loop_destroy(loop);
    assert_int_equal(canceled, 1);
    rs_socket_destroy(listener);
    rs_socket_destroy(client);
}
RS_TEST_PER_BACKEND(, socket_destroyed_in_its_canceled_callback)

/* ---- channels left live ---- */

typedef struct channel_calls {
    int setups, shutdowns, shutdown_error;
} channel_calls_t;

static void on_channel_setup(rs_channel_t *channel, int error, void *user_data) {
    (void)channel;
    (void)error;
    ((channel_calls_t *)user_data)->setups++;
}

static void on_channel_shutdown(rs_channel_t *channel, int error, void *user_data) {
    channel_calls_t *c = (channel_calls_t *)user_data;
    (void)channel;
    c->shutdowns++;
    c->shutdown_error = error;
}

/* The owner keeps the channel past its shutdown: after the loop is gone, the
 * channel is detached and rs_channel_destroy frees it on this thread. */
static void loop_destroy_shuts_live_channel_down(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = new_loop(b);
    rs_channel_options_t co;
    channel_calls_t calls;
    rs_channel_t *channel;
    memset(&calls, 0, sizeof(calls));
    memset(&co, 0, sizeof(co));
    co.allocator = &rs_test_allocator;
    co.loop = loop;
    co.on_setup_completed = on_channel_setup;
    co.on_shutdown_completed = on_channel_shutdown;
    co.user_data = &calls;
    channel = rs_channel_new(&co, NULL);
    assert_non_null(channel);
    RS_TEST_RUN_UNTIL(loop, calls.setups == 1);
    rs_event_loop_destroy(loop);
    assert_int_equal(calls.shutdowns, 1);
    assert_int_equal(calls.shutdown_error, RS_ECANCELED);
    assert_null(rs_channel_get_loop(channel));
    assert_int_equal(rs_channel_shutdown(channel, RS_OK), RS_OK); /* harmless: already shut down */
    rs_channel_destroy(channel);
}
RS_TEST_PER_BACKEND(, loop_destroy_shuts_live_channel_down)

/* A group destroyed under live bootstrapped connections and a live listener:
 * every channel shuts down once with RS_ECANCELED, every socket is closed,
 * and the listener, ended by the loop, is freed by destroy_listener. */
#define GROUP_CONNECTIONS 8

typedef struct group_world {
    rs_mutex_t lock;
    int client_setups, client_shutdowns, client_canceled;
    int server_setups, server_shutdowns, server_canceled;
    int listener_destroyed;
} group_world_t;

static int gw_get(group_world_t *w, int *field) {
    int v;
    rs_mutex_lock(&w->lock);
    v = *field;
    rs_mutex_unlock(&w->lock);
    return v;
}

static void gw_count(group_world_t *w, int *field, int *canceled, int error) {
    rs_mutex_lock(&w->lock);
    (*field)++;
    if (canceled && error == RS_ECANCELED) {
        (*canceled)++;
    }
    rs_mutex_unlock(&w->lock);
}

static void client_setup(rs_client_bootstrap_t *b, rs_channel_t *channel, int error, void *user_data) {
    group_world_t *w = (group_world_t *)user_data;
    (void)b;
    (void)channel;
    assert_int_equal(error, RS_OK);
    gw_count(w, &w->client_setups, NULL, error);
}

static void client_shutdown(rs_client_bootstrap_t *b, rs_channel_t *channel, int error, void *user_data) {
    group_world_t *w = (group_world_t *)user_data;
    (void)b;
    (void)channel;
    gw_count(w, &w->client_shutdowns, &w->client_canceled, error);
}

static void server_setup(rs_server_listener_t *l, rs_channel_t *channel, int error, void *user_data) {
    group_world_t *w = (group_world_t *)user_data;
    (void)l;
    (void)channel;
    gw_count(w, &w->server_setups, NULL, error);
}

static void server_shutdown(rs_server_listener_t *l, rs_channel_t *channel, int error, void *user_data) {
    group_world_t *w = (group_world_t *)user_data;
    (void)l;
    (void)channel;
    gw_count(w, &w->server_shutdowns, &w->server_canceled, error);
}

static void listener_destroyed(rs_server_listener_t *l, void *user_data) {
    group_world_t *w = (group_world_t *)user_data;
    (void)l;
    gw_count(w, &w->listener_destroyed, NULL, RS_OK);
}

static bool gw_wait(group_world_t *w, int *field, int value) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    while (gw_get(w, field) < value && rs_clock_now_ns() < deadline) {
        rs_thread_sleep_ns(RS_NS_PER_MS);
    }
    return gw_get(w, field) >= value;
}

static void group_destroy_ends_live_connections(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_group_options_t go;
    rs_server_bootstrap_options_t so;
    rs_client_bootstrap_options_t cbo;
    rs_server_listener_options_t lo;
    rs_client_connect_options_t co;
    rs_event_loop_group_t *group;
    rs_server_bootstrap_t *server;
    rs_client_bootstrap_t *client;
    rs_server_listener_t *listener;
    rs_endpoint_t address;
    group_world_t w;
    int i;
    memset(&address, 0, sizeof(address));
    memset(&w, 0, sizeof(w));
    assert_int_equal(rs_mutex_init(&w.lock), RS_OK);
    memset(&go, 0, sizeof(go));
    go.allocator = &rs_test_allocator;
    go.loop_count = 2;
    go.backend = b;
    group = rs_event_loop_group_new(&go, NULL);
    assert_non_null(group);
    memset(&so, 0, sizeof(so));
    so.allocator = &rs_test_allocator;
    so.group = group;
    server = rs_server_bootstrap_new(&so, NULL);
    assert_non_null(server);
    memset(&lo, 0, sizeof(lo));
    lo.host = "127.0.0.1";
    lo.on_incoming_setup = server_setup;
    lo.on_incoming_shutdown = server_shutdown;
    lo.on_listener_destroyed = listener_destroyed;
    lo.user_data = &w;
    listener = rs_server_bootstrap_new_listener(server, &lo, NULL);
    assert_non_null(listener);
    assert_int_equal(rs_server_listener_get_address(listener, &address), RS_OK);
    memset(&cbo, 0, sizeof(cbo));
    cbo.allocator = &rs_test_allocator;
    cbo.group = group;
    client = rs_client_bootstrap_new(&cbo, NULL);
    assert_non_null(client);
    memset(&co, 0, sizeof(co));
    co.host = "127.0.0.1";
    co.port = address.port;
    co.on_setup = client_setup;
    co.on_shutdown = client_shutdown;
    co.user_data = &w;
    for (i = 0; i < GROUP_CONNECTIONS; ++i) {
        assert_int_equal(rs_client_bootstrap_connect(client, &co), RS_OK);
    }
    assert_true(gw_wait(&w, &w.client_setups, GROUP_CONNECTIONS));
    assert_true(gw_wait(&w, &w.server_setups, GROUP_CONNECTIONS));
    rs_client_bootstrap_destroy(client);
    rs_server_bootstrap_destroy(server);

    assert_int_equal(rs_event_loop_group_destroy(group), RS_OK);

    assert_int_equal(w.client_shutdowns, GROUP_CONNECTIONS);
    assert_int_equal(w.server_shutdowns, GROUP_CONNECTIONS);
    assert_int_equal(w.client_canceled, GROUP_CONNECTIONS);
    assert_int_equal(w.server_canceled, GROUP_CONNECTIONS);
    assert_int_equal(w.listener_destroyed, 0);
    assert_int_equal(rs_server_bootstrap_destroy_listener(listener, false), RS_OK);
    assert_int_equal(w.listener_destroyed, 1);
    rs_mutex_cleanup(&w.lock);
}
RS_TEST_PER_BACKEND(, group_destroy_ends_live_connections)

/* ---- rs_event_loop_run ---- */

typedef struct run_ctx {
    rs_event_loop_t *loop;
    int ticks_left;
    int runs;
    int nested_run, nested_run_once, nested_start;
    rs_task_t task;
} run_ctx_t;

static void stop_after_ticks(rs_task_t *task, void *arg, rs_task_status_t status) {
    run_ctx_t *c = (run_ctx_t *)arg;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    c->runs++;
    c->nested_run = rs_event_loop_run(c->loop);
    c->nested_run_once = rs_event_loop_run_once(c->loop, 0);
    c->nested_start = rs_event_loop_start(c->loop);
    if (--c->ticks_left > 0) {
        rs_event_loop_schedule_task_now(c->loop, task);
    } else {
        assert_int_equal(rs_event_loop_stop(c->loop), RS_OK);
    }
}

static void run_until_stopped_from_a_callback(rs_event_loop_backend_t b) {
    run_ctx_t c;
    memset(&c, 0, sizeof(c));
    c.loop = new_loop(b);
    c.ticks_left = 5;
    rs_task_init(&c.task, stop_after_ticks, &c, "stop_after_ticks");
    rs_event_loop_schedule_task_now(c.loop, &c.task);
    assert_int_equal(rs_event_loop_run(c.loop), RS_OK);
    assert_int_equal(c.runs, 5);
    assert_int_equal(c.nested_run, RS_EBUSY);
    assert_int_equal(c.nested_run_once, RS_EBUSY);
    assert_int_equal(c.nested_start, RS_EBUSY);
    /* Each stop ends one run: a new run goes on until the next stop. */
    c.ticks_left = 2;
    rs_event_loop_schedule_task_now(c.loop, &c.task);
    assert_int_equal(rs_event_loop_run(c.loop), RS_OK);
    assert_int_equal(c.runs, 7);
    rs_event_loop_destroy(c.loop);
}
RS_TEST_PER_BACKEND(, run_until_stopped_from_a_callback)

static void count_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        (*(int *)arg)++;
    }
}

static void stop_later(void *arg) {
    rs_thread_sleep_ns(50 * RS_NS_PER_MS);
    rs_event_loop_stop((rs_event_loop_t *)arg);
}

static void run_stopped_from_another_thread_and_before(rs_event_loop_backend_t b) {
    RS_TEST_NEEDS_THREADS();
    rs_event_loop_t *loop = new_loop(b);
    rs_thread_t t;
    rs_task_t task;
    int ran = 0;
    /* Blocked with nothing to do: another thread's stop wakes it. */
    assert_int_equal(rs_thread_launch(&t, stop_later, loop, NULL), RS_OK);
    assert_int_equal(rs_event_loop_run(loop), RS_OK);
    assert_int_equal(rs_thread_join(&t), RS_OK);
    /* A stop before the run: one tick that does not block, then return. */
    rs_task_init(&task, count_task, &ran, "count");
    rs_event_loop_schedule_task_now(loop, &task);
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_run(loop), RS_OK);
    assert_int_equal(ran, 1);
    /* While the loop runs its own thread, run is refused. */
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    assert_int_equal(rs_event_loop_run(loop), RS_EBUSY);
    rs_event_loop_stop(loop);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    assert_int_equal(rs_event_loop_run(NULL), RS_EINVAL);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(, run_stopped_from_another_thread_and_before)

#if !defined(_WIN32) /* no SIGALRM there; the test above stops a run from another thread */
/* rs_event_loop_stop is async-signal-safe: a SIGALRM handler stops the run. */
static rs_event_loop_t *g_signal_loop;
static volatile sig_atomic_t g_signal_errno_kept = 1;

static void on_alarm(int signo) {
    int saved = errno;
    (void)signo;
    errno = 12345;
    rs_event_loop_stop(g_signal_loop);
    if (errno != 12345) {
        g_signal_errno_kept = 0;
    }
    errno = saved;
}

static void run_stopped_by_a_signal_handler(rs_event_loop_backend_t b) {
    struct sigaction sa, old;
    struct itimerval it;
    g_signal_loop = new_loop(b);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    memset(&it, 0, sizeof(it));
    it.it_value.tv_usec = 50 * 1000;
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    assert_int_equal(rs_event_loop_run(g_signal_loop), RS_OK);
    assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
    assert_true(g_signal_errno_kept);
    rs_event_loop_destroy(g_signal_loop);
    g_signal_loop = NULL;
}
RS_TEST_PER_BACKEND(, run_stopped_by_a_signal_handler)
#endif

int main(void) {
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(, loop_destroy_closes_open_sockets),
        RS_TEST_PER_BACKEND_TESTS(, socket_destroyed_in_its_canceled_callback),
        RS_TEST_PER_BACKEND_TESTS(, loop_destroy_shuts_live_channel_down),
        RS_TEST_PER_BACKEND_TESTS(, group_destroy_ends_live_connections),
        RS_TEST_PER_BACKEND_TESTS(, run_until_stopped_from_a_callback),
        RS_TEST_PER_BACKEND_TESTS(, run_stopped_from_another_thread_and_before),
#if !defined(_WIN32)
        RS_TEST_PER_BACKEND_TESTS(, run_stopped_by_a_signal_handler),
#endif
    };
#if !defined(_WIN32)
    signal(SIGPIPE, SIG_IGN);
#endif
    return cmocka_run_group_tests(tests, NULL, NULL);
}
