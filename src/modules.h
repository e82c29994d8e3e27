/* The table of C binding modules, generated from the Makefile's MODULES. */
#ifndef CORK_MODULES_H
#define CORK_MODULES_H
#include <lua.h>
struct cork_module {
	const char *name;
	lua_CFunction open;
};
extern const struct cork_module cork_modules[];

/* One luaopen per C module (the Makefile's MODULES; build/modules.c lists
 * them in cork_modules). */
int luaopen_cork_core(lua_State *L);
int luaopen_cork_scope(lua_State *L);
int luaopen_cork_proc(lua_State *L);
int luaopen_cork_fs(lua_State *L);
int luaopen_cork_yaml(lua_State *L);
int luaopen_cork_log(lua_State *L);
int luaopen_cork_net(lua_State *L);
int luaopen_cork_ca(lua_State *L);
int luaopen_cork__docker(lua_State *L);   /* under lua/cork/docker.lua */
int luaopen_cork_json(lua_State *L);
int luaopen_cork_canary(lua_State *L);
#endif
