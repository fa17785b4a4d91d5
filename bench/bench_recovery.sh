#!/usr/bin/env bash
# bench/bench_recovery.sh: self-healing (issue 15), three figures side by side:
#
# 1. Latency: N Instances (default 100, each on a Network, the default recoveryPolicy) are
#    broken with the openstack CLI, 20 failures of each kind (`server set --state error`,
#    `server stop`, `server delete`), each on an Instance of its own; the seconds from the
#    openstack command (started) to the Instance's Event RecoveryStarted (detected) and to
#    Available=True again with status.recovery.count one up (recovered), p50 and p99.
#    Two hosts, one after the other, on the same Instances:
#      polling        no message bus, the Instance plugin's poll_interval at its default
#                     (60 s: one list of the namespace's servers per interval, all its
#                     Instances looked at on the same multiple of the interval);
#      notifications  Nova's versioned notifications (--amqp-url-file, KS_OS_AMQP_URL) and
#                     poll_interval 0 (no poll: looks only at the resync), so that nothing
#                     else explains a detection.
#    Polling: BENCH_RECOVERY_PER_POLL failures (default 10, the kinds in turn) per poll
#    interval, at times spread evenly over it (one in each tenth, at a random moment in
#    it), so that the wait for the next poll is sampled over the whole interval and a poll
#    finds about 10 broken servers, not 60. Notifications: rounds of
#    BENCH_RECOVERY_ROUND (default 5) failures, 1 s apart, the next round when they are
#    all recovered. Watched with `kubectl get -w` on the Instances and on the Events,
#    each line stamped when it arrives (bench/recovery_latency.py).
# 2. The cost of watching: the host's kupenstack_http_client_requests_total (every
#    OpenStack request: Nova, Neutron, Glance, Keystone tokens) counted over an idle window
#    of BENCH_RECOVERY_IDLE s (default 180: three polls), with the N Instances Available
#    and nothing broken, per Instance and scaled to an hour; each host started afresh and
#    measured once its first reconcile of everything is done, so the window holds no
#    resync (every 300 s +-10 %, the same for both); what that first reconcile cost is
#    printed beside, as the price of one resync.
# 3. InstanceSet 0 -> 50 replicas until all Available, against the same 50 servers made
#    through the Nova API: `BENCH_SET=1 bench/bench_instances.sh 50` (BENCH_RECOVERY_SET=0
#    skips it), its figures printed as they come, and the ratio (aim <= 1.1).
#
# The machine's load average is printed with the figures. No pass/fail, but a failure
# that was not recovered within BENCH_RECOVERY_DEADLINE s (default 600), or an openstack
# command that failed, stops the bench with exit 1 and says which: no percentile is
# printed from an incomplete set. About 35 minutes on the 2-core test machine (the full-size
# run of 2026-12-08: 35, the InstanceSet part 8 of them).
# Smaller: BENCH_RECOVERY_N, BENCH_RECOVERY_FAILURES (per kind, both sides; polling
# alone: BENCH_RECOVERY_POLL_FAILURES); N must be at least 3 x the failures per kind.
# Needs KUBECONFIG (admin, the CRDs applied), OS_CLIENT_CONFIG_FILE (OS_CLOUD, default
# kupenstack-admin: an admin; flavor id 1) and KS_OS_AMQP_URL (tests/env/openstack up
# prints it); skipped, saying so, without them. BENCH_KEEP=1 keeps the work directory.
# needs: kube
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
N=${BENCH_RECOVERY_N:-100}
F=${BENCH_RECOVERY_FAILURES:-20}
FP=${BENCH_RECOVERY_POLL_FAILURES:-$F}
ROUND=${BENCH_RECOVERY_ROUND:-5}
PER_POLL=${BENCH_RECOVERY_PER_POLL:-10}
IDLE=${BENCH_RECOVERY_IDLE:-180}
DEADLINE=${BENCH_RECOVERY_DEADLINE:-600}
SET_N=${BENCH_RECOVERY_SET:-50}
TOP=$PWD
KS=$TOP/bin/kupenstack
LAT=$TOP/bench/recovery_latency.py
# The Instance plugin's default poll_interval, read from the plugin.
POLL=$(sed -n 's/.*poll_interval = { type = "number", default = \([0-9]*\).*/\1/p' plugins/instance.lua)
POLL=${POLL:-60}

