/*
 * capffi_lua.h - the Lua 5.4 binding: what its files share, and the entry
 * points for hosts that embed Lua (the capffi-lua runner, the benchmark).
 *
 * One file per Lua object type: module.c (the context, the module table,
 * errors, numbers), perm.c (capffi.permissions), audit.c (capffi.audit),
 * token.c (capffi.token), lib.c (libraries and bound functions), buffer.c
 * (capffi.buffer), view.c (views), struct.c (struct values), callback.c
 * (callbacks and capffi.poll); value.c holds
 * the conversions between Lua values and C scalars that several of them
 * share. docs/lua.md is the Lua-side reference.
 *
 * Everything here runs on the thread that owns the Lua state, which is the
 * context's owner thread.
 */
#ifndef CAPFFI_LUA_H
#define CAPFFI_LUA_H

#include <stdbool.h>

#include <lauxlib.h>
#include <lua.h>

#include <capffi.h>

#if defined(__GNUC__)
#define CAPFFI_LUA__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CAPFFI_LUA__PRINTF(f, a)
#endif

/* Metatable names (registry keys). */
#define CAPFFI_LUA_STATE "capffi.state"
#define CAPFFI_LUA_TOKEN "capffi.token"
#define CAPFFI_LUA_LIB "capffi.library"
#define CAPFFI_LUA_FN "capffi.function"
#define CAPFFI_LUA_BUFFER "capffi.buffer"
#define CAPFFI_LUA_VIEW "capffi.view"
#define CAPFFI_LUA_STRUCT "capffi.struct"
#define CAPFFI_LUA_CALLBACK "capffi.callback"
#define CAPFFI_LUA_ERROR "capffi.error"

/* Registry keys. */
#define CAPFFI_LUA_MODULE "capffi.module"   /* the module table */
#define CAPFFI_LUA_AMBIENT "capffi.ambient" /* weak set of ambient libs */

/* Events the recorder keeps (capffi.audit, the runner's --audit). */
#define CAPFFI_LUA_AUDIT_CAPACITY 8192

/*
 * The context userdata, kept in the registry so it lives as long as the
 * Lua state. Every other capffi userdata points at it; ctx becomes NULL
 * when the state closes it, and every entry point checks that first.
 */
struct capffi_lua__state {
    capffi_ctx *ctx;
    /* The Lua thread inside a native call or capffi.poll, where callback
     * handlers run; NULL when none is. */
    lua_State *L;
    /* Callback handler failures not yet raised (callback.c). */
    size_t cb_failures;
};

/* A token userdata. */
struct capffi_lua__token {
    capffi_token tok;
    struct capffi_lua__state *st;
};

/*
 * A buffer userdata. freed: buf:free() or the collector ran; the bytes may
 * still be held by pins. pins: the pins taken through tok:pointer_of and
 * not yet dropped by buf:unpin(); while there are any, buf stays the
 * handle capffi_buf_unpin needs, even after the free. buf is NULL once
 * the handle is gone (freed with no pin left).
 */
struct capffi_lua__buffer {
    capffi_buf *buf;
    struct capffi_lua__state *st;
    size_t pins;
    bool freed;
};

/* A view userdata; view is NULL once freed. */
struct capffi_lua__view {
    capffi_view *view;
    struct capffi_lua__state *st;
    uint32_t access; /* CAPFFI_VIEW_READ and/or CAPFFI_VIEW_WRITE */
    bool unbounded;
};

/*
 * How a Lua value is converted for a declared type (docs/lua.md,
 * "Values"). The scalar kinds (BOOL to POINTER) are the ones views and
 * struct fields read and write.
 */
enum capffi_lua__kind {
    CAPFFI_LUA__VOID,
    CAPFFI_LUA__BOOL,
    CAPFFI_LUA__INT,  /* i8 i16 i32: range-checked by capffi */
    CAPFFI_LUA__UINT, /* u8 u16 u32: negatives refused here, the rest by
                         capffi */
    CAPFFI_LUA__I64,  /* i64 isize */
    CAPFFI_LUA__U64,  /* u64 usize: the integer's 64 bits */
    CAPFFI_LUA__F32,
    CAPFFI_LUA__F64,
    CAPFFI_LUA__POINTER, /* pointer function *NAME: light userdata or nil */
    CAPFFI_LUA__CSTRING,
    CAPFFI_LUA__BUFFER,
    CAPFFI_LUA__STRUCT,  /* a string, buffer or struct value of the size */
    CAPFFI_LUA__FUNCTION /* a `function` parameter of a bound function: a
                            callback, a bound function or nil (as a
                            result, in a view or a struct, `function` is
                            an address: CAPFFI_LUA__POINTER) */
};

