#!/usr/bin/env bash
# tests/e2e/services.sh: the service kinds (plugins/keystone.lua ... neutron.lua on
# stdlib/ks/service, plugins/controlplane.lua) through the real host, against the real API
# server, controllers and scheduler with the stand-in kubelet (tests/env/kube up),
# deploying the fixture charts tests/fixtures/charts/osh-{keystone,glance,placement,nova,
# neutron} (OpenStack-Helm's layout: a db-sync hook Job, Deployments per component, a conf
# Secret whose hash is on the pod templates):
#   1. a ControlPlane of the five services from nothing to Ready, in dependency order
#      (keystone -> glance, placement -> nova -> neutron: each service's first Job is
#      created after the Deployments it depends on became Available), shared settings
#      inherited;
#   1b. a restarted host runs no hook Job again, rolls nothing, and all stays Ready; a
#      Deployment and a Secret deleted by hand are made again, a Deployment scaled by
#      hand is put back;
#   2. scale: Nova's api to 3 replicas changes that Deployment and no other;
#   3. reconfigure: a Keystone conf change rolls Keystone's pods and no other's;
#   4. upgrade: a version bump upgrades every service, each one's db-sync Job complete
#      before its Deployments roll, each dependency's new pods Ready before the dependent's
#      Job starts;
#   0. bad input refused naming the field; a namespace editor may create no service kind;
#      a service where the operator was granted nothing fails, creating nothing;
#   5. deletion of the ControlPlane deletes its services in reverse order and everything
#      their releases made.
# No timed assertions: polls with generous bounds, then outcomes, counts and order.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/services_world.sh"
services_world "svc-$$" "check_interval: 2"

# controlplane VERSION KEYSTONE_CONF NOVA_API_REPLICAS: create or replace the ControlPlane cp.
controlplane() {
	k apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: ControlPlane
metadata:
  name: cp
spec:
  version: "$1"
  endpoints:
    oslo_db:
      host: db-$$
  services:
    keystone:
      conf: {keystone: {DEFAULT: {debug: $2}}}
    glance: {}
    placement:
      endpoints:
        oslo_db:
          host: placement-db-$$
    nova:
      replicas: {api: $3}
    neutron: {}
EOF
}
cpj() { field controlplane "$NS" cp "$1"; }
# all_ready VERSION: the ControlPlane and its five services have seen their last change and
# are Ready at VERSION.
all_ready() {
	local s
	has controlplane "$NS" cp ".status.observedGeneration == .metadata.generation and .status.phase == \"Ready\" and .status.ready == \"5/5\" and .status.version == \"$1\"" || return 1
	for s in $SERVICES; do
		has "$s" "$NS" "cp-$s" ".status.observedGeneration == .metadata.generation and .status.phase == \"Ready\" and .status.version == \"$1\" and (.status.conditions[] | select(.type == \"Ready\") | .status == \"True\")" || return 1
	done
}
t_of() { date -d "$1" +%s; }
made() { k get "$1" -n "$NS" "$2" -o jsonpath='{.metadata.creationTimestamp}'; }
available_since() { field deploy "$NS" "$1" '.status.conditions[] | select(.type == "Available") | .lastTransitionTime'; }
# before_or_at WHAT_A TIME_A WHAT_B TIME_B: TIME_A <= TIME_B (both set).
before_or_at() {
	echo "$1 at $2, $3 at $4"
	[ -n "$2" ] && [ -n "$4" ] && [ "$(t_of "$2")" -le "$(t_of "$4")" ]
}
DEPENDS="keystone:glance keystone:placement keystone:nova glance:nova placement:nova keystone:neutron nova:neutron"
# Every Deployment of the namespace with its generation / its ReplicaSets.
generations() { k get deploy -n "$NS" -o json | jq -r '.items[] | "\(.metadata.name) \(.metadata.generation)"' | sort; }
replicasets() { k get rs -n "$NS" -o json | jq -r '.items[] | "\(.metadata.ownerReferences[0].name) \(.metadata.name)"' | sort; }
# changed BEFORE AFTER: the first words of the lines that differ.
changed() { diff <(echo "$1") <(echo "$2") | awk '/^[<>]/ { print $2 }' | sort -u | tr '\n' ' '; }
# The newest pod of Deployment D with image tag T: when it became Ready.
pod_ready_at() {
	k get pods -n "$NS" -l "app.kubernetes.io/instance=${1%-*},component=${1##*-}" -o json |
		jq -r --arg t "$2" '[.items[] | select(.spec.containers[0].image | endswith($t)) | .status.conditions[]? | select(.type == "Ready" and .status == "True") | .lastTransitionTime] | max // empty'
}
newest_rs_made() {
	k get rs -n "$NS" -l "app.kubernetes.io/instance=${1%-*},component=${1##*-}" -o json |
		jq -r --arg t "$2" '[.items[] | select(.spec.template.spec.containers[0].image | endswith($t)) | .metadata.creationTimestamp] | max // empty'
}
deployments_of() { k get deploy -n "$NS" -l "app.kubernetes.io/instance=cp-$1" -o name | sed 's|.*/||'; }
images_all() {
	k get deploy,job -n "$NS" -o json | jq -e --arg t "$1" '[.items[] | .spec.template.spec.containers[0].image] | length >= 11 and all(endswith($t))'
}
section_done() {
	[ -n "${KS_FAIL_FAST:-}" ] && [ "$failed" -gt 0 ] && finish
	return 0
}
trap services_cleanup EXIT

