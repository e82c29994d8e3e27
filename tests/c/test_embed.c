/* libcork as an embedder uses it (test_runtime.c covers the basics): the
 * hello recipe by path with its events through the callback, in order; a
 * long run interrupted from a second thread at a known step, every cleanup
 * seen; the interrupt spent once its run returns; no signal handler unless
 * asked; two runtimes on two non-main threads at once; cork_free running
 * what a run left pending. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cork.h"
#include "tap.h"

#define MAX_EVENTS 64

struct log {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n, resources;
	char *lines[MAX_EVENTS];
	pthread_t thread;     /* the thread the callback ran on */
	int wrong_thread;
};

static void log_init(struct log *l)
{
	memset(l, 0, sizeof *l);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
}

static void log_free(struct log *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->lines[i]);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
}

static void on_event(const char *line, void *ud)
{
	struct log *l = ud;
	pthread_mutex_lock(&l->mu);
	if (!pthread_equal(pthread_self(), l->thread))
		l->wrong_thread++;
	if (l->n < MAX_EVENTS)
		l->lines[l->n++] = strdup(line);
	if (strstr(line, "\"event\":\"resource\""))
		l->resources++;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

/* Index of the first event at or after `from` containing `needle`, or -1. */
static int find(const struct log *l, int from, const char *needle)
{
	for (int i = from; i < l->n; i++)
		if (strstr(l->lines[i], needle))
			return i;
	return -1;
}

static char *slurp(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n = 0;
	buf[0] = 0;
	if (f) {
		n = fread(buf, 1, sizeof buf - 1, f);
		buf[n] = 0;
		fclose(f);
	}
	return buf;
}

static struct cork *new_runtime(struct log *l, int handle_signals)
{
	struct cork_options o = { .json = 1, .color = 0, .on_event = on_event, .userdata = l,
	                          .handle_signals = handle_signals };
	l->thread = pthread_self();
	return cork_new(&o);
}

/* ---- interrupt from a second thread once N resources exist ------------ */

struct stopper {
	struct cork *c;
	struct log *l;
	int after;
	struct timespec fired;  /* when cork_interrupt was called */
};

static void *stop_after(void *arg)
{
	struct stopper *s = arg;
	pthread_mutex_lock(&s->l->mu);
	while (s->l->resources < s->after)
		pthread_cond_wait(&s->l->cv, &s->l->mu);
	pthread_mutex_unlock(&s->l->mu);
	cork_interrupt(s->c);
	clock_gettime(CLOCK_MONOTONIC, &s->fired);
	return NULL;
}

/* ---- a runtime on its own thread -------------------------------------- */

struct worker {
	const char *name, *marker;
	const char *pause;     /* seconds per step */
	int interrupt_after;   /* 0: run to the end */
	struct log log;
	int rc;
	char kind[64];
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct cork *c = new_runtime(&w->log, 0);
	struct stopper s = { c, &w->log, w->interrupt_after, { 0, 0 } };
	const char *argv[] = { "--name", w->name, "--steps", "3", "--pause", w->pause, "--marker", w->marker };
	pthread_t th;
	if (w->interrupt_after)
		pthread_create(&th, NULL, stop_after, &s);
	w->rc = cork_run_recipe(c, "hello", 8, argv);
	if (w->interrupt_after)
		pthread_join(th, NULL);
	snprintf(w->kind, sizeof w->kind, "%s", cork_last_error_kind(c));
	cork_free(c);
	return NULL;
}

static void *send_sigint(void *arg)
{
	struct timespec ts = { 0, 200 * 1000 * 1000 };
	(void)arg;
	nanosleep(&ts, NULL);
	kill(getpid(), SIGINT);
	return NULL;
}

static int handler_is_default(int sig)
{
	struct sigaction sa;
	sigaction(sig, NULL, &sa);
	return sa.sa_handler == SIG_DFL;
}

static int handler_is(int sig, void (*h)(int))
{
	struct sigaction sa;
	sigaction(sig, NULL, &sa);
	return sa.sa_handler == h;
}

/* The dispositions this process started with (nohup ignores SIGHUP, a
 * background job of a non-interactive shell SIGINT): the checks compare
 * against them, and the signal tests set their own. */
static void (*start_sa[3])(int);
static const int sigs[3] = { SIGINT, SIGTERM, SIGHUP };

static int handlers_unchanged(void)
{
	for (int i = 0; i < 3; i++)
		if (!handler_is(sigs[i], start_sa[i]))
			return 0;
	return 1;
}

int main(void)
{
	const char *root = getenv("CORK_ROOT") ? getenv("CORK_ROOT") : ".";
	char hello[4096], dir[] = "/tmp/cork-embed-XXXXXX", marker[4200], m1[4200], m2[4200];
	struct log l;
	struct cork *c;
	int rc, i;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(hello, sizeof hello, "%s/recipes/hello.lua", root);
	snprintf(marker, sizeof marker, "%s/marker", dir);
	for (i = 0; i < 3; i++) {
		struct sigaction sa;
		sigaction(sigs[i], NULL, &sa);
		start_sa[i] = sa.sa_handler;
	}

	/* the hello recipe by path: every event through the callback, in order */
	log_init(&l);
	c = new_runtime(&l, 0);
	ok(handlers_unchanged(), "cork_new without handle_signals installs no signal handler");
	{
		const char *argv[] = { "--steps", "2", "--name", "embedder" };
		rc = cork_run_recipe(c, hello, 4, argv);
	}
	is_int(rc, CORK_EXIT_OK, "hello by path: exit 0");
	is_int(l.n, 7, "seven events: 2 x (step, resource), hello, 2 x undid");
	ok(find(&l, 0, "\"msg\":\"step 1 of 2\"") == 0 && find(&l, 0, "\"name\":\"thing-1\"") == 1 &&
	   find(&l, 0, "\"msg\":\"step 2 of 2\"") == 2 && find(&l, 0, "\"name\":\"thing-2\"") == 3 &&
	   find(&l, 0, "hello, embedder") == 4 && find(&l, 0, "undid step 2") == 5 &&
	   find(&l, 0, "undid step 1") == 6, "in the order the recipe emitted them");
	ok(find(&l, 0, "\"ts\":") == 0 && find(&l, 0, "\"level\":\"step\"") == 0, "with ts and level");
	is_int(l.wrong_thread, 0, "each on the thread running the recipe");
	ok(handlers_unchanged(), "running code installed no handler either");
	cork_free(c);
	log_free(&l);

	/* interrupt a long run from a second thread at step 2: both cleanups run */
	log_init(&l);
	c = new_runtime(&l, 0);
	{
		struct stopper s = { c, &l, 2, { 0, 0 } };
		const char *argv[] = { "--steps", "3", "--pause", "1.5", "--marker", marker };
		pthread_t th;
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		pthread_create(&th, NULL, stop_after, &s);
		rc = cork_run_recipe(c, "hello", 6, argv);
		pthread_join(th, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		is_int(rc, CORK_EXIT_INTERRUPTED, "interrupted from a thread: exit 130");
		double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		/* the whole run's length depends on the machine (valgrind, load);
		 * what must hold: step 1's pause was waited out, and the run ended
		 * soon after the interrupt (step 3 never began: checked below) */
		double late = (double)(t1.tv_sec - s.fired.tv_sec) +
		              (double)(t1.tv_nsec - s.fired.tv_nsec) / 1e9;
		ok(took > 1.4, "step 1's pause was waited out (%.2f s)", took);
		ok(late < 1.5, "promptly: %.2f s from the interrupt to the return", late);
	}
	is_str(cork_last_error_kind(c), "interrupted", "kind interrupted");
	is_str(cork_last_error(c), "interrupted (SIGINT)", "message");
	is_str(slurp(marker), "cleanup 2 after: interrupted\ncleanup 1 after: interrupted\n",
	       "every cleanup ran, in reverse, and saw the interrupt");
	i = find(&l, 0, "undid step 2");
	ok(i > 0 && find(&l, i, "undid step 1") > i, "cleanup events came through the callback");
	ok(l.n > 0 && strstr(l.lines[l.n - 1], "\"event\":\"failed\"") &&
	   strstr(l.lines[l.n - 1], "\"kind\":\"interrupted\"") && strstr(l.lines[l.n - 1], "\"exit_code\":130"),
	   "the last event is failed, kind interrupted, exit_code 130");
	ok(find(&l, 0, "step 3 of 3") < 0, "step 3 never began");

	/* the interrupt was spent by that run; one made between runs is the next's */
	{
		const char *argv[] = { "--steps", "1" };
		is_int(cork_run_recipe(c, "hello", 2, argv), CORK_EXIT_OK, "the next run is not interrupted");
		cork_interrupt(c);
		is_int(cork_run_recipe(c, "hello", 2, argv), CORK_EXIT_INTERRUPTED, "an interrupt between runs stops the next");
		is_int(cork_run_recipe(c, "hello", 2, argv), CORK_EXIT_OK, "and only that one");
	}

	/* cork_free runs what a run left pending (a scope never closed) */
	{
		char chunk[8192];
		remove(marker);
		snprintf(chunk, sizeof chunk,
		         "local cork = require 'cork'\n"
		         "kept = cork.scope('left-open')\n"
		         "kept:defer(function() cork.fs.write([[%s]], 'closed by cork_free') end)\n", marker);
		is_int(cork_run_string(c, chunk, "=leave-open"), CORK_EXIT_OK, "a run leaves a scope open");
		is_str(slurp(marker), "", "its cleanup has not run yet");
		cork_free(c);
		is_str(slurp(marker), "closed by cork_free", "cork_free ran it");
		log_free(&l);
	}

	/* handle_signals: a real SIGINT interrupts that runtime; a signal
	 * ignored before (SIGHUP here, as under nohup) stays ignored; freed,
	 * every disposition is what it was */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_IGN);
	log_init(&l);
	c = new_runtime(&l, 1);
	ok(!handler_is_default(SIGINT) && !handler_is_default(SIGTERM), "handle_signals installs handlers");
	ok(handler_is(SIGHUP, SIG_IGN), "but an ignored signal stays ignored (nohup)");
	{
		pthread_t th;
		pthread_create(&th, NULL, send_sigint, NULL);
		rc = cork_run_string(c, "require('cork').sleep(5)", "=sleep");
		pthread_join(th, NULL);
		is_int(rc, CORK_EXIT_INTERRUPTED, "SIGINT interrupts the owning runtime");
	}
	cork_free(c);
	ok(handler_is_default(SIGINT) && handler_is_default(SIGTERM) && handler_is(SIGHUP, SIG_IGN),
	   "cork_free restores what was there before");
	log_free(&l);
	/* two runtimes taking the signals in turn: freeing the owner restores
	 * what was there before either */
	{
		struct log l2;
		struct cork *c2;
		log_init(&l);
		log_init(&l2);
		c = new_runtime(&l, 1);
		c2 = new_runtime(&l2, 1);
		cork_free(c2);
		ok(handler_is_default(SIGINT) && handler_is(SIGHUP, SIG_IGN),
		   "the second owner freed: the dispositions from before cork");
		cork_free(c);
		log_free(&l);
		log_free(&l2);
	}
	for (i = 0; i < 3; i++)
		signal(sigs[i], start_sa[i]);

	/* two runtimes on two non-main threads at once; one is interrupted */
	{
		/* B's steps are long enough for its stopper thread to be scheduled
		 * (valgrind runs one thread at a time) before step 3 begins */
		struct worker a = { .name = "alpha", .pause = "0.2", .interrupt_after = 0 };
		struct worker b = { .name = "beta", .pause = "1.5", .interrupt_after = 2 };
		pthread_t ta, tb;
		snprintf(m1, sizeof m1, "%s/alpha", dir);
		snprintf(m2, sizeof m2, "%s/beta", dir);
		a.marker = m1;
		b.marker = m2;
		log_init(&a.log);
		log_init(&b.log);
		pthread_create(&ta, NULL, work, &a);
		pthread_create(&tb, NULL, work, &b);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		is_int(a.rc, CORK_EXIT_OK, "thread A: its run completes");
		is_int(b.rc, CORK_EXIT_INTERRUPTED, "thread B: interrupted");
		is_str(b.kind, "interrupted", "thread B: kind");
		is_str(slurp(m1), "cleanup 3\ncleanup 2\ncleanup 1\n", "thread A: its cleanups");
		is_str(slurp(m2), "cleanup 2 after: interrupted\ncleanup 1 after: interrupted\n", "thread B: its cleanups");
		ok(find(&a.log, 0, "hello, alpha") >= 0 && find(&a.log, 0, "beta") < 0, "A's callback saw only A's events");
		ok(find(&b.log, 0, "hello, beta") < 0 && find(&b.log, 0, "alpha") < 0 && b.log.resources == 2,
		   "B's callback saw only B's events");
		is_int(a.log.wrong_thread + b.log.wrong_thread, 0, "each callback on its runtime's thread");
		log_free(&a.log);
		log_free(&b.log);
	}

	remove(marker);
	remove(m1);
	remove(m2);
	rmdir(dir);
	return tap_done();
}
