-- holes.lua: the attacks of THREATS.md H1, H2, H3 and H7, each as a
-- script would try it (run with --allow-ffi; also in the security suite,
-- so the valgrind run watches the native writes of H2).
local t = require "harness"
local capffi = require "capffi"

local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")

-- H1: a token scoped to libz reached libc's system, dlopen and dlsym by
-- asking for dependency symbols.
t.test("deps_reach_only_files_in_the_token_scope", function()
  local z = capffi.token{ label = "z", paths = { "libz.so.1" },
                          rights = { "dlopen" } }
  local a = capffi.audit
  collectgarbage("stop") -- what the collector closes would be audited
  local m = a.mark()
  for _, name in ipairs{ "system", "dlopen", "dlsym" } do
    local e = t.raises("CAPFFI_EPERM", z.dlopen, z, "libz.so.1", {
      [name] = { sig = "(pointer) -> pointer", deps = true },
    })
    t.says(e, "libc.so")
    t.says(e, "not in the scope")
  end
  local lib = z:dlopen("libz.so.1", {
    zlibVersion = { sig = "() -> cstring", deps = true },
  })
  t.ok(lib.zlibVersion():match("^1%."), "libz's own symbols still bind")
  collectgarbage("restart")
  -- Each refusal is in the audit trail, and the library is closed again.
  local LIBZ = "*/libz.so.1*"
  local want = {}
  for _, name in ipairs{ "system", "dlopen", "dlsym" } do
    want[#want + 1] = "lib.open ok " .. LIBZ
    want[#want + 1] = "lib.bind EPERM " .. name
    want[#want + 1] = "lib.close ok " .. LIBZ
  end
  want[#want + 1] = "lib.open ok " .. LIBZ
  want[#want + 1] = "lib.bind ok zlibVersion"
  t.ok(a.expect(m, want, { ordered = true, exact = true }))
  -- naming libc, which patterns do not see
  for _, ev in ipairs(a.events{ since = m, op = "lib.bind", status = "EPERM" }) do
    t.ok(ev.detail:find("libc.so", 1, true), ev.target .. ": names libc")
  end
end)

-- H2: a handler freed a buffer that the running native call then wrote
-- into (sqlite3_exec's error message: fx_fill_after has its shape, and
-- frees nothing it would have to give back). The bytes stay until the
-- call returns; the valgrind and AddressSanitizer runs see a late write.
t.test("a_buffer_freed_by_a_handler_outlives_the_call", function()
  local tok = capffi.token{ label = "h2" }
  local fx = tok:dlopen(FIXTURE, {
    fx_fill_after = "(function, buffer, usize, u8) -> void",
  })
  local buf = capffi.buffer(4096)
  local freed
  local cb <close> = tok:callback("() -> void", function()
    buf:free()
    freed = true
  end)
  fx.fx_fill_after(cb, buf, 4096, 0x5a)
  t.ok(freed, "the handler ran and freed the buffer")
  t.raises("CAPFFI_ECLOSED", buf.tostring, buf)
end)

-- H3: an integer became a pointer through a buffer the script filled.
t.test("no_pointer_without_the_pointer_right", function()
  local v = capffi.buffer(8):view()
  v:set("u64", 0, 0x7fffdeadbeef)
  local e = t.raises("CAPFFI_EPERM", v.get, v, "pointer", 0)
  t.says(e, "pointer right")
  t.raises("CAPFFI_EPERM", v.get, v, "function", 0)
  t.eq(v:get("u64", 0), 0x7fffdeadbeef, "integers still read")

  -- A read-only token's views, and views through it, refuse too.
  local ro = capffi.token{ label = "ro", rights = { "read" } }
  local b = capffi.buffer(8)
  t.raises("CAPFFI_EPERM", ro.view, ro, b)
  -- Struct values are the script's memory as well.
  local tok = capffi.token{ label = "h3" }
  local fx = tok:dlopen(FIXTURE, {
    fx_pair_make = { sig = "(i32, i32) -> { a: i32, b: i32 }",
                     struct = "value" },
  })
  t.eq(fx.fx_pair_make(1, 2).b, 2, "a struct result reads its integers")

  -- Callback parameters and statics that would hand out an address.
  local cbonly = capffi.token{ label = "cb", rights = { "callback" } }
  t.raises("CAPFFI_EPERM", cbonly.callback, cbonly, "(pointer) -> void",
           function() end)
  t.raises("CAPFFI_EPERM", cbonly.callback, cbonly, "(cstring) -> void",
           function() end)
  local cb <close> = cbonly:callback("(i32) -> i32", function(x) return x end)
  local dl = capffi.token{ label = "dl", rights = { "dlopen" } }
  t.raises("CAPFFI_EPERM", dl.dlopen, dl, FIXTURE, {
    fx_name = { static = "cstring" },
  })
  local s = tok:dlopen(FIXTURE, {
    fx_name = { static = "cstring" },
  })
  t.eq(s.fx_name, "fixture", "with the pointer right")
end)

-- H7: the plugin defined a shared type name first; the module's
-- definition then failed and its sizes were the plugin's.
t.test("type_names_belong_to_their_principal", function()
  local module = capffi.token{ label = "module" }
  local plugin = capffi.token{ label = "plugin", rights = { "read" } }
  -- The plugin's layout of "Msg", for the whole context, while FFI is
  -- still granted.
  capffi.type("Msg", "{ len: u64, tag: u8 }")
  capffi.permissions.revoke()
  local e = t.raises("CAPFFI_EPERM", capffi.type, "Blob", "{ u64 }")
  t.says(e, "through a token")
  plugin:type("Blob", "{ u64 }")
  module:type("Blob", "{ a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, "
                      .. "g: u64, h: u64 }")
  t.eq(module:sizeof("Blob"), 64, "the module's layout")
  t.eq(plugin:sizeof("Blob"), 8, "the plugin's own")
  t.raises("CAPFFI_ESIG", capffi.sizeof, "Blob")
  -- A module's offsets are of its own layout too.
  module:type("Msg", "{ tag: u8, len: u64 }")
  t.eq(module:offsetof("Msg", "len"), 8, "the module's offset")
  t.eq(module:offsetof("Msg", "tag"), 0, "the module's first field")
  t.eq(capffi.offsetof("Msg", "len"), 0, "the context's offset")
  t.eq(plugin:offsetof("Msg", "len"), 0, "the plugin sees the context's")
  t.raises("CAPFFI_ENOTFOUND", module.offsetof, module, "Msg", "nope")
  local fx = module:dlopen(FIXTURE, { fx_nop = "(Blob) -> void" })
  t.ok(fx.fx_nop, "binds with the module's type")
end)

t.done()
