/* webhook.c: the admission webhooks' certificate (kept in a Secret, rotated before it
 * expires) and their ValidatingWebhookConfiguration / MutatingWebhookConfiguration. */
#include "admission/impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ks.h"
#include "kubeconfig.h"
#include "log.h"

#define FIELD_MANAGER "kupenstack-admission"

static const struct ks_kube_res secret_res = { "", "v1", "secrets", true };
static const struct ks_kube_res vwc_res = { "admissionregistration.k8s.io", "v1",
					    "validatingwebhookconfigurations", false };
static const struct ks_kube_res mwc_res = { "admissionregistration.k8s.io", "v1",
					    "mutatingwebhookconfigurations", false };

static char *b64(const char *s)
{
	size_t len = strlen(s);
	unsigned char *out = ks_xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock(out, (const unsigned char *)s, (int)len);
	return (char *)out;
}

/* ---- webhook configurations ---- */

static cJSON *webhook(struct ks_admission *a, const char *name, const char *path)
{
	cJSON *w = cJSON_CreateObject(), *cc, *sel, *exprs, *e;
	const char *skip[] = { "kube-system", a->o.namespace };
	char *bundle = b64(a->cert.ca_pem);

	cJSON_AddStringToObject(w, "name", name);
	cc = cJSON_AddObjectToObject(w, "clientConfig");
	if (a->svc_name) { /* in a cluster: the API server finds the host through it */
		cJSON *svc = cJSON_AddObjectToObject(cc, "service");

		cJSON_AddStringToObject(svc, "namespace", a->o.namespace);
		cJSON_AddStringToObject(svc, "name", a->svc_name);
		cJSON_AddStringToObject(svc, "path", path);
		cJSON_AddNumberToObject(svc, "port", a->svc_port);
	} else {
		char *url = ks_xasprintf("%s%s", a->url, path);

		cJSON_AddStringToObject(cc, "url", url);
		free(url);
	}
	cJSON_AddStringToObject(cc, "caBundle", bundle);
	cJSON_AddItemToObject(w, "rules", ks_adm_rules(a));
	cJSON_AddStringToObject(w, "failurePolicy", a->o.failure_policy);
	cJSON_AddStringToObject(w, "matchPolicy", "Equivalent");
	cJSON_AddStringToObject(w, "sideEffects", "None");
	cJSON_AddNumberToObject(w, "timeoutSeconds", a->o.timeout_seconds);
	cJSON_AddItemToObject(w, "admissionReviewVersions",
			      cJSON_CreateStringArray((const char *const[]){ "v1" }, 1));
	/* Never kube-system nor the operator's own namespace: by name (Kubernetes 1.21 and
	 * later label every namespace with it) and by an opt-out label; the handler also
	 * admits both without running a policy. */
	sel = cJSON_AddObjectToObject(w, "namespaceSelector");
	exprs = cJSON_AddArrayToObject(sel, "matchExpressions");
	e = cJSON_CreateObject();
	cJSON_AddStringToObject(e, "key", "kubernetes.io/metadata.name");
	cJSON_AddStringToObject(e, "operator", "NotIn");
	cJSON_AddItemToObject(e, "values", cJSON_CreateStringArray(skip, 2));
	cJSON_AddItemToArray(exprs, e);
	e = cJSON_CreateObject();
	cJSON_AddStringToObject(e, "key", "kupenstack.io/admission");
	cJSON_AddStringToObject(e, "operator", "NotIn");
	cJSON_AddItemToObject(e, "values",
			      cJSON_CreateStringArray((const char *const[]){ "ignore" }, 1));
	cJSON_AddItemToArray(exprs, e);
	if (strcmp(path, "/mutate") == 0)
		cJSON_AddStringToObject(w, "reinvocationPolicy", "Never");
	free(bundle);
	return w;
}

static cJSON *config(struct ks_admission *a, const char *kind, const char *name, const char *path)
{
	cJSON *c = cJSON_CreateObject(), *m, *hooks;

	cJSON_AddStringToObject(c, "apiVersion", "admissionregistration.k8s.io/v1");
	cJSON_AddStringToObject(c, "kind", kind);
	m = cJSON_AddObjectToObject(c, "metadata");
	cJSON_AddStringToObject(m, "name", a->o.name);
	hooks = cJSON_AddArrayToObject(c, "webhooks");
	cJSON_AddItemToArray(hooks, webhook(a, name, path));
	return c;
}

