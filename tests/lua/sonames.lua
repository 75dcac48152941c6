-- sonames.lua: a bare soname names the file capffi_lib_open would load,
-- in a token's scope and in tok:check alike (run with --allow-ffi).
local t = require "harness"
local capffi = require "capffi"

local libz = capffi.resolve("libz.so.1")

t.test("check_by_soname", function()
  local all = capffi.token{ label = "all" }
  t.eq(all:check({ "dlopen" }, "libz.so.1"), true, "libz by soname")
  local byname = capffi.token{ label = "libz", paths = { "libz.so.1" } }
  t.eq(byname:check({ "dlopen" }, "libz.so.1"), true, "in scope by soname")
  t.eq(byname:check({ "dlopen" }, libz), true, "in scope by path")
  local e = t.raises("CAPFFI_EPERM", byname.check, byname, { "dlopen" },
                     "libm.so.6")
  t.says(e, "not in the scope")
end)

t.test("scope_by_soname_is_the_file", function()
  local tok = capffi.token{ paths = { "libz.so.1" } }
  t.eq(tok:info().n_paths, 1, "one file")
  local z = tok:dlopen("libz.so.1", { zlibVersion = "() -> cstring" })
  t.ok(z.zlibVersion():match("^%d+%.%d+"), "opened by soname")
  z:close()
  tok:dlopen(libz, {}):close()
  t.raises("CAPFFI_EPERM", tok.dlopen, tok, "libm.so.6", {})
  local child = tok:attenuate{ paths = { "libz.so.1" } }
  t.eq(child:check({ "dlopen" }, "libz.so.1"), true, "attenuated by soname")
  t.raises("CAPFFI_EPERM", tok.attenuate, tok, { paths = { "libm.so.6" } })
end)

t.test("unknown_soname_is_not_found", function()
  local tok = capffi.token{ label = "all" }
  local e = t.raises("CAPFFI_ENOTFOUND", tok.check, tok, { "dlopen" },
                     "libcapffi-no-such-lib.so.9")
  t.says(e, "libcapffi-no-such-lib.so.9")
  e = t.raises("CAPFFI_ENOTFOUND", capffi.token,
               { paths = { "libcapffi-no-such-lib.so.9" } })
  t.says(e, "libcapffi-no-such-lib.so.9")
end)

t.done()
