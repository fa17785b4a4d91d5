#!/usr/bin/env bash
# tests/e2e/plugin_cli.sh: `kupenstack plugin test|run|status` as a plugin author and an
# operator use them:
#   test    the fixtures of tests/plugins (the example Widget plugin, and plugins/network.lua
#           against real Neutron and Keystone answers) pass offline; a broken copy fails,
#           and says what differs in a diff-like way;
#   run     --dry-run --once against the real cluster prints the status (and finalizer,
#           apply) patches the host would make and refuses the plugin's POST, while the
#           objects on the server stay as they were and reads (the palette's GET) go
#           through; without --once, the real controller does the same until SIGTERM;
#   status  a running `kupenstack run` lists its loaded plugin and the refused one.
# Needs KUBECONFIG (admin). Prints TAP lines and `N passed, N failed`; exits 1 on any
# failure, 2 without KUBECONFIG.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NS=ks-e2e-plugincli-$$
NH=ks-e2e-plugincli-host-$$
PLUGIN=$TOP/tests/plugins/widget/widget.lua

# ---- plugin test ------------------------------------------------------------------------

# -L: a fixture folder may be a link to another's (tests/plugins/instance-bus/fixtures/resync)
fixtures=$(find -L "$TOP/tests/plugins" -mindepth 3 -maxdepth 3 -path '*/fixtures/*' -type d | wc -l)
good() {
	"$KS" plugin test "$TOP/tests/plugins" >"$WORK/test.out" 2>&1
	local rc=$?
	cat "$WORK/test.out"
	[ "$rc" -eq 0 ] && grep -qx "$fixtures passed, 0 failed" "$WORK/test.out" &&
		grep -q '^ok .* - network/create$' "$WORK/test.out" &&
		grep -q '^ok .* - widget/painted$' "$WORK/test.out"
}
check "plugin test: the $fixtures fixtures of tests/plugins pass (exit 0)" -- good

BROKEN=$WORK/broken/widget
mkdir -p "$WORK/broken"
cp -r "$TOP/tests/plugins/widget" "$BROKEN"
cp "$PLUGIN" "$BROKEN/widget.lua"
sed -i 's/hex: "#0000ff"}/hex: "#000001"}/' "$BROKEN/fixtures/painted/expected.yaml"
sed -i 's|palette.test/colors/red|palette.test/colors/green|' "$BROKEN/fixtures/ordered/http.yaml"
broken() {
	"$KS" plugin test "$BROKEN" >"$WORK/broken.out" 2>&1
	local rc=$?
	cat "$WORK/broken.out"
	[ "$rc" -eq 1 ] && grep -qx "6 passed, 2 failed" "$WORK/broken.out"
}
check "plugin test: a broken copy fails two fixtures (exit 1) and passes the others" -- broken
readable() {
	sed -n '/^not ok .* - widget\/ordered$/,/^ok /p' "$WORK/broken.out"
	grep -qx '#   HTTP request 1 is not call 1 of http.yaml:' "$WORK/broken.out" &&
		grep -qx '#     - GET http://palette.test/colors/green' "$WORK/broken.out" &&
		grep -qx '#     + GET http://palette.test/colors/red' "$WORK/broken.out" &&
		grep -qx '#   kube\[0\].body.data.hex: expected "#000001", got "#0000ff"' "$WORK/broken.out"
}
check "plugin test: the failures say what differs (- expected, + made; expected, got)" -- readable
nofix() {
	"$KS" plugin test "$WORK/broken/widget/fixtures/painted" 2>&1
	[ $? -eq 2 ]
}
check "plugin test: a folder without fixtures is a usage error (exit 2)" -- nofix

# ---- plugin run --dry-run ---------------------------------------------------------------

k apply -f "$TOP/tests/kube/widget-crd.yaml" >/dev/null
k wait --for condition=established --timeout=60s crd/widgets.test.kupenstack.io >/dev/null
new_ns "$NS"
new_ns "$NH"

# The palette the plugin asks (GET /colors/NAME); a POST is answered 501 by http.server.
PORT=$(free_port)
mkdir -p "$WORK/palette/colors"
echo '{"hex": "#0000ff"}' >"$WORK/palette/colors/blue"
(cd "$WORK/palette" && exec python3 -m http.server "$PORT" --bind 127.0.0.1) \
	>"$WORK/palette.log" 2>&1 </dev/null &
PALETTE=$!
trap 'kill "$PALETTE" 2>/dev/null; cleanup' EXIT
until_ok 10 curl -sf "http://127.0.0.1:$PORT/colors/blue"
k apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: palette}
data: {url: "http://127.0.0.1:$PORT"}
EOF
widget "$NS" small 1 blue
widget "$NS" big 20 blue
before=$(k get widgets -n "$NS" -o json | jq -c '[.items[] | {name: .metadata.name,
	rv: .metadata.resourceVersion, finalizers: .metadata.finalizers, status: .status}]')

"$KS" plugin run "$PLUGIN" --dry-run --once --namespace "$NS" >"$WORK/dry.out" 2>"$WORK/dry.err"
dry_rc=$?
grep -v '^---$' "$WORK/dry.out" | jq -s . >"$WORK/dry.json" 2>"$WORK/dry.jq"
# doc JQ: the dry run printed a document satisfying JQ.
doc() {
	if jq -e "any(.[]; $1)" "$WORK/dry.json" >/dev/null; then return 0; fi
	echo "no document satisfies: $1"
	jq -c '.[] | {dryRun, name, subresource, body: (.body | tostring | .[0:200])}' "$WORK/dry.json"
	tail -n 5 "$WORK/dry.err"
	return 1
}
check "dry run --once: the output is YAML documents of JSON (exit 1: big's reconcile failed)" -- \
	bash -c "[ $dry_rc -eq 1 ] && [ -s '$WORK/dry.json' ] && [ ! -s '$WORK/dry.jq' ]"
