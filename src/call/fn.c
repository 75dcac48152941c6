/*
 * fn.c - bound functions and the call path.
 *
 * The call path (capffi_fn_call, capffi_fn_call_raw) is the data plane: it
 * does no allocation, no locking and no cryptography. One atomic load of
 * the state word tells whether the library was closed or the token
 * revoked (C1: an error, never a call into unloaded code); arguments are
 * converted into a stack array with small integers range-checked (C7) and
 * struct sizes checked; the direct call (abi.c) or libffi makes the call.
 */
#include "call/fn.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "memory/buf.h"

#define FN_FLAGS                                                               \
    (CAPFFI_FN_DEPS | CAPFFI_FN_WRAP | CAPFFI_FN_ERRNO | CAPFFI_FN_OPTIONAL |  \
     CAPFFI_FN_LIBFFI)

static _Thread_local int last_errno;

int
capffi_last_errno(void)
{
    return last_errno;
}

void
capffi__fn_set_errno(int e)
{
    last_errno = e;
}

static void
fn_on_revoke(struct capffi__res *r)
{
    capffi_fn *fn = capffi__container_of(r, capffi_fn, res);
    atomic_store(&fn->own_state, CAPFFI__REVOKED);
}

/* How the call path treats an argument of type t (fn.h). */
static uint8_t
arg_op(const struct capffi__type *t)
{
    if (t->kind == CAPFFI__OUTVAL ||
        (t->kind == CAPFFI__TPTR && (t->pflags & CAPFFI__P_OUT)))
        return ARG_OUT;
    switch (t->kind) {
    case CAPFFI__TPTR:
        return ARG_OBJ;
    case CAPFFI__BUFFER:
        return ARG_BUFFER;
    case CAPFFI__STRUCT:
        return ARG_STRUCT;
    case CAPFFI__FUNCTION:
        return ARG_FUNCTION;
    default: /* scalars, passed from the value's first bytes */
        return ARG_DIRECT;
    }
}

/* Safe mode (CAPFFI_OPT_SAFE, or a token without the raw memory rights):
 * no raw pointer crosses the boundary; native memory comes as classes. */
static int
safe_check(capffi_ctx *ctx, const struct capffi__tok *scope,
           const struct capffi__sig *s)
{
    if (!capffi__safe(ctx, scope))
        return CAPFFI_OK;
    for (size_t i = 0; i <= s->nargs; i++) {
        const struct capffi__type *t = i < s->nargs ? s->args[i] : s->ret;
        bool ret = i == s->nargs;
        if (capffi__type_carries_raw(t) ||
            (ret && t->kind == CAPFFI__FUNCTION)) {
            char what[32];
            snprintf(what, sizeof what, ret ? "the result" : "parameter %zu",
                     i + 1);
            return capffi__fail(ctx, CAPFFI_EPERM,
                                "%s is a raw pointer, refused in safe mode: "
                                "declare a class (capffi_type_define) and "
                                "pass *NAME, ?*NAME, *[N]T or out *NAME "
                                "(docs/safeffi.md)",
                                what);
        }
    }
    return CAPFFI_OK;
}

