/*
 * test_cb_threads.c - callbacks invoked on other threads: queued to the
 * owner and run in capffi_ctx_poll, refused without CAPFFI_CB_THREADSAFE,
 * timing out when the owner never polls, run on the calling thread while
 * the owner lends the host (CAPFFI_OPT_LEND_OWNER), never two at once nor
 * concurrently with the owner (C3), racing revocation (T7), and a context
 * freed while a thread waits (suites: security, threads, cb). Also run
 * under ThreadSanitizer.
 *
 * Handlers never call cmocka: they may run on other threads, so they
 * count what they see and the owner thread asserts afterwards.
 */
#include "helpers.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "fixture.h"

struct fx {
    struct lib_fx l; /* first: lib_fx_teardown frees the struct */
    capffi_fn *start, *done, *join, *call, *calls, *nop;
};

static struct fx *
fx_new(uint32_t flags)
{
    struct fx *f = calloc(1, sizeof *f);
    lib_fx_open(&f->l, CAPFFI_OPT_ALLOW_ALL | flags, NULL, "CAPFFI_FIXTURE",
                "threads");
    assert_ok(capffi_audit_record(f->l.ctx, 4096));
    f->start =
        bind_sym(f->l.lib, "fx_thread_start", "(function, i32) -> pointer");
    f->done = bind_sym(f->l.lib, "fx_thread_done", "(pointer) -> i32");
    f->join = bind_sym(f->l.lib, "fx_thread_join", "(pointer) -> i64");
    f->call = bind_sym(f->l.lib, "fx_thread_call", "(function, i32) -> i64");
    f->calls =
        bind_sym(f->l.lib, "fx_threads_call", "(function, i32, i32) -> i64");
    f->nop = bind_sym(f->l.lib, "fx_nop", "() -> void");
    return f;
}

static int
setup(void **state)
{
    *state = fx_new(0);
    return 0;
}

static int
setup_lend(void **state)
{
    *state = fx_new(CAPFFI_OPT_LEND_OWNER);
    return 0;
}

/* What handlers observe. */
struct seen {
    pthread_t owner;
    atomic_int calls;
    atomic_int on_owner;   /* ran on the owner thread */
    atomic_int inside;     /* handlers running now */
    atomic_int overlap;    /* a handler found another one running */
    atomic_int owner_busy; /* the owner thread runs host code now */
    atomic_int clash;      /* a handler ran while the owner ran host code */
    atomic_int after;      /* set once a revocation or close returned */
    atomic_int late;       /* a handler ran after that */
    capffi_ctx *ctx;
    const capffi_token *tok;
    atomic_int acting_fail; /* an owner-only call failed in a handler */
};

static void
seen_init(struct seen *s, struct fx *f)
{
    memset(s, 0, sizeof *s);
    s->owner = pthread_self();
    s->ctx = f->l.ctx;
    s->tok = &f->l.tok;
}

/* ret = 2x, noting where and with whom it ran. */
static void
twice(void *payload, const capffi_value *args, capffi_value *ret)
{
    struct seen *s = payload;
    if (atomic_fetch_add(&s->inside, 1) != 0)
        atomic_fetch_add(&s->overlap, 1);
    if (atomic_load(&s->owner_busy))
        atomic_fetch_add(&s->clash, 1);
    if (atomic_load(&s->after))
        atomic_fetch_add(&s->late, 1);
    if (pthread_equal(pthread_self(), s->owner))
        atomic_fetch_add(&s->on_owner, 1);
    atomic_fetch_add(&s->calls, 1);
    ret->i64 = 2 * args[0].i64;
    atomic_fetch_sub(&s->inside, 1);
}

static capffi_cb *
cb_make(struct fx *f, capffi_cb_fn fn, void *payload, uint32_t flags,
        int timeout_ms, int32_t dflt)
{
    capffi_value d;
    d.i64 = dflt;
    capffi_cb_options o;
    memset(&o, 0, sizeof o);
    o.flags = flags;
    o.timeout_ms = timeout_ms;
    o.result = &d;
    capffi_cb *cb = NULL;
    int rc = capffi_cb_new_opts(&cb, f->l.ctx, &f->l.tok, "(i32) -> i32", fn,
                                payload, &o);
    if (rc)
        fail_msg("cb_new: %s: %s", capffi_err_name(rc),
                 capffi_ctx_errmsg(f->l.ctx));
    return cb;
}

