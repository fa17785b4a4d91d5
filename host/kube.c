/* kube.c: Kubernetes API requests over ks_http, with Status errors and token rotation. */
#include "kube.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "ks.h"
#include "log.h"

struct ks_kube {
	struct ks_http *http;
	struct ks_kubeconfig cfg;
	struct ks_http_tls tls;
	char *auth;	    /* "Authorization: Bearer ..." or NULL */
	struct stat tok_st; /* what the token file looked like when read */
	ks_kube_observe_cb observe;
	void *observe_data;
};

struct ks_kube_call {
	struct ks_kube *k;
	struct ks_http_req *req;
	ks_kube_cb cb;
	ks_http_data_cb on_data;
	void *data;
	struct list_state *list; /* a LIST of many pages: the page in flight is list->cur */
	bool done;
	char method[8];
};

struct list_state {
	struct ks_kube *k;
	char *path; /* the collection path with every query but continue */
	cJSON *items;
	ks_kube_cb cb;
	void *data;
	struct ks_kube_call *cur;
	struct ks_kube_call proxy;
};

static char *dup_or_null(const char *s)
{
	return s ? ks_xstrdup(s) : NULL;
}

static char *dup_mem(const char *s, size_t n)
{
	return s ? ks_xstrndup(s, n) : NULL;
}

static void copy_config(struct ks_kubeconfig *d, const struct ks_kubeconfig *s)
{
	d->server = dup_or_null(s->server);
	d->context = dup_or_null(s->context);
	d->namespace = dup_or_null(s->namespace);
	d->ca_file = dup_or_null(s->ca_file);
	d->ca_data = dup_mem(s->ca_data, s->ca_len);
	d->ca_len = s->ca_len;
	d->cert_file = dup_or_null(s->cert_file);
	d->cert_data = dup_mem(s->cert_data, s->cert_len);
	d->cert_len = s->cert_len;
	d->key_file = dup_or_null(s->key_file);
	d->key_data = dup_mem(s->key_data, s->key_len);
	d->key_len = s->key_len;
	d->token = dup_or_null(s->token);
	d->token_file = dup_or_null(s->token_file);
}

static void set_token(struct ks_kube *k, const char *tok, size_t n)
{
	while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
		n--;
	free(k->auth);
	k->auth = ks_xasprintf("Authorization: Bearer %.*s", (int)n, tok);
}

/* Re-read the token file when it changed (rotation), as client-go does. */
static void refresh_token(struct ks_kube *k)
{
	struct stat st;
	char buf[16384];
	FILE *f;
	size_t n;

	if (!k->cfg.token_file || stat(k->cfg.token_file, &st) != 0)
		return;
	if (k->auth && st.st_ino == k->tok_st.st_ino && st.st_size == k->tok_st.st_size &&
	    st.st_mtim.tv_sec == k->tok_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == k->tok_st.st_mtim.tv_nsec)
		return;
	f = fopen(k->cfg.token_file, "rb");
	if (!f)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if (n == 0) {
		ks_warn("token file is empty, keeping the previous token", "file=%s",
			ks_logq(k->cfg.token_file));
		return;
	}
	if (k->auth)
		ks_info("token file changed, using the new token", "file=%s",
			ks_logq(k->cfg.token_file));
	set_token(k, buf, n);
	k->tok_st = st;
}

struct ks_kube *ks_kube_new(struct ks_http *http, const struct ks_kubeconfig *cfg)
{
	struct ks_kube *k = ks_xcalloc(1, sizeof(*k));

	k->http = http;
	copy_config(&k->cfg, cfg);
	k->tls = (struct ks_http_tls){
		.ca_file = k->cfg.ca_file,
		.ca_data = k->cfg.ca_data,
		.ca_len = k->cfg.ca_len,
		.cert_file = k->cfg.cert_file,
		.cert_data = k->cfg.cert_data,
		.cert_len = k->cfg.cert_len,
		.key_file = k->cfg.key_file,
		.key_data = k->cfg.key_data,
		.key_len = k->cfg.key_len,
	};
	if (k->cfg.token)
		set_token(k, k->cfg.token, strlen(k->cfg.token));
	refresh_token(k);
	return k;
}

