/* The files under lua/ and recipes/, compiled in by tools/embed.c. */
#ifndef CORK_EMBEDDED_H
#define CORK_EMBEDDED_H
#include <stddef.h>
struct cork_embedded {
	const char *path;   /* "lua/cork/x.lua", "recipes/hello.lua", ... */
	const char *data;
	size_t len;
};
extern const struct cork_embedded cork_embedded_files[];
#endif
