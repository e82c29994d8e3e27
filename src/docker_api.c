/*
 * docker_api.c: cork.docker's networks, containers and images: the client
 * methods that build a request body from a small snake_case option table
 * and turn Docker's answer into a small table (docs/api.md has each).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "docker_priv.h"

/* ---- networks ----------------------------------------------------------- */

static const char *const network_create_opts[] = {"name", "subnet", "gateway", "internal",
                                                  "labels", "driver", "attachable", "options", NULL};

/* d:network_create{name, subnet, gateway, internal, labels, driver, attachable, options} */
static int docker_network_create(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	cork_check_options(L, 2, network_create_opts);
	lua_settop(L, 2);
	const char *name = cork_opt_required(L, 2, "name");
	const char *subnet = cork_opt_string(L, 2, "subnet", NULL);
	const char *gateway = cork_opt_string(L, 2, "gateway", NULL);
	const char *driver = cork_opt_string(L, 2, "driver", NULL);
	luaL_argcheck(L, !gateway || subnet, 2, "'gateway' needs 'subnet'");
	int internal = cork_opt_boolean(L, 2, "internal", 0);
	int attachable = cork_opt_boolean(L, 2, "attachable", 0);

	lua_newtable(L);
	int body = lua_gettop(L);
	lua_pushstring(L, name);
	lua_setfield(L, body, "Name");
	lua_pushboolean(L, 1);
	lua_setfield(L, body, "CheckDuplicate");
	lua_pushstring(L, driver ? driver : "bridge");
	lua_setfield(L, body, "Driver");
	lua_pushboolean(L, internal);
	lua_setfield(L, body, "Internal");
	if (attachable) {
		lua_pushboolean(L, 1);
		lua_setfield(L, body, "Attachable");
	}
	if (dk_push_strmap(L, 2, "labels"))
		lua_setfield(L, body, "Labels");
	if (dk_push_strmap(L, 2, "options"))
		lua_setfield(L, body, "Options");
	if (subnet) {
		lua_newtable(L);                 /* IPAM */
		lua_pushstring(L, "default");
		lua_setfield(L, -2, "Driver");
		lua_createtable(L, 1, 0);        /* Config */
		lua_newtable(L);
		lua_pushstring(L, subnet);
		lua_setfield(L, -2, "Subnet");
		if (gateway) {
			lua_pushstring(L, gateway);
			lua_setfield(L, -2, "Gateway");
		}
		lua_rawseti(L, -2, 1);
		lua_setfield(L, -2, "Config");
		lua_setfield(L, body, "IPAM");
	}
	dk_call(L, c, "POST", "/networks/create", body, 0, 0);
	dk_push_created(L, lua_gettop(L));
	return 1;
}

/* d:network_inspect(ref) -> Docker's network object */
static int docker_network_inspect(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *ref = dk_check_ref(L, 2);
	const char *path = dk_push_refpath(L, "/networks/", ref, "");
	dk_call(L, c, "GET", path, 0, 0, 0);
	return 1;
}

/* d:network_remove(ref) -> true */
static int docker_network_remove(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *ref = dk_check_ref(L, 2);
	const char *path = dk_push_refpath(L, "/networks/", ref, "");
	dk_call(L, c, "DELETE", path, 0, 0, 0);
	lua_pushboolean(L, 1);
	return 1;
}

static const char *const list_opts[] = {"filters", NULL};

/* d:networks{filters} -> list of network objects */
static int docker_networks(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	int oi = lua_isnoneornil(L, 2) ? 0 : 2;
	if (oi)
		cork_check_options(L, oi, list_opts);
	const char *filters = NULL;
	if (oi) {
		lua_getfield(L, oi, "filters");
		if (!lua_isnil(L, -1)) {
			dk_push_filters(L, -1);
			filters = lua_tostring(L, -1);
		}
	}
	const char *kv[] = {"filters", filters};
	const char *path = dk_push_path(L, "/networks", kv, 2);
	dk_call(L, c, "GET", path, 0, 0, 0);
	return 1;
}

static const char *const connect_net_opts[] = {"ip", "aliases", NULL};

/* EndpointSettings for {ip=, aliases=} at idx (0 = none); pushes it. */
static void push_endpoint(lua_State *L, int o)
{
	lua_newtable(L);
	if (!o)
		return;
	const char *ip = cork_opt_string(L, o, "ip", NULL);
	if (ip) {
		lua_newtable(L);
		lua_pushstring(L, ip);
		lua_setfield(L, -2, "IPv4Address");
		lua_setfield(L, -2, "IPAMConfig");
	}
	if (dk_push_strlist(L, o, "aliases"))
		lua_setfield(L, -2, "Aliases");
}

static void network_connect(lua_State *L, client *c, const char *net, const char *container, int ep)
{
	lua_newtable(L);
	int body = lua_gettop(L);
	lua_pushstring(L, container);
	lua_setfield(L, body, "Container");
	lua_pushvalue(L, ep);
	lua_setfield(L, body, "EndpointConfig");
	const char *path = dk_push_refpath(L, "/networks/", net, "/connect");
	dk_call(L, c, "POST", path, body, 0, 0);
	lua_pop(L, 3);
}

