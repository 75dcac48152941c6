/*
 * test_ctx.c - creating contexts, bad options, and where failure messages
 * go (suites: unit, ctx).
 */
#include "helpers.h"

#include <pthread.h>

static void
ctx_new_and_free(void **state)
{
    (void)state;
    capffi_ctx *ctx = (capffi_ctx *)0x1;
    assert_ok(capffi_ctx_new(&ctx, NULL));
    assert_non_null(ctx);
    assert_string_equal(capffi_ctx_errmsg(ctx), "");
    capffi_ctx_free(ctx);
    capffi_ctx_free(NULL);
}

static void
ctx_new_rejects_bad_options(void **state)
{
    (void)state;
    capffi_ctx *ctx = (capffi_ctx *)0x1;
    capffi_options o;
    assert_rc(capffi_ctx_new(NULL, NULL), CAPFFI_EINVAL);

    memset(&o, 0, sizeof o);
    o.flags = 0x100;
    assert_rc(capffi_ctx_new(&ctx, &o), CAPFFI_EINVAL);
    assert_null(ctx);
    assert_non_null(strstr(capffi_ctx_errmsg(NULL), "unknown bits 0x100"));

    memset(&o, 0, sizeof o);
    o.n_allow = 1;
    assert_rc(capffi_ctx_new(&ctx, &o), CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(NULL), "allow_paths is NULL"));

    const char *missing[] = { "/etc", "/nonexistent/capffi/dir" };
    memset(&o, 0, sizeof o);
    o.allow_paths = missing;
    o.n_allow = 2;
    assert_rc(capffi_ctx_new(&ctx, &o), CAPFFI_ENOTFOUND);
    assert_non_null(strstr(capffi_ctx_errmsg(NULL), "allow_paths[1]"));
    assert_non_null(strstr(capffi_ctx_errmsg(NULL), "/nonexistent/capffi"));

    memset(&o, 0, sizeof o);
    o.deny_paths = missing + 1;
    o.n_deny = 1;
    assert_rc(capffi_ctx_new(&ctx, &o), CAPFFI_ENOTFOUND);
    assert_non_null(strstr(capffi_ctx_errmsg(NULL), "deny_paths[0]"));

    const char *bad[] = { "/etc\x1b[2J" };
    memset(&o, 0, sizeof o);
    o.allow_paths = bad;
    o.n_allow = 1;
    assert_rc(capffi_ctx_new(&ctx, &o), CAPFFI_EINVAL);
    const char *empty[] = { "" };
    o.allow_paths = empty;
    assert_rc(capffi_ctx_new(&ctx, &o), CAPFFI_EINVAL);
    const char *null_entry[] = { NULL };
    o.allow_paths = null_entry;
    assert_rc(capffi_ctx_new(&ctx, &o), CAPFFI_EINVAL);
    assert_null(ctx);
}

struct other {
    capffi_ctx *ctx;
    char msg[256];
    int rc;
};

static void *
fail_elsewhere(void *arg)
{
    struct other *o = arg;
    capffi_token forged;
    memset(&forged, 0x5a, sizeof forged);
    o->rc = capffi_token_revoke(o->ctx, &forged);
    snprintf(o->msg, sizeof o->msg, "%s", capffi_ctx_errmsg(o->ctx));
    return NULL;
}

/* A failure on another thread is reported to that thread and does not
 * overwrite the owner's message. */
static void
ctx_errmsg_is_per_thread_off_owner(void **state)
{
    (void)state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token t;
    assert_rc(capffi_token_new(&t, ctx, "", NULL), CAPFFI_EINVAL);
    struct other o = { ctx, "", 0 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fail_elsewhere, &o), 0);
    pthread_join(th, NULL);
    assert_int_equal(o.rc, CAPFFI_ETOKEN);
    assert_non_null(strstr(o.msg, "not a token of this context"));
    assert_string_equal(capffi_ctx_errmsg(ctx), "label is empty");
    capffi_ctx_free(ctx);
}

struct owner_only {
    capffi_ctx *ctx;
    capffi_token tok;
    int rc[7];
};

static void *
owner_only_calls(void *arg)
{
    struct owner_only *o = arg;
    capffi_token t;
    capffi_perm_state st;
    capffi_token_desc d;
    o->rc[0] = capffi_token_new(&t, o->ctx, "x", NULL);
    o->rc[1] = capffi_token_attenuate(&t, o->ctx, &o->tok, NULL);
    o->rc[2] = capffi_token_check(o->ctx, &o->tok, 0, NULL);
    o->rc[3] = capffi_token_info(&d, o->ctx, &o->tok);
    o->rc[4] = capffi_perm_query(&st, o->ctx, NULL);
    o->rc[5] = capffi_audit_record(o->ctx, 4);
    /* Revocation is the one token operation allowed anywhere. */
    o->rc[6] = capffi_token_revoke(o->ctx, &o->tok);
    return NULL;
}

/* Owner-thread functions refuse other threads instead of racing. */
static void
ctx_owner_only_functions_refuse_other_threads(void **state)
{
    (void)state;
    struct owner_only o;
    memset(&o, 0, sizeof o);
    o.ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    assert_ok(capffi_audit_record(o.ctx, 16));
    assert_ok(capffi_token_new(&o.tok, o.ctx, "t", NULL));
    uint64_t mark = capffi_audit_mark(o.ctx);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, owner_only_calls, &o), 0);
    pthread_join(th, NULL);
    for (int i = 0; i < 6; i++)
        assert_int_equal(o.rc[i], CAPFFI_ETHREAD);
    assert_int_equal(o.rc[6], CAPFFI_OK);
    /* Each refusal names the C function refused; token_info and
     * audit_record are not audited, the revocation is. */
    assert_events(o.ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  "token.new ETHREAD capffi_token_new",
                  "token.attenuate ETHREAD capffi_token_attenuate",
                  "token.check ETHREAD capffi_token_check",
                  "perm.query ETHREAD capffi_perm_query", "token.revoke ok");
    capffi_event ev;
    assert_ok(capffi_audit_get(&ev, o.ctx, 1));
    assert_int_equal(ev.reason, CAPFFI_REASON_THREAD);
    capffi_ctx_free(o.ctx);
}

static void
ctx_contexts_are_independent(void **state)
{
    (void)state;
    capffi_ctx *a = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_ctx *b = ctx_with(0, NULL, NULL);
    capffi_token t;
    assert_ok(capffi_token_new(&t, a, "a", NULL));
    assert_rc(capffi_token_new(&t, b, "b", NULL), CAPFFI_EPERM);
    capffi_perm_state st;
    assert_ok(capffi_perm_revoke(&st, a, NULL));
    capffi_ctx_free(a);
    capffi_ctx_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ctx_new_and_free),
        cmocka_unit_test(ctx_new_rejects_bad_options),
        cmocka_unit_test(ctx_errmsg_is_per_thread_off_owner),
        cmocka_unit_test(ctx_owner_only_functions_refuse_other_threads),
        cmocka_unit_test(ctx_contexts_are_independent),
    };
    return RUN_TESTS("ctx", tests);
}
