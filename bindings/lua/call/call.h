/*
 * call/call.h - the call layer of the Lua binding: native calls from Lua
 * and the callback handler failures raised after them (native.c), bound
 * functions and the `function` values they take (fn.c), nonblocking calls
 * (job.c), libraries (lib.c). Above memory/, in that order, except that a
 * function bound with `async = true` (fn.c) submits its calls through
 * job.c.
 */
#ifndef CAPFFI_LUA_CALL_H
#define CAPFFI_LUA_CALL_H

#include "memory/memory.h"

/* What this header declares is the module's own: hidden from the shared
 * object's symbol table however the module is built (meson hides it with
 * its flags; `luarocks make` uses its own), so only public names
 * (luaopen_capffi, capffi/lua.h) are exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

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

/*
 * A function record: the userdata every bound function closes over.
 */
struct capffi_lua__fn {
    capffi_fn *fn;
    struct capffi_lua__state *st;
    const char *name; /* the Lua-side name, stored after kind[] */
    size_t ret_size;
    uint8_t nparams;
    uint8_t nouts; /* out-parameters among them: omitted, returned */
    uint8_t ret;
    uint8_t smode; /* enum capffi_lua__smode */
    bool wrap;
    bool async;   /* bound with async = true: a call submits a job */
    bool has_tok; /* tok: whose class names its instances are read with */
    capffi_token tok;
    /* enum capffi_lua__kind per parameter, then for each the kind of
     * the scalar an `out T` parameter returns */
    uint8_t kind[];
};

/* A flag for capffi_lua__fn_push beside the CAPFFI_FN_* ones: the
 * `async` option. Never passed to capffi. */
#define CAPFFI_LUA__FN_ASYNC 0x80000000u

/* Register the function record class; add tok:fnptr. */
void capffi_lua__fn_init(lua_State *L);

/* capffi.errno(): errno captured by the last call of a function bound
 * with errno = true. */
int capffi_lua__errno(lua_State *L);

/* The `on` argument of capffi.audit.fn and .cb at idx: absent or nil is
 * true, else a boolean (CAPFFI_ETYPE naming `what`). */
bool capffi_lua__audit_on(lua_State *L, int idx, const char *what);

/* capffi.audit.fn(f [, on]): audit every call of a bound function. */
int capffi_lua__fn_audit(lua_State *L);

/* The `struct` option of the table at idx (absent: a string). */
enum capffi_lua__smode capffi_lua__opt_smode(lua_State *L, int idx,
                                             const char *what);

/*
 * Push the Lua function that calls cfn, under the Lua-side name `name`.
 * keep_idx (0: none) is what it keeps alive: its library. sig is the
 * signature text cfn was bound with (its instances and out-parameters,
 * types/sigtext.c); tok the token it was bound through (the class names
 * its instances are read with). Takes ownership of cfn (freed with the
 * userdata on failure).
 */
void capffi_lua__fn_push(lua_State *L, struct capffi_lua__state *st,
                         int keep_idx, capffi_fn *cfn, const char *name,
                         const char *sig, const capffi_token *tok,
                         uint32_t flags, enum capffi_lua__smode smode);

/*
 * The record of the bound function at idx (a Lua function made by
 * dlopen or tok:fnptr), pushing its userdata; NULL, pushing nothing, for
 * any other value.
 */
const struct capffi_lua__fn *capffi_lua__fn_of(lua_State *L, int idx);

/*
 * Convert the arguments of a call of f, at stack indices base to the top,
 * into args (CAPFFI_MAX_ARGS); raises on a wrong count or a value that
 * does not convert. Pointers in args (cstring text, buffer and struct
 * bytes) stay valid while those values stay on the stack. Out-parameters
 * take no Lua argument: args[i].p points to outs[i] (CAPFFI_MAX_ARGS),
 * zeroed, which the call fills; outs NULL (a nonblocking call) refuses
 * them with CAPFFI_ETYPE.
 */
void capffi_lua__fn_args(lua_State *L, const struct capffi_lua__fn *f, int base,
                         capffi_value *args, capffi_value *outs);

/*
 * The result of a call of f, in two steps around the call: _begin makes
 * room for a struct result in r (a struct value, a buffer or b, as the
 * `struct` option says; the first two pushed on the stack; fn_idx is f's
 * userdata, which a struct value keeps), _end pushes the Lua result from
 * r and returns how many values it pushed. The stack between them must be
 * as _begin left it.
 */
void capffi_lua__fn_result_begin(lua_State *L, const struct capffi_lua__fn *f,
                                 int fn_idx, capffi_value *r, luaL_Buffer *b);
int capffi_lua__fn_result_end(lua_State *L, const struct capffi_lua__fn *f,
                              const capffi_value *r, luaL_Buffer *b);

/* ---- job.c: nonblocking calls ------------------------------------------- */

#define CAPFFI_LUA_JOB "capffi.job" /* metatable of jobs */

/* Registry key of the C function that submits a call of a function bound
 * with `async = true`: arguments (the function's userdata, its call's
 * arguments...). job.c puts it there, so fn.c calls it without depending
 * on the module above it. */
#define CAPFFI_LUA__ASYNC_CALL "capffi.fn.async_call"

/* Register the job class and f:async on bound functions. */
void capffi_lua__job_init(lua_State *L);

/*
 * Submit a nonblocking call of f (its userdata at fn_idx) with the
 * arguments at base to the top; push the job and return 1. Raises on a
 * refusal.
 */
int capffi_lua__job_submit(lua_State *L, const struct capffi_lua__fn *f,
                           int fn_idx, int base);

/*
 * Resume the coroutines whose jobs have ended (capffi.poll, after the
 * context's loop ran). Returns how many it resumed; raises the error of a
 * coroutine that failed, leaving the others for the next call.
 */
size_t capffi_lua__job_resume(lua_State *L);

/* Whether jobs have ended that capffi_lua__job_resume has not seen. */
bool capffi_lua__job_ended(lua_State *L);

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

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
