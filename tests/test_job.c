/*
 * test_job.c - nonblocking calls: results, lent buffers, cancel, revoke,
 * close, freeing a context with jobs pending, callbacks from workers
 * (suites: unit, job, security, threads). Every wait is bounded.
 *
 * The fixture's gate (fx_gate_wait blocks until fx_gate_open) decides
 * which job runs when, so no case depends on the scheduler: with one
 * worker, a job waiting at the gate holds the worker, and the jobs
 * submitted after it stay queued until the gate opens.
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "fixture.h"

#define WAIT_MS 10000 /* a bound on every wait: a hang fails the case */

struct jfx {
    struct lib_fx l;
};

static int
setup_workers(void **state, unsigned workers, unsigned queue)
{
    struct jfx *f = calloc(1, sizeof *f);
    const char *allow[] = { env_path("CAPFFI_FIXTURE_DIR"), NULL };
    capffi_options o;
    memset(&o, 0, sizeof o);
    o.allow_paths = allow;
    o.n_allow = 1;
    o.workers = workers;
    o.job_queue = queue;
    assert_ok(capffi_ctx_new(&f->l.ctx, &o));
    assert_ok(capffi_audit_record(f->l.ctx, 4096));
    assert_ok(capffi_token_new(&f->l.tok, f->l.ctx, "job", NULL));
    assert_ok(capffi_lib_open(&f->l.lib, f->l.ctx, &f->l.tok,
                              env_path("CAPFFI_FIXTURE"), 0));
    fx_gate_close();
    *state = f;
    return 0;
}

static int
setup(void **state)
{
    return setup_workers(state, 0, 0);
}

static int
setup_one(void **state)
{
    return setup_workers(state, 1, 0);
}

static int
teardown(void **state)
{
    fx_gate_open(); /* no job of a failed case stays at the gate */
    return lib_fx_teardown(state);
}

static capffi_fn *
bind(struct jfx *f, const char *sym, const char *sig, uint32_t flags)
{
    return lib_fx_bind(&f->l, sym, sig, flags);
}

/* Wait until n calls are at the gate (a worker holds each). */
static void
gate_reached(int32_t n)
{
    for (int i = 0; i < WAIT_MS && fx_gate_inside() < n; i++)
        usleep(1000);
    assert_int_equal(fx_gate_inside(), n);
}

/* ---- results --------------------------------------------------------------
 */

