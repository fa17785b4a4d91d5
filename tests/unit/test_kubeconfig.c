/*
 * test_kubeconfig.c: where the API server is and who we are to it: the in-cluster
 * service account (a temporary directory stands in for
 * /var/run/secrets/kubernetes.io/serviceaccount) and kubeconfig text.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kubeconfig.h"
#include "ks.h"
#include "test.h"

static char root[64];

static void write_file(const char *name, const char *text)
{
	char *path = ks_xasprintf("%s/%s", root, name);
	FILE *f = fopen(path, "w");

	ks_require(f);
	fputs(text, f);
	fclose(f);
	free(path);
}

static void remove_file(const char *name)
{
	char *path = ks_xasprintf("%s/%s", root, name);

	unlink(path);
	free(path);
}

/* A service account directory as the kubelet mounts it. */
static void mount_sa(void)
{
	snprintf(root, sizeof(root), "/tmp/test_kubeconfig.XXXXXX");
	ks_require(mkdtemp(root));
	write_file("token", "eyJhbGciOi.token\n");
	write_file("ca.crt", "-----BEGIN CERTIFICATE-----\n");
	write_file("namespace", "kupenstack-system\n");
}

static void unmount_sa(void)
{
	remove_file("token");
	remove_file("ca.crt");
	remove_file("namespace");
	rmdir(root);
}

static void service_env(const char *host, const char *port)
{
	if (host)
		setenv("KUBERNETES_SERVICE_HOST", host, 1);
	else
		unsetenv("KUBERNETES_SERVICE_HOST");
	if (port)
		setenv("KUBERNETES_SERVICE_PORT", port, 1);
	else
		unsetenv("KUBERNETES_SERVICE_PORT");
}

static bool is_empty(const struct ks_kubeconfig *c)
{
	static const struct ks_kubeconfig zero;

	return memcmp(c, &zero, sizeof(zero)) == 0;
}

TEST(in_cluster_ipv4)
{
	struct ks_kubeconfig c;
	char *err = NULL, *want;

	mount_sa();
	service_env("10.96.0.1", "443");
	ASSERT_EQ(ks_kubeconfig_in_cluster(&c, root, &err), 0);
	ASSERT(err == NULL);
	ASSERT_STR(c.server, "https://10.96.0.1:443");
	ASSERT_STR(c.context, "in-cluster");
	ASSERT_STR(c.namespace, "kupenstack-system"); /* the file's newline dropped */
	want = ks_xasprintf("%s/token", root);
	ASSERT_STR(c.token_file, want); /* a file, re-read as the kubelet rotates it */
	free(want);
	want = ks_xasprintf("%s/ca.crt", root);
	ASSERT_STR(c.ca_file, want);
	free(want);
	ASSERT(c.token == NULL && c.cert_file == NULL && c.key_file == NULL);
	ks_kubeconfig_deinit(&c);
	ASSERT(is_empty(&c));
	unmount_sa();
}

TEST(in_cluster_ipv6_host_is_bracketed)
{
	struct ks_kubeconfig c;
	char *err = NULL;

	mount_sa();
	service_env("fd00:10:96::1", "6443");
	ASSERT_EQ(ks_kubeconfig_in_cluster(&c, root, &err), 0);
	ASSERT_STR(c.server, "https://[fd00:10:96::1]:6443");
	ks_kubeconfig_deinit(&c);
	unmount_sa();
}

TEST(in_cluster_without_namespace_file_is_default)
{
	struct ks_kubeconfig c;
	char *err = NULL;

	mount_sa();
	remove_file("namespace");
	service_env("10.96.0.1", "443");
	ASSERT_EQ(ks_kubeconfig_in_cluster(&c, root, &err), 0);
	ASSERT_STR(c.namespace, "default");
	ks_kubeconfig_deinit(&c);
	unmount_sa();
}

TEST(in_cluster_missing_token_is_a_clear_error)
{
	struct ks_kubeconfig c;
	char *err = NULL, *want;

	mount_sa();
	remove_file("token");
	service_env("10.96.0.1", "443");
	ASSERT_EQ(ks_kubeconfig_in_cluster(&c, root, &err), -ENOENT);
	want = ks_xasprintf("service account token %s/token: No such file or directory", root);
	ASSERT_STR(err, want);
	ASSERT(is_empty(&c)); /* nothing half-filled to free */
	free(want);
	free(err);
	unmount_sa();
}

