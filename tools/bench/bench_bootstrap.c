/*
 * reseau-bench-bootstrap: the client and server bootstraps and the host
 * resolver's cache, against libuv and a hand-written floor.
 *
 *   pound_bootstrap  pound.h's scenario (connects + closes per second,
 *                    POUND_CONCURRENCY in flight to 127.0.0.1, each closed with
 *                    a reset once connected, the server closing on accept)
 *                    through the bootstraps: rs_client_bootstrap_connect to the
 *                    literal "127.0.0.1" (answered without a resolver worker),
 *                    a listener of rs_server_bootstrap on 127.0.0.1, a channel
 *                    with the socket handler alone on each side. The group has
 *                    one loop, so reseau gets one CPU's worth, like libuv's
 *                    pound on its single loop (the peer, pound.h). The client
 *                    shuts each channel down in on_setup and starts the next
 *                    connection in on_shutdown; the server shuts each channel
 *                    down in on_incoming_setup. Counted on the loop thread; the
 *                    calling thread waits for the end.
 *   resolve_cached   Cached resolutions per second on one loop, run by the
 *                    calling thread with rs_event_loop_run_once. The cache is
 *                    warmed by one resolve through a resolve_fn that answers at
 *                    once (one IPv4 and one IPv6 address); then RESOLVE_IN_FLIGHT
 *                    resolves of that name are kept in flight, each callback
 *                    issuing the next, RESOLVE_COUNT in all. libuv has no
 *                    resolver cache, so the peer is a floor written here: the
 *                    same requests, each copying the name, looking it up in a
 *                    small hash table, copying its 2 endpoints and delivering
 *                    them from a task on the same loop.
 *
 * Each scenario runs reseau and its peer alternately (bench_common.h), and
 * every run is bounded in count and time (BENCH_RUN_LIMIT_S).
 *
 * Usage: reseau-bench-bootstrap [-r ROUNDS] [-v] [-only reseau|libuv|floor] [SCENARIO...]
 *   -r     rounds per side (default: BENCH_DEFAULT_ROUNDS)
 *   -v     print every run, with its details
 *   -only  run one side only, and print no table (for profiling)
 *   SCENARIO  run only these (default: all)
 */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"

#include <uv.h>

#define BENCH_PROGRAM "reseau-bench-bootstrap"
/* Seconds one run may take before the program gives up. */
#define BENCH_RUN_LIMIT_S 10
#define BENCH_DEFAULT_ROUNDS 7
#include "bench_common.h"
#include "pound.h"

#include <stdatomic.h>

/* resolve_cached: resolutions per run, and how many are in flight at once. */
#define RESOLVE_COUNT ((size_t)2000000)
#define RESOLVE_IN_FLIGHT 1000
#define RESOLVE_HOST "bench.reseau.example"
/* The floor's table: FLOOR_HOSTS names (RESOLVE_HOST among them) in a table of
 * FLOOR_BUCKETS slots, open addressing; the names are at most FLOOR_NAME_MAX. */
#define FLOOR_HOSTS 64
#define FLOOR_BUCKETS 128
#define FLOOR_NAME_MAX 256
#define FLOOR_ADDRESSES 2
/* How often the calling thread checks whether a pound_bootstrap run is done. */
#define WAIT_POLL_NS (1 * RS_NS_PER_MS)

/* >>counting allocator: with -v, the reseau side of pound_bootstrap allocates
 * through it, and the detail shows allocations per connection. */

static atomic_size_t g_allocs;

static void *counting_alloc(size_t size, void *user_data) {
    (void)user_data;
    atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
    return malloc(size);
}

static void *counting_realloc(void *ptr, size_t old_size, size_t new_size, void *user_data) {
    (void)old_size;
    (void)user_data;
    atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
    return realloc(ptr, new_size);
}

static void counting_free(void *ptr, void *user_data) {
    (void)user_data;
    free(ptr);
}

static const rs_allocator_t g_counting_allocator = {
    .alloc_fn = counting_alloc, .realloc_fn = counting_realloc, .free_fn = counting_free};

/* The counting allocator with -v, else NULL (libc). */
static const rs_allocator_t *bench_allocator(void) {
    return g_verbose ? &g_counting_allocator : NULL;
}

/* >>pound_bootstrap */

