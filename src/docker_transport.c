/*
 * docker_transport.c: cork.docker's transport. One client = one curl easy
 * handle driven through a private multi handle, so connections are kept
 * alive between calls and every wait polls the interrupt flag at least
 * every 100 ms. Here: the checked client accessor, API version
 * negotiation, perform (the multi loop, with an optional file sink and
 * progress function), the errors of transport failures and HTTP statuses
 * (with redaction), paths and queries, and docker.connect.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "docker_priv.h"

/* ---- libcurl, loaded on first use ------------------------------------- */

struct dk_curl_api dk_curl;

static pthread_mutex_t curl_mu = PTHREAD_MUTEX_INITIALIZER;
static int curl_state;                  /* 0 not tried, 1 loaded, -1 failed */
static int curl_tls;                    /* the loaded libcurl speaks TLS */
static const char *curl_lib;            /* what was loaded (or tried) */
static char curl_err[512];              /* why it failed, or "" */
static int curl_missing;                /* the library itself is not there */

static char curl_private[PATH_MAX];     /* cork's own libcurl, when found */

/* cork's own libcurl named `name` (tools/libcurl.sh: libcurl.so.4 with
 * HTTP, unix sockets and OpenSSL; libcurl-notls.so.4 without TLS) in
 * libcurl/ beside the running binary (a build tree), else in ../lib/cork/
 * from it (`make install`). Only a regular file that neither group nor
 * others may write, owned by root or by this user. Returns its path, or
 * NULL. */
static const char *dk_curl_private(const char *name, char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	static const char *const rel[] = {"/libcurl/", "/../lib/cork/"};
	for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
		struct stat st;
		int w = snprintf(out, cap, "%s%s%s", exe, rel[i], name);
		if (w < 0 || (size_t)w >= cap || stat(out, &st) != 0)
			continue;
		if (S_ISREG(st.st_mode) && !(st.st_mode & (S_IWGRP | S_IWOTH)) &&
		    (st.st_uid == 0 || st.st_uid == geteuid()))
			return out;
	}
	return NULL;
}

/* Loads one libcurl for the process (curl_mu held). The choice, made by
 * the first connect: the file CORK_LIBCURL names; else, for an endpoint
 * without TLS, cork's own libcurl-notls.so.4 (no libssl or libcrypto to map
 * and initialize: 14 ms less per process on this machine, docs/performance.md);
 * else cork's own libcurl.so.4; else Debian's. */
static void curl_load_locked(int want_tls)
{
	const char *env = getenv("CORK_LIBCURL");
	void *h = NULL;
	/* RTLD_LOCAL: libcurl's symbols (and its TLS library's) stay out of the
	 * global namespace, so an embedder's own libcurl never meets this one */
	if (env && *env) {
		curl_lib = env;
	} else {
		const char *names[2] = {"libcurl-notls.so.4", "libcurl.so.4"};
		for (size_t i = want_tls ? 1 : 0; i < 2 && !h; i++) {
			if ((curl_lib = dk_curl_private(names[i], curl_private, sizeof curl_private)) != NULL)
				h = dlopen(curl_lib, RTLD_NOW | RTLD_LOCAL);
		}
		if (!h)
			curl_lib = NULL;     /* Debian's, then */
	}
	if (!curl_lib)
		curl_lib = CORK_LIBCURL_SONAME;
	if (!h)
		h = dlopen(curl_lib, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(curl_err, sizeof curl_err, "%s", e ? e : "dlopen failed");
		curl_missing = 1;
		return;
	}
	static const struct { const char *name; size_t off; } syms[] = {
#define SYM(f, n) { n, offsetof(struct dk_curl_api, f) }
		SYM(global_init, "curl_global_init"), SYM(version_info, "curl_version_info"),
		SYM(easy_init, "curl_easy_init"), SYM(easy_cleanup, "curl_easy_cleanup"),
		SYM(easy_setopt, "curl_easy_setopt"), SYM(easy_getinfo, "curl_easy_getinfo"),
		SYM(easy_perform, "curl_easy_perform"), SYM(easy_reset, "curl_easy_reset"),
		SYM(easy_send, "curl_easy_send"), SYM(easy_recv, "curl_easy_recv"),
		SYM(easy_strerror, "curl_easy_strerror"), SYM(multi_init, "curl_multi_init"),
		SYM(multi_cleanup, "curl_multi_cleanup"), SYM(multi_add_handle, "curl_multi_add_handle"),
		SYM(multi_remove_handle, "curl_multi_remove_handle"),
		SYM(multi_perform, "curl_multi_perform"), SYM(multi_poll, "curl_multi_poll"),
		SYM(multi_info_read, "curl_multi_info_read"), SYM(multi_strerror, "curl_multi_strerror"),
		SYM(slist_append, "curl_slist_append"), SYM(slist_free_all, "curl_slist_free_all"),
#undef SYM
	};
	struct dk_curl_api api;
	memset(&api, 0, sizeof api);
	for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		void *f = dlsym(h, syms[i].name);
		if (!f) {
			snprintf(curl_err, sizeof curl_err, "%s has no %s (libcurl 7.66 or later is needed)",
			         curl_lib, syms[i].name);
			dlclose(h);
			return;
		}
		memcpy((char *)&api + syms[i].off, &f, sizeof f);
	}
	/* libssl, when libcurl brought OpenSSL's in (RTLD_NOLOAD: never load it
	 * for this); otherwise the exec half-close over TLS says it cannot */
	void *ssl = dlopen("libssl.so." DK_STR(OPENSSL_VERSION_MAJOR), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
	if (ssl) {
		void *f1 = dlsym(ssl, "SSL_shutdown"), *f2 = dlsym(ssl, "SSL_get_error");
		if (f1 && f2) {
			memcpy(&api.ssl_shutdown, &f1, sizeof f1);
			memcpy(&api.ssl_get_error, &f2, sizeof f2);
		}
	}
	/* libcurl's one process-wide init, once, even when runtimes on several
	 * threads connect at the same moment; the handle stays open for good */
	CURLcode rc = api.global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK) {
		snprintf(curl_err, sizeof curl_err, "curl_global_init failed (%d)", (int)rc);
		return;
	}
	const curl_version_info_data *vi = api.version_info(CURLVERSION_NOW);
	curl_tls = vi && (vi->features & CURL_VERSION_SSL);
	dk_curl = api;
}

