#!/usr/bin/env bash
# tests/e2e/services_live.sh: the service kinds changed while they run (ks.service,
# plugins/controlplane.lua), through the real host against the real API server,
# controllers and scheduler with the stand-in kubelet:
#   1. a service plugin loaded from a ConfigMap (--plugins-configmaps) edited while its
#      Keystone is deployed: the host reloads it without a restart and the new mapping
#      (the api's image name) reaches the Deployment;
#   2. a failed upgrade fixed: status.failure is cleared, not left stale;
#   3. a ControlPlane service's `values` emptied to {} by a server-side apply (as GitOps
#      tools apply): accepted (the API server stores null: kubernetes#104694, the CRDs
#      allow it), it means no overrides: the child service loses the values it had and a
#      rolled-back upgrade goes on; a whole service emptied to {} (null too) is accepted.
# No timed assertions: polls with generous bounds, then outcomes.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/services_world.sh"
services_world "svcl-$$"
# The Keystone plugin comes from a ConfigMap of its own namespace, not from $PLUG.
rm "$PLUG/keystone.lua" "$PLUG/keystone.config.yaml"
CMNS=svcl-plug-$$
new_ns "$CMNS" bare

# keystone_cm MAPPING: the ConfigMap holding plugins/keystone.lua with MAPPING (Lua fields)
# added to its kind definition.
keystone_cm() {
	k apply -n "$CMNS" -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: keystone
  labels: {kupenstack.io/plugin: "true"}
data:
  keystone.config.yaml: |
    charts_dir: "$CHARTS"
    poll: 0.5
  keystone.lua: |
    return require("ks.service").kind {
      kind = "Keystone", chart = "keystone",
      components = { "api" }, jobs = { "db_sync" }, $1
    }
EOF
}
# keystone NAME VERSION VALUES: a lone Keystone (server-side apply).
keystone() {
	k apply --server-side -n "$NS" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Keystone
metadata: {name: $1}
spec:
  version: "$2"
  rollbackOnFailure: false
  values: $3
EOF
}
ready_at() { has keystone "$NS" "$1" ".status.observedGeneration == .metadata.generation and .status.phase == \"Ready\" and .status.version == \"$2\""; }
api_image() { field deploy "$NS" "$1-api" '.spec.template.spec.containers[0].image'; }
trap services_cleanup EXIT
keystone_cm ""
start_host h "$PLUG" - --plugins-configmaps "$CMNS" || { echo "host did not start"; exit 3; }
pid0=${HPID[h]}

# --- 1. the plugin edited live -----------------------------------------------------------
keystone keystone 2023.1 '{}'
eventually "$W" "live edit: a Keystone from the ConfigMap's plugin is Ready" h -- ready_at keystone 2023.1
check "live edit: its api runs the chart's image name ($(api_image keystone))" -- \
	test "$(api_image keystone)" = docker.io/openstackhelm/keystone:2023.1-ubuntu_jammy
keystone_cm 'images = { api = "keystone-live" },'
eventually "$W" "live edit: the edited mapping reaches the Deployment (api image keystone-live)" h -- \
	bash -c "test \"\$(kubectl get deploy -n $NS keystone-api -o jsonpath='{.spec.template.spec.containers[0].image}')\" = docker.io/openstackhelm/keystone-live:2023.1-ubuntu_jammy"
eventually "$W" "live edit: the Keystone is Ready again" h -- ready_at keystone 2023.1
check "live edit: the same host process did it (no restart)" -- \
	eval 'alive "$pid0" && [ "${HPID[h]}" = "$pid0" ]'
check "live edit: the host logged the reload of the ConfigMap's plugin" -- \
	in_log h "plugin reloaded.*configmap:$CMNS/keystone/keystone.lua"

