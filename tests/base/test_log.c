/* Logging: silence by default, the hook, level filtering, names, stderr, threads.
 * Messages are produced with the implementation's private RS__LOG macro, which
 * is what every reseau subsystem uses. */
#include "test_util.h"

#include <unistd.h>

#define CAPTURE_MAX 16
#define CAPTURE_MESSAGE_MAX 128

typedef struct capture {
    size_t count;
    rs_log_level_t levels[CAPTURE_MAX];
    rs_log_subject_t subjects[CAPTURE_MAX];
    char messages[CAPTURE_MAX][CAPTURE_MESSAGE_MAX];
    void *user_data;
} capture_t;

static void capture_fn(rs_log_level_t level, rs_log_subject_t subject, const char *message, void *user_data) {
    capture_t *c = (capture_t *)user_data;
    if (c->count < CAPTURE_MAX) {
        c->levels[c->count] = level;
        c->subjects[c->count] = subject;
        snprintf(c->messages[c->count], CAPTURE_MESSAGE_MAX, "%s", message);
    }
    c->user_data = user_data;
    ++c->count;
}

static void install_capture(capture_t *c, rs_log_level_t level) {
    rs_logger_t logger = {.level = level, .log_fn = capture_fn, .user_data = c};
    memset(c, 0, sizeof(*c));
    rs_log_set(&logger);
}

/* Each test leaves the process silent again, even when it fails. */
static int restore_silence(void **state) {
    (void)state;
    rs_log_set(NULL);
    return 0;
}

static void log_is_silent_by_default(void **state) {
    (void)state;
    assert_int_equal(rs_log_get_level(), RS_LOG_LEVEL_NONE);
    /* Logging with no hook installed is harmless. */
    RS__LOG(RS_LOG_LEVEL_FATAL, RS_LS_GENERAL, "nobody hears this %d", 1);
    assert_int_equal(rs_log_get_level(), RS_LOG_LEVEL_NONE);
}

static void log_hook_with_level_none_is_never_called(void **state) {
    capture_t c;
    (void)state;
    install_capture(&c, RS_LOG_LEVEL_NONE);
    assert_int_equal(rs_log_get_level(), RS_LOG_LEVEL_NONE);
    RS__LOG(RS_LOG_LEVEL_FATAL, RS_LS_GENERAL, "fatal %d", 1);
    RS__LOG_ERROR(RS_LS_SOCKET, "error %d", 2);
    RS__LOG_TRACE(RS_LS_TLS, "trace %d", 3);
    assert_int_equal(c.count, 0);
}

static void log_hook_receives_level_subject_message_and_user_data(void **state) {
    capture_t c;
    (void)state;
    install_capture(&c, RS_LOG_LEVEL_TRACE);
    assert_int_equal(rs_log_get_level(), RS_LOG_LEVEL_TRACE);
    RS__LOG_INFO(RS_LS_EVENT_LOOP, "loop %s has %d tasks", "alpha", 42);
    assert_int_equal(c.count, 1);
    assert_int_equal(c.levels[0], RS_LOG_LEVEL_INFO);
    assert_int_equal(c.subjects[0], RS_LS_EVENT_LOOP);
    assert_string_equal(c.messages[0], "loop alpha has 42 tasks");
    assert_ptr_equal(c.user_data, &c);
}