void dk_curl_load(lua_State *L, int want_tls)
{
	pthread_mutex_lock(&curl_mu);
	if (curl_state == 0) {
		curl_load_locked(want_tls);
		curl_state = dk_curl.easy_init ? 1 : -1;
	}
	int state = curl_state, tls = curl_tls;
	pthread_mutex_unlock(&curl_mu);
	if (state == 1 && want_tls && !tls)
		cork_raise(L, "unsupported", "this process loaded %s, which has no TLS, for its first engine; "
		           "a TLS endpoint in the same process needs a libcurl with TLS "
		           "(CORK_LIBCURL=libcurl.so.4 loads Debian's)", curl_lib);
	if (state == 1)
		return;
	if (curl_missing)
		cork_raise(L, "not_found", "cannot load %s, which cork uses to talk to Docker: %s "
		           "(install the Debian package %s)", curl_lib, curl_err, CORK_LIBCURL_PACKAGE);
	cork_raise(L, "io", "cannot use %s: %s", curl_lib, curl_err);
}

/* ---- the client -------------------------------------------------------- */

client *dk_check_client(lua_State *L, int idx)
{
	client *c = luaL_checkudata(L, idx, CLIENT_MT);
	if (c->closed)
		luaL_error(L, "attempt to use a closed docker client");
	return c;
}

void dk_client_free(client *c)
{
	if (c->hj)
		curl_easy_cleanup(c->hj);
	if (c->easy && c->multi)
		curl_multi_remove_handle(c->multi, c->easy);
	if (c->easy)
		curl_easy_cleanup(c->easy);
	if (c->multi)
		curl_multi_cleanup(c->multi);
	curl_slist_free_all(c->hdr_json);
	curl_slist_free_all(c->hdr_tar);
	curl_slist_free_all(c->hdr_extra);
	c->hdr_extra = NULL;
	if (c->upload)
		fclose(c->upload);
	buf_free(&c->resp);
	buf_free(&c->out);
	buf_free(&c->err);
	free(c->endpoint);
	free(c->sock);
	free(c->base);
	free(c->ca);
	free(c->cert);
	free(c->key);
	c->hj = c->easy = NULL;
	c->multi = NULL;
	c->hdr_json = c->hdr_tar = NULL;
	c->upload = NULL;
	c->endpoint = c->sock = c->base = c->ca = c->cert = c->key = NULL;
	c->closed = 1;
}

/* ---- API version logic (pure; unit-tested through docker._negotiate) ---- */

int dk_parse_version(const char *s, int *major, int *minor)
{
	char *end;
	if (!s || !*s)
		return -1;
	long a = strtol(s, &end, 10);
	if (end == s || *end != '.')
		return -1;
	const char *p = end + 1;
	long b = strtol(p, &end, 10);
	if (end == p || *end != '\0' || a < 0 || b < 0 || a > 1000 || b > 100000)
		return -1;
	*major = (int)a;
	*minor = (int)b;
	return 0;
}

int dk_vercmp(int a1, int b1, int a2, int b2)
{
	if (a1 != a2)
		return a1 < a2 ? -1 : 1;
	if (b1 != b2)
		return b1 < b2 ? -1 : 1;
	return 0;
}

