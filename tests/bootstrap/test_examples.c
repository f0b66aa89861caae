/*
 * The four newcomer examples (issue 10), each run as a child process on
 * 127.0.0.1 / localhost and driven over real sockets: tcp_echo, chat,
 * udp_echo and client_by_name. Servers are started with port 0 and say
 * which port they took; each test stops its child with SIGINT (Windows:
 * Ctrl+C, through the test's own console, see rs_test_console_open) and
 * expects a clean exit. On Windows one more test stops tcp_echo with
 * Ctrl+Break, and skips, saying so, where that event cannot be generated
 * (Wine 8). Every wait is bounded (IO_TIMEOUT_MS per read or write,
 * STOP_TIMEOUT_MS for an exit); a child that overstays is killed.
 */
#include "test_util.h" /* first: reseau.h defines _GNU_SOURCE */
#if !defined(_WIN32)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#endif

#if !defined(TCP_ECHO_PATH) || !defined(CHAT_PATH) || !defined(UDP_ECHO_PATH) || !defined(CLIENT_BY_NAME_PATH)
#error "the examples' paths must be defined by the build"
#endif

#define IO_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS 10000

/* ---------------------------------------------------------------- children */

/* Start a server example with port 0; returns the child and sets *port
 * from its "listening on 127.0.0.1:PORT" line. */
static rs_test_child_t start_server(const char *path, uint16_t *port) {
    char *argv[] = {(char *)path, "0", NULL}, line[256];
    rs_test_pipe_t out;
    rs_test_child_t child = rs_test_spawn(argv, false, &out);
    assert_true(child != RS_TEST_NO_CHILD);
    rs_test_read_until(out, line, sizeof line, "\n", IO_TIMEOUT_MS);
    rs_test_pipe_close(out);
    const char *colon = strrchr(line, ':');
    *port = colon ? (uint16_t)atoi(colon + 1) : 0;
    if (!strstr(line, "listening on 127.0.0.1:") || *port == 0) {
        rs_test_kill(child);
        rs_test_wait_exit(child, STOP_TIMEOUT_MS);
        fail_msg("%s did not say where it listens: \"%s\"", path, line);
    }
    return child;
}

/* A clean exit (status 0) within STOP_TIMEOUT_MS; killed otherwise. */
static void expect_clean_exit(rs_test_child_t child) {
    int status = rs_test_wait_exit(child, STOP_TIMEOUT_MS);
    if (status < 0) {
        rs_test_kill(child);
        rs_test_wait_exit(child, STOP_TIMEOUT_MS);
    }
    assert_int_equal(status, 0);
}

/* SIGINT (Windows: Ctrl+C), then a clean exit. */
static void stop_server(rs_test_child_t child) {
    assert_true(rs_test_interrupt(child));
    expect_clean_exit(child);
}

/* ---------------------------------------------------------------- sockets */

static rs_test_sock_t connect_tcp(uint16_t port) {
    return rs_test_connect_loopback(port);
}

/* Nothing arrives for a while. */
static void expect_quiet(rs_test_sock_t fd) {
    assert_false(rs_test_wait_fd(fd, POLLIN, 200));
}

/* ---------------------------------------------------------------- tests */

static void tcp_echo_echoes_and_exits_on_sigint(void **state) {
    (void)state;
    uint16_t port;
    rs_test_child_t pid = start_server(TCP_ECHO_PATH, &port);
    rs_test_sock_t fd = connect_tcp(port);
    rs_test_send_all(fd, "hello, echo\n", 12, IO_TIMEOUT_MS);
    rs_test_expect_bytes(fd, "hello, echo\n", 12, IO_TIMEOUT_MS);
    /* More than a read window (back-pressure on), sent and read back in chunks. */
    static char big[256 * 1024];
    for (size_t i = 0; i < sizeof big; i++) {
        big[i] = (char)('a' + i % 26);
    }
    for (size_t off = 0; off < sizeof big; off += 16384) {
        rs_test_send_all(fd, big + off, 16384, IO_TIMEOUT_MS);
        rs_test_expect_bytes(fd, big + off, 16384, IO_TIMEOUT_MS);
    }
    stop_server(pid); /* with a client still connected */
    rs_test_sock_close(fd);
}

