/*
 * runtime.c: the cork runtime. One Lua state with the C modules and the
 * embedded Lua files preloaded, a CORK_PATH searcher ahead of them, the
 * interrupt flag that signals (or another thread) set, event output, and
 * the protected calls that turn uncaught errors into exit codes.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lualib.h>

#include "cork.h"
#include "embedded.h"
#include "modules.h"
#include "runtime.h"

struct cork {
	lua_State *L;
	char *lua_path;
	int json, verbose, quiet, color, handle_signals;
	void (*on_event)(const char *json_line, void *userdata);
	void *userdata;
	atomic_int interrupts;      /* signals (or cork_interrupt calls) seen */
	atomic_int last_signal;
	atomic_int cleanup_depth;
	char step[128];
	char last_error[2048];
	char last_kind[64];
	/* handle_signals: what SIGINT, SIGTERM, SIGHUP did before (restored by
	 * cork_free), and which of them this runtime caught */
	struct sigaction old_sa[3];
	int caught[3];
};

static const int caught_signals[3] = {SIGINT, SIGTERM, SIGHUP};

static struct cork *signal_owner;

struct cork *cork_runtime(lua_State *L)
{
	return *(struct cork **)lua_getextraspace(L);
}

double cork_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *cork_version(void) { return CORK_VERSION; }
struct lua_State *cork_lua(struct cork *c) { return c->L; }
const char *cork_last_error(const struct cork *c) { return c->last_error; }
const char *cork_last_error_kind(const struct cork *c) { return c->last_kind; }

/* ---- interruption ---------------------------------------------------- */

static void say(const char *s)
{
	ssize_t r = write(2, s, strlen(s));
	(void)r;
}

static void on_signal(int sig)
{
	struct cork *c = signal_owner;
	int n;
	if (!c)
		return;
	atomic_store(&c->last_signal, sig);
	n = atomic_fetch_add(&c->interrupts, 1) + 1;
	if (n == 2) {
		say("\ncork: interrupted again: cleanup continues (a third signal forces exit)\n");
	} else if (n >= 3) {
		say("\ncork: forced exit before cleanup finished: containers, networks, VMs or\n"
		    "      aliases of this run may be left. `cork ls` shows them; `cork down SLUG`\n"
		    "      (or `cork gc`) removes them.\n");
		_exit(CORK_EXIT_INTERRUPTED);
	}
}

void cork_interrupt(struct cork *c)
{
	if (atomic_load(&c->last_signal) == 0)
		atomic_store(&c->last_signal, SIGINT);
	atomic_fetch_add(&c->interrupts, 1);
}

int cork_interrupt_pending(lua_State *L)
{
	struct cork *c = cork_runtime(L);
	return c && atomic_load(&c->interrupts) > 0 && atomic_load(&c->cleanup_depth) == 0;
}

int cork_in_cleanup(lua_State *L)
{
	struct cork *c = cork_runtime(L);
	return c ? atomic_load(&c->cleanup_depth) : 0;
}

void cork_cleanup_enter(lua_State *L)
{
	struct cork *c = cork_runtime(L);
	if (c)
		atomic_fetch_add(&c->cleanup_depth, 1);
}

void cork_cleanup_leave(lua_State *L)
{
	struct cork *c = cork_runtime(L);
	if (c)
		atomic_fetch_sub(&c->cleanup_depth, 1);
}

void cork_checkpoint(lua_State *L)
{
	struct cork *c = cork_runtime(L);
	if (cork_interrupt_pending(L)) {
		int sig = atomic_load(&c->last_signal);
		cork_error_push(L, "interrupted", "interrupted (%s)",
		                sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "SIGINT");
		lua_pushinteger(L, sig);
		lua_setfield(L, -2, "signal");
		lua_error(L);
	}
}

int cork_interrupt_signal(lua_State *L)
{
	struct cork *c = cork_runtime(L);
	return c ? atomic_load(&c->last_signal) : 0;
}

void cork_clear_interrupt(lua_State *L)
{
	struct cork *c = cork_runtime(L);
	if (c) {
		atomic_store(&c->interrupts, 0);
		atomic_store(&c->last_signal, 0);
	}
}

