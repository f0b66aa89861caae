/*
 * What the two socket implementations share: the POSIX readiness sockets
 * (>>socket_posix.c, >>udp_posix.c) and the Winsock completion sockets
 * (>>socket_win.c) keep the same state machine, argument checks, connect and
 * close paths and write-request cache, so that part is written once, in
 * >>socket_core.c. Each platform defines struct rs_socket with at least the
 * fields the core reads (loop, state, callback_depth, the connect, accept,
 * read and write fields) and the small OS hooks declared at the end.
 */

typedef enum rs__socket_state {
    RS__SOCK_INIT = 0,
    RS__SOCK_BOUND,
    RS__SOCK_LISTENING,
    RS__SOCK_CONNECTING,
    RS__SOCK_CONNECTED,
    RS__SOCK_CLOSED
} rs__socket_state_t;

/* Finished write requests kept for reuse, so steady-state writing does not allocate. */
#define RS__WRITE_REQ_CACHE 32
/* Accept back-off while out of sockets or memory: starts here, doubles, stops growing at the max. */
#define RS__ACCEPT_BACKOFF_MIN_MS 10
#define RS__ACCEPT_BACKOFF_MAX_MS 1000

typedef struct rs__write_req rs__write_req_t;

/* ---- in >>socket_core.c ---- */
static int rs__socket_check_thread(const rs_socket_t *s, const char *function);
static int rs__socket_check_call(const rs_socket_t *s, const void *required, const char *function);
static bool rs__socket_domain_pending(const rs_socket_t *s);
static int rs__socket_fd_state(const rs_socket_t *s);
static int rs__socket_check_dgram(const rs_socket_t *s, const char *function);
static void rs__socket_member_detach(rs_list_node_t *member);
static void rs__socket_close_now(rs_socket_t *s);
static void rs__socket_maybe_free(rs_socket_t *s);
static int rs__socket_close_listener_from_afar(rs_socket_t *s, bool destroy);
static void rs__socket_deliver_accept(rs_socket_t *l, int error, rs_socket_t *new_socket);
static void rs__socket_deliver_connect(rs_socket_t *s, int error);
static void rs__socket_connect_done_task(rs_task_t *task, void *arg, rs_task_status_t status);
static void rs__socket_connect_timeout_task(rs_task_t *task, void *arg, rs_task_status_t status);
static void rs__socket_connect_later(rs_socket_t *s, int result);
static void rs__socket_skip_connect_timer(rs_socket_t *socket);
static bool rs__socket_can_read(const rs_socket_t *s);
static void rs__bufs_credit(rs_byte_buf_t *bufs, size_t count, size_t n);
static rs__write_req_t *rs__socket_take_req(rs_socket_t *s);
static void rs__socket_recycle_req(rs_socket_t *s, rs__write_req_t *req);
static void rs__socket_shutdown_write_now(rs_socket_t *s);
static int rs__dgram_check_recv(const rs_socket_t *s, bool valid, const char *function);
static int rs__dgram_take_deferred_error(rs_socket_t *s);

/* ---- each platform's hooks, defined before >>socket_core.c ---- */
/* The OS socket is open (an fd, or a SOCKET). */
static bool rs__socket_has_handle(const rs_socket_t *s);
/* The kernel still owns memory inside the socket (Windows: an OVERLAPPED);
 * it is freed only once this is false. */
static bool rs__socket_ops_pending(const rs_socket_t *s);
/* A send is in the kernel's hands: a write shutdown waits for it. */
static bool rs__socket_send_in_flight(const rs_socket_t *s);
/* Make the OS socket for s's (now known) family and type. */
static int rs__socket_open_handle(rs_socket_t *s);
/* bind, listen and shutdown on the OS socket, with the OS error mapped. */
static int rs__socket_os_bind(rs_socket_t *s, const rs_endpoint_t *local);
static int rs__socket_os_listen(rs_socket_t *s, int backlog);
static int rs__socket_os_shutdown(rs_socket_t *s, rs_socket_dir_t dir);
/* Close the OS socket, end what is in flight; keep_connect leaves on_connect
 * to the caller (a timeout delivers its own RS_ETIMEDOUT). */
static void rs__socket_close_internal(rs_socket_t *s, bool keep_connect);
static rs_socket_t *rs__socket_alloc(const rs_allocator_t *allocator, const rs_socket_options_t *options, int *err_out);
static void rs__socket_free(rs_socket_t *s);
static int rs__socket_take_family(rs_socket_t *s, const rs_endpoint_t *endpoint);
static int rs__socket_set_reading(rs_socket_t *s, bool reading, const char *function);
static int rs__dgram_send_one(rs_socket_t *s, const rs_endpoint_t *destination, const void *data, size_t len);
static int rs__dgram_recv_one(rs_socket_t *s, rs_datagram_t *d);
