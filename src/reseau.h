/*
 * reseau -- an embeddable networking runtime in one header.
 * MIT licensed; see the end of this file.
 *
 * QUICK START
 *   In exactly one C or C++ file, before any other #include:
 *       #define RESEAU_IMPLEMENTATION
 *       #include "reseau.h"
 *   Everywhere else just #include "reseau.h". Link with -pthread (Windows:
 *   nothing; see README for what is ported there so far).
 *
 *       rs_event_loop_t *loop = rs_event_loop_new(NULL, NULL);
 *       rs_task_t task;
 *       rs_task_init(&task, my_fn, my_arg, "hello");
 *       rs_event_loop_schedule_task_now(loop, &task);
 *       rs_event_loop_run_once(loop, 0);         // runs my_fn on this thread
 *       rs_event_loop_destroy(loop);
 *
 * CONFIGURATION MACROS (define before the include)
 *   RESEAU_IMPLEMENTATION  emit the implementation in this translation unit.
 *                          On Linux it defines _GNU_SOURCE, so include reseau.h
 *                          first in that file (or build it with -D_GNU_SOURCE).
 *                          On Windows it includes <winsock2.h> and <windows.h>,
 *                          with WIN32_LEAN_AND_MEAN and NOMINMAX unless set.
 *   RESEAU_STATIC          make every function static (single-file tools).
 *   RESEAU_API             override the storage class of public functions.
 *   RESEAU_ASSERT(x)       override internal invariant checks (default assert).
 *   RESEAU_ATOMICS_INTERLOCKED  Windows: build the atomics on Interlocked*,
 *                          as MSVC does, instead of the __atomic builtins
 *                          (for testing MSVC's path with mingw-w64).
 *   RESEAU_NO_THREADS      single-threaded build: no thread calls; mutexes and
 *                          condition variables do nothing; atomics are plain
 *                          loads and stores. rs_thread_launch/join,
 *                          rs_event_loop_start and rs_event_loop_group_new
 *                          (and what starts threads: the resolver, blocking
 *                          async streams) return RS_ENOTSUP; loops run
 *                          through rs_event_loop_run_once only.
 *   RESEAU_NO_SOCKETS      no OS socket layer: >>socket, >>pipe, >>resolver,
 *                          >>socket_handler, >>installer, >>client and >>server
 *                          are left out (reseau_tls.h keeps its handler, not its
 *                          installers). Addresses, the channel, the testing
 *                          channel and the transport handler stay.
 *   RESEAU_NO_TRACE        compile the tracing hooks (>>trace) out entirely;
 *                          rs_trace_set_tracer then returns RS_ENOTSUP.
 *   Without an OS (RESEAU_OS_NONE: not Windows, not a Unix, such as
 *   arm-none-eabi with newlib or picolibc) both are required; the loop has no
 *   I/O backend there (>>none.c): run_once runs due tasks and never blocks,
 *   and rs_clock_now_ns comes from the C library's clock().
 *
 * THREADING MODEL
 *   Every loop-bound object belongs to one event loop and is used on that
 *   loop's thread; calls from elsewhere return RS_EWRONGTHREAD and log.
 *   Thread-safe by design: scheduling tasks, stopping a loop, group accessors.
 *   Callbacks run on the owning loop's thread, never inline in the call that
 *   registered them. A loop runs on its own thread (start/stop/wait) or on
 *   yours (run_once, with next_deadline and get_fd for host loops;
 *   get_wait_handle, a waitable event, on Windows).
 *
 * CONNECTING
 *   rs_client_bootstrap_connect resolves a name (rs_host_resolver_t: a cache
 *   and worker threads), connects with Happy Eyeballs (RFC 8305) and hands you
 *   a channel whose pipeline its installers built (socket handler first, then
 *   TLS, then your handler). rs_server_bootstrap_new_listener does the same
 *   for every accepted connection. See examples/echo_pipeline.c.
 *
 * RECIPES (sketches; error checks left out; callbacks run on the loop thread)
 *   TCP server: a group, a server bootstrap, your handler as the last installer.
 *       rs_event_loop_group_t *g = rs_event_loop_group_new(NULL, &err);
 *       rs_server_bootstrap_options_t bo = {0}; bo.group = g;
 *       rs_server_bootstrap_t *sb = rs_server_bootstrap_new(&bo, &err);
 *       // my_installer.vtable->install(..., slot, done, ctx):
 *       //   rs_channel_slot_add_handler_right(slot, &h, &mine);
 *       //   done(channel, mine, RS_OK, ctx);
 *       rs_channel_installer_t *inst[] = { &my_installer };
 *       rs_server_listener_options_t lo = {0};
 *       lo.port = 8080; lo.installers = inst; lo.installer_count = 1;
 *       lo.on_incoming_setup = on_setup;    // (channel, RS_OK) or (NULL, err)
 *       rs_server_listener_t *l = rs_server_bootstrap_new_listener(sb, &lo, &err);
 *       ... rs_server_bootstrap_destroy_listener(l, false);
 *       rs_server_bootstrap_destroy(sb); rs_event_loop_group_destroy(g);
 *
 *   UDP echo: one DGRAM socket on one loop.
 *       rs_socket_options_t so = {0}; so.type = RS_SOCKET_DGRAM;
 *       rs_socket_t *s = rs_socket_new(&so, &err);
 *       rs_endpoint_from_ip(&ep, "0.0.0.0", 9000); rs_socket_bind(s, &ep);
 *       rs_socket_assign_to_loop(s, loop);  // before rs_event_loop_start
 *       rs_socket_subscribe_to_readable_events(s, on_readable, NULL);
 *     on_readable(s, error, user_data):
 *       char b[2048]; rs_datagram_t d = {0}; d.data = b; d.capacity = sizeof b;
 *       while (rs_socket_recv_from(s, &d) == RS_OK)  // RS_EAGAIN: drained
 *           rs_socket_send_to(s, &d.endpoint, rs_byte_cursor_from_array(b, d.len));
 *
 *   Client by name: resolve, Happy Eyeballs, then your pipeline.
 *       rs_client_bootstrap_options_t co = {0}; co.group = g;
 *       rs_client_bootstrap_t *cb = rs_client_bootstrap_new(&co, &err);
 *       rs_client_connect_options_t c = {0};
 *       c.host = "example.com"; c.port = 80;
 *       c.installers = inst; c.installer_count = 1;
 *       c.on_setup = on_setup;        // once: (channel, RS_OK) or (NULL, err)
 *       c.on_shutdown = on_shutdown;  // once, only after a successful setup
 *       rs_client_bootstrap_connect(cb, &c);
 *       ... rs_channel_shutdown(channel, RS_OK); rs_client_bootstrap_destroy(cb);
 *
 *   Clean stop on SIGINT: a signal watcher, made in main() before any thread
 *   starts, so every thread inherits the blocked signal (see >>signal).
 *       static void on_sigint(rs_signal_watcher_t *w, int sig, uint32_t n, void *u)
 *           { rs_event_loop_stop((rs_event_loop_t *)u); }
 *       rs_event_loop_t *loop = rs_event_loop_new(NULL, &err);
 *       rs_signal_watcher_t *w;
 *       rs_signal_watcher_new(loop, SIGINT, on_sigint, loop, &w);
 *       rs_event_loop_start(loop); rs_event_loop_wait(loop);  // back after ^C
 *       rs_signal_watcher_destroy(w); rs_event_loop_destroy(loop);
 *     With a group, block SIGINT in main (pthread_sigmask) before
 *     rs_event_loop_group_new, make the watcher on one of its loops (from a
 *     task), and have the callback wake main, which then destroys the
 *     listener and the group.
 *
 * UTILITIES (for protocol clients built on the loop)
 *   rs_future_t       a result that arrives later: set once from any thread;
 *                     one callback, run on a loop (or a channel's loop), never
 *                     inline; rs_future_wait for threads off the loop.
 *   rs_retry_strategy_t  acquire a token per partition, schedule_retry after
 *                     a failure (the wait is a loop task), record_success,
 *                     release. Exponential backoff (500 ms x 2^n, cap 20 s,
 *                     5 retries, FULL jitter), standard (plus a 500-token
 *                     bucket per partition: a retry costs 10 or 5, a success
 *                     refunds) and no-retry. See examples/retry_connect.c.
 *   rs_input_stream_t / rs_async_input_stream_t  bytes from memory, a file or
 *                     your vtable; the async form completes a future, one
 *                     read in flight, and wraps a blocking stream on a worker.
 *
 * LIFETIMES
 *   rs_x_new / rs_x_destroy for objects reseau allocates; rs_x_init /
 *   rs_x_cleanup for caller-owned storage. Tasks are intrusive: embed rs_task_t
 *   in your struct. A scheduled task runs exactly once: RUN, or CANCELED when
 *   canceled or when its loop is destroyed.
 *
 * ERRORS AND MEMORY
 *   Fallible functions return RS_OK (0) or a negative RS_Exxx code; see
 *   rs_strerror() and rs_err_name(). Constructors returning a pointer take
 *   `int *err_out` (may be NULL). Options structs take an rs_allocator_t
 *   (NULL: libc); out-of-memory is RS_ENOMEM, never an abort. Logging is
 *   silent until rs_log_set() installs a hook (rs_log_stderr is provided).
 *
 *   A NULL handle (loop, group, task, async, signal watcher, socket, pipe
 *   end, channel, slot, handler, message, testing channel), or a NULL
 *   required pointer beside one,
 *   never crashes: an int result is RS_EINVAL (a NULL handle is checked before
 *   the thread check; on loop-bound sockets and slots a NULL argument beside it
 *   is checked after, so an off-thread call always says RS_EWRONGTHREAD);
 *   a void call does nothing; a pointer result is NULL (*err_out RS_EINVAL);
 *   bool is false, a count 0, a backend DEFAULT, rs_socket_get_fd -1.
 *
 * CONTENTS (search for the >> markers)
 *   >>config      platform flags, RESEAU_API, RESEAU_ASSERT
 *   >>result      result codes
 *   >>alloc       allocator
 *   >>log         logging
 *   >>clock       monotonic clock
 *   >>thread      threads, mutex, condvar, once, CPU count
 *   >>list        intrusive list
 *   >>buffer      byte cursor and byte buffer
 *   >>task        tasks
 *   >>event_loop  event loop: tasks, I/O subscriptions, run modes
 *   >>trace       tracing hooks: task, I/O, channel and TLS events
 *   >>group       event-loop group
 *   >>signal      signal watchers (signalfd, a self-pipe, or Windows console events)
 *   >>address     endpoints, strict IPv4/IPv6 parsing and formatting
 *   >>socket      TCP, UDP, Unix and VSOCK sockets
 *   >>pipe        pipes (a socketpair; on Windows a named pipe)
 *   >>resolver    host resolver: cache, background lookups, failure tracking
 *   >>channel     channels, slots, handlers, messages, windows, shutdown
 *   >>socket_handler  the socket channel handler
 *   >>testing_channel a socket-less pipeline for testing handlers
 *   >>transport_handler a pipeline's left end over a data source of yours
 *   >>installer   channel installers: how bootstraps build pipelines
 *   >>client      client bootstrap: resolve, Happy Eyeballs, pipeline
 *   >>server      server bootstrap: listener, accepted pipelines
 *   >>pem         PEM: parse text or files into {label, DER}, DER to PEM
 *   >>future      futures: single-assignment results with loop callbacks
 *   >>retry       retry strategies: exponential backoff, standard, no retry
 *   >>stream      input streams (memory, file, yours) and async input streams
 *   >>shared_library  load a shared library (dlopen, LoadLibraryW), find its functions
 *   Implementation: the same names with .c (>>event_loop.c), plus
 *   >>platform.c, >>atomic.c, >>thread_none.c (RESEAU_NO_THREADS), >>heap.c, >>scheduler.c,
 *   >>epoll.c, >>poll.c, >>kqueue.c, >>io_uring.c, >>none.c (no OS: tasks only),
 *   >>custom.c (your own wait and wakeup),
 *   >>sockaddr.c, >>socket_posix.c, >>udp_posix.c, >>sockopt_posix.c, >>message_pool.c,
 *   >>pipeline.c; for Windows >>thread_win.c, >>iocp.c, >>socket_win.c (TCP and UDP
 *   on the completion port), >>pipe_win.c (pipes as overlapped named pipes) and
 *   >>net_win.c (what is not ported yet: RS_ENOTSUP). >>resolver.c is one file
 *   for both, getaddrinfo on worker threads.
 */
