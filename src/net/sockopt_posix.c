#if RESEAU_OS_POSIX /* Windows: >>net_win.c */
/*
 * Options on a live socket: TCP no-delay and keepalive, TTL / hop limit,
 * multicast and broadcast. Each setter checks the same things in the same
 * order (rs__sockopt_check), then makes one or a few setsockopt calls.
 */

typedef enum rs__sockopt_kind {
    RS__SOCKOPT_IP,  /* any IPv4/IPv6 socket */
    RS__SOCKOPT_TCP, /* STREAM over IPv4/IPv6 */
    RS__SOCKOPT_UDP  /* DGRAM over IPv4/IPv6 */
} rs__sockopt_kind_t;

static bool rs__socket_is_ip(const rs_socket_t *s) {
    return s->options.domain == RS_SOCKET_DOMAIN_IPV4 || s->options.domain == RS_SOCKET_DOMAIN_IPV6;
}

/* The checks every setter shares, in the order socket.h lists them; `valid`
 * is the setter's own verdict on its values, which comes before the state. */
static int rs__sockopt_check(const rs_socket_t *s, rs__sockopt_kind_t kind, bool valid, const char *function) {
    int err = rs__socket_check_thread(s, function);
    rs_socket_type_t type;
    if (err) {
        return err;
    }
    type = s->options.type;
    if (!rs__socket_is_ip(s) && !rs__socket_domain_pending(s)) {
        return RS_EINVAL;
    }
    if ((kind == RS__SOCKOPT_TCP && type != RS_SOCKET_STREAM) || (kind == RS__SOCKOPT_UDP && type != RS_SOCKET_DGRAM)) {
        return RS_EINVAL;
    }
    return valid ? rs__socket_fd_state(s) : RS_EINVAL;
}

static bool rs__socket_is_v6(const rs_socket_t *s) {
    return s->options.domain == RS_SOCKET_DOMAIN_IPV6;
}

static int rs__setsockopt_bool(int fd, int level, int name, bool on) {
    return rs__setsockopt_int(fd, level, name, on ? 1 : 0);
}

/* IP_MULTICAST_TTL and IP_MULTICAST_LOOP: Linux takes an int, the BSDs only an
 * unsigned char (see RS__HAVE_IP_MULTICAST_INT). */
static int rs__setsockopt_v4_byte(int fd, int name, uint32_t value) {
    unsigned char byte = (unsigned char)value;
    if (RS__HAVE_IP_MULTICAST_INT) {
        return rs__setsockopt_int(fd, IPPROTO_IP, name, (int)value);
    }
    return setsockopt(fd, IPPROTO_IP, name, &byte, (socklen_t)sizeof(byte)) == 0 ? RS_OK : rs__errno_result();
}

RESEAU_API int rs_socket_set_tcp_nodelay(rs_socket_t *socket, bool enabled) {
    int err = rs__sockopt_check(socket, RS__SOCKOPT_TCP, true, "rs_socket_set_tcp_nodelay");
    if (!err) {
        err = rs__setsockopt_bool(socket->io.fd, IPPROTO_TCP, TCP_NODELAY, enabled);
    }
    if (!err) {
        socket->options.tcp_nodelay = enabled; /* sockets a listener accepts inherit it */
    }
    return err;
}

RESEAU_API int rs_socket_set_keepalive(rs_socket_t *socket, bool enabled, uint32_t idle_s, uint32_t interval_s,
                                       uint32_t probes) {
    bool valid = idle_s <= (uint32_t)INT_MAX && interval_s <= (uint32_t)INT_MAX && probes <= (uint32_t)INT_MAX;
    int err = rs__sockopt_check(socket, RS__SOCKOPT_TCP, valid, "rs_socket_set_keepalive");
    int fd;
    if (err) {
        return err;
    }
    fd = socket->io.fd;
    err = rs__set_keepalive_timers(fd, idle_s, interval_s, probes);
    err = err ? err : rs__setsockopt_bool(fd, SOL_SOCKET, SO_KEEPALIVE, enabled);
    if (!err) {
        socket->options.keepalive = enabled;
    }
    return err;
}

