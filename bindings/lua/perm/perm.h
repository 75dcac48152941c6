/*
 * perm/perm.h - the permission layer of the Lua binding: tokens as Lua
 * values (token.c), the context's FFI permission with the ambient
 * libraries it covers (perm.c), and the audit trail (audit.c). Above
 * base/; every layer above makes its objects through a token and adds
 * the token methods that do so (capffi_lua__add_methods).
 */
#ifndef CAPFFI_LUA_PERM_H
#define CAPFFI_LUA_PERM_H

#include "base/base.h"

/* What this header declares is the module's own: hidden from the shared
 * object's symbol table however the module is built (meson hides it with
 * its flags; `luarocks make` uses its own), so only public names
 * (luaopen_capffi, capffi/lua.h) are exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* ---- token.c: capffi.token --------------------------------------------- */

#define CAPFFI_LUA_TOKEN "capffi.token" /* metatable of tokens */

/* A token userdata. */
struct capffi_lua__token {
    capffi_token tok;
    struct capffi_lua__state *st;
};

/* Register the token class with the methods of this layer. */
void capffi_lua__token_init(lua_State *L);

/* capffi.token([scope]) (upvalue 1: the state userdata) */
int capffi_lua__token_new(lua_State *L);

/* The token userdata at idx, or a CAPFFI_ETYPE error. */
struct capffi_lua__token *capffi_lua__token_check(lua_State *L, int idx);

/* Rights: a list of names ("dlopen", ...) to bits; bits to a list. */
uint32_t capffi_lua__rights(lua_State *L, int idx, const char *what);
void capffi_lua__push_rights(lua_State *L, uint32_t rights);

/* Push a 64-bit id as 16 hex digits, as the audit trail writes it. */
void capffi_lua__push_id(lua_State *L, uint64_t id);

/* ---- perm.c: capffi.permissions and the ambient libraries --------------- */

/*
 * What the permission layer knows of a library userdata (call/lib.c):
 * the library, the token it was opened with, and whether it was closed
 * since. Revoking the permission revokes the token of each ambient
 * library the permission no longer covers.
 */
struct capffi_lua__libref {
    capffi_lib *lib;
    capffi_token tok;
    bool closed;
};

/* Make the set of ambient libraries (once per state). */
void capffi_lua__perm_init(lua_State *L);

/* Push capffi.permissions; pops the state userdata on top, its upvalue. */
void capffi_lua__perm_push(lua_State *L);

/*
 * Remember the library userdata at idx, whose ref is ref, as ambient: it
 * was opened through capffi.dlopen with a token minted for it alone, so
 * it lasts only as long as the permission covers it. The set holds it
 * weakly.
 */
void capffi_lua__ambient_add(lua_State *L, int idx,
                             struct capffi_lua__libref *ref);

/* ---- audit.c: capffi.audit ---------------------------------------------- */

/* Events the recorder keeps (capffi.audit, the runner's --audit). */
#define CAPFFI_LUA_AUDIT_CAPACITY 8192

/* Push capffi.audit; pops the state userdata on top, its upvalue. */
void capffi_lua__audit_push(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
