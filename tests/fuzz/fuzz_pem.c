/*
 * libFuzzer harness for the PEM parser and encoder (src/util/pem.c).
 *
 * Every input is parsed as PEM text. Beyond "no crash", it checks:
 *   - the result is RS_OK or one of the parse errors (never RS_EINVAL);
 *   - on error the list is empty and every block allocated was freed;
 *   - on success each object's type matches its label, and re-encoding each
 *     object then parsing the text gives the same label and bytes, alone and
 *     with all the objects concatenated; the encoding is canonical (encoding
 *     the re-parsed object gives the same text);
 *   - a parse that succeeds, run again with allocation number K failing (K
 *     from the input), is RS_ENOMEM with nothing leaked;
 *   - after cleanup nothing is leaked.
 *
 * Built and run by .ci/run (step "fuzz"), seeds in tests/fuzz/corpus/pem/:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *         -I. tests/fuzz/fuzz_pem.c -o fuzz_pem
 *   ./fuzz_pem -max_total_time=60 CORPUS_COPY_DIR
 */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Unlike assert(), kept under NDEBUG; the abort makes libFuzzer save the input. */
#define CHECK(cond) ((cond) ? (void)0 : check_failed(#cond, __LINE__))

static void check_failed(const char *what, int line) {
    fprintf(stderr, "fuzz_pem.c:%d: check failed: %s\n", line, what);
    abort();
}

/* ---- a counting allocator that can fail one allocation ------------------- */

typedef struct counting {
    rs_allocator_t allocator;
    size_t live;    /* blocks allocated and not yet freed */
    size_t count;   /* allocations attempted */
    size_t fail_at; /* 1-based allocation to refuse; 0: none */
} counting_t;

static void *counting_alloc(size_t size, void *user_data) {
    counting_t *c = (counting_t *)user_data;
    void *p;
    if (++c->count == c->fail_at) {
        return NULL;
    }
    p = malloc(size);
    c->live += p != NULL;
    return p;
}

static void counting_free(void *ptr, void *user_data) {
    counting_t *c = (counting_t *)user_data;
    CHECK(c->live > 0);
    --c->live;
    free(ptr);
}

static void counting_init(counting_t *c, size_t fail_at) {
    memset(c, 0, sizeof(*c));
    c->allocator.alloc_fn = counting_alloc;
    c->allocator.free_fn = counting_free; /* realloc emulated: alloc, copy, free */
    c->allocator.user_data = c;
    c->fail_at = fail_at;
}

/* ---- checks -------------------------------------------------------------- */

static bool is_parse_error(int result) {
    return result == RS_EPEM_BAD_BASE64 || result == RS_EPEM_NO_END || result == RS_EPEM_LABEL_MISMATCH ||
           result == RS_EPEM_TRUNCATED || result == RS_EPEM_NO_OBJECT || result == RS_EPEM_BAD_BOUNDARY ||
           result == RS_EPEM_NO_BEGIN || result == RS_EPEM_HEADERS;
}

static bool same_object(const rs_pem_object_t *a, const rs_pem_object_t *b) {
    return a->type == b->type && strcmp(a->label, b->label) == 0 && a->data.len == b->data.len &&
           (a->data.len == 0 || memcmp(a->data.buffer, b->data.buffer, a->data.len) == 0);
}

/* Encode one object, parse the text back, and check it is the same object
 * and that its encoding is the same text. Appends the text to `all`. */
static void check_object_round_trip(counting_t *c, const rs_pem_object_t *o, rs_byte_buf_t *all) {
    rs_byte_buf_t text, again;
    rs_pem_list_t back;
    CHECK(o->type == rs_pem_type_from_label(o->label));
    CHECK(rs_pem_encode(&c->allocator, o->label, rs_byte_cursor_from_buf(&o->data), &text) == RS_OK);
    CHECK(text.len > 0 && text.buffer[text.len] == '\0');
    CHECK(rs_pem_parse(&c->allocator, rs_byte_cursor_from_buf(&text), &back) == RS_OK);
    CHECK(back.count == 1 && same_object(o, &back.objects[0]));
    CHECK(rs_pem_encode(&c->allocator, back.objects[0].label, rs_byte_cursor_from_buf(&back.objects[0].data),
                        &again) == RS_OK);
    CHECK(again.len == text.len && memcmp(again.buffer, text.buffer, text.len) == 0);
    CHECK(rs_byte_buf_append(all, text.buffer, text.len) == RS_OK);
    rs_byte_buf_cleanup(&again);
    rs_pem_list_cleanup(&back);
    rs_byte_buf_cleanup(&text);
}

static void check_success(counting_t *c, const rs_pem_list_t *list, rs_byte_cursor_t input) {
    rs_byte_buf_t all;
    rs_pem_list_t back;
    size_t i;
    CHECK(list->count > 0 && list->objects != NULL);
    CHECK(rs_byte_buf_init(&all, &c->allocator, 0) == RS_OK);
    for (i = 0; i < list->count; ++i) {
        CHECK(list->objects[i].label != NULL);
        CHECK(list->objects[i].data.len <= input.len);
        check_object_round_trip(c, &list->objects[i], &all);
    }
    CHECK(rs_pem_parse(&c->allocator, rs_byte_cursor_from_buf(&all), &back) == RS_OK);
    CHECK(back.count == list->count);
    for (i = 0; i < list->count; ++i) {
        CHECK(same_object(&list->objects[i], &back.objects[i]));
    }
    rs_pem_list_cleanup(&back);
    rs_byte_buf_cleanup(&all);
}

/* The same parse with allocation number fail_at refused. */
static void check_alloc_failure(rs_byte_cursor_t input, size_t fail_at) {
    counting_t c;
    rs_pem_list_t list;
    counting_init(&c, fail_at);
    CHECK(rs_pem_parse(&c.allocator, input, &list) == RS_ENOMEM);
    CHECK(list.count == 0 && list.objects == NULL);
    CHECK(c.live == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A heap copy of exactly size bytes, so ASan sees any read past the end. */
    uint8_t *copy = (uint8_t *)malloc(size ? size : 1);
    rs_byte_cursor_t input;
    counting_t c;
    rs_pem_list_t list;
    size_t allocations;
    int result;
    if (!copy) {
        return 0;
    }
    if (size) {
        memcpy(copy, data, size);
    }
    input = rs_byte_cursor_from_array(copy, size);
    counting_init(&c, 0);
    result = rs_pem_parse(&c.allocator, input, &list);
    allocations = c.count;
    CHECK(result == RS_OK || is_parse_error(result));
    if (result == RS_OK) {
        check_success(&c, &list, input);
        rs_pem_list_cleanup(&list);
        CHECK(allocations > 0);
        check_alloc_failure(input, 1 + (size ? data[0] : 0) % allocations);
    } else {
        CHECK(list.count == 0 && list.objects == NULL);
    }
    CHECK(c.live == 0);
    free(copy);
    return 0;
}
