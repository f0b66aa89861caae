/* Input streams: memory and file streams behind the public vtable, the
 * asynchronous read gate, and the worker that adapts a synchronous stream. */

/* ---- the generic synchronous API ----------------------------------------- */

RESEAU_API void rs_input_stream_destroy(rs_input_stream_t *stream) {
    if (stream && stream->vtable && stream->vtable->destroy) {
        stream->vtable->destroy(stream);
    }
}

RESEAU_API int rs_input_stream_read(rs_input_stream_t *stream, rs_byte_buf_t *dest) {
    if (!stream || !stream->vtable || !stream->vtable->read || !dest || dest->len > dest->capacity) {
        return RS_EINVAL;
    }
    return stream->vtable->read(stream, dest);
}

RESEAU_API int rs_input_stream_seek(rs_input_stream_t *stream, int64_t offset, rs_stream_seek_basis_t basis) {
    if (!stream || !stream->vtable || !stream->vtable->seek ||
        (basis != RS_STREAM_SEEK_BEGIN && basis != RS_STREAM_SEEK_END)) {
        return RS_EINVAL;
    }
    return stream->vtable->seek(stream, offset, basis);
}

RESEAU_API int rs_input_stream_get_status(rs_input_stream_t *stream, rs_stream_status_t *status_out) {
    if (!stream || !stream->vtable || !stream->vtable->get_status || !status_out) {
        return RS_EINVAL;
    }
    return stream->vtable->get_status(stream, status_out);
}

RESEAU_API int rs_input_stream_get_length(rs_input_stream_t *stream, int64_t *length_out) {
    if (!stream || !stream->vtable || !stream->vtable->get_length || !length_out) {
        return RS_EINVAL;
    }
    return stream->vtable->get_length(stream, length_out);
}

/* The absolute position for (offset, basis) in a stream of `length` bytes;
 * RS_ESTREAM_SEEK outside [0, length]. */
static int rs__stream_seek_target(int64_t offset, rs_stream_seek_basis_t basis, int64_t length, int64_t *target) {
    if (basis == RS_STREAM_SEEK_BEGIN ? (offset < 0 || offset > length) : (offset > 0 || offset < -length)) {
        return RS_ESTREAM_SEEK;
    }
    *target = basis == RS_STREAM_SEEK_BEGIN ? offset : length + offset;
    return RS_OK;
}

/* ---- memory -------------------------------------------------------------- */

typedef struct rs__mem_stream {
    rs_input_stream_t base;
    rs_allocator_t allocator;
    rs_byte_cursor_t data;
    size_t pos;
    bool eof;
} rs__mem_stream_t;

static int rs__mem_read(rs_input_stream_t *stream, rs_byte_buf_t *dest) {
    rs__mem_stream_t *m = (rs__mem_stream_t *)stream->impl;
    size_t room = dest->capacity - dest->len;
    size_t n = m->data.len - m->pos < room ? m->data.len - m->pos : room;
    if (n) {
        memcpy(dest->buffer + dest->len, m->data.ptr + m->pos, n);
    }
    dest->len += n;
    m->pos += n;
    m->eof = m->pos == m->data.len;
    return RS_OK;
}

static int rs__mem_seek(rs_input_stream_t *stream, int64_t offset, rs_stream_seek_basis_t basis) {
    rs__mem_stream_t *m = (rs__mem_stream_t *)stream->impl;
    int64_t target;
    int err = rs__stream_seek_target(offset, basis, (int64_t)m->data.len, &target);
    if (err == RS_OK) {
        m->pos = (size_t)target;
        m->eof = false;
    }
    return err;
}

static int rs__mem_get_status(rs_input_stream_t *stream, rs_stream_status_t *status_out) {
    rs__mem_stream_t *m = (rs__mem_stream_t *)stream->impl;
    status_out->is_end_of_stream = m->eof;
    status_out->is_valid = true;
    return RS_OK;
}

