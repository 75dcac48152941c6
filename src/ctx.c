/*
 * ctx.c - creating and freeing contexts, and the audit switch that
 * reaches every function and callback of one (capffi_audit_calls).
 */
#include "ctx.h"

#include <limits.h>
#include <sodium.h>
#include <stdio.h>

#include "memory/buf.h"
#include "callback/cb.h"
#include "call/fn.h"
#include "call/job.h"
#include "types/sig.h"
#include "perm/token.h"

int
capffi_ctx_new(capffi_ctx **out, const capffi_options *opts)
{
    if (out)
        *out = NULL;
    if (!out)
        return capffi__fail(NULL, CAPFFI_EINVAL, "out is NULL");
    if (sodium_init() < 0)
        return capffi__fail(NULL, CAPFFI_ENOMEM,
                            "libsodium could not be initialised");

    capffi_ctx *ctx = capffi__calloc(1, sizeof *ctx);
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_ENOMEM, "out of memory");
    /* Each layer's part, bottom up; the owner first: failure messages are
     * written for it. */
    if (capffi__owner_init(&capffi__base(ctx)->owner,
                           opts && (opts->flags & CAPFFI_OPT_LEND_OWNER))) {
        capffi__free(ctx);
        return capffi__fail(NULL, CAPFFI_ENOMEM, "out of memory");
    }
    bool audit = false, tokens = false, jobs = false;
    int rc = CAPFFI_ENOMEM;
    if (capffi__audit_init(&capffi__audit_of(ctx)->audit))
        goto fail;
    audit = true;
    if ((rc = capffi__token_init(ctx)))
        goto fail;
    tokens = true;
    if ((rc = capffi__perm_init(ctx, &capffi__perm_of(ctx)->perm, opts)))
        goto fail;
    if ((rc = capffi__job_init(ctx, opts)))
        goto fail;
    jobs = true;
    if ((rc = capffi__loop_init(ctx)))
        goto fail;
    *out = ctx;
    return CAPFFI_OK;

fail:;
    /* The message was written to the context (this is the owner thread);
     * move it where capffi_ctx_errmsg(NULL) finds it. */
    char msg[CAPFFI__MSG_MAX];
    snprintf(msg, sizeof msg, "%s",
             capffi__base(ctx)->errmsg[0] ? capffi__base(ctx)->errmsg
                                          : "out of memory");
    if (jobs)
        capffi__job_fini(ctx);
    capffi__perm_fini(&capffi__perm_of(ctx)->perm); /* also a partial one */
    if (tokens)
        capffi__token_fini(ctx);
    if (audit)
        capffi__audit_fini(&capffi__audit_of(ctx)->audit);
    capffi__owner_fini(&capffi__base(ctx)->owner);
    capffi__free(ctx);
    return capffi__fail(NULL, rc, "%s", msg);
}

void
capffi_ctx_free(capffi_ctx *ctx)
{
    if (!ctx)
        return;
    capffi__loop_shutdown(ctx);
    /* No job runs or ends after this, and no handler runs. */
    capffi__job_fini(ctx);
    /* Closed first: a library's destructor that calls one back while it is
     * unloaded below gets the default result, from mapped code. */
    capffi__cb_close_all(ctx);
    /* Owned instances are released while their libraries are loaded. */
    capffi__obj_free_all(ctx);
    capffi__view_free_all(ctx);
    capffi__fn_free_all(ctx);
    capffi__lib_free_all(ctx);
    capffi__buf_free_all(ctx);
    capffi__cb_free_all(ctx);
    /* Then each layer's part, top down. */
    capffi__type_free_all(ctx);
    capffi__perm_fini(&capffi__perm_of(ctx)->perm);
    capffi__token_fini(ctx);
    capffi__audit_fini(&capffi__audit_of(ctx)->audit);
    capffi__owner_fini(&capffi__base(ctx)->owner);
    capffi__free(ctx);
}

size_t
capffi_ctx_keepalive(const capffi_ctx *ctx)
{
    if (!ctx || !capffi__ctx_on_owner(ctx))
        return 0;
    return capffi__cb_keepalive(ctx) + capffi__job_unended(ctx);
}

/* Make what is audited the host's setting and every held bit, for every
 * function and callback of the context. Owner thread. */
static void
calls_apply(capffi_ctx *ctx)
{
    struct capffi__audit *a = &capffi__audit_of(ctx)->audit;
    a->calls = a->calls_host | (a->held_fn ? CAPFFI_AUDIT_FN_CALLS : 0) |
               (a->held_cb ? CAPFFI_AUDIT_CB_INVOKES : 0);
    capffi__fn_audit_all(ctx, a->calls & CAPFFI_AUDIT_FN_CALLS);
    capffi__cb_audit_all(ctx, a->calls & CAPFFI_AUDIT_CB_INVOKES);
}

#define CALLS_ALL (CAPFFI_AUDIT_FN_CALLS | CAPFFI_AUDIT_CB_INVOKES)

/* The entry check of the call-audit switches. */
static int
calls_check(capffi_ctx *ctx, unsigned what, const char *fn)
{
    int rc = capffi__ctx_owner_check(ctx, fn);
    if (rc)
        return rc;
    if (what & ~CALLS_ALL)
        return capffi__fail(ctx, CAPFFI_EINVAL, "%s: unknown bits 0x%x", fn,
                            what & ~CALLS_ALL);
    return CAPFFI_OK;
}

int
capffi_audit_calls(capffi_ctx *ctx, unsigned what)
{
    int rc = calls_check(ctx, what, "capffi_audit_calls");
    if (rc)
        return rc;
    capffi__audit_of(ctx)->audit.calls_host = what;
    calls_apply(ctx);
    return CAPFFI_OK;
}

/* Count one hold (step 1) or release (step -1) of each bit in what; the
 * counts never pass their ends, and nothing changes when one would. */
static int
calls_count(capffi_ctx *ctx, unsigned what, int step, const char *fn)
{
    int rc = calls_check(ctx, what, fn);
    if (rc)
        return rc;
    struct capffi__audit *a = &capffi__audit_of(ctx)->audit;
    unsigned *count[2] = { &a->held_fn, &a->held_cb };
    const unsigned bit[2] = { CAPFFI_AUDIT_FN_CALLS, CAPFFI_AUDIT_CB_INVOKES };
    const unsigned end = step > 0 ? UINT_MAX : 0;
    for (int b = 0; b < 2; b++)
        if ((what & bit[b]) && *count[b] == end)
            return capffi__fail(ctx, CAPFFI_EINVAL, "%s: 0x%x %s", fn, bit[b],
                                step > 0 ? "is held too often" : "is not held");
    for (int b = 0; b < 2; b++)
        if (what & bit[b])
            *count[b] += (unsigned)step;
    calls_apply(ctx);
    return CAPFFI_OK;
}

int
capffi_audit_calls_hold(capffi_ctx *ctx, unsigned what)
{
    return calls_count(ctx, what, 1, "capffi_audit_calls_hold");
}

int
capffi_audit_calls_release(capffi_ctx *ctx, unsigned what)
{
    return calls_count(ctx, what, -1, "capffi_audit_calls_release");
}

unsigned
capffi_audit_calls_get(const capffi_ctx *ctx)
{
    return ctx ? capffi__audit_of(ctx)->audit.calls : 0;
}
