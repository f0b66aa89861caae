/* Host resolver: a per-host cache (hash + LRU list), a FIFO of lookup jobs
 * served by detached worker threads, and per-request records delivered to
 * loops by an embedded task.
 *
 * One mutex guards everything mutable. A reference count keeps the resolver
 * alive while the user's handle, a worker thread, an undelivered request or a
 * purge notice still needs it; whoever drops the last one joins the workers,
 * frees it all and calls on_shutdown_complete. A (host, family) has at most one job queued or
 * running; requests that need it wait on the host's entry and are answered
 * together when it ends. */

#define RS__RESOLVER_DEFAULT_MAX_ENTRIES 1024
#define RS__RESOLVER_DEFAULT_TTL_MS 30000
#define RS__RESOLVER_DEFAULT_WORKERS 2
/* The longest name kept: 253 bytes plus an optional trailing dot (RFC 1035). */
#define RS__HOST_NAME_MAX 253
#define RS__HOST_LABEL_MAX 63
#define RS__HOST_NAME_BUF (RS__HOST_NAME_MAX + 2)
/* Hash buckets stop growing here; chains get longer beyond it, nothing breaks. */
#define RS__RESOLVER_MAX_BUCKETS ((size_t)1 << 16)
/* Request records (about 1.2 KB each) kept for reuse, so a cached resolve
 * costs no allocation: a burst of a thousand requests in flight on one loop
 * then runs at ~7M/s here, against ~0.4M/s when most go back to malloc. */
#define RS__RESOLVER_FREE_RECORDS_MAX 1024

enum { RS__FAM_V6 = 0, RS__FAM_V4 = 1, RS__FAM_COUNT = 2 };

/* One cached or delivered address: the bytes of an endpoint, without the port. */
typedef struct rs__host_addr {
    uint8_t addr[16];
    uint32_t scope_id;
    bool failed;
} rs__host_addr_t;

typedef struct rs__host_entry rs__host_entry_t;

typedef struct rs__resolver_job {
    rs_list_node_t node; /* in resolver->jobs */
    rs__host_entry_t *entry;
    int family;
} rs__resolver_job_t;

/* One family of one host. `answered` once a lookup returned records or an
 * authoritative "none" (RS_OK with 0 records, RS_EDNS_NOT_FOUND). */
typedef struct rs__host_records {
    bool answered;
    bool in_flight; /* job queued or running */
    int error;      /* RS_OK or RS_EDNS_NOT_FOUND when answered */
    uint64_t fetched_ns;
    size_t count;
    rs__host_addr_t addrs[RS_HOST_RESOLVER_MAX_ADDRESSES];
    rs__resolver_job_t job;
} rs__host_records_t;

struct rs__host_entry {
    rs_list_node_t lru_node;     /* resolver->lru (front: most recent), or ->detached */
    rs__host_entry_t *hash_next; /* bucket chain; detached entries are in no bucket */
    uint32_t hash;
    bool detached;               /* evicted or purged while a job ran; freed when idle */
    size_t name_len;
    char name[RS__HOST_NAME_BUF]; /* lowercased */
    rs__host_records_t fam[RS__FAM_COUNT];
    rs_list_t waiters;           /* request records waiting for a family */
};

typedef struct rs__family_result {
    bool done;
    bool delivered;
    int error;
    size_t count;
    rs__host_addr_t addrs[RS_HOST_RESOLVER_MAX_ADDRESSES]; /* healthy first */
} rs__family_result_t;

/* One rs_host_resolver_resolve call, from the call until on_resolved returns. */
typedef struct rs__resolve_record {
    rs_task_t task;
    rs_list_node_t node; /* entry->waiters, or resolver->free_records */
    rs_host_resolver_t *resolver;
    rs_event_loop_t *loop;
    rs_host_resolved_fn *on_resolved;
    rs_host_resolved_fn *on_family_resolved;
    void *user_data;
    int waiting;       /* bit per family still to come from a job */
    bool scheduled;    /* the delivery task is queued on loop */
    bool canceled;
    bool final_delivered;
    rs__family_result_t fam[RS__FAM_COUNT];
    char host_name[RS__HOST_NAME_BUF]; /* as given */
} rs__resolve_record_t;

typedef struct rs__purge_notice {
    rs_task_t task;
    rs_host_resolver_t *resolver;
    rs_host_resolver_purged_fn *on_purged;
    void *user_data;
} rs__purge_notice_t;

struct rs_host_resolver {
    rs_allocator_t allocator;
    size_t max_entries;
    uint64_t ttl_ns;
    uint64_t max_stale_ns;
    size_t worker_count;
    rs_host_resolve_fn *resolve_fn;
    void *resolve_user_data;
    rs_clock_fn *clock_fn;
    void *clock_user_data;
    rs_host_resolver_shutdown_fn *on_shutdown_complete;
    void *shutdown_user_data;

    rs_mutex_t lock;
    rs_condvar_t work_cond;
    size_t refs; /* the handle, each live worker, each undelivered record or notice */
    bool shutting_down;
    bool workers_launched;
    rs_thread_t *workers;
    rs_list_t jobs;
    rs__host_entry_t **buckets;
    size_t bucket_mask;
    size_t host_count;
    rs_list_t lru;
    rs_list_t detached;
    rs_list_t free_records;
    size_t free_record_count;
};

static const rs_socket_domain_t rs__fam_domain[RS__FAM_COUNT] = {RS_SOCKET_DOMAIN_IPV6, RS_SOCKET_DOMAIN_IPV4};

static size_t rs__fam_addr_len(int family) {
    return family == RS__FAM_V6 ? 16 : 4;
}

static uint64_t rs__resolver_now(const rs_host_resolver_t *r) {
    return r->clock_fn ? r->clock_fn(r->clock_user_data) : rs_clock_now_ns();
}

/* ---- names --------------------------------------------------------------- */

/* Empty, over 253 bytes (a trailing dot not counted), or a label that is empty
 * or over 63 bytes: RS_EINVAL. *len_out is the length as given. */
