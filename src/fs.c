/*
 * fs.c: require "cork.fs": files and directories with explicit modes.
 * Writes apply the mode before the first byte is written, so a 0600 secret
 * is never readable by others, whatever the umask.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"
#include "modules.h"

#define LOCK_MT "cork.fs.Lock"

/* A file mode: a string of octal digits ("0755", "644", "4755"), or an
 * integer no larger than 0777. Lua has no octal literals: `mode = 0755` is
 * the decimal 755 (mode 01363), so an integer above 0777 is refused rather
 * than applied (the special bits need the string form). Misuse: raises. */
static mode_t to_mode(lua_State *L, int idx, mode_t def)
{
	if (lua_isnoneornil(L, idx))
		return def;
	if (lua_type(L, idx) == LUA_TSTRING) {
		size_t len;
		const char *s = lua_tolstring(L, idx, &len);
		lua_Integer m = 0;
		size_t i = 0;
		if (len >= 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'O'))
			i = 2;
		if (len == i || len - i > 8)
			luaL_error(L, "mode \"%s\" is not a file mode: write octal digits, as \"0755\"", s);
		for (; i < len; i++) {
			if (s[i] < '0' || s[i] > '7')
				luaL_error(L, "mode \"%s\" is not a file mode: write octal digits, as \"0755\"", s);
			m = m * 8 + (s[i] - '0');
		}
		if (m > 07777)
			luaL_error(L, "mode \"%s\" is out of range (at most \"07777\")", s);
		return (mode_t)m;
	}
	if (!lua_isinteger(L, idx))
		luaL_error(L, "a file mode is a string of octal digits (\"0755\") or an integer, not %s",
		           luaL_typename(L, idx));
	lua_Integer m = lua_tointeger(L, idx);
	if (m >= 0 && m <= 0777)
		return (mode_t)m;
	char digits[32];
	snprintf(digits, sizeof digits, "%lld", (long long)m);
	if (m > 0 && strspn(digits, "01234567") == strlen(digits))
		luaL_error(L, "mode %s is not a file mode (Lua reads 0%s as the decimal %s): "
		           "write it as a string, \"0%s\"", digits, digits, digits, digits);
	luaL_error(L, "mode %s is out of range (an integer mode is at most 0777, 511; "
	           "write modes as octal strings, \"0755\")", digits);
	return 0;
}

static mode_t check_mode(lua_State *L, int idx, mode_t def)
{
	return to_mode(L, idx, def);
}

/* fs.mode(value) -> integer: the mode cork.fs would apply for `value`. */
static int fs_mode(lua_State *L)
{
	luaL_checkany(L, 1);
	lua_pushinteger(L, (lua_Integer)to_mode(L, 1, 0));
	return 1;
}

/* The `mode` of the option table at idx (a mode as to_mode takes it). */
static mode_t opt_mode(lua_State *L, int idx, mode_t def)
{
	if (!lua_istable(L, idx))
		return def;
	lua_getfield(L, idx, "mode");
	mode_t m = to_mode(L, lua_gettop(L), def);
	lua_pop(L, 1);
	return m;
}

/* mkdir -p; the last component gets exactly `mode` when created. */
static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	struct stat st;
	if (n == 0 || n >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) == 0)
		return chmod(buf, mode);
	if (errno == EEXIST && stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	return -1;
}

/* fs.mkdir(path[, mode=0755]): with parents; fine when it exists. */
static int fs_mkdir(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	mode_t mode = check_mode(L, 2, 0755);
	if (mkdir_p(path, mode) != 0)
		return cork_raise_errno(L, errno, "cannot create directory", path);
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* fs.write(path, data[, {mode=0644, atomic=true}]) */
static int fs_write(lua_State *L)
{
	static const char *const opts[] = { "mode", "atomic", NULL };
	const char *path = luaL_checkstring(L, 1);
	size_t len;
	const char *data = luaL_checklstring(L, 2, &len);
	mode_t mode = 0644;
	int atomic = 1, fd, err;
	char tmp[PATH_MAX];
	cork_check_options(L, 3, opts);
	mode = opt_mode(L, 3, 0644);
	atomic = cork_opt_boolean(L, 3, "atomic", 1);
	cork_checkpoint(L);
	if (!atomic) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
		if (fd < 0)
			return cork_raise_errno(L, errno, "cannot write", path);
		if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0) {
			err = errno;
			close(fd);
			return cork_raise_errno(L, err, "cannot write", path);
		}
		if (close(fd) != 0)
			return cork_raise_errno(L, errno, "cannot write", path);
		return 0;
	}
	if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp)
		return cork_raise_errno(L, ENAMETOOLONG, "cannot write", path);
	fd = mkostemp(tmp, O_CLOEXEC);          /* created 0600 */
	if (fd < 0)
		return cork_raise_errno(L, errno, "cannot write", path);
	if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		err = errno;
		close(fd);
		unlink(tmp);
		return cork_raise_errno(L, err, "cannot write", path);
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		err = errno;
		unlink(tmp);
		return cork_raise_errno(L, err, "cannot write", path);
	}
	{
		/* make the rename durable */
		char dir[PATH_MAX];
		char *slash;
		snprintf(dir, sizeof dir, "%s", path);
		slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = 0;
		else if (slash)
			*slash = 0;
		else
			strcpy(dir, ".");
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
	}
	return 0;
}