typedef struct rs_bpound {
    pound_run_t run; /* the loop thread's */
    atomic_bool done; /* run.finished, for the calling thread */
    atomic_bool listener_destroyed;
    rs_event_loop_group_t *group;
    rs_event_loop_t *loop;
    rs_client_bootstrap_t *client;
    rs_server_bootstrap_t *server;
    rs_server_listener_t *listener;
    uint32_t port;
    rs_task_t idle_task;
    size_t setup_errors; /* server channels whose setup failed (client gone first) */
} rs_bpound_t;

static void bpound_connect(rs_bpound_t *pound);

static void bpound_finished(rs_bpound_t *pound) {
    atomic_store(&pound->done, true);
}

static void on_bpound_idle_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_bpound_t *pound = (rs_bpound_t *)arg;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    if (pound_idle_check(&pound->run)) {
        bpound_finished(pound);
        return;
    }
    rs_event_loop_schedule_task_future(pound->loop, task,
                                       rs_event_loop_now_ns(pound->loop) + IDLE_CHECK_MS * RS_NS_PER_MS);
}

static void bpound_progress(rs_bpound_t *pound) {
    if (pound_progress(&pound->run)) {
        rs_event_loop_schedule_task_now(pound->loop, &pound->idle_task);
    }
    if (pound->run.finished) {
        bpound_finished(pound);
    }
}

static void on_bpound_client_setup(rs_client_bootstrap_t *bootstrap, rs_channel_t *channel, int error,
                                   void *user_data) {
    (void)bootstrap;
    (void)user_data;
    check_rs(error, "pound_bootstrap/reseau: client setup");
    rs_channel_handler_t *handler = rs_channel_slot_get_handler(rs_channel_get_first_slot(channel));
    set_linger_reset(rs_socket_get_fd(rs_socket_handler_get_socket(handler)), "pound_bootstrap/reseau");
    rs_channel_shutdown(channel, RS_OK);
}

static void on_bpound_client_shutdown(rs_client_bootstrap_t *bootstrap, rs_channel_t *channel, int error,
                                      void *user_data) {
    rs_bpound_t *pound = (rs_bpound_t *)user_data;
    (void)bootstrap;
    (void)channel;
    (void)error;
    pound->run.connected++;
    if (pound->run.started < POUND_COUNT) {
        bpound_connect(pound);
    }
    bpound_progress(pound);
}

static void bpound_count_accept(rs_bpound_t *pound) {
    pound->run.accepted++;
    pound->run.last_accept_ns = bench_now_ns();
    bpound_progress(pound);
}

static void on_bpound_incoming_setup(rs_server_listener_t *listener, rs_channel_t *channel, int error,
                                     void *user_data) {
    rs_bpound_t *pound = (rs_bpound_t *)user_data;
    (void)listener;
    if (error != RS_OK) { /* no shutdown follows */
        pound->setup_errors++;
        bpound_count_accept(pound);
        return;
    }
    rs_channel_shutdown(channel, RS_OK);
}

static void on_bpound_incoming_shutdown(rs_server_listener_t *listener, rs_channel_t *channel, int error,
                                        void *user_data) {
    (void)listener;
    (void)channel;
    (void)error;
    bpound_count_accept((rs_bpound_t *)user_data);
}

static void on_bpound_listener_destroyed(rs_server_listener_t *listener, void *user_data) {
    (void)listener;
    atomic_store(&((rs_bpound_t *)user_data)->listener_destroyed, true);
}

static void bpound_connect(rs_bpound_t *pound) {
    rs_client_connect_options_t options = {
        .host = "127.0.0.1",
        .port = pound->port,
        .on_setup = on_bpound_client_setup,
        .on_shutdown = on_bpound_client_shutdown,
        .user_data = pound,
    };
    check_rs(rs_client_bootstrap_connect(pound->client, &options), "rs_client_bootstrap_connect");
    pound->run.started++;
}

static void bpound_start_bootstraps(rs_bpound_t *pound) {
    int err = RS_OK;
    const rs_allocator_t *allocator = bench_allocator();
    pound->group =
        rs_event_loop_group_new(&(rs_event_loop_group_options_t){.allocator = allocator, .loop_count = 1}, &err);
    check_rs(pound->group ? RS_OK : err, "rs_event_loop_group_new");
    pound->loop = rs_event_loop_group_get_loop_at(pound->group, 0);
    pound->client = rs_client_bootstrap_new(
        &(rs_client_bootstrap_options_t){.allocator = allocator, .group = pound->group}, &err);
    check_rs(pound->client ? RS_OK : err, "rs_client_bootstrap_new");
    pound->server = rs_server_bootstrap_new(
        &(rs_server_bootstrap_options_t){.allocator = allocator, .group = pound->group}, &err);
    check_rs(pound->server ? RS_OK : err, "rs_server_bootstrap_new");
    rs_server_listener_options_t listen = {
        .host = "127.0.0.1",
        .on_incoming_setup = on_bpound_incoming_setup,
        .on_incoming_shutdown = on_bpound_incoming_shutdown,
        .on_listener_destroyed = on_bpound_listener_destroyed,
        .user_data = pound,
    };
    pound->listener = rs_server_bootstrap_new_listener(pound->server, &listen, &err);
    check_rs(pound->listener ? RS_OK : err, "rs_server_bootstrap_new_listener");
    rs_endpoint_t bound;
    check_rs(rs_server_listener_get_address(pound->listener, &bound), "rs_server_listener_get_address");
    pound->port = bound.port;
}

