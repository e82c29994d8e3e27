/*
 * proc.c: require "cork.proc": run programs with an argv table, never
 * through a shell.
 *
 *   cork.proc.run(argv, opts) -> { status, signal, stdout, stderr, timed_out, truncated }
 *   cork.proc.spawn(argv, opts) -> Process (:pid, :wait, :kill, :running, :close,
 *                                           :stdout, :stderr, :release)
 *   cork.proc.stdin() -> Reader; cork.proc.poll(readers[, timeout]) -> ready readers
 *
 * A Reader buffers lines from a pipe (a spawned child's stdout or stderr
 * with "pipe", or cork's own stdin) without ever blocking past its timeout,
 * so one loop can multiplex a control channel and several children (what
 * `cork serve --stdio` does).
 *
 * Children run in their own process group (so a terminal's Ctrl-C reaches
 * cork, which decides), except with `interactive = true`, where they share
 * cork's terminal. On interrupt, run() stops the child (TERM, then KILL after
 * the grace period) and raises kind "interrupted"; inside scope cleanups it
 * lets the child finish.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"
#include "modules.h"

#define PROCESS_MT "cork.proc.Process"
#define READER_MT "cork.proc.Reader"
#define MAX_LINE (16 * 1024 * 1024)
#define FD_PIPE (-3)             /* open_target: the caller makes a pipe */
#define DEFAULT_MAX_OUTPUT (16 * 1024 * 1024)

extern char **environ;

/* Everything a child needs, built (and anchored on the Lua stack) before
 * the fork. Arrays live in userdata so a Lua error frees them. */
struct spawn_req {
	const char **argv;
	const char **envp;         /* NULL: inherit */
	const char *cwd;
	int fd_in, fd_out, fd_err; /* -1: /dev/null; -2: inherit */
	int new_pgrp;
	int errpipe;               /* CLOEXEC pipe reporting exec errno */
};

static const char *const run_opts[] = { "env", "clear_env", "cwd", "stdin", "timeout",
	"grace", "capture", "max_output", "interactive", NULL };
static const char *const spawn_opts[] = { "env", "clear_env", "cwd", "stdin", "stdout",
	"stderr", "interactive", NULL };

/* Build a NULL-terminated array of the strings in the sequence at idx;
 * the array is a userdata left on the stack. */
static const char **check_argv(lua_State *L, int idx)
{
	lua_Integer n, i;
	const char **argv;
	luaL_checktype(L, idx, LUA_TTABLE);
	n = luaL_len(L, idx);
	luaL_argcheck(L, n >= 1, idx, "argv must be a non-empty list of strings");
	for (i = 1; i <= n; i++) {
		if (lua_rawgeti(L, idx, i) != LUA_TSTRING && !lua_isnumber(L, -1))
			luaL_argerror(L, idx, lua_pushfstring(L, "argv[%d] is not a string", (int)i));
		lua_pop(L, 1);
	}
	argv = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
	for (i = 1; i <= n; i++) {
		lua_rawgeti(L, idx, i);
		argv[i - 1] = lua_tostring(L, -1);   /* anchored by the argv table */
		lua_pop(L, 1);
	}
	argv[n] = NULL;
	return argv;
}

/* The child's environment: inherited (unless clear_env) overlaid with env.
 * Strings are anchored in a table; returns the array (userdata) or NULL
 * when the environment is inherited untouched. Leaves 2 values on the stack. */
static const char **build_env(lua_State *L, int opts)
{
	int clear = 0, has_env = 0, n = 0, t, i;
	const char **envp;
	if (lua_istable(L, opts)) {
		clear = cork_opt_boolean(L, opts, "clear_env", 0);
		lua_getfield(L, opts, "env");
		has_env = !lua_isnil(L, -1);
		if (has_env)
			luaL_argexpected(L, lua_istable(L, -1), opts, "env to be a table");
		lua_pop(L, 1);
	}
	if (!clear && !has_env) {
		lua_pushnil(L);
		lua_pushnil(L);
		return NULL;
	}
	lua_newtable(L);     /* name -> "K=V", the merged environment */
	t = lua_gettop(L);
	if (!clear) {
		for (char **e = environ; *e; e++) {
			const char *eq = strchr(*e, '=');
			if (!eq)
				continue;
			lua_pushlstring(L, *e, (size_t)(eq - *e));
			lua_pushstring(L, *e);
			lua_rawset(L, t);
		}
	}
	if (has_env) {
		lua_getfield(L, opts, "env");
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			if (lua_type(L, -2) != LUA_TSTRING)
				luaL_error(L, "env keys must be strings");
			const char *k = lua_tostring(L, -2);
			if (!*k || strchr(k, '='))
				luaL_error(L, "invalid env name '%s'", k);
			if (lua_toboolean(L, -1) == 0) {      /* false: unset */
				lua_pop(L, 1);
				lua_pushvalue(L, -1);
				lua_pushnil(L);
				lua_rawset(L, t);
				continue;
			}
			if (!lua_isstring(L, -1))
				luaL_error(L, "env value of '%s' must be a string", k);
			lua_pushfstring(L, "%s=%s", k, lua_tostring(L, -1));
			lua_replace(L, -2);
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, t);
		}
		lua_pop(L, 1);
	}
	lua_pushnil(L);
	while (lua_next(L, t)) {
		n++;
		lua_pop(L, 1);
	}
	envp = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
	i = 0;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		envp[i++] = lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	envp[i] = NULL;
	return envp;
}

