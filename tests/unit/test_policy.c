/* test_policy.c: host/admission's policy, review and cert units (no API server). */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <uv.h>

#include "admission/cert.h"
#include "admission/fixture.h"
#include "admission/policy.h"
#include "admission/review.h"
#include "ks.h"
#include "kubeconfig.h"
#include "test.h"

static struct ks_policy *policy(const char *json, char **err)
{
	cJSON *cr = cJSON_Parse(json);
	struct ks_policy *p = ks_policy_new(uv_default_loop(), cr, err);

	cJSON_Delete(cr);
	return p;
}

#define CR(ns, action, kinds, lua)                                            \
	"{\"metadata\":{\"name\":\"p\"" ns "},\"spec\":{\"action\":\"" action \
	"\",\"match\":{\"kinds\":[" kinds "]},\"lua\":\"" lua "\"}}"

TEST(set_fields_makes_a_json_patch)
{
	cJSON *obj = cJSON_Parse("{\"spec\":{\"a\":1}}"), *patch = cJSON_CreateArray();
	cJSON *fields = cJSON_Parse("{\"spec.b.c\":\"x\",\"spec.a\":2,\"meta/x.y~\":true}");
	char *err = NULL, *p, *o;

	ASSERT_EQ(ks_review_set_fields(obj, fields, patch, &err), 0);
	p = cJSON_PrintUnformatted(patch);
	o = cJSON_PrintUnformatted(obj);
	ASSERT_STR(p, "[{\"op\":\"add\",\"path\":\"/spec/b\",\"value\":{\"c\":\"x\"}},"
		      "{\"op\":\"add\",\"path\":\"/spec/a\",\"value\":2},"
		      "{\"op\":\"add\",\"path\":\"/meta~1x\",\"value\":{\"y~\":true}}]");
	ASSERT_STR(o, "{\"spec\":{\"a\":2,\"b\":{\"c\":\"x\"}},\"meta/x\":{\"y~\":true}}");
	free(p);
	free(o);
	cJSON_Delete(obj);
	cJSON_Delete(fields);
	cJSON_Delete(patch);
}

TEST(set_fields_refuses_a_path_through_a_value)
{
	cJSON *obj = cJSON_Parse("{\"spec\":\"s\"}"), *patch = cJSON_CreateArray();
	cJSON *fields = cJSON_Parse("{\"spec.b\":1}");
	char *err = NULL;

	ASSERT_EQ(ks_review_set_fields(obj, fields, patch, &err), -EINVAL);
	ASSERT_STR(err, "default: spec.b: spec is not an object");
	free(err);
	cJSON_Delete(obj);
	cJSON_Delete(fields);
	cJSON_Delete(patch);
}

TEST(response_carries_denial_warnings_and_base64_patch)
{
	struct ks_review_out out = { .allowed = false, .message = "[p] no" };
	char *t = ks_review_response("u1", &out), *dec;
	cJSON *doc = cJSON_Parse(t), *r = cJSON_GetObjectItem(doc, "response");
	size_t n;

	ASSERT_STR(cJSON_GetObjectItem(r, "uid")->valuestring, "u1");
	ASSERT(cJSON_IsFalse(cJSON_GetObjectItem(r, "allowed")));
	ASSERT_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "status"), "message")->valuestring,
		   "[p] no");
	free(t);
	cJSON_Delete(doc);
	out = (struct ks_review_out){ .allowed = true,
				      .patch = cJSON_Parse("[{\"op\":\"add\",\"path\":\"/a\"}]") };
	t = ks_review_response("u2", &out);
	doc = cJSON_Parse(t);
	r = cJSON_GetObjectItem(doc, "response");
	ASSERT_STR(cJSON_GetObjectItem(r, "patchType")->valuestring, "JSONPatch");
	dec = ks_base64_decode(cJSON_GetObjectItem(r, "patch")->valuestring,
			       strlen(cJSON_GetObjectItem(r, "patch")->valuestring), &n);
	ASSERT_STR(dec, "[{\"op\":\"add\",\"path\":\"/a\"}]");
	free(dec);
	free(t);
	cJSON_Delete(doc);
	cJSON_Delete(out.patch);
}

