/* match.c: what a policy applies to: spec.match (kinds, namespaces by name or label,
 * operations), a Policy held to its own namespace, and the webhook rules it needs. */
#include "admission/policy_impl.h"

#include <stdlib.h>
#include <string.h>

#include "ks.h"
#include "lua/bind.h"

static const char *const op_names[] = { "CREATE", "UPDATE", "DELETE", "CONNECT" };

unsigned ks_policy_op_bit(const char *op)
{
	for (size_t i = 0; i < KS_ARRAY_SIZE(op_names); i++) {
		if (strcmp(op, op_names[i]) == 0)
			return 1u << i;
	}
	return 0;
}

/* Copy the string array at field of obj into out (MAX_LIST); NULL or an error text. */
static char *strings(const cJSON *obj, const char *field, char **out)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, field), *v;
	size_t n = 0;

	if (!a)
		return NULL;
	if (!cJSON_IsArray(a))
		return ks_xasprintf("%s must be a list of strings", field);
	cJSON_ArrayForEach(v, a)
	{
		if (!cJSON_IsString(v) || !*v->valuestring)
			return ks_xasprintf("%s[%zu] must be a non-empty string", field, n);
		if (n == MAX_LIST)
			return ks_xasprintf("%s: at most %d entries", field, MAX_LIST);
		out[n++] = ks_xstrdup(v->valuestring);
	}
	return NULL;
}

char *ks_policy_parse_match(struct ks_policy *p, const cJSON *m)
{
	const cJSON *ops = cJSON_GetObjectItemCaseSensitive(m, "operations"), *v, *sel;
	char *err;

	if (!cJSON_IsObject(m))
		return ks_xstrdup("spec.match must be an object");
	err = strings(m, "kinds", p->kinds);
	if (!err && !p->kinds[0])
		err = ks_xstrdup("spec.match.kinds must name at least one kind");
	if (!err)
		err = strings(m, "namespaces", p->names);
	for (size_t i = 0; !err && p->ns && p->kinds[i]; i++) {
		if (strncmp(p->kinds[i], "kupenstack.io/", 14) != 0 && strchr(p->kinds[i], '/'))
			err = ks_xasprintf("spec.match.kinds[%zu]: a namespaced Policy matches "
					   "kupenstack.io kinds only (%s)",
					   i, p->kinds[i]);
	}
	sel = cJSON_GetObjectItemCaseSensitive(m, "namespaceSelector");
	sel = sel ? cJSON_GetObjectItemCaseSensitive(sel, "matchLabels") : NULL;
	if (sel)
		p->selector = cJSON_Duplicate(sel, 1);
	p->ops = ops ? 0 : ks_policy_op_bit("CREATE") | ks_policy_op_bit("UPDATE");
	cJSON_ArrayForEach(v, ops)
	{
		if (!err && (!cJSON_IsString(v) || !ks_policy_op_bit(v->valuestring)))
			err = ks_xstrdup(
				"spec.match.operations: CREATE, UPDATE, DELETE or CONNECT");
		else if (!err)
			p->ops |= ks_policy_op_bit(v->valuestring);
	}
	return err;
}

cJSON *ks_policy_rules(const struct ks_policy *p)
{
	cJSON *rules = cJSON_CreateArray(), *rule, *ops;
	char plural[128];

	for (size_t i = 0; p->kinds[i]; i++) {
		const char *slash = strchr(p->kinds[i], '/');
		char *group = slash ? ks_xstrndup(p->kinds[i], (size_t)(slash - p->kinds[i]))
				    : ks_xstrdup("*");

		ks_lua_kube_plural(slash ? slash + 1 : p->kinds[i], plural, sizeof(plural));
		rule = cJSON_AddObjectToObject(rules, "");
		cJSON_DetachItemViaPointer(rules, rule);
		cJSON_AddItemToArray(rules, rule);
		cJSON_AddItemToObject(rule, "apiGroups",
				      cJSON_CreateStringArray((const char *const[]){ group }, 1));
		cJSON_AddItemToObject(rule, "apiVersions",
				      cJSON_CreateStringArray((const char *const[]){ "*" }, 1));
		cJSON_AddItemToObject(rule, "resources",
				      cJSON_CreateStringArray((const char *const[]){ plural }, 1));
		ops = cJSON_AddArrayToObject(rule, "operations");
		for (size_t o = 0; o < KS_ARRAY_SIZE(op_names); o++) {
			if (p->ops & (1u << o))
				cJSON_AddItemToArray(ops, cJSON_CreateString(op_names[o]));
		}
		cJSON_AddStringToObject(rule, "scope", "*");
		free(group);
	}
	return rules;
}

static bool kind_matches(const struct ks_policy *p, const char *group, const char *kind)
{
	for (size_t i = 0; p->kinds[i]; i++) {
		const char *k = p->kinds[i], *slash = strchr(k, '/');

		if (slash && (strlen(group) != (size_t)(slash - k) ||
			      strncmp(k, group, (size_t)(slash - k)) != 0))
			continue;
		if (strcmp(slash ? slash + 1 : k, kind) == 0)
			return true;
	}
	return false;
}

static bool labels_match(const cJSON *want, const cJSON *ns_obj)
{
	const cJSON *labels = ns_obj ? cJSON_GetObjectItemCaseSensitive(
					       cJSON_GetObjectItemCaseSensitive(ns_obj, "metadata"),
					       "labels")
				     : NULL,
		    *w;

	cJSON_ArrayForEach(w, want)
	{
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, w->string);

		if (!cJSON_IsString(w) || !cJSON_IsString(v) ||
		    strcmp(v->valuestring, w->valuestring) != 0)
			return false;
	}
	return true;
}

const char *const *ks_policy_kinds(const struct ks_policy *p)
{
	return (const char *const *)p->kinds;
}

bool ks_policy_in_scope(const struct ks_policy *p, const char *ns, const cJSON *ns_obj)
{
	bool named = !p->names[0];

	if (p->ns) /* a Policy: its own namespace, nothing else */
		return strcmp(p->ns, ns) == 0;
	for (size_t i = 0; !named && p->names[i]; i++)
		named = strcmp(p->names[i], ns) == 0;
	return named && (!p->selector || labels_match(p->selector, ns_obj));
}

bool ks_policy_matches(const struct ks_policy *p, const struct ks_policy_req *r)
{
	return (p->ops & ks_policy_op_bit(r->operation)) && kind_matches(p, r->group, r->kind) &&
	       ks_policy_in_scope(p, r->ns, r->namespace_obj);
}
