/*
 * callback/callback.c - callbacks: Lua functions that native code calls.
 *
 * tok:callback(signature, fn [, options]) makes a capffi callback whose
 * handler (handler() below) runs the Lua function fn. The userdata is the
 * handler's payload, so it must outlive every invocation: it is anchored
 * in the registry until cb:close() (or a to-be-closed variable, or the
 * end of the script), not merely until the script drops it, because
 * native code may keep the code pointer where the collector cannot see
 * it. A callback that is closed, or whose token is revoked, fails closed
 * in capffi and never reaches the handler again.
 *
 * A Lua error must never unwind through native frames: the handler runs
 * the Lua function, and everything that may raise (pushing arguments,
 * converting the result), inside lua_pcall. A failure is reported to
 * capffi with capffi_cb_fail (the native caller receives the callback's
 * default result) and kept for the bound function call or capffi.poll()
 * during which it happened, which raises CAPFFI_ECALLBACK once native
 * code has returned, with the handler's error as `cause`
 * (call/native.c).
 *
 * The handler runs on the Lua thread that is inside the native call (or
 * inside capffi.poll), which the state records for the duration of each
 * (capffi_lua__state.L): a handler is a nested call of that thread, as if
 * the bound function had called the Lua function itself.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "callback/callback.h"

struct lcb {
    struct capffi_lua__cbhead h; /* the capffi callback and the state */
    int self; /* registry reference anchoring the userdata; LUA_NOREF once
                 closed */
    bool closed;
    bool wrap;
    uint8_t nparams;
    uint8_t ret;       /* enum capffi_lua__kind of the result */
    size_t ret_size;   /* its size in bytes */
    bool ret_function; /* the result is declared `function` */
    bool objects;      /* some parameter is an instance (user value 3: the
                          record of them) */
    bool direct;       /* handler_direct fits it (direct_fits) */
    capffi_token tok;  /* whose class names its instance arguments use */
    uint8_t kind[];    /* enum capffi_lua__kind, per parameter */
};

/* One invocation, handed to the protected part of the handler. */
struct invocation {
    struct lcb *c;
    const capffi_value *args;
    capffi_value *ret;
    bool failed;
    /* The record of the instance arguments, once this invocation has
     * begun in it: they are ended when the handler returns (their
     * capffi_obj lives in the invocation). */
    struct capffi_lua__args *record;
    char msg[CAPFFI_CB_DETAIL_MAX];
};

/* ---- values ------------------------------------------------------------- */

static int scalar_result(lua_State *L, const struct lcb *c, int idx,
                         capffi_value *ret, char *why, size_t n);

/*
 * The result a handler returned (at idx), into *ret as the declared type
 * wants it. Raises (inside the protected call) on a value that does not
 * fit: the error becomes the handler's failure.
 */
static void
result_in(lua_State *L, struct lcb *c, int self, int idx, capffi_value *ret)
{
    char why[160];
    int rc = CAPFFI_OK;
    if (c->ret_function) {
        if (!capffi_lua__handle_in(L, idx, ret))
            capffi_lua__error(L, CAPFFI_ETYPE,
                              "callback result (function): expected a "
                              "callback, a bound function or nil, got %s",
                              capffi_lua__typename(L, idx));
        return;
    }
    switch (c->ret) {
    case CAPFFI_LUA__VOID:
        return;
    case CAPFFI_LUA__CSTRING:
        if (lua_isnil(L, idx)) {
            ret->str = NULL;
        } else {
            size_t len;
            const char *s =
                capffi_lua__check_string(L, idx, "callback result (cstring)");
            lua_tolstring(L, idx, &len);
            if (strlen(s) != len)
                capffi_lua__error(L, CAPFFI_EINVAL,
                                  "callback result (cstring): the string has "
                                  "a NUL byte at %zu",
                                  strlen(s) + 1);
            /* Native code reads it after the handler returns: the string
             * is kept with the callback until its next result. */
            lua_pushvalue(L, idx);
            lua_setiuservalue(L, self, 2);
            ret->str = s;
        }
        return;
    case CAPFFI_LUA__STRUCT: {
        void *p = NULL;
        size_t len = 0;
        if (!capffi_lua__struct_in(L, c->h.st, idx, &p, &len,
                                   "callback result"))
            capffi_lua__error(L, CAPFFI_ETYPE,
                              "callback result (struct): expected a "
                              "string, buffer or struct value, got %s",
                              capffi_lua__typename(L, idx));
        if (len != ret->agg.len)
            capffi_lua__error(L, CAPFFI_ETYPE,
                              "callback result (struct): %zu bytes given, "
                              "%zu declared",
                              len, ret->agg.len);
        memcpy(ret->agg.ptr, p, len);
        return;
    }
    default:
        break;
    }
    rc = scalar_result(L, c, idx, ret, why, sizeof why);
    if (rc)
        capffi_lua__error(L, rc, "callback result (%s): %s",
                          capffi_cb_result_type(c->h.cb, NULL), why);
}

