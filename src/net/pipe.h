/*
 * Pipes: a one-way byte stream between two event loops (or within one).
 *
 * The read end lives on read_loop and the write end on write_loop; each end
 * is used only on its own loop's thread and destroyed independently. Writes
 * complete asynchronously, in order, exactly once each. Destroying the write
 * end makes the reader see end of stream after the data already written
 * (writes still in flight complete with RS_ECANCELED); destroying the read
 * end makes later writes fail with RS_EPIPE (never SIGPIPE: on POSIX the
 * pair is a Unix socketpair shut down to one direction; on Windows it is an
 * overlapped named pipe whose ends join the loops' completion ports, and
 * both loops must be IOCP loops, the default there).
 */
typedef struct rs_pipe_read_end rs_pipe_read_end_t;
typedef struct rs_pipe_write_end rs_pipe_write_end_t;

typedef void rs_pipe_on_readable_fn(rs_pipe_read_end_t *read_end, int error, void *user_data);
typedef void rs_pipe_on_write_fn(rs_pipe_write_end_t *write_end, int error, size_t bytes_written, void *user_data);

/* Create both ends. allocator NULL means libc. On error nothing is created and
 * both outputs are NULL. Any thread. RS_EINVAL for a NULL loop or output;
 * RS_ENOMEM; or the OS error from socketpair/shutdown (RS_EMFILE, ...). On
 * Windows the OS error is that of CreateNamedPipe or CreateFile (RS_ENOMEM,
 * RS_EACCES, ...), RS_EADDRINUSE when every pipe name tried was taken, or
 * RS_ENOTSUP for a loop that is not an IOCP loop. */
RESEAU_API int rs_pipe_new(rs_event_loop_t *read_loop, rs_event_loop_t *write_loop, const rs_allocator_t *allocator,
                           rs_pipe_read_end_t **read_end_out, rs_pipe_write_end_t **write_end_out);

/* Read-loop thread: */
/* on_readable runs on the read loop's thread. RS_EINVAL for a NULL read end or
 * on_readable, RS_EWRONGTHREAD off the read loop's thread, or the loop's
 * subscription error (RS_ENOMEM, ...). */
RESEAU_API int rs_pipe_subscribe_to_readable_events(rs_pipe_read_end_t *read_end, rs_pipe_on_readable_fn *on_readable,
                                                   void *user_data);
/* Same results as rs_socket_read: RS_EAGAIN, RS_EEOF once the write end is
 * gone (and its data read), on Windows too. */
RESEAU_API int rs_pipe_read(rs_pipe_read_end_t *read_end, rs_byte_buf_t *buf, size_t *amount_read);
RESEAU_API void rs_pipe_read_end_destroy(rs_pipe_read_end_t *read_end);

/* Write-loop thread: the bytes must stay valid until on_written. Same results,
 * in the same order, as rs_socket_write; RS_EPIPE once the read end is gone
 * (from the call or the completion; on Windows from ERROR_NO_DATA or
 * ERROR_BROKEN_PIPE). RS_EINVAL for a NULL end or on_written,
 * RS_EWRONGTHREAD off the write loop's thread, RS_ENOMEM. */
RESEAU_API int rs_pipe_write(rs_pipe_write_end_t *write_end, rs_byte_cursor_t data, rs_pipe_on_write_fn *on_written,
                             void *user_data);
RESEAU_API void rs_pipe_write_end_destroy(rs_pipe_write_end_t *write_end);