/* d:network_connect(net, container[, {ip, aliases}]) -> true */
static int docker_network_connect(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *net = dk_check_ref(L, 2);
	const char *ctr = dk_check_ref(L, 3);
	int oi = lua_isnoneornil(L, 4) ? 0 : 4;
	if (oi)
		cork_check_options(L, oi, connect_net_opts);
	lua_settop(L, 4);
	push_endpoint(L, oi);
	network_connect(L, c, net, ctr, 5);
	lua_pushboolean(L, 1);
	return 1;
}

static const char *const disconnect_opts[] = {"force", NULL};

/* d:network_disconnect(net, container[, {force}]) -> true */
static int docker_network_disconnect(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *net = dk_check_ref(L, 2);
	const char *ctr = dk_check_ref(L, 3);
	int oi = lua_isnoneornil(L, 4) ? 0 : 4;
	if (oi)
		cork_check_options(L, oi, disconnect_opts);
	int force = cork_opt_boolean(L, oi, "force", 0);
	lua_settop(L, 4);
	lua_newtable(L);
	lua_pushstring(L, ctr);
	lua_setfield(L, -2, "Container");
	lua_pushboolean(L, force);
	lua_setfield(L, -2, "Force");
	const char *path = dk_push_refpath(L, "/networks/", net, "/disconnect");
	dk_call(L, c, "POST", path, 5, 0, 0);
	lua_pushboolean(L, 1);
	return 1;
}

/* ---- containers ----------------------------------------------------------- */

static const char *const create_opts[] = {
	"name", "image", "cmd", "entrypoint", "env", "labels", "user", "workdir", "mounts",
	"ports", "networks", "cap_drop", "cap_add", "read_only_rootfs", "security_opt", "init",
	"tmpfs", "hostname", "stop_signal", "stop_timeout", "tty", "open_stdin", "auto_remove",
	"extra_hosts", "memory", "pids_limit", "network_mode", NULL};
static const char *const mount_opts[] = {"source", "target", "read_only", "type", NULL};
static const char *const port_opts[] = {"container_port", "host_ip", "host_port", "protocol", NULL};
static const char *const network_opts[] = {"name", "ip", "aliases", NULL};

/* "80" | 80 | "80/udp" (+ protocol) -> "80/tcp" pushed */
static const char *push_port_key(lua_State *L, int o, const char *what)
{
	lua_getfield(L, o, "container_port");
	int t = lua_type(L, -1);
	if (t != LUA_TNUMBER && t != LUA_TSTRING)
		luaL_error(L, "%s: 'container_port' is required (a number or \"80/tcp\")", what);
	const char *cp = lua_tostring(L, -1);
	const char *proto = cork_opt_string(L, o, "protocol", NULL);
	if (strchr(cp, '/')) {
		if (proto)
			luaL_error(L, "%s: give the protocol in 'container_port' or 'protocol', not both", what);
		lua_pushstring(L, cp);
	} else {
		char *end;
		long p = strtol(cp, &end, 10);
		if (*end || p <= 0 || p > 65535)
			luaL_error(L, "%s: bad container_port '%s'", what, cp);
		lua_pushfstring(L, "%d/%s", (int)p, proto ? proto : "tcp");
	}
	lua_remove(L, -2);
	return lua_tostring(L, -1);
}

/* connect_extra(client, ep, net, id): network_connect under pcall */
static int connect_extra(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	network_connect(L, c, lua_tostring(L, 3), lua_tostring(L, 4), 2);
	return 0;
}

static int remove_quietly_inner(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *path = dk_push_refpath(L, "/containers/", lua_tostring(L, 2), "?force=1&v=1");
	dk_perform(L, c, "DELETE", path, NULL, 0, NULL, c->timeout_ms);
	return 0;
}

/* remove_quietly(client, id): force-remove as cleanup (not interruptible),
 * errors ignored */
static int remove_quietly(lua_State *L)
{
	lua_settop(L, 2);
	lua_pushcfunction(L, remove_quietly_inner);
	lua_insert(L, 1);
	cork_cleanup_enter(L);
	lua_pcall(L, 2, 0, 0);
	cork_cleanup_leave(L);
	return 0;
}

