/*
 * test_perm.c - grants, deny lists, and Deno-style query, request and
 * revoke (suites: unit, perm).
 */
#include "helpers.h"

#include <unistd.h>

struct fx {
    struct scratch s;
    int prompts;
    char last_prompt[PATH_MAX];
    capffi_perm_state answer;
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
    scratch_remove(&f->s);
    free(f);
    return 0;
}

static capffi_perm_state
prompt(void *payload, const char *path)
{
    struct fx *f = payload;
    f->prompts++;
    snprintf(f->last_prompt, sizeof f->last_prompt, "%s",
             path ? path : "(unscoped)");
    return f->answer;
}

static capffi_ctx *
prompting_ctx(struct fx *f, const char *const *allow)
{
    capffi_options o;
    memset(&o, 0, sizeof o);
    o.allow_paths = allow;
    while (allow && allow[o.n_allow])
        o.n_allow++;
    o.prompt = prompt;
    o.prompt_payload = f;
    capffi_ctx *ctx = NULL;
    assert_ok(capffi_ctx_new(&ctx, &o));
    return ctx;
}

static capffi_perm_state
query(capffi_ctx *ctx, const char *path)
{
    capffi_perm_state st;
    assert_ok(capffi_perm_query(&st, ctx, path));
    return st;
}

static void
perm_state_names(void **state)
{
    (void)state;
    assert_string_equal(capffi_perm_state_name(CAPFFI_PERM_GRANTED), "granted");
    assert_string_equal(capffi_perm_state_name(CAPFFI_PERM_PROMPT), "prompt");
    assert_string_equal(capffi_perm_state_name(CAPFFI_PERM_DENIED), "denied");
    assert_string_equal(capffi_perm_state_name((capffi_perm_state)7), "denied");
}

static void
perm_null_options_deny_everything(void **state)
{
    struct fx *f = *state;
    capffi_ctx *ctx = NULL;
    assert_ok(capffi_ctx_new(&ctx, NULL));
    assert_int_equal(query(ctx, NULL), CAPFFI_PERM_DENIED);
    assert_int_equal(query(ctx, f->s.a), CAPFFI_PERM_DENIED);
    capffi_perm_state st;
    assert_ok(capffi_perm_request(&st, ctx, f->s.a));
    assert_int_equal(st, CAPFFI_PERM_DENIED);
    capffi_ctx_free(ctx);
}

static void
perm_allow_all_grants_every_file(void **state)
{
    struct fx *f = *state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    assert_int_equal(query(ctx, NULL), CAPFFI_PERM_GRANTED);
    assert_int_equal(query(ctx, f->s.a), CAPFFI_PERM_GRANTED);
    assert_int_equal(query(ctx, f->s.dir), CAPFFI_PERM_GRANTED);
    /* ...but not the pseudo file systems (L4). */
    assert_int_equal(query(ctx, "/dev/null"), CAPFFI_PERM_DENIED);
    assert_int_equal(query(ctx, "/proc/cpuinfo"), CAPFFI_PERM_DENIED);
    capffi_ctx_free(ctx);
}

static void
perm_path_grant_is_an_identity(void **state)
{
    struct fx *f = *state;
    const char *allow[] = { f->s.a, NULL };
    capffi_ctx *ctx = ctx_with(0, allow, NULL);
    char spelled[PATH_MAX];
    assert_int_equal(query(ctx, f->s.a), CAPFFI_PERM_GRANTED);
    assert_int_equal(query(ctx, f->s.link_a), CAPFFI_PERM_GRANTED);
    pathf(spelled, "%s/other/../lib/./a.so", f->s.dir);
    assert_int_equal(query(ctx, spelled), CAPFFI_PERM_GRANTED);
    pathf(spelled, "%s//lib//a.so", f->s.dir);
    assert_int_equal(query(ctx, spelled), CAPFFI_PERM_GRANTED);
    assert_int_equal(query(ctx, f->s.b), CAPFFI_PERM_DENIED);
    /* Unscoped FFI is not granted by path grants (Deno: "prompt"). */
    assert_int_equal(query(ctx, NULL), CAPFFI_PERM_DENIED);
    /* Renaming the granted file keeps the grant; a new file at the old
     * name is a different file. */
    char moved[PATH_MAX];
    pathf(moved, "%s/moved.so", f->s.lib);
    assert_int_equal(rename(f->s.a, moved), 0);
    write_file(f->s.a);
    assert_int_equal(query(ctx, moved), CAPFFI_PERM_GRANTED);
    assert_int_equal(query(ctx, f->s.a), CAPFFI_PERM_DENIED);
    capffi_ctx_free(ctx);
}

