/*
 * loop.c - the owner thread's loop: a queue of work submitted by other
 * threads, an eventfd that is readable while it is not empty, and the
 * baton that lets an owner blocked in a native call lend the host.
 *
 * Threat answered here: C3 (a callback invoked on a foreign thread never
 * runs concurrently with the owner thread's use of the host). Work runs
 * only on the thread that holds the baton: the owner thread (in
 * capffi_ctx_poll, or directly), or, with CAPFFI_OPT_LEND_OWNER, a thread
 * that took the baton while the owner was inside a native call. Taking
 * and returning the baton are ordered by the loop lock, so whatever one
 * holder wrote, the next one sees.
 */
#include "callback/loop.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "memory/buf.h"
#include "callback/cb.h"
#include "ctx.h"
#include "perm/token.h"

_Thread_local char capffi__thread_anchor CAPFFI__TLS_FAST;

/* This thread's frames of baton use, innermost first. */
static _Thread_local struct capffi__hold *holds;

int
capffi__loop_init(capffi_ctx *ctx, bool lend)
{
    struct capffi__loop *l = &ctx->loop;
    memset(l, 0, sizeof *l);
    l->fd = -1;
    if (pthread_mutex_init(&l->lock, NULL))
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (!rc) {
        rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (!rc)
            rc = pthread_cond_init(&l->cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (rc) {
        pthread_mutex_destroy(&l->lock);
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    }
    l->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->fd < 0) {
        int e = errno;
        pthread_cond_destroy(&l->cond);
        pthread_mutex_destroy(&l->lock);
        return capffi__fail(ctx, CAPFFI_ENOMEM,
                            "cannot make the loop's descriptor: %s",
                            strerror(e));
    }
    l->lend = lend;
    l->owner_key = capffi__thread_key();
    l->held = true;
    return CAPFFI_OK;
}

void
capffi__loop_shutdown(capffi_ctx *ctx)
{
    struct capffi__loop *l = &ctx->loop;
    pthread_mutex_lock(&l->lock);
    l->dying = true;
    for (struct capffi__req *r = l->head; r; r = r->next) {
        r->state = CAPFFI__REQ_DONE;
        r->canceled = true;
    }
    l->head = l->tail = NULL;
    l->queued = 0;
    pthread_cond_broadcast(&l->cond);
    while (l->inside)
        pthread_cond_wait(&l->cond, &l->lock);
    pthread_mutex_unlock(&l->lock);
}

void
capffi__loop_fini(capffi_ctx *ctx)
{
    struct capffi__loop *l = &ctx->loop;
    close(l->fd);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->lock);
}

