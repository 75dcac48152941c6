-- revocation.lua: a token outlives the permission it was minted from;
-- ambient FFI does not (run with --allow-ffi=FIXTURE_DIR,libz.so.1).
local t = require "harness"
local capffi = require "capffi"

local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")
local perm = capffi.permissions
local a = capffi.audit
collectgarbage("stop") -- keep the audit expectations exact
-- Canonical paths, as audit patterns' targets.
local FIX = "*/libcapffi_fixture.so"
local LIBZ = "*/libz.so.1*"
local LIBC = "*/libc.so.6"

-- A module takes its token first, while the permission is in force.
local start = a.mark()
local module = capffi.token{ label = "module", paths = { FIXTURE } }
local mod_lib = module:dlopen(FIXTURE, { fx_add_i32 = "(i32, i32) -> i32" })
local amb_fx = capffi.dlopen(FIXTURE, { fx_add_i32 = "(i32, i32) -> i32" })
local amb_z = capffi.dlopen("libz.so.1", { zlibVersion = "() -> cstring" })

t.test("the_grants_in_force", function()
  -- each ambient dlopen mints its own token
  t.ok(a.expect(start, {
    "token.new ok", "lib.open ok " .. FIX, "lib.bind ok fx_add_i32",
    "token.new ok", "lib.open ok " .. FIX, "lib.bind ok fx_add_i32",
    "token.new ok", "lib.open ok " .. LIBZ, "lib.bind ok zlibVersion",
  }, { ordered = true, exact = true }))
  local m = a.mark()
  t.eq(perm.query(FIXTURE), "granted", "fixture")
  t.eq(perm.query("libz.so.1"), "granted", "libz by soname")
  t.eq(perm.query(), "denied", "unscoped FFI")
  t.eq(perm.query("libc.so.6"), "denied", "libc")
  t.eq(module:info().n_paths, 1, "the module's token names one file")
  t.eq(amb_fx.fx_add_i32(1, 2), 3, "ambient call")
  t.raises("CAPFFI_EPERM", module.dlopen, module, "libz.so.1", {})
  t.raises("CAPFFI_EPERM", capffi.dlopen, "libc.so.6", {})
  t.raises("CAPFFI_EPERM", capffi.dlopen, nil, {})
  t.ok(a.expect(m, {
    "perm.query ok " .. FIX, "perm.query ok " .. LIBZ, "perm.query ok",
    "perm.query ok " .. LIBC,
    "lib.open EPERM " .. LIBZ,                   -- outside the module's scope
    "token.new ok", "lib.open EPERM " .. LIBC,   -- outside the grants
    "token.new EPERM",                           -- no dlopen_global
  }, { ordered = true, exact = true }))
end)

t.test("revoking_one_path", function()
  local m = a.mark()
  t.eq(perm.revoke(FIXTURE), "denied", "state after")
  -- the withdrawal revokes the ambient token of that file, the one whose
  -- file is still granted stays
  t.ok(a.expect(m, { "perm.revoke ok " .. FIX, "perm.query ok " .. FIX,
                     "token.revoke ok", "perm.query ok " .. LIBZ },
                { exact = true }))
  m = a.mark()
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
  t.ok(a.expect(m, {
    "perm.query ok " .. FIX, "perm.query ok " .. LIBZ,
    "fn.call EREVOKED fx_add_i32",
    "token.new ok", "lib.open EPERM " .. FIX,
    "token.new ok", "lib.open ok " .. LIBZ, "lib.close ok " .. LIBZ,
    "lib.open ok " .. FIX, "lib.bind ok fx_nop",
  }, { ordered = true, exact = true }))
end)

t.test("revoking_everything", function()
  local m = a.mark()
  t.eq(perm.revoke(), "denied", "state after")
  t.ok(a.expect(m, { "perm.revoke ok", "token.revoke ok" }, { exact = true }))
  m = a.mark()
  t.eq(perm.query("libz.so.1"), "denied", "libz")
  t.raises("CAPFFI_EREVOKED", amb_z.zlibVersion)
  local e = t.raises("CAPFFI_EPERM", capffi.token, { label = "late" })
  t.says(e, "token")
  t.raises("CAPFFI_EPERM", capffi.dlopen, "libz.so.1", {})
  t.eq(perm.request(FIXTURE), "denied", "no prompt: a request is denied")
  t.ok(a.expect(m, {
    "perm.query ok " .. LIBZ, "fn.call EREVOKED zlibVersion",
    "token.new EPERM", "token.new EPERM", "perm.request ok " .. FIX,
  }, { ordered = true, exact = true }))
end)

t.test("the_token_survives", function()
  local m = a.mark()
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
  t.ok(a.expect(m, {
    "lib.open ok " .. FIX, "lib.bind ok fx_id_i64",
    "token.attenuate ok", "lib.open ok " .. FIX, "lib.bind ok fx_nop",
    "lib.open EREVOKED " .. FIX,                 -- its one use spent
    "lib.open EPERM " .. LIBZ,
  }, { ordered = true, exact = true }))
end)

t.test("revoking_the_token_cascades", function()
  local child = module:attenuate{ label = "child2" }
  local clib = child:dlopen(FIXTURE, { fx_nop = "() -> void" })
  local m = a.mark()
  module:revoke()
  t.raises("CAPFFI_EREVOKED", mod_lib.fx_add_i32, 1, 1)
  t.raises("CAPFFI_EREVOKED", clib.fx_nop)
  t.raises("CAPFFI_EREVOKED", module.dlopen, module, FIXTURE, {})
  t.eq(child:info().revoked, true, "child")
  -- one event for the revocation and its descendants (its detail counts
  -- them); each function's first refusal is an event at once
  t.ok(a.expect(m, {
    "token.revoke ok", "fn.call EREVOKED fx_add_i32", "fn.call EREVOKED fx_nop",
    "lib.open EREVOKED " .. FIX,
  }, { ordered = true, exact = true }))
  t.eq(a.events{ since = m, op = "token.revoke" }[1].detail,
       "3 token(s) revoked", "the module, child and child2")
end)

t.test("the_audit_trail_tells_the_story", function()
  -- the tests above list every event; here the story in order: two
  -- withdrawals, each revoking ambient tokens and stopping their calls,
  -- mints refused once everything was withdrawn, and the module's token
  -- revoked at last
  t.ok(a.expect(start, {
    "lib.open EPERM " .. LIBC, "token.new EPERM",
    "perm.revoke ok " .. FIX, "token.revoke ok", "fn.call EREVOKED fx_add_i32",
    "perm.revoke ok", "token.revoke ok", "fn.call EREVOKED zlibVersion",
    "token.new EPERM", "token.new EPERM",
    "token.revoke ok", "fn.call EREVOKED fx_add_i32",
  }, { ordered = true }))
  t.eq(a.count{ since = start, op = "perm.revoke" }, 2, "two withdrawals")
  t.eq(a.count{ since = start, op = "token.new", status = "EPERM" }, 3,
       "refused mints")
  -- who opened: patterns do not see labels
  local labels = {}
  for _, ev in ipairs(a.events{ since = start, op = "lib.open",
                                status = "ok" }) do
    labels[ev.label] = (labels[ev.label] or 0) + 1
  end
  t.eq(labels.module, 3, "opened by the module")
  t.eq(labels.ambient, 3, "opened ambiently")
end)

t.done()
