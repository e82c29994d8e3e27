/*
 * docker.c: require "cork.docker", the Docker Engine API over a unix socket
 * or tcp:// (+TLS), with libcurl.
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
 * cork builds the request (create, exec, wait, logs, ...); docs/api.md has
 * every function, option and error kind.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <lua.h>
#include <lauxlib.h>

#include "runtime.h"

#define CLIENT_MT "cork.docker.Client"
#define EVENTS_MT "cork.docker.Events"

/* Client API range: the lowest engine we support is Debian 12's (20.10,
 * API 1.41); the highest is the newest whose shapes this file handles (1.52,
 * Docker 29). Current engines (29.x) refuse clients below 1.44, which is why
 * the client talks the highest version both sides support. What differs in
 * that range, for the calls here: several networks at create time (1.44; on
 * older engines the others are connected after create), the stop signal
 * (1.42; emulated before), the top-level NetworkSettings address fields
 * (gone in 1.52; nothing here reads them: Networks and Ports exist on every
 * version), the deprecated status/id/from of events (gone in 1.52: read
 * Type, Action, Actor). tests/c/test_docker_versions.c replays recorded
 * answers of 20.10, 25, 27, 28 and 29 against these rules. */
#define API_MIN_MAJOR 1
#define API_MIN_MINOR 41
#define API_MAX_MAJOR 1
#define API_MAX_MINOR 52
#define API_MAX_STR "1.52"
#define API_MIN_STR "1.41"
/* Engines that answer /_ping without Api-Version predate 1.25. */
#define API_FALLBACK_STR "1.24"

#define DEFAULT_SOCKET "/var/run/docker.sock"
#define DEFAULT_TIMEOUT_MS 60000L
#define DEFAULT_CONNECT_MS 5000L
#define POLL_MS 100

/* ---- growable byte buffer (plain C, never raises) ----------------------- */

struct buf {
	char *p;
	size_t n, cap;
	int oom;
};

static int buf_add(struct buf *b, const void *d, size_t n)
{
	if (b->oom)
		return -1;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return -1;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
	b->p[b->n] = '\0';
	return 0;
}

static void buf_reset(struct buf *b)
{
	b->n = 0;
	b->oom = 0;
	if (b->p)
		b->p[0] = '\0';
	/* do not keep a huge buffer around after one big answer */
	if (b->cap > (1u << 22)) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
	}
}

static void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
	b->oom = 0;
}

/* ---- the client -------------------------------------------------------- */

typedef struct {
	CURL *easy;             /* the keep-alive handle for ordinary calls */
	CURLM *multi;           /* drives easy, so waits can poll interrupts */
	CURL *hj;               /* exec start: hijacked connection, per call */
	struct curl_slist *hdr_json, *hdr_tar;
	struct curl_slist *hdr_extra; /* request's `headers` (freed on the next call) */
	struct buf resp;        /* body of the last answer */
	struct buf out, err;    /* exec / logs demultiplexed output */
	FILE *upload;           /* image_import from a path */
	char *endpoint;         /* as given: unix:///x or tcp://h:p */
	char *sock;             /* unix socket path, or NULL */
	char *base;             /* http://docker or https://h:p */
	char *ca, *cert, *key;  /* TLS files (tcp:// with DOCKER_TLS_VERIFY) */
	int tls;
	int api_major, api_minor;
	char api[32];
	long timeout_ms, connect_ms;
	char errbuf[CURL_ERROR_SIZE];
	/* a few answer headers of the last call */
	char h_api[24], h_os[24], h_server[96], h_ctype[96], h_exp[8], h_builder[8];
	int closed;
	int busy;               /* inside a request's progress function */
	double grace;           /* next request: seconds it may run on after an
	                         * interrupt (creates: see CREATE_GRACE) */
} client;

/* A create that was sent is let finish for up to this long after an
 * interrupt: abandoning it would leave the engine creating something after
 * cork has given up on it (and its cleanup saw "not found"). The interrupt is
 * raised at the next checkpoint, with the resource made and known. */
#define CREATE_GRACE 15.0

typedef struct {
	CURL *easy;
	CURLM *multi;
	struct buf data;
	size_t off;             /* first unread byte of data */
	int done;               /* stream ended (until reached / closed by daemon) */
	int closed;
	CURLcode result;
	long status;
	char errbuf[CURL_ERROR_SIZE];
} events;

static client *check_client(lua_State *L, int idx)
{
	client *c = luaL_checkudata(L, idx, CLIENT_MT);
	if (c->closed)
		luaL_error(L, "attempt to use a closed docker client");
	return c;
}

static void client_free(client *c)
{
	if (c->hj)
		curl_easy_cleanup(c->hj);
	if (c->easy && c->multi)
		curl_multi_remove_handle(c->multi, c->easy);
	if (c->easy)
		curl_easy_cleanup(c->easy);
	if (c->multi)
		curl_multi_cleanup(c->multi);
	curl_slist_free_all(c->hdr_json);
	curl_slist_free_all(c->hdr_tar);
	curl_slist_free_all(c->hdr_extra);
	c->hdr_extra = NULL;
	if (c->upload)
		fclose(c->upload);
	buf_free(&c->resp);
	buf_free(&c->out);
	buf_free(&c->err);
	free(c->endpoint);
	free(c->sock);
	free(c->base);
	free(c->ca);
	free(c->cert);
	free(c->key);
	c->hj = c->easy = NULL;
	c->multi = NULL;
	c->hdr_json = c->hdr_tar = NULL;
	c->upload = NULL;
	c->endpoint = c->sock = c->base = c->ca = c->cert = c->key = NULL;
	c->closed = 1;
}

/* ---- JSON ----------------------------------------------------------------- */

/* Request bodies are encoded here, not with lua-cjson: Debian's lua-cjson
 * (2.1.0) encodes every empty table as {}, and Docker refuses an object
 * where it wants a list ("Cmd": {}, "ExtraHosts": {}). A table is a JSON
 * array when it carries the ARRAY_MT metatable (the option lists cork
 * builds: empty ones too) or is a non-empty sequence 1..n; any other table
 * is an object with string keys (an empty one is {}). cork.json.null (a
 * NULL light userdata) is null. Answers are decoded with lua-cjson. */
#define ARRAY_MT "cork.docker.array"
#define JSON_MAX_DEPTH 64

/* Mark the table at the top of the stack as a JSON array. */
static void mark_array(lua_State *L)
{
	luaL_setmetatable(L, ARRAY_MT);
}

/* Append the string at the top of the stack to the piece list at out. */
static void json_piece(lua_State *L, int out, lua_Integer *n)
{
	lua_rawseti(L, out, ++*n);
}

static void json_lit(lua_State *L, int out, lua_Integer *n, const char *s)
{
	lua_pushstring(L, s);
	json_piece(L, out, n);
}

static void json_str(lua_State *L, int out, lua_Integer *n, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addchar(&b, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\') {
			luaL_addchar(&b, '\\');
			luaL_addchar(&b, (char)ch);
		} else if (ch == '\n') {
			luaL_addstring(&b, "\\n");
		} else if (ch == '\t') {
			luaL_addstring(&b, "\\t");
		} else if (ch == '\r') {
			luaL_addstring(&b, "\\r");
		} else if (ch < 0x20 || ch == 0x7f) {
			luaL_addstring(&b, "\\u00");
			luaL_addchar(&b, hex[ch >> 4]);
			luaL_addchar(&b, hex[ch & 15]);
		} else {
			luaL_addchar(&b, (char)ch);
		}
	}
	luaL_addchar(&b, '"');
	luaL_pushresult(&b);
	json_piece(L, out, n);
}

static int json_is_array(lua_State *L, int v, lua_Integer *len)
{
	*len = (lua_Integer)lua_rawlen(L, v);
	if (lua_getmetatable(L, v)) {
		luaL_getmetatable(L, ARRAY_MT);
		int mark = lua_rawequal(L, -1, -2);
		lua_pop(L, 2);
		if (mark)
			return 1;
	}
	if (*len == 0)
		return 0;
	lua_Integer keys = 0;
	lua_pushnil(L);
	while (lua_next(L, v)) {
		lua_pop(L, 1);
		keys++;
	}
	return keys == *len;
}

static void json_value(lua_State *L, int v, int out, lua_Integer *n, int depth)
{
	switch (lua_type(L, v)) {
	case LUA_TBOOLEAN:
		json_lit(L, out, n, lua_toboolean(L, v) ? "true" : "false");
		return;
	case LUA_TNUMBER:
		if (lua_isinteger(L, v)) {
			lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, v));
		} else {
			double d = lua_tonumber(L, v);
			if (d != d || d - d != 0)
				luaL_error(L, "cannot encode %s in a Docker request", d != d ? "NaN" : "infinity");
			char num[64];
			snprintf(num, sizeof num, "%.17g", d);
			lua_pushstring(L, num);
		}
		json_piece(L, out, n);
		return;
	case LUA_TSTRING: {
		size_t len;
		const char *s = lua_tolstring(L, v, &len);
		json_str(L, out, n, s, len);
		return;
	}
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, v) == NULL) {
			json_lit(L, out, n, "null");
			return;
		}
		break;
	case LUA_TTABLE: {
		if (depth > JSON_MAX_DEPTH)
			luaL_error(L, "cannot encode a Docker request nested deeper than %d", JSON_MAX_DEPTH);
		luaL_checkstack(L, 6, "JSON encoding");
		lua_Integer len;
		if (json_is_array(L, v, &len)) {
			json_lit(L, out, n, "[");
			for (lua_Integer i = 1; i <= len; i++) {
				if (i > 1)
					json_lit(L, out, n, ",");
				lua_rawgeti(L, v, i);
				json_value(L, lua_gettop(L), out, n, depth + 1);
				lua_pop(L, 1);
			}
			json_lit(L, out, n, "]");
			return;
		}
		json_lit(L, out, n, "{");
		int first = 1;
		lua_pushnil(L);
		while (lua_next(L, v)) {
			if (lua_type(L, -2) != LUA_TSTRING)
				luaL_error(L, "cannot encode a table with a %s key in a Docker request "
				           "(want a list 1..n or string keys)", luaL_typename(L, -2));
			if (!first)
				json_lit(L, out, n, ",");
			first = 0;
			size_t kl;
			const char *k = lua_tolstring(L, -2, &kl);
			json_str(L, out, n, k, kl);
			json_lit(L, out, n, ":");
			json_value(L, lua_gettop(L), out, n, depth + 1);
			lua_pop(L, 1);
		}
		json_lit(L, out, n, "}");
		return;
	}
	default:
		break;
	}
	luaL_error(L, "cannot encode a %s in a Docker request", luaL_typename(L, v));
}

/* Push the JSON text of the value at idx. */
static void json_encode(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	lua_newtable(L);
	int out = lua_gettop(L);
	lua_Integer n = 0;
	json_value(L, idx, out, &n, 0);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, out, i);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	lua_remove(L, out);
}

/* Decode s; on malformed JSON push nil and return 0. */
static int json_decode(lua_State *L, const char *s, size_t n)
{
	lua_getfield(L, LUA_REGISTRYINDEX, "cork.docker.decode");
	lua_pushlstring(L, s, n);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		lua_pop(L, 1);
		lua_pushnil(L);
		return 0;
	}
	return 1;
}

/* ---- small Lua helpers -------------------------------------------------- */

/* Percent-encode s (RFC 3986 unreserved kept) into b. */
static void add_escaped(luaL_Buffer *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
			luaL_addchar(b, (char)ch);
		} else {
			luaL_addchar(b, '%');
			luaL_addchar(b, hex[ch >> 4]);
			luaL_addchar(b, hex[ch & 15]);
		}
	}
}

/* A container / network / image reference: a string, or a table with an
 * `id` (what the create calls return). */
static const char *check_ref(lua_State *L, int idx)
{
	if (lua_type(L, idx) == LUA_TTABLE) {
		lua_getfield(L, idx, "id");
		if (lua_type(L, -1) != LUA_TSTRING) {
			lua_pop(L, 1);
			lua_getfield(L, idx, "Id");
		}
		if (lua_type(L, -1) == LUA_TSTRING) {
			lua_replace(L, idx);
			return lua_tostring(L, idx);
		}
		lua_pop(L, 1);
		luaL_argerror(L, idx, "table without an id");
	}
	const char *s = luaL_checkstring(L, idx);
	luaL_argcheck(L, *s != '\0', idx, "empty name");
	return s;
}