static void
perm_directory_grant_covers_below(void **state)
{
    struct fx *f = *state;
    const char *allow[] = { f->s.lib, NULL };
    capffi_ctx *ctx = ctx_with(0, allow, NULL);
    assert_int_equal(query(ctx, f->s.a), CAPFFI_PERM_GRANTED);
    assert_int_equal(query(ctx, f->s.b), CAPFFI_PERM_GRANTED);
    assert_int_equal(query(ctx, f->s.lib), CAPFFI_PERM_GRANTED);
    assert_int_equal(query(ctx, f->s.c), CAPFFI_PERM_DENIED);
    assert_int_equal(query(ctx, f->s.dir), CAPFFI_PERM_DENIED);
    /* A symlink inside the granted tree to a file outside it: the target
     * is what counts. */
    char escape[PATH_MAX];
    pathf(escape, "%s/escape.so", f->s.lib);
    assert_int_equal(symlink(f->s.c, escape), 0);
    assert_int_equal(query(ctx, escape), CAPFFI_PERM_DENIED);
    capffi_ctx_free(ctx);
}

static void
perm_relative_grant_survives_chdir(void **state)
{
    struct fx *f = *state;
    char old[PATH_MAX];
    assert_non_null(getcwd(old, sizeof old));
    assert_int_equal(chdir(f->s.lib), 0);
    const char *allow[] = { "./a.so", NULL };
    capffi_ctx *ctx = ctx_with(0, allow, NULL);
    assert_int_equal(chdir(f->s.other), 0);
    /* "./a.so" now names nothing; the grant is still the file. */
    capffi_perm_state st;
    assert_rc(capffi_perm_query(&st, ctx, "./a.so"), CAPFFI_ENOTFOUND);
    assert_int_equal(query(ctx, "../lib/a.so"), CAPFFI_PERM_GRANTED);
    assert_int_equal(query(ctx, "./c.so"), CAPFFI_PERM_DENIED);
    assert_int_equal(chdir(old), 0);
    capffi_ctx_free(ctx);
}

static void
perm_deny_beats_allow_by_every_spelling(void **state)
{
    struct fx *f = *state;
    char rel[PATH_MAX], dots[PATH_MAX], slashes[PATH_MAX];
    const char *deny[] = { f->s.a, NULL };
    const char *allow[] = { f->s.lib, f->s.a, NULL };
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, allow, deny);
    pathf(dots, "%s/other/../lib/a.so", f->s.dir);
    pathf(slashes, "%s///lib/./a.so", f->s.dir);
    char old[PATH_MAX];
    assert_non_null(getcwd(old, sizeof old));
    assert_int_equal(chdir(f->s.other), 0);
    pathf(rel, "../lib/a.so");
    const char *spellings[] = { f->s.a, f->s.link_a, dots, slashes, rel };
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(query(ctx, spellings[i]), CAPFFI_PERM_DENIED);
        capffi_perm_state st;
        assert_ok(capffi_perm_request(&st, ctx, spellings[i]));
        assert_int_equal(st, CAPFFI_PERM_DENIED);
    }
    assert_int_equal(query(ctx, f->s.b), CAPFFI_PERM_GRANTED);
    assert_int_equal(chdir(old), 0);
    capffi_ctx_free(ctx);

    /* Denying a directory denies what is below it, whatever is allowed. */
    const char *deny_dir[] = { f->s.lib, NULL };
    ctx = ctx_with(0, allow, deny_dir);
    assert_int_equal(query(ctx, f->s.a), CAPFFI_PERM_DENIED);
    assert_int_equal(query(ctx, f->s.b), CAPFFI_PERM_DENIED);
    capffi_ctx_free(ctx);
}

