/*
 * bench_common.h: what the reseau-bench-* programs share.
 *
 * Helpers (clock, checks that end the program, calloc), the watchdog that
 * stops a run past BENCH_RUN_LIMIT_S, and the runner: each scenario runs
 * reseau and its peer alternately (A B A B ...), `rounds` times each, and
 * prints the median of each side and their ratio, one line per scenario.
 *
 * Include it once, after reseau.h and uv.h, in a program that defines
 * BENCH_PROGRAM (its name, for messages), BENCH_DEFAULT_ROUNDS and
 * BENCH_RUN_LIMIT_S first. main() is then bench_main(argc, argv, scenarios,
 * count), whose command line is
 *   PROGRAM [-r ROUNDS] [-v] [-only reseau|PEER] [SCENARIO...]
 *
 * A program without libuv (bench_iocp.c, whose peer is a hand-written loop)
 * defines BENCH_NO_LIBUV and includes no uv.h. On Windows (mingw-w64) the
 * clocks come from QueryPerformanceCounter and GetProcessTimes, and the
 * watchdog is a thread instead of alarm() and SIGALRM.
 */
#ifndef RESEAU_BENCH_COMMON_H
#define RESEAU_BENCH_COMMON_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if RESEAU_OS_WINDOWS
#include <windows.h>
#else
#include <sys/resource.h>
#endif

#define BENCH_MAX_ROUNDS 50

static bool g_verbose;
/* NULL: both sides; else "reseau" or the peer's name (-only). */
static const char *g_only;
/* Extra facts about the last run, printed with -v. */
static char g_detail[200];
/* Work done by the last run, in the scenario's work_unit, for the CPU cost
 * that -v prints (scenarios with a work_unit set it). */
static double g_work;

/* >>helpers */

#if RESEAU_OS_WINDOWS
static inline uint64_t bench_now_ns(void) {
    LARGE_INTEGER now, frequency;
    QueryPerformanceCounter(&now);
    QueryPerformanceFrequency(&frequency);
    return (uint64_t)((double)now.QuadPart * 1e9 / (double)frequency.QuadPart);
}

/* User plus system CPU time of the whole process (every thread), in the
 * FILETIME unit of 100 ns. */
static inline uint64_t process_cpu_ns(void) {
    FILETIME created, exited, kernel, user;
    if (!GetProcessTimes(GetCurrentProcess(), &created, &exited, &kernel, &user)) {
        return 0;
    }
    uint64_t k = ((uint64_t)kernel.dwHighDateTime << 32) | kernel.dwLowDateTime;
    uint64_t u = ((uint64_t)user.dwHighDateTime << 32) | user.dwLowDateTime;
    return (k + u) * 100;
}
#else
static inline uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * RS_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* User plus system CPU time of the whole process (every thread). */
static inline uint64_t process_cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * RS_NS_PER_SEC +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000;
}
#endif

static inline double per_second(double count, uint64_t elapsed_ns) {
    return count * 1e9 / (double)(elapsed_ns ? elapsed_ns : 1);
}

static inline void fail(const char *what, const char *why) {
    fprintf(stderr, BENCH_PROGRAM ": %s: %s\n", what, why);
    exit(1);
}

static inline void check_rs(int err, const char *what) {
    if (err != RS_OK) {
        fail(what, rs_strerror(err));
    }
}

#ifndef BENCH_NO_LIBUV
static inline void check_uv(int err, const char *what) {
    if (err != 0) {
        fail(what, uv_strerror(err));
    }
}
#endif

static inline void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count, size);
    if (!p) {
        fail("calloc", "out of memory");
    }
    return p;
}

/* A run that waits for stragglers (datagrams, connections the server has not
 * accepted yet) ends once nothing has arrived for IDLE_MS; checked every
 * IDLE_CHECK_MS. An idle_watch watches the counter. */
#define IDLE_MS 50
#define IDLE_CHECK_MS 10

typedef struct idle_watch {
    size_t last_count;
    uint64_t since_ns; /* when last_count was seen first; 0 before the first poll */
} idle_watch_t;

static inline bool idle_watch_expired(idle_watch_t *watch, size_t count) {
    uint64_t now = bench_now_ns();
    if (count != watch->last_count || !watch->since_ns) {
        watch->last_count = count;
        watch->since_ns = now;
        return false;
    }
    return now - watch->since_ns >= (uint64_t)IDLE_MS * RS_NS_PER_MS;
}

/* The backend of the loops new_rs_loop makes: a scenario comparing two
 * backends sets it before each side runs. */
static rs_event_loop_backend_t g_backend = RS_EVENT_LOOP_BACKEND_DEFAULT;

/* Define `name`, a bench_fn that runs `fn` with every loop on `backend`. */
#define BENCH_ON_BACKEND(name, fn, backend)                                                         \
    static double name(int arg) {                                                                   \
        g_backend = (backend);                                                                      \
        double rate = fn(arg);                                                                      \
        g_backend = RS_EVENT_LOOP_BACKEND_DEFAULT;                                                  \
        return rate;                                                                                \
    }

