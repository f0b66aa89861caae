/* BearSSL has no error strings: its numbers are named here, for the log, and
 * mapped to the RS_ETLS_... code a user can act on. */

#define RS__TLS_LOG(level, ...)                                \
    do {                                                       \
        if ((int)(level) <= (int)rs_log_get_level()) {         \
            rs_log_printf((level), RS_LS_TLS, __VA_ARGS__);     \
        }                                                      \
    } while (0)

static const char *rs__tls_engine_error_name(int err) {
    switch (err) {
    case BR_ERR_OK: return "ok";
    case BR_ERR_BAD_PARAM: return "bad parameter";
    case BR_ERR_BAD_STATE: return "bad state";
    case BR_ERR_UNSUPPORTED_VERSION: return "unsupported protocol version";
    case BR_ERR_BAD_VERSION: return "bad version in record";
    case BR_ERR_BAD_LENGTH: return "bad record length";
    case BR_ERR_TOO_LARGE: return "record too large";
    case BR_ERR_BAD_MAC: return "bad record MAC";
    case BR_ERR_NO_RANDOM: return "no entropy";
    case BR_ERR_UNKNOWN_TYPE: return "unknown record type";
    case BR_ERR_UNEXPECTED: return "unexpected message";
    case BR_ERR_BAD_CCS: return "bad ChangeCipherSpec";
    case BR_ERR_BAD_ALERT: return "bad alert";
    case BR_ERR_BAD_HANDSHAKE: return "bad handshake message";
    case BR_ERR_OVERSIZED_ID: return "oversized session id";
    case BR_ERR_BAD_CIPHER_SUITE: return "cipher suite not offered";
    case BR_ERR_BAD_COMPRESSION: return "bad compression";
    case BR_ERR_BAD_FRAGLEN: return "bad max fragment length";
    case BR_ERR_BAD_SECRENEG: return "bad secure renegotiation";
    case BR_ERR_EXTRA_EXTENSION: return "unexpected extension";
    case BR_ERR_BAD_SNI: return "bad SNI";
    case BR_ERR_BAD_HELLO_DONE: return "bad ServerHelloDone";
    case BR_ERR_LIMIT_EXCEEDED: return "limit exceeded";
    case BR_ERR_BAD_FINISHED: return "bad Finished";
    case BR_ERR_RESUME_MISMATCH: return "resumption mismatch";
    case BR_ERR_INVALID_ALGORITHM: return "invalid algorithm";
    case BR_ERR_BAD_SIGNATURE: return "bad signature";
    case BR_ERR_WRONG_KEY_USAGE: return "wrong key usage";
    case BR_ERR_NO_CLIENT_AUTH: return "no client certificate";
    case BR_ERR_IO: return "I/O error";
    case BR_ERR_X509_INVALID_VALUE: return "X.509: invalid value";
    case BR_ERR_X509_TRUNCATED: return "X.509: truncated";
    case BR_ERR_X509_EMPTY_CHAIN: return "X.509: empty chain";
    case BR_ERR_X509_INNER_TRUNC: return "X.509: inner element truncated";
    case BR_ERR_X509_BAD_TAG_CLASS: return "X.509: bad tag class";
    case BR_ERR_X509_BAD_TAG_VALUE: return "X.509: bad tag value";
    case BR_ERR_X509_INDEFINITE_LENGTH: return "X.509: indefinite length";
    case BR_ERR_X509_EXTRA_ELEMENT: return "X.509: extra element";
    case BR_ERR_X509_UNEXPECTED: return "X.509: unexpected element";
    case BR_ERR_X509_NOT_CONSTRUCTED: return "X.509: not constructed";
    case BR_ERR_X509_NOT_PRIMITIVE: return "X.509: not primitive";
    case BR_ERR_X509_PARTIAL_BYTE: return "X.509: partial byte";
    case BR_ERR_X509_BAD_BOOLEAN: return "X.509: bad boolean";
    case BR_ERR_X509_OVERFLOW: return "X.509: overflow";
    case BR_ERR_X509_BAD_DN: return "X.509: bad distinguished name";
    case BR_ERR_X509_BAD_TIME: return "X.509: bad time";
    case BR_ERR_X509_UNSUPPORTED: return "X.509: unsupported feature";
    case BR_ERR_X509_LIMIT_EXCEEDED: return "X.509: limit exceeded";
    case BR_ERR_X509_WRONG_KEY_TYPE: return "X.509: wrong key type";
    case BR_ERR_X509_BAD_SIGNATURE: return "X.509: bad signature";
    case BR_ERR_X509_TIME_UNKNOWN: return "X.509: time unknown";
    case BR_ERR_X509_EXPIRED: return "X.509: expired or not yet valid";
    case BR_ERR_X509_DN_MISMATCH: return "X.509: DN mismatch";
    case BR_ERR_X509_BAD_SERVER_NAME: return "X.509: server name mismatch";
    case BR_ERR_X509_CRITICAL_EXTENSION: return "X.509: unknown critical extension";
    case BR_ERR_X509_NOT_CA: return "X.509: issuer is not a CA";
    case BR_ERR_X509_FORBIDDEN_KEY_USAGE: return "X.509: forbidden key usage";
    case BR_ERR_X509_WEAK_PUBLIC_KEY: return "X.509: weak public key";
    case BR_ERR_X509_NOT_TRUSTED: return "X.509: not trusted";
    default: return "unknown";
    }
}

