/*
 * runtime.h: what every binding module (src/NAME.c) may use from the runtime.
 *
 * A binding module is one C file exporting luaopen_cork_NAME and listed in the
 * Makefile's MODULES line; the build registers it in package.preload as
 * "cork.NAME". Modules use only this header (plus Lua, and their own library).
 */
#ifndef CORK_RUNTIME_H
#define CORK_RUNTIME_H

#include <stdarg.h>
#include <stddef.h>
#include <lua.h>
#include <lauxlib.h>

struct cork;

/* The runtime that owns this Lua state (NULL only for a bare lua_State that
 * was not made by cork_new, e.g. in a C unit test: every helper copes). */
struct cork *cork_runtime(lua_State *L);

/* ---- errors ------------------------------------------------------------
 * Operational failures raise a table { kind = "...", message = "...", ... }
 * whose metatable is "cork.Error" (__tostring gives the message).
 * Push one, add detail fields with lua_setfield on it, then lua_error(L).
 * cork_raise is push + lua_error in one call. Never put secret values in a
 * message: say which name, not which value. */
void cork_error_push(lua_State *L, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cork_error_pushv(lua_State *L, const char *kind, const char *fmt, va_list ap);
int cork_raise(lua_State *L, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
/* Is the value at idx a cork error (of this kind, when kind != NULL)? */
int cork_error_is(lua_State *L, int idx, const char *kind);

/* ---- interruption ------------------------------------------------------
 * SIGINT/SIGTERM/SIGHUP (or cork_interrupt from another thread) only set a
 * flag. Every binding calls cork_checkpoint() before it acts: it raises
 * { kind = "interrupted" } when an interrupt is pending, except while scopes
 * are running cleanups (cleanup must finish). Blocking waits (poll loops,
 * curl progress callbacks, sleeps) poll cork_interrupt_pending() at least
 * every 100 ms and give up promptly when it is true. */
void cork_checkpoint(lua_State *L);
int cork_interrupt_pending(lua_State *L);   /* 1 when a checkpoint would raise */
int cork_in_cleanup(lua_State *L);          /* >0 while scope closers run */
int cork_interrupt_signal(lua_State *L);    /* the last signal seen (0: none) */
void cork_clear_interrupt(lua_State *L);    /* forget pending interrupts */
void cork_cleanup_enter(lua_State *L);
void cork_cleanup_leave(lua_State *L);

/* ---- events ------------------------------------------------------------
 * Emit one event: level is "debug", "info", "step", "warn" or "error";
 * event is the event name; fields_idx (0 = none) is a table of extra fields.
 * Human form goes to stderr, --json form to stdout / the embedder's callback.
 * Values registered with cork_secret_add are redacted in both forms. */
void cork_event(lua_State *L, const char *level, const char *event,
                const char *msg, int fields_idx);
void cork_secret_add(lua_State *L, const char *value, size_t len);
/* Replace every registered secret in s by "***"; pushes the result. */
const char *cork_redact(lua_State *L, const char *s, size_t len);

/* ---- options and errno (src/auxlib.c) --------------------------------------
 * One behaviour for every module's option tables. idx is the option table;
 * 0, none or nil means "no table" (every read gives the default). An unknown
 * key or a value of the wrong type is misuse: a plain Lua error naming the
 * option ("unknown option 'tiemout' (did you mean 'timeout'?)", "option
 * 'timeout' must be a number (got string)"), as a wrong argument type is.
 * No coercion: "5" is not a number, 0 is not a boolean, 1.5 is not an
 * integer. A value of the right type that is unusable is kind "usage" (the
 * caller judges ranges). Strings stay anchored by the option table. */
void cork_check_options(lua_State *L, int idx, const char *const names[]);
const char *cork_opt_string(lua_State *L, int idx, const char *k, const char *def);
const char *cork_opt_lstring(lua_State *L, int idx, const char *k, const char *def, size_t *len);
/* A required string option: absent raises "option 'k' is required" (plain
 * error), "" raises kind "usage" ("option 'k' is empty"). */
const char *cork_opt_required(lua_State *L, int idx, const char *k);
int cork_opt_boolean(lua_State *L, int idx, const char *k, int def);
lua_Number cork_opt_number(lua_State *L, int idx, const char *k, lua_Number def);
lua_Integer cork_opt_integer(lua_State *L, int idx, const char *k, lua_Integer def);
/* The closest of names (NULL terminated) within a small edit distance, or NULL. */
const char *cork_suggest(const char *word, const char *const names[]);
/* errno -> kind: not_found (ENOENT ENOTDIR ENODEV), exists (EEXIST
 * ENOTEMPTY), permission (EACCES EPERM EROFS), else io. */
const char *cork_errno_kind(int err);
/* Raise {kind = cork_errno_kind(err), message = "WHAT PATH: strerror",
 * path = PATH, errno = err}. */
int cork_raise_errno(lua_State *L, int err, const char *what, const char *path)
    __attribute__((noreturn));

/* ---- small helpers ----------------------------------------------------- */
/* Monotonic seconds. */
double cork_now(void);

#endif