/* d:container_create{...} -> {id=, warnings=} */
static int docker_container_create(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	cork_check_options(L, 2, create_opts);
	lua_settop(L, 2);
	lua_newtable(L);
	int sec = 3;                       /* env values, for redaction */
	const char *name = cork_opt_string(L, 2, "name", NULL);
	const char *image = cork_opt_required(L, 2, "image");

	lua_newtable(L);
	int body = 4;
	lua_newtable(L);
	int hc = 5;                        /* HostConfig */
	lua_pushstring(L, image);
	lua_setfield(L, body, "Image");
	if (dk_push_strlist(L, 2, "cmd"))
		lua_setfield(L, body, "Cmd");
	if (dk_push_strlist(L, 2, "entrypoint"))
		lua_setfield(L, body, "Entrypoint");
	if (dk_push_env(L, 2, "env", sec))
		lua_setfield(L, body, "Env");
	if (dk_push_strmap(L, 2, "labels"))
		lua_setfield(L, body, "Labels");
	static const struct { const char *opt, *field; } strs[] = {
		{"user", "User"}, {"workdir", "WorkingDir"}, {"hostname", "Hostname"},
		{"stop_signal", "StopSignal"},
	};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		const char *v = cork_opt_string(L, 2, strs[i].opt, NULL);
		if (v) {
			lua_pushstring(L, v);
			lua_setfield(L, body, strs[i].field);
		}
	}
	double st = cork_opt_number(L, 2, "stop_timeout", -1);
	if (st >= 0) {
		lua_pushinteger(L, (lua_Integer)st);
		lua_setfield(L, body, "StopTimeout");
	}
	if (cork_opt_boolean(L, 2, "tty", 0)) {
		lua_pushboolean(L, 1);
		lua_setfield(L, body, "Tty");
	}
	if (cork_opt_boolean(L, 2, "open_stdin", 0)) {
		lua_pushboolean(L, 1);
		lua_setfield(L, body, "OpenStdin");
	}
	/* HostConfig */
	if (dk_push_strlist(L, 2, "cap_drop"))
		lua_setfield(L, hc, "CapDrop");
	if (dk_push_strlist(L, 2, "cap_add"))
		lua_setfield(L, hc, "CapAdd");
	if (dk_push_strlist(L, 2, "security_opt"))
		lua_setfield(L, hc, "SecurityOpt");
	if (dk_push_strlist(L, 2, "extra_hosts"))
		lua_setfield(L, hc, "ExtraHosts");
	if (cork_opt_boolean(L, 2, "read_only_rootfs", 0)) {
		lua_pushboolean(L, 1);
		lua_setfield(L, hc, "ReadonlyRootfs");
	}
	if (cork_opt_boolean(L, 2, "init", 0)) {
		lua_pushboolean(L, 1);
		lua_setfield(L, hc, "Init");
	}
	if (cork_opt_boolean(L, 2, "auto_remove", 0)) {
		lua_pushboolean(L, 1);
		lua_setfield(L, hc, "AutoRemove");
	}
	double mem = cork_opt_number(L, 2, "memory", -1);
	if (mem > 0) {
		lua_pushinteger(L, (lua_Integer)mem);
		lua_setfield(L, hc, "Memory");
	}
	double pids = cork_opt_number(L, 2, "pids_limit", -1);
	if (pids > 0) {
		lua_pushinteger(L, (lua_Integer)pids);
		lua_setfield(L, hc, "PidsLimit");
	}
	/* tmpfs: {"/tmp", ...} or {["/tmp"] = "size=64m"} */
	lua_getfield(L, 2, "tmpfs");
	if (!lua_isnil(L, -1)) {
		luaL_argcheck(L, lua_istable(L, -1), 2, "'tmpfs' must be a table");
		int src = lua_gettop(L);
		lua_newtable(L);
		lua_pushnil(L);
		while (lua_next(L, src)) {
			if (lua_type(L, -2) == LUA_TNUMBER && lua_type(L, -1) == LUA_TSTRING) {
				lua_pushstring(L, "");
				lua_setfield(L, src + 1, lua_tostring(L, -2));
			} else if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
				lua_pushvalue(L, -2);
				lua_pushvalue(L, -2);
				lua_rawset(L, src + 1);
			} else {
				luaL_error(L, "'tmpfs' must be a list of paths or a map path -> options");
			}
			lua_pop(L, 1);
		}
		lua_setfield(L, hc, "Tmpfs");
	}
	lua_pop(L, 1);
	/* mounts = {{source, target, read_only, type}} */
	lua_getfield(L, 2, "mounts");
	if (!lua_isnil(L, -1)) {
		luaL_argcheck(L, lua_istable(L, -1), 2, "'mounts' must be a list");
		int src = lua_gettop(L);
		lua_Integer n = (lua_Integer)lua_rawlen(L, src);
		lua_createtable(L, (int)n, 0);
		dk_mark_array(L);
		for (lua_Integer i = 1; i <= n; i++) {
			if (lua_rawgeti(L, src, i) != LUA_TTABLE)
				luaL_error(L, "mounts[%d] must be a table", (int)i);
			int m = lua_gettop(L);
			cork_check_options(L, m, mount_opts);
			const char *type = cork_opt_string(L, m, "type", NULL);
			const char *s = cork_opt_string(L, m, "source", NULL);
			const char *t = cork_opt_string(L, m, "target", NULL);
			if (!t || (!s && (!type || strcmp(type, "tmpfs") != 0)))
				luaL_error(L, "mounts[%d] needs 'source' and 'target'", (int)i);
			lua_newtable(L);
			lua_pushstring(L, type ? type : "bind");
			lua_setfield(L, -2, "Type");
			if (s) {
				lua_pushstring(L, s);
				lua_setfield(L, -2, "Source");
			}
			lua_pushstring(L, t);
			lua_setfield(L, -2, "Target");
			lua_pushboolean(L, cork_opt_boolean(L, m, "read_only", 0));
			lua_setfield(L, -2, "ReadOnly");
			lua_rawseti(L, src + 1, i);
			lua_settop(L, src + 1);
		}
		lua_setfield(L, hc, "Mounts");
	}
	lua_pop(L, 1);
	/* ports = {{container_port, host_ip, host_port, protocol}} */
	lua_getfield(L, 2, "ports");
	if (!lua_isnil(L, -1)) {
		luaL_argcheck(L, lua_istable(L, -1), 2, "'ports' must be a list");
		int src = lua_gettop(L);
		lua_newtable(L); /* ExposedPorts */
		lua_newtable(L); /* PortBindings */
		int ex = src + 1, pb = src + 2;
		lua_Integer n = (lua_Integer)lua_rawlen(L, src);
		for (lua_Integer i = 1; i <= n; i++) {
			if (lua_rawgeti(L, src, i) != LUA_TTABLE)
				luaL_error(L, "ports[%d] must be a table", (int)i);
			int p = lua_gettop(L);
			cork_check_options(L, p, port_opts);
			char what[32];
			snprintf(what, sizeof what, "ports[%d]", (int)i);
			const char *key = push_port_key(L, p, what);
			const char *hip = cork_opt_string(L, p, "host_ip", NULL);
			char hport[16] = "";
			lua_getfield(L, p, "host_port");
			if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0 && lua_tointeger(L, -1) <= 65535) {
				if (lua_tointeger(L, -1) > 0)
					snprintf(hport, sizeof hport, "%d", (int)lua_tointeger(L, -1));
			} else if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) < sizeof hport) {
				snprintf(hport, sizeof hport, "%s", lua_tostring(L, -1));
			} else if (!lua_isnil(L, -1)) {
				luaL_error(L, "%s: bad host_port (a port number, or \"\" for any)", what);
			}
			lua_pop(L, 1);
			lua_newtable(L);
			lua_setfield(L, ex, key);
			if (lua_getfield(L, pb, key) == LUA_TNIL) {
				lua_pop(L, 1);
				lua_newtable(L);
				lua_pushvalue(L, -1);
				lua_setfield(L, pb, key);
			}
			lua_newtable(L);
			lua_pushstring(L, hip ? hip : "");
			lua_setfield(L, -2, "HostIp");
			lua_pushstring(L, strcmp(hport, "0") != 0 ? hport : "");
			lua_setfield(L, -2, "HostPort");
			lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
			lua_settop(L, pb);
		}
		lua_setfield(L, hc, "PortBindings");
		lua_setfield(L, body, "ExposedPorts");
	}
	lua_pop(L, 1);
	/* networks = {{name, ip, aliases}} or {"name", ...} */
	lua_getfield(L, 2, "networks");
	int nets = 0, nnets = 0;
	if (!lua_isnil(L, -1)) {
		luaL_argcheck(L, lua_istable(L, -1), 2, "'networks' must be a list");
		int src = lua_gettop(L);
		nnets = (int)lua_rawlen(L, src);
		lua_createtable(L, nnets, 0); /* normalized: {{name=, ep=EndpointSettings}} */
		nets = src + 1;
		for (int i = 1; i <= nnets; i++) {
			int t = lua_rawgeti(L, src, i);
			lua_newtable(L);
			if (t == LUA_TSTRING) {
				lua_pushvalue(L, -2);
				lua_setfield(L, -2, "name");
				lua_newtable(L);
				lua_setfield(L, -2, "ep");
			} else if (t == LUA_TTABLE) {
				int o = lua_gettop(L) - 1;
				cork_check_options(L, o, network_opts);
				const char *nn = cork_opt_string(L, o, "name", NULL);
				if (!nn || !*nn)
					luaL_error(L, "networks[%d] needs a 'name'", i);
				lua_pushstring(L, nn);
				lua_setfield(L, -2, "name");
				push_endpoint(L, o);
				lua_setfield(L, -2, "ep");
			} else {
				luaL_error(L, "networks[%d] must be a name or a table", i);
			}
			lua_rawseti(L, nets, i);
			lua_pop(L, 1);
		}
		/* create time: all networks on >= 1.44, else the first one only */
		if (nnets > 0) {
			lua_newtable(L); /* NetworkingConfig */
			lua_newtable(L); /* EndpointsConfig */
			int upto = dk_api_at_least(c, 44) ? nnets : 1;
			for (int i = 1; i <= upto; i++) {
				lua_rawgeti(L, nets, i);
				lua_getfield(L, -1, "ep");
				lua_getfield(L, -2, "name");
				lua_pushvalue(L, -2);
				lua_rawset(L, -5);
				lua_pop(L, 2);
			}
			lua_setfield(L, -2, "EndpointsConfig");
			lua_setfield(L, body, "NetworkingConfig");
			lua_rawgeti(L, nets, 1);
			lua_getfield(L, -1, "name");
			lua_setfield(L, hc, "NetworkMode");
			lua_pop(L, 1);
		}
	}
	/* network_mode: "none", "host", "container:<id>" (a container sharing
	 * another's network namespace); the networks option names bridges */
	const char *nmode = cork_opt_string(L, 2, "network_mode", NULL);
	if (nmode) {
		luaL_argcheck(L, *nmode && nnets == 0, 2, "give 'network_mode' or 'networks', not both");
		lua_pushstring(L, nmode);
		lua_setfield(L, hc, "NetworkMode");
	}
	/* stack: ..., the networks option, [normalized list at nets] */
	lua_pushvalue(L, hc);
	lua_setfield(L, body, "HostConfig");

	const char *kv[] = {"name", name};
	const char *path = dk_push_path(L, "/containers/create", kv, 2);
	dk_call(L, c, "POST", path, body, 0, sec);
	dk_push_created(L, lua_gettop(L));
	int res = lua_gettop(L);
	/* older engines: connect the other networks now, before any start; on
	 * failure remove the half-made container, then raise the first error */
	if (nnets > 1 && !dk_api_at_least(c, 44)) {
		for (int i = 2; i <= nnets; i++) {
			lua_pushcfunction(L, connect_extra);
			lua_pushvalue(L, 1);
			lua_rawgeti(L, nets, i);
			lua_getfield(L, -1, "ep");
			lua_getfield(L, -2, "name");
			lua_remove(L, -3);
			lua_getfield(L, res, "id");
			/* connect_extra(client, ep, net, id) */
			if (lua_pcall(L, 4, 0, 0) != LUA_OK) {
				int err = lua_gettop(L);
				lua_pushcfunction(L, remove_quietly);
				lua_pushvalue(L, 1);
				lua_getfield(L, res, "id");
				lua_pcall(L, 2, 0, 0);
				lua_settop(L, err);
				return lua_error(L);
			}
		}
	}
	lua_pushvalue(L, res);
	return 1;
}

