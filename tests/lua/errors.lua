-- errors.lua: bad input from Lua code is a Lua error carrying a capffi
-- code, never a crash (run with --allow-ffi).
local t = require "harness"
local capffi = require "capffi"

local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")
local tok = capffi.token{ label = "errors" }
local fx = tok:dlopen(FIXTURE, {
  fx_add_i32 = "(i32, i32) -> i32",
  fx_nop = "() -> void",
  fx_id_bool = "(bool) -> bool",
  fx_id_f64 = "(f64) -> f64",
  fx_id_ptr = "(pointer) -> pointer",
  fx_strlen = "(cstring) -> usize",
  fx_pair_sum = "({ i32, i32 }) -> i32",
  buf_strlen = { name = "fx_strlen", sig = "(buffer) -> usize" },
})

t.test("error_objects", function()
  local ok, e = pcall(fx.fx_add_i32, 1)
  t.eq(ok, false, "failed")
  t.eq(type(e), "table", "a table")
  t.eq(e.code, "CAPFFI_EINVAL", "code")
  t.eq(e.status, -1, "status")
  t.eq(e.message, "fx_add_i32: expected 2 arguments, got 1", "message")
  t.eq(tostring(e), "CAPFFI_EINVAL: " .. e.message, "tostring")
  t.eq(getmetatable(e), "capffi.error", "locked metatable")
end)

t.test("wrong_argument_counts", function()
  t.raises("CAPFFI_EINVAL", fx.fx_add_i32)
  t.raises("CAPFFI_EINVAL", fx.fx_add_i32, 1, 2, 3)
  t.raises("CAPFFI_EINVAL", fx.fx_nop, 1)
  t.raises("CAPFFI_EINVAL", fx.fx_nop, nil)
end)

t.test("wrong_argument_types", function()
  for _, bad in ipairs{ "1", {}, true, fx.fx_nop, capffi.buffer(1) } do
    t.raises("CAPFFI_ETYPE", fx.fx_add_i32, 1, bad)
  end
  t.raises("CAPFFI_ETYPE", fx.fx_add_i32, nil, 1)
  t.raises("CAPFFI_ETYPE", fx.fx_id_bool, 0)
  t.raises("CAPFFI_ETYPE", fx.fx_id_bool, "true")
  t.raises("CAPFFI_ETYPE", fx.fx_id_f64, "1")
  t.raises("CAPFFI_ETYPE", fx.fx_id_f64, nil)
  -- only pointers that came from native code pass as pointers
  t.raises("CAPFFI_ETYPE", fx.fx_id_ptr, 0x1000)
  t.raises("CAPFFI_ETYPE", fx.fx_id_ptr, "0x1000")
  t.raises("CAPFFI_ETYPE", fx.fx_id_ptr, capffi.buffer(8))
  t.raises("CAPFFI_ETYPE", fx.fx_id_ptr, tok)
  -- numbers are not strings, strings are not buffers
  t.raises("CAPFFI_ETYPE", fx.fx_strlen, 42)
  t.raises("CAPFFI_ETYPE", fx.fx_strlen, {})
  t.raises("CAPFFI_ETYPE", fx.buf_strlen, "text")
  t.raises("CAPFFI_ETYPE", fx.buf_strlen, 0)
  t.raises("CAPFFI_ETYPE", fx.fx_pair_sum, 5)
  t.raises("CAPFFI_ETYPE", fx.fx_pair_sum, "short")
  local e = t.raises("CAPFFI_EINVAL", fx.fx_strlen, "a\0b")
  t.says(e, "NUL byte")
end)

t.test("out_of_range", function()
  local e = t.raises("CAPFFI_ERANGE", fx.fx_add_i32, 2 ^ 31, 0)
  t.says(e, "argument 1 (i32)")
  t.raises("CAPFFI_ERANGE", fx.fx_add_i32, 0, -2 ^ 31 - 1)
  t.raises("CAPFFI_ERANGE", fx.fx_add_i32, 0, math.maxinteger)
  t.raises("CAPFFI_ERANGE", fx.fx_add_i32, 0.5, 0)
end)

t.test("closed_library", function()
  local lib = tok:dlopen(FIXTURE, { fx_add_i32 = "(i32, i32) -> i32" })
  local add = lib.fx_add_i32
  lib:close()
  local e = t.raises("CAPFFI_ECLOSED", add, 1, 2)
  t.says(e, "fx_add_i32")
  t.raises("CAPFFI_ECLOSED", lib.fx_add_i32, 1, 2)
  -- checks of the arguments come first
  t.raises("CAPFFI_EINVAL", add, 1)
end)