static void
perm_request_asks_the_prompt(void **state)
{
    struct fx *f = *state;
    capffi_ctx *ctx = prompting_ctx(f, NULL);
    capffi_perm_state st;
    assert_int_equal(query(ctx, f->s.a), CAPFFI_PERM_PROMPT);
    f->answer = CAPFFI_PERM_DENIED;
    assert_ok(capffi_perm_request(&st, ctx, f->s.link_a));
    assert_int_equal(st, CAPFFI_PERM_DENIED);
    assert_int_equal(f->prompts, 1);
    /* The prompt sees the canonical path, not the spelling. */
    assert_string_equal(f->last_prompt, f->s.a);
    /* A "no" is not remembered: asking again asks again. */
    assert_int_equal(query(ctx, f->s.a), CAPFFI_PERM_PROMPT);
    f->answer = CAPFFI_PERM_GRANTED;
    assert_ok(capffi_perm_request(&st, ctx, f->s.a));
    assert_int_equal(st, CAPFFI_PERM_GRANTED);
    assert_int_equal(query(ctx, f->s.a), CAPFFI_PERM_GRANTED);
    assert_int_equal(query(ctx, f->s.b), CAPFFI_PERM_PROMPT);
    /* Granted already: no prompt. */
    assert_ok(capffi_perm_request(&st, ctx, f->s.a));
    assert_int_equal(f->prompts, 2);
    /* A bogus answer counts as "denied". */
    f->answer = (capffi_perm_state)77;
    assert_ok(capffi_perm_request(&st, ctx, f->s.b));
    assert_int_equal(st, CAPFFI_PERM_DENIED);
    /* Unscoped. */
    f->answer = CAPFFI_PERM_GRANTED;
    assert_ok(capffi_perm_request(&st, ctx, NULL));
    assert_string_equal(f->last_prompt, "(unscoped)");
    assert_int_equal(query(ctx, NULL), CAPFFI_PERM_GRANTED);
    assert_int_equal(query(ctx, f->s.c), CAPFFI_PERM_GRANTED);
    capffi_ctx_free(ctx);
}

static void
perm_revoke_withdraws(void **state)
{
    struct fx *f = *state;
    const char *allow[] = { f->s.dir, NULL };
    capffi_ctx *ctx = prompting_ctx(f, allow);
    capffi_perm_state st;
    assert_int_equal(query(ctx, f->s.a), CAPFFI_PERM_GRANTED);
    /* Withdraw one directory below a broader grant. */
    assert_ok(capffi_perm_revoke(&st, ctx, f->s.lib));
    assert_int_equal(st, CAPFFI_PERM_PROMPT);
    assert_int_equal(query(ctx, f->s.a), CAPFFI_PERM_PROMPT);
    assert_int_equal(query(ctx, f->s.c), CAPFFI_PERM_GRANTED);
    /* A request below the withdrawal can grant one file again. */
    f->answer = CAPFFI_PERM_GRANTED;
    assert_ok(capffi_perm_request(&st, ctx, f->s.a));
    assert_int_equal(st, CAPFFI_PERM_GRANTED);
    assert_int_equal(query(ctx, f->s.b), CAPFFI_PERM_PROMPT);
    /* Withdraw everything. */
    assert_ok(capffi_perm_revoke(&st, ctx, NULL));
    assert_int_equal(st, CAPFFI_PERM_PROMPT);
    assert_int_equal(query(ctx, f->s.a), CAPFFI_PERM_PROMPT);
    assert_int_equal(query(ctx, f->s.c), CAPFFI_PERM_PROMPT);
    capffi_token t;
    assert_rc(capffi_token_new(&t, ctx, "late", NULL), CAPFFI_EPERM);
    capffi_ctx_free(ctx);

    /* Without a prompt hook, withdrawn means denied. */
    ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    assert_ok(capffi_perm_revoke(&st, ctx, f->s.a));
    assert_int_equal(st, CAPFFI_PERM_DENIED);
    assert_int_equal(query(ctx, f->s.b), CAPFFI_PERM_GRANTED);
    /* ...and tokens minted now do not cover it either. */
    assert_ok(capffi_token_new(&t, ctx, "after", NULL));
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, f->s.a),
              CAPFFI_EPERM);
    assert_ok(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, f->s.b));
    capffi_ctx_free(ctx);
}

