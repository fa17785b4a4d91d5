#!/usr/bin/env bash
# tests/env/kube.d/smoke.sh: proves that tests/env/kube gives the tests a real, working
# cluster. Starts two clusters at once (one with KS_KUBE_WATCH_CACHE=0), then checks on
# them: custom resources and their status subresource (the reflect2 1.0.2 fix), an empty
# string "" in a custom resource kept, not refused as null (the kube-openapi patch), garbage
# collection through ownerReferences, namespace deletion, the least-privilege RBAC of
# deploy/ through restricted.kubeconfig, token rotation through its tokenFile, a watch
# answered 410 Gone after an etcd compaction, apiserver stop/start/restart, and that
# `down` leaves no process and no file behind. Prints `N passed, N failed`; exits 1 on
# any failure. Needs root (tests/env/kube installs what it lacks) and about a minute.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBE=$HERE/../kube
BASE=$(mktemp -d /tmp/kupenstack-smoke.XXXXXX)
A=$BASE/a
B=$BASE/b
OUT=$BASE/out
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

# refused DESC PATTERN CMD...: CMD fails and says PATTERN (an extended regex).
refused() {
	local desc=$1 pattern=$2
	shift 2
	if "$@" </dev/null >"$OUT" 2>&1; then
		fail "$desc (it succeeded)"
	elif grep -Eq -- "$pattern" "$OUT"; then
		pass "$desc"
	else
		fail "$desc (no /$pattern/ in its output)"
	fi
}

# eventually SECS DESC CMD...: CMD succeeds within SECS seconds.
eventually() {
	local secs=$1 desc=$2 i
	shift 2
	for ((i = 0; i < secs * 2; i++)); do
		"$@" </dev/null >"$OUT" 2>&1 && { pass "$desc"; return 0; }
		sleep 0.5
	done
	fail "$desc (not within $secs s)"
}

kube() { local dir=$1; shift; KS_KUBE_DIR=$dir "$KUBE" "$@"; }
ka() { kubectl --kubeconfig="$A/admin.kubeconfig" --cache-dir="$BASE/cache-a" "$@"; }
kb() { kubectl --kubeconfig="$B/admin.kubeconfig" --cache-dir="$BASE/cache-b" "$@"; }
kr() { kubectl --kubeconfig="$A/restricted.kubeconfig" --cache-dir="$BASE/cache-r" "$@"; }
is() { [ "$1" = "$2" ] || { echo "got '$1', want '$2'"; return 1; }; }
not() { ! "$@"; }
# gone CMD...: CMD (a kubectl get) says NotFound
gone() {
	local out
	out=$("$@" 2>&1)
	echo "$out"
	grep -q NotFound <<<"$out"
}

cleanup() {
	kube "$A" down 2>/dev/null
	kube "$B" down 2>/dev/null
	rm -rf "$BASE"
}
trap cleanup EXIT


# --- two clusters at once -------------------------------------------------------------

kube "$A" up >"$BASE/a.env" 2>"$BASE/a.err" &
pid_a=$!
KS_KUBE_WATCH_CACHE=0 kube "$B" up >"$BASE/b.env" 2>"$BASE/b.err" &
pid_b=$!
wait "$pid_a"; rc_a=$?
wait "$pid_b"; rc_b=$?
cp "$BASE/a.err" "$OUT"; [ "$rc_a" = 0 ] && pass "up A" || fail "up A"
cp "$BASE/b.err" "$OUT"; [ "$rc_b" = 0 ] && pass "up B (KS_KUBE_WATCH_CACHE=0), at the same time" ||
	fail "up B"
[ "$rc_a" = 0 ] && [ "$rc_b" = 0 ] || { echo "$passed passed, $failed failed"; exit 1; }
grep -h 'up in' "$BASE/a.err" "$BASE/b.err"

check "up prints only export lines" not grep -v '^export ' "$BASE/a.env"
check "eval of up's output sets KUBECONFIG" \
	bash -c '. "$1" && [ "$KUBECONFIG" = "$2/admin.kubeconfig" ] && [ -r "$KS_RESTRICTED_KUBECONFIG" ]' \
	_ "$BASE/a.env" "$A"
. "$A/ports.env"
port_a=$APISERVER_PORT
. "$B/ports.env"
port_b=$APISERVER_PORT
check "the clusters have different ports" not is "$port_a" "$port_b"
check "status A" kube "$A" status
check "status B" kube "$B" status
refused "a second up into A is refused" "already up" kube "$A" up
check "A still up after the refused up" kube "$A" status