/* Pick the API version from the daemon's /_ping Api-Version (daemon_max,
 * NULL when absent) and, when known, /version's MinAPIVersion (daemon_min).
 * On success writes "M.m" to out and returns NULL; else returns a message. */
const char *dk_negotiate(const char *daemon_max, const char *daemon_min, char *out,
                             size_t outlen, char *msg, size_t msglen)
{
	int ma, mi, na = 0, ni = 0;
	if (!daemon_max || !*daemon_max)
		daemon_max = API_FALLBACK_STR;
	if (dk_parse_version(daemon_max, &ma, &mi) != 0) {
		snprintf(msg, msglen, "daemon reported a malformed API version \"%s\"", daemon_max);
		return msg;
	}
	if (daemon_min && *daemon_min && dk_parse_version(daemon_min, &na, &ni) != 0) {
		snprintf(msg, msglen, "daemon reported a malformed minimum API version \"%s\"", daemon_min);
		return msg;
	}
	if (dk_vercmp(ma, mi, API_MIN_MAJOR, API_MIN_MINOR) < 0) {
		snprintf(msg, msglen, "daemon API %d.%d is older than the oldest cork supports (%s)",
		         ma, mi, API_MIN_STR);
		return msg;
	}
	if (dk_vercmp(ma, mi, API_MAX_MAJOR, API_MAX_MINOR) > 0) {
		ma = API_MAX_MAJOR;
		mi = API_MAX_MINOR;
	}
	if (daemon_min && *daemon_min && dk_vercmp(na, ni, ma, mi) > 0) {
		snprintf(msg, msglen, "daemon requires API %d.%d or newer; cork speaks %s to %s",
		         na, ni, API_MIN_STR, API_MAX_STR);
		return msg;
	}
	snprintf(out, outlen, "%d.%d", ma, mi);
	return NULL;
}

/* docker._negotiate(api_version, min_api_version) -> version | nil, message */
int docker_negotiate(lua_State *L)
{
	const char *mx = luaL_optstring(L, 1, NULL);
	const char *mn = luaL_optstring(L, 2, NULL);
	char out[32], msg[160];
	const char *e = dk_negotiate(mx, mn, out, sizeof out, msg, sizeof msg);
	if (e) {
		lua_pushnil(L);
		lua_pushstring(L, e);
		return 2;
	}
	lua_pushstring(L, out);
	return 1;
}

/* ---- transport ---------------------------------------------------------- */

size_t dk_on_write(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	return buf_add(b, p, size * n) == 0 ? size * n : 0;
}


static size_t on_sink(char *p, size_t size, size_t n, void *ud)
{
	struct sink *k = ud;
	size_t len = size * n;
	long code = 0;
	curl_easy_getinfo(k->c->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code > 299)
		return dk_on_write(p, size, n, &k->c->resp);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(k->fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			k->err = w < 0 ? errno : EIO;
			return 0; /* curl stops: CURLE_WRITE_ERROR */
		}
		off += (size_t)w;
	}
	k->bytes += (long long)len;
	return len;
}

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void copy_header(char *dst, size_t cap, const char *v, size_t n)
{
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	client *c = ud;
	size_t len = size * n;
	static const struct { const char *name; size_t off, cap; } want[] = {
		{"api-version:", offsetof(client, h_api), sizeof(((client *)0)->h_api)},
		{"ostype:", offsetof(client, h_os), sizeof(((client *)0)->h_os)},
		{"server:", offsetof(client, h_server), sizeof(((client *)0)->h_server)},
		{"content-type:", offsetof(client, h_ctype), sizeof(((client *)0)->h_ctype)},
		{"docker-experimental:", offsetof(client, h_exp), sizeof(((client *)0)->h_exp)},
		{"builder-version:", offsetof(client, h_builder), sizeof(((client *)0)->h_builder)},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		size_t k = strlen(want[i].name);
		if (len > k && strncasecmp(p, want[i].name, k) == 0) {
			copy_header((char *)c + want[i].off, want[i].cap, p + k, len - k);
			break;
		}
	}
	return len;
}

static void clear_headers(client *c)
{
	c->h_api[0] = c->h_os[0] = c->h_server[0] = c->h_ctype[0] = c->h_exp[0] = c->h_builder[0] = '\0';
}

/* Common options of every handle of this client (after a reset). */
void dk_easy_base(client *c, CURL *e, char *errbuf, long timeout_ms)
{
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");          /* never an env proxy */
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	if (c->sock)
		curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, c->sock);
	if (c->tls) {
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca);
		curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert);
		curl_easy_setopt(e, CURLOPT_SSLKEY, c->key);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	}
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	errbuf[0] = '\0';
}

