/* tls_echo: the full stack on loopback. A TLS echo server (its protocol
 * picked by ALPN) and four clients that connect to "localhost" by name: the
 * resolver answers, the client bootstrap races ::1 and 127.0.0.1 (Happy
 * Eyeballs), TLS verifies the server against the demo CA, and each client
 * checks its echo, then prints what was negotiated. Clients after the first
 * resume its session. Read back-pressure is on. */
#define RESEAU_IMPLEMENTATION
#define RESEAU_TLS_IMPLEMENTATION
#include "reseau.h"
#include "reseau_tls.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define CLIENTS 4

/* ---- demo credentials: a throwaway CA and a localhost leaf (EC P-256, valid to 2046). Never trust them. */
static const char demo_ca[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBtDCCAVugAwIBAgIUZE1XFt1PiuiJjb8Cze+9AZ8OCKQwCgYIKoZIzj0EAwIw\n"
    "KDEmMCQGA1UEAwwdcmVzZWF1IGRlbW8gQ0EgKGRvIG5vdCB0cnVzdCkwHhcNMjYx\n"
    "MjAyMDIxMDMxWhcNNDYxMTI3MDIxMDMxWjAoMSYwJAYDVQQDDB1yZXNlYXUgZGVt\n"
    "byBDQSAoZG8gbm90IHRydXN0KTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOAl\n"
    "pN/Tq5vB9HVZYZ+hZ7IOliq9P/tB8hIk9q6PqsoOgI6E9KGSxVfNgeWkxvoDCCl0\n"
    "k5f4RFdNW0wXgKKG0JWjYzBhMB0GA1UdDgQWBBQEFIWXHoXLfT8V8s7YiZwCDi14\n"
    "4TAfBgNVHSMEGDAWgBQEFIWXHoXLfT8V8s7YiZwCDi144TAPBgNVHRMBAf8EBTAD\n"
    "AQH/MA4GA1UdDwEB/wQEAwICBDAKBggqhkjOPQQDAgNHADBEAiB0jqKiY1Ra5XDT\n"
    "iyHV0dfbGghm0YGGVCYPhpJp008DlwIgMJKaoi+PI/l1nX/13NKMgY2WG+rNtc4D\n"
    "SNo1tYJ+pBQ=\n"
    "-----END CERTIFICATE-----\n";
static const char demo_cert[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB4TCCAYagAwIBAgIUSC4o8ApGwurk4BQFmeemewDVN8swCgYIKoZIzj0EAwIw\n"
    "KDEmMCQGA1UEAwwdcmVzZWF1IGRlbW8gQ0EgKGRvIG5vdCB0cnVzdCkwHhcNMjYx\n"
    "MjAyMDIxMDMyWhcNNDYwMTMxMDIxMDMyWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3Qw\n"
    "WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARszSbQ0bPy5OkKW9vBw1gTsdNm+moV\n"
    "eBwGjAAe4Ts7rstDG5JkEqXjMdlImXuF9VwZF7Sb6jE6i7E23/T3oVfQo4GhMIGe\n"
    "MAkGA1UdEwQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMB\n"
    "MCwGA1UdEQQlMCOCCWxvY2FsaG9zdIcEfwAAAYcQAAAAAAAAAAAAAAAAAAAAATAd\n"
    "BgNVHQ4EFgQUUGcfR6avu/kDaRIWolE1hePJIZcwHwYDVR0jBBgwFoAUBBSFlx6F\n"
    "y30/FfLO2ImcAg4teOEwCgYIKoZIzj0EAwIDSQAwRgIhALRT+xEO6MrZUCIz0vaW\n"
    "tKIv43BWht4oivHqDprPpgM0AiEAm0GyFPdoiI0+SouRVgU1ArXXEYJ6/hd9fUEA\n"
    "QW4T8HI=\n"
    "-----END CERTIFICATE-----\n";
static const char demo_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgmG8ikcluk/EeTPL1\n"
    "v1n4n6YVlv8PtGPWbrWMJLFQrg2hRANCAARszSbQ0bPy5OkKW9vBw1gTsdNm+moV\n"
    "eBwGjAAe4Ts7rstDG5JkEqXjMdlImXuF9VwZF7Sb6jE6i7E23/T3oVfQ\n"
    "-----END PRIVATE KEY-----\n";

static atomic_int open_connections = 2 * CLIENTS, failures, next_client;

static void check(int err, const char *what) {
    if (err) fprintf(stderr, "tls_echo: %s: %s\n", what, rs_strerror(err)), exit(1);
}

typedef struct app { rs_channel_handler_t base; char line[48]; size_t len, got; } app_t;

static int echo_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *m) {
    size_t n = m->message_data.len;
    (void)h;
    if (rs_channel_slot_send_message(slot, m, RS_CHANNEL_DIR_WRITE) != RS_OK) /* back, encrypted by TLS */
        rs_channel_release_message_to_pool(rs_channel_slot_get_channel(slot), m), rs_channel_shutdown(rs_channel_slot_get_channel(slot), RS_ENOMEM);
    return rs_channel_slot_increment_read_window(slot, n);
}

static int check_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *m) {
    app_t *c = (app_t *)h->impl;
    rs_channel_t *channel = rs_channel_slot_get_channel(slot);
    size_t n = m->message_data.len;
    bool ok = c->got + n <= c->len && memcmp(c->line + c->got, m->message_data.buffer, n) == 0;
    c->got += n;
    rs_channel_release_message_to_pool(channel, m);
    if (ok && c->got < c->len) return rs_channel_slot_increment_read_window(slot, n);
    rs_tls_info_t info;
    rs_tls_handler_get_info(rs_tls_channel_get_handler(channel), &info);
    printf("client: \"%s\" echoed %s | TLS 0x%04x %s, ALPN %s, verified %s, resumed %s\n", c->line,
           ok ? "intact" : "WRONG", info.version, info.cipher_suite_name, info.alpn ? info.alpn : "none",
           info.peer_verified ? "yes" : "no", info.resumed ? "yes" : "no");
    if (!ok) atomic_fetch_add(&failures, 1);
    return rs_channel_shutdown(channel, RS_OK); /* sends close_notify */
}

