#!/usr/bin/env bash
# tests/e2e/recovery_volume.sh: recovery (spec.recoveryPolicy) of an Instance booted from a
# Volume, and of the ports Nova makes, against the real apiserver and the real OpenStack
# (Nova's fake driver, Cinder's fake driver), broken with the openstack CLI. Two Instances
# on a Network (Nova makes their ports):
#   vm-v  booted from the Volume vol (bootVolumeRef), onError Rebuild: Nova cannot rebuild
#         it from an image, so it is recreated on the same volume (the broken server goes
#         first: the volume is attached to it), said in status and Events; then deleted
#         behind our back, made again on the same volume;
#   vm-n  booted from an Image, the default policy: recreated.
# Both are broken at once; each time the port Nova made for the broken server goes with it:
# the project has one compute port per server, none of the old ones, and the new server
# asks Nova for the broken one's fixed IP (so the broken server goes first: it holds it),
# after an ERROR and after a deletion behind our back (status.recovery.addresses). A server that Nova
# shows DELETED for a moment (its row not yet gone) is waited for, not judged (it boots from
# no volume any more). Deleting the Instances leaves the volume available and no port.
# Needs KUBECONFIG (admin, the CRDs applied) and OS_CLIENT_CONFIG_FILE (OS_CLOUD, default
# kupenstack-admin: an admin; flavor id 1). Prints TAP lines and `N passed, N failed`;
# exits 1 on any failure, 2 without its environment.
# needs: openstack
if [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	echo "${0##*/}: OS_CLIENT_CONFIG_FILE is not set (. /tmp/os.env)" >&2
	exit 2
fi
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export OS_CLOUD=${OS_CLOUD:-kupenstack-admin}
T0=$SECONDS

NS=ks-e2e-recvol-$$
FLAVOR=kst-recvol-$$-tiny
PLUGINS=$(mktemp -d "$WORK/plugins.XXXXXX")
for p in project network subnet flavor image volume instance; do
	cp "$TOP/plugins/$p.lua" "$PLUGINS/"
done
printf 'allow_source_networks: "127.0.0.0/8"\nsource_method: stream\n' >"$PLUGINS/image.config.yaml"
echo 'poll_interval: 3' >"$PLUGINS/instance.config.yaml"
PID=
HTTP_PID=
NOVA=(--os-compute-api-version 2.79)

# rec NAME JQ: status.recovery satisfies JQ.
rec() { has instance "$NS" "$1" ".status.recovery | $2"; }
# event NAME REASON TEXT: an Event with that reason on the Instance, its message containing TEXT.
event() {
	k get events -n "$NS" -o json | jq -e --arg n "$1" --arg r "$2" --arg t "$3" 'any(.items[];
		.involvedObject.kind == "Instance" and .involvedObject.name == $n and .reason == $r and
		(.message | contains($t)))' >/dev/null && return 0
	k get events -n "$NS" --field-selector involvedObject.name="$1" | tail -n 8
	return 1
}
# boots_from SERVER VOLUME: the server has the volume attached, and Cinder says so.
boots_from() {
	openstack "${NOVA[@]}" server show "$1" -f json | jq -e --arg v "$2" \
		'.volumes_attached | tostring | contains($v)' >/dev/null || { echo "server $1 has not volume $2"; return 1; }
	openstack --os-project-id "$PID" volume show "$2" -f json | jq -e --arg s "$1" '.status == "in-use" and
		(.attachments | tostring | contains($s))' >/dev/null || { echo "volume $2 is not in use by $1"; return 1; }
}
# ip_of SERVER: the fixed IP(s) of the ports on the server, sorted, one line.
ip_of() { openstack port list --device-id "$1" -f json | jq -r '[.[]."Fixed IP Addresses" | .. | .ip_address? // empty] | sort | join(" ")'; }
# same_ip SERVER IP: the server's port has the fixed IP (the broken server's).
same_ip() {
	local now
	now=$(ip_of "$1")
	[ -n "$2" ] && [ "$now" = "$2" ] && return 0
	echo "server $1 has the fixed IP '$now', not '$2'; AddressLost Events:"
	k get events -n "$NS" --field-selector reason=AddressLost -o jsonpath='{range .items[*]}{.message}{"\n"}{end}'
	echo "the host's 'recreate addresses' lines:"
	grep -F 'recreate addresses' "${HLOG[op]}" | cut -c1-300
	return 1
}
# ports_of SERVER: the IDs of the ports on the server.
ports_of() { openstack port list --device-id "$1" -f value -c ID; }
# project_is NAME... -- OLD_PORT...: the project's servers are the NAMEd Instances' (status.id),
# each with one address, its compute ports (device_owner compute:*: Nova made them) one per
# server, and none of them an OLD_PORT (their IDs left in $WORK/ports). One server list and
# one port list, whatever the count: the project's servers being the Instances' says too
# that the broken ones are gone (the servers are made with the namespace's project).
project_is() {
	local names=() olds want srv ports n
	while [ "$1" != -- ]; do names+=("$1"); shift; done
	shift
	olds=$(printf '%s\n' "$@" | jq -R . | jq -sc 'map(select(. != ""))')
	want=$(for n in "${names[@]}"; do sid instance "$n"; done | sort | jq -R . | jq -sc .)
	srv=$(openstack "${NOVA[@]}" server list --project "$PID" -f json) || { echo "server list: $srv"; return 1; }
	jq -e --argjson w "$want" '([.[].ID] | sort) == $w and
		all(.[]; [.Networks | .. | strings] | length == 1)' >/dev/null <<<"$srv" ||
		{ echo "the project's servers are not the Instances' $want, one address each:"; jq -c '.[] | {ID, Status, Networks}' <<<"$srv"; return 1; }
	ports=$(openstack port list --project "$PID" --long -f json) || { echo "port list: $ports"; return 1; }
	jq -r '.[] | select(."Device Owner" // "" | startswith("compute:")) | .ID' <<<"$ports" >"$WORK/ports"
	jq -e --argjson n "${#names[@]}" --argjson o "$olds" '[.[] | select(."Device Owner" // "" | startswith("compute:"))] |
		length == $n and all(.[]; .ID as $id | $o | index($id) | not)' >/dev/null <<<"$ports" && return 0
	echo "the project's compute ports are not ${#names[@]} new ones (old: $olds):"
	jq -c '.[] | {ID, "Device Owner", "Fixed IP Addresses"}' <<<"$ports"
	return 1
}