/* A signal ignored when the runtime starts stays ignored: `nohup cork ...`
 * must survive a hangup, and a background job of a non-interactive shell
 * (SIGINT ignored) must not stop at the Ctrl-C meant for the foreground.
 * (Python's SIGINT handling follows the same rule.) */
static void install_signals(struct cork *c)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;  /* no SA_RESTART: blocking calls return EINTR */
	struct cork *prev = signal_owner;
	signal_owner = c;
	for (int i = 0; i < 3; i++) {
		c->caught[i] = 0;
		if (prev && prev->caught[i]) {
			/* taken over from another runtime: what to restore is
			 * what was there before cork */
			c->old_sa[i] = prev->old_sa[i];
			c->caught[i] = 1;
			continue;
		}
		if (sigaction(caught_signals[i], NULL, &c->old_sa[i]) != 0 ||
		    c->old_sa[i].sa_handler == SIG_IGN)
			continue;
		c->caught[i] = sigaction(caught_signals[i], &sa, NULL) == 0;
	}
}

static void restore_signals(struct cork *c)
{
	for (int i = 0; i < 3; i++)
		if (c->caught[i])
			sigaction(caught_signals[i], &c->old_sa[i], NULL);
}

/* ---- secrets and events ---------------------------------------------- */

#define SECRETS_KEY "cork.secrets"

void cork_secret_add(lua_State *L, const char *value, size_t len)
{
	if (len == 0)
		return;
	lua_getfield(L, LUA_REGISTRYINDEX, SECRETS_KEY);
	if (!lua_istable(L, -1)) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, SECRETS_KEY);
	}
	lua_pushlstring(L, value, len);
	lua_pushboolean(L, 1);
	lua_rawset(L, -3);
	lua_pop(L, 1);
}

const char *cork_redact(lua_State *L, const char *s, size_t len)
{
	lua_getfield(L, LUA_REGISTRYINDEX, SECRETS_KEY);
	lua_pushlstring(L, s, len);
	if (lua_istable(L, -2)) {
		lua_pushnil(L);
		while (lua_next(L, -3)) {
			size_t sl, cl;
			const char *sec = lua_tolstring(L, -2, &sl);
			const char *cur = lua_tolstring(L, -3, &cl);
			lua_pop(L, 1);
			if (sl && memmem(cur, cl, sec, sl)) {
				luaL_Buffer b;
				const char *p = cur, *end = cur + cl, *hit;
				luaL_buffinit(L, &b);
				while ((hit = memmem(p, (size_t)(end - p), sec, sl))) {
					luaL_addlstring(&b, p, (size_t)(hit - p));
					luaL_addstring(&b, "***");
					p = hit + sl;
				}
				luaL_addlstring(&b, p, (size_t)(end - p));
				luaL_pushresult(&b);          /* tbl cur key new */
				lua_replace(L, -3);           /* tbl new key */
			}
		}
	}
	lua_remove(L, -2);
	return lua_tostring(L, -1);
}

static const char *level_color(const char *level)
{
	if (strcmp(level, "step") == 0) return "\033[1;34m";
	if (strcmp(level, "warn") == 0) return "\033[1;33m";
	if (strcmp(level, "error") == 0) return "\033[1;31m";
	if (strcmp(level, "debug") == 0) return "\033[2m";
	return "";
}

static void human_event(struct cork *c, const char *level, const char *msg)
{
	const char *col = c->color ? level_color(level) : "";
	const char *reset = c->color && *col ? "\033[0m" : "";
	int is_debug = strcmp(level, "debug") == 0;
	int loud = strcmp(level, "warn") == 0 || strcmp(level, "error") == 0;
	if (is_debug && !c->verbose)
		return;
	if (c->quiet && !loud)
		return;
	if (strcmp(level, "step") == 0)
		fprintf(stderr, "%s==>%s %s\n", col, reset, msg);
	else if (loud)
		fprintf(stderr, "%s%s:%s %s\n", col, strcmp(level, "warn") == 0 ? "warning" : "error", reset, msg);
	else if (is_debug)
		fprintf(stderr, "%s    %s%s\n", col, msg, reset);
	else
		fprintf(stderr, "    %s\n", msg);
	fflush(stderr);
}

