/*
 * call/fn.c - bound functions: Lua functions that call native ones.
 *
 * Each bound function (made by tok:dlopen, capffi.dlopen or tok:fnptr) is
 * a Lua C closure over a function userdata that holds the capffi_fn, the
 * Lua-side conversion of each parameter (chosen once, at bind time, from
 * the declared types) and a reference to its library, so a library is not
 * collected while one of its functions can still be called.
 *
 * Conversions (docs/lua.md, "Values"): integers are exact; a float is
 * accepted for an integer parameter only when it holds an integral value
 * in range; u64 and usize values at or above 2^63 travel as the negative
 * integer with the same 64 bits. Every refusal is a Lua error with a
 * capffi code; nothing reaches native code unconverted. A `function`
 * parameter takes a callback, a bound function or nil
 * (capffi_lua__handle_in), which callbacks use for their results too.
 *
 * A function bound with `async = true` submits a nonblocking call instead,
 * through the submission job.c leaves in the registry; f:async(...) does
 * that for any bound function. Both share the
 * argument and result conversions below with a synchronous call.
 */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "call/call.h"

/* Short names for the conversion kinds (base/base.h). */
enum {
    K_VOID = CAPFFI_LUA__VOID,
    K_BOOL = CAPFFI_LUA__BOOL,
    K_POINTER = CAPFFI_LUA__POINTER,
    K_CSTRING = CAPFFI_LUA__CSTRING,
    K_BUFFER = CAPFFI_LUA__BUFFER,
    K_STRUCT = CAPFFI_LUA__STRUCT,
    K_FUNCTION = CAPFFI_LUA__FUNCTION,
    K_OBJECT = CAPFFI_LUA__OBJECT,
    K_OUTOBJ = CAPFFI_LUA__OUTOBJ,
    K_OUTVAL = CAPFFI_LUA__OUTVAL
};

/* ---- calling ----------------------------------------------------------- */

/* Parameter i (from 0) takes the Lua argument at stack index idx, the
 * script's argument number argno (out-parameters take none). */
static int
arg_error(lua_State *L, const struct capffi_lua__fn *f, int idx, int i,
          int argno, int code, const char *what)
{
    const char *type = capffi_fn_param_type(f->fn, (size_t)i, NULL);
    return capffi_lua__error(L, code, "%s: argument %d (%s): %s, got %s",
                             f->name, argno, type ? type : "?", what,
                             capffi_lua__typename(L, idx));
}

