/*
 * Addresses.
 *
 * rs_endpoint_t is a plain value (copy it freely) naming an IPv4 or IPv6
 * address and port, a Unix-domain path, or a VSOCK context id and port. It is
 * OS-independent: conversion to sockaddr happens inside reseau. The parsers
 * are strict and reject anything but canonical-enough text with RS_EINVAL:
 * leading zeros in IPv4 octets, out-of-range values, misplaced or repeated
 * "::", more than eight IPv6 groups, empty parts, and trailing garbage.
 * Every function here is pure and callable from any thread.
 */
typedef enum rs_socket_domain {
    /* In socket options: take the family from the first endpoint the socket
     * is given. Never valid in an endpoint (a zeroed one names nothing). */
    RS_SOCKET_DOMAIN_DEFAULT = 0,
    RS_SOCKET_DOMAIN_IPV4 = 1,
    RS_SOCKET_DOMAIN_IPV6 = 2,
    RS_SOCKET_DOMAIN_LOCAL = 3, /* Unix-domain socket (a path, or a Linux abstract name) */
    RS_SOCKET_DOMAIN_VSOCK = 4  /* Linux VM sockets */
} rs_socket_domain_t;

/* Longest Unix-domain path, in bytes, without the NUL (sun_path is 108 on Linux). */
#define RS_LOCAL_PATH_MAX 107
/* Room for any endpoint as text, NUL included: "[v6%zone]:port" or a local path. */
#define RS_ENDPOINT_TEXT_MAX 128

typedef struct rs_endpoint {
    rs_socket_domain_t domain;
    uint32_t port;      /* IPv4/IPv6: 0..65535; VSOCK: the port */
    uint8_t addr[16];   /* IPv4: first 4 bytes; IPv6: 16 bytes; network byte order */
    uint32_t scope_id;  /* IPv6 zone (interface index); 0 for none */
    uint32_t vsock_cid; /* VSOCK context id */
    /* LOCAL: the path, NUL-terminated. A Linux abstract name is written "@name"
     * here and in text, and is bound without the '@' and without a trailing NUL. */
    char path[RS_LOCAL_PATH_MAX + 1];
} rs_endpoint_t;

/* Parse dotted-quad IPv4 text into 4 bytes. RS_EINVAL for NULL or malformed
 * text (out is then zeroed) or a NULL out. */
RESEAU_API int rs_ipv4_parse(const char *text, uint8_t out[4]);
/* Parse IPv6 text (RFC 4291, including "::" and a trailing dotted quad) into 16
 * bytes. A "%zone" suffix is accepted only when scope_id_out is not NULL: a
 * number, or an interface name that exists on this host. RS_EINVAL for NULL
 * or malformed text, a NULL out, or a bad or unexpected zone; RS_ENOTSUP for a
 * zone name where interface names cannot be looked up. */
RESEAU_API int rs_ipv6_parse(const char *text, uint8_t out[16], uint32_t *scope_id_out);
/* Format 4 bytes as dotted quad. RS_EOVERFLOW if buf is too small (16 suffices);
 * RS_EINVAL for a NULL addr, or a NULL buf with buf_len > 0. */
RESEAU_API int rs_ipv4_format(const uint8_t addr[4], char *buf, size_t buf_len);
/* Format 16 bytes in RFC 5952 canonical form (lowercase, longest zero run as
 * "::", IPv4-mapped as ::ffff:a.b.c.d). RS_EOVERFLOW if buf is too small (46 suffices);
 * RS_EINVAL as for rs_ipv4_format. */
RESEAU_API int rs_ipv6_format(const uint8_t addr[16], char *buf, size_t buf_len);

/* Build an endpoint from IP text and a port (0..65535, else RS_EINVAL). The
 * domain follows the text: dotted quad is IPv4, anything with ':' is IPv6. */
RESEAU_API int rs_endpoint_from_ip(rs_endpoint_t *out, const char *text, uint32_t port);
/* A Unix-domain endpoint; "@name" is a Linux abstract name (RS_ENOTSUP elsewhere).
 * RS_EINVAL if empty or longer than RS_LOCAL_PATH_MAX. */
RESEAU_API int rs_endpoint_from_local(rs_endpoint_t *out, const char *path);
/* A VSOCK endpoint (RS_ENOTSUP off Linux). RS_EINVAL for a NULL out. */
RESEAU_API int rs_endpoint_from_vsock(rs_endpoint_t *out, uint32_t cid, uint32_t port);
/* "127.0.0.1:80", "[::1]:80", "[fe80::1%2]:80", "/run/x.sock", "@name", "vsock:3:1024".
 * RS_EINVAL for a NULL endpoint, an unknown domain, or a NULL buf with buf_len > 0;
 * RS_EOVERFLOW if buf is too small. On error a non-empty buf holds "". */
RESEAU_API int rs_endpoint_format(const rs_endpoint_t *endpoint, char *buf, size_t buf_len);
RESEAU_API bool rs_endpoint_equal(const rs_endpoint_t *a, const rs_endpoint_t *b);
/* Parse what rs_endpoint_format writes: "127.0.0.1:80", "[::1]:80",
 * "[fe80::1%eth0]:80" (a zone as rs_ipv6_parse takes it), "/run/x.sock",
 * "@name", "vsock:3:1024". The port is decimal, 0..65535. An IPv6 address
 * needs its brackets ("::1:80" is ambiguous). RS_EINVAL for NULLs or
 * malformed text (*out is then zeroed), RS_ENOTSUP as rs_ipv6_parse and
 * rs_endpoint_from_local/vsock say. Any thread. */
RESEAU_API int rs_endpoint_parse(rs_endpoint_t *out, const char *text);
#if !RS__NO_SOCKETS
/* Fill *out from a struct sockaddr of `len` bytes (sockaddr_in, sockaddr_in6,
 * sockaddr_un, sockaddr_vm), as accept, getsockname or recvfrom return it.
 * RS_EINVAL for NULLs or a length too short for the family; RS_EAFNOSUPPORT
 * for another family. *out is zeroed on error. Any thread. Absent with
 * RESEAU_NO_SOCKETS, which has no struct sockaddr. */
RESEAU_API int rs_endpoint_from_sockaddr(rs_endpoint_t *out, const void *sockaddr, size_t len);
#endif
