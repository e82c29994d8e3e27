/*
 * auxlib.c: the one auxiliary layer every binding module reads options and
 * maps errno with (the role of lauxlib.c in Lua, util.c in luv).
 *
 * Option tables: an unknown key, or a value of the wrong type, is misuse
 * and raises a plain Lua error, as a wrong argument type does, and so is a
 * missing required option (docs/api.md, "Conventions"). A value of the right
 * type that is unusable ("" for a required string, a port out of range) is
 * kind "usage". No coercion: "5" is not a number and 0 is not a boolean.
 */
#include <errno.h>
#include <string.h>

#include "runtime.h"

/* ---- option tables --------------------------------------------------------- */

/* Optimal string alignment distance, capped (names are short). */
static int distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 31 || lb > 31)
		return 99;
	int d[32][32];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (int)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			int cost = a[i - 1] != b[j - 1];
			int v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

const char *cork_suggest(const char *word, const char *const names[])
{
	const char *best = NULL;
	int bestd = 99, len = (int)strlen(word);
	for (const char *const *n = names; *n; n++) {
		int dd = distance(word, *n);
		if (dd < bestd) {
			best = *n;
			bestd = dd;
		}
	}
	int limit = len / 3 < 1 ? 1 : len / 3 > 2 ? 2 : len / 3;
	return best && bestd <= limit && bestd < len ? best : NULL;
}

void cork_check_options(lua_State *L, int idx, const char *const names[])
{
	if (idx == 0)
		return;
	idx = lua_absindex(L, idx);
	if (lua_isnoneornil(L, idx))
		return;
	luaL_checktype(L, idx, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "option keys must be strings (got %s)", luaL_typename(L, -1));
		const char *k = lua_tostring(L, -1);
		const char *const *n = names;
		while (*n && strcmp(*n, k) != 0)
			n++;
		if (!*n) {
			const char *s = cork_suggest(k, names);
			if (s)
				luaL_error(L, "unknown option '%s' (did you mean '%s'?)", k, s);
			luaL_error(L, "unknown option '%s'", k);
		}
	}
}

/* Push option k of the table at idx; returns its type (LUA_TNIL when there
 * is no table). */
static int get_opt(lua_State *L, int idx, const char *k)
{
	if (idx == 0 || !lua_istable(L, idx)) {
		lua_pushnil(L);
		return LUA_TNIL;
	}
	return lua_getfield(L, idx, k);
}

static int opt_type_error(lua_State *L, const char *k, const char *want)
{
	return luaL_error(L, "option '%s' must be %s (got %s)", k, want, luaL_typename(L, -1));
}

const char *cork_opt_lstring(lua_State *L, int idx, const char *k, const char *def, size_t *len)
{
	int t = get_opt(L, idx, k);
	const char *s = def;
	if (len)
		*len = def ? strlen(def) : 0;
	if (t == LUA_TSTRING)
		s = lua_tolstring(L, -1, len);   /* anchored by the option table */
	else if (t != LUA_TNIL)
		opt_type_error(L, k, "a string");
	lua_pop(L, 1);
	return s;
}

const char *cork_opt_string(lua_State *L, int idx, const char *k, const char *def)
{
	return cork_opt_lstring(L, idx, k, def, NULL);
}

const char *cork_opt_required(lua_State *L, int idx, const char *k)
{
	const char *s = cork_opt_string(L, idx, k, NULL);
	if (!s)
		luaL_error(L, "option '%s' is required", k);
	if (!*s)
		cork_raise(L, "usage", "option '%s' is empty", k);
	return s;
}

int cork_opt_boolean(lua_State *L, int idx, const char *k, int def)
{
	int t = get_opt(L, idx, k), v = def;
	if (t == LUA_TBOOLEAN)
		v = lua_toboolean(L, -1);
	else if (t != LUA_TNIL)
		opt_type_error(L, k, "a boolean");
	lua_pop(L, 1);
	return v;
}

lua_Number cork_opt_number(lua_State *L, int idx, const char *k, lua_Number def)
{
	int t = get_opt(L, idx, k);
	lua_Number v = def;
	if (t == LUA_TNUMBER)
		v = lua_tonumber(L, -1);
	else if (t != LUA_TNIL)
		opt_type_error(L, k, "a number");
	lua_pop(L, 1);
	return v;
}

lua_Integer cork_opt_integer(lua_State *L, int idx, const char *k, lua_Integer def)
{
	int t = get_opt(L, idx, k), ok = 0;
	lua_Integer v = def;
	if (t == LUA_TNUMBER) {
		v = lua_tointegerx(L, -1, &ok);
		if (!ok)
			luaL_error(L, "option '%s' must be an integer (got %s)", k, lua_tostring(L, -1));
	} else if (t != LUA_TNIL) {
		opt_type_error(L, k, "an integer");
	}
	lua_pop(L, 1);
	return v;
}

/* ---- errno ----------------------------------------------------------------- */

const char *cork_errno_kind(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
	case ENODEV:
		return "not_found";
	case EEXIST:
	case ENOTEMPTY:
		return "exists";
	case EACCES:
	case EPERM:
	case EROFS:
		return "permission";
	default:
		return "io";
	}
}

int cork_raise_errno(lua_State *L, int err, const char *what, const char *path)
{
	cork_error_push(L, cork_errno_kind(err), "%s %s: %s", what, path, strerror(err));
	lua_pushstring(L, path);
	lua_setfield(L, -2, "path");
	lua_pushinteger(L, err);
	lua_setfield(L, -2, "errno");
	lua_error(L);
	for (;;) {}  /* not reached: lua_error does not return */
}
