/*
 * test_loader.c - attacks on library loading (suites: security, lib).
 * Each case names the THREATS.md item (L1-L10, C1) it defends; each fails
 * if that defence breaks.
 *
 * libcapffi_ctor.so plays the attacker's library: its constructor creates
 * the file named by $CAPFFI_CTOR_MARK, so "the marker never appears" means
 * "the attacker's code never ran". Every test loads private copies of it,
 * so an earlier load in this process cannot hide a later one.
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small helpers ------------------------------------------------------ */

/* Replace dst by a copy of src the way an attacker would: a new file
 * renamed over the old name (a new inode under the same path). */
static void
replace_file(const char *src, const char *dst)
{
    char tmp[PATH_MAX];
    pathf(tmp, "%s.new", dst);
    copy_file(src, tmp, 0644);
    assert_int_equal(rename(tmp, dst), 0);
}

static bool
exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* The detail of the recorded LIB_OPEN success for target, or NULL. */
static const char *
open_detail(capffi_ctx *ctx, const char *target)
{
    capffi_event ev;
    const char *detail = NULL;
    for (size_t i = 0; capffi_audit_get(&ev, ctx, i) == CAPFFI_OK; i++)
        if (ev.op == CAPFFI_OP_LIB_OPEN && ev.status == 0 &&
            strcmp(ev.target, target) == 0)
            detail = ev.detail;
    return detail;
}

/* ---- fixture: a scratch directory, a marker, private library copies ---- */

struct fx {
    struct scratch s;
    char cwd[PATH_MAX];
    char mark[PATH_MAX];    /* $CAPFFI_CTOR_MARK */
    char fixture[PATH_MAX]; /* the real fixture, canonical */
    char good[PATH_MAX];    /* a copy of the fixture */
    char evil[PATH_MAX];    /* a copy of libcapffi_ctor.so */
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    scratch_make(&f->s);
    assert_non_null(getcwd(f->cwd, sizeof f->cwd));
    pathf(f->mark, "%s/ctor-ran", f->s.dir);
    assert_int_equal(setenv("CAPFFI_CTOR_MARK", f->mark, 1), 0);
    assert_non_null(realpath(env_path("CAPFFI_FIXTURE"), f->fixture));
    pathf(f->good, "%s/good.so", f->s.dir);
    pathf(f->evil, "%s/evil.so", f->s.dir);
    copy_file(f->fixture, f->good, 0644);
    copy_file(env_path("CAPFFI_CTOR"), f->evil, 0644);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    if (chdir(f->cwd) != 0)
        perror("chdir");
    unsetenv("CAPFFI_CTOR_MARK");
    scratch_remove(&f->s);
    free(f);
    return 0;
}

/* ---- L1: symbols of dependencies ---------------------------------------- */

/* L1: the fixture's handle reaches libcapffi_fixdep.so's symbols through
 * dlsym; binding them needs CAPFFI_FN_DEPS. */
static void
loader_dependency_symbol_needs_fn_deps(void **state)
{
    struct fx *f = *state;
    const char *allow[] = { env_path("CAPFFI_FIXTURE_DIR"), NULL };
    capffi_ctx *ctx = ctx_with(0, allow, NULL);
    capffi_token t = mint(ctx, "fixture-dir", 0);
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, ctx, &t, f->fixture, 0));
    capffi_fn *fn = (capffi_fn *)&fn;
    assert_rc(capffi_lib_bind(&fn, lib, "fixdep_secret", "() -> i32", 0),
              CAPFFI_EPERM);
    assert_null(fn);
    const char *msg = capffi_ctx_errmsg(ctx);
    assert_non_null(strstr(msg, "libcapffi_fixdep.so"));
    assert_non_null(strstr(msg, "fixdep_secret"));
    /* Statics are held to the same rule. */
    capffi_value v;
    assert_rc(capffi_lib_static(&v, lib, "fixdep_secret", "pointer"),
              CAPFFI_EPERM);

    assert_ok(capffi_lib_bind(&fn, lib, "fixdep_secret", "() -> i32",
                              CAPFFI_FN_DEPS));
    capffi_value r;
    assert_ok(capffi_fn_call(fn, NULL, &r));
    assert_int_equal(r.i64, 4242);
    capffi_fn_free(fn);
    /* The fixture's own symbols bind without the flag. */
    assert_ok(capffi_lib_bind(&fn, lib, "fx_uses_dep", "(i32) -> i32", 0));
    capffi_value a = { .i64 = 41 };
    assert_ok(capffi_fn_call(fn, &a, &r));
    assert_int_equal(r.i64, 42);
    capffi_fn_free(fn);
    capffi_lib_close(lib);
    capffi_ctx_free(ctx);
}

/*
 * H1 (measured): a token scoped to one library file asked for dependency
 * symbols (CAPFFI_FN_DEPS) and got libc's system through libz. A symbol
 * of another file binds only when the token covers that file.
 */
