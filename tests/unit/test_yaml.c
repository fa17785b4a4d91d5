/* test_yaml.c: YAML to cJSON: real files, the core schema, aliases, limits, errors. */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "ks.h"
#include "test.h"
#include "yaml.h"

/*
 * The compact JSON of every document in text (a JSON array), or "ERR: <message>".
 * Returns a static buffer, overwritten by the next call, so a failing ASSERT leaks nothing.
 */
static const char *all(const char *text)
{
	static char out[1 << 16];
	char *err = NULL;
	cJSON *docs = ks_yaml_parse_all(text, strlen(text), &err);
	char *s = docs ? ks_json_print(docs) : ks_xasprintf("ERR: %s", err);

	snprintf(out, sizeof(out), "%s", s);
	free(s);
	free(err);
	cJSON_Delete(docs);
	return out;
}

/* As all(), through ks_yaml_parse: the one document's JSON, or "ERR: <message>". */
static const char *one(const char *text, size_t len)
{
	static char out[1 << 16];
	char *err = NULL;
	cJSON *doc = ks_yaml_parse(text, len, &err);
	char *s = doc ? ks_json_print(doc) : ks_xasprintf("ERR: %s", err);

	snprintf(out, sizeof(out), "%s", s);
	free(s);
	free(err);
	cJSON_Delete(doc);
	return out;
}

static const char kubeconfig[] =
	"apiVersion: v1\n"
	"kind: Config\n"
	"preferences: {}\n"
	"current-context: kind-kupenstack\n"
	"clusters:\n"
	"- cluster:\n"
	"    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=\n"
	"    server: https://127.0.0.1:43567\n"
	"  name: kind-kupenstack\n"
	"- cluster:\n"
	"    insecure-skip-tls-verify: true\n"
	"    server: https://10.0.0.1:6443\n"
	"  name: lab\n"
	"contexts:\n"
	"- context:\n"
	"    cluster: kind-kupenstack\n"
	"    user: kind-kupenstack\n"
	"    namespace: kupenstack-system\n"
	"  name: kind-kupenstack\n"
	"- context: {cluster: lab, user: robot}\n"
	"  name: lab\n"
	"users:\n"
	"- name: kind-kupenstack\n"
	"  user:\n"
	"    client-certificate-data: LS0tLS1CRUdJTi==\n"
	"    client-key-data: LS0tLS1CRUdJTiBSU0E=\n"
	"- name: robot\n"
	"  user:\n"
	"    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n";

TEST(kubeconfig)
{
	char *err = NULL;
	cJSON *doc = ks_yaml_parse(kubeconfig, strlen(kubeconfig), &err);
	const cJSON *clusters, *users, *ctx;

	ASSERT(doc && !err);
	ASSERT_STR(ks_json_str(doc, "current-context"), "kind-kupenstack");
	ASSERT(cJSON_IsObject(ks_json_path(doc, "preferences")));
	clusters = ks_json_path(doc, "clusters");
	ASSERT_EQ(cJSON_GetArraySize(clusters), 2);
	ASSERT_STR(
		ks_json_str(cJSON_GetArrayItem(clusters, 0), "cluster.certificate-authority-data"),
		"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=");
	ASSERT_STR(ks_json_str(cJSON_GetArrayItem(clusters, 0), "cluster.server"),
		   "https://127.0.0.1:43567");
	ASSERT(cJSON_IsTrue(
		ks_json_path(cJSON_GetArrayItem(clusters, 1), "cluster.insecure-skip-tls-verify")));
	ctx = cJSON_GetArrayItem(ks_json_path(doc, "contexts"), 1);
	ASSERT_STR(ks_json_str(ctx, "context.user"), "robot");
	ASSERT_STR(ks_json_str(ctx, "name"), "lab");
	users = ks_json_path(doc, "users");
	ASSERT_STR(ks_json_str(cJSON_GetArrayItem(users, 1), "user.tokenFile"),
		   "/var/run/secrets/kubernetes.io/serviceaccount/token");
	ASSERT_STR(ks_json_str(cJSON_GetArrayItem(users, 0), "user.client-key-data"),
		   "LS0tLS1CRUdJTiBSU0E=");
	cJSON_Delete(doc);
}

