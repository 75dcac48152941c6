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
    int rc = capffi__entry(ctx, CAPFFI_OP_PTR_OF, "capffi_ptr_of");
    if (rc)
        return rc;
    char target[48] = "";
    if (buf && buf->magic == CAPFFI__BUF_LIVE)
        snprintf(target, sizeof target, "buffer of %zu bytes", buf->len);
    if ((rc = capffi__safe_refuse(ctx, CAPFFI_OP_PTR_OF, "capffi_ptr_of",
                                  target)))
        return rc;
    struct capffi__tok *t = NULL;
    rc = capffi__token_use(ctx, tok, CAPFFI_RIGHT_POINTER, NULL,
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
    capffi__token_audit(ctx, CAPFFI_OP_PTR_OF, rc, CAPFFI_REASON_INVALID, t,
                        CAPFFI_RIGHT_POINTER, target, "pinned");
    return rc;
}

int
capffi_ptr_from_addr(void **out, capffi_ctx *ctx, const capffi_token *tok,
                     uintptr_t addr)
{
    if (out)
        *out = NULL;
    int rc =
        capffi__entry(ctx, CAPFFI_OP_PTR_FROM_ADDR, "capffi_ptr_from_addr");
    if (rc)
        return rc;
    char target[32];
    snprintf(target, sizeof target, "0x%" PRIxPTR, addr);
    if ((rc = capffi__safe_refuse(ctx, CAPFFI_OP_PTR_FROM_ADDR,
                                  "capffi_ptr_from_addr", target)))
        return rc;
    struct capffi__tok *t = NULL;
    rc = capffi__token_use(ctx, tok, CAPFFI_RIGHT_POINTER, NULL,
                           CAPFFI_OP_PTR_FROM_ADDR, target, &t);
    if (rc)
        return rc;
    if (!out)
        rc = capffi__fail(ctx, CAPFFI_EINVAL, "out is NULL");
    else
        *out = (void *)addr;
    capffi__token_audit(ctx, CAPFFI_OP_PTR_FROM_ADDR, rc, CAPFFI_REASON_INVALID,
                        t, CAPFFI_RIGHT_POINTER, target, "allowed");
    return rc;
}
