/*
 * open.c - capffi_lua_open's contract (capffi/lua.h), through the
 * installed-style libcapffi-lua: capffi's error codes, never a Lua error,
 * the stack left as it was, one context per state, the host's context
 * left to the host. TAP.
 */
#include <stdio.h>
#include <string.h>

#include <capffi.h>
#include <capffi/lua.h>
#include <lauxlib.h>
#include <lualib.h>

static int n, failed;

static void
check(int ok, const char *what)
{
    printf("%s %d - %s\n", ok ? "ok" : "not ok", ++n, what);
    failed |= !ok;
}

/* Run code in L; its string result, or "error: ..." */
static const char *
run(lua_State *L, const char *code, char *out, size_t cap)
{
    if (luaL_dostring(L, code) != LUA_OK)
        snprintf(out, cap, "error: %s", luaL_tolstring(L, -1, NULL));
    else
        snprintf(out, cap, "%s",
                 lua_tostring(L, -1) ? lua_tostring(L, -1) : "(none)");
    lua_settop(L, 0);
    return out;
}

int
main(void)
{
    char buf[512];
    const char *allow[] = { "libm.so.6" };
    capffi_options opts = { 0 };
    opts.allow_paths = allow;
    opts.n_allow = 1;
    capffi_ctx *ctx = NULL, *other = NULL;
    if (capffi_ctx_new(&ctx, &opts) || capffi_ctx_new(&other, NULL)) {
        printf("1..0 # SKIP no context: %s\n", capffi_ctx_errmsg(NULL));
        return 77;
    }
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);

    check(capffi_lua_open(NULL, ctx, NULL) == CAPFFI_EINVAL, "NULL state");
    check(capffi_lua_open(L, NULL, NULL) == CAPFFI_EINVAL, "NULL context");
    capffi_lua_options lo = { 0 };
    lo.global = "";
    check(capffi_lua_open(L, ctx, &lo) == CAPFFI_EINVAL, "empty global");
    check(capffi_lua_ctx(L) == NULL, "no module after a refusal");

    lua_pushinteger(L, 42);
    lo.global = "ffi";
    check(capffi_lua_open(L, ctx, &lo) == CAPFFI_OK, "opens");
    check(lua_gettop(L) == 1 && lua_tointeger(L, 1) == 42,
          "the stack is as it was");
    lua_settop(L, 0);
    check(capffi_lua_ctx(L) == ctx, "capffi_lua_ctx gives the host's");
    check(strcmp(run(L, "return tostring(require('capffi') == ffi)", buf,
                     sizeof buf),
                 "true") == 0,
          "require and the global are the module");
    check(strcmp(run(L,
                     "local m = require('capffi').token():dlopen("
                     "'libm.so.6', { cos = '(f64) -> f64' })\n"
                     "return tostring(m.cos(0))",
                     buf, sizeof buf),
                 "1.0") == 0,
          "the host's grant reaches the script");
    check(strstr(run(L,
                     "local ok, e = pcall(function() return require("
                     "'capffi').token():dlopen('libz.so.1', {}) end)\n"
                     "return e.code",
                     buf, sizeof buf),
                 "CAPFFI_EPERM") != NULL,
          "and nothing more");
    check(capffi_audit_count(ctx, CAPFFI_OP_LIB_BIND, CAPFFI_OK, NULL) == 1,
          "the module's events are in the host's context");

    /* A script adds to the host's call audit, never takes it away. */
    check(capffi_audit_calls(ctx, CAPFFI_AUDIT_FN_CALLS) == CAPFFI_OK,
          "the host audits calls");
    run(L, "ffi.audit.calls(false)", buf, sizeof buf);
    check(capffi_audit_calls_get(ctx) == CAPFFI_AUDIT_FN_CALLS,
          "a script cannot switch the host's call audit off");
    run(L, "ffi.audit.calls('invokes')", buf, sizeof buf);
    check(capffi_audit_calls_get(ctx) ==
              (CAPFFI_AUDIT_FN_CALLS | CAPFFI_AUDIT_CB_INVOKES),
          "a script adds invocations to it");
    run(L, "ffi.audit.calls(false)", buf, sizeof buf);
    check(capffi_audit_calls_get(ctx) == CAPFFI_AUDIT_FN_CALLS,
          "and takes back only what it added");
    check(capffi_audit_calls(ctx, 0) == CAPFFI_OK, "the host stops it");
    /* The script asks first, then the host: the script's false still
     * leaves the host's on. */
    run(L, "ffi.audit.calls('calls')", buf, sizeof buf);
    check(capffi_audit_calls(ctx, CAPFFI_AUDIT_FN_CALLS) == CAPFFI_OK,
          "the host audits calls a script already audits");
    run(L, "ffi.audit.calls(false)", buf, sizeof buf);
    check(capffi_audit_calls_get(ctx) == CAPFFI_AUDIT_FN_CALLS,
          "the script's false leaves the host's setting");
    run(L, "ffi.audit.calls('all')", buf, sizeof buf);
    check(capffi_audit_calls(ctx, 0) == CAPFFI_OK &&
              capffi_audit_calls_get(ctx) ==
                  (CAPFFI_AUDIT_FN_CALLS | CAPFFI_AUDIT_CB_INVOKES),
          "the host's 0 leaves what the script holds");
    run(L, "ffi.audit.calls(false)", buf, sizeof buf);
    check(capffi_audit_calls_get(ctx) == 0, "until the script lets go");

    check(capffi_lua_open(L, ctx, NULL) == CAPFFI_OK, "again: the same");
    lua_pushinteger(L, 7);
    check(capffi_lua_open(L, other, NULL) == CAPFFI_EBUSY,
          "another context: CAPFFI_EBUSY");
    check(lua_gettop(L) == 1 && lua_tointeger(L, 1) == 7,
          "the stack is as it was after a failure");
    lua_settop(L, 0);
    check(capffi_lua_ctx(L) == ctx, "the first context stays");
    check(strcmp(run(L,
                     "package.loaded.capffi = nil\n"
                     "return tostring(require('capffi') == ffi)",
                     buf, sizeof buf),
                 "true") == 0,
          "a script cannot get a second module");

    /* The state closes first; the contexts are still the host's. */
    lua_close(L);
    check(capffi_audit_count(ctx, CAPFFI_OP_LIB_CLOSE, CAPFFI_OK, NULL) == 1,
          "the state's finalizers closed the library in the live context");
    check(capffi_audit_record(ctx, 16) == CAPFFI_OK,
          "the context outlives the state, usable");
    capffi_ctx_free(ctx);
    capffi_ctx_free(other);
    printf("1..%d\n", n);
    return failed;
}
