/*
 * handle.c - what the base layer knows of handles: turning a `function`
 * value (a capffi_fn or a capffi_cb) into the code native code calls.
 */
#include "base/handle.h"

#include <stdio.h>

/* Why a `function` value was refused (the uncommon path). */
static __attribute__((noinline, cold)) int
bad_handle(capffi_ctx *ctx, size_t arg, uint32_t magic, bool foreign, int state)
{
    char what[32];
    if (arg)
        snprintf(what, sizeof what, "argument %zu", arg);
    else
        snprintf(what, sizeof what, "result");
    const char *noun = magic == CAPFFI__CB_MAGIC ? "callback" : "function";
    if (magic != CAPFFI__CB_MAGIC && magic != CAPFFI__FN_MAGIC)
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "%s: a function value must be a capffi_cb, a "
                            "capffi_fn or NULL (make a raw address callable "
                            "with capffi_fn_from_ptr)",
                            what);
    if (foreign)
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "%s: the %s belongs to another context", what,
                            noun);
    if (state == CAPFFI__CLOSED)
        return capffi__fail(ctx, CAPFFI_ECLOSED, "%s: the %s is closed", what,
                            magic == CAPFFI__CB_MAGIC ? "callback"
                                                      : "function's library");
    return capffi__fail(ctx, CAPFFI_EREVOKED, "%s: the %s's token was revoked",
                        what, noun);
}

int
capffi__callable_code(capffi_ctx *ctx, const void *handle, size_t arg,
                      void **code)
{
    *code = NULL;
    if (!handle)
        return CAPFFI_OK;
    const struct capffi__callable *c = handle;
    uint32_t magic = c->magic;
    bool known = magic == CAPFFI__CB_MAGIC || magic == CAPFFI__FN_MAGIC;
    int state = known ? atomic_load_explicit(c->state, memory_order_acquire)
                      : CAPFFI__REVOKED;
    if (CAPFFI__UNLIKELY(!known || c->ctx != ctx || state != CAPFFI__LIVE))
        return bad_handle(ctx, arg, magic, known && c->ctx != ctx, state);
    /* Native code may keep the address and call it at any later time:
     * its library stays mapped until the context is freed. */
    if (c->src)
        atomic_store_explicit(&c->src->pinned, true, memory_order_relaxed);
    *code = c->code;
    return CAPFFI_OK;
}
