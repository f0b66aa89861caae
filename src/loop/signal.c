/*
 * Signal watchers.
 *
 * Signals are process-wide and loops are not, so there are three parts:
 *   - a registry (one mutex) of every watcher, whatever its loop;
 *   - one OS source shared by all loops (rs__signal_source_*):
 *       POSIX: a signalfd on Linux, a self-pipe fed by a sigaction handler
 *       elsewhere (RS__HAVE_SIGNALFD, in platform.c); each port subscribes
 *       its fd, and whichever loop reads an arrival first fans it out;
 *       Windows: a console control handler, which the OS calls on a thread
 *       of its own for each event, and which fans the event out itself;
 *   - a port per loop with watchers (a loop-local object, so loop destroy
 *     sweeps it).
 * Fanning out bumps each watcher's pending count and sends its
 * rs_event_loop_async_t, so each watcher fires on its own loop.
 */

/* One past the highest signal number; NSIG is not POSIX but every target has it. */
#ifdef NSIG
#define RS__SIGNAL_LIMIT NSIG
#else
#define RS__SIGNAL_LIMIT 65
#endif

typedef struct rs__signal_port rs__signal_port_t;

struct rs_signal_watcher {
    rs_event_loop_t *loop;
    rs__signal_port_t *port;
    int signum;
    rs_signal_watcher_fn *fn;
    void *user_data;
    rs_event_loop_async_t async;
    int pending;         /* atomic: arrivals not yet delivered */
    rs_list_node_t node; /* in the registry, under its lock */
};

/* One per loop with watchers, stored as a loop-local object. */
struct rs__signal_port {
    rs_event_loop_t *loop;
#if RESEAU_OS_POSIX
    rs_io_handle_t io; /* the shared source fd */
#endif
    size_t watchers; /* loop thread only */
};

typedef struct rs__signal_registry {
    bool ready;                          /* `watchers` is initialised */
    rs_list_t watchers;                  /* every live watcher */
    int watch_count[RS__SIGNAL_LIMIT];   /* watchers per signal */
#if RESEAU_OS_POSIX
    size_t ports;                        /* loops subscribed to fd */
    int fd;                              /* the source, while ports > 0 */
#if RS__HAVE_SIGNALFD
    sigset_t mask;                       /* what the signalfd takes */
    bool unblock[RS__SIGNAL_LIMIT];      /* the first watcher blocked it in its thread */
#else
    struct sigaction previous[RS__SIGNAL_LIMIT];
#endif
#endif
} rs__signal_registry_t;

static rs_mutex_t rs__signal_lock = RS_MUTEX_INIT; /* guards rs__signals */
static rs__signal_registry_t rs__signals;

static const char rs__signal_port_key = 0; /* its address keys the loop-local port */

static int rs__signal_fan_out(int signum, int arrivals);

/* Registry lock held. */
static void rs__signal_registry_init(void) {
    if (!rs__signals.ready) {
        rs_list_init(&rs__signals.watchers);
        rs__signals.ready = true;
    }
}

#if RESEAU_OS_POSIX

/* ---- the OS source: signalfd ---- */
#if RS__HAVE_SIGNALFD

static int rs__signal_source_open(int *fd_out) {
    sigemptyset(&rs__signals.mask);
    *fd_out = signalfd(-1, &rs__signals.mask, SFD_NONBLOCK | SFD_CLOEXEC);
    return *fd_out < 0 ? rs_result_from_errno(errno) : RS_OK;
}

static void rs__signal_source_close(int fd) {
    close(fd);
}

static int rs__signal_block_here(int signum, int how, sigset_t *old) {
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signum);
    return rs_result_from_errno(pthread_sigmask(how, &one, old));
}

/* Every watcher blocks the signal in its creator's thread; the first also
 * adds it to the signalfd and to the mask of threads reseau starts. */
static int rs__signal_source_watch(int signum, bool first) {
    sigset_t old;
    int err = rs__signal_block_here(signum, SIG_BLOCK, &old);
    if (err || !first) {
        return err;
    }
    rs__signals.unblock[signum] = !sigismember(&old, signum);
    sigaddset(&rs__signals.mask, signum);
    if (signalfd(rs__signals.fd, &rs__signals.mask, 0) < 0) {
        err = rs_result_from_errno(errno);
        sigdelset(&rs__signals.mask, signum);
        if (rs__signals.unblock[signum]) {
            rs__signal_block_here(signum, SIG_UNBLOCK, NULL);
        }
        return err;
    }
    rs__thread_block_in_new_threads(signum, true);
    return RS_OK;
}