/* Option field k of table o as a string, or NULL when absent. The string
 * stays referenced by the option table, so the pointer outlives the pop. */
static const char *opt_str(lua_State *L, int o, const char *k)
{
	if (!o)
		return NULL;
	lua_getfield(L, o, k);
	int t = lua_type(L, -1);
	const char *s = NULL;
	if (t == LUA_TSTRING)
		s = lua_tostring(L, -1);
	else if (t != LUA_TNIL)
		luaL_error(L, "option '%s' must be a string (got %s)", k, lua_typename(L, t));
	lua_pop(L, 1);
	return s;
}

static int opt_bool(lua_State *L, int o, const char *k, int def)
{
	if (!o)
		return def;
	lua_getfield(L, o, k);
	int t = lua_type(L, -1);
	int v = def;
	if (t == LUA_TBOOLEAN)
		v = lua_toboolean(L, -1);
	else if (t != LUA_TNIL)
		luaL_error(L, "option '%s' must be a boolean (got %s)", k, lua_typename(L, t));
	lua_pop(L, 1);
	return v;
}

static double opt_num(lua_State *L, int o, const char *k, double def)
{
	if (!o)
		return def;
	lua_getfield(L, o, k);
	int t = lua_type(L, -1);
	double v = def;
	if (t == LUA_TNUMBER)
		v = lua_tonumber(L, -1);
	else if (t != LUA_TNIL)
		luaL_error(L, "option '%s' must be a number (got %s)", k, lua_typename(L, t));
	lua_pop(L, 1);
	return v;
}

/* Push option k of table o as an array of strings (a new table), or nothing
 * and return 0 when absent. */
static int push_strlist(lua_State *L, int o, const char *k)
{
	lua_getfield(L, o, k);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return 0;
	}
	if (!lua_istable(L, -1))
		luaL_error(L, "option '%s' must be a list of strings (got %s)", k, luaL_typename(L, -1));
	int src = lua_gettop(L);
	lua_Integer n = (lua_Integer)lua_rawlen(L, src);
	lua_createtable(L, (int)n, 0);
	mark_array(L);
	for (lua_Integer i = 1; i <= n; i++) {
		int t = lua_rawgeti(L, src, i);
		if (t != LUA_TSTRING && t != LUA_TNUMBER)
			luaL_error(L, "option '%s'[%d] must be a string (got %s)", k, (int)i, lua_typename(L, t));
		lua_tostring(L, -1);
		lua_rawseti(L, -2, i);
	}
	lua_remove(L, src);
	return 1;
}

/* Push option k (a map of string -> string) as a new table, or nothing. */
static int push_strmap(lua_State *L, int o, const char *k)
{
	lua_getfield(L, o, k);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return 0;
	}
	if (!lua_istable(L, -1))
		luaL_error(L, "option '%s' must be a table of strings (got %s)", k, luaL_typename(L, -1));
	int src = lua_gettop(L);
	lua_newtable(L);
	lua_pushnil(L);
	while (lua_next(L, src)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			luaL_error(L, "option '%s' keys must be strings", k);
		int t = lua_type(L, -1);
		if (t == LUA_TBOOLEAN) {
			lua_pushstring(L, lua_toboolean(L, -1) ? "true" : "false");
			lua_replace(L, -2);
		} else if (t != LUA_TSTRING && t != LUA_TNUMBER) {
			luaL_error(L, "option '%s'.%s must be a string (got %s)", k, lua_tostring(L, -2),
			           lua_typename(L, t));
		}
		lua_tostring(L, -1);
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, -4);
	}
	lua_remove(L, src);
	return 1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Environment: {"K=V", ...} or {K = "V"} -> array of "K=V" (a map sorted by
 * key). Every value is also appended to the secrets table at sec so that
 * error messages can be redacted. Pushes the array or nothing (returns 0). */
static int push_env(lua_State *L, int o, const char *k, int sec)
{
	lua_getfield(L, o, k);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return 0;
	}
	if (!lua_istable(L, -1))
		luaL_error(L, "option '%s' must be a table (got %s)", k, luaL_typename(L, -1));
	int src = lua_gettop(L);
	lua_newtable(L);
	mark_array(L);
	int dst = src + 1;
	lua_Integer n = 0;
	lua_pushnil(L);
	while (lua_next(L, src)) {
		int kt = lua_type(L, -2), vt = lua_type(L, -1);
		if (vt != LUA_TSTRING && vt != LUA_TNUMBER)
			luaL_error(L, "option '%s' values must be strings (got %s)", k, lua_typename(L, vt));
		if (kt == LUA_TNUMBER) {
			const char *s = lua_tostring(L, -1);
			if (!strchr(s, '='))
				luaL_error(L, "option '%s' entry must be \"NAME=value\"", k);
			lua_pushstring(L, strchr(s, '=') + 1);
			lua_rawseti(L, sec, (lua_Integer)lua_rawlen(L, sec) + 1);
			lua_pushvalue(L, -1);
		} else if (kt == LUA_TSTRING) {
			const char *name = lua_tostring(L, -2);
			if (!*name || strchr(name, '='))
				luaL_error(L, "option '%s' has a bad variable name", k);
			lua_pushvalue(L, -1);
			lua_tostring(L, -1);
			lua_rawseti(L, sec, (lua_Integer)lua_rawlen(L, sec) + 1);
			lua_pushfstring(L, "%s=%s", name, lua_tostring(L, -1));
		} else {
			luaL_error(L, "option '%s' keys must be names or list indices", k);
		}
		lua_rawseti(L, dst, ++n);
		lua_pop(L, 1);
	}
	/* sort for a stable request (map order is random) */
	if (n > 1) {
		const char **v = lua_newuserdatauv(L, sizeof(char *) * (size_t)n, 0);
		for (lua_Integer i = 1; i <= n; i++) {
			lua_rawgeti(L, dst, i);
			v[i - 1] = lua_tostring(L, -1);
			lua_pop(L, 1); /* still referenced by dst */
		}
		qsort(v, (size_t)n, sizeof(char *), cmp_str);
		lua_createtable(L, (int)n, 0);
		mark_array(L);
		for (lua_Integer i = 1; i <= n; i++) {
			lua_pushstring(L, v[i - 1]);
			lua_rawseti(L, -2, i);
		}
		lua_replace(L, dst);
		lua_pop(L, 1);
	}
	lua_remove(L, src);
	return 1;
}

/* ---- API version logic (pure; unit-tested through docker._negotiate) ---- */

static int parse_version(const char *s, int *major, int *minor)
{
	char *end;
	if (!s || !*s)
		return -1;
	long a = strtol(s, &end, 10);
	if (end == s || *end != '.')
		return -1;
	const char *p = end + 1;
	long b = strtol(p, &end, 10);
	if (end == p || *end != '\0' || a < 0 || b < 0 || a > 1000 || b > 100000)
		return -1;
	*major = (int)a;
	*minor = (int)b;
	return 0;
}

static int vercmp(int a1, int b1, int a2, int b2)
{
	if (a1 != a2)
		return a1 < a2 ? -1 : 1;
	if (b1 != b2)
		return b1 < b2 ? -1 : 1;
	return 0;
}

/* Pick the API version from the daemon's /_ping Api-Version (daemon_max,
 * NULL when absent) and, when known, /version's MinAPIVersion (daemon_min).
 * On success writes "M.m" to out and returns NULL; else returns a message. */
static const char *negotiate(const char *daemon_max, const char *daemon_min, char *out,
                             size_t outlen, char *msg, size_t msglen)
{
	int ma, mi, na = 0, ni = 0;
	if (!daemon_max || !*daemon_max)
		daemon_max = API_FALLBACK_STR;
	if (parse_version(daemon_max, &ma, &mi) != 0) {
		snprintf(msg, msglen, "daemon reported a malformed API version \"%s\"", daemon_max);
		return msg;
	}
	if (daemon_min && *daemon_min && parse_version(daemon_min, &na, &ni) != 0) {
		snprintf(msg, msglen, "daemon reported a malformed minimum API version \"%s\"", daemon_min);
		return msg;
	}
	if (vercmp(ma, mi, API_MIN_MAJOR, API_MIN_MINOR) < 0) {
		snprintf(msg, msglen, "daemon API %d.%d is older than the oldest cork supports (%s)",
		         ma, mi, API_MIN_STR);
		return msg;
	}
	if (vercmp(ma, mi, API_MAX_MAJOR, API_MAX_MINOR) > 0) {
		ma = API_MAX_MAJOR;
		mi = API_MAX_MINOR;
	}
	if (daemon_min && *daemon_min && vercmp(na, ni, ma, mi) > 0) {
		snprintf(msg, msglen, "daemon requires API %d.%d or newer; cork speaks %s to %s",
		         na, ni, API_MIN_STR, API_MAX_STR);
		return msg;
	}
	snprintf(out, outlen, "%d.%d", ma, mi);
	return NULL;
}

/* docker._negotiate(api_version, min_api_version) -> version | nil, message */
static int docker_negotiate(lua_State *L)
{
	const char *mx = luaL_optstring(L, 1, NULL);
	const char *mn = luaL_optstring(L, 2, NULL);
	char out[32], msg[160];
	const char *e = negotiate(mx, mn, out, sizeof out, msg, sizeof msg);
	if (e) {
		lua_pushnil(L);
		lua_pushstring(L, e);
		return 2;
	}
	lua_pushstring(L, out);
	return 1;
}

/* Filters {label = {"k=v"} | "k=v", name = {...}} -> JSON text in Docker's
 * map form {"label":{"k=v":true}} (accepted by every API version). Pushes
 * the JSON string. */
static void push_filters(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	luaL_checktype(L, idx, LUA_TTABLE);
	lua_newtable(L);
	int out = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			luaL_error(L, "filter names must be strings");
		const char *name = lua_tostring(L, -2);
		lua_newtable(L);
		int set = lua_gettop(L);
		int t = lua_type(L, -2);
		if (t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN) {
			if (t == LUA_TBOOLEAN)
				lua_pushstring(L, lua_toboolean(L, -2) ? "true" : "false");
			else
				lua_pushstring(L, lua_tostring(L, -2));
			lua_pushboolean(L, 1);
			lua_rawset(L, set);
		} else if (t == LUA_TTABLE) {
			lua_Integer n = (lua_Integer)lua_rawlen(L, -2);
			for (lua_Integer i = 1; i <= n; i++) {
				int et = lua_rawgeti(L, -2, i);
				if (et != LUA_TSTRING && et != LUA_TNUMBER)
					luaL_error(L, "filter '%s' values must be strings", name);
				lua_tostring(L, -1);
				lua_pushboolean(L, 1);
				lua_rawset(L, set);
			}
		} else {
			luaL_error(L, "filter '%s' must be a string or a list of strings", name);
		}
		lua_setfield(L, out, name);
		lua_pop(L, 1);
	}
	json_encode(L, out);
	lua_remove(L, out);
}

/* docker._filters(tbl) -> JSON text (for unit tests) */
static int docker_filters(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	push_filters(L, 1);
	return 1;
}

/* ---- transport ---------------------------------------------------------- */

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	return buf_add(b, p, size * n) == 0 ? size * n : 0;
}

/* An answer streamed to a file (request's `output`): a 2xx body goes to fd,
 * anything else (Docker's short error message) to c->resp as usual. */
struct sink {
	client *c;
	const char *path;
	int fd;
	int err;                /* errno of a failed open/write/close, or 0 */
	int progress;           /* stack index of the progress function, or 0 */
	int regular;            /* fd is a regular file (removed on failure) */
	long long bytes;
};