static int rs__host_name_check(const char *name, size_t *len_out) {
    size_t len = strlen(name);
    size_t significant = len;
    size_t label = 0;
    size_t i;
    if (len > 0 && name[len - 1] == '.') {
        --significant;
    }
    if (significant == 0 || significant > RS__HOST_NAME_MAX) {
        return RS_EINVAL;
    }
    for (i = 0; i < significant; ++i) {
        if (name[i] != '.') {
            ++label;
            if (label > RS__HOST_LABEL_MAX) {
                return RS_EINVAL;
            }
            continue;
        }
        if (label == 0) {
            return RS_EINVAL;
        }
        label = 0;
    }
    *len_out = len;
    return label == 0 ? RS_EINVAL : RS_OK;
}

/* Lowercase copy and its FNV-1a hash: host names compare case-insensitively. */
static uint32_t rs__host_name_fold(const char *name, size_t len, char *out) {
    uint32_t hash = 2166136261u;
    size_t i;
    for (i = 0; i < len; ++i) {
        char c = name[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        out[i] = c;
        hash = (hash ^ (uint8_t)c) * 16777619u;
    }
    out[len] = '\0';
    return hash;
}

/* ---- addresses ----------------------------------------------------------- */

static bool rs__host_addr_matches(const rs__host_addr_t *a, const rs_endpoint_t *e, int family) {
    return e->domain == rs__fam_domain[family] && memcmp(a->addr, e->addr, rs__fam_addr_len(family)) == 0 &&
           (family == RS__FAM_V4 || a->scope_id == e->scope_id);
}

static void rs__host_addr_to_endpoint(const rs__host_addr_t *a, int family, rs_endpoint_t *out) {
    memset(out, 0, sizeof(*out));
    out->domain = rs__fam_domain[family];
    memcpy(out->addr, a->addr, rs__fam_addr_len(family));
    out->scope_id = a->scope_id;
}

/* Keep the addresses of `family`, in order, without duplicates. */
static size_t rs__host_addrs_from_endpoints(rs__host_addr_t *out, int family, const rs_endpoint_t *in,
                                            size_t count) {
    size_t n = 0;
    size_t i;
    size_t j;
    for (i = 0; i < count && n < RS_HOST_RESOLVER_MAX_ADDRESSES; ++i) {
        if (in[i].domain != rs__fam_domain[family]) {
            continue;
        }
        for (j = 0; j < n && !rs__host_addr_matches(&out[j], &in[i], family); ++j) {
        }
        if (j < n) {
            continue;
        }
        memset(&out[n], 0, sizeof(out[n]));
        memcpy(out[n].addr, in[i].addr, rs__fam_addr_len(family));
        out[n].scope_id = family == RS__FAM_V6 ? in[i].scope_id : 0;
        ++n;
    }
    return n;
}

/* ---- cache --------------------------------------------------------------- */

static rs__host_entry_t *rs__resolver_find(rs_host_resolver_t *r, const char *folded, size_t len, uint32_t hash) {
    rs__host_entry_t *e;
    for (e = r->buckets[hash & r->bucket_mask]; e; e = e->hash_next) {
        if (e->hash == hash && e->name_len == len && memcmp(e->name, folded, len) == 0) {
            return e;
        }
    }
    return NULL;
}

static void rs__resolver_unhash(rs_host_resolver_t *r, rs__host_entry_t *entry) {
    rs__host_entry_t **link = &r->buckets[entry->hash & r->bucket_mask];
    while (*link != entry) {
        link = &(*link)->hash_next;
    }
    *link = entry->hash_next;
    entry->hash_next = NULL;
    rs_list_remove(&entry->lru_node);
    --r->host_count;
}

static bool rs__entry_idle(const rs__host_entry_t *entry) {
    return !entry->fam[RS__FAM_V6].in_flight && !entry->fam[RS__FAM_V4].in_flight && rs_list_empty(&entry->waiters);
}

/* Take a host out of the cache: freed now, or when its running jobs end. */
static void rs__resolver_drop_entry(rs_host_resolver_t *r, rs__host_entry_t *entry) {
    rs__resolver_unhash(r, entry);
    if (rs__entry_idle(entry)) {
        rs_mem_free(&r->allocator, entry);
        return;
    }
    entry->detached = true;
    rs_list_push_back(&r->detached, &entry->lru_node);
}

static rs__host_entry_t *rs__resolver_insert(rs_host_resolver_t *r, const char *folded, size_t len, uint32_t hash) {
    rs__host_entry_t *entry = (rs__host_entry_t *)rs_mem_calloc(&r->allocator, 1, sizeof(rs__host_entry_t));
    int f;
    if (!entry) {
        return NULL;
    }
    if (r->host_count >= r->max_entries) {
        rs__host_entry_t *lru = RS_CONTAINER_OF(r->lru.sentinel.prev, rs__host_entry_t, lru_node);
        RS__LOG_DEBUG(RS_LS_DNS, "cache full (%u hosts): evicting '%s'", (unsigned)r->host_count, lru->name);
        rs__resolver_drop_entry(r, lru);
    }
    memcpy(entry->name, folded, len + 1);
    entry->name_len = len;
    entry->hash = hash;
    rs_list_init(&entry->waiters);
    for (f = 0; f < RS__FAM_COUNT; ++f) {
        entry->fam[f].job.entry = entry;
        entry->fam[f].job.family = f;
    }
    entry->hash_next = r->buckets[hash & r->bucket_mask];
    r->buckets[hash & r->bucket_mask] = entry;
    rs_list_push_front(&r->lru, &entry->lru_node);
    ++r->host_count;
    return entry;
}

static bool rs__records_fresh(const rs_host_resolver_t *r, const rs__host_records_t *rec, uint64_t now) {
    return rec->answered && now - rec->fetched_ns < r->ttl_ns;
}

/* Records past max_stale are forgotten, failure marks and all. */
static bool rs__records_usable(const rs_host_resolver_t *r, rs__host_records_t *rec, uint64_t now) {
    if (rec->answered && now - rec->fetched_ns >= r->max_stale_ns && now - rec->fetched_ns >= r->ttl_ns) {
        rec->answered = false;
        rec->count = 0;
    }
    return rec->answered;
}

/* A family's cached answer, healthy addresses first; a failure mark counts only
 * while the record is fresh. */
static void rs__records_copy_out(const rs_host_resolver_t *r, const rs__host_records_t *rec, uint64_t now,
                                 rs__family_result_t *out) {
    bool fresh = rs__records_fresh(r, rec, now);
    size_t n = 0;
    int pass;
    size_t i;
    for (pass = 0; pass < 2; ++pass) {
        for (i = 0; i < rec->count; ++i) {
            bool failed = fresh && rec->addrs[i].failed;
            if (failed == (pass == 1)) {
                out->addrs[n] = rec->addrs[i];
                out->addrs[n].failed = failed;
                ++n;
            }
        }
    }
    out->count = n;
    out->error = rec->count > 0 ? RS_OK : rec->error;
    out->done = true;
}

/* ---- delivery ------------------------------------------------------------ */

static void rs__resolver_free(rs_host_resolver_t *r);

/* Drop one reference; the caller holds the lock, which this releases. */
static void rs__resolver_unref_unlock(rs_host_resolver_t *r) {
    bool last = --r->refs == 0;
    rs_mutex_unlock(&r->lock);
    if (last) {
        rs__resolver_free(r);
    }
}

static void rs__record_schedule_locked(rs__resolve_record_t *rec) {
    int err;
    if (rec->scheduled) {
        return;
    }
    rec->scheduled = true;
    err = rs_event_loop_schedule_task_now(rec->loop, &rec->task);
    RESEAU_ASSERT(err == RS_OK);
    (void)err;
}

/* Every family not answered yet ends with RS_ECANCELED, and so does the request. */
static void rs__record_cancel_locked(rs__resolve_record_t *rec) {
    int f;
    rs_list_remove(&rec->node);
    rec->waiting = 0;
    rec->canceled = true;
    for (f = 0; f < RS__FAM_COUNT; ++f) {
        if (!rec->fam[f].done) {
            rec->fam[f].done = true;
            rec->fam[f].error = RS_ECANCELED;
            rec->fam[f].count = 0;
        }
    }
}

/* Interleave the families, IPv6 first, healthy addresses before failed ones
 * (RFC 8305 §4). */
static size_t rs__record_order(const rs__resolve_record_t *rec, rs_endpoint_t *out) {
    size_t n = 0;
    int pass;
    for (pass = 0; pass < 2; ++pass) {
        size_t next[RS__FAM_COUNT] = {0, 0};
        bool more = true;
        while (more) {
            int f;
            more = false;
            for (f = 0; f < RS__FAM_COUNT; ++f) {
                const rs__family_result_t *fr = &rec->fam[f];
                while (next[f] < fr->count && fr->addrs[next[f]].failed != (pass == 1)) {
                    ++next[f];
                }
                if (next[f] < fr->count) {
                    rs__host_addr_to_endpoint(&fr->addrs[next[f]++], f, &out[n++]);
                    more = true;
                }
            }
        }
    }
    return n;
}

/* With no address at all: a temporary or hard failure says more than "not found". */
static int rs__record_error(const rs__resolve_record_t *rec) {
    int f;
    if (rec->canceled) {
        return RS_ECANCELED;
    }
    for (f = 0; f < RS__FAM_COUNT; ++f) {
        if (rec->fam[f].error != RS_OK && rec->fam[f].error != RS_EDNS_NOT_FOUND) {
            return rec->fam[f].error;
        }
    }
    return RS_EDNS_NOT_FOUND;
}

static void rs__record_release(rs__resolve_record_t *rec) {
    rs_host_resolver_t *r = rec->resolver;
    rs_mutex_lock(&r->lock);
    if (r->free_record_count < RS__RESOLVER_FREE_RECORDS_MAX && !r->shutting_down) {
        rs_list_push_back(&r->free_records, &rec->node);
        ++r->free_record_count;
    } else {
        rs_mem_free(&r->allocator, rec);
    }
    rs__resolver_unref_unlock(r);
}

static void rs__record_call_family(rs__resolve_record_t *rec, int f) {
    rs_endpoint_t endpoints[RS_HOST_RESOLVER_MAX_ADDRESSES];
    const rs__family_result_t *fr = &rec->fam[f];
    size_t i;
    for (i = 0; i < fr->count; ++i) {
        rs__host_addr_to_endpoint(&fr->addrs[i], f, &endpoints[i]);
    }
    rec->on_family_resolved(rec->resolver, rec->host_name, fr->count ? RS_OK : fr->error, endpoints, fr->count,
                            rec->user_data);
}

static void rs__record_call_final(rs__resolve_record_t *rec) {
    rs_endpoint_t endpoints[RS__FAM_COUNT * RS_HOST_RESOLVER_MAX_ADDRESSES];
    size_t count = rec->canceled ? 0 : rs__record_order(rec, endpoints);
    rec->on_resolved(rec->resolver, rec->host_name, count ? RS_OK : rs__record_error(rec), endpoints, count,
                     rec->user_data);
}

/* On the request's loop: report what has arrived since the last run. Run
 * CANCELED (the loop is being destroyed), it reports everything at once. */
static void rs__record_deliver_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs__resolve_record_t *rec = (rs__resolve_record_t *)arg;
    rs_host_resolver_t *r = rec->resolver;
    bool family_now[RS__FAM_COUNT];
    bool final_now;
    int f;
    (void)task;
    rs_mutex_lock(&r->lock);
    rec->scheduled = false;
    if (status == RS_TASK_STATUS_CANCELED) {
        rs__record_cancel_locked(rec);
    }
    for (f = 0; f < RS__FAM_COUNT; ++f) {
        family_now[f] = rec->fam[f].done && !rec->fam[f].delivered;
        rec->fam[f].delivered = rec->fam[f].done;
    }
    final_now = rec->fam[RS__FAM_V6].done && rec->fam[RS__FAM_V4].done && !rec->final_delivered;
    rec->final_delivered = rec->final_delivered || final_now;
    rs_mutex_unlock(&r->lock);
    /* Results once marked done are never written again, so they are read unlocked. */
    for (f = 0; f < RS__FAM_COUNT; ++f) {
        if (family_now[f] && rec->on_family_resolved) {
            rs__record_call_family(rec, f);
        }
    }
    if (final_now) {
        rs__record_call_final(rec);
        rs__record_release(rec);
    }
}

