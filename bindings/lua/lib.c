/*
 * lib.c - libraries and bound functions.
 *
 * tok:dlopen and capffi.dlopen return a library userdata whose fields are
 * the bound symbols. Each bound function is a Lua C closure over a
 * function userdata that holds the capffi_fn, the Lua-side conversion of
 * each parameter (chosen once, at bind time, from the declared types) and
 * a reference to its library, so a library is not collected while one of
 * its functions can still be called.
 *
 * Conversions (docs/lua.md, "Values"): integers are exact; a float is
 * accepted for an integer parameter only when it holds an integral value
 * in range; u64 and usize values at or above 2^63 travel as the negative
 * integer with the same 64 bits. Every refusal is a Lua error with a
 * capffi code; nothing reaches native code unconverted.
 */
#include <stdint.h>
#include <string.h>

#include "capffi_lua.h"

/* Short names for the conversion kinds (capffi_lua.h). */
enum {
    K_VOID = CAPFFI_LUA__VOID,
    K_BOOL = CAPFFI_LUA__BOOL,
    K_POINTER = CAPFFI_LUA__POINTER,
    K_CSTRING = CAPFFI_LUA__CSTRING,
    K_BUFFER = CAPFFI_LUA__BUFFER,
    K_STRUCT = CAPFFI_LUA__STRUCT,
    K_FUNCTION = CAPFFI_LUA__FUNCTION
};

/* What a struct result becomes in Lua (the `struct` option). */
enum smode { S_STRING, S_VALUE, S_BUFFER };

struct lib {
    capffi_lib *lib;
    struct capffi_lua__state *st;
    capffi_token tok; /* the token it was opened with */
    bool ambient;     /* that token was minted for this library */
    bool closed;
};

struct fn {
    capffi_fn *fn;
    struct capffi_lua__state *st;
    const char *name; /* the Lua-side name, stored after kind[] */
    size_t ret_size;
    uint8_t nparams;
    uint8_t ret;
    uint8_t smode; /* enum smode */
    bool wrap;
    uint8_t kind[]; /* enum kind, per parameter */
};

/* ---- calling ----------------------------------------------------------- */

static int
arg_error(lua_State *L, const struct fn *f, int i, int code, const char *what)
{
    const char *type = capffi_fn_param_type(f->fn, (size_t)i, NULL);
    return capffi_lua__error(L, code, "%s: argument %d (%s): %s, got %s",
                             f->name, i + 1, type ? type : "?", what,
                             capffi_lua__typename(L, i + 1));
}

static void
arg_value(lua_State *L, const struct fn *f, int i, capffi_value *v)
{
    int idx = i + 1;
    switch (f->kind[i]) {
    case K_CSTRING:
        if (lua_type(L, idx) == LUA_TSTRING) {
            size_t len;
            v->str = lua_tolstring(L, idx, &len);
            if (strlen(v->str) != len)
                capffi_lua__error(L, CAPFFI_EINVAL,
                                  "%s: argument %d (cstring): the string has "
                                  "a NUL byte at %zu",
                                  f->name, idx, strlen(v->str) + 1);
        } else if (lua_isnil(L, idx)) {
            v->str = NULL;
        } else {
            arg_error(L, f, i, CAPFFI_ETYPE, "expected a string or nil");
        }
        break;
    case K_BUFFER:
        if (lua_isnil(L, idx)) {
            v->buf = NULL;
        } else {
            struct capffi_lua__buffer *b =
                capffi_lua__buffer_test(L, idx, true);
            if (!b)
                arg_error(L, f, i, CAPFFI_ETYPE, "expected a buffer or nil");
            v->buf = b->buf;
        }
        break;
    case K_FUNCTION:
        if (!capffi_lua__handle_in(L, idx, v))
            arg_error(L, f, i, CAPFFI_ETYPE,
                      "expected a callback, a bound function or nil");
        break;
    case K_STRUCT:
        if (lua_type(L, idx) == LUA_TSTRING) {
            v->agg.ptr = (void *)(uintptr_t)lua_tolstring(L, idx, &v->agg.len);
        } else if (!capffi_lua__struct_bytes(L, idx, &v->agg.ptr,
                                             &v->agg.len)) {
            struct capffi_lua__buffer *b =
                capffi_lua__buffer_test(L, idx, true);
            if (!b)
                arg_error(L, f, i, CAPFFI_ETYPE,
                          "expected a string, buffer or struct value holding "
                          "the struct");
            int rc = capffi_buf_data(&v->agg.ptr, &v->agg.len, b->buf);
            if (rc)
                capffi_lua__fail(L, f->st, rc, f->name);
        }
        break;
    default: {
        char why[128];
        int rc = capffi_lua__scalar_in(L, idx, f->kind[i], f->wrap, v, why,
                                       sizeof why);
        if (rc)
            capffi_lua__error(L, rc, "%s: argument %d (%s): %s", f->name, idx,
                              capffi_fn_param_type(f->fn, (size_t)i, NULL),
                              why);
    }
    }
}

