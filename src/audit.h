/*
 * audit.h - the audit trail's state and the emit call every module
 * uses (audit.c).
 */
#ifndef CAPFFI_SRC_AUDIT_H
#define CAPFFI_SRC_AUDIT_H

#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"

struct capffi__rec; /* a recorded event */

struct capffi__audit {
    pthread_mutex_t lock; /* serialises emission, the sink and the recorder */
    capffi_audit_fn sink;
    void *payload;
    struct capffi__rec *ring;
    size_t cap, head, len;
    uint64_t seq;
    uint64_t dropped;
    atomic_bool listening; /* sink or recorder set: emit has work */
};

CAPFFI__HIDDEN int capffi__audit_init(struct capffi__audit *a);
CAPFFI__HIDDEN void capffi__audit_fini(struct capffi__audit *a);

/* Who an event is about. All fields may be zero/NULL. */
struct capffi__who {
    uint64_t token_id;
    uint64_t parent_id;
    const char *label;
};

/*
 * Emit one event. Cheap when there is neither sink nor recorder: the
 * detail is formatted only when someone listens. Never fails (a recorder
 * that cannot copy the strings stores them empty). Any thread.
 */
CAPFFI__HIDDEN void
capffi__audit_emit(capffi_ctx *ctx, capffi_op op, int status,
                   capffi_reason reason, const struct capffi__who *who,
                   uint32_t rights, const char *target, const char *fmt, ...)
    CAPFFI__PRINTF(8, 9);

/* True when an event would be delivered somewhere. */
CAPFFI__HIDDEN bool capffi__audit_on(const capffi_ctx *ctx);

#endif
