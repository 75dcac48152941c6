/*
 * perm/token.c - capffi.token: tokens as Lua values.
 *
 * A token userdata holds the token's value (id and tag). Lua code cannot
 * make one except through capffi.token and tok:attenuate, cannot read its
 * tag, and cannot reach its methods' table (the metatable is locked), so a
 * script that holds no token cannot obtain one by forging or by
 * intercepting another module's calls.
 *
 * Collecting a token revokes nothing (the libraries opened through it keep
 * working); closing a to-be-closed variable holding one revokes it.
 *
 * The methods here are the token's own. The methods that make another
 * layer's objects are added by that layer: tok:type, tok:sizeof and
 * tok:offsetof (types/type.c), tok:pointer_of and tok:pointer_from
 * (memory/pointer.c), tok:view (memory/view.c), tok:fnptr (call/fn.c),
 * tok:dlopen (call/lib.c), tok:callback (callback/callback.c).
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "perm/perm.h"

/* ---- rights, ids and paths --------------------------------------------- */

static const struct {
    const char *name;
    uint32_t bit;
} right_names[] = {
    { "dlopen", CAPFFI_RIGHT_DLOPEN },
    { "dlopen_global", CAPFFI_RIGHT_DLOPEN_GLOBAL },
    { "callback", CAPFFI_RIGHT_CALLBACK },
    { "pointer", CAPFFI_RIGHT_POINTER },
    { "read", CAPFFI_RIGHT_READ },
    { "write", CAPFFI_RIGHT_WRITE },
    { "fnptr", CAPFFI_RIGHT_FNPTR },
};
#define N_RIGHTS (sizeof right_names / sizeof right_names[0])

uint32_t
capffi_lua__rights(lua_State *L, int idx, const char *what)
{
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx))
        capffi_lua__error(L, CAPFFI_ETYPE,
                          "%s: expected a list of right names, got %s", what,
                          capffi_lua__typename(L, idx));
    lua_Integer n = luaL_len(L, idx);
    if (n == 0)
        capffi_lua__error(L, CAPFFI_EINVAL,
                          "%s is empty (leave it out to keep every right)",
                          what);
    uint32_t bits = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        const char *name = capffi_lua__check_string(L, -1, what);
        size_t k = 0;
        while (k < N_RIGHTS && strcmp(right_names[k].name, name) != 0)
            k++;
        if (k == N_RIGHTS)
            capffi_lua__error(L, CAPFFI_EINVAL,
                              "%s: unknown right '%s' (dlopen, dlopen_global, "
                              "callback, pointer, read, write, fnptr)",
                              what, name);
        bits |= right_names[k].bit;
        lua_pop(L, 1);
    }
    return bits;
}

void
capffi_lua__push_rights(lua_State *L, uint32_t rights)
{
    lua_createtable(L, (int)N_RIGHTS, 0);
    int n = 0;
    for (size_t k = 0; k < N_RIGHTS; k++) {
        if (rights & right_names[k].bit) {
            lua_pushstring(L, right_names[k].name);
            lua_rawseti(L, -2, ++n);
        }
    }
}

void
capffi_lua__push_id(lua_State *L, uint64_t id)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, id);
    lua_pushstring(L, hex);
}

/* Resolve the paths array at idx (bare sonames through
 * capffi_lib_resolve) into a userdata of `const char *` pushed on the
 * stack, with the resolved strings kept alive in its user value. */
static const char *const *
scope_paths(lua_State *L, int idx, const char *what,
            struct capffi_lua__state *st, size_t *n)
{
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx))
        capffi_lua__error(L, CAPFFI_ETYPE,
                          "%s: expected a list of paths, got %s", what,
                          capffi_lua__typename(L, idx));
    lua_Integer len = luaL_len(L, idx);
    if (len <= 0 || len > 4096)
        capffi_lua__error(L, CAPFFI_EINVAL,
                          "%s: give 1 to 4096 paths (leave it out to keep "
                          "every path)",
                          what);
    const char **v = lua_newuserdatauv(L, (size_t)len * sizeof *v, 1);
    lua_createtable(L, (int)len, 0); /* keeps the resolved strings alive */
    for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, idx, i);
        const char *p = capffi_lua__check_string(L, -1, what);
        char found[PATH_MAX];
        int rc = capffi_lib_resolve(found, sizeof found, st->ctx, p);
        if (rc)
            capffi_lua__fail(L, st, rc, what);
        lua_pop(L, 1);
        lua_pushstring(L, found);
        v[i - 1] = lua_tostring(L, -1);
        lua_rawseti(L, -2, i);
    }
    lua_setiuservalue(L, -2, 1);
    *n = (size_t)len;
    return v;
}

