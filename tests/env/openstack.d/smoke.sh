#!/usr/bin/env bash
# tests/env/openstack.d/smoke.sh: check that the OpenStack of tests/env/openstack does what
# KupenStack's tests need, as admin and as demo: tokens, catalog, images, networks, routers,
# floating IPs, servers going ACTIVE / SHUTOFF / ERROR / deleted, volumes.
#
# Uses the cloud in OS_CLOUD/OS_CLIENT_CONFIG_FILE; without them, runs `tests/env/openstack
# up` first (and leaves it up). Prints `N passed, N failed`; exits non-zero on any failure.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	eval "$("$HERE/../openstack" up)"
fi
export PATH=/usr/bin:$PATH # the Debian openstack client, not a pyenv one
KS_OS_DIR=$(dirname "$OS_CLIENT_CONFIG_FILE")

passed=0
failed=0
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

log() { printf 'smoke: %s\n' "$*" >&2; }

# check NAME CMD...: run CMD; count and report it.
check() {
	local name=$1
	shift
	if "$@" >"$WORK/out" 2>&1; then
		passed=$((passed + 1))
		echo "ok - $name"
	else
		failed=$((failed + 1))
		echo "not ok - $name"
		tail -n 8 "$WORK/out" | sed 's/^/    /'
	fi
}

os() { openstack --os-cloud "$CLOUD" "$@"; }
admin() { openstack --os-cloud kupenstack-admin "$@"; }

# wait_field SECONDS WANT CMD...: run CMD until it prints WANT.
wait_field() {
	local secs=$1 want=$2 got i
	shift 2
	for ((i = 0; i < secs * 2; i++)); do
		got=$("$@" 2>/dev/null || true)
		[ "$got" = "$want" ] && return 0
		sleep 0.5
	done
	echo "wanted $want, last got: $got"
	return 1
}

catalog_has_all() {
	local c t
	c=$(os catalog list -f value -c Type)
	for t in identity image compute network placement volumev3; do
		grep -qx "$t" <<<"$c" || { echo "no $t in catalog: $c"; return 1; }
	done
}

image_create() {
	os image create --file "$WORK/disk.img" --disk-format raw --container-format bare \
		-f value -c id "img-$WHO" >"$WORK/image" && [ -s "$WORK/image" ]
}

image_listed() { os image list -f value -c ID | grep -qx "$(cat "$WORK/image")"; }

server_create() {
	local t0=$SECONDS status
	os server create --flavor m1.tiny --image "$(cat "$WORK/image")" --network "n1-$WHO" \
		--wait -f value -c status "vm1-$WHO" >"$WORK/status" || return 1
	# --wait prints its progress first: the status is the last line.
	status=$(grep -v '^$' "$WORK/status" | tail -n1)
	log "server vm1-$WHO: $status after $((SECONDS - t0)) s (client and --wait's 5 s polls included)"
	[ "$status" = ACTIVE ]
}

port_active() {
	wait_field 30 ACTIVE os port list --server "vm1-$WHO" -f value -c Status
}

# port_bound: ML2's openvswitch driver bound the server's port to the compute host.
port_bound() {
	local id host
	id=$(os port list --server "vm1-$WHO" -f value -c ID)
	host=$(sed -n 's/^KS_HOST=//p' "$KS_OS_DIR/ports.env")
	[ "$(admin port show "$id" -f value -c binding_vif_type)" = ovs ] &&
		[ "$(admin port show "$id" -f value -c binding_host_id)" = "$host" ]
}

server_status() { os server show "vm1-$WHO" -f value -c status; }

volume_status() { os volume show "vol-$WHO" -f value -c status; }

agent_alive() {
	admin network agent list --agent-type open-vswitch -f value -c Alive | grep -qx True
}

hypervisor_up() { admin hypervisor list -f value -c State | grep -qx up; }

run_as() {
	CLOUD=$1
	WHO=$2
	log "as $WHO ($CLOUD)"
	check "$WHO: token issue" os token issue
	check "$WHO: catalog lists every service" catalog_has_all
	check "$WHO: image create --file" image_create
	check "$WHO: image list shows it" image_listed
	check "$WHO: network create" os network create "n1-$WHO"
	check "$WHO: subnet create" os subnet create --network "n1-$WHO" \
		--subnet-range 10.0.0.0/24 "s1-$WHO"
	check "$WHO: router create with gateway public" os router create "r1-$WHO" \
		--external-gateway public
	check "$WHO: router add subnet" os router add subnet "r1-$WHO" "s1-$WHO"
	check "$WHO: floating ip create public" sh -c \
		"openstack --os-cloud $CLOUD floating ip create public -f value -c id >'$WORK/fip'"
	check "$WHO: server create --wait goes ACTIVE" server_create
	check "$WHO: server port goes ACTIVE" port_active
	check "$WHO: server port bound by the openvswitch driver" port_bound
	check "$WHO: server stop goes SHUTOFF" sh -c "openstack --os-cloud $CLOUD server stop vm1-$WHO"
	check "$WHO: ... SHUTOFF" wait_field 60 SHUTOFF server_status
	check "$WHO: server set --state error (admin) goes ERROR" \
		admin server set --state error "$(os server show "vm1-$WHO" -f value -c id)"
	check "$WHO: ... ERROR" wait_field 30 ERROR server_status
	check "$WHO: server delete --wait" os server delete --wait "vm1-$WHO"
	check "$WHO: volume create" os volume create --size 1 "vol-$WHO"
	check "$WHO: ... available" wait_field 60 available volume_status
	check "$WHO: volume delete" os volume delete "vol-$WHO"
	check "$WHO: floating ip delete" sh -c \
		"openstack --os-cloud $CLOUD floating ip delete \$(cat '$WORK/fip')"
	check "$WHO: router remove subnet, delete" sh -c \
		"openstack --os-cloud $CLOUD router remove subnet r1-$WHO s1-$WHO &&
		openstack --os-cloud $CLOUD router delete r1-$WHO"
	check "$WHO: network delete" os network delete "n1-$WHO"
	check "$WHO: image delete" os image delete "$(cat "$WORK/image")"
}

head -c 1048576 /dev/zero >"$WORK/disk.img"
CLOUD=kupenstack-admin
check "OVS agent listed and alive" agent_alive
check "hypervisor listed and up" hypervisor_up
check "flavor m1.tiny exists" admin flavor show m1.tiny
run_as kupenstack-admin admin
run_as kupenstack-demo demo

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