static void child_setup_fd(int fd, int target, int devnull)
{
	if (fd == -2)
		return;
	dup2(fd == -1 ? devnull : fd, target);
}

/* Fork and exec. Returns the pid, or -1 with errno (exec errors included). */
static pid_t spawn_child(struct spawn_req *r)
{
	int ep[2], err = 0;
	ssize_t got;
	pid_t pid;
	if (pipe2(ep, O_CLOEXEC) != 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		err = errno;
		close(ep[0]);
		close(ep[1]);
		errno = err;
		return -1;
	}
	if (pid == 0) {
		sigset_t none;
		int devnull = open("/dev/null", O_RDWR);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (r->new_pgrp)
			setpgid(0, 0);
		child_setup_fd(r->fd_in, 0, devnull);
		child_setup_fd(r->fd_out, 1, devnull);
		child_setup_fd(r->fd_err, 2, devnull);
		if (r->cwd && chdir(r->cwd) != 0)
			goto fail;
		if (r->envp)
			execvpe(r->argv[0], (char *const *)r->argv, (char *const *)r->envp);
		else
			execvp(r->argv[0], (char *const *)r->argv);
	fail:
		err = errno;
		got = write(ep[1], &err, sizeof err);
		(void)got;
		_exit(127);
	}
	close(ep[1]);
	do
		got = read(ep[0], &err, sizeof err);
	while (got < 0 && errno == EINTR);
	close(ep[0]);
	if (got == (ssize_t)sizeof err) {
		int st;
		waitpid(pid, &st, 0);
		errno = err;
		return -1;
	}
	return pid;
}

static int raise_spawn_error(lua_State *L, const char *prog, const char *cwd, int err)
{
	if (err == ENOENT && cwd) {
		struct stat st;
		if (stat(cwd, &st) != 0)
			return cork_raise(L, "not_found", "cannot run %s: working directory %s does not exist", prog, cwd);
	}
	if (err == ENOENT)
		cork_error_push(L, "not_found", "cannot run %s: program not found", prog);
	else if (err == EACCES)
		cork_error_push(L, "permission", "cannot run %s: permission denied", prog);
	else /* not a file error: the errno map's "io" would mislead */
		cork_error_push(L, "exec", "cannot run %s: %s", prog, strerror(err));
	lua_pushstring(L, prog);
	lua_setfield(L, -2, "program");
	return lua_error(L);
}

static void kill_child(pid_t pid, int pgrp, int sig)
{
	if (pgrp)
		kill(-pid, sig);
	else
		kill(pid, sig);
}

/* Growable output buffer in a userdata (freed by the GC on error). */
struct outbuf {
	char *data;
	size_t len, cap, max;
	int truncated;
};

static int outbuf_gc(lua_State *L)
{
	struct outbuf *b = lua_touserdata(L, 1);
	free(b->data);
	b->data = NULL;
	return 0;
}

