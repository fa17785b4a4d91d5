#!/usr/bin/env bash
# tests/e2e/release.sh: the chart apply engine (stdlib/ks/release) driven through the real
# host by a test kind, ChartRelease (chartrelease-crd.yaml, plugins/release/), against the
# real API server, controllers and scheduler with the stand-in kubelet (tests/env/kube up),
# deploying the fixture chart tests/fixtures/charts/osh-svc (OpenStack-Helm's values
# layout) on Kubernetes 1.20:
#   install to ready (PDB policy/v1 and CronJob batch/v1 fitted to v1beta1, Service
#   protocol, namespace, labels; hooks: pre-install created, post-install Jobs by weight
#   and before the Deployments, hook-succeeded honoured, test and pre-delete hooks not
#   applied); the inventory in the release's Secret; the randomised Secret reported as a
#   nondeterministic render, then pinned; a re-apply of the same inputs makes no write
#   (the engine's count and the host's API request counters); `kubectl scale` and
#   `kubectl patch` reverted with Events naming the field (and the manager); a conf change
#   rolls only the Deployment whose hash changed; an image bump re-runs the changed Jobs
#   (immutable: re-created) before the Deployment rolls, unchanged Jobs left alone; an
#   object removed from the chart pruned; a failing Job reported with its message; dry run;
#   rollback to revision 1; isolation (another namespace, a cluster-scoped object, a forged
#   inventory entry); kill -9 of the host mid-apply; release deletion with and without the
#   pre-delete hook; quantities the API server rewrites (0.5 -> 500m) make no write; a
#   crash-looping and a never-Ready pod named in the status; pins from OpenSSL; charts
#   from a .tgz and from a chart repository served on loopback (python3 -m http.server),
#   pinned by content digest: other content under the same version refused, nothing
#   applied; bytes unlike the index's digest refused; a repository at an address the
#   operator did not allow refused.
# No timed assertions: polls with generous bounds, then outcomes, counts and order.
. "$(dirname "$0")/lib.sh"

[ -n "${KS_HELM:-}" ] || eval "$("$TOP/tests/env/helm")"
export KS_HELM

# The bound on each wait (seconds): generous for a loaded machine, not an assertion on
# speed; a mutation run lowers KS_WAIT to fail sooner.
W=${KS_WAIT:-150}
W2=$((W / 2))
NS=rel-$$
VICTIM=rel-victim-$$
PLUG=$WORK/plugins
mkdir -p "$PLUG" "$WORK/charts" "$WORK/src" "$WORK/repo"
cp "$E2E/plugins/release/chartrelease.lua" "$PLUG/"
# The operator's charts: the fixture chart as a directory and as a .tgz.
ln -s "$TOP/tests/fixtures/charts/osh-svc" "$WORK/charts/osh-svc"
"$KS_HELM" package "$TOP/tests/fixtures/charts/osh-svc" -d "$WORK/charts" >/dev/null || exit 3
# Chart repositories may be on 127.0.0.1 only (the operator's allow-list); their index is
# read at every apply (the repository changes under the test).
printf 'charts_dir: "%s"\npoll: 0.5\nallow_chart_networks: "127.0.0.1/32"\nindex_ttl: 0\n' \
	"$WORK/charts" >"$PLUG/chartrelease.config.yaml"
# A chart repository (Helm's index.yaml protocol) served on loopback: test scaffolding; the
# host's own HTTP client fetches from it.
cp -r "$TOP/tests/fixtures/charts/osh-svc" "$WORK/src/"
"$KS_HELM" package "$WORK/src/osh-svc" -d "$WORK/repo" >/dev/null || exit 3
"$KS_HELM" repo index "$WORK/repo" || exit 3
# The host stores fetched charts here (ks.core.chart.store), not in $TMPDIR.
export KS_CHART_CACHE=$WORK/chart-cache
RPORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/repo" "$RPORT" >"$WORK/repo.log" 2>&1 &
RPID=$!
REPO=http://127.0.0.1:$RPORT
until_ok 30 curl -sf -o /dev/null "$REPO/index.yaml" || exit 3

