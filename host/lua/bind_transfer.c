/*
 * bind_transfer.c: ks.core.transfer: a tenant's URL streamed into a service
 * (host/transfer.h), and the check of a URL's addresses (host/netguard.h). The calling
 * task yields until the answer; the data never enters the plugin's state.
 *
 *   res, err = transfer.stream{ from = url, to = url, method = "PUT", headers = { k = v },
 *                               allow = "127.0.0.0/8, ::1", max_bytes = n, sha256 = hex,
 *                               timeout = 3600, ca_file = ..., cert_file = ..., key_file = ... }
 *   res = { status = 204, body = "...", bytes = n, sha256 = hex, md5 = hex,
 *           source_status = 200, seconds = s }
 *   err = { code = 0, reason = "Refused" | "TooLarge" | "ChecksumMismatch" | "SourceStatus"
 *           | "Timeout" | "ConnectionRefused" | ..., message = "...", side = "source"
 *           | "destination", bytes = n, sha256 = hex }
 *
 *   ok, err = transfer.check(url, allow)  -- true, or nil and {reason = "Refused" |
 *                                          -- "Unresolvable" | "BadURL", message}
 *
 * allow is the operator's list of otherwise refused networks (netguard.h); a bad entry is
 * a caller bug (raised). Under a fake host (plugin tests, dry runs) stream is not sent:
 * it fails with reason "Unsupported".
 */
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "ks.h"
#include "lua/bind.h"
#include "lua/engine.h"
#include "netguard.h"
#include "transfer.h"

#define MAX_HEADERS 32

struct stream_op {
	struct ks_lua_op op;
	struct ks_transfer *t;
};

static const char *reason_of(int err)
{
	switch (err) {
	case -EACCES:
		return "Refused";
	case -EFBIG:
		return "TooLarge";
	case -EBADMSG:
		return "ChecksumMismatch";
	case -EREMOTEIO:
		return "SourceStatus";
	case -ETIMEDOUT:
		return "Timeout";
	case -ECONNREFUSED:
		return "ConnectionRefused";
	case -EHOSTUNREACH:
		return "Unresolvable";
	case -ECONNRESET:
		return "ConnectionReset";
	case -EPROTO:
		return "TLSError";
	default:
		return "TransportError";
	}
}

static void set_num(lua_State *L, const char *k, double v)
{
	lua_pushnumber(L, v);
	lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v)
{
	lua_pushstring(L, v);
	lua_setfield(L, -2, k);
}

static void stream_done(struct ks_transfer *t, const struct ks_transfer_result *r, void *data)
{
	struct stream_op *s = data;
	lua_State *co = ks_lua_op_thread(&s->op);
	int n = 1;

	(void)t;
	if (r->err) {
		n = ks_lua_fail(co, r->dst_status, reason_of(r->err), r->errmsg);
		set_str(co, "side", r->side);
	} else {
		lua_createtable(co, 0, 7);
		set_num(co, "status", (double)r->dst_status);
		lua_pushlstring(co, r->dst_body.data ? r->dst_body.data : "", r->dst_body.len);
		lua_setfield(co, -2, "body");
	}
	set_num(co, "bytes", (double)r->bytes);
	set_str(co, "sha256", r->sha256);
	set_str(co, "md5", r->md5);
	set_num(co, "source_status", (double)r->src_status);
	set_num(co, "seconds", r->elapsed);
	ks_lua_op_resume(&s->op, n);
	free(s);
}

static void stream_cancel(struct ks_lua_op *op)
{
	struct stream_op *s = KS_CONTAINER_OF(op, struct stream_op, op);

	ks_transfer_cancel(s->t);
	free(s);
}

static const char *opt_str(lua_State *L, const char *k)
{
	const char *v;

	lua_getfield(L, 1, k);
	if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "transfer.stream: '%s' must be a string", k);
	v = lua_tostring(L, -1);
	lua_pop(L, 1); /* the table still holds the string */
	return v;
}

static bool http_url(const char *u)
{
	return u && (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0);
}

/* allow (a string or nil) at idx into g; raises on a bad entry. */
static void guard_from(lua_State *L, int idx, struct ks_netguard *g, const char *fn)
{
	char *err = NULL;

	if (!lua_isnil(L, idx) && lua_type(L, idx) != LUA_TSTRING)
		luaL_error(L, "%s: 'allow' must be a string of networks", fn);
	if (ks_netguard_parse(g, lua_tostring(L, idx), &err) != 0) {
		lua_pushfstring(L, "%s: allow: %s", fn, err);
		free(err);
		lua_error(L);
	}
}

/* The headers table at top into hdrs ("Name: value", NULL-terminated); checked first. */
static void collect_headers(lua_State *L, char **hdrs)
{
	int n = 0;

	lua_pushnil(L);
	while (lua_next(L, -2)) {
		if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING ||
		    strpbrk(lua_tostring(L, -1), "\r\n") || strpbrk(lua_tostring(L, -2), "\r\n:"))
			luaL_error(L,
				   "transfer.stream: headers must map names to one-line strings");
		if (++n > MAX_HEADERS)
			luaL_error(L, "transfer.stream: more than %d headers", MAX_HEADERS);
		lua_pop(L, 1);
	}
	n = 0;
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		hdrs[n++] = ks_xasprintf("%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	hdrs[n] = NULL;
}