static void log_level_filters_more_verbose_messages(void **state) {
    capture_t c;
    (void)state;
    install_capture(&c, RS_LOG_LEVEL_WARN);
    assert_int_equal(rs_log_get_level(), RS_LOG_LEVEL_WARN);
    RS__LOG_INFO(RS_LS_GENERAL, "info %d", 1);
    RS__LOG_DEBUG(RS_LS_GENERAL, "debug %d", 2);
    RS__LOG_TRACE(RS_LS_GENERAL, "trace %d", 3);
    assert_int_equal(c.count, 0);
    RS__LOG_WARN(RS_LS_DNS, "warn %d", 4);
    RS__LOG_ERROR(RS_LS_CHANNEL, "error %d", 5);
    RS__LOG(RS_LOG_LEVEL_FATAL, RS_LS_THREAD, "fatal %d", 6);
    assert_int_equal(c.count, 3);
    assert_int_equal(c.levels[0], RS_LOG_LEVEL_WARN);
    assert_int_equal(c.subjects[0], RS_LS_DNS);
    assert_string_equal(c.messages[0], "warn 4");
    assert_int_equal(c.levels[1], RS_LOG_LEVEL_ERROR);
    assert_int_equal(c.subjects[1], RS_LS_CHANNEL);
    assert_string_equal(c.messages[1], "error 5");
    assert_int_equal(c.levels[2], RS_LOG_LEVEL_FATAL);
    assert_int_equal(c.subjects[2], RS_LS_THREAD);
    assert_string_equal(c.messages[2], "fatal 6");
}

static void log_set_null_restores_silence(void **state) {
    capture_t c;
    (void)state;
    install_capture(&c, RS_LOG_LEVEL_TRACE);
    RS__LOG_ERROR(RS_LS_GENERAL, "before %d", 1);
    assert_int_equal(c.count, 1);
    rs_log_set(NULL);
    assert_int_equal(rs_log_get_level(), RS_LOG_LEVEL_NONE);
    RS__LOG_ERROR(RS_LS_GENERAL, "after %d", 2);
    RS__LOG(RS_LOG_LEVEL_FATAL, RS_LS_GENERAL, "after %d", 3);
    assert_int_equal(c.count, 1);
}

static void log_logger_without_fn_is_silent(void **state) {
    rs_logger_t logger = {.level = RS_LOG_LEVEL_TRACE, .log_fn = NULL, .user_data = NULL};
    (void)state;
    rs_log_set(&logger);
    assert_int_equal(rs_log_get_level(), RS_LOG_LEVEL_NONE);
    RS__LOG_ERROR(RS_LS_GENERAL, "goes nowhere %d", 1);
}

static void log_set_copies_the_logger(void **state) {
    capture_t c;
    rs_logger_t logger = {.level = RS_LOG_LEVEL_ERROR, .log_fn = capture_fn, .user_data = &c};
    (void)state;
    memset(&c, 0, sizeof(c));
    rs_log_set(&logger);
    /* Changing or dropping the caller's struct afterwards changes nothing. */
    logger.level = RS_LOG_LEVEL_NONE;
    logger.log_fn = NULL;
    assert_int_equal(rs_log_get_level(), RS_LOG_LEVEL_ERROR);
    RS__LOG_ERROR(RS_LS_GENERAL, "still %s", "delivered");
    assert_int_equal(c.count, 1);
    assert_string_equal(c.messages[0], "still delivered");
}

static void log_replacing_the_logger_switches_hook_and_level(void **state) {
    capture_t first;
    capture_t second;
    (void)state;
    install_capture(&first, RS_LOG_LEVEL_TRACE);
    RS__LOG_DEBUG(RS_LS_GENERAL, "one %d", 1);
    install_capture(&second, RS_LOG_LEVEL_ERROR);
    assert_int_equal(rs_log_get_level(), RS_LOG_LEVEL_ERROR);
    RS__LOG_DEBUG(RS_LS_GENERAL, "two %d", 2);
    RS__LOG_ERROR(RS_LS_GENERAL, "three %d", 3);
    assert_int_equal(first.count, 1);
    assert_int_equal(second.count, 1);
    assert_string_equal(second.messages[0], "three 3");
}

typedef struct long_capture {
    size_t count;
    size_t len;
    bool prefix_ok;
} long_capture_t;

static void long_capture_fn(rs_log_level_t level, rs_log_subject_t subject, const char *message, void *user_data) {
    long_capture_t *c = (long_capture_t *)user_data;
    size_t i;
    (void)level;
    (void)subject;
    ++c->count;
    c->len = strlen(message);
    c->prefix_ok = true;
    for (i = 0; i < c->len; ++i) {
        if (message[i] != (char)('a' + i % 26)) {
            c->prefix_ok = false;
        }
    }
}