/* ---- tokens ------------------------------------------------------------ */

struct capffi_lua__token *
capffi_lua__token_check(lua_State *L, int idx)
{
    return capffi_lua__check_object(L, idx, CAPFFI_LUA_TOKEN, "token");
}

static struct capffi_lua__token *
push_token(lua_State *L, struct capffi_lua__state *st, const capffi_token *tok)
{
    struct capffi_lua__token *t = lua_newuserdatauv(L, sizeof *t, 0);
    t->tok = *tok;
    t->st = st;
    luaL_setmetatable(L, CAPFFI_LUA_TOKEN);
    return t;
}

static const char *const scope_keys[] = {
    "label", "rights", "paths", "uses", "ttl_ms", NULL,
};

/*
 * Read a scope table at idx (0: none) into *scope. Pushes what keeps the
 * path strings alive (one value, possibly nil). Returns the label.
 */
static const char *
read_scope(lua_State *L, int idx, const char *what,
           struct capffi_lua__state *st, capffi_scope *scope)
{
    memset(scope, 0, sizeof *scope);
    if (!idx || !capffi_lua__opt_table(L, idx, what)) {
        lua_pushnil(L);
        return NULL;
    }
    capffi_lua__check_keys(L, idx, what, scope_keys);
    const char *label = NULL;
    if (lua_getfield(L, idx, "label") != LUA_TNIL)
        label = capffi_lua__check_string(L, -1, "label");
    /* the string stays alive: it is a field of the caller's table */
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "rights") != LUA_TNIL)
        scope->rights = capffi_lua__rights(L, -1, "rights");
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "uses") != LUA_TNIL) {
        lua_Integer n = capffi_lua__check_integer(L, -1, "uses");
        if (n < 1)
            capffi_lua__error(L, CAPFFI_ERANGE,
                              "uses: %lld is not a positive count",
                              (long long)n);
        scope->max_uses = (uint64_t)n;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "ttl_ms") != LUA_TNIL) {
        lua_Integer n = capffi_lua__check_integer(L, -1, "ttl_ms");
        if (n < 1)
            capffi_lua__error(L, CAPFFI_ERANGE,
                              "ttl_ms: %lld is not a positive duration",
                              (long long)n);
        scope->ttl_ms = (uint64_t)n;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "paths") != LUA_TNIL) {
        scope->paths = scope_paths(L, -1, "paths", st, &scope->n_paths);
        lua_remove(L, -2);
    }
    return label;
}

/* capffi.token([scope]) */
int
capffi_lua__token_new(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    capffi_scope scope;
    const char *label =
        read_scope(L, lua_isnone(L, 1) ? 0 : 1, "token", st, &scope);
    capffi_token tok;
    int rc = capffi_token_new(&tok, ctx, label ? label : "lua", &scope);
    if (rc)
        return capffi_lua__fail(L, st, rc, "token");
    push_token(L, st, &tok);
    return 1;
}

/* tok:attenuate([scope]) */
static int
token_attenuate(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_ctx *ctx = capffi_lua__ctx(L, t->st);
    capffi_scope scope;
    scope.label =
        read_scope(L, lua_isnone(L, 2) ? 0 : 2, "attenuate", t->st, &scope);
    capffi_token child;
    int rc = capffi_token_attenuate(&child, ctx, &t->tok, &scope);
    if (rc)
        return capffi_lua__fail(L, t->st, rc, "attenuate");
    push_token(L, t->st, &child);
    return 1;
}

