/*
 * loop.c - the owner thread's loop: a queue of work submitted by other
 * threads, run in capffi_ctx_poll when the owner's doorbell
 * (base/owner.c) rings.
 *
 * Threat answered here: C3 (a callback invoked on a foreign thread never
 * runs concurrently with the owner thread's use of the host). Work runs
 * only on the thread that holds the baton (base/owner.c): the owner thread
 * (in capffi_ctx_poll, or directly), or, with CAPFFI_OPT_LEND_OWNER, a
 * thread that took the baton while the owner was inside a native call.
 * The queue is guarded by the baton's lock, so a request and the baton
 * change hands in one critical section.
 */
#include "callback/loop.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memory/buf.h"
#include "perm/token.h"

int
capffi__loop_init(capffi_ctx *ctx)
{
    memset(&capffi__loop_of(ctx)->loop, 0, sizeof capffi__loop_of(ctx)->loop);
    return CAPFFI_OK;
}

void
capffi__loop_shutdown(capffi_ctx *ctx)
{
    struct capffi__loop *l = &capffi__loop_of(ctx)->loop;
    struct capffi__owner *o = &capffi__base(ctx)->owner;
    pthread_mutex_lock(&o->lock);
    l->dying = true;
    for (struct capffi__req *r = l->head; r; r = r->next) {
        r->state = CAPFFI__REQ_DONE;
        r->canceled = true;
    }
    l->head = l->tail = NULL;
    l->queued = 0;
    pthread_cond_broadcast(&o->cond);
    while (l->inside)
        pthread_cond_wait(&o->cond, &o->lock);
    pthread_mutex_unlock(&o->lock);
}

bool
capffi__loop_join(capffi_ctx *ctx)
{
    struct capffi__loop *l = &capffi__loop_of(ctx)->loop;
    struct capffi__owner *o = &capffi__base(ctx)->owner;
    pthread_mutex_lock(&o->lock);
    l->inside++;
    bool dying = l->dying;
    pthread_mutex_unlock(&o->lock);
    return dying;
}

