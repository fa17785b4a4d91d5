/*
 * scrape.c: fetching and reading /metrics.
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "http.h"
#include "ks.h"
#include "scrape.h"

/* A label value between quotes at *p (after the opening quote), unescaped into a fresh
 * string; *p ends after the closing quote. NULL when it does not end. */
static char *label_value(const char **p, const char *end)
{
	struct ks_buf b;
	const char *s = *p;

	ks_buf_init(&b);
	for (; s < end && *s != '"'; s++) {
		if (*s == '\\' && s + 1 < end) {
			s++;
			ks_buf_append(&b, *s == 'n' ? "\n" : s, 1);
		} else {
			ks_buf_append(&b, s, 1);
		}
	}
	if (s >= end) {
		ks_buf_deinit(&b);
		return NULL;
	}
	*p = s + 1;
	return ks_buf_steal(&b);
}

/* {a="x",b="y"} at *p into labels; *p ends after the brace. False when malformed. */
static bool labels(const char **p, const char *end, cJSON *out)
{
	const char *s = *p + 1, *eq;
	char *name, *value;

	while (s < end && *s != '}') {
		eq = memchr(s, '=', (size_t)(end - s));
		if (!eq || eq + 1 >= end || eq[1] != '"')
			return false;
		name = ks_xstrndup(s, (size_t)(eq - s));
		s = eq + 2;
		value = label_value(&s, end);
		if (value)
			cJSON_AddStringToObject(out, name, value);
		free(name);
		free(value);
		if (!value)
			return false;
		if (s < end && *s == ',')
			s++;
	}
	if (s >= end)
		return false;
	*p = s + 1;
	return true;
}

/* One sample line; NULL when it is not one. */
static cJSON *sample(const char *s, const char *end)
{
	const char *name = s;
	cJSON *o = cJSON_CreateObject(), *l = cJSON_AddObjectToObject(o, "labels");
	char *num, *stop;
	double v;

	while (s < end && *s != '{' && *s != ' ')
		s++;
	num = ks_xstrndup(name, (size_t)(s - name));
	cJSON_AddStringToObject(o, "name", num);
	free(num);
	if (s < end && *s == '{' && !labels(&s, end, l))
		goto out_bad;
	while (s < end && *s == ' ')
		s++;
	num = ks_xstrndup(s, (size_t)(end - s));
	v = strtod(num, &stop);
	if (stop == num) {
		free(num);
		goto out_bad;
	}
	free(num);
	cJSON_AddNumberToObject(o, "value", v);
	return o;
out_bad:
	cJSON_Delete(o);
	return NULL;
}

cJSON *ks_scrape_parse(const char *text, size_t len)
{
	const char *p = text, *end = text + len, *eol;
	cJSON *all = cJSON_CreateArray(), *s;

	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if (eol > p && *p != '#' && (s = sample(p, eol)) != NULL)
			cJSON_AddItemToArray(all, s);
		p = eol + 1;
	}
	return all;
}

struct fetch {
	bool done;
	long status;
	char *body, *err;
	size_t len;
};

static void fetched(struct ks_http_req *req, const struct ks_http_resp *resp, void *data)
{
	struct fetch *f = data;

	(void)req;
	f->done = true;
	f->status = resp->status;
	if (resp->status == 0)
		f->err = ks_xstrdup(resp->errmsg);
	f->body = ks_xstrndup(resp->body.data ? resp->body.data : "", resp->body.len);
	f->len = resp->body.len;
}

char *ks_scrape_get(const char *addr, size_t *len, char **err)
{
	struct fetch f = { 0 };
	uv_loop_t loop;
	struct ks_http *h;
	char *url = ks_xasprintf("http://%s/metrics", addr);

	uv_loop_init(&loop);
	h = ks_http_new(&loop);
	ks_http_request(h,
			&(struct ks_http_opts){
				.url = url, .timeout_ms = 10000, .on_done = fetched, .data = &f });
	while (!f.done && uv_run(&loop, UV_RUN_ONCE))
		;
	ks_http_free(h);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (f.status != 200) {
		*err = f.status ? ks_xasprintf("GET %s: HTTP %ld", url, f.status)
				: ks_xasprintf("GET %s: %s", url, f.err ? f.err : "no answer");
		free(f.body);
		f.body = NULL;
	}
	*len = f.len;
	free(f.err);
	free(url);
	return f.body;
}
