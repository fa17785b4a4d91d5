#!/usr/bin/env bash
# tests/e2e/policy.sh: operator-authored admission policies (host/admission/), the real
# API server calling the host's webhook over TLS (clientConfig.url on loopback).
#  - host a (failurePolicy Fail) makes its CA and certificate (Secret kupenstack-system/
#    kupenstack) and both webhook configurations; the shipped policies (deploy/policies/)
#    load: a Network still used cannot be deleted; a forbidden flavor is refused at `kubectl apply` with the policy's message, a
#    default is in the stored object, 20 parallel creates against a quota of 10 admit 10;
#    a Warn policy admits with the warning kubectl prints; a new version with a syntax
#    error is Refused with the error and the old one still enforced; a policy looping
#    forever is cut off and the request refused with the sandbox's error; a Policy in A
#    does not touch B, may not match a kind outside kupenstack.io, nor read B; the audit
#    finds an existing Instance that a new namespace annotation makes a violation (status,
#    Event) and changes nothing; once an Instance has status.id, an immutable field's change
#    is refused at apply (immutable-fields), a label change is not.
#  - a down with Fail: Instances are refused ("failed calling webhook"), ConfigMaps not.
#  - host b (Ignore) reuses the Secret's certificate; b down: the forbidden flavor passes.
#  - host c (Fail, --admission-cert-seconds 30) replaces the certificate (made for a year)
#    and rotates it twice; the API server, never restarted, still calls the webhook.
# Needs KUBECONFIG (admin); applies crds/ (and leaves them). Prints TAP lines and
# `N passed, N failed`; exits 1 on any failure.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export WORK OPNS=kupenstack-system

A=ks-e2e-pol-a-$$
B=ks-e2e-pol-b-$$
Q=ks-e2e-pol-q-$$
POLICIES=(allowed-flavors namespace-quota default-recovery network-in-use immutable-fields
	e2e-warn-$$ e2e-loop-$$
	e2e-freeze-$$ e2e-audit-$$)

policy_cleanup() {
	k delete validatingwebhookconfiguration kupenstack --ignore-not-found >/dev/null 2>&1
	k delete mutatingwebhookconfiguration kupenstack --ignore-not-found >/dev/null 2>&1
	k delete clusterpolicy "${POLICIES[@]}" --ignore-not-found >/dev/null 2>&1
	k delete secret kupenstack -n "$OPNS" --ignore-not-found >/dev/null 2>&1
}
trap 'stop_hosts; policy_cleanup; cleanup' EXIT

k apply -f "$TOP/crds/" >/dev/null || exit 3
policy_cleanup

instance() { # NS NAME FLAVOR [kubectl verb]
	k "${4:-apply}" -n "$1" -f - <<EOT
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata:
  name: $2
spec:
  flavorRef: {name: $3}
  imageRef: {name: cirros}
  networks: [{networkRef: {name: net}}]
EOT
}
phase() { k get clusterpolicy "$1" -o jsonpath='{.status.phase} {.status.observedGeneration}'; }
ns_phase() { k get policy "$2" -n "$1" -o jsonpath='{.status.phase}'; }
webhook_ready() {
	k get validatingwebhookconfiguration kupenstack -o json |
		jq -e --arg fp "$1" '.webhooks[0] | .failurePolicy == $fp and (.rules | length) > 0'
}
tls_crt() { k get secret kupenstack -n "$OPNS" -o jsonpath='{.data.tls\.crt}'; }
admission_host() { # NAME PORT [flags]
	local name=$1 port=$2
	shift 2
	start_host "$name" "$WORK/plugins" - --admission-addr "127.0.0.1:$port" \
		--admission-namespace "$OPNS" "$@"
}

# Offline: kupenstack policy test.
check "policy test: the shipped policies pass their fixtures" -- \
	bash -c "'$KS' policy test '$TOP'/deploy/policies/*/ | tee /dev/stderr | grep -q '^[1-9][0-9]* passed, 0 failed' && ! '$KS' policy test '$TOP'/deploy/policies/*/ | grep -q '^not ok'"
mkdir -p "$WORK/pt/fixtures"
cp "$TOP/deploy/policies/allowed-flavors/policy.yaml" "$WORK/pt/"
sed 's/m1.huge is not allowed/m1.huge is not permitted/' \
	"$TOP/deploy/policies/allowed-flavors/fixtures/forbidden.yaml" >"$WORK/pt/fixtures/wrong.yaml"