t.test("revoked_token", function()
  local mine = capffi.token{ label = "to-revoke" }
  local lib = mine:dlopen(FIXTURE, { fx_nop = "() -> void" })
  mine:revoke()
  t.raises("CAPFFI_EREVOKED", lib.fx_nop)
  t.raises("CAPFFI_EREVOKED", mine.dlopen, mine, FIXTURE, {})
  t.raises("CAPFFI_EREVOKED", mine.attenuate, mine)
  t.raises("CAPFFI_EREVOKED", mine.check, mine, { "dlopen" })
  t.eq(mine:info().revoked, true, "info still describes it")
  mine:revoke()
end)

t.test("expired_and_used_up_tokens", function()
  local once = capffi.token{ label = "once", uses = 1 }
  local lib = once:dlopen(FIXTURE, { fx_nop = "() -> void" })
  t.raises("CAPFFI_EREVOKED", once.dlopen, once, FIXTURE, {})
  lib.fx_nop() -- made before the budget ran out: still callable
end)

t.test("bad_token_options", function()
  t.raises("CAPFFI_ETYPE", capffi.token, "label")
  t.raises("CAPFFI_EINVAL", capffi.token, { labl = "typo" })
  t.raises("CAPFFI_EINVAL", capffi.token, { [1] = "x" })
  t.raises("CAPFFI_EINVAL", capffi.token, { rights = {} })
  t.raises("CAPFFI_EINVAL", capffi.token, { rights = { "fly" } })
  t.raises("CAPFFI_ETYPE", capffi.token, { rights = "dlopen" })
  t.raises("CAPFFI_ETYPE", capffi.token, { rights = { 1 } })
  t.raises("CAPFFI_ERANGE", capffi.token, { uses = 0 })
  t.raises("CAPFFI_ERANGE", capffi.token, { uses = 1.5 })
  t.raises("CAPFFI_ETYPE", capffi.token, { ttl_ms = "1" })
  t.raises("CAPFFI_ERANGE", capffi.token, { ttl_ms = -1 })
  t.raises("CAPFFI_ETYPE", capffi.token, { label = 5 })
  t.raises("CAPFFI_EINVAL", capffi.token, { label = "" })
  t.raises("CAPFFI_EINVAL", capffi.token, { label = ("x"):rep(64) })
  t.raises("CAPFFI_EINVAL", capffi.token, { label = "tab\there" })
  t.raises("CAPFFI_EINVAL", capffi.token, { paths = {} })
  t.raises("CAPFFI_ETYPE", capffi.token, { paths = FIXTURE })
  t.raises("CAPFFI_ENOTFOUND", capffi.token, { paths = { "/no/such/lib.so" } })
  t.raises("CAPFFI_ENOTFOUND", capffi.token, { paths = { "libnone.so.9" } })
end)

t.test("bad_dlopen_arguments", function()
  t.raises("CAPFFI_ETYPE", tok.dlopen, tok, 42, {})
  t.raises("CAPFFI_ETYPE", tok.dlopen, tok, FIXTURE, "fx_nop")
  t.raises("CAPFFI_EINVAL", tok.dlopen, tok, FIXTURE, { "() -> void" })
  t.raises("CAPFFI_ETYPE", tok.dlopen, tok, FIXTURE, { fx_nop = 5 })
  t.raises("CAPFFI_EINVAL", tok.dlopen, tok, FIXTURE,
           { fx_nop = { sig = "() -> void", optinal = true } })
  t.raises("CAPFFI_EINVAL", tok.dlopen, tok, FIXTURE, { fx_nop = {} })
  t.raises("CAPFFI_ETYPE", tok.dlopen, tok, FIXTURE,
           { fx_nop = { sig = "() -> void", errno = "yes" } })
  t.raises("CAPFFI_ETYPE", tok.dlopen, tok, FIXTURE,
           { fx_nop = { parameters = "i32" } })
  t.raises("CAPFFI_EINVAL", tok.dlopen, tok, FIXTURE, {}, { lazzy = true })
  t.raises("CAPFFI_ETYPE", tok.dlopen, tok, FIXTURE, {}, 1)
  t.raises("CAPFFI_ENOTFOUND", tok.dlopen, tok, "/no/such/lib.so", {})
  t.raises("CAPFFI_EDLOPEN", tok.dlopen, tok, "/etc/hostname", {})
  t.raises("CAPFFI_ESIG", tok.dlopen, tok, FIXTURE, { fx_nop = "(" })
  t.raises("CAPFFI_ESIG", tok.dlopen, tok, FIXTURE,
           { fx_nop = { static = "{ i32 }" } })
end)

