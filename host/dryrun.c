/*
 * dryrun.c: the writes a dry run does not make, printed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "dryrun.h"
#include "ks.h"

void ks_dryrun_print(cJSON *doc)
{
	char *text = cJSON_Print(doc);

	printf("---\n%s\n", text ? text : "null");
	fflush(stdout);
	free(text);
	cJSON_Delete(doc);
}

static void add_str(cJSON *o, const char *k, const char *v)
{
	if (v && *v)
		cJSON_AddStringToObject(o, k, v);
}

void ks_dryrun_write(const char *verb, const struct ks_kube_res *res, const char *ns,
		     const char *name, const char *sub, const char *patch_type, const cJSON *body)
{
	cJSON *doc = cJSON_CreateObject();
	char *what;

	cJSON_AddStringToObject(doc, "dryRun", verb);
	what = res->group && *res->group
		       ? ks_xasprintf("%s.%s/%s", res->resource, res->group, res->version)
		       : ks_xasprintf("%s/%s", res->resource, res->version);
	cJSON_AddStringToObject(doc, "resource", what);
	free(what);
	add_str(doc, "namespace", ns);
	add_str(doc, "name", name);
	add_str(doc, "subresource", sub);
	add_str(doc, "patchType", patch_type);
	if (body)
		cJSON_AddItemToObject(doc, "body", cJSON_Duplicate(body, true));
	ks_dryrun_print(doc);
}
