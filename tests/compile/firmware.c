/* The smallest useful firmware build (RESEAU_NO_THREADS, RESEAU_NO_SOCKETS):
 * a loop on a custom backend whose dispatch feeds a transport handler from
 * an "RX FIFO" in memory, an echo handler, and a "TX FIFO" that takes a few
 * bytes per tick, driven by a main loop of run_once calls, as firmware
 * drives reseau. Linked with nosys.specs (newlib) or picolibc.specs for
 * Cortex-M, and run on the build machine, where its exit status says whether
 * the echo came back whole. */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"

#include <string.h>

static const char rx_fifo[] = "hello, firmware: a line longer than the TX FIFO takes in one tick";
static size_t rx_taken;
static char tx_fifo[sizeof(rx_fifo)];
static size_t tx_len;
static size_t tx_room;
static rs_channel_handler_t *uart;

static void fw_wait(void *user_data, int timeout_ms) {
    (void)user_data;
    (void)timeout_ms; /* real firmware: __WFI() until the UART or a timer interrupts */
}

static bool fw_wake(void *user_data) {
    (void)user_data;
    return true;
}

/* After each wait: the TX FIFO drained, and the RX FIFO has bytes. */
static void fw_dispatch(void *user_data) {
    size_t took = 0;
    (void)user_data;
    tx_room = 8;
    if (!uart) {
        return;
    }
    if (rs_transport_handler_pending_write_bytes(uart)) {
        rs_transport_handler_resume_writes(uart);
    }
    if (rx_taken < sizeof(rx_fifo) - 1) {
        rs_transport_handler_deliver(uart, rs_byte_cursor_from_array(rx_fifo + rx_taken, sizeof(rx_fifo) - 1 - rx_taken),
                                     &took);
        rx_taken += took;
    }
}

static int uart_write(void *user_data, rs_byte_cursor_t data, size_t *taken) {
    size_t n = data.len < tx_room ? data.len : tx_room;
    (void)user_data;
    if (n > sizeof(tx_fifo) - tx_len) {
        return RS_EOVERFLOW;
    }
    memcpy(tx_fifo + tx_len, data.ptr, n);
    tx_len += n;
    tx_room -= n;
    *taken = n;
    return RS_OK;
}

static int echo_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    size_t len = message->message_data.len;
    (void)h;
    /* The read message becomes the write message: ownership allows it. */
    if (rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE) != RS_OK) {
        return RS_EINVAL;
    }
    return rs_channel_slot_increment_read_window(slot, len);
}

static const rs_channel_handler_vtable_t echo_vtable = {
    echo_read, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
};

static bool setup_done;

static void on_setup(rs_channel_t *channel, int error, void *user_data) {
    (void)channel;
    (void)user_data;
    setup_done = error == RS_OK;
}

int main(void) {
    rs_event_loop_custom_backend_t backend = {fw_wait, fw_wake, fw_dispatch, NULL, NULL};
    rs_event_loop_options_t lo;
    rs_channel_options_t co;
    rs_transport_handler_options_t to;
    rs_channel_handler_t echo;
    rs_event_loop_t *loop;
    rs_channel_t *channel;
    rs_channel_slot_t *s1, *s2;
    int tick;

    memset(&lo, 0, sizeof(lo));
    lo.custom_backend = &backend;
    loop = rs_event_loop_new(&lo, NULL);
    memset(&co, 0, sizeof(co));
    co.loop = loop;
    co.on_setup_completed = on_setup;
    channel = loop ? rs_channel_new(&co, NULL) : NULL;
    if (!channel) {
        return 1;
    }
    rs_event_loop_run_once(loop, 0);
    memset(&to, 0, sizeof(to));
    to.callbacks.write = uart_write;
    uart = rs_transport_handler_new(&to, NULL);
    echo.vtable = &echo_vtable;
    echo.impl = NULL;
    echo.slot = NULL;
    s1 = setup_done && uart ? rs_channel_slot_new(channel, NULL) : NULL;
    if (!s1 || rs_channel_slot_insert_end(channel, s1) != RS_OK || rs_channel_slot_set_handler(s1, uart) != RS_OK) {
        return 1;
    }
    s2 = rs_channel_slot_new(channel, NULL);
    if (!s2 || rs_channel_slot_insert_end(channel, s2) != RS_OK || rs_channel_slot_set_handler(s2, &echo) != RS_OK) {
        return 1;
    }
    /* The firmware main loop: sleep in the backend's wait, feed, run tasks. */
    for (tick = 0; tick < 100 && tx_len < sizeof(rx_fifo) - 1; ++tick) {
        rs_event_loop_run_once(loop, -1);
    }
    rs_channel_shutdown(channel, RS_OK);
    for (tick = 0; tick < 10; ++tick) {
        rs_event_loop_run_once(loop, 0);
    }
    rs_channel_destroy(channel);
    rs_event_loop_destroy(loop);
    return tx_len == sizeof(rx_fifo) - 1 && memcmp(tx_fifo, rx_fifo, tx_len) == 0 ? 0 : 2;
}