TEST(clouds_yaml)
{
	static const char text[] = "clouds:\n"
				   "  kupenstack:\n"
				   "    auth:\n"
				   "      auth_url: http://127.0.0.1:5000/v3\n"
				   "      username: admin\n"
				   "      password: \"p@ss:w0rd #1 'q' \\\"dq\\\" \\\\ {x}\"\n"
				   "      project_name: admin\n"
				   "      user_domain_name: Default\n"
				   "      project_domain_id: default\n"
				   "    region_name: RegionOne\n"
				   "    interface: public\n"
				   "    identity_api_version: 3\n"
				   "    verify: false\n"
				   "    # a comment between keys\n"
				   "    api_timeout: 30.5\n";
	char *err = NULL;
	cJSON *doc = ks_yaml_parse(text, strlen(text), &err);

	ASSERT(doc && !err);
	ASSERT_STR(ks_json_str(doc, "clouds.kupenstack.auth.password"),
		   "p@ss:w0rd #1 'q' \"dq\" \\ {x}");
	ASSERT_STR(ks_json_str(doc, "clouds.kupenstack.auth.auth_url"), "http://127.0.0.1:5000/v3");
	ASSERT_STR(ks_json_str(doc, "clouds.kupenstack.auth.user_domain_name"), "Default");
	ASSERT_STR(ks_json_str(doc, "clouds.kupenstack.region_name"), "RegionOne");
	ASSERT_EQ(ks_json_int(doc, "clouds.kupenstack.identity_api_version", 0), 3);
	ASSERT(cJSON_IsFalse(ks_json_path(doc, "clouds.kupenstack.verify")));
	ASSERT(ks_json_path(doc, "clouds.kupenstack.api_timeout")->valuedouble == 30.5);
	cJSON_Delete(doc);
}

TEST(helm_template_stream)
{
	static const char text[] = "---\n"
				   "# Source: kupenstack/templates/serviceaccount.yaml\n"
				   "apiVersion: v1\n"
				   "kind: ServiceAccount\n"
				   "metadata:\n"
				   "  name: kupenstack\n"
				   "  labels:\n"
				   "    app.kubernetes.io/version: \"1.0\"\n"
				   "---\n"
				   "# Source: kupenstack/templates/disabled.yaml\n"
				   "---\n"
				   "# Source: kupenstack/templates/configmap.yaml\n"
				   "apiVersion: v1\n"
				   "kind: ConfigMap\n"
				   "metadata:\n"
				   "  name: nova-etc\n"
				   "data:\n"
				   "  nova.conf: |\n"
				   "    [DEFAULT]\n"
				   "    debug = true\n"
				   "---\n"
				   "# Source: kupenstack/templates/empty-at-end.yaml\n";

	ASSERT_STR(all(text),
		   "[{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{"
		   "\"name\":\"kupenstack\",\"labels\":{\"app.kubernetes.io/version\":"
		   "\"1.0\"}}},{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
		   "\"name\":\"nova-etc\"},\"data\":{\"nova.conf\":"
		   "\"[DEFAULT]\\ndebug = true\\n\"}}]");
	/* An explicit null document is not empty; "..." ends a document. */
	ASSERT_STR(all("a: 1\n...\n--- ~\n--- null\n"), "[{\"a\":1},null,null]");
	ASSERT_STR(all("---\n---\n# nothing\n---\n"), "[]");
}

TEST(block_scalars)
{
	ASSERT_STR(all("keep: |\n  line 1\n    indented\n\n  line 3\n"),
		   "[{\"keep\":\"line 1\\n  indented\\n\\nline 3\\n\"}]");
	ASSERT_STR(all("fold: >\n  one\n  two\n\n  three\n"),
		   "[{\"fold\":\"one two\\nthree\\n\"}]");
	ASSERT_STR(all("strip: |-\n  a\n  b\n\n\nnext: 1\n"), "[{\"strip\":\"a\\nb\",\"next\":1}]");
	ASSERT_STR(all("keep: |+\n  a\n\n\n"), "[{\"keep\":\"a\\n\\n\\n\"}]");
	ASSERT_STR(all("fold: >-\n  a\n  b\n"), "[{\"fold\":\"a b\"}]");
	/* Block scalars are strings whatever they hold. */
	ASSERT_STR(all("a: |\n  123\nb: >-\n  true\n"), "[{\"a\":\"123\\n\",\"b\":\"true\"}]");
}

