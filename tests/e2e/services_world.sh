# tests/e2e/services_world.sh: the world services.sh and services_fail.sh test in, sourced
# after lib.sh. services_world NS [CONFIG_LINE...]: the five service plugins and the
# ControlPlane's in $PLUG, each on the fixture charts (tests/fixtures/charts/osh-*, linked
# under $CHARTS) with a short poll and the extra settings given; their CRDs applied; the
# namespace NS made (only deploy/rbac.yaml's rights) with kupenstack-services granted in it
# alone. Sets KS_HELM, W (KS_WAIT, default 150), NS, PLUG, CHARTS and SERVICES; exits 3
# when the world cannot be made.
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
