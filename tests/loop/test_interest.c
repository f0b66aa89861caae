/*
 * Interest in fds, at the edges every backend must get right: a second
 * subscriber of one fd, data and end-of-stream reported in one batch, many
 * interest changes deferred to one tick's end (more than one kernel batch),
 * a deferred change the kernel refuses, a direct one it refuses, and an
 * unsubscribe made by a task that the loop's destroy cancels.
 *
 * These come from a review of another kqueue port, where each was a bug; they
 * run on every backend (names end in _epoll, _poll, _kqueue). Every wait is
 * bounded.
 */
#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_NS (10 * RS_NS_PER_SEC)

static void make_socketpair(int fds[2]) {
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
}

/* Tick until *flag is set or WAIT_NS passes; false on timeout. */
static bool run_until_set(rs_event_loop_t *loop, const int *flag) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    while (!*flag && rs_clock_now_ns() < deadline) {
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
    }
    return *flag != 0;
}

static void run_ticks(rs_event_loop_t *loop, int n) {
    int i;
    for (i = 0; i < n; ++i) {
        assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    }
}

static void noop_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    (void)loop;
    (void)handle;
    (void)events;
    (void)user_data;
}

/* ---- one fd, one subscriber ---- */

/* kqueue would silently merge a second EV_ADD into the first knote and steal
 * its events; every backend refuses it instead, as epoll does. */
static void second_handle_on_the_same_fd_is_eexist(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = rs_test_loop_new(b);
    int fds[2];
    rs_io_handle_t first = {-1, NULL};
    rs_io_handle_t second = {-1, NULL};
    make_socketpair(fds);
    first.fd = fds[0];
    second.fd = fds[0];
    assert_int_equal(rs_event_loop_subscribe(loop, &first, RS_IO_READABLE, noop_cb, NULL), RS_OK);
    assert_int_equal(rs_event_loop_subscribe(loop, &second, RS_IO_WRITABLE, noop_cb, NULL), RS_EEXIST);
    assert_null(second.impl);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &first), RS_OK);
    /* once the first is gone, the fd is free again */
    assert_int_equal(rs_event_loop_subscribe(loop, &second, RS_IO_WRITABLE, noop_cb, NULL), RS_OK);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &second), RS_OK);
    rs_event_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND(interest_, second_handle_on_the_same_fd_is_eexist)

/* ---- data, then the end of the stream ---- */

#define EOF_BYTES 1000
#define EOF_READ_STEP 7

typedef struct eof_reader {
    rs_io_handle_t handle;
    size_t total;
    size_t total_at_eof;
    int events_seen;
    int eof;
} eof_reader_t;

/* Reads a few bytes per event, so that the data outlasts the first report. */
static void eof_reader_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    eof_reader_t *r = (eof_reader_t *)user_data;
    char buf[EOF_READ_STEP];
    ssize_t n;
    (void)events;
    r->events_seen++;
    n = read(handle->fd, buf, sizeof(buf));
    if (n > 0) {
        r->total += (size_t)n;
        return;
    }
    if (n == 0) {
        r->eof = 1;
        r->total_at_eof = r->total;
        rs_event_loop_unsubscribe(loop, handle);
    }
}

/* The data and the end of stream are both there before the loop first looks
 * (kqueue: one EVFILT_READ event carrying EV_EOF and the byte count): every
 * byte is read before the read that returns 0. */
static void data_and_eof_in_one_batch_deliver_all_data_first(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = rs_test_loop_new(b);
    int fds[2];
    char data[EOF_BYTES];
    eof_reader_t r;
    memset(data, 'd', sizeof(data));
    memset(&r, 0, sizeof(r));
    make_socketpair(fds);
    assert_int_equal(write(fds[1], data, sizeof(data)), (ssize_t)sizeof(data));
    close(fds[1]);
    r.handle.fd = fds[0];
    assert_int_equal(rs_event_loop_subscribe(loop, &r.handle, RS_IO_READABLE, eof_reader_cb, &r), RS_OK);
    assert_true(run_until_set(loop, &r.eof));
    assert_int_equal(r.total_at_eof, EOF_BYTES);
    assert_true(r.events_seen > EOF_BYTES / EOF_READ_STEP); /* reported again while data was left */
    assert_null(r.handle.impl);
    rs_event_loop_destroy(loop);
    close(fds[0]);
}
RS_TEST_PER_BACKEND(interest_, data_and_eof_in_one_batch_deliver_all_data_first)

/* ---- many deferred changes in one tick ---- */

/* More than one kernel batch (the kqueue and epoll backends take 256 events
 * per call), so queued changes outgrow the first event list. */
#define MANY 300

typedef struct many {
    rs_event_loop_t *loop;
    rs_io_handle_t handles[MANY];
    int peers[MANY];
    int events[MANY];
    int wanted; /* the mask each handle is switched to */
    int calls;
    int all_reported;
    rs_task_t task;
} many_t;

