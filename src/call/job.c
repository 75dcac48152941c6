/*
 * job.c - nonblocking calls on the context's worker pool.
 *
 * Threat answered here: C5 (a buffer handed to a nonblocking call is lent
 * to it: the host cannot read, write or free it until the call has ended).
 * Everything the call needs is taken at submission, on the owner thread:
 * scalars, struct bytes and cstring text are copied into the job,
 * `function` values resolved to code, buffers lent and their addresses
 * taken. A worker then makes the call with capffi_fn_call_raw, which
 * loads the function's state word first: a job whose token was revoked or
 * whose library was closed before it started ends with that error and
 * never calls. The owner finishes every job (the buffers come back, the
 * handler runs) in capffi_ctx_poll or capffi_job_wait, so the lend and
 * the handler stay on the owner thread as buffers and handlers must.
 */
#include "call/job.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "memory/buf.h"
#include "types/value.h"

#define JOB_LIVE 0x6a6f6273u /* "jobs" */
#define JOB_DEAD 0x64656164u /* "dead" */

/* The bounds of a spin before parking (see "the workers"). */
#define SPIN_MAX_NS 50000
#define SPIN_MIN_NS 1000

enum { QUEUED, RUNNING, FINISHED, ENDED };

struct capffi_job {
    uint32_t magic;
    _Atomic int state; /* QUEUED, RUNNING, FINISHED (pool lock); ENDED */
    int rc;            /* the call's status */
    int err;           /* errno after it, for CAPFFI_FN_ERRNO */
    bool detached;     /* freed by the host before it ended */
    bool waited;       /* capffi_job_wait takes its result: no handler */
    bool taken;        /* its result was taken by capffi_job_wait */
    capffi_ctx *ctx;
    capffi_fn *fn;
    capffi_job_fn done;
    void *payload;
    struct capffi_job *next;  /* in the queue or the finished list */
    struct capffi__link link; /* the pool's list of jobs */
    size_t nlent, nheld;
    capffi_buf **lent; /* these four after the struct, one each an arg */
    capffi_obj **held; /* instances lent to it */
    void **av;
    uint64_t *slots;
    void *retp; /* where the result lands: ret, or mem for a big struct */
    union {
        ffi_arg a;
        _Alignas(16) unsigned char bytes[32];
    } ret;
    unsigned char *mem; /* struct arguments, cstring text, a big result */
};

int
capffi__job_init(capffi_ctx *ctx, const capffi_options *opts)
{
    struct capffi__pool *p = &capffi__jobs_of(ctx)->pool;
    memset(p, 0, sizeof *p);
    unsigned workers = opts ? opts->workers : 0;
    if (workers > CAPFFI_WORKERS_MAX)
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "workers %u: at most %u worker threads", workers,
                            CAPFFI_WORKERS_MAX);
    if (!workers) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        workers = cores < 1 ? 1 : cores > 8 ? 8 : (unsigned)cores;
    }
    p->max_threads = workers;
    p->worker_spin_ns = p->owner_spin_ns = SPIN_MAX_NS;
    p->max_queue = opts && opts->job_queue ? opts->job_queue : 1024;
    if (pthread_mutex_init(&p->lock, NULL))
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    if (pthread_cond_init(&p->work, NULL)) {
        pthread_mutex_destroy(&p->lock);
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    }
    return CAPFFI_OK;
}

/* ---- the workers -------------------------------------------------------- */

/*
 * How long a thread that waits for the other side of the pool spins before
 * it parks: a futex wake-up and the scheduler cost microseconds, a nop
 * call nanoseconds. Each side keeps its own budget and adapts it: a spin
 * that saw what it waited for doubles it (up to SPIN_MAX_NS), one that
 * ran out halves it (down to SPIN_MIN_NS). On a machine with a core to
 * spare a short job's round trip is then a spin; on a loaded one, where
 * the other side may be waiting for the very core a spinner holds, the
 * budget shrinks within a few rounds and each side parks almost at once.
 * One worker spins at a time, and an idle pool stops within the budget.
 */

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spin until ready(arg), for at most *budget ns, and adapt *budget;
 * whether it is ready. */
