/*
 * retry_connect: a client that reconnects with exponential backoff until a
 * server appears, and reports the outcome through a future.
 *
 * It acquires a retry token, connects to 127.0.0.1:PORT, and after each
 * refusal schedules a retry: the wait (100 ms x 2^n, full jitter, cap 2 s) is
 * a timer on the loop, not a sleep. The outcome completes a future main()
 * waits on. The loop opens a listener on PORT after 700 ms, unless you pass
 * --no-server (then start one yourself: `nc -l 19000`).
 * Build and run:  meson setup build && meson compile -C build && ./build/examples/retry_connect
 */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"

#include <stdio.h>
#include <string.h>

#define PORT 19000
#define SERVER_DELAY_MS 700

typedef struct app {
    rs_event_loop_t *loop;
    rs_retry_strategy_t *strategy;
    rs_retry_token_t *token;
    rs_future_t *done; /* RS_FUTURE_VOID: connected, or the error that ended it */
    rs_endpoint_t remote;
    rs_socket_t *listener;
    rs_task_t server_task;
} app_t;

static void try_connect(app_t *app);
/* The token goes back either way; a success refills a standard strategy's bucket. */
static void finish(app_t *app, int error) {
    if (error == RS_OK) {
        rs_retry_token_record_success(app->token);
    }
    rs_retry_token_release(app->token);
    if (error == RS_OK) {
        rs_future_set_result(app->done);
    } else {
        rs_future_set_error(app->done, error);
    }
}

static void on_retry_ready(rs_retry_token_t *token, int error, void *user_data) {
    (void)token;
    if (error != RS_OK) {
        finish((app_t *)user_data, error); /* RS_ECANCELED: shutting down */
    } else {
        try_connect((app_t *)user_data);
    }
}

static void on_connect(rs_socket_t *socket, int error, void *user_data) {
    app_t *app = (app_t *)user_data;
    int err;
    rs_socket_destroy(socket);
    if (error == RS_OK) {
        printf("connected after %u retries\n", rs_retry_token_get_retry_count(app->token));
        finish(app, RS_OK);
        return;
    }
    printf("attempt %u: %s; retrying\n", rs_retry_token_get_retry_count(app->token) + 1, rs_strerror(error));
    err = rs_retry_strategy_schedule_retry(app->token, RS_RETRY_ERROR_TRANSIENT, on_retry_ready, app);
    if (err != RS_OK) {
        finish(app, err); /* RS_ERETRY_MAX_EXCEEDED: out of retries */
    }
}

static void try_connect(app_t *app) {
    int err = RS_OK;
    rs_socket_t *socket = rs_socket_new(NULL, &err);
    if (socket) {
        err = rs_socket_connect(socket, &app->remote, app->loop, on_connect, app);
    }
    if (err != RS_OK) {
        rs_socket_destroy(socket);
        finish(app, err);
    }
}

static void on_token(rs_retry_strategy_t *strategy, int error, rs_retry_token_t *token, void *user_data) {
    app_t *app = (app_t *)user_data;
    (void)strategy;
    if (error != RS_OK) {
        rs_future_set_error(app->done, error);
    } else {
        app->token = token;
        try_connect(app);
    }
}

/* The server side of the demo: accept and hang up. */
static void on_accept(rs_socket_t *listener, int error, rs_socket_t *incoming, void *user_data) {
    (void)listener, (void)error, (void)user_data;
    rs_socket_destroy(incoming);
}

static void start_server(rs_task_t *task, void *arg, rs_task_status_t status) {
    app_t *app = (app_t *)arg;
    rs_socket_options_t so = {.reuseaddr = true}; /* old connections may linger in TIME_WAIT */
    int err = RS_OK;
    (void)task;
    if (status != RS_TASK_STATUS_RUN) {
        return; /* the loop was destroyed first */
    }
    if (!(app->listener = rs_socket_new(&so, &err)) ||
        (err = rs_socket_bind(app->listener, &app->remote)) != RS_OK ||
        (err = rs_socket_listen(app->listener, 0)) != RS_OK ||
        (err = rs_socket_start_accept(app->listener, app->loop, on_accept, app)) != RS_OK) {
        printf("server not started: %s\n", rs_strerror(err));
        return;
    }
    printf("server listening on port %d\n", PORT);
}

int main(int argc, char **argv) {
    app_t app = {0};
    rs_exponential_backoff_options_t backoff = {.scale_ms = 100, .cap_ms = 2000, .max_retries = 10};
    int err = RS_OK;
    rs_endpoint_from_ip(&app.remote, "127.0.0.1", PORT);
    backoff.loop = app.loop = rs_event_loop_new(NULL, &err);
    app.strategy = app.loop ? rs_retry_strategy_new_exponential_backoff(&backoff, &err) : NULL;
    app.done = app.strategy ? rs_future_new(NULL, &err) : NULL;
    if (!app.done) {
        fprintf(stderr, "setup failed: %s\n", rs_strerror(err));
        return 1;
    }
    rs_task_init(&app.server_task, start_server, &app, "demo_server");
    if (!(argc > 1 && strcmp(argv[1], "--no-server") == 0)) {
        rs_event_loop_schedule_task_future(app.loop, &app.server_task,
                                           rs_event_loop_now_ns(app.loop) + SERVER_DELAY_MS * RS_NS_PER_MS);
    }
    rs_event_loop_start(app.loop);
    rs_retry_strategy_acquire_token(app.strategy, "127.0.0.1", 0, on_token, &app);
    rs_future_wait(app.done, UINT64_MAX);
    err = rs_future_get_error(app.done);
    printf("%s\n", err == RS_OK ? "done" : rs_strerror(err));
    if (app.listener) {
        rs_socket_close(app.listener); /* from another thread: waits for the loop to close it */
    }
    rs_event_loop_stop(app.loop);
    rs_event_loop_wait(app.loop);
    rs_socket_destroy(app.listener);
    rs_retry_strategy_destroy(app.strategy);
    rs_future_release(app.done);
    rs_event_loop_destroy(app.loop);
    return err == RS_OK ? 0 : 1;
}
