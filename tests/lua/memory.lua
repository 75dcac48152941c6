-- memory.lua: pointers of buffers, views of buffers and of native memory
-- (run with --allow-ffi).
local t = require "harness"
local capffi = require "capffi"

local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")
local tok = capffi.token{ label = "memory" }
local fx = tok:dlopen(FIXTURE, {
  fx_keep = "(pointer) -> void",
  fx_kept_sum = "(usize) -> u64",
  fx_kept_fill = "(u8, usize) -> void",
  fx_id_ptr = "(pointer) -> pointer",
  fx_get_adder = "() -> function",
  greeting = { name = "fx_greeting", sig = "() -> pointer" },
})
local a = capffi.audit

-- Marks hold the collector, so expectations see the test's own events.
local mark, expect = t.mark, t.expect_since

-- How many accesses of views were refused with status since a mark. A
-- view's refusals are coalesced, over a window of time, into events whose
-- count says how many they stand for: so they are counted, not listed.
local function refused(m, status)
  local n = 0
  for _, ev in ipairs(a.events{ since = m, op = "view.access",
                                status = status }) do
    n = n + ev.count
  end
  return n
end

-- Every scalar type a view reads and writes: its size, the string.pack
-- format that reads the same bytes, and values at its limits.
local TYPES = {
  { "bool", 1, "B", { true, false } },
  { "i8", 1, "i1", { -128, 127, -1, 0 } },
  { "u8", 1, "I1", { 0, 255, 128 } },
  { "i16", 2, "i2", { -32768, 32767, -2 } },
  { "u16", 2, "I2", { 0, 65535 } },
  { "i32", 4, "i4", { -2147483648, 2147483647 } },
  { "u32", 4, "I4", { 0, 4294967295 } },
  { "i64", 8, "i8", { math.mininteger, math.maxinteger, -3 } },
  { "u64", 8, "I8", { 0, -1, math.mininteger, math.maxinteger } },
  { "isize", 8, "j", { math.mininteger, 42 } },
  { "usize", 8, "J", { -1, 7 } },
  { "f32", 4, "f", { 1.5, -0.25, math.huge } },
  { "f64", 8, "d", { 0.1, -1e300, -math.huge } },
}

t.test("views_read_and_write_every_scalar_type", function()
  local b = capffi.buffer(64)
  local v = tok:view(b) -- pointers and functions are read too
  for _, ty in ipairs(TYPES) do
    local name, size, fmt, values = ty[1], ty[2], ty[3], ty[4]
    for _, off in ipairs{ 0, 1, 3, 64 - size } do -- aligned or not
      for _, x in ipairs(values) do
        t.eq(v:set(name, off, x), v, name .. ": set returns the view")
        local got = v:get(name, off)
        t.eq(got, x, ("%s at %d"):format(name, off))
        if name ~= "bool" then
          t.eq(math.type(got), math.type(x), name .. ": number subtype")
        end
        local raw = string.unpack(fmt, b:tostring(), off + 1)
        if name == "bool" then raw = raw ~= 0 end
        t.eq(raw, x, ("%s at %d: the bytes in memory"):format(name, off))
      end
    end
  end
  -- integral floats are integers, as for call arguments
  v:set("i32", 0, 7.0)
  t.eq(math.type(v:get("i32", 0)), "integer", "7.0 stored as an integer")
  v:set("u64", 8, 2.0 ^ 63)
  t.eq(v:get("u64", 8), math.mininteger, "2^63 as a float")
  t.eq(capffi.u64tostring(v:get("u64", 8)), "9223372036854775808", "its text")
  v:set("f32", 0, 0.1)
  t.eq(v:get("f32", 0), string.unpack("f", string.pack("f", 0.1)),
       "f32 rounds")
  t.eq(v:get("u8"), v:get("u8", 0), "the offset defaults to 0")
  -- pointers and functions
  local adder = fx.fx_get_adder()
  v:set("function", 16, adder)
  t.eq(v:get("function", 16), adder, "function")
  v:set("pointer", 24, nil)
  t.eq(v:get("pointer", 24), nil, "NULL is nil")
  v:set("pointer", 24, adder)
  t.eq(v:get("pointer", 24), adder, "pointer")
  t.eq(string.unpack("J", b:tostring(), 25), capffi.address(adder),
       "the address in memory")
end)

