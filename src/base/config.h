/*
 * Configuration and platform detection.
 *
 * Platform flags are always defined, as (1) or (0), and tested with #if.
 * User-overridable macros (define them before including reseau.h):
 *   RESEAU_API     storage class of every public function (default: extern,
 *                  or static when RESEAU_STATIC is defined).
 *   RESEAU_ASSERT  internal invariant check (default: assert()). Never used to
 *                  validate caller input: bad input gets an RS_Exxx result.
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

#if !RESEAU_OS_WINDOWS
#define RESEAU_OS_POSIX (1)
#else
#define RESEAU_OS_POSIX (0)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define RS__UNUSED __attribute__((unused))
#define RS__PRINTF(fmt_index, args_index) __attribute__((format(printf, fmt_index, args_index)))
#else
#define RS__UNUSED
#define RS__PRINTF(fmt_index, args_index)
#endif

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

#if RESEAU_OS_POSIX
#include <pthread.h>
#endif

/* Recover the struct that embeds `ptr` as its `member` (intrusive containers). */
#define RS_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
