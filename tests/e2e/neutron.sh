#!/usr/bin/env bash
# tests/e2e/neutron.sh: the Neutron kinds (Network, Subnet, Router, SecurityGroup, Port,
# FloatingIP) as a user meets them, against the real apiserver and the real OpenStack. One
# `kupenstack run` (the tenancy plugin and the Neutron plugins) serves a fresh namespace
# labelled kupenstack.io/project=true; kubectl does what a user does, and the Neutron API,
# read with an admin token, says what really exists in the namespace's project. Per kind:
# minimal and full create, in-place update, import by id and by filter (zero, one, two
# matches), waiting on a missing dependency, delete, delete with onDelete: detach,
# deletion blocked while in use, deleted and edited behind KupenStack's back, a spec the
# API server rejects; a same-named Network made by hand is not adopted (only what carries the UID);
# finally deleting the namespace removes its project and everything in it. Needs
# KUBECONFIG (admin, the CRDs applied) and OS_CLIENT_CONFIG_FILE (and OS_CLOUD, default
# kupenstack-admin, an admin with an external network `public`). Prints TAP lines and
# `N passed, N failed`; exits 1 on any failure, 2 without KUBECONFIG or
# OS_CLIENT_CONFIG_FILE.
# needs: openstack
if [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	echo "${0##*/}: OS_CLIENT_CONFIG_FILE is not set (. /tmp/os.env)" >&2
	exit 2
fi
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export OS_CLOUD=${OS_CLOUD:-kupenstack-admin}

NS=ks-e2e-neutron-$$
PLUGINS=$(mktemp -d "$WORK/plugins.XXXXXX")
for p in project network subnet router securitygroup port floatingip; do
	cp "$TOP/plugins/$p.lua" "$PLUGINS/"
done
PID=
RUN=$$ # makes the OpenStack names of this run its own

# ---- kubectl -----------------------------------------------------------------------------

# reject NAME PATTERN: a check that applying the YAML on stdin fails, with a message
# matching PATTERN.
reject() {
	cat >"$WORK/bad.yaml"
	check "$1" -- rejected "$2" "$WORK/bad.yaml"
}
rejected() {
	if k apply -n "$NS" -f "$2" >"$WORK/apply.out" 2>&1; then
		echo "the API server accepted it:"
		cat "$WORK/apply.out"
		return 1
	fi
	cat "$WORK/apply.out"
	grep -Eq -- "$1" "$WORK/apply.out"
}

# cond KIND NAME REASON REGEX [TYPE]: condition TYPE (Available) has reason REASON and a
# message matching REGEX.
cond() {
	local j t=${5:-Available}
	j=$(obj_json "$1" "$NS" "$2") || return 1
	if jq -e --arg t "$t" --arg r "$3" --arg m "$4" 'any(.status.conditions[]?; .type == $t and
			.reason == $r and (.message | test($m)))' <<<"$j" >/dev/null; then
		return 0
	fi
	echo "$1 $2: no $t condition with reason $3 and a message matching /$4/"
	jq -c '.status' <<<"$j"
	return 1
}

# event KIND NAME REASON: the object has an Event with that reason.
event() {
	k get events -n "$NS" -o json | jq -e --arg k "$1" --arg n "$2" --arg r "$3" \
		'any(.items[]; .involvedObject.kind == $k and .involvedObject.name == $n and .reason == $r)' \
		>/dev/null || { echo "no Event $3 on $1 $2"; k get events -n "$NS" | tail -n 5; return 1; }
}

# ---- OpenStack ---------------------------------------------------------------------------

# os_setup: an admin token (to look) and one scoped to the namespace's project (to act as
# a user of it behind KupenStack's back), and Neutron's endpoint.
os_setup() {
	ATOKEN=$(openstack token issue -f value -c id) &&
		PTOKEN=$(openstack --os-project-id "$PID" token issue -f value -c id) &&
		NEUTRON=$(openstack endpoint list --service network --interface public -f value -c URL |
			head -n 1)/v2.0 &&
		PUBLIC=$(openstack network show public -f value -c id) && [ -n "$PUBLIC" ]
}

# osapi TOKEN METHOD PATH [BODY]: print the response body; false unless a 2xx.
osapi() {
	local code
	code=$(curl -sS -o "$WORK/os.body" -w '%{http_code}' -X "$2" -H "X-Auth-Token: $1" \
		-H 'Content-Type: application/json' ${4:+--data "$4"} "$NEUTRON$3") || return 1
	cat "$WORK/os.body"
	[[ $code == 2* ]] || { echo " ($2 $3: HTTP $code)"; return 1; }
}

os_get() { osapi "$ATOKEN" GET "$1"; }

# os_has PATH JQ: GET PATH (as admin) satisfies JQ.
os_has() {
	local j
	j=$(os_get "$1") || { echo "GET $1 failed: $j"; return 1; }
	jq -e "$2" <<<"$j" >/dev/null && return 0
	echo "GET $1 fails $2:"
	jq -c . <<<"$j"
	return 1
}

# os_gone PATH: GET PATH answers 404.
os_gone() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $ATOKEN" "$NEUTRON$1")
	[ "$code" = 404 ] || { echo "GET $1: HTTP $code, not 404"; return 1; }
}

# raw PLURAL KEY BODY: create a resource in the namespace's project behind KupenStack's
# back; print its ID.
raw() { osapi "$PTOKEN" POST "/$1" "{\"$2\": $3}" | jq -r ".$2.id"; }

# raw_put PATH BODY, raw_del PATH: change or delete behind KupenStack's back.
raw_put() { osapi "$PTOKEN" PUT "$1" "$2" >/dev/null; }
raw_del() { osapi "$PTOKEN" DELETE "$1" >/dev/null; }

# count_named PLURAL NAME N: the project has N PLURAL named NAME.
count_named() {
	local n
	n=$(os_get "/$1?project_id=$PID&name=$2" | jq ".$1 | length")
	[ "$n" = "$3" ] || { echo "$n $1 named $2 in project $PID, not $3"; return 1; }
}

# ---- the import tests every kind shares ---------------------------------------------------

