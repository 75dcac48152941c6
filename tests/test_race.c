/*
 * test_race.c - revocation racing use (T7) (suites: security, threads).
 * Also run under ThreadSanitizer.
 */
#include "helpers.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

struct race {
    capffi_ctx *ctx;
    capffi_token tok;
    atomic_int go;
    atomic_int revoked_returned;
    int rc;
};

static void *
revoker(void *arg)
{
    struct race *r = arg;
    while (!atomic_load(&r->go))
        ;
    usleep(200);
    r->rc = capffi_token_revoke(r->ctx, &r->tok);
    atomic_store(&r->revoked_returned, 1);
    return NULL;
}

/* The owner thread checks a child of the token in a loop while another
 * thread revokes the parent: once the revoke has returned, no check may
 * succeed; before it, none may fail for any other reason. */
static void
race_revoke_against_checks(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        struct race r;
        memset(&r, 0, sizeof r);
        r.ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
        capffi_token child;
        assert_ok(capffi_token_new(&r.tok, r.ctx, "raced", NULL));
        assert_ok(capffi_token_attenuate(&child, r.ctx, &r.tok, NULL));
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, revoker, &r), 0);
        atomic_store(&r.go, 1);
        size_t ok_after = 0, refused = 0, ok = 0;
        for (;;) {
            int done = atomic_load(&r.revoked_returned);
            int rc = capffi_token_check(r.ctx, &child, CAPFFI_RIGHT_READ, NULL);
            if (rc == 0) {
                ok++;
                ok_after += done;
            } else {
                assert_int_equal(rc, CAPFFI_EREVOKED);
                refused++;
            }
            if (done && refused > 0)
                break;
        }
        pthread_join(th, NULL);
        assert_int_equal(r.rc, 0);
        assert_int_equal(ok_after, 0);
        assert_true(refused > 0);
        /* Attenuating a revoked family fails from now on, too. */
        capffi_token x;
        assert_rc(capffi_token_attenuate(&x, r.ctx, &child, NULL),
                  CAPFFI_EREVOKED);
        capffi_ctx_free(r.ctx);
        (void)ok;
    }
}

struct minter {
    capffi_ctx *ctx;
    capffi_token parent;
    atomic_int stop;
    atomic_int running; /* the revoking thread has started */
};

/* Revoke the parent until told to stop, and at least once: the minter
 * may finish its attenuations before this thread is first scheduled. */
static void *
revoke_loop(void *arg)
{
    struct minter *m = arg;
    atomic_store(&m->running, 1);
    do
        capffi_token_revoke(m->ctx, &m->parent);
    while (!atomic_load(&m->stop));
    return NULL;
}

/* Attenuation racing revocation of the parent: every child made either
 * was revoked with it or was refused; none survives the parent. */
static void
race_attenuate_against_revoke(void **state)
{
    (void)state;
    struct minter m;
    memset(&m, 0, sizeof m);
    m.ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    assert_ok(capffi_token_new(&m.parent, m.ctx, "p", NULL));
    capffi_token kids[2000];
    size_t made = 0;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, revoke_loop, &m), 0);
    while (!atomic_load(&m.running)) /* so that the two overlap */
        sched_yield();
    for (int i = 0; i < 2000; i++) {
        int rc = capffi_token_attenuate(&kids[made], m.ctx, &m.parent, NULL);
        if (rc == 0)
            made++;
        else
            assert_int_equal(rc, CAPFFI_EREVOKED);
    }
    atomic_store(&m.stop, 1);
    pthread_join(th, NULL);
    for (size_t i = 0; i < made; i++)
        assert_rc(capffi_token_check(m.ctx, &kids[i], 0, NULL),
                  CAPFFI_EREVOKED);
    capffi_ctx_free(m.ctx);
}

struct caller {
    capffi_fn *fn;
    atomic_int *revoked_returned;
    long ok_after, refused, ok;
    int refusal; /* CAPFFI_EREVOKED, or CAPFFI_ECLOSED for a close */
};

