/*
 * fn.c - bound functions and the call path.
 *
 * The call path (capffi_fn_call, capffi_fn_call_raw) is the data plane: it
 * does no allocation, no locking and no cryptography. One atomic load of
 * the state word tells whether the library was closed or the token
 * revoked (C1: an error, never a call into unloaded code); arguments are
 * converted into a stack array with small integers range-checked (C7) and
 * struct sizes checked; libffi makes the call.
 */
#include "fn.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "buf.h"
#include "ctx.h"

#define FN_FLAGS                                                               \
    (CAPFFI_FN_DEPS | CAPFFI_FN_WRAP | CAPFFI_FN_ERRNO | CAPFFI_FN_OPTIONAL)

static _Thread_local int last_errno;

int
capffi_last_errno(void)
{
    return last_errno;
}

static void
fn_on_revoke(struct capffi__res *r)
{
    capffi_fn *fn = (capffi_fn *)((char *)r - offsetof(capffi_fn, res));
    atomic_store(&fn->own_state, CAPFFI__REVOKED);
}

int
capffi__fn_new(capffi_fn **out, capffi_ctx *ctx, void *code,
               const char *signature, uint32_t flags, const atomic_int *state)
{
    *out = NULL;
    if (flags & ~FN_FLAGS)
        return capffi__fail(ctx, CAPFFI_EINVAL, "unknown flag bits 0x%x",
                            flags & ~FN_FLAGS);
    capffi_fn *fn = capffi__calloc(1, sizeof *fn);
    if (!fn)
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    int rc = capffi__sig_parse(ctx, &fn->sig, signature);
    if (rc) {
        capffi__sig_free(&fn->sig);
        capffi__free(fn);
        return rc;
    }
    const struct capffi__sig *s = &fn->sig;
    ffi_status st =
        s->variadic
            ? ffi_prep_cif_var(&fn->cif, FFI_DEFAULT_ABI, (unsigned)s->nfixed,
                               (unsigned)s->nargs, s->ret->ffi, s->atypes)
            : ffi_prep_cif(&fn->cif, FFI_DEFAULT_ABI, (unsigned)s->nargs,
                           s->ret->ffi, s->atypes);
    if (st != FFI_OK) {
        capffi__sig_free(&fn->sig);
        capffi__free(fn);
        return capffi__fail(ctx, CAPFFI_ESIG,
                            "libffi cannot prepare signature '%s' (status %d)",
                            signature, (int)st);
    }
    for (size_t i = 0; i < s->nargs; i++)
        if (s->args[i]->kind == CAPFFI__STRUCT && s->args[i]->size > 16)
            fn->big_struct_args = true;
    fn->ret_struct = s->ret->kind == CAPFFI__STRUCT;
    fn->code = code;
    fn->flags = flags;
    fn->ctx = ctx;
    atomic_init(&fn->own_state, CAPFFI__LIVE);
    fn->state = state ? state : &fn->own_state;
    fn->next = ctx->fns;
    if (ctx->fns)
        ctx->fns->prev = fn;
    ctx->fns = fn;
    *out = fn;
    return CAPFFI_OK;
}

static void
fn_release(capffi_fn *fn)
{
    capffi__sig_free(&fn->sig);
    capffi__free(fn);
}

void
capffi_fn_free(capffi_fn *fn)
{
    if (!fn)
        return;
    capffi_ctx *ctx = fn->ctx;
    if (fn->prev)
        fn->prev->next = fn->next;
    else
        ctx->fns = fn->next;
    if (fn->next)
        fn->next->prev = fn->prev;
    capffi__token_detach(ctx, &fn->res);
    fn_release(fn);
}

void
capffi__fn_free_all(capffi_ctx *ctx)
{
    capffi_fn *fn = ctx->fns;
    while (fn) {
        capffi_fn *next = fn->next;
        fn_release(fn);
        fn = next;
    }
    ctx->fns = NULL;
}

