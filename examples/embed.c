/*
 * embed.c: a complete libcork embedder. It runs a recipe with its
 * arguments in a cork runtime, shows every event as it happens, stops the
 * run cleanly on Ctrl-C or after --timeout seconds (from a watchdog
 * thread, through cork_interrupt), and says how the run ended.
 *
 *   cc embed.c $(pkg-config --cflags --libs cork) -lpthread -o cork-embed
 *   ./cork-embed [--timeout SECONDS] RECIPE [RECIPE ARGS...]
 *   ./cork-embed --timeout 1 hello --steps 3 --pause 2
 */
#define _POSIX_C_SOURCE 200809L   /* clock_gettime, with -std=c11 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cork.h>

struct watchdog {
	struct cork *c;
	double seconds;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
};

/* Events arrive on the thread running the recipe, one JSON line each. */
static void on_event(const char *json_line, void *userdata)
{
	int *count = userdata;
	++*count;
	printf("event %s\n", json_line);
	fflush(stdout);
}

/* Interrupt the run when time is up, unless it finished first. */
static void *watch(void *arg)
{
	struct watchdog *w = arg;
	struct timespec until;
	int timed_out = 0;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)w->seconds;
	until.tv_nsec += (long)((w->seconds - (double)(time_t)w->seconds) * 1e9);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while (!w->done && !timed_out)
		timed_out = pthread_cond_timedwait(&w->cv, &w->mu, &until) != 0;
	pthread_mutex_unlock(&w->mu);
	if (timed_out)
		cork_interrupt(w->c);   /* safe from any thread */
	return NULL;
}

int main(int argc, char **argv)
{
	struct watchdog w = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	struct cork_options opts = { 0 };
	struct cork *c;
	pthread_t th;
	int events = 0, first = 1, rc;

	if (argc > 2 && strcmp(argv[1], "--timeout") == 0) {
		w.seconds = atof(argv[2]);
		first = 3;
	}
	if (first >= argc) {
		fprintf(stderr, "usage: %s [--timeout SECONDS] RECIPE [ARGS...]\n", argv[0]);
		return CORK_EXIT_USAGE;
	}

	opts.json = 1;              /* events as JSON, no human progress */
	opts.color = 0;
	opts.handle_signals = 1;    /* Ctrl-C, SIGTERM, SIGHUP unwind the run */
	opts.on_event = on_event;
	opts.userdata = &events;
	c = cork_new(&opts);
	if (!c) {
		fprintf(stderr, "cork_new: out of memory\n");
		return CORK_EXIT_FAILED;
	}
	printf("libcork %s\n", cork_version());

	w.c = c;
	if (w.seconds > 0)
		pthread_create(&th, NULL, watch, &w);
	rc = cork_run_recipe(c, argv[first], argc - first - 1, (const char *const *)argv + first + 1);
	if (w.seconds > 0) {
		pthread_mutex_lock(&w.mu);
		w.done = 1;
		pthread_cond_signal(&w.cv);
		pthread_mutex_unlock(&w.mu);
		pthread_join(th, NULL);
	}

	if (rc == CORK_EXIT_OK)
		printf("exit 0 after %d events\n", events);
	else
		printf("exit %d after %d events (%s: %s)\n", rc, events,
		       cork_last_error_kind(c), cork_last_error(c));
	cork_free(c);
	return rc;
}
