/*
 * cb.c - callbacks: libffi closures that run host handlers.
 *
 * Threats answered here (THREATS.md):
 * - C2: a callback is never freed before its context. Closing it, or
 *   revoking its token, only flips its state word; the trampoline checks
 *   that word first and fails closed (the default result, a recorded
 *   status, an audit event). Native code may keep the code pointer
 *   forever: it stays mapped and harmless until capffi_ctx_free.
 * - C3: an invocation on a thread other than the owner runs the handler
 *   only through the loop (loop.c), which never lets two threads use the
 *   host at once; without CAPFFI_CB_THREADSAFE it is refused.
 * - T7: the state word is read once per invocation, so an invocation
 *   either started before a revocation returned or fails closed.
 *
 * The invocation on the owner thread is the data plane: no lock, no
 * allocation, no audit; one atomic load, the arguments converted on the
 * stack, the handler, the result stored. Everything else (refusals,
 * failures, other threads) is out of line.
 */
#include "callback/cb.h"

#include <stdio.h>
#include <string.h>

#include "call/fn.h"

#define CB_OP_FLAGS (CAPFFI_CB_THREADSAFE | CAPFFI_CB_WRAP)
_Static_assert(CB_OP_FLAGS == CAPFFI_CB__ALL, "every flag is handled");

/* How one argument reaches the handler, chosen at creation. */
enum {
    A_W64, /* 8 bytes as they are: 64-bit integers, f64, pointers */
    A_BOOL,
    A_I8,
    A_U8,
    A_I16,
    A_U16,
    A_I32,
    A_U32,
    A_F32,
    A_STRUCT
};

/* How the handler's result is stored for native code. */
enum {
    R_VOID,
    R_W64,
    R_BOOL,
    R_I8,
    R_U8,
    R_I16,
    R_U16,
    R_I32,
    R_U32,
    R_F32,
    R_FUNCTION,
    R_STRUCT
};

/*
 * The handler running on this thread, innermost first: capffi_cb_fail
 * marks it. Handlers nest (native -> callback -> native -> callback), so
 * each invocation saves and restores the pointer.
 */
struct inv {
    bool failed;
    struct inv *up;
    char msg[CAPFFI_CB_DETAIL_MAX];
};

static _Thread_local struct inv *cur_inv CAPFFI__TLS_FAST;

static uint8_t
arg_op(enum capffi__kind k)
{
    switch (k) {
    case CAPFFI__BOOL:
        return A_BOOL;
    case CAPFFI__I8:
        return A_I8;
    case CAPFFI__U8:
        return A_U8;
    case CAPFFI__I16:
        return A_I16;
    case CAPFFI__U16:
        return A_U16;
    case CAPFFI__I32:
        return A_I32;
    case CAPFFI__U32:
        return A_U32;
    case CAPFFI__F32:
        return A_F32;
    case CAPFFI__STRUCT:
        return A_STRUCT;
    default:
        return A_W64;
    }
}

static uint8_t
ret_op(enum capffi__kind k)
{
    switch (k) {
    case CAPFFI__VOID:
        return R_VOID;
    case CAPFFI__BOOL:
        return R_BOOL;
    case CAPFFI__I8:
        return R_I8;
    case CAPFFI__U8:
        return R_U8;
    case CAPFFI__I16:
        return R_I16;
    case CAPFFI__U16:
        return R_U16;
    case CAPFFI__I32:
        return R_I32;
    case CAPFFI__U32:
        return R_U32;
    case CAPFFI__F32:
        return R_F32;
    case CAPFFI__FUNCTION:
        return R_FUNCTION;
    case CAPFFI__STRUCT:
        return R_STRUCT;
    default:
        return R_W64;
    }
}

/* ---- failing closed ----------------------------------------------------- */

