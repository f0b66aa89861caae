/*
 * Futures.
 *
 * An rs_future_t is a single-assignment box for the result of an asynchronous
 * operation: a value of one type chosen at creation (a pointer with an
 * optional destructor, a size_t, a bool, or none: a plain result), or an
 * error code. It is completed once, by set_result_* or set_error, from any
 * thread; a second completion returns RS_EINVAL and the first value is kept.
 *
 * One callback may be registered (a second returns RS_EBUSY). It runs exactly
 * once, after completion, and never inline in the register call, even when
 * the future is already complete:
 *   rs_future_register_event_loop_callback  as a task on the given loop;
 *                                           if that loop is destroyed first,
 *                                           the callback still runs (from
 *                                           the loop's destroy);
 *   rs_future_register_channel_callback     as a channel task on the
 *                                           channel's loop (also when the
 *                                           channel has shut down);
 *   rs_future_register_callback             on the future's own loop (the
 *                                           `loop` option) as above; with no
 *                                           loop, on the completing thread,
 *                                           inside set_result_* / set_error,
 *                                           and registering on a complete
 *                                           loop-less future is RS_ESTATE.
 * Threads without a loop may block in rs_future_wait instead. A loop given
 * for a callback must stay valid until the callback has run; a channel is
 * held (rs_channel_acquire_hold) until then.
 *
 * Ownership: reference counted. rs_future_new returns one reference;
 * rs_future_acquire adds one, rs_future_release drops one. A pending callback
 * holds its own. When the last reference goes, the pointer value's destructor
 * runs (once, on that thread) and the memory is freed. Every function here may
 * be called from any thread.
 */
typedef struct rs_future rs_future_t;

typedef enum rs_future_type {
    RS_FUTURE_VOID = 0,    /* a plain result: done, or an error */
    RS_FUTURE_POINTER = 1, /* a pointer, destroyed with value_destroy */
    RS_FUTURE_SIZE = 2,    /* a size_t */
    RS_FUTURE_BOOL = 3     /* a bool */
} rs_future_type_t;

/* Runs once per registration; read the outcome with rs_future_get_error and
 * the getters. The future stays valid during the call. */
typedef void rs_future_fn(rs_future_t *future, void *user_data);
/* Frees a pointer value; runs when the future's last reference goes. */
typedef void rs_future_value_destroy_fn(void *value, void *user_data);

typedef struct rs_future_options {
    const rs_allocator_t *allocator;           /* copied (default: NULL, libc) */
    rs_future_type_t type;                     /* (default: VOID, a plain result) */
    rs_future_value_destroy_fn *value_destroy; /* POINTER only: frees the value (default: NULL, never freed) */
    void *value_destroy_user_data;             /* passed to value_destroy (default: NULL) */
    rs_event_loop_t *loop;                     /* where rs_future_register_callback runs it
                                                  (default: NULL, the completing thread); must outlive the future */
} rs_future_options_t;

/* NULL on failure with *err_out (may be NULL): RS_EINVAL (type out of range,
 * value_destroy without POINTER), RS_ENOMEM, or the mutex/condvar init error. */
RESEAU_API rs_future_t *rs_future_new(const rs_future_options_t *options, int *err_out);
/* Adds a reference; returns `future` (NULL for NULL). */
RESEAU_API rs_future_t *rs_future_acquire(rs_future_t *future);
/* Drops a reference; the last one destroys the value and frees the future.
 * NULL does nothing. */
RESEAU_API void rs_future_release(rs_future_t *future);

/* Complete the future. RS_OK; RS_EINVAL for NULL, a value of the wrong type,
 * an error code that is not negative, or a future already complete (then
 * nothing changes: the first value stays, and a rejected pointer is still the
 * caller's to free). */
RESEAU_API int rs_future_set_result(rs_future_t *future);
RESEAU_API int rs_future_set_result_pointer(rs_future_t *future, void *value);
RESEAU_API int rs_future_set_result_size(rs_future_t *future, size_t value);
RESEAU_API int rs_future_set_result_bool(rs_future_t *future, bool value);
RESEAU_API int rs_future_set_error(rs_future_t *future, int error);

/* Register the one callback (see the top of this section for where it runs).
 * RS_OK; RS_EINVAL for a NULL future, fn, loop or channel; RS_EBUSY if a
 * callback is already registered; RS_ESTATE for a plain callback on a
 * complete future without a loop; or the schedule error of the loop or
 * channel when the future is already complete. */
RESEAU_API int rs_future_register_callback(rs_future_t *future, rs_future_fn *fn, void *user_data);
RESEAU_API int rs_future_register_event_loop_callback(rs_future_t *future, rs_event_loop_t *loop, rs_future_fn *fn,
                                                      void *user_data);
RESEAU_API int rs_future_register_channel_callback(rs_future_t *future, rs_channel_t *channel, rs_future_fn *fn,
                                                   void *user_data);

/* Block until the future completes or timeout_ns passes (UINT64_MAX: no
 * limit). RS_OK when complete; RS_ETIMEDOUT; RS_EINVAL for NULL; RS_EDEADLK
 * on the thread of the future's own loop (the `loop` option), which would
 * never get to complete it. For threads off the loop. RESEAU_NO_THREADS: a
 * wait without a limit on a future not yet complete is RS_EDEADLK too (no
 * other thread could complete it); a limited one sleeps to its end. */
RESEAU_API int rs_future_wait(rs_future_t *future, uint64_t timeout_ns);

/* False for NULL. */
RESEAU_API bool rs_future_is_done(const rs_future_t *future);
/* The error it completed with, RS_OK for a value; RS_ESTATE while pending;
 * RS_EINVAL for NULL. */
RESEAU_API int rs_future_get_error(const rs_future_t *future);
/* The value; NULL/0/false while pending, after an error, for another type, or
 * for a NULL future. The pointer stays owned by the future. */
RESEAU_API void *rs_future_get_pointer(const rs_future_t *future);
RESEAU_API size_t rs_future_get_size(const rs_future_t *future);
RESEAU_API bool rs_future_get_bool(const rs_future_t *future);
RESEAU_API rs_future_type_t rs_future_get_type(const rs_future_t *future);
