#!/usr/bin/env bash
# tests/e2e/compute.sh: the compute kinds (Flavor, KeyPair, Image, Instance, Volume) as a
# user meets them, against the real apiserver and the real OpenStack. One `kupenstack run`
# (the tenancy plugin, Network and SecurityGroup for the instances' networks, and the
# compute plugins) serves a fresh namespace labelled kupenstack.io/project=true; kubectl
# does what a user does, and the `openstack` CLI (as admin, or as a member of the
# namespace's project) says what really exists. Image data is served over loopback by
# `python3 -m http.server`. Per kind: minimal and full create, in-place update, import by
# id and by filter (zero, one, two matches), waiting on a missing dependency, delete,
# delete with onDelete: detach, deletion blocked while in use, deleted and edited behind
# KupenStack's back, a spec the API server rejects; crash safety (what a create whose
# answer was lost leaves, made before the operator sees the object, is adopted, not
# duplicated); finally deleting the namespace removes its project and everything in it.
# Needs KUBECONFIG (admin, the CRDs applied) and OS_CLIENT_CONFIG_FILE (and OS_CLOUD,
# default kupenstack-admin: an admin; Nova with the fake driver, flavor id 1). Prints TAP
# lines and `N passed, N failed`; exits 1 on any failure, 2 without KUBECONFIG or
# OS_CLIENT_CONFIG_FILE.
# needs: openstack
if [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	echo "${0##*/}: OS_CLIENT_CONFIG_FILE is not set (. /tmp/os.env)" >&2
	exit 2
fi
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/compute_lib.sh"
export OS_CLOUD=${OS_CLOUD:-kupenstack-admin}

NS=ks-e2e-compute-$$
PLUGINS=$(mktemp -d "$WORK/plugins.XXXXXX")
for p in project network securitygroup flavor keypair image instance volume; do
	cp "$TOP/plugins/$p.lua" "$PLUGINS/"
done
# The image data is served on loopback: the operator's allow-list names it; streamed by the host.
printf 'allow_source_networks: "127.0.0.0/8"\nsource_method: stream\n' >"$PLUGINS/image.config.yaml"
# An import whose filter matches nothing yet looks again every 3 s, not 30 (import_retry).
for p in flavor keypair image volume; do
	echo 'import_retry: 3' >>"$PLUGINS/$p.config.yaml"
done
PID=
RUN=$$ # makes the OpenStack names of this run its own (flavors and key pairs are global)

# ---- kubectl -----------------------------------------------------------------------------

# bad_spec: the YAML on stdin, kept for rejected (check runs its command with stdin
# from /dev/null).
bad_spec() { cat >"$WORK/bad.yaml"; }

# rejected PATTERN: applying the YAML bad_spec kept fails, with a message matching PATTERN.
rejected() {
	if k apply -n "$NS" -f "$WORK/bad.yaml" >"$WORK/apply.out" 2>&1; then
		echo "the API server accepted it:"
		cat "$WORK/apply.out"
		return 1
	fi
	cat "$WORK/apply.out"
	grep -Eq -- "$1" "$WORK/apply.out"
}

# cond KIND NAME REASON REGEX: Available's (or, when Available stays True because the
# resource itself is fine, Progressing's) reason is REASON and its message matches REGEX.
cond() {
	local j
	j=$(obj_json "$1" "$NS" "$2") || return 1
	if jq -e --arg r "$3" --arg m "$4" 'any(.status.conditions[]?; (.type == "Available" or
			.type == "Progressing") and .reason == $r and (.message | test($m)))' <<<"$j" >/dev/null; then
		return 0
	fi
	echo "$1 $2: no Available or Progressing condition with reason $3 and a message matching /$4/"
	jq -c '.status' <<<"$j"
	return 1
}

# event KIND NAME REASON: the object has an Event with that reason.
event() {
	local ns=$NS
	[ "$1" = Flavor ] && ns=default # a cluster-scoped object's Events are in default
	k get events -n "$ns" -o json | jq -e --arg k "$1" --arg n "$2" --arg r "$3" \
		'any(.items[]; .involvedObject.kind == $k and .involvedObject.name == $n and .reason == $r)' \
		>/dev/null || { echo "no Event $3 on $1 $2"; k get events -n "$ns" | tail -n 5; return 1; }
}

# ---- OpenStack (the CLI) ------------------------------------------------------------------

NOVA=(--os-compute-api-version 2.79)

# osp ARGS...: the CLI as a member of the namespace's project (behind KupenStack's back).
osp() { openstack --os-project-id "$PID" "$@"; }

# os_is JQ ARGS...: `openstack ARGS -f json` (as admin) succeeds and satisfies JQ.
os_is() {
	local q=$1 j
	shift
	j=$(openstack "$@" -f json 2>&1) || { echo "openstack $*: $j"; return 1; }
	jq -e "$q" <<<"$j" >/dev/null && return 0
	echo "openstack $* fails $q:"
	jq -c . <<<"$j"
	return 1
}

# os_gone ARGS...: `openstack ARGS` says there is no such thing.
os_gone() {
	local out
	if out=$(openstack "$@" 2>&1); then
		echo "openstack $* still finds it:"
		head -c 800 <<<"$out"
		return 1
	fi
	grep -Eqi 'no .*(found|exists)|not found|could not be found|404' <<<"$out" && return 0
	echo "openstack $*: $out"
	return 1
}

# os_count N ARGS...: `openstack ARGS -f value -c ID` lists N lines.
os_count() {
	local n=$1 out
	shift
	out=$(openstack "$@" -f value -c ID 2>&1) || { echo "openstack $*: $out"; return 1; }
	[ "$(grep -c . <<<"$out")" = "$n" ] || { echo "openstack $* lists, not $n:"; echo "$out"; return 1; }
}

# api_count N URL JQ: GET URL (as admin) answers a document whose JQ has length N.
api_count() {
	local j n
	j=$(curl -sf -H "X-Auth-Token: $ATOKEN" -H 'X-OpenStack-Nova-API-Version: 2.79' "$2") ||
		{ echo "GET $2 failed"; return 1; }
	n=$(jq "$3 | length" <<<"$j")
	[ "$n" = "$1" ] && return 0
	echo "GET $2: $3 has $n, not $1"
	return 1
}

# queued_image NAME TAG: a Glance image without data, made in the namespace's project
# through the API (`openstack image create` without --file uploads its standard input).
queued_image() {
	local tok url
	tok=$(osp token issue -f value -c id) || return 1
	url=$(openstack endpoint list --service image --interface public -f value -c URL | head -n 1)/v2/images
	curl -sf -X POST -H "X-Auth-Token: $tok" -H 'Content-Type: application/json' \
		-d "{\"name\": \"$1\", \"disk_format\": \"raw\", \"container_format\": \"bare\",
			\"tags\": [\"$2\"]}" "$url" | jq -r .id
}

# ---- setup ------------------------------------------------------------------------------