# import_suite KIND PLURAL KEY FIELD MKBODY: import by id, then by a filter on FIELD that
# matches one, none and two. MKBODY VALUE prints the body of a raw resource whose FIELD is
# VALUE. The adopted ones stay (onDelete: delete: the namespace's deletion deletes them); the two that made
# the filter ambiguous are removed here.
import_suite() {
	local kind=$1 plural=$2 key=$3 ff=$4 mk=$5 lk=${1,,} id1 id2 d1 d2 v
	id1=$(raw "$plural" "$key" "$($mk "imp-$lk-id-$RUN")")
	apply <<-EOF
		apiVersion: kupenstack.io/v1alpha1
		kind: $kind
		metadata: {name: $lk-imp-id}
		spec: {import: {id: "$id1"}, onDelete: delete}
	EOF
	eventually 60 "$kind: import by id adopts the resource (status.id is its ID, Event Adopted)" op -- \
		eval "id_is $kind $lk-imp-id $id1 && event $kind $lk-imp-id Adopted"
	v=imp-$lk-one-$RUN
	id2=$(raw "$plural" "$key" "$($mk "$v")")
	apply <<-EOF
		apiVersion: kupenstack.io/v1alpha1
		kind: $kind
		metadata: {name: $lk-imp-one}
		spec: {import: {filter: {$ff: "$v"}}, onDelete: delete}
	EOF
	eventually 60 "$kind: import by a filter that matches one adopts it" op -- id_is "$kind" "$lk-imp-one" "$id2"
	apply <<-EOF
		apiVersion: kupenstack.io/v1alpha1
		kind: $kind
		metadata: {name: $lk-imp-none}
		spec: {import: {filter: {$ff: "imp-$lk-none-$RUN"}}}
	EOF
	eventually 60 "$kind: import by a filter that matches none: Waiting, 'no $kind matches'" op -- \
		cond "$kind" "$lk-imp-none" Waiting "no $kind matches spec.import.filter"
	v=imp-$lk-two-$RUN
	d1=$(raw "$plural" "$key" "$($mk "$v")")
	d2=$(raw "$plural" "$key" "$($mk "$v")")
	apply <<-EOF
		apiVersion: kupenstack.io/v1alpha1
		kind: $kind
		metadata: {name: $lk-imp-two}
		spec: {import: {filter: {$ff: "$v"}}}
	EOF
	eventually 60 "$kind: import by a filter that matches two: InvalidConfiguration naming both" op -- \
		cond "$kind" "$lk-imp-two" InvalidConfiguration "matches 2 .*($d1.*$d2|$d2.*$d1)"
	del_cr "$kind" "$lk-imp-none"
	del_cr "$kind" "$lk-imp-two"
	until_ok 60 cr_gone "$kind" "$lk-imp-two"
	until_ok 60 cr_gone "$kind" "$lk-imp-none"
	check "$kind: deleting the objects that adopted nothing leaves OpenStack alone" -- \
		eval "os_has /$plural/$d1 .$key.id && os_has /$plural/$d2 .$key.id"
	raw_del "/$plural/$d1"
	raw_del "/$plural/$d2"
	IMPORTED_ID=$id1
}

# detach_suite KIND PLURAL KEY NAME: NAME (onDelete: detach, available) is deleted; the
# object goes, the OpenStack resource stays (and is then removed here).
detach_suite() {
	local id
	id=$(sid "$1" "$4")
	del_cr "$1" "$4"
	eventually 60 "$1: delete with onDelete: detach: the object goes ..." op -- cr_gone "$1" "$4"
	check "$1: ... and the resource stays in OpenStack" -- os_has "/$2/$id" ".$3.id == \"$id\""
	raw_del "/$2/$id"
}

# delete_suite KIND PLURAL NAME: NAME is deleted; it goes from OpenStack, then the object.
delete_suite() {
	local id
	id=$(sid "$1" "$3")
	del_cr "$1" "$3"
	eventually 60 "$1: delete: the object goes once its resource is gone from OpenStack" op -- \
		eval "cr_gone $1 $3 && os_gone /$2/$id"
}

# ---- setup ------------------------------------------------------------------------------

# tidy: at exit, while the operator still runs, delete the namespace (its finalizers need
# the operator); if it does not go, take the finalizers off so that the cluster is left
# clean (and say what may be left in OpenStack). Then lib.sh's cleanup.
tidy() {
	local o
	if [ -n "${HPID[op]:-}" ] && k get namespace "$NS" >/dev/null 2>&1; then
		k delete namespace "$NS" --wait=false >/dev/null 2>&1
		if ! until_ok 240 eval "! k get namespace $NS"; then
			echo "# namespace $NS did not go: its finalizers are taken off; project $PID may be left in OpenStack"
			for o in $(k get openstack -n "$NS" -o name 2>/dev/null); do
				k patch "$o" -n "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
			done
			k patch namespace "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
		fi
	fi
	cleanup
}
trap tidy EXIT

new_ns "$NS"
k label namespace "$NS" kupenstack.io/project=true >/dev/null
if ! start_host op "$PLUGINS" "$NS" --set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" --set cloud="$OS_CLOUD"; then
	echo "the host did not come up" >"$OUT"
	fail "the operator starts" op
	finish
fi
eventually 60 "the labelled namespace gets a project (annotation kupenstack.io/project-id)" op -- project_of
project_of
if [ -z "$PID" ] || ! os_setup >"$OUT" 2>&1; then
	fail "the OpenStack tokens, Neutron's endpoint and the network public"
	finish
fi

