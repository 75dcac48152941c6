/*
 * capffi_lua.h - the Lua 5.4 binding's entry points for hosts that embed
 * Lua: the capffi-lua runner (runner.c), the benchmark, any program that
 * wants `require "capffi"` with its own grants.
 *
 * The binding itself is layered, bottom up, one folder and one private
 * header per layer: base/ (errors, argument checks, the state, classes,
 * value conversion), perm/ (tokens, capffi.permissions, capffi.audit),
 * types/ (named struct types), memory/ (buffers, pointers, views, struct
 * values), call/ (native calls, bound functions, libraries), callback/
 * (callbacks, capffi.poll); module.c, on top, registers them all. A file
 * calls only into the layers below it (and its own layer's lower files).
 * docs/lua.md is the Lua-side reference.
 */
#ifndef CAPFFI_LUA_H
#define CAPFFI_LUA_H

#include <lua.h>

#include <capffi.h>

/*
 * Create the module in L with the given options (NULL: no FFI), as
 * require "capffi" will return it: the context, the module table in
 * package.loaded and a package.preload entry. A second call, or a later
 * require after package.loaded was cleared, returns the same module and
 * context: a script cannot get a fresh context with the host's grants.
 * Leaves the module table on the stack. Raises a Lua error (a capffi error
 * object) if the context cannot be made.
 */
int capffi_lua_setup(lua_State *L, const capffi_options *opts);

/* The context of the module set up in L, or NULL (none, or closed). */
capffi_ctx *capffi_lua_ctx(lua_State *L);

/* The standard loader: capffi_lua_setup with no options, or the module
 * already set up. Exported by the capffi.so module. */
int luaopen_capffi(lua_State *L);

#endif
