/*
 * docker.c: require "cork._docker", the C client under lua/cork/docker.lua
 * (require "cork.docker"): the Docker Engine API over a unix socket or
 * tcp:// (+TLS), with libcurl.
 *
 *   local docker = require "cork.docker"
 *   local d <close> = docker.connect()          -- DOCKER_HOST, negotiates the API
 *   local net = d:network_create{name = "x", labels = {["cork.slug"] = "x"}}
 *   local c = d:container_create{name = "x", image = "img", ports = {...}}
 *   d:container_start(c.id); print(d:host_port(c.id, 8888, "127.0.0.17"))
 *
 * One client = one curl easy handle driven through a private multi handle,
 * so connections are kept alive between calls and every wait polls the
 * interrupt flag at least every 100 ms. Exec start uses its own connection
 * (CURLOPT_CONNECT_ONLY) because Docker hijacks it for the raw stream.
 * JSON is lua-cjson, reached through require "cork.json".
 *
 * Request and response bodies are Lua tables in Docker's own shapes for raw
 * answers (inspect, lists, version, info) and small snake_case tables where
 * cork builds the request (exec, logs here; create, wait, ... in
 * lua/cork/docker.lua on request()); docs/api.md has every function, option
 * and error kind.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "docker_priv.h"
#include "modules.h"

/* ---- the client's own methods ------------------------------------------- */


static int client_close(lua_State *L)
{
	client *c = luaL_checkudata(L, 1, CLIENT_MT);
	if (!c->closed)
		dk_client_free(c);
	return 0;
}

static int client_tostring(lua_State *L)
{
	client *c = luaL_checkudata(L, 1, CLIENT_MT);
	if (c->closed)
		lua_pushstring(L, "cork.docker.Client (closed)");
	else
		lua_pushfstring(L, "cork.docker.Client (%s, API %s)", c->endpoint, c->api);
	return 1;
}

/* d:api_version() -> "1.41" */
static int client_api_version(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	lua_pushstring(L, c->api);
	return 1;
}

/* d:endpoint() -> "unix:///var/run/docker.sock" */
static int client_endpoint(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	lua_pushstring(L, c->endpoint);
	return 1;
}

/* d:ping() -> {api_version=, os_type=, server=, experimental=, builder_version=} */
static int docker_ping(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	long status = dk_perform(L, c, "GET", "/_ping", NULL, 0, NULL, c->timeout_ms);
	if (status != 200)
		dk_raise_status(L, c, status, "GET", "/_ping", 0);
	lua_createtable(L, 0, 5);
	lua_pushstring(L, c->h_api);
	lua_setfield(L, -2, "api_version");
	lua_pushstring(L, c->h_os);
	lua_setfield(L, -2, "os_type");
	lua_pushstring(L, c->h_server);
	lua_setfield(L, -2, "server");
	lua_pushboolean(L, strcmp(c->h_exp, "true") == 0);
	lua_setfield(L, -2, "experimental");
	if (c->h_builder[0]) {
		lua_pushstring(L, c->h_builder);
		lua_setfield(L, -2, "builder_version");
	}
	return 1;
}

/* d:version() -> /version answer */
static int docker_version(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	dk_call(L, c, "GET", "/version", 0, 0, 0);
	return 1;
}

/* d:info() -> /info answer */
static int docker_info(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	dk_call(L, c, "GET", "/info", 0, 0, 0);
	return 1;
}

/* ---- raw requests --------------------------------------------------------- */

static const char *const request_opts[] = {"query", "body", "timeout", "content_type", "output",
                                           "progress", "headers", "redact", "grace", NULL};

/* c->hdr_extra = base + the `headers` table at index hi ({Name = "value"}).
 * Names are tokens, values one line; values are never echoed (a registry
 * credential may be one). */
