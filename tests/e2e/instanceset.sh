#!/usr/bin/env bash
# tests/e2e/instanceset.sh: the InstanceSet kind as a user meets it, against the real
# apiserver (with its garbage collector) and the real OpenStack (Nova's fake driver). One
# `kupenstack run` (tenancy, Network, Flavor, Image, Instance, InstanceSet) serves a fresh
# namespace labelled kupenstack.io/project=true. A set of 3 is created, scaled to 5 and to 2
# with `kubectl scale` (the member not Available goes first, then the newest), a member
# deleted behind the set's back and one that gave up recovering (reason RecoveryLimit) are
# replaced, a template change rolls within maxSurge / maxUnavailable (counted by a sampler,
# not timed), paused stops it; a hand-made Instance matching the selector is never adopted
# and one owned by another set is never touched; anti-affinity gives a server group with
# the members in it; deleting a set deletes its Instances, their servers and its group, and
# --cascade=orphan leaves the Instances. Needs KUBECONFIG (admin, the CRDs applied) and
# OS_CLIENT_CONFIG_FILE (OS_CLOUD default kupenstack-admin, an admin; flavor id 1).
# Prints TAP lines and `N passed, N failed`; exits 1 on any failure, 2 without them.
# needs: openstack
# opt-in: KS_E2E_LONG (about 10 minutes against the fake Nova; make test runs it with KS_E2E_LONG=1)
if [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	echo "${0##*/}: OS_CLIENT_CONFIG_FILE is not set (. /tmp/os.env)" >&2
	exit 2
fi
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export OS_CLOUD=${OS_CLOUD:-kupenstack-admin}

NS=ks-e2e-iset-$$
RUN=$$
PLUGINS=$(mktemp -d "$WORK/plugins.XXXXXX")
for p in project network flavor image instance instanceset; do
	cp "$TOP/plugins/$p.lua" "$PLUGINS/"
done
IMG_ID=
SAMPLER=
FOREIGN=

apply() { k apply -n "$NS" -f - >"$WORK/apply.out" 2>&1 || { cat "$WORK/apply.out" >&2; return 1; }; }
sid() { field "$1" "$NS" "$2" '.status.id // empty'; }

# members SET: the names of the set's Instances (its controller), not being deleted, sorted.
members() {
	k get instances -n "$NS" -o json | jq -r --arg s "$1" '.items[] | select(.metadata.deletionTimestamp == null)
		| select(any(.metadata.ownerReferences[]?; .kind == "InstanceSet" and .name == $s and .controller))
		| .metadata.name' | sort
}

# ready SET N: N members, all Available, and the set's status says so (replicas, ready,
# up to date, observedGeneration).
ready() {
	local n
	n=$(members "$1" | grep -c .)
	[ "$n" = "$2" ] || { echo "$1 has $n members, not $2"; members "$1"; return 1; }
	has instanceset "$NS" "$1" ".status.replicas == $2 and .status.readyReplicas == $2 and
		.status.updatedReplicas == $2 and .status.observedGeneration == .metadata.generation" || return 1
	for m in $(members "$1"); do
		has instance "$NS" "$m" 'any(.status.conditions[]?; .type == "Available" and .status == "True")' || return 1
	done
}

server_ids() { for m in $(members "$1"); do sid instance "$m"; done | sort; }

os_gone() {
	local out
	if out=$(openstack "$@" 2>&1); then
		echo "openstack $* still finds it: $(head -c 300 <<<"$out")"
		return 1
	fi
	grep -Eqi 'no .*(found|exists)|not found|could not be found|404' <<<"$out" && return 0
	echo "openstack $*: $out"
	return 1
}

tidy() {
	[ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
	if [ -n "${HPID[op]:-}" ] && k get namespace "$NS" >/dev/null 2>&1; then
		k delete namespace "$NS" --wait=false >/dev/null 2>&1
		if ! until_ok 240 eval "! k get namespace $NS"; then
			echo "# namespace $NS did not go: its finalizers are taken off"
			for o in $(k get openstack -n "$NS" -o name 2>/dev/null); do
				k patch "$o" -n "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
			done
			k patch namespace "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
		fi
	fi
	k delete flavor "kst-$RUN-f" --wait=false >/dev/null 2>&1
	k patch flavor "kst-$RUN-f" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
	[ -n "$IMG_ID" ] && openstack image delete "$IMG_ID" >/dev/null 2>&1
	[ -n "$FOREIGN" ] && openstack server group delete "$FOREIGN" >/dev/null 2>&1
	cleanup
}
trap tidy EXIT

# ---- setup -------------------------------------------------------------------------------

head -c 4096 /dev/urandom >"$WORK/disk.raw"
IMG_ID=$(openstack image create --public --disk-format raw --container-format bare \
	--file "$WORK/disk.raw" "kst-$RUN-iset" -f value -c id) || { echo "cannot create an image" >&2; exit 3; }

new_ns "$NS"
k label namespace "$NS" kupenstack.io/project=true >/dev/null
if ! start_host op "$PLUGINS" "$NS" --set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" --set cloud="$OS_CLOUD"; then
	echo "the host did not come up" >"$OUT"
	fail "the operator starts" op
	finish
fi
project_of() {
	PID=$(k get namespace "$NS" -o json | jq -r '.metadata.annotations["kupenstack.io/project-id"] // empty')
	[ -n "$PID" ]
}
eventually 60 "setup: the namespace gets a project" op -- project_of
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net}
spec: {}
---
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: img}
spec: {import: {id: "$IMG_ID"}, managementPolicy: unmanaged}
---
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: kst-$RUN-f}
spec: {import: {id: "1"}, managementPolicy: unmanaged}
EOF
subnet_on() { openstack --os-project-id "$PID" subnet create --network "$(sid network net)" --subnet-range 10.67.0.0/24 net-sub -f value -c id; }
eventually 60 "setup: Network, Image and Flavor Available, the network has a subnet" op -- \
	eval 'has network "$NS" net ".status.id != null" && has image "$NS" img ".status.id != null" && subnet_on'