static void
job_results_of_every_scalar_and_a_struct(void **state)
{
    struct jfx *f = *state;
    static const struct {
        const char *sym, *sig;
        capffi_value arg;
        char kind;
    } rows[] = {
        { "fx_id_bool", "(bool) -> bool", { .b = true }, 'b' },
        { "fx_id_i8", "(i8) -> i8", { .i64 = -128 }, 'i' },
        { "fx_id_u8", "(u8) -> u8", { .u64 = 255 }, 'u' },
        { "fx_id_i16", "(i16) -> i16", { .i64 = -32768 }, 'i' },
        { "fx_id_u16", "(u16) -> u16", { .u64 = 65535 }, 'u' },
        { "fx_id_i32", "(i32) -> i32", { .i64 = INT32_MIN }, 'i' },
        { "fx_id_u32", "(u32) -> u32", { .u64 = UINT32_MAX }, 'u' },
        { "fx_id_i64", "(i64) -> i64", { .i64 = INT64_MIN }, 'i' },
        { "fx_id_u64", "(u64) -> u64", { .u64 = UINT64_MAX }, 'u' },
        { "fx_id_f32", "(f32) -> f32", { .f32 = -1.5f }, 'f' },
        { "fx_id_f64", "(f64) -> f64", { .f64 = 0.1 }, 'd' },
        { "fx_id_ptr", "(pointer) -> pointer", { .u64 = 0x1000 }, 'p' },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        capffi_fn *fn = bind(f, rows[i].sym, rows[i].sig, 0);
        capffi_job *job;
        assert_ok(capffi_fn_call_async(&job, fn, &rows[i].arg));
        capffi_value r;
        memset(&r, 0xa5, sizeof r);
        assert_ok(capffi_job_wait(&r, job, WAIT_MS));
        if (!value_same(rows[i].kind, &r, &rows[i].arg))
            fail_msg("%s: the job's result differs from its argument",
                     rows[i].sym);
        capffi_job_free(job);
    }
    /* A struct by value, both ways, and a cstring copied at submission. */
    capffi_fn *make = bind(f, "fx_pair_make", "(i32, i32) -> { i32, i32 }", 0);
    capffi_value a[2] = { { .i64 = 3 }, { .i64 = -4 } };
    capffi_job *job;
    assert_ok(capffi_fn_call_async(&job, make, a));
    struct fx_pair_i32 pair = { 0, 0 };
    capffi_value r = { .agg = { &pair, sizeof pair } };
    assert_ok(capffi_job_wait(&r, job, WAIT_MS));
    assert_int_equal(pair.a, 3);
    assert_int_equal(pair.b, -4);
    assert_rc(capffi_job_wait(&r, job, 0), CAPFFI_EINVAL); /* taken */
    capffi_job_free(job);
    capffi_fn *sum = bind(f, "fx_big_sum", "({ i64, i64, i64 }) -> i64", 0);
    struct fx_big big = { 1, 2, 39 };
    capffi_value s = { .agg = { &big, sizeof big } };
    assert_ok(capffi_fn_call_async(&job, sum, &s));
    big.a = 1000; /* copied at submission */
    assert_ok(capffi_job_wait(&r, job, WAIT_MS));
    assert_int_equal(r.i64, 42);
    capffi_job_free(job);
    capffi_fn *len = bind(f, "fx_strlen", "(cstring) -> usize", 0);
    char text[] = "nonblocking";
    capffi_value t = { .str = text };
    assert_ok(capffi_fn_call_async(&job, len, &t));
    text[0] = '\0'; /* copied at submission */
    assert_ok(capffi_job_wait(&r, job, WAIT_MS));
    assert_int_equal(r.u64, 11);
    capffi_job_free(job);
}

static void
job_errno_comes_back(void **state)
{
    struct jfx *f = *state;
    capffi_fn *fn = bind(f, "fx_set_errno", "(i32) -> i32", CAPFFI_FN_ERRNO);
    capffi_value a = { .i64 = ERANGE };
    capffi_job *job;
    assert_ok(capffi_fn_call_async(&job, fn, &a));
    capffi_value r;
    assert_ok(capffi_job_wait(&r, job, WAIT_MS));
    assert_int_equal(capffi_last_errno(), ERANGE);
    capffi_job_free(job);
}

struct tally {
    size_t done;
    int64_t sum;
};

static void
count_done(void *payload, capffi_job *job)
{
    struct tally *t = payload;
    capffi_value r;
    assert_ok(capffi_job_wait(&r, job, 0));
    t->done++;
    t->sum += r.i64;
    capffi_job_free(job);
}

/* 10^4 jobs across the pool, the host polling for their handlers. */
static void
job_many_concurrent_with_the_host_polling(void **state)
{
    struct jfx *f = *state;
    capffi_fn *add = bind(f, "fx_add_i32", "(i32, i32) -> i32", 0);
    struct tally t = { 0, 0 };
    capffi_job_options o = { count_done, &t };
    int64_t want = 0;
    size_t submitted = 0;
    for (int i = 0; i < 10000; i++) {
        capffi_value a[2] = { { .i64 = i }, { .i64 = 1 } };
        capffi_job *job;
        int rc = capffi_fn_call_async_opts(&job, add, a, &o);
        if (rc == CAPFFI_EBUSY) { /* the queue is full: drain some */
            assert_rc(capffi_ctx_poll(f->l.ctx, WAIT_MS), CAPFFI_OK);
            i--;
            continue;
        }
        assert_ok(rc);
        want += i + 1;
        submitted++;
    }
    for (int n = 0; t.done < submitted && n < 100000; n++) {
        int rc = capffi_ctx_poll(f->l.ctx, WAIT_MS);
        assert_true(rc == CAPFFI_OK || rc == CAPFFI_ETIMEDOUT);
    }
    assert_int_equal(t.done, 10000);
    assert_true(t.sum == want);
}

