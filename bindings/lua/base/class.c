/*
 * base/class.c - object classes: the metatables of capffi's userdata.
 */
#include "base/base.h"

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

void
capffi_lua__add_methods(lua_State *L, const char *tname,
                        const luaL_Reg *methods)
{
    luaL_getmetatable(L, tname);
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}
