/*
 * scope.c: require "cork.scope": defer stacks on Lua 5.4 to-be-closed
 * variables.
 *
 *   local s <close> = cork.scope("launch")
 *   local id = create_something()
 *   s:defer(remove_something, id)      -- runs remove_something(id, err)
 *
 * On close (normal exit, error or interrupt) the cleanups run last in,
 * first out, all of them, uninterruptibly. A failing cleanup is reported
 * (event "cleanup_failed" + stderr) and the next one runs; the original error
 * always wins. With no original error, failed cleanups raise kind "cleanup"
 * once all have run.
 */
#include <string.h>

#include "runtime.h"
#include "modules.h"

#define SCOPE_MT "cork.scope.Scope"

struct scope {
	int closed;
	int released;
	lua_Integer next_token;
};

/* Uservalue 1: { name = "...", [i] = entry }, entry = { fn, n = nargs, token, args... } */

static struct scope *check_scope(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, SCOPE_MT);
}

static int scope_new(lua_State *L)
{
	const char *name = luaL_optstring(L, 1, "scope");
	struct scope *s = lua_newuserdatauv(L, sizeof *s, 1);
	memset(s, 0, sizeof *s);
	lua_createtable(L, 4, 1);
	lua_pushstring(L, name);
	lua_setfield(L, -2, "name");
	lua_setiuservalue(L, -2, 1);
	luaL_setmetatable(L, SCOPE_MT);
	return 1;
}

static int scope_call(lua_State *L)
{
	lua_remove(L, 1);   /* the module table */
	return scope_new(L);
}

/* s:defer(fn, ...) -> token. Registers first, then checks for interrupts,
 * so a resource created just before is never left unregistered. */
static int scope_defer(lua_State *L)
{
	struct scope *s = check_scope(L, 1);
	int nargs = lua_gettop(L) - 2, i;
	lua_Integer len;
	luaL_checktype(L, 2, LUA_TFUNCTION);
	if (s->closed)
		return luaL_error(L, "defer on a closed scope");
	lua_getiuservalue(L, 1, 1);
	len = luaL_len(L, -1);
	lua_createtable(L, nargs + 1, 2);
	lua_pushvalue(L, 2);
	lua_rawseti(L, -2, 1);
	for (i = 0; i < nargs; i++) {
		lua_pushvalue(L, 3 + i);
		lua_rawseti(L, -2, 2 + i);
	}
	lua_pushinteger(L, nargs);
	lua_setfield(L, -2, "n");
	lua_pushinteger(L, ++s->next_token);
	lua_setfield(L, -2, "token");
	lua_rawseti(L, -2, len + 1);
	lua_pushinteger(L, s->next_token);
	cork_checkpoint(L);
	return 1;
}

/* s:cancel(token): forget one cleanup (the resource was handled). */
static int scope_cancel(lua_State *L)
{
	check_scope(L, 1);
	lua_Integer token = luaL_checkinteger(L, 2), len, i;
	lua_getiuservalue(L, 1, 1);
	len = luaL_len(L, -1);
	for (i = 1; i <= len; i++) {
		lua_rawgeti(L, -1, i);
		lua_getfield(L, -1, "token");
		if (lua_tointeger(L, -1) == token) {
			lua_pop(L, 2);
			for (; i < len; i++) {
				lua_rawgeti(L, -1, i + 1);
				lua_rawseti(L, -2, i);
			}
			lua_pushnil(L);
			lua_rawseti(L, -2, len);
			lua_pushboolean(L, 1);
			return 1;
		}
		lua_pop(L, 2);
	}
	lua_pushboolean(L, 0);
	return 1;
}

/* s:release() -> n: hand the resources on without cleaning them. */
static int scope_release(lua_State *L)
{
	struct scope *s = check_scope(L, 1);
	lua_Integer len;
	lua_getiuservalue(L, 1, 1);
	len = luaL_len(L, -1);
	for (lua_Integer i = 1; i <= len; i++) {
		lua_pushnil(L);
		lua_rawseti(L, -2, i);
	}
	s->released = 1;
	lua_pushinteger(L, len);
	return 1;
}

static int scope_pending(lua_State *L)
{
	check_scope(L, 1);
	lua_getiuservalue(L, 1, 1);
	lua_pushinteger(L, luaL_len(L, -1));
	return 1;
}

static int scope_name(lua_State *L)
{
	check_scope(L, 1);
	lua_getiuservalue(L, 1, 1);
	lua_getfield(L, -1, "name");
	return 1;
}

static int cleanup_msgh(lua_State *L)
{
	if (!cork_error_is(L, 1, NULL) && lua_type(L, 1) != LUA_TSTRING) {
		if (!luaL_callmeta(L, 1, "__tostring"))
			lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
		return 1;
	}
	return 1;
}

/* Run all pending cleanups with err (at index erridx, 0 = none).
 * Returns the number that failed; leaves the first failure on the stack
 * (or nil). */