/* fx_thread_start(cb, n) through capffi. */
static void *
start(struct fx *f, capffi_cb *cb, int32_t n)
{
    capffi_value a[2], r;
    a[0].cb = cb;
    a[1].i64 = n;
    assert_ok(capffi_fn_call(f->start, a, &r));
    assert_non_null(r.p);
    return r.p;
}

static bool
done(struct fx *f, void *t)
{
    capffi_value a, r;
    a.p = t;
    assert_ok(capffi_fn_call(f->done, &a, &r));
    return r.i64 != 0;
}

static int64_t
join(struct fx *f, void *t)
{
    capffi_value a, r;
    a.p = t;
    assert_ok(capffi_fn_call(f->join, &a, &r));
    return r.i64;
}

/* fx_thread_call(cb, n): the owner blocks in native code meanwhile. */
static int64_t
call_blocking(struct fx *f, capffi_cb *cb, int32_t n)
{
    capffi_value a[2], r;
    a[0].cb = cb;
    a[1].i64 = n;
    assert_ok(capffi_fn_call(f->call, a, &r));
    return r.i64;
}

/* 2 * (0 + 1 + ... + n-1) */
static int64_t
twice_sum(int64_t n)
{
    return n * (n - 1);
}

/*
 * A thread of the test's own that calls an "(i32) -> i32" callback's code
 * once each time the owner asks (code(0), code(1), ...). Unlike the
 * fixture's threads, it is started and joined without a native call, so
 * the owner can keep the host for itself from the moment it asks until the
 * invocation has run: where each invocation runs is then decided by the
 * test, not by the scheduler. It lives on the heap: when an assertion
 * fails with an invocation still waiting, the thread outlives the test.
 */
struct driver {
    pthread_t th;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unop_fn code;
    int asked, made; /* invocations asked for; returned */
    int64_t sum;     /* of their results */
    bool quit;
};