tidy() {
	k delete flavor "$FLAVOR" --wait=false >/dev/null 2>&1
	if k get namespace "$NS" >/dev/null 2>&1 && [ -n "${HPID[op]:-}" ]; then
		k delete namespace "$NS" --wait=false >/dev/null 2>&1
		if ! until_ok 240 eval "! k get namespace $NS"; then
			echo "# namespace $NS did not go; its finalizers are taken off; project $PID may be left"
			for o in $(k get openstack -n "$NS" -o name 2>/dev/null); do
				k patch "$o" -n "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
			done
			k patch namespace "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
		fi
	fi
	[ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null
	k patch flavor "$FLAVOR" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
	cleanup
}
trap tidy EXIT

# ---- setup ------------------------------------------------------------------------------

new_ns "$NS"
k label namespace "$NS" kupenstack.io/project=true >/dev/null
if ! start_host op "$PLUGINS" "$NS" --set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" \
	--set cloud="$OS_CLOUD" --resync 900 >"$OUT" 2>&1; then
	fail "the operator starts"
	finish
fi
eventually 300 "setup: the labelled namespace gets a project" op -- project_of || finish

mkdir -p "$WORK/www"
head -c 4096 /dev/urandom >"$WORK/www/disk.raw"
HTTP_PORT=$(free_port)
python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$WORK/www" >"$WORK/http.log" 2>&1 &
HTTP_PID=$!
until_ok 20 curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/disk.raw"

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
  resource: {cidr: 10.70.0.0/24, ip_version: 4}
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
  source: {url: "http://127.0.0.1:$HTTP_PORT/disk.raw"}
---
apiVersion: kupenstack.io/v1alpha1
kind: Volume
metadata: {name: vol}
spec:
  imageRef: {name: base}
  resource: {size: 1}
---
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-v}
spec:
  bootVolumeRef: {name: vol}
  flavorRef: {name: $FLAVOR}
  networks: [{networkRef: {name: net}}]
  recoveryPolicy: {onError: Rebuild}