/* ---- lent buffers ---------------------------------------------------------
 */

static void
job_lends_its_buffers_until_it_ends(void **state)
{
    struct jfx *f = *state;
    capffi_fn *gate = bind(f, "fx_gate_wait", "(i32, i32) -> i32", 0);
    capffi_fn *fill = bind(f, "fx_kept_fill", "(u8, usize) -> void", 0);
    (void)fill;
    capffi_fn *len = bind(f, "fx_strlen", "(buffer) -> usize", 0);
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, f->l.ctx, 16));
    void *p;
    assert_ok(capffi_buf_data(&p, NULL, b));
    memcpy(p, "abcdef", 7);

    /* The only worker waits at the gate: the second job stays queued. */
    capffi_value g[2] = { { .i64 = 7 }, { .i64 = WAIT_MS } };
    capffi_job *first, *job;
    assert_ok(capffi_fn_call_async(&first, gate, g));
    gate_reached(1);
    capffi_value a = { .buf = b };
    assert_ok(capffi_fn_call_async(&job, len, &a));

    /* Lent: the host and other calls are refused. */
    assert_rc(capffi_buf_data(&p, NULL, b), CAPFFI_EBUSY);
    capffi_value r;
    assert_rc(capffi_fn_call(len, &a, &r), CAPFFI_EBUSY);
    void *addr;
    assert_rc(capffi_ptr_of(&addr, f->l.ctx, &f->l.tok, b), CAPFFI_EBUSY);
    capffi_view *v;
    assert_rc(capffi_view_of_buf(&v, b, CAPFFI_VIEW_READ), CAPFFI_EBUSY);
    capffi_job *other;
    uint64_t mark = capffi_audit_mark(f->l.ctx);
    assert_rc(capffi_fn_call_async(&other, len, &a), CAPFFI_EBUSY);
    assert_null(other);
    assert_events(f->l.ctx, mark, CAPFFI_EXPECT_EXACT,
                  "job.submit EBUSY fx_strlen");
    /* Twice in one call is refused too, and lends nothing. */
    capffi_fn *two = bind(f, "fx_fill_after",
                          "(pointer, buffer, usize, u8, buffer) -> void", 0);
    capffi_buf *c;
    assert_ok(capffi_buf_new(&c, f->l.ctx, 4));
    capffi_value twice[5] = {
        { .p = NULL }, { .buf = c }, { .u64 = 0 }, { .u64 = 0 }, { .buf = c }
    };
    assert_rc(capffi_fn_call_async(&other, two, twice), CAPFFI_EBUSY);
    assert_ok(capffi_buf_data(&p, NULL, c)); /* given back */
    capffi_buf_free(c);

    /* Freed while lent: deferred to the job's end. */
    capffi_buf *d;
    assert_ok(capffi_buf_new(&d, f->l.ctx, 8));
    capffi_value da = { .buf = d };
    capffi_job *dj;
    assert_ok(capffi_fn_call_async(&dj, len, &da));
    capffi_buf_free(d);

    fx_gate_open();
    assert_ok(capffi_job_wait(&r, first, WAIT_MS));
    assert_int_equal(r.i64, 7);
    assert_ok(capffi_job_wait(&r, job, WAIT_MS));
    assert_int_equal(r.u64, 6);
    assert_ok(capffi_job_wait(&r, dj, WAIT_MS));
    assert_int_equal(r.u64, 0);
    /* Given back: usable again. */
    assert_ok(capffi_buf_data(&p, NULL, b));
    assert_ok(capffi_fn_call(len, &a, &r));
    assert_int_equal(r.u64, 6);
    capffi_job_free(first);
    capffi_job_free(job);
    capffi_job_free(dj);
}

/* ---- cancel, revoke, close ------------------------------------------------
 */