/* Raise the error for a transport failure (no HTTP answer). */
int dk_raise_transport(lua_State *L, client *c, CURLcode rc, long oserr, const char *method,
                           const char *path, double timeout_s)
{
	const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
	const char *kind = "unavailable";
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		/* a connect that timed out is still "no daemon answered" */
		kind = "timeout";
	}
	int tls_failed = c->tls &&
		(rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
		 rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CIPHER ||
		 rc == CURLE_SSL_ISSUER_ERROR ||
		 rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING);
	/* With TLS 1.3 the engine checks the client certificate after the
	 * client's side of the handshake: its refusal arrives as an alert, or
	 * (a race) as a connection closed under our first request. */
	if (tls_failed && (rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING) &&
	    !strstr(why, "alert"))
		why = "the engine closed the connection during or right after the handshake "
		      "(does it trust this client certificate?)";
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
	    (rc == CURLE_OPERATION_TIMEDOUT && strstr(why, "onnect"))) {
		if (oserr)
			why = strerror((int)oserr);
		cork_error_push(L, "unavailable", "no Docker daemon answered at %s (%s)", c->endpoint, why);
	} else if (tls_failed) {
		/* a wrong CA, a client certificate the engine does not trust, ... */
		cork_error_push(L, "unavailable", "TLS with %s failed: %s (CA %s, client certificate %s)",
		                c->endpoint, why, c->ca, c->cert);
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, "tls");
	} else if (strcmp(kind, "timeout") == 0) {
		cork_error_push(L, "timeout", "docker %s %s: no answer within %g s from %s", method, path,
		                timeout_s, c->endpoint);
	} else {
		cork_error_push(L, kind, "docker %s %s: %s (%s)", method, path, why, c->endpoint);
	}
	lua_pushstring(L, method);
	lua_setfield(L, -2, "method");
	lua_pushstring(L, path);
	lua_setfield(L, -2, "path");
	lua_pushstring(L, c->endpoint);
	lua_setfield(L, -2, "endpoint");
	lua_pushinteger(L, (lua_Integer)rc);
	lua_setfield(L, -2, "curl_code");
	return lua_error(L);
}

int dk_status_kind_ok(long status)
{
	return status >= 200 && status < 300;
}

static const char *status_kind(long status)
{
	switch (status) {
	case 400: return "bad_request";
	case 404: return "not_found";
	case 409: return "conflict";
	case 503: return "unavailable";
	default: return "daemon";
	}
}

/* Replace every value of the secrets table at sec (and every registered
 * secret) in the string at the top of the stack with "***". */
static void redact_top(lua_State *L, int sec)
{
	if (sec) {
		lua_Integer n = (lua_Integer)lua_rawlen(L, sec);
		for (lua_Integer i = 1; i <= n; i++) {
			lua_rawgeti(L, sec, i);
			size_t vl;
			const char *v = lua_tolstring(L, -1, &vl);
			if (v && vl >= 3) {
				luaL_gsub(L, lua_tostring(L, -2), v, "***");
				lua_remove(L, -2); /* the value */
				lua_remove(L, -2); /* the old string */
			} else {
				lua_pop(L, 1);
			}
		}
	}
	size_t n;
	const char *s = lua_tolstring(L, -1, &n);
	cork_redact(L, s, n);
	lua_remove(L, -2);
}

/* Raise the cork error for an HTTP answer outside 2xx. The body of the
 * answer is in c->resp; sec (0 = none) holds values to redact. */
int dk_raise_status(lua_State *L, client *c, long status, const char *method, const char *path,
                        int sec)
{
	/* Docker's own message: {"message": "..."} (or plain text) */
	if (dk_json_decode(L, c->resp.p ? c->resp.p : "", c->resp.n) && lua_istable(L, -1)) {
		lua_getfield(L, -1, "message");
		lua_remove(L, -2);
	} else {
		lua_pop(L, 1);
		lua_pushnil(L);
	}
	if (lua_type(L, -1) != LUA_TSTRING) {
		lua_pop(L, 1);
		size_t n = c->resp.n;
		while (n && (c->resp.p[n - 1] == '\n' || c->resp.p[n - 1] == '\r'))
			n--;
		if (n > 512)
			n = 512;
		if (n)
			lua_pushlstring(L, c->resp.p, n);
		else
			lua_pushfstring(L, "HTTP %d", (int)status);
	}
	redact_top(L, sec);
	int msg = lua_gettop(L);
	cork_error_push(L, status_kind(status), "docker %s %s: %s (HTTP %d)", method, path,
	                lua_tostring(L, msg), (int)status);
	lua_pushinteger(L, status);
	lua_setfield(L, -2, "status");
	lua_pushstring(L, method);
	lua_setfield(L, -2, "method");
	lua_pushstring(L, path);
	lua_setfield(L, -2, "path");
	lua_pushvalue(L, msg);
	lua_setfield(L, -2, "docker_message");
	return lua_error(L);
}

