/*
 * Retry strategies.
 *
 * A strategy decides whether and when a failed operation is tried again. The
 * flow for one operation: acquire a token for a partition (a name such as a
 * host, so that one failing endpoint cannot use up another's quota); try;
 * on a retryable failure schedule a retry and try again from on_ready; on
 * success record it; in every case release the token.
 *
 * Built-in strategies:
 *   exponential backoff  waits scale x 2^n (capped) with a choice of jitter;
 *   standard             exponential backoff plus a token bucket per
 *                        partition, so a failing service is not retried
 *                        in a storm (the AWS SDKs' "standard" mode);
 *   no retry             acquires tokens but never retries.
 * The vtable is public: a custom strategy fills an rs_retry_strategy_t with
 * its own vtable and impl.
 *
 * Threads: every function may be called from any thread. Callbacks run on the
 * token's loop (the `loop` option, or one picked from `group` at acquire),
 * never inline in the call that registered them; a wait is a timed task on
 * that loop, never a sleep. The loop or group must outlive the strategy.
 *
 * Lifetimes: rs_retry_strategy_destroy drops the caller's reference; tokens
 * keep the strategy alive until they are released. Destroying the strategy,
 * or the loop, with retries (or acquires) pending completes each pending
 * callback once, with RS_ECANCELED, on the loop thread, without waiting out
 * the backoff.
 */
typedef enum rs_retry_error_type {
    RS_RETRY_ERROR_TRANSIENT = 0,  /* a connection reset or timeout */
    RS_RETRY_ERROR_THROTTLING = 1, /* the server asked to slow down */
    RS_RETRY_ERROR_SERVER = 2,     /* the server failed (a 5xx) */
    RS_RETRY_ERROR_CLIENT = 3      /* the request was at fault (a 4xx) */
} rs_retry_error_type_t;

typedef struct rs_retry_strategy rs_retry_strategy_t;
typedef struct rs_retry_token rs_retry_token_t;

/* error RS_OK: token is the caller's until rs_retry_token_release. Otherwise
 * token is NULL and error is RS_ECANCELED (strategy or loop destroyed),
 * RS_ERETRY_QUOTA_EXHAUSTED (standard: the bucket stayed empty until the
 * timeout) or RS_ENOMEM. */
typedef void rs_retry_token_acquired_fn(rs_retry_strategy_t *strategy, int error, rs_retry_token_t *token,
                                        void *user_data);
/* error RS_OK: try again now. RS_ECANCELED: the strategy or the loop was
 * destroyed; do not try again. The token stays the caller's either way. */
typedef void rs_retry_ready_fn(rs_retry_token_t *token, int error, void *user_data);

typedef struct rs_retry_strategy_vtable {
    int (*acquire_token)(rs_retry_strategy_t *strategy, const char *partition, uint64_t timeout_ms,
                         rs_retry_token_acquired_fn *on_acquired, void *user_data);
    int (*schedule_retry)(rs_retry_token_t *token, rs_retry_error_type_t error_type, rs_retry_ready_fn *on_ready,
                          void *user_data);
    int (*record_success)(rs_retry_token_t *token);
    void (*release_token)(rs_retry_token_t *token);
    void (*destroy)(rs_retry_strategy_t *strategy);
} rs_retry_strategy_vtable_t;

struct rs_retry_strategy {
    const rs_retry_strategy_vtable_t *vtable;
    void *impl;
};

struct rs_retry_token {
    rs_retry_strategy_t *strategy;
    void *impl;
};

/* Defaults, and the limits that options are checked against. */
#define RS_RETRY_DEFAULT_SCALE_MS 500u
#define RS_RETRY_DEFAULT_CAP_MS 20000u
#define RS_RETRY_DEFAULT_MAX_RETRIES 5u
/* 2^63 x scale is the largest doubling that a uint64_t can still count. */
#define RS_RETRY_MAX_RETRIES_LIMIT 63u
/* Largest cap: the delay is kept in nanoseconds on the loop's clock. */
#define RS_RETRY_CAP_MS_LIMIT (UINT64_MAX / 1000000u / 4u)
/* Standard strategy: the bucket per partition, what a retry costs, and what a
 * success gives back. A success on the first try refunds 1, so a healthy
 * partition slowly earns back what a bad spell spent. */
