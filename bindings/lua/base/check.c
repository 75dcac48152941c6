/*
 * base/check.c - argument checks. They raise capffi error objects
 * (CAPFFI_ETYPE, CAPFFI_ERANGE, CAPFFI_EINVAL) that name the argument, so
 * a script sees one kind of error whatever it got wrong.
 */
#include <string.h>

#include "base/base.h"

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

bool
capffi_lua__opt_flag(lua_State *L, int idx, const char *key, const char *what)
{
    int t = lua_getfield(L, idx, key);
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
        capffi_lua__error(L, CAPFFI_ETYPE, "%s: '%s' must be a boolean", what,
                          key);
    bool on = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return on;
}

void *
capffi_lua__check_object(lua_State *L, int idx, const char *tname,
                         const char *noun)
{
    void *p = luaL_testudata(L, idx, tname);
    if (!p)
        capffi_lua__error(L, CAPFFI_ETYPE, "expected a capffi %s, got %s", noun,
                          capffi_lua__typename(L, idx));
    return p;
}
