/*
 * System headers for the implementation, and the RS__HAVE_xxx feature tests
 * (at the end). Kept in one place so that platform code does not scatter
 * includes or #ifdefs; the includes are guarded by the RESEAU_OS_xxx flags
 * from config.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if RESEAU_OS_POSIX
#include <fcntl.h>
#include <net/if.h> /* if_nametoindex: >>address's IPv6 zone names, with or without sockets */
#if !RS__NO_SOCKETS /* name lookup, TCP options and Unix paths: the socket layer's */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#endif
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>
#include <dlfcn.h> /* >>shared_library.c; -ldl before glibc 2.34 */
#endif

#if RESEAU_OS_WINDOWS
/* Only in the translation unit with the implementation: the declarations
 * need no Windows header. winsock2.h must come before windows.h, which would
 * otherwise pull in the old winsock.h. WIN32_LEAN_AND_MEAN keeps windows.h
 * from including winsock.h and much else; NOMINMAX keeps its min and max
 * macros out of C++ code in this file. Both are left to the user if set. */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <mswsock.h> /* AcceptEx, ConnectEx: looked up at run time, no mswsock library */
#include <mstcpip.h> /* SIO_KEEPALIVE_VALS */
#include <fcntl.h>
#include <io.h>
#include <process.h>
#if RS__ATOMICS_INTERLOCKED
#include <intrin.h> /* _ReadWriteBarrier, which MSVC's windows.h need not declare */
#endif
#include <signal.h> /* SIGINT, SIGBREAK: the console events signal watchers take */
#endif

#if RESEAU_OS_LINUX
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <linux/vm_sockets.h>
#endif

#if RESEAU_HAVE_KQUEUE
#include <sys/event.h>
#include <sys/time.h>
#endif

#if defined(__FreeBSD__) || defined(__OpenBSD__)
#include <pthread_np.h>
#endif

/*
 * Feature tests. Each difference between the POSIX systems reseau runs on is
 * one RS__HAVE_xxx macro, (1) or (0), decided here and nowhere else. The code
 * tests the macro, and where a difference needs another code path, that path
 * lives in one small function (rs__accept_fd, rs__dgram_send_some, ...).
 *
 * RESEAU_TEST_PORTABLE_POSIX (test-only, see config.h) turns off every Linux
 * mechanism that has a portable replacement, so that the replacement runs in
 * Linux CI: the macros marked [portable] below. Linux-only capabilities with
 * no replacement (VSOCK, abstract Unix names, SO_BINDTODEVICE) and option
 * names (keepalive) stay as the system has them: turned off they would only
 * return RS_ENOTSUP, which is all the BSDs do with them.
 */
#if defined(RESEAU_TEST_PORTABLE_POSIX)
#define RS__PORTABLE_TEST (1)
#else
#define RS__PORTABLE_TEST (0)
#endif
#define RS__LINUX_PATHS (RESEAU_OS_LINUX && !RS__PORTABLE_TEST)

/* [portable] socket() and socketpair() take SOCK_NONBLOCK | SOCK_CLOEXEC
 * (Linux, the BSDs); otherwise fcntl after creation (macOS). */
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC) && !RS__PORTABLE_TEST
#define RS__HAVE_SOCK_FLAGS (1)
#define RS__SOCK_FLAGS (SOCK_NONBLOCK | SOCK_CLOEXEC)
#else
#define RS__HAVE_SOCK_FLAGS (0)
#define RS__SOCK_FLAGS (0)
#endif

/* [portable] accept4 with the same flags (Linux, FreeBSD 10, OpenBSD 5.7,
 * NetBSD 8, DragonFly 4.4); otherwise accept, then fcntl. */
#define RS__HAVE_ACCEPT4 (RS__HAVE_SOCK_FLAGS && (RESEAU_OS_LINUX || RESEAU_OS_BSD))

/* [portable] MSG_NOSIGNAL on each send keeps a write to a closed peer from
 * raising SIGPIPE (Linux, the BSDs). Without it (macOS) every socket gets
 * SO_NOSIGPIPE instead. With neither, which only the portable test build on
 * Linux has, SIGPIPE is raised and the program must ignore it (the tests do,
 * see tests/test_util.h); the write still fails with RS_EPIPE. */
#if defined(MSG_NOSIGNAL) && !RS__PORTABLE_TEST
#define RS__HAVE_MSG_NOSIGNAL (1)
#define RS__MSG_NOSIGNAL MSG_NOSIGNAL
#else
#define RS__HAVE_MSG_NOSIGNAL (0)
#define RS__MSG_NOSIGNAL (0)
#endif
#if defined(SO_NOSIGPIPE)
#define RS__HAVE_SO_NOSIGPIPE (1)
#define RS__SO_NOSIGPIPE SO_NOSIGPIPE
#else
#define RS__HAVE_SO_NOSIGPIPE (0)
#define RS__SO_NOSIGPIPE (0)
#endif

/* [portable] membarrier(2)'s private expedited barrier (Linux 4.14+), which
 * lets a loop thread's trace emits mark themselves with a plain store where
 * they would otherwise need a locked exchange (>>trace). Whether the kernel
 * allows it is found at run time. */
