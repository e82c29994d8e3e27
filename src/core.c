/*
 * core.c: require "cork.core": what the runtime itself offers Lua: sleep,
 * monotonic time, structured errors, embedded files, interrupt state, and
 * a few process facts. `require "cork"` re-exports the common ones.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <curl/curlver.h>
#include <openssl/opensslv.h>
#include <yaml.h>

#include "cork.h"
#include "embedded.h"
#include "runtime.h"
#include "modules.h"

void cork_settings(lua_State *L);

/* cork.sleep(seconds): interruptible (raises kind "interrupted"). */
static int core_sleep(lua_State *L)
{
	double s = luaL_checknumber(L, 1), end;
	luaL_argcheck(L, s >= 0, 1, "negative duration");
	cork_checkpoint(L);
	end = cork_now() + s;
	for (;;) {
		double left = end - cork_now();
		struct timespec ts;
		if (left <= 0)
			break;
		if (left > 0.05)
			left = 0.05;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
		cork_checkpoint(L);
	}
	return 0;
}

static int core_time(lua_State *L)
{
	lua_pushnumber(L, cork_now());
	return 1;
}

/* core.wall_time() -> seconds since the epoch, millisecond precision (the
 * `ts` of events) */
static int core_wall_time(lua_State *L)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	lua_pushnumber(L, (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1e3);
	return 1;
}

/* Push an error built from (kind, message[, details]) at 1..3. */
static void build_error(lua_State *L)
{
	const char *kind = luaL_checkstring(L, 1);
	const char *msg = luaL_checkstring(L, 2);
	if (!lua_isnoneornil(L, 3))
		luaL_checktype(L, 3, LUA_TTABLE);
	lua_settop(L, 3);
	cork_error_push(L, kind, "%s", msg);
	if (lua_istable(L, 3)) {
		lua_pushnil(L);
		while (lua_next(L, 3)) {
			if (lua_type(L, -2) == LUA_TSTRING &&
			    (strcmp(lua_tostring(L, -2), "kind") == 0 || strcmp(lua_tostring(L, -2), "message") == 0)) {
				lua_pop(L, 1);
				continue;
			}
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, 4);
		}
	}
}

/* cork.error(kind, message[, details]): raise a structured error. */
static int core_error(lua_State *L)
{
	build_error(L);
	return lua_error(L);
}

/* cork.core.new_error(kind, message[, details]) -> error (not raised) */
static int core_new_error(lua_State *L)
{
	build_error(L);
	return 1;
}

static int core_is_error(lua_State *L)
{
	lua_pushboolean(L, cork_error_is(L, 1, luaL_optstring(L, 2, NULL)));
	return 1;
}

/* cork.core.embedded(path) -> text | nil */
static int core_embedded(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	for (const struct cork_embedded *e = cork_embedded_files; e->path; e++)
		if (strcmp(e->path, path) == 0) {
			lua_pushlstring(L, e->data, e->len);
			return 1;
		}
	lua_pushnil(L);
	return 1;
}

/* cork.core.embedded_list([prefix]) -> { path, ... } */
static int core_embedded_list(lua_State *L)
{
	size_t pl;
	const char *prefix = luaL_optlstring(L, 1, "", &pl);
	int n = 0;
	lua_newtable(L);
	for (const struct cork_embedded *e = cork_embedded_files; e->path; e++)
		if (strncmp(e->path, prefix, pl) == 0) {
			lua_pushstring(L, e->path);
			lua_rawseti(L, -2, ++n);
		}
	return 1;
}

static int core_settings(lua_State *L)
{
	cork_settings(L);
	return 1;
}

static int core_interrupted(lua_State *L)
{
	lua_pushboolean(L, cork_interrupt_pending(L));
	return 1;
}

/* core.in_cleanup() -> true while scope cleanups run (uninterruptibly) */
static int core_in_cleanup(lua_State *L)
{
	lua_pushboolean(L, cork_in_cleanup(L) > 0);
	return 1;
}

static int core_clear_interrupt(lua_State *L)
{
	cork_clear_interrupt(L);
	return 0;
}

static int core_checkpoint(lua_State *L)
{
	cork_checkpoint(L);
	return 0;
}

static int core_pid(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)getpid());
	return 1;
}

static int core_uid(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)getuid());
	return 1;
}

/* cork.core.pid_alive(pid): does a process with this pid exist? */
static int core_pid_alive(lua_State *L)
{
	lua_Integer pid = luaL_checkinteger(L, 1);
	luaL_argcheck(L, pid > 0, 1, "pid must be positive");
	lua_pushboolean(L, kill((pid_t)pid, 0) == 0 || errno == EPERM);
	return 1;
}

static int core_isatty(lua_State *L)
{
	lua_Integer fd = luaL_optinteger(L, 1, 0);
	lua_pushboolean(L, isatty((int)fd));
	return 1;
}

static int core_hostname(lua_State *L)
{
	char h[256];
	if (gethostname(h, sizeof h) != 0)
		h[0] = 0;
	h[sizeof h - 1] = 0;
	lua_pushstring(L, h);
	return 1;
}