int
capffi__fn_new(capffi_fn **out, capffi_ctx *ctx,
               const struct capffi__tok *scope, void *code,
               const char *signature, uint32_t flags,
               struct capffi__source *src)
{
    *out = NULL;
    if (flags & ~FN_FLAGS)
        return capffi__fail(ctx, CAPFFI_EINVAL, "unknown flag bits 0x%x",
                            flags & ~FN_FLAGS);
    capffi_fn *fn = capffi__recycle_take(&capffi__fns_of(ctx)->dead);
    if (fn)
        memset(fn, 0, sizeof *fn);
    else if (!(fn = capffi__calloc(1, sizeof *fn)))
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    int rc = capffi__sig_parse_in(ctx, scope, &fn->sig, signature);
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
    for (size_t i = 0; i < s->nargs; i++) {
        if (s->args[i]->kind == CAPFFI__STRUCT && s->args[i]->size > 16)
            fn->big_struct_args = true;
        uint8_t op = arg_op(s->args[i]);
        fn->arg_op[i] = op;
        fn->convert_args |= op != ARG_DIRECT;
        fn->objs |= op == ARG_OBJ || op == ARG_OUT;
        fn->buffer_args |= op == ARG_BUFFER;
        uint8_t vop = capffi__vop(s->args[i]->kind);
        if (capffi__vop_small(vop) && !(flags & CAPFFI_FN_WRAP)) {
            unsigned k = fn->n_ranged++;
            fn->ranged[k].arg = (uint8_t)i;
            capffi__vop_range(vop, &fn->ranged[k].off, &fn->ranged[k].span);
        }
    }
    fn->nargs = (uint8_t)s->nargs;
    fn->ret_struct = s->ret->kind == CAPFFI__STRUCT;
    fn->ret_op = capffi__vop(s->ret->kind);
    fn->objs |= s->ret->kind == CAPFFI__TPTR;
    if ((rc = safe_check(ctx, scope, s))) {
        capffi__sig_free(&fn->sig);
        capffi__free(fn);
        return rc;
    }
    fn->obj_raw_ok = capffi__raw_ok(ctx, scope);
    if (!(flags & CAPFFI_FN_LIBFFI))
        capffi__abi_plan(&fn->abi, s);
#if CAPFFI__ABI_SYSV64
    /* The stub passes each value's 64 bits: small integers must be
     * range-checked (so already extended) and bools are one byte. */
    bool straight = fn->abi.shape && !fn->convert_args && !fn->ret_struct;
    for (size_t i = 0; i < s->nargs && straight; i++) {
        uint8_t vop = capffi__vop(s->args[i]->kind);
        straight = vop != CAPFFI__V_BOOL &&
                   !(capffi__vop_small(vop) && (flags & CAPFFI_FN_WRAP));
    }
    if (straight)
        capffi__abi_plan_stub(&fn->stub, s);
#endif
#ifdef CAPFFI_LIBFFI_STRUCT_DEFECT
    size_t bad = fn->abi.shape ? 0 : capffi__abi_libffi_defect(s);
    if (bad) {
        capffi__sig_free(&fn->sig);
        capffi__free(fn);
        return capffi__fail(
            ctx, CAPFFI_ESIG,
            "argument %zu: this libffi (before 3.4.7) passes a struct "
            "in the last integer register after a floating-point "
            "argument wrongly on x86-64%s; pass it by pointer "
            "(docs/limits.md)",
            bad,
            flags & CAPFFI_FN_LIBFFI ? ", and CAPFFI_FN_LIBFFI asks for libffi"
                                     : "");
    }
#endif
    if (capffi__base(ctx)->owner.lend)
        flags |= CAPFFI__FN_LEND;
    unsigned audited =
        (capffi__audit_of(ctx)->audit.calls & CAPFFI_AUDIT_FN_CALLS)
            ? CAPFFI__SLOW_AUDIT_CTX
            : 0;
    bool careful = fn->ret_struct || fn->buffer_args || fn->objs ||
                   (flags & (CAPFFI_FN_ERRNO | CAPFFI__FN_LEND));
    atomic_init(&fn->careful, (careful ? CAPFFI__SLOW_PLAN : 0) | audited);
    /* A direct call never writes the argument array; libffi may. */
    bool raw_slow = fn->objs || (fn->big_struct_args && !fn->abi.shape) ||
                    (flags & CAPFFI_FN_ERRNO) || (flags & CAPFFI__FN_LEND);
    atomic_init(&fn->raw_slow, (raw_slow ? CAPFFI__SLOW_PLAN : 0) | audited);
    fn->tok = scope; /* its library's or pointer's token */
    fn->call.magic = CAPFFI__FN_MAGIC;
    fn->call.code = code;
    fn->flags = flags;
    fn->call.ctx = ctx;
    atomic_init(&fn->own_state, CAPFFI__LIVE);
    fn->call.state = src ? &src->state : &fn->own_state;
    fn->call.src = src;
    capffi__source_hold(src);
    capffi__list_add(&capffi__fns_of(ctx)->fns, &fn->link);
    *out = fn;
    return CAPFFI_OK;
}

/* Set or clear audit bits of one function. Any thread. */
static void
set_audit(capffi_fn *fn, unsigned bits, bool on)
{
    capffi__slow_set(&fn->careful, bits, on);
    capffi__slow_set(&fn->raw_slow, bits, on);
}

int
capffi_fn_audit(capffi_fn *fn, bool on)
{
    if (!fn || fn->call.magic != CAPFFI__FN_MAGIC)
        return capffi__fail(NULL, CAPFFI_EINVAL, "fn is %s",
                            fn ? "not a function" : "NULL");
    set_audit(fn, CAPFFI__SLOW_AUDIT, on);
    return CAPFFI_OK;
}

void
capffi__fn_audit_all(capffi_ctx *ctx, bool on)
{
    for (struct capffi__link *k = capffi__fns_of(ctx)->fns.head; k; k = k->next)
        set_audit(capffi__container_of(k, capffi_fn, link),
                  CAPFFI__SLOW_AUDIT_CTX, on);
}

