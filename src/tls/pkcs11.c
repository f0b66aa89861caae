/* PKCS#11 (Cryptoki): the few types, constants and functions reseau uses,
 * written from the public PKCS#11 v2.40 specification (OASIS, "PKCS #11
 * Cryptographic Token Interface Base Specification Version 2.40"). Only what
 * is used is defined; the names keep the standard's, in our rs__ck_ prefix,
 * so that they can be looked up in the specification. */

/* CK_ULONG is C's unsigned long on every platform the specification names
 * (so 32 bits on 64-bit Windows), and the other integer types are it. */
typedef unsigned long rs__ck_ulong;
typedef rs__ck_ulong rs__ck_rv;
typedef unsigned char rs__ck_bbool;

/* Return values (CKR_*, section 5.1 of the base specification; the vendor
 * range starts at 0x80000000). Each one has its name for the log. */
#define RS__CKR_TABLE(X)                                                                                   \
    X(CKR_OK, 0x000) X(CKR_CANCEL, 0x001) X(CKR_HOST_MEMORY, 0x002) X(CKR_SLOT_ID_INVALID, 0x003)          \
    X(CKR_GENERAL_ERROR, 0x005) X(CKR_FUNCTION_FAILED, 0x006) X(CKR_ARGUMENTS_BAD, 0x007)                   \
    X(CKR_NO_EVENT, 0x008) X(CKR_NEED_TO_CREATE_THREADS, 0x009) X(CKR_CANT_LOCK, 0x00A)                     \
    X(CKR_ATTRIBUTE_READ_ONLY, 0x010) X(CKR_ATTRIBUTE_SENSITIVE, 0x011) X(CKR_ATTRIBUTE_TYPE_INVALID, 0x012) \
    X(CKR_ATTRIBUTE_VALUE_INVALID, 0x013) X(CKR_ACTION_PROHIBITED, 0x01B) X(CKR_DATA_INVALID, 0x020)        \
    X(CKR_DATA_LEN_RANGE, 0x021) X(CKR_DEVICE_ERROR, 0x030) X(CKR_DEVICE_MEMORY, 0x031)                     \
    X(CKR_DEVICE_REMOVED, 0x032) X(CKR_ENCRYPTED_DATA_INVALID, 0x040) X(CKR_ENCRYPTED_DATA_LEN_RANGE, 0x041) \
    X(CKR_FUNCTION_CANCELED, 0x050) X(CKR_FUNCTION_NOT_PARALLEL, 0x051) X(CKR_FUNCTION_NOT_SUPPORTED, 0x054) \
    X(CKR_KEY_HANDLE_INVALID, 0x060) X(CKR_KEY_SIZE_RANGE, 0x062) X(CKR_KEY_TYPE_INCONSISTENT, 0x063)       \
    X(CKR_KEY_NOT_NEEDED, 0x064) X(CKR_KEY_CHANGED, 0x065) X(CKR_KEY_NEEDED, 0x066)                         \
    X(CKR_KEY_INDIGESTIBLE, 0x067) X(CKR_KEY_FUNCTION_NOT_PERMITTED, 0x068) X(CKR_KEY_NOT_WRAPPABLE, 0x069) \
    X(CKR_KEY_UNEXTRACTABLE, 0x06A) X(CKR_MECHANISM_INVALID, 0x070) X(CKR_MECHANISM_PARAM_INVALID, 0x071)   \
    X(CKR_OBJECT_HANDLE_INVALID, 0x082) X(CKR_OPERATION_ACTIVE, 0x090) X(CKR_OPERATION_NOT_INITIALIZED, 0x091) \
    X(CKR_PIN_INCORRECT, 0x0A0) X(CKR_PIN_INVALID, 0x0A1) X(CKR_PIN_LEN_RANGE, 0x0A2)                       \
    X(CKR_PIN_EXPIRED, 0x0A3) X(CKR_PIN_LOCKED, 0x0A4) X(CKR_SESSION_CLOSED, 0x0B0)                         \
    X(CKR_SESSION_COUNT, 0x0B1) X(CKR_SESSION_HANDLE_INVALID, 0x0B3)                                         \
    X(CKR_SESSION_PARALLEL_NOT_SUPPORTED, 0x0B4) X(CKR_SESSION_READ_ONLY, 0x0B5) X(CKR_SESSION_EXISTS, 0x0B6) \
    X(CKR_SESSION_READ_ONLY_EXISTS, 0x0B7) X(CKR_SESSION_READ_WRITE_SO_EXISTS, 0x0B8)                       \
    X(CKR_SIGNATURE_INVALID, 0x0C0) X(CKR_SIGNATURE_LEN_RANGE, 0x0C1) X(CKR_TEMPLATE_INCOMPLETE, 0x0D0)     \
    X(CKR_TEMPLATE_INCONSISTENT, 0x0D1) X(CKR_TOKEN_NOT_PRESENT, 0x0E0) X(CKR_TOKEN_NOT_RECOGNIZED, 0x0E1)  \
    X(CKR_TOKEN_WRITE_PROTECTED, 0x0E2) X(CKR_UNWRAPPING_KEY_HANDLE_INVALID, 0x0F0)                          \
    X(CKR_UNWRAPPING_KEY_SIZE_RANGE, 0x0F1) X(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, 0x0F2)                   \
    X(CKR_USER_ALREADY_LOGGED_IN, 0x100) X(CKR_USER_NOT_LOGGED_IN, 0x101)                                    \
    X(CKR_USER_PIN_NOT_INITIALIZED, 0x102) X(CKR_USER_TYPE_INVALID, 0x103)                                   \
    X(CKR_USER_ANOTHER_ALREADY_LOGGED_IN, 0x104) X(CKR_USER_TOO_MANY_TYPES, 0x105)                           \
    X(CKR_WRAPPED_KEY_INVALID, 0x110) X(CKR_WRAPPED_KEY_LEN_RANGE, 0x112)                                    \
    X(CKR_WRAPPING_KEY_HANDLE_INVALID, 0x113) X(CKR_WRAPPING_KEY_SIZE_RANGE, 0x114)                          \
    X(CKR_WRAPPING_KEY_TYPE_INCONSISTENT, 0x115) X(CKR_RANDOM_SEED_NOT_SUPPORTED, 0x120)                     \
    X(CKR_RANDOM_NO_RNG, 0x121) X(CKR_DOMAIN_PARAMS_INVALID, 0x130) X(CKR_CURVE_NOT_SUPPORTED, 0x140)       \
    X(CKR_BUFFER_TOO_SMALL, 0x150) X(CKR_SAVED_STATE_INVALID, 0x160) X(CKR_INFORMATION_SENSITIVE, 0x170)    \
    X(CKR_STATE_UNSAVEABLE, 0x180) X(CKR_CRYPTOKI_NOT_INITIALIZED, 0x190)                                    \
    X(CKR_CRYPTOKI_ALREADY_INITIALIZED, 0x191) X(CKR_MUTEX_BAD, 0x1A0) X(CKR_MUTEX_NOT_LOCKED, 0x1A1)       \
    X(CKR_NEW_PIN_MODE, 0x1B0) X(CKR_NEXT_OTP, 0x1B1) X(CKR_EXCEEDED_MAX_ITERATIONS, 0x1B5)                 \
    X(CKR_FIPS_SELF_TEST_FAILED, 0x1B6) X(CKR_LIBRARY_LOAD_FAILED, 0x1B7) X(CKR_PIN_TOO_WEAK, 0x1B8)        \
    X(CKR_PUBLIC_KEY_INVALID, 0x1B9) X(CKR_FUNCTION_REJECTED, 0x200)

