#pragma once
/*
 * json.h: small helpers over cJSON that every unit uses: dotted-path lookup, compact
 * printing, and the stripping of fields the cache does not keep.
 */
#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

/*
 * Look up a dotted path ("metadata.name", "status.conditions") below root; a key that
 * holds a dot cannot be named this way (use cJSON_GetObjectItemCaseSensitive). Returns
 * the item, or NULL when any step is missing or not an object.
 */
const cJSON *ks_json_path(const cJSON *root, const char *path);
/* The string at path, or NULL if missing or not a string. */
const char *ks_json_str(const cJSON *root, const char *path);
/* The number at path as an integer, or def if missing or not a number. */
long long ks_json_int(const cJSON *root, const char *path, long long def);

/* Compact JSON text of item; never NULL; the caller frees. */
char *ks_json_print(const cJSON *item);
/* Parse n bytes (need not be NUL-terminated). Returns NULL if not valid JSON. */
cJSON *ks_json_parse(const char *text, size_t n);

/*
 * Remove metadata.managedFields and the kubectl last-applied-configuration annotation
 * from a Kubernetes object in place (an empty annotations map is removed too).
 */
void ks_json_strip_object(cJSON *obj);

/* Deep equality of two JSON values; object key order does not matter. */
bool ks_json_equal(const cJSON *a, const cJSON *b);