/* d:container_start(ref) -> true (started) | false (was already running) */
static int docker_container_start(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *ref = dk_check_ref(L, 2);
	const char *path = dk_push_refpath(L, "/containers/", ref, "/start");
	long st = dk_call(L, c, "POST", path, 0, 0, 0);
	lua_pushboolean(L, st != 304);
	return 1;
}

static const char *const stop_opts[] = {"timeout", "signal", NULL};

/* Poll inspect until the container is not running or the deadline. */
static int wait_not_running(lua_State *L, client *c, const char *ref, double deadline)
{
	const char *path = dk_push_refpath(L, "/containers/", ref, "/json");
	int running = 1;
	for (;;) {
		dk_call(L, c, "GET", path, 0, 0, 0);
		lua_getfield(L, -1, "State");
		lua_getfield(L, -1, "Running");
		running = lua_toboolean(L, -1);
		lua_pop(L, 3);
		if (!running || cork_now() >= deadline)
			break;
		/* 50 ms steps, interruptible */
		cork_checkpoint(L);
		poll(NULL, 0, 50);
	}
	lua_pop(L, 1);
	return running;
}

/* d:container_stop(ref[, {timeout, signal}]) -> true (stopped) | false (was not running) */
static int docker_container_stop(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *ref = dk_check_ref(L, 2);
	int oi = lua_isnoneornil(L, 3) ? 0 : 3;
	if (oi)
		cork_check_options(L, oi, stop_opts);
	double t = cork_opt_number(L, oi, "timeout", -1);
	const char *sig = cork_opt_string(L, oi, "signal", NULL);
	char ts[32] = "";
	if (t >= 0)
		snprintf(ts, sizeof ts, "%d", (int)t);
	long timeout_ms = c->timeout_ms + (t > 0 ? (long)(t * 1000) : 10000);
	if (sig && !dk_api_at_least(c, 42)) {
		/* API < 1.42 has no stop signal: send it, give the grace period,
		 * then SIGKILL, as the daemon would */
		const char *kv[] = {"signal", sig};
		const char *kp = dk_push_path(L, dk_push_refpath(L, "/containers/", ref, "/kill"), kv, 2);
		dk_perform(L, c, "POST", kp, NULL, 0, NULL, c->timeout_ms);
		long st = 0;
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &st);
		if (st == 409) { /* not running */
			lua_pushboolean(L, 0);
			return 1;
		}
		if (!dk_status_kind_ok(st))
			dk_raise_status(L, c, st, "POST", kp, 0);
		if (wait_not_running(L, c, ref, cork_now() + (t >= 0 ? t : 10))) {
			const char *kv9[] = {"signal", "SIGKILL"};
			const char *k9 = dk_push_path(L, dk_push_refpath(L, "/containers/", ref, "/kill"), kv9, 2);
			dk_perform(L, c, "POST", k9, NULL, 0, NULL, c->timeout_ms);
			wait_not_running(L, c, ref, cork_now() + 10);
		}
		lua_pushboolean(L, 1);
		return 1;
	}
	const char *kv[] = {"t", ts[0] ? ts : NULL, "signal", sig};
	const char *path = dk_push_path(L, dk_push_refpath(L, "/containers/", ref, "/stop"), kv, 4);
	long st = dk_call(L, c, "POST", path, 0, timeout_ms, 0);
	lua_pushboolean(L, st != 304);
	return 1;
}

