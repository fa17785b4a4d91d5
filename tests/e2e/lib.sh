# tests/e2e/lib.sh: what the end-to-end scripts share. Sourced, not run.
#
# The scripts drive bin/kupenstack and kubectl the way an operator would, against the
# real apiserver of $KUBECONFIG (admin; the hosts run as the operator's ServiceAccount). Each works in namespaces of its own
# (new_ns), starts hosts in the background (start_host), and at exit stops them, takes
# the finalizers off what they left behind, deletes its namespaces, and removes its
# temporary directory (kept, and named, when a check failed). Checks print TAP lines,
# `ok - NAME` or `not ok - NAME` and a few `#` lines of diagnosis; `finish` prints
# `N passed, N failed` and exits 1 when any failed. Conditions are polled with generous
# timeouts: nothing here asserts how fast something happens.
set -uo pipefail

if [ -z "${KUBECONFIG:-}" ]; then
	echo "${0##*/}: KUBECONFIG is not set (. /tmp/kube.env, or eval \"\$(tests/env/kube up)\")" >&2
	exit 2
fi

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E=$TOP/tests/e2e
KS=${KS_BIN:-$TOP/bin/kupenstack} # KS_BIN: another build to test
if [ ! -x "$KS" ]; then
	echo "${0##*/}: $KS is missing: run make" >&2
	exit 2
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kupenstack-e2e.XXXXXX")
OUT=$WORK/out
: >"$OUT"
passed=0
failed=0
NAMESPACES=()
declare -A HPID=() HLOG=() HPORT=() HRC=()

# kubectl with a discovery cache of our own (a cache made before a CRD would hide it).
k() { kubectl --cache-dir="$WORK/kcache" --request-timeout=30s "$@"; }

pass() {
	passed=$((passed + 1))
	printf 'ok - %s\n' "$1"
}

# fail NAME [HOST]: a failed check; $OUT (what the check saw) and the end of HOST's log
# are the diagnosis.
fail() {
	failed=$((failed + 1))
	printf 'not ok - %s\n' "$1"
	tail -n 12 "$OUT" | sed 's/^/#   /'
	if [ -n "${2:-}" ] && [ -n "${HLOG[$2]:-}" ]; then
		printf '#   -- the last lines of the log of host %s:\n' "$2"
		tail -n 6 "${HLOG[$2]}" | cut -c1-300 | sed 's/^/#   /'
	fi
}

# check NAME [HOST] -- CMD...: CMD succeeds (its output to $OUT).
check() {
	local name=$1 host=
	shift
	[ "$1" != -- ] && { host=$1; shift; }
	shift
	if "$@" >"$OUT" 2>&1 </dev/null; then pass "$name"; else fail "$name" "$host"; fi
}

# expect_out WANT CMD...: CMD's output (stdout and stderr) matches the regex WANT.
expect_out() {
	local want=$1 out
	shift
	out=$("$@" 2>&1)
	echo "$out"
	grep -Eq -- "$want" <<<"$out"
}
expect_fail() { ! "$@"; }

# eventually SECS NAME [HOST] -- CMD...: CMD succeeds within SECS seconds.
eventually() {
	local secs=$1 name=$2 host="" end
	shift 2
	[ "$1" != -- ] && { host=$1; shift; }
	shift
	end=$((SECONDS + secs))
	while :; do
		poll_start
		if "$@" >"$OUT" 2>&1 </dev/null; then
			pass "$name"
			return 0
		fi
		[ "$SECONDS" -ge "$end" ] && break
		poll_pause
	done
	echo "(still not so after $secs s)" >>"$OUT"
	fail "$name" "$host"
	return 1
}

# until_ok SECS CMD...: wait, quietly, until CMD succeeds; false if SECS pass first.
until_ok() {
	local end=$((SECONDS + $1))
	shift
	while poll_start && ! "$@" >/dev/null 2>&1 </dev/null; do
		[ "$SECONDS" -ge "$end" ] && return 1
		poll_pause
	done
}