#define RS__CKR_ENUM_ITEM(name, value) RS__##name = value,
enum rs__ckr { RS__CKR_TABLE(RS__CKR_ENUM_ITEM) RS__CKR_END };
#define RS__CKR_VENDOR_DEFINED 0x80000000UL /* and above: the module's own */
#undef RS__CKR_ENUM_ITEM

/* Flags, classes, key types, attributes, mechanisms and the user type, with
 * the standard's values. */
#define RS__CKF_OS_LOCKING_OK 0x00000002UL  /* C_Initialize: the module may use the OS's locks */
#define RS__CKF_RW_SESSION 0x00000002UL     /* not set: a read-only session is enough to sign */
#define RS__CKF_SERIAL_SESSION 0x00000004UL /* required by C_OpenSession */
#define RS__CKU_USER 1UL
#define RS__CKO_PRIVATE_KEY 3UL
#define RS__CKK_RSA 0x0UL
#define RS__CKK_EC 0x3UL
#define RS__CKA_CLASS 0x000UL
#define RS__CKA_LABEL 0x003UL
#define RS__CKA_KEY_TYPE 0x100UL
#define RS__CKA_ID 0x102UL
#define RS__CKM_RSA_PKCS 0x0001UL  /* PKCS #1 v1.5 padding of data we give (a DigestInfo) */
#define RS__CKM_ECDSA 0x1041UL     /* ECDSA of a hash we give; the result is r then s */
#define RS__CK_INVALID_HANDLE 0UL

/* Windows builds of PKCS#11 modules pack their structures to 1 byte (the
 * specification's platform notes): without this the pointer in an
 * attribute would sit 4 bytes later than the module expects. */
