/* review.c: AdmissionReview in and out; the policies of one request. */
#include "admission/review.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ks.h"
#include "log.h"

/* "/a/b" pointer of the first n segments of segs, escaped. */
static char *pointer(char **segs, size_t n)
{
	struct ks_buf b;

	ks_buf_init(&b);
	for (size_t i = 0; i < n; i++) {
		ks_buf_puts(&b, "/");
		for (const char *c = segs[i]; *c; c++)
			ks_buf_puts(&b, *c == '~' ? "~0" : *c == '/' ? "~1" : (char[]){ *c, 0 });
	}
	return ks_buf_steal(&b);
}

static int set_one(cJSON *obj, const char *path, const cJSON *value, cJSON *patch, char **err)
{
	char *copy = ks_xstrdup(path), *segs[32], *save = NULL, *ptr;
	size_t n = 0, i;
	cJSON *at = obj, *next, *v, *op;
	int rc = 0;

	for (char *t = strtok_r(copy, ".", &save); t && n < KS_ARRAY_SIZE(segs);
	     t = strtok_r(NULL, ".", &save))
		segs[n++] = t;
	for (i = 0; i + 1 < n && (next = cJSON_GetObjectItemCaseSensitive(at, segs[i])); i++) {
		if (!cJSON_IsObject(next)) {
			*err = ks_xasprintf("default: %s: %s is not an object", path, segs[i]);
			rc = -EINVAL;
			goto out;
		}
		at = next;
	}
	if (n == 0 || !cJSON_IsObject(at)) {
		*err = ks_xasprintf("default: bad field path '%s'", path);
		rc = -EINVAL;
		goto out;
	}
	/* segs[i] is the first missing (or the last): add it with the rest nested. */
	v = cJSON_Duplicate(value, 1);
	for (size_t j = n - 1; j > i; j--) {
		cJSON *wrap = cJSON_CreateObject();

		cJSON_AddItemToObject(wrap, segs[j], v);
		v = wrap;
	}
	ptr = pointer(segs, i + 1);
	op = cJSON_CreateObject();
	cJSON_AddStringToObject(op, "op", "add");
	cJSON_AddStringToObject(op, "path", ptr);
	cJSON_AddItemToObject(op, "value", cJSON_Duplicate(v, 1));
	cJSON_AddItemToArray(patch, op);
	free(ptr);
	if (cJSON_GetObjectItemCaseSensitive(at, segs[i]))
		cJSON_ReplaceItemInObjectCaseSensitive(at, segs[i], v);
	else
		cJSON_AddItemToObject(at, segs[i], v);
out:
	free(copy);
	return rc;
}

int ks_review_set_fields(cJSON *obj, const cJSON *fields, cJSON *patch, char **err)
{
	const cJSON *f;
	int rc = 0;

	cJSON_ArrayForEach(f, fields)
	{
		if (!rc && f->string)
			rc = set_one(obj, f->string, f, patch, err);
	}
	return rc;
}

static char *tagged(const struct ks_policy *p, const char *msg)
{
	return ks_xasprintf("[%s] %s", ks_policy_name(p), msg);
}

static void add_string(cJSON **arr, char *s)
{
	if (!*arr)
		*arr = cJSON_CreateArray();
	cJSON_AddItemToArray(*arr, cJSON_CreateString(s));
	free(s);
}

/* One policy's outcome: a message (denial or error) for its action. */
static void judge(const struct ks_policy *p, char *msg, bool failed, struct ks_review_out *out)
{
	char *t;

	if (!msg)
		return;
	t = failed ? ks_xasprintf("[%s] the policy failed: %s", ks_policy_name(p), msg)
		   : tagged(p, msg);
	free(msg);
	switch (ks_policy_action(p)) {
	case KS_POLICY_DENY:
		out->allowed = false;
		free(out->message);
		out->message = t;
		break;
	case KS_POLICY_WARN:
		add_string(&out->warnings, t);
		break;
	default:
		add_string(&out->audits, t);
	}
}