#define RS_STANDARD_RETRY_BUCKET_CAPACITY 500u
#define RS_STANDARD_RETRY_COST_TRANSIENT 10u
#define RS_STANDARD_RETRY_COST 5u
#define RS_STANDARD_RETRY_NO_RETRY_REFUND 1u
/* How often an acquire with a timeout looks at an empty bucket again.
 * Refunds come from any thread; looking again on the token's loop needs no
 * cross-thread wakeup, and an empty bucket is rare and slow to refill. */
#define RS_STANDARD_RETRY_ACQUIRE_POLL_MS 10u

typedef enum rs_retry_jitter {
    RS_RETRY_JITTER_DEFAULT = 0,     /* FULL */
    RS_RETRY_JITTER_NONE = 1,        /* min(cap, scale x 2^n) */
    RS_RETRY_JITTER_FULL = 2,        /* uniform in [0, min(cap, scale x 2^n)] */
    RS_RETRY_JITTER_DECORRELATED = 3 /* uniform in [scale, min(cap, 3 x the last wait)] */
} rs_retry_jitter_t;

/* A source of uniformly distributed 64-bit numbers. Called with the
 * strategy's lock held, so it needs no locking of its own; it must not call
 * into the strategy. */
typedef uint64_t rs_retry_random_fn(void *user_data);

typedef struct rs_exponential_backoff_options {
    const rs_allocator_t *allocator; /* copied (default: NULL, libc) */
    rs_event_loop_t *loop;           /* where callbacks and waits run (default: NULL: a loop of `group`) */
    rs_event_loop_group_t *group;    /* used when `loop` is NULL; one of the two is required (default: NULL) */
    uint64_t scale_ms;               /* the first wait's scale (default: 0, RS_RETRY_DEFAULT_SCALE_MS, 500) */
    uint64_t cap_ms;                 /* the longest wait, >= scale (default: 0, RS_RETRY_DEFAULT_CAP_MS, 20 s) */
    unsigned max_retries;            /* retries per token (default: 0, RS_RETRY_DEFAULT_MAX_RETRIES, 5;
                                        at most RS_RETRY_MAX_RETRIES_LIMIT, 63) */
    rs_retry_jitter_t jitter;        /* (default: DEFAULT, FULL) */
    rs_retry_random_fn *random_fn;   /* (default: NULL, an xorshift generator seeded from the clock) */
    void *random_user_data;          /* passed to random_fn (default: NULL) */
} rs_exponential_backoff_options_t;

typedef struct rs_standard_retry_options {
    rs_exponential_backoff_options_t backoff; /* the waits, as above */
    size_t bucket_capacity; /* each partition's bucket, full at the start
                               (default: 0, RS_STANDARD_RETRY_BUCKET_CAPACITY, 500; at most INT_MAX) */
} rs_standard_retry_options_t;

typedef struct rs_no_retry_options {
    const rs_allocator_t *allocator; /* copied (default: NULL, libc) */
    rs_event_loop_t *loop;           /* where callbacks run (default: NULL: a loop of `group`) */
    rs_event_loop_group_t *group;    /* used when `loop` is NULL; one of the two is required (default: NULL) */
} rs_no_retry_options_t;

/* Constructors: NULL on failure with *err_out (may be NULL): RS_EINVAL
 * (options NULL or without a loop or group, max_retries over 63, cap below
 * scale or over RS_RETRY_CAP_MS_LIMIT, a jitter or capacity out of range),
 * RS_ENOMEM, or the mutex init error. */
