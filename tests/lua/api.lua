-- api.lua: the module's surface, against the fixture library (run with
-- --allow-ffi).
local t = require "harness"
local capffi = require "capffi"

local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")
local a = capffi.audit
-- The fixture's canonical path, as an audit pattern's target.
local FIX = "*/libcapffi_fixture.so"

-- Collected libraries are closed, which is audited: collect only where a
-- test asks, so the audit expectations below are exact.
collectgarbage("stop")

t.test("module_shape", function()
  t.eq(require "capffi", capffi, "require returns the same module")
  t.eq(type(capffi.version), "string", "version")
  for _, name in ipairs{ "token", "dlopen", "buffer", "type", "sizeof",
                         "offsetof", "errno", "resolve", "u64tostring",
                         "u64fromstring", "address", "bytes", "poll",
                         "keepalive" } do
    t.eq(type(capffi[name]), "function", name)
  end
  for _, name in ipairs{ "query", "request", "revoke" } do
    t.eq(type(capffi.permissions[name]), "function", "permissions." .. name)
  end
  for _, name in ipairs{ "count", "events", "jsonl", "dropped", "mark",
                         "expect" } do
    t.eq(type(capffi.audit[name]), "function", "audit." .. name)
  end
end)

t.test("require_again_keeps_the_context", function()
  local tok = capffi.token{ label = "before" }
  package.loaded.capffi = nil
  local again = require "capffi"
  t.eq(again, capffi, "the same module table")
  -- the token verifies in the module's context: it is the same context
  t.eq(again.token{ label = "after" }:info().label, "after", "mint")
  t.eq(tok:info().label, "before", "old token")
end)