static void many_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    many_t *m = (many_t *)user_data;
    size_t i = (size_t)(handle - m->handles);
    (void)loop;
    if (!(events & m->wanted) || m->events[i] & m->wanted) {
        return;
    }
    m->events[i] |= events;
    if (++m->calls == MANY) {
        m->all_reported = 1;
    }
}

/* Inside a tick, as the socket layer does: the backend hears at the tick's end. */
static void many_switch_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    many_t *m = (many_t *)arg;
    size_t i;
    (void)task;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    for (i = 0; i < MANY; ++i) {
        assert_int_equal(rs__event_loop_set_interest(m->loop, &m->handles[i], m->wanted, many_cb, m), RS_OK);
    }
}

static void many_switch_to(many_t *m, int wanted) {
    m->wanted = wanted;
    m->calls = 0;
    m->all_reported = 0;
    memset(m->events, 0, sizeof(m->events));
    rs_task_init(&m->task, many_switch_task, m, "many_switch");
    assert_int_equal(rs_event_loop_schedule_task_now(m->loop, &m->task), RS_OK);
    assert_true(run_until_set(m->loop, &m->all_reported));
}

static bool raise_fd_limit(rlim_t wanted) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return false;
    }
    if (rl.rlim_cur >= wanted) {
        return true;
    }
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < wanted) {
        return false;
    }
    rl.rlim_cur = wanted;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

static void deferred_changes_beyond_one_batch_all_apply(rs_event_loop_backend_t b) {
    many_t *m = (many_t *)calloc(1, sizeof(many_t));
    size_t i;
    char c = 'x';
    assert_non_null(m);
    if (!raise_fd_limit(4 * MANY)) {
        free(m);
        skip(); /* fewer than 1200 fds allowed here */
    }
    m->loop = rs_test_loop_new(b);
    for (i = 0; i < MANY; ++i) {
        int fds[2];
        make_socketpair(fds);
        m->handles[i].fd = fds[0];
        m->handles[i].impl = NULL;
        m->peers[i] = fds[1];
    }
    many_switch_to(m, RS_IO_WRITABLE); /* 300 adds queued in one tick */
    for (i = 0; i < MANY; ++i) {
        assert_int_equal(write(m->peers[i], &c, 1), 1);
    }
    many_switch_to(m, RS_IO_READABLE); /* 300 modifies: write out, read in */
    for (i = 0; i < MANY; ++i) {
        assert_false(m->events[i] & RS_IO_WRITABLE); /* write interest is gone */
        assert_int_equal(rs_event_loop_unsubscribe(m->loop, &m->handles[i]), RS_OK);
        close(m->handles[i].fd);
        close(m->peers[i]);
    }
    rs_event_loop_destroy(m->loop);
    free(m);
}
RS_TEST_PER_BACKEND(interest_, deferred_changes_beyond_one_batch_all_apply)

/* ---- changes the kernel refuses ---- */

typedef struct refused {
    rs_event_loop_t *loop;
    rs_io_handle_t handle;
    rs_io_handle_t companion; /* always writable */
    rs_task_t task;
    int events;
    int error;
    int reported;
} refused_t;

static void refused_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    refused_t *r = (refused_t *)user_data;
    r->events |= events;
    r->error = rs__io_handle_error(handle);
    r->reported = 1;
    rs_event_loop_unsubscribe(loop, handle);
}

static void refused_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    refused_t *r = (refused_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        assert_int_equal(rs__event_loop_set_interest(r->loop, &r->handle, RS_IO_READABLE, refused_cb, r), RS_OK);
        /* A ready fd in the same batch: libkqueue drops the errors of a
         * kevent call whose wait times out with no event (FreeBSD returns the
         * errors at once), so the refusal is seen there too. */
        assert_int_equal(rs__event_loop_set_interest(r->loop, &r->companion, RS_IO_WRITABLE, noop_cb, NULL), RS_OK);
    }
}

/* A number that is no open fd: closed, and nothing opened since. */
static int closed_fd(void) {
    int fds[2];
    make_socketpair(fds);
    close(fds[1]);
    close(fds[0]);
    return fds[0];
}

/* An interest change deferred to the tick's end has no caller left to return
 * an error to: the owner hears RS_IO_ERROR once, and (epoll, kqueue) the
 * kernel's error through rs__io_handle_error. poll reports the bad fd as
 * POLLNVAL, an RS_IO_ERROR too. */