/* d:container_kill(ref[, signal]) -> true */
static int docker_container_kill(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *ref = dk_check_ref(L, 2);
	const char *sig = luaL_optstring(L, 3, NULL);
	const char *kv[] = {"signal", sig};
	const char *path = dk_push_path(L, dk_push_refpath(L, "/containers/", ref, "/kill"), kv, 2);
	dk_call(L, c, "POST", path, 0, 0, 0);
	lua_pushboolean(L, 1);
	return 1;
}

static const char *const remove_opts[] = {"force", "volumes", NULL};

/* d:container_remove(ref[, {force, volumes}]) -> true */
static int docker_container_remove(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *ref = dk_check_ref(L, 2);
	int oi = lua_isnoneornil(L, 3) ? 0 : 3;
	if (oi)
		cork_check_options(L, oi, remove_opts);
	int force = cork_opt_boolean(L, oi, "force", 0), vols = cork_opt_boolean(L, oi, "volumes", 0);
	const char *kv[] = {"force", force ? "1" : NULL, "v", vols ? "1" : NULL};
	const char *path = dk_push_path(L, dk_push_refpath(L, "/containers/", ref, ""), kv, 4);
	dk_call(L, c, "DELETE", path, 0, 0, 0);
	lua_pushboolean(L, 1);
	return 1;
}

