#!/usr/bin/env bash
# bench/bench_admission.sh [SECONDS]: admission latency with the host's webhooks, against
# the live API server of $KUBECONFIG (skipped without one).
#
# Instance creates with ?dryRun=All (admitted, validated and never stored: the webhooks run,
# nothing accumulates), sent at 50 per second for SECONDS (default 10) through a kubectl
# proxy, one curl each, timed by curl (client side: proxy + API server + webhooks). Three
# runs side by side: no policy (the webhook configurations have no rules: the API server
# calls nothing), a trivial policy (validate returns nil), and the shipped namespace quota
# (deploy/policies/quota: sums the namespace's 50 Instances through their Flavors). For
# each: p50 and p99 of the client's latency, and the mean of the API server's own
# apiserver_admission_webhook_admission_duration_seconds (validating webhook, this run's
# requests). Then the host's resident memory with 1 and with 51 policies: what a policy
# adds. BENCH_KEEP=1 keeps the work directory.
# needs: kube
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
SECS=${1:-10}
RATE=50

if [ -z "${KUBECONFIG:-}" ]; then
	echo "bench_admission: KUBECONFIG is not set (. /tmp/kube.env); skipped" >&2
	exit 0
fi
KS=bin/kupenstack
NS=bench-adm-$$
WORK=$(mktemp -d /tmp/kupenstack-bench-admission.XXXXXX)
HOST_PID= PROXY_PID=

