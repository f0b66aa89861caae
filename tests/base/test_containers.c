/* Containers: the public intrusive list and the private binary min-heap. */
#include "test_util.h"

/* ---- intrusive list ----------------------------------------------------- */

typedef struct list_item {
    int value;
    double padding; /* the node is deliberately not the first member */
    rs_list_node_t node;
} list_item_t;

static void init_items(list_item_t *items, int count, int first_value) {
    int i;
    for (i = 0; i < count; ++i) {
        items[i].value = first_value + i;
        items[i].padding = 0.0;
        rs_list_node_reset(&items[i].node);
    }
}

/* Asserts the list holds exactly `expected`, in order, walking both directions. */
static void assert_list_values(rs_list_t *list, const int *expected, size_t count) {
    rs_list_node_t *node;
    size_t i = 0;
    for (node = rs_list_begin(list); node != rs_list_end(list); node = node->next) {
        assert_true(i < count);
        assert_int_equal(RS_CONTAINER_OF(node, list_item_t, node)->value, expected[i]);
        assert_ptr_equal(node->next->prev, node);
        assert_true(rs_list_node_is_linked(node));
        ++i;
    }
    assert_int_equal(i, count);
    for (node = rs_list_end(list)->prev; node != rs_list_end(list); node = node->prev) {
        assert_true(i > 0);
        --i;
        assert_int_equal(RS_CONTAINER_OF(node, list_item_t, node)->value, expected[i]);
    }
    assert_int_equal(i, 0);
    assert_int_equal(rs_list_count(list), count);
    assert_true(rs_list_empty(list) == (count == 0));
}

static void list_container_of_recovers_the_embedding_struct(void **state) {
    list_item_t item;
    rs_list_node_t *node = &item.node;
    (void)state;
    assert_true(offsetof(list_item_t, node) > 0);
    assert_ptr_equal(RS_CONTAINER_OF(node, list_item_t, node), &item);
}

static void list_new_list_is_empty(void **state) {
    rs_list_t list;
    (void)state;
    rs_list_init(&list);
    assert_true(rs_list_empty(&list));
    assert_int_equal(rs_list_count(&list), 0);
    assert_ptr_equal(rs_list_begin(&list), rs_list_end(&list));
    assert_null(rs_list_pop_front(&list));
}

static void list_push_back_and_front_keep_order(void **state) {
    rs_list_t list;
    list_item_t items[5];
    static const int expected[] = {3, 4, 0, 1, 2};
    int i;
    (void)state;
    rs_list_init(&list);
    init_items(items, 5, 0);
    for (i = 0; i < 3; ++i) {
        assert_false(rs_list_node_is_linked(&items[i].node));
        rs_list_push_back(&list, &items[i].node);
        assert_true(rs_list_node_is_linked(&items[i].node));
    }
    rs_list_push_front(&list, &items[4].node);
    rs_list_push_front(&list, &items[3].node);
    assert_list_values(&list, expected, 5);
}

static void list_pop_front_returns_nodes_in_order_then_null(void **state) {
    rs_list_t list;
    list_item_t items[4];
    rs_list_node_t *node;
    int i;
    (void)state;
    rs_list_init(&list);
    init_items(items, 4, 10);
    for (i = 0; i < 4; ++i) {
        rs_list_push_back(&list, &items[i].node);
    }
    for (i = 0; i < 4; ++i) {
        node = rs_list_pop_front(&list);
        assert_ptr_equal(node, &items[i].node);
        assert_false(rs_list_node_is_linked(node));
        assert_int_equal(rs_list_count(&list), (size_t)(3 - i));
    }
    assert_null(rs_list_pop_front(&list));
    assert_true(rs_list_empty(&list));
}

static void list_remove_unlinks_and_second_remove_is_noop(void **state) {
    rs_list_t list;
    list_item_t items[5];
    static const int after_middle[] = {0, 1, 3, 4};
    static const int after_ends[] = {1, 3};
    int i;
    (void)state;
    rs_list_init(&list);
    init_items(items, 5, 0);
    for (i = 0; i < 5; ++i) {
        rs_list_push_back(&list, &items[i].node);
    }
    rs_list_remove(&items[2].node);
    assert_false(rs_list_node_is_linked(&items[2].node));
    assert_null(items[2].node.next);
    assert_null(items[2].node.prev);
    assert_list_values(&list, after_middle, 4);
    rs_list_remove(&items[2].node);
    assert_list_values(&list, after_middle, 4);

    rs_list_remove(&items[0].node);
    rs_list_remove(&items[4].node);
    assert_list_values(&list, after_ends, 2);
    rs_list_remove(&items[1].node);
    rs_list_remove(&items[3].node);
    assert_list_values(&list, NULL, 0);
    rs_list_remove(&items[3].node);
    assert_true(rs_list_empty(&list));
}