static void
job_cancel_queued_and_running(void **state)
{
    struct jfx *f = *state;
    capffi_fn *gate = bind(f, "fx_gate_wait", "(i32, i32) -> i32", 0);
    capffi_fn *len = bind(f, "fx_strlen", "(buffer) -> usize", 0);
    capffi_value g[2] = { { .i64 = 1 }, { .i64 = WAIT_MS } };
    capffi_job *running, *queued;
    assert_ok(capffi_fn_call_async(&running, gate, g));
    gate_reached(1);
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, f->l.ctx, 4));
    capffi_value a = { .buf = b };
    uint64_t mark = capffi_audit_mark(f->l.ctx);
    assert_ok(capffi_fn_call_async(&queued, len, &a));
    assert_ok(capffi_job_cancel(queued));
    assert_ok(capffi_buf_data(NULL, NULL, b)); /* given back at once */
    assert_events(f->l.ctx, mark, CAPFFI_EXPECT_EXACT,
                  "job.cancel ok fx_strlen");
    capffi_value r;
    assert_rc(capffi_job_wait(&r, queued, 0), CAPFFI_ECANCELED);
    assert_rc(capffi_job_cancel(queued), CAPFFI_EINVAL); /* ended */
    assert_rc(capffi_job_cancel(running), CAPFFI_EBUSY);
    assert_non_null(strstr(capffi_ctx_errmsg(f->l.ctx), "finishes normally"));
    fx_gate_open();
    assert_ok(capffi_job_wait(&r, running, WAIT_MS));
    assert_int_equal(r.i64, 1);
    capffi_job_free(running);
    capffi_job_free(queued);
}

static void
job_revoke_and_close_with_jobs_queued(void **state)
{
    struct jfx *f = *state;
    capffi_fn *gate = bind(f, "fx_gate_wait", "(i32, i32) -> i32", 0);
    capffi_value g[2] = { { .i64 = 1 }, { .i64 = WAIT_MS } };
    capffi_job *running;
    assert_ok(capffi_fn_call_async(&running, gate, g));
    gate_reached(1);

    /* A second library through a token that will be revoked, and a
     * third that will be closed, each with a job queued behind the gate. */
    capffi_token child;
    assert_ok(capffi_token_attenuate(&child, f->l.ctx, &f->l.tok, NULL));
    capffi_lib *rl, *cl;
    assert_ok(
        capffi_lib_open(&rl, f->l.ctx, &child, env_path("CAPFFI_FIXTURE"), 0));
    assert_ok(capffi_lib_open(&cl, f->l.ctx, &f->l.tok,
                              env_path("CAPFFI_FIXTURE"), 0));
    capffi_fn *rfn = bind_sym(rl, "fx_add_i32", "(i32, i32) -> i32");
    capffi_fn *cfn = bind_sym(cl, "fx_add_i32", "(i32, i32) -> i32");
    capffi_value a[2] = { { .i64 = 1 }, { .i64 = 2 } };
    capffi_job *rj, *cj;
    uint64_t before = capffi_audit_mark(f->l.ctx);
    assert_ok(capffi_fn_call_async(&rj, rfn, a));
    assert_ok(capffi_fn_call_async(&cj, cfn, a));
    assert_ok(capffi_token_revoke(f->l.ctx, &child));
    capffi_lib_close(cl);
    /* Refused at submission now. */
    capffi_job *late;
    uint64_t mark = capffi_audit_mark(f->l.ctx);
    assert_rc(capffi_fn_call_async(&late, rfn, a), CAPFFI_EREVOKED);
    assert_rc(capffi_fn_call_async(&late, cfn, a), CAPFFI_ECLOSED);
    assert_events(f->l.ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  "job.submit EREVOKED fx_add_i32",
                  "job.submit ECLOSED fx_add_i32");
    /* The submissions that were accepted wrote nothing. */
    capffi_audit_filter submits = CAPFFI_AUDIT_FILTER_ALL;
    submits.op = CAPFFI_OP_JOB_SUBMIT;
    submits.since = before;
    assert_int_equal(capffi_audit_count_where(f->l.ctx, &submits), 2);

    fx_gate_open();
    capffi_value r;
    assert_rc(capffi_job_wait(&r, rj, WAIT_MS), CAPFFI_EREVOKED);
    assert_rc(capffi_job_wait(&r, cj, WAIT_MS), CAPFFI_ECLOSED);
    assert_ok(capffi_job_wait(&r, running, WAIT_MS));
    capffi_job_free(rj);
    capffi_job_free(cj);
    capffi_job_free(running);
}

