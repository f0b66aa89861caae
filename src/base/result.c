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
#ifdef ESHUTDOWN /* not in the Windows C runtime (WSAESHUTDOWN is, below) */
    {ESHUTDOWN, RS_ESHUTDOWN},
#endif
    {EINTR, RS_EINTR},
    {EIO, RS_EIO},
    {ENOSPC, RS_ENOSPC},
    {EBADF, RS_EBADF},
    {ERANGE, RS_EOVERFLOW},
    {ENODEV, RS_ENODEV},
    {ENXIO, RS_ENODEV},
    {EPROTONOSUPPORT, RS_ENOTSUP},
#ifdef ESOCKTNOSUPPORT /* not in the Windows C runtime */
    {ESOCKTNOSUPPORT, RS_ENOTSUP},
#endif
    {EPROTOTYPE, RS_EINVAL},
    {EDESTADDRREQ, RS_ENOTCONN},
};

#if RESEAU_OS_WINDOWS
/* Win32 error codes (GetLastError), Winsock's among them (WSAGetLastError:
 * WSAE* from WSABASEERR, 10000, up), mapped to the codes their POSIX
 * counterparts get above, so that a caller sees RS_ECONNREFUSED whichever OS
 * refused. Win32 codes below 10000 overlap errno values (5 is EIO and
 * ERROR_ACCESS_DENIED), hence a table of their own. */
