/*
 * docker_priv.h: what the files of cork.docker share (private; no other
 * module includes it).
 *
 *   docker.c            the module (cork._docker): luaopen, its tables, the
 *                       client's own methods (close, ping, version, info,
 *                       request)
 *   docker_transport.c  buffers, perform (curl multi loop), errors, API
 *                       version negotiation, connect
 *   docker_json.c       JSON encoding with the array marker, exec's option
 *                       lists, filters
 *   docker_image.c      image import (a tar streamed from a file)
 *   docker_exec.c       exec over the hijacked connection, logs (demux)
 *   docker_events.c     the event stream (its own userdata type)
 *
 * Names shared between these files start with dk_; each file that binds
 * client methods exports its luaL_Reg table, and docker.c merges them into
 * the client's __index (module field _Client), where lua/cork/docker.lua
 * (require "cork.docker") adds the networks, containers and images calls
 * it builds on request().
 */
#ifndef CORK_DOCKER_PRIV_H
#define CORK_DOCKER_PRIV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libcurl is not linked: it is loaded on first use (below), so a process
 * that never talks to Docker does not map it and its ~25 libraries. The
 * type-checking macros of curl.h would shadow the pointers' names. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <openssl/ssl.h>
#include <lua.h>
#include <lauxlib.h>

#include "runtime.h"

#define CLIENT_MT "cork.docker.Client"
#define EVENTS_MT "cork.docker.Events"
#define ARRAY_MT "cork.docker.array"

/* Client API range: the lowest engine we support is Debian 12's (20.10,
 * API 1.41); the highest is the newest whose shapes this module handles
 * (1.52, Docker 29). Current engines (29.x) refuse clients below 1.44, which
 * is why the client talks the highest version both sides support. What
 * differs in that range, for the calls here: several networks at create
 * time (1.44; on older engines the others are connected after create), the
 * stop signal (1.42; emulated before), the top-level NetworkSettings address
 * fields (gone in 1.52; nothing here reads them: Networks and Ports exist on
 * every version), the deprecated status/id/from of events (gone in 1.52:
 * read Type, Action, Actor). tests/c/test_docker_versions.c replays recorded
 * answers of 20.10, 25, 27, 28 and 29 against these rules. */
#define API_MIN_MAJOR 1
#define API_MIN_MINOR 41
#define API_MAX_MAJOR 1
#define API_MAX_MINOR 52
#define API_MAX_STR "1.52"
#define API_MIN_STR "1.41"
/* Engines that answer /_ping without Api-Version predate 1.25. */
#define API_FALLBACK_STR "1.24"

#define DEFAULT_SOCKET "/var/run/docker.sock"
#define DEFAULT_TIMEOUT_MS 60000L
#define DEFAULT_CONNECT_MS 5000L
#define POLL_MS 100

/* ---- growable byte buffer (plain C, never raises) ----------------------- */

struct buf {
	char *p;
	size_t n, cap;
	int oom;
};

static inline int buf_add(struct buf *b, const void *d, size_t n)
{
	if (b->oom)
		return -1;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return -1;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
	b->p[b->n] = '\0';
	return 0;
}

static inline void buf_reset(struct buf *b)
{
	b->n = 0;
	b->oom = 0;
	if (b->p)
		b->p[0] = '\0';
	/* do not keep a huge buffer around after one big answer */
	if (b->cap > (1u << 22)) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
	}
}

static inline void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
	b->oom = 0;
}

/* ---- the client and the event stream ------------------------------------ */