/* d:container_inspect(ref) -> Docker's container object */
static int docker_container_inspect(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *ref = dk_check_ref(L, 2);
	dk_call(L, c, "GET", dk_push_refpath(L, "/containers/", ref, "/json"), 0, 0, 0);
	return 1;
}

static const char *const containers_opts[] = {"all", "filters", "limit", NULL};

/* d:containers{all, filters, limit} -> list of container summaries */
static int docker_containers(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	int oi = lua_isnoneornil(L, 2) ? 0 : 2;
	if (oi)
		cork_check_options(L, oi, containers_opts);
	int all = cork_opt_boolean(L, oi, "all", 0);
	double limit = cork_opt_number(L, oi, "limit", -1);
	char ls[32] = "";
	if (limit > 0)
		snprintf(ls, sizeof ls, "%d", (int)limit);
	const char *filters = NULL;
	if (oi) {
		lua_getfield(L, oi, "filters");
		if (!lua_isnil(L, -1)) {
			dk_push_filters(L, -1);
			filters = lua_tostring(L, -1);
		}
	}
	const char *kv[] = {"all", all ? "1" : NULL, "limit", ls[0] ? ls : NULL, "filters", filters};
	dk_call(L, c, "GET", dk_push_path(L, "/containers/json", kv, 6), 0, 0, 0);
	return 1;
}

static const char *const wait_opts[] = {"condition", "timeout", NULL};

/* d:container_wait(ref[, {condition, timeout}]) -> {status=, error=} */
static int docker_container_wait(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *ref = dk_check_ref(L, 2);
	int oi = lua_isnoneornil(L, 3) ? 0 : 3;
	if (oi)
		cork_check_options(L, oi, wait_opts);
	const char *cond = cork_opt_string(L, oi, "condition", NULL);
	double t = cork_opt_number(L, oi, "timeout", 0);
	const char *kv[] = {"condition", cond};
	const char *path = dk_push_path(L, dk_push_refpath(L, "/containers/", ref, "/wait"), kv, 2);
	/* no total timeout unless asked: a wait is as long as the container */
	dk_call(L, c, "POST", path, 0, t > 0 ? (long)(t * 1000) : -1, 0);
	int ans = lua_gettop(L);
	lua_createtable(L, 0, 2);
	if (lua_istable(L, ans)) {
		lua_getfield(L, ans, "StatusCode");
		if (lua_type(L, -1) == LUA_TNUMBER)
			lua_pushinteger(L, (lua_Integer)lua_tonumber(L, -1));
		else
			lua_pushnil(L);
		lua_setfield(L, -3, "status");
		lua_pop(L, 1);
		lua_getfield(L, ans, "Error");
		if (lua_istable(L, -1)) {
			lua_getfield(L, -1, "Message");
			lua_replace(L, -2);
			if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) > 0)
				lua_setfield(L, -3, "error");
			else
				lua_pop(L, 1);
		} else {
			lua_pop(L, 1);
		}
	}
	return 1;
}

