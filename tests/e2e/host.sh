#!/usr/bin/env bash
# tests/e2e/host.sh: `kupenstack run` as an operator meets it: its command line and
# setup errors, then one host (plugin tests/e2e/plugins/host/widget.lua) reconciling
# Widgets in a namespace of its own: finalizer, status and conditions, what does and does
# not cause a reconcile, transient and terminal failures with their backoff, Events,
# deletion through finalize (and a finalize that fails), /metrics /healthz /readyz, and a
# SIGTERM that waits for the reconcile in flight. Needs KUBECONFIG (admin) and the Widget
# CRD (tests/kube/widget-crd.yaml, applied here). Prints TAP lines and `N passed,
# N failed`; exits 1 on any failure, 2 without KUBECONFIG.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NS=ks-e2e-host-$$
PLUGINS=$(mktemp -d "$WORK/plugins.XXXXXX")
cp "$E2E/plugins/host/widget.lua" "$PLUGINS/"

# ---- the command line ------------------------------------------------------------------

# one_error RC PATTERN CMD...: CMD exits with RC, and of what it writes to stderr exactly
# one line is not a log line (ts=...), and that line matches PATTERN.
one_error() {
	local want=$1 pattern=$2 rc errs
	shift 2
	timeout 60 "$@" >"$WORK/stdout" 2>"$WORK/stderr"
	rc=$?
	errs=$(grep -v '^ts=' "$WORK/stderr")
	printf 'exit status %d; stderr:\n' "$rc"
	cat "$WORK/stderr"
	[ "$rc" -eq "$want" ] && [ "$(printf '%s\n' "$errs" | grep -c .)" -eq 1 ] &&
		grep -Eq -- "$pattern" <<<"$errs"
}

# first_error RC PATTERN CMD...: CMD exits with RC and the first line of its stderr
# matches PATTERN (a usage text may follow).
first_error() {
	local want=$1 pattern=$2 rc
	shift 2
	timeout 60 "$@" >"$WORK/stdout" 2>"$WORK/stderr"
	rc=$?
	printf 'exit status %d; stderr:\n' "$rc"
	cat "$WORK/stderr"
	[ "$rc" -eq "$want" ] && head -n 1 "$WORK/stderr" | grep -Eq -- "$pattern"
}

help_ok() {
	"$KS" run --help >"$WORK/stdout" 2>"$WORK/stderr" || { echo "exit status $?"; return 1; }
	cat "$WORK/stdout" "$WORK/stderr"
	grep -q -- '--plugins DIR' "$WORK/stdout" && [ ! -s "$WORK/stderr" ]
}

# help_lists FLAG...: run --help names every flag run accepts.
help_lists() {
	local f missing=0
	"$KS" run --help >"$WORK/stdout" 2>&1
	for f in "$@"; do
		grep -q -- "$f\b" "$WORK/stdout" || { echo "run --help does not mention $f"; missing=1; }
	done
	return "$missing"
}

version_ok() {
	local v
	v=$("$KS" version) || { echo "exit status $?"; return 1; }
	echo "$v"
	grep -Eq '^kupenstack [^ ]+$' <<<"$v"
}

check "run with an unknown flag: exit 2, stderr names the flag" -- \
	first_error 2 "unrecognized option '--no-such-flag'" "$KS" run --no-such-flag --plugins "$PLUGINS"
check "run without --plugins: exit 2 and one line naming --plugins" -- \
	one_error 2 '^kupenstack: run needs --plugins DIR' "$KS" run
check "run --plugins on a missing directory: exit 1 and one line naming it" -- \
	one_error 1 "^kupenstack: --plugins $WORK/missing: No such file or directory" \
	"$KS" run --plugins "$WORK/missing"
check "run with an unreadable kubeconfig: exit 1 and one line naming it" -- \
	one_error 1 "^kupenstack: kubeconfig $WORK/none.kubeconfig: " \
	"$KS" run --plugins "$PLUGINS" --kubeconfig "$WORK/none.kubeconfig"