static const rs__errno_map_t rs__win32_table[] = {
    {ERROR_INVALID_PARAMETER, RS_EINVAL},
    {ERROR_INVALID_HANDLE, RS_EBADF},
    {ERROR_NOT_ENOUGH_MEMORY, RS_ENOMEM},
    {ERROR_OUTOFMEMORY, RS_ENOMEM},
    {ERROR_NOT_SUPPORTED, RS_ENOTSUP},
    {ERROR_CALL_NOT_IMPLEMENTED, RS_ENOTSUP},
    {ERROR_OPERATION_ABORTED, RS_ECANCELED},
    {ERROR_ACCESS_DENIED, RS_EACCES},
    {ERROR_PRIVILEGE_NOT_HELD, RS_EPERM},
    {ERROR_FILE_NOT_FOUND, RS_ENOENT},
    {ERROR_PATH_NOT_FOUND, RS_ENOENT},
    {ERROR_NOT_FOUND, RS_ENOENT},
    {ERROR_FILE_EXISTS, RS_EEXIST},
    {ERROR_ALREADY_EXISTS, RS_EEXIST},
    {ERROR_TOO_MANY_OPEN_FILES, RS_EMFILE},
    {ERROR_BUSY, RS_EBUSY},
    {ERROR_PIPE_BUSY, RS_EBUSY},
    {ERROR_POSSIBLE_DEADLOCK, RS_EDEADLK},
    {ERROR_TIMEOUT, RS_ETIMEDOUT},
    {WAIT_TIMEOUT, RS_ETIMEDOUT},
    {ERROR_SEM_TIMEOUT, RS_ETIMEDOUT},
    {ERROR_BROKEN_PIPE, RS_EPIPE},
    {ERROR_NO_DATA, RS_EPIPE},
    {ERROR_PIPE_NOT_CONNECTED, RS_EPIPE},
    {ERROR_GRACEFUL_DISCONNECT, RS_EPIPE},
    {ERROR_HANDLE_EOF, RS_EEOF},
    {ERROR_ARITHMETIC_OVERFLOW, RS_EOVERFLOW},
    {ERROR_MORE_DATA, RS_EMSGSIZE},
    {ERROR_DISK_FULL, RS_ENOSPC},
    {ERROR_HANDLE_DISK_FULL, RS_ENOSPC},
    {ERROR_DEV_NOT_EXIST, RS_ENODEV},
    {ERROR_BAD_UNIT, RS_ENODEV},
    /* What an overlapped socket operation completes with. */
    {ERROR_CONNECTION_REFUSED, RS_ECONNREFUSED},
    {ERROR_PORT_UNREACHABLE, RS_ECONNREFUSED},
    {ERROR_NETNAME_DELETED, RS_ECONNRESET},
    {ERROR_CONNECTION_ABORTED, RS_ECONNABORTED},
    {ERROR_NETWORK_UNREACHABLE, RS_ENETUNREACH},
    {ERROR_HOST_UNREACHABLE, RS_EHOSTUNREACH},
    {ERROR_ADDRESS_ALREADY_ASSOCIATED, RS_EADDRINUSE},
    /* Winsock. */
    {WSAEINTR, RS_EINTR},
    {WSAEBADF, RS_EBADF},
    {WSAENOTSOCK, RS_EBADF},
    {WSAEACCES, RS_EACCES},
    {WSAEFAULT, RS_EINVAL},
    {WSAEINVAL, RS_EINVAL},
    {WSAEPROTOTYPE, RS_EINVAL},
    {WSAEMFILE, RS_EMFILE},
    {WSAEWOULDBLOCK, RS_EAGAIN},
    {WSAEINPROGRESS, RS_EALREADY},
    {WSAEALREADY, RS_EALREADY},
    {WSAEDESTADDRREQ, RS_ENOTCONN},
    {WSAEMSGSIZE, RS_EMSGSIZE},
    {WSAEOPNOTSUPP, RS_ENOTSUP},
    {WSAEPROTONOSUPPORT, RS_ENOTSUP},
    {WSAESOCKTNOSUPPORT, RS_ENOTSUP},
    {WSAEPFNOSUPPORT, RS_EAFNOSUPPORT},
    {WSAEAFNOSUPPORT, RS_EAFNOSUPPORT},
    {WSAEADDRINUSE, RS_EADDRINUSE},
    {WSAEADDRNOTAVAIL, RS_EADDRNOTAVAIL},
    {WSAENETDOWN, RS_ENETDOWN},
    {WSAENETUNREACH, RS_ENETUNREACH},
    {WSAENETRESET, RS_ECONNRESET},
    {WSAECONNABORTED, RS_ECONNABORTED},
    {WSAECONNRESET, RS_ECONNRESET},
    {WSAENOBUFS, RS_ENOBUFS},
    {WSAEISCONN, RS_EISCONN},
    {WSAENOPROTOOPT, RS_ENOTSUP},
    {WSAENOTCONN, RS_ENOTCONN},
    {WSAESHUTDOWN, RS_ESHUTDOWN},
    {WSAETIMEDOUT, RS_ETIMEDOUT},
    {WSAECONNREFUSED, RS_ECONNREFUSED},
    {WSAEHOSTDOWN, RS_EHOSTUNREACH},
    {WSAEHOSTUNREACH, RS_EHOSTUNREACH},
    {WSAEDISCON, RS_EPIPE},
    {WSAECANCELLED, RS_ECANCELED},
    {WSA_E_CANCELLED, RS_ECANCELED},
    {WSAHOST_NOT_FOUND, RS_EDNS_NOT_FOUND},
    {WSANO_DATA, RS_EDNS_NOT_FOUND},
    {WSATRY_AGAIN, RS_EDNS_TRY_AGAIN},
    {WSANO_RECOVERY, RS_EDNS_FAILED},
};

/* A Win32 or Winsock error code (GetLastError, WSAGetLastError) as an RS_Exxx
 * code: 0 is RS_OK, a code with no counterpart RS_EUNKNOWN. */
static int rs__result_from_win32(uint32_t os_error) {
    size_t i;
    if (os_error == 0) {
        return RS_OK;
    }
    for (i = 0; i < sizeof(rs__win32_table) / sizeof(rs__win32_table[0]); ++i) {
        if ((uint32_t)rs__win32_table[i].os_error == os_error) {
            return rs__win32_table[i].result;
        }
    }
    return RS_EUNKNOWN;
}
#endif

#if RESEAU_OS_WINDOWS
/* The NTSTATUS an overlapped operation left in OVERLAPPED.Internal, as an
 * RS_Exxx code. That field is the one truthful record of how the operation
 * ended: the packet's byte count says nothing of errors, and a later
 * WSAGetLastError belongs to whatever call ran last on the thread. The codes
 * sockets meet are mapped here; any other goes through ntdll's own
 * translation to a Win32 error. */
