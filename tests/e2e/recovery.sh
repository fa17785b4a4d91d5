#!/usr/bin/env bash
# tests/e2e/recovery.sh: self-healing Instances (spec.recoveryPolicy) against the real
# apiserver and the real OpenStack (Nova's fake driver), broken the way a user or the
# cloud breaks them, with the openstack CLI: `server set --state error`, `server stop`,
# `server delete`. Two Instances:
#   vm-a  on a Port object with a FloatingIP, the default policy (Recreate, Start,
#         Recreate): each failure is healed; a recreate keeps the port (same fixed IP and
#         MAC), so the floating IP follows, and leaves exactly one server with the UID tag;
#   vm-b  on a Network, onError Rebuild (same ID), maxRecoveries 1: the limit gives
#         RecoveryLimit and no more tries, the reset annotation another; then onError,
#         onShutoff and onDeleted None only report.
# Then crash safety: a host armed at each step of a recreate (KUPENSTACK_CRASH_AT,
# Instance:recovery-found|-detached|-posted|-deleted, and the host's status) dies there;
# the restart leaves exactly one server for vm-a, ACTIVE, with the port and floating IP.
# Detection: first by the Instance plugin's poll (poll_interval 3 s, one list of the
# namespace's servers; the resync is 900 s), then, with the poll at 900 s, through Nova's
# notifications (--amqp-url-file: KS_OS_AMQP_URL), which alone can explain it then.
# Needs KUBECONFIG (admin, the CRDs applied) and OS_CLIENT_CONFIG_FILE (OS_CLOUD, default
# kupenstack-admin: an admin; flavor id 1; an external network `public`). Prints TAP lines
# and `N passed, N failed`; exits 1 on any failure, 2 without its environment.
# needs: openstack
# opt-in: KS_E2E_LONG (about 10 minutes against the fake Nova; make test runs it with KS_E2E_LONG=1)
if [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	echo "${0##*/}: OS_CLIENT_CONFIG_FILE is not set (. /tmp/os.env)" >&2
	exit 2
fi
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/compute_lib.sh"
export OS_CLOUD=${OS_CLOUD:-kupenstack-admin}
T0=$SECONDS

NS=ks-e2e-recovery-$$
FLAVOR=kst-recovery-$$-tiny
PLUGINS=$(mktemp -d "$WORK/plugins.XXXXXX")
for p in project network subnet router port floatingip flavor image instance; do
	cp "$TOP/plugins/$p.lua" "$PLUGINS/"
done
printf 'allow_source_networks: "127.0.0.0/8"\nsource_method: stream\n' >"$PLUGINS/image.config.yaml"
echo 'poll_interval: 3' >"$PLUGINS/instance.config.yaml"
PID=
NOVA=(--os-compute-api-version 2.79)
# The hosts (compute_lib.sh's host) have a long resync: what a host sees of a server, it
# sees through the Instance plugin's poll (poll_interval, in instance.config.yaml) or
# Nova's notifications (--amqp-url-file). An armed one dies within 2 minutes.
# shellcheck disable=SC2034 # read by compute_lib.sh (host, died_at)
HOST_ARGS=(--resync 900)
# shellcheck disable=SC2034
DIED_WAIT=120

# reason NAME REASON: the Instance's Available condition has that reason.
reason() {
	has instance "$NS" "$1" "any(.status.conditions[]?; .type == \"Available\" and .reason == \"$2\")"
}
# event NAME REASON [N]: the Instance has at least N (1) Events with that reason (counted
# with their repeats).
event() {
	local n
	n=$(k get events -n "$NS" -o json | jq --arg n "$1" --arg r "$2" '[.items[] |
		select(.involvedObject.kind == "Instance" and .involvedObject.name == $n and
		.reason == $r) | (.count // 1)] | add // 0')
	[ "$n" -ge "${3:-1}" ] && return 0
	echo "$n Events $2 on Instance $1, not ${3:-1}"
	k get events -n "$NS" --field-selector involvedObject.name="$1" | tail -n 8
	return 1
}
nudge() { k annotate instance "$1" -n "$NS" "e2e.kupenstack.io/touch=$(date +%s%N)" --overwrite >/dev/null; }
reset_recovery() { k annotate instance "$1" -n "$NS" "kupenstack.io/reset-recovery=$2" --overwrite >/dev/null; }
# rec NAME JQ: status.recovery satisfies JQ.
rec() { has instance "$NS" "$1" ".status.recovery | $2"; }

# server_is ID JQ: `openstack server show ID` (admin) satisfies JQ.
server_is() {
	local j
	j=$(openstack "${NOVA[@]}" server show "$1" -f json 2>&1) || { echo "server show $1: $j"; return 1; }
	jq -e "$2" >/dev/null <<<"$j" && return 0
	echo "server $1 fails $2:"
	jq -c '{id, status, "OS-EXT-STS:task_state", addresses, tags}' <<<"$j"
	return 1
}
# server_gone ID: Nova has no such server.
server_gone() {
	local out
	if out=$(openstack "${NOVA[@]}" server show "$1" 2>&1); then
		echo "server $1 is still there: $(grep -E '^\| (status|OS-EXT-STS:task_state) ' <<<"$out" | tr -s ' ')"
		return 1
	fi
	grep -Eqi 'no server .*(found|exists)|could not be found|404' <<<"$out" && return 0
	echo "server show $1: $out"
	return 1
}
# tagged NAME: the IDs of the servers (any project) with the Instance's UID tag.
tagged() {
	openstack "${NOVA[@]}" server list --all-projects --tags "kupenstack-uid-$(uid_of instance "$1")" \
		-f value -c ID
}
# one_server NAME: exactly one server has the UID tag, and it is status.id's.
one_server() {
	local ids
	ids=$(tagged "$1") || { echo "server list failed: $ids"; return 1; }
	[ "$(grep -c . <<<"$ids")" = 1 ] && [ "$ids" = "$(sid instance "$1")" ] && return 0
	echo "servers tagged for $1: ${ids//$'\n'/ }; status.id $(sid instance "$1")"
	return 1
}
# port_on PORT SERVER: the port's device is the server.
port_on() {
	local d
	d=$(openstack port show "$1" -f value -c device_id) || return 1
	[ "$d" = "$2" ] || { echo "port $1 is on '$d', not $2"; return 1; }
}
# healed NAME OLD_ID: Available with another server ID, the only one with the UID tag.
healed() {
	local id
	avail instance "$1" || return 1
	id=$(sid instance "$1")
	[ "$id" != "$2" ] || { echo "status.id is still $2"; return 1; }
	one_server "$1"
}

tidy() {
	k delete flavor "$FLAVOR" --wait=false >/dev/null 2>&1
	if k get namespace "$NS" >/dev/null 2>&1; then
		[ -n "${HPID[op]:-}" ] || host >/dev/null 2>&1
		drop_namespace 240
	fi
	[ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null
	k patch flavor "$FLAVOR" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
	cleanup
}
trap tidy EXIT

# ---- setup ------------------------------------------------------------------------------

new_ns "$NS"
k label namespace "$NS" kupenstack.io/project=true >/dev/null
if ! host >"$OUT" 2>&1; then
	fail "the operator starts"
	finish
fi
eventually 600 "setup: the labelled namespace gets a project" op -- project_of || finish

serve_data 4096

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net}
spec: {}
---
apiVersion: kupenstack.io/v1alpha1
kind: Subnet
metadata: {name: net}
spec:
  networkRef: {name: net}
  resource: {cidr: 10.69.0.0/24, ip_version: 4}
---
apiVersion: kupenstack.io/v1alpha1
kind: Router
metadata: {name: r}
spec:
  externalGateway: {network: {name: public}}
  interfaces: [{subnetRef: {name: net}}]
---
apiVersion: kupenstack.io/v1alpha1
kind: Port
metadata: {name: p-a}
spec:
  networkRef: {name: net}
---
apiVersion: kupenstack.io/v1alpha1
kind: FloatingIP
metadata: {name: fip-a}
spec:
  externalNetwork: {network: {name: public}}
  portRef: {name: p-a}
---
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: $FLAVOR}
spec:
  import: {id: "1"}
  managementPolicy: unmanaged
---
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: base}
spec:
  resource: {container_format: bare, disk_format: raw}
  source: {url: "$URL"}
---
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-a}
spec:
  imageRef: {name: base}
  flavorRef: {name: $FLAVOR}
  networks: [{portRef: {name: p-a}}]
  resource:
    metadata: {role: web}
