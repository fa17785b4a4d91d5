#!/usr/bin/env bash
# tests/e2e/services_fail.sh: the service kinds when things go wrong (ks.service,
# plugins/controlplane.lua), through the real host against the real API server,
# controllers and scheduler with the stand-in kubelet and its faults (pod annotations set
# through the fixture charts' pod.fault values):
#   1. a ControlPlane's upgrade in which Placement's db-sync Job fails: Placement is rolled
#      back to its last healthy revision, the ControlPlane is Degraded naming the Job, its
#      pod and the pod's message, and halted: Nova and Neutron are left untouched; the
#      fault removed, the upgrade goes on to the end;
#   2. a lone Keystone (maxUnavailable 0 on its Deployment): Ready, then its only api
#      pod deleted and the replacement held Pending (nodes cordoned) past its
#      progressDeadlineSeconds: healed, not failed (Progressing, nothing rolled back, no
#      Failed Event), Ready once uncordoned; then its api pods never get Ready,
#      rollbackOnFailure false: Degraded past its deadline naming the pod, nothing rolled
#      back;
#   3. the same Keystone crash-looping: the pod past the restart threshold reported with
#      its last message and deleted; past the deadline, rolled back to the last healthy
#      revision, its pods Ready again;
#   4. kill -9 of the host in the middle of an upgrade: the restarted host finishes it;
#      nothing duplicated (one db-sync Job per service, one release state each, one
#      ReplicaSet with pods per Deployment) or orphaned (every object of a release in its
#      inventory).
# No timed assertions: polls with generous bounds, then outcomes, counts and order.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/services_world.sh"
services_world "svcf-$$" "crashloop_restarts: 2" "check_interval: 2"

# controlplane VERSION PLACEMENT_VALUES: create or replace the ControlPlane cp.
controlplane() {
	k apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: ControlPlane
metadata:
  name: cp
spec:
  version: "$1"
  services:
    keystone: {}
    glance: {}
    placement:
      values: $2
    nova: {}
    neutron: {}
EOF
}
all_ready() {
	local s
	has controlplane "$NS" cp ".status.observedGeneration == .metadata.generation and .status.phase == \"Ready\" and .status.ready == \"5/5\" and .status.version == \"$1\"" || return 1
	for s in $SERVICES; do
		has "$s" "$NS" "cp-$s" ".status.observedGeneration == .metadata.generation and .status.phase == \"Ready\" and .status.version == \"$1\"" || return 1
	done
}
images_of() { k get deploy,job -n "$NS" -l "app.kubernetes.io/instance=$1" -o json | jq -r '[.items[] | .spec.template.spec.containers[0].image | sub(".*:"; "")] | unique | join(",")'; }
stamp() { k get deploy,job -n "$NS" -l "app.kubernetes.io/instance=$1" -o json | jq -r '.items[] | "\(.kind)/\(.metadata.name) \(.metadata.uid) \(.metadata.generation)"' | sort; }
cond_is() { has "$1" "$NS" "$2" "(.status.conditions[] | select(.type == \"$3\") | .status == \"$4\" and (.message | test(\"$5\")))"; }
trap services_cleanup EXIT
start_host h "$PLUG" - || { echo "host did not start"; exit 3; }

# --- 1. a Job that fails during Placement's upgrade ------------------------------------
controlplane 2023.1 '{}'
eventually "$W" "setup: the ControlPlane is Ready at 2023.1" h -- all_ready 2023.1
nova0=$(stamp cp-nova) neutron0=$(stamp cp-neutron)
controlplane 2024.1 "{pod: {fault: {db_sync: fail}}}"
halted() {
	has controlplane "$NS" cp ".status.phase == \"Degraded\" and .status.halted == \"Placement/cp-placement\"" &&
		has placement "$NS" cp-placement '.status.phase == "RolledBack" and .status.version == "2023.1"'
}
eventually "$W" "job fails: the ControlPlane halts, Degraded, naming Placement; Placement is rolled back (RolledBack at 2023.1)" h -- halted
check "job fails: the ControlPlane's Degraded message names the Job, its pod and the pod's message" -- \
	cond_is controlplane cp Degraded True "Placement/cp-placement: upgrade to 2024.1 failed: Job cp-placement-db-sync failed \\\\(pod cp-placement-db-sync-[a-z0-9]+: .*stand-in kubelet: fault fail injected"
check "job fails: Placement's Degraded says RolledBack and the revision it went back to" -- \
	has placement "$NS" cp-placement '(.status.conditions[] | select(.type == "Degraded") | .status == "True" and .reason == "RolledBack" and (.message | test("rolled back to revision [0-9]+ \\(2023.1\\)"))) and (.status.conditions[] | select(.type == "Ready") | .status == "False")'
check "job fails: Placement's objects are back at 2023.1 (images: $(images_of cp-placement))" -- \
	test "$(images_of cp-placement)" = "2023.1-ubuntu_jammy"
