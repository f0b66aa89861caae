/*
 * examples/http_hello (the HTTP/1.1 keep-alive responder tools/bench/wrk.sh
 * measures) against a raw socket client, and against curl when it is
 * installed (skipped, saying so, otherwise).
 *
 * The example runs as a child process on 127.0.0.1, on a port it picks and
 * prints, with two loops; the tests share it, and the last one stops it with
 * SIGTERM (Windows: Ctrl+C, through the test's own console, see
 * rs_test_console_open) and expects a clean exit. Every wait is bounded
 * (IO_TIMEOUT_MS per read or write, STOP_TIMEOUT_MS for the exit); on Linux
 * the child dies with the test (PR_SET_PDEATHSIG), and everywhere it is
 * killed by the group teardown if still running. The curl test runs only
 * on POSIX.
 */
#include "test_util.h" /* first: reseau.h defines _GNU_SOURCE (mkstemp, pread) */
#if !defined(_WIN32)
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#ifndef HTTP_HELLO_PATH
#error "HTTP_HELLO_PATH (the example's executable) must be defined by the build"
#endif

#define IO_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS 10000
#define RESPONSE "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
#define REQUEST "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n"

static rs_test_child_t g_server = RS_TEST_NO_CHILD;
static uint16_t g_port;

/* ---------------------------------------------------------------- the server */

static int start_server(void **state) {
    char *argv[] = {HTTP_HELLO_PATH, "0", "2", NULL}, line[128];
    rs_test_pipe_t out;
    (void)state;
#if !defined(_WIN32)
    signal(SIGPIPE, SIG_IGN);
#endif
    if (rs_test_console_open() != 0 || (g_server = rs_test_spawn(argv, false, &out)) == RS_TEST_NO_CHILD) {
        return -1;
    }
    /* "http_hello: listening on 127.0.0.1:PORT\n" */
    rs_test_read_until(out, line, sizeof line, "\n", IO_TIMEOUT_MS);
    rs_test_pipe_close(out);
    const char *colon = strrchr(line, ':');
    g_port = colon ? (uint16_t)atoi(colon + 1) : 0;
    if (!strstr(line, "listening on 127.0.0.1:") || g_port == 0) {
        fprintf(stderr, "http_hello said: %s\n", line);
        return -1;
    }
    return 0;
}

static int stop_server(void **state) {
    (void)state;
    if (g_server != RS_TEST_NO_CHILD) {
        rs_test_kill(g_server);
        rs_test_wait_exit(g_server, STOP_TIMEOUT_MS);
        g_server = RS_TEST_NO_CHILD;
    }
    return 0;
}

/* ---------------------------------------------------------------- the client */

/* Nagle is off: each small write leaves at once, as the byte-by-byte test needs. */
static rs_test_sock_t connect_server(void) {
    return rs_test_connect_loopback(g_port);
}

/* The server closes the connection, with nothing more before the end: EOF, or
 * a reset when it closed with bytes of ours still unread. */
static void expect_eof(rs_test_sock_t fd) {
    char c;
    assert_true(rs_test_wait_fd(fd, POLLIN, IO_TIMEOUT_MS));
    int n = (int)recv(fd, &c, 1, 0);
#if defined(_WIN32)
    bool reset = n < 0 && WSAGetLastError() == WSAECONNRESET;
    int error = n < 0 ? WSAGetLastError() : 0;
#else
    bool reset = n < 0 && errno == ECONNRESET;
    int error = n < 0 ? errno : 0;
#endif
    if (n != 0 && !reset) {
        fail_msg("expected the end of the connection, got %d (error %d)", n, error);
    }
}

/* Nothing more arrives for a while, and the connection stays open. */
static void expect_quiet(rs_test_sock_t fd) {
    assert_false(rs_test_wait_fd(fd, POLLIN, 100));
}

/* ---------------------------------------------------------------- tests */

static void http_hello_answers_a_request(void **state) {
    (void)state;
    rs_test_sock_t fd = connect_server();
    rs_test_send_all(fd, REQUEST, strlen(REQUEST), IO_TIMEOUT_MS);
    rs_test_expect_bytes(fd, RESPONSE, strlen(RESPONSE), IO_TIMEOUT_MS);
    expect_quiet(fd);
    rs_test_sock_close(fd);
}