/* ---- freeing --------------------------------------------------------------
 */

static int handler_runs;

static void
never_after_free(void *payload, capffi_job *job)
{
    (void)payload;
    (void)job;
    handler_runs++;
}

/* A wait that gives up leaves the job's handler armed: the host that
 * peeked with a 0 timeout still hears of the end from its loop. A job
 * that ends during a wait gives its result to the wait, not the handler. */
static void
job_wait_that_times_out_keeps_the_handler(void **state)
{
    struct jfx *f = *state;
    capffi_fn *gate = bind(f, "fx_gate_wait", "(i32, i32) -> i32", 0);
    capffi_job_options o = { never_after_free, NULL };
    capffi_value g[2] = { { .i64 = 1 }, { .i64 = WAIT_MS } };
    capffi_job *job;
    handler_runs = 0;
    assert_int_equal(capffi_ctx_keepalive(f->l.ctx), 0);
    assert_ok(capffi_fn_call_async_opts(&job, gate, g, &o));
    /* Something will arrive: the host keeps polling. */
    assert_int_equal(capffi_ctx_keepalive(f->l.ctx), 1);
    gate_reached(1);
    capffi_value r = { .i64 = 7 };
    assert_rc(capffi_job_wait(&r, job, 0), CAPFFI_ETIMEDOUT);
    assert_int_equal(r.i64, 0);
    assert_rc(capffi_job_wait(&r, job, 1), CAPFFI_ETIMEDOUT);
    fx_gate_open();
    for (int i = 0; i < WAIT_MS / 10 && handler_runs == 0; i++) {
        int rc = capffi_ctx_poll(f->l.ctx, 10);
        assert_true(rc == CAPFFI_OK || rc == CAPFFI_ETIMEDOUT);
    }
    assert_int_equal(handler_runs, 1);
    assert_int_equal(capffi_ctx_keepalive(f->l.ctx), 0);
    assert_ok(capffi_job_wait(&r, job, 0));
    assert_int_equal(r.i64, 1);
    capffi_job_free(job);
    /* Ended during a wait: the wait takes it, the handler stays quiet. */
    fx_gate_close();
    handler_runs = 0;
    assert_ok(capffi_fn_call_async_opts(&job, gate, g, &o));
    gate_reached(1);
    fx_gate_open();
    assert_ok(capffi_job_wait(&r, job, WAIT_MS));
    assert_int_equal(handler_runs, 0);
    capffi_job_free(job);
}

static capffi_job *waited_for;
static int free_refused;

static void
frees_the_waited_job(void *payload, capffi_job *job)
{
    capffi_ctx *ctx = payload;
    capffi_job_free(waited_for); /* refused: a wait is waiting for it */
    free_refused = strstr(capffi_ctx_errmsg(ctx), "is waiting for") != NULL;
    capffi_job_free(job);
}

/* A handler run by capffi_job_wait cannot free the job being waited for:
 * the wait would take the result of a released job. */
static void
job_free_of_a_job_being_waited_for_is_refused(void **state)
{
    struct jfx *f = *state;
    capffi_fn *add = bind(f, "fx_add_i32", "(i32, i32) -> i32", 0);
    capffi_job_options o = { frees_the_waited_job, f->l.ctx };
    capffi_value two[2] = { { .i64 = 40 }, { .i64 = 2 } };
    capffi_job *first;
    /* One worker: the first job ends first, so its handler runs inside
     * the wait for the second. */
    assert_ok(capffi_fn_call_async_opts(&first, add, two, &o));
    assert_ok(capffi_fn_call_async(&waited_for, add, two));
    free_refused = 0;
    capffi_value r = { 0 };
    assert_ok(capffi_job_wait(&r, waited_for, WAIT_MS));
    assert_int_equal(r.i64, 42);
    assert_int_equal(free_refused, 1);
    /* Still the host's, and freed once. */
    assert_rc(capffi_job_wait(&r, waited_for, 0), CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(f->l.ctx), "already taken"));
    capffi_job_free(waited_for);
}

static capffi_job *batch_mate;
static int batch_mate_rc = -1;

