/*
 * test_lib.c - loading libraries and binding their functions and statics
 * (suites: unit, lib).
 *
 * The fixture libraries come from the environment meson sets:
 * CAPFFI_FIXTURE, CAPFFI_FIXDEP, CAPFFI_CTOR and CAPFFI_FIXTURE_DIR.
 */
#include "helpers.h"

#include <dlfcn.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small helpers ------------------------------------------------------ */

/* ---- fixture: a context granting the fixture directory ------------------ */

struct fx {
    struct scratch s;
    capffi_ctx *ctx; /* path grant: the fixture directory */
    capffi_token tok;
    char fixture[PATH_MAX]; /* canonical path of libcapffi_fixture.so */
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    scratch_make(&f->s);
    const char *dir = env_path("CAPFFI_FIXTURE_DIR");
    const char *allow[] = { dir, NULL };
    f->ctx = ctx_with(0, allow, NULL);
    assert_ok(capffi_audit_record(f->ctx, 1024));
    assert_ok(capffi_token_new(&f->tok, f->ctx, "fixture-dir", NULL));
    assert_non_null(realpath(env_path("CAPFFI_FIXTURE"), f->fixture));
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

/* ---- opening ------------------------------------------------------------ */

static void
lib_open_with_path_grant(void **state)
{
    struct fx *f = *state;
    capffi_lib *lib = NULL;
    assert_ok(
        capffi_lib_open(&lib, f->ctx, &f->tok, env_path("CAPFFI_FIXTURE"), 0));
    assert_non_null(lib);
    assert_string_equal(capffi_lib_path(lib), f->fixture);
    capffi_fn *fn;
    assert_ok(capffi_lib_bind(&fn, lib, "fx_add_i32", "(i32, i32) -> i32", 0));
    int rc;
    assert_int_equal(add_i32(fn, 40, 2, &rc), 42);
    assert_ok(rc);
    capffi_fn_free(fn);
    capffi_lib_close(lib);
    /* Lazy binding is accepted as well. */
    assert_ok(
        capffi_lib_open(&lib, f->ctx, &f->tok, f->fixture, CAPFFI_LIB_LAZY));
    assert_string_equal(capffi_lib_path(lib), f->fixture);
    capffi_lib_close(lib);
}

static void
lib_open_rejects_bad_input(void **state)
{
    struct fx *f = *state;
    capffi_lib *lib = (capffi_lib *)&lib; /* not NULL: must be cleared */
    assert_rc(capffi_lib_open(NULL, f->ctx, &f->tok, f->fixture, 0),
              CAPFFI_EINVAL);
    assert_rc(capffi_lib_open(&lib, NULL, &f->tok, f->fixture, 0),
              CAPFFI_EINVAL);
    assert_null(lib);
    assert_rc(capffi_lib_open(&lib, f->ctx, NULL, f->fixture, 0),
              CAPFFI_EINVAL);
    assert_rc(capffi_lib_open(&lib, f->ctx, &f->tok, f->fixture, 0x4u),
              CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "flag"));
    assert_rc(capffi_lib_open(&lib, f->ctx, &f->tok, f->fixture, 0x80000000u),
              CAPFFI_EINVAL);
    assert_rc(capffi_lib_open(&lib, f->ctx, &f->tok, "", 0), CAPFFI_EINVAL);
    assert_null(lib);

    /* Inside the granted directory, but no such file. */
    char missing[PATH_MAX];
    pathf(missing, "%s/libcapffi_no_such_file.so",
          env_path("CAPFFI_FIXTURE_DIR"));
    assert_rc(capffi_lib_open(&lib, f->ctx, &f->tok, missing, 0),
              CAPFFI_ENOTFOUND);
    assert_null(lib);

    /* A granted directory, and a regular file that is no library. */
    const char *allow[] = { f->s.dir, NULL };
    capffi_ctx *ctx = ctx_with(0, allow, NULL);
    capffi_token t;
    assert_ok(capffi_token_new(&t, ctx, "scratch", NULL));
    assert_rc(capffi_lib_open(&lib, ctx, &t, f->s.lib, 0), CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "regular file"));
    assert_null(lib);
    assert_rc(capffi_lib_open(&lib, ctx, &t, f->s.a, 0), CAPFFI_EDLOPEN);
    assert_null(lib);
    const char *msg = capffi_ctx_errmsg(ctx);
    assert_non_null(strstr(msg, f->s.a));
    /* dlerror's text for a one-byte file. */
    assert_non_null(strstr(msg, "file too short"));
    capffi_ctx_free(ctx);
}

static void
lib_soname_resolves_to_a_real_file(void **state)
{
    (void)state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token t = mint(ctx, "all", 0);
    capffi_lib *lib = NULL;
    assert_ok(capffi_lib_open(&lib, ctx, &t, "libz.so.1", 0));
    const char *p = capffi_lib_path(lib);
    assert_true(strncmp(p, "/usr/lib/", 9) == 0 || strncmp(p, "/lib/", 5) == 0);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode)); /* the file, not the soname symlink */
    char real[PATH_MAX];
    assert_non_null(realpath(p, real));
    assert_string_equal(real, p);
    capffi_fn *fn;
    assert_ok(capffi_lib_bind(&fn, lib, "zlibVersion", "() -> cstring", 0));
    capffi_value r;
    assert_ok(capffi_fn_call(fn, NULL, &r));
    assert_true(r.str && r.str[0] == '1');
    capffi_lib_close(lib);
    capffi_ctx_free(ctx);
}

