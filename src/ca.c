/*
 * ca.c: require "cork.ca", certificate authorities and leaf certificates
 * (OpenSSL 3 libcrypto).
 *
 *   mint{dir=, name=, common_name=, key=, days=, mitmproxy=, overwrite=}
 *       -> {cert=, key=, pem=, fingerprint=, dir=, name=}
 *   issue{ca=, dir=, name=, common_name=, dns=, ips=, days=, key=, overwrite=}
 *       -> {cert=, key=, fingerprint=, dir=, name=}
 *   fingerprint(path) -> "sha256 hex" of the first certificate in path
 *   info(path) -> {subject=, issuer=, not_before=, not_after=, is_ca=, serial=,
 *                  dns=, ips=, fingerprint=}
 *
 * Files: NAME.pem (certificate, 0644) and NAME-key.pem (PKCS#8 private key,
 * 0600) in dir; with mitmproxy=true also mitmproxy-ca.pem (key + certificate,
 * 0600) and mitmproxy-ca-cert.pem (0644), the layout mitmproxy reads from its
 * confdir. Directories cork creates are 0700. Every file is created with its
 * final mode (open(O_CREAT|O_EXCL, mode) then fchmod, whatever the umask),
 * written to a temporary name and linked/renamed into place, so a key is
 * never readable by others, not even briefly, and never half-written.
 *
 * Key material never enters the Lua state: PEM text lives in OpenSSL secure
 * memory BIOs and goes straight to the file descriptor. Error messages name
 * files, never their contents.
 *
 * Error kinds: "usage" (bad option value), "exists" (target file exists and
 * overwrite is not set), "not_found" (input file missing), "permission",
 * "invalid" (not a PEM certificate/key, key does not match, not a CA, key is
 * encrypted), "io", "crypto" (OpenSSL failed).
 *
 * OpenSSL objects are held in a "box" userdata whose __gc frees them, so a
 * Lua error between allocation and free cannot leak them.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/opensslv.h>

#include "runtime.h"
#include "modules.h"

/* ---- libcrypto, loaded on first use ------------------------------------- */

/* Not linked: loaded (dlopen of libcrypto.so.3, Debian's libssl3) by the
 * first mint, issue, fingerprint or info, so a process that makes no
 * certificate never maps OpenSSL's largest library. Every function this file
 * calls is reached through a pointer of its own declared type. */
#define CA_LIBCRYPTO "libcrypto.so." CA_STR(OPENSSL_VERSION_MAJOR)
#define CA_STR_(x) #x
#define CA_STR(x) CA_STR_(x)
#define CA_FUNCS(X) \
	X(ASN1_IA5STRING_free) \
	X(ASN1_IA5STRING_new) \
	X(ASN1_OCTET_STRING_free) \
	X(ASN1_STRING_get0_data) \
	X(ASN1_STRING_length) \
	X(ASN1_STRING_set) \
	X(ASN1_TIME_to_tm) \
	X(BIO_ctrl) \
	X(BIO_free) \
	X(BIO_new) \
	X(BIO_new_fp) \
	X(BIO_s_mem) \
	X(BIO_s_secmem) \
	X(BN_bin2bn) \
	X(BN_free) \
	X(BN_to_ASN1_INTEGER) \
	X(ERR_clear_error) \
	X(ERR_peek_last_error) \
	X(ERR_reason_error_string) \
	X(EVP_PKEY_Q_keygen) \
	X(EVP_PKEY_free) \
	X(EVP_sha256) \
	X(GENERAL_NAMES_free) \
	X(GENERAL_NAMES_new) \
	X(GENERAL_NAME_free) \
	X(GENERAL_NAME_new) \
	X(GENERAL_NAME_set0_value) \
	X(OPENSSL_sk_num) \
	X(OPENSSL_sk_push) \
	X(OPENSSL_sk_value) \
	X(PEM_read_bio_PrivateKey) \
	X(PEM_read_bio_X509) \
	X(PEM_write_bio_PrivateKey) \
	X(PEM_write_bio_X509) \
	X(RAND_bytes) \
	X(X509V3_EXT_conf_nid) \
	X(X509V3_set_ctx) \
	X(X509V3_set_issuer_pkey) \
	X(X509_EXTENSION_free) \
	X(X509_NAME_add_entry_by_txt) \
	X(X509_NAME_print_ex) \
	X(X509_add1_ext_i2d) \
	X(X509_add_ext) \
	X(X509_check_private_key) \
	X(X509_digest) \
	X(X509_free) \
	X(X509_get0_notAfter) \
	X(X509_get0_notBefore) \
	X(X509_get0_serialNumber) \
	X(X509_get_ext_d2i) \
	X(X509_get_extension_flags) \
	X(X509_get_issuer_name) \
	X(X509_get_serialNumber) \
	X(X509_get_subject_name) \
	X(X509_getm_notAfter) \
	X(X509_getm_notBefore) \
	X(X509_gmtime_adj) \
	X(X509_new) \
	X(X509_set_issuer_name) \
	X(X509_set_pubkey) \
	X(X509_set_version) \
	X(X509_sign) \
	X(X509_time_adj_ex) \
	X(a2i_IPADDRESS)
