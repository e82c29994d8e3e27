/*
 * docker_events.c: cork.docker's event stream, a userdata of its own
 * (cork.docker.Events) with its own curl handles, read line by line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker_priv.h"

/* ---- events --------------------------------------------------------------- */

static events *check_events(lua_State *L, int idx)
{
	events *ev = luaL_checkudata(L, idx, EVENTS_MT);
	if (ev->closed)
		luaL_error(L, "attempt to use a closed docker event stream");
	return ev;
}

static void events_free(events *ev)
{
	if (ev->easy && ev->multi)
		curl_multi_remove_handle(ev->multi, ev->easy);
	if (ev->easy)
		curl_easy_cleanup(ev->easy);
	if (ev->multi)
		curl_multi_cleanup(ev->multi);
	ev->easy = NULL;
	ev->multi = NULL;
	buf_free(&ev->data);
	ev->closed = 1;
}

static const char *const events_opts[] = {"filters", "since", "until", NULL};

/* d:events{filters, since, until} -> stream; `for ev in d:events{...} do`
 * (the stream is also the loop's to-be-closed value) */
static int docker_events(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	int oi = lua_isnoneornil(L, 2) ? 0 : 2;
	if (oi)
		cork_check_options(L, oi, events_opts);
	lua_settop(L, 2);
	char since[32] = "", until[32] = "";
	const char *filters = NULL;
	if (oi) {
		const char *keys[2] = {"since", "until"};
		char *dsts[2] = {since, until};
		for (int i = 0; i < 2; i++) {
			lua_getfield(L, oi, keys[i]);
			if (lua_type(L, -1) == LUA_TNUMBER) {
				double v = lua_tonumber(L, -1);
				if (v == (double)(long long)v)
					snprintf(dsts[i], 32, "%lld", (long long)v);
				else
					snprintf(dsts[i], 32, "%.6f", v);
			}
			else if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) < 32)
				snprintf(dsts[i], 32, "%s", lua_tostring(L, -1));
			else if (!lua_isnil(L, -1))
				luaL_error(L, "option '%s' must be a time (unix seconds)", keys[i]);
			lua_pop(L, 1);
		}
		lua_getfield(L, oi, "filters");
		if (!lua_isnil(L, -1)) {
			dk_push_filters(L, -1);
			filters = lua_tostring(L, -1);
		}
	}
	const char *kv[] = {"since", since[0] ? since : NULL, "until", until[0] ? until : NULL,
	                    "filters", filters};
	const char *path = dk_push_path(L, "/events", kv, 6);
	const char *url = lua_pushfstring(L, "%s/v%s%s", c->base, c->api, path);

	events *ev = lua_newuserdatauv(L, sizeof *ev, 1);
	memset(ev, 0, sizeof *ev);
	ev->closed = 1;
	luaL_setmetatable(L, EVENTS_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1); /* keep the client alive */
	ev->easy = curl_easy_init();
	ev->multi = curl_multi_init();
	if (!ev->easy || !ev->multi) {
		events_free(ev);
		return luaL_error(L, "docker events: out of memory");
	}
	ev->closed = 0;
	dk_easy_base(c, ev->easy, ev->errbuf, 0);
	curl_easy_setopt(ev->easy, CURLOPT_URL, url);
	curl_easy_setopt(ev->easy, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(ev->easy, CURLOPT_WRITEFUNCTION, dk_on_write);
	curl_easy_setopt(ev->easy, CURLOPT_WRITEDATA, &ev->data);
	curl_multi_add_handle(ev->multi, ev->easy);
	/* start it now so that a missing daemon or a bad filter raise here */
	int running = 1;
	long status = 0;
	double deadline = cork_now() + c->timeout_ms / 1000.0;
	while (running && status == 0) {
		if (curl_multi_perform(ev->multi, &running) != CURLM_OK)
			break;
		curl_easy_getinfo(ev->easy, CURLINFO_RESPONSE_CODE, &status);
		if (!running || status)
			break;
		if (cork_interrupt_pending(L)) {
			events_free(ev);
			cork_checkpoint(L);
			cork_raise(L, "interrupted", "docker events: interrupted");
		}
		if (cork_now() > deadline)
			break;
		curl_multi_poll(ev->multi, NULL, 0, POLL_MS, NULL);
	}
	if (!status) {
		CURLcode rc = CURLE_OPERATION_TIMEDOUT;
		int q;
		CURLMsg *m;
		while ((m = curl_multi_info_read(ev->multi, &q)))
			if (m->msg == CURLMSG_DONE)
				rc = m->data.result;
		long oserr = 0;
		curl_easy_getinfo(ev->easy, CURLINFO_OS_ERRNO, &oserr);
		memcpy(c->errbuf, ev->errbuf, sizeof c->errbuf);
		events_free(ev);
		dk_raise_transport(L, c, rc, oserr, "GET", path, c->timeout_ms / 1000.0);
	}
	if (!dk_status_kind_ok(status)) {
		/* let the error body arrive, then raise it */
		while (running && curl_multi_perform(ev->multi, &running) == CURLM_OK && running)
			curl_multi_poll(ev->multi, NULL, 0, POLL_MS, NULL);
		buf_reset(&c->resp);
		buf_add(&c->resp, ev->data.p ? ev->data.p : "", ev->data.n);
		events_free(ev);
		dk_raise_status(L, c, status, "GET", path, 0);
	}
	ev->status = status;
	/* for ev in stream do ... end: iterator, state, control, closing value */
	lua_pushnil(L);
	lua_pushnil(L);
	lua_pushvalue(L, -3);
	return 4;
}