skip() { echo "bench_recovery: $*; skipped"; exit 0; }
[ -z "${KUBECONFIG:-}" ] || [ -z "${OS_CLIENT_CONFIG_FILE:-}" ] &&
	skip "needs KUBECONFIG and OS_CLIENT_CONFIG_FILE (. /tmp/os.env)"
[ -n "${KS_OS_AMQP_URL:-}" ] || skip "needs KS_OS_AMQP_URL (tests/env/openstack up prints it)"
export OS_CLOUD=${OS_CLOUD:-kupenstack-admin}
openstack token issue -f value -c id >/dev/null 2>&1 || skip "OpenStack ($OS_CLOUD) does not answer"
[ -x "$KS" ] || { echo "bench_recovery: $KS is missing: run make" >&2; exit 2; }
if [ "$N" -lt $((3 * F)) ] || [ "$N" -lt $((3 * FP)) ]; then
	echo "bench_recovery: $N Instances are too few for $F and $FP failures of each of 3 kinds" >&2
	exit 2
fi

NS=bench-recovery-$$
WORK=$(mktemp -d /tmp/kupenstack-bench-recovery.XXXXXX)
NOVA=(--os-compute-api-version 2.79)
HOST_PID='' HTTP_PID='' PORT='' PID='' STAMPS=()