# iset NAME REPLICAS [EXTRA SPEC YAML, indented 2] : apply an InstanceSet of app=NAME.
iset() {
	apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: InstanceSet
metadata: {name: $1}
spec:
  replicas: $2
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
      imageRef: {name: img}
      flavorRef: {name: kst-$RUN-f}
      networks: [{networkRef: {name: net}}]
      recoveryPolicy: {onError: None}
      resource: {metadata: {v: "${V:-1}"}}
${3:-}
EOF
}

# ---- a bad spec ------------------------------------------------------------------------

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: InstanceSet
metadata: {name: bad}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: other}}
    spec: {imageRef: {name: img}, flavorRef: {name: x}, networks: [{networkRef: {name: net}}]}
EOF
eventually 60 "a selector the template's labels do not match: InvalidConfiguration naming the fields, no member" op -- \
	eval 'has instanceset "$NS" bad "any(.status.conditions[]?; .reason == \"InvalidConfiguration\" and
		(.message | test(\"spec.template.metadata.labels must match spec.selector.*app=web.*app=other\"))) " &&
		[ -z "$(members bad)" ]'
k delete instanceset bad -n "$NS" --wait=false >/dev/null

# ---- create, scale up, scale down -------------------------------------------------------

iset web 3
eventually 180 "create 3: three members, all Available, status says so" op -- ready web 3
check "members are named web-<suffix>, labelled with the template hash of status.templateHash" -- \
	eval 'h=$(field instanceset "$NS" web .status.templateHash); [ -n "$h" ] &&
		[ "$(k get instances -n "$NS" -l "app=web,kupenstack.io/instance-template-hash=$h" -o name | grep -c "/web-.....$")" = 3 ]'
check "printer columns DESIRED CURRENT READY UP-TO-DATE AGE; short name iset" -- \
	eval 'k get iset web -n "$NS" | tee /dev/stderr | grep -Eq "^NAME +DESIRED +CURRENT +READY +UP-TO-DATE +AGE" &&
		k get iset web -n "$NS" --no-headers | grep -Eq "^web +3 +3 +3 +3 "'
FIRST=$(members web)

check "kubectl scale instanceset/web --replicas=5 (the scale subresource)" -- \
	k scale instanceset/web -n "$NS" --replicas=5
eventually 180 "scaled to 5: five members, all Available" op -- ready web 5
check "the scale subresource reports the selector (labelSelectorPath)" -- \
	eval 'k get --raw "/apis/kupenstack.io/v1alpha1/namespaces/$NS/instancesets/web/scale" |
		jq -e ".status.selector == \"app=web\" and .status.replicas == 5"'

# One of the first three (the oldest) made not Available: put in ERROR behind our back.
ERRM=$(head -n 1 <<<"$FIRST")
openstack server set --state error "$(sid instance "$ERRM")" >/dev/null
# Seeing it is the Instance's business (its poll or Nova's notifications): a touch makes it look now.
k annotate instance "$ERRM" -n "$NS" "e2e.kupenstack.io/touch=$(date +%s%N)" --overwrite >/dev/null
eventually 60 "a member's server in ERROR: its Instance is not Available" op -- \
	has instance "$NS" "$ERRM" 'any(.status.conditions[]?; .type == "Available" and .status == "False")'
check "kubectl scale to 2" -- k scale instanceset/web -n "$NS" --replicas=2
eventually 120 "scaled to 2: the member not Available and the two newest went; two of the first three stay" op -- \
	eval 'ready web 2 && [ "$(members web)" = "$(grep -vx "$ERRM" <<<"$FIRST")" ]'

# ---- replacement --------------------------------------------------------------------------

GONE=$(members web | head -n 1)
k delete instance "$GONE" -n "$NS" --wait=false >/dev/null
eventually 180 "a member deleted behind the set's back is replaced by a new one" op -- \
	eval 'ready web 2 && ! members web | grep -qx "$GONE"'
FAILED=$(members web | head -n 1)
k patch instance "$FAILED" -n "$NS" --subresource=status --type=merge -p '{"status": {"conditions": [
	{"type": "Available", "status": "False", "reason": "RecoveryLimit", "message": "e2e: gave up",
	 "lastTransitionTime": "2030-01-01T00:00:00Z"}]}}' >/dev/null
