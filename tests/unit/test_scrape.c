/*
 * test_scrape.c: reading the text exposition format as the host's /metrics writes it.
 */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "ks.h"
#include "metrics.h"
#include "scrape.h"
#include "test.h"

static const char *label(const cJSON *s, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "labels"), k));
}

TEST(samples_labels_and_values)
{
	const char *text = "# HELP a_total help\n"
			   "# TYPE a_total counter\n"
			   "a_total{plugin=\"w.lua\",error=\"x \\\"q\\\" \\\\ \\n y\"} 3\n"
			   "\n"
			   "b 1.5e+09\n"
			   "c{} -2\n"
			   "broken{a=\"x} 1\n"
			   "novalue{a=\"x\"}\n";
	cJSON *all = ks_scrape_parse(text, strlen(text));
	const cJSON *s;

	ASSERT_EQ(cJSON_GetArraySize(all), 3);
	s = cJSON_GetArrayItem(all, 0);
	ASSERT_STR(ks_json_str(s, "name"), "a_total");
	ASSERT_STR(label(s, "plugin"), "w.lua");
	ASSERT_STR(label(s, "error"), "x \"q\" \\ \n y");
	ASSERT_EQ(cJSON_GetNumberValue(cJSON_GetObjectItem(s, "value")), 3);
	s = cJSON_GetArrayItem(all, 1);
	ASSERT_STR(ks_json_str(s, "name"), "b");
	ASSERT(cJSON_GetNumberValue(cJSON_GetObjectItem(s, "value")) == 1.5e9);
	s = cJSON_GetArrayItem(all, 2);
	ASSERT_EQ(cJSON_GetNumberValue(cJSON_GetObjectItem(s, "value")), -2);
	cJSON_Delete(all);
}

TEST(what_the_registry_renders_reads_back)
{
	struct ks_metrics *m = ks_metrics_new();
	struct ks_metric_family *f =
		ks_metrics_gauge(m, "kupenstack_plugin_info", "h", KS_LABELS("plugin", "error"));
	struct ks_buf out;
	const cJSON *s;
	cJSON *all;
	int seen = 0;

	ks_metric_set(ks_metric_child(f, KS_LABELS("a.lua", "field 'kind' \"must\"\nbe")), 1);
	ks_buf_init(&out);
	ks_metrics_render(m, &out);
	all = ks_scrape_parse(out.data, out.len);
	cJSON_ArrayForEach(s, all)
	{
		if (strcmp(ks_json_str(s, "name"), "kupenstack_plugin_info") != 0)
			continue;
		seen++;
		ASSERT_STR(label(s, "plugin"), "a.lua");
		ASSERT_STR(label(s, "error"), "field 'kind' \"must\"\nbe");
	}
	ASSERT_EQ(seen, 1);
	cJSON_Delete(all);
	ks_buf_deinit(&out);
	ks_metrics_free(m);
}

int main(void)
{
	RUN(samples_labels_and_values);
	RUN(what_the_registry_renders_reads_back);
	TEST_MAIN();
}