static struct outbuf *new_outbuf(lua_State *L, size_t max)
{
	struct outbuf *b = lua_newuserdatauv(L, sizeof *b, 0);
	memset(b, 0, sizeof *b);
	b->max = max;
	if (luaL_newmetatable(L, "cork.proc.outbuf")) {
		lua_pushcfunction(L, outbuf_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	return b;
}

/* Read what is available from fd into b; returns 0 on EOF. */
static int drain(int fd, struct outbuf *b)
{
	char tmp[65536];
	ssize_t n = read(fd, tmp, sizeof tmp);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (n == 0)
		return 0;
	if (b->len + (size_t)n > b->max) {
		b->truncated = 1;
		n = (ssize_t)(b->max - b->len);
	}
	if (n > 0) {
		if (b->len + (size_t)n > b->cap) {
			size_t cap = b->cap ? b->cap : 4096;
			char *d;
			while (cap < b->len + (size_t)n)
				cap *= 2;
			d = realloc(b->data, cap);
			if (!d)
				return 0;
			b->data = d;
			b->cap = cap;
		}
		memcpy(b->data + b->len, tmp, (size_t)n);
		b->len += (size_t)n;
	}
	return 1;
}

/* Write to a pipe without a SIGPIPE reaching the process. */
static ssize_t write_nosigpipe(int fd, const char *p, size_t n)
{
	sigset_t pipe_set, old, pending;
	ssize_t w;
	int err;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	w = write(fd, p, n);
	err = errno;
	if (w < 0 && err == EPIPE) {
		struct timespec zero = { 0, 0 };
		sigpending(&pending);
		if (sigismember(&pending, SIGPIPE))
			sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return w;
}

/* A descriptor that becomes readable when pid exits (Linux >= 5.3), or -1:
 * then the loops below fall back to short polls. */
static int exit_fd(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	return -1;
#endif
}

static void push_status(lua_State *L, int st)
{
	if (WIFEXITED(st)) {
		lua_pushinteger(L, WEXITSTATUS(st));
		lua_setfield(L, -2, "status");
	} else if (WIFSIGNALED(st)) {
		lua_pushinteger(L, 128 + WTERMSIG(st));
		lua_setfield(L, -2, "status");
		lua_pushinteger(L, WTERMSIG(st));
		lua_setfield(L, -2, "signal");
	}
}

/* cork.proc.run(argv[, opts]) */
/* The state of one proc.run while it waits for its child. */
struct run {
	pid_t pid;
	int pfd, st, exited, timed_out, interrupted, interactive, new_pgrp;
	int pin[2], pout[2], perr[2];
	const char *in_data;
	size_t in_len, in_off;
	double deadline, kill_at, grace;
	struct outbuf *bo, *be;
	struct rusage ru;   /* what the child used (wait4) */
};

/* Pipes (stdin when given, stdout/stderr when captured), then the child.
 * Raises, with every pipe closed, when either fails. */
static void run_start(lua_State *L, struct run *u, struct spawn_req *r, int capture)
{
	if ((u->in_data && pipe2(u->pin, O_CLOEXEC) != 0) ||
	    (capture && (pipe2(u->pout, O_CLOEXEC) != 0 || pipe2(u->perr, O_CLOEXEC) != 0))) {
		int e = errno;
		int *all[] = { &u->pin[0], &u->pin[1], &u->pout[0], &u->pout[1], &u->perr[0], &u->perr[1] };
		for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
			if (*all[i] >= 0)
				close(*all[i]);
		cork_raise(L, "io", "cannot create pipes: %s", strerror(e));
	}
	if (u->in_data)
		r->fd_in = u->pin[0];
	if (capture) {
		r->fd_out = u->pout[1];
		r->fd_err = u->perr[1];
	}
	u->pid = spawn_child(r);
	int e = errno;
	if (u->pin[0] >= 0) close(u->pin[0]);
	if (u->pout[1] >= 0) close(u->pout[1]);
	if (u->perr[1] >= 0) close(u->perr[1]);
	if (u->pid < 0) {
		if (u->pin[1] >= 0) close(u->pin[1]);
		if (u->pout[0] >= 0) close(u->pout[0]);
		if (u->perr[0] >= 0) close(u->perr[0]);
		raise_spawn_error(L, r->argv[0], r->cwd, e);
	}
	if (u->pin[1] >= 0) {
		fcntl(u->pin[1], F_SETFL, O_NONBLOCK);
		if (u->in_len == 0) {
			close(u->pin[1]);
			u->pin[1] = -1;
		}
	}
	u->pfd = exit_fd(u->pid);
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Feed stdin and drain stdout/stderr for the pipes poll found ready. */
static void run_pipes(struct run *u, const struct pollfd *fds, int npipes, int rc)
{
	for (int i = 0; rc > 0 && i < npipes; i++) {
		if (!fds[i].revents)
			continue;
		if (fds[i].fd == u->pin[1]) {
			ssize_t w = write_nosigpipe(u->pin[1], u->in_data + u->in_off, u->in_len - u->in_off);
			if (w > 0)
				u->in_off += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || u->in_off >= u->in_len)
				close_fd(&u->pin[1]);
		} else {
			int *fdp = fds[i].fd == u->pout[0] ? &u->pout[0] : &u->perr[0];
			if (!drain(*fdp, fdp == &u->pout[0] ? u->bo : u->be))
				close_fd(fdp);
		}
	}
	if (u->exited && rc == 0) {
		/* the child is gone but someone (a grandchild) holds the pipes */
		close_fd(&u->pout[0]);
		close_fd(&u->perr[0]);
		close_fd(&u->pin[1]);
	}
}

/* The timeout, an interrupt, and SIGKILL after the grace period. */
static void run_signals(lua_State *L, struct run *u)
{
	double now = cork_now();
	if (!u->kill_at && !u->timed_out && u->deadline && now >= u->deadline) {
		u->timed_out = 1;
		kill_child(u->pid, u->new_pgrp, SIGTERM);
		u->kill_at = now + u->grace;
	}
	/* Ctrl-C on a terminal shared with an interactive child is the
	 * child's (an agent cancels its own work with it); TERM and HUP
	 * still end the session. */
	if (!u->kill_at && !u->interrupted && cork_interrupt_pending(L) &&
	    !(u->interactive && cork_interrupt_signal(L) == SIGINT)) {
		u->interrupted = 1;
		kill_child(u->pid, u->new_pgrp, SIGTERM);
		u->kill_at = now + (u->grace < 2 ? u->grace : 2);
	}
	if (u->kill_at && now >= u->kill_at) {
		kill_child(u->pid, u->new_pgrp, SIGKILL);
		u->kill_at = now + 3600;
	}
}

/* Until the child has exited and its pipes are closed. */
static void run_wait(lua_State *L, struct run *u)
{
	for (;;) {
		struct pollfd fds[4];
		int nf = 0, rc, npipes;
		if (u->pout[0] >= 0) { fds[nf].fd = u->pout[0]; fds[nf].events = POLLIN; nf++; }
		if (u->perr[0] >= 0) { fds[nf].fd = u->perr[0]; fds[nf].events = POLLIN; nf++; }
		if (u->pin[1] >= 0) { fds[nf].fd = u->pin[1]; fds[nf].events = POLLOUT; nf++; }
		npipes = nf;
		if (!u->exited && wait4(u->pid, &u->st, WNOHANG, &u->ru) == u->pid)
			u->exited = 1;
		if (u->exited && npipes == 0)
			break;
		if (!u->exited && u->pfd >= 0) { fds[nf].fd = u->pfd; fds[nf].events = POLLIN; nf++; }
		rc = poll(fds, (nfds_t)nf, u->exited ? 20 : (u->pfd >= 0 ? 100 : npipes ? 100 : 5));
		run_pipes(u, fds, npipes, rc);
		if (!u->exited)
			run_signals(L, u);
	}
	if (u->pfd >= 0)
		close(u->pfd);
}

static int proc_run(lua_State *L)
{
	const char **argv, **envp;
	const char *cwd;
	double timeout;
	int capture;
	lua_Integer max_output;
	struct spawn_req r;
	struct run u;

	luaL_checktype(L, 1, LUA_TTABLE);
	cork_check_options(L, 2, run_opts);
	lua_settop(L, 2);
	memset(&u, 0, sizeof u);
	argv = check_argv(L, 1);                    /* 3 */
	envp = build_env(L, 2);                     /* 4, 5 */
	cwd = cork_opt_string(L, 2, "cwd", NULL);
	timeout = cork_opt_number(L, 2, "timeout", 0);
	u.grace = cork_opt_number(L, 2, "grace", 5);
	capture = cork_opt_boolean(L, 2, "capture", 1);
	u.interactive = cork_opt_boolean(L, 2, "interactive", 0);
	max_output = cork_opt_integer(L, 2, "max_output", DEFAULT_MAX_OUTPUT);
	luaL_argcheck(L, timeout >= 0 && u.grace >= 0 && max_output >= 0, 2, "negative timeout, grace or max_output");
	u.in_data = cork_opt_lstring(L, 2, "stdin", NULL, &u.in_len);
	if (u.interactive)
		capture = 0;
	u.bo = new_outbuf(L, (size_t)max_output);   /* 6 */
	u.be = new_outbuf(L, (size_t)max_output);   /* 7 */
	cork_checkpoint(L);

	memset(&r, 0, sizeof r);
	r.argv = argv;
	r.envp = envp;
	r.cwd = cwd;
	r.new_pgrp = u.new_pgrp = !u.interactive;
	r.fd_in = u.interactive ? -2 : -1;
	r.fd_out = r.fd_err = capture ? -1 : -2;
	u.pin[0] = u.pin[1] = u.pout[0] = u.pout[1] = u.perr[0] = u.perr[1] = u.pfd = -1;
	run_start(L, &u, &r, capture);
	if (timeout > 0)
		u.deadline = cork_now() + timeout;
	run_wait(L, &u);
	if (u.interrupted)
		cork_checkpoint(L);
	if (u.interactive && cork_interrupt_pending(L) && cork_interrupt_signal(L) == SIGINT)
		cork_clear_interrupt(L);

	lua_createtable(L, 0, 7);
	push_status(L, u.st);
	/* what the child (and the children it waited for) used */
	lua_createtable(L, 0, 3);
	lua_pushnumber(L, (double)u.ru.ru_utime.tv_sec + (double)u.ru.ru_utime.tv_usec / 1e6);
	lua_setfield(L, -2, "user");
	lua_pushnumber(L, (double)u.ru.ru_stime.tv_sec + (double)u.ru.ru_stime.tv_usec / 1e6);
	lua_setfield(L, -2, "system");
	lua_pushinteger(L, (lua_Integer)u.ru.ru_maxrss);
	lua_setfield(L, -2, "max_rss");
	lua_setfield(L, -2, "rusage");
	lua_pushlstring(L, u.bo->data ? u.bo->data : "", u.bo->len);
	lua_setfield(L, -2, "stdout");
	lua_pushlstring(L, u.be->data ? u.be->data : "", u.be->len);
	lua_setfield(L, -2, "stderr");
	lua_pushboolean(L, u.timed_out);
	lua_setfield(L, -2, "timed_out");
	if (u.bo->truncated || u.be->truncated) {
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, "truncated");
	}
	return 1;
}

/* ---- spawn: a long-running child ------------------------------------ */

struct process {
	pid_t pid;        /* 0: reaped or never started */
	int pgrp;
	int status;       /* wait status once reaped */
	int reaped;
	int released;     /* p:release(): close/__gc leave the child alone */
};

/* ---- readers: lines from a pipe, never blocking past a timeout ------- */

struct reader {
	int fd;           /* -1: closed */
	int owned;        /* close(fd) at close (not for cork's own stdin) */
	int eof;
	int discarding;   /* dropping the rest of an over-long line */
	char *buf;
	size_t off, len, cap;   /* unread bytes are buf[off .. len) */
};

static struct reader *new_reader(lua_State *L)
{
	struct reader *r = lua_newuserdatauv(L, sizeof *r, 0);
	memset(r, 0, sizeof *r);
	r->fd = -1;
	luaL_setmetatable(L, READER_MT);
	return r;
}

static struct reader *check_reader(lua_State *L, int idx)
{
	struct reader *r = luaL_checkudata(L, idx, READER_MT);
	if (r->fd < 0)
		luaL_argerror(L, idx, "reader is closed");
	return r;
}

static int reader_append(struct reader *r, const char *p, size_t n)
{
	if (r->discarding) {
		const char *nl = memchr(p, '\n', n);
		if (!nl)
			return 0;
		r->discarding = 0;
		n -= (size_t)(nl + 1 - p);
		p = nl + 1;
	}
	if (r->off > 0 && (r->off == r->len || r->off > r->cap / 2)) {
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
	}
	if (r->len + n > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		char *d;
		while (cap < r->len + n)
			cap *= 2;
		d = realloc(r->buf, cap);
		if (!d)
			return ENOMEM;
		r->buf = d;
		r->cap = cap;
	}
	if (n)
		memcpy(r->buf + r->len, p, n);
	r->len += n;
	return 0;
}

/* One read() of what the pipe holds (call when poll says readable).
 * Returns 0, or an errno for a read error or no memory. */
static int reader_fill(struct reader *r)
{
	char tmp[65536];
	ssize_t n;
	if (r->fd < 0 || r->eof)
		return 0;
	n = read(r->fd, tmp, sizeof tmp);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : errno;
	if (n == 0) {
		r->eof = 1;
		return 0;
	}
	return reader_append(r, tmp, (size_t)n);
}

/* A line is complete, the line is over-long, or the pipe is at its end. */
static int reader_ready(const struct reader *r)
{
	size_t avail = r->len - r->off;
	return r->eof || avail > MAX_LINE || (avail && memchr(r->buf + r->off, '\n', avail));
}

/* Push the next line (without its newline), or nil and why: "timeout"
 * (no complete line yet), "eof", "too_long" (the line was dropped). */
static int reader_push_line(lua_State *L, struct reader *r)
{
	size_t avail = r->len - r->off;
	const char *p = r->buf ? r->buf + r->off : NULL;
	const char *nl = avail ? memchr(p, '\n', avail) : NULL;
	if (nl) {
		lua_pushlstring(L, p, (size_t)(nl - p));
		r->off += (size_t)(nl - p) + 1;
		return 1;
	}
	lua_pushnil(L);
	if (avail > MAX_LINE) {
		r->off = r->len = 0;
		r->discarding = 1;
		lua_pushliteral(L, "too_long");
	} else if (r->eof && avail) {
		lua_pop(L, 1);
		lua_pushlstring(L, p, avail);   /* a last line without a newline */
		r->off = r->len = 0;
		return 1;
	} else {
		lua_pushstring(L, r->eof ? "eof" : "timeout");
	}
	return 2;
}

/* Wait until one of the n readers is ready or `timeout` seconds pass
 * (< 0: no limit), reading what arrives. Raises "interrupted" at a pending
 * interrupt, "io" on a read error. fds has room for n entries. */
static void readers_wait(lua_State *L, struct reader **rs, struct pollfd *fds, int *idx,
                         int n, double timeout)
{
	double end = timeout >= 0 ? cork_now() + timeout : 0;
	for (;;) {
		double left = timeout >= 0 ? end - cork_now() : 0.1;
		int nf = 0, rc, i;
		for (i = 0; i < n; i++)
			if (reader_ready(rs[i]))
				return;
		for (i = 0; i < n; i++) {
			if (rs[i]->fd >= 0 && !rs[i]->eof) {
				fds[nf].fd = rs[i]->fd;
				fds[nf].events = POLLIN;
				fds[nf].revents = 0;
				idx[nf++] = i;
			}
		}
		if (left < 0)
			left = 0;
		rc = poll(nf ? fds : NULL, (nfds_t)nf, left >= 0.1 ? 100 : (int)(left * 1000 + 0.999));
		if (rc < 0 && errno != EINTR)
			cork_raise(L, "io", "poll: %s", strerror(errno));
		for (i = 0; rc > 0 && i < nf; i++) {
			int err;
			if (!fds[i].revents)
				continue;
			err = reader_fill(rs[idx[i]]);
			if (err)
				cork_raise(L, "io", "reading a pipe: %s", strerror(err));
		}
		cork_checkpoint(L);
		if (timeout >= 0 && cork_now() >= end)
			return;
	}
}

/* r:read_line([timeout]) -> line | nil, "timeout" | nil, "eof" | nil, "too_long" */
static int reader_read_line(lua_State *L)
{
	struct reader *r = check_reader(L, 1);
	double timeout = luaL_optnumber(L, 2, -1);
	struct pollfd fd;
	int idx;
	if (!reader_ready(r))
		readers_wait(L, &r, &fd, &idx, 1, timeout);
	return reader_push_line(L, r);
}

/* cork.proc.poll(readers[, timeout]) -> { ready readers, in the given order } */
static int proc_poll(lua_State *L)
{
	lua_Integer n, i;
	double timeout;
	struct reader **rs;
	struct pollfd *fds;
	int *idx;
	luaL_checktype(L, 1, LUA_TTABLE);
	timeout = luaL_optnumber(L, 2, -1);
	n = luaL_len(L, 1);
	luaL_argcheck(L, n <= 4096, 1, "too many readers");
	lua_settop(L, 2);
	for (i = 1; i <= n; i++) {
		struct reader *r;
		lua_rawgeti(L, 1, i);
		r = luaL_testudata(L, -1, READER_MT);
		if (!r || r->fd < 0)
			luaL_argerror(L, 1, lua_pushfstring(L, "item %d is not an open reader", (int)i));
		lua_pop(L, 1);
	}
	/* one block for the three arrays, collected even if we raise */
	rs = lua_newuserdatauv(L, (size_t)(n ? n : 1) * (sizeof *rs + sizeof *fds + sizeof *idx), 0);
	fds = (struct pollfd *)(rs + (n ? n : 1));
	idx = (int *)(fds + (n ? n : 1));
	for (i = 1; i <= n; i++) {
		lua_rawgeti(L, 1, i);
		rs[i - 1] = lua_touserdata(L, -1);   /* anchored by the table */
		lua_pop(L, 1);
	}
	readers_wait(L, rs, fds, idx, (int)n, timeout);
	lua_newtable(L);
	for (i = 1; i <= n; i++) {
		if (reader_ready(rs[i - 1])) {
			lua_rawgeti(L, 1, i);
			lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
		}
	}
	return 1;
}

#define STDIN_KEY "cork.proc.stdin"

/* cork.proc.stdin() -> the Reader over cork's own stdin (one per runtime). */
static int proc_stdin(lua_State *L)
{
	struct reader *r;
	if (lua_getfield(L, LUA_REGISTRYINDEX, STDIN_KEY) == LUA_TUSERDATA) {
		r = lua_touserdata(L, -1);
		if (r->fd >= 0)
			return 1;
	}
	lua_pop(L, 1);
	r = new_reader(L);
	r->fd = 0;
	lua_pushvalue(L, -1);
	lua_setfield(L, LUA_REGISTRYINDEX, STDIN_KEY);
	return 1;
}

static int reader_close(lua_State *L)
{
	struct reader *r = luaL_checkudata(L, 1, READER_MT);
	if (r->fd >= 0 && r->owned)
		close(r->fd);
	r->fd = -1;
	free(r->buf);
	r->buf = NULL;
	r->off = r->len = r->cap = 0;
	return 0;
}

static int reader_tostring(lua_State *L)
{
	struct reader *r = luaL_checkudata(L, 1, READER_MT);
	if (r->fd < 0)
		lua_pushliteral(L, "cork.proc.Reader (closed)");
	else
		lua_pushfstring(L, "cork.proc.Reader(fd %d%s)", r->fd, r->eof ? ", eof" : "");
	return 1;
}

static struct process *check_process(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, PROCESS_MT);
}

static int open_target(lua_State *L, int opts, const char *key, int def, int flags)
{
	int fd;
	const char *v = cork_opt_string(L, opts, key, NULL);
	if (!v)
		return def;
	if (strcmp(v, "inherit") == 0)
		return -2;
	if (strcmp(v, "null") == 0)
		return -1;
	if (strcmp(v, "pipe") == 0 && strcmp(key, "stdin") != 0)
		return FD_PIPE;
	fd = open(v, flags | O_CLOEXEC, 0600);
	if (fd < 0)
		return cork_raise(L, "io", "cannot open %s for %s: %s", v, key, strerror(errno));
	return fd;
}

/* A pipe for a child's stdout or stderr ("pipe"): the write end goes to
 * the child, the read end to the (closed) reader at uservalue `slot`. */
static int pipe_for(struct reader *rd, int *child_fd)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return errno;
	rd->fd = fds[0];
	rd->owned = 1;
	*child_fd = fds[1];
	return 0;
}

