/* cork.docker's API version logic against a fake daemon: a unix socket
 * served from a thread of this test, answering with the /_ping headers and
 * /version bodies of real engines (Debian's 20.10, and Docker 25, 27, 28,
 * 29) and refusing API versions outside their range as they do. Asserts the
 * negotiated version, the refusal of an engine whose minimum is above
 * cork's maximum, that every path is prefixed, and that the request and
 * answer shapes that differ between versions are hidden: several networks
 * at create (1.44), inspect without the top-level NetworkSettings fields
 * (1.52). Also: option lists encode as JSON arrays even when empty. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>

#include "cork.h"
#include "tap.h"

/* ---- recorded answers ------------------------------------------------------ */

struct profile {
	const char *name;
	const char *api;     /* /_ping Api-Version (NULL: no header, pre-1.25) */
	const char *min;     /* MinAPIVersion */
	const char *server;  /* Server header */
	const char *version; /* GET /version body */
};

/* 20.10: recorded from the Debian 12 engine these tests run on. The others
 * follow the same shape with each release's versions (Docker's own
 * /version output: ApiVersion, MinAPIVersion, Version, GoVersion). */
static const struct profile profiles[] = {
	{"20.10", "1.41", "1.12", "Docker/20.10.24+dfsg1 (linux)",
	 "{\"Platform\":{\"Name\":\"\"},\"Components\":[{\"Name\":\"Engine\",\"Version\":\"20.10.24+dfsg1\","
	 "\"Details\":{\"ApiVersion\":\"1.41\",\"Arch\":\"amd64\",\"BuildTime\":\"2026-05-07T21:09:36.000000000+00:00\","
	 "\"Experimental\":\"false\",\"GitCommit\":\"5d6db84\",\"GoVersion\":\"go1.19.8\",\"KernelVersion\":\"6.18.44\","
	 "\"MinAPIVersion\":\"1.12\",\"Os\":\"linux\"}}],\"Version\":\"20.10.24+dfsg1\",\"ApiVersion\":\"1.41\","
	 "\"MinAPIVersion\":\"1.12\",\"GitCommit\":\"5d6db84\",\"GoVersion\":\"go1.19.8\",\"Os\":\"linux\","
	 "\"Arch\":\"amd64\",\"KernelVersion\":\"6.18.44\",\"BuildTime\":\"2026-05-07T21:09:36.000000000+00:00\"}"},
	{"25.0", "1.44", "1.24", "Docker/25.0.5 (linux)",
	 "{\"Platform\":{\"Name\":\"Docker Engine - Community\"},\"Version\":\"25.0.5\",\"ApiVersion\":\"1.44\","
	 "\"MinAPIVersion\":\"1.24\",\"GitCommit\":\"e63daec\",\"GoVersion\":\"go1.21.8\",\"Os\":\"linux\","
	 "\"Arch\":\"amd64\",\"KernelVersion\":\"6.1.0\",\"BuildTime\":\"2024-03-19T14:38:22.000000000+00:00\"}"},
	{"27.3", "1.47", "1.24", "Docker/27.3.1 (linux)",
	 "{\"Platform\":{\"Name\":\"Docker Engine - Community\"},\"Version\":\"27.3.1\",\"ApiVersion\":\"1.47\","
	 "\"MinAPIVersion\":\"1.24\",\"GitCommit\":\"41ca978\",\"GoVersion\":\"go1.22.7\",\"Os\":\"linux\","
	 "\"Arch\":\"amd64\",\"KernelVersion\":\"6.1.0\",\"BuildTime\":\"2024-09-20T11:41:11.000000000+00:00\"}"},
	{"28.3", "1.51", "1.24", "Docker/28.3.3 (linux)",
	 "{\"Platform\":{\"Name\":\"Docker Engine - Community\"},\"Version\":\"28.3.3\",\"ApiVersion\":\"1.51\","
	 "\"MinAPIVersion\":\"1.24\",\"GitCommit\":\"bea959c\",\"GoVersion\":\"go1.24.5\",\"Os\":\"linux\","
	 "\"Arch\":\"amd64\",\"KernelVersion\":\"6.1.0\",\"BuildTime\":\"2025-07-25T11:34:09.000000000+00:00\"}"},
	{"29.0", "1.52", "1.44", "Docker/29.0.0 (linux)",
	 "{\"Platform\":{\"Name\":\"Docker Engine - Community\"},\"Version\":\"29.0.0\",\"ApiVersion\":\"1.52\","
	 "\"MinAPIVersion\":\"1.44\",\"GitCommit\":\"d105562\",\"GoVersion\":\"go1.25.4\",\"Os\":\"linux\","
	 "\"Arch\":\"amd64\",\"KernelVersion\":\"6.1.0\",\"BuildTime\":\"2025-11-10T10:31:37.000000000+00:00\"}"},
	/* a future engine that dropped everything cork speaks */
	{"future", "1.60", "1.55", "Docker/35.0.0 (linux)",
	 "{\"Version\":\"35.0.0\",\"ApiVersion\":\"1.60\",\"MinAPIVersion\":\"1.55\",\"Os\":\"linux\"}"},
	{"ancient", "1.40", "1.12", "Docker/19.03.15 (linux)",
	 "{\"Version\":\"19.03.15\",\"ApiVersion\":\"1.40\",\"MinAPIVersion\":\"1.12\",\"Os\":\"linux\"}"},
	{"no-header", NULL, "1.12", "Docker/1.12.6 (linux)",
	 "{\"Version\":\"1.12.6\",\"ApiVersion\":\"1.24\",\"MinAPIVersion\":\"1.12\",\"Os\":\"linux\"}"},
};

