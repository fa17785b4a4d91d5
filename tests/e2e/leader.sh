#!/usr/bin/env bash
# tests/e2e/leader.sh: leader election of `kupenstack run --leader-elect` as an operator
# meets it. Two hosts (--lease-duration 6) on one plugins directory and namespace:
# exactly one leads, the Lease kupenstack-system/kupenstack names it, only it
# reconciles; SIGTERM makes it exit 0 and release the Lease, and the other takes over
# and reconciles; a leader that hangs (SIGSTOP) loses the Lease to a third host, and
# when it wakes (SIGCONT) exits 1 without writing anything. The plugin
# (tests/e2e/plugins/leader/widget.lua) writes the host's setting cluster (--set cluster=NAME) into
# status.by. The Lease is the host's fixed one: while a live holder has it (another
# run, bench/bench_leader.sh) this waits up to 60 s, then fails saying who holds it.
# Needs KUBECONFIG (admin). Prints TAP lines and `N passed, N failed`; exits 1 on any
# failure, 2 without KUBECONFIG.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NS=ks-e2e-leader-$$
LEASE_NS=kupenstack-system
LEASE=kupenstack
PLUGINS=$(mktemp -d "$WORK/plugins.XXXXXX")
cp "$E2E/plugins/leader/widget.lua" "$PLUGINS/"

lease_json() { k get lease "$LEASE" -n "$LEASE_NS" -o json; }
holder() { lease_json 2>/dev/null | jq -r '.spec.holderIdentity // ""'; }

# lease_free: no Lease, no holder, or a holder that has not renewed it for longer than
# its duration (and a margin).
lease_free() {
	local j h renew dur age
	j=$(lease_json 2>/dev/null) || return 0
	h=$(jq -r '.spec.holderIdentity // ""' <<<"$j")
	renew=$(jq -r '.spec.renewTime // ""' <<<"$j")
	dur=$(jq -r '.spec.leaseDurationSeconds // 15' <<<"$j")
	[ -n "$h" ] && [ -n "$renew" ] || return 0
	age=$(($(date +%s) - $(date -d "$renew" +%s)))
	echo "the Lease $LEASE_NS/$LEASE is held by $h, renewed $age s ago"
	[ "$age" -gt $((dur + 5)) ]
}

# start NAME: a leader-elect host whose plugin signs its status with e2e-NAME.
start() {
	start_host "$1" "$PLUGINS" "$NS" --leader-elect --lease-duration 6 --set cluster="e2e-$1"
}

# identity NAME: the holder identity NAME logged when it became leader (empty if never).
identity() {
	sed -nE 's/.*msg="became leader" .*holder="?([^" ]+)"?.*/\1/p' "${HLOG[$1]}" | head -n 1
}

leads() { grep -q 'msg="became leader"' "${HLOG[$1]}"; }

reconciled_by() { logged "$1" 'msg="e2e reconcile"'; }

# holder_is NAME: the Lease names NAME's identity as its holder.
holder_is() {
	local want h
	want=$(identity "$1")
	h=$(holder)
	echo "holder '$h'; $1 logged identity '$want'"
	[ -n "$want" ] && [ "$h" = "$want" ]
}

if ! eventually 60 "the Lease $LEASE_NS/$LEASE is free to take" -- lease_free; then
	finish
fi
k apply -f "$TOP/tests/kube/widget-crd.yaml" >/dev/null
k wait --for condition=established --timeout=60s crd/widgets.test.kupenstack.io >/dev/null
new_ns "$NS"
transitions0=$(lease_json 2>/dev/null | jq -r '.spec.leaseTransitions // 0')
transitions0=${transitions0:-0} # no Lease yet

if ! start a || ! start b; then
	echo "a host did not come up" >"$OUT"
	fail "two leader-elect hosts start" a
	finish
fi

one_leads() {
	local n=0 h
	for h in a b; do leads "$h" && n=$((n + 1)); done
	echo "$n of a, b logged 'became leader'"
	[ "$n" -ge 1 ]
}
exactly_one() {
	local n=0 h
	for h in a b; do leads "$h" && n=$((n + 1)); done
	echo "$n of a, b logged 'became leader'"
	[ "$n" -eq 1 ]
}
eventually 30 "one of two hosts becomes leader" -- one_leads
sleep 3 # the other tries about every second: it must keep failing
check "exactly one of the two leads" -- exactly_one
if leads a; then L=a F=b; else L=b F=a; fi
check "the Lease names the leader as its holder" "$L" -- holder_is "$L"