static void
arg_value(lua_State *L, const struct capffi_lua__fn *f, int idx, int i,
          int argno, capffi_value *v)
{
    switch (f->kind[i]) {
    case K_CSTRING:
        if (lua_type(L, idx) == LUA_TSTRING) {
            size_t len;
            v->str = lua_tolstring(L, idx, &len);
            if (strlen(v->str) != len)
                capffi_lua__error(L, CAPFFI_EINVAL,
                                  "%s: argument %d (cstring): the string has "
                                  "a NUL byte at %zu",
                                  f->name, argno, strlen(v->str) + 1);
        } else if (lua_isnil(L, idx)) {
            /* Native code given a cstring reads it (strlen(NULL) would
             * crash the process): a cstring is never NULL. */
            capffi_lua__error(L, CAPFFI_ETYPE,
                              "%s: argument %d (cstring): expected a string, "
                              "got nil (native code reads a cstring, so it "
                              "is never NULL: pass a string)",
                              f->name, argno);
        } else {
            arg_error(L, f, idx, i, argno, CAPFFI_ETYPE, "expected a string");
        }
        break;
    case K_BUFFER:
        if (lua_isnil(L, idx)) {
            v->buf = NULL;
        } else {
            struct capffi_lua__buffer *b =
                capffi_lua__buffer_test(L, idx, true);
            if (!b)
                arg_error(L, f, idx, i, argno, CAPFFI_ETYPE,
                          "expected a buffer or nil");
            v->buf = b->buf;
        }
        break;
    case K_FUNCTION:
        if (!capffi_lua__handle_in(L, idx, v)) {
            if (lua_isfunction(L, idx))
                capffi_lua__error(L, CAPFFI_ETYPE,
                                  "%s: argument %d (function): got a Lua "
                                  "function; native code calls a callback: "
                                  "pass tok:callback(\"(params) -> "
                                  "result\", fn) instead",
                                  f->name, argno);
            arg_error(L, f, idx, i, argno, CAPFFI_ETYPE,
                      "expected a callback, a bound function or nil");
        }
        break;
    case K_OBJECT:
        if (!capffi_lua__obj_arg(L, idx, &v->obj))
            arg_error(L, f, idx, i, argno, CAPFFI_ETYPE,
                      "expected an instance or nil");
        break;
    case K_STRUCT:
        if (!capffi_lua__struct_in(L, f->st, idx, &v->agg.ptr, &v->agg.len,
                                   f->name))
            arg_error(L, f, idx, i, argno, CAPFFI_ETYPE,
                      "expected a string, buffer or struct value holding "
                      "the struct");
        break;
    default: {
        char why[128];
        int rc = capffi_lua__scalar_in(L, idx, f->kind[i], f->wrap, v, why,
                                       sizeof why);
        if (rc)
            capffi_lua__error(L, rc, "%s: argument %d (%s): %s", f->name, argno,
                              capffi_fn_param_type(f->fn, (size_t)i, NULL),
                              why);
    }
    }
}

void
capffi_lua__fn_args(lua_State *L, const struct capffi_lua__fn *f, int base,
                    capffi_value *args, capffi_value *outs)
{
    int n = lua_gettop(L) - base + 1, want = f->nparams - f->nouts;
    if (n != want)
        capffi_lua__error(L, CAPFFI_EINVAL,
                          "%s: expected %d argument%s, got %d", f->name, want,
                          want == 1 ? "" : "s", n);
    capffi_lua__ctx(L, f->st);
    if (f->nouts && !outs)
        capffi_lua__error(L, CAPFFI_ETYPE,
                          "%s: a function with out-parameters is not called "
                          "nonblocking (its results would be the job's)",
                          f->name);
    for (int i = 0, j = 0; i < f->nparams; i++) {
        if (f->kind[i] == K_OUTOBJ || f->kind[i] == K_OUTVAL) {
            memset(&outs[i], 0, sizeof outs[i]);
            args[i].p = &outs[i];
            continue;
        }
        arg_value(L, f, base + j, i, j + 1, &args[i]);
        j++;
    }
}

void
capffi_lua__fn_result_begin(lua_State *L, const struct capffi_lua__fn *f,
                            int fn_idx, capffi_value *r, luaL_Buffer *b)
{
    if (f->ret != K_STRUCT)
        return;
    if (f->smode == CAPFFI_LUA__SMODE_VALUE) {
        capffi_lua__struct_push(L, f->st, f->fn, fn_idx, &r->agg.ptr,
                                &r->agg.len);
    } else if (f->smode == CAPFFI_LUA__SMODE_BUFFER) {
        struct capffi_lua__buffer *rb =
            capffi_lua__buffer_push(L, f->st, f->ret_size);
        int rc = capffi_buf_data(&r->agg.ptr, &r->agg.len, rb->buf);
        if (rc)
            capffi_lua__fail(L, f->st, rc, f->name);
    } else {
        r->agg.ptr = luaL_buffinitsize(L, b, f->ret_size);
        r->agg.len = f->ret_size;
    }
}

int
capffi_lua__fn_result_end(lua_State *L, const struct capffi_lua__fn *f,
                          const capffi_value *r, luaL_Buffer *b)
{
    switch (f->ret) {
    case K_VOID:
        return 0;
    case K_OBJECT: /* instances come back from synchronous calls only
                      (capffi refuses a nonblocking one) */
        lua_pushnil(L);
        break;
    case K_STRUCT:
        /* a struct value or buffer is on the top already */
        if (f->smode == CAPFFI_LUA__SMODE_STRING)
            luaL_pushresultsize(b, f->ret_size);
        break;
    default:
        capffi_lua__value_push(L, f->ret, r);
        break;
    }
    return 1;
}