sed 's#^\( *server:\).*#\1 https://127.0.0.1:1#' "$KUBECONFIG" >"$WORK/unreachable.kubeconfig"
check "run against an unreachable API server: exit 1 and one line saying so" -- \
	one_error 1 '^kupenstack: cannot reach the API server https://127\.0\.0\.1:1' \
	"$KS" run --plugins "$PLUGINS" --namespace "$NS" --kubeconfig "$WORK/unreachable.kubeconfig"
check "run with --log-level loud: exit 2 and one line" -- \
	one_error 2 '^kupenstack: --log-level: unknown level loud' "$KS" run --plugins "$PLUGINS" --log-level loud
check "run with --concurrency 0: exit 2 and one line" -- \
	one_error 2 '^kupenstack: --concurrency' "$KS" run --plugins "$PLUGINS" --concurrency 0
check "run with --lease-duration 1: exit 2 and one line" -- \
	one_error 2 '^kupenstack: --lease-duration' "$KS" run --plugins "$PLUGINS" --lease-duration 1
check "run with --set without NAME=: exit 2 and one line naming the option" -- \
	one_error 2 '^kupenstack: --set cloud: NAME=VALUE' "$KS" run --plugins "$PLUGINS" --set cloud
check "run with --set of a bad NAME: exit 2 and one line naming it" -- \
	one_error 2 '^kupenstack: --set Cloud=x: NAME=VALUE, NAME of a-z' \
	"$KS" run --plugins "$PLUGINS" --set Cloud=x
check "run with --set-file of a missing file: exit 1 and one line naming it" -- \
	one_error 1 "^kupenstack: --set-file clouds_yaml=$WORK/missing.yaml: No such file" \
	"$KS" run --plugins "$PLUGINS" --set-file "clouds_yaml=$WORK/missing.yaml"
# A port someone else listens on.
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); sys.stdout.close(); time.sleep(120)' >"$WORK/busy.port" &
BUSY=$!
until_ok 10 test -s "$WORK/busy.port"
check "run with --metrics-addr on a port in use: exit 1 and one line saying so" -- \
	one_error 1 "^kupenstack: --metrics-addr 127\.0\.0\.1:$(cat "$WORK/busy.port"): address already in use" \
	"$KS" run --plugins "$PLUGINS" --namespace "$NS" --metrics-addr "127.0.0.1:$(cat "$WORK/busy.port")"
kill "$BUSY" 2>/dev/null
wait "$BUSY" 2>/dev/null
check "run --help: exit 0, the usage on stdout" -- help_ok
check "run --help lists the flags of run" -- \
	help_lists --plugins --kubeconfig --context --namespace --metrics-addr --leader-elect \
	--lease-duration --concurrency --set --set-file --stdlib --log-level
check "version: exit 0, 'kupenstack VERSION'" -- version_ok

# ---- one host, one namespace -----------------------------------------------------------

k apply -f "$TOP/tests/kube/widget-crd.yaml" >/dev/null
k wait --for condition=established --timeout=60s crd/widgets.test.kupenstack.io >/dev/null
new_ns "$NS"
if ! start_host h "$PLUGINS" "$NS"; then
	echo "the host did not come up" >"$OUT"
	fail "the host starts and answers /healthz" h
	finish
fi

http_code() {
	local code
	code=$(curl -s --max-time 5 -o "$WORK/body" -w '%{http_code}' "http://127.0.0.1:${HPORT[h]}$1")
	echo "GET $1: $code $(head -c 200 "$WORK/body")"
	[ "$code" = "$2" ]
}

check "/healthz answers 200" -- http_code /healthz 200
eventually 30 "/readyz answers 200 once the caches have synced" h -- http_code /readyz 200

# reconciles NAME: how many times the plugin has reconciled Widget NAME so far.
reconciles() { logged h "msg=\"e2e reconcile\".* key=$NS/$1( |$)"; }

