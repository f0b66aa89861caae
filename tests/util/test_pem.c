/* PEM: the parser table (valid and malformed inputs), encoding, round trips
 * against the openssl CLI, files, allocation failures, and key wiping. */
#include "test_util.h"

#include <sys/stat.h>
#include <unistd.h>

#define BEGIN_CERT "-----BEGIN CERTIFICATE-----"
#define END_CERT "-----END CERTIFICATE-----"
#define CERT_123 BEGIN_CERT "\nAQID\n" END_CERT "\n" /* DER 01 02 03 */

/* ---- the table ----------------------------------------------------------- */

#define MAX_OBJECTS 4

typedef struct pem_case {
    const char *name;
    const char *text;
    size_t text_len; /* 0: strlen(text) */
    int result;
    size_t count;
    const char *labels[MAX_OBJECTS];
    rs_pem_type_t types[MAX_OBJECTS];
    size_t lens[MAX_OBJECTS]; /* DER length of each object */
} pem_case_t;

#define OK1(name, text, label, type, len) {name, text, 0, RS_OK, 1, {label}, {type}, {len}}
#define FAIL(name, text, result) {name, text, 0, result, 0, {NULL}, {RS_PEM_OTHER}, {0}}

static const pem_case_t pem_cases[] = {
    /* valid: one object, line ends, whitespace, text around it */
    OK1("one certificate, LF", CERT_123, "CERTIFICATE", RS_PEM_CERTIFICATE, 3),
    OK1("CRLF line ends", BEGIN_CERT "\r\nAQID\r\n" END_CERT "\r\n", "CERTIFICATE", RS_PEM_CERTIFICATE, 3),
    OK1("CR line ends", BEGIN_CERT "\rAQID\r" END_CERT "\r", "CERTIFICATE", RS_PEM_CERTIFICATE, 3),
    OK1("no line end after END", BEGIN_CERT "\nAQID\n" END_CERT, "CERTIFICATE", RS_PEM_CERTIFICATE, 3),
    OK1("text before and after (Bag Attributes)",
        "Bag Attributes\n    localKeyID: 01 02\nsubject=/CN=x\nissuer=/CN=x\n" CERT_123 "trailing words\n",
        "CERTIFICATE", RS_PEM_CERTIFICATE, 3),
    OK1("blanks around lines and inside the body",
        "  \t" BEGIN_CERT " \t\n  AQ ID\t\n\n \t" END_CERT "   \n\n", "CERTIFICATE", RS_PEM_CERTIFICATE, 3),
    OK1("blank lines in the body", BEGIN_CERT "\n\nAQID\n\nAQID\n\n" END_CERT "\n", "CERTIFICATE",
        RS_PEM_CERTIFICATE, 6),
    OK1("one '=' of padding", BEGIN_CERT "\nAQIDBAU=\n" END_CERT "\n", "CERTIFICATE", RS_PEM_CERTIFICATE, 5),
    OK1("two '=' of padding", BEGIN_CERT "\nAQIDBA==\n" END_CERT "\n", "CERTIFICATE", RS_PEM_CERTIFICATE, 4),
    OK1("padding split over lines", BEGIN_CERT "\nAQIDBA=\n=\n" END_CERT "\n", "CERTIFICATE",
        RS_PEM_CERTIFICATE, 4),
    OK1("64-column lines",
        BEGIN_CERT "\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nAAAA\n" END_CERT "\n",
        "CERTIFICATE", RS_PEM_CERTIFICATE, 51),
    OK1("empty body", BEGIN_CERT "\n" END_CERT "\n", "CERTIFICATE", RS_PEM_CERTIFICATE, 0),
    OK1("empty label", "-----BEGIN -----\nAQID\n-----END -----\n", "", RS_PEM_OTHER, 3),
    OK1("PRIVATE KEY", "-----BEGIN PRIVATE KEY-----\nAQID\n-----END PRIVATE KEY-----\n", "PRIVATE KEY",
        RS_PEM_PRIVATE_KEY, 3),
    OK1("RSA PRIVATE KEY", "-----BEGIN RSA PRIVATE KEY-----\nAQID\n-----END RSA PRIVATE KEY-----\n",
        "RSA PRIVATE KEY", RS_PEM_RSA_PRIVATE_KEY, 3),
    OK1("EC PRIVATE KEY", "-----BEGIN EC PRIVATE KEY-----\nAQID\n-----END EC PRIVATE KEY-----\n", "EC PRIVATE KEY",
        RS_PEM_EC_PRIVATE_KEY, 3),
    OK1("PUBLIC KEY", "-----BEGIN PUBLIC KEY-----\nAQID\n-----END PUBLIC KEY-----\n", "PUBLIC KEY",
        RS_PEM_PUBLIC_KEY, 3),
    OK1("X509 CRL", "-----BEGIN X509 CRL-----\nAQID\n-----END X509 CRL-----\n", "X509 CRL", RS_PEM_X509_CRL, 3),
    OK1("CERTIFICATE REQUEST", "-----BEGIN CERTIFICATE REQUEST-----\nAQID\n-----END CERTIFICATE REQUEST-----\n",
        "CERTIFICATE REQUEST", RS_PEM_CERTIFICATE_REQUEST, 3),
    OK1("unknown label", "-----BEGIN TRUSTED CERTIFICATE-----\nAQID\n-----END TRUSTED CERTIFICATE-----\n",
        "TRUSTED CERTIFICATE", RS_PEM_OTHER, 3),
    OK1("label with a hyphen and punctuation", "-----BEGIN X-Y.Z/1-----\nAQID\n-----END X-Y.Z/1-----\n", "X-Y.Z/1",
        RS_PEM_OTHER, 3),
    OK1("lowercase label is another label", "-----BEGIN certificate-----\nAQID\n-----END certificate-----\n",
        "certificate", RS_PEM_OTHER, 3),
    OK1("three dashes are text", "---BEGIN FOO---\n" CERT_123, "CERTIFICATE", RS_PEM_CERTIFICATE, 3),
    {"two objects with text between",
     CERT_123 "between\n-----BEGIN PRIVATE KEY-----\nAQIDBA==\n-----END PRIVATE KEY-----\n",
     0,
     RS_OK,
     2,
     {"CERTIFICATE", "PRIVATE KEY"},
     {RS_PEM_CERTIFICATE, RS_PEM_PRIVATE_KEY},
     {3, 4}},
    {"three objects back to back, CRLF",
     BEGIN_CERT "\r\nAQID\r\n" END_CERT "\r\n-----BEGIN X509 CRL-----\r\n\r\n-----END X509 CRL-----\r\n" BEGIN_CERT
                "\r\nAQIDBAU=\r\n" END_CERT,
     0,
     RS_OK,
     3,
     {"CERTIFICATE", "X509 CRL", "CERTIFICATE"},
     {RS_PEM_CERTIFICATE, RS_PEM_X509_CRL, RS_PEM_CERTIFICATE},
     {3, 0, 5}},

    /* no object */
    FAIL("empty input", "", RS_EPEM_NO_OBJECT),
    FAIL("text only", "hello\nworld\n", RS_EPEM_NO_OBJECT),
    FAIL("whitespace only", "  \r\n\t\n", RS_EPEM_NO_OBJECT),
    FAIL("base64 without armor", "AQID\nAQID\n", RS_EPEM_NO_OBJECT),

    /* malformed base64 */
    FAIL("character outside the alphabet", BEGIN_CERT "\nAQ*D\n" END_CERT "\n", RS_EPEM_BAD_BASE64),
    FAIL("url-safe alphabet", BEGIN_CERT "\nAQ-_\n" END_CERT "\n", RS_EPEM_BAD_BASE64),
    FAIL("length not a multiple of 4", BEGIN_CERT "\nAQI\n" END_CERT "\n", RS_EPEM_BAD_BASE64),
    FAIL("padding missing a '='", BEGIN_CERT "\nAQIDBA=\n" END_CERT "\n", RS_EPEM_BAD_BASE64),
    FAIL("padding missing entirely", BEGIN_CERT "\nAQIDBA\n" END_CERT "\n", RS_EPEM_BAD_BASE64),
    FAIL("three '='", BEGIN_CERT "\nAQIDB===\n" END_CERT "\n", RS_EPEM_BAD_BASE64),
    FAIL("four '='", BEGIN_CERT "\nAQID====\n" END_CERT "\n", RS_EPEM_BAD_BASE64),
    FAIL("'=' in the middle", BEGIN_CERT "\nAQ==AQID\n" END_CERT "\n", RS_EPEM_BAD_BASE64),
    FAIL("data after '=' in a quad", BEGIN_CERT "\nAQ=D\n" END_CERT "\n", RS_EPEM_BAD_BASE64),
    FAIL("data on a line after the padding", BEGIN_CERT "\nAQIDBA==\nAQID\n" END_CERT "\n", RS_EPEM_BAD_BASE64),
    FAIL("non-zero bits under '=='", BEGIN_CERT "\nAQIDBB==\n" END_CERT "\n", RS_EPEM_BAD_BASE64),
    FAIL("non-zero bits under '='", BEGIN_CERT "\nAQIDBAV=\n" END_CERT "\n", RS_EPEM_BAD_BASE64),
    {"NUL byte in the body", BEGIN_CERT "\nAQ\0D\n" END_CERT "\n", sizeof(BEGIN_CERT "\nAQ\0D\n" END_CERT "\n") - 1,
     RS_EPEM_BAD_BASE64, 0, {NULL}, {RS_PEM_OTHER}, {0}},
    FAIL("dashes in the body", BEGIN_CERT "\n-----\n" END_CERT "\n", RS_EPEM_BAD_BASE64),

    /* structure */
    FAIL("missing END", BEGIN_CERT "\nAQID\n", RS_EPEM_NO_END),
    FAIL("BEGIN line only", BEGIN_CERT "\n", RS_EPEM_NO_END),
    FAIL("BEGIN inside an object", BEGIN_CERT "\nAQID\n" CERT_123, RS_EPEM_NO_END),
    FAIL("END without BEGIN", "AQID\n" END_CERT "\n", RS_EPEM_NO_BEGIN),
    FAIL("END after a complete object", CERT_123 END_CERT "\n", RS_EPEM_NO_BEGIN),
    FAIL("mismatched labels", BEGIN_CERT "\nAQID\n-----END PRIVATE KEY-----\n", RS_EPEM_LABEL_MISMATCH),
    FAIL("END label in another case", BEGIN_CERT "\nAQID\n-----END certificate-----\n", RS_EPEM_LABEL_MISMATCH),
    FAIL("RFC 1421 headers", "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n"
                             "AQID\n-----END RSA PRIVATE KEY-----\n",
         RS_EPEM_HEADERS),

    /* truncation */
    FAIL("truncated mid-body", BEGIN_CERT "\nAQIDAQ", RS_EPEM_TRUNCATED),
    FAIL("truncated in the BEGIN label", "-----BEGIN CERTIF", RS_EPEM_TRUNCATED),
    FAIL("truncated in the BEGIN closing dashes", "text\n-----BEGIN CERTIFICATE---", RS_EPEM_TRUNCATED),
    FAIL("truncated in the word BEGIN", "-----BEG", RS_EPEM_TRUNCATED),
    FAIL("truncated in the END line", BEGIN_CERT "\nAQID\n-----END CERTIFICATE---", RS_EPEM_TRUNCATED),
    FAIL("truncated in the word END", BEGIN_CERT "\nAQID\n-----EN", RS_EPEM_TRUNCATED),
    FAIL("second object truncated", CERT_123 BEGIN_CERT "\nAQ", RS_EPEM_TRUNCATED),

    /* boundary lines */
    FAIL("six leading dashes", "------BEGIN CERTIFICATE-----\nAQID\n" END_CERT "\n", RS_EPEM_BAD_BOUNDARY),
    FAIL("six trailing dashes", "-----BEGIN CERTIFICATE------\nAQID\n" END_CERT "\n", RS_EPEM_BAD_BOUNDARY),
    FAIL("four trailing dashes", "-----BEGIN CERTIFICATE----\nAQID\n" END_CERT "\n", RS_EPEM_BAD_BOUNDARY),
    FAIL("no space after BEGIN", "-----BEGINCERTIFICATE-----\nAQID\n" END_CERT "\n", RS_EPEM_BAD_BOUNDARY),
    FAIL("double space in the label", "-----BEGIN RSA  PRIVATE KEY-----\nAQID\n-----END RSA  PRIVATE KEY-----\n",
         RS_EPEM_BAD_BOUNDARY),
    FAIL("space before the closing dashes", "-----BEGIN CERTIFICATE -----\nAQID\n" END_CERT "\n",
         RS_EPEM_BAD_BOUNDARY),
    FAIL("text after the closing dashes", BEGIN_CERT " x\nAQID\n" END_CERT "\n", RS_EPEM_BAD_BOUNDARY),
    FAIL("control character in the label", "-----BEGIN CERT\tIFICATE-----\nAQID\n" END_CERT "\n",
         RS_EPEM_BAD_BOUNDARY),
    FAIL("malformed END line", BEGIN_CERT "\nAQID\n------END CERTIFICATE-----\n", RS_EPEM_BAD_BOUNDARY),
    FAIL("one-line object", BEGIN_CERT "AQID" END_CERT "\n", RS_EPEM_BAD_BOUNDARY),

    /* all or nothing */
    FAIL("good object then bad base64", CERT_123 BEGIN_CERT "\nA*ID\n" END_CERT "\n", RS_EPEM_BAD_BASE64),
    FAIL("good key then a missing END", "-----BEGIN PRIVATE KEY-----\nAQID\n-----END PRIVATE KEY-----\n" BEGIN_CERT
                                        "\nAQID\n",
         RS_EPEM_NO_END),
};

