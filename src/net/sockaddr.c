#if RESEAU_OS_POSIX /* Windows: >>net_win.c */
/* Conversion between rs_endpoint_t and the OS's sockaddr structures. */

typedef union rs__sockaddr {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    struct sockaddr_un un;
#if RS__HAVE_VSOCK
    struct sockaddr_vm vm;
#endif
    struct sockaddr_storage storage;
} rs__sockaddr_t;

/* The address family of a domain; RS_ENOTSUP for VSOCK off Linux. */
static int rs__domain_family(rs_socket_domain_t domain, int *family_out) {
    switch (domain) {
    case RS_SOCKET_DOMAIN_IPV4:
        *family_out = AF_INET;
        return RS_OK;
    case RS_SOCKET_DOMAIN_IPV6:
        *family_out = AF_INET6;
        return RS_OK;
    case RS_SOCKET_DOMAIN_LOCAL:
        *family_out = AF_UNIX;
        return RS_OK;
    case RS_SOCKET_DOMAIN_VSOCK:
#if RS__HAVE_VSOCK
        *family_out = AF_VSOCK;
        return RS_OK;
#else
        return RS_ENOTSUP;
#endif
    case RS_SOCKET_DOMAIN_DEFAULT:
        break; /* names no family: the socket takes one from an endpoint first */
    }
    return RS_EINVAL;
}

static int rs__local_to_sockaddr(const rs_endpoint_t *endpoint, rs__sockaddr_t *out, socklen_t *len_out) {
    size_t len = strlen(endpoint->path);
    if (len == 0 || len > RS_LOCAL_PATH_MAX) {
        return RS_EINVAL;
    }
    out->un.sun_family = AF_UNIX;
    if (endpoint->path[0] == '@') {
#if RS__HAVE_ABSTRACT_UNIX
        /* Abstract name: a leading NUL, the name, and no terminator. */
        memcpy(out->un.sun_path + 1, endpoint->path + 1, len - 1);
        *len_out = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
        return RS_OK;
#else
        return RS_ENOTSUP;
#endif
    }
    memcpy(out->un.sun_path, endpoint->path, len);
    *len_out = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    return RS_OK;
}

static int rs__endpoint_to_sockaddr(const rs_endpoint_t *endpoint, rs__sockaddr_t *out, socklen_t *len_out) {
    memset(out, 0, sizeof(*out));
    switch (endpoint->domain) {
    case RS_SOCKET_DOMAIN_IPV4:
        if (endpoint->port > 65535) {
            return RS_EINVAL;
        }
        out->in4.sin_family = AF_INET;
        out->in4.sin_port = htons((uint16_t)endpoint->port);
        memcpy(&out->in4.sin_addr, endpoint->addr, 4);
        *len_out = (socklen_t)sizeof(out->in4);
        return RS_OK;
    case RS_SOCKET_DOMAIN_IPV6:
        if (endpoint->port > 65535) {
            return RS_EINVAL;
        }
        out->in6.sin6_family = AF_INET6;
        out->in6.sin6_port = htons((uint16_t)endpoint->port);
        out->in6.sin6_scope_id = endpoint->scope_id;
        memcpy(&out->in6.sin6_addr, endpoint->addr, 16);
        *len_out = (socklen_t)sizeof(out->in6);
        return RS_OK;
    case RS_SOCKET_DOMAIN_LOCAL:
        return rs__local_to_sockaddr(endpoint, out, len_out);
    case RS_SOCKET_DOMAIN_VSOCK:
#if RS__HAVE_VSOCK
        out->vm.svm_family = AF_VSOCK;
        out->vm.svm_cid = endpoint->vsock_cid;
        out->vm.svm_port = endpoint->port;
        *len_out = (socklen_t)sizeof(out->vm);
        return RS_OK;
#else
        return RS_ENOTSUP;
#endif
    case RS_SOCKET_DOMAIN_DEFAULT:
        break; /* names no family: the socket takes one from an endpoint first */
    }
    return RS_EINVAL;
}

