/*
 * Signal watchers: a callback on a loop's thread when a signal arrives, so a
 * server can stop cleanly on SIGINT or SIGTERM (Windows: Ctrl+C or
 * Ctrl+Break), or reload on SIGHUP, without writing a signal handler.
 *
 * Ownership: rs_signal_watcher_new allocates the watcher with the loop's
 * allocator; rs_signal_watcher_destroy frees it. A watcher still alive when
 * its loop is destroyed is destroyed with the loop: its pointer is then
 * invalid.
 *
 * Threads: new and destroy run on the loop's thread (before the loop first
 * runs, the thread that created it); elsewhere they return RS_EWRONGTHREAD.
 * The callback runs on the loop's thread, never inside the signal handler
 * (Windows: the console control handler) and never inside
 * rs_signal_watcher_new.
 *
 * Delivery: every watcher of a signal fires, whichever loop it is on. Signals
 * that arrive before the loop gets to them are coalesced: the callback gets
 * how many it saw (at least 1), and the OS itself merges repeats of a standard
 * signal that is already pending, so count is a lower bound, never a tally.
 *
 * How (Linux): signalfd. A signalfd only receives a signal that no thread
 * takes first, so the signal must be blocked in every thread of the process:
 *   - rs_signal_watcher_new blocks it (pthread_sigmask) in the calling thread;
 *   - threads started later inherit the mask of the thread starting them, and
 *     threads reseau starts (loops, groups, resolver workers) are born with
 *     every watched signal blocked;
 *   - threads of yours that already run must block it themselves, or it may
 *     be delivered to them with its old disposition (SIGINT: the process
 *     ends). Simplest: create the watchers, or block the signals with
 *     pthread_sigmask, in main() before starting any thread, group included.
 *   - a signal sent to one thread (raise, pthread_kill) reaches the watchers
 *     only if that thread runs a loop with a watcher; send to the process
 *     (kill(getpid(), sig)) instead.
 * When the last watcher of a signal goes, it is unblocked again in the calling
 * thread if rs_signal_watcher_new had blocked it there (a pending one is then
 * delivered with the old disposition), and new threads no longer block it.
 *
 * How (elsewhere, or Linux built with RESEAU_NO_SIGNALFD): a sigaction handler
 * that writes to a self-pipe (async-signal-safe); the previous disposition is
 * restored when the last watcher of the signal goes. The signal must be
 * unblocked in at least one thread. The pipe stays open for the life of the
 * process, because a handler may still be running on another thread then.
 *
 * Signals are process-wide: two parts of a program that both change a
 * signal's disposition (or two copies of reseau built with RESEAU_STATIC)
 * step on each other.
 *
 * How (Windows): console control events, through one handler installed
 * with SetConsoleCtrlHandler, as libuv does. Only two are signals here:
 *   SIGINT   <- CTRL_C_EVENT (Ctrl+C, or GenerateConsoleCtrlEvent);
 *   SIGBREAK <- CTRL_BREAK_EVENT (Ctrl+Break, or GenerateConsoleCtrlEvent).
 * The OS calls the handler on a thread of its own; the handler only counts
 * the arrival and wakes the watchers' loops, and tells the OS the event was
 * handled only when some watcher took it: otherwise the next handler runs,
 * in the end the OS's own, which ends the process as if no watcher existed.
 * SIGTERM (and SIGABRT) give RS_ENOTSUP: no other process can send them, and
 * the console's close, logoff and shutdown events end the process as soon
 * as their handler returns, so a callback on a loop could not promise to
 * run first; they are passed on untouched. Events reach only a process
 * attached to a console (one started without DETACHED_PROCESS, or after
 * AllocConsole), and CTRL_C_EVENT only one that does not ignore Ctrl+C:
 * CREATE_NEW_PROCESS_GROUP, or SetConsoleCtrlHandler(NULL, TRUE), makes a
 * process ignore it, which watchers do not undo; Ctrl+Break still arrives.
 * The handler stays installed for the life of the process, passing every
 * event on when no watcher is left (removing it would wait for a handler
 * already running). Under Wine 8 only CTRL_C_EVENT can be generated (its
 * GenerateConsoleCtrlEvent refuses CTRL_BREAK_EVENT), and a SIGINT sent to
 * the Wine process from Linux arrives as CTRL_C_EVENT.
 */
typedef struct rs_signal_watcher rs_signal_watcher_t;

/* `count`: arrivals seen since the last call, at least 1. Loop thread. */
typedef void rs_signal_watcher_fn(rs_signal_watcher_t *watcher, int signum, uint32_t count, void *user_data);

/* Watch `signum` on `loop`; *watcher_out is set on RS_OK and NULL otherwise.
 * Errors: RS_EINVAL for a NULL loop, on_signal or watcher_out, or a signum
 * that cannot be watched (POSIX: 0, negative, NSIG or above, SIGKILL,
 * SIGSTOP, the fault signals SIGSEGV/SIGBUS/SIGFPE/SIGILL, and the real-time
 * signals the C library keeps for itself; Windows: anything but SIGINT,
 * SIGBREAK, SIGTERM and SIGABRT); RS_ENOTSUP on Windows for SIGTERM and
 * SIGABRT, and without an OS (RESEAU_OS_NONE) for every signum from 1 to
 * NSIG - 1 (65 where there is no NSIG); RS_EWRONGTHREAD off the loop's thread; RS_ENOMEM; or the OS error
 * (RS_EMFILE, ...) from signalfd, pipe, sigaction or the loop's subscription
 * (Windows: from SetConsoleCtrlHandler). Loop thread. */
RESEAU_API int rs_signal_watcher_new(rs_event_loop_t *loop, int signum, rs_signal_watcher_fn *on_signal,
                                     void *user_data, rs_signal_watcher_t **watcher_out);
/* Stop watching and free the watcher; arrivals not yet delivered are dropped.
 * Safe inside the watcher's own callback. RS_OK; RS_EINVAL for a NULL
 * watcher; RS_EWRONGTHREAD off its loop's thread (nothing is done). */
RESEAU_API int rs_signal_watcher_destroy(rs_signal_watcher_t *watcher);
/* The watched signal; 0 for a NULL watcher. Any thread. */
RESEAU_API int rs_signal_watcher_get_signum(const rs_signal_watcher_t *watcher);
