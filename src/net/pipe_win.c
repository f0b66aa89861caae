/*
 * Pipes on Windows: an overlapped named pipe on the loops' completion ports
 * (>>iocp.c), behind the API of >>pipe.h.
 *
 * rs_pipe_new makes the read end with CreateNamedPipe (inbound, byte mode,
 * one instance, FILE_FLAG_FIRST_PIPE_INSTANCE so that a name someone else
 * holds is refused rather than shared) and opens the write end on it with
 * CreateFile. Each pipe gets a name of its own,
 * \\.\pipe\reseau_<pid>_<counter>_<random>; a name that turns out to be
 * taken (ERROR_ACCESS_DENIED, ERROR_PIPE_BUSY) is replaced by a fresh one,
 * up to RS__PIPE_WIN_NAME_ATTEMPTS times, as aws-c-io does. Each handle
 * joins its own loop's port, and every overlapped operation's packet comes
 * back there, even after CancelIoEx: an end is freed only once none of its
 * operations is pending, so the kernel never writes into freed memory.
 *
 * Reading keeps the readiness contract of the socketpair pipes: a zero-byte
 * overlapped ReadFile is the probe that says data (or the end) waits; then
 * rs_pipe_read asks PeekNamedPipe how much is there and reads at most that
 * much with a ReadFile that completes at once (its OVERLAPPED carries an
 * event with the low bit set, so that it posts no packet to the port), until
 * the pipe is empty (RS_EAGAIN) and the probe is posted again. This was
 * chosen over a receive buffer owned by the read end because it keeps no
 * memory per idle pipe, copies each byte once, and gives rs_pipe_read the
 * plain results of a read (RS_EAGAIN, RS_EEOF after the data once the
 * writer is gone). libuv reads its Windows pipes much the same way. It
 * works the same under Wine 8, whose named pipes complete a zero-byte read
 * when data arrives and answer PeekNamedPipe with the bytes queued. As on
 * the other completion paths the readable callback is fired by a task,
 * again each tick while the reader has not yet been told RS_EAGAIN
 * (level-triggered).
 *
 * Writing: each write is one overlapped WriteFile (a write larger than a
 * DWORD is split, its next part started when the last one completes, and
 * later writes wait for it), started at once so that its bytes reach the
 * pipe in call order; the completions are delivered by a task on the write
 * loop, in call order and exactly once each, never from inside
 * rs_pipe_write. A WriteFile completes when the reader has room for it, so
 * the caller's bytes stay in use until on_written. A zero-length write
 * calls no WriteFile (a zero-length message would wake the reader for
 * nothing) and completes after the writes before it. A pipe whose read end
 * is gone fails the write with RS_EPIPE (ERROR_NO_DATA, ERROR_BROKEN_PIPE),
 * and every later one at once with the same code. Destroying the write end
 * cancels what the kernel holds (CancelIoEx) and closes the handle: each
 * write not yet done completes once with RS_ECANCELED, reporting the bytes
 * the kernel took, and the reader gets the data of the writes that
 * completed, then end of stream.
 */
#if RESEAU_OS_WINDOWS

/* The read end's buffer quota: a write completes once what is queued ahead
 * of it and itself fit. About what a socketpair buffers on Linux. */
#define RS__PIPE_WIN_BUFFER_SIZE (64 * 1024)
/* Names tried before rs_pipe_new gives up: a clash with another process's
 * pipe is rare, several in a row mean something else is wrong. */
#define RS__PIPE_WIN_NAME_ATTEMPTS 16
/* Room for \\.\pipe\reseau_ and three 20-digit numbers. */
#define RS__PIPE_WIN_NAME_MAX 96
/* The largest part of a write given to one WriteFile (its length is a DWORD). */
#define RS__PIPE_WIN_WRITE_MAX ((size_t)1 << 30)
/* Finished write requests kept for reuse, so steady-state writing does not allocate. */
#define RS__PIPE_WIN_REQ_CACHE 32

typedef struct rs__pipe_write_req {
    rs__iocp_op_t op;
    rs_list_node_t node;
    rs_pipe_write_end_t *end;
    rs_byte_cursor_t data;
    size_t sent;    /* bytes handed to WriteFile so far */
    size_t part;    /* bytes handed to the WriteFile in flight */
    size_t written; /* bytes the kernel took */
    rs_pipe_on_write_fn *fn;
    void *user_data;
    int error;
    bool done; /* finished: its completion waits only for the writes before it */
} rs__pipe_write_req_t;

