/*
 * log.c: require "cork.log": progress for humans, events for tools.
 *
 *   log.step(name[, fields])   a launch step begins ("==> name")
 *   log.info / warn / error / debug(msg[, fields])
 *   log.event(name[, fields])  a machine event (only in --json / callbacks)
 *   log.secret(value)          never print this value, in either form
 *
 * The event schema is documented in docs/events.md.
 */
#include <string.h>

#include "runtime.h"
#include "modules.h"

static void check_fields(lua_State *L, int idx)
{
	if (!lua_isnoneornil(L, idx))
		luaL_checktype(L, idx, LUA_TTABLE);
}

static int log_level(lua_State *L, const char *level)
{
	const char *msg = luaL_checkstring(L, 1);
	check_fields(L, 2);
	cork_event(L, level, level, msg, lua_istable(L, 2) ? 2 : 0);
	return 0;
}

static int log_step(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	check_fields(L, 2);
	cork_checkpoint(L);
	cork_event(L, "step", "step", name, lua_istable(L, 2) ? 2 : 0);
	return 0;
}

static int log_info(lua_State *L) { return log_level(L, "info"); }
static int log_warn(lua_State *L) { return log_level(L, "warn"); }
static int log_error(lua_State *L) { return log_level(L, "error"); }
static int log_debug(lua_State *L) { return log_level(L, "debug"); }

/* log.event(name[, fields]): machine-readable only (no human line). */
static int log_event(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	check_fields(L, 2);
	cork_event(L, "info", name, NULL, lua_istable(L, 2) ? 2 : 0);
	return 0;
}

/* log.secret(value): register a value to redact; returns it. */
static int log_secret(lua_State *L)
{
	size_t n;
	const char *v = luaL_checklstring(L, 1, &n);
	cork_secret_add(L, v, n);
	lua_settop(L, 1);
	return 1;
}

/* log.redact(text) -> text with every registered secret replaced by "***" */
static int log_redact(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	cork_redact(L, s, n);
	return 1;
}

static const luaL_Reg log_funcs[] = {
	{"step", log_step},
	{"info", log_info},
	{"warn", log_warn},
	{"error", log_error},
	{"debug", log_debug},
	{"event", log_event},
	{"secret", log_secret},
	{"redact", log_redact},
	{NULL, NULL}
};

int luaopen_cork_log(lua_State *L)
{
	luaL_newlib(L, log_funcs);
	return 1;
}