check "policy test: a fixture expecting another message fails, saying what differed" -- \
	expect_out "expected the message '\\[allowed-flavors\\] flavor m1.huge is not permitted.*got '\\[allowed-flavors\\] flavor m1.huge is not allowed" \
	bash -c "'$KS' policy test '$WORK/pt'; [ \$? = 1 ]"
sed -i 's/^    return {$/    return {{/' "$WORK/pt/policy.yaml"
check "policy test: a policy that does not compile is reported with the Lua error" -- \
	expect_out "not ok - .*policy.yaml: allowed-flavors:[0-9]+: .*expected" bash -c "'$KS' policy test '$WORK/pt'"

mkdir -p "$WORK/plugins"
new_ns "$A" bare
new_ns "$B" bare
new_ns "$Q" bare
k annotate ns "$A" kupenstack.io/allowed-flavors=m1.small,m1.medium \
	kupenstack.io/default-on-error=Rebuild >/dev/null
k annotate ns "$Q" kupenstack.io/max-instances=10 >/dev/null
k apply -f "$TOP/deploy/policies/allowed-flavors/policy.yaml" \
	-f "$TOP/deploy/policies/quota/policy.yaml" \
	-f "$TOP/deploy/policies/default-recovery/policy.yaml" \
	-f "$TOP/deploy/policies/network-in-use/policy.yaml" \
	-f "$TOP/deploy/policies/immutable-fields/policy.yaml" >/dev/null

PORT=$(free_port)
admission_host a "$PORT" --admission-failure-policy Fail --admission-audit-seconds 5
eventually 30 "the shipped policies are Loaded" a -- \
	bash -c "$(declare -f k phase); for p in allowed-flavors namespace-quota default-recovery network-in-use immutable-fields; do phase \$p | grep -q '^Loaded 1' || exit 1; done" 
eventually 30 "the webhook configurations hold the policies' rules and Fail" a -- \
	webhook_ready Fail
check "the CA and certificate are kept in the Secret" -- \
	bash -c "$(declare -f k); k get secret kupenstack -n $OPNS -o json | jq -e '.data[\"ca.crt\"] and .data[\"tls.crt\"] and .data[\"tls.key\"]'"

check "kubectl apply of a forbidden flavor is refused with the policy's message" a -- \
	expect_out 'admission webhook "validate.kupenstack.io" denied the request: \[allowed-flavors\] flavor m1.huge is not allowed in namespace '"$A"' \(allowed: m1.small,m1.medium\)' \
	instance "$A" vm1 m1.huge
check "an allowed flavor is admitted" a -- instance "$A" vm1 m1.small
check "the default is in the stored object (recoveryPolicy.onError Rebuild)" -- \
	expect_out '^Rebuild$' k get instance vm1 -n "$A" -o jsonpath='{.spec.recoveryPolicy.onError}{"\n"}'
check "an immutable field's change is refused at apply time" a -- \
	expect_out 'spec.flavorRef.name is immutable \(m1.small to m1.medium\)' instance "$A" vm1 m1.medium
check "a namespace without the annotation may use any flavor" a -- instance "$B" vm1 m1.huge
# immutable-fields: once the resource exists (status.id, set here through the status
# subresource: no plugin runs), a keypairRef change is refused at apply; a label is not.
keyed() { # KEYPAIR: apply Instance vmk in B with that keypairRef
	k apply -n "$B" -f - <<EOT
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata:
  name: vmk
spec:
  flavorRef: {name: m1.small}
  imageRef: {name: cirros}
  keypairRef: {name: $1}
  networks: [{networkRef: {name: net}}]
EOT
}
keyed k1 >/dev/null
check "before its resource exists, an immutable field may change" a -- keyed k2
k patch instance vmk -n "$B" --subresource=status --type=merge -p '{"status":{"id":"e2e-id"}}' >/dev/null
check "once it exists, an immutable field's change is refused at apply, naming it" a -- \
	expect_out 'denied the request: \[immutable-fields\] spec.keypairRef is immutable once the Instance exists \(status.id e2e-id\): it was k2, spec says k3; delete and recreate the Instance to change it' \
	keyed k3
check "the refused change left the stored object" -- \
	expect_out '^k2$' k get instance vmk -n "$B" -o jsonpath='{.spec.keypairRef.name}{"\n"}'