const char *
capffi__fn_target(const capffi_fn *fn, char addr[32])
{
    if (fn->name)
        return fn->name;
    snprintf(addr, 32, "%p", fn->call.code);
    return addr;
}

static void
fn_release(capffi_fn *fn)
{
    /* Dead: a call of it goes to dead() (its own word says closed) and is
     * refused as freed, until the struct is reused (base/recycle.h). */
    fn->call.magic = 0;
    struct capffi__source *src = fn->call.src;
    fn->call.src = NULL;
    atomic_store(&fn->own_state, CAPFFI__CLOSED);
    fn->call.state = &fn->own_state;
    fn->tok = NULL;
    fn->name = NULL;
    capffi__sig_free(&fn->sig);
    capffi__recycle_put(&capffi__fns_of(fn->call.ctx)->dead, fn);
    capffi__source_drop(src); /* no call of it can be running now */
}

void
capffi__fn_hold(capffi_fn *fn)
{
    fn->jobs++;
}

void
capffi__fn_unhold(capffi_fn *fn)
{
    if (--fn->jobs == 0 && fn->freed)
        fn_release(fn);
}

void
capffi_fn_free(capffi_fn *fn)
{
    if (!fn || fn->call.magic != CAPFFI__FN_MAGIC || fn->freed)
        return;
    capffi_ctx *ctx = fn->call.ctx;
    capffi__list_remove(&capffi__fns_of(ctx)->fns, &fn->link);
    capffi__token_detach(ctx, &fn->res);
    capffi__audit_forget(ctx, fn);
    if (fn->jobs) { /* released when its last job ends */
        fn->freed = true;
        return;
    }
    fn_release(fn);
}

void
capffi__fn_free_all(capffi_ctx *ctx)
{
    struct capffi__link *k;
    while ((k = capffi__list_pop(&capffi__fns_of(ctx)->fns)))
        fn_release(capffi__container_of(k, capffi_fn, link));
    capffi__recycle_fini(&capffi__fns_of(ctx)->dead);
}

size_t
capffi_fn_arity(const capffi_fn *fn)
{
    return fn ? fn->sig.nargs : 0;
}

const char *
capffi_fn_param_type(const capffi_fn *fn, size_t i, size_t *size)
{
    return capffi__type_word(fn && i < fn->sig.nargs ? fn->sig.args[i] : NULL,
                             size);
}

const char *
capffi_fn_param_class(const capffi_fn *fn, size_t i)
{
    if (!fn || (i >= fn->sig.nargs && i != SIZE_MAX))
        return NULL;
    const struct capffi__type *t =
        i == SIZE_MAX ? fn->sig.ret : fn->sig.args[i];
    if (t->kind != CAPFFI__TPTR && t->kind != CAPFFI__OUTVAL)
        return NULL;
    return capffi__type_class(t->elem);
}

const char *
capffi_fn_result_type(const capffi_fn *fn, size_t *size)
{
    return capffi__type_word(fn ? fn->sig.ret : NULL, size);
}

int
capffi_fn_result_field(capffi_field *out, const capffi_fn *fn, const char *path)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!out || !fn || !path)
        return capffi__fail(fn ? fn->call.ctx : NULL, CAPFFI_EINVAL,
                            "an argument is NULL");
    if (!fn->ret_struct)
        return capffi__fail(fn->call.ctx, CAPFFI_ETYPE,
                            "the function's result is not a struct");
    return capffi__type_field(fn->call.ctx, fn->sig.ret, path, out);
}

size_t
capffi_fn_result_size(const capffi_fn *fn)
{
    return fn && fn->sig.ret->kind != CAPFFI__VOID ? fn->sig.ret->size : 0;
}