static int proc_spawn(lua_State *L)
{
	const char **argv, **envp;
	struct spawn_req r;
	struct process *p;
	struct reader *rd_out = NULL, *rd_err = NULL;
	int interactive, e = 0;
	luaL_checktype(L, 1, LUA_TTABLE);
	cork_check_options(L, 2, spawn_opts);
	lua_settop(L, 2);
	argv = check_argv(L, 1);                     /* 3 */
	envp = build_env(L, 2);                      /* 4, 5 */
	interactive = cork_opt_boolean(L, 2, "interactive", 0);
	memset(&r, 0, sizeof r);
	r.argv = argv;
	r.envp = envp;
	r.cwd = cork_opt_string(L, 2, "cwd", NULL);
	r.new_pgrp = !interactive;
	p = lua_newuserdatauv(L, sizeof *p, 2);     /* 6; uservalues: stdout, stderr readers */
	memset(p, 0, sizeof *p);
	luaL_setmetatable(L, PROCESS_MT);
	cork_checkpoint(L);
	r.fd_in = open_target(L, 2, "stdin", interactive ? -2 : -1, O_RDONLY);
	r.fd_out = open_target(L, 2, "stdout", -2, O_WRONLY | O_CREAT | O_APPEND);
	r.fd_err = open_target(L, 2, "stderr", -2, O_WRONLY | O_CREAT | O_APPEND);
	if (r.fd_out == FD_PIPE) {
		rd_out = new_reader(L);
		lua_setiuservalue(L, 6, 1);
	}
	if (r.fd_err == FD_PIPE) {
		rd_err = new_reader(L);
		lua_setiuservalue(L, 6, 2);
	}
	if ((rd_out && (e = pipe_for(rd_out, &r.fd_out)) != 0) ||
	    (rd_err && (e = pipe_for(rd_err, &r.fd_err)) != 0)) {
		if (r.fd_in >= 0) close(r.fd_in);
		if (r.fd_out >= 0) close(r.fd_out);
		if (r.fd_err >= 0) close(r.fd_err);
		return cork_raise(L, "io", "cannot create pipes: %s", strerror(e));
	}
	p->pid = spawn_child(&r);
	e = errno;
	if (r.fd_in >= 0) close(r.fd_in);
	if (r.fd_out >= 0) close(r.fd_out);
	if (r.fd_err >= 0) close(r.fd_err);
	if (p->pid < 0) {
		p->pid = 0;
		return raise_spawn_error(L, argv[0], r.cwd, e);   /* the readers' __gc close them */
	}
	p->pgrp = r.new_pgrp;
	lua_settop(L, 6);
	return 1;
}