static void
waits_for_its_batch_mate(void *payload, capffi_job *job)
{
    (void)payload;
    capffi_value r = { 0 };
    batch_mate_rc = capffi_job_wait(&r, batch_mate, WAIT_MS);
    if (batch_mate_rc == CAPFFI_OK && r.i64 != 42)
        batch_mate_rc = -2;
    capffi_job_free(job);
}

/* A handler that waits for a job that finished in the same batch as its
 * own ends it (it is not held back by the poll running the handler, where
 * the wait would spin until its time ran out). */
static void
job_handler_waits_for_a_job_of_its_batch(void **state)
{
    struct jfx *f = *state;
    capffi_fn *add = bind(f, "fx_add_i32", "(i32, i32) -> i32", 0);
    capffi_fn *gate = bind(f, "fx_gate_wait", "(i32, i32) -> i32", 0);
    capffi_job_options o = { waits_for_its_batch_mate, NULL };
    capffi_value two[2] = { { .i64 = 40 }, { .i64 = 2 } };
    capffi_value g[2] = { { .i64 = 1 }, { .i64 = WAIT_MS } };
    capffi_job *first, *last;
    /* One worker, in order: when the gate job arrives at the gate, the
     * two before it have finished, and one poll takes both. */
    assert_ok(capffi_fn_call_async_opts(&first, add, two, &o));
    assert_ok(capffi_fn_call_async(&batch_mate, add, two));
    assert_ok(capffi_fn_call_async(&last, gate, g));
    gate_reached(1);
    assert_ok(capffi_ctx_poll(f->l.ctx, 0));
    assert_int_equal(batch_mate_rc, CAPFFI_OK); /* not CAPFFI_ETIMEDOUT */
    capffi_job_free(batch_mate);
    fx_gate_open();
    capffi_value r;
    assert_ok(capffi_job_wait(&r, last, WAIT_MS));
    capffi_job_free(last);
}

/* capffi_ctx_free with a job running and jobs queued: the queued ones are
 * canceled, the running one finishes, no handler runs, nothing leaks. */
static void
job_context_freed_with_jobs_queued_and_running(void **state)
{
    struct jfx *f = *state;
    capffi_fn *gate = bind(f, "fx_gate_wait", "(i32, i32) -> i32", 0);
    capffi_fn *len = bind(f, "fx_strlen", "(buffer) -> usize", 0);
    capffi_job_options o = { never_after_free, NULL };
    capffi_value g[2] = { { .i64 = 1 }, { .i64 = 50 } }; /* ends alone */
    capffi_job *job;
    assert_ok(capffi_fn_call_async_opts(&job, gate, g, &o));
    gate_reached(1);
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, f->l.ctx, 4));
    capffi_value a = { .buf = b };
    /* One job lends the buffer; two more wait behind it without one. */
    assert_ok(capffi_fn_call_async_opts(&job, len, &a, &o));
    capffi_value none = { .buf = NULL };
    assert_ok(capffi_fn_call_async_opts(&job, len, &none, &o));
    assert_ok(capffi_fn_call_async_opts(&job, len, &none, &o));
    handler_runs = 0;
    capffi_ctx_free(f->l.ctx);
    f->l.ctx = NULL;
    assert_int_equal(handler_runs, 0);
}

/* A pending job freed by the host is detached: its buffer comes back when
 * it ends, and its handler does not run. */