# tidy: at exit, while the operator still runs, delete the namespace (its finalizers need
# the operator); if it does not go, take the finalizers off so that the cluster is left
# clean (and say what may be left in OpenStack). Remove what this run made outside the
# project (flavors, key pairs). Then lib.sh's cleanup.
tidy() {
	local o id
	# Flavors are cluster-scoped: the namespace's deletion does not take them.
	for o in $(k get flavors -o name 2>/dev/null | grep "/kst-$RUN-"); do
		k delete "$o" --wait=false >/dev/null 2>&1
	done
	[ -n "${HPID[op]:-}" ] && until_ok 60 eval "! k get flavors -o name | grep -q /kst-$RUN-"
	for o in $(k get flavors -o name 2>/dev/null | grep "/kst-$RUN-"); do
		k patch "$o" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
	done
	if [ -n "${HPID[op]:-}" ] && k get namespace "$NS" >/dev/null 2>&1; then
		drop_namespace 300
	fi
	for id in $(openstack flavor list --all -f value -c ID -c Name 2>/dev/null |
		awk -v p="kst-$RUN-" 'index($2, p) == 1 { print $1 }'); do
		openstack flavor delete "$id" >/dev/null 2>&1
	done
	for o in $(openstack keypair list -f value -c Name 2>/dev/null | grep -E "^${NS}_"); do
		openstack keypair delete "$o" >/dev/null 2>&1
	done
	[ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null
	cleanup
}
trap tidy EXIT

# The image data: 64 KiB, served over loopback.
serve_data 65536
SUM=$(sha256sum "$WWW/disk.raw" | cut -c1-64)
MD5=$(md5sum "$WWW/disk.raw" | cut -c1-32)

# Key pairs' public keys.
for n in 1 2 3 4; do
	ssh-keygen -q -t ed25519 -N '' -C "kst-$RUN-$n" -f "$WORK/key$n" </dev/null >/dev/null
	printf -v "KEY$n" '%s' "$(cat "$WORK/key$n.pub")"
done
fingerprint() { ssh-keygen -l -E md5 -f "$WORK/key$1.pub" | awk '{ print $2 }' | sed 's/^MD5://'; }

new_ns "$NS"
k label namespace "$NS" kupenstack.io/project=true >/dev/null
# host_up [ARG...]: start the operator (ARGs added to `kupenstack run`'s).
host_up() { start_host op "$PLUGINS" "$NS" --set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" --set cloud="$OS_CLOUD" "$@"; }
if ! host_up; then
	echo "the host did not come up" >"$OUT"
	fail "the operator starts" op
	finish
fi
eventually 60 "the labelled namespace gets a project (annotation kupenstack.io/project-id)" op -- project_of
project_of || finish

# The instances' network (a Network object) and its subnet (made with the CLI: the Subnet
# kind is another suite's), and a security group.
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net}
spec: {}
---
apiVersion: kupenstack.io/v1alpha1
kind: SecurityGroup
metadata: {name: sg}
spec:
  resource:
    name: sg-$RUN
    rules: [{direction: ingress, protocol: tcp, port_range_min: 22, port_range_max: 22, remote_ip_prefix: 0.0.0.0/0}]
EOF
subnet_on() { osp subnet create --network "$(sid network "$1")" --subnet-range "$2" "$1-sub" -f value -c id; }
eventually 60 "setup: Network net is Available and gets a subnet" op -- \
	eval "avail network net && subnet_on net 10.66.0.0/24"

# ---- Flavor -------------------------------------------------------------------------------

FMIN=kst-$RUN-fmin
FFULL=kst-$RUN-ffull
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: $FMIN}
spec:
  resource: {ram: 64, vcpus: 1, disk: 1}
---
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: $FFULL}
spec:
  resource:
    name: $FFULL-os
    ram: 96
    vcpus: 2
    disk: 2
    ephemeral: 1
    swap: 32
    rxtx_factor: 2.0
    is_public: false
    description: the full flavor
    extra_specs: {"hw:cpu_policy": shared, "quota:cpu_shares": "512"}
  namespaces: [$NS]
EOF
eventually 60 "Flavor: minimal create: Available" op -- avail flavor "$FMIN"
FMIN_ID=$(sid flavor "$FMIN")
FMIN_UID=$(uid_of flavor "$FMIN")
check "Flavor: in Nova, named after the object, its ID the object's UID, extra spec kupenstack:uid" -- \
	os_is ".name == \"$FMIN\" and .id == \"$FMIN_UID\" and .ram == 64 and .vcpus == 1 and .disk == 1
		and .properties[\"kupenstack:uid\"] == \"$FMIN_UID\"" flavor show "$FMIN_ID"
eventually 60 "Flavor: full create: Available" op -- avail flavor "$FFULL"
FFULL_ID=$(sid flavor "$FFULL")
check "Flavor: full create: every field in Nova, private, shared with the project of spec.namespaces" -- \
	os_is ".name == \"$FFULL-os\" and .ram == 96 and .vcpus == 2 and .disk == 2 and
		.\"OS-FLV-EXT-DATA:ephemeral\" == 1 and .swap == 32 and .rxtx_factor == 2 and
		.\"os-flavor-access:is_public\" == false and .description == \"the full flavor\" and
		.properties[\"hw:cpu_policy\"] == \"shared\" and .properties[\"quota:cpu_shares\"] == \"512\" and
		(.access_project_ids | index(\"$PID\") != null)" "${NOVA[@]}" flavor show "$FFULL_ID"

set_spec flavor "$NS" "$FFULL" '{"resource": {"description": "changed",
	"extra_specs": {"hw:cpu_policy": "dedicated", "hw:mem_page_size": "small", "quota:cpu_shares": null}}}'
eventually 60 "Flavor: update of description and extra_specs (set and unset) reaches Nova" op -- \
	os_is ".description == \"changed\" and (.properties | del(.[\"kupenstack:uid\"])) ==
		{\"hw:cpu_policy\": \"dedicated\", \"hw:mem_page_size\": \"small\"}" "${NOVA[@]}" flavor show "$FFULL_ID"
eventually 30 "Flavor: Event Updated" -- event Flavor "$FFULL" Updated

set_spec flavor "$NS" "$FMIN" '{"resource": {"ram": 128}}'
eventually 60 "Flavor: a change of an immutable field (ram) is refused: InvalidConfiguration naming it" op -- \
	cond flavor "$FMIN" InvalidConfiguration "ram is immutable"
check "Flavor: ... and Nova's flavor is left as it was" -- os_is '.ram == 64' flavor show "$FMIN_ID"
set_spec flavor "$NS" "$FMIN" '{"resource": {"ram": 64}}'
eventually 60 "Flavor: reverting the change makes it Available again" op -- avail flavor "$FMIN"

# import: m1.tiny (id 1), observed only, as the samples do; the instances below use it.
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: kst-$RUN-tiny}
spec:
  import: {id: "1"}
  managementPolicy: unmanaged
EOF
eventually 60 "Flavor: import by id (unmanaged): Available with its ID" op -- id_is flavor "kst-$RUN-tiny" 1
eventually 30 "Flavor: Event Adopted" -- event Flavor "kst-$RUN-tiny" Adopted

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: kst-$RUN-f-later}
spec:
  import: {filter: {name: kst-$RUN-later}}
EOF
eventually 60 "Flavor: import by a filter that matches none: Waiting, 'no Flavor matches'" op -- \
	cond flavor kst-$RUN-f-later Waiting "no Flavor matches spec.import.filter"
LATER=$(openstack flavor create "kst-$RUN-later" --ram 64 --vcpus 1 --disk 1 -f value -c id 2>"$OUT")
eventually 60 "Flavor: ... once one exists, the filter matches one and it is adopted" op -- id_is flavor kst-$RUN-f-later "$LATER"
R2=$((7000 + RUN % 1000))
T1=$(openstack flavor create "kst-$RUN-two-a" --ram "$R2" --vcpus 7 --disk 0 -f value -c id 2>"$OUT")
T2=$(openstack flavor create "kst-$RUN-two-b" --ram "$R2" --vcpus 7 --disk 0 -f value -c id 2>"$OUT")
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: kst-$RUN-f-two}
spec:
  import: {filter: {ram: $R2, vcpus: 7}}
EOF
eventually 60 "Flavor: import by a filter that matches two: InvalidConfiguration naming both" op -- \
	cond flavor kst-$RUN-f-two InvalidConfiguration "matches 2 .*($T1.*$T2|$T2.*$T1)"
del_cr flavor kst-$RUN-f-two
eventually 60 "Flavor: deleting the object that adopted nothing leaves both flavors alone" op -- \
	eval "cr_gone flavor kst-$RUN-f-two && os_is .id flavor show $T1 && os_is .id flavor show $T2"
del_cr flavor kst-$RUN-f-later
eventually 60 "Flavor: deleting an import (onDelete unset) leaves its flavor: an import detaches by default" op -- \
	eval "cr_gone flavor kst-$RUN-f-later && os_is .id flavor show $LATER"

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: kst-$RUN-fdet}
spec:
  resource: {ram: 64, vcpus: 1, disk: 1}
  onDelete: detach
