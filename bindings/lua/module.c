/*
 * module.c - the capffi Lua module: the top of the binding, which
 * registers every layer's classes and functions and makes the context.
 *
 * One context per Lua state. It is made by the first setup (the runner's,
 * with its grants, or require from a plain interpreter, with none) and
 * kept in the registry; later requires return the same module, so a
 * script cannot obtain a second context carrying the host's grants after
 * the permission was revoked.
 */
#include "capffi_lua.h"

#include "callback/callback.h"

/* Registry key: the module table. */
#define MODULE "capffi.module"

static const luaL_Reg module_fns[] = {
    { "token", capffi_lua__token_new },
    { "dlopen", capffi_lua__dlopen_ambient },
    { "buffer", capffi_lua__buffer_new },
    { "bytes", capffi_lua__struct_tobytes },
    { "address", capffi_lua__address },
    { "poll", capffi_lua__poll },
    { "keepalive", capffi_lua__keepalive },
    { "type", capffi_lua__type_define },
    { "class", capffi_lua__type_define },
    { "new", capffi_lua__obj_new },
    { "free", capffi_lua__obj_free },
    { "classof", capffi_lua__obj_classof },
    { "leaks", capffi_lua__obj_leaks },
    { "sizeof", capffi_lua__type_sizeof },
    { "offsetof", capffi_lua__offsetof },
    { "errno", capffi_lua__errno },
    { "resolve", capffi_lua__resolve },
    { "u64tostring", capffi_lua__u64tostring },
    { "u64fromstring", capffi_lua__u64fromstring },
    { NULL, NULL },
};

int
capffi_lua_setup(lua_State *L, const capffi_options *opts)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, MODULE) == LUA_TTABLE)
        return 1;
    lua_pop(L, 1);

    /* Classes first, bottom up: the error class is needed to report a
     * failure, and each layer adds methods to the classes below it. */
    capffi_lua__error_init(L);
    capffi_lua__state_init(L);
    capffi_lua__token_init(L);
    capffi_lua__perm_init(L);
    capffi_lua__type_init(L);
    capffi_lua__buffer_init(L);
    capffi_lua__pointer_init(L);
    capffi_lua__view_init(L);
    capffi_lua__object_init(L);
    capffi_lua__struct_init(L);
    capffi_lua__native_init(L);
    capffi_lua__fn_init(L);
    capffi_lua__job_init(L);
    capffi_lua__lib_init(L);
    capffi_lua__callback_init(L);

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
    lua_setfield(L, LUA_REGISTRYINDEX, MODULE);
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