/* Each plain scalar of the left column, as the value of "v", gives the right column. */
static const char *const core_schema[][2] = {
	{ "null", "null" },
	{ "Null", "null" },
	{ "NULL", "null" },
	{ "~", "null" },
	{ "", "null" },
	{ "nULL", "\"nULL\"" },
	{ "true", "true" },
	{ "True", "true" },
	{ "TRUE", "true" },
	{ "false", "false" },
	{ "False", "false" },
	{ "FALSE", "false" },
	{ "tRUE", "\"tRUE\"" },
	{ "yes", "\"yes\"" },
	{ "no", "\"no\"" },
	{ "on", "\"on\"" },
	{ "off", "\"off\"" },
	{ "y", "\"y\"" },
	{ "0", "0" },
	{ "-0", "0" },
	{ "42", "42" },
	{ "+42", "42" },
	{ "-42", "-42" },
	{ "007", "7" },
	{ "0o17", "15" },
	{ "-0o17", "-15" },
	{ "0o8", "\"0o8\"" },
	{ "0x1F", "31" },
	{ "0xff", "255" },
	{ "-0x10", "-16" },
	{ "0x", "\"0x\"" },
	{ "0xg", "\"0xg\"" },
	{ "0O17", "\"0O17\"" },
	{ "1_000", "\"1_000\"" },
	{ "1.5", "1.5" },
	{ "-1.5", "-1.5" },
	{ ".5", "0.5" },
	{ "1.", "1" },
	{ "1e3", "1000" },
	{ "1.5E-2", "0.015" },
	{ "-2.5e+2", "-250" },
	{ "1e", "\"1e\"" },
	{ ".", "\".\"" },
	{ "+", "\"+\"" },
	{ "1.2.3", "\"1.2.3\"" },
	{ "12:30", "\"12:30\"" },
	{ "2026-11-24", "\"2026-11-24\"" },
	{ "v1", "\"v1\"" },
	{ "1Gi", "\"1Gi\"" },
	{ "hello world", "\"hello world\"" },
	/* Too large for a double: stays text, as go-yaml keeps it. */
	{ "1e400", "\"1e400\"" },
	{ "-1e400", "\"-1e400\"" },
	/* Quoted scalars are strings, whatever they hold. */
	{ "\"true\"", "\"true\"" },
	{ "'123'", "\"123\"" },
	{ "\"~\"", "\"~\"" },
	{ "''", "\"\"" },
	{ "\"null\"", "\"null\"" },
	{ "'.inf'", "\".inf\"" },
	{ "\"a\\tb\\u00e9\"", "\"a\\tbé\"" },
	/* Explicit tags. */
	{ "!!str 123", "\"123\"" },
	{ "!!str true", "\"true\"" },
	{ "!!str", "\"\"" },
	{ "!!int \"12\"", "12" },
	{ "!!int 0x10", "16" },
	{ "!!bool 'false'", "false" },
	{ "!!float 1", "1" },
	{ "!!float '2.5'", "2.5" },
	{ "!!null ''", "null" },
	{ "!!null ~", "null" },
	{ "! 12", "\"12\"" },
	{ "!local true", "\"true\"" },
	{ "!!timestamp 2026-11-24", "\"2026-11-24\"" },
	{ "!!binary aGVsbG8=", "\"aGVsbG8=\"" },
};

TEST(core_schema)
{
	char yaml[128], json[128];

	for (size_t i = 0; i < KS_ARRAY_SIZE(core_schema); i++) {
		snprintf(yaml, sizeof(yaml), "v: %s\n", core_schema[i][0]);
		snprintf(json, sizeof(json), "[{\"v\":%s}]", core_schema[i][1]);
		ASSERT_STR(all(yaml), json);
	}
}

/* Integers past 2^53 keep their high digits only (see yaml.c). */
TEST(big_numbers)
{
	static const char text[] =
		"- 9007199254740993\n- 0x7FFFFFFFFFFFFFFF\n- -0o1777777777777777777777\n";
	char *err = NULL;
	cJSON *doc = ks_yaml_parse(text, strlen(text), &err);

	ASSERT(cJSON_IsArray(doc) && !err);
	ASSERT(cJSON_GetArrayItem(doc, 0)->valuedouble == 9007199254740992.0);
	ASSERT(cJSON_GetArrayItem(doc, 1)->valuedouble == 9223372036854775808.0);
	ASSERT(cJSON_GetArrayItem(doc, 2)->valuedouble == -18446744073709551616.0);
	cJSON_Delete(doc);
}

TEST(bad_scalars)
{
	ASSERT_STR(all("v: .inf"), "ERR: line 1 column 4: .inf cannot be represented in JSON");
	ASSERT_STR(all("- -.Inf"), "ERR: line 1 column 3: -.Inf cannot be represented in JSON");
	ASSERT_STR(all("- .NaN"), "ERR: line 1 column 3: .NaN cannot be represented in JSON");
	ASSERT_STR(all("- !!float .nan"),
		   "ERR: line 1 column 3: .nan cannot be represented in JSON");
	ASSERT_STR(all("a: 1\nb: !!int abc\n"),
		   "ERR: line 2 column 4: \"abc\" is not a valid !!int");
	ASSERT_STR(all("- !!int 1.5"), "ERR: line 1 column 3: \"1.5\" is not a valid !!int");
	ASSERT_STR(all("- !!bool yes"), "ERR: line 1 column 3: \"yes\" is not a valid !!bool");
	ASSERT_STR(all("- !!null 0"), "ERR: line 1 column 3: \"0\" is not a valid !!null");
	ASSERT_STR(all("- !!float 1e400"),
		   "ERR: line 1 column 3: \"1e400\" is not a valid !!float");
	ASSERT_STR(all("- \"a\\0b\""),
		   "ERR: line 1 column 3: a NUL character in a scalar is not supported");
}

