/*
 * test_token.c - minting, attenuation, snapshots, limits and cascading
 * revocation (suites: unit, token).
 */
#include "helpers.h"

#include <malloc.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "base/internal.h"

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

/* ---- the table: slots, generations, reuse, size ----------------------- */

/* The id's fields as token.c lays them out (docs/tokens.md). */
#define ID_SLOT(id) ((id)&0xffffffu)
#define ID_GEN(id) (((id) >> 24) & 0xfffffu)

/* The reason of the one event recorded since the reset before op. */
static capffi_reason
only_reason(capffi_ctx *ctx)
{
    capffi_event ev;
    assert_ok(capffi_audit_get(&ev, ctx, 0));
    return ev.reason;
}

/* A revoked token's slot is reused with the next generation; the old
 * token is still refused as revoked, and the new one is not affected. */
static void
token_reused_slot_refuses_old_generation(void **state)
{
    struct fx *f = *state;
    capffi_token old, fresh;
    assert_ok(capffi_token_new(&old, f->ctx, "old", NULL));
    assert_ok(capffi_token_revoke(f->ctx, &old));
    assert_ok(capffi_token_new(&fresh, f->ctx, "fresh", NULL));
    assert_int_equal(ID_SLOT(fresh.id), ID_SLOT(old.id));
    assert_int_equal(ID_GEN(fresh.id), ID_GEN(old.id) + 1);
    assert_true(fresh.id != old.id);

    assert_ok(capffi_audit_reset(f->ctx));
    assert_rc(capffi_token_check(f->ctx, &old, 0, NULL), CAPFFI_EREVOKED);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "was revoked"));
    assert_int_equal(only_reason(f->ctx), CAPFFI_REASON_REVOKED);
    capffi_token child;
    assert_rc(capffi_token_attenuate(&child, f->ctx, &old, NULL),
              CAPFFI_EREVOKED);
    assert_int_equal(child.id, 0);
    /* Revoking it again succeeds and leaves the slot's new token alone. */
    assert_ok(capffi_token_revoke(f->ctx, &old));
    capffi_token_desc d;
    assert_ok(capffi_token_info(&d, f->ctx, &old));
    assert_int_equal(d.revoked, 1);
    assert_ok(capffi_token_check(f->ctx, &fresh, 0, NULL));
    assert_ok(capffi_token_info(&d, f->ctx, &fresh));
    assert_string_equal(d.label, "fresh");
    assert_int_equal(d.revoked, 0);
}

/* A parent's slot is not reused while a child (even a revoked one) is in
 * the table, and a revoked family's slots all come back. */
static void
token_parent_slot_waits_for_children(void **state)
{
    struct fx *f = *state;
    capffi_token p, c1, c2, n[3];
    assert_ok(capffi_token_new(&p, f->ctx, "p", NULL));
    assert_ok(capffi_token_attenuate(&c1, f->ctx, &p, NULL));
    assert_ok(capffi_token_attenuate(&c2, f->ctx, &c1, NULL));
    assert_ok(capffi_token_revoke(f->ctx, &p));
    for (int i = 0; i < 3; i++)
        assert_ok(capffi_token_new(&n[i], f->ctx, "n", NULL));
    /* Children first (leaves before their parents), the parent last. */
    assert_int_equal(ID_SLOT(n[0].id), ID_SLOT(c2.id));
    assert_int_equal(ID_SLOT(n[1].id), ID_SLOT(c1.id));
    assert_int_equal(ID_SLOT(n[2].id), ID_SLOT(p.id));
    const capffi_token *gone[] = { &p, &c1, &c2 };
    for (int i = 0; i < 3; i++)
        assert_rc(capffi_token_check(f->ctx, gone[i], 0, NULL),
                  CAPFFI_EREVOKED);
    for (int i = 0; i < 3; i++)
        assert_ok(capffi_token_check(f->ctx, &n[i], 0, NULL));
}

/* Changing the slot, the generation or the epoch of a genuine id (tag
 * kept) is a forgery, whether or not the slot or generation exists. */
static void
token_rejects_tampered_slot_and_generation(void **state)
{
    struct fx *f = *state;
    capffi_token a, b, old, now;
    assert_ok(capffi_token_new(&a, f->ctx, "a", NULL));
    assert_ok(capffi_token_new(&b, f->ctx, "b", NULL));
    assert_ok(capffi_token_new(&old, f->ctx, "old", NULL));
    assert_ok(capffi_token_revoke(f->ctx, &old));
    assert_ok(capffi_token_new(&now, f->ctx, "now", NULL));
    assert_int_equal(ID_SLOT(now.id), ID_SLOT(old.id));

    capffi_token t[6];
    for (int i = 0; i < 6; i++)
        t[i] = a;
    t[0].id = (a.id & ~UINT64_C(0xffffff)) | ID_SLOT(b.id); /* b's slot */
    t[1].id = a.id ^ 0x800000u;                             /* no slot */
    t[2].id = a.id + (UINT64_C(1) << 24);                   /* next gen */
    t[3].id = a.id & ~(UINT64_C(0xfffff) << 24);            /* gen 0 */
    t[4].id = a.id ^ (UINT64_C(1) << 50);                   /* epoch */
    /* An older generation of a reused slot with a tag that is not its. */
    t[5] = now;
    t[5].id = now.id - (UINT64_C(1) << 24);
    assert_int_equal(t[5].id, old.id);
    for (int i = 0; i < 6; i++) {
        assert_ok(capffi_audit_reset(f->ctx));
        assert_rc(capffi_token_check(f->ctx, &t[i], 0, NULL), CAPFFI_ETOKEN);
        assert_int_equal(only_reason(f->ctx), CAPFFI_REASON_FORGED);
        assert_rc(capffi_token_revoke(f->ctx, &t[i]), CAPFFI_ETOKEN);
    }
    assert_ok(capffi_token_check(f->ctx, &a, 0, NULL));
    assert_ok(capffi_token_check(f->ctx, &b, 0, NULL));
}