static void rs__signal_source_unwatch(int signum) {
    sigdelset(&rs__signals.mask, signum);
    signalfd(rs__signals.fd, &rs__signals.mask, 0);
    rs__thread_block_in_new_threads(signum, false);
    if (rs__signals.unblock[signum]) {
        rs__signal_block_here(signum, SIG_UNBLOCK, NULL);
    }
}

static void rs__signal_source_drain(int fd) {
    struct signalfd_siginfo info[8];
    ssize_t n;
    while ((n = read(fd, info, sizeof(info))) > 0) {
        size_t i;
        for (i = 0; i < (size_t)n / sizeof(info[0]); ++i) {
            rs__signal_fan_out((int)info[i].ssi_signo, 1);
        }
    }
}

/* ---- the OS source: self-pipe ---- */
#else

/* Never closed: a handler may still run on another thread after the last
 * watcher restored the disposition, and must not write to a reused fd. */
static int rs__signal_pipe[2] = {-1, -1};
static int rs__signal_caught[RS__SIGNAL_LIMIT]; /* atomic: bumped by the handler */

/* Async-signal-safe: an atomic add and a write, errno preserved. */
static void rs__signal_handler(int signum) {
    int saved = errno;
    char byte = 0;
    rs__atomic_add_int(&rs__signal_caught[signum], 1);
    if (write(rs__atomic_load_int(&rs__signal_pipe[1]), &byte, 1) < 0) {
        /* EAGAIN: the pipe is full, so the reader is already woken. */
    }
    errno = saved;
}

static int rs__signal_source_open(int *fd_out) {
    int fds[2];
    int err;
    if (rs__signal_pipe[0] < 0) {
        if (pipe(fds) != 0) {
            return rs_result_from_errno(errno);
        }
        err = rs__set_nonblocking_cloexec(fds[0]);
        err = err ? err : rs__set_nonblocking_cloexec(fds[1]);
        if (err) {
            close(fds[0]);
            close(fds[1]);
            return err;
        }
        rs__signal_pipe[0] = fds[0];
        rs__atomic_store_int(&rs__signal_pipe[1], fds[1]);
    }
    *fd_out = rs__signal_pipe[0];
    return RS_OK;
}

static void rs__signal_source_close(int fd) {
    (void)fd; /* kept open: see rs__signal_pipe */
}

