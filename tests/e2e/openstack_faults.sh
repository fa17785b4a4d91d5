#!/usr/bin/env bash
# tests/e2e/openstack_faults.sh: ks.openstack against faults of the real services:
# starts tests/env/faultproxy.py on loopback, runs tests/lua/openstack_faults.lua in the
# real host (bin/kupenstack exec) with the proxy between the library and Nova (503 with
# and without Retry-After, 429, connection reset, no answer, and 1,000 concurrent calls
# through the rate limit), then stops the proxy. Needs OS_CLIENT_CONFIG_FILE (and
# OS_CLOUD, default kupenstack-admin), not the cluster. Arguments go to the Lua script
# after the proxy's URL: [N RATE BURST] of the rate check (1000 50 10: about 20 s).
# Prints TAP lines and `N passed, N failed`; exits 1 on any failure, 2 without
# OS_CLIENT_CONFIG_FILE.
# needs: openstack
set -uo pipefail
if [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	echo "${0##*/}: OS_CLIENT_CONFIG_FILE is not set (. /tmp/os.env)" >&2
	exit 2
fi
export OS_CLOUD=${OS_CLOUD:-kupenstack-admin}
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KS=${KS_BIN:-$TOP/bin/kupenstack} # KS_BIN: another build to test
if [ ! -x "$KS" ]; then
	echo "${0##*/}: $KS is missing: run make" >&2
	exit 2
fi
WORK=$(mktemp -d /tmp/kupenstack-faults.XXXXXX)
PROXY_PID=
passed=0
failed=0

cleanup() {
	if [ -n "$PROXY_PID" ]; then
		kill "$PROXY_PID" 2>/dev/null
		wait "$PROXY_PID" 2>/dev/null
	fi
	if [ "$failed" -eq 0 ]; then
		rm -rf "$WORK"
	else
		echo "# logs kept in $WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The proxy prints its port once it listens.
/usr/bin/python3 "$TOP/tests/env/faultproxy.py" >"$WORK/proxy.port" 2>"$WORK/proxy.log" </dev/null &
PROXY_PID=$!
for _ in $(seq 100); do
	[ -s "$WORK/proxy.port" ] && break
	sleep 0.1
done
PORT=$(head -n1 "$WORK/proxy.port")
if [ -z "$PORT" ]; then
	echo "not ok - faultproxy started"
	sed 's/^/#   /' "$WORK/proxy.log"
	failed=1
	echo "0 passed, 1 failed"
	exit 1
fi

cd "$TOP" || exit 2
"$KS" exec --set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" --set cloud="$OS_CLOUD" \
	tests/lua/openstack_faults.lua "http://127.0.0.1:$PORT" "$@" \
	>"$WORK/out" 2>"$WORK/log" </dev/null
rc=$?
grep -E '^(ok|not ok|#)' "$WORK/out"
passed=$(grep -c '^ok' "$WORK/out")
failed=$(grep -c '^not ok' "$WORK/out")
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] || ! grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$WORK/out"; then
	echo "not ok - the script ran to its end (exit status $rc)"
	failed=$((failed + 1))
fi
if [ "$failed" -ne 0 ]; then
	echo "#   -- the last lines of the script's log:"
	grep -vE '^ts=.* level=(debug|info) ' "$WORK/log" | tail -n 12 | cut -c1-300 | sed 's/^/#   /'
fi
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
