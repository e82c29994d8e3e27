/*
 * fuzz_manifest.c: libFuzzer target for the bottle/agent manifest loader.
 *
 * Bytes go through cork.yaml.decode (libyaml, positions), the validator
 * and normalizer of lua/cork/manifest.lua and, for a bottle that loads,
 * cork.plan.build, inside a Lua state made by the runtime (cork_new, linked
 * from libcork.a). The first byte picks the form:
 * bit 0 agent/bottle, bit 1 Markdown/YAML. Any outcome other than "loaded"
 * or a cork error of kind "manifest" is a bug: the target aborts with the
 * Lua error, so libFuzzer keeps the input.
 *
 * libFuzzer only sees coverage of instrumented C. The Lua VM is the Debian
 * shared library, so a line hook feeds Lua-level coverage (which lines of
 * manifest.lua and schema.lua ran) into libFuzzer's extra counters: new
 * validator paths count as progress too.
 *
 *   make fuzz                      (FUZZ_TIME=seconds, default 180)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include "cork.h"

#define LUA_COUNTERS (1u << 14)
__attribute__((used, section("__libfuzzer_extra_counters")))
static uint8_t lua_counters[LUA_COUNTERS];

static struct cork *runtime;
static lua_State *L;
static int check_ref = LUA_NOREF;

static const char harness[] =
	"local cork = require 'cork'\n"
	"local manifest = require 'cork.manifest'\n"
	"local plan = require 'cork.plan'\n"
	"local env = {HOME = '/nonexistent-cork-fuzz'}\n"
	"return function(data, mode)\n"
	"  local kind = (mode & 1) == 1 and 'agent' or 'bottle'\n"
	"  local name = (mode & 2) == 2 and 'fuzz.md' or 'fuzz.yaml'\n"
	"  local ok, err = pcall(function()\n"
	"    local doc, meta = manifest.parse(data, name, kind)\n"
	"    if kind == 'agent' then manifest.normalize_agent(doc, meta, 'fuzz')\n"
	"    else\n"
	"      local b = manifest.normalize_bottle(doc, meta, 'fuzz')\n"
	"      plan.build(b, nil, {env = env, suffix = 'fuzz00', subnets = {}})\n"
	"    end\n"
	"  end)\n"
	"  if ok or cork.is_error(err, 'manifest') then return nil end\n"
	"  if type(err) == 'table' then\n"
	"    return ('cork error of kind %s: %s'):format(tostring(err.kind), tostring(err.message))\n"
	"  end\n"
	"  return tostring(err)\n"
	"end\n";

static void line_hook(lua_State *l, lua_Debug *ar)
{
	uintptr_t h;
	if (!lua_getinfo(l, "S", ar))
		return;
	h = (uintptr_t)ar->source * 31u + (uintptr_t)ar->currentline * 2654435761u;
	h ^= h >> 15;
	lua_counters[h & (LUA_COUNTERS - 1)]++;
}

static void die(const char *what)
{
	fprintf(stderr, "fuzz_manifest: %s\n", what);
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct cork_options o = { .color = 0, .quiet = 1 };
	(void)argc;
	(void)argv;
	runtime = cork_new(&o);
	if (!runtime)
		die("cork_new failed");
	L = cork_lua(runtime);
	if (luaL_loadbuffer(L, harness, sizeof harness - 1, "=fuzz_harness") != LUA_OK ||
	    lua_pcall(L, 0, 1, 0) != LUA_OK)
		die(lua_tostring(L, -1));
	check_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_sethook(L, line_hook, LUA_MASKLINE, 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int mode = 0;
	static unsigned runs;
	if (size > 0) {
		mode = data[0];
		data++;
		size--;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, check_ref);
	lua_pushlstring(L, (const char *)data, size);
	lua_pushinteger(L, mode);
	if (lua_pcall(L, 2, 1, 0) != LUA_OK)
		die(lua_tostring(L, -1));
	if (lua_type(L, -1) == LUA_TSTRING) {
		fprintf(stderr, "fuzz_manifest: the loader failed other than with a manifest error:\n%s\n",
		        lua_tostring(L, -1));
		abort();
	}
	lua_pop(L, 1);
	if (++runs % 256 == 0)
		lua_gc(L, LUA_GCCOLLECT, 0);
	return 0;
}