# --- the API on A -------------------------------------------------------------------------

check "readyz" is "$(ka get --raw /readyz)" ok
namespaces() { ka get namespaces -o name | sed 's|^namespace/||' | sort | tr '\n' ' '; }
check "namespaces" \
	is "$(namespaces)" "default kube-node-lease kube-public kube-system kupenstack-system "
check "the default ServiceAccount" ka -n default get serviceaccount default

cat >"$BASE/crd.yaml" <<'YAML'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.kupenstack.io
spec:
  group: test.kupenstack.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              x-kubernetes-preserve-unknown-fields: true
              properties: {colour: {type: string}}
            status:
              type: object
              x-kubernetes-preserve-unknown-fields: true
              properties: {phase: {type: string}, message: {type: string}}
YAML
check "create the Widget CRD" ka apply -f "$BASE/crd.yaml"
check "the CRD is established" \
	ka wait --for=condition=Established --timeout=30s crd/widgets.test.kupenstack.io
for i in 1 2 3; do
	printf 'apiVersion: test.kupenstack.io/v1\nkind: Widget\nmetadata: {name: w%s}\n' "$i"
	printf 'spec: {size: %s, colour: blue}\n---\n' "$i"
done >"$BASE/widgets.yaml"
eventually 30 "create 3 Widgets" ka -n default apply -f "$BASE/widgets.yaml"
check "list 3 Widgets" is "$(ka -n default get widgets -o name | wc -l)" 3
check "merge-patch a Widget's spec" ka -n default patch widget w1 --type=merge \
	-p '{"spec":{"size":10,"extra":{"a":[1,2]}}}'
check "the spec patch is stored" \
	is "$(ka -n default get widget w1 -o jsonpath='{.spec.size} {.spec.extra.a[1]} {.spec.colour}')" "10 2 blue"
check "patch its status subresource" ka -n default patch widget w1 --subresource=status \
	--type=merge -p '{"status":{"phase":"Ready","observedGeneration":2}}'
check "the status is stored" \
	is "$(ka -n default get widget w1 -o jsonpath='{.status.phase}')" Ready
check "patch a status through the main resource" \
	ka -n default patch widget w1 --type=merge -p '{"status":{"phase":"Bogus"}}'
check "which the status subresource ignores" \
	is "$(ka -n default get widget w1 -o jsonpath='{.status.phase}')" Ready
check "a status update bumps no generation" \
	is "$(ka -n default get widget w1 -o jsonpath='{.metadata.generation}')" 2
# "" in a field of type string: a Go >= 1.16 build without the kube-openapi patch refuses
# it as 'must be of type string: "null"'.
printf 'apiVersion: test.kupenstack.io/v1\nkind: Widget\nmetadata: {name: blank}\n' >"$BASE/blank.yaml"
printf 'spec: {size: 0, colour: ""}\n' >>"$BASE/blank.yaml"
check 'create a Widget with "" in a string field' ka -n default create -f "$BASE/blank.yaml"
blank() { ka -n default get widget blank -o json | jq -c "$1"; }
check 'the "" is stored as ""' is "$(blank '[.spec.colour, .spec.size]')" '["",0]'
check 'merge-patch its status with "" in string fields' ka -n default patch widget blank \
	--subresource=status --type=merge -p '{"status":{"phase":"","message":"","extra":""}}'
check 'the status keeps the ""s' is "$(blank '[.status.phase, .status.message, .status.extra]')" \
	'["","",""]'
recolour() { ka -n default patch widget blank --type=merge -p "{\"spec\":{\"colour\":\"$1\"}}"; }
check 'merge-patch its spec to "red" and back to ""' eval 'recolour red && recolour ""'
check 'the spec keeps the ""' is "$(blank '[.spec.colour]')" '[""]'
check "delete Widget blank" ka -n default delete widget blank
check "the apiserver did not panic or fault" not grep -Eiq 'panic|fatal error' "$A/apiserver.log"
check "the apiserver is the one up started" kube "$A" status

uid=$(ka -n default get widget w2 -o jsonpath='{.metadata.uid}')
cat >"$BASE/owned.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: owned-by-w2
  namespace: default
  ownerReferences:
    - {apiVersion: test.kupenstack.io/v1, kind: Widget, name: w2, uid: "$uid"}
