#pragma once
/*
 * kubeconfig.h: where the API server is and who we are to it: a kubeconfig file
 * (client certificate and key, bearer token or token file, CA file or data, current
 * context or a named one) or the in-cluster service account. TLS verification is
 * always on: a kubeconfig asking for insecure-skip-tls-verify is refused, as are
 * authentication methods the host does not implement (exec, auth-provider, basic).
 */
#include <stdbool.h>
#include <stddef.h>

struct ks_kubeconfig {
	char *server;	 /* "https://host:port", no trailing slash */
	char *context;	 /* the context used, or "in-cluster" */
	char *namespace; /* the context's namespace, or "default" */
	char *ca_file;
	char *ca_data; /* PEM, decoded from base64 */
	size_t ca_len;
	char *cert_file;
	char *cert_data;
	size_t cert_len;
	char *key_file;
	char *key_data;
	size_t key_len;
	char *token;	  /* a static bearer token */
	char *token_file; /* a token re-read when the file changes */
};

/*
 * Read the kubeconfig at path using context (NULL: its current-context). Relative
 * file names in it are taken from path's directory. Returns 0, or -errno with *err
 * set to a one-line message naming the file and the field (the caller frees it);
 * on error c is left empty.
 */
int ks_kubeconfig_load(struct ks_kubeconfig *c, const char *path, const char *context, char **err);
/* The same from text already in memory; dir resolves relative file names. */
int ks_kubeconfig_parse(struct ks_kubeconfig *c, const char *text, size_t len, const char *dir,
			const char *context, char **err);
/*
 * The in-cluster identity: KUBERNETES_SERVICE_HOST/PORT, the service account's token
 * file, CA and namespace under root (NULL: /var/run/secrets/kubernetes.io/serviceaccount).
 * Returns 0, or -errno with *err set.
 */
int ks_kubeconfig_in_cluster(struct ks_kubeconfig *c, const char *root, char **err);
void ks_kubeconfig_deinit(struct ks_kubeconfig *c);

/*
 * Decode standard base64 (padding optional, whitespace skipped) into a fresh buffer
 * the caller frees, NUL-terminated, its length in *out_len. Returns NULL on bad input.
 */
char *ks_base64_decode(const char *in, size_t len, size_t *out_len);
