-- ks/resource/source.lua: an Image's data from spec.source.url into its Glance image.
--
-- The image is created with our UID tag (queued), then gets its data in one of two ways:
--   web-download  Glance's interoperable import (POST .../import): Glance fetches the URL
--                 itself (importing, then active). Used when the cloud offers it (GET
--                 /v2/info/import) and spec.source has no checksum: Glance cannot check a
--                 SHA-256 given beforehand, so a checksum always means stream.
--   stream        the host streams the URL's data into the image (PUT .../file) through
--                 ks.core.transfer: 1 MiB in flight at most, never in the plugin's memory,
--                 SHA-256 computed in C as it passes; with spec.source.checksum the upload
--                 is only completed when the data has it, so a mismatch leaves the image
--                 queued, without data (marked with REFUSED, so it is not fetched again for
--                 the same checksum).
-- The setting source_method forces one ("auto" by default; web-download only for images
-- without a checksum). The settings (CONFIG) are the plugin's: settings below is its
-- ctx.config.
--
-- The URL is the tenant's, and the fetch is made from the operator's place in the network
-- (or Glance's): check() refuses a URL whose name resolves to a loopback, link-local
-- (cloud metadata), private or other non-public address (host/netguard.h), unless the
-- setting allow_source_networks names that network; a stream checks every connection it
-- opens, redirects included, on the address it really connects to.
--
--   local err = source.check(url, settings)            -- nil when it may be fetched
--   local ok, err = source.upload(cloud, cur, obj, settings)  -- a queued image's data
local log = require "ks.core.log"
local transfer = require "ks.core.transfer"
local glance = require "ks.openstack.glance"
local value = require("ks.resource.fields").value

local type = type
local tostring = tostring
local floor = math.floor


local _M = {}

-- The image property that records where the data came from (spec.source.url).
_M.PROPERTY = "kupenstack_source_url"
-- The image property that records the SHA-256 of data refused for its checksum.
_M.REFUSED = "kupenstack_refused_sha256"
local DOWNLOAD_TIMEOUT = 3000

-- The plugin's settings for its data (config_schema).
_M.CONFIG = {
  allow_source_networks = { type = "string", default = "",
    description = "networks (CIDRs, comma-separated) spec.source.url may reach although "
      .. "they are loopback, link-local or private; empty: public addresses only" },
  source_method = { type = "string", default = "auto", enum = { "auto", "web-download", "stream" },
    description = "how image data gets into Glance: web-download (Glance fetches; an "
      .. "image with spec.source.checksum is always streamed), stream (the host streams "
      .. "it), auto (web-download when offered and no checksum is given)" },
  max_image_mb = { type = "number", default = 102400,
    description = "the largest image data streamed, in MiB" },
}


local function refused(why)
  return { kind = "invalid", message = "spec.source.url: " .. why .. ": refused (the operator "
    .. "allows such networks with the Image plugin's setting allow_source_networks)" }
end


-- The error to stop with for what transfer.check said of spec.source.url (err).
function _M.check_error(err)
  if err.reason == "Refused" then
    return refused(err.message)
  end
  if err.reason == "BadURL" then
    return { kind = "invalid", message = "spec.source.url: " .. err.message }
  end
  return { kind = "transient", backoff = 60, message = "spec.source.url: " .. err.message
    .. " (retrying in 60 s)" }
end


-- nil when url may be fetched; else the error to stop with.
function _M.check(url, settings)
  local ok, err = transfer.check(url, settings.allow_source_networks)
  if ok then
    return nil
  end
  return _M.check_error(err)
end


-- How the data gets into Glance: "web-download" or "stream", for the setting want, a
-- spec.source.checksum or not, and the import methods the cloud offers (a set); or nil
-- and an error.
function _M.choose(want, checksum, methods)
  want = want or "auto"
  if want == "stream" or checksum then
    return "stream"
  end
  if methods["web-download"] then
    return "web-download"
  end
  if want == "web-download" then
    return nil, { kind = "invalid", message = "the Image plugin's source_method is web-download, "
      .. "but this cloud's Glance does not offer it (GET /v2/info/import)" }
  end
  return "stream"
end


local function mismatch(src, sha256)
  return { kind = "invalid", message = "the data at " .. src.url .. " has SHA-256 "
    .. sha256 .. ", not " .. src.checksum:lower() .. " (spec.source.checksum): refused" }
end


-- The error for a stream of src into image id that failed with err (a reason).
function _M.stream_error(err, src, id, settings)
  local r = err.reason
  if r == "Refused" then
    return refused((err.message:gsub(": refused$", "")))
  end
  if r == "TooLarge" then
    return { kind = "invalid", message = "spec.source.url: the data is larger than "
      .. tostring(settings.max_image_mb) .. " MiB (the Image plugin's setting max_image_mb)" }
  end
  if r == "ChecksumMismatch" then
    return mismatch(src, err.sha256)
  end
  if r == "SourceStatus" then
    return { kind = "transient", backoff = 60, message = "could not download " .. src.url
      .. ": HTTP " .. tostring(floor(err.source_status)) .. " (retrying in 60 s)" }
  end
  return { kind = "transient", message = "could not stream " .. src.url .. " into image "
    .. id .. " (" .. tostring(err.side or "") .. "): " .. tostring(err) }
end


-- The error for data already refused for its checksum (the image's REFUSED mark), when
-- spec.source.checksum is still another: nil when it may be fetched.
function _M.refused_before(mark, src)
  if type(mark) == "string" and src.checksum and src.checksum:lower() ~= mark then
    return mismatch(src, mark)
  end
  return nil
end


local function stream(cloud, cur, src, settings)
  local res, err = glance.image_stream(cloud, cur.id, {
    url = src.url, allow = settings.allow_source_networks, sha256 = src.checksum,
    max_bytes = (settings.max_image_mb or 0) * 1048576, timeout = DOWNLOAD_TIMEOUT,
  })
  if not res then
    if type(err) == "table" and err.reason then
      if err.reason == "ChecksumMismatch" then
        local _, merr = glance.image_mark_after_upload(cloud, cur.id, _M.REFUSED, err.sha256,
                                                       cur.updated_at)
        if merr then
          log.warn("could not mark the image with the refused SHA-256 (it is fetched again)",
            { id = cur.id, error = tostring(merr) })
        end
      end
      return nil, _M.stream_error(err, src, cur.id, settings)
    end
    return nil, err
  end
  log.info("streamed image data", { id = cur.id, url = src.url, bytes = res.bytes,
    sha256 = res.sha256, seconds = res.seconds })
  return true
end


local function import(cloud, cur, src)
  local failed = value(cur.os_glance_failed_import)
  local _, ierr = glance.image_import(cloud, cur.id, src.url)
  if ierr then
    return nil, ierr
  end
  log.info("asked Glance to import image data (web-download)", { id = cur.id, url = src.url })
  if failed and failed ~= "" then
    return nil, { kind = "transient", backoff = 60, message = "Glance could not import "
      .. src.url .. " (web-download failed: os_glance_failed_import " .. tostring(failed)
      .. "); asked again, next look in 60 s" }
  end
  return true
end


-- Give cur, a queued image of ours, obj's spec.source data: true, or nil and an error.
function _M.upload(cloud, cur, obj, settings)
  local src = obj.spec.source
  local err = _M.refused_before(cur[_M.REFUSED], src) or _M.check(src.url, settings)
  if err then
    return nil, err
  end
  local methods = {}
  if (settings.source_method or "auto") ~= "stream" and not src.checksum then
    methods, err = glance.import_methods(cloud)
    if not methods then
      return nil, err
    end
  end
  local how
  how, err = _M.choose(settings.source_method, src.checksum, methods)
  if not how then
    return nil, err
  end
  if how == "stream" then
    return stream(cloud, cur, src, settings)
  end
  return import(cloud, cur, src)
end


return _M
