/*
 * test_oom.c - every allocation failing in turn (suites: unit, oom).
 *
 * For each operation, allocation number n is made to fail, for n = 0, 1,
 * 2, ... until the operation runs without reaching a failure. Each failing
 * run must return CAPFFI_ENOMEM (or succeed, when the failed allocation
 * was optional, such as an audit copy), leave the state as it was, and
 * leak nothing: the allocator's count of live blocks returns to where it
 * started.
 */
#include "helpers.h"

#include "base/internal.h"

struct fx {
    struct scratch s;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    scratch_make(&f->s);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    capffi__alloc_fail_after(-1);
    scratch_remove(&f->s);
    free(f);
    return 0;
}

/* Run op with failure n, for n = 0.. until nothing failed. Returns how
 * many failures were injected. */
typedef int (*op_fn)(struct fx *f, capffi_ctx *ctx, void *arg);

static long
each_failure(struct fx *f, capffi_ctx *ctx, op_fn op, void *arg,
             size_t *tokens_before_after_ok)
{
    long n = 0;
    for (;; n++) {
        long live = capffi__alloc_live();
        capffi__alloc_fail_after(n);
        int rc = op(f, ctx, arg);
        int failed = capffi__alloc_failed();
        capffi__alloc_fail_after(-1);
        if (!failed) {
            assert_ok(rc);
            break;
        }
        if (rc != CAPFFI_OK && rc != CAPFFI_ENOMEM)
            fail_msg("failure %ld gave %s: %s", n, capffi_err_name(rc),
                     capffi_ctx_errmsg(ctx));
        if (rc == CAPFFI_ENOMEM)
            assert_int_equal(capffi__alloc_live(), live);
        assert_true(n < 10000);
    }
    (void)tokens_before_after_ok;
    return n;
}

static int
op_ctx_new(struct fx *f, capffi_ctx *unused, void *arg)
{
    (void)unused;
    (void)arg;
    const char *allow[] = { f->s.lib, f->s.c };
    const char *deny[] = { f->s.b };
    capffi_options o;
    memset(&o, 0, sizeof o);
    o.allow_paths = allow;
    o.n_allow = 2;
    o.deny_paths = deny;
    o.n_deny = 1;
    capffi_ctx *ctx = NULL;
    long live = capffi__alloc_live();
    int rc = capffi_ctx_new(&ctx, &o);
    if (rc) {
        assert_null(ctx);
        return rc;
    }
    capffi_ctx_free(ctx);
    assert_int_equal(capffi__alloc_live(), live);
    return rc;
}

static void
oom_ctx_new(void **state)
{
    struct fx *f = *state;
    long n = each_failure(f, NULL, op_ctx_new, NULL, NULL);
    assert_true(n > 5); /* really exercised several allocations */
}

static int
op_token_new(struct fx *f, capffi_ctx *ctx, void *arg)
{
    capffi_token *out = arg;
    capffi_scope sc;
    const char *paths[] = { f->s.a, f->s.lib };
    memset(&sc, 0, sizeof sc);
    sc.paths = paths;
    sc.n_paths = 2;
    capffi_token_desc d;
    int rc = capffi_token_new(out, ctx, "oom", &sc);
    if (rc) {
        assert_int_equal(out->id, 0);
    } else {
        assert_ok(capffi_token_info(&d, ctx, out));
        assert_int_equal(d.n_paths, 2);
    }
    return rc;
}

static int
op_attenuate(struct fx *f, capffi_ctx *ctx, void *arg)
{
    const capffi_token *parent = arg;
    capffi_token out;
    capffi_scope sc;
    const char *paths[] = { f->s.b };
    memset(&sc, 0, sizeof sc);
    sc.paths = paths;
    sc.n_paths = 1;
    sc.label = "child";
    return capffi_token_attenuate(&out, ctx, parent, &sc);
}

static int
op_revoke(struct fx *f, capffi_ctx *ctx, void *arg)
{
    (void)f;
    return capffi_token_revoke(ctx, arg);
}

static int
op_check_path(struct fx *f, capffi_ctx *ctx, void *arg)
{
    return capffi_token_check(ctx, arg, CAPFFI_RIGHT_DLOPEN, f->s.a);
}

static void
ignore_event(void *payload, const capffi_event *ev)
{
    (void)payload;
    (void)ev;
}

static void
oom_token_operations(void **state)
{
    struct fx *f = *state;
    const char *allow[] = { f->s.dir, NULL };
    capffi_ctx *ctx = ctx_with(0, allow, NULL);
    /* With a sink, so events are built (a recorder keeps copies, which
     * would count as live blocks; oom_recorder covers it). */
    assert_ok(capffi_audit_set_sink(ctx, ignore_event, NULL));
    capffi_token t;
    assert_true(each_failure(f, ctx, op_token_new, &t, NULL) > 3);
    assert_true(each_failure(f, ctx, op_attenuate, &t, NULL) > 3);
    assert_true(each_failure(f, ctx, op_check_path, &t, NULL) > 0);
    each_failure(f, ctx, op_revoke, &t, NULL);
    assert_rc(capffi_token_check(ctx, &t, 0, NULL), CAPFFI_EREVOKED);
    capffi_ctx_free(ctx);
}