static rs__resolve_record_t *rs__record_get_locked(rs_host_resolver_t *r, const rs_host_resolve_request_t *request,
                                                   size_t name_len) {
    rs__resolve_record_t *rec;
    rs_list_node_t *node = rs_list_pop_front(&r->free_records);
    if (node) {
        --r->free_record_count;
        rec = RS_CONTAINER_OF(node, rs__resolve_record_t, node);
    } else {
        rec = (rs__resolve_record_t *)rs_mem_alloc(&r->allocator, sizeof(rs__resolve_record_t));
        if (!rec) {
            return NULL;
        }
    }
    rs_task_init(&rec->task, rs__record_deliver_task, rec, "host_resolved");
    rs_list_node_reset(&rec->node);
    rec->resolver = r;
    rec->loop = request->loop;
    rec->on_resolved = request->on_resolved;
    rec->on_family_resolved = request->on_family_resolved;
    rec->user_data = request->user_data;
    rec->waiting = 0;
    rec->scheduled = false;
    rec->canceled = false;
    rec->final_delivered = false;
    rec->fam[RS__FAM_V6].done = false;
    rec->fam[RS__FAM_V6].delivered = false;
    rec->fam[RS__FAM_V4].done = false;
    rec->fam[RS__FAM_V4].delivered = false;
    memcpy(rec->host_name, request->host_name, name_len + 1);
    ++r->refs;
    return rec;
}

