/* Input streams: memory and file reads at every boundary, seeks (past the end
 * included), status, a 5 GiB sparse file's length, a user vtable; async
 * streams: the adapter reads on its worker, read and read_to_fill, errors,
 * the one-read gate under racing threads; NULL handles; allocation-failure
 * sweeps over each constructor. */
#include "test_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char digits[] = "0123456789abcdefghij"; /* 20 bytes */
#define DIGITS_LEN 20

/* ---- helpers ------------------------------------------------------------- */

static void temp_path(char *out, size_t size, const char *name) {
    const char *dir = getenv("TMPDIR");
    snprintf(out, size, "%s/reseau-stream-%ld-%s", dir && *dir ? dir : "/tmp", (long)getpid(), name);
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static rs_stream_status_t status_of(rs_input_stream_t *s) {
    rs_stream_status_t st;
    memset(&st, 0xff, sizeof(st));
    assert_int_equal(rs_input_stream_get_status(s, &st), RS_OK);
    return st;
}

/* Read the whole stream `chunk` bytes at a time and check every byte and the
 * moment end of stream is reported: `eof_on_last` (memory) says it comes with
 * the last byte; otherwise (file) with the first read that comes up short. */
static void read_all_in_chunks(rs_input_stream_t *s, size_t chunk, bool eof_on_last) {
    uint8_t storage[DIGITS_LEN + 8];
    size_t total = 0;
    int guard = 0;
    while (guard++ < DIGITS_LEN + 3) {
        rs_byte_buf_t buf = rs_byte_buf_from_array(storage, 0, chunk);
        rs_stream_status_t st;
        assert_int_equal(rs_input_stream_read(s, &buf), RS_OK);
        assert_true(buf.len <= chunk);
        assert_memory_equal(storage, digits + total, buf.len);
        total += buf.len;
        st = status_of(s);
        assert_true(st.is_valid);
        if (eof_on_last) {
            assert_true(st.is_end_of_stream == (total == DIGITS_LEN));
        } else {
            assert_true(st.is_end_of_stream == (buf.len < chunk));
        }
        if (st.is_end_of_stream) {
            break;
        }
    }
    assert_int_equal(total, DIGITS_LEN);
}

/* ---- memory -------------------------------------------------------------- */

static rs_input_stream_t *new_mem(const char *data, size_t len) {
    int err = -1;
    rs_input_stream_t *s = rs_input_stream_new_from_memory(&rs_test_allocator, rs_byte_cursor_from_array(data, len), &err);
    assert_non_null(s);
    assert_int_equal(err, RS_OK);
    return s;
}

static void memory_reads_at_every_boundary(void **state) {
    size_t chunk;
    (void)state;
    for (chunk = 1; chunk <= DIGITS_LEN + 2; ++chunk) {
        rs_input_stream_t *s = new_mem(digits, DIGITS_LEN);
        int64_t len = 0;
        assert_false(status_of(s).is_end_of_stream);
        assert_int_equal(rs_input_stream_get_length(s, &len), RS_OK);
        assert_int_equal(len, DIGITS_LEN);
        read_all_in_chunks(s, chunk, true);
        rs_input_stream_destroy(s);
    }
}

static void memory_empty_and_full_destination(void **state) {
    uint8_t storage[4];
    rs_byte_buf_t buf = rs_byte_buf_from_array(storage, 0, sizeof(storage));
    rs_input_stream_t *s = new_mem(NULL, 0);
    (void)state;
    assert_int_equal(rs_input_stream_read(s, &buf), RS_OK);
    assert_int_equal(buf.len, 0);
    assert_true(status_of(s).is_end_of_stream);
    rs_input_stream_destroy(s);
    /* A full destination reads nothing and moves nothing. */
    s = new_mem(digits, DIGITS_LEN);
    buf = rs_byte_buf_from_array(storage, sizeof(storage), sizeof(storage));
    assert_int_equal(rs_input_stream_read(s, &buf), RS_OK);
    assert_int_equal(buf.len, sizeof(storage));
    assert_false(status_of(s).is_end_of_stream);
    buf.len = 0;
    assert_int_equal(rs_input_stream_read(s, &buf), RS_OK);
    assert_memory_equal(storage, "0123", 4);
    rs_input_stream_destroy(s);
}

/* Seeks on any stream of DIGITS_LEN bytes: both ends, inside, and outside. */
static void check_seeks(rs_input_stream_t *s) {
    uint8_t storage[DIGITS_LEN];
    rs_byte_buf_t buf;
    assert_int_equal(rs_input_stream_seek(s, 5, RS_STREAM_SEEK_BEGIN), RS_OK);
    buf = rs_byte_buf_from_array(storage, 0, 3);
    assert_int_equal(rs_input_stream_read(s, &buf), RS_OK);
    assert_memory_equal(storage, "567", 3);
    assert_int_equal(rs_input_stream_seek(s, -2, RS_STREAM_SEEK_END), RS_OK);
    buf = rs_byte_buf_from_array(storage, 0, sizeof(storage));
    assert_int_equal(rs_input_stream_read(s, &buf), RS_OK);
    assert_int_equal(buf.len, 2);
    assert_memory_equal(storage, "ij", 2);
    assert_true(status_of(s).is_end_of_stream);
    /* Seeking clears end of stream. */
    assert_int_equal(rs_input_stream_seek(s, 0, RS_STREAM_SEEK_BEGIN), RS_OK);
    assert_false(status_of(s).is_end_of_stream);
    assert_int_equal(rs_input_stream_seek(s, -DIGITS_LEN, RS_STREAM_SEEK_END), RS_OK);
    buf = rs_byte_buf_from_array(storage, 0, 1);
    assert_int_equal(rs_input_stream_read(s, &buf), RS_OK);
    assert_memory_equal(storage, "0", 1);
    /* The end itself is a position: a read there gets nothing and says so. */
    assert_int_equal(rs_input_stream_seek(s, DIGITS_LEN, RS_STREAM_SEEK_BEGIN), RS_OK);
    buf = rs_byte_buf_from_array(storage, 0, sizeof(storage));
    assert_int_equal(rs_input_stream_read(s, &buf), RS_OK);
    assert_int_equal(buf.len, 0);
    assert_true(status_of(s).is_end_of_stream);
    assert_int_equal(rs_input_stream_seek(s, 0, RS_STREAM_SEEK_END), RS_OK);
    /* Outside [0, length]: refused, position unchanged. */
    assert_int_equal(rs_input_stream_seek(s, 3, RS_STREAM_SEEK_BEGIN), RS_OK);
    assert_int_equal(rs_input_stream_seek(s, DIGITS_LEN + 1, RS_STREAM_SEEK_BEGIN), RS_ESTREAM_SEEK);
    assert_int_equal(rs_input_stream_seek(s, -1, RS_STREAM_SEEK_BEGIN), RS_ESTREAM_SEEK);
    assert_int_equal(rs_input_stream_seek(s, 1, RS_STREAM_SEEK_END), RS_ESTREAM_SEEK);
    assert_int_equal(rs_input_stream_seek(s, -DIGITS_LEN - 1, RS_STREAM_SEEK_END), RS_ESTREAM_SEEK);
    assert_int_equal(rs_input_stream_seek(s, INT64_MAX, RS_STREAM_SEEK_BEGIN), RS_ESTREAM_SEEK);
    assert_int_equal(rs_input_stream_seek(s, INT64_MIN, RS_STREAM_SEEK_END), RS_ESTREAM_SEEK);
    assert_int_equal(rs_input_stream_seek(s, 0, (rs_stream_seek_basis_t)2), RS_EINVAL);
    buf = rs_byte_buf_from_array(storage, 0, 1);
    assert_int_equal(rs_input_stream_read(s, &buf), RS_OK);
    assert_memory_equal(storage, "3", 1);
}

static void memory_seeks_and_seek_past_end(void **state) {
    rs_input_stream_t *s = new_mem(digits, DIGITS_LEN);
    (void)state;
    check_seeks(s);
    rs_input_stream_destroy(s);
}

/* ---- file ---------------------------------------------------------------- */

static void file_reads_at_every_boundary(void **state) {
    char path[256];
    size_t chunk;
    (void)state;
    temp_path(path, sizeof(path), "digits");
    write_file(path, digits, DIGITS_LEN);
    for (chunk = 1; chunk <= DIGITS_LEN + 2; ++chunk) {
        int err = -1;
        rs_input_stream_t *s = rs_input_stream_new_from_file(&rs_test_allocator, path, &err);
        int64_t len = 0;
        assert_non_null(s);
        assert_int_equal(err, RS_OK);
        assert_int_equal(rs_input_stream_get_length(s, &len), RS_OK);
        assert_int_equal(len, DIGITS_LEN);
        read_all_in_chunks(s, chunk, false);
        rs_input_stream_destroy(s);
    }
    unlink(path);
}

static void file_seeks_and_seek_past_end(void **state) {
    char path[256];
    rs_input_stream_t *s;
    int64_t len = 0;
    (void)state;
    temp_path(path, sizeof(path), "seek");
    write_file(path, digits, DIGITS_LEN);
    s = rs_input_stream_new_from_file(&rs_test_allocator, path, NULL);
    assert_non_null(s);
    check_seeks(s);
    /* get_length does not move the position (3 after check_seeks, then 4). */
    assert_int_equal(rs_input_stream_get_length(s, &len), RS_OK);
    assert_int_equal(len, DIGITS_LEN);
    {
        uint8_t c = 0;
        rs_byte_buf_t buf = rs_byte_buf_from_array(&c, 0, 1);
        assert_int_equal(rs_input_stream_read(s, &buf), RS_OK);
        assert_int_equal(c, '4');
    }
    rs_input_stream_destroy(s);
    unlink(path);
}

static void file_empty_and_missing(void **state) {
    char path[256];
    uint8_t storage[4];
    rs_byte_buf_t buf = rs_byte_buf_from_array(storage, 0, sizeof(storage));
    rs_input_stream_t *s;
    int err = 0;
    int64_t len = -1;
    (void)state;
    temp_path(path, sizeof(path), "empty");
    write_file(path, "", 0);
    s = rs_input_stream_new_from_file(&rs_test_allocator, path, NULL);
    assert_non_null(s);
    assert_int_equal(rs_input_stream_get_length(s, &len), RS_OK);
    assert_int_equal(len, 0);
    assert_int_equal(rs_input_stream_read(s, &buf), RS_OK);
    assert_int_equal(buf.len, 0);
    assert_true(status_of(s).is_end_of_stream);
    rs_input_stream_destroy(s);
    unlink(path);
    assert_null(rs_input_stream_new_from_file(&rs_test_allocator, path, &err));
    assert_int_equal(err, RS_ENOENT);
}

#ifndef O_BINARY
#define O_BINARY 0
#endif

/* `size` bytes, all zero but the last, a "Z". On Windows one byte written
 * past the end: sparse under Wine (ext4 or tmpfs below), 5 GiB of zeros on
 * NTFS, which has no holes unless asked. */
static bool make_sparse(int fd, int64_t size) {
#if RESEAU_OS_WINDOWS
    return _lseeki64(fd, size - 1, SEEK_SET) == size - 1 && _write(fd, "Z", 1) == 1;
#else
    return ftruncate(fd, (off_t)size) == 0 && pwrite(fd, "Z", 1, (off_t)(size - 1)) == 1;
#endif
}

/* A 5 GiB sparse file: the length and offsets beyond 4 GiB are exact. */
static void file_5gib_sparse_length(void **state) {
    const int64_t size = (int64_t)5 << 30;
    char path[256];
    rs_input_stream_t *s;
    int64_t len = 0;
    uint8_t storage[8];
    rs_byte_buf_t buf;
    int fd;
    (void)state;
    temp_path(path, sizeof(path), "sparse");
    fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_BINARY, 0600);
    assert_true(fd >= 0);
    if (!make_sparse(fd, size)) {
        close(fd);
        unlink(path);
        skip(); /* a filesystem without sparse files or a small quota */
    }
    close(fd);
    s = rs_input_stream_new_from_file(&rs_test_allocator, path, NULL);
    assert_non_null(s);
    assert_int_equal(rs_input_stream_get_length(s, &len), RS_OK);
    assert_true(len == size);
    assert_int_equal(rs_input_stream_seek(s, size - 3, RS_STREAM_SEEK_BEGIN), RS_OK);
    buf = rs_byte_buf_from_array(storage, 0, sizeof(storage));
    assert_int_equal(rs_input_stream_read(s, &buf), RS_OK);
    assert_int_equal(buf.len, 3);
    assert_memory_equal(storage, "\0\0Z", 3);
    assert_true(status_of(s).is_end_of_stream);
    assert_int_equal(rs_input_stream_seek(s, -size, RS_STREAM_SEEK_END), RS_OK);
    assert_int_equal(rs_input_stream_seek(s, size + 1, RS_STREAM_SEEK_BEGIN), RS_ESTREAM_SEEK);
    rs_input_stream_destroy(s);
    unlink(path);
}