struct rs_pipe_read_end {
    rs_allocator_t allocator;
    rs_event_loop_t *loop; /* NULL once that loop was destroyed */
    rs_list_node_t loop_member;
    HANDLE handle; /* NULL once closed */
    HANDLE read_event; /* for the reads that complete at once */
    int callback_depth;
    bool destroy_requested;
    rs_pipe_on_readable_fn *on_readable;
    void *user_data;
    bool readable;  /* the probe saw data (or the end): not yet read to RS_EAGAIN */
    bool read_done; /* EOF or an error was returned: no more readable events */
    int probe_error; /* how the probe ended, if not with data: reported once the data is read */
    rs__iocp_op_t probe_op;
    char probe_byte; /* where the zero-byte probe reads to */
    rs_task_t readable_task;
};

struct rs_pipe_write_end {
    rs_allocator_t allocator;
    rs_event_loop_t *loop; /* NULL once that loop was destroyed */
    rs_list_node_t loop_member;
    HANDLE handle; /* NULL once closed */
    int callback_depth;
    bool destroy_requested;
    rs_list_t queue;             /* every write not yet delivered, in call order */
    rs_list_node_t *first_unsent; /* in queue: the first write with bytes not handed to WriteFile, or NULL */
    size_t ops_pending;          /* WriteFile calls whose packet has not come back */
    int write_error;             /* sticky: the error that failed the write side */
    rs_list_t req_cache;
    size_t req_cache_count;
    rs_task_t completion_task;
};

/* Test hook: when set, the first name the next rs_pipe_new tries (then
 * cleared), so that a test can make it meet a name already taken. */
static const char *rs__pipe_win_test_first_name;
/* Names found taken, for the test of the retry. */
static int rs__pipe_win_name_clashes;
static int rs__pipe_win_name_counter;

static void rs__pipe_win_probe_done(rs__iocp_op_t *op, int status, size_t bytes);
static void rs__pipe_win_write_done(rs__iocp_op_t *op, int status, size_t bytes);
static void rs__pipe_win_readable_task(rs_task_t *task, void *arg, rs_task_status_t status);
static void rs__pipe_win_completion_task(rs_task_t *task, void *arg, rs_task_status_t status);
static void rs__pipe_win_read_close(rs_pipe_read_end_t *re);
static void rs__pipe_win_write_close(rs_pipe_write_end_t *we);
static void rs__pipe_win_read_maybe_free(rs_pipe_read_end_t *re);
static void rs__pipe_win_write_maybe_free(rs_pipe_write_end_t *we);
static void rs__pipe_win_deliver_writes(rs_pipe_write_end_t *we);

static int rs__pipe_win_last_error(void) {
    return rs__result_from_win32((uint32_t)GetLastError());
}

static int rs__pipe_win_check_thread(const rs_event_loop_t *loop, const char *function) {
    if (!loop || rs_event_loop_is_on_loop_thread(loop)) {
        return RS_OK;
    }
    RS__LOG_ERROR(RS_LS_SOCKET, "%s: pipe end used off its loop's thread", function);
    return RS_EWRONGTHREAD;
}

/* ---- loop membership: the loop's destroy closes ends left open ---- */

static void rs__pipe_win_read_member_end(rs_list_node_t *member) {
    rs_pipe_read_end_t *re = RS_CONTAINER_OF(member, rs_pipe_read_end_t, loop_member);
    bool reading = re->on_readable && !re->read_done && re->handle;
    if (!re->handle) {
        return;
    }
    rs__pipe_win_read_close(re);
    re->callback_depth++;
    if (reading) {
        re->on_readable(re, RS_ECANCELED, re->user_data);
    }
    re->callback_depth--;
    rs__pipe_win_read_maybe_free(re);
}

static void rs__pipe_win_read_member_detach(rs_list_node_t *member) {
    RS_CONTAINER_OF(member, rs_pipe_read_end_t, loop_member)->loop = NULL;
}

static void rs__pipe_win_write_member_end(rs_list_node_t *member) {
    rs_pipe_write_end_t *we = RS_CONTAINER_OF(member, rs_pipe_write_end_t, loop_member);
    if (!we->handle) {
        return;
    }
    rs__pipe_win_write_close(we); /* its writes complete with RS_ECANCELED */
    rs__pipe_win_write_maybe_free(we);
}

static void rs__pipe_win_write_member_detach(rs_list_node_t *member) {
    RS_CONTAINER_OF(member, rs_pipe_write_end_t, loop_member)->loop = NULL;
}

static const rs__loop_member_ops_t rs__pipe_win_read_member_ops = {
    RS__MEMBER_PIPE_READ, rs__pipe_win_read_member_end, rs__pipe_win_read_member_detach,
};