void
capffi__loop_wake(capffi_ctx *ctx)
{
    uint64_t one = 1;
    if (write(ctx->loop.fd, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is full, so the descriptor is readable. */
    }
}

bool
capffi__loop_join(capffi_ctx *ctx)
{
    struct capffi__loop *l = &ctx->loop;
    pthread_mutex_lock(&l->lock);
    l->inside++;
    bool dying = l->dying;
    pthread_mutex_unlock(&l->lock);
    return dying;
}

void
capffi__loop_leave(capffi_ctx *ctx)
{
    struct capffi__loop *l = &ctx->loop;
    pthread_mutex_lock(&l->lock);
    if (--l->inside == 0 && l->dying)
        pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
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
capffi__loop_acting(const capffi_ctx *ctx)
{
    return find_hold(ctx) != NULL;
}

bool
capffi__loop_released(const capffi_ctx *ctx)
{
    const struct capffi__hold *h = find_hold(ctx);
    return h && !h->held;
}

static void
push(capffi_ctx *ctx, struct capffi__hold *h, bool held)
{
    h->ctx = ctx;
    h->held = held;
    h->up = holds;
    holds = h;
}

/* Wait for the baton and take it. */
static void
take(struct capffi__loop *l)
{
    pthread_mutex_lock(&l->lock);
    while (l->held)
        pthread_cond_wait(&l->cond, &l->lock);
    l->held = true;
    pthread_mutex_unlock(&l->lock);
}

static void
give(struct capffi__loop *l)
{
    pthread_mutex_lock(&l->lock);
    l->held = false;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

bool
capffi__loop_lend(capffi_ctx *ctx, struct capffi__hold *h)
{
    if (!capffi__ctx_on_owner(ctx) || capffi__loop_released(ctx))
        return false;
    push(ctx, h, false);
    give(&ctx->loop);
    return true;
}

void
capffi__loop_reclaim(capffi_ctx *ctx, struct capffi__hold *h)
{
    take(&ctx->loop);
    holds = h->up;
}

void
capffi__loop_enter(capffi_ctx *ctx, struct capffi__hold *h)
{
    take(&ctx->loop);
    push(ctx, h, true);
}

void
capffi__loop_exit(capffi_ctx *ctx, struct capffi__hold *h)
{
    holds = h->up;
    give(&ctx->loop);
}

/* Run r here with the lent baton. Called and returns with the lock held;
 * the baton is free on entry. */
static void
run_lent(capffi_ctx *ctx, struct capffi__req *r)
{
    struct capffi__loop *l = &ctx->loop;
    struct capffi__hold h;
    l->held = true;
    r->state = CAPFFI__REQ_RUNNING;
    pthread_mutex_unlock(&l->lock);
    push(ctx, &h, true);
    r->run(r);
    holds = h.up;
    pthread_mutex_lock(&l->lock);
    r->state = CAPFFI__REQ_DONE;
    l->held = false;
    pthread_cond_broadcast(&l->cond);
}

static void
unlink_req(struct capffi__loop *l, struct capffi__req *r)
{
    struct capffi__req **pp = &l->head, *prev = NULL;
    while (*pp != r) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = r->next;
    if (l->tail == r)
        l->tail = prev;
    l->queued--;
}

static struct timespec
deadline_after(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int
capffi__loop_submit(capffi_ctx *ctx, struct capffi__req *r, int timeout_ms)
{
    struct capffi__loop *l = &ctx->loop;
    bool timed = timeout_ms > 0;
    struct timespec deadline = { 0, 0 };
    if (timed)
        deadline = deadline_after(timeout_ms);
    int rc = CAPFFI_OK;

    pthread_mutex_lock(&l->lock);
    if (l->dying) {
        pthread_mutex_unlock(&l->lock);
        return CAPFFI_ECANCELED;
    }
    if (l->lend && !l->held) {
        run_lent(ctx, r);
        pthread_mutex_unlock(&l->lock);
        return CAPFFI_OK;
    }
    r->state = CAPFFI__REQ_QUEUED;
    r->canceled = false;
    r->next = NULL;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->queued++;
    capffi__loop_wake(ctx);
    for (;;) {
        int w = timed ? pthread_cond_timedwait(&l->cond, &l->lock, &deadline)
                      : pthread_cond_wait(&l->cond, &l->lock);
        if (r->state == CAPFFI__REQ_DONE) {
            rc = r->canceled ? CAPFFI_ECANCELED : CAPFFI_OK;
            break;
        }
        if (r->state == CAPFFI__REQ_RUNNING) {
            /* Started in time: wait for the end, however long. */
            timed = false;
            continue;
        }
        if (l->lend && !l->held) {
            unlink_req(l, r);
            run_lent(ctx, r);
            break;
        }
        if (w == ETIMEDOUT) {
            unlink_req(l, r);
            rc = CAPFFI_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&l->lock);
    return rc;
}

/* ---- the owner's side --------------------------------------------------- */

/* Run the requests queued now (not those that arrive meanwhile). */
static size_t
run_queued(capffi_ctx *ctx)
{
    struct capffi__loop *l = &ctx->loop;
    size_t ran = 0;
    pthread_mutex_lock(&l->lock);
    for (size_t budget = l->queued; budget && l->head; budget--) {
        struct capffi__req *r = l->head;
        l->head = r->next;
        if (!l->head)
            l->tail = NULL;
        l->queued--;
        r->state = CAPFFI__REQ_RUNNING;
        pthread_mutex_unlock(&l->lock);
        r->run(r);
        pthread_mutex_lock(&l->lock);
        /* The submitter may return as soon as it sees this: r is gone. */
        r->state = CAPFFI__REQ_DONE;
        pthread_cond_broadcast(&l->cond);
        ran++;
    }
    pthread_mutex_unlock(&l->lock);
    return ran;
}

/* Reset the descriptor; true if it was readable. */
static bool
drain(capffi_ctx *ctx)
{
    uint64_t n = 0;
    return read(ctx->loop.fd, &n, sizeof n) == (ssize_t)sizeof n && n > 0;
}

int
capffi_ctx_poll(capffi_ctx *ctx, int timeout_ms)
{
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    if (!capffi__ctx_on_owner(ctx))
        return capffi__wrong_thread(ctx, CAPFFI_OP_CTX_POLL, "capffi_ctx_poll");
    int64_t end =
        timeout_ms > 0 ? capffi__now_ns() + (int64_t)timeout_ms * 1000000 : 0;
    for (;;) {
        capffi__buf_reap(ctx); /* buffers freed during foreign calls */
        /* Reset first: anything queued after this makes it readable
         * again, so nothing is missed. */
        bool woken = drain(ctx);
        if (run_queued(ctx) || woken)
            return CAPFFI_OK;
        int wait = -1;
        if (timeout_ms == 0)
            return CAPFFI_ETIMEDOUT;
        if (timeout_ms > 0) {
            int64_t left = end - capffi__now_ns();
            if (left <= 0)
                return CAPFFI_ETIMEDOUT;
            wait = (int)((left + 999999) / 1000000);
        }
        struct pollfd p = { .fd = ctx->loop.fd, .events = POLLIN };
        if (poll(&p, 1, wait) < 0 && errno != EINTR)
            return capffi__fail(ctx, CAPFFI_ENOMEM, "poll failed: %s",
                                strerror(errno));
    }
}

int
capffi_ctx_fd(const capffi_ctx *ctx)
{
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    return ctx->loop.fd;
}

size_t
capffi_ctx_keepalive(const capffi_ctx *ctx)
{
    if (!ctx || !capffi__ctx_on_owner(ctx))
        return 0;
    return capffi__cb_keepalive(ctx);
}