static void
loader_dependency_symbol_needs_the_file_in_scope(void **state)
{
    struct fx *f = *state;
    char fixdep[PATH_MAX];
    char libz[PATH_MAX];
    assert_non_null(realpath(env_path("CAPFFI_FIXDEP"), fixdep));
    assert_ok(capffi_lib_resolve(libz, sizeof libz, NULL, "libz.so.1"));
    const char *allow[] = { f->fixture, fixdep, libz, NULL };
    capffi_ctx *ctx = ctx_with(0, allow, NULL);
    assert_ok(capffi_audit_record(ctx, 256));

    /* Scoped to the fixture file alone: its dependency is out of scope. */
    const char *only_fixture[] = { f->fixture };
    capffi_scope sc = { .paths = only_fixture, .n_paths = 1 };
    capffi_token t;
    assert_ok(capffi_token_new(&t, ctx, "fixture-only", &sc));
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, ctx, &t, f->fixture, 0));
    uint64_t mark = capffi_audit_mark(ctx);
    capffi_fn *fn = (capffi_fn *)&fn;
    assert_rc(
        capffi_lib_bind(&fn, lib, "fixdep_secret", "() -> i32", CAPFFI_FN_DEPS),
        CAPFFI_EPERM);
    assert_null(fn);
    const char *msg = capffi_ctx_errmsg(ctx);
    assert_non_null(strstr(msg, "libcapffi_fixdep.so"));
    assert_non_null(strstr(msg, "not in the scope"));
    /* Nor does libc, which the fixture also links. */
    assert_rc(
        capffi_lib_bind(&fn, lib, "system", "(cstring) -> i32", CAPFFI_FN_DEPS),
        CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "libc.so"));
    assert_events(ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  "lib.bind EPERM fixdep_secret", "lib.bind EPERM system");
    capffi_lib_close(lib);

    /* libz scoped to libz: dlopen, dlsym and system are all refused. */
    const char *only_z[] = { libz };
    sc.paths = only_z;
    assert_ok(capffi_token_new(&t, ctx, "libz-only", &sc));
    assert_ok(capffi_lib_open(&lib, ctx, &t, "libz.so.1", 0));
    const char *reach[] = { "system", "dlopen", "dlsym", "execve" };
    for (size_t i = 0; i < sizeof reach / sizeof *reach; i++)
        assert_rc(capffi_lib_bind(&fn, lib, reach[i], "(pointer) -> i32",
                                  CAPFFI_FN_DEPS),
                  CAPFFI_EPERM);
    assert_ok(capffi_lib_bind(&fn, lib, "zlibVersion", "() -> cstring",
                              CAPFFI_FN_DEPS));
    capffi_fn_free(fn);
    capffi_lib_close(lib);

    /* A token that covers both files binds the dependency's symbol. */
    const char *both[] = { f->fixture, fixdep };
    sc.paths = both;
    sc.n_paths = 2;
    assert_ok(capffi_token_new(&t, ctx, "fixture-and-dep", &sc));
    assert_ok(capffi_lib_open(&lib, ctx, &t, f->fixture, 0));
    assert_ok(capffi_lib_bind(&fn, lib, "fixdep_secret", "() -> i32",
                              CAPFFI_FN_DEPS));
    capffi_value r;
    assert_ok(capffi_fn_call(fn, NULL, &r));
    assert_int_equal(r.i64, 4242);
    capffi_fn_free(fn);
    capffi_lib_close(lib);
    capffi_ctx_free(ctx);
}

/* L1 (measured): dlsym(libm, "system") finds libc's system. */
static void
loader_libm_does_not_reach_system(void **state)
{
    (void)state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token t = mint(ctx, "all", 0);
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, ctx, &t, "libm.so.6", 0));
    capffi_fn *fn = (capffi_fn *)&fn;
    assert_rc(capffi_lib_bind(&fn, lib, "system", "(cstring) -> i32", 0),
              CAPFFI_EPERM);
    assert_null(fn);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "libc.so"));
    assert_rc(capffi_lib_bind(&fn, lib, "system", "(cstring) -> i32",
                              CAPFFI_FN_OPTIONAL),
              CAPFFI_EPERM);
    /* libm's own functions bind. */
    assert_ok(capffi_lib_bind(&fn, lib, "cos", "(f64) -> f64", 0));
    capffi_value a = { .f64 = 0.0 }, r;
    assert_ok(capffi_fn_call(fn, &a, &r));
    assert_true(r.f64 == 1.0);
    capffi_fn_free(fn);
    capffi_lib_close(lib);
    capffi_ctx_free(ctx);
}

/* ---- L2: a symlink swapped between check and load ----------------------- */

struct swapper {
    const char *dir;
    atomic_bool stop;
    atomic_long swaps;
    int err;
};

static void *
swap_loop(void *arg)
{
    struct swapper *sw = arg;
    char link[PATH_MAX], tmp[PATH_MAX];
    snprintf(link, sizeof link, "%s/lib.so", sw->dir);
    snprintf(tmp, sizeof tmp, "%s/lib.so.tmp", sw->dir);
    static const char *const target[2] = { "good.so", "evil.so" };
    for (long i = 0; !atomic_load(&sw->stop); i++) {
        if (symlink(target[(i + 1) % 2], tmp) != 0 || rename(tmp, link) != 0) {
            sw->err = errno;
            break;
        }
        atomic_fetch_add(&sw->swaps, 1);
    }
    return NULL;
}

static void
loader_symlink_swap_race(void **state)
{
    struct fx *f = *state;
    char link[PATH_MAX];
    pathf(link, "%s/lib.so", f->s.dir);
    assert_int_equal(symlink("good.so", link), 0);
    const char *allow[] = { f->good, NULL };

    enum { MIN_SWAPS = 4000, MIN_OPENS = 2000, PER_CTX = 200 };
    struct swapper sw = { .dir = f->s.dir };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, swap_loop, &sw), 0);

    long opens = 0, loaded = 0, refused = 0, wrong = 0;
    int bad_rc = 0;
    char bad_path[PATH_MAX] = "";
    capffi_ctx *ctx = NULL;
    capffi_token t;
    while ((opens < MIN_OPENS || atomic_load(&sw.swaps) < MIN_SWAPS) &&
           opens < 200000 && !sw.err) {
        /* A fresh context now and then: libraries stay loaded (and their
         * descriptors open) until the context is freed. */
        if (opens % PER_CTX == 0) {
            capffi_ctx_free(ctx);
            ctx = ctx_with(CAPFFI_OPT_PATHS_ONLY, allow, NULL);
            assert_ok(capffi_token_new(&t, ctx, "good-only", NULL));
        }
        opens++;
        capffi_lib *lib = NULL;
        int rc = capffi_lib_open(&lib, ctx, &t, link, 0);
        if (rc == CAPFFI_EPERM) {
            refused++;
            continue;
        }
        if (rc != CAPFFI_OK) {
            bad_rc = rc;
            break;
        }
        loaded++;
        capffi_fn *fn = NULL;
        int brc =
            capffi_lib_bind(&fn, lib, "fx_add_i32", "(i32, i32) -> i32", 0);
        int crc = -1;
        int32_t sum = brc ? 0 : add_i32(fn, 20, 22, &crc);
        if (brc || crc || sum != 42 ||
            strcmp(capffi_lib_path(lib), f->good) != 0) {
            wrong++;
            pathf(bad_path, "%s", capffi_lib_path(lib));
        }
        capffi_fn_free(fn);
        capffi_lib_close(lib);
    }
    atomic_store(&sw.stop, true);
    pthread_join(th, NULL);
    capffi_ctx_free(ctx);

    print_message("# %ld opens (%ld loaded, %ld refused), %ld swaps\n", opens,
                  loaded, refused, (long)atomic_load(&sw.swaps));
    assert_int_equal(sw.err, 0);
    if (bad_rc)
        fail_msg("capffi_lib_open returned %s", capffi_err_name(bad_rc));
    if (wrong)
        fail_msg("%ld opens loaded something other than good.so ('%s')", wrong,
                 bad_path);
    assert_false(exists(f->mark));
    /* Both outcomes were seen: the race really ran. */
    assert_true(loaded > 0);
    assert_true(refused > 0);
}