static void list_removed_node_can_be_reinserted(void **state) {
    rs_list_t list;
    list_item_t items[3];
    static const int expected[] = {1, 2, 0};
    int i;
    (void)state;
    rs_list_init(&list);
    init_items(items, 3, 0);
    for (i = 0; i < 3; ++i) {
        rs_list_push_back(&list, &items[i].node);
    }
    rs_list_remove(&items[0].node);
    rs_list_push_back(&list, &items[0].node);
    assert_list_values(&list, expected, 3);
}

static void list_insert_before_places_node_ahead_of_where(void **state) {
    rs_list_t list;
    list_item_t items[4];
    static const int expected[] = {0, 3, 1, 2};
    int i;
    (void)state;
    rs_list_init(&list);
    init_items(items, 4, 0);
    for (i = 0; i < 3; ++i) {
        rs_list_push_back(&list, &items[i].node);
    }
    rs_list_insert_before(&items[1].node, &items[3].node);
    assert_list_values(&list, expected, 4);
}

static void list_splice_back_moves_everything_in_order(void **state) {
    rs_list_t a;
    rs_list_t b;
    list_item_t items[5];
    static const int joined[] = {0, 1, 2, 3, 4};
    static const int first_two[] = {0, 1};
    int i;
    (void)state;
    rs_list_init(&a);
    rs_list_init(&b);
    init_items(items, 5, 0);
    for (i = 0; i < 2; ++i) {
        rs_list_push_back(&a, &items[i].node);
    }
    for (i = 2; i < 5; ++i) {
        rs_list_push_back(&b, &items[i].node);
    }
    /* Splicing an empty list changes nothing. */
    {
        rs_list_t empty;
        rs_list_init(&empty);
        rs_list_splice_back(&a, &empty);
        assert_list_values(&a, first_two, 2);
        assert_true(rs_list_empty(&empty));
    }
    rs_list_splice_back(&a, &b);
    assert_list_values(&a, joined, 5);
    assert_list_values(&b, NULL, 0);
    /* Splicing into an empty list moves everything back. */
    rs_list_splice_back(&b, &a);
    assert_list_values(&b, joined, 5);
    assert_list_values(&a, NULL, 0);
}

static void list_swap_exchanges_contents(void **state) {
    rs_list_t a;
    rs_list_t b;
    list_item_t items[3];
    static const int two[] = {0, 1};
    static const int one[] = {2};
    (void)state;
    rs_list_init(&a);
    rs_list_init(&b);
    init_items(items, 3, 0);
    rs_list_push_back(&a, &items[0].node);
    rs_list_push_back(&a, &items[1].node);
    rs_list_push_back(&b, &items[2].node);
    rs_list_swap(&a, &b);
    assert_list_values(&a, one, 1);
    assert_list_values(&b, two, 2);
    /* Swapping with an empty list. */
    {
        rs_list_t empty;
        rs_list_init(&empty);
        rs_list_swap(&b, &empty);
        assert_list_values(&b, NULL, 0);
        assert_list_values(&empty, two, 2);
    }
}

/* ---- binary min-heap ---------------------------------------------------- */

typedef struct heap_item {
    uint32_t key;
    size_t heap_index;
    int id;
} heap_item_t;

static bool heap_item_less(const void *a, const void *b) {
    return ((const heap_item_t *)a)->key < ((const heap_item_t *)b)->key;
}