/* The closure every bound function is: upvalue 1 is its fn userdata. */
static int
fn_call(lua_State *L)
{
    const struct capffi_lua__fn *f = lua_touserdata(L, lua_upvalueindex(1));
    if (f->async) { /* job.c's submission, found in the registry */
        lua_getfield(L, LUA_REGISTRYINDEX, CAPFFI_LUA__ASYNC_CALL);
        lua_insert(L, 1);
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_insert(L, 2);
        lua_call(L, lua_gettop(L) - 1, 1);
        return 1;
    }
    capffi_value args[CAPFFI_MAX_ARGS], outs[CAPFFI_MAX_ARGS];
    capffi_lua__fn_args(L, f, 1, args, outs);
    capffi_value r;
    luaL_Buffer b;
    capffi_lua__fn_result_begin(L, f, lua_upvalueindex(1), &r, &b);
    /* Callback handlers run on this Lua thread while native code runs;
     * their failures are raised once it has returned. */
    struct capffi_lua__native call;
    capffi_lua__native_enter(L, f->st, &call);
    int rc = capffi_fn_call(f->fn, args, &r);
    if (!rc && (f->ret == K_OBJECT || f->nouts) &&
        f->st->cb_failures != call.failures) {
        /* The call raises: the instances it made are released now (an
         * owned one's destructor runs), not left to the context's end. */
        if (f->ret == K_OBJECT)
            capffi_obj_free(r.obj);
        for (int i = 0; i < f->nparams; i++)
            if (f->kind[i] == K_OUTOBJ)
                capffi_obj_free(outs[i].obj);
    }
    capffi_lua__native_leave(L, f->st, &call, f->name);
    if (rc)
        return capffi_lua__fail(L, f->st, rc, f->name);
    const capffi_token *tok = f->has_tok ? &f->tok : NULL;
    int nres;
    if (f->ret == K_OBJECT) {
        /* An instance keeps its function, and so its library, alive. */
        if (r.obj)
            capffi_lua__obj_push(L, f->st, r.obj, lua_upvalueindex(1), tok);
        else
            lua_pushnil(L);
        nres = 1;
    } else {
        nres = capffi_lua__fn_result_end(L, f, &r, &b);
    }
    if (!f->nouts)
        return nres;
    luaL_checkstack(L, f->nouts, "out-parameters");
    for (int i = 0; i < f->nparams; i++) {
        if (f->kind[i] == K_OUTVAL) {
            capffi_lua__scalar_push(L, f->kind[f->nparams + i], &outs[i]);
        } else if (f->kind[i] == K_OUTOBJ) {
            if (outs[i].obj)
                capffi_lua__obj_push(L, f->st, outs[i].obj, lua_upvalueindex(1),
                                     tok);
            else
                lua_pushnil(L);
        }
    }
    return nres + f->nouts;
}

/* ---- the direct path -------------------------------------------------- */

/* Most parameters a function called by the direct path has: its frame
 * stays small. */
#define DIRECT_MAX 16

#if defined(__GNUC__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#endif

/*
 * Whether a bound function is called by fn_call_direct: chosen once, when
 * it is bound. Its parameters are scalars or cstrings, its result void, a
 * scalar or a cstring; it has no out-parameter and is not async. Every
 * other function takes fn_call.
 */
static bool
direct_fits(const struct capffi_lua__fn *f)
{
    if (f->async || f->nouts || f->nparams > DIRECT_MAX)
        return false;
    for (int i = 0; i < f->nparams; i++)
        if (!capffi_lua__is_scalar(f->kind[i]) && f->kind[i] != K_CSTRING)
            return false;
    return f->ret == K_VOID || f->ret == K_CSTRING ||
           capffi_lua__is_scalar(f->ret);
}