int
capffi_fn_from_ptr(capffi_fn **out, capffi_ctx *ctx, const capffi_token *tok,
                   void *code, const char *signature, uint32_t flags)
{
    if (out)
        *out = NULL;
    int rc = capffi__entry(ctx, CAPFFI_OP_FN_FROM_PTR, "capffi_fn_from_ptr");
    if (rc)
        return rc;
    char target[32];
    snprintf(target, sizeof target, "%p", code);
    if ((rc = capffi__safe_refuse(ctx, CAPFFI_OP_FN_FROM_PTR,
                                  "capffi_fn_from_ptr", target)))
        return rc;
    struct capffi__tok *t = NULL;
    rc = capffi__token_peek(ctx, tok, CAPFFI_RIGHT_FNPTR, CAPFFI_OP_FN_FROM_PTR,
                            target, &t);
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
        rc = capffi__fn_new(&fn, ctx, t, code, signature, flags, NULL);
    else
        return rc; /* the denial is audited */
    if (!rc && (rc = capffi__fn_bind_dtors(fn, NULL, NULL))) {
        capffi_fn_free(fn);
        fn = NULL;
    }
    if (!rc) {
        fn->res.on_revoke = fn_on_revoke;
        rc = capffi__token_attach(ctx, t, &fn->res);
        if (rc)
            capffi_fn_free(fn);
        else
            *out = fn;
    }
    capffi__token_audit(ctx, CAPFFI_OP_FN_FROM_PTR, rc, CAPFFI_REASON_FAILED, t,
                        CAPFFI_RIGHT_FNPTR, target, signature);
    return rc;
}

/* ---- the call path ----------------------------------------------------- */

/*
 * Everything off the common path lives in separate, never-inlined
 * functions, so the common path keeps a small frame and few branches.
 */

/*
 * A call of a function whose library was closed or whose token was revoked
 * (C1, T3): refused, and audited (A2) through the coalescing refusal event,
 * so a loop of such calls costs the trail one event per second. Any
 * thread. The target is the code's address, as fn.from_ptr names it.
 */
static __attribute__((noinline, cold)) int
dead(const capffi_fn *fn, int state)
{
    if (!fn)
        return capffi__fail(NULL, CAPFFI_EINVAL, "fn is NULL");
    if (fn->call.magic != CAPFFI__FN_MAGIC)
        return capffi__fail(fn->call.ctx, CAPFFI_EINVAL,
                            "the function was freed");
    bool closed = state == CAPFFI__CLOSED;
    const char *why = closed ? "the function's library is closed"
                             : "the function's token was revoked";
    int rc = closed ? CAPFFI_ECLOSED : CAPFFI_EREVOKED;
    if (capffi__audit_on(fn->call.ctx)) {
        char addr[32];
        struct capffi__who who = capffi__token_who(fn->tok);
        capffi__audit_refuse(
            fn->call.ctx, fn, CAPFFI_OP_FN_CALL, rc,
            closed ? CAPFFI_REASON_CLOSED : CAPFFI_REASON_REVOKED, &who, 0,
            capffi__fn_target(fn, addr), "call refused: %s", why);
    }
    return capffi__fail(fn->call.ctx, rc, "%s", why);
}

/*
 * The fn.call event of an audited call (capffi_audit_calls,
 * capffi_fn_audit): its status, and the error's message when it failed.
 */
static __attribute__((noinline)) void
audit_call(const capffi_fn *fn, int rc)
{
    if (!capffi__audit_on(fn->call.ctx))
        return; /* nobody listens: nothing to build */
    char addr[32];
    struct capffi__who who = capffi__token_who(fn->tok);
    capffi__audit_emit(fn->call.ctx, CAPFFI_OP_FN_CALL, rc,
                       rc ? CAPFFI_REASON_INVALID : CAPFFI_REASON_NONE, &who, 0,
                       capffi__fn_target(fn, addr), "%s",
                       rc ? capffi_ctx_errmsg(fn->call.ctx) : "returned");
}

/* A call that stopped before the native call: audited when it is. */
static __attribute__((noinline, cold)) int
failed(const capffi_fn *fn, int rc)
{
    if (atomic_load_explicit(&fn->careful, memory_order_relaxed) &
        CAPFFI__SLOW_AUDITED)
        audit_call(fn, rc);
    return rc;
}

static __attribute__((noinline, cold)) int
out_of_range(const capffi_fn *fn, size_t i, const capffi_value *v)
{
    const struct capffi__type *t = fn->sig.args[i];
    bool is_signed = t->kind == CAPFFI__I8 || t->kind == CAPFFI__I16 ||
                     t->kind == CAPFFI__I32;
    int bits = (int)t->size * 8;
    if (is_signed)
        return capffi__fail(fn->call.ctx, CAPFFI_ERANGE,
                            "argument %zu (%s): %" PRId64
                            " is outside [%" PRId64 ", %" PRId64 "]",
                            i + 1, t->name, v->i64, -(INT64_C(1) << (bits - 1)),
                            (INT64_C(1) << (bits - 1)) - 1);
    return capffi__fail(fn->call.ctx, CAPFFI_ERANGE,
                        "argument %zu (%s): %" PRIu64 " is outside [0, %" PRIu64
                        "]",
                        i + 1, t->name, v->u64, (UINT64_C(1) << bits) - 1);
}