static int run_cleanups(lua_State *L, int uidx, int erridx)
{
	struct scope *s = check_scope(L, uidx);
	int failed = 0, top;
	lua_Integer len;
	const char *name;
	s->closed = 1;
	lua_getiuservalue(L, uidx, 1);
	int list = lua_gettop(L);
	lua_getfield(L, list, "name");
	name = lua_tostring(L, -1);
	lua_pushnil(L);                       /* first failure */
	int first = lua_gettop(L);
	len = luaL_len(L, list);
	cork_cleanup_enter(L);
	for (lua_Integer i = len; i >= 1; i--) {
		lua_Integer n;
		lua_rawgeti(L, list, i);
		if (!lua_istable(L, -1)) {
			lua_pop(L, 1);
			continue;
		}
		int entry = lua_gettop(L);
		lua_pushnil(L);
		lua_rawseti(L, list, i);           /* each cleanup runs at most once */
		lua_getfield(L, entry, "n");
		n = lua_tointeger(L, -1);
		lua_pop(L, 1);
		top = lua_gettop(L);
		lua_pushcfunction(L, cleanup_msgh);
		luaL_checkstack(L, (int)n + 4, "too many cleanup arguments");
		for (lua_Integer a = 1; a <= n + 1; a++)
			lua_rawgeti(L, entry, a);
		if (erridx)
			lua_pushvalue(L, erridx);
		else
			lua_pushnil(L);
		if (lua_pcall(L, (int)n + 1, 0, top + 1) != LUA_OK) {
			const char *msg;
			failed++;
			if (lua_isnil(L, first)) {
				lua_pushvalue(L, -1);
				lua_replace(L, first);
			}
			if (cork_error_is(L, -1, NULL)) {
				lua_getfield(L, -1, "message");
				lua_replace(L, -2);
			}
			msg = lua_tostring(L, -1);
			lua_createtable(L, 0, 2);
			lua_pushstring(L, name);
			lua_setfield(L, -2, "scope");
			lua_pushstring(L, msg ? msg : "?");
			lua_setfield(L, -2, "error");
			lua_pushfstring(L, "cleanup in scope '%s' failed: %s", name, msg ? msg : "?");
			cork_event(L, "warn", "cleanup_failed", lua_tostring(L, -1), -2);
		}
		lua_settop(L, entry - 1);
	}
	cork_cleanup_leave(L);
	lua_settop(L, first);
	lua_remove(L, list + 1);             /* name */
	lua_remove(L, list);
	return failed;
}

static int close_common(lua_State *L, int erridx, int raise)
{
	struct scope *s = check_scope(L, 1);
	int failed;
	if (s->closed) {
		return 0;
	}
	failed = run_cleanups(L, 1, erridx);
	if (failed && raise) {
		int firsterr = lua_gettop(L);
		lua_getiuservalue(L, 1, 1);
		lua_getfield(L, -1, "name");
		const char *name = lua_tostring(L, -1);
		const char *msg;
		if (cork_error_is(L, firsterr, NULL)) {
			lua_getfield(L, firsterr, "message");
		} else {
			lua_pushvalue(L, firsterr);
		}
		msg = lua_tostring(L, -1);
		cork_error_push(L, "cleanup", "%d cleanup%s in scope '%s' failed (first: %s)",
		                failed, failed == 1 ? "" : "s", name, msg ? msg : "?");
		lua_pushinteger(L, failed);
		lua_setfield(L, -2, "failed");
		lua_pushvalue(L, firsterr);
		lua_setfield(L, -2, "first");
		return lua_error(L);
	}
	return 0;
}

/* s:close([err]), and __close(s, err) (err is nil on a normal exit): one
 * function registered twice, as liolib does. */
static int scope_close(lua_State *L)
{
	check_scope(L, 1);
	return close_common(L, lua_isnoneornil(L, 2) ? 0 : 2, lua_isnoneornil(L, 2));
}

static int scope_gc(lua_State *L)
{
	struct scope *s = check_scope(L, 1);
	if (!s->closed) {
		lua_getiuservalue(L, 1, 1);
		if (luaL_len(L, -1) > 0) {
			lua_getfield(L, -1, "name");
			lua_pushfstring(L, "scope '%s' was never closed: running its cleanups now",
			                lua_tostring(L, -1));
			cork_event(L, "warn", "scope_unclosed", lua_tostring(L, -1), 0);
		}
		lua_settop(L, 1);
		close_common(L, 0, 0);
	}
	return 0;
}

static int scope_tostring(lua_State *L)
{
	struct scope *s = check_scope(L, 1);
	lua_getiuservalue(L, 1, 1);
	lua_getfield(L, -1, "name");
	lua_pushfstring(L, "cork.scope(%s, %d pending%s)", lua_tostring(L, -1),
	                (int)luaL_len(L, -2), s->closed ? ", closed" : "");
	return 1;
}

static const luaL_Reg scope_funcs[] = {
	{"new", scope_new},
	{NULL, NULL}
};

static const luaL_Reg scope_methods[] = {
	{"defer", scope_defer},
	{"cancel", scope_cancel},
	{"release", scope_release},
	{"pending", scope_pending},
	{"name", scope_name},
	{"close", scope_close},
	{NULL, NULL}
};

static const luaL_Reg scope_meta[] = {
	{"__close", scope_close},
	{"__gc", scope_gc},
	{"__tostring", scope_tostring},
	{"__index", NULL},
	{NULL, NULL}
};

int luaopen_cork_scope(lua_State *L)
{
	luaL_newmetatable(L, SCOPE_MT);
	luaL_setfuncs(L, scope_meta, 0);
	luaL_newlib(L, scope_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newlib(L, scope_funcs);
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, scope_call);
	lua_setfield(L, -2, "__call");
	lua_setmetatable(L, -2);
	return 1;
}