static void log_long_message_is_truncated_in_one_call(void **state) {
    enum { LONG_LEN = 5000 };
    char *text = (char *)test_malloc(LONG_LEN + 1);
    long_capture_t c = {0, 0, false};
    rs_logger_t logger = {.level = RS_LOG_LEVEL_INFO, .log_fn = long_capture_fn, .user_data = &c};
    size_t i;
    (void)state;
    for (i = 0; i < LONG_LEN; ++i) {
        text[i] = (char)('a' + i % 26);
    }
    text[LONG_LEN] = '\0';
    rs_log_set(&logger);
    RS__LOG_INFO(RS_LS_GENERAL, "%s", text);
    rs_log_set(NULL);
    test_free(text);
    assert_int_equal(c.count, 1);
    assert_true(c.len > 0);
    assert_true(c.len <= LONG_LEN);
    assert_true(c.prefix_ok);
}

static void log_level_names_are_distinct_and_unknown_is_handled(void **state) {
    rs_log_level_t level;
    rs_log_level_t other;
    (void)state;
    for (level = RS_LOG_LEVEL_NONE; level <= RS_LOG_LEVEL_TRACE; level = (rs_log_level_t)(level + 1)) {
        const char *name = rs_log_level_name(level);
        assert_non_null(name);
        assert_true(strlen(name) > 0);
        for (other = RS_LOG_LEVEL_NONE; other < level; other = (rs_log_level_t)(other + 1)) {
            assert_string_not_equal(name, rs_log_level_name(other));
        }
    }
    assert_string_equal(rs_log_level_name(RS_LOG_LEVEL_ERROR), "ERROR");
    assert_string_equal(rs_log_level_name(RS_LOG_LEVEL_WARN), "WARN");
    assert_string_equal(rs_log_level_name(RS_LOG_LEVEL_TRACE), "TRACE");
    assert_non_null(rs_log_level_name((rs_log_level_t)99));
    assert_true(strlen(rs_log_level_name((rs_log_level_t)99)) > 0);
    assert_non_null(rs_log_level_name((rs_log_level_t)-1));
}

static void log_subject_names_match_the_table(void **state) {
#define SUBJECT_ENTRY(name, text) {name, text},
    static const struct {
        rs_log_subject_t subject;
        const char *text;
    } subjects[] = {RS__LOG_SUBJECT_TABLE(SUBJECT_ENTRY)};
#undef SUBJECT_ENTRY
    size_t i;
    size_t j;
    (void)state;
    assert_int_equal(sizeof(subjects) / sizeof(subjects[0]), RS_LS_COUNT);
    for (i = 0; i < sizeof(subjects) / sizeof(subjects[0]); ++i) {
        assert_string_equal(rs_log_subject_name(subjects[i].subject), subjects[i].text);
        for (j = 0; j < i; ++j) {
            assert_string_not_equal(subjects[i].text, subjects[j].text);
        }
    }
    assert_non_null(rs_log_subject_name(RS_LS_COUNT));
    assert_true(strlen(rs_log_subject_name(RS_LS_COUNT)) > 0);
    assert_non_null(rs_log_subject_name((rs_log_subject_t)-1));
}

/* The C runtime's pipe on Windows (binary, so nothing is translated on the
 * way); its buffer is far larger than one log line. */
static int make_pipe(int fds[2]) {
#if RESEAU_OS_WINDOWS
    return _pipe(fds, 4096, _O_BINARY);
#else
    return pipe(fds);
#endif
}