# ---- Network ------------------------------------------------------------------------------

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net-min}
spec: {}
EOF
eventually 60 "Network: minimal create: Available with an ID" op -- avail network net-min
NET_MIN=$(sid network net-min)
UID_MIN=$(field network "$NS" net-min .metadata.uid)
check "Network: it exists in the namespace's project, named after the object, with the UID tag" -- \
	os_has "/networks/$NET_MIN" ".network.project_id == \"$PID\" and .network.name == \"net-min\"
		and (.network.tags | index(\"kupenstack-uid-$UID_MIN\") != null)"
eventually 30 "Network: Event Created" -- event Network net-min Created

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net-full}
spec:
  resource:
    name: net-full-os-$RUN
    description: the full network
    mtu: 1400
    port_security_enabled: false
    admin_state_up: true
    tags: [blue, green]
EOF
eventually 60 "Network: full create: Available" op -- avail network net-full
NET_FULL=$(sid network net-full)
check "Network: full create: name, description, mtu, port_security_enabled and tags in OpenStack" -- \
	os_has "/networks/$NET_FULL" ".network | .name == \"net-full-os-$RUN\" and
		.description == \"the full network\" and .mtu == 1400 and
		.port_security_enabled == false and (.tags | index(\"blue\") != null and
		index(\"green\") != null and any(.[]; startswith(\"kupenstack-uid-\")))"
set_spec network "$NS" net-full '{"resource": {"description": "changed", "mtu": 1300}}'
eventually 60 "Network: update of mutable fields (description, mtu) reaches OpenStack" op -- \
	os_has "/networks/$NET_FULL" '.network.description == "changed" and .network.mtu == 1300'
eventually 30 "Network: Event Updated" -- event Network net-full Updated

# A network made by hand in the project with the object's name, but neither our UID tag nor
# the description a create of ours carries, is someone else's: the object makes its own and
# leaves that one alone (issue 13: adoption by UID only; tenancy.sh has the attack, crash.sh
# the create whose tagging was lost, which is adopted by its description).
CRASH_ID=$(openstack --os-project-id "$PID" network create "net-crash" -f value -c id 2>"$OUT")
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net-crash}
spec: {}
EOF
eventually 60 "Network: a same-named network made by hand is not adopted: the object makes its own" op -- \
	new_id network net-crash "$CRASH_ID"
check "Network: ... the hand-made one is left as it was (untagged), beside ours" -- \
	eval "count_named networks net-crash 2 && os_has /networks/$CRASH_ID '.network.tags | all(.[]; startswith(\"kupenstack-uid-\") | not)'"
openstack network delete "$CRASH_ID" >/dev/null 2>&1 # no object deletes it

mk_network() { echo "{\"name\": \"$1\"}"; }
import_suite Network networks network name mk_network
RAWNET=$IMPORTED_ID # the imported networks' subnets and ports are made on this one

# unmanaged: observed, never written, never deleted.
UNM=$(raw networks network "{\"name\": \"net-unm-$RUN\", \"description\": \"as it was\"}")
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net-unm}
spec:
  import: {id: "$UNM"}
  managementPolicy: unmanaged
  resource: {description: not to be applied}
EOF
eventually 60 "Network: unmanaged: observed (Available, status.resource as OpenStack has it)" op -- \
	eval "id_is network net-unm $UNM && has network $NS net-unm '.status.resource.description == \"as it was\"'"
check "Network: unmanaged: spec.resource is not applied" -- \
	os_has "/networks/$UNM" '.network.description == "as it was"'
del_cr network net-unm
eventually 60 "Network: unmanaged: deleting the object leaves the network in OpenStack" op -- \
	eval "cr_gone network net-unm && os_has /networks/$UNM .network.id"
raw_del "/networks/$UNM"

raw_del "/networks/$NET_MIN"
touch_cr network net-min
eventually 60 "Network: deleted behind our back: recreated (new status.id, Event Drift)" op -- \
	eval "new_id network net-min $NET_MIN && event Network net-min Drift"
NET_MIN=$(sid network net-min)
check "Network: the new one exists in OpenStack" -- os_has "/networks/$NET_MIN" ".network.project_id == \"$PID\""

raw_put "/networks/$NET_FULL" '{"network": {"description": "tampered", "mtu": 1280}}'
touch_cr network net-full
eventually 60 "Network: edited behind our back: corrected at the next reconcile" op -- \
	os_has "/networks/$NET_FULL" '.network.description == "changed" and .network.mtu == 1300'

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net-detach}
spec: {onDelete: detach}
EOF
until_ok 60 avail network net-detach
detach_suite Network networks network net-detach

reject "Network: an invalid spec (mtu 10) is rejected by the API server, naming the field" 'mtu' <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net-bad}
spec: {resource: {mtu: 10}}
EOF

# ---- Subnet -------------------------------------------------------------------------------

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Subnet
metadata: {name: sub-wait}
spec:
  networkRef: {name: net-later}
  resource: {cidr: 10.20.9.0/24}
EOF
eventually 60 "Subnet: waits for its missing Network (Waiting, naming Network net-later)" op -- \
	cond subnet sub-wait Waiting "Network net-later"
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net-later}
spec: {}
EOF
eventually 60 "Subnet: proceeds once the Network appears (on that network in OpenStack)" op -- \
	eval "avail subnet sub-wait && os_has /subnets/\$(sid subnet sub-wait) \".subnet.network_id == \\\"\$(sid network net-later)\\\"\""

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Subnet
metadata: {name: sub-min}
spec:
  networkRef: {name: net-full}
  resource: {cidr: 10.20.1.0/24}
EOF
eventually 60 "Subnet: minimal create: Available" op -- avail subnet sub-min
SUB_MIN=$(sid subnet sub-min)
check "Subnet: in OpenStack on the Network's network, IPv4, with the default gateway" -- \
	os_has "/subnets/$SUB_MIN" ".subnet | .network_id == \"$NET_FULL\" and .cidr == \"10.20.1.0/24\"
		and .ip_version == 4 and .gateway_ip == \"10.20.1.1\" and .project_id == \"$PID\""

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Subnet
metadata: {name: sub-full}
spec:
  networkRef: {name: net-full}
  resource:
    name: sub-full-os
    description: the full subnet
    cidr: 10.20.2.0/24
    ip_version: 4
    gateway_ip: 10.20.2.254
    enable_dhcp: false
    dns_nameservers: [8.8.8.8, 1.1.1.1]
    allocation_pools: [{start: 10.20.2.10, end: 10.20.2.99}]
    host_routes: [{destination: 10.99.0.0/16, nexthop: 10.20.2.5}]
    tags: [red]
EOF
eventually 60 "Subnet: full create: Available" op -- avail subnet sub-full
SUB_FULL=$(sid subnet sub-full)
check "Subnet: full create: every field in OpenStack" -- \
	os_has "/subnets/$SUB_FULL" '.subnet | .name == "sub-full-os" and .description == "the full subnet"
		and .gateway_ip == "10.20.2.254" and .enable_dhcp == false
		and .dns_nameservers == ["8.8.8.8", "1.1.1.1"]
		and .allocation_pools == [{"start": "10.20.2.10", "end": "10.20.2.99"}]
		and .host_routes == [{"destination": "10.99.0.0/16", "nexthop": "10.20.2.5"}]
		and (.tags | index("red") != null)'
set_spec subnet "$NS" sub-full '{"resource": {"description": "changed", "dns_nameservers": ["9.9.9.9"],
	"gateway_ip": "none", "allocation_pools": [{"start": "10.20.2.10", "end": "10.20.2.120"}]}}'
eventually 60 "Subnet: update in place (description, DNS, pools; gateway_ip none: no gateway)" op -- \
	os_has "/subnets/$SUB_FULL" '.subnet | .description == "changed" and .dns_nameservers == ["9.9.9.9"]
		and .gateway_ip == null and .allocation_pools == [{"start": "10.20.2.10", "end": "10.20.2.120"}]'
check "Subnet: the same subnet (updated, not replaced)" -- id_is subnet sub-full "$SUB_FULL"