static void rs__record_put_back_locked(rs_host_resolver_t *r, rs__resolve_record_t *rec) {
    rs_list_push_back(&r->free_records, &rec->node);
    ++r->free_record_count;
    --r->refs;
}

/* ---- workers ------------------------------------------------------------- */

/* A job's answer: cached unless the host left the cache, and handed to every
 * request waiting for this family. A failed refresh keeps stale records that
 * are still within max_stale. */
static void rs__resolver_apply_locked(rs_host_resolver_t *r, rs__host_entry_t *entry, int f, int err,
                                      const rs_endpoint_t *found, size_t found_count) {
    rs__host_records_t *rec = &entry->fam[f];
    uint64_t now = rs__resolver_now(r);
    rs__family_result_t fresh;
    rs_list_node_t *node;
    rec->in_flight = false;
    if (err == RS_OK || err == RS_EDNS_NOT_FOUND) {
        rec->count = err == RS_OK ? rs__host_addrs_from_endpoints(rec->addrs, f, found, found_count) : 0;
        rec->error = err;
        rec->answered = true;
        rec->fetched_ns = now;
    }
    if (rs__records_usable(r, rec, now)) {
        rs__records_copy_out(r, rec, now, &fresh);
    } else {
        fresh.done = true;
        fresh.count = 0;
        fresh.error = err;
    }
    for (node = rs_list_begin(&entry->waiters); node != rs_list_end(&entry->waiters);) {
        rs__resolve_record_t *req = RS_CONTAINER_OF(node, rs__resolve_record_t, node);
        node = node->next;
        if (!(req->waiting & (1 << f))) {
            continue;
        }
        req->fam[f].done = true;
        req->fam[f].error = fresh.error;
        req->fam[f].count = fresh.count;
        memcpy(req->fam[f].addrs, fresh.addrs, fresh.count * sizeof(fresh.addrs[0]));
        req->waiting &= ~(1 << f);
        if (!req->waiting) {
            rs_list_remove(&req->node);
        }
        rs__record_schedule_locked(req);
    }
    if (entry->detached && rs__entry_idle(entry)) {
        rs_list_remove(&entry->lru_node);
        rs_mem_free(&r->allocator, entry);
    }
}

static bool rs__entry_has_waiters_for(rs__host_entry_t *entry, int f) {
    rs_list_node_t *node;
    for (node = rs_list_begin(&entry->waiters); node != rs_list_end(&entry->waiters); node = node->next) {
        if (RS_CONTAINER_OF(node, rs__resolve_record_t, node)->waiting & (1 << f)) {
            return true;
        }
    }
    return false;
}

static void rs__resolver_log_result(const char *name, int f, int err, size_t count) {
    if (err == RS_OK) {
        RS__LOG_DEBUG(RS_LS_DNS, "'%s' %s: %u addresses", name, f == RS__FAM_V6 ? "AAAA" : "A", (unsigned)count);
    } else {
        RS__LOG_DEBUG(RS_LS_DNS, "'%s' %s: %s", name, f == RS__FAM_V6 ? "AAAA" : "A", rs_err_name(err));
    }
}

static void rs__resolver_worker_main(void *arg) {
    rs_host_resolver_t *r = (rs_host_resolver_t *)arg;
    rs_endpoint_t found[RS_HOST_RESOLVER_MAX_ADDRESSES];
    char name[RS__HOST_NAME_BUF];
    rs_mutex_lock(&r->lock);
    for (;;) {
        rs__resolver_job_t *job;
        size_t count = 0;
        int err;
        while (!r->shutting_down && rs_list_empty(&r->jobs)) {
            rs_condvar_wait(&r->work_cond, &r->lock);
        }
        if (r->shutting_down) {
            break;
        }
        job = RS_CONTAINER_OF(rs_list_pop_front(&r->jobs), rs__resolver_job_t, node);
        if (job->entry->detached && !rs__entry_has_waiters_for(job->entry, job->family)) {
            /* Nobody needs the answer and it would not be cached. */
            rs__resolver_apply_locked(r, job->entry, job->family, RS_ECANCELED, NULL, 0);
            continue;
        }
        memcpy(name, job->entry->name, job->entry->name_len + 1);
        rs_mutex_unlock(&r->lock);
        err = r->resolve_fn(name, rs__fam_domain[job->family], found, RS_HOST_RESOLVER_MAX_ADDRESSES, &count,
                            r->resolve_user_data);
        if (count > RS_HOST_RESOLVER_MAX_ADDRESSES || err != RS_OK) {
            count = err != RS_OK ? 0 : RS_HOST_RESOLVER_MAX_ADDRESSES;
        }
        rs__resolver_log_result(name, job->family, err, count);
        rs_mutex_lock(&r->lock);
        if (r->shutting_down) {
            break; /* the requests were canceled; the entry goes with the resolver */
        }
        rs__resolver_apply_locked(r, job->entry, job->family, err, found, count);
    }
    rs__resolver_unref_unlock(r);
}

