/*
 * The four newcomer examples (issue 10), each run as a child process on
 * 127.0.0.1 / localhost and driven over real sockets: tcp_echo, chat,
 * udp_echo and client_by_name. Servers are started with port 0 and say
 * which port they took; each test stops its child with SIGINT and expects a
 * clean exit. Every wait is bounded (IO_TIMEOUT_MS per read or write,
 * STOP_TIMEOUT_MS for an exit); a child that overstays is killed by its PID.
 */
#include "test_util.h" /* first: reseau.h defines _GNU_SOURCE */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#if !defined(TCP_ECHO_PATH) || !defined(CHAT_PATH) || !defined(UDP_ECHO_PATH) || !defined(CLIENT_BY_NAME_PATH)
#error "the examples' paths must be defined by the build"
#endif

#define IO_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS 10000

/* ---------------------------------------------------------------- children */

/* Start a server example with port 0; returns its pid and sets *port from
 * its "listening on 127.0.0.1:PORT" line. */
static pid_t start_server(const char *path, uint16_t *port) {
    char *argv[] = {(char *)path, "0", NULL}, line[256];
    int out = -1;
    pid_t pid = rs_test_spawn(argv, false, &out);
    assert_true(pid > 0);
    rs_test_read_until(out, line, sizeof line, "\n", IO_TIMEOUT_MS);
    close(out);
    const char *colon = strrchr(line, ':');
    *port = colon ? (uint16_t)atoi(colon + 1) : 0;
    if (!strstr(line, "listening on 127.0.0.1:") || *port == 0) {
        kill(pid, SIGKILL);
        rs_test_wait_exit(pid, STOP_TIMEOUT_MS);
        fail_msg("%s did not say where it listens: \"%s\"", path, line);
    }
    return pid;
}

/* SIGINT, then a clean exit (status 0) within STOP_TIMEOUT_MS. */
static void stop_server(pid_t pid) {
    assert_int_equal(kill(pid, SIGINT), 0);
    int status = rs_test_wait_exit(pid, STOP_TIMEOUT_MS);
    if (status < 0) {
        kill(pid, SIGKILL);
        rs_test_wait_exit(pid, STOP_TIMEOUT_MS);
    }
    assert_int_equal(status, 0);
}

/* ---------------------------------------------------------------- sockets */

static int connect_tcp(uint16_t port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
    return fd;
}

/* Nothing arrives for a while. */
static void expect_quiet(int fd) {
    assert_false(rs_test_wait_fd(fd, POLLIN, 200));
}

/* ---------------------------------------------------------------- tests */

static void tcp_echo_echoes_and_exits_on_sigint(void **state) {
    (void)state;
    uint16_t port;
    pid_t pid = start_server(TCP_ECHO_PATH, &port);
    int fd = connect_tcp(port);
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
    close(fd);
}

static void chat_broadcasts_lines_to_the_others(void **state) {
    (void)state;
    uint16_t port;
    pid_t pid = start_server(CHAT_PATH, &port);
    int a = connect_tcp(port), b = connect_tcp(port), c = connect_tcp(port);
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
    close(a), close(b), close(c);
}

static void udp_echo_echoes_a_datagram_and_exits_on_sigint(void **state) {
    (void)state;
    uint16_t port;
    pid_t pid = start_server(UDP_ECHO_PATH, &port);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    for (int i = 0; i < 3; i++) {
        char sent[32], got[64];
        int len = snprintf(sent, sizeof sent, "datagram %d", i);
        assert_int_equal(sendto(fd, sent, (size_t)len, 0, (struct sockaddr *)&to, sizeof to), len);
        assert_true(rs_test_wait_fd(fd, POLLIN, IO_TIMEOUT_MS));
        struct sockaddr_in from;
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom(fd, got, sizeof got, 0, (struct sockaddr *)&from, &from_len);
        assert_int_equal(n, len);
        assert_memory_equal(got, sent, (size_t)len);
        assert_int_equal(from.sin_port, to.sin_port);
    }
    stop_server(pid);
    close(fd);
}

/* client_by_name PORT localhost LINE; the child's output goes to *out. */
static pid_t run_client(uint16_t port, int *out) {
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%u", (unsigned)port);
    char *argv[] = {CLIENT_BY_NAME_PATH, port_text, "localhost", "ping", NULL};
    pid_t pid = rs_test_spawn(argv, true, out);
    assert_true(pid > 0);
    return pid;
}

static void client_by_name_prints_the_reply(void **state) {
    (void)state;
    /* A one-shot echo listener on 127.0.0.1: "localhost" may resolve to ::1
     * first, which refuses; Happy Eyeballs goes on to 127.0.0.1. */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t a_len = sizeof a;
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), out = -1;
    assert_true(listener >= 0);
    assert_int_equal(bind(listener, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(listener, 4), 0);
    assert_int_equal(getsockname(listener, (struct sockaddr *)&a, &a_len), 0);
    uint16_t port = ntohs(a.sin_port);

    pid_t pid = run_client(port, &out);
    assert_true(rs_test_wait_fd(listener, POLLIN, IO_TIMEOUT_MS));
    int fd = accept(listener, NULL, NULL);
    assert_true(fd >= 0);
    rs_test_expect_bytes(fd, "ping\n", 5, IO_TIMEOUT_MS);
    rs_test_send_all(fd, "pong: ping\n", 11, IO_TIMEOUT_MS);
    char text[512];
    rs_test_read_until(out, text, sizeof text, "\n", IO_TIMEOUT_MS);
    int status = rs_test_wait_exit(pid, STOP_TIMEOUT_MS);
    if (status < 0) {
        kill(pid, SIGKILL), rs_test_wait_exit(pid, STOP_TIMEOUT_MS);
    }
    assert_int_equal(status, 0);
    if (!strstr(text, "reply: pong: ping\n")) {
        fail_msg("client_by_name printed \"%s\"", text);
    }
    close(out), close(fd), close(listener);

    /* Nothing listens there now: a non-zero exit with a message. */
    pid = run_client(port, &out);
    rs_test_read_until(out, text, sizeof text, "\n", 15000);
    status = rs_test_wait_exit(pid, 15000);
    if (status < 0) {
        kill(pid, SIGKILL), rs_test_wait_exit(pid, STOP_TIMEOUT_MS);
    }
    close(out);
    assert_int_equal(status, 1);
    if (!strstr(text, "cannot connect to localhost: ")) {
        fail_msg("client_by_name printed \"%s\"", text);
    }
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tcp_echo_echoes_and_exits_on_sigint),
        cmocka_unit_test(chat_broadcasts_lines_to_the_others),
        cmocka_unit_test(udp_echo_echoes_a_datagram_and_exits_on_sigint),
        cmocka_unit_test(client_by_name_prints_the_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
