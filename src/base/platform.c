/*
 * System headers for the implementation. Kept in one place so that platform
 * code does not scatter includes; everything OS-specific below is guarded by
 * the RESEAU_OS_xxx flags from config.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if RESEAU_OS_POSIX
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
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
