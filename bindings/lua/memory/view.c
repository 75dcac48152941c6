/*
 * memory/view.c - views: bounded, typed reads and writes of memory.
 *
 * A view userdata owns a capffi_view, made by tok:view (native memory,
 * through a token's read/write rights) or buf:view (a buffer's bytes, no
 * token); this file adds both methods to their classes. Every access goes
 * through capffi's view functions, so the bounds, the access mode and the token
 * are checked by capffi, and the refusals are audited there, before a byte
 * moves. Offsets are 0-based byte offsets, as in C: a view of n bytes holds
 * offsets 0 to n - 1.
 *
 * Values convert as call arguments and results do (value.c). Strings and
 * byte ranges come out as Lua strings (copies), so nothing a script holds
 * points into the viewed memory.
 */
#include <math.h>
#include <string.h>

#include "memory/memory.h"

/* A view userdata; view is NULL once freed. */
struct view {
    capffi_view *view;
    struct capffi_lua__state *st;
    uint32_t access; /* CAPFFI_VIEW_READ and/or CAPFFI_VIEW_WRITE */
    bool unbounded;
};

/* An access string ("r", "w", "rw") at idx as CAPFFI_VIEW_* bits; def
 * when the argument is absent or nil. */
static uint32_t
access_in(lua_State *L, int idx, uint32_t def, const char *what)
{
    if (lua_isnoneornil(L, idx))
        return def;
    const char *s = capffi_lua__check_string(L, idx, what);
    if (strcmp(s, "r") == 0)
        return CAPFFI_VIEW_READ;
    if (strcmp(s, "w") == 0)
        return CAPFFI_VIEW_WRITE;
    if (strcmp(s, "rw") == 0)
        return CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE;
    return capffi_lua__error(
        L, CAPFFI_EINVAL, "%s: \"%s\" is not \"r\", \"w\" or \"rw\"", what, s);
}

static const char *
access_name(uint32_t access)
{
    static const char *const names[] = { "-", "r", "w", "rw" };
    return names[access & (CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE)];
}

/* Push an empty view userdata (view NULL) for the caller to fill, so
 * that no capffi view exists before the userdata that frees it. */
static struct view *
view_push(lua_State *L, struct capffi_lua__state *st)
{
    capffi_lua__ctx(L, st);
    struct view *v = lua_newuserdatauv(L, sizeof *v, 0);
    v->view = NULL;
    v->st = st;
    v->access = 0;
    v->unbounded = false;
    luaL_setmetatable(L, CAPFFI_LUA_VIEW);
    return v;
}

/* The live view at idx, or an error (CAPFFI_ETYPE, CAPFFI_ECLOSED). */
static struct view *
check_view(lua_State *L, int idx)
{
    struct view *v = capffi_lua__check_object(L, idx, CAPFFI_LUA_VIEW, "view");
    capffi_lua__ctx(L, v->st);
    if (!v->view)
        capffi_lua__error(L, CAPFFI_ECLOSED, "the view was freed");
    return v;
}

/* A byte offset or count at idx (default def when absent, or -1 for
 * none): a non-negative integer. A negative one lies outside every view. */
static size_t
check_size(lua_State *L, int idx, lua_Integer def, const char *what)
{
    if (def >= 0 && lua_isnoneornil(L, idx))
        return (size_t)def;
    lua_Integer n = capffi_lua__check_integer(L, idx, what);
    if (n < 0)
        capffi_lua__error(L, CAPFFI_EBOUNDS, "%s %lld is negative", what,
                          (long long)n);
    return (size_t)n;
}

/* The scalar kind of the type word at idx, for v:get and v:set. */
static int
check_type(lua_State *L, int idx, const char *what)
{
    const char *type = capffi_lua__check_string(L, idx, what);
    int k = capffi_lua__kind_of(type);
    if (!capffi_lua__is_scalar(k))
        capffi_lua__error(L, CAPFFI_ETYPE,
                          "%s: '%s' is not a scalar type a view reads or "
                          "writes (strings: v:cstring; bytes: v:copy; "
                          "structs: v:sub)",
                          what, type);
    return k;
}

/* v:get(type [, off]): the scalar at byte offset off (default 0). */
static int
view_get(lua_State *L)
{
    struct view *v = check_view(L, 1);
    int k = check_type(L, 2, "get");
    size_t off = check_size(L, 3, 0, "get: offset");
    capffi_value x;
    int rc = capffi_view_get(&x, v->view, off, lua_tostring(L, 2));
    if (rc)
        return capffi_lua__fail(L, v->st, rc, "get");
    capffi_lua__scalar_push(L, k, &x);
    return 1;
}

/* v:set(type, off, value): write a scalar; value converts as a call
 * argument of that type does. Returns v. */
static int
view_set(lua_State *L)
{
    struct view *v = check_view(L, 1);
    int k = check_type(L, 2, "set");
    const char *type = lua_tostring(L, 2);
    size_t off = check_size(L, 3, -1, "set: offset");
    capffi_value x = { .u64 = 0 };
    char why[128];
    int rc = capffi_lua__scalar_in(L, 4, k, false, &x, why, sizeof why);
    if (rc)
        return capffi_lua__error(L, rc, "set: %s at offset %zu: %s", type, off,
                                 why);
    if ((rc = capffi_view_set(v->view, off, type, x)))
        return capffi_lua__fail(L, v->st, rc, "set");
    lua_settop(L, 1);
    return 1;
}

/* v:cstring([off]): a copy of the NUL-terminated string at off, found
 * without reading past the view. */
