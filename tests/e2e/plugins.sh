#!/usr/bin/env bash
# tests/e2e/plugins.sh: the plugin host of `kupenstack run` as an operator meets it.
# Two hosts, each with a plugins directory and a namespace of its own:
#   sandbox (tests/e2e/plugins/sandbox/): malformed plugin files and bytecode refused
#     with a message naming the file and the field while the good plugins run; a second
#     plugin for a kind refused; a Widget plugin that tries io, os.execute, os.exit,
#     ffi, debug, bytecode, globals and the string library, and that breaks its
#     instruction, memory and wall-time limits: each attempt fails its reconcile with a
#     condition naming the problem, and the host and the other plugin carry on;
#   reload (tests/e2e/plugins/reload/): a Widget plugin edited, broken, failing the
#     fixtures shipped beside it (reload/widget/), reshaped, removed and put back while
#     the host runs; a Gadget plugin whose `watches` map ConfigMaps to Gadgets and which
#     `owns` a ConfigMap it applies.
# Needs KUBECONFIG (admin); installs tests/e2e/gadget-crd.yaml (and leaves it). Prints
# TAP lines and `N passed, N failed`; exits 1 on any failure, 2 without KUBECONFIG.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NS=ks-e2e-sandbox-$$
NR=ks-e2e-reload-$$
FIX=$E2E/plugins
SANDBOX=$(mktemp -d "$WORK/sandbox.XXXXXX")
RELOAD=$(mktemp -d "$WORK/reload.XXXXXX")

k apply -f "$TOP/tests/kube/widget-crd.yaml" >/dev/null
k wait --for condition=established --timeout=60s crd/widgets.test.kupenstack.io >/dev/null
if ! install_gadget_crd; then
	echo "plugins.sh: the Gadget CRD is not served" >&2
	exit 3
fi
new_ns "$NS"
new_ns "$NR"

# ---- loading: the sandbox host ---------------------------------------------------------

for f in widget gadget no_kind api2 reconcile5; do
	cp "$FIX/sandbox/$f.lua" "$SANDBOX/"
done
cp "$FIX/sandbox/bad_syntax.lua.broken" "$SANDBOX/bad_syntax.lua"
luajit -b "$FIX/sandbox/gizmo.lua" "$SANDBOX/bytecode.lua"
if ! start_host s "$SANDBOX" "$NS"; then
	echo "the host did not come up" >"$OUT"
	fail "the sandbox host starts with malformed plugins in its directory" s
	finish
fi
pass "the sandbox host starts with malformed plugins in its directory"

# refused FILE PATTERN: the log refuses FILE with an error matching PATTERN, and never
# loads it.
refused() {
	local line
	line=$(grep -E "msg=\"plugin refused\" file=$SANDBOX/$1 " "${HLOG[s]}") ||
		{ echo "no 'plugin refused' line for $1"; return 1; }
	echo "$line"
	grep -Eq -- "$2" <<<"$line" && ! in_log s "msg=\"plugin loaded\" file=$SANDBOX/$1 "
}
check "a syntax error: refused, naming the file and the line" s -- \
	refused bad_syntax.lua 'error="plugin bad_syntax.lua: bad_syntax.lua:3: .*near'
check "a table without kind: refused, naming the field" s -- \
	refused no_kind.lua "error=\"plugin no_kind.lua: field 'kind' must be a string\""
check "api = 2: refused, naming the field" s -- \
	refused api2.lua "error=\"plugin api2.lua: field 'api' must be 1"
check "reconcile = 5: refused, naming the field" s -- \
	refused reconcile5.lua "error=\"plugin reconcile5.lua: field 'reconcile' must be a function"
check "bytecode (luajit -b): refused" s -- \
	refused bytecode.lua 'error="plugin bytecode.lua: .*bytecode is refused'

k apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: test.kupenstack.io/v1
kind: Gadget
metadata: {name: g1}
spec: {size: 7}
EOF
widget "$NS" ok 1 ok
eventually 30 "the good plugins work beside the refused ones (Gadget)" s -- \
	has gadget "$NS" g1 '.status.seen == 7'