#define CID "3f1c0ffee0dd5a1e5eed1c0de4b1e55ed00dfeedfacecafebeefdeadbeef0001"

/* GET /containers/ID/json: NetworkSettings as 20.10 sends it (the legacy
 * top-level fields empty, as they are for user-defined networks), and as
 * 1.52 sends it (those fields gone). Everything else is the same. */
static const char inspect_head[] =
	"{\"Id\":\"" CID "\",\"Name\":\"/corktest-x\",\"State\":{\"Status\":\"running\",\"Running\":true},"
	"\"Config\":{\"Tty\":false},\"NetworkSettings\":{";
static const char inspect_legacy[] =
	"\"Bridge\":\"\",\"SandboxID\":\"fca8506761ae\",\"HairpinMode\":false,\"LinkLocalIPv6Address\":\"\","
	"\"LinkLocalIPv6PrefixLen\":0,\"SandboxKey\":\"/var/run/docker/netns/fca8506761ae\","
	"\"SecondaryIPAddresses\":null,\"SecondaryIPv6Addresses\":null,\"EndpointID\":\"\",\"Gateway\":\"\","
	"\"GlobalIPv6Address\":\"\",\"GlobalIPv6PrefixLen\":0,\"IPAddress\":\"\",\"IPPrefixLen\":0,"
	"\"IPv6Gateway\":\"\",\"MacAddress\":\"\",";
static const char inspect_152[] =
	"\"SandboxID\":\"fca8506761ae\",\"SandboxKey\":\"/var/run/docker/netns/fca8506761ae\",";
static const char inspect_tail[] =
	"\"Ports\":{\"8888/tcp\":[{\"HostIp\":\"127.0.0.17\",\"HostPort\":\"49153\"}],"
	"\"9099/tcp\":[{\"HostIp\":\"127.0.0.17\",\"HostPort\":\"49154\"}],\"9418/tcp\":null},"
	"\"Networks\":{\"net-a\":{\"IPAMConfig\":null,\"Links\":null,\"Aliases\":[\"3f1c0ffee0dd\"],"
	"\"NetworkID\":\"991d282e05e6\",\"EndpointID\":\"a22975531d8d\",\"Gateway\":\"10.231.7.1\","
	"\"IPAddress\":\"10.231.7.2\",\"IPPrefixLen\":24,\"MacAddress\":\"02:42:0a:e7:07:02\"},"
	"\"net-b\":{\"IPAMConfig\":{\"IPv4Address\":\"10.231.8.5\"},\"Aliases\":[\"bee\"],"
	"\"NetworkID\":\"17b2e05e6991\",\"EndpointID\":\"d8da2297553\",\"Gateway\":\"10.231.8.1\","
	"\"IPAddress\":\"10.231.8.5\",\"IPPrefixLen\":24,\"MacAddress\":\"02:42:0a:e7:08:05\"}}}}";

