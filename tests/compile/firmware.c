/* The smallest useful firmware build (RESEAU_NO_THREADS, RESEAU_NO_SOCKETS):
 * an echo handler over the testing channel, driven by a main loop of
 * run_once calls, as firmware drives reseau. Linked with nosys.specs (newlib)
 * or picolibc.specs for Cortex-M, and run on the build machine, where its
 * exit status says whether the echo came back. */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"

#include <string.h>

static int echo_read(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    size_t len = message->message_data.len;
    (void)h;
    /* The read message becomes the write message: ownership allows it. */
    if (rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE) != RS_OK) {
        return RS_EINVAL;
    }
    return rs_channel_slot_increment_read_window(slot, len);
}

static int echo_write(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_io_message_t *message) {
    (void)h;
    return rs_channel_slot_send_message(slot, message, RS_CHANNEL_DIR_WRITE);
}

static int echo_window(rs_channel_handler_t *h, rs_channel_slot_t *slot, size_t size) {
    (void)h;
    (void)slot;
    (void)size;
    return RS_OK;
}

static int echo_shutdown(rs_channel_handler_t *h, rs_channel_slot_t *slot, rs_channel_direction_t dir, int error,
                         bool abort_immediately) {
    (void)h;
    return rs_channel_slot_on_handler_shutdown_complete(slot, dir, error, abort_immediately);
}

static size_t echo_initial_window(rs_channel_handler_t *h) {
    (void)h;
    return 1024;
}

static size_t echo_overhead(rs_channel_handler_t *h) {
    (void)h;
    return 0;
}

static void echo_destroy(rs_channel_handler_t *h) {
    (void)h;
}

static const rs_channel_handler_vtable_t echo_vtable = {
    echo_read, echo_write, echo_window, echo_shutdown, echo_initial_window, echo_overhead, echo_destroy,
    NULL,      NULL,       NULL,
};

int main(void) {
    static const char hello[] = "hello, firmware";
    rs_channel_handler_t echo;
    rs_testing_channel_t *tc;
    rs_byte_buf_t out;
    int tick;
    int ok;

    echo.vtable = &echo_vtable;
    echo.impl = NULL;
    echo.slot = NULL;
    tc = rs_testing_channel_new(NULL, NULL);
    if (!tc || rs_testing_channel_add_handler(tc, &echo) != RS_OK) {
        return 1;
    }
    if (rs_testing_channel_push_read(tc, rs_byte_cursor_from_array(hello, sizeof(hello) - 1)) != RS_OK) {
        return 1;
    }
    /* The firmware main loop: the fake socket delivers what was pushed, and
     * run_once runs what is due; a real one then sleeps until the next
     * deadline or an interrupt (there is nothing to sleep for here). */
    for (tick = 0; tick < 4; ++tick) {
        if (rs_testing_channel_run(tc) != RS_OK) {
            return 1;
        }
        rs_event_loop_run_once(rs_testing_channel_get_loop(tc), 0);
    }
    if (rs_byte_buf_init(&out, NULL, 0) != RS_OK || rs_testing_channel_drain_written(tc, &out) != RS_OK) {
        return 1;
    }
    ok = out.len == sizeof(hello) - 1 && memcmp(out.buffer, hello, out.len) == 0;
    rs_byte_buf_cleanup(&out);
    rs_testing_channel_destroy(tc);
    return ok ? 0 : 2;
}