RESEAU_API int rs_socket_set_ttl(rs_socket_t *socket, uint32_t ttl) {
    int err = rs__sockopt_check(socket, RS__SOCKOPT_IP, ttl >= 1 && ttl <= 255, "rs_socket_set_ttl");
    if (err) {
        return err;
    }
    if (rs__socket_is_v6(socket)) {
        return rs__setsockopt_int(socket->io.fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, (int)ttl);
    }
    return rs__setsockopt_int(socket->io.fd, IPPROTO_IP, IP_TTL, (int)ttl);
}

/* ---- multicast ---- */

static bool rs__endpoint_is_multicast(const rs_endpoint_t *e) {
    return e->domain == RS_SOCKET_DOMAIN_IPV6 ? e->addr[0] == 0xff : (e->addr[0] & 0xf0) == 0xe0;
}

/* An interface named by an IPv4 address and/or an index: IPv6 takes an index only. */
static int rs__check_interface(const rs_socket_t *s, const rs_endpoint_t *interface_address) {
    if (!interface_address) {
        return RS_OK;
    }
    return !rs__socket_is_v6(s) && interface_address->domain == RS_SOCKET_DOMAIN_IPV4 ? RS_OK : RS_EINVAL;
}

/* IPv4 membership: ip_mreqn where the OS has it (an index as well as an address). */
static int rs__multicast_membership_v4(int fd, int name, const rs_endpoint_t *group,
                                       const rs_endpoint_t *interface_address, uint32_t interface_index) {
#if RS__HAVE_IP_MREQN
    struct ip_mreqn mreq;
    memset(&mreq, 0, sizeof(mreq));
    memcpy(&mreq.imr_multiaddr, group->addr, 4);
    if (interface_address) {
        memcpy(&mreq.imr_address, interface_address->addr, 4);
    }
    mreq.imr_ifindex = (int)interface_index;
#else
    struct ip_mreq mreq;
    if (interface_index) {
        return RS_ENOTSUP; /* ip_mreq names the interface by address only */
    }
    memset(&mreq, 0, sizeof(mreq));
    memcpy(&mreq.imr_multiaddr, group->addr, 4);
    if (interface_address) {
        memcpy(&mreq.imr_interface, interface_address->addr, 4);
    }
#endif
    return setsockopt(fd, IPPROTO_IP, name, &mreq, (socklen_t)sizeof(mreq)) == 0 ? RS_OK : rs__errno_result();
}

static int rs__multicast_membership_v6(int fd, int name, const rs_endpoint_t *group, uint32_t interface_index) {
    struct ipv6_mreq mreq;
    memset(&mreq, 0, sizeof(mreq));
    memcpy(&mreq.ipv6mr_multiaddr, group->addr, 16);
    mreq.ipv6mr_interface = interface_index;
    return setsockopt(fd, IPPROTO_IPV6, name, &mreq, (socklen_t)sizeof(mreq)) == 0 ? RS_OK : rs__errno_result();
}

static int rs__multicast_membership(rs_socket_t *s, bool join, const rs_endpoint_t *group,
                                    const rs_endpoint_t *interface_address, uint32_t interface_index,
                                    const char *function) {
    bool valid = s && group && rs__endpoint_is_multicast(group) && rs__check_interface(s, interface_address) == RS_OK &&
                 (group->domain == s->options.domain || (s && rs__socket_domain_pending(s)));
    int err = rs__sockopt_check(s, RS__SOCKOPT_UDP, valid, function);
    if (err) {
        return err;
    }
    if (rs__socket_is_v6(s)) {
        return rs__multicast_membership_v6(s->io.fd, join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP, group,
                                           interface_index);
    }
    return rs__multicast_membership_v4(s->io.fd, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, group,
                                       interface_address, interface_index);
}