typedef struct {
	CURL *easy;             /* the keep-alive handle for ordinary calls */
	CURLM *multi;           /* drives easy, so waits can poll interrupts */
	CURL *hj;               /* exec start: hijacked connection, per call */
	struct curl_slist *hdr_json, *hdr_tar;
	struct curl_slist *hdr_extra; /* request's `headers` (freed on the next call) */
	struct buf resp;        /* body of the last answer */
	struct buf out, err;    /* exec / logs demultiplexed output */
	FILE *upload;           /* image_import from a path */
	char *endpoint;         /* as given: unix:///x or tcp://h:p */
	char *sock;             /* unix socket path, or NULL */
	char *base;             /* http://docker or https://h:p */
	char *ca, *cert, *key;  /* TLS files (tcp:// with DOCKER_TLS_VERIFY) */
	int tls;
	int api_major, api_minor;
	char api[32];
	long timeout_ms, connect_ms;
	char errbuf[CURL_ERROR_SIZE];
	/* a few answer headers of the last call */
	char h_api[24], h_os[24], h_server[96], h_ctype[96], h_exp[8], h_builder[8];
	int closed;
	int busy;               /* inside a request's progress function */
	double grace;           /* the next request: seconds it may run on after
	                         * an interrupt (request's `grace`: creates) */
	/* while a call streams its answer line by line (image_build): the stack
	 * index of a function called with each complete line as it arrives,
	 * and how much of resp it has seen; 0 otherwise */
	int line_fn;
	size_t line_off;
} client;

typedef struct {
	CURL *easy;
	CURLM *multi;
	struct buf data;
	size_t off;             /* first unread byte of data */
	int done;               /* stream ended (until reached / closed by daemon) */
	int closed;
	CURLcode result;
	long status;
	char errbuf[CURL_ERROR_SIZE];
} events;

/* An answer streamed to a file (request's `output`): a 2xx body goes to fd,
 * anything else (Docker's short error message) to c->resp as usual. */
struct sink {
	client *c;
	const char *path;
	int fd;
	int err;                /* errno of a failed open/write/close, or 0 */
	int progress;           /* stack index of the progress function, or 0 */
	int regular;            /* fd is a regular file (removed on failure) */
	long long bytes;
};

/* ---- libcurl, loaded on first use (docker_transport.c) -------------------- */

/* The soname cork loads (CORK_LIBCURL in the environment overrides it), and
 * the Debian package that provides it, for the error when it is missing. */
#define DK_STR_(x) #x
#define DK_STR(x) DK_STR_(x)
#ifndef CORK_LIBCURL_SONAME
#define CORK_LIBCURL_SONAME "libcurl.so.4"
#endif
#ifndef CORK_LIBCURL_PACKAGE
#define CORK_LIBCURL_PACKAGE "libcurl4"
#endif

struct dk_curl_api {
	CURLcode (*global_init)(long);
	curl_version_info_data *(*version_info)(CURLversion);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	CURLcode (*easy_perform)(CURL *);
	void (*easy_reset)(CURL *);
	CURLcode (*easy_send)(CURL *, const void *, size_t, size_t *);
	CURLcode (*easy_recv)(CURL *, void *, size_t, size_t *);
	const char *(*easy_strerror)(CURLcode);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_cleanup)(CURLM *);
	CURLMcode (*multi_add_handle)(CURLM *, CURL *);
	CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
	CURLMcode (*multi_perform)(CURLM *, int *);
	CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd *, unsigned int, int, int *);
	CURLMsg *(*multi_info_read)(CURLM *, int *);
	const char *(*multi_strerror)(CURLMcode);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
	/* OpenSSL's libssl as libcurl loaded it (the exec half-close over TLS);
	 * NULL when libcurl's TLS library is another */
	int (*ssl_shutdown)(SSL *);
	int (*ssl_get_error)(const SSL *, int);
};
extern struct dk_curl_api dk_curl;

/* Loads libcurl and runs its global init, once per process (thread-safe);
 * raises kind "not_found" (naming the library and its Debian package) or
 * "io" when it cannot. Every path to libcurl starts at docker.connect. */
void dk_curl_load(lua_State *L, int want_tls);