void ks_kube_free(struct ks_kube *k)
{
	if (!k)
		return;
	ks_kubeconfig_deinit(&k->cfg);
	free(k->auth);
	free(k);
}

const struct ks_kubeconfig *ks_kube_config(const struct ks_kube *k)
{
	return &k->cfg;
}

void ks_kube_set_observer(struct ks_kube *k, ks_kube_observe_cb cb, void *data)
{
	k->observe = cb;
	k->observe_data = data;
}

char *ks_kube_path(const struct ks_kube_res *res, const char *ns, const char *name, const char *sub)
{
	struct ks_buf b;

	ks_buf_init(&b);
	if (res->group && *res->group)
		ks_buf_printf(&b, "/apis/%s/%s", res->group, res->version);
	else
		ks_buf_printf(&b, "/api/%s", res->version);
	if (res->namespaced && ns && *ns)
		ks_buf_printf(&b, "/namespaces/%s", ns);
	ks_buf_printf(&b, "/%s", res->resource);
	if (name)
		ks_buf_printf(&b, "/%s", name);
	if (name && sub)
		ks_buf_printf(&b, "/%s", sub);
	return ks_buf_steal(&b);
}

char *ks_kube_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct ks_buf b;

	ks_buf_init(&b);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			ks_buf_append(&b, s, 1);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };

			ks_buf_append(&b, e, 3);
		}
	}
	return ks_buf_steal(&b);
}

static const char *transport_reason(int err)
{
	switch (err) {
	case -ETIMEDOUT:
		return "Timeout";
	case -ECONNREFUSED:
		return "ConnectionRefused";
	case -EHOSTUNREACH:
		return "HostUnreachable";
	case -ECONNRESET:
		return "ConnectionReset";
	case -ECANCELED:
		return "StreamStopped";
	case -EPROTO:
		return "TLSError";
	case -EFBIG:
		return "ResponseTooLarge";
	default:
		return "TransportError";
	}
}

static const char *http_reason(long code)
{
	switch (code) {
	case 400:
		return "BadRequest";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "NotFound";
	case 405:
		return "MethodNotAllowed";
	case 409:
		return "Conflict";
	case 410:
		return "Expired";
	case 415:
		return "UnsupportedMediaType";
	case 422:
		return "Invalid";
	case 429:
		return "TooManyRequests";
	case 500:
		return "InternalError";
	case 503:
		return "ServiceUnavailable";
	case 504:
		return "Timeout";
	default:
		return "Unknown";
	}
}

static void on_done(struct ks_http_req *req, const struct ks_http_resp *resp, void *data)
{
	struct ks_kube_call *c = data;
	struct ks_kube_result res = { .code = resp->status, .reason = "", .message = "" };
	char *msg = NULL;

	(void)req;
	if (resp->body.len)
		res.body = ks_json_parse(resp->body.data, resp->body.len);
	if (resp->err) {
		res.code = 0;
		res.reason = transport_reason(resp->err);
		msg = ks_xasprintf("%s %s: %s", c->method, c->k->cfg.server, resp->errmsg);
	} else if (!ks_kube_ok(&res)) {
		const char *r = ks_json_str(res.body, "reason");
		const char *m = ks_json_str(res.body, "message");

		res.reason = r && *r ? r : http_reason(res.code);
		if (m && *m)
			res.message = m;
		else
			msg = ks_xasprintf("HTTP %ld: %.200s", res.code,
					   resp->body.len ? resp->body.data : "(empty body)");
	}
	if (msg)
		res.message = msg;
	if (c->k->observe)
		c->k->observe(c->method, res.code, resp->elapsed, c->k->observe_data);
	c->done = true;
	c->cb(&res, c->data);
	cJSON_Delete(res.body);
	free(msg);
	free(c);
}

static int on_stream(struct ks_http_req *req, const char *p, size_t n, void *data)
{
	struct ks_kube_call *c = data;

	return c->on_data(req, p, n, c->data);
}

