/* cli.c: `kupenstack policy test DIR`: policies against fixture requests, offline. */
#include "admission/cli.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admission/fixture.h"
#include "ks.h"
#include "yaml.h"

static cJSON *load(const char *path, char **err)
{
	size_t len;
	int rc;
	char *text = ks_read_file(path, &len, &rc);
	cJSON *doc;

	if (!text) {
		*err = ks_xasprintf("cannot read %s", path);
		return NULL;
	}
	doc = ks_yaml_parse(text, len, err);
	free(text);
	return doc;
}

/* Run one fixture and print its TAP line. Returns 0 if as expected. */
static int run_fixture(struct ks_policy *p, const char *name, cJSON *fx)
{
	char *outcome = NULL, *problem = ks_policy_fixture_run(p, fx, &outcome);

	printf("%s - %s: %s\n", problem ? "not ok" : "ok", name, outcome);
	if (problem)
		printf("#   %s\n", problem);
	free(outcome);
	free(problem);
	return problem ? 1 : 0;
}

/* A policy.yaml with spec.luaFrom.configMap: its Lua from DIR/KEY (policy.lua by default),
 * as the ConfigMap made from DIR would hold it. False with *err when that is unreadable. */
static bool lua_from_file(const char *dir, cJSON *cr, char **err)
{
	cJSON *spec = cJSON_GetObjectItem(cr, "spec");
	const cJSON *ref = cJSON_GetObjectItem(cJSON_GetObjectItem(spec, "luaFrom"), "configMap");
	const cJSON *key = cJSON_GetObjectItem(ref, "key");
	char *path, *src;
	size_t len;
	int rc;

	if (!ref || cJSON_GetObjectItem(spec, "lua"))
		return true;
	path = ks_xasprintf("%s/%s", dir, cJSON_IsString(key) ? key->valuestring : "policy.lua");
	src = ks_read_file(path, &len, &rc);
	if (!src) {
		*err = ks_xasprintf("spec.luaFrom.configMap: cannot read %s: %s", path,
				    strerror(-rc));
		free(path);
		return false;
	}
	cJSON_AddStringToObject(spec, "lua", src);
	free(src);
	free(path);
	return true;
}

static int test_dir(const char *dir)
{
	char *path = ks_xasprintf("%s/policy.yaml", dir), *err = NULL;
	cJSON *cr = load(path, &err), *fx, *spec_fx;
	struct ks_policy *p = NULL;
	struct dirent **names = NULL;
	int n = 0, passed = 0, failed = 0;
	uv_loop_t *loop = uv_default_loop();

	free(path);
	if (cr && !lua_from_file(dir, cr, &err)) {
		cJSON_Delete(cr);
		cr = NULL;
	}
	if (cr)
		p = ks_policy_new(loop, cr, &err);
	if (!p) {
		cJSON_Delete(cr);
		printf("not ok - %s/policy.yaml: %s\n1 passed, 1 failed\n", dir, err);
		free(err);
		return 1;
	}
	path = ks_xasprintf("%s/fixtures", dir);
	n = scandir(path, &names, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		char *f;
		size_t l = strlen(names[i]->d_name);

		if (l > 5 && strcmp(names[i]->d_name + l - 5, ".yaml") == 0) {
			f = ks_xasprintf("%s/%s", path, names[i]->d_name);
			fx = load(f, &err);
			if (!fx) {
				printf("not ok - %s: %s\n", names[i]->d_name, err);
				free(err);
				err = NULL;
				failed++;
			} else if (run_fixture(p, names[i]->d_name, fx) == 0) {
				passed++;
			} else {
				failed++;
			}
			cJSON_Delete(fx);
			free(f);
		}
		free(names[i]);
	}
	free(names);
	spec_fx = cJSON_GetObjectItem(cJSON_GetObjectItem(cr, "spec"), "fixtures");
	for (int i = 0; i < cJSON_GetArraySize(spec_fx); i++) { /* as the host runs them */
		char name[32];

		snprintf(name, sizeof(name), "spec.fixtures[%d]", i);
		fx = cJSON_Duplicate(cJSON_GetArrayItem(spec_fx, i), 1);
		if (run_fixture(p, name, fx) == 0)
			passed++;
		else
			failed++;
		cJSON_Delete(fx);
	}
	if (n <= 0 && cJSON_GetArraySize(spec_fx) == 0) {
		printf("not ok - %s: no fixtures (*.yaml)\n", path);
		failed++;
	}
	free(path);
	cJSON_Delete(cr);
	ks_policy_free(p);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

int ks_policy_cli(int argc, char **argv)
{
	int rc = 0;

	if (argc < 3 || strcmp(argv[1], "test") != 0) {
		fprintf(stderr,
			"usage: kupenstack policy test DIR...\n"
			"  DIR holds policy.yaml and fixtures/*.yaml (host/admission/cli.h)\n");
		return 2;
	}
	for (int i = 2; i < argc; i++)
		rc |= test_dir(argv[i]);
	return rc;
}
