#!/usr/bin/env bash
# tests/e2e/image.sh: an Image's data from spec.source.url, against the real apiserver and
# the real Glance. One `kupenstack run` (the tenancy and Image plugins) serves a fresh
# namespace labelled kupenstack.io/project=true. The data is served on 127.0.0.2 (a
# loopback address) by `python3 -m http.server`; the operator's setting
# allow_source_networks (image.config.yaml beside the plugin) allows 127.0.0.2/32 and
# nothing else. Checks: a 300 MiB image streams into Glance with the host's peak memory
# (VmHWM) growing by far less than the image, and Glance's MD5 and SHA-512 of it are those
# of the file; a checksum that does not match leaves the image queued, without data;
# spec.source.url on the cloud metadata address, on 127.0.0.1 (not allowed), on the API
# server's address, in decimal, by the name localhost, and by a redirect from the allowed
# server to 127.0.0.1, is refused with the reason on the object's conditions and, when
# refused before the create, no image made; data over max_image_mb is refused; and, when
# the cloud's Glance offers it (GET /v2/info/import), the web-download import path.
# Needs KUBECONFIG (admin, the CRDs applied) and OS_CLIENT_CONFIG_FILE (and OS_CLOUD,
# default kupenstack-admin). Prints TAP lines and `N passed, N failed, N skipped` (the
# web-download checks are skipped, and counted, on a Glance that does not offer it or
# refuses 127.0.0.2); exits 1 on any failure, 2 without KUBECONFIG or OS_CLIENT_CONFIG_FILE.
# needs: openstack
if [ -z "${OS_CLIENT_CONFIG_FILE:-}" ]; then
	echo "${0##*/}: OS_CLIENT_CONFIG_FILE is not set (. /tmp/os.env)" >&2
	exit 2
fi
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export OS_CLOUD=${OS_CLOUD:-kupenstack-admin}

# skip NAME WHY: a check this cloud cannot make, counted apart (tests/run sums skips).
skipped=0
skip() {
	skipped=$((skipped + 1))
	printf 'ok - %s # SKIP %s\n' "$1" "$2"
}
finish() {
	printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
	[ "$failed" -eq 0 ]
	exit $?
}

NS=ks-e2e-image-$$
PLUGINS=$(mktemp -d "$WORK/plugins.XXXXXX")
for p in project image; do
	cp "$TOP/plugins/$p.lua" "$PLUGINS/"
done
PID=
HTTP_PID=
REDIR_PID=
SIZE_MB=${IMAGE_MB:-300}

# cond NAME REASON REGEX: the Image's Available or Progressing condition has REASON and
# a message matching REGEX.
cond() {
	local j
	j=$(obj_json image "$NS" "$1") || return 1
	if jq -e --arg r "$2" --arg m "$3" 'any(.status.conditions[]?; (.type == "Available" or
			.type == "Progressing") and .reason == $r and (.message | test($m)))' <<<"$j" >/dev/null; then
		return 0
	fi
	echo "image $1: no condition with reason $2 and a message matching /$3/"
	jq -c '.status' <<<"$j"
	return 1
}
# no_image NAME: the object has no status.id, and the project has no image of that name.
no_image() {
	[ -z "$(sid image "$1")" ] || { echo "status.id is $(sid image "$1")"; return 1; }
	[ -z "$(openstack image list --property owner="$PID" --name "$1" -f value -c ID)" ] ||
		{ echo "the project has an image $1"; return 1; }
}
os_is() {
	local q=$1 j
	shift
	j=$(openstack "$@" -f json 2>&1) || { echo "openstack $*: $j"; return 1; }
	jq -e "$q" <<<"$j" >/dev/null && return 0
	echo "openstack $* fails $q:"
	jq -c '{status, size, checksum, os_hash_algo, os_hash_value, properties}' <<<"$j" 2>/dev/null || echo "$j"
	return 1
}
# image NAME URL [CHECKSUM]: an Image from URL.
image() {
	local sum=
	[ -n "${3:-}" ] && sum=", checksum: \"$3\""
	apply <<EOF
apiVersion: kupenstack.io/v1alpha1
kind: Image
metadata: {name: $1}
spec:
  resource: {container_format: bare, disk_format: raw}
  source: {url: "$2"$sum}
EOF
}
# settings YAML: the Image plugin's settings; waits until the host has reloaded it.
settings() {
	local before
	before=$(logged op 'msg="plugin reloaded" file=[^ ]*/image.lua')
	printf '%s\n' "$1" >"$PLUGINS/image.config.yaml"
	until_ok 60 eval "[ \$(logged op 'msg=\"plugin reloaded\" file=[^ ]*/image.lua') -gt $before ]"
}
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/${HPID[op]}/status"; }

