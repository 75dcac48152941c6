/*
 * helpers.c - see helpers.h.
 */
#include "helpers.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

void
pathf(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && n < PATH_MAX);
}

void
write_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
}

void
scratch_make(struct scratch *s)
{
    const char *tmp = getenv("TMPDIR");
    pathf(s->dir, "%s/capffi-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(s->dir));
    /* Resolve the scratch dir itself, so expected canonical paths match. */
    char real[PATH_MAX];
    assert_non_null(realpath(s->dir, real));
    pathf(s->dir, "%s", real);
    pathf(s->lib, "%s/lib", s->dir);
    pathf(s->other, "%s/other", s->dir);
    assert_int_equal(mkdir(s->lib, 0755), 0);
    assert_int_equal(mkdir(s->other, 0755), 0);
    pathf(s->a, "%s/a.so", s->lib);
    pathf(s->b, "%s/b.so", s->lib);
    pathf(s->c, "%s/c.so", s->other);
    write_file(s->a);
    write_file(s->b);
    write_file(s->c);
    pathf(s->link_a, "%s/link-a", s->dir);
    pathf(s->link_c, "%s/link-c", s->dir);
    assert_int_equal(symlink("lib/a.so", s->link_a), 0);
    assert_int_equal(symlink("other/c.so", s->link_c), 0);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
scratch_remove(struct scratch *s)
{
    if (s->dir[0])
        nftw(s->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    s->dir[0] = '\0';
}

capffi_ctx *
ctx_with(uint32_t flags, const char *const *allow, const char *const *deny)
{
    capffi_options o;
    memset(&o, 0, sizeof o);
    o.flags = flags;
    o.allow_paths = allow;
    o.deny_paths = deny;
    while (allow && allow[o.n_allow])
        o.n_allow++;
    while (deny && deny[o.n_deny])
        o.n_deny++;
    capffi_ctx *ctx = NULL;
    int rc = capffi_ctx_new(&ctx, &o);
    if (rc)
        fail_msg("capffi_ctx_new: %s: %s", capffi_err_name(rc),
                 capffi_ctx_errmsg(NULL));
    return ctx;
}

const char *
env_path(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        fail_msg("%s is not set (run through meson test)", name);
    return v;
}

/* Copy src to dst (created or truncated) with the given mode. */
void
copy_file(const char *src, const char *dst, unsigned mode)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    assert_true(in >= 0);
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    assert_int_equal(n, 0);
    close(in);
    assert_int_equal(close(out), 0);
}

bool
lib_loaded(const char *path)
{
    void *h = dlopen(path, RTLD_NOLOAD | RTLD_LAZY);
    if (h)
        dlclose(h);
    return h != NULL;
}

long
open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the listing's own */
}

capffi_token
mint(capffi_ctx *ctx, const char *label, uint32_t rights)
{
    capffi_token t;
    capffi_scope sc;
    memset(&sc, 0, sizeof sc);
    sc.rights = rights;
    assert_ok(capffi_token_new(&t, ctx, label, rights ? &sc : NULL));
    return t;
}

int32_t
add_i32(capffi_fn *fn, int32_t a, int32_t b, int *rc)
{
    capffi_value args[2], r;
    args[0].i64 = a;
    args[1].i64 = b;
    r.i64 = -1;
    *rc = capffi_fn_call(fn, args, &r);
    return (int32_t)r.i64;
}

capffi_fn *
bind_sym(capffi_lib *lib, const char *sym, const char *sig)
{
    capffi_fn *fn = NULL;
    int rc = capffi_lib_bind(&fn, lib, sym, sig, 0);
    if (rc)
        fail_msg("bind %s %s: %s", sym, sig, capffi_err_name(rc));
    return fn;
}

bool
value_same(char kind, const capffi_value *a, const capffi_value *b)
{
    switch (kind) {
    case 'b':
        return a->b == b->b;
    case 'i':
        return a->i64 == b->i64;
    case 'u':
        return a->u64 == b->u64;
    case 'f':
        return a->f32 == b->f32;
    case 'd':
        return a->f64 == b->f64;
    case 's':
        return a->str == b->str;
    default:
        return a->p == b->p;
    }
}

size_t
audited(capffi_ctx *ctx, capffi_op op, int status)
{
    assert_ok(capffi_audit_flush(ctx));
    size_t n = 0;
    capffi_event ev;
    for (size_t i = 0; capffi_audit_get(&ev, ctx, i) == CAPFFI_OK; i++)
        if ((op == CAPFFI_OP_ANY || ev.op == op) &&
            (status == CAPFFI_AUDIT_ANY_STATUS || ev.status == status))
            n += ev.count;
    return n;
}

void
events_match(capffi_ctx *ctx, uint64_t mark, unsigned flags, const char *file,
             int line, ...)
{
    const char *pats[32];
    size_t n = 0;
    va_list ap;
    va_start(ap, line);
    for (const char *p; (p = va_arg(ap, const char *));) {
        assert_true(n < sizeof pats / sizeof pats[0]);
        pats[n++] = p;
    }
    va_end(ap);
    char report[4096];
    int rc = capffi_expect(ctx, mark, flags, pats, n, report, sizeof report);
    if (rc)
        fail_msg("%s:%d: capffi_expect: %s: %s\n%s", file, line,
                 capffi_err_name(rc), capffi_ctx_errmsg(ctx), report);
}

capffi_cb_status
cb_status(capffi_cb *cb)
{
    capffi_cb_status st;
    assert_ok(capffi_cb_take_status(&st, cb));
    return st;
}

unop_fn
cb_unop(const capffi_cb *cb)
{
    unop_fn fn;
    void *code = capffi_cb_code(cb);
    assert_non_null(code);
    memcpy(&fn, &code, sizeof fn);
    return fn;
}

void
lib_fx_open(struct lib_fx *f, uint32_t ctx_flags, const char *dir_env,
            const char *lib_env, const char *label)
{
    const char *allow[] = { dir_env ? env_path(dir_env) : NULL, NULL };
    f->ctx = ctx_with(ctx_flags, allow, NULL);
    assert_ok(capffi_token_new(&f->tok, f->ctx, label, NULL));
    assert_ok(capffi_lib_open(&f->lib, f->ctx, &f->tok, env_path(lib_env), 0));
}

capffi_ctx *
ctx_for_fixtures(uint32_t flags, unsigned workers)
{
    const char *allow[] = { env_path("CAPFFI_FIXTURE_DIR") };
    capffi_options o;
    memset(&o, 0, sizeof o);
    o.flags = flags;
    o.allow_paths = allow;
    o.n_allow = 1;
    o.workers = workers;
    capffi_ctx *ctx = NULL;
    assert_ok(capffi_ctx_new(&ctx, &o));
    return ctx;
}

int
lib_fx_teardown(void **state)
{
    struct lib_fx *f = *state;
    capffi_ctx_free(f->ctx);
    free(f);
    return 0;
}

capffi_fn *
lib_fx_bind(const struct lib_fx *f, const char *sym, const char *sig,
            uint32_t flags)
{
    capffi_fn *fn = NULL;
    int rc = capffi_lib_bind(&fn, f->lib, sym, sig, flags);
    if (rc)
        fail_msg("bind %s %s: %s: %s", sym, sig, capffi_err_name(rc),
                 capffi_ctx_errmsg(f->ctx));
    return fn;
}