static void swap_cert(uv_timer_t *t)
{
	struct ks_admission *a = t->data;
	char *err = NULL;

	if (!a->next_cert || a->stopping)
		return;
	if (ks_https_set_cert(a->https, a->next_cert, a->next_key, &err) != 0) {
		ks_err("admission: the new certificate was refused", "error=%s", err);
		free(err);
	} else {
		ks_info("admission: serving the new certificate", "port=%d",
			ks_https_port(a->https));
		free(a->cert.cert_pem);
		free(a->cert.key_pem);
		a->cert.cert_pem = a->next_cert;
		a->cert.key_pem = a->next_key;
		a->next_cert = a->next_key = NULL;
	}
	free(a->next_cert);
	free(a->next_key);
	a->next_cert = a->next_key = NULL;
}

static void apply_now(uv_timer_t *t);

static void applied(struct ks_kube_result *res, void *data)
{
	struct ks_admission *a = data;

	if (a->stopping)
		return;
	if (!ks_kube_ok(res)) {
		ks_warn("admission: could not apply a webhook configuration", "error=%s",
			res->message);
		a->apply_pending = true;
	}
	if (--a->applying > 0)
		return;
	if (a->apply_pending) {
		uv_timer_start(&a->apply_timer, apply_now, ks_kube_ok(res) ? 100 : 5000, 0);
		return;
	}
	/* Both configurations hold the new CA: the API server trusts the new certificate
	 * once its informer has them; give it a moment, then serve it. */
	if (a->next_cert)
		uv_timer_start(&a->swap_timer, swap_cert, 3000, 0);
}

static void apply_now(uv_timer_t *t)
{
	struct ks_admission *a = t->data;
	cJSON *v, *m;

	if (a->applying || !a->cert.ca_pem || a->stopping)
		return;
	a->apply_pending = false;
	a->applying = 2;
	v = config(a, "ValidatingWebhookConfiguration", "validate.kupenstack.io", "/validate");
	m = config(a, "MutatingWebhookConfiguration", "mutate.kupenstack.io", "/mutate");
	ks_kube_apply(a->kube, &vwc_res, NULL, a->o.name, NULL, v, FIELD_MANAGER, true, applied, a);
	ks_kube_apply(a->kube, &mwc_res, NULL, a->o.name, NULL, m, FIELD_MANAGER, true, applied, a);
	cJSON_Delete(v);
	cJSON_Delete(m);
}

void ks_adm_apply_soon(struct ks_admission *a)
{
	if (a->applying) {
		a->apply_pending = true;
		return;
	}
	if (!a->stopping)
		uv_timer_start(&a->apply_timer, apply_now, 50, 0);
}

/* ---- the certificate and its Secret ---- */

static void check_cert(uv_timer_t *t);

static char *secret_field(const cJSON *s, const char *key)
{
	const cJSON *v =
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "data"), key);
	size_t n;

	return cJSON_IsString(v) ? ks_base64_decode(v->valuestring, strlen(v->valuestring), &n)
				 : NULL;
}

static void start_serving(struct ks_admission *a)
{
	char *err = NULL;
	int rc;

	if (a->https || a->no_serve)
		return;
	rc = ks_https_start(a->loop, a->o.addr, a->cert.cert_pem, a->cert.key_pem,
			    &(struct ks_https_opts){ .client_ca_pem = a->client_ca_pem },
			    ks_adm_serve, a, &a->https, &err);
	if (rc) {
		ks_err("admission: cannot serve", "addr=%s error=%s", a->o.addr, err);
		free(err);
		return;
	}
	ks_info("admission: serving", "addr=%s url=%s service=%s client_ca=%s port=%d", a->o.addr,
		a->url ? a->url : "-", a->svc_name ? a->svc_dns : "-",
		a->client_ca_pem ? a->o.client_ca : "none", ks_https_port(a->https));
}

static void secret_written(struct ks_kube_result *res, void *data)
{
	struct ks_admission *a = data;

	if (a->stopping)
		return;
	if (!ks_kube_ok(res)) {
		ks_warn("admission: could not write the certificate Secret; retrying", "error=%s",
			res->message);
		uv_timer_start(&a->cert_timer, check_cert, 5000, 0);
		return;
	}
	start_serving(a);
	ks_adm_apply_soon(a); /* the new bundle first; the new certificate after (applied) */
}

