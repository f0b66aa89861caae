/* Retry strategies: every default by number, the waits of each jitter mode
 * with a seeded random source (bounds per attempt, measured as the loop
 * task's deadline on a fake clock), the standard strategy's bucket (costs,
 * refunds, empty bucket, acquire timeout, partitions, threads), no-retry,
 * cancellation at shutdown, NULL handles, and allocation-failure sweeps. */
#include "test_util.h"

static uint64_t fake_now;
static uint64_t fake_clock(void *user_data) {
    (void)user_data;
    return fake_now;
}

static rs_event_loop_t *new_fake_loop(void) {
    rs_event_loop_options_t o;
    rs_event_loop_t *loop;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.clock_fn = fake_clock;
    fake_now = 1000 * RS_NS_PER_SEC;
    loop = rs_event_loop_new(&o, NULL);
    assert_non_null(loop);
    return loop;
}

/* A seeded xorshift64 that remembers what it returned. */
typedef struct seeded {
    uint64_t state;
    uint64_t last;
} seeded_t;

static uint64_t seeded_random(void *user_data) {
    seeded_t *s = (seeded_t *)user_data;
    s->state ^= s->state << 13;
    s->state ^= s->state >> 7;
    s->state ^= s->state << 17;
    s->last = s->state;
    return s->state;
}

typedef struct acq {
    int calls;
    int error;
    rs_retry_token_t *token;
    rs_retry_strategy_t *strategy;
} acq_t;

static void on_acquired(rs_retry_strategy_t *strategy, int error, rs_retry_token_t *token, void *user_data) {
    acq_t *a = (acq_t *)user_data;
    a->calls++;
    a->error = error;
    a->token = token;
    a->strategy = strategy;
}

typedef struct ready {
    int calls;
    int error;
    rs_retry_token_t *token;
} ready_t;

static void on_ready(rs_retry_token_t *token, int error, void *user_data) {
    ready_t *r = (ready_t *)user_data;
    r->calls++;
    r->error = error;
    r->token = token;
}

static rs_exponential_backoff_options_t backoff_options(rs_event_loop_t *loop) {
    rs_exponential_backoff_options_t o;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.loop = loop;
    return o;
}

static rs_retry_token_t *acquire(rs_retry_strategy_t *s, rs_event_loop_t *loop, const char *partition) {
    acq_t a;
    memset(&a, 0, sizeof(a));
    assert_int_equal(rs_retry_strategy_acquire_token(s, partition, 0, on_acquired, &a), RS_OK);
    assert_int_equal(a.calls, 0); /* never inline */
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.error, RS_OK);
    assert_ptr_equal(a.strategy, s);
    assert_non_null(a.token);
    return a.token;
}

/* Schedule a retry, read its wait off the loop's next deadline, move the
 * fake clock there and check on_ready ran then, not before. */
static uint64_t retry_wait_ms(rs_event_loop_t *loop, rs_retry_token_t *token, rs_retry_error_type_t type) {
    ready_t r;
    uint64_t deadline = 0;
    uint64_t wait;
    memset(&r, 0, sizeof(r));
    assert_int_equal(rs_retry_strategy_schedule_retry(token, type, on_ready, &r), RS_OK);
    assert_int_equal(r.calls, 0);
    assert_int_equal(rs_event_loop_next_deadline(loop, &deadline), RS_OK);
    assert_true(deadline >= fake_now);
    wait = deadline - fake_now;
    assert_int_equal(wait % RS_NS_PER_MS, 0);
    if (wait) {
        fake_now = deadline - 1;
        assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
        assert_int_equal(r.calls, 0);
    }
    fake_now = deadline;
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.error, RS_OK);
    assert_ptr_equal(r.token, token);
    return wait / RS_NS_PER_MS;
}

static void retry_defaults_by_number(void **state) {
    (void)state;
    assert_int_equal(RS_RETRY_DEFAULT_SCALE_MS, 500);
    assert_int_equal(RS_RETRY_DEFAULT_CAP_MS, 20000);
    assert_int_equal(RS_RETRY_DEFAULT_MAX_RETRIES, 5);
    assert_int_equal(RS_RETRY_MAX_RETRIES_LIMIT, 63);
    assert_int_equal(RS_STANDARD_RETRY_BUCKET_CAPACITY, 500);
    assert_int_equal(RS_STANDARD_RETRY_COST_TRANSIENT, 10);
    assert_int_equal(RS_STANDARD_RETRY_COST, 5);
    assert_int_equal(RS_STANDARD_RETRY_NO_RETRY_REFUND, 1);
    assert_int_equal(RS_RETRY_JITTER_DEFAULT, 0);
}

/* Zero options with jitter NONE: 500 ms doubling, 5 retries, then refused. */
static void retry_backoff_defaults_are_500ms_doubling_and_5_retries(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    rs_exponential_backoff_options_t o = backoff_options(loop);
    rs_retry_strategy_t *s;
    rs_retry_token_t *t;
    ready_t r;
    (void)state;
    o.jitter = RS_RETRY_JITTER_NONE;
    s = rs_retry_strategy_new_exponential_backoff(&o, NULL);
    assert_non_null(s);
    t = acquire(s, loop, NULL);
    assert_int_equal(retry_wait_ms(loop, t, RS_RETRY_ERROR_TRANSIENT), 500);
    assert_int_equal(retry_wait_ms(loop, t, RS_RETRY_ERROR_SERVER), 1000);
    assert_int_equal(retry_wait_ms(loop, t, RS_RETRY_ERROR_THROTTLING), 2000);
    assert_int_equal(retry_wait_ms(loop, t, RS_RETRY_ERROR_CLIENT), 4000);
    assert_int_equal(retry_wait_ms(loop, t, RS_RETRY_ERROR_TRANSIENT), 8000);
    assert_int_equal(rs_retry_token_get_retry_count(t), 5);
    assert_int_equal(rs_retry_strategy_schedule_retry(t, RS_RETRY_ERROR_TRANSIENT, on_ready, &r),
                     RS_ERETRY_MAX_EXCEEDED);
    assert_int_equal(rs_retry_token_record_success(t), RS_OK);
    assert_int_equal(rs_retry_token_record_success(t), RS_ESTATE);
    rs_retry_token_release(t);
    rs_retry_strategy_destroy(s);
    rs_event_loop_destroy(loop);
}