/* The URL of path: the base, then the negotiated /vX.Y prefix unless path
 * already has one (or before negotiation). Pushes it. */
static const char *push_url(lua_State *L, client *c, const char *path)
{
	luaL_Buffer ub;
	luaL_buffinit(L, &ub);
	luaL_addstring(&ub, c->base);
	if (strncmp(path, "/v", 2) == 0 && path[2] >= '0' && path[2] <= '9') {
		luaL_addstring(&ub, path); /* already versioned (request escape hatch) */
	} else if (c->api[0]) {
		luaL_addstring(&ub, "/v");
		luaL_addstring(&ub, c->api);
		luaL_addstring(&ub, path);
	} else {
		luaL_addstring(&ub, path); /* /_ping before negotiation */
	}
	luaL_pushresult(&ub);
	return lua_tostring(L, -1);
}

/* Open request's `output` file (raises). */
static void sink_open(lua_State *L, struct sink *out, const char *method, const char *path)
{
	/* 0600 whatever the umask; a symlink is refused, not followed */
	out->fd = open(out->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out->fd < 0) {
		int en = errno;
		cork_raise(L, cork_errno_kind(en), "docker %s %s: cannot write %s: %s",
		           method, path, out->path, strerror(en));
	}
	struct stat st;
	/* a regular file is ours: private, and removed if the transfer fails;
	 * anything else (a fifo, /dev/null) is only written to */
	out->regular = fstat(out->fd, &st) == 0 && S_ISREG(st.st_mode);
	if (out->regular)
		fchmod(out->fd, 0600);
	out->err = 0;
	out->bytes = 0;
}

/* Every option of one request on the keep-alive handle (never raises). */
static void easy_request(client *c, const char *method, const char *url, const char *body,
                         size_t blen, struct curl_slist *hdrs, long timeout_ms, FILE *upload,
                         curl_off_t upload_size, struct sink *out)
{
	CURL *e = c->easy;
	curl_easy_reset(e);
	dk_easy_base(c, e, c->errbuf, timeout_ms);
	buf_reset(&c->resp);
	clear_headers(c);
	curl_easy_setopt(e, CURLOPT_URL, url);
	if (out) {
		out->c = c;
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_sink);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
	} else {
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, dk_on_write);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &c->resp);
	}
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else {
		if (upload) {
			curl_easy_setopt(e, CURLOPT_POST, 1L);
			curl_easy_setopt(e, CURLOPT_READDATA, upload);
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, upload_size);
		} else if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? blen : 0));
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
		}
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	}
	if (hdrs)
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
}

/* Drive the multi handle until the transfer ends, an interrupt (returns
 * 1; 3 when it came after `grace` seconds of letting the request finish)
 * or a failed progress function (returns 2, its error on the stack).
 * *rc is the transfer's result. Never raises. */
static int multi_run(lua_State *L, client *c, struct sink *out, CURLcode *rc, double grace)
{
	double last = mono_now(), int_at = 0;
	*rc = CURLE_OK;
	for (;;) {
		int running = 0;
		CURLMcode mc = curl_multi_perform(c->multi, &running);
		if (mc != CURLM_OK) {
			*rc = CURLE_FAILED_INIT;
			snprintf(c->errbuf, sizeof c->errbuf, "%s", curl_multi_strerror(mc));
			return 0;
		}
		if (!running) {
			int q;
			CURLMsg *m;
			while ((m = curl_multi_info_read(c->multi, &q)))
				if (m->msg == CURLMSG_DONE && m->easy_handle == c->easy)
					*rc = m->data.result;
			return 0;
		}
		if (cork_interrupt_pending(L)) {
			/* a create that was sent runs to its end (bounded): the
			 * interrupt is raised at the next safe point, with the
			 * resource made and known */
			if (grace <= 0)
				return 1;
			if (int_at == 0)
				int_at = mono_now();
			else if (mono_now() - int_at >= grace)
				return 3;
		}
		if (c->line_fn) {
			/* each complete line of the answer, as it arrives; the
			 * function runs protected, like progress below */
			int pst = LUA_OK;
			while (pst == LUA_OK && c->resp.p && c->line_off < c->resp.n) {
				const char *st0 = c->resp.p + c->line_off;
				const char *nl = memchr(st0, '\n', c->resp.n - c->line_off);
				if (!nl)
					break;
				lua_pushvalue(L, c->line_fn);
				lua_pushlstring(L, st0, (size_t)(nl - st0));
				c->line_off += (size_t)(nl - st0) + 1;
				c->busy = 1;
				pst = lua_pcall(L, 1, 0, 0);
				c->busy = 0;
			}
			if (pst != LUA_OK)
				return 2;
		}
		if (out && out->progress && out->bytes > 0 && mono_now() - last >= 1.0) {
			/* the progress function runs protected: its error (or an
			 * interrupt it meets) ends the transfer and is raised by
			 * the caller */
			last = mono_now();
			lua_pushvalue(L, out->progress);
			lua_pushinteger(L, (lua_Integer)out->bytes);
			c->busy = 1;
			int pst = lua_pcall(L, 1, 0, 0);
			c->busy = 0;
			if (pst != LUA_OK)
				return 2;
		}
		curl_multi_poll(c->multi, NULL, 0, POLL_MS, NULL);
	}
}

