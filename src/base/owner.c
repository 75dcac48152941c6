/*
 * owner.c - the owner-thread rule and the host baton.
 *
 * Threat answered here: C3 (a callback invoked on a foreign thread never
 * runs concurrently with the owner thread's use of the host). Only the
 * thread that holds the baton uses the host; taking and returning it are
 * ordered by the owner lock, so whatever one holder wrote, the next one
 * sees.
 */
#include "base/owner.h"

#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

_Thread_local char capffi__thread_anchor CAPFFI__TLS_FAST;

/* This thread's frames of baton use, innermost first. */
static _Thread_local struct capffi__hold *holds;

int
capffi__owner_init(struct capffi__owner *o, bool lend)
{
    memset(o, 0, sizeof *o);
    if (pthread_mutex_init(&o->lock, NULL))
        return CAPFFI_ENOMEM;
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (!rc) {
        /* The loop's timed waits measure the monotonic clock. */
        rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (!rc)
            rc = pthread_cond_init(&o->cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (rc) {
        pthread_mutex_destroy(&o->lock);
        return CAPFFI_ENOMEM;
    }
    o->doorbell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (o->doorbell < 0) {
        pthread_cond_destroy(&o->cond);
        pthread_mutex_destroy(&o->lock);
        return CAPFFI_ENOMEM;
    }
    o->thread = pthread_self();
    o->key = capffi__thread_key();
    o->lend = lend;
    o->held = true;
    return CAPFFI_OK;
}

void
capffi__owner_fini(struct capffi__owner *o)
{
    close(o->doorbell);
    pthread_cond_destroy(&o->cond);
    pthread_mutex_destroy(&o->lock);
}

void
capffi__owner_wake(const capffi_ctx *ctx)
{
    uint64_t one = 1;
    if (write(capffi__base(ctx)->owner.doorbell, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is full, so the descriptor is readable. */
    }
}

bool
capffi__owner_drain(const capffi_ctx *ctx)
{
    uint64_t n = 0;
    return read(capffi__base(ctx)->owner.doorbell, &n, sizeof n) ==
               (ssize_t)sizeof n &&
           n > 0;
}

/* ---- the baton ---------------------------------------------------------- */

static struct capffi__hold *
find_hold(const capffi_ctx *ctx)
{
    for (struct capffi__hold *h = holds; h; h = h->up)
        if (h->ctx == ctx)
            return h;
    return NULL;
}

bool
capffi__owner_acting(const capffi_ctx *ctx)
{
    return find_hold(ctx) != NULL;
}

bool
capffi__owner_released(const capffi_ctx *ctx)
{
    const struct capffi__hold *h = find_hold(ctx);
    return h && !h->held;
}

void
capffi__owner_push(const capffi_ctx *ctx, struct capffi__hold *h, bool held)
{
    h->ctx = ctx;
    h->held = held;
    h->up = holds;
    holds = h;
}

void
capffi__owner_pop(struct capffi__hold *h)
{
    holds = h->up;
}

/* Wait for the baton and take it. */
static void
take(struct capffi__owner *o)
{
    pthread_mutex_lock(&o->lock);
    while (o->held)
        pthread_cond_wait(&o->cond, &o->lock);
    o->held = true;
    pthread_mutex_unlock(&o->lock);
}

static void
give(struct capffi__owner *o)
{
    pthread_mutex_lock(&o->lock);
    o->held = false;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

bool
capffi__owner_lend(capffi_ctx *ctx, struct capffi__hold *h)
{
    if (!capffi__ctx_on_owner(ctx) || capffi__owner_released(ctx))
        return false;
    capffi__owner_push(ctx, h, false);
    give(&capffi__base(ctx)->owner);
    return true;
}

void
capffi__owner_reclaim(capffi_ctx *ctx, struct capffi__hold *h)
{
    take(&capffi__base(ctx)->owner);
    capffi__owner_pop(h);
}

void
capffi__owner_enter(capffi_ctx *ctx, struct capffi__hold *h)
{
    take(&capffi__base(ctx)->owner);
    capffi__owner_push(ctx, h, true);
}

void
capffi__owner_exit(capffi_ctx *ctx, struct capffi__hold *h)
{
    capffi__owner_pop(h);
    give(&capffi__base(ctx)->owner);
}
