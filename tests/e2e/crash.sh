#!/usr/bin/env bash
# tests/e2e/crash.sh: crash safety against the real apiserver and the real OpenStack. A
# host is started with KUPENSTACK_CRASH_AT naming one crash point (host/fault.h) and kills
# itself with SIGKILL there, as `kill -9` would:
#   posted   a Neutron resource exists, not yet tagged with the object's UID;
#   created  OpenStack answered the create, nothing is recorded in Kubernetes yet;
#   updated  an in-place update (on create: a Router's interfaces, a SecurityGroup's rules)
#            changed the resource, nothing recorded yet;
#   deleted  OpenStack accepted the delete, the object's finalizer is still on;
#   status   the reconcile is done, its status write not yet sent.
# Each step creates, updates or deletes one object on a host armed at one point of its
# kind; the host dies there, and the step checks what it left. The next step's host (armed
# at a point of another kind, or one the recovery cannot reach) is the restart: on it the
# object ends Available with exactly one OpenStack resource, the one status.id names (an
# update: with the new spec applied and observed; a delete: the object gone and nothing
# left in OpenStack). A host without crash points is the restart of the last step. What
# exists is read through the APIs with an admin token, filtered by project, so that a query
# that fails fails the check. Finally deleting the namespace leaves nothing in OpenStack.
# Needs KUBECONFIG (admin, the CRDs applied) and OS_CLIENT_CONFIG_FILE (and OS_CLOUD,
# default kupenstack-admin, an admin; Nova with flavor id 1; an external network
# `public`). Prints TAP lines, the elapsed time, and `N passed, N failed`; exits 1 on any
# failure, 2 without KUBECONFIG or OS_CLIENT_CONFIG_FILE.
# needs: openstack
if [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	echo "${0##*/}: OS_CLIENT_CONFIG_FILE is not set (. /tmp/os.env)" >&2
	exit 2
fi
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/compute_lib.sh"
export OS_CLOUD=${OS_CLOUD:-kupenstack-admin}
T0=$SECONDS

NS=ks-e2e-crash-$$
FLAVOR=kst-crash-$$-tiny # Flavors are cluster-scoped: a name of this run
PLUGINS=$(mktemp -d "$WORK/plugins.XXXXXX")
for p in project network subnet router securitygroup port floatingip flavor keypair image \
	instance volume; do
	cp "$TOP/plugins/$p.lua" "$PLUGINS/"
done
# The image data is served on loopback: the operator's allow-list names it; streamed by the host.
printf 'allow_source_networks: "127.0.0.0/8"\nsource_method: stream\n' >"$PLUGINS/image.config.yaml"
declare -A KIND=([network]=Network [subnet]=Subnet [router]=Router [securitygroup]=SecurityGroup
	[port]=Port [floatingip]=FloatingIP [image]=Image [keypair]=KeyPair [instance]=Instance
	[volume]=Volume)
PID=

# ---- OpenStack, through the APIs as admin ----------------------------------------------

# ids KIND NAME: the IDs of the project's resources of KIND named NAME, one a line (floating
# IPs: of the FloatingIP NAME, by the description it is created with; key pairs: the name
# of KeyPair k-P is <namespace>_kst-crash-PID-P in Nova, and it is printed).
ids() {
	local n=$2
	case $1 in
	network | subnet | router | port)
		api_ids "$NEUTRON/${1}s?project_id=$PID&name=$n" ".${1}s[].id" ;;
	securitygroup) # not by project_id: a Neutron admin listing so makes the project a default group
		api_ids "$NEUTRON/security-groups?name=$n" \
			".security_groups[] | select(.project_id == \"$PID\") | .id" ;;
	floatingip)
		api_ids "$NEUTRON/floatingips?project_id=$PID" ".floatingips[] |
			select(.description == \"kupenstack $NS/$n kupenstack-uid-$(uid_of floatingip "$n")\") | .id" ;;
	instance) api_ids "$NOVA_URL/servers?all_tenants=1&project_id=$PID&name=%5E$n%24" '.servers[].id' ;;
	volume) api_ids "$CINDER_URL/volumes?all_tenants=1&project_id=$PID&name=$n" '.volumes[].id' ;;
	image) api_ids "$GLANCE_URL/images?owner=$PID&name=$n" '.images[].id' ;;
	keypair) api_ids "$NOVA_URL/os-keypairs?user_id=$KP_USER" \
		".keypairs[].keypair.name | select(. == \"${NS}_kst-crash-$$-${n#k-}\")" ;;
	esac
}