k apply -f "$E2E/chartrelease-crd.yaml" -f "$E2E/release-rbac.yaml" >/dev/null || exit 3
k wait --for condition=established --timeout=60s crd/chartreleases.test.kupenstack.io >/dev/null
until_ok 30 k get chartreleases -A || exit 3
for ns in "$NS" "$VICTIM"; do
	new_ns "$ns"
	# The operator may write workloads in both: what keeps a release out of the victim
	# namespace is the engine, not RBAC.
	k create rolebinding kupenstack-e2e-release -n "$ns" --clusterrole=kupenstack-e2e-release \
		--serviceaccount=kupenstack-system:kupenstack >/dev/null || exit 3
done

# cr NAME VALUES_JSON [EXTRA_SPEC_YAML]: create or replace the ChartRelease NAME.
cr() {
	k apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: test.kupenstack.io/v1
kind: ChartRelease
metadata:
  name: $1
spec:
  chart: osh-svc
  values: $2
${3:-}
EOF
}
crj() { field chartrelease "$NS" "$1" "$2"; }
phase_is() { [ "$(crj "$1" .status.phase)" = "$2" ] && [ "$(crj "$1" '.status.observedGeneration == .metadata.generation')" = true ]; }
ready() { phase_is "$1" Ready && [ "$(crj "$1" '.status.conditions[] | select(.type=="Ready") | .status')" = True ]; }
secret_json() { k get secret -n "$NS" "kupenstack-release-$1" -o json | jq '.data | map_values(@base64d | fromjson)'; }
inventory() { secret_json "$1" | jq -c '.inventory'; }
uid_of() { k get "$1" -n "$NS" "$2" -o jsonpath='{.metadata.uid}'; }
rs_of() { k get rs -n "$NS" -l "component=$1" -o name | sort | tr '\n' ' '; }
writes() { metric h "kupenstack_plugin_release_writes_total{release=\"$1\"}" | awk '{ print $1 + 0 }'; }
api_writes() {
	curl -sf --max-time 5 "http://127.0.0.1:${HPORT[h]}/metrics" |
		awk '/^rest_client_requests_total/ && !/method="GET"/ { s += $2 } END { print s + 0 }'
}
applied_lines() { logged h 'msg="release applied"'; }
applied_since() { [ "$(applied_lines)" -gt "$1" ]; }
# poke NAME: make the plugin reconcile NAME once more (an annotation, no spec change) and
# wait until it has.
poke() {
	local before
	before=$(applied_lines)
	k annotate chartrelease -n "$NS" "$1" "poke=$RANDOM$RANDOM" --overwrite >/dev/null
	until_ok "$W2" applied_since "$before"
}
event_like() { k get events -n "$NS" -o json | jq -e --arg r "$1" --arg m "$2" '[.items[] | select(.reason == $r and (.message | test($m)))] | length > 0'; }
t_of() { date -d "$1" +%s; }
ready_progress() { ready "$1" && [ "$(crj "$1" .status.progress)" = "$2" ]; }
ready_rev() { ready "$1" && [ "$(crj "$1" .status.revision)" = "$2" ]; }
# says NAME PHASE REGEX: the release is in PHASE and its Ready condition's message matches.
says() {
	k get chartrelease -n "$NS" "$1" -o json | jq -e --arg p "$2" --arg re "$3" \
		'.status.phase == $p and (.status.conditions[] | select(.type == "Ready") | .message | test($re))'
}
absent() { ! k get "$@"; }
absent_all() { local o; for o in "$@"; do absent -n "$NS" "$o" || return 1; done; }
KINDS=secret,configmap,service,deployment,job,cronjob.v1beta1.batch,pdb.v1beta1.policy
# traced NAME MIN: at least MIN objects carry the release's label and annotation.
traced() {
	local n
	n=$(k get "$KINDS" -n "$NS" -l "kupenstack.io/release=$1" -o json |
		jq --arg a "$NS/$1" '[.items[] | select(.metadata.annotations["kupenstack.io/release"] == $a)] | length')
	echo "$n objects traced to $1"
	[ "$n" -ge "$2" ]
}
# inventory_ok NAME: the inventory lists the Deployment svc-api with its live UID, and every
# entry has a UID.
inventory_ok() {
	local inv
	inv=$(inventory "$1")
	echo "$inv"
	jq -e 'length >= 9 and all(.[]; .uid != null)' <<<"$inv" >/dev/null &&
		[ "$(jq -r '.[] | select(.kind == "Deployment" and .name == "'"$1"'-api") | .uid' <<<"$inv")" = \
			"$(uid_of deploy "$1-api")" ]
}
not_listed() { ! inventory "$1" | jq -e --arg n "$2" '.[] | select(.name == $n)'; }
rolled_back() { ready svc && image_of svc-api | grep -q svc-api:1.0; }
last_rollback_of() { secret_json "$1" | jq -e --argjson n "$2" '.history[-1].rollback_of == $n'; }
# counts NAME KIND N [KIND N]...: exactly N objects of each KIND of the chart's instance NAME.
counts() {
	local name=$1 n
	shift
	while [ $# -gt 0 ]; do
		n=$(k get "$1" -n "$NS" -l "app.kubernetes.io/instance=$name" -o name | wc -l)
		echo "$1: $n"
		[ "$n" = "$2" ] || return 1
		shift 2
	done
}
# no_orphans NAME: every object labelled with the release (but its state) is in its
# inventory with the same UID.
no_orphans() {
	local inv live
	inv=$(inventory "$1" | jq -r '.[] | select(.uid) | .uid' | sort)
	live=$(k get "$KINDS" -n "$NS" -l "kupenstack.io/release=$1" -o json |
		jq -r --arg s "kupenstack-release-$1" '.items[] | select(.metadata.name != $s) | .metadata.uid' | sort)
	echo "inventory: $inv"
	echo "live: $live"
	[ -n "$live" ] && [ -z "$(comm -13 <(echo "$inv") <(echo "$live"))" ]
}
# release_gone NAME: the ChartRelease and every object labelled with it are gone but its
# pre-delete hook Job (left, as Helm leaves it).
release_gone() {
	absent chartrelease -n "$NS" "$1" &&
		! k get "$KINDS" -n "$NS" -l "kupenstack.io/release=$1" -o name | grep -qv "job.batch/$1-drop-db"
}
# pinned_in_use NAME: the release's svc-keys Secret holds the 24 characters its state pins.
pinned_in_use() {
	local pin have
	pin=$(secret_json "$1" | jq -r '.pins["secrets.secret_key"]')
	have=$(field secret "$NS" "$1-keys" '.data.secret_key | @base64d')
	echo "pinned '$pin', in the Secret '$have'"
	[ "${#pin}" = 24 ] && [ "$pin" = "$have" ]
}
image_of() { field deploy "$NS" "$1" '.spec.template.spec.containers[0].image'; }

# At exit the host is stopped first: the ChartReleases' finalizers go, or their namespace
# would never finish terminating.
release_cleanup() {
	local ns o
	[ -n "${HPID[h]:-}" ] && stop_host h TERM
	kill "$RPID" 2>/dev/null
	for ns in "${NAMESPACES[@]}"; do
		for o in $(k get chartreleases -n "$ns" -o name 2>/dev/null); do
			k patch "$o" -n "$ns" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
		done
	done
	cleanup
}
trap release_cleanup EXIT
# section_done: KS_FAIL_FAST=1 (mutation runs) stops at the first section with a failure.
section_done() {
	[ -n "${KS_FAIL_FAST:-}" ] && [ "$failed" -gt 0 ] && finish
	return 0
}

start_host h "$PLUG" "$NS" || { echo "host did not start"; exit 3; }

# --- 1. install ------------------------------------------------------------------------
cr svc '{}'
eventually "$W" "install: the release becomes Ready, 9/9 ready" h -- \
	ready_progress svc "9/9 ready"
check "fit: the PDB written as policy/v1 is served as policy/v1beta1" -- \
	k get poddisruptionbudgets.v1beta1.policy -n "$NS" svc-api
check "fit: the CronJob written as batch/v1 is served as batch/v1beta1" -- \
	k get cronjobs.v1beta1.batch -n "$NS" svc-cleanup
check "fit: the Service port got protocol TCP" -- \
	has service "$NS" svc-api '.spec.ports[0].protocol == "TCP"'
check "trace: every applied object carries the release's label and annotation" -- traced svc 11
check "inventory: the release's Secret lists each applied object with its live UID" -- inventory_ok svc
check "hooks: the pre-install Secret was created" -- k get secret -n "$NS" svc-fernet
check "hooks: the post-install Job db-sync completed" -- \
	has job "$NS" svc-db-sync '.status.succeeded == 1'
check "hooks: hook-succeeded: the bootstrap Job is deleted once it succeeded" -- \
	absent job -n "$NS" svc-bootstrap
check "hooks: the test hook and the pre-delete hook were not applied" -- \
	absent_all pod/svc-test job/svc-drop-db
db_done=$(field job "$NS" svc-db-sync .status.completionTime)
api_made=$(field deploy "$NS" svc-api .metadata.creationTimestamp)
check "hooks: the post-install Job completed before the Deployment was created ($db_done <= $api_made)" -- \
	test "$(t_of "$db_done")" -le "$(t_of "$api_made")"
check "determinism: the randomised Secret is reported with its field" -- \
	has chartrelease "$NS" svc '.status.conditions[] | select(.type == "Deterministic" and .status == "False") | .message | test("Secret/svc-keys .stringData.secret_key")'

section_done
# --- 2. no writes on a re-apply --------------------------------------------------------
poke svc
w0=$(writes svc) a0=$(api_writes)
poke svc
poke svc
w1=$(writes svc) a1=$(api_writes)
check "no-op: two re-applies of the same inputs: 0 engine writes ($w0 -> $w1), 0 API writes of the host ($a0 -> $a1)" -- \
	test "$w0" = "$w1" -a "$a0" = "$a1"

section_done
# --- 3. drift --------------------------------------------------------------------------
k scale deployment -n "$NS" svc-api --replicas=3 >/dev/null
k patch deployment -n "$NS" svc-worker --type merge \
	-p '{"spec":{"template":{"spec":{"containers":[{"name":"worker","image":"evil/worker:6"}]}}}}' >/dev/null
poke svc
check "drift: kubectl scale reverted (replicas 1)" -- has deploy "$NS" svc-api '.spec.replicas == 1'
check "drift: kubectl patch of the image reverted" -- \
	has deploy "$NS" svc-worker '.spec.template.spec.containers[0].image == "docker.io/example/svc-worker:1.0"'
check "drift: an Event names the scaled field" -- event_like DriftReverted 'Deployment/svc-api .spec.replicas'
check "drift: an Event names the patching manager and the field" -- \
	event_like DriftReverted 'Deployment/svc-worker .*image.* by kubectl-patch'

section_done
# --- 4. conf change rolls only what it hashes into ------------------------------------
api_rs=$(rs_of api) worker_rs=$(rs_of worker) db_uid=$(uid_of job svc-db-sync)
cr svc '{"conf": {"api": {"DEFAULT": {"debug": true}}}}'
eventually "$W" "conf: the release is Ready again" h -- \
	ready_rev svc 2
check "conf: the api Deployment rolled (a new ReplicaSet)" -- test "$(rs_of api)" != "$api_rs"
check "conf: the worker Deployment did not roll (same ReplicaSet)" -- test "$(rs_of worker)" = "$worker_rs"
check "conf: the db-sync hook Job, unchanged, was left alone (same UID)" -- \
	test "$(uid_of job svc-db-sync)" = "$db_uid"

section_done
# --- 5. image bump: changed Jobs re-run first ------------------------------------------
ks_uid=$(uid_of job svc-ks-user)
api_rs=$(rs_of api)
cr svc '{"conf": {"api": {"DEFAULT": {"debug": true}}}, "images": {"tags": {"db_sync": "docker.io/example/svc-db-sync:2.0", "ks_user": "docker.io/example/svc-ks-user:2.0", "api": "docker.io/example/svc-api:2.0"}}}'
eventually "$W" "image bump: the release is Ready again at revision 3" h -- \
	ready_rev svc 3
check "image bump: the db-sync hook Job was re-created (new UID, new image)" -- \
	has job "$NS" svc-db-sync ".metadata.uid != \"$db_uid\" and (.spec.template.spec.containers[0].image | test(\"svc-db-sync:2.0\"))"
check "immutable: the ks-user Job (template changed) was re-created" -- \
	test "$(uid_of job svc-ks-user)" != "$ks_uid"
new_rs=$(for r in $(rs_of api); do case " $api_rs " in *" $r "*) ;; *) echo "$r" ;; esac; done | head -n1)
db_done=$(field job "$NS" svc-db-sync .status.completionTime)
rs_made=$(k get -n "$NS" "$new_rs" -o jsonpath='{.metadata.creationTimestamp}' 2>/dev/null)
check "image bump: db-sync completed before the api Deployment rolled ($db_done <= $rs_made)" -- \
	test -n "$rs_made" -a "$(t_of "$db_done")" -le "$(t_of "${rs_made:-now}")"