static const rs__loop_member_ops_t rs__pipe_win_write_member_ops = {
    RS__MEMBER_PIPE_WRITE, rs__pipe_win_write_member_end, rs__pipe_win_write_member_detach,
};

/* ---- creation ---- */

/* A name no other pipe should have: the process id, a counter, and bits of
 * the clock and of this process's address layout. */
static void rs__pipe_win_make_name(char *name, size_t size) {
    LARGE_INTEGER now;
    uint64_t mix;
    int counter = rs__atomic_add_int(&rs__pipe_win_name_counter, 1);
    QueryPerformanceCounter(&now);
    mix = (uint64_t)now.QuadPart ^ ((uint64_t)(uintptr_t)name << 17) ^ (uint64_t)GetTickCount64();
    mix ^= mix >> 33;
    mix *= 0xff51afd7ed558ccdull;
    mix ^= mix >> 33;
    snprintf(name, size, "\\\\.\\pipe\\reseau_%lu_%u_%llu", (unsigned long)GetCurrentProcessId(),
             (unsigned)counter, (unsigned long long)mix);
}

/* Whether the new server handle is the only instance of its pipe. Windows
 * refuses to add an instance to someone else's pipe under
 * FILE_FLAG_FIRST_PIPE_INSTANCE; Wine 8 ignores that flag and joins a pipe
 * that allows more instances, which this catches. */
static bool rs__pipe_win_sole_instance(HANDLE h) {
    DWORD instances = 0;
    if (!GetNamedPipeHandleStateA(h, NULL, &instances, NULL, NULL, NULL, 0)) {
        return true; /* no answer: FILE_FLAG_FIRST_PIPE_INSTANCE stands alone */
    }
    return instances == 1;
}

/* Create the server (read) side under a fresh name, trying another name
 * while the one tried is taken. */
static int rs__pipe_win_create_server(HANDLE *server_out, char *name, size_t name_size) {
    int attempt;
    for (attempt = 0; attempt < RS__PIPE_WIN_NAME_ATTEMPTS; ++attempt) {
        HANDLE h;
        DWORD os_error;
        if (rs__pipe_win_test_first_name) { /* only ever set by a test */
            snprintf(name, name_size, "%s", rs__pipe_win_test_first_name);
            rs__pipe_win_test_first_name = NULL;
        } else {
            rs__pipe_win_make_name(name, name_size);
        }
        h = CreateNamedPipeA(name, PIPE_ACCESS_INBOUND | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
                             PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1, 0,
                             RS__PIPE_WIN_BUFFER_SIZE, 0, NULL);
        if (h != INVALID_HANDLE_VALUE && rs__pipe_win_sole_instance(h)) {
            *server_out = h;
            return RS_OK;
        }
        if (h != INVALID_HANDLE_VALUE) {
            CloseHandle(h);
            os_error = ERROR_ACCESS_DENIED; /* joined a pipe someone else made */
        } else {
            os_error = GetLastError();
        }
        if (os_error != ERROR_ACCESS_DENIED && os_error != ERROR_PIPE_BUSY) {
            RS__LOG_ERROR(RS_LS_SOCKET, "CreateNamedPipe failed (error %lu)", (unsigned long)os_error);
            return rs__result_from_win32((uint32_t)os_error);
        }
        rs__atomic_add_int(&rs__pipe_win_name_clashes, 1);
        RS__LOG_DEBUG(RS_LS_SOCKET, "pipe name %s is taken (error %lu); trying another", name,
                      (unsigned long)os_error);
    }
    RS__LOG_ERROR(RS_LS_SOCKET, "no free pipe name after %d attempts", RS__PIPE_WIN_NAME_ATTEMPTS);
    return RS_EADDRINUSE;
}

/* Both handles of a new pipe, connected. */
static int rs__pipe_win_open(HANDLE *server_out, HANDLE *client_out) {
    char name[RS__PIPE_WIN_NAME_MAX];
    HANDLE client;
    int err = rs__pipe_win_create_server(server_out, name, sizeof(name));
    if (err) {
        return err;
    }
    /* Opening the only instance connects it: no ConnectNamedPipe needed. */
    client = CreateFileA(name, GENERIC_WRITE | FILE_READ_ATTRIBUTES, 0, NULL, OPEN_EXISTING, FILE_FLAG_OVERLAPPED,
                         NULL);
    if (client == INVALID_HANDLE_VALUE) {
        err = rs__pipe_win_last_error();
        RS__LOG_ERROR(RS_LS_SOCKET, "cannot open the write end of pipe %s: %s", name, rs_strerror(err));
        CloseHandle(*server_out);
        *server_out = NULL;
        return err;
    }
    *client_out = client;
    return RS_OK;
}

