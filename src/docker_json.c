/*
 * docker_json.c: cork.docker's JSON: request encoding with the array marker
 * that empty lists need, the option lists of exec (argv, env), references,
 * and event/list filters. Most request bodies are built in
 * lua/cork/docker.lua and encoded here.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker_priv.h"

/* ---- JSON ----------------------------------------------------------------- */

/* Request bodies are encoded here, not with lua-cjson: Debian's lua-cjson
 * (2.1.0) encodes every empty table as {}, and Docker refuses an object
 * where it wants a list ("Cmd": {}, "ExtraHosts": {}). A table is a JSON
 * array when it carries the ARRAY_MT metatable (the option lists cork
 * builds: empty ones too) or is a non-empty sequence 1..n; any other table
 * is an object with string keys (an empty one is {}). cork.json.null (a
 * NULL light userdata) is null. Answers are decoded with lua-cjson. */
#define JSON_MAX_DEPTH 64

/* Mark the table at the top of the stack as a JSON array. */
void dk_mark_array(lua_State *L)
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
void dk_json_encode(lua_State *L, int idx)
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
int dk_json_decode(lua_State *L, const char *s, size_t n)
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
void dk_add_escaped(luaL_Buffer *b, const char *s, size_t n)
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
const char *dk_check_ref(lua_State *L, int idx)
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

/* Push option k of table o as an array of strings (a new table), or nothing
 * and return 0 when absent. */
int dk_push_strlist(lua_State *L, int o, const char *k)
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
	dk_mark_array(L);
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

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Environment: {"K=V", ...} or {K = "V"} -> array of "K=V" (a map sorted by
 * key). Every value is also appended to the secrets table at sec so that
 * error messages can be redacted. Pushes the array or nothing (returns 0). */
int dk_push_env(lua_State *L, int o, const char *k, int sec)
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
	dk_mark_array(L);
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
		dk_mark_array(L);
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

/* Filters {label = {"k=v"} | "k=v", name = {...}} -> JSON text in Docker's
 * map form {"label":{"k=v":true}} (accepted by every API version). Pushes
 * the JSON string. */
void dk_push_filters(lua_State *L, int idx)
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
	dk_json_encode(L, out);
	lua_remove(L, out);
}

/* docker._filters(tbl) -> JSON text (for unit tests) */
int docker_filters(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	dk_push_filters(L, 1);
	return 1;
}
