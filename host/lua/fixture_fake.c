/*
 * fixture_fake.c: the world a fixture's plugin sees: HTTP answered from http.yaml (in
 * order, or matched by method and URL), kube.fetch from the fixture's objects, and the
 * Kubernetes writes and Events recorded for expected.yaml.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "ks.h"
#include "lua/bind.h"
#include "lua/fixture_impl.h"

#define NOT_FOUND ((size_t)-1)

static char *opt_str(const cJSON *o, const char *k)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(o, k));

	return v ? ks_xstrdup(v) : NULL;
}

/* The response headers as "Name: value\r\n" lines; content-type defaults to JSON when the
 * body was given as a mapping or list. */
static char *headers_text(const cJSON *h, bool json)
{
	struct ks_buf b;
	const cJSON *v;
	bool has_type = false;

	ks_buf_init(&b);
	cJSON_ArrayForEach(v, h)
	{
		char *text = cJSON_IsString(v) ? NULL : cJSON_PrintUnformatted(v);

		ks_buf_printf(&b, "%s: %s\r\n", v->string, text ? text : v->valuestring);
		has_type |= strcasecmp(v->string, "content-type") == 0;
		free(text);
	}
	if (json && !has_type)
		ks_buf_puts(&b, "Content-Type: application/json\r\n");
	return ks_buf_steal(&b);
}

static int load_response(struct ks_fixture_call *c, const cJSON *r, char **err, int i)
{
	const cJSON *body = cJSON_GetObjectItem(r, "body"), *status;

	if (r && !cJSON_IsObject(r)) {
		*err = ks_xasprintf("http.yaml: call %d: 'response' must be a mapping", i);
		return -EINVAL;
	}
	if (cJSON_GetObjectItem(r, "error")) {
		c->reason = opt_str(r, "error");
		c->message = opt_str(r, "message");
		if (!c->message)
			c->message = ks_xasprintf("%s %s: %s", c->method, c->url, c->reason);
		return c->reason ? 0
				 : (*err = ks_xasprintf("http.yaml: call %d: 'error' must "
							"be a string",
							i),
				    -EINVAL);
	}
	status = cJSON_GetObjectItem(r, "status");
	c->status = cJSON_IsNumber(status) ? (long)status->valuedouble : 200;
	if (c->status < 100 || c->status > 599) {
		*err = ks_xasprintf("http.yaml: call %d: 'status' must be an HTTP status", i);
		return -EINVAL;
	}
	if (cJSON_IsString(body))
		c->resp = ks_xstrdup(body->valuestring);
	else if (body)
		c->resp = cJSON_PrintUnformatted(body);
	c->resp_len = c->resp ? strlen(c->resp) : 0;
	c->headers = headers_text(cJSON_GetObjectItem(r, "headers"), body && !cJSON_IsString(body));
	return 0;
}

static int load_call(struct ks_fixture_call *c, const cJSON *e, int i, char **err)
{
	const cJSON *body = cJSON_GetObjectItem(e, "body");

	if (!cJSON_IsObject(e) || !cJSON_IsString(cJSON_GetObjectItem(e, "url"))) {
		*err = ks_xasprintf("http.yaml: call %d needs 'url' (and 'method', 'response')", i);
		return -EINVAL;
	}
	c->method = opt_str(e, "method");
	if (!c->method)
		c->method = ks_xstrdup("GET");
	c->url = opt_str(e, "url");
	c->body = body ? cJSON_Duplicate(body, true) : NULL;
	return load_response(c, cJSON_GetObjectItem(e, "response"), err, i);
}