#define PEM_CASE_COUNT (sizeof(pem_cases) / sizeof(pem_cases[0]))

static void check_case(const pem_case_t *c, const rs_pem_list_t *list, int result) {
    size_t i;
    if (result != c->result || list->count != c->count) {
        fail_msg("case \"%s\": got %s with %zu objects, want %s with %zu", c->name, rs_err_name(result), list->count,
                 rs_err_name(c->result), c->count);
    }
    if (result != RS_OK) {
        assert_null(list->objects);
        return;
    }
    for (i = 0; i < c->count; ++i) {
        const rs_pem_object_t *o = &list->objects[i];
        if (strcmp(o->label, c->labels[i]) != 0 || o->type != c->types[i] || o->data.len != c->lens[i]) {
            fail_msg("case \"%s\", object %zu: got \"%s\" type %d, %zu bytes", c->name, i, o->label, (int)o->type,
                     o->data.len);
        }
    }
}

static void pem_parse_table(void **state) {
    size_t i;
    (void)state;
    assert_true(PEM_CASE_COUNT >= 30);
    for (i = 0; i < PEM_CASE_COUNT; ++i) {
        const pem_case_t *c = &pem_cases[i];
        size_t len = c->text_len ? c->text_len : strlen(c->text);
        rs_pem_list_t list;
        int result;
        memset(&list, 0xAA, sizeof(list));
        result = rs_pem_parse(&rs_test_allocator, rs_byte_cursor_from_array(c->text, len), &list);
        check_case(c, &list, result);
        rs_pem_list_cleanup(&list);
    }
}

