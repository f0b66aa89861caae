/*
 * Pipes: a one-way byte stream between two event loops (or within one).
 *
 * Covers asynchronous, ordered, exactly-once write completions; large
 * transfers with a checksum, on one loop and across two loops on their own
 * threads; end of stream after the write end is destroyed; RS_EPIPE (and no
 * SIGPIPE) after the read end is destroyed; destroying either end first with
 * writes in flight (RS_ECANCELED); argument and thread checks.
 *
 * SIGPIPE is left at its default action, so a write that raised it would kill
 * the test. Single-loop tests drive the loop with run_once on the test thread;
 * two-loop tests touch each end only from tasks and callbacks on its own loop
 * and hand results to the test thread through a mutex-guarded latch. Every
 * wait is bounded.
 *
 * On Windows the same cases run on the IOCP backend against overlapped named
 * pipes (net/pipe_win.c); there is no SIGPIPE there, and the fd-flag case
 * skips, saying so. The Windows-only details (the pipe-name retry, loop
 * destroy with operations in flight, allocation failures) are in
 * test_windows_socket.c.
 */
#include "test_util.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#define WAIT_NS (20 * RS_NS_PER_SEC)
#define MIB ((size_t)1024 * 1024)

/* ---------------------------------------------------------------- helpers */

static rs_event_loop_t *loop_new(rs_event_loop_backend_t b) {
    rs_event_loop_options_t opts;
    rs_event_loop_t *loop;
    int err = 12345;
    memset(&opts, 0, sizeof(opts));
    opts.allocator = &rs_test_allocator;
    opts.backend = b;
    loop = rs_event_loop_new(&opts, &err);
    assert_non_null(loop);
    assert_int_equal(err, RS_OK);
    return loop;
}

static bool run_until_fn(rs_event_loop_t *loop, bool (*done)(void *), void *ud) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    while (!done(ud)) {
        if (rs_clock_now_ns() > deadline) {
            return false;
        }
        assert_int_equal(rs_event_loop_run_once(loop, 10), RS_OK);
    }
    return true;
}

static void run_ticks(rs_event_loop_t *loop, int n) {
    int i;
    for (i = 0; i < n; ++i) {
        assert_int_equal(rs_event_loop_run_once(loop, 1), RS_OK);
    }
}

static uint8_t pat(size_t i) {
    return (uint8_t)((i * 2654435761u) >> 13 ^ (i >> 7));
}

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}
#define FNV_INIT 14695981039346656037ull

static uint8_t *make_data(size_t len) {
    uint8_t *p = (uint8_t *)malloc(len ? len : 1);
    size_t i;
    assert_non_null(p);
    for (i = 0; i < len; ++i) {
        p[i] = pat(i);
    }
    return p;
}

/* A counter guarded by a mutex, with a condvar to wait for a value. */
typedef struct latch {
    rs_mutex_t mutex;
    rs_condvar_t cond;
    int count;
} latch_t;

static void latch_init(latch_t *l) {
    assert_int_equal(rs_mutex_init(&l->mutex), RS_OK);
    assert_int_equal(rs_condvar_init(&l->cond), RS_OK);
    l->count = 0;
}

static void latch_cleanup(latch_t *l) {
    rs_condvar_cleanup(&l->cond);
    rs_mutex_cleanup(&l->mutex);
}

static void latch_add(latch_t *l) {
    rs_mutex_lock(&l->mutex);
    l->count++;
    rs_condvar_broadcast(&l->cond);
    rs_mutex_unlock(&l->mutex);
}

static bool latch_wait(latch_t *l, int target) {
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    bool ok;
    rs_mutex_lock(&l->mutex);
    while (l->count < target) {
        if (rs_condvar_wait_until(&l->cond, &l->mutex, deadline) == RS_ETIMEDOUT) {
            break;
        }
    }
    ok = l->count >= target;
    rs_mutex_unlock(&l->mutex);
    return ok;
}

/* Run fn(ud) on a started loop's thread and wait for it. */
typedef struct on_loop {
    rs_task_t task;
    void (*fn)(void *ud);
    void *ud;
    latch_t latch;
} on_loop_t;

static void on_loop_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    on_loop_t *c = (on_loop_t *)arg;
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        c->fn(c->ud);
    }
    latch_add(&c->latch);
}

static void run_on_loop(rs_event_loop_t *loop, void (*fn)(void *), void *ud) {
    on_loop_t c;
    memset(&c, 0, sizeof(c));
    c.fn = fn;
    c.ud = ud;
    latch_init(&c.latch);
    rs_task_init(&c.task, on_loop_task, &c, "pipe-test-on-loop");
    rs_event_loop_schedule_task_now(loop, &c.task);
    if (!latch_wait(&c.latch, 1)) {
        fail_msg("task scheduled on the loop never ran");
    }
    latch_cleanup(&c.latch);
}

/* ------------------------------------------------------------- the reader */

typedef struct preader {
    rs_pipe_read_end_t *end;
    rs_event_loop_t *loop;
    uint8_t *scratch;
    size_t scratch_len;
    const uint8_t *expect; /* the stream the writer sends (NULL: do not compare) */
    size_t expect_len;
    size_t total;
    uint64_t hash;
    size_t mismatches;
    size_t overrun;        /* bytes beyond expect_len */
    int calls;
    int eof;               /* RS_EEOF results */
    int error_results;     /* results other than OK/EAGAIN/EEOF */
    int last_error;
    int calls_after_eof;
    int cb_errors;         /* callbacks with error != RS_OK */
    int wrong_thread;
    bool destroy_on_eof;
    size_t stop_after;     /* stop reading (return) once total >= this; 0 = never */
    latch_t *done;         /* bumped at EOF (or error), once */
    bool signaled;
} preader_t;

static void preader_init(preader_t *r, rs_pipe_read_end_t *end, rs_event_loop_t *loop, const uint8_t *expect,
                         size_t expect_len) {
    memset(r, 0, sizeof(*r));
    r->end = end;
    r->loop = loop;
    r->expect = expect;
    r->expect_len = expect_len;
    r->hash = FNV_INIT;
    r->scratch_len = 64 * 1024;
    r->scratch = (uint8_t *)malloc(r->scratch_len);
    assert_non_null(r->scratch);
}

static void preader_cleanup(preader_t *r) {
    free(r->scratch);
    r->scratch = NULL;
}

static void preader_signal(preader_t *r) {
    if (r->done && !r->signaled) {
        r->signaled = true;
        latch_add(r->done);
    }
}

