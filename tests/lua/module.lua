-- module.lua: capffi.so loaded by a plain Lua 5.4 interpreter through
-- LUA_CPATH. Its context has no grants: the interpreter has no flags.
local t = require "harness"
local capffi = require "capffi"

local LUA = assert(arg[-1], "run by an interpreter")

t.test("a_plain_interpreter_gets_no_ffi", function()
  t.eq(capffi.permissions.query(), "denied", "query")
  t.eq(capffi.permissions.request(), "denied", "request")
  t.raises("CAPFFI_EPERM", capffi.token)
  t.raises("CAPFFI_EPERM", capffi.dlopen, "libz.so.1", {})
  t.eq(capffi.buffer("x"):tostring(), "x", "buffers work")
end)

t.test("one_context_per_state", function()
  package.loaded.capffi = nil
  t.eq(require "capffi", capffi, "the same module")
  package.loaded.capffi = nil
  package.preload.capffi = nil
  t.eq(require "capffi", capffi, "also through the C searcher")
end)

t.test("finalizers_after_the_context_closes", function()
  -- `keep` is finalized after the module's context (finalizers run in the
  -- reverse order of creation): what it touches must raise, not crash.
  local child = os.tmpname()
  local f = assert(io.open(child, "w"))
  f:write([[
    local keep = setmetatable({}, { __gc = function()
      local ok, e = pcall(buf.tostring, buf)
      print(ok, e.code)
      ok, e = pcall(capffi.permissions.query)
      print(ok, e.code)
      ok, e = pcall(capffi.buffer, 4)
      print(ok, e.code)
    end })
    capffi = require "capffi"
    buf = capffi.buffer(4)
  ]])
  f:close()
  local p = assert(io.popen(("%q %q"):format(LUA, child)))
  local out = p:read("a")
  local ok = p:close()
  os.remove(child)
  t.eq(ok, true, "the interpreter exited normally")
  t.eq(out, ("false\tCAPFFI_ECLOSED\n"):rep(3), "every use raised")
end)

t.done()