#define CA_DECLARE(f) static __typeof__(&f) ca_##f;
CA_FUNCS(CA_DECLARE)
#undef CA_DECLARE
#define ASN1_IA5STRING_free (*ca_ASN1_IA5STRING_free)
#define ASN1_IA5STRING_new (*ca_ASN1_IA5STRING_new)
#define ASN1_OCTET_STRING_free (*ca_ASN1_OCTET_STRING_free)
#define ASN1_STRING_get0_data (*ca_ASN1_STRING_get0_data)
#define ASN1_STRING_length (*ca_ASN1_STRING_length)
#define ASN1_STRING_set (*ca_ASN1_STRING_set)
#define ASN1_TIME_to_tm (*ca_ASN1_TIME_to_tm)
#define BIO_ctrl (*ca_BIO_ctrl)
#define BIO_free (*ca_BIO_free)
#define BIO_new (*ca_BIO_new)
#define BIO_new_fp (*ca_BIO_new_fp)
#define BIO_s_mem (*ca_BIO_s_mem)
#define BIO_s_secmem (*ca_BIO_s_secmem)
#define BN_bin2bn (*ca_BN_bin2bn)
#define BN_free (*ca_BN_free)
#define BN_to_ASN1_INTEGER (*ca_BN_to_ASN1_INTEGER)
#define ERR_clear_error (*ca_ERR_clear_error)
#define ERR_peek_last_error (*ca_ERR_peek_last_error)
#define ERR_reason_error_string (*ca_ERR_reason_error_string)
#define EVP_PKEY_Q_keygen (*ca_EVP_PKEY_Q_keygen)
#define EVP_PKEY_free (*ca_EVP_PKEY_free)
#define EVP_sha256 (*ca_EVP_sha256)
#define GENERAL_NAMES_free (*ca_GENERAL_NAMES_free)
#define GENERAL_NAMES_new (*ca_GENERAL_NAMES_new)
#define GENERAL_NAME_free (*ca_GENERAL_NAME_free)
#define GENERAL_NAME_new (*ca_GENERAL_NAME_new)
#define GENERAL_NAME_set0_value (*ca_GENERAL_NAME_set0_value)
#define OPENSSL_sk_num (*ca_OPENSSL_sk_num)
#define OPENSSL_sk_push (*ca_OPENSSL_sk_push)
#define OPENSSL_sk_value (*ca_OPENSSL_sk_value)
#define PEM_read_bio_PrivateKey (*ca_PEM_read_bio_PrivateKey)
#define PEM_read_bio_X509 (*ca_PEM_read_bio_X509)
#define PEM_write_bio_PrivateKey (*ca_PEM_write_bio_PrivateKey)
#define PEM_write_bio_X509 (*ca_PEM_write_bio_X509)
#define RAND_bytes (*ca_RAND_bytes)
#define X509V3_EXT_conf_nid (*ca_X509V3_EXT_conf_nid)
#define X509V3_set_ctx (*ca_X509V3_set_ctx)
#define X509V3_set_issuer_pkey (*ca_X509V3_set_issuer_pkey)
#define X509_EXTENSION_free (*ca_X509_EXTENSION_free)
#define X509_NAME_add_entry_by_txt (*ca_X509_NAME_add_entry_by_txt)
#define X509_NAME_print_ex (*ca_X509_NAME_print_ex)
#define X509_add1_ext_i2d (*ca_X509_add1_ext_i2d)
#define X509_add_ext (*ca_X509_add_ext)
#define X509_check_private_key (*ca_X509_check_private_key)
#define X509_digest (*ca_X509_digest)
#define X509_free (*ca_X509_free)
#define X509_get0_notAfter (*ca_X509_get0_notAfter)
#define X509_get0_notBefore (*ca_X509_get0_notBefore)
#define X509_get0_serialNumber (*ca_X509_get0_serialNumber)
#define X509_get_ext_d2i (*ca_X509_get_ext_d2i)
#define X509_get_extension_flags (*ca_X509_get_extension_flags)
#define X509_get_issuer_name (*ca_X509_get_issuer_name)
#define X509_get_serialNumber (*ca_X509_get_serialNumber)
#define X509_get_subject_name (*ca_X509_get_subject_name)
#define X509_getm_notAfter (*ca_X509_getm_notAfter)
#define X509_getm_notBefore (*ca_X509_getm_notBefore)
#define X509_gmtime_adj (*ca_X509_gmtime_adj)
#define X509_new (*ca_X509_new)
#define X509_set_issuer_name (*ca_X509_set_issuer_name)
#define X509_set_pubkey (*ca_X509_set_pubkey)
#define X509_set_version (*ca_X509_set_version)
#define X509_sign (*ca_X509_sign)
#define X509_time_adj_ex (*ca_X509_time_adj_ex)
#define a2i_IPADDRESS (*ca_a2i_IPADDRESS)

