/*
 * view.c - views: bounded, typed reads and writes of memory.
 *
 * A view userdata owns a capffi_view, made by tok:view (native memory,
 * through a token's read/write rights) or buf:view (a buffer's bytes, no
 * token). Every access goes through capffi's view functions, so the
 * bounds, the access mode and the token are checked by capffi, and the
 * refusals are audited there, before a byte moves. Offsets are 0-based
 * byte offsets, as in C: a view of n bytes holds offsets 0 to n - 1.
 *
 * Values convert as call arguments and results do (value.c). Strings and
 * byte ranges come out as Lua strings (copies), so nothing a script holds
 * points into the viewed memory.
 */
#include <math.h>
#include <string.h>

#include "capffi_lua.h"

uint32_t
capffi_lua__access(lua_State *L, int idx, uint32_t def, const char *what)
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

struct capffi_lua__view *
capffi_lua__view_push(lua_State *L, struct capffi_lua__state *st)
{
    capffi_lua__ctx(L, st);
    struct capffi_lua__view *v = lua_newuserdatauv(L, sizeof *v, 0);
    v->view = NULL;
    v->st = st;
    v->access = 0;
    v->unbounded = false;
    luaL_setmetatable(L, CAPFFI_LUA_VIEW);
    return v;
}

/* The live view at idx, or an error (CAPFFI_ETYPE, CAPFFI_ECLOSED). */
static struct capffi_lua__view *
check_view(lua_State *L, int idx)
{
    struct capffi_lua__view *v = luaL_testudata(L, idx, CAPFFI_LUA_VIEW);
    if (!v)
        capffi_lua__error(L, CAPFFI_ETYPE, "expected a capffi view, got %s",
                          capffi_lua__typename(L, idx));
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
    struct capffi_lua__view *v = check_view(L, 1);
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
    struct capffi_lua__view *v = check_view(L, 1);
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
    struct capffi_lua__view *v = check_view(L, 1);
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
    struct capffi_lua__view *v = check_view(L, 1);
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
    struct capffi_lua__view *v = check_view(L, 1);
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
    struct capffi_lua__view *v = check_view(L, 1);
    size_t off = check_size(L, 2, -1, "sub: offset");
    size_t len = check_size(L, 3, -1, "sub: length");
    uint32_t access = capffi_lua__access(L, 4, v->access, "sub: access");
    struct capffi_lua__view *s = capffi_lua__view_push(L, v->st);
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
    struct capffi_lua__view *v = luaL_testudata(L, 1, CAPFFI_LUA_VIEW);
    if (!v)
        return capffi_lua__error(L, CAPFFI_ETYPE,
                                 "expected a capffi view, got %s",
                                 capffi_lua__typename(L, 1));
    if (v->view && v->st->ctx)
        capffi_view_free(v->view);
    v->view = NULL;
    return 0;
}

/* #v: the length in bytes; math.huge for an unbounded view. */
static int
view_len(lua_State *L)
{
    struct capffi_lua__view *v = check_view(L, 1);
    if (v->unbounded)
        lua_pushnumber(L, HUGE_VAL);
    else
        lua_pushinteger(L, (lua_Integer)capffi_view_len(v->view));
    return 1;
}

static int
view_tostring(lua_State *L)
{
    struct capffi_lua__view *v = luaL_checkudata(L, 1, CAPFFI_LUA_VIEW);
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
    capffi_lua__new_class(L, CAPFFI_LUA_VIEW, methods, meta);
    lua_pop(L, 1);
}
