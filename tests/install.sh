#!/usr/bin/env bash
# tests/install.sh: `make install` puts the binary, the Lua library and the plugins where
# the installed binary finds them, and the rockspec installs the same through LuaRocks.
#   make install DESTDIR=$(mktemp -d) PREFIX=/usr: bin/kupenstack, every stdlib module
#     (no specs) under share/kupenstack/stdlib, the plugins under share/kupenstack/plugins;
#   the installed binary runs a script requiring ks.k8s with --stdlib pointing at the
#     installed library; without --stdlib it looks in /usr/share/kupenstack/stdlib (KS_DATA
#     compiled in from this PREFIX, even when bin/kupenstack was built with another), and,
#     where a private mount namespace can be had (root), finds the library there;
#   luarocks lint of the rockspec, and `luarocks make` of a copy of the tree into a
#     tree of its own whose bin/kupenstack finds ks.k8s with no flag (when luarocks is
#     installed: tests/env/deps installs it; without it those checks are skipped).
# Prints TAP lines and `N passed, N failed, N skipped`; exits 1 when a check failed.
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP" || exit 2
WORK=$(mktemp -d /tmp/kupenstack-install.XXXXXX)
D=$WORK/dest
DATA=$D/usr/share/kupenstack
OUT=$WORK/out
passed=0
failed=0
skipped=0
trap '[ "$failed" -eq 0 ] && rm -rf "$WORK"' EXIT

pass() { passed=$((passed + 1)); printf 'ok - %s\n' "$1"; }
skip() { skipped=$((skipped + 1)); printf 'ok - %s # SKIP %s\n' "$1" "$2"; }
fail() {
	failed=$((failed + 1))
	printf 'not ok - %s\n' "$1"
	tail -n 12 "$OUT" | sed 's/^/#   /'
}
# check NAME CMD...: CMD succeeds (its output to $OUT).
check() {
	local name=$1
	shift
	if "$@" >"$OUT" 2>&1 </dev/null; then pass "$name"; else fail "$name"; fi
}

# The script the installed binaries run: ks.k8s from the library, working.
cat >"$WORK/k8s.lua" <<'EOF'
local k8s = require "ks.k8s"
local conds = k8s.set_condition({}, { type = "Ready", status = "True" }, { now = "T" })
print("ks.k8s " .. tostring(k8s.is_true(conds, "Ready")))
EOF
printf 'require "ks.no_such_module"\n' >"$WORK/missing.lua"

# runs_k8s BIN [ARG...]: BIN exec's the script (from /, no KS_STDLIB) and it prints
# "ks.k8s true".
runs_k8s() {
	local bin=$1 out
	shift
	out=$(cd / && env -u KS_STDLIB "$bin" exec "$@" "$WORK/k8s.lua" 2>&1)
	echo "$out"
	[ "$out" = "ks.k8s true" ]
}

# same_files SRC_DIR DEST_DIR FIND_ARGS...: every file find selects in SRC_DIR is in
# DEST_DIR with the same content.
same_files() {
	local src=$1 dst=$2 f n=0
	shift 2
	while IFS= read -r f; do
		n=$((n + 1))
		cmp "$src/$f" "$dst/$f" || return 1
	done < <(cd "$src" && find . -type f "$@" | sed 's|^\./||')
	echo "$n files"
	[ "$n" -gt 0 ]
}

if make install DESTDIR="$D" PREFIX=/usr >"$OUT" 2>&1 </dev/null; then
	pass "make install DESTDIR=... PREFIX=/usr"
else
	fail "make install DESTDIR=... PREFIX=/usr"
	printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
	exit 1
fi
check "the binary is installed as usr/bin/kupenstack, executable" test -x "$D/usr/bin/kupenstack"
check "every stdlib module is under share/kupenstack/stdlib, unchanged" \
	same_files stdlib "$DATA/stdlib" -name '*.lua' ! -name '*_spec.lua'
check "stdlib/ks/k8s.lua is installed" test -f "$DATA/stdlib/ks/k8s.lua"
check "no *_spec.lua is installed" test -z "$(find "$D" -name '*_spec.lua')"
check "every plugin is under share/kupenstack/plugins, unchanged" \
	same_files plugins "$DATA/plugins" -name '*.lua' ! -name '*_spec.lua'
check "the CRDs are under share/kupenstack/crds" same_files crds "$DATA/crds" -name '*.yaml'
check "the installed binary runs ks.k8s from the installed library (--stdlib)" \
	runs_k8s "$D/usr/bin/kupenstack" --stdlib "$DATA/stdlib"

# Without --stdlib, a missing module's error names the directory the binary searches.
looks_in_prefix() {
	local out
	out=$(cd / && env -u KS_STDLIB "$D/usr/bin/kupenstack" exec "$WORK/missing.lua" 2>&1)
	echo "$out"
	grep -q 'the library is in /usr/share/kupenstack/stdlib)' <<<"$out"
}
check "without --stdlib it searches /usr/share/kupenstack/stdlib (KS_DATA from PREFIX)" \
	looks_in_prefix

# In a mount namespace of its own, the install is put where it was meant to be.
in_place() {
	unshare -m bash -c '
		mount -t tmpfs none /usr/share &&
		mkdir /usr/share/kupenstack &&
		mount --bind "$1/usr/share/kupenstack" /usr/share/kupenstack &&
		out=$(cd / && env -u KS_STDLIB "$1/usr/bin/kupenstack" exec "$2" 2>&1)
		echo "$out"
		[ "$out" = "ks.k8s true" ]' _ "$D" "$WORK/k8s.lua"
}
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
	check "installed in place, it finds its library with no flag" in_place
else
	skip "installed in place, it finds its library with no flag" "needs root and unshare -m"
fi

if command -v luarocks >/dev/null; then
	check "luarocks lint kupenstack-dev-1.rockspec" luarocks lint kupenstack-dev-1.rockspec
	# A copy of the tree (sources only), so that the build and the rock stay out of ours.
	rock_make() {
		mkdir -p "$WORK/src" &&
			tar --exclude=./build --exclude=./bin --exclude=./.git -cf - . |
			tar -xf - -C "$WORK/src" &&
			(cd "$WORK/src" && luarocks --tree "$WORK/tree" make kupenstack-dev-1.rockspec)
	}
	check "luarocks make installs the rock into a tree" rock_make
	check "the rock's binary runs ks.k8s from the rock's library, no flag" \
		runs_k8s "$WORK/tree/bin/kupenstack"
	check "the rock puts the library on the Lua path too" \
		test -f "$WORK/tree/share/lua/5.1/ks/k8s.lua"
else
	skip "luarocks lint and make" "luarocks is not installed"
fi

printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ] || echo "# kept $WORK"
[ "$failed" -eq 0 ]
