/*
 * perm/audit.c - capffi.audit: the context's recorded audit trail.
 *
 * The module records up to CAPFFI_LUA_AUDIT_CAPACITY events of its context,
 * keeping control-plane decisions and denials over bulk successes when
 * full (capffi_audit_record). Scripts count them (as tests do in C), list
 * them, or take them as JSON Lines; the runner streams every event to its
 * --audit file as it happens. The readers first deliver the refusals still
 * being coalesced (capffi_audit_flush), so what a script reads counts every
 * refusal so far.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perm/perm.h"

/* An op by name ("lib.open"); nil for any. fn names the caller. */
static capffi_op
check_op(lua_State *L, int idx, const char *fn)
{
    if (lua_isnoneornil(L, idx))
        return CAPFFI_OP_ANY;
    lua_pushfstring(L, "%s: op", fn);
    const char *name = capffi_lua__check_string(L, idx, lua_tostring(L, -1));
    lua_pop(L, 1);
    for (int op = 0; op < CAPFFI_OP__COUNT; op++)
        if (strcmp(capffi_op_name((capffi_op)op), name) == 0)
            return (capffi_op)op;
    capffi_lua__error(L, CAPFFI_EINVAL, "%s: unknown op '%s'", fn, name);
    return CAPFFI_OP_ANY;
}

/* A status: nil for any, "ok", an error name ("CAPFFI_EPERM") or its
 * number (-3). */
static int
check_status(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return CAPFFI_AUDIT_ANY_STATUS;
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Integer v =
            capffi_lua__check_integer(L, idx, "audit.count: status");
        if (v > 0 || v <= CAPFFI__ERR_LAST)
            capffi_lua__error(L, CAPFFI_ERANGE,
                              "audit.count: %lld is not a capffi status",
                              (long long)v);
        return (int)v;
    }
    const char *name = capffi_lua__check_string(L, idx, "audit.count: status");
    if (strcmp(name, "ok") == 0)
        return CAPFFI_OK;
    for (int code = 0; code > CAPFFI__ERR_LAST; code--)
        if (strcmp(capffi_err_name(code), name) == 0)
            return code;
    return capffi_lua__error(L, CAPFFI_EINVAL,
                             "audit.count: unknown status '%s'", name);
}

/* capffi.audit.count([op [, status [, target_glob]]]) */
static int
audit_count(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    capffi_op op = check_op(L, 1, "audit.count");
    int status = check_status(L, 2);
    const char *glob = capffi_lua__opt_string(L, 3, "audit.count: target");
    capffi_audit_flush(ctx);
    lua_pushinteger(L, (lua_Integer)capffi_audit_count(ctx, op, status, glob));
    return 1;
}

/* capffi.audit.events(): a list of event tables, oldest first. */
static int
audit_events(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    capffi_audit_flush(ctx);
    lua_newtable(L);
    capffi_event ev;
    for (size_t i = 0; capffi_audit_get(&ev, ctx, i) == CAPFFI_OK; i++) {
        lua_createtable(L, 0, 12);
        lua_pushinteger(L, (lua_Integer)ev.seq);
        lua_setfield(L, -2, "seq");
        lua_pushinteger(L, ev.time_ns);
        lua_setfield(L, -2, "time_ns");
        lua_pushstring(L, capffi_op_name(ev.op));
        lua_setfield(L, -2, "op");
        lua_pushstring(L, capffi_err_name(ev.status));
        lua_setfield(L, -2, "status");
        lua_pushstring(L, capffi_reason_name(ev.reason));
        lua_setfield(L, -2, "reason");
        if (ev.token_id) {
            capffi_lua__push_id(L, ev.token_id);
            lua_setfield(L, -2, "token");
        }
        if (ev.parent_id) {
            capffi_lua__push_id(L, ev.parent_id);
            lua_setfield(L, -2, "parent");
        }
        lua_pushstring(L, ev.label);
        lua_setfield(L, -2, "label");
        capffi_lua__push_rights(L, ev.rights);
        lua_setfield(L, -2, "rights");
        lua_pushstring(L, ev.target);
        lua_setfield(L, -2, "target");
        lua_pushstring(L, ev.detail);
        lua_setfield(L, -2, "detail");
        lua_pushinteger(L, (lua_Integer)ev.count);
        lua_setfield(L, -2, "count");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* capffi.audit.jsonl(): the recorded events as JSON Lines text. */
static int
audit_jsonl(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    capffi_audit_flush(ctx);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return capffi_lua__error(L, CAPFFI_ENOMEM, "audit.jsonl: %s",
                                 "cannot open a memory stream");
    int rc = capffi_audit_write_jsonl(ctx, f);
    if (fclose(f) != 0 && !rc)
        rc = CAPFFI_ENOMEM;
    if (rc) {
        free(text);
        return capffi_lua__fail(L, st, rc, "audit.jsonl");
    }
    lua_pushlstring(L, text ? text : "", len);
    free(text);
    return 1;
}

/*
 * capffi.audit.dropped([op]): how many events the recorder had to drop.
 * With an op name, that op's count. Without, the total and a table of the
 * counts by op name (only ops with drops).
 */
static int
audit_dropped(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    if (!lua_isnoneornil(L, 1)) {
        capffi_op op = check_op(L, 1, "audit.dropped");
        lua_pushinteger(L, (lua_Integer)capffi_audit_dropped_op(ctx, op));
        return 1;
    }
    lua_pushinteger(L, (lua_Integer)capffi_audit_dropped(ctx));
    lua_newtable(L);
    for (int op = 0; op < CAPFFI_OP__COUNT; op++) {
        uint64_t n = capffi_audit_dropped_op(ctx, (capffi_op)op);
        if (!n)
            continue;
        lua_pushinteger(L, (lua_Integer)n);
        lua_setfield(L, -2, capffi_op_name((capffi_op)op));
    }
    return 2;
}

void
capffi_lua__audit_push(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "count", audit_count }, { "events", audit_events },
        { "jsonl", audit_jsonl }, { "dropped", audit_dropped },
        { NULL, NULL },
    };
    lua_newtable(L);
    lua_insert(L, -2);
    luaL_setfuncs(L, fns, 1);
}
