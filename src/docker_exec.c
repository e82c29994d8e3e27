/*
 * docker_exec.c: cork.docker's exec and logs. Exec start uses a connection
 * of its own (CURLOPT_CONNECT_ONLY) because Docker hijacks it for the raw
 * stream; both read Docker's multiplexed stream frames.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>


#include "docker_priv.h"

/* Demultiplex Docker's stream frames (8-byte header: stream, 0, 0, 0,
 * big-endian size) from p[0..n) into out/err. Returns the bytes consumed
 * (whole frames only; the rest waits for more data). */
static size_t demux(const unsigned char *p, size_t n, struct buf *out, struct buf *err)
{
	size_t off = 0;
	while (n - off >= 8) {
		size_t len = ((size_t)p[off + 4] << 24) | ((size_t)p[off + 5] << 16) |
		             ((size_t)p[off + 6] << 8) | (size_t)p[off + 7];
		if (n - off - 8 < len)
			break;
		struct buf *dst = p[off] == 2 ? err : out;
		buf_add(dst, p + off + 8, len);
		off += 8 + len;
	}
	return off;
}

static const char *const logs_opts[] = {"stdout", "stderr", "tail", "since", "timestamps", NULL};

/* d:container_logs(ref[, {stdout, stderr, tail, since, timestamps}]) -> {stdout=, stderr=} */
static int docker_container_logs(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *ref = dk_check_ref(L, 2);
	int oi = lua_isnoneornil(L, 3) ? 0 : 3;
	if (oi)
		cork_check_options(L, oi, logs_opts);
	int so = cork_opt_boolean(L, oi, "stdout", 1), se = cork_opt_boolean(L, oi, "stderr", 1);
	int ts = cork_opt_boolean(L, oi, "timestamps", 0);
	char tail[32] = "", since[32] = "";
	if (oi) {
		lua_getfield(L, oi, "tail");
		if (lua_isinteger(L, -1))
			snprintf(tail, sizeof tail, "%lld", (long long)lua_tointeger(L, -1));
		else if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) < sizeof tail)
			snprintf(tail, sizeof tail, "%s", lua_tostring(L, -1));
		else if (!lua_isnil(L, -1))
			luaL_error(L, "option 'tail' must be a number or \"all\"");
		lua_pop(L, 1);
		double s = cork_opt_number(L, oi, "since", 0);
		if (s > 0)
			snprintf(since, sizeof since, "%lld", (long long)s);
	}
	/* a TTY container's log is one raw stream, others are multiplexed */
	dk_call(L, c, "GET", dk_push_refpath(L, "/containers/", ref, "/json"), 0, 0, 0);
	lua_getfield(L, -1, "Config");
	lua_getfield(L, -1, "Tty");
	int tty = lua_toboolean(L, -1);
	lua_pop(L, 3);
	const char *kv[] = {"stdout", so ? "1" : "0", "stderr", se ? "1" : "0",
	                    "tail", tail[0] ? tail : NULL, "since", since[0] ? since : NULL,
	                    "timestamps", ts ? "1" : NULL};
	const char *path = dk_push_path(L, dk_push_refpath(L, "/containers/", ref, "/logs"), kv, 10);
	long st = dk_perform(L, c, "GET", path, NULL, 0, NULL, c->timeout_ms);
	if (!dk_status_kind_ok(st))
		dk_raise_status(L, c, st, "GET", path, 0);
	buf_reset(&c->out);
	buf_reset(&c->err);
	if (tty)
		buf_add(&c->out, c->resp.p ? c->resp.p : "", c->resp.n);
	else
		demux((const unsigned char *)c->resp.p, c->resp.n, &c->out, &c->err);
	if (c->out.oom || c->err.oom)
		return luaL_error(L, "docker logs: out of memory");
	lua_createtable(L, 0, 2);
	lua_pushlstring(L, c->out.p ? c->out.p : "", c->out.n);
	lua_setfield(L, -2, "stdout");
	lua_pushlstring(L, c->err.p ? c->err.p : "", c->err.n);
	lua_setfield(L, -2, "stderr");
	buf_reset(&c->out);
	buf_reset(&c->err);
	return 1;
}

/* ---- exec (hijacked connection) ------------------------------------------ */

/* Send all of p over the connect-only handle, polling for writability. */
static int hj_send(lua_State *L, client *c, curl_socket_t fd, const char *p, size_t n)
{
	while (n) {
		size_t sent = 0;
		CURLcode rc = curl_easy_send(c->hj, p, n, &sent);
		if (rc == CURLE_AGAIN) {
			struct pollfd pf = {fd, POLLOUT, 0};
			poll(&pf, 1, POLL_MS);
			if (cork_interrupt_pending(L))
				return -2;
			continue;
		}
		if (rc != CURLE_OK)
			return -1;
		p += sent;
		n -= sent;
	}
	return 0;
}

