/* kubeconfig.c: kubeconfig files and the in-cluster service account. */
#include "kubeconfig.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "ks.h"
#include "yaml.h"

#define SA_ROOT "/var/run/secrets/kubernetes.io/serviceaccount"

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

char *ks_base64_decode(const char *in, size_t len, size_t *out_len)
{
	char *out = ks_xmalloc(len / 4 * 3 + 4);
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	bool pad = false;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		int v;

		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad = true;
			continue;
		}
		v = b64val(c);
		if (v < 0 || pad)
			goto out_bad;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	if (bits >= 6)
		goto out_bad;
	out[o] = '\0';
	*out_len = o;
	return out;
out_bad:
	free(out);
	return NULL;
}

/* The entry named name in a kubeconfig list (clusters, users, contexts): its `key` map. */
static const cJSON *named(const cJSON *doc, const char *list, const char *name, const char *key)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, list), *it;

	cJSON_ArrayForEach(it, arr)
	{
		const char *n = ks_json_str(it, "name");

		if (n && strcmp(n, name) == 0)
			return cJSON_GetObjectItemCaseSensitive(it, key);
	}
	return NULL;
}

static char *resolve(const char *dir, const char *file)
{
	if (file[0] == '/' || !dir)
		return ks_xstrdup(file);
	return ks_xasprintf("%s/%s", dir, file);
}

/* One file-or-data pair, e.g. certificate-authority / certificate-authority-data. */
static int take_pem(const cJSON *m, const char *field, const char *dir, char **file, char **data,
		    size_t *len, char **err)
{
	char key[64];
	const char *s;

	s = ks_json_str(m, field);
	if (s && *s)
		*file = resolve(dir, s);
	snprintf(key, sizeof(key), "%s-data", field);
	s = ks_json_str(m, key);
	if (s && *s) {
		*data = ks_base64_decode(s, strlen(s), len);
		if (!*data) {
			*err = ks_xasprintf("%s is not valid base64", key);
			return -EINVAL;
		}
	}
	return 0;
}

static int take_cluster(struct ks_kubeconfig *c, const cJSON *cl, const char *dir, char **err)
{
	const char *server = ks_json_str(cl, "server");
	const cJSON *insecure = cJSON_GetObjectItemCaseSensitive(cl, "insecure-skip-tls-verify");
	size_t n;

	if (!server || !*server) {
		*err = ks_xstrdup("cluster has no server");
		return -EINVAL;
	}
	if (cJSON_IsTrue(insecure)) {
		*err = ks_xstrdup(
			"insecure-skip-tls-verify is not supported: give the cluster's CA");
		return -EINVAL;
	}
	if (strncmp(server, "https://", 8) != 0) {
		*err = ks_xasprintf("server %s is not https://", server);
		return -EINVAL;
	}
	c->server = ks_xstrdup(server);
	n = strlen(c->server);
	while (n > 8 && c->server[n - 1] == '/')
		c->server[--n] = '\0';
	return take_pem(cl, "certificate-authority", dir, &c->ca_file, &c->ca_data, &c->ca_len,
			err);
}

static int take_user(struct ks_kubeconfig *c, const cJSON *u, const char *dir, char **err)
{
	static const char *const unsupported[] = { "exec", "auth-provider", "username",
						   "password" };
	const char *s;
	int rc;

	for (size_t i = 0; i < KS_ARRAY_SIZE(unsupported); i++) {
		if (cJSON_GetObjectItemCaseSensitive(u, unsupported[i])) {
			*err = ks_xasprintf("user field %s is not supported: use a client "
					    "certificate or a token",
					    unsupported[i]);
			return -ENOTSUP;
		}
	}
	rc = take_pem(u, "client-certificate", dir, &c->cert_file, &c->cert_data, &c->cert_len,
		      err);
	if (rc == 0)
		rc = take_pem(u, "client-key", dir, &c->key_file, &c->key_data, &c->key_len, err);
	if (rc)
		return rc;
	if ((s = ks_json_str(u, "token")) && *s)
		c->token = ks_xstrdup(s);
	if ((s = ks_json_str(u, "tokenFile")) && *s)
		c->token_file = resolve(dir, s);
	if ((c->cert_file || c->cert_data) != (c->key_file || c->key_data)) {
		*err = ks_xstrdup("user has a client certificate without a key, or a key without "
				  "a certificate");
		return -EINVAL;
	}
	return 0;
}