static size_t on_sink(char *p, size_t size, size_t n, void *ud)
{
	struct sink *k = ud;
	size_t len = size * n;
	long code = 0;
	curl_easy_getinfo(k->c->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code > 299)
		return on_write(p, size, n, &k->c->resp);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(k->fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			k->err = w < 0 ? errno : EIO;
			return 0; /* curl stops: CURLE_WRITE_ERROR */
		}
		off += (size_t)w;
	}
	k->bytes += (long long)len;
	return len;
}

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void copy_header(char *dst, size_t cap, const char *v, size_t n)
{
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	client *c = ud;
	size_t len = size * n;
	static const struct { const char *name; size_t off, cap; } want[] = {
		{"api-version:", offsetof(client, h_api), sizeof(((client *)0)->h_api)},
		{"ostype:", offsetof(client, h_os), sizeof(((client *)0)->h_os)},
		{"server:", offsetof(client, h_server), sizeof(((client *)0)->h_server)},
		{"content-type:", offsetof(client, h_ctype), sizeof(((client *)0)->h_ctype)},
		{"docker-experimental:", offsetof(client, h_exp), sizeof(((client *)0)->h_exp)},
		{"builder-version:", offsetof(client, h_builder), sizeof(((client *)0)->h_builder)},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		size_t k = strlen(want[i].name);
		if (len > k && strncasecmp(p, want[i].name, k) == 0) {
			copy_header((char *)c + want[i].off, want[i].cap, p + k, len - k);
			break;
		}
	}
	return len;
}

static void clear_headers(client *c)
{
	c->h_api[0] = c->h_os[0] = c->h_server[0] = c->h_ctype[0] = c->h_exp[0] = c->h_builder[0] = '\0';
}

/* Common options of every handle of this client (after a reset). */
static void easy_base(client *c, CURL *e, char *errbuf, long timeout_ms)
{
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");          /* never an env proxy */
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	if (c->sock)
		curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, c->sock);
	if (c->tls) {
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca);
		curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert);
		curl_easy_setopt(e, CURLOPT_SSLKEY, c->key);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	}
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	errbuf[0] = '\0';
}

/* Raise the error for a transport failure (no HTTP answer). */
static int raise_transport(lua_State *L, client *c, CURLcode rc, long oserr, const char *method,
                           const char *path, double timeout_s)
{
	const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
	const char *kind = "unavailable";
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		/* a connect that timed out is still "no daemon answered" */
		kind = "timeout";
	}
	int tls_failed = c->tls &&
		(rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
		 rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CIPHER ||
		 rc == CURLE_SSL_ISSUER_ERROR ||
		 rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING);
	/* With TLS 1.3 the engine checks the client certificate after the
	 * client's side of the handshake: its refusal arrives as an alert, or
	 * (a race) as a connection closed under our first request. */
	if (tls_failed && (rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING) &&
	    !strstr(why, "alert"))
		why = "the engine closed the connection during or right after the handshake "
		      "(does it trust this client certificate?)";
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
	    (rc == CURLE_OPERATION_TIMEDOUT && strstr(why, "onnect"))) {
		if (oserr)
			why = strerror((int)oserr);
		cork_error_push(L, "unavailable", "no Docker daemon answered at %s (%s)", c->endpoint, why);
	} else if (tls_failed) {
		/* a wrong CA, a client certificate the engine does not trust, ... */
		cork_error_push(L, "unavailable", "TLS with %s failed: %s (CA %s, client certificate %s)",
		                c->endpoint, why, c->ca, c->cert);
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, "tls");
	} else if (strcmp(kind, "timeout") == 0) {
		cork_error_push(L, "timeout", "docker %s %s: no answer within %g s from %s", method, path,
		                timeout_s, c->endpoint);
	} else {
		cork_error_push(L, kind, "docker %s %s: %s (%s)", method, path, why, c->endpoint);
	}
	lua_pushstring(L, method);
	lua_setfield(L, -2, "method");
	lua_pushstring(L, path);
	lua_setfield(L, -2, "path");
	lua_pushstring(L, c->endpoint);
	lua_setfield(L, -2, "endpoint");
	lua_pushinteger(L, (lua_Integer)rc);
	lua_setfield(L, -2, "curl_code");
	return lua_error(L);
}

static int status_kind_ok(long status)
{
	return status >= 200 && status < 300;
}

static const char *status_kind(long status)
{
	switch (status) {
	case 400: return "bad_request";
	case 404: return "not_found";
	case 409: return "conflict";
	case 503: return "unavailable";
	default: return "daemon";
	}
}

/* Replace every value of the secrets table at sec (and every registered
 * secret) in the string at the top of the stack with "***". */
static void redact_top(lua_State *L, int sec)
{
	if (sec) {
		lua_Integer n = (lua_Integer)lua_rawlen(L, sec);
		for (lua_Integer i = 1; i <= n; i++) {
			lua_rawgeti(L, sec, i);
			size_t vl;
			const char *v = lua_tolstring(L, -1, &vl);
			if (v && vl >= 3) {
				luaL_gsub(L, lua_tostring(L, -2), v, "***");
				lua_remove(L, -2); /* the value */
				lua_remove(L, -2); /* the old string */
			} else {
				lua_pop(L, 1);
			}
		}
	}
	size_t n;
	const char *s = lua_tolstring(L, -1, &n);
	cork_redact(L, s, n);
	lua_remove(L, -2);
}

/* Raise the cork error for an HTTP answer outside 2xx. The body of the
 * answer is in c->resp; sec (0 = none) holds values to redact. */
static int raise_status(lua_State *L, client *c, long status, const char *method, const char *path,
                        int sec)
{
	/* Docker's own message: {"message": "..."} (or plain text) */
	if (json_decode(L, c->resp.p ? c->resp.p : "", c->resp.n) && lua_istable(L, -1)) {
		lua_getfield(L, -1, "message");
		lua_remove(L, -2);
	} else {
		lua_pop(L, 1);
		lua_pushnil(L);
	}
	if (lua_type(L, -1) != LUA_TSTRING) {
		lua_pop(L, 1);
		size_t n = c->resp.n;
		while (n && (c->resp.p[n - 1] == '\n' || c->resp.p[n - 1] == '\r'))
			n--;
		if (n > 512)
			n = 512;
		if (n)
			lua_pushlstring(L, c->resp.p, n);
		else
			lua_pushfstring(L, "HTTP %d", (int)status);
	}
	redact_top(L, sec);
	int msg = lua_gettop(L);
	cork_error_push(L, status_kind(status), "docker %s %s: %s (HTTP %d)", method, path,
	                lua_tostring(L, msg), (int)status);
	lua_pushinteger(L, status);
	lua_setfield(L, -2, "status");
	lua_pushstring(L, method);
	lua_setfield(L, -2, "method");
	lua_pushstring(L, path);
	lua_setfield(L, -2, "path");
	lua_pushvalue(L, msg);
	lua_setfield(L, -2, "docker_message");
	return lua_error(L);
}

/* One request/answer on the client's keep-alive handle. path is the API
 * path without the version prefix (query included). body may be NULL;
 * when c->upload is set, the body is streamed from it (size upload_size).
 * Returns the HTTP status; the answer body is in c->resp. Transport failures
 * and interrupts raise; HTTP statuses do not. */
static long perform_io(lua_State *L, client *c, const char *method, const char *path,
                       const char *body, size_t blen, struct curl_slist *hdrs, long timeout_ms,
                       FILE *upload, curl_off_t upload_size, struct sink *out)
{
	CURL *e = c->easy;
	double grace = c->grace;
	c->grace = 0;
	cork_checkpoint(L);
	luaL_checkstack(L, 8, NULL);
	if (c->busy)
		return cork_raise(L, "usage", "docker %s %s: this client is busy streaming an answer "
		                  "(a progress function must not use it)", method, path);
	luaL_Buffer ub;
	luaL_buffinit(L, &ub);
	luaL_addstring(&ub, c->base);
	if (strncmp(path, "/v", 2) == 0 && path[2] >= '0' && path[2] <= '9') {
		luaL_addstring(&ub, path); /* already versioned (request escape hatch) */
	} else if (c->api[0]) {
		luaL_addstring(&ub, "/v");
		luaL_addstring(&ub, c->api);
		luaL_addstring(&ub, path);
	} else {
		luaL_addstring(&ub, path); /* /_ping before negotiation */
	}
	luaL_pushresult(&ub);
	const char *url = lua_tostring(L, -1);
	if (out) {
		/* 0600 whatever the umask; a symlink is refused, not followed */
		out->fd = open(out->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (out->fd < 0) {
			int en = errno;
			cork_raise(L, en == ENOENT ? "not_found" : "io", "docker %s %s: cannot write %s: %s",
			           method, path, out->path, strerror(en));
		}
		struct stat st;
		/* a regular file is ours: private, and removed if the transfer fails;
		 * anything else (a fifo, /dev/null) is only written to */
		out->regular = fstat(out->fd, &st) == 0 && S_ISREG(st.st_mode);
		if (out->regular)
			fchmod(out->fd, 0600);
		out->err = 0;
		out->bytes = 0;
	}

	/* from here to curl_multi_remove_handle nothing may raise */
	curl_easy_reset(e);
	easy_base(c, e, c->errbuf, timeout_ms);
	buf_reset(&c->resp);
	clear_headers(c);
	curl_easy_setopt(e, CURLOPT_URL, url);
	if (out) {
		out->c = c;
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_sink);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
	} else {
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &c->resp);
	}
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else {
		if (upload) {
			curl_easy_setopt(e, CURLOPT_POST, 1L);
			curl_easy_setopt(e, CURLOPT_READDATA, upload);
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, upload_size);
		} else if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? blen : 0));
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
		}
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	}
	if (hdrs)
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);

	CURLcode rc = CURLE_OK;
	int interrupted = 0, cb_failed = 0, abandoned = 0;
	double last = mono_now(), int_at = 0;
	curl_multi_add_handle(c->multi, e);
	for (;;) {
		int running = 0;
		CURLMcode mc = curl_multi_perform(c->multi, &running);
		if (mc != CURLM_OK) {
			rc = CURLE_FAILED_INIT;
			snprintf(c->errbuf, sizeof c->errbuf, "%s", curl_multi_strerror(mc));
			break;
		}
		if (!running) {
			int q;
			CURLMsg *m;
			while ((m = curl_multi_info_read(c->multi, &q)))
				if (m->msg == CURLMSG_DONE && m->easy_handle == e)
					rc = m->data.result;
			break;
		}
		if (cork_interrupt_pending(L)) {
			/* a create in flight runs to its end (bounded): see CREATE_GRACE */
			if (grace > 0 && int_at == 0)
				int_at = mono_now();
			if (grace <= 0 || mono_now() - int_at >= grace) {
				interrupted = 1;
				abandoned = grace > 0;
				break;
			}
		}
		if (out && out->progress && out->bytes > 0 && mono_now() - last >= 1.0) {
			/* the progress function runs protected: its error (or an
			 * interrupt it meets) ends the transfer and is raised below */
			last = mono_now();
			lua_pushvalue(L, out->progress);
			lua_pushinteger(L, (lua_Integer)out->bytes);
			c->busy = 1;
			int pst = lua_pcall(L, 1, 0, 0);
			c->busy = 0;
			if (pst != LUA_OK) {
				cb_failed = 1; /* the error value stays above the url */
				break;
			}
		}
		curl_multi_poll(c->multi, NULL, 0, POLL_MS, NULL);
	}
	long status = 0, oserr = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &oserr);
	curl_multi_remove_handle(c->multi, e);
	int failed = interrupted || cb_failed || c->resp.oom || rc != CURLE_OK;
	if (out) {
		if (close(out->fd) != 0 && !out->err)
			out->err = errno;
		out->fd = -1;
		if ((failed || out->err) && out->regular)
			unlink(out->path); /* no half archive left behind */
	}
	if (cb_failed) {
		lua_remove(L, -2); /* url */
		return lua_error(L);
	}
	lua_pop(L, 1); /* url */

	if (interrupted) {
		cork_checkpoint(L);
		if (abandoned) {
			/* the engine may still make it: cleanups must look, not trust a 404 */
			cork_error_push(L, "interrupted", "docker %s %s: interrupted; the engine did not answer "
			                "within %g s and may still create it", method, path, grace);
			lua_pushboolean(L, 1);
			lua_setfield(L, -2, "uncertain");
			return lua_error(L);
		}
		cork_raise(L, "interrupted", "docker %s %s: interrupted", method, path);
	}
	if (c->resp.oom)
		return luaL_error(L, "docker %s %s: out of memory", method, path);
	if (out && out->err)
		cork_raise(L, "io", "docker %s %s: writing %s: %s", method, path, out->path,
		           strerror(out->err));
	if (rc != CURLE_OK)
		raise_transport(L, c, rc, oserr, method, path, timeout_ms / 1000.0);
	return status;
}

