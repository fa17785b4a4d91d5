-- ks/openstack/paging.lua: every item of a paginated OpenStack collection.
local json = require "ks.core.json"
local errors = require "ks.openstack.errors"

local type = type
local pairs = pairs
local ipairs = ipairs
local error = error


local _M = {}


local function next_link(doc, key)
  local links = doc[key .. "_links"]
  if type(links) == "table" then
    for _, l in ipairs(links) do
      if type(l) == "table" and l.rel == "next" and type(l.href) == "string" then
        return l.href
      end
    end
    return nil
  end
  if type(doc.next) == "string" then                   -- Glance
    return doc.next
  end
  if type(doc.links) == "table" and type(doc.links.next) == "string" then  -- Keystone
    return doc.links.next
  end
  return nil
end


-- Every item of a paginated collection: GET path (with opts.query, opts.limit per page),
-- then each page's next link (Nova/Neutron/Cinder "<key>_links", Glance "next"), until a
-- page has no next link or no items. Returns the items (a JSON array), or nil and an error.
function _M.list(cloud, service, path, key, opts)
  if type(key) ~= "string" then
    error("cloud:list(service, path, collection_key [, opts]): collection key expected", 3)
  end
  opts = opts or {}
  local query = {}
  for k, v in pairs(opts.query or {}) do
    query[k] = v
  end
  if opts.limit then
    query.limit = opts.limit
  end
  local base_path = path:gsub("%?.*$", "")
  local items, seen = {}, {}
  local req_opts = { query = query, microversion = opts.microversion, headers = opts.headers,
    timeout = opts.timeout }
  local p = path
  for _ = 1, opts.max_pages or 1000 do
    local doc, err = cloud:request(service, "GET", p, req_opts)
    if not doc then
      return nil, err
    end
    local page = type(doc) == "table" and doc[key]
    if type(page) ~= "table" then
      return nil, errors.new { service = service, method = "GET", path = base_path,
        code = "bad_response", message = "the response has no '" .. key .. "' list" }
    end
    for _, it in ipairs(page) do
      items[#items + 1] = it
    end
    local nxt = next_link(doc, key)
    local q = nxt and nxt:match("%?(.*)$")
    if #page == 0 or not q or seen[q] then
      break
    end
    seen[q] = true
    p = base_path .. "?" .. q  -- the link's host may be one this client cannot reach
    req_opts.query = nil
  end
  return json.array(items)
end


return _M