typedef ULONG(WINAPI *rs__ntstatus_to_dos_fn)(LONG status);

static int rs__result_from_ntstatus(uint32_t status) {
    static const struct {
        uint32_t status;
        int result;
    } table[] = {
        {0xC0000120u, RS_ECANCELED},      /* STATUS_CANCELLED */
        {0xC0000236u, RS_ECONNREFUSED},   /* STATUS_CONNECTION_REFUSED */
        {0xC000020Du, RS_ECONNRESET},     /* STATUS_CONNECTION_RESET */
        {0xC000020Cu, RS_ECONNRESET},     /* STATUS_CONNECTION_DISCONNECTED */
        {0xC000013Cu, RS_ECONNRESET},     /* STATUS_REMOTE_DISCONNECT */
        {0xC000013Bu, RS_ECONNABORTED},   /* STATUS_LOCAL_DISCONNECT */
        {0xC0000241u, RS_ECONNABORTED},   /* STATUS_CONNECTION_ABORTED */
        {0xC00000B5u, RS_ETIMEDOUT},      /* STATUS_IO_TIMEOUT */
        {0xC000023Cu, RS_ENETUNREACH},    /* STATUS_NETWORK_UNREACHABLE */
        {0xC000023Du, RS_EHOSTUNREACH},   /* STATUS_HOST_UNREACHABLE */
        {0xC000023Fu, RS_ECONNREFUSED},   /* STATUS_PORT_UNREACHABLE */
        {0xC000020Au, RS_EADDRINUSE},     /* STATUS_ADDRESS_ALREADY_EXISTS */
        {0xC0000207u, RS_EADDRNOTAVAIL},  /* STATUS_INVALID_ADDRESS_COMPONENT */
        {0xC000014Bu, RS_EPIPE},          /* STATUS_PIPE_BROKEN */
        {0xC0000237u, RS_EPIPE},          /* STATUS_GRACEFUL_DISCONNECT */
        {0xC000009Au, RS_ENOBUFS},        /* STATUS_INSUFFICIENT_RESOURCES */
        {0xC0000017u, RS_ENOMEM},         /* STATUS_NO_MEMORY */
        {0xC0000008u, RS_EBADF},          /* STATUS_INVALID_HANDLE */
        {0xC000000Du, RS_EINVAL},         /* STATUS_INVALID_PARAMETER */
        {0xC0000022u, RS_EACCES},         /* STATUS_ACCESS_DENIED */
        {0xC00000BBu, RS_ENOTSUP},        /* STATUS_NOT_SUPPORTED */
        {0x80000005u, RS_EMSGSIZE},       /* STATUS_BUFFER_OVERFLOW (a datagram cut short) */
    };
    HMODULE ntdll;
    FARPROC proc;
    size_t i;
    if (status == 0) {
        return RS_OK;
    }
    for (i = 0; i < sizeof(table) / sizeof(table[0]); ++i) {
        if (table[i].status == status) {
            return table[i].result;
        }
    }
    ntdll = GetModuleHandleW(L"ntdll.dll");
    proc = ntdll ? GetProcAddress(ntdll, "RtlNtStatusToDosError") : NULL;
    if (!proc) {
        return RS_EUNKNOWN;
    }
    return rs__result_from_win32(
        (uint32_t)((rs__ntstatus_to_dos_fn)(void (*)(void))proc)((LONG)status));
}
#endif

RESEAU_API int rs_result_from_errno(int os_error) {
    size_t i;
    if (os_error == 0) {
        return RS_OK;
    }
#if RESEAU_OS_WINDOWS
    /* Winsock reports its errors apart from errno, in a range of their own. */
    if (os_error >= WSABASEERR) {
        return rs__result_from_win32((uint32_t)os_error);
    }
#endif
    for (i = 0; i < sizeof(rs__errno_table) / sizeof(rs__errno_table[0]); ++i) {
        if (rs__errno_table[i].os_error == os_error) {
            return rs__errno_table[i].result;
        }
    }
    return RS_EUNKNOWN;
}