EOF
until_ok 60 avail flavor "kst-$RUN-fdet"
FDET=$(sid flavor "kst-$RUN-fdet")
del_cr flavor "kst-$RUN-fdet"
eventually 60 "Flavor: delete with onDelete: detach: the object goes, the flavor stays" op -- \
	eval "cr_gone flavor kst-$RUN-fdet && os_is .id flavor show $FDET"

openstack flavor delete "$FFULL_ID" >"$OUT" 2>&1
touch_cr flavor "$FFULL"
eventually 60 "Flavor: deleted behind our back: made again (Event Drift), shared with the project again" op -- \
	eval "event Flavor $FFULL Drift && os_is '.name == \"$FFULL-os\" and
		(.access_project_ids | index(\"$PID\") != null)' flavor show $FFULL_ID"
openstack flavor set --property rogue=1 "$FFULL_ID" >"$OUT" 2>&1
openstack --os-compute-api-version 2.55 flavor set --description hacked "$FFULL_ID" >>"$OUT" 2>&1
touch_cr flavor "$FFULL"
eventually 60 "Flavor: edited behind our back (extra spec, description): corrected" op -- \
	os_is '.description == "changed" and .properties.rogue == null and
		.properties["hw:cpu_policy"] == "dedicated"' "${NOVA[@]}" flavor show "$FFULL_ID"

bad_spec <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: f-bad}
spec:
  resource: {ram: 0, vcpus: 1, disk: 1}
EOF
check "Flavor: an invalid spec (ram: 0) is rejected by the API server, naming the field" -- \
	rejected 'spec.resource.ram'

del_cr flavor "$FMIN"
eventually 60 "Flavor: delete: the flavor goes from Nova, then the object" op -- \
	eval "cr_gone flavor $FMIN && os_gone flavor show $FMIN_ID"

# ---- KeyPair ------------------------------------------------------------------------------

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: KeyPair
metadata: {name: kp-min}
spec:
  resource: {public_key: "$KEY1"}
---
apiVersion: kupenstack.io/v1alpha1
kind: KeyPair
metadata: {name: kp-full}
spec:
  resource: {name: kst-$RUN-kp, public_key: "$KEY2", type: ssh}
EOF
eventually 60 "KeyPair: minimal create: Available, named <namespace>_<name>" op -- id_is keypair kp-min "${NS}_kp-min"
check "KeyPair: in Nova with the object's public key" -- \
	os_is ".name == \"${NS}_kp-min\" and .fingerprint == \"$(fingerprint 1)\"" keypair show "${NS}_kp-min"
eventually 60 "KeyPair: full create (spec.resource.name, type): Available" op -- id_is keypair kp-full "${NS}_kst-$RUN-kp"
check "KeyPair: full create: in Nova with its name, key and type" -- \
	os_is ".name == \"${NS}_kst-$RUN-kp\" and .type == \"ssh\" and .fingerprint == \"$(fingerprint 2)\"" \
	"${NOVA[@]}" keypair show "${NS}_kst-$RUN-kp"

set_spec keypair "$NS" kp-min "{\"resource\": {\"public_key\": \"$KEY3\"}}"
eventually 60 "KeyPair: a key pair has no mutable field: a new public_key is refused (InvalidConfiguration)" op -- \
	cond keypair kp-min InvalidConfiguration "public_key is immutable"
check "KeyPair: ... and Nova still has the first key" -- \
	os_is ".fingerprint == \"$(fingerprint 1)\"" keypair show "${NS}_kp-min"
set_spec keypair "$NS" kp-min "{\"resource\": {\"public_key\": \"$KEY1\"}}"
until_ok 60 avail keypair kp-min

openstack keypair create --public-key "$WORK/key3.pub" "${NS}_kst-$RUN-ext" >"$OUT" 2>&1
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: KeyPair
metadata: {name: kp-imp}
spec:
  import: {id: ${NS}_kst-$RUN-ext}
  managementPolicy: unmanaged
---
apiVersion: kupenstack.io/v1alpha1
kind: KeyPair
metadata: {name: kp-later}
spec:
  import: {filter: {name: ${NS}_kst-$RUN-later}}
  onDelete: detach
---
apiVersion: kupenstack.io/v1alpha1
kind: KeyPair
metadata: {name: kp-clash}
spec:
  resource: {name: kst-$RUN-ext, public_key: "$KEY4"}
EOF
eventually 60 "KeyPair: import by id (unmanaged): Available" op -- id_is keypair kp-imp "${NS}_kst-$RUN-ext"
eventually 60 "KeyPair: import by a filter that matches none: Waiting" op -- \
	cond keypair kp-later Waiting "no KeyPair matches spec.import.filter"
openstack keypair create --public-key "$WORK/key4.pub" "${NS}_kst-$RUN-later" >"$OUT" 2>&1
eventually 60 "KeyPair: ... once one exists, it is adopted (two cannot match: names are unique)" op -- \
	id_is keypair kp-later "${NS}_kst-$RUN-later"
eventually 60 "KeyPair: a name taken by another key: InvalidConfiguration saying so" op -- \
	cond keypair kp-clash InvalidConfiguration "already exists with another public key"
del_cr keypair kp-clash
del_cr keypair kp-later
eventually 60 "KeyPair: deleting those (never created; detach) leaves the other key pairs alone" op -- \
	eval "cr_gone keypair kp-clash && cr_gone keypair kp-later &&
		os_is '.fingerprint == \"$(fingerprint 3)\"' keypair show ${NS}_kst-$RUN-ext &&
		os_is .name keypair show ${NS}_kst-$RUN-later"
openstack keypair delete "${NS}_kst-$RUN-later" >/dev/null 2>&1

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: KeyPair
metadata: {name: kp-det}
spec:
  resource: {public_key: "$KEY4"}
  onDelete: detach
EOF
until_ok 60 avail keypair kp-det
del_cr keypair kp-det
eventually 60 "KeyPair: delete with onDelete: detach: the object goes, the key pair stays" op -- \
	eval "cr_gone keypair kp-det && os_is .name keypair show ${NS}_kp-det"
openstack keypair delete "${NS}_kp-det" >/dev/null 2>&1

openstack keypair delete "${NS}_kst-$RUN-kp" >"$OUT" 2>&1
touch_cr keypair kp-full
eventually 60 "KeyPair: deleted behind our back: made again with the same key (Event Drift)" op -- \
	eval "event KeyPair kp-full Drift && os_is '.fingerprint == \"$(fingerprint 2)\"' keypair show ${NS}_kst-$RUN-kp"

bad_spec <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: KeyPair
metadata: {name: kp-bad}
spec:
  resource: {public_key: "$KEY1", type: rsa}
EOF
check "KeyPair: an invalid spec (type: rsa) is rejected by the API server, naming the field" -- \
	rejected 'spec.resource.type'

del_cr keypair kp-min
eventually 60 "KeyPair: delete: the key pair goes from Nova, then the object" op -- \
	eval "cr_gone keypair kp-min && os_gone keypair show ${NS}_kp-min"

# ---- Image --------------------------------------------------------------------------------

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: img-min}
spec:
  resource: {container_format: bare, disk_format: raw}
  source: {url: "$URL"}
---
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: img-full}
spec:
  resource:
    name: kst-$RUN-img
    container_format: bare
    disk_format: raw
    visibility: private
    min_disk: 1
    min_ram: 32
    protected: false
    tags: [t1, t2]
    properties: {os_distro: cirros, hw_disk_bus: virtio}
  source: {url: "$URL", checksum: "$SUM"}
---
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: img-bad}
spec:
  resource: {container_format: bare, disk_format: raw}
  source: {url: "$URL", checksum: "$(printf '0%.0s' {1..64})"}