/* d:host_port(container, container_port[, host_ip]) -> port number */
static int docker_host_port(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *ref = dk_check_ref(L, 2);
	luaL_checkany(L, 3);
	const char *hip = luaL_optstring(L, 4, NULL);
	lua_settop(L, 4);
	const char *key;
	if (lua_isinteger(L, 3)) {
		lua_Integer p = lua_tointeger(L, 3);
		luaL_argcheck(L, p > 0 && p <= 65535, 3, "bad port");
		key = lua_pushfstring(L, "%d/tcp", (int)p);
	} else {
		const char *s = luaL_checkstring(L, 3);
		key = strchr(s, '/') ? lua_pushstring(L, s) : lua_pushfstring(L, "%s/tcp", s);
	}
	int ki = lua_gettop(L);
	dk_call(L, c, "GET", dk_push_refpath(L, "/containers/", ref, "/json"), 0, 0, 0);
	int ins = lua_gettop(L);
	/* NetworkSettings.Ports exists in every API version (the top-level
	 * NetworkSettings address fields are gone in 1.52) */
	lua_getfield(L, ins, "NetworkSettings");
	if (lua_istable(L, -1))
		lua_getfield(L, -1, "Ports");
	else
		lua_pushnil(L);
	if (lua_istable(L, -1))
		lua_getfield(L, -1, key);
	else
		lua_pushnil(L);
	if (lua_istable(L, -1)) {
		int list = lua_gettop(L);
		lua_Integer n = (lua_Integer)lua_rawlen(L, list);
		for (lua_Integer i = 1; i <= n; i++) {
			lua_rawgeti(L, list, i);
			lua_getfield(L, -1, "HostIp");
			lua_getfield(L, -2, "HostPort");
			const char *ip = lua_tostring(L, -2), *port = lua_tostring(L, -1);
			if (port && *port && (!hip || (ip && strcmp(ip, hip) == 0))) {
				lua_pushinteger(L, (lua_Integer)strtol(port, NULL, 10));
				return 1;
			}
			lua_pop(L, 3);
		}
	}
	lua_getfield(L, ins, "Name");
	const char *cname = lua_tostring(L, -1);
	lua_getfield(L, ins, "State");
	lua_getfield(L, -1, "Running");
	int running = lua_toboolean(L, -1);
	cork_error_push(L, "not_found", "container %s has no host port for %s%s%s%s",
	                cname ? cname + (cname[0] == '/') : ref, lua_tostring(L, ki),
	                hip ? " on " : "", hip ? hip : "", running ? "" : " (it is not running)");
	lua_pushstring(L, ref);
	lua_setfield(L, -2, "container");
	lua_pushvalue(L, ki);
	lua_setfield(L, -2, "container_port");
	return lua_error(L);
}

/* ---- images ------------------------------------------------------------- */

/* d:image_inspect(ref) -> Docker's image object */
static int docker_image_inspect(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *ref = dk_check_ref(L, 2);
	dk_call(L, c, "GET", dk_push_refpath(L, "/images/", ref, "/json"), 0, 0, 0);
	return 1;
}

static const char *const image_remove_opts[] = {"force", "noprune", NULL};

/* d:image_remove(ref[, {force, noprune}]) -> list of {Untagged=|Deleted=} */
static int docker_image_remove(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *ref = dk_check_ref(L, 2);
	int oi = lua_isnoneornil(L, 3) ? 0 : 3;
	if (oi)
		cork_check_options(L, oi, image_remove_opts);
	int force = cork_opt_boolean(L, oi, "force", 0), noprune = cork_opt_boolean(L, oi, "noprune", 0);
	const char *kv[] = {"force", force ? "1" : NULL, "noprune", noprune ? "1" : NULL};
	dk_call(L, c, "DELETE", dk_push_path(L, dk_push_refpath(L, "/images/", ref, ""), kv, 4), 0, 0, 0);
	return 1;
}

static const char *const import_opts[] = {"repo", "tag", "changes", "message", "timeout", NULL};

