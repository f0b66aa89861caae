/*
 * Host resolver: names to addresses, with a cache.
 *
 * A per-host cache of A and AAAA records, each kept for ttl_ms, and at most
 * max_entries hosts (least recently used hosts are evicted whole). Lookups
 * run on a small pool of worker threads (created on first use, never one per
 * host), through getaddrinfo or a user-supplied resolve function, with the
 * AAAA and A queries as separate jobs so that a caller can start on the first
 * answer. Literal IPv4/IPv6 addresses and cached names never reach a worker,
 * and neither do "localhost" and names under it, which are answered with ::1
 * and 127.0.0.1 (RFC 6761 §6.3: no DNS query, no dependence on /etc/hosts).
 * Records past their TTL are still served while a background refresh runs; a
 * refresh that fails keeps serving them until they are max_stale_ms old.
 * Addresses whose connections failed (rs_host_resolver_record_connection_failure)
 * go after healthy ones until they connect again or their record expires.
 *
 * Threads: every function here may be called from any thread. Callbacks run
 * on the loop named in the request, never inside the call that made it.
 * Ownership: the resolver is reference-counted internally; rs_host_resolver_destroy
 * returns at once, completes every request still pending with RS_ECANCELED on
 * its loop, and the memory is released once the workers have returned from the
 * lookups they were in (options.on_shutdown_complete says when). By then every
 * worker thread has been joined, except the one calling on_shutdown_complete,
 * if it is a worker, which only returns afterwards.
 */
typedef struct rs_host_resolver rs_host_resolver_t;

/* Most addresses kept per host and family; further answers are dropped. Happy
 * Eyeballs tries a handful, and a bound keeps cache entries and requests
 * allocation-free once created. */
#define RS_HOST_RESOLVER_MAX_ADDRESSES 16

/* A blocking lookup of one family (RS_SOCKET_DOMAIN_IPV4 or _IPV6), run on a
 * worker thread. Fill at most `capacity` endpoints (port 0) in preference
 * order and set *count_out. Return RS_OK (count 0 means "no records of this
 * family"), RS_EDNS_NOT_FOUND, RS_EDNS_TRY_AGAIN, RS_EDNS_FAILED or RS_ENOMEM. */
typedef int rs_host_resolve_fn(const char *host_name, rs_socket_domain_t family, rs_endpoint_t *addresses_out,
                               size_t capacity, size_t *count_out, void *user_data);

typedef void rs_host_resolver_shutdown_fn(void *user_data);

typedef struct rs_host_resolver_options {
    const rs_allocator_t *allocator;  /* copied (default: NULL, libc) */
    size_t max_entries;               /* hosts kept in the cache (default: 0, meaning 1024) */
    uint32_t ttl_ms;                  /* how long records are fresh (default: 0, meaning 30000) */
    uint32_t max_stale_ms;            /* longest a record is served while refreshes fail (default: 0, 2 x ttl) */
    uint32_t worker_count;            /* lookup threads, started on first use (default: 0, meaning 2) */
    rs_host_resolve_fn *resolve_fn;   /* replaces getaddrinfo (default: NULL, getaddrinfo) */
    void *resolve_user_data;          /* for resolve_fn (default: NULL) */
    rs_clock_fn *clock_fn;            /* time source for TTLs (default: NULL, rs_clock_now_ns) */
    void *clock_user_data;            /* for clock_fn (default: NULL) */
    rs_host_resolver_shutdown_fn *on_shutdown_complete; /* after destroy, once everything is released;
                                                           on whichever thread releases last (default: NULL) */
    void *shutdown_user_data;         /* for on_shutdown_complete (default: NULL) */
} rs_host_resolver_options_t;

/* Addresses for one request, in connection order: healthy before failed, and
 * within each group IPv6 and IPv4 interleaved, IPv6 first (RFC 8305 §4). Valid
 * only during the callback. error is RS_OK with count > 0, or the error. */
typedef void rs_host_resolved_fn(rs_host_resolver_t *resolver, const char *host_name, int error,
                                 const rs_endpoint_t *addresses, size_t count, void *user_data);