static void
perm_special_paths_need_a_named_grant(void **state)
{
    (void)state;
    const char *allow[] = { "/dev/null", NULL };
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, allow, NULL);
    assert_int_equal(query(ctx, "/dev/null"), CAPFFI_PERM_GRANTED);
    assert_int_equal(query(ctx, "/dev/zero"), CAPFFI_PERM_DENIED);
    capffi_ctx_free(ctx);
    /* Granting "/" does not reach /proc either. */
    const char *root[] = { "/", NULL };
    ctx = ctx_with(0, root, NULL);
    assert_int_equal(query(ctx, "/proc/cpuinfo"), CAPFFI_PERM_DENIED);
    assert_int_equal(query(ctx, "/etc"), CAPFFI_PERM_GRANTED);
    capffi_ctx_free(ctx);
}

/* Deny wins over an allow naming a pseudo file system, too. */
static void
perm_deny_root_beats_special_allow(void **state)
{
    (void)state;
    const char *allow[] = { "/dev/null", NULL };
    const char *deny[] = { "/", NULL };
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, allow, deny);
    assert_int_equal(query(ctx, "/dev/null"), CAPFFI_PERM_DENIED);
    capffi_token t;
    assert_ok(capffi_token_new(&t, ctx, "t", NULL));
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, "/dev/null"),
              CAPFFI_EPERM);
    capffi_ctx_free(ctx);
}

/* A file granted again below a withdrawal is usable by tokens minted
 * afterwards, exactly as the context reports it. */
static void
perm_regrant_below_withdrawal_reaches_tokens(void **state)
{
    struct fx *f = *state;
    const char *allow[] = { f->s.dir, NULL };
    capffi_ctx *ctx = prompting_ctx(f, allow);
    capffi_perm_state st;
    assert_ok(capffi_perm_revoke(&st, ctx, f->s.lib));
    f->answer = CAPFFI_PERM_GRANTED;
    assert_ok(capffi_perm_request(&st, ctx, f->s.a));
    assert_int_equal(query(ctx, f->s.a), CAPFFI_PERM_GRANTED);
    capffi_token t, child;
    assert_ok(capffi_token_new(&t, ctx, "after", NULL));
    assert_ok(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, f->s.a));
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, f->s.b),
              CAPFFI_EPERM);
    assert_ok(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, f->s.c));
    /* A child scoped to the whole directory keeps both the withdrawal and
     * the re-grant below it. */
    capffi_scope sc;
    const char *dir[] = { f->s.dir };
    memset(&sc, 0, sizeof sc);
    sc.paths = dir;
    sc.n_paths = 1;
    assert_ok(capffi_token_attenuate(&child, ctx, &t, &sc));
    assert_ok(capffi_token_check(ctx, &child, CAPFFI_RIGHT_DLOPEN, f->s.a));
    assert_rc(capffi_token_check(ctx, &child, CAPFFI_RIGHT_DLOPEN, f->s.b),
              CAPFFI_EPERM);
    assert_ok(capffi_token_check(ctx, &child, CAPFFI_RIGHT_DLOPEN, f->s.c));
    /* The same from the context directly. */
    assert_ok(capffi_token_new(&child, ctx, "scoped", &sc));
    assert_ok(capffi_token_check(ctx, &child, CAPFFI_RIGHT_DLOPEN, f->s.a));
    assert_rc(capffi_token_check(ctx, &child, CAPFFI_RIGHT_DLOPEN, f->s.b),
              CAPFFI_EPERM);
    capffi_ctx_free(ctx);
}