static void *
call_loop(void *arg)
{
    struct caller *c = arg;
    for (;;) {
        int done = atomic_load(c->revoked_returned);
        capffi_value a[2], r;
        a[0].i64 = 1;
        a[1].i64 = 2;
        int rc = capffi_fn_call(c->fn, a, &r);
        if (rc == 0) {
            c->ok++;
            c->ok_after += done;
        } else if (rc == c->refusal) {
            c->refused++;
            if (done)
                break;
        } else {
            c->ok_after += 1000000; /* any other result is a failure */
            break;
        }
    }
    return NULL;
}

/* Calls on other threads racing a revocation: once capffi_token_revoke
 * has returned, no call starts. */
static void
race_revoke_against_calls(void **state)
{
    (void)state;
    const char *dir = getenv("CAPFFI_FIXTURE_DIR");
    assert_non_null(dir);
    const char *allow[] = { dir, NULL };
    capffi_ctx *ctx = ctx_with(0, allow, NULL);
    capffi_token t, child;
    capffi_lib *lib;
    capffi_fn *fn;
    assert_ok(capffi_token_new(&t, ctx, "lib", NULL));
    assert_ok(capffi_token_attenuate(&child, ctx, &t, NULL));
    assert_ok(capffi_lib_open(&lib, ctx, &child, getenv("CAPFFI_FIXTURE"), 0));
    assert_ok(capffi_lib_bind(&fn, lib, "fx_add_i32", "(i32, i32) -> i32", 0));
    atomic_int returned;
    atomic_init(&returned, 0);
    struct caller c[2] = { { fn, &returned, 0, 0, 0, CAPFFI_EREVOKED },
                           { fn, &returned, 0, 0, 0, CAPFFI_EREVOKED } };
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, call_loop, &c[i]), 0);
    usleep(2000);
    assert_ok(capffi_token_revoke(ctx, &t)); /* the parent: cascades */
    atomic_store(&returned, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(c[i].ok_after, 0);
        assert_true(c[i].refused > 0);
    }
    capffi_ctx_free(ctx);
}

/* Calls on other threads racing capffi_lib_close: once it has returned,
 * no call starts (CAPFFI_ECLOSED); the library stays loaded while its
 * function exists, and is unloaded once that is freed, after the calls. */
static void
race_close_against_calls_then_unload(void **state)
{
    (void)state;
    capffi_ctx *ctx = ctx_for_fixtures(0, 0);
    capffi_token t = mint(ctx, "lib", CAPFFI_RIGHT_DLOPEN);
    const char *path = env_path("CAPFFI_FIXTURE");
    capffi_lib *lib;
    capffi_fn *fn;
    assert_false(lib_loaded(path));
    assert_ok(capffi_lib_open(&lib, ctx, &t, path, 0));
    assert_ok(capffi_lib_bind(&fn, lib, "fx_add_i32", "(i32, i32) -> i32", 0));
    atomic_int returned;
    atomic_init(&returned, 0);
    struct caller c[2] = { { fn, &returned, 0, 0, 0, CAPFFI_ECLOSED },
                           { fn, &returned, 0, 0, 0, CAPFFI_ECLOSED } };
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, call_loop, &c[i]), 0);
    usleep(2000);
    capffi_lib_close(lib);
    atomic_store(&returned, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(c[i].ok_after, 0);
        assert_true(c[i].refused > 0);
    }
    assert_true(lib_loaded(path));
    capffi_fn_free(fn);
    assert_false(lib_loaded(path));
    capffi_ctx_free(ctx);
}

/* A nonblocking call running inside the library when the library is
 * closed and its function freed: the job holds the function, so the code
 * stays mapped until the job has ended; then the library goes. The job
 * waits at the fixture's gate, which stays shut, until its time runs out;
 * a second handle of the same file (the same object) tells when it is
 * inside. */