/*
 * L2, L7, L8: the same race one level up. DIR/att/d is a real directory
 * and DIR/att/s a symlink to another directory; a thread trades their
 * places (renameat2 RENAME_EXCHANGE, atomic) again and again while the
 * main thread opens DIR/att/d/<name>. Whatever file is opened, the grant
 * decision must be about that file and the directories it was really
 * found in, never about whatever a later lookup of the same string finds.
 */
struct dirswapper {
    char a[PATH_MAX], b[PATH_MAX];
    atomic_bool stop;
    atomic_long swaps;
    int err;
};

static void *
dirswap_loop(void *arg)
{
    struct dirswapper *sw = arg;
    while (!atomic_load(&sw->stop)) {
        if (renameat2(AT_FDCWD, sw->a, AT_FDCWD, sw->b, RENAME_EXCHANGE) != 0) {
            sw->err = errno;
            break;
        }
        atomic_fetch_add(&sw->swaps, 1);
    }
    return NULL;
}

struct dirrace {
    long opens, loaded, refused, other;
    int other_rc;
    bool marked; /* the attacker's constructor ran */
};

/* Build DIR/att/{d,s}, s -> swap_to, and race opens of DIR/att/d/name
 * with tokens of contexts made by ctx_with(flags, allow, deny) (a fresh
 * one now and then: loaded libraries stay until their context is freed).
 * Stops early once the attacker's constructor has run. */
static struct dirrace
run_dir_race(struct fx *f, uint32_t flags, const char *const *allow,
             const char *const *deny, const char *name, const char *swap_to,
             long min_opens, char *target)
{
    char att[PATH_MAX];
    struct dirswapper sw;
    memset(&sw, 0, sizeof sw);
    pathf(att, "%s/att", f->s.dir);
    pathf(sw.a, "%s/d", att);
    pathf(sw.b, "%s/s", att);
    pathf(target, "%s/%s", sw.a, name);
    assert_int_equal(symlink(swap_to, sw.b), 0);
    /* RENAME_EXCHANGE needs file system support. */
    for (int i = 0; i < 2; i++)
        if (renameat2(AT_FDCWD, sw.a, AT_FDCWD, sw.b, RENAME_EXCHANGE) != 0) {
            assert_true(errno == EINVAL || errno == ENOSYS ||
                        errno == EOPNOTSUPP);
            print_message("# RENAME_EXCHANGE unsupported here: skipped\n");
            skip();
        }

    struct dirrace r;
    memset(&r, 0, sizeof r);
    capffi_ctx *ctx = NULL;
    capffi_token t;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, dirswap_loop, &sw), 0);
    while ((r.opens < min_opens || atomic_load(&sw.swaps) < 2 * min_opens) &&
           !sw.err && r.opens < 50 * min_opens) {
        if (r.opens % 500 == 0) {
            capffi_ctx_free(ctx);
            ctx = ctx_with(flags, allow, deny);
            assert_ok(capffi_token_new(&t, ctx, "race", NULL));
        }
        r.opens++;
        capffi_lib *lib = NULL;
        int rc = capffi_lib_open(&lib, ctx, &t, target, 0);
        if (rc == CAPFFI_OK) {
            r.loaded++;
            capffi_lib_close(lib);
        } else if (rc == CAPFFI_EPERM || rc == CAPFFI_ENOTFOUND) {
            r.refused++;
        } else {
            r.other++;
            r.other_rc = rc;
        }
        if (exists(f->mark))
            break;
    }
    atomic_store(&sw.stop, true);
    pthread_join(th, NULL);
    capffi_ctx_free(ctx);
    r.marked = exists(f->mark);
    print_message("# %ld opens (%ld loaded, %ld refused), %ld swaps\n", r.opens,
                  r.loaded, r.refused, (long)atomic_load(&sw.swaps));
    assert_int_equal(sw.err, 0);
    if (r.other)
        fail_msg("%ld opens returned %s", r.other, capffi_err_name(r.other_rc));
    return r;
}

/* A token for DIR/lib only; DIR/att/d holds the attacker's evil.so and is
 * traded with a symlink to DIR/lib. No open may succeed: the only file
 * named evil.so is outside the grant. */
static void
loader_directory_swap_escapes_no_grant(void **state)
{
    struct fx *f = *state;
    char d[PATH_MAX], evil[PATH_MAX], target[PATH_MAX];
    pathf(d, "%s/att", f->s.dir);
    assert_int_equal(mkdir(d, 0755), 0);
    pathf(d, "%s/att/d", f->s.dir);
    assert_int_equal(mkdir(d, 0755), 0);
    pathf(evil, "%s/evil.so", d);
    copy_file(f->evil, evil, 0644);
    const char *allow[] = { f->s.lib, NULL };
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_PATHS_ONLY, allow, NULL);
    capffi_token t = mint(ctx, "lib-dir", 0);
    /* Without the race: refused. */
    capffi_lib *lib = NULL;
    assert_rc(capffi_lib_open(&lib, ctx, &t, evil, 0), CAPFFI_EPERM);

    capffi_ctx_free(ctx);
    struct dirrace r = run_dir_race(f, CAPFFI_OPT_PATHS_ONLY, allow, NULL,
                                    "evil.so", f->s.lib, 30000, target);
    if (r.loaded || r.marked)
        fail_msg("'%s' (outside the granted directory '%s') was loaded %ld "
                 "time(s) in %ld opens; its constructor ran: %s",
                 target, f->s.lib, r.loaded, r.opens, r.marked ? "yes" : "no");
}

