#!/usr/bin/env bash
# tests/e2e/tenancy.sh: Namespace = Project, against the real apiserver and the real
# OpenStack. One `kupenstack run` serves every namespace (as the operator does in a
# cluster): two labelled namespaces get two Keystone projects, named after the cluster
# and the namespace and tagged with the namespace's UID; a Network of the same name in
# each lands in its own project; a namespace not labelled gets no project and its objects
# wait, saying why; Kubernetes RBAC (the built-in `edit` role, which deploy/'s ClusterRoles
# aggregate into) lets a user create the kinds in a namespace they are bound in and not in
# another; deleting one namespace deletes its resources and its project and leaves the
# other alone. Cross-tenant attacks by alice, an editor of A through `edit`, each refused:
# creating, importing or deleting a Flavor (cluster-scoped, kupenstack-flavor-admin only);
# importing B's key pair, or squatting its name with its public key, and deleting that;
# a Network named like one made by hand in A's project (not adopted, not deleted), and an
# import deleted without onDelete (the resource stays). Needs KUBECONFIG (admin, the CRDs applied) and OS_CLIENT_CONFIG_FILE (and
# OS_CLOUD, default kupenstack-admin, an admin). Runs the host cluster-wide: not to be run
# beside another test that runs a host. Prints TAP lines and `N passed, N failed`; exits 1
# on any failure, 2 without KUBECONFIG or OS_CLIENT_CONFIG_FILE.
# needs: openstack
if [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	echo "${0##*/}: OS_CLIENT_CONFIG_FILE is not set (. /tmp/os.env)" >&2
	exit 2
fi
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export OS_CLOUD=${OS_CLOUD:-kupenstack-admin}

A=ks-e2e-ten-a-$$ B=ks-e2e-ten-b-$$ C=ks-e2e-ten-c-$$ D=ks-e2e-ten-d-$$ E=ks-e2e-ten-e-$$
CLUSTER=kst$$
PLUGINS=$(mktemp -d "$WORK/plugins.XXXXXX")
for p in project network flavor keypair; do
	cp "$TOP/plugins/$p.lua" "$PLUGINS/"
done

avail() {
	has network "$1" "$2" '.status.id != null and
		any(.status.conditions[]?; .type == "Available" and .status == "True")'
}
# os_absent ARGS...: `openstack ARGS` fails because the thing is not found (not because of
# any other failure: auth, network, a CLI error).
os_absent() {
	local out
	if out=$(openstack "$@" 2>&1); then
		echo "openstack $* still finds it"
		return 1
	fi
	grep -qE '^(Error while executing command: )?No [A-Za-z]+ (found for|with a name or ID of) ' <<<"$out" && return 0
	echo "openstack $* failed otherwise: $out"
	return 1
}
pid_of() { k get namespace "$1" -o json | jq -r '.metadata.annotations["kupenstack.io/project-id"] // empty'; }
net() {
	k apply -n "$1" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net}
spec: {}
EOF
}

# tidy: delete the namespaces while the host still runs (their finalizers need it).
tidy() {
	local ns
	for ns in "$A" "$B" "$C" "$D" "$E"; do
		k delete namespace "$ns" --wait=false >/dev/null 2>&1
	done
	for ns in "$A" "$B" "$C" "$D" "$E"; do
		if ! until_ok 120 eval "! k get namespace $ns"; then
			echo "# namespace $ns did not go; its finalizers are taken off"
			k patch network net -n "$ns" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
			k patch namespace "$ns" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
		fi
	done
	k delete rolebinding alice-edit -n "$A" --ignore-not-found >/dev/null 2>&1
	k delete flavor "ks-e2e-ten-$$" --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1
	cleanup # stops the host first: unlabelled, default would be taken as a project's
	k label namespace default kupenstack-system kupenstack.io/project- >/dev/null 2>&1
}
trap tidy EXIT