TEST(policy_refuses_with_the_field_named)
{
	char *err = NULL;

	ASSERT(!policy(CR("", "Block", "\"Instance\"", "return {}"), &err));
	ASSERT_STR(err, "spec.action: Deny, Warn or Audit, not Block");
	free(err);
	ASSERT(!policy(
		CR(",\"namespace\":\"a\"", "Deny", "\"/Pod\"", "return {validate=function() end}"),
		&err));
	ASSERT(strstr(err, "spec.match.kinds[0]: a namespaced Policy matches kupenstack.io"));
	free(err);
	ASSERT(!policy(CR("", "Deny", "\"Instance\"", "return {"), &err));
	ASSERT(strstr(err, "expected"));
	free(err);
	ASSERT(!policy(CR("", "Deny", "\"Instance\"", "require 'ks.core.http'"), &err));
	ASSERT(strstr(err, "not available to policies"));
	free(err);
	ASSERT(!policy(CR("", "Deny", "\"Instance\"",
			  "return {reads={'v1/secrets'}, "
			  "validate=function() end}"),
		       &err));
	ASSERT(strstr(err, "never secrets"));
	free(err);
}

TEST(policy_runs_validate_and_stops_a_loop)
{
	char *err = NULL, *msg = NULL;
	struct ks_policy *p = policy(
		CR("", "Deny", "\"kupenstack.io/Instance\"",
		   "return {validate=function(o, old, ctx) if o.spec.loop then while true do end "
		   "end return ctx.namespace.name .. ':' .. o.metadata.name end}"),
		&err);
	cJSON *obj = cJSON_Parse("{\"metadata\":{\"name\":\"vm\"},\"spec\":{}}");
	struct ks_policy_req r = { .operation = "CREATE",
				   .ns = "a",
				   .group = "kupenstack.io",
				   .kind = "Instance",
				   .object = obj };

	ASSERT(p);
	ASSERT(ks_policy_matches(p, &r));
	r.group = "other.io";
	ASSERT(!ks_policy_matches(p, &r));
	r.group = "kupenstack.io";
	ASSERT_EQ(ks_policy_validate(p, &r, NULL, &msg), 0);
	ASSERT_STR(msg, "a:vm");
	free(msg);
	cJSON_AddTrueToObject(cJSON_GetObjectItem(obj, "spec"), "loop");
	ASSERT_EQ(ks_policy_validate(p, &r, NULL, &msg), -EINVAL);
	ASSERT(strstr(msg, "instruction budget exceeded"));
	free(msg);
	cJSON_Delete(obj);
	ks_policy_free(p);
}

TEST(namespaced_policy_stays_in_its_namespace)
{
	char *err = NULL;
	struct ks_policy *p = policy(CR(",\"namespace\":\"a\"", "Deny", "\"Instance\"",
					"return {validate=function(o) while o.loop do end "
					"return 'no' end}"),
				     &err);
	cJSON *obj = cJSON_Parse("{\"loop\":true}");
	char *msg = NULL;
	struct ks_policy_req r = {
		.operation = "CREATE", .ns = "a", .group = "kupenstack.io", .kind = "Instance"
	};

	ASSERT(p);
	ASSERT(ks_policy_matches(p, &r));
	r.ns = "b";
	ASSERT(!ks_policy_matches(p, &r));
	r.ns = "";
	ASSERT(!ks_policy_matches(p, &r));
	r.ns = "a";
	r.object = obj; /* a tenth of a ClusterPolicy's budget */
	ASSERT_EQ(ks_policy_validate(p, &r, NULL, &msg), -EINVAL);
	ASSERT(strstr(msg, "more than 1 million instructions"));
	free(msg);
	cJSON_Delete(obj);
	ks_policy_free(p);
}