/* xorshift32: a fixed-seed PRNG so failures reproduce. */
static uint32_t prng_next(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

static int heap_init_items(rs__heap_t *heap, const rs_allocator_t *allocator, size_t capacity) {
    return rs__heap_init(heap, allocator, capacity, offsetof(heap_item_t, heap_index), heap_item_less);
}

/* Every slot's item knows its slot, and no child is less than its parent. */
static void assert_heap_consistent(const rs__heap_t *heap) {
    size_t i;
    assert_true(heap->size <= heap->capacity);
    for (i = 0; i < heap->size; ++i) {
        const heap_item_t *item = (const heap_item_t *)heap->items[i];
        assert_int_equal(item->heap_index, i);
        if (i > 0) {
            assert_false(heap_item_less(item, heap->items[(i - 1) / 2]));
        }
    }
}

static void heap_new_heap_is_empty(void **state) {
    rs__heap_t heap;
    (void)state;
    assert_int_equal(heap_init_items(&heap, &rs_test_allocator, 0), RS_OK);
    assert_int_equal(rs__heap_size(&heap), 0);
    assert_null(rs__heap_top(&heap));
    assert_null(rs__heap_pop(&heap));
    rs__heap_cleanup(&heap);
    assert_int_equal(heap_init_items(&heap, &rs_test_allocator, 8), RS_OK);
    assert_int_equal(rs__heap_size(&heap), 0);
    assert_null(rs__heap_top(&heap));
    rs__heap_cleanup(&heap);
}

#define HEAP_RANDOM_ITEMS 10000

static void heap_random_pushes_pop_in_sorted_order(void **state) {
    rs__heap_t heap;
    heap_item_t *items = (heap_item_t *)test_calloc(HEAP_RANDOM_ITEMS, sizeof(heap_item_t));
    uint32_t seed = 12345;
    uint32_t previous = 0;
    size_t i;
    (void)state;
    assert_int_equal(heap_init_items(&heap, &rs_test_allocator, 4), RS_OK);
    for (i = 0; i < HEAP_RANDOM_ITEMS; ++i) {
        items[i].key = prng_next(&seed) % 5000; /* plenty of duplicate keys */
        items[i].heap_index = SIZE_MAX;
        items[i].id = (int)i;
        assert_int_equal(rs__heap_push(&heap, &items[i]), RS_OK);
        assert_int_equal(rs__heap_size(&heap), i + 1);
        if (i % 1000 == 999) {
            assert_heap_consistent(&heap);
        }
    }
    assert_heap_consistent(&heap);
    for (i = 0; i < HEAP_RANDOM_ITEMS; ++i) {
        heap_item_t *top = (heap_item_t *)rs__heap_top(&heap);
        heap_item_t *popped = (heap_item_t *)rs__heap_pop(&heap);
        assert_non_null(popped);
        assert_ptr_equal(top, popped);
        assert_true(popped->key >= previous);
        assert_int_equal(popped->heap_index, SIZE_MAX);
        previous = popped->key;
        assert_int_equal(rs__heap_size(&heap), HEAP_RANDOM_ITEMS - i - 1);
        if (i % 1000 == 0) {
            assert_heap_consistent(&heap);
        }
    }
    assert_null(rs__heap_pop(&heap));
    for (i = 0; i < HEAP_RANDOM_ITEMS; ++i) {
        assert_int_equal(items[i].heap_index, SIZE_MAX);
    }
    rs__heap_cleanup(&heap);
    test_free(items);
}

#define HEAP_REMOVE_ITEMS 300

static void heap_remove_from_middle_keeps_order_and_indexes(void **state) {
    rs__heap_t heap;
    heap_item_t items[HEAP_REMOVE_ITEMS];
    bool removed[HEAP_REMOVE_ITEMS];
    uint32_t seed = 777;
    uint32_t previous = 0;
    size_t i;
    size_t popped_count = 0;
    (void)state;
    assert_int_equal(heap_init_items(&heap, &rs_test_allocator, 0), RS_OK);
    for (i = 0; i < HEAP_REMOVE_ITEMS; ++i) {
        items[i].key = prng_next(&seed) % 1000;
        items[i].heap_index = SIZE_MAX;
        items[i].id = (int)i;
        removed[i] = false;
        assert_int_equal(rs__heap_push(&heap, &items[i]), RS_OK);
        assert_heap_consistent(&heap);
    }
    /* Remove a third of the items, chosen at random, from wherever they sit. */
    for (i = 0; i < HEAP_REMOVE_ITEMS / 3; ++i) {
        size_t victim;
        size_t size_before = rs__heap_size(&heap);
        do {
            victim = prng_next(&seed) % HEAP_REMOVE_ITEMS;
        } while (removed[victim]);
        assert_true(items[victim].heap_index < size_before);
        rs__heap_remove(&heap, &items[victim]);
        removed[victim] = true;
        assert_int_equal(items[victim].heap_index, SIZE_MAX);
        assert_int_equal(rs__heap_size(&heap), size_before - 1);
        assert_heap_consistent(&heap);
    }
    while (rs__heap_size(&heap) > 0) {
        heap_item_t *popped = (heap_item_t *)rs__heap_pop(&heap);
        assert_false(removed[popped->id]);
        assert_true(popped->key >= previous);
        previous = popped->key;
        removed[popped->id] = true;
        ++popped_count;
        assert_heap_consistent(&heap);
    }
    assert_int_equal(popped_count, HEAP_REMOVE_ITEMS - HEAP_REMOVE_ITEMS / 3);
    for (i = 0; i < HEAP_REMOVE_ITEMS; ++i) {
        assert_true(removed[i]);
    }
    rs__heap_cleanup(&heap);
}

static void heap_remove_of_only_item_empties_the_heap(void **state) {
    rs__heap_t heap;
    heap_item_t item = {5, SIZE_MAX, 0};
    (void)state;
    assert_int_equal(heap_init_items(&heap, &rs_test_allocator, 1), RS_OK);
    assert_int_equal(rs__heap_push(&heap, &item), RS_OK);
    assert_int_equal(item.heap_index, 0);
    assert_ptr_equal(rs__heap_top(&heap), &item);
    rs__heap_remove(&heap, &item);
    assert_int_equal(item.heap_index, SIZE_MAX);
    assert_int_equal(rs__heap_size(&heap), 0);
    assert_null(rs__heap_top(&heap));
    rs__heap_cleanup(&heap);
}

static void heap_remove_of_top_promotes_the_next_smallest(void **state) {
    rs__heap_t heap;
    heap_item_t items[7];
    static const uint32_t keys[7] = {40, 10, 70, 20, 60, 30, 50};
    size_t i;
    (void)state;
    assert_int_equal(heap_init_items(&heap, &rs_test_allocator, 2), RS_OK);
    for (i = 0; i < 7; ++i) {
        items[i].key = keys[i];
        items[i].heap_index = SIZE_MAX;
        items[i].id = (int)i;
        assert_int_equal(rs__heap_push(&heap, &items[i]), RS_OK);
    }
    assert_ptr_equal(rs__heap_top(&heap), &items[1]);
    rs__heap_remove(&heap, &items[1]);
    assert_int_equal(items[1].heap_index, SIZE_MAX);
    assert_heap_consistent(&heap);
    assert_ptr_equal(rs__heap_top(&heap), &items[3]); /* key 20 */
    rs__heap_remove(&heap, &items[3]);
    assert_ptr_equal(rs__heap_top(&heap), &items[5]); /* key 30 */
    assert_int_equal(rs__heap_size(&heap), 5);
    assert_heap_consistent(&heap);
    rs__heap_cleanup(&heap);
}

static void heap_remove_of_last_slot_keeps_the_rest(void **state) {
    rs__heap_t heap;
    heap_item_t items[6];
    heap_item_t *last;
    size_t i;
    (void)state;
    assert_int_equal(heap_init_items(&heap, &rs_test_allocator, 0), RS_OK);
    for (i = 0; i < 6; ++i) {
        items[i].key = (uint32_t)(i * 10);
        items[i].heap_index = SIZE_MAX;
        items[i].id = (int)i;
        assert_int_equal(rs__heap_push(&heap, &items[i]), RS_OK);
    }
    last = (heap_item_t *)heap.items[heap.size - 1];
    rs__heap_remove(&heap, last);
    assert_int_equal(last->heap_index, SIZE_MAX);
    assert_int_equal(rs__heap_size(&heap), 5);
    assert_heap_consistent(&heap);
    for (i = 0; i < 6; ++i) {
        if (&items[i] != last) {
            assert_true(items[i].heap_index < 5);
        }
    }
    rs__heap_cleanup(&heap);
}

static void heap_remove_of_item_not_in_heap_is_noop(void **state) {
    rs__heap_t heap;
    heap_item_t a = {1, SIZE_MAX, 0};
    heap_item_t b = {2, SIZE_MAX, 1};
    (void)state;
    assert_int_equal(heap_init_items(&heap, &rs_test_allocator, 0), RS_OK);
    assert_int_equal(rs__heap_push(&heap, &a), RS_OK);
    rs__heap_remove(&heap, &b);
    assert_int_equal(rs__heap_size(&heap), 1);
    assert_ptr_equal(rs__heap_top(&heap), &a);
    /* Removing an item twice is also harmless. */
    rs__heap_remove(&heap, &a);
    rs__heap_remove(&heap, &a);
    assert_int_equal(rs__heap_size(&heap), 0);
    rs__heap_cleanup(&heap);
}

static void heap_push_failure_returns_enomem_and_leaves_heap_intact(void **state) {
    rs_test_failing_alloc_t f;
    rs__heap_t heap;
    heap_item_t items[40];
    heap_item_t extra = {0, SIZE_MAX, 99};
    uint32_t seed = 4242;
    uint32_t previous = 0;
    size_t i;
    size_t capacity;
    size_t count = 0;
    (void)state;
    rs_test_failing_alloc_init(&f, 0);
    assert_int_equal(heap_init_items(&heap, &f.allocator, 4), RS_OK);
    /* Fill to exactly the current capacity. */
    while (heap.size < heap.capacity) {
        items[count].key = prng_next(&seed) % 100 + 1;
        items[count].heap_index = SIZE_MAX;
        items[count].id = (int)count;
        assert_int_equal(rs__heap_push(&heap, &items[count]), RS_OK);
        ++count;
        assert_true(count < 40);
    }
    capacity = heap.capacity;
    /* The next push must grow, and the growth is refused. */
    f.fail_at = f.count + 1;
    assert_int_equal(rs__heap_push(&heap, &extra), RS_ENOMEM);
    assert_int_equal(rs_test_failing_alloc_failures(&f), 1);
    assert_int_equal(rs__heap_size(&heap), count);
    assert_int_equal(heap.capacity, capacity);
    assert_heap_consistent(&heap);
    for (i = 0; i < count; ++i) {
        assert_ptr_equal(heap.items[items[i].heap_index], &items[i]);
    }
    /* With memory back, the same push succeeds and the new minimum is on top. */
    f.fail_at = 0;
    assert_int_equal(rs__heap_push(&heap, &extra), RS_OK);
    assert_ptr_equal(rs__heap_top(&heap), &extra);
    assert_heap_consistent(&heap);
    for (i = 0; i <= count; ++i) {
        heap_item_t *popped = (heap_item_t *)rs__heap_pop(&heap);
        assert_non_null(popped);
        assert_true(popped->key >= previous);
        previous = popped->key;
    }
    assert_int_equal(rs__heap_size(&heap), 0);
    rs__heap_cleanup(&heap);
}

static void heap_init_failure_returns_enomem(void **state) {
    rs_test_failing_alloc_t f;
    rs__heap_t heap;
    (void)state;
    rs_test_failing_alloc_init(&f, 1);
    assert_int_equal(heap_init_items(&heap, &f.allocator, 16), RS_ENOMEM);
    assert_int_equal(rs_test_failing_alloc_failures(&f), 1);
    assert_int_equal(rs__heap_size(&heap), 0);
    /* Cleanup after a failed init is safe. */
    rs__heap_cleanup(&heap);
}

static void heap_first_push_failure_on_empty_heap_leaves_it_empty(void **state) {
    rs_test_failing_alloc_t f;
    rs__heap_t heap;
    heap_item_t item = {3, SIZE_MAX, 0};
    (void)state;
    rs_test_failing_alloc_init(&f, 1);
    assert_int_equal(heap_init_items(&heap, &f.allocator, 0), RS_OK);
    f.fail_at = f.count + 1;
    assert_int_equal(rs__heap_push(&heap, &item), RS_ENOMEM);
    assert_int_equal(rs__heap_size(&heap), 0);
    assert_null(rs__heap_top(&heap));
    f.fail_at = 0;
    assert_int_equal(rs__heap_push(&heap, &item), RS_OK);
    assert_int_equal(item.heap_index, 0);
    rs__heap_cleanup(&heap);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(list_container_of_recovers_the_embedding_struct),
        cmocka_unit_test(list_new_list_is_empty),
        cmocka_unit_test(list_push_back_and_front_keep_order),
        cmocka_unit_test(list_pop_front_returns_nodes_in_order_then_null),
        cmocka_unit_test(list_remove_unlinks_and_second_remove_is_noop),
        cmocka_unit_test(list_removed_node_can_be_reinserted),
        cmocka_unit_test(list_insert_before_places_node_ahead_of_where),
        cmocka_unit_test(list_splice_back_moves_everything_in_order),
        cmocka_unit_test(list_swap_exchanges_contents),
        cmocka_unit_test(heap_new_heap_is_empty),
        cmocka_unit_test(heap_random_pushes_pop_in_sorted_order),
        cmocka_unit_test(heap_remove_from_middle_keeps_order_and_indexes),
        cmocka_unit_test(heap_remove_of_only_item_empties_the_heap),
        cmocka_unit_test(heap_remove_of_top_promotes_the_next_smallest),
        cmocka_unit_test(heap_remove_of_last_slot_keeps_the_rest),
        cmocka_unit_test(heap_remove_of_item_not_in_heap_is_noop),
        cmocka_unit_test(heap_push_failure_returns_enomem_and_leaves_heap_intact),
        cmocka_unit_test(heap_init_failure_returns_enomem),
        cmocka_unit_test(heap_first_push_failure_on_empty_heap_leaves_it_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