static void preader_on_readable(rs_pipe_read_end_t *end, int error, void *user_data) {
    preader_t *r = (preader_t *)user_data;
    r->calls++;
    if (error != RS_OK) {
        r->cb_errors++;
    }
    if (!rs_event_loop_is_on_loop_thread(r->loop)) {
        r->wrong_thread++;
    }
    if (r->eof) {
        r->calls_after_eof++;
    }
    for (;;) {
        rs_byte_buf_t buf = rs_byte_buf_from_array(r->scratch, 0, r->scratch_len);
        size_t n = 12345;
        int err;
        if (r->stop_after && r->total >= r->stop_after) {
            return;
        }
        err = rs_pipe_read(end, &buf, &n);
        if (err == RS_OK) {
            size_t i;
            if (n != buf.len || n == 0) {
                r->error_results++;
            }
            r->hash = fnv1a(r->hash, buf.buffer, buf.len);
            if (r->expect) {
                for (i = 0; i < buf.len; ++i) {
                    size_t off = r->total + i;
                    if (off >= r->expect_len) {
                        r->overrun++;
                    } else if (buf.buffer[i] != r->expect[off]) {
                        r->mismatches++;
                    }
                }
            }
            r->total += buf.len;
            continue;
        }
        if (n != 0) {
            r->error_results++;
        }
        if (err == RS_EAGAIN) {
            return;
        }
        if (err == RS_EEOF) {
            r->eof++;
        } else {
            r->error_results++;
            r->last_error = err;
        }
        if (r->destroy_on_eof) {
            rs_pipe_read_end_destroy(end);
            r->end = NULL;
        }
        preader_signal(r);
        return;
    }
}

/* ------------------------------------------------------------- the writer */

typedef struct pwriter pwriter_t;

typedef struct pwrite_rec {
    pwriter_t *writer;
    size_t index;
    size_t len;
    int calls;
    int error;
    size_t bytes;
} pwrite_rec_t;

struct pwriter {
    rs_pipe_write_end_t *end;
    rs_event_loop_t *loop;
    const uint8_t *data;
    size_t len;
    size_t chunk;
    size_t nwrites;
    pwrite_rec_t *recs;
    size_t issued;
    size_t completions;
    size_t next_expected;
    size_t out_of_order;
    size_t bytes_ok;    /* bytes_written summed over all completions */
    size_t ok_count;
    int write_returns_err; /* the first non-OK return of rs_pipe_write */
    int wrong_thread;
    int wrong_end;
    bool destroy_when_done;
    latch_t *done;      /* bumped once all writes completed */
};

static void pwriter_init(pwriter_t *w, rs_pipe_write_end_t *end, rs_event_loop_t *loop, const uint8_t *data,
                         size_t len, size_t chunk) {
    size_t i;
    memset(w, 0, sizeof(*w));
    w->end = end;
    w->loop = loop;
    w->data = data;
    w->len = len;
    w->chunk = chunk;
    w->nwrites = (len + chunk - 1) / chunk;
    w->recs = (pwrite_rec_t *)calloc(w->nwrites ? w->nwrites : 1, sizeof(pwrite_rec_t));
    assert_non_null(w->recs);
    for (i = 0; i < w->nwrites; ++i) {
        w->recs[i].writer = w;
        w->recs[i].index = i;
        w->recs[i].len = (i + 1) * chunk <= len ? chunk : len - i * chunk;
    }
}

static void pwriter_cleanup(pwriter_t *w) {
    free(w->recs);
    w->recs = NULL;
}

static void pwriter_on_written(rs_pipe_write_end_t *end, int error, size_t bytes_written, void *user_data) {
    pwrite_rec_t *rec = (pwrite_rec_t *)user_data;
    pwriter_t *w = rec->writer;
    rec->calls++;
    rec->error = error;
    rec->bytes = bytes_written;
    if (end != w->end) {
        w->wrong_end++;
    }
    if (!rs_event_loop_is_on_loop_thread(w->loop)) {
        w->wrong_thread++;
    }
    if (rec->index != w->next_expected) {
        w->out_of_order++;
    }
    w->next_expected = rec->index + 1;
    w->completions++;
    w->bytes_ok += bytes_written;
    if (error == RS_OK) {
        w->ok_count++;
    }
    if (w->completions == w->issued && w->issued == w->nwrites) {
        if (w->destroy_when_done && w->end) {
            rs_pipe_write_end_destroy(w->end);
            w->end = NULL;
        }
        if (w->done) {
            latch_add(w->done);
        }
    }
}

/* Queue every chunk now (the caller is on the write loop's thread). */
static void pwriter_issue_all(pwriter_t *w) {
    size_t i;
    for (i = 0; i < w->nwrites; ++i) {
        pwrite_rec_t *rec = &w->recs[i];
        int err = rs_pipe_write(w->end, rs_byte_cursor_from_array(w->data + i * w->chunk, rec->len),
                                pwriter_on_written, rec);
        if (err != RS_OK) {
            if (!w->write_returns_err) {
                w->write_returns_err = err;
            }
            break;
        }
        w->issued++;
    }
}

static void pwriter_issue_all_fn(void *ud) {
    pwriter_issue_all((pwriter_t *)ud);
}

typedef struct both {
    preader_t *r;
    pwriter_t *w;
} both_t;

static bool both_done(void *ud) {
    both_t *b = (both_t *)ud;
    return b->w->completions == b->w->issued && (b->r->eof || b->r->error_results);
}

static bool writer_done(void *ud) {
    pwriter_t *w = (pwriter_t *)ud;
    return w->completions == w->issued;
}

static bool reader_eof(void *ud) {
    preader_t *r = (preader_t *)ud;
    return r->eof > 0 || r->error_results > 0;
}

static void pipe_new_ok(rs_event_loop_t *rl, rs_event_loop_t *wl, rs_pipe_read_end_t **r, rs_pipe_write_end_t **w) {
    *r = NULL;
    *w = NULL;
    assert_int_equal(rs_pipe_new(rl, wl, &rs_test_allocator, r, w), RS_OK);
    assert_non_null(*r);
    assert_non_null(*w);
}

/* ---------------------------------------------------------- one-loop tests */

