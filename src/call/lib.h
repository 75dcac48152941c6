/*
 * lib.h - the libraries the context keeps (lib.c).
 */
#ifndef CAPFFI_SRC_CALL_LIB_H
#define CAPFFI_SRC_CALL_LIB_H

#include "base/recycle.h"
#include "call/fn.h"

/* The context as far as libraries (perm/audit.h): the open ones and the
 * closed ones something still refers to, the dead records waiting for
 * reuse, and the canonical paths, interned so that capffi_lib_path stays
 * valid until the context is freed. */
struct capffi__ctx_lib {
    struct capffi__ctx_fn up;
    struct capffi__list libs;
    struct capffi__recycle dead;
    struct capffi__lib_path *paths;
};

static inline struct capffi__ctx_lib *
capffi__libs_of(const capffi_ctx *ctx)
{
    return (struct capffi__ctx_lib *)(uintptr_t)ctx;
}

/* Free every library of the context (capffi_ctx_free). */
CAPFFI__HIDDEN void capffi__lib_free_all(capffi_ctx *ctx);

#endif