eventually 30 "the good plugins work beside the refused ones (Widget)" s -- \
	has widget "$NS" ok '.status.plugin == "sandbox" and .status.color == "ok" and .status.escaped == null'

cp "$FIX/sandbox/widget_dup.lua" "$SANDBOX/.widget_dup.tmp"
mv "$SANDBOX/.widget_dup.tmp" "$SANDBOX/widget_dup.lua"
eventually 30 "a second plugin for a kind: refused, naming the plugin that has it" s -- \
	refused widget_dup.lua 'kind Widget.test.kupenstack.io is already reconciled by widget.lua'
set_spec widget "$NS" ok '{"size": 2}'
eventually 30 "the kind stays with the first plugin" s -- \
	has widget "$NS" ok '.status.observedGeneration == 2 and .status.plugin == "sandbox"'

# ---- the sandbox -----------------------------------------------------------------------

# sandboxed COLOR PATTERN: Widget try-COLOR failed its reconcile with a Progressing
# message matching PATTERN (a jq regex), and nothing escaped.
sandboxed() {
	has widget "$NS" "try-$1" "(.status.escaped == null) and any(.status.conditions[]?;
		.type == \"Progressing\" and .status == \"True\" and (.message | test(\"$2\")))"
}

# settled COLOR: Widget try-COLOR has an outcome: something escaped, or it failed.
settled() {
	has widget "$NS" "try-$1" '.status.escaped != null or
		any(.status.conditions[]?; .type == "Progressing" and .status == "True")'
}

# tried SECS NAME COLOR PATTERN: once Widget try-COLOR has an outcome (within SECS), it
# is the failure PATTERN says.
tried() {
	until_ok "$1" settled "$3"
	check "$2" s -- sandboxed "$3" "$4"
}

gadget() {
	k apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: test.kupenstack.io/v1
kind: Gadget
metadata: {name: $1}
spec: {size: $2}
EOF
}

for c in io execute exit ffi debug loadstring loadbin global stringlib print; do
	widget "$NS" "try-$c" 1 "$c" "$WORK/escaped-$c"
done
tried 30 "io.open: the reconcile fails naming io" io "global 'io'"
tried 30 "os.execute: the reconcile fails naming execute" execute "field 'execute'"
check "os.execute: no command ran" -- test ! -e "$WORK/escaped-execute"
tried 30 "os.exit: the reconcile fails naming exit; the host lives" exit "field 'exit'"
tried 30 "require \"ffi\": the reconcile fails naming ffi" ffi "module 'ffi' not found"
tried 30 "debug.getinfo: the reconcile fails naming debug" debug "global 'debug'"
tried 30 "loadstring(string.dump(f)): the reconcile fails naming loadstring" loadstring "global 'loadstring'"
tried 30 "load(string.dump(f)): the bytecode is refused" loadbin "load refused the bytecode: "
tried 30 "assigning a global: refused" global "assignment to global 'e2e_global'"
tried 30 "the string library is read-only" stringlib "string is read-only"
eventually 30 "print goes to the host's log, not its stdout" s -- in_log s 'msg="print" plugin="widget.lua" text="e2e: a plugin printing'
check "print wrote nothing to stdout" -- bash -c "! grep -q '^e2e: a plugin printing' '${HLOG[s]}'"
check "the host is still running" s -- host_answers s

# ---- limits ----------------------------------------------------------------------------