/* Encode the table on top of the stack with cork.json's encoder (lists
 * marked with cork.json.array stay arrays when empty; src/json.c). */
static const char *encode_json(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, "cork.json_encode");
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		luaL_requiref(L, "cork.json", luaopen_cork_json, 0);
		lua_getfield(L, -1, "encode");
		lua_remove(L, -2);
		lua_pushvalue(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, "cork.json_encode");
	}
	lua_insert(L, -2);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		lua_pop(L, 1);
		lua_pushliteral(L, "{\"event\":\"encode_error\"}");
	}
	return lua_tostring(L, -1);
}

static void emit_json(lua_State *L, struct cork *c, const char *level, const char *event,
                      const char *msg, int fields_idx)
{
	struct timespec ts;
	lua_newtable(L);
	if (fields_idx && lua_istable(L, fields_idx)) {
		lua_pushnil(L);
		while (lua_next(L, fields_idx)) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, -4);
		}
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	lua_pushnumber(L, (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1e3);
	lua_setfield(L, -2, "ts");
	lua_pushstring(L, event);
	lua_setfield(L, -2, "event");
	lua_pushstring(L, level);
	lua_setfield(L, -2, "level");
	if (c->step[0]) {
		lua_pushstring(L, c->step);
		lua_setfield(L, -2, "step");
	}
	if (msg) {
		lua_pushstring(L, msg);
		lua_setfield(L, -2, "msg");
	}
	{
		const char *line = encode_json(L);
		line = cork_redact(L, line, strlen(line));
		if (c->on_event) {
			c->on_event(line, c->userdata);
		} else {
			fputs(line, stdout);
			fputc('\n', stdout);
			fflush(stdout);
		}
	}
}

void cork_event(lua_State *L, const char *level, const char *event,
                const char *msg, int fields_idx)
{
	struct cork *c = cork_runtime(L);
	int top = lua_gettop(L);
	int loud = strcmp(level, "warn") == 0 || strcmp(level, "error") == 0;
	if (!c)
		return;
	if (fields_idx)
		fields_idx = lua_absindex(L, fields_idx);
	if (strcmp(level, "step") == 0)
		snprintf(c->step, sizeof c->step, "%s", msg ? msg : "");
	luaL_checkstack(L, 10, "cork_event");
	/* Human lines go to stderr; warnings and errors even with --json. */
	if ((!c->json || loud) && msg && *msg) {
		human_event(c, level, cork_redact(L, msg, strlen(msg)));
		lua_settop(L, top);
	}
	if ((c->json || c->on_event) && (c->verbose || strcmp(level, "debug") != 0))
		emit_json(L, c, level, event, msg, fields_idx);
	lua_settop(L, top);
}

/* ---- embedded files and the search path ------------------------------ */

static int load_embedded(lua_State *L)
{
	const struct cork_embedded *e = lua_touserdata(L, lua_upvalueindex(1));
	char chunk[512];
	snprintf(chunk, sizeof chunk, "@%s", e->path);
	if (luaL_loadbufferx(L, e->data, e->len, chunk, "t") != LUA_OK)
		return lua_error(L);
	lua_pushvalue(L, 1);
	lua_pushstring(L, chunk + 1);
	lua_call(L, 2, 1);
	return 1;
}

/* "lua/cork/x/y.lua" -> "cork.x.y"; ".../init.lua" names its directory. */
static int module_name(const char *path, char *out, size_t outsz)
{
	size_t n = strlen(path), i;
	if (strncmp(path, "lua/", 4) != 0 || n < 9 || strcmp(path + n - 4, ".lua") != 0)
		return 0;
	path += 4;
	n -= 8;
	if (n >= 5 && strncmp(path + n - 5, "/init", 5) == 0)
		n -= 5;
	if (n + 1 > outsz)
		return 0;
	for (i = 0; i < n; i++)
		out[i] = path[i] == '/' ? '.' : path[i];
	out[n] = 0;
	return 1;
}