RESEAU_API int rs_socket_join_multicast_group(rs_socket_t *socket, const rs_endpoint_t *group,
                                              const rs_endpoint_t *interface_address, uint32_t interface_index) {
    return rs__multicast_membership(socket, true, group, interface_address, interface_index,
                                    "rs_socket_join_multicast_group");
}

RESEAU_API int rs_socket_leave_multicast_group(rs_socket_t *socket, const rs_endpoint_t *group,
                                               const rs_endpoint_t *interface_address, uint32_t interface_index) {
    return rs__multicast_membership(socket, false, group, interface_address, interface_index,
                                    "rs_socket_leave_multicast_group");
}

/* IPv4 IP_MULTICAST_IF: ip_mreqn where the OS has it, else an in_addr (by address only). */
static int rs__multicast_interface_v4(int fd, const rs_endpoint_t *interface_address, uint32_t interface_index) {
#if RS__HAVE_IP_MREQN
    struct ip_mreqn mreq;
    memset(&mreq, 0, sizeof(mreq));
    if (interface_address) {
        memcpy(&mreq.imr_address, interface_address->addr, 4);
    }
    mreq.imr_ifindex = (int)interface_index;
#else
    struct in_addr mreq;
    if (interface_index) {
        return RS_ENOTSUP; /* an in_addr names the interface by address only */
    }
    memset(&mreq, 0, sizeof(mreq));
    if (interface_address) {
        memcpy(&mreq, interface_address->addr, 4);
    }
#endif
    return setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, (socklen_t)sizeof(mreq)) == 0 ? RS_OK
                                                                                           : rs__errno_result();
}

RESEAU_API int rs_socket_set_multicast_interface(rs_socket_t *socket, const rs_endpoint_t *interface_address,
                                                 uint32_t interface_index) {
    int err = rs__sockopt_check(socket, RS__SOCKOPT_UDP, socket && rs__check_interface(socket, interface_address) == RS_OK,
                                "rs_socket_set_multicast_interface");
    if (err) {
        return err;
    }
    if (rs__socket_is_v6(socket)) {
        return rs__setsockopt_int(socket->io.fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, (int)interface_index);
    }
    return rs__multicast_interface_v4(socket->io.fd, interface_address, interface_index);
}

RESEAU_API int rs_socket_set_multicast_loop(rs_socket_t *socket, bool enabled) {
    int err = rs__sockopt_check(socket, RS__SOCKOPT_UDP, true, "rs_socket_set_multicast_loop");
    if (err) {
        return err;
    }
    if (rs__socket_is_v6(socket)) {
        return rs__setsockopt_bool(socket->io.fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, enabled);
    }
    return rs__setsockopt_v4_byte(socket->io.fd, IP_MULTICAST_LOOP, enabled ? 1 : 0);
}

RESEAU_API int rs_socket_set_multicast_ttl(rs_socket_t *socket, uint32_t ttl) {
    int err = rs__sockopt_check(socket, RS__SOCKOPT_UDP, ttl <= 255, "rs_socket_set_multicast_ttl");
    if (err) {
        return err;
    }
    if (rs__socket_is_v6(socket)) {
        return rs__setsockopt_int(socket->io.fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, (int)ttl);
    }
    return rs__setsockopt_v4_byte(socket->io.fd, IP_MULTICAST_TTL, ttl);
}

RESEAU_API int rs_socket_set_broadcast(rs_socket_t *socket, bool enabled) {
    /* IPv6 has no broadcast. */
    int err = rs__sockopt_check(socket, RS__SOCKOPT_UDP, socket && !rs__socket_is_v6(socket), "rs_socket_set_broadcast");
    if (err) {
        return err;
    }
    return rs__setsockopt_bool(socket->io.fd, SOL_SOCKET, SO_BROADCAST, enabled);
}
#endif /* RESEAU_OS_POSIX */