static int from_doc(struct ks_kubeconfig *c, const cJSON *doc, const char *dir, const char *context,
		    char **err)
{
	const cJSON *ctx, *cl, *u;
	const char *ctx_name = context, *cl_name, *u_name, *ns;
	int rc;

	if (!ctx_name)
		ctx_name = ks_json_str(doc, "current-context");
	if (!ctx_name || !*ctx_name) {
		*err = ks_xstrdup("no current-context and no --context given");
		return -EINVAL;
	}
	ctx = named(doc, "contexts", ctx_name, "context");
	if (!cJSON_IsObject(ctx)) {
		*err = ks_xasprintf("context %s not found", ctx_name);
		return -ENOENT;
	}
	cl_name = ks_json_str(ctx, "cluster");
	u_name = ks_json_str(ctx, "user");
	cl = cl_name ? named(doc, "clusters", cl_name, "cluster") : NULL;
	if (!cJSON_IsObject(cl)) {
		*err = ks_xasprintf("context %s: cluster %s not found", ctx_name,
				    cl_name ? cl_name : "(none)");
		return -ENOENT;
	}
	u = u_name ? named(doc, "users", u_name, "user") : NULL;
	if (u_name && !cJSON_IsObject(u)) {
		*err = ks_xasprintf("context %s: user %s not found", ctx_name, u_name);
		return -ENOENT;
	}
	c->context = ks_xstrdup(ctx_name);
	ns = ks_json_str(ctx, "namespace");
	c->namespace = ks_xstrdup(ns && *ns ? ns : "default");
	rc = take_cluster(c, cl, dir, err);
	if (rc == 0 && u)
		rc = take_user(c, u, dir, err);
	return rc;
}

/* Names from the file end up in messages: a message stays one line (a YAML scalar may
 * hold line breaks and other control characters). */
static void one_line(char *msg)
{
	for (; msg && *msg; msg++)
		if ((unsigned char)*msg < 0x20 || *msg == 0x7f)
			*msg = ' ';
}

int ks_kubeconfig_parse(struct ks_kubeconfig *c, const char *text, size_t len, const char *dir,
			const char *context, char **err)
{
	cJSON *doc;
	char *yerr = NULL;
	int rc;

	memset(c, 0, sizeof(*c));
	*err = NULL;
	doc = ks_yaml_parse(text, len, &yerr);
	if (!doc) {
		one_line(yerr);
		*err = yerr;
		return -EINVAL;
	}
	if (!cJSON_IsObject(doc)) {
		*err = ks_xstrdup("not a kubeconfig: the document is not a mapping");
		rc = -EINVAL;
		goto out_free_doc;
	}
	rc = from_doc(c, doc, dir, context, err);
	if (rc)
		ks_kubeconfig_deinit(c);
	one_line(*err);
out_free_doc:
	cJSON_Delete(doc);
	return rc;
}

int ks_kubeconfig_load(struct ks_kubeconfig *c, const char *path, const char *context, char **err)
{
	size_t len = 0;
	int rc;
	char *text = ks_read_file(path, &len, &rc), *pcopy, *inner = NULL;

	memset(c, 0, sizeof(*c));
	if (!text) {
		*err = ks_xasprintf("kubeconfig %s: %s", path, strerror(-rc));
		return rc;
	}
	pcopy = ks_xstrdup(path);
	rc = ks_kubeconfig_parse(c, text, len, dirname(pcopy), context, &inner);
	if (rc) {
		*err = ks_xasprintf("kubeconfig %s: %s", path, inner);
		free(inner);
	}
	free(pcopy);
	free(text);
	return rc;
}

int ks_kubeconfig_in_cluster(struct ks_kubeconfig *c, const char *root, char **err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char *path, *ns;
	size_t len;
	int rc;

	memset(c, 0, sizeof(*c));
	root = root ? root : SA_ROOT;
	if (!host || !*host || !port || !*port) {
		*err = ks_xstrdup("not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set");
		return -ENOENT;
	}
	c->server = strchr(host, ':') ? ks_xasprintf("https://[%s]:%s", host, port)
				      : ks_xasprintf("https://%s:%s", host, port);
	c->context = ks_xstrdup("in-cluster");
	c->token_file = ks_xasprintf("%s/token", root);
	c->ca_file = ks_xasprintf("%s/ca.crt", root);
	path = ks_xasprintf("%s/namespace", root);
	ns = ks_read_file(path, &len, &rc);
	free(path);
	c->namespace = ns ? ns : ks_xstrdup("default");
	c->namespace[strcspn(c->namespace, "\r\n")] = '\0';
	path = ks_read_file(c->token_file, &len, &rc);
	free(path);
	if (rc) {
		*err = ks_xasprintf("service account token %s: %s", c->token_file, strerror(-rc));
		ks_kubeconfig_deinit(c);
		return rc;
	}
	/* Without the CA every request would fail later as a TLS error: say so now. */
	if (access(c->ca_file, R_OK) != 0) {
		rc = -errno;
		*err = ks_xasprintf("service account CA %s: %s", c->ca_file, strerror(errno));
		ks_kubeconfig_deinit(c);
	}
	return rc;
}

void ks_kubeconfig_deinit(struct ks_kubeconfig *c)
{
	free(c->server);
	free(c->context);
	free(c->namespace);
	free(c->ca_file);
	free(c->ca_data);
	free(c->cert_file);
	free(c->cert_data);
	free(c->key_file);
	free(c->key_data);
	free(c->token);
	free(c->token_file);
	memset(c, 0, sizeof(*c));
}