check "a mutable change (a label) of the same object is admitted" a -- k label instance vmk -n "$B" tier=web
echo '{"apiVersion":"kupenstack.io/v1alpha1","kind":"Network","metadata":{"name":"net"},"spec":{}}' >"$WORK/net.json"
k apply -n "$A" -f "$WORK/net.json" >/dev/null
check "deleting a Network an Instance still names is refused, saying which" a -- \
	expect_out 'denied the request: \[network-in-use\] Network net is still used by Instance vm1: delete them first' \
	k delete network net -n "$A"
check "the refused delete left the Network" -- k get network net -n "$A"

# 20 parallel creates against a quota of 10: one curl, 20 POSTs at once (kubectl processes
# would start too far apart to race), through a kubectl proxy.
PROXY=$(free_port)
k proxy --port "$PROXY" >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
until_ok 30 curl -sf "http://127.0.0.1:$PROXY/version"
echo '{"apiVersion":"kupenstack.io/v1alpha1","kind":"Instance","metadata":{"generateName":"q-"},"spec":{"flavorRef":{"name":"m1.small"},"imageRef":{"name":"cirros"},"networks":[{"networkRef":{"name":"net"}}]}}' >"$WORK/q.json"
URL=http://127.0.0.1:$PROXY/apis/kupenstack.io/v1alpha1/namespaces/$Q/instances
curl -s -Z --parallel-immediate --parallel-max 20 -X POST -H 'Content-Type: application/json' \
	--data @"$WORK/q.json" $(for i in $(seq 1 20); do echo "$URL"; done) >"$WORK/q.out" 2>&1
echo >>"$WORK/q.out"
kill "$PROXY_PID" 2>/dev/null
check "20 parallel creates against a quota of 10: 10 admitted, 10 stored" -- \
	bash -c "$(declare -f k); grep -o '\"kind\":\"[A-Za-z]*\"' $WORK/q.out | sort | uniq -c; k get instances -n $Q --no-headers | wc -l; [ \$(grep -o '\"kind\":\"Instance\"' $WORK/q.out | wc -l) = 10 ] && [ \$(k get instances -n $Q --no-headers | wc -l) = 10 ]"
check "the 10 refused carry the quota's message" -- \
	bash -c "[ \$(grep -o 'namespace-quota\] namespace $Q may hold 10 Instances' $WORK/q.out | wc -l) = 10 ]"

# Warn: admitted, with the warning kubectl prints.
k apply -f - >/dev/null <<EOT
apiVersion: kupenstack.io/v1alpha1
kind: ClusterPolicy
metadata: {name: e2e-warn-$$}
spec:
  action: Warn
  match: {kinds: [kupenstack.io/Instance], namespaces: [$B]}
  lua: |
    return { validate = function(obj) return "Instance " .. obj.metadata.name .. " has no owner label" end }
EOT
eventually 30 "the Warn policy is Loaded" a -- bash -c "$(declare -f k phase); phase e2e-warn-$$ | grep -q ^Loaded"
check "Warn admits, and kubectl prints the warning" a -- \
	expect_out 'Warning: \[e2e-warn-'$$'\] Instance vm2 has no owner label' instance "$B" vm2 m1.small
check "the Warn-admitted Instance is stored" -- k get instance vm2 -n "$B"
k delete clusterpolicy "e2e-warn-$$" >/dev/null
k apply -f - >/dev/null <<EOT
apiVersion: kupenstack.io/v1alpha1
kind: ClusterPolicy
metadata: {name: e2e-audit-$$}
spec:
  action: Audit
  match: {kinds: [kupenstack.io/Instance], namespaces: [$B], operations: [CREATE]}
  lua: |
    return { validate = function(obj) return "audited " .. obj.metadata.name end }
EOT
eventually 30 "the Audit policy is Loaded" a -- bash -c "$(declare -f k phase); phase e2e-audit-$$ | grep -q ^Loaded"
check "Audit admits without a warning" a -- \
	bash -c "$(declare -f k instance); out=\$(instance $B vm10 m1.small 2>&1); echo \"\$out\"; ! grep -q Warning <<<\"\$out\" && grep -q created <<<\"\$out\""
check "and the host logs the violation" -- grep -q 'admission: audit.*audited vm10' "${HLOG[a]}"
k delete clusterpolicy "e2e-audit-$$" >/dev/null