/*
 * A scalar result at idx into *ret, raising nothing: CAPFFI_OK, or the
 * code with the reason in why (n bytes).
 */
static int
scalar_result(lua_State *L, const struct lcb *c, int idx, capffi_value *ret,
              char *why, size_t n)
{
    int rc = capffi_lua__scalar_in(L, idx, c->ret, c->wrap, ret, why, n);
    if (!rc && !c->wrap && c->ret_size < 8 &&
        (c->ret == CAPFFI_LUA__INT || c->ret == CAPFFI_LUA__UINT)) {
        /* capffi checks too; checking here makes the failure a Lua error
         * that the call raises, like every other handler failure. */
        int bits = (int)c->ret_size * 8;
        int64_t lo =
            c->ret == CAPFFI_LUA__INT ? -(INT64_C(1) << (bits - 1)) : 0;
        int64_t hi = c->ret == CAPFFI_LUA__INT ? (INT64_C(1) << (bits - 1)) - 1
                                               : (INT64_C(1) << bits) - 1;
        if (ret->i64 < lo || ret->i64 > hi) {
            rc = CAPFFI_ERANGE;
            snprintf(why, n, "%lld is outside [%lld, %lld]",
                     (long long)ret->i64, (long long)lo, (long long)hi);
        }
    }
    return rc;
}

/* ---- invocation ------------------------------------------------------- */

/*
 * The protected part of the handler, called with the invocation as a
 * light userdata: push the Lua function and the arguments, call it, and
 * store its result. Any error, the function's own or a conversion's,
 * propagates to handler().
 */
static int
invoke(lua_State *L)
{
    struct invocation *inv = lua_touserdata(L, 1);
    struct lcb *c = inv->c;
    /* The userdata, on the stack for the whole invocation: the handler
     * may close the callback and drop every other reference to it. */
    if (lua_rawgeti(L, LUA_REGISTRYINDEX, c->self) != LUA_TUSERDATA)
        return luaL_error(L, "the callback is closed");
    int self = lua_gettop(L);
    luaL_checkstack(L, c->nparams + 5, "callback arguments");
    int rec = 0;
    if (c->objects) {
        lua_getiuservalue(L, self, 3);
        rec = lua_gettop(L);
        inv->record = capffi_lua__args_begin(L, rec);
    }
    lua_getiuservalue(L, self, 1);
    for (int i = 0; i < c->nparams; i++) {
        const capffi_value *a = &inv->args[i];
        switch (c->kind[i]) {
        case CAPFFI_LUA__STRUCT:
            lua_pushlstring(L, a->agg.ptr, a->agg.len);
            break;
        case CAPFFI_LUA__OBJECT:
            if (!a->obj) {
                lua_pushnil(L);
                break;
            }
            capffi_lua__args_push(L, c->h.st, rec, i, a->obj, &c->tok);
            break;
        default: /* cstring, scalars; function and buffer arrive as
                    addresses */
            capffi_lua__value_push(L, c->kind[i], a);
        }
    }
    lua_call(L, c->nparams, 1);
    result_in(L, c, self, lua_gettop(L), inv->ret);
    return 0;
}

