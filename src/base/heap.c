/*
 * Binary min-heap of pointers with O(log n) removal.
 *
 * Each item carries a size_t at `index_offset` that the heap keeps equal to the
 * item's slot (SIZE_MAX when out of the heap), so removal needs no search.
 * Not every operation is used by every layer, hence RS__UNUSED on some.
 */
typedef bool rs__heap_less_fn(const void *a, const void *b);

typedef struct rs__heap {
    void **items;
    size_t size;
    size_t capacity;
    size_t index_offset;
    rs__heap_less_fn *less;
    rs_allocator_t allocator;
} rs__heap_t;

static inline void rs__heap_set_index(rs__heap_t *heap, void *item, size_t index) {
    memcpy((char *)item + heap->index_offset, &index, sizeof(index));
}

static inline size_t rs__heap_get_index(const rs__heap_t *heap, const void *item) {
    size_t index;
    memcpy(&index, (const char *)item + heap->index_offset, sizeof(index));
    return index;
}

static inline void rs__heap_place(rs__heap_t *heap, size_t index, void *item) {
    heap->items[index] = item;
    rs__heap_set_index(heap, item, index);
}

static int rs__heap_init(rs__heap_t *heap, const rs_allocator_t *allocator, size_t initial_capacity,
                         size_t index_offset, rs__heap_less_fn *less) {
    memset(heap, 0, sizeof(*heap));
    heap->allocator = rs__allocator_copy(allocator);
    heap->index_offset = index_offset;
    heap->less = less;
    if (initial_capacity) {
        heap->items = (void **)rs_mem_calloc(&heap->allocator, initial_capacity, sizeof(void *));
        if (!heap->items) {
            return RS_ENOMEM;
        }
        heap->capacity = initial_capacity;
    }
    return RS_OK;
}

static void rs__heap_cleanup(rs__heap_t *heap) {
    rs_mem_free(&heap->allocator, heap->items);
    heap->items = NULL;
    heap->size = 0;
    heap->capacity = 0;
}

static RS__UNUSED size_t rs__heap_size(const rs__heap_t *heap) {
    return heap->size;
}

static void *rs__heap_top(const rs__heap_t *heap) {
    return heap->size ? heap->items[0] : NULL;
}

static void rs__heap_sift_up(rs__heap_t *heap, size_t index) {
    void *item = heap->items[index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (!heap->less(item, heap->items[parent])) {
            break;
        }
        rs__heap_place(heap, index, heap->items[parent]);
        index = parent;
    }
    rs__heap_place(heap, index, item);
}

static void rs__heap_sift_down(rs__heap_t *heap, size_t index) {
    void *item = heap->items[index];
    for (;;) {
        size_t child = 2 * index + 1;
        if (child >= heap->size) {
            break;
        }
        if (child + 1 < heap->size && heap->less(heap->items[child + 1], heap->items[child])) {
            ++child;
        }
        if (!heap->less(heap->items[child], item)) {
            break;
        }
        rs__heap_place(heap, index, heap->items[child]);
        index = child;
    }
    rs__heap_place(heap, index, item);
}

static int rs__heap_push(rs__heap_t *heap, void *item) {
    if (heap->size == heap->capacity) {
        size_t new_capacity = heap->capacity ? heap->capacity * 2 : 16;
        void **items;
        if (new_capacity > SIZE_MAX / sizeof(void *)) {
            return RS_ENOMEM;
        }
        items = (void **)rs_mem_realloc(&heap->allocator, heap->items, heap->capacity * sizeof(void *),
                                        new_capacity * sizeof(void *));
        if (!items) {
            return RS_ENOMEM;
        }
        heap->items = items;
        heap->capacity = new_capacity;
    }
    heap->items[heap->size] = item;
    ++heap->size;
    rs__heap_sift_up(heap, heap->size - 1);
    return RS_OK;
}

static void rs__heap_remove(rs__heap_t *heap, void *item) {
    size_t index = rs__heap_get_index(heap, item);
    void *last;
    if (index >= heap->size || heap->items[index] != item) {
        return;
    }
    --heap->size;
    rs__heap_set_index(heap, item, SIZE_MAX);
    if (index == heap->size) {
        return;
    }
    last = heap->items[heap->size];
    heap->items[index] = last;
    rs__heap_set_index(heap, last, index);
    /* The moved item may belong above or below its new slot. */
    if (index > 0 && heap->less(last, heap->items[(index - 1) / 2])) {
        rs__heap_sift_up(heap, index);
    } else {
        rs__heap_sift_down(heap, index);
    }
}

static RS__UNUSED void *rs__heap_pop(rs__heap_t *heap) {
    void *top = rs__heap_top(heap);
    if (top) {
        rs__heap_remove(heap, top);
    }
    return top;
}