/* One request/answer on the client's keep-alive handle. path is the API
 * path without the version prefix (query included). body may be NULL;
 * when upload is set, the body is streamed from it (size upload_size).
 * Returns the HTTP status; the answer body is in c->resp. Transport failures
 * and interrupts raise; HTTP statuses do not. */
long dk_perform_io(lua_State *L, client *c, const char *method, const char *path,
                   const char *body, size_t blen, struct curl_slist *hdrs, long timeout_ms,
                   FILE *upload, curl_off_t upload_size, struct sink *out)
{
	double grace = c->grace;
	c->grace = 0;
	cork_checkpoint(L);
	luaL_checkstack(L, 8, NULL);
	if (c->busy)
		return cork_raise(L, "usage", "docker %s %s: this client is busy streaming an answer "
		                  "(a progress function must not use it)", method, path);
	const char *url = push_url(L, c, path);
	if (out)
		sink_open(L, out, method, path);

	/* from here to curl_multi_remove_handle nothing may raise */
	easy_request(c, method, url, body, blen, hdrs, timeout_ms, upload, upload_size, out);
	CURLcode rc;
	curl_multi_add_handle(c->multi, c->easy);
	int stop = multi_run(L, c, out, &rc, grace);
	c->line_fn = 0; /* one call's: never seen by the next, whatever raises below */
	int interrupted = stop == 1 || stop == 3, cb_failed = stop == 2;
	long status = 0, oserr = 0;
	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c->easy, CURLINFO_OS_ERRNO, &oserr);
	curl_multi_remove_handle(c->multi, c->easy);
	int failed = interrupted || cb_failed || c->resp.oom || rc != CURLE_OK;
	if (out) {
		if (close(out->fd) != 0 && !out->err)
			out->err = errno;
		out->fd = -1;
		if ((failed || out->err) && out->regular)
			unlink(out->path); /* no half archive left behind */
	}
	if (cb_failed) {
		lua_remove(L, -2); /* url */
		return lua_error(L);
	}
	lua_pop(L, 1); /* url */

	if (interrupted) {
		cork_checkpoint(L);
		if (stop == 3) {
			/* the engine may still make it: cleanups must look, not trust a 404 */
			cork_error_push(L, "interrupted", "docker %s %s: interrupted; the engine did not answer "
			                "within %g s and may still create it", method, path, grace);
			lua_pushboolean(L, 1);
			lua_setfield(L, -2, "uncertain");
			return lua_error(L);
		}
		cork_raise(L, "interrupted", "docker %s %s: interrupted", method, path);
	}
	if (c->resp.oom)
		return luaL_error(L, "docker %s %s: out of memory", method, path);
	if (out && out->err)
		cork_raise(L, "io", "docker %s %s: writing %s: %s", method, path, out->path,
		           strerror(out->err));
	if (rc != CURLE_OK)
		dk_raise_transport(L, c, rc, oserr, method, path, timeout_ms / 1000.0);
	return status;
}

long dk_perform(lua_State *L, client *c, const char *method, const char *path,
                    const char *body, size_t blen, struct curl_slist *hdrs, long timeout_ms)
{
	return dk_perform_io(L, c, method, path, body, blen, hdrs, timeout_ms, NULL, 0, NULL);
}

/* perform + status check + decode: pushes the decoded JSON answer (nil when
 * the answer is empty, the raw text when it is not JSON). Returns the status. */
long dk_call(lua_State *L, client *c, const char *method, const char *path, int body_idx,
                 long timeout_ms, int sec)
{
	const char *body = NULL;
	size_t blen = 0;
	if (body_idx) {
		dk_json_encode(L, body_idx);
		body = lua_tolstring(L, -1, &blen);
	}
	/* timeout_ms: 0 = the client's, < 0 = none (waits, streams) */
	long tm = timeout_ms == 0 ? c->timeout_ms : timeout_ms < 0 ? 0 : timeout_ms;
	long status = dk_perform(L, c, method, path, body, blen, body ? c->hdr_json : NULL, tm);
	if (body_idx)
		lua_pop(L, 1);
	if (!dk_status_kind_ok(status) && status != 304)
		dk_raise_status(L, c, status, method, path, sec);
	if (c->resp.n == 0) {
		lua_pushnil(L);
	} else if (!dk_json_decode(L, c->resp.p, c->resp.n)) {
		lua_pop(L, 1);
		lua_pushlstring(L, c->resp.p, c->resp.n);
	}
	return status;
}

