/*
 * docker_image.c: cork.docker's image import and build: a tar streamed
 * from a path or an open Lua file (a rootfs to POST /images/create, a build
 * context to POST /build), and the answer (a stream of JSON lines) read for
 * the image id or Docker's error; a build's lines are decoded and handed to
 * the caller as they arrive. The other image, network and container calls
 * are built in lua/cork/docker.lua.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "docker_priv.h"

/* Read POST /images/create's answer (JSON progress lines) for the image id
 * (into id) or Docker's error, raised as bad_request. */
static void import_answer(lua_State *L, client *c, char *id, size_t cap)
{
	const char *p = c->resp.p ? c->resp.p : "";
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (n && dk_json_decode(L, p, n) && lua_istable(L, -1)) {
			int line = lua_gettop(L);
			lua_getfield(L, line, "error");
			if (lua_type(L, -1) == LUA_TSTRING) {
				int em = lua_gettop(L);
				cork_error_push(L, "bad_request", "docker POST /images/create: %s",
				                lua_tostring(L, em));
				lua_pushstring(L, "POST");
				lua_setfield(L, -2, "method");
				lua_pushstring(L, "/images/create");
				lua_setfield(L, -2, "path");
				lua_pushvalue(L, em);
				lua_setfield(L, -2, "docker_message");
				lua_error(L);
			}
			lua_getfield(L, line, "status");
			const char *sv = lua_tostring(L, -1);
			if (sv && strncmp(sv, "sha256:", 7) == 0)
				snprintf(id, cap, "%s", sv);
			lua_settop(L, line - 1);
		} else {
			lua_pop(L, 1);
		}
		p += n + (nl ? 1 : 0);
	}
}

/* The body of an upload: argument idx is an open Lua file (read from its
 * position) or a path, returned for upload_open to open. */
static const char *upload_arg(lua_State *L, int idx, FILE **fp)
{
	luaL_Stream *ls = luaL_testudata(L, idx, LUA_FILEHANDLE);
	if (ls) {
		luaL_argcheck(L, ls->closef != NULL && ls->f, idx, "closed file");
		*fp = ls->f;
		return NULL;
	}
	return luaL_checkstring(L, idx);
}

static void upload_close(client *c)
{
	if (c->upload) {
		fclose(c->upload);
		c->upload = NULL;
	}
}

/* Opens path (when given) as the client's upload, owned by the client: closed
 * by upload_close after the transfer, or by close/__gc after an error. A stale
 * upload of a call that raised is dropped first. Returns the bytes left to
 * send, or -1 when unknown (a pipe). */
static curl_off_t upload_open(lua_State *L, client *c, const char *fn, const char *path, FILE **fp)
{
	upload_close(c);
	if (path) {
		*fp = fopen(path, "rb");
		if (!*fp)
			cork_raise(L, cork_errno_kind(errno), "%s: %s: %s", fn, path, strerror(errno));
		c->upload = *fp;
	}
	struct stat sb;
	if (fstat(fileno(*fp), &sb) == 0 && S_ISREG(sb.st_mode) && ftello(*fp) >= 0)
		return (curl_off_t)(sb.st_size - ftello(*fp));
	return -1;
}

static const char *const import_opts[] = {"repo", "tag", "changes", "message", "timeout", NULL};

