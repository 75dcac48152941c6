/*
 * types/types.h - the types layer of the Lua binding: named struct types
 * and classes (type.c), as the context and each token see them, and what
 * a signature's text says of instances and out-parameters (sigtext.c).
 * Above perm/.
 */
#ifndef CAPFFI_LUA_TYPES_H
#define CAPFFI_LUA_TYPES_H

#include "perm/perm.h"

/* What this header declares is the module's own: hidden from the shared
 * object's symbol table however the module is built (meson hides it with
 * its flags; `luarocks make` uses its own), so only public names
 * (luaopen_capffi, capffi/lua.h) are exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* ---- type.c: capffi.type, capffi.sizeof, capffi.offsetof --------------- */

/* Add tok:type, tok:sizeof and tok:offsetof to the token class. */
void capffi_lua__type_init(lua_State *L);

/* Module functions (upvalue 1: the state userdata). */
int capffi_lua__type_define(lua_State *L); /* capffi.type */
int capffi_lua__type_sizeof(lua_State *L); /* capffi.sizeof */
int capffi_lua__offsetof(lua_State *L);    /* capffi.offsetof */

/* ---- sigtext.c: instances and out-parameters in a signature ------------ */

/* What a parameter or the result is, as far as instances go. */
enum capffi_lua__sigwhat {
    CAPFFI_LUA__SIG_PLAIN,  /* any other type: capffi's word says which */
    CAPFFI_LUA__SIG_OBJECT, /* *NAME, ?*NAME, *[N]T, *[$k]T: an instance */
    CAPFFI_LUA__SIG_OUTOBJ, /* out [own] *NAME [by SYM]: returned */
    CAPFFI_LUA__SIG_OUTVAL  /* out T (a scalar): returned */
};

struct capffi_lua__sigpart {
    uint8_t what; /* enum capffi_lua__sigwhat */
    int8_t kind;  /* SIG_OUTVAL: the scalar's enum capffi_lua__kind, or -1 */
};

/*
 * Read the text of a signature capffi accepted: params[i] for each
 * parameter (at most max), *result for the result. Returns the number of
 * parameters, or -1 when the text does not read as a signature (the
 * caller then relies on capffi's words alone).
 */
int capffi_lua__sig_read(const char *sig, struct capffi_lua__sigpart *params,
                         int max, struct capffi_lua__sigpart *result);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