/*
 * Whether a callback's invocations take the direct path of handler():
 * every parameter reaches Lua by a push that can neither fail nor
 * allocate (scalars; buffers and functions arrive as addresses), there
 * is no instance to record, and the result is void or a scalar. Then
 * nothing but the Lua function and the result's conversion can raise,
 * and both run protected.
 */
static bool
direct_fits(const struct lcb *c)
{
    if (c->objects || c->ret_function)
        return false;
    for (int i = 0; i < c->nparams; i++)
        if (!capffi_lua__is_scalar(c->kind[i]) &&
            c->kind[i] != CAPFFI_LUA__BUFFER)
            return false;
    return c->ret == CAPFFI_LUA__VOID || capffi_lua__is_scalar(c->ret);
}

/* Raise the error of a result that did not convert on the direct path
 * (result_in, protected): the invocation at 1, the value at 2. */
static int
result_protected(lua_State *L)
{
    struct invocation *inv = lua_touserdata(L, 1);
    result_in(L, inv->c, 0, 2, inv->ret);
    return 0;
}

/*
 * The direct path of handler() for a callback direct_fits: the userdata
 * (kept on the stack for the invocation, as invoke keeps it), the Lua
 * function and the arguments are pushed here, where none of those
 * pushes can raise, and the Lua function is called with lua_pcall
 * itself. Returns the status; an error value is on the top. A callback
 * closed meanwhile (no anchor) takes invoke's path, which says so.
 */
static int
invoke_direct(lua_State *L, struct invocation *inv)
{
    struct lcb *c = inv->c;
    if (lua_rawgeti(L, LUA_REGISTRYINDEX, c->self) != LUA_TUSERDATA) {
        lua_pop(L, 1);
        lua_pushcfunction(L, invoke);
        lua_pushlightuserdata(L, inv);
        return lua_pcall(L, 1, 0, 0);
    }
    lua_getiuservalue(L, -1, 1);
    const capffi_value *a = inv->args;
    for (int i = 0; i < c->nparams; i++) {
        switch (c->kind[i]) {
        case CAPFFI_LUA__INT:
        case CAPFFI_LUA__I64:
            lua_pushinteger(L, a[i].i64);
            break;
        case CAPFFI_LUA__UINT:
        case CAPFFI_LUA__U64:
            lua_pushinteger(L, (lua_Integer)a[i].u64);
            break;
        default:
            capffi_lua__scalar_push(L, c->kind[i], &a[i]);
            break;
        }
    }
    int status = lua_pcall(L, c->nparams, 1, 0);
    if (status != LUA_OK || c->ret == CAPFFI_LUA__VOID)
        return status;
    if (c->ret == CAPFFI_LUA__INT && !c->wrap && c->ret_size == 4 &&
        lua_isinteger(L, -1)) {
        lua_Integer v = lua_tointegerx(L, -1, NULL);
        if (v >= INT32_MIN && v <= INT32_MAX) {
            inv->ret->i64 = v;
            return LUA_OK;
        }
    } else {
        char why[160];
        if (!scalar_result(L, c, lua_gettop(L), inv->ret, why, sizeof why))
            return LUA_OK;
    }
    lua_pushcfunction(L, result_protected);
    lua_pushlightuserdata(L, inv);
    lua_pushvalue(L, -3);
    return lua_pcall(L, 2, 0, 0);
}

/* The capffi handler of every Lua callback. It returns normally whatever
 * the Lua side does. */