/* The default result, where native code reads the result. */
static void
write_default(const capffi_cb *cb, void *ret)
{
    switch (cb->ret_op) {
    case R_VOID:
        break;
    case R_STRUCT:
        memcpy(ret, cb->dflt_bytes, cb->sig.ret->size);
        break;
    case R_F32:
        memcpy(ret, &cb->dflt_word, sizeof(float));
        break;
    default:
        memcpy(ret, &cb->dflt_word, sizeof(ffi_arg));
        break;
    }
}

/* Record a failure in the status. Any thread. */
static void
record(capffi_cb *cb, int code, const char *detail)
{
    pthread_mutex_t *lock = &capffi__base(cb->call.ctx)->owner.lock;
    pthread_mutex_lock(lock);
    if (cb->st_failures++ == 0) {
        cb->st_first = code;
        snprintf(cb->st_detail, sizeof cb->st_detail, "%s", detail);
    }
    pthread_mutex_unlock(lock);
}

/*
 * The native caller gets the default result; the failure goes to the
 * status and the audit trail. Any thread.
 */
static __attribute__((noinline, cold)) void
refuse(capffi_cb *cb, void *ret, int code, capffi_reason reason,
       const char *detail)
{
    write_default(cb, ret);
    record(cb, code, detail);
    /* A2: native code may call a closed callback in a loop (qsort's
     * comparator): coalesced per callback, so the trail keeps one event a
     * second with the count. */
    struct capffi__who who = capffi__token_who(cb->tok);
    capffi__audit_refuse(cb->call.ctx, cb, CAPFFI_OP_CB_INVOKE, code, reason,
                         &who, CAPFFI_RIGHT_CALLBACK, cb->target, "%s", detail);
}

static __attribute__((noinline, cold)) void
refuse_state(capffi_cb *cb, void *ret, int state)
{
    if (state == CAPFFI__CLOSED)
        refuse(cb, ret, CAPFFI_ECLOSED, CAPFFI_REASON_CLOSED,
               "the callback is closed");
    else
        refuse(cb, ret, CAPFFI_EREVOKED, CAPFFI_REASON_REVOKED,
               "the callback's token was revoked");
}

/* ---- running the handler ------------------------------------------------ */

static inline void
convert_arg(const capffi_cb *cb, size_t i, const void *a, capffi_value *v)
{
    switch (cb->arg_op[i]) {
    case A_W64:
        memcpy(&v->u64, a, sizeof v->u64);
        break;
    case A_BOOL:
        v->u64 = *(const uint8_t *)a != 0;
        break;
    case A_I8:
        v->i64 = *(const int8_t *)a;
        break;
    case A_U8:
        v->u64 = *(const uint8_t *)a;
        break;
    case A_I16:
        v->i64 = *(const int16_t *)a;
        break;
    case A_U16:
        v->u64 = *(const uint16_t *)a;
        break;
    case A_I32:
        v->i64 = *(const int32_t *)a;
        break;
    case A_U32:
        v->u64 = *(const uint32_t *)a;
        break;
    case A_F32:
        v->u64 = 0;
        memcpy(&v->f32, a, sizeof v->f32);
        break;
    default: /* A_STRUCT: the handler reads libffi's copy */
        v->agg.ptr = (void *)(uintptr_t)a;
        v->agg.len = cb->sig.args[i]->size;
        break;
    }
}

/*
 * Store the common results (void, scalars, small integers in range) where
 * native code reads them, inline in the invocation: false for a handle, a
 * struct or a small integer out of range, which store then deals with.
 * Small integers are checked with one compare (CAPFFI_CB_WRAP makes the
 * span all of 64 bits).
 */
