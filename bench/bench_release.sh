#!/usr/bin/env bash
# bench/bench_release.sh: the release engine (stdlib/ks/release, driven by the ChartRelease
# test kind) side by side with `helm upgrade --install --wait` of the same fixture chart
# (tests/fixtures/charts/osh-svc) with the same values, on the same cluster ($KUBECONFIG;
# the stand-in kubelet of tests/env/kube runs the pods), each in a namespace of its own:
#   install      wall time from the request to every object ready (ours: the
#                ChartRelease Ready; helm: the command returns, --wait and its hooks done)
#   upgrade      an image bump of the api and of the db-sync hook Job, the same way
#   no-op        the same inputs applied again
# and the API writes (POST, PUT, PATCH, DELETE) of each: ours from the host's
# rest_client_requests_total (everything the host sent: objects, its state Secret, the
# ChartRelease's status and finalizer, Events); helm's from a `kubectl proxy -v=6` it talks
# through (every request it sent). Kubernetes 1.20 serves neither policy/v1 nor batch/v1
# CronJob, which the chart's PDB and CronJob use: helm refuses the chart as it is
# ("no matches for kind"), so both sides run with manifests.pdb_api and
# manifests.cronjob_cleanup off. Prints both and the ratios.
# needs: kube
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

if [ -z "${KUBECONFIG:-}" ]; then
	echo "bench_release: KUBECONFIG is not set; skipped" >&2
	exit 0
fi
[ -n "${KS_HELM:-}" ] || eval "$(tests/env/helm)"
KS=bin/kupenstack
TOP=$PWD
CHART=$TOP/tests/fixtures/charts/osh-svc
OURS=bench-rel-ks-$$
THEIRS=bench-rel-helm-$$
WORK=$(mktemp -d /tmp/kupenstack-bench-release.XXXXXX)
HOST_PID='' PROXY_PID=''
RKC=${KS_RESTRICTED_KUBECONFIG:-${KS_KUBE_DIR:-/tmp/kupenstack-kube}/restricted.kubeconfig}

k() { kubectl --cache-dir="$WORK/kcache" --request-timeout=30s "$@"; }