/* The closure every bound function is: upvalue 1 is its fn userdata. */
static int
fn_call(lua_State *L)
{
    const struct fn *f = lua_touserdata(L, lua_upvalueindex(1));
    int n = lua_gettop(L);
    if (n != f->nparams)
        return capffi_lua__error(L, CAPFFI_EINVAL,
                                 "%s: expected %d argument%s, got %d", f->name,
                                 f->nparams, f->nparams == 1 ? "" : "s", n);
    if (!f->st->ctx)
        return capffi_lua__error(L, CAPFFI_ECLOSED,
                                 "%s: the capffi context is closed", f->name);
    capffi_value args[CAPFFI_MAX_ARGS];
    for (int i = 0; i < n; i++)
        arg_value(L, f, i, &args[i]);
    capffi_value r;
    luaL_Buffer b;
    if (f->ret == K_STRUCT) {
        if (f->smode == S_VALUE) {
            capffi_lua__struct_push(L, f->st, f->fn, lua_upvalueindex(1),
                                    &r.agg.ptr, &r.agg.len);
        } else if (f->smode == S_BUFFER) {
            struct capffi_lua__buffer *rb =
                capffi_lua__buffer_push(L, f->st, f->ret_size);
            int rc = capffi_buf_data(&r.agg.ptr, &r.agg.len, rb->buf);
            if (rc)
                return capffi_lua__fail(L, f->st, rc, f->name);
        } else {
            r.agg.ptr = luaL_buffinitsize(L, &b, f->ret_size);
            r.agg.len = f->ret_size;
        }
    }
    /* Callback handlers run on this Lua thread while native code runs;
     * their failures are raised once it has returned. */
    struct capffi_lua__state *st = f->st;
    size_t failures = st->cb_failures;
    lua_State *prev = st->L;
    st->L = L;
    int rc = capffi_fn_call(f->fn, args, &r);
    st->L = prev;
    if (st->cb_failures != failures)
        capffi_lua__callback_check(L, st, failures, f->name);
    if (rc)
        return capffi_lua__fail(L, f->st, rc, f->name);
    switch (f->ret) {
    case K_VOID:
        return 0;
    case K_CSTRING:
        if (r.str)
            lua_pushstring(L, r.str);
        else
            lua_pushnil(L);
        break;
    case K_STRUCT:
        /* a struct value or buffer is on the top already */
        if (f->smode == S_STRING)
            luaL_pushresultsize(&b, f->ret_size);
        break;
    default:
        capffi_lua__scalar_push(L, f->ret, &r);
        break;
    }
    return 1;
}

const capffi_fn *
capffi_lua__fn_handle(lua_State *L, int idx)
{
    if (lua_tocfunction(L, idx) != fn_call)
        return NULL;
    lua_getupvalue(L, idx, 1);
    const struct fn *f = luaL_testudata(L, -1, CAPFFI_LUA_FN);
    lua_pop(L, 1);
    return f ? f->fn : NULL;
}

static int
fn_gc(lua_State *L)
{
    struct fn *f = lua_touserdata(L, 1);
    if (f->fn && f->st->ctx)
        capffi_fn_free(f->fn);
    f->fn = NULL;
    return 0;
}

/*
 * Push the closure for fn. keep_idx (0: none) is what it keeps alive: its
 * library. Takes ownership of fn (freed with the userdata on failure).
 */