static const char *rs__tls_alert_name(int alert) {
    switch (alert) {
    case 0: return "close_notify";
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 22: return "record_overflow";
    case 30: return "decompression_failure";
    case 40: return "handshake_failure";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 47: return "illegal_parameter";
    case 48: return "unknown_ca";
    case 49: return "access_denied";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 70: return "protocol_version";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 86: return "inappropriate_fallback";
    case 90: return "user_canceled";
    case 100: return "no_renegotiation";
    case 109: return "missing_extension";
    case 110: return "unsupported_extension";
    case 112: return "unrecognized_name";
    case 116: return "certificate_required";
    case 120: return "no_application_protocol";
    default: return "unknown alert";
    }
}

/* What went wrong, as far as the handler knows beyond BearSSL's number. */
typedef struct rs__tls_error_context {
    bool is_server;
    bool client_cert_requested; /* client: the server sent a CertificateRequest */
    bool have_client_cert;      /* client: we have one to send */
    bool not_yet_valid;         /* the X.509 check failed on a certificate's notBefore */
    bool ip_mismatch;           /* our iPAddress check refused the certificate */
    int key_error;              /* a sign function's error (>>private_key.c): the handshake's result */
} rs__tls_error_context_t;

static int rs__tls_map_alert(int alert, bool received, const rs__tls_error_context_t *ec) {
    switch (alert) {
    case 70: /* protocol_version */
        return RS_ETLS_PROTOCOL_VERSION;
    case 40: /* handshake_failure: no suite (or curve) in common, or a missing client certificate */
        if (received && !ec->is_server && ec->client_cert_requested && !ec->have_client_cert) {
            return RS_ETLS_CLIENT_CERT_REQUIRED;
        }
        return RS_ETLS_NO_SHARED_CIPHER; /* BearSSL sends it only when the hellos share no suite */
    case 116: /* certificate_required (TLS 1.3 peers) */
        return RS_ETLS_CLIENT_CERT_REQUIRED;
    case 120:
        return RS_ETLS_ALPN_MISMATCH;
    case 100:
        return RS_ETLS_RENEGOTIATION;
    default:
        if (received && !ec->is_server && ec->client_cert_requested && !ec->have_client_cert &&
            (alert == 42 || alert == 49)) {
            return RS_ETLS_CLIENT_CERT_REQUIRED;
        }
        return received ? RS_ETLS_ALERT_RECEIVED : RS_ETLS_ALERT_SENT;
    }
}

static int rs__tls_map_x509_error(int err, const rs__tls_error_context_t *ec) {
    switch (err) {
    case BR_ERR_X509_EXPIRED:
        return ec->not_yet_valid ? RS_ETLS_CERT_NOT_YET_VALID : RS_ETLS_CERT_EXPIRED;
    case BR_ERR_X509_BAD_SERVER_NAME:
        return RS_ETLS_HOSTNAME_MISMATCH;
    case BR_ERR_X509_NOT_TRUSTED:
    case BR_ERR_X509_DN_MISMATCH:
    case BR_ERR_X509_NOT_CA:
        return RS_ETLS_UNTRUSTED;
    case BR_ERR_X509_EMPTY_CHAIN:
        return ec->is_server ? RS_ETLS_CLIENT_CERT_REQUIRED : RS_ETLS_BAD_CERT;
    default:
        return RS_ETLS_BAD_CERT;
    }
}

/* Map br_ssl_engine_last_error to a code, and log BearSSL's own words. */
static int rs__tls_map_error(int err, const rs__tls_error_context_t *ec, const void *who) {
    int code;
    if (err == BR_ERR_OK) {
        return RS_OK;
    }
    if (ec->key_error) { /* BearSSL only knows that no signature came back */
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls %p: BearSSL error %d (%s) after the private key's sign function failed: %s",
                    who, err, rs__tls_engine_error_name(err), rs_err_name(ec->key_error));
        return ec->key_error;
    }
    if (ec->ip_mismatch) {
        code = RS_ETLS_HOSTNAME_MISMATCH;
    } else if (err >= BR_ERR_SEND_FATAL_ALERT) {
        code = rs__tls_map_alert(err - BR_ERR_SEND_FATAL_ALERT, false, ec);
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls %p: sent fatal alert %d (%s)", who, err - BR_ERR_SEND_FATAL_ALERT,
                    rs__tls_alert_name(err - BR_ERR_SEND_FATAL_ALERT));
        return code;
    } else if (err >= BR_ERR_RECV_FATAL_ALERT) {
        code = rs__tls_map_alert(err - BR_ERR_RECV_FATAL_ALERT, true, ec);
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls %p: received fatal alert %d (%s)", who, err - BR_ERR_RECV_FATAL_ALERT,
                    rs__tls_alert_name(err - BR_ERR_RECV_FATAL_ALERT));
        return code;
    } else if (err >= BR_ERR_X509_OK) {
        code = rs__tls_map_x509_error(err, ec);
    } else {
        switch (err) {
        case BR_ERR_UNSUPPORTED_VERSION:
        case BR_ERR_BAD_VERSION:
            code = RS_ETLS_PROTOCOL_VERSION;
            break;
        case BR_ERR_BAD_CIPHER_SUITE:
            code = RS_ETLS_NO_SHARED_CIPHER;
            break;
        case BR_ERR_NO_CLIENT_AUTH:
            code = RS_ETLS_CLIENT_CERT_REQUIRED;
            break;
        case BR_ERR_BAD_PARAM:
        case BR_ERR_BAD_STATE:
        case BR_ERR_NO_RANDOM:
            code = RS_ETLS_FAILED;
            break;
        default:
            code = RS_ETLS_PROTOCOL;
            break;
        }
    }
    RS__TLS_LOG(RS_LOG_LEVEL_WARN, "tls %p: BearSSL error %d (%s): %s", who, err, rs__tls_engine_error_name(err),
                rs_strerror(code));
    return code;
}