t.test("token_info_describes_the_token", function()
  local tok = capffi.token{ label = "info", rights = { "dlopen", "read" },
                            uses = 5, ttl_ms = 60000 }
  local i = tok:info()
  t.eq(i.label, "info", "label")
  t.eq(#i.rights, 2, "rights")
  t.eq(i.rights[1], "dlopen", "right 1")
  t.eq(i.rights[2], "read", "right 2")
  t.eq(i.uses_left, 5, "uses")
  t.ok(i.expires_in_ms > 0 and i.expires_in_ms <= 60000, "expiry")
  t.eq(i.depth, 0, "depth")
  t.eq(i.parent, nil, "parent")
  t.eq(i.revoked, false, "revoked")
  t.eq(i.all_paths, true, "all paths")
  t.ok(i.id:match("^%x+$") and #i.id == 16, "id is 16 hex digits")
  t.ok(tostring(tok):find("info", 1, true), "tostring names the label")
  t.ok(tostring(tok):find(i.id, 1, true), "tostring shows the id")
  local plain = capffi.token()
  t.eq(plain:info().label, "lua", "default label")
  t.eq(#plain:info().rights, 7, "all rights under --allow-ffi")
  t.eq(plain:info().uses_left, nil, "no use limit")
  t.eq(plain:info().expires_in_ms, nil, "no expiry")
end)

t.test("token_equality_is_by_value", function()
  local a = capffi.token{ label = "a" }
  local b = capffi.token{ label = "a" }
  local copy = a
  t.ok(a == copy, "same token")
  t.ok(a ~= b, "two mints differ")
  t.ok(a ~= 1 and a ~= "a", "not equal to other values")
end)

t.test("token_attenuate_narrows", function()
  local parent = capffi.token{ label = "parent" }
  local child = parent:attenuate{ label = "child", rights = { "dlopen" },
                                  paths = { FIXTURE }, uses = 3 }
  local i = child:info()
  t.eq(i.label, "child", "label")
  t.eq(i.parent, parent:info().id, "parent id")
  t.eq(i.depth, 1, "depth")
  t.eq(#i.rights, 1, "rights")
  t.eq(i.all_paths, false, "scoped")
  t.eq(i.n_paths, 1, "one path")
  t.eq(parent:attenuate():info().label, "parent+", "default label")
  -- widening is refused
  local e = t.raises("CAPFFI_EPERM", child.attenuate, child,
                     { rights = { "dlopen", "callback" } })
  t.says(e, "attenuate")
end)

t.test("token_check_counts_a_use", function()
  local tok = capffi.token{ label = "check", rights = { "dlopen" }, uses = 2 }
  t.eq(tok:check({ "dlopen" }, FIXTURE), true, "allowed")
  t.eq(tok:info().uses_left, 1, "one use left")
  t.raises("CAPFFI_EPERM", tok.check, tok, { "read" })
  t.eq(tok:check({ "dlopen" }), true, "last use")
  t.raises("CAPFFI_EREVOKED", tok.check, tok, { "dlopen" })
end)

t.test("token_revoke_cascades", function()
  local parent = capffi.token{ label = "p" }
  local child = parent:attenuate{ label = "c" }
  local lib = child:dlopen(FIXTURE, { add = { name = "fx_add_i32",
                                              sig = "(i32, i32) -> i32" } })
  t.eq(lib.add(2, 3), 5, "works before")
  parent:revoke()
  t.eq(child:info().revoked, true, "child revoked")
  t.raises("CAPFFI_EREVOKED", lib.add, 2, 3)
  t.raises("CAPFFI_EREVOKED", child.dlopen, child, FIXTURE, {})
  parent:revoke() -- twice is fine
end)

t.test("token_close_revokes", function()
  local lib
  do
    local tok <close> = capffi.token{ label = "scoped" }
    lib = tok:dlopen(FIXTURE, { fx_nop = "() -> void" })
    lib.fx_nop()
  end
  t.raises("CAPFFI_EREVOKED", lib.fx_nop)
end)

t.test("token_collected_keeps_its_libraries", function()
  local lib = capffi.token{ label = "dropped" }:dlopen(FIXTURE, {
    fx_add_i32 = "(i32, i32) -> i32" })
  collectgarbage()
  collectgarbage()
  t.eq(lib.fx_add_i32(20, 22), 42, "still callable")
end)

t.test("dlopen_returns_symbols_and_methods", function()
  local tok = capffi.token{ label = "lib" }
  local lib = tok:dlopen(FIXTURE, {
    fx_add_i32 = "(i32, i32) -> i32",
    close = { name = "fx_nop", sig = "() -> void" }, -- shadowed by the method
  })
  t.eq(type(lib.fx_add_i32), "function", "symbol")
  t.eq(type(lib.symbols), "table", "symbols table")
  t.eq(lib.symbols.fx_add_i32, lib.fx_add_i32, "same function")
  t.eq(type(lib.symbols.close), "function", "a symbol named close")
  t.eq(lib.no_such, nil, "unknown name")
  t.ok(lib:path():find("libcapffi_fixture.so", 1, true), "path")
  t.ok(tostring(lib):find(lib:path(), 1, true), "tostring")
  local path = lib:path()
  lib.symbols.close()
  lib:close()
  t.eq(lib:path(), path, "path after close")
  t.eq(tostring(lib), "capffi.library(closed)", "closed")
  t.raises("CAPFFI_ECLOSED", lib.fx_add_i32, 1, 2)
  lib:close() -- twice is fine
end)

t.test("dlopen_deno_style_definitions", function()
  local tok = capffi.token{ label = "deno" }
  local lib = tok:dlopen(FIXTURE, {
    add = { name = "fx_add_i64", parameters = { "i64", "i64" },
            result = "i64" },
    nop = { name = "fx_nop", parameters = {} },
    pi = { name = "fx_pi", type = "f64" },
    missing = { name = "fx_none", parameters = {}, optional = true },
    missing_static = { name = "fx_none_var", type = "i32", optional = true },
  })
  t.eq(lib.add(1 << 40, 2), (1 << 40) + 2, "i64 add")
  t.eq(lib.nop(), nil, "void result")
  t.eq(select("#", lib.nop()), 0, "void returns nothing")
  t.eq(lib.pi, 3.141592653589793, "static")
  t.eq(lib.missing, nil, "optional function")
  t.eq(lib.missing_static, nil, "optional static")
end)

t.test("dlopen_statics", function()
  local lib = capffi.token{ label = "statics" }:dlopen(FIXTURE, {
    fx_counter = { static = "i32" },
    fx_pi = { static = "f64" },
    fx_name = { static = "cstring" },
    fx_bump = "() -> void",
  })
  t.eq(lib.fx_counter, 7, "counter")
  t.eq(lib.fx_name, "fixture", "string")
  lib.fx_bump()
  t.eq(lib.fx_counter, 7, "a static is read once, at dlopen")
end)

t.test("dlopen_failure_closes_the_library", function()
  local tok = capffi.token{ label = "fail" }
  local m = a.mark()
  local e = t.raises("CAPFFI_ENOTFOUND", tok.dlopen, tok, FIXTURE, {
    fx_none = "() -> void" })
  t.says(e, "fx_none")
  t.ok(a.expect(m, { "lib.open ok " .. FIX, "lib.bind ENOTFOUND fx_none",
                     "lib.close ok " .. FIX },
                { ordered = true, exact = true }))
  e = t.raises("CAPFFI_ESIG", tok.dlopen, tok, FIXTURE, {
    fx_nop = "(void) -> void" })
  t.says(e, "fx_nop")
end)

t.test("symbols_live_in_the_library", function()
  local tok = capffi.token{ label = "deps" }
  -- fx_uses_dep's dependency exports fixdep_add: not the fixture's own
  local e = t.raises("CAPFFI_EPERM", tok.dlopen, tok, FIXTURE, {
    fixdep_add = "(i32, i32) -> i32" })
  t.says(e, "fixdep_add")
  local lib = tok:dlopen(FIXTURE, {
    fixdep_add = { sig = "(i32, i32) -> i32", deps = true } })
  t.eq(type(lib.fixdep_add), "function", "allowed with deps = true")
end)

t.test("dlopen_options", function()
  local tok = capffi.token{ label = "opts" }
  local lib = tok:dlopen(FIXTURE, { fx_nop = "() -> void" }, { lazy = true })
  lib.fx_nop()
  local proc = tok:dlopen(nil, { strlen = "(cstring) -> usize" })
  t.eq(proc.strlen("capability"), 10, "process scope")
  t.eq(proc:path(), "", "process scope path")
end)

t.test("ambient_dlopen_under_the_permission", function()
  local m = a.mark()
  local lib = capffi.dlopen(FIXTURE, { fx_add_i32 = "(i32, i32) -> i32" })
  t.eq(lib.fx_add_i32(40, 2), 42, "call")
  t.ok(a.expect(m, { "token.new ok", "lib.open ok " .. FIX,
                     "lib.bind ok fx_add_i32" },
                { ordered = true, exact = true }))
  -- patterns do not see labels
  for _, ev in ipairs(a.events{ since = m }) do
    t.eq(ev.label, "ambient", ev.op .. " through an 'ambient' token")
  end
end)

t.test("buffers", function()
  local b = capffi.buffer(4)
  t.eq(#b, 4, "length")
  t.eq(b:tostring(), "\0\0\0\0", "zero filled")
  t.eq(b:write(2, "hi"), b, "write returns the buffer")
  t.eq(b:tostring(), "\0hi\0", "written")
  t.eq(b:tostring(2, 3), "hi", "sub")
  t.eq(b:tostring(-2), "i\0", "negative start")
  t.eq(b:tostring(3, 100), "i\0", "clamped")
  t.eq(b:tostring(5), "", "past the end")
  t.eq(select("#", b:bytes(1, -1)), 4, "bytes count")
  local x, y = b:bytes(2, 3)
  t.eq(x, 104, "h")
  t.eq(y, 105, "i")
  t.eq(b:bytes(2), 104, "one byte")
  t.ok(tostring(b):find("4 bytes", 1, true), "tostring")
  local s = capffi.buffer("abc")
  t.eq(#s, 3, "from a string")
  t.eq(s:tostring(), "abc", "copied")
  t.eq(#capffi.buffer(0), 0, "empty")
  t.eq(#capffi.buffer(""), 0, "empty string")
  t.raises("CAPFFI_EBOUNDS", b.write, b, 4, "xyz")
  t.raises("CAPFFI_EBOUNDS", b.write, b, 0, "x")
  b:free()
  t.raises("CAPFFI_ECLOSED", b.tostring, b)
  t.raises("CAPFFI_ECLOSED", function() return #b end)
  t.eq(tostring(b), "capffi.buffer(freed)", "freed tostring")
  b:free() -- twice is fine
  do
    local c <close> = capffi.buffer(8)
    b = c
  end
  t.raises("CAPFFI_ECLOSED", b.tostring, b)
end)

t.test("buffers_pass_to_native_code", function()
  local lib = capffi.token{ label = "buf" }:dlopen(FIXTURE, {
    fx_format = "(buffer, usize, cstring, ...: i32, cstring) -> i32",
    fx_strlen = "(buffer) -> usize",
  })
  local out = capffi.buffer(32)
  t.eq(lib.fx_format(out, #out, "%d-%s", 42, "x"), 4, "length")
  t.eq(out:tostring(1, 5), "42-x\0", "written by native code")
  t.eq(lib.fx_strlen(out), 4, "read by native code")
  t.eq(lib.fx_strlen(nil), -1, "nil is NULL (size_t)-1, as an integer")
end)

t.test("named_types", function()
  capffi.type("Pair", "{ a: i32, b: i32 }")
  capffi.type("Outer", "{ tag: i8, in: { s: i16, d: f64 }, tail: i32 }")
  local size, align = capffi.sizeof("Pair")
  t.eq(size, 8, "size")
  t.eq(align, 4, "align")
  t.eq(capffi.sizeof("Outer"), 32, "nested size")
  t.eq(capffi.offsetof("Pair", "b"), 4, "offset")
  t.eq(capffi.offsetof("Outer", "tail"), 24, "offset after a struct")
  t.eq(capffi.sizeof("{ u8, f64 }"), 16, "type expression")
  t.raises("CAPFFI_ENOTFOUND", capffi.offsetof, "Pair", "c")
  t.raises("CAPFFI_EINVAL", capffi.type, "Pair", "{ i8 }")
  t.raises("CAPFFI_ESIG", capffi.type, "Bad", "{ i8")
  local lib = capffi.token{ label = "types" }:dlopen(FIXTURE, {
    fx_pair_make = "(i32, i32) -> Pair",
    fx_pair_sum = "(Pair) -> i32",
  })
  local p = lib.fx_pair_make(3, 4)
  t.eq(#p, 8, "struct result is a string of the size")
  t.eq(lib.fx_pair_sum(p), 7, "passed back")
end)

t.test("errno_capture", function()
  local lib = capffi.token{ label = "errno" }:dlopen(FIXTURE, {
    fx_set_errno = { sig = "(i32) -> i32", errno = true },
  })
  t.eq(lib.fx_set_errno(34), -1, "result")
  t.eq(capffi.errno(), 34, "errno")
  t.eq(lib.fx_set_errno(0), -1, "result")
  t.eq(capffi.errno(), 0, "errno cleared")
end)

t.test("resolve", function()
  local path = capffi.resolve("libcapffi_fixture.so")
  t.ok(path:find("/libcapffi_fixture.so$"), "found on LD_LIBRARY_PATH")
  t.eq(capffi.resolve("./x/y.so"), "./x/y.so", "a path is unchanged")
  t.raises("CAPFFI_ENOTFOUND", capffi.resolve, "libcapffi-none.so.9")
end)

t.test("package_loadlib_under_the_permission", function()
  local f = package.loadlib(FIXTURE, "fx_nop")
  t.eq(type(f), "function", "loaded (and not called: it is no Lua function)")
  t.eq(package.loadlib("/no/such/lib.so", "*"), nil, "a missing file")
end)

t.test("audit_access", function()
  local before = capffi.audit.count("token.new", "ok")
  local m = a.mark()
  capffi.token{ label = "audited" }
  t.ok(a.expect(m, { "token.new ok" }, { exact = true }))
  -- the positional forms of count
  t.eq(capffi.audit.count("token.new", "ok"), before + 1, "count by op")
  t.eq(capffi.audit.count("token.new", 0), before + 1, "status as number")
  t.eq(capffi.audit.count("token.new", "CAPFFI_OK"), before + 1, "by name")
  t.ok(capffi.audit.count() >= capffi.audit.count("token.new"), "any")
  t.ok(capffi.audit.count(nil, nil, FIXTURE) > 0, "by target glob")
  t.eq(capffi.audit.count(nil, nil, "/no/such/*"), 0, "no match")
  -- the fields patterns do not see
  local last = a.events{ since = m }[1]
  t.eq(last.op, "token.new", "op")
  t.eq(last.label, "audited", "label")
  t.eq(last.status, "CAPFFI_OK", "status")
  t.eq(last.reason, "none", "reason")
  t.ok(last.token:match("^%x+$"), "token id")
  t.eq(type(last.rights), "table", "rights list")
  t.ok(last.seq > 1 and last.time_ns > 0, "seq and time")
  local lines = 0
  for line in capffi.audit.jsonl():gmatch("[^\n]+") do
    lines = lines + 1
    t.ok(line:match('^{"seq":%d+,'), "a JSON object per line")
  end
  t.eq(lines, #capffi.audit.events(), "one line per event")
  t.eq(capffi.audit.dropped(), 0, "nothing dropped")
  t.raises("CAPFFI_EINVAL", capffi.audit.count, "no.such.op")
  t.raises("CAPFFI_EINVAL", capffi.audit.count, nil, "CAPFFI_ENOPE")
  t.raises("CAPFFI_ERANGE", capffi.audit.count, nil, 5)
end)

t.done()
