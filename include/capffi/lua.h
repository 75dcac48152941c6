/*
 * capffi/lua.h - capffi in a Lua 5.4 host's own lua_State.
 *
 * A program that embeds Lua makes its own capffi context (its grants, its
 * prompt hook, its audit sink: capffi/ctx.h, capffi/audit.h) and hands it
 * to capffi_lua_open, after which scripts in that state get the `capffi`
 * module (docs/lua.md) from `require "capffi"`, bound to that context and
 * to no other. docs/embedding.md, "Embedding capffi in your Lua host",
 * walks through examples/lua_host/host.c.
 *
 * Link with libcapffi-lua (pkg-config capffi-lua), which needs libcapffi
 * and Lua 5.4. This header is not included by <capffi.h>: the rest of
 * capffi does not need Lua's headers.
 *
 * Thread safety: as for every capffi object (capffi/ctx.h), the context
 * and the lua_State that uses it belong to the context's owner thread.
 */
#ifndef CAPFFI_LUA_PUBLIC_H
#define CAPFFI_LUA_PUBLIC_H

#ifdef __cplusplus
#include <lua.hpp>
#else
#include <lua.h>
#endif

#include "common.h"

#if defined(CAPFFI_LUA_BUILDING) && defined(__GNUC__) && !defined(_WIN32)
#define CAPFFI_LUA_API __attribute__((visibility("default")))
#else
#define CAPFFI_LUA_API
#endif

CAPFFI_BEGIN_DECLS

/**
 * Options of capffi_lua_open. Zero-initialise, then set what you need; a
 * zeroed struct and a NULL pointer mean the same.
 */
typedef struct capffi_lua_options {
    /** Also set this global variable to the module (e.g. "capffi");
     *  NULL: scripts reach it only through require. */
    const char *global;
    /** Events the module's recorder keeps for capffi.audit
     *  (capffi_audit_record); 0: 8192. */
    size_t audit_capacity;
} capffi_lua_options;

/**
 * Put the capffi module into L, bound to ctx: the module table goes into
 * package.loaded["capffi"] (and a package.preload entry), so that
 * `require "capffi"` returns it; with opts->global, that global too. The
 * module records the context's events for capffi.audit: this calls
 * capffi_audit_record(ctx, capacity), which empties a recorder the host
 * had set. A sink the host set (capffi_audit_set_sink) stays, and so does
 * the prompt hook of the context's options.
 *
 * One context per lua_State, for the life of the state: a later call with
 * the same context only sets opts->global again; a script that clears
 * package.loaded["capffi"] gets the same module back from require, never
 * a context of its own. The environment variables that grant FFI to a
 * stock interpreter (CAPFFI_ALLOW_FFI, CAPFFI_DENY_FFI; docs/lua.md) are
 * not read: the host's context is the only source of grants.
 *
 * It never raises a Lua error: the set-up runs in a protected call, and L's
 * stack is as it was whether it succeeds or fails. On failure nothing is
 * left in package.loaded or the global.
 *
 * @param L    a state made with luaL_newstate (the standard libraries need
 *             not be open yet).
 * @param ctx  the host's context, made on this thread.
 * @param opts NULL for the defaults.
 * @return CAPFFI_OK; CAPFFI_EINVAL (L or ctx NULL, an empty global name);
 *         CAPFFI_EBUSY (L already has the module with another context,
 *         from an earlier capffi_lua_open or from require "capffi" of the
 *         capffi.so module); CAPFFI_ETHREAD (off the context's owner
 *         thread); CAPFFI_ENOMEM (from Lua or from the recorder). The
 *         detail of a failure that came from the context is in
 *         capffi_ctx_errmsg(ctx).
 * Ownership: the host keeps ctx. L's objects (libraries, functions,
 *         buffers, callbacks, jobs) are capffi objects of ctx, freed by
 *         their finalizers: keep ctx alive as long as L, and call
 *         lua_close(L) before capffi_ctx_free(ctx). Freeing the context
 *         first leaves L's finalizers with freed memory.
 * Thread safety: the context's owner thread.
 */
CAPFFI_LUA_API int capffi_lua_open(lua_State *L, capffi_ctx *ctx,
                                   const capffi_lua_options *opts);

/**
 * The context of the capffi module in L.
 * @return the context given to capffi_lua_open (or made by require
 *         "capffi" in a stock interpreter); NULL when L has no module or
 *         its context was freed with the state.
 * Ownership: not transferred: capffi_lua_open's rule applies.
 * Thread safety: the context's owner thread.
 */
CAPFFI_LUA_API capffi_ctx *capffi_lua_ctx(lua_State *L);

CAPFFI_END_DECLS

#endif
