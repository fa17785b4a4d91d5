#!/usr/bin/env bash
# tests/kube/crds.sh: the CRDs of crds/, the samples of deploy/samples/ and the aggregated
# roles of deploy/rbac-aggregate.yaml, against the real apiserver of $KUBECONFIG (admin).
# Installs the CRDs and the roles (and leaves them installed: other tests and a running
# operator may use them), then checks that every kind is served with its short name and the
# `openstack` category, that `kubectl explain` documents the fields, that every sample is
# accepted, that invalid specs are refused by the apiserver with a message naming the
# field, that valid edge cases are accepted, that defaults are filled in, that the printer
# columns show status, and that a binding to the built-in view/edit/admin grants the kinds
# in that namespace only. Works in a fresh namespace that it deletes at the end; nothing
# reaches OpenStack (no operator is needed). Prints TAP lines and `N passed, N failed`;
# exits 1 on any failure, 2 when KUBECONFIG is not set.
# sanitizer: no host code
set -uo pipefail

if [ -z "${KUBECONFIG:-}" ]; then
	echo 'crds.sh: KUBECONFIG is not set (eval "$(tests/env/kube up)")' >&2
	exit 2
fi

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d /tmp/kupenstack-crds.XXXXXX)
OUT=$WORK/out
NS=ks-crds-$$
OTHER=$NS-other
passed=0
failed=0

KINDS=(instance image flavor keypair network subnet router securitygroup port floatingip volume)
declare -A SHORT=([instance]=osvm [image]=osimg [flavor]=osflavor [keypair]=oskp
	[network]=osnet [subnet]=ossubnet [router]=osrouter [securitygroup]=ossg
	[port]=osport [floatingip]=osfip [volume]=osvol)

# A discovery cache of our own: kubectl must not answer from one made before the CRDs.
k() { kubectl --cache-dir="$WORK/cache" "$@"; }
export WORK
export -f k

