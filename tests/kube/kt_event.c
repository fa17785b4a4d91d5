/*
 * kt_event.c: the Events recorder against the real API server: the Event's fields as
 * the API and `kubectl describe` show them, repeats folded into one counted Event,
 * the spam filter, cluster-scoped objects, refused creates, expired Events, the
 * window, the pending cap and a cut message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "json.h"
#include "kt.h"

#define NS "kt-event"

static struct kt t;
static struct ks_events *rec;

static const struct ks_kube_res configmaps = { "", "v1", "configmaps", true };
static const struct ks_kube_res namespaces = { "", "v1", "namespaces", false };
static const struct ks_kube_res events = { "", "v1", "events", true };

/* A ConfigMap in NS as the server returns it (uid, resourceVersion): caller frees. */
static cJSON *make_cm(const char *name)
{
	struct kt_res r = { 0 };
	cJSON *cm = cJSON_CreateObject(), *m, *out;

	cJSON_AddStringToObject(cm, "apiVersion", "v1");
	cJSON_AddStringToObject(cm, "kind", "ConfigMap");
	m = cJSON_AddObjectToObject(cm, "metadata");
	cJSON_AddStringToObject(m, "name", name);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(cm, "data"), "k", "v");
	ks_kube_create(t.kube, &configmaps, NS, cm, kt_store, &r);
	kt_wait(&t, &r, 30);
	cJSON_Delete(cm);
	if (r.code != 201) {
		fprintf(stderr, "could not create configmap %s: %s\n", name, r.message);
		exit(3);
	}
	out = r.body;
	r.body = NULL;
	return out;
}

/* The Events in ns about the object with uid, oldest first: a List the caller frees. */
static cJSON *events_of(const char *ns, const char *uid)
{
	struct kt_res r = { 0 };
	char sel[128];
	cJSON *out;

	snprintf(sel, sizeof(sel), "involvedObject.uid=%s", uid);
	ks_kube_list(t.kube, &events, ns, &(struct ks_kube_list_opts){ .field_selector = sel },
		     kt_store, &r);
	kt_wait(&t, &r, 30);
	if (r.code != 200) {
		fprintf(stderr, "could not list events: %s\n", r.message);
		exit(3);
	}
	out = cJSON_GetObjectItem(r.body, "items");
	cJSON_DetachItemViaPointer(r.body, out);
	kt_res_clear(&r);
	return out;
}

/* The Event in items whose message is msg, or NULL. */
static const cJSON *with_message(const cJSON *items, const char *msg)
{
	const cJSON *ev;

	cJSON_ArrayForEach(ev, items)
	{
		const char *m = ks_json_str(ev, "message");

		if (m && strcmp(m, msg) == 0)
			return ev;
	}
	return NULL;
}

struct want {
	struct ks_events *e;
	unsigned long answers; /* created + patched + failed */
};

static unsigned long answers(struct ks_events *e)
{
	struct ks_events_stats s;

	ks_events_get_stats(e, &s);
	return s.created + s.patched + s.failed;
}

static bool answered(void *data)
{
	struct want *w = data;

	return answers(w->e) >= w->answers;
}

/* Run the loop until e has had n more answers than before; false on timeout. */
static bool wait_answers(struct ks_events *e, unsigned long before, unsigned long n)
{
	struct want w = { e, before + n };

	return kt_until(&t, answered, &w, 30);
}

/* A command's standard output: the caller frees. */
static char *sh_out(const char *cmd)
{
	struct ks_buf b;
	char buf[4096];
	FILE *p = popen(cmd, "r");
	size_t n;

	ks_buf_init(&b);
	while (p && (n = fread(buf, 1, sizeof(buf), p)) > 0)
		ks_buf_append(&b, buf, n);
	if (p)
		pclose(p);
	fprintf(stderr, "$ %s\n%s", cmd, b.data ? b.data : "");
	return ks_buf_steal(&b);
}

static bool is_rfc3339(const char *s)
{
	int y, mo, d, h, mi, sec;
	char z;

	return s && strlen(s) == 20 &&
	       sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &sec, &z) == 7 &&
	       z == 'Z';
}

static bool is_event_name(const char *name, const char *obj)
{
	size_t n = strlen(obj);

	if (!name || strncmp(name, obj, n) != 0 || name[n] != '.' || strlen(name + n + 1) != 16)
		return false;
	return strspn(name + n + 1, "0123456789abcdef") == 16;
}

