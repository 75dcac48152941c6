-- examples/jobs.lua: compress and checksum several buffers with libz at
-- once. Each buffer is handled by a coroutine whose libz calls run on
-- capffi's worker pool (f:async); job:await() suspends the coroutine until
-- the call has ended, and capffi.poll() resumes it. Every buffer passed to
-- a call is lent to it: Lua cannot touch it until the call has ended.
--
--   capffi-lua --allow-ffi=libz.so.1 examples/jobs.lua
local capffi = require "capffi"

local tok = capffi.token{ label = "zip", paths = { "libz.so.1" } }
local z = tok:dlopen("libz.so.1", {
  compressBound = "(u64) -> u64",
  compress2 = "(buffer, buffer, buffer, u64, i32) -> i32",
  uncompress = "(buffer, buffer, buffer, u64) -> i32",
  crc32 = "(u64, buffer, u32) -> u64",
})

-- Compress text, decompress it again and compare the checksums; runs in
-- a coroutine, every libz call on the pool.
local function round_trip(name, text)
  local src = capffi.buffer(text)
  local crc = z.crc32:async(0, src, #text):await()

  local out = capffi.buffer(z.compressBound(#text))
  local out_len = capffi.buffer(8) -- uLongf *destLen, in and out
  out_len:view():set("u64", 0, #out)
  local job = z.compress2:async(out, out_len, src, #text, 9)
  -- out is lent to the job now: out:tostring() would raise CAPFFI_EBUSY
  assert(job:await() == 0, "compress2 failed")
  local packed = out_len:view():get("u64", 0)

  local back = capffi.buffer(#text)
  local back_len = capffi.buffer(8)
  back_len:view():set("u64", 0, #back)
  assert(z.uncompress:async(back, back_len, out, packed):await() == 0,
         "uncompress failed")
  local crc_back = z.crc32:async(0, back, #text):await()
  print(("%-6s %6d bytes -> %5d, crc32 %08x %s"):format(
    name, #text, packed, crc, crc == crc_back and "ok" or "MISMATCH"))
  return crc == crc_back
end

local inputs = {
  { "zeros", ("\0"):rep(100000) },
  { "text", ("capffi lends buffers to nonblocking calls. "):rep(2000) },
  { "digits", table.concat((function()
      local t = {}
      for i = 1, 20000 do t[i] = tostring(i * 7919 % 10007) end
      return t
    end)(), ",") },
  { "short", "hello, libz" },
}

local running, matched = 0, 0
for _, input in ipairs(inputs) do
  running = running + 1
  -- Start each coroutine: it runs until its first await and yields.
  coroutine.wrap(function()
    if round_trip(input[1], input[2]) then matched = matched + 1 end
    running = running - 1
  end)()
end

-- The loop: capffi.poll resumes the coroutines whose calls have ended
-- (and raises the error of one that fails).
while running > 0 do
  capffi.poll(1000)
end
print(("%d buffers, %s"):format(#inputs, matched == #inputs
  and "all checksums match" or "some checksums differ"))
