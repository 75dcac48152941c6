/*
 * buf.c - host buffers handed to native calls.
 */
#include "buf.h"

#include <string.h>

#include "ctx.h"

#define BUF_MAGIC 0x63617062u /* "capb" */

int
capffi__buf_arg(capffi_ctx *ctx, const capffi_buf *buf, void **out)
{
    if (!buf) {
        *out = NULL;
        return CAPFFI_OK;
    }
    if (buf->magic != BUF_MAGIC)
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "a buffer argument is not a live capffi_buf");
    *out = buf->len ? buf->data : NULL;
    return CAPFFI_OK;
}

static int
make(capffi_buf **out, capffi_ctx *ctx, void *mem, size_t len, bool owned,
     capffi_release_fn release, void *payload)
{
    capffi_buf *b = capffi__calloc(1, sizeof *b);
    if (!b)
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    b->magic = BUF_MAGIC;
    b->ctx = ctx;
    b->data = mem;
    b->len = len;
    b->owned = owned;
    b->release = release;
    b->payload = payload;
    b->next = ctx->bufs;
    if (ctx->bufs)
        ctx->bufs->prev = b;
    ctx->bufs = b;
    *out = b;
    return CAPFFI_OK;
}

int
capffi_buf_new(capffi_buf **out, capffi_ctx *ctx, size_t len)
{
    if (out)
        *out = NULL;
    if (!ctx || !out)
        return capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL",
                            ctx ? "out" : "ctx");
    if (!capffi__ctx_on_owner(ctx))
        return capffi__fail(ctx, CAPFFI_ETHREAD,
                            "capffi_buf_new called off the owner thread");
    void *mem = capffi__calloc(1, len ? len : 1);
    if (!mem)
        return capffi__fail(ctx, CAPFFI_ENOMEM, "cannot allocate %zu bytes",
                            len);
    int rc = make(out, ctx, mem, len, true, NULL, NULL);
    if (rc)
        capffi__free(mem);
    return rc;
}

int
capffi_buf_wrap(capffi_buf **out, capffi_ctx *ctx, void *mem, size_t len,
                capffi_release_fn release, void *payload)
{
    if (out)
        *out = NULL;
    if (!ctx || !out)
        return capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL",
                            ctx ? "out" : "ctx");
    if (!capffi__ctx_on_owner(ctx))
        return capffi__fail(ctx, CAPFFI_ETHREAD,
                            "capffi_buf_wrap called off the owner thread");
    if (!mem && len)
        return capffi__fail(ctx, CAPFFI_EINVAL, "mem is NULL but len is %zu",
                            len);
    return make(out, ctx, mem, len, false, release, payload);
}

int
capffi_buf_data(void **ptr, size_t *len, capffi_buf *buf)
{
    if (ptr)
        *ptr = NULL;
    if (len)
        *len = 0;
    if (!buf || buf->magic != BUF_MAGIC)
        return capffi__fail(buf ? buf->ctx : NULL, CAPFFI_EINVAL,
                            "not a live capffi_buf");
    if (ptr)
        *ptr = buf->data;
    if (len)
        *len = buf->len;
    return CAPFFI_OK;
}

static void
release(capffi_buf *b)
{
    if (b->owned)
        capffi__free(b->data);
    else if (b->release)
        b->release(b->payload, b->data);
    b->magic = 0;
    capffi__free(b);
}

void
capffi_buf_free(capffi_buf *buf)
{
    if (!buf)
        return;
    capffi_ctx *ctx = buf->ctx;
    if (buf->prev)
        buf->prev->next = buf->next;
    else
        ctx->bufs = buf->next;
    if (buf->next)
        buf->next->prev = buf->prev;
    release(buf);
}

void
capffi__buf_free_all(capffi_ctx *ctx)
{
    capffi_buf *b = ctx->bufs;
    while (b) {
        capffi_buf *next = b->next;
        release(b);
        b = next;
    }
    ctx->bufs = NULL;
}