t.test("methods_on_the_wrong_object", function()
  local b = capffi.buffer(4)
  local lib = tok:dlopen(FIXTURE, {})
  t.raises("CAPFFI_ETYPE", tok.info, b)
  t.raises("CAPFFI_ETYPE", tok.info, {})
  t.raises("CAPFFI_ETYPE", tok.dlopen, nil, FIXTURE, {})
  t.raises("CAPFFI_ETYPE", b.tostring, tok)
  t.raises("CAPFFI_ETYPE", b.free, lib)
  t.raises("CAPFFI_ETYPE", lib.close, b)
  t.raises("CAPFFI_ETYPE", lib.path, 5)
  t.raises("CAPFFI_ETYPE", b.write, b, 1, 5)
  t.raises("CAPFFI_ETYPE", b.tostring, b, "1")
end)

t.test("bad_buffer_arguments", function()
  t.raises("CAPFFI_ERANGE", capffi.buffer, -1)
  t.raises("CAPFFI_ERANGE", capffi.buffer, 1.5)
  t.raises("CAPFFI_ETYPE", capffi.buffer, {})
  t.raises("CAPFFI_ETYPE", capffi.buffer)
end)

t.test("bad_numbers_and_types", function()
  t.raises("CAPFFI_ERANGE", capffi.u64fromstring, "18446744073709551616")
  t.raises("CAPFFI_EINVAL", capffi.u64fromstring, "12a")
  t.raises("CAPFFI_EINVAL", capffi.u64fromstring, "-1")
  t.raises("CAPFFI_EINVAL", capffi.u64fromstring, "")
  t.raises("CAPFFI_ETYPE", capffi.u64fromstring, 12)
  t.raises("CAPFFI_ERANGE", capffi.u64tostring, 0.5)
  t.raises("CAPFFI_ETYPE", capffi.sizeof, nil)
  t.raises("CAPFFI_ESIG", capffi.sizeof, "{ i32")
  t.raises("CAPFFI_ETYPE", capffi.type, "X")
end)

t.test("bad_permission_descriptors", function()
  t.raises("CAPFFI_EINVAL", capffi.permissions.query, { name = "net" })
  t.raises("CAPFFI_EINVAL", capffi.permissions.query, { nam = "ffi" })
  t.raises("CAPFFI_ETYPE", capffi.permissions.query, 5)
  t.raises("CAPFFI_ENOTFOUND", capffi.permissions.query, "/no/such/file")
  t.eq(capffi.permissions.query{ name = "ffi" }, "granted", "descriptor")
  t.eq(capffi.permissions.query{ name = "ffi", path = FIXTURE }, "granted",
       "descriptor with a path")
end)

t.test("metatables_are_locked", function()
  t.eq(getmetatable(tok), "capffi.token", "token")
  t.eq(getmetatable(capffi.buffer(1)), "capffi.buffer", "buffer")
  t.eq(getmetatable(fx), "capffi.library", "library")
end)


-- The errors a script meets most say what to do, in the binding's terms.
t.test("friendly_messages", function()
  -- a symbol of a dependency: the Lua option, not the C flag
  local e = t.raises("CAPFFI_EPERM", tok.dlopen, tok, FIXTURE, {
    fixdep_add = "(i32, i32) -> i32" })
  t.says(e, "fixdep_add: symbol 'fixdep_add' lives in")
  t.says(e, "bind with deps = true")
  t.ok(not e.message:find("CAPFFI_FN_DEPS", 1, true), e.message)
  -- a plain Lua function for a function parameter: make a callback
  local cb = tok:dlopen(FIXTURE, { fx_call_twice = "(function, i32) -> i32" })
  e = t.raises("CAPFFI_ETYPE", cb.fx_call_twice, function(x) return x end, 1)
  t.eq(e.message, 'fx_call_twice: argument 1 (function): got a Lua '
    .. 'function; native code calls a callback: pass '
    .. 'tok:callback("(params) -> result", fn) instead', "callback hint")
  e = t.raises("CAPFFI_ETYPE", cb.fx_call_twice, {}, 1)
  t.says(e, "expected a callback, a bound function or nil, got table")
  -- nil for a cstring: an error, never NULL (strlen(NULL) would crash)
  e = t.raises("CAPFFI_ETYPE", fx.fx_strlen, nil)
  t.eq(e.message, "fx_strlen: argument 1 (cstring): expected a string, got "
    .. "nil (native code reads a cstring, so it is never NULL: pass a string)",
    "cstring nil")
  e = t.raises("CAPFFI_ETYPE", fx.fx_strlen, 1)
  t.says(e, "fx_strlen: argument 1 (cstring): expected a string, got ")
  local libc = tok:dlopen(nil, { strlen = "(cstring) -> usize" })
  t.says(t.raises("CAPFFI_ETYPE", libc.strlen, nil), "never NULL")
  t.eq(libc.strlen("four"), 4, "a string still passes")
  t.says(t.raises("CAPFFI_ETYPE", function()
    return libc.strlen:async(nil):wait()
  end), "never NULL")
end)

t.done()