#if RESEAU_OS_WINDOWS
#pragma pack(push, 1)
#endif
typedef struct rs__ck_version {
    unsigned char major, minor;
} rs__ck_version_t;

typedef struct rs__ck_attribute {
    rs__ck_ulong type;
    void *value;
    rs__ck_ulong value_len; /* in: the buffer's size; out: the value's (-1 when unavailable) */
} rs__ck_attribute_t;

typedef struct rs__ck_mechanism {
    rs__ck_ulong mechanism;
    void *parameter;
    rs__ck_ulong parameter_len;
} rs__ck_mechanism_t;

/* C_Initialize's argument: no mutex callbacks, and CKF_OS_LOCKING_OK. */
typedef struct rs__ck_c_initialize_args {
    void (*create_mutex)(void); /* unused here: always NULL */
    void (*destroy_mutex)(void);
    void (*lock_mutex)(void);
    void (*unlock_mutex)(void);
    rs__ck_ulong flags;
    void *reserved;
} rs__ck_c_initialize_args_t;

typedef struct rs__ck_token_info {
    unsigned char label[32]; /* blank padded, not NUL terminated */
    unsigned char manufacturer_id[32];
    unsigned char model[16];
    unsigned char serial_number[16];
    rs__ck_ulong flags;
    rs__ck_ulong max_session_count, session_count, max_rw_session_count, rw_session_count;
    rs__ck_ulong max_pin_len, min_pin_len;
    rs__ck_ulong total_public_memory, free_public_memory, total_private_memory, free_private_memory;
    rs__ck_version_t hardware_version, firmware_version;
    unsigned char utc_time[16];
} rs__ck_token_info_t;

typedef void (*rs__ck_unused_fn)(void); /* an entry of the list reseau never calls */

/* CK_FUNCTION_LIST: the version, then every v2.x function in the
 * specification's order (which is what fixes each entry's offset). */
typedef struct rs__ck_function_list rs__ck_function_list_t;
struct rs__ck_function_list {
    rs__ck_version_t version;
    rs__ck_rv (*C_Initialize)(void *init_args);
    rs__ck_rv (*C_Finalize)(void *reserved);
    rs__ck_unused_fn C_GetInfo;
    rs__ck_rv (*C_GetFunctionList)(rs__ck_function_list_t **list);
    rs__ck_rv (*C_GetSlotList)(rs__ck_bbool token_present, rs__ck_ulong *slots, rs__ck_ulong *count);
    rs__ck_unused_fn C_GetSlotInfo;
    rs__ck_rv (*C_GetTokenInfo)(rs__ck_ulong slot, rs__ck_token_info_t *info);
    rs__ck_unused_fn C_GetMechanismList, C_GetMechanismInfo, C_InitToken, C_InitPIN, C_SetPIN;
    rs__ck_rv (*C_OpenSession)(rs__ck_ulong slot, rs__ck_ulong flags, void *application, void *notify,
                               rs__ck_ulong *session);
    rs__ck_rv (*C_CloseSession)(rs__ck_ulong session);
    rs__ck_unused_fn C_CloseAllSessions, C_GetSessionInfo, C_GetOperationState, C_SetOperationState;
    rs__ck_rv (*C_Login)(rs__ck_ulong session, rs__ck_ulong user_type, unsigned char *pin, rs__ck_ulong pin_len);
    rs__ck_unused_fn C_Logout, C_CreateObject, C_CopyObject, C_DestroyObject, C_GetObjectSize;
    rs__ck_rv (*C_GetAttributeValue)(rs__ck_ulong session, rs__ck_ulong object, rs__ck_attribute_t *tmpl,
                                     rs__ck_ulong count);
    rs__ck_unused_fn C_SetAttributeValue;
    rs__ck_rv (*C_FindObjectsInit)(rs__ck_ulong session, rs__ck_attribute_t *tmpl, rs__ck_ulong count);
    rs__ck_rv (*C_FindObjects)(rs__ck_ulong session, rs__ck_ulong *objects, rs__ck_ulong max, rs__ck_ulong *count);
    rs__ck_rv (*C_FindObjectsFinal)(rs__ck_ulong session);
    rs__ck_unused_fn C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal;
    rs__ck_unused_fn C_DecryptInit, C_Decrypt, C_DecryptUpdate, C_DecryptFinal;
    rs__ck_unused_fn C_DigestInit, C_Digest, C_DigestUpdate, C_DigestKey, C_DigestFinal;
    rs__ck_rv (*C_SignInit)(rs__ck_ulong session, rs__ck_mechanism_t *mechanism, rs__ck_ulong key);
    rs__ck_rv (*C_Sign)(rs__ck_ulong session, unsigned char *data, rs__ck_ulong data_len, unsigned char *sig,
                        rs__ck_ulong *sig_len);
    rs__ck_unused_fn C_SignUpdate, C_SignFinal, C_SignRecoverInit, C_SignRecover;
    rs__ck_unused_fn C_VerifyInit, C_Verify, C_VerifyUpdate, C_VerifyFinal, C_VerifyRecoverInit, C_VerifyRecover;
    rs__ck_unused_fn C_DigestEncryptUpdate, C_DecryptDigestUpdate, C_SignEncryptUpdate, C_DecryptVerifyUpdate;
    rs__ck_unused_fn C_GenerateKey, C_GenerateKeyPair, C_WrapKey, C_UnwrapKey, C_DeriveKey;
    rs__ck_unused_fn C_SeedRandom, C_GenerateRandom, C_GetFunctionStatus, C_CancelFunction, C_WaitForSlotEvent;
};
#if RESEAU_OS_WINDOWS
#pragma pack(pop)
#endif

