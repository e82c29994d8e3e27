/* The table of C binding modules, generated from the Makefile's MODULES. */
#ifndef CORK_MODULES_H
#define CORK_MODULES_H
#include <lua.h>
struct cork_module {
	const char *name;
	lua_CFunction open;
};
extern const struct cork_module cork_modules[];
#endif