/* Start every worker on the first job. At least one must run. */
static int rs__resolver_launch_workers_locked(rs_host_resolver_t *r) {
    rs_thread_options_t options;
    size_t started = 0;
    size_t i;
    if (r->workers_launched) {
        return RS_OK;
    }
    options.name = "rs-resolver";
    options.stack_size = 0;
    for (i = 0; i < r->worker_count; ++i) {
        if (rs_thread_launch(&r->workers[i], rs__resolver_worker_main, r, &options) != RS_OK) {
            continue;
        }
        ++r->refs; /* joined by whoever frees the resolver (rs__resolver_reap_workers) */
        ++started;
    }
    if (started == 0) {
        return RS_ETHREAD;
    }
    r->workers_launched = true;
    return RS_OK;
}

/* ---- getaddrinfo --------------------------------------------------------- */

/* The one part that differs between the OSes: what getaddrinfo's error
 * codes mean, and what it needs first. POSIX returns EAI_* codes. Windows
 * returns Winsock error codes (ws2tcpip.h's EAI_* are aliases of them), and
 * needs WSAStartup, which the socket layer does once per process. Each OS's
 * codes map to the same results: no such name, or no records of the family
 * asked for, is RS_EDNS_NOT_FOUND; a temporary failure RS_EDNS_TRY_AGAIN; no
 * memory RS_ENOMEM; anything else (an unsupported family included)
 * RS_EDNS_FAILED. */
#if RESEAU_OS_WINDOWS
static int rs__gai_error_result(int gai_err) {
    switch (gai_err) {
    case WSAHOST_NOT_FOUND: /* EAI_NONAME, and EAI_NODATA */
    case WSANO_DATA:        /* the name exists, without records of that family */
        return RS_EDNS_NOT_FOUND;
    case WSATRY_AGAIN: /* EAI_AGAIN */
        return RS_EDNS_TRY_AGAIN;
    case WSA_NOT_ENOUGH_MEMORY: /* EAI_MEMORY */
        return RS_ENOMEM;
    default: /* WSAEAFNOSUPPORT (EAI_FAMILY), WSANO_RECOVERY (EAI_FAIL), ... */
        return RS_EDNS_FAILED;
    }
}

static void rs__gai_log(int gai_err, const char *name, int result) {
    /* Not gai_strerror: on Windows it formats into one static buffer, which
     * two workers would share. */
    RS__LOG(result == RS_EDNS_NOT_FOUND ? RS_LOG_LEVEL_DEBUG : RS_LOG_LEVEL_WARN, RS_LS_DNS,
            "getaddrinfo('%s'): Winsock error %d -> %s", name, gai_err, rs_err_name(result));
}

/* Before the first lookup (>>socket_win.c starts Winsock once per process). */
static int rs__resolver_os_init(void) {
    rs_once(&rs__wsa_once, rs__wsa_startup, NULL);
    return rs__wsa_startup_result;
}
#else
static int rs__gai_error_result(int gai_err) {
    switch (gai_err) {
    case EAI_NONAME:
#if defined(EAI_NODATA) && EAI_NODATA != EAI_NONAME
    case EAI_NODATA:
#endif
#if defined(EAI_ADDRFAMILY)
    case EAI_ADDRFAMILY:
#endif
        return RS_EDNS_NOT_FOUND;
    case EAI_AGAIN:
        return RS_EDNS_TRY_AGAIN;
    case EAI_MEMORY:
        return RS_ENOMEM;
    default:
        return RS_EDNS_FAILED;
    }
}

static void rs__gai_log(int gai_err, const char *name, int result) {
    int saved_errno = errno;
    RS__LOG(result == RS_EDNS_NOT_FOUND ? RS_LOG_LEVEL_DEBUG : RS_LOG_LEVEL_WARN, RS_LS_DNS,
            "getaddrinfo('%s'): %s%s%s -> %s", name, gai_strerror(gai_err), gai_err == EAI_SYSTEM ? ": " : "",
            gai_err == EAI_SYSTEM ? strerror(saved_errno) : "", rs_err_name(result));
}

static int rs__resolver_os_init(void) {
    return RS_OK;
}
#endif

static int rs__gai_result(int gai_err, const char *name) {
    int result = rs__gai_error_result(gai_err);
    rs__gai_log(gai_err, name, result);
    return result;
}

/* The default lookup. No AI_ADDRCONFIG: it would hide ::1 for "localhost" on a
 * host without a global IPv6 address; a family that cannot connect fails fast
 * instead. Duplicates (one per protocol in some libcs) are dropped. */
static int rs__resolver_getaddrinfo(const char *host_name, rs_socket_domain_t family, rs_endpoint_t *addresses_out,
                                    size_t capacity, size_t *count_out, void *user_data) {
    struct addrinfo hints;
    struct addrinfo *list = NULL;
    struct addrinfo *ai;
    size_t n = 0;
    int gai_err;
    (void)user_data;
    *count_out = 0;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family == RS_SOCKET_DOMAIN_IPV6 ? AF_INET6 : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    gai_err = getaddrinfo(host_name, NULL, &hints, &list);
    if (gai_err != 0) {
        return rs__gai_result(gai_err, host_name);
    }
    for (ai = list; ai && n < capacity; ai = ai->ai_next) {
        size_t i;
        if (!ai->ai_addr || rs_endpoint_from_sockaddr(&addresses_out[n], ai->ai_addr, (size_t)ai->ai_addrlen) != RS_OK ||
            addresses_out[n].domain != family) {
            continue;
        }
        addresses_out[n].port = 0;
        for (i = 0; i < n && !rs_endpoint_equal(&addresses_out[i], &addresses_out[n]); ++i) {
        }
        n += i == n ? 1 : 0;
    }
    freeaddrinfo(list);
    *count_out = n;
    return RS_OK;
}

