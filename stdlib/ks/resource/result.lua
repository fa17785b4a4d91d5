-- ks/resource/result.lua: the results ks.resource returns to the host, as pure functions:
-- the Available and Progressing conditions, a wait, and an error made into a result
-- (invalid input terminal, quota waiting long, the rest retried with the host's backoff).
local type = type
local pairs = pairs
local tostring = tostring
local getmetatable = getmetatable
local concat = table.concat


local _M = {}


local function cond(ctype, status, reason, message)
  return { type = ctype, status = status, reason = reason, message = message }
end
_M.cond = cond


-- Available True, Progressing False, both Success.
function _M.available(message)
  return {
    cond("Available", "True", "Success", message or "the resource is ready"),
    cond("Progressing", "False", "Success", "nothing to do"),
  }
end


-- Available False, Progressing True, with reason and message.
function _M.progressing(reason, message)
  return {
    cond("Available", "False", reason, message),
    cond("Progressing", "True", reason, message),
  }
end


-- Available False, Progressing False, reason ResourceError: OpenStack says it failed.
function _M.errored(message)
  return {
    cond("Available", "False", "ResourceError", message),
    cond("Progressing", "False", "ResourceError", message),
  }
end


-- A result that waits: Progressing with reason Waiting, and another look later.
function _M.waiting(message, seconds)
  return { conditions = _M.progressing("Waiting", message), requeue_after = seconds or 10 }
end


-- One line for an error value: its __tostring, its message, or its fields.
function _M.describe(err)
  if type(err) ~= "table" then
    return tostring(err)
  end
  local mt = getmetatable(err)
  if mt and mt.__tostring then
    return tostring(err)
  end
  if err.message then
    return tostring(err.message)
  end
  local parts = {}
  for k, v in pairs(err) do
    parts[#parts + 1] = tostring(k) .. "=" .. tostring(v)
  end
  return "{" .. concat(parts, ", ") .. "}"
end


-- A result for an OpenStack (or other) error, keeping status: invalid input is terminal,
-- quota waits long, the rest is retried with the host's backoff.
function _M.failed(err, status)
  local msg = _M.describe(err)
  if type(err) == "table" and err.kind == "invalid" then
    return { status = status, error = msg, terminal = true, reason = "InvalidConfiguration" }
  end
  if type(err) == "table" and err.kind == "quota" then
    return { status = status, error = msg .. " (quota: retrying in " .. (err.backoff or 60) .. " s)",
             reason = "Transient", backoff = err.backoff or 60 }
  end
  if type(err) == "table" and err.backoff then
    return { status = status, error = msg, reason = "Transient", backoff = err.backoff }
  end
  return { status = status, error = msg, reason = "Transient" }
end


-- A result that stops: message, status kept, reason InvalidConfiguration unless told.
function _M.terminal(message, status, reason)
  return { status = status, error = message, terminal = true,
           reason = reason or "InvalidConfiguration" }
end


return _M