static void
handler(void *payload, const capffi_value *args, capffi_value *ret)
{
    struct lcb *c = payload;
    struct capffi_lua__state *st = c->h.st;
    lua_State *L = st->L;
    if (!L) {
        capffi_cb_fail("no Lua code is running to take the call");
        return;
    }
    if (!lua_checkstack(L, c->direct ? c->nparams + 8 : 8)) {
        capffi_cb_fail("the Lua stack is full");
        return;
    }
    int top = lua_gettop(L);
    if (c->direct) {
        /* Not zeroed: msg (256 bytes) is written only on a failure. */
        struct invocation inv;
        inv.c = c;
        inv.args = args;
        inv.ret = ret;
        inv.failed = false;
        inv.record = NULL;
        int status = invoke_direct(L, &inv);
        if (status != LUA_OK)
            capffi_lua__native_failed(L, st, inv.msg, sizeof inv.msg);
        lua_settop(L, top);
        if (status != LUA_OK)
            capffi_cb_fail(inv.msg);
        return;
    }
    struct invocation inv = { .c = c, .args = args, .ret = ret };
    lua_pushcfunction(L, invoke);
    lua_pushlightuserdata(L, &inv);
    int status = lua_pcall(L, 1, 0, 0);
    /* A handler that kept an instance argument gets CAPFFI_ECLOSED from
     * it from now on. The record is the callback's, which is alive: it
     * is on the stack of invoke until the call returns, and the
     * collector, had it found it unreachable since, would keep it for
     * its finalizer. */
    if (inv.record)
        capffi_lua__args_end(inv.record);
    if (status != LUA_OK)
        capffi_lua__native_failed(L, st, inv.msg, sizeof inv.msg);
    lua_settop(L, top);
    if (status != LUA_OK)
        capffi_cb_fail(inv.msg);
}

/* ---- making one --------------------------------------------------------- */

/* The kind of a signature's declared result, read from the text after its
 * "->" (the only one a signature has): what a `result` option converts
 * to, before the callback exists. -1 when there is no "->" (capffi then
 * refuses the signature). *function: the result is `function`. */