k apply -f "$TOP/deploy/rbac-aggregate.yaml" >/dev/null
for ns in "$A" "$B" "$C"; do new_ns "$ns"; done
k label namespace "$A" kupenstack.io/project=true >/dev/null
k label namespace "$B" kupenstack.io/project=true >/dev/null
if ! start_host op "$PLUGINS" - --set cluster="$CLUSTER" --set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" \
	--set cloud="$OS_CLOUD" >"$OUT" 2>&1; then
	fail "the operator starts"
	finish
fi

eventually 180 "namespace A gets a project" op -- eval "[ -n \"\$(pid_of $A)\" ]"
eventually 180 "namespace B gets a project" op -- eval "[ -n \"\$(pid_of $B)\" ]"
PA=$(pid_of "$A") PB=$(pid_of "$B")
check "two namespaces, two projects" -- eval "[ -n '$PA' ] && [ -n '$PB' ] && [ '$PA' != '$PB' ]"
project_is() { # project_is ID NAMESPACE
	local j uid
	j=$(openstack project show "$1" -f json) || return 1
	uid=$(k get namespace "$2" -o jsonpath='{.metadata.uid}')
	jq -e --arg n "$CLUSTER-$2" --arg t "$uid" '.name == $n and (.tags | tostring | contains($t))' \
		<<<"$j" >/dev/null || { jq -c . <<<"$j"; echo "not named $CLUSTER-$2 with tag $uid"; return 1; }
}
check "A's project is named <cluster>-<namespace> and tagged with the namespace's UID" -- project_is "$PA" "$A"
check "B's project likewise" -- project_is "$PB" "$B"
check "the namespaces carry the finalizer kupenstack.io/project" -- eval \
	"k get namespace $A -o json | jq -e '.spec.finalizers + (.metadata.finalizers // []) |
		index(\"kupenstack.io/project\") != null'"

net "$A" && net "$B" && net "$C"
eventually 180 "A's Network is Available" op -- avail "$A" net
eventually 180 "B's Network is Available" op -- avail "$B" net
NA=$(field network "$A" net .status.id) NB=$(field network "$B" net .status.id)
in_project() { # in_project NETWORK-ID PROJECT-ID
	local p
	p=$(openstack network show "$1" -f value -c project_id) || return 1
	[ "$p" = "$2" ] || { echo "network $1 is in project $p, not $2"; return 1; }
}
check "A's network is in A's project" -- in_project "$NA" "$PA"
check "B's network is in B's project, another network" -- eval "[ '$NA' != '$NB' ] && in_project $NB $PB"
check "status.projectID says so" -- has network "$A" net ".status.projectID == \"$PA\""
eventually 30 "a namespace without the label: no project, its Network waits saying why" op -- \
	has network "$C" net 'any(.status.conditions[]?; .type == "Available" and .reason == "Waiting"
		and (.message | test("no OpenStack project.*kupenstack.io/project=true")))'
check "... and nothing of it is made in OpenStack" -- \
	eval "[ -z \"\$(pid_of $C)\" ] && [ -z \"\$(field network $C net '.status.id // empty')\" ]"

# RBAC: alice may edit A (the built-in edit role, into which kupenstack-edit aggregates).
k create rolebinding alice-edit -n "$A" --clusterrole edit --user alice >/dev/null
eventually 30 "RBAC: edit in A lets alice create Instances in A" -- \
	k auth can-i create instances.kupenstack.io -n "$A" --as alice
check "RBAC: ... and Networks in A" -- k auth can-i create networks.kupenstack.io -n "$A" --as alice
check "RBAC: but not in B" -- eval "! k auth can-i create networks.kupenstack.io -n $B --as alice"
check "RBAC: nor may she write the status the operator writes" -- \
	eval "! k auth can-i update networks.kupenstack.io --subresource status -n $A --as alice"