/* ---- a user vtable, NULL handles ----------------------------------------- */

typedef struct fake_stream {
    rs_input_stream_t base;
    int reads;
    int read_result;
    rs_thread_id_t read_thread;
    size_t remaining; /* bytes of 'x' left */
    bool eof;
    bool destroyed;
} fake_stream_t;

static int fake_read(rs_input_stream_t *stream, rs_byte_buf_t *dest) {
    fake_stream_t *f = (fake_stream_t *)stream->impl;
    f->reads++;
    f->read_thread = rs_thread_current_id();
    if (f->read_result != RS_OK) {
        return f->read_result;
    }
    while (f->remaining && dest->len < dest->capacity) {
        dest->buffer[dest->len++] = 'x';
        f->remaining--;
        if (dest->len % 3 == 0) {
            break; /* short reads, to make read_to_fill work for it */
        }
    }
    f->eof = f->remaining == 0;
    return RS_OK;
}
static int fake_seek(rs_input_stream_t *stream, int64_t offset, rs_stream_seek_basis_t basis) {
    (void)stream;
    (void)basis;
    return offset == 0 ? RS_OK : RS_ENOTSUP;
}
static int fake_status(rs_input_stream_t *stream, rs_stream_status_t *out) {
    fake_stream_t *f = (fake_stream_t *)stream->impl;
    out->is_end_of_stream = f->eof;
    out->is_valid = f->read_result == RS_OK;
    return RS_OK;
}
static int fake_length(rs_input_stream_t *stream, int64_t *out) {
    (void)stream;
    *out = 77;
    return RS_OK;
}
static void fake_destroy(rs_input_stream_t *stream) {
    ((fake_stream_t *)stream->impl)->destroyed = true;
}
static const rs_input_stream_vtable_t fake_vtable = {fake_read, fake_seek, fake_status, fake_length, fake_destroy};