static void preload_all(lua_State *L)
{
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	for (const struct cork_module *m = cork_modules; m->name; m++) {
		lua_pushcfunction(L, m->open);
		lua_setfield(L, -2, m->name);
	}
	for (const struct cork_embedded *e = cork_embedded_files; e->path; e++) {
		char name[256];
		if (!module_name(e->path, name, sizeof name))
			continue;
		lua_pushlightuserdata(L, (void *)e);
		lua_pushcclosure(L, load_embedded, 1);
		lua_setfield(L, -2, name);
	}
	lua_pop(L, 1);
}

static int file_readable(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Searcher ahead of the preloads: module a.b in each CORK_PATH dir D, as
 * D/lua/a/b.lua, D/lua/a/b/init.lua, D/a/b.lua, D/a/b/init.lua. */
static int cork_path_searcher(lua_State *L)
{
	struct cork *c = cork_runtime(L);
	const char *name = luaL_checkstring(L, 1);
	static const char *const forms[][2] = { { "/lua/", ".lua" }, { "/lua/", "/init.lua" },
	                                        { "/", ".lua" }, { "/", "/init.lua" } };
	char rel[512], path[4096];
	const char *p, *dir;
	size_t i;
	if (!c || !c->lua_path || !*c->lua_path)
		return 0;
	if (strlen(name) >= sizeof rel)
		return 0;
	for (i = 0; name[i]; i++)
		rel[i] = name[i] == '.' ? '/' : name[i];
	rel[i] = 0;
	for (p = c->lua_path; *p; p = *dir ? dir + 1 : dir) {
		char d[2048];
		size_t dl;
		dir = strchr(p, ';');
		if (!dir)
			dir = p + strlen(p);
		dl = (size_t)(dir - p);
		if (dl == 0 || dl >= sizeof d)
			continue;
		memcpy(d, p, dl);
		d[dl] = 0;
		for (i = 0; i < sizeof forms / sizeof forms[0]; i++) {
			snprintf(path, sizeof path, "%s%s%s%s", d, forms[i][0], rel, forms[i][1]);
			if (file_readable(path)) {
				if (luaL_loadfilex(L, path, "t") != LUA_OK)
					return luaL_error(L, "error loading module '%s' from '%s':\n\t%s",
					                  name, path, lua_tostring(L, -1));
				lua_pushstring(L, path);
				return 2;
			}
		}
	}
	lua_pushfstring(L, "no module '%s' in CORK_PATH", name);
	return 1;
}

static void install_searcher(lua_State *L)
{
	lua_getglobal(L, "package");
	lua_getfield(L, -1, "searchers");
	lua_Integer n = luaL_len(L, -1);
	for (lua_Integer i = n; i >= 1; i--) {
		lua_rawgeti(L, -1, i);
		lua_rawseti(L, -2, i + 1);
	}
	lua_pushcfunction(L, cork_path_searcher);
	lua_rawseti(L, -2, 1);
	lua_pop(L, 2);
}

/* ---- life cycle ------------------------------------------------------ */

static char *dupstr(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

struct cork *cork_new(const struct cork_options *opts)
{
	struct cork_options def = { .color = -1 };
	struct cork *c;
	const char *path;
	if (!opts)
		opts = &def;
	c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	path = opts->lua_path ? opts->lua_path : getenv("CORK_PATH");
	c->lua_path = dupstr(path ? path : "");
	c->json = opts->json;
	c->verbose = opts->verbose;
	c->quiet = opts->quiet;
	c->on_event = opts->on_event;
	c->userdata = opts->userdata;
	c->color = opts->color;
	if (c->color < 0) {
		const char *nc = getenv("NO_COLOR");
		c->color = isatty(2) && !(nc && *nc);
	}
	c->L = luaL_newstate();
	if (!c->L || !c->lua_path) {
		if (c->L)
			lua_close(c->L);
		free(c->lua_path);
		free(c);
		return NULL;
	}
	*(struct cork **)lua_getextraspace(c->L) = c;
	luaL_checkversion(c->L);
	luaL_openlibs(c->L);
	preload_all(c->L);
	install_searcher(c->L);
	if (opts->handle_signals) {
		c->handle_signals = 1;
		install_signals(c);
	}
	return c;
}

void cork_free(struct cork *c)
{
	if (!c)
		return;
	/* Closing the state runs __gc of anything still open (scopes run
	 * their pending cleanups), so cleanup stays uninterruptible. */
	atomic_fetch_add(&c->cleanup_depth, 1);
	lua_close(c->L);
	if (signal_owner == c) {
		restore_signals(c);
		signal_owner = NULL;
	}
	free(c->lua_path);
	free(c);
}

/* ---- protected runs -------------------------------------------------- */

static int msgh(lua_State *L)
{
	struct cork *c = cork_runtime(L);
	if (cork_error_is(L, 1, NULL)) {
		lua_getfield(L, 1, "traceback");
		if (lua_isnil(L, -1)) {
			luaL_traceback(L, L, NULL, 1);
			lua_setfield(L, 1, "traceback");
		}
		lua_settop(L, 1);
		return 1;
	}
	{
		const char *msg = lua_tostring(L, 1);
		if (!msg) {
			if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
				msg = lua_tostring(L, -1);
			else
				msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
		}
		cork_error_push(L, "lua", "%s", msg);
		luaL_traceback(L, L, NULL, 1);
		lua_setfield(L, -2, "traceback");
	}
	(void)c;
	return 1;
}

static int exit_code_for(const char *kind)
{
	if (strcmp(kind, "interrupted") == 0)
		return CORK_EXIT_INTERRUPTED;
	if (strcmp(kind, "usage") == 0 || strcmp(kind, "invalid") == 0 ||
	    strcmp(kind, "manifest") == 0)
		return CORK_EXIT_USAGE;
	return CORK_EXIT_FAILED;
}

/* Call the function below nargs arguments; return an exit code. A number
 * returned by the function is the exit code; an error is reported. */
static int run_protected(struct cork *c, int nargs)
{
	lua_State *L = c->L;
	int base = lua_gettop(L) - nargs, rc, code = CORK_EXIT_OK;
	c->last_error[0] = c->last_kind[0] = 0;
	lua_pushcfunction(L, msgh);
	lua_insert(L, base);
	rc = lua_pcall(L, nargs, 1, base);
	if (rc == LUA_OK) {
		if (lua_isinteger(L, -1))
			code = (int)lua_tointeger(L, -1);
		else if (lua_isboolean(L, -1) && !lua_toboolean(L, -1))
			code = CORK_EXIT_FAILED;
	} else {
		const char *kind = "lua", *msg;
		int top, err = lua_gettop(L);
		if (lua_istable(L, -1)) {
			lua_getfield(L, -1, "kind");
			if (lua_type(L, -1) == LUA_TSTRING)
				kind = lua_tostring(L, -1);
			lua_getfield(L, -2, "message");
		} else {
			lua_pushvalue(L, -1);
		}
		msg = lua_tostring(L, -1);
		if (!msg)
			msg = "(no message)";
		top = lua_gettop(L);
		msg = cork_redact(L, msg, strlen(msg));
		snprintf(c->last_error, sizeof c->last_error, "%s", msg);
		snprintf(c->last_kind, sizeof c->last_kind, "%s", kind);
		lua_settop(L, top);
		code = exit_code_for(kind);
		if (lua_istable(L, err)) {
			/* an error may say which code it is (a misspelled name on the
			 * command line: kind not_found, exit 2 as a usage error) */
			lua_getfield(L, err, "exit_code");
			if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0 && lua_tointeger(L, -1) < 126)
				code = (int)lua_tointeger(L, -1);
			lua_pop(L, 1);
		}
		{
			lua_createtable(L, 0, 3);
			int ft = lua_gettop(L);
			lua_pushstring(L, c->last_kind);
			lua_setfield(L, ft, "kind");
			lua_pushinteger(L, code);
			lua_setfield(L, ft, "exit_code");
			if (lua_istable(L, err)) {
				/* the provisioning step that failed, when one did */
				lua_getfield(L, err, "provision_step");
				if (lua_type(L, -1) == LUA_TSTRING)
					lua_setfield(L, ft, "provision_step");
				else
					lua_pop(L, 1);
			}
			if (c->json || c->on_event)
				emit_json(L, c, "error", "failed", c->last_error, ft);
			lua_settop(L, top);
		}
		if (!c->on_event)   /* an embedder reads the failed event instead */
			fprintf(stderr, "cork: %s\n", c->last_error);
		if (c->verbose && !c->on_event) {
			lua_getfield(L, err, "traceback");
			if (lua_type(L, -1) == LUA_TSTRING) {
				const char *tb = lua_tostring(L, -1);
				fprintf(stderr, "%s\n", cork_redact(L, tb, strlen(tb)));
			}
		}
		fflush(stderr);
	}
	lua_settop(L, base - 1);
	/* An interrupt belongs to the run in progress (or, made between runs,
	 * to the next one): once a run has returned, it is spent. */
	atomic_store(&c->interrupts, 0);
	atomic_store(&c->last_signal, 0);
	return code;
}

static void push_args(lua_State *L, const char *script, int argc, const char *const argv[])
{
	lua_createtable(L, argc, 1);
	lua_pushstring(L, script);
	lua_rawseti(L, -2, 0);
	for (int i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i + 1);
	}
}