static void *
driver_body(void *arg)
{
    struct driver *d = arg;
    pthread_mutex_lock(&d->lock);
    for (;;) {
        while (!d->quit && d->made == d->asked)
            pthread_cond_wait(&d->cond, &d->lock);
        if (d->made == d->asked)
            break;
        int32_t i = d->made;
        pthread_mutex_unlock(&d->lock);
        int32_t r = d->code(i);
        pthread_mutex_lock(&d->lock);
        d->sum += r;
        d->made++;
        pthread_cond_broadcast(&d->cond);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

static struct driver *
driver_start(const capffi_cb *cb)
{
    struct driver *d = calloc(1, sizeof *d);
    assert_non_null(d);
    d->code = cb_unop(cb);
    assert_int_equal(pthread_mutex_init(&d->lock, NULL), 0);
    assert_int_equal(pthread_cond_init(&d->cond, NULL), 0);
    assert_int_equal(pthread_create(&d->th, NULL, driver_body, d), 0);
    return d;
}

/* Ask for one more invocation; it starts at once, on the driver. */
static void
driver_ask(struct driver *d)
{
    pthread_mutex_lock(&d->lock);
    d->asked++;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

/* Whether every invocation asked for has returned. */
static bool
driver_idle(struct driver *d)
{
    pthread_mutex_lock(&d->lock);
    bool idle = d->made == d->asked;
    pthread_mutex_unlock(&d->lock);
    return idle;
}

/* Wait until every invocation asked for has returned. */
static void
driver_wait(struct driver *d)
{
    pthread_mutex_lock(&d->lock);
    while (d->made != d->asked)
        pthread_cond_wait(&d->cond, &d->lock);
    pthread_mutex_unlock(&d->lock);
}

/* Stop, join and free the driver; the sum of its results. */
static int64_t
driver_stop(struct driver *d)
{
    pthread_mutex_lock(&d->lock);
    d->quit = true;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    assert_int_equal(pthread_join(d->th, NULL), 0);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    int64_t sum = d->sum;
    free(d);
    return sum;
}

/* Poll until every invocation asked for has returned (some may run lent
 * meanwhile instead); at most 60 s, so that an invocation the loop never
 * runs fails the test rather than hanging it. */
static void
driver_settle(struct fx *f, struct driver *d)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!driver_idle(d)) {
        int rc = capffi_ctx_poll(f->l.ctx, 10);
        assert_true(rc == CAPFFI_OK || rc == CAPFFI_ETIMEDOUT);
        clock_gettime(CLOCK_MONOTONIC, &t);
        assert_true(t.tv_sec - t0.tv_sec < 60);
    }
}

/* Empty the loop's descriptor (and queue) so that it turns readable again
 * only for an invocation queued from now on. */
static void
loop_quiet(struct fx *f, struct seen *s)
{
    int calls = atomic_load(&s->calls);
    int rc = capffi_ctx_poll(f->l.ctx, 0);
    assert_true(rc == CAPFFI_OK || rc == CAPFFI_ETIMEDOUT);
    assert_int_equal(atomic_load(&s->calls), calls); /* nothing was queued */
}

/* Wait, in host code (no native call), until an invocation is queued. */
static void
wait_queued(struct fx *f)
{
    struct pollfd p = { .fd = capffi_ctx_fd(f->l.ctx), .events = POLLIN };
    assert_int_equal(poll(&p, 1, 60000), 1);
}

/* ---- queued to the owner ------------------------------------------------ */

/* A fixture thread calls a thread-safe callback 10^4 times while the owner
 * polls: each invocation waits for a poll, so every one runs on the owner
 * and the thread cannot finish before the first poll. */
static void
cbt_foreign_thread_calls_while_owner_polls(void **state)
{
    struct fx *f = *state;
    struct seen s;
    seen_init(&s, f);
    capffi_cb *cb = cb_make(f, twice, &s, CAPFFI_CB_THREADSAFE, 0, -1);
    uint32_t refs;
    assert_ok(capffi_cb_ref(&refs, cb));
    void *t = start(f, cb, 10000);
    size_t polls = 0;
    while (!done(f, t)) {
        int rc = capffi_ctx_poll(f->l.ctx, 100);
        assert_true(rc == CAPFFI_OK || rc == CAPFFI_ETIMEDOUT);
        polls++;
    }
    assert_true(join(f, t) == twice_sum(10000));
    assert_int_equal(atomic_load(&s.calls), 10000);
    assert_int_equal(atomic_load(&s.on_owner), 10000);
    assert_int_equal(atomic_load(&s.overlap), 0);
    assert_true(polls > 0);
    assert_int_equal(cb_status(cb).failures, 0);
    assert_int_equal(capffi_ctx_keepalive(f->l.ctx), 1);
    assert_ok(capffi_cb_unref(&refs, cb));
    assert_int_equal(capffi_ctx_keepalive(f->l.ctx), 0);
}

/*
 * Lending changes where an invocation runs, not whether it runs: one made
 * while the owner runs host code waits for the owner's poll and runs on
 * the owner thread; one made while the owner is inside a native call runs
 * on the calling thread. Each round puts the owner in one state and then
 * the other for the whole of an invocation, so the thread every call runs
 * on is known, and none is lost or run twice.
 */
static void
cbt_lending_owner_that_polls_gets_every_call(void **state)
{
    struct fx *f = *state;
    struct seen s;
    seen_init(&s, f);
    capffi_cb *cb = cb_make(f, twice, &s, CAPFFI_CB_THREADSAFE, 0, -1);
    struct driver *d = driver_start(cb);
    enum { ROUNDS = 50, LENT_PER_ROUND = 3 };
    for (int round = 0; round < ROUNDS; round++) {
        /* Host code: queued until the poll, which runs it here. */
        loop_quiet(f, &s);
        int calls = atomic_load(&s.calls);
        driver_ask(d);
        wait_queued(f);
        assert_int_equal(atomic_load(&s.calls), calls);
        assert_ok(capffi_ctx_poll(f->l.ctx, 0));
        assert_int_equal(atomic_load(&s.calls), calls + 1);
        assert_int_equal(atomic_load(&s.on_owner), round + 1);
        driver_wait(d);
        /* Inside a native call that lasts until the fixture's thread is
         * done: every invocation runs lent, on that thread. */
        assert_true(call_blocking(f, cb, LENT_PER_ROUND) ==
                    twice_sum(LENT_PER_ROUND));
        assert_int_equal(atomic_load(&s.calls), calls + 1 + LENT_PER_ROUND);
        assert_int_equal(atomic_load(&s.on_owner), round + 1);
    }
    assert_true(driver_stop(d) == twice_sum(ROUNDS));
    assert_int_equal(atomic_load(&s.calls), ROUNDS * (1 + LENT_PER_ROUND));
    assert_int_equal(atomic_load(&s.overlap), 0);
    assert_int_equal(cb_status(cb).failures, 0);
}

/* The descriptor turns readable when an invocation is queued, and a poll
 * without waiting then runs it. */
static void
cbt_fd_is_readable_when_work_is_queued(void **state)
{
    struct fx *f = *state;
    struct seen s;
    seen_init(&s, f);
    capffi_cb *cb = cb_make(f, twice, &s, CAPFFI_CB_THREADSAFE, 0, -1);
    struct pollfd p = { .fd = capffi_ctx_fd(f->l.ctx), .events = POLLIN };
    assert_int_equal(poll(&p, 1, 0), 0);
    void *t = start(f, cb, 1);
    assert_int_equal(poll(&p, 1, 60000), 1);
    assert_int_equal(atomic_load(&s.calls), 0);
    assert_ok(capffi_ctx_poll(f->l.ctx, 0));
    assert_int_equal(atomic_load(&s.calls), 1);
    assert_true(join(f, t) == 0);
    /* The thread-safe callback runs directly on the owner thread. */
    unop_fn code = cb_unop(cb);
    assert_int_equal(code(21), 42);
    assert_int_equal(atomic_load(&s.calls), 2);
    assert_int_equal(atomic_load(&s.on_owner), 2);
}

static void
cbt_foreign_thread_without_flag_fails_closed(void **state)
{
    struct fx *f = *state;
    struct seen s;
    seen_init(&s, f);
    capffi_cb *cb = cb_make(f, twice, &s, 0, 0, -1);
    uint64_t mark = capffi_audit_mark(f->l.ctx);
    assert_true(call_blocking(f, cb, 5) == -5);
    assert_int_equal(atomic_load(&s.calls), 0);
    capffi_cb_status st = cb_status(cb);
    assert_int_equal(st.first, CAPFFI_ETHREAD);
    assert_int_equal(st.failures, 5);
    assert_non_null(strstr(st.detail, "CAPFFI_CB_THREADSAFE"));
    /* The refusals are coalesced, so how many events stand for them
     * depends on the clock: the pattern names them, every event since the
     * mark is one of them (for the wrong thread), and audited counts the
     * refusals they stand for. */
    assert_events(f->l.ctx, mark, 0, "cb.invoke ETHREAD (i32) -> i32");
    capffi_audit_filter all = CAPFFI_AUDIT_FILTER_ALL;
    all.since = mark;
    capffi_audit_filter refused = all;
    refused.op = CAPFFI_OP_CB_INVOKE;
    refused.status = CAPFFI_ETHREAD;
    refused.reason = CAPFFI_REASON_THREAD;
    assert_int_equal(capffi_audit_count_where(f->l.ctx, &refused),
                     capffi_audit_count_where(f->l.ctx, &all));
    assert_int_equal(audited(f->l.ctx, CAPFFI_OP_CB_INVOKE, CAPFFI_ETHREAD), 5);
}

struct other {
    struct fx *f;
    capffi_cb *cb;
    int poll_rc, ref_rc, status_rc, new_rc;
};

static void *
other_thread(void *arg)
{
    struct other *o = arg;
    o->poll_rc = capffi_ctx_poll(o->f->l.ctx, 0);
    o->ref_rc = capffi_cb_ref(NULL, o->cb);
    capffi_cb_status st;
    o->status_rc = capffi_cb_take_status(&st, o->cb);
    capffi_cb *cb = NULL;
    o->new_rc = capffi_cb_new(&cb, o->f->l.ctx, &o->f->l.tok, "(i32) -> i32",
                              twice, NULL, 0);
    capffi_cb_close(o->cb); /* refused: not the owner */
    return NULL;
}

static void
cbt_owner_functions_refuse_other_threads(void **state)
{
    struct fx *f = *state;
    struct seen s;
    seen_init(&s, f);
    struct other o;
    memset(&o, 0, sizeof o);
    o.f = f;
    o.cb = cb_make(f, twice, &s, CAPFFI_CB_THREADSAFE, 0, -1);
    uint64_t mark = capffi_audit_mark(f->l.ctx);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, other_thread, &o), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(o.poll_rc, CAPFFI_ETHREAD);
    assert_int_equal(o.ref_rc, CAPFFI_ETHREAD);
    assert_int_equal(o.status_rc, CAPFFI_ETHREAD);
    assert_int_equal(o.new_rc, CAPFFI_ETHREAD);
    /* Each refusal names the C function refused (capffi_cb_ref and
     * capffi_cb_take_status decide nothing and are not audited). */
    assert_events(f->l.ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  "ctx.poll ETHREAD capffi_ctx_poll",
                  "cb.new ETHREAD capffi_cb_new",
                  "cb.close ETHREAD capffi_cb_close");
    /* The refused close changed nothing. */
    unop_fn code = cb_unop(o.cb);
    assert_int_equal(code(4), 8);
}