rss_mb() { awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/${HPID[s]}/status"; }

# hog24 first: the state a hog has filled may refuse memory to anyone for a while.
widget "$NS" try-hog24 1 hog24
tried 60 "limits.memory_mb = 16: keeping 24 MiB fails, memory limit exceeded" \
	hog24 "memory limit exceeded"
widget "$NS" try-sleep5 1 sleep5
tried 60 "limits.seconds = 1: sleeping 5 s fails, wall time limit exceeded" \
	sleep5 "wall time limit exceeded"
widget "$NS" try-hog 1 hog
tried 60 "a memory hog: the reconcile fails, memory limit exceeded" hog "memory limit exceeded"
rss=$(rss_mb)
# The sanitizer build's RSS also holds ASan's quarantine (up to 256 MiB of freed memory
# kept unreused, its quarantine_size_mb) and its shadow memory (an eighth of the rest).
rss_max=256
[ "${KS_SAN:-}" = 1 ] && rss_max=$((256 + 256 + 64))
echo "the host's RSS: $rss MiB" >"$OUT"
if [ "${rss:-9999}" -lt "$rss_max" ]; then pass "a memory hog: the host's RSS stays bounded (< $rss_max MiB)"; else
	fail "a memory hog: the host's RSS stays bounded (< $rss_max MiB)" s
fi

# The hog is still there, retrying: the plugin's other objects must get their memory.
widget "$NS" keep8 1 keep8
first_try_ok() {
	until_ok 60 has widget "$NS" keep8 '.status.kept == 8 or
		any(.status.conditions[]?; .type == "Progressing" and .status == "True")'
	has widget "$NS" keep8 '.status.kept == 8' || return 1
	if grep -E "msg=\"reconcile failed\" controller=widget key=$NS/keep8 " "${HLOG[s]}"; then return 1; fi
	echo "keep8 kept 8 MiB at its first try"
}
check "after a memory hog, another Widget of the plugin keeps 8 MiB at its first try" s -- first_try_ok
widget "$NS" after 1 ok
gadget g2 9
eventually 60 "after the hogs, the same plugin reconciles a new Widget" s -- \
	has widget "$NS" after '.status.plugin == "sandbox" and .status.escaped == null'
eventually 60 "after the hogs, the other plugin reconciles a new Gadget" s -- has gadget "$NS" g2 '.status.seen == 9'

# Last, as it may take the host down with it.
widget "$NS" try-loop 1 loop
tried 60 "while true do end: the reconcile fails, instruction budget exceeded" loop "instruction budget exceeded"
check "limits.instructions = 1e6 is the budget applied" s -- \
	sandboxed loop "more than 1 million instructions"
gadget g3 11
eventually 30 "after the loop, the other plugin reconciles a new Gadget" s -- has gadget "$NS" g3 '.status.seen == 11'
check "after the loop, the host answers /healthz" s -- host_answers s
stop_host s
echo "exit status ${HRC[s]}" >"$OUT"
if [ "${HRC[s]}" -eq 0 ]; then pass "the sandbox host stops on SIGTERM (exit 0)"; else
	fail "the sandbox host stops on SIGTERM (exit 0)" s
fi

# ---- hot reload: the reload host -------------------------------------------------------

# put FIXTURE NAME: install the fixture (FIXTURE.lua, or FIXTURE.lua.broken) as plugin
# NAME.lua, atomically (a rename).
put() {
	local f=$FIX/reload/$1.lua
	[ -e "$f" ] || f=$f.broken
	cp "$f" "$RELOAD/.$2.tmp" && mv "$RELOAD/.$2.tmp" "$RELOAD/$2.lua"
}

# versions V: every Widget of $NR has status.version V, and has seen its spec.
versions() {
	local j
	j=$(k get widgets -n "$NR" -o json) || return 1
	jq -c '.items[] | {name: .metadata.name, generation: .metadata.generation, status: .status}' <<<"$j"
	jq -e --arg v "$1" '(.items | length) == 3 and all(.items[]; .status.version == $v and
		.status.observedGeneration == .metadata.generation)' <<<"$j" >/dev/null
}

put widget_one widget
put gadget gadget
if ! start_host r "$RELOAD" "$NR"; then
	echo "the host did not come up" >"$OUT"
	fail "the reload host starts" r
	finish
fi
RPID=${HPID[r]}
widget "$NR" r1 1 plain
widget "$NR" r2 1 plain
widget "$NR" r3 1 slow
eventually 30 "version one reconciles every Widget" r -- versions one

