#!/usr/bin/env bash
# tests/e2e/policy_source.sh: where a policy's Lua comes from, and the fixtures gate.
#  - A ClusterPolicy with spec.luaFrom.configMap loads the ConfigMap's policy.lua; its
#    *.yaml keys are fixtures. It enforces at `kubectl apply`.
#  - The ConfigMap changed to a version that fails a fixture: Refused, the fixture and what
#    differed in the status, "the previous version stays in force", and it does (the new
#    one would refuse what the old admits). A version passing its fixtures replaces it.
#  - spec.fixtures of an inline spec.lua: a new version failing one is Refused, the old
#    kept. A missing ConfigMap, and one without the label kupenstack.io/policy-source=true,
#    are Refused naming the field.
#  - Attacker's view: alice, an editor of the namespace, may write its ConfigMaps but not
#    the operator's namespace's, nor Policies; a Policy naming a ConfigMap of its own
#    namespace is Refused (sources are read from the operator's namespace only), one naming
#    the labelled ConfigMap there is Loaded and enforced in its namespace.
#  - The source ConfigMap deleted: Refused (not found), PolicyRefused Event, the last good
#    version still enforced.
#  - Over time: a namespace's Policies writing versions whose fixtures burn their 0.5 s are
#    put off once their namespace's share of the host's loop is spent (status and log say
#    so), another namespace's Policy is still checked, and a good version is Loaded once
#    the share is paid back.
# Needs KUBECONFIG (admin); applies crds/.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OPNS=kupenstack-system
S=ks-e2e-pols-$$
CM=e2e-src-$$
POLS=(e2e-src-$$ e2e-inline-$$ e2e-missing-$$ e2e-nolabel-$$)

source_cleanup() {
	k delete validatingwebhookconfiguration kupenstack --ignore-not-found >/dev/null 2>&1
	k delete mutatingwebhookconfiguration kupenstack --ignore-not-found >/dev/null 2>&1
	k delete clusterpolicy "${POLS[@]}" --ignore-not-found >/dev/null 2>&1
	k delete secret kupenstack -n "$OPNS" --ignore-not-found >/dev/null 2>&1
	k delete configmap "$CM" "$CM-nolabel" "$CM-ns" "e2e-alice-$$" -n "$OPNS" --ignore-not-found >/dev/null 2>&1
}
trap 'stop_hosts; source_cleanup; cleanup' EXIT
k apply -f "$TOP/crds/" >/dev/null || exit 3
source_cleanup
new_ns "$S" bare
mkdir -p "$WORK/plugins"

# cm_version WORD ALLOWED: the ConfigMap with a policy refusing every flavor but ALLOWED,
# saying WORD, and fixtures expecting m1.huge refused (with WORD) and m1.small admitted.
cm_version() {
	local word=$1 allowed=$2
	cat >"$WORK/policy.lua" <<EOT
return { validate = function(obj)
  local f = obj.spec.flavorRef and obj.spec.flavorRef.name
  if f ~= "$allowed" then return "spec.flavorRef: flavor " .. tostring(f) .. " is $word" end
end }
EOT
	fixture huge m1.huge "allowed: false, message: '[e2e-src-$$] spec.flavorRef: flavor m1.huge is $word'" >"$WORK/huge.yaml"
	fixture small m1.small "allowed: true" >"$WORK/small.yaml"
	k create configmap "$CM" -n "$OPNS" --from-file="$WORK/policy.lua" \
		--from-file="$WORK/huge.yaml" --from-file="$WORK/small.yaml" --dry-run=client -o yaml |
		k label --local -f - kupenstack.io/policy-source=true -o yaml | k apply -f - >/dev/null
}
fixture() { # NAME FLAVOR EXPECT
	cat <<EOT
request:
  operation: CREATE
  namespace: $S
  object: {apiVersion: kupenstack.io/v1alpha1, kind: Instance, metadata: {name: $1},
           spec: {flavorRef: {name: $2}, imageRef: {name: cirros}, networks: [{networkRef: {name: net}}]}}
expect: {$3}
EOT
}
instance() { # NAME FLAVOR
	printf '%s\n' "apiVersion: kupenstack.io/v1alpha1" "kind: Instance" "metadata: {name: $1}" \
		"spec: {flavorRef: {name: $2}, imageRef: {name: cirros}, networks: [{networkRef: {name: net}}]}" \
		>"$WORK/$1.yaml"
	k apply -n "$S" -f "$WORK/$1.yaml"
}
status() { k get clusterpolicy "$1" -o jsonpath='{.status.phase} {.status.observedGeneration}: {.status.message}{"\n"}'; }

cm_version "not allowed (v1)" m1.small
cat >"$WORK/src.yaml" <<EOT
apiVersion: kupenstack.io/v1alpha1
kind: ClusterPolicy
metadata: {name: e2e-src-$$}
spec:
  match: {kinds: [kupenstack.io/Instance], namespaces: [$S], operations: [CREATE]}
  luaFrom: {configMap: {name: $CM}}
