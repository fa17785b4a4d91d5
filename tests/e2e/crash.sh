#!/usr/bin/env bash
# tests/e2e/crash.sh: crash safety against the real apiserver and the real OpenStack. The
# host is started with KUPENSTACK_CRASH_AT naming one crash point (host/fault.h) and kills
# itself with SIGKILL there, as `kill -9` would:
#   posted   a Neutron resource exists, not yet tagged with the object's UID;
#   created  OpenStack answered the create, nothing is recorded in Kubernetes yet;
#   status   the reconcile is done, its status write not yet sent.
# For each point and kind, an object is applied, the host dies at the point, a host
# without crash points is started, and then the object is Available and exactly one
# OpenStack resource exists for it (the one status.id names): nothing lost, nothing
# duplicated. Needs KUBECONFIG (admin, the CRDs applied) and OS_CLIENT_CONFIG_FILE (and
# OS_CLOUD, default kupenstack-admin, an admin; Nova with flavor id 1). Prints TAP lines
# and `N passed, N failed`; exits 1 on any failure, 2 without KUBECONFIG or
# OS_CLIENT_CONFIG_FILE.
# needs: openstack
if [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	echo "${0##*/}: OS_CLIENT_CONFIG_FILE is not set (. /tmp/os.env)" >&2
	exit 2
fi
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export OS_CLOUD=${OS_CLOUD:-kupenstack-admin}

NS=ks-e2e-crash-$$
PLUGINS=$(mktemp -d "$WORK/plugins.XXXXXX")
for p in project network subnet flavor keypair image instance; do
	cp "$TOP/plugins/$p.lua" "$PLUGINS/"
done
# The image data is served on loopback: the operator's allow-list names it; streamed by the host.
printf 'allow_source_networks: "127.0.0.0/8"\nsource_method: stream\n' >"$PLUGINS/image.config.yaml"
declare -A KIND=([network]=Network [image]=Image [keypair]=KeyPair [instance]=Instance)
PID=
RUN=0 # the number of hosts started, to name their logs

apply() { k apply -n "$NS" -f - >"$WORK/apply.out" 2>&1 || { cat "$WORK/apply.out" >&2; return 1; }; }
avail() {
	has "$1" "$NS" "$2" '.status.id != null and
		any(.status.conditions[]?; .type == "Available" and .status == "True")'
}
sid() { field "$1" "$NS" "$2" '.status.id // empty'; }

# host [POINT]: stop the running host (if any) and start one, crashing at POINT.
host() {
	[ -n "${HPID[op]:-}" ] && stop_host op TERM
	RUN=$((RUN + 1))
	HOST=op$RUN
	if [ -n "${1:-}" ]; then export KUPENSTACK_CRASH_AT=$1; else unset KUPENSTACK_CRASH_AT; fi
	start_host "$HOST" "$PLUGINS" "$NS" --os-config "$OS_CLIENT_CONFIG_FILE" --os-cloud "$OS_CLOUD"
	local rc=$?
	unset KUPENSTACK_CRASH_AT
	HPID[op]=${HPID[$HOST]}
	HPID[$HOST]=
	HLOG[op]=${HLOG[$HOST]}
	HPORT[op]=${HPORT[$HOST]}
	return $rc
}

# died_at POINT: the host died of SIGKILL, having logged that it reached POINT.
died_at() {
	wait_exit op 90
	[ "${HRC[op]}" = 137 ] || { echo "the host exited with ${HRC[op]}, not 137 (SIGKILL)"; tail -n 5 "${HLOG[op]}"; return 1; }
	in_log op "crash point reached.*point=$1"
}

# count KIND NAME: the number of OpenStack resources of KIND named NAME in the project.
count() {
	case $1 in
	network) openstack network list --project "$PID" --name "$2" -f value -c ID ;;
	image) openstack image list --property owner="$PID" --name "$2" -f value -c ID ;;
	instance) openstack server list --all-projects --project "$PID" --name "^$2\$" -f value -c ID ;;
	keypair) openstack keypair list --user "$KP_USER" -f value -c Name | grep -Fx -- "$2" ;;
	esac | grep -c .
}

# one KIND NAME OSNAME: the object is Available, and exactly one OpenStack resource is
# named OSNAME: the one status.id names.
one() {
	local n ids
	avail "$1" "$2" || return 1
	n=$(count "$1" "$3")
	[ "$n" = 1 ] || { echo "$n OpenStack ${1}s named $3, not 1"; return 1; }
	[ "$1" = keypair ] && return 0
	ids=$(case $1 in
		network) openstack network list --project "$PID" --name "$3" -f value -c ID ;;
		image) openstack image list --property owner="$PID" --name "$3" -f value -c ID ;;
		instance) openstack server list --all-projects --project "$PID" --name "^$3\$" -f value -c ID ;;
		esac)
	[ "$ids" = "$(sid "$1" "$2")" ] || { echo "status.id $(sid "$1" "$2") is not $ids"; return 1; }
}