static long perform(lua_State *L, client *c, const char *method, const char *path,
                    const char *body, size_t blen, struct curl_slist *hdrs, long timeout_ms)
{
	return perform_io(L, c, method, path, body, blen, hdrs, timeout_ms, NULL, 0, NULL);
}

/* perform + status check + decode: pushes the decoded JSON answer (nil when
 * the answer is empty, the raw text when it is not JSON). Returns the status. */
static long call(lua_State *L, client *c, const char *method, const char *path, int body_idx,
                 long timeout_ms, int sec)
{
	const char *body = NULL;
	size_t blen = 0;
	if (body_idx) {
		json_encode(L, body_idx);
		body = lua_tolstring(L, -1, &blen);
	}
	/* timeout_ms: 0 = the client's, < 0 = none (waits, streams) */
	long tm = timeout_ms == 0 ? c->timeout_ms : timeout_ms < 0 ? 0 : timeout_ms;
	long status = perform(L, c, method, path, body, blen, body ? c->hdr_json : NULL, tm);
	if (body_idx)
		lua_pop(L, 1);
	if (!status_kind_ok(status) && status != 304)
		raise_status(L, c, status, method, path, sec);
	if (c->resp.n == 0) {
		lua_pushnil(L);
	} else if (!json_decode(L, c->resp.p, c->resp.n)) {
		lua_pop(L, 1);
		lua_pushlstring(L, c->resp.p, c->resp.n);
	}
	return status;
}

/* Build "path?k=v&..." from a path and alternating key/value C strings
 * (NULL values skipped), pushing the result. */
static const char *push_path(lua_State *L, const char *fmt_path, const char *const *kv, int nkv)
{
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addstring(&b, fmt_path);
	int first = 1;
	for (int i = 0; i + 1 < nkv; i += 2) {
		if (!kv[i + 1])
			continue;
		luaL_addchar(&b, first ? '?' : '&');
		first = 0;
		luaL_addstring(&b, kv[i]);
		luaL_addchar(&b, '=');
		add_escaped(&b, kv[i + 1], strlen(kv[i + 1]));
	}
	luaL_pushresult(&b);
	return lua_tostring(L, -1);
}

/* "/containers/<escaped ref>/<rest>" */
static const char *push_refpath(lua_State *L, const char *prefix, const char *ref, const char *rest)
{
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addstring(&b, prefix);
	add_escaped(&b, ref, strlen(ref));
	luaL_addstring(&b, rest);
	luaL_pushresult(&b);
	return lua_tostring(L, -1);
}

static int api_at_least(client *c, int minor)
{
	return vercmp(c->api_major, c->api_minor, 1, minor) >= 0;
}

/* ---- connect, ping, version -------------------------------------------- */

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static const char *const connect_opts[] = {"timeout", "connect_timeout", "api_version",
                                           "tls_verify", "cert_path", NULL};

/* Negotiate the API version (c->api) with the daemon. */
static void client_negotiate(lua_State *L, client *c)
{
	long status = perform(L, c, "GET", "/_ping", NULL, 0, NULL, c->timeout_ms);
	if (status != 200)
		raise_status(L, c, status, "GET", "/_ping", 0);
	char daemon_max[24];
	snprintf(daemon_max, sizeof daemon_max, "%s", c->h_api);
	char out[32], msg[160];
	const char *e = negotiate(daemon_max, NULL, out, sizeof out, msg, sizeof msg);
	int ma, mi;
	if (!e && daemon_max[0] && parse_version(daemon_max, &ma, &mi) == 0 &&
	    vercmp(ma, mi, API_MAX_MAJOR, API_MAX_MINOR) > 0) {
		/* a newer engine: make sure it still accepts our maximum */
		status = perform(L, c, "GET", "/version", NULL, 0, NULL, c->timeout_ms);
		if (status == 200 && json_decode(L, c->resp.p, c->resp.n) && lua_istable(L, -1)) {
			lua_getfield(L, -1, "MinAPIVersion");
			const char *mn = lua_tostring(L, -1);
			e = negotiate(daemon_max, mn, out, sizeof out, msg, sizeof msg);
			lua_pop(L, 2);
		} else {
			lua_pop(L, 1);
		}
	}
	if (e)
		cork_raise(L, "daemon", "%s: %s", c->endpoint, e);
	snprintf(c->api, sizeof c->api, "%s", out);
	parse_version(c->api, &c->api_major, &c->api_minor);
}

/* docker.connect([endpoint][, opts]) -> client */
static int docker_connect(lua_State *L)
{
	int oi = 0;
	const char *endpoint = NULL;
	if (lua_istable(L, 1)) {
		oi = 1;
	} else {
		endpoint = luaL_optstring(L, 1, NULL);
		if (!lua_isnoneornil(L, 2)) {
			luaL_checktype(L, 2, LUA_TTABLE);
			oi = 2;
		}
	}
	if (oi)
		cork_check_options(L, oi, connect_opts);
	double timeout = opt_num(L, oi, "timeout", DEFAULT_TIMEOUT_MS / 1000.0);
	double ctimeout = opt_num(L, oi, "connect_timeout", DEFAULT_CONNECT_MS / 1000.0);
	luaL_argcheck(L, timeout >= 0 && ctimeout >= 0, oi ? oi : 1, "timeouts must be >= 0");
	const char *pin = opt_str(L, oi, "api_version");
	if (!pin || !*pin)
		pin = getenv("DOCKER_API_VERSION");
	if (pin && *pin) {
		int a, b;
		if (parse_version(pin, &a, &b) != 0)
			return luaL_error(L, "bad API version '%s' (want e.g. \"1.41\")", pin);
	}
	if (!endpoint || !*endpoint)
		endpoint = getenv("DOCKER_HOST");
	if (!endpoint || !*endpoint)
		endpoint = "unix://" DEFAULT_SOCKET;

	/* parse the endpoint (all checks before anything is allocated) */
	const char *sock = NULL;
	int tls = 0;
	char hostport[300];
	if (strncmp(endpoint, "unix://", 7) == 0) {
		sock = endpoint + 7;
		if (!*sock)
			sock = DEFAULT_SOCKET;
	} else if (strncmp(endpoint, "tcp://", 6) == 0 || strncmp(endpoint, "https://", 8) == 0 ||
	           strncmp(endpoint, "http://", 7) == 0) {
		const char *hp = strstr(endpoint, "://") + 3;
		size_t n = strcspn(hp, "/");
		if (n == 0 || n >= sizeof hostport - 8)
			return luaL_error(L, "bad Docker endpoint '%s'", endpoint);
		int tv = opt_bool(L, oi, "tls_verify", -1);
		if (tv == -1) {
			const char *e = getenv("DOCKER_TLS_VERIFY");
			tv = e && *e && strcmp(e, "0") != 0;
		}
		tls = tv || strncmp(endpoint, "https://", 8) == 0;
		memcpy(hostport, hp, n);
		hostport[n] = '\0';
		/* default ports as the docker CLI: 2376 with TLS, 2375 without */
		const char *colon = strrchr(hostport, ':');
		const char *rb = strrchr(hostport, ']');
		if (!colon || (rb && colon < rb))
			strcat(hostport, tls ? ":2376" : ":2375");
	} else {
		return luaL_error(L, "unsupported Docker endpoint '%s' (want unix:// or tcp://)", endpoint);
	}
	const char *cert_path = NULL;
	if (tls) {
		cert_path = opt_str(L, oi, "cert_path");
		if (!cert_path || !*cert_path)
			cert_path = getenv("DOCKER_CERT_PATH");
		if (!cert_path || !*cert_path) {
			const char *home = getenv("HOME");
			lua_pushfstring(L, "%s/.docker", home ? home : "");
			cert_path = lua_tostring(L, -1);
		}
	}

	client *c = lua_newuserdatauv(L, sizeof *c, 0);
	memset(c, 0, sizeof *c);
	c->closed = 1;
	luaL_setmetatable(L, CLIENT_MT);
	c->closed = 0;
	c->timeout_ms = (long)(timeout * 1000);
	c->connect_ms = (long)(ctimeout * 1000);
	c->endpoint = xstrdup(endpoint);
	c->tls = tls;
	if (sock) {
		c->sock = xstrdup(sock);
		c->base = xstrdup("http://docker");
	} else {
		size_t n = strlen(hostport) + 16;
		c->base = malloc(n);
		if (c->base)
			snprintf(c->base, n, "%s://%s", tls ? "https" : "http", hostport);
	}
	if (tls) {
		size_t n = strlen(cert_path) + 32;
		c->ca = malloc(n);
		c->cert = malloc(n);
		c->key = malloc(n);
		if (c->ca && c->cert && c->key) {
			snprintf(c->ca, n, "%s/ca.pem", cert_path);
			snprintf(c->cert, n, "%s/cert.pem", cert_path);
			snprintf(c->key, n, "%s/key.pem", cert_path);
		}
	}
	c->easy = curl_easy_init();
	c->multi = curl_multi_init();
	c->hdr_json = curl_slist_append(NULL, "Content-Type: application/json");
	c->hdr_tar = curl_slist_append(NULL, "Content-Type: application/x-tar");
	if (!c->endpoint || !c->base || (sock && !c->sock) || (tls && (!c->ca || !c->cert || !c->key)) ||
	    !c->easy || !c->multi || !c->hdr_json || !c->hdr_tar) {
		client_free(c);
		return luaL_error(L, "docker.connect: out of memory");
	}
	if (tls) {
		const char *files[3] = {c->ca, c->cert, c->key};
		for (int i = 0; i < 3; i++)
			if (access(files[i], R_OK) != 0)
				cork_raise(L, "not_found", "Docker TLS file %s: %s (set DOCKER_CERT_PATH)",
				           files[i], strerror(errno));
	}
	if (pin && *pin) {
		snprintf(c->api, sizeof c->api, "%s", pin);
		parse_version(c->api, &c->api_major, &c->api_minor);
	} else {
		client_negotiate(L, c);
	}
	return 1;
}

static int client_close(lua_State *L)
{
	client *c = luaL_checkudata(L, 1, CLIENT_MT);
	if (!c->closed)
		client_free(c);
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
	client *c = check_client(L, 1);
	lua_pushstring(L, c->api);
	return 1;
}

/* d:endpoint() -> "unix:///var/run/docker.sock" */
static int client_endpoint(lua_State *L)
{
	client *c = check_client(L, 1);
	lua_pushstring(L, c->endpoint);
	return 1;
}

/* d:ping() -> {api_version=, os_type=, server=, experimental=, builder_version=} */
static int docker_ping(lua_State *L)
{
	client *c = check_client(L, 1);
	long status = perform(L, c, "GET", "/_ping", NULL, 0, NULL, c->timeout_ms);
	if (status != 200)
		raise_status(L, c, status, "GET", "/_ping", 0);
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
	client *c = check_client(L, 1);
	call(L, c, "GET", "/version", 0, 0, 0);
	return 1;
}

/* d:info() -> /info answer */
static int docker_info(lua_State *L)
{
	client *c = check_client(L, 1);
	call(L, c, "GET", "/info", 0, 0, 0);
	return 1;
}

/* {Id=, Warning(s)=} -> {id=, warnings={...}} */
static void push_created(lua_State *L, int ans)
{
	lua_createtable(L, 0, 2);
	if (lua_istable(L, ans)) {
		lua_getfield(L, ans, "Id");
		lua_setfield(L, -2, "id");
		lua_newtable(L);
		lua_getfield(L, ans, "Warnings");
		if (lua_istable(L, -1)) {
			lua_replace(L, -2);
		} else {
			lua_pop(L, 1);
			lua_getfield(L, ans, "Warning");
			if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) > 0)
				lua_rawseti(L, -2, 1);
			else
				lua_pop(L, 1);
		}
		lua_setfield(L, -2, "warnings");
	}
}

/* ---- networks ----------------------------------------------------------- */

static const char *const network_create_opts[] = {"name", "subnet", "gateway", "internal",
                                                  "labels", "driver", "attachable", "options", NULL};

