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

#include <stdbool.h>

#include <lua.h>

#include <capffi.h>
#include <capffi/lua.h> /* capffi_lua_open, capffi_lua_ctx: the public ones */

/* Internal to capffi's Lua objects: never exported (the rock's capffi.so
 * exports only luaopen_capffi and capffi/lua.h's calls). */
#if defined(__GNUC__)
#define CAPFFI_LUA__INTERNAL __attribute__((visibility("hidden")))
#else
#define CAPFFI_LUA__INTERNAL
#endif

/*
 * Create the module in L with the given options (NULL: no FFI), as
 * require "capffi" will return it: the context, the module table in
 * package.loaded and a package.preload entry. A second call, or a later
 * require after package.loaded was cleared, returns the same module and
 * context: a script cannot get a fresh context with the host's grants.
 * Leaves the module table on the stack. Raises a Lua error (a capffi error
 * object) if the context cannot be made. The runner's entry point; hosts
 * use capffi_lua_open, which never raises.
 */
CAPFFI_LUA__INTERNAL int capffi_lua_setup(lua_State *L,
                                          const capffi_options *opts);

/*
 * Grants as the runner's --allow-ffi and --deny-ffi give them and as the
 * CAPFFI_ALLOW_FFI and CAPFFI_DENY_FFI variables give them to a stock
 * interpreter: one parser for both, so the syntax cannot drift. Zero it
 * to start; free it with capffi_lua__grants_free.
 */
struct capffi_lua__grants {
    bool allow_all; /* CAPFFI_OPT_ALLOW_ALL */
    char **allow, **deny;
    size_t n_allow, n_deny;
};

/*
 * Append each comma-separated item of list (a file, a directory or a
 * soname, resolved now as capffi_lib_open would find it) to g's deny list
 * (deny) or allow list. Returns 0, or a negative CAPFFI_E* with
 * "what: reason" in msg: CAPFFI_EINVAL for an empty or overlong item (an
 * empty list included), the resolver's error for a path that does not
 * exist or a soname found nowhere, CAPFFI_ENOMEM. g keeps the items before
 * the bad one.
 */
CAPFFI_LUA__INTERNAL int capffi_lua__grants_add(struct capffi_lua__grants *g,
                                                bool deny, const char *list,
                                                const char *what, char *msg,
                                                size_t cap);

/* Point opts' allow and deny fields at g (which must outlive their use in
 * capffi_ctx_new) and add CAPFFI_OPT_ALLOW_ALL when g allows all. */
CAPFFI_LUA__INTERNAL void
capffi_lua__grants_options(const struct capffi_lua__grants *g,
                           capffi_options *opts);

/* Free g's lists and zero it. */
CAPFFI_LUA__INTERNAL void capffi_lua__grants_free(struct capffi_lua__grants *g);

/* The standard loader. The first in a state makes the context with the
 * grants of CAPFFI_ALLOW_FFI and CAPFFI_DENY_FFI (none when unset) and
 * raises a capffi error naming the variable for a bad value; later ones,
 * and any after a host's capffi_lua_setup or capffi_lua_open, return the
 * module already there. Exported by the capffi.so module. */
int luaopen_capffi(lua_State *L);

#endif