/*
 * Convert argument i when it is a buffer (its bytes into slot, the buffer
 * held for the call), a function handle (its code into slot) or a struct
 * (its pointer into av, after a size check).
 */
static int
convert_arg(const capffi_fn *fn, size_t i, const capffi_value *args,
            void **slot, void **av)
{
    const capffi_value *v = &args[i];
    if (fn->arg_op[i] == ARG_OBJ) {
        uint64_t need;
        int rc = capffi__fn_arg_need(fn, i, args, &need);
        if (rc)
            return rc;
        *av = slot;
        return capffi__obj_call_begin(fn->call.ctx, v->obj, fn->sig.args[i],
                                      need, i + 1, slot);
    }
    if (fn->arg_op[i] == ARG_OUT) {
        if (!v->p)
            return capffi__fail(fn->call.ctx, CAPFFI_EINVAL,
                                "argument %zu (out): p must point to the "
                                "capffi_value that receives it",
                                i + 1);
        /* The callee writes into the slot's first word (av[i] points to
         * it); its address is what the argument passes. */
        slot[0] = NULL;
        *av = &slot[CAPFFI_MAX_ARGS];
        slot[CAPFFI_MAX_ARGS] = slot;
        return CAPFFI_OK;
    }
    if (fn->arg_op[i] == ARG_BUFFER) {
        *av = slot;
        return capffi__buf_call_begin(fn->call.ctx, v->buf, slot);
    }
    if (fn->arg_op[i] == ARG_FUNCTION) {
        *av = slot;
        return capffi__callable_code(fn->call.ctx, v->p, i + 1, slot);
    }
    if (fn->arg_op[i] != ARG_STRUCT)
        return CAPFFI_OK;
    size_t size = fn->sig.args[i]->size;
    if (!v->agg.ptr)
        return capffi__fail(fn->call.ctx, CAPFFI_EINVAL,
                            "argument %zu: struct pointer is NULL", i + 1);
    if (v->agg.len != size)
        return capffi__fail(fn->call.ctx, CAPFFI_ETYPE,
                            "argument %zu: struct of %zu bytes given, "
                            "%zu declared",
                            i + 1, v->agg.len, size);
    *av = v->agg.ptr;
    return CAPFFI_OK;
}

int
capffi__fn_arg_need(const capffi_fn *fn, size_t i, const capffi_value *args,
                    uint64_t *need)
{
    const struct capffi__type *t = fn->sig.args[i];
    *need = t->count ? t->count : 1;
    if (t->count_arg < 0)
        return CAPFFI_OK;
    uint8_t op = capffi__vop(fn->sig.args[t->count_arg]->kind);
    capffi_value c;
    capffi__value_load(&c, op, &args[t->count_arg]);
    if (capffi__vop_signed(op) && c.i64 < 0)
        return capffi__fail(fn->call.ctx, CAPFFI_ERANGE,
                            "argument %d counts the elements of argument "
                            "%zu: %" PRId64 " is negative",
                            t->count_arg + 1, i + 1, c.i64);
    *need = c.u64;
    return CAPFFI_OK;
}

/* H2: drop the holds on the buffer and instance arguments before
 * argument `end`, once the native call has returned (or a later argument
 * was refused). */
static void
release_buffers(const capffi_fn *fn, const capffi_value *args, size_t end)
{
    for (size_t i = 0; i < end; i++)
        if (fn->arg_op[i] == ARG_BUFFER)
            capffi__buf_call_end(args[i].buf);
        else if (fn->arg_op[i] == ARG_OBJ && args[i].obj)
            capffi__obj_call_end(args[i].obj);
}

static __attribute__((noinline)) int
convert_args(const capffi_fn *fn, const capffi_value *args, void **slots,
             void **av)
{
    for (size_t i = 0; i < fn->sig.nargs; i++) {
        int rc = convert_arg(fn, i, args, &slots[i], &av[i]);
        if (rc) {
            release_buffers(fn, args, i);
            return rc;
        }
    }
    return CAPFFI_OK;
}

/* Scalar results arrive widened to a full ffi_arg (libffi's rule). */
union rbuf {
    ffi_arg a;
    ffi_sarg s;
    uint64_t u64;
    _Alignas(16) unsigned char bytes[32];
};

/* The native call: direct where the ABI plan allows it, else libffi. */
static inline __attribute__((always_inline)) void
invoke(const capffi_fn *fn, void *ret, void **av)
{
#if CAPFFI__ABI_SYSV64
    if (fn->abi.shape) {
        capffi__abi_call(&fn->abi, fn->call.code, ret, av);
        return;
    }
#endif
    ffi_call((ffi_cif *)&fn->cif, FFI_FN(fn->call.code), ret, av);
}

