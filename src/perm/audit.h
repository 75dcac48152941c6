/*
 * audit.h - the audit trail's state and the emit calls every module
 * uses (audit.c).
 */
#ifndef CAPFFI_SRC_AUDIT_H
#define CAPFFI_SRC_AUDIT_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/internal.h"
#include "base/owner.h"

struct capffi__rec; /* a recorded event */

/* The recorder's classes, lowest kept least (audit.c, record). */
enum { CAPFFI__TIER_BULK, CAPFFI__TIER_DENIAL, CAPFFI__TIER_CONTROL };
#define CAPFFI__TIERS 3

/* How many objects' refusals can be coalesced at once. */
#define CAPFFI__AUDIT_COALESCE 32

/*
 * The refusals of one object with one op and status, coalesced into at most
 * one event per window (capffi__audit_refuse). The strings are escaped
 * copies made when the window opened, so a flush never reads the object.
 */
struct capffi__coalesce {
    const void *object; /* NULL: the slot is free */
    capffi_op op;
    int status;
    capffi_reason reason;
    uint64_t token_id, parent_id;
    uint32_t rights;
    char label[CAPFFI_LABEL_MAX + 1];
    char *strings;    /* target NUL detail NUL; NULL when out of memory */
    int64_t start_ns; /* monotonic: when the window opened */
    uint64_t pending; /* refusals since the object's last event */
};

struct capffi__audit {
    pthread_mutex_t lock; /* serialises emission, the sink and the recorder */
    capffi_audit_fn sink;
    void *payload;
    /*
     * The recorder: cap slots, each either free or in one class's list
     * (oldest first, linked by index). order lists the recorded slots by
     * seq for the readers; it is rebuilt when a record made it stale.
     */
    struct capffi__rec *ring;
    size_t *order;
    bool order_stale;
    size_t cap, len, free;
    struct {
        size_t head, tail, len;
    } tier[CAPFFI__TIERS];
    uint64_t seq;
    uint64_t dropped;
    uint64_t dropped_op[CAPFFI_OP__COUNT];
    struct capffi__coalesce coalesce[CAPFFI__AUDIT_COALESCE];
    size_t n_pending;      /* slots whose pending count is not 0 */
    int64_t window_ns;     /* the coalescing window: one second */
    atomic_bool listening; /* sink or recorder set: emit has work */
    /* Call and invocation auditing (owner thread): calls is what is on,
     * the host's setting (capffi_audit_calls) and the bits held by parts
     * of the program (capffi_audit_calls_hold), counted per bit. */
    unsigned calls, calls_host;
    unsigned held_fn, held_cb;
};

CAPFFI__HIDDEN int capffi__audit_init(struct capffi__audit *a);
/* Deliver the refusals still coalesced, then free everything. */
CAPFFI__HIDDEN void capffi__audit_fini(struct capffi__audit *a);

/* Who an event is about. All fields may be zero/NULL. */
struct capffi__who {
    uint64_t token_id;
    uint64_t parent_id;
    const char *label;
};

/*
 * Emit one event. Cheap when there is neither sink nor recorder: the
 * detail is formatted only when someone listens. The target and the
 * detail are stored escaped (A3; capffi/audit.h says how). Never fails (a
 * recorder that cannot copy the strings stores them empty). Any thread.
 */
CAPFFI__HIDDEN void
capffi__audit_emit(capffi_ctx *ctx, capffi_op op, int status,
                   capffi_reason reason, const struct capffi__who *who,
                   uint32_t rights, const char *target, const char *fmt, ...)
    CAPFFI__PRINTF(8, 9);

/*
 * Emit the refusal of an operation on a bound object (a function called
 * after its library closed or its token was revoked, a closed callback
 * invoked by native code), coalesced (A2): the first refusal of `object`
 * with this op and status is an event at once; the ones that follow within
 * the window are counted, and the count goes out in one event (its `count`
 * field) at the object's next refusal after the window, when any event is
 * emitted after the window, at capffi_audit_flush, or when the context is
 * freed. So a loop of refusals makes at most one event per object per
 * second, and none is lost. Cold, any thread; takes the audit lock. object
 * is only compared, never read.
 */
CAPFFI__HIDDEN void capffi__audit_refuse(
    capffi_ctx *ctx, const void *object, capffi_op op, int status,
    capffi_reason reason, const struct capffi__who *who, uint32_t rights,
    const char *target, const char *fmt, ...) CAPFFI__PRINTF(9, 10);

/*
 * An object is being freed: deliver the refusals counted for it and free
 * its slots, so that a new object at the same address starts afresh.
 */
CAPFFI__HIDDEN void capffi__audit_forget(capffi_ctx *ctx, const void *object);

/* Refuse an owner-thread-only call made on another thread: message, audit
 * event (reason THREAD) and CAPFFI_ETHREAD. fn names the function. */
CAPFFI__HIDDEN int capffi__wrong_thread(capffi_ctx *ctx, capffi_op op,
                                        const char *fn);

/*
 * The entry check of an audited owner-thread function: ctx is given
 * (CAPFFI_EINVAL, not audited: there is no trail to write to) and this
 * thread may act for it (capffi__wrong_thread). fn names the function.
 */
CAPFFI__HIDDEN int capffi__entry(capffi_ctx *ctx, capffi_op op, const char *fn);

/* True when the in-memory recorder is on (capffi_audit_record). */
CAPFFI__HIDDEN bool capffi__audit_recording(const capffi_ctx *ctx);

/* Tests: set the coalescing window (nanoseconds, > 0). */
CAPFFI__HIDDEN void capffi__audit_set_window(capffi_ctx *ctx, int64_t ns);

/*
 * The context as far as the audit trail: each module's header extends the
 * one below with its own part, and struct capffi_ctx (ctx.h) is the last,
 * so a module reaches its part without the whole context.
 */
struct capffi__ctx_audit {
    struct capffi__ctx_base base;
    struct capffi__audit audit;
};

static inline struct capffi__ctx_audit *
capffi__audit_of(const capffi_ctx *ctx)
{
    return (struct capffi__ctx_audit *)(uintptr_t)ctx;
}

/* True when an event would be delivered somewhere. Any thread. */
static inline bool
capffi__audit_on(const capffi_ctx *ctx)
{
    return atomic_load_explicit(&capffi__audit_of(ctx)->audit.listening,
                                memory_order_relaxed);
}

#endif
