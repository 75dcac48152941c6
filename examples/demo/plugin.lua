-- plugin.lua: untrusted code. The application loads it as a text chunk into
-- an environment holding only what it chooses to give: a read-only view of
-- the capffi module, a way to report, and a token in safe mode: it may make
-- callbacks whose arguments are instances of classes, and nothing else (no
-- pointer, read or write right, so no raw address). It is written as an
-- attacker would: it wants libc's system(), the address of memory to hand
-- to native code, or a raw pointer from native code to read through.
local capffi, attempt, token = ...

attempt("load libc.so.6 and bind system()", function()
  local libc = capffi.dlopen("libc.so.6", { system = "(cstring) -> i32" })
  libc.system("echo the plugin ran a shell command")
end)

attempt("mint itself a token", function()
  capffi.token{ label = "plugin" }
end)

attempt("load libz as the trusted module does", function()
  capffi.dlopen("libz.so.1", { zlibVersion = "() -> cstring" })
end)

attempt("open every symbol of the process", function()
  capffi.dlopen(nil, { system = "(cstring) -> i32" })
end)

attempt("request FFI permission for libc", function()
  return capffi.permissions.request("libc.so.6")
end)

attempt("load libc.so.6 with its own token", function()
  token:dlopen("libc.so.6", { system = "(cstring) -> i32" })
end)

attempt("take the address of a buffer (pointer_of)", function()
  local p = token:pointer_of(capffi.buffer("for native code to keep"))
end)

attempt("take a raw pointer from native code (callback)", function()
  token:callback("(pointer) -> i32", function() return 0 end)
end)

attempt("widen its token to the pointer right", function()
  token:attenuate{ rights = { "callback", "pointer" } }
end)

attempt("replace capffi.token to catch other modules' tokens", function()
  capffi.token = function() end
end)
