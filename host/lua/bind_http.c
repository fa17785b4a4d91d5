/*
 * bind_http.c: ks.core.http.request{...}: one HTTP request through the host's
 * libcurl multi on the loop; the calling task yields until the answer.
 *
 *   res, err = http.request{ method = "GET", url = "https://...", headers = { k = v },
 *                            body = "...", timeout = 60, ca_file = ..., cert_file = ...,
 *                            key_file = ..., guard = true, allow = "127.0.0.0/8" }
 *   res = { status = 200, headers = { ["content-type"] = "..." }, body = "..." }
 *   err = { code = 0, reason = "ConnectionRefused" | "Timeout" | ..., message = "..." }
 *
 * guard = true: the URL is a tenant's; the connection goes only to a public address or
 * one of the networks in allow (the operator's list, host/netguard.h), fresh, with no
 * proxy; else err.reason "Refused" says which address and why.
 *
 * Every request sent for real (not a fake's) that completes is counted in the host's
 * registry as kupenstack_http_client_requests_total{method,code}, code "0" when no
 * response came; a request cancelled with its task is not counted.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "http.h"
#include "ks.h"
#include "lua/bind.h"
#include "lua/engine.h"
#include "lua/fake.h"
#include "metrics.h"

#define MAX_HEADERS 64

struct http_op {
	struct ks_lua_op op;
	struct ks_http_req *req;
	struct ks_metrics *metrics; /* the host's registry, which outlives the engine */
	char *method, *url;
};

static void op_free(struct http_op *h)
{
	free(h->method);
	free(h->url);
	free(h);
}

static const char *reason_of(int err)
{
	switch (err) {
	case -ETIMEDOUT:
		return "Timeout";
	case -ECONNREFUSED:
		return "ConnectionRefused";
	case -ECONNRESET:
		return "ConnectionReset";
	case -EPROTO:
		return "TLSError";
	case -EACCES:
		return "Refused";
	default:
		return "TransportError";
	}
}

/* Push the response headers as a table of lowercased names. */
static void push_headers(lua_State *L, const struct ks_buf *raw)
{
	const char *p = raw->data, *end = raw->data + raw->len;

	lua_newtable(L);
	while (p && p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *colon, *v, *ve;
		char name[128];
		size_t n, i;

		if (!eol)
			eol = end;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon && strncmp(p, "HTTP/", 5) != 0 && (size_t)(colon - p) < sizeof(name)) {
			n = (size_t)(colon - p);
			for (i = 0; i < n; i++)
				name[i] = (char)tolower((unsigned char)p[i]);
			name[n] = '\0';
			for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
				;
			for (ve = eol; ve > v && isspace((unsigned char)ve[-1]); ve--)
				;
			lua_pushlstring(L, v, (size_t)(ve - v));
			lua_setfield(L, -2, name);
		}
		p = eol + 1;
	}
}

/* Push the response {status=, headers=, body=}. */
static void push_response(lua_State *co, long status, const struct ks_buf *headers,
			  const char *body, size_t len)
{
	lua_createtable(co, 0, 3);
	lua_pushnumber(co, (lua_Number)status);
	lua_setfield(co, -2, "status");
	push_headers(co, headers);
	lua_setfield(co, -2, "headers");
	lua_pushlstring(co, body ? body : "", len);
	lua_setfield(co, -2, "body");
}

/* push_response as a lua_CFunction for ks_lua_push_capped: the response at 1. */
static int push_answer(lua_State *L)
{
	const struct ks_http_resp *r = lua_touserdata(L, 1);

	push_response(L, r->status, &r->headers, r->body.data, r->body.len);
	return 1;
}

/* One request answered (status > 0) or failed (0): kupenstack_http_client_requests_total. */
static void count(struct ks_metrics *m, const char *method, long status)
{
	struct ks_metric_family *f;
	char code[24];

	if (!m)
		return;
	f = ks_metrics_counter(m, "kupenstack_http_client_requests_total",
			       "HTTP requests plugins made through ks.core.http, by method and "
			       "status code (0: no response).",
			       KS_LABELS("method", "code"));
	snprintf(code, sizeof(code), "%ld", status);
	ks_metric_inc(ks_metric_child(f, KS_LABELS(method, code)));
}

static void done(struct ks_http_req *req, const struct ks_http_resp *resp, void *data)
{
	struct http_op *h = data;
	lua_State *co = ks_lua_op_thread(&h->op);
	char msg[512];
	int n;

	(void)req;
	count(h->metrics, h->method, resp->status);
	if (resp->err == -EFBIG) { /* the body stopped at max_body: never a partial one */
		snprintf(msg, sizeof(msg),
			 "%s %s: the response body is larger than the plugin's memory limit "
			 "(%zu bytes); it was not read",
			 h->method, h->url, ks_lua_limits_of(ks_lua_from(co))->memory);
		n = ks_lua_fail(co, resp->status, "MemoryLimit", msg);
	} else if (resp->status == 0 || resp->err) {
		snprintf(msg, sizeof(msg), "%s %s: %s", h->method, h->url, resp->errmsg);
		n = ks_lua_fail(co, resp->status, reason_of(resp->err), msg);
	} else if (ks_lua_push_capped(&h->op, push_answer, (void *)resp) == 0) {
		n = 1;
	} else {
		snprintf(msg, sizeof(msg),
			 "%s %s: the response (%zu bytes of body) does not fit under the plugin's "
			 "memory limit",
			 h->method, h->url, resp->body.len);
		n = ks_lua_fail(co, 0, "MemoryLimit", msg);
	}
	ks_lua_op_resume(&h->op, n);
	op_free(h);
}

