/*
 * cork.h: the cork runtime as a library (libcork).
 *
 * A runtime is one Lua 5.4 state with cork's modules preloaded, its own
 * search path, output mode and interrupt flag. Runtimes share no state: two in
 * one process do not interfere. The library installs no signal handlers
 * unless asked (cork_options.handle_signals).
 */
#ifndef CORK_H
#define CORK_H

#ifdef __cplusplus
extern "C" {
#endif

/* Exit codes, stable for scripts and editors. */
enum {
	CORK_EXIT_OK = 0,
	CORK_EXIT_FAILED = 1,      /* a recipe or operation failed */
	CORK_EXIT_USAGE = 2,       /* usage error or invalid input */
	CORK_EXIT_INTERRUPTED = 130
};

struct cork_options {
	const char *lua_path;   /* ';'-separated dirs searched before the embedded
	                           files (NULL: $CORK_PATH) */
	int json;               /* 1: events as NDJSON (stdout, or on_event) */
	int verbose;            /* 1: debug events and tracebacks */
	int quiet;              /* 1: only warnings and errors in human output */
	int color;              /* -1: auto (TTY and no NO_COLOR), 0: off, 1: on */
	int handle_signals;     /* 1: SIGINT/SIGTERM/SIGHUP interrupt this runtime */
	/* Called with every event as one JSON line (no newline). When set,
	   events go here instead of stdout in json mode; human output is still
	   written to stderr unless json is set. */
	void (*on_event)(const char *json_line, void *userdata);
	void *userdata;
};

struct cork;

/* NULL opts: defaults. Returns NULL only when out of memory. */
struct cork *cork_new(const struct cork_options *opts);
void cork_free(struct cork *c);

/* Run a recipe (by name: CORK_PATH then the embedded recipes; or by path)
 * with arguments; a Lua file with arguments (`arg` and `...`); a chunk of
 * Lua source. Each returns a CORK_EXIT_* code. */
int cork_run_recipe(struct cork *c, const char *name, int argc, const char *const argv[]);
int cork_run_file(struct cork *c, const char *path, int argc, const char *const argv[]);
int cork_run_string(struct cork *c, const char *chunk, const char *chunkname);

/* Run a cork command line (argv without the program name and without the
 * global flags, which go into cork_options): "run hello", "version", ... */
int cork_main(struct cork *c, int argc, const char *const argv[]);

/* Ask the running code to stop at its next safe point, exactly as SIGINT
 * does (scopes unwind, the run returns CORK_EXIT_INTERRUPTED). Safe to call
 * from another thread or a signal handler. */
void cork_interrupt(struct cork *c);

/* The last failure of this runtime: message and kind ("interrupted",
 * "usage", "not_found", ...). Empty strings after a success. Valid until the
 * next run. */
const char *cork_last_error(const struct cork *c);
const char *cork_last_error_kind(const struct cork *c);

/* The runtime's Lua state, for embedders that extend it. */
struct lua_State *cork_lua(struct cork *c);

const char *cork_version(void);

#ifdef __cplusplus
}
#endif
#endif
