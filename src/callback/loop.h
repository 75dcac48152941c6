/*
 * loop.h - the owner thread's loop (loop.c): work handed to the owner
 * thread by other threads, the descriptor that says some is queued, and
 * the host baton behind CAPFFI_OPT_LEND_OWNER.
 *
 * The baton: at any moment one thread may use the host (run handlers, call
 * owner-thread functions). It is the owner thread, except while the owner
 * is inside a native call of a context made with CAPFFI_OPT_LEND_OWNER:
 * then the baton is free, and a thread that invokes a thread-safe callback
 * may take it, run the handler on its own stack and give it back. The
 * owner takes it back before it returns to host code, waiting for a lent
 * handler to finish if one runs.
 */
#ifndef CAPFFI_SRC_LOOP_H
#define CAPFFI_SRC_LOOP_H

#include <pthread.h>

#include "base/internal.h"

/* A piece of work for the owner thread, on the submitting thread's stack. */
struct capffi__req {
    void (*run)(struct capffi__req *r); /* on whichever thread holds the host */
    int state;                          /* enum below, under the loop lock */
    bool canceled;                      /* the context was freed first */
    struct capffi__req *next;
};

enum { CAPFFI__REQ_QUEUED, CAPFFI__REQ_RUNNING, CAPFFI__REQ_DONE };

struct capffi__loop {
    pthread_mutex_t lock;
    pthread_cond_t cond;   /* broadcast: a request is done, the baton is free,
                              the last waiter left a dying loop */
    int fd;                /* eventfd: readable once something is queued */
    bool lend;             /* CAPFFI_OPT_LEND_OWNER (immutable) */
    const void *owner_key; /* capffi__thread_key() of the owner thread */
    bool held;             /* the baton is taken */
    bool dying;            /* capffi_ctx_free has begun */
    unsigned inside;       /* other threads inside a callback of the context */
    size_t queued;
    struct capffi__req *head, *tail;
};

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

CAPFFI__HIDDEN int capffi__loop_init(capffi_ctx *ctx, bool lend);
/* Refuse new work, cancel what is queued, and wait until no other thread
 * is inside a callback of the context (start of capffi_ctx_free). */
CAPFFI__HIDDEN void capffi__loop_shutdown(capffi_ctx *ctx);
CAPFFI__HIDDEN void capffi__loop_fini(capffi_ctx *ctx);

/* Make the descriptor readable. Any thread; takes no lock. */
CAPFFI__HIDDEN void capffi__loop_wake(capffi_ctx *ctx);

/*
 * Bracket everything a thread other than the owner does in a callback of
 * ctx, so that capffi_ctx_free waits for it. join returns true when the
 * context is being freed (the invocation must then fail closed).
 */
CAPFFI__HIDDEN bool capffi__loop_join(capffi_ctx *ctx);
CAPFFI__HIDDEN void capffi__loop_leave(capffi_ctx *ctx);

/*
 * Run r on the host from a thread that does not hold it (between join and
 * leave): here, if the baton is lent, else queued to the owner thread,
 * waiting until it has run. timeout_ms > 0 bounds the wait for the start.
 * CAPFFI_OK when r->run ran; CAPFFI_ETIMEDOUT or CAPFFI_ECANCELED when it
 * never will.
 */
CAPFFI__HIDDEN int capffi__loop_submit(capffi_ctx *ctx, struct capffi__req *r,
                                       int timeout_ms);

/* True on a thread other than the owner that holds ctx's baton, or lent
 * it from inside a handler: it acts for the owner thread. */
CAPFFI__HIDDEN bool capffi__loop_acting(const capffi_ctx *ctx);

/* True when this thread lent ctx's baton and has not taken it back. */
CAPFFI__HIDDEN bool capffi__loop_released(const capffi_ctx *ctx);

/*
 * Around a native call: lend returns true (and pushes h) when this thread
 * holds the baton and gave it up; reclaim takes it back and pops h.
 */
CAPFFI__HIDDEN bool capffi__loop_lend(capffi_ctx *ctx, struct capffi__hold *h);
CAPFFI__HIDDEN void capffi__loop_reclaim(capffi_ctx *ctx,
                                         struct capffi__hold *h);

/* Around a handler on a thread that lent the baton: take it (waiting for a
 * lent handler elsewhere to finish), push h; then pop h and lend again. */
CAPFFI__HIDDEN void capffi__loop_enter(capffi_ctx *ctx, struct capffi__hold *h);
CAPFFI__HIDDEN void capffi__loop_exit(capffi_ctx *ctx, struct capffi__hold *h);

#endif