static void fake_init(fake_stream_t *f, size_t bytes) {
    memset(f, 0, sizeof(*f));
    f->base.vtable = &fake_vtable;
    f->base.impl = f;
    f->remaining = bytes;
}

static void user_vtable_is_dispatched(void **state) {
    fake_stream_t f;
    uint8_t storage[8];
    rs_byte_buf_t buf = rs_byte_buf_from_array(storage, 0, sizeof(storage));
    int64_t len = 0;
    (void)state;
    fake_init(&f, 2);
    assert_int_equal(rs_input_stream_read(&f.base, &buf), RS_OK);
    assert_int_equal(buf.len, 2);
    assert_true(status_of(&f.base).is_end_of_stream);
    assert_int_equal(rs_input_stream_seek(&f.base, 1, RS_STREAM_SEEK_BEGIN), RS_ENOTSUP);
    assert_int_equal(rs_input_stream_get_length(&f.base, &len), RS_OK);
    assert_int_equal(len, 77);
    rs_input_stream_destroy(&f.base);
    assert_true(f.destroyed);
}

static void stream_null_handles(void **state) {
    rs_input_stream_t empty;
    rs_stream_status_t st;
    uint8_t storage[4];
    rs_byte_buf_t buf = rs_byte_buf_from_array(storage, 0, sizeof(storage));
    rs_byte_buf_t bad = rs_byte_buf_from_array(storage, 5, 4);
    rs_input_stream_t *s = new_mem(digits, DIGITS_LEN);
    rs_async_input_stream_t async_empty;
    rs_future_t *f = rs_future_new(NULL, NULL);
    rs_byte_cursor_t nowhere;
    int64_t len;
    int err = 0;
    (void)state;
    bad.len = 5; /* more than its capacity */
    memset(&empty, 0, sizeof(empty));
    rs_input_stream_destroy(NULL);
    rs_input_stream_destroy(&empty);
    assert_int_equal(rs_input_stream_read(NULL, &buf), RS_EINVAL);
    assert_int_equal(rs_input_stream_read(&empty, &buf), RS_EINVAL);
    assert_int_equal(rs_input_stream_read(s, NULL), RS_EINVAL);
    assert_int_equal(rs_input_stream_read(s, &bad), RS_EINVAL);
    assert_int_equal(rs_input_stream_seek(NULL, 0, RS_STREAM_SEEK_BEGIN), RS_EINVAL);
    assert_int_equal(rs_input_stream_get_status(NULL, &st), RS_EINVAL);
    assert_int_equal(rs_input_stream_get_status(s, NULL), RS_EINVAL);
    assert_int_equal(rs_input_stream_get_length(NULL, &len), RS_EINVAL);
    assert_int_equal(rs_input_stream_get_length(s, NULL), RS_EINVAL);
    nowhere.ptr = NULL;
    nowhere.len = 3;
    assert_null(rs_input_stream_new_from_memory(&rs_test_allocator, nowhere, &err));
    assert_int_equal(err, RS_EINVAL);
    assert_null(rs_input_stream_new_from_file(&rs_test_allocator, NULL, &err));
    assert_int_equal(err, RS_EINVAL);
    assert_null(rs_async_input_stream_new_from_sync(&rs_test_allocator, NULL, &err));
    assert_int_equal(err, RS_EINVAL);
    rs_async_input_stream_init(NULL, NULL, NULL);
    rs_async_input_stream_init(&async_empty, NULL, NULL);
    rs_async_input_stream_destroy(NULL);
    rs_async_input_stream_destroy(&async_empty);
    assert_int_equal(rs_async_input_stream_read(NULL, &buf, f), RS_EINVAL);
    assert_int_equal(rs_async_input_stream_read(&async_empty, &buf, f), RS_EINVAL);
    assert_int_equal(rs_async_input_stream_read_to_fill(NULL, &buf, f), RS_EINVAL);
    rs_async_input_stream_complete_read(NULL, RS_OK, true);
    rs_async_input_stream_complete_read(&async_empty, RS_OK, true); /* no read in flight: ignored */
    rs_future_release(f);
    rs_input_stream_destroy(s);
}