EOF
eventually 90 "Image: minimal create: Available (active)" op -- avail image img-min
IMIN=$(sid image img-min)
IMIN_UID=$(uid_of image img-min)
check "Image: in Glance, in the project, active, with the served data (size, MD5) and the UID tag" -- \
	os_is ".status == \"active\" and .size == 65536 and .checksum == \"$MD5\" and .owner == \"$PID\"
		and .name == \"img-min\" and (.tags | index(\"kupenstack-uid-$IMIN_UID\") != null)" \
	image show "$IMIN"
eventually 90 "Image: full create (checksum verified): Available" op -- avail image img-full
IFULL=$(sid image img-full)
check "Image: full create: name, visibility, min_disk, min_ram, tags and properties in Glance" -- \
	os_is ".name == \"kst-$RUN-img\" and .visibility == \"private\" and .min_disk == 1 and
		.min_ram == 32 and .protected == false and (.tags | index(\"t1\") != null and index(\"t2\") != null)
		and .properties.os_distro == \"cirros\" and .properties.hw_disk_bus == \"virtio\"" image show "$IFULL"
eventually 90 "Image: data that does not match spec.source.checksum is refused: InvalidConfiguration" op -- \
	cond image img-bad InvalidConfiguration "has SHA-256 $SUM, not 0{64}"
check "Image: ... and the image in Glance got no data (queued)" -- \
	os_is '.status == "queued"' image show "$(sid image img-bad)"
eventually 30 "Image: Event Created" -- event Image img-min Created

set_spec image "$NS" img-full '{"resource": {"name": "kst-'"$RUN"'-img2", "min_ram": 64,
	"tags": ["t1", "t3"], "properties": {"os_distro": "ubuntu", "hw_disk_bus": null}}}'
eventually 60 "Image: update of name, min_ram, tags and properties (set and unset) reaches Glance" op -- \
	os_is ".name == \"kst-$RUN-img2\" and .min_ram == 64 and
		(.tags | index(\"t3\") != null and index(\"t2\") == null and any(.[]; startswith(\"kupenstack-uid-\")))
		and .properties.os_distro == \"ubuntu\" and .properties.hw_disk_bus == null" image show "$IFULL"
set_spec image "$NS" img-min '{"resource": {"disk_format": "qcow2"}}'
eventually 60 "Image: a change of an immutable field (disk_format) is refused: InvalidConfiguration" op -- \
	cond image img-min InvalidConfiguration "disk_format is immutable"
set_spec image "$NS" img-min '{"resource": {"disk_format": "raw"}}'
until_ok 60 avail image img-min

EXT=$(osp image create "kst-$RUN-ext" --file "$WWW/disk.raw" --disk-format raw --container-format bare \
	-f value -c id 2>"$OUT")
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: img-imp}
spec:
  import: {id: "$EXT"}
  managementPolicy: unmanaged
---
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: img-later}
spec:
  import: {filter: {name: kst-$RUN-later}}
  onDelete: delete
EOF
eventually 60 "Image: import by id (unmanaged): Available" op -- id_is image img-imp "$EXT"
eventually 60 "Image: import by a filter that matches none: Waiting" op -- \
	cond image img-later Waiting "no Image matches spec.import.filter"
LATER=$(osp image create "kst-$RUN-later" --file "$WWW/disk.raw" --disk-format raw \
	--container-format bare -f value -c id 2>"$OUT")
eventually 60 "Image: ... once one exists, the filter matches one and it is adopted" op -- \
	id_is image img-later "$LATER"
T1=$(osp image create "kst-$RUN-two-a" --tag "kst-$RUN-two" -f value -c id 2>"$OUT")
T2=$(osp image create "kst-$RUN-two-b" --tag "kst-$RUN-two" -f value -c id 2>"$OUT")
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: img-two}
spec:
  import: {filter: {tags: [kst-$RUN-two]}}
EOF
eventually 60 "Image: import by a filter that matches two: InvalidConfiguration naming both" op -- \
	cond image img-two InvalidConfiguration "matches 2 .*($T1.*$T2|$T2.*$T1)"
del_cr image img-two
eventually 60 "Image: deleting the object that adopted nothing leaves both images alone" op -- \
	eval "cr_gone image img-two && os_is .id image show $T1 && os_is .id image show $T2"
osp image delete "$T1" "$T2" >/dev/null 2>&1
del_cr image img-later
eventually 60 "Image: deleting an import with onDelete: delete deletes its image" op -- \
	eval "cr_gone image img-later && os_gone image show $LATER"
del_cr image img-imp
eventually 60 "Image: deleting an unmanaged import leaves the image alone" op -- \
	eval "cr_gone image img-imp && os_is .id image show $EXT"
osp image delete "$EXT" >/dev/null 2>&1

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: img-det}
spec:
  resource: {container_format: bare, disk_format: raw}
  source: {url: "$URL"}
  onDelete: detach
EOF
until_ok 90 avail image img-det
IDET=$(sid image img-det)
del_cr image img-det
eventually 60 "Image: delete with onDelete: detach: the object goes, the image stays" op -- \
	eval "cr_gone image img-det && os_is .id image show $IDET"
osp image delete "$IDET" >/dev/null 2>&1

osp image delete "$IFULL" >"$OUT" 2>&1
touch_cr image img-full
eventually 90 "Image: deleted behind our back: made again (new ID, active, Event Drift)" op -- \
	eval "new_id image img-full $IFULL && event Image img-full Drift"
IFULL=$(sid image img-full)
check "Image: ... the new one has the data and the spec's fields" -- \
	os_is ".status == \"active\" and .checksum == \"$MD5\" and .name == \"kst-$RUN-img2\" and .min_ram == 64" \
	image show "$IFULL"
osp image set --min-ram 999 --property rogue=1 --name hacked "$IFULL" >"$OUT" 2>&1
touch_cr image img-full
eventually 60 "Image: edited behind our back (name, min_ram, a property): corrected" op -- \
	os_is ".name == \"kst-$RUN-img2\" and .min_ram == 64 and .properties.rogue == null" image show "$IFULL"

bad_spec <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: img-inv}
spec:
  resource: {container_format: bare, disk_format: bogus}
  source: {url: "$URL"}
EOF
check "Image: an invalid spec (disk_format: bogus) is rejected by the API server, naming the field" -- \
	rejected 'spec.resource.disk_format'
bad_spec <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: img-inv}
spec:
  resource: {container_format: bare, disk_format: raw}
  source: {url: "ftp://127.0.0.1/disk.raw"}
EOF
check "Image: a source URL that is not http(s) is rejected by the API server" -- \
	rejected 'spec.source.url'

IBAD=$(sid image img-bad)
del_cr image img-bad
eventually 60 "Image: delete (of the queued one): the image goes from Glance, then the object" op -- \
	eval "cr_gone image img-bad && os_gone image show $IBAD"

# ---- Volume -------------------------------------------------------------------------------

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Volume
metadata: {name: vol-min}
spec:
  resource: {size: 1}
---
apiVersion: kupenstack.io/v1alpha1
kind: Volume
metadata: {name: vol-full}
spec:
  imageRef: {name: img-min}
  resource:
    name: kst-$RUN-vol
    description: the full volume
    size: 2
    volume_type: __DEFAULT__
    availability_zone: nova
    metadata: {a: b}
EOF
eventually 90 "Volume: minimal create: Available" op -- avail volume vol-min
VMIN=$(sid volume vol-min)
VMIN_UID=$(uid_of volume vol-min)
check "Volume: in Cinder, in the project, available, with metadata kupenstack-uid=<UID>" -- \
	os_is ".status == \"available\" and .size == 1 and .name == \"vol-min\" and
		.properties[\"kupenstack-uid\"] == \"$VMIN_UID\"" --os-project-id "$PID" volume show "$VMIN"
eventually 90 "Volume: full create (from the Image img-min): Available" op -- avail volume vol-full
VFULL=$(sid volume vol-full)
check "Volume: full create: name, description, size, type, zone, metadata and the image in Cinder" -- \
	os_is ".name == \"kst-$RUN-vol\" and .description == \"the full volume\" and .size == 2 and
		.type == \"__DEFAULT__\" and .availability_zone == \"nova\" and .properties.a == \"b\" and
		.bootable == \"true\" and .volume_image_metadata.image_id == \"$IMIN\"" \
	--os-project-id "$PID" volume show "$VFULL"

set_spec volume "$NS" vol-full '{"resource": {"name": "kst-'"$RUN"'-vol2", "description": "changed",
	"metadata": {"a": null, "c": "d"}}}'