/* ---- entry points for hosts ------------------------------------------- */

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

/* ---- shared by the binding's files ------------------------------------ */

/*
 * Raise a capffi error object: a table { code = "CAPFFI_EPERM", status =
 * -3, message = "..." } whose tostring is "CAPFFI_EPERM: ...". Never
 * returns; typed int for `return capffi_lua__error(...)`.
 */
int capffi_lua__error(lua_State *L, int code, const char *fmt, ...)
    CAPFFI_LUA__PRINTF(3, 4);

/* Push such an error object without raising it. */
void capffi_lua__error_push(lua_State *L, int code, const char *fmt, ...)
    CAPFFI_LUA__PRINTF(3, 4);

/* Raise the error rc with the context's message, after "what: " when
 * what is not NULL. */
int capffi_lua__fail(lua_State *L, const struct capffi_lua__state *st, int rc,
                     const char *what);

/* The live context of st, or a CAPFFI_ECLOSED error. */
capffi_ctx *capffi_lua__ctx(lua_State *L, const struct capffi_lua__state *st);

/* The state userdata at the upvalue of module functions. */
struct capffi_lua__state *capffi_lua__upstate(lua_State *L);

/* Make a metatable named tname with methods (__index), metamethods and
 * a locked __metatable; leaves it on the stack. */
void capffi_lua__new_class(lua_State *L, const char *tname,
                           const luaL_Reg *methods, const luaL_Reg *meta);

/* Argument checks that raise capffi errors (CAPFFI_ETYPE, CAPFFI_ERANGE,
 * CAPFFI_EINVAL) naming `what`. */
const char *capffi_lua__check_string(lua_State *L, int idx, const char *what);
const char *capffi_lua__opt_string(lua_State *L, int idx, const char *what);
lua_Integer capffi_lua__check_integer(lua_State *L, int idx, const char *what);
/* A table argument, or none: returns false for nil or none. */
bool capffi_lua__opt_table(lua_State *L, int idx, const char *what);
/* Raise CAPFFI_EINVAL for a key of the table at idx not in `known`
 * (NULL-terminated): option tables catch misspelt options. */
void capffi_lua__check_keys(lua_State *L, int idx, const char *what,
                            const char *const *known);
/* A Lua type name for messages ("integer", "float", "string", ...). */
const char *capffi_lua__typename(lua_State *L, int idx);

/* Rights: a list of names ("dlopen", ...) to bits; bits to a list. */
uint32_t capffi_lua__rights(lua_State *L, int idx, const char *what);
void capffi_lua__push_rights(lua_State *L, uint32_t rights);

/* Push a 64-bit id as 16 hex digits, as the audit trail writes it. */
void capffi_lua__push_id(lua_State *L, uint64_t id);

/* ---- values (value.c) ---- */

/* The kind for a type word as capffi_fn_param_type or capffi_field give
 * it ("i32", "pointer", "struct", ...), or -1. */
int capffi_lua__kind_of(const char *word);

/* Is kind one of the scalar kinds (bool, integers, floats, pointers)? */
bool capffi_lua__is_scalar(int kind);

/*
 * Convert the Lua value at idx to a scalar of the given kind in *v, with
 * the rules of call arguments: integers exact, an integral float where it
 * fits, u64 and usize as their 64 bits, negatives refused for u8, u16 and
 * u32 unless wrap. Raises nothing: returns CAPFFI_OK, or the code with the
 * reason written to why (n bytes), so that the caller names the place
 * ("f: argument 2 (i32): ", "set: u8 at offset 3: ").
 */
int capffi_lua__scalar_in(lua_State *L, int idx, int kind, bool wrap,
                          capffi_value *v, char *why, size_t n);

/* Push a scalar of the given kind read from *v: integers as integers
 * (u64 as its 64 bits), floats as floats, NULL pointers as nil. */
void capffi_lua__scalar_push(lua_State *L, int kind, const capffi_value *v);

/* Register each object type's metatable (called once per state). */
void capffi_lua__token_init(lua_State *L);
void capffi_lua__lib_init(lua_State *L);
void capffi_lua__buffer_init(lua_State *L);
void capffi_lua__view_init(lua_State *L);
void capffi_lua__struct_init(lua_State *L);
void capffi_lua__callback_init(lua_State *L);

