/*
 * json.c: require "cork.json": lua-cjson (Debian's 2.1.0) with an encoder
 * that keeps a list a list.
 *
 * lua-cjson 2.1.0 encodes every empty table as {}, so a list field is an
 * array when it has items and an object when it has none: an editor reading
 * `"skills":{}` one day and `"skills":[...]` the next must special-case it.
 * Here a table is a JSON array when it is marked as one, empty or not:
 *
 *   json.array([t]) -> t marked as an array (a new table without t)
 *   json.array_mt    the metatable that marks it
 *
 * A table whose metatable has __jsontype = "array" or __yaml = "sequence"
 * (cork.yaml.sequence's mark) is an array too, so one mark serves both
 * encoders. Unmarked tables encode as lua-cjson does: keys 1..n (sparse up
 * to cjson's ratio, holes as null) are an array, anything else an object
 * with string or number keys, an empty one {}. Strings, numbers (%.14g, as
 * cjson; integers exactly) and errors match lua-cjson's. decode, null and
 * the cjson settings are lua-cjson's own (the settings affect decode only).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules.h"
#include "runtime.h"

int luaopen_cjson(lua_State *L);

#define ARRAY_MT "cork.json.array"
#define BUF_MT "cork.json.Buffer"
#define MAX_DEPTH 1000

/* The output, in a userdata so that a Lua error mid-encoding frees it. */
struct jbuf {
	char *p;
	size_t n, cap;
};

static int jbuf_gc(lua_State *L)
{
	struct jbuf *b = luaL_checkudata(L, 1, BUF_MT);
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
	return 0;
}

static void put(lua_State *L, struct jbuf *b, const char *s, size_t len)
{
	if (b->n + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->n + len)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np)
			luaL_error(L, "out of memory encoding JSON");
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, len);
	b->n += len;
}

static void puts_(lua_State *L, struct jbuf *b, const char *s)
{
	put(L, b, s, strlen(s));
}

static void put_string(lua_State *L, struct jbuf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	put(L, b, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char u[7];
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '/': esc = "\\/"; break;   /* as lua-cjson does */
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			if (c < 0x20 || c == 0x7f) {
				u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
				u[4] = hex[c >> 4]; u[5] = hex[c & 15]; u[6] = 0;
				esc = u;
			}
		}
		if (esc) {
			put(L, b, s + i - run, run);
			run = 0;
			puts_(L, b, esc);
		} else {
			run++;
		}
	}
	put(L, b, s + len - run, run);
	put(L, b, "\"", 1);
}

static void put_number(lua_State *L, struct jbuf *b, int idx)
{
	char num[64];
	if (lua_isinteger(L, idx)) {
		snprintf(num, sizeof num, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
	} else {
		double d = lua_tonumber(L, idx);
		if (isnan(d) || isinf(d))
			luaL_error(L, "Cannot serialise number: must not be NaN or Infinity");
		snprintf(num, sizeof num, "%.14g", d);
	}
	puts_(L, b, num);
}

/* Marked as an array: json.array_mt, or any metatable with __jsontype =
 * "array" or __yaml = "sequence". */
static int marked_array(lua_State *L, int idx)
{
	if (!lua_getmetatable(L, idx))
		return 0;
	int json = lua_getfield(L, -1, "__jsontype") == LUA_TSTRING && strcmp(lua_tostring(L, -1), "array") == 0;
	int yaml = lua_getfield(L, -2, "__yaml") == LUA_TSTRING && strcmp(lua_tostring(L, -1), "sequence") == 0;
	lua_pop(L, 3);
	return json || yaml;
}

/* -1: an object; else the array's length (lua-cjson's rule for unmarked tables). */
static lua_Integer array_length(lua_State *L, int idx)
{
	lua_Integer max = 0, count = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
			lua_Integer k = lua_tointeger(L, -1);
			if (k > max)
				max = k;
			count++;
			continue;
		}
		lua_pop(L, 1);
		return -1;
	}
	if (max > 10 && max > count * 2)
		luaL_error(L, "Cannot serialise table: excessively sparse array");
	return count == 0 ? -1 : max;
}

static void put_value(lua_State *L, struct jbuf *b, int idx, int depth);