/* ---- async: the adapter ------------------------------------------------- */

static rs_future_t *bool_future(void) {
    rs_future_options_t o;
    rs_future_t *f;
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.type = RS_FUTURE_BOOL;
    f = rs_future_new(&o, NULL);
    assert_non_null(f);
    return f;
}

/* Read the future's outcome after waiting for it. */
static int wait_read(rs_future_t *f, bool *eof) {
    assert_int_equal(rs_future_wait(f, 10 * RS_NS_PER_SEC), RS_OK);
    *eof = rs_future_get_bool(f);
    return rs_future_get_error(f);
}

static void async_adapter_reads_on_its_worker(void **state) {
    fake_stream_t src;
    rs_async_input_stream_t *a;
    uint8_t storage[4];
    rs_byte_buf_t buf = rs_byte_buf_from_array(storage, 0, sizeof(storage));
    rs_future_t *f = bool_future();
    bool eof = true;
    int err = -1;
    (void)state;
    fake_init(&src, 5);
    a = rs_async_input_stream_new_from_sync(&rs_test_allocator, &src.base, &err);
    assert_non_null(a);
    assert_int_equal(err, RS_OK);
    assert_int_equal(rs_async_input_stream_read(a, &buf, f), RS_OK);
    assert_int_equal(wait_read(f, &eof), RS_OK);
    assert_false(eof);
    assert_int_equal(buf.len, 3); /* the source's short read */
    assert_int_equal(src.reads, 1);
    assert_true(src.read_thread != rs_thread_current_id());
    rs_future_release(f);
    /* The gate is open again once the future completed. */
    f = bool_future();
    buf.len = 0;
    assert_int_equal(rs_async_input_stream_read(a, &buf, f), RS_OK);
    assert_int_equal(wait_read(f, &eof), RS_OK);
    assert_true(eof);
    assert_int_equal(buf.len, 2);
    rs_future_release(f);
    rs_async_input_stream_destroy(a);
    assert_true(src.destroyed); /* the adapter owned it */
}