eventually 60 "Volume: update of name, description and metadata (set and unset) reaches Cinder" op -- \
	os_is ".name == \"kst-$RUN-vol2\" and .description == \"changed\" and
		(.properties | del(.[\"kupenstack-uid\"])) == {\"c\": \"d\"}" --os-project-id "$PID" volume show "$VFULL"
set_spec volume "$NS" vol-full '{"resource": {"size": 1}}'
eventually 60 "Volume: a smaller size is refused: InvalidConfiguration 'may only grow'" op -- \
	cond volume vol-full InvalidConfiguration "may only grow"
set_spec volume "$NS" vol-full '{"resource": {"size": 2}}'
until_ok 60 avail volume vol-full
# Growing: Cinder is asked to extend. Its fake driver here cannot (error_extending), which
# the object then reports; a real backend makes the volume 2 GiB.
set_spec volume "$NS" vol-min '{"resource": {"size": 2}}'
eventually 60 "Volume: a larger size makes Cinder extend the volume (here: the fake driver fails, reported)" op -- \
	eval "os_is '.size == 2 or .status == \"error_extending\"' --os-project-id $PID volume show $VMIN &&
		(avail volume vol-min || cond volume vol-min ResourceError 'could not extend')"

EXT=$(osp volume create --size 1 "kst-$RUN-ext" -f value -c id 2>"$OUT")
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Volume
metadata: {name: vol-imp}
spec:
  import: {id: "$EXT"}
  managementPolicy: unmanaged
---
apiVersion: kupenstack.io/v1alpha1
kind: Volume
metadata: {name: vol-later}
spec:
  import: {filter: {metadata: {kst-later: "$RUN"}}}
  onDelete: delete
EOF
eventually 60 "Volume: import by id (unmanaged): Available" op -- id_is volume vol-imp "$EXT"
eventually 60 "Volume: import by a filter (metadata) that matches none: Waiting" op -- \
	cond volume vol-later Waiting "no Volume matches spec.import.filter"
LATER=$(osp volume create --size 1 --property "kst-later=$RUN" "kst-$RUN-later" -f value -c id 2>"$OUT")
eventually 60 "Volume: ... once one exists, the filter matches one and it is adopted" op -- \
	id_is volume vol-later "$LATER"
T1=$(osp volume create --size 1 --property "kst-two=$RUN" "kst-$RUN-two-a" -f value -c id 2>"$OUT")
T2=$(osp volume create --size 1 --property "kst-two=$RUN" "kst-$RUN-two-b" -f value -c id 2>"$OUT")
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Volume
metadata: {name: vol-two}
spec:
  import: {filter: {metadata: {kst-two: "$RUN"}}}
EOF
eventually 60 "Volume: import by a filter that matches two: InvalidConfiguration naming both" op -- \
	cond volume vol-two InvalidConfiguration "matches 2 .*($T1.*$T2|$T2.*$T1)"
del_cr volume vol-two
eventually 60 "Volume: deleting the object that adopted nothing leaves both volumes alone" op -- \
	eval "cr_gone volume vol-two && os_is .id --os-project-id $PID volume show $T1 &&
		os_is .id --os-project-id $PID volume show $T2"
osp volume delete "$T1" "$T2" >/dev/null 2>&1
del_cr volume vol-later
eventually 60 "Volume: deleting an import with onDelete: delete deletes its volume" op -- \
	eval "cr_gone volume vol-later && os_gone --os-project-id $PID volume show $LATER"
del_cr volume vol-imp
eventually 60 "Volume: deleting an unmanaged import leaves the volume alone" op -- \
	eval "cr_gone volume vol-imp && os_is .id --os-project-id $PID volume show $EXT"
osp volume delete "$EXT" >/dev/null 2>&1

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Volume
metadata: {name: vol-det}
spec:
  resource: {size: 1}
  onDelete: detach
EOF
until_ok 90 avail volume vol-det
VDET=$(sid volume vol-det)
del_cr volume vol-det
eventually 60 "Volume: delete with onDelete: detach: the object goes, the volume stays" op -- \
	eval "cr_gone volume vol-det && os_is .id --os-project-id $PID volume show $VDET"
osp volume delete "$VDET" >/dev/null 2>&1

osp volume delete "$VFULL" >"$OUT" 2>&1
until_ok 60 os_gone --os-project-id "$PID" volume show "$VFULL"
touch_cr volume vol-full
eventually 90 "Volume: deleted behind our back: made again (new ID, Event Drift)" op -- \
	eval "new_id volume vol-full $VFULL && event Volume vol-full Drift"
VFULL=$(sid volume vol-full)
osp volume set --name hacked --property rogue=1 "$VFULL" >"$OUT" 2>&1
touch_cr volume vol-full
eventually 60 "Volume: edited behind our back (name, metadata): corrected" op -- \
	os_is ".name == \"kst-$RUN-vol2\" and .properties.rogue == null and .properties.c == \"d\"" \
	--os-project-id "$PID" volume show "$VFULL"

bad_spec <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Volume
metadata: {name: vol-bad}
spec:
  resource: {size: 0}
EOF
check "Volume: an invalid spec (size: 0) is rejected by the API server, naming the field" -- \
	rejected 'spec.resource.size'

del_cr volume vol-min
eventually 90 "Volume: delete: the volume goes from Cinder (asynchronously), then the object" op -- \
	eval "cr_gone volume vol-min && os_gone --os-project-id $PID volume show $VMIN"

# ---- Instance -----------------------------------------------------------------------------

# Their image: an Image object (cirros in the samples; here the served data).
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: cirros}
spec:
  resource: {container_format: bare, disk_format: raw}
  source: {url: "$URL"}
---
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-min}
spec:
  imageRef: {name: img-min}
  flavorRef: {name: kst-$RUN-tiny}
  networks: [{networkRef: {name: net}}]
---
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-full}
spec:
  imageRef: {name: cirros}
  flavorRef: {name: $FFULL}
  keypairRef: {name: kp-full}
  securityGroupRefs: [{name: sg}]
  networks: [{networkRef: {name: net}, fixed_ip: 10.66.0.50}]
  powerState: Running
  resource:
    name: kst-$RUN-vm
    description: the full instance
    metadata: {role: web}
    user_data: |
      #cloud-config
      runcmd: [echo hello]
    availability_zone: nova
    tags: [web]
EOF
eventually 120 "Instance: minimal create: Available (ACTIVE), powerState Running, addresses in status" op -- \
	has instance "$NS" vm-min '.status.id != null and .status.powerState == "Running" and
		(.status.resource.addresses.net | length) == 1 and
		any(.status.conditions[]; .type == "Available" and .status == "True")'
