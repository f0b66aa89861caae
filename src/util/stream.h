/*
 * Input streams, synchronous and asynchronous.
 *
 * rs_input_stream_t is a readable, seekable source of bytes: memory, a file
 * (64-bit offsets), or your own vtable. Its functions block (a file stream
 * reads the file) and may be called from any thread, one thread at a time per
 * stream; keep file streams off loop threads.
 *
 * rs_async_input_stream_t reads into a buffer and completes an rs_future_t of
 * type RS_FUTURE_BOOL: true once the end of the stream is reached, or an
 * error. One read may be in flight at a time: the gate is one atomic exchange,
 * so of two racing reads exactly one starts and the other returns RS_EBUSY.
 * rs_async_input_stream_new_from_sync reads a synchronous stream on a worker
 * thread of its own, never on a loop. Where the future's callback runs is the
 * future's business (see >>future).
 *
 * Ownership: the creator owns a stream and destroys it; a stream made from a
 * synchronous one owns that one. Errors: RS_EINVAL for NULL handles and
 * arguments; a read error of the OS mapped by rs_result_from_errno.
 */
typedef enum rs_stream_seek_basis {
    RS_STREAM_SEEK_BEGIN = 0, /* offset from the start, 0 .. length */
    RS_STREAM_SEEK_END = 1    /* offset from the end, -length .. 0 */
} rs_stream_seek_basis_t;

typedef struct rs_stream_status {
    bool is_end_of_stream; /* a read reached the end (see rs_input_stream_read) */
    bool is_valid;         /* false after a read error: the stream is unusable */
} rs_stream_status_t;

typedef struct rs_input_stream rs_input_stream_t;

/* For your own streams: each function gets the stream and returns RS_OK or an
 * RS_E... code; the public functions have checked every pointer. */
typedef struct rs_input_stream_vtable {
    int (*read)(rs_input_stream_t *stream, rs_byte_buf_t *dest);
    int (*seek)(rs_input_stream_t *stream, int64_t offset, rs_stream_seek_basis_t basis);
    int (*get_status)(rs_input_stream_t *stream, rs_stream_status_t *status_out);
    int (*get_length)(rs_input_stream_t *stream, int64_t *length_out);
    void (*destroy)(rs_input_stream_t *stream);
} rs_input_stream_vtable_t;

struct rs_input_stream {
    const rs_input_stream_vtable_t *vtable;
    void *impl;
};

/* A stream over `data`, which is not copied: it must outlive the stream.
 * NULL on failure with *err_out (may be NULL): RS_EINVAL (data.ptr NULL with
 * a length), RS_ENOMEM. */
RESEAU_API rs_input_stream_t *rs_input_stream_new_from_memory(const rs_allocator_t *allocator, rs_byte_cursor_t data,
                                                              int *err_out);
/* A stream over the file at `path`, opened read-only. Offsets and lengths are
 * 64-bit (on 32-bit Linux too, when the implementation is compiled with
 * _GNU_SOURCE, which reseau.h defines when it comes first). NULL on failure
 * with *err_out: RS_EINVAL (path NULL), the open error mapped by
 * rs_result_from_errno (RS_ENOENT, RS_EACCES, ...), RS_ENOMEM. Without an
 * OS (RESEAU_OS_NONE): RS_ENOTSUP. */
RESEAU_API rs_input_stream_t *rs_input_stream_new_from_file(const rs_allocator_t *allocator, const char *path,
                                                            int *err_out);
/* Frees the stream (closes the file). NULL does nothing. */
RESEAU_API void rs_input_stream_destroy(rs_input_stream_t *stream);

/* Append up to dest->capacity - dest->len bytes at dest->len; dest never
 * grows. RS_OK also when no byte was left: then the status says end of
 * stream. A memory stream reports the end as soon as its last byte is read;
 * a file stream when a read gets fewer bytes than there was room for (a file
 * may grow). Errors: RS_EINVAL (NULL), the OS read error (the stream is then
 * invalid). */