/* fs.append(path, data[, {mode=0600, sync=true}]): one write with O_APPEND
 * (lines from concurrent writers never interleave below PIPE_BUF), then
 * fsync, so a journal line is on disk before the caller goes on. */
static int fs_append(lua_State *L)
{
	static const char *const opts[] = { "mode", "sync", NULL };
	const char *path = luaL_checkstring(L, 1);
	size_t len;
	const char *data = luaL_checklstring(L, 2, &len);
	mode_t mode = 0600;
	int sync = 1, fd, err;
	struct stat st;
	cork_check_options(L, 3, opts);
	mode = opt_mode(L, 3, 0600);
	sync = cork_opt_boolean(L, 3, "sync", 1);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode);
	if (fd < 0)
		return cork_raise_errno(L, errno, "cannot append to", path);
	if ((fstat(fd, &st) == 0 && (st.st_mode & 07777) != mode && fchmod(fd, mode) != 0) ||
	    write_all(fd, data, len) != 0 || (sync && fsync(fd) != 0)) {
		err = errno;
		close(fd);
		return cork_raise_errno(L, err, "cannot append to", path);
	}
	close(fd);
	return 0;
}

static const char *const read_opts[] = {"max", "regular", NULL};

/* fs.read(path[, {max, regular}]) -> data. regular: refuse anything but a
 * regular file (a FIFO is opened without blocking and refused, a symlink to
 * /dev/zero is refused), kind "invalid". max: refuse a file larger than max
 * bytes (kind "too_large"), reading at most max + 1. A signal during a read
 * raises "interrupted". */
static int fs_read(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int oi = lua_isnoneornil(L, 2) ? 0 : 2;
	lua_Integer max = -1;
	int regular = 0;
	if (oi) {
		luaL_checktype(L, oi, LUA_TTABLE);
		cork_check_options(L, oi, read_opts);
		lua_getfield(L, oi, "max");
		if (!lua_isnil(L, -1)) {
			max = luaL_checkinteger(L, -1);
			luaL_argcheck(L, max >= 0, oi, "'max' must be >= 0");
		}
		lua_getfield(L, oi, "regular");
		regular = lua_toboolean(L, -1);
		lua_pop(L, 2);
	}
	luaL_Buffer b;
	int fd;
	cork_checkpoint(L);
	fd = open(path, O_RDONLY | O_CLOEXEC | (regular ? O_NONBLOCK : 0));
	if (fd < 0)
		return cork_raise_errno(L, errno, "cannot read", path);
	if (regular) {
		struct stat st;
		if (fstat(fd, &st) != 0) {
			int err = errno;
			close(fd);
			return cork_raise_errno(L, err, "cannot read", path);
		}
		if (!S_ISREG(st.st_mode)) {
			close(fd);
			cork_error_push(L, "invalid", "cannot read %s: not a regular file (%s)", path,
			                S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" :
			                S_ISCHR(st.st_mode) ? "a character device" :
			                S_ISBLK(st.st_mode) ? "a block device" :
			                S_ISSOCK(st.st_mode) ? "a socket" : "not a file");
			lua_pushstring(L, path);
			lua_setfield(L, -2, "path");
			return lua_error(L);
		}
		/* regular: blocking reads again */
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	size_t total = 0;
	luaL_buffinit(L, &b);
	for (;;) {
		char *p = luaL_prepbuffer(&b);
		ssize_t n = read(fd, p, LUAL_BUFFERSIZE);
		if (n < 0 && errno == EINTR) {
			if (cork_interrupt_pending(L)) {
				close(fd);
				cork_checkpoint(L);
			}
			continue;
		}
		if (n < 0) {
			int err = errno;
			close(fd);
			return cork_raise_errno(L, err, "cannot read", path);
		}
		if (n == 0)
			break;
		luaL_addsize(&b, (size_t)n);
		total += (size_t)n;
		if (max >= 0 && total > (size_t)max) {
			close(fd);
			cork_error_push(L, "too_large", "cannot read %s: larger than %d bytes", path, (int)max);
			lua_pushstring(L, path);
			lua_setfield(L, -2, "path");
			lua_pushinteger(L, max);
			lua_setfield(L, -2, "max");
			return lua_error(L);
		}
		if (cork_interrupt_pending(L)) {
			close(fd);
			cork_checkpoint(L);
		}
	}
	close(fd);
	luaL_pushresult(&b);
	return 1;
}

static int fs_exists(lua_State *L)
{
	struct stat st;
	lua_pushboolean(L, lstat(luaL_checkstring(L, 1), &st) == 0);
	return 1;
}

/* fs.stat(path) -> { type, mode, size, mtime, uid, gid } | nil */
static int fs_stat(lua_State *L)
{
	struct stat st;
	const char *t;
	if (lstat(luaL_checkstring(L, 1), &st) != 0) {
		lua_pushnil(L);
		return 1;
	}
	t = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" :
	    S_ISLNK(st.st_mode) ? "link" : S_ISSOCK(st.st_mode) ? "socket" :
	    S_ISFIFO(st.st_mode) ? "fifo" : "other";
	lua_createtable(L, 0, 6);
	lua_pushstring(L, t);
	lua_setfield(L, -2, "type");
	lua_pushinteger(L, st.st_mode & 07777);
	lua_setfield(L, -2, "mode");
	lua_pushinteger(L, (lua_Integer)st.st_size);
	lua_setfield(L, -2, "size");
	lua_pushinteger(L, (lua_Integer)st.st_mtime);
	lua_setfield(L, -2, "mtime");
	lua_pushinteger(L, (lua_Integer)st.st_uid);
	lua_setfield(L, -2, "uid");
	lua_pushinteger(L, (lua_Integer)st.st_gid);
	lua_setfield(L, -2, "gid");
	return 1;
}

static int remove_tree(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int rc = 0;
	if (lstat(path, &st) != 0)
		return -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char sub[PATH_MAX];
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub) {
			errno = ENAMETOOLONG;
			rc = -1;
			break;
		}
		if (remove_tree(sub) != 0) {
			rc = -1;
			break;
		}
	}
	closedir(d);
	return rc == 0 ? rmdir(path) : rc;
}

