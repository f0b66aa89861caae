/* Result codes: names, messages and the errno mapping, all from RS__RESULT_TABLE. */

RESEAU_API const char *rs_strerror(int result) {
    switch (result) {
#define RS__RESULT_MESSAGE_CASE(name, value, message) \
    case value:                                       \
        return message;
        RS__RESULT_TABLE(RS__RESULT_MESSAGE_CASE)
#undef RS__RESULT_MESSAGE_CASE
    default:
        return "unknown result code";
    }
}

RESEAU_API const char *rs_err_name(int result) {
    switch (result) {
#define RS__RESULT_NAME_CASE(name, value, message) \
    case value:                                    \
        return #name;
        RS__RESULT_TABLE(RS__RESULT_NAME_CASE)
#undef RS__RESULT_NAME_CASE
    default:
        return "RS_E(unknown)";
    }
}

/* Several errno names alias one value on some systems (EAGAIN/EWOULDBLOCK,
 * ENOTSUP/EOPNOTSUPP), so the table is searched rather than switched on. */
typedef struct rs__errno_map {
    int os_error;
    int result;
} rs__errno_map_t;

static const rs__errno_map_t rs__errno_table[] = {
    {EINVAL, RS_EINVAL},
    {ENOMEM, RS_ENOMEM},
    {ENOTSUP, RS_ENOTSUP},
    {EOPNOTSUPP, RS_ENOTSUP},
    {ENOSYS, RS_ENOTSUP},
    {ECANCELED, RS_ECANCELED},
    {EAGAIN, RS_EAGAIN},
    {EWOULDBLOCK, RS_EAGAIN},
    {EBUSY, RS_EBUSY},
    {EOVERFLOW, RS_EOVERFLOW},
    {EDEADLK, RS_EDEADLK},
    {ETIMEDOUT, RS_ETIMEDOUT},
    {ECONNREFUSED, RS_ECONNREFUSED},
    {ECONNRESET, RS_ECONNRESET},
    {ECONNABORTED, RS_ECONNABORTED},
    {EPIPE, RS_EPIPE},
    {EADDRINUSE, RS_EADDRINUSE},
    {EADDRNOTAVAIL, RS_EADDRNOTAVAIL},
    {ENETUNREACH, RS_ENETUNREACH},
    {EHOSTUNREACH, RS_EHOSTUNREACH},
    {EACCES, RS_EACCES},
    {EPERM, RS_EPERM},
    {EMFILE, RS_EMFILE},
    {ENFILE, RS_ENFILE},
    {ENOENT, RS_ENOENT},
    {EEXIST, RS_EEXIST},
    {ENOTCONN, RS_ENOTCONN},
    {EISCONN, RS_EISCONN},
    {EALREADY, RS_EALREADY},
    {EINPROGRESS, RS_EALREADY},
    {EAFNOSUPPORT, RS_EAFNOSUPPORT},
    {EMSGSIZE, RS_EMSGSIZE},
    {ENOBUFS, RS_ENOBUFS},
    {ENETDOWN, RS_ENETDOWN},
    {ESHUTDOWN, RS_ESHUTDOWN},
    {EINTR, RS_EINTR},
    {EIO, RS_EIO},
    {ENOSPC, RS_ENOSPC},
    {EBADF, RS_EBADF},
    {ERANGE, RS_EOVERFLOW},
    {ENODEV, RS_ENODEV},
    {ENXIO, RS_ENODEV},
    {EPROTONOSUPPORT, RS_ENOTSUP},
    {ESOCKTNOSUPPORT, RS_ENOTSUP},
    {EPROTOTYPE, RS_EINVAL},
    {EDESTADDRREQ, RS_ENOTCONN},
};

RESEAU_API int rs_result_from_errno(int os_error) {
    size_t i;
    if (os_error == 0) {
        return RS_OK;
    }
    for (i = 0; i < sizeof(rs__errno_table) / sizeof(rs__errno_table[0]); ++i) {
        if (rs__errno_table[i].os_error == os_error) {
            return rs__errno_table[i].result;
        }
    }
    return RS_EUNKNOWN;
}
