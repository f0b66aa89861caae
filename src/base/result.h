/*
 * Result codes.
 *
 * Every fallible function returns int: RS_OK (0) or a negative RS_Exxx code.
 * There is no global or thread-local "last error". OS errors are mapped to a
 * specific code by rs_result_from_errno(); the original errno only goes to logs.
 * Codes come from one table, so names and messages cannot drift apart.
 */
#define RS__RESULT_TABLE(X)                                                                       \
    X(RS_OK, 0, "success")                                                                        \
    X(RS_EINVAL, -1, "invalid argument")                                                          \
    X(RS_ENOMEM, -2, "out of memory")                                                             \
    X(RS_ENOTSUP, -3, "not supported (not available on this platform or not implemented yet)")    \
    X(RS_EWRONGTHREAD, -4, "called from a thread that does not own the object")                   \
    X(RS_ECANCELED, -5, "operation canceled")                                                     \
    X(RS_EAGAIN, -6, "resource temporarily unavailable; try again")                               \
    X(RS_EBUSY, -7, "object is busy (already running or in use)")                                 \
    X(RS_ESTATE, -8, "object is in the wrong state for this operation")                           \
    X(RS_ETHREAD, -9, "could not start a thread")                                                 \
    X(RS_EOVERFLOW, -10, "value too large")                                                       \
    X(RS_EEOF, -11, "end of stream")                                                              \
    X(RS_EWINDOW, -12, "read window exceeded")                                                    \
    X(RS_EDEADLK, -13, "operation would deadlock (called from the thread it would wait for)")     \
    X(RS_ETIMEDOUT, -20, "operation timed out")                                                   \
    X(RS_ECONNREFUSED, -21, "connection refused")                                                 \
    X(RS_ECONNRESET, -22, "connection reset by peer")                                             \
    X(RS_ECONNABORTED, -23, "connection aborted")                                                 \
    X(RS_EPIPE, -24, "broken pipe (the peer closed the connection)")                              \
    X(RS_EADDRINUSE, -25, "address already in use")                                               \
    X(RS_EADDRNOTAVAIL, -26, "address not available on this host")                                \
    X(RS_ENETUNREACH, -27, "network unreachable")                                                 \
    X(RS_EHOSTUNREACH, -28, "host unreachable")                                                   \
    X(RS_EACCES, -29, "permission denied")                                                        \
    X(RS_EPERM, -30, "operation not permitted")                                                   \
    X(RS_EMFILE, -31, "too many open files in this process")                                      \
    X(RS_ENFILE, -32, "too many open files in the system")                                        \
    X(RS_ENOENT, -33, "no such file or directory")                                                \
    X(RS_EEXIST, -34, "already exists")                                                           \
    X(RS_ENOTCONN, -35, "not connected")                                                          \
    X(RS_EISCONN, -36, "already connected")                                                       \
    X(RS_EALREADY, -37, "operation already in progress")                                          \
    X(RS_EAFNOSUPPORT, -38, "address family not supported")                                       \
    X(RS_EMSGSIZE, -39, "message too long")                                                       \
    X(RS_ENOBUFS, -40, "no buffer space available")                                               \
    X(RS_ENETDOWN, -41, "network is down")                                                        \
    X(RS_ESHUTDOWN, -42, "cannot send after shutdown")                                            \
    X(RS_EINTR, -43, "interrupted system call")                                                   \
    X(RS_EIO, -44, "input/output error")                                                          \
    X(RS_ENOSPC, -45, "no space left on device")                                                  \
    X(RS_EBADF, -46, "bad file descriptor")                                                       \
    X(RS_ENODEV, -47, "no such device or network interface")                                      \
    X(RS_EDNS_NOT_FOUND, -50, "host name not found (no such host, or no address records)")       \
    X(RS_EDNS_TRY_AGAIN, -51, "temporary name resolution failure; try again")                    \
    X(RS_EDNS_FAILED, -52, "name resolution failed (see the log for the resolver's error)")      \
    X(RS_EPEM_BAD_BASE64, -60, "malformed base64 in a PEM body (bad character, padding or length)") \
    X(RS_EPEM_NO_END, -61, "PEM BEGIN line without its END line")                                 \
    X(RS_EPEM_LABEL_MISMATCH, -62, "PEM END label differs from its BEGIN label")                  \
    X(RS_EPEM_TRUNCATED, -63, "PEM input ends in the middle of a line of an object")              \
    X(RS_EPEM_NO_OBJECT, -64, "no PEM object (no BEGIN line) in the input")                       \
    X(RS_EPEM_BAD_BOUNDARY, -65, "malformed PEM BEGIN or END line")                               \
    X(RS_EPEM_NO_BEGIN, -66, "PEM END line without a BEGIN line")                                 \
    X(RS_EPEM_HEADERS, -67, "PEM headers (RFC 1421, e.g. a legacy encrypted key) are not supported") \
    X(RS_EPEM_TOO_LARGE, -68, "PEM file larger than RS_PEM_FILE_MAX")                             \
    X(RS_ERETRY_QUOTA_EXHAUSTED, -70, "retry quota exhausted (the partition's token bucket is empty)") \
    X(RS_ERETRY_MAX_EXCEEDED, -71, "the retry strategy's maximum number of retries is reached")   \
    X(RS_ERETRY_NOT_ALLOWED, -72, "this retry strategy never retries")                            \
    X(RS_ESTREAM_SEEK, -75, "seek position outside the stream")                                   \
    X(RS_ESHARED_LIBRARY_LOAD_FAILURE, -80, "cannot load the shared library (the log has the loader's reason)") \
    X(RS_ESHARED_LIBRARY_SYMBOL_NOT_FOUND, -81, "symbol not found in the shared library")          \
    X(RS_EPKCS11_TOKEN_NOT_FOUND, -85, "PKCS#11: no token with that label or slot id (or the slot has no token)") \
    X(RS_EPKCS11_KEY_NOT_FOUND, -86, "PKCS#11: no private key with that label or id on the token")   \
    X(RS_EPKCS11_PIN_INCORRECT, -87, "PKCS#11: the PIN is incorrect (or not a valid PIN for the token)") \
    X(RS_EPKCS11_PIN_LOCKED, -88, "PKCS#11: the PIN is locked, expired or not initialized on the token") \
    X(RS_EPKCS11_LOGIN_REQUIRED, -89, "PKCS#11: the token needs a user PIN for this key")          \
    X(RS_EPKCS11_KEY_UNSUITABLE, -90, "PKCS#11: the key or token cannot make this signature (mechanism, key type or size)") \
    X(RS_EPKCS11_DEVICE_ERROR, -91, "PKCS#11: the token or its module failed (device error, removed, general failure)") \
    X(RS_EPKCS11_FAILED, -92, "PKCS#11: the module returned an error (the log names its CKR_ code)") \
    X(RS_EUNKNOWN, -99, "unknown error (see the log for the system error)")                        \
    X(RS_ETLS_CERT_EXPIRED, -100, "TLS: the peer's certificate has expired (or this host's clock is wrong)") \
    X(RS_ETLS_CERT_NOT_YET_VALID, -101, "TLS: the peer's certificate is not valid yet (or this host's clock is wrong)") \
    X(RS_ETLS_HOSTNAME_MISMATCH, -102, "TLS: the peer's certificate is not for the name or address connected to") \
    X(RS_ETLS_UNTRUSTED, -103, "TLS: the peer's certificate chain does not lead to a trusted CA (add its CA to the trust store)") \
    X(RS_ETLS_BAD_CERT, -104, "TLS: a certificate is malformed or uses an unsupported algorithm") \
    X(RS_ETLS_PROTOCOL_VERSION, -105, "TLS: no protocol version in common (the peer may require TLS 1.3)") \
    X(RS_ETLS_HANDSHAKE_TIMEOUT, -106, "TLS: the handshake did not finish within the negotiation timeout") \
    X(RS_ETLS_ALERT_RECEIVED, -107, "TLS: the peer sent a fatal alert (the log names it)")         \
    X(RS_ETLS_NO_SHARED_CIPHER, -108, "TLS: no cipher suite in common with the peer")              \
    X(RS_ETLS_CLIENT_CERT_REQUIRED, -109, "TLS: the server requires a client certificate and none was given") \
    X(RS_ETLS_TRUNCATED, -110, "TLS: the peer closed the connection without close_notify (data may be truncated)") \
    X(RS_ETLS_ALPN_MISMATCH, -111, "TLS: no application protocol (ALPN) in common with the peer")   \
    X(RS_ETLS_PROTOCOL, -112, "TLS: malformed or unexpected message from the peer")                \
    X(RS_ETLS_NO_TRUST_ANCHORS, -113, "TLS: no CA certificate found in the trust store given")     \
    X(RS_ETLS_BAD_KEY, -114, "TLS: the private key is malformed, unsupported, or does not match the certificate") \
    X(RS_ETLS_ALERT_SENT, -115, "TLS: this side ended the handshake with a fatal alert (the log names it)") \
    X(RS_ETLS_RENEGOTIATION, -116, "TLS: the peer asked to renegotiate, which is refused")        \
    X(RS_ETLS_FAILED, -117, "TLS: failure inside the TLS library (the log has its error number)")

#define RS__RESULT_ENUM_ITEM(name, value, message) name = value,
typedef enum rs_result { RS__RESULT_TABLE(RS__RESULT_ENUM_ITEM) RS__RESULT_END = 1 } rs_result_t;
#undef RS__RESULT_ENUM_ITEM

/* Human-readable message for a result code; never NULL (unknown codes say so). Any thread. */
RESEAU_API const char *rs_strerror(int result);

/* The code's name, e.g. "RS_ECONNRESET"; "RS_E(unknown)" for codes not in the table. Any thread. */
RESEAU_API const char *rs_err_name(int result);

/* Map an errno value (or a Winsock error) to the most specific RS_Exxx code. 0 maps to RS_OK;
 * a value with no counterpart maps to RS_EUNKNOWN. Any thread. */
RESEAU_API int rs_result_from_errno(int os_error);