/*
 * The argument at idx for parameter i, by the kind fixed at bind time, in
 * the fewest Lua API calls; false when the value is not the plain case
 * (a float for an integer, a negative for u8..u32, a string with a NUL,
 * a wrong type), which arg_value then converts or refuses with the
 * message it always gave.
 */
static inline bool
direct_arg(lua_State *L, int kind, bool wrap, int idx, capffi_value *v)
{
    switch (kind) {
    case CAPFFI_LUA__INT:
    case CAPFFI_LUA__I64:
    case CAPFFI_LUA__U64:
        if (!lua_isinteger(L, idx))
            return false;
        v->i64 = lua_tointegerx(L, idx, NULL);
        return true;
    case CAPFFI_LUA__UINT:
        if (!lua_isinteger(L, idx))
            return false;
        v->i64 = lua_tointegerx(L, idx, NULL);
        return v->i64 >= 0 || wrap;
    case CAPFFI_LUA__F64:
        if (lua_type(L, idx) != LUA_TNUMBER)
            return false;
        v->f64 = (double)lua_tonumberx(L, idx, NULL);
        return true;
    case CAPFFI_LUA__F32: {
        if (lua_type(L, idx) != LUA_TNUMBER)
            return false;
        double d = (double)lua_tonumberx(L, idx, NULL);
        if (d > FLT_MAX || d < -FLT_MAX)
            return false; /* beyond FLT_MAX, or infinite: arg_value says */
        v->u64 = 0;
        v->f32 = (float)d;
        return true;
    }
    case CAPFFI_LUA__BOOL:
        if (lua_type(L, idx) != LUA_TBOOLEAN)
            return false;
        v->b = lua_toboolean(L, idx);
        return true;
    case CAPFFI_LUA__POINTER:
        switch (lua_type(L, idx)) {
        case LUA_TLIGHTUSERDATA:
            v->p = lua_touserdata(L, idx);
            return true;
        case LUA_TNIL:
            v->p = NULL;
            return true;
        default:
            return false;
        }
    case CAPFFI_LUA__CSTRING: {
        if (lua_type(L, idx) != LUA_TSTRING)
            return false;
        size_t len;
        v->str = lua_tolstring(L, idx, &len);
        return strlen(v->str) == len;
    }
    default:
        return false;
    }
}

/*
 * The closure of a function direct_fits: upvalue 1 its fn userdata (what
 * keeps it, and what capffi_lua__fn_of finds), upvalue 2 the same record
 * as a light userdata, reached without the userdata's header. What it
 * checks, and in which order, is fn_call's: the argument count and a
 * closed context go to fn_call, which raises as it always did; a value
 * that is not the plain case goes to arg_value. The call itself is
 * capffi_fn_call, which checks the library and the token on every call.
 */
static int
fn_call_direct(lua_State *L)
{
    const struct capffi_lua__fn *f = lua_touserdata(L, lua_upvalueindex(2));
    int n = f->nparams;
    if (UNLIKELY(lua_gettop(L) != n || !f->st->ctx))
        return fn_call(L);
    capffi_value args[DIRECT_MAX];
    for (int i = 0; i < n; i++)
        if (UNLIKELY(!direct_arg(L, f->kind[i], f->wrap, i + 1, &args[i])))
            arg_value(L, f, i + 1, i, i + 1, &args[i]);
    capffi_value r;
    struct capffi_lua__native call;
    capffi_lua__native_enter(L, f->st, &call);
    int rc = capffi_fn_call(f->fn, args, &r);
    capffi_lua__native_leave(L, f->st, &call, f->name);
    if (UNLIKELY(rc))
        return capffi_lua__fail(L, f->st, rc, f->name);
    switch (f->ret) {
    case K_VOID:
        return 0;
    case CAPFFI_LUA__INT:
    case CAPFFI_LUA__I64:
        lua_pushinteger(L, r.i64);
        return 1;
    case CAPFFI_LUA__UINT:
    case CAPFFI_LUA__U64:
        lua_pushinteger(L, (lua_Integer)r.u64);
        return 1;
    case CAPFFI_LUA__F64:
        lua_pushnumber(L, r.f64);
        return 1;
    default:
        capffi_lua__value_push(L, f->ret, &r);
        return 1;
    }
}