static void rs__pipe_win_free_read(rs_pipe_read_end_t *re) {
    rs_allocator_t allocator = re->allocator;
    rs__event_loop_remove_member(re->loop, &re->loop_member);
    rs_mem_free(&allocator, re);
}

static void rs__pipe_win_free_write(rs_pipe_write_end_t *we) {
    rs_allocator_t allocator = we->allocator;
    rs_list_node_t *node;
    rs__event_loop_remove_member(we->loop, &we->loop_member);
    while ((node = rs_list_pop_front(&we->req_cache)) != NULL) {
        rs_mem_free(&allocator, RS_CONTAINER_OF(node, rs__pipe_write_req_t, node));
    }
    rs_mem_free(&allocator, we);
}

static rs_pipe_read_end_t *rs__pipe_win_read_alloc(const rs_allocator_t *allocator) {
    rs_allocator_t a = rs__allocator_copy(allocator);
    rs_pipe_read_end_t *re = (rs_pipe_read_end_t *)rs_mem_calloc(&a, 1, sizeof(rs_pipe_read_end_t));
    if (!re) {
        return NULL;
    }
    re->allocator = a;
    rs__iocp_op_init(&re->probe_op, rs__pipe_win_probe_done);
    rs_task_init(&re->readable_task, rs__pipe_win_readable_task, re, "pipe_readable");
    return re;
}

static rs_pipe_write_end_t *rs__pipe_win_write_alloc(const rs_allocator_t *allocator) {
    rs_allocator_t a = rs__allocator_copy(allocator);
    rs_pipe_write_end_t *we = (rs_pipe_write_end_t *)rs_mem_calloc(&a, 1, sizeof(rs_pipe_write_end_t));
    if (!we) {
        return NULL;
    }
    we->allocator = a;
    rs_list_init(&we->queue);
    rs_list_init(&we->req_cache);
    rs_task_init(&we->completion_task, rs__pipe_win_completion_task, we, "pipe_write_completion");
    return we;
}

RESEAU_API int rs_pipe_new(rs_event_loop_t *read_loop, rs_event_loop_t *write_loop, const rs_allocator_t *allocator,
                           rs_pipe_read_end_t **read_end_out, rs_pipe_write_end_t **write_end_out) {
    rs_pipe_read_end_t *re = NULL;
    rs_pipe_write_end_t *we = NULL;
    HANDLE server = NULL;
    HANDLE client = NULL;
    int err;
    if (read_end_out) {
        *read_end_out = NULL;
    }
    if (write_end_out) {
        *write_end_out = NULL;
    }
    if (!read_loop || !write_loop || !read_end_out || !write_end_out) {
        return RS_EINVAL;
    }
    re = rs__pipe_win_read_alloc(allocator);
    we = re ? rs__pipe_win_write_alloc(allocator) : NULL;
    if (!we) {
        err = RS_ENOMEM;
        goto fail;
    }
    /* Manual-reset, as GetOverlappedResult expects of an OVERLAPPED's event. */
    re->read_event = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!re->read_event) {
        err = rs__pipe_win_last_error();
        goto fail;
    }
    err = rs__pipe_win_open(&server, &client);
    if (err) {
        goto fail;
    }
    err = rs__iocp_associate(read_loop, server);
    if (!err) {
        err = rs__iocp_associate(write_loop, client);
    }
    if (err) {
        goto fail;
    }
    re->handle = server;
    re->loop = read_loop;
    rs__event_loop_add_member(read_loop, &re->loop_member, &rs__pipe_win_read_member_ops);
    we->handle = client;
    we->loop = write_loop;
    rs__event_loop_add_member(write_loop, &we->loop_member, &rs__pipe_win_write_member_ops);
    *read_end_out = re;
    *write_end_out = we;
    return RS_OK;

fail:
    if (client) {
        CloseHandle(client);
    }
    if (server) {
        CloseHandle(server);
    }
    if (re && re->read_event) {
        CloseHandle(re->read_event);
    }
    if (we) {
        rs__pipe_win_free_write(we);
    }
    if (re) {
        rs__pipe_win_free_read(re);
    }
    return err;
}

/* ---- the read end ---- */

static bool rs__pipe_win_wants_reads(const rs_pipe_read_end_t *re) {
    return re->handle && re->loop && re->on_readable && !re->read_done;
}

