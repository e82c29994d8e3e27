/*
 * main.c: the cork command line, a thin main over libcork. It only sorts
 * out the global flags (accepted before or after the subcommand) and hands
 * the rest to cork_main, whose subcommands live in lua/cork/cli.lua.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cork.h"

static int is_script_cmd(const char *a)
{
	size_t n = strlen(a);
	return strcmp(a, "script") == 0 || (n > 4 && strcmp(a + n - 4, ".lua") == 0);
}

int main(int argc, char **argv)
{
	struct cork_options o = { .color = -1, .handle_signals = 1 };
	const char **rest = calloc((size_t)argc + 1, sizeof *rest);
	int n = 0, positional = 0, script = 0, passthrough = 0, rc;
	struct cork *c;
	char *joined = NULL;

	if (!rest)
		return CORK_EXIT_FAILED;
	signal(SIGPIPE, SIG_IGN);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (passthrough || (script && positional >= 2)) {
			rest[n++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			passthrough = 1;
			rest[n++] = a;
		} else if (strcmp(a, "--json") == 0) {
			o.json = 1;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			o.verbose = 1;
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			o.quiet = 1;
		} else if (strcmp(a, "--no-color") == 0) {
			o.color = 0;
		} else if (strcmp(a, "--lua-path") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "cork: --lua-path needs a directory list\n");
				free(rest);
				return CORK_EXIT_USAGE;
			}
			o.lua_path = argv[++i];
		} else if (strncmp(a, "--lua-path=", 11) == 0) {
			o.lua_path = a + 11;
		} else {
			if (a[0] != '-') {
				if (positional == 0 && is_script_cmd(a))
					script = 1;
				positional++;
				/* `cork FILE.lua ARGS`: everything after FILE is the script's */
				if (script && positional == 1 && strcmp(a, "script") != 0)
					positional = 2;
			}
			rest[n++] = a;
		}
	}
	if (o.lua_path && getenv("CORK_PATH") && *getenv("CORK_PATH")) {
		/* --lua-path comes first, then CORK_PATH */
		size_t len = strlen(o.lua_path) + strlen(getenv("CORK_PATH")) + 2;
		joined = malloc(len);
		if (joined) {
			snprintf(joined, len, "%s;%s", o.lua_path, getenv("CORK_PATH"));
			o.lua_path = joined;
		}
	}
	c = cork_new(&o);
	if (!c) {
		fprintf(stderr, "cork: out of memory\n");
		free(rest);
		free(joined);
		return CORK_EXIT_FAILED;
	}
	rc = cork_main(c, n, rest);
	cork_free(c);
	free(rest);
	free(joined);
	return rc;
}