static void chat_broadcasts_lines_to_the_others(void **state) {
    (void)state;
    uint16_t port;
    rs_test_child_t pid = start_server(CHAT_PATH, &port);
    rs_test_sock_t a = connect_tcp(port), b = connect_tcp(port), c = connect_tcp(port);
    /* The welcome comes once the server has the client in its list. */
    rs_test_expect_bytes(a, "* welcome\n", 10, IO_TIMEOUT_MS);
    rs_test_expect_bytes(b, "* welcome\n", 10, IO_TIMEOUT_MS);
    rs_test_expect_bytes(c, "* welcome\n", 10, IO_TIMEOUT_MS);
    rs_test_send_all(a, "hello from A\n", 13, IO_TIMEOUT_MS);
    rs_test_expect_bytes(b, "hello from A\n", 13, IO_TIMEOUT_MS);
    rs_test_expect_bytes(c, "hello from A\n", 13, IO_TIMEOUT_MS);
    expect_quiet(a); /* not back to the sender */
    /* A line split over two writes arrives whole, once complete. */
    rs_test_send_all(b, "split ", 6, IO_TIMEOUT_MS);
    rs_thread_sleep_ns(100 * RS_NS_PER_MS);
    assert_false(rs_test_wait_fd(a, POLLIN, 0));
    rs_test_send_all(b, "line\n", 5, IO_TIMEOUT_MS);
    rs_test_expect_bytes(a, "split line\n", 11, IO_TIMEOUT_MS);
    rs_test_expect_bytes(c, "split line\n", 11, IO_TIMEOUT_MS);
    /* Two lines in one write, each delivered. */
    rs_test_send_all(c, "one\ntwo\n", 8, IO_TIMEOUT_MS);
    rs_test_expect_bytes(a, "one\ntwo\n", 8, IO_TIMEOUT_MS);
    rs_test_expect_bytes(b, "one\ntwo\n", 8, IO_TIMEOUT_MS);
    expect_quiet(b);
    expect_quiet(c);
    stop_server(pid);
    rs_test_sock_close(a), rs_test_sock_close(b), rs_test_sock_close(c);
}

static void udp_echo_echoes_a_datagram_and_exits_on_sigint(void **state) {
    (void)state;
    uint16_t port;
    rs_test_child_t pid = start_server(UDP_ECHO_PATH, &port);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    rs_test_sock_t fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd != (rs_test_sock_t)-1);
    for (int i = 0; i < 3; i++) {
        char sent[32], got[64];
        int len = snprintf(sent, sizeof sent, "datagram %d", i);
        assert_int_equal(sendto(fd, sent, len, 0, (struct sockaddr *)&to, sizeof to), len);
        assert_true(rs_test_wait_fd(fd, POLLIN, IO_TIMEOUT_MS));
        struct sockaddr_in from;
        socklen_t from_len = sizeof from;
        int n = (int)recvfrom(fd, got, sizeof got, 0, (struct sockaddr *)&from, &from_len);
        assert_int_equal(n, len);
        assert_memory_equal(got, sent, (size_t)len);
        assert_int_equal(from.sin_port, to.sin_port);
    }
    stop_server(pid);
    rs_test_sock_close(fd);
}

/* client_by_name PORT localhost LINE; the child's output goes to *out. */
static rs_test_child_t run_client(uint16_t port, rs_test_pipe_t *out) {
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%u", (unsigned)port);
    char *argv[] = {CLIENT_BY_NAME_PATH, port_text, "localhost", "ping", NULL};
    rs_test_child_t child = rs_test_spawn(argv, true, out);
    assert_true(child != RS_TEST_NO_CHILD);
    return child;
}