const struct capffi_lua__fn *
capffi_lua__fn_of(lua_State *L, int idx)
{
    lua_CFunction cf = lua_tocfunction(L, idx);
    if (cf != fn_call && cf != fn_call_direct)
        return NULL;
    lua_getupvalue(L, idx, 1);
    const struct capffi_lua__fn *f = luaL_testudata(L, -1, CAPFFI_LUA_FN);
    if (!f)
        lua_pop(L, 1);
    return f;
}

/* The capffi_fn of a bound function (a Lua function made by dlopen or
 * tok:fnptr) at idx, or NULL for any other value. */
static const capffi_fn *
fn_handle(lua_State *L, int idx)
{
    const struct capffi_lua__fn *f = capffi_lua__fn_of(L, idx);
    if (!f)
        return NULL;
    lua_pop(L, 1);
    return f->fn;
}

bool
capffi_lua__handle_in(lua_State *L, int idx, capffi_value *v)
{
    if (lua_isnil(L, idx)) {
        v->cb = NULL;
        return true;
    }
    const struct capffi_lua__cbhead *c =
        luaL_testudata(L, idx, CAPFFI_LUA_CALLBACK);
    if (c) {
        /* A closed callback is capffi's to refuse (CAPFFI_ECLOSED), as a
         * revoked one is; only its memory must still exist. */
        capffi_lua__ctx(L, c->st);
        v->cb = c->cb;
        return c->cb != NULL;
    }
    const capffi_fn *fn = fn_handle(L, idx);
    if (fn) {
        v->fn = fn;
        return true;
    }
    return false;
}

static int
fn_gc(lua_State *L)
{
    struct capffi_lua__fn *f = lua_touserdata(L, 1);
    if (f->fn && f->st->ctx)
        capffi_fn_free(f->fn);
    f->fn = NULL;
    return 0;
}

/* Whether capffi's word for a parameter or result can stand for the
 * typed pointer or out-parameter its text declares. */
static bool
typed_word(const char *word)
{
    return strcmp(word, "pointer") == 0 || strcmp(word, "object") == 0 ||
           strcmp(word, "out") == 0;
}

/* The kind of parameter i whose capffi word is word and whose text reads
 * as part (NULL: unread); *sub the scalar an `out T` returns. -1 when
 * Lua cannot pass it. */
static int
param_kind(const char *word, const struct capffi_lua__sigpart *part,
           uint8_t *sub)
{
    *sub = 0;
    if (part && part->what != CAPFFI_LUA__SIG_PLAIN) {
        if (!typed_word(word))
            return -1;
        switch (part->what) {
        case CAPFFI_LUA__SIG_OBJECT:
            return K_OBJECT;
        case CAPFFI_LUA__SIG_OUTOBJ:
            return K_OUTOBJ;
        default:
            if (part->kind < 0 || !capffi_lua__is_scalar(part->kind))
                return -1;
            *sub = (uint8_t)part->kind;
            return K_OUTVAL;
        }
    }
    if (strcmp(word, "function") == 0)
        return K_FUNCTION;
    if (strcmp(word, "out") == 0)
        return -1; /* an out-parameter whose text was not read */
    return capffi_lua__kind_of(word);
}