/* cork.core.read_secret(prompt): read one line from the terminal without
 * echo (the value is registered as a secret). Raises kind "no_tty". */
static int core_read_secret(lua_State *L)
{
	const char *prompt = luaL_optstring(L, 1, "secret: ");
	struct termios old, quiet;
	char buf[4096];
	FILE *tty;
	int restored = 0;
	size_t n;
	cork_checkpoint(L);
	tty = fopen("/dev/tty", "r+");
	if (!tty)
		return cork_raise(L, "no_tty", "cannot ask for a secret: no terminal (%s)", strerror(errno));
	if (tcgetattr(fileno(tty), &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
		restored = 1;
	}
	fputs(prompt, tty);
	fflush(tty);
	if (!fgets(buf, sizeof buf, tty))
		buf[0] = 0;
	if (restored)
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputc('\n', tty);
	fclose(tty);
	n = strcspn(buf, "\r\n");
	buf[n] = 0;
	cork_secret_add(L, buf, n);
	lua_pushlstring(L, buf, n);
	memset(buf, 0, sizeof buf);
	return 1;
}

static int core_versions(lua_State *L)
{
	lua_createtable(L, 0, 5);
	lua_pushstring(L, cork_version());
	lua_setfield(L, -2, "cork");
	lua_pushstring(L, LUA_RELEASE);
	lua_setfield(L, -2, "lua");
	/* the libcurl cork was built against: it is loaded on first use (by
	 * docker.connect), and `cork version` must not load it */
	lua_pushstring(L, LIBCURL_VERSION);
	lua_setfield(L, -2, "libcurl");
	lua_pushstring(L, yaml_get_version_string());
	lua_setfield(L, -2, "libyaml");
	/* likewise the OpenSSL built against: cork.ca loads libcrypto on first use */
	lua_pushstring(L, OPENSSL_VERSION_TEXT);
	lua_setfield(L, -2, "openssl");
	return 1;
}

/* core.options(opts, names) -> opts, or a new empty table for nil: the
 * option-table check of every C module (src/auxlib.c) for Lua modules;
 * names is the list of known keys. */
static int core_options(lua_State *L)
{
	luaL_checktype(L, 2, LUA_TTABLE);
	if (lua_isnoneornil(L, 1)) {
		lua_newtable(L);
		return 1;
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	size_t n = lua_rawlen(L, 2);
	const char **names = lua_newuserdatauv(L, (n + 1) * sizeof *names, 0);
	for (size_t i = 0; i < n; i++) {
		luaL_argcheck(L, lua_rawgeti(L, 2, (lua_Integer)i + 1) == LUA_TSTRING, 2,
		              "option names must be strings");
		names[i] = lua_tostring(L, -1);   /* anchored by the names list */
		lua_pop(L, 1);
	}
	names[n] = NULL;
	cork_check_options(L, 1, (const char *const *)names);
	lua_settop(L, 1);
	return 1;
}

/* core.opt(opts, key, type[, default]) -> value: the option readers of
 * src/auxlib.c for Lua modules; type is "string", "boolean", "number",
 * "integer" or "required" (a non-empty string). */
static int core_opt(lua_State *L)
{
	static const char *const types[] = {"string", "boolean", "number", "integer", "required", NULL};
	if (!lua_isnoneornil(L, 1))
		luaL_checktype(L, 1, LUA_TTABLE);
	const char *k = luaL_checkstring(L, 2);
	int type = luaL_checkoption(L, 3, NULL, types);
	int idx = lua_istable(L, 1) ? 1 : 0;
	lua_settop(L, 4);
	switch (type) {
	case 0: cork_opt_string(L, idx, k, NULL); break;
	case 1: cork_opt_boolean(L, idx, k, 0); break;
	case 2: cork_opt_number(L, idx, k, 0); break;
	case 3: cork_opt_integer(L, idx, k, 0); break;
	default: cork_opt_required(L, idx, k); break;
	}
	if (idx && lua_getfield(L, 1, k) != LUA_TNIL) {
		if (type == 3)
			lua_pushinteger(L, lua_tointeger(L, -1));
		return 1;
	}
	lua_pushvalue(L, 4);   /* absent: the default */
	return 1;
}

static const luaL_Reg core_funcs[] = {
	{"sleep", core_sleep},
	{"time", core_time},
	{"wall_time", core_wall_time},
	{"error", core_error},
	{"new_error", core_new_error},
	{"is_error", core_is_error},
	{"embedded", core_embedded},
	{"embedded_list", core_embedded_list},
	{"settings", core_settings},
	{"interrupted", core_interrupted},
	{"clear_interrupt", core_clear_interrupt},
	{"in_cleanup", core_in_cleanup},
	{"checkpoint", core_checkpoint},
	{"pid", core_pid},
	{"uid", core_uid},
	{"pid_alive", core_pid_alive},
	{"isatty", core_isatty},
	{"hostname", core_hostname},
	{"read_secret", core_read_secret},
	{"versions", core_versions},
	{"options", core_options},
	{"opt", core_opt},
	{NULL, NULL}
};

int luaopen_cork_core(lua_State *L)
{
	luaL_newlib(L, core_funcs);
	return 1;
}
