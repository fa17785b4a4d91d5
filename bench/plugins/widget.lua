-- bench/plugins/widget.lua: the trivial plugin the controller benchmarks run: its
-- reconcile only returns a status field (the host adds observedGeneration and writes
-- the status). It logs at debug level, so that bench_leader.sh, which runs the host
-- with --log-level debug, sees when a host reconciled first.
local Widget = {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "Widget",
}


function Widget.reconcile(obj, ctx)
  ctx.log.debug("bench reconcile", { generation = obj.metadata.generation })
  return { status = { phase = "Ready" } }
end


return Widget