static void
perm_rejects_bad_input(void **state)
{
    struct fx *f = *state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_perm_state st;
    char longp[PATH_MAX + 8];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    assert_rc(capffi_perm_query(NULL, ctx, f->s.a), CAPFFI_EINVAL);
    st = CAPFFI_PERM_GRANTED;
    assert_rc(capffi_perm_query(&st, NULL, f->s.a), CAPFFI_EINVAL);
    assert_int_equal(st, CAPFFI_PERM_DENIED);
    assert_rc(capffi_perm_query(&st, ctx, ""), CAPFFI_EINVAL);
    assert_rc(capffi_perm_query(&st, ctx, longp), CAPFFI_EINVAL);
    assert_rc(capffi_perm_query(&st, ctx, "/tmp/a\nb"), CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "control character"));
    assert_rc(capffi_perm_request(&st, ctx, "/nonexistent/x"),
              CAPFFI_ENOTFOUND);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "/nonexistent/x"));
    assert_rc(capffi_perm_revoke(&st, ctx, "/nonexistent/x"), CAPFFI_ENOTFOUND);
    /* Nothing changed. */
    assert_int_equal(query(ctx, NULL), CAPFFI_PERM_GRANTED);
    capffi_ctx_free(ctx);
}

static void
perm_decisions_are_audited(void **state)
{
    struct fx *f = *state;
    capffi_ctx *ctx = prompting_ctx(f, NULL);
    capffi_perm_state st;
    assert_ok(capffi_audit_record(ctx, 64));
    uint64_t mark = capffi_audit_mark(ctx);
    assert_ok(capffi_perm_query(&st, ctx, f->s.a));
    f->answer = CAPFFI_PERM_GRANTED;
    assert_ok(capffi_perm_request(&st, ctx, f->s.link_a));
    assert_ok(capffi_perm_revoke(&st, ctx, f->s.a));
    assert_rc(capffi_perm_query(&st, ctx, ""), CAPFFI_EINVAL);
    char query[PATH_MAX + 16], request[PATH_MAX + 16], revoke[PATH_MAX + 16];
    snprintf(query, sizeof query, "perm.query ok %s", f->s.a);
    snprintf(request, sizeof request, "perm.request ok %s", f->s.a);
    snprintf(revoke, sizeof revoke, "perm.revoke ok %s", f->s.a);
    assert_events(ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT, query,
                  request, revoke, "perm.query EINVAL");
    capffi_event ev;
    assert_ok(capffi_audit_get(&ev, ctx, 1));
    assert_non_null(strstr(ev.detail, "granted"));
    capffi_ctx_free(ctx);
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
perm_soname_grant_is_the_file(void **state)
{
    struct fx *f = *state;
    char libz[PATH_MAX], libm[PATH_MAX], link_z[PATH_MAX];
    soname_file(libz, "libz.so.1");
    soname_file(libm, "libm.so.6");
    pathf(link_z, "%s/libz-link", f->s.dir);
    assert_int_equal(symlink(libz, link_z), 0);
    const char *allow[] = { "libz.so.1", NULL };
    capffi_ctx *ctx = ctx_with(0, allow, NULL);
    /* The grant is the file, whatever names it now. */
    assert_int_equal(query(ctx, "libz.so.1"), CAPFFI_PERM_GRANTED);
    assert_int_equal(query(ctx, libz), CAPFFI_PERM_GRANTED);
    assert_int_equal(query(ctx, link_z), CAPFFI_PERM_GRANTED);
    /* And no other file. */
    assert_int_equal(query(ctx, "libm.so.6"), CAPFFI_PERM_DENIED);
    assert_int_equal(query(ctx, libm), CAPFFI_PERM_DENIED);
    capffi_ctx_free(ctx);
}

static void
perm_soname_deny_beats_allow_all(void **state)
{
    struct fx *f = *state;
    char libz[PATH_MAX], found[PATH_MAX], link_z[PATH_MAX], dots[PATH_MAX];
    soname_file(libz, "libz.so.1");
    assert_ok(capffi_lib_resolve(found, sizeof found, NULL, "libz.so.1"));
    pathf(link_z, "%s/libz-link", f->s.dir);
    assert_int_equal(symlink(libz, link_z), 0);
    pathf(dots, "/../.%s", libz);
    const char *deny[] = { "libz.so.1", NULL };
    const char *allow[] = { libz, NULL };
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, allow, deny);
    const char *spellings[] = { "libz.so.1", libz, found, link_z, dots };
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        assert_int_equal(query(ctx, spellings[i]), CAPFFI_PERM_DENIED);
        capffi_perm_state st;
        assert_ok(capffi_perm_request(&st, ctx, spellings[i]));
        assert_int_equal(st, CAPFFI_PERM_DENIED);
    }
    assert_int_equal(query(ctx, "libm.so.6"), CAPFFI_PERM_GRANTED);
    capffi_ctx_free(ctx);
}

