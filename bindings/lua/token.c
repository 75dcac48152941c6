/*
 * token.c - capffi.token: tokens as Lua values.
 *
 * A token userdata holds the token's value (id and tag). Lua code cannot
 * make one except through capffi.token and tok:attenuate, cannot read its
 * tag, and cannot reach its methods' table (the metatable is locked), so a
 * script that holds no token cannot obtain one by forging or by
 * intercepting another module's calls.
 *
 * Collecting a token revokes nothing (the libraries opened through it keep
 * working); closing a to-be-closed variable holding one revokes it.
 */
#include <string.h>

#include "capffi_lua.h"

struct capffi_lua__token *
capffi_lua__token_check(lua_State *L, int idx)
{
    struct capffi_lua__token *t = luaL_testudata(L, idx, CAPFFI_LUA_TOKEN);
    if (!t)
        capffi_lua__error(L, CAPFFI_ETYPE, "expected a capffi token, got %s",
                          capffi_lua__typename(L, idx));
    return t;
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
        scope->paths = capffi_lua__paths(L, -1, "paths", st, &scope->n_paths);
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

/* tok:dlopen(path, symbols [, options]); path nil: the process scope. */
static int
token_dlopen(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_lua__ctx(L, t->st);
    const char *path = capffi_lua__opt_string(L, 2, "dlopen: path");
    capffi_token tok = t->tok;
    return capffi_lua__lib_open(L, t->st, &tok, path, 3, 4, false);
}

/* tok:fnptr(pointer, signature [, options]) */
static int
token_fnptr(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_token tok = t->tok;
    return capffi_lua__fn_from_ptr(L, t->st, &tok, 2, 3, 4);
}

/*
 * tok:pointer_of(buf): the address of the buffer's bytes, for native code
 * to keep beyond a call (CAPFFI_RIGHT_POINTER). Pins the buffer: its bytes
 * stay until a matching buf:unpin(), even across buf:free(). nil for an
 * empty buffer, which is pinned all the same.
 */
static int
token_pointer_of(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_ctx *ctx = capffi_lua__ctx(L, t->st);
    struct capffi_lua__buffer *b = capffi_lua__buffer_test(L, 2, true);
    if (!b)
        return capffi_lua__error(L, CAPFFI_ETYPE,
                                 "pointer_of: expected a capffi buffer, got %s",
                                 capffi_lua__typename(L, 2));
    void *p;
    int rc = capffi_ptr_of(&p, ctx, &t->tok, b->buf);
    if (rc)
        return capffi_lua__fail(L, t->st, rc, "pointer_of");
    b->pins++;
    if (p)
        lua_pushlightuserdata(L, p);
    else
        lua_pushnil(L);
    return 1;
}

/* tok:pointer_from(addr): the pointer at an integer address
 * (CAPFFI_RIGHT_POINTER); nil for 0. addr converts as a usize argument. */
static int
token_pointer_from(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_ctx *ctx = capffi_lua__ctx(L, t->st);
    capffi_value a;
    char why[128];
    int rc = capffi_lua__scalar_in(L, 2, CAPFFI_LUA__U64, false, &a, why,
                                   sizeof why);
    if (rc)
        return capffi_lua__error(L, rc, "pointer_from: %s", why);
    void *p;
    if ((rc = capffi_ptr_from_addr(&p, ctx, &t->tok, (uintptr_t)a.u64)))
        return capffi_lua__fail(L, t->st, rc, "pointer_from");
    if (p)
        lua_pushlightuserdata(L, p);
    else
        lua_pushnil(L);
    return 1;
}

/*
 * tok:view(buf [, access]): a view of a buffer's bytes that may read
 * pointers out of them (CAPFFI_RIGHT_POINTER; "rw" by default), as for
 * an out-parameter a native function filled with an address.
 */
static int
token_view_buffer(lua_State *L, struct capffi_lua__token *t,
                  struct capffi_lua__buffer *b)
{
    capffi_ctx *ctx = capffi_lua__ctx(L, t->st);
    uint32_t access = capffi_lua__access(
        L, 3, CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE, "view: access");
    struct capffi_lua__view *v = capffi_lua__view_push(L, t->st);
    v->access = access;
    int rc = capffi_view_of_buf_tok(&v->view, ctx, &t->tok, b->buf, access);
    if (rc)
        return capffi_lua__fail(L, t->st, rc, "view");
    return 1;
}

/*
 * tok:view(pointer, len [, access]): a view of len bytes of native memory
 * (access "r" by default; "w" and "rw" need the write right). len
 * "unbounded" reaches the end of the address space and needs the read
 * and pointer rights. With a buffer instead of a pointer: token_view_buffer.
 */
static int
token_view(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_ctx *ctx = capffi_lua__ctx(L, t->st);
    struct capffi_lua__buffer *b = capffi_lua__buffer_test(L, 2, true);
    if (b)
        return token_view_buffer(L, t, b);
    if (!lua_islightuserdata(L, 2) && !lua_isnil(L, 2))
        return capffi_lua__error(L, CAPFFI_ETYPE,
                                 "view: expected a pointer, got %s",
                                 capffi_lua__typename(L, 2));
    const void *p = lua_touserdata(L, 2);
    size_t len = 0;
    bool unbounded = false;
    if (lua_type(L, 3) == LUA_TSTRING) {
        if (strcmp(lua_tostring(L, 3), "unbounded") != 0)
            return capffi_lua__error(L, CAPFFI_EINVAL,
                                     "view: the length is an integer or "
                                     "\"unbounded\", not \"%s\"",
                                     lua_tostring(L, 3));
        unbounded = true;
    } else {
        lua_Integer n = capffi_lua__check_integer(L, 3, "view: length");
        if (n < 0)
            return capffi_lua__error(L, CAPFFI_ERANGE,
                                     "view: length %lld is negative",
                                     (long long)n);
        len = (size_t)n;
    }
    uint32_t access =
        capffi_lua__access(L, 4, CAPFFI_VIEW_READ, "view: access");
    struct capffi_lua__view *v = capffi_lua__view_push(L, t->st);
    v->access = access;
    v->unbounded = unbounded;
    /* A NULL pointer goes to capffi too: the token is verified (and the
     * attempt audited) before the arguments are. */
    int rc = capffi_view_new(&v->view, ctx, &t->tok, p, len,
                             access | (unbounded ? CAPFFI_VIEW_UNBOUNDED : 0));
    if (rc)
        return capffi_lua__fail(L, t->st, rc, "view");
    return 1;
}

/*
 * tok:type(name, layout): a struct type that only what is made through
 * this token (and its descendants) sees, where it hides a capffi.type of
 * the same name (capffi_type_define_tok).
 */
static int
token_type(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_ctx *ctx = capffi_lua__ctx(L, t->st);
    const char *name = capffi_lua__check_string(L, 2, "type: name");
    const char *layout = capffi_lua__check_string(L, 3, "type: layout");
    int rc = capffi_type_define_tok(ctx, &t->tok, name, layout);
    if (rc)
        return capffi_lua__fail(L, t->st, rc, "type");
    return 0;
}

/* tok:sizeof(type): size and alignment with the names the token sees. */
static int
token_sizeof(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_ctx *ctx = capffi_lua__ctx(L, t->st);
    const char *type = capffi_lua__check_string(L, 2, "sizeof");
    size_t size, align;
    int rc = capffi_type_size_tok(&size, &align, ctx, &t->tok, type);
    if (rc)
        return capffi_lua__fail(L, t->st, rc, "sizeof");
    lua_pushinteger(L, (lua_Integer)size);
    lua_pushinteger(L, (lua_Integer)align);
    return 2;
}

/* tok:callback(signature, fn [, options]) (CAPFFI_RIGHT_CALLBACK) */
static int
token_callback(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_token tok = t->tok;
    return capffi_lua__callback_new(L, t->st, &tok, 2, 3, 4);
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
        { "dlopen", token_dlopen },
        { "fnptr", token_fnptr },
        { "pointer_of", token_pointer_of },
        { "pointer_from", token_pointer_from },
        { "view", token_view },
        { "callback", token_callback },
        { "type", token_type },
        { "sizeof", token_sizeof },
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