static bool
spin_until(bool (*ready)(const void *), const void *arg, int64_t *budget)
{
    int64_t until = capffi__now_ns() + *budget;
    bool seen = false;
    for (unsigned i = 1; !(seen = ready(arg)); i++) {
        cpu_relax();
        if (!(i & 31) && capffi__now_ns() >= until) {
            seen = ready(arg);
            break;
        }
    }
    *budget = seen ? (*budget * 2 > SPIN_MAX_NS ? SPIN_MAX_NS : *budget * 2)
                   : (*budget / 2 < SPIN_MIN_NS ? SPIN_MIN_NS : *budget / 2);
    return seen;
}

static bool
work_pending(const void *pool)
{
    const struct capffi__pool *p = pool;
    return atomic_load_explicit(&p->pending, memory_order_relaxed) != 0;
}

/* An idle worker spins for a job before it parks. With the lock held
 * (the workers' budget is kept under it); the worker counts as idle
 * meanwhile, and enqueue does not signal for the job it will take. */
static void
spin_for_work(struct capffi__pool *p)
{
    int64_t budget = p->worker_spin_ns;
    p->spinning++;
    p->idle++;
    pthread_mutex_unlock(&p->lock);
    spin_until(work_pending, p, &budget);
    pthread_mutex_lock(&p->lock);
    p->idle--;
    p->spinning--;
    p->worker_spin_ns = budget;
}

/* Append job to the finished list. With the lock held. */
static void
push_done(struct capffi__pool *p, capffi_job *job)
{
    job->next = NULL;
    if (p->done_tail)
        p->done_tail->next = job;
    else
        p->done_head = job;
    p->done_tail = job;
    p->ndone++;
}

