/*
 * module.c - the capffi Lua module: the top of the binding, which
 * registers every layer's classes and functions and makes the context,
 * and the three ways in: the runner's capffi_lua_setup, a host's
 * capffi_lua_open (capffi/lua.h) and the loader of a stock interpreter.
 *
 * One context per Lua state. It is made by the first setup (the runner's,
 * with its grants; require from a stock interpreter, with those of the
 * launcher's environment) or given by the host, and kept in the registry;
 * later requires return the same module, so a script cannot obtain a
 * second context carrying the host's grants after the permission was
 * revoked, nor one with wider grants.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "capffi_lua.h"

#include "callback/callback.h"

/* Registry key: the module table. */
#define MODULE "capffi.module"
/* Metatable of the grants userdata luaopen_capffi parses into. */
#define GRANTS "capffi.grants"

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

/* Added to capffi.audit (perm/audit.c) from the layers above it. */
static const luaL_Reg audit_fns[] = {
    { "fn", capffi_lua__fn_audit },
    { "cb", capffi_lua__cb_audit },
    { NULL, NULL },
};

/* Finalizer of a state holding a host's context: forget it, never free. */
static int
borrowed_gc(lua_State *L)
{
    struct capffi_lua__state *st = lua_touserdata(L, 1);
    /* What scripts held of the host's call audit goes with them. */
    if (st->ctx && st->audit_calls_held)
        capffi_audit_calls_release(st->ctx, st->audit_calls_held);
    st->ctx = NULL;
    return 0;
}

/*
 * The set-up behind both entry points. With `borrowed`, the state holds
 * the host's context and its collection leaves it alone (the host frees
 * it after lua_close); without, it makes one from opts and owns it.
 * Leaves the module table on the stack; raises a capffi error.
 */
static int
setup(lua_State *L, capffi_ctx *borrowed, const capffi_options *opts,
      size_t capacity)
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
    st->audit_calls_held = 0;
    if (borrowed) {
        /* The state class's finalizer frees the context; a borrowed one
         * is only forgotten, so that capffi_lua_ctx and the module's
         * functions see it closed once the state is collected. Being
         * the first finalizer set, it runs after those of every object
         * made from the context (Lua runs them in reverse order). */
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, borrowed_gc);
        lua_setfield(L, -2, "__gc");
        lua_setmetatable(L, -2);
        st->ctx = borrowed;
    } else {
        luaL_setmetatable(L, CAPFFI_LUA_STATE);
        int rc = capffi_ctx_new(&st->ctx, opts);
        if (rc)
            return capffi_lua__error(L, rc, "cannot create the context: %s",
                                     capffi_ctx_errmsg(NULL));
    }
    int rc = capffi_audit_record(st->ctx, capacity);
    if (rc)
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
    /* The per-object audit switches belong to the layers that know the
     * objects; they reach their state through the object. */
    luaL_setfuncs(L, audit_fns, 0);
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

int
capffi_lua_setup(lua_State *L, const capffi_options *opts)
{
    return setup(L, NULL, opts, CAPFFI_LUA_AUDIT_CAPACITY);
}

struct open_args {
    capffi_ctx *ctx;
    const capffi_lua_options *opts;
};

/* capffi_lua_open inside its protected call: raises a capffi error. */
static int
open_protected(lua_State *L)
{
    const struct open_args *a = lua_touserdata(L, 1);
    capffi_ctx *have = capffi_lua_ctx(L);
    if (have && have != a->ctx)
        return capffi_lua__error(L, CAPFFI_EBUSY,
                                 "this Lua state already has capffi with "
                                 "another context");
    if (lua_getfield(L, LUA_REGISTRYINDEX, MODULE) == LUA_TTABLE && !have)
        return capffi_lua__error(L, CAPFFI_EBUSY,
                                 "this Lua state's capffi context is closed");
    lua_pop(L, 1);
    size_t capacity = a->opts && a->opts->audit_capacity
                          ? a->opts->audit_capacity
                          : CAPFFI_LUA_AUDIT_CAPACITY;
    setup(L, a->ctx, NULL, capacity);
    if (a->opts && a->opts->global)
        lua_setglobal(L, a->opts->global);
    return 0;
}

CAPFFI_LUA_API int
capffi_lua_open(lua_State *L, capffi_ctx *ctx, const capffi_lua_options *opts)
{
    if (!L || !ctx || (opts && opts->global && !*opts->global))
        return CAPFFI_EINVAL;
    struct open_args a = { ctx, opts };
    int top = lua_gettop(L);
    if (!lua_checkstack(L, 4))
        return CAPFFI_ENOMEM;
    lua_pushcfunction(L, open_protected);
    lua_pushlightuserdata(L, &a);
    int status = lua_pcall(L, 1, 0, 0);
    int rc = CAPFFI_OK;
    if (status != LUA_OK) {
        /* A capffi error object carries its status; anything else Lua
         * raised here (a message handler cannot be involved) is memory. */
        rc = CAPFFI_ENOMEM;
        if (lua_type(L, -1) == LUA_TTABLE &&
            lua_getfield(L, -1, "status") == LUA_TNUMBER) {
            lua_Integer code = lua_tointeger(L, -1);
            if (code < 0 && code >= INT_MIN)
                rc = (int)code;
        }
    }
    lua_settop(L, top);
    return rc;
}