section_done
# --- 6. prune --------------------------------------------------------------------------
V3='{"conf": {"api": {"DEFAULT": {"debug": true}}}, "images": {"tags": {"db_sync": "docker.io/example/svc-db-sync:2.0", "ks_user": "docker.io/example/svc-ks-user:2.0", "api": "docker.io/example/svc-api:2.0"}}'
cr svc "$V3, \"manifests\": {\"configmap_extra\": false}}"
eventually "$W" "prune: the ConfigMap removed from the chart is deleted" h -- \
	absent configmap -n "$NS" svc-extra
eventually "$W2" "prune: the inventory no longer lists it" -- \
	not_listed svc svc-extra

section_done
# --- 7. a failing Job ------------------------------------------------------------------
cr svc "$V3, \"manifests\": {\"configmap_extra\": false}, \"pod\": {\"fault\": {\"ks_user\": \"fail\"}}}"
eventually "$W" "failure: a failing Job turns the release Failed with the Job's message" h -- \
	says svc Failed "Job/svc-ks-user.*Job failed.*BackoffLimitExceeded"
cr svc "$V3, \"manifests\": {\"configmap_extra\": false}}"
eventually "$W" "failure: fixed, the Job is re-created and the release is Ready" h -- \
	ready svc
cr svc "$V3, \"manifests\": {\"configmap_extra\": false}, \"pod\": {\"fault\": {\"api\": \"crashloop\"}}}"
eventually "$W" "pods: a crash-looping pod is named with its container's reason and message" h -- \
	says svc Progressing "Deployment/svc-api: .*pod svc-api-[a-z0-9-]+ container api: CrashLoopBackOff: back-off"