# A broken new version: refused, the old one kept.
sed 's/^    return {$/    return {{/' "$TOP/deploy/policies/allowed-flavors/policy.yaml" | k apply -f - >/dev/null
eventually 30 "a version with a syntax error is Refused with the compile error" a -- \
	bash -c "$(declare -f k); k get clusterpolicy allowed-flavors -o json | jq -e '.status.phase == \"Refused\" and .status.observedGeneration == 2 and (.status.message | test(\"expected\"))' && k get clusterpolicy allowed-flavors -o jsonpath='{.status.message}'"
check "the previous version is still enforced" a -- \
	expect_out 'denied the request: \[allowed-flavors\] flavor m1.huge' instance "$A" vm3 m1.huge
k apply -f "$TOP/deploy/policies/allowed-flavors/policy.yaml" >/dev/null
eventually 30 "a good version replaces it (Loaded, generation 3)" a -- \
	bash -c "$(declare -f k phase); phase allowed-flavors | grep -q '^Loaded 3'"

# A policy looping forever: cut off, the request refused with the sandbox's error.
k apply -f - >/dev/null <<EOT
apiVersion: kupenstack.io/v1alpha1
kind: ClusterPolicy
metadata: {name: e2e-loop-$$}
spec:
  match: {kinds: [kupenstack.io/Instance], namespaces: [$B], operations: [CREATE]}
  lua: |
    return { validate = function() while true do end end }
EOT
eventually 30 "the looping policy is Loaded" a -- bash -c "$(declare -f k phase); phase e2e-loop-$$ | grep -q ^Loaded"
check "a policy looping forever is cut off: the request is refused with the limit" a -- \
	expect_out '\[e2e-loop-'$$'\] the policy failed: .*instruction budget exceeded' instance "$B" vm4 m1.small
check "the host still answers other requests after it" a -- \
	expect_out 'denied the request: \[allowed-flavors\]' instance "$A" vm5 m1.huge
k delete clusterpolicy "e2e-loop-$$" >/dev/null

# Audit: B's vm1 (m1.huge, admitted while B had no list) violates once B gets one.
k annotate ns "$B" kupenstack.io/allowed-flavors=m1.small >/dev/null
eventually 60 "the audit finds the existing violation: in the policy's status" a -- \
	bash -c "$(declare -f k); k get clusterpolicy allowed-flavors -o json | jq -e '.status.audit.violations == 1 and (.status.audit.firstViolations[0] | test(\"^$B/vm1: flavor m1.huge is not allowed in namespace $B\"))' && k get clusterpolicy allowed-flavors -o jsonpath='{.status.audit}'"
eventually 30 "the audit finds the existing violation: a PolicyViolation Event on it" a -- \
	bash -c "$(declare -f k); k get events -n $B --field-selector involvedObject.name=vm1,reason=PolicyViolation -o jsonpath='{.items[*].message}' | grep -F '[allowed-flavors] flavor m1.huge is not allowed'"
check "the audit changed nothing: vm1 keeps its flavor" -- \
	expect_out '^m1.huge$' k get instance vm1 -n "$B" -o jsonpath='{.spec.flavorRef.name}{"\n"}'

# An object being deleted: its finalizers come off even under a policy refusing updates.
k patch instance vm2 -n "$B" --type merge -p '{"metadata":{"finalizers":["e2e.kupenstack.io/hold"]}}' >/dev/null
k apply -f - >/dev/null <<EOT
apiVersion: kupenstack.io/v1alpha1
kind: ClusterPolicy
metadata: {name: e2e-freeze-$$}
spec:
  match: {kinds: [kupenstack.io/Instance], namespaces: [$B], operations: [UPDATE]}
  lua: |
    return { validate = function() return "no updates in this namespace" end }
EOT
eventually 30 "a policy refusing every update in B is Loaded" a -- bash -c "$(declare -f k phase); phase e2e-freeze-$$ | grep -q ^Loaded"
check "an update in B is refused" a -- \
	expect_out 'denied the request: \[e2e-freeze-'$$'\] no updates' k label instance vm2 -n "$B" x=y
k delete instance vm2 -n "$B" --wait=false >/dev/null
check "the finalizer of an object being deleted still comes off (the policy is not run)" a -- \
	k patch instance vm2 -n "$B" --type merge -p '{"metadata":{"finalizers":null}}'
eventually 30 "and the object is gone" -- bash -c "$(declare -f k); ! k get instance vm2 -n $B"
k delete clusterpolicy "e2e-freeze-$$" >/dev/null