# A second namespace where the operator was granted nothing of kupenstack-services.
OTHER=svc-other-$$
new_ns "$OTHER" bare
start_host h "$PLUG" - || { echo "host did not start"; exit 3; }

# --- 0. bad input, isolation ------------------------------------------------------------
# says_ready KIND NS NAME REGEX: status.message and the Progressing condition say REGEX.
says_ready() { has "$1" "$2" "$3" "(.status.message | test(\"$4\")) and (.status.conditions[] | select(.type == \"Progressing\") | .message | test(\"$4\"))"; }
absent_bad() { [ -z "$(k get controlplanes,keystones -n "$NS" -o name)$(k get keystones -n "$OTHER" -o name)" ]; }
k apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: ControlPlane
metadata: {name: bad}
spec: {version: "2024.1", services: {keystone: {}, horizon: {}}}
---
apiVersion: kupenstack.io/v1alpha1
kind: Keystone
metadata: {name: keystone}
spec: {version: "1999.9"}
EOF
eventually "$W" "bad input: an unknown service is refused, naming spec.services.horizon" h -- \
	says_ready controlplane "$NS" bad "spec.services.horizon: unknown service"
eventually "$W" "bad input: an unknown release is refused, naming spec.version" h -- \
	says_ready keystone "$NS" keystone "spec.version: unknown release '1999.9'"
check "bad input: the refused ControlPlane created no service" -- \
	test -z "$(k get keystones -n "$NS" -l kupenstack.io/controlplane=bad -o name)"
k delete controlplane,keystone -n "$NS" --all --wait=false >/dev/null
k create rolebinding mallory-edit -n "$NS" --clusterrole=edit --user=mallory >/dev/null
cannot() { ! k auth can-i "$1" "$2" -n "$NS" --as mallory; }
check "isolation: a namespace editor may not create a ControlPlane or a Nova" -- \
	eval 'cannot create controlplanes.kupenstack.io && cannot create novas.kupenstack.io'
k apply -n "$OTHER" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Keystone
metadata: {name: keystone}
spec: {version: "2024.1"}
EOF
eventually "$W" "isolation: a service where the operator holds no kupenstack-services binding fails, saying Forbidden" h -- \
	says_ready keystone "$OTHER" keystone "[Ff]orbidden"
check "isolation: it created nothing in that namespace" -- \
	test -z "$(k get deploy,job -n "$OTHER" -o name)"
k delete keystone -n "$OTHER" keystone --wait=false >/dev/null
eventually "$W" "isolation: deleted, it goes (its release applied nothing: no hang on the finalizer)" h -- \
	absent_bad
section_done

# --- 1. install in dependency order ---------------------------------------------------
controlplane 2023.1 false 1
eventually "$W" "install: the ControlPlane and its five services are Ready at 2023.1" h -- \
	all_ready 2023.1