/* Destroys the listener, waits (bounded by the watchdog) for it to be gone,
 * then the bootstraps and the group. */
static void bpound_stop_bootstraps(rs_bpound_t *pound) {
    check_rs(rs_server_bootstrap_destroy_listener(pound->listener, false), "rs_server_bootstrap_destroy_listener");
    while (!atomic_load(&pound->listener_destroyed)) {
        rs_thread_sleep_ns(WAIT_POLL_NS);
    }
    rs_server_bootstrap_destroy(pound->server);
    rs_client_bootstrap_destroy(pound->client);
    check_rs(rs_event_loop_group_destroy(pound->group), "rs_event_loop_group_destroy");
}

/* Starts the first connections on the loop thread, as every later one. */
static void on_bpound_start_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs_bpound_t *pound = (rs_bpound_t *)arg;
    (void)task;
    check_rs(status == RS_TASK_STATUS_RUN ? RS_OK : RS_ECANCELED, "pound_bootstrap/reseau: start");
    for (int i = 0; i < POUND_CONCURRENCY; i++) {
        bpound_connect(pound);
    }
}

static double reseau_pound_bootstrap(int concurrency) {
    (void)concurrency;
    rs_bpound_t *pound = (rs_bpound_t *)xcalloc(1, sizeof(rs_bpound_t));
    bpound_start_bootstraps(pound);
    rs_task_init(&pound->idle_task, on_bpound_idle_task, pound, "pound_idle");
    rs_task_t start_task;
    rs_task_init(&start_task, on_bpound_start_task, pound, "pound_start");

    size_t allocs_before = atomic_load(&g_allocs);
    uint64_t start = bench_now_ns();
    check_rs(rs_event_loop_schedule_task_now(pound->loop, &start_task), "rs_event_loop_schedule_task_now");
    while (!atomic_load(&pound->done)) {
        rs_thread_sleep_ns(WAIT_POLL_NS);
    }

    double rate = pound_verify(&pound->run, "reseau", start);
    double allocs = (double)(atomic_load(&g_allocs) - allocs_before) / (double)POUND_COUNT;
    snprintf(g_detail, sizeof g_detail,
             "%zu connections in %.1f ms, %zu never accepted, %zu server setups failed, %.1f allocations per "
             "connection (client and server)",
             pound->run.connected, (double)(pound->run.end_ns - start) / 1e6, POUND_COUNT - pound->run.accepted,
             pound->setup_errors, allocs);
    bpound_stop_bootstraps(pound);
    free(pound);
    return rate;
}

/* >>resolve_cached */

typedef struct resolve_run {
    rs_event_loop_t *loop;
    size_t issued;
    size_t resolved;
    size_t addresses; /* summed over every answer, to check them */
    /* reseau */
    rs_host_resolver_t *resolver;
    rs_host_resolve_request_t request;
    atomic_bool resolver_gone;
} resolve_run_t;

/* Checks the counts, and returns the rate. */
static double resolve_run_finish(resolve_run_t *run, uint64_t elapsed_ns, const char *peer) {
    if (run->resolved != RESOLVE_COUNT || run->addresses != RESOLVE_COUNT * FLOOR_ADDRESSES) {
        fprintf(stderr, BENCH_PROGRAM ": resolve_cached/%s: %zu resolved, %zu addresses, of %zu\n", peer,
                run->resolved, run->addresses, RESOLVE_COUNT);
        exit(1);
    }
    rs_event_loop_stats_t stats;
    rs_event_loop_get_stats(run->loop, &stats);
    snprintf(g_detail, sizeof g_detail, "%zu resolves in %.1f ms, %llu ticks", run->resolved,
             (double)elapsed_ns / 1e6, (unsigned long long)stats.ticks);
    g_work = (double)RESOLVE_COUNT;
    return per_second(RESOLVE_COUNT, elapsed_ns);
}

