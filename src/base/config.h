/*
 * Configuration and platform detection.
 *
 * Platform flags are always defined, as (1) or (0), and tested with #if.
 * User-overridable macros (define them before including reseau.h):
 *   RESEAU_API     storage class of every public function (default: extern,
 *                  or static when RESEAU_STATIC is defined).
 *   RESEAU_ASSERT  internal invariant check (default: assert()). Never used to
 *                  validate caller input: bad input gets an RS_Exxx result.
 *   RESEAU_ATOMICS_INTERLOCKED  build the atomics (>>atomic) on the Windows
 *                  Interlocked* functions, as MSVC does, instead of the
 *                  GCC/Clang __atomic builtins. Windows only; meant for
 *                  mingw-w64, where it is how the MSVC atomics are tested.
 *   RESEAU_NO_THREADS  a single-threaded build (>>thread): no thread calls,
 *                  mutexes and condition variables do nothing, atomics are
 *                  plain loads and stores, and whatever needs a thread
 *                  returns RS_ENOTSUP. Loops run through run_once only.
 *   RESEAU_NO_SOCKETS  no OS socket layer: >>socket, >>pipe, >>resolver,
 *                  >>socket_handler, >>installer, >>client and >>server are
 *                  left out, declarations included. Addresses, the channel
 *                  and the testing channel stay.
 *   RESEAU_NO_TRACE  the tracing hooks (>>trace) compiled out: not even the
 *                  one branch per event is left; rs_trace_set_tracer
 *                  returns RS_ENOTSUP.
 * Without an OS (neither Windows nor a Unix: RESEAU_OS_NONE, such as
 * arm-none-eabi firmware) both are required, and the loop has no I/O backend
 * (see >>none.c).
 * Test-only (reseau's own tests; never define it in a program):
 *   RESEAU_TEST_PORTABLE_POSIX  take the portable POSIX paths that macOS and
 *                  the BSDs take even where Linux has a faster one (no accept4
 *                  or SOCK_NONBLOCK/SOCK_CLOEXEC, no MSG_NOSIGNAL, no
 *                  sendmmsg/recvmmsg, no signalfd, ...), so that Linux CI runs
 *                  them. Linux has no SO_NOSIGPIPE either, so a write to a
 *                  closed peer raises SIGPIPE: the test program ignores it.
 *                  The RS__HAVE_xxx feature tests are at the end of >>platform.c.
 *   RESEAU_TEST_INTERLOCKED_U64_CAS  with RESEAU_ATOMICS_INTERLOCKED on
 *                  64-bit Windows, do every 64-bit atomic with
 *                  InterlockedCompareExchange64, as 32-bit Windows must, so
 *                  that path runs under Wine (which runs no 32-bit programs
 *                  here).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdarg.h>

#if defined(_WIN32)
#define RESEAU_OS_WINDOWS (1)
#else
#define RESEAU_OS_WINDOWS (0)
#endif

#if defined(__linux__)
#define RESEAU_OS_LINUX (1)
#else
#define RESEAU_OS_LINUX (0)
#endif

#if defined(__APPLE__)
#define RESEAU_OS_APPLE (1)
#else
#define RESEAU_OS_APPLE (0)
#endif

#if defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || defined(__DragonFly__)
#define RESEAU_OS_BSD (1)
#else
#define RESEAU_OS_BSD (0)
#endif

/* The kqueue backend: built on macOS and the BSDs. Elsewhere, define
 * RESEAU_HAVE_KQUEUE to 1 and put a kqueue emulation's <sys/event.h> on the
 * include path (libkqueue on Linux, which is how it is tested here). */
#ifndef RESEAU_HAVE_KQUEUE
#if RESEAU_OS_APPLE || RESEAU_OS_BSD
#define RESEAU_HAVE_KQUEUE (1)
#else
#define RESEAU_HAVE_KQUEUE (0)
#endif
#endif

/* No OS at all: a bare-metal C library (newlib, picolibc) and nothing else. */
#if !defined(_WIN32) && !defined(__unix__) && !defined(__unix) && !defined(__APPLE__)
#define RESEAU_OS_NONE (1)
#else
#define RESEAU_OS_NONE (0)
#endif

