#pragma once
/*
 * cli.h: `kupenstack policy test DIR`: run a policy against fixture requests offline, as
 * `kupenstack plugin test` does for plugins. DIR holds policy.yaml (one ClusterPolicy or
 * Policy) and fixtures/NAME.yaml, each one request:
 *
 *   request:   { operation, namespace, kind: {group, kind}, name, object, oldObject,
 *                userInfo: {username, groups} }
 *   namespace: the request's Namespace object (labels, annotations), optional
 *   cache:     { "group/version/resource": [objects ctx.list returns] }, optional
 *   expect:    { allowed: bool, message: "the denial, exactly", warnings: [...],
 *                object: {fields the mutated object must have} }
 *
 * The policy's spec.fixtures run too (named spec.fixtures[N]), as the host runs them
 * before a version is put in force. A policy.yaml with spec.luaFrom.configMap takes its
 * Lua from DIR/KEY (policy.lua by default): DIR holds the files of the ConfigMap, its
 * fixtures in fixtures/.
 *
 * Each fixture prints `ok - NAME: admitted | denied: MESSAGE | mutated: PATCH` or `not ok`
 * with what differed; the last line is `N passed, N failed`.
 */

/* argv[0] is "policy". Returns the exit status (0 all passed, 1 a failure, 2 usage). */
int ks_policy_cli(int argc, char **argv);