/* Allow-all with DIR/other denied; DIR/other/x.so is the attacker's
 * library, DIR/att/d/x.so a harmless copy of the fixture, and d is traded
 * with a symlink to DIR/other. The denied file must never load. */
static void
loader_directory_swap_escapes_no_deny(void **state)
{
    struct fx *f = *state;
    char d[PATH_MAX], path[PATH_MAX], target[PATH_MAX];
    pathf(d, "%s/att", f->s.dir);
    assert_int_equal(mkdir(d, 0755), 0);
    pathf(d, "%s/att/d", f->s.dir);
    assert_int_equal(mkdir(d, 0755), 0);
    pathf(path, "%s/x.so", d);
    copy_file(f->fixture, path, 0644);
    pathf(path, "%s/x.so", f->s.other);
    copy_file(f->evil, path, 0644);
    const char *deny[] = { f->s.other, NULL };
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, deny);
    capffi_token t = mint(ctx, "all-but-other", 0);
    capffi_lib *lib = NULL;
    assert_rc(capffi_lib_open(&lib, ctx, &t, path, 0), CAPFFI_EPERM);

    capffi_ctx_free(ctx);
    struct dirrace r = run_dir_race(f, CAPFFI_OPT_ALLOW_ALL, NULL, deny, "x.so",
                                    f->s.other, 30000, target);
    if (r.marked)
        fail_msg("'%s' (in the denied directory '%s') was loaded through "
                 "'%s' within %ld opens: its constructor ran",
                 path, f->s.other, target, r.opens);
    /* The harmless copy did load at times: the race really ran. */
    assert_true(r.loaded > 0);
}

/* ---- L3: identity is the file, not the string --------------------------- */

static void
loader_replaced_file_is_refused(void **state)
{
    struct fx *f = *state;
    char x[PATH_MAX], dot[PATH_MAX], dbl[PATH_MAX];
    pathf(x, "%s/x.so", f->s.dir);
    pathf(dot, "%s/./x.so", f->s.dir);
    pathf(dbl, "%s//x.so", f->s.dir);
    copy_file(f->fixture, x, 0644);
    const char *allow[] = { x, NULL };
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_PATHS_ONLY, allow, NULL);
    capffi_token t = mint(ctx, "x", 0);

    /* Three spellings, one identity, one loaded copy. */
    capffi_lib *l1, *l2, *l3;
    assert_ok(capffi_lib_open(&l1, ctx, &t, x, 0));
    assert_ok(capffi_lib_open(&l2, ctx, &t, dot, 0));
    assert_ok(capffi_lib_open(&l3, ctx, &t, dbl, 0));
    assert_string_equal(capffi_lib_path(l2), x);
    assert_string_equal(capffi_lib_path(l3), x);
    capffi_fn *bump;
    assert_ok(capffi_lib_bind(&bump, l1, "fx_bump", "() -> void", 0));
    assert_ok(capffi_fn_call(bump, NULL, NULL));
    capffi_value v;
    assert_ok(capffi_lib_static(&v, l2, "fx_counter", "i32"));
    assert_int_equal(v.i64, 8); /* the bump through l1 shows through l2 */
    assert_ok(capffi_lib_static(&v, l3, "fx_counter", "i32"));
    assert_int_equal(v.i64, 8);

    /* The file is replaced under the granted name. */
    replace_file(f->evil, x);
    capffi_lib *lib = NULL;
    assert_rc(capffi_lib_open(&lib, ctx, &t, x, 0), CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "x.so"));
    assert_rc(capffi_lib_open(&lib, ctx, &t, dot, 0), CAPFFI_EPERM);
    assert_rc(capffi_lib_open(&lib, ctx, &t, dbl, 0), CAPFFI_EPERM);
    assert_null(lib);
    assert_false(exists(f->mark));
    /* What was loaded before keeps working. */
    assert_ok(capffi_fn_call(bump, NULL, NULL));
    assert_ok(capffi_lib_static(&v, l1, "fx_counter", "i32"));
    assert_int_equal(v.i64, 9);
    capffi_lib_close(l1);
    capffi_lib_close(l2);
    capffi_lib_close(l3);
    capffi_ctx_free(ctx);
}

/* L3 (measured): re-opening a replaced path must load the new file, not
 * hand back the old object that was loaded under that name. */
static void
loader_replaced_file_loads_the_new_file(void **state)
{
    struct fx *f = *state;
    char x[PATH_MAX];
    pathf(x, "%s/x.so", f->s.dir);
    copy_file(f->fixture, x, 0644);
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token t = mint(ctx, "all", 0);
    capffi_lib *old, *cur;
    assert_ok(capffi_lib_open(&old, ctx, &t, x, 0));
    capffi_fn *fn;
    assert_ok(capffi_lib_bind(&fn, old, "fx_nop", "() -> void", 0));
    capffi_fn_free(fn);

    replace_file(f->evil, x);
    assert_false(exists(f->mark));
    assert_ok(capffi_lib_open(&cur, ctx, &t, x, 0)); /* allowed: ALLOW_ALL */
    assert_true(exists(f->mark));                    /* the new file loaded */
    assert_rc(capffi_lib_bind(&fn, cur, "fx_nop", "() -> void", 0),
              CAPFFI_ENOTFOUND);
    assert_ok(capffi_lib_bind(&fn, cur, "ctor_loaded", "() -> i32", 0));
    capffi_value r;
    assert_ok(capffi_fn_call(fn, NULL, &r));
    assert_int_equal(r.i64, 1);
    capffi_fn_free(fn);
    capffi_lib_close(old);
    capffi_lib_close(cur);
    capffi_ctx_free(ctx);
}

/* ---- L4: /proc, /dev, memfd --------------------------------------------- */

/* L4: under allow-all, /proc and /dev paths and memfds are refused: every
 * spelling is tried, and the ones that loaded are listed. */
struct refusals {
    capffi_ctx *ctx;
    capffi_token tok;
    char loaded[4096];
};

static void
expect_refused(struct refusals *r, const char *path)
{
    capffi_lib *lib = NULL;
    int rc = capffi_lib_open(&lib, r->ctx, &r->tok, path, 0);
    if (rc == CAPFFI_EPERM || rc == CAPFFI_ENOTFOUND) {
        assert_null(lib);
        return;
    }
    size_t used = strlen(r->loaded);
    snprintf(r->loaded + used, sizeof r->loaded - used, "\n  '%s' -> %s %s",
             path, capffi_err_name(rc),
             rc ? capffi_ctx_errmsg(r->ctx) : capffi_lib_path(lib));
    capffi_lib_close(lib);
}