TEST(aliases)
{
	static const char text[] = "defaults: &defaults\n"
				   "  image: nova:2024.1\n"
				   "  ports: &ports [8774, 8775]\n"
				   "api: *defaults\n"
				   "ports: *ports\n"
				   "name: &name nova\n"
				   "names: [*name, *name]\n"
				   "*name : by-alias\n"
				   "&k key: value\n"
				   "k: *k\n";
	char *err = NULL;
	cJSON *doc;

	ASSERT_STR(all(text),
		   "[{\"defaults\":{\"image\":\"nova:2024.1\",\"ports\":[8774,8775]},"
		   "\"api\":{\"image\":\"nova:2024.1\",\"ports\":[8774,8775]},"
		   "\"ports\":[8774,8775],\"name\":\"nova\",\"names\":[\"nova\",\"nova\"],"
		   "\"nova\":\"by-alias\",\"key\":\"value\",\"k\":\"key\"}]");
	/* A later anchor of the same name wins; a non-string scalar as key is its JSON. */
	ASSERT_STR(all("- &a 1\n- &a 2\n- *a\n- {*a : x}\n"), "[[1,2,2,{\"2\":\"x\"}]]");
	/* Expansion is a deep copy, not a shared node. */
	doc = ks_yaml_parse(text, strlen(text), &err);
	ASSERT(doc && !err);
	ASSERT(ks_json_path(doc, "api") != ks_json_path(doc, "defaults"));
	ASSERT(ks_json_path(doc, "api.ports") != ks_json_path(doc, "ports"));
	cJSON_Delete(doc);
	ASSERT_STR(all("a: *nope\n"), "ERR: line 1 column 4: unknown anchor \"nope\"");
	/* An anchor is not visible from inside its own node, nor from a later document. */
	ASSERT_STR(all("a: &r [*r]\n"), "ERR: line 1 column 8: unknown anchor \"r\"");
	ASSERT_STR(all("a: &x 1\n---\nb: *x\n"), "ERR: line 3 column 4: unknown anchor \"x\"");
	ASSERT_STR(all("a: &m {b: 1}\n*m : 2\n"),
		   "ERR: line 2 column 1: mapping keys must be scalars");
}

TEST(billion_laughs)
{
	static const char text[] = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
				   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
				   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
				   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
				   "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
				   "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
				   "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
				   "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
				   "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
	char *err = NULL;
	cJSON *docs = ks_yaml_parse_all(text, strlen(text), &err);

	ASSERT(!docs);
	ASSERT_STR(err, "line 7 column 8: more than 1000000 values (aliases expand to too much)");
	free(err);
	/* Few values, but each copy long: the byte cap stops it. */
	{
		struct ks_buf b;
		const char *got;

		ks_buf_init(&b);
		ks_buf_puts(&b, "a: &a \"");
		for (int i = 0; i < 65000; i++)
			ks_buf_puts(&b, "x");
		ks_buf_puts(&b, "\"\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
				"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
				"d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n");
		got = all(b.data);
		ks_buf_deinit(&b);
		ASSERT_STR(got, "ERR: line 4 column 41: aliases copy more than 67108864 bytes");
	}
}

/* "[" n times, then "]" n times. */
static char *nested(int n, const char *prefix)
{
	struct ks_buf b;

	ks_buf_init(&b);
	ks_buf_puts(&b, prefix);
	for (int i = 0; i < n; i++)
		ks_buf_puts(&b, "[");
	for (int i = 0; i < n; i++)
		ks_buf_puts(&b, "]");
	ks_buf_puts(&b, "\n");
	return ks_buf_steal(&b);
}