# count KIND NAME N: the project has N resources of KIND named NAME (a failed query fails).
count() {
	local out
	out=$(ids "$1" "$2") || { echo "$out"; return 1; }
	[ "$(grep -c . <<<"$out")" = "$3" ] && return 0
	echo "$(grep -c . <<<"$out") OpenStack ${1}s named $2, not $3: $out"
	return 1
}

# detail KIND NAME: what a kind makes beside its resource is there exactly once: a Router's
# interface on its subnet, a SecurityGroup's rules (port 22, and 80 once spec lists it).
detail() {
	local id=$3 out
	case $1 in
	router)
		out=$(api_ids "$NEUTRON/ports?device_id=$id&device_owner=network:router_interface" \
			'.ports[] | .fixed_ips[].subnet_id') || { echo "$out"; return 1; }
		[ "$out" = "$RSUBNET" ] || { echo "router $id has interfaces on [$out], not [$RSUBNET]"; return 1; } ;;
	securitygroup)
		out=$(api_ids "$NEUTRON/security-group-rules?security_group_id=$id&direction=ingress" \
			'.security_group_rules[].port_range_min') || { echo "$out"; return 1; }
		out=$(sort -n <<<"$out" | tr '\n' ' ')
		[ "$out" = "$(field securitygroup "$NS" "$2" '[.spec.resource.rules[].port_range_min] |
			sort | map(tostring + " ") | add')" ] || { echo "group $id has ingress rules for ports $out"; return 1; } ;;
	esac
}

# made KIND NAME: what a create that died left: one resource (and its details), no status.id.
made() {
	count "$1" "$2" 1 || return 1
	[ -z "$(sid "$1" "$2")" ] || { echo "status.id is $(sid "$1" "$2") already"; return 1; }
	[ "$1" = keypair ] || detail "$1" "$2" "$(ids "$1" "$2")"
}

# one KIND NAME: the object is Available, and exactly one OpenStack resource is named
# NAME: the one status.id names (and its details).
one() {
	local id
	avail "$1" "$2" && count "$1" "$2" 1 || return 1
	[ "$1" = keypair ] && return 0
	id=$(ids "$1" "$2")
	[ "$id" = "$(sid "$1" "$2")" ] || { echo "status.id $(sid "$1" "$2") is not $id"; return 1; }
	detail "$1" "$2" "$id"
}

# os_is KIND NAME JQ: GET the object's resource (by status.id) satisfies JQ.
os_is() {
	local url j id
	id=$(sid "$1" "$2")
	case $1 in
	network) url=$NEUTRON/networks/$id ;;
	securitygroup) url=$NEUTRON/security-groups/$id ;;
	volume) url=$CINDER_URL/volumes/$id ;;
	instance) url=$NOVA_URL/servers/$id ;;
	esac
	j=$(api "$url") || { echo "$j"; return 1; }
	jq -e "$3" <<<"$j" >/dev/null && return 0
	echo "GET $url fails $3:"
	jq -c . <<<"$j" | head -c 800
	return 1
}

# updated KIND NAME JQ: the object is Available, its spec observed, and JQ holds of its
# one resource.
updated() { one "$1" "$2" && gen_caught_up "$1" "$NS" "$2" && os_is "$1" "$2" "$3"; }

# held KIND NAME: the object is still there, being deleted, with the finalizer on.
held() {
	has "$1" "$NS" "$2" '.metadata.deletionTimestamp != null and
		(.metadata.finalizers | index(["kupenstack.io/openstack"]) != null)'
}

# ---- the steps -----------------------------------------------------------------------------

# The check a step leaves to the next host (the restart): NAME, then the command.
PENDING=()

# arm KIND POINT: start a host that crashes at KIND's POINT, and on it the check the step
# before left.
arm() {
	if ! host "$1:$2" >"$OUT" 2>&1; then
		fail "a host armed at $1:$2 starts" op
		return 1
	fi
	settle
}

