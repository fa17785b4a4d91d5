#!/usr/bin/env bash
# bench/bench_leader.sh: leader election failover of two `kupenstack run --leader-elect
# --lease-duration 15` hosts (renew deadline 10 s, retry 2 s): the time from SIGTERM of
# the leader to the standby's first reconcile (the leader releases the Lease on its way
# out), and from SIGKILL of the leader to the standby's first reconcile (the Lease has
# to expire). The first reconcile is the plugin's "bench reconcile" debug line in the
# standby's log (bench/plugins/widget.lua); the signal time is taken here, on the same
# clock. The Lease is the host's fixed kupenstack-system/kupenstack: while a live
# holder has it, this prints why and measures nothing. BENCH_LEADER_TERM and
# BENCH_LEADER_KILL set the rounds (3 and 2).
# needs: kube
set -uo pipefail
cd "$(dirname "$0")/.."

KS=bin/kupenstack
LEASE_NS=kupenstack-system
LEASE=kupenstack
DURATION=15
TERM_ROUNDS=${BENCH_LEADER_TERM:-3}
KILL_ROUNDS=${BENCH_LEADER_KILL:-2}
NS=bench-leader-$$
WORK=$(mktemp -d /tmp/bench-leader.XXXXXX)
declare -A PID=() LOG=()
next=0
lease_was_there=

say() { printf '%s\n' "$*"; }
k() { kubectl --request-timeout=30s "$@"; }

if [ -z "${KUBECONFIG:-}" ] || [ ! -x "$KS" ]; then
	say "bench_leader: needs \$KUBECONFIG and $KS (make)"
	exit 2
fi

# The Lease is free unless a holder renewed it within its duration (plus a margin).
lease_busy() {
	local j holder renew dur age
	j=$(k -n "$LEASE_NS" get lease "$LEASE" -o json 2>/dev/null) || return 1
	lease_was_there=1
	holder=$(jq -r '.spec.holderIdentity // ""' <<<"$j")
	renew=$(jq -r '.spec.renewTime // ""' <<<"$j")
	dur=$(jq -r '.spec.leaseDurationSeconds // 15' <<<"$j")
	[ -n "$holder" ] && [ -n "$renew" ] || return 1
	age=$(($(date +%s) - $(date -d "$renew" +%s)))
	if [ "$age" -lt $((dur + 5)) ]; then
		say "bench_leader: skipped: Lease $LEASE_NS/$LEASE is held by $holder (renewed ${age} s ago)"
		return 0
	fi
	return 1
}

# start NAME: a host in the background, logging to LOG[NAME].
start() {
	LOG[$1]=$WORK/$1.log
	"$KS" run --plugins bench/plugins --namespace "$NS" --leader-elect \
		--lease-duration "$DURATION" --log-level debug >"${LOG[$1]}" 2>&1 </dev/null &
	PID[$1]=$!
	disown "$!" # no "Killed" notice from the shell for the SIGKILL rounds
}

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# gone PID SECS: wait until PID has exited.
gone() {
	local end=$((SECONDS + $2))
	while alive "$1" && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
	! alive "$1"
}

# first_reconcile NAME: the epoch time of NAME's first reconcile, or nothing.
first_reconcile() {
	local ts
	ts=$(grep -m1 'msg="bench reconcile"' "${LOG[$1]}" | sed -E 's/^ts=([^ ]+) .*/\1/')
	[ -n "$ts" ] && date -d "$ts" +%s.%N
}

# became NAME: the epoch time NAME logged "became leader", or nothing.
became() {
	local ts
	ts=$(grep -m1 'msg="became leader"' "${LOG[$1]}" | sed -E 's/^ts=([^ ]+) .*/\1/')
	[ -n "$ts" ] && date -d "$ts" +%s.%N
}

# wait_reconcile NAME SECS: until NAME reconciled; false if it did not in time.
wait_reconcile() {
	local end=$((SECONDS + $2))
	until first_reconcile "$1" >/dev/null; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.05
	done
}

cleanup() {
	local n
	for n in "${!PID[@]}"; do
		alive "${PID[$n]}" && kill -TERM "${PID[$n]}" 2>/dev/null
	done
	for n in "${!PID[@]}"; do
		gone "${PID[$n]}" 40 || kill -KILL "${PID[$n]}" 2>/dev/null
	done
	k delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1
	# A Lease we created and left released goes too; one that was there stays.
	if [ -z "$lease_was_there" ] &&
		[ -z "$(k -n "$LEASE_NS" get lease "$LEASE" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null)" ]; then
		k -n "$LEASE_NS" delete lease "$LEASE" --ignore-not-found >/dev/null 2>&1
	fi
	rm -rf "$WORK"
}

say "bench_leader: --lease-duration $DURATION, Lease $LEASE_NS/$LEASE, namespace $NS"
if lease_busy; then
	rm -rf "$WORK"
	exit 0
fi
trap cleanup EXIT
trap 'exit 130' INT TERM

k create namespace "$NS" >/dev/null || exit 1
for i in $(seq 1 20); do
	printf 'apiVersion: test.kupenstack.io/v1\nkind: Widget\nmetadata:\n  name: w-%02d\nspec:\n  size: %d\n---\n' "$i" "$i"
done | k apply -n "$NS" -f - >/dev/null || exit 1

# The first leader; it may have to wait out the expiry of a dead holder's Lease.
leader=h$next
next=$((next + 1))
start "$leader"
if ! wait_reconcile "$leader" $((DURATION * 3)); then
	say "bench_leader: the first host never reconciled"
	tail -n 5 "${LOG[$leader]}"
	exit 1
fi

# round SIGNAL: start a standby, let it see the Lease held, signal the leader, and
# print the time to the standby's first reconcile.
round() {
	local sig=$1 standby=h$next t0 t1 tb
	next=$((next + 1))
	start "$standby"
	sleep 6 # past 2 retry periods with jitter: the standby has read the Lease at least twice
	if first_reconcile "$standby" >/dev/null; then
		say "bench_leader: the standby reconciled while the other led: two leaders"
		return 1
	fi
	t0=$(date +%s.%N)
	kill -s "$sig" "${PID[$leader]}"
	if ! wait_reconcile "$standby" $((DURATION * 3)); then
		say "SIG$sig: the standby did not take over within $((DURATION * 3)) s"
		return 1
	fi
	t1=$(first_reconcile "$standby")
	tb=$(became "$standby")
	gone "${PID[$leader]}" 40
	printf '%-46s %8.3f s   (became leader at %.3f s)\n' \
		"SIG$sig of the leader -> standby's 1st reconcile" \
		"$(bc -l <<<"$t1 - $t0")" "$(bc -l <<<"${tb:-$t1} - $t0")"
	printf '%s\n' "$(bc -l <<<"$t1 - $t0")" >>"$WORK/$sig"
	unset "PID[$leader]"
	leader=$standby
}

for _ in $(seq 1 "$TERM_ROUNDS"); do round TERM || exit 1; done
for _ in $(seq 1 "$KILL_ROUNDS"); do round KILL || exit 1; done
for sig in TERM KILL; do
	[ -s "$WORK/$sig" ] || continue
	awk -v s="$sig" '{ t += $1; if ($1 > m) m = $1 } END {
		printf "%-46s %8.3f s   (max %.3f s, %d rounds)\n", "SIG" s ": mean", t / NR, m, NR }' \
		"$WORK/$sig"
done