TEST(one_event_has_its_fields_right)
{
	cJSON *cm = make_cm("cm-one"), *items;
	const cJSON *ev;
	struct ks_events_stats s0, s;
	char *out;
	bool shown;

	ks_events_get_stats(rec, &s0);
	ks_event(rec, cm, "Normal", "Synced", "synced %d keys to %s", 3, "nova");
	/* Nothing is sent from inside the call. */
	ks_events_get_stats(rec, &s);
	ASSERT_EQ(s.created, s0.created);
	ASSERT(wait_answers(rec, answers(rec), 1));
	ks_events_get_stats(rec, &s);
	ASSERT_EQ(s.created, s0.created + 1);
	items = events_of(NS, ks_json_str(cm, "metadata.uid"));
	ASSERT_EQ(cJSON_GetArraySize(items), 1);
	ev = cJSON_GetArrayItem(items, 0);
	ASSERT(is_event_name(ks_json_str(ev, "metadata.name"), "cm-one"));
	ASSERT_STR(ks_json_str(ev, "metadata.namespace"), NS);
	ASSERT_STR(ks_json_str(ev, "involvedObject.apiVersion"), "v1");
	ASSERT_STR(ks_json_str(ev, "involvedObject.kind"), "ConfigMap");
	ASSERT_STR(ks_json_str(ev, "involvedObject.namespace"), NS);
	ASSERT_STR(ks_json_str(ev, "involvedObject.name"), "cm-one");
	ASSERT_STR(ks_json_str(ev, "involvedObject.uid"), ks_json_str(cm, "metadata.uid"));
	ASSERT_STR(ks_json_str(ev, "involvedObject.resourceVersion"),
		   ks_json_str(cm, "metadata.resourceVersion"));
	ASSERT_STR(ks_json_str(ev, "type"), "Normal");
	ASSERT_STR(ks_json_str(ev, "reason"), "Synced");
	ASSERT_STR(ks_json_str(ev, "message"), "synced 3 keys to nova");
	ASSERT_STR(ks_json_str(ev, "source.component"), "kupenstack");
	ASSERT_STR(ks_json_str(ev, "source.host"), "kt-host");
	ASSERT_STR(ks_json_str(ev, "reportingComponent"), "kupenstack");
	ASSERT_STR(ks_json_str(ev, "reportingInstance"), "kt-host");
	ASSERT_EQ(ks_json_int(ev, "count", -1), 1);
	ASSERT(is_rfc3339(ks_json_str(ev, "firstTimestamp")));
	ASSERT_STR(ks_json_str(ev, "firstTimestamp"), ks_json_str(ev, "lastTimestamp"));
	cJSON_Delete(items);
	cJSON_Delete(cm);
	/* What a user sees: the Events table of `kubectl describe`. */
	out = sh_out("kubectl describe configmap cm-one -n " NS " 2>&1");
	shown = strstr(out, "Events:") && strstr(out, "Normal") && strstr(out, "Synced") &&
		strstr(out, "kupenstack") && strstr(out, "synced 3 keys to nova");
	free(out);
	ASSERT(shown);
}

/* The count of the Event in items with message msg, or -1. */
static long long count_of(const cJSON *items, const char *msg)
{
	const cJSON *ev = with_message(items, msg);

	return ev ? ks_json_int(ev, "count", -1) : -1;
}