static void
loader_proc_dev_and_memfd_are_refused(void **state)
{
    struct fx *f = *state;
    struct refusals r = { .ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL) };
    r.tok = mint(r.ctx, "all", 0);
    char path[PATH_MAX];

    /* A descriptor of an open copy of the fixture. */
    int fd = open(f->good, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    pathf(path, "/proc/self/fd/%d", fd);
    expect_refused(&r, path);
    pathf(path, "/proc/%d/fd/%d", (int)getpid(), fd);
    expect_refused(&r, path);
    pathf(path, "/dev/fd/%d", fd);
    expect_refused(&r, path);
    close(fd);
    /* The same file through the other /proc doors. */
    pathf(path, "/proc/self/root%s", f->good);
    expect_refused(&r, path);
    assert_int_equal(chdir(f->s.dir), 0);
    expect_refused(&r, "/proc/self/cwd/good.so");
    assert_int_equal(chdir(f->cwd), 0);

    /* Devices. */
    expect_refused(&r, "/dev/zero");
    expect_refused(&r, "/dev/null");

    /* A memfd holding a real library. */
    int mfd = memfd_create("capffi-lib", MFD_CLOEXEC);
    assert_true(mfd >= 0);
    int in = open(f->fixture, O_RDONLY | O_CLOEXEC);
    assert_true(in >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        assert_int_equal(write(mfd, buf, (size_t)n), n);
    close(in);
    pathf(path, "/proc/self/fd/%d", mfd);
    expect_refused(&r, path);
    pathf(path, "/dev/fd/%d", mfd);
    expect_refused(&r, path);
    close(mfd);

    /* The copy itself, by its own name, loads. */
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, r.ctx, &r.tok, f->good, 0));
    capffi_lib_close(lib);
    capffi_ctx_free(r.ctx);
    if (r.loaded[0])
        fail_msg("loaded under allow-all without a grant naming them:%s",
                 r.loaded);
}

/* L4: naming /dev/zero in a grant does not make it a library. */
static void
loader_granted_device_is_still_refused(void **state)
{
    (void)state;
    const char *allow[] = { "/dev/zero", NULL };
    capffi_ctx *ctx = ctx_with(0, allow, NULL);
    capffi_token t = mint(ctx, "dev-zero", 0);
    /* The grant does cover it ... */
    assert_ok(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, "/dev/zero"));
    /* ... but it is no regular file. */
    capffi_lib *lib = NULL;
    assert_rc(capffi_lib_open(&lib, ctx, &t, "/dev/zero", 0), CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "regular file"));
    assert_null(lib);
    capffi_ctx_free(ctx);
}

/* ---- L5: sonames and LD_LIBRARY_PATH ------------------------------------ */

static void
loader_ld_library_path_attacker_is_checked(void **state)
{
    struct fx *f = *state;
    /* The real libz, as resolved before the attack. */
    char real[PATH_MAX];
    capffi_ctx *all = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token ta = mint(all, "all", 0);
    capffi_lib *lib = NULL;
    assert_ok(capffi_lib_open(&lib, all, &ta, "libz.so.1", 0));
    pathf(real, "%s", capffi_lib_path(lib));
    capffi_lib_close(lib);
    capffi_ctx_free(all);

    const char *allow[] = { real, NULL };
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_PATHS_ONLY, allow, NULL);
    capffi_token t = mint(ctx, "libz-only", 0);

    char attack[PATH_MAX], planted[PATH_MAX];
    pathf(attack, "%s/attacker", f->s.dir);
    assert_int_equal(mkdir(attack, 0755), 0);
    pathf(planted, "%s/libz.so.1", attack);
    copy_file(f->evil, planted, 0644);

    const char *old = getenv("LD_LIBRARY_PATH");
    char *saved = old ? strdup(old) : NULL;
    char value[PATH_MAX];
    pathf(value, "%s%s%s", attack, old ? ":" : "", old ? old : "");
    assert_int_equal(setenv("LD_LIBRARY_PATH", value, 1), 0);
    lib = NULL;
    int rc = capffi_lib_open(&lib, ctx, &t, "libz.so.1", 0);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", capffi_ctx_errmsg(ctx));
    /* Restore the environment before asserting anything. */
    if (saved)
        setenv("LD_LIBRARY_PATH", saved, 1);
    else
        unsetenv("LD_LIBRARY_PATH");
    free(saved);
    if (rc == CAPFFI_OK)
        capffi_lib_close(lib);

    assert_rc(rc, CAPFFI_EPERM);
    assert_null(lib);
    if (!strstr(msg, planted))
        fail_msg("the message does not name '%s': %s", planted, msg);
    assert_false(exists(f->mark));
    /* With the environment restored, the grant opens the real libz. */
    assert_ok(capffi_lib_open(&lib, ctx, &t, "libz.so.1", 0));
    assert_string_equal(capffi_lib_path(lib), real);
    capffi_lib_close(lib);
    assert_false(exists(f->mark));
    capffi_ctx_free(ctx);
}

/* ---- L6: the process scope ---------------------------------------------- */

static void
loader_process_scope_needs_its_own_right(void **state)
{
    (void)state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token t =
        mint(ctx, "no-global", CAPFFI_RIGHTS_ALL & ~CAPFFI_RIGHT_DLOPEN_GLOBAL);
    assert_ok(capffi_audit_record(ctx, 16));
    uint64_t mark = capffi_audit_mark(ctx);
    capffi_lib *lib = (capffi_lib *)&lib;
    assert_rc(capffi_lib_open(&lib, ctx, &t, NULL, 0), CAPFFI_EPERM);
    assert_null(lib);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "dlopen_global"));
    assert_events(ctx, mark, CAPFFI_EXPECT_EXACT, "lib.open EPERM (process)");
    /* A child of a full token, narrowed to DLOPEN, likewise. */
    capffi_token full = mint(ctx, "full", 0), child;
    capffi_scope sc;
    memset(&sc, 0, sizeof sc);
    sc.rights = CAPFFI_RIGHT_DLOPEN;
    assert_ok(capffi_token_attenuate(&child, ctx, &full, &sc));
    mark = capffi_audit_mark(ctx);
    assert_rc(capffi_lib_open(&lib, ctx, &child, NULL, 0), CAPFFI_EPERM);
    assert_ok(capffi_lib_open(&lib, ctx, &full, NULL, 0));
    capffi_lib_close(lib);
    /* The process is "(process)" in every lib.open and lib.close event,
     * refusals included (audit.h, "Targets"). */
    assert_events(ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  "lib.open EPERM (process)", "lib.open ok (process)",
                  "lib.close ok (process)");
    capffi_ctx_free(ctx);
}

