/*
 * Message pool: one per event loop (a loop-local object), so steady-state I/O
 * reuses messages instead of allocating. Blocks come in size classes, so that
 * memory follows the size hint: a 100-byte message takes a small block, not a
 * full fragment. A request is served by a free block of its class or, rather
 * than allocating, by a free block of a larger class; a new block is always
 * of the smallest class that fits.
 */

/* Framing room on top of a fragment: a TLS record header, IV and tag fit well within it. */
#define RS__MESSAGE_OVERHEAD_ROOM ((size_t)1024)
#define RS__MESSAGE_BLOCK_CAPACITY (RS_MAX_FRAGMENT_SIZE + RS__MESSAGE_OVERHEAD_ROOM)
#define RS__MESSAGE_CLASS_COUNT 3

/* Payload capacity of each class: a line or a small record, a short burst, a
 * full fragment with framing room. */
static const size_t rs__message_class_capacity[RS__MESSAGE_CLASS_COUNT] = {128, 1024, RS__MESSAGE_BLOCK_CAPACITY};
/* Free blocks kept per class and loop; beyond this, released messages are
 * freed (bounds idle memory at about 4.6 MB per loop). */
static const size_t rs__message_class_max_free[RS__MESSAGE_CLASS_COUNT] = {1024, 512, 256};

typedef struct rs__message_pool {
    rs_allocator_t allocator;
    rs_list_t free_blocks[RS__MESSAGE_CLASS_COUNT];
    size_t free_count[RS__MESSAGE_CLASS_COUNT];
    size_t outstanding;
} rs__message_pool_t;

static const char rs__message_pool_key = 0;

static void rs__message_pool_free_blocks(rs__message_pool_t *pool) {
    rs_list_node_t *node;
    size_t c;
    for (c = 0; c < RS__MESSAGE_CLASS_COUNT; ++c) {
        while ((node = rs_list_pop_front(&pool->free_blocks[c])) != NULL) {
            rs_mem_free(&pool->allocator, RS_CONTAINER_OF(node, rs_io_message_t, queueing_handle));
        }
        pool->free_count[c] = 0;
    }
}

static void rs__message_pool_on_remove(void *key, void *object, void *user_data) {
    rs__message_pool_t *pool = (rs__message_pool_t *)object;
    rs_allocator_t allocator = pool->allocator;
    (void)key;
    (void)user_data;
    if (pool->outstanding) {
        RS__LOG_WARN(RS_LS_CHANNEL, "message pool destroyed with %u messages still out", (unsigned)pool->outstanding);
    }
    rs__message_pool_free_blocks(pool);
    rs_mem_free(&allocator, pool);
}

/* The loop's pool, created on first use with the given allocator. Loop thread. */
static rs__message_pool_t *rs__message_pool_get(rs_event_loop_t *loop, const rs_allocator_t *allocator) {
    void *object = NULL;
    rs__message_pool_t *pool;
    size_t c;
    if (rs_event_loop_get_local_object(loop, &rs__message_pool_key, &object) == RS_OK) {
        return (rs__message_pool_t *)object;
    }
    pool = (rs__message_pool_t *)rs_mem_calloc(allocator, 1, sizeof(rs__message_pool_t));
    if (!pool) {
        return NULL;
    }
    pool->allocator = rs__allocator_copy(allocator);
    for (c = 0; c < RS__MESSAGE_CLASS_COUNT; ++c) {
        rs_list_init(&pool->free_blocks[c]);
    }
    if (rs_event_loop_put_local_object(loop, &rs__message_pool_key, pool, rs__message_pool_on_remove, NULL) != RS_OK) {
        rs_mem_free(allocator, pool);
        return NULL;
    }
    return pool;
}

/* The smallest class whose blocks hold `size` bytes. */
static size_t rs__message_class_for(size_t size) {
    size_t c = 0;
    while (c + 1 < RS__MESSAGE_CLASS_COUNT && rs__message_class_capacity[c] < size) {
        ++c;
    }
    return c;
}

static rs_io_message_t *rs__message_pool_acquire(rs__message_pool_t *pool, size_t size_hint) {
    size_t want = size_hint < RS__MESSAGE_BLOCK_CAPACITY ? size_hint : RS__MESSAGE_BLOCK_CAPACITY;
    size_t fit = rs__message_class_for(want);
    size_t c;
    rs_io_message_t *message = NULL;
    for (c = fit; c < RS__MESSAGE_CLASS_COUNT && !message; ++c) {
        rs_list_node_t *node = rs_list_pop_front(&pool->free_blocks[c]);
        if (node) {
            --pool->free_count[c];
            message = RS_CONTAINER_OF(node, rs_io_message_t, queueing_handle);
        }
    }
    if (message) {
        c = message->size_class; /* kept across the memset below */
    } else {
        c = fit;
        message = (rs_io_message_t *)rs_mem_alloc(&pool->allocator,
                                                  sizeof(rs_io_message_t) + rs__message_class_capacity[c]);
        if (!message) {
            return NULL;
        }
    }
    memset(message, 0, sizeof(*message));
    /* The payload lives right after the struct in the same block. */
    message->message_data = rs_byte_buf_from_array(message + 1, 0, want);
    message->pool = pool;
    message->size_class = (unsigned)c;
    ++pool->outstanding;
    return message;
}

static void rs__message_pool_release(rs__message_pool_t *pool, rs_io_message_t *message) {
    size_t c = message->size_class;
    --pool->outstanding;
    if (pool->free_count[c] >= rs__message_class_max_free[c]) {
        rs_mem_free(&pool->allocator, message);
        return;
    }
    rs_list_push_front(&pool->free_blocks[c], &message->queueing_handle);
    ++pool->free_count[c];
}