/* Receive into b until EOF (returns 0), or until b has at least `want`
 * bytes (returns 1). -1 on error, -2 on interrupt, -3 on timeout. */
static int hj_recv(lua_State *L, client *c, curl_socket_t fd, struct buf *b, size_t want,
                   double deadline)
{
	char tmp[16384];
	for (;;) {
		if (want && b->n >= want)
			return 1;
		size_t got = 0;
		CURLcode rc = curl_easy_recv(c->hj, tmp, sizeof tmp, &got);
		if (rc == CURLE_AGAIN) {
			struct pollfd pf = {fd, POLLIN, 0};
			poll(&pf, 1, POLL_MS);
			if (cork_interrupt_pending(L))
				return -2;
			if (deadline > 0 && cork_now() > deadline)
				return -3;
			continue;
		}
		if (rc != CURLE_OK)
			return -1;
		if (got == 0)
			return 0;
		if (buf_add(b, tmp, got) != 0)
			return -1;
	}
}

/* End our side of the exec stream so that the process reads EOF on stdin.
 * Over TLS, a TCP half-close alone is not an end of stream: send TLS's
 * close_notify first (SSL_shutdown on libcurl's OpenSSL session; reading
 * goes on afterwards), as the docker CLI does with tls.Conn.CloseWrite.
 * 0 ok, -1 failure, -3 the TLS library is not OpenSSL. */
static int hj_close_write(client *c, curl_socket_t fd)
{
	if (c->tls) {
		struct curl_tlssessioninfo *ti = NULL;
		if (curl_easy_getinfo(c->hj, CURLINFO_TLS_SSL_PTR, &ti) != CURLE_OK || !ti ||
		    ti->backend != CURLSSLBACKEND_OPENSSL || !ti->internals || !dk_curl.ssl_shutdown)
			return -3;
		SSL *ssl = ti->internals;
		int rc, tries = 0;
		/* the socket is non-blocking: the alert may have to wait a moment */
		while ((rc = SSL_shutdown(ssl)) < 0 && tries++ < 50) {
			int e = SSL_get_error(ssl, rc);
			if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
				break;
			struct pollfd pf = {fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, 0};
			poll(&pf, 1, 20);
		}
		if (rc < 0)
			return -1;
	}
	shutdown(fd, SHUT_WR);
	return 0;
}

/* The exec create body from argv (index 3) and the options at oi (0 =
 * none); env values go to the secrets table at sec. Pushes the body. */
static void exec_push_body(lua_State *L, int oi, int has_stdin, int priv, int sec)
{
	lua_newtable(L);
	int body = lua_gettop(L);
	lua_newtable(L);  /* {cmd = argv}: reuse the option-list checks */
	lua_pushvalue(L, 3);
	lua_setfield(L, -2, "cmd");
	if (dk_push_strlist(L, body + 1, "cmd"))
		lua_setfield(L, body, "Cmd");
	lua_pop(L, 1);
	if (oi) {
		if (dk_push_env(L, oi, "env", sec))
			lua_setfield(L, body, "Env");
		const char *user = cork_opt_string(L, oi, "user", NULL), *wd = cork_opt_string(L, oi, "workdir", NULL);
		if (user) {
			lua_pushstring(L, user);
			lua_setfield(L, body, "User");
		}
		if (wd) {
			lua_pushstring(L, wd);
			lua_setfield(L, body, "WorkingDir");
		}
	}
	lua_pushboolean(L, has_stdin);
	lua_setfield(L, body, "AttachStdin");
	lua_pushboolean(L, 1);
	lua_setfield(L, body, "AttachStdout");
	lua_pushboolean(L, 1);
	lua_setfield(L, body, "AttachStderr");
	lua_pushboolean(L, 0);
	lua_setfield(L, body, "Tty");
	if (priv) {
		lua_pushboolean(L, 1);
		lua_setfield(L, body, "Privileged");
	}
}

/* 2. exec start on a connection of its own, hijacked for the stream: send
 * the request, read the answer head (raising an error status), then send
 * stdin and half-close. Returns the socket; *head is the size of the
 * answer head in c->resp (the stream's first bytes follow it). */
