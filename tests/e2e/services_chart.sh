#!/usr/bin/env bash
# tests/e2e/services_chart.sh: where a service's chart comes from, its region, and the
# deletion of a service where the operator holds no kupenstack-services binding; through
# the real host against the real API server, controllers and scheduler with the stand-in
# kubelet (tests/env/kube up), in the services' test world (services_world.sh):
#   1. a ControlPlane whose charts come from a chart repository served on loopback
#      (spec.chart {repository, version}, each service's chart.digest): Ready, the status
#      names the digest, the host fetched the .tgz; its region reaches every Keystone user
#      of each service's rendered conf (endpoints.identity.auth.*.region_name), a
#      per-service region wins;
#   2. a repository chart without a digest refused naming spec.chart.digest (a Keystone and
#      a ControlPlane's spec.services.keystone.chart.digest); a digest that is not the
#      content's refused naming both digests, nothing applied (a repository's, and a chart
#      of the charts directory pinned to its content digest); a chart path that leaves the
#      charts directory refused, naming spec.chart;
#   3. deletion where the operator holds no kupenstack-services RoleBinding: a service whose
#      release applied nothing goes; one whose release applied something is held, its
#      conditions and a Warning Event naming the binding and the namespace, and goes once
#      the binding is there, with what its release made.
# No timed assertions: polls with generous bounds, then outcomes.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/services_world.sh"
# Chart repositories may be on 127.0.0.1 only (the operator's allow-list); their index is
# read at every apply.
services_world "svcc-$$" 'allow_chart_networks: "127.0.0.1/32"' 'index_ttl: 0'

services_pre_cleanup() { [ -z "${RPID:-}" ] || kill "$RPID" 2>/dev/null; }
trap services_cleanup EXIT

# A chart repository (Helm's index.yaml protocol) of the fixture charts, served on loopback:
# test scaffolding; the host's own HTTP client fetches from it.
mkdir -p "$WORK/repo"
for s in keystone glance; do
	"$KS_HELM" package "$TOP/tests/fixtures/charts/osh-$s" -d "$WORK/repo" >/dev/null || exit 3
done
"$KS_HELM" repo index "$WORK/repo" || exit 3
export KS_CHART_CACHE=$WORK/chart-cache
RPORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/repo" "$RPORT" >"$WORK/repo.log" 2>&1 &
RPID=$!
REPO=http://127.0.0.1:$RPORT/
until_ok 30 curl -sf -o /dev/null "${REPO}index.yaml" || exit 3
KSHA=sha256:$(sha256sum "$WORK/repo/keystone-0.1.0.tgz" | cut -d' ' -f1)
GSHA=sha256:$(sha256sum "$WORK/repo/glance-0.1.0.tgz" | cut -d' ' -f1)

start_host h "$PLUG" - || { echo "host did not start"; exit 3; }

ready_at() { has "$1" "$NS" "$2" '.status.observedGeneration == .metadata.generation and .status.phase == "Ready" and (.status.conditions[] | select(.type == "Ready") | .status == "True")'; }
# says KIND NS NAME REGEX: status.message and the Progressing condition's message match REGEX.
says() { has "$1" "$2" "$3" "(.status.message | test(\"$4\")) and (.status.conditions[] | select(.type == \"Progressing\") | .message | test(\"$4\"))"; }
# region_of NAME USER: the region_name of USER in the release NAME's rendered auth.yaml.
region_of() {
	k get secret -n "$NS" "$1-etc" -o jsonpath='{.data.auth\.yaml}' | base64 -d |
		awk -v u="$2:" '$1 == u { f = 1; next } f && $1 == "region_name:" { print $2; exit }'
}
regions() {
	local want=$1 rel=$2 u
	shift 2
	for u in "$@"; do
		echo "$rel $u: $(region_of "$rel" "$u")"
		[ "$(region_of "$rel" "$u")" = "$want" ] || return 1
	done
}
event_like() { k get events -n "$1" -o json | jq -e --arg r "$2" --arg m "$3" '[.items[] | select(.reason == $r and (.message | test($m)))] | length > 0'; }
nothing_of() { [ -z "$(k get deploy,job,secret -n "$1" -l "app.kubernetes.io/instance=$2" -o name)$(k get secret -n "$1" -o name | grep "kupenstack-release-$2")" ]; }

# --- 1. charts from a repository, pinned by digest; region ------------------------------
k apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: ControlPlane
metadata: {name: cp}
spec:
  version: "2024.1"
  region: Region-$$
  chart: {repository: "$REPO", version: 0.1.0}
  services:
    keystone:
      chart: {digest: "$KSHA"}
    glance:
      region: Glance-$$
      chart: {digest: "$GSHA"}
EOF
eventually "$W" "repo: Keystone and Glance from the repository on loopback are Ready" h -- \
	eval 'ready_at keystone cp-keystone && ready_at glance cp-glance'
check "repo: the status names each chart's SHA-256" -- \
	eval "has keystone $NS cp-keystone '.status.chartDigest == \"$KSHA\"' && has glance $NS cp-glance '.status.chartDigest == \"$GSHA\"'"
check "repo: the host fetched each .tgz from the repository" -- \
	eval "grep -q 'GET /keystone-0.1.0.tgz' $WORK/repo.log && grep -q 'GET /glance-0.1.0.tgz' $WORK/repo.log"
check "repo: the service objects carry the inherited repository and version with their own digest" -- \
	has keystone "$NS" cp-keystone ".spec.chart == {repository: \"$REPO\", version: \"0.1.0\", digest: \"$KSHA\"}"
check "region: inherited by Keystone's object, Glance's own on Glance's" -- \
	eval "has keystone $NS cp-keystone '.spec.region == \"Region-$$\"' && has glance $NS cp-glance '.spec.region == \"Glance-$$\"'"
