#pragma once
/*
 * fixture.h: one fixture request run against a policy, offline (no cache but the
 * fixture's, no API server): for `kupenstack policy test` (cli.c) and for the host, which
 * runs a new policy version's fixtures before it replaces the version in force. Format in
 * admission/cli.h. Pure but for the policy's Lua.
 */
#include <cJSON.h>

#include "admission/policy.h"

/*
 * Run fixture fx (request, namespace, cache, expect) through p: mutate, then validate
 * the mutated object (fx's request.object is changed). Returns NULL when the outcome is as expect
 * says, or what differed (free it). *outcome (free it): "admitted", "denied: MESSAGE" or "mutated:
 * PATCH", with " (with warnings)" when there were.
 */
char *ks_policy_fixture_run(struct ks_policy *p, cJSON *fx, char **outcome);
/*
 * The fixtures of a new version, before it is put in force: fixtures is an object of
 * name -> fixture (a ConfigMap's parsed *.yaml keys) or an array (spec.fixtures, named by
 * index). Stops at the first that fails, and once seconds of wall time have gone (the
 * host's loop waits). Returns NULL when every one passed, or why not (free it), naming
 * the fixture.
 */
char *ks_policy_fixtures_check(struct ks_policy *p, const cJSON *fixtures, double seconds);
