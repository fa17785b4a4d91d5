#!/usr/bin/env bash
# bench/bench_services.sh: a ControlPlane of the five service kinds (plugins/controlplane.lua
# on ks.service and ks.release) side by side with what an operator would run instead: a
# script of `helm upgrade --install --wait` of the same fixture charts
# (tests/fixtures/charts/osh-{keystone,glance,placement,nova,neutron}) with the same images,
# one after another in the documented order, on the same cluster ($KUBECONFIG; the stand-in
# kubelet of tests/env/kube runs the pods), each in a namespace of its own:
#   install   from nothing to every service ready at 2023.1 (ours: the ControlPlane Ready;
#             helm: the script returns, each --wait and hook done)
#   upgrade   every service to 2024.1, the same way
# and for each: wall time, API writes (POST, PUT, PATCH, DELETE; ours from the host's
# rest_client_requests_total: objects, release state, statuses, finalizers, Events; helm's
# from a `kubectl proxy -v=6` it talks through) and CPU seconds (ours: the host process's
# user + system time; helm's: its processes', children of the script). Prints both and the
# ratios (kupenstack / helm).
# needs: kube
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

if [ -z "${KUBECONFIG:-}" ]; then
	echo "bench_services: KUBECONFIG is not set; skipped" >&2
	exit 0
fi
[ -n "${KS_HELM:-}" ] || eval "$(tests/env/helm)"
KS=bin/kupenstack
TOP=$PWD
OURS=bench-svc-ks-$$
THEIRS=bench-svc-helm-$$
WORK=$(mktemp -d /tmp/kupenstack-bench-services.XXXXXX)
HOST_PID='' PROXY_PID=''
RKC=${KS_RESTRICTED_KUBECONFIG:-${KS_KUBE_DIR:-/tmp/kupenstack-kube}/restricted.kubeconfig}
SERVICES="keystone glance placement nova neutron"

k() { kubectl --cache-dir="$WORK/kcache" --request-timeout=30s "$@"; }