static void
lib_unknown_soname_is_not_found(void **state)
{
    (void)state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token t = mint(ctx, "all", 0);
    capffi_lib *lib = NULL;
    assert_rc(capffi_lib_open(&lib, ctx, &t, "libcapffi-no-such-lib.so.9", 0),
              CAPFFI_ENOTFOUND);
    assert_null(lib);
    assert_non_null(
        strstr(capffi_ctx_errmsg(ctx), "libcapffi-no-such-lib.so.9"));
    capffi_ctx_free(ctx);
}

static void
lib_process_scope_needs_dlopen_global(void **state)
{
    struct fx *f = *state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token narrow =
        mint(ctx, "no-global", CAPFFI_RIGHTS_ALL & ~CAPFFI_RIGHT_DLOPEN_GLOBAL);
    capffi_token all = mint(ctx, "all", 0);
    capffi_lib *lib = NULL;
    assert_rc(capffi_lib_open(&lib, ctx, &narrow, NULL, 0), CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "dlopen_global"));
    assert_null(lib);
    /* A path grant never carries the right. */
    assert_rc(capffi_lib_open(&lib, f->ctx, &f->tok, NULL, 0), CAPFFI_EPERM);
    assert_null(lib);

    assert_ok(capffi_lib_open(&lib, ctx, &all, NULL, 0));
    assert_string_equal(capffi_lib_path(lib), "");
    capffi_fn *fn;
    assert_ok(capffi_lib_bind(&fn, lib, "strlen", "(cstring) -> usize", 0));
    assert_int_equal(capffi_fn_arity(fn), 1);
    capffi_value arg, r;
    arg.str = "capability";
    assert_ok(capffi_fn_call(fn, &arg, &r));
    assert_int_equal(r.u64, 10);
    capffi_lib_close(lib);
    capffi_ctx_free(ctx);
}

static void
lib_global_flag_needs_dlopen_global(void **state)
{
    struct fx *f = *state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token narrow =
        mint(ctx, "no-global", CAPFFI_RIGHTS_ALL & ~CAPFFI_RIGHT_DLOPEN_GLOBAL);
    capffi_token all = mint(ctx, "all", 0);
    capffi_lib *lib = NULL;
    assert_rc(
        capffi_lib_open(&lib, ctx, &narrow, f->fixture, CAPFFI_LIB_GLOBAL),
        CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "dlopen_global"));
    assert_null(lib);
    assert_rc(
        capffi_lib_open(&lib, f->ctx, &f->tok, f->fixture, CAPFFI_LIB_GLOBAL),
        CAPFFI_EPERM);
    assert_null(lib);
    /* Without the flag the narrow token is enough. */
    assert_ok(capffi_lib_open(&lib, ctx, &narrow, f->fixture, 0));
    capffi_lib_close(lib);
    /* A private copy, so the global object is not the shared fixture. */
    char copy[PATH_MAX];
    pathf(copy, "%s/global.so", f->s.dir);
    copy_file(f->fixture, copy, 0644);
    assert_ok(capffi_lib_open(&lib, ctx, &all, copy, CAPFFI_LIB_GLOBAL));
    capffi_fn *fn;
    assert_ok(capffi_lib_bind(&fn, lib, "fx_add_i32", "(i32, i32) -> i32", 0));
    int rc;
    assert_int_equal(add_i32(fn, 1, 2, &rc), 3);
    assert_ok(rc);
    capffi_lib_close(lib);
    capffi_ctx_free(ctx);
}

/* ---- binding ------------------------------------------------------------ */

static void
lib_bind_missing_symbol_is_audited(void **state)
{
    struct fx *f = *state;
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, f->ctx, &f->tok, f->fixture, 0));
    capffi_fn *fn = (capffi_fn *)&fn;
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_rc(capffi_lib_bind(&fn, lib, "fx_no_such_symbol", "() -> void", 0),
              CAPFFI_ENOTFOUND);
    assert_null(fn);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "fx_no_such_symbol"));
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT,
                  "lib.bind ENOTFOUND fx_no_such_symbol");
    /* A static that does not exist, likewise. */
    mark = capffi_audit_mark(f->ctx);
    capffi_value v;
    assert_rc(capffi_lib_static(&v, lib, "fx_no_such_static", "i32"),
              CAPFFI_ENOTFOUND);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT,
                  "lib.bind ENOTFOUND fx_no_such_static");
    capffi_lib_close(lib);
}

static void
lib_bind_optional_missing_symbol_is_silent(void **state)
{
    struct fx *f = *state;
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, f->ctx, &f->tok, f->fixture, 0));
    uint64_t mark = capffi_audit_mark(f->ctx);
    capffi_fn *fn = (capffi_fn *)&fn;
    assert_rc(capffi_lib_bind(&fn, lib, "fx_optional_missing", "() -> void",
                              CAPFFI_FN_OPTIONAL),
              CAPFFI_ENOTFOUND);
    assert_null(fn);
    assert_no_events(f->ctx, mark);
    /* An optional symbol that exists binds, and that is audited. */
    assert_ok(
        capffi_lib_bind(&fn, lib, "fx_nop", "() -> void", CAPFFI_FN_OPTIONAL));
    assert_ok(capffi_fn_call(fn, NULL, NULL));
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, "lib.bind ok fx_nop");
    capffi_fn_free(fn);
    capffi_lib_close(lib);
}