widget "$NS" w1 1 plain
eventually 30 "the leader reconciles a Widget" "$L" -- has widget "$NS" w1 ".status.by == \"e2e-$L\""
set_spec widget "$NS" w1 '{"size": 2}'
until_ok 30 has widget "$NS" w1 '.status.size == 2'
sleep 2
echo "e2e reconcile lines: leader $L $(reconciled_by "$L"), follower $F $(reconciled_by "$F")" >"$OUT"
if [ "$(reconciled_by "$L")" -ge 1 ] && [ "$(reconciled_by "$F")" -eq 0 ]; then
	pass "only the leader's log shows reconciles"
else
	fail "only the leader's log shows reconciles" "$F"
fi

lid=$(identity "$L")
stop_host "$L"
echo "exit status ${HRC[$L]}" >"$OUT"
if [ "${HRC[$L]}" -eq 0 ]; then pass "SIGTERM: the leader exits 0"; else fail "SIGTERM: the leader exits 0" "$L"; fi
check "SIGTERM: the leader released the Lease (log)" "$L" -- in_log "$L" 'msg="lease released"'
not_held_by() {
	local h
	h=$(holder)
	echo "holder '$h'; the old leader was '$1'"
	[ "$h" != "$1" ]
}
check "SIGTERM: the Lease no longer names the old leader" -- not_held_by "$lid"
eventually 30 "the other host takes over" "$F" -- leads "$F"
check "the Lease names the new leader" "$F" -- holder_is "$F"
grown() {
	local t
	t=$(lease_json | jq -r '.spec.leaseTransitions // 0')
	echo "leaseTransitions $t, was $transitions0 before the hosts started"
	[ "$t" -gt "$transitions0" ]
}
check "leaseTransitions grew" -- grown
widget "$NS" w2 1 plain
eventually 30 "the new leader reconciles a new Widget" "$F" -- has widget "$NS" w2 ".status.by == \"e2e-$F\""
eventually 30 "the new leader takes over the old Widget too" "$F" -- \
	has widget "$NS" w1 ".status.by == \"e2e-$F\""

# A leader that hangs: SIGSTOP it; a third host takes over once the Lease expires; when
# the old one wakes, it must stop at once, writing nothing.
if ! start c; then
	echo "host c did not come up" >"$OUT"
	fail "a third host starts" c
	finish
fi
kill -STOP "${HPID[$F]}"
eventually 45 "a hung leader (SIGSTOP): the third host takes over" c -- leads c
check "the Lease names the third host" c -- holder_is c
widget "$NS" w3 1 plain
set_spec widget "$NS" w2 '{"size": 3}'
eventually 30 "the third host reconciles (a new Widget, a changed one)" c -- \
	has widget "$NS" w3 '.status.by == "e2e-c"'
until_ok 30 has widget "$NS" w2 '.status.size == 3 and .status.by == "e2e-c"'
mark=$(wc -l <"${HLOG[$F]}")
kill -CONT "${HPID[$F]}"
wait_exit "$F" 30
echo "exit status ${HRC[$F]}" >"$OUT"
if [ "${HRC[$F]}" -eq 1 ]; then pass "woken up (SIGCONT), the old leader exits 1"; else
	fail "woken up (SIGCONT), the old leader exits 1" "$F"
fi
woke() { tail -n "+$((mark + 1))" "${HLOG[$F]}"; }
quiet_after_waking() {
	woke
	woke | grep -q 'lost leadership' && ! woke | grep -q 'msg="e2e reconcile"'
}
check "woken up, it logs lost leadership and reconciles nothing" "$F" -- quiet_after_waking
sleep 1
all_by_c() {
	local j
	j=$(k get widgets -n "$NS" -o json) || return 1
	jq -c '.items[] | {name: .metadata.name, by: .status.by}' <<<"$j"
	jq -e 'all(.items[]; .status.by == "e2e-c")' <<<"$j" >/dev/null
}
check "no Widget was written by the woken leader" -- all_by_c
stop_host c
echo "exit status ${HRC[c]}" >"$OUT"
if [ "${HRC[c]}" -eq 0 ]; then pass "the third host exits 0 on SIGTERM"; else fail "the third host exits 0 on SIGTERM" c; fi
check "and releases the Lease" c -- in_log c 'msg="lease released"'

finish