k() { kubectl --cache-dir="$WORK/kcache" --request-timeout=30s "$@"; }
say() { echo "bench_recovery: $*" >&2; }
now() { echo "$EPOCHREALTIME"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

die() {
	say "$*"
	echo "bench_recovery: FAILED: $*"
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

# ks_calls: the sum of the host's kupenstack_http_client_requests_total series; dies if
# /metrics does not answer (three tries), rather than count 0.
ks_calls() {
	local m i
	for i in 1 2 3; do
		m=$(curl -sf --max-time 20 "http://127.0.0.1:$PORT/metrics") && break
		[ "$i" = 3 ] && die "the host's /metrics does not answer"
		sleep 1
	done
	awk '$1 ~ /^kupenstack_http_client_requests_total[{]/ { s += $2 } END { print s + 0 }' <<<"$m"
}

# start_host NAME [ARGS...]: a host on the plugins of $WORK/plugins-NAME, its log host.log.
start_host() {
	local dir=$WORK/plugins-$1
	shift
	PORT=$(free_port)
	"$KS" run --plugins "$dir" --namespace "$NS" --metrics-addr "127.0.0.1:$PORT" \
		--set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" --set cloud="$OS_CLOUD" "$@" \
		>>"$WORK/host.log" 2>&1 </dev/null &
	HOST_PID=$!
	until_ok 60 curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" || die "the host did not get ready"
}

stop_host() {
	[ -n "$HOST_PID" ] && kill "$HOST_PID" 2>/dev/null && wait "$HOST_PID" 2>/dev/null
	HOST_PID=''
}

stop_stamps() {
	local p
	for p in "${STAMPS[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	STAMPS=()
}

# At exit: the namespace deleted while a host runs (its finalizers need it), then the
# host stopped and the work directory removed.
cleanup() {
	local o
	stop_stamps
	if k get namespace "$NS" >/dev/null 2>&1; then
		[ -n "$HOST_PID" ] || start_host poll >/dev/null 2>&1
		k delete namespace "$NS" --wait=false >/dev/null 2>&1
		if ! until_ok 600 eval "! k get namespace $NS"; then
			say "namespace $NS did not go: finalizers taken off; project $PID may be left"
			for o in $(k get openstack -n "$NS" -o name 2>/dev/null); do
				k patch "$o" -n "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
			done
			k patch namespace "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
		fi
	fi
	stop_host
	[ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null && wait "$HTTP_PID" 2>/dev/null
	if [ -n "${BENCH_KEEP:-}" ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

n_available() {
	k get instances -n "$NS" -o json |
		jq '[.items[] | select(any(.status.conditions[]?; .type == "Available" and .status == "True"))] | length'
}
all_available() { [ "$(n_available)" = "$N" ]; }

# settle: after a host's start, until all N are Available and, once it made its first
# calls, it made none for 12 s (its first reconcile of everything done); at most 300 s.
settle() {
	local a b n=0 end=$((SECONDS + 300))
	until_ok 300 all_available || die "not all $N Instances Available after the host's start ($(n_available))"
	a=$(ks_calls)
	while [ "$SECONDS" -lt "$end" ]; do
		sleep 6
		b=$(ks_calls)
		if [ "$a" = "$b" ] && [ "$b" -gt 0 ]; then
			n=$((n + 1))
			[ "$n" = 2 ] && return 0
		else
			n=0
		fi
		a=$b
	done
	die "the host did not settle in 300 s"
}

# ---- setup -------------------------------------------------------------------------------

mkdir -p "$WORK/www" "$WORK/plugins-poll" "$WORK/plugins-bus"
head -c 4096 /dev/urandom >"$WORK/www/disk.raw"
HTTP_PORT=$(free_port)
python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$WORK/www" >"$WORK/http.log" 2>&1 &
HTTP_PID=$!
URL=http://127.0.0.1:$HTTP_PORT/disk.raw
until_ok 20 curl -sf -o /dev/null "$URL" || die "the image data is not served"
for p in project network subnet flavor image instance; do
	cp "plugins/$p.lua" "$WORK/plugins-poll/"
	cp "plugins/$p.lua" "$WORK/plugins-bus/"
done
# The image's data is served on loopback, which the Image plugin refuses unless allowed.
for d in poll bus; do
	printf 'allow_source_networks: "127.0.0.0/8"\nsource_method: stream\n' >"$WORK/plugins-$d/image.config.yaml"
done
echo 'poll_interval: 0' >"$WORK/plugins-bus/instance.config.yaml"
printf '%s\n' "$KS_OS_AMQP_URL" >"$WORK/amqp.url"

say "setup: $N Instances in namespace $NS (load $(load))"
k create namespace "$NS" >/dev/null || die "cannot create namespace $NS"
k label namespace "$NS" kupenstack.io/project=true >/dev/null
start_host poll
project_of() {
	PID=$(k get namespace "$NS" -o json | jq -r '.metadata.annotations["kupenstack.io/project-id"] // empty')
	[ -n "$PID" ]
}
until_ok 60 project_of || die "namespace $NS got no project"
project_of
q=$((N < 100 ? 100 : N))
openstack quota set --instances $((2 * q)) --cores $((4 * q)) --ram $((4096 * q)) --ports $((5 * q)) \
	"$PID" || die "cannot raise the quotas of project $PID"
{
	cat <<EOF
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
  resource: {cidr: 10.70.0.0/22, ip_version: 4}
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
	for ((i = 1; i <= N; i++)); do
		printf -- '---\napiVersion: kupenstack.io/v1alpha1\nkind: Instance\nmetadata: {name: vm-%03d}\n' "$i"
		printf 'spec:\n  imageRef: {name: base}\n  flavorRef: {name: tiny}\n'
		printf '  networks: [{networkRef: {name: net}}]\n'
	done
} | k apply -n "$NS" -f - >/dev/null || die "cannot create the objects"
available() { # available KIND NAME: its Available condition is True
	k get "$1" "$2" -n "$NS" -o json |
		jq -e 'any(.status.conditions[]?; .type == "Available" and .status == "True")'
}
for o in subnet/net flavor/tiny image/base; do
	until_ok 180 available "${o%/*}" "${o#*/}" || die "setup: ${o/\// } is not Available"
done
t=$SECONDS
until_ok 1200 all_available || die "not all $N Instances Available after 1200 s ($(n_available))"
say "setup: $N Instances Available in $((SECONDS - t)) s"

# ---- the cost of watching ----------------------------------------------------------------

# idle NAME [ARGS...]: the host NAME started afresh (the one before stopped), settled;
# sets START_CALLS (its first reconcile of everything) and IDLE_CALLS (the idle window's).
idle() {
	local c0
	stop_host
	start_host "$@"
	settle
	START_CALLS=$(ks_calls)
	say "$1: settled after $START_CALLS calls; idle for $IDLE s (load $(load))"
	c0=$(ks_calls)
	sleep "$IDLE"
	IDLE_CALLS=$(($(ks_calls) - c0))
	say "$1: $IDLE_CALLS calls in the idle window of $IDLE s (load $(load))"
}
per_hour() { awk -v c="$1" -v n="$N" -v s="$2" 'BEGIN { printf "%.2f", c / n * 3600 / s }'; }
cost_row() { # cost_row LABEL
	printf '%-14s %9d %6d %11d %17s %13d %18s\n' "$1" "$N" "$IDLE" "$IDLE_CALLS" \
		"$(per_hour "$IDLE_CALLS" "$IDLE")" "$START_CALLS" "$(per_hour "$START_CALLS" 300)"
}

# ---- latency -----------------------------------------------------------------------------

KINDS=(error stop delete)
declare -A SID=() CNT=()

# watch SIDE: the Instances and their Events watched, each line stamped, from now on.
watch_side() {
	local s=$WORK/$1
	: >"$s.inj"
	python3 "$LAT" stamp "$s.inst" kubectl --request-timeout=0 get instances -n "$NS" -w -o \
		jsonpath='{.metadata.name}|{.status.conditions[?(@.type=="Available")].status}|{.status.recovery.count}{"\n"}' &
	STAMPS+=($!)
	python3 "$LAT" stamp "$s.ev" kubectl --request-timeout=0 get events -n "$NS" -w -o \
		jsonpath='{.involvedObject.kind}|{.involvedObject.name}|{.reason}{"\n"}' &
	STAMPS+=($!)
	# the server ID and the recovery count of every Instance, before any failure of the side
	while read -r name id count; do
		SID[$name]=$id CNT[$name]=$count
	done < <(k get instances -n "$NS" -o json |
		jq -r '.items[] | "\(.metadata.name) \(.status.id) \(.status.recovery.count // 0)"')
	until_ok 30 test -s "$s.inst" || die "the watch of the Instances says nothing"
	sleep 2 # the Events' watch listed what there is
}

# inject SIDE NAME KIND: the failure, with the openstack CLI, its times in SIDE.inj.
inject() {
	local id=${SID[$2]} t0 t1 rc
	t0=$(now)
	case "$3" in
	error) openstack "${NOVA[@]}" server set --state error "$id" ;;
	stop) openstack "${NOVA[@]}" server stop "$id" ;;
	delete) openstack "${NOVA[@]}" server delete "$id" ;;
	esac >>"$WORK/cli.log" 2>&1
	rc=$?
	t1=$(now)
	printf '%s %s %s %s %s %s\n' "$t0" "$t1" "$2" "$3" "${CNT[$2]}" "$rc" >>"$WORK/$1.inj"
}

# recovered SIDE: until every failure of SIDE so far is recovered; dies naming those that
# were not within DEADLINE s, or whose command failed.
recovered() {
	local s=$WORK/$1 n
	while :; do
		n=$(python3 "$LAT" pending "$s.inj" "$s.inst" "$s.ev" "$DEADLINE") ||
			die "$1: a failure was not recovered (above); no figures"
		[ "$n" = 0 ] && return 0
		sleep 1
	done
}

sleep_until() { # sleep_until UNIX_TIME
	local d
	d=$(awk -v a="$1" -v b="$(now)" 'BEGIN { d = a - b; print (d > 0 ? d : 0) }')
	sleep "$d"
}

# polling_side: 3 x FP failures from vm-001 on, PER_POLL per poll interval, the kinds in
# turn, at times spread over the interval (see the top).
polling_side() {
	local total=$((3 * FP)) j=0 i base pids=() at name
	watch_side polling
	base=$(awk -v t="$(now)" -v p="$POLL" 'BEGIN { printf "%d", (int(t / p) + 1) * p }')
	while [ "$j" -lt "$total" ]; do
		for ((i = 0; i < PER_POLL && j < total; i++, j++)); do
			at=$(awk -v b="$base" -v i="$i" -v r="$RANDOM" -v p="$POLL" -v k="$PER_POLL" \
				'BEGIN { printf "%.3f", b + (i + r / 32768) * p / k }')
			sleep_until "$at"
			printf -v name 'vm-%03d' $((j + 1))
			inject polling "$name" "${KINDS[j % 3]}" &
			pids+=($!)
		done
		base=$((base + POLL))
	done
	wait "${pids[@]}"
	recovered polling
	stop_stamps
	python3 "$LAT" report polling "$WORK/polling.inj" "$WORK/polling.inst" "$WORK/polling.ev" >&2
}

# notifications_side: 3 x F failures on the last 3 x F Instances, rounds of ROUND, 1 s
# apart, the kinds in turn; the next round once the last one is recovered.
notifications_side() {
	local total=$((3 * F)) j=0 i pids name
	watch_side notifications
	while [ "$j" -lt "$total" ]; do
		pids=()
		for ((i = 0; i < ROUND && j < total; i++, j++)); do
			printf -v name 'vm-%03d' $((N - total + j + 1))
			inject notifications "$name" "${KINDS[j % 3]}" &
			pids+=($!)
			sleep 1
		done
		wait "${pids[@]}"
		recovered notifications
	done
	stop_stamps
	python3 "$LAT" report notifications "$WORK/notifications.inj" "$WORK/notifications.inst" \
		"$WORK/notifications.ev" >&2
}

# ---- the runs ----------------------------------------------------------------------------

idle poll
COST_POLL=$(cost_row "polling")
say "polling: $((3 * FP)) failures (load $(load))"
t=$SECONDS
polling_side
say "polling: done in $((SECONDS - t)) s"
LOAD_POLL=$(load)

idle bus --amqp-url-file "$WORK/amqp.url"
COST_BUS=$(cost_row "notifications")
say "notifications: $((3 * F)) failures (load $(load))"
t=$SECONDS
notifications_side
say "notifications: done in $((SECONDS - t)) s"
LOAD_BUS=$(load)

echo "== self-healing: $N Instances (Nova's fake driver), the load average (1/5/15 min) with each side"
echo "# latency, s from the openstack command (started) to the Event RecoveryStarted (detect) and to"
echo "# Available=True again (recovered); polling: poll_interval $POLL s, no bus, $PER_POLL failures per interval"
echo "# at moments spread over it; notifications: the bus, poll_interval 0, rounds of $ROUND failures 1 s"
echo "# apart; each failure on an Instance of its own; p99 by nearest rank (of 20: the largest)"
printf '%-26s %-14s %3s %6s %10s %10s %10s %10s\n' failure side n cmd_s detect_p50 detect_p99 \
	recov_p50 recov_p99
{
	python3 "$LAT" report polling "$WORK/polling.inj" "$WORK/polling.inst" "$WORK/polling.ev" &&
		python3 "$LAT" report notifications "$WORK/notifications.inj" "$WORK/notifications.inst" \
			"$WORK/notifications.ev"
} >"$WORK/latency.out" || die "the latency report failed"
for kind in "server set --state error" "server stop" "server delete"; do
	grep -F "$kind " "$WORK/latency.out"
done
echo "# load: polling side $LOAD_POLL; notifications side $LOAD_BUS"
echo "# cost of watching, idle: OpenStack API calls (kupenstack_http_client_requests_total) over an"
echo "# idle window of $IDLE s, per Instance, scaled to an hour; beside it the host's first reconcile of"
echo "# everything after its start, which a resync (every 300 s +-10 %) repeats, scaled the same way"
printf '%-14s %9s %6s %11s %17s %13s %18s\n' watching instances idle_s idle_calls \
	calls/instance/h first_reconcile resync/instance/h
echo "$COST_POLL"
echo "$COST_BUS"

# ---- InstanceSet -------------------------------------------------------------------------

stop_stamps
if [ "$SET_N" != 0 ]; then
	say "deleting the $N Instances before the InstanceSet bench"
	k delete namespace "$NS" --wait=false >/dev/null 2>&1
	until_ok 900 eval "! k get namespace $NS" || die "namespace $NS did not go in 900 s"
	stop_host
	echo "== InstanceSet 0 -> $SET_N replicas against the same servers made directly: BENCH_SET=1 bench/bench_instances.sh $SET_N (load $(load))"
	BENCH_SET=1 bench/bench_instances.sh "$SET_N" | tee "$WORK/set.out"
	ratio=$(awk '$1 == "create" { print $5 }' "$WORK/set.out")
	[ -n "$ratio" ] || die "bench_instances.sh printed no create ratio"
	echo "InstanceSet ratio (create, set / direct): $ratio (aim <= 1.1); load $(load)"
fi
