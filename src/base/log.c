/*
 * Logging: one process-wide hook behind a mutex, with the level mirrored in an
 * atomic so disabled levels cost one load and no formatting.
 */

/* Longest formatted message; longer ones are truncated, never split. */
#define RS__LOG_MESSAGE_MAX 1024

static rs_mutex_t rs__log_lock = RS_MUTEX_INIT;
static rs_logger_t rs__logger;
static int rs__log_level = (int)RS_LOG_LEVEL_NONE;

RESEAU_API void rs_log_set(const rs_logger_t *logger) {
    rs_mutex_lock(&rs__log_lock);
    if (logger && logger->log_fn) {
        rs__logger = *logger;
    } else {
        memset(&rs__logger, 0, sizeof(rs__logger));
    }
    rs__atomic_store_int(&rs__log_level, (int)rs__logger.level);
    rs_mutex_unlock(&rs__log_lock);
}

RESEAU_API rs_log_level_t rs_log_get_level(void) {
    return (rs_log_level_t)rs__atomic_load_int(&rs__log_level);
}

static inline bool rs__log_enabled(rs_log_level_t level) {
    return level != RS_LOG_LEVEL_NONE && (int)level <= rs__atomic_load_int(&rs__log_level);
}

static void rs__log_write(rs_log_level_t level, rs_log_subject_t subject, const char *format, ...)
    RS__PRINTF(3, 4);

static void rs__log_write(rs_log_level_t level, rs_log_subject_t subject, const char *format, ...) {
    char message[RS__LOG_MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof(message), format, args);
    va_end(args);
    /* The hook runs under the lock: lines never interleave, and the hook cannot
     * be swapped out mid-call. A hook must therefore not call rs_log_set. */
    rs_mutex_lock(&rs__log_lock);
    if (rs__logger.log_fn && (int)level <= (int)rs__logger.level) {
        rs__logger.log_fn(level, subject, message, rs__logger.user_data);
    }
    rs_mutex_unlock(&rs__log_lock);
}

RESEAU_API void rs_log_printf(rs_log_level_t level, rs_log_subject_t subject, const char *format, ...) {
    char message[RS__LOG_MESSAGE_MAX];
    va_list args;
    if (!format || !rs__log_enabled(level)) {
        return;
    }
    va_start(args, format);
    vsnprintf(message, sizeof(message), format, args);
    va_end(args);
    rs__log_write(level, subject, "%s", message);
}

#define RS__LOG(level, subject, ...)                       \
    do {                                                   \
        if (rs__log_enabled(level)) {                      \
            rs__log_write((level), (subject), __VA_ARGS__); \
        }                                                  \
    } while (0)
#define RS__LOG_ERROR(subject, ...) RS__LOG(RS_LOG_LEVEL_ERROR, subject, __VA_ARGS__)
#define RS__LOG_WARN(subject, ...) RS__LOG(RS_LOG_LEVEL_WARN, subject, __VA_ARGS__)
#define RS__LOG_INFO(subject, ...) RS__LOG(RS_LOG_LEVEL_INFO, subject, __VA_ARGS__)
#define RS__LOG_DEBUG(subject, ...) RS__LOG(RS_LOG_LEVEL_DEBUG, subject, __VA_ARGS__)
#define RS__LOG_TRACE(subject, ...) RS__LOG(RS_LOG_LEVEL_TRACE, subject, __VA_ARGS__)

RESEAU_API const char *rs_log_level_name(rs_log_level_t level) {
    static const char *const names[] = {"NONE", "FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
    if (!rs__enum_in_range((int)level, 0, (int)(sizeof(names) / sizeof(names[0])) - 1)) {
        return "UNKNOWN";
    }
    return names[level];
}

RESEAU_API const char *rs_log_subject_name(rs_log_subject_t subject) {
#define RS__LOG_SUBJECT_NAME_ITEM(name, text) text,
    static const char *const names[] = {RS__LOG_SUBJECT_TABLE(RS__LOG_SUBJECT_NAME_ITEM)};
#undef RS__LOG_SUBJECT_NAME_ITEM
    if (!rs__enum_in_range((int)subject, 0, (int)(sizeof(names) / sizeof(names[0])) - 1)) {
        return "unknown";
    }
    return names[subject];
}

RESEAU_API void rs_log_stderr(rs_log_level_t level, rs_log_subject_t subject, const char *message, void *user_data) {
    (void)user_data;
    fprintf(stderr, "[reseau] [%-5s] [%s] %s\n", rs_log_level_name(level), rs_log_subject_name(subject), message);
}