static void
lib_bind_bad_signature(void **state)
{
    struct fx *f = *state;
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, f->ctx, &f->tok, f->fixture, 0));
    static const char *const bad[] = {
        "",
        "(i32, i32 -> i32",
        "(i32, i32) i32",
        "(i32, i32) -> i33",
        "(i32,) -> i32",
        "i32",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        capffi_fn *fn = (capffi_fn *)&fn;
        int rc = capffi_lib_bind(&fn, lib, "fx_add_i32", bad[i], 0);
        if (rc != CAPFFI_ESIG)
            fail_msg("signature '%s': %s", bad[i], capffi_err_name(rc));
        assert_null(fn);
        assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "byte"));
    }
    capffi_fn *fn;
    assert_rc(capffi_lib_bind(&fn, lib, "fx_add_i32", NULL, 0), CAPFFI_EINVAL);
    assert_rc(capffi_lib_bind(&fn, lib, NULL, "() -> void", 0), CAPFFI_EINVAL);
    assert_rc(capffi_lib_bind(NULL, lib, "fx_nop", "() -> void", 0),
              CAPFFI_EINVAL);
    assert_rc(capffi_lib_bind(&fn, NULL, "fx_nop", "() -> void", 0),
              CAPFFI_EINVAL);
    assert_rc(capffi_lib_bind(&fn, lib, "fx_nop", "() -> void", 0x100u),
              CAPFFI_EINVAL);
    capffi_lib_close(lib);
}

static void
lib_static_reads_variables(void **state)
{
    struct fx *f = *state;
    /* A private copy: a fresh object, so fx_counter starts at 7. */
    char copy[PATH_MAX];
    pathf(copy, "%s/static.so", f->s.dir);
    copy_file(f->fixture, copy, 0644);
    const char *allow[] = { copy, NULL };
    capffi_ctx *ctx = ctx_with(0, allow, NULL);
    capffi_token t = mint(ctx, "copy", 0);
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, ctx, &t, copy, 0));
    capffi_value v;
    assert_ok(capffi_lib_static(&v, lib, "fx_counter", "i32"));
    assert_int_equal(v.i64, 7);
    capffi_fn *bump;
    assert_ok(capffi_lib_bind(&bump, lib, "fx_bump", "() -> void", 0));
    assert_ok(capffi_fn_call(bump, NULL, NULL));
    assert_ok(capffi_lib_static(&v, lib, "fx_counter", "i32"));
    assert_int_equal(v.i64, 8);
    assert_ok(capffi_lib_static(&v, lib, "fx_counter", "u32"));
    assert_int_equal(v.u64, 8);
    assert_ok(capffi_lib_static(&v, lib, "fx_pi", "f64"));
    assert_true(v.f64 == 3.141592653589793);
    assert_ok(capffi_lib_static(&v, lib, "fx_name", "cstring"));
    assert_non_null(v.str);
    assert_string_equal(v.str, "fixture");
    const char *name = v.str;
    /* "pointer" is the value stored in the variable, not its address. */
    assert_ok(capffi_lib_static(&v, lib, "fx_name", "pointer"));
    assert_ptr_equal(v.p, name);

    /* Not scalar types, or not types at all. */
    assert_rc(capffi_lib_static(&v, lib, "fx_counter", "{ i32, i32 }"),
              CAPFFI_ESIG);
    assert_rc(capffi_lib_static(&v, lib, "fx_counter", "buffer"), CAPFFI_ESIG);
    assert_rc(capffi_lib_static(&v, lib, "fx_counter", "int"), CAPFFI_ESIG);
    assert_rc(capffi_lib_static(&v, lib, "fx_counter", NULL), CAPFFI_EINVAL);
    assert_rc(capffi_lib_static(NULL, lib, "fx_counter", "i32"), CAPFFI_EINVAL);
    assert_rc(capffi_lib_static(&v, NULL, "fx_counter", "i32"), CAPFFI_EINVAL);
    capffi_lib_close(lib);
    capffi_ctx_free(ctx);
}

/* ---- closing ------------------------------------------------------------ */

/* capffi_lib_symbol: the address dlsym gives, under the rules of binding
 * (the library's own symbols, audited as lib.bind, refused once closed). */
static void
lib_symbol_gives_the_address_under_the_binding_rules(void **state)
{
    struct fx *f = *state;
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, f->ctx, &f->tok, f->fixture, 0));
    void *addr = (void *)&addr;
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_ok(capffi_lib_symbol(&addr, lib, "fx_add_i32"));
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, "lib.bind ok fx_add_i32");
    void *h = dlopen(f->fixture, RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(h);
    assert_ptr_equal(addr, dlsym(h, "fx_add_i32"));
    dlclose(h);

    addr = (void *)&addr;
    assert_rc(capffi_lib_symbol(&addr, lib, "fixdep_secret"), CAPFFI_EPERM);
    assert_null(addr);
    assert_rc(capffi_lib_symbol(&addr, lib, "no_such_symbol"),
              CAPFFI_ENOTFOUND);
    assert_rc(capffi_lib_symbol(NULL, lib, "fx_add_i32"), CAPFFI_EINVAL);
    assert_rc(capffi_lib_symbol(&addr, lib, NULL), CAPFFI_EINVAL);
    assert_rc(capffi_lib_symbol(&addr, NULL, "fx_add_i32"), CAPFFI_EINVAL);
    capffi_lib_close(lib);
    assert_rc(capffi_lib_symbol(&addr, lib, "fx_add_i32"), CAPFFI_ECLOSED);
    assert_null(addr);
}

