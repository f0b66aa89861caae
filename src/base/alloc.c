/* Allocator: the libc default and the NULL-means-default helpers. */

static void *rs__libc_alloc(size_t size, void *user_data) {
    (void)user_data;
    return malloc(size);
}

static void *rs__libc_realloc(void *ptr, size_t old_size, size_t new_size, void *user_data) {
    (void)old_size;
    (void)user_data;
    return realloc(ptr, new_size);
}

static void rs__libc_free(void *ptr, void *user_data) {
    (void)user_data;
    free(ptr);
}

static const rs_allocator_t rs__libc_allocator = {rs__libc_alloc, rs__libc_realloc, rs__libc_free, NULL};

RESEAU_API const rs_allocator_t *rs_default_allocator(void) {
    return &rs__libc_allocator;
}

/* Objects copy their allocator at creation; this applies the NULL default once. */
static rs_allocator_t rs__allocator_copy(const rs_allocator_t *allocator) {
    return allocator ? *allocator : rs__libc_allocator;
}

RESEAU_API void *rs_mem_alloc(const rs_allocator_t *allocator, size_t size) {
    const rs_allocator_t *a = allocator ? allocator : &rs__libc_allocator;
    if (size == 0) {
        return NULL;
    }
    return a->alloc_fn(size, a->user_data);
}

RESEAU_API void *rs_mem_calloc(const rs_allocator_t *allocator, size_t count, size_t size) {
    void *p;
    if (count == 0 || size == 0 || count > SIZE_MAX / size) {
        return NULL;
    }
    p = rs_mem_alloc(allocator, count * size);
    if (p) {
        memset(p, 0, count * size);
    }
    return p;
}

RESEAU_API void *rs_mem_realloc(const rs_allocator_t *allocator, void *ptr, size_t old_size, size_t new_size) {
    const rs_allocator_t *a = allocator ? allocator : &rs__libc_allocator;
    void *p;
    if (!ptr) {
        return rs_mem_alloc(a, new_size);
    }
    if (new_size == 0) {
        return NULL;
    }
    if (a->realloc_fn) {
        return a->realloc_fn(ptr, old_size, new_size, a->user_data);
    }
    p = a->alloc_fn(new_size, a->user_data);
    if (p) {
        memcpy(p, ptr, old_size < new_size ? old_size : new_size);
        a->free_fn(ptr, a->user_data);
    }
    return p;
}

RESEAU_API void rs_mem_free(const rs_allocator_t *allocator, void *ptr) {
    const rs_allocator_t *a = allocator ? allocator : &rs__libc_allocator;
    if (ptr) {
        a->free_fn(ptr, a->user_data);
    }
}