static void rs__pipe_win_schedule_readable(rs_pipe_read_end_t *re) {
    if (rs__pipe_win_wants_reads(re) && re->readable && !rs_task_is_scheduled(&re->readable_task)) {
        rs_event_loop_schedule_task_now(re->loop, &re->readable_task);
    }
}

/* Post the zero-byte probe when the reader waits for news and none is
 * known, else hear of what is known. */
static void rs__pipe_win_update_reading(rs_pipe_read_end_t *re) {
    if (rs__pipe_win_wants_reads(re) && !re->readable && !re->probe_op.pending) {
        if (!ReadFile(re->handle, &re->probe_byte, 0, NULL, rs__iocp_op_overlapped(&re->probe_op)) &&
            GetLastError() != ERROR_IO_PENDING) {
            /* The end (ERROR_BROKEN_PIPE) or an error: the read reports it after any data. */
            re->probe_error = rs__pipe_win_last_error();
            re->readable = true;
        } else {
            rs__iocp_op_started(re->loop, &re->probe_op);
        }
    }
    rs__pipe_win_schedule_readable(re);
}

static void rs__pipe_win_probe_done(rs__iocp_op_t *op, int status, size_t bytes) {
    rs_pipe_read_end_t *re = RS_CONTAINER_OF(op, rs_pipe_read_end_t, probe_op);
    (void)bytes;
    if (re->handle && status != RS_ECANCELED) {
        re->readable = true; /* data, the end (RS_EPIPE), or an error */
        re->probe_error = status;
        rs__pipe_win_schedule_readable(re);
    }
    rs__pipe_win_read_maybe_free(re);
}

/* Called again each tick while news waits and the reader has not read it to
 * RS_EAGAIN: the level-triggered contract of the readiness path. */
static void rs__pipe_win_readable_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_pipe_read_end_t *re = (rs_pipe_read_end_t *)arg;
    (void)task;
    if (status != RS_TASK_STATUS_RUN || !rs__pipe_win_wants_reads(re) || !re->readable) {
        return;
    }
    re->callback_depth++;
    re->on_readable(re, RS_OK, re->user_data);
    re->callback_depth--;
    rs__pipe_win_update_reading(re);
    rs__pipe_win_read_maybe_free(re);
}

RESEAU_API int rs_pipe_subscribe_to_readable_events(rs_pipe_read_end_t *read_end, rs_pipe_on_readable_fn *on_readable,
                                                    void *user_data) {
    int err;
    if (!read_end) {
        return RS_EINVAL;
    }
    err = rs__pipe_win_check_thread(read_end->loop, "rs_pipe_subscribe_to_readable_events");
    if (err) {
        return err;
    }
    if (!on_readable) {
        return RS_EINVAL;
    }
    if (!read_end->handle || !read_end->loop) {
        return RS_EBADF;
    }
    read_end->on_readable = on_readable;
    read_end->user_data = user_data;
    rs__pipe_win_update_reading(read_end);
    return RS_OK;
}

/* Nothing more will come (EOF or an error was returned). */
static int rs__pipe_win_read_finished(rs_pipe_read_end_t *re, int result) {
    re->read_done = true;
    re->readable = false;
    if (re->loop) {
        rs_event_loop_cancel_task(re->loop, &re->readable_task);
    }
    return result;
}

/* How a failed peek or read ends: the writer gone (with its data read) is
 * the end of the stream. */
static int rs__pipe_win_read_error(rs_pipe_read_end_t *re, DWORD os_error) {
    if (os_error == ERROR_BROKEN_PIPE || os_error == ERROR_PIPE_NOT_CONNECTED || os_error == ERROR_NO_DATA) {
        return rs__pipe_win_read_finished(re, RS_EEOF);
    }
    RS__LOG_DEBUG(RS_LS_SOCKET, "pipe %p: read failed (error %lu)", (void *)re, (unsigned long)os_error);
    return rs__pipe_win_read_finished(re, rs__result_from_win32((uint32_t)os_error));
}

/* Read up to `len` bytes that PeekNamedPipe saw waiting: the ReadFile
 * completes at once. The low bit of the event keeps its packet out of the
 * port (the loop would not know the OVERLAPPED). */
static int rs__pipe_win_read_now(rs_pipe_read_end_t *re, uint8_t *dst, DWORD len, DWORD *got) {
    OVERLAPPED ov;
    memset(&ov, 0, sizeof(ov));
    ov.hEvent = (HANDLE)((uintptr_t)re->read_event | 1);
    *got = 0;
    if (ReadFile(re->handle, dst, len, got, &ov)) {
        return RS_OK;
    }
    if (GetLastError() == ERROR_IO_PENDING && GetOverlappedResult(re->handle, &ov, got, TRUE)) {
        return RS_OK;
    }
    return rs__pipe_win_read_error(re, GetLastError());
}