check "RBAC: alice's apply in A works as a user's would" -- eval "k apply -n $A --as alice -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: alice}
spec: {}
EOF"
check "RBAC: ... and in B is forbidden" -- eval "! k apply -n $B --as alice -f - 2>&1 <<EOF | grep -q forbidden
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: alice}
spec: {}
EOF
! k get network alice -n $B 2>/dev/null"
eventually 180 "alice's Network in A is Available, in A's project" op -- eval \
	"avail $A alice && in_project \$(field network $A alice .status.id) $PA"

# ---- cross-tenant attacks by alice (edit in A) ----------------------------------------------

# refused_as_alice NS FILE: `kubectl apply --as alice` of the object in FILE is forbidden
# (a file: check runs its command with stdin from /dev/null).
refused_as_alice() {
	if k apply -n "$1" --as alice -f "$2" >"$WORK/alice.out" 2>&1; then
		echo "alice's apply was allowed"
		return 1
	fi
	grep -q forbidden "$WORK/alice.out" || { cat "$WORK/alice.out"; return 1; }
}
FLAVOR=ks-e2e-ten-$$
check "Flavor: alice (edit in A) may not create Flavors, in A or cluster-wide" -- eval \
	"! k auth can-i create flavors.kupenstack.io -n $A --as alice &&
	 ! k auth can-i create flavors.kupenstack.io --as alice"
cat >"$WORK/flavor-alice.yaml" <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: $FLAVOR-alice}
spec: {resource: {name: $FLAVOR-alice, ram: 64, vcpus: 1, disk: 1}}
EOF
check "Flavor: alice's create of a public flavor is forbidden" -- \
	refused_as_alice "$A" "$WORK/flavor-alice.yaml"
cat >"$WORK/flavor-steal.yaml" <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: $FLAVOR-steal}
spec: {import: {id: "1"}}
EOF
check "Flavor: alice's import of m1.tiny (id 1) is forbidden" -- \
	refused_as_alice "$A" "$WORK/flavor-steal.yaml"
check "Flavor: ... and nothing of alice's is in Nova" -- \
	os_absent flavor show "$FLAVOR-alice"
k apply -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: $FLAVOR}
spec: {resource: {ram: 64, vcpus: 1, disk: 1, extra_specs: {"hw:cpu_policy": shared}}}
EOF
flavor_avail() {
	k get flavor "$FLAVOR" -o json | jq -e '.status.id != null and
		any(.status.conditions[]?; .type == "Available" and .status == "True")' >/dev/null &&
		openstack flavor show "$FLAVOR" >/dev/null
}
eventually 180 "Flavor: a cluster admin's (cluster-scoped) Flavor is Available, made with the operator's credentials" op -- \
	flavor_avail
check "Flavor: alice may not delete it, nor rewrite its extra specs" -- eval \
	"! k delete flavor $FLAVOR --as alice 2>/dev/null &&
	 ! k patch flavor $FLAVOR --as alice --type merge -p '{\"spec\":{\"resource\":{\"extra_specs\":{}}}}' 2>/dev/null &&
	 openstack flavor show $FLAVOR -f json | jq -e '.properties[\"hw:cpu_policy\"] == \"shared\"' >/dev/null"