static inline bool
store_fast(const capffi_cb *cb, const capffi_value *v, void *ret)
{
    uint8_t op = cb->ret_op;
    if (op >= R_I8 && op <= R_U32 && v->u64 + cb->ret_off > cb->ret_span)
        return false;
    switch (op) {
    case R_VOID:
        return true;
    case R_W64:
        memcpy(ret, &v->u64, sizeof v->u64);
        return true;
    case R_BOOL: {
        /* The byte, not the bool: a handler may have stored 2 there. */
        unsigned char byte;
        memcpy(&byte, &v->b, 1);
        *(ffi_arg *)ret = byte != 0;
        return true;
    }
    case R_I8:
        *(ffi_sarg *)ret = (int8_t)v->i64;
        return true;
    case R_U8:
        *(ffi_arg *)ret = (uint8_t)v->u64;
        return true;
    case R_I16:
        *(ffi_sarg *)ret = (int16_t)v->i64;
        return true;
    case R_U16:
        *(ffi_arg *)ret = (uint16_t)v->u64;
        return true;
    case R_I32:
        *(ffi_sarg *)ret = (int32_t)v->i64;
        return true;
    case R_U32:
        *(ffi_arg *)ret = (uint32_t)v->u64;
        return true;
    case R_F32:
        memcpy(ret, &v->f32, sizeof v->f32);
        return true;
    default:
        return false;
    }
}

/*
 * Store the value v of the declared result type where native code reads
 * it: the common results through store_fast, then handles and structs.
 * Fails, writing nothing, with CAPFFI_ERANGE (a small integer out of
 * range), CAPFFI_ETYPE (a struct of the wrong size) or a handle's error;
 * *why gets the detail.
 */
static int
store(const capffi_cb *cb, const capffi_value *v, void *ret, char *why,
      size_t cap)
{
    if (store_fast(cb, v, ret))
        return CAPFFI_OK;
    uint8_t op = cb->ret_op;
    if (op >= R_I8 && op <= R_U32) {
        if (op == R_I8 || op == R_I16 || op == R_I32)
            snprintf(why, cap, "result (%s): %lld does not fit",
                     cb->sig.ret->name, (long long)v->i64);
        else
            snprintf(why, cap, "result (%s): %llu does not fit",
                     cb->sig.ret->name, (unsigned long long)v->u64);
        return CAPFFI_ERANGE;
    }
    if (op == R_FUNCTION) {
        void *code;
        int rc = capffi__callable_code(cb->call.ctx, v->p, 0, &code);
        if (rc) {
            snprintf(why, cap, "%s", capffi_ctx_errmsg(cb->call.ctx));
            return rc;
        }
        memcpy(ret, &code, sizeof code);
        return CAPFFI_OK;
    }
    /* R_STRUCT */
    size_t size = cb->sig.ret->size;
    if (v->agg.ptr == ret)
        return CAPFFI_OK;
    if (!v->agg.ptr || v->agg.len != size) {
        snprintf(why, cap,
                 "result: struct of %zu bytes at %p given, %zu declared",
                 v->agg.len, v->agg.ptr, size);
        return CAPFFI_ETYPE;
    }
    memmove(ret, v->agg.ptr, size);
    return CAPFFI_OK;
}

/* The results store_fast leaves: handles, structs, out of range. */
static __attribute__((noinline)) void
store_slow(capffi_cb *cb, const capffi_value *v, void *ret)
{
    char why[CAPFFI_CB_DETAIL_MAX];
    int rc = store(cb, v, ret, why, sizeof why);
    if (rc)
        refuse(cb, ret, rc, CAPFFI_REASON_INVALID, why);
}

static __attribute__((noinline, cold)) void
handler_failed(capffi_cb *cb, void *ret, const struct inv *inv)
{
    refuse(cb, ret, CAPFFI_ECALLBACK, CAPFFI_REASON_FAILED, inv->msg);
}