# --- 2. a failed upgrade fixed: no stale failure ----------------------------------------
keystone keystone 2024.1 '{pod: {fault: {db_sync: fail}}}'
eventually "$W" "stale failure: the upgrade with a failing Job is Degraded with status.failure" h -- \
	has keystone "$NS" keystone '.status.phase == "Degraded" and (.status.failure.message | test("Job keystone-db-sync failed"))'
keystone keystone 2024.1 '{pod: {fault: {db_sync: ""}}}'
eventually "$W" "stale failure: fixed, the Keystone is Ready at 2024.1" h -- ready_at keystone 2024.1
check "stale failure: status.failure is cleared ($(field keystone "$NS" keystone '.status.failure // "none"' | tr '\n' ' '))" -- \
	has keystone "$NS" keystone '.status.failure == null and (.status.message // "" | test("failed") | not)'
keystone keystone 2024.1 '{}'
eventually "$W" "null values: a Keystone whose values a server-side apply emptied (stored null) is Ready, no overrides" h -- \
	eval 'has keystone "$NS" keystone ".spec.values == null and .status.observedGeneration == .metadata.generation and .status.phase == \"Ready\"" && has deploy "$NS" keystone-api "(.spec.template.metadata.annotations[\"kupenstack.io/fake-kubelet\"] // \"\") == \"\""'
k delete keystone -n "$NS" keystone --wait=false >/dev/null

# --- 3. a ControlPlane's values emptied ---------------------------------------------------
# controlplane VERSION VALUES: server-side apply of the ControlPlane cp of one Keystone with
# VALUES (kubectl's output on stdout).
controlplane() {
	k apply --server-side -n "$NS" -f - 2>&1 <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: ControlPlane
metadata: {name: cp}
spec:
  version: "$1"
  services:
    keystone:
      values: $2
EOF
}
cp_ready() {
	has controlplane "$NS" cp '.status.observedGeneration == .metadata.generation and .status.phase == "Ready"' &&
		ready_at cp-keystone "$1"
}
controlplane 2023.1 '{conf: {keystone: {DEFAULT: {debug: true}}}}' >/dev/null
eventually "$W" "values {}: a ControlPlane whose keystone has values is Ready" h -- cp_ready 2023.1
check "values {}: the child Keystone has them" -- has keystone "$NS" cp-keystone '.spec.values.conf.keystone.DEFAULT.debug == true'
controlplane 2024.1 '{pod: {fault: {db_sync: fail}}}' >/dev/null
eventually "$W" "values {}: an upgrade whose Job fails is rolled back" h -- \
	has keystone "$NS" cp-keystone '.status.phase == "RolledBack"'
check "values {}: the API server accepts values emptied to {} ($(controlplane 2024.1 '{}' | tr '\n' ' '))" -- \
	has controlplane "$NS" cp '(.spec.services.keystone.values // {}) == {}'
eventually "$W" "values {}: the child Keystone has no values left (no overrides)" h -- \
	has keystone "$NS" cp-keystone '(.spec.values // {}) == {}'
eventually "$W" "values {}: the upgrade goes on: the ControlPlane is Ready at 2024.1" h -- cp_ready 2024.1
check "values {}: no Degraded condition left, no stale failure on the Keystone" -- \
	eval 'has controlplane "$NS" cp "(.status.conditions[] | select(.type == \"Degraded\") | .status == \"False\")" && has keystone "$NS" cp-keystone ".status.failure == null"'
# The whole keystone emptied to {} (stored null too): it means a Keystone of no overrides.
k apply --server-side -n "$NS" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: ControlPlane
metadata: {name: cp}
spec:
  version: "2024.1"
  services:
    keystone: {}
EOF
eventually "$W" "values {}: a service emptied to {} (stored null) is accepted, the ControlPlane Ready" h -- \
	eval 'has controlplane "$NS" cp ".spec.services.keystone == null" && cp_ready 2024.1'
check "values {}: the host logged no refused apply" -- bash -c "! grep -q 'applying Keystone/cp-keystone' '${HLOG[h]}'"

finish