/* reseau */

/* Answers at once, with one address of the family asked for. */
static int bench_resolve_fn(const char *host_name, rs_socket_domain_t family, rs_endpoint_t *addresses_out,
                            size_t capacity, size_t *count_out, void *user_data) {
    (void)host_name;
    (void)user_data;
    *count_out = 0;
    if (capacity == 0) {
        return RS_OK;
    }
    bool v6 = family == RS_SOCKET_DOMAIN_IPV6;
    check_rs(rs_endpoint_from_ip(&addresses_out[0], v6 ? "::1" : "127.0.0.1", 0), "rs_endpoint_from_ip");
    *count_out = 1;
    return RS_OK;
}

static void on_rs_resolved(rs_host_resolver_t *resolver, const char *host_name, int error,
                           const rs_endpoint_t *addresses, size_t count, void *user_data) {
    resolve_run_t *run = (resolve_run_t *)user_data;
    (void)resolver;
    (void)host_name;
    (void)addresses;
    check_rs(error, "resolve_cached/reseau: resolve");
    run->resolved++;
    run->addresses += count;
    if (run->issued < RESOLVE_COUNT) {
        check_rs(rs_host_resolver_resolve(run->resolver, &run->request), "rs_host_resolver_resolve");
        run->issued++;
    }
}

static void on_rs_warmed(rs_host_resolver_t *resolver, const char *host_name, int error,
                         const rs_endpoint_t *addresses, size_t count, void *user_data) {
    (void)resolver;
    (void)host_name;
    (void)addresses;
    check_rs(error, "resolve_cached/reseau: warm-up");
    check_rs(count == FLOOR_ADDRESSES ? RS_OK : RS_EINVAL, "resolve_cached/reseau: warm-up address count");
    *(bool *)user_data = true;
}

static void on_rs_resolver_gone(void *user_data) {
    atomic_store((atomic_bool *)user_data, true);
}

static double reseau_resolve_cached(int unused) {
    (void)unused;
    resolve_run_t *run = (resolve_run_t *)xcalloc(1, sizeof(resolve_run_t));
    run->loop = new_rs_loop();
    int err = RS_OK;
    rs_host_resolver_options_t options = {
        .resolve_fn = bench_resolve_fn,
        .on_shutdown_complete = on_rs_resolver_gone,
        .shutdown_user_data = &run->resolver_gone,
    };
    run->resolver = rs_host_resolver_new(&options, &err);
    check_rs(run->resolver ? RS_OK : err, "rs_host_resolver_new");

    bool warm = false;
    rs_host_resolve_request_t warm_up = {
        .host_name = RESOLVE_HOST, .loop = run->loop, .on_resolved = on_rs_warmed, .user_data = &warm};
    check_rs(rs_host_resolver_resolve(run->resolver, &warm_up), "rs_host_resolver_resolve (warm-up)");
    while (!warm) {
        check_rs(rs_event_loop_run_once(run->loop, -1), "rs_event_loop_run_once");
    }

    run->request = (rs_host_resolve_request_t){
        .host_name = RESOLVE_HOST, .loop = run->loop, .on_resolved = on_rs_resolved, .user_data = run};
    uint64_t start = bench_now_ns();
    for (int i = 0; i < RESOLVE_IN_FLIGHT; i++) {
        check_rs(rs_host_resolver_resolve(run->resolver, &run->request), "rs_host_resolver_resolve");
        run->issued++;
    }
    while (run->resolved < RESOLVE_COUNT) {
        check_rs(rs_event_loop_run_once(run->loop, -1), "rs_event_loop_run_once");
    }
    double rate = resolve_run_finish(run, bench_now_ns() - start, "reseau");
    rs_host_resolver_destroy(run->resolver);
    while (!atomic_load(&run->resolver_gone)) { /* its workers are joined by then */
        rs_thread_sleep_ns(WAIT_POLL_NS);
    }
    rs_event_loop_destroy(run->loop);
    free(run);
    return rate;
}

/* floor: a cache lookup and a callback on the next tick, and nothing else. */

typedef struct floor_entry {
    char name[FLOOR_NAME_MAX];
    rs_endpoint_t addresses[FLOOR_ADDRESSES];
} floor_entry_t;

typedef struct floor_request {
    rs_task_t task;
    resolve_run_t *run;
    char name[FLOOR_NAME_MAX];
    rs_endpoint_t addresses[FLOOR_ADDRESSES];
    size_t count;
} floor_request_t;