/* Runs `fn` with fd 2 redirected into a pipe and returns what it wrote. */
static void capture_stderr(void (*fn)(void), char *out, size_t out_size) {
    int fds[2];
    int saved;
    size_t used = 0;
    ssize_t n;
    fflush(stderr);
    saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(make_pipe(fds), 0);
    assert_true(dup2(fds[1], 2) >= 0);
    close(fds[1]);
    fn();
    fflush(stderr);
    assert_true(dup2(saved, 2) >= 0);
    close(saved);
    while (used + 1 < out_size && (n = read(fds[0], out + used, out_size - 1 - used)) > 0) {
        used += (size_t)n;
    }
    out[used] = '\0';
    close(fds[0]);
}

static void call_log_stderr(void) {
    rs_log_stderr(RS_LOG_LEVEL_ERROR, RS_LS_SOCKET, "connection to test-peer failed", NULL);
}

static void log_stderr_writes_one_line_with_level_and_subject(void **state) {
    char out[512];
    (void)state;
    capture_stderr(call_log_stderr, out, sizeof(out));
    assert_non_null(strstr(out, "connection to test-peer failed"));
    assert_non_null(strstr(out, "ERROR"));
    assert_non_null(strstr(out, "socket"));
    assert_true(strlen(out) > 0);
    assert_int_equal(out[strlen(out) - 1], '\n');
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
}

static void log_through_stderr_hook(void) {
    rs_logger_t logger = {.level = RS_LOG_LEVEL_WARN, .log_fn = rs_log_stderr, .user_data = NULL};
    rs_log_set(&logger);
    RS__LOG_WARN(RS_LS_BOOTSTRAP, "retrying in %d ms", 250);
    RS__LOG_INFO(RS_LS_BOOTSTRAP, "filtered out %d", 1);
    rs_log_set(NULL);
}

static void log_stderr_hook_prints_only_enabled_levels(void **state) {
    char out[512];
    (void)state;
    capture_stderr(log_through_stderr_hook, out, sizeof(out));
    assert_non_null(strstr(out, "retrying in 250 ms"));
    assert_non_null(strstr(out, "WARN"));
    assert_non_null(strstr(out, "bootstrap"));
    assert_null(strstr(out, "filtered out"));
}

/* Concurrency: every thread's messages arrive complete and in that thread's order,
 * and the hook is never entered by two threads at once. */
#define LOG_THREADS 4
#define LOG_MESSAGES_PER_THREAD 1000
#define LOG_PAYLOAD "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

typedef struct concurrent_capture {
    int in_flight;
    int overlaps;
    int corrupt;
    int out_of_order;
    int total;
    int next[LOG_THREADS]; /* written only from thread i's own hook calls */
    rs_mutex_t gate_lock;
    rs_condvar_t gate;
    bool go;
} concurrent_capture_t;

typedef struct log_worker {
    concurrent_capture_t *capture;
    int index;
} log_worker_t;

static void concurrent_fn(rs_log_level_t level, rs_log_subject_t subject, const char *message, void *user_data) {
    concurrent_capture_t *c = (concurrent_capture_t *)user_data;
    int thread_index = -1;
    int message_index = -1;
    char payload[128];
    if (__atomic_add_fetch(&c->in_flight, 1, __ATOMIC_SEQ_CST) != 1) {
        __atomic_add_fetch(&c->overlaps, 1, __ATOMIC_SEQ_CST);
    }
    payload[0] = '\0';
    if (level != RS_LOG_LEVEL_INFO || subject != RS_LS_UTIL ||
        sscanf(message, "thread %d message %d %127s", &thread_index, &message_index, payload) != 3 ||
        thread_index < 0 || thread_index >= LOG_THREADS || strcmp(payload, LOG_PAYLOAD) != 0) {
        __atomic_add_fetch(&c->corrupt, 1, __ATOMIC_SEQ_CST);
    } else {
        if (c->next[thread_index] != message_index) {
            __atomic_add_fetch(&c->out_of_order, 1, __ATOMIC_SEQ_CST);
        }
        c->next[thread_index] = message_index + 1;
    }
    __atomic_add_fetch(&c->total, 1, __ATOMIC_SEQ_CST);
    __atomic_sub_fetch(&c->in_flight, 1, __ATOMIC_SEQ_CST);
}