size_t
capffi_fn_arity(const capffi_fn *fn)
{
    return fn ? fn->sig.nargs : 0;
}

int
capffi_fn_from_ptr(capffi_fn **out, capffi_ctx *ctx, const capffi_token *tok,
                   void *code, const char *signature, uint32_t flags)
{
    if (out)
        *out = NULL;
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    if (!capffi__ctx_on_owner(ctx))
        return capffi__wrong_thread(ctx, CAPFFI_OP_FN_FROM_PTR,
                                    "capffi_fn_from_ptr");
    char target[32];
    snprintf(target, sizeof target, "%p", code);
    struct capffi__tok *t = NULL;
    int rc = capffi__token_peek(ctx, tok, CAPFFI_RIGHT_FNPTR,
                                CAPFFI_OP_FN_FROM_PTR, target, &t);
    if (rc)
        return rc;
    capffi_fn *fn = NULL;
    if (!out || !code || !signature)
        rc = capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL",
                          !out    ? "out"
                          : !code ? "code"
                                  : "signature");
    else if (!(rc = capffi__token_use(ctx, tok, CAPFFI_RIGHT_FNPTR, NULL,
                                      CAPFFI_OP_FN_FROM_PTR, target, &t)))
        rc = capffi__fn_new(&fn, ctx, code, signature, flags, NULL);
    else
        return rc; /* the denial is audited */
    if (!rc) {
        fn->res.on_revoke = fn_on_revoke;
        rc = capffi__token_attach(ctx, t, &fn->res);
        if (rc)
            capffi_fn_free(fn);
        else
            *out = fn;
    }
    struct capffi__who who = capffi__token_who(t);
    capffi__audit_emit(ctx, CAPFFI_OP_FN_FROM_PTR, rc,
                       rc ? CAPFFI_REASON_FAILED : CAPFFI_REASON_NONE, &who,
                       CAPFFI_RIGHT_FNPTR, target, "%s",
                       rc ? capffi_ctx_errmsg(ctx) : signature);
    return rc;
}

/* ---- the call path ----------------------------------------------------- */

static int
dead(const capffi_fn *fn, int state)
{
    return state == CAPFFI__CLOSED
               ? capffi__fail(fn->ctx, CAPFFI_ECLOSED,
                              "the function's library is closed")
               : capffi__fail(fn->ctx, CAPFFI_EREVOKED,
                              "the function's token was revoked");
}

union slot {
    int8_t i8;
    uint8_t u8;
    int16_t i16;
    uint16_t u16;
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    float f32;
    double f64;
    void *p;
};

static int
out_of_range(const capffi_fn *fn, size_t i, const struct capffi__type *t,
             const capffi_value *v, int64_t lo, uint64_t hi)
{
    bool is_signed = t->kind == CAPFFI__I8 || t->kind == CAPFFI__I16 ||
                     t->kind == CAPFFI__I32;
    if (is_signed)
        return capffi__fail(fn->ctx, CAPFFI_ERANGE,
                            "argument %zu (%s): %" PRId64
                            " is outside [%" PRId64 ", %" PRIu64 "]",
                            i + 1, t->name, v->i64, lo, hi);
    return capffi__fail(fn->ctx, CAPFFI_ERANGE,
                        "argument %zu (%s): %" PRIu64 " is outside [0, %" PRIu64
                        "]",
                        i + 1, t->name, v->u64, hi);
}

