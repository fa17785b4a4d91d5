#!/usr/bin/env bash
# bench/bench_openstack.sh: ks.openstack (Lua, in bin/kupenstack exec) against
# openstacksdk (Python), the same calls one after another against the real services of
# tests/env/openstack: time per call of each and their ratio. Needs OS_CLIENT_CONFIG_FILE
# and OS_CLOUD (eval "$(tests/env/openstack up)").
# Then a concurrent section: Keystone token validation (GET /v3/auth/tokens with
# X-Subject-Token) and Nova GET /servers/detail, C workers at once (Lua: ks.core.script.gather
# tasks; Python: threads sharing one session), TOTAL requests per call: req/s of each, their
# ratio, and p50/p99 latency. The library runs with rate = false (no client-side limit).
# Usage: bench_openstack.sh [N sequential calls, 0: skip] [TOTAL concurrent, 0: skip] [C]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}
total=${2:-400}
conc=${3:-8}
if [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	echo "bench_openstack: OS_CLIENT_CONFIG_FILE is not set; skipped" >&2
	exit 0
fi
if [ "$n" -gt 0 ]; then
	lua=$(bin/kupenstack exec --set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" --set cloud="${OS_CLOUD:-}" bench/openstack_calls.lua "$n" 2>/dev/null)
	sdk=$(/usr/bin/python3 bench/openstack_calls.py "$n" 2>/dev/null)
	echo "== ks.openstack (Lua) vs openstacksdk (Python), sequential calls, n=$n"
	printf '%-22s %12s %12s %8s\n' call "lua ms/call" "sdk ms/call" "lua/sdk"
	for what in list-networks list-flavors create-delete-network; do
		read -r _ _ lt lc <<<"$(grep " $what " <<<"$lua")"
		read -r _ _ st sc <<<"$(grep " $what " <<<"$sdk")"
		awk -v w="$what" -v lt="$lt" -v lc="$lc" -v st="$st" -v sc="$sc" \
			'BEGIN { printf "%-22s %12.2f %12.2f %8.2f\n", w, 1000*lt/lc, 1000*st/sc, (lt/lc)/(st/sc) }'
	done
	grep requests <<<"$lua" | sed 's/^lua /# ks.openstack HTTP /'
fi
if [ "$total" -gt 0 ]; then
	lua=$(bin/kupenstack exec --set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" --set cloud="${OS_CLOUD:-}" bench/openstack_concurrent.lua "$total" "$conc" 2>/dev/null)
	sdk=$(/usr/bin/python3 bench/openstack_concurrent.py "$total" "$conc" 2>/dev/null)
	echo "== concurrent requests, $conc at once, $total per call (ks.openstack rate = false: no client-side rate limit)"
	printf '%-16s %5s %10s %10s %8s %11s %11s %11s %11s\n' call conc "lua req/s" "sdk req/s" \
		"lua/sdk" "lua p50 ms" "lua p99 ms" "sdk p50 ms" "sdk p99 ms"
	for what in validate-token servers-detail; do
		read -r _ _ c lw lr lp50 lp99 <<<"$(grep " $what " <<<"$lua")"
		read -r _ _ _ sw sr sp50 sp99 <<<"$(grep " $what " <<<"$sdk")"
		awk -v w="$what" -v c="$c" -v lw="$lw" -v lr="$lr" -v sw="$sw" -v sr="$sr" \
			-v lp50="$lp50" -v lp99="$lp99" -v sp50="$sp50" -v sp99="$sp99" \
			'BEGIN { printf "%-16s %5d %10.1f %10.1f %8.2f %11.2f %11.2f %11.2f %11.2f\n",
				w, c, lr/lw, sr/sw, (lr/lw)/(sr/sw), lp50, lp99, sp50, sp99 }'
	done
fi
