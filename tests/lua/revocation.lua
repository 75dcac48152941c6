-- revocation.lua: a token outlives the permission it was minted from;
-- ambient FFI does not (run with --allow-ffi=FIXTURE_DIR,libz.so.1).
local t = require "harness"
local capffi = require "capffi"

local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")
local perm = capffi.permissions
collectgarbage("stop") -- keep the audit counts exact

-- A module takes its token first, while the permission is in force.
local module = capffi.token{ label = "module", paths = { FIXTURE } }
local mod_lib = module:dlopen(FIXTURE, { fx_add_i32 = "(i32, i32) -> i32" })
local amb_fx = capffi.dlopen(FIXTURE, { fx_add_i32 = "(i32, i32) -> i32" })
local amb_z = capffi.dlopen("libz.so.1", { zlibVersion = "() -> cstring" })

t.test("the_grants_in_force", function()
  t.eq(perm.query(FIXTURE), "granted", "fixture")
  t.eq(perm.query("libz.so.1"), "granted", "libz by soname")
  t.eq(perm.query(), "denied", "unscoped FFI")
  t.eq(perm.query("libc.so.6"), "denied", "libc")
  t.eq(module:info().n_paths, 1, "the module's token names one file")
  t.eq(amb_fx.fx_add_i32(1, 2), 3, "ambient call")
  t.raises("CAPFFI_EPERM", module.dlopen, module, "libz.so.1", {})
  t.raises("CAPFFI_EPERM", capffi.dlopen, "libc.so.6", {})
  t.raises("CAPFFI_EPERM", capffi.dlopen, nil, {})
end)

t.test("revoking_one_path", function()
  t.eq(perm.revoke(FIXTURE), "denied", "state after")
  t.eq(perm.query(FIXTURE), "denied", "query")
  t.eq(perm.query("libz.so.1"), "granted", "the other grant stays")
  -- the ambient library of that file is revoked, the other is not
  t.raises("CAPFFI_EREVOKED", amb_fx.fx_add_i32, 1, 2)
  t.eq(type(amb_z.zlibVersion()), "string", "libz still works")
  t.raises("CAPFFI_EPERM", capffi.dlopen, FIXTURE, {})
  capffi.dlopen("libz.so.1", {}):close()
  -- the token still holds what it was minted with
  t.eq(mod_lib.fx_add_i32(2, 3), 5, "the module's library")
  local again = module:dlopen(FIXTURE, { fx_nop = "() -> void" })
  again.fx_nop()
end)

t.test("revoking_everything", function()
  t.eq(perm.revoke(), "denied", "state after")
  t.eq(perm.query("libz.so.1"), "denied", "libz")
  t.raises("CAPFFI_EREVOKED", amb_z.zlibVersion)
  local e = t.raises("CAPFFI_EPERM", capffi.token, { label = "late" })
  t.says(e, "token")
  t.raises("CAPFFI_EPERM", capffi.dlopen, "libz.so.1", {})
  t.eq(perm.request(FIXTURE), "denied", "no prompt: a request is denied")
end)

t.test("the_token_survives", function()
  t.eq(mod_lib.fx_add_i32(20, 22), 42, "bound before")
  local lib = module:dlopen(FIXTURE, { fx_id_i64 = "(i64) -> i64" })
  t.eq(lib.fx_id_i64(math.maxinteger), math.maxinteger, "bound after")
  -- narrowing needs no permission
  local child = module:attenuate{ label = "child", uses = 1 }
  local clib = child:dlopen(FIXTURE, { fx_nop = "() -> void" })
  clib.fx_nop()
  t.raises("CAPFFI_EREVOKED", child.dlopen, child, FIXTURE, {})
  -- still only its own scope
  t.raises("CAPFFI_EPERM", module.dlopen, module, "libz.so.1", {})
end)

t.test("revoking_the_token_cascades", function()
  local child = module:attenuate{ label = "child2" }
  local clib = child:dlopen(FIXTURE, { fx_nop = "() -> void" })
  module:revoke()
  t.raises("CAPFFI_EREVOKED", mod_lib.fx_add_i32, 1, 1)
  t.raises("CAPFFI_EREVOKED", clib.fx_nop)
  t.raises("CAPFFI_EREVOKED", module.dlopen, module, FIXTURE, {})
  t.eq(child:info().revoked, true, "child")
end)

t.test("the_audit_trail_tells_the_story", function()
  local a = capffi.audit
  t.eq(a.count("perm.revoke"), 2, "two withdrawals")
  -- refused mints: capffi.dlopen(nil) at first (no dlopen_global), then
  -- capffi.token and capffi.dlopen after everything was withdrawn
  t.eq(a.count("token.new", "CAPFFI_EPERM"), 3, "refused mints")
  t.ok(a.count("token.revoke", "ok") >= 3, "ambient and module revocations")
  t.ok(a.count("lib.open", "CAPFFI_EPERM", "*libc.so.6") >= 1, "libc refused")
  local labels = {}
  for _, ev in ipairs(a.events()) do
    if ev.op == "lib.open" and ev.status == "CAPFFI_OK" then
      labels[ev.label] = (labels[ev.label] or 0) + 1
    end
  end
  t.ok(labels.module >= 3, "opened by the module")
  t.ok(labels.ambient >= 3, "opened ambiently")
end)

t.done()