static pthread_once_t ca_once = PTHREAD_ONCE_INIT;
static char ca_err[512];
static int ca_loaded;

static void ca_load_once(void)
{
	void *h = dlopen(CA_LIBCRYPTO, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(ca_err, sizeof ca_err, "%s", e ? e : "dlopen failed");
		return;
	}
	void *f;
#define CA_LOAD(n) \
	if (!(f = dlsym(h, #n))) { \
		snprintf(ca_err, sizeof ca_err, "%s has no %s", CA_LIBCRYPTO, #n); \
		return; \
	} \
	memcpy(&ca_##n, &f, sizeof f);
	CA_FUNCS(CA_LOAD)
#undef CA_LOAD
	ca_loaded = 1;
}

/* Loads libcrypto once per process (thread-safe); kind "not_found" naming
 * the Debian package when it cannot. */
static void ca_load(lua_State *L)
{
	pthread_once(&ca_once, ca_load_once);
	if (!ca_loaded)
		cork_raise(L, "not_found", "cannot load %s, which cork.ca mints certificates with: %s "
		           "(install the Debian package libssl3)", CA_LIBCRYPTO, ca_err);
}

#define CA_BOX "cork.ca.Box"
#define CA_MAX_DAYS 36500
#define CA_MAX_NAMES 256

/* ---- the box: every OpenSSL temporary of one call ------------------------ */

struct ca_box {
	X509 *cert, *ca_cert;
	EVP_PKEY *key, *ca_key;
	BIO *key_pem, *cert_pem, *combined;
	GENERAL_NAMES *sans;
};

static int box_free(lua_State *L)
{
	struct ca_box *b = luaL_checkudata(L, 1, CA_BOX);
	X509_free(b->cert);
	X509_free(b->ca_cert);
	EVP_PKEY_free(b->key);
	EVP_PKEY_free(b->ca_key);
	BIO_free(b->key_pem);
	BIO_free(b->cert_pem);
	BIO_free(b->combined);
	GENERAL_NAMES_free(b->sans);
	memset(b, 0, sizeof *b);
	return 0;
}

static struct ca_box *box_new(lua_State *L)
{
	ca_load(L);
	struct ca_box *b = lua_newuserdatauv(L, sizeof *b, 0);
	memset(b, 0, sizeof *b);
	luaL_setmetatable(L, CA_BOX);
	return b;
}

/* ---- errors ------------------------------------------------------------- */

/* The reason of the most recent OpenSSL error (never key material), and
 * the error queue cleared. */
static const char *ossl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	snprintf(buf, len, "%s", r ? r : "unknown OpenSSL error");
	ERR_clear_error();
	return buf;
}

static int raise_crypto(lua_State *L, const char *what)
{
	char buf[160];
	ossl_reason(buf, sizeof buf);
	return cork_raise(L, "crypto", "%s: %s", what, buf);
}

/* ---- option checking ---------------------------------------------------- */

enum ca_keytype { KEY_EC_P256, KEY_RSA_2048, KEY_RSA_4096 };

/* A string option with a default: "" is a bad value (kind usage). */
static const char *opt_name(lua_State *L, int t, const char *fn, const char *key, const char *def)
{
	const char *s = cork_opt_string(L, t, key, def);
	if (*s == '\0')
		cork_raise(L, "usage", "%s: option '%s' is empty", fn, key);
	return s;
}

static int opt_days(lua_State *L, int t, const char *fn, int def)
{
	lua_Integer d = cork_opt_integer(L, t, "days", def);
	if (d < 1 || d > CA_MAX_DAYS)
		cork_raise(L, "usage", "%s: days must be 1..%d, got %lld", fn, CA_MAX_DAYS, (long long)d);
	return (int)d;
}

static enum ca_keytype opt_keytype(lua_State *L, int t, const char *fn)
{
	const char *k = opt_name(L, t, fn, "key", "ec-p256");
	if (strcmp(k, "ec-p256") == 0)
		return KEY_EC_P256;
	if (strcmp(k, "rsa-2048") == 0)
		return KEY_RSA_2048;
	if (strcmp(k, "rsa-4096") == 0)
		return KEY_RSA_4096;
	return (enum ca_keytype)cork_raise(
	    L, "usage", "%s: key must be \"ec-p256\", \"rsa-2048\" or \"rsa-4096\", got \"%s\"", fn, k);
}

/* A file base name: no path separators, no leading dot. */
static void check_basename(lua_State *L, const char *fn, const char *name)
{
	if (strchr(name, '/') || name[0] == '.' || strlen(name) > 200)
		cork_raise(L, "usage", "%s: name '%s' must be a plain file name", fn, name);
}

static void join_path(lua_State *L, char *out, const char *dir, const char *base,
                      const char *suffix)
{
	int n = snprintf(out, PATH_MAX, "%s/%s%s", dir, base, suffix);
	if (n < 0 || n >= PATH_MAX)
		cork_raise(L, "usage", "path too long under %s", dir);
}

/* ---- files -------------------------------------------------------------- */

/* mkdir -p with 0700 for every directory created (chmod after mkdir: the
 * umask may only have removed bits, but be exact). Existing directories are
 * left as they are. Returns 0 or errno. */
static int mkdir_private(const char *dir)
{
	char p[PATH_MAX];
	size_t len = strlen(dir);
	if (len == 0 || len >= sizeof p)
		return ENAMETOOLONG;
	memcpy(p, dir, len + 1);
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0700) == 0) {
				if (chmod(p, 0700) != 0)
					return errno;
			} else if (errno != EEXIST) {
				return errno;
			} else {
				struct stat st;
				if (stat(p, &st) != 0)
					return errno;
				if (!S_ISDIR(st.st_mode))
					return ENOTDIR;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	return 0;
}

/* Write data to path with exactly `mode`, atomically. Without overwrite,
 * an existing path fails with EEXIST (link(2) does not replace). */
static int write_private(const char *path, const char *data, size_t len, mode_t mode,
                         int overwrite)
{
	char tmp[PATH_MAX];
	int n = snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof tmp)
		return ENAMETOOLONG;
	unlink(tmp); /* a leftover of a crashed run of this same pid */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return errno;
	int err = 0;
	if (fchmod(fd, mode) != 0)
		err = errno;
	for (size_t off = 0; !err && off < len;) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0) {
			if (errno != EINTR)
				err = errno;
		} else {
			off += (size_t)w;
		}
	}
	if (!err && fsync(fd) != 0)
		err = errno;
	if (close(fd) != 0 && !err)
		err = errno;
	if (!err) {
		if (overwrite) {
			if (rename(tmp, path) != 0)
				err = errno;
		} else if (link(tmp, path) != 0) {
			err = errno;
		}
	}
	unlink(tmp);
	return err;
}