TEST(repeats_are_one_event_counted_and_a_new_message_is_another)
{
	cJSON *cm = make_cm("cm-dup"), *items;
	struct ks_events_stats s0, s;
	const cJSON *ev;
	char *out, first[64];
	bool shown;

	ks_events_get_stats(rec, &s0);
	/* One at a time: a create, then four patches. */
	for (int i = 0; i < 5; i++) {
		ks_event(rec, cm, "Warning", "BackOff", "nova-api is not ready");
		ASSERT(wait_answers(rec, answers(rec), 1));
	}
	ks_events_get_stats(rec, &s);
	ASSERT_EQ(s.created - s0.created, 1);
	ASSERT_EQ(s.patched - s0.patched, 4);
	items = events_of(NS, ks_json_str(cm, "metadata.uid"));
	ASSERT_EQ(cJSON_GetArraySize(items), 1);
	ASSERT_EQ(count_of(items, "nova-api is not ready"), 5);
	ev = with_message(items, "nova-api is not ready");
	snprintf(first, sizeof(first), "%s", ks_json_str(ev, "firstTimestamp"));
	ASSERT(is_rfc3339(ks_json_str(ev, "lastTimestamp")));
	ASSERT(strcmp(ks_json_str(ev, "lastTimestamp"), first) >= 0);
	cJSON_Delete(items);
	/* Five in one go are folded before the create goes out. */
	for (int i = 0; i < 5; i++)
		ks_event(rec, cm, "Warning", "BackOff", "nova-api failed %d times", 5);
	ASSERT(wait_answers(rec, answers(rec), 1));
	kt_run_for(&t, 0.3);
	items = events_of(NS, ks_json_str(cm, "metadata.uid"));
	ASSERT_EQ(cJSON_GetArraySize(items), 2);
	ASSERT_EQ(count_of(items, "nova-api is not ready"), 5);
	ASSERT_EQ(count_of(items, "nova-api failed 5 times"), 5);
	cJSON_Delete(items);
	cJSON_Delete(cm);
	out = sh_out("kubectl get events -n " NS " --field-selector involvedObject.name=cm-dup "
		     "-o custom-columns=COUNT:.count,TYPE:.type,REASON:.reason,MESSAGE:.message "
		     "--no-headers 2>&1");
	shown = strstr(out, "5     Warning   BackOff   nova-api is not ready") &&
		strstr(out, "5     Warning   BackOff   nova-api failed 5 times");
	free(out);
	ASSERT(shown);
	out = sh_out("kubectl describe configmap cm-dup -n " NS " 2>&1");
	shown = strstr(out, "(x5 over") != NULL;
	free(out);
	ASSERT(shown);
}

TEST(spam_beyond_the_burst_is_dropped)
{
	cJSON *cm = make_cm("cm-spam"), *items;
	struct ks_events_stats s0, s;
	char *out;
	int lines = 0;

	ks_events_get_stats(rec, &s0);
	for (int i = 0; i < 100; i++)
		ks_event(rec, cm, "Warning", "ReconcileFailed", "attempt %d failed", i);
	ks_events_get_stats(rec, &s);
	ASSERT_EQ(s.dropped - s0.dropped, 75);
	ASSERT(wait_answers(rec, answers(rec), 25));
	kt_run_for(&t, 0.3);
	ks_events_get_stats(rec, &s);
	ASSERT_EQ(s.created - s0.created, 25);
	ASSERT_EQ(s.failed - s0.failed, 0);
	items = events_of(NS, ks_json_str(cm, "metadata.uid"));
	ASSERT_EQ(cJSON_GetArraySize(items), 25);
	/* The first 25 made it, the rest did not. */
	ASSERT(with_message(items, "attempt 0 failed") != NULL);
	ASSERT(with_message(items, "attempt 24 failed") != NULL);
	ASSERT(with_message(items, "attempt 25 failed") == NULL);
	cJSON_Delete(items);
	cJSON_Delete(cm);
	out = sh_out("kubectl get events -n " NS " --field-selector involvedObject.name=cm-spam "
		     "--no-headers 2>&1");
	for (char *p = out; (p = strstr(p, "ReconcileFailed")); p++)
		lines++;
	free(out);
	ASSERT_EQ(lines, 25);
}

TEST(the_bucket_refills)
{
	struct ks_events *e = ks_events_new(
		&t.loop, t.kube,
		&(struct ks_events_opts){ .host = "kt-host", .burst = 2, .refill_seconds = 0.5 });
	cJSON *cm = make_cm("cm-refill");
	struct ks_events_stats s;

	ks_event(e, cm, "Normal", "A", "one");
	ks_event(e, cm, "Normal", "A", "two");
	ks_event(e, cm, "Normal", "A", "three");
	ks_events_get_stats(e, &s);
	ASSERT_EQ(s.dropped, 1);
	kt_run_for(&t, 0.6);
	ks_event(e, cm, "Normal", "A", "four");
	ks_event(e, cm, "Normal", "A", "five");
	ASSERT(wait_answers(e, 0, 3));
	ks_events_get_stats(e, &s);
	ASSERT_EQ(s.dropped, 2);
	ASSERT_EQ(s.created, 3);
	ks_events_free(e);
	cJSON_Delete(cm);
}