/* ---- the blocked owner -------------------------------------------------- */

/* The Deno deadlock: the owner is inside a native call that waits for a
 * thread, which calls back. Without lending, a timeout fails each
 * invocation closed and the call returns. */
static void
cbt_blocked_owner_times_out_without_lending(void **state)
{
    struct fx *f = *state;
    struct seen s;
    seen_init(&s, f);
    capffi_cb *cb = cb_make(f, twice, &s, CAPFFI_CB_THREADSAFE, 20, -1);
    uint64_t mark = capffi_audit_mark(f->l.ctx);
    assert_true(call_blocking(f, cb, 3) == -3);
    assert_int_equal(atomic_load(&s.calls), 0);
    capffi_cb_status st = cb_status(cb);
    assert_int_equal(st.first, CAPFFI_ETIMEDOUT);
    assert_int_equal(st.failures, 3);
    /* Coalesced, as above: the events are these refusals and nothing
     * else, and audited counts them. */
    assert_events(f->l.ctx, mark, 0, "cb.invoke ETIMEDOUT (i32) -> i32");
    capffi_audit_filter all = CAPFFI_AUDIT_FILTER_ALL;
    all.since = mark;
    capffi_audit_filter refused = all;
    refused.op = CAPFFI_OP_CB_INVOKE;
    refused.status = CAPFFI_ETIMEDOUT;
    assert_int_equal(capffi_audit_count_where(f->l.ctx, &refused),
                     capffi_audit_count_where(f->l.ctx, &all));
    assert_int_equal(audited(f->l.ctx, CAPFFI_OP_CB_INVOKE, CAPFFI_ETIMEDOUT),
                     3);
    /* Nothing stays queued: a poll finds no work to run. */
    int rc = capffi_ctx_poll(f->l.ctx, 0);
    assert_true(rc == CAPFFI_OK || rc == CAPFFI_ETIMEDOUT);
    assert_int_equal(atomic_load(&s.calls), 0);
}