check "region: the ControlPlane's region reaches Keystone's rendered conf (admin)" -- \
	regions "Region-$$" cp-keystone admin
check "region: a per-service region wins (Glance's admin and glance users)" -- \
	regions "Glance-$$" cp-glance admin glance

# --- 2. refused: no digest, another digest, a path out of the charts directory ----------
k apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Keystone
metadata: {name: k-nodigest}
spec:
  version: "2024.1"
  chart: {repository: "$REPO", name: keystone, version: 0.1.0}
---
apiVersion: kupenstack.io/v1alpha1
kind: Keystone
metadata: {name: k-other}
spec:
  version: "2024.1"
  chart: {repository: "$REPO", name: keystone, version: 0.1.0, digest: "$GSHA"}
---
apiVersion: kupenstack.io/v1alpha1
kind: Keystone
metadata: {name: k-escape}
spec:
  version: "2024.1"
  chart: ../../../../etc
---
apiVersion: kupenstack.io/v1alpha1
kind: Keystone
metadata: {name: k-abs}
spec:
  version: "2024.1"
  chart: {name: /etc/kubernetes}
---
apiVersion: kupenstack.io/v1alpha1
kind: Keystone
metadata: {name: k-local}
spec:
  version: "2024.1"
  chart: {name: keystone, digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000"}
---
apiVersion: kupenstack.io/v1alpha1
kind: ControlPlane
metadata: {name: cp2}
spec:
  version: "2024.1"
  chart: {repository: "$REPO", version: 0.1.0}
  services:
    keystone: {}
EOF
eventually "$W" "refused: a repository chart without a digest, naming spec.chart.digest" h -- \
	says keystone "$NS" k-nodigest "spec.chart.digest: a chart from a repository must be pinned"
check "refused: a ControlPlane's service without a digest, naming spec.services.keystone.chart.digest" -- \
	says controlplane "$NS" cp2 "spec.services.keystone.chart.digest"
eventually "$W" "refused: content unlike the digest, naming both digests" h -- \
	says keystone "$NS" k-other "lists content $KSHA but the release is pinned to $GSHA.*nothing applied"
eventually "$W" "refused: a chart of the charts directory whose content is not its pinned digest, naming both" h -- \
	says keystone "$NS" k-local "chart .*/keystone: its content has digest sha256:[0-9a-f]{64} but the release is pinned to sha256:0000000000000000000000000000000000000000000000000000000000000000; nothing applied"
check "refused: the mismatch says ChartRefused with a Warning Event" -- \
	eval "has keystone $NS k-other '.status.conditions[] | select(.type == \"Progressing\") | .reason == \"ChartRefused\"' && event_like $NS ChartRefused 'pinned to $GSHA'"
check "refused: a path leaving the charts directory, naming spec.chart" -- \
	eval "says keystone $NS k-escape \"spec.chart must name a chart of the operator's charts directory\" && says keystone $NS k-abs 'spec.chart.name must name'"
check "refused: nothing applied for any of them (no Deployment, Job, Secret, release state)" -- \
	eval "nothing_of $NS k-nodigest && nothing_of $NS k-other && nothing_of $NS k-escape && nothing_of $NS k-abs && nothing_of $NS k-local && nothing_of $NS cp2-keystone"
check "refused: the refused ControlPlane created no service" -- \
	test -z "$(k get keystones -n "$NS" -l kupenstack.io/controlplane=cp2 -o name)"
k delete keystone -n "$NS" k-nodigest k-other k-escape k-abs k-local --wait=false >/dev/null 2>&1
k delete controlplane -n "$NS" cp2 --wait=false >/dev/null 2>&1

# --- 3. deletion without the kupenstack-services binding ------------------------------
# A service that never applied anything (no binding from the start) goes.
OTHER=svcc-other-$$
new_ns "$OTHER" bare
k apply -n "$OTHER" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Keystone
metadata: {name: keystone}
spec: {version: "2024.1"}
EOF
eventually "$W" "no binding: the Keystone fails, saying Forbidden" h -- \
	has keystone "$OTHER" keystone '.status.message | test("[Ff]orbidden")'
k delete keystone -n "$OTHER" keystone --wait=false >/dev/null
eventually "$W" "no binding: deleted, a service whose release applied nothing goes (its finalizer removed)" h -- \
	k_gone keystone keystone -n "$OTHER"
# A service that applied its release, then the binding taken away: held, saying why.
k apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Keystone
metadata: {name: kd}
spec: {version: "2024.1"}
EOF
eventually "$W" "binding removed: the lone Keystone kd is Ready first" h -- ready_at keystone kd
k delete rolebinding -n "$NS" kupenstack-services >/dev/null
k delete keystone -n "$NS" kd --wait=false >/dev/null
eventually "$W" "binding removed: the deletion is held, the conditions naming the binding and the namespace" h -- \
	has keystone "$NS" kd "(.metadata.deletionTimestamp != null) and (.status.conditions[] | select(.type == \"Ready\") | .reason == \"DeletionBlocked\" and (.message | test(\"RoleBinding kupenstack-services .*in namespace $NS.*[Ff]orbidden\")))"
check "binding removed: a Warning Event DeletionBlocked says so" -- \
	event_like "$NS" DeletionBlocked "RoleBinding kupenstack-services"
check "binding removed: what the release made is still there" -- \
	k get deploy -n "$NS" kd-api
k create rolebinding kupenstack-services -n "$NS" --clusterrole=kupenstack-services \
	--serviceaccount=kupenstack-system:kupenstack >/dev/null
eventually "$W" "binding back: the deletion completes, with what the release made" h -- \
	eval "k_gone keystone kd -n $NS && nothing_of $NS kd"

finish
