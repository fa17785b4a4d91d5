#!/usr/bin/env bash
# bench/bench_instances.sh [N [K]]: N Instances (default 100), each with the port Nova
# makes on a Network, from `kubectl apply` to all Available, side by side with the same N
# servers created directly through the Nova API by bench/instances_direct.py at the same
# concurrency K (default 8, the Instance plugin's own): both times, their ratio (aim:
# <= 1.1) and the OpenStack API calls per Instance; then the same for deleting them.
#
# KupenStack side: `kupenstack run --concurrency K` (plugins project network subnet flavor
# image instance) serving a namespace of its own labelled kupenstack.io/project=true, a
# Network, a Subnet, the Flavor of id 1 imported, an Image served over loopback; the
# project's quotas raised (as admin) for N servers. One multi-document apply of N
# Instances; `kubectl get` every 0.5 s until all are Available. Calls: the host's
# kupenstack_http_client_requests_total (every request of every plugin, token requests
# included) before and after. Deleting: `kubectl delete instances --all` until none is
# left (their finalizers remove them once Nova no longer has the server).
# Direct side: a project of its own with the same quotas, network, subnet and image, K
# threads each POSTing a server and polling it every $BENCH_POLL s (default 2, the
# Instance plugin's poll) until ACTIVE, then DELETE and poll until 404.
# Before either is timed, each side creates and deletes one server (the first servers of
# a project are much slower to make, and a new token costs Keystone seconds), and the
# machine is let go quiet. KupenStack goes first, the direct side after
# (BENCH_ORDER=direct: the other way; BENCH_ORDER=both: a round each way, and the aim
# judged on their sums). KupenStack's side is seen Available through one kubectl watch.
# Printed too: the CPU each part of the machine used while each side created.
# BENCH_SET=1: KupenStack's side is one InstanceSet of N replicas (plugins/instanceset.lua)
# instead of N Instances: the set's own cost, against the same direct side.
#
# Needs KUBECONFIG (admin, the CRDs applied) and OS_CLIENT_CONFIG_FILE (OS_CLOUD, default
# kupenstack-admin: an admin; Nova with the fake driver, flavor id 1); skipped without
# them. Progress goes to stderr. BENCH_KEEP=1 keeps the work directory (the host's log).
# needs: kube
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
N=${1:-100}
K=${2:-8}
POLL=${BENCH_POLL:-2}
AIM=1.1
TOP=$PWD
KS=$TOP/bin/kupenstack