EOT
# Offline, as the host gates: the ConfigMap's files in a DIR (policy.lua, fixtures/*.yaml).
mkdir -p "$WORK/pt/fixtures" "$WORK/pt2"
cp "$WORK/src.yaml" "$WORK/pt/policy.yaml"
cp "$WORK/policy.lua" "$WORK/pt/"
cp "$WORK/huge.yaml" "$WORK/small.yaml" "$WORK/pt/fixtures/"
check "policy test: a luaFrom policy runs DIR/policy.lua against its fixtures" -- \
	expect_out '^2 passed, 0 failed' "$KS" policy test "$WORK/pt"
printf '%s\n' "apiVersion: kupenstack.io/v1alpha1" "kind: ClusterPolicy" "metadata: {name: t}" \
	"spec: {match: {kinds: [Network]}, lua: 'return {validate = function() return \"no\" end}'," \
	"  fixtures: [{request: {kind: {kind: Network}, object: {kind: Network, metadata: {name: n}}}," \
	"              expect: {allowed: true}}]}" >"$WORK/pt2/policy.yaml"
check "policy test: spec.fixtures run too (one failing: exit 1, named)" -- \
	bash -c "'$KS' policy test '$WORK/pt2' | grep -F 'not ok - spec.fixtures[0]: denied: [t] no'; [ \${PIPESTATUS[0]} = 1 ]"
# until the API server serves the CRDs' new schema (spec.lua no longer required)
until_ok 30 k apply -f "$WORK/src.yaml" >/dev/null
PORT=$(free_port)
start_host s "$WORK/plugins" - --admission-addr "127.0.0.1:$PORT" --admission-namespace "$OPNS" \
	--admission-audit-seconds 2
eventually 30 "a ClusterPolicy from a ConfigMap (policy.lua, 2 fixtures) is Loaded" s -- \
	bash -c "$(declare -f k status); status e2e-src-$$ | grep -E '^Loaded 1:'"
# eventually: the webhook configuration's rules follow the status by a moment
# a CREATE each try (expect_out runs it in a subshell: no counter)
huge_again() { instance "vm1-${EPOCHREALTIME//[!0-9]/}" m1.huge; }
eventually 30 "it enforces: m1.huge refused with its message" s -- \
	expect_out 'denied the request: \[e2e-src-'$$'\] spec.flavorRef: flavor m1.huge is not allowed \(v1\)' \
	huge_again
check "it admits m1.small" s -- instance vm2 m1.small

# v2 allows m1.medium only, but its fixtures (unchanged: m1.small admitted) say otherwise.
cm_version "not allowed (v2)" m1.medium
eventually 30 "a changed ConfigMap whose fixture fails: Refused, naming the fixture and the difference" s -- \
	bash -c "$(declare -f k status); status e2e-src-$$ | grep -F 'Refused 1: the new version failed its fixtures: fixture small.yaml: expected admitted, got denied: [e2e-src-$$] spec.flavorRef: flavor m1.small is not allowed (v2) (the previous version stays in force)'"
check "the previous version stays in force: m1.small still admitted" s -- instance vm3 m1.small
check "and m1.huge refused with v1's message" s -- \
	expect_out 'flavor m1.huge is not allowed \(v1\)' instance vm4 m1.huge

cm_version "forbidden (v3)" m1.small
eventually 30 "a changed ConfigMap passing its fixtures is Loaded" s -- \
	bash -c "$(declare -f k status); status e2e-src-$$ | grep -E '^Loaded 1:'"
check "and enforced: v3's message" s -- \
	expect_out 'denied the request: \[e2e-src-'$$'\] spec.flavorRef: flavor m1.huge is forbidden \(v3\)' \
	instance vm5 m1.huge

# Inline spec.lua with spec.fixtures: a new version failing one is Refused, the old kept.
inline() { # VALIDATE-RESULT
	k apply -f - >/dev/null <<EOT
apiVersion: kupenstack.io/v1alpha1
kind: ClusterPolicy
metadata: {name: e2e-inline-$$}
spec:
  match: {kinds: [kupenstack.io/Network], namespaces: [$S], operations: [CREATE]}
  lua: |
    return { validate = function(obj) return $1 end }
  fixtures:
    - request: {operation: CREATE, namespace: $S, kind: {kind: Network},
                object: {kind: Network, metadata: {name: n-ok}, spec: {}}}
      expect: {allowed: true}
EOT
}
inline nil
eventually 30 "an inline policy with spec.fixtures is Loaded" s -- \
	bash -c "$(declare -f k status); status e2e-inline-$$ | grep -E '^Loaded 1:'"