/* Push require(name)[field]. */
static int push_lua_entry(struct cork *c, const char *mod, const char *field)
{
	lua_State *L = c->L;
	lua_getglobal(L, "require");
	lua_pushstring(L, mod);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		snprintf(c->last_error, sizeof c->last_error, "%s", lua_tostring(L, -1));
		snprintf(c->last_kind, sizeof c->last_kind, "lua");
		fprintf(stderr, "cork: %s\n", c->last_error);
		lua_pop(L, 1);
		return 0;
	}
	lua_getfield(L, -1, field);
	lua_remove(L, -2);
	return 1;
}

int cork_main(struct cork *c, int argc, const char *const argv[])
{
	if (!push_lua_entry(c, "cork.cli", "main"))
		return CORK_EXIT_FAILED;
	push_args(c->L, "cork", argc, argv);
	return run_protected(c, 1);
}

int cork_run_recipe(struct cork *c, const char *name, int argc, const char *const argv[])
{
	if (!push_lua_entry(c, "cork.cli", "run_recipe"))
		return CORK_EXIT_FAILED;
	lua_pushstring(c->L, name);
	push_args(c->L, name, argc, argv);
	return run_protected(c, 2);
}

int cork_run_file(struct cork *c, const char *path, int argc, const char *const argv[])
{
	if (!push_lua_entry(c, "cork.cli", "run_file"))
		return CORK_EXIT_FAILED;
	lua_pushstring(c->L, path);
	push_args(c->L, path, argc, argv);
	return run_protected(c, 2);
}

