/*
 * test_token.c - minting, attenuation, snapshots, limits and cascading
 * revocation (suites: unit, token).
 */
#include "helpers.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

struct fx {
    struct scratch s;
    capffi_ctx *ctx;
};

static int
setup_all(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    scratch_make(&f->s);
    f->ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    assert_ok(capffi_audit_record(f->ctx, 4096));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    capffi_ctx_free(f->ctx);
    scratch_remove(&f->s);
    free(f);
    return 0;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void
token_new_requires_a_grant(void **state)
{
    (void)state;
    capffi_ctx *ctx = ctx_with(0, NULL, NULL);
    capffi_token t;
    memset(&t, 0xaa, sizeof t);
    assert_rc(capffi_token_new(&t, ctx, "m", NULL), CAPFFI_EPERM);
    assert_int_equal(t.id, 0); /* outputs zeroed on failure */
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "no FFI permission"));
    capffi_ctx_free(ctx);
}

static void
token_new_rejects_bad_labels(void **state)
{
    struct fx *f = *state;
    capffi_token t;
    char longl[CAPFFI_LABEL_MAX + 2];
    memset(longl, 'x', sizeof longl - 1);
    longl[sizeof longl - 1] = '\0';
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_rc(capffi_token_new(&t, f->ctx, NULL, NULL), CAPFFI_EINVAL);
    assert_rc(capffi_token_new(&t, f->ctx, "", NULL), CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "empty"));
    assert_rc(capffi_token_new(&t, f->ctx, longl, NULL), CAPFFI_EINVAL);
    assert_rc(capffi_token_new(&t, f->ctx, "a\x1b[2Jb", NULL), CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "byte at 1"));
    longl[CAPFFI_LABEL_MAX] = '\0';
    assert_ok(capffi_token_new(&t, f->ctx, longl, NULL));
    /* Each refusal was audited. */
    assert_events(f->ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  "token.new EINVAL", "token.new EINVAL", "token.new EINVAL",
                  "token.new EINVAL", "token.new ok");
}

/* An attenuated token's default label is its parent's and "+"; a parent
 * whose label is as long as a label may be passes it on unchanged. */
static void
token_default_label_of_a_child(void **state)
{
    struct fx *f = *state;
    capffi_token p, c;
    capffi_token_desc d;
    assert_ok(capffi_token_new(&p, f->ctx, "mod", NULL));
    assert_ok(capffi_token_attenuate(&c, f->ctx, &p, NULL));
    assert_ok(capffi_token_info(&d, f->ctx, &c));
    assert_string_equal(d.label, "mod+");
    char longl[CAPFFI_LABEL_MAX + 1];
    memset(longl, 'y', CAPFFI_LABEL_MAX);
    longl[CAPFFI_LABEL_MAX] = '\0';
    assert_ok(capffi_token_new(&p, f->ctx, longl, NULL));
    assert_ok(capffi_token_attenuate(&c, f->ctx, &p, NULL));
    assert_ok(capffi_token_info(&d, f->ctx, &c));
    assert_string_equal(d.label, longl);
}

static void
token_new_rejects_bad_arguments(void **state)
{
    struct fx *f = *state;
    capffi_token t;
    capffi_scope sc;
    memset(&sc, 0, sizeof sc);
    assert_rc(capffi_token_new(NULL, f->ctx, "m", NULL), CAPFFI_EINVAL);
    assert_rc(capffi_token_new(&t, NULL, "m", NULL), CAPFFI_EINVAL);
    sc.rights = 0x80;
    assert_rc(capffi_token_new(&t, f->ctx, "m", &sc), CAPFFI_EINVAL);
    sc.rights = 0;
    sc.n_paths = 2;
    assert_rc(capffi_token_new(&t, f->ctx, "m", &sc), CAPFFI_EINVAL);
    sc.n_paths = 0;
    sc.label = "x";
    assert_rc(capffi_token_new(&t, f->ctx, "m", &sc), CAPFFI_EINVAL);
    sc.label = NULL;
    const char *missing[] = { "/nonexistent/capffi/lib.so" };
    sc.paths = missing;
    sc.n_paths = 1;
    assert_rc(capffi_token_new(&t, f->ctx, "m", &sc), CAPFFI_ENOTFOUND);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), missing[0]));
}

/* The point of tokens: mint, withdraw the context's permission, the token
 * still works, a new mint is refused. */