/* Make a new CA and certificate; the bundle keeps the previous CA while it is valid. */
static void rotate(struct ks_admission *a)
{
	const char *sans[] = { "127.0.0.1", "localhost", a->svc_dns, NULL };
	struct ks_cert_pair p;
	char *err = NULL, *host = NULL, *bundle;
	cJSON *s, *d;
	long left = 0;

	if (ks_cert_make(&p, sans, a->o.cert_seconds, &err) != 0) {
		ks_err("admission: cannot make a certificate", "error=%s", err);
		free(err);
		return;
	}
	/* Keep the CA in force (the first of the old bundle) while it is valid. */
	if (a->cert.ca_pem && ks_cert_remaining(a->cert.ca_pem, &left, NULL) && left > 0) {
		const char *end = strstr(a->cert.ca_pem, "-----END CERTIFICATE-----");

		host = ks_xstrndup(a->cert.ca_pem, (size_t)(end - a->cert.ca_pem) + 26);
	}
	bundle = ks_xasprintf("%s%s", p.ca_pem, host ? host : "");
	free(host);
	free(p.ca_pem);
	p.ca_pem = bundle;
	if (a->https) { /* serve the old one until the API server trusts the new CA */
		a->next_cert = ks_xstrdup(p.cert_pem);
		a->next_key = ks_xstrdup(p.key_pem);
		free(p.cert_pem);
		free(p.key_pem);
		p.cert_pem = ks_xstrdup(a->cert.cert_pem);
		p.key_pem = ks_xstrdup(a->cert.key_pem);
	}
	s = cJSON_CreateObject();
	cJSON_AddStringToObject(s, "apiVersion", "v1");
	cJSON_AddStringToObject(s, "kind", "Secret");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(s, "metadata"), "name", a->o.name);
	cJSON_AddStringToObject(cJSON_GetObjectItem(s, "metadata"), "namespace", a->o.namespace);
	cJSON_AddStringToObject(s, "type", "kubernetes.io/tls");
	d = cJSON_AddObjectToObject(s, "data");
	cJSON_AddItemToObject(d, "ca.crt", cJSON_CreateString(bundle = b64(p.ca_pem)));
	free(bundle);
	cJSON_AddItemToObject(
		d, "tls.crt",
		cJSON_CreateString(bundle = b64(a->next_cert ? a->next_cert : p.cert_pem)));
	free(bundle);
	cJSON_AddItemToObject(
		d, "tls.key",
		cJSON_CreateString(bundle = b64(a->next_key ? a->next_key : p.key_pem)));
	free(bundle);
	ks_cert_deinit(&a->cert);
	a->cert = p;
	ks_info("admission: new certificate", "seconds=%ld", a->o.cert_seconds);
	ks_kube_apply(a->kube, &secret_res, a->o.namespace, a->o.name, NULL, s, FIELD_MANAGER, true,
		      secret_written, a);
	cJSON_Delete(s);
}

/* Seconds until the certificate should be replaced: at two thirds of its life, or now
 * when it was made for longer than the host is told to make them (--admission-cert-seconds
 * lowered). */
static long renew_in(const char *pem, long want)
{
	long left, total;

	if (!pem || !ks_cert_remaining(pem, &left, &total) || total > want + 120)
		return -1;
	return left - KS_MIN(total - 60, want) / 3; /* made valid from a minute back */
}

static void schedule_check(struct ks_admission *a)
{
	long period = KS_MAX(1, KS_MIN(3600, a->o.cert_seconds / 12));

	if (!a->stopping)
		uv_timer_start(&a->cert_timer, check_cert, (uint64_t)period * 1000, 0);
}

/* Another replica rotated: serve what the Secret holds when it lives longer than ours,
 * so that replicas sharing the Secret converge on one certificate (the rotating one has
 * put its CA in the bundle already). */
static void adopt_newer(struct ks_admission *a, const cJSON *secret)
{
	struct ks_cert_pair kept = { secret_field(secret, "ca.crt"), NULL,
				     secret_field(secret, "tls.crt"),
				     secret_field(secret, "tls.key") };
	long theirs, ours, total;
	char *err = NULL;

	if (kept.ca_pem && kept.cert_pem && kept.key_pem && a->https && !a->next_cert &&
	    strcmp(kept.cert_pem, a->cert.cert_pem) != 0 &&
	    ks_cert_remaining(kept.cert_pem, &theirs, &total) &&
	    ks_cert_remaining(a->cert.cert_pem, &ours, &total) && theirs > 0 &&
	    theirs + 5 >= ours) {
		if (ks_https_set_cert(a->https, kept.cert_pem, kept.key_pem, &err) == 0) {
			ks_info("admission: serving the Secret's newer certificate", "name=%s",
				a->o.name);
			ks_cert_deinit(&a->cert);
			a->cert = kept;
			return;
		}
		ks_warn("admission: the Secret's certificate was refused", "error=%s", err);
		free(err);
	}
	ks_cert_deinit(&kept);
}