check "pods: the message is bounded" -- \
	has chartrelease "$NS" svc '.status.conditions[] | select(.type == "Ready") | .message | length < 700'
cr svc "$V3, \"manifests\": {\"configmap_extra\": false}, \"pod\": {\"fault\": {\"api\": \"never-ready\"}}}"
eventually "$W" "pods: a pod that never gets Ready is named" h -- \
	says svc Progressing "Deployment/svc-api: .*pod svc-api-[a-z0-9-]+ container api running but not Ready"
# Fixed: the fault annotation the chart no longer declares is removed from the template
# (the live object held every declared field: only the changed declaration tells).
cr svc "$V3, \"manifests\": {\"configmap_extra\": false}}"
eventually "$W" "pods: fixed, the annotation no longer declared is gone and the release Ready" h -- \
	ready svc
check "pods: the api Deployment's template has no fault annotation" -- \
	has deploy "$NS" svc-api '.spec.template.metadata.annotations["kupenstack.io/fake-kubelet"] == null'

section_done
# --- 8. dry run ------------------------------------------------------------------------
gen=$(field deploy "$NS" svc-worker .metadata.generation)
cr svc "$V3, \"manifests\": {\"configmap_extra\": false}, \"pod\": {\"replicas\": {\"worker\": 2}}}" "  dryRun: true"
eventually "$W2" "dry run: the plan names the Deployment and the field it would change" h -- \
	has chartrelease "$NS" svc '.status.plan[] | select(.action == "update" and .object == "Deployment/svc-worker" and (.fields[0] | test("spec.replicas")))'