inline '"spec: no Networks"'
eventually 30 "its new version failing spec.fixtures[0] is Refused, the old kept" s -- \
	bash -c "$(declare -f k status); status e2e-inline-$$ | grep -F 'Refused 2: the new version failed its fixtures: fixture 0: expected admitted, got denied: [e2e-inline-$$] spec: no Networks (the previous version stays in force)'"
echo '{"apiVersion":"kupenstack.io/v1alpha1","kind":"Network","metadata":{"name":"n1"},"spec":{}}' >"$WORK/n1.json"
check "the old version admits a Network" s -- k apply -n "$S" -f "$WORK/n1.json"

k create configmap "$CM-nolabel" -n "$OPNS" --from-file="$WORK/policy.lua" >/dev/null
k apply -f - >/dev/null <<EOT
apiVersion: kupenstack.io/v1alpha1
kind: ClusterPolicy
metadata: {name: e2e-missing-$$}
spec:
  match: {kinds: [kupenstack.io/Instance], namespaces: [$S]}
  luaFrom: {configMap: {name: no-such-$$}}
---
apiVersion: kupenstack.io/v1alpha1
kind: ClusterPolicy
metadata: {name: e2e-nolabel-$$}
spec:
  match: {kinds: [kupenstack.io/Instance], namespaces: [$S]}
  luaFrom: {configMap: {name: $CM-nolabel}}
EOT
eventually 30 "a missing ConfigMap: Refused, naming the field" s -- \
	bash -c "$(declare -f k status); status e2e-missing-$$ | grep -E '^Refused 1: spec.luaFrom.configMap: cannot read the ConfigMap $OPNS/no-such-$$: .*not found.*\(none in force\)'"
eventually 30 "a ConfigMap without the label kupenstack.io/policy-source=true: Refused" s -- \
	bash -c "$(declare -f k status); status e2e-nolabel-$$ | grep -F 'Refused 1: spec.luaFrom.configMap: the ConfigMap $OPNS/$CM-nolabel lacks the label kupenstack.io/policy-source=true'"

# The attacker: alice edits the namespace (the built-in edit role).
k create rolebinding alice-edit -n "$S" --clusterrole edit --user alice >/dev/null
eventually 30 "RBAC: alice may write the ConfigMaps of her namespace" -- \
	k auth can-i update configmaps -n "$S" --as alice
check "RBAC: but not the operator's namespace's (the policy sources)" -- \
	expect_out 'forbidden' k create configmap "e2e-alice-$$" -n "$OPNS" --as alice \
	--from-literal=policy.lua='return {}'
check "RBAC: nor Policies in her namespace" -- \
	expect_fail k auth can-i create policies.kupenstack.io -n "$S" --as alice
k create configmap "$CM" -n "$S" --as alice --from-file="$WORK/policy.lua" >/dev/null
k label configmap "$CM" -n "$S" --as alice kupenstack.io/policy-source=true >/dev/null
echo 'return { validate = function() return "spec: no Networks here (from-op)" end }' >"$WORK/net.lua"
k create configmap "$CM-ns" -n "$OPNS" --from-file=policy.lua="$WORK/net.lua" >/dev/null
k label configmap "$CM-ns" -n "$OPNS" kupenstack.io/policy-source=true >/dev/null
k apply -f - >/dev/null <<EOT
apiVersion: kupenstack.io/v1alpha1
kind: Policy
metadata: {name: own-ns, namespace: $S}
spec:
  match: {kinds: [Network]}
  luaFrom: {configMap: {name: $CM, namespace: $S}}
---
apiVersion: kupenstack.io/v1alpha1
kind: Policy
metadata: {name: from-op, namespace: $S}
spec:
  match: {kinds: [Network]}
  luaFrom: {configMap: {name: $CM-ns}}
EOT
pstatus() { k get policy "$1" -n "$S" -o jsonpath='{.status.phase}: {.status.message}'; }
eventually 30 "a Policy naming alice's ConfigMap (its own namespace's, labelled): Refused, naming the field" s -- \
	bash -c "$(declare -f k pstatus); S=$S; pstatus own-ns | grep -F 'Refused: spec.luaFrom.configMap.namespace: a policy'\''s ConfigMap is read from the operator'\''s namespace ($OPNS) only, not $S'"
eventually 30 "a Policy naming the operator's labelled ConfigMap is Loaded" s -- \
	bash -c "$(declare -f k pstatus); S=$S; pstatus from-op | grep -E '^Loaded'"
echo '{"apiVersion":"kupenstack.io/v1alpha1","kind":"Network","metadata":{"name":"n2"},"spec":{}}' >"$WORK/n2.json"
check "and enforced in its namespace" s -- \
	expect_out 'denied the request: \[from-op\] spec: no Networks here \(from-op\)' k apply -n "$S" -f "$WORK/n2.json"

