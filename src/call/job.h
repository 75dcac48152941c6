/*
 * job.h - the worker pool and the jobs of a context (job.c).
 */
#ifndef CAPFFI_SRC_CALL_JOB_H
#define CAPFFI_SRC_CALL_JOB_H

#include <pthread.h>

#include "call/lib.h"

/* The pool, under lock: jobs queued for a worker, and jobs a worker has
 * finished that the owner has not taken yet. */
struct capffi__pool {
    pthread_mutex_t lock;
    pthread_cond_t work; /* a job was queued, or the pool stops */
    pthread_t *threads;
    unsigned nthreads, max_threads, idle;
    unsigned spinning;      /* idle workers spinning for a job, not parked */
    int64_t worker_spin_ns; /* how long a worker spins for a job (lock) */
    int64_t owner_spin_ns;  /* how long a wait spins for its job (owner) */
    size_t queued, max_queue;
    _Atomic size_t pending;         /* queued, for a spinning worker to watch */
    struct capffi_job *head, *tail; /* queued, oldest first */
    struct capffi_job *done_head, *done_tail; /* finished, oldest first */
    size_t ndone;
    bool stopping;
    /* Owner thread: every job not freed, and freed ones to recognise a
     * second free. */
    struct capffi__list jobs;
    size_t unended; /* jobs submitted and not ended (detached ones too) */
    struct capffi__recycle dead;
};

/* The context as far as jobs (perm/audit.h). */
struct capffi__ctx_job {
    struct capffi__ctx_lib up;
    struct capffi__pool pool;
};

static inline struct capffi__ctx_job *
capffi__jobs_of(const capffi_ctx *ctx)
{
    return (struct capffi__ctx_job *)(uintptr_t)ctx;
}

/* Set up the pool (no thread yet) from the options (NULL: defaults). */
CAPFFI__HIDDEN int capffi__job_init(capffi_ctx *ctx,
                                    const capffi_options *opts);

/*
 * Finish, on the owner thread, the jobs that workers have finished: their
 * buffers come back, and (with handlers) their handlers run. Returns how
 * many were finished.
 */
CAPFFI__HIDDEN size_t capffi__job_reap(capffi_ctx *ctx, bool handlers);

/* Spin a moment for a worker to finish job, rather than block at once: a
 * wake-up costs more than a short call. The moment adapts (job.c). Returns
 * whether it has finished (capffi_ctx_poll then ends it without
 * blocking). Owner thread. */
CAPFFI__HIDDEN bool capffi__job_spin(const capffi_job *job);

/* How many jobs have been submitted and not yet ended on the owner
 * thread: a host should keep polling while any has not
 * (capffi_ctx_keepalive). Owner thread. */
CAPFFI__HIDDEN size_t capffi__job_unended(const capffi_ctx *ctx);

/* Whether job has been finished on the owner thread. */
CAPFFI__HIDDEN bool capffi__job_ended(const capffi_job *job);

/* Mark whether a capffi_job_wait is waiting for job: while one is, the job
 * ends without its handler (the waiter takes the result); a wait that gives
 * up puts the mark back, so the handler still runs later. Returns the mark
 * as it was. */
CAPFFI__HIDDEN bool capffi__job_waiting(capffi_job *job, bool waiting);

/* Check that job is a live job of an owner-thread caller; the message
 * names fn. */
CAPFFI__HIDDEN int capffi__job_check(const capffi_job *job, const char *fn);

/* Clear ret's scalar result (a failed capffi_job_wait). */
CAPFFI__HIDDEN void capffi__job_no_result(capffi_value *ret,
                                          const capffi_job *job);

/* Take the result of an ended job (capffi_job_wait). */
CAPFFI__HIDDEN int capffi__job_result(capffi_value *ret, capffi_job *job);

/* The job's context. */
CAPFFI__HIDDEN capffi_ctx *capffi__job_ctx(const capffi_job *job);

/*
 * Stop the pool (capffi_ctx_free): cancel what is queued, wait for the
 * running jobs to end, join the workers, finish every job without its
 * handler and free them all.
 */
CAPFFI__HIDDEN void capffi__job_fini(capffi_ctx *ctx);

#endif
