/*
 * perm/perm.c - capffi.permissions: query, request and revoke the context's FFI
 * permission, as Deno's Deno.permissions does for { name: "ffi" }.
 *
 * Revoking here also revokes the libraries opened through capffi.dlopen
 * that the permission no longer covers: ambient FFI lasts only as long as
 * the permission. Tokens keep what they were minted with.
 */
#include <limits.h>
#include <string.h>

#include "perm/perm.h"

/* Registry key: the ambient libraries, a table with weak keys (the library
 * userdata) whose values are their capffi_lua__libref. */
#define AMBIENT "capffi.ambient"

void
capffi_lua__perm_init(lua_State *L)
{
    /* Weak keys: an ambient library that is collected leaves the set. */
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, AMBIENT);
}

void
capffi_lua__ambient_add(lua_State *L, int idx, struct capffi_lua__libref *ref)
{
    idx = lua_absindex(L, idx);
    lua_getfield(L, LUA_REGISTRYINDEX, AMBIENT);
    lua_pushvalue(L, idx);
    lua_pushlightuserdata(L, ref);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

/*
 * After capffi_perm_revoke(path): revoke the ambient libraries the
 * permission no longer covers (every one when path is NULL). A ref stays
 * valid while its library is in the set: a collected key leaves the set
 * before its memory is freed.
 */
static void
ambient_revoke(lua_State *L, struct capffi_lua__state *st, const char *path)
{
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    lua_getfield(L, LUA_REGISTRYINDEX, AMBIENT);
    int set = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, set)) {
        struct capffi_lua__libref *l = lua_touserdata(L, -1);
        lua_pop(L, 1);
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

/*
 * The path a descriptor names: nil (unscoped), a path or soname, or a
 * table { name = "ffi", path = ... }. A soname is resolved to its file
 * into buf.
 */
static const char *
descriptor_path(lua_State *L, struct capffi_lua__state *st, const char *what,
                char *buf, size_t cap)
{
    const char *path = NULL;
    if (lua_istable(L, 1)) {
        static const char *const keys[] = { "name", "path", NULL };
        capffi_lua__check_keys(L, 1, what, keys);
        lua_getfield(L, 1, "name");
        const char *name = capffi_lua__opt_string(L, -1, what);
        if (name && strcmp(name, "ffi") != 0)
            capffi_lua__error(L, CAPFFI_EINVAL,
                              "%s: only the \"ffi\" permission exists here, "
                              "not \"%s\"",
                              what, name);
        lua_getfield(L, 1, "path");
        path = capffi_lua__opt_string(L, -1, what);
    } else {
        path = capffi_lua__opt_string(L, 1, what);
    }
    if (!path)
        return NULL;
    int rc = capffi_lib_resolve(buf, cap, st->ctx, path);
    if (rc)
        capffi_lua__fail(L, st, rc, what);
    return buf;
}

typedef int (*perm_fn)(capffi_perm_state *, capffi_ctx *, const char *);

static int
perm_do(lua_State *L, perm_fn fn, const char *what, bool revoke)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    char buf[PATH_MAX];
    const char *path = descriptor_path(L, st, what, buf, sizeof buf);
    capffi_perm_state s;
    int rc = fn(&s, ctx, path);
    /* On CAPFFI_ENOMEM capffi withdrew everything (fail closed). */
    if (revoke && (rc == CAPFFI_OK || rc == CAPFFI_ENOMEM))
        ambient_revoke(L, st, rc ? NULL : path);
    if (rc)
        return capffi_lua__fail(L, st, rc, what);
    lua_pushstring(L, capffi_perm_state_name(s));
    return 1;
}

static int
perm_query(lua_State *L)
{
    return perm_do(L, capffi_perm_query, "permissions.query", false);
}

static int
perm_request(lua_State *L)
{
    return perm_do(L, capffi_perm_request, "permissions.request", false);
}

static int
perm_revoke(lua_State *L)
{
    return perm_do(L, capffi_perm_revoke, "permissions.revoke", true);
}

void
capffi_lua__perm_push(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "query", perm_query },
        { "request", perm_request },
        { "revoke", perm_revoke },
        { NULL, NULL },
    };
    lua_newtable(L);
    lua_insert(L, -2);
    luaL_setfuncs(L, fns, 1);
}