---
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-b}
spec:
  imageRef: {name: base}
  flavorRef: {name: $FLAVOR}
  networks: [{networkRef: {name: net}}]
  recoveryPolicy: {onError: Rebuild, maxRecoveries: 1}
EOF
eventually 900 "setup: both Instances Available, the floating IP on the port" op -- \
	eval "avail instance vm-a && avail instance vm-b && avail floatingip fip-a" || finish
check "the CRD's defaults: vm-a's policy is Recreate / Start / Recreate, 5 in 1h" -- \
	has instance "$NS" vm-a '.spec.recoveryPolicy == {"onError": "Recreate", "onShutoff": "Start",
		"onDeleted": "Recreate", "maxRecoveries": 5, "window": "1h"}'
PORT=$(sid port p-a)
MAC=$(openstack port show "$PORT" -f value -c mac_address)
IP=$(openstack port show "$PORT" -f json | jq -r '.fixed_ips[0].ip_address')
FIP=$(sid floatingip fip-a)
A1=$(sid instance vm-a)
B1=$(sid instance vm-b)
check "setup: vm-a's server has the port, the floating IP is on it" -- \
	eval "port_on $PORT $A1 && openstack floating ip show $FIP -f value -c port_id | grep -qx $PORT"

# ---- vm-a: the default policy --------------------------------------------------------------