data: {k: v}
YAML
check "create a ConfigMap owned by Widget w2" ka create -f "$BASE/owned.yaml"
check "delete Widget w2" ka -n default delete widget w2 --wait=false
eventually 90 "the garbage collector deletes the ConfigMap" \
	gone ka -n default get configmap owned-by-w2

check "create namespace doomed" ka create namespace doomed
eventually 10 "with a ConfigMap in it" ka -n doomed create configmap c --from-literal=k=v
check "delete namespace doomed" ka delete namespace doomed --wait=false
eventually 60 "the namespace controller empties and removes it" gone ka get namespace doomed


# --- the operator's identity (deploy/rbac.yaml) on A --------------------------------------

token_call() {
	curl -sS -o /dev/null -w '%{http_code}' --cacert "$A/pki/ca.crt" \
		-H "Authorization: Bearer $(cat "$A/restricted.token")" "https://127.0.0.1:$port_a$1"
}
refused "restricted: Widgets (not kupenstack.io) are forbidden" "Forbidden|forbidden" \
	kr -n default get widgets.test.kupenstack.io
refused "restricted: Secrets in default are forbidden" \
	'secrets is forbidden: User "system:serviceaccount:kupenstack-system:kupenstack"' \
	kr -n default get secrets
check "restricted: listing Secrets in default is a 403" \
	is "$(token_call /api/v1/namespaces/default/secrets)" 403
refused "restricted: Secrets in kupenstack-system are forbidden too (it reads no Secret)" \
	'secrets is forbidden: User "system:serviceaccount:kupenstack-system:kupenstack"' \
	kr -n kupenstack-system get secrets
check "restricted: the plugin ConfigMaps in kupenstack-system are readable" \
	kr -n kupenstack-system get configmaps
check "restricted: the token is the ServiceAccount's" \
	is "$(token_call /api/v1/namespaces/kupenstack-system/configmaps)" 200