/* handler that also uses an owner-thread function: on a lent thread it
 * acts for the owner. */
static void
twice_checking(void *payload, const capffi_value *args, capffi_value *ret)
{
    struct seen *s = payload;
    if (capffi_token_check(s->ctx, s->tok, CAPFFI_RIGHT_CALLBACK, NULL) !=
        CAPFFI_OK)
        atomic_fetch_add(&s->acting_fail, 1);
    twice(payload, args, ret);
}

static void
cbt_blocked_owner_lends_the_host(void **state)
{
    struct fx *f = *state;
    struct seen s;
    seen_init(&s, f);
    capffi_cb *cb = cb_make(f, twice_checking, &s, CAPFFI_CB_THREADSAFE, 0, -1);
    assert_true(call_blocking(f, cb, 1000) == twice_sum(1000));
    assert_int_equal(atomic_load(&s.calls), 1000);
    assert_int_equal(atomic_load(&s.on_owner), 0);
    assert_int_equal(atomic_load(&s.overlap), 0);
    assert_int_equal(atomic_load(&s.acting_fail), 0);
    assert_int_equal(cb_status(cb).failures, 0);
    /* Back on the owner, the host is the owner's again. */
    capffi_token t;
    assert_ok(capffi_token_attenuate(&t, f->l.ctx, &f->l.tok, NULL));
}