RESEAU_API int rs_pipe_read(rs_pipe_read_end_t *read_end, rs_byte_buf_t *buf, size_t *amount_read) {
    DWORD avail = 0;
    DWORD got = 0;
    size_t room;
    int err;
    if (amount_read) {
        *amount_read = 0;
    }
    if (!read_end) {
        return RS_EINVAL;
    }
    err = rs__pipe_win_check_thread(read_end->loop, "rs_pipe_read");
    if (err) {
        return err;
    }
    if (!buf || buf->len >= buf->capacity) {
        return RS_EINVAL;
    }
    if (read_end->read_done) {
        return RS_EEOF;
    }
    if (!read_end->handle) {
        return RS_EBADF;
    }
    if (!PeekNamedPipe(read_end->handle, NULL, 0, NULL, &avail, NULL)) {
        return rs__pipe_win_read_error(read_end, GetLastError());
    }
    if (avail == 0 && read_end->probe_error) {
        /* The writer gone (RS_EPIPE) is the end of the stream. */
        return rs__pipe_win_read_finished(read_end,
                                          read_end->probe_error == RS_EPIPE ? RS_EEOF : read_end->probe_error);
    }
    if (avail == 0) {
        read_end->readable = false;
        if (read_end->loop) {
            rs__pipe_win_update_reading(read_end); /* the probe again, for the next data */
        }
        return RS_EAGAIN;
    }
    room = buf->capacity - buf->len;
    if (room < (size_t)avail) {
        avail = (DWORD)room;
    }
    err = rs__pipe_win_read_now(read_end, buf->buffer + buf->len, avail, &got);
    if (err) {
        return err;
    }
    buf->len += (size_t)got;
    if (amount_read) {
        *amount_read = (size_t)got;
    }
    return got > 0 ? RS_OK : RS_EAGAIN;
}

/* Cancel the probe and close the handle; the probe's packet still comes. */
static void rs__pipe_win_read_close(rs_pipe_read_end_t *re) {
    if (!re->handle) {
        return;
    }
    if (re->probe_op.pending) {
        CancelIoEx(re->handle, NULL);
    }
    CloseHandle(re->handle);
    re->handle = NULL;
    CloseHandle(re->read_event);
    re->read_event = NULL;
    re->readable = false;
    if (re->loop && rs_task_is_scheduled(&re->readable_task)) {
        rs_event_loop_cancel_task(re->loop, &re->readable_task);
    }
}

static void rs__pipe_win_read_maybe_free(rs_pipe_read_end_t *re) {
    if (!re->destroy_requested || re->callback_depth > 0 || re->probe_op.pending) {
        return; /* the kernel still owns the probe's OVERLAPPED, or a callback is on the stack */
    }
    rs__pipe_win_free_read(re);
}

RESEAU_API void rs_pipe_read_end_destroy(rs_pipe_read_end_t *read_end) {
    if (!read_end) {
        return;
    }
    if (read_end->loop && !rs_event_loop_is_on_loop_thread(read_end->loop) &&
        (read_end->probe_op.pending || read_end->callback_depth > 0 || rs_task_is_scheduled(&read_end->readable_task))) {
        RS__LOG_ERROR(RS_LS_SOCKET, "rs_pipe_read_end_destroy: %p destroyed off its loop's thread; leaked",
                      (void *)read_end);
        RESEAU_ASSERT(!"rs_pipe_read_end_destroy off the read loop's thread");
        return;
    }
    rs__pipe_win_read_close(read_end);
    read_end->destroy_requested = true;
    rs__pipe_win_read_maybe_free(read_end);
}

/* ---- the write end ---- */

static rs__pipe_write_req_t *rs__pipe_win_take_req(rs_pipe_write_end_t *we) {
    rs_list_node_t *node = rs_list_pop_front(&we->req_cache);
    if (node) {
        --we->req_cache_count;
        return RS_CONTAINER_OF(node, rs__pipe_write_req_t, node);
    }
    return (rs__pipe_write_req_t *)rs_mem_calloc(&we->allocator, 1, sizeof(rs__pipe_write_req_t));
}

static void rs__pipe_win_recycle_req(rs_pipe_write_end_t *we, rs__pipe_write_req_t *req) {
    if (we->req_cache_count < RS__PIPE_WIN_REQ_CACHE) {
        rs_list_push_back(&we->req_cache, &req->node);
        ++we->req_cache_count;
        return;
    }
    rs_mem_free(&we->allocator, req);
}

