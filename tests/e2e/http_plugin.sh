#!/usr/bin/env bash
# tests/e2e/http_plugin.sh: 1,000 objects whose reconciles each make a yielding HTTP call,
# concurrently, with correct results. A local server (tests/e2e/json_server.py) answers
# GET /answer?name=&size=&color= with a value computed from all three after a random
# 5-40 ms, and counts the requests in flight; the plugin (tests/e2e/plugins/http/
# widget.lua) asks it about each Widget and writes the answer to status. 1,000 Widgets
# are created in a namespace of our own (one multi-document kubectl create), then
# `kupenstack run --concurrency 8` starts: every Widget gets the answer for its own name
# and spec (a result handed to the wrong coroutine would show), the server saw requests
# overlap (but never more than 8), no reconcile failed, and the host stayed up. Needs
# KUBECONFIG (admin) and applies tests/kube/widget-crd.yaml. BENCH-like figures (how
# long it took) are printed as # lines, not judged. Prints TAP lines and `N passed,
# N failed`; exits 1 on any failure, 2 without KUBECONFIG.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${KS_HTTP_N:-1000}
NS=ks-e2e-http-$$
PLUGINS=$(mktemp -d "$WORK/plugins.XXXXXX")
SRV_PID=

stop_server() { [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null; }
trap 'stop_server; cleanup' EXIT

k apply -f "$TOP/tests/kube/widget-crd.yaml" >/dev/null
k wait --for condition=established --timeout=60s crd/widgets.test.kupenstack.io >/dev/null
new_ns "$NS"

python3 "$E2E/json_server.py" serve "$WORK/port" 2>"$WORK/server.log" &
SRV_PID=$!
if ! until_ok 20 test -s "$WORK/port"; then
	echo "the server did not start" >"$OUT"
	cat "$WORK/server.log" >>"$OUT"
	fail "the local JSON server starts"
	finish
fi
BASE=http://127.0.0.1:$(cat "$WORK/port")
sed "s|@BASE_URL@|$BASE|" "$E2E/plugins/http/widget.lua" >"$PLUGINS/widget.lua"

stats() { curl -sf "$BASE/stats"; }
stat_of() { stats | jq -r ".$1"; }

# ---- 1,000 Widgets ---------------------------------------------------------------------

COLORS=(red green blue amber violet)
for ((i = 0; i < N; i++)); do
	printf -- '---\napiVersion: test.kupenstack.io/v1\nkind: Widget\nmetadata:\n  name: w-%04d\n  namespace: %s\nspec:\n  size: %d\n  color: "%s"\n' \
		"$i" "$NS" $(((i * 37) % 101)) "${COLORS[$((i % 5))]}-$((i % 7))"
done >"$WORK/widgets.yaml"

t0=$SECONDS
check "$N Widgets are created in one kubectl create" -- \
	k create -f "$WORK/widgets.yaml" --request-timeout=300s
echo "# created $N Widgets in $((SECONDS - t0)) s"
count_is() { [ "$(k get widgets -n "$NS" -o name | wc -l)" -eq "$N" ]; }
check "they are all there" -- count_is

# ---- the host --------------------------------------------------------------------------

t0=$SECONDS
if ! start_host h "$PLUGINS" "$NS" --concurrency 8; then
	echo "the host did not come up" >"$OUT"
	fail "the host starts with the HTTP plugin" h
	finish
fi
pass "the host starts with the HTTP plugin"

# all_right: every Widget has the answer for its own name and spec (json_server.py verify).
all_right() {
	k get widgets -n "$NS" -o json | python3 "$E2E/json_server.py" verify "$N"
}

# Listing 1,000 objects is not free for a shared apiserver: look every 2 s.
end=$((SECONDS + 600))
until all_right >"$OUT" 2>&1 || [ "$SECONDS" -ge "$end" ]; do
	sleep 2
done
echo "# all $N statuses right $((SECONDS - t0)) s after the host started: $(head -n1 "$OUT")"
check "every Widget's status has the answer for its own name and spec" h -- all_right
own_names() {
	k get widgets -n "$NS" -o json |
		jq -e '[.items[] | select(.status.name != .metadata.name) | .metadata.name] |
			if length == 0 then true else (., false) end'
}
check "status.name is the Widget's own name, for every Widget" h -- own_names

stats >"$WORK/stats.json"
echo "# server: $(cat "$WORK/stats.json")"
check "the server was asked about every Widget" -- \
	jq -e ".names == $N and .requests >= $N" "$WORK/stats.json"
check "the server saw requests in flight at once (max in flight > 1)" -- \
	jq -e '.max_in_flight > 1' "$WORK/stats.json"
check "never more requests in flight than --concurrency 8" -- \
	jq -e '.max_in_flight <= 8' "$WORK/stats.json"

reconcile_total() { metric h "controller_runtime_reconcile_total{controller=\"widget\",result=\"$1\"}"; }
no_errors() {
	local e
	e=$(reconcile_total error)
	echo "reconciles: success=$(reconcile_total success) error=${e:-0}"
	[ "${e:-0}" = 0 ]
}
check "no reconcile failed" h -- no_errors
check "the host is still up (/healthz)" h -- host_answers h
stop_host h
check "SIGTERM: exit status 0" -- test "${HRC[h]}" = 0
# No finalizers: one deletecollection takes them all, where lib.sh's cleanup would patch
# each of them first, one kubectl each.
k delete --raw "/apis/test.kupenstack.io/v1/namespaces/$NS/widgets" >/dev/null 2>&1
until_ok 120 bash -c "[ -z \"\$(kubectl --request-timeout=30s get widgets -n $NS -o name)\" ]"
finish