static int reap(struct process *p, int flags)
{
	if (p->reaped || p->pid <= 0)
		return 1;
	if (waitpid(p->pid, &p->status, flags) == p->pid) {
		p->reaped = 1;
		return 1;
	}
	return 0;
}

static int process_pid(lua_State *L)
{
	struct process *p = check_process(L, 1);
	lua_pushinteger(L, p->pid);
	return 1;
}

static int process_running(lua_State *L)
{
	struct process *p = check_process(L, 1);
	lua_pushboolean(L, p->pid > 0 && !reap(p, WNOHANG));
	return 1;
}

/* p:wait([timeout]) -> { status, signal } or nil, "timeout" */
static int process_wait(lua_State *L)
{
	struct process *p = check_process(L, 1);
	double timeout = luaL_optnumber(L, 2, -1), end = cork_now() + timeout;
	if (p->pid <= 0)
		return luaL_error(L, "process was never started");
	while (!reap(p, WNOHANG)) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		if (timeout >= 0 && cork_now() >= end) {
			lua_pushnil(L);
			lua_pushliteral(L, "timeout");
			return 2;
		}
		cork_checkpoint(L);
		nanosleep(&ts, NULL);
	}
	lua_createtable(L, 0, 2);
	push_status(L, p->status);
	return 1;
}

