/*
 * PEM (RFC 7468): text armor around DER bytes.
 *
 * rs_pem_parse reads every "-----BEGIN label-----" ... "-----END label-----"
 * object of a buffer, and rs_pem_parse_file of a file, into an rs_pem_list_t
 * of {type, label, DER bytes}; rs_pem_encode writes one object back as text.
 *
 * What the parser accepts:
 *   - LF, CRLF or CR line ends, whitespace around lines and inside the body;
 *   - any number of objects, with any text before, between and after them
 *     (OpenSSL's "Bag Attributes", "subject=..." lines);
 *   - any label that follows RFC 7468's grammar (printable ASCII, single
 *     inner spaces or hyphens; case-sensitive: "certificate" is RS_PEM_OTHER);
 *   - a body in base64 with '=' padding only at its end, a length that is a
 *     multiple of 4, and zero unused bits before the padding. An empty body is
 *     an object with no bytes.
 * What it refuses, each with its own code:
 *   RS_EPEM_BAD_BASE64     a character outside the alphabet, '=' in the
 *                          middle, too much padding, a length not a multiple
 *                          of 4, non-zero bits before the padding;
 *   RS_EPEM_NO_END         input that ends, on a line boundary, inside an
 *                          object, or a BEGIN line inside an object;
 *   RS_EPEM_LABEL_MISMATCH an END label that differs from its BEGIN label;
 *   RS_EPEM_TRUNCATED      input cut in the middle of a line: inside an object,
 *                          or inside a BEGIN line at its very end;
 *   RS_EPEM_NO_OBJECT      input with no BEGIN line at all (empty input too);
 *   RS_EPEM_BAD_BOUNDARY   a line that starts with "-----" and then BEGIN or
 *                          END (after any number of dashes) but is not exactly
 *                          "-----BEGIN label-----" / "-----END label-----";
 *   RS_EPEM_NO_BEGIN       an END line outside any object;
 *   RS_EPEM_HEADERS        a "Name: value" line in a body (RFC 1421 headers,
 *                          as in legacy encrypted keys: their DER would be
 *                          ciphertext, so refusing is safer than skipping).
 * The first error in reading order wins; within one object the lines (END,
 * labels, headers) are checked before the base64. On any error nothing is
 * returned: the list is empty and everything parsed so far is freed.
 *
 * Secrets: the bytes of an object whose label contains "PRIVATE KEY" (PRIVATE
 * KEY, RSA/EC PRIVATE KEY, ENCRYPTED PRIVATE KEY, ...) are overwritten with
 * zeros before they are freed, on cleanup and on every error path, and so is
 * the file text rs_pem_parse_file reads.
 *
 * Every function here is pure (no shared state) and may be called from any
 * thread; a list is a plain value that one thread at a time may use.
 */
typedef enum rs_pem_type {
    RS_PEM_OTHER = 0,           /* any other label: see `label` */
    RS_PEM_CERTIFICATE = 1,     /* "CERTIFICATE" (X.509) */
    RS_PEM_PRIVATE_KEY = 2,     /* "PRIVATE KEY" (PKCS #8) */
    RS_PEM_RSA_PRIVATE_KEY = 3, /* "RSA PRIVATE KEY" (PKCS #1) */
    RS_PEM_EC_PRIVATE_KEY = 4,  /* "EC PRIVATE KEY" (RFC 5915) */
    RS_PEM_PUBLIC_KEY = 5,      /* "PUBLIC KEY" (SubjectPublicKeyInfo) */
    RS_PEM_X509_CRL = 6,        /* "X509 CRL" */
    RS_PEM_CERTIFICATE_REQUEST = 7 /* "CERTIFICATE REQUEST" (PKCS #10) */
} rs_pem_type_t;

/* Largest file rs_pem_parse_file reads, in bytes. A system CA bundle is about
 * 200 KiB; the limit only stops a wrong path (a device, a huge log) from
 * eating memory. */
#define RS_PEM_FILE_MAX (64u * 1024u * 1024u)

/* One object. Read-only: cleanup finds private keys by their label, and wipes
 * the data buffer as parsed (growing it would leave an unwiped copy). */
typedef struct rs_pem_object {
    rs_pem_type_t type;
    char *label;        /* the BEGIN label, NUL-terminated, owned by the list */
    rs_byte_buf_t data; /* the decoded DER bytes [0, len), owned by the list */
} rs_pem_object_t;

/* The objects of one input, in input order. Read `objects` and `count`; free
 * with rs_pem_list_cleanup. A zero-filled list is a valid empty list. */
typedef struct rs_pem_list {
    rs_pem_object_t *objects;
    size_t count;
    size_t capacity;          /* private */
    rs_allocator_t allocator; /* private: the allocator everything came from */
} rs_pem_list_t;

/* Parse every PEM object in `text` into *out, allocating from `allocator`
 * (NULL: libc). *out is overwritten, not freed: pass a new or cleaned-up list.
 * On success the caller owns *out; on error *out is empty. Errors: RS_EINVAL
 * (out NULL, or text.ptr NULL with a length), RS_ENOMEM, and the RS_EPEM_...
 * codes listed above. Any thread. */
RESEAU_API int rs_pem_parse(const rs_allocator_t *allocator, rs_byte_cursor_t text, rs_pem_list_t *out);

/* Read the file at `path` (stdio, binary) and parse it as rs_pem_parse does.
 * Errors: RS_EINVAL (path or out NULL), the open or read error mapped by
 * rs_result_from_errno (RS_ENOENT, RS_EACCES, RS_EIO, ...; a directory gives
 * RS_EINVAL), RS_EPEM_TOO_LARGE beyond RS_PEM_FILE_MAX bytes, RS_ENOMEM, and
 * the parse errors. Any thread (it blocks on the file). */
RESEAU_API int rs_pem_parse_file(const rs_allocator_t *allocator, const char *path, rs_pem_list_t *out);

/* Free every object (private-key bytes are zeroed first) and zero the list.
 * NULL or an already cleaned-up list does nothing. */
RESEAU_API void rs_pem_list_cleanup(rs_pem_list_t *list);

/* The type for a label ("CERTIFICATE" gives RS_PEM_CERTIFICATE); RS_PEM_OTHER
 * for any other label or NULL. Case-sensitive, as labels are. */
RESEAU_API rs_pem_type_t rs_pem_type_from_label(const char *label);

/* True if the label names a private key (it contains "PRIVATE KEY"), whose
 * bytes reseau wipes. False for NULL. */
RESEAU_API bool rs_pem_label_is_private_key(const char *label);

/* Encode `der` as one PEM object: "-----BEGIN label-----\n", base64 in lines
 * of 64 characters, "-----END label-----\n". *out is initialised here (with
 * `allocator`, NULL: libc) and owned by the caller; its text is [0, len), and
 * a NUL follows it (not counted in len). For a private key, wipe the text with
 * rs_pem_wipe before rs_byte_buf_cleanup. Errors: RS_EINVAL (label NULL or not
 * a valid RFC 7468 label, out NULL, der.ptr NULL with a length), RS_EOVERFLOW
 * (der too large for the text to fit in memory), RS_ENOMEM; *out is then
 * empty. Any thread. */
RESEAU_API int rs_pem_encode(const rs_allocator_t *allocator, const char *label, rs_byte_cursor_t der,
                             rs_byte_buf_t *out);

/* Overwrite len bytes at ptr with zeros, in a way the compiler may not drop
 * as a dead store. ptr may be NULL when len is 0. Any thread. */
RESEAU_API void rs_pem_wipe(void *ptr, size_t len);
