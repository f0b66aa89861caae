/*
 * io_uring backend (Linux 5.19+), on raw system calls: no liburing, and no
 * <linux/io_uring.h> either, since reseau.h must compile where that header is
 * old or missing. The part of the kernel ABI used here is defined below (it
 * is fixed: the kernel only ever extends it), and what the running kernel
 * offers is probed when a loop is created.
 *
 * Stream sockets run on operations in the ring (net/socket_uring.c:
 * multishot accept, connect, multishot recv into a provided-buffer ring,
 * SENDMSG), and UDP sockets receive through a multishot RECVMSG into a second
 * ring of datagram-sized buffers, where the kernel has them (6.0+). The
 * operations only socket_uring.c calls are RS__UNUSED, for RESEAU_NO_SOCKETS.
 * Readiness, for users' fds and for the rest of the socket layer (Unix
 * datagram sockets, and everything on older kernels), is a
 * one-shot IORING_OP_POLL_ADD per registration, armed again after each report: that keeps the loop's level-triggered contract, which a
 * multishot poll (edge-like: it fires on new wakeups, not on data left
 * unread) would break. Cross-thread wakeups are an eventfd that the ring
 * reads (one IORING_OP_READ, re-armed after each completion), so a wake costs
 * the waker one write(2) and the loop no extra system call.
 *
 * One io_uring_enter per tick submits what was queued and waits for the next
 * completion, up to the next task's deadline (IORING_ENTER_EXT_ARG).
 *
 * A ring made with IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN (6.1+) only
 * accepts io_uring_enter from the thread that created it, while a loop moves
 * between threads (created on one, started on its own, run again by the
 * caller): when the owner changes, the ring is rebuilt on the new thread and
 * every armed poll is armed again there.
 */
#if RESEAU_OS_LINUX

/* ---- the kernel ABI (include/uapi/linux/io_uring.h) ---- */

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425 /* the same on every architecture since 5.1 (asm-generic) */
#endif
#ifndef __NR_io_uring_enter
#define __NR_io_uring_enter 426
#endif
#ifndef __NR_io_uring_register
#define __NR_io_uring_register 427
#endif

typedef struct rs__uring_sqe {
    uint8_t opcode;
    uint8_t flags;
    uint16_t ioprio;
    int32_t fd;
    uint64_t off;
    uint64_t addr;
    uint32_t len;
    uint32_t op_flags; /* poll32_events, msg_flags, rw_flags, ... */
    uint64_t user_data;
    uint16_t buf_index;
    uint16_t personality;
    int32_t splice_fd_in;
    uint64_t addr3;
    uint64_t pad2;
} rs__uring_sqe_t;
RS__STATIC_ASSERT(sizeof(rs__uring_sqe_t) == 64, uring_sqe_size);

typedef struct rs__uring_cqe {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
} rs__uring_cqe_t;
RS__STATIC_ASSERT(sizeof(rs__uring_cqe_t) == 16, uring_cqe_size);

typedef struct rs__uring_sq_offsets {
    uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array, resv1;
    uint64_t user_addr;
} rs__uring_sq_offsets_t;

typedef struct rs__uring_cq_offsets {
    uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1;
    uint64_t user_addr;
} rs__uring_cq_offsets_t;

typedef struct rs__uring_params {
    uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd, resv[3];
    rs__uring_sq_offsets_t sq_off;
    rs__uring_cq_offsets_t cq_off;
} rs__uring_params_t;
RS__STATIC_ASSERT(sizeof(rs__uring_params_t) == 120, uring_params_size);

typedef struct rs__uring_getevents_arg {
    uint64_t sigmask;
    uint32_t sigmask_sz;
    uint32_t min_wait_usec;
    uint64_t ts;
} rs__uring_getevents_arg_t;

typedef struct rs__uring_timespec {
    int64_t tv_sec;
    long long tv_nsec;
} rs__uring_timespec_t;

typedef struct rs__uring_probe_op {
    uint8_t op, resv;
    uint16_t flags;
    uint32_t resv2;
} rs__uring_probe_op_t;

typedef struct rs__uring_probe {
    uint8_t last_op, ops_len;
    uint16_t resv;
    uint32_t resv2[3];
    rs__uring_probe_op_t ops[64];
} rs__uring_probe_t;

#define RS__IORING_OFF_SQ_RING 0ULL
#define RS__IORING_OFF_CQ_RING 0x8000000ULL
#define RS__IORING_OFF_SQES 0x10000000ULL

#define RS__IORING_SETUP_CQSIZE (1u << 3)
#define RS__IORING_SETUP_CLAMP (1u << 4)
#define RS__IORING_SETUP_SUBMIT_ALL (1u << 7)
#define RS__IORING_SETUP_COOP_TASKRUN (1u << 8)
#define RS__IORING_SETUP_SINGLE_ISSUER (1u << 12)
#define RS__IORING_SETUP_DEFER_TASKRUN (1u << 13)

#define RS__IORING_FEAT_SINGLE_MMAP (1u << 0)
#define RS__IORING_FEAT_NODROP (1u << 1)
#define RS__IORING_FEAT_EXT_ARG (1u << 8)

#define RS__IORING_SQ_CQ_OVERFLOW (1u << 1)

#define RS__IORING_ENTER_GETEVENTS (1u << 0)
#define RS__IORING_ENTER_EXT_ARG (1u << 3)

#define RS__IORING_REGISTER_PROBE 8u
#define RS__IO_URING_OP_SUPPORTED (1u << 0)

#define RS__IORING_OP_POLL_ADD 6
#define RS__IORING_OP_POLL_REMOVE 7
#define RS__IORING_OP_WRITEV 2
#define RS__IORING_OP_SENDMSG 9
#define RS__IORING_OP_RECVMSG 10
#define RS__IORING_OP_ACCEPT 13
#define RS__IORING_OP_LINK_TIMEOUT 15
#define RS__IORING_OP_CONNECT 16
#define RS__IORING_OP_ASYNC_CANCEL 14
#define RS__IORING_OP_READ 22
#define RS__IORING_OP_RECV 27
#define RS__IORING_OP_READ_MULTISHOT 49

#define RS__IOSQE_IO_LINK (1u << 2)
#define RS__IOSQE_BUFFER_SELECT (1u << 5)
#define RS__IORING_ACCEPT_MULTISHOT (1u << 0) /* in sqe->ioprio */
#define RS__IORING_RECV_MULTISHOT (1u << 1) /* in sqe->ioprio */
#define RS__IORING_CQE_F_BUFFER (1u << 0)
#define RS__IORING_CQE_F_MORE (1u << 1)
#define RS__IORING_CQE_BUFFER_SHIFT 16

#define RS__IORING_REGISTER_PBUF_RING 22u
#define RS__IORING_REGISTER_SYNC_CANCEL 24u

typedef struct rs__uring_buf_reg {
    uint64_t ring_addr;
    uint32_t ring_entries;
    uint16_t bgid;
    uint16_t flags;
    uint64_t resv[3];
} rs__uring_buf_reg_t;
RS__STATIC_ASSERT(sizeof(rs__uring_buf_reg_t) == 40, uring_buf_reg_size);

/* One entry of a provided-buffer ring. The ring's tail (a uint16_t) overlays
 * the `resv` field of its first entry. */
typedef struct rs__uring_buf {
    uint64_t addr;
    uint32_t len;
    uint16_t bid;
    uint16_t resv;
} rs__uring_buf_t;
RS__STATIC_ASSERT(sizeof(rs__uring_buf_t) == 16, uring_buf_size);

/* What a multishot IORING_OP_RECVMSG puts at the start of each buffer, before
 * the source address (msg_namelen bytes of room), the control data (none
 * here) and the payload. */
typedef struct rs__uring_recvmsg_out {
    uint32_t namelen;    /* the source address's length, before any cut */
    uint32_t controllen;
    uint32_t payloadlen; /* the datagram's length (with MSG_TRUNC: before any cut) */
    uint32_t flags;      /* msg_flags: MSG_TRUNC when the datagram was cut to the buffer */
} rs__uring_recvmsg_out_t;
RS__STATIC_ASSERT(sizeof(rs__uring_recvmsg_out_t) == 16, uring_recvmsg_out_size);

typedef struct rs__uring_sync_cancel_reg {
    uint64_t addr;
    int32_t fd;
    uint32_t flags;
    rs__uring_timespec_t timeout;
    uint8_t opcode;
    uint8_t pad[7];
    uint64_t pad2[3];
} rs__uring_sync_cancel_reg_t;
RS__STATIC_ASSERT(sizeof(rs__uring_sync_cancel_reg_t) == 64, uring_sync_cancel_reg_size);

/* ---- the backend ---- */

/* Submission queue size; the completion queue is RS__URING_CQ_FACTOR times
 * larger, so that one tick's completions fit without overflowing. */
#define RS__URING_SQ_ENTRIES 256u
#define RS__URING_CQ_FACTOR 16u

/* user_data: the kind in the top byte, then for a poll its slot's generation
 * (24 bits) and index (32 bits). A completion whose generation is not its
 * slot's any more is stale (canceled, or for a registration since removed). */
#define RS__URING_KIND_WAKE 1u
#define RS__URING_KIND_POLL 2u
#define RS__URING_KIND_IGNORE 3u
#define RS__URING_KIND_OP 4u
#define RS__URING_KIND_OP_FD 5u /* an op whose results are new fds (accept) */
#define RS__URING_KIND_OP_DGRAM 6u /* an op whose buffers are datagram buffers */
#define RS__URING_GEN_MASK 0xffffffu

/* Provided buffers, in two groups shared by the completion-based sockets of
 * the loop: the kernel picks one per received chunk (stream) or datagram, and
 * the socket gives it back once rs_socket_read or rs_socket_recv_from has
 * copied it out. Streams: 256 x 4 KiB = 1 MiB per loop, made with the loop. */
#define RS__URING_BUF_COUNT 256u
#define RS__URING_BUF_SIZE 4096u
/* Datagrams: each buffer holds one whole datagram, so that the buffer never
 * cuts one the caller's own buffer would have taken whole (UDP carries at
 * most 65527 bytes over IPv6, 65507 over IPv4), after the recvmsg header and
 * the source address. The group is made when the first datagram socket needs
 * it, and mapped rather than allocated: a small datagram touches only the
 * first page of its buffer, so 8.5 MiB of address space costs, in memory,
 * about one page per datagram waiting. */