static int signal_number(lua_State *L, int idx, int def)
{
	static const struct { const char *name; int sig; } sigs[] = {
		{ "TERM", SIGTERM }, { "KILL", SIGKILL }, { "INT", SIGINT }, { "HUP", SIGHUP },
		{ "QUIT", SIGQUIT }, { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "STOP", SIGSTOP },
		{ "CONT", SIGCONT },
	};
	const char *s;
	if (lua_isnoneornil(L, idx))
		return def;
	if (lua_isinteger(L, idx))
		return (int)lua_tointeger(L, idx);
	s = luaL_checkstring(L, idx);
	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (strcmp(sigs[i].name, s) == 0)
			return sigs[i].sig;
	return luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", s));
}

/* p:kill([signal]) -> true, or false when already gone */
static int process_kill(lua_State *L)
{
	struct process *p = check_process(L, 1);
	int sig = signal_number(L, 2, SIGTERM);
	if (p->pid <= 0 || reap(p, WNOHANG)) {
		lua_pushboolean(L, 0);
		return 1;
	}
	kill_child(p->pid, p->pgrp, sig);
	lua_pushboolean(L, 1);
	return 1;
}

/* p:stdout(), p:stderr() -> the Reader of a "pipe" */
static int process_reader(lua_State *L, int slot, const char *name)
{
	check_process(L, 1);
	if (lua_getiuservalue(L, 1, slot) != LUA_TUSERDATA)
		return luaL_error(L, "%s was not spawned with \"pipe\"", name);
	return 1;
}