until_ok "$W" has job "$NS" cp-placement-db-sync '.status.succeeded == 1'
check "job fails: the 2023.1 db-sync Job ran again and completed" -- \
	has job "$NS" cp-placement-db-sync '.status.succeeded == 1 and (.spec.template.spec.containers[0].image | endswith("2023.1-ubuntu_jammy"))'
check "job fails: Keystone and Glance went on to 2024.1 (they do not depend on Placement)" -- \
	eval 'has keystone "$NS" cp-keystone ".status.version == \"2024.1\"" && has glance "$NS" cp-glance ".status.version == \"2024.1\""'
check "job fails: Nova is left untouched (same Deployments and Job, same generations)" -- \
	test "$(stamp cp-nova)" = "$nova0"
check "job fails: Neutron is left untouched" -- test "$(stamp cp-neutron)" = "$neutron0"
check "job fails: Nova waits, UpgradePending, for Placement at 2024.1" -- \
	has nova "$NS" cp-nova '.status.phase == "UpgradePending" and .status.version == "2023.1"'
check "job fails: a Warning event names the failure" -- \
	bash -c "kubectl get events -n $NS --field-selector involvedObject.name=cp-placement,reason=Failed -o json | jq -e '.items | length > 0'"
controlplane 2024.1 '{pod: {fault: {db_sync: ""}}}'
eventually "$W" "job fails: the fault removed, the upgrade goes on and every service is Ready at 2024.1" h -- \
	all_ready 2024.1
section_done() { [ -n "${KS_FAIL_FAST:-}" ] && [ "$failed" -gt 0 ] && finish; return 0; }
section_done

# --- 2. pods that never get Ready, no rollback -----------------------------------------
keystone() {
	k apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Keystone
metadata: {name: keystone}
spec:
  version: "2024.1"
  progressDeadlineSeconds: 6
  maxUnavailable: 0
  rollbackOnFailure: $1
  values: {pod: {fault: {api: "$2"}}}
EOF
}
keystone false ""
eventually "$W" "setup: a lone Keystone is Ready" h -- \
	has keystone "$NS" keystone '.status.phase == "Ready" and .status.observedGeneration == .metadata.generation'
good=$(field keystone "$NS" keystone .status.lastGoodRevision)
check "maxUnavailable: 0 reaches the Deployment's rolling update (OpenStack-Helm's key)" -- \
	has deploy "$NS" keystone-api '.spec.strategy.rollingUpdate.maxUnavailable == 0'

# Healed, not failed: once its generation was Ready, the Keystone's only api pod is gone
# and its replacement held Pending (every node cordoned) past the 6 s deadline: it is
# Progressing, never Degraded, nothing rolled back, no Failed Event; uncordoned, Ready.
NODES=$(k get nodes -o name | tr '\n' ' ')
# shellcheck disable=SC2086
services_pre_cleanup() { k uncordon $NODES >/dev/null 2>&1; }
# shellcheck disable=SC2086
k cordon $NODES >/dev/null
k delete pod -n "$NS" -l app.kubernetes.io/instance=keystone,component=api --wait=false >/dev/null
# not_ready_past_deadline: Progressing, api 0/1, and its attempt began more than 6 s ago.
not_ready_past_deadline() {
	has keystone "$NS" keystone '.status.phase == "Progressing" and .status.components.api.ready == "0/1" and (now - .status.attempt.since) > 6'
}
eventually "$W" "healing: the api pod gone, the Keystone is Progressing (0/1) past its deadline" h -- not_ready_past_deadline
n0=$(logged h 'msg="service applied".*key='"$NS"'/keystone( |$)|key='"$NS"'/keystone .*msg="service applied"')
applied_thrice() { [ "$(logged h 'msg="service applied".*key='"$NS"'/keystone( |$)|key='"$NS"'/keystone .*msg="service applied"')" -ge $((n0 + 3)) ]; }
eventually "$W" "healing: the host reconciled it three more times" h -- applied_thrice
check "healing: not failed nor rolled back (no status.failure, phase Progressing, revision $good)" -- \
	has keystone "$NS" keystone ".status.failure == null and .status.phase == \"Progressing\" and .status.revision == $good"
check "healing: no Failed or RollingBack Event" -- bash -c "$(declare -f k); ! k get events -n $NS \
	--field-selector involvedObject.name=keystone -o json | jq -e '[.items[] | select(.reason == \"Failed\" or .reason == \"RollingBack\")] | length > 0'"
# shellcheck disable=SC2086
k uncordon $NODES >/dev/null
eventually "$W" "healing: uncordoned, the Keystone is Ready again" h -- \
	has keystone "$NS" keystone '.status.phase == "Ready" and .status.components.api.ready == "1/1"'
keystone false never-ready
eventually "$W" "never ready: past its deadline the Keystone is Degraded naming the component and the pod not Ready" h -- \
	cond_is keystone keystone Degraded True "not healthy within 6s: component api \\\\(Deployment keystone-api\\\\) is not healthy: .*pod keystone-api-[a-z0-9]+-[a-z0-9]+: running, not Ready"
