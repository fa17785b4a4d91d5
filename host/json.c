/* json.c: dotted paths, compact printing, stripping, equality over cJSON. */
#include "json.h"

#include <stdlib.h>
#include <string.h>

#include "ks.h"

/* The member of object o whose key is p[0..n), or NULL. */
static const cJSON *member(const cJSON *o, const char *p, size_t n)
{
	const cJSON *child;

	for (child = o->child; child; child = child->next) {
		if (child->string && strlen(child->string) == n && memcmp(child->string, p, n) == 0)
			return child;
	}
	return NULL;
}

const cJSON *ks_json_path(const cJSON *root, const char *path)
{
	const cJSON *cur = root;
	const char *p = path;

	while (cur && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (!cJSON_IsObject(cur))
			return NULL;
		cur = member(cur, p, n);
		p += n + (dot ? 1 : 0);
	}
	return cur;
}

const char *ks_json_str(const cJSON *root, const char *path)
{
	const cJSON *it = ks_json_path(root, path);

	return cJSON_IsString(it) ? it->valuestring : NULL;
}

long long ks_json_int(const cJSON *root, const char *path, long long def)
{
	const cJSON *it = ks_json_path(root, path);

	return cJSON_IsNumber(it) ? (long long)it->valuedouble : def;
}

char *ks_json_print(const cJSON *item)
{
	char *s = cJSON_PrintUnformatted(item);

	if (!s)
		s = ks_xstrdup("null");
	return s;
}

cJSON *ks_json_parse(const char *text, size_t n)
{
	return cJSON_ParseWithLengthOpts(text, n, NULL, false);
}

void ks_json_strip_object(cJSON *obj)
{
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	cJSON *ann;

	if (!cJSON_IsObject(meta))
		return;
	cJSON_DeleteItemFromObjectCaseSensitive(meta, "managedFields");
	ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
	if (!cJSON_IsObject(ann))
		return;
	cJSON_DeleteItemFromObjectCaseSensitive(ann,
						"kubectl.kubernetes.io/last-applied-configuration");
	if (!ann->child)
		cJSON_DeleteItemFromObjectCaseSensitive(meta, "annotations");
}

bool ks_json_equal(const cJSON *a, const cJSON *b)
{
	return cJSON_Compare(a, b, true);
}