RESEAU_API int rs_input_stream_read(rs_input_stream_t *stream, rs_byte_buf_t *dest);
/* Move to an offset (see rs_stream_seek_basis_t) and clear end of stream.
 * RS_ESTREAM_SEEK for a position before the start or past the end, RS_EINVAL
 * (NULL, a basis out of range), or the OS error. */
RESEAU_API int rs_input_stream_seek(rs_input_stream_t *stream, int64_t offset, rs_stream_seek_basis_t basis);
/* RS_EINVAL for NULL arguments. */
RESEAU_API int rs_input_stream_get_status(rs_input_stream_t *stream, rs_stream_status_t *status_out);
/* The length in bytes: the memory's, or the file's now. RS_EINVAL for NULL
 * arguments, or the OS error. */
RESEAU_API int rs_input_stream_get_length(rs_input_stream_t *stream, int64_t *length_out);

/* ---- asynchronous ------------------------------------------------------- */

typedef struct rs_async_input_stream rs_async_input_stream_t;

/* For your own streams. read starts one read into dest and completes it once,
 * later or inline, from any thread, with rs_async_input_stream_complete_read.
 * destroy frees the stream; no read is in flight when it is called by
 * rs_async_input_stream_destroy unless the stream documents otherwise. */
typedef struct rs_async_input_stream_vtable {
    void (*read)(rs_async_input_stream_t *stream, rs_byte_buf_t *dest);
    void (*destroy)(rs_async_input_stream_t *stream);
} rs_async_input_stream_vtable_t;

struct rs_async_input_stream {
    const rs_async_input_stream_vtable_t *vtable;
    void *impl;
    int read_in_flight;    /* private, atomic: the gate */
    rs_future_t *future;   /* private: the read's future, referenced */
    rs_byte_buf_t *dest;   /* private */
    bool fill;             /* private: keep reading until dest is full */
};

/* Set up a caller-allocated stream with your vtable. Any thread. */
RESEAU_API void rs_async_input_stream_init(rs_async_input_stream_t *stream, const rs_async_input_stream_vtable_t *vtable,
                                           void *impl);

/* A stream that reads `source` on a worker thread of its own. It takes
 * `source` on success (and destroys it with itself). NULL on failure with
 * *err_out: RS_EINVAL (source NULL), RS_ENOMEM, RS_ETHREAD, or the
 * mutex/condvar init error; `source` is then still the caller's. */
RESEAU_API rs_async_input_stream_t *rs_async_input_stream_new_from_sync(const rs_allocator_t *allocator,
                                                                       rs_input_stream_t *source, int *err_out);

/* Destroy the stream. A stream made from a synchronous one lets a read that
 * is running finish and completes a read that has not started with
 * RS_ECANCELED, then joins its worker; called from inside that worker (a
 * loop-less future callback), it leaves the cleanup to the worker. NULL does
 * nothing. */
RESEAU_API void rs_async_input_stream_destroy(rs_async_input_stream_t *stream);

/* Start one read into the room left in dest (dest never grows). `future`
 * (type RS_FUTURE_BOOL, referenced until the read completes) completes with
 * true at the end of the stream, false if more may follow, or an error: the
 * source's read error, RS_ECANCELED. RS_OK, or (and then the future is left
 * alone): RS_EINVAL (NULL arguments, a future of another type, dest without
 * room); RS_EBUSY while another read is in flight. Any thread. */
RESEAU_API int rs_async_input_stream_read(rs_async_input_stream_t *stream, rs_byte_buf_t *dest, rs_future_t *future);
/* Like rs_async_input_stream_read, but reads on until dest is full or the end
 * of the stream (the future says which). */
RESEAU_API int rs_async_input_stream_read_to_fill(rs_async_input_stream_t *stream, rs_byte_buf_t *dest,
                                                  rs_future_t *future);

/* For implementations: the read started by vtable->read is done. error
 * RS_OK or negative; eof true at the end of the stream. Opens the gate before
 * completing the future, so its callback may start the next read. Any thread. */
RESEAU_API void rs_async_input_stream_complete_read(rs_async_input_stream_t *stream, int error, bool eof);
