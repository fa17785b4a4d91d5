#!/usr/bin/env bash
# tests/env/kube.d/pods.sh: proves that pods run in the test world of tests/env/kube: the
# real kube-scheduler binds them, the stand-in kubelet (kube.d/fake-kubelet.py) reports
# their statuses, and the real Deployment, ReplicaSet, StatefulSet, DaemonSet, Job and node
# lifecycle controllers compute every workload status from what it reports. Starts its own
# cluster with two nodes (KS_KUBE_NODES=2), then: a Deployment of 3 with two init
# containers and a readinessProbe rolls out (bound by the scheduler, init containers one
# after the other), a rolling update replaces its pods, a deleted pod is removed and
# replaced, a Job completes, a failing Job reaches its backoff limit, a crash-looping pod
# shows CrashLoopBackOff with a growing restartCount, a never-ready pod stays unready, a
# StatefulSet of 2 becomes ready in order, a DaemonSet runs one pod per node, a node whose
# kubelet stops goes NotReady and comes back, and `down` leaves nothing behind.
# No timed assertions: bounded polling, then outcomes and order. Prints TAP-like lines and
# `N passed, N failed`; exits 1 on any failure. Needs root and about two minutes.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBE=$HERE/../kube
BASE=$(mktemp -d /tmp/kupenstack-pods.XXXXXX)
C=$BASE/c
OUT=$BASE/out
NS=podtest
W=${KS_WAIT:-120}
passed=0
failed=0

pass() { passed=$((passed + 1)); printf 'ok    %3d s  %s\n' "$SECONDS" "$1"; }
fail() {
	failed=$((failed + 1))
	printf 'FAIL  %s\n' "$1"
	sed 's/^/      | /' "$OUT" | tail -n 15
}

# check DESC CMD...: CMD succeeds.
check() {
	local desc=$1
	shift
	if "$@" </dev/null >"$OUT" 2>&1; then pass "$desc"; else fail "$desc"; fi
}

# eventually SECS DESC CMD...: CMD succeeds within SECS seconds (a bound on the polling,
# generous for a loaded machine; not an assertion on speed). $W, the usual bound, is
# KS_WAIT (default 120); a mutation run lowers it to fail sooner.
eventually() {
	local secs=$1 desc=$2 end
	shift 2
	end=$((SECONDS + secs))
	while :; do
		"$@" </dev/null >"$OUT" 2>&1 && { pass "$desc"; return 0; }
		[ "$SECONDS" -lt "$end" ] || break
		sleep 0.5
	done
	fail "$desc (not within $secs s)"
}

kube() { KS_KUBE_DIR=$C "$KUBE" "$@"; }
k() { kubectl --kubeconfig="$C/admin.kubeconfig" --cache-dir="$BASE/cache" -n "$NS" "$@"; }
is() { [ "$1" = "$2" ] || { echo "got '$1', want '$2'"; return 1; }; }
not() { ! "$@"; }
# js FILTER GET-ARGS...: `k get GET-ARGS -o json`, then jq -e FILTER on it.
js() {
	local filter=$1 json
	shift
	json=$(k get "$@" -o json) || return 1
	jq -ce "$filter" <<<"$json" && return 0
	jq -c '.status // .items' <<<"$json" | head -c 2000
	echo
	return 1
}

cleanup() {
	[ -z "${watch_pid:-}" ] || kill "$watch_pid" 2>/dev/null
	kube down 2>/dev/null
	rm -rf "$BASE"
}
trap cleanup EXIT


# --- up, with two nodes ------------------------------------------------------------------

nodes_refused() {
	local o
	o=$(KS_KUBE_NODES=0 kube up 2>&1) && return 1
	echo "$o"
	grep -q "KS_KUBE_NODES must be a number" <<<"$o" && [ ! -e "$C" ]
}
check "KS_KUBE_NODES=0 refused (naming it), nothing made" nodes_refused
KS_KUBE_NODES=2 kube up >"$BASE/env" 2>"$OUT"
rc=$?
[ "$rc" = 0 ] && pass "up with KS_KUBE_NODES=2" || fail "up with KS_KUBE_NODES=2"
[ "$rc" = 0 ] || { echo "$passed passed, $failed failed"; exit 1; }
grep -h 'up in' "$OUT"
check "status (the scheduler and the kubelet among what it checks)" kube status
check "the scheduler runs" test -s "$C/scheduler.pid"
check "the stand-in kubelet runs" test -s "$C/kubelet.pid"
ready_nodes() {
	k get nodes -o json | jq -r '[.items[] | select(any(.status.conditions[];
		.type == "Ready" and .status == "True")) | .metadata.name] | sort | join(" ")'
}
check "two Nodes registered and Ready" is "$(ready_nodes)" "node-1 node-2"
check "capacity: cpu, memory, pods" js '.status.capacity | .cpu == "8" and .pods == "110"
	and .memory == "32Gi"' node node-1
