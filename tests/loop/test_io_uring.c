/*
 * What only the io_uring backend has: the kernel refusing io_uring, a
 * submission queue that fills and a completion queue that overflows within one
 * tick, and the ring remade when the loop moves to another thread
 * (IORING_SETUP_SINGLE_ISSUER binds a ring to one thread). The loop contract
 * itself runs on io_uring in the per-backend suites.
 *
 * Every test skips, visibly, where this kernel or process cannot use io_uring.
 * Every wait is bounded.
 */
#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_NS (10 * RS_NS_PER_SEC)

static void skip_without_io_uring(void) {
    rs_test_io_uring_or_skip();
    if (!rs_event_loop_backend_is_available(RS_EVENT_LOOP_BACKEND_IO_URING)) {
        print_message("io_uring is not usable here (kernel, sysctl or seccomp): skipped\n");
        skip();
    }
}

static void make_socketpair(int fds[2]) {
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
}

/* ---- the kernel says no ---- */

/* io_uring_setup failing as it does under the io_uring_disabled sysctl
 * (EPERM), seccomp or an old kernel (ENOSYS), or the locked-memory limit
 * (ENOMEM): an explicit request gets RS_ENOTSUP, nothing leaks, and the
 * availability check says so too. */
static void refused_setup_is_not_supported(void **state) {
    static const int refusals[] = {EPERM, ENOSYS, ENOMEM, EINVAL};
    size_t i;
    (void)state;
    rs_test_io_uring_or_skip();
    for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); ++i) {
        rs_event_loop_options_t opts;
        int err = -1;
        memset(&opts, 0, sizeof(opts));
        opts.allocator = &rs_test_allocator;
        opts.backend = RS_EVENT_LOOP_BACKEND_IO_URING;
        rs__uring_test_setup_errno = refusals[i];
        assert_null(rs_event_loop_new(&opts, &err));
        assert_int_equal(err, RS_ENOTSUP);
        assert_false(rs_event_loop_backend_is_available(RS_EVENT_LOOP_BACKEND_IO_URING));
        rs__uring_test_setup_errno = 0;
    }
    /* other backends are untouched by it */
    {
        rs_event_loop_options_t opts;
        rs_event_loop_t *loop;
        int err = -1;
        memset(&opts, 0, sizeof(opts));
        opts.allocator = &rs_test_allocator;
        rs__uring_test_setup_errno = EPERM;
        loop = rs_event_loop_new(&opts, &err);
        rs__uring_test_setup_errno = 0;
        assert_non_null(loop);
        assert_int_equal(rs_event_loop_get_backend(loop), RS_EVENT_LOOP_BACKEND_EPOLL);
        rs_event_loop_destroy(loop);
    }
}

/* ---- tiny queues ---- */

#define CROWD 64

typedef struct crowd {
    rs_io_handle_t handles[CROWD];
    int peers[CROWD];
    int reported[CROWD];
    int done;
} crowd_t;

static void crowd_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    crowd_t *c = (crowd_t *)user_data;
    size_t i = (size_t)(handle - c->handles);
    char buf[16];
    assert_true(events & RS_IO_READABLE);
    assert_int_equal(read(handle->fd, buf, sizeof(buf)), 1);
    c->reported[i]++;
    c->done++;
    rs_event_loop_unsubscribe(loop, handle);
}

/* 64 readable fds on a ring with a 2-entry submission queue and a 2-entry
 * completion queue: the polls do not fit in one submission, and their
 * completions overflow the CQ (the kernel keeps them, IORING_FEAT_NODROP)
 * until the loop has room. Each is reported exactly once. */
static void tiny_queues_lose_no_completion(void **state) {
    crowd_t *c;
    rs_event_loop_t *loop;
    uint64_t deadline;
    size_t i;
    (void)state;
    skip_without_io_uring();
    c = (crowd_t *)calloc(1, sizeof(crowd_t));
    assert_non_null(c);
    rs__uring_test_sq_entries = 2;
    rs__uring_test_cq_entries = 2;
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    rs__uring_test_sq_entries = 0;
    rs__uring_test_cq_entries = 0;
    for (i = 0; i < CROWD; ++i) {
        int fds[2];
        make_socketpair(fds);
        c->handles[i].fd = fds[0];
        c->peers[i] = fds[1];
        assert_int_equal(write(fds[1], "x", 1), 1);
        assert_int_equal(rs_event_loop_subscribe(loop, &c->handles[i], RS_IO_READABLE, crowd_cb, c), RS_OK);
    }
    deadline = rs_clock_now_ns() + WAIT_NS;
    while (c->done < CROWD && rs_clock_now_ns() < deadline) {
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
    }
    assert_int_equal(c->done, CROWD);
    for (i = 0; i < CROWD; ++i) {
        assert_int_equal(c->reported[i], 1);
        close(c->handles[i].fd);
        close(c->peers[i]);
    }
    rs_event_loop_destroy(loop);
    free(c);
}

/* ---- moving between threads ---- */

typedef struct mover {
    rs_io_handle_t handle;
    int peer;
    rs_mutex_t lock;
    int reads;
    rs_thread_id_t last_thread;
} mover_t;