TEST(cluster_scoped_object_lands_in_default)
{
	struct kt_res r = { 0 };
	cJSON *items;
	const cJSON *ev;
	char *out;
	bool shown;

	ks_kube_get(t.kube, &namespaces, NULL, NS, kt_store, &r);
	kt_wait(&t, &r, 30);
	ASSERT_EQ(r.code, 200);
	ks_event(rec, r.body, "Normal", "Adopted", "namespace %s adopted", NS);
	ASSERT(wait_answers(rec, answers(rec), 1));
	items = events_of("default", ks_json_str(r.body, "metadata.uid"));
	ASSERT_EQ(cJSON_GetArraySize(items), 1);
	ev = cJSON_GetArrayItem(items, 0);
	ASSERT_STR(ks_json_str(ev, "metadata.namespace"), "default");
	ASSERT(is_event_name(ks_json_str(ev, "metadata.name"), NS));
	ASSERT_STR(ks_json_str(ev, "involvedObject.kind"), "Namespace");
	ASSERT_STR(ks_json_str(ev, "involvedObject.name"), NS);
	ASSERT(ks_json_str(ev, "involvedObject.namespace") == NULL);
	cJSON_Delete(items);
	kt_res_clear(&r);
	out = sh_out("kubectl get events -n default --field-selector "
		     "involvedObject.kind=Namespace,involvedObject.name=" NS " 2>&1");
	shown = strstr(out, "Adopted") && strstr(out, "namespace/" NS) &&
		strstr(out, "namespace " NS " adopted");
	free(out);
	ASSERT(shown);
}

TEST(missing_namespace_is_a_counted_failure)
{
	cJSON *obj = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
				 "{\"namespace\":\"kt-event-nowhere\",\"name\":\"ghost\","
				 "\"uid\":\"00000000-0000-0000-0000-00000000dead\"}}");
	struct ks_events_stats s0, s;

	ks_events_get_stats(rec, &s0);
	ks_event(rec, obj, "Warning", "Lost", "nobody will see this");
	ASSERT(wait_answers(rec, answers(rec), 1));
	ks_events_get_stats(rec, &s);
	ASSERT_EQ(s.failed - s0.failed, 1);
	ASSERT_EQ(s.created - s0.created, 0);
	/* Not retried: nothing more goes out. */
	kt_run_for(&t, 1.5);
	ks_events_get_stats(rec, &s);
	ASSERT_EQ(s.failed - s0.failed, 1);
	/* The next one is tried afresh, and fails the same way. */
	ks_event(rec, obj, "Warning", "Lost", "nobody will see this");
	ASSERT(wait_answers(rec, answers(rec), 1));
	ks_events_get_stats(rec, &s);
	ASSERT_EQ(s.failed - s0.failed, 2);
	ASSERT_EQ(s.patched - s0.patched, 0);
	cJSON_Delete(obj);
}

TEST(an_expired_event_is_created_anew)
{
	cJSON *cm = make_cm("cm-expire"), *items;
	struct kt_res r = { 0 };
	struct ks_events_stats s0, s;
	char *name;

	ks_events_get_stats(rec, &s0);
	ks_event(rec, cm, "Normal", "Ready", "all services up");
	ASSERT(wait_answers(rec, answers(rec), 1));
	items = events_of(NS, ks_json_str(cm, "metadata.uid"));
	ASSERT_EQ(cJSON_GetArraySize(items), 1);
	name = ks_xstrdup(ks_json_str(cJSON_GetArrayItem(items, 0), "metadata.name"));
	cJSON_Delete(items);
	/* As the apiserver's --event-ttl would. */
	ks_kube_delete(t.kube, &events, NS, name, NULL, kt_store, &r);
	kt_wait(&t, &r, 30);
	free(name);
	ASSERT_EQ(r.code, 200);
	kt_res_clear(&r);
	ks_event(rec, cm, "Normal", "Ready", "all services up");
	ASSERT(wait_answers(rec, answers(rec), 1));
	ks_events_get_stats(rec, &s);
	ASSERT_EQ(s.created - s0.created, 2);
	ASSERT_EQ(s.patched - s0.patched, 0);
	ASSERT_EQ(s.failed - s0.failed, 0);
	items = events_of(NS, ks_json_str(cm, "metadata.uid"));
	ASSERT_EQ(cJSON_GetArraySize(items), 1);
	ASSERT_EQ(count_of(items, "all services up"), 2);
	cJSON_Delete(items);
	cJSON_Delete(cm);
}