VM=$(sid instance vm-min)
VM_UID=$(uid_of instance vm-min)
check "Instance: in Nova, in the project, ACTIVE, from the image and flavor, with the UID tag" -- \
	os_is ".status == \"ACTIVE\" and .project_id == \"$PID\" and .name == \"vm-min\" and
		(.image | tostring | contains(\"$IMIN\")) and .flavor.original_name == \"m1.tiny\" and
		(.tags | index(\"kupenstack-uid-$VM_UID\") != null)" "${NOVA[@]}" server show "$VM"
eventually 120 "Instance: full create: Available" op -- avail instance vm-full
VFULL=$(sid instance vm-full)
UD=$(printf '#cloud-config\nruncmd: [echo hello]\n' | base64 -w0)
check "Instance: full create: name, description, private flavor, key pair, security group, fixed IP, metadata, tags, zone, user_data (base64) in Nova" -- \
	os_is ".name == \"kst-$RUN-vm\" and .description == \"the full instance\" and
		.flavor.original_name == \"$FFULL-os\" and .key_name == \"${NS}_kst-$RUN-kp\" and
		.security_groups == [{\"name\": \"sg-$RUN\"}] and .addresses.net == [\"10.66.0.50\"] and
		.properties == {\"role\": \"web\"} and (.tags | index(\"web\") != null) and
		.\"OS-EXT-AZ:availability_zone\" == \"nova\" and .\"OS-EXT-SRV-ATTR:user_data\" == \"$UD\"" \
	"${NOVA[@]}" server show "$VFULL"
eventually 30 "Instance: Event Created" -- event Instance vm-full Created

set_spec instance "$NS" vm-full '{"resource": {"name": "kst-'"$RUN"'-vm2", "description": "changed",
	"metadata": {"role": "db", "tier": "2"}, "tags": ["web", "db"]}}'
eventually 60 "Instance: update of name, description, metadata and tags reaches Nova" op -- \
	os_is ".name == \"kst-$RUN-vm2\" and .description == \"changed\" and
		.properties == {\"role\": \"db\", \"tier\": \"2\"} and
		(.tags | index(\"db\") != null and any(.[]; startswith(\"kupenstack-uid-\")))" \
	"${NOVA[@]}" server show "$VFULL"
set_spec instance "$NS" vm-full '{"powerState": "Shutoff"}'
eventually 90 "Instance: powerState Shutoff stops the server (SHUTOFF in Nova, status.powerState Shutoff)" op -- \
	eval "has instance $NS vm-full '.status.powerState == \"Shutoff\"' && avail instance vm-full &&
		os_is '.status == \"SHUTOFF\"' server show $VFULL"
set_spec instance "$NS" vm-full '{"powerState": "Running"}'
eventually 90 "Instance: powerState Running starts it again" op -- \
	eval "has instance $NS vm-full '.status.powerState == \"Running\"' && avail instance vm-full &&
		os_is '.status == \"ACTIVE\"' server show $VFULL"
set_spec instance "$NS" vm-min '{"flavorRef": {"name": "'"$FFULL"'"}}'
eventually 60 "Instance: a change of an immutable reference (flavorRef) is refused: InvalidConfiguration" op -- \
	cond instance vm-min InvalidConfiguration "flavorRef is immutable"
set_spec instance "$NS" vm-min '{"flavorRef": {"name": "kst-'"$RUN"'-tiny"}}'
until_ok 60 avail instance vm-min

# Waiting for missing references, named, one after the other.
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-wait}
spec:
  flavorRef: {name: kst-$RUN-f-wait}
  imageRef: {name: img-wait}
  networks: [{networkRef: {name: net-wait}}]
EOF
eventually 60 "Instance: waiting for a missing Flavor: Waiting, naming it" op -- \
	cond instance vm-wait Waiting "Flavor kst-$RUN-f-wait does not exist"
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: kst-$RUN-f-wait}
spec:
  import: {id: "1"}
  managementPolicy: unmanaged
EOF
eventually 60 "Instance: ... once it exists: Waiting, naming the missing Image" op -- \
	cond instance vm-wait Waiting "Image img-wait does not exist"
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: img-wait}
spec:
  resource: {container_format: bare, disk_format: raw}
  source: {url: "$URL"}
EOF
eventually 90 "Instance: ... once it is Available: Waiting, naming the missing Network" op -- \
	cond instance vm-wait Waiting "Network net-wait does not exist"
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net-wait}
spec: {}
EOF
until_ok 60 eval "avail network net-wait && subnet_on net-wait 10.67.0.0/24"
eventually 120 "Instance: ... once it is there: the server is made (Available)" op -- avail instance vm-wait

# Imports: servers made with the CLI in the project.
mk_server() { osp "${NOVA[@]}" server create --image "$(sid image cirros)" --flavor 1 \
	--network "$(sid network net)" "$@" -f value -c id | grep -Eo '[0-9a-f-]{36}' | tail -n 1; }
EXT=$(mk_server --wait "kst-$RUN-ext" 2>"$OUT")
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-imp}
spec:
  import: {id: "$EXT"}
  managementPolicy: unmanaged
---
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-later}
spec:
  import: {filter: {name: kst-$RUN-later}}
  onDelete: delete
EOF
eventually 60 "Instance: import by id (unmanaged): Available, powerState Running" op -- \
	eval "id_is instance vm-imp $EXT && has instance $NS vm-imp '.status.powerState == \"Running\"'"
eventually 60 "Instance: import by a filter that matches none: Waiting" op -- \
	cond instance vm-later Waiting "no Instance matches spec.import.filter"
LATER=$(mk_server "kst-$RUN-later" 2>"$OUT")
T1=$(mk_server --tag "kst-$RUN-two" "kst-$RUN-two-a" 2>"$OUT")
T2=$(mk_server --tag "kst-$RUN-two" "kst-$RUN-two-b" 2>"$OUT")
touch_cr instance vm-later
eventually 90 "Instance: ... once one exists, the filter (an exact name) matches one and it is adopted" op -- \
	id_is instance vm-later "$LATER"
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-two}
spec:
  import: {filter: {tags: [kst-$RUN-two]}}
EOF
eventually 60 "Instance: import by a filter (tags) that matches two: InvalidConfiguration naming both" op -- \
	cond instance vm-two InvalidConfiguration "matches 2 .*($T1.*$T2|$T2.*$T1)"
del_cr instance vm-two
eventually 60 "Instance: deleting the object that adopted nothing leaves both servers alone" op -- \
	eval "cr_gone instance vm-two && os_is .id server show $T1 && os_is .id server show $T2"
osp server delete --wait "$T1" "$T2" >/dev/null 2>&1
del_cr instance vm-later
eventually 90 "Instance: deleting an import with onDelete: delete deletes its server" op -- \
	eval "cr_gone instance vm-later && os_gone server show $LATER"
del_cr instance vm-imp
eventually 60 "Instance: deleting an unmanaged import leaves the server alone" op -- \
	eval "cr_gone instance vm-imp && os_is .id server show $EXT"
osp server delete --wait "$EXT" >/dev/null 2>&1

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-det}
spec:
  imageRef: {name: cirros}
  flavorRef: {name: kst-$RUN-tiny}
  networks: [{networkRef: {name: net}}]
  onDelete: detach
EOF
until_ok 120 avail instance vm-det
VDET=$(sid instance vm-det)
del_cr instance vm-det
eventually 60 "Instance: delete with onDelete: detach: the object goes, the server stays" op -- \
	eval "cr_gone instance vm-det && os_is .id server show $VDET"
osp server delete --wait "$VDET" >/dev/null 2>&1

openstack server delete --wait "$VFULL" >"$OUT" 2>&1
touch_cr instance vm-full
eventually 120 "Instance: deleted behind our back: made again (new ID, ACTIVE, Event Drift)" op -- \
	eval "new_id instance vm-full $VFULL && event Instance vm-full Drift"
VFULL=$(sid instance vm-full)
check "Instance: ... the new server has the spec's fields and the fixed IP" -- \
	os_is ".name == \"kst-$RUN-vm2\" and .addresses.net == [\"10.66.0.50\"] and .properties.role == \"db\"" \
	"${NOVA[@]}" server show "$VFULL"
openstack server set --name hacked --property role=hacked "$VFULL" >"$OUT" 2>&1
openstack server stop "$VFULL" >>"$OUT" 2>&1
until_ok 60 os_is '.status == "SHUTOFF"' server show "$VFULL"
touch_cr instance vm-full
eventually 90 "Instance: edited behind our back (name, metadata, stopped): corrected and started again" op -- \
	os_is ".name == \"kst-$RUN-vm2\" and .properties.role == \"db\" and .status == \"ACTIVE\"" \
	"${NOVA[@]}" server show "$VFULL"