static int
declared_result(const char *sig, bool *function)
{
    const char *r = strstr(sig, "->");
    *function = false;
    if (!r)
        return -1;
    r += 2;
    while (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r')
        r++;
    if (*r == '*')
        return CAPFFI_LUA__POINTER;
    if (*r == '{')
        return CAPFFI_LUA__STRUCT;
    size_t n = strcspn(r, " \t\n\r");
    char word[16];
    if (n >= sizeof word)
        return CAPFFI_LUA__STRUCT; /* a long NAME: a defined struct */
    memcpy(word, r, n);
    word[n] = '\0';
    *function = strcmp(word, "function") == 0;
    int k = capffi_lua__kind_of(word);
    return k < 0 ? CAPFFI_LUA__STRUCT : k; /* any other NAME: a struct */
}

/* The `result` option at idx, as the declared result wants it. */
static void
default_in(lua_State *L, struct capffi_lua__state *st, const char *sig, int idx,
           bool wrap, capffi_value *v)
{
    bool function;
    int k = declared_result(sig, &function);
    char why[160];
    int rc = CAPFFI_OK;
    memset(v, 0, sizeof *v);
    if (k < 0 || k == CAPFFI_LUA__VOID) {
        capffi_lua__error(L, CAPFFI_EINVAL,
                          "callback: 'result' is given, but the signature "
                          "declares no result");
    } else if (function) {
        if (!capffi_lua__handle_in(L, idx, v))
            capffi_lua__error(L, CAPFFI_ETYPE,
                              "callback: 'result' (function): expected a "
                              "callback, a bound function or nil, got %s",
                              capffi_lua__typename(L, idx));
    } else if (k == CAPFFI_LUA__CSTRING) {
        v->str = lua_isnil(L, idx)
                     ? NULL
                     : capffi_lua__check_string(L, idx, "callback: 'result'");
    } else if (k == CAPFFI_LUA__STRUCT) {
        if (!capffi_lua__struct_in(L, st, idx, &v->agg.ptr, &v->agg.len,
                                   "callback: 'result'"))
            capffi_lua__error(L, CAPFFI_ETYPE,
                              "callback: 'result' (struct): expected a "
                              "string, buffer or struct value, got %s",
                              capffi_lua__typename(L, idx));
    } else if ((rc = capffi_lua__scalar_in(L, idx, k, wrap, v, why,
                                           sizeof why))) {
        capffi_lua__error(L, rc, "callback: 'result': %s", why);
    }
}

static const char *const cb_keys[] = {
    "threadsafe", "wrap", "result", "timeout_ms", NULL,
};

static bool
opt_bool(lua_State *L, int idx, const char *key)
{
    int t = lua_getfield(L, idx, key);
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
        capffi_lua__error(L, CAPFFI_ETYPE,
                          "callback: '%s' must be a boolean, got %s", key,
                          capffi_lua__typename(L, -1));
    bool on = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return on;
}

/* tok:callback(signature, fn [, options]) through tok, with the arguments
 * at those indices; pushes the callback. */
static int
callback_new(lua_State *L, struct capffi_lua__state *st,
             const capffi_token *tok, int sig_idx, int fn_idx, int opts_idx)
{
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    const char *sig = capffi_lua__check_string(L, sig_idx,
                                               "callback: "
                                               "signature");
    if (lua_type(L, fn_idx) != LUA_TFUNCTION)
        return capffi_lua__error(L, CAPFFI_ETYPE,
                                 "callback: expected a function, got %s",
                                 capffi_lua__typename(L, fn_idx));
    capffi_cb_options o;
    memset(&o, 0, sizeof o);
    capffi_value dflt;
    if (capffi_lua__opt_table(L, opts_idx, "callback: options")) {
        capffi_lua__check_keys(L, opts_idx, "callback: options", cb_keys);
        if (opt_bool(L, opts_idx, "threadsafe"))
            o.flags |= CAPFFI_CB_THREADSAFE;
        if (opt_bool(L, opts_idx, "wrap"))
            o.flags |= CAPFFI_CB_WRAP;
        if (lua_getfield(L, opts_idx, "timeout_ms") != LUA_TNIL) {
            lua_Integer ms =
                capffi_lua__check_integer(L, -1, "callback: timeout_ms");
            if (ms < 0 || ms > INT_MAX)
                return capffi_lua__error(L, CAPFFI_ERANGE,
                                         "callback: timeout_ms %lld is "
                                         "outside [0, %d]",
                                         (long long)ms, INT_MAX);
            o.timeout_ms = (int)ms;
        }
        lua_pop(L, 1);
        /* The value stays on the stack while capffi copies it. */
        if (lua_getfield(L, opts_idx, "result") != LUA_TNIL) {
            default_in(L, st, sig, lua_gettop(L),
                       (o.flags & CAPFFI_CB_WRAP) != 0, &dflt);
            o.result = &dflt;
        }
    }
    struct lcb *c = lua_newuserdatauv(L, sizeof *c + CAPFFI_MAX_ARGS, 3);
    memset(c, 0, sizeof *c);
    c->h.st = st;
    c->self = LUA_NOREF;
    c->closed = true; /* until it exists */
    c->wrap = (o.flags & CAPFFI_CB_WRAP) != 0;
    luaL_setmetatable(L, CAPFFI_LUA_CALLBACK);
    int ud = lua_gettop(L);
    lua_pushvalue(L, fn_idx);
    lua_setiuservalue(L, ud, 1);
    /* Anchor it before capffi may call it; the reference is what the
     * handler finds the userdata by. */
    lua_pushvalue(L, ud);
    c->self = luaL_ref(L, LUA_REGISTRYINDEX);
    int rc = capffi_cb_new_opts(&c->h.cb, ctx, tok, sig, handler, c, &o);
    if (rc) {
        luaL_unref(L, LUA_REGISTRYINDEX, c->self);
        c->self = LUA_NOREF;
        return capffi_lua__fail(L, st, rc, "callback");
    }
    c->closed = false;
    c->tok = *tok;
    size_t n = capffi_cb_arity(c->h.cb);
    c->nparams = (uint8_t)n;
    struct capffi_lua__sigpart parts[CAPFFI_MAX_ARGS], rpart;
    bool read =
        capffi_lua__sig_read(sig, parts, CAPFFI_MAX_ARGS, &rpart) == (int)n;
    for (size_t i = 0; i < n; i++) {
        const char *word = capffi_cb_param_type(c->h.cb, i, NULL);
        int k = capffi_lua__kind_of(word);
        /* A typed pointer reaches the handler as an instance (capffi
         * says "pointer" or "object" for it, the text says which). */
        if (read && parts[i].what == CAPFFI_LUA__SIG_OBJECT &&
            (k == CAPFFI_LUA__POINTER || k == CAPFFI_LUA__OBJECT))
            k = CAPFFI_LUA__OBJECT;
        else if (k == CAPFFI_LUA__OBJECT)
            return capffi_lua__error(L, CAPFFI_ETYPE,
                                     "callback: parameter %zu: an instance "
                                     "whose signature text Lua cannot read",
                                     i + 1);
        c->kind[i] = (uint8_t)k;
        c->objects |= k == CAPFFI_LUA__OBJECT;
    }
    if (c->objects) {
        capffi_lua__args_new(L, (int)n);
        lua_setiuservalue(L, ud, 3);
    }
    const char *rt = capffi_cb_result_type(c->h.cb, &c->ret_size);
    c->ret = (uint8_t)capffi_lua__kind_of(rt);
    c->ret_function = strcmp(rt, "function") == 0;
    c->direct = direct_fits(c);
    lua_settop(L, ud);
    return 1;
}

/* tok:callback(signature, fn [, options]) (CAPFFI_RIGHT_CALLBACK) */
static int
token_callback(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_token tok = t->tok;
    return callback_new(L, t->st, &tok, 2, 3, 4);
}

/* ---- the callback object ------------------------------------------------ */

static struct lcb *
check_cb(lua_State *L, int idx)
{
    struct lcb *c =
        capffi_lua__check_object(L, idx, CAPFFI_LUA_CALLBACK, "callback");
    capffi_lua__ctx(L, c->h.st);
    return c;
}

/* Close: capffi fails every later invocation closed; the Lua function and
 * the anchor are released. Twice is fine. */
static void
close_cb(lua_State *L, struct lcb *c)
{
    if (!c->closed && c->h.st->ctx)
        capffi_cb_close(c->h.cb);
    c->closed = true;
    if (c->self != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, c->self);
        c->self = LUA_NOREF;
    }
}

