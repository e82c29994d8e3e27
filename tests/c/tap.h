/* tap.h: minimal TAP for C unit tests. */
#ifndef CORK_TAP_H
#define CORK_TAP_H
#include <stdio.h>
#include <string.h>
static int tap_n, tap_failed;
#define ok(cond, ...) do { ++tap_n; int c_ = !!(cond); \
	printf("%s %d - ", c_ ? "ok" : "not ok", tap_n); printf(__VA_ARGS__); printf("\n"); \
	if (!c_) { ++tap_failed; printf("#   at %s:%d\n", __FILE__, __LINE__); } fflush(stdout); } while (0)
#define is_int(got, want, ...) do { long g_ = (long)(got), w_ = (long)(want); ok(g_ == w_, __VA_ARGS__); \
	if (g_ != w_) printf("#   got %ld, want %ld\n", g_, w_); } while (0)
#define is_str(got, want, ...) do { const char *g_ = (got), *w_ = (want); \
	int e_ = g_ && w_ ? strcmp(g_, w_) == 0 : g_ == w_; ok(e_, __VA_ARGS__); \
	if (!e_) printf("#   got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); } while (0)
static inline int tap_done(void) { printf("1..%d\n", tap_n); return tap_failed ? 1 : 0; }
#endif
