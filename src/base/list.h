/*
 * Intrusive doubly linked list.
 *
 * Embed an rs_list_node_t in your struct and recover the struct with
 * RS_CONTAINER_OF. The list is circular around a sentinel, so no operation
 * allocates and removal is O(1). Not thread-safe: guard it yourself.
 */
typedef struct rs_list_node {
    struct rs_list_node *next;
    struct rs_list_node *prev;
} rs_list_node_t;

typedef struct rs_list {
    rs_list_node_t sentinel;
} rs_list_t;

static inline void rs_list_init(rs_list_t *list) {
    list->sentinel.next = &list->sentinel;
    list->sentinel.prev = &list->sentinel;
}

/* A node that is in no list points at nothing; removing it again is a no-op. */
static inline void rs_list_node_reset(rs_list_node_t *node) {
    node->next = NULL;
    node->prev = NULL;
}

static inline bool rs_list_node_is_linked(const rs_list_node_t *node) {
    return node->next != NULL;
}

static inline bool rs_list_empty(const rs_list_t *list) {
    return list->sentinel.next == &list->sentinel;
}

static inline rs_list_node_t *rs_list_begin(rs_list_t *list) {
    return list->sentinel.next;
}

/* One past the last node: iterate with `for (n = begin; n != end; n = n->next)`. */
static inline rs_list_node_t *rs_list_end(rs_list_t *list) {
    return &list->sentinel;
}

static inline void rs_list_insert_before(rs_list_node_t *where, rs_list_node_t *node) {
    node->next = where;
    node->prev = where->prev;
    where->prev->next = node;
    where->prev = node;
}

static inline void rs_list_push_back(rs_list_t *list, rs_list_node_t *node) {
    rs_list_insert_before(&list->sentinel, node);
}

static inline void rs_list_push_front(rs_list_t *list, rs_list_node_t *node) {
    rs_list_insert_before(list->sentinel.next, node);
}

static inline void rs_list_remove(rs_list_node_t *node) {
    if (!rs_list_node_is_linked(node)) {
        return;
    }
    node->prev->next = node->next;
    node->next->prev = node->prev;
    rs_list_node_reset(node);
}

/* Unlink and return the first node, or NULL when empty. */
static inline rs_list_node_t *rs_list_pop_front(rs_list_t *list) {
    rs_list_node_t *node;
    if (rs_list_empty(list)) {
        return NULL;
    }
    node = list->sentinel.next;
    rs_list_remove(node);
    return node;
}

/* Move every node of `from` to the end of `to`, in O(1). `from` ends empty. */
static inline void rs_list_splice_back(rs_list_t *to, rs_list_t *from) {
    rs_list_node_t *first;
    rs_list_node_t *last;
    if (rs_list_empty(from)) {
        return;
    }
    first = from->sentinel.next;
    last = from->sentinel.prev;
    first->prev = to->sentinel.prev;
    last->next = &to->sentinel;
    to->sentinel.prev->next = first;
    to->sentinel.prev = last;
    rs_list_init(from);
}

/* Exchange the contents of two lists in O(1). */
static inline void rs_list_swap(rs_list_t *a, rs_list_t *b) {
    rs_list_t tmp;
    rs_list_init(&tmp);
    rs_list_splice_back(&tmp, a);
    rs_list_splice_back(a, b);
    rs_list_splice_back(b, &tmp);
}

static inline size_t rs_list_count(rs_list_t *list) {
    size_t count = 0;
    rs_list_node_t *node;
    for (node = rs_list_begin(list); node != rs_list_end(list); node = node->next) {
        ++count;
    }
    return count;
}