typedef struct floor_cache {
    floor_entry_t entries[FLOOR_HOSTS];
    floor_entry_t *buckets[FLOOR_BUCKETS];
    resolve_run_t run;
    floor_request_t requests[RESOLVE_IN_FLIGHT];
} floor_cache_t;

static size_t floor_hash(const char *name) {
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (; *name; name++) {
        h = (h ^ (uint8_t)*name) * 1099511628211ull;
    }
    return (size_t)(h % FLOOR_BUCKETS);
}

static floor_entry_t *floor_lookup(floor_cache_t *cache, const char *name) {
    for (size_t i = floor_hash(name);; i = (i + 1) % FLOOR_BUCKETS) {
        floor_entry_t *entry = cache->buckets[i];
        if (!entry || strcmp(entry->name, name) == 0) {
            return entry;
        }
    }
}

static void floor_fill(floor_cache_t *cache) {
    for (int i = 0; i < FLOOR_HOSTS; i++) {
        floor_entry_t *entry = &cache->entries[i];
        if (i == 0) {
            snprintf(entry->name, sizeof entry->name, "%s", RESOLVE_HOST);
        } else {
            snprintf(entry->name, sizeof entry->name, "host-%d.reseau.example", i);
        }
        check_rs(rs_endpoint_from_ip(&entry->addresses[0], "::1", 0), "rs_endpoint_from_ip");
        check_rs(rs_endpoint_from_ip(&entry->addresses[1], "127.0.0.1", 0), "rs_endpoint_from_ip");
        size_t slot = floor_hash(entry->name);
        while (cache->buckets[slot]) {
            slot = (slot + 1) % FLOOR_BUCKETS;
        }
        cache->buckets[slot] = entry;
    }
}

static void floor_resolve(floor_cache_t *cache, floor_request_t *request, const char *name) {
    snprintf(request->name, sizeof request->name, "%s", name);
    floor_entry_t *entry = floor_lookup(cache, request->name);
    request->count = entry ? FLOOR_ADDRESSES : 0;
    if (entry) {
        memcpy(request->addresses, entry->addresses, sizeof request->addresses);
    }
    check_rs(rs_event_loop_schedule_task_now(cache->run.loop, &request->task), "rs_event_loop_schedule_task_now");
    cache->run.issued++;
}

static void on_floor_resolved(rs_task_t *task, void *arg, rs_task_status_t status) {
    floor_cache_t *cache = (floor_cache_t *)arg;
    floor_request_t *request = (floor_request_t *)task; /* task is its first member */
    check_rs(status == RS_TASK_STATUS_RUN && request->count ? RS_OK : RS_EINVAL, "resolve_cached/floor: resolve");
    cache->run.resolved++;
    cache->run.addresses += request->count;
    if (cache->run.issued < RESOLVE_COUNT) {
        floor_resolve(cache, request, RESOLVE_HOST);
    }
}

static double floor_resolve_cached(int unused) {
    (void)unused;
    floor_cache_t *cache = (floor_cache_t *)xcalloc(1, sizeof(floor_cache_t));
    floor_fill(cache);
    resolve_run_t *run = &cache->run;
    run->loop = new_rs_loop();
    for (int i = 0; i < RESOLVE_IN_FLIGHT; i++) {
        rs_task_init(&cache->requests[i].task, on_floor_resolved, cache, "floor_resolved");
    }

    uint64_t start = bench_now_ns();
    for (int i = 0; i < RESOLVE_IN_FLIGHT; i++) {
        floor_resolve(cache, &cache->requests[i], RESOLVE_HOST);
    }
    while (run->resolved < RESOLVE_COUNT) {
        check_rs(rs_event_loop_run_once(run->loop, -1), "rs_event_loop_run_once");
    }
    double rate = resolve_run_finish(run, bench_now_ns() - start, "floor");
    rs_event_loop_destroy(run->loop);
    free(cache);
    return rate;
}

/* >>runner */

static const scenario_t g_scenarios[] = {
    {.name = "pound_bootstrap", .reseau_fn = reseau_pound_bootstrap, .peer_fn = libuv_pound, .arg = POUND_CONCURRENCY,
     .work_unit = "connection"},
    {.name = "resolve_cached", .reseau_fn = reseau_resolve_cached, .peer_fn = floor_resolve_cached, .peer = "floor",
     .work_unit = "resolve"},
};

int main(int argc, char **argv) {
    return bench_main(argc, argv, g_scenarios, sizeof g_scenarios / sizeof g_scenarios[0]);
}