TEST(cert_is_made_and_its_life_read)
{
	struct ks_cert_pair c;
	const char *sans[] = { "127.0.0.1", "x.svc", NULL };
	char *err = NULL;
	long left, total;

	ASSERT_EQ(ks_cert_make(&c, sans, 3600, &err), 0);
	ASSERT(strstr(c.ca_pem, "BEGIN CERTIFICATE"));
	ASSERT(strstr(c.key_pem, "PRIVATE KEY"));
	ASSERT(ks_cert_remaining(c.cert_pem, &left, &total));
	ASSERT(left > 3590 && left <= 3600);
	ASSERT_EQ(total, 3660);
	ASSERT(!ks_cert_remaining("junk", &left, NULL));
	ks_cert_deinit(&c);
}

#define FXV(flavor, expect)                                                                  \
	"{\"request\":{\"namespace\":\"a\",\"kind\":{\"kind\":\"Instance\"},"                \
	"\"object\":{\"metadata\":{\"name\":\"vm\"},\"spec\":{\"flavor\":\"" flavor "\"}}}," \
	"\"expect\":" expect "}"
#define FX(name, flavor, expect) "\"" name "\":" FXV(flavor, expect)

TEST(fixtures_gate_a_version_naming_the_one_that_fails)
{
	char *err = NULL, *why;
	struct ks_policy *p = policy(
		CR("", "Deny", "\"kupenstack.io/Instance\"",
		   "return {validate=function(o) if o.spec.flavor == 'loop' then while true do end "
		   "end if o.spec.flavor ~= 'small' then return 'spec.flavor: no' end end}"),
		&err);
	cJSON *ok = cJSON_Parse("{" FX("small.yaml", "small", "{\"allowed\":true}") "," FX(
		"huge.yaml", "huge",
		"{\"allowed\":false,\"message\":\"[p] spec.flavor: no\"}") "}");
	cJSON *bad = cJSON_Parse(
		"[" FXV("small", "{\"allowed\":true}") "," FXV("huge", "{\"allowed\":true}") "]");
	cJSON *loop = cJSON_Parse("{" FX("loop.yaml", "loop", "{\"allowed\":true}") "}");
	cJSON *junk = cJSON_Parse("{\"junk.yaml\":[1]}");

	ASSERT(p && ok && bad && loop && junk);
	ASSERT(!ks_policy_fixtures_check(p, ok, 2.0));
	why = ks_policy_fixtures_check(p, bad, 2.0); /* an array: named by index */
	ASSERT_STR(why, "fixture 1: expected admitted, got denied: [p] spec.flavor: no");
	free(why);
	why = ks_policy_fixtures_check(p, loop, 2.0); /* cut off by the policy's own limit */
	ASSERT(why && strstr(why, "fixture loop.yaml: expected admitted, got denied: [p] the "
				  "policy failed"));
	free(why);
	why = ks_policy_fixtures_check(p, junk, 2.0);
	ASSERT_STR(why, "fixture junk.yaml: not a fixture (request, expect, ...)");
	free(why);
	why = ks_policy_fixtures_check(p, ok, 0.0); /* out of time after the first */
	ASSERT(why && strstr(why, "the fixtures took over 0.0 s") && strstr(why, "1 of 2 ran"));
	free(why);
	cJSON_Delete(ok);
	cJSON_Delete(bad);
	cJSON_Delete(loop);
	cJSON_Delete(junk);
	ks_policy_free(p);
}

int main(void)
{
	RUN(set_fields_makes_a_json_patch);
	RUN(set_fields_refuses_a_path_through_a_value);
	RUN(response_carries_denial_warnings_and_base64_patch);
	RUN(policy_refuses_with_the_field_named);
	RUN(policy_runs_validate_and_stops_a_loop);
	RUN(namespaced_policy_stays_in_its_namespace);
	RUN(cert_is_made_and_its_life_read);
	RUN(fixtures_gate_a_version_naming_the_one_that_fails);
	TEST_MAIN();
}
