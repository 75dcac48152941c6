/*
 * ctx.h - the context struct, shared by the modules that hang off it.
 */
#ifndef CAPFFI_SRC_CTX_H
#define CAPFFI_SRC_CTX_H

#include <pthread.h>

#include "perm/audit.h"
#include "memory/buf.h"
#include "base/owner.h"
#include "callback/loop.h"
#include "perm/perm.h"

struct capffi__tok;
struct capffi__named;

struct capffi_ctx {
    struct capffi__ctx_base base; /* first: base/owner.h */
    uint64_t serial;              /* process-unique, never reused */
    uint8_t instance[16];         /* random per context */
    unsigned char *secret; /* token MAC key: guarded, no-access at rest */

    struct capffi__perm perm;

    /*
     * The token table: written on the owner thread, read by revocation on
     * any thread, so both take tok_lock. Entries live until capffi_ctx_free
     * (resources keep pointers to their revocation flags).
     */
    pthread_mutex_t tok_lock;
    struct capffi__tok *tokens;
    size_t n_tokens;

    struct capffi__audit audit;

    /* Libraries and functions made in this context (lib.c, fn.c), freed
     * with it: a closed library's code stays mapped until then. */
    struct capffi_lib *libs;
    struct capffi_fn *fns;
    struct capffi_buf *bufs;
    struct capffi__bufq bufq; /* dead buffers, to recognise a second free */
    struct capffi_view *views;
    struct capffi_cb *cbs; /* cb.c: never freed before the context */

    struct capffi__loop loop; /* loop.c: work for the owner thread */

    /* Named struct types (type.c), owner thread only. */
    struct capffi__named *types;
    struct capffi__arena type_arena;
};

/* Free every library of the context (lib.c). */
CAPFFI__HIDDEN void capffi__lib_free_all(capffi_ctx *ctx);
/* Free every view of the context (view.c). */
CAPFFI__HIDDEN void capffi__view_free_all(capffi_ctx *ctx);

#endif
