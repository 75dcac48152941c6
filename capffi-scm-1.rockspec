-- capffi-scm-1.rockspec: the capffi Lua module (bindings/lua) for
-- `luarocks make`, built against an installed libcapffi (meson install;
-- docs/lua.md, "Stock lua5.4 and LuaRocks"). When capffi is not under
-- /usr or /usr/local, name its prefix:
--   luarocks --lua-version 5.4 make CAPFFI_DIR="$(pkg-config --variable=prefix capffi)"
-- It links the shared libcapffi (a static-only install lacks what
-- libcapffi.a needs at load). The sources are the layers of
-- bindings/lua/meson.build, then module.c built as the module
-- (CAPFFI_LUA_MODULE); tests/lua/rockspec.sh checks that the two lists
-- agree.
rockspec_format = "3.0"
package = "capffi"
version = "scm-1"
source = {
   -- built from this checkout by `luarocks make`; no published archive
   url = "file://.",
}
description = {
   summary = "Capability-gated FFI for Lua 5.4",
   detailed = [[
A foreign function interface shaped like Deno's, gated by capffi's
capability tokens. In a stock interpreter the launcher grants FFI through
the CAPFFI_ALLOW_FFI and CAPFFI_DENY_FFI environment variables; without
them every token and dlopen is refused.
]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
external_dependencies = {
   CAPFFI = {
      header = "capffi.h",
      library = "capffi",
   },
}
build = {
   type = "builtin",
   modules = {
      capffi = {
         sources = {
            "bindings/lua/base/check.c",
            "bindings/lua/base/class.c",
            "bindings/lua/base/error.c",
            "bindings/lua/base/state.c",
            "bindings/lua/base/value.c",
            "bindings/lua/perm/audit.c",
            "bindings/lua/perm/perm.c",
            "bindings/lua/perm/token.c",
            "bindings/lua/types/sigtext.c",
            "bindings/lua/types/type.c",
            "bindings/lua/memory/buffer.c",
            "bindings/lua/memory/object.c",
            "bindings/lua/memory/pointer.c",
            "bindings/lua/memory/struct.c",
            "bindings/lua/memory/view.c",
            "bindings/lua/call/fn.c",
            "bindings/lua/call/job.c",
            "bindings/lua/call/lib.c",
            "bindings/lua/call/native.c",
            "bindings/lua/callback/callback.c",
            "bindings/lua/module.c",
         },
         defines = { "_GNU_SOURCE", "CAPFFI_LUA_MODULE" },
         incdirs = { "bindings/lua", "$(CAPFFI_INCDIR)" },
         libdirs = { "$(CAPFFI_LIBDIR)" },
         libraries = { "capffi", "m" },
      },
   },
}