/* Module functions (upvalue 1: the state userdata). */
int capffi_lua__token_new(lua_State *L);      /* capffi.token */
int capffi_lua__dlopen_ambient(lua_State *L); /* capffi.dlopen */
int capffi_lua__buffer_new(lua_State *L);     /* capffi.buffer */
int capffi_lua__struct_tobytes(lua_State *L); /* capffi.bytes */
int capffi_lua__poll(lua_State *L);           /* capffi.poll */
int capffi_lua__keepalive(lua_State *L);      /* capffi.keepalive */
void capffi_lua__perm_push(lua_State *L);     /* capffi.permissions */
void capffi_lua__audit_push(lua_State *L);    /* capffi.audit */

/* The token userdata at idx, or a CAPFFI_ETYPE error. */
struct capffi_lua__token *capffi_lua__token_check(lua_State *L, int idx);

/*
 * Open the library at path (NULL: the process scope) through tok and bind
 * the symbols described by the table at syms_idx (0: none), with the
 * options table at opts_idx (0: none). Pushes the library userdata.
 * ambient: the token was minted for this one call; the library is then
 * revoked when the context's permission stops covering it.
 */
int capffi_lua__lib_open(lua_State *L, struct capffi_lua__state *st,
                         const capffi_token *tok, const char *path,
                         int syms_idx, int opts_idx, bool ambient);

/* A callable function for the pointer at ptr_idx with the signature at
 * sig_idx and options at opts_idx, through tok (tok:fnptr). */
int capffi_lua__fn_from_ptr(lua_State *L, struct capffi_lua__state *st,
                            const capffi_token *tok, int ptr_idx, int sig_idx,
                            int opts_idx);

/* After capffi_perm_revoke(path): revoke the ambient libraries the
 * permission no longer covers (every one when path is NULL). */
void capffi_lua__ambient_revoke(lua_State *L, struct capffi_lua__state *st,
                                const char *path);

/* The buffer userdata at idx or NULL; raises CAPFFI_ECLOSED for a freed
 * one when live is true. */
struct capffi_lua__buffer *capffi_lua__buffer_test(lua_State *L, int idx,
                                                   bool live);

/* Push a new buffer userdata of len zero bytes; raises on failure. */
struct capffi_lua__buffer *
capffi_lua__buffer_push(lua_State *L, struct capffi_lua__state *st, size_t len);

/* An access string ("r", "w", "rw") at idx as CAPFFI_VIEW_* bits; def
 * when the argument is absent or nil. */
uint32_t capffi_lua__access(lua_State *L, int idx, uint32_t def,
                            const char *what);

/* Push an empty view userdata (view NULL) for the caller to fill, so
 * that no capffi view exists before the userdata that frees it. */
struct capffi_lua__view *capffi_lua__view_push(lua_State *L,
                                               struct capffi_lua__state *st);

/*
 * Push a struct value for the struct result of fn (whose function
 * userdata is at fn_idx, kept alive by it): zeroed memory of the result's
 * size, which the caller passes as ret->agg (*mem, *len) and the call
 * fills. Raises on failure.
 */
void capffi_lua__struct_push(lua_State *L, struct capffi_lua__state *st,
                             const capffi_fn *fn, int fn_idx, void **mem,
                             size_t *len);

/*
 * tok:callback(signature, fn [, options]) through tok, with the arguments
 * at those indices; pushes the callback.
 */
int capffi_lua__callback_new(lua_State *L, struct capffi_lua__state *st,
                             const capffi_token *tok, int sig_idx, int fn_idx,
                             int opts_idx);

/*
 * A `function` value at idx as capffi takes it: a callback (v->cb), a
 * bound function (v->fn) or nil (NULL). Returns false, changing nothing,
 * for any other value.
 */
bool capffi_lua__handle_in(lua_State *L, int idx, capffi_value *v);

/* The capffi_fn of a bound function (a Lua function made by dlopen or
 * tok:fnptr) at idx, or NULL for any other value. */
const capffi_fn *capffi_lua__fn_handle(lua_State *L, int idx);

/*
 * After a native call or a poll that started when st->cb_failures was
 * `before`: if a callback handler failed meanwhile, raise
 * CAPFFI_ECALLBACK ("what: ...") with the first handler error as `cause`.
 */
void capffi_lua__callback_check(lua_State *L, struct capffi_lua__state *st,
                                size_t before, const char *what);

/* If the value at idx is a struct value, its bytes (*mem, *len) and
 * true; raises CAPFFI_ECLOSED when its memory is gone. false otherwise. */
bool capffi_lua__struct_bytes(lua_State *L, int idx, void **mem, size_t *len);

/* Resolve the paths array at idx (bare sonames through
 * capffi_lib_resolve) into a userdata of `const char *` pushed on the
 * stack, with the resolved strings kept alive in its user value. */
const char *const *capffi_lua__paths(lua_State *L, int idx, const char *what,
                                     struct capffi_lua__state *st, size_t *n);

#endif