typedef rs__ck_rv (*rs__ck_get_function_list_fn)(rs__ck_function_list_t **list);

/* ---- CKR_ names and codes ---------------------------------------------------- */

static const char *rs__ckr_name(rs__ck_rv rv) {
#define RS__CKR_NAME_CASE(name, value) \
    case value:                        \
        return #name;
    switch (rv) {
        RS__CKR_TABLE(RS__CKR_NAME_CASE)
    default:
        return rv >= RS__CKR_VENDOR_DEFINED ? "CKR_VENDOR_DEFINED" : "CKR_(unknown)";
    }
#undef RS__CKR_NAME_CASE
}

static int rs__ckr_code(rs__ck_rv rv) {
    switch (rv) {
    case RS__CKR_OK: return RS_OK;
    case RS__CKR_HOST_MEMORY: return RS_ENOMEM;
    case RS__CKR_ARGUMENTS_BAD: return RS_EINVAL;
    case RS__CKR_FUNCTION_NOT_SUPPORTED: return RS_ENOTSUP;
    case RS__CKR_PIN_INCORRECT:
    case RS__CKR_PIN_INVALID:
    case RS__CKR_PIN_LEN_RANGE: return RS_EPKCS11_PIN_INCORRECT;
    case RS__CKR_PIN_EXPIRED:
    case RS__CKR_PIN_LOCKED:
    case RS__CKR_USER_PIN_NOT_INITIALIZED: return RS_EPKCS11_PIN_LOCKED;
    case RS__CKR_USER_NOT_LOGGED_IN: return RS_EPKCS11_LOGIN_REQUIRED;
    case RS__CKR_SLOT_ID_INVALID:
    case RS__CKR_TOKEN_NOT_PRESENT:
    case RS__CKR_TOKEN_NOT_RECOGNIZED: return RS_EPKCS11_TOKEN_NOT_FOUND;
    case RS__CKR_KEY_HANDLE_INVALID:
    case RS__CKR_KEY_SIZE_RANGE:
    case RS__CKR_KEY_TYPE_INCONSISTENT:
    case RS__CKR_KEY_FUNCTION_NOT_PERMITTED:
    case RS__CKR_MECHANISM_INVALID:
    case RS__CKR_MECHANISM_PARAM_INVALID:
    case RS__CKR_DATA_INVALID:
    case RS__CKR_DATA_LEN_RANGE:
    case RS__CKR_CURVE_NOT_SUPPORTED:
    case RS__CKR_DOMAIN_PARAMS_INVALID: return RS_EPKCS11_KEY_UNSUITABLE;
    case RS__CKR_GENERAL_ERROR:
    case RS__CKR_FUNCTION_FAILED:
    case RS__CKR_DEVICE_ERROR:
    case RS__CKR_DEVICE_MEMORY:
    case RS__CKR_DEVICE_REMOVED:
    case RS__CKR_SESSION_CLOSED:
    case RS__CKR_SESSION_HANDLE_INVALID:
    case RS__CKR_CRYPTOKI_NOT_INITIALIZED:
    case RS__CKR_FIPS_SELF_TEST_FAILED: return RS_EPKCS11_DEVICE_ERROR;
    default: return RS_EPKCS11_FAILED;
    }
}

/* Map a failed call's CKR_ to its code, and say which call and which CKR_. */
static int rs__pkcs11_fail(const char *what, rs__ck_rv rv) {
    int code = rs__ckr_code(rv);
    RS__TLS_LOG(RS_LOG_LEVEL_WARN, "pkcs11: %s failed: %s (0x%lx): %s", what, rs__ckr_name(rv), (unsigned long)rv,
                rs_err_name(code));
    return code;
}