/* Run the handler of a live callback on a thread that holds the host. */
static void
run(capffi_cb *cb, void *ret, void **args)
{
    capffi_value vals[CAPFFI_MAX_ARGS];
    size_t n = cb->sig.nargs;
    for (size_t i = 0; i < n; i++) {
        /* The two commonest kinds without the jump table. */
        uint8_t op = cb->arg_op[i];
        if (op == A_W64)
            memcpy(&vals[i].u64, args[i], sizeof vals[i].u64);
        else if (op == A_I32)
            vals[i].i64 = *(const int32_t *)args[i];
        else
            convert_arg(cb, i, args[i], &vals[i]);
    }
    capffi_value r = cb->dflt;
    if (cb->ret_struct) {
        memcpy(ret, cb->dflt_bytes, cb->sig.ret->size);
        r.agg.ptr = ret;
        r.agg.len = cb->sig.ret->size;
    }
    struct inv inv;
    inv.failed = false;
    inv.up = cur_inv;
    cur_inv = &inv;
    cb->fn(cb->payload, vals, &r);
    cur_inv = inv.up;
    if (CAPFFI__UNLIKELY(inv.failed))
        handler_failed(cb, ret, &inv);
    else if (CAPFFI__UNLIKELY(!store_fast(cb, &r, ret)))
        store_slow(cb, &r, ret);
}

/* run, after a wait during which the callback may have been closed. */
static void
run_checked(capffi_cb *cb, void *ret, void **args)
{
    int state = atomic_load_explicit(&cb->state, memory_order_acquire);
    if (state != CAPFFI__LIVE)
        refuse_state(cb, ret, state);
    else
        run(cb, ret, args);
}

/* An invocation handed to the loop by a thread other than the owner. */
struct call {
    struct capffi__req req; /* first: the loop hands it back */
    capffi_cb *cb;
    void *ret;
    void **args;
};

static void
run_call(struct capffi__req *r)
{
    struct call *c = (struct call *)r;
    run_checked(c->cb, c->ret, c->args);
}

/*
 * Every invocation that is not the owner thread's with the host in hand:
 * the owner thread of a context that lends the host, a thread acting for
 * the owner, and other threads.
 */
static __attribute__((noinline)) void
elsewhere(capffi_cb *cb, void *ret, void **args)
{
    capffi_ctx *ctx = cb->call.ctx;
    if (capffi__ctx_on_owner(ctx)) {
        int state = atomic_load_explicit(&cb->state, memory_order_acquire);
        if (state != CAPFFI__LIVE) {
            refuse_state(cb, ret, state);
        } else if (capffi__owner_released(ctx)) {
            /* Called back from inside a native call that lent the host:
             * take it back (waiting for a lent handler to finish). */
            struct capffi__hold h;
            capffi__owner_enter(ctx, &h);
            run_checked(cb, ret, args);
            capffi__owner_exit(ctx, &h);
        } else {
            run(cb, ret, args);
        }
        return;
    }
    if (capffi__loop_join(ctx)) {
        refuse(cb, ret, CAPFFI_ECANCELED, CAPFFI_REASON_CLOSED,
               "the context is being freed");
    } else if (!(cb->flags & CAPFFI_CB_THREADSAFE)) {
        refuse(cb, ret, CAPFFI_ETHREAD, CAPFFI_REASON_THREAD,
               "invoked on a thread other than the owner, without "
               "CAPFFI_CB_THREADSAFE");
    } else {
        int state = atomic_load_explicit(&cb->state, memory_order_acquire);
        if (state != CAPFFI__LIVE) {
            refuse_state(cb, ret, state);
        } else {
            struct call c;
            c.req.run = run_call;
            c.cb = cb;
            c.ret = ret;
            c.args = args;
            int rc = capffi__loop_submit(ctx, &c.req, cb->timeout_ms);
            char why[96];
            if (rc == CAPFFI_ETIMEDOUT) {
                snprintf(why, sizeof why,
                         "the owner thread did not start it within %d ms",
                         cb->timeout_ms);
                refuse(cb, ret, rc, CAPFFI_REASON_FAILED, why);
            } else if (rc) {
                refuse(cb, ret, rc, CAPFFI_REASON_CLOSED,
                       "the context was freed while it waited");
            }
        }
    }
    capffi__loop_leave(ctx);
}

