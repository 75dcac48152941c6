/*
 * owner.h - the owner-thread rule and the host baton (owner.c), and the
 * part of every context that the base layer reads.
 *
 * A context and what was made from it belong to its owner thread. The
 * baton says which thread may use the host (run handlers, call
 * owner-thread functions) at a given moment: the owner thread, except
 * while the owner is inside a native call of a context made with
 * CAPFFI_OPT_LEND_OWNER. Then the baton is free, and a thread that
 * invokes a thread-safe callback may take it, run the handler on its own
 * stack and give it back; the owner takes it back before it returns to
 * host code, waiting for a lent handler to finish if one runs. Such a
 * thread acts for the owner meanwhile, and the owner-thread rule lets it.
 */
#ifndef CAPFFI_SRC_BASE_OWNER_H
#define CAPFFI_SRC_BASE_OWNER_H

#include <pthread.h>

#include "base/internal.h"

struct capffi__owner {
    pthread_t thread;
    const void *key; /* capffi__thread_key() of the owner thread */
    bool lend;       /* CAPFFI_OPT_LEND_OWNER (immutable) */
    /*
     * Guards held; the owner loop (callback/loop.c) guards its queue with
     * the same lock and waits on the same condition, broadcast when a
     * request is done, the baton is free, or the last waiter left a
     * dying loop.
     */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool held; /* the baton is taken */
    /* An eventfd, readable while the owner has work waiting (a queued
     * invocation, a finished job): capffi_ctx_fd. */
    int doorbell;
};

/*
 * What the base layer needs of a context: the first member of struct
 * capffi_ctx (ctx.c asserts it), so a context pointer is a pointer to it
 * and no layer needs the whole struct to reach its owner or message.
 */
struct capffi__ctx_base {
    struct capffi__owner owner;
    char errmsg[CAPFFI__MSG_MAX];
};

static inline struct capffi__ctx_base *
capffi__base(const capffi_ctx *ctx)
{
    return (struct capffi__ctx_base *)(uintptr_t)ctx;
}

/*
 * A key for the calling thread: the address of a thread-local, distinct
 * for every live thread and one instruction to compute, so the callback
 * path can tell the owner thread without calling pthread_self.
 */
CAPFFI__HIDDEN extern _Thread_local char capffi__thread_anchor CAPFFI__TLS_FAST;

static inline const void *
capffi__thread_key(void)
{
    return &capffi__thread_anchor;
}

/* The calling thread becomes the owner; the baton is held. CAPFFI_ENOMEM
 * (no message: the context cannot hold one yet). */
CAPFFI__HIDDEN int capffi__owner_init(struct capffi__owner *o, bool lend);
CAPFFI__HIDDEN void capffi__owner_fini(struct capffi__owner *o);

/* Ring the doorbell: capffi_ctx_fd becomes readable. Any thread; takes no
 * lock. */
CAPFFI__HIDDEN void capffi__owner_wake(const capffi_ctx *ctx);
/* Reset the doorbell (owner thread); true if it had rung. */
CAPFFI__HIDDEN bool capffi__owner_drain(const capffi_ctx *ctx);

/*
 * A frame of this thread's use of a context's baton, on the stack: pushed
 * when it lends the baton around a native call (held false) and when a
 * thread other than the owner runs a handler with it (held true).
 */
struct capffi__hold {
    const capffi_ctx *ctx;
    bool held;
    struct capffi__hold *up;
};

/* True on a thread other than the owner that holds ctx's baton, or lent
 * it from inside a handler: it acts for the owner thread. */
CAPFFI__HIDDEN bool capffi__owner_acting(const capffi_ctx *ctx);

/* True when this thread lent ctx's baton and has not taken it back. */
CAPFFI__HIDDEN bool capffi__owner_released(const capffi_ctx *ctx);

/* True on the context's owner thread, or on a thread that acts for it
 * while the owner lends the host (CAPFFI_OPT_LEND_OWNER). */
static inline bool
capffi__ctx_on_owner(const capffi_ctx *ctx)
{
    const struct capffi__owner *o = &capffi__base(ctx)->owner;
    /* The key is a thread-local's address: one compare, no call. */
    return o->key == capffi__thread_key() ||
           (o->lend && capffi__owner_acting(ctx));
}

/*
 * The entry check of an owner-thread function that is not audited: ctx
 * is given (CAPFFI_EINVAL) and this thread may act for it (CAPFFI_ETHREAD,
 * the message naming fn). Audited operations use capffi__wrong_thread
 * (perm/audit.h). In error.c, with the messages it writes.
 */
CAPFFI__HIDDEN int capffi__ctx_owner_check(capffi_ctx *ctx, const char *fn);

/*
 * Around a native call: lend returns true (and pushes h) when this thread
 * holds the baton and gave it up; reclaim takes it back and pops h.
 */
CAPFFI__HIDDEN bool capffi__owner_lend(capffi_ctx *ctx, struct capffi__hold *h);
CAPFFI__HIDDEN void capffi__owner_reclaim(capffi_ctx *ctx,
                                          struct capffi__hold *h);

/* Around a handler on a thread that lent the baton: take it (waiting for a
 * lent handler elsewhere to finish), push h; then pop h and lend again. */
CAPFFI__HIDDEN void capffi__owner_enter(capffi_ctx *ctx,
                                        struct capffi__hold *h);
CAPFFI__HIDDEN void capffi__owner_exit(capffi_ctx *ctx, struct capffi__hold *h);

/* Push or pop a frame of this thread by hand: the owner loop, which takes
 * the free baton under its own wait, runs a request with it. */
CAPFFI__HIDDEN void capffi__owner_push(const capffi_ctx *ctx,
                                       struct capffi__hold *h, bool held);
CAPFFI__HIDDEN void capffi__owner_pop(struct capffi__hold *h);

#endif