widget "$NS" w1 3 red
eventually 30 "a new Widget gets the plugin's finalizer" h -- \
	has widget "$NS" w1 '.metadata.finalizers | index(["test.kupenstack.io/e2e"]) != null'
eventually 30 "its status: observedGeneration == generation and the plugin's fields" h -- \
	has widget "$NS" w1 '.status.observedGeneration == .metadata.generation and
		.status.phase == "Seen" and .status.size == 3 and .status.color == "red"'
check "its condition Available: True, the plugin's reason and message, lastTransitionTime and observedGeneration set" h -- \
	has widget "$NS" w1 '.status.conditions[] | select(.type == "Available") |
		.status == "True" and .reason == "E2EReady" and .message == "color red" and
		(.lastTransitionTime | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")) and
		.observedGeneration == 1'

set_spec widget "$NS" w1 '{"size": 4}'
eventually 30 "a spec update bumps observedGeneration and the status follows the spec" h -- \
	has widget "$NS" w1 '.metadata.generation == 2 and .status.observedGeneration == 2 and
		.status.size == 4'

# A status-only update must not make a reconcile. The watch delivers events of one kind
# in order, so once the host has reconciled a later spec change of another Widget, it
# has seen the status update too.
widget "$NS" sentinel 1 blue
until_ok 30 gen_caught_up widget "$NS" sentinel
until_ok 30 has widget "$NS" w1 '.status.conditions[] | select(.type == "Progressing")'
sleep 1 # the second reconcile (after the finalizer was added) has long come
before=$(reconciles w1)
k patch widget w1 -n "$NS" --subresource=status --type merge \
	-p '{"status": {"note": "written by hand"}}' >"$OUT" 2>&1
set_spec widget "$NS" sentinel '{"size": 2}'
until_ok 30 has widget "$NS" sentinel '.status.size == 2'
after=$(reconciles w1)
echo "reconciles of w1 before the status update: $before, after: $after" >"$OUT"
if [ "$before" -gt 0 ] && [ "$before" -eq "$after" ] &&
	has widget "$NS" w1 '.status.note == "written by hand"' >>"$OUT" 2>&1; then
	pass "a status-only update does not cause a reconcile"
else
	fail "a status-only update does not cause a reconcile" h
fi

t0=$(cond_of widget "$NS" w1 Available | jq -r .lastTransitionTime)
sleep 1.5 # so that a new transition time would differ from the old one
set_spec widget "$NS" w1 '{"size": 5}'
until_ok 30 has widget "$NS" w1 '.status.observedGeneration == 3'
check "lastTransitionTime is kept while the condition's status does not change" h -- \
	has widget "$NS" w1 ".status.conditions[] | select(.type == \"Available\") |
		.lastTransitionTime == \"$t0\" and .observedGeneration == 3"
check "fields of the status the plugin does not return are kept" h -- \
	has widget "$NS" w1 '.status.note == "written by hand" and .status.size == 5'
set_spec widget "$NS" w1 '{"color": "off"}'
eventually 30 "lastTransitionTime moves when the condition's status changes" h -- \
	has widget "$NS" w1 ".status.conditions[] | select(.type == \"Available\") |
		.status == \"False\" and .reason == \"E2EOff\" and .lastTransitionTime != \"$t0\""
set_spec widget "$NS" w1 '{"color": "red"}'

# ---- failures --------------------------------------------------------------------------

failures() { logged h "msg=\"reconcile failed\" controller=widget key=$NS/$1 "; }

widget "$NS" wfail 1 fail
eventually 30 "nil, err: Progressing True, reason Transient, the error as message" h -- \
	has widget "$NS" wfail '.status.conditions[] | select(.type == "Progressing") |
		.status == "True" and .reason == "Transient" and
		(.message | contains("boom: e2e transient failure"))'
check "nil, err on a new object: Available False, reason Transient" h -- \
	has widget "$NS" wfail '.status.conditions[] | select(.type == "Available") |
		.status == "False" and .reason == "Transient" and
		(.message | contains("boom: e2e transient failure"))'

errors_grow() {
	local n
	n=$(metric h 'controller_runtime_reconcile_total{controller="widget",result="error"}')
	echo "reconcile_total{result=error} is '$n'; $(failures wfail) 'reconcile failed' lines for wfail"
	[ "${n:-0}" -ge 3 ] && [ "$(failures wfail)" -ge 3 ]
}
eventually 30 "a failed reconcile is retried (reconcile_total{result=\"error\"} grows)" h -- errors_grow

# The retries back off: base 5 ms doubling, jittered by at most 10 %, so failure n + 1
# comes at least 0.9 * 5 ms * (2^n - 1) after the first. Count the failures of wfail
# against the time the log's timestamps give (one more allowed: a watch event may add a
# try): a slow machine makes fewer, never more; without a backoff there are hundreds.
backoff_ok() {
	grep -E "msg=\"reconcile failed\" controller=widget key=$NS/wfail " "${HLOG[h]}" |
		python3 -c '
import sys, datetime, math
ts = [datetime.datetime.strptime(l.split()[0][3:], "%Y-%m-%dT%H:%M:%S.%fZ") for l in sys.stdin]
span = (ts[-1] - ts[0]).total_seconds()
most = 2 + math.floor(math.log2(span / (0.9 * 0.005) + 1))
print("%d failures over %.3f s; a backoff allows at most %d" % (len(ts), span, most))
sys.exit(0 if 8 <= len(ts) <= most else 1)'
}
eventually 60 "retries back off: failures (8 and more) no more than the backoff allows over their span" h -- \
	backoff_ok

set_spec widget "$NS" wfail '{"color": "green"}'
eventually 30 "once the error is gone: Available True and Progressing False" h -- \
	has widget "$NS" wfail '([.status.conditions[] | select(.type == "Available")][0] |
		.status == "True" and .reason == "E2EReady") and
		([.status.conditions[] | select(.type == "Progressing")][0] | .status == "False")'