check "dry run --once: prints the status patch of small (hex, Available=True, generation)" -- \
	doc '.dryRun == "PATCH" and .name == "small" and .subresource == "status" and
		.patchType == "merge" and .body.status.hex == "#0000ff" and
		.body.status.observedGeneration == 1 and
		any(.body.status.conditions[]; .type == "Available" and .status == "True")'
check "dry run --once: prints the finalizer patch the host would add first" -- \
	doc '.dryRun == "PATCH" and .name == "small" and .patchType == "json" and
		any(.body[]; .op == "add" and (.value == "test.kupenstack.io/paint" or
		.value == ["test.kupenstack.io/paint"]))'
check "dry run --once: prints kube.apply of the paint ConfigMap instead of applying it" -- \
	doc '.dryRun == "APPLY" and .resource == "configmaps/v1" and .name == "small-paint" and
		.body.data.hex == "#0000ff"'
check "dry run --once: the plugin's POST is printed, not sent" -- \
	doc '.dryRun == "HTTP" and .method == "POST" and (.url | endswith("/orders")) and
		.body.widget == "big"'
check "dry run --once: big fails visibly: its status patch says the POST was not sent" -- \
	doc '.dryRun == "PATCH" and .name == "big" and .subresource == "status" and
		any(.body.status.conditions[]; .type == "Available" and .status == "False" and
		(.message | contains("dry-run: POST http://127.0.0.1:'"$PORT"'/orders not sent")))'
unchanged() {
	local now
	now=$(k get widgets -n "$NS" -o json | jq -c '[.items[] | {name: .metadata.name,
		rv: .metadata.resourceVersion, finalizers: .metadata.finalizers, status: .status}]')
	echo "before: $before"
	echo "now:    $now"
	[ "$now" = "$before" ] && ! k get configmap small-paint -n "$NS" >/dev/null 2>&1
}
check "dry run --once: the widgets are unchanged on the server, no paint ConfigMap exists" -- \
	unchanged
palette_saw() {
	cat "$WORK/palette.log"
	grep -q '"GET /colors/blue HTTP' "$WORK/palette.log" && ! grep -q '"POST ' "$WORK/palette.log"
}
check "dry run --once: reads went through (the palette saw GETs, never a POST)" -- palette_saw

# Without --once: the real controller with its dry_run flag, until SIGTERM.
"$KS" plugin run "$PLUGIN" --dry-run --namespace "$NS" >"$WORK/ctl.out" 2>"$WORK/ctl.err" </dev/null &
CTL=$!
ctl_patched() {
	grep -v '^---$' "$WORK/ctl.out" | jq -se 'any(.[]; .dryRun == "PATCH" and .name == "small"
		and .subresource == "status" and .body.status.hex == "#0000ff")'
}
eventually 30 "dry run (controller): prints the status patch of small" -- ctl_patched
kill -TERM "$CTL"
ctl_stopped() {
	local i
	for i in $(seq 1 50); do
		alive "$CTL" || break
		sleep 0.2
	done
	wait "$CTL"
	local rc=$?
	tail -n 3 "$WORK/ctl.err"
	[ "$rc" -eq 0 ]
}
check "dry run (controller): exits 0 on SIGTERM" -- ctl_stopped
check "dry run (controller): the widgets are unchanged on the server" -- unchanged

# ---- plugin status ----------------------------------------------------------------------

HOSTDIR=$WORK/hostplugins
mkdir -p "$HOSTDIR"
cp "$PLUGIN" "$HOSTDIR/widget.lua"
printf 'return { api = 1, group = "test.kupenstack.io", version = "v1" }\n' >"$HOSTDIR/broken.lua"
if ! start_host h "$HOSTDIR" "$NH"; then
	echo "the host did not come up" >"$OUT"
	fail "plugin status: the host starts" h
	finish
fi
status_shows() {
	"$KS" plugin status --metrics-addr "127.0.0.1:${HPORT[h]}" >"$WORK/status.out" 2>&1
	local rc=$?
	cat "$WORK/status.out"
	[ "$rc" -eq 0 ] &&
		grep -Eq '^widget\.lua +Widget +loaded +[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$WORK/status.out" &&
		grep -Eq '^broken\.lua +- +refused +- ' "$WORK/status.out" &&
		grep -q "refused: plugin broken.lua: field 'kind' must be a string" "$WORK/status.out"
}
eventually 30 "plugin status: the host's widget.lua is loaded and broken.lua refused, with why" h -- \
	status_shows
metrics_say() {
	metric h 'kupenstack_plugin_load_errors_total{plugin="broken.lua"}' | grep -qx 1 &&
		metric h "kupenstack_plugin_info{plugin=\"widget.lua\",kind=\"Widget\",group=\"test.kupenstack.io\",source=\"$HOSTDIR/widget.lua\",state=\"loaded\"}" | grep -qx 1 &&
		metric h 'kupenstack_plugin_memory_bytes{plugin="widget.lua"}' | awk '{ exit !($1 > 10000) }'
}
check "plugin status: from the host's kupenstack_plugin_* series" h -- metrics_say
nohost() {
	"$KS" plugin status --metrics-addr "127.0.0.1:$(free_port)" 2>&1
	[ $? -eq 1 ]
}
check "plugin status: no host at the address: exit 1, saying so" -- nohost

finish