settle() {
	[ ${#PENDING[@]} -gt 0 ] || return 0
	eventually 180 "${PENDING[0]}" op -- "${PENDING[@]:1}"
	PENDING=()
}

# create KIND POINT NAME: apply the YAML on stdin (an object NAME of KIND) to a host that
# crashes at POINT; the restart (the next step) ends with exactly one resource.
create() {
	local kind=$1 point=$2 name=$3 what="$1 $3, created, crash at $2"
	cat >"$WORK/obj.yaml"
	arm "${KIND[$kind]}" "$point" || return
	apply <"$WORK/obj.yaml"
	check "$what: the host dies of SIGKILL at the point" -- died_at "${KIND[$kind]}" "$point"
	check "$what: it left what it had made, once, and no status.id" -- made "$kind" "$name"
	PENDING=("$what: after a restart, Available with exactly one resource (status.id)" one "$kind" "$name")
}

# update KIND NAME PATCH JQ: merge PATCH into the object's spec on a host that crashes at
# KIND's "updated"; OpenStack's resource satisfies JQ, before (sync kinds) and after the
# restart, which also observes the new spec.
update() {
	local kind=$1 name=$2 what="$1 $2, updated, crash at updated"
	arm "${KIND[$kind]}" updated || return
	set_spec "$kind" "$NS" "$name" "$3"
	check "$what: the host dies of SIGKILL at the point" -- died_at "${KIND[$kind]}" updated
	check "$what: OpenStack has the change, the spec is not observed yet" -- \
		eval "os_is $kind $name '$4' && ! gen_caught_up $kind $NS $name"
	PENDING=("$what: after a restart, Available, observed, the change kept, one resource" \
		updated "$kind" "$name" "$4")
}

# delete KIND NAME: delete the object on a host that crashes at KIND's "deleted"; the
# restart removes the finalizer, and nothing is left in OpenStack.
delete() {
	local kind=$1 name=$2 what="$1 $2, deleted, crash at deleted"
	arm "${KIND[$kind]}" deleted || return
	k delete "$kind" "$name" -n "$NS" --wait=false >/dev/null
	check "$what: the host dies of SIGKILL at the point" -- died_at "${KIND[$kind]}" deleted
	case $kind in
	instance | volume) # deleted asynchronously: the resource may still be listed, deleting
		check "$what: the object is held by its finalizer" -- held "$kind" "$name" ;;
	*) check "$what: the object is held by its finalizer, its resource gone" -- \
		eval "held $kind $name && count $kind $name 0" ;;
	esac
	PENDING=("$what: after a restart, the object and its resource are gone" \
		eval "cr_gone $kind $name && count $kind $name 0")
}

# tidy: delete the namespace while a host still runs (its finalizers need it).
tidy() {
	k delete flavor "$FLAVOR" --wait=false >/dev/null 2>&1 # cluster-scoped: not the namespace's
	if k get namespace "$NS" >/dev/null 2>&1; then
		[ -n "${HPID[op]:-}" ] || host >/dev/null 2>&1
		drop_namespace 240
	fi
	[ -n "${HTTP_PID:-}" ] && kill "$HTTP_PID" 2>/dev/null
	k patch flavor "$FLAVOR" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 # if no host took it off
	cleanup
}
trap tidy EXIT

# ---- setup: the namespace's project, networks, a flavor, image data ----------------------

new_ns "$NS"
k label namespace "$NS" kupenstack.io/project=true >/dev/null
if ! host >"$OUT" 2>&1; then
	fail "the operator starts"
	finish
fi
eventually 60 "the labelled namespace gets a project" op -- project_of
project_of
check "setup: an admin token and the endpoints" -- api_setup
api_setup >/dev/null 2>&1

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
  resource: {cidr: 10.67.0.0/24, ip_version: 4}
---
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: rnet}
spec: {}
---
apiVersion: kupenstack.io/v1alpha1
kind: Subnet
metadata: {name: rnet}
spec:
  networkRef: {name: rnet}
  resource: {cidr: 10.68.0.0/24, ip_version: 4}
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
EOF
eventually 60 "setup: the Subnets are Available" op -- eval "avail subnet net && avail subnet rnet"
eventually 60 "setup: the Flavor is Available" op -- avail flavor "$FLAVOR"
eventually 90 "setup: the Image is Available" op -- avail image base
RSUBNET=$(sid subnet rnet)

# ---- creates -------------------------------------------------------------------------------
# Consecutive steps are of different kinds (or at a point the recovery does not reach), so
# that a host recovers the step before without dying of its own point.

create network posted n-posted <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: n-posted}
spec: {}
EOF
create subnet posted s-posted <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Subnet
metadata: {name: s-posted}
spec:
  networkRef: {name: net}
  resource: {cidr: 10.67.1.0/24, ip_version: 4}
EOF
create network created n-created <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: n-created}
spec: {}
EOF
create securitygroup updated sg-rules <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: SecurityGroup
metadata: {name: sg-rules}
spec:
  resource:
    rules:
      - {direction: ingress, protocol: tcp, port_range_min: 22, port_range_max: 22, remote_ip_prefix: 0.0.0.0/0}
EOF
create network status n-status <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: n-status}
spec: {}
EOF
create port posted p-posted <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Port
metadata: {name: p-posted}
spec:
  networkRef: {name: net}
EOF
create router updated r-if <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Router
metadata: {name: r-if}
spec:
  interfaces: [{subnetRef: {name: rnet}}]