check "dry run: nothing was written (the Deployment's generation is unchanged)" -- \
	test "$(field deploy "$NS" svc-worker .metadata.generation)" = "$gen"

section_done
# --- 9. rollback -----------------------------------------------------------------------
cr svc "$V3, \"manifests\": {\"configmap_extra\": false}}" "  rollbackTo: 1"
eventually "$W" "rollback: to revision 1: the api image is 1.0 again and the release Ready" h -- \
	rolled_back
check "rollback: recorded as a new revision that names revision 1" -- \
	last_rollback_of svc 1
check "rollback: the pruned ConfigMap is back (revision 1 had it)" -- k get configmap -n "$NS" svc-extra

section_done
# --- 10. isolation ---------------------------------------------------------------------
k create configmap -n "$VICTIM" bystander --from-literal=a=b >/dev/null
cr svc "{\"manifests\": {\"foreign_namespace\": \"$VICTIM\"}}"
eventually "$W2" "isolation: an object naming another namespace refuses the render, naming it" h -- \
	says svc Failed "ConfigMap/svc-planted names namespace '$VICTIM'"
check "isolation: nothing was written in the other namespace" -- \
	absent configmap -n "$VICTIM" svc-planted
cr svc '{"manifests": {"cluster_role": true}}'
eventually "$W2" "isolation: a cluster-scoped object (ClusterRole) refuses the render" h -- \
	says svc Failed "ClusterRole/svc-escalate is cluster-scoped"
