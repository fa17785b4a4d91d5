-- ks/release/revision.lua: a release's revisions: the values one renders with (spec's or
-- an older revision's, every pinned value set: generated once from OpenSSL's CSPRNG and kept
-- in the state), the chart source it was made of, and the history of the last KEEP.
local crypto = require "ks.core.crypto"
local json = require "ks.core.json"
local state = require "ks.release.state"
local util = require "ks.release.util"

local ipairs = ipairs
local pairs = pairs
local tonumber = tonumber
local tostring = tostring
local type = type


local _M = {}


local function set_path(t, path, v)
  local parts = {}
  for p in path:gmatch("[^.]+") do parts[#parts + 1] = p end
  for i = 1, #parts - 1 do
    if type(t[parts[i]]) ~= "table" then t[parts[i]] = {} end
    t = t[parts[i]]
  end
  t[parts[#parts]] = v
end


-- A pinned value: n characters of [A-Za-z0-9] from OpenSSL's CSPRNG (ks.core.crypto),
-- never math.random (a seeded, guessable generator).
local function generate(n)
  return crypto.token(n)
end


-- Revision n of the history, or nil.
function _M.get(st, n)
  for _, r in ipairs(st.history) do
    if r.revision == n then return r end
  end
end


-- The chart a revision was made of: spec's, or, rolling back to a revision that recorded
-- another source (a chart version bumped since), that source pinned to the content the
-- revision had.
function _M.source(spec, rev)
  local src = rev and rev.source
  if not src or (src.repo == spec.repo and src.chart == spec.chart
                 and src.version == spec.version) then
    return spec
  end
  local s = {}
  for k, v in pairs(spec) do s[k] = v end
  s.repo, s.chart, s.version = src.repo, src.chart, src.version
  s.digest = src.repo and rev.chart or nil
  return s
end


-- The values to render: spec.values (or revision N's), with every pinned value set
-- (generated once, kept in the state).
function _M.values(spec, st)
  local values = spec.values or {}
  if spec.rollback_to then
    local rev = _M.get(st, spec.rollback_to)
    if not rev then
      return nil, "no revision " .. tostring(spec.rollback_to) .. " in the release's history"
    end
    values = rev.values
  end
  local v = util.canonical(values)
  local copy = json.decode(v)
  for path, len in pairs(spec.pins or {}) do
    len = tonumber(len) or 32
    if len < 1 or len > 4096 or len % 1 ~= 0 then
      return nil, "pins." .. tostring(path) .. ": the length must be a whole number of 1..4096"
    end
    local given = util.at(copy, path)
    if given == nil or given == "" then
      st.pins[path] = st.pins[path] or generate(len)
      set_path(copy, path, st.pins[path])
    end
  end
  return copy
end


-- Add a revision to st's history (none when the last has the same key): its number.
function _M.record(st, key, values, rollback_of, nd, chart, src)
  local last = st.history[#st.history]
  if last and last.key == key then return last.revision end
  local n = last and last.revision + 1 or 1
  st.history[#st.history + 1] = { revision = n, key = key, values = values,
                                  rollback_of = rollback_of, nd = nd, chart = chart,
                                  source = { repo = src.repo, chart = src.chart,
                                             version = src.version } }
  while #st.history > state.KEEP do table.remove(st.history, 1) end
  return n
end


return _M