check "never ready: rollbackOnFailure false: nothing rolled back (phase Degraded, the never-ready template stays)" -- \
	eval 'has keystone "$NS" keystone ".status.phase == \"Degraded\" and .status.lastGoodRevision == $good" && has deploy "$NS" keystone-api ".spec.template.metadata.annotations[\"kupenstack.io/fake-kubelet\"] == \"never-ready\""'
check "never ready: Ready False and Progressing False (the plugin's conditions)" -- \
	eval 'cond_is keystone keystone Ready False "not healthy" && cond_is keystone keystone Progressing False "not healthy"'
section_done

# --- 3. a crash-looping pod: reported, restarted, then rolled back ---------------------
keystone true crashloop
eventually "$W" "crash loop: the pod past 2 restarts is reported with its last message and deleted" h -- \
	has keystone "$NS" keystone '[.status.crashLoops[]? | select(.component == "api" and .restarts >= 2 and (.message | test("fault crashloop injected")))] | length > 0'
check "crash loop: a CrashLoopRestarted event names the pod" -- \
	bash -c "kubectl get events -n $NS --field-selector involvedObject.name=keystone,reason=CrashLoopRestarted -o json | jq -e '.items[0].message | test(\"pod keystone-api-.* restarted\")'"
eventually "$W" "crash loop: past the deadline it is rolled back to revision $good, RolledBack" h -- \
	has keystone "$NS" keystone ".status.phase == \"RolledBack\" and .status.failure.rollbackTo == $good"
check "crash loop: its api pods run the healthy template again (no fault annotation, 1/1 ready)" -- \
	has deploy "$NS" keystone-api '(.spec.template.metadata.annotations["kupenstack.io/fake-kubelet"] // "") == "" and .status.readyReplicas == 1'
k delete keystone -n "$NS" keystone --wait=false >/dev/null
section_done

# --- 4. kill -9 of the host in the middle of an upgrade ---------------------------------
controlplane 2024.2 '{pod: {fault: {db_sync: ""}}}'
midway() {
	has keystone "$NS" cp-keystone '.status.version == "2024.2"' &&
		! has nova "$NS" cp-nova '.status.version == "2024.2"'
}
eventually "$W" "kill -9: the upgrade to 2024.2 is midway (Keystone done, Nova not yet)" h -- midway
stop_host h KILL
check "kill -9: the host died of SIGKILL" -- test "${HRC[h]}" = 137
start_host h2 "$PLUG" - || { echo "host did not restart"; exit 3; }
eventually "$W" "kill -9: the restarted host finishes the upgrade, every service Ready at 2024.2" h2 -- \
	all_ready 2024.2
check "kill -9: every image at 2024.2" -- \
	test "$(k get deploy,job -n "$NS" -l app.kubernetes.io/managed-by=kupenstack -o json | jq -r '[.items[] | .spec.template.spec.containers[0].image | sub(".*:"; "")] | unique | join(",")')" = "2024.2-ubuntu_jammy"
check "kill -9: one db-sync Job per service, nothing duplicated ($(k get jobs -n "$NS" -o name | tr '\n' ' '))" -- \
	test "$(k get jobs -n "$NS" -o name | sort | tr '\n' ' ')" = "job.batch/cp-glance-db-sync job.batch/cp-keystone-db-sync job.batch/cp-neutron-db-sync job.batch/cp-nova-db-sync job.batch/cp-placement-db-sync "
check "kill -9: one release state Secret per service" -- \
	test "$(k get secret -n "$NS" -o name | grep -c kupenstack-release-cp-)" = 5
check "kill -9: each Deployment has one ReplicaSet with pods" -- \
	bash -c "kubectl get rs -n $NS -o json | jq -e '[.items[] | select(.spec.replicas > 0) | .metadata.ownerReferences[0].name] | group_by(.) | all(length == 1)'"
# orphans: every object labelled with a release is in that release's inventory
orphans() {
	local r inv
	for s in $SERVICES; do
		r=cp-$s
		inv=$(k get secret -n "$NS" "kupenstack-release-$r" -o jsonpath='{.data.inventory}' | base64 -d | jq -r '.[] | "\(.kind)/\(.name)"' | sort)
		k get deploy,job,secret,svc,configmap -n "$NS" -l "kupenstack.io/release=$r" -o json |
			jq -r '.items[] | select(.type != "kupenstack.io/release") | "\(.kind)/\(.metadata.name)"' | sort |
			comm -23 - <(echo "$inv")
	done
}
check "kill -9: nothing orphaned: every object of a release is in its inventory (extra: $(orphans | tr '\n' ' '))" -- \
	test -z "$(orphans)"
check "kill -9: pods: as many as the Deployments want, none left over" -- \
	bash -c "test \"\$(kubectl get pods -n $NS -o json | jq '[.items[] | select(.metadata.ownerReferences[0].kind == \"ReplicaSet\")] | length')\" = \"\$(kubectl get deploy -n $NS -o json | jq '[.items[].spec.replicas] | add')\""

finish