check "isolation: no ClusterRole was created" -- \
	absent clusterrole svc-escalate
# A namespace editor forges an inventory entry pointing at the other namespace's object;
# the next prune must not reach it (entries are names within the release's namespace).
buid=$(k get configmap -n "$VICTIM" bystander -o jsonpath='{.metadata.uid}')
forged=$(secret_json svc | jq -c --arg ns "$VICTIM" --arg uid "$buid" \
	'.inventory += [{apiVersion: "v1", kind: "ConfigMap", name: "bystander", namespace: $ns, uid: $uid}] | .inventory | tostring | @base64')
k patch secret -n "$NS" kupenstack-release-svc --type merge -p "{\"data\":{\"inventory\":$forged}}" >/dev/null
cr svc '{}'
eventually "$W" "isolation: after a forged inventory entry the release is Ready again" h -- \
	ready svc
check "isolation: the other namespace's ConfigMap named by the forged entry survives" -- \
	k get configmap -n "$VICTIM" bystander

section_done
# --- 11. pins ---------------------------------------------------------------------------
fernet=$(field secret "$NS" svc-fernet .data.key)
cr svc '{}' "  pins:
    secrets.secret_key: 24"
eventually "$W" "pins: with the random value pinned, two renders are equal (Deterministic)" h -- \
	has chartrelease "$NS" svc '.status.observedGeneration == .metadata.generation and (.status.conditions[] | select(.type == "Deterministic") | .status == "True")'
check "pins: the Secret holds the value generated once and kept in the release's state" -- \
	pinned_in_use svc
check "pre-install: the hook Secret was never rewritten (same random key as at install)" -- \
	test "$(field secret "$NS" svc-fernet .data.key)" = "$fernet"
tokens=$(metric h 'kupenstack_crypto_random_total{fn="token"}')
check "pins: the value was drawn from OpenSSL (ks.core.crypto.token called ${tokens:-0} times)" -- \
	test "${tokens:-0}" -ge 1

section_done
# --- 11b. charts from a .tgz and from a repository -------------------------------------
# Light values: no workload, no hook; the charts' content is what is tested.
LIGHT='{"manifests": {"deployment_api": false, "deployment_worker": false, "job_db_sync": false, "job_bootstrap": false, "job_ks_user": false, "job_pre_delete": false, "pdb_api": false, "cronjob_cleanup": false, "hook_pre_install": false, "pod_test": false}}'
k apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: test.kupenstack.io/v1
kind: ChartRelease
metadata: {name: tgz}
spec: {chart: osh-svc-0.1.0.tgz, values: $LIGHT}
EOF
eventually "$W" "tgz: a chart from a .tgz of the charts directory becomes Ready" h -- ready tgz
check "tgz: the chart's content digest is in the status: the .tgz's SHA-256 (as sha256sum says)" -- \
	has chartrelease "$NS" tgz ".status.chartDigest == \"sha256:$(sha256sum "$WORK/charts/osh-svc-0.1.0.tgz" | cut -d' ' -f1)\""
