/*
 * module.c - the capffi Lua module: its context, its table, errors, and
 * the helpers every object type uses.
 *
 * One context per Lua state. It is made by the first setup (the runner's,
 * with its grants, or require from a plain interpreter, with none) and
 * kept in the registry; later requires return the same module, so a
 * script cannot obtain a second context carrying the host's grants after
 * the permission was revoked.
 */
#include "capffi_lua.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ------------------------------------------------------------ */

static int
error_tostring(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "code");
    lua_getfield(L, 1, "message");
    lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
    return 1;
}

static void error_vpush(lua_State *L, int code, const char *fmt, va_list ap)
    CAPFFI_LUA__PRINTF(3, 0);

static void
error_vpush(lua_State *L, int code, const char *fmt, va_list ap)
{
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, capffi_err_name(code));
    lua_setfield(L, -2, "code");
    lua_pushinteger(L, code);
    lua_setfield(L, -2, "status");
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
    luaL_setmetatable(L, CAPFFI_LUA_ERROR);
}

void
capffi_lua__error_push(lua_State *L, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vpush(L, code, fmt, ap);
    va_end(ap);
}

int
capffi_lua__error(lua_State *L, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vpush(L, code, fmt, ap);
    va_end(ap);
    return lua_error(L);
}

int
capffi_lua__fail(lua_State *L, const struct capffi_lua__state *st, int rc,
                 const char *what)
{
    const char *msg = capffi_ctx_errmsg(st ? st->ctx : NULL);
    if (!*msg)
        msg = capffi_strerror(rc);
    if (what)
        return capffi_lua__error(L, rc, "%s: %s", what, msg);
    return capffi_lua__error(L, rc, "%s", msg);
}

capffi_ctx *
capffi_lua__ctx(lua_State *L, const struct capffi_lua__state *st)
{
    if (!st->ctx)
        capffi_lua__error(L, CAPFFI_ECLOSED, "the capffi context is closed");
    return st->ctx;
}

struct capffi_lua__state *
capffi_lua__upstate(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* ---- argument checks --------------------------------------------------- */

const char *
capffi_lua__typename(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TNUMBER)
        return lua_isinteger(L, idx) ? "integer" : "float";
    return luaL_typename(L, idx);
}

const char *
capffi_lua__check_string(lua_State *L, int idx, const char *what)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        capffi_lua__error(L, CAPFFI_ETYPE, "%s: expected a string, got %s",
                          what, capffi_lua__typename(L, idx));
    return lua_tostring(L, idx);
}

const char *
capffi_lua__opt_string(lua_State *L, int idx, const char *what)
{
    return lua_isnoneornil(L, idx) ? NULL
                                   : capffi_lua__check_string(L, idx, what);
}

lua_Integer
capffi_lua__check_integer(lua_State *L, int idx, const char *what)
{
    int isnum = 0;
    lua_Integer v = 0;
    if (lua_type(L, idx) == LUA_TNUMBER)
        v = lua_tointegerx(L, idx, &isnum);
    if (isnum)
        return v;
    if (lua_type(L, idx) == LUA_TNUMBER)
        return capffi_lua__error(L, CAPFFI_ERANGE,
                                 "%s: %.17g is not a 64-bit integer", what,
                                 (double)lua_tonumber(L, idx));
    return capffi_lua__error(L, CAPFFI_ETYPE, "%s: expected an integer, got %s",
                             what, capffi_lua__typename(L, idx));
}

bool
capffi_lua__opt_table(lua_State *L, int idx, const char *what)
{
    if (lua_isnoneornil(L, idx))
        return false;
    if (!lua_istable(L, idx))
        capffi_lua__error(L, CAPFFI_ETYPE, "%s: expected a table, got %s", what,
                          capffi_lua__typename(L, idx));
    return true;
}

void
capffi_lua__check_keys(lua_State *L, int idx, const char *what,
                       const char *const *known)
{
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        bool ok = false;
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -1);
            for (size_t i = 0; known[i] && !ok; i++)
                ok = strcmp(k, known[i]) == 0;
        }
        if (!ok) {
            const char *k = lua_type(L, -1) == LUA_TSTRING
                                ? lua_tostring(L, -1)
                                : capffi_lua__typename(L, -1);
            capffi_lua__error(L, CAPFFI_EINVAL, "%s: unknown option '%s'", what,
                              k);
        }
    }
}