static int rs__mem_get_length(rs_input_stream_t *stream, int64_t *length_out) {
    *length_out = (int64_t)((rs__mem_stream_t *)stream->impl)->data.len;
    return RS_OK;
}

static void rs__mem_destroy(rs_input_stream_t *stream) {
    rs__mem_stream_t *m = (rs__mem_stream_t *)stream->impl;
    rs_mem_free(&m->allocator, m);
}

static const rs_input_stream_vtable_t rs__mem_stream_vtable = {rs__mem_read, rs__mem_seek, rs__mem_get_status,
                                                               rs__mem_get_length, rs__mem_destroy};

static rs_input_stream_t *rs__stream_fail(int err, int *err_out) {
    if (err_out) {
        *err_out = err;
    }
    return NULL;
}

RESEAU_API rs_input_stream_t *rs_input_stream_new_from_memory(const rs_allocator_t *allocator, rs_byte_cursor_t data,
                                                              int *err_out) {
    rs__mem_stream_t *m;
    if ((!data.ptr && data.len) || data.len > (size_t)INT64_MAX) {
        return rs__stream_fail(RS_EINVAL, err_out);
    }
    m = (rs__mem_stream_t *)rs_mem_calloc(allocator, 1, sizeof(*m));
    if (!m) {
        return rs__stream_fail(RS_ENOMEM, err_out);
    }
    m->allocator = *(allocator ? allocator : rs_default_allocator());
    m->data = data;
    m->base.vtable = &rs__mem_stream_vtable;
    m->base.impl = m;
    if (err_out) {
        *err_out = RS_OK;
    }
    return &m->base;
}

/* ---- file ---------------------------------------------------------------- */

#if RESEAU_OS_NONE
/* A bare-metal C library has no file descriptors to read. */
RESEAU_API rs_input_stream_t *rs_input_stream_new_from_file(const rs_allocator_t *allocator, const char *path,
                                                            int *err_out) {
    (void)allocator;
    return rs__stream_fail(path ? RS_ENOTSUP : RS_EINVAL, err_out);
}
#else

/* 64-bit offsets on 32-bit Linux need the *64 calls that _GNU_SOURCE (through
 * _LARGEFILE64_SOURCE) declares; elsewhere off_t is what the system has.
 * Windows: the C runtime's descriptors, opened by a UTF-16 path (the
 * narrow _open takes the ANSI code page, not UTF-8), in binary mode so that
 * no byte is translated, and not inherited by child processes (O_CLOEXEC). */
#if RESEAU_OS_WINDOWS
static int rs__file_open(const rs_allocator_t *allocator, const char *path) {
    wchar_t *wide;
    int fd;
    int len = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, NULL, 0);
    if (len <= 0) {
        errno = ENOENT; /* not UTF-8: no file can have that name */
        return -1;
    }
    wide = (wchar_t *)rs_mem_alloc(allocator, (size_t)len * sizeof(wchar_t));
    if (!wide) {
        errno = ENOMEM;
        return -1;
    }
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, wide, len);
    fd = _wopen(wide, _O_RDONLY | _O_BINARY | _O_NOINHERIT);
    rs_mem_free(allocator, wide);
    return fd;
}

static int64_t rs__file_lseek(int fd, int64_t offset, int whence) {
    return (int64_t)_lseeki64(fd, offset, whence);
}

/* _read takes an unsigned int count: a larger one would wrap, and a wrapped 0
 * would look like the end of the file. */
static ssize_t rs__file_read_some(int fd, void *buf, size_t len) {
    return _read(fd, buf, len > INT_MAX ? INT_MAX : (unsigned)len);
}
#else
static ssize_t rs__file_read_some(int fd, void *buf, size_t len) {
    return read(fd, buf, len);
}

static int rs__file_open(const rs_allocator_t *allocator, const char *path) {
    (void)allocator;
#if defined(_LARGEFILE64_SOURCE) && defined(__GLIBC__)
    return open64(path, O_RDONLY | O_CLOEXEC);
#else
    return open(path, O_RDONLY | O_CLOEXEC);
#endif
}

