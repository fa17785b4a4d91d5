#pragma once
/*
 * dryrun.h: how a dry run (`kupenstack plugin run --dry-run`) shows what it does not do:
 * each write it would have made, one YAML document on stdout ("---" then the write as
 * JSON, which is YAML), so that a person can read it and jq or a YAML parser can too:
 *
 *   ---
 *   {"dryRun": "PATCH", "resource": "widgets.test.kupenstack.io/v1", "namespace": "ns",
 *    "name": "w1", "subresource": "status", "patchType": "merge", "body": {...}}
 */
#include <cJSON.h>

#include "kube.h"

/*
 * Print the write verb ("APPLY", "CREATE", "PATCH", "DELETE") of res ns/name. ns, name,
 * sub (subresource), patch_type and body may be NULL; body is copied.
 */
void ks_dryrun_write(const char *verb, const struct ks_kube_res *res, const char *ns,
		     const char *name, const char *sub, const char *patch_type, const cJSON *body);
/* Print doc as one document, and free it. */
void ks_dryrun_print(cJSON *doc);