lease() {
	k -n kube-node-lease get lease "$1" -o jsonpath='{.spec.holderIdentity} {.spec.renewTime}'
}
l1=$(lease node-1)
check "each node holds its Lease in kube-node-lease" \
	bash -c '[[ $1 == "node-1 "* && $2 == "node-2 "* ]]' _ "$l1" "$(lease node-2)"
renewed() { not is "$(lease node-1)" "$l1"; }
eventually "$W" "the Lease is renewed" renewed
check "node-stop of an unknown node is refused" not kube node-stop node-9


# --- the workloads, all created at once ----------------------------------------------------

k create namespace "$NS" >/dev/null
# every status the web pods go through, to check the init containers' order
# (kubectl itself, not through k(): $! must be kubectl's pid, so that kill ends it)
kubectl --kubeconfig="$C/admin.kubeconfig" --cache-dir="$BASE/cache" -n "$NS" \
	get pods -l app=web -w -o json >"$BASE/web-watch.json" 2>/dev/null &
watch_pid=$!
cat >"$BASE/workloads.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers:
        - {name: init-a, image: busybox}
        - {name: init-b, image: busybox}
      containers:
        - name: web
          image: nginx:1
          readinessProbe: {httpGet: {path: /, port: 80}, initialDelaySeconds: 2}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: never}
spec:
  replicas: 1
  selector: {matchLabels: {app: never}}
  template:
    metadata:
      labels: {app: never}
      annotations: {kupenstack.io/fake-kubelet: never-ready}
    spec:
      containers: [{name: c, image: nginx:1}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: crash}
spec:
  replicas: 1
  selector: {matchLabels: {app: crash}}
  template:
    metadata:
      labels: {app: crash}
      annotations:
        kupenstack.io/fake-kubelet: crashloop
        kupenstack.io/fake-kubelet-message: "keystone: cannot reach the database"
        kupenstack.io/fake-kubelet-exit-code: "3"
    spec:
      containers: [{name: c, image: keystone:1}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: ok}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: bad}
spec:
  backoffLimit: 1
  template:
    metadata:
      annotations:
        kupenstack.io/fake-kubelet: fail
        kupenstack.io/fake-kubelet-message: "db-sync: schema migration failed"
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 5432, protocol: TCP}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
        - name: db
          image: postgres:13
          readinessProbe: {tcpSocket: {port: 5432}, initialDelaySeconds: 2}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: c, image: agent:1}]
YAML
check "create a Deployment, two Jobs, a StatefulSet, a DaemonSet" k apply -f "$BASE/workloads.yaml"


# --- Deployment web -------------------------------------------------------------------------

eventually "$W" "Deployment web: Available with 3 ready replicas" js '.status.readyReplicas == 3
	and any(.status.conditions[]; .type == "Available" and .status == "True")' deployment web
check "web: 3 pods, each on a node" js '[.items[].spec.nodeName | select(. == "node-1" or
	. == "node-2")] | length == 3' pods -l app=web
check "web: PodScheduled=True on each" js '[.items[] | select(any(.status.conditions[];
	.type == "PodScheduled" and .status == "True"))] | length == 3' pods -l app=web
# The binding is the scheduler's: its Scheduled event names the node the pod is on (the
# stand-in kubelet writes no events and never binds).
scheduled_by_scheduler() {
	local pods events
	pods=$(k get pods -l app=web -o json | jq -c '[.items[] | [.metadata.name, .spec.nodeName]]')
	events=$(k get events -o json | jq -c '[.items[] | select(.reason == "Scheduled" and
		(.reportingComponent == "default-scheduler" or .source.component == "default-scheduler"))
		| [.involvedObject.name, .message]]')
	jq -ne --argjson p "$pods" --argjson e "$events" '$p | map(. as [$n, $node] |
		any($e[]; .[0] == $n and (.[1] | endswith(" to " + $node)))) | all' ||
		{ echo "pods: $pods"; echo "events: $events"; return 1; }
}
check "web: each bound by default-scheduler (its Scheduled event names the pod's node)" \
	scheduled_by_scheduler
check "web: init containers exited 0, Completed" js '[.items[].status.initContainerStatuses[]
	| .state.terminated | select(.exitCode == 0 and .reason == "Completed")] | length == 6' \
	pods -l app=web