/* d:network_create{name, subnet, gateway, internal, labels, driver, attachable, options} */
static int docker_network_create(lua_State *L)
{
	client *c = check_client(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	cork_check_options(L, 2, network_create_opts);
	lua_settop(L, 2);
	const char *name = opt_str(L, 2, "name");
	luaL_argcheck(L, name && *name, 2, "'name' is required");
	const char *subnet = opt_str(L, 2, "subnet");
	const char *gateway = opt_str(L, 2, "gateway");
	const char *driver = opt_str(L, 2, "driver");
	luaL_argcheck(L, !gateway || subnet, 2, "'gateway' needs 'subnet'");
	int internal = opt_bool(L, 2, "internal", 0);
	int attachable = opt_bool(L, 2, "attachable", 0);

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
	if (push_strmap(L, 2, "labels"))
		lua_setfield(L, body, "Labels");
	if (push_strmap(L, 2, "options"))
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
	c->grace = CREATE_GRACE;
	call(L, c, "POST", "/networks/create", body, 0, 0);
	push_created(L, lua_gettop(L));
	return 1;
}

/* d:network_inspect(ref) -> Docker's network object */
static int docker_network_inspect(lua_State *L)
{
	client *c = check_client(L, 1);
	const char *ref = check_ref(L, 2);
	const char *path = push_refpath(L, "/networks/", ref, "");
	call(L, c, "GET", path, 0, 0, 0);
	return 1;
}

/* d:network_remove(ref) -> true */
static int docker_network_remove(lua_State *L)
{
	client *c = check_client(L, 1);
	const char *ref = check_ref(L, 2);
	const char *path = push_refpath(L, "/networks/", ref, "");
	call(L, c, "DELETE", path, 0, 0, 0);
	lua_pushboolean(L, 1);
	return 1;
}

static const char *const list_opts[] = {"filters", NULL};

/* d:networks{filters} -> list of network objects */
static int docker_networks(lua_State *L)
{
	client *c = check_client(L, 1);
	int oi = lua_isnoneornil(L, 2) ? 0 : 2;
	if (oi)
		cork_check_options(L, oi, list_opts);
	const char *filters = NULL;
	if (oi) {
		lua_getfield(L, oi, "filters");
		if (!lua_isnil(L, -1)) {
			push_filters(L, -1);
			filters = lua_tostring(L, -1);
		}
	}
	const char *kv[] = {"filters", filters};
	const char *path = push_path(L, "/networks", kv, 2);
	call(L, c, "GET", path, 0, 0, 0);
	return 1;
}

static const char *const connect_net_opts[] = {"ip", "aliases", NULL};

/* EndpointSettings for {ip=, aliases=} at idx (0 = none); pushes it. */
static void push_endpoint(lua_State *L, int o)
{
	lua_newtable(L);
	if (!o)
		return;
	const char *ip = opt_str(L, o, "ip");
	if (ip) {
		lua_newtable(L);
		lua_pushstring(L, ip);
		lua_setfield(L, -2, "IPv4Address");
		lua_setfield(L, -2, "IPAMConfig");
	}
	if (push_strlist(L, o, "aliases"))
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
	const char *path = push_refpath(L, "/networks/", net, "/connect");
	call(L, c, "POST", path, body, 0, 0);
	lua_pop(L, 3);
}

/* d:network_connect(net, container[, {ip, aliases}]) -> true */
static int docker_network_connect(lua_State *L)
{
	client *c = check_client(L, 1);
	const char *net = check_ref(L, 2);
	const char *ctr = check_ref(L, 3);
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
	client *c = check_client(L, 1);
	const char *net = check_ref(L, 2);
	const char *ctr = check_ref(L, 3);
	int oi = lua_isnoneornil(L, 4) ? 0 : 4;
	if (oi)
		cork_check_options(L, oi, disconnect_opts);
	int force = opt_bool(L, oi, "force", 0);
	lua_settop(L, 4);
	lua_newtable(L);
	lua_pushstring(L, ctr);
	lua_setfield(L, -2, "Container");
	lua_pushboolean(L, force);
	lua_setfield(L, -2, "Force");
	const char *path = push_refpath(L, "/networks/", net, "/disconnect");
	call(L, c, "POST", path, 5, 0, 0);
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
	const char *proto = opt_str(L, o, "protocol");
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
	client *c = check_client(L, 1);
	network_connect(L, c, lua_tostring(L, 3), lua_tostring(L, 4), 2);
	return 0;
}

static int remove_quietly_inner(lua_State *L)
{
	client *c = check_client(L, 1);
	const char *path = push_refpath(L, "/containers/", lua_tostring(L, 2), "?force=1&v=1");
	perform(L, c, "DELETE", path, NULL, 0, NULL, c->timeout_ms);
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
	client *c = check_client(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	cork_check_options(L, 2, create_opts);
	lua_settop(L, 2);
	lua_newtable(L);
	int sec = 3;                       /* env values, for redaction */
	const char *name = opt_str(L, 2, "name");
	const char *image = opt_str(L, 2, "image");
	luaL_argcheck(L, image && *image, 2, "'image' is required");

	lua_newtable(L);
	int body = 4;
	lua_newtable(L);
	int hc = 5;                        /* HostConfig */
	lua_pushstring(L, image);
	lua_setfield(L, body, "Image");
	if (push_strlist(L, 2, "cmd"))
		lua_setfield(L, body, "Cmd");
	if (push_strlist(L, 2, "entrypoint"))
		lua_setfield(L, body, "Entrypoint");
	if (push_env(L, 2, "env", sec))
		lua_setfield(L, body, "Env");
	if (push_strmap(L, 2, "labels"))
		lua_setfield(L, body, "Labels");
	static const struct { const char *opt, *field; } strs[] = {
		{"user", "User"}, {"workdir", "WorkingDir"}, {"hostname", "Hostname"},
		{"stop_signal", "StopSignal"},
	};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		const char *v = opt_str(L, 2, strs[i].opt);
		if (v) {
			lua_pushstring(L, v);
			lua_setfield(L, body, strs[i].field);
		}
	}
	double st = opt_num(L, 2, "stop_timeout", -1);
	if (st >= 0) {
		lua_pushinteger(L, (lua_Integer)st);
		lua_setfield(L, body, "StopTimeout");
	}
	if (opt_bool(L, 2, "tty", 0)) {
		lua_pushboolean(L, 1);
		lua_setfield(L, body, "Tty");
	}
	if (opt_bool(L, 2, "open_stdin", 0)) {
		lua_pushboolean(L, 1);
		lua_setfield(L, body, "OpenStdin");
	}
	/* HostConfig */
	if (push_strlist(L, 2, "cap_drop"))
		lua_setfield(L, hc, "CapDrop");
	if (push_strlist(L, 2, "cap_add"))
		lua_setfield(L, hc, "CapAdd");
	if (push_strlist(L, 2, "security_opt"))
		lua_setfield(L, hc, "SecurityOpt");
	if (push_strlist(L, 2, "extra_hosts"))
		lua_setfield(L, hc, "ExtraHosts");
	if (opt_bool(L, 2, "read_only_rootfs", 0)) {
		lua_pushboolean(L, 1);
		lua_setfield(L, hc, "ReadonlyRootfs");
	}
	if (opt_bool(L, 2, "init", 0)) {
		lua_pushboolean(L, 1);
		lua_setfield(L, hc, "Init");
	}
	if (opt_bool(L, 2, "auto_remove", 0)) {
		lua_pushboolean(L, 1);
		lua_setfield(L, hc, "AutoRemove");
	}
	double mem = opt_num(L, 2, "memory", -1);
	if (mem > 0) {
		lua_pushinteger(L, (lua_Integer)mem);
		lua_setfield(L, hc, "Memory");
	}
	double pids = opt_num(L, 2, "pids_limit", -1);
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
		mark_array(L);
		for (lua_Integer i = 1; i <= n; i++) {
			if (lua_rawgeti(L, src, i) != LUA_TTABLE)
				luaL_error(L, "mounts[%d] must be a table", (int)i);
			int m = lua_gettop(L);
			cork_check_options(L, m, mount_opts);
			const char *type = opt_str(L, m, "type");
			const char *s = opt_str(L, m, "source");
			const char *t = opt_str(L, m, "target");
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
			lua_pushboolean(L, opt_bool(L, m, "read_only", 0));
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
			const char *hip = opt_str(L, p, "host_ip");
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
				const char *nn = opt_str(L, o, "name");
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
			int upto = api_at_least(c, 44) ? nnets : 1;
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
	const char *nmode = opt_str(L, 2, "network_mode");
	if (nmode) {
		luaL_argcheck(L, *nmode && nnets == 0, 2, "give 'network_mode' or 'networks', not both");
		lua_pushstring(L, nmode);
		lua_setfield(L, hc, "NetworkMode");
	}
	/* stack: ..., the networks option, [normalized list at nets] */
	lua_pushvalue(L, hc);
	lua_setfield(L, body, "HostConfig");

	const char *kv[] = {"name", name};
	const char *path = push_path(L, "/containers/create", kv, 2);
	c->grace = CREATE_GRACE;
	call(L, c, "POST", path, body, 0, sec);
	push_created(L, lua_gettop(L));
	int res = lua_gettop(L);
	/* older engines: connect the other networks now, before any start; on
	 * failure remove the half-made container, then raise the first error */
	if (nnets > 1 && !api_at_least(c, 44)) {
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
	client *c = check_client(L, 1);
	const char *ref = check_ref(L, 2);
	const char *path = push_refpath(L, "/containers/", ref, "/start");
	long st = call(L, c, "POST", path, 0, 0, 0);
	lua_pushboolean(L, st != 304);
	return 1;
}

static const char *const stop_opts[] = {"timeout", "signal", NULL};

/* Poll inspect until the container is not running or the deadline. */
static int wait_not_running(lua_State *L, client *c, const char *ref, double deadline)
{
	const char *path = push_refpath(L, "/containers/", ref, "/json");
	int running = 1;
	for (;;) {
		call(L, c, "GET", path, 0, 0, 0);
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
	client *c = check_client(L, 1);
	const char *ref = check_ref(L, 2);
	int oi = lua_isnoneornil(L, 3) ? 0 : 3;
	if (oi)
		cork_check_options(L, oi, stop_opts);
	double t = opt_num(L, oi, "timeout", -1);
	const char *sig = opt_str(L, oi, "signal");
	char ts[32] = "";
	if (t >= 0)
		snprintf(ts, sizeof ts, "%d", (int)t);
	long timeout_ms = c->timeout_ms + (t > 0 ? (long)(t * 1000) : 10000);
	if (sig && !api_at_least(c, 42)) {
		/* API < 1.42 has no stop signal: send it, give the grace period,
		 * then SIGKILL, as the daemon would */
		const char *kv[] = {"signal", sig};
		const char *kp = push_path(L, push_refpath(L, "/containers/", ref, "/kill"), kv, 2);
		perform(L, c, "POST", kp, NULL, 0, NULL, c->timeout_ms);
		long st = 0;
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &st);
		if (st == 409) { /* not running */
			lua_pushboolean(L, 0);
			return 1;
		}
		if (!status_kind_ok(st))
			raise_status(L, c, st, "POST", kp, 0);
		if (wait_not_running(L, c, ref, cork_now() + (t >= 0 ? t : 10))) {
			const char *kv9[] = {"signal", "SIGKILL"};
			const char *k9 = push_path(L, push_refpath(L, "/containers/", ref, "/kill"), kv9, 2);
			perform(L, c, "POST", k9, NULL, 0, NULL, c->timeout_ms);
			wait_not_running(L, c, ref, cork_now() + 10);
		}
		lua_pushboolean(L, 1);
		return 1;
	}
	const char *kv[] = {"t", ts[0] ? ts : NULL, "signal", sig};
	const char *path = push_path(L, push_refpath(L, "/containers/", ref, "/stop"), kv, 4);
	long st = call(L, c, "POST", path, 0, timeout_ms, 0);
	lua_pushboolean(L, st != 304);
	return 1;
}

/* d:container_kill(ref[, signal]) -> true */
static int docker_container_kill(lua_State *L)
{
	client *c = check_client(L, 1);
	const char *ref = check_ref(L, 2);
	const char *sig = luaL_optstring(L, 3, NULL);
	const char *kv[] = {"signal", sig};
	const char *path = push_path(L, push_refpath(L, "/containers/", ref, "/kill"), kv, 2);
	call(L, c, "POST", path, 0, 0, 0);
	lua_pushboolean(L, 1);
	return 1;
}

static const char *const remove_opts[] = {"force", "volumes", NULL};

/* d:container_remove(ref[, {force, volumes}]) -> true */
static int docker_container_remove(lua_State *L)
{
	client *c = check_client(L, 1);
	const char *ref = check_ref(L, 2);
	int oi = lua_isnoneornil(L, 3) ? 0 : 3;
	if (oi)
		cork_check_options(L, oi, remove_opts);
	int force = opt_bool(L, oi, "force", 0), vols = opt_bool(L, oi, "volumes", 0);
	const char *kv[] = {"force", force ? "1" : NULL, "v", vols ? "1" : NULL};
	const char *path = push_path(L, push_refpath(L, "/containers/", ref, ""), kv, 4);
	call(L, c, "DELETE", path, 0, 0, 0);
	lua_pushboolean(L, 1);
	return 1;
}

/* d:container_inspect(ref) -> Docker's container object */
static int docker_container_inspect(lua_State *L)
{
	client *c = check_client(L, 1);
	const char *ref = check_ref(L, 2);
	call(L, c, "GET", push_refpath(L, "/containers/", ref, "/json"), 0, 0, 0);
	return 1;
}

static const char *const containers_opts[] = {"all", "filters", "limit", NULL};

/* d:containers{all, filters, limit} -> list of container summaries */
static int docker_containers(lua_State *L)
{
	client *c = check_client(L, 1);
	int oi = lua_isnoneornil(L, 2) ? 0 : 2;
	if (oi)
		cork_check_options(L, oi, containers_opts);
	int all = opt_bool(L, oi, "all", 0);
	double limit = opt_num(L, oi, "limit", -1);
	char ls[32] = "";
	if (limit > 0)
		snprintf(ls, sizeof ls, "%d", (int)limit);
	const char *filters = NULL;
	if (oi) {
		lua_getfield(L, oi, "filters");
		if (!lua_isnil(L, -1)) {
			push_filters(L, -1);
			filters = lua_tostring(L, -1);
		}
	}
	const char *kv[] = {"all", all ? "1" : NULL, "limit", ls[0] ? ls : NULL, "filters", filters};
	call(L, c, "GET", push_path(L, "/containers/json", kv, 6), 0, 0, 0);
	return 1;
}

static const char *const wait_opts[] = {"condition", "timeout", NULL};

/* d:container_wait(ref[, {condition, timeout}]) -> {status=, error=} */
static int docker_container_wait(lua_State *L)
{
	client *c = check_client(L, 1);
	const char *ref = check_ref(L, 2);
	int oi = lua_isnoneornil(L, 3) ? 0 : 3;
	if (oi)
		cork_check_options(L, oi, wait_opts);
	const char *cond = opt_str(L, oi, "condition");
	double t = opt_num(L, oi, "timeout", 0);
	const char *kv[] = {"condition", cond};
	const char *path = push_path(L, push_refpath(L, "/containers/", ref, "/wait"), kv, 2);
	/* no total timeout unless asked: a wait is as long as the container */
	call(L, c, "POST", path, 0, t > 0 ? (long)(t * 1000) : -1, 0);
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

/* Demultiplex Docker's stream frames (8-byte header: stream, 0, 0, 0,
 * big-endian size) from p[0..n) into out/err. Returns the bytes consumed
 * (whole frames only; the rest waits for more data). */
static size_t demux(const unsigned char *p, size_t n, struct buf *out, struct buf *err)
{
	size_t off = 0;
	while (n - off >= 8) {
		size_t len = ((size_t)p[off + 4] << 24) | ((size_t)p[off + 5] << 16) |
		             ((size_t)p[off + 6] << 8) | (size_t)p[off + 7];
		if (n - off - 8 < len)
			break;
		struct buf *dst = p[off] == 2 ? err : out;
		buf_add(dst, p + off + 8, len);
		off += 8 + len;
	}
	return off;
}

static const char *const logs_opts[] = {"stdout", "stderr", "tail", "since", "timestamps", NULL};

/* d:container_logs(ref[, {stdout, stderr, tail, since, timestamps}]) -> {stdout=, stderr=} */
static int docker_container_logs(lua_State *L)
{
	client *c = check_client(L, 1);
	const char *ref = check_ref(L, 2);
	int oi = lua_isnoneornil(L, 3) ? 0 : 3;
	if (oi)
		cork_check_options(L, oi, logs_opts);
	int so = opt_bool(L, oi, "stdout", 1), se = opt_bool(L, oi, "stderr", 1);
	int ts = opt_bool(L, oi, "timestamps", 0);
	char tail[32] = "", since[32] = "";
	if (oi) {
		lua_getfield(L, oi, "tail");
		if (lua_isinteger(L, -1))
			snprintf(tail, sizeof tail, "%lld", (long long)lua_tointeger(L, -1));
		else if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) < sizeof tail)
			snprintf(tail, sizeof tail, "%s", lua_tostring(L, -1));
		else if (!lua_isnil(L, -1))
			luaL_error(L, "option 'tail' must be a number or \"all\"");
		lua_pop(L, 1);
		double s = opt_num(L, oi, "since", 0);
		if (s > 0)
			snprintf(since, sizeof since, "%lld", (long long)s);
	}
	/* a TTY container's log is one raw stream, others are multiplexed */
	call(L, c, "GET", push_refpath(L, "/containers/", ref, "/json"), 0, 0, 0);
	lua_getfield(L, -1, "Config");
	lua_getfield(L, -1, "Tty");
	int tty = lua_toboolean(L, -1);
	lua_pop(L, 3);
	const char *kv[] = {"stdout", so ? "1" : "0", "stderr", se ? "1" : "0",
	                    "tail", tail[0] ? tail : NULL, "since", since[0] ? since : NULL,
	                    "timestamps", ts ? "1" : NULL};
	const char *path = push_path(L, push_refpath(L, "/containers/", ref, "/logs"), kv, 10);
	long st = perform(L, c, "GET", path, NULL, 0, NULL, c->timeout_ms);
	if (!status_kind_ok(st))
		raise_status(L, c, st, "GET", path, 0);
	buf_reset(&c->out);
	buf_reset(&c->err);
	if (tty)
		buf_add(&c->out, c->resp.p ? c->resp.p : "", c->resp.n);
	else
		demux((const unsigned char *)c->resp.p, c->resp.n, &c->out, &c->err);
	if (c->out.oom || c->err.oom)
		return luaL_error(L, "docker logs: out of memory");
	lua_createtable(L, 0, 2);
	lua_pushlstring(L, c->out.p ? c->out.p : "", c->out.n);
	lua_setfield(L, -2, "stdout");
	lua_pushlstring(L, c->err.p ? c->err.p : "", c->err.n);
	lua_setfield(L, -2, "stderr");
	buf_reset(&c->out);
	buf_reset(&c->err);
	return 1;
}

/* d:host_port(container, container_port[, host_ip]) -> port number */
static int docker_host_port(lua_State *L)
{
	client *c = check_client(L, 1);
	const char *ref = check_ref(L, 2);
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
	call(L, c, "GET", push_refpath(L, "/containers/", ref, "/json"), 0, 0, 0);
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

/* ---- exec (hijacked connection) ------------------------------------------ */

/* Send all of p over the connect-only handle, polling for writability. */
static int hj_send(lua_State *L, client *c, curl_socket_t fd, const char *p, size_t n)
{
	while (n) {
		size_t sent = 0;
		CURLcode rc = curl_easy_send(c->hj, p, n, &sent);
		if (rc == CURLE_AGAIN) {
			struct pollfd pf = {fd, POLLOUT, 0};
			poll(&pf, 1, POLL_MS);
			if (cork_interrupt_pending(L))
				return -2;
			continue;
		}
		if (rc != CURLE_OK)
			return -1;
		p += sent;
		n -= sent;
	}
	return 0;
}

/* Receive into b until EOF (returns 0), or until b has at least `want`
 * bytes (returns 1). -1 on error, -2 on interrupt, -3 on timeout. */
static int hj_recv(lua_State *L, client *c, curl_socket_t fd, struct buf *b, size_t want,
                   double deadline)
{
	char tmp[16384];
	for (;;) {
		if (want && b->n >= want)
			return 1;
		size_t got = 0;
		CURLcode rc = curl_easy_recv(c->hj, tmp, sizeof tmp, &got);
		if (rc == CURLE_AGAIN) {
			struct pollfd pf = {fd, POLLIN, 0};
			poll(&pf, 1, POLL_MS);
			if (cork_interrupt_pending(L))
				return -2;
			if (deadline > 0 && cork_now() > deadline)
				return -3;
			continue;
		}
		if (rc != CURLE_OK)
			return -1;
		if (got == 0)
			return 0;
		if (buf_add(b, tmp, got) != 0)
			return -1;
	}
}

/* End our side of the exec stream so that the process reads EOF on stdin.
 * Over TLS, a TCP half-close alone is not an end of stream: send TLS's
 * close_notify first (SSL_shutdown on libcurl's OpenSSL session; reading
 * goes on afterwards), as the docker CLI does with tls.Conn.CloseWrite.
 * 0 ok, -1 failure, -3 the TLS library is not OpenSSL. */
static int hj_close_write(client *c, curl_socket_t fd)
{
	if (c->tls) {
		struct curl_tlssessioninfo *ti = NULL;
		if (curl_easy_getinfo(c->hj, CURLINFO_TLS_SSL_PTR, &ti) != CURLE_OK || !ti ||
		    ti->backend != CURLSSLBACKEND_OPENSSL || !ti->internals)
			return -3;
		SSL *ssl = ti->internals;
		int rc, tries = 0;
		/* the socket is non-blocking: the alert may have to wait a moment */
		while ((rc = SSL_shutdown(ssl)) < 0 && tries++ < 50) {
			int e = SSL_get_error(ssl, rc);
			if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
				break;
			struct pollfd pf = {fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, 0};
			poll(&pf, 1, 20);
		}
		if (rc < 0)
			return -1;
	}
	shutdown(fd, SHUT_WR);
	return 0;
}

static const char *const exec_opts[] = {"env", "user", "workdir", "stdin", "privileged",
                                        "timeout", NULL};

/* d:exec(container, argv[, {env, user, workdir, stdin, privileged, timeout}])
 *   -> {status=, stdout=, stderr=} */
static int docker_exec(lua_State *L)
{
	client *c = check_client(L, 1);
	const char *ref = check_ref(L, 2);
	luaL_checktype(L, 3, LUA_TTABLE);
	int oi = lua_isnoneornil(L, 4) ? 0 : 4;
	if (oi)
		cork_check_options(L, oi, exec_opts);
	lua_settop(L, 4);
	luaL_argcheck(L, lua_rawlen(L, 3) > 0, 3, "empty argv");
	size_t inlen = 0;
	const char *in = NULL;
	if (oi) {
		lua_getfield(L, oi, "stdin");
		if (!lua_isnil(L, -1)) {
			if (lua_type(L, -1) != LUA_TSTRING)
				luaL_error(L, "option 'stdin' must be a string");
			in = lua_tolstring(L, -1, &inlen);
		}
		lua_pop(L, 1); /* still referenced by the option table */
	}
	double t = opt_num(L, oi, "timeout", 0);
	int priv = opt_bool(L, oi, "privileged", 0);
	lua_newtable(L);
	int sec = 5;
	lua_newtable(L);
	int body = 6;
	lua_newtable(L);  /* {cmd = argv}: reuse the option-list checks */
	lua_pushvalue(L, 3);
	lua_setfield(L, -2, "cmd");
	if (push_strlist(L, 7, "cmd"))
		lua_setfield(L, body, "Cmd");
	lua_pop(L, 1);
	if (oi) {
		if (push_env(L, oi, "env", sec))
			lua_setfield(L, body, "Env");
		const char *user = opt_str(L, oi, "user"), *wd = opt_str(L, oi, "workdir");
		if (user) {
			lua_pushstring(L, user);
			lua_setfield(L, body, "User");
		}
		if (wd) {
			lua_pushstring(L, wd);
			lua_setfield(L, body, "WorkingDir");
		}
	}
	lua_pushboolean(L, in != NULL);
	lua_setfield(L, body, "AttachStdin");
	lua_pushboolean(L, 1);
	lua_setfield(L, body, "AttachStdout");
	lua_pushboolean(L, 1);
	lua_setfield(L, body, "AttachStderr");
	lua_pushboolean(L, 0);
	lua_setfield(L, body, "Tty");
	if (priv) {
		lua_pushboolean(L, 1);
		lua_setfield(L, body, "Privileged");
	}

	/* 1. exec create */
	call(L, c, "POST", push_refpath(L, "/containers/", ref, "/exec"), body, 0, sec);
	lua_getfield(L, -1, "Id");
	const char *id = lua_tostring(L, -1);
	if (!id)
		cork_raise(L, "daemon", "docker exec: the daemon returned no exec id");
	int idi = lua_gettop(L);

	/* 2. exec start on a connection of its own, hijacked for the stream */
	const char *spath = push_refpath(L, "/exec/", id, "/start");
	const char *sbody = "{\"Detach\":false,\"Tty\":false}";
	const char *req = lua_pushfstring(L,
		"POST /v%s%s HTTP/1.1\r\nHost: docker\r\nUser-Agent: cork/" CORK_VERSION "\r\n"
		"Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
		"Content-Length: %d\r\n\r\n%s",
		c->api, spath, (int)strlen(sbody), sbody);
	if (c->hj)
		curl_easy_cleanup(c->hj);
	c->hj = curl_easy_init();
	if (!c->hj)
		return luaL_error(L, "docker exec: out of memory");
	buf_reset(&c->resp);
	buf_reset(&c->out);
	buf_reset(&c->err);
	easy_base(c, c->hj, c->errbuf, c->connect_ms + 1000);
	lua_pushfstring(L, "%s/", c->base);
	curl_easy_setopt(c->hj, CURLOPT_URL, lua_tostring(L, -1));
	curl_easy_setopt(c->hj, CURLOPT_CONNECT_ONLY, 1L);
	cork_checkpoint(L);
	CURLcode rc = curl_easy_perform(c->hj);
	lua_pop(L, 1);
	if (rc != CURLE_OK) {
		long oserr = 0;
		curl_easy_getinfo(c->hj, CURLINFO_OS_ERRNO, &oserr);
		raise_transport(L, c, rc, oserr, "POST", spath, c->connect_ms / 1000.0);
	}
	curl_socket_t fd = CURL_SOCKET_BAD;
	curl_easy_getinfo(c->hj, CURLINFO_ACTIVESOCKET, &fd);
	double deadline = t > 0 ? cork_now() + t : 0;
	int r = hj_send(L, c, fd, req, strlen(req));
	/* the answer head: "HTTP/1.1 101 UPGRADED" (or 200 on engines that
	 * stream without the upgrade), or an error status with a JSON body */
	char *eoh = NULL;
	while (r == 0 || r == 1) {
		if (c->resp.n && (eoh = strstr(c->resp.p, "\r\n\r\n")))
			break;
		r = hj_recv(L, c, fd, &c->resp, c->resp.n + 1, deadline);
		if (r == 0)
			break;
	}
	if (r == -2) {
		cork_checkpoint(L);
		cork_raise(L, "interrupted", "docker exec: interrupted");
	}
	if (r == -3)
		cork_raise(L, "timeout", "docker exec in %s: no answer within %g s", ref, t);
	if (!eoh)
		cork_raise(L, "daemon", "docker POST %s: the connection closed before an answer", spath);
	long status = 0;
	if (sscanf(c->resp.p, "HTTP/%*s %ld", &status) != 1)
		cork_raise(L, "daemon", "docker POST %s: malformed answer", spath);
	size_t head = (size_t)(eoh - c->resp.p) + 4;
	if (status != 101 && status != 200) {
		/* read the error body to its end (Content-Length or EOF) */
		const char *cl = strcasestr(c->resp.p, "\r\ncontent-length:");
		size_t want = cl && cl < eoh ? head + (size_t)strtoul(cl + 17, NULL, 10) : 0;
		hj_recv(L, c, fd, &c->resp, want, cork_now() + 5);
		memmove(c->resp.p, c->resp.p + head, c->resp.n - head);
		c->resp.n -= head;
		c->resp.p[c->resp.n] = '\0';
		raise_status(L, c, status, "POST", spath, sec);
	}
	/* stdin, then half-close so the process sees EOF */
	if (in) {
		r = hj_send(L, c, fd, in, inlen);
		if (r == 0)
			r = hj_close_write(c, fd);
		if (r == -3)
			cork_raise(L, "unavailable", "docker exec in %s: cannot end stdin over TLS with this "
			           "libcurl (its TLS library is not OpenSSL)", ref);
	}
	/* 3. the multiplexed stream until the daemon closes it */
	size_t have = c->resp.n - head, done = 0;
	memmove(c->resp.p, c->resp.p + head, have);
	c->resp.n = have;
	r = 0;
	for (;;) {
		done += demux((const unsigned char *)c->resp.p + done, c->resp.n - done, &c->out, &c->err);
		if (done > (1u << 20)) { /* keep the buffer small for big outputs */
			memmove(c->resp.p, c->resp.p + done, c->resp.n - done);
			c->resp.n -= done;
			done = 0;
		}
		if (r < 0)
			break;
		r = hj_recv(L, c, fd, &c->resp, c->resp.n + 1, deadline);
		if (r == 0)
			break;
	}
	done += demux((const unsigned char *)c->resp.p + done, c->resp.n - done, &c->out, &c->err);
	curl_easy_cleanup(c->hj);
	c->hj = NULL;
	if (r == -2) {
		cork_checkpoint(L);
		cork_raise(L, "interrupted", "docker exec: interrupted");
	}
	if (r == -3)
		cork_raise(L, "timeout", "docker exec in %s: still running after %g s", ref, t);
	if (r == -1 || c->out.oom || c->err.oom)
		cork_raise(L, "daemon", "docker exec in %s: the output stream failed", ref);

	/* 4. the exit code (the daemon may take a moment to record it) */
	const char *ipath = push_refpath(L, "/exec/", lua_tostring(L, idi), "/json");
	lua_Integer code = -1;
	double until = cork_now() + 10;
	for (;;) {
		call(L, c, "GET", ipath, 0, 0, 0);
		lua_getfield(L, -1, "Running");
		int running = lua_toboolean(L, -1);
		lua_getfield(L, -2, "ExitCode");
		if (!running && lua_type(L, -1) == LUA_TNUMBER) {
			code = (lua_Integer)lua_tonumber(L, -1);
			lua_pop(L, 3);
			break;
		}
		lua_pop(L, 3);
		if (cork_now() > until)
			cork_raise(L, "timeout", "docker exec in %s: no exit code after the stream ended", ref);
		cork_checkpoint(L);
		poll(NULL, 0, 10);
	}
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, code);
	lua_setfield(L, -2, "status");
	lua_pushlstring(L, c->out.p ? c->out.p : "", c->out.n);
	lua_setfield(L, -2, "stdout");
	lua_pushlstring(L, c->err.p ? c->err.p : "", c->err.n);
	lua_setfield(L, -2, "stderr");
	buf_reset(&c->out);
	buf_reset(&c->err);
	buf_reset(&c->resp);
	return 1;
}

/* ---- images ------------------------------------------------------------- */

/* d:image_inspect(ref) -> Docker's image object */
static int docker_image_inspect(lua_State *L)
{
	client *c = check_client(L, 1);
	const char *ref = check_ref(L, 2);
	call(L, c, "GET", push_refpath(L, "/images/", ref, "/json"), 0, 0, 0);
	return 1;
}

static const char *const image_remove_opts[] = {"force", "noprune", NULL};

/* d:image_remove(ref[, {force, noprune}]) -> list of {Untagged=|Deleted=} */
static int docker_image_remove(lua_State *L)
{
	client *c = check_client(L, 1);
	const char *ref = check_ref(L, 2);
	int oi = lua_isnoneornil(L, 3) ? 0 : 3;
	if (oi)
		cork_check_options(L, oi, image_remove_opts);
	int force = opt_bool(L, oi, "force", 0), noprune = opt_bool(L, oi, "noprune", 0);
	const char *kv[] = {"force", force ? "1" : NULL, "noprune", noprune ? "1" : NULL};
	call(L, c, "DELETE", push_path(L, push_refpath(L, "/images/", ref, ""), kv, 4), 0, 0, 0);
	return 1;
}

static const char *const import_opts[] = {"repo", "tag", "changes", "message", "timeout", NULL};

/* d:image_import(path_or_file[, {repo, tag, changes, message, timeout}]) -> {id=} */
static int docker_image_import(lua_State *L)
{
	client *c = check_client(L, 1);
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
	const char *repo = opt_str(L, oi, "repo"), *tag = opt_str(L, oi, "tag");
	const char *msg = opt_str(L, oi, "message");
	double t = opt_num(L, oi, "timeout", 0);
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
		add_escaped(&b, repo, strlen(repo));
	}
	if (tag) {
		luaL_addstring(&b, "&tag=");
		add_escaped(&b, tag, strlen(tag));
	}
	if (msg) {
		luaL_addstring(&b, "&message=");
		add_escaped(&b, msg, strlen(msg));
	}
	for (lua_Integer i = 1; i <= nch; i++) {
		lua_rawgeti(L, chi, i);
		size_t cl;
		const char *ch = lua_tolstring(L, -1, &cl);
		lua_pop(L, 1); /* still referenced by the changes table */
		luaL_addstring(&b, "&changes=");
		add_escaped(&b, ch, cl);
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
			cork_raise(L, errno == ENOENT ? "not_found" : "io", "image_import: %s: %s", path,
			           strerror(errno));
		c->upload = fp; /* owned: closed below, or by close/__gc after an error */
	}
	struct stat sb;
	curl_off_t size = -1;
	if (fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode) && ftello(fp) >= 0)
		size = (curl_off_t)(sb.st_size - ftello(fp));
	long timeout_ms = t > 0 ? (long)(t * 1000) : c->timeout_ms * 5;
	long st = perform_io(L, c, "POST", qpath, NULL, 0, c->hdr_tar, timeout_ms, fp, size, NULL);
	if (c->upload) {
		fclose(c->upload);
		c->upload = NULL;
	}
	if (!status_kind_ok(st))
		raise_status(L, c, st, "POST", "/images/create", 0);
	/* the answer is a stream of JSON progress lines; errors come with 200 */
	char id[128] = "";
	const char *p = c->resp.p ? c->resp.p : "";
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (n && json_decode(L, p, n) && lua_istable(L, -1)) {
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

/* ---- events --------------------------------------------------------------- */

static events *check_events(lua_State *L, int idx)
{
	events *ev = luaL_checkudata(L, idx, EVENTS_MT);
	if (ev->closed)
		luaL_error(L, "attempt to use a closed docker event stream");
	return ev;
}

static void events_free(events *ev)
{
	if (ev->easy && ev->multi)
		curl_multi_remove_handle(ev->multi, ev->easy);
	if (ev->easy)
		curl_easy_cleanup(ev->easy);
	if (ev->multi)
		curl_multi_cleanup(ev->multi);
	ev->easy = NULL;
	ev->multi = NULL;
	buf_free(&ev->data);
	ev->closed = 1;
}

static const char *const events_opts[] = {"filters", "since", "until", NULL};

/* d:events{filters, since, until} -> stream; `for ev in d:events{...} do`
 * (the stream is also the loop's to-be-closed value) */
static int docker_events(lua_State *L)
{
	client *c = check_client(L, 1);
	int oi = lua_isnoneornil(L, 2) ? 0 : 2;
	if (oi)
		cork_check_options(L, oi, events_opts);
	lua_settop(L, 2);
	char since[32] = "", until[32] = "";
	const char *filters = NULL;
	if (oi) {
		const char *keys[2] = {"since", "until"};
		char *dsts[2] = {since, until};
		for (int i = 0; i < 2; i++) {
			lua_getfield(L, oi, keys[i]);
			if (lua_type(L, -1) == LUA_TNUMBER) {
				double v = lua_tonumber(L, -1);
				if (v == (double)(long long)v)
					snprintf(dsts[i], 32, "%lld", (long long)v);
				else
					snprintf(dsts[i], 32, "%.6f", v);
			}
			else if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) < 32)
				snprintf(dsts[i], 32, "%s", lua_tostring(L, -1));
			else if (!lua_isnil(L, -1))
				luaL_error(L, "option '%s' must be a time (unix seconds)", keys[i]);
			lua_pop(L, 1);
		}
		lua_getfield(L, oi, "filters");
		if (!lua_isnil(L, -1)) {
			push_filters(L, -1);
			filters = lua_tostring(L, -1);
		}
	}
	const char *kv[] = {"since", since[0] ? since : NULL, "until", until[0] ? until : NULL,
	                    "filters", filters};
	const char *path = push_path(L, "/events", kv, 6);
	const char *url = lua_pushfstring(L, "%s/v%s%s", c->base, c->api, path);

	events *ev = lua_newuserdatauv(L, sizeof *ev, 1);
	memset(ev, 0, sizeof *ev);
	ev->closed = 1;
	luaL_setmetatable(L, EVENTS_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1); /* keep the client alive */
	ev->easy = curl_easy_init();
	ev->multi = curl_multi_init();
	if (!ev->easy || !ev->multi) {
		events_free(ev);
		return luaL_error(L, "docker events: out of memory");
	}
	ev->closed = 0;
	easy_base(c, ev->easy, ev->errbuf, 0);
	curl_easy_setopt(ev->easy, CURLOPT_URL, url);
	curl_easy_setopt(ev->easy, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(ev->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(ev->easy, CURLOPT_WRITEDATA, &ev->data);
	curl_multi_add_handle(ev->multi, ev->easy);
	/* start it now so that a missing daemon or a bad filter raise here */
	int running = 1;
	long status = 0;
	double deadline = cork_now() + c->timeout_ms / 1000.0;
	while (running && status == 0) {
		if (curl_multi_perform(ev->multi, &running) != CURLM_OK)
			break;
		curl_easy_getinfo(ev->easy, CURLINFO_RESPONSE_CODE, &status);
		if (!running || status)
			break;
		if (cork_interrupt_pending(L)) {
			events_free(ev);
			cork_checkpoint(L);
			cork_raise(L, "interrupted", "docker events: interrupted");
		}
		if (cork_now() > deadline)
			break;
		curl_multi_poll(ev->multi, NULL, 0, POLL_MS, NULL);
	}
	if (!status) {
		CURLcode rc = CURLE_OPERATION_TIMEDOUT;
		int q;
		CURLMsg *m;
		while ((m = curl_multi_info_read(ev->multi, &q)))
			if (m->msg == CURLMSG_DONE)
				rc = m->data.result;
		long oserr = 0;
		curl_easy_getinfo(ev->easy, CURLINFO_OS_ERRNO, &oserr);
		memcpy(c->errbuf, ev->errbuf, sizeof c->errbuf);
		events_free(ev);
		raise_transport(L, c, rc, oserr, "GET", path, c->timeout_ms / 1000.0);
	}
	if (!status_kind_ok(status)) {
		/* let the error body arrive, then raise it */
		while (running && curl_multi_perform(ev->multi, &running) == CURLM_OK && running)
			curl_multi_poll(ev->multi, NULL, 0, POLL_MS, NULL);
		buf_reset(&c->resp);
		buf_add(&c->resp, ev->data.p ? ev->data.p : "", ev->data.n);
		events_free(ev);
		raise_status(L, c, status, "GET", path, 0);
	}
	ev->status = status;
	/* for ev in stream do ... end: iterator, state, control, closing value */
	lua_pushnil(L);
	lua_pushnil(L);
	lua_pushvalue(L, -3);
	return 4;
}

/* stream() / stream:next([timeout]) -> next event table, or nil at the end
 * (until reached, stream closed) or when timeout seconds pass without one */
static int events_next_impl(lua_State *L, double timeout)
{
	events *ev = check_events(L, 1);
	double deadline = timeout > 0 ? cork_now() + timeout : 0;
	for (;;) {
		/* a complete line already buffered? */
		while (ev->off < ev->data.n) {
			char *start = ev->data.p + ev->off;
			char *nl = memchr(start, '\n', ev->data.n - ev->off);
			if (!nl)
				break;
			size_t n = (size_t)(nl - start);
			ev->off += n + 1;
			if (n == 0)
				continue;
			if (json_decode(L, start, n) && lua_istable(L, -1))
				return 1;
			lua_pop(L, 1);
		}
		if (ev->off > 0 && ev->off == ev->data.n) {
			ev->data.n = 0;
			ev->off = 0;
		}
		if (ev->done)
			return 0;
		int running = 0;
		if (curl_multi_perform(ev->multi, &running) != CURLM_OK || !running) {
			ev->done = 1;
			continue;
		}
		if (ev->data.n > ev->off)
			continue;
		if (cork_interrupt_pending(L)) {
			cork_checkpoint(L);
			cork_raise(L, "interrupted", "docker events: interrupted");
		}
		if (deadline && cork_now() > deadline)
			return 0;
		curl_multi_poll(ev->multi, NULL, 0, POLL_MS, NULL);
	}
}

static int events_call(lua_State *L)
{
	return events_next_impl(L, 0);
}

/* stream:next([timeout]) */
static int events_next(lua_State *L)
{
	double t = luaL_optnumber(L, 2, 0);
	return events_next_impl(L, t);
}

static int events_close(lua_State *L)
{
	events *ev = luaL_checkudata(L, 1, EVENTS_MT);
	if (!ev->closed)
		events_free(ev);
	return 0;
}

/* ---- raw requests --------------------------------------------------------- */

static const char *const request_opts[] = {"query", "body", "timeout", "content_type", "output",
                                           "progress", "headers", NULL};

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

/* d:request(method, path[, {query, body, timeout, content_type, output, progress}])
 * -> {status=, body=} or, with output, {status=, bytes=, path=} */
static int docker_request(lua_State *L)
{
	client *c = check_client(L, 1);
	const char *method = luaL_checkstring(L, 2);
	const char *path = luaL_checkstring(L, 3);
	luaL_argcheck(L, path[0] == '/', 3, "path must start with '/'");
	for (const char *m = method; *m; m++)
		luaL_argcheck(L, *m >= 'A' && *m <= 'Z', 2, "method must be upper-case letters");
	int oi = lua_isnoneornil(L, 4) ? 0 : 4;
	if (oi)
		cork_check_options(L, oi, request_opts);
	double t = opt_num(L, oi, "timeout", 0);
	const char *ctype = opt_str(L, oi, "content_type");
	const char *output = opt_str(L, oi, "output");
	lua_settop(L, 4);
	/* the progress function sits at a fixed index: perform_io calls it */
	if (oi)
		lua_getfield(L, oi, "progress");
	else
		lua_pushnil(L);
	if (!lua_isnil(L, 5) && !lua_isfunction(L, 5))
		return luaL_error(L, "option 'progress' must be a function");
	if (!lua_isnil(L, 5) && !output)
		return luaL_error(L, "option 'progress' needs 'output'");
	int pi = lua_isnil(L, 5) ? 0 : 5;
	/* query: {k = "v" | number | boolean | table (JSON, e.g. filters)} */
	if (oi)
		lua_getfield(L, oi, "query");
	else
		lua_pushnil(L);
	int qi = 6;
	if (!lua_isnil(L, qi))
		luaL_argcheck(L, lua_istable(L, qi), 4, "'query' must be a table");
	lua_newtable(L); /* encoded values, kept alive */
	int vi = 7;
	if (!lua_isnil(L, qi)) {
		lua_pushnil(L);
		while (lua_next(L, qi)) {
			if (lua_type(L, -2) != LUA_TSTRING)
				luaL_error(L, "query keys must be strings");
			int t2 = lua_type(L, -1);
			if (t2 == LUA_TTABLE)
				json_encode(L, -1);
			else if (t2 == LUA_TBOOLEAN)
				lua_pushstring(L, lua_toboolean(L, -1) ? "1" : "0");
			else if (t2 == LUA_TSTRING || t2 == LUA_TNUMBER)
				lua_pushstring(L, lua_tostring(L, -1));
			else
				luaL_error(L, "query value '%s' has a bad type (%s)", lua_tostring(L, -2),
				           lua_typename(L, t2));
			lua_pushvalue(L, -3);
			lua_insert(L, -2);
			lua_rawset(L, vi);
			lua_pop(L, 1);
		}
	}
	/* body: a table (JSON) or a string (raw) */
	const char *body = NULL;
	size_t blen = 0;
	if (oi)
		lua_getfield(L, oi, "body");
	else
		lua_pushnil(L);
	if (lua_istable(L, -1)) {
		json_encode(L, -1);
		lua_replace(L, -2);
	} else if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING) {
		luaL_error(L, "option 'body' must be a table or a string");
	}
	int bi = lua_gettop(L);
	if (!lua_isnil(L, bi))
		body = lua_tolstring(L, bi, &blen);
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
	int first = strchr(path, '?') == NULL;
	/* the keys in a list first: a luaL_Buffer cannot share the stack with lua_next */
	lua_newtable(L);
	int ki = bi + 1;
	lua_Integer nk = 0;
	lua_pushnil(L);
	while (lua_next(L, vi)) {
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_rawseti(L, ki, ++nk);
	}
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
		add_escaped(&b, k, strlen(k));
		luaL_addchar(&b, '=');
		add_escaped(&b, v, strlen(v));
	}
	luaL_pushresult(&b);
	const char *full = lua_tostring(L, -1);
	long tm = t > 0 ? (long)(t * 1000) : c->timeout_ms;
	struct sink sk = {.path = output, .fd = -1, .progress = pi};
	long status = perform_io(L, c, method, full, body, blen, hdrs, tm, NULL, 0,
	                         output ? &sk : NULL);
	if (!status_kind_ok(status) && status != 304) {
		if (output && sk.regular)
			unlink(output); /* the error went to c->resp; the file is empty */
		raise_status(L, c, status, method, full, 0);
	}
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, status);
	lua_setfield(L, -2, "status");
	if (output) {
		lua_pushinteger(L, (lua_Integer)sk.bytes);
		lua_setfield(L, -2, "bytes");
		lua_pushstring(L, output);
		lua_setfield(L, -2, "path");
	} else if (c->resp.n) {
		if (!json_decode(L, c->resp.p, c->resp.n)) {
			lua_pop(L, 1);
			lua_pushlstring(L, c->resp.p, c->resp.n);
		}
		lua_setfield(L, -2, "body");
	}
	return 1;
}