static void deferred_change_the_kernel_refuses_is_reported(rs_event_loop_backend_t b) {
    refused_t r;
    int fds[2];
    memset(&r, 0, sizeof(r));
    r.loop = rs_test_loop_new(b);
    make_socketpair(fds);
    r.companion.fd = fds[0];
    r.handle.fd = closed_fd(); /* after the pair, which would reuse its number */
    rs_task_init(&r.task, refused_task, &r, "refused");
    assert_int_equal(rs_event_loop_schedule_task_now(r.loop, &r.task), RS_OK);
    assert_true(run_until_set(r.loop, &r.reported));
    assert_true(r.events & RS_IO_ERROR);
    if (b != RS_EVENT_LOOP_BACKEND_POLL) {
        assert_int_equal(r.error, RS_EBADF);
    }
    assert_null(r.handle.impl);
    run_ticks(r.loop, 2);
    assert_int_equal(rs_event_loop_unsubscribe(r.loop, &r.companion), RS_OK);
    rs_event_loop_destroy(r.loop);
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND(interest_, deferred_change_the_kernel_refuses_is_reported)

/* A direct subscribe has its caller: the kernel's error comes back at once
 * and nothing stays subscribed. poll has no kernel call to refuse it (it
 * reports POLLNVAL later), so it is not part of this one. */
static void direct_subscribe_the_kernel_refuses_fails_now(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = rs_test_loop_new(b);
    rs_io_handle_t h = {-1, NULL};
    int fds[2];
    if (b == RS_EVENT_LOOP_BACKEND_POLL) {
        rs_event_loop_destroy(loop);
        skip();
    }
    h.fd = closed_fd();
    assert_int_equal(rs_event_loop_subscribe(loop, &h, RS_IO_READABLE | RS_IO_WRITABLE, noop_cb, NULL), RS_EBADF);
    assert_null(h.impl);
    /* and the fd number, once open, can be subscribed normally */
    make_socketpair(fds);
    h.fd = fds[0];
    assert_int_equal(rs_event_loop_subscribe(loop, &h, RS_IO_READABLE | RS_IO_WRITABLE, noop_cb, NULL), RS_OK);
    assert_int_equal(rs_event_loop_unsubscribe(loop, &h), RS_OK);
    rs_event_loop_destroy(loop);
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND(interest_, direct_subscribe_the_kernel_refuses_fails_now)

/* ---- unsubscribe from a task the destroy cancels ---- */

typedef struct canceled_unsub {
    rs_event_loop_t *loop;
    rs_io_handle_t handle;
    rs_task_t task;
    int status;
    int unsubscribe_result;
} canceled_unsub_t;

/* Owners clean up in their task whatever its status: a canceled task must
 * still be able to unsubscribe (the kernel's knote may already be gone, the
 * bookkeeping must not stay behind). */
static void canceled_unsub_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    canceled_unsub_t *c = (canceled_unsub_t *)arg;
    (void)task;
    c->status = (int)status;
    c->unsubscribe_result = rs_event_loop_unsubscribe(c->loop, &c->handle);
}

static void unsubscribe_in_a_task_canceled_by_destroy_cleans_up(rs_event_loop_backend_t b) {
    canceled_unsub_t c;
    int fds[2];
    memset(&c, 0, sizeof(c));
    c.status = -1;
    c.loop = rs_test_loop_new(b);
    make_socketpair(fds);
    c.handle.fd = fds[0];
    assert_int_equal(rs_event_loop_subscribe(c.loop, &c.handle, RS_IO_READABLE, noop_cb, NULL), RS_OK);
    rs_task_init(&c.task, canceled_unsub_task, &c, "canceled_unsub");
    assert_int_equal(rs_event_loop_schedule_task_future(c.loop, &c.task, rs_event_loop_now_ns(c.loop) + 3600 * RS_NS_PER_SEC),
                     RS_OK);
    run_ticks(c.loop, 1);
    rs_event_loop_destroy(c.loop); /* the leak-checking allocator sees every registration freed */
    assert_int_equal(c.status, RS_TASK_STATUS_CANCELED);
    assert_int_equal(c.unsubscribe_result, RS_OK);
    assert_null(c.handle.impl);
    close(fds[0]);
    close(fds[1]);
}
RS_TEST_PER_BACKEND(interest_, unsubscribe_in_a_task_canceled_by_destroy_cleans_up)

int main(void) {
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(interest_, second_handle_on_the_same_fd_is_eexist),
        RS_TEST_PER_BACKEND_TESTS(interest_, data_and_eof_in_one_batch_deliver_all_data_first),
        RS_TEST_PER_BACKEND_TESTS(interest_, deferred_changes_beyond_one_batch_all_apply),
        RS_TEST_PER_BACKEND_TESTS(interest_, deferred_change_the_kernel_refuses_is_reported),
        RS_TEST_PER_BACKEND_TESTS(interest_, direct_subscribe_the_kernel_refuses_fails_now),
        RS_TEST_PER_BACKEND_TESTS(interest_, unsubscribe_in_a_task_canceled_by_destroy_cleans_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
