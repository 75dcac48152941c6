-- loadlib_swap.lua: package.loadlib loads the file it checked (H4).
--
-- Run with --allow-ffi=FIXTURE and loadlib_flip.so preloaded: the link
-- CAPFFI_FLIP_LINK names the fixture (granted) when the runner looks at
-- it, and is flipped to libcapffi_ctor.so (not granted) inside every
-- dlopen, just before the loader opens it. A runner that checks the name
-- and then loads the name loads the ctor library; it must never.
local t = require "harness"

local LINK = assert(os.getenv("CAPFFI_FLIP_LINK"), "CAPFFI_FLIP_LINK unset")
local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")
local CTOR = assert(os.getenv("CAPFFI_CTOR"), "CAPFFI_CTOR unset")

local function mapped(path)
  local f = assert(io.open("/proc/self/maps"))
  local maps = f:read("a")
  f:close()
  return maps:find(path, 1, true) ~= nil
end

local TRIES = 50

t.test("loadlib_loads_the_file_it_checked", function()
  local capffi = require "capffi"
  t.eq(capffi.permissions.query(LINK), "granted", "the link names the fixture")
  t.eq(capffi.permissions.query(CTOR), "denied", "the ctor library")
  for i = 1, TRIES do
    -- ctor_loaded exists only in the ctor library, fx_nop only in the
    -- fixture.
    local f = package.loadlib(LINK, "ctor_loaded")
    t.eq(f, nil, "ctor_loaded found, try " .. i)
    t.ok(not mapped(CTOR), "the ctor library was loaded, try " .. i)
    f = package.loadlib(LINK, "fx_nop")
    t.eq(type(f), "function", "the fixture's function, try " .. i)
  end
  t.ok(mapped(FIXTURE), "the fixture is loaded")
end)

t.test("require_loads_the_file_it_checked", function()
  -- The C searcher goes through the same loadlib: a module whose file
  -- is the link gets the fixture's luaopen_ function or nothing.
  package.cpath = LINK:gsub("[^/]+$", "?.so")
  local name = LINK:match("([^/]+)%.so$")
  local ok, err = pcall(require, name)
  t.eq(ok, false, "no luaopen_ function in either file")
  t.ok(tostring(err):find("luaopen_", 1, true), tostring(err))
  t.ok(not mapped(CTOR), "the ctor library was loaded")
end)

t.done()