/* ---- the library --------------------------------------------------------------- */

struct rs_pkcs11_lib {
    rs_allocator_t allocator;
    rs_shared_library_t module;
    rs__ck_function_list_t *fl;
    bool finalize; /* we initialised it, so we finalise it */
    rs_mutex_t lock; /* refs */
    int refs;
};

static void rs__pkcs11_lib_free(rs_pkcs11_lib_t *lib) {
    rs_allocator_t alloc = lib->allocator;
    if (lib->finalize) {
        lib->fl->C_Finalize(NULL);
    }
    rs_shared_library_close(&lib->module);
    rs_mutex_cleanup(&lib->lock);
    rs_mem_free(&alloc, lib);
}

static int rs__pkcs11_lib_load(rs_pkcs11_lib_t *lib, const char *path) {
    rs_shared_library_fn fn;
    rs__ck_get_function_list_fn get_list;
    rs__ck_c_initialize_args_t args;
    rs__ck_rv rv;
    int err = rs_shared_library_open(&lib->module, &lib->allocator, path);
    if (!err) {
        err = rs_shared_library_find_symbol(&lib->module, "C_GetFunctionList", &fn);
    }
    if (err) {
        return err;
    }
    get_list = (rs__ck_get_function_list_fn)fn;
    rv = get_list(&lib->fl);
    if (rv != RS__CKR_OK) {
        return rs__pkcs11_fail("C_GetFunctionList", rv);
    }
    if (!lib->fl || lib->fl->version.major != 2) { /* 3.x modules give a 2.x list here too */
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "pkcs11: %s: unsupported function list version %d.%d", path,
                    lib->fl ? lib->fl->version.major : 0, lib->fl ? lib->fl->version.minor : 0);
        return RS_EPKCS11_FAILED;
    }
    memset(&args, 0, sizeof(args));
    args.flags = RS__CKF_OS_LOCKING_OK;
    rv = lib->fl->C_Initialize(&args);
    if (rv == RS__CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        RS__TLS_LOG(RS_LOG_LEVEL_INFO, "pkcs11: %s was initialised already in this process; not finalising it", path);
        return RS_OK;
    }
    if (rv != RS__CKR_OK) {
        return rs__pkcs11_fail("C_Initialize", rv);
    }
    lib->finalize = true;
    return RS_OK;
}

RESEAU_API rs_pkcs11_lib_t *rs_pkcs11_lib_new(const rs_pkcs11_lib_options_t *options, int *err_out) {
    const rs_allocator_t *alloc;
    rs_pkcs11_lib_t *lib = NULL;
    int err = RS_EINVAL;
    if (!options || !options->module_path) {
        goto done;
    }
    alloc = options->allocator ? options->allocator : rs_default_allocator();
    lib = (rs_pkcs11_lib_t *)rs_mem_calloc(alloc, 1, sizeof(*lib));
    err = RS_ENOMEM;
    if (!lib) {
        goto done;
    }
    lib->allocator = *alloc;
    lib->refs = 1;
    if (rs_mutex_init(&lib->lock) != RS_OK) {
        rs_mem_free(alloc, lib);
        lib = NULL;
        goto done;
    }
    err = rs__pkcs11_lib_load(lib, options->module_path);
    if (err) {
        rs__pkcs11_lib_free(lib);
        lib = NULL;
    }
done:
    if (err_out) {
        *err_out = err;
    }
    return lib;
}

RESEAU_API void rs_pkcs11_lib_acquire(rs_pkcs11_lib_t *lib) {
    if (lib) {
        rs_mutex_lock(&lib->lock);
        lib->refs++;
        rs_mutex_unlock(&lib->lock);
    }
}

RESEAU_API void rs_pkcs11_lib_release(rs_pkcs11_lib_t *lib) {
    int left;
    if (!lib) {
        return;
    }
    rs_mutex_lock(&lib->lock);
    left = --lib->refs;
    rs_mutex_unlock(&lib->lock);
    if (left == 0) {
        rs__pkcs11_lib_free(lib);
    }
}

/* ---- keys ------------------------------------------------------------------------ */

/* Longest signature: RSA-8192 (1024 bytes) is more than any token here
 * makes; ECDSA P-521 r|s is 132 bytes, DER adds at most 9. */
#define RS__PKCS11_SIG_MAX 1024

struct rs_pkcs11_key {
    rs_pkcs11_lib_t *lib;
    rs__ck_ulong session;
    rs__ck_ulong object;
    rs__ck_ulong key_type; /* CKK_RSA or CKK_EC */
    rs_mutex_t lock;       /* one operation at a time on the session; refs */
    int refs;
};