static int
view_cstring(lua_State *L)
{
    struct view *v = check_view(L, 1);
    size_t off = check_size(L, 2, 0, "cstring: offset");
    const char *s;
    size_t len;
    int rc = capffi_view_cstr(&s, &len, v->view, off);
    if (rc)
        return capffi_lua__fail(L, v->st, rc, "cstring");
    lua_pushlstring(L, s, len);
    return 1;
}

/* v:copy(off, n): n bytes from off, as a string. */
static int
view_copy(lua_State *L)
{
    struct view *v = check_view(L, 1);
    size_t off = check_size(L, 2, -1, "copy: offset");
    size_t n = check_size(L, 3, -1, "copy: count");
    size_t len = capffi_view_len(v->view);
    if (off > len || n > len - off) {
        /* Let capffi refuse (and audit) before any memory is set aside
         * for a count the view cannot hold. */
        int rc = capffi_view_copy(NULL, v->view, off, n);
        return capffi_lua__fail(L, v->st, rc ? rc : CAPFFI_EBOUNDS, "copy");
    }
    luaL_Buffer b;
    char *dst = luaL_buffinitsize(L, &b, n);
    int rc = capffi_view_copy(dst, v->view, off, n);
    if (rc)
        return capffi_lua__fail(L, v->st, rc, "copy");
    luaL_pushresultsize(&b, n);
    return 1;
}

/* v:write(off, s): copy the string s in at off. Returns v. */
static int
view_write(lua_State *L)
{
    struct view *v = check_view(L, 1);
    size_t off = check_size(L, 2, -1, "write: offset");
    size_t n;
    capffi_lua__check_string(L, 3, "write: s");
    const char *s = lua_tolstring(L, 3, &n);
    int rc = capffi_view_write(v->view, off, s, n);
    if (rc)
        return capffi_lua__fail(L, v->st, rc, "write");
    lua_settop(L, 1);
    return 1;
}

/* v:sub(off, len [, access]): a view of [off, off + len), with at most
 * v's access (default: v's). */
static int
view_sub(lua_State *L)
{
    struct view *v = check_view(L, 1);
    size_t off = check_size(L, 2, -1, "sub: offset");
    size_t len = check_size(L, 3, -1, "sub: length");
    uint32_t access = access_in(L, 4, v->access, "sub: access");
    struct view *s = view_push(L, v->st);
    s->access = access;
    int rc = capffi_view_sub(&s->view, v->view, off, len, access);
    if (rc)
        return capffi_lua__fail(L, v->st, rc, "sub");
    return 1;
}

/* v:free(), __close, __gc: later uses raise CAPFFI_ECLOSED. A view of a
 * buffer releases its hold on it. Freeing twice is fine. */
static int
view_free(lua_State *L)
{
    struct view *v = capffi_lua__check_object(L, 1, CAPFFI_LUA_VIEW, "view");
    if (v->view && v->st->ctx)
        capffi_view_free(v->view);
    v->view = NULL;
    return 0;
}

/* #v: the length in bytes; math.huge for an unbounded view. */
static int
view_len(lua_State *L)
{
    struct view *v = check_view(L, 1);
    if (v->unbounded)
        lua_pushnumber(L, HUGE_VAL);
    else
        lua_pushinteger(L, (lua_Integer)capffi_view_len(v->view));
    return 1;
}

static int
view_tostring(lua_State *L)
{
    struct view *v = luaL_checkudata(L, 1, CAPFFI_LUA_VIEW);
    if (!v->view || !v->st->ctx)
        lua_pushliteral(L, "capffi.view(freed)");
    else if (v->unbounded)
        lua_pushfstring(L, "capffi.view(unbounded, %s)",
                        access_name(v->access));
    else
        lua_pushfstring(L, "capffi.view(%I bytes, %s)",
                        (lua_Integer)capffi_view_len(v->view),
                        access_name(v->access));
    return 1;
}

/* buf:view([access]): a view of the bytes, no token needed; "rw" by
 * default. */
static int
buffer_view(lua_State *L)
{
    capffi_lua__check_object(L, 1, CAPFFI_LUA_BUFFER, "buffer");
    struct capffi_lua__buffer *b = capffi_lua__buffer_test(L, 1, true);
    uint32_t access =
        access_in(L, 2, CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE, "view: access");
    struct view *v = view_push(L, b->st);
    v->access = access;
    int rc = capffi_view_of_buf(&v->view, b->buf, access);
    if (rc)
        return capffi_lua__fail(L, b->st, rc, "view");
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
    uint32_t access =
        access_in(L, 3, CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE, "view: access");
    struct view *v = view_push(L, t->st);
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
    uint32_t access = access_in(L, 4, CAPFFI_VIEW_READ, "view: access");
    struct view *v = view_push(L, t->st);
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

void
capffi_lua__view_init(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "get", view_get },         { "set", view_set },
        { "cstring", view_cstring }, { "copy", view_copy },
        { "write", view_write },     { "sub", view_sub },
        { "free", view_free },       { NULL, NULL },
    };
    static const luaL_Reg meta[] = {
        { "__len", view_len },    { "__gc", view_free },
        { "__close", view_free }, { "__tostring", view_tostring },
        { NULL, NULL },
    };
    static const luaL_Reg buffer_methods[] = {
        { "view", buffer_view },
        { NULL, NULL },
    };
    static const luaL_Reg token_methods[] = {
        { "view", token_view },
        { NULL, NULL },
    };
    capffi_lua__new_class(L, CAPFFI_LUA_VIEW, methods, meta);
    lua_pop(L, 1);
    capffi_lua__add_methods(L, CAPFFI_LUA_BUFFER, buffer_methods);
    capffi_lua__add_methods(L, CAPFFI_LUA_TOKEN, token_methods);
}