static bool rs__pipe_win_front_done(rs_pipe_write_end_t *we) {
    return !rs_list_empty(&we->queue) &&
           RS_CONTAINER_OF(rs_list_begin(&we->queue), rs__pipe_write_req_t, node)->done;
}

static void rs__pipe_win_schedule_completions(rs_pipe_write_end_t *we) {
    if (!rs__pipe_win_front_done(we) || rs_task_is_scheduled(&we->completion_task)) {
        return;
    }
    if (we->loop) {
        rs_event_loop_schedule_task_now(we->loop, &we->completion_task);
        return;
    }
    /* The loop's destroy is taking the last packets: there is no tick left
     * to deliver them on, and each write still completes exactly once. */
    rs__pipe_win_deliver_writes(we);
}

/* Fail every write that is not done and that no WriteFile is carrying; the
 * ones in flight fail when their packet comes (the kernel may be reading
 * their bytes until then). */
static void rs__pipe_win_fail_writes(rs_pipe_write_end_t *we, int error) {
    rs_list_node_t *node;
    if (!we->write_error) {
        we->write_error = error;
    }
    we->first_unsent = NULL;
    for (node = rs_list_begin(&we->queue); node != rs_list_end(&we->queue); node = node->next) {
        rs__pipe_write_req_t *req = RS_CONTAINER_OF(node, rs__pipe_write_req_t, node);
        if (!req->done && !req->op.pending) {
            req->done = true;
            req->error = we->write_error;
        }
    }
    rs__pipe_win_schedule_completions(we);
}

/* Hand the kernel every write not yet sent, in order. A write's next part
 * waits for its last one, and later writes wait behind it. */
static void rs__pipe_win_flush(rs_pipe_write_end_t *we) {
    while (we->first_unsent && we->handle && !we->write_error) {
        rs__pipe_write_req_t *req = RS_CONTAINER_OF(we->first_unsent, rs__pipe_write_req_t, node);
        size_t left = req->data.len - req->sent;
        DWORD part;
        if (req->op.pending) {
            return; /* its next part goes when this one completes */
        }
        if (left == 0) {
            req->done = true; /* zero-length: delivered behind the writes before it */
        } else {
            part = (DWORD)(left < RS__PIPE_WIN_WRITE_MAX ? left : RS__PIPE_WIN_WRITE_MAX);
            if (!WriteFile(we->handle, req->data.ptr + req->sent, part, NULL, rs__iocp_op_overlapped(&req->op)) &&
                GetLastError() != ERROR_IO_PENDING) {
                int err = rs__pipe_win_last_error();
                RS__LOG_DEBUG(RS_LS_SOCKET, "pipe %p: write failed: %s", (void *)we, rs_strerror(err));
                rs__pipe_win_fail_writes(we, err);
                return;
            }
            rs__iocp_op_started(we->loop, &req->op);
            ++we->ops_pending;
            req->part = part;
            req->sent += part;
            if (req->sent < req->data.len) {
                return;
            }
        }
        we->first_unsent = req->node.next == rs_list_end(&we->queue) ? NULL : req->node.next;
    }
}

static void rs__pipe_win_write_done(rs__iocp_op_t *op, int status, size_t bytes) {
    rs__pipe_write_req_t *req = RS_CONTAINER_OF(op, rs__pipe_write_req_t, op);
    rs_pipe_write_end_t *we = req->end;
    --we->ops_pending;
    req->written += bytes;
    if (!status && bytes < req->part) {
        /* A byte-mode WriteFile that succeeds takes every byte; Wine ends
         * the writes still queued when the reader goes away as a success
         * of 0 bytes. */
        status = RS_EPIPE;
    }
    if (status) {
        if (status != RS_ECANCELED) {
            RS__LOG_DEBUG(RS_LS_SOCKET, "pipe %p: write failed: %s", (void *)we, rs_strerror(status));
        }
        if (!we->write_error) {
            we->write_error = status; /* a closed end keeps its RS_ECANCELED */
        }
        req->done = true;
        req->error = we->write_error;
        rs__pipe_win_fail_writes(we, status);
    } else if (req->sent == req->data.len) {
        req->done = true;
        req->error = RS_OK;
    } else if (we->write_error) {
        req->done = true;
        req->error = we->write_error;
    } else {
        rs__pipe_win_flush(we); /* the next part of this write */
    }
    rs__pipe_win_schedule_completions(we);
    rs__pipe_win_write_maybe_free(we);
}