static int rs__signal_source_watch(int signum, bool first) {
    struct sigaction sa;
    if (!first) {
        return RS_OK;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = rs__signal_handler;
    sa.sa_flags = SA_RESTART; /* other threads' blocking calls carry on */
    sigemptyset(&sa.sa_mask);
    rs__atomic_store_int(&rs__signal_caught[signum], 0);
    return sigaction(signum, &sa, &rs__signals.previous[signum]) == 0 ? RS_OK : rs_result_from_errno(errno);
}

static void rs__signal_source_unwatch(int signum) {
    sigaction(signum, &rs__signals.previous[signum], NULL);
}

static void rs__signal_source_drain(int fd) {
    char bytes[64];
    int signum;
    while (read(fd, bytes, sizeof(bytes)) > 0) {
    }
    for (signum = 1; signum < RS__SIGNAL_LIMIT; ++signum) {
        int arrivals = rs__atomic_exchange_int(&rs__signal_caught[signum], 0);
        if (arrivals > 0) {
            rs__signal_fan_out(signum, arrivals);
        }
    }
}

#endif

/* RS_OK, or RS_EINVAL for a signal that cannot be watched. */
static int rs__signal_check_signum(int signum) {
    if (signum <= 0 || signum >= RS__SIGNAL_LIMIT) {
        return RS_EINVAL;
    }
    switch (signum) {
    case SIGKILL: /* cannot be caught or blocked */
    case SIGSTOP:
    case SIGSEGV: /* raised by faults: blocked, they end the process */
    case SIGBUS:
    case SIGFPE:
    case SIGILL:
        return RS_EINVAL;
    default:
        break;
    }
#if RESEAU_OS_LINUX
    if (signum > 31 && signum < SIGRTMIN) {
        return RS_EINVAL; /* glibc's own (thread cancellation, setxid) */
    }
#endif
    return RS_OK;
}

static int rs__signal_source_acquire(int *fd_out) {
    int err = RS_OK;
    rs_mutex_lock(&rs__signal_lock);
    rs__signal_registry_init();
    if (rs__signals.ports == 0) {
        err = rs__signal_source_open(&rs__signals.fd);
    }
    if (!err) {
        rs__signals.ports++;
        *fd_out = rs__signals.fd;
    }
    rs_mutex_unlock(&rs__signal_lock);
    return err;
}

static void rs__signal_source_release(void) {
    rs_mutex_lock(&rs__signal_lock);
    if (--rs__signals.ports == 0) {
        rs__signal_source_close(rs__signals.fd);
    }
    rs_mutex_unlock(&rs__signal_lock);
}

static void rs__signal_port_on_readable(rs_event_loop_t *loop, rs_io_handle_t *handle, int events, void *user_data) {
    (void)loop;
    (void)events;
    (void)user_data;
    rs_mutex_lock(&rs__signal_lock);
    rs__signal_source_drain(handle->fd);
    rs_mutex_unlock(&rs__signal_lock);
}

/* The port's loop reads the shared source. */
static int rs__signal_port_attach(rs__signal_port_t *port) {
    int err = rs__signal_source_acquire(&port->io.fd);
    if (err) {
        return err;
    }
    err = rs_event_loop_subscribe(port->loop, &port->io, RS_IO_READABLE, rs__signal_port_on_readable, port);
    if (err) {
        rs__signal_source_release();
    }
    return err;
}

static void rs__signal_port_detach(rs__signal_port_t *port) {
    rs_event_loop_unsubscribe(port->loop, &port->io);
    rs__signal_source_release();
}

#elif RESEAU_OS_WINDOWS

/* The console control events a watcher can take, as libuv maps them. */
static int rs__signal_from_console_event(DWORD event) {
    switch (event) {
    case CTRL_C_EVENT:
        return SIGINT;
    case CTRL_BREAK_EVENT:
        return SIGBREAK;
    default:
        return 0; /* close, logoff, shutdown: see signal.h */
    }
}

/* RS_OK for SIGINT and SIGBREAK; RS_ENOTSUP for SIGTERM and SIGABRT, which
 * the C runtime names but no console event stands for; RS_EINVAL otherwise. */
static int rs__signal_check_signum(int signum) {
    switch (signum) {
    case SIGINT:
    case SIGBREAK:
        return RS_OK;
    case SIGTERM:
    case SIGABRT:
        return RS_ENOTSUP;
    default:
        return RS_EINVAL;
    }
}

/* The OS calls this on a thread it starts for each event, and runs the next
 * handler (in the end its own, which ends the process) unless it returns
 * TRUE: so TRUE only when some watcher took the event. */
static BOOL WINAPI rs__signal_console_handler(DWORD event) {
    int signum = rs__signal_from_console_event(event);
    int taken = 0;
    if (signum == 0) {
        return FALSE;
    }
    rs_mutex_lock(&rs__signal_lock);
    if (rs__signals.ready) {
        taken = rs__signal_fan_out(signum, 1);
    }
    rs_mutex_unlock(&rs__signal_lock);
    return taken > 0 ? TRUE : FALSE;
}

/* Installed by the first watcher and never removed: SetConsoleCtrlHandler
 * waits for a handler that is running, and ours may be waiting for the
 * registry lock; with no watcher it passes every event on. Its own lock,
 * never the registry's, for the same reason. */
static rs_mutex_t rs__signal_console_lock = RS_MUTEX_INIT;
static bool rs__signal_console_installed;

static int rs__signal_port_attach(rs__signal_port_t *port) {
    int err = RS_OK;
    (void)port;
    rs_mutex_lock(&rs__signal_console_lock);
    if (!rs__signal_console_installed) {
        if (SetConsoleCtrlHandler(rs__signal_console_handler, TRUE)) {
            rs__signal_console_installed = true;
        } else {
            err = rs__result_from_win32((uint32_t)GetLastError());
        }
    }
    rs_mutex_unlock(&rs__signal_console_lock);
    return err;
}

static void rs__signal_port_detach(rs__signal_port_t *port) {
    (void)port; /* the handler stays: see above */
}

/* Console events need no per-signal setup: the handler looks at the registry. */
static int rs__signal_source_watch(int signum, bool first) {
    (void)signum;
    (void)first;
    return RS_OK;
}

static void rs__signal_source_unwatch(int signum) {
    (void)signum;
}

#else /* no OS (RESEAU_OS_NONE): no signals to watch */

/* RS_EINVAL for a number no signal could have, RS_ENOTSUP for the rest, so
 * no watcher is ever made and what follows is never reached. */
static int rs__signal_check_signum(int signum) {
    return signum <= 0 || signum >= RS__SIGNAL_LIMIT ? RS_EINVAL : RS_ENOTSUP;
}

static int rs__signal_port_attach(rs__signal_port_t *port) {
    (void)port;
    return RS_ENOTSUP;
}

static void rs__signal_port_detach(rs__signal_port_t *port) {
    (void)port;
}

static int rs__signal_source_watch(int signum, bool first) {
    (void)signum;
    (void)first;
    return RS_ENOTSUP;
}

static void rs__signal_source_unwatch(int signum) {
    (void)signum;
}

#endif /* RESEAU_OS_NONE */

/* ---- registry ---- */

/* Registry lock held. How many watchers of `signum` there are. Unused
 * without an OS, where no watcher is ever made. */
static RS__UNUSED int rs__signal_fan_out(int signum, int arrivals) {
    rs_list_node_t *node;
    int reached = 0;
    if (signum <= 0 || signum >= RS__SIGNAL_LIMIT) {
        return 0;
    }
    for (node = rs_list_begin(&rs__signals.watchers); node != rs_list_end(&rs__signals.watchers);
         node = node->next) {
        rs_signal_watcher_t *w = RS_CONTAINER_OF(node, rs_signal_watcher_t, node);
        if (w->signum == signum) {
            rs__atomic_add_int(&w->pending, arrivals);
            rs_event_loop_async_send(&w->async);
            reached++;
        }
    }
    return reached;
}

static int rs__signal_register(rs_signal_watcher_t *w) {
    int err;
    rs_mutex_lock(&rs__signal_lock);
    rs__signal_registry_init();
    err = rs__signal_source_watch(w->signum, rs__signals.watch_count[w->signum] == 0);
    if (!err) {
        rs__signals.watch_count[w->signum]++;
        rs_list_push_back(&rs__signals.watchers, &w->node);
    }
    rs_mutex_unlock(&rs__signal_lock);
    return err;
}

/* Registry lock held. No send reaches the watcher after this. */
static void rs__signal_unregister_locked(rs_signal_watcher_t *w) {
    rs_list_remove(&w->node);
    if (--rs__signals.watch_count[w->signum] == 0) {
        rs__signal_source_unwatch(w->signum);
    }
}

/* Unregistered already: drop undelivered arrivals and free. Loop thread. */
static void rs__signal_watcher_free(rs_signal_watcher_t *w) {
    rs_allocator_t allocator = w->loop->allocator;
    rs_event_loop_async_cleanup(&w->async);
    rs_mem_free(&allocator, w);
}

/* ---- ports: one per loop with watchers ---- */

/* Destroy the loop's watchers that are still alive (loop destroy). */
static void rs__signal_port_sweep(rs__signal_port_t *port) {
    rs_list_t doomed;
    rs_list_node_t *node;
    rs_list_init(&doomed);
    rs_mutex_lock(&rs__signal_lock);
    node = rs_list_begin(&rs__signals.watchers);
    while (node != rs_list_end(&rs__signals.watchers)) {
        rs_signal_watcher_t *w = RS_CONTAINER_OF(node, rs_signal_watcher_t, node);
        node = node->next;
        if (w->port == port) {
            rs__signal_unregister_locked(w);
            rs_list_push_back(&doomed, &w->node);
        }
    }
    rs_mutex_unlock(&rs__signal_lock);
    while ((node = rs_list_pop_front(&doomed)) != NULL) {
        RS__LOG_DEBUG(RS_LS_EVENT_LOOP, "releasing a signal watcher still alive at loop destroy");
        rs__signal_watcher_free(RS_CONTAINER_OF(node, rs_signal_watcher_t, node));
    }
}

/* on_remove of the loop-local port: its last watcher went, or the loop is being destroyed. */
static void rs__signal_port_release(void *key, void *object, void *user_data) {
    rs__signal_port_t *port = (rs__signal_port_t *)object;
    rs_allocator_t allocator = port->loop->allocator;
    (void)key;
    (void)user_data;
    rs__signal_port_sweep(port);
    rs__signal_port_detach(port);
    rs_mem_free(&allocator, port);
}

static int rs__signal_port_open(rs_event_loop_t *loop, rs__signal_port_t **port_out) {
    rs__signal_port_t *port = (rs__signal_port_t *)rs_mem_calloc(&loop->allocator, 1, sizeof(*port));
    int err;
    if (!port) {
        return RS_ENOMEM;
    }
    port->loop = loop;
    err = rs__signal_port_attach(port);
    if (err) {
        goto fail_attach;
    }
    err = rs_event_loop_put_local_object(loop, &rs__signal_port_key, port, rs__signal_port_release, NULL);
    if (err) {
        goto fail_local;
    }
    *port_out = port;
    return RS_OK;

fail_local:
    rs__signal_port_detach(port);
fail_attach:
    RS__LOG_ERROR(RS_LS_EVENT_LOOP, "cannot watch signals on loop %p: %s", (void *)loop, rs_strerror(err));
    rs_mem_free(&loop->allocator, port);
    return err;
}

static int rs__signal_port_get(rs_event_loop_t *loop, rs__signal_port_t **port_out) {
    void *existing = NULL;
    if (rs_event_loop_get_local_object(loop, &rs__signal_port_key, &existing) == RS_OK) {
        *port_out = (rs__signal_port_t *)existing;
        return RS_OK;
    }
    return rs__signal_port_open(loop, port_out);
}

/* A port whose last watcher went is closed (the loop-local entry's on_remove). */
static void rs__signal_port_put(rs__signal_port_t *port) {
    if (port->watchers == 0) {
        rs_event_loop_remove_local_object(port->loop, &rs__signal_port_key);
    }
}

/* ---- public ---- */

static void rs__signal_watcher_fire(rs_event_loop_async_t *async, void *user_data) {
    rs_signal_watcher_t *w = (rs_signal_watcher_t *)user_data;
    int arrivals = rs__atomic_exchange_int(&w->pending, 0);
    (void)async;
    if (arrivals > 0) {
        w->fn(w, w->signum, (uint32_t)arrivals, w->user_data);
    }
}

RESEAU_API int rs_signal_watcher_new(rs_event_loop_t *loop, int signum, rs_signal_watcher_fn *on_signal,
                                     void *user_data, rs_signal_watcher_t **watcher_out) {
    rs_signal_watcher_t *w;
    int err;
    if (watcher_out) {
        *watcher_out = NULL;
    }
    err = rs__check_loop_thread(loop, "rs_signal_watcher_new");
    if (err) {
        return err;
    }
    if (!on_signal || !watcher_out) {
        return RS_EINVAL;
    }
    err = rs__signal_check_signum(signum);
    if (err) {
        return err;
    }
    w = (rs_signal_watcher_t *)rs_mem_calloc(&loop->allocator, 1, sizeof(*w));
    if (!w) {
        return RS_ENOMEM;
    }
    w->loop = loop;
    w->signum = signum;
    w->fn = on_signal;
    w->user_data = user_data;
    rs_event_loop_async_init(&w->async, loop, rs__signal_watcher_fire, w);
    err = rs__signal_port_get(loop, &w->port);
    if (err) {
        goto fail_port;
    }
    err = rs__signal_register(w);
    if (err) {
        goto fail_register;
    }
    w->port->watchers++;
    *watcher_out = w;
    return RS_OK;

fail_register:
    RS__LOG_ERROR(RS_LS_EVENT_LOOP, "cannot watch signal %d: %s", signum, rs_strerror(err));
    rs__signal_port_put(w->port);
fail_port:
    rs_mem_free(&loop->allocator, w);
    return err;
}

RESEAU_API int rs_signal_watcher_destroy(rs_signal_watcher_t *watcher) {
    rs__signal_port_t *port;
    int err;
    if (!watcher) {
        return RS_EINVAL;
    }
    err = rs__check_loop_thread(watcher->loop, "rs_signal_watcher_destroy");
    if (err) {
        return err;
    }
    port = watcher->port;
    rs_mutex_lock(&rs__signal_lock);
    rs__signal_unregister_locked(watcher);
    rs_mutex_unlock(&rs__signal_lock);
    rs__signal_watcher_free(watcher);
    port->watchers--;
    rs__signal_port_put(port);
    return RS_OK;
}

RESEAU_API int rs_signal_watcher_get_signum(const rs_signal_watcher_t *watcher) {
    return watcher ? watcher->signum : 0;
}