static void
lib_close_then_use_is_closed(void **state)
{
    struct fx *f = *state;
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, f->ctx, &f->tok, f->fixture, 0));
    capffi_fn *fn;
    assert_ok(capffi_lib_bind(&fn, lib, "fx_add_i32", "(i32, i32) -> i32", 0));
    uint64_t mark = capffi_audit_mark(f->ctx);
    capffi_lib_close(lib);
    char closed[PATH_MAX + 16];
    snprintf(closed, sizeof closed, "lib.close ok %s", f->fixture);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, closed);

    capffi_fn *late = (capffi_fn *)&late;
    assert_rc(capffi_lib_bind(&late, lib, "fx_add_i32", "(i32, i32) -> i32", 0),
              CAPFFI_ECLOSED);
    assert_null(late);
    capffi_value v;
    assert_rc(capffi_lib_static(&v, lib, "fx_counter", "i32"), CAPFFI_ECLOSED);
    int rc;
    add_i32(fn, 1, 2, &rc);
    assert_rc(rc, CAPFFI_ECLOSED);
    int32_t a = 1, b = 2;
    void *av[2] = { &a, &b };
    int64_t ret = 0;
    assert_rc(capffi_fn_call_raw(fn, av, &ret), CAPFFI_ECLOSED);

    /* Closing again and closing NULL do nothing (no second audit event). */
    mark = capffi_audit_mark(f->ctx);
    capffi_lib_close(lib);
    capffi_lib_close(NULL);
    assert_no_events(f->ctx, mark);
    add_i32(fn, 1, 2, &rc);
    assert_rc(rc, CAPFFI_ECLOSED);
    assert_string_equal(capffi_lib_path(lib), f->fixture);
    capffi_fn_free(fn);

    /* The file can be opened again, and works. */
    assert_ok(capffi_lib_open(&lib, f->ctx, &f->tok, f->fixture, 0));
    assert_ok(capffi_lib_bind(&fn, lib, "fx_add_i32", "(i32, i32) -> i32", 0));
    assert_int_equal(add_i32(fn, 20, 22, &rc), 42);
    assert_ok(rc);
    capffi_lib_close(lib);
}

/* ---- unloading ---------------------------------------------------------- */

/* A closed library is unloaded, its descriptor closed and its record let
 * go once nothing refers to it: its functions hold it until they are
 * freed, and the closed handle is still recognised afterwards. */
static void
lib_unloaded_once_nothing_refers_to_it(void **state)
{
    struct fx *f = *state;
    long fds = open_fds();
    assert_false(lib_loaded(f->fixture));
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, f->ctx, &f->tok, f->fixture, 0));
    capffi_fn *fn, *id;
    assert_ok(capffi_lib_bind(&fn, lib, "fx_add_i32", "(i32, i32) -> i32", 0));
    assert_ok(capffi_lib_bind(&id, lib, "fx_id_i32", "(i32) -> i32", 0));
    assert_true(lib_loaded(f->fixture));
    assert_int_equal(open_fds(), fds + 1);

    capffi_lib_close(lib);
    capffi_fn_free(id);
    /* fn still refers to it: loaded, and its calls refused. */
    assert_true(lib_loaded(f->fixture));
    int rc;
    add_i32(fn, 1, 2, &rc);
    assert_rc(rc, CAPFFI_ECLOSED);
    capffi_fn_free(fn);
    assert_false(lib_loaded(f->fixture));
    assert_int_equal(open_fds(), fds);

    /* The dead handle: closing again does nothing, its path stays, and
     * using it is refused as closed. */
    uint64_t mark = capffi_audit_mark(f->ctx);
    capffi_lib_close(lib);
    assert_no_events(f->ctx, mark);
    assert_string_equal(capffi_lib_path(lib), f->fixture);
    capffi_fn *late = (capffi_fn *)&late;
    assert_rc(capffi_lib_bind(&late, lib, "fx_add_i32", "(i32, i32) -> i32", 0),
              CAPFFI_ECLOSED);
    assert_null(late);
    capffi_value v;
    assert_rc(capffi_lib_static(&v, lib, "fx_counter", "i32"), CAPFFI_ECLOSED);
    void *addr;
    assert_rc(capffi_lib_symbol(&addr, lib, "fx_id_i32"), CAPFFI_ECLOSED);
}

/* A freed function is recognised as long as its memory waits for reuse:
 * a second free does nothing and a call is refused, never a use of freed
 * memory (AddressSanitizer would say). */