/* ---- the fake daemon -------------------------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static const struct profile *cur;
static char reqlog[1 << 16];  /* "METHOD TARGET\n" and "BODY ...\n" lines */
static volatile int stopping;
static int lfd = -1;

static void log_add(const char *s, size_t n)
{
	size_t have = strlen(reqlog);
	if (have + n + 2 < sizeof reqlog) {
		memcpy(reqlog + have, s, n);
		reqlog[have + n] = '\n';
		reqlog[have + n + 1] = '\0';
	}
}

static void log_clear(void)
{
	pthread_mutex_lock(&mu);
	reqlog[0] = '\0';
	pthread_mutex_unlock(&mu);
}

/* "1.44" -> 144 (minor < 100 in every version here) */
static int vnum(const char *v)
{
	int a = 0, b = 0;
	sscanf(v, "%d.%d", &a, &b);
	return a * 100 + b;
}

static void answer(int fd, int status, const char *extra, const char *ctype, const char *body)
{
	const char *reason = status == 200 ? "OK" : status == 201 ? "Created" : status == 204 ? "No Content"
	                   : status == 400 ? "Bad Request" : "Not Found";
	char head[1024];
	size_t blen = strlen(body);
	int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n%sContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
	                 status, reason, extra, ctype, blen);
	if (write(fd, head, (size_t)n) < 0 || (blen && write(fd, body, blen) < 0))
		return;
}

static void route(int fd, const char *method, const char *target)
{
	const struct profile *p = cur;
	char extra[512], msg[256];
	snprintf(extra, sizeof extra, "%s%s%sServer: %s\r\nOstype: linux\r\nDocker-Experimental: false\r\n",
	         p->api ? "Api-Version: " : "", p->api ? p->api : "", p->api ? "\r\n" : "", p->server);
	const char *path = target;
	if (strncmp(target, "/v", 2) == 0 && target[2] >= '0' && target[2] <= '9') {
		/* versioned: the engine's own range check */
		int v = vnum(target + 2), hi = vnum(p->api ? p->api : "1.24"), lo = vnum(p->min);
		char vs[16];
		snprintf(vs, sizeof vs, "%.*s", (int)strcspn(target + 2, "/"), target + 2);
		path = strchr(target + 1, '/');
		if (!path)
			path = "/";
		if (v < lo) {
			snprintf(msg, sizeof msg, "{\"message\":\"client version %s is too old. Minimum supported API "
			         "version is %s, please upgrade your client to a newer version\"}", vs, p->min);
			answer(fd, 400, extra, "application/json", msg);
			return;
		}
		if (v > hi) {
			snprintf(msg, sizeof msg, "{\"message\":\"client version %s is too new. Maximum supported API "
			         "version is %s\"}", vs, p->api ? p->api : "1.24");
			answer(fd, 400, extra, "application/json", msg);
			return;
		}
	}
	if (strcmp(path, "/_ping") == 0) {
		answer(fd, 200, extra, "text/plain; charset=utf-8", strcmp(method, "HEAD") == 0 ? "" : "OK");
	} else if (strcmp(path, "/version") == 0) {
		answer(fd, 200, extra, "application/json", p->version);
	} else if (strcmp(method, "POST") == 0 && strncmp(path, "/containers/create", 18) == 0) {
		answer(fd, 201, extra, "application/json", "{\"Id\":\"" CID "\",\"Warnings\":[]}");
	} else if (strcmp(method, "POST") == 0 && strncmp(path, "/networks/", 10) == 0 &&
	           strstr(path, "/connect")) {
		answer(fd, 200, extra, "text/plain", "");
	} else if (strcmp(method, "GET") == 0 && strcmp(path, "/containers/" CID "/json") == 0) {
		static char body[8192];
		snprintf(body, sizeof body, "%s%s%s", inspect_head,
		         vnum(target + 2) >= 152 ? inspect_152 : inspect_legacy, inspect_tail);
		answer(fd, 200, extra, "application/json", body);
	} else if (strcmp(method, "DELETE") == 0) {
		answer(fd, 204, extra, "text/plain", "");
	} else {
		answer(fd, 404, extra, "application/json", "{\"message\":\"page not found\"}");
	}
}