openstack "${NOVA[@]}" server set --state error "$A1" >"$OUT" 2>&1
eventually 120 "onError Recreate: a new server, Available, the only one with the UID tag" op -- healed vm-a "$A1"
A2=$(sid instance vm-a)
check "onError Recreate: the broken server is gone from Nova" -- server_gone "$A1"
check "onError Recreate: the new server has the same port (fixed IP $IP, MAC), name and metadata" -- \
	eval "port_on $PORT $A2 && server_is $A2 '.name == \"vm-a\" and .properties.role == \"web\" and
		(.addresses | tostring | contains(\"$IP\"))' && openstack port show $PORT -f value -c mac_address | grep -qx $MAC"
check "onError Recreate: the floating IP follows the port" -- \
	eval "openstack floating ip show $FIP -f json | jq -e '.port_id == \"$PORT\" and .fixed_ip_address == \"$IP\"'"
check "onError Recreate: status.recovery counts it (Recreate, Error)" -- \
	rec vm-a '.count == 1 and .lastAction == "Recreate" and .lastReason == "Error" and .state == "Done" and .lastTime != null'
check "onError Recreate: Events RecoveryStarted, Recreated, Recovered" -- \
	eval "event vm-a RecoveryStarted && event vm-a Recreated && event vm-a Recovered"

openstack "${NOVA[@]}" server stop "$A2" >"$OUT" 2>&1
eventually 120 "onShutoff Start: the server is started again (same ID, ACTIVE), counted" op -- \
	eval "rec vm-a '.count == 2 and .lastAction == \"Start\" and .lastReason == \"Shutoff\"' &&
		avail instance vm-a && server_is $A2 '.status == \"ACTIVE\"'"

openstack "${NOVA[@]}" server delete "$A2" >"$OUT" 2>&1
eventually 120 "onDeleted Recreate: a new server, Available, the only one with the UID tag" op -- healed vm-a "$A2"
A3=$(sid instance vm-a)
check "onDeleted Recreate: counted (Recreate, Deleted), the port on the new server" -- \
	eval "rec vm-a '.count == 3 and .lastReason == \"Deleted\"' && port_on $PORT $A3"

# ---- vm-b: Rebuild, the limit, None ------------------------------------------------------

openstack "${NOVA[@]}" server set --state error "$B1" >"$OUT" 2>&1
eventually 120 "onError Rebuild: the same server, ACTIVE again, counted (Rebuild)" op -- \
	eval "avail instance vm-b && [ \$(sid instance vm-b) = $B1 ] &&
		rec vm-b '.count == 1 and .lastAction == \"Rebuild\" and .state == \"Done\"' && one_server vm-b"
openstack "${NOVA[@]}" server set --state error "$B1" >"$OUT" 2>&1
eventually 90 "maxRecoveries 1 reached: Available False, reason RecoveryLimit, a Warning Event" op -- \
	eval "reason vm-b RecoveryLimit && event vm-b RecoveryLimit"
nudge vm-b
eventually 60 "... no more tries: the server stays in ERROR, the count stays 1" op -- \
	eval "has instance $NS vm-b '.metadata.annotations[\"e2e.kupenstack.io/touch\"] != null and
		.status.recovery.count == 1 and .status.recovery.state == \"Limited\"' &&
		reason vm-b RecoveryLimit && server_is $B1 '.status == \"ERROR\"'"
reset_recovery vm-b one
eventually 120 "the reset annotation: another Rebuild, Available" op -- \
	eval "avail instance vm-b && rec vm-b '.count == 2 and .lastAction == \"Rebuild\"'"

k patch instance vm-b -n "$NS" --type merge -p \
	'{"spec":{"recoveryPolicy":{"onError":"None","onShutoff":"None","onDeleted":"None"}}}' >"$OUT" 2>&1
until_ok 60 has instance "$NS" vm-b '.status.observedGeneration == .metadata.generation'
openstack "${NOVA[@]}" server set --state error "$B1" >"$OUT" 2>&1
eventually 90 "onError None: reported (ResourceError), not recovered (count stays 2)" op -- \
	eval "reason vm-b ResourceError && rec vm-b '.count == 2' && server_is $B1 '.status == \"ERROR\"'"
openstack "${NOVA[@]}" server set --state active "$B1" >"$OUT" 2>&1
until_ok 60 avail instance vm-b
openstack "${NOVA[@]}" server stop "$B1" >"$OUT" 2>&1
eventually 90 "onShutoff None: reported (reason Shutoff, a Warning Event), not started" op -- \
	eval "reason vm-b Shutoff && event vm-b Shutoff && rec vm-b '.count == 2'"
nudge vm-b
eventually 30 "... and stays SHUTOFF" op -- \
	eval "has instance $NS vm-b '.metadata.annotations[\"e2e.kupenstack.io/touch\"] != null' &&
		reason vm-b Shutoff && server_is $B1 '.status == \"SHUTOFF\"'"
openstack "${NOVA[@]}" server delete "$B1" >"$OUT" 2>&1
eventually 90 "onDeleted None: reported (reason Deleted, a Warning Event), nothing made again" op -- \
	eval "reason vm-b Deleted && event vm-b Deleted && [ -z \"\$(tagged vm-b)\" ]"

echo "# $((SECONDS - T0)) s so far"


# ---- crash at each step of a recreate --------------------------------------------------------

for point in recovery-found recovery-detached recovery-posted recovery-deleted; do
	what="crash at $point"
	reset_recovery vm-a "$point" # no backoff from the tries before
	until_ok 60 avail instance vm-a
	OLD=$(sid instance vm-a)
	if ! host "Instance:$point" >"$OUT" 2>&1; then
		fail "$what: the host starts armed"
		continue
	fi
	until_ok 60 avail instance vm-a
	openstack "${NOVA[@]}" server set --state error "$OLD" >"$OUT" 2>&1
	check "$what: the host dies of SIGKILL at the point" -- died_at Instance "$point"
	host >"$OUT" 2>&1 || { fail "$what: the host restarts"; continue; }
	eventually 150 "$what: after a restart, exactly one server for vm-a, Available, another ID" op -- \
		healed vm-a "$OLD"
	check "$what: ... the broken server gone or going, the port on the new one, the floating IP on the port" -- \
		eval "port_on $PORT \$(sid instance vm-a) &&
			openstack floating ip show $FIP -f value -c port_id | grep -qx $PORT &&
			{ server_gone $OLD || server_is $OLD '.\"OS-EXT-STS:task_state\" == \"deleting\"'; }"
done

# ---- detection through Nova's notifications ---------------------------------------------

if [ -n "${KS_OS_AMQP_URL:-}" ]; then
	printf '%s\n' "$KS_OS_AMQP_URL" >"$WORK/amqp.url"
	echo 'poll_interval: 900' >"$PLUGINS/instance.config.yaml"
	reset_recovery vm-a notifications
	host "" --amqp-url-file "$WORK/amqp.url" >"$OUT" 2>&1 || fail "notifications: the host starts"
	eventually 60 "notifications: the Instance plugin's consumer is connected (/metrics), the host ready" op -- \
		eval "[ \"\$(metric op 'kupenstack_amqp_connected{plugin=\"instance.lua\",exchange=\"nova\",topic=\"versioned_notifications.info\"}')\" = 1 ] &&
			curl -sf http://127.0.0.1:\${HPORT[op]}/readyz"
	until_ok 60 avail instance vm-a
	N0=$(field instance "$NS" vm-a '.status.recovery.count')
	A=$(sid instance vm-a)
	openstack "${NOVA[@]}" server stop "$A" >"$OUT" 2>&1
	eventually 120 "notifications: a server stopped behind our back is started (poll and resync at 900 s)" op -- \
		eval "rec vm-a '.count == $N0 + 1 and .lastAction == \"Start\"' && avail instance vm-a &&
			server_is $A '.status == \"ACTIVE\"'"
	check "notifications: the plugin's map enqueued the Instance (kupenstack_amqp_enqueued_total > 0)" -- \
		eval "v=\$(metric op 'kupenstack_amqp_enqueued_total{plugin=\"instance.lua\",exchange=\"nova\",topic=\"versioned_notifications.info\"}'); echo \"\$v\"; [ \"\${v:-0}\" != 0 ]"
	openstack "${NOVA[@]}" server set --state error "$A" >"$OUT" 2>&1
	eventually 150 "notifications: a server put in ERROR is recreated (poll and resync at 900 s)" op -- \
		healed vm-a "$A"
else
	echo "# KS_OS_AMQP_URL is not set: the notifications part is skipped"
	fail "notifications: KS_OS_AMQP_URL is set (tests/env/openstack prints it)"
fi

# ---- a bus that cannot be reached: not ready, saying why; polling goes on -----------------

NS2=$NS-nobus
new_ns "$NS2"
PLUGINS2=$(mktemp -d "$WORK/plugins.XXXXXX")
cp "$TOP/plugins/instance.lua" "$PLUGINS2/"
# A plugin that asks for more queues than a plugin may have is refused, naming the field.
cat >"$PLUGINS2/hostile.lua" <<'EOF'
local c = { exchange = "nova", topic = "#", map = function() return {} end }
return { api = 1, group = "test.kupenstack.io", version = "v1", kind = "Gadget",
  consumes = { c, c, c, c, c }, reconcile = function() return {} end }
EOF
echo "amqp://guest:guest@127.0.0.1:$(free_port)/" >"$WORK/nobus.url"
start_host nobus "$PLUGINS2" "$NS2" --set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" --set cloud="$OS_CLOUD" \
	--amqp-url-file "$WORK/nobus.url" >"$OUT" 2>&1
eventually 60 "an unreachable bus: /readyz says not ready, naming the consumer; /healthz still answers" nobus -- \
	eval "! curl -sf http://127.0.0.1:\${HPORT[nobus]}/readyz &&
		curl -s http://127.0.0.1:\${HPORT[nobus]}/readyz | grep 'message bus consumer of controller instance' &&
		curl -sf -o /dev/null http://127.0.0.1:\${HPORT[nobus]}/healthz"
check "a plugin with 5 'consumes' is refused, naming the field; the host runs on" nobus -- \
	eval "in_log nobus \"plugin refused.*hostile.lua.*field 'consumes' lists 5 subscriptions; at most 4\" &&
		curl -sf -o /dev/null http://127.0.0.1:\${HPORT[nobus]}/healthz"
stop_host nobus

echo "# $((SECONDS - T0)) s in all"
finish