static void put_table(lua_State *L, struct jbuf *b, int idx, int depth)
{
	if (depth > MAX_DEPTH)
		luaL_error(L, "Cannot serialise, excessive nesting (%d)", depth);
	luaL_checkstack(L, 4, "JSON encoding");
	lua_Integer len = marked_array(L, idx) ? (lua_Integer)lua_rawlen(L, idx) : array_length(L, idx);
	if (len >= 0) {
		put(L, b, "[", 1);
		for (lua_Integer i = 1; i <= len; i++) {
			if (i > 1)
				put(L, b, ",", 1);
			lua_rawgeti(L, idx, i);
			put_value(L, b, lua_gettop(L), depth + 1);
			lua_pop(L, 1);
		}
		put(L, b, "]", 1);
		return;
	}
	put(L, b, "{", 1);
	int first = 1;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		int kt = lua_type(L, -2);
		if (!first)
			put(L, b, ",", 1);
		first = 0;
		if (kt == LUA_TSTRING) {
			size_t klen;
			const char *k = lua_tolstring(L, -2, &klen);
			put_string(L, b, k, klen);
		} else if (kt == LUA_TNUMBER) {
			put(L, b, "\"", 1);
			put_number(L, b, lua_gettop(L) - 1);
			put(L, b, "\"", 1);
		} else {
			luaL_error(L, "Cannot serialise table: table key must be a number or string");
		}
		put(L, b, ":", 1);
		put_value(L, b, lua_gettop(L), depth + 1);
		lua_pop(L, 1);
	}
	put(L, b, "}", 1);
}

static void put_value(lua_State *L, struct jbuf *b, int idx, int depth)
{
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		puts_(L, b, "null");
		return;
	case LUA_TBOOLEAN:
		puts_(L, b, lua_toboolean(L, idx) ? "true" : "false");
		return;
	case LUA_TNUMBER:
		put_number(L, b, idx);
		return;
	case LUA_TSTRING: {
		size_t len;
		const char *s = lua_tolstring(L, idx, &len);
		put_string(L, b, s, len);
		return;
	}
	case LUA_TTABLE:
		put_table(L, b, idx, depth);
		return;
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, idx) == NULL) {
			puts_(L, b, "null");
			return;
		}
		/* fall through */
	default:
		luaL_error(L, "Cannot serialise %s: type not supported", luaL_typename(L, idx));
	}
}

/* json.encode(value) -> string */
static int json_encode(lua_State *L)
{
	luaL_checkany(L, 1);
	lua_settop(L, 1);
	struct jbuf *b = lua_newuserdatauv(L, sizeof *b, 0);
	memset(b, 0, sizeof *b);
	luaL_setmetatable(L, BUF_MT);
	put_value(L, b, 1, 1);
	lua_pushlstring(L, b->p ? b->p : "", b->n);
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
	return 1;
}

/* json.array([t]) -> t (or a new table), marked to encode as an array. */
static int json_array(lua_State *L)
{
	if (lua_isnoneornil(L, 1)) {
		lua_settop(L, 0);
		lua_newtable(L);
	} else {
		luaL_checktype(L, 1, LUA_TTABLE);
		lua_settop(L, 1);
	}
	luaL_setmetatable(L, ARRAY_MT);
	return 1;
}

static const luaL_Reg json_funcs[] = {
	{"encode", json_encode},
	{"array", json_array},
	{NULL, NULL}
};

int luaopen_cork_json(lua_State *L)
{
	if (luaL_newmetatable(L, BUF_MT)) {
		lua_pushcfunction(L, jbuf_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	if (luaL_newmetatable(L, ARRAY_MT)) {
		lua_pushliteral(L, "array");
		lua_setfield(L, -2, "__jsontype");
		lua_pushliteral(L, "sequence");   /* cork.yaml encodes it as a sequence too */
		lua_setfield(L, -2, "__yaml");
	}
	lua_pop(L, 1);
	/* lua-cjson's table: decode, null, its settings; encode replaced */
	lua_pushcfunction(L, luaopen_cjson);
	lua_call(L, 0, 1);
	luaL_setfuncs(L, json_funcs, 0);
	luaL_getmetatable(L, ARRAY_MT);
	lua_setfield(L, -2, "array_mt");
	return 1;
}
