-- ks/base64.lua: decoding the base64 of Secret data (RFC 4648, padding optional).
local byte = string.byte
local char = string.char
local concat = table.concat
local floor = math.floor


local _M = {}

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local VALUE = {}
for i = 1, #ALPHABET do
  VALUE[byte(ALPHABET, i)] = i - 1
end


-- The bytes s encodes, or nil and an error naming the first bad character.
function _M.decode(s)
  local out, n, acc, bits = {}, 0, 0, 0
  for i = 1, #s do
    local c = byte(s, i)
    local v = VALUE[c]
    if v then
      acc = acc * 64 + v
      bits = bits + 6
      if bits >= 8 then
        bits = bits - 8
        local b = floor(acc / 2 ^ bits)
        acc = acc - b * 2 ^ bits
        n = n + 1
        out[n] = char(b)
      end
    elseif c == 61 then -- "=": padding ends the data
      break
    elseif c ~= 10 and c ~= 13 and c ~= 32 then
      return nil, "could not decode base64: bad character at byte " .. i
    end
  end
  return concat(out)
end


return _M