/* ---- L7: spellings and the working directory ---------------------------- */

static void
loader_relative_spellings_and_chdir(void **state)
{
    struct fx *f = *state;
    char x[PATH_MAX], decoy[PATH_MAX], decoydir[PATH_MAX];
    pathf(x, "%s/x.so", f->s.lib);
    copy_file(f->fixture, x, 0644);

    /* Granted by a relative path from DIR. */
    assert_int_equal(chdir(f->s.dir), 0);
    const char *allow[] = { "lib/x.so", NULL };
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_PATHS_ONLY, allow, NULL);
    capffi_token t = mint(ctx, "x", 0);

    /* Used from DIR/other, where "lib/x.so" names another file. */
    assert_int_equal(chdir(f->s.other), 0);
    pathf(decoydir, "%s/lib", f->s.other);
    assert_int_equal(mkdir(decoydir, 0755), 0);
    pathf(decoy, "%s/x.so", decoydir);
    copy_file(f->fixture, decoy, 0644);

    static const char *const same[] = {
        "../lib/x.so",          "./../lib/./x.so",       "../lib//x.so",
        "../other/../lib/x.so", "..//./lib/../lib/x.so",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        capffi_lib *lib = NULL;
        int rc = capffi_lib_open(&lib, ctx, &t, same[i], 0);
        if (rc)
            fail_msg("'%s': %s (%s)", same[i], capffi_err_name(rc),
                     capffi_ctx_errmsg(ctx));
        assert_string_equal(capffi_lib_path(lib), x);
        capffi_lib_close(lib);
    }
    capffi_lib *lib = NULL;
    /* The string that was granted now names the decoy: refused. */
    assert_rc(capffi_lib_open(&lib, ctx, &t, "lib/x.so", 0), CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), decoy));
    assert_rc(capffi_lib_open(&lib, ctx, &t, "./lib/x.so", 0), CAPFFI_EPERM);
    /* A trailing slash names no directory. */
    assert_rc(capffi_lib_open(&lib, ctx, &t, "../lib/x.so/", 0),
              CAPFFI_ENOTFOUND);
    /* Control characters and overlong paths never reach the file system. */
    assert_rc(capffi_lib_open(&lib, ctx, &t, "../lib/x.so\n", 0),
              CAPFFI_EINVAL);
    assert_rc(capffi_lib_open(&lib, ctx, &t, "../lib/\tx.so", 0),
              CAPFFI_EINVAL);
    char *longp = malloc(PATH_MAX + 16);
    assert_non_null(longp);
    size_t len = 0;
    while (len < PATH_MAX + 4) {
        memcpy(longp + len, "./", 2);
        len += 2;
    }
    memcpy(longp + len, "x.so", 5);
    assert_rc(capffi_lib_open(&lib, ctx, &t, longp, 0), CAPFFI_EINVAL);
    free(longp);
    assert_null(lib);
    /* A symlink to the granted file is the granted file. */
    assert_rc(capffi_lib_open(&lib, ctx, &t, "../link-x", 0), CAPFFI_ENOTFOUND);
    assert_int_equal(symlink("lib/x.so", "../link-x"), 0);
    assert_ok(capffi_lib_open(&lib, ctx, &t, "../link-x", 0));
    assert_string_equal(capffi_lib_path(lib), x);
    capffi_lib_close(lib);
    assert_int_equal(chdir(f->cwd), 0);
    capffi_ctx_free(ctx);
}

/* ---- L8: deny beats allow ----------------------------------------------- */

static void
loader_deny_beats_allow_every_spelling(void **state)
{
    struct fx *f = *state;
    char x[PATH_MAX], y[PATH_MAX], sym[PATH_MAX], hard[PATH_MAX];
    pathf(x, "%s/x.so", f->s.lib);
    pathf(y, "%s/y.so", f->s.lib);
    pathf(sym, "%s/link-x", f->s.dir);
    pathf(hard, "%s/hard.so", f->s.other);
    copy_file(f->fixture, x, 0644);
    copy_file(f->fixture, y, 0644);
    assert_int_equal(symlink("lib/x.so", sym), 0);
    assert_int_equal(link(x, hard), 0);
    const char *deny[] = { x, NULL };
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, deny);
    capffi_token t = mint(ctx, "all", 0);

    char dotdot[PATH_MAX], dots[PATH_MAX];
    pathf(dotdot, "%s/other/../lib/x.so", f->s.dir);
    pathf(dots, "%s/./lib//./x.so", f->s.dir);
    assert_int_equal(chdir(f->s.other), 0);
    /* Every spelling of x is denied; a hard link is the same file. */
    const char *spellings[] = {
        x, sym, dotdot, dots, "../lib/x.so", "./../link-x", "./hard.so", hard,
    };
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        capffi_lib *lib = NULL;
        int rc = capffi_lib_open(&lib, ctx, &t, spellings[i], 0);
        if (rc != CAPFFI_EPERM)
            fail_msg("'%s': %s, expected CAPFFI_EPERM (%s)", spellings[i],
                     capffi_err_name(rc), capffi_ctx_errmsg(ctx));
        assert_non_null(strstr(capffi_ctx_errmsg(ctx), "denied"));
        assert_null(lib);
    }
    /* A bare name is a soname: never looked up in the working directory,
     * even where a denied file of that name lies. */
    capffi_lib *bare = (capffi_lib *)&bare;
    assert_rc(capffi_lib_open(&bare, ctx, &t, "hard.so", 0), CAPFFI_ENOTFOUND);
    assert_null(bare);
    /* The token check agrees, and a sibling file is allowed. */
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, "../link-x"),
              CAPFFI_EPERM);
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, ctx, &t, "../lib/y.so", 0));
    assert_string_equal(capffi_lib_path(lib), y);
    capffi_lib_close(lib);
    assert_int_equal(chdir(f->cwd), 0);

    /* Denying the directory denies what is in it. */
    const char *deny_dir[] = { f->s.lib, NULL };
    capffi_ctx *ctx2 = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, deny_dir);
    capffi_token t2 = mint(ctx2, "all", 0);
    assert_rc(capffi_lib_open(&lib, ctx2, &t2, y, 0), CAPFFI_EPERM);
    assert_rc(capffi_lib_open(&lib, ctx2, &t2, sym, 0), CAPFFI_EPERM);
    capffi_ctx_free(ctx2);
    capffi_ctx_free(ctx);
}