typedef struct rs_host_resolve_request {
    const char *host_name;            /* copied; a literal address is answered without a lookup (required) */
    rs_event_loop_t *loop;            /* callbacks run on this loop's thread (required) */
    rs_host_resolved_fn *on_resolved; /* exactly once: every address found, or the error (required) */
    /* Optional: once per family (IPv6 first when both are ready together), as
     * that family's answer arrives and before on_resolved, with that family's
     * addresses, count 0 or that family's error (RS_ECANCELED if the resolver
     * or loop went first). For Happy Eyeballs: start connecting on the first
     * answer. A literal address reports the other family with count 0. */
    rs_host_resolved_fn *on_family_resolved;
    void *user_data;                  /* for both callbacks */
} rs_host_resolve_request_t;

/* NULL options mean defaults. NULL with *err_out set on failure: RS_ENOMEM, or
 * the error creating its mutex or condvar. Any thread. */
RESEAU_API rs_host_resolver_t *rs_host_resolver_new(const rs_host_resolver_options_t *options, int *err_out);
/* Any thread; see "Ownership" above. NULL does nothing. */
RESEAU_API void rs_host_resolver_destroy(rs_host_resolver_t *resolver);

/* Start a resolution. RS_OK, then the callbacks fire later on request->loop,
 * which must outlive the request (until on_resolved). If the loop is destroyed
 * first, the pending callbacks run there as the loop's destroy cancels the
 * delivery: each family not yet reported and on_resolved get RS_ECANCELED.
 * Errors (no callback fires): RS_EINVAL for a NULL resolver, request, loop or
 * on_resolved, an empty name, a name over 253 bytes or with a label over 63
 * bytes or an empty label ("a..b"); RS_ESHUTDOWN once the resolver is being
 * destroyed; RS_ENOMEM; RS_ETHREAD if a lookup is needed and no worker thread
 * could be started. Results through on_resolved: RS_OK, RS_EDNS_NOT_FOUND
 * (unknown name), RS_EDNS_TRY_AGAIN (temporary failure), RS_EDNS_FAILED (any
 * other resolver failure), RS_ENOMEM, RS_ECANCELED (destroyed first). */
RESEAU_API int rs_host_resolver_resolve(rs_host_resolver_t *resolver, const rs_host_resolve_request_t *request);

/* A connection to `address` (port ignored) failed: put it after the healthy
 * addresses of its host until it connects again (record_connection_success)
 * or its record expires. RS_ENOENT if no cached host has it; RS_EINVAL for a
 * NULL resolver or address, or one not IPv4/IPv6. Any thread. */
RESEAU_API int rs_host_resolver_record_connection_failure(rs_host_resolver_t *resolver, const rs_endpoint_t *address);
RESEAU_API int rs_host_resolver_record_connection_success(rs_host_resolver_t *resolver, const rs_endpoint_t *address);

/* Drop one host's records (RS_ENOENT if not cached) or every host's. on_purged
 * (may be NULL, and then loop may be too) fires once on `loop` when done; it
 * fires even if the loop is destroyed first. Lookups already running are not
 * canceled: requests waiting for them still get their answers, which are not
 * cached. RS_EINVAL for a NULL resolver or name, a bad name, or on_purged
 * without a loop; RS_ENOMEM. */
typedef void rs_host_resolver_purged_fn(rs_host_resolver_t *resolver, void *user_data);
RESEAU_API int rs_host_resolver_purge_host(rs_host_resolver_t *resolver, const char *host_name, rs_event_loop_t *loop,
                                           rs_host_resolver_purged_fn *on_purged, void *user_data);
RESEAU_API int rs_host_resolver_purge_all(rs_host_resolver_t *resolver, rs_event_loop_t *loop,
                                          rs_host_resolver_purged_fn *on_purged, void *user_data);

/* Cached addresses of `host_name` (fresh or stale) of the given families
 * (RS_HOST_FAMILY_* bits). 0 when the host is not cached. */
#define RS_HOST_FAMILY_IPV4 1
#define RS_HOST_FAMILY_IPV6 2
RESEAU_API size_t rs_host_resolver_get_address_count(rs_host_resolver_t *resolver, const char *host_name,
                                                     int families);