static inline rs_event_loop_t *new_rs_loop(void) {
    int err = RS_OK;
    rs_event_loop_options_t options;
    rs_event_loop_t *loop;
    memset(&options, 0, sizeof(options));
    options.backend = g_backend;
    loop = rs_event_loop_new(&options, &err);
    check_rs(loop ? RS_OK : err, "rs_event_loop_new");
    return loop;
}

/* >>watchdog: a run that exceeds BENCH_RUN_LIMIT_S ends the program. */

static const char *volatile g_current_run = "";

static inline void write_stderr(const char *s) {
    ssize_t n = write(STDERR_FILENO, s, strlen(s));
    (void)n;
}

static inline void give_up(void) {
    write_stderr(BENCH_PROGRAM ": run exceeded the time limit, giving up: ");
    write_stderr(g_current_run);
    write_stderr("\n");
    _exit(2);
}

#if RESEAU_OS_WINDOWS
/* No alarm() on Windows: a thread checks the deadline that bench_alarm sets
 * every WATCHDOG_CHECK_MS. */
#define WATCHDOG_CHECK_MS 50

static volatile LONG64 g_alarm_deadline_ms; /* GetTickCount64 time; 0: none */

static inline DWORD WINAPI watchdog_main(LPVOID arg) {
    (void)arg;
    for (;;) {
        Sleep(WATCHDOG_CHECK_MS);
        LONG64 deadline = InterlockedCompareExchange64(&g_alarm_deadline_ms, 0, 0);
        if (deadline && (LONG64)GetTickCount64() >= deadline) {
            give_up();
        }
    }
    return 0;
}

/* alarm(): the program gives up `seconds` from now; 0 cancels. */
static inline void bench_alarm(unsigned seconds) {
    InterlockedExchange64(&g_alarm_deadline_ms, seconds ? (LONG64)(GetTickCount64() + seconds * 1000ull) : 0);
}

static inline void bench_watchdog_start(void) {
    HANDLE thread = CreateThread(NULL, 0, watchdog_main, NULL, 0, NULL);
    if (!thread) {
        fail("CreateThread", "the watchdog did not start");
    }
    CloseHandle(thread);
}
#else
static inline void on_alarm(int sig) {
    (void)sig;
    give_up();
}

static inline void bench_alarm(unsigned seconds) {
    alarm(seconds);
}

static inline void bench_watchdog_start(void) {
    signal(SIGALRM, on_alarm);
}
#endif

/* >>runner */

typedef double bench_fn(int arg);

typedef struct scenario scenario_t;

struct scenario {
    const char *name;
    bench_fn *reseau_fn;
    bench_fn *peer_fn;
    int arg;
    const char *peer;      /* the peer's name in the output (default: NULL, "libuv") */
    const char *unit;      /* of the figure (default: NULL, "/s", printed without decimals; any
                              other unit gets one) */
    const char *work_unit; /* -v prints the CPU time per g_work of it (default: NULL, not printed) */
    /* After both sides ran (not with -only), with the medians (default: NULL). */
    void (*after)(const scenario_t *s, double reseau_median, double peer_median);
};

static inline const char *scenario_peer(const scenario_t *s) {
    return s->peer ? s->peer : "libuv";
}

static inline const char *scenario_unit(const scenario_t *s) {
    return s->unit ? s->unit : "/s";
}

static inline int scenario_decimals(const scenario_t *s) {
    return s->unit ? 1 : 0;
}

static inline double run_one(const scenario_t *s, const char *side, bench_fn *fn) {
    static char label[64];
    snprintf(label, sizeof label, "%s/%s", s->name, side);
    g_current_run = label;
    g_detail[0] = '\0';
    g_work = 0;
    bench_alarm(BENCH_RUN_LIMIT_S);
    uint64_t cpu_start = process_cpu_ns();
    double rate = fn(s->arg);
    double cpu_us = (double)(process_cpu_ns() - cpu_start) / 1e3;
    bench_alarm(0);
    if (!g_verbose) {
        return rate;
    }
    printf("  %-22s %12.*f%s  %s", label, scenario_decimals(s), rate, scenario_unit(s), g_detail);
    if (s->work_unit) {
        printf("; CPU %.2f us per %s", cpu_us / (g_work > 0 ? g_work : 1), s->work_unit);
    }
    printf("\n");
    fflush(stdout);
    return rate;
}