/* ---- L5 and L8: grants and deny lists by soname ------------------------- */

/* The canonical file a soname names, as capffi_lib_open would load it. */
static void
soname_file(char *out, const char *soname)
{
    char found[PATH_MAX];
    assert_ok(capffi_lib_resolve(found, sizeof found, NULL, soname));
    assert_non_null(realpath(found, out));
}

/* L5: a grant by soname is the file it named when given: opened by
 * soname and by path, never another file, and not what an attacker
 * later puts first in LD_LIBRARY_PATH. */
static void
loader_soname_grant_is_one_file(void **state)
{
    struct fx *f = *state;
    char libz[PATH_MAX];
    soname_file(libz, "libz.so.1");
    const char *allow[] = { "libz.so.1", NULL };
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_PATHS_ONLY, allow, NULL);
    capffi_token t = mint(ctx, "libz", 0);
    capffi_lib *lib = NULL;
    assert_ok(capffi_lib_open(&lib, ctx, &t, "libz.so.1", 0));
    assert_string_equal(capffi_lib_path(lib), libz);
    capffi_lib_close(lib);
    assert_ok(capffi_lib_open(&lib, ctx, &t, libz, 0));
    capffi_lib_close(lib);
    assert_rc(capffi_lib_open(&lib, ctx, &t, "libm.so.6", 0), CAPFFI_EPERM);
    assert_null(lib);

    char attack[PATH_MAX], planted[PATH_MAX];
    pathf(attack, "%s/attacker", f->s.dir);
    assert_int_equal(mkdir(attack, 0755), 0);
    pathf(planted, "%s/libz.so.1", attack);
    copy_file(f->evil, planted, 0644);
    const char *old = getenv("LD_LIBRARY_PATH");
    char *saved = old ? strdup(old) : NULL;
    char value[PATH_MAX];
    pathf(value, "%s%s%s", attack, old ? ":" : "", old ? old : "");
    assert_int_equal(setenv("LD_LIBRARY_PATH", value, 1), 0);
    int rc = capffi_lib_open(&lib, ctx, &t, "libz.so.1", 0);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", capffi_ctx_errmsg(ctx));
    /* A grant given now by the same soname is the attacker's file. */
    capffi_ctx *later = NULL;
    capffi_options o;
    memset(&o, 0, sizeof o);
    o.allow_paths = allow;
    o.n_allow = 1;
    int rc_later = capffi_ctx_new(&later, &o);
    if (saved)
        setenv("LD_LIBRARY_PATH", saved, 1);
    else
        unsetenv("LD_LIBRARY_PATH");
    free(saved);
    if (rc == CAPFFI_OK)
        capffi_lib_close(lib);

    assert_rc(rc, CAPFFI_EPERM);
    if (!strstr(msg, planted))
        fail_msg("the message does not name '%s': %s", planted, msg);
    assert_false(exists(f->mark));
    assert_ok(rc_later);
    capffi_perm_state st;
    assert_ok(capffi_perm_query(&st, later, planted));
    assert_int_equal(st, CAPFFI_PERM_GRANTED);
    assert_ok(capffi_perm_query(&st, later, libz));
    assert_int_equal(st, CAPFFI_PERM_DENIED);
    capffi_ctx_free(later);
    capffi_ctx_free(ctx);
}

/* L8: a deny by soname beats allow-all for every spelling of the file. */
static void
loader_soname_deny_beats_allow_all(void **state)
{
    struct fx *f = *state;
    char libz[PATH_MAX], found[PATH_MAX], sym[PATH_MAX], dots[PATH_MAX];
    soname_file(libz, "libz.so.1");
    assert_ok(capffi_lib_resolve(found, sizeof found, NULL, "libz.so.1"));
    pathf(sym, "%s/libz-link.so", f->s.dir);
    assert_int_equal(symlink(libz, sym), 0);
    pathf(dots, "/../.%s", libz);
    const char *deny[] = { "libz.so.1", NULL };
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, deny);
    capffi_token t = mint(ctx, "all", 0);
    const char *spellings[] = { "libz.so.1", libz, found, sym, dots };
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        capffi_lib *lib = NULL;
        int rc = capffi_lib_open(&lib, ctx, &t, spellings[i], 0);
        if (rc != CAPFFI_EPERM)
            fail_msg("'%s': %s, expected CAPFFI_EPERM (%s)", spellings[i],
                     capffi_err_name(rc), capffi_ctx_errmsg(ctx));
        assert_non_null(strstr(capffi_ctx_errmsg(ctx), "denied"));
        assert_null(lib);
        assert_rc(
            capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, spellings[i]),
            CAPFFI_EPERM);
    }
    /* Another library still opens. */
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, ctx, &t, "libm.so.6", 0));
    capffi_lib_close(lib);
    capffi_ctx_free(ctx);
}

/* ---- L9: no load before the check --------------------------------------- */

