/*
 * test_race.c - revocation racing use (T7) (suites: security, threads).
 * Also run under ThreadSanitizer.
 */
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>
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
};

static void *
revoke_loop(void *arg)
{
    struct minter *m = arg;
    while (!atomic_load(&m->stop))
        capffi_token_revoke(m->ctx, &m->parent);
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(race_revoke_against_checks),
        cmocka_unit_test(race_attenuate_against_revoke),
    };
    return RUN_TESTS("race", tests);
}