static curl_socket_t exec_start(lua_State *L, client *c, const char *ref, const char *id,
                                const char *in, size_t inlen, double t, double deadline,
                                int sec, size_t *head)
{
	const char *spath = dk_push_refpath(L, "/exec/", id, "/start");
	const char *sbody = "{\"Detach\":false,\"Tty\":false}";
	const char *req = lua_pushfstring(L,
		"POST /v%s%s HTTP/1.1\r\nHost: docker\r\nUser-Agent: cork/" CORK_VERSION "\r\n"
		"Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
		"Content-Length: %d\r\n\r\n%s",
		c->api, spath, (int)strlen(sbody), sbody);
	if (c->hj)
		curl_easy_cleanup(c->hj);
	c->hj = curl_easy_init();
	if (!c->hj)
		luaL_error(L, "docker exec: out of memory");
	buf_reset(&c->resp);
	buf_reset(&c->out);
	buf_reset(&c->err);
	dk_easy_base(c, c->hj, c->errbuf, c->connect_ms + 1000);
	lua_pushfstring(L, "%s/", c->base);
	curl_easy_setopt(c->hj, CURLOPT_URL, lua_tostring(L, -1));
	curl_easy_setopt(c->hj, CURLOPT_CONNECT_ONLY, 1L);
	cork_checkpoint(L);
	CURLcode rc = curl_easy_perform(c->hj);
	lua_pop(L, 1);
	if (rc != CURLE_OK) {
		long oserr = 0;
		curl_easy_getinfo(c->hj, CURLINFO_OS_ERRNO, &oserr);
		dk_raise_transport(L, c, rc, oserr, "POST", spath, c->connect_ms / 1000.0);
	}
	curl_socket_t fd = CURL_SOCKET_BAD;
	curl_easy_getinfo(c->hj, CURLINFO_ACTIVESOCKET, &fd);
	int r = hj_send(L, c, fd, req, strlen(req));
	/* the answer head: "HTTP/1.1 101 UPGRADED" (or 200 on engines that
	 * stream without the upgrade), or an error status with a JSON body */
	char *eoh = NULL;
	while (r == 0 || r == 1) {
		if (c->resp.n && (eoh = strstr(c->resp.p, "\r\n\r\n")))
			break;
		r = hj_recv(L, c, fd, &c->resp, c->resp.n + 1, deadline);
		if (r == 0)
			break;
	}
	if (r == -2) {
		cork_checkpoint(L);
		cork_raise(L, "interrupted", "docker exec: interrupted");
	}
	if (r == -3)
		cork_raise(L, "timeout", "docker exec in %s: no answer within %g s", ref, t);
	if (!eoh)
		cork_raise(L, "daemon", "docker POST %s: the connection closed before an answer", spath);
	long status = 0;
	if (sscanf(c->resp.p, "HTTP/%*s %ld", &status) != 1)
		cork_raise(L, "daemon", "docker POST %s: malformed answer", spath);
	*head = (size_t)(eoh - c->resp.p) + 4;
	if (status != 101 && status != 200) {
		/* read the error body to its end (Content-Length or EOF) */
		const char *cl = strcasestr(c->resp.p, "\r\ncontent-length:");
		size_t want = cl && cl < eoh ? *head + (size_t)strtoul(cl + 17, NULL, 10) : 0;
		hj_recv(L, c, fd, &c->resp, want, cork_now() + 5);
		memmove(c->resp.p, c->resp.p + *head, c->resp.n - *head);
		c->resp.n -= *head;
		c->resp.p[c->resp.n] = '\0';
		dk_raise_status(L, c, status, "POST", spath, sec);
	}
	/* stdin, then half-close so the process sees EOF */
	if (in) {
		r = hj_send(L, c, fd, in, inlen);
		if (r == 0)
			r = hj_close_write(c, fd);
		if (r == -3)
			cork_raise(L, "unavailable", "docker exec in %s: cannot end stdin over TLS with this "
			           "libcurl (its TLS library is not OpenSSL)", ref);
	}
	lua_pop(L, 2); /* spath, req */
	return fd;
}

/* 3. the multiplexed stream until the daemon closes it, into c->out and
 * c->err; the hijacked connection is closed afterwards. */