static void async_read_to_fill_reads_until_full_or_end(void **state) {
    rs_input_stream_t *mem;
    fake_stream_t src;
    rs_async_input_stream_t *a;
    uint8_t storage[64];
    rs_byte_buf_t buf = rs_byte_buf_from_array(storage, 0, 10);
    rs_future_t *f = bool_future();
    bool eof = true;
    (void)state;
    /* A source that reads 3 bytes at a time fills 10 in four reads. */
    fake_init(&src, 25);
    a = rs_async_input_stream_new_from_sync(&rs_test_allocator, &src.base, NULL);
    assert_non_null(a);
    assert_int_equal(rs_async_input_stream_read_to_fill(a, &buf, f), RS_OK);
    assert_int_equal(wait_read(f, &eof), RS_OK);
    assert_false(eof);
    assert_int_equal(buf.len, 10);
    assert_true(src.reads >= 4);
    rs_future_release(f);
    rs_async_input_stream_destroy(a);
    /* The end comes first: the future says true with what there was. */
    mem = new_mem(digits, DIGITS_LEN);
    a = rs_async_input_stream_new_from_sync(&rs_test_allocator, mem, NULL);
    assert_non_null(a);
    f = bool_future();
    buf = rs_byte_buf_from_array(storage, 0, sizeof(storage));
    assert_int_equal(rs_async_input_stream_read_to_fill(a, &buf, f), RS_OK);
    assert_int_equal(wait_read(f, &eof), RS_OK);
    assert_true(eof);
    assert_int_equal(buf.len, DIGITS_LEN);
    assert_memory_equal(storage, digits, DIGITS_LEN);
    rs_future_release(f);
    rs_async_input_stream_destroy(a);
}

static void async_read_error_completes_the_future_with_it(void **state) {
    fake_stream_t src;
    rs_async_input_stream_t *a;
    uint8_t storage[4];
    rs_byte_buf_t buf = rs_byte_buf_from_array(storage, 0, sizeof(storage));
    rs_future_t *f = bool_future();
    bool eof;
    (void)state;
    fake_init(&src, 5);
    src.read_result = RS_EIO;
    a = rs_async_input_stream_new_from_sync(&rs_test_allocator, &src.base, NULL);
    assert_non_null(a);
    assert_int_equal(rs_async_input_stream_read_to_fill(a, &buf, f), RS_OK);
    assert_int_equal(wait_read(f, &eof), RS_EIO);
    rs_future_release(f);
    rs_async_input_stream_destroy(a);
}

static void async_read_rejects_bad_arguments(void **state) {
    rs_async_input_stream_t *a = rs_async_input_stream_new_from_sync(&rs_test_allocator, new_mem(digits, 3), NULL);
    uint8_t storage[4];
    rs_byte_buf_t full = rs_byte_buf_from_array(storage, 4, 4);
    rs_byte_buf_t buf = rs_byte_buf_from_array(storage, 0, 4);
    rs_future_options_t o;
    rs_future_t *wrong;
    rs_future_t *f = bool_future();
    (void)state;
    assert_non_null(a);
    memset(&o, 0, sizeof(o));
    o.allocator = &rs_test_allocator;
    o.type = RS_FUTURE_SIZE;
    wrong = rs_future_new(&o, NULL);
    assert_int_equal(rs_async_input_stream_read(a, &buf, wrong), RS_EINVAL);
    assert_int_equal(rs_async_input_stream_read(a, &full, f), RS_EINVAL);
    assert_int_equal(rs_async_input_stream_read(a, NULL, f), RS_EINVAL);
    assert_int_equal(rs_async_input_stream_read(a, &buf, NULL), RS_EINVAL);
    assert_false(rs_future_is_done(f));
    assert_false(rs_future_is_done(wrong));
    rs_future_release(wrong);
    rs_future_release(f);
    rs_async_input_stream_destroy(a);
}

/* The future's loop callback runs on the loop, and may start the next read. */
typedef struct chain {
    rs_async_input_stream_t *stream;
    rs_byte_buf_t buf;
    uint8_t storage[DIGITS_LEN];
    int reads;
    bool done;
    bool on_loop;
    rs_event_loop_t *loop;
} chain_t;