# The edit comes while version one is busy with r3: that reconcile must finish, not be
# cancelled (the old version is freed once its reconciles are done).
set_spec widget "$NR" r3 '{"size": 2}'
until_ok 30 in_log r "msg=\"e2e slow start\".*generation=2"
put widget_two widget
eventually 30 "an edited plugin is reloaded (log: plugin reloaded)" r -- \
	in_log r "msg=\"plugin reloaded\" file=$RELOAD/widget.lua kind=Widget"
eventually 30 "after the edit, every Widget shows the new version, without a restart" r -- versions two
check "the same host process" r -- test "${HPID[r]}" = "$RPID" -a -d "/proc/$RPID"
# in_flight_kept: version one's reconcile of r3 began before the reload and ended after
# it, and no reconcile of r3 failed.
in_flight_kept() {
	grep -nE 'msg="(e2e slow start|e2e slow end|plugin reloaded|reconcile failed)"' "${HLOG[r]}" | cut -c1-200
	awk -v r3="key=$NR/r3" '
		/msg="e2e slow start"/ && /generation=2/ && /one/ && !s { s = NR }
		/msg="plugin reloaded"/ && !l { l = NR }
		/msg="e2e slow end"/ && /generation=2/ && /one/ && !e { e = NR }
		/msg="reconcile failed"/ && index($0, r3 " ") { f = 1 }
		END { exit !(s && l && e && s < l && l < e && !f) }' "${HLOG[r]}"
}
check "the reconcile in flight during the edit ran to its end, not cancelled" r -- in_flight_kept

put widget_broken widget
eventually 30 "a broken version is refused, the previous one kept (log)" r -- \
	in_log r "msg=\"plugin refused\" file=$RELOAD/widget.lua error=.* kept=previous version"
set_spec widget "$NR" r1 '{"size": 5}'
eventually 30 "with the broken file in place, the previous version still reconciles" r -- \
	has widget "$NR" r1 '.status.observedGeneration == 2 and .status.size == 5 and .status.version == "two"'

# Fixtures beside the plugin (RELOAD/widget/fixtures/): version three fails them.
cp -r "$FIX/reload/widget" "$RELOAD/widget"
put widget_three widget
eventually 30 "a version failing the fixtures shipped beside it is refused, naming the fixture (log)" r -- \
	in_log r "msg=\"plugin refused\" file=$RELOAD/widget.lua error=\"plugin widget.lua: fixture widget/version failed: status.version: expected .*two.*, got .*three.* kept=previous version"
set_spec widget "$NR" r1 '{"size": 7}'
eventually 30 "... and the previous version keeps reconciling" r -- \
	has widget "$NR" r1 '.status.observedGeneration == 3 and .status.size == 7 and .status.version == "two"'
fixture_refusal_shown() {
	"$KS" plugin status --metrics-addr "127.0.0.1:${HPORT[r]}" || return 1
	"$KS" plugin status --metrics-addr "127.0.0.1:${HPORT[r]}" | grep -F widget.lua |
		grep -F refused | grep -F 'fixture widget/version failed' &&
		metric r 'kupenstack_plugin_load_errors_total{plugin="widget.lua"}' | grep -qx 2
}
check "... shown by plugin status, and counted in kupenstack_plugin_load_errors_total" r -- fixture_refusal_shown

# The fixtures run in a child process, beside the loop (cmd/vet.h): while a version's
# fixtures take 10 s (reload/slow/: a Widget of color slow, wait 10), the running version
# reconciles an edit, and its status is written before the new version's verdict is
# logged. (Run in the loop, the fixtures held it: the edit waited for the verdict.)
cp -r "$FIX/reload/slow" "$RELOAD/widget/fixtures/slow"
vetting=$(logged r "msg=\"plugin vetting\" file=$RELOAD/widget.lua ")
reloads=$(logged r "msg=\"plugin reloaded\" file=$RELOAD/widget.lua ")
# lines -gt|-eq PATTERN N: the number of lines of r's log matching PATTERN is > or = N.
lines() { test "$(logged r "$2")" "$1" "$3"; }
put widget_two widget
eventually 30 "a new version's fixtures start (log: plugin vetting)" r -- \
	lines -gt "msg=\"plugin vetting\" file=$RELOAD/widget.lua " "$vetting"