eventually 180 "a member that gave up recovering (RecoveryLimit) is deleted and replaced" op -- \
	eval 'ready web 2 && ! members web | grep -qx "$FAILED"'

# ---- isolation: a hand-made Instance matching the selector, another set's member -------------

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: hand, labels: {app: web, kupenstack.io/instance-template-hash: x}, ownerReferences: []}
spec: {imageRef: {name: img}, flavorRef: {name: kst-$RUN-f}, networks: [{networkRef: {name: net}}]}
---
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: plain, labels: {app: web}}
spec: {imageRef: {name: img}, flavorRef: {name: kst-$RUN-f}, networks: [{networkRef: {name: net}}]}
EOF
# hand carries the hash label: an orphan an InstanceSet made, as far as the set can tell;
# plain is hand-made (no hash label): it is never adopted.
eventually 120 "an orphan with the hash label matching the selector is adopted (Event Adopted); a hand-made one is not" op -- \
	eval 'has instance "$NS" hand "any(.metadata.ownerReferences[]?; .name == \"web\" and .controller)" &&
		has instance "$NS" plain "(.metadata.ownerReferences // []) | length == 0"'
eventually 120 "... the set, one over, deletes one member (the adopted one, not up to date); plain stays" op -- \
	eval 'ready web 2 && ! members web | grep -qx hand && k get instance plain -n "$NS" >/dev/null'
k delete instance plain -n "$NS" --wait=false >/dev/null

# ---- rolling update ---------------------------------------------------------------------

k patch instanceset web -n "$NS" --type merge -p '{"spec": {"replicas": 3,
	"strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}}}' >/dev/null
eventually 180 "scaled to 3 for the rollout" op -- ready web 3
OLDHASH=$(field instanceset "$NS" web .status.templateHash)
# The sampler: members not being deleted, and those Available, as often as kubectl answers.
sample() {
	while :; do
		k get instances -n "$NS" -l app=web -o json 2>/dev/null | jq -r '[.items[] |
			select(.metadata.deletionTimestamp == null)] | "\(length) \([.[] |
			select(any(.status.conditions[]?; .type == "Available" and .status == "True"))] | length)"'
		sleep 0.2
	done >>"$WORK/samples"
}
sample &
SAMPLER=$!
k patch instanceset web -n "$NS" --type merge -p '{"spec": {"template": {"spec": {"resource": {"metadata": {"v": "2"}}}}}}' >/dev/null
eventually 300 "template change: every member replaced, up to date and Available" op -- \
	eval 'ready web 3 && [ "$(field instanceset "$NS" web .status.templateHash)" != "$OLDHASH" ] &&
		[ "$(k get instances -n "$NS" -l "kupenstack.io/instance-template-hash=$OLDHASH" -o name | grep -c .)" = 0 ]'
kill "$SAMPLER" 2>/dev/null
SAMPLER=
check "during the rollout: never more than 3+1 members, never fewer than 3-1 Available (counted, $(wc -l <"$WORK/samples") samples)" -- \
	awk 'NF == 2 { n++; if ($1 > 4 || $2 < 2) bad++ } END { print n " samples, " bad + 0 " out of bounds"; exit !(n > 5 && bad == 0) }' "$WORK/samples"
check "the new members' servers have the new template (metadata v=2 in Nova)" -- \
	eval 'for id in $(server_ids web); do openstack server show "$id" -f json | jq -e ".properties.v == \"2\"" || exit 1; done'

