/*
 * cb.c - callbacks: making them (a thunk of thunk.c or a libffi closure,
 * over the trampoline of invoke.c), closing them, their references and
 * status.
 *
 * Threat answered here (THREATS.md): C2. A callback is never freed before
 * its context; closing it, or revoking its token, only flips its state
 * word, which every invocation reads first (invoke.c).
 */
#include "callback/cb.h"

#include <stdio.h>
#include <string.h>

#include "callback/invoke.h"
#include "callback/thunk.h"

/* ---- making and closing ------------------------------------------------- */

static void
cb_on_revoke(struct capffi__res *r)
{
    capffi_cb *cb = capffi__container_of(r, capffi_cb, res);
    int live = CAPFFI__LIVE;
    atomic_compare_exchange_strong(&cb->state, &live, CAPFFI__REVOKED);
    /* A host waiting in capffi_ctx_poll re-checks capffi_ctx_keepalive. */
    capffi__owner_wake(cb->call.ctx);
}

static void
cb_release(capffi_cb *cb)
{
    capffi__thunk_release(cb);
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
    int rc = capffi__cb_store(cb, &cb->dflt, &w, why, sizeof why);
    if (rc)
        return capffi__fail(ctx, rc, "default %s", why);
    cb->dflt_word = w.u64;
    return CAPFFI_OK;
}

/*
 * SafeFFI in a callback's signature: *NAME parameters become instances
 * for the handler (at most CAPFFI__CB_MAX_OBJS); out, own and a *NAME
 * result are for bound functions; safe mode refuses raw pointers.
 */
static int
typed_check(capffi_cb *cb, const char *signature)
{
    capffi_ctx *ctx = cb->call.ctx;
    const struct capffi__sig *s = &cb->sig;
    size_t objs = 0;
    for (size_t i = 0; i <= s->nargs; i++) {
        const struct capffi__type *t = i < s->nargs ? s->args[i] : s->ret;
        bool ret = i == s->nargs;
        if (t->kind == CAPFFI__OUTVAL ||
            (t->kind == CAPFFI__TPTR &&
             (t->pflags & (CAPFFI__P_OUT | CAPFFI__P_OWN))))
            return capffi__fail(ctx, CAPFFI_ESIG,
                                "callback '%s': out and own are for bound "
                                "functions",
                                signature);
        if (t->kind == CAPFFI__TPTR && ret)
            return capffi__fail(ctx, CAPFFI_ESIG,
                                "callback '%s': a callback cannot return "
                                "*%s (return an integer or bool)",
                                signature, capffi__type_class(t->elem));
        if (t->kind == CAPFFI__TPTR && ++objs > CAPFFI__CB_MAX_OBJS)
            return capffi__fail(ctx, CAPFFI_ESIG,
                                "callback '%s': more than %d *NAME "
                                "parameters",
                                signature, CAPFFI__CB_MAX_OBJS);
        if (capffi__safe(ctx, cb->tok) &&
            (capffi__type_carries_raw(t) ||
             (ret && t->kind == CAPFFI__FUNCTION)))
            return capffi__fail(ctx, CAPFFI_EPERM,
                                "callback '%s': a raw pointer is refused in "
                                "safe mode: declare a class and take *NAME "
                                "(docs/safeffi.md)",
                                signature);
    }
    cb->obj_raw_ok = capffi__raw_ok(ctx, cb->tok);
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
    if ((rc = typed_check(cb, signature)))
        return rc;
    /* H3: a pointer parameter hands the handler whatever native code
     * passed, an integer the host chose included. A *NAME parameter is an
     * instance, checked by its class: no raw pointer. */
    for (size_t i = 0; i < s->nargs; i++)
        if (capffi__type_is_pointer(s->args[i]) &&
            s->args[i]->kind != CAPFFI__TPTR &&
            !(cb->tok->rights & CAPFFI_RIGHT_POINTER))
            return capffi__fail(ctx, CAPFFI_EPERM,
                                "parameter %zu (%s) would hand the handler "
                                "a pointer value: the token lacks the "
                                "pointer right",
                                i + 1, capffi__type_word(s->args[i], NULL));
    capffi__cb_plan(cb, o->flags & CAPFFI_CB_WRAP);
    rc = set_default(cb, o->result);
    if (rc)
        return rc;
    /* A thunk of capffi's own when the signature fits one and the pool
     * has one free (thunk.c), else a libffi closure. */
    if (!capffi__thunk_take(cb)) {
        cb->closure = capffi__closure_alloc(&cb->call.code);
        if (!cb->closure)
            return capffi__fail(ctx, CAPFFI_ENOMEM,
                                "cannot allocate a closure (out of memory, "
                                "or executable memory is refused)");
        st = ffi_prep_closure_loc(cb->closure, &cb->cif, capffi__cb_trampoline,
                                  cb, cb->call.code);
        if (st != FFI_OK)
            return capffi__fail(ctx, CAPFFI_ESIG,
                                "libffi cannot prepare a closure for '%s' "
                                "(status %d)",
                                signature, (int)st);
    }
    cb->target =
        capffi__arena_strndup(&cb->sig.arena, signature, strlen(signature));
    if (!cb->target)
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    atomic_init(&cb->slow, (cb->obj_args ? CAPFFI__SLOW_PLAN : 0) |
                               ((capffi__audit_of(ctx)->audit.calls &
                                 CAPFFI_AUDIT_CB_INVOKES)
                                    ? CAPFFI__SLOW_AUDIT_CTX
                                    : 0));
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
    int rc = capffi__entry(ctx, CAPFFI_OP_CB_NEW, "capffi_cb_new");
    if (rc)
        return rc;
    const char *target = signature ? signature : "";
    struct capffi__tok *t = NULL;
    rc = capffi__token_peek(ctx, tok, CAPFFI_RIGHT_CALLBACK, CAPFFI_OP_CB_NEW,
                            target, &t);
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
        else
            cb->thunk = -1;
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
            capffi__list_add(&capffi__cbs_of(ctx)->cbs, &cb->link);
            *out = cb;
        }
    }
    char at[40] = "";
    if (!rc)
        snprintf(at, sizeof at, "at %p", cb->call.code);
    capffi__token_audit(ctx, CAPFFI_OP_CB_NEW, rc,
                        rc == CAPFFI_EPERM ? CAPFFI_REASON_RIGHT
                                           : CAPFFI_REASON_FAILED,
                        t, CAPFFI_RIGHT_CALLBACK, target, at);
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