/* cb:close() */
static int
cb_close(lua_State *L)
{
    close_cb(L, check_cb(L, 1));
    return 0;
}

/* __gc and __close: the collector reaches a callback only once it is
 * closed, or when the state closes. */
static int
cb_gc(lua_State *L)
{
    close_cb(L, lua_touserdata(L, 1));
    return 0;
}

/* cb:pointer(): the code address native code calls. It stays callable
 * until the script ends, failing closed once the callback is closed. */
static int
cb_pointer(lua_State *L)
{
    struct lcb *c = check_cb(L, 1);
    lua_pushlightuserdata(L, capffi_cb_code(c->h.cb));
    return 1;
}

/* cb:ref(), cb:unref(): Deno's; the new count. */
static int
cb_ref(lua_State *L)
{
    struct lcb *c = check_cb(L, 1);
    uint32_t n;
    int rc = capffi_cb_ref(&n, c->h.cb);
    if (rc)
        return capffi_lua__fail(L, c->h.st, rc, "ref");
    lua_pushinteger(L, n);
    return 1;
}

static int
cb_unref(lua_State *L)
{
    struct lcb *c = check_cb(L, 1);
    uint32_t n;
    int rc = capffi_cb_unref(&n, c->h.cb);
    if (rc)
        return capffi_lua__fail(L, c->h.st, rc, "unref");
    lua_pushinteger(L, n);
    return 1;
}