# poll_start, poll_pause: between two tries of a poll, pause as long as the try took (at
# least 0.3 s, at most 3 s). A try by kubectl takes a tenth of a second; one by the
# `openstack` CLI a second or more of CPU, and polling with it back to back would take one
# of CI's two cores from the OpenStack under test.
poll_start() { POLL_T0=${EPOCHREALTIME//[!0-9]/}; }
poll_pause() {
	local us=$((${EPOCHREALTIME//[!0-9]/} - POLL_T0))
	((us < 300000)) && us=300000
	((us > 3000000)) && us=3000000
	sleep "$((us / 1000000)).$(printf '%06d' $((us % 1000000)))"
}

finish() {
	printf '%d passed, %d failed\n' "$passed" "$failed"
	[ "$failed" -eq 0 ]
	exit $?
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# new_ns NAME [bare]: a fresh namespace, deleted at exit, where the test plugins may use
# ConfigMaps (rbac-test-kinds.yaml); bare: without that, only deploy/rbac.yaml's rights.
new_ns() {
	k delete namespace "$1" --ignore-not-found --wait=true >/dev/null 2>&1
	k create namespace "$1" >/dev/null || { echo "cannot create namespace $1" >&2; exit 3; }
	NAMESPACES+=("$1")
	[ "${2:-}" = bare ] && return 0
	k create rolebinding kupenstack-e2e-test-configmaps -n "$1" \
		--clusterrole=kupenstack-e2e-test-configmaps \
		--serviceaccount=kupenstack-system:kupenstack >/dev/null ||
		{ echo "cannot bind the test plugins' rights in $1" >&2; exit 3; }
}

# The operator's identity: hosts run as the ServiceAccount kupenstack-system/kupenstack with
# only the rights of deploy/rbac.yaml (re-applied here, so the cluster has this tree's), so
# that a missing right fails a test and an excess one can be shown. KS_RESTRICTED_KUBECONFIG
# comes from `tests/env/kube up` (or is found in KS_KUBE_DIR). Besides rbac.yaml, the test
# kinds (test.kupenstack.io: Widget, Gadget) get the rights rbac.yaml gives kupenstack.io,
# as an operator adding a kind would grant them (tests/e2e/rbac-test-kinds.yaml), and
# --plugins-configmaps NS binds kupenstack-plugin-reader in NS, as deploy/rbac.yaml does in
# kupenstack-system. HOST_AS_ADMIN=1 runs a host as cluster admin instead: a script that
# sets it says why.
if [ -z "${KS_RESTRICTED_KUBECONFIG:-}" ] && [ -n "${KS_KUBE_DIR:-}" ] &&
	[ -r "$KS_KUBE_DIR/restricted.kubeconfig" ]; then
	KS_RESTRICTED_KUBECONFIG=$KS_KUBE_DIR/restricted.kubeconfig
fi
if [ -z "${KS_RESTRICTED_KUBECONFIG:-}" ]; then
	echo "${0##*/}: KS_RESTRICTED_KUBECONFIG is not set (eval \"\$(tests/env/kube up)\")" >&2
	exit 2
fi
if ! kubectl apply -f "$TOP/deploy/namespace.yaml" -f "$TOP/deploy/serviceaccount.yaml" \
	-f "$TOP/deploy/rbac.yaml" -f "$E2E/rbac-test-kinds.yaml" >"$OUT" 2>&1; then
	echo "${0##*/}: cannot apply deploy/rbac.yaml:" >&2
	cat "$OUT" >&2
	exit 2
fi
OPERATOR_SA=system:serviceaccount:kupenstack-system:kupenstack

# grant_plugin_configmaps NS: the operator may read the ConfigMaps of NS (plugins).
grant_plugin_configmaps() {
	k create rolebinding kupenstack-plugin-reader -n "$1" --clusterrole=kupenstack-plugin-reader \
		--serviceaccount=kupenstack-system:kupenstack >/dev/null 2>&1 ||
		k get rolebinding kupenstack-plugin-reader -n "$1" >/dev/null
}

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# start_host NAME PLUGINS_DIR NAMESPACE [ARG...]: `kupenstack run` in the background
# (NAMESPACE - : every namespace), as the operator's ServiceAccount (see above; a
# --kubeconfig in ARG wins), serving /metrics on a free port (HPORT[NAME]), logging to
# HLOG[NAME]. Returns once /healthz answers (false if the host died or 30 s passed). Not in
# a subshell: the host must be this shell's child, so that `wait` gives its exit status.
start_host() {
	local name=$1 dir=$2 ns=$3 port a prev= kc=$KS_RESTRICTED_KUBECONFIG
	shift 3
	port=$(free_port)
	HLOG[$name]=$WORK/$name.log
	HPORT[$name]=$port
	for a in "$@"; do
		[ "$prev" = --plugins-configmaps ] && grant_plugin_configmaps "$a"
		prev=$a
	done
	[ "${HOST_AS_ADMIN:-}" = 1 ] && kc=$KUBECONFIG
	[ "$ns" = - ] || set -- --namespace "$ns" "$@"
	"$KS" run --kubeconfig "$kc" --plugins "$dir" --metrics-addr "127.0.0.1:$port" "$@" \
		>"${HLOG[$name]}" 2>&1 </dev/null &
	HPID[$name]=$!
	until_ok 30 host_answers "$name"
}

host_answers() {
	alive "${HPID[$1]}" && curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:${HPORT[$1]}/healthz"
}

# stop_host NAME [SIGNAL]: signal the host (TERM) and wait up to 40 s for it to exit
# (then KILL it); its exit status in HRC[NAME], 124 when it had to be killed. A stopped
# (SIGSTOP) host is continued, so that it gets the signal.
stop_host() {
	local name=$1 sig=${2:-TERM} pid=${HPID[$1]}
	kill -s "$sig" "$pid" 2>/dev/null
	kill -CONT "$pid" 2>/dev/null
	wait_exit "$name" 40
}

# wait_exit NAME SECS: wait for the host to exit by itself; HRC[NAME] as above.
wait_exit() {
	local name=$1 pid=${HPID[$1]} end=$((SECONDS + $2))
	while alive "$pid" && [ "$SECONDS" -lt "$end" ]; do
		sleep 0.2
	done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		HRC[$name]=124
	else
		wait "$pid" 2>/dev/null
		# shellcheck disable=SC2034 # read by the scripts
		HRC[$name]=$?
	fi
	HPID[$name]=
}

# metric HOST SERIES: the value of one exact series (`name{labels}` as exported), or
# nothing.
metric() {
	curl -sf --max-time 5 "http://127.0.0.1:${HPORT[$1]}/metrics" | awk -v s="$2" '$1 == s { print $2 }'
}

# logged HOST PATTERN: how many lines of HOST's log match PATTERN (extended regex).
logged() {
	grep -Ec -- "$2" "${HLOG[$1]}"
}

# in_log HOST PATTERN: HOST's log has a line matching PATTERN (shown in $OUT).
in_log() {
	if grep -E -- "$2" "${HLOG[$1]}"; then return 0; fi
	echo "no line of the log of $1 matches /$2/"
	return 1
}

# obj_json KIND NS NAME: the object as JSON.
obj_json() { k get "$1" "$3" -n "$2" -o json; }

# has KIND NS NAME JQ: the object satisfies the jq expression JQ (it and the object's
# metadata and status are shown in $OUT otherwise).
has() {
	local j
	j=$(obj_json "$1" "$2" "$3") || return 1
	if jq -e "$4" >/dev/null <<<"$j"; then return 0; fi
	echo "$1 $2/$3 fails: $4"
	jq -c '{generation: .metadata.generation, finalizers: .metadata.finalizers,
		deletionTimestamp: .metadata.deletionTimestamp, spec: .spec, status: .status}' <<<"$j"
	return 1
}

# field KIND NS NAME JQ: print the jq expression's value (raw).
field() { obj_json "$1" "$2" "$3" | jq -r "$4"; }

# cond_of KIND NS NAME TYPE: the condition TYPE as compact JSON.
cond_of() {
	field "$1" "$2" "$3" ".status.conditions[]? | select(.type == \"$4\") | tojson"
}

# widget NS NAME SIZE COLOR [BLOB]: create or update a Widget.
widget() {
	k apply -n "$1" -f - >/dev/null <<EOF
apiVersion: test.kupenstack.io/v1
kind: Widget
metadata:
  name: $2
spec:
  size: $3
  color: "$4"${5:+
  blob: "$5"}
EOF
}

# set_spec KIND NS NAME JSON: merge JSON into the object's spec.
set_spec() {
	k patch "$1" "$3" -n "$2" --type merge -p "{\"spec\": $4}" >/dev/null
}

# gen_caught_up KIND NS NAME: status.observedGeneration == metadata.generation.
gen_caught_up() {
	has "$1" "$2" "$3" '.status.observedGeneration == .metadata.generation'
}

# install_gadget_crd: the second test kind (tests/e2e/gadget-crd.yaml), left installed
# as tests/kube leaves Widget.
install_gadget_crd() {
	k apply -f "$E2E/gadget-crd.yaml" >/dev/null &&
		k wait --for condition=established --timeout=60s crd/gadgets.test.kupenstack.io >/dev/null &&
		until_ok 30 k get gadgets -A
}

# ---- the objects of the script's namespace $NS (the resource scripts) ------------------
# The resource scripts (compute, neutron, crash, image) share these; each uses the script's
# $NS and the helpers above.

# k_gone ARGS...: `kubectl get ARGS` says NotFound (not any other failure).
k_gone() {
	local out
	if out=$(k get "$@" 2>&1); then
		echo "still there: kubectl get $*"
		return 1
	fi
	grep -q '(NotFound)' <<<"$out" && return 0
	echo "kubectl get $*: $out"
	return 1
}

sid() { field "$1" "$NS" "$2" '.status.id // empty'; }

uid_of() { field "$1" "$NS" "$2" '.metadata.uid'; }

# avail KIND NAME: Available is True and status.id is set.
avail() {
	has "$1" "$NS" "$2" '.status.id != null and
		any(.status.conditions[]?; .type == "Available" and .status == "True")'
}

# id_is KIND NAME ID: the object is available with status.id ID.
id_is() { avail "$1" "$2" && [ "$(sid "$1" "$2")" = "$3" ] || { echo "status.id is not $3"; return 1; }; }

# new_id KIND NAME OLD: the object is available with a status.id other than OLD.
new_id() {
	# one read: an Available seen in one read and a new ID in the next can be the old
	# server's Available and the new server's ID (written as it was being built)
	has "$1" "$NS" "$2" ".status.id != null and .status.id != \"$3\" and
		any(.status.conditions[]?; .type == \"Available\" and .status == \"True\")"
}

cr_gone() { k_gone "$1" "$2" -n "$NS"; }

del_cr() { k delete "$1" "$2" -n "$NS" --wait=false >/dev/null; }

# touch_cr KIND NAME: an annotation change, which makes the host reconcile the object.
touch_cr() { k annotate "$1" "$2" -n "$NS" "e2e.kupenstack.io/touch=$(date +%s%N)" --overwrite >/dev/null; }

# apply: the YAML on stdin into $NS (its output in $WORK/apply.out).
apply() { k apply -n "$NS" -f - >"$WORK/apply.out" 2>&1 || { cat "$WORK/apply.out" >&2; return 1; }; }

project_of() {
	PID=$(k get namespace "$NS" -o json | jq -r '.metadata.annotations["kupenstack.io/project-id"] // empty')
	[ -n "$PID" ]
}

# project_gone: Keystone says there is no such project (not any other failure).
project_gone() {
	local out
	if out=$(openstack project show "$PID" 2>&1); then
		echo "project $PID still exists"
		return 1
	fi
	grep -Eqi "no project with a name or id of '?$PID'? exists|could not find project|404" <<<"$out" && return 0
	echo "openstack project show $PID: $out"
	return 1
}


# stop_hosts: stop every host this script started. A script's own cleanup that deletes
# what a host keeps (the admission webhook configurations) calls it first, or the host
# writes them again before it is stopped and they outlive the script.
stop_hosts() {
	local name
	for name in "${!HPID[@]}"; do
		[ -n "${HPID[$name]}" ] && stop_host "$name" TERM
	done
	return 0
}

cleanup() {
	local ns kind o
	stop_hosts
	for ns in "${NAMESPACES[@]}"; do
		for kind in widgets gadgets; do
			for o in $(k get "$kind" -n "$ns" -o name 2>/dev/null); do
				k patch "$o" -n "$ns" --type merge \
					-p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
			done
		done
		k delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1
	done
	if [ "$failed" -eq 0 ]; then
		rm -rf "$WORK"
	else
		echo "# logs kept in $WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