---
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-n}
spec:
  imageRef: {name: base}
  flavorRef: {name: $FLAVOR}
  networks: [{networkRef: {name: net}}]
EOF
eventually 300 "setup: both Instances Available, vm-v on its volume" op -- \
	eval "avail instance vm-v && avail instance vm-n && boots_from \$(sid instance vm-v) \$(sid volume vol)" || finish
VOL=$(sid volume vol)
V1=$(sid instance vm-v)
N1=$(sid instance vm-n)
check "setup: one compute port per server, made by Nova" -- project_is vm-v vm-n --
OLD_PORTS=$(cat "$WORK/ports")
V1_IP=$(ip_of "$V1")
N1_IP=$(ip_of "$N1")

# ---- both servers in ERROR at once ----------------------------------------------------------
# vm-v boots from a volume, onError Rebuild: Nova cannot rebuild it from an image, so it is
# recreated on the same volume, the broken server deleted first (the volume is attached to it);
# vm-n boots from an image, the default policy: recreated beside the broken server.

openstack "${NOVA[@]}" server set --state error "$V1" >"$OUT" 2>&1
openstack "${NOVA[@]}" server set --state error "$N1" >>"$OUT" 2>&1
eventually 480 "both in ERROR: each Instance Available again, on a new server" op -- \
	eval "new_id instance vm-v $V1 && new_id instance vm-n $N1" || finish
V2=$(sid instance vm-v)
# shellcheck disable=SC2086 # OLD_PORTS: a list of IDs
eventually 60 "the broken servers are gone with the ports Nova made for them: the project's servers are the Instances' (one each), one new compute port each" op -- \
	project_is vm-v vm-n -- $OLD_PORTS
check "volume-booted, onError Rebuild: recreated on the same volume (attached to it; Cinder: in-use by it)" -- \
	boots_from "$V2" "$VOL"
check "... with the broken server's fixed IP ($V1_IP) on the new port Nova made" -- same_ip "$V2" "$V1_IP"
check "image-booted, default policy: the new server has the broken one's fixed IP ($N1_IP) too" -- \
	same_ip "$(sid instance vm-n)" "$N1_IP"
check "... status.recovery.addresses names it" -- rec vm-n ".addresses == [\"$N1_IP\"]"
check "... status.recovery says Recreate (not Rebuild), for Error, Done, count 1" -- \
	rec vm-v '.count == 1 and .lastAction == "Recreate" and .lastReason == "Error" and .state == "Done"'
check "... an Event says why: a volume-booted server cannot be rebuilt" -- \
	event vm-v RecoveryStarted "boots from a volume, which Nova cannot rebuild"
check "image-booted, default policy: status.recovery says Recreate for Error, Done, count 1" -- \
	rec vm-n '.count == 1 and .lastAction == "Recreate" and .lastReason == "Error" and .state == "Done"'

# ---- deleted behind our back: made again on the same volume -------------------------------

VP2=$(ports_of "$V2")
openstack "${NOVA[@]}" server delete "$V2" >"$OUT" 2>&1
eventually 360 "volume-booted, deleted behind our back: made again (onDeleted Recreate)" op -- \
	new_id instance vm-v "$V2"
V3=$(sid instance vm-v)
check "... counted (Recreate, Deleted, count 2)" -- \
	rec vm-v '.count == 2 and .lastAction == "Recreate" and .lastReason == "Deleted" and .state == "Done"'
eventually 60 "... on the same volume; the project's servers are the Instances', its old port gone" op -- \
	eval "boots_from $V3 $VOL && project_is vm-v vm-n -- $VP2"
check "... with the fixed IP it had ($V1_IP): Nova's ports went with the server, their addresses are free" -- \
	same_ip "$V3" "$V1_IP"

# ---- deleting the Instances leaves the volume free and no port ------------------------------

del_cr instance vm-v
del_cr instance vm-n
eventually 150 "the Instances deleted: no server, no compute port, the volume available again" op -- \
	eval "cr_gone instance vm-v && cr_gone instance vm-n && project_is -- &&
		openstack --os-project-id $PID volume show $VOL -f value -c status | grep -qx available"

echo "# $((SECONDS - T0)) s in all"
finish
