/*
 * recycle.h - a context's dead handles of one kind (recycle.c). A freed
 * handle's struct is not given back to the allocator: it waits here with its
 * magic number saying dead, so that a second close or free of it is recognised,
 * and it is reused, oldest first, once more than CAPFFI__RECYCLE_KEEP wait.
 * Memory is bounded by the most handles of the kind alive at once, plus
 * the ones waiting; a stale handle is recognised until its struct is
 * handed out again, after at least CAPFFI__RECYCLE_KEEP others were freed.
 * Owner thread.
 */
#ifndef CAPFFI_SRC_BASE_RECYCLE_H
#define CAPFFI_SRC_BASE_RECYCLE_H

#include <stddef.h>

#include "base/internal.h"

#define CAPFFI__RECYCLE_KEEP 256

struct capffi__recycle {
    void **ring; /* the waiting structs, oldest at head */
    size_t cap, head, n;
};

/* A waiting struct to reuse (its contents are the dead handle's), or NULL
 * when no more than CAPFFI__RECYCLE_KEEP wait: then allocate a new one. */
CAPFFI__HIDDEN void *capffi__recycle_take(struct capffi__recycle *p);

/* Let rec wait. When the ring cannot grow, rec is freed at once: it is
 * then no longer recognised, and nothing else goes wrong. */
CAPFFI__HIDDEN void capffi__recycle_put(struct capffi__recycle *p, void *rec);

/* Free every waiting struct and the ring (capffi_ctx_free). */
CAPFFI__HIDDEN void capffi__recycle_fini(struct capffi__recycle *p);

#endif