/* Build "path?k=v&..." from a path and alternating key/value C strings
 * (NULL values skipped), pushing the result. */
const char *dk_push_path(lua_State *L, const char *fmt_path, const char *const *kv, int nkv)
{
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addstring(&b, fmt_path);
	int first = 1;
	for (int i = 0; i + 1 < nkv; i += 2) {
		if (!kv[i + 1])
			continue;
		luaL_addchar(&b, first ? '?' : '&');
		first = 0;
		luaL_addstring(&b, kv[i]);
		luaL_addchar(&b, '=');
		dk_add_escaped(&b, kv[i + 1], strlen(kv[i + 1]));
	}
	luaL_pushresult(&b);
	return lua_tostring(L, -1);
}

/* "/containers/<escaped ref>/<rest>" */
const char *dk_push_refpath(lua_State *L, const char *prefix, const char *ref, const char *rest)
{
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addstring(&b, prefix);
	dk_add_escaped(&b, ref, strlen(ref));
	luaL_addstring(&b, rest);
	luaL_pushresult(&b);
	return lua_tostring(L, -1);
}

/* ---- connect, ping, version -------------------------------------------- */

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static const char *const connect_opts[] = {"timeout", "connect_timeout", "api_version",
                                           "tls_verify", "cert_path", NULL};

/* Negotiate the API version (c->api) with the daemon. */
static void client_negotiate(lua_State *L, client *c)
{
	long status = dk_perform(L, c, "GET", "/_ping", NULL, 0, NULL, c->timeout_ms);
	if (status != 200)
		dk_raise_status(L, c, status, "GET", "/_ping", 0);
	char daemon_max[24];
	snprintf(daemon_max, sizeof daemon_max, "%s", c->h_api);
	char out[32], msg[160];
	const char *e = dk_negotiate(daemon_max, NULL, out, sizeof out, msg, sizeof msg);
	int ma, mi;
	if (!e && daemon_max[0] && dk_parse_version(daemon_max, &ma, &mi) == 0 &&
	    dk_vercmp(ma, mi, API_MAX_MAJOR, API_MAX_MINOR) > 0) {
		/* a newer engine: make sure it still accepts our maximum */
		status = dk_perform(L, c, "GET", "/version", NULL, 0, NULL, c->timeout_ms);
		if (status == 200 && dk_json_decode(L, c->resp.p, c->resp.n) && lua_istable(L, -1)) {
			lua_getfield(L, -1, "MinAPIVersion");
			const char *mn = lua_tostring(L, -1);
			e = dk_negotiate(daemon_max, mn, out, sizeof out, msg, sizeof msg);
			lua_pop(L, 2);
		} else {
			lua_pop(L, 1);
		}
	}
	if (e)
		cork_raise(L, "daemon", "%s: %s", c->endpoint, e);
	snprintf(c->api, sizeof c->api, "%s", out);
	dk_parse_version(c->api, &c->api_major, &c->api_minor);
}

/* unix:///path, or tcp:// / http:// / https://host[:port] (the docker CLI's
 * default ports: 2376 with TLS, 2375 without). Sets *sock or hostport, and
 * *tls (tls_verify, else DOCKER_TLS_VERIFY, or https://). Raises. */
static void parse_endpoint(lua_State *L, const char *endpoint, int oi, const char **sock, int *tls,
                           char *hostport, size_t cap)
{
	if (strncmp(endpoint, "unix://", 7) == 0) {
		*sock = endpoint + 7;
		if (!**sock)
			*sock = DEFAULT_SOCKET;
	} else if (strncmp(endpoint, "tcp://", 6) == 0 || strncmp(endpoint, "https://", 8) == 0 ||
	           strncmp(endpoint, "http://", 7) == 0) {
		const char *hp = strstr(endpoint, "://") + 3;
		size_t n = strcspn(hp, "/");
		if (n == 0 || n >= cap - 8)
			luaL_error(L, "bad Docker endpoint '%s'", endpoint);
		int tv = cork_opt_boolean(L, oi, "tls_verify", -1);
		if (tv == -1) {
			const char *e = getenv("DOCKER_TLS_VERIFY");
			tv = e && *e && strcmp(e, "0") != 0;
		}
		*tls = tv || strncmp(endpoint, "https://", 8) == 0;
		memcpy(hostport, hp, n);
		hostport[n] = '\0';
		const char *colon = strrchr(hostport, ':');
		const char *rb = strrchr(hostport, ']');
		if (!colon || (rb && colon < rb))
			strcat(hostport, *tls ? ":2376" : ":2375");
	} else {
		luaL_error(L, "unsupported Docker endpoint '%s' (want unix:// or tcp://)", endpoint);
	}
}