/* The token's slot: by id (it must hold a token), or by label. */
static int rs__pkcs11_find_slot(rs_pkcs11_lib_t *lib, const rs_pkcs11_key_options_t *o, rs__ck_ulong *slot_out) {
    rs__ck_ulong count = 0, i;
    rs__ck_ulong *slots;
    int err = RS_EPKCS11_TOKEN_NOT_FOUND;
    rs__ck_rv rv = lib->fl->C_GetSlotList(1, NULL, &count);
    if (rv != RS__CKR_OK) {
        return rs__pkcs11_fail("C_GetSlotList", rv);
    }
    slots = (rs__ck_ulong *)rs_mem_calloc(&lib->allocator, count ? count : 1, sizeof(*slots));
    if (!slots) {
        return RS_ENOMEM;
    }
    rv = lib->fl->C_GetSlotList(1, slots, &count);
    if (rv != RS__CKR_OK) {
        rs_mem_free(&lib->allocator, slots);
        return rs__pkcs11_fail("C_GetSlotList", rv);
    }
    for (i = 0; i < count && err == RS_EPKCS11_TOKEN_NOT_FOUND; ++i) {
        rs__ck_token_info_t info;
        size_t n;
        if (o->use_slot_id) {
            if ((uint64_t)slots[i] == o->slot_id) {
                *slot_out = slots[i];
                err = RS_OK;
            }
            continue;
        }
        rv = lib->fl->C_GetTokenInfo(slots[i], &info);
        if (rv != RS__CKR_OK) {
            continue; /* a token being removed: look at the others */
        }
        n = strlen(o->token_label);
        if (n <= sizeof(info.label) && memcmp(info.label, o->token_label, n) == 0) {
            size_t j = n;
            while (j < sizeof(info.label) && info.label[j] == ' ') {
                ++j;
            }
            if (j == sizeof(info.label)) {
                *slot_out = slots[i];
                err = RS_OK;
            }
        }
    }
    rs_mem_free(&lib->allocator, slots);
    if (err) {
        if (o->use_slot_id) {
            RS__TLS_LOG(RS_LOG_LEVEL_WARN, "pkcs11: no token in slot %llu", (unsigned long long)o->slot_id);
        } else {
            RS__TLS_LOG(RS_LOG_LEVEL_WARN, "pkcs11: no token labelled \"%s\"", o->token_label);
        }
    }
    return err;
}

static int rs__pkcs11_login(rs_pkcs11_key_t *key, const char *pin) {
    rs__ck_rv rv;
    if (!pin) {
        return RS_OK;
    }
    rv = key->lib->fl->C_Login(key->session, RS__CKU_USER, (unsigned char *)(uintptr_t)pin, (rs__ck_ulong)strlen(pin));
    /* The login state is the application's, per token: another key of ours
     * on the same token has logged in already. */
    if (rv == RS__CKR_OK || rv == RS__CKR_USER_ALREADY_LOGGED_IN) {
        return RS_OK;
    }
    return rs__pkcs11_fail("C_Login", rv);
}

static int rs__pkcs11_find_key(rs_pkcs11_key_t *key, const rs_pkcs11_key_options_t *o) {
    const rs__ck_function_list_t *fl = key->lib->fl;
    rs__ck_ulong cls = RS__CKO_PRIVATE_KEY, found = 0;
    rs__ck_attribute_t tmpl[3];
    rs__ck_attribute_t type_attr;
    rs__ck_ulong n = 0;
    rs__ck_rv rv;
    tmpl[n].type = RS__CKA_CLASS;
    tmpl[n].value = &cls;
    tmpl[n++].value_len = sizeof(cls);
    if (o->key_label) {
        tmpl[n].type = RS__CKA_LABEL;
        tmpl[n].value = (void *)(uintptr_t)o->key_label;
        tmpl[n++].value_len = (rs__ck_ulong)strlen(o->key_label);
    }
    if (o->key_id.len) {
        tmpl[n].type = RS__CKA_ID;
        tmpl[n].value = (void *)(uintptr_t)o->key_id.ptr;
        tmpl[n++].value_len = (rs__ck_ulong)o->key_id.len;
    }
    rv = fl->C_FindObjectsInit(key->session, tmpl, n);
    if (rv != RS__CKR_OK) {
        return rs__pkcs11_fail("C_FindObjectsInit", rv);
    }
    rv = fl->C_FindObjects(key->session, &key->object, 1, &found);
    fl->C_FindObjectsFinal(key->session);
    if (rv != RS__CKR_OK) {
        return rs__pkcs11_fail("C_FindObjects", rv);
    }
    if (found == 0) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "pkcs11: no private key%s%s%s on the token (logged in: %s)",
                    o->key_label ? " labelled \"" : "", o->key_label ? o->key_label : "", o->key_label ? "\"" : "",
                    o->user_pin ? "yes" : "no");
        return RS_EPKCS11_KEY_NOT_FOUND;
    }
    type_attr.type = RS__CKA_KEY_TYPE;
    type_attr.value = &key->key_type;
    type_attr.value_len = sizeof(key->key_type);
    rv = fl->C_GetAttributeValue(key->session, key->object, &type_attr, 1);
    if (rv != RS__CKR_OK) {
        return rs__pkcs11_fail("C_GetAttributeValue(CKA_KEY_TYPE)", rv);
    }
    if (key->key_type != RS__CKK_RSA && key->key_type != RS__CKK_EC) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "pkcs11: the key is of type 0x%lx, neither RSA nor EC",
                    (unsigned long)key->key_type);
        return RS_EPKCS11_KEY_UNSUITABLE;
    }
    return RS_OK;
}