#if RS__LINUX_PATHS && !RS__NO_THREADS && !RS__ATOMICS_PLAIN && !RS__ATOMICS_INTERLOCKED && defined(__NR_membarrier)
#define RS__HAVE_MEMBARRIER (1)
#else
#define RS__HAVE_MEMBARRIER (0)
#endif

/* [portable] sendmmsg/recvmmsg (Linux); otherwise the batch calls loop over
 * sendmsg/recvmsg, with the same counts and errors. FreeBSD's are such a loop
 * in libc, so only Linux gains from them. */
#define RS__HAVE_MMSG RS__LINUX_PATHS

/* [portable] struct ip_mreqn (an interface index as well as an address) for
 * IPv4 multicast membership and IP_MULTICAST_IF (Linux); otherwise ip_mreq
 * and in_addr, which name the interface by address only. */
#define RS__HAVE_IP_MREQN RS__LINUX_PATHS

/* [portable] IP_MULTICAST_TTL and IP_MULTICAST_LOOP take an int (Linux); the
 * BSDs take only an unsigned char, which Linux accepts too. */
#define RS__HAVE_IP_MULTICAST_INT RS__LINUX_PATHS

/* [portable] Signal watchers read a signalfd (Linux); otherwise a self-pipe
 * fed by a sigaction handler. RESEAU_NO_SIGNALFD also picks the self-pipe. */
#if RS__LINUX_PATHS && !defined(RESEAU_NO_SIGNALFD)
#define RS__HAVE_SIGNALFD (1)
#else
#define RS__HAVE_SIGNALFD (0)
#endif

/* [portable] The usable CPU count narrows the online count by the thread's
 * affinity mask (sched_getaffinity) and a cgroup v2 cpu.max quota (Linux).
 * Elsewhere it is sysconf(_SC_NPROCESSORS_ONLN), which is hw.activecpu on
 * macOS and hw.ncpuonline on OpenBSD and NetBSD. */
#define RS__HAVE_SCHED_GETAFFINITY RS__LINUX_PATHS
#define RS__HAVE_CGROUP_CPU_MAX RS__LINUX_PATHS

/* TCP keepalive timers per socket. The idle time is TCP_KEEPIDLE, or
 * TCP_KEEPALIVE on macOS; TCP_KEEPINTVL and TCP_KEEPCNT exist on Linux, the
 * BSDs but OpenBSD, and macOS 10.8 and later. A missing one makes a non-zero
 * value RS_ENOTSUP (OpenBSD sets all three system-wide only). */
#if defined(TCP_KEEPIDLE)
#define RS__HAVE_TCP_KEEPIDLE (1)
#define RS__TCP_KEEPIDLE TCP_KEEPIDLE
#elif defined(TCP_KEEPALIVE)
#define RS__HAVE_TCP_KEEPIDLE (1)
#define RS__TCP_KEEPIDLE TCP_KEEPALIVE
#else
#define RS__HAVE_TCP_KEEPIDLE (0)
#define RS__TCP_KEEPIDLE (0)
#endif
#if defined(TCP_KEEPINTVL)
#define RS__HAVE_TCP_KEEPINTVL (1)
#define RS__TCP_KEEPINTVL TCP_KEEPINTVL
#else
#define RS__HAVE_TCP_KEEPINTVL (0)
#define RS__TCP_KEEPINTVL (0)
#endif
#if defined(TCP_KEEPCNT)
#define RS__HAVE_TCP_KEEPCNT (1)
#define RS__TCP_KEEPCNT TCP_KEEPCNT
#else
#define RS__HAVE_TCP_KEEPCNT (0)
#define RS__TCP_KEEPCNT (0)
#endif

/* Binding a socket to a network interface: SO_BINDTODEVICE by name (Linux),
 * or IP_BOUND_IF / IPV6_BOUND_IF by index (macOS); RS_ENOTSUP elsewhere. */
#if defined(SO_BINDTODEVICE)
#define RS__HAVE_SO_BINDTODEVICE (1)
#else
#define RS__HAVE_SO_BINDTODEVICE (0)
#endif
#if defined(IP_BOUND_IF) && defined(IPV6_BOUND_IF)
#define RS__HAVE_IP_BOUND_IF (1)
#else
#define RS__HAVE_IP_BOUND_IF (0)
#endif

/* SO_REUSEPORT. Only Linux spreads connections over the sockets sharing a
 * port; the BSDs and macOS let them share it and give each new one to the last. */
#if defined(SO_REUSEPORT)
#define RS__HAVE_SO_REUSEPORT (1)
#define RS__SO_REUSEPORT SO_REUSEPORT
#else
#define RS__HAVE_SO_REUSEPORT (0)
#define RS__SO_REUSEPORT (0)
#endif

/* Linux-only address families: AF_VSOCK and abstract Unix names ("@name"). */
#define RS__HAVE_VSOCK RESEAU_OS_LINUX
#define RS__HAVE_ABSTRACT_UNIX RESEAU_OS_LINUX

/* Whether an enum value passed in by a caller is one of lo..hi. A function,
 * because where enums are short (arm-none-eabi's -fshort-enums makes these
 * one unsigned byte) an inline `(int)e < 0` is always false, and gcc's
 * -Wtype-limits says so; a parameter has int's range, whatever the caller
 * passed. */
static inline bool rs__enum_in_range(int value, int lo, int hi) {
    return value >= lo && value <= hi;
}