# crash KIND POINT NAME: apply the YAML on stdin (an object NAME of KIND) to a host that
# crashes at POINT, then check that a restarted host ends with exactly one resource.
crash() {
	local kind=$1 point=$2 name=$3 osname=${4:-$3}
	cat >"$WORK/obj.yaml"
	if ! host "${KIND[$kind]}:$point" >"$OUT" 2>&1; then
		fail "$kind at $point: the host starts"
		return
	fi
	apply <"$WORK/obj.yaml"
	check "$kind at $point: the host dies of SIGKILL at the crash point" -- died_at "$point"
	check "$kind at $point: the host left what it had made, and no status" -- \
		eval "[ \"\$(count $kind $osname)\" = 1 ] && [ -z \"\$(sid $kind $name)\" ]"
	if ! host >"$OUT" 2>&1; then
		fail "$kind at $point: a host without crash points starts"
		return
	fi
	eventually 120 "$kind at $point: after a restart, Available with exactly one resource" op -- \
		one "$kind" "$name" "$osname"
}

# tidy: delete the namespace while a host still runs (its finalizers need it).
tidy() {
	if k get namespace "$NS" >/dev/null 2>&1; then
		[ -n "${HPID[op]:-}" ] || host >/dev/null 2>&1
		k delete namespace "$NS" --wait=false >/dev/null 2>&1
		if ! until_ok 240 eval "! k get namespace $NS"; then
			echo "# namespace $NS did not go; its finalizers are taken off; project $PID may be left"
			for o in $(k get openstack -n "$NS" -o name 2>/dev/null); do
				k patch "$o" -n "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
			done
			k patch namespace "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
		fi
	fi
	cleanup
}
trap tidy EXIT

# ---- setup: the namespace's project, a network, a flavor, image data ---------------------

new_ns "$NS"
k label namespace "$NS" kupenstack.io/project=true >/dev/null
if ! host >"$OUT" 2>&1; then
	fail "the operator starts"
	finish
fi
project_of() {
	PID=$(k get namespace "$NS" -o json | jq -r '.metadata.annotations["kupenstack.io/project-id"] // empty')
	[ -n "$PID" ]
}
eventually 60 "the labelled namespace gets a project" op -- project_of
project_of
KP_USER=$(openstack token issue -f value -c user_id)

WWW=$WORK/www
mkdir -p "$WWW"
head -c 4096 /dev/urandom >"$WWW/disk.raw"
HTTP_PORT=$(free_port)
python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$WWW" >"$WORK/http.log" 2>&1 &
HTTP_PID=$!
URL=http://127.0.0.1:$HTTP_PORT/disk.raw
until_ok 20 curl -sf -o /dev/null "$URL"

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
  resource: {cidr: 10.67.0.0/24, ip_version: 4}
---
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: tiny}
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
EOF
eventually 60 "setup: the Subnet is Available" op -- avail subnet net
eventually 60 "setup: the Flavor is Available" op -- avail flavor tiny
eventually 90 "setup: the Image is Available" op -- avail image base

# ---- the crash points ----------------------------------------------------------------------

for point in posted created status; do
	crash network "$point" "n-$point" <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: n-$point}
spec: {}
EOF
done

for point in created status; do
	crash image "$point" "i-$point" <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: i-$point}
spec:
  resource: {container_format: bare, disk_format: raw}
  source: {url: "$URL"}
EOF
done

for point in created status; do
	ssh-keygen -q -t ed25519 -N '' -C "kst-crash-$point" -f "$WORK/key-$point" </dev/null >/dev/null
	crash keypair "$point" "k-$point" "kst-crash-$$-$point" <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: KeyPair
metadata: {name: k-$point}
spec:
  resource: {name: kst-crash-$$-$point, public_key: "$(cat "$WORK/key-$point.pub")"}
EOF
done

for point in created status; do
	crash instance "$point" "vm-$point" <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-$point}
spec:
  imageRef: {name: base}
  flavorRef: {name: tiny}
  networks: [{networkRef: {name: net}}]
EOF
done

# ---- deleting the namespace leaves nothing in OpenStack -----------------------------------

k delete namespace "$NS" --wait=false >/dev/null 2>&1
eventually 240 "the namespace goes (its finalizer ran)" op -- eval "! k get namespace $NS"
check "its project is gone from Keystone" -- eval "! openstack project show $PID >/dev/null 2>&1"
check "no network, server or image of the project is left" -- eval \
	"[ \"\$(openstack network list --project $PID -f value -c ID | grep -c .)\" = 0 ] &&
	 [ \"\$(openstack server list --all-projects --project $PID -f value -c ID | grep -c .)\" = 0 ] &&
	 [ \"\$(openstack image list --property owner=$PID -f value -c ID | grep -c .)\" = 0 ]"
check "the key pairs are gone" -- eval "[ \"\$(openstack keypair list --user $KP_USER -f value -c Name |
	grep -c kst-crash-$$-)\" = 0 ]"
kill "$HTTP_PID" 2>/dev/null
finish
