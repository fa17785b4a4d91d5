-- ks/base64.lua: base64 (RFC 4648): decoding Secret data (padding optional), encoding
-- Nova user_data.
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


-- The base64 of the bytes s, padded.
function _M.encode(s)
  local out, n = {}, 0
  local len = #s
  for i = 1, len, 3 do
    local a, b, c = byte(s, i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = floor(v / 262144)
    local c2 = floor(v / 4096) % 64
    local c3 = floor(v / 64) % 64
    local c4 = v % 64
    n = n + 1
    out[n] = char(byte(ALPHABET, c1 + 1), byte(ALPHABET, c2 + 1),
      b and byte(ALPHABET, c3 + 1) or 61, c and byte(ALPHABET, c4 + 1) or 61)
  end
  return concat(out)
end


return _M