static void
push_fn(lua_State *L, struct capffi_lua__state *st, int keep_idx,
        capffi_fn *cfn, const char *name, uint32_t flags, enum smode smode)
{
    size_t n = capffi_fn_arity(cfn), nlen = strlen(name);
    struct fn *f = lua_newuserdatauv(L, sizeof *f + n + nlen + 1, 1);
    memset(f, 0, sizeof *f);
    f->fn = cfn;
    f->st = st;
    luaL_setmetatable(L, CAPFFI_LUA_FN);
    if (keep_idx) {
        lua_pushvalue(L, keep_idx);
        lua_setiuservalue(L, -2, 1);
    }
    f->nparams = (uint8_t)n;
    f->wrap = (flags & CAPFFI_FN_WRAP) != 0;
    f->name = (const char *)f->kind + n;
    memcpy(f->kind + n, name, nlen + 1);
    for (size_t i = 0; i < n; i++) {
        const char *word = capffi_fn_param_type(cfn, i, NULL);
        int k = strcmp(word, "function") == 0 ? K_FUNCTION
                                              : capffi_lua__kind_of(word);
        if (k < 0)
            capffi_lua__error(L, CAPFFI_ETYPE,
                              "%s: parameter %zu has an unknown type", name,
                              i + 1);
        f->kind[i] = (uint8_t)k;
    }
    int k = capffi_lua__kind_of(capffi_fn_result_type(cfn, &f->ret_size));
    if (k < 0)
        capffi_lua__error(L, CAPFFI_ETYPE, "%s: the result has an unknown type",
                          name);
    f->ret = (uint8_t)k;
    if (smode != S_STRING && k != K_STRUCT)
        capffi_lua__error(L, CAPFFI_EINVAL,
                          "%s: the 'struct' option applies to a struct result, "
                          "and the result is %s",
                          name, capffi_fn_result_type(cfn, NULL));
    f->smode = (uint8_t)smode;
    lua_pushcclosure(L, fn_call, 1);
}

/* ---- binding ----------------------------------------------------------- */

/* Push a static's value, read as `type`. */
static void
push_static(lua_State *L, const capffi_value *v, const char *type)
{
    int k = capffi_lua__kind_of(type);
    if (k == K_CSTRING) {
        if (v->str)
            lua_pushstring(L, v->str);
        else
            lua_pushnil(L);
    } else {
        capffi_lua__scalar_push(L, k, v);
    }
}

static const char *const sym_keys[] = {
    "sig",  "parameters", "result", "name", "optional", "errno",
    "wrap", "deps",       "static", "type", "struct",   NULL,
};

static bool
opt_flag(lua_State *L, int idx, const char *key, const char *what)
{
    int t = lua_getfield(L, idx, key);
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
        capffi_lua__error(L, CAPFFI_ETYPE, "%s: '%s' must be a boolean", what,
                          key);
    bool on = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return on;
}

/* The `struct` option of the table at idx: what a struct result becomes. */
static enum smode
opt_smode(lua_State *L, int idx, const char *what)
{
    static const char *const names[] = { "string", "value", "buffer" };
    enum smode m = S_STRING;
    if (lua_getfield(L, idx, "struct") != LUA_TNIL) {
        const char *s = capffi_lua__check_string(L, -1, what);
        size_t i = 0;
        while (i < 3 && strcmp(s, names[i]) != 0)
            i++;
        if (i == 3)
            capffi_lua__error(L, CAPFFI_EINVAL,
                              "%s: 'struct' is \"string\", \"value\" or "
                              "\"buffer\", not \"%s\"",
                              what, s);
        m = (enum smode)i;
    }
    lua_pop(L, 1);
    return m;
}

/* Build "(p1, p2) -> r" from a Deno-style description at idx; pushes it. */
static const char *
deno_signature(lua_State *L, int idx, const char *what)
{
    luaL_Buffer b;
    lua_getfield(L, idx, "parameters");
    int params = lua_gettop(L);
    luaL_buffinit(L, &b);
    luaL_addchar(&b, '(');
    if (!lua_isnil(L, params)) {
        if (!lua_istable(L, params))
            capffi_lua__error(L, CAPFFI_ETYPE,
                              "%s: 'parameters' must be a list of types", what);
        lua_Integer n = luaL_len(L, params);
        for (lua_Integer i = 1; i <= n; i++) {
            /* The buffer's own calls need the stack as it left it: add
             * the separator before pushing the next type. */
            if (i > 1)
                luaL_addstring(&b, ", ");
            lua_geti(L, params, i);
            capffi_lua__check_string(L, -1, what);
            luaL_addvalue(&b);
        }
    }
    luaL_addstring(&b, ") -> ");
    lua_getfield(L, idx, "result");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, "void");
    }
    capffi_lua__check_string(L, -1, what);
    luaL_addvalue(&b);
    luaL_pushresult(&b);
    lua_remove(L, params);
    return lua_tostring(L, -1);
}