static void
token_snapshot_survives_perm_revoke(void **state)
{
    struct fx *f = *state;
    capffi_token t, t2;
    capffi_perm_state st;
    assert_ok(capffi_token_new(&t, f->ctx, "module", NULL));
    assert_ok(capffi_perm_revoke(&st, f->ctx, NULL));
    assert_int_equal(st, CAPFFI_PERM_DENIED);
    assert_ok(capffi_token_check(f->ctx, &t, CAPFFI_RIGHTS_ALL, NULL));
    assert_ok(capffi_token_check(f->ctx, &t, CAPFFI_RIGHT_DLOPEN, f->s.a));
    assert_rc(capffi_token_new(&t2, f->ctx, "late", NULL), CAPFFI_EPERM);
    /* Attenuation needs no permission. */
    assert_ok(capffi_token_attenuate(&t2, f->ctx, &t, NULL));
    assert_ok(capffi_token_check(f->ctx, &t2, CAPFFI_RIGHT_READ, NULL));
}

static void
token_snapshot_keeps_path_scope(void **state)
{
    struct fx *f = *state;
    const char *allow[] = { f->s.lib, NULL };
    capffi_ctx *ctx = ctx_with(0, allow, NULL);
    capffi_token t;
    capffi_perm_state st;
    assert_ok(capffi_token_new(&t, ctx, "module", NULL));
    assert_ok(capffi_perm_revoke(&st, ctx, f->s.lib));
    assert_ok(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, f->s.a));
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, f->s.c),
              CAPFFI_EPERM);
    /* A later grant does not widen an existing token. */
    capffi_ctx_free(ctx);
}

static void
token_path_grants_carry_nonpath_rights(void **state)
{
    struct fx *f = *state;
    const char *allow[] = { f->s.a, NULL };
    capffi_ctx *ctx = ctx_with(0, allow, NULL);
    capffi_token t;
    capffi_token_desc d;
    assert_ok(capffi_token_new(&t, ctx, "m", NULL));
    assert_ok(capffi_token_info(&d, ctx, &t));
    assert_int_equal(d.rights, CAPFFI_RIGHT_DLOPEN | CAPFFI_RIGHTS_NONPATH);
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN_GLOBAL, NULL),
              CAPFFI_EPERM);
    capffi_ctx_free(ctx);

    ctx = ctx_with(CAPFFI_OPT_PATHS_ONLY, allow, NULL);
    assert_ok(capffi_token_new(&t, ctx, "m", NULL));
    assert_ok(capffi_token_info(&d, ctx, &t));
    assert_int_equal(d.rights, CAPFFI_RIGHT_DLOPEN);
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_CALLBACK, NULL),
              CAPFFI_EPERM);
    capffi_scope sc;
    memset(&sc, 0, sizeof sc);
    sc.rights = CAPFFI_RIGHT_POINTER;
    assert_rc(capffi_token_new(&t, ctx, "m", &sc), CAPFFI_EPERM);
    capffi_ctx_free(ctx);
}

static void
token_check_names_missing_right(void **state)
{
    struct fx *f = *state;
    capffi_token t;
    capffi_scope sc;
    memset(&sc, 0, sizeof sc);
    sc.rights = CAPFFI_RIGHT_READ;
    assert_ok(capffi_token_new(&t, f->ctx, "reader", &sc));
    assert_ok(capffi_token_check(f->ctx, &t, CAPFFI_RIGHT_READ, NULL));
    assert_rc(capffi_token_check(f->ctx, &t,
                                 CAPFFI_RIGHT_READ | CAPFFI_RIGHT_WRITE, NULL),
              CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "write"));
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "reader"));
    assert_rc(capffi_token_check(f->ctx, &t, 0x100, NULL), CAPFFI_EINVAL);
    assert_rc(capffi_token_check(f->ctx, NULL, 0, NULL), CAPFFI_EINVAL);
}

