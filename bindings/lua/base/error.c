/*
 * base/error.c - capffi error objects: what every failure of the binding
 * raises. A table { code, status, message } with a tostring, so that a
 * script can test the code and print the whole.
 */
#include <stdarg.h>
#include <stdio.h>

#include "base/base.h"

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

void
capffi_lua__error_init(lua_State *L)
{
    capffi_lua__new_class(L, CAPFFI_LUA_ERROR, NULL,
                          (const luaL_Reg[]){
                              { "__tostring", error_tostring },
                              { NULL, NULL },
                          });
    lua_pop(L, 1);
}
