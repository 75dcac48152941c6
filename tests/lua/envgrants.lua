-- envgrants.lua: capffi.so in the stock lua5.4, granted by its launcher
-- through CAPFFI_ALLOW_FFI and CAPFFI_DENY_FFI. meson runs this script
-- with CAPFFI_ALLOW_FFI=libm.so.6; the other cases are child interpreters
-- started with other values.
local t = require "harness"
local capffi = require "capffi"

local LUA = assert(arg[-1], "run by an interpreter")
local SIG = { cos = "(f64) -> f64" }

-- A child lua5.4 with `env` (a shell prefix such as
-- "CAPFFI_ALLOW_FFI= ") running code; returns its output (stdout and
-- stderr) and whether it exited with status 0.
local function child(env, code)
  local cmd = ("env -u CAPFFI_ALLOW_FFI -u CAPFFI_DENY_FFI %s%s -e %s 2>&1")
    :format(env, t.shq(LUA), t.shq(code))
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  return out, p:close() == true
end

local BIND = [[
  local capffi = require "capffi"
  local ok, e = pcall(function()
    return capffi.token():dlopen("libm.so.6", { cos = "(f64) -> f64" })
  end)
  print(ok and ("cos " .. e.cos(0)) or e.code)
]]

t.test("the_launcher_grants_a_soname", function()
  local m = capffi.token():dlopen("libm.so.6", SIG)
  t.eq(m.cos(0), 1.0, "cos 0")
  t.eq(capffi.permissions.query("libm.so.6"), "granted", "query libm")
end)

t.test("what_is_not_granted_stays_refused", function()
  t.eq(capffi.permissions.query(), "denied", "unscoped FFI")
  local e = t.raises("CAPFFI_EPERM", function()
    return capffi.token():dlopen("libz.so.1", {})
  end)
  t.says(e, "libz.so")
end)

t.test("a_script_cannot_widen_its_grants", function()
  package.loaded.capffi = nil
  package.preload.capffi = nil
  t.eq(require "capffi", capffi, "require again: the same module")
  t.eq(capffi.permissions.query(), "denied", "still not everything")
end)

t.test("without_the_variable_every_token_is_refused", function()
  local out, ok = child("", BIND)
  t.eq(out, "CAPFFI_EPERM\n", "output")
  t.ok(ok, "exit status 0")
end)

t.test("an_empty_allow_grants_everything", function()
  local out, ok = child("CAPFFI_ALLOW_FFI= ", BIND)
  t.eq(out, "cos 1.0\n", "output")
  t.ok(ok, "exit status 0")
end)

t.test("deny_wins_over_allow", function()
  local out = child("CAPFFI_ALLOW_FFI= CAPFFI_DENY_FFI=libm.so.6 ", BIND)
  t.eq(out, "CAPFFI_EPERM\n", "output")
end)

t.test("bad_values_fail_the_require", function()
  local cases = {
    { "CAPFFI_ALLOW_FFI=/nonexistent/libx.so ",
      "CAPFFI_ENOTFOUND: CAPFFI_ALLOW_FFI: cannot resolve "
        .. "'/nonexistent/libx.so'" },
    { "CAPFFI_ALLOW_FFI=libcapffi-none.so.9 ",
      "CAPFFI_ENOTFOUND: CAPFFI_ALLOW_FFI: soname 'libcapffi-none.so.9'" },
    { "CAPFFI_ALLOW_FFI=libm.so.6,, ",
      "CAPFFI_EINVAL: CAPFFI_ALLOW_FFI: empty or overlong path in "
        .. "'libm.so.6,,'" },
    { "CAPFFI_ALLOW_FFI= CAPFFI_DENY_FFI= ",
      "CAPFFI_EINVAL: CAPFFI_DENY_FFI: empty or overlong path in ''" },
  }
  for _, c in ipairs(cases) do
    local out, ok = child(c[1], BIND)
    t.ok(not ok, c[1] .. "fails")
    t.ok(out:find(c[2], 1, true), ("%s: %q lacks %q"):format(c[1], out, c[2]))
    t.ok(not out:find("cos 1.0", 1, true), c[1] .. "no call")
  end
end)

t.done()