static struct ks_kube_call *start(struct ks_kube *k, const char *method, const char *path,
				  const char *ctype, const char *body, ks_http_data_cb on_data,
				  ks_kube_cb cb, void *data)
{
	struct ks_kube_call *c = ks_xcalloc(1, sizeof(*c));
	const char *hdrs[6];
	char *url, *ct = NULL;
	size_t nh = 0;

	refresh_token(k);
	c->k = k;
	c->cb = cb;
	c->on_data = on_data;
	c->data = data;
	snprintf(c->method, sizeof(c->method), "%s", method);
	hdrs[nh++] = "Accept: application/json";
	hdrs[nh++] = "User-Agent: kupenstack/" KS_VERSION;
	if (k->auth)
		hdrs[nh++] = k->auth;
	if (ctype)
		hdrs[nh++] = ct = ks_xasprintf("Content-Type: %s", ctype);
	hdrs[nh] = NULL;
	url = ks_xasprintf("%s%s", k->cfg.server, path);
	c->req = ks_http_request(k->http, &(struct ks_http_opts){
						  .method = method,
						  .url = url,
						  .headers = hdrs,
						  .body = body,
						  .body_len = body ? strlen(body) : 0,
						  .timeout_ms = on_data ? 0 : 60000,
						  .tls = &k->tls,
						  .on_data = on_data ? on_stream : NULL,
						  .on_done = on_done,
						  .data = c,
					  });
	ks_require(c->req);
	free(url);
	free(ct);
	return c;
}

struct ks_kube_call *ks_kube_request(struct ks_kube *k, const char *method, const char *path,
				     const char *content_type, const char *body, ks_kube_cb cb,
				     void *data)
{
	return start(k, method, path, content_type, body, NULL, cb, data);
}

struct ks_kube_call *ks_kube_stream(struct ks_kube *k, const char *path, ks_http_data_cb on_data,
				    ks_kube_cb cb, void *data)
{
	return start(k, "GET", path, NULL, NULL, on_data, cb, data);
}

void ks_kube_cancel(struct ks_kube_call *c)
{
	struct list_state *st = c->list;

	if (c->done)
		return;
	if (st) {
		if (st->cur)
			ks_kube_cancel(st->cur);
		cJSON_Delete(st->items);
		free(st->path);
		free(st);
		return;
	}
	ks_http_cancel(c->req);
	free(c);
}

static void send_json(struct ks_kube *k, const char *method, char *path, const char *ctype,
		      const cJSON *obj, ks_kube_cb cb, void *data)
{
	char *body = obj ? ks_json_print(obj) : NULL;

	start(k, method, path, obj ? ctype : NULL, body, NULL, cb, data);
	free(body);
	free(path);
}

void ks_kube_get(struct ks_kube *k, const struct ks_kube_res *res, const char *ns, const char *name,
		 ks_kube_cb cb, void *data)
{
	send_json(k, "GET", ks_kube_path(res, ns, name, NULL), NULL, NULL, cb, data);
}

void ks_kube_create(struct ks_kube *k, const struct ks_kube_res *res, const char *ns,
		    const cJSON *obj, ks_kube_cb cb, void *data)
{
	send_json(k, "POST", ks_kube_path(res, ns, NULL, NULL), "application/json", obj, cb, data);
}

void ks_kube_replace(struct ks_kube *k, const struct ks_kube_res *res, const char *ns,
		     const char *name, const char *sub, const cJSON *obj, ks_kube_cb cb, void *data)
{
	send_json(k, "PUT", ks_kube_path(res, ns, name, sub), "application/json", obj, cb, data);
}

void ks_kube_apply(struct ks_kube *k, const struct ks_kube_res *res, const char *ns,
		   const char *name, const char *sub, const cJSON *obj, const char *field_manager,
		   bool force, ks_kube_cb cb, void *data)
{
	char *base = ks_kube_path(res, ns, name, sub), *fm = ks_kube_escape(field_manager);
	char *path = ks_xasprintf("%s?fieldManager=%s%s", base, fm, force ? "&force=true" : "");

	free(base);
	free(fm);
	/* JSON is YAML: the server takes it as an apply patch as it is. */
	send_json(k, "PATCH", path, "application/apply-patch+yaml", obj, cb, data);
}

void ks_kube_patch(struct ks_kube *k, const struct ks_kube_res *res, const char *ns,
		   const char *name, const char *sub, enum ks_kube_patch type, const cJSON *patch,
		   ks_kube_cb cb, void *data)
{
	static const char *const types[] = {
		[KS_PATCH_MERGE] = "application/merge-patch+json",
		[KS_PATCH_JSON] = "application/json-patch+json",
		[KS_PATCH_STRATEGIC] = "application/strategic-merge-patch+json",
	};

	send_json(k, "PATCH", ks_kube_path(res, ns, name, sub), types[type], patch, cb, data);
}