/* Several threads call back at once while the owner is blocked: the
 * handlers run one at a time. */
static void
cbt_lent_handlers_never_overlap(void **state)
{
    struct fx *f = *state;
    struct seen s;
    seen_init(&s, f);
    capffi_cb *cb = cb_make(f, twice, &s, CAPFFI_CB_THREADSAFE, 0, -1);
    capffi_value a[3], r;
    a[0].cb = cb;
    a[1].i64 = 4;
    a[2].i64 = 500;
    assert_ok(capffi_fn_call(f->calls, a, &r));
    assert_true(r.i64 == 4 * twice_sum(500));
    assert_int_equal(atomic_load(&s.calls), 2000);
    assert_int_equal(atomic_load(&s.overlap), 0);
}

/* While the owner runs host code between native calls, a thread's
 * invocation waits, however long the host code lasts; it runs only once
 * the owner lends the host (a native call) or polls. Each round makes an
 * invocation wait through a stretch of host code for certain, then lets it
 * run, lent or polled, as the scheduler has it. */
static void
cbt_lent_handlers_never_run_with_the_owner(void **state)
{
    struct fx *f = *state;
    struct seen s;
    seen_init(&s, f);
    capffi_cb *cb = cb_make(f, twice, &s, CAPFFI_CB_THREADSAFE, 0, -1);
    struct driver *d = driver_start(cb);
    enum { ROUNDS = 200 };
    for (int round = 0; round < ROUNDS; round++) {
        loop_quiet(f, &s);
        atomic_store(&s.owner_busy, 1);
        driver_ask(d);
        wait_queued(f);
        /* Host code with an invocation waiting: it must not run now. */
        for (volatile int spin = 0; spin < 2000; spin++)
            ;
        if (atomic_load(&s.inside) != 0)
            atomic_fetch_add(&s.clash, 1);
        assert_int_equal(atomic_load(&s.calls), round);
        atomic_store(&s.owner_busy, 0);
        assert_ok(capffi_fn_call(f->nop, NULL, NULL)); /* lends */
        driver_settle(f, d);
        assert_int_equal(atomic_load(&s.calls), round + 1);
    }
    assert_true(driver_stop(d) == twice_sum(ROUNDS));
    assert_int_equal(atomic_load(&s.clash), 0);
    assert_int_equal(atomic_load(&s.overlap), 0);
    assert_int_equal(cb_status(cb).failures, 0);
}

/* ---- revocation and close racing invocations ---------------------------- */

