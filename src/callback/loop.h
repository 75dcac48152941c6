/*
 * loop.h - the owner thread's loop (loop.c): work handed to the owner
 * thread by other threads; the doorbell that says some is queued is the
 * owner's (base/owner.h).
 * Who may run that work is the host baton's business (base/owner.h): the
 * loop waits on the baton's lock and condition.
 */
#ifndef CAPFFI_SRC_LOOP_H
#define CAPFFI_SRC_LOOP_H

#include <pthread.h>

#include "base/owner.h"
#include "call/job.h"

/* A piece of work for the owner thread, on the submitting thread's stack. */
struct capffi__req {
    void (*run)(struct capffi__req *r); /* on whichever thread holds the host */
    int state;                          /* enum below, under the loop lock */
    bool canceled;                      /* the context was freed first */
    struct capffi__req *next;
};

enum { CAPFFI__REQ_QUEUED, CAPFFI__REQ_RUNNING, CAPFFI__REQ_DONE };

struct capffi__loop {
    int fd;          /* eventfd: readable once something is queued */
    bool dying;      /* capffi_ctx_free has begun */
    unsigned inside; /* other threads inside a callback of the context */
    size_t queued;
    struct capffi__req *head, *tail;
};

CAPFFI__HIDDEN int capffi__loop_init(capffi_ctx *ctx);
/* Refuse new work, cancel what is queued, and wait until no other thread
 * is inside a callback of the context (start of capffi_ctx_free). */
CAPFFI__HIDDEN void capffi__loop_shutdown(capffi_ctx *ctx);

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

/* The context as far as the owner loop (perm/audit.h). */
struct capffi__ctx_loop {
    struct capffi__ctx_job up;
    struct capffi__loop loop;
};

static inline struct capffi__ctx_loop *
capffi__loop_of(const capffi_ctx *ctx)
{
    return (struct capffi__ctx_loop *)(uintptr_t)ctx;
}

#endif