static void
lib_freed_function_is_recognised(void **state)
{
    struct fx *f = *state;
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, f->ctx, &f->tok, f->fixture, 0));
    capffi_fn *fn;
    assert_ok(capffi_lib_bind(&fn, lib, "fx_add_i32", "(i32, i32) -> i32", 0));
    capffi_fn_free(fn);
    capffi_fn_free(fn);
    int rc;
    add_i32(fn, 1, 2, &rc);
    assert_rc(rc, CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "freed"));
    int32_t a = 1, b = 2;
    void *av[2] = { &a, &b };
    int64_t ret;
    assert_rc(capffi_fn_call_raw(fn, av, &ret), CAPFFI_EINVAL);
    capffi_lib_close(lib);
    capffi_fn_free(fn);
}

/* An instance a call of the library made holds the library too: loaded
 * until the instance is freed, even with the library closed and the
 * function freed (the destructor of an owned one runs at the close). */
static void
lib_instances_hold_their_library(void **state)
{
    struct fx *f = *state;
    assert_ok(capffi_type_define(f->ctx, "RecHead", "{ readonly id: i32 }"));
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, f->ctx, &f->tok, f->fixture, 0));
    capffi_fn *mk, *peek;
    assert_ok(capffi_lib_bind(&mk, lib, "fx_rec_new",
                              "(i32) -> own *RecHead by fx_rec_free", 0));
    assert_ok(
        capffi_lib_bind(&peek, lib, "fx_rec_new", "(i32) -> *RecHead", 0));
    capffi_value a = { .i64 = 4 }, owned, borrowed, v;
    capffi_fn *rel;
    assert_ok(
        capffi_lib_bind(&rel, lib, "fx_rec_free", "(*RecHead) -> void", 0));
    assert_ok(capffi_fn_call(mk, &a, &owned));
    assert_ok(capffi_fn_call(peek, &a, &borrowed));
    /* Native code frees the record it lent; the instance stays, refused
     * from the close on. */
    assert_ok(capffi_fn_call(rel, &borrowed, &v));
    capffi_fn_free(mk);
    capffi_fn_free(peek);
    capffi_fn_free(rel);
    capffi_lib_close(lib);
    assert_true(lib_loaded(f->fixture));
    assert_rc(capffi_obj_get(&v, borrowed.obj, "id"), CAPFFI_ECLOSED);
    capffi_obj_free(owned.obj);
    assert_true(lib_loaded(f->fixture)); /* the borrowed one still holds it */
    capffi_obj_free(borrowed.obj);
    assert_false(lib_loaded(f->fixture));
}

/* Native code may keep a library's code address and call it at any time:
 * once capffi_lib_symbol or a `function` value handed it out, the library
 * stays loaded until the context is freed. */
static void
lib_code_handed_out_stays_loaded(void **state)
{
    struct fx *f = *state;
    capffi_lib *lib;
    void *addr;
    assert_ok(capffi_lib_open(&lib, f->ctx, &f->tok, f->fixture, 0));
    assert_ok(capffi_lib_symbol(&addr, lib, "fx_id_i32"));
    capffi_lib_close(lib);
    assert_true(lib_loaded(f->fixture));
    int32_t (*idf)(int32_t);
    memcpy(&idf, &addr, sizeof idf);
    assert_int_equal(idf(5), 5);

    capffi_ctx *ctx = ctx_for_fixtures(0, 0);
    capffi_token tok = mint(ctx, "fx", CAPFFI_RIGHT_DLOPEN);
    assert_ok(capffi_lib_open(&lib, ctx, &tok, f->fixture, 0));
    capffi_fn *twice, *id;
    assert_ok(capffi_lib_bind(&twice, lib, "fx_call_twice",
                              "(function, i32) -> i32", 0));
    assert_ok(capffi_lib_bind(&id, lib, "fx_id_i32", "(i32) -> i32", 0));
    capffi_value args[2] = { { .p = id }, { .i64 = 9 } }, ret;
    assert_ok(capffi_fn_call(twice, args, &ret));
    assert_int_equal(ret.i64, 9);
    capffi_fn_free(twice);
    capffi_fn_free(id);
    capffi_lib_close(lib);
    capffi_ctx_free(ctx);
    assert_true(lib_loaded(f->fixture)); /* f->ctx's pinned copy */
}

/* Opening and closing a library the process already has loaded leaves the
 * object loaded, so its /proc/self/fd name must stay unique: the
 * descriptor is kept, once per file, not once per opening. */
static void
lib_reopening_a_loaded_library_keeps_descriptors_flat(void **state)
{
    (void)state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token tok = mint(ctx, "libc", CAPFFI_RIGHT_DLOPEN);
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, ctx, &tok, "libc.so.6", 0));
    capffi_lib_close(lib);
    long fds = open_fds();
    for (int i = 0; i < 200; i++) {
        assert_ok(capffi_lib_open(&lib, ctx, &tok, "libc.so.6", 0));
        capffi_fn *fn;
        assert_ok(capffi_lib_bind(&fn, lib, "abs", "(i32) -> i32", 0));
        capffi_value a = { .i64 = -i }, r;
        assert_ok(capffi_fn_call(fn, &a, &r));
        assert_int_equal(r.i64, i);
        capffi_fn_free(fn);
        capffi_lib_close(lib);
    }
    assert_int_equal(open_fds(), fds);
    capffi_ctx_free(ctx);
}

/* ---- revocation --------------------------------------------------------- */