/* Every valid row, cut at every length: never a crash or a leak, and a cut
 * never passes silently unless what remains is itself a valid input. */
static void pem_parse_every_prefix_of_the_table(void **state) {
    size_t i, n;
    (void)state;
    for (i = 0; i < PEM_CASE_COUNT; ++i) {
        const pem_case_t *c = &pem_cases[i];
        size_t len = c->text_len ? c->text_len : strlen(c->text);
        for (n = 0; n < len; ++n) {
            rs_pem_list_t list;
            int result = rs_pem_parse(&rs_test_allocator, rs_byte_cursor_from_array(c->text, n), &list);
            assert_true(result == RS_OK || (result <= -60 && result >= -68));
            if (result != RS_OK) {
                assert_int_equal(list.count, 0);
                assert_null(list.objects);
            }
            rs_pem_list_cleanup(&list);
        }
    }
}

static void pem_decodes_the_exact_bytes(void **state) {
    static const uint8_t want[] = {1, 2, 3, 4, 5};
    rs_pem_list_t list;
    (void)state;
    assert_int_equal(rs_pem_parse(&rs_test_allocator,
                                  rs_byte_cursor_from_cstr("x\n" BEGIN_CERT "\r\n AQID\r\n BAU=\r\n" END_CERT), &list),
                     RS_OK);
    assert_int_equal(list.count, 1);
    assert_int_equal(list.objects[0].data.len, sizeof(want));
    assert_memory_equal(list.objects[0].data.buffer, want, sizeof(want));
    rs_pem_list_cleanup(&list);
    rs_pem_list_cleanup(&list); /* idempotent */
    rs_pem_list_cleanup(NULL);
}