/* timeout (seconds), cut to what is left of the task's wall time. */
static long timeout_ms(lua_State *L)
{
	double timeout, left;

	lua_getfield(L, 1, "timeout");
	timeout = luaL_optnumber(L, -1, 3600);
	lua_pop(L, 1);
	left = ks_lua_deadline(L) - (double)ks_now_ns() / 1e9;
	if (left > 0 && left < timeout)
		timeout = left;
	return (long)(timeout * 1000) + 1;
}

static int stream(lua_State *L)
{
	const struct ks_lua_host *host = ks_lua_host(ks_lua_from(L));
	char *hdrs[MAX_HEADERS + 1] = { NULL };
	struct ks_http_tls tls = { 0 };
	struct ks_transfer_opts o = { 0 };
	struct ks_netguard g;
	struct stream_op *s;

	luaL_checktype(L, 1, LUA_TTABLE);
	o.src_url = opt_str(L, "from");
	o.dst_url = opt_str(L, "to");
	if (!http_url(o.src_url) || !http_url(o.dst_url))
		return luaL_error(L, "transfer.stream: 'from' and 'to' must be http(s) URLs");
	o.dst_method = opt_str(L, "method");
	o.sha256 = opt_str(L, "sha256");
	lua_getfield(L, 1, "allow");
	guard_from(L, -1, &g, "transfer.stream");
	lua_pop(L, 1);
	o.guard = &g;
	lua_getfield(L, 1, "max_bytes");
	o.max_bytes = (uint64_t)luaL_optnumber(L, -1, 0);
	lua_pop(L, 1);
	o.timeout_ms = timeout_ms(L);
	tls.ca_file = opt_str(L, "ca_file");
	tls.cert_file = opt_str(L, "cert_file");
	tls.key_file = opt_str(L, "key_file");
	o.dst_tls = &tls;
	ks_lua_check_yieldable(L);
	if (host->fake)
		return ks_lua_fail(
			L, 0, "Unsupported",
			"transfer.stream: no data is transferred in plugin tests and dry runs");
	lua_getfield(L, 1, "headers");
	if (lua_istable(L, -1))
		collect_headers(L, hdrs);
	lua_pop(L, 1);
	o.dst_headers = (const char *const *)hdrs;
	s = ks_xcalloc(1, sizeof(*s));
	s->op.cancel = stream_cancel;
	o.on_done = stream_done;
	o.data = s;
	s->t = ks_transfer_start(host->loop, &o);
	for (int i = 0; hdrs[i]; i++)
		free(hdrs[i]);
	return ks_lua_op_start(L, &s->op);
}

/* transfer.check: the name resolved on the loop's thread pool, every address judged. */
struct check_op {
	struct ks_lua_op op;
	uv_getaddrinfo_t req;
	struct ks_netguard g;
	bool orphan; /* the task went: free when the lookup ends */
	char host[256];
};

static void check_done(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
	struct check_op *c = KS_CONTAINER_OF(req, struct check_op, req);
	lua_State *co;
	char why[200];
	int n = 1;

	if (c->orphan)
		goto out_free;
	co = ks_lua_op_thread(&c->op);
	if (status != 0) {
		snprintf(why, sizeof(why), "%s does not resolve: %s", c->host, uv_strerror(status));
		n = ks_lua_fail(co, 0, "Unresolvable", why);
	} else if (ks_netguard_check_ai(&c->g, ai, why, sizeof(why)) != 0) {
		n = ks_lua_fail(co, 0, "Refused", why);
	} else {
		lua_pushboolean(co, 1);
	}
	ks_lua_op_resume(&c->op, n);
out_free:
	uv_freeaddrinfo(ai);
	free(c);
}

static void check_cancel(struct ks_lua_op *op)
{
	struct check_op *c = KS_CONTAINER_OF(op, struct check_op, op);

	c->orphan = true; /* check_done still runs (with UV_ECANCELED if not started) */
	uv_cancel((uv_req_t *)&c->req);
}

static int check(lua_State *L)
{
	const struct ks_lua_host *host = ks_lua_host(ks_lua_from(L));
	const char *url = luaL_checkstring(L, 1);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct check_op *c;
	struct ks_netguard g;
	char h[256];

	guard_from(L, 2, &g, "transfer.check");
	if (ks_netguard_url_host(url, h, sizeof(h)) != 0)
		return ks_lua_fail(L, 0, "BadURL", "not an http(s) URL with a host");
	ks_lua_check_yieldable(L);
	c = ks_xcalloc(1, sizeof(*c));
	c->op.cancel = check_cancel;
	c->g = g;
	snprintf(c->host, sizeof(c->host), "%s", h);
	if (uv_getaddrinfo(host->loop, &c->req, check_done, c->host, NULL, &hints) != 0) {
		free(c);
		return ks_lua_fail(L, 0, "Unresolvable", "could not start the name lookup");
	}
	return ks_lua_op_start(L, &c->op);
}

int ks_lua_open_transfer(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "stream", stream },
		{ "check", check },
		{ NULL, NULL },
	};

	luaL_newlib(L, fns);
	return 1;
}