/*
 * Bind the symbol described by the value at val_idx under the Lua name
 * `key` into the symbols table at tab_idx.
 */
static void
bind_one(lua_State *L, struct lib *l, int lib_idx, int tab_idx, const char *key,
         int val_idx)
{
    const char *symbol = key, *sig = NULL;
    uint32_t flags = 0;
    enum smode smode = S_STRING;
    int top = lua_gettop(L);
    if (lua_type(L, val_idx) == LUA_TSTRING) {
        sig = lua_tostring(L, val_idx);
    } else if (lua_istable(L, val_idx)) {
        capffi_lua__check_keys(L, val_idx, key, sym_keys);
        if (lua_getfield(L, val_idx, "name") != LUA_TNIL)
            symbol = capffi_lua__check_string(L, -1, key);
        if (opt_flag(L, val_idx, "optional", key))
            flags |= CAPFFI_FN_OPTIONAL;
        if (opt_flag(L, val_idx, "errno", key))
            flags |= CAPFFI_FN_ERRNO;
        if (opt_flag(L, val_idx, "wrap", key))
            flags |= CAPFFI_FN_WRAP;
        if (opt_flag(L, val_idx, "deps", key))
            flags |= CAPFFI_FN_DEPS;
        smode = opt_smode(L, val_idx, key);
        const char *type = NULL;
        if (lua_getfield(L, val_idx, "static") != LUA_TNIL ||
            (lua_pop(L, 1), lua_getfield(L, val_idx, "type")) != LUA_TNIL) {
            type = capffi_lua__check_string(L, -1, key);
            capffi_value v;
            int rc = capffi_lib_static(&v, l->lib, symbol, type);
            if (rc == CAPFFI_ENOTFOUND && (flags & CAPFFI_FN_OPTIONAL)) {
                lua_settop(L, top);
                return;
            }
            if (rc)
                capffi_lua__fail(L, l->st, rc, key);
            push_static(L, &v, type);
            lua_setfield(L, tab_idx, key);
            lua_settop(L, top);
            return;
        }
        if (lua_getfield(L, val_idx, "sig") != LUA_TNIL)
            sig = capffi_lua__check_string(L, -1, key);
        else if (lua_getfield(L, val_idx, "parameters") != LUA_TNIL ||
                 (lua_pop(L, 1), lua_getfield(L, val_idx, "result")) !=
                     LUA_TNIL)
            sig = deno_signature(L, val_idx, key);
        else
            capffi_lua__error(L, CAPFFI_EINVAL,
                              "%s: give 'sig', 'parameters'/'result', or "
                              "'static'",
                              key);
    } else {
        capffi_lua__error(L, CAPFFI_ETYPE,
                          "%s: expected a signature string or a table, got %s",
                          key, capffi_lua__typename(L, val_idx));
    }
    capffi_fn *cfn;
    int rc = capffi_lib_bind(&cfn, l->lib, symbol, sig, flags);
    if (rc == CAPFFI_ENOTFOUND && (flags & CAPFFI_FN_OPTIONAL)) {
        lua_settop(L, top);
        return;
    }
    if (rc)
        capffi_lua__fail(L, l->st, rc, key);
    push_fn(L, l->st, lib_idx, cfn, key, flags, smode);
    lua_setfield(L, tab_idx, key);
    lua_settop(L, top);
}

static struct lib *
check_lib(lua_State *L, int idx)
{
    struct lib *l = luaL_testudata(L, idx, CAPFFI_LUA_LIB);
    if (!l)
        capffi_lua__error(L, CAPFFI_ETYPE, "expected a capffi library, got %s",
                          capffi_lua__typename(L, idx));
    return l;
}

static void
close_lib(struct lib *l)
{
    if (!l->closed && l->st->ctx)
        capffi_lib_close(l->lib);
    l->closed = true;
}

