#!/usr/bin/env bash
# tests/e2e/configmap.sh: plugins from ConfigMaps (kupenstack run --plugins-configmaps NS):
# a labelled ConfigMap's *.lua key is loaded; editing it reloads the plugin without a
# restart; a broken edit is refused and the previous version keeps running; an unlabelled
# ConfigMap is ignored; deleting the ConfigMap retires the plugin.
. "$(dirname "$0")/lib.sh"

NS=e2e-cm
new_ns "$NS"
k apply -f "$TOP/tests/kube/widget-crd.yaml" >/dev/null
k wait --for condition=established crd/widgets.test.kupenstack.io >/dev/null

# plugin_cm NAME LABEL MARK: a ConfigMap holding a Widget plugin writing status.mark.
plugin_cm() {
	k apply -n "$NS" -f - >/dev/null <<EOF2
apiVersion: v1
kind: ConfigMap
metadata:
  name: $1
  labels: {kupenstack.io/plugin: "$2"}
data:
  widget.lua: |
    return {
      api = 1, group = "test.kupenstack.io", version = "v1", kind = "Widget",
      reconcile = function(obj, ctx)
        return { status = { mark = "$3" } }
      end,
    }
EOF2
}

mkdir -p "$WORK/empty"
start_host h "$WORK/empty" "$NS" --plugins-configmaps "$NS" ||
	{ fail "host starts" h; finish; }
widget "$NS" w1 1 red

plugin_cm ignored false never
sleep 2
check "an unlabelled ConfigMap is not loaded" h -- bash -c "! grep -q 'plugin loaded' '${HLOG[h]}'"

plugin_cm plugins true one
eventually 30 "a labelled ConfigMap's plugin reconciles" h -- has widget "$NS" w1 '.status.mark == "one"'
check "the log names the ConfigMap source" h -- in_log h 'plugin loaded.*configmap:e2e-cm/plugins/widget.lua'

plugin_cm plugins true two
eventually 30 "editing the ConfigMap reloads the plugin without a restart" h -- \
	has widget "$NS" w1 '.status.mark == "two"'

k patch -n "$NS" configmap plugins --type merge -p '{"data":{"widget.lua":"return {"}}' >/dev/null
eventually 30 "a broken edit is refused, naming the source" h -- in_log h 'plugin refused.*configmap:e2e-cm/plugins/widget.lua.*kept=previous version'
widget "$NS" w2 2 blue
eventually 30 "the previous version keeps reconciling" h -- has widget "$NS" w2 '.status.mark == "two"'

k delete -n "$NS" configmap plugins >/dev/null
eventually 30 "deleting the ConfigMap retires the plugin" h -- in_log h 'plugin removed.*configmap:e2e-cm/plugins/widget.lua'
check "the host is still running" h -- alive "${HPID[h]}"
stop_host h
check "SIGTERM: exit status 0" -- test "${HRC[h]}" = 0
finish