widget "$NS" wterm 1 terminal
eventually 30 "ctx.terminal(msg, reason): Progressing False with that reason and message" h -- \
	has widget "$NS" wterm '.status.conditions[] | select(.type == "Progressing") |
		.status == "False" and .reason == "InvalidConfiguration" and
		.message == "e2e: the color terminal is not allowed"'
check "ctx.terminal(msg, reason): Available False, reason InvalidConfiguration" h -- \
	has widget "$NS" wterm '.status.conditions[] | select(.type == "Available") |
		.status == "False" and .reason == "InvalidConfiguration"'
check "ctx.terminal: the log says the reconcile failed for good" h -- \
	in_log h "msg=\"reconcile failed for good\" controller=widget key=$NS/wterm reason=InvalidConfiguration"
sleep 1
n1=$(reconciles wterm)
sleep 4
n2=$(reconciles wterm)
echo "reconciles of wterm: $n1, then 4 s later $n2; 'reconcile failed' lines: $(failures wterm)" >"$OUT"
if [ "$n1" -ge 1 ] && [ "$n1" -eq "$n2" ] && [ "$(failures wterm)" -eq 0 ]; then
	pass "ctx.terminal: no retry"
else
	fail "ctx.terminal: no retry" h
fi

# A status written onto the version read only: the plugin plays another writer that sets
# status.n to 100 after the host read the Widget (n absent); the host's write of n = 1,
# computed from that older copy, must not land over it: refused (a conflict), the Widget
# is looked at again from the newer copy, and n becomes 101.
widget "$NS" wstale 1 stale
eventually 30 "status: a write computed from an older copy does not overwrite a newer status (n 101)" h -- \
	has widget "$NS" wstale '.status.n == 101'