static int bio_write_file(const char *path, BIO *bio, mode_t mode, int overwrite)
{
	char *data = NULL;
	long len = BIO_get_mem_data(bio, &data);
	if (len < 0)
		return EIO;
	return write_private(path, data, (size_t)len, mode, overwrite);
}

/* ---- certificates ------------------------------------------------------- */

static EVP_PKEY *make_key(enum ca_keytype t)
{
	switch (t) {
	case KEY_EC_P256:
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	case KEY_RSA_2048:
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	case KEY_RSA_4096:
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
	}
	return NULL;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	if (!ext)
		return 0;
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/* Version 3, random positive 128-bit serial, validity from an hour ago
 * (clock skew between host and guest) for `days`, subject CN. */
static int cert_base(X509 *x, const char *cn, int days, EVP_PKEY *pub)
{
	unsigned char serial[16];
	if (RAND_bytes(serial, sizeof serial) != 1)
		return 0;
	serial[0] &= 0x7f; /* positive */
	serial[0] |= 0x40; /* and exactly 16 bytes long */
	BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
	if (!bn)
		return 0;
	int ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	ok = ok && X509_set_version(x, 2);
	ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	ok = ok && X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL);
	ok = ok && X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
	                                      (const unsigned char *)cn, -1, -1, 0);
	ok = ok && X509_set_pubkey(x, pub);
	return ok;
}

