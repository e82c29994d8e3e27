/*
 * cork.h: the cork runtime as a library (libcork).
 *
 * A runtime is one Lua 5.4 state with cork's modules preloaded, its own
 * search path, output mode and interrupt flag. Link with
 * `pkg-config --cflags --libs cork` (libcork.so) or
 * `pkg-config --static --cflags --libs cork` (libcork.a); docs/embedding.md
 * has a complete example.
 *
 * Threads. A runtime is used by one thread at a time, any thread (it need
 * not be the main one). Runtimes share no state: several in one process,
 * on as many threads, do not interfere. cork_interrupt is the one call that
 * is safe from any thread (and from a signal handler) while a run is going.
 *
 * Signals. The library installs no signal handler unless asked
 * (cork_options.handle_signals). Children it starts get default signal
 * dispositions, and writing to a child's stdin never raises SIGPIPE; an
 * embedder whose own stdout may close under it should ignore SIGPIPE, as
 * the cork executable does.
 *
 * Output. Events (docs/events.md) go to on_event when it is set, else as
 * JSON lines to stdout in json mode; human progress goes to stderr unless
 * json is set. Lua code may still write to stdout itself (print, and
 * commands whose output is text, such as `cork ls` without json).
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

/* Zero-initialise, then set what you need ({0} with color = -1 is what the
 * cork executable starts from). Fields may be added at the end in a later
 * version, with a new soname. */
struct cork_options {
	const char *lua_path;   /* ';'-separated dirs searched before the embedded
	                           files (NULL: $CORK_PATH); copied */
	int json;               /* 1: events as NDJSON (stdout, or on_event);
	                           human progress off */
	int verbose;            /* 1: debug events and tracebacks */
	int quiet;              /* 1: only warnings and errors in human output */
	int color;              /* -1: auto (TTY and no NO_COLOR), 0: off, 1: on */
	int handle_signals;     /* 1: SIGINT/SIGTERM/SIGHUP interrupt this runtime
	                           (one runtime per process owns them: the last
	                           created with it). A signal ignored when the
	                           runtime is created (nohup, a background job)
	                           stays ignored; cork_free restores what was
	                           there before */
	/* Called with every event as one JSON line (no newline), on the thread
	 * running the runtime, before the code that emitted it goes on. The
	 * line is valid only during the call; secrets already read "***".
	 * It must not call back into this runtime (cork_interrupt excepted).
	 * When set, events go here instead of stdout even without json, and a
	 * failed run is reported only here (a "failed" event) and by
	 * cork_last_error, not on stderr. */
	void (*on_event)(const char *json_line, void *userdata);
	void *userdata;
};

struct cork;

/* Create a runtime. NULL opts: defaults (no json, colour auto, no signal
 * handlers, no callback). Returns NULL only when out of memory. */
struct cork *cork_new(const struct cork_options *opts);

/* Free a runtime (NULL is fine). Anything still open in it is closed first:
 * pending scope cleanups run (uninterruptibly), children are ended. */
void cork_free(struct cork *c);

/* Runs. Each returns a CORK_EXIT_* code (or the integer the Lua code
 * returned); after a failure cork_last_error / _kind say why. Runs on one
 * runtime share its Lua state (globals persist between them).
 *
 * cork_run_recipe: a recipe by name (CORK_PATH, then the embedded recipes:
 *   "hello", "docker", "smolmachines") or by path, with its arguments
 *   (`arg` and `...`), as `cork run NAME ARGS...`.
 * cork_run_file: a Lua file with arguments, as `cork script FILE ARGS...`.
 * cork_run_string: a chunk of Lua source (text only, never bytecode);
 *   chunkname as for luaL_loadbuffer (NULL: "=(string)"); a syntax error
 *   returns CORK_EXIT_USAGE with kind "invalid". */
int cork_run_recipe(struct cork *c, const char *name, int argc, const char *const argv[]);
int cork_run_file(struct cork *c, const char *path, int argc, const char *const argv[]);
int cork_run_string(struct cork *c, const char *chunk, const char *chunkname);

/* Run a cork command line (argv without the program name and without the
 * global flags, which go into cork_options): {"run", "hello"}, {"ls"},
 * {"version"}, ... */
int cork_main(struct cork *c, int argc, const char *const argv[]);

/* Ask the running code to stop at its next safe point, exactly as SIGINT
 * does: scopes unwind (every cleanup runs), children are stopped, and the
 * run returns CORK_EXIT_INTERRUPTED with kind "interrupted". Safe from any
 * thread and from a signal handler. The request belongs to the run in
 * progress or, made between runs, to the next one; it is spent when that
 * run returns. Calls during cleanup do not cut the cleanup short. */
void cork_interrupt(struct cork *c);

/* The last failure of this runtime: message (secrets redacted) and kind
 * ("interrupted", "usage", "invalid", "not_found", "lua" for a plain Lua
 * error, ...). Empty strings after a success. Valid until the next run. */
const char *cork_last_error(const struct cork *c);
const char *cork_last_error_kind(const struct cork *c);

/* The runtime's Lua state, for embedders that extend it (register
 * functions, preload modules). Owned by the runtime; use it only from the
 * thread using the runtime, and not after cork_free. */
struct lua_State *cork_lua(struct cork *c);

/* "0.1.0" */
const char *cork_version(void);

#ifdef __cplusplus
}
#endif
#endif