static void
cbt_revoke_races_foreign_invocations(void **state)
{
    struct fx *f = *state;
    struct seen s;
    seen_init(&s, f);
    capffi_token t = mint(f->l.ctx, "raced", CAPFFI_RIGHT_CALLBACK);
    capffi_cb_options o;
    memset(&o, 0, sizeof o);
    o.flags = CAPFFI_CB_THREADSAFE;
    capffi_cb *cb = NULL;
    assert_ok(
        capffi_cb_new_opts(&cb, f->l.ctx, &t, "(i32) -> i32", twice, &s, &o));
    void *th = start(f, cb, 4000);
    bool revoked = false;
    while (!done(f, th)) {
        capffi_ctx_poll(f->l.ctx, 10);
        if (!revoked && atomic_load(&s.calls) >= 500) {
            assert_ok(capffi_token_revoke(f->l.ctx, &t));
            atomic_store(&s.after, 1);
            revoked = true;
        }
    }
    int64_t sum = join(f, th);
    assert_true(revoked);
    /* Every invocation either ran wholly before the revocation returned
     * or failed closed (the default, 0) after it. */
    assert_int_equal(atomic_load(&s.late), 0);
    int calls = atomic_load(&s.calls);
    assert_true(calls >= 500 && calls < 4000);
    assert_true(sum == twice_sum(calls));
    capffi_cb_status st = cb_status(cb);
    assert_int_equal(st.first, CAPFFI_EREVOKED);
    assert_int_equal(st.failures, 4000 - calls);
}

static void
cbt_close_while_queued_fails_closed(void **state)
{
    struct fx *f = *state;
    struct seen s;
    seen_init(&s, f);
    capffi_cb *cb = cb_make(f, twice, &s, CAPFFI_CB_THREADSAFE, 0, -9);
    void *t = start(f, cb, 1);
    struct pollfd p = { .fd = capffi_ctx_fd(f->l.ctx), .events = POLLIN };
    assert_int_equal(poll(&p, 1, 60000), 1); /* queued */
    capffi_cb_close(cb);
    assert_ok(capffi_ctx_poll(f->l.ctx, 0));
    assert_true(join(f, t) == -9);
    assert_int_equal(atomic_load(&s.calls), 0);
    assert_int_equal(cb_status(cb).first, CAPFFI_ECLOSED);
}

/* A thread waiting for the owner when the context is freed gets the
 * default result, and capffi_ctx_free returns. */
static void
cbt_context_freed_while_a_thread_waits(void **state)
{
    struct fx *f = *state;
    struct seen s;
    seen_init(&s, f);
    capffi_ctx *doomed = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token t = mint(doomed, "doomed", CAPFFI_RIGHT_CALLBACK);
    capffi_value d;
    d.i64 = -5;
    capffi_cb_options o;
    memset(&o, 0, sizeof o);
    o.flags = CAPFFI_CB_THREADSAFE;
    o.result = &d;
    capffi_cb *cb = NULL;
    assert_ok(
        capffi_cb_new_opts(&cb, doomed, &t, "(i32) -> i32", twice, &s, &o));
    /* The thread is started through f's fixture binding; it calls the
     * doomed context's callback. */
    capffi_value a[2], r;
    capffi_fn *start_raw =
        bind_sym(f->l.lib, "fx_thread_start", "(pointer, i32) -> pointer");
    a[0].p = capffi_cb_code(cb);
    a[1].i64 = 1;
    assert_ok(capffi_fn_call(start_raw, a, &r));
    void *th = r.p;
    assert_non_null(th);
    struct pollfd p = { .fd = capffi_ctx_fd(doomed), .events = POLLIN };
    assert_int_equal(poll(&p, 1, 60000), 1); /* it waits in the queue */
    capffi_ctx_free(doomed);
    assert_true(join(f, th) == -5);
    assert_int_equal(atomic_load(&s.calls), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, lib_fx_teardown)
#define L(name)                                                                \
    cmocka_unit_test_setup_teardown(name, setup_lend, lib_fx_teardown)
        T(cbt_foreign_thread_calls_while_owner_polls),
        T(cbt_fd_is_readable_when_work_is_queued),
        T(cbt_foreign_thread_without_flag_fails_closed),
        T(cbt_owner_functions_refuse_other_threads),
        T(cbt_blocked_owner_times_out_without_lending),
        L(cbt_blocked_owner_lends_the_host),
        L(cbt_lent_handlers_never_overlap),
        L(cbt_lent_handlers_never_run_with_the_owner),
        T(cbt_revoke_races_foreign_invocations),
        L(cbt_lending_owner_that_polls_gets_every_call),
        T(cbt_close_while_queued_fails_closed),
        T(cbt_context_freed_while_a_thread_waits),
#undef L
#undef T
    };
    return RUN_TESTS("cb_threads", tests);
}
