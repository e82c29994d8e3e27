/*
 * net.c: require "cork.net", the loopback alias pool.
 *
 *   addresses(iface)            -> { "127.0.0.1", ... }   IPv4 only, kernel order
 *   alias_add(iface, ip)        -> true (added) | false (already there)
 *   alias_remove(iface, ip)     -> true
 *   ensure_pool{iface=, first=, last=, sudo=} -> report table
 *
 * Linux talks rtnetlink directly (RTM_NEWADDR / RTM_DELADDR / RTM_GETROUTE):
 * no `ip` subprocess. macOS uses the SIOCAIFADDR / SIOCDIFADDR ioctls on lo0
 * and, when cork is not root, one `sudo` for the missing entries only.
 *
 * Error kinds: "usage" (not an IPv4 address, bad pool), "not_found" (no such
 * interface), "not_assigned" (removing an address the interface does not
 * have), "permission" (needs root / CAP_NET_ADMIN), "not_local" (Linux: the
 * pool is not routed to this host), "io" (anything else the kernel said).
 *
 * Every check happens before a socket is opened; sockets are closed before
 * any Lua error is raised, so nothing leaks on the error path.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/time.h>
#endif

#ifdef __APPLE__
#include <spawn.h>
#include <sys/sockio.h>
#include <sys/wait.h>
extern char **environ;
#endif

#include "runtime.h"
#include "modules.h"

#ifdef __APPLE__
#define NET_DEFAULT_IFACE "lo0"
#else
#define NET_DEFAULT_IFACE "lo"
#endif
#define NET_POOL_FIRST "127.0.0.16"
#define NET_POOL_LAST "127.0.0.31"
#define NET_POOL_MAX 1024

/* ---- checks (all of them raise before anything is done) ------------------ */

static const char *check_iface(lua_State *L, int idx)
{
	size_t len;
	const char *name = luaL_checklstring(L, idx, &len);
	if (len == 0 || len >= IFNAMSIZ)
		cork_raise(L, "usage", "bad interface name '%s'", name);
	return name;
}

static struct in_addr check_ipv4_value(lua_State *L, const char *s, const char *what)
{
	struct in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1)
		cork_raise(L, "usage", "%s: '%s' is not an IPv4 address", what, s);
	return a;
}

static unsigned check_ifindex(lua_State *L, const char *iface)
{
	unsigned idx = if_nametoindex(iface);
	if (idx == 0)
		cork_raise(L, "not_found", "no such network interface '%s'", iface);
	return idx;
}

/* ---- listing ------------------------------------------------------------ */

/* 1 if iface carries addr, 0 if not, -1 (errno set) when getifaddrs failed. */
static int net_has_address(const char *iface, struct in_addr addr)
{
	struct ifaddrs *all, *it;
	int found = 0;
	if (getifaddrs(&all) != 0)
		return -1;
	for (it = all; it; it = it->ifa_next) {
		if (!it->ifa_addr || it->ifa_addr->sa_family != AF_INET)
			continue;
		if (strcmp(it->ifa_name, iface) != 0)
			continue;
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(void *)it->ifa_addr;
		if (sin->sin_addr.s_addr == addr.s_addr) {
			found = 1;
			break;
		}
	}
	freeifaddrs(all);
	return found;
}

/* Count the IPv4 addresses of iface; -1 (errno set) when getifaddrs fails.
 * With out != NULL, also copy up to cap of them there. */
static long net_collect(const char *iface, char (*out)[INET_ADDRSTRLEN], size_t cap)
{
	struct ifaddrs *all, *it;
	long n = 0;
	if (getifaddrs(&all) != 0)
		return -1;
	for (it = all; it; it = it->ifa_next) {
		if (!it->ifa_addr || it->ifa_addr->sa_family != AF_INET)
			continue;
		if (strcmp(it->ifa_name, iface) != 0)
			continue;
		if (out && (size_t)n < cap) {
			const struct sockaddr_in *sin =
			    (const struct sockaddr_in *)(void *)it->ifa_addr;
			inet_ntop(AF_INET, &sin->sin_addr, out[n], INET_ADDRSTRLEN);
		}
		n++;
	}
	freeifaddrs(all);
	return n;
}