static int process_stdout(lua_State *L) { return process_reader(L, 1, "stdout"); }
static int process_stderr(lua_State *L) { return process_reader(L, 2, "stderr"); }

/* p:release(): stop owning the child; close and __gc no longer signal or
 * wait for it (it outlives cork, and is reaped by whoever adopts it). */
static int process_release(lua_State *L)
{
	struct process *p = check_process(L, 1);
	p->released = 1;
	return 0;
}

/* p:close([grace]): TERM, wait up to grace seconds (default 5), KILL, reap. */
static int process_close(lua_State *L)
{
	struct process *p = check_process(L, 1);
	double grace = lua_isnumber(L, 2) ? lua_tonumber(L, 2) : 5, end;
	if (p->released || p->pid <= 0 || reap(p, WNOHANG))
		return 0;
	kill_child(p->pid, p->pgrp, SIGTERM);
	end = cork_now() + grace;
	while (!reap(p, WNOHANG)) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		if (cork_now() >= end) {
			kill_child(p->pid, p->pgrp, SIGKILL);
			reap(p, 0);
			break;
		}
		nanosleep(&ts, NULL);
	}
	return 0;
}

static int process_gc(lua_State *L)
{
	lua_settop(L, 1);
	lua_pushnumber(L, 1);
	return process_close(L);
}

