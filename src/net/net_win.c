/*
 * Windows: what of the transport layer is not ported yet (issue 13). TCP
 * and UDP sockets are (>>socket_win.c), and so are pipes (overlapped named
 * pipes, >>pipe_win.c), and so is the resolver (>>resolver.c, one file for
 * both); multicast and broadcast options are not. The UDP option setters
 * make the checks every setter makes (RS_EINVAL for a NULL or non-UDP
 * socket, RS_EWRONGTHREAD, RS_EINVAL for a NULL group or a TTL over 255,
 * RS_ESTATE, RS_EBADF) and then return RS_ENOTSUP.
 */
#if RESEAU_OS_WINDOWS

/* ---- multicast and broadcast on UDP sockets (>>socket_win.c) ---------- */

RESEAU_API int rs_socket_join_multicast_group(rs_socket_t *socket, const rs_endpoint_t *group,
                                              const rs_endpoint_t *interface_address, uint32_t interface_index) {
    (void)interface_address;
    (void)interface_index;
    return rs__socket_dgram_option_unsupported(socket, group != NULL, "rs_socket_join_multicast_group");
}

RESEAU_API int rs_socket_leave_multicast_group(rs_socket_t *socket, const rs_endpoint_t *group,
                                               const rs_endpoint_t *interface_address, uint32_t interface_index) {
    (void)interface_address;
    (void)interface_index;
    return rs__socket_dgram_option_unsupported(socket, group != NULL, "rs_socket_leave_multicast_group");
}

RESEAU_API int rs_socket_set_multicast_interface(rs_socket_t *socket, const rs_endpoint_t *interface_address,
                                                 uint32_t interface_index) {
    (void)interface_address;
    (void)interface_index;
    return rs__socket_dgram_option_unsupported(socket, true, "rs_socket_set_multicast_interface");
}

RESEAU_API int rs_socket_set_multicast_loop(rs_socket_t *socket, bool enabled) {
    (void)enabled;
    return rs__socket_dgram_option_unsupported(socket, true, "rs_socket_set_multicast_loop");
}

RESEAU_API int rs_socket_set_multicast_ttl(rs_socket_t *socket, uint32_t ttl) {
    return rs__socket_dgram_option_unsupported(socket, ttl <= 255, "rs_socket_set_multicast_ttl");
}

RESEAU_API int rs_socket_set_broadcast(rs_socket_t *socket, bool enabled) {
    (void)enabled;
    return rs__socket_dgram_option_unsupported(socket, true, "rs_socket_set_broadcast");
}

#endif /* RESEAU_OS_WINDOWS */