cleanup() {
	local o
	[ -n "$HOST_PID" ] && kill "$HOST_PID" 2>/dev/null && wait "$HOST_PID" 2>/dev/null
	[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
	for o in $(k get controlplanes,keystones,glances,placements,novas,neutrons -n "$OURS" -o name 2>/dev/null); do
		k patch "$o" -n "$OURS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
	done
	k delete namespace "$OURS" "$THEIRS" --wait=false >/dev/null 2>&1
	if [ -n "${BENCH_KEEP:-}" ]; then echo "bench_services: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
die() { echo "bench_services: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# cpu PID: user + system seconds of a live process
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }

for s in $SERVICES controlplane; do k apply -f "crds/$s.yaml" >/dev/null || die "CRD $s"; done
k wait --for condition=established --timeout=60s crd/controlplanes.kupenstack.io >/dev/null
for ns in "$OURS" "$THEIRS"; do k create namespace "$ns" >/dev/null || die "namespace $ns"; done
k create rolebinding kupenstack-services -n "$OURS" --clusterrole=kupenstack-services \
	--serviceaccount=kupenstack-system:kupenstack >/dev/null || die "rolebinding"

# --- ours ------------------------------------------------------------------------------
mkdir -p "$WORK/plugins" "$WORK/charts"
for s in $SERVICES; do
	cp "plugins/$s.lua" "$WORK/plugins/"
	ln -s "$TOP/tests/fixtures/charts/osh-$s" "$WORK/charts/$s"
	printf 'charts_dir: "%s"\npoll: 0.5\n' "$WORK/charts" >"$WORK/plugins/$s.config.yaml"
done
cp plugins/controlplane.lua "$WORK/plugins/"
printf 'poll: 0.5\n' >"$WORK/plugins/controlplane.config.yaml"
MPORT=$(free_port)
"$KS" run --kubeconfig "$RKC" --plugins "$WORK/plugins" --namespace "$OURS" \
	--metrics-addr "127.0.0.1:$MPORT" >"$WORK/host.log" 2>&1 </dev/null &
HOST_PID=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$MPORT/healthz" && break; sleep 0.3; done
host_writes() {
	curl -sf "http://127.0.0.1:$MPORT/metrics" |
		awk '/^rest_client_requests_total/ && !/method="GET"/ { s += $2 } END { print s + 0 }'
}
ours_ready() { # ours_ready VERSION
	k get controlplane -n "$OURS" cp -o json | jq -e --arg v "$1" \
		'.status.phase == "Ready" and .status.version == $v and .status.ready == "5/5" and .status.observedGeneration == .metadata.generation' >/dev/null
}
ours() { # ours VERSION: prints seconds, writes, CPU seconds
	local t0 w0 c0
	w0=$(host_writes) c0=$(cpu "$HOST_PID")
	t0=$(now)
	k apply -n "$OURS" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: ControlPlane
metadata:
  name: cp
spec:
  version: "$1"
  services: {keystone: {}, glance: {}, placement: {}, nova: {}, neutron: {}}
EOF
	for _ in $(seq 3000); do ours_ready "$1" && break; sleep 0.1; done
	ours_ready "$1" || die "the ControlPlane did not get Ready at $1"
	echo "$(secs "$t0" "$(now)") $(($(host_writes) - w0)) $(awk -v a="$c0" -v b="$(cpu "$HOST_PID")" 'BEGIN { printf "%.2f", b - a }')"
}
read -r o_inst_t o_inst_w o_inst_c < <(ours 2023.1)
read -r o_up_t o_up_w o_up_c < <(ours 2024.1)

# --- helm ------------------------------------------------------------------------------
. "$(dirname "$0")/lib/helm_proxy.sh"
helm_proxy "$THEIRS"
# values VERSION CHART: every image of the chart at the release's tag, as ks.service does
values() {
	python3 - "$TOP/tests/fixtures/charts/osh-$2/values.yaml" "$1" "$2" <<'EOF'
import json, sys, yaml
v = yaml.safe_load(open(sys.argv[1]))
tag = sys.argv[2] + "-ubuntu_jammy"
print(json.dumps({"images": {"tags": {k: "docker.io/openstackhelm/%s:%s" % (sys.argv[3], tag)
                                      for k in v["images"]["tags"]}}}))
EOF
}
helm_script() { # helm_script VERSION: the charts in order, as an operator's script would
	local s
	for s in $SERVICES; do
		values "$1" "$s" >"$WORK/values-$s.json"
		"$KS_HELM" upgrade --install "cp-$s" "$TOP/tests/fixtures/charts/osh-$s" \
			--kubeconfig "$WORK/helm.kubeconfig" -n "$THEIRS" -f "$WORK/values-$s.json" \
			--wait --timeout 5m >>"$WORK/helm.out" 2>&1 || return 1
	done
}
theirs() { # theirs VERSION: prints seconds, writes, CPU seconds
	local t0 w0 c
	w0=$(proxy_writes)
	t0=$(now)
	TIMEFORMAT='%U %S'
	c=$({ time helm_script "$1" >/dev/null 2>&1 || echo FAIL; } 2>&1)
	case "$c" in *FAIL*) cat "$WORK/helm.out" >&2; die "helm failed" ;; esac
	echo "$(secs "$t0" "$(now)") $(($(proxy_writes) - w0)) $(echo "$c" | awk '{ printf "%.2f", $1 + $2 }')"
}
read -r h_inst_t h_inst_w h_inst_c < <(theirs 2023.1)
read -r h_up_t h_up_w h_up_c < <(theirs 2024.1)
[ -n "${h_up_t:-}" ] && [ -n "${o_up_t:-}" ] || die "a run failed"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
printf '%-26s %9s %9s %6s   %9s %9s %6s   %8s %8s %6s\n' "5 services, k8s 1.20" "ks time" \
	"helm time" "ratio" "ks writes" "helm" "ratio" "ks CPU" "helm CPU" "ratio"
row() {
	printf '%-26s %8ss %8ss %6s   %9s %9s %6s   %7ss %7ss %6s\n' "$1" "$2" "$5" "$(ratio "$2" "$5")" \
		"$3" "$6" "$(ratio "$3" "$6")" "$4" "$7" "$(ratio "$4" "$7")"
}
row "install to ready (2023.1)" "$o_inst_t" "$o_inst_w" "$o_inst_c" "$h_inst_t" "$h_inst_w" "$h_inst_c"
row "upgrade to 2024.1" "$o_up_t" "$o_up_w" "$o_up_c" "$h_up_t" "$h_up_w" "$h_up_c"
echo "(ratios: kupenstack / helm. ks writes are all the host's: the services' objects and"
echo " release state, the six objects' statuses and finalizers, Events; helm's all the"
echo " requests of the five commands. ks CPU is the host's (it also watches and polls the"
echo " services); helm's the five processes'. Both go in the same order; ours starts a"
echo " service when the components it depends on are ready, helm's script when the previous"
echo " command returned.)"