void
capffi_lua__fn_push(lua_State *L, struct capffi_lua__state *st, int keep_idx,
                    capffi_fn *cfn, const char *name, const char *sig,
                    const capffi_token *tok, uint32_t flags,
                    enum capffi_lua__smode smode)
{
    size_t n = capffi_fn_arity(cfn), nlen = strlen(name);
    struct capffi_lua__fn *f =
        lua_newuserdatauv(L, sizeof *f + 2 * n + nlen + 1, 1);
    memset(f, 0, sizeof *f);
    f->fn = cfn;
    f->st = st;
    luaL_setmetatable(L, CAPFFI_LUA_FN);
    if (keep_idx) {
        lua_pushvalue(L, keep_idx);
        lua_setiuservalue(L, -2, 1);
    }
    if (tok) {
        f->has_tok = true;
        f->tok = *tok;
    }
    f->nparams = (uint8_t)n;
    f->wrap = (flags & CAPFFI_FN_WRAP) != 0;
    f->async = (flags & CAPFFI_LUA__FN_ASYNC) != 0;
    f->name = (const char *)f->kind + 2 * n;
    memcpy(f->kind + 2 * n, name, nlen + 1);
    struct capffi_lua__sigpart parts[CAPFFI_MAX_ARGS], rpart;
    bool read = sig && capffi_lua__sig_read(sig, parts, CAPFFI_MAX_ARGS,
                                            &rpart) == (int)n;
    for (size_t i = 0; i < n; i++) {
        const char *word = capffi_fn_param_type(cfn, i, NULL);
        int k = param_kind(word, read ? &parts[i] : NULL, &f->kind[n + i]);
        if (k < 0)
            capffi_lua__error(L, CAPFFI_ETYPE,
                              "%s: parameter %zu has an unknown type", name,
                              i + 1);
        f->kind[i] = (uint8_t)k;
        if (k == K_OUTOBJ || k == K_OUTVAL)
            f->nouts++;
    }
    const char *rword = capffi_fn_result_type(cfn, &f->ret_size);
    int k = read && rpart.what == CAPFFI_LUA__SIG_OBJECT && typed_word(rword)
                ? K_OBJECT
                : capffi_lua__kind_of(rword);
    if (k < 0)
        capffi_lua__error(L, CAPFFI_ETYPE, "%s: the result has an unknown type",
                          name);
    f->ret = (uint8_t)k;
    if (smode != CAPFFI_LUA__SMODE_STRING && k != K_STRUCT)
        capffi_lua__error(L, CAPFFI_EINVAL,
                          "%s: the 'struct' option applies to a struct result, "
                          "and the result is %s",
                          name, capffi_fn_result_type(cfn, NULL));
    f->smode = (uint8_t)smode;
    if (direct_fits(f)) {
        lua_pushlightuserdata(L, f);
        lua_pushcclosure(L, fn_call_direct, 2);
    } else {
        lua_pushcclosure(L, fn_call, 1);
    }
}

enum capffi_lua__smode
capffi_lua__opt_smode(lua_State *L, int idx, const char *what)
{
    static const char *const names[] = { "string", "value", "buffer" };
    enum capffi_lua__smode m = CAPFFI_LUA__SMODE_STRING;
    if (lua_getfield(L, idx, "struct") != LUA_TNIL) {
        const char *s = capffi_lua__check_string(L, -1, what);
        size_t i = 0;
        while (i < 3 && strcmp(s, names[i]) != 0)
            i++;
        if (i == 3)
            capffi_lua__error(L, CAPFFI_EINVAL,
                              "%s: 'struct' is \"string\", \"value\" or "
                              "\"buffer\", not \"%s\"",
                              what, s);
        m = (enum capffi_lua__smode)i;
    }
    lua_pop(L, 1);
    return m;
}

/* Build "(p1, p2) -> r" from a Deno-style description at idx; pushes it. */

/*
 * tok:fnptr(pointer, signature [, options]): a function pointer made
 * callable (CAPFFI_RIGHT_FNPTR); revoked with the token. The arguments
 * are at ptr_idx, sig_idx and opts_idx.
 */