# crr NAME VERSION [EXTRA_SPEC_YAML] [REPO]: a ChartRelease of osh-svc from the repository.
crr() {
	k apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: test.kupenstack.io/v1
kind: ChartRelease
metadata:
  name: $1
spec:
  chart: osh-svc
  repo: ${4:-$REPO}
  version: "$2"
  values: $LIGHT
${3:-}
EOF
}
pin_of() { secret_json "$1" | jq -r '.charts | to_entries[0].value'; }
note_of() { field configmap "$NS" "$1" .data.note; }
sha1=$(sha256sum "$WORK/repo/osh-svc-0.1.0.tgz" | cut -d' ' -f1)
crr repo 0.1.0
eventually "$W" "repo: osh-svc 0.1.0 from the repository on loopback becomes Ready" h -- ready repo
check "repo: the status names the .tgz's SHA-256 as the chart's digest" -- \
	has chartrelease "$NS" repo ".status.chartDigest == \"sha256:$sha1\""
check "repo: the release's state pins that digest for (repository, chart, version)" -- \
	test "$(pin_of repo)" = "$sha1"
check "repo: the host fetched index.yaml and the .tgz itself" -- \
	grep -q 'GET /osh-svc-0.1.0.tgz' "$WORK/repo.log"
# The repository now serves other content under the same version (and says so in its
# index): refused, nothing applied.
rev=$(crj repo .status.revision)
note1=$(note_of repo-extra)
sed -i 's/then pruned/then pruned (repackaged)/' "$WORK/src/osh-svc/templates/configmap-extra.yaml"
"$KS_HELM" package "$WORK/src/osh-svc" -d "$WORK/repo" >/dev/null
"$KS_HELM" repo index "$WORK/repo"
sha2=$(sha256sum "$WORK/repo/osh-svc-0.1.0.tgz" | cut -d' ' -f1)
poke repo
check "repo: other content under version 0.1.0 turns the release Failed naming both digests" -- \
	says repo Failed "osh-svc 0.1.0 .*lists content sha256:$sha2 but the release is pinned to sha256:$sha1.*nothing applied"
check "repo: nothing was applied (the ConfigMap holds the pinned content, same revision)" -- \
	test "$(note_of repo-extra)" = "$note1" -a "$(crj repo .status.revision)" = "$rev"
crr repo 0.1.0 "  digest: sha256:$sha2"
eventually "$W" "repo: with spec.digest naming the new content, it is applied" h -- \
	has configmap "$NS" repo-extra '.data.note | test("repackaged")'
# A repository whose bytes are not what its index says (version 0.2.0, never fetched).
sed -i 's/^version: .*/version: 0.2.0/' "$WORK/src/osh-svc/Chart.yaml"
"$KS_HELM" package "$WORK/src/osh-svc" -d "$WORK/repo" >/dev/null
"$KS_HELM" repo index "$WORK/repo"
sha3=$(sha256sum "$WORK/repo/osh-svc-0.2.0.tgz" | cut -d' ' -f1)
printf 'tampered' >>"$WORK/repo/osh-svc-0.2.0.tgz"
crr lied 0.2.0
eventually "$W2" "repo: bytes unlike the index's digest are refused" h -- \
	says lied Failed "served content sha256:[0-9a-f]{64} but its index lists sha256:$sha3"
check "repo: nothing of the refused release was applied" -- absent configmap -n "$NS" lied-extra
# A namespace editor names a repository at an address the operator did not allow (another
# loopback address; the cloud's metadata address): refused before any connection.
crr probe 0.1.0 "" "http://127.0.0.2:$RPORT"
eventually "$W2" "isolation: a repository on a loopback address not allowed is refused" h -- \
	says probe Failed "127.0.0.2 is a loopback address"