/* d:image_import(path_or_file[, {repo, tag, changes, message, timeout}]) -> {id=} */
static int docker_image_import(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	FILE *fp = NULL;
	const char *path = NULL;
	luaL_Stream *ls = luaL_testudata(L, 2, LUA_FILEHANDLE);
	if (ls) {
		luaL_argcheck(L, ls->closef != NULL && ls->f, 2, "closed file");
		fp = ls->f;
	} else {
		path = luaL_checkstring(L, 2);
	}
	int oi = lua_isnoneornil(L, 3) ? 0 : 3;
	if (oi)
		cork_check_options(L, oi, import_opts);
	const char *repo = cork_opt_string(L, oi, "repo", NULL), *tag = cork_opt_string(L, oi, "tag", NULL);
	const char *msg = cork_opt_string(L, oi, "message", NULL);
	double t = cork_opt_number(L, oi, "timeout", 0);
	lua_settop(L, 3);
	if (oi)
		lua_getfield(L, oi, "changes");
	else
		lua_pushnil(L);
	int chi = 4;
	lua_Integer nch = 0;
	if (!lua_isnil(L, chi)) {
		luaL_argcheck(L, lua_istable(L, chi), 3, "'changes' must be a list of strings");
		nch = (lua_Integer)lua_rawlen(L, chi);
		for (lua_Integer i = 1; i <= nch; i++) {
			if (lua_rawgeti(L, chi, i) != LUA_TSTRING)
				luaL_error(L, "option 'changes'[%d] must be a string", (int)i);
			lua_pop(L, 1);
		}
	}
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addstring(&b, "/images/create?fromSrc=-");
	if (repo) {
		luaL_addstring(&b, "&repo=");
		dk_add_escaped(&b, repo, strlen(repo));
	}
	if (tag) {
		luaL_addstring(&b, "&tag=");
		dk_add_escaped(&b, tag, strlen(tag));
	}
	if (msg) {
		luaL_addstring(&b, "&message=");
		dk_add_escaped(&b, msg, strlen(msg));
	}
	for (lua_Integer i = 1; i <= nch; i++) {
		lua_rawgeti(L, chi, i);
		size_t cl;
		const char *ch = lua_tolstring(L, -1, &cl);
		lua_pop(L, 1); /* still referenced by the changes table */
		luaL_addstring(&b, "&changes=");
		dk_add_escaped(&b, ch, cl);
	}
	luaL_pushresult(&b);
	const char *qpath = lua_tostring(L, -1);
	/* a stale upload of an import that raised: drop it */
	if (c->upload) {
		fclose(c->upload);
		c->upload = NULL;
	}
	if (path) {
		fp = fopen(path, "rb");
		if (!fp)
			cork_raise(L, cork_errno_kind(errno), "image_import: %s: %s", path,
			           strerror(errno));
		c->upload = fp; /* owned: closed below, or by close/__gc after an error */
	}
	struct stat sb;
	curl_off_t size = -1;
	if (fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode) && ftello(fp) >= 0)
		size = (curl_off_t)(sb.st_size - ftello(fp));
	long timeout_ms = t > 0 ? (long)(t * 1000) : c->timeout_ms * 5;
	long st = dk_perform_io(L, c, "POST", qpath, NULL, 0, c->hdr_tar, timeout_ms, fp, size, NULL);
	if (c->upload) {
		fclose(c->upload);
		c->upload = NULL;
	}
	if (!dk_status_kind_ok(st))
		dk_raise_status(L, c, st, "POST", "/images/create", 0);
	/* the answer is a stream of JSON progress lines; errors come with 200 */
	char id[128] = "";
	const char *p = c->resp.p ? c->resp.p : "";
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (n && dk_json_decode(L, p, n) && lua_istable(L, -1)) {
			int line = lua_gettop(L);
			lua_getfield(L, line, "error");
			if (lua_type(L, -1) == LUA_TSTRING) {
				int em = lua_gettop(L);
				cork_error_push(L, "bad_request", "docker POST /images/create: %s",
				                lua_tostring(L, em));
				lua_pushstring(L, "POST");
				lua_setfield(L, -2, "method");
				lua_pushstring(L, "/images/create");
				lua_setfield(L, -2, "path");
				lua_pushvalue(L, em);
				lua_setfield(L, -2, "docker_message");
				return lua_error(L);
			}
			lua_getfield(L, line, "status");
			const char *sv = lua_tostring(L, -1);
			if (sv && strncmp(sv, "sha256:", 7) == 0)
				snprintf(id, sizeof id, "%s", sv);
			lua_settop(L, line - 1);
		} else {
			lua_pop(L, 1);
		}
		p += n + (nl ? 1 : 0);
	}
	lua_createtable(L, 0, 1);
	if (id[0]) {
		lua_pushstring(L, id);
		lua_setfield(L, -2, "id");
	}
	return 1;
}

const luaL_Reg dk_api_methods[] = {
	{"network_create", docker_network_create},
	{"network_inspect", docker_network_inspect},
	{"network_remove", docker_network_remove},
	{"network_connect", docker_network_connect},
	{"network_disconnect", docker_network_disconnect},
	{"networks", docker_networks},
	{"container_create", docker_container_create},
	{"container_start", docker_container_start},
	{"container_stop", docker_container_stop},
	{"container_kill", docker_container_kill},
	{"container_remove", docker_container_remove},
	{"container_inspect", docker_container_inspect},
	{"containers", docker_containers},
	{"container_wait", docker_container_wait},
	{"host_port", docker_host_port},
	{"image_inspect", docker_image_inspect},
	{"image_import", docker_image_import},
	{"image_remove", docker_image_remove},
	{NULL, NULL}
};