static void
token_scope_limits_paths(void **state)
{
    struct fx *f = *state;
    capffi_token t;
    capffi_scope sc;
    const char *paths[] = { f->s.a };
    memset(&sc, 0, sizeof sc);
    sc.paths = paths;
    sc.n_paths = 1;
    assert_ok(capffi_token_new(&t, f->ctx, "a-only", &sc));
    assert_ok(capffi_token_check(f->ctx, &t, CAPFFI_RIGHT_DLOPEN, f->s.a));
    assert_ok(capffi_token_check(f->ctx, &t, CAPFFI_RIGHT_DLOPEN, f->s.link_a));
    assert_rc(capffi_token_check(f->ctx, &t, CAPFFI_RIGHT_DLOPEN, f->s.b),
              CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "not in the scope"));
    assert_rc(capffi_token_check(f->ctx, &t, CAPFFI_RIGHT_DLOPEN,
                                 "/nonexistent/x.so"),
              CAPFFI_ENOTFOUND);
}

static void
token_attenuate_narrows(void **state)
{
    struct fx *f = *state;
    capffi_token p, c;
    capffi_scope sc;
    capffi_token_desc d;
    assert_ok(capffi_token_new(&p, f->ctx, "parent", NULL));
    memset(&sc, 0, sizeof sc);
    sc.rights = CAPFFI_RIGHT_CALLBACK | CAPFFI_RIGHT_DLOPEN;
    const char *paths[] = { f->s.lib };
    sc.paths = paths;
    sc.n_paths = 1;
    sc.label = "plugin";
    assert_ok(capffi_token_attenuate(&c, f->ctx, &p, &sc));
    assert_ok(capffi_token_info(&d, f->ctx, &c));
    assert_string_equal(d.label, "plugin");
    assert_int_equal(d.parent_id, p.id);
    assert_int_equal(d.depth, 1);
    assert_int_equal(d.rights, sc.rights);
    assert_int_equal(d.n_paths, 1);
    assert_false(d.all_paths);
    assert_ok(capffi_token_check(f->ctx, &c, CAPFFI_RIGHT_DLOPEN, f->s.b));
    assert_rc(capffi_token_check(f->ctx, &c, CAPFFI_RIGHT_DLOPEN, f->s.c),
              CAPFFI_EPERM);
    assert_rc(capffi_token_check(f->ctx, &c, CAPFFI_RIGHT_POINTER, NULL),
              CAPFFI_EPERM);
    /* Default label: the parent's plus "+". */
    assert_ok(capffi_token_attenuate(&c, f->ctx, &p, NULL));
    assert_ok(capffi_token_info(&d, f->ctx, &c));
    assert_string_equal(d.label, "parent+");
    assert_int_equal(d.rights, CAPFFI_RIGHTS_ALL);
}

static void
token_attenuate_refuses_widening(void **state)
{
    struct fx *f = *state;
    capffi_token p, c, g;
    capffi_scope sc;
    memset(&sc, 0, sizeof sc);
    const char *lib[] = { f->s.lib };
    sc.rights = CAPFFI_RIGHT_DLOPEN;
    sc.paths = lib;
    sc.n_paths = 1;
    assert_ok(capffi_token_new(&p, f->ctx, "p", &sc));
    uint64_t mark = capffi_audit_mark(f->ctx);
    memset(&sc, 0, sizeof sc);
    sc.rights = CAPFFI_RIGHT_DLOPEN | CAPFFI_RIGHT_WRITE;
    assert_rc(capffi_token_attenuate(&c, f->ctx, &p, &sc), CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "write"));
    assert_int_equal(c.id, 0);
    const char *outside[] = { f->s.c };
    memset(&sc, 0, sizeof sc);
    sc.paths = outside;
    sc.n_paths = 1;
    assert_rc(capffi_token_attenuate(&c, f->ctx, &p, &sc), CAPFFI_EPERM);
    /* The parent directory of the scope is wider than the scope. */
    const char *up[] = { f->s.dir };
    sc.paths = up;
    assert_rc(capffi_token_attenuate(&c, f->ctx, &p, &sc), CAPFFI_EPERM);
    /* A file inside is fine, and its child cannot go back up. */
    const char *inside[] = { f->s.a };
    sc.paths = inside;
    assert_ok(capffi_token_attenuate(&c, f->ctx, &p, &sc));
    const char *sibling[] = { f->s.b };
    sc.paths = sibling;
    assert_rc(capffi_token_attenuate(&g, f->ctx, &c, &sc), CAPFFI_EPERM);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  "token.attenuate EPERM", "token.attenuate EPERM",
                  "token.attenuate EPERM", "token.attenuate ok",
                  "token.attenuate EPERM");
}