/* ---- lifetime ------------------------------------------------------------ */

static void rs__resolver_free_entries(rs_host_resolver_t *r, rs_list_t *list) {
    rs_list_node_t *node;
    while ((node = rs_list_pop_front(list)) != NULL) {
        rs_mem_free(&r->allocator, RS_CONTAINER_OF(node, rs__host_entry_t, lru_node));
    }
}

/* Every worker has dropped its reference and is returning: join them, so that
 * none runs on after on_shutdown_complete. The last worker, if it is the one
 * freeing, cannot join itself and detaches instead; it returns right after. */
static void rs__resolver_reap_workers(rs_host_resolver_t *r) {
    size_t i;
    for (i = 0; i < r->worker_count; ++i) {
        if (r->workers[i].joinable && rs_thread_join(&r->workers[i]) == RS_EDEADLK) {
            rs__thread_detach(&r->workers[i]);
        }
    }
}

static void rs__resolver_free(rs_host_resolver_t *r) {
    rs_allocator_t allocator = r->allocator;
    rs_host_resolver_shutdown_fn *on_shutdown = r->on_shutdown_complete;
    void *shutdown_user_data = r->shutdown_user_data;
    rs_list_node_t *node;
    rs__resolver_reap_workers(r);
    rs__resolver_free_entries(r, &r->lru);
    rs__resolver_free_entries(r, &r->detached);
    while ((node = rs_list_pop_front(&r->free_records)) != NULL) {
        rs_mem_free(&allocator, RS_CONTAINER_OF(node, rs__resolve_record_t, node));
    }
    rs_mem_free(&allocator, r->buckets);
    rs_mem_free(&allocator, r->workers);
    rs_condvar_cleanup(&r->work_cond);
    rs_mutex_cleanup(&r->lock);
    rs_mem_free(&allocator, r);
    if (on_shutdown) {
        on_shutdown(shutdown_user_data);
    }
}

/* The one place rs_host_resolver_options_t defaults are applied. */
static void rs__resolver_apply_options(rs_host_resolver_t *r, const rs_host_resolver_options_t *o) {
    uint64_t ttl_ms = o->ttl_ms ? o->ttl_ms : RS__RESOLVER_DEFAULT_TTL_MS;
    r->max_entries = o->max_entries ? o->max_entries : RS__RESOLVER_DEFAULT_MAX_ENTRIES;
    r->ttl_ns = ttl_ms * RS_NS_PER_MS;
    r->max_stale_ns = (o->max_stale_ms ? (uint64_t)o->max_stale_ms : 2 * ttl_ms) * RS_NS_PER_MS;
    r->worker_count = o->worker_count ? o->worker_count : RS__RESOLVER_DEFAULT_WORKERS;
    r->resolve_fn = o->resolve_fn ? o->resolve_fn : rs__resolver_getaddrinfo;
    r->resolve_user_data = o->resolve_user_data;
    r->clock_fn = o->clock_fn;
    r->clock_user_data = o->clock_user_data;
    r->on_shutdown_complete = o->on_shutdown_complete;
    r->shutdown_user_data = o->shutdown_user_data;
}

static size_t rs__resolver_bucket_count(size_t max_entries) {
    size_t n = 16;
    while (n < max_entries && n < RS__RESOLVER_MAX_BUCKETS) {
        n <<= 1;
    }
    return n;
}

RESEAU_API rs_host_resolver_t *rs_host_resolver_new(const rs_host_resolver_options_t *options, int *err_out) {
    rs_host_resolver_options_t o;
    rs_allocator_t allocator;
    rs_host_resolver_t *r;
    size_t buckets;
    int err = RS_ENOMEM;
    memset(&o, 0, sizeof(o));
    if (options) {
        o = *options;
    }
    allocator = rs__allocator_copy(o.allocator);
    r = (rs_host_resolver_t *)rs_mem_calloc(&allocator, 1, sizeof(rs_host_resolver_t));
    if (!r) {
        goto fail;
    }
    r->allocator = allocator;
    rs__resolver_apply_options(r, &o);
    buckets = rs__resolver_bucket_count(r->max_entries);
    r->bucket_mask = buckets - 1;
    r->buckets = (rs__host_entry_t **)rs_mem_calloc(&allocator, buckets, sizeof(rs__host_entry_t *));
    r->workers = (rs_thread_t *)rs_mem_calloc(&allocator, r->worker_count, sizeof(rs_thread_t));
    if (!r->buckets || !r->workers) {
        goto fail;
    }
    err = r->resolve_fn == rs__resolver_getaddrinfo ? rs__resolver_os_init() : RS_OK;
    if (err) {
        goto fail;
    }
    err = rs_mutex_init(&r->lock);
    if (err) {
        goto fail;
    }
    err = rs_condvar_init(&r->work_cond);
    if (err) {
        rs_mutex_cleanup(&r->lock);
        goto fail;
    }
    r->refs = 1;
    rs_list_init(&r->jobs);
    rs_list_init(&r->lru);
    rs_list_init(&r->detached);
    rs_list_init(&r->free_records);
    rs__set_err(err_out, RS_OK);
    return r;
fail:
    if (r) {
        rs_mem_free(&allocator, r->buckets);
        rs_mem_free(&allocator, r->workers);
        rs_mem_free(&allocator, r);
    }
    rs__set_err(err_out, err);
    return NULL;
}

static void rs__resolver_cancel_waiters_locked(rs_list_t *entries) {
    rs_list_node_t *node;
    for (node = rs_list_begin(entries); node != rs_list_end(entries); node = node->next) {
        rs__host_entry_t *entry = RS_CONTAINER_OF(node, rs__host_entry_t, lru_node);
        rs_list_node_t *w;
        while ((w = rs_list_pop_front(&entry->waiters)) != NULL) {
            rs__resolve_record_t *rec = RS_CONTAINER_OF(w, rs__resolve_record_t, node);
            rs__record_cancel_locked(rec);
            rs__record_schedule_locked(rec);
        }
    }
}