void
capffi__loop_leave(capffi_ctx *ctx)
{
    struct capffi__loop *l = &capffi__loop_of(ctx)->loop;
    struct capffi__owner *o = &capffi__base(ctx)->owner;
    pthread_mutex_lock(&o->lock);
    if (--l->inside == 0 && l->dying)
        pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

/* Run r here with the lent baton. Called and returns with the lock held;
 * the baton is free on entry. */
static void
run_lent(capffi_ctx *ctx, struct capffi__req *r)
{
    struct capffi__owner *o = &capffi__base(ctx)->owner;
    struct capffi__hold h;
    o->held = true;
    r->state = CAPFFI__REQ_RUNNING;
    pthread_mutex_unlock(&o->lock);
    capffi__owner_push(ctx, &h, true);
    r->run(r);
    capffi__owner_pop(&h);
    pthread_mutex_lock(&o->lock);
    r->state = CAPFFI__REQ_DONE;
    o->held = false;
    pthread_cond_broadcast(&o->cond);
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
    struct capffi__loop *l = &capffi__loop_of(ctx)->loop;
    struct capffi__owner *o = &capffi__base(ctx)->owner;
    bool timed = timeout_ms > 0;
    struct timespec deadline = { 0, 0 };
    if (timed)
        deadline = deadline_after(timeout_ms);
    int rc = CAPFFI_OK;

    pthread_mutex_lock(&o->lock);
    if (l->dying) {
        pthread_mutex_unlock(&o->lock);
        return CAPFFI_ECANCELED;
    }
    if (o->lend && !o->held) {
        run_lent(ctx, r);
        pthread_mutex_unlock(&o->lock);
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
    capffi__owner_wake(ctx);
    for (;;) {
        int w = timed ? pthread_cond_timedwait(&o->cond, &o->lock, &deadline)
                      : pthread_cond_wait(&o->cond, &o->lock);
        if (r->state == CAPFFI__REQ_DONE) {
            rc = r->canceled ? CAPFFI_ECANCELED : CAPFFI_OK;
            break;
        }
        if (r->state == CAPFFI__REQ_RUNNING) {
            /* Started in time: wait for the end, however long. */
            timed = false;
            continue;
        }
        if (o->lend && !o->held) {
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
    pthread_mutex_unlock(&o->lock);
    return rc;
}

/* ---- the owner's side --------------------------------------------------- */

/* Run the requests queued now (not those that arrive meanwhile). */
static size_t
run_queued(capffi_ctx *ctx)
{
    struct capffi__loop *l = &capffi__loop_of(ctx)->loop;
    struct capffi__owner *o = &capffi__base(ctx)->owner;
    size_t ran = 0;
    pthread_mutex_lock(&o->lock);
    for (size_t budget = l->queued; budget && l->head; budget--) {
        struct capffi__req *r = l->head;
        l->head = r->next;
        if (!l->head)
            l->tail = NULL;
        l->queued--;
        r->state = CAPFFI__REQ_RUNNING;
        pthread_mutex_unlock(&o->lock);
        r->run(r);
        pthread_mutex_lock(&o->lock);
        /* The submitter may return as soon as it sees this: r is gone. */
        r->state = CAPFFI__REQ_DONE;
        pthread_cond_broadcast(&o->cond);
        ran++;
    }
    pthread_mutex_unlock(&o->lock);
    return ran;
}

int
capffi_ctx_poll(capffi_ctx *ctx, int timeout_ms)
{
    int rc = capffi__entry(ctx, CAPFFI_OP_CTX_POLL, "capffi_ctx_poll");
    if (rc)
        return rc;
    int64_t end =
        timeout_ms > 0 ? capffi__now_ns() + (int64_t)timeout_ms * 1000000 : 0;
    for (;;) {
        capffi__buf_reap(ctx); /* buffers freed during foreign calls */
        /* Reset first: anything queued after this makes it readable
         * again, so nothing is missed. */
        bool woken = capffi__owner_drain(ctx);
        size_t ran = run_queued(ctx);
        if (capffi__job_reap(ctx, true) || ran || woken)
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
        struct pollfd p = { .fd = capffi__base(ctx)->owner.doorbell,
                            .events = POLLIN };
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
    return capffi__base(ctx)->owner.doorbell;
}

int
capffi_job_wait(capffi_value *ret, capffi_job *job, int timeout_ms)
{
    int rc = capffi__job_check(job, "capffi_job_wait");
    if (rc) {
        if (ret && !job)
            ret->u64 = 0;
        return rc;
    }
    capffi_ctx *ctx = capffi__job_ctx(job);
    int64_t end =
        timeout_ms > 0 ? capffi__now_ns() + (int64_t)timeout_ms * 1000000 : 0;
    /* The owner's loop runs meanwhile, at least once: a job that ended is
     * finished here, and a thread-safe callback the job's native code
     * invokes is served, not deadlocked. A job that ends during the wait
     * gives its result to the wait, not to its handler. */
    bool was = capffi__job_waiting(job, true);
    while (!capffi__job_ended(job)) {
        int wait = timeout_ms < 0 ? -1 : 0;
        if (timeout_ms > 0) {
            int64_t left = end - capffi__now_ns();
            wait = left > 0 ? (int)((left + 999999) / 1000000) : 0;
        }
        /* A short call finishes sooner than a wake-up would arrive. */
        if (wait != 0 && capffi__job_spin(job))
            wait = 0;
        rc = capffi_ctx_poll(ctx, wait);
        if (capffi__job_ended(job))
            break;
        if (rc && rc != CAPFFI_ETIMEDOUT) {
            capffi__job_waiting(job, was);
            capffi__job_no_result(ret, job);
            return rc;
        }
        if (timeout_ms == 0 ||
            (timeout_ms > 0 && end - capffi__now_ns() <= 0)) {
            capffi__job_waiting(job, was); /* its handler still runs */
            capffi__job_no_result(ret, job);
            return capffi__fail(ctx, CAPFFI_ETIMEDOUT,
                                "capffi_job_wait: the job has not ended");
        }
    }
    capffi__job_waiting(job, was); /* ended: no handler runs now anyway */
    return capffi__job_result(ret, job);
}