static void
token_attenuate_depth_is_bounded(void **state)
{
    struct fx *f = *state;
    capffi_token t;
    assert_ok(capffi_token_new(&t, f->ctx, "root", NULL));
    for (int i = 0; i < CAPFFI_TOKEN_DEPTH_MAX; i++)
        assert_ok(capffi_token_attenuate(&t, f->ctx, &t, NULL));
    capffi_token deeper;
    assert_rc(capffi_token_attenuate(&deeper, f->ctx, &t, NULL), CAPFFI_EPERM);
    assert_ok(capffi_token_check(f->ctx, &t, CAPFFI_RIGHT_READ, NULL));
}

static void
token_revoke_cascades_three_levels(void **state)
{
    struct fx *f = *state;
    capffi_token root, a, a1, a11, b;
    assert_ok(capffi_token_new(&root, f->ctx, "root", NULL));
    assert_ok(capffi_token_attenuate(&a, f->ctx, &root, NULL));
    assert_ok(capffi_token_attenuate(&a1, f->ctx, &a, NULL));
    assert_ok(capffi_token_attenuate(&a11, f->ctx, &a1, NULL));
    assert_ok(capffi_token_attenuate(&b, f->ctx, &root, NULL));
    assert_ok(capffi_token_revoke(f->ctx, &a));
    assert_rc(capffi_token_check(f->ctx, &a, 0, NULL), CAPFFI_EREVOKED);
    assert_rc(capffi_token_check(f->ctx, &a1, 0, NULL), CAPFFI_EREVOKED);
    assert_rc(capffi_token_check(f->ctx, &a11, 0, NULL), CAPFFI_EREVOKED);
    assert_ok(capffi_token_check(f->ctx, &root, 0, NULL));
    assert_ok(capffi_token_check(f->ctx, &b, 0, NULL));
    /* Revoked tokens cannot make children. */
    capffi_token x;
    assert_rc(capffi_token_attenuate(&x, f->ctx, &a11, NULL), CAPFFI_EREVOKED);
    /* Idempotent, and described as revoked. */
    assert_ok(capffi_token_revoke(f->ctx, &a));
    capffi_token_desc d;
    assert_ok(capffi_token_info(&d, f->ctx, &a11));
    assert_true(d.revoked);
    assert_ok(capffi_token_revoke(f->ctx, &root));
    assert_rc(capffi_token_check(f->ctx, &b, 0, NULL), CAPFFI_EREVOKED);
    assert_int_equal(
        capffi_audit_count(f->ctx, CAPFFI_OP_TOKEN_REVOKE, 0, NULL), 3);
}

static void
token_uses_run_out_and_are_shared(void **state)
{
    struct fx *f = *state;
    capffi_token p, c;
    capffi_scope sc;
    capffi_token_desc d;
    memset(&sc, 0, sizeof sc);
    sc.max_uses = 3;
    assert_ok(capffi_token_new(&p, f->ctx, "three", &sc));
    assert_ok(capffi_token_check(f->ctx, &p, 0, NULL));
    assert_ok(capffi_token_attenuate(&c, f->ctx, &p, NULL));
    assert_ok(capffi_token_info(&d, f->ctx, &c));
    assert_int_equal(d.uses_left, 2); /* the parent's budget */
    assert_ok(capffi_token_check(f->ctx, &c, 0, NULL));
    assert_ok(capffi_token_check(f->ctx, &p, 0, NULL));
    assert_rc(capffi_token_check(f->ctx, &c, 0, NULL), CAPFFI_EREVOKED);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "ancestor"));
    assert_rc(capffi_token_check(f->ctx, &p, 0, NULL), CAPFFI_EREVOKED);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "no uses left"));
    /* A failed check does not count as a use. */
    memset(&sc, 0, sizeof sc);
    sc.max_uses = 1;
    sc.rights = CAPFFI_RIGHT_READ;
    assert_ok(capffi_token_new(&p, f->ctx, "one", &sc));
    assert_rc(capffi_token_check(f->ctx, &p, CAPFFI_RIGHT_WRITE, NULL),
              CAPFFI_EPERM);
    assert_ok(capffi_token_check(f->ctx, &p, CAPFFI_RIGHT_READ, NULL));
}

