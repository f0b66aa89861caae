/*
 * Event-loop group.
 *
 * N loops, each on its own named thread, to spread connections over cores.
 * The group owns its loops. rs_event_loop_group_get_next_loop picks one by
 * "best of two" on the load factor. Creation and the accessors may be called
 * from any thread. Destruction is synchronous by default; with on_shutdown set
 * it returns at once and on_shutdown runs on a helper thread once every loop
 * has stopped and been destroyed.
 */
typedef struct rs_event_loop_group rs_event_loop_group_t;

typedef void rs_event_loop_group_shutdown_fn(void *user_data);

typedef struct rs_event_loop_group_options {
    const rs_allocator_t *allocator;        /* copied (default: NULL, libc) */
    uint16_t loop_count;                    /* (default: 0, rs_usable_cpu_count()) */
    rs_event_loop_backend_t backend;        /* backend of every loop (default: DEFAULT) */
    const char *thread_name_prefix;         /* threads are named "<prefix>-<index>" (default: "rs-el") */
    size_t thread_stack_size;               /* per loop thread (default: 0, the OS default) */
    rs_clock_fn *clock_fn;                  /* clock override for every loop (default: NULL) */
    void *clock_user_data;                  /* (default: NULL) */
    rs_event_loop_group_shutdown_fn *on_shutdown; /* asynchronous destroy if set (default: NULL) */
    void *shutdown_user_data;               /* passed to on_shutdown (default: NULL) */
} rs_event_loop_group_options_t;

/* Create the loops and start their threads (NULL options mean defaults). On any failure everything already
 * made is stopped and freed, and NULL is returned with *err_out set (RS_ENOMEM,
 * RS_ETHREAD, RS_ENOTSUP, ...). Any thread. RESEAU_NO_THREADS: always NULL
 * with RS_ENOTSUP. */
RESEAU_API rs_event_loop_group_t *rs_event_loop_group_new(const rs_event_loop_group_options_t *options,
                                                          int *err_out);
/* Stop and join every loop, then destroy them all, then free the group. No
 * loop is freed while another can still run: live channels are shut down and
 * open sockets closed as rs_event_loop_destroy does it (RS_ECANCELED, each
 * callback once), and tasks that loops hand each other meanwhile, like every
 * task still pending, run CANCELED, once, on the destroying thread. Without
 * on_shutdown
 * it blocks, and returns RS_EDEADLK (doing nothing) when called from one of the
 * group's own loop threads. With on_shutdown it returns at once and on_shutdown
 * fires exactly once, on a helper thread; RS_ETHREAD if that thread cannot start
 * (then nothing was done). RS_EINVAL for a NULL group. Any thread. */
RESEAU_API int rs_event_loop_group_destroy(rs_event_loop_group_t *group);

RESEAU_API size_t rs_event_loop_group_get_loop_count(const rs_event_loop_group_t *group);
/* NULL if index is out of range. */
RESEAU_API rs_event_loop_t *rs_event_loop_group_get_loop_at(const rs_event_loop_group_t *group, size_t index);
/* Best of two random loops by load factor. Any thread. */
RESEAU_API rs_event_loop_t *rs_event_loop_group_get_next_loop(rs_event_loop_group_t *group);