/* Deliver, in order, the finished writes at the front of the queue; a write
 * made by these callbacks completes on a later tick. */
static void rs__pipe_win_deliver_writes(rs_pipe_write_end_t *we) {
    rs_list_t batch;
    rs_list_node_t *node;
    rs_list_init(&batch);
    while (rs__pipe_win_front_done(we)) {
        rs_list_push_back(&batch, rs_list_pop_front(&we->queue));
    }
    we->callback_depth++;
    while ((node = rs_list_pop_front(&batch)) != NULL) {
        rs__pipe_write_req_t *req = RS_CONTAINER_OF(node, rs__pipe_write_req_t, node);
        rs_pipe_on_write_fn *fn = req->fn;
        void *user_data = req->user_data;
        int error = req->error;
        size_t written = req->written;
        rs__pipe_win_recycle_req(we, req);
        fn(we, error, written, user_data);
    }
    we->callback_depth--;
}

static void rs__pipe_win_completion_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_pipe_write_end_t *we = (rs_pipe_write_end_t *)arg;
    (void)task;
    (void)status; /* completions are delivered either way: exactly once each */
    rs__pipe_win_deliver_writes(we);
    rs__pipe_win_schedule_completions(we); /* writes that finished during the callbacks */
    rs__pipe_win_write_maybe_free(we);
}

RESEAU_API int rs_pipe_write(rs_pipe_write_end_t *write_end, rs_byte_cursor_t data, rs_pipe_on_write_fn *on_written,
                             void *user_data) {
    rs__pipe_write_req_t *req;
    int err;
    if (!write_end) {
        return RS_EINVAL;
    }
    err = rs__pipe_win_check_thread(write_end->loop, "rs_pipe_write");
    if (err) {
        return err;
    }
    if (!on_written || (!data.ptr && data.len)) {
        return RS_EINVAL;
    }
    if (write_end->write_error) {
        return write_end->write_error;
    }
    if (!write_end->handle || !write_end->loop) {
        return RS_EBADF;
    }
    req = rs__pipe_win_take_req(write_end);
    if (!req) {
        return RS_ENOMEM;
    }
    memset(req, 0, sizeof(*req));
    rs__iocp_op_init(&req->op, rs__pipe_win_write_done);
    req->end = write_end;
    req->data = data;
    req->fn = on_written;
    req->user_data = user_data;
    rs_list_push_back(&write_end->queue, &req->node);
    if (!write_end->first_unsent) {
        write_end->first_unsent = &req->node;
    }
    rs__pipe_win_flush(write_end);
    rs__pipe_win_schedule_completions(write_end);
    return RS_OK;
}

/* Cancel what the kernel holds and close the handle. The packets of the
 * canceled writes still come; the writes not yet done fail with
 * RS_ECANCELED. */
static void rs__pipe_win_write_close(rs_pipe_write_end_t *we) {
    if (!we->handle) {
        return;
    }
    if (we->ops_pending > 0) {
        CancelIoEx(we->handle, NULL);
    }
    CloseHandle(we->handle);
    we->handle = NULL;
    we->write_error = RS_ECANCELED;
    rs__pipe_win_fail_writes(we, RS_ECANCELED);
}

static void rs__pipe_win_write_maybe_free(rs_pipe_write_end_t *we) {
    if (!we->destroy_requested || we->callback_depth > 0 || we->ops_pending > 0) {
        return; /* the kernel still owns an OVERLAPPED in it, or a callback is on the stack */
    }
    if (!rs_list_empty(&we->queue) || rs_task_is_scheduled(&we->completion_task)) {
        return; /* freed after they deliver their completions */
    }
    rs__pipe_win_free_write(we);
}

RESEAU_API void rs_pipe_write_end_destroy(rs_pipe_write_end_t *write_end) {
    if (!write_end) {
        return;
    }
    if (write_end->loop && !rs_event_loop_is_on_loop_thread(write_end->loop) &&
        (write_end->ops_pending > 0 || write_end->callback_depth > 0 || !rs_list_empty(&write_end->queue) ||
         rs_task_is_scheduled(&write_end->completion_task))) {
        RS__LOG_ERROR(RS_LS_SOCKET, "rs_pipe_write_end_destroy: %p destroyed off its loop's thread; leaked",
                      (void *)write_end);
        RESEAU_ASSERT(!"rs_pipe_write_end_destroy off the write loop's thread");
        return;
    }
    rs__pipe_win_write_close(write_end);
    write_end->destroy_requested = true;
    rs__pipe_win_write_maybe_free(write_end);
}

#endif /* RESEAU_OS_WINDOWS */