#define RS__URING_DGRAM_BUF_COUNT 128u
#define RS__URING_DGRAM_BUF_SIZE (68u * 1024u)
#define RS__URING_GROUP_STREAM 0u
#define RS__URING_GROUP_DGRAM 1u
#define RS__URING_GROUPS 2u

typedef struct rs__uring_op rs__uring_op_t;

/* A completion of `op`: res is the kernel's (bytes, or -errno), cqe_flags its
 * flags. Unless IORING_CQE_F_MORE is set, the op is idle again when this is
 * called, and may be started anew. A buffer the completion carries
 * (IORING_CQE_F_BUFFER) belongs to the callee. Loop thread. */
typedef void rs__uring_op_fn(rs_event_loop_t *loop, rs__uring_op_t *op, int res, uint32_t cqe_flags);

/* An operation of the socket layer in the ring. Its memory must stay valid
 * while it is in flight; rs__uring_op_abandon ends that at once. */
struct rs__uring_op {
    rs__uring_op_fn *fn;
    int fd;
    uint32_t slot; /* index + 1 while in flight; 0 when idle */
    bool cancel_sent;
    bool starved; /* a recv that ran out of buffers, in the loop's starved list */
    bool lost;    /* ended by dropped completions, in the loop's lost list (rs__uring_fail_ops) */
    bool yields_fds; /* its results are new fds: one nobody takes is closed */
    uint8_t group;   /* the buffer group its recv takes from: RS__URING_GROUP_xxx */
    struct msghdr *msg; /* a datagram recv's (rs__uring_op_recvmsg) */
    rs_list_node_t starved_node;
};

/* Received chunks (or datagrams) waiting to be read, in order: buffer ids
 * chained through the group's per-buffer table, so queueing never allocates.
 * A datagram queue (group RS__URING_GROUP_DGRAM) is read a whole buffer at a
 * time, through rs__uring_rxq_front and rs__uring_rxq_pop_front. */
typedef struct rs__uring_rxq {
    uint32_t head; /* buffer id + 1; 0 when empty */
    uint32_t tail;
    uint32_t count;
    uint32_t head_off; /* bytes of the head chunk already read */
    uint8_t group;     /* RS__URING_GROUP_xxx, set before the first push */
    /* Held data moved out of the ring (rs__uring_rxq_spill): read before the
     * chunks, which all came after it. For datagrams, records of a uint32_t
     * length then that many bytes (the buffer as the kernel filled it). */
    unsigned char *spill;
    size_t spill_len;
    size_t spill_off;
    size_t spill_count; /* datagrams in spill */
    rs_list_node_t holder_node; /* in the loop's holders while count > 0 */
    bool holding;
    bool unread_mark; /* set by the reclaim task, cleared by a read */
} rs__uring_rxq_t;

typedef struct rs__uring_slot {
    rs__io_registration_t *reg; /* a poll's registration; NULL while free or for an op */
    rs__uring_op_t *op;         /* an op's; NULL while free or for a poll */
    uint32_t generation;
    uint32_t next_free;
    bool armed; /* a poll is queued or in the kernel */
} rs__uring_slot_t;

typedef struct rs__uring_ready {
    uint32_t slot;
    uint32_t generation;
    int events;
    int error;          /* RS_Exxx when the poll itself failed */
    int32_t res;        /* an op's completion, as the kernel gave it */
    uint32_t cqe_flags; /* an op's; for a poll, 0 */
    bool is_op;
    bool yields_fd; /* an RS__URING_KIND_OP_FD op's */
    uint8_t group;  /* the buffer group of the buffer it may carry */
} rs__uring_ready_t;

/* A provided-buffer ring and its buffers. */
typedef struct rs__uring_pbuf {
    rs__uring_buf_t *ring; /* page-aligned, mmap'ed: the kernel maps it too; NULL until made */
    uint16_t tail;
    uint16_t bgid;
    uint32_t count; /* a power of two */
    uint32_t size;
    uint32_t free;
    unsigned char *bufs; /* count x size */
    bool bufs_mapped;    /* bufs is mmap'ed rather than allocated */
    uint32_t *meta; /* per buffer: [2*bid] the next queued id + 1, [2*bid+1] the length received */
    rs_list_t starved; /* recvs waiting for a buffer of this group to come back */
} rs__uring_pbuf_t;

typedef struct rs__uring {
    rs_event_loop_t *loop;
    int ring_fd;
    unsigned setup_flags;
    unsigned features;
    rs_thread_id_t submitter; /* SINGLE_ISSUER: the only thread that may enter the ring */
    void *sq_map;
    size_t sq_map_size;
    void *cq_map; /* == sq_map with IORING_FEAT_SINGLE_MMAP */
    size_t cq_map_size;
    rs__uring_sqe_t *sqes;
    size_t sqes_size;
    uint32_t *sq_head, *sq_tail, *sq_flags;
    uint32_t sq_mask, sq_entries;
    uint32_t *cq_head, *cq_tail;
    uint32_t cq_mask, cq_entries;
    rs__uring_cqe_t *cqes;
    uint32_t sq_local_tail; /* the next SQE to fill; published to *sq_tail as filled */

    int wake_fd;
    uint64_t wake_value; /* the eventfd read's buffer */

    rs__fd_owners_t owners; /* a second poll of one fd would report twice: RS_EEXIST */
    rs__uring_slot_t *slots;
    uint32_t slot_capacity;
    uint32_t free_head; /* index + 1 of the first free slot; 0: none */

    rs__uring_ready_t *ready;
    size_t ready_count;
    size_t ready_capacity;
    bool lost_completions; /* -EBADR: the kernel dropped completions; re-arm everything */
    bool lost_op_completions; /* the same, seen with ops: end the ops in flight (rs__uring_fail_ops) */

    /* Completion-based sockets (rs__uring_loop_has_ops): the provided-buffer rings. */
    bool ops_enabled;
    bool dgram_failed; /* the kernel refused the datagram group: datagram sockets stay readiness-based */
    rs__uring_pbuf_t pb[RS__URING_GROUPS];
    rs_list_t holders; /* receive queues holding buffers */
    rs_list_t lost;    /* ops ended by dropped completions, to be told so (rs__uring_fail_ops) */
    uint64_t starve_count; /* recvs that ran out of buffers: for tests and debugging */
    uint64_t sq_full_count;  /* SQEs that had to wait for the kernel to take the queued ones: the same */
    uint64_t cq_overflow_count; /* ticks that found completions kept in the kernel's overflow list: the same */
    rs_task_t reclaim_task;
} rs__uring_t;

/* For tests: make io_uring_setup fail with this errno (0: do not). */
static int rs__uring_test_setup_errno;
/* For tests: the queue sizes (0: the defaults), to provoke a full submission
 * queue and an overflowing completion queue. */
static unsigned rs__uring_test_sq_entries;
static unsigned rs__uring_test_cq_entries;
/* For tests: the next io_uring_enter reports -EBADR, as when the kernel could
 * not keep an overflowing completion; the flag then clears itself. */
static bool rs__uring_test_fake_ebadr;
/* For tests: loops made while this is set keep readiness-based sockets (and
 * the SINGLE_ISSUER ring), as on a kernel without what the completion-based
 * ones need. RESEAU_TEST_URING_READINESS sets it for a whole test program. */
#ifdef RESEAU_TEST_URING_READINESS
static bool rs__uring_test_readiness_sockets = true;
#else
static bool rs__uring_test_readiness_sockets;
#endif

static int rs__uring_sys_setup(unsigned entries, rs__uring_params_t *p) {
    if (rs__uring_test_setup_errno) {
        errno = rs__uring_test_setup_errno;
        return -1;
    }
    return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int rs__uring_sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, const void *arg,
                               size_t argsz) {
    return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz);
}

static int rs__uring_sys_register(int fd, unsigned opcode, void *arg, unsigned nr_args) {
    return (int)syscall(__NR_io_uring_register, fd, opcode, arg, nr_args);
}