cleanup() {
	k delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

pass() { passed=$((passed + 1)); printf 'ok - %s\n' "$1"; }
fail() {
	failed=$((failed + 1))
	printf 'not ok - %s\n' "$1"
	sed 's/^/#   /' "$OUT" | tail -n 15
}

# check DESC CMD...: CMD succeeds.
check() {
	local desc=$1
	shift
	if "$@" >"$OUT" 2>&1; then pass "$desc"; else fail "$desc"; fi
}

# says DESC PATTERN CMD...: CMD succeeds and its output matches PATTERN (extended regex).
says() {
	local desc=$1 pattern=$2
	shift 2
	if ! "$@" >"$OUT" 2>&1; then
		fail "$desc (it failed)"
	elif grep -Eq -- "$pattern" "$OUT"; then
		pass "$desc"
	else
		fail "$desc (no /$pattern/ in its output)"
	fi
}

# eventually SECS DESC PATTERN CMD...: within SECS seconds, CMD succeeds saying PATTERN.
eventually() {
	local secs=$1 desc=$2 pattern=$3 i
	shift 3
	for ((i = 0; i < secs * 2; i++)); do
		"$@" >"$OUT" 2>&1 && grep -Eq -- "$pattern" "$OUT" && { pass "$desc"; return 0; }
		sleep 0.5
	done
	fail "$desc (not within $secs s, or no /$pattern/)"
}

# dry NAME: a server-side dry run of the object on stdin in $NS. No client-side schema
# validation: the apiserver must be the one that answers.
dry() { k create --dry-run=server --validate=false -n "$NS" -f - -o json; }

# refused DESC PATTERN: the apiserver refuses the object on stdin with a message saying
# PATTERN (the field's path; 1.20 leaves out list indices in some paths).
refused() {
	local desc=$1 pattern=$2
	if dry >"$OUT" 2>&1; then
		fail "$desc (it was accepted)"
	elif grep -Eq -- "$pattern" "$OUT"; then
		pass "$desc"
	else
		fail "$desc (no /$pattern/ in the refusal)"
	fi
}

# accepted DESC [JSONPATH VALUE]: the apiserver accepts the object on stdin (and, given a
# JSONPATH, the object it would store has VALUE there: a default).
accepted() {
	local desc=$1 path=${2:-} want=${3:-} got
	if ! dry >"$OUT" 2>&1; then
		fail "$desc (refused)"
		return
	fi
	if [ -n "$path" ]; then
		got=$(jq -r "$path" "$OUT")
		if [ "$got" != "$want" ]; then
			echo "$path is '$got', not '$want'" >"$OUT"
			fail "$desc"
			return
		fi
	fi
	pass "$desc"
}

# obj KIND NAME SPEC: an object of KIND with SPEC (YAML, indented under spec:).
obj() {
	printf 'apiVersion: kupenstack.io/v1alpha1\nkind: %s\nmetadata:\n  name: %s\nspec:\n%s\n' \
		"$1" "$2" "$3"
}

# can SA VERB RESOURCE NS [ARG...]: what `kubectl auth can-i` says for ServiceAccount SA
# of $NS.
can() {
	k auth can-i "$2" "$3" -n "$4" --as="system:serviceaccount:$NS:$1" "${@:5}" 2>/dev/null
}

# can_be DESC ANSWER SA VERB RESOURCE NS [ARG...]: within 30 s (the aggregation controller copies the
# rules into the built-in roles), `can-i` answers ANSWER.
can_be() {
	local desc=$1 want=$2 i got
	shift 2
	for ((i = 0; i < 60; i++)); do
		got=$(can "$@")
		[ "$got" = "$want" ] && { pass "$desc"; return 0; }
		sleep 0.5
	done
	echo "can-i $2 $3 -n $4 ${*:5} as $1: '$got'" >"$OUT"
	fail "$desc"
}

command -v jq >/dev/null || { echo 'crds.sh: jq is needed' >&2; exit 2; }

# ---- the CRDs are installed and served ---------------------------------------------------

check "apply crds/" k apply -f "$TOP/crds/"
check "every CRD is established" k wait --for condition=established --timeout=60s -f "$TOP/crds/"
says "no CRD has a non-structural schema" '^-$' k get -f "$TOP/crds/" \
	-o jsonpath='{.items[*].status.conditions[?(@.type=="NonStructuralSchema")].status}-'
# Counted: the kinds of category openstack (every OpenStack resource kind, and
# InstanceSet). Not counted: the service kinds (category openstack-services,
# tests/e2e/services.sh) and the policies (ClusterPolicy, Policy: tests/e2e/policy.sh).
mapfile -t crd_files < <(grep -lE '^ *- openstack$' "$TOP"/crds/*.yaml)
n=${#crd_files[@]}
# InstanceSet is not an OpenStack resource (no spec.resource, import, ...): not in KINDS,
# tests/e2e/instanceset.sh is its test; it is counted here.
says "crds/ holds one CRD per kind (${#KINDS[@]} and InstanceSet)" "^$((${#KINDS[@]} + 1))$" echo "$n"
says "InstanceSet: short name iset, category openstack, scale subresource" \
	'^iset osvmset openstack \.status\.selector$' \
	k get crd instancesets.kupenstack.io -o jsonpath='{.spec.names.shortNames[*]} {.spec.names.categories[*]} {.spec.versions[0].subresources.scale.labelSelectorPath}'
check "apply deploy/rbac-aggregate.yaml" k apply -f "$TOP/deploy/rbac-aggregate.yaml"
check "create namespace $NS" k create namespace "$NS"

for kind in "${KINDS[@]}"; do
	namespaced=true scope=namespaced
	[ "$kind" = flavor ] && namespaced=false scope=cluster-scoped # cloud-wide, like StorageClasses
	says "$kind: served as ${kind}s, short name ${SHORT[$kind]}, category openstack, $scope" \
		"^${kind}s +${SHORT[$kind]} +kupenstack.io/v1alpha1 +$namespaced " \
		k api-resources --api-group=kupenstack.io --categories=openstack --no-headers
done

# ---- kubectl explain ---------------------------------------------------------------------

# The apiserver publishes a new CRD's OpenAPI a few seconds after it is established.
eventually 60 "kubectl explain instance.spec.recoveryPolicy" \
	"onError.*" k explain instance.spec.recoveryPolicy
says "explain: recoveryPolicy names its three policies" '^3$' bash -c \
	"k explain instance.spec.recoveryPolicy | grep -cE '^ +(onError|onShutoff|onDeleted)\\b'"
says "explain: an immutable field says so (flavor.spec.resource.ram)" \
	"Immutable: a change is refused by the controller" k explain flavor.spec.resource.ram
says "explain: spec.import says the filter must match exactly one" \
	"exactly one" k explain network.spec.import
says "explain: cloudCredentialsRef documents clouds.yaml" \
	"clouds.yaml" k explain port.spec.cloudCredentialsRef

# ---- the samples ---------------------------------------------------------------------------

says "samples: 00-namespace.yaml is namespace demo, opted in as a project" \
	'^demo true$' k apply --dry-run=server -f "$TOP/deploy/samples/00-namespace.yaml" \
	-o jsonpath='{.metadata.name} {.metadata.labels.kupenstack\.io/project}{"\n"}'
for f in "$TOP"/deploy/samples/[1-9]*.yaml; do
	# In $NS rather than demo, so nothing is created for real: the very same objects
	# otherwise, checked by kubectl against the published schema (unknown fields) and
	# by the apiserver.
	check "samples: $(basename "$f") applies (server-side dry run)" bash -c "
		sed 's/^  namespace: demo\$/  namespace: $NS/' '$f' | k apply --dry-run=server -f -"
done
says "samples: one object of every kind but Volume" "^10$" bash -c \
	"cat '$TOP'/deploy/samples/[1-9]*.yaml | grep -c '^kind: '"

# ---- one minimal object of each kind; kubectl get openstack ---------------------------------

cat >"$WORK/minimal.yaml" <<'EOF'
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: small}
spec: {resource: {ram: 64, vcpus: 1, disk: 1}}
---
apiVersion: kupenstack.io/v1alpha1
kind: KeyPair
metadata: {name: key}
spec: {resource: {public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForSchemaTestsOnly test"}}
---
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: img}
spec:
  resource: {container_format: bare, disk_format: qcow2}
  source: {url: "http://127.0.0.1:8080/cirros.img"}
---
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net}
spec: {}
---
apiVersion: kupenstack.io/v1alpha1
kind: Subnet
metadata: {name: sub}
spec: {networkRef: {name: net}, resource: {cidr: 10.0.0.0/24}}
---
apiVersion: kupenstack.io/v1alpha1
kind: Router
metadata: {name: rtr}
spec: {}
---
apiVersion: kupenstack.io/v1alpha1
kind: SecurityGroup
metadata: {name: sg}
spec: {}
---
apiVersion: kupenstack.io/v1alpha1
kind: Port
metadata: {name: port}
spec: {networkRef: {name: net}}
---
apiVersion: kupenstack.io/v1alpha1
kind: FloatingIP
metadata: {name: fip}
spec: {externalNetwork: {network: {name: public}}}
---
apiVersion: kupenstack.io/v1alpha1
kind: Volume
metadata: {name: vol}
spec: {resource: {size: 1}}
---
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm}
spec:
  imageRef: {name: img}
  flavorRef: {name: small}
  networks: [{networkRef: {name: net}}]
EOF
check "create a minimal object of each kind" k create -n "$NS" -f "$WORK/minimal.yaml"
k get openstack -n "$NS" -o name >"$WORK/openstack" 2>"$OUT"
for kind in "${KINDS[@]}"; do
	says "kubectl get openstack lists the $kind" "^$kind\.kupenstack\.io/" cat "$WORK/openstack"
done
for kind in "${KINDS[@]}"; do
	check "kubectl get ${SHORT[$kind]}" k get "${SHORT[$kind]}" -n "$NS"
done

# ---- defaults ------------------------------------------------------------------------------

jp() { k get "$1" "$2" -n "$NS" -o jsonpath="$3"; }
says "default: managementPolicy managed" '^managed$' jp instance vm '{.spec.managementPolicy}'
says "no default for onDelete (unset: delete what was created, detach an import)" '^-$' \
	jp instance vm '{.spec.onDelete}-'
says "default: powerState Running" '^Running$' jp instance vm '{.spec.powerState}'
says "default: recoveryPolicy Recreate/Start/Recreate" '^Recreate Start Recreate$' \
	jp instance vm '{.spec.recoveryPolicy.onError} {.spec.recoveryPolicy.onShutoff} {.spec.recoveryPolicy.onDeleted}'
says "default: Subnet ip_version 4" '^4$' jp subnet sub '{.spec.resource.ip_version}'
says "default: Flavor is_public true" '^true$' jp flavor small '{.spec.resource.is_public}'
says "default: the common fields on every kind (here Network)" '^managed$' \
	jp network net '{.spec.managementPolicy}{.spec.onDelete}'
obj SecurityGroup sg2 '  resource: {rules: [{direction: ingress, protocol: tcp}]}' |
	accepted "default: SecurityGroup rule ethertype IPv4" '.spec.resource.rules[0].ethertype' IPv4

# ---- status and printer columns ---------------------------------------------------------------

check "status: the controller's status patch is stored (status subresource)" \
	k patch instance vm -n "$NS" --subresource=status --type=merge -p '{"status": {
	  "id": "3f0e3c5e-1111-4222-8333-944444444444", "projectID": "p1", "observedGeneration": 1,
	  "powerState": "Running",
	  "resource": {"status": "ACTIVE", "addresses": {"net": [{"addr": "10.0.0.5"}]}},
	  "conditions": [
	    {"type": "Available", "status": "True", "reason": "Success", "message": "ACTIVE",
	     "lastTransitionTime": "2021-06-01T00:00:00Z", "observedGeneration": 1},
	    {"type": "Progressing", "status": "False", "reason": "Success", "message": "done",
	     "lastTransitionTime": "2021-06-01T00:00:00Z"}]}}'
says "status: status.resource keeps OpenStack's fields as they are" '^ACTIVE 10.0.0.5$' \
	jp instance vm '{.status.resource.status} {.status.resource.addresses.net[0].addr}'
says "columns: kubectl get instance shows ID, AVAILABLE, REASON, AGE" \
	'^NAME +ID +AVAILABLE +REASON +AGE$' k get instance vm -n "$NS"
says "columns: ... filled from status" \
	'^vm +3f0e3c5e-1111-4222-8333-944444444444 +True +Success +[0-9]' k get instance vm -n "$NS"
says "columns: kubectl get openstack shows them too" \
	'^instance\.kupenstack\.io/vm +3f0e3c5e-1111-4222-8333-944444444444 +True +Success' \
	k get openstack -n "$NS"
check "status: a user's write to spec leaves status alone" \
	k patch instance vm -n "$NS" --type=merge -p '{"spec":{"powerState":"Shutoff"},"status":{"id":"x"}}'
says "... (status.id unchanged)" '^3f0e3c5e-1111-4222-8333-944444444444$' jp instance vm '{.status.id}'
if k patch instance vm -n "$NS" --subresource=status --type=merge \
	-p '{"status":{"conditions":[{"type":"Available","status":"Yes"}]}}' >"$OUT" 2>&1; then
	fail "status: a condition status outside True/False/Unknown is refused (it was stored)"
elif grep -Eq 'status\.conditions(\[[0-9]+\])?\.status: Unsupported value' "$OUT"; then
	pass "status: a condition status outside True/False/Unknown is refused"
else
	fail "status: a condition status outside True/False/Unknown is refused (no field in the message)"
fi

# ---- invalid specs are refused, naming the field --------------------------------------------

printf 'apiVersion: kupenstack.io/v1alpha1\nkind: Network\nmetadata: {name: nospec}\n' |
	refused "any kind: spec is required" 'spec: Required value'
obj Network bad '  managementPolicy: sometimes' |
	refused "common: managementPolicy outside managed|unmanaged" 'spec\.managementPolicy: Unsupported value'
obj Port bad '  networkRef: {name: net}
  onDelete: keep' | refused "common: onDelete outside delete|detach" 'spec\.onDelete: Unsupported value'
obj Router bad '  cloudCredentialsRef: {cloudName: devstack}' |
	refused "common: cloudCredentialsRef without secretName" 'spec\.cloudCredentialsRef\.secretName: Required value'
obj Network bad '  import: {}' | refused "common: import with neither id nor filter" '"spec\.import" must validate one and only one'
obj Network bad '  import: {id: abc, filter: {name: public}}' |
	refused "common: import with both id and filter" '"spec\.import" must validate one and only one'
obj SecurityGroup bad '  import: {filter: {}}' | refused "common: an empty import filter" 'spec\.import\.filter'
obj Instance bad '  imageRef: {}
  flavorRef: {name: small}
  networks: [{networkRef: {name: net}}]' | refused "common: a reference without a name" 'spec\.imageRef\.name: Required value'

obj Flavor bad '  resource: {ram: 0, vcpus: 1, disk: 1}' | refused "Flavor: ram 0" 'spec\.resource\.ram'
obj Flavor bad '  resource: {ram: 64, disk: 1}' | refused "Flavor: vcpus missing" 'spec\.resource\.vcpus: Required value'
obj Flavor bad '  resource: {ram: 64, vcpus: 1, disk: -1}' | refused "Flavor: disk -1" 'spec\.resource\.disk'
obj Flavor bad '  resource: {ram: 64, vcpus: 1, disk: 1, rxtx_factor: 0}' | refused "Flavor: rxtx_factor 0" 'spec\.resource\.rxtx_factor'
obj Flavor bad '  onDelete: detach' | refused "Flavor: neither resource nor import" 'spec\.resource: Required value'
obj KeyPair bad '  resource: {name: k}' | refused "KeyPair: public_key missing" 'spec\.resource\.public_key: Required value'
obj KeyPair bad '  resource: {public_key: "ssh-rsa AAAA", type: rsa}' | refused "KeyPair: type rsa" 'spec\.resource\.type: Unsupported value'
obj Image bad '  resource: {container_format: bare, disk_format: zip}
  source: {url: "http://127.0.0.1/x.img"}' | refused "Image: disk_format zip" 'spec\.resource\.disk_format: Unsupported value'
obj Image bad '  resource: {disk_format: raw}
  source: {url: "http://127.0.0.1/x.img"}' | refused "Image: container_format missing" 'spec\.resource\.container_format: Required value'
obj Image bad '  resource: {container_format: bare, disk_format: raw}
  source: {url: "ftp://127.0.0.1/x.img"}' | refused "Image: source url not http(s)" 'spec\.source\.url'
obj Image bad '  resource: {container_format: bare, disk_format: raw}
  source: {url: "http://127.0.0.1/x.img", checksum: abc}' | refused "Image: checksum not a sha256" 'spec\.source\.checksum'
obj Image bad '  resource: {container_format: bare, disk_format: raw}' | refused "Image: source missing" 'spec\.source: Required value'
obj Image bad '  resource: {container_format: bare, disk_format: raw, visibility: everyone}
  source: {url: "http://127.0.0.1/x.img"}' | refused "Image: visibility everyone" 'spec\.resource\.visibility: Unsupported value'
obj Network bad '  resource: {mtu: 50}' | refused "Network: mtu 50" 'spec\.resource\.mtu'
obj Network bad '  resource: {mtu: 9217}' | refused "Network: mtu 9217" 'spec\.resource\.mtu'
obj Network bad '  resource: {provider: {network_type: token-ring}}' |
	refused "Network: provider network_type token-ring" 'spec\.resource\.provider\.network_type: Unsupported value'
obj Subnet bad '  networkRef: {name: net}
  resource: {cidr: 10.0.0.0/33}' | refused "Subnet: cidr 10.0.0.0/33" 'spec\.resource\.cidr'
obj Subnet bad '  networkRef: {name: net}
  resource: {cidr: 10.0.0.0}' | refused "Subnet: cidr without a prefix length" 'spec\.resource\.cidr'
obj Subnet bad '  networkRef: {name: net}
  resource: {}' | refused "Subnet: cidr missing" 'spec\.resource\.cidr: Required value'
obj Subnet bad '  resource: {cidr: 10.0.0.0/24}' | refused "Subnet: networkRef missing" 'spec\.networkRef: Required value'
obj Subnet bad '  networkRef: {name: net}
  resource: {cidr: 10.0.0.0/24, ip_version: 5}' | refused "Subnet: ip_version 5" 'spec\.resource\.ip_version: Unsupported value'
obj Subnet bad '  networkRef: {name: net}
  resource: {cidr: 10.0.0.0/24, gateway_ip: 10.0.0.256}' | refused "Subnet: gateway_ip 10.0.0.256" 'spec\.resource\.gateway_ip'
obj Subnet bad '  networkRef: {name: net}
  resource: {cidr: 10.0.0.0/24, allocation_pools: [{start: 10.0.0.10}]}' |
	refused "Subnet: allocation pool without an end" 'spec\.resource\.allocation_pools(\[[0-9]+\])?\.end: Required value'
obj Router bad '  interfaces: [{}]' | refused "Router: an interface without subnetRef" 'spec\.interfaces(\[[0-9]+\])?\.subnetRef: Required value'
obj Router bad '  externalGateway: {enable_snat: false}' |
	refused "Router: externalGateway with neither networkRef nor network" '"spec\.externalGateway" must validate one and only one'
obj Router bad '  externalGateway: {network: {}}' |
	refused "Router: externalGateway network with neither name nor id" '"spec\.externalGateway\.network" must validate one and only one'
obj SecurityGroup bad '  resource: {rules: [{direction: sideways}]}' |
	refused "SecurityGroup: rule direction sideways" 'spec\.resource\.rules(\[[0-9]+\])?\.direction: Unsupported value'
obj SecurityGroup bad '  resource: {rules: [{protocol: tcp}]}' |
	refused "SecurityGroup: rule without direction" 'spec\.resource\.rules(\[[0-9]+\])?\.direction: Required value'
obj SecurityGroup bad '  resource: {rules: [{direction: ingress, protocol: tcp, port_range_max: 70000}]}' |
	refused "SecurityGroup: port_range_max 70000" 'spec\.resource\.rules(\[[0-9]+\])?\.port_range_max'
obj SecurityGroup bad '  resource: {rules: [{direction: ingress, remote_ip_prefix: 0.0.0.0/99}]}' |
	refused "SecurityGroup: remote_ip_prefix 0.0.0.0/99" 'spec\.resource\.rules(\[[0-9]+\])?\.remote_ip_prefix'
obj SecurityGroup bad '  resource: {rules: [{direction: ingress, ethertype: IPX}]}' |
	refused "SecurityGroup: ethertype IPX" 'spec\.resource\.rules(\[[0-9]+\])?\.ethertype: Unsupported value'
obj Port bad '  resource: {name: p}' | refused "Port: networkRef missing" 'spec\.networkRef: Required value'
obj Port bad '  networkRef: {name: net}
  resource: {mac_address: "zz:00:00:00:00:00"}' | refused "Port: mac_address zz:00:00:00:00:00" 'spec\.resource\.mac_address'
obj Port bad '  networkRef: {name: net}
  resource: {fixed_ips: [{ip_address: 10.0.0.300}]}' | refused "Port: fixed ip 10.0.0.300" 'spec\.resource\.fixed_ips(\[[0-9]+\])?\.ip_address'
obj FloatingIP bad '  portRef: {name: port}' | refused "FloatingIP: externalNetwork missing" 'spec\.externalNetwork: Required value'
obj FloatingIP bad '  externalNetwork: {network: {name: public}}
  resource: {floating_ip_address: 203.0.113}' |
	refused "FloatingIP: floating_ip_address 203.0.113" 'spec\.resource\.floating_ip_address'
obj Volume bad '  resource: {size: 0}' | refused "Volume: size 0" 'spec\.resource\.size'
obj Volume bad '  resource: {name: v}' | refused "Volume: size missing" 'spec\.resource\.size: Required value'
INSTANCE='  imageRef: {name: img}
  flavorRef: {name: small}
  networks: [{networkRef: {name: net}}]'
obj Instance bad "$INSTANCE
  powerState: Paused" | refused "Instance: powerState Paused" 'spec\.powerState: Unsupported value'
obj Instance bad "$INSTANCE
  recoveryPolicy: {onError: Reboot}" | refused "Instance: recoveryPolicy onError Reboot" 'spec\.recoveryPolicy\.onError: Unsupported value'
obj Instance bad '  imageRef: {name: img}
  networks: [{networkRef: {name: net}}]' | refused "Instance: flavorRef missing" 'spec\.flavorRef: Required value'
obj Instance bad '  imageRef: {name: img}
  flavorRef: {name: small}' | refused "Instance: networks missing" 'spec\.networks: Required value'
obj Instance bad '  imageRef: {name: img}
  flavorRef: {name: small}
  networks: []' | refused "Instance: networks empty" 'spec\.networks'
obj Instance bad '  flavorRef: {name: small}
  networks: [{networkRef: {name: net}}]' | refused "Instance: neither imageRef nor bootVolumeRef" 'spec\.imageRef: Required value'
obj Instance bad '  imageRef: {name: img}
  flavorRef: {name: small}
  networks: [{fixed_ip: 10.0.0.5}]' | refused "Instance: a network with neither networkRef nor portRef" '"spec\.networks(\[[0-9]+\])?" must validate one and only one'

# ---- valid edge cases are accepted ------------------------------------------------------------

obj Flavor adopted '  import: {id: 0a1b2c3d}' | accepted "accepted: Flavor imported by id, without resource"
obj Image adopted '  import: {filter: {name: cirros}}
  managementPolicy: unmanaged' | accepted "accepted: Image imported by filter, unmanaged"
obj Instance adopted '  import: {filter: {name: legacy-vm, tags: [prod]}}' | accepted "accepted: Instance imported, without flavor or networks"
obj Subnet v6 '  networkRef: {name: net}
  resource: {cidr: "fd00:10::/64", ip_version: 6, gateway_ip: "fd00:10::1", dns_nameservers: ["2001:4860:4860::8888"]}' |
	accepted "accepted: IPv6 Subnet"
obj Subnet isolated '  networkRef: {name: net}
  resource: {cidr: 10.1.0.0/24, gateway_ip: none, enable_dhcp: false, allocation_pools: [{start: 10.1.0.10, end: 10.1.0.99}], host_routes: [{destination: 10.2.0.0/16, nexthop: 10.1.0.254}]}' |
	accepted "accepted: Subnet without a gateway, with pools and routes"
obj SecurityGroup numbers '  resource: {rules: [{direction: ingress, protocol: 6, port_range_min: 0, port_range_max: 65535}, {direction: ingress, protocol: udp, remoteGroupRef: {name: numbers}}]}' |
	accepted "accepted: SecurityGroup rule with a protocol number and a remote group"
obj Instance fromvolume '  bootVolumeRef: {name: vol}
  flavorRef: {name: small}
  keypairRef: {name: key}
  securityGroupRefs: [{name: sg}]
  networks: [{portRef: {name: port}}, {networkRef: {name: net}, fixed_ip: 10.0.0.7}]
  powerState: Shutoff
  recoveryPolicy: {onError: Rebuild, onShutoff: None, onDeleted: None}
  resource: {metadata: {role: db}, user_data: "#cloud-config\n", availability_zone: nova, tags: [db]}' |
	accepted "accepted: Instance booted from a volume, with everything set" '.spec.recoveryPolicy.onError' Rebuild
obj Network full '  resource: {mtu: 1450, shared: false, admin_state_up: true, port_security_enabled: true, provider: {network_type: vlan, physical_network: physnet1, segmentation_id: 100}, tags: [a, b]}
  cloudCredentialsRef: {secretName: my-cloud}' | accepted "accepted: Network with provider fields and own credentials"
obj Router gw '  externalGateway: {networkRef: {name: net}, enable_snat: false}
  interfaces: [{subnetRef: {name: sub}}]' | accepted "accepted: Router with a gateway on a Network of the namespace"
obj Port full '  networkRef: {name: net}
  securityGroupRefs: [{name: sg}]
  resource: {mac_address: "fa:16:3e:00:00:01", fixed_ips: [{subnetRef: {name: sub}, ip_address: 10.0.0.9}], port_security_enabled: true}' |
	accepted "accepted: Port with a MAC and a fixed IP"
obj FloatingIP byid '  externalNetwork: {network: {id: 5b7c2d0e-0000-4000-8000-000000000000}}
  resource: {floating_ip_address: 203.0.113.10, description: web}' | accepted "accepted: FloatingIP on a network given by id"
obj Volume full '  imageRef: {name: img}
  resource: {size: 10, volume_type: lvm, metadata: {tier: gold}}' | accepted "accepted: Volume from an Image"

# ---- RBAC: the aggregated roles ----------------------------------------------------------------

for sa in editor viewer admin; do
	check "create serviceaccount $sa" k create serviceaccount "$sa" -n "$NS"
done
check "bind the built-in edit to editor" k create rolebinding editor -n "$NS" --clusterrole=edit --serviceaccount="$NS:editor"
check "bind the built-in view to viewer" k create rolebinding viewer -n "$NS" --clusterrole=view --serviceaccount="$NS:viewer"
check "bind the built-in admin to admin" k create rolebinding admin -n "$NS" --clusterrole=admin --serviceaccount="$NS:admin"
can_be "edit: can create instances.kupenstack.io in its namespace" yes editor create instances.kupenstack.io "$NS"
can_be "edit: cannot in another namespace" no editor create instances.kupenstack.io "$OTHER"
for kind in "${KINDS[@]}"; do
	[ "$kind" = flavor ] && continue
	can_be "edit: can delete ${kind}s" yes editor delete "${kind}s.kupenstack.io" "$NS"
done
# Flavor is cluster-scoped and in no aggregated role: no namespace role touches it.
says "Flavor: cluster-scoped" '^Cluster$' k get crd flavors.kupenstack.io -o jsonpath='{.spec.scope}'
for sa in editor admin; do
	for verb in create update patch delete; do
		can_be "Flavor: $sa of a namespace cannot $verb flavors" no "$sa" "$verb" flavors.kupenstack.io "$NS"
	done
done
check "apply deploy/rbac-aggregate.yaml's kupenstack-flavor-admin" k get clusterrole kupenstack-flavor-admin
check "bind kupenstack-flavor-admin to flavoradmin (a ClusterRoleBinding)" k create clusterrolebinding \
	"$NS-flavoradmin" --clusterrole=kupenstack-flavor-admin --serviceaccount="$NS:viewer"
can_be "Flavor: kupenstack-flavor-admin can create flavors" yes viewer create flavors.kupenstack.io "$NS"
check "unbind it" k delete clusterrolebinding "$NS-flavoradmin"
can_be "Flavor: every authenticated user can list flavors (kupenstack-flavor-view)" yes editor list flavors.kupenstack.io "$NS"
can_be "edit: can deletecollection" yes editor deletecollection floatingips.kupenstack.io "$NS"
can_be "edit: cannot write status (the operator's)" no editor patch instances.kupenstack.io "$NS" --subresource=status
can_be "view: can list instances.kupenstack.io" yes viewer list instances.kupenstack.io "$NS"
can_be "view: can watch securitygroups.kupenstack.io" yes viewer watch securitygroups.kupenstack.io "$NS"
can_be "view: cannot create instances.kupenstack.io" no viewer create instances.kupenstack.io "$NS"
can_be "edit: can create instancesets and scale them (kubectl scale)" yes editor update instancesets.kupenstack.io "$NS" --subresource=scale
can_be "edit: cannot write an InstanceSet's status" no editor patch instancesets.kupenstack.io "$NS" --subresource=status
can_be "view: can read an InstanceSet's scale, not change it" no viewer patch instancesets.kupenstack.io "$NS" --subresource=scale
can_be "view: cannot list in another namespace" no viewer list instances.kupenstack.io "$OTHER"
can_be "admin: can create volumes.kupenstack.io" yes admin create volumes.kupenstack.io "$NS"
check "view: lists them for real" k --as="system:serviceaccount:$NS:viewer" get openstack -n "$NS"
obj Network by-editor '  resource: {mtu: 1400}' >"$WORK/by-editor.yaml"
check "edit: creates one for real" k --as="system:serviceaccount:$NS:editor" create -n "$NS" -f "$WORK/by-editor.yaml"
obj Network by-viewer '  resource: {mtu: 1400}' >"$WORK/by-viewer.yaml"
if k --as="system:serviceaccount:$NS:viewer" create -n "$NS" -f "$WORK/by-viewer.yaml" >"$OUT" 2>&1; then
	fail "view: is refused a create for real (it was allowed)"
elif grep -q Forbidden "$OUT"; then
	pass "view: is refused a create for real"
else
	fail "view: is refused a create for real (not Forbidden)"
fi

# ---- cleanup -------------------------------------------------------------------------------

check "delete every kind's object" k delete -n "$NS" -f "$WORK/minimal.yaml" --wait=true --timeout=60s
check "delete namespace $NS" k delete namespace "$NS" --wait=false

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