cleanup() {
	[ -n "$HOST_PID" ] && kill "$HOST_PID" 2>/dev/null && wait "$HOST_PID" 2>/dev/null
	[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
	k patch chartrelease -n "$OURS" svc --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
	k delete namespace "$OURS" "$THEIRS" --wait=false >/dev/null 2>&1
	if [ -n "${BENCH_KEEP:-}" ]; then echo "bench_release: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
die() { echo "bench_release: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

V_INSTALL='{"manifests": {"pdb_api": false, "cronjob_cleanup": false}}'
V_UPGRADE='{"manifests": {"pdb_api": false, "cronjob_cleanup": false}, "images": {"tags": {"api": "docker.io/example/svc-api:2.0", "db_sync": "docker.io/example/svc-db-sync:2.0"}}}'

k apply -f tests/e2e/chartrelease-crd.yaml -f tests/e2e/release-rbac.yaml \
	-f tests/e2e/rbac-test-kinds.yaml >/dev/null || die "cannot apply the CRD and RBAC"
k wait --for condition=established --timeout=60s crd/chartreleases.test.kupenstack.io >/dev/null
for ns in "$OURS" "$THEIRS"; do k create namespace "$ns" >/dev/null || die "namespace $ns"; done
k create rolebinding release -n "$OURS" --clusterrole=kupenstack-e2e-release \
	--serviceaccount=kupenstack-system:kupenstack >/dev/null

# --- ours ------------------------------------------------------------------------------
mkdir -p "$WORK/plugins"
cp tests/e2e/plugins/release/chartrelease.lua "$WORK/plugins/"
printf 'charts_dir: "%s"\npoll: 0.5\n' "$TOP/tests/fixtures/charts" >"$WORK/plugins/chartrelease.config.yaml"
MPORT=$(free_port)
"$KS" run --kubeconfig "$RKC" --plugins "$WORK/plugins" --namespace "$OURS" \
	--metrics-addr "127.0.0.1:$MPORT" >"$WORK/host.log" 2>&1 </dev/null &
HOST_PID=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$MPORT/healthz" && break; sleep 0.3; done
host_writes() {
	curl -sf "http://127.0.0.1:$MPORT/metrics" |
		awk '/^rest_client_requests_total/ && !/method="GET"/ { s += $2 } END { print s + 0 }'
}
applied() { grep -c 'msg="release applied"' "$WORK/host.log"; }
# The engine's own writes (objects and its state Secret), without the status, finalizer and
# Event writes of the host.
engine_writes() {
	curl -sf "http://127.0.0.1:$MPORT/metrics" |
		awk '/^kupenstack_plugin_release_writes_total/ { s += $2 } END { print s + 0 }'
}
ours_ready() { # ours_ready REVISION
	k get chartrelease -n "$OURS" svc -o json | jq -e --argjson r "$1" \
		'.status.phase == "Ready" and .status.revision == $r and .status.observedGeneration == .metadata.generation' >/dev/null
}
ours_apply() { # ours_apply VALUES REVISION: prints seconds, writes, engine writes
	local t0 w0 e0
	w0=$(host_writes) e0=$(engine_writes)
	t0=$(now)
	k apply -n "$OURS" -f - >/dev/null <<EOF
apiVersion: test.kupenstack.io/v1
kind: ChartRelease
metadata:
  name: svc
spec:
  chart: osh-svc
  values: $1
EOF
	for _ in $(seq 1200); do ours_ready "$2" && break; sleep 0.1; done
	ours_ready "$2" || die "our release did not get Ready (revision $2)"
	echo "$(secs "$t0" "$(now)") $(($(host_writes) - w0)) $(($(engine_writes) - e0))"
}
ours_noop() {
	local t0 w0 e0 n
	sleep 1
	w0=$(host_writes) e0=$(engine_writes) n=$(applied)
	t0=$(now)
	k annotate chartrelease -n "$OURS" svc "bench=$RANDOM" --overwrite >/dev/null
	for _ in $(seq 600); do [ "$(applied)" -gt "$n" ] && break; sleep 0.05; done
	sleep 0.5
	echo "$(secs "$t0" "$(now)") $(($(host_writes) - w0)) $(($(engine_writes) - e0))"
}
read -r o_inst_t o_inst_w o_inst_e < <(ours_apply "$V_INSTALL" 1)
read -r o_noop_t o_noop_w o_noop_e < <(ours_noop)
read -r o_up_t o_up_w o_up_e < <(ours_apply "$V_UPGRADE" 2)
read -r o_noop2_t o_noop2_w o_noop2_e < <(ours_noop)

# --- helm ------------------------------------------------------------------------------
. "$(dirname "$0")/lib/helm_proxy.sh"
helm_proxy "$THEIRS"
helm_apply() { # helm_apply VALUES: prints seconds and writes
	local t0 w0
	echo "$1" >"$WORK/values.json"
	w0=$(proxy_writes)
	t0=$(now)
	"$KS_HELM" upgrade --install svc "$CHART" --kubeconfig "$WORK/helm.kubeconfig" -n "$THEIRS" \
		-f "$WORK/values.json" --wait --timeout 5m >"$WORK/helm.out" 2>&1 ||
		{ cat "$WORK/helm.out" >&2; die "helm failed"; }
	echo "$(secs "$t0" "$(now)") $(($(proxy_writes) - w0))"
}
read -r h_inst_t h_inst_w < <(helm_apply "$V_INSTALL")
read -r h_noop_t h_noop_w < <(helm_apply "$V_INSTALL")
read -r h_up_t h_up_w < <(helm_apply "$V_UPGRADE")
read -r h_noop2_t h_noop2_w < <(helm_apply "$V_UPGRADE")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
printf '%-22s %11s %11s %7s   %9s %9s %11s %7s\n' "osh-svc on k8s 1.20" "kupenstack" "helm" \
	"ratio" "ks writes" "(engine)" "helm writes" "ratio"
row() {
	printf '%-22s %10ss %10ss %7s   %9s %9s %11s %7s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")" \
		"$4" "($5)" "$6" "$(ratio "$4" "$6")"
}
row "install to ready" "$o_inst_t" "$h_inst_t" "$o_inst_w" "$o_inst_e" "$h_inst_w"
row "no-op re-apply" "$o_noop_t" "$h_noop_t" "$o_noop_w" "$o_noop_e" "$h_noop_w"
row "upgrade (image bump)" "$o_up_t" "$h_up_t" "$o_up_w" "$o_up_e" "$h_up_w"
row "no-op re-apply" "$o_noop2_t" "$h_noop2_t" "$o_noop2_w" "$o_noop2_e" "$h_noop2_w"
echo "(ratios: kupenstack / helm; writes: POST, PUT, PATCH, DELETE sent to the API server; ks"
echo " writes are all the host's (the ChartRelease's status and finalizer, Events included),"
echo " (engine) those of ks.release alone: objects and its state Secret. Our hook Jobs run"
echo " before the Deployments roll, helm's after: ours waits for them in turn. Our no-op time"
echo " includes up to 0.5 s of settling after the reconcile's log line.)"