t.test("view_values_are_checked_like_arguments", function()
  local v = capffi.buffer(16):view()
  local e = t.raises("CAPFFI_ERANGE", v.set, v, "u8", 0, 256)
  t.says(e, "u8")
  t.raises("CAPFFI_ERANGE", v.set, v, "i8", 0, -129)
  t.raises("CAPFFI_ERANGE", v.set, v, "u8", 3, -1)
  t.raises("CAPFFI_ERANGE", v.set, v, "u32", 0, 1 << 32)
  t.raises("CAPFFI_ERANGE", v.set, v, "i16", 0, 32768)
  t.raises("CAPFFI_ERANGE", v.set, v, "i64", 0, 2.0 ^ 63)
  t.raises("CAPFFI_ERANGE", v.set, v, "u64", 0, -1.0)
  t.raises("CAPFFI_ERANGE", v.set, v, "i32", 0, 1.5)
  t.raises("CAPFFI_ERANGE", v.set, v, "f32", 0, 1e39)
  t.raises("CAPFFI_ETYPE", v.set, v, "i32", 0, "1")
  t.raises("CAPFFI_ETYPE", v.set, v, "bool", 0, 1)
  t.raises("CAPFFI_ETYPE", v.set, v, "pointer", 0, 5)
  t.raises("CAPFFI_ETYPE", v.set, v, "f64", 0, nil)
  t.raises("CAPFFI_ETYPE", v.get, v, "cstring", 0)
  t.raises("CAPFFI_ETYPE", v.get, v, "struct", 0)
  t.raises("CAPFFI_ETYPE", v.get, v, "int", 0)
  t.raises("CAPFFI_ETYPE", v.get, v, 4, 0)
  t.raises("CAPFFI_ERANGE", v.get, v, "u8", 0.5)
  t.raises("CAPFFI_ETYPE", v.get, v, "u8", "0")
  t.eq(v:copy(0, 16), ("\0"):rep(16), "nothing was written")
end)