static int
op_perm(struct fx *f, capffi_ctx *ctx, void *arg)
{
    (void)arg;
    capffi_perm_state st;
    return capffi_perm_revoke(&st, ctx, f->s.lib);
}

static void
oom_perm_revoke_fails_closed(void **state)
{
    struct fx *f = *state;
    for (long n = 0; n < 200; n++) {
        const char *allow[] = { f->s.dir, NULL };
        capffi_ctx *ctx = ctx_with(0, allow, NULL);
        capffi__alloc_fail_after(n);
        int rc = op_perm(f, ctx, NULL);
        int failed = capffi__alloc_failed();
        capffi__alloc_fail_after(-1);
        capffi_perm_state a, c;
        assert_ok(capffi_perm_query(&a, ctx, f->s.a));
        assert_ok(capffi_perm_query(&c, ctx, f->s.c));
        if (rc == CAPFFI_OK) {
            assert_int_equal(a, CAPFFI_PERM_DENIED);
            assert_int_equal(c, CAPFFI_PERM_GRANTED);
        } else {
            /* Either nothing changed, or everything was withdrawn: never
             * a half-done withdrawal that leaves lib/ reachable. */
            assert_int_equal(rc, CAPFFI_ENOMEM);
            assert_int_equal(a, c);
        }
        capffi_ctx_free(ctx);
        if (!failed)
            return;
    }
    fail_msg("never ran without a failure");
}

/* A recorder that cannot copy an event still records it, with empty
 * strings, and the operation succeeds. */
static void
oom_recorder(void **state)
{
    (void)state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    assert_ok(capffi_audit_record(ctx, 4));
    uint64_t mark = capffi_audit_mark(ctx);
    capffi_perm_state st;
    capffi__alloc_fail_after(1);
    assert_ok(capffi_perm_query(&st, ctx, "/etc"));
    assert_true(capffi__alloc_failed());
    capffi__alloc_fail_after(-1);
    /* A pattern cannot ask for an empty target: the field says it. */
    assert_events(ctx, mark, CAPFFI_EXPECT_EXACT, "perm.query ok");
    capffi_event ev;
    assert_ok(capffi_audit_get(&ev, ctx, 0));
    assert_string_equal(ev.target, "");
    capffi__alloc_fail_after(0);
    assert_rc(capffi_audit_record(ctx, 8), CAPFFI_ENOMEM);
    capffi__alloc_fail_after(-1);
    /* The old recorder is intact. */
    assert_events(ctx, mark, CAPFFI_EXPECT_EXACT, "perm.query ok");
    capffi_ctx_free(ctx);
}

static void
oom_handler(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    ret->str = args[1].i64 ? "yes" : "no";
}

static int
op_cb_new(struct fx *f, capffi_ctx *ctx, void *arg)
{
    (void)f;
    const capffi_token *tok = arg;
    char text[] = "fallback";
    capffi_value d;
    d.str = text;
    capffi_cb_options o;
    memset(&o, 0, sizeof o);
    o.flags = CAPFFI_CB_THREADSAFE;
    o.result = &d;
    capffi_cb *cb = (capffi_cb *)&cb;
    int rc = capffi_cb_new_opts(&cb, ctx, tok, "({ i32, f64 }, i32) -> cstring",
                                oom_handler, NULL, &o);
    if (rc) {
        assert_null(cb);
        return rc;
    }
    struct pair {
        int32_t a;
        double b;
    } p = { 1, 2.0 };
    const char *(*code)(struct pair, int32_t);
    void *c = capffi_cb_code(cb);
    memcpy(&code, &c, sizeof code);
    assert_string_equal(code(p, 1), "yes");
    capffi_cb_close(cb);
    assert_string_equal(code(p, 1), "fallback");
    return rc;
}

static int
op_cb_new_struct(struct fx *f, capffi_ctx *ctx, void *arg)
{
    (void)f;
    capffi_cb *cb = NULL;
    int rc = capffi_cb_new(&cb, ctx, arg, "(i64) -> { i64, i64, i64 }",
                           oom_handler, NULL, 0);
    if (rc)
        assert_null(cb);
    return rc;
}

static void
oom_cb_new(void **state)
{
    struct fx *f = *state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    assert_ok(capffi_audit_set_sink(ctx, ignore_event, NULL));
    capffi_token t = mint(ctx, "oom-cb", CAPFFI_RIGHT_CALLBACK);
    /* The closure, the callback, its signature's arena, the default's
     * copies: each may fail. */
    assert_true(each_failure(f, ctx, op_cb_new, &t, NULL) >= 4);
    assert_true(each_failure(f, ctx, op_cb_new_struct, &t, NULL) >= 3);
    capffi_ctx_free(ctx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(oom_ctx_new),
        T(oom_token_operations),
        T(oom_perm_revoke_fails_closed),
        T(oom_recorder),
        T(oom_cb_new),
#undef T
    };
    return RUN_TESTS("oom", tests);
}