static int
fn_from_ptr(lua_State *L, struct capffi_lua__state *st, const capffi_token *tok,
            int ptr_idx, int sig_idx, int opts_idx)
{
    static const char *const keys[] = { "errno", "wrap", "struct", "async",
                                        NULL };
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    if (!lua_islightuserdata(L, ptr_idx))
        return capffi_lua__error(L, CAPFFI_ETYPE,
                                 "fnptr: expected a pointer, got %s",
                                 capffi_lua__typename(L, ptr_idx));
    void *code = lua_touserdata(L, ptr_idx);
    const char *sig = capffi_lua__check_string(L, sig_idx, "fnptr: signature");
    uint32_t flags = 0;
    enum capffi_lua__smode smode = CAPFFI_LUA__SMODE_STRING;
    bool async = false;
    if (capffi_lua__opt_table(L, opts_idx, "fnptr: options")) {
        capffi_lua__check_keys(L, opts_idx, "fnptr: options", keys);
        smode = capffi_lua__opt_smode(L, opts_idx, "fnptr: options");
        if (capffi_lua__opt_flag(L, opts_idx, "errno", "fnptr: options"))
            flags |= CAPFFI_FN_ERRNO;
        if (capffi_lua__opt_flag(L, opts_idx, "wrap", "fnptr: options"))
            flags |= CAPFFI_FN_WRAP;
        async = capffi_lua__opt_flag(L, opts_idx, "async", "fnptr: options");
    }
    capffi_fn *cfn;
    int rc = capffi_fn_from_ptr(&cfn, ctx, tok, code, sig, flags);
    if (rc)
        return capffi_lua__fail(L, st, rc, "fnptr");
    capffi_lua__fn_push(L, st, 0, cfn, "fnptr", sig, tok,
                        flags | (async ? CAPFFI_LUA__FN_ASYNC : 0), smode);
    return 1;
}

/* tok:fnptr(pointer, signature [, options]) */
static int
token_fnptr(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_token tok = t->tok;
    return fn_from_ptr(L, t->st, &tok, 2, 3, 4);
}

/* The `on` argument of an audit switch at idx: absent or nil is true. */
bool
capffi_lua__audit_on(lua_State *L, int idx, const char *what)
{
    if (lua_isnoneornil(L, idx))
        return true;
    if (!lua_isboolean(L, idx))
        capffi_lua__error(L, CAPFFI_ETYPE, "%s: expected a boolean, got %s",
                          what, capffi_lua__typename(L, idx));
    return lua_toboolean(L, idx);
}

/* capffi.audit.fn(f [, on]): a fn.call event for every call of the bound
 * function f (capffi_fn_audit). */
int
capffi_lua__fn_audit(lua_State *L)
{
    bool on = capffi_lua__audit_on(L, 2, "audit.fn: on");
    const struct capffi_lua__fn *f = capffi_lua__fn_of(L, 1);
    if (!f)
        return capffi_lua__error(L, CAPFFI_ETYPE,
                                 "audit.fn: expected a bound function, got %s",
                                 capffi_lua__typename(L, 1));
    capffi_lua__ctx(L, f->st);
    int rc = capffi_fn_audit(f->fn, on);
    if (rc)
        return capffi_lua__fail(L, f->st, rc, "audit.fn");
    return 0;
}

int
capffi_lua__errno(lua_State *L)
{
    lua_pushinteger(L, capffi_last_errno());
    return 1;
}

void
capffi_lua__fn_init(lua_State *L)
{
    static const luaL_Reg token_methods[] = {
        { "fnptr", token_fnptr },
        { NULL, NULL },
    };
    capffi_lua__new_class(L, CAPFFI_LUA_FN, NULL,
                          (const luaL_Reg[]){
                              { "__gc", fn_gc },
                              { NULL, NULL },
                          });
    lua_pop(L, 1);
    capffi_lua__add_methods(L, CAPFFI_LUA_TOKEN, token_methods);
}