# Each "behind our back" check above annotates the object after the change, which makes the
# host look at once. Here nothing nudges it: a host with a short resync (--resync) finds the
# change at its next full resync, as production does (every 300 s by default): the latency
# to expect is the resync period (+-10 %) plus one reconcile (and a server's build); for an
# Instance, the plugin's poll_interval when it is longer.
# synced PLUGIN RESOURCE: the host (run with --log-level debug) has finished a reconcile
# of PLUGIN, ending well or in an error, for every RESOURCE of the namespace: its first
# look at each is done. (The queue's depth is no sign of it: with a resync as short as a
# loaded Nova's answer, keys are dirty again while in flight.)
synced() {
	local name missing=""
	for name in $(k get "$2" -n "$NS" -o jsonpath='{.items[*].metadata.name}'); do
		grep -qE "msg=\"(reconciled|reconcile failed|reconcile failed for good)\" controller=$1 key=$NS/$name " \
			"${HLOG[op]}" || missing+=" $name"
	done
	echo "not yet looked at:${missing:- none}"
	[ -z "$missing" ]
}
RESYNC=15
stop_host op TERM
# An Available Instance's server is looked at through the plugin's poll of the namespace's
# servers (poll_interval, default 60 s): here as often as the resync.
printf 'poll_interval: %s\n' "$RESYNC" >"$PLUGINS/instance.config.yaml"
if ! host_up --resync "$RESYNC" --log-level debug; then
	echo "the host did not come up" >"$OUT"
	fail "the operator starts again, with --resync $RESYNC" op
	finish
fi
# Its first look at every object (which would see any change) done before the changes.
eventually 120 "resync: the restarted host has looked at every Instance once" op -- synced instance instances
openstack server set --name hacked-again "$VFULL" >"$OUT" 2>&1
T_DRIFT=$SECONDS
eventually $((RESYNC * 4 + 60)) "Instance: renamed behind our back, no nudge: corrected at the next resync" op -- \
	os_is ".name == \"kst-$RUN-vm2\"" server show "$VFULL" &&
	echo "# drift (an edit) corrected $((SECONDS - T_DRIFT)) s after it was made; resync $RESYNC s"
drifts() {
	k get events -n "$NS" -o json |
		jq '[.items[] | select(.involvedObject.name == "vm-full" and .reason == "Drift") | .count // 1] | add // 0'
}
N_DRIFT=$(drifts)
openstack server delete --wait "$VFULL" >"$OUT" 2>&1
T_DRIFT=$SECONDS
eventually $((RESYNC * 4 + 120)) "Instance: deleted behind our back, no nudge: made again at the next resync (another Event Drift)" op -- \
	eval "new_id instance vm-full $VFULL && [ \"\$(drifts)\" -gt $N_DRIFT ]" &&
	echo "# drift (a delete) repaired $((SECONDS - T_DRIFT)) s after it was made (the new server ACTIVE); resync $RESYNC s"
VFULL=$(sid instance vm-full)
stop_host op TERM
rm -f "$PLUGINS/instance.config.yaml"
if ! host_up; then
	echo "the host did not come up" >"$OUT"
	fail "the operator starts again, with the plugins' resync" op
	finish
fi

bad_spec <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-bad}
spec:
  imageRef: {name: cirros}
  flavorRef: {name: kst-$RUN-tiny}
  networks: [{networkRef: {name: net}}]
  powerState: Paused
EOF
check "Instance: an invalid spec (powerState: Paused) is rejected by the API server, naming the field" -- \
	rejected 'spec.powerState'
bad_spec <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-bad}
spec:
  imageRef: {name: cirros}
  flavorRef: {name: kst-$RUN-tiny}
  networks: []
EOF
check "Instance: an invalid spec (no networks) is rejected by the API server, naming the field" -- \
	rejected 'spec.networks'

# In use: the Image img-min boots vm-min; a Volume made from cirros boots vm-bfv.
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Volume
metadata: {name: vol-boot}
spec:
  imageRef: {name: cirros}
  resource: {size: 1}
---
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-bfv}
spec:
  bootVolumeRef: {name: vol-boot}
  flavorRef: {name: kst-$RUN-tiny}
  networks: [{networkRef: {name: net}}]
EOF
eventually 120 "Instance: booted from a Volume (bootVolumeRef): Available, the volume attached" op -- \
	eval "avail instance vm-bfv && os_is \".volumes_attached | tostring | contains(\\\"\$(sid volume vol-boot)\\\")\" \
		server show \$(sid instance vm-bfv)"
VBOOT=$(sid volume vol-boot)
del_cr volume vol-boot
eventually 60 "Volume: deletion waits while an Instance boots from it (Waiting, naming the Instance)" op -- \
	cond volume vol-boot Waiting "Instance vm-bfv boots from it"
check "Volume: ... and the volume is still in Cinder" -- os_is .id --os-project-id "$PID" volume show "$VBOOT"
del_cr image img-min
eventually 60 "Image: deletion waits while an Instance boots from it (Waiting, naming the Instance)" op -- \
	cond image img-min Waiting "Instance vm-min boots from it"
check "Image: ... and the image is still in Glance" -- os_is .id image show "$IMIN"

del_cr instance vm-min
eventually 90 "Instance: delete: the server goes from Nova (asynchronously), then the object" op -- \
	eval "cr_gone instance vm-min && os_gone server show $VM"
eventually 60 "Image: ... once the Instance is gone, the image goes too" op -- \
	eval "cr_gone image img-min && os_gone image show $IMIN"
del_cr instance vm-bfv
eventually 120 "Volume: ... once the Instance is gone, the volume goes too" op -- \
	eval "cr_gone instance vm-bfv && cr_gone volume vol-boot && os_gone --os-project-id $PID volume show $VBOOT"

# The setting max_building (instance.config.yaml beside the plugin) bounds the servers of
# a namespace being built at once. With 1, three Instances applied together are built one
# after another: the others wait, saying why, and Nova's own timestamps show each server
# created no earlier than the one before it was launched.
# three_instances P: Instances P1, P2 and P3 applied together (cirros, tiny, on net).
three_instances() {
	local i
	for i in 1 2 3; do
		cat <<EOF
---
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: $1$i}
spec:
  imageRef: {name: cirros}
  flavorRef: {name: kst-$RUN-tiny}
  networks: [{networkRef: {name: net}}]
EOF
	done | apply
}
# all_three CHECK P: CHECK instance P1, P2 and P3 (avail, cr_gone) all hold.
all_three() { "$1" instance "${2}1" && "$1" instance "${2}2" && "$1" instance "${2}3"; }
reloads() { logged op "plugin reloaded.*instance\.lua"; }
R0=$(reloads)
printf 'max_building: 1\n' >"$PLUGINS/instance.config.yaml"
eventually 30 "Instance: a new setting (max_building: 1) reloads the plugin" op -- \
	eval "[ \$(reloads) -gt $R0 ]"
