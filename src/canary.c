/*
 * canary.c: require "cork.canary", TCP listeners that count who reached them.
 *
 *   canary.open{addrs = {"127.0.0.1", ...}[, port = n]} -> Canary
 *   c:port()        -> the one port every address listens on
 *   c:addrs()       -> { "127.0.0.1", ... } the addresses listened on
 *   c:hits()        -> total, { [addr] = n }  (accepts and closes whatever is
 *                      pending, then counts since open)
 *   c:close()       (also __close and __gc; idempotent)
 *
 * A launch's isolation check starts one on the host's addresses the agent
 * must never reach, has the agent try them, and then asks the canary whether
 * anything arrived: the kernel completes a TCP handshake into the backlog
 * whether or not anyone calls accept(), so a connection the agent made is
 * counted even though cork was busy waiting for the agent's exec.
 *
 * The port is picked by the kernel on the first address and then bound on the
 * others; when one of them has it taken, all are closed and another port is
 * tried (up to 32 times). Error kinds: "usage" (not an IPv4 address, too many
 * addresses), "io" (cannot bind: the message names the address and errno).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "modules.h"
#include "runtime.h"

#define CANARY_MT "cork.canary.Canary"
#define CANARY_MAX 8

struct canary {
	int n;                           /* listening sockets (0: closed) */
	int fd[CANARY_MAX];
	struct in_addr addr[CANARY_MAX];
	int hits[CANARY_MAX];
	unsigned short port;
};

static struct canary *check_canary(lua_State *L, int idx)
{
	struct canary *c = luaL_checkudata(L, idx, CANARY_MT);
	return c;
}

static struct canary *check_open(lua_State *L, int idx)
{
	struct canary *c = check_canary(L, idx);
	if (c->n == 0)
		luaL_error(L, "attempt to use a closed canary");
	return c;
}

static void canary_close_fds(struct canary *c)
{
	for (int i = 0; i < c->n; i++)
		if (c->fd[i] >= 0) {
			close(c->fd[i]);
			c->fd[i] = -1;
		}
	c->n = 0;
}

/* Listen on addr:port (0: any). The bound port in *out. -1 with errno set. */
static int canary_listen(struct in_addr addr, unsigned short port, unsigned short *out)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	/* (no SOCK_CLOEXEC / SOCK_NONBLOCK flags: macOS has neither) */
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr = addr;
	sa.sin_port = htons(port);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	*out = ntohs(sa.sin_port);
	return fd;
}

static int canary_open(lua_State *L)
{
	static const char *const opts[] = { "addrs", "port", NULL };
	struct in_addr addrs[CANARY_MAX];
	int n = 0, want_port;
	struct canary *c;
	luaL_checktype(L, 1, LUA_TTABLE);
	cork_check_options(L, 1, opts);
	lua_getfield(L, 1, "addrs");
	luaL_argcheck(L, lua_istable(L, -1), 1, "addrs must be a list of IPv4 addresses");
	n = (int)luaL_len(L, -1);
	if (n < 1 || n > CANARY_MAX)
		cork_raise(L, "usage", "canary.open: between 1 and %d addresses (got %d)", CANARY_MAX, n);
	for (int i = 0; i < n; i++) {
		lua_geti(L, -1, i + 1);
		const char *s = luaL_checkstring(L, -1);
		if (inet_pton(AF_INET, s, &addrs[i]) != 1)
			cork_raise(L, "usage", "canary.open: '%s' is not an IPv4 address", s);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	lua_getfield(L, 1, "port");
	want_port = (int)luaL_optinteger(L, -1, 0);
	lua_pop(L, 1);
	luaL_argcheck(L, want_port >= 0 && want_port < 65536, 1, "port out of range");

	c = lua_newuserdatauv(L, sizeof *c, 0);
	memset(c, 0, sizeof *c);
	for (int i = 0; i < CANARY_MAX; i++)
		c->fd[i] = -1;
	luaL_setmetatable(L, CANARY_MT);
	cork_checkpoint(L);
	for (int attempt = 0; attempt < 32; attempt++) {
		unsigned short port = (unsigned short)want_port, got = 0;
		int i, err = 0;
		c->n = n;
		for (i = 0; i < n; i++) {
			c->addr[i] = addrs[i];
			c->fd[i] = canary_listen(addrs[i], port, &got);
			if (c->fd[i] < 0) {
				err = errno;
				break;
			}
			port = got;
		}
		if (i == n) {
			c->port = port;
			return 1;
		}
		canary_close_fds(c);
		if (err != EADDRINUSE || want_port != 0 || i == 0) {
			char ip[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &addrs[i], ip, sizeof ip);
			cork_error_push(L, "io", "canary: cannot listen on %s:%u: %s", ip, (unsigned)port,
			                strerror(err));
			lua_pushstring(L, ip);
			lua_setfield(L, -2, "addr");
			return lua_error(L);
		}
	}
	return cork_raise(L, "io", "canary: no port free on all %d addresses after 32 tries", n);
}

static int canary_port(lua_State *L)
{
	lua_pushinteger(L, check_open(L, 1)->port);
	return 1;
}

static int canary_addrs(lua_State *L)
{
	struct canary *c = check_open(L, 1);
	char ip[INET_ADDRSTRLEN];
	lua_createtable(L, c->n, 0);
	for (int i = 0; i < c->n; i++) {
		inet_ntop(AF_INET, &c->addr[i], ip, sizeof ip);
		lua_pushstring(L, ip);
		lua_rawseti(L, -2, i + 1);
	}
	return 1;
}

static int canary_hits(lua_State *L)
{
	struct canary *c = check_open(L, 1);
	char ip[INET_ADDRSTRLEN];
	int total = 0;
	for (int i = 0; i < c->n; i++) {
		int fd;
		while ((fd = accept(c->fd[i], NULL, NULL)) >= 0) {
			close(fd);
			c->hits[i]++;
		}
		total += c->hits[i];
	}
	lua_pushinteger(L, total);
	lua_createtable(L, 0, c->n);
	for (int i = 0; i < c->n; i++) {
		inet_ntop(AF_INET, &c->addr[i], ip, sizeof ip);
		lua_pushinteger(L, c->hits[i]);
		lua_setfield(L, -2, ip);
	}
	return 2;
}

static int canary_close(lua_State *L)
{
	canary_close_fds(check_canary(L, 1));
	return 0;
}

static int canary_tostring(lua_State *L)
{
	struct canary *c = check_canary(L, 1);
	if (c->n == 0)
		lua_pushliteral(L, "cork.canary.Canary(closed)");
	else
		lua_pushfstring(L, "cork.canary.Canary(port %d, %d addresses)", (int)c->port, c->n);
	return 1;
}

static const luaL_Reg canary_funcs[] = {
	{"open", canary_open},
	{NULL, NULL}
};

static const luaL_Reg canary_methods[] = {
	{"port", canary_port},
	{"addrs", canary_addrs},
	{"hits", canary_hits},
	{"close", canary_close},
	{NULL, NULL}
};

static const luaL_Reg canary_meta[] = {
	{"__close", canary_close},
	{"__gc", canary_close},
	{"__tostring", canary_tostring},
	{"__index", NULL},
	{NULL, NULL}
};

int luaopen_cork_canary(lua_State *L)
{
	luaL_newmetatable(L, CANARY_MT);
	luaL_setfuncs(L, canary_meta, 0);
	luaL_newlib(L, canary_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newlib(L, canary_funcs);
	return 1;
}
