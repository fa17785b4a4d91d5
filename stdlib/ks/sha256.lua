-- ks/sha256.lua: SHA-256 (FIPS 180-4) in plain Lua arithmetic, for plugins, whose sandbox
-- has no bit library: 32-bit words are numbers, AND and XOR go byte by byte through
-- 256x256 tables (built on first use, about 1 MB). Slow next to C: with the JIT off,
-- about 660 million VM instructions and 1.5 s per MiB on the test machine; enough to check
-- a small downloaded image against spec.source.checksum.
--
--   local sha256 = require "ks.sha256"
--   sha256.hex("abc")  --> "ba7816bf..."
local byte = string.byte
local format = string.format
local concat = table.concat


local _M = {}

local W32 = 4294967296
local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}
local H0 = {
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
}

-- XOR8[a * 256 + b + 1] = a xor b; AND8 likewise (a and b < 256).
local XOR8, AND8


local function tables()
  if XOR8 then
    return
  end
  XOR8, AND8 = {}, {}
  for a = 0, 255 do
    for b = 0, 255 do
      local x, y, p, xa, ya = 0, 0, 1, a, b
      for _ = 1, 8 do
        local abit, bbit = xa % 2, ya % 2
        if abit ~= bbit then
          x = x + p
        elseif abit == 1 then
          y = y + p
        end
        xa, ya, p = (xa - abit) / 2, (ya - bbit) / 2, p * 2
      end
      XOR8[a * 256 + b + 1] = x
      AND8[a * 256 + b + 1] = y
    end
  end
end


-- op(a, b) byte by byte through table t.
local function bytewise(t, a, b)
  local a1, b1 = a % 256, b % 256
  a, b = (a - a1) / 256, (b - b1) / 256
  local a2, b2 = a % 256, b % 256
  a, b = (a - a2) / 256, (b - b2) / 256
  local a3, b3 = a % 256, b % 256
  a, b = (a - a3) / 256, (b - b3) / 256
  return t[a1 * 256 + b1 + 1] + t[a2 * 256 + b2 + 1] * 256 + t[a3 * 256 + b3 + 1] * 65536
    + t[a * 256 + b + 1] * 16777216
end


local function bxor(a, b)
  return bytewise(XOR8, a, b)
end


local function band(a, b)
  return bytewise(AND8, a, b)
end


-- a xor b xor c, splitting each operand once.
local function bxor3(a, b, c)
  local t = XOR8
  local a1, b1, c1 = a % 256, b % 256, c % 256
  a, b, c = (a - a1) / 256, (b - b1) / 256, (c - c1) / 256
  local a2, b2, c2 = a % 256, b % 256, c % 256
  a, b, c = (a - a2) / 256, (b - b2) / 256, (c - c2) / 256
  local a3, b3, c3 = a % 256, b % 256, c % 256
  a, b, c = (a - a3) / 256, (b - b3) / 256, (c - c3) / 256
  return t[t[a1 * 256 + b1 + 1] * 256 + c1 + 1] + t[t[a2 * 256 + b2 + 1] * 256 + c2 + 1] * 256
    + t[t[a3 * 256 + b3 + 1] * 256 + c3 + 1] * 65536 + t[t[a * 256 + b + 1] * 256 + c + 1] * 16777216
end


local function compress(h, w)
  for i = 17, 64 do
    local x, y = w[i - 15], w[i - 2]
    -- s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x >> 3); s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y >> 10)
    local x7, x18, x3 = x % 128, x % 262144, x % 8
    local y17, y19, y10 = y % 131072, y % 524288, y % 1024
    local s0 = bxor3((x - x7) / 128 + x7 * 33554432, (x - x18) / 262144 + x18 * 16384,
      (x - x3) / 8)
    local s1 = bxor3((y - y17) / 131072 + y17 * 32768, (y - y19) / 524288 + y19 * 8192,
      (y - y10) / 1024)
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) % W32
  end
  local a, b, c, d, e, f, g, hh = h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]
  for i = 1, 64 do
    -- S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25); S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
    local e6, e11, e25 = e % 64, e % 2048, e % 33554432
    local s1 = bxor3((e - e6) / 64 + e6 * 67108864, (e - e11) / 2048 + e11 * 2097152,
      (e - e25) / 33554432 + e25 * 128)
    -- Ch and Maj as sums of terms with no bit in common.
    local ch = band(e, f) + band(W32 - 1 - e, g)
    local t1 = hh + s1 + ch + K[i] + w[i]
    local a2, a13, a22 = a % 4, a % 8192, a % 4194304
    local s0 = bxor3((a - a2) / 4 + a2 * 1073741824, (a - a13) / 8192 + a13 * 524288,
      (a - a22) / 4194304 + a22 * 1024)
    local maj = band(a, b) + band(c, bxor(a, b))
    hh, g, f, e = g, f, e, (d + t1) % W32
    d, c, b, a = c, b, a, (t1 + s0 + maj) % W32
  end
  h[1], h[2], h[3], h[4] = (h[1] + a) % W32, (h[2] + b) % W32, (h[3] + c) % W32, (h[4] + d) % W32
  h[5], h[6], h[7], h[8] = (h[5] + e) % W32, (h[6] + f) % W32, (h[7] + g) % W32, (h[8] + hh) % W32
end


-- The 64-byte blocks of s from byte i into w (big-endian words).
local function load(w, s, i)
  for j = 1, 16 do
    local b1, b2, b3, b4 = byte(s, i, i + 3)
    w[j] = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
    i = i + 4
  end
end


-- The padding: 0x80, zeros, and the length in bits as 8 big-endian bytes.
local function padding(len)
  local zeros = (55 - len) % 64
  local bits = len * 8
  local tail = {}
  for k = 8, 1, -1 do
    local b = bits % 256
    tail[k] = string.char(b)
    bits = (bits - b) / 256
  end
  return "\128" .. string.rep("\0", zeros) .. concat(tail)
end


-- The SHA-256 of s, as 64 lowercase hex digits. pause: called every 256 blocks (16 KiB)
-- so that a caller can yield (a plugin: time.sleep(0), letting the host serve others).
function _M.hex(s, pause)
  tables()
  local h = { H0[1], H0[2], H0[3], H0[4], H0[5], H0[6], H0[7], H0[8] }
  local w = {}
  local len = #s
  local full = len - len % 64
  for i = 1, full, 64 do
    load(w, s, i)
    compress(h, w)
    if pause and i % 16384 == 1 and i > 1 then
      pause()
    end
  end
  local rest = s:sub(full + 1) .. padding(len)
  for i = 1, #rest, 64 do
    load(w, rest, i)
    compress(h, w)
  end
  local out = {}
  for i = 1, 8 do
    out[i] = format("%08x", h[i])
  end
  return concat(out)
end


return _M