/* cb:status(): what went wrong since the last look, and reset. */
static int
cb_status(lua_State *L)
{
    struct lcb *c = check_cb(L, 1);
    capffi_cb_status s;
    int rc = capffi_cb_take_status(&s, c->h.cb);
    if (rc)
        return capffi_lua__fail(L, c->h.st, rc, "status");
    lua_createtable(L, 0, 3);
    lua_pushstring(L, capffi_err_name(s.first));
    lua_setfield(L, -2, "code");
    lua_pushinteger(L, (lua_Integer)s.failures);
    lua_setfield(L, -2, "failures");
    lua_pushstring(L, s.detail);
    lua_setfield(L, -2, "detail");
    return 1;
}

/* capffi.audit.cb(cb [, on]): a cb.invoke event for every invocation of
 * cb whose result is stored (capffi_cb_audit). A closed callback is
 * accepted: its invocations are refused, and audited as refusals. */
int
capffi_lua__cb_audit(lua_State *L)
{
    struct lcb *c =
        capffi_lua__check_object(L, 1, CAPFFI_LUA_CALLBACK, "callback");
    bool on = capffi_lua__audit_on(L, 2, "audit.cb: on");
    capffi_lua__ctx(L, c->h.st);
    int rc = capffi_cb_audit(c->h.cb, on);
    if (rc)
        return capffi_lua__fail(L, c->h.st, rc, "audit.cb");
    return 0;
}

static int
cb_tostring(lua_State *L)
{
    struct lcb *c = luaL_checkudata(L, 1, CAPFFI_LUA_CALLBACK);
    if (c->closed || !c->h.st->ctx)
        lua_pushliteral(L, "capffi.callback(closed)");
    else
        lua_pushfstring(L, "capffi.callback(%p)", capffi_cb_code(c->h.cb));
    return 1;
}

/* ---- the owner loop ----------------------------------------------------- */

/* capffi.poll([timeout_ms]): run the invocations of thread-safe callbacks
 * queued by other threads and finish the jobs that ended, waiting up to
 * timeout_ms (default 0; negative: no limit) when there is nothing to do;
 * then resume the coroutines awaiting jobs that ended (call/job.c). true
 * when work ran (or the loop was woken), false when the time passed with
 * nothing to do. */
int
capffi_lua__poll(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    lua_Integer ms = lua_isnoneornil(L, 1)
                         ? 0
                         : capffi_lua__check_integer(L, 1, "poll: timeout_ms");
    if (ms > INT_MAX || ms < INT_MIN)
        return capffi_lua__error(L, CAPFFI_ERANGE,
                                 "poll: timeout_ms %lld is out of range",
                                 (long long)ms);
    /* Jobs seen ended earlier (during a job:wait) are work: no waiting. */
    if (capffi_lua__job_ended(L))
        ms = 0;
    struct capffi_lua__native poll;
    capffi_lua__native_enter(L, st, &poll);
    int rc = capffi_ctx_poll(ctx, (int)ms);
    capffi_lua__native_leave(L, st, &poll, "poll");
    if (rc && rc != CAPFFI_ETIMEDOUT)
        return capffi_lua__fail(L, st, rc, "poll");
    size_t resumed = capffi_lua__job_resume(L);
    lua_pushboolean(L, rc == CAPFFI_OK || resumed);
    return 1;
}

/* capffi.keepalive(): the live thread-safe callbacks with references and
 * the jobs not yet ended. */
int
capffi_lua__keepalive(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    lua_pushinteger(L, (lua_Integer)capffi_ctx_keepalive(ctx));
    return 1;
}

void
capffi_lua__callback_init(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "close", cb_close }, { "pointer", cb_pointer }, { "ref", cb_ref },
        { "unref", cb_unref }, { "status", cb_status },   { NULL, NULL },
    };
    static const luaL_Reg meta[] = {
        { "__gc", cb_gc },
        { "__close", cb_gc },
        { "__tostring", cb_tostring },
        { NULL, NULL },
    };
    static const luaL_Reg token_methods[] = {
        { "callback", token_callback },
        { NULL, NULL },
    };
    capffi_lua__new_class(L, CAPFFI_LUA_CALLBACK, methods, meta);
    lua_pop(L, 1);
    capffi_lua__add_methods(L, CAPFFI_LUA_TOKEN, token_methods);
}
