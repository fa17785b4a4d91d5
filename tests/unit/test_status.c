/*
 * test_status.c: host/status.h, the next .status of a reconcile's outcome: the plugin's
 * conditions kept on a failure beside the host's own (Progressing, Available), which never
 * replace a type the plugin reported; transition times kept while a status holds; the
 * host's failure conditions cleared by the next success; nothing to write when unchanged.
 */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "status.h"
#include "test.h"

#define NOW "2026-12-07T10:00:00Z"
#define LATER "2026-12-07T10:05:00Z"

static const cJSON *cond_of(const cJSON *status, const char *type)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, cJSON_GetObjectItem(status, "conditions"))
	{
		if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(c, "type")), type) == 0)
			return c;
	}
	return NULL;
}

static const char *field(const cJSON *status, const char *type, const char *key)
{
	const cJSON *c = cond_of(status, type);

	return c ? cJSON_GetStringValue(cJSON_GetObjectItem(c, key)) : NULL;
}

/* An object at generation 3 whose status is text (JSON), or none. */
static cJSON *object(const char *status)
{
	cJSON *o = cJSON_Parse("{\"metadata\":{\"name\":\"x\",\"generation\":3}}");

	if (status)
		cJSON_AddItemToObject(o, "status", cJSON_Parse(status));
	return o;
}

TEST(failure_keeps_the_plugins_conditions)
{
	cJSON *obj = object(NULL);
	cJSON *st = cJSON_Parse("{\"phase\":\"Degraded\"}");
	cJSON *conds = cJSON_Parse("[{\"type\":\"Ready\",\"status\":\"False\",\"reason\":"
				   "\"Failed\",\"message\":\"Job db-sync failed\"},"
				   "{\"type\":\"Degraded\",\"status\":\"True\",\"reason\":"
				   "\"JobFailed\",\"message\":\"Job db-sync failed\"}]");
	struct ks_outcome o = { .status = st, .conditions = conds, .error = "Job db-sync failed" };
	cJSON *next = ks_status_next(obj, &o, NOW);

	ASSERT(next != NULL);
	ASSERT_STR(cJSON_GetStringValue(cJSON_GetObjectItem(next, "phase")), "Degraded");
	ASSERT_STR(field(next, "Ready", "status"), "False");
	ASSERT_STR(field(next, "Degraded", "status"), "True");
	ASSERT_STR(field(next, "Degraded", "reason"), "JobFailed");
	ASSERT_STR(field(next, "Degraded", "message"), "Job db-sync failed");
	/* the host's own, beside them */
	ASSERT_STR(field(next, "Progressing", "status"), "True");
	ASSERT_STR(field(next, "Progressing", "reason"), "Transient");
	ASSERT_STR(field(next, "Progressing", "message"), "Job db-sync failed (will retry)");
	ASSERT_STR(field(next, "Available", "status"), "False");
	cJSON_Delete(next);
	cJSON_Delete(obj);
	cJSON_Delete(st);
	cJSON_Delete(conds);
}

TEST(failure_never_replaces_a_type_the_plugin_reported)
{
	cJSON *obj = object(NULL);
	cJSON *conds = cJSON_Parse("[{\"type\":\"Progressing\",\"status\":\"False\",\"reason\":"
				   "\"Halted\",\"message\":\"upgrade halted\"}]");
	struct ks_outcome o = { .conditions = conds,
				.error = "boom",
				.terminal = true,
				.reason = "InvalidConfiguration" };
	cJSON *next = ks_status_next(obj, &o, NOW);

	ASSERT(next != NULL);
	ASSERT_STR(field(next, "Progressing", "reason"), "Halted");
	ASSERT_STR(field(next, "Progressing", "message"), "upgrade halted");
	ASSERT_STR(field(next, "Available", "reason"), "InvalidConfiguration");
	ASSERT_STR(field(next, "Available", "message"), "boom");
	cJSON_Delete(next);
	cJSON_Delete(obj);
	cJSON_Delete(conds);
}

TEST(failure_without_conditions_sets_the_hosts)
{
	cJSON *obj = object("{\"conditions\":[{\"type\":\"Available\",\"status\":\"True\","
			    "\"reason\":\"Up\",\"lastTransitionTime\":\"" NOW "\"}]}");
	struct ks_outcome o = { .error = "timeout", .terminal = true };
	cJSON *next = ks_status_next(obj, &o, LATER);

	ASSERT(next != NULL);
	ASSERT_STR(field(next, "Progressing", "status"), "False");
	ASSERT_STR(field(next, "Progressing", "reason"), "Terminal");
	ASSERT_STR(field(next, "Progressing", "message"), "timeout");
	/* an available resource stays available */
	ASSERT_STR(field(next, "Available", "status"), "True");
	ASSERT_STR(field(next, "Available", "lastTransitionTime"), NOW);
	cJSON_Delete(next);
	cJSON_Delete(obj);
}

TEST(success_clears_the_hosts_failure_and_keeps_transition_times)
{
	cJSON *obj = object("{\"observedGeneration\":3,\"conditions\":["
			    "{\"type\":\"Progressing\",\"status\":\"True\",\"reason\":"
			    "\"Transient\",\"lastTransitionTime\":\"" NOW "\"},"
			    "{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"Waiting\","
			    "\"lastTransitionTime\":\"" NOW "\"}]}");
	cJSON *conds =
		cJSON_Parse("[{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"Still\"}]");
	struct ks_outcome o = { .conditions = conds };
	cJSON *next = ks_status_next(obj, &o, LATER);

	ASSERT(next != NULL);
	ASSERT_STR(field(next, "Progressing", "status"), "False");
	ASSERT_STR(field(next, "Progressing", "reason"), "Success");
	ASSERT_STR(field(next, "Progressing", "lastTransitionTime"), LATER);
	ASSERT_STR(field(next, "Ready", "reason"), "Still");
	ASSERT_STR(field(next, "Ready", "lastTransitionTime"), NOW);
	cJSON_Delete(next);
	cJSON_Delete(obj);
	cJSON_Delete(conds);
}

TEST(unchanged_is_nothing_to_write)
{
	cJSON *obj = object("{\"observedGeneration\":3,\"phase\":\"Ready\"}");
	cJSON *st = cJSON_Parse("{\"phase\":\"Ready\"}");
	struct ks_outcome o = { .status = st };

	ASSERT(ks_status_next(obj, &o, NOW) == NULL);
	cJSON_Delete(obj);
	cJSON_Delete(st);
}

int main(void)
{
	RUN(failure_keeps_the_plugins_conditions);
	RUN(failure_never_replaces_a_type_the_plugin_reported);
	RUN(failure_without_conditions_sets_the_hosts);
	RUN(success_clears_the_hosts_failure_and_keeps_transition_times);
	RUN(unchanged_is_nothing_to_write);
	TEST_MAIN();
}