static void chain_next(rs_future_t *future, void *user_data) {
    chain_t *c = (chain_t *)user_data;
    rs_future_t *next;
    c->reads++;
    c->on_loop = rs_event_loop_is_on_loop_thread(c->loop);
    if (rs_future_get_error(future) != RS_OK || rs_future_get_bool(future)) {
        c->done = true;
        return;
    }
    /* Room for the next 7 bytes (the last read gets 6). */
    c->buf.capacity = c->buf.len + 7 > DIGITS_LEN ? DIGITS_LEN : c->buf.len + 7;
    next = bool_future();
    assert_int_equal(rs_future_register_event_loop_callback(next, c->loop, chain_next, c), RS_OK);
    assert_int_equal(rs_async_input_stream_read(c->stream, &c->buf, next), RS_OK);
    rs_future_release(next);
}

static void async_loop_callbacks_chain_reads(void **state) {
    rs_event_loop_options_t lo;
    chain_t c;
    rs_future_t *f = bool_future();
    int ticks = 0;
    (void)state;
    memset(&c, 0, sizeof(c));
    memset(&lo, 0, sizeof(lo));
    lo.allocator = &rs_test_allocator;
    c.loop = rs_event_loop_new(&lo, NULL);
    assert_non_null(c.loop);
    c.stream = rs_async_input_stream_new_from_sync(&rs_test_allocator, new_mem(digits, DIGITS_LEN), NULL);
    assert_non_null(c.stream);
    c.buf = rs_byte_buf_from_array(c.storage, 0, sizeof(c.storage));
    c.buf.capacity = 7; /* three reads: 7, 7, 6 */
    assert_int_equal(rs_future_register_event_loop_callback(f, c.loop, chain_next, &c), RS_OK);
    assert_int_equal(rs_async_input_stream_read(c.stream, &c.buf, f), RS_OK);
    rs_future_release(f);
    while (!c.done && ticks++ < 1000) {
        assert_int_equal(rs_event_loop_run_once(c.loop, 10), RS_OK);
    }
    assert_true(c.done);
    assert_int_equal(c.reads, 3);
    assert_true(c.on_loop);
    assert_int_equal(c.buf.len, DIGITS_LEN);
    assert_memory_equal(c.storage, digits, DIGITS_LEN);
    rs_async_input_stream_destroy(c.stream);
    rs_event_loop_destroy(c.loop);
}

/* ---- async: the gate ----------------------------------------------------- */

/* A stream whose reads stay in flight until the test completes them. */
typedef struct parked {
    rs_async_input_stream_t base;
    int reads; /* atomic: how many reads got through the gate */
} parked_t;

static void parked_read(rs_async_input_stream_t *stream, rs_byte_buf_t *dest) {
    (void)dest;
    __atomic_add_fetch(&((parked_t *)stream->impl)->reads, 1, __ATOMIC_SEQ_CST);
}
static void parked_destroy(rs_async_input_stream_t *stream) {
    (void)stream;
}
static const rs_async_input_stream_vtable_t parked_vtable = {parked_read, parked_destroy};

#define RACE_THREADS 4

typedef struct race {
    parked_t *stream;
    rs_byte_buf_t *buf;
    rs_future_t *future;
    int *go; /* atomic start flag */
    int result;
} race_t;

static void race_read(void *arg) {
    race_t *r = (race_t *)arg;
    while (!__atomic_load_n(r->go, __ATOMIC_ACQUIRE)) {
#if RESEAU_OS_WINDOWS
        SwitchToThread();
#else
        sched_yield(); /* valgrind runs one thread at a time */
#endif
    }
    r->result = rs_async_input_stream_read(&r->stream->base, r->buf, r->future);
}

static void async_racing_reads_give_one_read_and_ebusy(void **state) {
    parked_t p;
    uint8_t storage[RACE_THREADS][4];
    rs_byte_buf_t bufs[RACE_THREADS];
    int round;
    (void)state;
    rs_async_input_stream_init(&p.base, &parked_vtable, &p);
    p.reads = 0;
    for (round = 0; round < 100; ++round) {
        rs_thread_t threads[RACE_THREADS];
        race_t races[RACE_THREADS];
        rs_future_t *futures[RACE_THREADS];
        int go = 0;
        int i;
        int ok = 0;
        int winner = -1;
        for (i = 0; i < RACE_THREADS; ++i) {
            bufs[i] = rs_byte_buf_from_array(storage[i], 0, sizeof(storage[i]));
            futures[i] = bool_future();
            races[i].stream = &p;
            races[i].buf = &bufs[i];
            races[i].future = futures[i];
            races[i].go = &go;
            races[i].result = -1;
            assert_int_equal(rs_thread_launch(&threads[i], race_read, &races[i], NULL), RS_OK);
        }
        __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
        for (i = 0; i < RACE_THREADS; ++i) {
            assert_int_equal(rs_thread_join(&threads[i]), RS_OK);
            if (races[i].result == RS_OK) {
                ok++;
                winner = i;
            } else {
                assert_int_equal(races[i].result, RS_EBUSY);
            }
        }
        assert_int_equal(ok, 1);
        assert_int_equal(__atomic_load_n(&p.reads, __ATOMIC_SEQ_CST), round + 1);
        for (i = 0; i < RACE_THREADS; ++i) {
            assert_false(rs_future_is_done(futures[i]));
        }
        rs_async_input_stream_complete_read(&p.base, RS_OK, false);
        assert_true(rs_future_is_done(futures[winner]));
        for (i = 0; i < RACE_THREADS; ++i) {
            assert_true(rs_future_is_done(futures[i]) == (i == winner));
            rs_future_release(futures[i]);
        }
    }
    rs_async_input_stream_destroy(&p.base);
}

