#!/usr/bin/env bash
# needs: openstack
# tests/e2e/services_os.sh: the health of the service kinds read from OpenStack itself
# (ks.service.openstack_health, the setting openstack_health), through the real host,
# against the real API server with the stand-in kubelet (the fixture charts) and the real
# OpenStack of tests/env/openstack as the operator's cloud: once a ControlPlane's services
# are Ready, each reports OpenStackHealthy from its API's version document, Nova from its
# os-services (conductor, scheduler, compute), Neutron from its agents, with what is down
# in status.openstack; a service's region selects the catalog's endpoints (one the catalog
# lacks: unreachable). A host whose cloud does not answer reports the API unreachable.
# A stopped nova-conductor and OVS agent reported down: tests/e2e/services_os_down.sh.
# Needs OS_CLIENT_CONFIG_FILE (and OS_CLOUD). No timed assertions.
. "$(dirname "$0")/lib.sh"
if [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	echo "${0##*/}: OS_CLIENT_CONFIG_FILE is not set" >&2
	exit 2
fi
export OS_CLOUD=${OS_CLOUD:-kupenstack-admin}

. "$(dirname "$0")/services_world.sh"
services_world "svco-$$" "openstack_health: 1"
trap services_cleanup EXIT
services_os_install

# The region: the health is read from the catalog's endpoints of the service's region (the
# ControlPlane's, inherited; a service's own winning). The real cloud has RegionOne only.
region=$(openstack region list -f value -c Region | head -1)
k patch controlplane -n "$NS" cp --type merge -p "{\"spec\":{\"region\":\"$region\",\"services\":{\"glance\":{\"region\":\"Nowhere-$$\"}}}}" >/dev/null
eventually "$W" "region: Glance in a region the catalog lacks reports its API unreachable, naming the region" h -- \
	has glance "$NS" cp-glance ".spec.region == \"Nowhere-$$\" and (.status.conditions[] | select(.type == \"OpenStackHealthy\") | .status == \"False\" and .reason == \"APIUnreachable\" and (.message | test(\"region Nowhere-$$\")))"
eventually "$W" "region: Keystone in the ControlPlane's region $region still answers" h -- \
	eval "has keystone $NS cp-keystone '.spec.region == \"$region\" and .status.observedGeneration == .metadata.generation and .status.openstack != null' && os_healthy keystone"
# The region reached every service's release (a new generation each): Ready again before
# the next part, which checks that the ControlPlane stays Ready.
eventually "$W" "region: the ControlPlane is Ready again at its new generation" h -- \
	has controlplane "$NS" cp '.status.phase == "Ready" and .status.observedGeneration == .metadata.generation'

# A cloud that does not answer: the same clouds.yaml with Keystone on a closed port.
stop_host h TERM
port=$(free_port)
sed -E "s#(auth_url: *['\"]?https?://[^:/]+):[0-9]+#\1:$port#" "$OS_CLIENT_CONFIG_FILE" >"$WORK/dead-clouds.yaml"
check "unreachable: the dead clouds.yaml names another port" -- \
	bash -c "! cmp -s '$OS_CLIENT_CONFIG_FILE' '$WORK/dead-clouds.yaml'"
start_host h "$PLUG" "$NS" --set-file clouds_yaml="$WORK/dead-clouds.yaml" --set cloud="$OS_CLOUD" ||
	{ echo "host did not start"; exit 3; }
eventually "$W" "unreachable: Keystone reports its API does not answer (OpenStackHealthy False, APIUnreachable)" h -- \
	has keystone "$NS" cp-keystone '.status.conditions[] | select(.type == "OpenStackHealthy") | .status == "False" and .reason == "APIUnreachable"'
# The ControlPlane must be Ready, not Degraded by OpenStack's health (asked within the
# wait: the restarted host's first status writes come after its start; that it runs no
# hook Job again and rolls nothing is services.sh's part 1b).
eventually "$W" "unreachable: the ControlPlane is Ready (Kubernetes' health does not follow OpenStack's) ($(os_cond keystone))" h -- \
	has controlplane "$NS" cp '.status.phase == "Ready"'

finish
