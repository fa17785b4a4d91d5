#!/usr/bin/env bash
# bench/bench_openstack.sh: ks.openstack (Lua, in bin/kupenstack exec) against
# openstacksdk (Python), the same calls one after another against the real services of
# tests/env/openstack: time per call of each and their ratio. Needs OS_CLIENT_CONFIG_FILE
# and OS_CLOUD (eval "$(tests/env/openstack up)").
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}
if [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	echo "bench_openstack: OS_CLIENT_CONFIG_FILE is not set; skipped" >&2
	exit 0
fi
lua=$(bin/kupenstack exec bench/openstack_calls.lua "$n" 2>/dev/null)
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