k() { kubectl --cache-dir="$WORK/kcache" --request-timeout=30s "$@"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

cleanup() {
	[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
	[ -n "$HOST_PID" ] && kill "$HOST_PID" 2>/dev/null && wait "$HOST_PID" 2>/dev/null
	k delete validatingwebhookconfiguration,mutatingwebhookconfiguration kupenstack --ignore-not-found >/dev/null 2>&1
	k delete clusterpolicy -l bench=admission --ignore-not-found >/dev/null 2>&1
	k delete clusterpolicy namespace-quota --ignore-not-found >/dev/null 2>&1
	k delete secret kupenstack -n kupenstack-system --ignore-not-found >/dev/null 2>&1
	k delete namespace "$NS" --wait=false >/dev/null 2>&1
	if [ -n "${BENCH_KEEP:-}" ]; then echo "bench_admission: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

k apply -f crds/ >/dev/null
k create namespace "$NS" >/dev/null
k annotate namespace "$NS" kupenstack.io/max-instances=100000 kupenstack.io/max-vcpus=100000 >/dev/null
k apply -f - >/dev/null <<EOT
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: bench-small-$$}
spec: {resource: {vcpus: 1, ram: 512, disk: 1}}
EOT
for i in $(seq 1 50); do
	printf '{"apiVersion":"kupenstack.io/v1alpha1","kind":"Instance","metadata":{"name":"vm%d"},"spec":{"flavorRef":{"name":"bench-small-%d"},"imageRef":{"name":"cirros"},"networks":[{"networkRef":{"name":"net"}}]}}\n' "$i" "$$"
done | k create -n "$NS" -f - >/dev/null

PORT=$(free_port)
"$KS" run --kubeconfig "${KS_RESTRICTED_KUBECONFIG:-$KUBECONFIG}" --plugins "$WORK" \
	--admission-addr "127.0.0.1:$PORT" --admission-audit-seconds 86400 >"$WORK/host.log" 2>&1 &
HOST_PID=$!
PROXY=$(free_port)
k proxy --port "$PROXY" >/dev/null 2>&1 &
PROXY_PID=$!
until curl -sf "http://127.0.0.1:$PROXY/version" >/dev/null; do sleep 0.2; done
until k get validatingwebhookconfiguration kupenstack >/dev/null 2>&1; do sleep 0.2; done

echo '{"apiVersion":"kupenstack.io/v1alpha1","kind":"Instance","metadata":{"generateName":"b-"},"spec":{"flavorRef":{"name":"bench-small-'$$'"},"imageRef":{"name":"cirros"},"networks":[{"networkRef":{"name":"net"}}]}}' >"$WORK/obj.json"
URL="http://127.0.0.1:$PROXY/apis/kupenstack.io/v1alpha1/namespaces/$NS/instances?dryRun=All"

# The API server's validating-webhook duration: sum and count.
webhook_metric() {
	k get --raw /metrics | awk '/^apiserver_admission_webhook_admission_duration_seconds_(sum|count)\{.*type="validating"/ { s[$1 ~ /_sum/ ? "sum" : "count"] += $2 } END { printf "%s %s\n", s["sum"] + 0, s["count"] + 0 }'
}
rules() { k get validatingwebhookconfiguration kupenstack -o json | jq '.webhooks[0].rules | length'; }

run() { # NAME
	local n=$((SECS * RATE)) i before after
	before=$(webhook_metric)
	: >"$WORK/$1.times"
	for ((i = 0; i < n; i++)); do
		curl -s -o "$WORK/$1.out.$((i % 4))" -w '%{time_total} %{http_code}\n' -X POST \
			-H 'Content-Type: application/json' --data @"$WORK/obj.json" "$URL" >>"$WORK/$1.times" &
		sleep 0.02
	done
	wait_curls
	after=$(webhook_metric)
	sort -n "$WORK/$1.times" | awk -v name="$1" -v b="$before" -v a="$after" '
		{ t[NR] = $1 * 1000; if ($2 != 201) bad++ }
		END { split(b, x, " "); split(a, y, " "); c = y[2] - x[2]
		      printf "%-10s %5d req  p50 %6.1f ms  p99 %6.1f ms  not-201 %d  apiserver webhook mean %s\n",
			name, NR, t[int(NR * 0.5)], t[int(NR * 0.99)], bad + 0,
			(c > 0 ? sprintf("%.1f ms (%d calls)", (y[1] - x[1]) / c * 1000, c) : "- (no calls)") }'
}
wait_curls() { while pgrep -P $$ curl >/dev/null; do sleep 0.1; done; }
rss() { awk '/VmRSS/ { print $2 }' "/proc/$HOST_PID/status"; }
policy() { # NAME LUA
	k apply -f - >/dev/null <<EOT
apiVersion: kupenstack.io/v1alpha1
kind: ClusterPolicy
metadata: {name: $1, labels: {bench: admission}}
spec:
  match: {kinds: [kupenstack.io/Instance], namespaces: [$NS], operations: [CREATE]}
  lua: |
    $2
EOT
}
loaded() { [ "$(k get clusterpolicy "$1" -o jsonpath='{.status.phase}')" = Loaded ]; }

echo "admission latency, $RATE req/s for $SECS s, dry-run Instance creates (client side: kubectl proxy + API server + webhooks)"
run none
policy bench-trivial 'return { validate = function() return nil end }'
until loaded bench-trivial && [ "$(rules)" -ge 1 ]; do sleep 0.2; done
sleep 2 # the API server's informer
rss1=$(rss)
run trivial
k delete clusterpolicy bench-trivial >/dev/null
k apply -f deploy/policies/quota/policy.yaml >/dev/null
until loaded namespace-quota; do sleep 0.2; done
sleep 2
run quota
echo "quota: $(grep -c . "$WORK/quota.times") requests; the quota policy sums $(k get instances -n "$NS" --no-headers | wc -l) Instances through their Flavors on each"

for i in $(seq 1 50); do policy "bench-p$i" 'return { validate = function(obj) if obj.spec.x then return "x" end end }'; done
until [ "$(k get clusterpolicy -l bench=admission -o json | jq '[.items[] | select(.status.phase == "Loaded")] | length')" = 50 ]; do sleep 0.5; done
rss51=$(rss)
echo "host resident memory: ${rss1} KiB with 1 policy, ${rss51} KiB with 51: $(((rss51 - rss1) / 50)) KiB per policy"