# The source deleted: said once in the status and an Event, the last good version kept.
k delete configmap "$CM" -n "$OPNS" >/dev/null
eventually 30 "the ConfigMap deleted: Refused (not found), the previous version stays" s -- \
	bash -c "$(declare -f k status); status e2e-src-$$ | grep -E '^Refused 1: spec.luaFrom.configMap: cannot read the ConfigMap $OPNS/$CM: .*not found.*\(the previous version stays in force\)'"
check "a PolicyRefused Event on the ClusterPolicy says so" s -- \
	expect_out 'not found' k get events -n default -o jsonpath='{.items[*].message}' \
	--field-selector "involvedObject.name=e2e-src-$$,reason=PolicyRefused"
check "v3 is still enforced" s -- \
	expect_out 'flavor m1.huge is forbidden \(v3\)' instance vm6 m1.huge

# Over time: a namespaced Policy's versions, each compiled and its fixtures run on the host's
# loop, as fast as its author writes them. Each "burn" version has 250 fixtures whose
# policy loops until its instruction budget stops it: the gate stops them at the 0.5 s
# limit and refuses the version. Past its namespace's share (1/20 of the loop, 2 s at
# once) a version is put off, the status says so, and another namespace's Policy is
# still checked at once; a good version is checked (Loaded) once the share is paid back.
S2=ks-e2e-pols2-$$
new_ns "$S2" bare
burn() { # NS NAME N: version N, its Lua looping, 250 fixtures expecting a denial
	{
		printf '%s\n' "apiVersion: kupenstack.io/v1alpha1" "kind: Policy" \
			"metadata: {name: $2, namespace: $1}" "spec:" "  match: {kinds: [Network]}" \
			"  lua: 'return {validate = function() while true do end end} -- v$3'" "  fixtures:"
		for i in $(seq 1 250); do
			echo "    - {request: {operation: CREATE, namespace: $1, kind: {kind: Network}, object: {kind: Network, metadata: {name: n$i}, spec: {}}}, expect: {allowed: false}}"
		done
	} | k apply -f - >/dev/null
}
good() { # NS NAME: a version that passes its one fixture
	k apply -f - >/dev/null <<EOT
apiVersion: kupenstack.io/v1alpha1
kind: Policy
metadata: {name: $2, namespace: $1}
spec:
  match: {kinds: [Network]}
  lua: 'return {validate = function(o) if o.metadata.name == "bad" then return "spec: no" end end}'
  fixtures:
    - {request: {operation: CREATE, namespace: $1, kind: {kind: Network}, object: {kind: Network, metadata: {name: ok}, spec: {}}}, expect: {allowed: true}}
EOT
}
nstatus() { # NS NAME: generation phase: message
	k get policy "$2" -n "$1" -o jsonpath='{.metadata.generation} {.status.observedGeneration} {.status.phase}: {.status.message}'
}
put_off=""
for v in $(seq 1 16); do
	burn "$S" burn "$v"
	gen=$(k get policy burn -n "$S" -o jsonpath='{.metadata.generation}')
	until_ok 60 bash -c "$(declare -f k nstatus); nstatus $S burn | grep -qE '^$gen $gen '"
	if nstatus "$S" burn | grep -qF 'not checked yet'; then
		put_off=$v
		break
	fi
done
if [ -n "$put_off" ]; then
	pass "version $put_off of a Policy burning its fixtures' time limit is put off: its namespace's share is spent"
else
	fail "a namespace's Policies writing versions that burn their fixtures' time are put off (16 versions were all checked)"
fi
check "the status names the namespace and when it is checked" -- \
	bash -c "$(declare -f k nstatus); nstatus $S burn | grep -E 'Refused: not checked yet: the Policies of namespace $S have used their share of the host.s time .*checked again in [0-9]+ s \((none|the previous version) '"
good "$S2" other
eventually 30 "meanwhile another namespace's Policy is checked at once (Loaded)" -- \
	bash -c "$(declare -f k nstatus); nstatus $S2 other | grep -E '^[0-9]+ [0-9]+ Loaded'"
check "and the first one is still put off then" -- \
	bash -c "$(declare -f k nstatus); nstatus $S burn | grep -F 'not checked yet'"
good "$S" burn
eventually 120 "a good version is checked once the share is paid back: Loaded" -- \
	bash -c "$(declare -f k nstatus); nstatus $S burn | grep -E '^([0-9]+) \1 Loaded'"
check "the host logged the put-off version" -- \
	expect_out 'policy put off.*namespace='"$S" cat "${HLOG[s]}"

stop_host s
# exit 0: a clean stop, and under the sanitizer build no leak or error report
if [ "${HRC[s]}" -eq 0 ]; then pass "the host stops cleanly (exit 0)"; else
	fail "the host stops cleanly (exit 0; it was ${HRC[s]})"
fi
finish
