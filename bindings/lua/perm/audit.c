/*
 * perm/audit.c - capffi.audit: the context's recorded audit trail.
 *
 * The module records up to CAPFFI_LUA_AUDIT_CAPACITY events of its context,
 * keeping control-plane decisions and denials over bulk successes when
 * full (capffi_audit_record). Scripts count them (as tests do in C), list
 * them, or take them as JSON Lines, all of them or those a filter picks;
 * tests take a mark, act, and match the events since it against patterns
 * (capffi_expect). The runner streams every event to its --audit file as
 * it happens. The readers first deliver the refusals still being
 * coalesced (capffi_audit_flush), so what a script reads counts every
 * refusal so far.
 *
 * Nothing here grants anything or hides an event from the sink: reset
 * empties only this module's recorder, and call auditing adds events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <capffi/testing.h>

#include "perm/perm.h"

/* The largest report audit.expect reads (a full recorder listed). */
#define REPORT_MAX ((size_t)16 << 20)

/* An op by name ("lib.open"); nil for any. fn names the caller. */
static capffi_op
check_op(lua_State *L, int idx, const char *fn)
{
    idx = lua_absindex(L, idx);
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

/* A status: nil for any, "ok", an error name with or without its prefix
 * ("CAPFFI_EPERM", "EPERM") or its number (-3). */
static int
check_status(lua_State *L, int idx, const char *fn)
{
    idx = lua_absindex(L, idx);
    if (lua_isnoneornil(L, idx))
        return CAPFFI_AUDIT_ANY_STATUS;
    lua_pushfstring(L, "%s: status", fn);
    const char *what = lua_tostring(L, -1);
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Integer v = capffi_lua__check_integer(L, idx, what);
        if (v > 0 || v <= CAPFFI__ERR_LAST)
            capffi_lua__error(L, CAPFFI_ERANGE,
                              "%s: %lld is not a capffi status", fn,
                              (long long)v);
        lua_pop(L, 1);
        return (int)v;
    }
    const char *name = capffi_lua__check_string(L, idx, what);
    lua_pop(L, 1);
    if (strcmp(name, "ok") == 0)
        return CAPFFI_OK;
    const char *bare = strncmp(name, "CAPFFI_", 7) == 0 ? name + 7 : name;
    for (int code = 0; code > CAPFFI__ERR_LAST; code--) {
        const char *known = capffi_err_name(code);
        if (strncmp(known, "CAPFFI_", 7) == 0 && strcmp(known + 7, bare) == 0)
            return code;
    }
    return capffi_lua__error(L, CAPFFI_EINVAL, "%s: unknown status '%s'", fn,
                             name);
}

/* A reason by its text ("revoked"); nil for any. */
static capffi_reason
check_reason(lua_State *L, int idx, const char *fn)
{
    idx = lua_absindex(L, idx);
    if (lua_isnoneornil(L, idx))
        return CAPFFI_AUDIT_ANY_REASON;
    lua_pushfstring(L, "%s: reason", fn);
    const char *name = capffi_lua__check_string(L, idx, lua_tostring(L, -1));
    lua_pop(L, 1);
    for (int r = 0; r < CAPFFI_REASON__COUNT; r++)
        if (strcmp(capffi_reason_name((capffi_reason)r), name) == 0)
            return (capffi_reason)r;
    capffi_lua__error(L, CAPFFI_EINVAL, "%s: unknown reason '%s'", fn, name);
    return CAPFFI_AUDIT_ANY_REASON;
}

/* A mark (a sequence number, 0 or more). */
static uint64_t
check_mark(lua_State *L, int idx, const char *what)
{
    lua_Integer v = capffi_lua__check_integer(L, idx, what);
    if (v < 0)
        capffi_lua__error(L, CAPFFI_ERANGE, "%s: %lld is not a mark", what,
                          (long long)v);
    return (uint64_t)v;
}