TEST(after_the_window_a_repeat_is_a_new_event)
{
	struct ks_events *e =
		ks_events_new(&t.loop, t.kube, &(struct ks_events_opts){ .aggregate_window = 0.5 });
	cJSON *cm = make_cm("cm-window"), *items;
	struct ks_events_stats s;
	char host[256] = "";

	ks_event(e, cm, "Normal", "Tick", "tick");
	ks_event(e, cm, "Normal", "Tick", "tick");
	ASSERT(wait_answers(e, 0, 1));
	kt_run_for(&t, 0.7);
	ks_event(e, cm, "Normal", "Tick", "tick");
	ASSERT(wait_answers(e, 0, 2));
	ks_events_get_stats(e, &s);
	ASSERT_EQ(s.created, 2);
	ASSERT_EQ(s.patched, 0);
	items = events_of(NS, ks_json_str(cm, "metadata.uid"));
	ASSERT_EQ(cJSON_GetArraySize(items), 2);
	ASSERT_EQ(ks_json_int(cJSON_GetArrayItem(items, 0), "count", -1) +
			  ks_json_int(cJSON_GetArrayItem(items, 1), "count", -1),
		  3);
	/* No host given: the hostname. */
	gethostname(host, sizeof(host) - 1);
	ASSERT_STR(ks_json_str(cJSON_GetArrayItem(items, 0), "source.host"), host);
	cJSON_Delete(items);
	ks_events_free(e);
	cJSON_Delete(cm);
}

TEST(entries_forgotten_while_busy_are_still_sent_or_freed)
{
	const struct ks_events_opts o = { .host = "kt-host", .aggregate_window = 1e-9 };
	struct ks_events *e = ks_events_new(&t.loop, t.kube, &o);
	cJSON *cm = make_cm("cm-busy"), *items;
	struct ks_events_stats s;

	/* Each repeat finds the last one past the window while it still waits to go. */
	for (int i = 0; i < 3; i++)
		ks_event(e, cm, "Normal", "Again", "again");
	ASSERT(wait_answers(e, 0, 3));
	ks_events_get_stats(e, &s);
	ASSERT_EQ(s.created, 3);
	ASSERT_EQ(s.patched, 0);
	items = events_of(NS, ks_json_str(cm, "metadata.uid"));
	ASSERT_EQ(cJSON_GetArraySize(items), 3);
	cJSON_Delete(items);
	/* And freed with such entries queued: nothing leaks (SAN=1). */
	for (int i = 0; i < 3; i++)
		ks_event(e, cm, "Normal", "Again", "again");
	ks_events_free(e);
	kt_run_for(&t, 0.1);
	cJSON_Delete(cm);
}

static int server_port(void)
{
	const char *colon = strrchr(t.cfg.server, ':');

	return colon ? atoi(colon + 1) : 443;
}

TEST(transport_errors_are_retried_twice_then_counted)
{
	struct kt_proxy *p = kt_proxy_start(&t, "127.0.0.1", server_port());
	struct ks_kubeconfig c = t.cfg;
	struct ks_events *e;
	struct ks_kube *k;
	struct ks_events_stats s;
	cJSON *cm = make_cm("cm-retry"), *items;
	uint64_t t0;

	c.server = ks_xasprintf("https://127.0.0.1:%d", kt_proxy_port(p));
	k = ks_kube_new(t.http, &c);
	free(c.server);
	e = ks_events_new(&t.loop, k, NULL);
	kt_proxy_set_mode(p, KT_PROXY_REFUSE);
	t0 = ks_now_ns();
	ks_event(e, cm, "Warning", "Unreachable", "never arrives");
	ASSERT(wait_answers(e, 0, 1));
	ks_events_get_stats(e, &s);
	ASSERT_EQ(s.failed, 1);
	ASSERT_EQ(s.created, 0);
	/* Three tries: at once, after 1 s, after 2 s more. */
	ASSERT(ks_now_ns() - t0 >= 2900000000u);
	ASSERT(kt_proxy_accepted(p) >= 3);
	/* Back before the first retry: that retry makes it. */
	ks_event(e, cm, "Warning", "Unreachable", "arrives late");
	kt_run_for(&t, 0.5);
	kt_proxy_set_mode(p, KT_PROXY_FORWARD);
	ASSERT(wait_answers(e, 1, 1));
	ks_events_get_stats(e, &s);
	ASSERT_EQ(s.created, 1);
	ASSERT_EQ(s.failed, 1);
	items = events_of(NS, ks_json_str(cm, "metadata.uid"));
	ASSERT_EQ(cJSON_GetArraySize(items), 1);
	ASSERT(with_message(items, "arrives late") != NULL);
	cJSON_Delete(items);
	ks_events_free(e);
	ks_kube_free(k);
	kt_proxy_stop(p);
	cJSON_Delete(cm);
}

