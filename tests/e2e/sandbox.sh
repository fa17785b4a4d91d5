#!/usr/bin/env bash
# tests/e2e/sandbox.sh: a hostile plugin cannot stop the host, and a host whose loop is
# frozen does not keep the Lease. One plugins directory (tests/e2e/plugins/hostile/): a
# Gadget plugin whose reconciles attack the sandbox (spec.color: endless loops under
# nested pcall and xpcall, a backtracking pattern, a 4 GiB string.rep; it declares 4 GiB
# and a day of CPU, which the operator's caps lower), and a well-behaved Widget plugin.
#  - host a (--leader-elect --lease-duration 6, KUPENSTACK_FREEZE_AT=e2e-freeze) leads;
#    each attack ends with the sandbox's own error on the Gadget's conditions, in the
#    reconcile error metric and in kupenstack_plugin_limit_stops_total; meanwhile /healthz answers, the Lease keeps being renewed
#    and Widgets keep being reconciled.
#  - host b starts as a standby; a Gadget with color freeze blocks a's loop in C (a fault
#    point): a's watchdog exits it (status 3, "the loop is frozen"), b takes the Lease
#    and reconciles.
# Needs KUBECONFIG (admin); installs tests/e2e/gadget-crd.yaml and the Widget CRD (and
# leaves them). Prints TAP lines and `N passed, N failed`; exits 1 on any failure.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NS=ks-e2e-sandbox-$$
LEASE_NS=kupenstack-system
LEASE=kupenstack
SANDBOX_ERR='instruction budget exceeded|wall time limit exceeded|memory limit exceeded'

lease_json() { k get lease "$LEASE" -n "$LEASE_NS" -o json; }
holder() { lease_json 2>/dev/null | jq -r '.spec.holderIdentity // ""'; }
renew_time() { lease_json 2>/dev/null | jq -r '.spec.renewTime // ""'; }
identity() {
	sed -nE 's/.*msg="became leader" .*holder="?([^" ]+)"?.*/\1/p' "${HLOG[$1]}" | head -n 1
}
leads() { grep -q 'msg="became leader"' "${HLOG[$1]}"; }
holder_is() {
	local want h
	want=$(identity "$1")
	h=$(holder)
	echo "holder '$h'; $1 logged identity '$want'"
	[ -n "$want" ] && [ "$h" = "$want" ]
}

gadget() {
	k apply -n "$NS" -f - >/dev/null <<EOT
apiVersion: test.kupenstack.io/v1
kind: Gadget
metadata:
  name: $1
spec:
  color: "$2"
EOT
}

# stopped_by_sandbox NAME: the Gadget's conditions carry the sandbox's own error.
stopped_by_sandbox() {
	has gadget "$NS" "$1" "[.status.conditions[]? | select(.status == \"False\")
		| .message | test(\"$SANDBOX_ERR\")] | any"
}

# gadget_errors HOST: the reconcile error count of the Gadget controller.
gadget_errors() {
	curl -sf --max-time 5 "http://127.0.0.1:${HPORT[$1]}/metrics" |
		awk '/^controller_runtime_reconcile_errors_total\{.*[Gg]adget/ { s += $2 } END { print s + 0 }'
}

# renewed_since T: the Lease's renewTime is no longer T.
renewed_since() {
	local r
	r=$(renew_time)
	echo "renewTime '$r', was '$1'"
	[ -n "$r" ] && [ "$r" != "$1" ]
}

if ! install_gadget_crd || ! k apply -f "$TOP/tests/kube/widget-crd.yaml" >/dev/null ||
	! k wait --for condition=established --timeout=60s crd/widgets.test.kupenstack.io >/dev/null; then
	echo "the CRDs could not be installed" >"$OUT"
	fail "the Gadget and Widget CRDs are installed"
	finish
fi
k create namespace "$LEASE_NS" >/dev/null 2>&1
new_ns "$NS"

KUPENSTACK_FREEZE_AT=e2e-freeze start_host a "$E2E/plugins/hostile" "$NS" --leader-elect \
	--lease-duration 6 --set cluster=e2e-a --plugin-max-instructions 2e8 --plugin-max-memory 64 ||
	{
		fail "host a starts" a
		finish
	}
eventually 60 "host a becomes leader" a -- leads a
check "the Gadget's declared limits are lowered to the operator's caps" a -- \
	in_log a 'msg="plugin limit lowered to the operator.s cap".*limit=memory_bytes'

for attack in pcall xpcall pattern rep; do
	gadget "g-$attack" "$attack"
done
for attack in pcall xpcall pattern rep; do
	eventually 90 "$attack: the sandbox's error is on the Gadget's conditions" a -- \
		stopped_by_sandbox "g-$attack"
done
errors_counted() {
	local n
	n=$(gadget_errors a)
	echo "Gadget reconcile errors: $n"
	[ "$n" -ge 4 ]
}
check "the failures are counted in the reconcile error metric" a -- errors_counted
limit_stops() {
	curl -sf --max-time 5 "http://127.0.0.1:${HPORT[a]}/metrics" | grep '^kupenstack_plugin_limit_stops_total' |
		tee /dev/stderr | awk '/plugin="gadget.lua"/ { s += $2 } END { exit !(s >= 3) }'
}
check "the stops are counted by plugin and limit (kupenstack_plugin_limit_stops_total)" a -- limit_stops

# While the attacks are retried: the host answers, renews, and reconciles another kind.
r0=$(renew_time)
eventually 60 "the Lease keeps being renewed under attack" a -- renewed_since "$r0"
widget "$NS" w1 1 plain
eventually 60 "another kind (Widget) keeps being reconciled under attack" a -- \
	has widget "$NS" w1 '.status.phase == "Seen"'
check "/healthz answers under attack" a -- host_answers a
more_errors() {
	local n
	n=$(gadget_errors a)
	echo "Gadget reconcile errors: $n, were $1"
	[ "$n" -gt "$1" ]
}
e0=$(gadget_errors a)
eventually 90 "the attacks are retried and stopped again" a -- more_errors "$e0"
check "host a still leads" a -- holder_is a

# The watchdog: b waits as a standby; a's loop is frozen in C.
if ! start_host b "$E2E/plugins/hostile" "$NS" --leader-elect --lease-duration 6 --set cluster=e2e-b; then
	fail "host b starts" b
	finish
fi
for attack in pcall xpcall pattern rep; do
	k delete gadget "g-$attack" -n "$NS" --wait=false >/dev/null 2>&1
done
gadget g-freeze freeze
wait_exit a 60
echo "exit status ${HRC[a]}" >"$OUT"
if [ "${HRC[a]}" -eq 3 ]; then pass "the frozen leader exits (status 3)"; else
	fail "the frozen leader exits (status 3)" a
fi
frozen_in_order() {
	# the freeze point was reached, then the watchdog fired: in this order
	grep -nE 'freeze point reached|the loop is frozen' "${HLOG[a]}"
	grep -E 'freeze point reached|the loop is frozen' "${HLOG[a]}" | head -n 2 |
		tr '\n' ' ' | grep -qE 'freeze point reached.*the loop is frozen'
}
check "its log shows the freeze, then the watchdog" a -- frozen_in_order
eventually 60 "the standby takes the Lease" b -- leads b
check "the Lease names the standby" b -- holder_is b
widget "$NS" w2 2 plain
eventually 60 "the new leader reconciles" b -- has widget "$NS" w2 '.status.phase == "Seen"'
eventually 60 "the new leader reconciles the Gadget that froze a (b has no freeze point)" b -- \
	has gadget "$NS" g-freeze '.status.color == "freeze"'
stop_host b
finish