static void one_loop_writes_complete_async_in_order(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_pipe_read_end_t *re;
    rs_pipe_write_end_t *we;
    uint8_t *data = make_data(100 * 37);
    preader_t r;
    pwriter_t w;
    both_t bt;
    size_t i;
    pipe_new_ok(loop, loop, &re, &we);
    preader_init(&r, re, loop, data, 100 * 37);
    pwriter_init(&w, we, loop, data, 100 * 37, 37);
    bt.r = &r;
    bt.w = &w;

    assert_int_equal(rs_pipe_subscribe_to_readable_events(re, preader_on_readable, &r), RS_OK);
    /* nothing to read yet */
    {
        uint8_t tmp[8];
        rs_byte_buf_t buf = rs_byte_buf_from_array(tmp, 0, sizeof(tmp));
        size_t n = 99;
        assert_int_equal(rs_pipe_read(re, &buf, &n), RS_EAGAIN);
        assert_int_equal(n, 0);
        assert_int_equal(buf.len, 0);
    }
    run_ticks(loop, 3);
    assert_int_equal(r.calls, 0);

    for (i = 0; i < w.nwrites; ++i) {
        assert_int_equal(rs_pipe_write(we, rs_byte_cursor_from_array(data + i * 37, 37), pwriter_on_written, &w.recs[i]),
                         RS_OK);
        w.issued++;
        assert_int_equal(w.completions, 0); /* never inline */
    }
    w.destroy_when_done = false;
    assert_true(run_until_fn(loop, writer_done, &w));
    run_ticks(loop, 3);
    assert_int_equal(w.completions, w.nwrites);
    assert_int_equal(w.ok_count, w.nwrites);
    assert_int_equal(w.out_of_order, 0);
    assert_int_equal(w.wrong_thread, 0);
    assert_int_equal(w.wrong_end, 0);
    for (i = 0; i < w.nwrites; ++i) {
        assert_int_equal(w.recs[i].calls, 1); /* exactly once */
        assert_int_equal(w.recs[i].error, RS_OK);
        assert_int_equal(w.recs[i].bytes, 37);
    }

    /* the reader has (or will have) everything; then the write end goes away */
    rs_pipe_write_end_destroy(we);
    w.end = NULL;
    assert_true(run_until_fn(loop, both_done, &bt));
    assert_int_equal(r.total, 100 * 37);
    assert_int_equal(r.mismatches, 0);
    assert_int_equal(r.overrun, 0);
    assert_int_equal(r.eof, 1);
    assert_int_equal(r.error_results, 0);
    assert_int_equal(r.cb_errors, 0);
    assert_int_equal(r.wrong_thread, 0);
    /* EOF stops readable events (no spinning on hang-up) */
    {
        int calls = r.calls;
        run_ticks(loop, 5);
        assert_int_equal(r.calls, calls);
    }
    /* reading again still says end of stream */
    {
        uint8_t tmp[8];
        rs_byte_buf_t buf = rs_byte_buf_from_array(tmp, 0, sizeof(tmp));
        assert_int_equal(rs_pipe_read(re, &buf, NULL), RS_EEOF);
    }

    rs_pipe_read_end_destroy(re);
    run_ticks(loop, 2);
    rs_event_loop_destroy(loop);
    preader_cleanup(&r);
    pwriter_cleanup(&w);
    free(data);
}
RS_TEST_PER_BACKEND(pipe_, one_loop_writes_complete_async_in_order)

/* A write issued from a write-completion callback completes later, in order. */
typedef struct chain_writer {
    rs_pipe_write_end_t *end;
    int completions;
    int order_ok;
    int inline_calls;
    bool in_write;
    int errors;
} chain_writer_t;

static void chain_on_written(rs_pipe_write_end_t *end, int error, size_t bytes_written, void *user_data) {
    chain_writer_t *c = (chain_writer_t *)user_data;
    static const char msg[] = "0123456789";
    if (c->in_write) {
        c->inline_calls++;
    }
    if (error != RS_OK || bytes_written != 1) {
        c->errors++;
    }
    c->completions++;
    if (c->completions < 10) {
        c->in_write = true;
        if (rs_pipe_write(end, rs_byte_cursor_from_array(msg + c->completions, 1), chain_on_written, c) != RS_OK) {
            c->errors++;
        }
        c->in_write = false;
    }
}

static bool chain_done(void *ud) {
    return ((chain_writer_t *)ud)->completions >= 10;
}