static void http_hello_answers_three_pipelined_requests_in_order(void **state) {
    (void)state;
    rs_test_sock_t fd = connect_server();
    const char three[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\n\r\nHEAD /3 HTTP/1.1\r\nX: y\r\n\r\n";
    rs_test_send_all(fd, three, strlen(three), IO_TIMEOUT_MS);
    rs_test_expect_bytes(fd, RESPONSE RESPONSE RESPONSE, 3 * strlen(RESPONSE), IO_TIMEOUT_MS);
    expect_quiet(fd);
    rs_test_sock_close(fd);
}

static void http_hello_answers_a_request_sent_byte_by_byte(void **state) {
    (void)state;
    rs_test_sock_t fd = connect_server();
    for (const char *p = REQUEST; *p; p++) {
        rs_test_send_all(fd, p, 1, IO_TIMEOUT_MS);
        rs_thread_sleep_ns(2 * RS_NS_PER_MS); /* let each byte arrive in a read of its own */
        if (p[1]) {
            assert_false(rs_test_wait_fd(fd, POLLIN, 0)); /* no answer before the request is complete */
        }
    }
    rs_test_expect_bytes(fd, RESPONSE, strlen(RESPONSE), IO_TIMEOUT_MS);
    rs_test_sock_close(fd);
}

static void http_hello_keeps_the_connection_alive(void **state) {
    (void)state;
    rs_test_sock_t fd = connect_server();
    for (int i = 0; i < 5; i++) {
        rs_test_send_all(fd, REQUEST, strlen(REQUEST), IO_TIMEOUT_MS);
        rs_test_expect_bytes(fd, RESPONSE, strlen(RESPONSE), IO_TIMEOUT_MS);
    }
    /* Bare LF line ends work too, and an empty line before a request is skipped. */
    const char lf[] = "\nGET / HTTP/1.1\nHost: a\n\n";
    rs_test_send_all(fd, lf, strlen(lf), IO_TIMEOUT_MS);
    rs_test_expect_bytes(fd, RESPONSE, strlen(RESPONSE), IO_TIMEOUT_MS);
    expect_quiet(fd);
    rs_test_sock_close(fd);
}

static void http_hello_closes_after_answering_http_1_0(void **state) {
    (void)state;
    rs_test_sock_t fd = connect_server();
    const char req[] = "GET / HTTP/1.0\r\n\r\nGET /ignored HTTP/1.1\r\n\r\n";
    const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
                        "Connection: close\r\n\r\nHello, World!";
    rs_test_send_all(fd, req, strlen(req), IO_TIMEOUT_MS);
    rs_test_expect_bytes(fd, resp, strlen(resp), IO_TIMEOUT_MS);
    expect_eof(fd);
    rs_test_sock_close(fd);
}

static void http_hello_refuses_a_malformed_request_line(void **state) {
    (void)state;
    const char resp[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    const char *bad[] = {"HELLO\r\n\r\n", "GET / SPDY/3\r\n\r\n", "GET HTTP/1.1\r\n\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rs_test_sock_t fd = connect_server();
        rs_test_send_all(fd, bad[i], strlen(bad[i]), IO_TIMEOUT_MS);
        rs_test_expect_bytes(fd, resp, strlen(resp), IO_TIMEOUT_MS);
        expect_eof(fd);
        rs_test_sock_close(fd);
    }
    /* A request line longer than the responder keeps. */
    rs_test_sock_t fd = connect_server();
    char line[2000];
    memset(line, 'a', sizeof line);
    memcpy(line, "GET /", 5);
    rs_test_send_all(fd, line, sizeof line, IO_TIMEOUT_MS);
    rs_test_expect_bytes(fd, resp, strlen(resp), IO_TIMEOUT_MS);
    expect_eof(fd);
    rs_test_sock_close(fd);
}

/* curl, two URLs in one run: both answered, the second on the same connection. */
static void curl_gets_two_pages_over_one_connection(void **state) {
    (void)state;
#if defined(_WIN32)
    print_message("skipped on Windows: the test runs curl as a POSIX child (fork, exec, mkstemp)\n");
    skip();
#else
    if (system("command -v curl >/dev/null 2>&1") != 0) {
        print_message("skipped: curl is not installed (Debian package curl)\n");
        skip();
    }
    char out_path[] = "/tmp/reseau-http-hello-XXXXXX";
    int out = mkstemp(out_path);
    assert_true(out >= 0);
    char url1[64], url2[64];
    snprintf(url1, sizeof url1, "http://127.0.0.1:%u/", (unsigned)g_port);
    snprintf(url2, sizeof url2, "http://127.0.0.1:%u/again", (unsigned)g_port);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out, STDOUT_FILENO);
        dup2(out, STDERR_FILENO);
        execlp("curl", "curl", "-sS", "-v", "--max-time", "10", url1, url2, (char *)NULL);
        _exit(127);
    }
    int status = rs_test_wait_exit(pid, 15000);
    if (status < 0) {
        kill(pid, SIGKILL);
        rs_test_wait_exit(pid, 1000);
    }
    char log[8192] = {0};
    ssize_t n = pread(out, log, sizeof log - 1, 0);
    close(out);
    unlink(out_path);
    if (status != 0) {
        fail_msg("curl exited with %d:\n%s", status, n > 0 ? log : "");
    }
    const char *first = strstr(log, "Hello, World!");
    assert_non_null(first);
    assert_non_null(strstr(first + 1, "Hello, World!"));
    if (!strstr(log, "Re-using existing connection")) {
        fail_msg("curl did not reuse the connection:\n%s", log);
    }
#endif
}

/* SIGTERM; on Windows, which cannot send it, Ctrl+C (SIGINT). */
static void http_hello_exits_cleanly_on_sigterm(void **state) {
    (void)state;
    rs_test_sock_t fd = connect_server(); /* an open keep-alive connection is cut, not waited for */
    rs_test_send_all(fd, REQUEST, strlen(REQUEST), IO_TIMEOUT_MS);
    rs_test_expect_bytes(fd, RESPONSE, strlen(RESPONSE), IO_TIMEOUT_MS);
#if defined(_WIN32)
    assert_true(rs_test_interrupt(g_server));
#else
    assert_int_equal(kill(g_server, SIGTERM), 0);
#endif
    int status = rs_test_wait_exit(g_server, STOP_TIMEOUT_MS);
    if (status == 0) {
        g_server = RS_TEST_NO_CHILD; /* reaped */
    }
    assert_int_equal(status, 0);
    rs_test_sock_close(fd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_hello_answers_a_request),
        cmocka_unit_test(http_hello_answers_three_pipelined_requests_in_order),
        cmocka_unit_test(http_hello_answers_a_request_sent_byte_by_byte),
        cmocka_unit_test(http_hello_keeps_the_connection_alive),
        cmocka_unit_test(http_hello_closes_after_answering_http_1_0),
        cmocka_unit_test(http_hello_refuses_a_malformed_request_line),
        cmocka_unit_test(curl_gets_two_pages_over_one_connection),
        cmocka_unit_test(http_hello_exits_cleanly_on_sigterm),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