/* Convert argument i into *slot (or point av at the caller's struct). */
static int
convert(const capffi_fn *fn, size_t i, const capffi_value *v, union slot *slot,
        void **av)
{
    const struct capffi__type *t = fn->sig.args[i];
    bool wrap = fn->flags & CAPFFI_FN_WRAP;
    *av = slot;
    switch (t->kind) {
    case CAPFFI__BOOL:
        slot->u8 = v->b ? 1 : 0;
        return CAPFFI_OK;
    case CAPFFI__I8:
        if (!wrap && (v->i64 < INT8_MIN || v->i64 > INT8_MAX))
            return out_of_range(fn, i, t, v, INT8_MIN, INT8_MAX);
        slot->i8 = (int8_t)v->i64;
        return CAPFFI_OK;
    case CAPFFI__U8:
        if (!wrap && v->u64 > UINT8_MAX)
            return out_of_range(fn, i, t, v, 0, UINT8_MAX);
        slot->u8 = (uint8_t)v->u64;
        return CAPFFI_OK;
    case CAPFFI__I16:
        if (!wrap && (v->i64 < INT16_MIN || v->i64 > INT16_MAX))
            return out_of_range(fn, i, t, v, INT16_MIN, INT16_MAX);
        slot->i16 = (int16_t)v->i64;
        return CAPFFI_OK;
    case CAPFFI__U16:
        if (!wrap && v->u64 > UINT16_MAX)
            return out_of_range(fn, i, t, v, 0, UINT16_MAX);
        slot->u16 = (uint16_t)v->u64;
        return CAPFFI_OK;
    case CAPFFI__I32:
        if (!wrap && (v->i64 < INT32_MIN || v->i64 > INT32_MAX))
            return out_of_range(fn, i, t, v, INT32_MIN, INT32_MAX);
        slot->i32 = (int32_t)v->i64;
        return CAPFFI_OK;
    case CAPFFI__U32:
        if (!wrap && v->u64 > UINT32_MAX)
            return out_of_range(fn, i, t, v, 0, UINT32_MAX);
        slot->u32 = (uint32_t)v->u64;
        return CAPFFI_OK;
    case CAPFFI__I64:
    case CAPFFI__U64:
    case CAPFFI__ISIZE:
    case CAPFFI__USIZE:
        slot->u64 = v->u64;
        return CAPFFI_OK;
    case CAPFFI__F32:
        slot->f32 = v->f32;
        return CAPFFI_OK;
    case CAPFFI__F64:
        slot->f64 = v->f64;
        return CAPFFI_OK;
    case CAPFFI__CSTRING:
        slot->p = (void *)(uintptr_t)v->str;
        return CAPFFI_OK;
    case CAPFFI__BUFFER:
        return capffi__buf_arg(fn->ctx, v->buf, &slot->p);
    case CAPFFI__STRUCT:
        if (!v->agg.ptr)
            return capffi__fail(fn->ctx, CAPFFI_EINVAL,
                                "argument %zu: struct pointer is NULL", i + 1);
        if (v->agg.len != t->size)
            return capffi__fail(fn->ctx, CAPFFI_ETYPE,
                                "argument %zu: struct of %zu bytes given, "
                                "%zu declared",
                                i + 1, v->agg.len, t->size);
        *av = v->agg.ptr;
        return CAPFFI_OK;
    default: /* pointer, function, *NAME */
        slot->p = v->p;
        return CAPFFI_OK;
    }
}

/* Scalar results arrive widened to a full ffi_arg (libffi's rule). */
union rbuf {
    ffi_arg a;
    ffi_sarg s;
    float f32;
    double f64;
    void *p;
    _Alignas(16) unsigned char bytes[32];
};

static void
narrow(const struct capffi__type *t, const union rbuf *r, capffi_value *ret)
{
    switch (t->kind) {
    case CAPFFI__BOOL:
        ret->b = (uint8_t)r->a != 0;
        break;
    case CAPFFI__I8:
        ret->i64 = (int8_t)r->s;
        break;
    case CAPFFI__U8:
        ret->u64 = (uint8_t)r->a;
        break;
    case CAPFFI__I16:
        ret->i64 = (int16_t)r->s;
        break;
    case CAPFFI__U16:
        ret->u64 = (uint16_t)r->a;
        break;
    case CAPFFI__I32:
        ret->i64 = (int32_t)r->s;
        break;
    case CAPFFI__U32:
        ret->u64 = (uint32_t)r->a;
        break;
    case CAPFFI__I64:
    case CAPFFI__ISIZE:
        ret->i64 = (int64_t)r->s;
        break;
    case CAPFFI__U64:
    case CAPFFI__USIZE:
        ret->u64 = (uint64_t)r->a;
        break;
    case CAPFFI__F32:
        ret->f32 = r->f32;
        break;
    case CAPFFI__F64:
        ret->f64 = r->f64;
        break;
    case CAPFFI__CSTRING:
        ret->str = r->p;
        break;
    case CAPFFI__VOID:
        break;
    default:
        ret->p = r->p;
        break;
    }
}

