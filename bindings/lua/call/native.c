/*
 * call/native.c - a native call from Lua, and the callback handler
 * failures that happen during it.
 *
 * A bound function call and capffi.poll run native code that may call
 * back into Lua: the handler runs on the Lua thread inside the call
 * (capffi_lua__state.L), as a nested call of it. A Lua error must never
 * unwind through native frames, so a handler's failure is kept here and
 * raised by the call once native code has returned, as CAPFFI_ECALLBACK
 * with the handler's error as `cause`.
 */
#include <stdio.h>

#include "call/call.h"

/* Registry key: a table of the handler errors not yet raised, indexed by
 * their failure number (capffi_lua__state.cb_failures). */
#define FAILURES "capffi.cbfailures"

void
capffi_lua__native_init(lua_State *L)
{
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, FAILURES);
}

void
capffi_lua__native_raise(lua_State *L, struct capffi_lua__state *st,
                         size_t before, const char *what)
{
    if (st->cb_failures == before)
        return;
    size_t n = st->cb_failures - before;
    lua_getfield(L, LUA_REGISTRYINDEX, FAILURES);
    int t = lua_gettop(L);
    lua_rawgeti(L, t, (lua_Integer)before + 1);
    for (size_t i = before + 1; i <= st->cb_failures; i++) {
        lua_pushnil(L);
        lua_rawseti(L, t, (lua_Integer)i);
    }
    st->cb_failures = before;
    const char *m = lua_isnil(L, t + 1) ? "the handler failed"
                                        : luaL_tolstring(L, t + 1, NULL);
    capffi_lua__error_push(L, CAPFFI_ECALLBACK,
                           "%s: a callback's handler failed: %s", what, m);
    lua_pushvalue(L, t + 1);
    lua_setfield(L, -2, "cause");
    lua_pushinteger(L, (lua_Integer)n);
    lua_setfield(L, -2, "failures");
    lua_error(L);
}

/* A failure being kept, handed to remember(). */
struct failure {
    struct capffi_lua__state *st;
    char *msg;
    size_t n;
};

/*
 * Remember the error value given for the call or poll that is running
 * (failures[n], n counting the failures not yet raised) and its text for
 * capffi_cb_fail. Protected: both may need memory.
 */
static int
remember(lua_State *L)
{
    struct failure *f = lua_touserdata(L, 2);
    snprintf(f->msg, f->n, "%s", luaL_tolstring(L, 1, NULL));
    lua_getfield(L, LUA_REGISTRYINDEX, FAILURES);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, (lua_Integer)f->st->cb_failures + 1);
    return 0;
}

void
capffi_lua__native_failed(lua_State *L, struct capffi_lua__state *st, char *msg,
                          size_t n)
{
    struct failure f = { .st = st, .msg = msg, .n = n };
    snprintf(msg, n, "the handler failed");
    lua_pushcfunction(L, remember);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, &f);
    lua_pcall(L, 2, 0, 0); /* on failure: counted, without its value */
    st->cb_failures++;
}
