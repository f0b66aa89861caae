/*
 * Tasks.
 *
 * rs_task_t is intrusive: embed it in your own struct, so scheduling never
 * allocates. A scheduled task is owned by the loop until its function runs,
 * exactly once, with RS_TASK_STATUS_RUN, or with RS_TASK_STATUS_CANCELED when
 * it is canceled or its loop is destroyed. It runs on the loop's thread. The
 * task's memory must stay valid until then; after that it may be reused or
 * freed, even from inside its own function.
 */
typedef enum rs_task_status {
    RS_TASK_STATUS_RUN = 0,
    RS_TASK_STATUS_CANCELED = 1
} rs_task_status_t;

typedef struct rs_task rs_task_t;

typedef void rs_task_fn(rs_task_t *task, void *arg, rs_task_status_t status);

struct rs_task {
    rs_task_fn *fn;
    void *arg;
    const char *type_tag; /* a static string naming the task in logs (default: "task") */
    /* Private to the scheduler: */
    rs_list_node_t node;
    uint64_t run_at_ns;
    uint64_t seq;
    size_t heap_index;
    int state;
};

/* Prepare a task for scheduling. type_tag may be NULL. Any thread. */
RESEAU_API void rs_task_init(rs_task_t *task, rs_task_fn *fn, void *arg, const char *type_tag);

/* True from scheduling until just before its function is called. Loop thread only. */
RESEAU_API bool rs_task_is_scheduled(const rs_task_t *task);

RESEAU_API const char *rs_task_status_name(rs_task_status_t status);
