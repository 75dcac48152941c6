/*
 * ptr.c - pointer-of and pointers from integers, both gated by
 * CAPFFI_RIGHT_POINTER and audited.
 */
#include <inttypes.h>

#include "memory/buf.h"
#include "perm/token.h"

int
capffi_ptr_of(void **out, capffi_ctx *ctx, const capffi_token *tok,
              capffi_buf *buf)
{
    if (out)
        *out = NULL;
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    if (!capffi__ctx_on_owner(ctx))
        return capffi__wrong_thread(ctx, CAPFFI_OP_PTR_OF, "capffi_ptr_of");
    char target[48] = "";
    if (buf && buf->magic == CAPFFI__BUF_LIVE)
        snprintf(target, sizeof target, "buffer of %zu bytes", buf->len);
    struct capffi__tok *t = NULL;
    int rc = capffi__token_use(ctx, tok, CAPFFI_RIGHT_POINTER, NULL,
                               CAPFFI_OP_PTR_OF, target, &t);
    if (rc)
        return rc; /* the denial is audited */
    if (!out)
        rc = capffi__fail(ctx, CAPFFI_EINVAL, "out is NULL");
    else if (!(rc = capffi__buf_usable(buf, "capffi_ptr_of")) &&
             buf->ctx != ctx)
        rc = capffi__fail(ctx, CAPFFI_EINVAL,
                          "capffi_ptr_of: the buffer belongs to another "
                          "context");
    if (!rc) {
        capffi__buf_pin(buf);
        *out = buf->len ? buf->data : NULL;
    }
    struct capffi__who who = capffi__token_who(t);
    capffi__audit_emit(ctx, CAPFFI_OP_PTR_OF, rc,
                       rc ? CAPFFI_REASON_INVALID : CAPFFI_REASON_NONE, &who,
                       CAPFFI_RIGHT_POINTER, target, "%s",
                       rc ? capffi_ctx_errmsg(ctx) : "pinned");
    return rc;
}

int
capffi_ptr_from_addr(void **out, capffi_ctx *ctx, const capffi_token *tok,
                     uintptr_t addr)
{
    if (out)
        *out = NULL;
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    if (!capffi__ctx_on_owner(ctx))
        return capffi__wrong_thread(ctx, CAPFFI_OP_PTR_FROM_ADDR,
                                    "capffi_ptr_from_addr");
    char target[32];
    snprintf(target, sizeof target, "0x%" PRIxPTR, addr);
    struct capffi__tok *t = NULL;
    int rc = capffi__token_use(ctx, tok, CAPFFI_RIGHT_POINTER, NULL,
                               CAPFFI_OP_PTR_FROM_ADDR, target, &t);
    if (rc)
        return rc;
    if (!out)
        rc = capffi__fail(ctx, CAPFFI_EINVAL, "out is NULL");
    else
        *out = (void *)addr;
    struct capffi__who who = capffi__token_who(t);
    capffi__audit_emit(ctx, CAPFFI_OP_PTR_FROM_ADDR, rc,
                       rc ? CAPFFI_REASON_INVALID : CAPFFI_REASON_NONE, &who,
                       CAPFFI_RIGHT_POINTER, target, "%s",
                       rc ? capffi_ctx_errmsg(ctx) : "allowed");
    return rc;
}
