-- noffi.lua: without an --allow-ffi flag a script has no FFI, and no way
-- around capffi to native code (run with no flag).
local t = require "harness"
local capffi = require "capffi"

local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")
local DIR = assert(os.getenv("CAPFFI_FIXTURE_DIR"), "CAPFFI_FIXTURE_DIR unset")
local a = capffi.audit
-- The fixture's canonical path, as an audit pattern's target.
local FIX = "*/libcapffi_fixture.so"

t.test("nothing_is_granted", function()
  -- every event since the runner started (seq 0), so nothing was loaded
  -- before the script either
  local m = 0
  t.eq(capffi.permissions.query(), "denied", "unscoped")
  t.eq(capffi.permissions.query(FIXTURE), "denied", "a file")
  t.eq(capffi.permissions.request(FIXTURE), "denied", "no prompt")
  t.eq(capffi.permissions.query(FIXTURE), "denied", "still")
  local e = t.raises("CAPFFI_EPERM", capffi.token)
  t.says(e, "token")
  t.raises("CAPFFI_EPERM", capffi.dlopen, FIXTURE, {})
  t.raises("CAPFFI_EPERM", capffi.dlopen, "libz.so.1", {})
  t.raises("CAPFFI_EPERM", capffi.dlopen, nil, {})
  -- nothing was loaded: a refused mint is all each dlopen got to
  t.ok(a.expect(m, {
    "perm.query ok", "perm.query ok " .. FIX, "perm.request ok " .. FIX,
    "perm.query ok " .. FIX,
    "token.new EPERM",                     -- capffi.token
    "token.new EPERM", "token.new EPERM",  -- the ambient tokens of dlopen
    "token.new EPERM",
  }, { ordered = true, exact = true }))
end)

t.test("host_memory_needs_no_permission", function()
  local b = capffi.buffer("data")
  t.eq(b:tostring(), "data", "buffer")
  t.eq(capffi.sizeof("{ i32, f64 }"), 16, "types")
end)

t.test("package_loadlib_needs_the_permission", function()
  local m = a.mark()
  local f, msg, where = package.loadlib(FIXTURE, "*")
  t.eq(f, nil, "refused")
  t.ok(msg:find("needs FFI permission", 1, true), "message")
  t.eq(where, "open", "as a failed open")
  -- the permission was asked, and nothing opened
  t.ok(a.expect(m, { "perm.query ok " .. FIX }, { exact = true }))
end)

t.test("c_modules_need_the_permission", function()
  package.cpath = DIR .. "/lib?.so"
  local ok, err = pcall(require, "capffi_fixture")
  t.eq(ok, false, "refused")
  t.ok(tostring(err):find("needs FFI permission", 1, true), "message")
  t.eq(#package.searchers, 3, "no all-in-one searcher")
end)

t.test("binary_chunks_are_refused", function()
  local dumped = string.dump(function() return 1 end)
  local f, msg = load(dumped)
  t.eq(f, nil, "load")
  t.ok(msg:find("binary", 1, true), "message")
  f = load(dumped, "x", "b")
  t.eq(f, nil, "even when asked for")
  local path = os.tmpname()
  local out = assert(io.open(path, "wb"))
  out:write(dumped)
  out:close()
  t.eq((loadfile(path)), nil, "loadfile")
  t.eq(pcall(dofile, path), false, "dofile")
  os.remove(path)
  t.eq(load("return 1 + 1")(), 2, "text still loads")
  local env = { x = 5 }
  t.eq(load("return x", "chunk", "t", env)(), 5, "with an environment")
end)

t.test("debug_is_traceback_only", function()
  t.eq(type(debug.traceback), "function", "traceback")
  t.eq(debug.getupvalue, nil, "getupvalue")
  t.eq(debug.getlocal, nil, "getlocal")
  t.eq(debug.getregistry, nil, "getregistry")
  t.eq(debug.setmetatable, nil, "setmetatable")
  t.eq(require "debug", debug, "require gives the same")
end)

t.done()