/* tok:revoke() */
static int
token_revoke(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_ctx *ctx = capffi_lua__ctx(L, t->st);
    int rc = capffi_token_revoke(ctx, &t->tok);
    if (rc)
        return capffi_lua__fail(L, t->st, rc, "revoke");
    return 0;
}

/* tok:check(rights [, path]): true, or the error of the refusal. Counts
 * one use, as every operation through the token does. */
static int
token_check(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_ctx *ctx = capffi_lua__ctx(L, t->st);
    uint32_t rights = capffi_lua__rights(L, 2, "check: rights");
    const char *path = capffi_lua__opt_string(L, 3, "check: path");
    int rc = capffi_token_check(ctx, &t->tok, rights, path);
    if (rc)
        return capffi_lua__fail(L, t->st, rc, "check");
    lua_pushboolean(L, 1);
    return 1;
}

/* tok:info() */
static int
token_info(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_ctx *ctx = capffi_lua__ctx(L, t->st);
    capffi_token_desc d;
    int rc = capffi_token_info(&d, ctx, &t->tok);
    if (rc)
        return capffi_lua__fail(L, t->st, rc, "info");
    lua_createtable(L, 0, 10);
    capffi_lua__push_id(L, t->tok.id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, d.label);
    lua_setfield(L, -2, "label");
    capffi_lua__push_rights(L, d.rights);
    lua_setfield(L, -2, "rights");
    if (d.parent_id) {
        capffi_lua__push_id(L, d.parent_id);
        lua_setfield(L, -2, "parent");
    }
    lua_pushinteger(L, (lua_Integer)d.depth);
    lua_setfield(L, -2, "depth");
    if (d.uses_left != UINT64_MAX) {
        lua_pushinteger(L, (lua_Integer)d.uses_left);
        lua_setfield(L, -2, "uses_left");
    }
    if (d.expires_in_ms >= 0) {
        lua_pushinteger(L, (lua_Integer)d.expires_in_ms);
        lua_setfield(L, -2, "expires_in_ms");
    }
    lua_pushboolean(L, d.all_paths);
    lua_setfield(L, -2, "all_paths");
    lua_pushinteger(L, (lua_Integer)d.n_paths);
    lua_setfield(L, -2, "n_paths");
    lua_pushboolean(L, d.revoked);
    lua_setfield(L, -2, "revoked");
    return 1;
}

static int
token_tostring(lua_State *L)
{
    struct capffi_lua__token *t = luaL_checkudata(L, 1, CAPFFI_LUA_TOKEN);
    capffi_token_desc d;
    if (t->st->ctx && capffi_token_info(&d, t->st->ctx, &t->tok) == 0)
        lua_pushfstring(L, "capffi.token(%s, ", d.label);
    else
        lua_pushliteral(L, "capffi.token(");
    capffi_lua__push_id(L, t->tok.id);
    lua_pushliteral(L, ")");
    lua_concat(L, 3);
    return 1;
}

static int
token_eq(lua_State *L)
{
    struct capffi_lua__token *a = luaL_testudata(L, 1, CAPFFI_LUA_TOKEN);
    struct capffi_lua__token *b = luaL_testudata(L, 2, CAPFFI_LUA_TOKEN);
    lua_pushboolean(L, a && b && a->st == b->st &&
                           memcmp(&a->tok, &b->tok, sizeof a->tok) == 0);
    return 1;
}

/* A to-be-closed token is revoked when its variable goes out of scope. */
static int
token_close(lua_State *L)
{
    struct capffi_lua__token *t = luaL_checkudata(L, 1, CAPFFI_LUA_TOKEN);
    if (t->st->ctx)
        capffi_token_revoke(t->st->ctx, &t->tok);
    return 0;
}

void
capffi_lua__token_init(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "attenuate", token_attenuate },
        { "revoke", token_revoke },
        { "check", token_check },
        { "info", token_info },
        { NULL, NULL },
    };
    static const luaL_Reg meta[] = {
        { "__tostring", token_tostring },
        { "__eq", token_eq },
        { "__close", token_close },
        { NULL, NULL },
    };
    capffi_lua__new_class(L, CAPFFI_LUA_TOKEN, methods, meta);
    lua_pop(L, 1);
}