/* d:image_import(path_or_file[, {repo, tag, changes, message, timeout}]) -> {id=} */
static int docker_image_import(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	FILE *fp = NULL;
	const char *path = upload_arg(L, 2, &fp);
	int oi = lua_isnoneornil(L, 3) ? 0 : 3;
	if (oi)
		cork_check_options(L, oi, import_opts);
	const char *repo = cork_opt_string(L, oi, "repo", NULL), *tag = cork_opt_string(L, oi, "tag", NULL);
	const char *msg = cork_opt_string(L, oi, "message", NULL);
	double t = cork_opt_number(L, oi, "timeout", 0);
	lua_settop(L, 3);
	if (oi)
		lua_getfield(L, oi, "changes");
	else
		lua_pushnil(L);
	int chi = 4;
	lua_Integer nch = 0;
	if (!lua_isnil(L, chi)) {
		luaL_argcheck(L, lua_istable(L, chi), 3, "'changes' must be a list of strings");
		nch = (lua_Integer)lua_rawlen(L, chi);
		for (lua_Integer i = 1; i <= nch; i++) {
			if (lua_rawgeti(L, chi, i) != LUA_TSTRING)
				luaL_error(L, "option 'changes'[%d] must be a string", (int)i);
			lua_pop(L, 1);
		}
	}
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addstring(&b, "/images/create?fromSrc=-");
	if (repo) {
		luaL_addstring(&b, "&repo=");
		dk_add_escaped(&b, repo, strlen(repo));
	}
	if (tag) {
		luaL_addstring(&b, "&tag=");
		dk_add_escaped(&b, tag, strlen(tag));
	}
	if (msg) {
		luaL_addstring(&b, "&message=");
		dk_add_escaped(&b, msg, strlen(msg));
	}
	for (lua_Integer i = 1; i <= nch; i++) {
		lua_rawgeti(L, chi, i);
		size_t cl;
		const char *ch = lua_tolstring(L, -1, &cl);
		lua_pop(L, 1); /* still referenced by the changes table */
		luaL_addstring(&b, "&changes=");
		dk_add_escaped(&b, ch, cl);
	}
	luaL_pushresult(&b);
	const char *qpath = lua_tostring(L, -1);
	curl_off_t size = upload_open(L, c, "image_import", path, &fp);
	long timeout_ms = t > 0 ? (long)(t * 1000) : c->timeout_ms * 5;
	long st = dk_perform_io(L, c, "POST", qpath, NULL, 0, c->hdr_tar, timeout_ms, fp, size, NULL);
	upload_close(c);
	if (!dk_status_kind_ok(st))
		dk_raise_status(L, c, st, "POST", "/images/create", 0);
	/* the answer is a stream of JSON progress lines; errors come with 200 */
	char id[128] = "";
	import_answer(L, c, id, sizeof id);
	lua_createtable(L, 0, 1);
	if (id[0]) {
		lua_pushstring(L, id);
		lua_setfield(L, -2, "id");
	}
	return 1;
}

/* ---- build ------------------------------------------------------------------ */

static const char *const build_opts[] = {"tag", "dockerfile", "labels", "buildargs", "nocache", "pull",
                                         "network", "timeout", "stream", NULL};

/* A map option (labels, buildargs) as a JSON object in the query. */
static void add_map_param(lua_State *L, luaL_Buffer *b, int oi, const char *key, const char *param)
{
	lua_getfield(L, oi, key);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return;
	}
	int t = lua_gettop(L);
	for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1))
		if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "option '%s' must map strings to strings", key);
	dk_json_encode(L, t);
	size_t n;
	const char *js = lua_tolstring(L, -1, &n);
	lua_remove(L, t);
	/* the buffer's own slot sits below: add through a copy */
	lua_pushfstring(L, "&%s=", param);
	luaL_addvalue(b);
	dk_add_escaped(b, js, n);
	lua_pop(L, 1);
}

/* One line of POST /build's answer: decoded; an error line raises
 * bad_request; an aux line with an ID is the image id. Handed to stream. */
