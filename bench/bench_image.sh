#!/usr/bin/env bash
# bench/bench_image.sh [MIB]: one image of MIB MiB (default 300, random data) into Glance,
# by KupenStack (an Image object, its data streamed by the host from a loopback HTTP
# server) and by `openstack image create --file` (the CLI reading the file), side by side:
# the seconds each took and the peak memory each used (KupenStack: how much the host's
# VmHWM grew; the CLI: its maximum resident set, from /usr/bin/time). KupenStack's time is
# from `kubectl apply` to the object Available, so it includes its reconcile and Glance's
# status polls (every 2 s). Needs KUBECONFIG (admin, the CRDs applied) and
# OS_CLIENT_CONFIG_FILE (OS_CLOUD, default kupenstack-admin); skipped without them.
# needs: kube
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
MIB=${1:-300}
if [ -z "${KUBECONFIG:-}" ] || [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	echo "bench_image: KUBECONFIG or OS_CLIENT_CONFIG_FILE is not set; skipped" >&2
	exit 0
fi
export OS_CLOUD=${OS_CLOUD:-kupenstack-admin}
KS=bin/kupenstack
NS=bench-image-$$
WORK=$(mktemp -d /tmp/kupenstack-bench-image.XXXXXX)
HOST_PID= HTTP_PID= CLI_ID=

k() { kubectl --cache-dir="$WORK/kcache" --request-timeout=30s "$@"; }
cleanup() {
	[ -n "$CLI_ID" ] && openstack image delete "$CLI_ID" >/dev/null 2>&1
	k delete namespace "$NS" --wait=false >/dev/null 2>&1
	# The host deletes the image and the project with the namespace; give it time to.
	for _ in $(seq 1 120); do k get namespace "$NS" >/dev/null 2>&1 || break; sleep 1; done
	[ -n "$HOST_PID" ] && kill "$HOST_PID" 2>/dev/null && wait "$HOST_PID" 2>/dev/null
	[ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$HOST_PID/status"; }

head -c $((MIB << 20)) /dev/urandom >"$WORK/img.raw"
SUM=$(sha256sum "$WORK/img.raw" | cut -c1-64)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$WORK" >/dev/null 2>&1 &
HTTP_PID=$!

mkdir "$WORK/plugins"
cp plugins/project.lua plugins/image.lua "$WORK/plugins/"
printf 'allow_source_networks: "127.0.0.1/32"\nsource_method: stream\n' >"$WORK/plugins/image.config.yaml"
k create namespace "$NS" >/dev/null && k label namespace "$NS" kupenstack.io/project=true >/dev/null
"$KS" run --plugins "$WORK/plugins" --namespace "$NS" --set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" \
	--set cloud="$OS_CLOUD" >"$WORK/host.log" 2>&1 </dev/null &
HOST_PID=$!
for _ in $(seq 1 120); do
	k get namespace "$NS" -o json | jq -e '.metadata.annotations["kupenstack.io/project-id"]' >/dev/null && break
	sleep 1
done

# KupenStack: apply -> Available.
H0=$(hwm_kb)
T0=$(now)
k apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: bench}
spec:
  resource: {container_format: bare, disk_format: raw}
  source: {url: "http://127.0.0.1:$PORT/img.raw", checksum: "$SUM"}
EOF
until k get image bench -n "$NS" -o json | jq -e 'any(.status.conditions[]?; .type == "Available" and .status == "True")' >/dev/null 2>&1; do
	sleep 0.2
	alive=$(kill -0 "$HOST_PID" 2>/dev/null && echo y)
	[ -n "$alive" ] || { echo "bench_image: the host died"; tail "$WORK/host.log"; exit 1; }
done
T1=$(now)
H1=$(hwm_kb)

# The CLI.
T2=$(now)
CLI_ID=$(/usr/bin/time -f '%M' -o "$WORK/cli.rss" openstack image create "bench-cli-$$" --file "$WORK/img.raw" \
	--disk-format raw --container-format bare -f value -c id)
T3=$(now)

awk -v mib="$MIB" -v ks="$(echo "$T1 - $T0" | bc)" -v cli="$(echo "$T3 - $T2" | bc)" \
	-v h0="$H0" -v h1="$H1" -v rss="$(tail -n 1 "$WORK/cli.rss")" 'BEGIN {
	printf "%d MiB image into Glance        %12s %12s\n", mib, "KupenStack", "openstack CLI"
	printf "  seconds                         %12.1f %12.1f\n", ks, cli
	printf "  peak memory used, MiB           %12.1f %12.1f\n", (h1 - h0) / 1024, rss / 1024
	printf "  (KupenStack: growth of the host VmHWM, %.1f -> %.1f MiB; CLI: its max RSS)\n", h0 / 1024, h1 / 1024
}'