/* bind_all(lib, symbols), called protected: bind every symbol of the
 * table into the library's symbols table. */
static int
bind_all(lua_State *L)
{
    struct lib *l = lua_touserdata(L, 1);
    lua_getiuservalue(L, 1, 1);
    int tab = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            capffi_lua__error(L, CAPFFI_EINVAL,
                              "dlopen: symbol names must be strings, got %s",
                              capffi_lua__typename(L, -2));
        bind_one(L, l, 1, tab, lua_tostring(L, -2), lua_gettop(L));
        lua_pop(L, 1);
    }
    return 0;
}

static const char *const open_keys[] = { "lazy", "global", NULL };

int
capffi_lua__lib_open(lua_State *L, struct capffi_lua__state *st,
                     const capffi_token *tok, const char *path, int syms_idx,
                     int opts_idx, bool ambient)
{
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    if (syms_idx && !capffi_lua__opt_table(L, syms_idx, "dlopen: symbols"))
        syms_idx = 0;
    uint32_t flags = 0;
    if (opts_idx && capffi_lua__opt_table(L, opts_idx, "dlopen: options")) {
        capffi_lua__check_keys(L, opts_idx, "dlopen: options", open_keys);
        if (opt_flag(L, opts_idx, "lazy", "dlopen: options"))
            flags |= CAPFFI_LIB_LAZY;
        if (opt_flag(L, opts_idx, "global", "dlopen: options"))
            flags |= CAPFFI_LIB_GLOBAL;
    }
    capffi_lib *clib;
    int rc = capffi_lib_open(&clib, ctx, tok, path, flags);
    if (rc)
        return capffi_lua__fail(L, st, rc, "dlopen");
    struct lib *l = lua_newuserdatauv(L, sizeof *l, 1);
    l->lib = clib;
    l->st = st;
    l->tok = *tok;
    l->ambient = ambient;
    l->closed = false;
    luaL_setmetatable(L, CAPFFI_LUA_LIB);
    lua_newtable(L);
    lua_setiuservalue(L, -2, 1);
    int lib_idx = lua_gettop(L);
    if (ambient) {
        lua_getfield(L, LUA_REGISTRYINDEX, CAPFFI_LUA_AMBIENT);
        lua_pushvalue(L, lib_idx);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
        lua_pop(L, 1);
    }
    if (syms_idx) {
        /* Bind in a protected call: on any failure the library is closed
         * before the error goes on. */
        lua_pushcfunction(L, bind_all);
        lua_pushvalue(L, lib_idx);
        lua_pushvalue(L, syms_idx);
        if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
            close_lib(l);
            return lua_error(L);
        }
    }
    lua_settop(L, lib_idx);
    return 1;
}

/* capffi.dlopen(path, symbols [, options]): through the permission in
 * force now, with a token minted for this call alone. */
int
capffi_lua__dlopen_ambient(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    const char *path = capffi_lua__opt_string(L, 1, "dlopen: path");
    capffi_scope scope;
    memset(&scope, 0, sizeof scope);
    scope.rights = path ? CAPFFI_RIGHT_DLOPEN : CAPFFI_RIGHT_DLOPEN_GLOBAL;
    if (capffi_lua__opt_table(L, 3, "dlopen: options") &&
        opt_flag(L, 3, "global", "dlopen: options"))
        scope.rights |= CAPFFI_RIGHT_DLOPEN_GLOBAL;
    scope.max_uses = 1;
    capffi_token tok;
    int rc = capffi_token_new(&tok, ctx, "ambient", &scope);
    if (rc)
        return capffi_lua__fail(L, st, rc, "dlopen");
    return capffi_lua__lib_open(L, st, &tok, path, 2, 3, true);
}

void
capffi_lua__ambient_revoke(lua_State *L, struct capffi_lua__state *st,
                           const char *path)
{
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    lua_getfield(L, LUA_REGISTRYINDEX, CAPFFI_LUA_AMBIENT);
    int set = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, set)) {
        lua_pop(L, 1);
        struct lib *l = lua_touserdata(L, -1);
        bool cut = true;
        if (path && !l->closed) {
            const char *file = capffi_lib_path(l->lib);
            capffi_perm_state ps;
            cut = capffi_perm_query(&ps, ctx, *file ? file : NULL) != 0 ||
                  ps != CAPFFI_PERM_GRANTED;
        }
        if (cut) {
            if (!l->closed)
                capffi_token_revoke(ctx, &l->tok);
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L,
                       set); /* clearing a field during lua_next is allowed */
        }
    }
    lua_pop(L, 1);
}