int
capffi_fn_call(capffi_fn *fn, const capffi_value *args, capffi_value *ret)
{
    if (CAPFFI__UNLIKELY(!fn))
        return capffi__fail(NULL, CAPFFI_EINVAL, "fn is NULL");
    int state = atomic_load_explicit(fn->state, memory_order_acquire);
    if (CAPFFI__UNLIKELY(state != CAPFFI__LIVE))
        return dead(fn, state);
    size_t n = fn->sig.nargs;
    if (CAPFFI__UNLIKELY(n && !args))
        return capffi__fail(fn->ctx, CAPFFI_EINVAL, "args is NULL");

    union slot slots[CAPFFI_MAX_ARGS];
    void *av[CAPFFI_MAX_ARGS];
    for (size_t i = 0; i < n; i++) {
        int rc = convert(fn, i, &args[i], &slots[i], &av[i]);
        if (CAPFFI__UNLIKELY(rc))
            return rc;
    }

    union rbuf r;
    void *rp = &r;
    if (fn->ret_struct) {
        size_t size = fn->sig.ret->size;
        if (!ret || !ret->agg.ptr || ret->agg.len < size)
            return capffi__fail(fn->ctx, CAPFFI_EINVAL,
                                "a struct result needs ret->agg with at "
                                "least %zu bytes",
                                size);
        if (size > sizeof r.bytes)
            rp = ret->agg.ptr;
    }
    if (fn->flags & CAPFFI_FN_ERRNO) {
        errno = 0;
        ffi_call(&fn->cif, FFI_FN(fn->code), rp, av);
        last_errno = errno;
    } else {
        ffi_call(&fn->cif, FFI_FN(fn->code), rp, av);
    }
    if (fn->ret_struct) {
        if (rp == (void *)&r)
            memcpy(ret->agg.ptr, r.bytes, fn->sig.ret->size);
    } else if (ret) {
        narrow(fn->sig.ret, &r, ret);
    }
    return CAPFFI_OK;
}

int
capffi_fn_call_raw(capffi_fn *fn, void **args, void *ret)
{
    if (CAPFFI__UNLIKELY(!fn))
        return capffi__fail(NULL, CAPFFI_EINVAL, "fn is NULL");
    int state = atomic_load_explicit(fn->state, memory_order_acquire);
    if (CAPFFI__UNLIKELY(state != CAPFFI__LIVE))
        return dead(fn, state);
    union rbuf scratch;
    if (!ret)
        ret = &scratch; /* libffi before 3.7 needs somewhere to write */
    void *av[CAPFFI_MAX_ARGS];
    void **use = args;
    if (fn->big_struct_args) {
        /* libffi 3.4 rewrites avalue[i] for structs over 16 bytes to point
         * into its own frame: give it a copy, keep the caller's array. */
        memcpy(av, args, fn->sig.nargs * sizeof *av);
        use = av;
    }
    if (fn->flags & CAPFFI_FN_ERRNO) {
        errno = 0;
        ffi_call(&fn->cif, FFI_FN(fn->code), ret, use);
        last_errno = errno;
    } else {
        ffi_call(&fn->cif, FFI_FN(fn->code), ret, use);
    }
    return CAPFFI_OK;
}