static int net_addresses(lua_State *L)
{
	const char *iface = check_iface(L, 1);
	check_ifindex(L, iface);
	cork_checkpoint(L);
	/* Count, then copy into a Lua-owned buffer: no C allocation is alive
	 * when Lua may raise (out of memory). */
	long n = net_collect(iface, NULL, 0);
	if (n < 0)
		return cork_raise(L, "io", "listing addresses: %s", strerror(errno));
	size_t cap = (size_t)n + 8; /* room for addresses added meanwhile */
	char (*buf)[INET_ADDRSTRLEN] = lua_newuserdatauv(L, cap * INET_ADDRSTRLEN, 0);
	n = net_collect(iface, buf, cap);
	if (n < 0)
		return cork_raise(L, "io", "listing addresses: %s", strerror(errno));
	if ((size_t)n > cap)
		n = (long)cap;
	lua_createtable(L, (int)n, 0);
	for (long i = 0; i < n; i++) {
		lua_pushstring(L, buf[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* ---- platform back ends --------------------------------------------------
 * Each returns 0 or an errno value; none touches the Lua state. */

#ifdef __linux__

struct nl_req {
	struct nlmsghdr nh;
	union {
		struct ifaddrmsg ifa;
		struct rtmsg rt;
	} u;
	char attrs[64];
};

static void nl_add_attr(struct nlmsghdr *nh, unsigned short type, const void *data,
                        unsigned short len)
{
	struct rtattr *rta = (struct rtattr *)(void *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));
	rta->rta_type = type;
	rta->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

static int nl_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -1;
	struct sockaddr_nl sa;
	memset(&sa, 0, sizeof sa);
	sa.nl_family = AF_NETLINK;
	struct timeval tv = {5, 0};
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Send one request and read replies until the ack (or, for RTM_GETROUTE,
 * the answer). On a route answer, *rtype gets the route type. */
static int nl_talk(struct nlmsghdr *req, unsigned char *rtype)
{
	int fd = nl_open();
	if (fd < 0)
		return errno;
	/* A fresh socket per request only ever sees replies to it, so the
	 * sequence number need not be unique across calls (no static counter:
	 * runtimes on other threads share nothing). */
	uint32_t seq = (uint32_t)getpid() ^ ((uint32_t)fd << 20);
	req->nlmsg_seq = seq;
	struct sockaddr_nl kernel;
	memset(&kernel, 0, sizeof kernel);
	kernel.nl_family = AF_NETLINK;
	int err = 0;
	if (sendto(fd, req, req->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
		err = errno;
		goto out;
	}
	for (;;) {
		union {
			char buf[8192];
			struct nlmsghdr align;
		} u;
		ssize_t n = recv(fd, u.buf, sizeof u.buf, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = errno == EAGAIN ? ETIMEDOUT : errno;
			goto out;
		}
		for (struct nlmsghdr *nh = &u.align; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
			if (nh->nlmsg_seq != seq)
				continue;
			if (nh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nh);
				err = -e->error;
				goto out;
			}
			if (nh->nlmsg_type == RTM_NEWROUTE && rtype) {
				const struct rtmsg *rt = NLMSG_DATA(nh);
				*rtype = rt->rtm_type;
				err = 0;
				goto out;
			}
			if (nh->nlmsg_type == NLMSG_DONE)
				goto out;
		}
	}
out:
	close(fd);
	return err;
}

static int plat_addr_change(int add, unsigned ifindex, struct in_addr addr)
{
	struct nl_req r;
	memset(&r, 0, sizeof r);
	r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	r.nh.nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
	r.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
	r.u.ifa.ifa_family = AF_INET;
	r.u.ifa.ifa_prefixlen = 32;
	/* Loopback addresses are host-scoped (as the kernel makes 127.0.0.1). */
	r.u.ifa.ifa_scope = (ntohl(addr.s_addr) >> 24) == 127 ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
	r.u.ifa.ifa_index = ifindex;
	/* IFA_LOCAL alone on delete: the kernel then matches the address
	 * whatever its prefix length. */
	nl_add_attr(&r.nh, IFA_LOCAL, &addr, sizeof addr);
	if (add)
		nl_add_attr(&r.nh, IFA_ADDRESS, &addr, sizeof addr);
	return nl_talk(&r.nh, NULL);
}

/* Is addr routed to this host (a route of type local)? 0 yes, else errno;
 * EADDRNOTAVAIL when a route exists but is not local. */
static int plat_route_is_local(struct in_addr addr)
{
	struct nl_req r;
	memset(&r, 0, sizeof r);
	r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
	r.nh.nlmsg_type = RTM_GETROUTE;
	r.nh.nlmsg_flags = NLM_F_REQUEST;
	r.u.rt.rtm_family = AF_INET;
	r.u.rt.rtm_dst_len = 32;
	nl_add_attr(&r.nh, RTA_DST, &addr, sizeof addr);
	unsigned char type = RTN_UNSPEC;
	int err = nl_talk(&r.nh, &type);
	if (err)
		return err;
	return type == RTN_LOCAL ? 0 : EADDRNOTAVAIL;
}

#elif defined(__APPLE__)

static void plat_sin(struct sockaddr_in *sin, struct in_addr addr)
{
	memset(sin, 0, sizeof *sin);
	sin->sin_len = sizeof *sin;
	sin->sin_family = AF_INET;
	sin->sin_addr = addr;
}

static int plat_addr_change(int add, const char *iface, struct in_addr addr)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return errno;
	int rc;
	if (add) {
		struct ifaliasreq ifra;
		struct in_addr mask;
		memset(&ifra, 0, sizeof ifra);
		strncpy(ifra.ifra_name, iface, sizeof ifra.ifra_name - 1);
		mask.s_addr = htonl(0xffffffffu);
		plat_sin((struct sockaddr_in *)(void *)&ifra.ifra_addr, addr);
		plat_sin((struct sockaddr_in *)(void *)&ifra.ifra_broadaddr, addr);
		plat_sin((struct sockaddr_in *)(void *)&ifra.ifra_mask, mask);
		rc = ioctl(fd, SIOCAIFADDR, &ifra);
	} else {
		struct ifreq ifr;
		memset(&ifr, 0, sizeof ifr);
		strncpy(ifr.ifr_name, iface, sizeof ifr.ifr_name - 1);
		plat_sin((struct sockaddr_in *)(void *)&ifr.ifr_addr, addr);
		rc = ioctl(fd, SIOCDIFADDR, &ifr);
	}
	int err = rc == 0 ? 0 : errno;
	close(fd);
	return err;
}

/* One `sudo` for all the addresses: the script is a constant and the
 * addresses (formatted by inet_ntop, never operator text) travel as its
 * arguments, so nothing is interpolated into a shell command line. One
 * password prompt at most, however many addresses are missing. Returns 0,
 * ENOENT (no sudo), or EPERM (sudo refused or ifconfig failed). */
static int plat_sudo_ifconfig(int add, const char *iface, char (*ips)[INET_ADDRSTRLEN], size_t n)
{
	static const char script_add[] =
	    "for a; do /sbin/ifconfig \"$0\" alias \"$a\" 255.255.255.255 || exit 1; done";
	static const char script_del[] =
	    "for a; do /sbin/ifconfig \"$0\" -alias \"$a\" || exit 1; done";
	char **argv = calloc(n + 6, sizeof *argv);
	if (!argv)
		return ENOMEM;
	size_t k = 0;
	argv[k++] = (char *)"sudo";
	argv[k++] = (char *)"/bin/sh";
	argv[k++] = (char *)"-c";
	argv[k++] = (char *)(add ? script_add : script_del);
	argv[k++] = (char *)iface;
	for (size_t i = 0; i < n; i++)
		argv[k++] = ips[i];
	argv[k] = NULL;
	pid_t pid;
	int rc = posix_spawnp(&pid, "sudo", NULL, NULL, argv, environ);
	free(argv);
	if (rc != 0)
		return rc;
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : EPERM;
}

#endif

/* ---- alias_add / alias_remove ------------------------------------------- */

static int net_raise_errno(lua_State *L, int err, const char *what, const char *ip,
                           const char *iface)
{
	const char *kind = cork_errno_kind(err);
	if (strcmp(kind, "permission") == 0)
		return cork_raise(L, kind, "%s %s on %s needs root (CAP_NET_ADMIN): %s",
		                  what, ip, iface, strerror(err));
	if (err == ENODEV)
		return cork_raise(L, kind, "no such network interface '%s'", iface);
	return cork_raise(L, kind, "%s %s on %s: %s", what, ip, iface, strerror(err));
}

static int net_change(lua_State *L, int add)
{
	const char *iface = check_iface(L, 1);
	const char *ip = luaL_checkstring(L, 2);
	struct in_addr addr = check_ipv4_value(L, ip, add ? "alias_add" : "alias_remove");
	unsigned ifindex = check_ifindex(L, iface);
	cork_checkpoint(L);
	char norm[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &addr, norm, sizeof norm);
	int has = net_has_address(iface, addr);
	if (has < 0)
		return cork_raise(L, "io", "listing addresses: %s", strerror(errno));
	if (add && has) {
		lua_pushboolean(L, 0);
		return 1;
	}
	if (!add && !has)
		return cork_raise(L, "not_assigned", "%s is not assigned to %s", norm, iface);
	int err;
#ifdef __linux__
	err = plat_addr_change(add, ifindex, addr);
	if (add && err == EEXIST)
		err = -1; /* raced with another adder: already there */
	if (!add && err == EADDRNOTAVAIL)
		return cork_raise(L, "not_assigned", "%s is not assigned to %s", norm, iface);
#elif defined(__APPLE__)
	(void)ifindex;
	if (geteuid() == 0) {
		err = plat_addr_change(add, iface, addr);
		if (!add && err == EADDRNOTAVAIL)
			return cork_raise(L, "not_assigned", "%s is not assigned to %s", norm, iface);
	} else {
		char one[1][INET_ADDRSTRLEN];
		memcpy(one[0], norm, sizeof norm);
		err = plat_sudo_ifconfig(add, iface, one, 1);
	}
#else
	(void)ifindex;
	err = ENOSYS;
#endif
	if (err == -1) {
		lua_pushboolean(L, 0);
		return 1;
	}
	if (err)
		return net_raise_errno(L, err, add ? "adding" : "removing", norm, iface);
	lua_pushboolean(L, 1);
	return 1;
}

static int net_alias_add(lua_State *L)
{
	return net_change(L, 1);
}

static int net_alias_remove(lua_State *L)
{
	return net_change(L, 0);
}

/* ---- ensure_pool -------------------------------------------------------- */

static const char *const pool_options[] = {"iface", "first", "last", "sudo", NULL};

static int net_ensure_pool(lua_State *L)
{
	int has_opts = !lua_isnoneornil(L, 1);
	if (has_opts)
		luaL_checktype(L, 1, LUA_TTABLE);
	else {
		lua_settop(L, 0);
		lua_newtable(L);
	}
	cork_check_options(L, 1, pool_options);
	const char *iface = cork_opt_string(L, 1, "iface", NET_DEFAULT_IFACE);
	const char *first_s = cork_opt_string(L, 1, "first", NET_POOL_FIRST);
	const char *last_s = cork_opt_string(L, 1, "last", NET_POOL_LAST);
	int use_sudo = cork_opt_boolean(L, 1, "sudo", 1);
	if (strlen(iface) == 0 || strlen(iface) >= IFNAMSIZ)
		cork_raise(L, "usage", "bad interface name '%s'", iface);
	struct in_addr first = check_ipv4_value(L, first_s, "ensure_pool first");
	struct in_addr last = check_ipv4_value(L, last_s, "ensure_pool last");
	uint32_t f = ntohl(first.s_addr), l = ntohl(last.s_addr);
	if ((f >> 24) != 127 || (l >> 24) != 127)
		cork_raise(L, "usage", "ensure_pool: the pool %s-%s must lie in 127.0.0.0/8",
		           first_s, last_s);
	if (f > l)
		cork_raise(L, "usage", "ensure_pool: first %s is after last %s", first_s, last_s);
	if (l - f + 1 > NET_POOL_MAX)
		cork_raise(L, "usage", "ensure_pool: %u addresses is too many (at most %d)",
		           (unsigned)(l - f + 1), NET_POOL_MAX);
	check_ifindex(L, iface);
	cork_checkpoint(L);
	size_t count = l - f + 1;

	/* Result table first (Lua allocations only; no C resources held). */
	lua_createtable(L, 0, 8);
	int res = lua_gettop(L);
	lua_pushstring(L, iface);
	lua_setfield(L, res, "iface");
	lua_pushstring(L, first_s);
	lua_setfield(L, res, "first");
	lua_pushstring(L, last_s);
	lua_setfield(L, res, "last");
	lua_newtable(L);
	int added = lua_gettop(L);
	lua_pushvalue(L, added);
	lua_setfield(L, res, "added");

#ifdef __linux__
	(void)use_sudo;
	/* All of 127.0.0.0/8 is local on Linux once lo is up: verify each
	 * pool address against the kernel's routing decision, add nothing. */
	for (size_t i = 0; i < count; i++) {
		struct in_addr a;
		char s[INET_ADDRSTRLEN];
		a.s_addr = htonl(f + (uint32_t)i);
		inet_ntop(AF_INET, &a, s, sizeof s);
		int err = plat_route_is_local(a);
		if (err == EADDRNOTAVAIL || err == ENETUNREACH || err == EHOSTUNREACH)
			return cork_raise(L, "not_local",
			                  "%s is not routed to this host (is %s up?)", s, iface);
		if (err)
			return cork_raise(L, "io", "route lookup for %s: %s", s, strerror(err));
	}
	lua_pushstring(L, "linux");
	lua_setfield(L, res, "platform");
	lua_pushboolean(L, 1);
	lua_setfield(L, res, "verified");
#elif defined(__APPLE__)
	/* Collect the missing ones, then add them all: by ioctl when root,
	 * else with one sudo (one prompt per boot, never per launch). */
	char (*missing)[INET_ADDRSTRLEN] = lua_newuserdatauv(L, count * sizeof *missing, 0);
	size_t nmissing = 0;
	for (size_t i = 0; i < count; i++) {
		struct in_addr a;
		a.s_addr = htonl(f + (uint32_t)i);
		int has = net_has_address(iface, a);
		if (has < 0)
			return cork_raise(L, "io", "listing addresses: %s", strerror(errno));
		if (!has)
			inet_ntop(AF_INET, &a, missing[nmissing++], INET_ADDRSTRLEN);
	}
	if (nmissing > 0) {
		int err = 0;
		if (geteuid() == 0) {
			for (size_t i = 0; i < nmissing && !err; i++) {
				struct in_addr a;
				inet_pton(AF_INET, missing[i], &a);
				err = plat_addr_change(1, iface, a);
			}
		} else if (use_sudo) {
			cork_event(L, "info", "net.sudo", "adding loopback aliases with sudo", 0);
			err = plat_sudo_ifconfig(1, iface, missing, nmissing);
		} else {
			err = EPERM;
		}
		if (err)
			return cork_raise(L, err == EPERM ? "permission" : "io",
			                  "adding %zu loopback aliases to %s: %s", nmissing,
			                  iface, strerror(err));
		for (size_t i = 0; i < nmissing; i++) {
			lua_pushstring(L, missing[i]);
			lua_rawseti(L, added, (lua_Integer)i + 1);
		}
	}
	lua_pushstring(L, "macos");
	lua_setfield(L, res, "platform");
	lua_pushboolean(L, 1);
	lua_setfield(L, res, "verified");
#else
	(void)use_sudo;
	(void)count;
	return cork_raise(L, "io", "ensure_pool is not supported on this platform");
#endif
	lua_settop(L, res);
	return 1;
}

/* ---- registration ------------------------------------------------------- */

static const luaL_Reg net_functions[] = {
	{"addresses", net_addresses},
	{"alias_add", net_alias_add},
	{"alias_remove", net_alias_remove},
	{"ensure_pool", net_ensure_pool},
	{NULL, NULL}
};

int luaopen_cork_net(lua_State *L)
{
	luaL_newlib(L, net_functions);
	lua_pushstring(L, NET_DEFAULT_IFACE);
	lua_setfield(L, -2, "default_iface");
	return 1;
}