#if (defined(RESEAU_IMPLEMENTATION) || defined(RESEAU_TLS_IMPLEMENTATION)) && defined(__linux__) && \
    !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif

#ifndef RESEAU_H
#define RESEAU_H

#include "base/config.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "base/result.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/clock.h"
#include "base/thread.h"
#include "base/list.h"
#include "base/buffer.h"
#include "loop/task.h"
#include "loop/event_loop.h"
#include "loop/trace.h"
#include "loop/group.h"
#include "loop/signal.h"
#include "net/address.h"
#if !RS__NO_SOCKETS
#include "net/socket.h"
#include "net/pipe.h"
#include "net/resolver.h"
#endif
#include "channel/channel.h"
#if !RS__NO_SOCKETS
#include "channel/socket_handler.h"
#endif
#include "channel/testing_channel.h"
#include "channel/transport_handler.h"
#if !RS__NO_SOCKETS
#include "bootstrap/installer.h"
#include "bootstrap/client.h"
#include "bootstrap/server.h"
#endif
#include "util/pem.h"
#include "util/future.h"
#include "util/retry.h"
#include "util/stream.h"
#include "util/shared_library.h"

#ifdef __cplusplus
}
#endif

#endif /* RESEAU_H */

#if defined(RESEAU_IMPLEMENTATION) && !defined(RESEAU_IMPLEMENTATION_DONE)
#define RESEAU_IMPLEMENTATION_DONE