/* What libffi calls: the callback's code lands here. */
static void
trampoline(ffi_cif *cif, void *ret, void **args, void *user)
{
    (void)cif;
    capffi_cb *cb = user;
    if (CAPFFI__LIKELY(cb->owner_key == capffi__thread_key())) {
        int state = atomic_load_explicit(&cb->state, memory_order_acquire);
        if (CAPFFI__LIKELY(state == CAPFFI__LIVE))
            run(cb, ret, args);
        else
            refuse_state(cb, ret, state);
        return;
    }
    elsewhere(cb, ret, args);
}

int
capffi_cb_fail(const char *message)
{
    struct inv *inv = cur_inv;
    if (!inv)
        return capffi__fail(NULL, CAPFFI_EINVAL,
                            "capffi_cb_fail called outside a handler");
    if (!inv->failed) {
        inv->failed = true;
        snprintf(inv->msg, sizeof inv->msg, "%s",
                 message ? message : "the handler failed");
    }
    return CAPFFI_OK;
}

/* ---- making and closing ------------------------------------------------- */

static void
cb_on_revoke(struct capffi__res *r)
{
    capffi_cb *cb = (capffi_cb *)((char *)r - offsetof(capffi_cb, res));
    int live = CAPFFI__LIVE;
    atomic_compare_exchange_strong(&cb->state, &live, CAPFFI__REVOKED);
    /* A host waiting in capffi_ctx_poll re-checks capffi_ctx_keepalive. */
    capffi__loop_wake(cb->call.ctx);
}

static void
cb_release(capffi_cb *cb)
{
    capffi__closure_free(cb->closure);
    capffi__sig_free(&cb->sig);
    capffi__free(cb->dflt_bytes);
    capffi__free(cb->dflt_str);
    capffi__free(cb);
}

/*
 * Set the default result from opts->result (NULL: zero): cb->dflt is what
 * the handler's ret starts as, dflt_word or dflt_bytes what native code
 * receives when the handler does not produce a result.
 */
static int
set_default(capffi_cb *cb, const capffi_value *v)
{
    capffi_ctx *ctx = cb->call.ctx;
    size_t size = cb->sig.ret->size;
    capffi_value zero;
    memset(&zero, 0, sizeof zero);
    if (!v)
        v = &zero;
    if (cb->ret_struct) {
        cb->dflt_bytes = capffi__calloc(1, size);
        if (!cb->dflt_bytes)
            return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
        if (v != &zero) {
            if (!v->agg.ptr || v->agg.len != size)
                return capffi__fail(ctx, CAPFFI_ETYPE,
                                    "default result: struct of %zu bytes "
                                    "at %p given, %zu declared",
                                    v->agg.len, v->agg.ptr, size);
            memcpy(cb->dflt_bytes, v->agg.ptr, size);
        }
        return CAPFFI_OK;
    }
    cb->dflt = *v;
    if (cb->sig.ret->kind == CAPFFI__CSTRING && v->str) {
        cb->dflt_str = capffi__strdup(v->str);
        if (!cb->dflt_str)
            return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
        cb->dflt.str = cb->dflt_str;
    }
    union {
        ffi_arg a;
        uint64_t u64;
        unsigned char bytes[16];
    } w;
    memset(&w, 0, sizeof w);
    char why[CAPFFI_CB_DETAIL_MAX];
    int rc = store(cb, &cb->dflt, &w, why, sizeof why);
    if (rc)
        return capffi__fail(ctx, rc, "default %s", why);
    cb->dflt_word = w.u64;
    return CAPFFI_OK;
}