/* A fake's answer (lua/fake.h), pushed from the loop. */
static int push_fake(lua_State *co, void *data)
{
	struct ks_lua_fake_reply *r = data;
	struct ks_buf hdrs = { r->headers, r->headers ? strlen(r->headers) : 0, 0 };

	if (r->status == 0)
		return ks_lua_fail(co, 0, r->reason ? r->reason : "TransportError",
				   r->message ? r->message : "no response");
	push_response(co, r->status, &hdrs, r->body, r->body_len);
	return 1;
}

static void drop_fake(void *data)
{
	ks_lua_fake_reply_deinit(data);
	free(data);
}

/* Hand the request to the host's fake: true (and the task yields on its answer) if it
 * answers, false to send it for real. */
static bool faked(lua_State *L, struct ks_lua_fake *f, const struct ks_http_opts *o,
		  bool changes_nothing, int *ret)
{
	struct ks_lua_fake_reply *r;

	if (!f || !f->http)
		return false;
	r = ks_xcalloc(1, sizeof(*r));
	if (!f->http(f,
		     &(struct ks_lua_fake_http){ o->method ? o->method : "GET", o->url, o->headers,
						 o->body, o->body_len, changes_nothing },
		     r)) {
		drop_fake(r);
		return false;
	}
	*ret = ks_lua_defer(L, push_fake, drop_fake, r);
	return true;
}

static void cancel(struct ks_lua_op *op)
{
	struct http_op *h = KS_CONTAINER_OF(op, struct http_op, op);

	ks_http_cancel(h->req);
	op_free(h);
}

static const char *opt_field(lua_State *L, const char *k)
{
	const char *v;

	lua_getfield(L, 1, k);
	if (!lua_isnil(L, -1) && !lua_isstring(L, -1))
		luaL_error(L, "http.request: '%s' must be a string", k);
	v = lua_tostring(L, -1);
	lua_pop(L, 1); /* the table still holds the string */
	return v;
}

/* The "Name: value" list from the headers table (at top), NULL-terminated, in hdrs.
 * Checked in a first pass, so an error raised leaks nothing. */
static void collect_headers(lua_State *L, char **hdrs)
{
	int n = 0;

	lua_pushnil(L);
	while (lua_next(L, -2)) {
		if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "http.request: headers must map names to strings");
		if (++n > MAX_HEADERS)
			luaL_error(L, "http.request: more than %d headers", MAX_HEADERS);
		if (strpbrk(lua_tostring(L, -1), "\r\n") || strpbrk(lua_tostring(L, -2), "\r\n:"))
			luaL_error(L, "http.request: header '%s' holds a line break or colon",
				   lua_tostring(L, -2));
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

/* Start the request through the host's client; the task yields until it answers. */
static int start(lua_State *L, struct ks_http_opts *o)
{
	struct http_op *h = ks_xcalloc(1, sizeof(*h));

	h->op.cancel = cancel;
	h->metrics = ks_lua_host(ks_lua_from(L))->metrics;
	h->method = ks_xstrdup(o->method ? o->method : "GET");
	h->url = ks_xstrdup(o->url);
	o->on_done = done;
	o->data = h;
	/* A body past the plugin's memory limit could never be pushed to it: not buffered. */
	o->max_body = ks_lua_limits_of(ks_lua_from(L))->memory;
	h->req = ks_http_request(ks_lua_host(ks_lua_from(L))->http, o);
	return ks_lua_op_start(L, &h->op);
}

static int request(lua_State *L)
{
	struct ks_lua *e = ks_lua_from(L);
	char *hdrs[MAX_HEADERS + 1] = { NULL };
	struct ks_http_tls tls = { 0 };
	struct ks_http_opts o = { 0 };
	double timeout, left;
	bool changes_nothing;
	size_t blen = 0;
	struct ks_netguard g;
	int i, rc;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "guard");
	if (lua_toboolean(L, -1)) {
		char *gerr = NULL;

		lua_getfield(L, 1, "allow");
		if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
			return luaL_error(L, "http.request: 'allow' must be a string of networks");
		if (ks_netguard_parse(&g, lua_tostring(L, -1), &gerr) != 0) {
			lua_pushfstring(L, "http.request: allow: %s", gerr);
			free(gerr);
			return lua_error(L);
		}
		o.guard = &g;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	o.method = opt_field(L, "method");
	o.url = opt_field(L, "url");
	if (!o.url || (strncmp(o.url, "http://", 7) && strncmp(o.url, "https://", 8)))
		return luaL_error(L, "http.request: 'url' must be an http:// or https:// URL");
	lua_getfield(L, 1, "body");
	o.body = lua_tolstring(L, -1, &blen);
	o.body_len = blen;
	lua_getfield(L, 1, "timeout");
	timeout = luaL_optnumber(L, -1, 60);
	lua_pop(L, 1);
	left = ks_lua_deadline(L) - (double)ks_now_ns() / 1e9;
	if (left > 0 && left < timeout)
		timeout = left;
	o.timeout_ms = (long)(timeout * 1000) + 1;
	tls.ca_file = opt_field(L, "ca_file");
	tls.cert_file = opt_field(L, "cert_file");
	tls.key_file = opt_field(L, "key_file");
	o.tls = &tls;
	ks_lua_check_yieldable(L);
	lua_getfield(L, 1, "headers");
	if (lua_istable(L, -1))
		collect_headers(L, hdrs);
	lua_pop(L, 1);
	o.headers = (const char *const *)hdrs;
	lua_getfield(L, 1, "changes_nothing");
	changes_nothing = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (!faked(L, ks_lua_host(e)->fake, &o, changes_nothing, &rc))
		rc = start(L, &o);
	for (i = 0; hdrs[i]; i++)
		free(hdrs[i]);
	return rc;
}

int ks_lua_open_http(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "request", request },
		{ NULL, NULL },
	};

	luaL_newlib(L, fns);
	return 1;
}