/*
 * The native call of the careful paths: with errno captured, and with the
 * host lent to other threads' callbacks meanwhile (CAPFFI_OPT_LEND_OWNER)
 * when this thread holds it.
 */
static inline __attribute__((always_inline)) void
native_call(capffi_fn *fn, void *ret, void **av)
{
    struct capffi__hold h;
    bool lent =
        (fn->flags & CAPFFI__FN_LEND) && capffi__owner_lend(fn->call.ctx, &h);
    if (fn->flags & CAPFFI_FN_ERRNO) {
        errno = 0;
        invoke(fn, ret, av);
        last_errno = errno;
    } else {
        invoke(fn, ret, av);
    }
    if (lent)
        capffi__owner_reclaim(fn->call.ctx, &h);
}

int
capffi__fn_wrap(capffi_fn *fn, const struct capffi__type *t, void *dtor,
                void *addr, capffi_obj **out)
{
    *out = NULL;
    if (!addr)
        return CAPFFI_OK;
    /* A function from a pointer dies with its own state word: what it
     * returns lives by its token's revoked flag, which the context keeps. */
    bool own_word = fn->call.state == &fn->own_state;
    const atomic_int *state =
        own_word ? (fn->tok ? &fn->tok->revoked : NULL) : fn->call.state;
    return capffi__obj_wrap(out, fn->call.ctx, t->elem, t->count ? t->count : 1,
                            t->count != 0, addr, state, own_word,
                            fn->obj_raw_ok,
                            (t->pflags & CAPFFI__P_OWN) ? dtor : NULL);
}

/*
 * After a call with instances: out-parameters into the host's values,
 * a *NAME result into ret->obj. Every owned address becomes an instance
 * or is released at once, so an error here leaks nothing.
 */
static __attribute__((noinline)) int
objs_after(capffi_fn *fn, const capffi_value *args, void **av, const void *r,
           capffi_value *ret)
{
    int first = CAPFFI_OK;
    for (size_t i = 0; i < fn->sig.nargs; i++) {
        if (fn->arg_op[i] != ARG_OUT)
            continue;
        const struct capffi__type *t = fn->sig.args[i];
        void *cell = *(void **)av[i]; /* the slot the callee wrote */
        capffi_value *dst = args[i].p;
        if (t->kind == CAPFFI__OUTVAL) {
            memset(dst, 0, sizeof *dst);
            capffi__value_load(dst, capffi__vop(t->elem->kind), cell);
            continue;
        }
        void *addr;
        memcpy(&addr, cell, sizeof addr);
        int rc = capffi__fn_wrap(fn, t, fn->dtors ? fn->dtors[i] : NULL, addr,
                                 &dst->obj);
        if (rc && !first)
            first = rc;
    }
    const struct capffi__type *rt = fn->sig.ret;
    if (rt->kind == CAPFFI__TPTR) {
        void *addr;
        memcpy(&addr, r, sizeof addr);
        capffi_obj *o = NULL;
        int rc = capffi__fn_wrap(
            fn, rt, fn->dtors ? fn->dtors[fn->sig.nargs] : NULL, addr, &o);
        if (ret)
            ret->obj = o;
        else
            capffi_obj_free(o); /* nobody to hand it to: released now */
        if (rc && !first)
            first = rc;
    }
    return first;
}

int
capffi__fn_bind_dtors(capffi_fn *fn,
                      int (*find)(void *lib, const char *symbol, void **out),
                      void *lib)
{
    const struct capffi__sig *s = &fn->sig;
    for (size_t i = 0; i <= s->nargs; i++) {
        const struct capffi__type *t = i < s->nargs ? s->args[i] : s->ret;
        if (t->kind != CAPFFI__TPTR || !(t->pflags & CAPFFI__P_OWN))
            continue;
        if (!find)
            return capffi__fail(fn->call.ctx, CAPFFI_ESIG,
                                "own *%s by %s: a destructor is found in a "
                                "library (capffi_lib_bind)",
                                capffi__type_class(t->elem), t->by);
        if (!fn->dtors) {
            fn->dtors = capffi__arena_alloc(&fn->sig.arena,
                                            (s->nargs + 1) * sizeof(void *));
            if (!fn->dtors)
                return capffi__fail(fn->call.ctx, CAPFFI_ENOMEM,
                                    "out of memory");
            memset(fn->dtors, 0, (s->nargs + 1) * sizeof(void *));
        }
        int rc = find(lib, t->by, &fn->dtors[i]);
        if (rc)
            return rc;
    }
    return CAPFFI_OK;
}