/* ---- rights and ids ---------------------------------------------------- */

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

const char *const *
capffi_lua__paths(lua_State *L, int idx, const char *what,
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

/* ---- classes ----------------------------------------------------------- */

void
capffi_lua__new_class(lua_State *L, const char *tname, const luaL_Reg *methods,
                      const luaL_Reg *meta)
{
    luaL_newmetatable(L, tname);
    if (meta)
        luaL_setfuncs(L, meta, 0);
    if (methods) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
    /* getmetatable() must not hand out the shared methods: replacing one
     * would let a script see every token passed to it. */
    lua_pushstring(L, tname);
    lua_setfield(L, -2, "__metatable");
}

/* ---- 64-bit helpers ---------------------------------------------------- */

/* capffi.u64tostring(n): the unsigned decimal text of a 64-bit integer. */
static int
u64tostring(lua_State *L)
{
    lua_Integer v = capffi_lua__check_integer(L, 1, "u64tostring");
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, (uint64_t)v);
    lua_pushstring(L, text);
    return 1;
}

/* capffi.u64fromstring(s): decimal text to the integer with those 64
 * bits (values from 2^63 come out negative). */
static int
u64fromstring(lua_State *L)
{
    const char *s = capffi_lua__check_string(L, 1, "u64fromstring");
    uint64_t v = 0;
    const char *p = s;
    if (!*p)
        return capffi_lua__error(L, CAPFFI_EINVAL, "u64fromstring: empty text");
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return capffi_lua__error(L, CAPFFI_EINVAL,
                                     "u64fromstring: '%s' is not a decimal "
                                     "number",
                                     s);
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return capffi_lua__error(L, CAPFFI_ERANGE,
                                     "u64fromstring: %s is above 2^64 - 1", s);
        v = v * 10 + d;
    }
    lua_pushinteger(L, (lua_Integer)v);
    return 1;
}

/* ---- named types ------------------------------------------------------- */

static int
type_define(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    const char *name = capffi_lua__check_string(L, 1, "type: name");
    const char *layout = capffi_lua__check_string(L, 2, "type: layout");
    int rc = capffi_type_define(ctx, name, layout);
    if (rc)
        return capffi_lua__fail(L, st, rc, "type");
    return 0;
}

static int
type_sizeof(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    const char *type = capffi_lua__check_string(L, 1, "sizeof");
    size_t size, align;
    int rc = capffi_type_size(&size, &align, ctx, type);
    if (rc)
        return capffi_lua__fail(L, st, rc, "sizeof");
    lua_pushinteger(L, (lua_Integer)size);
    lua_pushinteger(L, (lua_Integer)align);
    return 2;
}

static int
type_offsetof(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    const char *type = capffi_lua__check_string(L, 1, "offsetof: type");
    const char *field = capffi_lua__check_string(L, 2, "offsetof: field");
    size_t off;
    int rc = capffi_type_offset(&off, ctx, type, field);
    if (rc)
        return capffi_lua__fail(L, st, rc, "offsetof");
    lua_pushinteger(L, (lua_Integer)off);
    return 1;
}

/* capffi.errno(): errno captured by the last call of a function bound
 * with errno = true. */
static int
last_errno(lua_State *L)
{
    lua_pushinteger(L, capffi_last_errno());
    return 1;
}

/* capffi.address(p): the address of a pointer as an integer (0 for nil).
 * Turning an integer back into a pointer needs a token
 * (tok:pointer_from); reading an address does not. */
static int
address(lua_State *L)
{
    if (!lua_islightuserdata(L, 1) && !lua_isnil(L, 1))
        return capffi_lua__error(L, CAPFFI_ETYPE,
                                 "address: expected a pointer or nil, got %s",
                                 capffi_lua__typename(L, 1));
    lua_pushinteger(L, (lua_Integer)(uintptr_t)lua_touserdata(L, 1));
    return 1;
}