/* ---- async: destroying the adapter --------------------------------------- */

/* A source whose reads block until the test lets each one go. */
typedef struct gated {
    rs_input_stream_t base;
    rs_mutex_t lock;
    rs_condvar_t cond;
    int started;  /* reads entered */
    int released; /* reads allowed to return */
    bool destroyed;
} gated_t;

static int gated_read(rs_input_stream_t *stream, rs_byte_buf_t *dest) {
    gated_t *g = (gated_t *)stream->impl;
    int me;
    rs_mutex_lock(&g->lock);
    me = ++g->started;
    rs_condvar_broadcast(&g->cond);
    while (g->released < me) {
        rs_condvar_wait(&g->cond, &g->lock);
    }
    rs_mutex_unlock(&g->lock);
    dest->buffer[dest->len++] = 'g'; /* one byte: never full, never the end */
    return RS_OK;
}
static int gated_status(rs_input_stream_t *stream, rs_stream_status_t *out) {
    (void)stream;
    out->is_end_of_stream = false;
    out->is_valid = true;
    return RS_OK;
}
static void gated_destroy(rs_input_stream_t *stream) {
    ((gated_t *)stream->impl)->destroyed = true;
}
static const rs_input_stream_vtable_t gated_vtable = {gated_read, fake_seek, gated_status, fake_length, gated_destroy};

static void destroy_adapter(void *arg) {
    rs_async_input_stream_destroy((rs_async_input_stream_t *)arg);
}

/* The adapter is private to the implementation, which tests compile in: peek
 * at its stop flag to know destroy has begun. */
static bool adapter_stopping(rs_async_input_stream_t *stream) {
    rs__sync_adapter_t *a = (rs__sync_adapter_t *)stream->impl;
    bool stop;
    rs_mutex_lock(&a->lock);
    stop = a->stop;
    rs_mutex_unlock(&a->lock);
    return stop;
}

/* Destroy while a read_to_fill runs: the running source read finishes, the
 * next one is never started, and the future completes once, RS_ECANCELED. */
static void async_adapter_destroy_cancels_the_read_not_started(void **state) {
    gated_t g;
    rs_async_input_stream_t *a;
    rs_thread_t destroyer;
    uint8_t storage[8];
    rs_byte_buf_t buf = rs_byte_buf_from_array(storage, 0, sizeof(storage));
    rs_future_t *f = bool_future();
    bool eof;
    (void)state;
    memset(&g, 0, sizeof(g));
    g.base.vtable = &gated_vtable;
    g.base.impl = &g;
    assert_int_equal(rs_mutex_init(&g.lock), RS_OK);
    assert_int_equal(rs_condvar_init(&g.cond), RS_OK);
    a = rs_async_input_stream_new_from_sync(&rs_test_allocator, &g.base, NULL);
    assert_non_null(a);
    assert_int_equal(rs_async_input_stream_read_to_fill(a, &buf, f), RS_OK);
    rs_mutex_lock(&g.lock);
    while (g.started == 0) {
        rs_condvar_wait(&g.cond, &g.lock);
    }
    rs_mutex_unlock(&g.lock);
    assert_int_equal(rs_thread_launch(&destroyer, destroy_adapter, a, NULL), RS_OK);
    while (!adapter_stopping(a)) {
        rs_thread_sleep_ns(RS_NS_PER_MS);
    }
    rs_mutex_lock(&g.lock);
    g.released = 1;
    rs_condvar_broadcast(&g.cond);
    rs_mutex_unlock(&g.lock);
    assert_int_equal(rs_thread_join(&destroyer), RS_OK);
    assert_int_equal(wait_read(f, &eof), RS_ECANCELED);
    assert_int_equal(g.started, 1);
    assert_int_equal(buf.len, 1);
    assert_true(g.destroyed);
    rs_future_release(f);
    rs_condvar_cleanup(&g.cond);
    rs_mutex_cleanup(&g.lock);
}

/* An allocator that counts live blocks, to see when a worker has freed. */
static int live_blocks; /* atomic */
static void *counting_alloc(size_t size, void *ud) {
    (void)ud;
    __atomic_add_fetch(&live_blocks, 1, __ATOMIC_SEQ_CST);
    return rs_test_allocator.alloc_fn(size, NULL);
}
static void counting_free(void *ptr, void *ud) {
    (void)ud;
    rs_test_allocator.free_fn(ptr, NULL);
    __atomic_sub_fetch(&live_blocks, 1, __ATOMIC_SEQ_CST);
}
static const rs_allocator_t counting_allocator = {counting_alloc, NULL, counting_free, NULL};

