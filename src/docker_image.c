/*
 * docker_image.c: cork.docker's image import: a rootfs tar streamed from a
 * path or an open Lua file to POST /images/create, and its answer (a stream
 * of JSON progress lines) read for the image id or Docker's error. The other
 * image, network and container calls are built in lua/cork/docker.lua.
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

static const char *const import_opts[] = {"repo", "tag", "changes", "message", "timeout", NULL};

/* d:image_import(path_or_file[, {repo, tag, changes, message, timeout}]) -> {id=} */
static int docker_image_import(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	FILE *fp = NULL;
	const char *path = NULL;
	luaL_Stream *ls = luaL_testudata(L, 2, LUA_FILEHANDLE);
	if (ls) {
		luaL_argcheck(L, ls->closef != NULL && ls->f, 2, "closed file");
		fp = ls->f;
	} else {
		path = luaL_checkstring(L, 2);
	}
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
	/* a stale upload of an import that raised: drop it */
	if (c->upload) {
		fclose(c->upload);
		c->upload = NULL;
	}
	if (path) {
		fp = fopen(path, "rb");
		if (!fp)
			cork_raise(L, cork_errno_kind(errno), "image_import: %s: %s", path,
			           strerror(errno));
		c->upload = fp; /* owned: closed below, or by close/__gc after an error */
	}
	struct stat sb;
	curl_off_t size = -1;
	if (fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode) && ftello(fp) >= 0)
		size = (curl_off_t)(sb.st_size - ftello(fp));
	long timeout_ms = t > 0 ? (long)(t * 1000) : c->timeout_ms * 5;
	long st = dk_perform_io(L, c, "POST", qpath, NULL, 0, c->hdr_tar, timeout_ms, fp, size, NULL);
	if (c->upload) {
		fclose(c->upload);
		c->upload = NULL;
	}
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

const luaL_Reg dk_image_methods[] = {
	{"image_import", docker_image_import},
	{NULL, NULL}
};