static void rs__local_from_sockaddr(rs_endpoint_t *endpoint, const rs__sockaddr_t *in, socklen_t len) {
    size_t offset = offsetof(struct sockaddr_un, sun_path);
    size_t n = len > offset ? (size_t)len - offset : 0;
    if (n > RS_LOCAL_PATH_MAX) {
        n = RS_LOCAL_PATH_MAX;
    }
    if (n > 0 && in->un.sun_path[0] == '\0') {
        endpoint->path[0] = '@';
        memcpy(endpoint->path + 1, in->un.sun_path + 1, n - 1);
        return;
    }
    memcpy(endpoint->path, in->un.sun_path, n);
    endpoint->path[n] = '\0'; /* a path's own terminator may or may not be counted */
}

/* Fills `endpoint` from what accept/getsockname/recvfrom returned. An unnamed
 * Unix socket gives an empty path. */
static int rs__endpoint_from_sockaddr(rs_endpoint_t *endpoint, const rs__sockaddr_t *in, socklen_t len) {
    memset(endpoint, 0, sizeof(*endpoint));
    switch (in->sa.sa_family) {
    case AF_INET:
        endpoint->domain = RS_SOCKET_DOMAIN_IPV4;
        endpoint->port = ntohs(in->in4.sin_port);
        memcpy(endpoint->addr, &in->in4.sin_addr, 4);
        return RS_OK;
    case AF_INET6:
        endpoint->domain = RS_SOCKET_DOMAIN_IPV6;
        endpoint->port = ntohs(in->in6.sin6_port);
        endpoint->scope_id = in->in6.sin6_scope_id;
        memcpy(endpoint->addr, &in->in6.sin6_addr, 16);
        return RS_OK;
    case AF_UNIX:
        endpoint->domain = RS_SOCKET_DOMAIN_LOCAL;
        rs__local_from_sockaddr(endpoint, in, len);
        return RS_OK;
#if RS__HAVE_VSOCK
    case AF_VSOCK:
        endpoint->domain = RS_SOCKET_DOMAIN_VSOCK;
        endpoint->vsock_cid = in->vm.svm_cid;
        endpoint->port = in->vm.svm_port;
        return RS_OK;
#endif
    default:
        return RS_EAFNOSUPPORT;
    }
}

/* The smallest length that holds an address of the family; 0 for a family
 * we do not know. */
static size_t rs__sockaddr_min_len(int family) {
    switch (family) {
    case AF_INET:
        return sizeof(struct sockaddr_in);
    case AF_INET6:
        return sizeof(struct sockaddr_in6);
    case AF_UNIX:
        return offsetof(struct sockaddr_un, sun_path);
#if RS__HAVE_VSOCK
    case AF_VSOCK:
        return sizeof(struct sockaddr_vm);
#endif
    default:
        return 0;
    }
}

RESEAU_API int rs_endpoint_from_sockaddr(rs_endpoint_t *out, const void *sockaddr, size_t len) {
    rs__sockaddr_t in;
    int err;
    if (!out) {
        return RS_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (!sockaddr || len < sizeof(sa_family_t)) {
        return RS_EINVAL;
    }
    memset(&in, 0, sizeof(in));
    memcpy(&in, sockaddr, len < sizeof(in) ? len : sizeof(in)); /* aligned, and never read past len */
    if (rs__sockaddr_min_len(in.sa.sa_family) == 0) {
        return RS_EAFNOSUPPORT;
    }
    if (len < rs__sockaddr_min_len(in.sa.sa_family)) {
        return RS_EINVAL;
    }
    err = rs__endpoint_from_sockaddr(out, &in, (socklen_t)(len < sizeof(in) ? len : sizeof(in)));
    if (err) {
        memset(out, 0, sizeof(*out));
    }
    return err;
}
#endif /* RESEAU_OS_POSIX */
