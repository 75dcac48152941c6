/*
 * capffi/job.h - nonblocking calls: a bound function called on the
 * context's worker pool, its buffers lent to the call until it ends.
 *
 * A job is submitted on the owner thread (capffi_fn_call_async). Its
 * arguments are taken at submission: scalars, struct bytes and cstring
 * text are copied, `function` values resolved, and every `buffer` argument
 * is lent to the job: until the job ends, capffi_buf_data, buffer
 * arguments of other calls, capffi_ptr_of and views of it answer
 * CAPFFI_EBUSY, and capffi_buf_free is deferred. A raw `pointer` argument
 * is passed as it is: keeping that memory valid, and not touching it
 * meanwhile, is the host's business.
 *
 * A job ends on a worker thread; the owner learns of it through the
 * context's loop: capffi_ctx_fd becomes readable and capffi_ctx_poll (or
 * capffi_job_wait) finishes the job on the owner thread: the buffers come
 * back and the completion handler, if one was given, runs. Native code of
 * a job that invokes a callback follows the callback thread rules (a
 * thread-safe callback runs on the owner, in its poll or wait; others
 * fail closed).
 *
 * Thread safety: owner thread, every function.
 */
#ifndef CAPFFI_JOB_H
#define CAPFFI_JOB_H

#include "common.h"
#include "value.h"

CAPFFI_BEGIN_DECLS

/** Runs on the owner thread when job has ended (capffi_ctx_poll or
 *  capffi_job_wait): take its result with capffi_job_wait(&ret, job, 0).
 *  It may free the job. It does not run for a job that ends while a
 *  capffi_job_wait waits for it (that wait takes the result), nor for one
 *  canceled (capffi_job_cancel returns the news) or freed before it ends;
 *  a wait that gives up (CAPFFI_ETIMEDOUT) leaves it armed. */
typedef void (*capffi_job_fn)(void *payload, capffi_job *job);

/** Submission options (capffi_fn_call_async_opts). Zero-initialise. */
typedef struct capffi_job_options {
    capffi_job_fn done; /**< NULL: no handler */
    void *payload;      /**< passed to done */
} capffi_job_options;

/**
 * Call fn on the context's worker pool.
 * @param out  receives the job; NULL on failure.
 * @param fn   a bound function. It may be freed while its jobs are
 *             pending: capffi_fn_free then releases it when the last one
 *             ends.
 * @param args its arguments, as capffi_fn_call takes them; read only
 *             during this call.
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL out or fn, args NULL with
 *         parameters, a freed buffer, a bad `function` value);
 *         CAPFFI_ERANGE; CAPFFI_ETYPE (a struct of the wrong size);
 *         CAPFFI_EBUSY (a buffer already lent, to another job or twice to
 *         this one; the queue is full); CAPFFI_ECLOSED, CAPFFI_EREVOKED
 *         (the function's library closed or token revoked); CAPFFI_ETHREAD;
 *         CAPFFI_ENOMEM (also when no worker thread can be started).
 *         Refusals are audited (CAPFFI_OP_JOB_SUBMIT); a submission is not.
 * Ownership: the caller owns *out (capffi_job_free).
 */
CAPFFI_API int capffi_fn_call_async(capffi_job **out, capffi_fn *fn,
                                    const capffi_value *args);

/** capffi_fn_call_async with a completion handler (opts may be NULL). */
CAPFFI_API int capffi_fn_call_async_opts(capffi_job **out, capffi_fn *fn,
                                         const capffi_value *args,
                                         const capffi_job_options *opts);

/**
 * Wait for a job to end and take its result, exactly as capffi_fn_call
 * gives it (a struct result into ret->agg, which must hold it; errno for
 * capffi_last_errno with CAPFFI_FN_ERRNO). While it waits, the owner's
 * loop runs: queued callbacks and other jobs' handlers run as in
 * capffi_ctx_poll.
 * @param ret        receives the result (may be NULL); a scalar result is
 *                   zeroed on failure, a struct's memory left as it is.
 * @param timeout_ms 0: do not wait (the loop still runs once, so a job
 *                   that has finished ends here); negative: no limit.
 * @return the call's own status: CAPFFI_OK; CAPFFI_ECANCELED (canceled
 *         before it started, or the context is being freed);
 *         CAPFFI_ECLOSED, CAPFFI_EREVOKED (its function could not be
 *         called when its turn came); or CAPFFI_ETIMEDOUT (not ended
 *         yet); CAPFFI_EINVAL (NULL, freed job, the result already taken,
 *         a struct result without room for it); CAPFFI_ETHREAD.
 */
CAPFFI_API int capffi_job_wait(capffi_value *ret, capffi_job *job,
                               int timeout_ms);

/**
 * Cancel a job that has not started: it ends at once with
 * CAPFFI_ECANCELED and its buffers come back. A running job cannot be
 * interrupted: it finishes normally.
 * @return CAPFFI_OK (canceled; audited, CAPFFI_OP_JOB_CANCEL);
 *         CAPFFI_EBUSY (already running: it finishes normally);
 *         CAPFFI_EINVAL (NULL, freed, or already ended); CAPFFI_ETHREAD.
 */
CAPFFI_API int capffi_job_cancel(capffi_job *job);

/**
 * Free a job. A job that has not ended is detached: it runs (or stays
 * canceled), its buffers come back when it ends, then it is freed; its
 * handler no longer runs. A second free is refused with a message, and so
 * is a free, from a handler or callback, of a job a capffi_job_wait is
 * waiting for (CAPFFI_EBUSY in capffi_ctx_errmsg).
 * Freeing the context frees every job.
 */
CAPFFI_API void capffi_job_free(capffi_job *job);

CAPFFI_END_DECLS

#endif
