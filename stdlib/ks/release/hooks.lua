-- ks/release/hooks.lua: Helm hooks sorted out of a render, to be run as an operator should
-- run them rather than applied as plain objects: pre-install objects created only if absent
-- (they may hold keys generated once); post-install/post-upgrade Jobs by weight, before the
-- long-running workloads roll; pre-delete only at teardown and only when asked; test hooks
-- never. Pure.
local ipairs = ipairs
local sort = table.sort
local tonumber = tonumber


local _M = {}


local function set_of(s)
  local out = {}
  for part in (s or ""):gmatch("[^,%s]+") do out[part] = true end
  return out
end


-- The hook facts of obj: nil for a plain object, else { events = {set}, weight = n,
-- delete = {set of policies} }.
function _M.of(obj)
  local ann = (obj.metadata or {}).annotations or {}
  local h = ann["helm.sh/hook"]
  if not h or h == "" then return nil end
  local delete = set_of(ann["helm.sh/hook-delete-policy"])
  if next(delete) == nil then delete["before-hook-creation"] = true end -- Helm 3's default
  return { events = set_of(h), weight = tonumber(ann["helm.sh/hook-weight"]) or 0,
           delete = delete }
end


local function by_weight(a, b)
  if a.hook.weight ~= b.hook.weight then return a.hook.weight < b.hook.weight end
  if a.obj.kind ~= b.obj.kind then return a.obj.kind < b.obj.kind end
  return a.obj.metadata.name < b.obj.metadata.name
end


-- Split objs: { plain = {obj...}, pre_install = {...}, post = {...}, pre_delete = {...},
-- skipped = n } where every hook list holds { obj =, hook = } by weight. A hook of several
-- events goes to each list it belongs in; test hooks and hooks of other events
-- (pre-upgrade, pre/post-rollback, post-delete) are skipped and counted.
function _M.split(objs)
  local out = { plain = {}, pre_install = {}, post = {}, pre_delete = {}, skipped = 0 }
  for _, obj in ipairs(objs) do
    local h = _M.of(obj)
    if not h then
      out.plain[#out.plain + 1] = obj
    else
      local e, placed = h.events, false
      local item = { obj = obj, hook = h }
      if e["pre-install"] then out.pre_install[#out.pre_install + 1] = item; placed = true end
      if e["post-install"] or e["post-upgrade"] then
        out.post[#out.post + 1] = item
        placed = true
      end
      if e["pre-delete"] then out.pre_delete[#out.pre_delete + 1] = item; placed = true end
      if not placed then out.skipped = out.skipped + 1 end
    end
  end
  sort(out.pre_install, by_weight)
  sort(out.post, by_weight)
  sort(out.pre_delete, by_weight)
  return out
end


-- Whether a post hook runs in this pass: post-install before the release was ever
-- installed, post-upgrade after.
function _M.due(item, installed)
  if installed then return item.hook.events["post-upgrade"] == true end
  return item.hook.events["post-install"] == true
end


return _M
