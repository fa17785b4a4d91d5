/* kt_client.c: the Kubernetes client against the real API server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "kt.h"

#define NS "kt-client"

static struct kt t;

static void call_get(const char *name, struct kt_res *r)
{
	kt_res_clear(r);
	ks_kube_get(t.kube, &kt_widgets, NS, name, kt_store, r);
	kt_wait(&t, r, 30);
}

TEST(create_get_patch_status)
{
	struct kt_res r = { 0 };
	cJSON *w = kt_widget(NS, "w1", 3), *patch;

	ks_kube_create(t.kube, &kt_widgets, NS, w, kt_store, &r);
	kt_wait(&t, &r, 30);
	cJSON_Delete(w);
	ASSERT_EQ(r.code, 201);
	ASSERT_STR(ks_json_str(r.body, "metadata.namespace"), NS);
	call_get("w1", &r);
	ASSERT_EQ(r.code, 200);
	ASSERT_EQ(ks_json_int(r.body, "spec.size", -1), 3);
	patch = cJSON_Parse("{\"spec\":{\"color\":\"red\"}}");
	kt_res_clear(&r);
	ks_kube_patch(t.kube, &kt_widgets, NS, "w1", NULL, KS_PATCH_MERGE, patch, kt_store, &r);
	kt_wait(&t, &r, 30);
	cJSON_Delete(patch);
	ASSERT_EQ(r.code, 200);
	ASSERT_STR(ks_json_str(r.body, "spec.color"), "red");
	/* The status subresource takes status and nothing else. */
	patch = cJSON_Parse("{\"spec\":{\"color\":\"ignored\"},\"status\":{\"phase\":\"Ready\"}}");
	kt_res_clear(&r);
	ks_kube_patch(t.kube, &kt_widgets, NS, "w1", "status", KS_PATCH_MERGE, patch, kt_store, &r);
	kt_wait(&t, &r, 30);
	cJSON_Delete(patch);
	ASSERT_EQ(r.code, 200);
	call_get("w1", &r);
	ASSERT_STR(ks_json_str(r.body, "status.phase"), "Ready");
	ASSERT_STR(ks_json_str(r.body, "spec.color"), "red");
	kt_res_clear(&r);
}

static void apply(const char *manager, const char *color, bool force, struct kt_res *r)
{
	cJSON *w = kt_widget(NS, "w-ssa", 1);

	cJSON_AddStringToObject(cJSON_GetObjectItem(w, "spec"), "color", color);
	kt_res_clear(r);
	ks_kube_apply(t.kube, &kt_widgets, NS, "w-ssa", NULL, w, manager, force, kt_store, r);
	kt_wait(&t, r, 30);
	cJSON_Delete(w);
}

TEST(server_side_apply_conflict_names_the_manager)
{
	struct kt_res r = { 0 };

	apply("kt-first", "blue", false, &r);
	ASSERT_EQ(r.code, 201);
	apply("kt-first", "blue", false, &r);
	ASSERT_EQ(r.code, 200);
	apply("kt-second", "green", false, &r);
	ASSERT_EQ(r.code, 409);
	ASSERT_STR(r.reason, "Conflict");
	ASSERT(strstr(r.message, "kt-first") != NULL);
	apply("kt-second", "green", true, &r);
	ASSERT_EQ(r.code, 200);
	ASSERT_STR(ks_json_str(r.body, "spec.color"), "green");
	kt_res_clear(&r);
}

static int gets;

static void count_gets(const char *method, long code, double seconds, void *data)
{
	(void)code;
	(void)seconds;
	(void)data;
	if (strcmp(method, "GET") == 0)
		gets++;
}

TEST(list_follows_continue_across_pages)
{
	struct kt_res r = { 0 };
	char name[32];

	for (int i = 0; i < 25; i++) {
		cJSON *w;

		snprintf(name, sizeof(name), "page-%02d", i);
		w = kt_widget(NS, name, i);
		kt_res_clear(&r);
		ks_kube_create(t.kube, &kt_widgets, NS, w, kt_store, &r);
		kt_wait(&t, &r, 30);
		cJSON_Delete(w);
		ASSERT_EQ(r.code, 201);
	}
	gets = 0;
	ks_kube_set_observer(t.kube, count_gets, NULL);
	kt_res_clear(&r);
	ks_kube_list(t.kube, &kt_widgets, NS,
		     &(struct ks_kube_list_opts){ .label_selector = NULL, .limit = 10 }, kt_store,
		     &r);
	kt_wait(&t, &r, 30);
	ks_kube_set_observer(t.kube, NULL, NULL);
	ASSERT_EQ(r.code, 200);
	/* 25 pages' worth plus the two objects the other tests made. */
	ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(r.body, "items")), 27);
	ASSERT_EQ(gets, 3);
	ASSERT(ks_json_str(r.body, "metadata.resourceVersion") != NULL);
	kt_res_clear(&r);
}