int ks_fixture_load_http(struct ks_fixture *x, const cJSON *doc, char **err)
{
	const cJSON *calls = doc, *order, *e;
	int i = 0;

	if (cJSON_IsObject(doc)) {
		calls = cJSON_GetObjectItem(doc, "calls");
		order = cJSON_GetObjectItem(doc, "order");
		if (order && (!cJSON_IsString(order) || (strcmp(order->valuestring, "any") &&
							 strcmp(order->valuestring, "strict")))) {
			*err = ks_xstrdup("http.yaml: 'order' must be \"strict\" or \"any\"");
			return -EINVAL;
		}
		x->any_order = order && strcmp(order->valuestring, "any") == 0;
	}
	if (doc && !cJSON_IsArray(calls)) {
		*err = ks_xstrdup("http.yaml: a list of calls, or a mapping with 'calls' (and "
				  "'order')");
		return -EINVAL;
	}
	x->calls = ks_xcalloc((size_t)cJSON_GetArraySize(calls) + 1, sizeof(*x->calls));
	cJSON_ArrayForEach(e, calls)
	{
		x->ncalls++;
		if (load_call(&x->calls[i], e, i + 1, err) != 0)
			return -EINVAL;
		i++;
	}
	return 0;
}

void ks_fixture_calls_free(struct ks_fixture *x)
{
	size_t i;

	for (i = 0; i < x->ncalls; i++) {
		struct ks_fixture_call *c = &x->calls[i];

		free(c->method);
		free(c->url);
		cJSON_Delete(c->body);
		free(c->reason);
		free(c->message);
		free(c->headers);
		free(c->resp);
	}
	free(x->calls);
	x->calls = NULL;
	x->ncalls = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The query of url ("a=1&b=2"), its parameters sorted and joined by '&', into a fresh
 * string; so URLs that differ only in the order of their parameters compare equal. */
static char *sorted_query(const char *q)
{
	char *copy = ks_xstrdup(q), *parts[128] = { NULL }, *save = NULL, *p;
	struct ks_buf b;
	size_t n = 0, i;

	for (p = strtok_r(copy, "&", &save); p && n < KS_ARRAY_SIZE(parts);
	     p = strtok_r(NULL, "&", &save))
		parts[n++] = p;
	qsort(parts, n, sizeof(*parts), cmp_str);
	ks_buf_init(&b);
	for (i = 0; i < n; i++)
		ks_buf_printf(&b, "%s%s", i ? "&" : "", parts[i]);
	free(copy);
	return ks_buf_steal(&b);
}

static bool same_url(const char *want, const char *got)
{
	const char *wq = strchr(want, '?'), *gq = strchr(got, '?');
	char *a, *b;
	bool same;

	if (!wq || !gq)
		return strcmp(want, got) == 0;
	if (wq - want != gq - got || strncmp(want, got, (size_t)(wq - want)) != 0)
		return false;
	a = sorted_query(wq + 1);
	b = sorted_query(gq + 1);
	same = strcmp(a, b) == 0;
	free(a);
	free(b);
	return same;
}

static bool same_target(const struct ks_fixture_call *c, const struct ks_lua_fake_http *req)
{
	return strcasecmp(c->method, req->method) == 0 && same_url(c->url, req->url);
}

/* Does the request's body hold what c expects? Diagnoses the differences when diag. */
static bool body_matches(struct ks_fixture *x, const struct ks_fixture_call *c,
			 const struct ks_lua_fake_http *req, bool diag)
{
	char *text = req->body ? ks_xstrndup(req->body, req->body_len) : ks_xstrdup("");
	cJSON *got;
	bool ok;

	if (!c->body) {
		ok = true;
	} else if (cJSON_IsString(c->body)) {
		ok = strstr(text, c->body->valuestring) != NULL;
		if (!ok && diag)
			ks_fixture_diag(x, "  the body does not contain \"%s\"",
					c->body->valuestring);
	} else {
		got = ks_json_parse(text, strlen(text));
		if (diag) {
			ok = ks_fixture_subset(x, "  body", c->body, got);
		} else {
			struct ks_buf saved = x->diag;

			ks_buf_init(&x->diag);
			ok = ks_fixture_subset(x, "body", c->body, got);
			ks_buf_deinit(&x->diag);
			x->diag = saved;
		}
		cJSON_Delete(got);
	}
	if (!ok && diag)
		ks_fixture_diag(x, "  + body: %.300s%s", text, strlen(text) > 300 ? "..." : "");
	free(text);
	return ok;
}

/* The call of http.yaml that answers req, or NOT_FOUND. */
static size_t find_call(struct ks_fixture *x, const struct ks_lua_fake_http *req)
{
	size_t i;

	for (i = 0; i < x->ncalls; i++) {
		if (x->calls[i].used)
			continue;
		if (!x->any_order)
			return same_target(&x->calls[i], req) &&
					       body_matches(x, &x->calls[i], req, false)
				       ? i
				       : NOT_FOUND;
		if (same_target(&x->calls[i], req) && body_matches(x, &x->calls[i], req, false))
			return i;
	}
	return NOT_FOUND;
}

static void diagnose_unexpected(struct ks_fixture *x, const struct ks_lua_fake_http *req)
{
	size_t i;

	for (i = 0; i < x->ncalls && x->calls[i].used; i++)
		;
	if (!x->any_order && i < x->ncalls) {
		ks_fixture_diag(x, "HTTP request %u is not call %zu of http.yaml:", x->nhttp,
				i + 1);
		ks_fixture_diag(x, "  - %s %s", x->calls[i].method, x->calls[i].url);
		ks_fixture_diag(x, "  + %s %s", req->method, req->url);
		if (same_target(&x->calls[i], req))
			body_matches(x, &x->calls[i], req, true);
		return;
	}
	ks_fixture_diag(x, "HTTP request %u is not in http.yaml%s:", x->nhttp,
			x->ncalls == 0	? " (there is none, or it lists no calls)"
			: i < x->ncalls ? ""
					: " (all its calls were made)");
	ks_fixture_diag(x, "  + %s %s", req->method, req->url);
	for (i = 0; i < x->ncalls; i++)
		if (!x->calls[i].used && same_target(&x->calls[i], req))
			body_matches(x, &x->calls[i], req, true);
}

static bool fake_http(struct ks_lua_fake *f, const struct ks_lua_fake_http *req,
		      struct ks_lua_fake_reply *out)
{
	struct ks_fixture *x = KS_CONTAINER_OF(f, struct ks_fixture, fake);
	size_t i;
	struct ks_fixture_call *c;

	x->nhttp++;
	i = find_call(x, req);
	if (i == NOT_FOUND) {
		diagnose_unexpected(x, req);
		/* 501 is not retried by clients: one unexpected request, one line. */
		out->status = 501;
		out->headers = ks_xstrdup("Content-Type: application/json\r\n");
		out->body = ks_xasprintf("{\"message\": \"kupenstack plugin test: %s %s is not in "
					 "http.yaml\"}",
					 req->method, req->url);
		out->body_len = strlen(out->body);
		return true;
	}
	c = &x->calls[i];
	c->used = true;
	out->status = c->status;
	out->reason = c->reason ? ks_xstrdup(c->reason) : NULL;
	out->message = c->message ? ks_xstrdup(c->message) : NULL;
	out->headers = c->headers ? ks_xstrdup(c->headers) : NULL;
	out->body = c->resp ? ks_xstrndup(c->resp, c->resp_len) : NULL;
	out->body_len = c->resp_len;
	return true;
}

void ks_fixture_http_leftover(struct ks_fixture *x)
{
	bool first = true;
	size_t i;

	for (i = 0; i < x->ncalls; i++) {
		if (x->calls[i].used)
			continue;
		if (first)
			ks_fixture_diag(x, "HTTP calls of http.yaml the plugin never made:");
		first = false;
		ks_fixture_diag(x, "  - %s %s  (call %zu)", x->calls[i].method, x->calls[i].url,
				i + 1);
	}
}

/* The fixture object of res ns/name, or NULL. */
static const cJSON *find_object(const struct ks_fixture *x, const struct ks_lua_fake_kube *k)
{
	char g[128], v[64], r[128];
	const cJSON *o;
	const char *ns, *name;

	cJSON_ArrayForEach(o, x->objects)
	{
		if (!ks_fixture_res_of(x, o, g, sizeof(g), v, sizeof(v), r, sizeof(r)))
			continue;
		ns = ks_json_str(o, "metadata.namespace");
		name = ks_json_str(o, "metadata.name");
		if (strcmp(g, k->res->group ? k->res->group : "") == 0 &&
		    strcmp(v, k->res->version) == 0 && strcmp(r, k->res->resource) == 0 && name &&
		    k->name && strcmp(name, k->name) == 0 &&
		    strcmp(ns ? ns : "", k->ns ? k->ns : "") == 0)
			return o;
	}
	return NULL;
}

static void record_write(struct ks_fixture *x, const struct ks_lua_fake_kube *k)
{
	cJSON *w = cJSON_CreateObject();

	cJSON_AddStringToObject(w, "verb", k->verb);
	cJSON_AddStringToObject(w, "resource", k->res->resource);
	cJSON_AddStringToObject(w, "group", k->res->group ? k->res->group : "");
	cJSON_AddStringToObject(w, "version", k->res->version);
	if (k->ns)
		cJSON_AddStringToObject(w, "namespace", k->ns);
	if (k->name)
		cJSON_AddStringToObject(w, "name", k->name);
	if (k->sub)
		cJSON_AddStringToObject(w, "subresource", k->sub);
	if (k->patch_type)
		cJSON_AddStringToObject(w, "patchType", k->patch_type);
	if (k->body)
		cJSON_AddItemToObject(w, "body", cJSON_Duplicate(k->body, true));
	cJSON_AddItemToArray(x->writes, w);
}

static void not_found(struct ks_lua_fake_reply *out, const struct ks_lua_fake_kube *k)
{
	out->status = 404;
	out->reason = ks_xstrdup("NotFound");
	out->message = ks_xasprintf("%s \"%s\" not found (not among the fixture's objects)",
				    k->res->resource, k->name ? k->name : "");
}

/* A create with metadata.generateName and no name is named as the API server would, with
 * a suffix of 5 characters: here the write's number (00001, ...), so fixtures can expect it. */
static void generate_name(cJSON *obj, int n)
{
	cJSON *m = cJSON_GetObjectItem(obj, "metadata");
	const char *g = cJSON_GetStringValue(cJSON_GetObjectItem(m, "generateName"));
	char *name;

	if (!g || cJSON_GetObjectItem(m, "name"))
		return;
	name = ks_xasprintf("%s%05d", g, n % 100000);
	cJSON_AddStringToObject(m, "name", name);
	free(name);
}

static bool fake_kube(struct ks_lua_fake *f, const struct ks_lua_fake_kube *k,
		      struct ks_lua_fake_reply *out)
{
	struct ks_fixture *x = KS_CONTAINER_OF(f, struct ks_fixture, fake);
	const cJSON *o = find_object(x, k);

	if (strcmp(k->verb, "get") != 0)
		record_write(x, k);
	if (strcmp(k->verb, "apply") == 0 || strcmp(k->verb, "create") == 0) {
		out->status = strcmp(k->verb, "create") == 0 ? 201 : 200;
		out->json = cJSON_Duplicate(k->body, true);
		if (strcmp(k->verb, "create") == 0)
			generate_name(out->json, cJSON_GetArraySize(x->writes));
	} else if (!o) {
		not_found(out, k);
	} else {
		out->status = 200;
		out->json = strcmp(k->verb, "delete") == 0 ? NULL : cJSON_Duplicate(o, true);
	}
	return true;
}

static void fake_event(struct ks_lua_fake *f, const cJSON *obj, const char *type,
		       const char *reason, const char *message)
{
	struct ks_fixture *x = KS_CONTAINER_OF(f, struct ks_fixture, fake);
	cJSON *e = cJSON_CreateObject();

	(void)obj;
	cJSON_AddStringToObject(e, "type", type);
	cJSON_AddStringToObject(e, "reason", reason);
	cJSON_AddStringToObject(e, "message", message);
	cJSON_AddItemToArray(x->events, e);
}

void ks_fixture_fake_init(struct ks_fixture *x)
{
	x->fake = (struct ks_lua_fake){ fake_http, fake_kube, fake_event };
	x->writes = cJSON_CreateArray();
	x->events = cJSON_CreateArray();
}
