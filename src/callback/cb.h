/*
 * cb.h - the callbacks the context keeps (cb.c), which it closes and frees
 * with itself.
 */
#ifndef CAPFFI_SRC_CB_H
#define CAPFFI_SRC_CB_H

#include "callback/invoke.h"
#include "callback/loop.h"

/* Live thread-safe callbacks with references (capffi_ctx_keepalive). */
CAPFFI__HIDDEN size_t capffi__cb_keepalive(const capffi_ctx *ctx);

/* Set or clear the context's audit bit of every callback (owner thread):
 * capffi_audit_calls. */
CAPFFI__HIDDEN void capffi__cb_audit_all(capffi_ctx *ctx, bool on);

/* Make every callback fail closed, without events (capffi_ctx_free, before
 * libraries are unloaded); then free them all with their closures. */
CAPFFI__HIDDEN void capffi__cb_close_all(capffi_ctx *ctx);
CAPFFI__HIDDEN void capffi__cb_free_all(capffi_ctx *ctx);

/* The context as far as callbacks (perm/audit.h): never freed before
 * the context. */
struct capffi__ctx_cb {
    struct capffi__ctx_loop up;
    struct capffi__list cbs;
};

static inline struct capffi__ctx_cb *
capffi__cbs_of(const capffi_ctx *ctx)
{
    return (struct capffi__ctx_cb *)(uintptr_t)ctx;
}

#endif