tidy() {
	local o
	if [ -n "${HPID[op]:-}" ] && k get namespace "$NS" >/dev/null 2>&1; then
		k delete namespace "$NS" --wait=false >/dev/null 2>&1
		if ! until_ok 300 eval "! k get namespace $NS"; then
			echo "# namespace $NS did not go: its finalizers are taken off; project $PID may be left in OpenStack"
			for o in $(k get openstack -n "$NS" -o name 2>/dev/null); do
				k patch "$o" -n "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
			done
			k patch namespace "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
		fi
	fi
	[ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null
	[ -n "$REDIR_PID" ] && kill "$REDIR_PID" 2>/dev/null
	cleanup
}
trap tidy EXIT

# ---- the data, on 127.0.0.2 -----------------------------------------------------------------
WWW=$WORK/www
mkdir -p "$WWW"
head -c $((SIZE_MB << 20)) /dev/urandom >"$WWW/big.raw"
head -c $((2 << 20)) /dev/urandom >"$WWW/small.raw"
BIG_SHA256=$(sha256sum "$WWW/big.raw" | cut -c1-64)
BIG_SHA512=$(sha512sum "$WWW/big.raw" | cut -c1-128)
BIG_MD5=$(md5sum "$WWW/big.raw" | cut -c1-32)
SMALL_SHA256=$(sha256sum "$WWW/small.raw" | cut -c1-64)
SMALL_MD5=$(md5sum "$WWW/small.raw" | cut -c1-32)
HTTP_PORT=$(free_port)
python3 -m http.server "$HTTP_PORT" --bind 127.0.0.2 --directory "$WWW" >"$WORK/http.log" 2>&1 &
HTTP_PID=$!
SRC=http://127.0.0.2:$HTTP_PORT
until_ok 20 curl -sf -o /dev/null "$SRC/small.raw"
# A server on the allowed address that redirects every request to 127.0.0.1.
REDIR_PORT=$(free_port)
python3 - "$REDIR_PORT" "$HTTP_PORT" >"$WORK/redir.log" 2>&1 <<'EOF' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", "http://127.0.0.1:%s/small.raw" % sys.argv[2])
        self.send_header("Content-Length", "0")
        self.end_headers()
http.server.HTTPServer(("127.0.0.2", int(sys.argv[1])), H).serve_forever()
EOF
REDIR_PID=$!
until_ok 20 eval "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.2:$REDIR_PORT/ | grep -q 302"
API=$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')

printf 'allow_source_networks: "127.0.0.2/32"\nsource_method: stream\n' >"$PLUGINS/image.config.yaml"
new_ns "$NS"
k label namespace "$NS" kupenstack.io/project=true >/dev/null
if ! start_host op "$PLUGINS" "$NS" --set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" --set cloud="$OS_CLOUD"; then
	echo "the host did not come up" >"$OUT"
	fail "the operator starts" op
	finish
fi
eventually 180 "setup: the labelled namespace gets a project" op -- project_of
project_of || finish

# ---- streaming: a large image, flat memory ----------------------------------------------------
HWM0=$(hwm_kb)
image big "$SRC/big.raw" "$BIG_SHA256"
eventually 600 "stream: a $SIZE_MB MiB image with its SHA-256 given becomes Available (active)" op -- \
	avail image big
HWM1=$(hwm_kb)
echo "# host VmHWM: $HWM0 kB before the $SIZE_MB MiB image, $HWM1 kB after"
check "stream: the host's peak memory (VmHWM) grew by less than 64 MiB for $SIZE_MB MiB" -- \
	eval "echo \"VmHWM $HWM0 kB -> $HWM1 kB\"; [ $((HWM1 - HWM0)) -lt 65536 ]"
check "stream: Glance has the data: size, MD5 and SHA-512 of the file" -- \
	os_is ".status == \"active\" and .size == $((SIZE_MB << 20)) and .checksum == \"$BIG_MD5\"
		and (.os_hash_algo // .properties.os_hash_algo) == \"sha512\"
		and (.os_hash_value // .properties.os_hash_value) == \"$BIG_SHA512\"" image show "$(sid image big)"
# log_has HOST PATTERN...: a line of HOST's log matches every PATTERN (fields are unordered).
log_has() {
	local host=$1 lines
	shift
	lines=$(cat "${HLOG[$host]}")
	for p in "$@"; do
		lines=$(grep -E -- "$p" <<<"$lines") || { echo "no line of the log of $host matches all of: $*"; return 1; }
	done
	echo "$lines"
}
check "stream: the host logged the SHA-256 it computed, that of the file" -- \
	log_has op 'msg="streamed image data"' "bytes=$((SIZE_MB << 20))( |$)" "sha256=$BIG_SHA256"

# ---- a checksum that does not match ---------------------------------------------------------
image badsum "$SRC/small.raw" "$(printf '0%.0s' {1..64})"
eventually 120 "stream: data that does not match spec.source.checksum is refused: InvalidConfiguration" op -- \
	cond badsum InvalidConfiguration "has SHA-256 $SMALL_SHA256, not 0{64}"
check "stream: ... the image in Glance got no data (queued) and is marked with the refused SHA-256" -- \
	os_is ".status == \"queued\" and .properties.kupenstack_refused_sha256 == \"$SMALL_SHA256\"" \
	image show "$(sid image badsum)"

# ---- addresses that are refused ---------------------------------------------------------------
image meta "http://169.254.169.254/latest/meta-data/"
image lo "http://127.0.0.1:$HTTP_PORT/small.raw"
image apiserver "$API/api/v1/namespaces/kube-system/secrets"
image decimal "http://2130706433:$HTTP_PORT/small.raw"
image name "http://localhost:$HTTP_PORT/small.raw"
image mapped "http://[::ffff:127.0.0.1]:$HTTP_PORT/small.raw"
eventually 60 "refused: the cloud metadata address (169.254.169.254), naming the field" op -- \
	cond meta InvalidConfiguration "^spec.source.url: 169.254.169.254 is a link-local .*: refused"
eventually 60 "refused: 127.0.0.1, a loopback address the allow-list does not name" op -- \
	cond lo InvalidConfiguration "^spec.source.url: 127.0.0.1 is a loopback address: refused"
eventually 60 "refused: the API server's address ($API)" op -- \
	cond apiserver InvalidConfiguration "^spec.source.url: 127.0.0.1 is a loopback address: refused"
eventually 60 "refused: 127.0.0.1 written as a number (http://2130706433/)" op -- \
	cond decimal InvalidConfiguration "^spec.source.url: 127.0.0.1 is a loopback address"
eventually 60 "refused: the name localhost, by what it resolves to" op -- \
	cond name InvalidConfiguration "^spec.source.url: (127.0.0.1|::1) is a loopback address"
eventually 60 "refused: 127.0.0.1 as an IPv4-mapped IPv6 address" op -- \
	cond mapped InvalidConfiguration "^spec.source.url: ::ffff:127.0.0.1 is a loopback address"
for n in meta lo apiserver decimal name mapped; do
	check "refused: $n: no image was made in Glance" -- no_image "$n"
done
image redirect "http://127.0.0.2:$REDIR_PORT/x"
eventually 60 "refused: a redirect from the allowed server to 127.0.0.1 (checked at connect)" op -- \
	cond redirect InvalidConfiguration "^spec.source.url: 127.0.0.1 is a loopback address: refused"
check "refused: ... the redirect's image in Glance got no data (queued)" -- \
	os_is '.status == "queued"' image show "$(sid image redirect)"

# ---- the size limit -------------------------------------------------------------------------
settings $'allow_source_networks: "127.0.0.2/32"\nsource_method: stream\nmax_image_mb: 1'
image toobig "$SRC/small.raw"
eventually 180 "stream: data over max_image_mb (1 MiB) is refused: InvalidConfiguration" op -- \
	cond toobig InvalidConfiguration "larger than 1 MiB"

# ---- web-download, when the cloud offers it ---------------------------------------------------
GLANCE=$(openstack endpoint list --service image --interface public -f value -c URL | head -n 1)
TOKEN=$(openstack token issue -f value -c id)
METHODS=$(curl -sf -H "X-Auth-Token: $TOKEN" "$GLANCE/v2/info/import" | jq -c '.["import-methods"].value')
echo "# Glance's import methods: ${METHODS:-(none: GET /v2/info/import failed)}"
# Glance fetches from 127.0.0.2 port 80 (Glance's import filtering allows ports 80 and 443
# by default).
WEB_PID=
WEB_SKIP="web-download is not offered (GET /v2/info/import), or port 80 of 127.0.0.2 is taken"
# IMAGE_WEB=0 leaves web-download out (for runs side by side: port 80 is one).
[ "${IMAGE_WEB:-1}" = 0 ] && METHODS= WEB_SKIP="IMAGE_WEB=0"
if [ -n "$METHODS" ] && jq -e 'index("web-download")' <<<"$METHODS" >/dev/null; then
	python3 -m http.server 80 --bind 127.0.0.2 --directory "$WWW" >"$WORK/web.log" 2>&1 &
	WEB_PID=$!
	until_ok 20 curl -sf -o /dev/null "http://127.0.0.2/small.raw" || WEB_PID=
fi
if [ -n "$WEB_PID" ]; then
	settings $'allow_source_networks: "127.0.0.2/32"\nsource_method: web-download'
	image web "http://127.0.0.2/small.raw"
	# Glance's own filtering refuses loopback unless its allowed_hosts names it
	# (tests/env/openstack.d/glance-api.conf.in does); a Glance started without it answers
	# 400, and only that the host took the web-download path can be checked.
	until_ok 60 eval "avail image web || cond web InvalidConfiguration 'web-download does not pass filtering'"
	if cond web InvalidConfiguration 'web-download does not pass filtering' >/dev/null; then
		check "web-download: the host asked Glance to import (Glance's own filter answered)" -- \
			cond web InvalidConfiguration "POST /images/.*/import: 400 .*web-download does not pass filtering"
		why="this Glance's import filtering refuses 127.0.0.2 (started without allowed_hosts)"
		skip "web-download: Glance imports the data itself: Available (active)" "$why"
		skip "web-download: Glance has the data (size, MD5)" "$why"
		skip "web-download: Glance fetched it, the host asked Glance and streamed nothing" "$why"
	else
		eventually 180 "web-download: Glance imports the data itself: Available (active)" op -- avail image web
		check "web-download: Glance has the data (size, MD5)" -- \
			os_is ".status == \"active\" and .size == $((2 << 20)) and .checksum == \"$SMALL_MD5\"" \
			image show "$(sid image web)"
		check "web-download: Glance fetched it (the server's log), the host asked Glance and streamed nothing" -- \
			eval "grep -q 'GET /small.raw' '$WORK/web.log' &&
				log_has op 'asked Glance to import image data' 'url=\"?http://127.0.0.2/small.raw' &&
				! log_has op 'streamed image data' 'url=\"?http://127.0.0.2/small.raw'"
	fi
	image weblo "http://127.0.0.1/small.raw"
	eventually 60 "web-download: 127.0.0.1 is refused before Glance is asked" op -- \
		cond weblo InvalidConfiguration "^spec.source.url: 127.0.0.1 is a loopback address: refused"
	check "web-download: ... and no image was made" -- no_image weblo
	kill "$WEB_PID" 2>/dev/null
else
	for n in "Glance imports the data itself: Available (active)" "Glance has the data (size, MD5)" \
		"Glance fetched it, the host asked Glance and streamed nothing" \
		"127.0.0.1 is refused before Glance is asked" "... and no image was made"; do
		skip "web-download: $n" "$WEB_SKIP"
	done
fi

finish