/* capffi.resolve(name): the file a soname names (capffi_lib_resolve). */
static int
resolve(lua_State *L)
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

/* ---- the context ------------------------------------------------------- */

static int
state_gc(lua_State *L)
{
    struct capffi_lua__state *st = lua_touserdata(L, 1);
    capffi_ctx_free(st->ctx);
    st->ctx = NULL;
    return 0;
}

static const luaL_Reg module_fns[] = {
    { "token", capffi_lua__token_new },
    { "dlopen", capffi_lua__dlopen_ambient },
    { "buffer", capffi_lua__buffer_new },
    { "bytes", capffi_lua__struct_tobytes },
    { "address", address },
    { "poll", capffi_lua__poll },
    { "keepalive", capffi_lua__keepalive },
    { "type", type_define },
    { "sizeof", type_sizeof },
    { "offsetof", type_offsetof },
    { "errno", last_errno },
    { "resolve", resolve },
    { "u64tostring", u64tostring },
    { "u64fromstring", u64fromstring },
    { NULL, NULL },
};

int
capffi_lua_setup(lua_State *L, const capffi_options *opts)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, CAPFFI_LUA_MODULE) == LUA_TTABLE)
        return 1;
    lua_pop(L, 1);

    /* Classes first: the error class is needed to report a failure. */
    capffi_lua__new_class(L, CAPFFI_LUA_ERROR, NULL,
                          (const luaL_Reg[]){
                              { "__tostring", error_tostring },
                              { NULL, NULL },
                          });
    lua_pop(L, 1);
    capffi_lua__new_class(L, CAPFFI_LUA_STATE, NULL,
                          (const luaL_Reg[]){
                              { "__gc", state_gc },
                              { NULL, NULL },
                          });
    lua_pop(L, 1);
    capffi_lua__token_init(L);
    capffi_lua__lib_init(L);
    capffi_lua__buffer_init(L);
    capffi_lua__view_init(L);
    capffi_lua__struct_init(L);
    capffi_lua__callback_init(L);

    /* Weak keys: an ambient library that is collected leaves the set. */
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, CAPFFI_LUA_AMBIENT);

    struct capffi_lua__state *st = lua_newuserdatauv(L, sizeof *st, 0);
    st->ctx = NULL;
    st->L = NULL;
    st->cb_failures = 0;
    luaL_setmetatable(L, CAPFFI_LUA_STATE);
    int rc = capffi_ctx_new(&st->ctx, opts);
    if (rc)
        return capffi_lua__error(L, rc, "cannot create the context: %s",
                                 capffi_ctx_errmsg(NULL));
    if ((rc = capffi_audit_record(st->ctx, CAPFFI_LUA_AUDIT_CAPACITY)))
        return capffi_lua__fail(L, st, rc, "audit");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, CAPFFI_LUA_STATE);

    lua_newtable(L);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, module_fns, 1);
    lua_pushvalue(L, -2);
    capffi_lua__perm_push(L);
    lua_setfield(L, -2, "permissions");
    lua_pushvalue(L, -2);
    capffi_lua__audit_push(L);
    lua_setfield(L, -2, "audit");
    lua_pushliteral(L, CAPFFI_VERSION_STRING);
    lua_setfield(L, -2, "version");
    lua_remove(L, -2); /* the state */

    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, CAPFFI_LUA_MODULE);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "capffi");
    lua_pop(L, 1);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_capffi);
    lua_setfield(L, -2, "capffi");
    lua_pop(L, 1);
    return 1;
}

capffi_ctx *
capffi_lua_ctx(lua_State *L)
{
    capffi_ctx *ctx = NULL;
    if (lua_getfield(L, LUA_REGISTRYINDEX, CAPFFI_LUA_STATE) == LUA_TUSERDATA) {
        struct capffi_lua__state *st = lua_touserdata(L, -1);
        ctx = st->ctx;
    }
    lua_pop(L, 1);
    return ctx;
}

__attribute__((visibility("default"))) int
luaopen_capffi(lua_State *L)
{
    return capffi_lua_setup(L, NULL);
}