static void
lib_revoked_token_revokes_its_libraries(void **state)
{
    struct fx *f = *state;
    capffi_token t = mint(f->ctx, "to-revoke", 0);
    capffi_lib *lib, *other;
    assert_ok(capffi_lib_open(&lib, f->ctx, &t, f->fixture, 0));
    assert_ok(capffi_lib_open(&other, f->ctx, &f->tok, f->fixture, 0));
    capffi_fn *fn, *ofn;
    assert_ok(capffi_lib_bind(&fn, lib, "fx_add_i32", "(i32, i32) -> i32", 0));
    assert_ok(
        capffi_lib_bind(&ofn, other, "fx_add_i32", "(i32, i32) -> i32", 0));
    int rc;
    assert_int_equal(add_i32(fn, 1, 1, &rc), 2);
    assert_ok(rc);

    assert_ok(capffi_token_revoke(f->ctx, &t));
    add_i32(fn, 1, 1, &rc);
    assert_rc(rc, CAPFFI_EREVOKED);
    int32_t a = 1, b = 2;
    void *av[2] = { &a, &b };
    int64_t ret = 0;
    assert_rc(capffi_fn_call_raw(fn, av, &ret), CAPFFI_EREVOKED);
    capffi_fn *late = (capffi_fn *)&late;
    assert_rc(capffi_lib_bind(&late, lib, "fx_add_i32", "(i32, i32) -> i32", 0),
              CAPFFI_EREVOKED);
    assert_null(late);
    capffi_value v;
    assert_rc(capffi_lib_static(&v, lib, "fx_counter", "i32"), CAPFFI_EREVOKED);
    capffi_lib *again = NULL;
    assert_rc(capffi_lib_open(&again, f->ctx, &t, f->fixture, 0),
              CAPFFI_EREVOKED);
    assert_null(again);

    /* The same file opened through another token is untouched. */
    assert_int_equal(add_i32(ofn, 2, 3, &rc), 5);
    assert_ok(rc);
    capffi_lib_close(lib);
    capffi_lib_close(other);
    capffi_fn_free(fn);
    capffi_fn_free(ofn);
}

static void
lib_revoked_parent_revokes_child_libraries(void **state)
{
    struct fx *f = *state;
    capffi_token parent = mint(f->ctx, "parent", 0);
    capffi_token child, grandchild;
    assert_ok(capffi_token_attenuate(&child, f->ctx, &parent, NULL));
    assert_ok(capffi_token_attenuate(&grandchild, f->ctx, &child, NULL));
    capffi_lib *lc, *lg;
    assert_ok(capffi_lib_open(&lc, f->ctx, &child, f->fixture, 0));
    assert_ok(capffi_lib_open(&lg, f->ctx, &grandchild, f->fixture, 0));
    capffi_fn *fc, *fg;
    assert_ok(capffi_lib_bind(&fc, lc, "fx_add_i32", "(i32, i32) -> i32", 0));
    assert_ok(capffi_lib_bind(&fg, lg, "fx_add_i32", "(i32, i32) -> i32", 0));
    int rc;
    assert_int_equal(add_i32(fg, 3, 4, &rc), 7);
    assert_ok(rc);

    /* Revoking the child takes the grandchild's library with it, not the
     * parent. */
    capffi_token sibling;
    assert_ok(capffi_token_attenuate(&sibling, f->ctx, &parent, NULL));
    capffi_lib *ls;
    assert_ok(capffi_lib_open(&ls, f->ctx, &sibling, f->fixture, 0));
    capffi_fn *fs;
    assert_ok(capffi_lib_bind(&fs, ls, "fx_add_i32", "(i32, i32) -> i32", 0));
    assert_ok(capffi_token_revoke(f->ctx, &child));
    add_i32(fc, 1, 1, &rc);
    assert_rc(rc, CAPFFI_EREVOKED);
    add_i32(fg, 1, 1, &rc);
    assert_rc(rc, CAPFFI_EREVOKED);
    capffi_fn *late;
    assert_rc(capffi_lib_bind(&late, lg, "fx_nop", "() -> void", 0),
              CAPFFI_EREVOKED);
    assert_int_equal(add_i32(fs, 1, 1, &rc), 2);
    assert_ok(rc);

    /* Then the parent: the sibling's library goes too. */
    assert_ok(capffi_token_revoke(f->ctx, &parent));
    add_i32(fs, 1, 1, &rc);
    assert_rc(rc, CAPFFI_EREVOKED);
    assert_rc(capffi_lib_bind(&late, ls, "fx_nop", "() -> void", 0),
              CAPFFI_EREVOKED);
    capffi_lib_close(lc);
    capffi_lib_close(lg);
    capffi_lib_close(ls);
}

/* ---- raw function pointers ---------------------------------------------- */

