#!/usr/bin/env bash
# needs: openstack
# tests/e2e/services_os_down.sh: what the health of the service kinds read from OpenStack itself
# (ks.service.openstack_health, the setting openstack_health), through the real host,
# against the real API server with the stand-in kubelet (the fixture charts) and the real
# OpenStack of tests/env/openstack as the operator's cloud: once a ControlPlane's services
# are Ready, each reports OpenStackHealthy from its API's version document, Nova from its
# os-services (conductor, scheduler, compute), Neutron from its agents, with what is down
# in status.openstack (tests/e2e/services_os.sh), reports down. It stops nova-conductor,
# and the stand-in Open vSwitch agent, of that OpenStack (tests/env/openstack stop-service, the OpenStack of the clouds.yaml's
# directory) and sees Nova, then Neutron, report it down by name and host, and healthy
# again once started (start-service waits until every service and agent reports up; the
# exit trap starts them whatever happens, and the last checks see every service up). Its
# own script: this part is slow, and a stopped nova-conductor must not be seen by the
# scripts beside it.
# Needs OS_CLIENT_CONFIG_FILE (and OS_CLOUD). No timed assertions: waits by observation
# (Nova shows a service down 30 s after its last report with tests/env/openstack's
# nova.conf, 60 s with Nova's defaults; Neutron an agent after 30 s).
. "$(dirname "$0")/lib.sh"
if [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	echo "${0##*/}: OS_CLIENT_CONFIG_FILE is not set" >&2
	exit 2
fi
export OS_CLOUD=${OS_CLOUD:-kupenstack-admin}

. "$(dirname "$0")/services_world.sh"
services_world "svcd-$$" "openstack_health: 1"
# The processes this script stopped (tests/env/openstack stop-service), started again at
# exit whatever happened, so that the shared OpenStack is left as it was found.
OSDIR=$(dirname "$OS_CLIENT_CONFIG_FILE")
STOPPED=
os_service() { KS_OS_DIR=$OSDIR "$TOP/tests/env/openstack" "$@"; }
services_pre_cleanup() {
	[ -n "$STOPPED" ] || return 0
	echo "# starting $STOPPED of $OSDIR again" >&2
	os_service start-service "$STOPPED" >&2 || echo "# could not start $STOPPED again" >&2
}
trap services_cleanup EXIT
services_os_install

# A process of the OpenStack stopped (stop-service NAME), reported down by KIND's object as
# WHO (binary@host, what os-services or agents names) and healthy again once started.
down_and_up() {
	local kind=$1 name=$2 who=$3 d=$((W > 240 ? W : 240))
	if [ -z "${who#*@}" ]; then
		echo "no host for $name in OpenStack's list" >"$OUT"
		fail "down: OpenStack lists $name with its host"
		return
	fi
	STOPPED=$name
	check "down: $name of the OpenStack stopped (tests/env/openstack stop-service)" -- \
		os_service stop-service "$name"
	eventually "$d" "down: $kind reports $who down (OpenStackHealthy False, ServiceDown)" h -- \
		has "$kind" "$NS" "cp-$kind" "(.status.conditions[] | select(.type == \"OpenStackHealthy\") |
			.status == \"False\" and .reason == \"ServiceDown\" and (.message | contains(\"$who\")))
			and any(.status.openstack.down[]; . == \"$who\")"
	check "down: OpenStack itself lists $who down ($(os_cond "$kind"))" -- os_lists_down "$kind" "$who"
	check "up: $name started again; start-service saw every service and agent up" -- \
		os_started "$name"
	os_service status && STOPPED=
	eventually "$d" "up: $kind reports healthy again, nothing down" h -- \
		has "$kind" "$NS" "cp-$kind" "(.status.conditions[] | select(.type == \"OpenStackHealthy\") |
			.status == \"True\") and .status.openstack.down == []"
}
# os_down nova|neutron...: the compute services or network agents that the CLI lists down,
# as binary@host (one `openstack` call each: a second or more of CPU).
os_down() {
	local kind
	for kind in "$@"; do
		case $kind in
		nova) openstack compute service list -f json |
			jq -r '.[] | select(.State != "up") | "\(.Binary)@\(.Host)"' ;;
		neutron) openstack network agent list -f json |
			jq -r '.[] | select(.Alive != true) | "\(.Binary)@\(.Host)"' ;;
		esac || return
	done
}
# os_lists_down KIND BINARY@HOST: the CLI lists it down. os_none_down: it lists nothing down.
os_lists_down() { os_down "$1" >"$WORK/os-down" && cat "$WORK/os-down" && grep -qxF "$2" "$WORK/os-down"; }
os_none_down() { os_down nova neutron >"$WORK/os-down" && cat "$WORK/os-down" && ! [ -s "$WORK/os-down" ]; }
# os_started NAME: start-service NAME, and every process `up` started runs (status).
os_started() { os_service start-service "$1" && os_service status; }
if [ -f "$OSDIR/run/nova-conductor.pid" ]; then
	chost=$(jq -r '.[] | select(.Binary == "nova-conductor") | .Host' "$WORK/services.json" | head -n1)
	down_and_up nova nova-conductor "nova-conductor@$chost"
	ahost=$(jq -r '.[] | select(.Binary == "neutron-openvswitch-agent") | .Host' "$WORK/agents.json" | head -n1)
	down_and_up neutron fake-ovs-agent "neutron-openvswitch-agent@$ahost"
	check "after: the CLI lists every compute service up and every network agent alive" -- \
		os_none_down
else
	echo "# not stopping services: $OSDIR is not a state dir of tests/env/openstack"
fi

finish