if [ -z "${KUBECONFIG:-}" ] || [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	echo "bench_instances: needs KUBECONFIG and OS_CLIENT_CONFIG_FILE (. /tmp/kube.env; . /tmp/os.env); skipped" >&2
	exit 0
fi
[ -x "$KS" ] || { echo "bench_instances: $KS is missing: run make" >&2; exit 2; }
export OS_CLOUD=${OS_CLOUD:-kupenstack-admin}
NS=bench-instances-$$
WORK=$(mktemp -d /tmp/kupenstack-bench-instances.XXXXXX)
HOST_PID='' HTTP_PID='' PORT='' PID='' DPROJ=''

k() { kubectl --cache-dir="$WORK/kcache" --request-timeout=30s "$@"; }
say() { echo "bench_instances: $*" >&2; }

die() {
	say "$*"
	[ -f "$WORK/host.log" ] && tail -n 5 "$WORK/host.log" | cut -c1-300 >&2
	exit 1
}

# until_ok SECS CMD...: wait until CMD succeeds; false if SECS pass first.
until_ok() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@" >/dev/null 2>&1 </dev/null; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.5
	done
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The direct side's project and what is in it.
direct_down() {
	local id
	for id in $(openstack server list --project "$DPROJ" -f value -c ID 2>/dev/null); do
		openstack server delete --wait "$id" >/dev/null 2>&1
	done
	openstack subnet delete "bench-direct-$$" >/dev/null 2>&1
	openstack network delete "bench-direct-$$" >/dev/null 2>&1
	openstack image delete "bench-direct-$$" >/dev/null 2>&1
	openstack project delete "$DPROJ" >/dev/null 2>&1
}

# At exit: the namespace deleted while the host still runs (its finalizers need it; if it
# does not go, they are taken off and the project may be left in OpenStack), then the
# host stopped, the direct side's project removed, the work directory removed.
cleanup() {
	local o
	if [ -n "$HOST_PID" ] && k get namespace "$NS" >/dev/null 2>&1; then
		k delete namespace "$NS" --wait=false >/dev/null 2>&1
		if ! until_ok 600 eval "! k get namespace $NS"; then
			say "namespace $NS did not go: finalizers taken off; project $PID may be left"
			for o in $(k get openstack -n "$NS" -o name 2>/dev/null); do
				k patch "$o" -n "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
			done
			k patch namespace "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
		fi
	fi
	[ -n "$HOST_PID" ] && kill "$HOST_PID" 2>/dev/null && wait "$HOST_PID" 2>/dev/null
	[ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null && wait "$HTTP_PID" 2>/dev/null
	[ -n "$DPROJ" ] && direct_down
	if [ -n "${BENCH_KEEP:-}" ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ks_calls: the sum of the host's kupenstack_http_client_requests_total series.
ks_calls() {
	curl -sf --max-time 10 "http://127.0.0.1:$PORT/metrics" |
		awk '$1 ~ /^kupenstack_http_client_requests_total[{]/ { s += $2 } END { print s + 0 }'
}

# available KIND NAME: the object's Available condition is True.
available() {
	k get "$1" "$2" -n "$NS" -o json |
		jq -e 'any(.status.conditions[]?; .type == "Available" and .status == "True")'
}

# n_available: how many Instances of the namespace are Available.
n_available() {
	k get instances -n "$NS" -o json |
		jq '[.items[] | select(any(.status.conditions[]?; .type == "Available" and .status == "True"))] | length'
}

# all_available: until all N Instances are Available, from one watch (a kubectl get every
# half second would cost the side it measures a good part of a core, a cost the direct
# side does not pay); false after 900 s.
all_available() {
	local name st rc n=0 end=$((SECONDS + 900))
	local -A up=()
	coproc WATCH { exec kubectl --request-timeout=0 get instances -n "$NS" -w \
		-o jsonpath='{.metadata.name} {.status.conditions[?(@.type=="Available")].status}{"\n"}' 2>/dev/null; }
	while [ "$n" -lt "$N" ] && [ "$SECONDS" -lt "$end" ]; do
		[ -n "${WATCH[0]:-}" ] || break # the watch ended
		read -r -t 5 name st <&"${WATCH[0]}"
		rc=$?
		[ "$rc" -gt 128 ] && continue # nothing new for 5 s
		[ "$rc" = 0 ] || break
		if [ "$st" = True ] && [ -z "${up[$name]:-}" ]; then
			up[$name]=1
			n=$((n + 1))
		elif [ "$st" != True ] && [ -n "${up[$name]:-}" ]; then
			unset "up[$name]"
			n=$((n - 1))
		fi
	done
	kill "$WATCH_PID" 2>/dev/null
	wait "$WATCH_PID" 2>/dev/null
	[ "$n" -ge "$N" ]
}

# quiet: wait (at most 180 s) until the machine is about idle, so that neither side is
# timed while the other's deletes are still being worked off (Nova, Neutron, PostgreSQL):
# two 2 s samples in a row under 15 % busy.
ticks() { awk '/^cpu /{ print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat; } # busy idle
quiet() {
	local t0=$SECONDS n=0 a b
	while [ "$n" -lt 2 ] && [ $((SECONDS - t0)) -lt 180 ]; do
		a=$(ticks)
		sleep 2
		b=$(ticks)
		if awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
			busy = y[1] - x[1]; idle = y[2] - x[2]; exit !(busy * 100 < 15 * (busy + idle)) }'; then
			n=$((n + 1))
		else
			n=0
		fi
	done
	say "quiet after $((SECONDS - t0)) s"
}

n_instances() { k get instances -n "$NS" -o json | jq '.items | length'; }

# quotas PROJECT: room for N servers of flavor 1 (and never less than for 100).
quotas() {
	local q=$((N < 100 ? 100 : N))
	openstack quota set --instances $((2 * q)) --cores $((4 * q)) --ram $((4096 * q)) \
		--ports $((5 * q)) "$1"
}

# ---- setup: the image data, the host, the namespace's project and objects ----------------

mkdir -p "$WORK/www" "$WORK/plugins"
head -c 4096 /dev/urandom >"$WORK/www/disk.raw"
HTTP_PORT=$(free_port)
python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$WORK/www" >"$WORK/http.log" 2>&1 &
HTTP_PID=$!
URL=http://127.0.0.1:$HTTP_PORT/disk.raw
until_ok 20 curl -sf -o /dev/null "$URL" || die "the image data is not served"

for p in project network subnet flavor image instance instanceset; do
	cp "plugins/$p.lua" "$WORK/plugins/"
done
# The image's data is served on loopback, which the Image plugin refuses unless allowed.
printf 'allow_source_networks: "127.0.0.0/8"\nsource_method: stream\n' >"$WORK/plugins/image.config.yaml"
k create namespace "$NS" >/dev/null || die "cannot create namespace $NS"
k label namespace "$NS" kupenstack.io/project=true >/dev/null
PORT=$(free_port)
"$KS" run --plugins "$WORK/plugins" --namespace "$NS" --metrics-addr "127.0.0.1:$PORT" \
	--set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" --set cloud="$OS_CLOUD" --concurrency "$K" \
	>"$WORK/host.log" 2>&1 </dev/null &
HOST_PID=$!
until_ok 30 curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" || die "the host did not come up"
project_of() {
	PID=$(k get namespace "$NS" -o json | jq -r '.metadata.annotations["kupenstack.io/project-id"] // empty')
	[ -n "$PID" ]
}
until_ok 60 project_of || die "namespace $NS got no project"
project_of
quotas "$PID" || die "cannot raise the quotas of project $PID"

k apply -n "$NS" -f - >/dev/null <<EOF || die "cannot create the setup objects"
apiVersion: kupenstack.io/v1alpha1
kind: Network
metadata: {name: net}
spec: {}
---
apiVersion: kupenstack.io/v1alpha1
kind: Subnet
metadata: {name: net}
spec:
  networkRef: {name: net}
  resource: {cidr: 10.68.0.0/22, ip_version: 4}
---
apiVersion: kupenstack.io/v1alpha1
kind: Flavor
metadata: {name: tiny}
spec:
  import: {id: "1"}
  managementPolicy: unmanaged
---
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: base}
spec:
  resource: {container_format: bare, disk_format: raw}
  source: {url: "$URL"}
EOF

# The direct side's project, meanwhile: the admin a member, the quotas, network, image.
say "setup: project $PID (namespace $NS) and the direct side's project"
DPROJ=$(openstack project create "kupenstack-bench-direct-$$" -f value -c id) || die "cannot create a project"
direct_up() {
	openstack role add --project "$DPROJ" --user "$(openstack token issue -f value -c user_id)" admin &&
		quotas "$DPROJ" &&
		DNET=$(openstack network create --project "$DPROJ" "bench-direct-$$" -f value -c id) &&
		openstack subnet create --project "$DPROJ" --network "$DNET" --subnet-range 10.69.0.0/22 \
			"bench-direct-$$" &&
		DIMG=$(openstack image create --project "$DPROJ" --disk-format raw --container-format bare \
			--file "$WORK/www/disk.raw" "bench-direct-$$" -f value -c id)
}
direct_up >/dev/null || die "cannot set up the direct side's project"

for o in subnet/net flavor/tiny image/base; do
	until_ok 120 available "${o%/*}" "${o#*/}" || die "setup: ${o/\// } is not Available"
done

# ---- KupenStack: N Instances -------------------------------------------------------------

for ((i = 1; i <= N; i++)); do
	printf -- '---\napiVersion: kupenstack.io/v1alpha1\nkind: Instance\nmetadata: {name: vm-%04d}\n' "$i"
	printf 'spec:\n  imageRef: {name: base}\n  flavorRef: {name: tiny}\n'
	printf '  networks: [{networkRef: {name: net}}]\n'
done >"$WORK/instances.yaml"
# BENCH_SET=1: the KupenStack side is one InstanceSet of N replicas instead (its members are
# the N Instances counted), deleted with the set (the garbage collector deletes them).
if [ "${BENCH_SET:-}" = 1 ]; then
	printf 'apiVersion: kupenstack.io/v1alpha1\nkind: InstanceSet\nmetadata: {name: vm}\nspec:\n'
	printf '  replicas: %d\n  selector: {matchLabels: {app: vm}}\n' "$N"
	printf '  template:\n    metadata: {labels: {app: vm}}\n'
	printf '    spec:\n      imageRef: {name: base}\n      flavorRef: {name: tiny}\n'
	printf '      networks: [{networkRef: {name: net}}]\n'
fi >"$WORK/set.yaml"
# What the KupenStack side applies; the warm-up makes one plain Instance either way.
APPLY=$WORK/instances.yaml
[ "${BENCH_SET:-}" = 1 ] && APPLY=$WORK/set.yaml

ks_side() {
	local c0 c1 c2 t0 t1 end left
	quiet
	say "kupenstack: $N Instances"
	c0=$(ks_calls)
	python3 bench/cpu_parts.py snap "$WORK/cpu.json"
	t0=$EPOCHREALTIME
	k apply -n "$NS" -f "$APPLY" >/dev/null || die "cannot apply the Instances"
	all_available || die "not all $N Instances Available after 900 s ($(n_available))"
	t1=$EPOCHREALTIME
	KS_CPU=$(python3 bench/cpu_parts.py diff "$WORK/cpu.json")
	c1=$(ks_calls)
	KS_CREATE=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	KS_CREATE_CALLS=$((c1 - c0))
	KS_TIMELINE=$(/usr/bin/python3 bench/instances_direct.py timeline "$PID" "$t0")
	curl -sf --max-time 10 "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.after-create"

	say "kupenstack: deleting them"
	t0=$EPOCHREALTIME
	if [ "${BENCH_SET:-}" = 1 ]; then
		k delete instanceset vm -n "$NS" --wait=false >/dev/null || die "cannot delete the InstanceSet"
	else
		k delete instances --all -n "$NS" --wait=false >/dev/null || die "cannot delete the Instances"
	fi
	end=$((SECONDS + 900))
	while [ "$(n_instances)" != 0 ]; do
		[ "$SECONDS" -lt "$end" ] || die "Instances left 900 s after their delete ($(n_instances))"
		sleep 0.5
	done
	t1=$EPOCHREALTIME
	c2=$(ks_calls)
	KS_DELETE=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	KS_DELETE_CALLS=$((c2 - c1))
	left=$(openstack server list --project "$PID" -f value -c ID | grep -c .)
	[ "$left" = 0 ] || die "$left servers of project $PID left after their Instances went"
}

# ---- direct: the same N servers ----------------------------------------------------------

direct_side() {
	quiet
	say "direct: $N servers"
	/usr/bin/python3 bench/instances_direct.py "$DPROJ" "$DIMG" "$DNET" "$N" "$K" "$POLL" \
		>"$WORK/direct.out" || die "the direct side failed: $(cat "$WORK/direct.out")"
	read -r _ D_CREATE D_CREATE_CALLS < <(grep '^create ' "$WORK/direct.out")
	read -r _ D_DELETE D_DELETE_CALLS < <(grep '^delete ' "$WORK/direct.out")
	D_TIMELINE=$(grep '^timeline ' "$WORK/direct.out")
	D_CPU=$(grep '^cpu ' "$WORK/direct.out")
}

# Warm-up, not timed: one server on each side, created and deleted (the direct side's
# by instances_direct.py itself, through the session it times). The first servers of a
# project are much slower to create than the ones after (Nova's POST took 7-15 s for the
# first eight, 1-2 s later), and a token new to Nova and Neutron is validated by each of
# 8 requests sent at once (5-10 s of Keystone): without it, a side pays for those.
warm_up() {
	say "warm-up: one server on KupenStack's side"
	sed -n '1,/networkRef/p' "$WORK/instances.yaml" | sed 's/name: vm-0001/name: warm-up/' |
		k apply -n "$NS" -f - >/dev/null || die "warm-up: cannot apply an Instance"
	until_ok 300 eval '[ "$(n_available)" = 1 ]' || die "warm-up: the Instance is not Available"
	k delete instance warm-up -n "$NS" --wait=false >/dev/null
	until_ok 300 eval '[ "$(n_instances)" = 0 ]' || die "warm-up: the Instance did not go"
}
warm_up

# ---- the figures -------------------------------------------------------------------------

row() {
	awk -v p="$1" -v n="$N" -v a="$2" -v b="$3" -v ca="$4" -v cb="$5" 'BEGIN {
		printf "%-7s %9d %13.2f %9.2f %6.2f %19.1f %23.1f\n", p, n, a, b, a / b, ca / n, cb / n }'
}
# Where the create time goes, from Nova's timestamps (s after the apply, or the first POST).
tl() {
	read -r _ cf cl lf ll b <<<"$2"
	printf '#   %-10s created %6s..%-6s launched %6s..%-6s build %6s  seen %s\n' "$1" "$cf" "$cl" "$lf" "$ll" "$b" "$3"
}
figures() { # figures ORDER: the figures of the round just run
	echo "== $N Instances (with their ports): kupenstack (--concurrency $K) vs the Nova API directly ($K threads, poll ${POLL} s); $1"
	printf '%-7s %9s %13s %9s %6s %19s %23s\n' phase instances kupenstack_s direct_s ratio \
		'calls/instance(ks)' 'calls/instance(direct)'
	row create "$KS_CREATE" "$D_CREATE" "$KS_CREATE_CALLS" "$D_CREATE_CALLS"
	row delete "$KS_DELETE" "$D_DELETE" "$KS_DELETE_CALLS" "$D_DELETE_CALLS"
	echo "# create timeline, s: servers created first..last, launched (ACTIVE) first..last, mean build (launched - created), all seen"
	tl kupenstack "$KS_TIMELINE" "$KS_CREATE"
	tl direct "$D_TIMELINE" "$D_CREATE"
	echo "# CPU seconds used while creating, by part of the machine (bench/cpu_parts.py; 2 cores: at most 2 per second)"
	printf '#   %-10s %s\n' kupenstack "$KS_CPU" direct "$D_CPU"
}

# BENCH_ORDER: ks (KupenStack first, the default), direct, or both: one round each way,
# the aim judged on the sums (a whole side is sometimes 20-40 % slower, Neutron using
# about twice its CPU per port, whichever side it falls on).
KS_SUM=0 D_SUM=0
rounds=${BENCH_ORDER:-${BENCH_DIRECT_FIRST:+direct}}
rounds=${rounds:-ks}
[ "$rounds" = both ] && rounds="ks direct"
for first in $rounds; do
	case "$first" in
	ks) ks_side; direct_side; figures "KupenStack first" ;;
	direct) direct_side; ks_side; figures "direct first" ;;
	*) die "BENCH_ORDER must be ks, direct or both" ;;
	esac
	KS_SUM=$(awk -v s="$KS_SUM" -v a="$KS_CREATE" 'BEGIN { print s + a }')
	D_SUM=$(awk -v s="$D_SUM" -v a="$D_CREATE" 'BEGIN { print s + a }')
done
awk -v a="$KS_SUM" -v b="$D_SUM" -v aim="$AIM" -v r="$rounds" 'BEGIN {
	printf "aim: create ratio <= %.1f (%s): %.2f: %s\n", aim, r == "ks direct" ? "both orders, their sums" : "one order",
		a / b, (a / b <= aim ? "met" : "MISSED") }'
