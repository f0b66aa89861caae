/*
 * Windows: what of the transport layer is not ported yet (issue 13). TCP
 * and UDP sockets are (>>socket_win.c); multicast and broadcast options,
 * named pipes and the resolver are not. The UDP option setters make the
 * checks every setter makes (RS_EINVAL for a NULL or non-UDP socket,
 * RS_EWRONGTHREAD, RS_ESTATE, RS_EBADF) and then return RS_ENOTSUP. The pipe
 * and resolver constructors return RS_ENOTSUP, so no pipe end or resolver
 * ever exists here; the other calls answer as for a NULL handle (RS_EINVAL,
 * nothing done, 0).
 */
#if RESEAU_OS_WINDOWS

static void rs__net_win_set_err(int *err_out, int err) {
    if (err_out) {
        *err_out = err;
    }
}

/* ---- multicast and broadcast on UDP sockets (>>socket_win.c) ---------- */

RESEAU_API int rs_socket_join_multicast_group(rs_socket_t *socket, const rs_endpoint_t *group,
                                              const rs_endpoint_t *interface_address, uint32_t interface_index) {
    (void)group;
    (void)interface_address;
    (void)interface_index;
    return rs__socket_dgram_option_unsupported(socket, "rs_socket_join_multicast_group");
}

RESEAU_API int rs_socket_leave_multicast_group(rs_socket_t *socket, const rs_endpoint_t *group,
                                               const rs_endpoint_t *interface_address, uint32_t interface_index) {
    (void)group;
    (void)interface_address;
    (void)interface_index;
    return rs__socket_dgram_option_unsupported(socket, "rs_socket_leave_multicast_group");
}

RESEAU_API int rs_socket_set_multicast_interface(rs_socket_t *socket, const rs_endpoint_t *interface_address,
                                                 uint32_t interface_index) {
    (void)interface_address;
    (void)interface_index;
    return rs__socket_dgram_option_unsupported(socket, "rs_socket_set_multicast_interface");
}

RESEAU_API int rs_socket_set_multicast_loop(rs_socket_t *socket, bool enabled) {
    (void)enabled;
    return rs__socket_dgram_option_unsupported(socket, "rs_socket_set_multicast_loop");
}

RESEAU_API int rs_socket_set_multicast_ttl(rs_socket_t *socket, uint32_t ttl) {
    (void)ttl;
    return rs__socket_dgram_option_unsupported(socket, "rs_socket_set_multicast_ttl");
}

RESEAU_API int rs_socket_set_broadcast(rs_socket_t *socket, bool enabled) {
    (void)enabled;
    return rs__socket_dgram_option_unsupported(socket, "rs_socket_set_broadcast");
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