RESEAU_API void rs_host_resolver_destroy(rs_host_resolver_t *resolver) {
    if (!resolver) {
        return;
    }
    rs_mutex_lock(&resolver->lock);
    if (resolver->shutting_down) {
        rs_mutex_unlock(&resolver->lock);
        return;
    }
    resolver->shutting_down = true;
    rs__resolver_cancel_waiters_locked(&resolver->lru);
    rs__resolver_cancel_waiters_locked(&resolver->detached);
    rs_condvar_broadcast(&resolver->work_cond);
    rs__resolver_unref_unlock(resolver);
}

/* ---- resolve ------------------------------------------------------------- */

/* "localhost" and names under it (any case, optional trailing dot). RFC 6761
 * §6.3 lets resolvers answer these with loopback themselves: no lookup, so no
 * DNS query leaves the host, and no dependence on /etc/hosts (a fresh root
 * has none). */
static bool rs__is_localhost_name(const char *name) {
    static const char suffix[] = "localhost";
    size_t n = strlen(name);
    size_t k = sizeof(suffix) - 1;
    size_t i;
    if (n && name[n - 1] == '.') {
        --n;
    }
    if (n < k || (n > k && name[n - k - 1] != '.')) {
        return false;
    }
    for (i = 0; i < k; ++i) {
        char c = name[n - k + i];
        if ((c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c) != suffix[i]) {
            return false;
        }
    }
    return true;
}

/* A literal address: that family answers with it, the other with nothing; a
 * localhost name: ::1 and 127.0.0.1. */
static bool rs__resolve_literal(const char *name, rs__resolve_record_t *rec) {
    rs__host_addr_t addr;
    int family;
    memset(&addr, 0, sizeof(addr));
    if (rs_ipv4_parse(name, addr.addr) == RS_OK) {
        family = RS__FAM_V4;
    } else if (strchr(name, ':') && rs_ipv6_parse(name, addr.addr, &addr.scope_id) == RS_OK) {
        family = RS__FAM_V6;
    } else if (rs__is_localhost_name(name)) {
        memset(&rec->fam[RS__FAM_V6].addrs[0], 0, sizeof(addr));
        rec->fam[RS__FAM_V6].addrs[0].addr[15] = 1;
        rec->fam[RS__FAM_V4].addrs[0] = addr;
        rec->fam[RS__FAM_V4].addrs[0].addr[0] = 127;
        rec->fam[RS__FAM_V4].addrs[0].addr[3] = 1;
        rec->fam[RS__FAM_V6].count = 1;
        rec->fam[RS__FAM_V4].count = 1;
        family = -1;
    } else {
        return false;
    }
    if (family >= 0) {
        rec->fam[family].addrs[0] = addr;
        rec->fam[family].count = 1;
        rec->fam[!family].count = 0;
    }
    rec->fam[RS__FAM_V6].error = RS_OK;
    rec->fam[RS__FAM_V4].error = RS_OK;
    rec->fam[RS__FAM_V6].done = true;
    rec->fam[RS__FAM_V4].done = true;
    return true;
}

/* Answer each family from the cache (starting a refresh for stale records)
 * or queue a job; the record then waits on the entry for what is missing. */
static int rs__resolve_from_cache_locked(rs_host_resolver_t *r, rs__host_entry_t *entry, rs__resolve_record_t *rec) {
    uint64_t now = rs__resolver_now(r);
    bool need_job[RS__FAM_COUNT];
    int f;
    for (f = 0; f < RS__FAM_COUNT; ++f) {
        rs__host_records_t *cached = &entry->fam[f];
        bool usable = rs__records_usable(r, cached, now);
        need_job[f] = !cached->in_flight && !rs__records_fresh(r, cached, now);
        if (usable) {
            rs__records_copy_out(r, cached, now, &rec->fam[f]);
        } else {
            rec->waiting |= 1 << f;
        }
    }
    if ((need_job[RS__FAM_V6] || need_job[RS__FAM_V4]) && rs__resolver_launch_workers_locked(r) != RS_OK) {
        rec->waiting = 0;
        return RS_ETHREAD;
    }
    for (f = 0; f < RS__FAM_COUNT; ++f) {
        if (need_job[f]) {
            entry->fam[f].in_flight = true;
            rs_list_push_back(&r->jobs, &entry->fam[f].job.node);
            rs_condvar_signal(&r->work_cond);
        }
    }
    if (rec->waiting) {
        rs_list_push_back(&entry->waiters, &rec->node);
    }
    return RS_OK;
}

static int rs__resolve_locked(rs_host_resolver_t *r, const rs_host_resolve_request_t *request, size_t len) {
    char folded[RS__HOST_NAME_BUF];
    uint32_t hash;
    rs__host_entry_t *entry;
    rs__resolve_record_t *rec;
    int err;
    if (r->shutting_down) {
        return RS_ESHUTDOWN;
    }
    rec = rs__record_get_locked(r, request, len);
    if (!rec) {
        return RS_ENOMEM;
    }
    if (!rs__resolve_literal(request->host_name, rec)) {
        hash = rs__host_name_fold(request->host_name, len, folded);
        entry = rs__resolver_find(r, folded, len, hash);
        if (entry) {
            rs_list_remove(&entry->lru_node);
            rs_list_push_front(&r->lru, &entry->lru_node);
        } else {
            entry = rs__resolver_insert(r, folded, len, hash);
        }
        err = entry ? rs__resolve_from_cache_locked(r, entry, rec) : RS_ENOMEM;
        if (err) {
            rs__record_put_back_locked(r, rec);
            return err;
        }
    }
    if (rec->fam[RS__FAM_V6].done || rec->fam[RS__FAM_V4].done) {
        rs__record_schedule_locked(rec);
    }
    return RS_OK;
}

RESEAU_API int rs_host_resolver_resolve(rs_host_resolver_t *resolver, const rs_host_resolve_request_t *request) {
    size_t len;
    int err;
    if (!resolver || !request || !request->host_name || !request->loop || !request->on_resolved) {
        return RS_EINVAL;
    }
    err = rs__host_name_check(request->host_name, &len);
    if (err) {
        RS__LOG_DEBUG(RS_LS_DNS, "rejected host name of %u bytes", (unsigned)strlen(request->host_name));
        return err;
    }
    rs_mutex_lock(&resolver->lock);
    err = rs__resolve_locked(resolver, request, len);
    rs_mutex_unlock(&resolver->lock);
    return err;
}