static void
lib_fn_from_ptr_needs_fnptr(void **state)
{
    struct fx *f = *state;
    /* READ keeps it out of safe mode, where `pointer` is refused. */
    capffi_token nofn =
        mint(f->ctx, "dlopen-read", CAPFFI_RIGHT_DLOPEN | CAPFFI_RIGHT_READ);
    capffi_token fnp = mint(f->ctx, "fnptr", CAPFFI_RIGHT_FNPTR);
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, f->ctx, &nofn, f->fixture, 0));
    capffi_fn *get;
    assert_ok(capffi_lib_bind(&get, lib, "fx_get_adder", "() -> pointer", 0));
    capffi_value r;
    r.p = NULL;
    assert_ok(capffi_fn_call(get, NULL, &r));
    void *adder = r.p;
    assert_non_null(adder);

    capffi_fn *fn = (capffi_fn *)&fn;
    assert_rc(
        capffi_fn_from_ptr(&fn, f->ctx, &nofn, adder, "(i32, i32) -> i32", 0),
        CAPFFI_EPERM);
    assert_null(fn);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "fnptr"));
    assert_rc(
        capffi_fn_from_ptr(&fn, f->ctx, &fnp, NULL, "(i32, i32) -> i32", 0),
        CAPFFI_EINVAL);
    assert_rc(
        capffi_fn_from_ptr(&fn, f->ctx, &fnp, adder, "(i32, i32 -> i32", 0),
        CAPFFI_ESIG);
    assert_null(fn);

    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_ok(
        capffi_fn_from_ptr(&fn, f->ctx, &fnp, adder, "(i32, i32) -> i32", 0));
    char made[64];
    snprintf(made, sizeof made, "fn.from_ptr ok %p", adder);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, made);
    int rc;
    assert_int_equal(add_i32(fn, 19, 23, &rc), 42);
    assert_ok(rc);
    assert_ok(capffi_token_revoke(f->ctx, &fnp));
    add_i32(fn, 19, 23, &rc);
    assert_rc(rc, CAPFFI_EREVOKED);
    int32_t a = 1, b = 2;
    void *av[2] = { &a, &b };
    int64_t ret = 0;
    assert_rc(capffi_fn_call_raw(fn, av, &ret), CAPFFI_EREVOKED);
    /* The library's own functions are another token's: still live. */
    assert_ok(capffi_fn_call(get, NULL, &r));
    capffi_fn_free(fn);
    capffi_fn_free(get);
    capffi_lib_close(lib);
}

/* ---- audit -------------------------------------------------------------- */

static void
lib_successful_open_is_audited(void **state)
{
    struct fx *f = *state;
    capffi_lib *lib;
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_ok(capffi_lib_open(&lib, f->ctx, &f->tok, f->fixture, 0));
    capffi_lib_close(lib);
    /* Another spelling is audited under the canonical path. */
    char spelled[PATH_MAX];
    pathf(spelled, "%s/./../%s/libcapffi_fixture.so",
          env_path("CAPFFI_FIXTURE_DIR"),
          strrchr(env_path("CAPFFI_FIXTURE_DIR"), '/') + 1);
    assert_ok(capffi_lib_open(&lib, f->ctx, &f->tok, spelled, 0));
    assert_string_equal(capffi_lib_path(lib), f->fixture);
    capffi_lib_close(lib);
    char opened[PATH_MAX + 16], closed[PATH_MAX + 16];
    snprintf(opened, sizeof opened, "lib.open ok %s", f->fixture);
    snprintf(closed, sizeof closed, "lib.close ok %s", f->fixture);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  opened, closed, opened, closed);

    capffi_event ev;
    bool seen = false;
    for (size_t i = 0; capffi_audit_get(&ev, f->ctx, i) == CAPFFI_OK; i++)
        if (ev.op == CAPFFI_OP_LIB_OPEN) {
            assert_int_equal(ev.status, 0);
            assert_int_equal(ev.reason, CAPFFI_REASON_NONE);
            assert_int_equal(ev.token_id, f->tok.id);
            assert_string_equal(ev.label, "fixture-dir");
            assert_true(ev.rights & CAPFFI_RIGHT_DLOPEN);
            seen = true;
        }
    assert_true(seen);

    /* A soname and the process scope, in another context. */
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    assert_ok(capffi_audit_record(ctx, 64));
    capffi_token t = mint(ctx, "all", 0);
    mark = capffi_audit_mark(ctx);
    assert_ok(capffi_lib_open(&lib, ctx, &t, "libz.so.1", 0));
    snprintf(opened, sizeof opened, "lib.open ok %s", capffi_lib_path(lib));
    assert_events(ctx, mark, CAPFFI_EXPECT_EXACT, opened);
    capffi_lib_close(lib);
    mark = capffi_audit_mark(ctx);
    assert_ok(capffi_lib_open(&lib, ctx, &t, NULL, 0));
    assert_events(ctx, mark, CAPFFI_EXPECT_EXACT, "lib.open ok (process)");
    capffi_lib_close(lib);
    /* A failure is audited with its status and the name as given. */
    mark = capffi_audit_mark(ctx);
    assert_rc(capffi_lib_open(&lib, ctx, &t, "libcapffi-no-such-lib.so.9", 0),
              CAPFFI_ENOTFOUND);
    assert_events(ctx, mark, CAPFFI_EXPECT_EXACT,
                  "lib.open ENOTFOUND libcapffi-no-such-lib.so.9");
    capffi_ctx_free(ctx);
}

/* ---- describing bound functions (never called here), resolving names -- */