/* Everything but the token: parse, prepare, allocate the closure. */
static int
build(capffi_cb *cb, const char *signature, const capffi_cb_options *o)
{
    capffi_ctx *ctx = cb->call.ctx;
    int rc = capffi__sig_parse_in(ctx, cb->tok, &cb->sig, signature);
    if (rc)
        return rc;
    const struct capffi__sig *s = &cb->sig;
    if (s->variadic)
        return capffi__fail(ctx, CAPFFI_ESIG,
                            "a callback cannot be variadic: '%s'", signature);
    ffi_status st = ffi_prep_cif(&cb->cif, FFI_DEFAULT_ABI, (unsigned)s->nargs,
                                 s->ret->ffi, s->atypes);
    if (st != FFI_OK)
        return capffi__fail(ctx, CAPFFI_ESIG,
                            "libffi cannot prepare signature '%s' (status %d)",
                            signature, (int)st);
    /* H3: a pointer parameter hands the handler whatever native code
     * passed, an integer the host chose included. */
    for (size_t i = 0; i < s->nargs; i++)
        if (capffi__type_is_pointer(s->args[i]) &&
            !(cb->tok->rights & CAPFFI_RIGHT_POINTER))
            return capffi__fail(ctx, CAPFFI_EPERM,
                                "parameter %zu (%s) would hand the handler "
                                "a pointer value: the token lacks the "
                                "pointer right",
                                i + 1, capffi__type_word(s->args[i], NULL));
    for (size_t i = 0; i < s->nargs; i++)
        cb->arg_op[i] = arg_op(s->args[i]->kind);
    cb->ret_op = ret_op(s->ret->kind);
    cb->ret_struct = cb->ret_op == R_STRUCT;
    if (cb->ret_op >= R_I8 && cb->ret_op <= R_U32 &&
        !(o->flags & CAPFFI_CB_WRAP)) {
        unsigned bits = (unsigned)s->ret->size * 8;
        bool is_signed =
            cb->ret_op == R_I8 || cb->ret_op == R_I16 || cb->ret_op == R_I32;
        cb->ret_off = is_signed ? UINT64_C(1) << (bits - 1) : 0;
        cb->ret_span = (UINT64_C(1) << bits) - 1;
    } else {
        cb->ret_off = 0;
        cb->ret_span = UINT64_MAX;
    }
    rc = set_default(cb, o->result);
    if (rc)
        return rc;
    cb->closure = capffi__closure_alloc(&cb->call.code);
    if (!cb->closure)
        return capffi__fail(ctx, CAPFFI_ENOMEM,
                            "cannot allocate a closure (out of memory, or "
                            "executable memory is refused)");
    st = ffi_prep_closure_loc(cb->closure, &cb->cif, trampoline, cb,
                              cb->call.code);
    if (st != FFI_OK)
        return capffi__fail(ctx, CAPFFI_ESIG,
                            "libffi cannot prepare a closure for '%s' "
                            "(status %d)",
                            signature, (int)st);
    snprintf(cb->target, sizeof cb->target, "%p", cb->call.code);
    return CAPFFI_OK;
}

int
capffi_cb_new(capffi_cb **out, capffi_ctx *ctx, const capffi_token *tok,
              const char *signature, capffi_cb_fn fn, void *payload,
              uint32_t flags)
{
    capffi_cb_options o;
    memset(&o, 0, sizeof o);
    o.flags = flags;
    return capffi_cb_new_opts(out, ctx, tok, signature, fn, payload, &o);
}