int
capffi_cb_audit(capffi_cb *cb, bool on)
{
    if (!cb || cb->call.magic != CAPFFI__CB_MAGIC)
        return capffi__fail(NULL, CAPFFI_EINVAL, "cb is %s",
                            cb ? "not a callback" : "NULL");
    capffi__slow_set(&cb->slow, CAPFFI__SLOW_AUDIT, on);
    return CAPFFI_OK;
}

void
capffi__cb_audit_all(capffi_ctx *ctx, bool on)
{
    for (struct capffi__link *k = capffi__cbs_of(ctx)->cbs.head; k; k = k->next)
        capffi__slow_set(&capffi__container_of(k, capffi_cb, link)->slow,
                         CAPFFI__SLOW_AUDIT_CTX, on);
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
    capffi__token_audit(ctx, CAPFFI_OP_CB_CLOSE, 0, CAPFFI_REASON_NONE, cb->tok,
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
    for (struct capffi__link *k = capffi__cbs_of(ctx)->cbs.head; k;
         k = k->next) {
        const capffi_cb *cb = capffi__container_of(k, capffi_cb, link);
        n += (cb->flags & CAPFFI_CB_THREADSAFE) && cb->refs &&
             atomic_load(&cb->state) == CAPFFI__LIVE;
    }
    return n;
}

void
capffi__cb_close_all(capffi_ctx *ctx)
{
    for (struct capffi__link *k = capffi__cbs_of(ctx)->cbs.head; k; k = k->next)
        atomic_store(&capffi__container_of(k, capffi_cb, link)->state,
                     CAPFFI__CLOSED);
}

void
capffi__cb_free_all(capffi_ctx *ctx)
{
    struct capffi__link *k;
    while ((k = capffi__list_pop(&capffi__cbs_of(ctx)->cbs))) {
        capffi_cb *cb = capffi__container_of(k, capffi_cb, link);
        cb->call.magic = 0;
        cb_release(cb);
    }
}