TEST(pending_is_capped_and_free_cancels)
{
	struct ks_events *e = ks_events_new(&t.loop, t.kube, NULL);
	struct ks_events_stats s;
	char name[32];

	for (int i = 0; i < 1500; i++) {
		cJSON *o = cJSON_CreateObject(), *m;

		cJSON_AddStringToObject(o, "apiVersion", "v1");
		cJSON_AddStringToObject(o, "kind", "ConfigMap");
		m = cJSON_AddObjectToObject(o, "metadata");
		cJSON_AddStringToObject(m, "namespace", NS);
		snprintf(name, sizeof(name), "bulk-%04d", i);
		cJSON_AddStringToObject(m, "name", name);
		ks_event(e, o, "Normal", "Bulk", "object %d", i);
		cJSON_Delete(o);
	}
	ks_events_get_stats(e, &s);
	ASSERT_EQ(s.dropped, 500);
	ASSERT_EQ(s.created, 0);
	/* Some go out; the rest are abandoned by free, requests in flight too. */
	ASSERT(wait_answers(e, 0, 10));
	ks_events_free(e);
	kt_run_for(&t, 0.2);
}

TEST(a_long_message_is_cut_on_a_character)
{
	cJSON *cm = make_cm("cm-long"), *items;
	struct ks_buf b;
	const char *msg;

	ks_buf_init(&b);
	ks_buf_puts(&b, "a");
	for (int i = 0; i < 600; i++)
		ks_buf_puts(&b, "\xc3\xa9"); /* é */
	ks_event(rec, cm, "Warning", "TooLong", "%s", b.data);
	ASSERT(wait_answers(rec, answers(rec), 1));
	items = events_of(NS, ks_json_str(cm, "metadata.uid"));
	ASSERT_EQ(cJSON_GetArraySize(items), 1);
	msg = ks_json_str(cJSON_GetArrayItem(items, 0), "message");
	/* 1024 bytes would end inside an é: 1023, the a and 511 of them. */
	ASSERT(msg != NULL);
	ASSERT_EQ(strlen(msg), 1023);
	ASSERT(strncmp(msg, b.data, 1023) == 0);
	cJSON_Delete(items);
	ks_buf_deinit(&b);
	cJSON_Delete(cm);
}

TEST(an_object_without_a_name_is_dropped)
{
	cJSON *obj = cJSON_Parse("{\"kind\":\"ConfigMap\",\"metadata\":{}}");
	struct ks_events_stats s0, s;

	ks_events_get_stats(rec, &s0);
	ks_event(rec, obj, "Normal", "Nameless", "x");
	ks_event(rec, NULL, "Normal", "Nameless", "x");
	ks_events_get_stats(rec, &s);
	ASSERT_EQ(s.dropped - s0.dropped, 2);
	cJSON_Delete(obj);
}

int main(void)
{
	kt_init(&t, "KUBECONFIG");
	kt_fresh_namespace(&t, NS);
	rec = ks_events_new(&t.loop, t.kube, &(struct ks_events_opts){ .host = "kt-host" });
	RUN(one_event_has_its_fields_right);
	RUN(repeats_are_one_event_counted_and_a_new_message_is_another);
	RUN(spam_beyond_the_burst_is_dropped);
	RUN(the_bucket_refills);
	RUN(cluster_scoped_object_lands_in_default);
	RUN(missing_namespace_is_a_counted_failure);
	RUN(an_expired_event_is_created_anew);
	RUN(after_the_window_a_repeat_is_a_new_event);
	RUN(entries_forgotten_while_busy_are_still_sent_or_freed);
	RUN(transport_errors_are_retried_twice_then_counted);
	RUN(pending_is_capped_and_free_cancels);
	RUN(a_long_message_is_cut_on_a_character);
	RUN(an_object_without_a_name_is_dropped);
	ks_events_free(rec);
	KT_MAIN_END(&t);
}