static void
token_expires(void **state)
{
    struct fx *f = *state;
    capffi_token p, c;
    capffi_scope sc;
    capffi_token_desc d;
    memset(&sc, 0, sizeof sc);
    sc.ttl_ms = 40;
    assert_ok(capffi_token_new(&p, f->ctx, "brief", &sc));
    sc.ttl_ms = 60000; /* cannot outlive the parent */
    assert_ok(capffi_token_attenuate(&c, f->ctx, &p, &sc));
    assert_ok(capffi_token_info(&d, f->ctx, &c));
    assert_true(d.expires_in_ms > 0 && d.expires_in_ms <= 40);
    assert_ok(capffi_token_check(f->ctx, &c, 0, NULL));
    uint64_t mark = capffi_audit_mark(f->ctx);
    sleep_ms(60);
    assert_rc(capffi_token_check(f->ctx, &p, 0, NULL), CAPFFI_EREVOKED);
    assert_rc(capffi_token_check(f->ctx, &c, 0, NULL), CAPFFI_EREVOKED);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "expired"));
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, "token.check EREVOKED",
                  "token.check EREVOKED");
    memset(&sc, 0, sizeof sc);
    sc.ttl_ms = UINT64_MAX;
    assert_rc(capffi_token_new(&p, f->ctx, "forever", &sc), CAPFFI_EINVAL);
}

struct revoker {
    capffi_ctx *ctx;
    capffi_token tok;
    int rc;
};

static void *
revoke_thread(void *arg)
{
    struct revoker *r = arg;
    r->rc = capffi_token_revoke(r->ctx, &r->tok);
    return NULL;
}

static void
token_revoke_from_another_thread(void **state)
{
    struct fx *f = *state;
    struct revoker r = { f->ctx, { 0, { 0 } }, -99 };
    capffi_token c;
    assert_ok(capffi_token_new(&r.tok, f->ctx, "t", NULL));
    assert_ok(capffi_token_attenuate(&c, f->ctx, &r.tok, NULL));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, revoke_thread, &r), 0);
    pthread_join(th, NULL);
    assert_int_equal(r.rc, 0);
    assert_rc(capffi_token_check(f->ctx, &c, 0, NULL), CAPFFI_EREVOKED);
}

static void
token_info_describes(void **state)
{
    struct fx *f = *state;
    capffi_token t;
    capffi_token_desc d;
    assert_ok(capffi_token_new(&t, f->ctx, "described", NULL));
    assert_ok(capffi_token_info(&d, f->ctx, &t));
    assert_string_equal(d.label, "described");
    assert_int_equal(d.rights, CAPFFI_RIGHTS_ALL);
    assert_int_equal(d.parent_id, 0);
    assert_int_equal(d.depth, 0);
    assert_true(d.uses_left == UINT64_MAX);
    assert_int_equal(d.expires_in_ms, -1);
    assert_true(d.all_paths);
    assert_false(d.revoked);
    /* info counts no use */
    capffi_scope sc;
    memset(&sc, 0, sizeof sc);
    sc.max_uses = 1;
    assert_ok(capffi_token_new(&t, f->ctx, "one", &sc));
    assert_ok(capffi_token_info(&d, f->ctx, &t));
    assert_ok(capffi_token_info(&d, f->ctx, &t));
    assert_int_equal(d.uses_left, 1);
    t.tag[0] ^= 1;
    assert_rc(capffi_token_info(&d, f->ctx, &t), CAPFFI_ETOKEN);
    assert_rc(capffi_token_info(NULL, f->ctx, &t), CAPFFI_EINVAL);
}

/* The canonical file a soname names, as capffi_lib_open would load it. */
static void
soname_file(char *out, const char *soname)
{
    char found[PATH_MAX];
    assert_ok(capffi_lib_resolve(found, sizeof found, NULL, soname));
    assert_non_null(realpath(found, out));
}