/* docker.connect([endpoint][, opts]) -> client */
int docker_connect(lua_State *L)
{
	int oi = 0;
	const char *endpoint = NULL;
	if (lua_istable(L, 1)) {
		oi = 1;
	} else {
		endpoint = luaL_optstring(L, 1, NULL);
		if (!lua_isnoneornil(L, 2)) {
			luaL_checktype(L, 2, LUA_TTABLE);
			oi = 2;
		}
	}
	if (oi)
		cork_check_options(L, oi, connect_opts);
	double timeout = cork_opt_number(L, oi, "timeout", DEFAULT_TIMEOUT_MS / 1000.0);
	double ctimeout = cork_opt_number(L, oi, "connect_timeout", DEFAULT_CONNECT_MS / 1000.0);
	luaL_argcheck(L, timeout >= 0 && ctimeout >= 0, oi ? oi : 1, "timeouts must be >= 0");
	const char *pin = cork_opt_string(L, oi, "api_version", NULL);
	if (!pin || !*pin)
		pin = getenv("DOCKER_API_VERSION");
	if (pin && *pin) {
		int a, b;
		if (dk_parse_version(pin, &a, &b) != 0)
			return luaL_error(L, "bad API version '%s' (want e.g. \"1.41\")", pin);
	}
	if (!endpoint || !*endpoint)
		endpoint = getenv("DOCKER_HOST");
	if (!endpoint || !*endpoint)
		endpoint = "unix://" DEFAULT_SOCKET;

	/* parse the endpoint (all checks before anything is allocated) */
	const char *sock = NULL;
	int tls = 0;
	char hostport[300];
	parse_endpoint(L, endpoint, oi, &sock, &tls, hostport, sizeof hostport);
	const char *cert_path = NULL;
	if (tls) {
		cert_path = cork_opt_string(L, oi, "cert_path", NULL);
		if (!cert_path || !*cert_path)
			cert_path = getenv("DOCKER_CERT_PATH");
		if (!cert_path || !*cert_path) {
			const char *home = getenv("HOME");
			lua_pushfstring(L, "%s/.docker", home ? home : "");
			cert_path = lua_tostring(L, -1);
		}
	}

	dk_curl_load(L, tls);
	client *c = lua_newuserdatauv(L, sizeof *c, 0);
	memset(c, 0, sizeof *c);
	c->closed = 1;
	luaL_setmetatable(L, CLIENT_MT);
	c->closed = 0;
	c->timeout_ms = (long)(timeout * 1000);
	c->connect_ms = (long)(ctimeout * 1000);
	c->endpoint = xstrdup(endpoint);
	c->tls = tls;
	if (sock) {
		c->sock = xstrdup(sock);
		c->base = xstrdup("http://docker");
	} else {
		size_t n = strlen(hostport) + 16;
		c->base = malloc(n);
		if (c->base)
			snprintf(c->base, n, "%s://%s", tls ? "https" : "http", hostport);
	}
	if (tls) {
		size_t n = strlen(cert_path) + 32;
		c->ca = malloc(n);
		c->cert = malloc(n);
		c->key = malloc(n);
		if (c->ca && c->cert && c->key) {
			snprintf(c->ca, n, "%s/ca.pem", cert_path);
			snprintf(c->cert, n, "%s/cert.pem", cert_path);
			snprintf(c->key, n, "%s/key.pem", cert_path);
		}
	}
	c->easy = curl_easy_init();
	c->multi = curl_multi_init();
	c->hdr_json = curl_slist_append(NULL, "Content-Type: application/json");
	c->hdr_tar = curl_slist_append(NULL, "Content-Type: application/x-tar");
	if (!c->endpoint || !c->base || (sock && !c->sock) || (tls && (!c->ca || !c->cert || !c->key)) ||
	    !c->easy || !c->multi || !c->hdr_json || !c->hdr_tar) {
		dk_client_free(c);
		return luaL_error(L, "docker.connect: out of memory");
	}
	if (tls) {
		const char *files[3] = {c->ca, c->cert, c->key};
		for (int i = 0; i < 3; i++)
			if (access(files[i], R_OK) != 0)
				cork_raise(L, "not_found", "Docker TLS file %s: %s (set DOCKER_CERT_PATH)",
				           files[i], strerror(errno));
	}
	if (pin && *pin) {
		snprintf(c->api, sizeof c->api, "%s", pin);
		dk_parse_version(c->api, &c->api_major, &c->api_minor);
	} else {
		client_negotiate(L, c);
	}
	return 1;
}
