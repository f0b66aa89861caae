/*
 * PKCS#11: TLS private keys that stay on a token (a smart card, an HSM,
 * SoftHSM2), through the token's own module (a shared library, loaded with
 * >>shared_library).
 *
 *     rs_pkcs11_lib_options_t lo = {0};
 *     lo.module_path = "/usr/lib/softhsm/libsofthsm2.so";
 *     rs_pkcs11_lib_t *lib = rs_pkcs11_lib_new(&lo, &err);
 *     rs_pkcs11_key_options_t ko = {0};
 *     ko.lib = lib; ko.token_label = "my-token"; ko.user_pin = "1234";
 *     ko.key_label = "client-key";
 *     rs_pkcs11_key_t *key = rs_pkcs11_key_new(&ko, &err);
 *     rs_tls_private_key_t pk;
 *     rs_pkcs11_key_get_tls_private_key(key, &pk);
 *     o.cert_file = "client.pem"; o.private_key = &pk;  // rs_tls_ctx_options_t
 *     ctx = rs_tls_ctx_new(&o, &err);  // the context holds a key reference
 *     rs_pkcs11_key_release(key); rs_pkcs11_lib_release(lib);
 *
 * The module is initialised with C_Initialize and CKF_OS_LOCKING_OK (it may
 * be called from several threads and uses the OS's locks); a module that
 * another part of the process initialised already
 * (CKR_CRYPTOKI_ALREADY_INITIALIZED) is used as it is and not finalised. A
 * key holds one session on its token, logged in as the user; signatures on
 * it are serialised (PKCS#11 runs one operation per session at a time).
 * Mechanisms: CKM_RSA_PKCS (the DigestInfo is built here) and CKM_ECDSA (its
 * r|s made DER for TLS). Signing is synchronous: see rs_tls_sign_fn.
 *
 * Errors: every CKR_ value maps to a code (the log, subject "tls", names the
 * CKR_ and the function): PIN errors RS_EPKCS11_PIN_INCORRECT or
 * RS_EPKCS11_PIN_LOCKED, CKR_USER_NOT_LOGGED_IN RS_EPKCS11_LOGIN_REQUIRED,
 * mechanism and key errors RS_EPKCS11_KEY_UNSUITABLE, token and device
 * failures RS_EPKCS11_DEVICE_ERROR, slot and token absence
 * RS_EPKCS11_TOKEN_NOT_FOUND, CKR_HOST_MEMORY RS_ENOMEM,
 * CKR_FUNCTION_NOT_SUPPORTED RS_ENOTSUP, CKR_ARGUMENTS_BAD RS_EINVAL, any
 * other RS_EPKCS11_FAILED.
 *
 * Threads: every function may be called from any thread; libraries and keys
 * are reference counted, and a key's sign function is thread-safe.
 */
typedef struct rs_pkcs11_lib rs_pkcs11_lib_t;
typedef struct rs_pkcs11_key rs_pkcs11_key_t;

typedef struct rs_pkcs11_lib_options {
    const rs_allocator_t *allocator; /* copied (default: NULL, libc) */
    const char *module_path;         /* the module (.so, .dll), UTF-8; required */
} rs_pkcs11_lib_options_t;

/* Load the module and initialise it. The caller holds one reference. NULL
 * with *err_out (may be NULL): RS_EINVAL (options or module_path NULL),
 * RS_ESHARED_LIBRARY_LOAD_FAILURE (the module cannot be loaded),
 * RS_ESHARED_LIBRARY_SYMBOL_NOT_FOUND (no C_GetFunctionList: not a PKCS#11
 * module), a C_GetFunctionList or C_Initialize failure mapped as above (for
 * instance RS_EPKCS11_FAILED for CKR_CANT_LOCK), RS_ENOMEM. Any thread. */
RESEAU_API rs_pkcs11_lib_t *rs_pkcs11_lib_new(const rs_pkcs11_lib_options_t *options, int *err_out);
/* Take and drop references; the last release finalises the module (if this
 * library initialised it) and unloads it. Keys hold references. NULL: no-op.
 * Any thread. */
RESEAU_API void rs_pkcs11_lib_acquire(rs_pkcs11_lib_t *lib);
RESEAU_API void rs_pkcs11_lib_release(rs_pkcs11_lib_t *lib);

typedef struct rs_pkcs11_key_options {
    rs_pkcs11_lib_t *lib; /* required; the key takes a reference */
    /* The token: by label (as shown by `pkcs11-tool -L`, without the padding
     * spaces), or by slot id when use_slot_id is set. One of the two is
     * required. (defaults: NULL, false) */
    const char *token_label;
    bool use_slot_id;
    uint64_t slot_id;
    /* The user PIN for C_Login; NULL logs in with none (a token without
     * login, or a protected authentication path). (default: NULL) */
    const char *user_pin;
    /* The private key (CKO_PRIVATE_KEY): by label (CKA_LABEL), by id
     * (CKA_ID, raw bytes), or both; at least one. The first key found that
     * matches is used. (defaults: NULL, empty) */
    const char *key_label;
    rs_byte_cursor_t key_id;
} rs_pkcs11_key_options_t;

/* Find the token, open a session, log in, find the key (RSA or EC). NULL
 * with *err_out: RS_EINVAL (options or lib NULL, no token or no key given),
 * RS_EPKCS11_TOKEN_NOT_FOUND, RS_EPKCS11_PIN_INCORRECT, RS_EPKCS11_PIN_LOCKED,
 * RS_EPKCS11_KEY_NOT_FOUND, RS_EPKCS11_KEY_UNSUITABLE (a key neither RSA nor
 * EC), another mapped CKR_ failure, RS_ENOMEM. Any thread. */
RESEAU_API rs_pkcs11_key_t *rs_pkcs11_key_new(const rs_pkcs11_key_options_t *options, int *err_out);
/* References; the last release closes the session (logging out when it was
 * the token's last one here) and drops the library reference. NULL: no-op.
 * Any thread. */
RESEAU_API void rs_pkcs11_key_acquire(rs_pkcs11_key_t *key);
RESEAU_API void rs_pkcs11_key_release(rs_pkcs11_key_t *key);

/* Fill *out with the key's sign function, for rs_tls_ctx_options_t
 * .private_key: a context that takes it acquires the key, and releases it
 * when freed. RS_EINVAL for NULLs. Any thread. */
RESEAU_API int rs_pkcs11_key_get_tls_private_key(rs_pkcs11_key_t *key, rs_tls_private_key_t *out);
