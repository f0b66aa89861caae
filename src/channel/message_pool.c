/*
 * Message pool: one per event loop (a loop-local object), so steady-state I/O
 * reuses messages instead of allocating. Every block has room for a full
 * fragment plus the framing handlers add, so any block serves any request.
 */

/* Framing room on top of a fragment: a TLS record header, IV and tag fit well within it. */
#define RS__MESSAGE_OVERHEAD_ROOM ((size_t)1024)
#define RS__MESSAGE_BLOCK_CAPACITY (RS_MAX_FRAGMENT_SIZE + RS__MESSAGE_OVERHEAD_ROOM)
/* Free blocks kept per loop; beyond this, released messages are freed (bounds idle memory). */
#define RS__MESSAGE_POOL_MAX_FREE 256

typedef struct rs__message_pool {
    rs_allocator_t allocator;
    rs_list_t free_blocks;
    size_t free_count;
    size_t outstanding;
} rs__message_pool_t;

static const char rs__message_pool_key = 0;

static void rs__message_pool_free_blocks(rs__message_pool_t *pool) {
    rs_list_node_t *node;
    while ((node = rs_list_pop_front(&pool->free_blocks)) != NULL) {
        rs_mem_free(&pool->allocator, RS_CONTAINER_OF(node, rs_io_message_t, queueing_handle));
    }
    pool->free_count = 0;
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
    if (rs_event_loop_get_local_object(loop, &rs__message_pool_key, &object) == RS_OK) {
        return (rs__message_pool_t *)object;
    }
    pool = (rs__message_pool_t *)rs_mem_calloc(allocator, 1, sizeof(rs__message_pool_t));
    if (!pool) {
        return NULL;
    }
    pool->allocator = rs__allocator_copy(allocator);
    rs_list_init(&pool->free_blocks);
    if (rs_event_loop_put_local_object(loop, &rs__message_pool_key, pool, rs__message_pool_on_remove, NULL) != RS_OK) {
        rs_mem_free(allocator, pool);
        return NULL;
    }
    return pool;
}

static rs_io_message_t *rs__message_pool_acquire(rs__message_pool_t *pool, size_t size_hint) {
    rs_list_node_t *node = rs_list_pop_front(&pool->free_blocks);
    rs_io_message_t *message;
    if (node) {
        --pool->free_count;
        message = RS_CONTAINER_OF(node, rs_io_message_t, queueing_handle);
    } else {
        message = (rs_io_message_t *)rs_mem_alloc(&pool->allocator, sizeof(rs_io_message_t) + RS__MESSAGE_BLOCK_CAPACITY);
        if (!message) {
            return NULL;
        }
    }
    memset(message, 0, sizeof(*message));
    /* The payload lives right after the struct in the same block. */
    message->message_data = rs_byte_buf_from_array(message + 1, 0,
                                                   size_hint < RS__MESSAGE_BLOCK_CAPACITY ? size_hint
                                                                                          : RS__MESSAGE_BLOCK_CAPACITY);
    message->pool = pool;
    ++pool->outstanding;
    return message;
}

static void rs__message_pool_release(rs__message_pool_t *pool, rs_io_message_t *message) {
    --pool->outstanding;
    if (pool->free_count >= RS__MESSAGE_POOL_MAX_FREE) {
        rs_mem_free(&pool->allocator, message);
        return;
    }
    rs_list_push_front(&pool->free_blocks, &message->queueing_handle);
    ++pool->free_count;
}