static void log_worker_main(void *user_data) {
    log_worker_t *w = (log_worker_t *)user_data;
    concurrent_capture_t *c = w->capture;
    int i;
    rs_mutex_lock(&c->gate_lock);
    while (!c->go) {
        rs_condvar_wait(&c->gate, &c->gate_lock);
    }
    rs_mutex_unlock(&c->gate_lock);
    for (i = 0; i < LOG_MESSAGES_PER_THREAD; ++i) {
        RS__LOG_INFO(RS_LS_UTIL, "thread %d message %d %s", w->index, i, LOG_PAYLOAD);
    }
}

static void log_concurrent_threads_deliver_every_message_intact(void **state) {
    concurrent_capture_t c;
    log_worker_t workers[LOG_THREADS];
    rs_thread_t threads[LOG_THREADS];
    rs_logger_t logger;
    int i;
    (void)state;
    memset(&c, 0, sizeof(c));
    assert_int_equal(rs_mutex_init(&c.gate_lock), RS_OK);
    assert_int_equal(rs_condvar_init(&c.gate), RS_OK);
    logger.level = RS_LOG_LEVEL_INFO;
    logger.log_fn = concurrent_fn;
    logger.user_data = &c;
    rs_log_set(&logger);
    for (i = 0; i < LOG_THREADS; ++i) {
        workers[i].capture = &c;
        workers[i].index = i;
        assert_int_equal(rs_thread_launch(&threads[i], log_worker_main, &workers[i], NULL), RS_OK);
    }
    rs_mutex_lock(&c.gate_lock);
    c.go = true;
    rs_condvar_broadcast(&c.gate);
    rs_mutex_unlock(&c.gate_lock);
    for (i = 0; i < LOG_THREADS; ++i) {
        assert_int_equal(rs_thread_join(&threads[i]), RS_OK);
    }
    rs_log_set(NULL);
    rs_condvar_cleanup(&c.gate);
    rs_mutex_cleanup(&c.gate_lock);

    assert_int_equal(c.total, LOG_THREADS * LOG_MESSAGES_PER_THREAD);
    assert_int_equal(c.corrupt, 0);
    assert_int_equal(c.out_of_order, 0);
    assert_int_equal(c.overlaps, 0);
    for (i = 0; i < LOG_THREADS; ++i) {
        assert_int_equal(c.next[i], LOG_MESSAGES_PER_THREAD);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        /* Must run first: it checks the process-wide default. */
        cmocka_unit_test_teardown(log_is_silent_by_default, restore_silence),
        cmocka_unit_test_teardown(log_hook_with_level_none_is_never_called, restore_silence),
        cmocka_unit_test_teardown(log_hook_receives_level_subject_message_and_user_data, restore_silence),
        cmocka_unit_test_teardown(log_level_filters_more_verbose_messages, restore_silence),
        cmocka_unit_test_teardown(log_set_null_restores_silence, restore_silence),
        cmocka_unit_test_teardown(log_logger_without_fn_is_silent, restore_silence),
        cmocka_unit_test_teardown(log_set_copies_the_logger, restore_silence),
        cmocka_unit_test_teardown(log_replacing_the_logger_switches_hook_and_level, restore_silence),
        cmocka_unit_test_teardown(log_long_message_is_truncated_in_one_call, restore_silence),
        cmocka_unit_test(log_level_names_are_distinct_and_unknown_is_handled),
        cmocka_unit_test(log_subject_names_match_the_table),
        cmocka_unit_test_teardown(log_stderr_writes_one_line_with_level_and_subject, restore_silence),
        cmocka_unit_test_teardown(log_stderr_hook_prints_only_enabled_levels, restore_silence),
        cmocka_unit_test_teardown(log_concurrent_threads_deliver_every_message_intact, restore_silence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
