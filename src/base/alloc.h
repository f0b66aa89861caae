/*
 * Allocator.
 *
 * Every create/init options struct carries `const rs_allocator_t *allocator`;
 * NULL means libc. The object copies the struct, so the caller's storage may go
 * away after the call; user_data must outlive every object that uses it.
 * Allocation failure is RS_ENOMEM at the API boundary, never an abort.
 * The functions must be callable from any thread at the same time. Memory they
 * return must be aligned as malloc's is, and to at least 8 bytes even on 32-bit
 * targets, because reseau objects hold 64-bit atomics.
 */
typedef struct rs_allocator {
    /* Return NULL on failure. size is never 0. */
    void *(*alloc_fn)(size_t size, void *user_data);
    /* May be NULL: reseau then emulates it with alloc_fn + copy + free_fn.
     * Return NULL on failure and leave ptr untouched. */
    void *(*realloc_fn)(void *ptr, size_t old_size, size_t new_size, void *user_data);
    /* Never called with NULL. */
    void (*free_fn)(void *ptr, void *user_data);
    void *user_data;
} rs_allocator_t;

/* The libc allocator (malloc/realloc/free). Never NULL. */
RESEAU_API const rs_allocator_t *rs_default_allocator(void);

/* `allocator` NULL means the default. A size of 0 returns NULL without calling the allocator. */
RESEAU_API void *rs_mem_alloc(const rs_allocator_t *allocator, size_t size);
/* Zeroed allocation of count * size bytes; NULL on overflow or failure. */
RESEAU_API void *rs_mem_calloc(const rs_allocator_t *allocator, size_t count, size_t size);
/* On failure returns NULL and leaves ptr valid. ptr NULL behaves like rs_mem_alloc;
 * new_size 0 returns NULL and leaves ptr allocated (free it with rs_mem_free). */
RESEAU_API void *rs_mem_realloc(const rs_allocator_t *allocator, void *ptr, size_t old_size, size_t new_size);
/* ptr may be NULL. */
RESEAU_API void rs_mem_free(const rs_allocator_t *allocator, void *ptr);
