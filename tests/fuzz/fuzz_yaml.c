// fuzz-units: host/yaml.c host/ks.c host/json.c host/log.c host/map.c
/*
 * fuzz_yaml.c: libFuzzer target for ks_yaml_parse_all() and ks_yaml_parse(). Beyond
 * what the sanitizers catch, it checks the contract in yaml.h: a result or a one-line
 * "line L column C: ..." error, never both, and ks_yaml_parse() agreeing with
 * ks_yaml_parse_all() on texts of exactly one document.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "ks.h"
#include "yaml.h"

static void check_err(const char *err)
{
	ks_require(err && strncmp(err, "line ", 5) == 0);
	ks_require(!strchr(err, '\n'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	char *err = NULL, *err1 = NULL;
	cJSON *docs = ks_yaml_parse_all(text, size, &err);
	cJSON *doc = ks_yaml_parse(text, size, &err1);

	if (docs) {
		ks_require(!err && cJSON_IsArray(docs));
		free(ks_json_print(docs));
	} else {
		check_err(err);
	}
	if (doc)
		ks_require(!err1 && docs && cJSON_GetArraySize(docs) == 1 &&
			   ks_json_equal(doc, cJSON_GetArrayItem(docs, 0)));
	else
		check_err(err1);
	if (docs && cJSON_GetArraySize(docs) == 1)
		ks_require(doc);
	cJSON_Delete(doc);
	cJSON_Delete(docs);
	free(err);
	free(err1);
	return 0;
}