# B's key pair (made here by the admin, as B's users would): alice imports it, then deletes
# her object; she squats its name with its (public) key, then deletes that.
ssh-keygen -q -t ed25519 -N '' -C "ks-e2e-ten-$$" -f "$WORK/bkey" </dev/null >/dev/null
k apply -n "$B" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: KeyPair
metadata: {name: key}
spec: {resource: {public_key: "$(cat "$WORK/bkey.pub")"}}
EOF
kp_avail() {
	has keypair "$1" "$2" '.status.id != null and
		any(.status.conditions[]?; .type == "Available" and .status == "True")'
}
eventually 180 "KeyPair: B's key pair is Available" op -- kp_avail "$B" key
BKEY=$(field keypair "$B" key .status.id)
BFP=$(openstack keypair show "$BKEY" -f value -c fingerprint 2>/dev/null)
check "KeyPair: B's is named <namespace>_<name>" -- eval "[ '$BKEY' = '${B}_key' ] && [ -n '$BFP' ]"
k apply -n "$A" --as alice -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: KeyPair
metadata: {name: steal}
spec: {import: {id: "$BKEY"}}
---
apiVersion: kupenstack.io/v1alpha1
kind: KeyPair
metadata: {name: steal-filter}
spec: {import: {filter: {name: "$BKEY"}}}
---
apiVersion: kupenstack.io/v1alpha1
kind: KeyPair
metadata: {name: squat}
spec: {resource: {name: "$BKEY", public_key: "$(cat "$WORK/bkey.pub")"}}
EOF
refused_kp() {
	has keypair "$A" "$1" '.status.id == null and any(.status.conditions[]?; .type == "Available"
		and .reason == "InvalidConfiguration" and (.message | test("only name a key pair of this namespace")))'
}
eventually 180 "KeyPair: alice's import of B's key pair by id is refused (InvalidConfiguration)" op -- refused_kp steal
eventually 180 "KeyPair: ... and by a filter on its name" op -- refused_kp steal-filter
eventually 180 "KeyPair: alice's key pair named like B's, with B's public key, is another one" op -- \
	eval "kp_avail $A squat && [ \"\$(field keypair $A squat .status.id)\" = '${A}_$BKEY' ]"
k delete keypair steal steal-filter squat -n "$A" --as alice --wait=true --timeout=180s >/dev/null 2>&1
check "KeyPair: alice deleted all three: B's key pair is still in Nova, with B's key" -- \
	eval "[ \"\$(openstack keypair show $BKEY -f value -c fingerprint)\" = '$BFP' ]"
check "KeyPair: ... and B's KeyPair is still Available" -- kp_avail "$B" key

# A Network made by hand in A's project, then alice's Network of the same name: not ours, so
# neither adopted nor deleted with her object. And alice's import of another hand-made one,
# deleted without onDelete: it stays (an import detaches by default).
HAND=$(openstack network create --project "$PA" "byhand-$$" -f value -c id)
HAND2=$(openstack network create --project "$PA" "imported-$$" -f value -c id)
k apply -n "$A" --as alice -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: byhand-$$}
spec: {}
---
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: imported}
spec: {import: {id: "$HAND2"}}
EOF
eventually 180 "Network: alice's, named like one made by hand in A's project, is a network of its own" op -- \
	eval "avail $A byhand-$$ && [ \"\$(field network $A byhand-$$ .status.id)\" != '$HAND' ]"
eventually 180 "Network: alice's import by id adopts the other one" op -- \
	eval "avail $A imported && [ \"\$(field network $A imported .status.id)\" = '$HAND2' ]"
MINE=$(field network "$A" "byhand-$$" .status.id)
k delete network "byhand-$$" imported -n "$A" --as alice --wait=true --timeout=180s >/dev/null 2>&1
check "Network: deleting alice's deletes hers, and not the hand-made one" -- eval \
	"openstack network show $HAND >/dev/null && os_absent network show $MINE"
check "Network: deleting the import (onDelete unset) leaves the network in OpenStack" -- \
	eval "openstack network show $HAND2 >/dev/null"
openstack network delete "$HAND" "$HAND2" >/dev/null 2>&1

# Deleting A removes its resources, then its project, then the namespace; B stays.
NALICE=$(field network "$A" alice .status.id)
k delete namespace "$A" --wait=false >/dev/null
eventually 180 "deleting namespace A: the namespace goes" op -- eval "! k get namespace $A"
check "A's networks are gone from Neutron" -- eval \
	"os_absent network show $NA && os_absent network show $NALICE"
check "A's project is gone from Keystone" -- os_absent project show "$PA"
check "B's project and network are untouched" -- eval "openstack project show $PB >/dev/null && in_project $NB $PB"
check "B's Network is still Available" -- avail "$B" net

