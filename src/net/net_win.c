/*
 * Windows: what of the transport layer is not ported yet (issue 13). TCP
 * sockets are (>>socket_win.c); UDP, named pipes and the resolver are not:
 * rs_socket_new refuses DGRAM sockets, and the pipe and resolver
 * constructors return RS_ENOTSUP, so no datagram socket, pipe end or
 * resolver ever exists here. The datagram calls below can therefore only be
 * given NULL or a stream socket, and both are RS_EINVAL, as the API says; the
 * other calls answer as for a NULL handle (RS_EINVAL, nothing done, 0).
 */
#if RESEAU_OS_WINDOWS

static void rs__net_win_set_err(int *err_out, int err) {
    if (err_out) {
        *err_out = err;
    }
}

/* ---- datagram sockets ---------------------------------------------------- */

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
