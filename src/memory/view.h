/*
 * view.h - the views the context keeps (view.c).
 */
#ifndef CAPFFI_SRC_MEMORY_VIEW_H
#define CAPFFI_SRC_MEMORY_VIEW_H

#include "memory/buf.h"

/* The context as far as views (perm/audit.h). */
struct capffi__ctx_view {
    struct capffi__ctx_buf up;
    struct capffi__list views;
    struct capffi__recycle dead; /* freed views, to recognise */
};

static inline struct capffi__ctx_view *
capffi__views_of(const capffi_ctx *ctx)
{
    return (struct capffi__ctx_view *)(uintptr_t)ctx;
}

/* Free every view of the context (capffi_ctx_free). */
CAPFFI__HIDDEN void capffi__view_free_all(capffi_ctx *ctx);

#endif