static void app_free(rs_channel_handler_t *h) { free(h->impl); }
static const rs_channel_handler_vtable_t echo_vtable = {.process_read_message = echo_read, .destroy = app_free};
static const rs_channel_handler_vtable_t check_vtable = {.process_read_message = check_read, .destroy = app_free};

static rs_channel_handler_t *new_app(const rs_channel_handler_vtable_t *vtable) {
    app_t *a = calloc(1, sizeof *a);
    if (a) a->base = (rs_channel_handler_t){.vtable = vtable, .impl = a};
    if (a && vtable == &check_vtable)
        a->len = (size_t)snprintf(a->line, sizeof a->line, "hello from client %d", atomic_fetch_add(&next_client, 1) + 1);
    return a ? &a->base : NULL;
}

/* ALPN on the server: the agreed protocol picks the handler. */
static rs_channel_handler_t *on_protocol(rs_channel_slot_t *slot, const char *protocol, void *user_data) {
    (void)slot, (void)user_data;
    return protocol && strcmp(protocol, "x-echo") == 0 ? new_app(&echo_vtable) : NULL;
}

/* The client's own installer: its check handler after TLS. */
static int install_check(rs_channel_installer_t *installer, rs_channel_t *channel, rs_channel_slot_t *slot,
                         rs_channel_installer_done_fn *done, void *done_ctx) {
    (void)installer;
    rs_channel_handler_t *h = new_app(&check_vtable);
    rs_channel_slot_t *added;
    if (!h) return RS_ENOMEM;
    int err = rs_channel_slot_add_handler_right(slot, h, &added);
    if (err) return free(h->impl), err;
    done(channel, added, RS_OK, done_ctx);
    return RS_OK;
}
static const rs_channel_installer_vtable_t check_installer_vtable = {.install = install_check};
static rs_channel_installer_t check_installer = {&check_installer_vtable, NULL};

static void on_incoming_setup(rs_server_listener_t *l, rs_channel_t *channel, int error, void *user_data) {
    (void)l, (void)channel, (void)user_data;
    if (error) fprintf(stderr, "server: setup failed: %s\n", rs_strerror(error)), atomic_fetch_add(&failures, 1), atomic_fetch_sub(&open_connections, 1);
}

static void on_incoming_shutdown(rs_server_listener_t *l, rs_channel_t *channel, int error, void *user_data) {
    (void)l, (void)channel, (void)user_data;
    if (error != RS_EEOF) atomic_fetch_add(&failures, 1); /* RS_EEOF: close_notify, then the end of stream */
    atomic_fetch_sub(&open_connections, 1);
}

static void on_client_setup(rs_client_bootstrap_t *b, rs_channel_t *channel, int error, void *user_data) {
    (void)b, (void)user_data;
    if (error) { /* a TLS failure arrives here with its RS_ETLS_... code */
        fprintf(stderr, "client: %s\n", rs_strerror(error));
        atomic_fetch_add(&failures, 1), atomic_fetch_sub(&open_connections, 2);
        return;
    }
    rs_channel_slot_t *slot = rs_channel_get_first_slot(channel);
    while (rs_channel_slot_get_right(slot)) slot = rs_channel_slot_get_right(slot);
    app_t *c = (app_t *)rs_channel_slot_get_handler(slot)->impl;
    rs_io_message_t *m = rs_channel_acquire_message_from_pool(channel, RS_IO_MESSAGE_APPLICATION_DATA, c->len);
    if (m) memcpy(m->message_data.buffer, c->line, c->len), m->message_data.len = c->len;
    if (!m || rs_channel_slot_send_message(slot, m, RS_CHANNEL_DIR_WRITE) != RS_OK)
        rs_channel_release_message_to_pool(channel, m), rs_channel_shutdown(channel, RS_ENOMEM);
}