static inline int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double median(double *values, int count) {
    qsort(values, (size_t)count, sizeof(double), compare_double);
    return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

static inline void run_scenario(const scenario_t *s, int rounds) {
    double reseau[BENCH_MAX_ROUNDS], peer[BENCH_MAX_ROUNDS];
    const char *peer_name = scenario_peer(s);
    if (g_only) {
        bool is_reseau = strcmp(g_only, "reseau") == 0;
        const char *side = is_reseau ? "reseau" : peer_name;
        for (int i = 0; i < rounds; i++) {
            double rate = run_one(s, side, is_reseau ? s->reseau_fn : s->peer_fn);
            printf("%-16s  %s=%11.*f%s\n", s->name, side, scenario_decimals(s), rate, scenario_unit(s));
        }
        return;
    }
    for (int i = 0; i < rounds; i++) {
        reseau[i] = run_one(s, "reseau", s->reseau_fn);
        peer[i] = run_one(s, peer_name, s->peer_fn);
    }
    double r = median(reseau, rounds), p = median(peer, rounds);
    int decimals = scenario_decimals(s);
    const char *unit = scenario_unit(s);
    printf("%-16s  reseau=%11.*f%s  %s=%11.*f%s  ratio=%.2f\n", s->name, decimals, r, unit, peer_name, decimals, p,
           unit, r / p);
    fflush(stdout);
    if (s->after) {
        s->after(s, r, p);
    }
}

static inline int bench_usage(const scenario_t *scenarios, size_t count) {
    fprintf(stderr, "usage: " BENCH_PROGRAM " [-r ROUNDS] [-v] [-only reseau|PEER] [SCENARIO...]\nscenarios:");
    for (size_t i = 0; i < count; i++) {
        fprintf(stderr, " %s (peer %s)", scenarios[i].name, scenario_peer(&scenarios[i]));
    }
    fprintf(stderr, "\n");
    return 2;
}

static inline bool is_selected(const char *name, char **names, int count) {
    for (int i = 0; i < count; i++) {
        if (strcmp(names[i], name) == 0) {
            return true;
        }
    }
    return count == 0;
}

static inline bool is_known(const char *name, const scenario_t *scenarios, size_t count) {
    for (size_t i = 0; i < count; i++) {
        if (strcmp(name, scenarios[i].name) == 0) {
            return true;
        }
    }
    return false;
}

/* Parses the options into g_verbose, g_only and *rounds_out; returns the index
 * of the first scenario name, or -1 on a usage error. */
static inline int bench_parse_options(int argc, char **argv, int *rounds_out) {
    int arg = 1;
    for (; arg < argc && argv[arg][0] == '-'; arg++) {
        if (strcmp(argv[arg], "-v") == 0) {
            g_verbose = true;
        } else if (strcmp(argv[arg], "-only") == 0 && arg + 1 < argc) {
            g_only = argv[++arg];
        } else if (strcmp(argv[arg], "-r") == 0 && arg + 1 < argc) {
            *rounds_out = atoi(argv[++arg]);
            if (*rounds_out < 1 || *rounds_out > BENCH_MAX_ROUNDS) {
                return -1;
            }
        } else {
            return -1;
        }
    }
    return arg;
}

static inline int bench_main(int argc, char **argv, const scenario_t *scenarios, size_t count) {
    int rounds = BENCH_DEFAULT_ROUNDS;
    int arg = bench_parse_options(argc, argv, &rounds);
    bool only_known = !g_only || strcmp(g_only, "reseau") == 0;
    for (size_t i = 0; i < count; i++) {
        only_known = only_known || (g_only && strcmp(g_only, scenario_peer(&scenarios[i])) == 0);
    }
    if (arg < 0 || !only_known) {
        return bench_usage(scenarios, count);
    }
    for (int i = arg; i < argc; i++) {
        if (!is_known(argv[i], scenarios, count)) {
            return bench_usage(scenarios, count);
        }
    }
    bench_watchdog_start();
#if !RESEAU_OS_WINDOWS
    signal(SIGPIPE, SIG_IGN); /* libuv writes without MSG_NOSIGNAL */
#endif
#if RESEAU_OS_WINDOWS
    setvbuf(stdout, NULL, _IONBF, 0); /* Microsoft's C runtime has no line buffering */
#else
    setvbuf(stdout, NULL, _IOLBF, 0);
#endif
#ifdef BENCH_NO_LIBUV
    printf("# " BENCH_PROGRAM ": median of %d runs per side, alternating reseau/peer; %zu CPUs\n", rounds,
           rs_usable_cpu_count());
#else
    printf("# " BENCH_PROGRAM ": median of %d runs per side, alternating reseau/peer; %zu CPUs, libuv %s\n", rounds,
           rs_usable_cpu_count(), uv_version_string());
#endif
    for (size_t i = 0; i < count; i++) {
        if (!is_selected(scenarios[i].name, argv + arg, argc - arg)) {
            continue;
        }
        const scenario_t *s = &scenarios[i];
        if (g_only && strcmp(g_only, "reseau") != 0 && strcmp(g_only, scenario_peer(s)) != 0) {
            continue; /* -only names the other scenarios' peer */
        }
        run_scenario(s, rounds);
    }
    return 0;
}

#endif /* RESEAU_BENCH_COMMON_H */