#include "base/platform.c"

#ifdef __cplusplus
extern "C" {
#endif

#include "base/atomic.c"
#include "base/result.c"
#include "base/alloc.c"
#include "base/log.c"
#include "base/clock.c"
#include "base/thread.c"
#include "base/thread_win.c"
#include "base/thread_none.c"
#include "base/heap.c"
#include "base/buffer.c"
#include "loop/trace.c"
#include "loop/scheduler.c"
#include "loop/event_loop_private.c"
#include "loop/epoll.c"
#include "loop/poll.c"
#include "loop/kqueue.c"
#include "loop/io_uring.c"
#include "loop/iocp.c"
#include "loop/none.c"
#include "loop/custom.c"
#include "loop/event_loop.c"
#include "loop/group.c"
#include "loop/signal.c"
#include "net/address.c"
#if !RS__NO_SOCKETS
#include "net/sockaddr.c"
#include "net/socket_core.h"
#include "net/socket_posix.c"
#include "net/socket_uring.c"
#include "net/udp_posix.c"
#include "net/sockopt_posix.c"
#include "net/pipe.c"
#include "net/socket_win.c"
#include "net/pipe_win.c"
#include "net/net_win.c"
/* After >>socket_win.c, whose Winsock start-up the resolver uses on Windows. */
#include "net/resolver.c"
#include "net/socket_core.c"
#endif
#include "channel/message_pool.c"
#include "channel/channel.c"
#if !RS__NO_SOCKETS
#include "channel/socket_handler.c"
#endif
#include "channel/testing_channel.c"
#include "channel/transport_handler.c"
#if !RS__NO_SOCKETS
#include "bootstrap/pipeline.c"
#include "bootstrap/client.c"
#include "bootstrap/server.c"
#endif
#include "util/pem.c"
#include "util/future.c"
#include "util/retry.c"
#include "util/stream.c"
#include "util/shared_library.c"

#ifdef __cplusplus
}
#endif

#endif /* RESEAU_IMPLEMENTATION */

/*
 * Copyright (c) 2026 the reseau authors
 *
 * Permission is hereby granted, free of charge, to any person obtaining a copy
 * of this software and associated documentation files (the "Software"), to deal
 * in the Software without restriction, including without limitation the rights
 * to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 * copies of the Software, and to permit persons to whom the Software is
 * furnished to do so, subject to the following conditions:
 *
 * The above copyright notice and this permission notice shall be included in
 * all copies or substantial portions of the Software.
 *
 * THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 * IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 * FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 * AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 * LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 * OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
 * SOFTWARE.
 */