static void secret_read(struct ks_kube_result *res, void *data)
{
	struct ks_admission *a = data;
	const char *serving;

	if (a->stopping)
		return;
	if (!ks_kube_ok(res) && res->code != 404) {
		ks_warn("admission: could not read the certificate Secret; retrying",
			"namespace=%s name=%s error=%s", a->o.namespace, a->o.name, res->message);
		uv_timer_start(&a->cert_timer, check_cert, 5000, 0);
		return;
	}
	if (ks_kube_ok(res) && !a->cert.cert_pem) { /* a restart: reuse what is kept */
		a->cert.ca_pem = secret_field(res->body, "ca.crt");
		a->cert.cert_pem = secret_field(res->body, "tls.crt");
		a->cert.key_pem = secret_field(res->body, "tls.key");
		if (!a->cert.ca_pem || !a->cert.cert_pem || !a->cert.key_pem)
			ks_cert_deinit(&a->cert);
		else
			ks_info("admission: reusing the certificate of the Secret", "name=%s",
				a->o.name);
	} else if (ks_kube_ok(res)) {
		adopt_newer(a, res->body);
	}
	serving = a->next_cert ? a->next_cert : a->cert.cert_pem;
	if (a->next_cert) {
		/* a rotation is under way: its certificate is served after the grace delay */
	} else if (renew_in(serving, a->o.cert_seconds) <= 0) {
		rotate(a);
	} else if (!ks_cert_names(serving, a->svc_dns)) {
		ks_info("admission: the certificate does not name the Service; replacing it",
			"service=%s", a->svc_dns);
		rotate(a);
	} else if (!a->https) {
		start_serving(a);
		ks_adm_apply_soon(a);
	}
	schedule_check(a);
}

static void check_cert(uv_timer_t *t)
{
	struct ks_admission *a = t->data;

	if (!a->stopping)
		ks_kube_get(a->kube, &secret_res, a->o.namespace, a->o.name, secret_read, a);
}

static void timer_closed(uv_handle_t *h)
{
	struct ks_admission *a = h->data;

	if (--a->open_timers == 0)
		free(a);
}

void ks_adm_cert_start(struct ks_admission *a)
{
	uv_timer_t *ts[] = { &a->cert_timer, &a->swap_timer, &a->apply_timer, &a->audit_timer };

	for (size_t i = 0; i < KS_ARRAY_SIZE(ts); i++) {
		ks_require(uv_timer_init(a->loop, ts[i]) == 0);
		ts[i]->data = a;
		a->open_timers++;
	}
	check_cert(&a->cert_timer);
	ks_adm_audit_soon(a, a->o.audit_seconds);
}

void ks_admission_free(struct ks_admission *a)
{
	uv_timer_t *ts[4];

	if (!a)
		return;
	/* Taken only now: &a->x of a NULL a is undefined (UBSan caught it). */
	ts[0] = &a->cert_timer;
	ts[1] = &a->swap_timer;
	ts[2] = &a->apply_timer;
	ts[3] = &a->audit_timer;
	a->stopping = true;
	if (a->https)
		ks_https_stop(a->https);
	ks_watch_free(a->cpol_watch);
	ks_watch_free(a->pol_watch);
	ks_watch_free(a->ns_watch);
	ks_cache_free(a->cpol_cache);
	ks_cache_free(a->pol_cache);
	ks_cache_free(a->ns_cache);
	for (size_t i = 0; i < a->nreads; i++) {
		ks_watch_free(a->reads[i].watch);
		ks_cache_free(a->reads[i].cache);
		free(a->reads[i].handler);
		free(a->reads[i].res);
		free(a->reads[i].group);
		free(a->reads[i].version);
		free(a->reads[i].resource);
	}
	for (size_t i = 0; i < a->nentries; i++) {
		ks_policy_free(a->entries[i].p);
		free(a->entries[i].id);
		free(a->entries[i].audit);
		free(a->entries[i].source_rv);
	}
	free(a->entries);
	for (size_t i = 0; i < a->nshares; i++)
		free(a->shares[i].ns);
	free(a->shares);
	while (a->npending)
		ks_adm_pending_drop(a, 0);
	free(a->pending);
	ks_cert_deinit(&a->cert);
	free(a->next_cert);
	free(a->next_key);
	free(a->url);
	free(a->svc_name);
	free(a->svc_dns);
	free(a->client_ca_pem);
	for (size_t i = 0; i < KS_ARRAY_SIZE(ts); i++)
		uv_close((uv_handle_t *)ts[i], timer_closed);
}