static void pem_null_arguments_are_einval(void **state) {
    rs_pem_list_t list;
    rs_byte_buf_t buf;
    rs_byte_cursor_t bad = {NULL, 3};
    (void)state;
    assert_int_equal(rs_pem_parse(NULL, rs_byte_cursor_from_cstr(CERT_123), NULL), RS_EINVAL);
    assert_int_equal(rs_pem_parse(NULL, bad, &list), RS_EINVAL);
    assert_int_equal(list.count, 0);
    assert_int_equal(rs_pem_parse_file(NULL, NULL, &list), RS_EINVAL);
    assert_int_equal(rs_pem_parse_file(NULL, "/nonexistent", NULL), RS_EINVAL);
    assert_int_equal(rs_pem_encode(NULL, NULL, rs_byte_cursor_from_cstr("x"), &buf), RS_EINVAL);
    assert_int_equal(rs_pem_encode(NULL, "X", rs_byte_cursor_from_cstr("x"), NULL), RS_EINVAL);
    assert_int_equal(rs_pem_encode(NULL, "X", bad, &buf), RS_EINVAL);
    assert_null(buf.buffer);
    assert_int_equal(rs_pem_type_from_label(NULL), RS_PEM_OTHER);
    assert_false(rs_pem_label_is_private_key(NULL));
    rs_pem_wipe(NULL, 0);
}

static void pem_default_allocator_works(void **state) {
    rs_pem_list_t list;
    (void)state;
    assert_int_equal(rs_pem_parse(NULL, rs_byte_cursor_from_cstr(CERT_123), &list), RS_OK);
    assert_int_equal(list.count, 1);
    rs_pem_list_cleanup(&list);
}

static void pem_labels_map_to_types(void **state) {
    (void)state;
    assert_int_equal(rs_pem_type_from_label("CERTIFICATE"), RS_PEM_CERTIFICATE);
    assert_int_equal(rs_pem_type_from_label("X509 CRL"), RS_PEM_X509_CRL);
    assert_int_equal(rs_pem_type_from_label("CERTIFICATE "), RS_PEM_OTHER);
    assert_true(rs_pem_label_is_private_key("ENCRYPTED PRIVATE KEY"));
    assert_true(rs_pem_label_is_private_key("OPENSSH PRIVATE KEY"));
    assert_false(rs_pem_label_is_private_key("PUBLIC KEY"));
}

/* ---- encoding ------------------------------------------------------------ */

static void pem_encode_writes_rfc7468_text(void **state) {
    static const uint8_t der[] = {1, 2, 3};
    rs_byte_buf_t text;
    (void)state;
    assert_int_equal(rs_pem_encode(&rs_test_allocator, "CERTIFICATE", rs_byte_cursor_from_array(der, 3), &text), RS_OK);
    assert_int_equal(text.len, strlen(CERT_123));
    assert_string_equal((const char *)text.buffer, CERT_123);
    rs_byte_buf_cleanup(&text);

    assert_int_equal(rs_pem_encode(&rs_test_allocator, "X", rs_byte_cursor_from_array(NULL, 0), &text), RS_OK);
    assert_string_equal((const char *)text.buffer, "-----BEGIN X-----\n-----END X-----\n");
    rs_byte_buf_cleanup(&text);
}

static void pem_encode_wraps_at_64_columns(void **state) {
    uint8_t der[100];
    rs_byte_buf_t text;
    size_t n;
    (void)state;
    memset(der, 0, sizeof(der));
    for (n = 47; n <= 97; n += 1) {
        const char *p, *line;
        size_t lines = 0;
        assert_int_equal(rs_pem_encode(&rs_test_allocator, "A B", rs_byte_cursor_from_array(der, n), &text), RS_OK);
        assert_int_equal(strlen((const char *)text.buffer), text.len);
        p = strchr((const char *)text.buffer, '\n') + 1;
        while (strncmp(p, "-----END A B-----\n", 18) != 0) {
            line = p;
            p = strchr(p, '\n') + 1;
            assert_true(p - line - 1 <= 64);
            if (strncmp(p, "-----END", 8) != 0) {
                assert_int_equal(p - line - 1, 64); /* only the last line is short */
            }
            ++lines;
        }
        assert_int_equal(lines, (n + 47) / 48);
        rs_byte_buf_cleanup(&text);
    }
}

static void pem_encode_rejects_invalid_labels(void **state) {
    static const char *bad[] = {" X", "X ", "A  B", "A--B", "-A", "A-", "A\tB", "A\nB", "caf\xc3\xa9"};
    rs_byte_buf_t text;
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        assert_int_equal(rs_pem_encode(&rs_test_allocator, bad[i], rs_byte_cursor_from_cstr("x"), &text), RS_EINVAL);
        assert_null(text.buffer);
    }
    assert_int_equal(rs_pem_encode(&rs_test_allocator, "", rs_byte_cursor_from_cstr("x"), &text), RS_OK);
    rs_byte_buf_cleanup(&text);
}