static void build_line(lua_State *L, const char *s, size_t n, int stream, char *id, size_t cap)
{
	if (n == 0 || !dk_json_decode(L, s, n) || !lua_istable(L, -1)) {
		lua_pop(L, 1);
		return;
	}
	int line = lua_gettop(L);
	lua_getfield(L, line, "aux");
	if (lua_istable(L, -1)) {
		lua_getfield(L, -1, "ID");
		if (lua_type(L, -1) == LUA_TSTRING)
			snprintf(id, cap, "%s", lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	if (stream) {
		lua_pushvalue(L, stream);
		lua_pushvalue(L, line);
		lua_call(L, 1, 0);
	}
	lua_getfield(L, line, "error");
	if (lua_type(L, -1) == LUA_TSTRING) {
		int em = lua_gettop(L);
		cork_error_push(L, "bad_request", "docker POST /build: %s", lua_tostring(L, em));
		lua_pushstring(L, "POST");
		lua_setfield(L, -2, "method");
		lua_pushstring(L, "/build");
		lua_setfield(L, -2, "path");
		lua_pushvalue(L, em);
		lua_setfield(L, -2, "docker_message");
		lua_error(L);
	}
	lua_settop(L, line - 1);
}

/* The function perform calls with each raw line while the answer arrives:
 * upvalues stream (or nil), and a userdata holding the id buffer. */
static int build_line_cb(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	int stream = lua_isnil(L, lua_upvalueindex(1)) ? 0 : lua_upvalueindex(1);
	char *id = lua_touserdata(L, lua_upvalueindex(2));
	build_line(L, s, n, stream, id, 128);
	return 0;
}

/* d:image_build(context[, {tag, dockerfile, labels, buildargs, nocache, pull,
 * network, timeout, stream}]) -> {id=} */
static int docker_image_build(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	FILE *fp = NULL;
	const char *path = upload_arg(L, 2, &fp);
	int oi = lua_isnoneornil(L, 3) ? 0 : 3;
	if (oi)
		cork_check_options(L, oi, build_opts);
	const char *tag = cork_opt_string(L, oi, "tag", NULL);
	const char *dockerfile = cork_opt_string(L, oi, "dockerfile", NULL);
	const char *network = cork_opt_string(L, oi, "network", NULL);
	int nocache = oi ? cork_opt_boolean(L, oi, "nocache", 0) : 0;
	int pull = oi ? cork_opt_boolean(L, oi, "pull", 0) : 0;
	double t = cork_opt_number(L, oi, "timeout", 0);
	lua_settop(L, 3);
	if (oi)
		lua_getfield(L, oi, "stream");
	else
		lua_pushnil(L);
	luaL_argcheck(L, lua_isnil(L, 4) || lua_isfunction(L, 4), 3, "'stream' must be a function");
	/* 5: the id buffer (a userdata: freed by the GC whatever raises) */
	char *id = lua_newuserdatauv(L, 128, 0);
	id[0] = '\0';
	/* 6: the query path */
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addstring(&b, "/build?rm=1&forcerm=1");
	if (tag) {
		luaL_addstring(&b, "&t=");
		dk_add_escaped(&b, tag, strlen(tag));
	}
	if (dockerfile) {
		luaL_addstring(&b, "&dockerfile=");
		dk_add_escaped(&b, dockerfile, strlen(dockerfile));
	}
	if (network) {
		luaL_addstring(&b, "&networkmode=");
		dk_add_escaped(&b, network, strlen(network));
	}
	if (nocache)
		luaL_addstring(&b, "&nocache=1");
	if (pull)
		luaL_addstring(&b, "&pull=1");
	if (oi) {
		add_map_param(L, &b, oi, "labels", "labels");
		add_map_param(L, &b, oi, "buildargs", "buildargs");
	}
	luaL_pushresult(&b);
	const char *qpath = lua_tostring(L, 6);
	/* 7: the line callback */
	lua_pushvalue(L, 4);
	lua_pushvalue(L, 5);
	lua_pushcclosure(L, build_line_cb, 2);
	curl_off_t size = upload_open(L, c, "image_build", path, &fp);
	long timeout_ms = t > 0 ? (long)(t * 1000) : c->timeout_ms * 30;
	c->line_fn = 7;
	c->line_off = 0;
	/* perform clears line_fn when the transfer ends, also when it raises */
	long st = dk_perform_io(L, c, "POST", qpath, NULL, 0, c->hdr_tar, timeout_ms, fp, size, NULL);
	upload_close(c);
	if (!dk_status_kind_ok(st))
		dk_raise_status(L, c, st, "POST", "/build", 0);
	/* the lines that arrived with the end of the transfer */
	while (c->resp.p && c->line_off < c->resp.n) {
		const char *s0 = c->resp.p + c->line_off;
		const char *nl = memchr(s0, '\n', c->resp.n - c->line_off);
		size_t n = nl ? (size_t)(nl - s0) : c->resp.n - c->line_off;
		c->line_off += n + (nl ? 1 : 0);
		build_line(L, s0, n, lua_isnil(L, 4) ? 0 : 4, id, 128);
	}
	lua_createtable(L, 0, 1);
	if (id[0]) {
		lua_pushstring(L, id);
		lua_setfield(L, -2, "id");
	}
	return 1;
}

const luaL_Reg dk_image_methods[] = {
	{"image_import", docker_image_import},
	{"image_build", docker_image_build},
	{NULL, NULL}
};