TEST(depth_limit)
{
	char *ok = nested(512, "");
	char *deep = nested(513, "");
	char *via_alias = nested(300, "- &a ");
	const char *got_ok, *got_deep;

	got_ok = all(ok);
	ASSERT(strncmp(got_ok, "[[[[", 4) == 0);
	got_deep = all(deep);
	free(ok);
	free(deep);
	ASSERT_STR(got_deep, "ERR: line 1 column 513: collections nested deeper than 512 levels");
	/* An alias may not carry its anchor's depth past the limit either. */
	via_alias = ks_xrealloc(via_alias, strlen(via_alias) + 700);
	strcat(via_alias, "- ");
	for (int i = 0; i < 220; i++)
		strcat(via_alias, "[");
	strcat(via_alias, "*a");
	for (int i = 0; i < 220; i++)
		strcat(via_alias, "]");
	strcat(via_alias, "\n");
	got_deep = all(via_alias);
	free(via_alias);
	ASSERT_STR(got_deep, "ERR: line 2 column 223: collections nested deeper than 512 levels");
}

TEST(keys)
{
	struct ks_buf b;
	const char *got;

	/* Keys are the scalar's text, never resolved. */
	ASSERT_STR(all("1: a\ntrue: b\n~: c\n0x10: d\n\"q\": e\n"),
		   "[{\"1\":\"a\",\"true\":\"b\",\"~\":\"c\",\"0x10\":\"d\",\"q\":\"e\"}]");
	ASSERT_STR(all("a: 1\nb: 2\na: 3\n"), "ERR: line 3 column 1: duplicate key \"a\"");
	ASSERT_STR(all("x: {k: 1, 'k': 2}\n"), "ERR: line 1 column 11: duplicate key \"k\"");
	/* The message stays on one line whatever the key holds. */
	ASSERT_STR(all("\"a\\nb\": 1\n\"a\\nb\": 2\n"),
		   "ERR: line 2 column 1: duplicate key \"a\\nb\"");
	/* Duplicates found by the hash past the first few keys too. */
	ks_buf_init(&b);
	for (int i = 0; i < 100; i++)
		ks_buf_printf(&b, "key%d: %d\n", i, i);
	ks_buf_puts(&b, "key42: again\n");
	got = all(b.data);
	ks_buf_deinit(&b);
	ASSERT_STR(got, "ERR: line 101 column 1: duplicate key \"key42\"");
	ASSERT_STR(all("? [a, b]\n: c\n"), "ERR: line 1 column 3: mapping keys must be scalars");
	ASSERT_STR(all("{[a]: b}\n"), "ERR: line 1 column 2: mapping keys must be scalars");
	ASSERT_STR(all("? {a: 1}\n: c\n"), "ERR: line 1 column 3: mapping keys must be scalars");
}

TEST(syntax_errors)
{
	ASSERT_STR(all("metadata:\n\tname: x\n"),
		   "ERR: line 2 column 1: found character that cannot start any token");
	ASSERT_STR(all("a: b\n  c: d\n"),
		   "ERR: line 2 column 4: mapping values are not allowed in this context");
	ASSERT_STR(all("a: \"open\nb: 1\n"),
		   "ERR: line 3 column 1: found unexpected end of stream");
	ASSERT_STR(all("a: [1, 2\n"), "ERR: line 2 column 1: did not find expected ',' or ']'");
	ASSERT_STR(all("a: 1\nb: \xff\n"), "ERR: line 2 column 4: invalid leading UTF-8 octet");
}

TEST(empty_and_single)
{
	static const char two[] = "a: 1\n---\nb: 2\n";

	ASSERT_STR(one("", 0), "ERR: line 1 column 1: no document in the text");
	ASSERT_STR(one(NULL, 0), "ERR: line 1 column 1: no document in the text");
	ASSERT_STR(one("# just a comment\n---\n", 21),
		   "ERR: line 3 column 1: no document in the text");
	ASSERT_STR(all(""), "[]");
	ASSERT_STR(all("# only comments\n\n# here\n"), "[]");
	ASSERT_STR(one(two, strlen(two)),
		   "ERR: line 3 column 1: expected one document, found another");
	/* Only len bytes are read: here the first document alone. */
	ASSERT_STR(one(two, 5), "{\"a\":1}");
	ASSERT_STR(one("---\n# helm\n---\nx: 1\n---\n", 24), "{\"x\":1}");
	ASSERT_STR(one("plain text", 10), "\"plain text\"");
	ASSERT_STR(one("[1, {a: b}]", 11), "[1,{\"a\":\"b\"}]");
}

int main(void)
{
	RUN(kubeconfig);
	RUN(clouds_yaml);
	RUN(helm_template_stream);
	RUN(block_scalars);
	RUN(core_schema);
	RUN(big_numbers);
	RUN(bad_scalars);
	RUN(aliases);
	RUN(billion_laughs);
	RUN(depth_limit);
	RUN(keys);
	RUN(syntax_errors);
	RUN(empty_and_single);
	TEST_MAIN();
}