static void exec_stream(lua_State *L, client *c, const char *ref, curl_socket_t fd, size_t head,
                        double t, double deadline)
{
	size_t have = c->resp.n - head, done = 0;
	memmove(c->resp.p, c->resp.p + head, have);
	c->resp.n = have;
	int r = 0;
	for (;;) {
		done += demux((const unsigned char *)c->resp.p + done, c->resp.n - done, &c->out, &c->err);
		if (done > (1u << 20)) { /* keep the buffer small for big outputs */
			memmove(c->resp.p, c->resp.p + done, c->resp.n - done);
			c->resp.n -= done;
			done = 0;
		}
		if (r < 0)
			break;
		r = hj_recv(L, c, fd, &c->resp, c->resp.n + 1, deadline);
		if (r == 0)
			break;
	}
	done += demux((const unsigned char *)c->resp.p + done, c->resp.n - done, &c->out, &c->err);
	curl_easy_cleanup(c->hj);
	c->hj = NULL;
	if (r == -2) {
		cork_checkpoint(L);
		cork_raise(L, "interrupted", "docker exec: interrupted");
	}
	if (r == -3)
		cork_raise(L, "timeout", "docker exec in %s: still running after %g s", ref, t);
	if (r == -1 || c->out.oom || c->err.oom)
		cork_raise(L, "daemon", "docker exec in %s: the output stream failed", ref);
}

/* 4. the exit code (the daemon may take a moment to record it) */
static lua_Integer exec_exit_code(lua_State *L, client *c, const char *ref, const char *id)
{
	const char *ipath = dk_push_refpath(L, "/exec/", id, "/json");
	lua_Integer code = -1;
	double until = cork_now() + 10;
	for (;;) {
		dk_call(L, c, "GET", ipath, 0, 0, 0);
		lua_getfield(L, -1, "Running");
		int running = lua_toboolean(L, -1);
		lua_getfield(L, -2, "ExitCode");
		if (!running && lua_type(L, -1) == LUA_TNUMBER) {
			code = (lua_Integer)lua_tonumber(L, -1);
			lua_pop(L, 3);
			break;
		}
		lua_pop(L, 3);
		if (cork_now() > until)
			cork_raise(L, "timeout", "docker exec in %s: no exit code after the stream ended", ref);
		cork_checkpoint(L);
		poll(NULL, 0, 10);
	}
	lua_pop(L, 1); /* ipath */
	return code;
}

static const char *const exec_opts[] = {"env", "user", "workdir", "stdin", "privileged",
                                        "timeout", NULL};

/* d:exec(container, argv[, {env, user, workdir, stdin, privileged, timeout}])
 *   -> {status=, stdout=, stderr=} */
static int docker_exec(lua_State *L)
{
	client *c = dk_check_client(L, 1);
	const char *ref = dk_check_ref(L, 2);
	luaL_checktype(L, 3, LUA_TTABLE);
	int oi = lua_isnoneornil(L, 4) ? 0 : 4;
	if (oi)
		cork_check_options(L, oi, exec_opts);
	lua_settop(L, 4);
	luaL_argcheck(L, lua_rawlen(L, 3) > 0, 3, "empty argv");
	size_t inlen = 0;
	const char *in = cork_opt_lstring(L, oi, "stdin", NULL, &inlen);
	double t = cork_opt_number(L, oi, "timeout", 0);
	int priv = cork_opt_boolean(L, oi, "privileged", 0);
	lua_newtable(L);
	int sec = 5;
	exec_push_body(L, oi, in != NULL, priv, sec);
	int body = 6;

	/* 1. exec create */
	dk_call(L, c, "POST", dk_push_refpath(L, "/containers/", ref, "/exec"), body, 0, sec);
	lua_getfield(L, -1, "Id");
	const char *id = lua_tostring(L, -1);
	if (!id)
		cork_raise(L, "daemon", "docker exec: the daemon returned no exec id");
	/* 2. exec start, 3. its stream, 4. its exit code */
	double deadline = t > 0 ? cork_now() + t : 0;
	size_t head = 0;
	curl_socket_t fd = exec_start(L, c, ref, id, in, inlen, t, deadline, sec, &head);
	exec_stream(L, c, ref, fd, head, t, deadline);
	lua_Integer code = exec_exit_code(L, c, ref, id);

	lua_createtable(L, 0, 3);
	lua_pushinteger(L, code);
	lua_setfield(L, -2, "status");
	lua_pushlstring(L, c->out.p ? c->out.p : "", c->out.n);
	lua_setfield(L, -2, "stdout");
	lua_pushlstring(L, c->err.p ? c->err.p : "", c->err.n);
	lua_setfield(L, -2, "stderr");
	buf_reset(&c->out);
	buf_reset(&c->err);
	buf_reset(&c->resp);
	return 1;
}

const luaL_Reg dk_exec_methods[] = {
	{"exec", docker_exec},
	{"container_logs", docker_container_logs},
	{NULL, NULL}
};