CAPFFI_LUA_API capffi_ctx *
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

/* ---- grants: the runner's options and the launcher's environment ------ */

int
capffi_lua__grants_add(struct capffi_lua__grants *g, bool deny,
                       const char *list, const char *what, char *msg,
                       size_t cap)
{
    char ***v = deny ? &g->deny : &g->allow;
    size_t *n = deny ? &g->n_deny : &g->n_allow;
    const char *p = list;
    do {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= PATH_MAX) {
            snprintf(msg, cap, "%s: empty or overlong path in '%s'", what,
                     list);
            return CAPFFI_EINVAL;
        }
        char item[PATH_MAX], found[PATH_MAX];
        memcpy(item, p, len);
        item[len] = '\0';
        int rc = capffi_lib_resolve(found, sizeof found, NULL, item);
        if (rc) {
            snprintf(msg, cap, "%s: %s", what, capffi_ctx_errmsg(NULL));
            return rc;
        }
        /* A path is taken as written; a missing one is named here, with
         * the option or variable that gave it, rather than by
         * capffi_ctx_new (which refuses it all the same). */
        struct stat sb;
        if (stat(found, &sb) != 0) {
            snprintf(msg, cap, "%s: cannot resolve '%s': %s", what, item,
                     strerror(errno));
            return CAPFFI_ENOTFOUND;
        }
        char **grown = realloc(*v, (*n + 1) * sizeof *grown);
        char *copy = strdup(found);
        if (!grown || !copy) {
            free(copy);
            if (grown)
                *v = grown;
            snprintf(msg, cap, "%s: out of memory", what);
            return CAPFFI_ENOMEM;
        }
        *v = grown;
        (*v)[(*n)++] = copy;
        p += len;
    } while (*p++ == ',');
    return CAPFFI_OK;
}

void
capffi_lua__grants_options(const struct capffi_lua__grants *g,
                           capffi_options *opts)
{
    if (g->allow_all)
        opts->flags |= CAPFFI_OPT_ALLOW_ALL;
    opts->allow_paths = (const char *const *)g->allow;
    opts->n_allow = g->n_allow;
    opts->deny_paths = (const char *const *)g->deny;
    opts->n_deny = g->n_deny;
}

void
capffi_lua__grants_free(struct capffi_lua__grants *g)
{
    for (size_t i = 0; i < g->n_allow; i++)
        free(g->allow[i]);
    for (size_t i = 0; i < g->n_deny; i++)
        free(g->deny[i]);
    free(g->allow);
    free(g->deny);
    memset(g, 0, sizeof *g);
}

static int
grants_gc(lua_State *L)
{
    capffi_lua__grants_free(lua_touserdata(L, 1));
    return 0;
}

/*
 * The grants of a stock interpreter, from the variables its launcher set:
 * read here, once, when the module is first loaded into a state, and never
 * again, so nothing a script does later (it cannot set the environment
 * anyway) changes them. CAPFFI_ALLOW_FFI empty is --allow-ffi (all), a
 * list is --allow-ffi=LIST; CAPFFI_DENY_FFI is --deny-ffi=LIST. A bad
 * value fails the require: an unusable grant never means no deny, or
 * everything. The lists live in a userdata, collected even when parsing
 * or the set-up raises.
 */
static int
env_setup(lua_State *L)
{
    capffi_lua__error_init(L); /* for the errors raised before setup */
    struct capffi_lua__grants *g = lua_newuserdatauv(L, sizeof *g, 0);
    memset(g, 0, sizeof *g);
    if (luaL_newmetatable(L, GRANTS)) {
        lua_pushcfunction(L, grants_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);

    char msg[PATH_MAX + 256];
    const char *allow = getenv("CAPFFI_ALLOW_FFI");
    const char *deny = getenv("CAPFFI_DENY_FFI");
    int rc = CAPFFI_OK;
    if (allow && !*allow)
        g->allow_all = true;
    else if (allow)
        rc = capffi_lua__grants_add(g, false, allow, "CAPFFI_ALLOW_FFI", msg,
                                    sizeof msg);
    if (!rc && deny)
        rc = capffi_lua__grants_add(g, true, deny, "CAPFFI_DENY_FFI", msg,
                                    sizeof msg);
    if (rc)
        return capffi_lua__error(L, rc, "%s", msg);

    capffi_options opts;
    memset(&opts, 0, sizeof opts);
    capffi_lua__grants_options(g, &opts);
    setup(L, NULL, &opts, CAPFFI_LUA_AUDIT_CAPACITY);
    lua_remove(L, -2); /* the grants, copied by capffi_ctx_new */
    return 1;
}

#ifdef CAPFFI_LUA_MODULE
__attribute__((visibility("default")))
#endif
int
luaopen_capffi(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, MODULE) == LUA_TTABLE)
        return 1;
    lua_pop(L, 1);
    return env_setup(L);
}