/* One connection: requests one after another (keep-alive) until EOF. */
static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[65536];
	size_t have = 0;
	for (;;) {
		char *eoh;
		while (!(eoh = have ? strstr(buf, "\r\n\r\n") : NULL)) {
			if (have + 1 >= sizeof buf)
				goto done;
			ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
			if (r <= 0)
				goto done;
			have += (size_t)r;
			buf[have] = '\0';
		}
		size_t head = (size_t)(eoh - buf) + 4;
		size_t clen = 0;
		const char *cl = strcasestr(buf, "\r\ncontent-length:");
		if (cl && cl < eoh)
			clen = strtoul(cl + 17, NULL, 10);
		while (have < head + clen) {
			if (have + 1 >= sizeof buf)
				goto done;
			ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
			if (r <= 0)
				goto done;
			have += (size_t)r;
			buf[have] = '\0';
		}
		char method[16] = "", target[2048] = "";
		sscanf(buf, "%15s %2047s", method, target);
		pthread_mutex_lock(&mu);
		char line[2100];
		int n = snprintf(line, sizeof line, "%s %s", method, target);
		log_add(line, (size_t)n);
		if (clen) {
			char *b = malloc(clen + 6);
			if (b) {
				memcpy(b, "BODY ", 5);
				memcpy(b + 5, buf + head, clen);
				log_add(b, clen + 5);
				free(b);
			}
		}
		route(fd, method, target);
		pthread_mutex_unlock(&mu);
		memmove(buf, buf + head + clen, have - head - clen);
		have -= head + clen;
		buf[have] = '\0';
	}
done:
	close(fd);
	return NULL;
}

static void *serve(void *arg)
{
	(void)arg;
	while (!stopping) {
		struct pollfd pf = {lfd, POLLIN, 0};
		if (poll(&pf, 1, 50) <= 0)
			continue;
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_t th;
		if (pthread_create(&th, NULL, serve_conn, (void *)(intptr_t)fd) == 0)
			pthread_detach(th);
		else
			close(fd);
	}
	return NULL;
}

/* ---- driving cork ---------------------------------------------------------- */

static lua_State *L;
static char result[4096];

/* Run a chunk that returns one value; the result as a string, or
 * "error: KIND: MESSAGE" when it raised. */
static const char *eval(const char *code)
{
	if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
		const char *kind = "lua";
		if (lua_istable(L, -1)) {
			lua_getfield(L, -1, "kind");
			if (lua_isstring(L, -1))
				kind = lua_tostring(L, -1);
			lua_getfield(L, -2, "message");
			snprintf(result, sizeof result, "error: %s: %s", kind, lua_tostring(L, -1));
			lua_pop(L, 2);
		} else {
			snprintf(result, sizeof result, "error: %s: %s", kind, lua_tostring(L, -1));
		}
	} else {
		snprintf(result, sizeof result, "%s", luaL_tolstring(L, -1, NULL));
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return result;
}

static const char *select_profile(const char *name)
{
	for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
		if (strcmp(profiles[i].name, name) == 0) {
			pthread_mutex_lock(&mu);
			cur = &profiles[i];
			pthread_mutex_unlock(&mu);
			log_clear();
			return name;
		}
	return NULL;
}