static void on_client_shutdown(rs_client_bootstrap_t *b, rs_channel_t *channel, int error, void *user_data) {
    (void)b, (void)channel, (void)user_data;
    if (error != RS_OK) atomic_fetch_add(&failures, 1);
    atomic_fetch_sub(&open_connections, 1);
}

int main(void) {
    int err = RS_OK;
    rs_tls_ctx_t *server_ctx = rs_tls_ctx_new(&(rs_tls_ctx_options_t){.is_server = true, .alpn_list = "x-echo",
        .cert_pem = rs_byte_cursor_from_cstr(demo_cert), .key_pem = rs_byte_cursor_from_cstr(demo_key)}, &err);
    check(server_ctx ? RS_OK : err, "server rs_tls_ctx_new");
    rs_tls_ctx_t *client_ctx = rs_tls_ctx_new(&(rs_tls_ctx_options_t){.alpn_list = "h2;x-echo",
        .ca_pem = rs_byte_cursor_from_cstr(demo_ca)}, &err); /* verify against the demo CA only */
    check(client_ctx ? RS_OK : err, "client rs_tls_ctx_new");
    rs_channel_installer_t *server_tls = rs_tls_installer_new(&(rs_tls_connection_options_t){.ctx = server_ctx}, &err);
    rs_channel_installer_t *alpn = rs_tls_alpn_installer_new(NULL, on_protocol, NULL, &err);
    rs_channel_installer_t *client_tls = rs_tls_installer_new(&(rs_tls_connection_options_t){.ctx = client_ctx, .server_name = "localhost"}, &err);
    check(server_tls && alpn && client_tls ? RS_OK : err, "rs_tls_installer_new");

    rs_event_loop_group_t *group = rs_event_loop_group_new(&(rs_event_loop_group_options_t){.loop_count = 2}, &err);
    check(group ? RS_OK : err, "rs_event_loop_group_new");
    rs_server_bootstrap_t *server = rs_server_bootstrap_new(&(rs_server_bootstrap_options_t){.group = group}, &err);
    check(server ? RS_OK : err, "rs_server_bootstrap_new");
    rs_channel_installer_t *server_installers[] = {server_tls, alpn}, *client_installers[] = {client_tls, &check_installer};
    rs_server_listener_t *listener = rs_server_bootstrap_new_listener(server, &(rs_server_listener_options_t){
        .host = "localhost", .installers = server_installers, .installer_count = 2, .enable_read_back_pressure = true,
        .on_incoming_setup = on_incoming_setup, .on_incoming_shutdown = on_incoming_shutdown}, &err);
    check(listener ? RS_OK : err, "rs_server_bootstrap_new_listener");
    rs_endpoint_t address;
    check(rs_server_listener_get_address(listener, &address), "rs_server_listener_get_address");
    printf("server: TLS on localhost:%u\n", (unsigned)address.port);
    rs_client_bootstrap_t *client = rs_client_bootstrap_new(&(rs_client_bootstrap_options_t){.group = group}, &err);
    check(client ? RS_OK : err, "rs_client_bootstrap_new");
    for (int i = 0; i < CLIENTS; i++) {
        check(rs_client_bootstrap_connect(client, &(rs_client_connect_options_t){.host = "localhost", .port = address.port,
                  .installers = client_installers, .installer_count = 2, .enable_read_back_pressure = true,
                  .on_setup = on_client_setup, .on_shutdown = on_client_shutdown}), "rs_client_bootstrap_connect");
        if (i == 0) /* let the first finish, so the others can resume its session */
            for (uint64_t t = rs_clock_now_ns() + 5 * RS_NS_PER_SEC; atomic_load(&next_client) == 0 && atomic_load(&open_connections) == 2 * CLIENTS && rs_clock_now_ns() < t;) rs_thread_sleep_ns(RS_NS_PER_MS);
    }
    uint64_t deadline = rs_clock_now_ns() + 10 * RS_NS_PER_SEC; /* bounded, whatever happens */
    while (atomic_load(&open_connections) > 0 && rs_clock_now_ns() < deadline) rs_thread_sleep_ns(RS_NS_PER_MS);
    bool all_done = atomic_load(&open_connections) == 0;
    rs_server_bootstrap_destroy_listener(listener, true);
    rs_client_bootstrap_destroy(client);
    rs_server_bootstrap_destroy(server);
    rs_event_loop_group_destroy(group); /* stops and joins every loop: nothing uses the installers now */
    rs_tls_installer_destroy(server_tls), rs_tls_installer_destroy(alpn), rs_tls_installer_destroy(client_tls);
    rs_tls_ctx_release(server_ctx), rs_tls_ctx_release(client_ctx);
    int failed = atomic_load(&failures);
    printf("%d TLS clients, %d failures%s; all shut down\n", CLIENTS, failed, all_done ? "" : ", timed out");
    return all_done && failed == 0 ? 0 : 1;
}
