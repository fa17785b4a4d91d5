-- tests/e2e/plugins/release/chartrelease.lua: the test kind that drives the release engine
-- (ks.release) through the real host: a ChartRelease names a chart of the operator's
-- charts directory (config charts_dir) and its values; the release is applied in the
-- object's namespace and reported as status.phase, status.progress ("x/y ready"),
-- status.revision and the conditions Ready and Deterministic. spec.dryRun writes the plan
-- to status.plan instead; spec.rollbackTo re-applies revision N (its chart and values); deleting the
-- object tears the release down (its pre-delete hooks only with spec.runPreDelete). With
-- spec.repo (a chart repository's URL) spec.chart is the chart's name there and
-- spec.version its version, optionally pinned by spec.digest ("sha256:..."); the
-- repository is reached only at public addresses or the networks of the operator's
-- setting allow_chart_networks. Pods are watched (not enqueued) so that a workload's
-- status names its failing pod. Every write the engine makes is counted in
-- kupenstack_plugin_release_writes_total.
local config = require "ks.core.config"
local metrics = require "ks.core.metrics"
local release = require "ks.release"

local writes = metrics.counter("release_writes_total",
                               "writes the release engine made to the API server", { "release" })


local ChartRelease = {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "ChartRelease",
  finalizer = "test.kupenstack.io/release",
  concurrency = 2,
  limits = { seconds = 180 },
  watches = { { group = "", version = "v1", kind = "Pod", map = function() return {} end } },
  config_schema = {
    charts_dir = { type = "string",
                   description = "where the charts are (else the operator setting charts_dir)" },
    poll = { type = "number", default = 1, description = "seconds between readiness checks" },
    index_ttl = { type = "number", default = 30,
                  description = "seconds a chart repository's index is used before it is read again" },
    allow_chart_networks = { type = "string", default = "",
                             description = "networks (CIDRs) chart repositories may be at " ..
                               "besides public addresses" },
  },
}


-- The chart's path: a plain name inside charts_dir (a directory or a .tgz), never a path
-- of the user's choosing; with spec.repo, the chart's name in the repository.
local function chart_of(obj, ctx)
  local c = (obj.spec or {}).chart
  if type(c) ~= "string" or not c:match("^[%w][%w._-]*$") or c:find("..", 1, true) then
    ctx.terminal("spec.chart must name a chart of the operator's charts directory",
                 "InvalidConfiguration")
  end
  if (obj.spec or {}).repo then return c end
  local dir = ctx.config.charts_dir or config.get("charts_dir")
  if not dir then ctx.terminal("no charts_dir: set it in chartrelease.config.yaml or with --set") end
  return dir .. "/" .. c
end


local function spec_of(obj, ctx)
  local s = obj.spec or {}
  return { chart = chart_of(obj, ctx), values = s.values, name = obj.metadata.name,
           namespace = obj.metadata.namespace, owner = obj, event = ctx.event, pins = s.pins,
           rollback_to = s.rollbackTo, dry_run = s.dryRun == true,
           run_pre_delete = s.runPreDelete == true, repo = s.repo, version = s.version,
           digest = s.digest, allow = ctx.config.allow_chart_networks,
           index_ttl = ctx.config.index_ttl }
end


function ChartRelease.reconcile(obj, ctx)
  local r, err = release.apply(spec_of(obj, ctx))
  if not r then return nil, err end
  if r.writes > 0 then writes:inc({ obj.metadata.name }, r.writes) end
  ctx.log.info("release applied", { phase = r.phase, progress = r.progress, writes = r.writes })
  local nd = r.nondeterministic
  local status = { phase = r.phase, progress = r.progress, revision = r.revision,
                   chartDigest = r.chart_digest }
  if r.plan then status.plan = r.plan end
  return {
    status = status,
    conditions = {
      { type = "Ready", status = r.phase == "Ready" and "True" or "False", reason = r.phase,
        message = r.message },
      { type = "Deterministic", status = nd and "False" or "True",
        reason = nd and "RendersDiffer" or "RendersEqual",
        message = nd and ("two renders of the same inputs differ: " ..
                          table.concat(nd, ", ", 1, math.min(#nd, 5)))
          or "two renders of the same inputs are equal" },
    },
    requeue_after = r.phase == "Progressing" and ctx.config.poll or nil,
  }
end


function ChartRelease.finalize(obj, ctx)
  local done, err = release.delete(spec_of(obj, ctx))
  if done == nil then return nil, err end
  if not done then
    ctx.log.info("release teardown waiting", { why = err })
    return { requeue_after = ctx.config.poll }
  end
  return {}
end


return ChartRelease