static int64_t rs__file_lseek(int fd, int64_t offset, int whence) {
#if defined(_LARGEFILE64_SOURCE) && defined(__GLIBC__)
    return (int64_t)lseek64(fd, (off64_t)offset, whence);
#else
    if ((int64_t)(off_t)offset != offset) {
        errno = EOVERFLOW;
        return -1;
    }
    return (int64_t)lseek(fd, (off_t)offset, whence);
#endif
}
#endif

typedef struct rs__file_stream {
    rs_input_stream_t base;
    rs_allocator_t allocator;
    int fd;
    bool eof;
    bool valid;
} rs__file_stream_t;

/* Reads until dest is full or the file ends, so a short read() never looks
 * like the end. */
static int rs__file_read(rs_input_stream_t *stream, rs_byte_buf_t *dest) {
    rs__file_stream_t *f = (rs__file_stream_t *)stream->impl;
    while (dest->len < dest->capacity) {
        ssize_t n = rs__file_read_some(f->fd, dest->buffer + dest->len, dest->capacity - dest->len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            f->valid = false;
            return rs_result_from_errno(errno);
        }
        if (n == 0) {
            f->eof = true;
            break;
        }
        dest->len += (size_t)n;
    }
    return RS_OK;
}

/* The length without moving: remember the position, go to the end, go back. */
static int rs__file_get_length(rs_input_stream_t *stream, int64_t *length_out) {
    rs__file_stream_t *f = (rs__file_stream_t *)stream->impl;
    int64_t pos = rs__file_lseek(f->fd, 0, SEEK_CUR);
    int64_t end = pos < 0 ? -1 : rs__file_lseek(f->fd, 0, SEEK_END);
    if (end < 0 || rs__file_lseek(f->fd, pos, SEEK_SET) < 0) {
        return rs_result_from_errno(errno);
    }
    *length_out = end;
    return RS_OK;
}

static int rs__file_seek(rs_input_stream_t *stream, int64_t offset, rs_stream_seek_basis_t basis) {
    rs__file_stream_t *f = (rs__file_stream_t *)stream->impl;
    int64_t length = 0; /* set when err is RS_OK; gcc -O3 cannot see that */
    int64_t target;
    int err = rs__file_get_length(stream, &length);
    if (err == RS_OK && (err = rs__stream_seek_target(offset, basis, length, &target)) == RS_OK) {
        if (rs__file_lseek(f->fd, target, SEEK_SET) < 0) {
            return rs_result_from_errno(errno);
        }
        f->eof = false;
    }
    return err;
}

static int rs__file_get_status(rs_input_stream_t *stream, rs_stream_status_t *status_out) {
    rs__file_stream_t *f = (rs__file_stream_t *)stream->impl;
    status_out->is_end_of_stream = f->eof;
    status_out->is_valid = f->valid;
    return RS_OK;
}

static void rs__file_destroy(rs_input_stream_t *stream) {
    rs__file_stream_t *f = (rs__file_stream_t *)stream->impl;
    close(f->fd);
    rs_mem_free(&f->allocator, f);
}

static const rs_input_stream_vtable_t rs__file_stream_vtable = {rs__file_read, rs__file_seek, rs__file_get_status,
                                                                rs__file_get_length, rs__file_destroy};

RESEAU_API rs_input_stream_t *rs_input_stream_new_from_file(const rs_allocator_t *allocator, const char *path,
                                                            int *err_out) {
    rs__file_stream_t *f;
    int fd;
    if (!path) {
        return rs__stream_fail(RS_EINVAL, err_out);
    }
    f = (rs__file_stream_t *)rs_mem_calloc(allocator, 1, sizeof(*f));
    if (!f) {
        return rs__stream_fail(RS_ENOMEM, err_out);
    }
    if ((fd = rs__file_open(allocator, path)) < 0) {
        int err = rs_result_from_errno(errno);
        rs_mem_free(allocator, f);
        return rs__stream_fail(err, err_out);
    }
    f->allocator = *(allocator ? allocator : rs_default_allocator());
    f->fd = fd;
    f->valid = true;
    f->base.vtable = &rs__file_stream_vtable;
    f->base.impl = f;
    if (err_out) {
        *err_out = RS_OK;
    }
    return &f->base;
}
#endif /* RESEAU_OS_NONE */