static void
loader_refused_library_never_runs(void **state)
{
    struct fx *f = *state;
    /* A token for the fixture only. */
    const char *allow[] = { f->good, NULL };
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_PATHS_ONLY, allow, NULL);
    capffi_token t = mint(ctx, "good", 0);
    capffi_lib *lib = NULL;
    assert_rc(capffi_lib_open(&lib, ctx, &t, f->evil, 0), CAPFFI_EPERM);
    assert_rc(capffi_lib_open(&lib, ctx, &t, f->evil, CAPFFI_LIB_LAZY),
              CAPFFI_EPERM);
    assert_null(lib);
    assert_false(exists(f->mark));
    /* Denied under allow-all, likewise. */
    const char *deny[] = { f->evil, NULL };
    capffi_ctx *dctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, deny);
    capffi_token dt = mint(dctx, "all-but-evil", 0);
    assert_rc(capffi_lib_open(&lib, dctx, &dt, f->evil, 0), CAPFFI_EPERM);
    assert_false(exists(f->mark));
    /* A revoked token that did cover it. */
    const char *allow_evil[] = { f->evil, NULL };
    capffi_ctx *ectx = ctx_with(CAPFFI_OPT_PATHS_ONLY, allow_evil, NULL);
    capffi_token et = mint(ectx, "evil", 0);
    assert_ok(capffi_token_revoke(ectx, &et));
    assert_rc(capffi_lib_open(&lib, ectx, &et, f->evil, 0), CAPFFI_EREVOKED);
    assert_false(exists(f->mark));

    /* The marker does work: a covering token loads it and it appears. */
    capffi_token et2 = mint(ectx, "evil2", 0);
    assert_ok(capffi_lib_open(&lib, ectx, &et2, f->evil, 0));
    assert_true(exists(f->mark));
    capffi_lib_close(lib);
    capffi_ctx_free(ectx);
    capffi_ctx_free(dctx);
    capffi_ctx_free(ctx);
}

/* ---- L10: writable libraries are reported -------------------------------- */

static void
loader_writable_library_is_flagged(void **state)
{
    struct fx *f = *state;
    char ro[PATH_MAX];
    pathf(ro, "%s/ro.so", f->s.dir);
    copy_file(f->fixture, ro, 0444);
    assert_int_equal(chmod(ro, 0444), 0);
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    assert_ok(capffi_audit_record(ctx, 64));
    capffi_token t = mint(ctx, "all", 0);
    capffi_lib *lib;

    uint64_t mark = capffi_audit_mark(ctx);
    assert_ok(capffi_lib_open(&lib, ctx, &t, f->good, 0));
    capffi_lib_close(lib);
    char opened[PATH_MAX + 16], closed[PATH_MAX + 16];
    snprintf(opened, sizeof opened, "lib.open ok %s", f->good);
    snprintf(closed, sizeof closed, "lib.close ok %s", f->good);
    assert_events(ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  opened, closed);
    /* Whether it is writable is in the detail, which no pattern reads. */
    const char *d = open_detail(ctx, f->good);
    assert_non_null(d);
    if (!strstr(d, "writable"))
        fail_msg("the event for a writable library says: %s", d);

    assert_ok(capffi_lib_open(&lib, ctx, &t, ro, 0));
    capffi_lib_close(lib);
    d = open_detail(ctx, ro);
    assert_non_null(d);
    if (geteuid() != 0) {
        if (strstr(d, "writable"))
            fail_msg("the event for a read-only library says: %s", d);
    } else {
        print_message("# running as root: every file is writable, the "
                      "read-only case is not asserted\n");
    }
    capffi_ctx_free(ctx);
}

/* ---- C1: calls into closed libraries ------------------------------------ */

static void
loader_closed_library_calls_fail(void **state)
{
    struct fx *f = *state;
    const char *allow[] = { f->good, NULL };
    capffi_ctx *ctx = NULL;
    capffi_token t;
    int32_t a = 1, b = 2;
    void *av[2] = { &a, &b };
    for (int i = 0; i < 1000; i++) {
        if (i % 100 == 0) {
            capffi_ctx_free(ctx);
            ctx = ctx_with(CAPFFI_OPT_PATHS_ONLY, allow, NULL);
            assert_ok(capffi_token_new(&t, ctx, "good", NULL));
        }
        capffi_lib *lib;
        capffi_fn *fn;
        assert_ok(capffi_lib_open(&lib, ctx, &t, f->good, 0));
        assert_ok(
            capffi_lib_bind(&fn, lib, "fx_add_i32", "(i32, i32) -> i32", 0));
        int rc;
        assert_int_equal(add_i32(fn, i, 1, &rc), i + 1);
        assert_ok(rc);
        capffi_lib_close(lib);
        add_i32(fn, i, 1, &rc);
        assert_rc(rc, CAPFFI_ECLOSED);
        int64_t ret = 0;
        assert_rc(capffi_fn_call_raw(fn, av, &ret), CAPFFI_ECLOSED);
        if (i % 2)
            capffi_fn_free(fn); /* the rest are freed with the context */
    }
    capffi_ctx_free(ctx);

    /* One closed library, called 1000 times. */
    ctx = ctx_with(CAPFFI_OPT_PATHS_ONLY, allow, NULL);
    assert_ok(capffi_token_new(&t, ctx, "good", NULL));
    capffi_lib *lib;
    capffi_fn *fn;
    assert_ok(capffi_lib_open(&lib, ctx, &t, f->good, 0));
    assert_ok(capffi_lib_bind(&fn, lib, "fx_add_i32", "(i32, i32) -> i32", 0));
    capffi_lib_close(lib);
    for (int i = 0; i < 1000; i++) {
        int rc;
        add_i32(fn, i, 1, &rc);
        assert_rc(rc, CAPFFI_ECLOSED);
    }
    capffi_ctx_free(ctx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(loader_dependency_symbol_needs_fn_deps),
        T(loader_dependency_symbol_needs_the_file_in_scope),
        T(loader_libm_does_not_reach_system),
        T(loader_symlink_swap_race),
        T(loader_directory_swap_escapes_no_grant),
        T(loader_directory_swap_escapes_no_deny),
        T(loader_replaced_file_is_refused),
        T(loader_replaced_file_loads_the_new_file),
        T(loader_proc_dev_and_memfd_are_refused),
        T(loader_granted_device_is_still_refused),
        T(loader_ld_library_path_attacker_is_checked),
        T(loader_process_scope_needs_its_own_right),
        T(loader_relative_spellings_and_chdir),
        T(loader_deny_beats_allow_every_spelling),
        T(loader_soname_grant_is_one_file),
        T(loader_soname_deny_beats_allow_all),
        T(loader_refused_library_never_runs),
        T(loader_writable_library_is_flagged),
        T(loader_closed_library_calls_fail),
#undef T
    };
    return RUN_TESTS("loader", tests);
}