/* ---- module --------------------------------------------------------------- */

static const luaL_Reg docker_functions[] = {
	{"connect", docker_connect},
	{"_negotiate", docker_negotiate},
	{"_filters", docker_filters},
	{NULL, NULL}
};

static const luaL_Reg client_methods[] = {
	{"close", client_close},
	{"api_version", client_api_version},
	{"endpoint", client_endpoint},
	{"ping", docker_ping},
	{"version", docker_version},
	{"info", docker_info},
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
	{"container_logs", docker_container_logs},
	{"host_port", docker_host_port},
	{"exec", docker_exec},
	{"image_inspect", docker_image_inspect},
	{"image_import", docker_image_import},
	{"image_remove", docker_image_remove},
	{"events", docker_events},
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

static const luaL_Reg events_methods[] = {
	{"next", events_next},
	{"close", events_close},
	{NULL, NULL}
};

static const luaL_Reg events_metamethods[] = {
	{"__call", events_call},
	{"__close", events_close},
	{"__gc", events_close},
	{"__index", NULL},
	{NULL, NULL}
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int luaopen_cork_docker(lua_State *L);

int luaopen_cork_docker(lua_State *L)
{
	/* libcurl's one process-wide init, once, even when runtimes on several
	 * threads load cork.docker at the same moment. */
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return luaL_error(L, "cork.docker: libcurl failed to initialise");
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
	luaL_newlibtable(L, client_methods);
	luaL_setfuncs(L, client_methods, 0);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);

	luaL_newmetatable(L, EVENTS_MT);
	luaL_setfuncs(L, events_metamethods, 0);
	luaL_newlibtable(L, events_methods);
	luaL_setfuncs(L, events_methods, 0);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);

	luaL_newlib(L, docker_functions);
	lua_pushstring(L, API_MIN_STR);
	lua_setfield(L, -2, "API_MIN");
	lua_pushstring(L, API_MAX_STR);
	lua_setfield(L, -2, "API_MAX");
	return 1;
}