void ks_review_run(struct ks_policy *const *ps, size_t n, struct ks_policy_req *r,
		   const struct ks_policy_env *env, bool mutate, struct ks_review_out *out)
{
	memset(out, 0, sizeof(*out));
	out->allowed = true;
	for (size_t i = 0; i < n && out->allowed; i++) {
		cJSON *fields = NULL;
		char *msg = NULL;
		int rc;

		if (!ks_policy_matches(ps[i], r))
			continue;
		if (!mutate) {
			rc = ks_policy_validate(ps[i], r, env, &msg);
			judge(ps[i], msg, rc != 0, out);
			continue;
		}
		if (!ks_policy_has_default(ps[i]) || !r->object)
			continue;
		rc = ks_policy_default(ps[i], r, env, &fields, &msg);
		if (!rc && fields) {
			if (!out->patch)
				out->patch = cJSON_CreateArray();
			rc = ks_review_set_fields(r->object, fields, out->patch, &msg);
		}
		cJSON_Delete(fields);
		if (rc) /* a default that fails refuses, whatever the action */
			judge(ps[i], msg, true, out), out->allowed = false;
	}
}

void ks_review_out_deinit(struct ks_review_out *out)
{
	free(out->message);
	cJSON_Delete(out->warnings);
	cJSON_Delete(out->patch);
	cJSON_Delete(out->audits);
	memset(out, 0, sizeof(*out));
}

static const char *sget(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : "";
}

cJSON *ks_review_parse(const char *body, struct ks_policy_req *r, const char **uid, bool *dry_run,
		       const char **err)
{
	cJSON *doc = cJSON_Parse(body), *req, *o;

	memset(r, 0, sizeof(*r));
	req = cJSON_GetObjectItemCaseSensitive(doc, "request");
	if (!cJSON_IsObject(req) || !*sget(req, "uid")) {
		*err = "not an AdmissionReview with a request and its uid";
		cJSON_Delete(doc);
		return NULL;
	}
	*uid = sget(req, "uid");
	r->operation = sget(req, "operation");
	r->ns = sget(req, "namespace");
	r->name = sget(req, "name");
	o = cJSON_GetObjectItemCaseSensitive(req, "kind");
	r->group = sget(o, "group");
	r->kind = sget(o, "kind");
	o = cJSON_GetObjectItemCaseSensitive(req, "object");
	r->object = cJSON_IsObject(o) ? o : NULL;
	o = cJSON_GetObjectItemCaseSensitive(req, "oldObject");
	r->old = cJSON_IsObject(o) ? o : NULL;
	r->user = cJSON_GetObjectItemCaseSensitive(req, "userInfo");
	*dry_run = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "dryRun"));
	return doc;
}

char *ks_review_response(const char *uid, const struct ks_review_out *out)
{
	cJSON *doc = cJSON_CreateObject(), *resp, *st;
	char *patch, *text;
	unsigned char *b64;
	size_t len;

	cJSON_AddStringToObject(doc, "apiVersion", "admission.k8s.io/v1");
	cJSON_AddStringToObject(doc, "kind", "AdmissionReview");
	resp = cJSON_AddObjectToObject(doc, "response");
	cJSON_AddStringToObject(resp, "uid", uid);
	cJSON_AddBoolToObject(resp, "allowed", out->allowed);
	if (!out->allowed) {
		st = cJSON_AddObjectToObject(resp, "status");
		cJSON_AddNumberToObject(st, "code", 403);
		cJSON_AddStringToObject(st, "reason", "Forbidden");
		cJSON_AddStringToObject(st, "message", out->message ? out->message : "denied");
	}
	if (out->warnings)
		cJSON_AddItemToObject(resp, "warnings", cJSON_Duplicate(out->warnings, 1));
	if (out->allowed && out->patch && cJSON_GetArraySize(out->patch) > 0) {
		patch = cJSON_PrintUnformatted(out->patch);
		len = strlen(patch);
		b64 = ks_xmalloc(4 * ((len + 2) / 3) + 1);
		EVP_EncodeBlock(b64, (const unsigned char *)patch, (int)len);
		cJSON_AddStringToObject(resp, "patchType", "JSONPatch");
		cJSON_AddStringToObject(resp, "patch", (const char *)b64);
		free(b64);
		free(patch);
	}
	text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	return text;
}