t.test("bounds_around_the_end", function()
  local b = capffi.buffer(16)
  local v = b:view()
  for _, ty in ipairs(TYPES) do
    local name, size = ty[1], ty[2]
    local x = ty[4][1]
    local m = a.mark()
    v:set(name, 16 - size, x)
    t.eq(v:get(name, 16 - size), x, name .. " at the last offset")
    for off = 16 - size + 1, 18 do
      local e = t.raises("CAPFFI_EBOUNDS", v.get, v, name, off)
      t.says(e, ("%d bytes at offset %d"):format(size, off))
      t.raises("CAPFFI_EBOUNDS", v.set, v, name, off, x)
    end
    t.raises("CAPFFI_EBOUNDS", v.get, v, name, math.maxinteger)
    t.raises("CAPFFI_EBOUNDS", v.get, v, name, -1)
    t.raises("CAPFFI_EBOUNDS", v.set, v, name, -size, x)
    -- each refusal capffi made is in the audit trail
    t.eq(refused(m, "CAPFFI_EBOUNDS"), 2 * (18 - (16 - size)) + 1,
         name .. ": audited refusals")
  end
  t.eq(v:copy(16, 0), "", "an empty copy at the end")
  t.eq(v:copy(0, 16), b:tostring(), "the whole view")
  t.raises("CAPFFI_EBOUNDS", v.copy, v, 15, 2)
  t.raises("CAPFFI_EBOUNDS", v.copy, v, 17, 0)
  t.raises("CAPFFI_EBOUNDS", v.copy, v, 0, math.maxinteger)
  t.raises("CAPFFI_EBOUNDS", v.copy, v, 0, -1)
  t.eq(v:write(14, "ab"), v, "write returns the view")
  t.eq(b:tostring(15, 16), "ab", "written")
  t.raises("CAPFFI_EBOUNDS", v.write, v, 15, "ab")
  t.raises("CAPFFI_EBOUNDS", v.write, v, 17, "")
  t.eq(v:write(16, ""):copy(14, 2), "ab", "an empty write at the end")
  t.raises("CAPFFI_EBOUNDS", v.cstring, v, 16)
  t.raises("CAPFFI_EBOUNDS", v.sub, v, 8, 9)
  t.raises("CAPFFI_EBOUNDS", v.sub, v, 17, 0)
  t.eq(#v:sub(16, 0), 0, "an empty sub-view at the end")
  t.eq(#v, 16, "#v")
end)

t.test("sub_views_only_shrink", function()
  local b = capffi.buffer(string.pack("<i4i4i4", 1, 2, 3))
  local v = b:view("r")
  local mid = v:sub(4, 4)
  t.eq(#mid, 4, "length")
  t.eq(mid:get("i32", 0), 2, "offsets are the sub-view's own")
  t.raises("CAPFFI_EBOUNDS", mid.get, mid, "i32", 4)
  t.raises("CAPFFI_EPERM", v.sub, v, 0, 4, "rw")
  t.raises("CAPFFI_EPERM", mid.set, mid, "i32", 0, 9)
  v:free()
  t.eq(mid:get("i32", 0), 2, "a sub-view outlives its parent")
  local rw = b:view()
  local w = rw:sub(8, 4, "w")
  w:set("i32", 0, 30)
  t.raises("CAPFFI_EPERM", w.get, w, "i32", 0)
  t.eq(rw:get("i32", 8), 30, "written through the write-only sub-view")
  t.raises("CAPFFI_EINVAL", rw.sub, rw, 0, 4, "x")
end)

t.test("access_modes", function()
  local b = capffi.buffer(8)
  local r = b:view("r")
  local m = a.mark()
  local e = t.raises("CAPFFI_EPERM", r.set, r, "u8", 0, 1)
  t.says(e, "not writable")
  t.raises("CAPFFI_EPERM", r.write, r, 0, "x")
  local w = b:view("w")
  t.raises("CAPFFI_EPERM", w.get, w, "u8", 0)
  t.raises("CAPFFI_EPERM", w.copy, w, 0, 1)
  t.raises("CAPFFI_EPERM", w.cstring, w, 0)
  t.eq(refused(m, "CAPFFI_EPERM"), 5, "audited")
  t.eq(tostring(r), "capffi.view(8 bytes, r)", "tostring")
  t.eq(tostring(b:view()), "capffi.view(8 bytes, rw)", "rw by default")
  t.raises("CAPFFI_EINVAL", b.view, b, "read")
  t.raises("CAPFFI_EINVAL", b.view, b, "")
  t.raises("CAPFFI_ETYPE", b.view, b, 1)
  -- native memory: each access needs its right
  local p = tok:pointer_of(b)
  local reader = tok:attenuate{ rights = { "read" } }
  t.eq(#reader:view(p, 8), 8, "a read view")
  t.raises("CAPFFI_EPERM", reader.view, reader, p, 8, "rw")
  local writer = tok:attenuate{ rights = { "write" } }
  t.raises("CAPFFI_EPERM", writer.view, writer, p, 8, "r")
  local wv = writer:view(p, 8, "w")
  wv:set("u8", 7, 9)
  t.eq(b:bytes(8), 9, "written through a token's view")
  wv:free()
  b:unpin()
end)

t.test("cstring", function()
  local v = capffi.buffer("ab\0cd\0"):view("r")
  t.eq(v:cstring(), "ab", "at 0 by default")
  t.eq(v:cstring(3), "cd", "at 3")
  t.eq(v:cstring(2), "", "an empty string")
  t.eq(v:cstring(5), "", "the last byte is the NUL")
  local open = capffi.buffer("abc"):view("r")
  local e = t.raises("CAPFFI_EBOUNDS", open.cstring, open, 0)
  t.says(e, "no NUL")
  t.raises("CAPFFI_EBOUNDS", open.cstring, open, 2)
  t.raises("CAPFFI_EBOUNDS", open.cstring, open, 3)
  t.raises("CAPFFI_EBOUNDS", open.cstring, open, -1)
end)

t.test("pointer_of_pins_and_free_is_deferred", function()
  local b = capffi.buffer("hello")
  local m = mark()
  local p = tok:pointer_of(b)
  t.eq(type(p), "userdata", "a light userdata")
  t.eq(b:pins(), 1, "pinned")
  t.ok(expect(m, { "ptr.of ok buffer of 5 bytes" }, { exact = true }))
  fx.fx_keep(p)
  t.eq(fx.fx_kept_sum(5), 532, "native code reads the bytes")
  b:free()
  t.raises("CAPFFI_ECLOSED", b.tostring, b)
  t.raises("CAPFFI_ECLOSED", b.view, b)
  t.raises("CAPFFI_ECLOSED", tok.pointer_of, tok, b)
  t.eq(tostring(b), "capffi.buffer(freed)", "freed for Lua")
  t.eq(b:pins(), 1, "the pin holds the bytes")
  fx.fx_kept_fill(7, 5)
  t.eq(fx.fx_kept_sum(5), 35, "native code writes them after the free")
  local v = tok:view(p, 5, "r")
  t.eq(v:copy(0, 5), ("\7"):rep(5), "a token's view reads them")
  v:free()
  b:unpin()
  t.eq(b:pins(), 0, "released")
  local e = t.raises("CAPFFI_EINVAL", b.unpin, b)
  t.says(e, "no pin")
  b:free() -- twice is fine
end)

t.test("pins_add_up", function()
  local b = capffi.buffer("abcd")
  local p1, p2 = tok:pointer_of(b), tok:pointer_of(b)
  t.eq(p1, p2, "the same address")
  t.eq(b:pins(), 2, "two pins")
  local view = b:view("r")
  t.eq(b:pins(), 3, "a view holds it too")
  b:unpin()
  b:free()
  t.eq(b:pins(), 2, "one pin and the view after the free")
  t.eq(view:copy(0, 4), "abcd", "the view still reads")
  view:free()
  t.eq(b:pins(), 1, "the last pin")
  fx.fx_keep(p1)
  t.eq(fx.fx_kept_sum(4), 97 + 98 + 99 + 100, "the address is still good")
  b:unpin()
  t.eq(b:pins(), 0, "released")
  t.raises("CAPFFI_EINVAL", b.unpin, b)
  -- unpinning a buffer never pinned
  local c = capffi.buffer(4)
  t.raises("CAPFFI_EINVAL", c.unpin, c)
  local cv = c:view()
  t.raises("CAPFFI_EINVAL", c.unpin, c) -- a view's hold is not a pin
  t.eq(c:pins(), 1, "the view's hold stays")
  cv:free()
  -- an empty buffer gives NULL, pinned all the same
  local empty = capffi.buffer(0)
  t.eq(tok:pointer_of(empty), nil, "nil for an empty buffer")
  t.eq(empty:pins(), 1, "pinned")
  empty:unpin()
  t.raises("CAPFFI_ETYPE", tok.pointer_of, tok, "abc")
  t.raises("CAPFFI_ETYPE", tok.pointer_of, tok, nil)
end)

t.test("pointer_rights_are_refused_without_the_pointer_right", function()
  local b = capffi.buffer(8)
  local narrow = tok:attenuate{ rights = { "dlopen", "read", "write" } }
  local m = mark()
  local e = t.raises("CAPFFI_EPERM", narrow.pointer_of, narrow, b)
  t.says(e, "pointer_of")
  t.eq(b:pins(), 0, "nothing pinned")
  t.ok(expect(m, { "ptr.of EPERM buffer of 8 bytes" }, { exact = true }))
  m = mark()
  t.raises("CAPFFI_EPERM", narrow.pointer_from, narrow, 4096)
  t.ok(expect(m, { "ptr.from_addr EPERM 0x1000" }, { exact = true }))
  -- an unbounded view needs read and pointer
  local g = fx.greeting()
  t.raises("CAPFFI_EPERM", narrow.view, narrow, g, "unbounded")
  local reader = tok:attenuate{ rights = { "read", "pointer" } }
  local u = reader:view(g, "unbounded")
  t.eq(u:cstring(0), "hello from fixture", "a string native code returned")
  t.eq(#u, math.huge, "#v of an unbounded view")
  t.eq(tostring(u), "capffi.view(unbounded, r)", "tostring")
  local len = #u:cstring(0)
  t.eq(u:sub(0, len + 1, "r"):cstring(0), "hello from fixture",
       "then a bounded sub-view")
  t.raises("CAPFFI_EPERM", reader.view, reader, g, "unbounded", "rw")
  t.raises("CAPFFI_EINVAL", reader.view, reader, g, "forever")
  t.raises("CAPFFI_ERANGE", reader.view, reader, g, -1)
  t.raises("CAPFFI_ETYPE", reader.view, reader, "0x1234", 4)
  -- a NULL pointer is refused by capffi, after the token
  m = mark()
  t.raises("CAPFFI_EINVAL", reader.view, reader, nil, 4)
  t.ok(expect(m, { "view.new EINVAL *+4" }, { exact = true }))
end)

t.test("addresses_and_pointer_from", function()
  local b = capffi.buffer(8)
  local p = tok:pointer_of(b)
  local a = capffi.address(p)
  t.eq(math.type(a), "integer", "an integer")
  t.eq(tok:pointer_from(a), p, "round trip")
  t.eq(fx.fx_id_ptr(tok:pointer_from(a)), p, "a pointer argument")
  t.eq(capffi.address(nil), 0, "nil is 0")
  t.eq(tok:pointer_from(0), nil, "0 is nil")
  t.eq(capffi.address(tok:pointer_from(-1)), -1, "the top address")
  t.raises("CAPFFI_ETYPE", capffi.address, 5)
  t.raises("CAPFFI_ETYPE", capffi.address, b)
  t.raises("CAPFFI_ETYPE", tok.pointer_from, tok, "4096")
  t.raises("CAPFFI_ERANGE", tok.pointer_from, tok, 1.5)
  b:unpin()
end)

t.test("revoked_tokens_kill_their_views", function()
  local b = capffi.buffer("revoke me\0")
  local p = tok:pointer_of(b)
  local child = tok:attenuate{ label = "viewer", rights = { "read" } }
  local v = child:view(p, 10)
  local s = v:sub(0, 6)
  t.eq(v:cstring(0), "revoke me", "readable")
  child:revoke()
  local m = a.mark()
  local e = t.raises("CAPFFI_EREVOKED", v.cstring, v, 0)
  t.says(e, "revoked")
  t.raises("CAPFFI_EREVOKED", v.get, v, "u8", 0)
  t.raises("CAPFFI_EREVOKED", v.copy, v, 0, 1)
  t.raises("CAPFFI_EREVOKED", v.copy, v, 0, 100)
  t.raises("CAPFFI_EREVOKED", s.get, s, "u8", 0)
  t.raises("CAPFFI_EREVOKED", v.sub, v, 0, 1)
  t.eq(refused(m, "CAPFFI_EREVOKED"), 6, "audited")
  t.raises("CAPFFI_EREVOKED", child.view, child, p, 10)
  t.raises("CAPFFI_EREVOKED", child.pointer_of, child, b)
  -- views of buffers have no token: revoking nothing touches them
  t.eq(b:view("r"):cstring(0), "revoke me", "the buffer's own view")
  v:free()
  s:free()
  b:unpin()
end)

t.test("freed_views", function()
  local b = capffi.buffer(4)
  local v = b:view()
  v:free()
  t.raises("CAPFFI_ECLOSED", v.get, v, "u8", 0)
  t.raises("CAPFFI_ECLOSED", function() return #v end)
  t.eq(tostring(v), "capffi.view(freed)", "tostring")
  v:free()
  t.eq(b:pins(), 0, "the hold is gone")
  do
    local c <close> = b:view()
    t.eq(b:pins(), 1, "held in the scope")
  end
  t.eq(b:pins(), 0, "released when the variable closed")
  t.raises("CAPFFI_ETYPE", v.get, b, "u8", 0)
  t.raises("CAPFFI_ETYPE", v.free, {})
end)

t.test("churn", function()
  local m = a.mark()
  for i = 1, 300 do
    local b = capffi.buffer(("x"):rep(i % 13 + 1))
    local v = b:view(i % 2 == 0 and "r" or "rw")
    local p = tok:pointer_of(b)
    local nv = tok:view(p, #b, "r")
    t.eq(nv:get("u8", 0), 120, "read")
    if i % 3 == 0 then b:free() end
    if i % 4 == 0 then v:free() end
    if i % 5 == 0 then b:unpin() end
    if i % 50 == 0 then collectgarbage() end
  end
  collectgarbage()
  collectgarbage()
  -- other events come and go with the collector: the number is the point
  t.eq(a.count{ since = m, op = "ptr.of", status = "ok" }, 300, "every pin")
end)

t.done()