int
capffi_cb_new_opts(capffi_cb **out, capffi_ctx *ctx, const capffi_token *tok,
                   const char *signature, capffi_cb_fn fn, void *payload,
                   const capffi_cb_options *opts)
{
    if (out)
        *out = NULL;
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    if (!capffi__ctx_on_owner(ctx))
        return capffi__wrong_thread(ctx, CAPFFI_OP_CB_NEW, "capffi_cb_new");
    const char *target = signature ? signature : "";
    struct capffi__tok *t = NULL;
    int rc = capffi__token_peek(ctx, tok, CAPFFI_RIGHT_CALLBACK,
                                CAPFFI_OP_CB_NEW, target, &t);
    if (rc)
        return rc;
    capffi_cb_options o;
    memset(&o, 0, sizeof o);
    if (opts)
        o = *opts;
    if (!out || !signature || !fn)
        rc = capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL",
                          !out         ? "out"
                          : !signature ? "signature"
                                       : "the handler");
    else if (o.flags & ~CAPFFI_CB__ALL)
        rc = capffi__fail(ctx, CAPFFI_EINVAL, "unknown flag bits 0x%x",
                          o.flags & ~CAPFFI_CB__ALL);
    else if (o.timeout_ms < 0)
        rc = capffi__fail(ctx, CAPFFI_EINVAL, "timeout_ms %d is negative",
                          o.timeout_ms);
    else if ((rc = capffi__token_use(ctx, tok, CAPFFI_RIGHT_CALLBACK, NULL,
                                     CAPFFI_OP_CB_NEW, target, &t)))
        return rc; /* the denial is audited */
    capffi_cb *cb = NULL;
    if (!rc) {
        cb = capffi__calloc(1, sizeof *cb);
        if (!cb)
            rc = capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    }
    if (cb) {
        cb->call.magic = CAPFFI__CB_MAGIC;
        cb->flags = o.flags;
        cb->call.ctx = ctx;
        cb->fn = fn;
        cb->payload = payload;
        cb->timeout_ms = o.timeout_ms;
        /* With lending, even the owner thread takes the careful path. */
        cb->owner_key =
            capffi__base(ctx)->owner.lend ? NULL : capffi__base(ctx)->owner.key;
        cb->tok = t;
        atomic_init(&cb->state, CAPFFI__LIVE);
        cb->call.state = &cb->state;
        rc = build(cb, signature, &o);
        if (!rc) {
            cb->res.on_revoke = cb_on_revoke;
            rc = capffi__token_attach(ctx, t, &cb->res);
        }
        if (rc) {
            cb_release(cb);
        } else {
            cb->next = capffi__cbs_of(ctx)->cbs;
            capffi__cbs_of(ctx)->cbs = cb;
            *out = cb;
        }
    }
    struct capffi__who who = capffi__token_who(t);
    capffi__audit_emit(ctx, CAPFFI_OP_CB_NEW, rc,
                       rc == CAPFFI_EPERM ? CAPFFI_REASON_RIGHT
                       : rc               ? CAPFFI_REASON_FAILED
                                          : CAPFFI_REASON_NONE,
                       &who, CAPFFI_RIGHT_CALLBACK, rc ? target : cb->target,
                       "%s", rc ? capffi_ctx_errmsg(ctx) : signature);
    return rc;
}

void *
capffi_cb_code(const capffi_cb *cb)
{
    return cb ? cb->call.code : NULL;
}

size_t
capffi_cb_arity(const capffi_cb *cb)
{
    return cb ? cb->sig.nargs : 0;
}

const char *
capffi_cb_param_type(const capffi_cb *cb, size_t i, size_t *size)
{
    return capffi__type_word(cb && i < cb->sig.nargs ? cb->sig.args[i] : NULL,
                             size);
}

const char *
capffi_cb_result_type(const capffi_cb *cb, size_t *size)
{
    return capffi__type_word(cb ? cb->sig.ret : NULL, size);
}

void
capffi_cb_close(capffi_cb *cb)
{
    if (!cb)
        return;
    capffi_ctx *ctx = cb->call.ctx;
    if (!capffi__ctx_on_owner(ctx)) {
        capffi__wrong_thread(ctx, CAPFFI_OP_CB_CLOSE, "capffi_cb_close");
        return;
    }
    if (cb->closed)
        return;
    /* Closed wins over revoked from now on: the state word only says why
     * invocations fail. */
    cb->closed = true;
    cb->refs = 0;
    atomic_store(&cb->state, CAPFFI__CLOSED);
    capffi__token_detach(ctx, &cb->res);
    struct capffi__who who = capffi__token_who(cb->tok);
    capffi__audit_emit(ctx, CAPFFI_OP_CB_CLOSE, 0, CAPFFI_REASON_NONE, &who,
                       CAPFFI_RIGHT_CALLBACK, cb->target, "closed");
}