crr probe 0.1.0 "" "http://169.254.169.254/charts"
eventually "$W2" "isolation: the metadata address is refused" h -- \
	says probe Failed "169.254.169.254 is a link-local"
# A rollback re-applies its revision's chart, not only its values: version 0.3.0 applied,
# then rollbackTo the revision of 0.1.0 (the repackaged content) brings that content back.
rev2=$(crj repo .status.revision)
sed -i 's/^version: .*/version: 0.3.0/' "$WORK/src/osh-svc/Chart.yaml"
sed -i 's/then pruned (repackaged)/then pruned (of 0.3.0)/' "$WORK/src/osh-svc/templates/configmap-extra.yaml"
"$KS_HELM" package "$WORK/src/osh-svc" -d "$WORK/repo" >/dev/null
"$KS_HELM" repo index "$WORK/repo"
crr repo 0.3.0
eventually "$W" "rollback: version 0.3.0 of the repository's chart is applied" h -- \
	has configmap "$NS" repo-extra '.data.note | test("of 0.3.0")'
crr repo 0.3.0 "  rollbackTo: $rev2"
eventually "$W" "rollback: to revision $rev2 re-applies that revision's chart (0.1.0, its digest), not 0.3.0's" h -- \
	eval "has configmap $NS repo-extra '.data.note | test(\"repackaged\")' &&
		has chartrelease $NS repo '.status.chartDigest == \"sha256:$sha2\"'"
for o in tgz repo lied probe; do k delete chartrelease -n "$NS" "$o" --wait=false >/dev/null; done

section_done
# --- 12. kill -9 mid-apply -------------------------------------------------------------
# The host kills itself (SIGKILL, the crash point release-config-applied-svc2 of
# ks.release, host/fault.h) once svc2's configuration objects are applied and before
# anything more is recorded; the ConfigMap is then dropped from the chart before the host
# comes back: the restarted host must prune it, though the killed one never recorded it
# but as an intent.
stop_host h
export KUPENSTACK_CRASH_AT=ChartRelease:release-config-applied-svc2
start_host h "$PLUG" "$NS" || { echo "host did not restart"; exit 3; }
unset KUPENSTACK_CRASH_AT
cr svc2 '{}'
wait_exit h "$W"
check "kill -9: the host was killed at the crash point (status ${HRC[h]})" -- test "${HRC[h]}" = 137
mid=$(k get all,secret,configmap -n "$NS" -l kupenstack.io/release=svc2 -o name | wc -l)
echo "# killed the host with $mid objects of svc2 applied"
cr svc2 '{"manifests": {"configmap_extra": false}}'
start_host h "$PLUG" "$NS" || { echo "host did not restart"; exit 3; }
eventually "$W" "kill -9: after a restart svc2 converges to Ready" h -- \
	ready svc2
check "kill -9: the ConfigMap applied before the kill, then dropped from the chart, is pruned" -- \
	absent configmap -n "$NS" svc2-extra
check "kill -9: one ReplicaSet per Deployment, one Job per name" -- \
	counts svc2 rs 2 job 2
check "kill -9: every object labelled svc2 is in its inventory with its UID (no orphan)" -- \
	no_orphans svc2

section_done
# --- 13. deletion ----------------------------------------------------------------------
k delete chartrelease -n "$NS" svc2 --wait=false >/dev/null
eventually "$W" "delete: svc2 is gone with everything it applied and its state" h -- \
	release_gone svc2
check "delete: svc2's pre-delete hook did not run (not asked)" -- \
	absent job -n "$NS" svc2-drop-db
k patch chartrelease -n "$NS" svc --type merge -p '{"spec":{"runPreDelete":true}}' >/dev/null
k delete chartrelease -n "$NS" svc --wait=false >/dev/null
eventually "$W" "delete: svc is gone with everything it applied" h -- \
	release_gone svc
check "delete: asked for, svc's pre-delete hook Job ran to completion (and is left, as Helm leaves it)" -- \
	has job "$NS" svc-drop-db '.status.succeeded == 1'

section_done
finish