static void rs__pkcs11_key_free(rs_pkcs11_key_t *key) {
    rs_pkcs11_lib_t *lib = key->lib;
    if (key->session != RS__CK_INVALID_HANDLE) {
        lib->fl->C_CloseSession(key->session);
    }
    rs_mutex_cleanup(&key->lock);
    rs_mem_free(&lib->allocator, key);
    rs_pkcs11_lib_release(lib);
}

static int rs__pkcs11_key_open(rs_pkcs11_key_t *key, const rs_pkcs11_key_options_t *o) {
    rs__ck_ulong slot = 0;
    rs__ck_rv rv;
    int err = rs__pkcs11_find_slot(key->lib, o, &slot);
    if (err) {
        return err;
    }
    rv = key->lib->fl->C_OpenSession(slot, RS__CKF_SERIAL_SESSION, NULL, NULL, &key->session);
    if (rv != RS__CKR_OK) {
        key->session = RS__CK_INVALID_HANDLE;
        return rs__pkcs11_fail("C_OpenSession", rv);
    }
    err = rs__pkcs11_login(key, o->user_pin);
    return err ? err : rs__pkcs11_find_key(key, o);
}

RESEAU_API rs_pkcs11_key_t *rs_pkcs11_key_new(const rs_pkcs11_key_options_t *options, int *err_out) {
    rs_pkcs11_key_t *key = NULL;
    int err = RS_EINVAL;
    if (!options || !options->lib || (!options->token_label && !options->use_slot_id) ||
        (!options->key_label && !options->key_id.len) || (options->key_id.len && !options->key_id.ptr)) {
        goto done;
    }
    err = RS_ENOMEM;
    key = (rs_pkcs11_key_t *)rs_mem_calloc(&options->lib->allocator, 1, sizeof(*key));
    if (!key) {
        goto done;
    }
    if (rs_mutex_init(&key->lock) != RS_OK) {
        rs_mem_free(&options->lib->allocator, key);
        key = NULL;
        goto done;
    }
    rs_pkcs11_lib_acquire(options->lib);
    key->lib = options->lib;
    key->refs = 1;
    key->session = RS__CK_INVALID_HANDLE;
    err = rs__pkcs11_key_open(key, options);
    if (err) {
        rs__pkcs11_key_free(key);
        key = NULL;
    }
done:
    if (err_out) {
        *err_out = err;
    }
    return key;
}

RESEAU_API void rs_pkcs11_key_acquire(rs_pkcs11_key_t *key) {
    if (key) {
        rs_mutex_lock(&key->lock);
        key->refs++;
        rs_mutex_unlock(&key->lock);
    }
}

RESEAU_API void rs_pkcs11_key_release(rs_pkcs11_key_t *key) {
    int left;
    if (!key) {
        return;
    }
    rs_mutex_lock(&key->lock);
    left = --key->refs;
    rs_mutex_unlock(&key->lock);
    if (left == 0) {
        rs__pkcs11_key_free(key);
    }
}

/* The DER DigestInfo prefix of each hash (RFC 8017, section 9.2, note 1):
 * the hash's AlgorithmIdentifier with NULL parameters, then the OCTET
 * STRING header; the hash value follows. */