three_instances vm-b
eventually 60 "Instance: max_building 1: those applied with the first wait their turn, saying why" op -- \
	eval "k get instances -n $NS -o json | jq -e '[.items[] | select(.metadata.name | startswith(\"vm-b\"))
		| .status.conditions[]? | select(.type == \"Progressing\" and .reason == \"Waiting\"
		and (.message | test(\"at most 1 Instance objects of a namespace are created at once\")))] | length > 0'"
eventually 180 "Instance: ... and all three become Available" op -- all_three avail vm-b
one_at_a_time() { # Nova's created and launched_at of vm-b1..3, by created: no overlap
	local n
	for n in vm-b1 vm-b2 vm-b3; do
		openstack "${NOVA[@]}" server show "$(sid instance "$n")" -f json |
			jq -r '[.created, ."OS-SRV-USG:launched_at"] | @tsv'
	done | sort | while IFS=$'\t' read -r c l; do
		echo "$(date -d "$c" +%s) $(date -d "${l%.*}Z" +%s) $c $l"
	done | awk '{ print } NR > 1 && $1 < last { bad = 1 } { last = $2 } END { exit bad || NR != 3 }'
}
check "Instance: ... built one after another (Nova: each created after the one before was launched)" -- \
	one_at_a_time
for i in 1 2 3; do del_cr instance "vm-b$i"; done
eventually 90 "Instance: ... and deleted" op -- all_three cr_gone vm-b
R0=$(reloads)
rm -f "$PLUGINS/instance.config.yaml"
eventually 30 "Instance: the setting removed (max_building 8 again) reloads the plugin" op -- \
	eval "[ \$(reloads) -gt $R0 ]"

# Several servers being built at once are polled with one list of the project's servers in
# BUILD (its cost goes with how many are building, not with the project's size), never
# with the list of all of them: Nova's own log of its requests shows both.
NOVA_LOG=$(dirname "$OS_CLIENT_CONFIG_FILE")/log/nova-api.log
L0=$(wc -l <"$NOVA_LOG") T0=$(date +%s)
three_instances vm-c
# L1: Nova's log as the first of them becomes Available (until then all three build);
# L2: once all three are.
any_avail() { avail instance vm-c1 || avail instance vm-c2 || avail instance vm-c3; }
until_ok 120 any_avail
L1=$(wc -l <"$NOVA_LOG") T1=$(date +%s)
eventually 120 "Instance: three applied together become Available" op -- all_three avail vm-c
L2=$(wc -l <"$NOVA_LOG")
# nova_asked TO PATH: Nova's requests for PATH from this project, from L0 to line TO.
nova_asked() {
	sed -n "$((L0 + 1)),${1}p" "$NOVA_LOG" | grep -F " $PID " | grep -cF "\"GET /v2.1/$2 "
}
check "Instance: ... polled with a list of the project's servers in BUILD (Nova's log)" -- \
	eval "[ \$(nova_asked $L2 'servers/detail?status=BUILD') -ge 1 ]"
# An Available Instance is looked at through one list of all the project's servers per
# poll round (poll_interval, 60 s, rounds aligned to the minute; issue 15), and the
# namespace has Available Instances from earlier checks. Servers being built never use
# that list: while the three built, at most one such list per round began (and one more,
# for a look an event caused).
ROUNDS=$(((T1 / 60) - (T0 / 60) + 2))
check "Instance: ... and not, while building, with a list of all the project's servers (at most $ROUNDS)" -- \
	eval "[ \$(nova_asked $L1 'servers/detail') -le $ROUNDS ]"
for i in 1 2 3; do del_cr instance "vm-c$i"; done
eventually 90 "Instance: ... and deleted" op -- all_three cr_gone vm-c

# ---- crash safety -------------------------------------------------------------------------

# With the operator stopped, objects are created and, for each, what a create whose answer
# was lost leaves in OpenStack: the operator, started again, adopts it.
stop_host op TERM
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: kst-$RUN-crash}
spec:
  resource: {ram: 64, vcpus: 1, disk: 1}
---
apiVersion: kupenstack.io/v1alpha1
kind: KeyPair
metadata: {name: kp-crash}
spec:
  resource: {public_key: "$KEY4"}
---
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: img-crash}
spec:
  resource: {container_format: bare, disk_format: raw}
  source: {url: "$URL"}
---
apiVersion: kupenstack.io/v1alpha1
kind: Volume
metadata: {name: vol-crash}
spec:
  resource: {size: 1}
---
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm-crash}
spec:
  imageRef: {name: cirros}
  flavorRef: {name: kst-$RUN-tiny}
  networks: [{networkRef: {name: net}}]
EOF
C_FLAVOR=$(openstack flavor create --id "$(uid_of flavor "kst-$RUN-crash")" --ram 64 --vcpus 1 --disk 1 \
	"kst-$RUN-crash" -f value -c id 2>"$OUT")
openstack keypair create --public-key "$WORK/key4.pub" "${NS}_kp-crash" >"$OUT" 2>&1
C_IMAGE=$(queued_image img-crash "kupenstack-uid-$(uid_of image img-crash)" 2>"$OUT")
C_VOLUME=$(osp volume create --size 1 --property "kupenstack-uid=$(uid_of volume vol-crash)" vol-crash \
	-f value -c id 2>"$OUT")
C_SERVER=$(mk_server --tag "kupenstack-uid-$(uid_of instance vm-crash)" vm-crash 2>"$OUT")
if ! host_up; then
	echo "the host did not come up again" >"$OUT"
	fail "the operator starts again" op
	finish
fi
eventually 300 "crash safety: each object adopts what was made for it (status.id), Event Adopted" op -- \
	eval "id_is flavor kst-$RUN-crash $C_FLAVOR && id_is keypair kp-crash ${NS}_kp-crash &&
		id_is image img-crash $C_IMAGE && id_is volume vol-crash $C_VOLUME &&
		id_is instance vm-crash $C_SERVER && event Instance vm-crash Adopted"
api_setup >"$OUT" 2>&1
check "crash safety: exactly one server, volume, image in the project, flavor in the cloud per object" -- \
	eval "api_count 1 '$NOVA_URL/servers?all_tenants=1&project_id=$PID&tags=kupenstack-uid-$(uid_of instance vm-crash)' .servers &&
		api_count 1 '$CINDER_URL/volumes?all_tenants=1&project_id=$PID&metadata=%7B%22kupenstack-uid%22%3A%22$(uid_of volume vol-crash)%22%7D' .volumes &&
		api_count 1 '$GLANCE_URL/images?tag=kupenstack-uid-$(uid_of image img-crash)' .images &&
		api_count 1 '$NOVA_URL/flavors/detail?is_public=None' '[.flavors[] | select(.extra_specs[\"kupenstack:uid\"] == \"$(uid_of flavor kst-$RUN-crash)\")]'"
check "crash safety: the image that got no data before the crash gets it" -- \
	os_is ".status == \"active\" and .checksum == \"$MD5\"" image show "$C_IMAGE"

# ---- tenancy: deleting the namespace ------------------------------------------------------

leftovers() {
	local left=0
	api_count 0 "$NOVA_URL/servers?all_tenants=1&project_id=$PID" .servers || left=1
	api_count 0 "$CINDER_URL/volumes?all_tenants=1&project_id=$PID" .volumes || left=1
	api_count 0 "$GLANCE_URL/images?owner=$PID" .images || left=1
	return $left
}
# api_some URL JQ: GET URL (as admin) answers, and its JQ is not empty.
api_some() {
	local j
	j=$(curl -sf -H "X-Auth-Token: $ATOKEN" -H 'X-OpenStack-Nova-API-Version: 2.79' "$1") ||
		{ echo "GET $1 failed"; return 1; }
	jq -e "$2 | length > 0" <<<"$j" >/dev/null || { echo "GET $1: $2 is empty"; return 1; }
}
check "before the namespace goes, its project holds what its objects made (the queries work)" -- \
	eval "api_some '$NOVA_URL/servers?all_tenants=1&project_id=$PID' .servers &&
		api_some '$CINDER_URL/volumes?all_tenants=1&project_id=$PID' .volumes &&
		api_some '$GLANCE_URL/images?owner=$PID' .images"
k delete namespace "$NS" --wait=false >/dev/null
eventually 300 "deleting the namespace deletes its OpenStack resources, then the project, then the namespace" op -- \
	k_gone namespace "$NS"
check "nothing of the project is left in Nova, Cinder and Glance" -- leftovers
# Flavors are cluster-scoped (issue 13): the namespace's deletion leaves them, and deleting
# the Flavor object deletes what it made.
check "a Flavor outlives the namespace (cluster-scoped): still in Nova" -- \
	openstack flavor show "$C_FLAVOR" -f value -c id
k delete flavor "kst-$RUN-crash" --wait=false >/dev/null 2>&1
eventually 120 "deleting the Flavor object deletes its flavor from Nova" op -- \
	os_gone flavor show "$C_FLAVOR"

finish