/* Deterministic bytes for round trips. */
static void fill_pattern(uint8_t *p, size_t len, uint32_t seed) {
    size_t i;
    for (i = 0; i < len; ++i) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

static void pem_encode_then_parse_round_trips(void **state) {
    static const char *labels[] = {"CERTIFICATE", "PRIVATE KEY", "", "SOME-THING ELSE"};
    uint8_t der[300];
    size_t n, l;
    (void)state;
    for (n = 0; n <= sizeof(der); ++n) {
        for (l = 0; l < sizeof(labels) / sizeof(labels[0]); ++l) {
            rs_byte_buf_t text;
            rs_pem_list_t list;
            fill_pattern(der, n, (uint32_t)(n * 7 + l));
            assert_int_equal(rs_pem_encode(&rs_test_allocator, labels[l], rs_byte_cursor_from_array(der, n), &text),
                             RS_OK);
            assert_int_equal(rs_pem_parse(&rs_test_allocator, rs_byte_cursor_from_buf(&text), &list), RS_OK);
            assert_int_equal(list.count, 1);
            assert_string_equal(list.objects[0].label, labels[l]);
            assert_int_equal(list.objects[0].type, rs_pem_type_from_label(labels[l]));
            assert_int_equal(list.objects[0].data.len, n);
            if (n) {
                assert_memory_equal(list.objects[0].data.buffer, der, n);
            }
            rs_pem_list_cleanup(&list);
            rs_byte_buf_cleanup(&text);
        }
    }
}

/* ---- files and the openssl CLI ------------------------------------------- */

/* A temporary directory's path, and a file's in it. */
#define TEMP_DIR_LEN 128
#define FILE_PATH_LEN (TEMP_DIR_LEN + 64)

typedef struct temp_dir {
    char path[TEMP_DIR_LEN];
} temp_dir_t;

#if RESEAU_OS_WINDOWS
/* No mkdtemp: a directory named by the process id and a counter, under the
 * user's temporary directory. */
static void temp_dir_make(temp_dir_t *d) {
    static unsigned counter;
    char base[TEMP_DIR_LEN];
    DWORD n = GetTempPathA(sizeof(base), base);
    assert_true(n > 0 && n < sizeof(base));
    snprintf(d->path, sizeof(d->path), "%srs-pem-%lu-%u", base, (unsigned long)GetCurrentProcessId(), ++counter);
    assert_true(CreateDirectoryA(d->path, NULL));
}

static void temp_dir_remove(temp_dir_t *d) {
    char cmd[TEMP_DIR_LEN + 32];
    snprintf(cmd, sizeof(cmd), "rmdir /s /q \"%s\"", d->path);
    assert_int_equal(system(cmd), 0);
}
#else
static void temp_dir_make(temp_dir_t *d) {
    snprintf(d->path, sizeof(d->path), "/tmp/rs-pem-XXXXXX");
    assert_non_null(mkdtemp(d->path));
}

static void temp_dir_remove(temp_dir_t *d) {
    char cmd[TEMP_DIR_LEN + 32];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
    assert_int_equal(system(cmd), 0);
}
#endif

static void write_file(const char *path, const void *bytes, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* The whole file into a malloc'd buffer (plain malloc: test-side memory). */
static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    uint8_t *bytes = (uint8_t *)malloc(1 << 20);
    assert_non_null(f);
    assert_non_null(bytes);
    *len = fread(bytes, 1, 1 << 20, f);
    assert_true(*len < (1 << 20));
    fclose(f);
    return bytes;
}

static void pem_parse_file_reads_objects(void **state) {
    temp_dir_t d;
    char path[FILE_PATH_LEN];
    rs_pem_list_t list;
    (void)state;
    temp_dir_make(&d);
    snprintf(path, sizeof(path), "%s/two.pem", d.path);
    write_file(path, "junk\n" CERT_123 CERT_123, strlen("junk\n" CERT_123 CERT_123));
    assert_int_equal(rs_pem_parse_file(&rs_test_allocator, path, &list), RS_OK);
    assert_int_equal(list.count, 2);
    rs_pem_list_cleanup(&list);

    snprintf(path, sizeof(path), "%s/empty.pem", d.path);
    write_file(path, "", 0);
    assert_int_equal(rs_pem_parse_file(&rs_test_allocator, path, &list), RS_EPEM_NO_OBJECT);

    snprintf(path, sizeof(path), "%s/bad.pem", d.path);
    write_file(path, BEGIN_CERT "\nAQ", 3 + strlen(BEGIN_CERT));
    assert_int_equal(rs_pem_parse_file(&rs_test_allocator, path, &list), RS_EPEM_TRUNCATED);
    assert_int_equal(list.count, 0);
    temp_dir_remove(&d);
}

static void pem_parse_file_maps_os_errors(void **state) {
    temp_dir_t d;
    char path[FILE_PATH_LEN];
    rs_pem_list_t list;
    (void)state;
    temp_dir_make(&d);
    snprintf(path, sizeof(path), "%s/missing.pem", d.path);
    assert_int_equal(rs_pem_parse_file(&rs_test_allocator, path, &list), RS_ENOENT);
    assert_int_equal(list.count, 0);
    assert_int_equal(rs_pem_parse_file(&rs_test_allocator, d.path, &list), RS_EINVAL); /* a directory */
    snprintf(path, sizeof(path), "%s/secret.pem", d.path);
    write_file(path, CERT_123, strlen(CERT_123));
#if RESEAU_OS_WINDOWS
    print_message("[  SKIP    ] pem_parse_file_maps_os_errors: EACCES part (no unreadable mode on Windows)\n");
#else
    assert_int_equal(chmod(path, 0), 0);
    if (geteuid() == 0) {
        print_message("[  SKIP    ] pem_parse_file_maps_os_errors: EACCES part (running as root)\n");
    } else {
        assert_int_equal(rs_pem_parse_file(&rs_test_allocator, path, &list), RS_EACCES);
    }
#endif
    temp_dir_remove(&d);
}

/* A file bigger than the first read buffer (4 KiB), so that it grows. */
static void pem_parse_file_reads_large_files(void **state) {
    temp_dir_t d;
    char path[FILE_PATH_LEN];
    rs_byte_buf_t all, one;
    rs_pem_list_t list;
    uint8_t der[2000];
    size_t i;
    (void)state;
    temp_dir_make(&d);
    assert_int_equal(rs_byte_buf_init(&all, &rs_test_allocator, 0), RS_OK);
    for (i = 0; i < 20; ++i) {
        fill_pattern(der, sizeof(der), (uint32_t)i);
        assert_int_equal(rs_pem_encode(&rs_test_allocator, "CERTIFICATE", rs_byte_cursor_from_array(der, sizeof(der)),
                                       &one),
                         RS_OK);
        assert_int_equal(rs_byte_buf_append(&all, one.buffer, one.len), RS_OK);
        rs_byte_buf_cleanup(&one);
    }
    snprintf(path, sizeof(path), "%s/big.pem", d.path);
    write_file(path, all.buffer, all.len);
    assert_true(all.len > 50000);
    rs_byte_buf_cleanup(&all);
    assert_int_equal(rs_pem_parse_file(&rs_test_allocator, path, &list), RS_OK);
    assert_int_equal(list.count, 20);
    fill_pattern(der, sizeof(der), 19);
    assert_memory_equal(list.objects[19].data.buffer, der, sizeof(der));
    rs_pem_list_cleanup(&list);
    temp_dir_remove(&d);
}

/* One byte over RS_PEM_FILE_MAX (a sparse file): refused, nothing leaked. */
static void pem_parse_file_refuses_files_over_the_limit(void **state) {
    temp_dir_t d;
    char path[FILE_PATH_LEN];
    rs_pem_list_t list;
    FILE *f;
    (void)state;
    temp_dir_make(&d);
    snprintf(path, sizeof(path), "%s/huge.pem", d.path);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), (off_t)RS_PEM_FILE_MAX + 1), 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rs_pem_parse_file(&rs_test_allocator, path, &list), RS_EPEM_TOO_LARGE);
    assert_int_equal(list.count, 0);
    temp_dir_remove(&d);
}