TEST(delete_preconditions_and_not_found)
{
	struct kt_res r = { 0 };
	char *uid, *fin;
	bool found;

	call_get("w1", &r);
	uid = ks_xstrdup(ks_json_str(r.body, "metadata.uid"));
	kt_res_clear(&r);
	ks_kube_delete(t.kube, &kt_widgets, NS, "w1",
		       &(struct ks_kube_delete_opts){ .uid = "not-the-uid" }, kt_store, &r);
	kt_wait(&t, &r, 30);
	ASSERT_EQ(r.code, 409);
	ASSERT_STR(r.reason, "Conflict");
	ASSERT(strstr(r.message, "UID in the precondition") != NULL);
	kt_res_clear(&r);
	ks_kube_delete(t.kube, &kt_widgets, NS, "w1",
		       &(struct ks_kube_delete_opts){ .uid = uid, .propagation = "Foreground" },
		       kt_store, &r);
	kt_wait(&t, &r, 30);
	free(uid);
	ASSERT_EQ(r.code, 200);
	/*
	 * Foreground deletion is finished by the garbage collector, which in
	 * 1.20 notices a new custom resource kind only after its 30 s
	 * discovery period; what the apiserver owes us at once is the
	 * deletionTimestamp and the foregroundDeletion finalizer.
	 */
	ASSERT(ks_json_str(r.body, "metadata.deletionTimestamp") != NULL);
	fin = ks_json_print(
		cJSON_GetObjectItem(cJSON_GetObjectItem(r.body, "metadata"), "finalizers"));
	found = fin && strstr(fin, "foregroundDeletion") != NULL;
	free(fin);
	ASSERT(found);
	kt_res_clear(&r);
	call_get("w-never-made", &r);
	ASSERT_EQ(r.code, 404);
	ASSERT_STR(r.reason, "NotFound");
	ASSERT(strstr(r.message, "w-never-made") != NULL);
	kt_res_clear(&r);
}

TEST(unreachable_server_is_named)
{
	struct ks_kubeconfig c = t.cfg;
	struct ks_kube *k;
	struct kt_res r = { 0 };

	c.server = "https://127.0.0.1:1";
	k = ks_kube_new(t.http, &c);
	ks_kube_get(k, &kt_widgets, NS, "x", kt_store, &r);
	kt_wait(&t, &r, 30);
	ks_kube_free(k);
	ASSERT_EQ(r.code, 0);
	ASSERT_STR(r.reason, "ConnectionRefused");
	ASSERT(strstr(r.message, "https://127.0.0.1:1") != NULL);
	kt_res_clear(&r);
}

TEST(wrong_ca_is_a_tls_error)
{
	struct ks_kubeconfig c = t.cfg;
	struct ks_kube *k;
	struct kt_res r = { 0 };

	/* The system trust store does not know the test cluster's CA. */
	c.ca_data = NULL;
	c.ca_len = 0;
	c.ca_file = "/etc/ssl/certs/ca-certificates.crt";
	k = ks_kube_new(t.http, &c);
	ks_kube_get(k, &kt_widgets, NS, "x", kt_store, &r);
	kt_wait(&t, &r, 30);
	ks_kube_free(k);
	ASSERT_EQ(r.code, 0);
	ASSERT_STR(r.reason, "TLSError");
	kt_res_clear(&r);
}

static const struct ks_kube_res secrets = { "", "v1", "secrets", true };
/* What deploy/rbac.yaml lets it read: the plugin ConfigMaps of kupenstack-system. */
static const struct ks_kube_res configmaps = { "", "v1", "configmaps", true };

TEST(restricted_identity_gets_a_clear_403_and_rotated_tokens_work)
{
	struct kt rt;
	struct kt_res r = { 0 };
	FILE *f;
	char tok[8192];
	size_t n;

	kt_init(&rt, "KS_RESTRICTED_KUBECONFIG");
	ASSERT(rt.cfg.token_file != NULL);
	ks_kube_list(rt.kube, &secrets, "default", NULL, kt_store, &r);
	kt_wait(&rt, &r, 30);
	ASSERT_EQ(r.code, 403);
	ASSERT_STR(r.reason, "Forbidden");
	ASSERT(strstr(r.message, "secrets") != NULL);
	kt_res_clear(&r);
	ks_kube_list(rt.kube, &configmaps, "kupenstack-system", NULL, kt_store, &r);
	kt_wait(&rt, &r, 30);
	ASSERT_EQ(r.code, 200);
	/* Rotate: a bad token is used at once (401), then the good one again (200). */
	f = fopen(rt.cfg.token_file, "r");
	ASSERT(f);
	n = fread(tok, 1, sizeof(tok), f);
	fclose(f);
	f = fopen(rt.cfg.token_file, "w");
	fputs("not-a-valid-token", f);
	fclose(f);
	kt_res_clear(&r);
	ks_kube_list(rt.kube, &configmaps, "kupenstack-system", NULL, kt_store, &r);
	kt_wait(&rt, &r, 30);
	ASSERT_EQ(r.code, 401);
	f = fopen(rt.cfg.token_file, "w");
	fwrite(tok, 1, n, f);
	fclose(f);
	kt_res_clear(&r);
	ks_kube_list(rt.kube, &configmaps, "kupenstack-system", NULL, kt_store, &r);
	kt_wait(&rt, &r, 30);
	ASSERT_EQ(r.code, 200);
	kt_res_clear(&r);
	kt_deinit(&rt);
}

int main(void)
{
	kt_init(&t, "KUBECONFIG");
	kt_ensure_crd(&t);
	kt_fresh_namespace(&t, NS);
	RUN(create_get_patch_status);
	RUN(server_side_apply_conflict_names_the_manager);
	RUN(list_follows_continue_across_pages);
	RUN(delete_preconditions_and_not_found);
	RUN(unreachable_server_is_named);
	RUN(wrong_ca_is_a_tls_error);
	RUN(restricted_identity_gets_a_clear_403_and_rotated_tokens_work);
	KT_MAIN_END(&t);
}