static struct curl_slist *extra_headers(lua_State *L, client *c, int hi, struct curl_slist *base)
{
	curl_slist_free_all(c->hdr_extra);
	c->hdr_extra = NULL;
	for (struct curl_slist *b = base; b; b = b->next) {
		struct curl_slist *x = curl_slist_append(c->hdr_extra, b->data);
		if (!x)
			luaL_error(L, "out of memory");
		c->hdr_extra = x;
	}
	lua_pushnil(L);
	while (lua_next(L, hi)) {
		if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "option 'headers': names and values must be strings");
		size_t nl, vl;
		const char *n = lua_tolstring(L, -2, &nl), *v = lua_tolstring(L, -1, &vl);
		int ok = nl > 0 && nl < 128 && vl < 8192;
		for (size_t i = 0; ok && i < nl; i++)
			ok = (n[i] >= 'A' && n[i] <= 'Z') || (n[i] >= 'a' && n[i] <= 'z') ||
			     (n[i] >= '0' && n[i] <= '9') || n[i] == '-' || n[i] == '_';
		for (size_t i = 0; ok && i < vl; i++)
			ok = v[i] != '\r' && v[i] != '\n' && v[i] != '\0';
		if (!ok)
			luaL_error(L, "option 'headers': bad header '%s' (a name is letters, digits, '-'; "
			           "a value is one line)", nl < 128 ? n : "(too long)");
		lua_pushfstring(L, "%s: %s", n, v);
		struct curl_slist *x = curl_slist_append(c->hdr_extra, lua_tostring(L, -1));
		lua_pop(L, 2);
		if (!x)
			luaL_error(L, "out of memory");
		c->hdr_extra = x;
	}
	return c->hdr_extra;
}

/* path + the request's `query` table at qi (0 = none) as "?k=v&..."; pushes
 * the full path. Values: strings, numbers, booleans (1/0), tables (JSON). */
static const char *push_query_path(lua_State *L, const char *path, int qi)
{
	if (!qi) {
		lua_pushstring(L, path);
		return lua_tostring(L, -1);
	}
	luaL_argcheck(L, lua_istable(L, qi), 4, "'query' must be a table");
	/* encoded values in a table, and the keys in a list: a luaL_Buffer
	 * cannot share the stack with lua_next */
	lua_newtable(L);
	int vi = lua_gettop(L);
	lua_newtable(L);
	int ki = vi + 1;
	lua_Integer nk = 0;
	lua_pushnil(L);
	while (lua_next(L, qi)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			luaL_error(L, "query keys must be strings");
		int t2 = lua_type(L, -1);
		if (t2 == LUA_TTABLE)
			dk_json_encode(L, -1);
		else if (t2 == LUA_TBOOLEAN)
			lua_pushstring(L, lua_toboolean(L, -1) ? "1" : "0");
		else if (t2 == LUA_TSTRING || t2 == LUA_TNUMBER)
			lua_pushstring(L, lua_tostring(L, -1));
		else
			luaL_error(L, "query value '%s' has a bad type (%s)", lua_tostring(L, -2),
			           lua_typename(L, t2));
		lua_pushvalue(L, -3);
		lua_rawseti(L, ki, ++nk);
		lua_pushvalue(L, -3);
		lua_insert(L, -2);
		lua_rawset(L, vi);
		lua_pop(L, 1);
	}
	int first = strchr(path, '?') == NULL;
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addstring(&b, path);
	for (lua_Integer i = 1; i <= nk; i++) {
		lua_rawgeti(L, ki, i);
		lua_rawget(L, vi);
		const char *v = lua_tostring(L, -1);
		lua_pop(L, 1); /* the value lives in vi */
		lua_rawgeti(L, ki, i);
		const char *k = lua_tostring(L, -1);
		lua_pop(L, 1); /* the key lives in ki */
		luaL_addchar(&b, first ? '?' : '&');
		first = 0;
		dk_add_escaped(&b, k, strlen(k));
		luaL_addchar(&b, '=');
		dk_add_escaped(&b, v, strlen(v));
	}
	luaL_pushresult(&b);
	lua_replace(L, vi);
	lua_settop(L, vi);
	return lua_tostring(L, -1);
}