/* (curl.h defines these two as macros of themselves) */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init (*dk_curl.global_init)
#define curl_version_info (*dk_curl.version_info)
#define curl_easy_init (*dk_curl.easy_init)
#define curl_easy_cleanup (*dk_curl.easy_cleanup)
#define curl_easy_setopt (*dk_curl.easy_setopt)
#define curl_easy_getinfo (*dk_curl.easy_getinfo)
#define curl_easy_perform (*dk_curl.easy_perform)
#define curl_easy_reset (*dk_curl.easy_reset)
#define curl_easy_send (*dk_curl.easy_send)
#define curl_easy_recv (*dk_curl.easy_recv)
#define curl_easy_strerror (*dk_curl.easy_strerror)
#define curl_multi_init (*dk_curl.multi_init)
#define curl_multi_cleanup (*dk_curl.multi_cleanup)
#define curl_multi_add_handle (*dk_curl.multi_add_handle)
#define curl_multi_remove_handle (*dk_curl.multi_remove_handle)
#define curl_multi_perform (*dk_curl.multi_perform)
#define curl_multi_poll (*dk_curl.multi_poll)
#define curl_multi_info_read (*dk_curl.multi_info_read)
#define curl_multi_strerror (*dk_curl.multi_strerror)
#define curl_slist_append (*dk_curl.slist_append)
#define curl_slist_free_all (*dk_curl.slist_free_all)
#define SSL_shutdown (*dk_curl.ssl_shutdown)
#define SSL_get_error (*dk_curl.ssl_get_error)

/* ---- docker_transport.c -------------------------------------------------- */

client *dk_check_client(lua_State *L, int idx);
void dk_client_free(client *c);
int dk_parse_version(const char *s, int *major, int *minor);
int dk_vercmp(int a1, int b1, int a2, int b2);
const char *dk_negotiate(const char *daemon_max, const char *daemon_min, char *out,
                         size_t outlen, char *msg, size_t msglen);
size_t dk_on_write(char *p, size_t size, size_t n, void *ud);
void dk_easy_base(client *c, CURL *e, char *errbuf, long timeout_ms);
int dk_raise_transport(lua_State *L, client *c, CURLcode rc, long oserr, const char *method,
                       const char *path, double timeout_s);
int dk_status_kind_ok(long status);
int dk_raise_status(lua_State *L, client *c, long status, const char *method, const char *path,
                    int sec);
long dk_perform_io(lua_State *L, client *c, const char *method, const char *path,
                   const char *body, size_t blen, struct curl_slist *hdrs, long timeout_ms,
                   FILE *upload, curl_off_t upload_size, struct sink *out);
long dk_perform(lua_State *L, client *c, const char *method, const char *path,
                const char *body, size_t blen, struct curl_slist *hdrs, long timeout_ms);
long dk_call(lua_State *L, client *c, const char *method, const char *path, int body_idx,
             long timeout_ms, int sec);
const char *dk_push_path(lua_State *L, const char *fmt_path, const char *const *kv, int nkv);
const char *dk_push_refpath(lua_State *L, const char *prefix, const char *ref, const char *rest);
int docker_connect(lua_State *L);
int docker_negotiate(lua_State *L);

/* ---- docker_json.c --------------------------------------------------------- */

void dk_mark_array(lua_State *L);
void dk_json_encode(lua_State *L, int idx);
int dk_json_decode(lua_State *L, const char *s, size_t n);
void dk_add_escaped(luaL_Buffer *b, const char *s, size_t n);
const char *dk_check_ref(lua_State *L, int idx);
int dk_push_strlist(lua_State *L, int o, const char *k);
int dk_push_env(lua_State *L, int o, const char *k, int sec);
void dk_push_filters(lua_State *L, int idx);
int docker_filters(lua_State *L);

/* ---- client methods bound by the other files -------------------------------- */

extern const luaL_Reg dk_image_methods[];   /* docker_image.c */
extern const luaL_Reg dk_exec_methods[];    /* docker_exec.c */
extern const luaL_Reg dk_events_methods[];  /* docker_events.c: events() */
void dk_events_open(lua_State *L);          /* the cork.docker.Events metatable */

#endif