/* The cap (20 s by default) holds from the 7th retry on, up to 63 retries. */
static void retry_backoff_caps_at_20s_up_to_63_retries(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    rs_exponential_backoff_options_t o = backoff_options(loop);
    rs_retry_strategy_t *s;
    rs_retry_token_t *t;
    ready_t r;
    unsigned i;
    (void)state;
    o.jitter = RS_RETRY_JITTER_NONE;
    o.max_retries = 63;
    s = rs_retry_strategy_new_exponential_backoff(&o, NULL);
    assert_non_null(s);
    t = acquire(s, loop, "p");
    for (i = 0; i < 63; ++i) {
        uint64_t expected = i < 6 ? (uint64_t)500 << i : 20000;
        assert_int_equal(retry_wait_ms(loop, t, RS_RETRY_ERROR_TRANSIENT), expected);
    }
    assert_int_equal(rs_retry_strategy_schedule_retry(t, RS_RETRY_ERROR_TRANSIENT, on_ready, &r),
                     RS_ERETRY_MAX_EXCEEDED);
    rs_retry_token_release(t);
    rs_retry_strategy_destroy(s);
    rs_event_loop_destroy(loop);
}

static void retry_options_are_checked(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    rs_exponential_backoff_options_t o;
    rs_standard_retry_options_t so;
    rs_no_retry_options_t no;
    rs_retry_strategy_t *s;
    int err = 0;
    (void)state;
    assert_null(rs_retry_strategy_new_exponential_backoff(NULL, &err));
    assert_int_equal(err, RS_EINVAL);
    assert_null(rs_retry_strategy_new_standard(NULL, &err));
    assert_int_equal(err, RS_EINVAL);
    assert_null(rs_retry_strategy_new_no_retry(NULL, &err));
    assert_int_equal(err, RS_EINVAL);
    o = backoff_options(NULL); /* no loop, no group */
    assert_null(rs_retry_strategy_new_exponential_backoff(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    o = backoff_options(loop);
    o.max_retries = 64;
    assert_null(rs_retry_strategy_new_exponential_backoff(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    o.max_retries = 63;
    s = rs_retry_strategy_new_exponential_backoff(&o, &err);
    assert_non_null(s);
    assert_int_equal(err, RS_OK);
    rs_retry_strategy_destroy(s);
    o = backoff_options(loop);
    o.scale_ms = 100;
    o.cap_ms = 99;
    assert_null(rs_retry_strategy_new_exponential_backoff(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    o = backoff_options(loop);
    o.cap_ms = RS_RETRY_CAP_MS_LIMIT + 1;
    assert_null(rs_retry_strategy_new_exponential_backoff(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    o = backoff_options(loop);
    o.jitter = (rs_retry_jitter_t)4;
    assert_null(rs_retry_strategy_new_exponential_backoff(&o, &err));
    assert_int_equal(err, RS_EINVAL);
    memset(&so, 0, sizeof(so));
    so.backoff = backoff_options(loop);
    so.bucket_capacity = (size_t)INT_MAX + 1u;
    assert_null(rs_retry_strategy_new_standard(&so, &err));
    assert_int_equal(err, RS_EINVAL);
    memset(&no, 0, sizeof(no));
    no.allocator = &rs_test_allocator;
    assert_null(rs_retry_strategy_new_no_retry(&no, &err));
    assert_int_equal(err, RS_EINVAL);
    rs_event_loop_destroy(loop);
}

static uint64_t exp_ms(uint64_t scale, uint64_t cap, unsigned n) {
    return n >= 63 || scale > (cap >> n) ? cap : scale << n;
}

/* FULL (the default): uniform in [0, min(cap, scale x 2^n)], and exactly
 * random % (bound + 1) for the seeded source. */
static void retry_full_jitter_stays_in_bounds_per_attempt(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    rs_exponential_backoff_options_t o = backoff_options(loop);
    seeded_t seed = {UINT64_C(0x9E3779B97F4A7C15), 0};
    rs_retry_strategy_t *s;
    int round;
    (void)state;
    o.scale_ms = 100;
    o.cap_ms = 3000;
    o.max_retries = 10;
    o.random_fn = seeded_random;
    o.random_user_data = &seed;
    s = rs_retry_strategy_new_exponential_backoff(&o, NULL);
    assert_non_null(s);
    for (round = 0; round < 20; ++round) {
        rs_retry_token_t *t = acquire(s, loop, NULL);
        unsigned n;
        for (n = 0; n < 10; ++n) {
            uint64_t bound = exp_ms(100, 3000, n);
            uint64_t w = retry_wait_ms(loop, t, RS_RETRY_ERROR_SERVER);
            assert_true(w <= bound);
            assert_int_equal(w, seed.last % (bound + 1));
        }
        rs_retry_token_release(t);
    }
    rs_retry_strategy_destroy(s);
    rs_event_loop_destroy(loop);
}

/* DECORRELATED: uniform in [scale, min(cap, 3 x the last wait)], the first
 * "last wait" being scale. */
static void retry_decorrelated_jitter_stays_in_bounds_per_attempt(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    rs_exponential_backoff_options_t o = backoff_options(loop);
    seeded_t seed = {12345, 0};
    rs_retry_strategy_t *s;
    int round;
    (void)state;
    o.scale_ms = 50;
    o.cap_ms = 2000;
    o.max_retries = 12;
    o.jitter = RS_RETRY_JITTER_DECORRELATED;
    o.random_fn = seeded_random;
    o.random_user_data = &seed;
    s = rs_retry_strategy_new_exponential_backoff(&o, NULL);
    assert_non_null(s);
    for (round = 0; round < 20; ++round) {
        rs_retry_token_t *t = acquire(s, loop, NULL);
        uint64_t last = 50;
        unsigned n;
        for (n = 0; n < 12; ++n) {
            uint64_t hi = 3 * last > 2000 ? 2000 : 3 * last;
            uint64_t w = retry_wait_ms(loop, t, RS_RETRY_ERROR_TRANSIENT);
            assert_true(w >= 50 && w <= hi);
            assert_int_equal(w, 50 + seed.last % (hi - 50 + 1));
            last = w;
        }
        rs_retry_token_release(t);
    }
    rs_retry_strategy_destroy(s);
    rs_event_loop_destroy(loop);
}

/* NONE never calls the random source. */
static uint64_t forbidden_random(void *user_data) {
    (void)user_data;
    fail_msg("jitter NONE used the random source");
    return 0;
}

static void retry_no_jitter_ignores_the_random_source(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    rs_exponential_backoff_options_t o = backoff_options(loop);
    rs_retry_strategy_t *s;
    rs_retry_token_t *t;
    (void)state;
    o.jitter = RS_RETRY_JITTER_NONE;
    o.scale_ms = 7;
    o.random_fn = forbidden_random;
    s = rs_retry_strategy_new_exponential_backoff(&o, NULL);
    assert_non_null(s);
    t = acquire(s, loop, NULL);
    assert_int_equal(retry_wait_ms(loop, t, RS_RETRY_ERROR_TRANSIENT), 7);
    assert_int_equal(retry_wait_ms(loop, t, RS_RETRY_ERROR_TRANSIENT), 14);
    rs_retry_token_release(t);
    rs_retry_strategy_destroy(s);
    rs_event_loop_destroy(loop);
}

/* The default generator (no random_fn) also stays in bounds. */
static void retry_default_random_source_stays_in_bounds(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    rs_exponential_backoff_options_t o = backoff_options(loop);
    rs_retry_strategy_t *s;
    rs_retry_token_t *t;
    unsigned n;
    (void)state;
    s = rs_retry_strategy_new_exponential_backoff(&o, NULL);
    assert_non_null(s);
    t = acquire(s, loop, NULL);
    for (n = 0; n < 5; ++n) {
        assert_true(retry_wait_ms(loop, t, RS_RETRY_ERROR_TRANSIENT) <= exp_ms(500, 20000, n));
    }
    rs_retry_token_release(t);
    rs_retry_strategy_destroy(s);
    rs_event_loop_destroy(loop);
}

static void retry_second_schedule_while_waiting_is_ebusy(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    rs_exponential_backoff_options_t o = backoff_options(loop);
    rs_retry_strategy_t *s;
    rs_retry_token_t *t;
    ready_t r1;
    ready_t r2;
    (void)state;
    memset(&r1, 0, sizeof(r1));
    memset(&r2, 0, sizeof(r2));
    s = rs_retry_strategy_new_exponential_backoff(&o, NULL);
    assert_non_null(s);
    t = acquire(s, loop, NULL);
    assert_int_equal(rs_retry_strategy_schedule_retry(t, RS_RETRY_ERROR_TRANSIENT, on_ready, &r1), RS_OK);
    assert_int_equal(rs_retry_strategy_schedule_retry(t, RS_RETRY_ERROR_TRANSIENT, on_ready, &r2), RS_EBUSY);
    assert_int_equal(rs_retry_strategy_schedule_retry(t, (rs_retry_error_type_t)9, on_ready, &r2), RS_EINVAL);
    fake_now += 1000 * RS_NS_PER_MS;
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r2.calls, 0);
    assert_int_equal(rs_retry_token_get_retry_count(t), 1);
    rs_retry_token_release(t);
    rs_retry_strategy_destroy(s);
    rs_event_loop_destroy(loop);
}

/* ---- standard ------------------------------------------------------------ */

static rs_retry_strategy_t *new_standard(rs_event_loop_t *loop, size_t capacity) {
    rs_standard_retry_options_t o;
    rs_retry_strategy_t *s;
    memset(&o, 0, sizeof(o));
    o.backoff = backoff_options(loop);
    o.backoff.jitter = RS_RETRY_JITTER_NONE;
    o.backoff.max_retries = 63;
    o.bucket_capacity = capacity;
    s = rs_retry_strategy_new_standard(&o, NULL);
    assert_non_null(s);
    return s;
}

static void standard_bucket_costs_and_refunds(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    rs_retry_strategy_t *s = new_standard(loop, 0);
    rs_retry_token_t *t;
    (void)state;
    assert_int_equal(rs_standard_retry_get_capacity(s, "a"), 500); /* unseen: full */
    t = acquire(s, loop, "a");
    assert_int_equal(rs_standard_retry_get_capacity(s, "a"), 500); /* acquiring is free */
    retry_wait_ms(loop, t, RS_RETRY_ERROR_TRANSIENT);
    assert_int_equal(rs_standard_retry_get_capacity(s, "a"), 490);
    retry_wait_ms(loop, t, RS_RETRY_ERROR_THROTTLING);
    assert_int_equal(rs_standard_retry_get_capacity(s, "a"), 485);
    retry_wait_ms(loop, t, RS_RETRY_ERROR_SERVER);
    assert_int_equal(rs_standard_retry_get_capacity(s, "a"), 480);
    retry_wait_ms(loop, t, RS_RETRY_ERROR_CLIENT);
    assert_int_equal(rs_standard_retry_get_capacity(s, "a"), 475);
    retry_wait_ms(loop, t, RS_RETRY_ERROR_TRANSIENT);
    assert_int_equal(rs_standard_retry_get_capacity(s, "a"), 465);
    /* A success after retries gives back the last retry's cost. */
    assert_int_equal(rs_retry_token_record_success(t), RS_OK);
    assert_int_equal(rs_standard_retry_get_capacity(s, "a"), 475);
    assert_int_equal(rs_retry_token_record_success(t), RS_ESTATE);
    assert_int_equal(rs_standard_retry_get_capacity(s, "a"), 475);
    rs_retry_token_release(t);
    /* A first-try success gives back 1. */
    t = acquire(s, loop, "a");
    assert_int_equal(rs_retry_token_record_success(t), RS_OK);
    assert_int_equal(rs_standard_retry_get_capacity(s, "a"), 476);
    rs_retry_token_release(t);
    /* Never above the capacity. */
    t = acquire(s, loop, "full");
    assert_int_equal(rs_retry_token_record_success(t), RS_OK);
    assert_int_equal(rs_standard_retry_get_capacity(s, "full"), 500);
    rs_retry_token_release(t);
    rs_retry_strategy_destroy(s);
    rs_event_loop_destroy(loop);
}

static void standard_empty_bucket_fails_acquire_and_retry(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    rs_retry_strategy_t *s = new_standard(loop, 15);
    rs_retry_token_t *t;
    rs_retry_token_t *u;
    acq_t a;
    ready_t r;
    (void)state;
    memset(&a, 0, sizeof(a));
    t = acquire(s, loop, NULL);
    u = acquire(s, loop, "");  /* "" and NULL are the same partition */
    retry_wait_ms(loop, t, RS_RETRY_ERROR_TRANSIENT); /* 15 -> 5 */
    assert_int_equal(rs_retry_strategy_schedule_retry(u, RS_RETRY_ERROR_TRANSIENT, on_ready, &r),
                     RS_ERETRY_QUOTA_EXHAUSTED);       /* 5 < 10 */
    retry_wait_ms(loop, u, RS_RETRY_ERROR_SERVER);   /* 5 -> 0 */
    assert_int_equal(rs_standard_retry_get_capacity(s, NULL), 0);
    assert_int_equal(rs_retry_strategy_acquire_token(s, NULL, 0, on_acquired, &a), RS_ERETRY_QUOTA_EXHAUSTED);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(a.calls, 0);
    rs_retry_token_release(t);
    rs_retry_token_release(u);
    rs_retry_strategy_destroy(s);
    rs_event_loop_destroy(loop);
}

/* With a timeout, acquire on an empty bucket waits for a refund, and gives
 * up with RS_ERETRY_QUOTA_EXHAUSTED when the timeout passes. */
static void standard_acquire_timeout(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    rs_retry_strategy_t *s = new_standard(loop, 5);
    rs_retry_token_t *t = acquire(s, loop, "p");
    acq_t a;
    acq_t b;
    int i;
    (void)state;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    retry_wait_ms(loop, t, RS_RETRY_ERROR_SERVER); /* 5 -> 0 */
    assert_int_equal(rs_retry_strategy_acquire_token(s, "p", 100, on_acquired, &a), RS_OK);
    for (i = 0; i < 12; ++i) { /* 0 .. 99 ms: still waiting */
        assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
        assert_int_equal(a.calls, 0);
        fake_now += 9 * RS_NS_PER_MS;
    }
    fake_now += 2 * RS_NS_PER_MS; /* 110 ms */
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.error, RS_ERETRY_QUOTA_EXHAUSTED);
    assert_null(a.token);
    /* A refund while waiting hands out the token. */
    assert_int_equal(rs_retry_strategy_acquire_token(s, "p", 1000, on_acquired, &b), RS_OK);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(b.calls, 0);
    assert_int_equal(rs_retry_token_record_success(t), RS_OK); /* +5 */
    fake_now += RS_STANDARD_RETRY_ACQUIRE_POLL_MS * RS_NS_PER_MS;
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.error, RS_OK);
    assert_non_null(b.token);
    rs_retry_token_release(b.token);
    rs_retry_token_release(t);
    rs_retry_strategy_destroy(s);
    rs_event_loop_destroy(loop);
}

static void standard_partitions_are_independent(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    rs_retry_strategy_t *s = new_standard(loop, 10);
    rs_retry_token_t *a = acquire(s, loop, "host-a");
    rs_retry_token_t *b;
    acq_t x;
    (void)state;
    memset(&x, 0, sizeof(x));
    retry_wait_ms(loop, a, RS_RETRY_ERROR_TRANSIENT);
    assert_int_equal(rs_standard_retry_get_capacity(s, "host-a"), 0);
    assert_int_equal(rs_standard_retry_get_capacity(s, "host-b"), 10);
    assert_int_equal(rs_retry_strategy_acquire_token(s, "host-a", 0, on_acquired, &x), RS_ERETRY_QUOTA_EXHAUSTED);
    b = acquire(s, loop, "host-b");
    retry_wait_ms(loop, b, RS_RETRY_ERROR_SERVER);
    assert_int_equal(rs_standard_retry_get_capacity(s, "host-b"), 5);
    assert_int_equal(rs_standard_retry_get_capacity(s, "host-a"), 0);
    rs_retry_token_release(a);
    rs_retry_token_release(b);
    rs_retry_strategy_destroy(s);
    rs_event_loop_destroy(loop);
}

/* Threads retry on their own partitions and on a shared one at once (run
 * under TSan); the shared bucket ends exactly where the arithmetic says. */
#define STD_THREADS 4
#define STD_RETRIES 20

typedef struct std_worker {
    rs_retry_strategy_t *strategy;
    const char *partition;
    rs_mutex_t lock;
    rs_condvar_t cond;
    int acquired;
    int ready;
    int error;       /* the worker's own */
    int cb_error;    /* the callbacks', under lock */
    rs_retry_token_t *token;
    rs_thread_t thread;
} std_worker_t;

static void std_on_acquired(rs_retry_strategy_t *s, int error, rs_retry_token_t *token, void *user_data) {
    std_worker_t *w = (std_worker_t *)user_data;
    (void)s;
    rs_mutex_lock(&w->lock);
    w->acquired++;
    w->cb_error = error;
    w->token = token;
    rs_condvar_signal(&w->cond);
    rs_mutex_unlock(&w->lock);
}

static void std_on_ready(rs_retry_token_t *token, int error, void *user_data) {
    std_worker_t *w = (std_worker_t *)user_data;
    (void)token;
    rs_mutex_lock(&w->lock);
    w->ready++;
    w->cb_error = error;
    rs_condvar_signal(&w->cond);
    rs_mutex_unlock(&w->lock);
}

static void std_work(void *arg) {
    std_worker_t *w = (std_worker_t *)arg;
    int i;
    if (rs_retry_strategy_acquire_token(w->strategy, w->partition, 0, std_on_acquired, w) != RS_OK) {
        w->error = RS_EUNKNOWN;
        return;
    }
    rs_mutex_lock(&w->lock);
    while (w->acquired == 0) {
        rs_condvar_wait(&w->cond, &w->lock);
    }
    w->error = w->cb_error;
    rs_mutex_unlock(&w->lock);
    if (w->error != RS_OK) {
        return;
    }
    for (i = 0; i < STD_RETRIES && w->error == RS_OK; ++i) {
        if ((w->error = rs_retry_strategy_schedule_retry(w->token, RS_RETRY_ERROR_SERVER, std_on_ready, w)) != RS_OK) {
            break;
        }
        rs_mutex_lock(&w->lock);
        while (w->ready == i) {
            rs_condvar_wait(&w->cond, &w->lock);
        }
        w->error = w->cb_error;
        rs_mutex_unlock(&w->lock);
        (void)rs_standard_retry_get_capacity(w->strategy, w->partition);
    }
    if (w->error == RS_OK) {
        w->error = rs_retry_token_record_success(w->token);
    }
    rs_retry_token_release(w->token);
}

static void standard_is_thread_safe_by_partition(void **state) {
    static const char *const partitions[STD_THREADS] = {"shared", "shared", "own-1", "own-2"};
    rs_event_loop_options_t lo;
    rs_event_loop_t *loop;
    rs_standard_retry_options_t o;
    rs_retry_strategy_t *s;
    std_worker_t w[STD_THREADS];
    int i;
    (void)state;
    memset(&lo, 0, sizeof(lo));
    lo.allocator = &rs_test_allocator;
    loop = rs_event_loop_new(&lo, NULL);
    assert_non_null(loop);
    assert_int_equal(rs_event_loop_start(loop), RS_OK);
    memset(&o, 0, sizeof(o));
    o.backoff = backoff_options(loop);
    o.backoff.scale_ms = 1;
    o.backoff.cap_ms = 1;
    o.backoff.jitter = RS_RETRY_JITTER_NONE;
    o.backoff.max_retries = STD_RETRIES;
    o.bucket_capacity = 1000;
    s = rs_retry_strategy_new_standard(&o, NULL);
    assert_non_null(s);
    memset(w, 0, sizeof(w));
    for (i = 0; i < STD_THREADS; ++i) {
        w[i].strategy = s;
        w[i].partition = partitions[i];
        assert_int_equal(rs_mutex_init(&w[i].lock), RS_OK);
        assert_int_equal(rs_condvar_init(&w[i].cond), RS_OK);
        assert_int_equal(rs_thread_launch(&w[i].thread, std_work, &w[i], NULL), RS_OK);
    }
    for (i = 0; i < STD_THREADS; ++i) {
        assert_int_equal(rs_thread_join(&w[i].thread), RS_OK);
        assert_int_equal(w[i].error, RS_OK);
        assert_int_equal(w[i].ready, STD_RETRIES);
    }
    /* Each token: 20 retries at 5, then the last cost (5) back. */
    assert_int_equal(rs_standard_retry_get_capacity(s, "shared"), 1000 - 2 * (STD_RETRIES * 5 - 5));
    assert_int_equal(rs_standard_retry_get_capacity(s, "own-1"), 1000 - (STD_RETRIES * 5 - 5));
    assert_int_equal(rs_standard_retry_get_capacity(s, "own-2"), 1000 - (STD_RETRIES * 5 - 5));
    rs_retry_strategy_destroy(s);
    assert_int_equal(rs_event_loop_stop(loop), RS_OK);
    assert_int_equal(rs_event_loop_wait(loop), RS_OK);
    rs_event_loop_destroy(loop);
    for (i = 0; i < STD_THREADS; ++i) {
        rs_condvar_cleanup(&w[i].cond);
        rs_mutex_cleanup(&w[i].lock);
    }
}

/* ---- no retry, groups ---------------------------------------------------- */

static void no_retry_never_schedules_a_retry(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    rs_no_retry_options_t o;
    rs_retry_strategy_t *s;
    rs_retry_token_t *t;
    ready_t r;
    (void)state;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.loop = loop;
    s = rs_retry_strategy_new_no_retry(&o, NULL);
    assert_non_null(s);
    t = acquire(s, loop, "x");
    memset(&r, 0, sizeof(r));
    assert_int_equal(rs_retry_strategy_schedule_retry(t, RS_RETRY_ERROR_TRANSIENT, on_ready, &r),
                     RS_ERETRY_NOT_ALLOWED);
    assert_int_equal(rs_retry_strategy_schedule_retry(t, RS_RETRY_ERROR_THROTTLING, on_ready, &r),
                     RS_ERETRY_NOT_ALLOWED);
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(r.calls, 0);
    assert_int_equal(rs_retry_token_record_success(t), RS_OK);
    assert_int_equal(rs_standard_retry_get_capacity(s, "x"), 0); /* not a standard strategy */
    rs_retry_token_release(t);
    rs_retry_strategy_destroy(s);
    rs_event_loop_destroy(loop);
}

typedef struct group_wait {
    rs_mutex_t lock;
    rs_condvar_t cond;
    acq_t a;
    bool on_a_group_loop;
    rs_event_loop_group_t *group;
} group_wait_t;

static void group_on_acquired(rs_retry_strategy_t *s, int error, rs_retry_token_t *token, void *user_data) {
    group_wait_t *g = (group_wait_t *)user_data;
    size_t i;
    bool on = false;
    for (i = 0; i < rs_event_loop_group_get_loop_count(g->group); ++i) {
        on = on || rs_event_loop_is_on_loop_thread(rs_event_loop_group_get_loop_at(g->group, i));
    }
    rs_mutex_lock(&g->lock);
    on_acquired(s, error, token, &g->a);
    g->on_a_group_loop = on;
    rs_condvar_signal(&g->cond);
    rs_mutex_unlock(&g->lock);
}

static void retry_with_a_group_runs_callbacks_on_a_group_loop(void **state) {
    rs_event_loop_group_options_t go;
    rs_exponential_backoff_options_t o = backoff_options(NULL);
    rs_retry_strategy_t *s;
    group_wait_t g;
    (void)state;
    memset(&g, 0, sizeof(g));
    memset(&go, 0, sizeof(go));
    go.allocator = &rs_test_allocator;
    go.loop_count = 2;
    g.group = rs_event_loop_group_new(&go, NULL);
    assert_non_null(g.group);
    assert_int_equal(rs_mutex_init(&g.lock), RS_OK);
    assert_int_equal(rs_condvar_init(&g.cond), RS_OK);
    o.group = g.group;
    s = rs_retry_strategy_new_exponential_backoff(&o, NULL);
    assert_non_null(s);
    assert_int_equal(rs_retry_strategy_acquire_token(s, NULL, 0, group_on_acquired, &g), RS_OK);
    rs_mutex_lock(&g.lock);
    while (g.a.calls == 0) {
        rs_condvar_wait(&g.cond, &g.lock);
    }
    rs_mutex_unlock(&g.lock);
    assert_int_equal(g.a.error, RS_OK);
    assert_true(g.on_a_group_loop);
    rs_retry_token_release(g.a.token);
    rs_retry_strategy_destroy(s);
    assert_int_equal(rs_event_loop_group_destroy(g.group), RS_OK);
    rs_condvar_cleanup(&g.cond);
    rs_mutex_cleanup(&g.lock);
}

/* ---- shutdown ------------------------------------------------------------ */

static void retry_destroy_with_retries_scheduled_cancels_each_once(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    rs_retry_strategy_t *s = new_standard(loop, 0);
    rs_retry_token_t *t1 = acquire(s, loop, "a");
    rs_retry_token_t *t2 = acquire(s, loop, "b");
    rs_retry_token_t *idle = acquire(s, loop, "c");
    ready_t r1;
    ready_t r2;
    acq_t pending;
    int i;
    (void)state;
    memset(&r1, 0, sizeof(r1));
    memset(&r2, 0, sizeof(r2));
    memset(&pending, 0, sizeof(pending));
    assert_int_equal(rs_retry_strategy_schedule_retry(t1, RS_RETRY_ERROR_TRANSIENT, on_ready, &r1), RS_OK);
    assert_int_equal(rs_retry_strategy_schedule_retry(t2, RS_RETRY_ERROR_SERVER, on_ready, &r2), RS_OK);
    assert_int_equal(rs_retry_strategy_acquire_token(s, "d", 0, on_acquired, &pending), RS_OK);
    rs_retry_strategy_destroy(s); /* the tokens keep the memory alive */
    assert_int_equal(r1.calls + r2.calls + pending.calls, 0);
    for (i = 0; i < 3; ++i) { /* the clock does not move: no backoff is waited out */
        assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    }
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r1.error, RS_ECANCELED);
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r2.error, RS_ECANCELED);
    assert_int_equal(pending.calls, 1);
    assert_int_equal(pending.error, RS_ECANCELED);
    assert_null(pending.token);
    assert_int_equal(rs_retry_strategy_schedule_retry(idle, RS_RETRY_ERROR_SERVER, on_ready, &r1), RS_ECANCELED);
    fake_now += 3600 * RS_NS_PER_SEC;
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r2.calls, 1);
    rs_retry_token_release(t1);
    rs_retry_token_release(t2);
    rs_retry_token_release(idle); /* the last token frees the strategy */
    rs_event_loop_destroy(loop);
}

static void retry_loop_destroy_with_retries_scheduled_cancels_each_once(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    rs_exponential_backoff_options_t o = backoff_options(loop);
    rs_retry_strategy_t *s;
    rs_retry_token_t *t;
    ready_t r;
    acq_t pending;
    (void)state;
    memset(&r, 0, sizeof(r));
    memset(&pending, 0, sizeof(pending));
    s = rs_retry_strategy_new_exponential_backoff(&o, NULL);
    assert_non_null(s);
    t = acquire(s, loop, NULL);
    assert_int_equal(rs_retry_strategy_schedule_retry(t, RS_RETRY_ERROR_TRANSIENT, on_ready, &r), RS_OK);
    assert_int_equal(rs_retry_strategy_acquire_token(s, NULL, 0, on_acquired, &pending), RS_OK);
    rs_event_loop_destroy(loop);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.error, RS_ECANCELED);
    assert_int_equal(pending.calls, 1);
    assert_int_equal(pending.error, RS_ECANCELED);
    rs_retry_token_release(t);
    rs_retry_strategy_destroy(s);
}

/* ---- NULL handles and a custom vtable ------------------------------------ */

static void retry_null_handles(void **state) {
    rs_retry_strategy_t empty;
    rs_retry_token_t orphan;
    acq_t a;
    ready_t r;
    (void)state;
    memset(&empty, 0, sizeof(empty));
    memset(&orphan, 0, sizeof(orphan));
    rs_retry_strategy_destroy(NULL);
    rs_retry_strategy_destroy(&empty);
    assert_int_equal(rs_retry_strategy_acquire_token(NULL, NULL, 0, on_acquired, &a), RS_EINVAL);
    assert_int_equal(rs_retry_strategy_acquire_token(&empty, NULL, 0, on_acquired, &a), RS_EINVAL);
    assert_int_equal(rs_retry_strategy_schedule_retry(NULL, RS_RETRY_ERROR_TRANSIENT, on_ready, &r), RS_EINVAL);
    assert_int_equal(rs_retry_strategy_schedule_retry(&orphan, RS_RETRY_ERROR_TRANSIENT, on_ready, &r), RS_EINVAL);
    assert_int_equal(rs_retry_token_record_success(NULL), RS_EINVAL);
    assert_int_equal(rs_retry_token_record_success(&orphan), RS_EINVAL);
    rs_retry_token_release(NULL);
    rs_retry_token_release(&orphan);
    assert_int_equal(rs_retry_token_get_retry_count(NULL), 0);
    assert_int_equal(rs_standard_retry_get_capacity(NULL, "p"), 0);
}

static void retry_null_callbacks_are_einval(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    rs_exponential_backoff_options_t o = backoff_options(loop);
    rs_retry_strategy_t *s = rs_retry_strategy_new_exponential_backoff(&o, NULL);
    rs_retry_token_t *t;
    (void)state;
    assert_non_null(s);
    assert_int_equal(rs_retry_strategy_acquire_token(s, NULL, 0, NULL, NULL), RS_EINVAL);
    t = acquire(s, loop, NULL);
    assert_int_equal(rs_retry_strategy_schedule_retry(t, RS_RETRY_ERROR_TRANSIENT, NULL, NULL), RS_EINVAL);
    rs_retry_token_release(t);
    rs_retry_strategy_destroy(s);
    rs_event_loop_destroy(loop);
}

static int custom_calls;
static int custom_acquire(rs_retry_strategy_t *s, const char *p, uint64_t t, rs_retry_token_acquired_fn *fn,
                          void *ud) {
    (void)s;
    (void)p;
    (void)t;
    (void)fn;
    (void)ud;
    custom_calls++;
    return RS_ENOTSUP;
}
static void custom_destroy(rs_retry_strategy_t *s) {
    (void)s;
    custom_calls += 100;
}

static void retry_custom_vtable_is_dispatched(void **state) {
    static const rs_retry_strategy_vtable_t vt = {custom_acquire, NULL, NULL, NULL, custom_destroy};
    rs_retry_strategy_t s;
    rs_retry_token_t t;
    acq_t a;
    ready_t r;
    (void)state;
    s.vtable = &vt;
    s.impl = NULL;
    t.strategy = &s;
    t.impl = NULL;
    custom_calls = 0;
    assert_int_equal(rs_retry_strategy_acquire_token(&s, "p", 5, on_acquired, &a), RS_ENOTSUP);
    assert_int_equal(rs_retry_strategy_schedule_retry(&t, RS_RETRY_ERROR_TRANSIENT, on_ready, &r), RS_EINVAL);
    assert_int_equal(rs_retry_token_get_retry_count(&t), 0);
    rs_retry_token_release(&t);
    rs_retry_strategy_destroy(&s);
    assert_int_equal(custom_calls, 101);
}

/* ---- allocation failures ------------------------------------------------- */

/* A standard strategy through one retry and a success; every allocation
 * number fails in turn and must end in a clean error. */
static int standard_scenario(const rs_allocator_t *allocator, rs_event_loop_t *loop) {
    rs_standard_retry_options_t o;
    rs_retry_strategy_t *s;
    acq_t a;
    ready_t r;
    int err = RS_OK;
    memset(&o, 0, sizeof(o));
    o.backoff.allocator = allocator;
    o.backoff.loop = loop;
    o.backoff.jitter = RS_RETRY_JITTER_NONE;
    memset(&a, 0, sizeof(a));
    memset(&r, 0, sizeof(r));
    if (!(s = rs_retry_strategy_new_standard(&o, &err))) {
        return err;
    }
    if ((err = rs_retry_strategy_acquire_token(s, "partition", 0, on_acquired, &a)) != RS_OK) {
        rs_retry_strategy_destroy(s);
        return err;
    }
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(a.error, RS_OK);
    assert_int_equal(rs_retry_strategy_schedule_retry(a.token, RS_RETRY_ERROR_TRANSIENT, on_ready, &r), RS_OK);
    fake_now += 1000 * RS_NS_PER_MS;
    assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
    assert_int_equal(r.calls, 1);
    assert_int_equal(rs_retry_token_record_success(a.token), RS_OK);
    rs_retry_token_release(a.token);
    rs_retry_strategy_destroy(s);
    return RS_OK;
}

static void retry_alloc_sweep_standard(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    size_t n;
    (void)state;
    for (n = 1; n < 100; ++n) {
        rs_test_failing_alloc_t fa;
        int err;
        rs_test_failing_alloc_init(&fa, n);
        err = standard_scenario(&fa.allocator, loop);
        if (rs_test_failing_alloc_failures(&fa) == 0) {
            assert_int_equal(err, RS_OK);
            print_message("      sweep converged: the scenario makes %zu allocation(s)\n", n - 1);
            rs_event_loop_destroy(loop);
            return;
        }
        assert_int_equal(err, RS_ENOMEM);
    }
    fail_msg("the sweep did not converge");
}

static void retry_alloc_sweep_backoff_and_no_retry(void **state) {
    rs_event_loop_t *loop = new_fake_loop();
    int kind;
    (void)state;
    for (kind = 0; kind < 2; ++kind) {
        size_t n;
        for (n = 1; n < 100; ++n) {
            rs_test_failing_alloc_t fa;
            rs_exponential_backoff_options_t o = backoff_options(loop);
            rs_no_retry_options_t no;
            rs_retry_strategy_t *s;
            acq_t a;
            int err = RS_OK;
            rs_test_failing_alloc_init(&fa, n);
            memset(&a, 0, sizeof(a));
            memset(&no, 0, sizeof(no));
            o.allocator = &fa.allocator;
            no.allocator = &fa.allocator;
            no.loop = loop;
            s = kind == 0 ? rs_retry_strategy_new_exponential_backoff(&o, &err) : rs_retry_strategy_new_no_retry(&no, &err);
            if (s) {
                err = rs_retry_strategy_acquire_token(s, NULL, 0, on_acquired, &a);
                assert_int_equal(rs_event_loop_run_once(loop, 0), RS_OK);
                if (a.token) {
                    rs_retry_token_release(a.token);
                }
                rs_retry_strategy_destroy(s);
            }
            if (rs_test_failing_alloc_failures(&fa) == 0) {
                assert_int_equal(err, RS_OK);
                break;
            }
            assert_int_equal(err, RS_ENOMEM);
        }
        assert_true(n < 100);
    }
    rs_event_loop_destroy(loop);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(retry_defaults_by_number),
        cmocka_unit_test(retry_backoff_defaults_are_500ms_doubling_and_5_retries),
        cmocka_unit_test(retry_backoff_caps_at_20s_up_to_63_retries),
        cmocka_unit_test(retry_options_are_checked),
        cmocka_unit_test(retry_full_jitter_stays_in_bounds_per_attempt),
        cmocka_unit_test(retry_decorrelated_jitter_stays_in_bounds_per_attempt),
        cmocka_unit_test(retry_no_jitter_ignores_the_random_source),
        cmocka_unit_test(retry_default_random_source_stays_in_bounds),
        cmocka_unit_test(retry_second_schedule_while_waiting_is_ebusy),
        cmocka_unit_test(standard_bucket_costs_and_refunds),
        cmocka_unit_test(standard_empty_bucket_fails_acquire_and_retry),
        cmocka_unit_test(standard_acquire_timeout),
        cmocka_unit_test(standard_partitions_are_independent),
        cmocka_unit_test(standard_is_thread_safe_by_partition),
        cmocka_unit_test(no_retry_never_schedules_a_retry),
        cmocka_unit_test(retry_with_a_group_runs_callbacks_on_a_group_loop),
        cmocka_unit_test(retry_destroy_with_retries_scheduled_cancels_each_once),
        cmocka_unit_test(retry_loop_destroy_with_retries_scheduled_cancels_each_once),
        cmocka_unit_test(retry_null_handles),
        cmocka_unit_test(retry_null_callbacks_are_einval),
        cmocka_unit_test(retry_custom_vtable_is_dispatched),
        cmocka_unit_test(retry_alloc_sweep_standard),
        cmocka_unit_test(retry_alloc_sweep_backoff_and_no_retry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