# Namespaced Policies: A's does not reach B, nor kinds outside kupenstack.io, nor B's objects.
k apply -n "$A" -f - >/dev/null <<EOT
apiVersion: kupenstack.io/v1alpha1
kind: Policy
metadata: {name: no-instances}
spec:
  match: {kinds: [Instance], operations: [CREATE]}
  lua: |
    return { validate = function(obj) return "no Instances in this namespace" end }
---
apiVersion: kupenstack.io/v1alpha1
kind: Policy
metadata: {name: pods-too}
spec:
  match: {kinds: [/Pod]}
  lua: |
    return { validate = function() return "no" end }
---
apiVersion: kupenstack.io/v1alpha1
kind: Policy
metadata: {name: peek}
spec:
  action: Warn
  match: {kinds: [Network]}
  lua: |
    return { reads = { "kupenstack.io/v1alpha1/instances" },
             validate = function(_, _, ctx)
               local ok, err = pcall(ctx.list, "kupenstack.io/v1alpha1/instances", "$B")
               return "peek: " .. tostring(err)
             end }
EOT
eventually 30 "a Policy matching a kind outside kupenstack.io is Refused" a -- \
	bash -c "$(declare -f k); k get policy pods-too -n $A -o jsonpath='{.status.phase} {.status.message}' | grep -E '^Refused .*spec.match.kinds\[0\]: a namespaced Policy matches kupenstack.io kinds only'"
eventually 30 "A's Policy is Loaded" a -- bash -c "$(declare -f k ns_phase); ns_phase $A no-instances | grep -q Loaded"
check "A's Policy refuses in A" a -- \
	expect_out 'denied the request: \[no-instances\] no Instances in this namespace' instance "$A" vm6 m1.small
check "A's Policy does not touch B" a -- instance "$B" vm6 m1.small
echo '{"apiVersion":"kupenstack.io/v1alpha1","kind":"Network","metadata":{"name":"n1"},"spec":{}}' >"$WORK/n1.json"
check "A's Policy cannot read B" a -- \
	expect_out 'peek: .*a Policy reads its own namespace \('"$A"'\) only' k apply -n "$A" -f "$WORK/n1.json"
k delete policy --all -n "$A" >/dev/null

# The host down, failurePolicy Fail: only the matched kinds are blocked.
CRT=$(tls_crt)
stop_host a KILL
check "a down with Fail: an Instance is refused" -- \
	expect_out 'failed calling webhook "(mutate|validate).kupenstack.io".*connection refused' instance "$B" vm7 m1.small
check "a down with Fail: a ConfigMap (no policy matches it) is created" -- \
	k create configmap cm1 -n "$B" --from-literal=a=b

PORT=$(free_port)
admission_host b "$PORT" --admission-failure-policy Ignore
eventually 30 "b sets failurePolicy Ignore and its URL" b -- \
	bash -c "$(declare -f k webhook_ready); webhook_ready Ignore && k get validatingwebhookconfiguration kupenstack -o jsonpath='{.webhooks[0].clientConfig.url}' | grep -q ':$PORT/validate'"
check "b reuses the certificate kept in the Secret" b -- bash -c "[ \"\$($(declare -f k tls_crt); tls_crt)\" = '$CRT' ]"
check "b enforces the policies" b -- expect_out 'denied the request: \[allowed-flavors\]' instance "$A" vm8 m1.huge
stop_host b KILL
check "b down with Ignore: the request is not blocked" -- instance "$A" vm8 m1.huge

PORT=$(free_port)
admission_host c "$PORT" --admission-failure-policy Fail --admission-cert-seconds 30
rotated() { # how many distinct tls.crt have been seen after $CRT
	local now
	now=$(tls_crt)
	grep -qxF -- "$now" "$WORK/crts" 2>/dev/null || echo "$now" >>"$WORK/crts"
	[ "$(grep -cvxF -- "$CRT" "$WORK/crts")" -ge "$1" ]
}
eventually 120 "c rotates the certificate twice" c -- rotated 3
eventually 30 "c serves each new certificate once the API server has its CA" c -- \
	bash -c "grep -c 'serving the new certificate' ${HLOG[c]}; [ \$(grep -c 'serving the new certificate' ${HLOG[c]}) -ge 2 ]"
check "after the rotations the API server (never restarted) still calls the webhook" c -- \
	expect_out 'denied the request: \[allowed-flavors\] flavor m1.huge' instance "$A" vm9 m1.huge
finish