/* ---- the asynchronous gate ----------------------------------------------- */

RESEAU_API void rs_async_input_stream_init(rs_async_input_stream_t *stream, const rs_async_input_stream_vtable_t *vtable,
                                           void *impl) {
    if (stream) {
        memset(stream, 0, sizeof(*stream));
        stream->vtable = vtable;
        stream->impl = impl;
    }
}

RESEAU_API void rs_async_input_stream_destroy(rs_async_input_stream_t *stream) {
    if (stream && stream->vtable && stream->vtable->destroy) {
        stream->vtable->destroy(stream);
    }
}

/* The check and the claim are one exchange: two racing reads cannot both see
 * the gate open (checking first and claiming after was another port's bug). */
static int rs__async_stream_start(rs_async_input_stream_t *stream, rs_byte_buf_t *dest, rs_future_t *future,
                                  bool fill) {
    if (!stream || !stream->vtable || !stream->vtable->read || !dest || !future ||
        rs_future_get_type(future) != RS_FUTURE_BOOL || dest->len >= dest->capacity) {
        return RS_EINVAL;
    }
    if (rs__atomic_exchange_int(&stream->read_in_flight, 1) != 0) {
        return RS_EBUSY;
    }
    stream->future = rs_future_acquire(future);
    stream->dest = dest;
    stream->fill = fill;
    stream->vtable->read(stream, dest);
    return RS_OK;
}

RESEAU_API int rs_async_input_stream_read(rs_async_input_stream_t *stream, rs_byte_buf_t *dest, rs_future_t *future) {
    return rs__async_stream_start(stream, dest, future, false);
}

RESEAU_API int rs_async_input_stream_read_to_fill(rs_async_input_stream_t *stream, rs_byte_buf_t *dest,
                                                  rs_future_t *future) {
    return rs__async_stream_start(stream, dest, future, true);
}

RESEAU_API void rs_async_input_stream_complete_read(rs_async_input_stream_t *stream, int error, bool eof) {
    rs_future_t *future;
    if (!stream || !stream->future) {
        return;
    }
    if (stream->fill && error == RS_OK && !eof && stream->dest->len < stream->dest->capacity) {
        stream->vtable->read(stream, stream->dest);
        return;
    }
    future = stream->future;
    stream->future = NULL;
    stream->dest = NULL;
    stream->fill = false;
    rs__atomic_store_int(&stream->read_in_flight, 0);
    if (error < 0) {
        rs_future_set_error(future, error);
    } else {
        rs_future_set_result_bool(future, eof);
    }
    rs_future_release(future);
}

/* ---- the adapter from a synchronous stream ------------------------------- */

typedef struct rs__sync_adapter {
    rs_async_input_stream_t base;
    rs_allocator_t allocator;
    rs_input_stream_t *source;
    rs_thread_t thread;
    rs_mutex_t lock;
    rs_condvar_t wake;
    /* Guarded by lock: */
    rs_byte_buf_t *job;
    bool stop;
    bool worker_frees; /* destroyed from inside the worker: it cleans up */
    rs_thread_id_t worker_id;
} rs__sync_adapter_t;

static void rs__sync_adapter_free(rs__sync_adapter_t *a) {
    rs_input_stream_destroy(a->source);
    rs_condvar_cleanup(&a->wake);
    rs_mutex_cleanup(&a->lock);
    rs_mem_free(&a->allocator, a);
}

static void rs__sync_adapter_read_once(rs__sync_adapter_t *a, rs_byte_buf_t *dest) {
    rs_stream_status_t status = {false, false};
    int err = rs_input_stream_read(a->source, dest);
    if (err == RS_OK) {
        err = rs_input_stream_get_status(a->source, &status);
    }
    rs_async_input_stream_complete_read(&a->base, err, err == RS_OK && status.is_end_of_stream);
}