/* The rest of a call that returns a struct, captures errno, lends the
 * host or holds buffers. */
static int
careful_call(capffi_fn *fn, const capffi_value *args, void **av,
             capffi_value *ret)
{
    union rbuf r;
    void *rp = &r;
    if (fn->ret_struct) {
        size_t size = fn->sig.ret->size;
        if (!ret || !ret->agg.ptr || ret->agg.len < size) {
            if (fn->buffer_args || fn->objs)
                release_buffers(fn, args, fn->sig.nargs);
            return capffi__fail(fn->call.ctx, CAPFFI_EINVAL,
                                "a struct result needs ret->agg with at "
                                "least %zu bytes",
                                size);
        }
        if (size > sizeof r.bytes)
            rp = ret->agg.ptr;
    }
    native_call(fn, rp, av);
    if (fn->buffer_args || fn->objs)
        release_buffers(fn, args, fn->sig.nargs);
    if (fn->ret_struct) {
        if (rp == (void *)&r)
            memcpy(ret->agg.ptr, r.bytes, fn->sig.ret->size);
    } else if (ret) {
        capffi__value_load(ret, fn->ret_op, &r);
    }
    if (fn->objs)
        return objs_after(fn, args, av, &r, ret);
    return CAPFFI_OK;
}

/* The careful path, and the fn.call event when the call is audited. */
static __attribute__((noinline)) int
call_careful(capffi_fn *fn, const capffi_value *args, void **av,
             capffi_value *ret)
{
    int rc = careful_call(fn, args, av, ret);
    if (atomic_load_explicit(&fn->careful, memory_order_relaxed) &
        CAPFFI__SLOW_AUDITED)
        audit_call(fn, rc);
    return rc;
}

static int call_planned(capffi_fn *fn, const capffi_value *args,
                        capffi_value *ret, unsigned careful);

int
capffi_fn_call(capffi_fn *fn, const capffi_value *args, capffi_value *ret)
{
    int state = fn ? atomic_load_explicit(fn->call.state, memory_order_acquire)
                   : CAPFFI__REVOKED;
    if (CAPFFI__UNLIKELY(!fn || state != CAPFFI__LIVE))
        return dead(fn, state);
    if (fn->nargs) {
        if (CAPFFI__UNLIKELY(!args))
            return failed(
                fn, capffi__fail(fn->call.ctx, CAPFFI_EINVAL, "args is NULL"));
        for (unsigned k = 0; k < fn->n_ranged; k++) {
            const capffi_value *v = &args[fn->ranged[k].arg];
            if (CAPFFI__UNLIKELY(v->u64 + fn->ranged[k].off >
                                 fn->ranged[k].span))
                return failed(fn, out_of_range(fn, fn->ranged[k].arg, v));
        }
    }
    unsigned careful = atomic_load_explicit(&fn->careful, memory_order_relaxed);
    if (CAPFFI__LIKELY(fn->stub.call != NULL) && CAPFFI__LIKELY(!careful)) {
        /* A scalar signature: its stub loads the registers from args. */
        uint64_t r = fn->stub.call(fn->call.code, args, fn->stub.ix);
        /* The commonest results without the load's jump table. */
        if (!ret || fn->ret_op == CAPFFI__V_VOID)
            return CAPFFI_OK;
        if (fn->ret_op == CAPFFI__V_W64)
            ret->u64 = r;
        else
            capffi__value_load(ret, fn->ret_op, &r);
        return CAPFFI_OK;
    }
    return call_planned(fn, args, ret, careful);
}

/*
 * capffi_fn_call past its checks, for the signatures no stub fits and for
 * careful calls: the arguments as an array of pointers, converted where
 * they are handles, structs or instances, then the plan or libffi. Its own
 * frame (the argument arrays) stays off the stub's path.
 */
static __attribute__((noinline)) int
call_planned(capffi_fn *fn, const capffi_value *args, capffi_value *ret,
             unsigned careful)
{
    size_t n = fn->sig.nargs;
    void *av[CAPFFI_MAX_ARGS];
    void *slots[2 * CAPFFI_MAX_ARGS]; /* the second half: out slots' */
    /* libffi reads arguments, never writes them. Small integers are passed
     * from the value's low bytes once their range is checked. */
    for (size_t i = 0; i < n; i++)
        av[i] = (void *)(uintptr_t)&args[i];
    if (fn->convert_args) {
        int rc = convert_args(fn, args, slots, av);
        if (CAPFFI__UNLIKELY(rc))
            return failed(fn, rc);
    }
    if (CAPFFI__UNLIKELY(careful))
        return call_careful(fn, args, av, ret);
    union rbuf r;
    invoke(fn, &r, av);
    if (ret)
        capffi__value_load(ret, fn->ret_op, &r);
    return CAPFFI_OK;
}