/* The scripts below are POSIX shell: not run on Windows. */
static bool have_openssl(void) {
#if RESEAU_OS_WINDOWS
    return false;
#else
    return system("openssl version >/dev/null 2>&1") == 0;
#endif
}

/* Run a shell script in dir; fail the test if it fails. */
static void run_in(const char *dir, const char *script) {
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cd '%s' && %s", dir, script);
    if (system(cmd) != 0) {
        fail_msg("command failed: %s", cmd);
    }
}

/* Compare object `index` of `list` with the DER file, and our encoding of it
 * with the PEM file openssl wrote (openssl also wraps at 64 columns). */
static void check_against_openssl(const rs_pem_list_t *list, size_t index, const char *der_path,
                                  const char *pem_path) {
    size_t der_len, pem_len;
    uint8_t *der = read_file(der_path, &der_len);
    uint8_t *pem = read_file(pem_path, &pem_len);
    const rs_pem_object_t *o = &list->objects[index];
    rs_byte_buf_t text;
    assert_int_equal(o->data.len, der_len);
    assert_memory_equal(o->data.buffer, der, der_len);
    assert_int_equal(rs_pem_encode(&rs_test_allocator, o->label, rs_byte_cursor_from_buf(&o->data), &text), RS_OK);
    assert_int_equal(text.len, pem_len);
    assert_memory_equal(text.buffer, pem, pem_len);
    rs_pem_wipe(text.buffer, text.len);
    rs_byte_buf_cleanup(&text);
    free(der);
    free(pem);
}

static void pem_matches_openssl_der(void **state) {
    temp_dir_t d;
    char path[FILE_PATH_LEN], der_path[FILE_PATH_LEN], pem_path[FILE_PATH_LEN];
    rs_pem_list_t list;
    (void)state;
    if (!have_openssl()) {
        print_message("[  SKIP    ] pem_matches_openssl_der: the openssl CLI is not installed (or this is Windows)\n");
        skip();
    }
    temp_dir_make(&d);
    run_in(d.path, "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
        "-subj /CN=localhost -keyout key.pem -out cert.pem >/dev/null 2>&1 && "
        "openssl x509 -in cert.pem -outform DER -out cert.der && "
        "openssl pkcs8 -topk8 -nocrypt -in key.pem -outform DER -out key.der && "
        "(echo 'Bag Attributes'; echo '    friendlyName: test'; cat cert.pem key.pem) > bundle.pem");
    snprintf(path, sizeof(path), "%s/bundle.pem", d.path);
    assert_int_equal(rs_pem_parse_file(&rs_test_allocator, path, &list), RS_OK);
    assert_int_equal(list.count, 2);
    assert_int_equal(list.objects[0].type, RS_PEM_CERTIFICATE);
    assert_int_equal(list.objects[1].type, RS_PEM_PRIVATE_KEY);
    snprintf(der_path, sizeof(der_path), "%s/cert.der", d.path);
    snprintf(pem_path, sizeof(pem_path), "%s/cert.pem", d.path);
    check_against_openssl(&list, 0, der_path, pem_path);
    snprintf(der_path, sizeof(der_path), "%s/key.der", d.path);
    snprintf(pem_path, sizeof(pem_path), "%s/key.pem", d.path);
    check_against_openssl(&list, 1, der_path, pem_path);
    rs_pem_list_cleanup(&list);
    temp_dir_remove(&d);
}

/* ---- allocation failures ------------------------------------------------- */