/* A copy of the request log. */
static char *log_copy(void)
{
	pthread_mutex_lock(&mu);
	char *s = strdup(reqlog);
	pthread_mutex_unlock(&mu);
	return s;
}

/* The line of the log after the one starting with `prefix` (its body). */
static const char *body_after(const char *log, const char *prefix, char *out, size_t cap)
{
	const char *p = strstr(log, prefix);
	out[0] = '\0';
	if (!p || !(p = strchr(p, '\n')) || strncmp(p + 1, "BODY ", 5) != 0)
		return out;
	p += 6;
	size_t n = strcspn(p, "\n");
	snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
	return out;
}

/* Every request line after the first `skip` carries the /vAPI/ prefix. */
static int all_prefixed(const char *log, const char *api, int skip)
{
	char want[32];
	snprintf(want, sizeof want, "/v%s/", api);
	int i = 0;
	for (const char *p = log; *p; p = strchr(p, '\n') + 1) {
		if (strncmp(p, "BODY ", 5) != 0 && i++ >= skip) {
			const char *sp = strchr(p, ' ');
			if (!sp || strncmp(sp + 1, want, strlen(want)) != 0)
				return 0;
		}
		if (!strchr(p, '\n'))
			break;
	}
	return i > skip;
}

static void test_engine(const char *name, const char *want_api, int asks_version)
{
	char code[2048], body[8192];
	select_profile(name);
	is_str(eval("d = docker.connect(SOCK); return d:api_version()"), want_api,
	       "%s: negotiated API %s", name, want_api);
	char *log = log_copy();
	ok(strncmp(log, "GET /_ping\n", 11) == 0, "%s: negotiation starts with an unversioned /_ping", name);
	ok((strstr(log, "GET /version") != NULL) == asks_version,
	   "%s: %s MinAPIVersion from /version", name, asks_version ? "reads" : "does not need");
	free(log);
	log_clear();

	/* a bundle-shaped create: two networks, published ports, empty lists */
	eval("c = d:container_create{name = 'corktest-x', image = 'img', cmd = {}, entrypoint = {'/init'},"
	     " env = {}, extra_hosts = {}, cap_drop = {'ALL'}, labels = {},"
	     " networks = {'net-a', {name = 'net-b', ip = '10.231.8.5', aliases = {'bee'}}},"
	     " ports = {{container_port = 8888, host_ip = '127.0.0.17'}, {container_port = 9099, host_ip = '127.0.0.17'}}}"
	     " return c.id");
	is_str(result, CID, "%s: container_create returns the id", name);
	log = log_copy();
	snprintf(code, sizeof code, "POST /v%s/containers/create?name=corktest-x", want_api);
	ok(strstr(log, code) != NULL, "%s: create path prefixed: %s", name, code);
	body_after(log, code, body, sizeof body);
	ok(strstr(body, "\"Cmd\":[]") && strstr(body, "\"Env\":[]") && strstr(body, "\"ExtraHosts\":[]"),
	   "%s: empty lists are JSON arrays (Cmd, Env, ExtraHosts)", name);
	ok(strstr(body, "\"Entrypoint\":[\"/init\"]") && strstr(body, "\"CapDrop\":[\"ALL\"]") &&
	   strstr(body, "\"Labels\":{}"), "%s: lists and maps as Docker wants them", name);
	ok(strstr(body, "\"NetworkMode\":\"net-a\"") != NULL, "%s: the first network is the network mode", name);
	int v = vnum(want_api);
	char connect_line[128];
	snprintf(connect_line, sizeof connect_line, "POST /v%s/networks/net-b/connect", want_api);
	if (v >= 144) {
		ok(strstr(body, "\"net-a\":{}") && strstr(body, "\"net-b\":{") &&
		   strstr(body, "\"IPv4Address\":\"10.231.8.5\""),
		   "%s: >= 1.44: both networks in EndpointsConfig", name);
		ok(strstr(log, "/connect") == NULL, "%s: >= 1.44: no network connect after create", name);
	} else {
		ok(strstr(body, "\"net-a\":{}") && !strstr(body, "net-b"),
		   "%s: < 1.44: only the first network at create", name);
		char cb[2048];
		body_after(log, connect_line, cb, sizeof cb);
		ok(strstr(cb, "\"Container\":\"" CID "\"") && strstr(cb, "\"IPv4Address\":\"10.231.8.5\"") &&
		   strstr(cb, "\"Aliases\":[\"bee\"]"),
		   "%s: < 1.44: the second network connected right after create (ip, aliases)", name);
	}
	free(log);

	/* answers: the same reads on every version */
	is_str(eval("return d:host_port(c.id, 8888, '127.0.0.17')"), "49153", "%s: host_port 8888", name);
	is_str(eval("return d:host_port(c.id, '9099/tcp')"), "49154", "%s: host_port 9099/tcp, any address", name);
	is_str(eval("local ok, e = pcall(d.host_port, d, c.id, 9418) return e.kind .. ': ' .. e.message"),
	       "not_found: container corktest-x has no host port for 9418/tcp",
	       "%s: an exposed port with no binding: not_found naming container and port", name);
	is_str(eval("local n = d:container_inspect(c.id).NetworkSettings.Networks"
	            " return n['net-a'].IPAddress .. ' ' .. n['net-b'].IPAddress .. ' ' .. n['net-b'].Gateway"),
	       "10.231.7.2 10.231.8.5 10.231.8.1", "%s: addresses from NetworkSettings.Networks", name);
	is_str(eval("return tostring(d:container_remove(c.id, {force = true}))"), "true", "%s: remove", name);
	log = log_copy();
	ok(all_prefixed(log, want_api, 0), "%s: every call after connect is prefixed /v%s/", name, want_api);
	free(log);
	eval("d:close() return true");
}