# may ANSWER VERB RESOURCE[.GROUP][/SUBRESOURCE] [NAMESPACE]: a SelfSubjectAccessReview
# by the restricted identity is answered ANSWER (yes or no). RBAC is checked whether or not
# the resource exists, so kupenstack.io kinds need no CRD here.
may() {
	local want=$1 verb=$2 res=${3%%/*} sub='' ns=${4:-} group='' got
	[[ $3 == */* ]] && sub=${3#*/}
	[[ $res == *.* ]] && group=${res#*.} res=${res%%.*}
	got=$(jq -n --arg v "$verb" --arg g "$group" --arg r "$res" --arg s "$sub" --arg n "$ns" \
		'{apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectAccessReview",
		  spec: {resourceAttributes: {verb: $v, group: $g, resource: $r, subresource: $s,
		  namespace: $n}}}' | kr create -f - -o jsonpath='{.status.allowed}') || return 1
	is "$([ "$got" = true ] && echo yes || echo no)" "$want"
}
while read -r -a row; do
	[ ${#row[@]} -gt 0 ] || continue
	check "restricted $(is "${row[0]}" yes >/dev/null && echo can || echo cannot): ${row[*]:1}" \
		may "${row[@]}"
done <<'TABLE'
yes get         instances.kupenstack.io              tenant-a
yes list        instances.kupenstack.io
yes watch       networks.kupenstack.io
yes patch       instances.kupenstack.io              tenant-a
no  update      instances.kupenstack.io              tenant-a
yes patch       instances.kupenstack.io/status       tenant-a
no  update      instances.kupenstack.io/status       tenant-a
no  update      networks.kupenstack.io/finalizers    tenant-a
yes create      instances.kupenstack.io              tenant-a
yes delete      instances.kupenstack.io              tenant-a
no  create      networks.kupenstack.io               tenant-a
no  delete      flavors.kupenstack.io
no  delete      instancesets.kupenstack.io           tenant-a
yes update      instancesets.kupenstack.io/finalizers tenant-a
yes create      keystones.kupenstack.io              tenant-a
no  create      controlplanes.kupenstack.io          tenant-a
no  delete      policies.kupenstack.io               tenant-a
no  get         widgets.test.kupenstack.io           default
yes create      events                               tenant-a
yes patch       events                               tenant-a
no  create      events.events.k8s.io                 tenant-a
no  delete      events                               tenant-a
yes get         leases.coordination.k8s.io           kupenstack-system
yes create      leases.coordination.k8s.io           kupenstack-system
yes update      leases.coordination.k8s.io           kupenstack-system
no  watch       leases.coordination.k8s.io           kupenstack-system
no  delete      leases.coordination.k8s.io           kupenstack-system
no  create      leases.coordination.k8s.io           default
no  get         leases.coordination.k8s.io           kube-system
yes get         configmaps                           kupenstack-system
yes watch       configmaps                           kupenstack-system
no  watch       configmaps
no  get         configmaps                           tenant-a
no  create      configmaps                           kupenstack-system
no  delete      configmaps                           tenant-a
no  get         secrets                              kupenstack-system
no  list        secrets                              default
no  list        secrets
yes watch       namespaces
yes patch       namespaces
yes patch       namespaces/status
no  update      namespaces
no  create      namespaces
no  delete      namespaces
no  update      namespaces/finalize
no  watch       customresourcedefinitions.apiextensions.k8s.io
no  create      customresourcedefinitions.apiextensions.k8s.io
no  create      deployments.apps                     tenant-a
no  delete      statefulsets.apps                    tenant-a
no  patch       daemonsets.apps                      tenant-a
no  create      services                             tenant-a
no  delete      serviceaccounts                      tenant-a
no  create      jobs.batch                           tenant-a
no  update      deployments.apps/scale               tenant-a
no  list        pods                                 default
no  create      pods                                 tenant-a
no  list        nodes
no  create      clusterroles.rbac.authorization.k8s.io
no  create      rolebindings.rbac.authorization.k8s.io kupenstack-system
no  create      serviceaccounts/token                kupenstack-system
TABLE
cp "$A/restricted.token" "$BASE/token"
echo not-a-token >"$A/restricted.token"
refused "restricted: a rewritten tokenFile is used (401 with a bad token)" "Unauthorized" \
	kr -n kupenstack-system get secrets
cp "$BASE/token" "$A/restricted.token"
check "restricted: the restored token works again" kr -n kupenstack-system get configmaps


# --- a watch from a compacted resourceVersion on B: 410 Gone ------------------------------

etcd_b() { ETCDCTL_API=3 etcdctl --endpoints="$(cat "$B/etcd.endpoint")" "$@"; }
check "B: create a ConfigMap" kb -n default create configmap hist --from-literal=n=0
rv=$(kb -n default get configmap hist -o jsonpath='{.metadata.resourceVersion}')
for n in 1 2 3; do kb -n default patch configmap hist --type=merge -p "{\"data\":{\"n\":\"$n\"}}" >/dev/null; done
rev=$(etcd_b endpoint status -w json | jq '.[0].Status.header.revision')
check "B: compact etcd at revision $rev" etcd_b compact "$rev"
watch_from() {
	kb get --raw "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=$1&timeoutSeconds=3"
}
watch_gone() {
	local out
	out=$(watch_from "$1")
	echo "$out"
	grep -q '"code":410' <<<"$out"
}
check "B: a watch from before the compaction is answered 410 Gone" watch_gone "$rv"
check "the ConfigMap is on B only" gone ka -n default get configmap hist


# --- apiserver stop / start / restart on A ------------------------------------------------

pid=$(cat "$A/apiserver.pid")
check "restart-apiserver" kube "$A" restart-apiserver
check "restart-apiserver: a new process" not is "$(cat "$A/apiserver.pid")" "$pid"
check "restart-apiserver: the old one is gone" not kill -0 "$pid"
check "restart-apiserver: same port, kubectl works" is "$(ka get --raw /readyz)" ok
check "restart-apiserver: the Widgets survived" is "$(ka -n default get widgets -o name | wc -l)" 2
check "stop-apiserver" kube "$A" stop-apiserver
check "status fails while the apiserver is stopped" not kube "$A" status
check "kubectl fails while the apiserver is stopped" not ka get --raw /readyz
check "start-apiserver" kube "$A" start-apiserver
check "status after start-apiserver" kube "$A" status
check "the same command line" is "$(tr '\0' ' ' </proc/"$(cat "$A/apiserver.pid")"/cmdline)" \
	"$(tr '\0' ' ' <"$A/apiserver.argv")"


# --- down ------------------------------------------------------------------------------------

check "down A" kube "$A" down
check "B is untouched by down A" kube "$B" status
check "down B" kube "$B" down
check "no process of either cluster is left" not pgrep -f -- "$BASE/"
check "both state dirs are gone" bash -c '! [ -e "$1" ] && ! [ -e "$2" ]' _ "$A" "$B"
check "down again is a no-op" kube "$A" down
check "status after down fails" not kube "$A" status

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