kill "$watch_pid" 2>/dev/null
watch_pid=
# Each status seen by the watch, as "A B C": the states of init-a, init-b and web.
seen_states() {
	jq -r '.status as $s | [($s.initContainerStatuses // [])[], ($s.containerStatuses // [])[]]
		| map(.state | keys[0] // "none") | join(" ")' "$BASE/web-watch.json" | sort -u
}
seen_states >"$BASE/states"
cp "$BASE/states" "$OUT"
check "web: init-b ran only after init-a had terminated (seen: init-a done, init-b running)" \
	grep -qx 'terminated running waiting' "$BASE/states"
check "web: no status with init-b started before init-a ended, or web before init-b" \
	not grep -Eqx '(waiting|running) (running|terminated) .*|[a-z]+ (waiting|running) running' \
	"$BASE/states"
running_unready() {
	jq -c 'select(.status.containerStatuses[0].state.running and
		(.status.containerStatuses[0].ready | not)) | .metadata.name' "$BASE/web-watch.json" |
		grep .
}
check "web: one status with web running and not yet Ready (the readinessProbe delay)" \
	running_unready
check "web: podIP and hostIP set" js '[.items[].status | select(.podIP and .hostIP)] |
	length == 3' pods -l app=web


# --- the others, once web is up ----------------------------------------------------------------

check "never: Running, its container started but not Ready" js '.items[0].status |
	.phase == "Running" and .containerStatuses[0].state.running and
	(.containerStatuses[0].ready | not)' pods -l app=never
check "never: the Deployment counts no ready replica" js '(.status.readyReplicas // 0) == 0
	and .status.unavailableReplicas == 1' deployment never

eventually "$W" "Job ok: succeeded=1, Complete" js '.status.succeeded == 1 and
	any(.status.conditions[]; .type == "Complete" and .status == "True")' job ok
check "Job ok: its pod Succeeded, exit code 0" js '.items[0].status | .phase == "Succeeded"
	and .containerStatuses[0].state.terminated.exitCode == 0' pods -l job-name=ok

eventually "$W" "Job bad: Failed, BackoffLimitExceeded" js 'any(.status.conditions[];
	.type == "Failed" and .status == "True" and .reason == "BackoffLimitExceeded")' job bad
check "Job bad: 2 failed pods (backoffLimit 1), none succeeded" js '.status.failed == 2 and
	(.status.succeeded // 0) == 0' job bad
check "Job bad: its pods Failed with exit code 1 and the message" js '[.items[].status |
	select(.phase == "Failed") | .containerStatuses[0].state.terminated |
	select(.exitCode == 1 and .message == "db-sync: schema migration failed")] | length == 2' \
	pods -l job-name=bad

crash_restarts() {
	k get pods -l app=crash -o jsonpath='{.items[0].status.containerStatuses[0].restartCount}'
}
eventually "$W" "crash: CrashLoopBackOff with a restart" js '.items[0].status.containerStatuses[0]
	| .state.waiting.reason == "CrashLoopBackOff" and .restartCount >= 1' pods -l app=crash
r1=$(crash_restarts)
grows() { local r; r=$(crash_restarts); echo "restartCount $r"; [ "$r" -gt "$r1" ]; }
eventually "$W" "crash: restartCount grows (was $r1)" grows
check "crash: lastState terminated with exit code 3 and the message" js '.items[0].status
	.containerStatuses[0].lastState.terminated | .exitCode == 3 and
	.message == "keystone: cannot reach the database"' pods -l app=crash
check "crash: the Deployment is not Available" js 'any(.status.conditions[];
	.type == "Available" and .status == "False")' deployment crash

eventually "$W" "StatefulSet db: 2 ready replicas" js '.status.readyReplicas == 2' statefulset db
# OrderedReady: db-1 is created only once db-0 is Running and Ready.
ordered() {
	local c1 r0
	c1=$(k get pod db-1 -o jsonpath='{.metadata.creationTimestamp}')
	r0=$(k get pod db-0 -o jsonpath='{.status.conditions[?(@.type=="Ready")].lastTransitionTime}')
	echo "db-1 created $c1, db-0 Ready since $r0"
	[ -n "$c1" ] && [ -n "$r0" ] && ! [[ $c1 < $r0 ]]
}
check "StatefulSet db: db-1 created no earlier than db-0 became Ready" ordered

eventually "$W" "DaemonSet agent: 2 scheduled, 2 ready" js '.status.desiredNumberScheduled == 2
	and .status.numberReady == 2' daemonset agent
check "DaemonSet agent: one pod on each node" js '[.items[].spec.nodeName] | sort ==
	["node-1", "node-2"]' pods -l app=agent

# The kubelet's identity is a node's: the Node authorizer and NodeRestriction let node-1
# write the status of its own pods only.
# node_patch NODE POD: the HTTP code of an empty status patch of POD as NODE.
node_patch() {
	(
		. "$C/ports.env"
		curl -sS -o /dev/null -w '%{http_code}' --cacert "$C/pki/ca.crt" \
			--cert "$C/pki/node-$1.crt" --key "$C/pki/node-$1.key" -X PATCH \
			-H 'Content-Type: application/merge-patch+json' -d '{"status":{}}' \
			"https://127.0.0.1:$APISERVER_PORT/api/v1/namespaces/$NS/pods/$2/status"
	)
}
agent_on() {
	k get pods -l app=agent -o jsonpath="{.items[?(@.spec.nodeName==\"$1\")].metadata.name}"
}
check "node-1's identity may patch the status of its own pod" \
	is "$(node_patch node-1 "$(agent_on node-1)")" 200
