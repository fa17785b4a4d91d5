/* event_object.c: a core/v1 Event built from the object it is about. */
#include "event_object.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "ks.h"

#define NAME_PREFIX 236 /* 253 for a name, less ".<16 hex>" */

void ks_event_timestamp(char out[32], time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void ks_event_set_str(cJSON *o, const char *key, const char *val)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	cJSON_AddStringToObject(o, key, val);
}

void ks_event_name(cJSON *ev, const char *obj, uint64_t seq, const void *salt)
{
	char prefix[NAME_PREFIX + 1], *name;
	struct timespec ts;
	uint64_t v[3];
	size_t n = 0;

	for (; *obj && n < NAME_PREFIX; obj++) {
		unsigned char c = (unsigned char)tolower((unsigned char)*obj);

		prefix[n++] = (char)(isalnum(c) || c == '-' || c == '.' ? c : '-');
	}
	while (n && !isalnum((unsigned char)prefix[n - 1]))
		n--;
	prefix[n] = '\0';
	clock_gettime(CLOCK_REALTIME, &ts);
	v[0] = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	v[1] = seq;
	v[2] = (uint64_t)getpid() ^ (uint64_t)(uintptr_t)salt;
	name = ks_xasprintf("%s.%016llx", n && isalnum((unsigned char)prefix[0]) ? prefix : "event",
			    (unsigned long long)ks_hash(v, sizeof(v)));
	ks_event_set_str(cJSON_GetObjectItemCaseSensitive(ev, "metadata"), "name", name);
	free(name);
}

static void copy_str(cJSON *dst, const char *key, const cJSON *src, const char *path)
{
	const char *s = ks_json_str(src, path);

	if (s && *s)
		cJSON_AddStringToObject(dst, key, s);
}

cJSON *ks_event_object(const cJSON *obj, const char *type, const char *reason, const char *msg,
		       const char *component, const char *host, uint64_t seq, const void *salt)
{
	cJSON *ev = cJSON_CreateObject(), *m, *io, *src;
	const char *ns = ks_json_str(obj, "metadata.namespace");
	char now[32];

	ks_event_timestamp(now, time(NULL));
	cJSON_AddStringToObject(ev, "apiVersion", "v1");
	cJSON_AddStringToObject(ev, "kind", "Event");
	m = cJSON_AddObjectToObject(ev, "metadata");
	cJSON_AddStringToObject(m, "namespace", ns && *ns ? ns : "default");
	ks_event_name(ev, ks_json_str(obj, "metadata.name"), seq, salt);
	io = cJSON_AddObjectToObject(ev, "involvedObject");
	copy_str(io, "apiVersion", obj, "apiVersion");
	copy_str(io, "kind", obj, "kind");
	copy_str(io, "namespace", obj, "metadata.namespace");
	copy_str(io, "name", obj, "metadata.name");
	copy_str(io, "uid", obj, "metadata.uid");
	copy_str(io, "resourceVersion", obj, "metadata.resourceVersion");
	cJSON_AddStringToObject(ev, "reason", reason);
	cJSON_AddStringToObject(ev, "message", msg);
	cJSON_AddStringToObject(ev, "type", type);
	src = cJSON_AddObjectToObject(ev, "source");
	cJSON_AddStringToObject(src, "component", component);
	cJSON_AddStringToObject(src, "host", host);
	cJSON_AddStringToObject(ev, "firstTimestamp", now);
	cJSON_AddStringToObject(ev, "lastTimestamp", now);
	cJSON_AddNumberToObject(ev, "count", 1);
	cJSON_AddStringToObject(ev, "reportingComponent", component);
	cJSON_AddStringToObject(ev, "reportingInstance", host);
	return ev;
}

char *ks_event_object_key(const cJSON *obj)
{
	const char *uid = ks_json_str(obj, "metadata.uid");
	const char *av = ks_json_str(obj, "apiVersion"), *kind = ks_json_str(obj, "kind");
	const char *ns = ks_json_str(obj, "metadata.namespace");

	if (uid && *uid)
		return ks_xstrdup(uid);
	return ks_xasprintf("%s/%s/%s/%s", av ? av : "", kind ? kind : "", ns ? ns : "",
			    ks_json_str(obj, "metadata.name"));
}

void ks_event_cut(char *s, size_t n)
{
	size_t i = n, need;
	unsigned char c;

	while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
		i--;
	if (i == 0)
		return;
	c = (unsigned char)s[i - 1];
	need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
	if (n - (i - 1) < need)
		s[i - 1] = '\0';
}