/* The request's `body` option: a table (encoded as JSON) or a string.
 * Pushes the text (or nil) and returns it. */
static const char *push_body(lua_State *L, int oi, size_t *blen)
{
	*blen = 0;
	if (oi)
		lua_getfield(L, oi, "body");
	else
		lua_pushnil(L);
	if (lua_istable(L, -1)) {
		dk_json_encode(L, -1);
		lua_replace(L, -2);
	} else if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING) {
		luaL_error(L, "option 'body' must be a table or a string");
	}
	return lua_isnil(L, -1) ? NULL : lua_tolstring(L, -1, blen);
}

/* The answer of a request: {status=, body=} or, with output, {status=,
 * bytes=, path=}. */
static void push_answer(lua_State *L, client *c, long status, struct sink *out)
{
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, status);
	lua_setfield(L, -2, "status");
	if (out) {
		lua_pushinteger(L, (lua_Integer)out->bytes);
		lua_setfield(L, -2, "bytes");
		lua_pushstring(L, out->path);
		lua_setfield(L, -2, "path");
	} else if (c->resp.n) {
		if (!dk_json_decode(L, c->resp.p, c->resp.n)) {
			lua_pop(L, 1);
			lua_pushlstring(L, c->resp.p, c->resp.n);
		}
		lua_setfield(L, -2, "body");
	}
}

/* d:request(method, path[, {query, body, timeout, content_type, output,
 * progress, headers, redact}]) -> {status=, body=} or, with output,
 * {status=, bytes=, path=} */
static int docker_request(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *method = luaL_checkstring(L, 2);
	const char *path = luaL_checkstring(L, 3);
	luaL_argcheck(L, path[0] == '/', 3, "path must start with '/'");
	for (const char *m = method; *m; m++)
		luaL_argcheck(L, *m >= 'A' && *m <= 'Z', 2, "method must be upper-case letters");
	int oi = lua_isnoneornil(L, 4) ? 0 : 4;
	if (oi)
		cork_check_options(L, oi, request_opts);
	double t = cork_opt_number(L, oi, "timeout", 0);
	double grace = cork_opt_number(L, oi, "grace", 0);
	luaL_argcheck(L, grace >= 0 && grace <= 3600, 4, "'grace' must be between 0 and 3600 seconds");
	const char *ctype = cork_opt_string(L, oi, "content_type", NULL);
	const char *output = cork_opt_string(L, oi, "output", NULL);
	lua_settop(L, 4);
	/* fixed indices: 5 progress (perform_io calls it), 6 query, 7 redact */
	if (oi) {
		lua_getfield(L, oi, "progress");
		lua_getfield(L, oi, "query");
		lua_getfield(L, oi, "redact");
	} else {
		lua_settop(L, 7);
	}
	if (!lua_isnil(L, 5) && !lua_isfunction(L, 5))
		return luaL_error(L, "option 'progress' must be a function");
	if (!lua_isnil(L, 5) && !output)
		return luaL_error(L, "option 'progress' needs 'output'");
	if (!lua_isnil(L, 7))
		luaL_argcheck(L, lua_istable(L, 7), 4, "'redact' must be a list of strings");
	int pi = lua_isnil(L, 5) ? 0 : 5, sec = lua_isnil(L, 7) ? 0 : 7;
	const char *full = push_query_path(L, path, lua_isnil(L, 6) ? 0 : 6);
	size_t blen;
	const char *body = push_body(L, oi, &blen);
	struct curl_slist *hdrs = body ? c->hdr_json : NULL;
	if (ctype && strcmp(ctype, "application/x-tar") == 0)
		hdrs = c->hdr_tar;
	else if (ctype && strcmp(ctype, "application/json") != 0)
		return luaL_error(L, "content_type must be application/json or application/x-tar");
	if (oi) {
		lua_getfield(L, oi, "headers");
		if (!lua_isnil(L, -1)) {
			luaL_argcheck(L, lua_istable(L, -1), 4, "'headers' must be a table");
			hdrs = extra_headers(L, c, lua_gettop(L), hdrs);
		}
		lua_pop(L, 1);
	}
	/* timeout: seconds; math.huge = no limit (waits as long as a container) */
	long tm = t == HUGE_VAL ? 0 : t > 0 ? (long)(t * 1000) : c->timeout_ms;
	struct sink sk = {.path = output, .fd = -1, .progress = pi};
	c->grace = grace;
	long status = dk_perform_io(L, c, method, full, body, blen, hdrs, tm, NULL, 0,
	                            output ? &sk : NULL);
	if (!dk_status_kind_ok(status) && status != 304) {
		if (output && sk.regular)
			unlink(output); /* the error went to c->resp; the file is empty */
		dk_raise_status(L, c, status, method, full, sec);
	}
	push_answer(L, c, status, output ? &sk : NULL);
	return 1;
}

