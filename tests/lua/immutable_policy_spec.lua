-- The shipped policy deploy/policies/immutable-fields lists, per kind, the spec paths the
-- plugins declare immutable (the policy sandbox cannot read the plugins): this spec loads
-- every plugins/*.lua, takes the `immutable = {...}` table its definition hands to
-- ks.resource, and fails when a path there is missing from the policy (or the policy names
-- a kind or path no plugin declares), so that the two cannot drift. The policy's behaviour
-- is tested by its fixtures (`kupenstack policy test deploy/policies/immutable-fields`).
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
require "shim.core"
local lyaml = require "lyaml"

package.preload["ks.core.kube"] = function()
  return { list = function() return {} end, get = function() return nil end }
end
package.preload["ks.core.config"] = function() return { get = function() return nil end } end
-- The other host modules (ks.core.transfer, ...): a plugin only keeps them at load time.
local loaders = package.loaders -- LuaJIT (5.1): no package.searchers
loaders[#loaders + 1] = function(name)
  if name:match("^ks%.core%.") then
    return function() return setmetatable({}, { __index = function() return function() end end }) end
  end
end

local POLICY = "deploy/policies/immutable-fields/policy.yaml"

-- Paths that a plugin checks in a function entry (not a table one), and the policy lists
-- by its own rule: plugin -> paths.
local BY_FUNCTION = { volume = { ["spec.resource.size"] = true } }


local function read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end


-- The policy's IMMUTABLE (kind -> { {path, ...}, ... }) from its spec.lua.
local function policy_fields()
  local cr = lyaml.load(read(POLICY))
  local chunk = assert(load(cr.spec.lua, "=" .. POLICY, "t"))
  return chunk().immutable
end


-- The definition plugins/<name>.lua hands to resource.plugin (nil: not built on it, or
-- it declares nothing immutable: the service kinds need host modules busted has not).
local function definition(name)
  if not read("plugins/" .. name .. ".lua"):find("immutable =", 1, true) then
    return nil
  end
  local resource = require "ks.resource"
  local plugin, got = resource.plugin, nil
  resource.plugin = function(def)
    got = def
    return def
  end
  local ok, err = pcall(dofile, "plugins/" .. name .. ".lua")
  resource.plugin = plugin
  assert(ok, err)
  return got
end


local function plugin_names()
  local out = {}
  local p = assert(io.popen("ls plugins/*.lua"))
  for line in p:lines() do
    out[#out + 1] = line:match("plugins/(.-)%.lua$")
  end
  p:close()
  return out
end


describe("the immutable-fields policy", function()
  local fields = policy_fields()

  local function listed(kind, path)
    for _, e in ipairs(fields[kind] or {}) do
      if e[1] == path then
        return true
      end
    end
    return false
  end

  it("lists every spec path a plugin declares immutable", function()
    local declared, seen = 0, {}
    for _, name in ipairs(plugin_names()) do
      local def = definition(name)
      if def and type(def.immutable) == "table" then
        seen[def.kind] = {}
        for _, e in ipairs(def.immutable) do
          if type(e) == "table" then
            declared = declared + 1
            seen[def.kind][e[1]] = true
            assert(listed(def.kind, e[1]), ("plugins/%s.lua declares %s immutable; the policy "
              .. "%s does not list it for %s"):format(name, e[1], POLICY, def.kind))
          end
        end
        for path in pairs(BY_FUNCTION[name] or {}) do
          seen[def.kind][path] = true
          assert(listed(def.kind, path), path .. " missing for " .. def.kind)
        end
      end
    end
    assert.is_true(declared >= 20, "the plugins declare " .. declared .. " paths") -- all loaded
    for kind, list in pairs(fields) do -- and nothing the plugins do not say
      assert(seen[kind], "the policy lists kind " .. kind .. ", no plugin declares it")
      for _, e in ipairs(list) do
        assert(seen[kind][e[1]], ("the policy lists %s for %s, its plugin does not declare it")
          :format(e[1], kind))
      end
    end
  end)

  it("matches exactly the kinds it lists", function()
    local cr = lyaml.load(read(POLICY))
    local kinds = {}
    for _, k in ipairs(cr.spec.match.kinds) do
      kinds[#kinds + 1] = k:match("^kupenstack%.io/(.+)$")
    end
    local want = {}
    for kind in pairs(fields) do
      want[#want + 1] = kind
    end
    table.sort(kinds)
    table.sort(want)
    assert.same(want, kinds)
  end)
end)
