/*
 * error.c: structured errors. An operational failure is a table
 * { kind = "...", message = "...", <details> } with the "cork.Error"
 * metatable, whose __tostring is the message.
 */
#include <stdio.h>
#include <string.h>

#include "runtime.h"

#define ERROR_MT "cork.Error"

static int error_tostring(lua_State *L)
{
	lua_getfield(L, 1, "message");
	if (lua_type(L, -1) != LUA_TSTRING) {
		lua_pop(L, 1);
		lua_getfield(L, 1, "kind");
		lua_pushfstring(L, "cork error (%s)", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
	}
	return 1;
}

static void push_error_mt(lua_State *L)
{
	if (luaL_newmetatable(L, ERROR_MT)) {
		lua_pushcfunction(L, error_tostring);
		lua_setfield(L, -2, "__tostring");
		lua_pushliteral(L, "cork.Error");
		lua_setfield(L, -2, "__name");
	}
}

void cork_error_pushv(lua_State *L, const char *kind, const char *fmt, va_list ap)
{
	luaL_checkstack(L, 4, "cork_error_push");
	lua_createtable(L, 0, 4);
	lua_pushstring(L, kind);
	lua_setfield(L, -2, "kind");
	{
		/* full printf formats (lua_pushvfstring knows only a few) */
		char small[512];
		va_list ap2;
		int n;
		va_copy(ap2, ap);
		n = vsnprintf(small, sizeof small, fmt, ap2);
		va_end(ap2);
		if (n < 0) {
			lua_pushstring(L, fmt);
		} else if ((size_t)n < sizeof small) {
			lua_pushlstring(L, small, (size_t)n);
		} else {
			luaL_Buffer b;
			char *p = luaL_buffinitsize(L, &b, (size_t)n + 1);
			vsnprintf(p, (size_t)n + 1, fmt, ap);
			luaL_pushresultsize(&b, (size_t)n);
		}
	}
	lua_setfield(L, -2, "message");
	push_error_mt(L);
	lua_setmetatable(L, -2);
}

void cork_error_push(lua_State *L, const char *kind, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cork_error_pushv(L, kind, fmt, ap);
	va_end(ap);
}

int cork_raise(lua_State *L, const char *kind, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cork_error_pushv(L, kind, fmt, ap);
	va_end(ap);
	lua_error(L);
	for (;;) {}  /* not reached: lua_error does not return */
}

int cork_error_is(lua_State *L, int idx, const char *kind)
{
	int ok = 0;
	if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
		return 0;
	luaL_getmetatable(L, ERROR_MT);
	ok = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	if (ok && kind) {
		lua_getfield(L, idx, "kind");
		ok = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), kind) == 0;
		lua_pop(L, 1);
	}
	return ok;
}