/* Six objects, so that the object array grows past its first capacity. */
#define SIX_OBJECTS                                                                                                  \
    CERT_123 "-----BEGIN PRIVATE KEY-----\nAQIDBA==\n-----END PRIVATE KEY-----\n" CERT_123 CERT_123 CERT_123 \
        "-----BEGIN -----\n-----END -----\n"

typedef int parse_fn(const rs_allocator_t *allocator, const char *what, rs_pem_list_t *out);

static int parse_text(const rs_allocator_t *allocator, const char *text, rs_pem_list_t *out) {
    return rs_pem_parse(allocator, rs_byte_cursor_from_cstr(text), out);
}

/* Fail allocation 1, 2, ... until the parse passes: every failure is
 * RS_ENOMEM with an empty list (the allocator checks for leaks). Returns the
 * number of allocations the passing parse made. */
static size_t alloc_failure_sweep(parse_fn *parse, const char *what, size_t want_count) {
    size_t fail_at;
    for (fail_at = 1;; ++fail_at) {
        rs_test_failing_alloc_t f;
        rs_pem_list_t list;
        int result;
        rs_test_failing_alloc_init(&f, fail_at);
        result = parse(&f.allocator, what, &list);
        if (f.failures == 0) {
            assert_int_equal(result, RS_OK);
            assert_int_equal(list.count, want_count);
            rs_pem_list_cleanup(&list);
            return fail_at - 1;
        }
        assert_int_equal(result, RS_ENOMEM);
        assert_int_equal(list.count, 0);
        assert_null(list.objects);
    }
}

static void pem_parse_alloc_failure_sweep(void **state) {
    (void)state;
    /* array growth, then a label and data per object */
    assert_true(alloc_failure_sweep(parse_text, SIX_OBJECTS, 6) > 12);
}

static void pem_parse_file_alloc_failure_sweep(void **state) {
    temp_dir_t d;
    char path[FILE_PATH_LEN];
    uint8_t der[3000];
    rs_byte_buf_t text;
    (void)state;
    temp_dir_make(&d);
    snprintf(path, sizeof(path), "%s/key.pem", d.path);
    fill_pattern(der, sizeof(der), 1);
    assert_int_equal(rs_pem_encode(&rs_test_allocator, "PRIVATE KEY", rs_byte_cursor_from_array(der, sizeof(der)), &text),
                     RS_OK);
    write_file(path, text.buffer, text.len); /* > 4 KiB: the read buffer grows */
    rs_byte_buf_cleanup(&text);
    /* two read buffers, the object array, a label, the data */
    assert_true(alloc_failure_sweep(rs_pem_parse_file, path, 1) >= 5);
    temp_dir_remove(&d);
}

static void pem_encode_alloc_failure(void **state) {
    rs_test_failing_alloc_t f;
    rs_byte_buf_t text;
    (void)state;
    rs_test_failing_alloc_init(&f, 1);
    assert_int_equal(rs_pem_encode(&f.allocator, "X", rs_byte_cursor_from_cstr("abc"), &text), RS_ENOMEM);
    assert_null(text.buffer);
    assert_int_equal(text.len, 0);
}

/* ---- wiping -------------------------------------------------------------- */

/* An allocator that, at every free, looks for secret bytes in the block being
 * freed (it keeps each block's size in a header), then frees it through the
 * leak-checking allocator. */
#define SECRET_HEADER 16

typedef struct secret_watch {
    rs_allocator_t allocator;
    const uint8_t *secrets[2]; /* byte strings that must not survive a free */
    size_t secret_lens[2];
    size_t frees;
    size_t leaks_found; /* frees of a block that still held a secret */
} secret_watch_t;

static void *watch_alloc(size_t size, void *user_data) {
    uint8_t *p = (uint8_t *)rs_test__alloc(size + SECRET_HEADER, NULL);
    (void)user_data;
    if (!p) {
        return NULL;
    }
    memcpy(p, &size, sizeof(size));
    return p + SECRET_HEADER;
}

static bool block_contains(const uint8_t *block, size_t size, const uint8_t *needle, size_t len) {
    size_t i;
    for (i = 0; len && i + len <= size; ++i) {
        if (memcmp(block + i, needle, len) == 0) {
            return true;
        }
    }
    return false;
}

static void watch_free(void *ptr, void *user_data) {
    secret_watch_t *w = (secret_watch_t *)user_data;
    uint8_t *p = (uint8_t *)ptr - SECRET_HEADER;
    size_t size, i;
    memcpy(&size, p, sizeof(size));
    ++w->frees;
    for (i = 0; i < 2; ++i) {
        if (w->secrets[i] && block_contains((const uint8_t *)ptr, size, w->secrets[i], w->secret_lens[i])) {
            ++w->leaks_found;
        }
    }
    rs_test__free(p, NULL);
}

static void secret_watch_init(secret_watch_t *w, const void *der, size_t der_len, const char *b64) {
    memset(w, 0, sizeof(*w));
    w->allocator.alloc_fn = watch_alloc;
    w->allocator.free_fn = watch_free; /* realloc emulated: alloc + copy + free */
    w->allocator.user_data = w;
    w->secrets[0] = (const uint8_t *)der;
    w->secret_lens[0] = der_len;
    w->secrets[1] = (const uint8_t *)b64;
    w->secret_lens[1] = b64 ? strlen(b64) : 0;
}

/* "SECRETKEYBYTES!!" as DER, and its base64. */
static const uint8_t secret_der[] = "SECRETKEYBYTES!!";
#define SECRET_B64 "U0VDUkVUS0VZQllURVMhIQ=="
#define SECRET_KEY_PEM "-----BEGIN EC PRIVATE KEY-----\n" SECRET_B64 "\n-----END EC PRIVATE KEY-----\n"

