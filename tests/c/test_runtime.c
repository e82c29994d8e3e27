/* The runtime through its C API: runs, errors and kinds, events through
 * the callback, interruption from another thread, two runtimes at once. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cork.h"
#include "tap.h"

struct events {
	int count, failed, steps;
	char last[512];
};

static void on_event(const char *line, void *ud)
{
	struct events *e = ud;
	e->count++;
	if (strstr(line, "\"event\":\"failed\""))
		e->failed++;
	if (strstr(line, "\"level\":\"step\""))
		e->steps++;
	snprintf(e->last, sizeof e->last, "%s", line);
}

static void *interrupt_later(void *arg)
{
	struct timespec ts = { 0, 300 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	cork_interrupt(arg);
	return NULL;
}

int main(void)
{
	struct events ev = { 0 };
	struct cork_options o = { .json = 1, .on_event = on_event, .userdata = &ev, .color = 0 };
	struct cork *c = cork_new(&o), *c2;
	pthread_t th;
	int rc;

	ok(c != NULL, "cork_new");
	is_int(cork_run_string(c, "x = 1 + 1; return 0", "=t"), CORK_EXIT_OK, "run a chunk");
	is_str(cork_last_error(c), "", "no error after success");
	is_int(cork_run_string(c, "return x + 40", "=t"), 42, "state persists; integer result is the exit code");

	rc = cork_run_string(c, "cork = require 'cork'; cork.error('not_found', 'no such thing')", "=t");
	is_int(rc, CORK_EXIT_FAILED, "operational error: exit 1");
	is_str(cork_last_error_kind(c), "not_found", "kind");
	is_str(cork_last_error(c), "no such thing", "message");
	is_int(ev.failed, 1, "a failed event reached the callback");
	ok(strstr(ev.last, "\"kind\":\"not_found\"") != NULL, "failed event has the kind");

	is_int(cork_run_string(c, "error('plain')", "=t"), CORK_EXIT_FAILED, "plain Lua error: exit 1");
	is_str(cork_last_error_kind(c), "lua", "plain errors have kind lua");
	is_int(cork_run_string(c, "this is not lua", "=t"), CORK_EXIT_USAGE, "syntax error: exit 2");
	is_int(cork_run_string(c, "require('cork').error('usage', 'x')", "=t"), CORK_EXIT_USAGE, "usage: exit 2");

	/* secrets never reach events */
	ev.count = 0;
	cork_run_string(c, "local log = require 'cork.log'; log.secret('hunter2'); log.event('x', { v = 'pw=hunter2' })", "=t");
	ok(ev.count == 1 && !strstr(ev.last, "hunter2") && strstr(ev.last, "pw=***"), "secret redacted in events");

	/* the stock hello recipe through the API */
	ev.steps = 0;
	{
		const char *args[] = { "--steps", "2" };
		is_int(cork_run_recipe(c, "hello", 2, args), CORK_EXIT_OK, "cork_run_recipe(hello)");
		is_int(ev.steps, 2, "step events through the callback");
	}

	/* interrupt from another thread: scopes unwind, exit 130 */
	pthread_create(&th, NULL, interrupt_later, c);
	rc = cork_run_string(c,
		"local cork = require 'cork'\n"
		"done = 0\n"
		"local s <close> = cork.scope('t')\n"
		"s:defer(function() done = done + 1 end)\n"
		"s:defer(function() cork.sleep(0.05); done = done + 1 end)\n"
		"cork.sleep(10)\n", "=interrupt");
	pthread_join(th, NULL);
	is_int(rc, CORK_EXIT_INTERRUPTED, "cork_interrupt from a thread: exit 130");
	is_str(cork_last_error_kind(c), "interrupted", "kind interrupted");
	cork_run_string(c, "require('cork.core').clear_interrupt()", "=t");
	is_int(cork_run_string(c, "return done", "=t"), 2, "every cleanup ran (even one that sleeps)");

	/* two runtimes do not interfere */
	c2 = cork_new(NULL);
	ok(c2 != NULL, "second runtime");
	cork_run_string(c, "shared = 'one'", "=t");
	cork_run_string(c2, "shared = 'two'", "=t");
	is_int(cork_run_string(c, "return shared == 'one' and 0 or 1", "=t"), 0, "globals are per runtime");
	cork_interrupt(c2);
	is_int(cork_run_string(c2, "require('cork').sleep(0.01)", "=t"), CORK_EXIT_INTERRUPTED, "interrupting one runtime...");
	is_int(cork_run_string(c, "require('cork').sleep(0.01)", "=t"), CORK_EXIT_OK, "...leaves the other alone");
	cork_free(c2);

	ok(strcmp(cork_version(), "0") > 0, "cork_version");
	ok(cork_lua(c) != NULL, "cork_lua");
	cork_free(c);
	cork_free(NULL);
	return tap_done();
}
