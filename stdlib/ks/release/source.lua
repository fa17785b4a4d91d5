-- ks/release/source.lua: where a release's chart comes from and what it holds. A chart is
-- known by its content, never by its `version:` (a repository can serve other content
-- under the same version):
--   * a directory or a .tgz on the host (spec.chart a path): its content digest
--     (ks.core.chart.digest, over every file), checked against spec.digest when given;
--   * a chart repository (spec.repo = "https://charts.example/", spec.chart = the chart's
--     name, spec.version): Helm's index.yaml protocol. The index is read, the version's
--     .tgz fetched by the host's HTTP client and its SHA-256 checked against the index's
--     `digest` and against the pin: spec.digest ("sha256:<hex>") when given, else the
--     digest seen at the first fetch of this (repository, chart, version), kept in the
--     release's state. Content that differs from the pin is refused before anything is
--     applied. The .tgz is stored content-addressed (ks.core.chart.store) for helm. An
--     index is read again after INDEX_TTL seconds (spec.index_ttl).
-- Every connection to a repository is guarded (ks.core.http's guard): a URL a namespace
-- editor names reaches only public addresses, or the networks the operator allows
-- (spec.allow, the operator's setting, host/netguard.h).
local chart = require "ks.core.chart"
local crypto = require "ks.core.crypto"
local http = require "ks.core.http"
local time = require "ks.core.time"
local yaml = require "ks.core.yaml"
local util = require "ks.release.util"

local ipairs = ipairs
local pairs = pairs
local tostring = tostring
local type = type


local _M = {}

-- The largest index and chart accepted (bytes).
_M.MAX_INDEX = 8 * 1024 * 1024
_M.MAX_CHART = 16 * 1024 * 1024
-- Seconds an index is used again before it is read anew (spec.index_ttl overrides).
_M.INDEX_TTL = 30
-- The .tgz already stored, by SHA-256: fetched once per process.
local stored = {}
-- The indexes read: { [url] = { text =, at = monotonic seconds } }.
local indexes = {}


local function get(url, spec, what, limit)
  local res, err = http.request{ url = url, guard = true, allow = spec.allow or "",
                                 timeout = spec.fetch_timeout or 30 }
  if not res then
    local why = type(err) == "table" and err.reason == "Refused" and
      (tostring(err.message) .. " (the operator allows such networks with the setting " ..
       "that names the networks charts may come from)") or tostring(err)
    return nil, "could not fetch " .. what .. " " .. url .. ": " .. util.truncate(why, 300)
  end
  if res.status ~= 200 then
    return nil, "could not fetch " .. what .. " " .. url .. ": HTTP " .. tostring(res.status)
  end
  if #res.body > limit then
    return nil, what .. " " .. url .. " is larger than " .. limit .. " bytes"
  end
  return res.body
end


-- url resolved against base (the repository's URL, ending in "/").
local function resolve(base, url)
  if url:match("^https?://") then return url end
  if url:sub(1, 1) == "/" then
    return (base:match("^(https?://[^/]+)") or base) .. url
  end
  return base .. url
end


-- "sha256:<hex>" or "<hex>" as 64 lowercase hex digits, or nil.
local function hex_of(d)
  if type(d) ~= "string" then return nil end
  local h = d:lower():gsub("^sha256:", "")
  if #h == 64 and not h:find("[^0-9a-f]") then return h end
  return nil
end
_M.hex_of = hex_of


-- The entry of name at version in an index (decoded), or nil.
function _M.entry(index, name, version)
  local list = type(index) == "table" and type(index.entries) == "table" and
    index.entries[name]
  if type(list) ~= "table" then return nil end
  for _, e in ipairs(list) do
    if type(e) == "table" and tostring(e.version) == version then return e end
  end
  return nil
end


local function from_repo(spec, st)
  local base = spec.repo:gsub("/*$", "") .. "/"
  if not base:match("^https?://[^/]+/") then
    return nil, "spec.repo must be an http(s) URL of a chart repository"
  end
  if type(spec.version) ~= "string" or spec.version == "" then
    return nil, "spec.version: a chart from a repository needs its version"
  end
  local want = spec.digest and hex_of(spec.digest)
  if spec.digest and not want then
    return nil, "spec.digest must be sha256:<64 hex digits>"
  end
  local what = spec.chart .. " " .. spec.version .. " of " .. base
  local pin_key = base .. " " .. spec.chart .. " " .. spec.version
  want = want or st.charts[pin_key]
  local iurl, ttl = base .. "index.yaml", tonumber(spec.index_ttl) or _M.INDEX_TTL
  local memo = indexes[iurl]
  local text = memo and time.monotonic() - memo.at < ttl and memo.text
  if not text then
    local err
    text, err = get(iurl, spec, "the repository's index", _M.MAX_INDEX)
    if not text then return nil, err end
    indexes[iurl] = { text = text, at = time.monotonic() }
  end
  local ok, index = pcall(yaml.decode, text)
  if not ok or type(index) ~= "table" then
    return nil, "the repository's index " .. base .. "index.yaml is not a Helm index"
  end
  local e = _M.entry(index, spec.chart, spec.version)
  if not e then return nil, "the repository " .. base .. " has no " .. spec.chart ..
    " version " .. spec.version end
  local listed = hex_of(e.digest)
  if want and listed and listed ~= want then
    return nil, "chart " .. what .. ": the repository lists content sha256:" .. listed ..
      " but the release is pinned to sha256:" .. want .. "; the same version must " ..
      "not change (set spec.digest to accept the new content); nothing applied"
  end
  local sha = want or listed
  if sha and stored[sha] then return stored[sha], sha end
  local url = type(e.urls) == "table" and type(e.urls[1]) == "string" and e.urls[1]
  if not url then return nil, "the index lists no URL for " .. what end
  url = resolve(base, url)
  local bytes, gerr = get(url, spec, "the chart", _M.MAX_CHART)
  if not bytes then return nil, gerr end
  local got = crypto.sha256(bytes)
  if listed and got ~= listed then
    return nil, "chart " .. what .. ": the repository served content sha256:" .. got ..
      " but its index lists sha256:" .. listed .. "; nothing applied"
  end
  if want and got ~= want then
    return nil, "chart " .. what .. ": the repository served content sha256:" .. got ..
      " but the release is pinned to sha256:" .. want .. "; the same version must " ..
      "not change (set spec.digest to accept the new content); nothing applied"
  end
  local path, serr = chart.store(bytes, got)
  if not path then return nil, "could not store chart " .. what .. ": " .. tostring(serr) end
  stored[got] = path
  st.charts[pin_key] = got
  return path, got
end


-- The path helm renders and the chart's content digest ("sha256:<hex>" for a
-- repository's, the host's digest of the files otherwise), or nil, err (a message for the
-- release's status: nothing was applied).
function _M.resolve(spec, st)
  st.charts = st.charts or {}
  if spec.repo then
    local path, sha = from_repo(spec, st)
    if not path then return nil, sha end
    return path, "sha256:" .. sha
  end
  local d, err = chart.digest(spec.chart)
  if not d then return nil, "could not read the chart " .. spec.chart .. ": " .. tostring(err) end
  -- A local chart pinned (spec.digest): the content digest it had must be the one it has.
  if spec.digest and spec.digest ~= d then
    return nil, "chart " .. spec.chart .. ": its content has digest " .. d ..
      " but the release is pinned to " .. tostring(spec.digest) .. "; nothing applied"
  end
  return spec.chart, d
end


-- Forget a stored chart (helm could not read it).
function _M.forget(path)
  for sha, p in pairs(stored) do
    if p == path then stored[sha] = nil end
  end
end


return _M