check "but not of a pod on node-2 (403)" is "$(node_patch node-1 "$(agent_on node-2)")" 403
check "the kubelet's status writes are its own (managedFields: kupenstack-fake-kubelet)" \
	js '[.items[].metadata.managedFields[] | select(.manager == "kupenstack-fake-kubelet"
	and (.fieldsV1 | has("f:status")))] | length == 2' pods -l app=agent --show-managed-fields


# --- rolling update and deletion of web ------------------------------------------------------

old=$(k get pods -l app=web -o jsonpath='{.items[*].metadata.uid}')
check "web: change its template (an env var)" k set env deployment/web VERSION=2
rolled() {
	js '.metadata.generation == .status.observedGeneration and .status.updatedReplicas == 3
		and .status.readyReplicas == 3 and .status.replicas == 3' deployment web || return 1
	local now u
	now=$(k get pods -l app=web -o jsonpath='{.items[*].metadata.uid}')
	for u in $old; do [[ " $now " != *" $u "* ]] || { echo "old pod $u still there"; return 1; }; done
}
eventually $((W * 3 / 2)) "web: rolled to 3 new ready pods, none of the old left" rolled
check "web: the new pods carry VERSION=2" js '[.items[].spec.containers[0].env[]? |
	select(.name == "VERSION" and .value == "2")] | length == 3' pods -l app=web
check "web: 2 ReplicaSets, the old one scaled to 0" js '[.items[].status.replicas] | sort ==
	[0, 3]' replicasets -l app=web

victim=$(k get pods -l app=web -o jsonpath='{.items[0].metadata.name}')
check "delete pod $victim (grace period 30 s)" k delete pod "$victim" --wait=false
gone() { local o; o=$(k get pod "$1" 2>&1); echo "$o"; grep -q NotFound <<<"$o"; }
eventually "$W" "the kubelet removed it (grace-period-0 delete)" gone "$victim"
eventually "$W" "web: replaced, 3 ready again" js '.status.readyReplicas == 3 and
	.status.replicas == 3' deployment web


# --- a node whose kubelet stops -------------------------------------------------------------

node_ready() { k get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'; }
check "node-stop node-2" kube node-stop node-2
nr() { is "$(node_ready node-2)" Unknown; }
eventually "$W" "node-2 goes NotReady (Ready=Unknown, the node lifecycle controller)" nr
check "node-2: tainted unreachable" js '[.spec.taints[]?.key] |
	index("node.kubernetes.io/unreachable")' node node-2
check "node-1 stays Ready" is "$(node_ready node-1)" True
l2=$(lease node-2)
eventually "$W" "DaemonSet agent: its pod on node-2 marked not ready (1 ready)" \
	js '.status.numberReady == 1' daemonset agent
check "node-2's Lease was not renewed meanwhile" is "$(lease node-2)" "$l2"
check "node-start node-2" kube node-start node-2
nready() { is "$(node_ready node-2)" True; }
eventually "$W" "node-2 Ready again" nready
eventually "$W" "node-2: the unreachable taint removed" js '[.spec.taints[]?.key] |
	index("node.kubernetes.io/unreachable") | not' node node-2
eventually "$W" "DaemonSet agent: 2 ready again" js '.status.numberReady == 2' daemonset agent
check "the kubelet logged no traceback" not grep -q Traceback "$C/kubelet.log"
check "the scheduler did not panic" not grep -Eiq 'panic|fatal error' "$C/scheduler.log"


# --- down --------------------------------------------------------------------------------------

pids=$(cat "$C"/*.pid)
kill -KILL "$(cat "$C/kubelet.pid")"
status_says() { local o; o=$(kube status 2>&1); echo "$o"; grep -q "kubelet is not running" <<<"$o"; }
check "status fails once the kubelet is dead, naming it" status_says
check "down" kube down
check "no process up started is left" not pgrep -f -- "$C/"
# alive PID...: one of the PIDs runs (a zombie, its parent not reaping it yet, does not)
alive() {
	local p s
	for p in "$@"; do
		s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		s=${s##*) }
		[ "${s%% *}" = Z ] || { echo "pid $p: $(tr '\0' ' ' <"/proc/$p/cmdline")"; return 0; }
	done
	return 1
}
# shellcheck disable=SC2086 # a list of pids
check "none of their pids alive" not alive $pids
check "the state dir is gone" not test -e "$C"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