static void
job_free_of_a_pending_job_detaches_it(void **state)
{
    struct jfx *f = *state;
    capffi_fn *gate = bind(f, "fx_gate_wait", "(i32, i32) -> i32", 0);
    capffi_fn *len = bind(f, "fx_strlen", "(buffer) -> usize", 0);
    capffi_value g[2] = { { .i64 = 1 }, { .i64 = WAIT_MS } };
    capffi_job *running, *queued;
    assert_ok(capffi_fn_call_async(&running, gate, g));
    gate_reached(1);
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, f->l.ctx, 4));
    capffi_value a = { .buf = b };
    capffi_job_options o = { never_after_free, NULL };
    handler_runs = 0;
    assert_ok(capffi_fn_call_async_opts(&queued, len, &a, &o));
    capffi_job_free(queued);
    assert_rc(capffi_buf_data(NULL, NULL, b), CAPFFI_EBUSY);
    assert_int_equal(capffi_ctx_keepalive(f->l.ctx), 2); /* both count */
    fx_gate_open();
    capffi_value r;
    assert_ok(capffi_job_wait(&r, running, WAIT_MS));
    /* The detached job ends; a poll finishes it. */
    for (int i = 0; i < 100 && capffi_buf_data(NULL, NULL, b); i++)
        capffi_ctx_poll(f->l.ctx, 100);
    assert_ok(capffi_buf_data(NULL, NULL, b));
    assert_int_equal(handler_runs, 0);
    capffi_job_free(running);
    /* The function may be freed while its jobs run; they still finish. */
    capffi_fn *add = bind(f, "fx_add_i32", "(i32, i32) -> i32", 0);
    fx_gate_close();
    assert_ok(capffi_fn_call_async(&running, gate, g));
    gate_reached(1);
    capffi_value two[2] = { { .i64 = 40 }, { .i64 = 2 } };
    assert_ok(capffi_fn_call_async(&queued, add, two));
    capffi_fn_free(add);
    fx_gate_open();
    assert_ok(capffi_job_wait(&r, queued, WAIT_MS));
    assert_int_equal(r.i64, 42);
    capffi_job_free(queued);
    capffi_job_free(running);
}

/* ---- callbacks from workers -----------------------------------------------
 */

static void
negate(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    ret->i64 = -args[0].i64;
}

static void
job_native_code_calls_a_thread_safe_callback(void **state)
{
    struct jfx *f = *state;
    capffi_cb *cb;
    assert_ok(capffi_cb_new(&cb, f->l.ctx, &f->l.tok, "(i32) -> i32", negate,
                            NULL, CAPFFI_CB_THREADSAFE));
    capffi_fn *apply = bind(f, "fx_apply_i32", "(function, i32) -> i32", 0);
    capffi_value a[2] = { { .p = cb }, { .i64 = 5 } };
    capffi_job *job;
    assert_ok(capffi_fn_call_async(&job, apply, a));
    capffi_value r;
    assert_ok(capffi_job_wait(&r, job, WAIT_MS)); /* serves the callback */
    assert_int_equal(r.i64, -5);
    capffi_job_free(job);
    /* Without the flag, the worker's invocation fails closed. */
    capffi_cb *plain;
    assert_ok(capffi_cb_new(&plain, f->l.ctx, &f->l.tok, "(i32) -> i32", negate,
                            NULL, 0));
    a[0].p = plain;
    assert_ok(capffi_fn_call_async(&job, apply, a));
    assert_ok(capffi_job_wait(&r, job, WAIT_MS));
    assert_int_equal(r.i64, 0); /* the default result */
    assert_int_equal(cb_status(plain).first, CAPFFI_ETHREAD);
    capffi_job_free(job);
}

/* ---- bad input ------------------------------------------------------------
 */

struct off_owner {
    capffi_job *job;
    int rc;
};

static void *
wait_off_owner(void *arg)
{
    struct off_owner *o = arg;
    capffi_value r;
    o->rc = capffi_job_wait(&r, o->job, 0);
    return NULL;
}

