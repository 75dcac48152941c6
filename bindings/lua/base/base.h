/*
 * base/base.h - the bottom layer of the Lua binding: what every other file
 * uses. Errors (error.c), argument checks (check.c), the state and its
 * context (state.c), object classes (class.c) and the conversions between
 * Lua values and C scalars (value.c).
 *
 * The layers above, bottom up, each with a header of its own that
 * includes the one below: perm/ (tokens, capffi.permissions,
 * capffi.audit), types/ (named struct types), memory/ (buffers, pointers,
 * views, struct values), call/ (native calls from Lua, bound functions,
 * libraries), callback/ (callbacks and capffi.poll); module.c on top
 * registers them all. A file calls only into its own layer's lower files
 * and the layers below.
 *
 * Everything here runs on the thread that owns the Lua state, which is the
 * context's owner thread.
 */
#ifndef CAPFFI_LUA_BASE_H
#define CAPFFI_LUA_BASE_H

#include <stdbool.h>

#include <lauxlib.h>
#include <lua.h>

#include <capffi.h>

/* What this header declares is the module's own: hidden from the shared
 * object's symbol table however the module is built (meson hides it with
 * its flags; `luarocks make` uses its own), so only public names
 * (luaopen_capffi, capffi/lua.h) are exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#if defined(__GNUC__)
#define CAPFFI_LUA__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CAPFFI_LUA__PRINTF(f, a)
#endif

/* ---- error.c: capffi error objects ------------------------------------ */

#define CAPFFI_LUA_ERROR "capffi.error" /* metatable of error objects */

/* Register the error class; first of all, so that every later failure
 * can be reported. */
void capffi_lua__error_init(lua_State *L);

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

/* ---- state.c: the state userdata and its context ---------------------- */

#define CAPFFI_LUA_STATE "capffi.state" /* its metatable and registry key */

/*
 * The context userdata, kept in the registry so it lives as long as the
 * Lua state. Every other capffi userdata points at it; ctx becomes NULL
 * when the state closes it, and every entry point checks that first.
 */
struct capffi_lua__state {
    capffi_ctx *ctx;
    /* The Lua thread inside a native call or capffi.poll, where callback
     * handlers run; NULL when none is (call/native.c). */
    lua_State *L;
    /* Callback handler failures not yet raised (call/native.c). */
    size_t cb_failures;
    /* The call-audit bits scripts hold (capffi_audit_calls_hold): all
     * capffi.audit.calls may take back (perm/audit.c). */
    unsigned audit_calls_held;
};

/* Register the state class, whose collection frees the context. */
void capffi_lua__state_init(lua_State *L);

/* The live context of st, or a CAPFFI_ECLOSED error. */
capffi_ctx *capffi_lua__ctx(lua_State *L, const struct capffi_lua__state *st);

/* The state userdata at the upvalue of module functions. */
struct capffi_lua__state *capffi_lua__upstate(lua_State *L);

/* Raise the error rc with the context's message, after "what: " when
 * what is not NULL. */
int capffi_lua__fail(lua_State *L, const struct capffi_lua__state *st, int rc,
                     const char *what);

/* ---- check.c: argument checks ----------------------------------------- */

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
/* The boolean option `key` of the table at idx (absent: false); raises
 * CAPFFI_ETYPE ("what: 'key' must be a boolean") for any other value. */
bool capffi_lua__opt_flag(lua_State *L, int idx, const char *key,
                          const char *what);
/* A Lua type name for messages ("integer", "float", "string", ...). */
const char *capffi_lua__typename(lua_State *L, int idx);
/* The userdata of class tname at idx, or a CAPFFI_ETYPE error "expected
 * a capffi NOUN, got TYPE". */
void *capffi_lua__check_object(lua_State *L, int idx, const char *tname,
                               const char *noun);

/* ---- class.c: object classes ------------------------------------------ */

/* Make a metatable named tname with methods (__index), metamethods and
 * a locked __metatable; leaves it on the stack. */
void capffi_lua__new_class(lua_State *L, const char *tname,
                           const luaL_Reg *methods, const luaL_Reg *meta);

/*
 * Add methods to the class tname, made earlier by capffi_lua__new_class
 * with a methods table. This is how an upper layer gives a lower layer's
 * objects the methods that make its own (tok:dlopen, buf:view), so that
 * the lower file never names the upper one.
 */
void capffi_lua__add_methods(lua_State *L, const char *tname,
                             const luaL_Reg *methods);

/* ---- value.c: Lua values and C scalars -------------------------------- */

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
    CAPFFI_LUA__STRUCT,   /* a string, buffer or struct value of the size */
    CAPFFI_LUA__FUNCTION, /* a `function` parameter of a bound function: a
                             callback, a bound function or nil (as a
                             result, in a view or a struct, `function` is
                             an address: CAPFFI_LUA__POINTER) */
    CAPFFI_LUA__OBJECT,   /* *NAME, ?*NAME, *[N]T: an instance or nil */
    CAPFFI_LUA__OUTOBJ,   /* out *NAME: omitted, an instance returned */
    CAPFFI_LUA__OUTVAL    /* out T: omitted, a scalar returned */
};

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

/* Push a value of the given kind read from *v: a cstring as a string (a
 * copy; NULL as nil), any other kind as capffi_lua__scalar_push does. */
void capffi_lua__value_push(lua_State *L, int kind, const capffi_value *v);

/* Module functions (no upvalue needed). */
int capffi_lua__address(lua_State *L);       /* capffi.address */
int capffi_lua__u64tostring(lua_State *L);   /* capffi.u64tostring */
int capffi_lua__u64fromstring(lua_State *L); /* capffi.u64fromstring */

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
