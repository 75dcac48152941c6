/*
 * call/lib.c - libraries: tok:dlopen and capffi.dlopen.
 *
 * They return a library userdata whose fields are the bound symbols: bound
 * functions (fn.c) and the values of statics. A library opened through
 * capffi.dlopen is ambient: its token was minted from the permission for
 * it alone, and revoking the permission revokes it (perm/perm.c).
 */
#include <limits.h>
#include <string.h>

#include "call/call.h"

struct lib {
    struct capffi_lua__libref ref; /* the library, its token, closed */
    struct capffi_lua__state *st;
    const char *path; /* capffi_lib_path: valid as long as the context */
    bool ambient;     /* the token was minted for this library */
};

/* ---- binding ----------------------------------------------------------- */

static const char *const sym_keys[] = {
    "sig",  "parameters", "result", "name",   "optional", "errno", "wrap",
    "deps", "static",     "type",   "struct", "async",    NULL,
};

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
 * A symbol found in a dependency of the library is refused unless bound
 * with CAPFFI_FN_DEPS, and the context's message says so in C's terms:
 * raise it in the Lua option's name, `deps = true`. Returns when the
 * message is about something else.
 */
static void
deps_hint(lua_State *L, const struct capffi_lua__state *st, const char *key)
{
    static const char flag[] = "CAPFFI_FN_DEPS";
    const char *msg = capffi_ctx_errmsg(st->ctx);
    const char *at = strstr(msg, flag);
    if (!at)
        return;
    capffi_lua__error(L, CAPFFI_EPERM, "%s: %.*sdeps = true%s", key,
                      (int)(at - msg), msg, at + sizeof flag - 1);
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
    bool async = false;
    enum capffi_lua__smode smode = CAPFFI_LUA__SMODE_STRING;
    int top = lua_gettop(L);
    if (lua_type(L, val_idx) == LUA_TSTRING) {
        sig = lua_tostring(L, val_idx);
    } else if (lua_istable(L, val_idx)) {
        capffi_lua__check_keys(L, val_idx, key, sym_keys);
        if (lua_getfield(L, val_idx, "name") != LUA_TNIL)
            symbol = capffi_lua__check_string(L, -1, key);
        if (capffi_lua__opt_flag(L, val_idx, "optional", key))
            flags |= CAPFFI_FN_OPTIONAL;
        if (capffi_lua__opt_flag(L, val_idx, "errno", key))
            flags |= CAPFFI_FN_ERRNO;
        if (capffi_lua__opt_flag(L, val_idx, "wrap", key))
            flags |= CAPFFI_FN_WRAP;
        if (capffi_lua__opt_flag(L, val_idx, "deps", key))
            flags |= CAPFFI_FN_DEPS;
        smode = capffi_lua__opt_smode(L, val_idx, key);
        async = capffi_lua__opt_flag(L, val_idx, "async", key);
        const char *type = NULL;
        if (lua_getfield(L, val_idx, "static") != LUA_TNIL ||
            (lua_pop(L, 1), lua_getfield(L, val_idx, "type")) != LUA_TNIL) {
            type = capffi_lua__check_string(L, -1, key);
            capffi_value v;
            int rc = capffi_lib_static(&v, l->ref.lib, symbol, type);
            if (rc == CAPFFI_ENOTFOUND && (flags & CAPFFI_FN_OPTIONAL)) {
                lua_settop(L, top);
                return;
            }
            if (rc)
                capffi_lua__fail(L, l->st, rc, key);
            capffi_lua__value_push(L, capffi_lua__kind_of(type), &v);
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
    int rc = capffi_lib_bind(&cfn, l->ref.lib, symbol, sig, flags);
    if (rc == CAPFFI_ENOTFOUND && (flags & CAPFFI_FN_OPTIONAL)) {
        lua_settop(L, top);
        return;
    }
    if (rc == CAPFFI_EPERM && !(flags & CAPFFI_FN_DEPS))
        deps_hint(L, l->st, key);
    if (rc)
        capffi_lua__fail(L, l->st, rc, key);
    capffi_lua__fn_push(L, l->st, lib_idx, cfn, key, sig, &l->ref.tok,
                        flags | (async ? CAPFFI_LUA__FN_ASYNC : 0), smode);
    lua_setfield(L, tab_idx, key);
    lua_settop(L, top);
}

static struct lib *
check_lib(lua_State *L, int idx)
{
    return capffi_lua__check_object(L, idx, CAPFFI_LUA_LIB, "library");
}

static void
close_lib(struct lib *l)
{
    if (!l->ref.closed && l->st->ctx)
        capffi_lib_close(l->ref.lib);
    l->ref.closed = true;
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

/*
 * Open the library at path (NULL: the process scope) through tok and bind
 * the symbols described by the table at syms_idx (0: none), with the
 * options table at opts_idx (0: none). Pushes the library userdata.
 * ambient: the token was minted for this one call; the library is then
 * revoked when the context's permission stops covering it.
 */
static int
lib_open(lua_State *L, struct capffi_lua__state *st, const capffi_token *tok,
         const char *path, int syms_idx, int opts_idx, bool ambient)
{
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    if (syms_idx && !capffi_lua__opt_table(L, syms_idx, "dlopen: symbols"))
        syms_idx = 0;
    uint32_t flags = 0;
    if (opts_idx && capffi_lua__opt_table(L, opts_idx, "dlopen: options")) {
        capffi_lua__check_keys(L, opts_idx, "dlopen: options", open_keys);
        if (capffi_lua__opt_flag(L, opts_idx, "lazy", "dlopen: options"))
            flags |= CAPFFI_LIB_LAZY;
        if (capffi_lua__opt_flag(L, opts_idx, "global", "dlopen: options"))
            flags |= CAPFFI_LIB_GLOBAL;
    }
    capffi_lib *clib;
    int rc = capffi_lib_open(&clib, ctx, tok, path, flags);
    if (rc)
        return capffi_lua__fail(L, st, rc, "dlopen");
    struct lib *l = lua_newuserdatauv(L, sizeof *l, 1);
    l->ref.lib = clib;
    l->ref.tok = *tok;
    l->ref.closed = false;
    l->st = st;
    l->path = capffi_lib_path(clib);
    l->ambient = ambient;
    luaL_setmetatable(L, CAPFFI_LUA_LIB);
    lua_newtable(L);
    lua_setiuservalue(L, -2, 1);
    int lib_idx = lua_gettop(L);
    if (ambient)
        capffi_lua__ambient_add(L, lib_idx, &l->ref);
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
        capffi_lua__opt_flag(L, 3, "global", "dlopen: options"))
        scope.rights |= CAPFFI_RIGHT_DLOPEN_GLOBAL;
    scope.max_uses = 1;
    capffi_token tok;
    int rc = capffi_token_new(&tok, ctx, "ambient", &scope);
    if (rc)
        return capffi_lua__fail(L, st, rc, "dlopen");
    return lib_open(L, st, &tok, path, 2, 3, true);
}

/* tok:dlopen(path, symbols [, options]); path nil: the process scope. */
static int
token_dlopen(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_lua__ctx(L, t->st);
    const char *path = capffi_lua__opt_string(L, 2, "dlopen: path");
    capffi_token tok = t->tok;
    return lib_open(L, t->st, &tok, path, 3, 4, false);
}

/* capffi.resolve(name): the file a soname names (capffi_lib_resolve). */
int
capffi_lua__resolve(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    const char *name = capffi_lua__check_string(L, 1, "resolve");
    char found[PATH_MAX];
    int rc = capffi_lib_resolve(found, sizeof found, ctx, name);
    if (rc)
        return capffi_lua__fail(L, st, rc, "resolve");
    lua_pushstring(L, found);
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
    lua_pushstring(L, l->path);
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
    if (l->ref.closed || !l->st->ctx)
        lua_pushliteral(L, "capffi.library(closed)");
    else
        lua_pushfstring(L, "capffi.library(%s)", l->path);
    return 1;
}

void
capffi_lua__lib_init(lua_State *L)
{
    static const luaL_Reg token_methods[] = {
        { "dlopen", token_dlopen },
        { NULL, NULL },
    };
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
    capffi_lua__add_methods(L, CAPFFI_LUA_TOKEN, token_methods);
}