TEST(in_cluster_missing_ca_is_a_clear_error)
{
	struct ks_kubeconfig c;
	char *err = NULL, *want;

	mount_sa();
	remove_file("ca.crt");
	service_env("10.96.0.1", "443");
	ASSERT_EQ(ks_kubeconfig_in_cluster(&c, root, &err), -ENOENT);
	want = ks_xasprintf("service account CA %s/ca.crt: No such file or directory", root);
	ASSERT_STR(err, want);
	ASSERT(is_empty(&c));
	free(want);
	free(err);
	unmount_sa();
}

TEST(in_cluster_missing_env_is_a_clear_error)
{
	static const char *const cases[][2] = {
		{ NULL, NULL }, { "10.96.0.1", NULL }, { NULL, "443" }, { "", "443" }
	};
	struct ks_kubeconfig c;
	char *err;

	mount_sa();
	for (size_t i = 0; i < KS_ARRAY_SIZE(cases); i++) {
		err = NULL;
		service_env(cases[i][0], cases[i][1]);
		ASSERT_EQ(ks_kubeconfig_in_cluster(&c, root, &err), -ENOENT);
		ASSERT_STR(err, "not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set");
		ASSERT(is_empty(&c));
		free(err);
	}
	unmount_sa();
}

static int parse(struct ks_kubeconfig *c, const char *cluster, const char *user, char **err)
{
	char *text = ks_xasprintf("apiVersion: v1\nkind: Config\ncurrent-context: k\n"
				  "contexts:\n- name: k\n  context: {cluster: c, user: u}\n"
				  "clusters:\n- name: c\n  cluster: {%s}\n"
				  "users:\n- name: u\n  user: {%s}\n",
				  cluster, user);
	int rc;

	*err = NULL;
	rc = ks_kubeconfig_parse(c, text, strlen(text), "/etc/kube", NULL, err);
	free(text);
	return rc;
}

TEST(kubeconfig_token_and_ca_data)
{
	struct ks_kubeconfig c;
	char *err;

	/* "aGVsbG8=" is "hello"; relative files are taken from the kubeconfig's directory. */
	ASSERT_EQ(parse(&c, "server: 'https://k:6443/', certificate-authority-data: aGVsbG8=",
			"token: abc, tokenFile: t/token", &err),
		  0);
	ASSERT_STR(c.server, "https://k:6443");
	ASSERT_STR(c.namespace, "default");
	ASSERT_EQ(c.ca_len, 5);
	ASSERT_STR(c.ca_data, "hello");
	ASSERT_STR(c.token, "abc");
	ASSERT_STR(c.token_file, "/etc/kube/t/token");
	ks_kubeconfig_deinit(&c);
}

TEST(kubeconfig_refusals_name_the_field)
{
	static const char *const cases[][3] = {
		{ "server: 'http://k'", "token: x", "server http://k is not https://" },
		{ "server: 'https://k', insecure-skip-tls-verify: true", "token: x",
		  "insecure-skip-tls-verify is not supported: give the cluster's CA" },
		{ "server: 'https://k'", "exec: {command: aws}",
		  "user field exec is not supported: use a client certificate or a token" },
		{ "server: 'https://k'", "client-certificate: c.crt",
		  "user has a client certificate without a key, or a key without a certificate" },
		{ "server: 'https://k', certificate-authority-data: '!!'", "token: x",
		  "certificate-authority-data is not valid base64" },
	};
	struct ks_kubeconfig c;
	char *err;

	for (size_t i = 0; i < KS_ARRAY_SIZE(cases); i++) {
		ASSERT(parse(&c, cases[i][0], cases[i][1], &err) < 0);
		ASSERT_STR(err, cases[i][2]);
		ASSERT(is_empty(&c));
		free(err);
	}
}

int main(void)
{
	RUN(in_cluster_ipv4);
	RUN(in_cluster_ipv6_host_is_bracketed);
	RUN(in_cluster_without_namespace_file_is_default);
	RUN(in_cluster_missing_token_is_a_clear_error);
	RUN(in_cluster_missing_ca_is_a_clear_error);
	RUN(in_cluster_missing_env_is_a_clear_error);
	RUN(kubeconfig_token_and_ca_data);
	RUN(kubeconfig_refusals_name_the_field);
	TEST_MAIN();
}