/* fs.remove(path[, {recursive=false, missing_ok=false}]) */
static int fs_remove(lua_State *L)
{
	static const char *const opts[] = { "recursive", "missing_ok", NULL };
	const char *path = luaL_checkstring(L, 1);
	int recursive = 0, missing_ok = 0, rc;
	struct stat st;
	cork_check_options(L, 2, opts);
	recursive = cork_opt_boolean(L, 2, "recursive", 0);
	missing_ok = cork_opt_boolean(L, 2, "missing_ok", 0);
	luaL_argcheck(L, strcmp(path, "/") != 0 && *path, 1, "refusing to remove '/' or ''");
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT && missing_ok)
			return 0;
		return cork_raise_errno(L, errno, "cannot remove", path);
	}
	if (S_ISDIR(st.st_mode))
		rc = recursive ? remove_tree(path) : rmdir(path);
	else
		rc = unlink(path);
	if (rc != 0)
		return cork_raise_errno(L, errno, "cannot remove", path);
	return 0;
}

/* fs.tempdir([prefix]) -> path (mode 0700, under $TMPDIR or /tmp) */
static int fs_tempdir(lua_State *L)
{
	const char *prefix = luaL_optstring(L, 1, "cork");
	const char *base = getenv("TMPDIR");
	char path[PATH_MAX];
	luaL_argcheck(L, !strchr(prefix, '/'), 1, "prefix must not contain '/'");
	if (!base || !*base)
		base = "/tmp";
	if (snprintf(path, sizeof path, "%s/%s.XXXXXX", base, prefix) >= (int)sizeof path)
		return cork_raise_errno(L, ENAMETOOLONG, "cannot create temporary directory in", base);
	if (!mkdtemp(path))
		return cork_raise_errno(L, errno, "cannot create temporary directory in", base);
	lua_pushstring(L, path);
	return 1;
}

static int fs_expand_tilde(lua_State *L)
{
	const char *p = luaL_checkstring(L, 1);
	const char *home = getenv("HOME");
	if (p[0] == '~' && (p[1] == '/' || p[1] == 0) && home)
		lua_pushfstring(L, "%s%s", home, p + 1);
	else
		lua_pushvalue(L, 1);
	return 1;
}