/* Another context's token is foreign even after its slot was reused
 * there, and a token of this context is never found in another's slot
 * of the same number. */
static void
token_reused_slot_stays_foreign(void **state)
{
    struct fx *f = *state;
    capffi_ctx *b = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token tb, tb2, ta;
    assert_ok(capffi_token_new(&tb, b, "b", NULL));
    assert_ok(capffi_token_revoke(b, &tb));
    assert_ok(capffi_token_new(&tb2, b, "b2", NULL));
    assert_int_equal(ID_SLOT(tb2.id), ID_SLOT(tb.id));
    assert_ok(capffi_token_new(&ta, f->ctx, "a", NULL));
    const capffi_token *probe[] = { &tb, &tb2 };
    for (int i = 0; i < 2; i++) {
        assert_ok(capffi_audit_reset(f->ctx));
        assert_rc(capffi_token_check(f->ctx, probe[i], 0, NULL), CAPFFI_ETOKEN);
        assert_int_equal(only_reason(f->ctx), CAPFFI_REASON_FOREIGN);
    }
    assert_rc(capffi_token_check(b, &ta, 0, NULL), CAPFFI_ETOKEN);
    capffi_ctx_free(b);
    /* Once b is gone, its tokens are no one's. */
    assert_ok(capffi_audit_reset(f->ctx));
    assert_rc(capffi_token_check(f->ctx, &tb2, 0, NULL), CAPFFI_ETOKEN);
    assert_int_equal(only_reason(f->ctx), CAPFFI_REASON_FORGED);
}

/* Resources keep their token's slot: a revoked token something was
 * attached to is never reused, so its revoked flag stays set. */
static void
token_slot_with_resources_is_kept(void **state)
{
    struct fx *f = *state;
    capffi_token t, n;
    capffi_lib *lib;
    assert_ok(capffi_token_new(&t, f->ctx, "lib", NULL));
    assert_ok(capffi_lib_open(&lib, f->ctx, &t, NULL, 0));
    capffi_lib_close(lib);
    assert_ok(capffi_token_revoke(f->ctx, &t));
    assert_ok(capffi_token_new(&n, f->ctx, "n", NULL));
    assert_true(ID_SLOT(n.id) != ID_SLOT(t.id));
    assert_rc(capffi_token_check(f->ctx, &t, 0, NULL), CAPFFI_EREVOKED);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "'lib' was revoked"));
}

#define MANY 1000000

/* 10^6 live tokens of one context all verify, and each is its own. */
static void
token_million_live_tokens_verify(void **state)
{
    (void)state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token *t = calloc(MANY, sizeof *t);
    assert_non_null(t);
    for (size_t i = 0; i < MANY; i++)
        assert_ok(capffi_token_new(&t[i], ctx, "many", NULL));
    for (size_t i = 0; i < MANY; i++)
        if (capffi_token_check(ctx, &t[i], CAPFFI_RIGHT_CALLBACK, NULL))
            fail_msg("token %zu: %s", i, capffi_ctx_errmsg(ctx));
    /* Revoke every other one: they are refused, the rest still pass. */
    for (size_t i = 0; i < MANY; i += 2)
        assert_ok(capffi_token_revoke(ctx, &t[i]));
    for (size_t i = 0; i < MANY; i++) {
        int rc = capffi_token_check(ctx, &t[i], 0, NULL);
        if (rc != (i % 2 ? CAPFFI_OK : CAPFFI_EREVOKED))
            fail_msg("token %zu: %d %s", i, rc, capffi_ctx_errmsg(ctx));
    }
    free(t);
    capffi_ctx_free(ctx);
}

#define COUNTED 100000

/*
 * Memory per live token, counted, never timed: the allocator's live
 * blocks grow by the table's chunks only, and (where glibc's mallinfo2
 * sees the heap: not under a sanitizer's allocator) the heap by at most
 * 128 bytes a token.
 */
static void
token_memory_per_live_token_is_bounded(void **state)
{
    (void)state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token t;
    assert_ok(capffi_token_new(&t, ctx, "warm", NULL));
    long blocks0 = capffi__alloc_live();
    struct mallinfo2 m0 = mallinfo2();
    for (size_t i = 0; i < COUNTED; i++)
        assert_ok(capffi_token_new(&t, ctx, "counted", NULL));
    struct mallinfo2 m1 = mallinfo2();
    long blocks = capffi__alloc_live() - blocks0;
    /* No block per token: chunks of slots, the directory, one label. */
    assert_true(blocks >= 0 && blocks <= COUNTED / 1024 + 8);
    size_t before = m0.uordblks + m0.hblkhd, after = m1.uordblks + m1.hblkhd;
    if (after > before) {
        double per = (double)(after - before) / COUNTED;
        if (per > 128.0)
            fail_msg("%.1f bytes per live token", per);
    }
    capffi_ctx_free(ctx);
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
        T(token_reused_slot_refuses_old_generation),
        T(token_parent_slot_waits_for_children),
        T(token_rejects_tampered_slot_and_generation),
        T(token_reused_slot_stays_foreign),
        T(token_slot_with_resources_is_kept),
        T(token_million_live_tokens_verify),
        T(token_memory_per_live_token_is_bounded),
#undef T
    };
    return RUN_TESTS("token", tests);
}