static void client_by_name_prints_the_reply(void **state) {
    (void)state;
    /* A one-shot echo listener on 127.0.0.1: "localhost" may resolve to ::1
     * first, which refuses; Happy Eyeballs goes on to 127.0.0.1. */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t a_len = sizeof a;
    rs_test_sock_t listener = socket(AF_INET, SOCK_STREAM, 0);
    rs_test_pipe_t out;
    assert_true(listener != (rs_test_sock_t)-1);
    assert_int_equal(bind(listener, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(listener, 4), 0);
    assert_int_equal(getsockname(listener, (struct sockaddr *)&a, &a_len), 0);
    uint16_t port = ntohs(a.sin_port);

    rs_test_child_t pid = run_client(port, &out);
    assert_true(rs_test_wait_fd(listener, POLLIN, IO_TIMEOUT_MS));
    rs_test_sock_t fd = accept(listener, NULL, NULL);
    assert_true(fd != (rs_test_sock_t)-1);
    rs_test_expect_bytes(fd, "ping\n", 5, IO_TIMEOUT_MS);
    rs_test_send_all(fd, "pong: ping\n", 11, IO_TIMEOUT_MS);
    char text[512];
    rs_test_read_until(out, text, sizeof text, "\n", IO_TIMEOUT_MS);
    expect_clean_exit(pid);
    if (!strstr(text, "reply: pong: ping\n")) {
        fail_msg("client_by_name printed \"%s\"", text);
    }
    rs_test_pipe_close(out), rs_test_sock_close(fd), rs_test_sock_close(listener);

    /* Nothing listens there now: a non-zero exit with a message. */
    pid = run_client(port, &out);
    rs_test_read_until(out, text, sizeof text, "\n", 15000);
    int status = rs_test_wait_exit(pid, 15000);
    if (status < 0) {
        rs_test_kill(pid), rs_test_wait_exit(pid, STOP_TIMEOUT_MS);
    }
    rs_test_pipe_close(out);
    assert_int_equal(status, 1);
    if (!strstr(text, "cannot connect to localhost: ")) {
        fail_msg("client_by_name printed \"%s\"", text);
    }
}

#if defined(_WIN32)
/* Ctrl+Break, the other stop signal on Windows (SIGBREAK). Wine 8's
 * GenerateConsoleCtrlEvent refuses CTRL_BREAK_EVENT (its server implements
 * only CTRL_C_EVENT): the test then skips, saying so. */
static void tcp_echo_exits_on_ctrl_break(void **state) {
    (void)state;
    uint16_t port;
    rs_test_child_t pid = start_server(TCP_ECHO_PATH, &port);
    rs_test_sock_t fd = connect_tcp(port);
    rs_test_send_all(fd, "hello\n", 6, IO_TIMEOUT_MS);
    rs_test_expect_bytes(fd, "hello\n", 6, IO_TIMEOUT_MS);
    if (!GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, 0)) {
        DWORD error = GetLastError();
        stop_server(pid);
        rs_test_sock_close(fd);
        print_message("skipped: GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT) failed (error %lu); "
                      "Wine 8 generates only CTRL_C_EVENT\n", (unsigned long)error);
        skip();
    }
    expect_clean_exit(pid);
    rs_test_sock_close(fd);
}
#endif

static int group_setup(void **state) {
    (void)state;
#if !defined(_WIN32)
    signal(SIGPIPE, SIG_IGN);
#endif
    return rs_test_console_open();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tcp_echo_echoes_and_exits_on_sigint),
        cmocka_unit_test(chat_broadcasts_lines_to_the_others),
        cmocka_unit_test(udp_echo_echoes_a_datagram_and_exits_on_sigint),
        cmocka_unit_test(client_by_name_prints_the_reply),
#if defined(_WIN32)
        cmocka_unit_test(tcp_echo_exits_on_ctrl_break),
#endif
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
