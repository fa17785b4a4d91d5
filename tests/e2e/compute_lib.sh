# tests/e2e/compute_lib.sh: what compute.sh, crash.sh and recovery.sh share, sourced after
# lib.sh: the armed host they restart (host, died_at), the admin's view of the APIs
# (api_setup, api, api_ids), the image data served over loopback (serve_data) and the
# namespace's deletion at exit (drop_namespace). Expects NS, PLUGINS and OS_CLOUD set.

HOSTS=0              # hosts started (host names their logs op1, op2, ...)
HOST_ARGS=()         # more `kupenstack run` arguments for every host (recovery.sh: --resync)
DIED_WAIT=300        # seconds died_at waits for the armed host to die
HTTP_PID=

# host [POINT [ARG...]]: stop the running host (if any) and start one, crashing at POINT
# (KUPENSTACK_CRASH_AT; none when empty), with HOST_ARGS and ARGs added. Its pid, log and
# port are then HPID[op], HLOG[op], HPORT[op].
host() {
	[ -n "${HPID[op]:-}" ] && stop_host op TERM
	HOSTS=$((HOSTS + 1))
	HOST=op$HOSTS
	if [ -n "${1:-}" ]; then export KUPENSTACK_CRASH_AT=$1; else unset KUPENSTACK_CRASH_AT; fi
	start_host "$HOST" "$PLUGINS" "$NS" --set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" --set cloud="$OS_CLOUD" \
		"${HOST_ARGS[@]}" "${@:2}"
	local rc=$?
	unset KUPENSTACK_CRASH_AT
	HPID[op]=${HPID[$HOST]}
	HPID[$HOST]=
	HLOG[op]=${HLOG[$HOST]}
	HPORT[op]=${HPORT[$HOST]}
	return $rc
}

# died_at KIND POINT: the host died of SIGKILL (within DIED_WAIT s), having logged that it
# reached KIND's POINT.
died_at() {
	wait_exit op "$DIED_WAIT"
	[ "${HRC[op]}" = 137 ] || { echo "the host exited with ${HRC[op]}, not 137 (SIGKILL)"; tail -n 5 "${HLOG[op]}"; return 1; }
	in_log op "crash point reached.*kind=$1 point=$2( |$)"
}

# api_setup: an admin token (ATOKEN), its user (KP_USER) and the public endpoints
# (NEUTRON, NOVA_URL, CINDER_URL, GLANCE_URL), for what the CLI cannot filter on.
api_setup() {
	local tok
	tok=$(openstack token issue -f json) || return 1
	ATOKEN=$(jq -r .id <<<"$tok")
	KP_USER=$(jq -r .user_id <<<"$tok")
	endpoint() { openstack endpoint list --service "$1" --interface public -f value -c URL | head -n 1; }
	NEUTRON=$(endpoint network)/v2.0
	NOVA_URL=$(endpoint compute)
	CINDER_URL=$(endpoint volumev3 | sed "s/[%$](project_id)s/$(jq -r .project_id <<<"$tok")/")
	GLANCE_URL=$(endpoint image)/v2
	[ -n "$ATOKEN" ] && [ "$NEUTRON" != /v2.0 ] && [ -n "$NOVA_URL" ] && [ -n "$CINDER_URL" ] &&
		[ "$GLANCE_URL" != /v2 ]
}

# api URL: GET URL as admin; the body on stdout; false (saying so) unless a 200.
api() {
	local code
	code=$(curl -sS -o "$WORK/api.body" -w '%{http_code}' -H "X-Auth-Token: $ATOKEN" \
		-H 'X-OpenStack-Nova-API-Version: 2.79' "$1") || { echo "GET $1: no answer"; return 1; }
	[ "$code" = 200 ] || { echo "GET $1: HTTP $code: $(head -c 300 "$WORK/api.body")"; return 1; }
	cat "$WORK/api.body"
}

# api_ids URL JQ: the IDs JQ picks from GET URL, one a line; false when the query fails.
api_ids() {
	local j
	j=$(api "$1") || { echo "$j"; return 1; }
	jq -r "$2" <<<"$j"
}

# serve_data BYTES: BYTES of random data served over loopback by `python3 -m http.server`
# at URL (the file $WWW/disk.raw; the server HTTP_PID, stopped by drop_namespace's callers).
serve_data() {
	WWW=$WORK/www
	mkdir -p "$WWW"
	head -c "$1" /dev/urandom >"$WWW/disk.raw"
	HTTP_PORT=$(free_port)
	python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$WWW" >"$WORK/http.log" 2>&1 &
	HTTP_PID=$!
	URL=http://127.0.0.1:$HTTP_PORT/disk.raw
	until_ok 20 curl -sf -o /dev/null "$URL"
}

# drop_namespace SECONDS: at exit, delete NS (its finalizers need a running host) and wait
# up to SECONDS for it to go; if it does not, take the finalizers off its objects and
# itself so that the cluster is left clean, saying what may be left in OpenStack.
drop_namespace() {
	local o
	k delete namespace "$NS" --wait=false >/dev/null 2>&1
	until_ok "$1" eval "! k get namespace $NS" && return 0
	echo "# namespace $NS did not go; its finalizers are taken off; project $PID may be left in OpenStack"
	for o in $(k get openstack -n "$NS" -o name 2>/dev/null); do
		k patch "$o" -n "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
	done
	k patch namespace "$NS" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
}
