/*
 * call/call.h - the call layer of the Lua binding: native calls from Lua
 * and the callback handler failures raised after them (native.c), bound
 * functions and the `function` values they take (fn.c), libraries
 * (lib.c). Above memory/, in that order.
 */
#ifndef CAPFFI_LUA_CALL_H
#define CAPFFI_LUA_CALL_H

#include "memory/memory.h"

/* ---- native.c: a native call from Lua ----------------------------------- */

/*
 * A native call (a bound function, capffi.poll) in progress on a Lua
 * thread. Callback handlers run on that thread while it lasts, as nested
 * calls; their failures are raised once native code has returned.
 */
struct capffi_lua__native {
    lua_State *prev; /* the thread in a native call before this one */
    size_t failures; /* st->cb_failures when it started */
};

/* Make the table of handler failures not yet raised (once per state). */
void capffi_lua__native_init(lua_State *L);

/*
 * Raise the first handler failure since `before` (st->cb_failures when
 * the call started) as CAPFFI_ECALLBACK ("what: ..."), with the handler's
 * error as `cause`; the failures it covers count as raised. Returns when
 * there is none.
 */
void capffi_lua__native_raise(lua_State *L, struct capffi_lua__state *st,
                              size_t before, const char *what);

/*
 * A callback handler running on st->L failed with the error value on top
 * of the stack: keep it for the call to raise, counted even when keeping
 * its value fails, and write its text to msg (n bytes) for
 * capffi_cb_fail. Raises nothing; leaves the stack for the caller to
 * reset.
 */
void capffi_lua__native_failed(lua_State *L, struct capffi_lua__state *st,
                               char *msg, size_t n);

/* Start a native call on L: handlers run on L until native_leave. */
static inline void
capffi_lua__native_enter(lua_State *L, struct capffi_lua__state *st,
                         struct capffi_lua__native *n)
{
    n->failures = st->cb_failures;
    n->prev = st->L;
    st->L = L;
}

/* End it; raise the first handler failure during it (native_raise). */
static inline void
capffi_lua__native_leave(lua_State *L, struct capffi_lua__state *st,
                         const struct capffi_lua__native *n, const char *what)
{
    st->L = n->prev;
    if (st->cb_failures != n->failures)
        capffi_lua__native_raise(L, st, n->failures, what);
}

/* ---- fn.c: bound functions ---------------------------------------------- */

#define CAPFFI_LUA_FN "capffi.function" /* metatable of function records */

#define CAPFFI_LUA_CALLBACK "capffi.callback" /* metatable of callbacks */

/*
 * The head of a callback userdata (callback/callback.c): what a callback
 * passed where a `function` is declared converts from, here, below the
 * layer that makes callbacks.
 */
struct capffi_lua__cbhead {
    capffi_cb *cb; /* NULL until the callback exists */
    struct capffi_lua__state *st;
};

/* What a struct result becomes in Lua (the `struct` option). */
enum capffi_lua__smode {
    CAPFFI_LUA__SMODE_STRING,
    CAPFFI_LUA__SMODE_VALUE,
    CAPFFI_LUA__SMODE_BUFFER
};

/* Register the function record class; add tok:fnptr. */
void capffi_lua__fn_init(lua_State *L);

/* capffi.errno(): errno captured by the last call of a function bound
 * with errno = true. */
int capffi_lua__errno(lua_State *L);

/* The `struct` option of the table at idx (absent: a string). */
enum capffi_lua__smode capffi_lua__opt_smode(lua_State *L, int idx,
                                             const char *what);

/*
 * Push the Lua function that calls cfn, under the Lua-side name `name`.
 * keep_idx (0: none) is what it keeps alive: its library. Takes ownership
 * of cfn (freed with the userdata on failure).
 */
void capffi_lua__fn_push(lua_State *L, struct capffi_lua__state *st,
                         int keep_idx, capffi_fn *cfn, const char *name,
                         uint32_t flags, enum capffi_lua__smode smode);

/*
 * A `function` value at idx as capffi takes it: a callback (v->cb), a
 * bound function (v->fn) or nil (NULL). Returns false, changing nothing,
 * for any other value.
 */
bool capffi_lua__handle_in(lua_State *L, int idx, capffi_value *v);

/* ---- lib.c: libraries --------------------------------------------------- */

#define CAPFFI_LUA_LIB "capffi.library" /* metatable of libraries */

/* Register the library class; add tok:dlopen. */
void capffi_lua__lib_init(lua_State *L);

/* Module functions (upvalue 1: the state userdata). */
int capffi_lua__dlopen_ambient(lua_State *L); /* capffi.dlopen */
int capffi_lua__resolve(lua_State *L);        /* capffi.resolve */

#endif
