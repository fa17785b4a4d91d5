/*
 * kt_incluster.c: the in-cluster identity against the real API server. A directory
 * laid out as the kubelet mounts a service account (the token tests/env/kube got for
 * ServiceAccount kupenstack-system/kupenstack, which $KS_RESTRICTED_KUBECONFIG reads
 * from a file, the cluster's CA and the namespace), and KUBERNETES_SERVICE_HOST/PORT
 * pointing at the test API server, make the configuration ks_kubeconfig_in_cluster()
 * builds. The identity is the one deploy/rbac.yaml grants: it lists namespaces and the
 * ConfigMaps of its own namespace (the plugins), and is refused Secrets; and the CA it is given
 * is the one that verifies the server.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "kt.h"

static struct kt t;
static char root[64], other_root[64]; /* other_root has another CA */
static struct ks_kubeconfig restricted;

static const struct ks_kube_res namespaces = { "", "v1", "namespaces", false };
static const struct ks_kube_res configmaps = { "", "v1", "configmaps", true };
static const struct ks_kube_res secrets = { "", "v1", "secrets", true };

static void put_file(const char *dir, const char *name, const char *data, size_t n)
{
	char *path = ks_xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	ks_require(f && fwrite(data, 1, n, f) == n);
	fclose(f);
	free(path);
}

static void copy_file(const char *dir, const char *name, const char *from)
{
	size_t n = 0;
	int rc;
	char *data = ks_read_file(from, &n, &rc);

	if (!data) {
		fprintf(stderr, "%s: %s\n", from, strerror(-rc));
		exit(2);
	}
	put_file(dir, name, data, n);
	free(data);
}

/* A service account mount in dir: the restricted identity's token, the given CA. */
static void mount_sa(char *dir, const char *ca, size_t ca_len)
{
	static const char ns[] = "kupenstack-system\n";

	snprintf(dir, 64, "/tmp/kt_incluster.XXXXXX");
	ks_require(mkdtemp(dir));
	copy_file(dir, "token", restricted.token_file);
	put_file(dir, "ca.crt", ca, ca_len);
	put_file(dir, "namespace", ns, sizeof(ns) - 1);
}

static void unmount_sa(const char *dir)
{
	static const char *const files[] = { "token", "ca.crt", "namespace" };

	for (size_t i = 0; i < KS_ARRAY_SIZE(files); i++) {
		char *p = ks_xasprintf("%s/%s", dir, files[i]);

		unlink(p);
		free(p);
	}
	rmdir(dir);
}

/* Both mounts, from what the restricted kubeconfig holds and the cluster's pki/. */
static void mount_all(void)
{
	const char *path = getenv("KS_RESTRICTED_KUBECONFIG"), *dir = getenv("KS_KUBE_DIR");
	char *err = NULL, *other, *ca;
	size_t n = 0;
	int rc;

	if (!path || !dir || ks_kubeconfig_load(&restricted, path, NULL, &err) != 0 ||
	    !restricted.token_file || !restricted.ca_data) {
		fprintf(stderr, "KS_RESTRICTED_KUBECONFIG, KS_KUBE_DIR: %s\n",
			err ? err : "unset or unusable");
		exit(2);
	}
	mount_sa(root, restricted.ca_data, restricted.ca_len);
	/* Another CA of the same cluster, which did not sign the server's certificate. */
	other = ks_xasprintf("%s/pki/front-proxy-ca.crt", dir);
	ca = ks_read_file(other, &n, &rc);
	if (!ca) {
		fprintf(stderr, "%s: %s\n", other, strerror(-rc));
		exit(2);
	}
	mount_sa(other_root, ca, n);
	free(ca);
	free(other);
}

/* KUBERNETES_SERVICE_HOST/PORT from the test API server's https://HOST:PORT. */
static void service_env(void)
{
	const char *hostport = restricted.server + strlen("https://");
	const char *colon = strrchr(hostport, ':');
	char host[64];

	ks_require(colon && (size_t)(colon - hostport) < sizeof(host));
	snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
	setenv("KUBERNETES_SERVICE_HOST", host, 1);
	setenv("KUBERNETES_SERVICE_PORT", colon + 1, 1);
}

/* A client with the in-cluster identity; NULL (and a message) if none can be made. */
static struct ks_kube *in_cluster(const char *dir, struct ks_kubeconfig *cfg)
{
	char *err = NULL;

	if (ks_kubeconfig_in_cluster(cfg, dir, &err) != 0) {
		printf("  in-cluster config: %s\n", err);
		free(err);
		return NULL;
	}
	return ks_kube_new(t.http, cfg);
}

static void list(struct ks_kube *k, const struct ks_kube_res *res, const char *ns, struct kt_res *r)
{
	kt_res_clear(r);
	ks_kube_list(k, res, ns, NULL, kt_store, r);
	kt_wait(&t, r, 30);
}

static bool has_item(const struct kt_res *r, const char *name)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, cJSON_GetObjectItem(r->body, "items"))
	{
		const char *n = ks_json_str(it, "metadata.name");

		if (n && !strcmp(n, name))
			return true;
	}
	return false;
}

TEST(service_account_lists_what_its_rbac_allows)
{
	struct ks_kubeconfig cfg;
	struct ks_kube *k = in_cluster(root, &cfg);
	struct kt_res r = { 0 };

	ASSERT(k);
	ASSERT_STR(cfg.context, "in-cluster");
	ASSERT_STR(cfg.namespace, "kupenstack-system");
	ASSERT_STR(cfg.server, restricted.server);
	list(k, &namespaces, NULL, &r);
	ASSERT_EQ(r.code, 200);
	ASSERT(has_item(&r, "kupenstack-system"));
	ASSERT(has_item(&r, "default"));
	list(k, &configmaps, cfg.namespace, &r); /* the plugin ConfigMaps it may read */
	ASSERT_EQ(r.code, 200);
	/* Not the admin: Secrets outside its namespace are refused, naming who asked. */
	list(k, &secrets, "default", &r);
	ASSERT_EQ(r.code, 403);
	ASSERT_STR(r.reason, "Forbidden");
	ASSERT(strstr(r.message, "system:serviceaccount:kupenstack-system:kupenstack"));
	kt_res_clear(&r);
	ks_kube_free(k);
	ks_kubeconfig_deinit(&cfg);
}

TEST(the_mounted_ca_is_what_verifies_the_server)
{
	struct ks_kubeconfig cfg;
	struct ks_kube *k = in_cluster(other_root, &cfg);
	struct kt_res r = { 0 };

	ASSERT(k);
	list(k, &namespaces, NULL, &r);
	ASSERT_EQ(r.code, 0);
	ASSERT_STR(r.reason, "TLSError");
	kt_res_clear(&r);
	ks_kube_free(k);
	ks_kubeconfig_deinit(&cfg);
}

TEST(no_token_no_client)
{
	struct ks_kubeconfig cfg;
	char *p = ks_xasprintf("%s/token", root), *q = ks_xasprintf("%s/token.away", root);

	ASSERT_EQ(rename(p, q), 0);
	ASSERT(in_cluster(root, &cfg) == NULL);
	ASSERT_EQ(rename(q, p), 0);
	free(p);
	free(q);
}

int main(void)
{
	kt_init(&t, "KUBECONFIG");
	mount_all();
	service_env();
	RUN(service_account_lists_what_its_rbac_allows);
	RUN(the_mounted_ca_is_what_verifies_the_server);
	RUN(no_token_no_client);
	unmount_sa(root);
	unmount_sa(other_root);
	ks_kubeconfig_deinit(&restricted);
	KT_MAIN_END(&t);
}
