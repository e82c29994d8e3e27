/*
 * A syntax-check shim, not a macOS header: lets src/net.c's __APPLE__ code be
 * compiled on Linux (tests/cli/net-darwin-syntax.sh) so that it is at least
 * type-checked. The declarations follow the BSD/XNU definitions in
 * <sys/sockio.h> and <net/if.h>; the ioctl numbers are never used here.
 */
#ifndef CORK_SHIM_SYS_SOCKIO_H
#define CORK_SHIM_SYS_SOCKIO_H
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

struct ifaliasreq {
	char ifra_name[IFNAMSIZ];
	struct sockaddr ifra_addr;
	struct sockaddr ifra_broadaddr;
	struct sockaddr ifra_mask;
};
#define SIOCAIFADDR _IOW('i', 26, struct ifaliasreq)
#undef SIOCDIFADDR
#define SIOCDIFADDR _IOW('i', 25, struct ifreq)

/* BSD sockaddrs carry a length byte; glibc's do not. Map it onto padding so
 * that assignments to sin_len type-check. */
#define sin_len sin_zero[7]
#endif