/* ---- failures, purge, counts --------------------------------------------- */

/* Set or clear the failure mark of `address` in every cached host that has it. */
static int rs__resolver_mark(rs_host_resolver_t *r, const rs_endpoint_t *address, bool failed) {
    bool found = false;
    rs_list_node_t *node;
    size_t i;
    int f;
    if (!r || !address || (address->domain != RS_SOCKET_DOMAIN_IPV4 && address->domain != RS_SOCKET_DOMAIN_IPV6)) {
        return RS_EINVAL;
    }
    f = address->domain == RS_SOCKET_DOMAIN_IPV6 ? RS__FAM_V6 : RS__FAM_V4;
    rs_mutex_lock(&r->lock);
    for (node = rs_list_begin(&r->lru); node != rs_list_end(&r->lru); node = node->next) {
        rs__host_records_t *rec = &RS_CONTAINER_OF(node, rs__host_entry_t, lru_node)->fam[f];
        for (i = 0; i < rec->count; ++i) {
            if (rs__host_addr_matches(&rec->addrs[i], address, f)) {
                rec->addrs[i].failed = failed;
                found = true;
            }
        }
    }
    rs_mutex_unlock(&r->lock);
    return found ? RS_OK : RS_ENOENT;
}

RESEAU_API int rs_host_resolver_record_connection_failure(rs_host_resolver_t *resolver,
                                                          const rs_endpoint_t *address) {
    return rs__resolver_mark(resolver, address, true);
}

RESEAU_API int rs_host_resolver_record_connection_success(rs_host_resolver_t *resolver,
                                                          const rs_endpoint_t *address) {
    return rs__resolver_mark(resolver, address, false);
}

static void rs__purge_notice_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs__purge_notice_t *notice = (rs__purge_notice_t *)arg;
    rs_host_resolver_t *r = notice->resolver;
    (void)task;
    (void)status; /* canceled by the loop's destroy: still the one notice */
    notice->on_purged(r, notice->user_data);
    rs_mutex_lock(&r->lock);
    rs_mem_free(&r->allocator, notice);
    rs__resolver_unref_unlock(r);
}

/* host_name NULL purges every host. */
static int rs__resolver_purge(rs_host_resolver_t *r, const char *host_name, rs_event_loop_t *loop,
                              rs_host_resolver_purged_fn *on_purged, void *user_data) {
    rs__purge_notice_t *notice = NULL;
    char folded[RS__HOST_NAME_BUF];
    rs__host_entry_t *entry = NULL;
    size_t len = 0;
    int err = RS_OK;
    if (!r || (on_purged && !loop) || (host_name && rs__host_name_check(host_name, &len) != RS_OK)) {
        return RS_EINVAL;
    }
    rs_mutex_lock(&r->lock);
    if (host_name) {
        uint32_t hash = rs__host_name_fold(host_name, len, folded);
        entry = rs__resolver_find(r, folded, len, hash);
        err = entry ? RS_OK : RS_ENOENT;
    }
    if (!err && on_purged) {
        notice = (rs__purge_notice_t *)rs_mem_alloc(&r->allocator, sizeof(rs__purge_notice_t));
        err = notice ? RS_OK : RS_ENOMEM;
    }
    if (err) {
        rs_mutex_unlock(&r->lock);
        return err;
    }
    if (entry) {
        rs__resolver_drop_entry(r, entry);
    }
    while (!host_name && !rs_list_empty(&r->lru)) {
        rs__resolver_drop_entry(r, RS_CONTAINER_OF(rs_list_begin(&r->lru), rs__host_entry_t, lru_node));
    }
    if (notice) {
        rs_task_init(&notice->task, rs__purge_notice_task, notice, "host_purged");
        notice->resolver = r;
        notice->on_purged = on_purged;
        notice->user_data = user_data;
        ++r->refs;
        err = rs_event_loop_schedule_task_now(loop, &notice->task);
        RESEAU_ASSERT(err == RS_OK);
    }
    rs_mutex_unlock(&r->lock);
    return RS_OK;
}

RESEAU_API int rs_host_resolver_purge_host(rs_host_resolver_t *resolver, const char *host_name, rs_event_loop_t *loop,
                                           rs_host_resolver_purged_fn *on_purged, void *user_data) {
    if (!host_name) {
        return RS_EINVAL;
    }
    return rs__resolver_purge(resolver, host_name, loop, on_purged, user_data);
}

RESEAU_API int rs_host_resolver_purge_all(rs_host_resolver_t *resolver, rs_event_loop_t *loop,
                                          rs_host_resolver_purged_fn *on_purged, void *user_data) {
    return rs__resolver_purge(resolver, NULL, loop, on_purged, user_data);
}

RESEAU_API size_t rs_host_resolver_get_address_count(rs_host_resolver_t *resolver, const char *host_name,
                                                     int families) {
    char folded[RS__HOST_NAME_BUF];
    rs__host_entry_t *entry;
    size_t len;
    size_t count = 0;
    uint32_t hash;
    uint64_t now;
    if (!resolver || !host_name || rs__host_name_check(host_name, &len) != RS_OK) {
        return 0;
    }
    hash = rs__host_name_fold(host_name, len, folded);
    rs_mutex_lock(&resolver->lock);
    entry = rs__resolver_find(resolver, folded, len, hash);
    now = rs__resolver_now(resolver);
    if (entry && (families & RS_HOST_FAMILY_IPV6) && rs__records_usable(resolver, &entry->fam[RS__FAM_V6], now)) {
        count += entry->fam[RS__FAM_V6].count;
    }
    if (entry && (families & RS_HOST_FAMILY_IPV4) && rs__records_usable(resolver, &entry->fam[RS__FAM_V4], now)) {
        count += entry->fam[RS__FAM_V4].count;
    }
    rs_mutex_unlock(&resolver->lock);
    return count;
}
