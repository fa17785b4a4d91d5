/*
 * bind_chart.c: ks.core.chart: what ks.release needs of the host to know a chart by its
 * content (host/chart.h) and to render a chart fetched from a repository (which helm
 * reads from a file).
 *
 *   d, err = chart.digest(path)    -- the content digest of a chart directory or .tgz
 *                                  -- ("sha256:<hex>", host/chart.h; on libuv's thread pool)
 *   path, err = chart.store(bytes, sha256)
 *       -- bytes (a chart's .tgz) written to the host's chart cache as <sha256>.tgz,
 *       -- only when sha256 (64 hex digits) is the SHA-256 of bytes; the path to render.
 *       -- err.reason "ChecksumMismatch" (message naming both) or "IOError".
 *
 * The cache is the directory $KS_CHART_CACHE, else $TMPDIR (or /tmp)/kupenstack-charts-
 * <uid>, created 0700; one that is not a directory of ours, or a symbolic link, is
 * refused. A file is written whole to a temporary name and renamed: a reader never sees
 * half a chart. Content-addressed, so two releases of the same chart share a file. The
 * write is small (a chart) and made on the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <openssl/evp.h>

#include "chart.h"
#include "ks.h"
#include "lua/bind.h"
#include "lua/engine.h"

struct digest_op {
	struct ks_lua_op op;
	uv_work_t req;
	bool orphan; /* the task went: free when the work ends */
	int err;
	char d[KS_CHART_DIGEST_LEN + 1];
	char *path;
};

static void digest_work(uv_work_t *req)
{
	struct digest_op *o = KS_CONTAINER_OF(req, struct digest_op, req);

	o->err = ks_chart_digest(o->path, o->d);
}

static void digest_done(uv_work_t *req, int status)
{
	struct digest_op *o = KS_CONTAINER_OF(req, struct digest_op, req);
	lua_State *co;
	char buf[512];
	int n = 1;

	if (o->orphan)
		goto out;
	co = ks_lua_op_thread(&o->op);
	if (status != 0 || o->err != 0) {
		snprintf(buf, sizeof(buf), "could not read the chart %s: %s", o->path,
			 strerror(status ? ECANCELED : -o->err));
		n = ks_lua_fail(co, 0, "ChartError", buf);
	} else {
		lua_pushstring(co, o->d);
	}
	ks_lua_op_resume(&o->op, n);
out:
	free(o->path);
	free(o);
}

static void digest_cancel(struct ks_lua_op *op)
{
	struct digest_op *o = KS_CONTAINER_OF(op, struct digest_op, op);

	o->orphan = true; /* digest_done still runs */
	uv_cancel((uv_req_t *)&o->req);
}

static int digest(lua_State *L)
{
	const struct ks_lua_host *host = ks_lua_host(ks_lua_from(L));
	const char *path = luaL_checkstring(L, 1);
	struct digest_op *o;

	ks_lua_check_yieldable(L);
	o = ks_xcalloc(1, sizeof(*o));
	o->op.cancel = digest_cancel;
	o->path = ks_xstrdup(path);
	if (uv_queue_work(host->loop, &o->req, digest_work, digest_done) != 0) {
		free(o->path);
		free(o);
		return ks_lua_fail(L, 0, "ChartError", "could not start the chart's digest");
	}
	return ks_lua_op_start(L, &o->op);
}

/* The cache directory into out, created if absent; 0 or -errno. */
static int cache_dir(char *out, size_t cap)
{
	const char *env = getenv("KS_CHART_CACHE"), *tmp = getenv("TMPDIR");
	struct stat st;

	if (env && *env)
		snprintf(out, cap, "%s", env);
	else
		snprintf(out, cap, "%s/kupenstack-charts-%u", tmp && *tmp ? tmp : "/tmp",
			 (unsigned)geteuid());
	if (mkdir(out, 0700) != 0 && errno != EEXIST)
		return -errno;
	if (lstat(out, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return -EPERM;
	return 0;
}

static bool is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int io_fail(lua_State *L, const char *what, const char *path, int err)
{
	char buf[600];

	snprintf(buf, sizeof(buf), "chart.store: %s %s: %s", what, path, strerror(-err));
	return ks_lua_fail(L, 0, "IOError", buf);
}

static int store(lua_State *L)
{
	size_t len;
	const char *bytes = luaL_checklstring(L, 1, &len);
	const char *want = luaL_checkstring(L, 2);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1], dir[512], tmp[600], path[600], msg[300];
	int fd, err;

	if (!is_hex64(want))
		return luaL_error(L, "chart.store: sha256 must be 64 lowercase hex digits");
	if (EVP_Digest(bytes, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		return luaL_error(L, "chart.store: OpenSSL failed");
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if (strcmp(hex, want) != 0) {
		snprintf(msg, sizeof(msg), "the chart's SHA-256 is %s, not the expected %s", hex,
			 want);
		return ks_lua_fail(L, 0, "ChecksumMismatch", msg);
	}
	err = cache_dir(dir, sizeof(dir));
	if (err)
		return io_fail(L, "the chart cache", dir, err);
	snprintf(path, sizeof(path), "%s/%s.tgz", dir, hex);
	snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, hex);
	fd = mkstemp(tmp);
	if (fd < 0)
		return io_fail(L, "could not create", tmp, -errno);
	err = write_all(fd, bytes, len);
	if (close(fd) != 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) != 0)
		err = -errno;
	if (err) {
		unlink(tmp);
		return io_fail(L, "could not write", path, err);
	}
	lua_pushstring(L, path);
	return 1;
}

int ks_lua_open_chart(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "digest", digest },
		{ "store", store },
		{ NULL, NULL },
	};

	luaL_newlib(L, fns);
	return 1;
}