int cork_run_string(struct cork *c, const char *chunk, const char *chunkname)
{
	lua_State *L = c->L;
	if (luaL_loadbufferx(L, chunk, strlen(chunk), chunkname ? chunkname : "=(string)", "t") != LUA_OK) {
		snprintf(c->last_error, sizeof c->last_error, "%s", lua_tostring(L, -1));
		snprintf(c->last_kind, sizeof c->last_kind, "invalid");
		lua_pop(L, 1);
		if (!c->on_event)
			fprintf(stderr, "cork: %s\n", c->last_error);
		return CORK_EXIT_USAGE;
	}
	return run_protected(c, 0);
}

/* Settings the Lua side may read (cork.core.settings). */
void cork_settings(lua_State *L);
void cork_settings(lua_State *L)
{
	struct cork *c = cork_runtime(L);
	lua_createtable(L, 0, 6);
	if (!c)
		return;
	lua_pushboolean(L, c->json);
	lua_setfield(L, -2, "json");
	lua_pushboolean(L, c->verbose);
	lua_setfield(L, -2, "verbose");
	lua_pushboolean(L, c->quiet);
	lua_setfield(L, -2, "quiet");
	lua_pushboolean(L, c->color);
	lua_setfield(L, -2, "color");
	lua_pushstring(L, c->lua_path);
	lua_setfield(L, -2, "lua_path");
	lua_pushboolean(L, c->on_event != NULL);
	lua_setfield(L, -2, "embedded");
}