static void rs__sync_adapter_worker(void *arg) {
    rs__sync_adapter_t *a = (rs__sync_adapter_t *)arg;
    rs_byte_buf_t *canceled;
    bool worker_frees;
    rs_mutex_lock(&a->lock);
    a->worker_id = rs_thread_current_id();
    for (;;) {
        rs_byte_buf_t *dest;
        while (!a->job && !a->stop) {
            rs_condvar_wait(&a->wake, &a->lock);
        }
        if (a->stop) {
            break;
        }
        dest = a->job;
        a->job = NULL;
        rs_mutex_unlock(&a->lock);
        rs__sync_adapter_read_once(a, dest);
        rs_mutex_lock(&a->lock);
    }
    canceled = a->job;
    a->job = NULL;
    worker_frees = a->worker_frees;
    rs_mutex_unlock(&a->lock);
    if (canceled) {
        rs_async_input_stream_complete_read(&a->base, RS_ECANCELED, false);
    }
    if (worker_frees) {
        rs__thread_detach(&a->thread); /* nobody will join this thread */
        rs__sync_adapter_free(a);
    }
}

static void rs__sync_adapter_read(rs_async_input_stream_t *stream, rs_byte_buf_t *dest) {
    rs__sync_adapter_t *a = (rs__sync_adapter_t *)stream->impl;
    rs_mutex_lock(&a->lock);
    a->job = dest;
    rs_condvar_signal(&a->wake);
    rs_mutex_unlock(&a->lock);
}

static void rs__sync_adapter_destroy(rs_async_input_stream_t *stream) {
    rs__sync_adapter_t *a = (rs__sync_adapter_t *)stream->impl;
    bool on_worker;
    rs_mutex_lock(&a->lock);
    a->stop = true;
    on_worker = a->worker_id == rs_thread_current_id();
    a->worker_frees = on_worker;
    rs_condvar_signal(&a->wake);
    rs_mutex_unlock(&a->lock);
    if (!on_worker) {
        rs_thread_join(&a->thread);
        rs__sync_adapter_free(a);
    }
}

static const rs_async_input_stream_vtable_t rs__sync_adapter_vtable = {rs__sync_adapter_read,
                                                                       rs__sync_adapter_destroy};

RESEAU_API rs_async_input_stream_t *rs_async_input_stream_new_from_sync(const rs_allocator_t *allocator,
                                                                       rs_input_stream_t *source, int *err_out) {
    rs__sync_adapter_t *a;
    rs_thread_options_t topts;
    int err = RS_EINVAL;
    if (!source) {
        goto fail;
    }
    err = RS_ENOMEM;
    if (!(a = (rs__sync_adapter_t *)rs_mem_calloc(allocator, 1, sizeof(*a)))) {
        goto fail;
    }
    a->allocator = *(allocator ? allocator : rs_default_allocator());
    a->source = source;
    rs_async_input_stream_init(&a->base, &rs__sync_adapter_vtable, a);
    if ((err = rs_mutex_init(&a->lock)) != RS_OK) {
        goto fail_alloc;
    }
    if ((err = rs_condvar_init(&a->wake)) != RS_OK) {
        goto fail_lock;
    }
    memset(&topts, 0, sizeof(topts));
    topts.name = "rs-stream";
    if ((err = rs_thread_launch(&a->thread, rs__sync_adapter_worker, a, &topts)) != RS_OK) {
        goto fail_cond;
    }
    if (err_out) {
        *err_out = RS_OK;
    }
    return &a->base;
fail_cond:
    rs_condvar_cleanup(&a->wake);
fail_lock:
    rs_mutex_cleanup(&a->lock);
fail_alloc:
    rs_mem_free(&a->allocator, a);
fail:
    if (err_out) {
        *err_out = err;
    }
    return NULL;
}