# --set project_namespaces=all: every namespace but kube-* and those labelled false. The
# cluster's own default and kupenstack-system are labelled false for the test.
stop_host op
k label namespace default kupenstack-system kupenstack.io/project=false --overwrite >/dev/null
new_ns "$D"
new_ns "$E"
k label namespace "$E" kupenstack.io/project=false >/dev/null
if ! start_host op "$PLUGINS" - --set cluster="$CLUSTER" --set project_namespaces=all \
	--set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" --set cloud="$OS_CLOUD" >"$OUT" 2>&1; then
	fail "--set project_namespaces=all: the operator starts"
	finish
fi
eventually 180 "--set project_namespaces=all: an unlabelled namespace gets a project" op -- \
	eval "[ -n \"\$(pid_of $D)\" ]"
check "... named <cluster>-<namespace>" -- project_is "$(pid_of "$D")" "$D"
untouched() { # untouched NS: no project annotation, no finalizer of ours
	k get namespace "$1" -o json | jq -e '(.metadata.annotations["kupenstack.io/project-id"] == null)
		and ((.metadata.finalizers // []) | index("kupenstack.io/project") == null)' >/dev/null ||
		{ echo "namespace $1 was touched"; k get namespace "$1" -o json | jq -c .metadata; return 1; }
}
eventually 30 "... and B (labelled) keeps its project" op -- eval "[ \"\$(pid_of $B)\" = '$PB' ]"
check "a namespace labelled kupenstack.io/project=false is left alone" -- untouched "$E"
check "kube-system is left alone (no finalizer, no project)" -- untouched kube-system
check "kube-public likewise" -- untouched kube-public
check "no project for kube-system in Keystone" -- \
	os_absent project show "$CLUSTER-kube-system"

# What no object of a namespace deletes (onDelete: detach, or made outside KupenStack)
# keeps its deletion waiting, named on the Namespace's conditions; the annotation
# kupenstack.io/on-delete=keep-project lets it go and leaves the project with it.
PD=$(pid_of "$D")
k apply -n "$D" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: kept}
spec: {onDelete: detach}
EOF
net "$D"
eventually 180 "D: a Network with onDelete: detach is Available" op -- avail "$D" kept
eventually 180 "D: ... and a managed one" op -- avail "$D" net
NKEPT=$(field network "$D" kept .status.id)
ND=$(field network "$D" net .status.id)
SGOUT=$(openstack security group create --project "$PD" "ks-e2e-outside-$$" -f value -c id)
k delete namespace "$D" --wait=false >/dev/null
eventually 180 "deleting D: its managed network is deleted" op -- \
	os_absent network show "$ND"
eventually 180 "... what is left is named on the Namespace's Progressing condition" op -- \
	eval "k get namespace $D -o json | jq -e '.status.conditions[]? | select(.type == \"Progressing\")
		| .message | test(\"1 networks, 1 security groups in project $PD.*keep-project\")' >/dev/null"
check "... the namespace stays, and so do the project, the detached network and the group" -- \
	eval "k get namespace $D >/dev/null && in_project $NKEPT $PD && openstack security group show $SGOUT >/dev/null"
k annotate namespace "$D" kupenstack.io/on-delete=keep-project >/dev/null
eventually 180 "annotated keep-project: the namespace goes" op -- eval "! k get namespace $D"
check "... leaving the project with the detached network and the group in it" -- \
	eval "in_project $NKEPT $PD && openstack security group show $SGOUT >/dev/null"
check "... and an Event ProjectKept says so" -- eval "k get events -n default -o json | jq -e \
	'.items[] | select(.reason == \"ProjectKept\" and .involvedObject.name == \"$D\")
		| .message | test(\"$PD.*holding 1 networks, 1 security groups\")' >/dev/null"
openstack network delete "$NKEPT" >/dev/null 2>&1
openstack security group delete "$SGOUT" >/dev/null 2>&1
openstack project delete "$PD" >/dev/null 2>&1
finish