static void write_from_completion_callback(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_pipe_read_end_t *re;
    rs_pipe_write_end_t *we;
    chain_writer_t c;
    uint8_t got[16];
    rs_byte_buf_t buf = rs_byte_buf_from_array(got, 0, sizeof(got));
    uint64_t deadline;
    memset(&c, 0, sizeof(c));
    pipe_new_ok(loop, loop, &re, &we);
    c.end = we;
    c.in_write = true;
    assert_int_equal(rs_pipe_write(we, rs_byte_cursor_from_array("0", 1), chain_on_written, &c), RS_OK);
    c.in_write = false;
    assert_true(run_until_fn(loop, chain_done, &c));
    run_ticks(loop, 3);
    assert_int_equal(c.completions, 10);
    assert_int_equal(c.inline_calls, 0);
    assert_int_equal(c.errors, 0);
    deadline = rs_clock_now_ns() + WAIT_NS;
    while (buf.len < 10 && rs_clock_now_ns() < deadline) {
        int err = rs_pipe_read(re, &buf, NULL);
        assert_true(err == RS_OK || err == RS_EAGAIN);
        if (err == RS_EAGAIN) {
            run_ticks(loop, 1);
        }
    }
    assert_int_equal(buf.len, 10);
    assert_memory_equal(got, "0123456789", 10);
    rs_pipe_write_end_destroy(we);
    rs_pipe_read_end_destroy(re);
    run_ticks(loop, 2);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(pipe_, write_from_completion_callback)

/* A zero-length write completes like any other: once, in order, RS_OK, 0 bytes. */
typedef struct zl_rec {
    int order[3];
    int n;
    int errors[3];
    size_t bytes[3];
} zl_rec_t;

typedef struct zl_arg {
    zl_rec_t *rec;
    int index;
} zl_arg_t;

static void zl_on_written(rs_pipe_write_end_t *end, int error, size_t bytes_written, void *user_data) {
    zl_arg_t *a = (zl_arg_t *)user_data;
    zl_rec_t *z = a->rec;
    (void)end;
    if (z->n < 3) {
        z->order[z->n] = a->index;
        z->errors[z->n] = error;
        z->bytes[z->n] = bytes_written;
    }
    z->n++;
}

static bool zl_done(void *ud) {
    return ((zl_rec_t *)ud)->n >= 3;
}

static void zero_length_write_completes_in_order(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_pipe_read_end_t *re;
    rs_pipe_write_end_t *we;
    zl_rec_t z;
    zl_arg_t args[3];
    int i;
    uint8_t got[8];
    rs_byte_buf_t buf = rs_byte_buf_from_array(got, 0, sizeof(got));
    uint64_t deadline;
    memset(&z, 0, sizeof(z));
    pipe_new_ok(loop, loop, &re, &we);
    for (i = 0; i < 3; ++i) {
        args[i].rec = &z;
        args[i].index = i;
    }
    assert_int_equal(rs_pipe_write(we, rs_byte_cursor_from_array("ab", 2), zl_on_written, &args[0]), RS_OK);
    assert_int_equal(rs_pipe_write(we, rs_byte_cursor_from_array("", 0), zl_on_written, &args[1]), RS_OK);
    assert_int_equal(rs_pipe_write(we, rs_byte_cursor_from_array("c", 1), zl_on_written, &args[2]), RS_OK);
    assert_int_equal(z.n, 0);
    assert_true(run_until_fn(loop, zl_done, &z));
    run_ticks(loop, 3);
    assert_int_equal(z.n, 3);
    for (i = 0; i < 3; ++i) {
        assert_int_equal(z.order[i], i);
        assert_int_equal(z.errors[i], RS_OK);
    }
    assert_int_equal(z.bytes[0], 2);
    assert_int_equal(z.bytes[1], 0);
    assert_int_equal(z.bytes[2], 1);
    deadline = rs_clock_now_ns() + WAIT_NS;
    while (buf.len < 3 && rs_clock_now_ns() < deadline) {
        int err = rs_pipe_read(re, &buf, NULL);
        assert_true(err == RS_OK || err == RS_EAGAIN);
        if (err == RS_EAGAIN) {
            run_ticks(loop, 1);
        }
    }
    assert_int_equal(buf.len, 3);
    assert_memory_equal(got, "abc", 3);
    rs_pipe_write_end_destroy(we);
    rs_pipe_read_end_destroy(re);
    run_ticks(loop, 2);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(pipe_, zero_length_write_completes_in_order)

static void one_loop_8mib_transfer_with_checksum(rs_event_loop_backend_t b) {
    const size_t len = 8 * MIB;
    rs_event_loop_t *loop = loop_new(b);
    rs_pipe_read_end_t *re;
    rs_pipe_write_end_t *we;
    uint8_t *data = make_data(len);
    uint64_t want = fnv1a(FNV_INIT, data, len);
    preader_t r;
    pwriter_t w;
    both_t bt;
    pipe_new_ok(loop, loop, &re, &we);
    preader_init(&r, re, loop, data, len);
    pwriter_init(&w, we, loop, data, len, 64 * 1024 + 3); /* odd chunks: writes straddle reads */
    w.destroy_when_done = true;                          /* then the reader sees EOF */
    bt.r = &r;
    bt.w = &w;
    assert_int_equal(rs_pipe_subscribe_to_readable_events(re, preader_on_readable, &r), RS_OK);
    pwriter_issue_all(&w);
    assert_int_equal(w.write_returns_err, 0);
    assert_int_equal(w.issued, w.nwrites);
    assert_int_equal(w.completions, 0);
    assert_true(run_until_fn(loop, both_done, &bt));
    assert_null(w.end);
    assert_int_equal(w.completions, w.nwrites);
    assert_int_equal(w.ok_count, w.nwrites);
    assert_int_equal(w.out_of_order, 0);
    assert_int_equal(w.bytes_ok, len);
    assert_int_equal(r.total, len);
    assert_int_equal(r.mismatches, 0);
    assert_int_equal(r.overrun, 0);
    assert_true(r.hash == want);
    assert_int_equal(r.eof, 1);
    assert_int_equal(r.error_results, 0);
    rs_pipe_read_end_destroy(re);
    run_ticks(loop, 2);
    rs_event_loop_destroy(loop);
    preader_cleanup(&r);
    pwriter_cleanup(&w);
    free(data);
}
RS_TEST_PER_BACKEND(pipe_, one_loop_8mib_transfer_with_checksum)

/* ---------------------------------------------------------- two-loop tests */

typedef struct two_loop_ctx {
    preader_t *r;
    pwriter_t *w;
    int subscribe_err;
} two_loop_ctx_t;

static void subscribe_fn(void *ud) {
    two_loop_ctx_t *c = (two_loop_ctx_t *)ud;
    c->subscribe_err = rs_pipe_subscribe_to_readable_events(c->r->end, preader_on_readable, c->r);
}

static void two_loops_transfer(rs_event_loop_backend_t b, size_t len, size_t chunk) {
    rs_event_loop_t *rl = loop_new(b);
    rs_event_loop_t *wl = loop_new(b);
    rs_pipe_read_end_t *re;
    rs_pipe_write_end_t *we;
    uint8_t *data = make_data(len);
    uint64_t want = fnv1a(FNV_INIT, data, len);
    latch_t done;
    preader_t r;
    pwriter_t w;
    two_loop_ctx_t ctx;
    size_t i;
    latch_init(&done);
    assert_int_equal(rs_event_loop_start(rl), RS_OK);
    assert_int_equal(rs_event_loop_start(wl), RS_OK);
    pipe_new_ok(rl, wl, &re, &we); /* any thread */
    preader_init(&r, re, rl, data, len);
    pwriter_init(&w, we, wl, data, len, chunk);
    r.destroy_on_eof = true;
    r.done = &done;
    w.destroy_when_done = true;
    w.done = &done;
    memset(&ctx, 0, sizeof(ctx));
    ctx.r = &r;
    ctx.w = &w;

    run_on_loop(rl, subscribe_fn, &ctx);
    run_on_loop(wl, pwriter_issue_all_fn, &w);
    if (!latch_wait(&done, 2)) {
        fail_msg("transfer did not finish: reader got %zu of %zu bytes", r.total, len);
    }
    /* both loops joined: everything they wrote is visible here */
    assert_int_equal(rs_event_loop_stop(rl), RS_OK);
    assert_int_equal(rs_event_loop_stop(wl), RS_OK);
    assert_int_equal(rs_event_loop_wait(rl), RS_OK);
    assert_int_equal(rs_event_loop_wait(wl), RS_OK);

    assert_int_equal(ctx.subscribe_err, RS_OK);
    assert_int_equal(w.write_returns_err, 0);
    assert_int_equal(w.issued, w.nwrites);
    assert_int_equal(w.completions, w.nwrites);
    assert_int_equal(w.ok_count, w.nwrites);
    assert_int_equal(w.out_of_order, 0);
    assert_int_equal(w.wrong_thread, 0);
    assert_int_equal(w.bytes_ok, len);
    for (i = 0; i < w.nwrites; ++i) {
        assert_int_equal(w.recs[i].calls, 1);
    }
    assert_null(w.end);
    assert_null(r.end);
    assert_int_equal(r.total, len);
    assert_int_equal(r.mismatches, 0);
    assert_int_equal(r.overrun, 0);
    assert_true(r.hash == want);
    assert_int_equal(r.eof, 1);
    assert_int_equal(r.error_results, 0);
    assert_int_equal(r.wrong_thread, 0);

    rs_event_loop_destroy(rl);
    rs_event_loop_destroy(wl);
    latch_cleanup(&done);
    preader_cleanup(&r);
    pwriter_cleanup(&w);
    free(data);
}

static void two_loops_small_writes_in_order(rs_event_loop_backend_t b) {
    two_loops_transfer(b, 5000 * 7, 7);
}
RS_TEST_PER_BACKEND(pipe_, two_loops_small_writes_in_order)

static void two_loops_8mib_transfer_with_checksum(rs_event_loop_backend_t b) {
    two_loops_transfer(b, 8 * MIB, 256 * 1024 - 5);
}
RS_TEST_PER_BACKEND(pipe_, two_loops_8mib_transfer_with_checksum)

/* Using an end from the other loop's thread is refused. */
typedef struct wrong_thread_ctx {
    rs_pipe_read_end_t *re;
    rs_pipe_write_end_t *we;
    int write_err;
    int read_err;
    int subscribe_err;
    preader_t *r;
    pwriter_t *w;
} wrong_thread_ctx_t;

static void wt_on_read_loop(void *ud) {
    wrong_thread_ctx_t *c = (wrong_thread_ctx_t *)ud;
    c->write_err = rs_pipe_write(c->we, rs_byte_cursor_from_array("x", 1), pwriter_on_written, &c->w->recs[0]);
}

static void wt_on_write_loop(void *ud) {
    wrong_thread_ctx_t *c = (wrong_thread_ctx_t *)ud;
    uint8_t tmp[4];
    rs_byte_buf_t buf = rs_byte_buf_from_array(tmp, 0, sizeof(tmp));
    c->read_err = rs_pipe_read(c->re, &buf, NULL);
    c->subscribe_err = rs_pipe_subscribe_to_readable_events(c->re, preader_on_readable, c->r);
}

static void destroy_read_end_fn(void *ud) {
    rs_pipe_read_end_destroy((rs_pipe_read_end_t *)ud);
}

static void destroy_write_end_fn(void *ud) {
    rs_pipe_write_end_destroy((rs_pipe_write_end_t *)ud);
}

static void ends_used_on_the_wrong_thread_are_refused(rs_event_loop_backend_t b) {
    rs_event_loop_t *rl = loop_new(b);
    rs_event_loop_t *wl = loop_new(b);
    rs_pipe_read_end_t *re;
    rs_pipe_write_end_t *we;
    wrong_thread_ctx_t c;
    preader_t r;
    pwriter_t w;
    uint8_t one = 1;
    assert_int_equal(rs_event_loop_start(rl), RS_OK);
    assert_int_equal(rs_event_loop_start(wl), RS_OK);
    pipe_new_ok(rl, wl, &re, &we);
    preader_init(&r, re, rl, NULL, 0);
    pwriter_init(&w, we, wl, &one, 1, 1);
    memset(&c, 0, sizeof(c));
    c.re = re;
    c.we = we;
    c.r = &r;
    c.w = &w;
    run_on_loop(rl, wt_on_read_loop, &c);
    run_on_loop(wl, wt_on_write_loop, &c);
    assert_int_equal(c.write_err, RS_EWRONGTHREAD);
    assert_int_equal(c.read_err, RS_EWRONGTHREAD);
    assert_int_equal(c.subscribe_err, RS_EWRONGTHREAD);
    /* from the test thread too */
    assert_int_equal(rs_pipe_write(we, rs_byte_cursor_from_array("x", 1), pwriter_on_written, &w.recs[0]),
                     RS_EWRONGTHREAD);
    run_on_loop(rl, destroy_read_end_fn, re);
    run_on_loop(wl, destroy_write_end_fn, we);
    assert_int_equal(rs_event_loop_stop(rl), RS_OK);
    assert_int_equal(rs_event_loop_stop(wl), RS_OK);
    assert_int_equal(rs_event_loop_wait(rl), RS_OK);
    assert_int_equal(rs_event_loop_wait(wl), RS_OK);
    assert_int_equal(w.completions, 0);
    assert_int_equal(r.calls, 0);
    rs_event_loop_destroy(rl);
    rs_event_loop_destroy(wl);
    preader_cleanup(&r);
    pwriter_cleanup(&w);
}
RS_TEST_PER_BACKEND(pipe_, ends_used_on_the_wrong_thread_are_refused)

/* ------------------------------------------------------ destroying the ends */

/* The write end goes away right after a write that reached the kernel: the
 * reader gets all of it, then end of stream. */
static void destroying_write_end_gives_reader_data_then_eof(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_pipe_read_end_t *re;
    rs_pipe_write_end_t *we;
    uint8_t *data = make_data(4096);
    preader_t r;
    pwriter_t w;
    pipe_new_ok(loop, loop, &re, &we);
    preader_init(&r, re, loop, data, 4096);
    pwriter_init(&w, we, loop, data, 4096, 1024);
    pwriter_issue_all(&w);
    assert_int_equal(w.issued, 4);
    rs_pipe_write_end_destroy(we); /* completions still pending */
    assert_int_equal(w.completions, 0);
    /* subscribing after the writer is gone still sees the data, then EOF */
    assert_int_equal(rs_pipe_subscribe_to_readable_events(re, preader_on_readable, &r), RS_OK);
    assert_true(run_until_fn(loop, reader_eof, &r));
    assert_true(run_until_fn(loop, writer_done, &w));
    run_ticks(loop, 3);
    /* the bytes had reached the kernel, so each write reports them, once */
    assert_int_equal(w.completions, 4);
    assert_int_equal(w.out_of_order, 0);
    assert_int_equal(w.bytes_ok, 4096);
    assert_int_equal(r.total, 4096);
    assert_int_equal(r.mismatches, 0);
    assert_int_equal(r.eof, 1);
    assert_int_equal(r.error_results, 0);
    assert_int_equal(r.calls_after_eof, 0);
    rs_pipe_read_end_destroy(re);
    run_ticks(loop, 2);
    rs_event_loop_destroy(loop);
    preader_cleanup(&r);
    pwriter_cleanup(&w);
    free(data);
}
RS_TEST_PER_BACKEND(pipe_, destroying_write_end_gives_reader_data_then_eof)

/* The read end goes away: the next write completes with (or returns) RS_EPIPE,
 * and no SIGPIPE kills the process. `drain` says whether the reader had read
 * everything before it was destroyed. */
static void read_end_gone(rs_event_loop_backend_t b, bool drain) {
    rs_event_loop_t *loop = loop_new(b);
    rs_pipe_read_end_t *re;
    rs_pipe_write_end_t *we;
    uint8_t *data = make_data(1000);
    preader_t r;
    pwriter_t w;
    pwriter_t w2;
    int err;
    pipe_new_ok(loop, loop, &re, &we);
    preader_init(&r, re, loop, data, 1000);
    pwriter_init(&w, we, loop, data, 1000, 1000);
    pwriter_init(&w2, we, loop, data, 3000, 1000);
    assert_int_equal(rs_pipe_subscribe_to_readable_events(re, preader_on_readable, &r), RS_OK);
    pwriter_issue_all(&w);
    assert_true(run_until_fn(loop, writer_done, &w));
    assert_int_equal(w.recs[0].error, RS_OK);
    if (drain) {
        uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
        while (r.total < 1000 && rs_clock_now_ns() < deadline) {
            run_ticks(loop, 1);
        }
        assert_int_equal(r.total, 1000);
    }
    rs_pipe_read_end_destroy(re);
    run_ticks(loop, 2);

    /* the next write: RS_EPIPE, from the call or its completion */
    err = rs_pipe_write(we, rs_byte_cursor_from_array(data, 1000), pwriter_on_written, &w2.recs[0]);
    if (err == RS_OK) {
        w2.issued = 1;
        assert_true(run_until_fn(loop, writer_done, &w2));
        assert_int_equal(w2.recs[0].calls, 1);
        if (w2.recs[0].error != RS_EPIPE) {
            fail_msg("write after the read end was destroyed completed with %s, want RS_EPIPE",
                     rs_err_name(w2.recs[0].error));
        }
        assert_int_equal(w2.recs[0].bytes, 0);
        /* and later writes are refused at once with the same error */
        err = rs_pipe_write(we, rs_byte_cursor_from_array(data, 1000), pwriter_on_written, &w2.recs[1]);
        assert_int_equal(err, RS_EPIPE);
    } else if (err != RS_EPIPE) {
        fail_msg("write after the read end was destroyed returned %s, want RS_EPIPE", rs_err_name(err));
    }
    run_ticks(loop, 3);
    assert_int_equal(w2.recs[1].calls, 0);
    assert_int_equal(w2.recs[2].calls, 0);

    rs_pipe_write_end_destroy(we);
    run_ticks(loop, 2);
    assert_true(w2.recs[0].calls <= 1);
    rs_event_loop_destroy(loop);
    preader_cleanup(&r);
    pwriter_cleanup(&w);
    pwriter_cleanup(&w2);
    free(data);
}

static void destroying_read_end_gives_epipe_not_sigpipe(rs_event_loop_backend_t b) {
    read_end_gone(b, true);
}
RS_TEST_PER_BACKEND(pipe_, destroying_read_end_gives_epipe_not_sigpipe)

static void destroying_read_end_with_unread_data_gives_epipe(rs_event_loop_backend_t b) {
    read_end_gone(b, false);
}
RS_TEST_PER_BACKEND(pipe_, destroying_read_end_with_unread_data_gives_epipe)

/* Writes stuck in the queue (nobody reads) when the write end is destroyed:
 * each completes once, in order, with RS_ECANCELED; the bytes it reports are
 * exactly what the reader then gets before end of stream. */
static void destroying_write_end_cancels_writes_in_flight(rs_event_loop_backend_t b) {
    const size_t len = 12 * MIB;
    rs_event_loop_t *loop = loop_new(b);
    rs_pipe_read_end_t *re;
    rs_pipe_write_end_t *we;
    uint8_t *data = make_data(len);
    preader_t r;
    pwriter_t w;
    size_t i;
    pipe_new_ok(loop, loop, &re, &we);
    preader_init(&r, re, loop, data, len);
    pwriter_init(&w, we, loop, data, len, 4 * MIB);
    pwriter_issue_all(&w);
    assert_int_equal(w.issued, 3);
    run_ticks(loop, 3); /* the kernel buffer fills; the rest stays queued */
    assert_int_equal(w.completions, 0);
    rs_pipe_write_end_destroy(we);
    assert_true(run_until_fn(loop, writer_done, &w));
    run_ticks(loop, 3);
    assert_int_equal(w.completions, 3);
    assert_int_equal(w.out_of_order, 0);
    for (i = 0; i < 3; ++i) {
        assert_int_equal(w.recs[i].calls, 1);
        assert_int_equal(w.recs[i].error, RS_ECANCELED);
    }
    assert_true(w.bytes_ok < len);
    assert_int_equal(w.recs[2].bytes, 0);
    /* now read what did get through */
    assert_int_equal(rs_pipe_subscribe_to_readable_events(re, preader_on_readable, &r), RS_OK);
    assert_true(run_until_fn(loop, reader_eof, &r));
    assert_int_equal(r.eof, 1);
    assert_int_equal(r.error_results, 0);
    assert_int_equal(r.mismatches, 0);
    assert_int_equal(r.total, w.bytes_ok);
    rs_pipe_read_end_destroy(re);
    run_ticks(loop, 2);
    rs_event_loop_destroy(loop);
    preader_cleanup(&r);
    pwriter_cleanup(&w);
    free(data);
}
RS_TEST_PER_BACKEND(pipe_, destroying_write_end_cancels_writes_in_flight)

/* Destroy order with writes in flight, one loop. read_first: the read end goes
 * first; run_between: the loop runs ticks between the two destroys. */
static void destroy_order_one_loop(rs_event_loop_backend_t b, bool read_first, bool run_between) {
    const size_t len = 12 * MIB;
    rs_event_loop_t *loop = loop_new(b);
    rs_pipe_read_end_t *re;
    rs_pipe_write_end_t *we;
    uint8_t *data = make_data(len);
    preader_t r;
    pwriter_t w;
    size_t i;
    int calls_at_destroy;
    pipe_new_ok(loop, loop, &re, &we);
    preader_init(&r, re, loop, data, len);
    pwriter_init(&w, we, loop, data, len, 4 * MIB);
    r.stop_after = 1; /* read a little, then leave the rest unread */
    assert_int_equal(rs_pipe_subscribe_to_readable_events(re, preader_on_readable, &r), RS_OK);
    pwriter_issue_all(&w);
    assert_int_equal(w.issued, 3);
    run_ticks(loop, 3);
    assert_int_equal(w.completions, 0);
    calls_at_destroy = r.calls;
    if (read_first) {
        rs_pipe_read_end_destroy(re);
        if (run_between) {
            run_ticks(loop, 5);
        }
        rs_pipe_write_end_destroy(we);
    } else {
        rs_pipe_write_end_destroy(we);
        if (run_between) {
            run_ticks(loop, 5);
        }
        calls_at_destroy = r.calls;
        rs_pipe_read_end_destroy(re);
    }
    assert_true(run_until_fn(loop, writer_done, &w));
    run_ticks(loop, 5);
    assert_int_equal(r.calls, calls_at_destroy); /* nothing after the read end is gone */
    assert_int_equal(w.completions, 3);
    assert_int_equal(w.out_of_order, 0);
    for (i = 0; i < 3; ++i) {
        assert_int_equal(w.recs[i].calls, 1);
        if (read_first && run_between) {
            /* the writer saw the broken pipe before it was destroyed */
            if (w.recs[i].error != RS_EPIPE && w.recs[i].error != RS_ECANCELED) {
                fail_msg("write %zu completed with %s, want RS_EPIPE or RS_ECANCELED", i,
                         rs_err_name(w.recs[i].error));
            }
        } else {
            if (w.recs[i].error != RS_ECANCELED) {
                fail_msg("write %zu completed with %s, want RS_ECANCELED", i, rs_err_name(w.recs[i].error));
            }
        }
    }
    rs_event_loop_destroy(loop);
    preader_cleanup(&r);
    pwriter_cleanup(&w);
    free(data);
}

static void destroy_write_end_then_read_end_with_writes_in_flight(rs_event_loop_backend_t b) {
    destroy_order_one_loop(b, false, false);
    destroy_order_one_loop(b, false, true);
}
RS_TEST_PER_BACKEND(pipe_, destroy_write_end_then_read_end_with_writes_in_flight)

static void destroy_read_end_then_write_end_with_writes_in_flight(rs_event_loop_backend_t b) {
    destroy_order_one_loop(b, true, false);
    destroy_order_one_loop(b, true, true);
}
RS_TEST_PER_BACKEND(pipe_, destroy_read_end_then_write_end_with_writes_in_flight)

/* The same across two loops on their own threads: each end destroyed on its
 * own loop, in either order, with writes in flight. */
static void destroy_order_two_loops(rs_event_loop_backend_t b, bool read_first) {
    const size_t len = 12 * MIB;
    rs_event_loop_t *rl = loop_new(b);
    rs_event_loop_t *wl = loop_new(b);
    rs_pipe_read_end_t *re;
    rs_pipe_write_end_t *we;
    uint8_t *data = make_data(len);
    latch_t done;
    preader_t r;
    pwriter_t w;
    two_loop_ctx_t ctx;
    size_t i;
    latch_init(&done);
    assert_int_equal(rs_event_loop_start(rl), RS_OK);
    assert_int_equal(rs_event_loop_start(wl), RS_OK);
    pipe_new_ok(rl, wl, &re, &we);
    preader_init(&r, re, rl, data, len);
    pwriter_init(&w, we, wl, data, len, 4 * MIB);
    w.done = &done;
    r.stop_after = 1; /* subscribed and reading, but leaves most data unread */
    memset(&ctx, 0, sizeof(ctx));
    ctx.r = &r;
    run_on_loop(rl, subscribe_fn, &ctx);
    run_on_loop(wl, pwriter_issue_all_fn, &w);
    if (read_first) {
        run_on_loop(rl, destroy_read_end_fn, re);
        run_on_loop(wl, destroy_write_end_fn, we);
    } else {
        run_on_loop(wl, destroy_write_end_fn, we);
        run_on_loop(rl, destroy_read_end_fn, re);
    }
    if (!latch_wait(&done, 1)) {
        fail_msg("writes in flight never completed after the ends were destroyed");
    }
    assert_int_equal(rs_event_loop_stop(rl), RS_OK);
    assert_int_equal(rs_event_loop_stop(wl), RS_OK);
    assert_int_equal(rs_event_loop_wait(rl), RS_OK);
    assert_int_equal(rs_event_loop_wait(wl), RS_OK);
    assert_int_equal(ctx.subscribe_err, RS_OK);
    assert_int_equal(r.wrong_thread, 0);
    assert_int_equal(r.error_results, 0);
    assert_int_equal(r.mismatches, 0);
    assert_int_equal(w.issued, 3);
    assert_int_equal(w.completions, 3);
    assert_int_equal(w.out_of_order, 0);
    assert_int_equal(w.wrong_thread, 0);
    for (i = 0; i < 3; ++i) {
        assert_int_equal(w.recs[i].calls, 1);
        /* the write loop may have seen the broken pipe before its end was destroyed */
        if (w.recs[i].error != RS_ECANCELED && !(read_first && w.recs[i].error == RS_EPIPE)) {
            fail_msg("write %zu completed with %s", i, rs_err_name(w.recs[i].error));
        }
    }
    rs_event_loop_destroy(rl);
    rs_event_loop_destroy(wl);
    latch_cleanup(&done);
    preader_cleanup(&r);
    pwriter_cleanup(&w);
    free(data);
}

static void two_loops_destroy_write_end_first_with_writes_in_flight(rs_event_loop_backend_t b) {
    destroy_order_two_loops(b, false);
}
RS_TEST_PER_BACKEND(pipe_, two_loops_destroy_write_end_first_with_writes_in_flight)

static void two_loops_destroy_read_end_first_with_writes_in_flight(rs_event_loop_backend_t b) {
    destroy_order_two_loops(b, true);
}
RS_TEST_PER_BACKEND(pipe_, two_loops_destroy_read_end_first_with_writes_in_flight)

/* Ends never used, destroyed while their loops have never run, either order. */
static void unused_ends_destroyed_in_either_order(rs_event_loop_backend_t b) {
    rs_event_loop_t *loop = loop_new(b);
    rs_pipe_read_end_t *re;
    rs_pipe_write_end_t *we;
    pipe_new_ok(loop, loop, &re, &we);
    rs_pipe_read_end_destroy(re);
    rs_pipe_write_end_destroy(we);
    pipe_new_ok(loop, loop, &re, &we);
    rs_pipe_write_end_destroy(we);
    rs_pipe_read_end_destroy(re);
    run_ticks(loop, 2);
    rs_event_loop_destroy(loop);
}
RS_TEST_PER_BACKEND(pipe_, unused_ends_destroyed_in_either_order)

/* ------------------------------------------------------------- arguments */

static void noop_written(rs_pipe_write_end_t *end, int error, size_t bytes_written, void *user_data) {
    (void)end;
    (void)error;
    (void)bytes_written;
    (*(int *)user_data)++;
}

static void noop_readable(rs_pipe_read_end_t *end, int error, void *user_data) {
    (void)end;
    (void)error;
    (*(int *)user_data)++;
}

/* Both ends are non-blocking and close-on-exec in both builds (socketpair with
 * SOCK_NONBLOCK | SOCK_CLOEXEC, or fcntl after it). Each end is an rs_socket_t
 * underneath, which is how the test reaches its fd. */
static void pipe_ends_are_nonblocking_and_cloexec(void **state) {
#if RESEAU_OS_WINDOWS
    (void)state;
    print_message("skipped: POSIX only (Windows pipe ends are overlapped named pipe handles, not sockets)\n");
    skip();
#else
    rs_event_loop_t *loop = loop_new(RS_EVENT_LOOP_BACKEND_DEFAULT);
    rs_pipe_read_end_t *re;
    rs_pipe_write_end_t *we;
    (void)state;
    pipe_new_ok(loop, loop, &re, &we);
    rs_test_assert_fd_nonblocking_cloexec(rs_socket_get_fd((rs_socket_t *)(void *)re));
    rs_test_assert_fd_nonblocking_cloexec(rs_socket_get_fd((rs_socket_t *)(void *)we));
    rs_pipe_read_end_destroy(re);
    rs_pipe_write_end_destroy(we);
    rs_event_loop_destroy(loop);
#endif
}

static void pipe_new_with_null_args_is_einval(void **state) {
    rs_event_loop_t *loop = loop_new(RS_EVENT_LOOP_BACKEND_DEFAULT);
    rs_pipe_read_end_t *re = (rs_pipe_read_end_t *)(uintptr_t)1;
    rs_pipe_write_end_t *we = (rs_pipe_write_end_t *)(uintptr_t)1;
    (void)state;
    assert_int_equal(rs_pipe_new(NULL, loop, &rs_test_allocator, &re, &we), RS_EINVAL);
    assert_null(re);
    assert_null(we);
    re = (rs_pipe_read_end_t *)(uintptr_t)1;
    we = (rs_pipe_write_end_t *)(uintptr_t)1;
    assert_int_equal(rs_pipe_new(loop, NULL, &rs_test_allocator, &re, &we), RS_EINVAL);
    assert_null(re);
    assert_null(we);
    we = (rs_pipe_write_end_t *)(uintptr_t)1;
    assert_int_equal(rs_pipe_new(loop, loop, &rs_test_allocator, NULL, &we), RS_EINVAL);
    assert_null(we);
    re = (rs_pipe_read_end_t *)(uintptr_t)1;
    assert_int_equal(rs_pipe_new(loop, loop, &rs_test_allocator, &re, NULL), RS_EINVAL);
    assert_null(re);
    assert_int_equal(rs_pipe_new(NULL, NULL, NULL, NULL, NULL), RS_EINVAL);
    rs_event_loop_destroy(loop);
}

static void pipe_calls_with_null_args_are_einval(void **state) {
    rs_event_loop_t *loop = loop_new(RS_EVENT_LOOP_BACKEND_DEFAULT);
    rs_pipe_read_end_t *re;
    rs_pipe_write_end_t *we;
    int calls = 0;
    uint8_t tmp[4];
    rs_byte_buf_t full = rs_byte_buf_from_array(tmp, sizeof(tmp), sizeof(tmp));
    (void)state;
    pipe_new_ok(loop, loop, &re, &we);
    assert_int_equal(rs_pipe_subscribe_to_readable_events(NULL, noop_readable, &calls), RS_EINVAL);
    assert_int_equal(rs_pipe_subscribe_to_readable_events(re, NULL, &calls), RS_EINVAL);
    assert_int_equal(rs_pipe_read(NULL, &full, NULL), RS_EINVAL);
    assert_int_equal(rs_pipe_read(re, NULL, NULL), RS_EINVAL);
    assert_int_equal(rs_pipe_read(re, &full, NULL), RS_EINVAL); /* no free space */
    assert_int_equal(rs_pipe_write(NULL, rs_byte_cursor_from_array("x", 1), noop_written, &calls), RS_EINVAL);
    assert_int_equal(rs_pipe_write(we, rs_byte_cursor_from_array("x", 1), NULL, &calls), RS_EINVAL);
    rs_pipe_read_end_destroy(NULL);
    rs_pipe_write_end_destroy(NULL);
    run_ticks(loop, 2);
    assert_int_equal(calls, 0);
    rs_pipe_read_end_destroy(re);
    rs_pipe_write_end_destroy(we);
    run_ticks(loop, 2);
    rs_event_loop_destroy(loop);
}

/* With a NULL allocator the pipe uses libc (nothing to leak-check here, but it
 * must work). */
static void pipe_with_libc_allocator_works(void **state) {
    rs_event_loop_t *loop = loop_new(RS_EVENT_LOOP_BACKEND_DEFAULT);
    rs_pipe_read_end_t *re = NULL;
    rs_pipe_write_end_t *we = NULL;
    int calls = 0;
    uint8_t tmp[8];
    rs_byte_buf_t buf = rs_byte_buf_from_array(tmp, 0, sizeof(tmp));
    uint64_t deadline = rs_clock_now_ns() + WAIT_NS;
    (void)state;
    assert_int_equal(rs_pipe_new(loop, loop, NULL, &re, &we), RS_OK);
    assert_int_equal(rs_pipe_write(we, rs_byte_cursor_from_array("abc", 3), noop_written, &calls), RS_OK);
    while (buf.len < 3 && rs_clock_now_ns() < deadline) {
        int err = rs_pipe_read(re, &buf, NULL);
        assert_true(err == RS_OK || err == RS_EAGAIN);
        run_ticks(loop, 1);
    }
    assert_int_equal(buf.len, 3);
    assert_memory_equal(tmp, "abc", 3);
    while (calls == 0 && rs_clock_now_ns() < deadline) {
        run_ticks(loop, 1);
    }
    assert_int_equal(calls, 1);
    rs_pipe_write_end_destroy(we);
    rs_pipe_read_end_destroy(re);
    run_ticks(loop, 2);
    rs_event_loop_destroy(loop);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        RS_TEST_PER_BACKEND_TESTS(pipe_, one_loop_writes_complete_async_in_order),
        RS_TEST_PER_BACKEND_TESTS(pipe_, write_from_completion_callback),
        RS_TEST_PER_BACKEND_TESTS(pipe_, zero_length_write_completes_in_order),
        RS_TEST_PER_BACKEND_TESTS(pipe_, one_loop_8mib_transfer_with_checksum),
        RS_TEST_PER_BACKEND_TESTS(pipe_, two_loops_small_writes_in_order),
        RS_TEST_PER_BACKEND_TESTS(pipe_, two_loops_8mib_transfer_with_checksum),
        RS_TEST_PER_BACKEND_TESTS(pipe_, ends_used_on_the_wrong_thread_are_refused),
        RS_TEST_PER_BACKEND_TESTS(pipe_, destroying_write_end_gives_reader_data_then_eof),
        RS_TEST_PER_BACKEND_TESTS(pipe_, destroying_read_end_gives_epipe_not_sigpipe),
        RS_TEST_PER_BACKEND_TESTS(pipe_, destroying_read_end_with_unread_data_gives_epipe),
        RS_TEST_PER_BACKEND_TESTS(pipe_, destroying_write_end_cancels_writes_in_flight),
        RS_TEST_PER_BACKEND_TESTS(pipe_, destroy_write_end_then_read_end_with_writes_in_flight),
        RS_TEST_PER_BACKEND_TESTS(pipe_, destroy_read_end_then_write_end_with_writes_in_flight),
        RS_TEST_PER_BACKEND_TESTS(pipe_, two_loops_destroy_write_end_first_with_writes_in_flight),
        RS_TEST_PER_BACKEND_TESTS(pipe_, two_loops_destroy_read_end_first_with_writes_in_flight),
        RS_TEST_PER_BACKEND_TESTS(pipe_, unused_ends_destroyed_in_either_order),
        cmocka_unit_test(pipe_ends_are_nonblocking_and_cloexec),
        cmocka_unit_test(pipe_new_with_null_args_is_einval),
        cmocka_unit_test(pipe_calls_with_null_args_are_einval),
        cmocka_unit_test(pipe_with_libc_allocator_works),
    };
    /* SIGPIPE at its default action, unblocked: a write that raised it would
     * kill this test (loop threads inherit the mask). Ignored in the portable
     * build, see rs_test_sigpipe_setup. */
#if !RESEAU_OS_WINDOWS
    rs_test_sigpipe_setup();
#endif
    return cmocka_run_group_tests_name("pipe", tests, NULL, NULL);
}