static int process_tostring(lua_State *L)
{
	struct process *p = check_process(L, 1);
	lua_pushfstring(L, "cork.proc.Process(%d)", (int)p->pid);
	return 1;
}

static const luaL_Reg proc_funcs[] = {
	{"run", proc_run},
	{"spawn", proc_spawn},
	{"stdin", proc_stdin},
	{"poll", proc_poll},
	{NULL, NULL}
};

static const luaL_Reg process_methods[] = {
	{"pid", process_pid},
	{"running", process_running},
	{"wait", process_wait},
	{"kill", process_kill},
	{"close", process_close},
	{"stdout", process_stdout},
	{"stderr", process_stderr},
	{"release", process_release},
	{NULL, NULL}
};

static const luaL_Reg reader_methods[] = {
	{"read_line", reader_read_line},
	{"close", reader_close},
	{NULL, NULL}
};

static const luaL_Reg reader_meta[] = {
	{"__close", reader_close},
	{"__gc", reader_close},
	{"__tostring", reader_tostring},
	{"__index", NULL},
	{NULL, NULL}
};

static const luaL_Reg process_meta[] = {
	{"__close", process_close},
	{"__gc", process_gc},
	{"__tostring", process_tostring},
	{"__index", NULL},
	{NULL, NULL}
};

int luaopen_cork_proc(lua_State *L)
{
	luaL_newmetatable(L, PROCESS_MT);
	luaL_setfuncs(L, process_meta, 0);
	luaL_newlib(L, process_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newmetatable(L, READER_MT);
	luaL_setfuncs(L, reader_meta, 0);
	luaL_newlib(L, reader_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newlib(L, proc_funcs);
	return 1;
}