void ks_kube_delete(struct ks_kube *k, const struct ks_kube_res *res, const char *ns,
		    const char *name, const struct ks_kube_delete_opts *o, ks_kube_cb cb,
		    void *data)
{
	cJSON *body = cJSON_CreateObject(), *pre;

	cJSON_AddStringToObject(body, "apiVersion", "v1");
	cJSON_AddStringToObject(body, "kind", "DeleteOptions");
	if (o && (o->uid || o->resource_version)) {
		pre = cJSON_AddObjectToObject(body, "preconditions");
		if (o->uid)
			cJSON_AddStringToObject(pre, "uid", o->uid);
		if (o->resource_version)
			cJSON_AddStringToObject(pre, "resourceVersion", o->resource_version);
	}
	if (o && o->propagation)
		cJSON_AddStringToObject(body, "propagationPolicy", o->propagation);
	send_json(k, "DELETE", ks_kube_path(res, ns, name, NULL), "application/json", body, cb,
		  data);
	cJSON_Delete(body);
}

/* LIST, page after page. */
static void list_next(struct list_state *st, const char *cont);

static void on_page(struct ks_kube_result *res, void *data)
{
	struct list_state *st = data;
	cJSON *items;
	const char *cont;

	st->cur = NULL;
	if (!ks_kube_ok(res) || !cJSON_IsObject(res->body)) {
		if (ks_kube_ok(res)) {
			res->code = 0;
			res->reason = "InvalidResponse";
			res->message = "LIST answered with something that is not a list";
		}
		goto out_done;
	}
	items = cJSON_DetachItemFromObjectCaseSensitive(res->body, "items");
	if (cJSON_IsArray(items)) {
		while (items->child)
			cJSON_AddItemToArray(st->items,
					     cJSON_DetachItemViaPointer(items, items->child));
	}
	cJSON_Delete(items);
	cont = ks_json_str(res->body, "metadata.continue");
	if (cont && *cont) {
		list_next(st, cont);
		return;
	}
	cJSON_AddItemToObject(res->body, "items", st->items);
	st->items = NULL;
out_done:
	st->proxy.done = true;
	st->cb(res, st->data);
	cJSON_Delete(st->items);
	free(st->path);
	free(st);
}

static void list_next(struct list_state *st, const char *cont)
{
	char *path, *c = cont ? ks_kube_escape(cont) : NULL;

	if (c)
		path = ks_xasprintf("%s%scontinue=%s", st->path, strchr(st->path, '?') ? "&" : "?",
				    c);
	else
		path = ks_xstrdup(st->path);
	st->cur = start(st->k, "GET", path, NULL, NULL, NULL, on_page, st);
	free(path);
	free(c);
}

static void add_query(struct ks_buf *b, const char *key, const char *val)
{
	char *e;

	if (!val || !*val)
		return;
	e = ks_kube_escape(val);
	ks_buf_printf(b, "%c%s=%s", strchr(b->data, '?') ? '&' : '?', key, e);
	free(e);
}

struct ks_kube_call *ks_kube_list(struct ks_kube *k, const struct ks_kube_res *res, const char *ns,
				  const struct ks_kube_list_opts *o, ks_kube_cb cb, void *data)
{
	struct list_state *st = ks_xcalloc(1, sizeof(*st));
	struct ks_buf b;
	char *base = ks_kube_path(res, ns, NULL, NULL), lim[32];

	ks_buf_init(&b);
	ks_buf_puts(&b, base);
	free(base);
	if (o) {
		add_query(&b, "labelSelector", o->label_selector);
		add_query(&b, "fieldSelector", o->field_selector);
		add_query(&b, "resourceVersion", o->resource_version);
		if (o->limit > 0) {
			snprintf(lim, sizeof(lim), "%ld", o->limit);
			add_query(&b, "limit", lim);
		}
	}
	st->k = k;
	st->path = ks_buf_steal(&b);
	st->items = cJSON_CreateArray();
	st->cb = cb;
	st->data = data;
	st->proxy.list = st;
	list_next(st, NULL);
	return &st->proxy;
}
