/*
 * Logging.
 *
 * One process-wide hook, silent by default. rs_log_set() copies the logger and
 * may be called from any thread; the hook is called from whichever thread logs
 * (usually a loop thread), one call at a time. Hot paths check the level before
 * formatting anything, so a disabled level costs one atomic load.
 */
typedef enum rs_log_level {
    RS_LOG_LEVEL_NONE = 0,
    RS_LOG_LEVEL_FATAL = 1,
    RS_LOG_LEVEL_ERROR = 2,
    RS_LOG_LEVEL_WARN = 3,
    RS_LOG_LEVEL_INFO = 4,
    RS_LOG_LEVEL_DEBUG = 5,
    RS_LOG_LEVEL_TRACE = 6
} rs_log_level_t;

#define RS__LOG_SUBJECT_TABLE(X)                                                                  \
    X(RS_LS_GENERAL, "general")                                                                   \
    X(RS_LS_THREAD, "thread")                                                                     \
    X(RS_LS_TASK, "task")                                                                         \
    X(RS_LS_EVENT_LOOP, "event-loop")                                                             \
    X(RS_LS_SOCKET, "socket")                                                                     \
    X(RS_LS_CHANNEL, "channel")                                                                   \
    X(RS_LS_DNS, "dns")                                                                           \
    X(RS_LS_BOOTSTRAP, "bootstrap")                                                               \
    X(RS_LS_UTIL, "util")                                                                         \
    X(RS_LS_TLS, "tls")

#define RS__LOG_SUBJECT_ENUM_ITEM(name, text) name,
typedef enum rs_log_subject { RS__LOG_SUBJECT_TABLE(RS__LOG_SUBJECT_ENUM_ITEM) RS_LS_COUNT } rs_log_subject_t;
#undef RS__LOG_SUBJECT_ENUM_ITEM

/* message is NUL-terminated, without a trailing newline, valid only during the call.
 * Calls are serialized under a lock: the hook must not call rs_log_set or any
 * reseau function that may log, or it deadlocks. */
typedef void rs_log_fn(rs_log_level_t level, rs_log_subject_t subject, const char *message, void *user_data);

typedef struct rs_logger {
    rs_log_level_t level; /* most verbose level passed to log_fn (default: NONE, silent) */
    rs_log_fn *log_fn;    /* (default: NULL, silent) */
    void *user_data;      /* passed to log_fn (default: NULL) */
} rs_logger_t;

/* Install the process-wide logger (copied). NULL restores silence. Any thread. */
RESEAU_API void rs_log_set(const rs_logger_t *logger);

/* The current level; RS_LOG_LEVEL_NONE when silent. Any thread. */
RESEAU_API rs_log_level_t rs_log_get_level(void);

/* A ready-made log_fn: one line per message on stderr, with level and subject. */
RESEAU_API void rs_log_stderr(rs_log_level_t level, rs_log_subject_t subject, const char *message, void *user_data);

RESEAU_API const char *rs_log_level_name(rs_log_level_t level);
/* Log one printf-style message through the installed hook, if `level` is
 * enabled (for add-ons such as reseau_tls.h, and for applications that want
 * their lines in the same stream). Any thread; the hook rules above apply. */
RESEAU_API void rs_log_printf(rs_log_level_t level, rs_log_subject_t subject, const char *format, ...)
    RS__PRINTF(3, 4);
RESEAU_API const char *rs_log_subject_name(rs_log_subject_t subject);