static uint32_t rs__uring_load_acquire(const uint32_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void rs__uring_store_release(uint32_t *p, uint32_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static uint64_t rs__uring_token(unsigned kind, uint32_t generation, uint32_t slot) {
    return ((uint64_t)kind << 56) | ((uint64_t)(generation & RS__URING_GEN_MASK) << 32) | slot;
}

static void rs__uring_unmap(rs__uring_t *u) {
    if (u->sqes) {
        munmap(u->sqes, u->sqes_size);
    }
    if (u->cq_map && u->cq_map != u->sq_map) {
        munmap(u->cq_map, u->cq_map_size);
    }
    if (u->sq_map) {
        munmap(u->sq_map, u->sq_map_size);
    }
    u->sqes = NULL;
    u->cq_map = NULL;
    u->sq_map = NULL;
}

static void rs__uring_close_ring(rs__uring_t *u) {
    rs__uring_unmap(u);
    if (u->ring_fd >= 0) {
        close(u->ring_fd);
        u->ring_fd = -1;
    }
}

static int rs__uring_map(rs__uring_t *u, const rs__uring_params_t *p) {
    uint32_t *array;
    uint32_t i;
    u->sq_map_size = p->sq_off.array + p->sq_entries * sizeof(uint32_t);
    u->cq_map_size = p->cq_off.cqes + p->cq_entries * sizeof(rs__uring_cqe_t);
    if (p->features & RS__IORING_FEAT_SINGLE_MMAP) {
        if (u->cq_map_size > u->sq_map_size) {
            u->sq_map_size = u->cq_map_size;
        }
        u->cq_map_size = u->sq_map_size;
    }
    u->sq_map = mmap(NULL, u->sq_map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->ring_fd,
                     RS__IORING_OFF_SQ_RING);
    if (u->sq_map == MAP_FAILED) {
        u->sq_map = NULL;
        return rs_result_from_errno(errno);
    }
    if (p->features & RS__IORING_FEAT_SINGLE_MMAP) {
        u->cq_map = u->sq_map;
    } else {
        u->cq_map = mmap(NULL, u->cq_map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->ring_fd,
                         RS__IORING_OFF_CQ_RING);
        if (u->cq_map == MAP_FAILED) {
            u->cq_map = NULL;
            return rs_result_from_errno(errno);
        }
    }
    u->sqes_size = p->sq_entries * sizeof(rs__uring_sqe_t);
    u->sqes = (rs__uring_sqe_t *)mmap(NULL, u->sqes_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                                      u->ring_fd, RS__IORING_OFF_SQES);
    if (u->sqes == MAP_FAILED) {
        u->sqes = NULL;
        return rs_result_from_errno(errno);
    }
    u->sq_head = (uint32_t *)(void *)((char *)u->sq_map + p->sq_off.head);
    u->sq_tail = (uint32_t *)(void *)((char *)u->sq_map + p->sq_off.tail);
    u->sq_flags = (uint32_t *)(void *)((char *)u->sq_map + p->sq_off.flags);
    u->sq_mask = *(uint32_t *)(void *)((char *)u->sq_map + p->sq_off.ring_mask);
    u->sq_entries = p->sq_entries;
    array = (uint32_t *)(void *)((char *)u->sq_map + p->sq_off.array);
    for (i = 0; i < p->sq_entries; ++i) {
        array[i] = i; /* SQEs are used in ring order, so the index array is the identity */
    }
    u->cq_head = (uint32_t *)(void *)((char *)u->cq_map + p->cq_off.head);
    u->cq_tail = (uint32_t *)(void *)((char *)u->cq_map + p->cq_off.tail);
    u->cq_mask = *(uint32_t *)(void *)((char *)u->cq_map + p->cq_off.ring_mask);
    u->cq_entries = p->cq_entries;
    u->cqes = (rs__uring_cqe_t *)(void *)((char *)u->cq_map + p->cq_off.cqes);
    u->sq_local_tail = *u->sq_tail;
    return RS_OK;
}

/* Whether the kernel has every operation in `needed`. */
static bool rs__uring_probe_ops(int ring_fd, const uint8_t *needed, size_t count) {
    rs__uring_probe_t probe;
    size_t i;
    memset(&probe, 0, sizeof(probe));
    if (rs__uring_sys_register(ring_fd, RS__IORING_REGISTER_PROBE, &probe, 64) != 0) {
        return false;
    }
    for (i = 0; i < count; ++i) {
        if (needed[i] > probe.last_op || !(probe.ops[needed[i]].flags & RS__IO_URING_OP_SUPPORTED)) {
            return false;
        }
    }
    return true;
}

/* Make the ring on this thread: the best setup flags the kernel takes, then
 * the features this backend needs. RS_ENOTSUP when io_uring is missing,
 * refused (the io_uring_disabled sysctl, seccomp) or too old. A ring for
 * completion-based sockets skips SINGLE_ISSUER: its operations carry data,
 * so it must never be remade on another thread (that would lose them), and
 * the loop's destroy must be able to cancel them from any thread. */
static int rs__uring_open(rs__uring_t *u, bool for_ops) {
    static const uint8_t needed[] = {RS__IORING_OP_POLL_ADD, RS__IORING_OP_POLL_REMOVE, RS__IORING_OP_READ};
    static const unsigned flag_sets[] = {
        RS__IORING_SETUP_SINGLE_ISSUER | RS__IORING_SETUP_DEFER_TASKRUN, /* 6.1+ */
        RS__IORING_SETUP_COOP_TASKRUN,                                   /* 5.19+ */
        0,
    };
    rs__uring_params_t p;
    size_t i;
    int err;
    for (i = for_ops ? 1 : 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); ++i) {
        memset(&p, 0, sizeof(p));
        p.flags = flag_sets[i] | RS__IORING_SETUP_CQSIZE | RS__IORING_SETUP_CLAMP | RS__IORING_SETUP_SUBMIT_ALL;
        p.cq_entries = rs__uring_test_cq_entries ? rs__uring_test_cq_entries
                                                 : RS__URING_SQ_ENTRIES * RS__URING_CQ_FACTOR;
        u->ring_fd = rs__uring_sys_setup(rs__uring_test_sq_entries ? rs__uring_test_sq_entries : RS__URING_SQ_ENTRIES,
                                         &p);
        if (u->ring_fd >= 0) {
            break;
        }
        if (errno != EINVAL) {
            break; /* ENOSYS, EPERM, ENOMEM: no other flags will help */
        }
    }
    if (u->ring_fd < 0) {
        int e = errno;
        RS__LOG_INFO(RS_LS_EVENT_LOOP, "io_uring unavailable: io_uring_setup: %s (errno %d)", strerror(e), e);
        /* ENOMEM here is the kernel's locked-memory limit, not the heap:
         * io_uring is as unusable as with ENOSYS or EPERM. */
        return RS_ENOTSUP;
    }
    u->setup_flags = p.flags;
    u->features = p.features;
    if (!(p.features & RS__IORING_FEAT_EXT_ARG) || !(p.features & RS__IORING_FEAT_NODROP) ||
        !rs__uring_probe_ops(u->ring_fd, needed, sizeof(needed))) {
        RS__LOG_INFO(RS_LS_EVENT_LOOP, "io_uring too old for this backend (features %#x)", p.features);
        rs__uring_close_ring(u);
        return RS_ENOTSUP;
    }
    err = rs__uring_map(u, &p);
    if (err) {
        rs__uring_close_ring(u);
        return err;
    }
    u->submitter = rs_thread_current_id();
    return RS_OK;
}

/* Submit what is queued, without waiting. */
static int rs__uring_submit(rs__uring_t *u) {
    unsigned to_submit = u->sq_local_tail - rs__uring_load_acquire(u->sq_head);
    int n;
    if (!to_submit) {
        return RS_OK;
    }
    do {
        n = rs__uring_sys_enter(u->ring_fd, to_submit, 0, 0, NULL, 0);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? rs_result_from_errno(errno) : RS_OK;
}

/* Submit what is queued and run the ring's pending work (completions are
 * posted, not reaped), without waiting. */
static void rs__uring_submit_and_run(rs__uring_t *u) {
    int n;
    do {
        unsigned to_submit = u->sq_local_tail - rs__uring_load_acquire(u->sq_head);
        n = rs__uring_sys_enter(u->ring_fd, to_submit, 0, RS__IORING_ENTER_GETEVENTS, NULL, 0);
    } while (n < 0 && errno == EINTR);
}

/* The next free SQE, zeroed; when the queue is full, what is in it is
 * submitted first. NULL only if the kernel takes none of it. */
static rs__uring_sqe_t *rs__uring_get_sqe(rs__uring_t *u) {
    rs__uring_sqe_t *sqe;
    if (u->sq_local_tail - rs__uring_load_acquire(u->sq_head) >= u->sq_entries) {
        ++u->sq_full_count;
        if (rs__uring_submit(u) != RS_OK ||
            u->sq_local_tail - rs__uring_load_acquire(u->sq_head) >= u->sq_entries) {
            return NULL;
        }
    }
    sqe = &u->sqes[u->sq_local_tail & u->sq_mask];
    memset(sqe, 0, sizeof(*sqe));
    return sqe;
}

static void rs__uring_publish(rs__uring_t *u) {
    ++u->sq_local_tail;
    rs__uring_store_release(u->sq_tail, u->sq_local_tail);
}

static uint32_t rs__uring_poll_mask(int events) {
    uint32_t mask = 0;
    if (events & RS_IO_READABLE) {
        mask |= POLLIN;
    }
    if (events & RS_IO_WRITABLE) {
        mask |= POLLOUT;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    mask = (mask << 16) | (mask >> 16); /* poll32_events holds the halves swapped on big-endian */
#endif
    return mask;
}

static int rs__uring_ready_events(int res) {
    int events = 0;
    unsigned mask = (unsigned)res;
    if (mask & POLLIN) {
        events |= RS_IO_READABLE;
    }
    if (mask & POLLOUT) {
        events |= RS_IO_WRITABLE;
    }
    if (mask & POLLHUP) {
        events |= RS_IO_HANGUP;
    }
    if (mask & (POLLERR | POLLNVAL)) {
        events |= RS_IO_ERROR;
    }
    return events;
}

static int rs__uring_arm_wake(rs__uring_t *u) {
    rs__uring_sqe_t *sqe = rs__uring_get_sqe(u);
    if (!sqe) {
        return RS_EAGAIN;
    }
    sqe->opcode = RS__IORING_OP_READ;
    sqe->fd = u->wake_fd;
    sqe->addr = (uint64_t)(uintptr_t)&u->wake_value;
    sqe->len = sizeof(u->wake_value);
    sqe->user_data = rs__uring_token(RS__URING_KIND_WAKE, 0, 0);
    rs__uring_publish(u);
    return RS_OK;
}

/* Arm a one-shot poll of the slot's registration for what it wants now. */
static int rs__uring_arm_poll(rs__uring_t *u, uint32_t index, int events) {
    rs__uring_slot_t *slot = &u->slots[index];
    rs__uring_sqe_t *sqe = rs__uring_get_sqe(u);
    if (!sqe) {
        return RS_EAGAIN;
    }
    sqe->opcode = RS__IORING_OP_POLL_ADD;
    sqe->fd = slot->reg->fd;
    sqe->op_flags = rs__uring_poll_mask(events);
    sqe->user_data = rs__uring_token(RS__URING_KIND_POLL, slot->generation, index);
    rs__uring_publish(u);
    slot->armed = true;
    return RS_OK;
}

/* Cancel the slot's armed poll; its completion (-ECANCELED, or a late report)
 * then carries an old generation and is ignored. */
static void rs__uring_disarm(rs__uring_t *u, uint32_t index) {
    rs__uring_slot_t *slot = &u->slots[index];
    if (slot->armed) {
        rs__uring_sqe_t *sqe = rs__uring_get_sqe(u);
        if (sqe) {
            sqe->opcode = RS__IORING_OP_POLL_REMOVE;
            sqe->fd = -1;
            sqe->addr = rs__uring_token(RS__URING_KIND_POLL, slot->generation, index);
            sqe->user_data = rs__uring_token(RS__URING_KIND_IGNORE, 0, 0);
            rs__uring_publish(u);
        }
        slot->armed = false;
    }
    slot->generation = (slot->generation + 1) & RS__URING_GEN_MASK;
}

static int rs__uring_slot_new(rs_event_loop_t *loop, rs__uring_t *u, rs__io_registration_t *reg, uint32_t *index) {
    if (!u->free_head) {
        uint32_t capacity = u->slot_capacity ? u->slot_capacity * 2 : 64;
        uint32_t i;
        rs__uring_slot_t *slots = (rs__uring_slot_t *)rs_mem_realloc(
            &loop->allocator, u->slots, u->slot_capacity * sizeof(*slots), capacity * sizeof(*slots));
        if (!slots) {
            return RS_ENOMEM;
        }
        for (i = u->slot_capacity; i < capacity; ++i) {
            memset(&slots[i], 0, sizeof(slots[i]));
            slots[i].next_free = i + 1 < capacity ? i + 2 : 0;
        }
        u->free_head = u->slot_capacity + 1;
        u->slots = slots;
        u->slot_capacity = capacity;
    }
    *index = u->free_head - 1;
    u->free_head = u->slots[*index].next_free;
    u->slots[*index].reg = reg;
    u->slots[*index].armed = false;
    if (reg) {
        reg->slot = *index;
    }
    return RS_OK;
}

static void rs__uring_slot_free(rs__uring_t *u, uint32_t index) {
    rs__uring_disarm(u, index);
    u->slots[index].reg = NULL;
    u->slots[index].op = NULL;
    u->slots[index].next_free = u->free_head;
    u->free_head = index + 1;
}

static int rs__uring_slot_new_op(rs_event_loop_t *loop, rs__uring_t *u, rs__uring_op_t *op, uint32_t *index) {
    rs__io_registration_t *none = NULL;
    int err = rs__uring_slot_new(loop, u, none, index);
    if (!err) {
        u->slots[*index].op = op;
    }
    return err;
}

/* ---- completion operations, for the socket layer ---- */

/* The user_data of the op in slot `index`, which a cancel names too. */
static uint64_t rs__uring_op_token(const rs__uring_t *u, const rs__uring_op_t *op, uint32_t index) {
    unsigned kind = op->yields_fds                      ? RS__URING_KIND_OP_FD
                    : op->group == RS__URING_GROUP_DGRAM ? RS__URING_KIND_OP_DGRAM
                                                         : RS__URING_KIND_OP;
    return rs__uring_token(kind, u->slots[index].generation, index);
}

static unsigned char *rs__uring_buf_at(const rs__uring_pbuf_t *pb, uint32_t bid) {
    return pb->bufs + (size_t)bid * pb->size;
}

static void rs__uring_buf_put(rs__uring_pbuf_t *pb, uint32_t bid) {
    rs__uring_buf_t *entry = &pb->ring[pb->tail & (pb->count - 1)];
    entry->addr = (uint64_t)(uintptr_t)rs__uring_buf_at(pb, bid);
    entry->len = pb->size;
    entry->bid = (uint16_t)bid;
    ++pb->tail;
    __atomic_store_n(&pb->ring[0].resv, pb->tail, __ATOMIC_RELEASE); /* the ring's tail */
    ++pb->free;
}

static int rs__uring_start_recv(rs__uring_t *u, rs__uring_op_t *op);
static void rs__uring_reclaim_task(rs_task_t *task, void *arg, rs_task_status_t status);

/* A buffer came back: recvs that stopped for want of one can go on, as many
 * as there are buffers (the rest would only run dry again). */
static void rs__uring_feed_starved(rs__uring_t *u, rs__uring_pbuf_t *pb) {
    uint32_t budget = pb->free;
    while (budget-- > 0 && !rs_list_empty(&pb->starved)) {
        rs__uring_op_t *op = RS_CONTAINER_OF(rs_list_begin(&pb->starved), rs__uring_op_t, starved_node);
        rs_list_remove(&op->starved_node);
        op->starved = false;
        if (rs__uring_start_recv(u, op) != RS_OK) {
            op->starved = true; /* no room in the queue now: with the next buffer */
            rs_list_push_back(&pb->starved, &op->starved_node);
            return;
        }
    }
}

static bool rs__uring_any_starved(const rs__uring_t *u) {
    uint32_t g;
    for (g = 0; g < RS__URING_GROUPS; ++g) {
        if (!rs_list_empty(&u->pb[g].starved)) {
            return true;
        }
    }
    return false;
}

/* Whether `loop` runs completion-based sockets. */
static bool rs__uring_loop_has_ops(const rs_event_loop_t *loop) {
    return loop && loop->backend->kind == RS_EVENT_LOOP_BACKEND_IO_URING &&
           ((const rs__uring_t *)rs__backend_data(loop))->ops_enabled;
}

static int rs__uring_slot_new_op(rs_event_loop_t *loop, rs__uring_t *u, rs__uring_op_t *op, uint32_t *index);

/* Queue `op` with the SQE the caller fills through `sqe_out`. */
static int rs__uring_op_begin(rs_event_loop_t *loop, rs__uring_op_t *op, rs__uring_sqe_t **sqe_out) {
    rs__uring_t *u = (rs__uring_t *)rs__backend_data(loop);
    rs__uring_sqe_t *sqe;
    uint32_t index;
    int err;
    RESEAU_ASSERT(!op->slot);
    sqe = rs__uring_get_sqe(u);
    if (!sqe) {
        return RS_EAGAIN;
    }
    err = rs__uring_slot_new_op(loop, u, op, &index);
    if (err) {
        return err;
    }
    sqe->fd = op->fd;
    sqe->user_data = rs__uring_op_token(u, op, index);
    op->slot = index + 1;
    op->cancel_sent = false;
    *sqe_out = sqe;
    return RS_OK;
}

static int rs__uring_start_recv(rs__uring_t *u, rs__uring_op_t *op) {
    rs__uring_sqe_t *sqe = NULL;
    int err = rs__uring_op_begin(u->loop, op, &sqe);
    if (err) {
        return err;
    }
    sqe->flags = RS__IOSQE_BUFFER_SELECT;
    sqe->ioprio = RS__IORING_RECV_MULTISHOT;
    sqe->buf_index = u->pb[op->group].bgid;
    if (op->group == RS__URING_GROUP_DGRAM) {
        sqe->opcode = RS__IORING_OP_RECVMSG;
        sqe->addr = (uint64_t)(uintptr_t)op->msg;
        sqe->len = 1;
        sqe->op_flags = MSG_TRUNC; /* the header's payloadlen is then the datagram's whole length */
    } else {
        sqe->opcode = RS__IORING_OP_RECV;
    }
    rs__uring_publish(u);
    return RS_OK;
}

/* Receive on op->fd until canceled or the stream ends: each chunk completes
 * with IORING_CQE_F_MORE and a buffer; -ENOBUFS ends it when none is left.
 * RS_OK, RS_ENOMEM, or RS_EAGAIN when the submission queue is full and the
 * kernel takes none of it. */
static RS__UNUSED int rs__uring_op_recv(rs_event_loop_t *loop, rs__uring_op_t *op) {
    op->group = RS__URING_GROUP_STREAM;
    return rs__uring_start_recv((rs__uring_t *)rs__backend_data(loop), op);
}

static int rs__uring_make_dgram_group(rs_event_loop_t *loop, rs__uring_t *u);

/* Whether datagram sockets of `loop` can receive through ops: the loop has
 * them, and its datagram buffers are made (now, on first use). Loop thread. */
static RS__UNUSED bool rs__uring_loop_has_dgram_ops(rs_event_loop_t *loop) {
    rs__uring_t *u;
    if (!rs__uring_loop_has_ops(loop)) {
        return false;
    }
    u = (rs__uring_t *)rs__backend_data(loop);
    if (!u->pb[RS__URING_GROUP_DGRAM].ring && !u->dgram_failed &&
        rs__uring_make_dgram_group(loop, u) == RS_ENOTSUP) {
        u->dgram_failed = true; /* the kernel's refusal is for good; memory may come back */
    }
    return u->pb[RS__URING_GROUP_DGRAM].ring != NULL;
}

/* Receive datagrams on op->fd until canceled, with recvmsg(`msg`), which must
 * stay valid while the op runs: its msg_namelen is the room for the source
 * address in each buffer, and it has no iovec and no control buffer. Each
 * datagram completes with a datagram buffer (see rs__uring_dgram_parse); a
 * socket error (ICMP) ends the op. Same results as rs__uring_op_recv. */
static RS__UNUSED int rs__uring_op_recvmsg(rs_event_loop_t *loop, rs__uring_op_t *op, struct msghdr *msg) {
    op->group = RS__URING_GROUP_DGRAM;
    op->msg = msg;
    return rs__uring_start_recv((rs__uring_t *)rs__backend_data(loop), op);
}

/* One sendmsg of `msg` (which, with its iovecs, must stay valid until the
 * completion). Same results as rs__uring_op_recv. */
static RS__UNUSED int rs__uring_op_sendmsg(rs_event_loop_t *loop, rs__uring_op_t *op, const struct msghdr *msg) {
    rs__uring_sqe_t *sqe = NULL;
    int err = rs__uring_op_begin(loop, op, &sqe);
    if (err) {
        return err;
    }
    sqe->opcode = RS__IORING_OP_SENDMSG;
    sqe->addr = (uint64_t)(uintptr_t)msg;
    sqe->len = 1;
    sqe->op_flags = RS__MSG_NOSIGNAL;
    rs__uring_publish((rs__uring_t *)rs__backend_data(loop));
    return RS_OK;
}

/* Accept connections on listening op->fd until canceled: each completes with
 * IORING_CQE_F_MORE and a new non-blocking, close-on-exec fd (or -errno), and
 * a completion without it ends the op. Same results as rs__uring_op_recv. */
static RS__UNUSED int rs__uring_op_accept(rs_event_loop_t *loop, rs__uring_op_t *op) {
    rs__uring_sqe_t *sqe = NULL;
    int err;
    op->yields_fds = true;
    err = rs__uring_op_begin(loop, op, &sqe);
    if (err) {
        return err;
    }
    sqe->opcode = RS__IORING_OP_ACCEPT;
    sqe->ioprio = RS__IORING_ACCEPT_MULTISHOT;
    sqe->op_flags = RS__SOCK_FLAGS;
    rs__uring_publish((rs__uring_t *)rs__backend_data(loop));
    return RS_OK;
}

/* Connect op->fd to `addr`; with `timeout` (not NULL), a linked timeout ends
 * it with -ECANCELED when that much time has passed. The kernel reads `addr`
 * and `timeout` when it takes the SQEs, so both must stay valid until the
 * completion. Same results as rs__uring_op_recv. */
static RS__UNUSED int rs__uring_op_connect(rs_event_loop_t *loop, rs__uring_op_t *op, const void *addr, uint32_t addr_len,
                                const rs__uring_timespec_t *timeout) {
    rs__uring_t *u = (rs__uring_t *)rs__backend_data(loop);
    rs__uring_sqe_t *sqe = NULL;
    int err;
    /* Both SQEs or neither: a link cut in two would leave the timeout out. */
    if (timeout && u->sq_local_tail - rs__uring_load_acquire(u->sq_head) + 2 > u->sq_entries &&
        (rs__uring_submit(u) != RS_OK || u->sq_local_tail - rs__uring_load_acquire(u->sq_head) + 2 > u->sq_entries)) {
        return RS_EAGAIN;
    }
    err = rs__uring_op_begin(loop, op, &sqe);
    if (err) {
        return err;
    }
    sqe->opcode = RS__IORING_OP_CONNECT;
    sqe->addr = (uint64_t)(uintptr_t)addr;
    sqe->off = addr_len;
    if (timeout) {
        sqe->flags = RS__IOSQE_IO_LINK;
    }
    rs__uring_publish(u);
    if (timeout) {
        sqe = rs__uring_get_sqe(u);
        sqe->opcode = RS__IORING_OP_LINK_TIMEOUT;
        sqe->fd = -1;
        sqe->addr = (uint64_t)(uintptr_t)timeout;
        sqe->len = 1;
        sqe->user_data = rs__uring_token(RS__URING_KIND_IGNORE, 0, 0);
        rs__uring_publish(u);
    }
    return RS_OK;
}

/* A recv that ran out of buffers (-ENOBUFS) starts again when one comes back. */
static RS__UNUSED void rs__uring_op_wait_for_buffers(rs_event_loop_t *loop, rs__uring_op_t *op) {
    rs__uring_t *u = (rs__uring_t *)rs__backend_data(loop);
    if (!op->starved) {
        op->starved = true;
        ++u->starve_count;
        rs_list_push_back(&u->pb[op->group].starved, &op->starved_node);
    }
    if (!rs_task_is_scheduled(&u->reclaim_task)) {
        rs_event_loop_schedule_task_now(loop, &u->reclaim_task);
    }
}

static void rs__uring_op_stop_waiting(rs__uring_op_t *op) {
    if (op->starved || op->lost) {
        rs_list_remove(&op->starved_node); /* the node serves both lists, never both at once */
        op->starved = false;
        op->lost = false;
    }
}

/* Ask the kernel to end `op`; it completes (-ECANCELED, or with what it had
 * done) like any other time. A starved recv just stops waiting. */
static RS__UNUSED void rs__uring_op_cancel(rs_event_loop_t *loop, rs__uring_op_t *op) {
    rs__uring_t *u = (rs__uring_t *)rs__backend_data(loop);
    rs__uring_op_stop_waiting(op);
    if (op->slot && !op->cancel_sent) {
        rs__uring_sqe_t *sqe = rs__uring_get_sqe(u);
        uint32_t index = op->slot - 1;
        if (sqe) {
            sqe->opcode = RS__IORING_OP_ASYNC_CANCEL;
            sqe->fd = -1;
            sqe->addr = rs__uring_op_token(u, op, index);
            sqe->user_data = rs__uring_token(RS__URING_KIND_IGNORE, 0, 0);
            rs__uring_publish(u);
            op->cancel_sent = true;
        }
    }
}

/* The final completion of the op in slot `index` (generation `generation`)
 * if it is already posted: reaped for this tick's dispatch, or still in the
 * completion queue. Left where it is; it is dropped as stale later. */
static bool rs__uring_find_final(const rs__uring_t *u, uint32_t index, uint32_t generation, uint64_t token,
                                 int32_t *res_out) {
    uint32_t head = *u->cq_head;
    uint32_t tail = rs__uring_load_acquire(u->cq_tail);
    size_t i;
    for (i = 0; i < u->ready_count; ++i) {
        const rs__uring_ready_t *r = &u->ready[i];
        if (r->is_op && r->slot == index && r->generation == generation && !(r->cqe_flags & RS__IORING_CQE_F_MORE)) {
            *res_out = r->res;
            return true;
        }
    }
    for (; head != tail; ++head) {
        const rs__uring_cqe_t *cqe = &u->cqes[head & u->cq_mask];
        if (cqe->user_data == token && !(cqe->flags & RS__IORING_CQE_F_MORE)) {
            *res_out = cqe->res;
            return true;
        }
    }
    return false;
}

/* End `op` now: when this returns the kernel no longer touches its memory or
 * its buffers, and its completions, posted or to come, are dropped (a buffer
 * one carries goes back to the ring). For a close: nothing is delivered, but
 * when the op had already ended (it ran when the queue was submitted, or
 * before the cancel found it), true is returned with the kernel's result in
 * *res_out, so that a send's bytes, already in the kernel, are not reported
 * as canceled. */
static bool rs__uring_op_abandon_with_result(rs_event_loop_t *loop, rs__uring_op_t *op, int32_t *res_out) {
    rs__uring_t *u = (rs__uring_t *)rs__backend_data(loop);
    uint32_t index;
    bool found = false;
    rs__uring_op_stop_waiting(op);
    if (!op->slot) {
        return false;
    }
    index = op->slot - 1;
    if (u->ring_fd >= 0) {
        rs__uring_sync_cancel_reg_t reg;
        uint64_t token = rs__uring_op_token(u, op, index);
        /* Submitted first: a queued SQE would otherwise run after the cancel
         * looked for it, on an fd the caller is about to close. */
        rs__uring_submit(u);
        memset(&reg, 0, sizeof(reg));
        reg.addr = token;
        reg.timeout.tv_sec = -1;
        reg.timeout.tv_nsec = -1;
        while (rs__uring_sys_register(u->ring_fd, RS__IORING_REGISTER_SYNC_CANCEL, &reg, 1) != 0 &&
               errno == EINTR) {
        }
        found = rs__uring_find_final(u, index, u->slots[index].generation, token, res_out);
    }
    rs__uring_slot_free(u, index);
    op->slot = 0;
    op->cancel_sent = false;
    return found;
}

static void rs__uring_op_abandon(rs_event_loop_t *loop, rs__uring_op_t *op) {
    int32_t ignored;
    (void)rs__uring_op_abandon_with_result(loop, op, &ignored);
}

/* Queue a received chunk or datagram (buffer `bid` of q's group, `len` bytes)
 * at the end of `q`. */
static RS__UNUSED void rs__uring_rxq_push(rs_event_loop_t *loop, rs__uring_rxq_t *q, uint32_t bid, uint32_t len) {
    rs__uring_t *u = (rs__uring_t *)rs__backend_data(loop);
    uint32_t *meta = u->pb[q->group].meta;
    meta[2 * bid] = 0;
    meta[2 * bid + 1] = len;
    if (q->tail) {
        meta[2 * (q->tail - 1)] = bid + 1;
    } else {
        q->head = bid + 1;
        q->head_off = 0;
    }
    q->tail = bid + 1;
    ++q->count;
    if (!q->holding) {
        q->holding = true;
        rs_list_push_back(&u->holders, &q->holder_node);
    }
}

static void rs__uring_rxq_pop(rs__uring_t *u, rs__uring_rxq_t *q) {
    rs__uring_pbuf_t *pb = &u->pb[q->group];
    uint32_t bid = q->head - 1;
    q->head = pb->meta[2 * bid];
    q->head_off = 0;
    if (!q->head) {
        q->tail = 0;
    }
    --q->count;
    if (!q->count && q->holding) {
        q->holding = false;
        rs_list_remove(&q->holder_node);
    }
    rs__uring_buf_put(pb, bid);
}

/* Whether `q` has nothing to read. */
static RS__UNUSED bool rs__uring_rxq_is_empty(const rs__uring_rxq_t *q) {
    return !q->count && q->spill_off == q->spill_len;
}

/* What `q` holds, in buffers' worth (datagrams, for a datagram queue): the
 * measure of a socket's receive cap. */
static RS__UNUSED size_t rs__uring_rxq_units(const rs__uring_rxq_t *q) {
    if (q->group == RS__URING_GROUP_DGRAM) {
        return q->count + q->spill_count;
    }
    return q->count + (q->spill_len - q->spill_off + RS__URING_BUF_SIZE - 1) / RS__URING_BUF_SIZE;
}

static void rs__uring_rxq_free_spill(rs_event_loop_t *loop, rs__uring_rxq_t *q) {
    rs_mem_free(&loop->allocator, q->spill);
    q->spill = NULL;
    q->spill_len = 0;
    q->spill_off = 0;
    q->spill_count = 0;
}

/* Move what `q` holds in the ring to its own memory, giving the buffers back
 * (a datagram queue keeps each datagram as a record: its length, then the
 * buffer as received). false when that memory cannot be had: the buffers
 * stay where they are. */
static bool rs__uring_rxq_spill(rs_event_loop_t *loop, rs__uring_t *u, rs__uring_rxq_t *q) {
    const rs__uring_pbuf_t *pb = &u->pb[q->group];
    bool records = q->group == RS__URING_GROUP_DGRAM;
    size_t kept = q->spill_len - q->spill_off;
    size_t need = kept;
    uint32_t id;
    unsigned char *block;
    for (id = q->head; id; id = pb->meta[2 * (id - 1)]) {
        need += pb->meta[2 * (id - 1) + 1] + (records ? sizeof(uint32_t) : 0);
    }
    need -= q->head_off;
    block = (unsigned char *)rs_mem_alloc(&loop->allocator, need);
    if (!block) {
        return false;
    }
    if (kept) {
        memcpy(block, q->spill + q->spill_off, kept);
    }
    {
        size_t count = q->spill_count;
        rs__uring_rxq_free_spill(loop, q);
        q->spill_count = count;
    }
    q->spill = block;
    q->spill_len = kept;
    while (q->head) {
        uint32_t bid = q->head - 1;
        uint32_t left = pb->meta[2 * bid + 1] - q->head_off;
        if (records) {
            memcpy(block + q->spill_len, &left, sizeof(left));
            q->spill_len += sizeof(left);
            ++q->spill_count;
        }
        memcpy(block + q->spill_len, rs__uring_buf_at(pb, bid) + q->head_off, left);
        q->spill_len += left;
        rs__uring_rxq_pop(u, q);
    }
    return true;
}

/* While recvs starve: a receive queue whose reader did not read it since the
 * last pass gives its buffers back (moved to its own memory), so that readers
 * that do not read cannot stop every other socket of the loop from receiving
 * (with readiness, what nobody reads waits in each socket's kernel buffer).
 * Runs every millisecond while recvs starve. */
static void rs__uring_reclaim_task(rs_task_t *task, void *arg, rs_task_status_t status) {
    rs__uring_t *u = (rs__uring_t *)arg;
    rs_event_loop_t *loop = u->loop;
    rs_list_node_t *node;
    uint32_t g;
    (void)task;
    if (status != RS_TASK_STATUS_RUN || !rs__uring_any_starved(u)) {
        return;
    }
    node = rs_list_begin(&u->holders);
    while (node != rs_list_end(&u->holders)) {
        rs__uring_rxq_t *q = RS_CONTAINER_OF(node, rs__uring_rxq_t, holder_node);
        node = node->next; /* a spill takes q off the list */
        if (!q->unread_mark) {
            q->unread_mark = true;
        } else if (!rs__uring_rxq_spill(loop, u, q)) {
            RS__LOG_DEBUG(RS_LS_EVENT_LOOP, "io_uring: no memory to move held data out of the buffer ring");
        }
    }
    for (g = 0; g < RS__URING_GROUPS; ++g) {
        rs__uring_feed_starved(u, &u->pb[g]);
    }
    if (rs__uring_any_starved(u)) {
        rs_event_loop_schedule_task_future(loop, &u->reclaim_task, rs_event_loop_now_ns(loop) + RS_NS_PER_MS);
    }
}

/* Copy up to `max` queued bytes to `dst`, giving back each chunk read whole.
 * A stream queue's. */
static RS__UNUSED size_t rs__uring_rxq_copy(rs_event_loop_t *loop, rs__uring_rxq_t *q, unsigned char *dst, size_t max) {
    rs__uring_t *u = (rs__uring_t *)rs__backend_data(loop);
    rs__uring_pbuf_t *pb = &u->pb[q->group];
    size_t done = 0;
    bool returned = false;
    q->unread_mark = false;
    if (q->spill_off < q->spill_len) {
        size_t left = q->spill_len - q->spill_off;
        done = left < max ? left : max;
        memcpy(dst, q->spill + q->spill_off, done);
        q->spill_off += done;
        if (q->spill_off == q->spill_len) {
            rs__uring_rxq_free_spill(loop, q);
        }
    }
    while (q->head && done < max) {
        uint32_t bid = q->head - 1;
        size_t left = pb->meta[2 * bid + 1] - q->head_off;
        size_t take = left < max - done ? left : max - done;
        memcpy(dst + done, rs__uring_buf_at(pb, bid) + q->head_off, take);
        done += take;
        q->head_off += (uint32_t)take;
        if (take == left) {
            rs__uring_rxq_pop(u, q);
            returned = true;
        }
    }
    if (returned) {
        rs__uring_feed_starved(u, pb);
    }
    return done;
}

/* The datagram at the front of datagram queue `q`, as the kernel filled its
 * buffer (*len bytes at *data), without taking it off; false when `q` is
 * empty. Valid until the queue changes. */
static RS__UNUSED bool rs__uring_rxq_front(rs_event_loop_t *loop, const rs__uring_rxq_t *q, const unsigned char **data,
                                size_t *len) {
    const rs__uring_pbuf_t *pb = &((const rs__uring_t *)rs__backend_data(loop))->pb[q->group];
    if (q->spill_off < q->spill_len) {
        uint32_t n;
        memcpy(&n, q->spill + q->spill_off, sizeof(n));
        *data = q->spill + q->spill_off + sizeof(n);
        *len = n;
        return true;
    }
    if (!q->head) {
        return false;
    }
    *data = rs__uring_buf_at(pb, q->head - 1);
    *len = pb->meta[2 * (q->head - 1) + 1];
    return true;
}

/* Take the front datagram off `q` (there is one), giving its buffer back. */
static RS__UNUSED void rs__uring_rxq_pop_front(rs_event_loop_t *loop, rs__uring_rxq_t *q) {
    rs__uring_t *u = (rs__uring_t *)rs__backend_data(loop);
    q->unread_mark = false;
    if (q->spill_off < q->spill_len) {
        uint32_t n;
        memcpy(&n, q->spill + q->spill_off, sizeof(n));
        q->spill_off += sizeof(n) + n;
        --q->spill_count;
        if (q->spill_off == q->spill_len) {
            rs__uring_rxq_free_spill(loop, q);
        }
        return;
    }
    rs__uring_rxq_pop(u, q);
    rs__uring_feed_starved(u, &u->pb[q->group]);
}

/* Give every queued buffer back (the socket is closing). */
static RS__UNUSED void rs__uring_rxq_clear(rs_event_loop_t *loop, rs__uring_rxq_t *q) {
    rs__uring_t *u = (rs__uring_t *)rs__backend_data(loop);
    rs__uring_rxq_free_spill(loop, q);
    if (!q->head) {
        return;
    }
    while (q->head) {
        rs__uring_rxq_pop(u, q);
    }
    rs__uring_feed_starved(u, &u->pb[q->group]);
}

/* A completion its op will never see (it was abandoned): its buffer goes
 * back, and a connection accepted for a listener now closed is closed. */
static void rs__uring_drop_completion(rs__uring_t *u, bool yields_fd, uint8_t group, int32_t res,
                                      uint32_t cqe_flags) {
    if (yields_fd && res >= 0) {
        close(res);
    }
    if (cqe_flags & RS__IORING_CQE_F_BUFFER) {
        rs__uring_pbuf_t *pb = &u->pb[group];
        --pb->free;
        rs__uring_buf_put(pb, cqe_flags >> RS__IORING_CQE_BUFFER_SHIFT);
        rs__uring_feed_starved(u, pb);
    }
}

/* Make group `g`'s ring (`count` buffers of `size` bytes at `bufs`) and
 * register it with the kernel. RS_ENOMEM for memory; RS_ENOTSUP when the
 * kernel refuses it. */
static int rs__uring_pbuf_register(rs__uring_t *u, uint32_t g, unsigned char *bufs, bool mapped, uint32_t count,
                                   uint32_t size) {
    rs__uring_pbuf_t *pb = &u->pb[g];
    rs__uring_buf_reg_t reg;
    void *ring;
    uint32_t i;
    ring = mmap(NULL, count * sizeof(rs__uring_buf_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ring == MAP_FAILED) {
        return RS_ENOMEM;
    }
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)ring;
    reg.ring_entries = count;
    reg.bgid = (uint16_t)g;
    if (rs__uring_sys_register(u->ring_fd, RS__IORING_REGISTER_PBUF_RING, &reg, 1) != 0) {
        RS__LOG_INFO(RS_LS_EVENT_LOOP, "io_uring: no provided-buffer ring (%s)", strerror(errno));
        munmap(ring, count * sizeof(rs__uring_buf_t));
        return RS_ENOTSUP;
    }
    pb->ring = (rs__uring_buf_t *)ring;
    pb->bgid = (uint16_t)g;
    pb->count = count;
    pb->size = size;
    pb->bufs = bufs;
    pb->bufs_mapped = mapped;
    for (i = 0; i < count; ++i) {
        rs__uring_buf_put(pb, i);
    }
    return RS_OK;
}

/* The datagram group, on first use. The buffers are mapped, not allocated
 * (see RS__URING_DGRAM_BUF_SIZE). RS_ENOMEM, or RS_ENOTSUP (the kernel's
 * refusal): datagram sockets then stay readiness-based. */
static int rs__uring_make_dgram_group(rs_event_loop_t *loop, rs__uring_t *u) {
    rs__uring_pbuf_t *pb = &u->pb[RS__URING_GROUP_DGRAM];
    size_t bytes = (size_t)RS__URING_DGRAM_BUF_COUNT * RS__URING_DGRAM_BUF_SIZE;
    void *bufs;
    int err;
    pb->meta = (uint32_t *)rs_mem_calloc(&loop->allocator, 2 * RS__URING_DGRAM_BUF_COUNT, sizeof(uint32_t));
    bufs = pb->meta ? mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
    err = bufs == MAP_FAILED ? RS_ENOMEM
                             : rs__uring_pbuf_register(u, RS__URING_GROUP_DGRAM, (unsigned char *)bufs, true,
                                                       RS__URING_DGRAM_BUF_COUNT, RS__URING_DGRAM_BUF_SIZE);
    if (err) {
        RS__LOG_WARN(RS_LS_EVENT_LOOP, "io_uring: no datagram buffers (%s); datagram sockets stay readiness-based",
                     rs_strerror(err));
        if (bufs != MAP_FAILED) {
            munmap(bufs, bytes);
        }
        rs_mem_free(&loop->allocator, pb->meta);
        pb->meta = NULL;
    }
    return err;
}

/* Register the stream group and check for synchronous cancel (6.0, which
 * also brought multishot recv): without both, sockets on this loop stay
 * readiness-based. RS_ENOMEM only for the heap; the kernel's refusals turn
 * the feature off. */
static int rs__uring_enable_ops(rs_event_loop_t *loop, rs__uring_t *u) {
    static const uint8_t needed[] = {RS__IORING_OP_RECV, RS__IORING_OP_RECVMSG, RS__IORING_OP_SENDMSG,
                                     RS__IORING_OP_ASYNC_CANCEL};
    rs__uring_pbuf_t *pb = &u->pb[RS__URING_GROUP_STREAM];
    rs__uring_sync_cancel_reg_t cancel;
    unsigned char *bufs;
    int err;
    if (!rs__uring_probe_ops(u->ring_fd, needed, sizeof(needed))) {
        return RS_OK;
    }
    memset(&cancel, 0, sizeof(cancel));
    cancel.addr = rs__uring_token(RS__URING_KIND_IGNORE, 0, 0xffffffffu);
    if (rs__uring_sys_register(u->ring_fd, RS__IORING_REGISTER_SYNC_CANCEL, &cancel, 1) == 0 || errno != ENOENT) {
        RS__LOG_INFO(RS_LS_EVENT_LOOP, "io_uring: no synchronous cancel; sockets stay readiness-based");
        return RS_OK;
    }
    bufs = (unsigned char *)rs_mem_alloc(&loop->allocator, (size_t)RS__URING_BUF_COUNT * RS__URING_BUF_SIZE);
    pb->meta = (uint32_t *)rs_mem_calloc(&loop->allocator, 2 * RS__URING_BUF_COUNT, sizeof(uint32_t));
    err = bufs && pb->meta ? rs__uring_pbuf_register(u, RS__URING_GROUP_STREAM, bufs, false, RS__URING_BUF_COUNT,
                                                     RS__URING_BUF_SIZE)
                           : RS_ENOMEM;
    if (err) {
        rs_mem_free(&loop->allocator, bufs);
        rs_mem_free(&loop->allocator, pb->meta);
        pb->meta = NULL;
        if (err == RS_ENOTSUP) {
            RS__LOG_INFO(RS_LS_EVENT_LOOP, "io_uring: sockets stay readiness-based");
            return RS_OK;
        }
        return err;
    }
    u->ops_enabled = true;
    return RS_OK;
}

static void rs__uring_free_ops(rs_event_loop_t *loop, rs__uring_t *u) {
    uint32_t g;
    for (g = 0; g < RS__URING_GROUPS; ++g) {
        rs__uring_pbuf_t *pb = &u->pb[g];
        if (pb->ring) {
            munmap(pb->ring, pb->count * sizeof(rs__uring_buf_t));
            if (pb->bufs_mapped) {
                munmap(pb->bufs, (size_t)pb->count * pb->size);
            } else {
                rs_mem_free(&loop->allocator, pb->bufs);
            }
        }
        rs_mem_free(&loop->allocator, pb->meta);
        pb->ring = NULL;
        pb->bufs = NULL;
        pb->meta = NULL;
    }
    u->ops_enabled = false;
}

static void rs__uring_cleanup(rs_event_loop_t *loop) {
    rs__uring_t *u = (rs__uring_t *)rs__backend_data(loop);
    rs__uring_close_ring(u); /* the kernel cancels whatever is still in flight */
    rs__uring_free_ops(loop, u);
    close(u->wake_fd);
    rs__fd_owners_cleanup(&loop->allocator, &u->owners);
    rs_mem_free(&loop->allocator, u->slots);
    rs_mem_free(&loop->allocator, u->ready);
    rs_mem_free(&loop->allocator, u);
    loop->backend_data = NULL;
}

static int rs__uring_init(rs_event_loop_t *loop) {
    int err;
    rs__uring_t *u = (rs__uring_t *)rs_mem_calloc(&loop->allocator, 1, sizeof(rs__uring_t));
    if (!u) {
        return RS_ENOMEM;
    }
    u->ring_fd = -1;
    u->loop = loop;
    rs_list_init(&u->pb[RS__URING_GROUP_STREAM].starved);
    rs_list_init(&u->pb[RS__URING_GROUP_DGRAM].starved);
    rs_list_init(&u->lost);
    rs_list_init(&u->holders);
    rs_task_init(&u->reclaim_task, rs__uring_reclaim_task, u, "io_uring_reclaim");
    /* Blocking: the ring's read of an O_NONBLOCK eventfd would complete at
     * once with -EAGAIN instead of waiting for a wake. */
    u->wake_fd = eventfd(0, EFD_CLOEXEC);
    if (u->wake_fd < 0) {
        err = rs_result_from_errno(errno);
        rs_mem_free(&loop->allocator, u);
        return err;
    }
    err = rs__uring_open(u, !rs__uring_test_readiness_sockets);
    if (!err && !rs__uring_test_readiness_sockets && !(u->setup_flags & RS__IORING_SETUP_SINGLE_ISSUER)) {
        err = rs__uring_enable_ops(loop, u);
    }
    if (!err) {
        u->ready_capacity = u->cq_entries;
        u->ready = (rs__uring_ready_t *)rs_mem_calloc(&loop->allocator, u->ready_capacity, sizeof(*u->ready));
        err = u->ready ? rs__uring_arm_wake(u) : RS_ENOMEM;
    }
    loop->backend_data = u;
    if (err) {
        rs__uring_cleanup(loop);
    }
    return err;
}

/* SINGLE_ISSUER: the loop now runs on another thread than the ring's. Make a
 * new ring here and arm every armed poll and the wakeup read again on it;
 * closing the old one cancels what it had in flight. */
static int rs__uring_move_to_this_thread(rs__uring_t *u) {
    uint32_t i;
    int err;
    rs__uring_close_ring(u);
    err = rs__uring_open(u, false);
    if (err) {
        RS__LOG_ERROR(RS_LS_EVENT_LOOP, "io_uring: cannot remake the ring on this thread: %s", rs_strerror(err));
        return err;
    }
    u->ready_count = 0;
    err = rs__uring_arm_wake(u);
    for (i = 0; i < u->slot_capacity && !err; ++i) {
        rs__uring_slot_t *slot = &u->slots[i];
        if (slot->reg && slot->armed) {
            slot->generation = (slot->generation + 1) & RS__URING_GEN_MASK;
            err = rs__uring_arm_poll(u, i, slot->reg->backend_events ? slot->reg->backend_events : slot->reg->events);
        }
    }
    return err;
}

static bool rs__uring_is_submitter(const rs__uring_t *u) {
    return u->ring_fd >= 0 &&
           (!(u->setup_flags & RS__IORING_SETUP_SINGLE_ISSUER) || u->submitter == rs_thread_current_id());
}

/* Before entering the ring: on the thread the ring accepts. */
static bool rs__uring_on_submitter(rs__uring_t *u) {
    return rs__uring_is_submitter(u) || rs__uring_move_to_this_thread(u) == RS_OK;
}

/* Every armed poll again, with new generations: after the kernel dropped
 * completions (-EBADR), any of them may have been a poll's only report. */
static void rs__uring_rearm_all(rs__uring_t *u) {
    uint32_t i;
    for (i = 0; i < u->slot_capacity; ++i) {
        rs__uring_slot_t *slot = &u->slots[i];
        if (slot->reg && slot->armed) {
            rs__uring_disarm(u, i);
            rs__uring_arm_poll(u, i, slot->reg->backend_events ? slot->reg->backend_events : slot->reg->events);
        }
    }
    rs__uring_arm_wake(u);
}

/* Take completions off the ring into the ready list (as many as it holds). */
static void rs__uring_reap(rs__uring_t *u) {
    uint32_t head = *u->cq_head;
    uint32_t tail = rs__uring_load_acquire(u->cq_tail);
    while (head != tail && u->ready_count < u->ready_capacity) {
        const rs__uring_cqe_t *cqe = &u->cqes[head & u->cq_mask];
        unsigned kind = (unsigned)(cqe->user_data >> 56);
        ++head;
        if (kind == RS__URING_KIND_WAKE) {
            rs__uring_arm_wake(u); /* the eventfd is reset by the read: take the next wake */
        } else if (kind == RS__URING_KIND_POLL) {
            uint32_t index = (uint32_t)cqe->user_data;
            uint32_t generation = (uint32_t)(cqe->user_data >> 32) & RS__URING_GEN_MASK;
            rs__uring_ready_t *r;
            if (index >= u->slot_capacity || !u->slots[index].reg || u->slots[index].generation != generation) {
                continue; /* canceled, or its registration is gone */
            }
            u->slots[index].armed = false;
            r = &u->ready[u->ready_count++];
            r->slot = index;
            r->generation = generation;
            r->events = cqe->res >= 0 ? rs__uring_ready_events(cqe->res) : RS_IO_ERROR;
            r->error = cqe->res >= 0 ? RS_OK : rs_result_from_errno(-cqe->res);
            r->is_op = false;
        } else if (kind == RS__URING_KIND_OP || kind == RS__URING_KIND_OP_FD || kind == RS__URING_KIND_OP_DGRAM) {
            uint32_t index = (uint32_t)cqe->user_data;
            uint32_t generation = (uint32_t)(cqe->user_data >> 32) & RS__URING_GEN_MASK;
            uint8_t group = kind == RS__URING_KIND_OP_DGRAM ? RS__URING_GROUP_DGRAM : RS__URING_GROUP_STREAM;
            rs__uring_ready_t *r;
            if (index >= u->slot_capacity || !u->slots[index].op || u->slots[index].generation != generation) {
                rs__uring_drop_completion(u, kind == RS__URING_KIND_OP_FD, group, cqe->res, cqe->flags);
                continue;
            }
            r = &u->ready[u->ready_count++];
            r->slot = index;
            r->generation = generation;
            r->res = cqe->res;
            r->cqe_flags = cqe->flags;
            r->is_op = true;
            r->yields_fd = kind == RS__URING_KIND_OP_FD;
            r->group = group;
        }
    }
    rs__uring_store_release(u->cq_head, head);
}

static void rs__uring_wait(rs_event_loop_t *loop, int timeout_ms) {
    rs__uring_t *u = (rs__uring_t *)rs__backend_data(loop);
    rs__uring_getevents_arg_t arg;
    rs__uring_timespec_t ts;
    uint64_t deadline_ns;
    unsigned to_submit;
    unsigned min_complete = timeout_ms == 0 ? 0 : 1;
    int n;
    u->ready_count = 0;
    if (!rs__uring_on_submitter(u)) {
        /* No ring on this thread (logged): the loop runs its tasks and tries
         * again, without spinning. */
        poll(NULL, 0, timeout_ms < 0 || timeout_ms > RS__LOST_WAKE_POLL_MS ? RS__LOST_WAKE_POLL_MS : timeout_ms);
        return;
    }
    if (u->lost_completions) {
        u->lost_completions = false;
        rs__uring_rearm_all(u);
    }
    /* Completions already posted (or overflowed) are taken without waiting. */
    if (rs__uring_load_acquire(u->sq_flags) & RS__IORING_SQ_CQ_OVERFLOW) {
        ++u->cq_overflow_count;
        min_complete = 0;
    } else if (*u->cq_head != rs__uring_load_acquire(u->cq_tail)) {
        min_complete = 0;
    }
    deadline_ns = rs__wait_deadline_ns(timeout_ms);
    for (;;) {
        memset(&arg, 0, sizeof(arg));
        arg.sigmask_sz = _NSIG / 8;
        if (timeout_ms >= 0) {
            ts.tv_sec = timeout_ms / 1000;
            ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000LL;
            arg.ts = (uint64_t)(uintptr_t)&ts;
        }
        to_submit = u->sq_local_tail - rs__uring_load_acquire(u->sq_head);
        n = rs__uring_sys_enter(u->ring_fd, to_submit, min_complete,
                                RS__IORING_ENTER_GETEVENTS | RS__IORING_ENTER_EXT_ARG, &arg, sizeof(arg));
        if (n >= 0 || errno != EINTR) {
            break;
        }
        timeout_ms = rs__wait_left_ms(deadline_ns, timeout_ms);
    }
    if (rs__uring_test_fake_ebadr) {
        rs__uring_test_fake_ebadr = false;
        n = -1;
        errno = EBADR;
    }
    if (n < 0 && errno != ETIME && errno != EAGAIN && errno != EBUSY) {
        if (errno == EBADR) {
            RS__LOG_ERROR(RS_LS_EVENT_LOOP, "io_uring dropped completions (CQ overflow): re-arming every poll%s",
                          u->ops_enabled ? ", ending every operation in flight with EIO" : "");
            u->lost_completions = true;
            u->lost_op_completions = u->ops_enabled;
        } else {
            RS__LOG_ERROR(RS_LS_EVENT_LOOP, "io_uring_enter failed: %s (errno %d)", strerror(errno), errno);
        }
    }
    /* EBUSY (older kernels, overflowed CQ): what is posted is taken now, the
     * rest on the next tick. */
    rs__uring_reap(u);
}

/* An op's completion: final unless IORING_CQE_F_MORE, and then the op is
 * idle before its callback runs, so that the callback may start it again. */
static void rs__uring_dispatch_op(rs_event_loop_t *loop, rs__uring_t *u, const rs__uring_ready_t *r) {
    rs__uring_slot_t *slot = &u->slots[r->slot];
    rs__uring_op_t *op = slot->op;
    if (!op || slot->generation != r->generation) {
        /* abandoned by an earlier callback of this batch */
        rs__uring_drop_completion(u, r->yields_fd, r->group, r->res, r->cqe_flags);
        return;
    }
    if (!(r->cqe_flags & RS__IORING_CQE_F_MORE)) {
        rs__uring_slot_free(u, r->slot);
        op->slot = 0;
        op->cancel_sent = false;
    }
    if (r->cqe_flags & RS__IORING_CQE_F_BUFFER) {
        --u->pb[r->group].free;
    }
    rs__trace(RS_TRACE_IO_DISPATCH, loop, op, "io_op", 0, 0);
    op->fn(loop, op, r->res, r->cqe_flags);
}

/* After -EBADR any op in flight may have lost a completion: a received
 * chunk, a send's byte count, an accepted fd. None can be trusted to go on
 * (a stream with a gap, writes that never complete), so each ends now, once,
 * with -EIO: its socket reports RS_EIO instead of hanging or reading past a
 * gap. What the kernel still posts for them is dropped as stale. Ops started
 * by these callbacks are new and unaffected; one abandoned by a callback
 * (its socket closed) leaves the list unannounced. */
static void rs__uring_fail_ops(rs_event_loop_t *loop, rs__uring_t *u) {
    rs_list_node_t *node;
    uint32_t i;
    for (i = 0; i < u->slot_capacity; ++i) {
        rs__uring_op_t *op = u->slots[i].op;
        if (op && op->slot == i + 1) {
            rs__uring_op_abandon(loop, op);
            op->lost = true;
            rs_list_push_back(&u->lost, &op->starved_node);
        }
    }
    while ((node = rs_list_pop_front(&u->lost)) != NULL) {
        rs__uring_op_t *op = RS_CONTAINER_OF(node, rs__uring_op_t, starved_node);
        op->lost = false;
        rs__trace(RS_TRACE_IO_DISPATCH, loop, op, "io_op", 0, 0);
        op->fn(loop, op, -EIO, 0);
    }
}

static void rs__uring_dispatch(rs_event_loop_t *loop) {
    rs__uring_t *u = (rs__uring_t *)rs__backend_data(loop);
    size_t i;
    for (i = 0; i < u->ready_count; ++i) {
        const rs__uring_ready_t *r = &u->ready[i];
        rs__uring_slot_t *slot = &u->slots[r->slot];
        rs__io_registration_t *reg;
        if (r->is_op) {
            rs__uring_dispatch_op(loop, u, r);
            continue;
        }
        if (!slot->reg || slot->generation != r->generation) {
            continue; /* removed by an earlier callback of this batch */
        }
        reg = slot->reg;
        if (r->error) {
            reg->error = r->error;
        }
        rs__registration_dispatch(loop, reg, r->events);
        slot = &u->slots[r->slot]; /* the callback may have grown the slot table */
        /* Level-triggered: poll again for what is wanted now; still ready,
         * it is reported on the next tick. */
        if (slot->reg == reg && slot->generation == r->generation && !slot->armed && reg->subscribed &&
            reg->backend_events) {
            rs__uring_arm_poll(u, r->slot, reg->backend_events);
        }
    }
    u->ready_count = 0;
    if (u->lost_op_completions) {
        u->lost_op_completions = false;
        rs__uring_fail_ops(loop, u);
    }
}

static int rs__uring_add(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    rs__uring_t *u = (rs__uring_t *)rs__backend_data(loop);
    uint32_t index;
    int err;
    /* A poll of a bad fd fails only once submitted: a direct subscribe, which
     * has a caller to tell, checks the fd first (deferred ones hear of it as
     * RS_IO_ERROR, as on the other backends). */
    if (!loop->applying_deferred_interest && fcntl(reg->fd, F_GETFD) < 0) {
        return rs_result_from_errno(errno);
    }
    err = rs__fd_owners_claim(&loop->allocator, &u->owners, reg);
    if (err) {
        return err;
    }
    err = rs__uring_slot_new(loop, u, reg, &index);
    if (!err) {
        err = rs__uring_arm_poll(u, index, reg->events);
        if (err) {
            rs__uring_slot_free(u, index);
        }
    }
    if (err) {
        rs__fd_owners_release(&u->owners, reg);
    }
    return err;
}

static int rs__uring_modify(rs_event_loop_t *loop, rs__io_registration_t *reg, int events) {
    rs__uring_t *u = (rs__uring_t *)rs__backend_data(loop);
    uint32_t index = (uint32_t)reg->slot;
    rs__uring_disarm(u, index);
    return rs__uring_arm_poll(u, index, events);
}

static void rs__uring_remove(rs_event_loop_t *loop, rs__io_registration_t *reg) {
    rs__uring_t *u = (rs__uring_t *)rs__backend_data(loop);
    uint32_t index = (uint32_t)reg->slot;
    bool armed = u->slots[index].armed;
    rs__uring_slot_free(u, index);
    rs__fd_owners_release(&u->owners, reg);
    /* An armed poll holds a reference to the file: a socket the caller closes
     * right after would stay open (no FIN, a listener still accepting) until
     * the cancel has run. So it runs now, task work included (with
     * DEFER_TASKRUN the canceled poll is only freed then). On another thread
     * than the ring's (a destroy after the loop thread ended) the ring is
     * remade, or closed, before anything else: that drops it too. */
    if (armed && rs__uring_is_submitter(u)) {
        rs__uring_submit_and_run(u);
    }
}

static bool rs__uring_wake(rs_event_loop_t *loop) {
    rs__uring_t *u = (rs__uring_t *)rs__backend_data(loop);
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the loop will wake anyway. */
    return write(u->wake_fd, &one, sizeof(one)) == (ssize_t)sizeof(one) || errno == EAGAIN;
}

static int rs__uring_get_fd(const rs_event_loop_t *loop, int *fd_out) {
    const rs__uring_t *u = (const rs__uring_t *)rs__backend_data(loop);
    *fd_out = u->ring_fd;
    return RS_OK;
}

/* Whether this kernel and process can run the backend, probed once with a
 * throwaway ring (0: not probed yet, 1: yes, 2: no). */
static int rs__uring_availability;

static bool rs__uring_available(void) {
    int known = rs__atomic_load_int(&rs__uring_availability);
    if (!known || rs__uring_test_setup_errno) {
        rs__uring_t probe;
        memset(&probe, 0, sizeof(probe));
        probe.ring_fd = -1;
        known = rs__uring_open(&probe, false) == RS_OK ? 1 : 2;
        rs__uring_close_ring(&probe);
        if (!rs__uring_test_setup_errno) {
            rs__atomic_store_int(&rs__uring_availability, known);
        }
    }
    return known == 1;
}

static const rs__backend_vtable_t rs__uring_vtable = {
    RS_EVENT_LOOP_BACKEND_IO_URING, rs__uring_init,   rs__uring_cleanup, rs__uring_wait,
    rs__uring_dispatch,             rs__uring_add,    rs__uring_modify,  rs__uring_remove,
    rs__uring_wake,                 rs__uring_get_fd, NULL, true, /* changes ride on the next wait's io_uring_enter */
};

#endif /* RESEAU_OS_LINUX */
