/*
 * callback/callback.h - the callback layer of the Lua binding: callbacks,
 * Lua functions that native code calls, and the owner loop that runs the
 * ones called from other threads (callback.c). Above call/.
 */
#ifndef CAPFFI_LUA_CALLBACK_H
#define CAPFFI_LUA_CALLBACK_H

#include "call/call.h"

/* What this header declares is the module's own: hidden from the shared
 * object's symbol table however the module is built (meson hides it with
 * its flags; `luarocks make` uses its own), so only public names
 * (luaopen_capffi, capffi/lua.h) are exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* ---- callback.c: callbacks and capffi.poll ------------------------------ */

/* Register the callback class; add tok:callback. */
void capffi_lua__callback_init(lua_State *L);

/* Module functions (upvalue 1: the state userdata). */
int capffi_lua__poll(lua_State *L);      /* capffi.poll */
int capffi_lua__keepalive(lua_State *L); /* capffi.keepalive */

/* capffi.audit.cb(cb [, on]): audit every invocation of a callback. */
int capffi_lua__cb_audit(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
