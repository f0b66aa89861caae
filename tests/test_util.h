/*
 * Shared test helpers: a leak-checking allocator built on cmocka's test_malloc,
 * and a fault-injecting allocator that fails the Nth allocation.
 *
 * Each test file is its own executable and includes reseau.h with the
 * implementation exactly once, through this header:
 *     #include "test_util.h"
 * cmocka's allocation tracking is not thread-safe, and reseau allocates from
 * loop threads, so every call here goes through one mutex.
 */
#ifndef RESEAU_TEST_UTIL_H
#define RESEAU_TEST_UTIL_H

#define RESEAU_IMPLEMENTATION
#include "reseau.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static pthread_mutex_t rs_test__alloc_lock = PTHREAD_MUTEX_INITIALIZER;

static void *rs_test__alloc(size_t size, void *user_data) {
    void *p;
    (void)user_data;
    pthread_mutex_lock(&rs_test__alloc_lock);
    p = _test_malloc(size, __FILE__, __LINE__);
    pthread_mutex_unlock(&rs_test__alloc_lock);
    return p;
}

static void *rs_test__realloc(void *ptr, size_t old_size, size_t new_size, void *user_data) {
    void *p;
    (void)old_size;
    (void)user_data;
    pthread_mutex_lock(&rs_test__alloc_lock);
    p = _test_realloc(ptr, new_size, __FILE__, __LINE__);
    pthread_mutex_unlock(&rs_test__alloc_lock);
    return p;
}

static void rs_test__free(void *ptr, void *user_data) {
    (void)user_data;
    pthread_mutex_lock(&rs_test__alloc_lock);
    _test_free(ptr, __FILE__, __LINE__);
    pthread_mutex_unlock(&rs_test__alloc_lock);
}

/* The leak-checking allocator: cmocka fails the test if any block outlives it. */
static const rs_allocator_t rs_test_allocator = {rs_test__alloc, rs_test__realloc, rs_test__free, NULL};

/* Fault injection: fails allocation number `fail_at` (1-based; 0 = never),
 * passes everything else through to the leak-checking allocator. */
typedef struct rs_test_failing_alloc {
    rs_allocator_t allocator; /* hand this to reseau */
    size_t fail_at;
    size_t count;             /* allocations attempted so far */
    size_t failures;          /* allocations refused so far */
} rs_test_failing_alloc_t;

static void *rs_test__failing_alloc(size_t size, void *user_data) {
    rs_test_failing_alloc_t *f = (rs_test_failing_alloc_t *)user_data;
    size_t n;
    pthread_mutex_lock(&rs_test__alloc_lock);
    n = ++f->count;
    if (n == f->fail_at) {
        ++f->failures;
        pthread_mutex_unlock(&rs_test__alloc_lock);
        return NULL;
    }
    pthread_mutex_unlock(&rs_test__alloc_lock);
    return rs_test__alloc(size, NULL);
}

static void *rs_test__failing_realloc(void *ptr, size_t old_size, size_t new_size, void *user_data) {
    rs_test_failing_alloc_t *f = (rs_test_failing_alloc_t *)user_data;
    size_t n;
    pthread_mutex_lock(&rs_test__alloc_lock);
    n = ++f->count;
    if (n == f->fail_at) {
        ++f->failures;
        pthread_mutex_unlock(&rs_test__alloc_lock);
        return NULL;
    }
    pthread_mutex_unlock(&rs_test__alloc_lock);
    return rs_test__realloc(ptr, old_size, new_size, NULL);
}

static RS__UNUSED void rs_test_failing_alloc_init(rs_test_failing_alloc_t *f, size_t fail_at) {
    memset(f, 0, sizeof(*f));
    f->fail_at = fail_at;
    f->allocator.alloc_fn = rs_test__failing_alloc;
    f->allocator.realloc_fn = rs_test__failing_realloc;
    f->allocator.free_fn = rs_test__free;
    f->allocator.user_data = f;
}

/* Read a counter that loop threads update. */
static RS__UNUSED size_t rs_test_failing_alloc_failures(rs_test_failing_alloc_t *f) {
    size_t n;
    pthread_mutex_lock(&rs_test__alloc_lock);
    n = f->failures;
    pthread_mutex_unlock(&rs_test__alloc_lock);
    return n;
}

/* The backends a loop test must cover on this OS, for parametrised tests. */
static const rs_event_loop_backend_t rs_test_backends[] = {RS_EVENT_LOOP_BACKEND_EPOLL, RS_EVENT_LOOP_BACKEND_POLL};
#define RS_TEST_BACKEND_COUNT (sizeof(rs_test_backends) / sizeof(rs_test_backends[0]))

#endif /* RESEAU_TEST_UTIL_H */
