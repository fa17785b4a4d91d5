#!/usr/bin/env bash
# tests/e2e/plugin_precedence.sh: a ConfigMap plugin overrides the file plugin of the same
# kind (the operator's own version of a shipped kind), run as the operator's ServiceAccount
# with only deploy/rbac.yaml (plus the test kind's rights, tests/e2e/rbac-test-kinds.yaml,
# and kupenstack-plugin-reader bound in the plugins' namespace, as rbac.yaml binds it in
# kupenstack-system). A ConfigMap there before the host starts wins from the first
# reconcile (the file plugin never runs); deleting it brings the file plugin back; a new
# one takes over from the running file plugin; a second ConfigMap plugin for the kind is
# refused. And the ServiceAccount reads no Secret and no other namespace's ConfigMaps.
. "$(dirname "$0")/lib.sh"

NS=e2e-prec-$$
new_ns "$NS" bare # only deploy/rbac.yaml's rights (and the plugin reader start_host binds)
k apply -f "$TOP/tests/kube/widget-crd.yaml" >/dev/null
k wait --for condition=established crd/widgets.test.kupenstack.io >/dev/null

# The shipped plugin: a file. It marks what it reconciles with status.file, which the
# ConfigMap plugin never writes: a Widget with status.file was reconciled by it once.
mkdir -p "$WORK/plugins"
cat >"$WORK/plugins/widget.lua" <<'EOF'
return {
  api = 1, group = "test.kupenstack.io", version = "v1", kind = "Widget",
  reconcile = function(obj, ctx)
    return { status = { mark = "file", file = "ran" } }
  end,
}
EOF

# override_cm NAME MARK: a labelled ConfigMap with a Widget plugin writing status.mark.
override_cm() {
	k apply -n "$NS" -f - >/dev/null <<EOF2
apiVersion: v1
kind: ConfigMap
metadata:
  name: $1
  labels: {kupenstack.io/plugin: "true"}
data:
  widget.lua: |
    return {
      api = 1, group = "test.kupenstack.io", version = "v1", kind = "Widget",
      reconcile = function(obj, ctx)
        return { status = { mark = "$2" } }
      end,
    }
EOF2
}

# can VERB RESOURCE ARGS...: what `kubectl auth can-i` says for the operator.
can() { k auth can-i "$1" "$2" --as="$OPERATOR_SA" "${@:3}" 2>/dev/null; }
says_no() { [ "$(can "$@")" = no ] || { echo "can-i $*: not no"; return 1; }; }

override_cm override configmap
widget "$NS" w0 0 red
start_host h "$WORK/plugins" "$NS" --plugins-configmaps "$NS" ||
	{ fail "the host starts as the operator's ServiceAccount" h; finish; }

eventually 30 "a ConfigMap plugin there at start reconciles its kind" h -- \
	has widget "$NS" w0 '.status.mark == "configmap"'
check "... and the file plugin of that kind never reconciled anything (status.file unset)" h -- \
	has widget "$NS" w0 '.status.file == null'
check "the log says the file plugin is overridden by the ConfigMap's" h -- \
	in_log h "plugin overridden.*file=$WORK/plugins/widget.lua kind=Widget.test.kupenstack.io by=configmap:$NS/override/widget.lua"
check "neither is refused" h -- bash -c "! grep -E 'plugin refused' '${HLOG[h]}'"
widget "$NS" w1 1 blue
eventually 30 "a new Widget goes to the ConfigMap plugin" h -- has widget "$NS" w1 '.status.mark == "configmap"'

k delete -n "$NS" configmap override >/dev/null
eventually 30 "deleting the ConfigMap brings the file plugin back (log)" h -- \
	in_log h "plugin no longer overridden.*file=$WORK/plugins/widget.lua"
eventually 30 "... and it reconciles the kind's objects again" h -- \
	has widget "$NS" w1 '.status.mark == "file" and .status.file == "ran"'

override_cm override2 second
eventually 30 "a ConfigMap applied while the file plugin runs takes the kind over" h -- \
	has widget "$NS" w1 '.status.mark == "second"'
widget "$NS" w2 2 green
eventually 30 "... new Widgets go to it" h -- has widget "$NS" w2 '.status.mark == "second"'
check "... and never to the file plugin" h -- has widget "$NS" w2 '.status.file == null'

override_cm override3 third
eventually 30 "a second ConfigMap plugin for the kind is refused, naming the first" h -- \
	in_log h "plugin refused.*file=configmap:$NS/override3/widget.lua error=.*already reconciled by widget.lua"
widget "$NS" w3 3 black
eventually 30 "... and the first keeps the kind" h -- has widget "$NS" w3 '.status.mark == "second"'

check "the operator's ServiceAccount reads no Secret (any namespace)" -- says_no get secrets -A
check "... not even in its own namespace" -- says_no get secrets -n kupenstack-system
check "... reads the ConfigMaps of the plugins' namespace only where bound" -- \
	eval "[ \"\$(can list configmaps -n $NS)\" = yes ] && says_no list configmaps -n default"
check "... cannot create or delete workloads (no such feature yet)" -- \
	eval "says_no create deployments -n $NS && says_no delete jobs -n $NS && says_no create services -n $NS"
check "... cannot write Flavors or any kupenstack.io object's spec by create" -- \
	says_no create flavors.kupenstack.io

check "the host is still running" h -- alive "${HPID[h]}"
stop_host h
check "SIGTERM: exit status 0" -- test "${HRC[h]}" = 0
finish
