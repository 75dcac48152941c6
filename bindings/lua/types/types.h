/*
 * types/types.h - the types layer of the Lua binding: named struct types
 * (type.c), as the context and each token see them. Above perm/.
 */
#ifndef CAPFFI_LUA_TYPES_H
#define CAPFFI_LUA_TYPES_H

#include "perm/perm.h"

/* ---- type.c: capffi.type, capffi.sizeof, capffi.offsetof --------------- */

/* Add tok:type, tok:sizeof and tok:offsetof to the token class. */
void capffi_lua__type_init(lua_State *L);

/* Module functions (upvalue 1: the state userdata). */
int capffi_lua__type_define(lua_State *L); /* capffi.type */
int capffi_lua__type_sizeof(lua_State *L); /* capffi.sizeof */
int capffi_lua__offsetof(lua_State *L);    /* capffi.offsetof */

#endif