int main(void)
{
	char dir[] = "/tmp/cork-fakedockerd.XXXXXX";
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/docker.sock", dir);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 16) != 0) {
		printf("Bail out! fake daemon socket: %s\n", strerror(errno));
		return 1;
	}
	cur = &profiles[0];
	pthread_t th;
	pthread_create(&th, NULL, serve, NULL);

	struct cork_options o = {.quiet = 1};
	struct cork *ck = cork_new(&o);
	L = cork_lua(ck);
	char setup[512];
	snprintf(setup, sizeof setup, "docker = require 'cork.docker'; SOCK = 'unix://%s'; return true", sa.sun_path);
	is_str(eval(setup), "true", "cork.docker loads");
	is_str(eval("return docker.API_MIN .. ' ' .. docker.API_MAX"), "1.41 1.52", "client range 1.41 to 1.52");

	/* the pure choice */
	is_str(eval("return docker._negotiate('1.41')"), "1.41", "negotiate: an older daemon's version");
	is_str(eval("return docker._negotiate('1.47', '1.24')"), "1.47", "negotiate: within range");
	is_str(eval("return docker._negotiate('1.52', '1.44')"), "1.52", "negotiate: Docker 29");
	is_str(eval("return docker._negotiate('1.60', '1.44')"), "1.52", "negotiate: a newer daemon: cork's max");
	is_str(eval("return select(2, docker._negotiate('1.60', '1.55'))"),
	       "daemon requires API 1.55 or newer; cork speaks 1.41 to 1.52", "negotiate: no overlap");
	is_str(eval("return select(2, docker._negotiate('1.40'))"),
	       "daemon API 1.40 is older than the oldest cork supports (1.41)", "negotiate: too old");
	is_str(eval("return select(2, docker._negotiate(nil))"),
	       "daemon API 1.24 is older than the oldest cork supports (1.41)", "negotiate: no header means < 1.25");
	is_str(eval("return select(2, docker._negotiate('one.41'))"),
	       "daemon reported a malformed API version \"one.41\"", "negotiate: malformed");

	/* against the recorded engines */
	test_engine("20.10", "1.41", 0);
	test_engine("25.0", "1.44", 0);
	test_engine("27.3", "1.47", 0);
	test_engine("28.3", "1.51", 0);
	test_engine("29.0", "1.52", 0);

	char want[512];
	select_profile("future");
	snprintf(want, sizeof want, "error: daemon: unix://%s: daemon requires API 1.55 or newer; cork speaks 1.41 to 1.52",
	         sa.sun_path);
	is_str(eval("return docker.connect(SOCK)"), want, "an engine whose minimum is above cork's maximum: one clear error");
	char *log = log_copy();
	is_str(log, "GET /_ping\nGET /version\n", "it asked /_ping, then /version for the minimum, nothing else");
	free(log);
	select_profile("ancient");
	snprintf(want, sizeof want, "error: daemon: unix://%s: daemon API 1.40 is older than the oldest cork supports (1.41)",
	         sa.sun_path);
	is_str(eval("return docker.connect(SOCK)"), want, "an engine older than 1.41: one clear error");
	select_profile("no-header");
	snprintf(want, sizeof want, "error: daemon: unix://%s: daemon API 1.24 is older than the oldest cork supports (1.41)",
	         sa.sun_path);
	is_str(eval("return docker.connect(SOCK)"), want, "no Api-Version header (before 1.25): refused");

	/* pinned versions skip negotiation; the engine judges them */
	select_profile("29.0");
	is_str(eval("d = docker.connect(SOCK, {api_version = '1.44'}) return d:api_version()"), "1.44",
	       "pinned 1.44 on Docker 29");
	log = log_copy();
	is_str(log, "", "a pinned client sends nothing at connect");
	free(log);
	is_str(eval("return d:version().ApiVersion"), "1.52", "pinned 1.44: calls work");
	log = log_copy();
	is_str(log, "GET /v1.44/version\n", "pinned: the path carries the pinned version");
	free(log);
	is_str(eval("d:close() d = docker.connect(SOCK, {api_version = '1.41'}) return d:version()"),
	       "error: bad_request: docker GET /version: client version 1.41 is too old. Minimum supported API "
	       "version is 1.44, please upgrade your client to a newer version (HTTP 400)",
	       "pinned 1.41 on Docker 29: the engine's refusal comes back as bad_request with its message");
	eval("d:close() return true");

	/* the raw escape hatch keeps an explicit version */
	select_profile("25.0");
	is_str(eval("d = docker.connect(SOCK) return d:request('GET', '/v1.41/version').status"), "200",
	       "request: an explicit /v1.41 path");
	log = log_copy();
	ok(strstr(log, "GET /v1.41/version\n") != NULL, "request: sent as given, not re-prefixed");
	free(log);
	is_str(eval("return d:request('POST', '/containers/create', {body = {Cmd = {}, Env = {'A=1'}}}).status"),
	       "201", "request: a table body");
	log = log_copy();
	ok(strstr(log, "BODY {\"Cmd\":{},\"Env\":[\"A=1\"]}") || strstr(log, "BODY {\"Env\":[\"A=1\"],\"Cmd\":{}}"),
	   "request: a raw body is sent as given (an empty table is {})");
	free(log);
	is_str(eval("return select(2, pcall(d.request, d, 'POST', '/x', {body = {[1] = 1, x = 2}}))"),
	       "cannot encode a table with a number key in a Docker request (want a list 1..n or string keys)",
	       "a mixed table is refused, not guessed");
	is_str(eval("return select(2, pcall(d.request, d, 'POST', '/x', {body = {x = 0/0}}))"),
	       "cannot encode NaN in a Docker request", "NaN is refused");
	is_str(eval("return d:container_create{image = 'i', labels = {a = 'x\\\"\\n\\1'}}.id"), CID,
	       "control characters and quotes in strings");
	eval("d:close() return true");
	log = log_copy();
	ok(strstr(log, "\"Labels\":{\"a\":\"x\\\"\\n\\u0001\"}") != NULL, "strings escaped as JSON");
	free(log);

	cork_free(ck);
	stopping = 1;
	pthread_join(th, NULL);
	close(lfd);
	unlink(sa.sun_path);
	rmdir(dir);
	return tap_done();
}