static void destroy_from_callback(rs_future_t *future, void *user_data) {
    (void)future;
    rs_async_input_stream_destroy((rs_async_input_stream_t *)user_data);
}

/* A loop-less future's callback runs on the worker; destroying the stream
 * there must not join the worker from itself: the worker cleans up. */
static void async_adapter_destroyed_from_its_worker_cleans_up(void **state) {
    rs_async_input_stream_t *a;
    uint8_t storage[4];
    rs_byte_buf_t buf = rs_byte_buf_from_array(storage, 0, sizeof(storage));
    rs_future_t *f = bool_future();
    int spins = 0;
    (void)state;
    live_blocks = 0;
    a = rs_async_input_stream_new_from_sync(&counting_allocator,
                                            rs_input_stream_new_from_memory(&counting_allocator,
                                                                            rs_byte_cursor_from_array(digits, 3), NULL),
                                            NULL);
    assert_non_null(a);
    assert_int_equal(__atomic_load_n(&live_blocks, __ATOMIC_SEQ_CST), 2);
    assert_int_equal(rs_future_register_callback(f, destroy_from_callback, a), RS_OK);
    assert_int_equal(rs_async_input_stream_read(a, &buf, f), RS_OK);
    while (__atomic_load_n(&live_blocks, __ATOMIC_SEQ_CST) != 0 && spins++ < 10000) {
        rs_thread_sleep_ns(RS_NS_PER_MS);
    }
    assert_int_equal(__atomic_load_n(&live_blocks, __ATOMIC_SEQ_CST), 0);
    assert_true(rs_future_get_bool(f));
    assert_int_equal(buf.len, 3);
    rs_future_release(f);
}

/* ---- allocation failures ------------------------------------------------- */

typedef rs_input_stream_t *new_stream_fn(const rs_allocator_t *allocator, const char *path, int *err);

static rs_input_stream_t *new_mem_with(const rs_allocator_t *allocator, const char *path, int *err) {
    (void)path;
    return rs_input_stream_new_from_memory(allocator, rs_byte_cursor_from_array(digits, DIGITS_LEN), err);
}

static rs_input_stream_t *new_file_with(const rs_allocator_t *allocator, const char *path, int *err) {
    return rs_input_stream_new_from_file(allocator, path, err);
}

/* The constructor, and for `async` the adapter on top, with the Nth
 * allocation failing, for N = 1, 2, ... until nothing fails. */
static void sweep_stream(new_stream_fn *make, const char *path, bool async) {
    size_t n;
    for (n = 1; n < 100; ++n) {
        rs_test_failing_alloc_t fa;
        rs_input_stream_t *s;
        rs_async_input_stream_t *a = NULL;
        int err = RS_OK;
        rs_test_failing_alloc_init(&fa, n);
        s = make(&fa.allocator, path, &err);
        if (s && async) {
            a = rs_async_input_stream_new_from_sync(&fa.allocator, s, &err);
            if (!a) {
                rs_input_stream_destroy(s); /* still ours on failure */
            }
        }
        if (a) {
            rs_async_input_stream_destroy(a);
        } else if (s && !async) {
            rs_input_stream_destroy(s);
        }
        if (rs_test_failing_alloc_failures(&fa) == 0) {
            assert_int_equal(err, RS_OK);
            print_message("      sweep converged after %zu allocation(s)\n", n - 1);
            return;
        }
        assert_int_equal(err, RS_ENOMEM);
    }
    fail_msg("the sweep did not converge");
}

static void stream_alloc_sweeps(void **state) {
    char path[256];
    (void)state;
    temp_path(path, sizeof(path), "sweep");
    write_file(path, digits, DIGITS_LEN);
    sweep_stream(new_mem_with, NULL, false);
    sweep_stream(new_file_with, path, false);
    sweep_stream(new_mem_with, NULL, true);
    sweep_stream(new_file_with, path, true);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(memory_reads_at_every_boundary),
        cmocka_unit_test(memory_empty_and_full_destination),
        cmocka_unit_test(memory_seeks_and_seek_past_end),
        cmocka_unit_test(file_reads_at_every_boundary),
        cmocka_unit_test(file_seeks_and_seek_past_end),
        cmocka_unit_test(file_empty_and_missing),
        cmocka_unit_test(file_5gib_sparse_length),
        cmocka_unit_test(user_vtable_is_dispatched),
        cmocka_unit_test(stream_null_handles),
        cmocka_unit_test(async_adapter_reads_on_its_worker),
        cmocka_unit_test(async_read_to_fill_reads_until_full_or_end),
        cmocka_unit_test(async_read_error_completes_the_future_with_it),
        cmocka_unit_test(async_read_rejects_bad_arguments),
        cmocka_unit_test(async_loop_callbacks_chain_reads),
        cmocka_unit_test(async_racing_reads_give_one_read_and_ebusy),
        cmocka_unit_test(async_adapter_destroy_cancels_the_read_not_started),
        cmocka_unit_test(async_adapter_destroyed_from_its_worker_cleans_up),
        cmocka_unit_test(stream_alloc_sweeps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