static void mover_cb(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    mover_t *m = (mover_t *)user_data;
    char buf[16];
    (void)loop;
    (void)events;
    while (read(handle->fd, buf, sizeof(buf)) > 0) {
    }
    rs_mutex_lock(&m->lock);
    m->reads++;
    m->last_thread = rs_thread_current_id();
    rs_mutex_unlock(&m->lock);
}

static int mover_reads(mover_t *m) {
    int n;
    rs_mutex_lock(&m->lock);
    n = m->reads;
    rs_mutex_unlock(&m->lock);
    return n;
}

static bool wait_reads(mover_t *m, int n) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    while (mover_reads(m) < n && rs_clock_now_ns() < deadline) {
        usleep(1000);
    }
    return mover_reads(m) >= n;
}

/* Subscribed on the test thread, run on the loop's own thread, then stopped
 * and run by the test thread again: the subscription keeps working, reported
 * on the thread running the loop. On a SINGLE_ISSUER ring (a loop with
 * readiness-based sockets) the ring is remade on each move; on the ring of
 * completion-based sockets, which any thread may enter, it is kept. */
static void subscription_survives_moves_between_threads(bool single_issuer) {
    mover_t m;
    rs_event_loop_t *loop;
    int fds[2];
    uint64_t deadline;
    skip_without_io_uring();
    memset(&m, 0, sizeof(m));
    assert_int_equal(rs_mutex_init(&m.lock), RS_OK);
    rs__uring_test_readiness_sockets = single_issuer;
    loop = rs_test_loop_new(RS_EVENT_LOOP_BACKEND_IO_URING);
    rs__uring_test_readiness_sockets = false;
    if (single_issuer) {
        assert_true(((rs__uring_t *)rs__backend_data(loop))->setup_flags & RS__IORING_SETUP_SINGLE_ISSUER);
    } else {
        assert_true(rs__uring_loop_has_ops(loop));
    }
    make_socketpair(fds);
    m.handle.fd = fds[0];
    m.peer = fds[1];
    assert_int_equal(rs_event_loop_subscribe(loop, &m.handle, RS_IO_READABLE, mover_cb, &m), RS_OK);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);

    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    assert_int_equal(write(m.peer, "a", 1), 1);
    assert_true(wait_reads(&m, 1));
    rs_mutex_lock(&m.lock);
    assert_true(m.last_thread != rs_thread_current_id());
    rs_mutex_unlock(&m.lock);
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);

    assert_int_equal(write(m.peer, "b", 1), 1);
    deadline = rs_clock_now_ns() + WAIT_NS;
    while (mover_reads(&m) < 2 && rs_clock_now_ns() < deadline) {
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
    }
    assert_int_equal(mover_reads(&m), 2);
    assert_true(m.last_thread == rs_thread_current_id());

    /* and once more onto a new loop thread */
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    assert_int_equal(write(m.peer, "c", 1), 1);
    assert_true(wait_reads(&m, 3));
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);

    assert_int_equal(rs_event_loop_unsubscribe(loop, &m.handle), RS_OK);
    rs_event_loop_destroy(loop);
    rs_mutex_cleanup(&m.lock);
    close(fds[0]);
    close(fds[1]);
}

static void subscription_survives_moves_of_a_single_issuer_ring(void **state) {
    RS_TEST_NEEDS_THREADS();
    (void)state;
    subscription_survives_moves_between_threads(true);
}

static void subscription_survives_moves_of_a_shared_ring(void **state) {
    RS_TEST_NEEDS_THREADS();
    (void)state;
    subscription_survives_moves_between_threads(false);
}

/* ---- allocation failures ---- */

/* Every allocation of loop creation fails in turn: RS_ENOMEM each time, no
 * leak, no ring left open; then one succeeds. */
static void loop_creation_survives_each_allocation_failure(void **state) {
    size_t fail_at;
    (void)state;
    skip_without_io_uring();
    for (fail_at = 1; fail_at < 64; ++fail_at) {
        rs_test_failing_alloc_t fa;
        rs_event_loop_options_t opts;
        rs_event_loop_t *loop;
        int err = -1;
        rs_test_failing_alloc_init(&fa, fail_at);
        memset(&opts, 0, sizeof(opts));
        opts.allocator = &fa.allocator;
        opts.backend = RS_EVENT_LOOP_BACKEND_IO_URING;
        loop = rs_event_loop_new(&opts, &err);
        if (loop) {
            assert_int_equal(err, RS_OK);
            rs_event_loop_destroy(loop);
            if (rs_test_failing_alloc_failures(&fa) == 0) {
                return; /* got past every allocation */
            }
            continue;
        }
        assert_int_equal(err, RS_ENOMEM);
    }
    fail_msg("loop creation still failing after 63 allocations");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refused_setup_is_not_supported),
        cmocka_unit_test(tiny_queues_lose_no_completion),
        cmocka_unit_test(subscription_survives_moves_of_a_single_issuer_ring),
        cmocka_unit_test(subscription_survives_moves_of_a_shared_ring),
        cmocka_unit_test(loop_creation_survives_each_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
