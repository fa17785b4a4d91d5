# tests/e2e/services_world.sh: the world services.sh and services_fail.sh test in, sourced
# after lib.sh. services_world NS [CONFIG_LINE...]: the five service plugins and the
# ControlPlane's in $PLUG, each on the fixture charts (tests/fixtures/charts/osh-*, linked
# under $CHARTS) with a short poll and the extra settings given; their CRDs applied; the
# namespace NS made (only deploy/rbac.yaml's rights) with kupenstack-services granted in it
# alone. Sets KS_HELM, W (KS_WAIT, default 150), NS, PLUG, CHARTS and SERVICES; exits 3
# when the world cannot be made. services_cleanup: the scripts' EXIT trap. The two with a
# real OpenStack (services_os*.sh): services_os_install.
[ -n "${KS_HELM:-}" ] || eval "$("$TOP/tests/env/helm")"
export KS_HELM

services_world() {
	local s extra
	W=${KS_WAIT:-150}
	NS=$1
	shift
	extra=$(printf '%s\n' "$@")
	PLUG=$WORK/plugins
	CHARTS=$WORK/charts
	SERVICES="keystone glance placement nova neutron"
	mkdir -p "$PLUG" "$CHARTS"
	for s in $SERVICES; do
		cp "$TOP/plugins/$s.lua" "$PLUG/"
		ln -s "$TOP/tests/fixtures/charts/osh-$s" "$CHARTS/$s"
		{
			printf 'charts_dir: "%s"\npoll: 0.5\n' "$CHARTS"
			[ -z "$extra" ] || printf '%s\n' "$extra"
		} >"$PLUG/$s.config.yaml"
	done
	cp "$TOP/plugins/controlplane.lua" "$PLUG/"
	printf 'poll: 0.5\n' >"$PLUG/controlplane.config.yaml"
	for s in $SERVICES controlplane; do
		k apply -f "$TOP/crds/$s.yaml" >/dev/null || exit 3
	done
	k wait --for condition=established --timeout=60s crd/controlplanes.kupenstack.io \
		crd/keystones.kupenstack.io crd/neutrons.kupenstack.io >/dev/null || exit 3
	until_ok 30 k get controlplanes -A || exit 3
	new_ns "$NS" bare
	# What the services deploy is granted in this namespace only (deploy/rbac.yaml).
	k create rolebinding kupenstack-services -n "$NS" --clusterrole=kupenstack-services \
		--serviceaccount=kupenstack-system:kupenstack >/dev/null || exit 3
}

# services_cleanup: the EXIT trap of this world's scripts: services_pre_cleanup first when
# the script defines one, every host stopped, the service objects' finalizers dropped in
# every namespace made (their releases are the test's), then lib.sh's cleanup.
services_cleanup() {
	local ns o kind h
	if declare -F services_pre_cleanup >/dev/null; then services_pre_cleanup; fi
	for h in "${!HPID[@]}"; do [ -n "${HPID[$h]:-}" ] && stop_host "$h" TERM; done
	for ns in "${NAMESPACES[@]}"; do
		for kind in controlplanes $SERVICES; do
			for o in $(k get "$kind" -n "$ns" -o name 2>/dev/null); do
				k patch "$o" -n "$ns" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
			done
		done
	done
	cleanup
}

# os_cond KIND: the OpenStackHealthy condition of the ControlPlane cp's KIND object, a line.
os_cond() { field "$1" "$NS" "cp-$1" '.status.conditions[] | select(.type == "OpenStackHealthy") | "\(.status) \(.reason): \(.message)"'; }
# os_healthy KIND: it is OpenStackHealthy, its API answering.
os_healthy() { has "$1" "$NS" "cp-$1" '(.status.conditions[] | select(.type == "OpenStackHealthy") | .status == "True") and .status.openstack.api == "ok"'; }

# services_os_install: the host h with the operator's cloud (OS_CLIENT_CONFIG_FILE,
# OS_CLOUD), a ControlPlane cp of the five services in NS, Ready; then the checks that each
# reads its health from that OpenStack: every API answers, Nova counts its os-services and
# Neutron its agents (as the CLI lists them, in $WORK/services.json and agents.json), none
# down, Keystone its API only. Exits 3 when the host does not start.
services_os_install() {
	local s nsvc nagents
	start_host h "$PLUG" "$NS" --set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" --set cloud="$OS_CLOUD" ||
		{ echo "host did not start"; exit 3; }
	k apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: ControlPlane
metadata: {name: cp}
spec:
  version: "2023.1"
  services: {keystone: {}, glance: {}, placement: {}, nova: {}, neutron: {}}
EOF
	eventually "$W" "health: the ControlPlane is Ready" h -- \
		has controlplane "$NS" cp '.status.phase == "Ready" and .status.ready == "5/5"'
	for s in $SERVICES; do
		eventually "$W" "health: $s's API answers its version document (OpenStackHealthy True)" h -- os_healthy "$s"
	done
	openstack compute service list -f json >"$WORK/services.json"
	openstack network agent list -f json >"$WORK/agents.json"
	nsvc=$(jq length "$WORK/services.json")
	nagents=$(jq length "$WORK/agents.json")
	check "health: Nova counts its $nsvc os-services and none down ($(os_cond nova))" -- \
		has nova "$NS" cp-nova "(.status.openstack.total == $nsvc) and (.status.openstack.down == []) and $nsvc >= 3"
	check "health: Neutron counts its $nagents agents and none down ($(os_cond neutron))" -- \
		has neutron "$NS" cp-neutron "(.status.openstack.total == $nagents) and (.status.openstack.down == [])"
	check "health: Keystone checks its API only, no list ($(os_cond keystone))" -- \
		has keystone "$NS" cp-keystone '.status.openstack.total == null'
}