static void *
worker(void *arg)
{
    capffi_ctx *ctx = arg;
    struct capffi__pool *p = &capffi__jobs_of(ctx)->pool;
    bool spun = false;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        capffi_job *job = p->head;
        if (!job) {
            if (p->stopping)
                break;
            if (!spun && !p->spinning) {
                spin_for_work(p);
                spun = true;
                continue;
            }
            spun = false;
            p->idle++;
            pthread_cond_wait(&p->work, &p->lock);
            p->idle--;
            continue;
        }
        spun = false;
        p->head = job->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        atomic_store_explicit(&p->pending, p->queued, memory_order_relaxed);
        atomic_store_explicit(&job->state, RUNNING, memory_order_release);
        pthread_mutex_unlock(&p->lock);

        /* The state word is loaded here: revoked or closed since the
         * submission, the call is refused and never made. */
        int rc = capffi__fn_call_held(job->fn, job->av, job->retp);
        int err = capffi_last_errno();

        pthread_mutex_lock(&p->lock);
        job->rc = rc;
        job->err = err;
        atomic_store_explicit(&job->state, FINISHED, memory_order_release);
        /* The doorbell rings once for a batch: the owner resets it before
         * it takes finished jobs, and rings it again if it leaves some. */
        if (!p->done_head)
            capffi__owner_wake(ctx);
        push_done(p, job);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Queue job, starting a worker when none is idle and the pool may grow.
 * Owner thread. CAPFFI_EBUSY (full) and CAPFFI_ENOMEM, with a message. */
static int
enqueue(capffi_ctx *ctx, capffi_job *job)
{
    struct capffi__pool *p = &capffi__jobs_of(ctx)->pool;
    int rc = CAPFFI_OK;
    pthread_mutex_lock(&p->lock);
    if (p->queued >= p->max_queue) {
        rc = capffi__fail(ctx, CAPFFI_EBUSY,
                          "the job queue is full (%zu jobs wait for a "
                          "worker)",
                          p->queued);
    } else if (p->idle <= p->queued && p->nthreads < p->max_threads) {
        if (!p->threads)
            p->threads = capffi__calloc(p->max_threads, sizeof *p->threads);
        if (!p->threads ||
            pthread_create(&p->threads[p->nthreads], NULL, worker, ctx)) {
            if (!p->nthreads)
                rc = capffi__fail(ctx, CAPFFI_ENOMEM,
                                  "cannot start a worker thread");
        } else {
            p->nthreads++;
        }
    }
    if (!rc) {
        atomic_store_explicit(&job->state, QUEUED, memory_order_release);
        job->next = NULL;
        if (p->tail)
            p->tail->next = job;
        else
            p->head = job;
        p->tail = job;
        p->queued++;
        atomic_store_explicit(&p->pending, p->queued, memory_order_relaxed);
        if (p->queued > p->spinning) /* a spinning worker takes one */
            pthread_cond_signal(&p->work);
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* ---- submitting --------------------------------------------------------- */

static void
give_back(capffi_job *job)
{
    for (size_t i = 0; i < job->nlent; i++)
        capffi__buf_unlend(job->lent[i]);
    job->nlent = 0;
    for (size_t i = 0; i < job->nheld; i++) {
        capffi__obj_unlend(job->held[i]);
        capffi__obj_call_end(job->held[i]);
    }
    job->nheld = 0;
}

static void
job_release(capffi_job *job)
{
    struct capffi__pool *p = &capffi__jobs_of(job->ctx)->pool;
    capffi__fn_unhold(job->fn);
    capffi__free(job->mem);
    job->mem = NULL;
    job->av = NULL; /* they lived in mem */
    job->slots = NULL;
    job->lent = NULL;
    job->held = NULL;
    job->magic = JOB_DEAD;
    /* Kept until reused, so that a second free is recognised. */
    capffi__recycle_put(&p->dead, job);
}

/* The bytes a job keeps besides itself: struct arguments, cstring text
 * and a result too big for ret, each 16-byte aligned. */
static size_t
mem_needed(const capffi_fn *fn, const capffi_value *args)
{
    size_t n = 0;
    for (size_t i = 0; i < fn->sig.nargs; i++) {
        const struct capffi__type *t = fn->sig.args[i];
        if (fn->arg_op[i] == ARG_STRUCT)
            n += (t->size + 15) & ~(size_t)15;
        else if (t->kind == CAPFFI__CSTRING && args[i].str)
            n += (strlen(args[i].str) + 16) & ~(size_t)15;
    }
    if (fn->ret_struct && fn->sig.ret->size > 32)
        n += fn->sig.ret->size;
    return n;
}

/* Take argument i into the job. */
static int
take_arg(capffi_job *job, size_t i, const capffi_value *args, size_t *used)
{
    const capffi_value *v = &args[i];
    const capffi_fn *fn = job->fn;
    const struct capffi__type *t = fn->sig.args[i];
    capffi_ctx *ctx = job->ctx;
    job->av[i] = &job->slots[i];
    switch (fn->arg_op[i]) {
    case ARG_BUFFER: {
        void *data = NULL;
        if (v->buf) {
            int rc = capffi__buf_lend(v->buf);
            if (rc) {
                char why[CAPFFI__MSG_MAX];
                snprintf(why, sizeof why, "%s", capffi_ctx_errmsg(ctx));
                return capffi__fail(ctx, rc, "argument %zu: %s", i + 1, why);
            }
            job->lent[job->nlent++] = v->buf;
            data = v->buf->len ? v->buf->data : NULL;
        }
        memcpy(&job->slots[i], &data, sizeof data);
        return CAPFFI_OK;
    }
    case ARG_FUNCTION: {
        void *code;
        int rc = capffi__callable_code(ctx, v->p, i + 1, &code);
        memcpy(&job->slots[i], &code, sizeof code);
        return rc;
    }
    case ARG_OBJ: {
        /* Lent like a buffer: held, and its fields busy, until the end. */
        void *addr = NULL;
        uint64_t need;
        int rc = capffi__fn_arg_need(fn, i, args, &need);
        if (rc)
            return rc;
        if (v->obj && v->obj->kind == CAPFFI__OBJ_ARG)
            return capffi__fail(ctx, CAPFFI_ETYPE,
                                "argument %zu: a callback's argument ends "
                                "with its callback; copy what the call "
                                "needs into an instance (capffi_obj_new)",
                                i + 1);
        rc = capffi__obj_call_begin(ctx, v->obj, t, need, i + 1, &addr);
        if (rc)
            return rc;
        if (v->obj) {
            if (atomic_load(&v->obj->lent)) {
                capffi__obj_call_end(v->obj);
                return capffi__fail(ctx, CAPFFI_EBUSY,
                                    "argument %zu: the instance is lent to "
                                    "another nonblocking call",
                                    i + 1);
            }
            capffi__obj_lend(v->obj);
            job->held[job->nheld++] = v->obj;
        }
        memcpy(&job->slots[i], &addr, sizeof addr);
        return CAPFFI_OK;
    }
    case ARG_OUT:
        return capffi__fail(ctx, CAPFFI_ETYPE,
                            "argument %zu: out-parameters are for blocking "
                            "calls (capffi_fn_call)",
                            i + 1);
    case ARG_STRUCT:
        if (!v->agg.ptr)
            return capffi__fail(ctx, CAPFFI_EINVAL,
                                "argument %zu: struct pointer is NULL", i + 1);
        if (v->agg.len != t->size)
            return capffi__fail(ctx, CAPFFI_ETYPE,
                                "argument %zu: struct of %zu bytes given, "
                                "%zu declared",
                                i + 1, v->agg.len, t->size);
        job->av[i] = job->mem + *used;
        memcpy(job->av[i], v->agg.ptr, t->size);
        *used += (t->size + 15) & ~(size_t)15;
        return CAPFFI_OK;
    default:
        if (t->kind == CAPFFI__CSTRING && v->str) {
            size_t n = strlen(v->str) + 1;
            char *copy = (char *)job->mem + *used;
            memcpy(copy, v->str, n);
            memcpy(&job->slots[i], &copy, sizeof copy);
            *used += (n + 15) & ~(size_t)15;
        } else {
            job->slots[i] = v->u64;
        }
        return CAPFFI_OK;
    }
}

static __attribute__((noinline, cold)) int
refuse_submit(capffi_ctx *ctx, int rc, const capffi_fn *fn)
{
    char target[32];
    const char *name = fn ? capffi__fn_target(fn, target) : "";
    capffi__audit_emit(ctx, CAPFFI_OP_JOB_SUBMIT, rc,
                       rc == CAPFFI_EBUSY      ? CAPFFI_REASON_BUSY
                       : rc == CAPFFI_EREVOKED ? CAPFFI_REASON_REVOKED
                       : rc == CAPFFI_ECLOSED  ? CAPFFI_REASON_CLOSED
                       : rc == CAPFFI_ENOMEM   ? CAPFFI_REASON_NOMEM
                                               : CAPFFI_REASON_INVALID,
                       NULL, 0, name, "%s", capffi_ctx_errmsg(ctx));
    return rc;
}

int
capffi_fn_call_async_opts(capffi_job **out, capffi_fn *fn,
                          const capffi_value *args,
                          const capffi_job_options *opts)
{
    if (out)
        *out = NULL;
    if (!fn)
        return capffi__fail(NULL, CAPFFI_EINVAL, "fn is NULL");
    capffi_ctx *ctx = fn->call.ctx;
    int rc = capffi__entry(ctx, CAPFFI_OP_JOB_SUBMIT, "capffi_fn_call_async");
    if (rc)
        return rc;
    if (!out || (!args && fn->sig.nargs))
        return refuse_submit(ctx,
                             capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL",
                                          out ? "args" : "out"),
                             fn);
    int state = atomic_load_explicit(fn->call.state, memory_order_acquire);
    if (state != CAPFFI__LIVE)
        return refuse_submit(
            ctx,
            state == CAPFFI__CLOSED
                ? capffi__fail(ctx, CAPFFI_ECLOSED,
                               "the function's library is closed")
                : capffi__fail(ctx, CAPFFI_EREVOKED,
                               "the function's token was revoked"),
            fn);
    for (unsigned k = 0; k < fn->n_ranged; k++) {
        const capffi_value *v = &args[fn->ranged[k].arg];
        if (v->u64 + fn->ranged[k].off > fn->ranged[k].span)
            return refuse_submit(
                ctx,
                capffi__fail(ctx, CAPFFI_ERANGE,
                             "argument %u (%s) is out of range",
                             fn->ranged[k].arg + 1u,
                             fn->sig.args[fn->ranged[k].arg]->name),
                fn);
    }

    /* The struct is of one size, so that freed ones are reused; what is
     * sized by the function's arguments lives in mem, after the bytes the
     * arguments need (each 16-byte aligned). */
    size_t n = fn->sig.nargs;
    if (fn->sig.ret->kind == CAPFFI__TPTR)
        return refuse_submit(
            ctx,
            capffi__fail(ctx, CAPFFI_ETYPE,
                         "a *NAME result is for blocking calls "
                         "(capffi_fn_call)"),
            fn);
    size_t arrays = n * (sizeof(void *) + sizeof(uint64_t) +
                         sizeof(capffi_buf *) + sizeof(capffi_obj *));
    size_t need = mem_needed(fn, args);
    size_t at = (need + 15) & ~(size_t)15;
    struct capffi__pool *p = &capffi__jobs_of(ctx)->pool;
    capffi_job *job = capffi__recycle_take(&p->dead);
    if (job)
        memset(job, 0, sizeof *job);
    else
        job = capffi__calloc(1, sizeof *job);
    if (!job || (at + arrays && !(job->mem = capffi__calloc(1, at + arrays)))) {
        if (job)
            capffi__recycle_put(&p->dead, job);
        return refuse_submit(
            ctx, capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory"), fn);
    }
    job->av = (void **)(void *)((char *)job->mem + at);
    job->slots = (uint64_t *)(job->av + n);
    job->lent = (capffi_buf **)(job->slots + n);
    job->held = (capffi_obj **)(job->lent + n);
    job->magic = JOB_LIVE;
    job->ctx = ctx;
    job->fn = fn;
    job->done = opts ? opts->done : NULL;
    job->payload = opts ? opts->payload : NULL;
    size_t used = 0;
    for (size_t i = 0; i < fn->sig.nargs && !rc; i++)
        rc = take_arg(job, i, args, &used);
    job->retp = fn->ret_struct && fn->sig.ret->size > sizeof job->ret.bytes
                    ? (void *)(job->mem + used)
                    : (void *)&job->ret;
    if (!rc)
        rc = enqueue(ctx, job);
    if (rc) {
        give_back(job);
        capffi__free(job->mem);
        capffi__free(job);
        return refuse_submit(ctx, rc, fn);
    }
    capffi__fn_hold(fn);
    capffi__list_add(&capffi__jobs_of(ctx)->pool.jobs, &job->link);
    capffi__jobs_of(ctx)->pool.unended++;
    *out = job;
    return CAPFFI_OK;
}

int
capffi_fn_call_async(capffi_job **out, capffi_fn *fn, const capffi_value *args)
{
    return capffi_fn_call_async_opts(out, fn, args, NULL);
}

/* ---- ending ------------------------------------------------------------- */

/* End a finished job on the owner thread. */
static void
end(capffi_job *job, bool handlers)
{
    atomic_store_explicit(&job->state, ENDED, memory_order_release);
    capffi__jobs_of(job->ctx)->pool.unended--;
    give_back(job);
    if (job->detached) {
        capffi__list_remove(&capffi__jobs_of(job->ctx)->pool.jobs, &job->link);
        job_release(job);
    } else if (handlers && job->done && !job->waited) {
        job->done(job->payload, job);
    }
}

/*
 * The finished jobs are taken one at a time, in the order they finished,
 * each under the lock: a handler that waits for (or cancels) another job
 * of the same batch finds it still on the list, where its own poll can end
 * it. At most the jobs finished when the reap began are ended, so one call
 * never runs forever; if it leaves some, the doorbell rings again, so a
 * host waiting on capffi_ctx_fd hears of them.
 */
size_t
capffi__job_reap(capffi_ctx *ctx, bool handlers)
{
    struct capffi__pool *p = &capffi__jobs_of(ctx)->pool;
    pthread_mutex_lock(&p->lock);
    size_t batch = p->ndone, n = 0;
    for (; n < batch && p->done_head; n++) {
        capffi_job *job = p->done_head;
        p->done_head = job->next;
        if (!p->done_head)
            p->done_tail = NULL;
        p->ndone--;
        pthread_mutex_unlock(&p->lock);
        end(job, handlers);
        pthread_mutex_lock(&p->lock);
    }
    if (p->done_head)
        capffi__owner_wake(ctx);
    pthread_mutex_unlock(&p->lock);
    return n;
}

static bool
job_finished(const void *job)
{
    int state = atomic_load_explicit(&((const capffi_job *)job)->state,
                                     memory_order_acquire);
    return state == FINISHED || state == ENDED;
}

bool
capffi__job_spin(const capffi_job *job)
{
    struct capffi__pool *p = &capffi__jobs_of(job->ctx)->pool;
    return spin_until(job_finished, job, &p->owner_spin_ns);
}

size_t
capffi__job_unended(const capffi_ctx *ctx)
{
    return capffi__jobs_of(ctx)->pool.unended;
}

bool
capffi__job_ended(const capffi_job *job)
{
    return atomic_load_explicit(&job->state, memory_order_acquire) == ENDED;
}

bool
capffi__job_waiting(capffi_job *job, bool waiting)
{
    bool was = job->waited;
    job->waited = waiting;
    return was;
}

capffi_ctx *
capffi__job_ctx(const capffi_job *job)
{
    return job->ctx;
}

int
capffi__job_check(const capffi_job *job, const char *fn)
{
    if (!job)
        return capffi__fail(NULL, CAPFFI_EINVAL, "%s: job is NULL", fn);
    if (job->magic != JOB_LIVE || job->detached)
        return capffi__fail(
            job->magic == JOB_LIVE || job->magic == JOB_DEAD ? job->ctx : NULL,
            CAPFFI_EINVAL, "%s: the job was freed", fn);
    return capffi__ctx_owner_check(job->ctx, fn);
}

void
capffi__job_no_result(capffi_value *ret, const capffi_job *job)
{
    if (ret && !job->fn->ret_struct)
        ret->u64 = 0; /* a struct result's memory is the caller's */
}

int
capffi__job_result(capffi_value *ret, capffi_job *job)
{
    capffi_ctx *ctx = job->ctx;
    if (job->taken || job->rc) {
        capffi__job_no_result(ret, job);
        return job->taken
                   ? capffi__fail(ctx, CAPFFI_EINVAL,
                                  "capffi_job_wait: the job's result was "
                                  "already taken")
                   : capffi__fail(ctx, job->rc, "the nonblocking call: %s",
                                  capffi_strerror(job->rc));
    }
    const capffi_fn *fn = job->fn;
    if (fn->ret_struct) {
        size_t size = fn->sig.ret->size;
        if (!ret || !ret->agg.ptr || ret->agg.len < size)
            return capffi__fail(ctx, CAPFFI_EINVAL,
                                "a struct result needs ret->agg with at "
                                "least %zu bytes (the result waits)",
                                size);
        memcpy(ret->agg.ptr, job->retp, size);
    } else if (ret) {
        capffi__value_load(ret, fn->ret_op, job->retp);
    }
    if (fn->flags & CAPFFI_FN_ERRNO)
        capffi__fn_set_errno(job->err);
    job->taken = true;
    return CAPFFI_OK;
}

int
capffi_job_cancel(capffi_job *job)
{
    int rc = capffi__job_check(job, "capffi_job_cancel");
    if (rc)
        return rc;
    capffi_ctx *ctx = job->ctx;
    struct capffi__pool *p = &capffi__jobs_of(ctx)->pool;
    pthread_mutex_lock(&p->lock);
    int state = atomic_load_explicit(&job->state, memory_order_relaxed);
    if (state == QUEUED) {
        capffi_job **pp = &p->head, *prev = NULL;
        while (*pp != job) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        *pp = job->next;
        if (p->tail == job)
            p->tail = prev;
        p->queued--;
        atomic_store_explicit(&p->pending, p->queued, memory_order_relaxed);
        job->rc = CAPFFI_ECANCELED;
        atomic_store_explicit(&job->state, FINISHED, memory_order_release);
    }
    pthread_mutex_unlock(&p->lock);
    if (state == RUNNING)
        return capffi__fail(ctx, CAPFFI_EBUSY,
                            "capffi_job_cancel: the job is running; it "
                            "finishes normally");
    if (state != QUEUED)
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "capffi_job_cancel: the job has %s",
                            state == ENDED ? "ended"
                                           : "finished (it ends at the "
                                             "next poll)");
    char target[32];
    const char *name = capffi__fn_target(job->fn, target);
    capffi__audit_emit(ctx, CAPFFI_OP_JOB_CANCEL, CAPFFI_OK, CAPFFI_REASON_NONE,
                       NULL, 0, name, "canceled before it started");
    end(job, false); /* the buffers come back now; no handler */
    return CAPFFI_OK;
}

void
capffi_job_free(capffi_job *job)
{
    if (!job)
        return;
    if (capffi__job_check(job, "capffi_job_free"))
        return; /* a second free, another thread: refused, with a message */
    if (job->waited) { /* from a handler or callback run by that wait */
        capffi__fail(job->ctx, CAPFFI_EBUSY,
                     "capffi_job_free: a capffi_job_wait is waiting for "
                     "the job; free it once the wait has returned");
        return;
    }
    if (atomic_load_explicit(&job->state, memory_order_acquire) != ENDED) {
        job->detached = true; /* freed when it ends */
        return;
    }
    capffi__list_remove(&capffi__jobs_of(job->ctx)->pool.jobs, &job->link);
    job_release(job);
}

void
capffi__job_fini(capffi_ctx *ctx)
{
    struct capffi__pool *p = &capffi__jobs_of(ctx)->pool;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    while (p->head) { /* queued: canceled */
        capffi_job *job = p->head;
        p->head = job->next;
        job->rc = CAPFFI_ECANCELED;
        atomic_store_explicit(&job->state, FINISHED, memory_order_release);
        push_done(p, job);
    }
    p->tail = NULL;
    p->queued = 0;
    atomic_store_explicit(&p->pending, 0, memory_order_relaxed);
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nthreads; i++) /* running: they finish */
        pthread_join(p->threads[i], NULL);
    capffi__job_reap(ctx, false);
    struct capffi__link *k;
    while ((k = capffi__list_pop(&p->jobs)))
        job_release(capffi__container_of(k, capffi_job, link));
    capffi__recycle_fini(&p->dead);
    capffi__free(p->threads);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
}