/* stream() / stream:next([timeout]) -> next event table, or nil at the end
 * (until reached, stream closed) or when timeout seconds pass without one */
static int events_next_impl(lua_State *L, double timeout)
{
	events *ev = check_events(L, 1);
	double deadline = timeout > 0 ? cork_now() + timeout : 0;
	for (;;) {
		/* a complete line already buffered? */
		while (ev->off < ev->data.n) {
			char *start = ev->data.p + ev->off;
			char *nl = memchr(start, '\n', ev->data.n - ev->off);
			if (!nl)
				break;
			size_t n = (size_t)(nl - start);
			ev->off += n + 1;
			if (n == 0)
				continue;
			if (dk_json_decode(L, start, n) && lua_istable(L, -1))
				return 1;
			lua_pop(L, 1);
		}
		if (ev->off > 0 && ev->off == ev->data.n) {
			ev->data.n = 0;
			ev->off = 0;
		}
		if (ev->done)
			return 0;
		int running = 0;
		if (curl_multi_perform(ev->multi, &running) != CURLM_OK || !running) {
			ev->done = 1;
			continue;
		}
		if (ev->data.n > ev->off)
			continue;
		if (cork_interrupt_pending(L)) {
			cork_checkpoint(L);
			cork_raise(L, "interrupted", "docker events: interrupted");
		}
		if (deadline && cork_now() > deadline)
			return 0;
		curl_multi_poll(ev->multi, NULL, 0, POLL_MS, NULL);
	}
}

static int events_call(lua_State *L)
{
	return events_next_impl(L, 0);
}

/* stream:next([timeout]) */
static int events_next(lua_State *L)
{
	double t = luaL_optnumber(L, 2, 0);
	return events_next_impl(L, t);
}

static int events_close(lua_State *L)
{
	events *ev = luaL_checkudata(L, 1, EVENTS_MT);
	if (!ev->closed)
		events_free(ev);
	return 0;
}

const luaL_Reg dk_events_methods[] = {
	{"events", docker_events},
	{NULL, NULL}
};

static const luaL_Reg events_methods[] = {
	{"next", events_next},
	{"close", events_close},
	{NULL, NULL}
};

static const luaL_Reg events_metamethods[] = {
	{"__call", events_call},
	{"__close", events_close},
	{"__gc", events_close},
	{"__index", NULL},
	{NULL, NULL}
};

void dk_events_open(lua_State *L)
{
	luaL_newmetatable(L, EVENTS_MT);
	luaL_setfuncs(L, events_metamethods, 0);
	luaL_newlibtable(L, events_methods);
	luaL_setfuncs(L, events_methods, 0);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}