/* Common prologue of ref, unref and take_status. */
static int
owner_check(const capffi_cb *cb, const char *fn)
{
    if (!cb)
        return capffi__fail(NULL, CAPFFI_EINVAL, "cb is NULL");
    return capffi__ctx_owner_check(cb->call.ctx, fn);
    return CAPFFI_OK;
}

int
capffi_cb_ref(uint32_t *count, capffi_cb *cb)
{
    if (count)
        *count = 0;
    int rc = owner_check(cb, "capffi_cb_ref");
    if (rc)
        return rc;
    int state = atomic_load(&cb->state);
    if (!(cb->flags & CAPFFI_CB_THREADSAFE))
        return capffi__fail(cb->call.ctx, CAPFFI_EINVAL,
                            "only a CAPFFI_CB_THREADSAFE callback can hold "
                            "references");
    if (state == CAPFFI__CLOSED)
        return capffi__fail(cb->call.ctx, CAPFFI_ECLOSED,
                            "the callback is closed");
    if (state != CAPFFI__LIVE)
        return capffi__fail(cb->call.ctx, CAPFFI_EREVOKED,
                            "the callback's token was revoked");
    if (cb->refs == UINT32_MAX)
        return capffi__fail(cb->call.ctx, CAPFFI_EINVAL,
                            "the reference count would overflow");
    cb->refs++;
    if (count)
        *count = cb->refs;
    return CAPFFI_OK;
}

int
capffi_cb_unref(uint32_t *count, capffi_cb *cb)
{
    if (count)
        *count = 0;
    int rc = owner_check(cb, "capffi_cb_unref");
    if (rc)
        return rc;
    if (cb->refs)
        cb->refs--;
    if (count)
        *count = cb->refs;
    return CAPFFI_OK;
}

int
capffi_cb_take_status(capffi_cb_status *out, capffi_cb *cb)
{
    if (out)
        memset(out, 0, sizeof *out);
    int rc = owner_check(cb, "capffi_cb_take_status");
    if (rc)
        return rc;
    if (!out)
        return capffi__fail(cb->call.ctx, CAPFFI_EINVAL, "out is NULL");
    pthread_mutex_t *lock = &capffi__base(cb->call.ctx)->owner.lock;
    pthread_mutex_lock(lock);
    out->first = cb->st_first;
    out->failures = cb->st_failures;
    memcpy(out->detail, cb->st_detail, sizeof out->detail);
    cb->st_first = CAPFFI_OK;
    cb->st_failures = 0;
    cb->st_detail[0] = '\0';
    pthread_mutex_unlock(lock);
    return CAPFFI_OK;
}

size_t
capffi__cb_keepalive(const capffi_ctx *ctx)
{
    size_t n = 0;
    for (const capffi_cb *cb = capffi__cbs_of(ctx)->cbs; cb; cb = cb->next)
        n += (cb->flags & CAPFFI_CB_THREADSAFE) && cb->refs &&
             atomic_load(&cb->state) == CAPFFI__LIVE;
    return n;
}

void
capffi__cb_close_all(capffi_ctx *ctx)
{
    for (capffi_cb *cb = capffi__cbs_of(ctx)->cbs; cb; cb = cb->next)
        atomic_store(&cb->state, CAPFFI__CLOSED);
}

void
capffi__cb_free_all(capffi_ctx *ctx)
{
    capffi_cb *cb = capffi__cbs_of(ctx)->cbs;
    while (cb) {
        capffi_cb *next = cb->next;
        cb->call.magic = 0;
        cb_release(cb);
        cb = next;
    }
    capffi__cbs_of(ctx)->cbs = NULL;
}