/* fs.join(a, b, ...): "a/b"; an absolute later part restarts the path. */
static int fs_join(lua_State *L)
{
	int n = lua_gettop(L);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		size_t len;
		const char *s = luaL_checklstring(L, i, &len);
		if (len == 0)
			continue;
		if (s[0] == '/') {
			luaL_buffsub(&b, (int)luaL_bufflen(&b));
		} else if (luaL_bufflen(&b) > 0 && luaL_buffaddr(&b)[luaL_bufflen(&b) - 1] != '/') {
			luaL_addchar(&b, '/');
		}
		luaL_addlstring(&b, s, len);
	}
	luaL_pushresult(&b);
	return 1;
}


/* fs.list(dir) -> sorted names (no "." or "..") */
static int fs_list(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;
	if (!d)
		return cork_raise_errno(L, errno, "cannot list", path);
	lua_newtable(L);
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		lua_pushstring(L, e->d_name);
		lua_rawseti(L, -2, ++n);
	}
	closedir(d);
	/* sort with Lua's table.sort for simplicity of ownership */
	lua_getglobal(L, "table");
	if (lua_istable(L, -1)) {
		lua_getfield(L, -1, "sort");
		lua_pushvalue(L, -3);
		lua_call(L, 1, 0);
	}
	lua_pop(L, 1);
	return 1;
}

/* ---- locks ----------------------------------------------------------- */

struct lock {
	int fd;   /* -1: released */
};

static struct lock *check_lock(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, LOCK_MT);
}

/* fs.lock(path[, {timeout=seconds, shared=false}]) -> Lock.
 * flock on path (created 0600). timeout nil: wait forever (interruptible);
 * 0: try once. Raises kind "timeout" when not acquired in time. */
static int fs_lock(lua_State *L)
{
	static const char *const opts[] = { "timeout", "shared", NULL };
	const char *path = luaL_checkstring(L, 1);
	double timeout = -1, end;
	int shared = 0;
	struct lock *lk;
	cork_check_options(L, 2, opts);
	timeout = cork_opt_number(L, 2, "timeout", -1);
	shared = cork_opt_boolean(L, 2, "shared", 0);
	lk = lua_newuserdatauv(L, sizeof *lk, 0);
	lk->fd = -1;
	luaL_setmetatable(L, LOCK_MT);
	cork_checkpoint(L);
	lk->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lk->fd < 0)
		return cork_raise_errno(L, errno, "cannot open lock file", path);
	end = cork_now() + timeout;
	while (flock(lk->fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		if (errno != EWOULDBLOCK && errno != EINTR) {
			int err = errno;
			close(lk->fd);
			lk->fd = -1;
			return cork_raise_errno(L, err, "cannot lock", path);
		}
		if (timeout >= 0 && cork_now() >= end) {
			close(lk->fd);
			lk->fd = -1;
			cork_error_push(L, "timeout", "timed out after %.1fs waiting for lock %s", timeout, path);
			lua_pushstring(L, path);
			lua_setfield(L, -2, "path");
			return lua_error(L);
		}
		if (cork_interrupt_pending(L)) {
			close(lk->fd);
			lk->fd = -1;
			cork_checkpoint(L);
		}
		nanosleep(&ts, NULL);
	}
	return 1;
}

static int lock_unlock(lua_State *L)
{
	struct lock *lk = check_lock(L, 1);
	if (lk->fd >= 0) {
		flock(lk->fd, LOCK_UN);
		close(lk->fd);
		lk->fd = -1;
	}
	return 0;
}

static int lock_held(lua_State *L)
{
	lua_pushboolean(L, check_lock(L, 1)->fd >= 0);
	return 1;
}

static int lock_tostring(lua_State *L)
{
	lua_pushfstring(L, "cork.fs.Lock(%s)", check_lock(L, 1)->fd >= 0 ? "held" : "released");
	return 1;
}

static const luaL_Reg fs_funcs[] = {
	{"mkdir", fs_mkdir},
	{"write", fs_write},
	{"read", fs_read},
	{"append", fs_append},
	{"exists", fs_exists},
	{"stat", fs_stat},
	{"remove", fs_remove},
	{"tempdir", fs_tempdir},
	{"expand_tilde", fs_expand_tilde},
	{"join", fs_join},
	{"list", fs_list},
	{"lock", fs_lock},
	{"mode", fs_mode},
	{NULL, NULL}
};

static const luaL_Reg lock_methods[] = {
	{"unlock", lock_unlock},
	{"held", lock_held},
	{NULL, NULL}
};

static const luaL_Reg lock_meta[] = {
	{"__close", lock_unlock},
	{"__gc", lock_unlock},
	{"__tostring", lock_tostring},
	{"__index", NULL},
	{NULL, NULL}
};

int luaopen_cork_fs(lua_State *L)
{
	luaL_newmetatable(L, LOCK_MT);
	luaL_setfuncs(L, lock_meta, 0);
	luaL_newlib(L, lock_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newlib(L, fs_funcs);
	return 1;
}
