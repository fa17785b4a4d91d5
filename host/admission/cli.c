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

static int test_dir(const char *dir)
{
	char *path = ks_xasprintf("%s/policy.yaml", dir), *err = NULL;
	cJSON *cr = load(path, &err), *fx;
	struct ks_policy *p = NULL;
	struct dirent **names = NULL;
	int n = 0, passed = 0, failed = 0;
	uv_loop_t *loop = uv_default_loop();

	free(path);
	if (cr)
		p = ks_policy_new(loop, cr, &err);
	cJSON_Delete(cr);
	if (!p) {
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
	if (n <= 0) {
		printf("not ok - %s: no fixtures (*.yaml)\n", path);
		failed++;
	}
	free(path);
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
