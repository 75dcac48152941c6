/*
 * bench_lua_util.c - see bench_lua_util.h.
 */
#include "bench_lua_util.h"

#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

#include "bench_util.h"

lua_State *
bench_lua_run(lua_CFunction run, void *arg)
{
    lua_State *L = luaL_newstate();
    if (!L)
        bench_die("cannot create a Lua state");
    lua_pushcfunction(L, run);
    lua_pushlightuserdata(L, arg);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (!msg && luaL_callmeta(L, -1, "__tostring"))
            msg = lua_tostring(L, -1);
        fprintf(stderr, "%s: %s\n", bench_name, msg ? msg : "error");
        lua_close(L);
        exit(EXIT_FAILURE);
    }
    return L;
}

/* The handler (upvalue 1) called with two integers, protected. */
static int
plain_cb(lua_State *L)
{
    lua_Integer a = luaL_checkinteger(L, 1), b = luaL_checkinteger(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushinteger(L, a);
    lua_pushinteger(L, b);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK)
        return lua_error(L);
    int isnum;
    lua_Integer r = lua_tointegerx(L, -1, &isnum);
    if (!isnum)
        return luaL_error(L, "the handler returned no integer");
    lua_pushinteger(L, (int32_t)r);
    return 1;
}

int
bench_lua_make_cb(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushcclosure(L, plain_cb, 1);
    return 1;
}

void
bench_lua_check_mixed6(lua_State *L, struct bench_mixed6 *m)
{
    m->a = (int32_t)luaL_checkinteger(L, 1);
    m->b = luaL_checknumber(L, 2);
    m->c = luaL_checkinteger(L, 3);
    m->d = (float)luaL_checknumber(L, 4);
    m->e = (uint8_t)luaL_checkinteger(L, 5);
    m->f = luaL_checknumber(L, 6);
}