static void hex_fingerprint(const X509 *x, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	out[0] = '\0';
	if (!X509_digest(x, EVP_sha256(), md, &n))
		return;
	for (unsigned i = 0; i < n && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* PEM text of key and cert into the box's memory BIOs (the key BIO is
 * OpenSSL secure memory, cleared on free). */
static int pem_encode(struct ca_box *b, int combined)
{
	b->key_pem = BIO_new(BIO_s_secmem());
	b->cert_pem = BIO_new(BIO_s_mem());
	if (!b->key_pem || !b->cert_pem)
		return 0;
	if (!PEM_write_bio_PrivateKey(b->key_pem, b->key, NULL, NULL, 0, NULL, NULL))
		return 0;
	if (!PEM_write_bio_X509(b->cert_pem, b->cert))
		return 0;
	if (combined) {
		b->combined = BIO_new(BIO_s_secmem());
		if (!b->combined ||
		    !PEM_write_bio_PrivateKey(b->combined, b->key, NULL, NULL, 0, NULL, NULL) ||
		    !PEM_write_bio_X509(b->combined, b->cert))
			return 0;
	}
	return 1;
}

/* Written files, removed again when a later one fails. */
struct written {
	char paths[4][PATH_MAX];
	int n;
};

static void written_undo(struct written *w)
{
	for (int i = 0; i < w->n; i++)
		unlink(w->paths[i]);
	w->n = 0;
}

static int write_one(lua_State *L, struct written *w, const char *path, BIO *bio, mode_t mode,
                     int overwrite)
{
	int err = bio_write_file(path, bio, mode, overwrite);
	if (err) {
		written_undo(w);
		return cork_raise_errno(L, err, "writing", path);
	}
	snprintf(w->paths[w->n++], PATH_MAX, "%s", path);
	return 0;
}

/* Make the new directory entries durable (best effort). */
static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

static void check_absent(lua_State *L, const char *path, int overwrite)
{
	struct stat st;
	if (!overwrite && lstat(path, &st) == 0)
		cork_raise(L, "exists", "%s already exists (pass overwrite = true to replace it)",
		           path);
}

static void push_result(lua_State *L, const char *dir, const char *name, const char *cert,
                        const char *key, const char *pem, const char *fp)
{
	lua_createtable(L, 0, 6);
	lua_pushstring(L, cert);
	lua_setfield(L, -2, "cert");
	lua_pushstring(L, key);
	lua_setfield(L, -2, "key");
	if (pem) {
		lua_pushstring(L, pem);
		lua_setfield(L, -2, "pem");
	}
	lua_pushstring(L, fp);
	lua_setfield(L, -2, "fingerprint");
	lua_pushstring(L, dir);
	lua_setfield(L, -2, "dir");
	lua_pushstring(L, name);
	lua_setfield(L, -2, "name");
}

/* ---- mint --------------------------------------------------------------- */

static const char *const mint_options[] = {"dir", "name", "common_name", "key", "days",
                                           "mitmproxy", "overwrite", NULL};

static int ca_mint(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	cork_check_options(L, 1, mint_options);
	const char *dir = cork_opt_required(L, 1, "dir");
	const char *name = opt_name(L, 1, "mint", "name", "ca");
	const char *cn = opt_name(L, 1, "mint", "common_name", "cork CA");
	enum ca_keytype kt = opt_keytype(L, 1, "mint");
	int days = opt_days(L, 1, "mint", 3650);
	int mitm = cork_opt_boolean(L, 1, "mitmproxy", 0);
	int overwrite = cork_opt_boolean(L, 1, "overwrite", 0);
	check_basename(L, "mint", name);
	char cert_path[PATH_MAX], key_path[PATH_MAX], pem_path[PATH_MAX], mcert_path[PATH_MAX];
	join_path(L, cert_path, dir, name, ".pem");
	join_path(L, key_path, dir, name, "-key.pem");
	join_path(L, pem_path, dir, "mitmproxy-ca", ".pem");
	join_path(L, mcert_path, dir, "mitmproxy-ca-cert", ".pem");
	check_absent(L, cert_path, overwrite);
	check_absent(L, key_path, overwrite);
	if (mitm) {
		check_absent(L, pem_path, overwrite);
		check_absent(L, mcert_path, overwrite);
	}
	cork_checkpoint(L);

	struct ca_box *b = box_new(L);
	if (!(b->key = make_key(kt)))
		return raise_crypto(L, "generating the CA key");
	if (!(b->cert = X509_new()) || !cert_base(b->cert, cn, days, b->key) ||
	    !X509_set_issuer_name(b->cert, X509_get_subject_name(b->cert)))
		return raise_crypto(L, "building the CA certificate");
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, b->cert, b->cert, NULL, NULL, 0);
	if (!X509V3_set_issuer_pkey(&ctx, b->key) ||
	    !add_ext(b->cert, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    !add_ext(b->cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    !add_ext(b->cert, &ctx, NID_subject_key_identifier, "hash") ||
	    !add_ext(b->cert, &ctx, NID_authority_key_identifier, "keyid:always"))
		return raise_crypto(L, "adding CA extensions");
	if (!X509_sign(b->cert, b->key, EVP_sha256()))
		return raise_crypto(L, "signing the CA certificate");
	if (!pem_encode(b, mitm))
		return raise_crypto(L, "encoding PEM");

	int err = mkdir_private(dir);
	if (err)
		return cork_raise_errno(L, err, "creating directory", dir);
	struct written w;
	w.n = 0;
	write_one(L, &w, key_path, b->key_pem, 0600, overwrite);
	write_one(L, &w, cert_path, b->cert_pem, 0644, overwrite);
	if (mitm) {
		write_one(L, &w, pem_path, b->combined, 0600, overwrite);
		write_one(L, &w, mcert_path, b->cert_pem, 0644, overwrite);
	}
	sync_dir(dir);
	char fp[65];
	hex_fingerprint(b->cert, fp);
	lua_pushcfunction(L, box_free);
	lua_pushvalue(L, -2);
	lua_call(L, 1, 0);
	push_result(L, dir, name, cert_path, key_path, mitm ? pem_path : NULL, fp);
	cork_event(L, "debug", "ca.mint", cert_path, 0);
	return 1;
}

/* ---- reading PEM files ---------------------------------------------------- */

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1; /* never prompt on the terminal */
}

static BIO *open_pem(lua_State *L, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		cork_raise_errno(L, errno, "opening", path);
	BIO *bio = BIO_new_fp(f, BIO_CLOSE);
	if (!bio) {
		fclose(f);
		raise_crypto(L, "opening a BIO");
	}
	return bio;
}

/* Read the first certificate of path into *out (owned by a box). */
static void read_cert(lua_State *L, const char *path, X509 **out)
{
	BIO *bio = open_pem(L, path);
	*out = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (!*out) {
		ERR_clear_error();
		cork_raise(L, "invalid", "%s holds no PEM certificate", path);
	}
}

static void read_key(lua_State *L, const char *path, EVP_PKEY **out)
{
	BIO *bio = open_pem(L, path);
	*out = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (!*out) {
		ERR_clear_error();
		cork_raise(L, "invalid", "%s holds no unencrypted PEM private key", path);
	}
}

/* ---- issue -------------------------------------------------------------- */

static const char *const issue_options[] = {"ca", "dir", "name", "common_name", "dns", "ips",
                                            "days", "key", "overwrite", NULL};

static int valid_dns(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return 0;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_' || c == '*'))
			return 0;
	}
	return 1;
}