EOF
create floatingip posted fip-posted <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: FloatingIP
metadata: {name: fip-posted}
spec:
  externalNetwork: {network: {name: public}}
EOF
for point in created status; do
	create image "$point" "i-$point" <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: i-$point}
spec:
  resource: {container_format: bare, disk_format: raw}
  source: {url: "$URL"}
EOF
	create volume "$point" "v-$point" <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Volume
metadata: {name: v-$point}
spec:
  resource: {size: 1}
EOF
	ssh-keygen -q -t ed25519 -N '' -C "kst-crash-$point" -f "$WORK/key-$point" </dev/null >/dev/null
	# Nova names it <namespace>_<spec.resource.name> (plugins/keypair.lua).
	create keypair "$point" "k-$point" <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: KeyPair
metadata: {name: k-$point}
spec:
  resource: {name: kst-crash-$$-$point, public_key: "$(cat "$WORK/key-$point.pub")"}
EOF
	create instance "$point" "vm-$point" <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-$point}
spec:
  imageRef: {name: base}
  flavorRef: {name: $FLAVOR}
  networks: [{networkRef: {name: net}}]
EOF
done

# ---- updates and deletes -------------------------------------------------------------------

update network n-created '{"resource": {"description": "changed"}}' '.network.description == "changed"'
update volume v-created '{"resource": {"description": "changed"}}' '.volume.description == "changed"'
update securitygroup sg-rules '{"resource": {"rules": [
	{"direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"},
	{"direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"}]}}' \
	'[.security_group.security_group_rules[] | select(.port_range_min == 80)] | length == 1'
update instance vm-created '{"powerState": "Shutoff"}' \
	'.server.status == "SHUTOFF" or .server["OS-EXT-STS:task_state"] == "powering-off"'
delete network n-posted
delete instance vm-status
delete router r-if
delete volume v-status
delete port p-posted

if host >"$OUT" 2>&1; then
	settle
else
	fail "a host without crash points starts" op
fi
check "the stopped Instance is SHUTOFF" -- os_is instance vm-created '.server.status == "SHUTOFF"'

# ---- deleting the namespace leaves nothing in OpenStack -----------------------------------

# leftovers: what of the project is left in Neutron, Nova, Cinder and Glance, and of the
# key pairs; a failed query counts as something left.
leftovers() {
	local r n left=0
	for r in networks subnets ports routers floatingips; do
		n=$(api_ids "$NEUTRON/$r?project_id=$PID" ".$r | length") || { echo "$n"; left=1; continue; }
		[ "$n" = 0 ] || { echo "$n $r left in project $PID"; left=1; }
	done
	n=$(api_ids "$NEUTRON/security-groups?fields=id&fields=project_id" \
		"[.security_groups[] | select(.project_id == \"$PID\")] | length") ||
		{ echo "$n"; left=1; }
	[ "$n" = 0 ] || { echo "$n security groups left in project $PID"; left=1; }
	n=$(api_ids "$NOVA_URL/servers?all_tenants=1&project_id=$PID" '.servers | length') || { echo "$n"; left=1; }
	[ "$n" = 0 ] || { echo "$n servers left in project $PID"; left=1; }
	n=$(api_ids "$CINDER_URL/volumes?all_tenants=1&project_id=$PID" '.volumes | length') || { echo "$n"; left=1; }
	[ "$n" = 0 ] || { echo "$n volumes left in project $PID"; left=1; }
	n=$(api_ids "$GLANCE_URL/images?owner=$PID" '.images | length') || { echo "$n"; left=1; }
	[ "$n" = 0 ] || { echo "$n images left in project $PID"; left=1; }
	n=$(api_ids "$NOVA_URL/os-keypairs?user_id=$KP_USER" \
		"[.keypairs[].keypair.name | select(startswith(\"${NS}_kst-crash-$$-\"))] | length") || { echo "$n"; left=1; }
	[ "$n" = 0 ] || { echo "$n key pairs kst-crash-$$-* left"; left=1; }
	return $left
}

check "before the namespace goes, the project holds what its objects made (the queries work)" -- \
	eval "! leftovers && [ \"\$(api_ids '$NEUTRON/networks?project_id=$PID' '.networks | length')\" -ge 1 ]"
k delete namespace "$NS" --wait=false >/dev/null 2>&1
eventually 300 "the namespace goes (its finalizer ran)" op -- k_gone namespace "$NS"
check "its project is gone from Keystone (not found)" -- project_gone
check "nothing of the project is left in Neutron, Nova, Cinder or Glance, nor a key pair" -- leftovers
echo "# ${0##*/}: $((SECONDS - T0)) s, $HOSTS hosts started"
finish