/* tok:fnptr(pointer, signature [, options]): a function pointer made
 * callable (CAPFFI_RIGHT_FNPTR); revoked with the token. */
int
capffi_lua__fn_from_ptr(lua_State *L, struct capffi_lua__state *st,
                        const capffi_token *tok, int ptr_idx, int sig_idx,
                        int opts_idx)
{
    static const char *const keys[] = { "errno", "wrap", "struct", NULL };
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    if (!lua_islightuserdata(L, ptr_idx))
        return capffi_lua__error(L, CAPFFI_ETYPE,
                                 "fnptr: expected a pointer, got %s",
                                 capffi_lua__typename(L, ptr_idx));
    void *code = lua_touserdata(L, ptr_idx);
    const char *sig = capffi_lua__check_string(L, sig_idx, "fnptr: signature");
    uint32_t flags = 0;
    enum smode smode = S_STRING;
    if (capffi_lua__opt_table(L, opts_idx, "fnptr: options")) {
        capffi_lua__check_keys(L, opts_idx, "fnptr: options", keys);
        smode = opt_smode(L, opts_idx, "fnptr: options");
        if (opt_flag(L, opts_idx, "errno", "fnptr: options"))
            flags |= CAPFFI_FN_ERRNO;
        if (opt_flag(L, opts_idx, "wrap", "fnptr: options"))
            flags |= CAPFFI_FN_WRAP;
    }
    capffi_fn *cfn;
    int rc = capffi_fn_from_ptr(&cfn, ctx, tok, code, sig, flags);
    if (rc)
        return capffi_lua__fail(L, st, rc, "fnptr");
    push_fn(L, st, 0, cfn, "fnptr", flags, smode);
    return 1;
}

/* ---- the library object ------------------------------------------------ */

/* lib:close(): its functions then raise CAPFFI_ECLOSED. */
static int
lib_close(lua_State *L)
{
    struct lib *l = check_lib(L, 1);
    capffi_lua__ctx(L, l->st);
    close_lib(l);
    return 0;
}

/* lib:path(): the file that was loaded ("" for the process scope). */
static int
lib_path(lua_State *L)
{
    struct lib *l = check_lib(L, 1);
    capffi_lua__ctx(L, l->st);
    lua_pushstring(L, capffi_lib_path(l->lib));
    return 1;
}

/* lib.NAME: a method, else lib.symbols.NAME; lib.symbols: the table. */
static int
lib_index(lua_State *L)
{
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
        return 1;
    lua_getiuservalue(L, 1, 1);
    if (lua_type(L, 2) == LUA_TSTRING &&
        strcmp(lua_tostring(L, 2), "symbols") == 0)
        return 1;
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

static int
lib_gc(lua_State *L)
{
    close_lib(lua_touserdata(L, 1));
    return 0;
}

static int
lib_tostring(lua_State *L)
{
    struct lib *l = luaL_checkudata(L, 1, CAPFFI_LUA_LIB);
    if (l->closed || !l->st->ctx)
        lua_pushliteral(L, "capffi.library(closed)");
    else
        lua_pushfstring(L, "capffi.library(%s)", capffi_lib_path(l->lib));
    return 1;
}

void
capffi_lua__lib_init(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "close", lib_close },
        { "path", lib_path },
        { NULL, NULL },
    };
    static const luaL_Reg meta[] = {
        { "__gc", lib_gc },
        { "__close", lib_gc },
        { "__tostring", lib_tostring },
        { NULL, NULL },
    };
    capffi_lua__new_class(L, CAPFFI_LUA_LIB, NULL, meta);
    luaL_newlib(L, methods);
    lua_pushcclosure(L, lib_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    capffi_lua__new_class(L, CAPFFI_LUA_FN, NULL,
                          (const luaL_Reg[]){
                              { "__gc", fn_gc },
                              { NULL, NULL },
                          });
    lua_pop(L, 1);
}
