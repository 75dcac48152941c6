/*
 * invoke.c - invoking callbacks: the closure trampoline, the arguments and
 * the result converted for the handler, refusals that fail closed, and
 * invocations from other threads handed to the owner loop.
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
 * allocation, no audit unless asked (capffi_cb_audit); one atomic load, the
 * arguments converted on the stack, the handler, the result stored. Everything
 * else (refusals, failures, other threads) is out of line.
 */
#include "callback/invoke.h"

#include <stdio.h>
#include <string.h>

#include "call/fn.h"

#define CB_OP_FLAGS (CAPFFI_CB_THREADSAFE | CAPFFI_CB_WRAP | CAPFFI_CB_LIBFFI)
_Static_assert(CB_OP_FLAGS == CAPFFI_CB__ALL, "every flag is handled");

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

/* ---- failing closed ----------------------------------------------------- */

/* The default result, where native code reads the result. */
static void
write_default(const capffi_cb *cb, void *ret)
{
    switch (cb->ret_op) {
    case CAPFFI__V_VOID:
        break;
    case CAPFFI__V_STRUCT:
        memcpy(ret, cb->dflt_bytes, cb->sig.ret->size);
        break;
    case CAPFFI__V_F32:
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
    if (CAPFFI__UNLIKELY(cb->arg_op[i] == CAPFFI__V_STRUCT)) {
        /* The handler reads libffi's copy. */
        v->agg.ptr = (void *)(uintptr_t)a;
        v->agg.len = cb->sig.args[i]->size;
        return;
    }
    capffi__value_load(v, cb->arg_op[i], a);
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
    if (capffi__vop_small(op) && v->u64 + cb->ret_off > cb->ret_span)
        return false;
    if (op == CAPFFI__V_STRUCT || cb->ret_handle)
        return false;
    capffi__value_store_word(ret, op, v);
    return true;
}

/*
 * Store the value v of the declared result type where native code reads
 * it: the common results through store_fast, then handles and structs.
 * Fails, writing nothing, with CAPFFI_ERANGE (a small integer out of
 * range), CAPFFI_ETYPE (a struct of the wrong size) or a handle's error;
 * *why gets the detail.
 */
int
capffi__cb_store(const capffi_cb *cb, const capffi_value *v, void *ret,
                 char *why, size_t cap)
{
    if (store_fast(cb, v, ret))
        return CAPFFI_OK;
    uint8_t op = cb->ret_op;
    if (capffi__vop_small(op) && !cb->ret_handle &&
        v->u64 + cb->ret_off > cb->ret_span) {
        if (capffi__vop_signed(op))
            snprintf(why, cap, "result (%s): %lld does not fit",
                     cb->sig.ret->name, (long long)v->i64);
        else
            snprintf(why, cap, "result (%s): %llu does not fit",
                     cb->sig.ret->name, (unsigned long long)v->u64);
        return CAPFFI_ERANGE;
    }
    if (cb->ret_handle) {
        void *code;
        int rc = capffi__callable_code(cb->call.ctx, v->p, 0, &code);
        if (rc) {
            snprintf(why, cap, "%s", capffi_ctx_errmsg(cb->call.ctx));
            return rc;
        }
        memcpy(ret, &code, sizeof code);
        return CAPFFI_OK;
    }
    /* a struct */
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

/* The results store_fast leaves: handles, structs, out of range. False
 * when the result was refused. */
static __attribute__((noinline)) bool
store_slow(capffi_cb *cb, const capffi_value *v, void *ret)
{
    char why[CAPFFI_CB_DETAIL_MAX];
    int rc = capffi__cb_store(cb, v, ret, why, sizeof why);
    if (rc)
        refuse(cb, ret, rc, CAPFFI_REASON_INVALID, why);
    return rc == CAPFFI_OK;
}

static __attribute__((noinline, cold)) void
handler_failed(capffi_cb *cb, void *ret, const struct inv *inv)
{
    refuse(cb, ret, CAPFFI_ECALLBACK, CAPFFI_REASON_FAILED, inv->msg);
}

static bool handle(capffi_cb *cb, void *ret, capffi_value *vals);

/*
 * run for a callback with *NAME parameters: each non-NULL address becomes
 * an instance in this frame, valid while the handler runs (the host must
 * not keep it: capffi/cb.h).
 */
static bool
run_objs(capffi_cb *cb, void *ret, capffi_value *vals)
{
    capffi_obj objs[CAPFFI__CB_MAX_OBJS];
    size_t j = 0;
    const struct capffi__sig *s = &cb->sig;
    for (size_t i = 0; i < s->nargs; i++) {
        const struct capffi__type *t = s->args[i];
        if (t->kind != CAPFFI__TPTR || !vals[i].p)
            continue;
        size_t count = t->count ? t->count : 1;
        if (t->count_arg >= 0) {
            const capffi_value *c = &vals[t->count_arg];
            bool neg =
                capffi__vop_signed(cb->arg_op[t->count_arg]) && c->i64 < 0;
            count = neg ? 0 : (size_t)c->u64;
        }
        capffi__obj_arg(&objs[j], cb->call.ctx, t->elem, count,
                        t->count != 0 || t->count_arg >= 0, vals[i].p,
                        cb->obj_raw_ok);
        vals[i].obj = &objs[j++];
    }
    bool ok = handle(cb, ret, vals);
    for (size_t k = 0; k < j; k++)
        atomic_store(&objs[k].magic, 0); /* its frame ends: keeping one
                                            is the host's error (cb.h) */
    return ok;
}

/*
 * run for a callback with instance parameters or an audited one
 * (capffi_cb_audit, capffi_audit_calls): a stored result is a cb.invoke
 * event; a refused one has written its refusal already.
 */
static __attribute__((noinline)) void
run_slow(capffi_cb *cb, void *ret, capffi_value *vals)
{
    bool ok = cb->obj_args ? run_objs(cb, ret, vals) : handle(cb, ret, vals);
    if (ok &&
        (atomic_load_explicit(&cb->slow, memory_order_relaxed) &
         CAPFFI__SLOW_AUDITED) &&
        capffi__audit_on(cb->call.ctx)) {
        struct capffi__who who = capffi__token_who(cb->tok);
        capffi__audit_emit(cb->call.ctx, CAPFFI_OP_CB_INVOKE, CAPFFI_OK,
                           CAPFFI_REASON_NONE, &who, CAPFFI_RIGHT_CALLBACK,
                           cb->target, "at %p", cb->call.code);
    }
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
        if (op == CAPFFI__V_W64)
            memcpy(&vals[i].u64, args[i], sizeof vals[i].u64);
        else if (op == CAPFFI__V_I32)
            vals[i].i64 = *(const int32_t *)args[i];
        else
            convert_arg(cb, i, args[i], &vals[i]);
    }
    if (CAPFFI__UNLIKELY(atomic_load_explicit(&cb->slow, memory_order_relaxed)))
        run_slow(cb, ret, vals);
    else
        handle(cb, ret, vals);
}

/* The handler's part of run, once the arguments are values: false when
 * the invocation was refused (the default result went to native code). */
static bool
handle(capffi_cb *cb, void *ret, capffi_value *vals)
{
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
    if (CAPFFI__UNLIKELY(inv.failed)) {
        handler_failed(cb, ret, &inv);
        return false;
    }
    if (CAPFFI__UNLIKELY(!store_fast(cb, &r, ret)))
        return store_slow(cb, &r, ret);
    return true;
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

void
capffi__cb_trampoline(ffi_cif *cif, void *ret, void **args, void *user)
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

void
capffi__cb_plan(capffi_cb *cb, bool wrap)
{
    const struct capffi__sig *s = &cb->sig;
    for (size_t i = 0; i < s->nargs; i++) {
        cb->arg_op[i] = capffi__vop(s->args[i]->kind);
        cb->obj_args |= s->args[i]->kind == CAPFFI__TPTR;
    }
    cb->ret_op = capffi__vop(s->ret->kind);
    cb->ret_struct = cb->ret_op == CAPFFI__V_STRUCT;
    cb->ret_handle = s->ret->kind == CAPFFI__FUNCTION;
    if (wrap) {
        cb->ret_off = 0;
        cb->ret_span = UINT64_MAX;
    } else {
        capffi__vop_range(cb->ret_op, &cb->ret_off, &cb->ret_span);
    }
}