static void
token_scope_by_soname(void **state)
{
    struct fx *f = *state;
    char libz[PATH_MAX];
    soname_file(libz, "libz.so.1");
    capffi_token t, c;
    capffi_scope sc;
    const char *paths[] = { "libz.so.1" };
    memset(&sc, 0, sizeof sc);
    sc.paths = paths;
    sc.n_paths = 1;
    assert_ok(capffi_token_new(&t, f->ctx, "libz", &sc));
    capffi_token_desc d;
    assert_ok(capffi_token_info(&d, f->ctx, &t));
    assert_int_equal(d.n_paths, 1);
    assert_false(d.all_paths);
    /* The scope is the file: by soname, by its canonical path. */
    assert_ok(capffi_token_check(f->ctx, &t, CAPFFI_RIGHT_DLOPEN, "libz.so.1"));
    assert_ok(capffi_token_check(f->ctx, &t, CAPFFI_RIGHT_DLOPEN, libz));
    assert_rc(capffi_token_check(f->ctx, &t, CAPFFI_RIGHT_DLOPEN, "libm.so.6"),
              CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "not in the scope"));
    assert_rc(capffi_token_check(f->ctx, &t, CAPFFI_RIGHT_DLOPEN, f->s.a),
              CAPFFI_EPERM);
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, f->ctx, &t, "libz.so.1", 0));
    assert_string_equal(capffi_lib_path(lib), libz);
    capffi_lib_close(lib);
    assert_ok(capffi_lib_open(&lib, f->ctx, &t, libz, 0));
    capffi_lib_close(lib);
    assert_rc(capffi_lib_open(&lib, f->ctx, &t, "libm.so.6", 0), CAPFFI_EPERM);
    /* Attenuating by soname keeps the file; another soname widens. */
    sc.label = "libz again";
    assert_ok(capffi_token_attenuate(&c, f->ctx, &t, &sc));
    assert_ok(capffi_token_check(f->ctx, &c, CAPFFI_RIGHT_DLOPEN, libz));
    const char *other[] = { "libm.so.6" };
    sc.paths = other;
    assert_rc(capffi_token_attenuate(&c, f->ctx, &t, &sc), CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "not granted"));
}

static void
token_check_by_soname(void **state)
{
    struct fx *f = *state;
    char libz[PATH_MAX];
    soname_file(libz, "libz.so.1");
    capffi_token all, one;
    assert_ok(capffi_token_new(&all, f->ctx, "all", NULL));
    assert_ok(
        capffi_token_check(f->ctx, &all, CAPFFI_RIGHT_DLOPEN, "libz.so.1"));
    /* A token scoped by path is checked by soname against that file. */
    capffi_scope sc;
    const char *paths[] = { libz };
    memset(&sc, 0, sizeof sc);
    sc.paths = paths;
    sc.n_paths = 1;
    assert_ok(capffi_token_new(&one, f->ctx, "libz by path", &sc));
    assert_ok(
        capffi_token_check(f->ctx, &one, CAPFFI_RIGHT_DLOPEN, "libz.so.1"));
    assert_rc(
        capffi_token_check(f->ctx, &one, CAPFFI_RIGHT_DLOPEN, "libm.so.6"),
        CAPFFI_EPERM);
    /* An unknown soname: not found, named, audited. */
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_rc(capffi_token_check(f->ctx, &all, CAPFFI_RIGHT_DLOPEN,
                                 "libcapffi-no-such-lib.so.9"),
              CAPFFI_ENOTFOUND);
    const char *msg = capffi_ctx_errmsg(f->ctx);
    if (!strstr(msg, "soname 'libcapffi-no-such-lib.so.9' not found"))
        fail_msg("unexpected message: %s", msg);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, "token.check ENOTFOUND");
    /* So is a scope naming one. */
    const char *none[] = { "libcapffi-no-such-lib.so.9" };
    sc.paths = none;
    capffi_token bad;
    assert_rc(capffi_token_new(&bad, f->ctx, "none", &sc), CAPFFI_ENOTFOUND);
    assert_non_null(
        strstr(capffi_ctx_errmsg(f->ctx), "libcapffi-no-such-lib.so.9"));
    assert_int_equal(bad.id, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup_all, teardown)
        T(token_new_requires_a_grant),
        T(token_new_rejects_bad_labels),
        T(token_default_label_of_a_child),
        T(token_new_rejects_bad_arguments),
        T(token_snapshot_survives_perm_revoke),
        T(token_snapshot_keeps_path_scope),
        T(token_path_grants_carry_nonpath_rights),
        T(token_check_names_missing_right),
        T(token_scope_limits_paths),
        T(token_attenuate_narrows),
        T(token_attenuate_refuses_widening),
        T(token_attenuate_depth_is_bounded),
        T(token_revoke_cascades_three_levels),
        T(token_uses_run_out_and_are_shared),
        T(token_expires),
        T(token_revoke_from_another_thread),
        T(token_info_describes),
        T(token_scope_by_soname),
        T(token_check_by_soname),
#undef T
    };
    return RUN_TESTS("token", tests);
}