set_spec subnet "$NS" sub-min '{"resource": {"cidr": "10.20.3.0/24"}}'
eventually 60 "Subnet: a change of cidr: Progressing False, InvalidConfiguration naming spec.resource.cidr (still Available)" op -- \
	eval "cond subnet sub-min InvalidConfiguration 'spec.resource.cidr is immutable' Progressing && avail subnet sub-min"
check "Subnet: ... and OpenStack is untouched" -- os_has "/subnets/$SUB_MIN" '.subnet.cidr == "10.20.1.0/24"'
set_spec subnet "$NS" sub-min '{"resource": {"cidr": "10.20.1.0/24"}}'
eventually 60 "Subnet: the cidr put back: Available again" op -- id_is subnet sub-min "$SUB_MIN"

echo 30 >"$WORK/subnet.n"
mk_subnet() { # a fresh CIDR each time (it runs in a subshell: the count is kept in a file)
	local n=$(($(cat "$WORK/subnet.n") + 1))
	echo "$n" >"$WORK/subnet.n"
	echo "{\"name\": \"$1\", \"network_id\": \"$RAWNET\", \"cidr\": \"10.$n.0.0/24\", \"ip_version\": 4}"
}
import_suite Subnet subnets subnet name mk_subnet

raw_del "/subnets/$SUB_MIN"
touch_cr subnet sub-min
eventually 60 "Subnet: deleted behind our back: recreated (new status.id, Event Drift)" op -- \
	eval "new_id subnet sub-min $SUB_MIN && event Subnet sub-min Drift"
SUB_MIN=$(sid subnet sub-min)
raw_put "/subnets/$SUB_FULL" '{"subnet": {"description": "tampered", "dns_nameservers": []}}'
touch_cr subnet sub-full
eventually 60 "Subnet: edited behind our back: corrected" op -- \
	os_has "/subnets/$SUB_FULL" '.subnet.description == "changed" and .subnet.dns_nameservers == ["9.9.9.9"]'

delete_suite Subnet subnets sub-wait
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Subnet
metadata: {name: sub-detach}
spec:
  networkRef: {name: net-later}
  onDelete: detach
  resource: {cidr: 10.20.8.0/24}
EOF
until_ok 60 avail subnet sub-detach
detach_suite Subnet subnets subnet sub-detach

reject "Subnet: an invalid spec (ip_version 5) is rejected by the API server, naming the field" 'ip_version' <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Subnet
metadata: {name: sub-bad}
spec:
  networkRef: {name: net-full}
  resource: {cidr: 10.20.7.0/24, ip_version: 5}
EOF

# ---- SecurityGroup --------------------------------------------------------------------------

# rules_are SG JQ: the group's rules, as [{direction, ethertype, protocol, min, max,
# prefix, group}] sorted, satisfy JQ.
rules_are() {
	os_has "/security-groups/$1" "[.security_group.security_group_rules[] | {d: .direction, e: .ethertype,
		p: .protocol, min: .port_range_min, max: .port_range_max, ip: .remote_ip_prefix,
		g: .remote_group_id}] | sort_by(.d, .p, .min) | $2"
}

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: SecurityGroup
metadata: {name: sg-wait}
spec:
  resource:
    rules:
      - {direction: ingress, protocol: tcp, port_range_min: 80, port_range_max: 80, remoteGroupRef: {name: sg-later}}
EOF
eventually 60 "SecurityGroup: waits for the SecurityGroup a rule names (Waiting, naming it)" op -- \
	cond securitygroup sg-wait Waiting "SecurityGroup sg-later"
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: SecurityGroup
metadata: {name: sg-later}
spec: {}
EOF
eventually 60 "SecurityGroup: proceeds once it appears (the rule's remote group is its ID)" op -- \
	eval "avail securitygroup sg-wait && rules_are \$(sid securitygroup sg-wait) \"length == 1 and .[0].g == \\\"\$(sid securitygroup sg-later)\\\"\""

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: SecurityGroup
metadata: {name: sg-min}
spec: {}
EOF
eventually 60 "SecurityGroup: minimal create: Available" op -- avail securitygroup sg-min
SG_MIN=$(sid securitygroup sg-min)
check "SecurityGroup: without rules in spec, Neutron's own (two egress rules) are left" -- \
	rules_are "$SG_MIN" 'length == 2 and all(.[]; .d == "egress")'

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: SecurityGroup
metadata: {name: sg-full}
spec:
  resource:
    name: sg-full-os
    description: ssh, icmp and 8080 from the group in, IPv4 out
    tags: [web]
    rules:
      - {direction: ingress, protocol: tcp, port_range_min: 22, port_range_max: 22, remote_ip_prefix: 0.0.0.0/0}
      - {direction: ingress, protocol: icmp, remote_ip_prefix: 0.0.0.0/0}
      - {direction: ingress, protocol: tcp, port_range_min: 8080, port_range_max: 8080, remoteGroupRef: {name: sg-full}}
      - {direction: egress}
