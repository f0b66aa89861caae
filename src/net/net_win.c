/*
 * Windows: the transport layer is not ported yet (issue 13: Winsock sockets
 * on IOCP, named pipes, the resolver). Until it is, the constructors return
 * RS_ENOTSUP, so no socket, pipe end or resolver ever exists here, and every
 * other call can only be given NULL: it answers as the API does for a NULL
 * handle (RS_EINVAL, nothing done, false, 0, -1). Addresses (>>address.c)
 * are plain parsing and work.
 */
#if RESEAU_OS_WINDOWS

static void rs__net_win_set_err(int *err_out, int err) {
    if (err_out) {
        *err_out = err;
    }
}

RESEAU_API int rs_endpoint_from_sockaddr(rs_endpoint_t *out, const void *sockaddr, size_t len) {
    (void)len;
    if (!out || !sockaddr) {
        return RS_EINVAL;
    }
    return RS_ENOTSUP;
}

/* ---- sockets ------------------------------------------------------------- */

RESEAU_API rs_socket_t *rs_socket_new(const rs_socket_options_t *options, int *err_out) {
    (void)options;
    rs__net_win_set_err(err_out, RS_ENOTSUP);
    return NULL;
}

RESEAU_API void rs_socket_destroy(rs_socket_t *socket) {
    (void)socket;
}

RESEAU_API int rs_socket_close(rs_socket_t *socket) {
    (void)socket;
    return RS_EINVAL;
}

RESEAU_API bool rs_socket_is_open(const rs_socket_t *socket) {
    (void)socket;
    return false;
}

