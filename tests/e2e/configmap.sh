#!/usr/bin/env bash
# tests/e2e/configmap.sh: plugins from ConfigMaps (kupenstack run --plugins-configmaps NS):
# a labelled ConfigMap's *.lua key is loaded; editing it reloads the plugin without a
# restart; the plugin's settings (widget.config.yaml beside it) reach ctx.config, checked
# against its config_schema; a broken edit or bad settings are refused, with a Warning
# Event PluginRejected on the ConfigMap, and the previous version keeps running; an
# unlabelled ConfigMap is ignored; deleting the ConfigMap retires the plugin.
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

# settings_cm MARK: the ConfigMap "plugins" holding a Widget plugin writing status.mark
# from its setting mark, and widget.config.yaml giving mark: MARK (YAML).
settings_cm() {
	k apply -n "$NS" -f - >/dev/null <<EOF2
apiVersion: v1
kind: ConfigMap
metadata:
  name: plugins
  labels: {kupenstack.io/plugin: "true"}
data:
  widget.config.yaml: |
    mark: $1
  widget.lua: |
    return {
      api = 1, group = "test.kupenstack.io", version = "v1", kind = "Widget",
      config_schema = { mark = { type = "string", required = true } },
      reconcile = function(obj, ctx)
        return { status = { mark = ctx.config.mark } }
      end,
    }
EOF2
}

# rejected PATTERN: a Warning Event PluginRejected on the ConfigMap "plugins" whose
# message matches PATTERN (a jq regex).
rejected() {
	local j
	j=$(k get events -n "$NS" -o json \
		--field-selector involvedObject.kind=ConfigMap,involvedObject.name=plugins,reason=PluginRejected) ||
		return 1
	jq -c '.items[] | {type, reason, message, count}' <<<"$j"
	jq -e --arg re "$1" 'any(.items[]; .type == "Warning" and (.message | test($re)))' <<<"$j" >/dev/null
}

mkdir -p "$WORK/empty"
start_host h "$WORK/empty" "$NS" --plugins-configmaps "$NS" ||
	{ fail "host starts" h; finish; }
widget "$NS" w1 1 red

# An unlabelled ConfigMap (kupenstack.io/plugin: "false") holding a Widget plugin, then a
# labelled one: once the second is loaded, the first, older, has been seen and passed over.
plugin_cm ignored false never
plugin_cm plugins true one
eventually 30 "a labelled ConfigMap's plugin reconciles" h -- has widget "$NS" w1 '.status.mark == "one"'
check "the log names the ConfigMap source" h -- in_log h 'plugin loaded.*configmap:e2e-cm/plugins/widget.lua'
only_labelled() {
	grep -E 'plugin (loaded|refused)' "${HLOG[h]}"
	[ "$(logged h 'plugin (loaded|refused)')" = 1 ] && [ "$(logged h 'configmap:e2e-cm/ignored')" = 0 ]
}
check "an unlabelled ConfigMap applied before it is not loaded (one plugin loaded, the labelled one's)" h -- \
	only_labelled

plugin_cm plugins true two
eventually 30 "editing the ConfigMap reloads the plugin without a restart" h -- \
	has widget "$NS" w1 '.status.mark == "two"'

k patch -n "$NS" configmap plugins --type merge -p '{"data":{"widget.lua":"return {"}}' >/dev/null
eventually 30 "a broken edit is refused, naming the source" h -- in_log h 'plugin refused.*configmap:e2e-cm/plugins/widget.lua.*kept=previous version'
eventually 30 "... and a Warning Event PluginRejected on the ConfigMap names the key and the error" h -- \
	rejected 'widget.lua refused .kept: previous version.: plugin widget.lua: widget.lua:1: .* near'
widget "$NS" w2 2 blue
eventually 30 "the previous version keeps reconciling" h -- has widget "$NS" w2 '.status.mark == "two"'

settings_cm '"three"'
eventually 30 "settings beside the plugin (widget.config.yaml) reach ctx.config" h -- \
	has widget "$NS" w2 '.status.mark == "three"'
settings_cm 3
eventually 30 "a setting of the wrong type is refused, naming the setting (log)" h -- \
	in_log h "plugin refused.*configmap:e2e-cm/plugins/widget.lua.*widget.config.yaml: setting 'mark' must be a string.*kept=previous version"
eventually 30 "... with a Warning Event PluginRejected on the ConfigMap" h -- \
	rejected "widget.config.yaml: setting 'mark' must be a string"
widget "$NS" w3 3 green
eventually 30 "... and the previous version, with its settings, keeps reconciling" h -- \
	has widget "$NS" w3 '.status.mark == "three"'

k delete -n "$NS" configmap plugins >/dev/null
eventually 30 "deleting the ConfigMap retires the plugin" h -- in_log h 'plugin removed.*configmap:e2e-cm/plugins/widget.lua'
check "the host is still running" h -- alive "${HPID[h]}"
stop_host h
check "SIGTERM: exit status 0" -- test "${HRC[h]}" = 0
finish