RESEAU_API rs_retry_strategy_t *rs_retry_strategy_new_exponential_backoff(
    const rs_exponential_backoff_options_t *options, int *err_out);
RESEAU_API rs_retry_strategy_t *rs_retry_strategy_new_standard(const rs_standard_retry_options_t *options,
                                                               int *err_out);
RESEAU_API rs_retry_strategy_t *rs_retry_strategy_new_no_retry(const rs_no_retry_options_t *options, int *err_out);

/* Drop the caller's reference (see Lifetimes above). NULL does nothing. */
RESEAU_API void rs_retry_strategy_destroy(rs_retry_strategy_t *strategy);

/* Ask for a token for `partition` (NULL or "": the default partition; only
 * the standard strategy keeps partitions apart, with one bucket per name it
 * has seen, kept and searched linearly for the strategy's life: use a few
 * names, such as hosts, not one per request). on_acquired runs once, later,
 * on the token's loop. timeout_ms is how long the standard strategy waits for
 * an empty bucket to be refilled before it gives up with
 * RS_ERETRY_QUOTA_EXHAUSTED (0: do not wait); the others never wait.
 * RS_OK, or (and then on_acquired never runs): RS_EINVAL for a NULL strategy
 * or on_acquired; RS_ERETRY_QUOTA_EXHAUSTED (standard, the partition's bucket
 * is empty and timeout_ms is 0); RS_ECANCELED after rs_retry_strategy_destroy;
 * RS_ENOMEM; the loop's schedule error. */
RESEAU_API int rs_retry_strategy_acquire_token(rs_retry_strategy_t *strategy, const char *partition,
                                               uint64_t timeout_ms, rs_retry_token_acquired_fn *on_acquired,
                                               void *user_data);

/* After a failure of `error_type`: wait, then call on_ready once on the
 * token's loop. Exponential backoff and standard: the wait follows the jitter
 * mode for retry number n = 0, 1, ...; the standard strategy first takes
 * RS_STANDARD_RETRY_COST_TRANSIENT (10) for a transient error, or
 * RS_STANDARD_RETRY_COST (5) for any other, from the partition's bucket.
 * RS_OK, or (and then on_ready never runs): RS_EINVAL for a NULL token or
 * on_ready or an error type out of range; RS_EBUSY if a retry is already
 * scheduled on this token; RS_ERETRY_MAX_EXCEEDED after max_retries retries;
 * RS_ERETRY_QUOTA_EXHAUSTED (standard) when the bucket holds less than the
 * cost; RS_ERETRY_NOT_ALLOWED from the no-retry strategy; RS_ECANCELED after
 * rs_retry_strategy_destroy; the loop's schedule error. */
RESEAU_API int rs_retry_strategy_schedule_retry(rs_retry_token_t *token, rs_retry_error_type_t error_type,
                                                rs_retry_ready_fn *on_ready, void *user_data);

/* The operation succeeded. The standard strategy refunds its partition's
 * bucket: RS_STANDARD_RETRY_NO_RETRY_REFUND (1) when no retry was taken, else
 * the cost of the last retry; never above the capacity. RS_OK; RS_EINVAL for
 * NULL; RS_ESTATE if success was already recorded on this token. */
RESEAU_API int rs_retry_token_record_success(rs_retry_token_t *token);

/* Give the token back. A retry still scheduled on it runs anyway (its on_ready
 * must not use the token after that). NULL does nothing. */
RESEAU_API void rs_retry_token_release(rs_retry_token_t *token);

/* The number of retries scheduled on the token so far; 0 for NULL or a custom
 * strategy's token. */
RESEAU_API unsigned rs_retry_token_get_retry_count(const rs_retry_token_t *token);

/* The standard strategy's current bucket level for `partition` (NULL or "":
 * the default one); a partition not seen yet reports the full capacity. 0 for
 * NULL or another kind of strategy. */
RESEAU_API size_t rs_standard_retry_get_capacity(rs_retry_strategy_t *strategy, const char *partition);