k patch instanceset web -n "$NS" --type merge -p '{"spec": {"paused": true, "template": {"spec": {"resource": {"metadata": {"v": "3"}}}}}}' >/dev/null
eventually 60 "paused: the template change is seen (Progressing Paused) and no member is replaced" op -- \
	eval 'has instanceset "$NS" web "any(.status.conditions[]?; .type == \"Progressing\" and .reason == \"Paused\")
		and .status.updatedReplicas == 0 and .status.observedGeneration == .metadata.generation" &&
		[ "$(members web | grep -c .)" = 3 ]'
k patch instanceset web -n "$NS" --type merge -p '{"spec": {"paused": false}}' >/dev/null
eventually 300 "unpaused: the rollout goes on to the end" op -- ready web 3

# ---- placement ----------------------------------------------------------------------------

iset aa 2 '  placement: anti-affinity'
eventually 120 "anti-affinity: the set has a server group, its members have servers" op -- \
	eval 'has instanceset "$NS" aa ".status.serverGroup.id != null" && [ "$(server_ids aa | grep -c .)" = 2 ]'
GID=$(field instanceset "$NS" aa .status.serverGroup.id)
check "openstack server group show: policy anti-affinity, named after the set, the members' servers in it" -- \
	eval 'j=$(openstack --os-compute-api-version 2.64 server group show "$GID" -f json) && echo "$j" &&
		jq -e --argjson ids "$(server_ids aa | jq -R . | jq -s .)" ".policy == \"anti-affinity\" and
			(.name | startswith(\"kupenstack-aa-\")) and (.members | sort) == (\$ids | sort)" <<<"$j"'
# group_gone ID: Nova's list of every project's server groups answers and lacks ID. (The
# CLI's `server group show` of a missing group fails with a Python error, not a not-found.)
group_gone() {
	local ids
	ids=$(openstack --os-compute-api-version 2.64 server group list --all-projects -f value -c ID) ||
		return 1
	! grep -qx "$1" <<<"$ids"
}
AA_IDS=$(server_ids aa)
k delete instanceset aa -n "$NS" --wait=false >/dev/null
eventually 180 "deleting the set: its Instances go, their servers and its server group are gone from OpenStack" op -- \
	eval '[ -z "$(k get instances -n "$NS" -l app=aa -o name)" ] && group_gone "$GID" &&
		for id in $AA_IDS; do os_gone server show "$id" || exit 1; done'

# An Instance may not join a server group of another project (Nova itself would let it, by ID).
FOREIGN=$(openstack --os-compute-api-version 2.64 server group create --policy anti-affinity \
	"kst-$RUN-foreign" -f value -c id)
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: foreign}
spec:
  imageRef: {name: img}
  flavorRef: {name: kst-$RUN-f}
  networks: [{networkRef: {name: net}}]
  resource: {scheduler_hints: {group: "$FOREIGN"}}
EOF
eventually 60 "an Instance naming a server group of another project: InvalidConfiguration naming the field, no server in the group" op -- \
	eval 'has instance "$NS" foreign ".status.id == null and any(.status.conditions[]?; .reason == \"InvalidConfiguration\"
		and (.message | test(\"spec.resource.scheduler_hints.group: (no server group .* in|server group .* is not of) this namespace.s project\")))" &&
		openstack --os-compute-api-version 2.64 server group show "$FOREIGN" -f json | jq -e ".members == []"'
k delete instance foreign -n "$NS" --wait=false >/dev/null

# ---- orphan, then cascade ---------------------------------------------------------------

WEB=$(members web)
WEB_IDS=$(server_ids web)
check "kubectl delete --cascade=orphan" -- k delete instanceset web -n "$NS" --cascade=orphan --wait=true --timeout=60s
eventually 60 "... the set is gone, its Instances stay, without an owner, their servers in Nova" op -- \
	eval '[ "$(k get instances -n "$NS" -l app=web -o json | jq -r ".items[] | select((.metadata.ownerReferences // []) | length == 0) | .metadata.name" | sort)" = "$WEB" ] &&
		for id in $WEB_IDS; do openstack server show "$id" >/dev/null || exit 1; done'
V=3 iset web 3
eventually 120 "the set applied again adopts its orphans (they carry the hash label): no new member" op -- \
	eval 'ready web 3 && [ "$(members web)" = "$WEB" ]'
k delete instanceset web -n "$NS" --wait=false >/dev/null
eventually 180 "cascade delete: the Instances go and their servers are gone from OpenStack" op -- \
	eval '[ -z "$(k get instances -n "$NS" -o name)" ] && for id in $WEB_IDS; do os_gone server show "$id" || exit 1; done'

finish