static const unsigned char *rs__pkcs11_digest_info(rs_tls_hash_t hash, size_t *len) {
    static const unsigned char sha1[] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                         0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
    static const unsigned char sha224[] = {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                           0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c};
    static const unsigned char sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                           0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    static const unsigned char sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                           0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
    static const unsigned char sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                           0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};
    switch (hash) {
    case RS_TLS_HASH_MD5_SHA1: *len = 0; return sha1; /* TLS 1.0/1.1: no DigestInfo at all */
    case RS_TLS_HASH_SHA1: *len = sizeof(sha1); return sha1;
    case RS_TLS_HASH_SHA224: *len = sizeof(sha224); return sha224;
    case RS_TLS_HASH_SHA256: *len = sizeof(sha256); return sha256;
    case RS_TLS_HASH_SHA384: *len = sizeof(sha384); return sha384;
    case RS_TLS_HASH_SHA512: *len = sizeof(sha512); return sha512;
    default: return NULL;
    }
}

/* C_SignInit then C_Sign, under the key's lock (one operation per session). */
static int rs__pkcs11_sign_raw(rs_pkcs11_key_t *key, rs__ck_ulong mech_type, unsigned char *in, size_t in_len,
                               unsigned char *out, rs__ck_ulong *out_len) {
    rs__ck_mechanism_t mech;
    rs__ck_rv rv;
    const char *what = "C_SignInit";
    mech.mechanism = mech_type;
    mech.parameter = NULL;
    mech.parameter_len = 0;
    rs_mutex_lock(&key->lock);
    rv = key->lib->fl->C_SignInit(key->session, &mech, key->object);
    if (rv == RS__CKR_OK) {
        what = "C_Sign";
        rv = key->lib->fl->C_Sign(key->session, in, (rs__ck_ulong)in_len, out, out_len);
    }
    rs_mutex_unlock(&key->lock);
    return rv == RS__CKR_OK ? RS_OK : rs__pkcs11_fail(what, rv);
}

static int rs__pkcs11_tls_sign(rs_tls_sign_algorithm_t algorithm, rs_tls_hash_t hash, const uint8_t *digest,
                               size_t digest_len, uint8_t *sig, size_t sig_capacity, size_t *sig_len,
                               void *user_data) {
    rs_pkcs11_key_t *key = (rs_pkcs11_key_t *)user_data;
    unsigned char in[19 + 64]; /* the longest DigestInfo prefix and hash */
    unsigned char out[RS__PKCS11_SIG_MAX];
    rs__ck_ulong out_len = sizeof(out);
    size_t prefix_len = 0;
    const unsigned char *prefix;
    int err;
    bool rsa = key->key_type == RS__CKK_RSA;
    if (rsa != (algorithm == RS_TLS_SIGN_RSA_PKCS1)) {
        RS__TLS_LOG(RS_LOG_LEVEL_WARN, "pkcs11: an %s signature asked of an %s key (the certificate's key type differs)",
                    algorithm == RS_TLS_SIGN_RSA_PKCS1 ? "RSA" : "ECDSA", rsa ? "RSA" : "EC");
        return RS_EPKCS11_KEY_UNSUITABLE;
    }
    prefix = rsa ? rs__pkcs11_digest_info(hash, &prefix_len) : (const unsigned char *)"";
    if (!prefix || digest_len > 64) {
        return RS_EINVAL;
    }
    memcpy(in, prefix, prefix_len);
    memcpy(in + prefix_len, digest, digest_len);
    err = rs__pkcs11_sign_raw(key, rsa ? RS__CKM_RSA_PKCS : RS__CKM_ECDSA, in, prefix_len + digest_len, out, &out_len);
    if (err) {
        return err;
    }
    if (!rsa) { /* r|s to the DER SEQUENCE TLS carries; in place, with room to grow */
        if (out_len + 9 > sizeof(out)) {
            return RS_EPKCS11_FAILED;
        }
        out_len = (rs__ck_ulong)br_ecdsa_raw_to_asn1(out, out_len);
        if (out_len == 0) {
            RS__TLS_LOG(RS_LOG_LEVEL_WARN, "pkcs11: the token's ECDSA signature is malformed");
            return RS_EPKCS11_FAILED;
        }
    }
    if (out_len > sig_capacity) {
        return RS_EOVERFLOW;
    }
    memcpy(sig, out, out_len);
    *sig_len = out_len;
    return RS_OK;
}

static void rs__pkcs11_tls_acquire(void *user_data) {
    rs_pkcs11_key_acquire((rs_pkcs11_key_t *)user_data);
}

static void rs__pkcs11_tls_release(void *user_data) {
    rs_pkcs11_key_release((rs_pkcs11_key_t *)user_data);
}

RESEAU_API int rs_pkcs11_key_get_tls_private_key(rs_pkcs11_key_t *key, rs_tls_private_key_t *out) {
    if (!key || !out) {
        return RS_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    out->sign = rs__pkcs11_tls_sign;
    out->acquire = rs__pkcs11_tls_acquire;
    out->release = rs__pkcs11_tls_release;
    out->user_data = key;
    return RS_OK;
}