#if !RESEAU_OS_WINDOWS && !RESEAU_OS_NONE
#define RESEAU_OS_POSIX (1)
#else
#define RESEAU_OS_POSIX (0)
#endif

/* The feature toggles as (1) or (0), so that code tests them with #if. */
#if defined(RESEAU_NO_THREADS)
#define RS__NO_THREADS (1)
#else
#define RS__NO_THREADS (0)
#endif
#if defined(RESEAU_NO_SOCKETS)
#define RS__NO_SOCKETS (1)
#else
#define RS__NO_SOCKETS (0)
#endif
#if defined(RESEAU_NO_TRACE)
#define RS__NO_TRACE (1)
#else
#define RS__NO_TRACE (0)
#endif
#if RESEAU_OS_NONE && (!RS__NO_THREADS || !RS__NO_SOCKETS)
#error "reseau: without an OS, define RESEAU_NO_THREADS and RESEAU_NO_SOCKETS"
#endif

/* MSVC has neither attribute. Unused static functions draw no warning from
 * it below /W4 (C4505 there), and its printf format checks come from SAL
 * annotations on the parameter, which this placement cannot express. */
#if defined(__GNUC__) || defined(__clang__)
#define RS__UNUSED __attribute__((unused))
#define RS__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RS__PRINTF(fmt_index, args_index) __attribute__((format(printf, fmt_index, args_index)))
#else
#define RS__UNUSED
#define RS__UNLIKELY(x) (x)
#define RS__PRINTF(fmt_index, args_index)
#endif

/* Which atomics (>>atomic): Interlocked* on MSVC, whose C compiler has no
 * __atomic builtins, and wherever RESEAU_ATOMICS_INTERLOCKED asks; the
 * builtins everywhere else. clang-cl defines _MSC_VER too but keeps the
 * builtins: they are clang's own, which the Linux builds test. */
#if defined(RESEAU_ATOMICS_INTERLOCKED) || (defined(_MSC_VER) && !defined(__clang__))
#define RS__ATOMICS_INTERLOCKED (1)
#else
#define RS__ATOMICS_INTERLOCKED (0)
#endif
/* RESEAU_NO_THREADS: plain loads and stores (a third set in >>atomic), which
 * every compiler and CPU has; Cortex-M0 has no atomic instructions at all,
 * and Cortex-M3/M4 none for 64 bits. */
#if RS__NO_THREADS
#define RS__ATOMICS_PLAIN (1)
#else
#define RS__ATOMICS_PLAIN (0)
#endif

/* 64-bit atomics need 8-byte alignment, which i386 does not give uint64_t (4,
 * in structs too): the __atomic builtins and Interlocked*64 assume it, and an
 * access split across cache lines is not atomic. So every field handed to rs__atomic_*_u64 is
 * declared RS__ALIGN8 and checked next to its struct with RS__ASSERT_ALIGN8. */
#if defined(_MSC_VER)
#define RS__ALIGN8 __declspec(align(8))
#define RS__ALIGNOF(type) __alignof(type)
#else
#define RS__ALIGN8 __attribute__((aligned(8)))
#define RS__ALIGNOF(type) __alignof__(type)
#endif

/* Compile-time check for C99, C11 and C++ alike: a negative array size fails.
 * `name` must be unique in the translation unit. */
#define RS__STATIC_ASSERT(cond, name) typedef char rs__static_assert_##name[(cond) ? 1 : -1]

/* `field` (a member designator, such as stats.ticks) is 8-byte aligned in every
 * object of struct type `type` that is itself allocated as alignof(type) asks. */
#define RS__ASSERT_ALIGN8(type, field, name) \
    RS__STATIC_ASSERT(RS__ALIGNOF(type) >= 8 && offsetof(type, field) % 8 == 0, align8_##name)

#ifndef RESEAU_API
#if defined(RESEAU_STATIC)
/* Unused is intentional: a single-file tool uses a fraction of the API. */
#define RESEAU_API static RS__UNUSED
#else
#define RESEAU_API extern
#endif
#endif

#ifndef RESEAU_ASSERT
#include <assert.h>
#define RESEAU_ASSERT(cond) assert(cond)
#endif

#if RESEAU_OS_POSIX && !RS__NO_THREADS
#include <pthread.h>
#endif

/* Recover the struct that embeds `ptr` as its `member` (intrusive containers). */
#define RS_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