static void pem_private_key_bytes_are_wiped_on_cleanup(void **state) {
    secret_watch_t w;
    rs_pem_list_t list;
    (void)state;
    secret_watch_init(&w, secret_der, 16, NULL);
    assert_int_equal(rs_pem_parse(&w.allocator, rs_byte_cursor_from_cstr(CERT_123 SECRET_KEY_PEM), &list), RS_OK);
    assert_int_equal(list.count, 2);
    assert_int_equal(list.objects[1].data.len, 16);
    assert_memory_equal(list.objects[1].data.buffer, secret_der, 16);
    rs_pem_list_cleanup(&list);
    assert_true(w.frees >= 4);
    assert_int_equal(w.leaks_found, 0);
}

/* The watch itself works: the same bytes under a certificate label are freed
 * as they are (a certificate is public). */
static void pem_certificate_bytes_are_not_wiped(void **state) {
    secret_watch_t w;
    rs_pem_list_t list;
    (void)state;
    secret_watch_init(&w, secret_der, 16, NULL);
    assert_int_equal(rs_pem_parse(&w.allocator,
                                  rs_byte_cursor_from_cstr(BEGIN_CERT "\n" SECRET_B64 "\n" END_CERT "\n"), &list),
                     RS_OK);
    rs_pem_list_cleanup(&list);
    assert_int_equal(w.leaks_found, 1);
}

static void pem_private_key_bytes_are_wiped_on_error(void **state) {
    secret_watch_t w;
    rs_pem_list_t list;
    (void)state;
    secret_watch_init(&w, secret_der, 16, NULL);
    assert_int_equal(rs_pem_parse(&w.allocator,
                                  rs_byte_cursor_from_cstr(SECRET_KEY_PEM BEGIN_CERT "\nA*ID\n" END_CERT "\n"), &list),
                     RS_EPEM_BAD_BASE64);
    assert_true(w.frees >= 3);
    assert_int_equal(w.leaks_found, 0);
    /* A key whose own base64 fails half-way: its partial bytes are wiped too. */
    secret_watch_init(&w, secret_der, 12, NULL);
    assert_int_equal(rs_pem_parse(&w.allocator,
                                  rs_byte_cursor_from_cstr("-----BEGIN PRIVATE KEY-----\n" SECRET_B64
                                                           "AB*D\n-----END PRIVATE KEY-----\n"),
                                  &list),
                     RS_EPEM_BAD_BASE64);
    assert_int_equal(w.leaks_found, 0);
}

/* parse_file wipes the file text it read, and the smaller buffers it grew out
 * of: a key file over 4 KiB, with the secret near its start. */
static void pem_parse_file_wipes_its_read_buffer(void **state) {
    temp_dir_t d;
    char path[FILE_PATH_LEN];
    secret_watch_t w;
    rs_pem_list_t list;
    uint8_t der[4000];
    rs_byte_buf_t text;
    (void)state;
    temp_dir_make(&d);
    snprintf(path, sizeof(path), "%s/key.pem", d.path);
    memset(der, 0, sizeof(der));
    memcpy(der, "SECRETKEYBYTES!!", 16);
    assert_int_equal(rs_pem_encode(&rs_test_allocator, "PRIVATE KEY", rs_byte_cursor_from_array(der, sizeof(der)), &text),
                     RS_OK);
    write_file(path, text.buffer, text.len);
    rs_byte_buf_cleanup(&text);
    /* "SECRETKEYBYTES!" base64 starts the body: U0VDUkVUS0VZQllURVMh */
    secret_watch_init(&w, secret_der, 16, "U0VDUkVUS0VZQllURVMh");
    assert_int_equal(rs_pem_parse_file(&w.allocator, path, &list), RS_OK);
    assert_int_equal(w.leaks_found, 0);
    rs_pem_list_cleanup(&list);
    assert_int_equal(w.leaks_found, 0);
    assert_true(w.frees >= 4); /* 4 KiB and 8 KiB read buffers, label, data */
    temp_dir_remove(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pem_parse_table),
        cmocka_unit_test(pem_parse_every_prefix_of_the_table),
        cmocka_unit_test(pem_decodes_the_exact_bytes),
        cmocka_unit_test(pem_null_arguments_are_einval),
        cmocka_unit_test(pem_default_allocator_works),
        cmocka_unit_test(pem_labels_map_to_types),
        cmocka_unit_test(pem_encode_writes_rfc7468_text),
        cmocka_unit_test(pem_encode_wraps_at_64_columns),
        cmocka_unit_test(pem_encode_rejects_invalid_labels),
        cmocka_unit_test(pem_encode_then_parse_round_trips),
        cmocka_unit_test(pem_parse_file_reads_objects),
        cmocka_unit_test(pem_parse_file_maps_os_errors),
        cmocka_unit_test(pem_parse_file_reads_large_files),
        cmocka_unit_test(pem_parse_file_refuses_files_over_the_limit),
        cmocka_unit_test(pem_matches_openssl_der),
        cmocka_unit_test(pem_parse_alloc_failure_sweep),
        cmocka_unit_test(pem_parse_file_alloc_failure_sweep),
        cmocka_unit_test(pem_encode_alloc_failure),
        cmocka_unit_test(pem_private_key_bytes_are_wiped_on_cleanup),
        cmocka_unit_test(pem_certificate_bytes_are_not_wiped),
        cmocka_unit_test(pem_private_key_bytes_are_wiped_on_error),
        cmocka_unit_test(pem_parse_file_wipes_its_read_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