RESEAU_API int rs_socket_bind(rs_socket_t *socket, const rs_endpoint_t *local) {
    (void)socket;
    (void)local;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_get_bound_address(const rs_socket_t *socket, rs_endpoint_t *out) {
    (void)socket;
    (void)out;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_get_remote_address(const rs_socket_t *socket, rs_endpoint_t *out) {
    (void)socket;
    (void)out;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_listen(rs_socket_t *socket, int backlog) {
    (void)socket;
    (void)backlog;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_start_accept(rs_socket_t *listener, rs_event_loop_t *loop, rs_socket_on_accept_fn *on_accept,
                                      void *user_data) {
    (void)listener;
    (void)loop;
    (void)on_accept;
    (void)user_data;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_stop_accept(rs_socket_t *listener) {
    (void)listener;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_connect(rs_socket_t *socket, const rs_endpoint_t *remote, rs_event_loop_t *loop,
                                 rs_socket_on_connect_fn *on_connect, void *user_data) {
    (void)socket;
    (void)remote;
    (void)loop;
    (void)on_connect;
    (void)user_data;
    return RS_EINVAL;
}

/* The client bootstrap's hook (see >>socket_posix.c); there is no socket to mark. */
static void rs__socket_skip_connect_timer(rs_socket_t *socket) {
    (void)socket;
}

RESEAU_API int rs_socket_assign_to_loop(rs_socket_t *socket, rs_event_loop_t *loop) {
    (void)socket;
    (void)loop;
    return RS_EINVAL;
}

RESEAU_API rs_event_loop_t *rs_socket_get_loop(const rs_socket_t *socket) {
    (void)socket;
    return NULL;
}

RESEAU_API int rs_socket_subscribe_to_readable_events(rs_socket_t *socket, rs_socket_on_readable_fn *on_readable,
                                                      void *user_data) {
    (void)socket;
    (void)on_readable;
    (void)user_data;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_pause_reading(rs_socket_t *socket) {
    (void)socket;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_resume_reading(rs_socket_t *socket) {
    (void)socket;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_read(rs_socket_t *socket, rs_byte_buf_t *buf, size_t *amount_read) {
    (void)socket;
    (void)buf;
    (void)amount_read;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_readv(rs_socket_t *socket, rs_byte_buf_t *bufs, size_t count, size_t *amount_read) {
    (void)socket;
    (void)bufs;
    (void)count;
    (void)amount_read;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_write(rs_socket_t *socket, rs_byte_cursor_t data, rs_socket_on_write_fn *on_written,
                               void *user_data) {
    (void)socket;
    (void)data;
    (void)on_written;
    (void)user_data;
    return RS_EINVAL;
}

RESEAU_API size_t rs_socket_get_pending_write_bytes(const rs_socket_t *socket) {
    (void)socket;
    return 0;
}

RESEAU_API int rs_socket_shutdown_dir(rs_socket_t *socket, rs_socket_dir_t dir) {
    (void)socket;
    (void)dir;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_get_fd(const rs_socket_t *socket) {
    (void)socket;
    return -1;
}

RESEAU_API int rs_socket_send_to(rs_socket_t *socket, const rs_endpoint_t *destination, rs_byte_cursor_t data) {
    (void)socket;
    (void)destination;
    (void)data;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_send_batch(rs_socket_t *socket, const rs_datagram_t *datagrams, size_t count,
                                    size_t *sent_out) {
    (void)socket;
    (void)datagrams;
    (void)count;
    (void)sent_out;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_recv_from(rs_socket_t *socket, rs_datagram_t *datagram) {
    (void)socket;
    (void)datagram;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_recv_batch(rs_socket_t *socket, rs_datagram_t *datagrams, size_t count,
                                    size_t *received_out) {
    (void)socket;
    (void)datagrams;
    (void)count;
    (void)received_out;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_set_tcp_nodelay(rs_socket_t *socket, bool enabled) {
    (void)socket;
    (void)enabled;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_set_keepalive(rs_socket_t *socket, bool enabled, uint32_t idle_s, uint32_t interval_s,
                                       uint32_t probes) {
    (void)socket;
    (void)enabled;
    (void)idle_s;
    (void)interval_s;
    (void)probes;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_set_ttl(rs_socket_t *socket, uint32_t ttl) {
    (void)socket;
    (void)ttl;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_join_multicast_group(rs_socket_t *socket, const rs_endpoint_t *group,
                                              const rs_endpoint_t *interface_address, uint32_t interface_index) {
    (void)socket;
    (void)group;
    (void)interface_address;
    (void)interface_index;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_leave_multicast_group(rs_socket_t *socket, const rs_endpoint_t *group,
                                               const rs_endpoint_t *interface_address, uint32_t interface_index) {
    (void)socket;
    (void)group;
    (void)interface_address;
    (void)interface_index;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_set_multicast_interface(rs_socket_t *socket, const rs_endpoint_t *interface_address,
                                                 uint32_t interface_index) {
    (void)socket;
    (void)interface_address;
    (void)interface_index;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_set_multicast_loop(rs_socket_t *socket, bool enabled) {
    (void)socket;
    (void)enabled;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_set_multicast_ttl(rs_socket_t *socket, uint32_t ttl) {
    (void)socket;
    (void)ttl;
    return RS_EINVAL;
}

RESEAU_API int rs_socket_set_broadcast(rs_socket_t *socket, bool enabled) {
    (void)socket;
    (void)enabled;
    return RS_EINVAL;
}

/* ---- pipes --------------------------------------------------------------- */

RESEAU_API int rs_pipe_new(rs_event_loop_t *read_loop, rs_event_loop_t *write_loop, const rs_allocator_t *allocator,
                           rs_pipe_read_end_t **read_end_out, rs_pipe_write_end_t **write_end_out) {
    (void)allocator;
    if (read_end_out) {
        *read_end_out = NULL;
    }
    if (write_end_out) {
        *write_end_out = NULL;
    }
    if (!read_loop || !write_loop || !read_end_out || !write_end_out) {
        return RS_EINVAL;
    }
    return RS_ENOTSUP;
}

RESEAU_API int rs_pipe_subscribe_to_readable_events(rs_pipe_read_end_t *read_end, rs_pipe_on_readable_fn *on_readable,
                                                    void *user_data) {
    (void)read_end;
    (void)on_readable;
    (void)user_data;
    return RS_EINVAL;
}

RESEAU_API int rs_pipe_read(rs_pipe_read_end_t *read_end, rs_byte_buf_t *buf, size_t *amount_read) {
    (void)read_end;
    (void)buf;
    (void)amount_read;
    return RS_EINVAL;
}

RESEAU_API void rs_pipe_read_end_destroy(rs_pipe_read_end_t *read_end) {
    (void)read_end;
}

RESEAU_API int rs_pipe_write(rs_pipe_write_end_t *write_end, rs_byte_cursor_t data, rs_pipe_on_write_fn *on_written,
                             void *user_data) {
    (void)write_end;
    (void)data;
    (void)on_written;
    (void)user_data;
    return RS_EINVAL;
}

RESEAU_API void rs_pipe_write_end_destroy(rs_pipe_write_end_t *write_end) {
    (void)write_end;
}

/* ---- resolver ------------------------------------------------------------ */

RESEAU_API rs_host_resolver_t *rs_host_resolver_new(const rs_host_resolver_options_t *options, int *err_out) {
    (void)options;
    rs__net_win_set_err(err_out, RS_ENOTSUP);
    return NULL;
}

RESEAU_API void rs_host_resolver_destroy(rs_host_resolver_t *resolver) {
    (void)resolver;
}

RESEAU_API int rs_host_resolver_resolve(rs_host_resolver_t *resolver, const rs_host_resolve_request_t *request) {
    (void)resolver;
    (void)request;
    return RS_EINVAL;
}

RESEAU_API int rs_host_resolver_record_connection_failure(rs_host_resolver_t *resolver, const rs_endpoint_t *address) {
    (void)resolver;
    (void)address;
    return RS_EINVAL;
}

RESEAU_API int rs_host_resolver_record_connection_success(rs_host_resolver_t *resolver, const rs_endpoint_t *address) {
    (void)resolver;
    (void)address;
    return RS_EINVAL;
}

RESEAU_API int rs_host_resolver_purge_host(rs_host_resolver_t *resolver, const char *host_name, rs_event_loop_t *loop,
                                           rs_host_resolver_purged_fn *on_purged, void *user_data) {
    (void)resolver;
    (void)host_name;
    (void)loop;
    (void)on_purged;
    (void)user_data;
    return RS_EINVAL;
}

RESEAU_API int rs_host_resolver_purge_all(rs_host_resolver_t *resolver, rs_event_loop_t *loop,
                                          rs_host_resolver_purged_fn *on_purged, void *user_data) {
    (void)resolver;
    (void)loop;
    (void)on_purged;
    (void)user_data;
    return RS_EINVAL;
}

RESEAU_API size_t rs_host_resolver_get_address_count(rs_host_resolver_t *resolver, const char *host_name,
                                                     int families) {
    (void)resolver;
    (void)host_name;
    (void)families;
    return 0;
}

#endif /* RESEAU_OS_WINDOWS */