check "status: and no reconcile failed for it" h -- test "$(failures wstale)" -eq 0

# A reconcile called again at once after a write starts from the version that write
# returned, not from the cache's older copy (which the watch has not replaced yet): the
# plugin adds 1 to status.n on each call and asks to be called again at once, 19 times;
# each n from 0 to 19 is read exactly once. Read from an older copy, an n is read twice
# (and the write computed from it is refused as a conflict).
counted_once() {
	local seen
	seen=$(grep -E "msg=\"e2e count\".* key=$NS/wcount( |$)" "${HLOG[h]}" |
		sed -n 's/.* n=\([0-9]*\).*/\1/p' | sort -n | tr '\n' ' ')
	echo "the n each call read: $seen"
	[ "$seen" = "$(seq 0 19 | tr '\n' ' ')" ]
}
widget "$NS" wcount 1 count
eventually 60 "status: a plugin called again at once after each write counts to 20" h -- \
	has widget "$NS" wcount '.status.n == 20'
check "status: each call read the version the write before it returned (each n once)" h -- counted_once

# ---- Events ----------------------------------------------------------------------------

# events_of NAME REASON: the Events about Widget NAME with REASON, one JSON line each.
events_of() {
	k get events -n "$NS" -o json |
		jq -c --arg n "$1" --arg r "$2" '.items[] | select(.involvedObject.kind == "Widget" and
			.involvedObject.name == $n and .reason == $r) |
			{type, reason, message, count, source: .source.component}'
}

plugin_event() {
	events_of w1 E2EReconciled | tee /dev/stderr |
		jq -se 'length >= 1 and (.[0] | .type == "Normal" and
			(.message | startswith("the e2e plugin saw")) and .source == "kupenstack")'
}
eventually 30 "Events: the plugin's ctx.event is on the object" h -- plugin_event

aggregated() {
	events_of wfail ReconcileFailed | tee /dev/stderr |
		jq -se 'length >= 1 and length <= 2 and (.[0].type == "Warning") and
			(.[0].message | contains("boom: e2e transient failure")) and
			([.[].count] | max > 1)'
}
eventually 30 "Events: the host's ReconcileFailed warnings, aggregated (count > 1, at most 2 Events)" h -- aggregated
terminal_event() {
	events_of wterm InvalidConfiguration | tee /dev/stderr | jq -se 'length >= 1 and .[0].type == "Warning"'
}
eventually 30 "Events: a terminal failure is a Warning with its reason" h -- terminal_event

# ---- deletion --------------------------------------------------------------------------

gone() {
	local got
	got=$(k get widget "$1" -n "$NS" -o name 2>&1)
	echo "$got"
	grep -q NotFound <<<"$got"
}

deleted() {
	k delete widget w1 -n "$NS" --timeout=60s || return 1
	gone w1 && in_log h "msg=\"e2e finalize\".* key=$NS/w1( |$)" &&
		in_log h "msg=\"finalized\" controller=widget key=$NS/w1( |$)"
}
check "kubectl delete waits for finalize; the finalizer is removed; the object is gone" h -- deleted

widget "$NS" wstuck 1 stuck
until_ok 30 gen_caught_up widget "$NS" wstuck
k delete widget wstuck -n "$NS" --wait=false >/dev/null
eventually 30 "a failing finalize: the error in the conditions" h -- \
	has widget "$NS" wstuck '.status.conditions[] | select(.type == "Progressing") |
		.status == "True" and (.message | contains("e2e: cannot let go yet"))'
check "a failing finalize keeps the object and the finalizer" h -- \
	has widget "$NS" wstuck '.metadata.deletionTimestamp != null and
		(.metadata.finalizers | index(["test.kupenstack.io/e2e"]) != null)'