static void
race_close_against_running_job(void **state)
{
    (void)state;
    capffi_ctx *ctx = ctx_for_fixtures(0, 1);
    capffi_token t = mint(ctx, "lib", CAPFFI_RIGHT_DLOPEN);
    const char *path = env_path("CAPFFI_FIXTURE");
    capffi_lib *lib, *other;
    capffi_fn *wait, *shut, *inside;
    assert_ok(capffi_lib_open(&lib, ctx, &t, path, 0));
    assert_ok(capffi_lib_open(&other, ctx, &t, path, 0));
    assert_ok(
        capffi_lib_bind(&wait, lib, "fx_gate_wait", "(i32, i32) -> i32", 0));
    assert_ok(capffi_lib_bind(&shut, other, "fx_gate_close", "() -> void", 0));
    assert_ok(
        capffi_lib_bind(&inside, other, "fx_gate_inside", "() -> i32", 0));
    capffi_value r;
    assert_ok(capffi_fn_call(shut, NULL, &r));
    capffi_value a[2] = { { .i64 = 42 }, { .i64 = 300 } };
    capffi_job *job;
    assert_ok(capffi_fn_call_async(&job, wait, a));
    r.i64 = 0;
    for (int i = 0; i < 10000 && r.i64 < 1; i++) {
        assert_ok(capffi_fn_call(inside, NULL, &r));
        if (r.i64 < 1)
            usleep(100);
    }
    assert_int_equal(r.i64, 1); /* the worker is inside the library */
    capffi_lib_close(lib);
    capffi_fn_free(wait); /* the job holds it */
    capffi_lib_close(other);
    capffi_fn_free(shut);
    capffi_fn_free(inside);
    assert_true(lib_loaded(path));
    capffi_value ret;
    assert_ok(capffi_job_wait(&ret, job, -1));
    assert_int_equal(ret.i64, -1); /* its time ran out, the gate shut */
    capffi_job_free(job);
    assert_false(lib_loaded(path));
    capffi_ctx_free(ctx);
}

/*
 * A revoke on another thread names, in its event, the token it revoked,
 * while the owner thread mints tokens that may take the revoked slot the
 * moment the revoke drops the table's lock (its label freed, its id
 * rewritten): the event must not read the entry after that.
 */
struct reuse_race {
    capffi_ctx *ctx;
    capffi_token shared;
    atomic_int phase; /* 1: revoke shared; 2: revoking, the owner mints */
    atomic_int stop;
    atomic_long events, wrong;
};

static _Thread_local bool on_revoker;

static void
reuse_sink(void *payload, const capffi_event *ev)
{
    struct reuse_race *r = payload;
    if (!on_revoker || ev->op != CAPFFI_OP_TOKEN_REVOKE || ev->status != 0)
        return;
    atomic_fetch_add(&r->events, 1);
    if (strncmp(ev->label, "old-", 4) != 0)
        atomic_fetch_add(&r->wrong, 1);
}

static void *
reuse_revoker(void *arg)
{
    struct reuse_race *r = arg;
    on_revoker = true;
    while (!atomic_load(&r->stop)) {
        if (atomic_load(&r->phase) != 1) {
            sched_yield();
            continue;
        }
        capffi_token t = r->shared;
        atomic_store(&r->phase, 2);
        capffi_token_revoke(r->ctx, &t);
    }
    return NULL;
}

static void
race_revoke_event_against_reuse(void **state)
{
    (void)state;
    struct reuse_race r;
    memset(&r, 0, sizeof r);
    r.ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    assert_ok(capffi_audit_set_sink(r.ctx, reuse_sink, &r));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reuse_revoker, &r), 0);
    char label[40];
    for (int i = 0; i < 2000; i++) {
        snprintf(label, sizeof label, "old-%d", i); /* its own label */
        assert_ok(capffi_token_new(&r.shared, r.ctx, label, NULL));
        atomic_store(&r.phase, 1);
        while (atomic_load(&r.phase) != 2)
            sched_yield();
        for (int k = 0; k < 50; k++) { /* until the slot is taken again */
            capffi_token n;
            snprintf(label, sizeof label, "new-%d-%d", i, k);
            assert_ok(capffi_token_new(&n, r.ctx, label, NULL));
            capffi_token_revoke(r.ctx, &n);
        }
    }
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&r.events), 2000);
    assert_int_equal(atomic_load(&r.wrong), 0);
    capffi_ctx_free(r.ctx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(race_revoke_against_checks),
        cmocka_unit_test(race_attenuate_against_revoke),
        cmocka_unit_test(race_revoke_against_calls),
        cmocka_unit_test(race_close_against_calls_then_unload),
        cmocka_unit_test(race_close_against_running_job),
        cmocka_unit_test(race_revoke_event_against_reuse),
    };
    return RUN_TESTS("race", tests);
}
