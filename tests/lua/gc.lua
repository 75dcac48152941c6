-- gc.lua: userdata lifetimes under the collector (run with --allow-ffi).
local t = require "harness"
local capffi = require "capffi"

local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")
local tok = capffi.token{ label = "gc" }
local a = capffi.audit
-- The fixture's canonical path, as an audit pattern's target.
local FIX = "*/libcapffi_fixture.so"

local function full_gc()
  collectgarbage()
  collectgarbage()
end

t.test("dropped_libraries_are_closed", function()
  full_gc()
  local m = a.mark()
  for _ = 1, 50 do
    local lib = tok:dlopen(FIXTURE, { fx_add_i32 = "(i32, i32) -> i32" })
    t.eq(lib.fx_add_i32(1, 2), 3, "call")
  end
  full_gc()
  -- each closed once, whenever the collector got to it
  local want = {}
  for _ = 1, 50 do
    want[#want + 1] = "lib.open ok " .. FIX
    want[#want + 1] = "lib.bind ok fx_add_i32"
    want[#want + 1] = "lib.close ok " .. FIX
  end
  t.ok(a.expect(m, want, { exact = true }))
end)

t.test("a_function_keeps_its_library", function()
  local add = tok:dlopen(FIXTURE, { fx_add_i32 = "(i32, i32) -> i32" })
              .fx_add_i32
  local syms = tok:dlopen(FIXTURE, { fx_nop = "() -> void" }).symbols
  local m = a.mark()
  full_gc()
  t.ok(a.expect(m, {}, { exact = true })) -- neither library closed
  t.eq(add(40, 2), 42, "callable")
  syms.fx_nop()
  add, syms = nil, nil
  full_gc()
  -- closed once unreachable
  t.ok(a.expect(m, { "lib.close ok " .. FIX, "lib.close ok " .. FIX },
                { exact = true }))
end)

t.test("churn", function()
  for i = 1, 300 do
    local child = tok:attenuate{ label = "churn", uses = 2 }
    local lib = child:dlopen(FIXTURE, {
      fx_strlen = "(buffer) -> usize",
      fx_pi = { static = "f64" },
    })
    local b = capffi.buffer(("x"):rep(i % 17) .. "\0")
    t.eq(lib.fx_strlen(b), i % 17, "strlen")
    if i % 3 == 0 then lib:close() end
    if i % 5 == 0 then b:free() end
    if i % 7 == 0 then child:revoke() end
    if i % 50 == 0 then full_gc() end
  end
  full_gc()
end)

t.test("closed_objects_stay_safe_after_collection", function()
  local lib = tok:dlopen(FIXTURE, { fx_nop = "() -> void" })
  local nop = lib.fx_nop
  lib:close()
  lib = nil
  full_gc()
  t.raises("CAPFFI_ECLOSED", nop)
  local b = capffi.buffer(4)
  b:free()
  full_gc()
  t.raises("CAPFFI_ECLOSED", b.tostring, b)
end)

t.done()