finalize_event() {
	events_of wstuck FinalizeFailed | tee /dev/stderr |
		jq -se 'length >= 1 and .[0].type == "Warning" and (.[0].message | contains("cannot let go"))'
}
eventually 30 "a failing finalize: a FinalizeFailed Warning Event" h -- finalize_event
set_spec widget "$NS" wstuck '{"color": "green"}'
eventually 60 "once finalize succeeds, the object is gone" h -- gone wstuck

# ---- the HTTP endpoints ----------------------------------------------------------------

metrics_ok() {
	curl -sf --max-time 5 "http://127.0.0.1:${HPORT[h]}/metrics" >"$WORK/metrics" || { echo "no /metrics"; return 1; }
	grep -E '^(controller_runtime_reconcile_total|workqueue_depth|rest_client_requests_total)' "$WORK/metrics"
	grep -Eq '^controller_runtime_reconcile_total\{controller="widget",result="success"\} [1-9]' "$WORK/metrics" &&
		grep -Eq '^workqueue_depth\{name="widget"\} [0-9]' "$WORK/metrics" &&
		grep -Eq '^rest_client_requests_total\{.*code="200".*\} [1-9]' "$WORK/metrics"
}
check "/metrics: controller_runtime_reconcile_total, workqueue_depth, rest_client_requests_total" h -- metrics_ok

# ---- SIGTERM with a reconcile in flight --------------------------------------------------

widget "$NS" wslow 1 slow
if until_ok 30 in_log h "msg=\"e2e slow start\".* key=$NS/wslow( |$)"; then
	kill -TERM "${HPID[h]}"
	# 503 can only be seen between the SIGTERM and the exit (then nothing answers).
	eventually 60 "while draining, /readyz is not 200" h -- http_code /readyz 503
	wait_exit h 60
	echo "exit status ${HRC[h]}" >"$OUT"
	if [ "${HRC[h]}" -eq 0 ]; then pass "SIGTERM: the host exits 0"; else fail "SIGTERM: the host exits 0" h; fi
	check "SIGTERM: the reconcile in flight finished first" h -- \
		in_log h "msg=\"e2e slow end\".* key=$NS/wslow( |$)"
	check "SIGTERM: its status was written" h -- \
		has widget "$NS" wslow '.status.color == "slow" and .status.observedGeneration == .metadata.generation'
	check "SIGTERM: the log ends with 'stopped status=0'" h -- \
		sh -c "tail -n 1 '${HLOG[h]}' | grep 'msg=\"stopped\" status=0'"
else
	echo "the slow reconcile never started" >"$OUT"
	fail "SIGTERM with a reconcile in flight" h
fi

# ---- SIGTERM with a reconcile that outlasts --drain-seconds -------------------------------
# The host stops anyway when the drain time is over, and what was still in flight must
# not run into freed memory afterwards (it did: exit 139 once the sleep ended).

if start_host d "$PLUGINS" "$NS" --drain-seconds 1; then
	widget "$NS" wslow2 1 slow
	if until_ok 30 in_log d "msg=\"e2e slow start\".* key=$NS/wslow2( |$)"; then
		kill -TERM "${HPID[d]}"
		wait_exit d 60
		echo "exit status ${HRC[d]}" >"$OUT"
		if [ "${HRC[d]}" -eq 0 ]; then
			pass "SIGTERM past --drain-seconds: the host stops and exits 0 (no crash)"
		else
			fail "SIGTERM past --drain-seconds: the host stops and exits 0 (no crash)" d
		fi
		check "SIGTERM past --drain-seconds: the log says the work did not finish in time" d -- \
			in_log d 'msg="in-flight work did not finish in time; stopping anyway" seconds=1'
	else
		echo "the slow reconcile never started" >"$OUT"
		fail "SIGTERM past --drain-seconds" d
	fi
else
	fail "SIGTERM past --drain-seconds: the host starts" d
fi
check "run with --drain-seconds 0: exit 2 and one line" -- \
	one_error 2 '^kupenstack: --drain-seconds' "$KS" run --plugins "$PLUGINS" --drain-seconds 0

finish