check "install: kubectl get openstack-services lists the ControlPlane and the five services" -- \
	test "$(k get openstack-services -n "$NS" -o name | wc -l)" = 6
check "install: kubectl get controlplanes shows VERSION / READY / PHASE" -- \
	bash -c "kubectl get controlplanes -n $NS | tee /dev/stderr | grep -Eq 'VERSION +READY +PHASE' && kubectl get controlplanes -n $NS | grep -Eq 'cp +2023.1 +5/5 +Ready'"
check "install: every image at the release table's 2023.1 tag" -- images_all ":2023.1-ubuntu_jammy"
check "install: the shared endpoint is inherited (glance's db-sync Job gets db-$$)" -- \
	has job "$NS" cp-glance-db-sync ".spec.template.spec.containers[0].env[0].value == \"db-$$\""
check "install: a per-service endpoint overrides it (placement's gets placement-db-$$)" -- \
	has job "$NS" cp-placement-db-sync ".spec.template.spec.containers[0].env[0].value == \"placement-db-$$\""
check "install: Nova reports its components ready (api, conductor, scheduler 1/1)" -- \
	has nova "$NS" cp-nova '.status.ready == "3/3" and ([.status.components[] | .ready] == ["1/1","1/1","1/1"])'
for e in $DEPENDS; do
	a=${e%:*} b=${e#*:}
	dep_api=cp-$a-api
	check "install order: $b's db-sync Job was created after $a's api became Available" -- \
		before_or_at "$dep_api Available" "$(available_since "$dep_api")" \
		"cp-$b-db-sync created" "$(made job "cp-$b-db-sync")"
done

section_done
# --- 1b. a restarted host changes nothing ------------------------------------------------
# Every hook Job ran once per declaration: a restart runs none again (each release's state
# Secret names the digest of the Job it ran, and a digest must not differ from one process
# to the next), rolls nothing and keeps everything Ready.
jobs_of() { k get jobs -n "$NS" -o json | jq -r '.items[] | "\(.metadata.name) \(.metadata.uid)"' | sort; }
j0=$(jobs_of) g0=$(generations) rs0=$(replicasets)
stop_host h TERM
cp "${HLOG[h]}" "$WORK/h-before-restart.log"
start_host h "$PLUG" - || { echo "host did not start"; exit 3; }
# seen_ready: the restarted host has applied each of the five services and found it Ready.
seen_ready() {
	local s
	for s in $SERVICES; do
		grep 'msg="service applied"' "${HLOG[h]}" | grep -E " key=$NS/cp-$s( |\$)" |
			grep -qE ' phase=Ready( |$)' || return 1
	done
}
eventually "$W" "restart: the restarted host applied each service and found it Ready" h -- seen_ready
check "restart: no hook Job ran again (the same Jobs, by UID)" -- test "$(jobs_of)" = "$j0"
check "restart: no Deployment changed or rolled" -- \
	test "$(generations)" = "$g0" -a "$(replicasets)" = "$rs0"
check "restart: the ControlPlane and its services are still Ready at 2023.1" -- all_ready 2023.1

# Drift, by hand: a Deployment deleted and another one scaled are put back at the next
# check of a Ready service (check_interval), and all is Ready again.
uid_of() { k get "$1" -n "$NS" "$2" -o jsonpath='{.metadata.uid}' 2>/dev/null; }
glance_uid=$(uid_of deploy cp-glance-api) secret_uid=$(uid_of secret cp-nova-etc)
k delete deploy -n "$NS" cp-glance-api >/dev/null
k delete secret -n "$NS" cp-nova-etc >/dev/null
k scale deploy -n "$NS" cp-keystone-api --replicas=4 >/dev/null
# remade KIND NAME OLD_UID: there again, another object.
remade() { local u; u=$(uid_of "$1" "$2"); [ -n "$u" ] && [ "$u" != "$3" ]; }
eventually "$W" "drift: the Deployment deleted by hand (cp-glance-api) is made again" h -- \
	remade deploy cp-glance-api "$glance_uid"
eventually "$W" "drift: the conf Secret deleted by hand (cp-nova-etc) is made again" h -- \
	remade secret cp-nova-etc "$secret_uid"
eventually "$W" "drift: the Deployment scaled by hand (cp-keystone-api to 4) is back at 1" h -- \
	has deploy "$NS" cp-keystone-api '.spec.replicas == 1'
eventually "$W" "drift: the ControlPlane and its services are Ready again at 2023.1" h -- all_ready 2023.1

section_done
# --- 2. scale one component -----------------------------------------------------------
g0=$(generations) rs0=$(replicasets)
controlplane 2023.1 false 3
nova_api_3() { has nova "$NS" cp-nova '.status.components.api.ready == "3/3"' && all_ready 2023.1; }
eventually "$W" "scale: Nova's api is at 3/3 and everything Ready again" h -- nova_api_3
g1=$(generations)
check "scale: only the Deployment cp-nova-api changed (changed: $(changed "$g0" "$g1"))" -- \
	test "$(changed "$g0" "$g1")" = "cp-nova-api "
check "scale: no Deployment rolled (same ReplicaSets)" -- test "$(replicasets)" = "$rs0"

section_done
# --- 3. a conf change rolls only that service's pods ---------------------------------
g0=$(generations) rs0=$(replicasets)
controlplane 2023.1 true 3
eventually "$W" "conf: Keystone's conf Secret holds the change" h -- \
	bash -c "kubectl get secret -n $NS cp-keystone-etc -o jsonpath='{.data.keystone\.conf}' | base64 -d | grep -q 'debug: true'"
until_ok "$W" all_ready 2023.1
rs1=$(replicasets)
check "conf: only Keystone's api rolled (new ReplicaSets of: $(changed "$rs0" "$rs1"))" -- \
	test "$(changed "$rs0" "$rs1")" = "cp-keystone-api "
check "conf: only Keystone's Deployment changed (changed: $(changed "$g0" "$(generations)"))" -- \
	test "$(changed "$g0" "$(generations)")" = "cp-keystone-api "

section_done
# --- 4. a version bump upgrades in order ----------------------------------------------
controlplane 2024.1 true 3
eventually "$W" "upgrade: the ControlPlane and its services are Ready at 2024.1" h -- \
	all_ready 2024.1
check "upgrade: every image at the 2024.1 tag" -- images_all ":2024.1-ubuntu_jammy"
T=:2024.1-ubuntu_jammy
for s in $SERVICES; do
	done_at=$(field job "$NS" "cp-$s-db-sync" .status.completionTime)
	for d in $(deployments_of "$s"); do
		check "upgrade: $s's db-sync Job completed before $d rolled" -- \
			before_or_at "cp-$s-db-sync completed" "$done_at" "$d's 2024.1 ReplicaSet created" "$(newest_rs_made "$d" "$T")"
	done
done
for e in $DEPENDS; do
	a=${e%:*} b=${e#*:}
	check "upgrade order: $b's 2024.1 db-sync Job was created after $a's 2024.1 api pods were Ready" -- \
		before_or_at "cp-$a-api 2024.1 pod Ready" "$(pod_ready_at "cp-$a-api" "$T")" \
		"cp-$b-db-sync created" "$(made job "cp-$b-db-sync")"
done

section_done
# --- 5. deletion ------------------------------------------------------------------------
k delete controlplane -n "$NS" cp --wait=false >/dev/null
gone() {
	! k get controlplane -n "$NS" cp &&
		[ -z "$(k get "$(echo $SERVICES | tr ' ' ,)" -n "$NS" -o name)" ] &&
		[ -z "$(k get deploy,rs,job,secret -n "$NS" -l app.kubernetes.io/managed-by=kupenstack -o name)" ] &&
		[ -z "$(k get secret -n "$NS" -o name | grep kupenstack-release)" ]
}
eventually "$W" "delete: the ControlPlane, its services and everything their releases made are gone" h -- gone
# (This namespace's only: the host serves every namespace, and another script's may still be
# going away.)
# (The line's fields come in no fixed order: key= may stand before or after service=.)
order=$(grep 'msg="deleting service"' "${HLOG[h]}" | grep -E " key=$NS/cp( |\$)" |
	grep -o ' service=[A-Za-z]*' | sed 's/.*service=//' | tr '\n' ' ')
check "delete: the services were deleted in reverse order ($order)" -- \
	test "$order" = "Neutron Nova Placement Glance Keystone "

finish