static void
lib_fn_types_describe_the_signature(void **state)
{
    struct fx *f = *state;
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, f->ctx, &f->tok, f->fixture, 0));
    assert_ok(capffi_type_define(f->ctx, "Pair", "{ a: i32, b: i32 }"));
    capffi_fn *fn;
    assert_ok(capffi_lib_bind(
        &fn, lib, "fx_format",
        "(buffer, usize, cstring, Pair, *Pair, { u8, f64 }) -> i32", 0));
    size_t size = 99;
    assert_string_equal(capffi_fn_param_type(fn, 0, &size), "buffer");
    assert_int_equal(size, 8);
    assert_string_equal(capffi_fn_param_type(fn, 1, NULL), "usize");
    assert_string_equal(capffi_fn_param_type(fn, 2, NULL), "cstring");
    assert_string_equal(capffi_fn_param_type(fn, 3, &size), "struct");
    assert_int_equal(size, 8);
    assert_string_equal(capffi_fn_param_type(fn, 4, &size), "object");
    assert_int_equal(size, 8);
    assert_string_equal(capffi_fn_param_class(fn, 4), "Pair");
    assert_null(capffi_fn_param_class(fn, 3));
    assert_null(capffi_fn_param_class(fn, SIZE_MAX));
    assert_string_equal(capffi_fn_param_type(fn, 5, &size), "struct");
    assert_int_equal(size, 16);
    assert_null(capffi_fn_param_type(fn, 6, &size));
    assert_int_equal(size, 0);
    assert_string_equal(capffi_fn_result_type(fn, &size), "i32");
    assert_int_equal(size, 4);

    assert_ok(capffi_lib_bind(&fn, lib, "fx_nop", "() -> void", 0));
    assert_null(capffi_fn_param_type(fn, 0, NULL));
    assert_string_equal(capffi_fn_result_type(fn, NULL), "void");
    assert_ok(capffi_lib_bind(&fn, lib, "fx_big_make",
                              "(i64, i64, i64) -> { i64, i64, i64 }", 0));
    assert_string_equal(capffi_fn_result_type(fn, &size), "struct");
    assert_int_equal(size, 24);
    assert_null(capffi_fn_param_type(NULL, 0, &size));
    assert_null(capffi_fn_result_type(NULL, &size));
    assert_int_equal(size, 0);
}

static void
lib_resolve_finds_what_open_loads(void **state)
{
    struct fx *f = *state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token t = mint(ctx, "all", 0);
    char path[PATH_MAX], canon[PATH_MAX];
    /* The fixture directory is first on LD_LIBRARY_PATH. */
    assert_ok(
        capffi_lib_resolve(path, sizeof path, ctx, "libcapffi_fixture.so"));
    assert_non_null(realpath(path, canon));
    assert_string_equal(canon, f->fixture);
    assert_ok(capffi_lib_resolve(path, sizeof path, NULL, "libz.so.1"));
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, ctx, &t, "libz.so.1", 0));
    assert_non_null(realpath(path, canon));
    assert_string_equal(canon, capffi_lib_path(lib));
    /* A path is copied unchanged; nothing is loaded or audited. */
    assert_ok(capffi_lib_resolve(path, sizeof path, ctx, "./no/such.so"));
    assert_string_equal(path, "./no/such.so");

    assert_rc(capffi_lib_resolve(path, sizeof path, ctx, "libcapffi-none.so.9"),
              CAPFFI_ENOTFOUND);
    assert_string_equal(path, "");
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "libcapffi-none.so.9"));
    assert_rc(capffi_lib_resolve(path, 4, ctx, "libz.so.1"), CAPFFI_EINVAL);
    assert_string_equal(path, "");
    assert_rc(capffi_lib_resolve(path, sizeof path, ctx, "bad\nname"),
              CAPFFI_EINVAL);
    assert_rc(capffi_lib_resolve(path, sizeof path, ctx, ""), CAPFFI_EINVAL);
    assert_rc(capffi_lib_resolve(NULL, sizeof path, ctx, "libz.so.1"),
              CAPFFI_EINVAL);
    assert_rc(capffi_lib_resolve(path, 0, ctx, "libz.so.1"), CAPFFI_EINVAL);
    assert_rc(capffi_lib_resolve(path, sizeof path, ctx, NULL), CAPFFI_EINVAL);
    capffi_ctx_free(ctx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(lib_open_with_path_grant),
        T(lib_symbol_gives_the_address_under_the_binding_rules),
        T(lib_open_rejects_bad_input),
        T(lib_soname_resolves_to_a_real_file),
        T(lib_unknown_soname_is_not_found),
        T(lib_process_scope_needs_dlopen_global),
        T(lib_global_flag_needs_dlopen_global),
        T(lib_bind_missing_symbol_is_audited),
        T(lib_bind_optional_missing_symbol_is_silent),
        T(lib_bind_bad_signature),
        T(lib_static_reads_variables),
        T(lib_close_then_use_is_closed),
        T(lib_unloaded_once_nothing_refers_to_it),
        T(lib_freed_function_is_recognised),
        T(lib_instances_hold_their_library),
        T(lib_code_handed_out_stays_loaded),
        T(lib_reopening_a_loaded_library_keeps_descriptors_flat),
        T(lib_revoked_token_revokes_its_libraries),
        T(lib_revoked_parent_revokes_child_libraries),
        T(lib_fn_from_ptr_needs_fnptr),
        T(lib_successful_open_is_audited),
        T(lib_fn_types_describe_the_signature),
        T(lib_resolve_finds_what_open_loads),
#undef T
    };
    return RUN_TESTS("lib", tests);
}