static void
job_bad_input(void **state)
{
    struct jfx *f = *state;
    capffi_value r;
    assert_rc(capffi_job_wait(&r, NULL, 0), CAPFFI_EINVAL);
    assert_rc(capffi_job_cancel(NULL), CAPFFI_EINVAL);
    capffi_job_free(NULL);
    capffi_job *job = (capffi_job *)&job;
    assert_rc(capffi_fn_call_async(&job, NULL, NULL), CAPFFI_EINVAL);
    assert_null(job);
    capffi_fn *add = bind(f, "fx_add_i32", "(i32, i32) -> i32", 0);
    assert_rc(capffi_fn_call_async(&job, add, NULL), CAPFFI_EINVAL);
    assert_rc(capffi_fn_call_async(NULL, add, NULL), CAPFFI_EINVAL);
    capffi_value big[2] = { { .i64 = INT64_MAX }, { .i64 = 0 } };
    assert_rc(capffi_fn_call_async(&job, add, big), CAPFFI_ERANGE);
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, f->l.ctx, 4));
    capffi_buf_free(b);
    capffi_fn *len = bind(f, "fx_strlen", "(buffer) -> usize", 0);
    capffi_value freed = { .buf = b };
    assert_rc(capffi_fn_call_async(&job, len, &freed), CAPFFI_EINVAL);

    /* A struct result needs room for it. */
    capffi_fn *make = bind(f, "fx_pair_make", "(i32, i32) -> { i32, i32 }", 0);
    capffi_value a[2] = { { .i64 = 1 }, { .i64 = 2 } };
    assert_ok(capffi_fn_call_async(&job, make, a));
    memset(&r, 0, sizeof r);
    assert_rc(capffi_job_wait(&r, job, WAIT_MS), CAPFFI_EINVAL);
    struct fx_pair_i32 pair;
    r.agg.ptr = &pair;
    r.agg.len = sizeof pair;
    assert_ok(capffi_job_wait(&r, job, 0));

    /* Only the owner thread waits. */
    struct off_owner o = { job, 1 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wait_off_owner, &o), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_rc(o.rc, CAPFFI_ETHREAD);

    /* A second free is refused, with a message. */
    capffi_job_free(job);
    capffi_job_free(job);
    assert_non_null(strstr(capffi_ctx_errmsg(f->l.ctx), "freed"));
    assert_rc(capffi_job_wait(&r, job, 0), CAPFFI_EINVAL);
}

/* A full queue answers CAPFFI_EBUSY at submission, audited. */
static void
job_full_queue_is_busy(void **state)
{
    struct jfx *f = *state;
    capffi_fn *gate = bind(f, "fx_gate_wait", "(i32, i32) -> i32", 0);
    capffi_value g[2] = { { .i64 = 1 }, { .i64 = WAIT_MS } };
    capffi_job *running, *queued, *over;
    uint64_t mark = capffi_audit_mark(f->l.ctx);
    assert_ok(capffi_fn_call_async(&running, gate, g));
    gate_reached(1);
    assert_ok(capffi_fn_call_async(&queued, gate, g));
    assert_rc(capffi_fn_call_async(&over, gate, g), CAPFFI_EBUSY);
    assert_non_null(strstr(capffi_ctx_errmsg(f->l.ctx), "queue is full"));
    /* Only the refusal: accepted submissions are not audited. */
    assert_events(f->l.ctx, mark, CAPFFI_EXPECT_EXACT,
                  "job.submit EBUSY fx_gate_wait");
    fx_gate_open();
    capffi_value r;
    assert_ok(capffi_job_wait(&r, running, WAIT_MS));
    assert_ok(capffi_job_wait(&r, queued, WAIT_MS));
    capffi_job_free(running);
    capffi_job_free(queued);
}

static int
setup_one_short(void **state)
{
    return setup_workers(state, 1, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            job_results_of_every_scalar_and_a_struct, setup, teardown),
        cmocka_unit_test_setup_teardown(job_errno_comes_back, setup, teardown),
        cmocka_unit_test_setup_teardown(
            job_many_concurrent_with_the_host_polling, setup, teardown),
        cmocka_unit_test_setup_teardown(job_lends_its_buffers_until_it_ends,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(job_cancel_queued_and_running,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(job_revoke_and_close_with_jobs_queued,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(
            job_context_freed_with_jobs_queued_and_running, setup_one,
            teardown),
        cmocka_unit_test_setup_teardown(
            job_wait_that_times_out_keeps_the_handler, setup_one, teardown),
        cmocka_unit_test_setup_teardown(
            job_free_of_a_job_being_waited_for_is_refused, setup_one, teardown),
        cmocka_unit_test_setup_teardown(
            job_handler_waits_for_a_job_of_its_batch, setup_one, teardown),
        cmocka_unit_test_setup_teardown(job_free_of_a_pending_job_detaches_it,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(
            job_native_code_calls_a_thread_safe_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(job_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(job_full_queue_is_busy, setup_one_short,
                                        teardown),
    };
    return RUN_TESTS("job", tests);
}