EOF
eventually 60 "SecurityGroup: full create: Available" op -- avail securitygroup sg-full
SG_FULL=$(sid securitygroup sg-full)
check "SecurityGroup: exactly the spec's rules (Neutron's IPv6 egress gone, the self reference resolved)" -- \
	rules_are "$SG_FULL" "length == 4 and
		any(.[]; .d == \"ingress\" and .p == \"tcp\" and .min == 22 and .ip == \"0.0.0.0/0\") and
		any(.[]; .d == \"ingress\" and .p == \"icmp\") and
		any(.[]; .d == \"ingress\" and .min == 8080 and .g == \"$SG_FULL\") and
		any(.[]; .d == \"egress\" and .e == \"IPv4\" and .p == null and .ip == null) and
		all(.[]; .e == \"IPv4\")"
check "SecurityGroup: name, description and tags in OpenStack" -- \
	os_has "/security-groups/$SG_FULL" '.security_group | .name == "sg-full-os" and
		(.description | startswith("ssh, icmp")) and (.tags | index("web") != null)'

set_spec securitygroup "$NS" sg-full '{"resource": {"description": "changed", "rules": [
	{"direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"},
	{"direction": "ingress", "protocol": "udp", "port_range_min": 53, "port_range_max": 53, "remote_ip_prefix": "10.0.0.0/8"},
	{"direction": "ingress", "protocol": "tcp", "port_range_min": 8080, "port_range_max": 8080, "remoteGroupRef": {"name": "sg-full"}},
	{"direction": "egress"}]}}'
eventually 60 "SecurityGroup: update: a rule removed (icmp), one added (udp 53), description changed" op -- \
	eval "rules_are $SG_FULL 'length == 4 and (map(.p) | index(\"icmp\") == null) and
		any(.[]; .p == \"udp\" and .min == 53 and .ip == \"10.0.0.0/8\")' &&
		os_has /security-groups/$SG_FULL '.security_group.description == \"changed\"'"

mk_sg() { echo "{\"name\": \"$1\"}"; }
import_suite SecurityGroup security-groups security_group name mk_sg

raw_del "/security-groups/$SG_FULL"
touch_cr securitygroup sg-full
eventually 60 "SecurityGroup: deleted behind our back: recreated with its rules (Event Drift)" op -- \
	eval "new_id securitygroup sg-full $SG_FULL && event SecurityGroup sg-full Drift &&
		rules_are \$(sid securitygroup sg-full) 'length == 4'"
SG_FULL=$(sid securitygroup sg-full)
SSH_RULE=$(os_get "/security-groups/$SG_FULL" | jq -r '.security_group.security_group_rules[] | select(.port_range_min == 22) | .id')
raw_del "/security-group-rules/$SSH_RULE"
osapi "$PTOKEN" POST /security-group-rules "{\"security_group_rule\": {\"security_group_id\": \"$SG_FULL\",
	\"direction\": \"ingress\", \"protocol\": \"tcp\", \"port_range_min\": 9999, \"port_range_max\": 9999}}" >"$OUT"
touch_cr securitygroup sg-full
eventually 60 "SecurityGroup: rules edited behind our back (one deleted, one added): corrected" op -- \
	rules_are "$SG_FULL" 'length == 4 and any(.[]; .min == 22) and all(.[]; .min != 9999)'

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: SecurityGroup
metadata: {name: sg-detach}
spec: {onDelete: detach}
EOF
until_ok 60 avail securitygroup sg-detach
detach_suite SecurityGroup security-groups security_group sg-detach

reject "SecurityGroup: an invalid spec (direction sideways) is rejected by the API server, naming the field" 'direction' <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: SecurityGroup
metadata: {name: sg-bad}
spec: {resource: {rules: [{direction: sideways}]}}
EOF

# ---- Port -----------------------------------------------------------------------------------

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Port
metadata: {name: port-wait}
spec:
  networkRef: {name: net-full}
  securityGroupRefs: [{name: sg-plater}]
  resource: {port_security_enabled: true}
EOF
eventually 60 "Port: waits for a missing SecurityGroup (Waiting, naming it)" op -- \
	cond port port-wait Waiting "SecurityGroup sg-plater"
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: SecurityGroup
metadata: {name: sg-plater}
spec: {}
EOF
eventually 60 "Port: proceeds once it appears (in that group in OpenStack)" op -- \
	eval "avail port port-wait && os_has /ports/\$(sid port port-wait) \".port.security_groups == [\\\"\$(sid securitygroup sg-plater)\\\"]\""

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Port
metadata: {name: port-min}
spec:
  networkRef: {name: net-full}
EOF
eventually 60 "Port: minimal create: Available (an unbound port is DOWN)" op -- \
	eval "avail port port-min && has port $NS port-min '.status.resource.status == \"DOWN\"'"
PORT_MIN=$(sid port port-min)
check "Port: in OpenStack on the network, in the project" -- \
	os_has "/ports/$PORT_MIN" ".port.network_id == \"$NET_FULL\" and .port.project_id == \"$PID\""

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Port
metadata: {name: port-full}
spec:
  networkRef: {name: net-full}
  securityGroupRefs: [{name: sg-full}]
  resource:
    name: port-full-os
    description: the full port
    admin_state_up: false
    port_security_enabled: true
    mac_address: "fa:16:3e:12:34:56"
    fixed_ips: [{subnetRef: {name: sub-full}, ip_address: 10.20.2.50}]
    tags: [db]
EOF
eventually 60 "Port: full create: Available" op -- avail port port-full
PORT_FULL=$(sid port port-full)
check "Port: full create: every field in OpenStack" -- \
	os_has "/ports/$PORT_FULL" ".port | .name == \"port-full-os\" and .description == \"the full port\"
		and .admin_state_up == false and .mac_address == \"fa:16:3e:12:34:56\"
		and .fixed_ips == [{\"subnet_id\": \"$SUB_FULL\", \"ip_address\": \"10.20.2.50\"}]
		and .security_groups == [\"$SG_FULL\"] and (.tags | index(\"db\") != null)"
k patch port port-full -n "$NS" --type merge -p '{"spec": {"securityGroupRefs": [{"name": "sg-full"}, {"name": "sg-min"}],
	"resource": {"description": "changed", "admin_state_up": true,
	"fixed_ips": [{"subnetRef": {"name": "sub-full"}, "ip_address": "10.20.2.51"}]}}}' >/dev/null
eventually 60 "Port: update in place (groups, address, admin state, description)" op -- \
	os_has "/ports/$PORT_FULL" ".port | .description == \"changed\" and .admin_state_up == true
		and (.security_groups | sort) == ([\"$SG_FULL\", \"$SG_MIN\"] | sort)
		and .fixed_ips == [{\"subnet_id\": \"$SUB_FULL\", \"ip_address\": \"10.20.2.51\"}]"
check "Port: the same port (updated, not replaced)" -- id_is port port-full "$PORT_FULL"

set_spec port "$NS" port-full '{"resource": {"mac_address": "fa:16:3e:65:43:21"}}'
eventually 60 "Port: a change of mac_address: Progressing False, InvalidConfiguration naming it (still Available)" op -- \
	eval "cond port port-full InvalidConfiguration 'spec.resource.mac_address is immutable' Progressing && avail port port-full"
set_spec port "$NS" port-full '{"resource": {"mac_address": "fa:16:3e:12:34:56"}}'
eventually 60 "Port: the MAC address put back: Available again" op -- id_is port port-full "$PORT_FULL"

mk_port() { echo "{\"name\": \"$1\", \"network_id\": \"$RAWNET\"}"; }
import_suite Port ports port name mk_port

raw_del "/ports/$PORT_MIN"
touch_cr port port-min
eventually 60 "Port: deleted behind our back: recreated (new status.id, Event Drift)" op -- \
	eval "new_id port port-min $PORT_MIN && event Port port-min Drift"
raw_put "/ports/$PORT_FULL" "{\"port\": {\"description\": \"tampered\", \"security_groups\": [\"$SG_MIN\"]}}"
touch_cr port port-full
eventually 60 "Port: edited behind our back (description, groups): corrected" op -- \
	os_has "/ports/$PORT_FULL" ".port.description == \"changed\" and (.port.security_groups | length) == 2"

delete_suite Port ports port-min
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Port
metadata: {name: port-detach}
spec:
  networkRef: {name: net-full}
  onDelete: detach
EOF
until_ok 60 avail port port-detach
detach_suite Port ports port port-detach

reject "Port: an invalid spec (mac_address zz) is rejected by the API server, naming the field" 'mac_address' <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Port
metadata: {name: port-bad}
spec:
  networkRef: {name: net-full}
  resource: {mac_address: zz}
EOF

# ---- in use: a Network, its Subnet and a SecurityGroup while a Port is on them --------------

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net-busy}
spec: {}
---
apiVersion: kupenstack.io/v1alpha1
kind: Subnet
metadata: {name: sub-busy}
spec:
  networkRef: {name: net-busy}
  resource: {cidr: 10.21.0.0/24}
---
apiVersion: kupenstack.io/v1alpha1
kind: SecurityGroup
metadata: {name: sg-busy}
spec: {}
---
apiVersion: kupenstack.io/v1alpha1
kind: Port
metadata: {name: port-busy}
spec:
  networkRef: {name: net-busy}
  securityGroupRefs: [{name: sg-busy}]
  resource:
    fixed_ips: [{subnetRef: {name: sub-busy}}]
EOF
until_ok 90 avail port port-busy
BUSY_NET=$(sid network net-busy)
BUSY_SUB=$(sid subnet sub-busy)
BUSY_SG=$(sid securitygroup sg-busy)
del_cr network net-busy
eventually 60 "Network: deletion blocked while a Subnet object refers to it (Waiting, naming it)" op -- \
	cond network net-busy Waiting "still in use: Subnet sub-busy"
del_cr subnet sub-busy
del_cr securitygroup sg-busy
eventually 60 "Network: deletion blocked while a Port is on it (Waiting, in use)" op -- \
	cond network net-busy Waiting "still in use.*ports"
eventually 60 "Subnet: deletion blocked while a Port has an address on it (Waiting, in use)" op -- \
	cond subnet sub-busy Waiting "still in use"
eventually 60 "SecurityGroup: deletion blocked while a Port is in it (Waiting, in use)" op -- \
	cond securitygroup sg-busy Waiting "still in use"
check "... and all three are still in OpenStack" -- \
	eval "os_has /networks/$BUSY_NET .network.id && os_has /subnets/$BUSY_SUB .subnet.id &&
		os_has /security-groups/$BUSY_SG .security_group.id"
del_cr port port-busy
eventually 90 "once the Port is deleted, the three go, from OpenStack too" op -- \
	eval "cr_gone port port-busy && cr_gone network net-busy && cr_gone subnet sub-busy &&
		cr_gone securitygroup sg-busy && os_gone /networks/$BUSY_NET && os_gone /subnets/$BUSY_SUB &&
		os_gone /security-groups/$BUSY_SG"

# ---- Router -------------------------------------------------------------------------------

# interfaces_are ROUTER SUBNET...: the router's interfaces are on exactly these subnets.
interfaces_are() {
	local r=$1 want got
	shift
	want=$(printf '%s\n' "$@" | sort | paste -sd, -)
	got=$(os_get "/ports?device_id=$r" | jq -r '[.ports[] | select(.device_owner == "network:router_interface")
		| .fixed_ips[].subnet_id] | sort | join(",")')
	[ "$got" = "$want" ] || { echo "router $r has interfaces on [$got], not [$want]"; return 1; }
}

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Router
metadata: {name: router-wait}
spec:
  externalGateway: {networkRef: {name: ext-net}}
EOF
eventually 60 "Router: waits for the Network of its gateway (Waiting, naming it)" op -- \
	cond router router-wait Waiting "Network ext-net"
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: ext-net}
spec:
  import: {filter: {name: public}}
  managementPolicy: unmanaged
EOF
eventually 60 "Router: proceeds once it appears (an unmanaged import of public): gateway on public" op -- \
	eval "avail router router-wait && os_has /routers/\$(sid router router-wait) '.router.external_gateway_info.network_id == \"$PUBLIC\"'"

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Router
metadata: {name: router-min}
spec: {}
EOF
eventually 60 "Router: minimal create: Available, without a gateway" op -- \
	eval "avail router router-min && os_has /routers/\$(sid router router-min) '.router.external_gateway_info == null and .router.project_id == \"$PID\"'"
ROUTER_MIN=$(sid router router-min)

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Router
metadata: {name: router-full}
spec:
  resource: {name: router-full-os, description: the full router, tags: [edge]}
  externalGateway: {network: {name: public}}
  interfaces: [{subnetRef: {name: sub-min}}]
EOF
eventually 60 "Router: full create: Available" op -- avail router router-full
ROUTER_FULL=$(sid router router-full)
check "Router: full create: gateway on public (looked up by name), interface on the Subnet, fields" -- \
	eval "os_has /routers/$ROUTER_FULL '.router | .external_gateway_info.network_id == \"$PUBLIC\" and
		.name == \"router-full-os\" and .description == \"the full router\" and (.tags | index(\"edge\") != null)' &&
		interfaces_are $ROUTER_FULL $SUB_MIN"

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net-r}
spec: {}
---
apiVersion: kupenstack.io/v1alpha1
kind: Subnet
metadata: {name: sub-r2}
spec:
  networkRef: {name: net-r}
  resource: {cidr: 10.22.2.0/24}
---
apiVersion: kupenstack.io/v1alpha1
kind: Subnet
metadata: {name: sub-r3}
spec:
  networkRef: {name: net-r}
  resource: {cidr: 10.22.3.0/24}
EOF
until_ok 60 avail subnet sub-r3
set_spec router "$NS" router-min '{"resource": {"description": "changed"},
	"interfaces": [{"subnetRef": {"name": "sub-r2"}}, {"subnetRef": {"name": "sub-r3"}}]}'
eventually 60 "Router: update: interfaces added to match spec, description changed" op -- \
	eval "interfaces_are $ROUTER_MIN $(sid subnet sub-r2) $(sid subnet sub-r3) &&
		os_has /routers/$ROUTER_MIN '.router.description == \"changed\"'"
set_spec router "$NS" router-min '{"interfaces": [{"subnetRef": {"name": "sub-r3"}}]}'
eventually 60 "Router: update: an interface removed to match spec" op -- \
	interfaces_are "$ROUTER_MIN" "$(sid subnet sub-r3)"
eventually 30 "Router: status lists the interfaces" op -- \
	has router "$NS" router-min ".status.resource.interfaces | map(.subnet_id) == [\"$(sid subnet sub-r3)\"]"

mk_router() { echo "{\"name\": \"$1\"}"; }
import_suite Router routers router name mk_router

ROUTER_WAIT=$(sid router router-wait)
raw_del "/routers/$ROUTER_WAIT"
touch_cr router router-wait
eventually 60 "Router: deleted behind our back: recreated with its gateway (Event Drift)" op -- \
	eval "new_id router router-wait $ROUTER_WAIT && event Router router-wait Drift &&
		os_has /routers/\$(sid router router-wait) '.router.external_gateway_info.network_id == \"$PUBLIC\"'"
raw_put "/routers/$ROUTER_FULL/remove_router_interface" "{\"subnet_id\": \"$SUB_MIN\"}"
raw_put "/routers/$ROUTER_FULL" '{"router": {"description": "tampered"}}'
touch_cr router router-full
eventually 60 "Router: edited behind our back (interface removed, description): corrected" op -- \
	eval "interfaces_are $ROUTER_FULL $SUB_MIN && os_has /routers/$ROUTER_FULL '.router.description == \"the full router\"'"

R_PORT=$(os_get "/ports?device_id=$ROUTER_MIN" | jq -r '.ports[] | select(.device_owner == "network:router_interface") | .id')
delete_suite Router routers router-min
check "Router: its interface went with it" -- os_gone "/ports/$R_PORT"
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Router
metadata: {name: router-detach}
spec: {onDelete: detach}
EOF
until_ok 60 avail router router-detach
detach_suite Router routers router router-detach

reject "Router: an invalid spec (a gateway with both networkRef and network) is rejected by the API server" 'externalGateway' <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Router
metadata: {name: router-bad}
spec:
  externalGateway: {networkRef: {name: ext-net}, network: {name: public}}
EOF

# ---- FloatingIP ------------------------------------------------------------------------------

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: FloatingIP
metadata: {name: fip-wait}
spec:
  externalNetwork: {network: {name: public}}
  portRef: {name: port-fwait}
EOF
eventually 60 "FloatingIP: waits for its missing Port (Waiting, naming it)" op -- \
	cond floatingip fip-wait Waiting "Port port-fwait"
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Port
metadata: {name: port-fwait}
spec:
  networkRef: {name: net-full}
  resource: {fixed_ips: [{subnetRef: {name: sub-min}}]}
EOF
eventually 60 "FloatingIP: proceeds once it appears (forwarded to it in OpenStack)" op -- \
	eval "avail floatingip fip-wait && os_has /floatingips/\$(sid floatingip fip-wait) \".floatingip.port_id == \\\"\$(sid port port-fwait)\\\"\""

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: FloatingIP
metadata: {name: fip-min}
spec:
  externalNetwork: {network: {name: public}}
EOF
eventually 60 "FloatingIP: minimal create: Available" op -- avail floatingip fip-min
FIP_MIN=$(sid floatingip fip-min)
check "FloatingIP: on public, in the project, unassociated, tagged, its description naming the object" -- \
	os_has "/floatingips/$FIP_MIN" ".floatingip | .floating_network_id == \"$PUBLIC\" and .project_id == \"$PID\"
		and .port_id == null and (.tags | any(.[]; startswith(\"kupenstack-uid-\")))
		and (.description | contains(\"$NS/fip-min\"))"

# Crash safety without names: a floating IP made with the description the plugin gives one
# (naming the object and its UID) but never tagged is adopted, not doubled.
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: FloatingIP
metadata: {name: fip-crash}
spec:
  externalNetwork: {network: {name: public}}
  portRef: {name: port-crash}
EOF
until_ok 60 cond floatingip fip-crash Waiting "Port port-crash"
CRASH_DESC="kupenstack $NS/fip-crash kupenstack-uid-$(field floatingip "$NS" fip-crash .metadata.uid)"
CRASH_FIP=$(raw floatingips floatingip "{\"floating_network_id\": \"$PUBLIC\", \"description\": \"$CRASH_DESC\"}")
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Port
metadata: {name: port-crash}
spec:
  networkRef: {name: net-full}
  resource: {fixed_ips: [{subnetRef: {name: sub-min}}]}
EOF
eventually 60 "FloatingIP: crash safety: an untagged floating IP with the description it is made with is adopted" op -- \
	id_is floatingip fip-crash "$CRASH_FIP"
check "FloatingIP: crash safety: exactly one such floating IP in the project, now tagged and forwarded" -- \
	os_has "/floatingips?project_id=$PID" "[.floatingips[] | select(.description == \"$CRASH_DESC\")] |
		length == 1 and (.[0].tags | any(.[]; startswith(\"kupenstack-uid-\"))) and
		.[0].port_id == \"$(sid port port-crash)\""
del_cr floatingip fip-crash # it would keep the Router below in use
until_ok 60 cr_gone floatingip fip-crash

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Port
metadata: {name: port-f1}
spec:
  networkRef: {name: net-full}
  resource: {fixed_ips: [{subnetRef: {name: sub-min}}]}
---
apiVersion: kupenstack.io/v1alpha1
kind: Port
metadata: {name: port-f2}
spec:
  networkRef: {name: net-full}
  resource: {fixed_ips: [{subnetRef: {name: sub-min}}]}
---
apiVersion: kupenstack.io/v1alpha1
kind: FloatingIP
metadata: {name: fip-full}
spec:
  externalNetwork: {networkRef: {name: ext-net}}
  portRef: {name: port-f1}
  resource: {description: the full floating IP, tags: [front]}
EOF
eventually 60 "FloatingIP: full create: Available" op -- avail floatingip fip-full
FIP_FULL=$(sid floatingip fip-full)
check "FloatingIP: full create: on the Network object's network, forwarded to the Port, fields" -- \
	os_has "/floatingips/$FIP_FULL" ".floatingip | .floating_network_id == \"$PUBLIC\" and
		.port_id == \"$(sid port port-f1)\" and .description == \"the full floating IP\" and
		(.tags | index(\"front\") != null)"

set_spec floatingip "$NS" fip-min '{"portRef": {"name": "port-f2"}, "resource": {"description": "changed"}}'
eventually 60 "FloatingIP: update: associated with a Port, description changed" op -- \
	os_has "/floatingips/$FIP_MIN" ".floatingip.port_id == \"$(sid port port-f2)\" and .floatingip.description == \"changed\""
set_spec floatingip "$NS" fip-min '{"portRef": null}'
eventually 60 "FloatingIP: update: portRef removed: disassociated" op -- \
	os_has "/floatingips/$FIP_MIN" '.floatingip.port_id == null'
check "FloatingIP: the same address (updated, not replaced)" -- id_is floatingip fip-min "$FIP_MIN"

mk_fip() { echo "{\"floating_network_id\": \"$PUBLIC\", \"description\": \"$1\"}"; }
import_suite FloatingIP floatingips floatingip description mk_fip

raw_del "/floatingips/$FIP_MIN"
touch_cr floatingip fip-min
eventually 60 "FloatingIP: deleted behind our back: recreated (new status.id, Event Drift)" op -- \
	eval "new_id floatingip fip-min $FIP_MIN && event FloatingIP fip-min Drift"
FIP_WAIT=$(sid floatingip fip-wait)
raw_put "/floatingips/$FIP_WAIT" '{"floatingip": {"port_id": null}}'
touch_cr floatingip fip-wait
eventually 60 "FloatingIP: disassociated behind our back: associated again" op -- \
	os_has "/floatingips/$FIP_WAIT" ".floatingip.port_id == \"$(sid port port-fwait)\""

PORT_FWAIT=$(sid port port-fwait)
del_cr port port-fwait
eventually 60 "Port: deletion blocked while a FloatingIP object points at it (Waiting, naming it)" op -- \
	cond port port-fwait Waiting "FloatingIP fip-wait"
check "Port: ... and it is still in OpenStack, still forwarded to" -- \
	os_has "/floatingips/$FIP_WAIT" ".floatingip.port_id == \"$PORT_FWAIT\""
delete_suite FloatingIP floatingips fip-wait
eventually 60 "Port: once the FloatingIP is deleted, the Port goes, from OpenStack too" op -- \
	eval "cr_gone port port-fwait && os_gone /ports/$PORT_FWAIT"

del_cr router router-full
eventually 60 "Router: deletion blocked while a floating IP is forwarded through it (Waiting, in use)" op -- \
	cond router router-full Waiting "still in use"
check "Router: ... and it is still in OpenStack with its interface" -- interfaces_are "$ROUTER_FULL" "$SUB_MIN"
delete_suite FloatingIP floatingips fip-full
eventually 60 "Router: once the floating IP is gone, the Router goes, from OpenStack too" op -- \
	eval "cr_gone router router-full && os_gone /routers/$ROUTER_FULL"

apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: FloatingIP
metadata: {name: fip-detach}
spec:
  externalNetwork: {network: {name: public}}
  onDelete: detach
EOF
until_ok 60 avail floatingip fip-detach
detach_suite FloatingIP floatingips floatingip fip-detach

reject "FloatingIP: an invalid spec (floating_ip_address 999.1.1.1) is rejected by the API server, naming the field" 'floating_ip_address' <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: FloatingIP
metadata: {name: fip-bad}
spec:
  externalNetwork: {network: {name: public}}
  resource: {floating_ip_address: 999.1.1.1}
EOF

# ---- drift found by the resync alone --------------------------------------------------------

# Each "behind our back" check above annotates the object after the change, which makes the
# host look at once. Here nothing nudges it: a host with a short resync (--resync) finds the
# change at its next full resync, as production does (every 300 s by default): the latency
# to expect is the resync period (+-10 %) plus one reconcile.
# synced PLUGIN RESOURCE: the host has run (at least) as many reconciles of PLUGIN as the
# namespace has RESOURCE objects, and none is waiting: its first look at each is done.
synced() {
	local m done n depth
	m=$(curl -sf --max-time 5 "http://127.0.0.1:${HPORT[op]}/metrics") || { echo "no /metrics"; return 1; }
	done=$(awk -v p="controller_runtime_reconcile_total{controller=\"$1\"," \
		'index($1, p) == 1 { s += $2 } END { print s + 0 }' <<<"$m")
	depth=$(awk -v s="workqueue_depth{name=\"$1\"}" '$1 == s { print $2 }' <<<"$m")
	n=$(k get "$2" -n "$NS" --no-headers 2>/dev/null | grep -c .)
	echo "$done reconciles of $1 for $n $2; queue depth '$depth'"
	[ "$done" -ge "$n" ] && [ "$depth" = 0 ]
}
RESYNC=15
apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net-drift}
spec:
  resource: {description: as spec says}
EOF
until_ok 60 avail network net-drift
ND=$(sid network net-drift)
stop_host op TERM
if ! start_host op "$PLUGINS" "$NS" --set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" --set cloud="$OS_CLOUD" \
	--resync "$RESYNC"; then
	echo "the host did not come up" >"$OUT"
	fail "the operator starts again, with --resync $RESYNC" op
	finish
fi
# Its first look at every object (which would see any change) done before the changes.
eventually 120 "resync: the restarted host has looked at every Network once" op -- synced network networks
raw_put "/networks/$ND" '{"network": {"description": "tampered"}}'
T_DRIFT=$SECONDS
eventually $((RESYNC * 4 + 60)) "Network: edited behind our back, no nudge: corrected at the next resync" op -- \
	os_has "/networks/$ND" '.network.description == "as spec says"' &&
	echo "# drift (an edit) corrected $((SECONDS - T_DRIFT)) s after it was made; resync $RESYNC s"
raw_del "/networks/$ND"
T_DRIFT=$SECONDS
eventually $((RESYNC * 4 + 60)) "Network: deleted behind our back, no nudge: made again at the next resync (Event Drift)" op -- \
	eval "new_id network net-drift $ND && event Network net-drift Drift" &&
	echo "# drift (a delete) repaired $((SECONDS - T_DRIFT)) s after it was made; resync $RESYNC s"

# ---- tenancy: deleting the namespace ----------------------------------------------------------

# leftovers: what of the project is still in Neutron (security groups are listed whole and
# filtered here: a Neutron admin listing them by project_id makes the project a default one).
leftovers() {
	local r n left=0
	for r in networks subnets ports routers floatingips; do
		n=$(os_get "/$r?project_id=$PID" | jq ".$r | length")
		[ "$n" = 0 ] || { echo "$n $r left in project $PID"; left=1; }
	done
	n=$(os_get "/security-groups?fields=id&fields=project_id" |
		jq --arg p "$PID" '[.security_groups[] | select(.project_id == $p)] | length')
	[ "$n" = 0 ] || { echo "$n security groups left in project $PID"; left=1; }
	return $left
}

# Something is left, and the queries that say so work (leftovers fails on a failed one too).
check "before the namespace goes, its project holds what its objects made" -- \
	eval "! leftovers && [ \"\$(os_get '/networks?project_id=$PID' | jq '.networks | length')\" -ge 1 ]"
k delete namespace "$NS" --wait=false >/dev/null
eventually 240 "deleting the namespace deletes its OpenStack resources, then the project, then the namespace" op -- \
	k_gone namespace "$NS"
check "nothing of the project is left in Neutron" -- leftovers
check "the Keystone project is gone" -- project_gone

finish
