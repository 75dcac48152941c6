/*
 * base/state.c - the state userdata: the module's context, which every
 * other capffi userdata points at, and the ways to reach it.
 */
#include "base/base.h"

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

static int
state_gc(lua_State *L)
{
    struct capffi_lua__state *st = lua_touserdata(L, 1);
    capffi_ctx_free(st->ctx);
    st->ctx = NULL;
    return 0;
}

void
capffi_lua__state_init(lua_State *L)
{
    capffi_lua__new_class(L, CAPFFI_LUA_STATE, NULL,
                          (const luaL_Reg[]){
                              { "__gc", state_gc },
                              { NULL, NULL },
                          });
    lua_pop(L, 1);
}