/*
 * The filter table at idx ({ op, status, reason, label, target, since },
 * each optional) into *f. The field values are left on the stack, so the
 * label and target strings stay valid while the caller reads the trail.
 */
static void
check_filter(lua_State *L, int idx, const char *fn, capffi_audit_filter *f)
{
    static const char *const keys[] = { "op",     "status", "reason", "label",
                                        "target", "since",  NULL };
    const capffi_audit_filter all = CAPFFI_AUDIT_FILTER_ALL;
    *f = all;
    idx = lua_absindex(L, idx);
    lua_pushfstring(L, "%s: filter", fn);
    const char *what = lua_tostring(L, -1);
    capffi_lua__check_keys(L, idx, what, keys);
    luaL_checkstack(L, 8, "audit filter");
    lua_getfield(L, idx, "op");
    f->op = check_op(L, -1, fn);
    lua_getfield(L, idx, "status");
    f->status = check_status(L, -1, fn);
    lua_getfield(L, idx, "reason");
    f->reason = check_reason(L, -1, fn);
    lua_getfield(L, idx, "label");
    lua_pushfstring(L, "%s: label", fn);
    f->label = capffi_lua__opt_string(L, -2, lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_getfield(L, idx, "target");
    lua_pushfstring(L, "%s: target", fn);
    f->target_glob = capffi_lua__opt_string(L, -2, lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_getfield(L, idx, "since");
    if (!lua_isnil(L, -1)) {
        lua_pushfstring(L, "%s: since", fn);
        f->since = check_mark(L, -2, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}

/* The filter argument at idx: NULL for nil or none, else f filled in. */
static const capffi_audit_filter *
opt_filter(lua_State *L, int idx, const char *fn, capffi_audit_filter *f)
{
    if (lua_isnoneornil(L, idx))
        return NULL;
    if (!lua_istable(L, idx))
        capffi_lua__error(L, CAPFFI_ETYPE,
                          "%s: filter: expected a table, got %s", fn,
                          capffi_lua__typename(L, idx));
    check_filter(L, idx, fn, f);
    return f;
}

/* capffi.audit.count([filter]), capffi.audit.count([op [, status [,
 * target_glob]]]) */
static int
audit_count(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    lua_settop(L, 3); /* what a filter pushes goes above */
    capffi_audit_filter f = CAPFFI_AUDIT_FILTER_ALL;
    if (lua_istable(L, 1)) {
        if (!lua_isnoneornil(L, 2))
            return capffi_lua__error(L, CAPFFI_EINVAL,
                                     "audit.count: a filter table is the "
                                     "only argument");
        check_filter(L, 1, "audit.count", &f);
    } else {
        f.op = check_op(L, 1, "audit.count");
        f.status = check_status(L, 2, "audit.count");
        f.target_glob = capffi_lua__opt_string(L, 3, "audit.count: target");
    }
    capffi_audit_flush(ctx);
    lua_pushinteger(L, (lua_Integer)capffi_audit_count_where(ctx, &f));
    return 1;
}

/* Push an event as a table. */
static void
push_event(lua_State *L, const capffi_event *ev)
{
    lua_createtable(L, 0, 12);
    lua_pushinteger(L, (lua_Integer)ev->seq);
    lua_setfield(L, -2, "seq");
    lua_pushinteger(L, ev->time_ns);
    lua_setfield(L, -2, "time_ns");
    lua_pushstring(L, capffi_op_name(ev->op));
    lua_setfield(L, -2, "op");
    lua_pushstring(L, capffi_err_name(ev->status));
    lua_setfield(L, -2, "status");
    lua_pushstring(L, capffi_reason_name(ev->reason));
    lua_setfield(L, -2, "reason");
    if (ev->token_id) {
        capffi_lua__push_id(L, ev->token_id);
        lua_setfield(L, -2, "token");
    }
    if (ev->parent_id) {
        capffi_lua__push_id(L, ev->parent_id);
        lua_setfield(L, -2, "parent");
    }
    lua_pushstring(L, ev->label);
    lua_setfield(L, -2, "label");
    capffi_lua__push_rights(L, ev->rights);
    lua_setfield(L, -2, "rights");
    lua_pushstring(L, ev->target);
    lua_setfield(L, -2, "target");
    lua_pushstring(L, ev->detail);
    lua_setfield(L, -2, "detail");
    lua_pushinteger(L, (lua_Integer)ev->count);
    lua_setfield(L, -2, "count");
}

/* capffi.audit.events([filter]): a list of event tables, oldest first. */
static int
audit_events(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    lua_settop(L, 1); /* what a filter pushes goes above */
    capffi_audit_filter f;
    const capffi_audit_filter *fp = opt_filter(L, 1, "audit.events", &f);
    capffi_audit_flush(ctx);
    lua_newtable(L);
    capffi_event ev;
    size_t pos = 0;
    for (lua_Integer i = 1; capffi_audit_next(&ev, ctx, fp, &pos) == CAPFFI_OK;
         i++) {
        push_event(L, &ev);
        lua_rawseti(L, -2, i);
    }
    return 1;
}

/* capffi.audit.jsonl([filter [, options]]): the recorded events as JSON
 * Lines text; options { stable = true } for CAPFFI_JSONL_STABLE. */
static int
audit_jsonl(lua_State *L)
{
    static const char *const keys[] = { "stable", NULL };
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    lua_settop(L, 2); /* what a filter pushes goes above */
    capffi_audit_filter f;
    const capffi_audit_filter *fp = opt_filter(L, 1, "audit.jsonl", &f);
    unsigned flags = 0;
    if (capffi_lua__opt_table(L, 2, "audit.jsonl: options")) {
        capffi_lua__check_keys(L, 2, "audit.jsonl: options", keys);
        if (capffi_lua__opt_flag(L, 2, "stable", "audit.jsonl: options"))
            flags |= CAPFFI_JSONL_STABLE;
    }
    capffi_audit_flush(ctx);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return capffi_lua__error(L, CAPFFI_ENOMEM, "audit.jsonl: %s",
                                 "cannot open a memory stream");
    int rc = capffi_audit_write_jsonl_where(ctx, out, fp, flags);
    if (fclose(out) != 0 && !rc)
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

/* capffi.audit.mark(): the seq of the newest event so far. */
static int
audit_mark(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    lua_pushinteger(L, (lua_Integer)capffi_audit_mark(ctx));
    return 1;
}

/* capffi.audit.reset(): empty the recorder and its drop counts. Marks stay
 * meaningful (seq goes on); the sink (the runner's --audit file) sees
 * every event all the same. */
static int
audit_reset(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    int rc = capffi_audit_reset(ctx);
    if (rc)
        return capffi_lua__fail(L, st, rc, "audit.reset");
    return 0;
}

/* capffi.audit.calls(what): "calls" (fn.call events), "invokes"
 * (cb.invoke events), "all", or false or nil to stop. */
static int
audit_calls(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    unsigned what = 0;
    if (lua_type(L, 1) == LUA_TSTRING) {
        const char *s = lua_tostring(L, 1);
        if (strcmp(s, "calls") == 0)
            what = CAPFFI_AUDIT_FN_CALLS;
        else if (strcmp(s, "invokes") == 0)
            what = CAPFFI_AUDIT_CB_INVOKES;
        else if (strcmp(s, "all") == 0)
            what = CAPFFI_AUDIT_FN_CALLS | CAPFFI_AUDIT_CB_INVOKES;
        else
            return capffi_lua__error(L, CAPFFI_EINVAL,
                                     "audit.calls: unknown '%s' (\"calls\", "
                                     "\"invokes\", \"all\" or false)",
                                     s);
    } else if (!lua_isnoneornil(L, 1) &&
               !(lua_isboolean(L, 1) && !lua_toboolean(L, 1))) {
        return capffi_lua__error(L, CAPFFI_ETYPE,
                                 "audit.calls: expected a string or false, "
                                 "got %s",
                                 capffi_lua__typename(L, 1));
    }
    /* Scripts hold what they ask for and release only what they held:
     * the host's setting (capffi_audit_calls) is never theirs to change,
     * so a script cannot hide its calls. */
    unsigned drop = st->audit_calls_held & ~what;
    unsigned take = what & ~st->audit_calls_held;
    int rc = take ? capffi_audit_calls_hold(ctx, take) : CAPFFI_OK;
    if (rc)
        return capffi_lua__fail(L, st, rc, "audit.calls");
    if (drop && (rc = capffi_audit_calls_release(ctx, drop))) {
        capffi_audit_calls_release(ctx, take);
        return capffi_lua__fail(L, st, rc, "audit.calls");
    }
    st->audit_calls_held = what;
    return 0;
}

/*
 * capffi.audit.expect(mark, patterns [, options]): whether the events
 * since mark match the list of "op status [target]" patterns
 * (capffi/testing.h); options { ordered, exact }. true, or false and the
 * report. A malformed pattern, a recorder that dropped events since the
 * mark and other failures raise.
 */
static int
audit_expect(lua_State *L)
{
    static const char *const keys[] = { "ordered", "exact", NULL };
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    uint64_t mark = check_mark(L, 1, "audit.expect: mark");
    if (!lua_istable(L, 2))
        return capffi_lua__error(L, CAPFFI_ETYPE,
                                 "audit.expect: patterns: expected a table, "
                                 "got %s",
                                 capffi_lua__typename(L, 2));
    unsigned flags = 0;
    if (capffi_lua__opt_table(L, 3, "audit.expect: options")) {
        capffi_lua__check_keys(L, 3, "audit.expect: options", keys);
        if (capffi_lua__opt_flag(L, 3, "ordered", "audit.expect: options"))
            flags |= CAPFFI_EXPECT_ORDERED;
        if (capffi_lua__opt_flag(L, 3, "exact", "audit.expect: options"))
            flags |= CAPFFI_EXPECT_EXACT;
    }
    size_t n = (size_t)lua_rawlen(L, 2);
    /* The strings stay in the patterns table, which stays on the stack. */
    const char **pats = lua_newuserdatauv(L, (n ? n : 1) * sizeof *pats, 0);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (lua_Integer)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return capffi_lua__error(L, CAPFFI_ETYPE,
                                     "audit.expect: pattern %zu: expected a "
                                     "string, got %s",
                                     i + 1, capffi_lua__typename(L, -1));
        pats[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    /* The report lists every event since the mark: grow the buffer until
     * it holds the whole of it. */
    int rc;
    char *report;
    for (size_t cap = 4096;; cap *= 4) {
        report = lua_newuserdatauv(L, cap, 0);
        rc = capffi_expect(ctx, mark, flags, pats, n, report, cap);
        if ((rc != CAPFFI_OK && rc != CAPFFI_ENOTFOUND) ||
            strlen(report) + 1 < cap || cap >= REPORT_MAX)
            break;
        lua_pop(L, 1);
    }
    if (rc == CAPFFI_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (rc != CAPFFI_ENOTFOUND)
        return capffi_lua__fail(L, st, rc, "audit.expect");
    lua_pushboolean(L, 0);
    lua_pushstring(L, report);
    return 2;
}

void
capffi_lua__audit_push(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "count", audit_count }, { "events", audit_events },
        { "jsonl", audit_jsonl }, { "dropped", audit_dropped },
        { "mark", audit_mark },   { "reset", audit_reset },
        { "calls", audit_calls }, { "expect", audit_expect },
        { NULL, NULL },
    };
    lua_newtable(L);
    lua_insert(L, -2);
    luaL_setfuncs(L, fns, 1);
}