/* docker.array(t) -> t, marked as a JSON array (so that an empty table is
 * sent as [] rather than {}) */
static int docker_array(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	dk_mark_array(L);
	return 1;
}

/* docker._encode(v) -> the JSON text a request body would carry (tests) */
static int docker_encode(lua_State *L)
{
	luaL_checkany(L, 1);
	dk_json_encode(L, 1);
	return 1;
}

/* docker._timeout(d) -> the client's call timeout in seconds */
static int docker_timeout(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	lua_pushnumber(L, c->timeout_ms / 1000.0);
	return 1;
}

/* ---- module --------------------------------------------------------------- */

static const luaL_Reg docker_functions[] = {
	{"connect", docker_connect},
	{"_negotiate", docker_negotiate},
	{"_filters", docker_filters},
	{"_encode", docker_encode},
	{"_timeout", docker_timeout},
	{"array", docker_array},
	{NULL, NULL}
};

static const luaL_Reg client_methods[] = {
	{"close", client_close},
	{"api_version", client_api_version},
	{"endpoint", client_endpoint},
	{"ping", docker_ping},
	{"version", docker_version},
	{"info", docker_info},
	{"request", docker_request},
	{NULL, NULL}
};

static const luaL_Reg client_metamethods[] = {
	{"__close", client_close},
	{"__gc", client_close},
	{"__tostring", client_tostring},
	{"__index", NULL},
	{NULL, NULL}
};


int luaopen_cork__docker(lua_State *L)
{
	/* libcurl is loaded by docker.connect, not here: requiring the module
	 * costs nothing to a process that never talks to Docker */
	luaL_newmetatable(L, ARRAY_MT);
	lua_pop(L, 1);
	/* JSON answers: the runtime's lua-cjson */
	lua_getglobal(L, "require");
	lua_pushstring(L, "cork.json");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "decode");
	lua_setfield(L, LUA_REGISTRYINDEX, "cork.docker.decode");
	lua_pop(L, 1);

	luaL_newmetatable(L, CLIENT_MT);
	luaL_setfuncs(L, client_metamethods, 0);
	lua_newtable(L);
	luaL_setfuncs(L, client_methods, 0);
	luaL_setfuncs(L, dk_image_methods, 0);
	luaL_setfuncs(L, dk_exec_methods, 0);
	luaL_setfuncs(L, dk_events_methods, 0);
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, "__index");
	lua_insert(L, -2);
	lua_pop(L, 1);                       /* the methods stay, for _Client */
	dk_events_open(L);

	luaL_newlib(L, docker_functions);
	lua_insert(L, -2);
	lua_setfield(L, -2, "_Client");      /* lua/cork/docker.lua adds methods */
	lua_pushstring(L, API_MIN_STR);
	lua_setfield(L, -2, "API_MIN");
	lua_pushstring(L, API_MAX_STR);
	lua_setfield(L, -2, "API_MAX");
	return 1;
}