/* Check a list option (array of strings); returns its length. */
static int check_list(lua_State *L, int t, const char *key, int is_ip)
{
	lua_getfield(L, t, key);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return 0;
	}
	if (!lua_istable(L, -1))
		luaL_error(L, "issue: option '%s' must be a list of strings", key);
	int n = (int)lua_rawlen(L, -1);
	if (n > CA_MAX_NAMES)
		cork_raise(L, "usage", "issue: at most %d %s entries", CA_MAX_NAMES, key);
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, i);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "issue: %s[%d] must be a string", key, i);
		const char *s = lua_tostring(L, -1);
		if (is_ip) {
			unsigned char buf[16];
			if (inet_pton(AF_INET, s, buf) != 1 && inet_pton(AF_INET6, s, buf) != 1)
				cork_raise(L, "usage", "issue: ips[%d] '%s' is not an IP address", i, s);
		} else if (!valid_dns(s)) {
			cork_raise(L, "usage", "issue: dns[%d] '%s' is not a DNS name", i, s);
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return n;
}

/* Append the list's entries to gens as DNS names or IP addresses. */
static int add_names(lua_State *L, int t, const char *key, int is_ip, GENERAL_NAMES *gens)
{
	lua_getfield(L, t, key);
	int n = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
	int ok = 1;
	for (int i = 1; ok && i <= n; i++) {
		lua_rawgeti(L, -1, i);
		const char *s = lua_tostring(L, -1);
		GENERAL_NAME *g = NULL;
		if (is_ip) {
			ASN1_OCTET_STRING *ip = a2i_IPADDRESS(s);
			if (ip && (g = GENERAL_NAME_new()))
				GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
			else
				ASN1_OCTET_STRING_free(ip);
		} else {
			ASN1_IA5STRING *d = ASN1_IA5STRING_new();
			if (d && ASN1_STRING_set(d, s, -1) && (g = GENERAL_NAME_new()))
				GENERAL_NAME_set0_value(g, GEN_DNS, d);
			else
				ASN1_IA5STRING_free(d);
		}
		if (!g || !sk_GENERAL_NAME_push(gens, g)) {
			GENERAL_NAME_free(g);
			ok = 0;
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return ok;
}

static const char *first_of(lua_State *L, int t, const char *key)
{
	lua_getfield(L, t, key);
	const char *s = NULL;
	if (lua_istable(L, -1)) {
		lua_rawgeti(L, -1, 1);
		s = lua_tostring(L, -1); /* referenced by the list */
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return s;
}

static int ca_issue(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	cork_check_options(L, 1, issue_options);
	lua_getfield(L, 1, "ca");
	if (!lua_istable(L, -1))
		luaL_error(L, "issue: option 'ca' must be the table cork.ca.mint returned");
	const char *ca_cert = cork_opt_required(L, 2, "cert");
	const char *ca_key = cork_opt_required(L, 2, "key");
	const char *dir = cork_opt_required(L, 1, "dir");
	const char *name = opt_name(L, 1, "issue", "name", "leaf");
	int ndns = check_list(L, 1, "dns", 0);
	int nips = check_list(L, 1, "ips", 1);
	const char *cn_default = ndns ? first_of(L, 1, "dns") : nips ? first_of(L, 1, "ips") : name;
	const char *cn = opt_name(L, 1, "issue", "common_name", cn_default);
	enum ca_keytype kt = opt_keytype(L, 1, "issue");
	int days = opt_days(L, 1, "issue", 365);
	int overwrite = cork_opt_boolean(L, 1, "overwrite", 0);
	check_basename(L, "issue", name);
	char cert_path[PATH_MAX], key_path[PATH_MAX];
	join_path(L, cert_path, dir, name, ".pem");
	join_path(L, key_path, dir, name, "-key.pem");
	check_absent(L, cert_path, overwrite);
	check_absent(L, key_path, overwrite);
	cork_checkpoint(L);

	struct ca_box *b = box_new(L);
	read_cert(L, ca_cert, &b->ca_cert);
	read_key(L, ca_key, &b->ca_key);
	if (X509_check_private_key(b->ca_cert, b->ca_key) != 1) {
		ERR_clear_error();
		return cork_raise(L, "invalid", "%s does not match the certificate %s", ca_key,
		                  ca_cert);
	}
	if (!(X509_get_extension_flags(b->ca_cert) & EXFLAG_CA))
		return cork_raise(L, "invalid", "%s is not a CA certificate", ca_cert);

	if (!(b->key = make_key(kt)))
		return raise_crypto(L, "generating the key");
	if (!(b->cert = X509_new()) || !cert_base(b->cert, cn, days, b->key) ||
	    !X509_set_issuer_name(b->cert, X509_get_subject_name(b->ca_cert)))
		return raise_crypto(L, "building the certificate");
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, b->ca_cert, b->cert, NULL, NULL, 0);
	const char *ku = kt == KEY_EC_P256 ? "critical,digitalSignature"
	                                   : "critical,digitalSignature,keyEncipherment";
	if (!add_ext(b->cert, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_ext(b->cert, &ctx, NID_key_usage, ku) ||
	    !add_ext(b->cert, &ctx, NID_ext_key_usage, "serverAuth,clientAuth") ||
	    !add_ext(b->cert, &ctx, NID_subject_key_identifier, "hash") ||
	    !add_ext(b->cert, &ctx, NID_authority_key_identifier, "keyid:always"))
		return raise_crypto(L, "adding certificate extensions");
	if (ndns + nips > 0) {
		if (!(b->sans = GENERAL_NAMES_new()) || !add_names(L, 1, "dns", 0, b->sans) ||
		    !add_names(L, 1, "ips", 1, b->sans) ||
		    !X509_add1_ext_i2d(b->cert, NID_subject_alt_name, b->sans, 0, X509V3_ADD_DEFAULT))
			return raise_crypto(L, "adding subject alternative names");
	}
	if (!X509_sign(b->cert, b->ca_key, EVP_sha256()))
		return raise_crypto(L, "signing the certificate");
	if (!pem_encode(b, 0))
		return raise_crypto(L, "encoding PEM");

	int err = mkdir_private(dir);
	if (err)
		return cork_raise_errno(L, err, "creating directory", dir);
	struct written w;
	w.n = 0;
	write_one(L, &w, key_path, b->key_pem, 0600, overwrite);
	write_one(L, &w, cert_path, b->cert_pem, 0644, overwrite);
	sync_dir(dir);
	char fp[65];
	hex_fingerprint(b->cert, fp);
	lua_pushcfunction(L, box_free);
	lua_pushvalue(L, -2);
	lua_call(L, 1, 0);
	push_result(L, dir, name, cert_path, key_path, NULL, fp);
	cork_event(L, "debug", "ca.issue", cert_path, 0);
	return 1;
}

/* ---- fingerprint / info ------------------------------------------------- */

static int ca_fingerprint(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	cork_checkpoint(L);
	struct ca_box *b = box_new(L);
	read_cert(L, path, &b->cert);
	char fp[65];
	hex_fingerprint(b->cert, fp);
	lua_pushstring(L, fp);
	return 1;
}

static void push_name(lua_State *L, const X509_NAME *nm)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len = 0;
	if (mem && X509_NAME_print_ex(mem, nm, 0, XN_FLAG_RFC2253) >= 0)
		len = BIO_get_mem_data(mem, &data);
	/* Copy to the C stack first: lua_pushlstring could raise with mem live. */
	char buf[1024];
	size_t n = len > 0 ? (size_t)len : 0;
	if (n >= sizeof buf)
		n = sizeof buf - 1;
	if (n)
		memcpy(buf, data, n);
	BIO_free(mem);
	lua_pushlstring(L, buf, n);
}

static lua_Integer asn1_epoch(const ASN1_TIME *t)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (!ASN1_TIME_to_tm(t, &tm))
		return 0;
	return (lua_Integer)timegm(&tm);
}

static int ca_info(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	cork_checkpoint(L);
	struct ca_box *b = box_new(L);
	read_cert(L, path, &b->cert);
	X509 *x = b->cert;
	lua_createtable(L, 0, 9);
	push_name(L, X509_get_subject_name(x));
	lua_setfield(L, -2, "subject");
	push_name(L, X509_get_issuer_name(x));
	lua_setfield(L, -2, "issuer");
	lua_pushinteger(L, asn1_epoch(X509_get0_notBefore(x)));
	lua_setfield(L, -2, "not_before");
	lua_pushinteger(L, asn1_epoch(X509_get0_notAfter(x)));
	lua_setfield(L, -2, "not_after");
	lua_pushboolean(L, (X509_get_extension_flags(x) & EXFLAG_CA) != 0);
	lua_setfield(L, -2, "is_ca");
	{
		char hex[2 * 20 + 1] = "";
		const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
		int n = sn ? ASN1_STRING_length(sn) : 0;
		const unsigned char *d = sn ? ASN1_STRING_get0_data(sn) : NULL;
		for (int i = 0; i < n && i < 20; i++)
			snprintf(hex + 2 * i, 3, "%02x", d[i]);
		lua_pushstring(L, hex);
		lua_setfield(L, -2, "serial");
	}
	char fp[65];
	hex_fingerprint(x, fp);
	lua_pushstring(L, fp);
	lua_setfield(L, -2, "fingerprint");
	lua_newtable(L); /* dns */
	lua_newtable(L); /* ips */
	b->sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int nd = 0, ni = 0;
	for (int i = 0; b->sans && i < sk_GENERAL_NAME_num(b->sans); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(b->sans, i);
		if (g->type == GEN_DNS) {
			const ASN1_IA5STRING *s = g->d.dNSName;
			lua_pushlstring(L, (const char *)ASN1_STRING_get0_data(s),
			                (size_t)ASN1_STRING_length(s));
			lua_rawseti(L, -3, ++nd);
		} else if (g->type == GEN_IPADD) {
			const ASN1_OCTET_STRING *s = g->d.iPAddress;
			char txt[INET6_ADDRSTRLEN] = "";
			int len = ASN1_STRING_length(s);
			const unsigned char *d = ASN1_STRING_get0_data(s);
			if (len == 4)
				inet_ntop(AF_INET, d, txt, sizeof txt);
			else if (len == 16)
				inet_ntop(AF_INET6, d, txt, sizeof txt);
			lua_pushstring(L, txt);
			lua_rawseti(L, -2, ++ni);
		}
	}
	lua_setfield(L, -3, "ips");
	lua_setfield(L, -2, "dns");
	ERR_clear_error();
	return 1;
}

/* ---- registration ------------------------------------------------------- */

static const luaL_Reg ca_functions[] = {
	{"mint", ca_mint},
	{"issue", ca_issue},
	{"fingerprint", ca_fingerprint},
	{"info", ca_info},
	{NULL, NULL}
};

/* The box is internal (never returned to Lua); it has no methods. */
static const luaL_Reg box_metamethods[] = {
	{"__gc", box_free},
	{"__close", box_free},
	{NULL, NULL}
};

int luaopen_cork_ca(lua_State *L)
{
	luaL_newmetatable(L, CA_BOX);
	luaL_setfuncs(L, box_metamethods, 0);
	lua_pop(L, 1);
	luaL_newlib(L, ca_functions);
	return 1;
}
