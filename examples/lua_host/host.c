/*
 * host.c - a C program that embeds Lua 5.4 and gives its scripts capffi
 * with the host's own grants, prompt hook and audit sink
 * (docs/embedding.md, "Embedding capffi in your Lua host").
 *
 * Build it against an installed capffi:
 *   cc host.c $(pkg-config --cflags --libs capffi-lua) -o host
 *
 * The context grants libm.so.6 and nothing else; a script asks for cos
 * through a token and gets it, asks for libz and is refused (the prompt
 * hook is asked and says no), and every decision is printed by the sink.
 */
#include <stdio.h>
#include <stdlib.h>

#include <capffi.h>
#include <capffi/lua.h>
#include <lauxlib.h>
#include <lualib.h>

/* The sink: one line per event. It must not call capffi on the context. */
static void
print_event(void *payload, const capffi_event *ev)
{
    (void)payload;
    printf("audit: %s %s %s%s%s\n", capffi_op_name(ev->op),
           capffi_err_name(ev->status), ev->target, ev->status ? " - " : "",
           ev->status ? capffi_reason_name(ev->reason) : "");
}

/* The prompt hook: asked when a script requests a permission that is
 * neither granted nor denied. This host never grants more. */
static capffi_perm_state
refuse(void *payload, const char *path)
{
    (void)payload;
    printf("prompt: %s asked for, refused\n", path ? path : "all FFI");
    return CAPFFI_PERM_DENIED;
}

static const char script[] =
    "local capffi = require 'capffi'\n"
    "local tok = capffi.token{ label = 'math', paths = { 'libm.so.6' } }\n"
    "local m = tok:dlopen('libm.so.6', { cos = '(f64) -> f64' })\n"
    "print(('cos(0) = %g, cos(pi) = %g'):format(m.cos(0), m.cos(math.pi)))\n"
    "print('libz:', capffi.permissions.request('libz.so.1'))\n"
    "local ok, e = pcall(capffi.token, { paths = { 'libz.so.1' } })\n"
    "print('token for libz:', ok, e.code)\n"
    "return m.cos(0) == 1.0 and not ok\n";

int
main(void)
{
    const char *allow[] = { "libm.so.6" };
    capffi_options opts = { 0 };
    opts.allow_paths = allow;
    opts.n_allow = 1;
    opts.prompt = refuse;

    capffi_ctx *ctx = NULL;
    int rc = capffi_ctx_new(&ctx, &opts);
    if (rc) {
        fprintf(stderr, "host: %s\n", capffi_ctx_errmsg(NULL));
        return 1;
    }
    if ((rc = capffi_audit_set_sink(ctx, print_event, NULL)) != 0) {
        fprintf(stderr, "host: %s\n", capffi_strerror(rc));
        capffi_ctx_free(ctx);
        return 1;
    }

    lua_State *L = luaL_newstate();
    if (!L) {
        capffi_ctx_free(ctx);
        return 1;
    }
    luaL_openlibs(L);
    capffi_lua_options lopts = { 0 };
    lopts.global = "capffi"; /* scripts may also skip the require */
    rc = capffi_lua_open(L, ctx, &lopts);
    if (rc) {
        fprintf(stderr, "host: capffi_lua_open: %s: %s\n", capffi_err_name(rc),
                capffi_ctx_errmsg(ctx));
        lua_close(L);
        capffi_ctx_free(ctx);
        return 1;
    }

    int ok = 0;
    if (luaL_loadstring(L, script) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
        fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    else
        ok = lua_toboolean(L, -1);

    /* The state first: its capffi objects are freed by its finalizers,
     * which need the context. Then the context, which the host owns. */
    lua_close(L);
    capffi_ctx_free(ctx);
    puts(ok ? "host: done" : "host: the script failed");
    return ok ? 0 : 1;
}