/* call_raw with large struct arguments, capturing errno, lending the host,
 * or with a NULL ret or args: kept out of the common path so that path
 * needs no frame. */
static int
raw_careful(capffi_fn *fn, void **args, void *ret, bool held)
{
    union rbuf scratch;
    void *av[CAPFFI_MAX_ARGS];
    if (fn->objs && !held)
        return capffi__fail(fn->call.ctx, CAPFFI_ETYPE,
                            "capffi_fn_call_raw passes raw values: a "
                            "signature with *NAME or out is called with "
                            "capffi_fn_call");
    if (!args && fn->sig.nargs)
        return capffi__fail(fn->call.ctx, CAPFFI_EINVAL, "args is NULL");
    if (!ret && fn->ret_struct)
        return capffi__fail(fn->call.ctx, CAPFFI_EINVAL,
                            "a struct result needs memory for %zu bytes",
                            fn->sig.ret->size);
    if (!ret)
        ret = &scratch; /* libffi before 3.7 needs somewhere to write */
    if (fn->big_struct_args && !fn->abi.shape) {
        /* libffi 3.4 rewrites avalue[i] for structs over 16 bytes to point
         * into its own frame: give it a copy, keep the caller's array. */
        for (size_t i = 0; i < fn->sig.nargs; i++)
            av[i] = args[i];
        args = av;
    }
    native_call(fn, ret, args);
    return CAPFFI_OK;
}

/* raw_careful, and the fn.call event when the call is audited. */
static __attribute__((noinline)) int
call_raw_careful(capffi_fn *fn, void **args, void *ret, bool held)
{
    int rc = raw_careful(fn, args, ret, held);
    if (atomic_load_explicit(&fn->raw_slow, memory_order_relaxed) &
        CAPFFI__SLOW_AUDITED)
        audit_call(fn, rc);
    return rc;
}

/*
 * capffi_fn_call_raw of a scalar signature through its stub: each argument
 * loaded from its native width into a value (small integers extended),
 * the result written as ffi_call writes it (integers widened to 8 bytes,
 * f32 in 4, f64 in 8).
 */
static int
raw_stub(const capffi_fn *fn, void **args, void *ret)
{
    capffi_value v[CAPFFI__ABI_GP + CAPFFI__ABI_SSE];
    for (size_t i = 0; i < fn->nargs; i++)
        capffi__value_load(&v[i], fn->stub.vop[i], args[i]);
    uint64_t r = fn->stub.call(fn->call.code, v, fn->stub.ix);
    if (fn->ret_op != CAPFFI__V_VOID) {
        capffi_value rv;
        capffi__value_load(&rv, fn->ret_op, &r);
        memcpy(ret, &rv, fn->ret_op == CAPFFI__V_F32 ? 4 : 8);
    }
    return CAPFFI_OK;
}

int
capffi_fn_call_raw(capffi_fn *fn, void **args, void *ret)
{
    int state = fn ? atomic_load_explicit(fn->call.state, memory_order_acquire)
                   : CAPFFI__REVOKED;
    if (CAPFFI__UNLIKELY(!fn || state != CAPFFI__LIVE))
        return dead(fn, state);
    if (CAPFFI__UNLIKELY(
            atomic_load_explicit(&fn->raw_slow, memory_order_relaxed) || !ret ||
            !args))
        return call_raw_careful(fn, args, ret, false);
    if (fn->stub.call)
        return raw_stub(fn, args, ret);
#if CAPFFI__ABI_SYSV64
    if (fn->abi.shape)
        return capffi__abi_call(&fn->abi, fn->call.code, ret, args);
#endif
    ffi_call(&fn->cif, FFI_FN(fn->call.code), ret, args);
    return CAPFFI_OK;
}

int
capffi__fn_call_held(capffi_fn *fn, void **args, void *ret)
{
    int state = atomic_load_explicit(fn->call.state, memory_order_acquire);
    if (CAPFFI__UNLIKELY(state != CAPFFI__LIVE))
        return dead(fn, state);
    return call_raw_careful(fn, args, ret, true);
}