set_spec widget "$NR" r1 '{"size": 8}'
eventually 30 "while a new version's fixtures run, the running version reconciles an edit" r -- \
	has widget "$NR" r1 '.status.observedGeneration == 4 and .status.size == 8'
check "... before the new version's verdict is logged (the fixtures do not hold the loop)" r -- \
	lines -eq "msg=\"plugin reloaded\" file=$RELOAD/widget.lua " "$reloads"
eventually 30 "... and the version that passes its fixtures is reloaded once they end" r -- \
	lines -eq "msg=\"plugin reloaded\" file=$RELOAD/widget.lua " $((reloads + 1))
rm -r "$RELOAD/widget"

put widget_three widget
eventually 30 "a version with a new shape (concurrency) takes over every Widget" r -- versions three
check "... through a new controller (log: plugin loaded, twice)" r -- \
	test "$(logged r "msg=\"plugin loaded\" file=$RELOAD/widget.lua ")" -eq 2

rm "$RELOAD/widget.lua"
eventually 30 "a removed plugin file: log says plugin removed" r -- \
	in_log r "msg=\"plugin removed\" file=$RELOAD/widget.lua kind=Widget"
set_spec widget "$NR" r2 '{"size": 6}'
sleep 4
check "without the plugin, nothing reconciles the Widgets" r -- \
	has widget "$NR" r2 '.metadata.generation == 2 and .status.observedGeneration == 1'
check "the reload host is still running" r -- host_answers r
put widget_two widget
eventually 30 "the plugin put back reconciles what changed meanwhile" r -- \
	has widget "$NR" r2 '.status.observedGeneration == 2 and .status.size == 6 and .status.version == "two"'

# ---- watches and owns ------------------------------------------------------------------

k create configmap input-g1 -n "$NR" --from-literal=value=alpha >/dev/null
k apply -n "$NR" -f - >/dev/null <<EOF
apiVersion: test.kupenstack.io/v1
kind: Gadget
metadata: {name: g1}
spec: {size: 1}
EOF
eventually 30 "a Gadget reads the watched ConfigMap through kube.get" r -- has gadget "$NR" g1 '.status.copied == "alpha"'
k patch configmap input-g1 -n "$NR" --type merge -p '{"data": {"value": "beta"}}' >/dev/null
eventually 30 "watches: changing the ConfigMap re-reconciles the Gadget its map names" r -- \
	has gadget "$NR" g1 '.status.copied == "beta"'

child_ok() {
	local j
	j=$(k get configmap g1-child -n "$NR" -o json) || return 1
	jq -c '{uid: .metadata.uid, owners: .metadata.ownerReferences, data: .data}' <<<"$j"
	jq -e --arg not "${1:-}" --arg owner "$(field gadget "$NR" g1 .metadata.uid)" \
		'.data.copied == "beta" and .metadata.uid != $not and
		(.metadata.ownerReferences[0] | .kind == "Gadget" and .name == "g1" and .uid == $owner)' \
		<<<"$j" >/dev/null
}
eventually 30 "the Gadget's child ConfigMap (kube.apply) is owned by it" r -- child_ok
old=$(k get configmap g1-child -n "$NR" -o jsonpath='{.metadata.uid}')
k delete configmap g1-child -n "$NR" >/dev/null
eventually 30 "owns: deleting the child by hand makes the Gadget apply it again" r -- child_ok "$old"
eventually 30 "... and the Gadget's status names the new child" r -- \
	has gadget "$NR" g1 ".status.child != \"$old\" and .status.child != null"

stop_host r
echo "exit status ${HRC[r]}" >"$OUT"
if [ "${HRC[r]}" -eq 0 ]; then pass "the reload host stops cleanly (exit 0)"; else fail "the reload host stops cleanly (exit 0)" r; fi

finish