static void
perm_unknown_soname_is_not_found(void **state)
{
    (void)state;
    const char *names[] = { "libcapffi-no-such-lib.so.9" };
    capffi_options o;
    capffi_ctx *ctx = (capffi_ctx *)&o;
    memset(&o, 0, sizeof o);
    o.allow_paths = names;
    o.n_allow = 1;
    assert_rc(capffi_ctx_new(&ctx, &o), CAPFFI_ENOTFOUND);
    assert_null(ctx);
    const char *msg = capffi_ctx_errmsg(NULL);
    if (!strstr(msg, "allow_paths[0]") ||
        !strstr(msg, "soname 'libcapffi-no-such-lib.so.9' not found"))
        fail_msg("unexpected message: %s", msg);
    memset(&o, 0, sizeof o);
    o.flags = CAPFFI_OPT_ALLOW_ALL;
    o.deny_paths = names;
    o.n_deny = 1;
    assert_rc(capffi_ctx_new(&ctx, &o), CAPFFI_ENOTFOUND);
    assert_non_null(strstr(capffi_ctx_errmsg(NULL), "deny_paths[0]"));
    ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_perm_state st;
    assert_rc(capffi_perm_query(&st, ctx, names[0]), CAPFFI_ENOTFOUND);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), names[0]));
    capffi_ctx_free(ctx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(perm_state_names),
        T(perm_null_options_deny_everything),
        T(perm_allow_all_grants_every_file),
        T(perm_path_grant_is_an_identity),
        T(perm_directory_grant_covers_below),
        T(perm_relative_grant_survives_chdir),
        T(perm_deny_beats_allow_by_every_spelling),
        T(perm_request_asks_the_prompt),
        T(perm_revoke_withdraws),
        T(perm_special_paths_need_a_named_grant),
        T(perm_deny_root_beats_special_allow),
        T(perm_regrant_below_withdrawal_reaches_tokens),
        T(perm_rejects_bad_input),
        T(perm_decisions_are_audited),
        T(perm_soname_grant_is_the_file),
        T(perm_soname_deny_beats_allow_all),
        T(perm_unknown_soname_is_not_found),
#undef T
    };
    return RUN_TESTS("perm", tests);
}
