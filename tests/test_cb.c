/*
 * test_cb.c - callbacks on the owner thread: real libraries calling back
 * (qsort from libc, sqlite3_exec from libsqlite3), recursion through
 * native code, every type as argument and result, structs, many
 * arguments, default results, handler failures, `function` values,
 * references, bad input, and callbacks failing closed after close or
 * revocation (C2) (suites: unit, security, cb).
 */
#include "helpers.h"

#include <stdbool.h>

#include "fixture.h"

static int
setup(void **state)
{
    struct lib_fx *f = calloc(1, sizeof *f);
    lib_fx_open(f, CAPFFI_OPT_ALLOW_ALL, NULL, "CAPFFI_FIXTURE", "callbacks");
    assert_ok(capffi_audit_record(f->ctx, 1024));
    *state = f;
    return 0;
}

static capffi_fn *
bind(struct lib_fx *f, const char *sym, const char *sig)
{
    return lib_fx_bind(f, sym, sig, 0);
}

static capffi_cb *
cb_make(struct lib_fx *f, const char *sig, capffi_cb_fn fn, void *payload,
        uint32_t flags)
{
    capffi_cb *cb = NULL;
    int rc = capffi_cb_new(&cb, f->ctx, &f->tok, sig, fn, payload, flags);
    if (rc)
        fail_msg("cb_new %s: %s: %s", sig, capffi_err_name(rc),
                 capffi_ctx_errmsg(f->ctx));
    assert_non_null(capffi_cb_code(cb));
    return cb;
}

/* A callable for a callback's code, as native code would call it. */
static capffi_fn *
caller_of(struct lib_fx *f, const capffi_cb *cb, const char *sig)
{
    capffi_fn *fn = NULL;
    int rc =
        capffi_fn_from_ptr(&fn, f->ctx, &f->tok, capffi_cb_code(cb), sig, 0);
    if (rc)
        fail_msg("fn_from_ptr %s: %s", sig, capffi_err_name(rc));
    return fn;
}

/* ---- real libraries ----------------------------------------------------- */

static void
by_value(void *payload, const capffi_value *args, capffi_value *ret)
{
    int *calls = payload;
    const int32_t *a = args[0].p, *b = args[1].p;
    (*calls)++;
    ret->i64 = (*a > *b) - (*a < *b);
}

static int
c_by_value(const void *pa, const void *pb)
{
    const int32_t *a = pa, *b = pb;
    return (*a > *b) - (*a < *b);
}

static void
cb_qsort_from_libc_calls_the_comparator(void **state)
{
    struct lib_fx *f = *state;
    capffi_lib *libc;
    assert_ok(capffi_lib_open(&libc, f->ctx, &f->tok, "libc.so.6", 0));
    capffi_fn *qs =
        bind_sym(libc, "qsort", "(pointer, usize, usize, function) -> void");
    int calls = 0;
    capffi_cb *cmp =
        cb_make(f, "(pointer, pointer) -> i32", by_value, &calls, 0);

    int32_t v[200], want[200];
    uint32_t x = 12345;
    for (size_t i = 0; i < 200; i++) {
        x = x * 1103515245u + 12345u;
        v[i] = want[i] = (int32_t)(x >> 8) - (1 << 22);
    }
    qsort(want, 200, sizeof want[0], c_by_value);
    capffi_value a[4];
    a[0].p = v;
    a[1].u64 = 200;
    a[2].u64 = sizeof v[0];
    a[3].cb = cmp;
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_ok(capffi_fn_call(qs, a, NULL));
    assert_memory_equal(v, want, sizeof v);
    assert_true(calls >= 199); /* at least n - 1 comparisons */
    assert_int_equal(cb_status(cmp).first, CAPFFI_OK);
    /* Successful invocations are the data plane: not audited. */
    assert_no_events(f->ctx, mark);
    capffi_lib_close(libc);
}

struct rows {
    int n;
    int fail_at; /* fail the handler on this row (1-based); 0: never */
    char text[256];
};

static void
row(void *payload, const capffi_value *args, capffi_value *ret)
{
    struct rows *r = payload;
    int32_t ncol = (int32_t)args[1].i64;
    char **vals = args[2].p, **cols = args[3].p;
    r->n++;
    if (r->n == r->fail_at) {
        capffi_cb_fail("row rejected by the host");
        return;
    }
    for (int32_t i = 0; i < ncol; i++) {
        size_t len = strlen(r->text);
        snprintf(r->text + len, sizeof r->text - len, "%s=%s;", cols[i],
                 vals[i] ? vals[i] : "NULL");
    }
    ret->i64 = 0;
}

static void
cb_sqlite3_exec_delivers_rows(void **state)
{
    struct lib_fx *f = *state;
    capffi_lib *sq;
    assert_ok(capffi_lib_open(&sq, f->ctx, &f->tok, "libsqlite3.so.0", 0));
    capffi_fn *open = bind_sym(sq, "sqlite3_open", "(cstring, pointer) -> i32");
    capffi_fn *exec =
        bind_sym(sq, "sqlite3_exec",
                 "(pointer, cstring, function, pointer, pointer) -> i32");
    capffi_fn *close = bind_sym(sq, "sqlite3_close", "(pointer) -> i32");

    void *db = NULL;
    capffi_value a[5], r;
    a[0].str = ":memory:";
    a[1].p = &db;
    assert_ok(capffi_fn_call(open, a, &r));
    assert_int_equal(r.i64, 0);
    assert_non_null(db);

    /* The default result 1 makes sqlite3_exec abort when the handler
     * fails. */
    struct rows rows;
    memset(&rows, 0, sizeof rows);
    capffi_value abort_result;
    abort_result.i64 = 1;
    capffi_cb_options o;
    memset(&o, 0, sizeof o);
    o.result = &abort_result;
    capffi_cb *cb = NULL;
    assert_ok(capffi_cb_new_opts(&cb, f->ctx, &f->tok,
                                 "(pointer, i32, pointer, pointer) -> i32", row,
                                 &rows, &o));

    a[0].p = db;
    a[1].str = "create table t(k integer, v text);"
               "insert into t values (1, 'one'), (2, 'two'), (3, NULL);"
               "select k, v from t order by k;";
    a[2].cb = cb;
    a[3].p = NULL;
    a[4].p = NULL;
    assert_ok(capffi_fn_call(exec, a, &r));
    assert_int_equal(r.i64, 0); /* SQLITE_OK */
    assert_int_equal(rows.n, 3);
    assert_string_equal(rows.text, "k=1;v=one;k=2;v=two;k=3;v=NULL;");
    assert_int_equal(cb_status(cb).first, CAPFFI_OK);

    /* The handler fails on the second row: sqlite3_exec sees 1 and
     * stops with SQLITE_ABORT; the host learns why from the status. */
    memset(&rows, 0, sizeof rows);
    rows.fail_at = 2;
    uint64_t mark = capffi_audit_mark(f->ctx);
    a[1].str = "select k, v from t order by k;";
    assert_ok(capffi_fn_call(exec, a, &r));
    assert_int_equal(r.i64, 4); /* SQLITE_ABORT */
    assert_int_equal(rows.n, 2);
    capffi_cb_status st = cb_status(cb);
    assert_int_equal(st.first, CAPFFI_ECALLBACK);
    assert_int_equal(st.failures, 1);
    assert_string_equal(st.detail, "row rejected by the host");
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, "cb.invoke ECALLBACK");
    assert_int_equal(audited(f->ctx, CAPFFI_OP_CB_INVOKE, CAPFFI_ECALLBACK), 1);

    a[0].p = db;
    assert_ok(capffi_fn_call(close, a, &r));
    assert_int_equal(r.i64, 0);
    capffi_lib_close(sq);
}

/* ---- recursion ---------------------------------------------------------- */

struct rec {
    capffi_fn *apply; /* fx_apply_i32 */
    capffi_cb *self;
    int depth, max_depth;
};

/* f(x) = x + f(x - 1) through native code: handler -> fx_apply_i32 ->
 * handler -> ... */
static void
recurse(void *payload, const capffi_value *args, capffi_value *ret)
{
    struct rec *r = payload;
    int32_t x = (int32_t)args[0].i64;
    if (++r->depth > r->max_depth)
        r->max_depth = r->depth;
    if (x == 0) {
        ret->i64 = 0;
    } else {
        capffi_value a[2], out;
        a[0].cb = r->self;
        a[1].i64 = x - 1;
        if (capffi_fn_call(r->apply, a, &out) != CAPFFI_OK)
            capffi_cb_fail("inner call failed");
        ret->i64 = x + out.i64;
    }
    r->depth--;
}

static void
cb_native_callback_native_recursion(void **state)
{
    struct lib_fx *f = *state;
    struct rec r;
    memset(&r, 0, sizeof r);
    r.apply = bind(f, "fx_apply_i32", "(function, i32) -> i32");
    r.self = cb_make(f, "(i32) -> i32", recurse, &r, 0);
    capffi_value a[2], out;
    a[0].cb = r.self;
    a[1].i64 = 60;
    assert_ok(capffi_fn_call(r.apply, a, &out));
    assert_int_equal(out.i64, 60 * 61 / 2);
    assert_int_equal(r.max_depth, 61);
    assert_int_equal(r.depth, 0);
    assert_int_equal(cb_status(r.self).failures, 0);
}

/* ---- every type --------------------------------------------------------- */

static void
identity(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    *ret = args[0];
}

static void
nothing(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    (void)args;
    (void)ret;
}

/* Each type goes native -> callback -> native unchanged: the handler
 * receives it widened as capffi_fn_call returns it, and its result is
 * narrowed back as a native caller expects. */
static void
cb_every_scalar_round_trips(void **state)
{
    struct lib_fx *f = *state;
    int marker;
    struct {
        const char *sig;
        capffi_value in;
        char member;
    } cases[] = {
        { "(bool) -> bool", { .b = true }, 'b' },
        { "(i8) -> i8", { .i64 = INT8_MIN }, 'i' },
        { "(u8) -> u8", { .u64 = UINT8_MAX }, 'u' },
        { "(i16) -> i16", { .i64 = INT16_MIN }, 'i' },
        { "(u16) -> u16", { .u64 = UINT16_MAX }, 'u' },
        { "(i32) -> i32", { .i64 = INT32_MIN }, 'i' },
        { "(u32) -> u32", { .u64 = UINT32_MAX }, 'u' },
        { "(i64) -> i64", { .i64 = INT64_MIN }, 'i' },
        { "(u64) -> u64", { .u64 = UINT64_MAX }, 'u' },
        { "(isize) -> isize", { .i64 = -(1LL << 40) }, 'i' },
        { "(usize) -> usize", { .u64 = SIZE_MAX - 3 }, 'u' },
        { "(f32) -> f32", { .f32 = -1.25f }, 'f' },
        { "(f64) -> f64", { .f64 = 1e300 }, 'd' },
        { "(pointer) -> pointer", { .p = &marker }, 'p' },
        { "(cstring) -> cstring", { .str = "text" }, 's' },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        capffi_cb *cb = cb_make(f, cases[i].sig, identity, NULL, 0);
        capffi_fn *fn = caller_of(f, cb, cases[i].sig);
        capffi_value out;
        memset(&out, 0x5a, sizeof out);
        assert_ok(capffi_fn_call(fn, &cases[i].in, &out));
        if (!value_same(cases[i].member, &out, &cases[i].in))
            fail_msg("'%s' did not come back unchanged", cases[i].sig);
        assert_int_equal(cb_status(cb).failures, 0);
        capffi_fn_free(fn);
        capffi_cb_close(cb);
    }
}

/* Small-integer arguments arrive sign- or zero-extended. */
static void
widen(void *payload, const capffi_value *args, capffi_value *ret)
{
    capffi_value *seen = payload;
    seen[0] = args[0];
    seen[1] = args[1];
    ret->b = true;
}

static void
cb_small_arguments_are_extended(void **state)
{
    struct lib_fx *f = *state;
    capffi_value seen[2];
    capffi_cb *cb = cb_make(f, "(i8, u16) -> bool", widen, seen, 0);
    bool (*code)(int8_t, uint16_t);
    void *p = capffi_cb_code(cb);
    memcpy(&code, &p, sizeof code);
    assert_true(code(-1, 65535));
    assert_int_equal(seen[0].i64, -1);
    assert_int_equal(seen[1].u64, 65535);
}

/* ---- results ------------------------------------------------------------ */

static void
give_300(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    (void)args;
    ret->i64 = 300;
}

static void
cb_small_results_are_range_checked(void **state)
{
    struct lib_fx *f = *state;
    capffi_cb *strict = cb_make(f, "() -> u8", give_300, NULL, 0);
    capffi_cb *wrap = cb_make(f, "() -> u8", give_300, NULL, CAPFFI_CB_WRAP);
    capffi_fn *s = caller_of(f, strict, "() -> u32");
    capffi_fn *w = caller_of(f, wrap, "() -> u32");
    uint64_t mark = capffi_audit_mark(f->ctx);
    capffi_value r;
    assert_ok(capffi_fn_call(s, NULL, &r));
    assert_int_equal(r.u64, 0); /* the default: zero */
    capffi_cb_status st = cb_status(strict);
    assert_int_equal(st.first, CAPFFI_ERANGE);
    assert_non_null(strstr(st.detail, "300"));
    assert_ok(capffi_fn_call(w, NULL, &r));
    assert_int_equal(r.u64, 300 - 256);
    assert_int_equal(cb_status(wrap).failures, 0);
    /* One refusal, the strict one's; the wrapping one succeeded. */
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT,
                  "cb.invoke ERANGE () -> u8");
    assert_int_equal(audited(f->ctx, CAPFFI_OP_CB_INVOKE, CAPFFI_ERANGE), 1);
}

static void
fail_always(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    (void)args;
    ret->i64 = 12345; /* ignored: the handler fails */
    capffi_cb_fail(NULL);
}

static void
cb_default_results(void **state)
{
    struct lib_fx *f = *state;
    capffi_cb_options o;
    memset(&o, 0, sizeof o);
    capffi_value d;
    capffi_cb *cb;
    capffi_value r;

    /* A scalar. */
    d.i64 = -7;
    o.result = &d;
    assert_ok(capffi_cb_new_opts(&cb, f->ctx, &f->tok, "(i32) -> i32",
                                 fail_always, NULL, &o));
    unop_fn code = cb_unop(cb);
    assert_int_equal(code(1), -7);
    capffi_cb_status st = cb_status(cb);
    assert_int_equal(st.first, CAPFFI_ECALLBACK);
    assert_string_equal(st.detail, "the handler failed");

    /* A cstring: copied at creation. */
    char text[8] = "dflt";
    d.str = text;
    assert_ok(capffi_cb_new_opts(&cb, f->ctx, &f->tok, "() -> cstring",
                                 fail_always, NULL, &o));
    text[0] = 'X';
    capffi_fn *fn = caller_of(f, cb, "() -> cstring");
    assert_ok(capffi_fn_call(fn, NULL, &r));
    assert_string_equal(r.str, "dflt");

    /* A struct. */
    struct fx_big big = { 1, 2, 3 }, got;
    d.agg.ptr = &big;
    d.agg.len = sizeof big;
    assert_ok(capffi_cb_new_opts(&cb, f->ctx, &f->tok,
                                 "(i64) -> { i64, i64, i64 }", fail_always,
                                 NULL, &o));
    big.a = 100; /* copied at creation */
    capffi_fn *via =
        bind(f, "fx_make_big_via", "(function, i64) -> { i64, i64, i64 }");
    capffi_value a[2];
    a[0].cb = cb;
    a[1].i64 = 5;
    r.agg.ptr = &got;
    r.agg.len = sizeof got;
    assert_ok(capffi_fn_call(via, a, &r));
    assert_true(got.a == 1 && got.b == 2 && got.c == 3);

    /* A function: a handle, passed on as its code. */
    capffi_cb *inner = cb_make(f, "(i32) -> i32", identity, NULL, 0);
    d.cb = inner;
    assert_ok(capffi_cb_new_opts(&cb, f->ctx, &f->tok, "() -> function",
                                 fail_always, NULL, &o));
    fn = caller_of(f, cb, "() -> function");
    assert_ok(capffi_fn_call(fn, NULL, &r));
    assert_ptr_equal(r.p, capffi_cb_code(inner));

    /* Defaults that do not fit are refused at creation. */
    d.agg.ptr = &big;
    d.agg.len = sizeof big - 8;
    assert_rc(capffi_cb_new_opts(&cb, f->ctx, &f->tok,
                                 "() -> { i64, i64, i64 }", fail_always, NULL,
                                 &o),
              CAPFFI_ETYPE);
    assert_null(cb);
    d.i64 = 300;
    assert_rc(capffi_cb_new_opts(&cb, f->ctx, &f->tok, "() -> u8", fail_always,
                                 NULL, &o),
              CAPFFI_ERANGE);
    o.flags = CAPFFI_CB_WRAP;
    assert_ok(capffi_cb_new_opts(&cb, f->ctx, &f->tok, "() -> u8", fail_always,
                                 NULL, &o));
    fn = caller_of(f, cb, "() -> u8");
    assert_ok(capffi_fn_call(fn, NULL, &r));
    assert_int_equal(r.u64, 44);
    o.flags = 0;
    d.p = capffi_cb_code(inner); /* a raw address, not a handle */
    assert_rc(capffi_cb_new_opts(&cb, f->ctx, &f->tok, "() -> function",
                                 fail_always, NULL, &o),
              CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "capffi_fn_from_ptr"));
}

/* ---- structs and many arguments ----------------------------------------- */

static void
pair_scale(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    struct fx_pair_i32 p;
    if (args[0].agg.len != sizeof p || ret->agg.len != sizeof p) {
        capffi_cb_fail("wrong struct sizes");
        return;
    }
    memcpy(&p, args[0].agg.ptr, sizeof p);
    int32_t k = (int32_t)args[1].i64;
    p.a *= k;
    p.b *= k;
    memcpy(ret->agg.ptr, &p, sizeof p); /* into the memory given */
}

static void
big_sum(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    struct fx_big v;
    if (args[0].agg.len != sizeof v) {
        capffi_cb_fail("wrong struct size");
        return;
    }
    memcpy(&v, args[0].agg.ptr, sizeof v);
    ret->i64 = v.a + v.b + v.c;
}

static void
big_of(void *payload, const capffi_value *args, capffi_value *ret)
{
    struct fx_big *mine = payload;
    mine->a = args[0].i64;
    mine->b = args[0].i64 + 1;
    mine->c = args[0].i64 + 2;
    ret->agg.ptr = mine; /* or point at other bytes of the right size */
    ret->agg.len = sizeof *mine;
}

static void
mixed_swap(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    struct fx_mixed m, r;
    memcpy(&m, args[0].agg.ptr, sizeof m);
    r.i = (int64_t)m.d;
    r.d = (double)m.i;
    memcpy(ret->agg.ptr, &r, sizeof r);
}

static void
bad_struct(void *payload, const capffi_value *args, capffi_value *ret)
{
    static struct fx_pair_i32 small;
    (void)payload;
    (void)args;
    ret->agg.ptr = &small;
    ret->agg.len = sizeof small; /* 8 bytes where 24 are declared */
}

static void
cb_structs_by_value(void **state)
{
    struct lib_fx *f = *state;
    capffi_value a[3], r;

    capffi_cb *scale =
        cb_make(f, "({ i32, i32 }, i32) -> { i32, i32 }", pair_scale, NULL, 0);
    capffi_fn *apply_pair = bind(
        f, "fx_apply_pair", "(function, { i32, i32 }, i32) -> { i32, i32 }");
    struct fx_pair_i32 p = { 3, -4 }, q;
    a[0].cb = scale;
    a[1].agg.ptr = &p;
    a[1].agg.len = sizeof p;
    a[2].i64 = 5;
    r.agg.ptr = &q;
    r.agg.len = sizeof q;
    assert_ok(capffi_fn_call(apply_pair, a, &r));
    assert_int_equal(q.a, 15);
    assert_int_equal(q.b, -20);

    /* 24 bytes (MEMORY class) as an argument and as a result. */
    capffi_cb *sum = cb_make(f, "({ i64, i64, i64 }) -> i64", big_sum, NULL, 0);
    capffi_fn *apply_big =
        bind(f, "fx_apply_big", "(function, { i64, i64, i64 }) -> i64");
    struct fx_big v = { 1, 20, 300 };
    a[0].cb = sum;
    a[1].agg.ptr = &v;
    a[1].agg.len = sizeof v;
    assert_ok(capffi_fn_call(apply_big, a, &r));
    assert_int_equal(r.i64, 321);

    struct fx_big mine, got;
    capffi_cb *make =
        cb_make(f, "(i64) -> { i64, i64, i64 }", big_of, &mine, 0);
    capffi_fn *via =
        bind(f, "fx_make_big_via", "(function, i64) -> { i64, i64, i64 }");
    a[0].cb = make;
    a[1].i64 = 40;
    r.agg.ptr = &got;
    r.agg.len = sizeof got;
    assert_ok(capffi_fn_call(via, a, &r));
    assert_true(got.a == 40 && got.b == 41 && got.c == 42);

    /* INTEGER + SSE in one struct. */
    capffi_cb *swap =
        cb_make(f, "({ i64, f64 }) -> { i64, f64 }", mixed_swap, NULL, 0);
    capffi_fn *apply_mixed =
        bind(f, "fx_apply_mixed", "(function, { i64, f64 }) -> { i64, f64 }");
    struct fx_mixed m = { 7, -2.0 }, n;
    a[0].cb = swap;
    a[1].agg.ptr = &m;
    a[1].agg.len = sizeof m;
    r.agg.ptr = &n;
    r.agg.len = sizeof n;
    assert_ok(capffi_fn_call(apply_mixed, a, &r));
    assert_int_equal(n.i, -2);
    assert_true(n.d == 7.0);

    /* A struct result of the wrong size fails closed: zeros. */
    capffi_cb *bad =
        cb_make(f, "(i64) -> { i64, i64, i64 }", bad_struct, NULL, 0);
    a[0].cb = bad;
    a[1].i64 = 1;
    memset(&got, 0xff, sizeof got);
    r.agg.ptr = &got;
    r.agg.len = sizeof got;
    assert_ok(capffi_fn_call(via, a, &r));
    assert_true(got.a == 0 && got.b == 0 && got.c == 0);
    assert_int_equal(cb_status(bad).first, CAPFFI_ETYPE);
}

static void
nine(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    struct fx_mixed g;
    memcpy(&g, args[6].agg.ptr, sizeof g);
    bool same =
        args[0].i64 == FX9_A && args[1].u64 == FX9_B && args[2].i64 == FX9_C &&
        args[3].i64 == FX9_D && args[4].f32 == FX9_E && args[5].f64 == FX9_F &&
        args[6].agg.len == sizeof g && g.i == FX9_G_I && g.d == FX9_G_D &&
        args[7].b == FX9_H && strcmp(args[8].str, FX9_I) == 0;
    if (!same)
        capffi_cb_fail("an argument arrived changed");
    ret->f64 = 9.0;
}

static void
cb_nine_mixed_arguments(void **state)
{
    struct lib_fx *f = *state;
    capffi_cb *cb = cb_make(
        f, "(i8, u16, i32, i64, f32, f64, { i64, f64 }, bool, cstring) -> f64",
        nine, NULL, 0);
    capffi_fn *call9 = bind(f, "fx_call9", "(function) -> f64");
    capffi_value a, r;
    a.cb = cb;
    assert_ok(capffi_fn_call(call9, &a, &r));
    capffi_cb_status st = cb_status(cb);
    if (st.first)
        fail_msg("%s", st.detail);
    assert_true(r.f64 == 9.0);
}

/* ---- failures ----------------------------------------------------------- */

struct nest {
    capffi_fn *apply;
    capffi_cb *inner;
    int inner_rc;
};

static void
fail_inner(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    (void)args;
    ret->i64 = 1;
    capffi_cb_fail("inner");
}

static void
outer(void *payload, const capffi_value *args, capffi_value *ret)
{
    struct nest *n = payload;
    capffi_value a[2], r;
    a[0].cb = n->inner;
    a[1].i64 = args[0].i64;
    n->inner_rc = capffi_fn_call(n->apply, a, &r);
    ret->i64 = r.i64 + 100; /* the inner default (0) + 100 */
}

static void
cb_handler_failure_is_reported_not_thrown(void **state)
{
    struct lib_fx *f = *state;
    /* Outside a handler there is nothing to fail. */
    assert_rc(capffi_cb_fail("nothing"), CAPFFI_EINVAL);

    struct nest n;
    n.apply = bind(f, "fx_apply_i32", "(function, i32) -> i32");
    n.inner = cb_make(f, "(i32) -> i32", fail_inner, NULL, 0);
    capffi_cb *out = cb_make(f, "(i32) -> i32", outer, &n, 0);
    capffi_value a[2], r;
    a[0].cb = out;
    a[1].i64 = 3;
    assert_ok(capffi_fn_call(n.apply, a, &r));
    assert_ok(n.inner_rc);
    /* The inner failure does not leak into the outer invocation. */
    assert_int_equal(r.i64, 100);
    assert_int_equal(cb_status(out).failures, 0);
    capffi_cb_status st = cb_status(n.inner);
    assert_int_equal(st.first, CAPFFI_ECALLBACK);
    assert_int_equal(st.failures, 1);
    assert_string_equal(st.detail, "inner");
    /* Taking the status reset it. */
    st = cb_status(n.inner);
    assert_int_equal(st.first, CAPFFI_OK);
    assert_int_equal(st.failures, 0);
    assert_string_equal(st.detail, "");

    capffi_event ev;
    bool seen = false;
    for (size_t i = 0; capffi_audit_get(&ev, f->ctx, i) == CAPFFI_OK; i++)
        if (ev.op == CAPFFI_OP_CB_INVOKE) {
            assert_int_equal(ev.status, CAPFFI_ECALLBACK);
            assert_int_equal(ev.reason, CAPFFI_REASON_FAILED);
            assert_true(ev.token_id == f->tok.id);
            assert_string_equal(ev.detail, "inner");
            assert_string_equal(ev.target, "(i32) -> i32"); /* its sig */
            seen = true;
        }
    assert_true(seen);
}

/* ---- function values ---------------------------------------------------- */

static void
cb_function_parameters_take_handles(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *twice = bind(f, "fx_call_twice", "(function, i32) -> i32");
    capffi_fn *idp = bind(f, "fx_id_ptr", "(function) -> function");
    capffi_fn *idi = bind(f, "fx_id_i32", "(i32) -> i32");
    capffi_cb *cb = cb_make(f, "(i32) -> i32", identity, NULL, 0);
    capffi_value a[2], r;

    /* A callback, a bound function and NULL pass their code. */
    a[0].cb = cb;
    a[1].i64 = 5;
    assert_ok(capffi_fn_call(twice, a, &r));
    assert_int_equal(r.i64, 5);
    a[0].fn = idi;
    assert_ok(capffi_fn_call(twice, a, &r));
    assert_int_equal(r.i64, 5);
    a[0].p = NULL;
    assert_ok(capffi_fn_call(idp, a, &r));
    assert_null(r.p);
    a[0].cb = cb;
    assert_ok(capffi_fn_call(idp, a, &r));
    assert_ptr_equal(r.p, capffi_cb_code(cb));

    /* A raw address is not a function value: capffi_fn_from_ptr makes
     * one, with CAPFFI_RIGHT_FNPTR. */
    a[0].p = capffi_cb_code(cb);
    assert_rc(capffi_fn_call(twice, a, &r), CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "argument 1"));
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "capffi_fn_from_ptr"));
    capffi_fn *raw = caller_of(f, cb, "(i32) -> i32");
    a[0].fn = raw;
    assert_ok(capffi_fn_call(twice, a, &r));
    assert_int_equal(r.i64, 5);

    /* Another context's callback is refused. */
    capffi_ctx *other = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token ot = mint(other, "other", CAPFFI_RIGHT_CALLBACK);
    capffi_cb *foreign = NULL;
    assert_ok(
        capffi_cb_new(&foreign, other, &ot, "(i32) -> i32", identity, NULL, 0));
    a[0].cb = foreign;
    assert_rc(capffi_fn_call(twice, a, &r), CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "another context"));
    capffi_ctx_free(other);

    /* A closed callback and a revoked function are refused. */
    capffi_cb *gone = cb_make(f, "(i32) -> i32", identity, NULL, 0);
    capffi_cb_close(gone);
    a[0].cb = gone;
    assert_rc(capffi_fn_call(twice, a, &r), CAPFFI_ECLOSED);
    capffi_token fnp = mint(f->ctx, "fnptr", CAPFFI_RIGHT_FNPTR);
    capffi_fn *revoked = NULL;
    assert_ok(capffi_fn_from_ptr(&revoked, f->ctx, &fnp, capffi_cb_code(cb),
                                 "(i32) -> i32", 0));
    assert_ok(capffi_token_revoke(f->ctx, &fnp));
    a[0].fn = revoked;
    assert_rc(capffi_fn_call(twice, a, &r), CAPFFI_EREVOKED);
}

/* ---- references --------------------------------------------------------- */

static void
cb_ref_unref_and_keepalive(void **state)
{
    struct lib_fx *f = *state;
    capffi_cb *plain = cb_make(f, "() -> void", nothing, NULL, 0);
    capffi_cb *ts =
        cb_make(f, "() -> void", nothing, NULL, CAPFFI_CB_THREADSAFE);
    uint32_t n = 99;
    assert_rc(capffi_cb_ref(&n, plain), CAPFFI_EINVAL);
    assert_int_equal(n, 0);
    assert_int_equal(capffi_ctx_keepalive(f->ctx), 0);
    assert_ok(capffi_cb_ref(&n, ts));
    assert_int_equal(n, 1);
    assert_int_equal(capffi_ctx_keepalive(f->ctx), 1);
    assert_ok(capffi_cb_ref(&n, ts));
    assert_int_equal(n, 2);
    assert_int_equal(capffi_ctx_keepalive(f->ctx), 1);
    assert_ok(capffi_cb_unref(&n, ts));
    assert_ok(capffi_cb_unref(&n, ts));
    assert_int_equal(n, 0);
    assert_int_equal(capffi_ctx_keepalive(f->ctx), 0);
    assert_ok(capffi_cb_unref(&n, ts)); /* stays 0 */
    assert_int_equal(n, 0);
    assert_ok(capffi_cb_ref(NULL, ts));
    assert_int_equal(capffi_ctx_keepalive(f->ctx), 1);
    capffi_cb_close(ts);
    assert_int_equal(capffi_ctx_keepalive(f->ctx), 0);
    assert_rc(capffi_cb_ref(&n, ts), CAPFFI_ECLOSED);

    /* Revoking the token ends what it kept alive. */
    capffi_token t = mint(f->ctx, "kept", CAPFFI_RIGHT_CALLBACK);
    capffi_cb *kept = NULL;
    assert_ok(capffi_cb_new(&kept, f->ctx, &t, "() -> void", nothing, NULL,
                            CAPFFI_CB_THREADSAFE));
    assert_ok(capffi_cb_ref(&n, kept));
    assert_int_equal(capffi_ctx_keepalive(f->ctx), 1);
    assert_ok(capffi_token_revoke(f->ctx, &t));
    assert_int_equal(capffi_ctx_keepalive(f->ctx), 0);
    assert_rc(capffi_cb_ref(&n, kept), CAPFFI_EREVOKED);
    /* The revocation woke the loop, so a waiting host re-checks. */
    assert_ok(capffi_ctx_poll(f->ctx, 0));
    assert_rc(capffi_ctx_poll(f->ctx, 0), CAPFFI_ETIMEDOUT);

    assert_rc(capffi_cb_ref(NULL, NULL), CAPFFI_EINVAL);
    assert_rc(capffi_cb_unref(NULL, NULL), CAPFFI_EINVAL);
    assert_int_equal(capffi_ctx_keepalive(NULL), 0);
}

/* ---- bad input ---------------------------------------------------------- */

static void
cb_bad_input_is_refused_and_audited(void **state)
{
    struct lib_fx *f = *state;
    capffi_cb *cb = (capffi_cb *)&cb;
    capffi_cb_options o;
    memset(&o, 0, sizeof o);

    assert_rc(capffi_cb_new(&cb, NULL, &f->tok, "() -> void", nothing, NULL, 0),
              CAPFFI_EINVAL);
    assert_null(cb);
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_rc(capffi_cb_new(&cb, f->ctx, &f->tok, "() -> void", NULL, NULL, 0),
              CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "handler"));
    assert_rc(capffi_cb_new(&cb, f->ctx, &f->tok, NULL, nothing, NULL, 0),
              CAPFFI_EINVAL);
    assert_rc(
        capffi_cb_new(NULL, f->ctx, &f->tok, "() -> void", nothing, NULL, 0),
        CAPFFI_EINVAL);
    assert_rc(capffi_cb_new(&cb, f->ctx, &f->tok, "(i32, ...: i32) -> void",
                            nothing, NULL, 0),
              CAPFFI_ESIG);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "variadic"));
    assert_rc(
        capffi_cb_new(&cb, f->ctx, &f->tok, "(void) -> void", nothing, NULL, 0),
        CAPFFI_ESIG);
    assert_rc(
        capffi_cb_new(&cb, f->ctx, &f->tok, "() -> buffer", nothing, NULL, 0),
        CAPFFI_ESIG);
    assert_rc(
        capffi_cb_new(&cb, f->ctx, &f->tok, "() -> void", nothing, NULL, 0x100),
        CAPFFI_EINVAL);
    o.timeout_ms = -1;
    assert_rc(capffi_cb_new_opts(&cb, f->ctx, &f->tok, "() -> void", nothing,
                                 NULL, &o),
              CAPFFI_EINVAL);
    assert_null(cb);
    /* Each was audited as a failed cb.new, under its signature. */
    assert_events(f->ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  "cb.new EINVAL () -> void", "cb.new EINVAL",
                  "cb.new EINVAL () -> void",
                  "cb.new ESIG (i32, ...: i32) -> void",
                  "cb.new ESIG (void) -> void", "cb.new ESIG () -> buffer",
                  "cb.new EINVAL () -> void", "cb.new EINVAL () -> void");

    /* The right is required; a token without it is refused, audited. */
    capffi_token nocb = mint(f->ctx, "no-callback", CAPFFI_RIGHT_DLOPEN);
    mark = capffi_audit_mark(f->ctx);
    assert_rc(capffi_cb_new(&cb, f->ctx, &nocb, "() -> void", nothing, NULL, 0),
              CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "callback"));
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, "cb.new EPERM () -> void");

    /* A creation is audited with its signature, as a refusal is, and
     * the code address in the detail. */
    mark = capffi_audit_mark(f->ctx);
    cb = cb_make(f, "() -> void", nothing, NULL, 0);
    char addr[40];
    snprintf(addr, sizeof addr, "at %p", capffi_cb_code(cb));
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, "cb.new ok () -> void");
    capffi_audit_filter flt = CAPFFI_AUDIT_FILTER_ALL;
    flt.op = CAPFFI_OP_CB_NEW;
    flt.status = CAPFFI_OK;
    size_t pos = 0;
    capffi_event ev;
    assert_ok(capffi_audit_next(&ev, f->ctx, &flt, &pos));
    assert_string_equal(ev.detail, addr);

    /* NULL handles. */
    assert_null(capffi_cb_code(NULL));
    capffi_cb_close(NULL);
    capffi_cb_status st;
    assert_rc(capffi_cb_take_status(&st, NULL), CAPFFI_EINVAL);
    assert_rc(capffi_cb_take_status(NULL, cb), CAPFFI_EINVAL);
    assert_rc(capffi_ctx_poll(NULL, 0), CAPFFI_EINVAL);
    assert_rc(capffi_ctx_fd(NULL), CAPFFI_EINVAL);
    assert_true(capffi_ctx_fd(f->ctx) >= 0);
    assert_rc(capffi_ctx_poll(f->ctx, 0), CAPFFI_ETIMEDOUT);
    assert_rc(capffi_ctx_poll(f->ctx, 1), CAPFFI_ETIMEDOUT);
}

/* ---- failing closed (C2) ------------------------------------------------ */

static void
count_calls(void *payload, const capffi_value *args, capffi_value *ret)
{
    int *calls = payload;
    (*calls)++;
    ret->i64 = args[0].i64 + 1;
}

static void
cb_closed_callback_fails_closed(void **state)
{
    struct lib_fx *f = *state;
    int calls = 0;
    capffi_value d;
    d.i64 = -1;
    capffi_cb_options o;
    memset(&o, 0, sizeof o);
    o.result = &d;
    capffi_cb *cb = NULL;
    assert_ok(capffi_cb_new_opts(&cb, f->ctx, &f->tok, "(i32) -> i32",
                                 count_calls, &calls, &o));
    unop_fn code = cb_unop(cb);
    void *p = capffi_cb_code(cb);
    assert_int_equal(code(41), 42);
    assert_int_equal(calls, 1);

    uint64_t mark = capffi_audit_mark(f->ctx);
    capffi_cb_close(cb);
    capffi_cb_close(cb); /* twice does nothing */
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT,
                  "cb.close ok (i32) -> i32");
    /* Native code kept the pointer: it stays callable and harmless. */
    assert_ptr_equal(capffi_cb_code(cb), p);
    for (int i = 0; i < 3; i++)
        assert_int_equal(code(41), -1);
    assert_int_equal(calls, 1);
    capffi_cb_status st = cb_status(cb);
    assert_int_equal(st.first, CAPFFI_ECLOSED);
    assert_int_equal(st.failures, 3);
    assert_int_equal(audited(f->ctx, CAPFFI_OP_CB_INVOKE, CAPFFI_ECLOSED), 3);
    /* A2: native code looping over a closed callback leaves one event a
     * second, counting every refusal. */
    size_t before =
        capffi_audit_count(f->ctx, CAPFFI_OP_CB_INVOKE, CAPFFI_ECLOSED, NULL);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(code(i), -1);
    assert_true(
        capffi_audit_count(f->ctx, CAPFFI_OP_CB_INVOKE, CAPFFI_ECLOSED, NULL) -
            before <=
        2);
    assert_int_equal(audited(f->ctx, CAPFFI_OP_CB_INVOKE, CAPFFI_ECLOSED),
                     1003);
    cb_status(cb);
    /* Through a bound function too. */
    capffi_fn *apply = bind(f, "fx_apply_i32", "(function, i32) -> i32");
    capffi_fn *raw = caller_of(f, cb, "(i32) -> i32");
    capffi_value a[2], r;
    a[0].fn = raw;
    a[1].i64 = 1;
    assert_ok(capffi_fn_call(apply, a, &r));
    assert_int_equal(r.i64, -1);
    assert_int_equal(calls, 1);
}

static void
cb_revoked_callback_fails_closed(void **state)
{
    struct lib_fx *f = *state;
    int calls = 0;
    capffi_token parent = mint(f->ctx, "parent", CAPFFI_RIGHT_CALLBACK);
    capffi_token child;
    assert_ok(capffi_token_attenuate(&child, f->ctx, &parent, NULL));
    capffi_cb *cb = NULL;
    assert_ok(capffi_cb_new(&cb, f->ctx, &child, "(i32) -> i32", count_calls,
                            &calls, 0));
    unop_fn code = cb_unop(cb);
    assert_int_equal(code(1), 2);

    /* Revoking the parent reaches the child's callback. */
    assert_ok(capffi_token_revoke(f->ctx, &parent));
    assert_int_equal(code(1), 0);
    assert_int_equal(code(2), 0);
    assert_int_equal(calls, 1);
    capffi_cb_status st = cb_status(cb);
    assert_int_equal(st.first, CAPFFI_EREVOKED);
    assert_int_equal(st.failures, 2);
    assert_int_equal(audited(f->ctx, CAPFFI_OP_CB_INVOKE, CAPFFI_EREVOKED), 2);
    /* No new callback from a revoked token. */
    capffi_cb *late = NULL;
    assert_rc(capffi_cb_new(&late, f->ctx, &child, "(i32) -> i32", count_calls,
                            &calls, 0),
              CAPFFI_EREVOKED);
    assert_null(late);
    /* Closing after the revocation still closes, and says so. */
    capffi_cb_close(cb);
    assert_int_equal(code(1), 0);
    assert_int_equal(cb_status(cb).first, CAPFFI_ECLOSED);
}

/* The memory of closed callbacks is held until the context goes: many of
 * them, invoked after closing, stay clean under AddressSanitizer. */
static void
cb_many_closed_callbacks_stay_mapped(void **state)
{
    struct lib_fx *f = *state;
    int calls = 0;
    unop_fn codes[64];
    for (int i = 0; i < 64; i++) {
        capffi_cb *cb = cb_make(f, "(i32) -> i32", count_calls, &calls, 0);
        codes[i] = cb_unop(cb);
        capffi_cb_close(cb);
    }
    for (int i = 0; i < 64; i++)
        assert_int_equal(codes[i](i), 0);
    assert_int_equal(calls, 0);
}

/* A host's generic handler learns the types it converts from the
 * callback, as it does for a bound function. */
static void
cb_types_describe_the_signature(void **state)
{
    struct lib_fx *f = *state;
    assert_ok(capffi_type_define(f->ctx, "Pair", "{ a: i32, b: i32 }"));
    capffi_cb *cb =
        cb_make(f, "(u8, cstring, Pair, *Pair, function, { u8, f64 }) -> Pair",
                nothing, NULL, 0);
    size_t size = 99;
    assert_int_equal(capffi_cb_arity(cb), 6);
    assert_string_equal(capffi_cb_param_type(cb, 0, &size), "u8");
    assert_int_equal(size, 1);
    assert_string_equal(capffi_cb_param_type(cb, 1, NULL), "cstring");
    assert_string_equal(capffi_cb_param_type(cb, 2, &size), "struct");
    assert_int_equal(size, 8);
    assert_string_equal(capffi_cb_param_type(cb, 3, &size), "object");
    assert_int_equal(size, 8);
    assert_string_equal(capffi_cb_param_type(cb, 4, NULL), "function");
    assert_string_equal(capffi_cb_param_type(cb, 5, &size), "struct");
    assert_int_equal(size, 16);
    assert_null(capffi_cb_param_type(cb, 6, &size));
    assert_int_equal(size, 0);
    assert_string_equal(capffi_cb_result_type(cb, &size), "struct");
    assert_int_equal(size, 8);
    /* closing changes nothing about what it was declared as */
    capffi_cb_close(cb);
    assert_string_equal(capffi_cb_param_type(cb, 0, NULL), "u8");

    cb = cb_make(f, "() -> void", nothing, NULL, 0);
    assert_int_equal(capffi_cb_arity(cb), 0);
    assert_null(capffi_cb_param_type(cb, 0, NULL));
    assert_string_equal(capffi_cb_result_type(cb, &size), "void");
    assert_int_equal(capffi_cb_arity(NULL), 0);
    assert_null(capffi_cb_param_type(NULL, 0, &size));
    assert_int_equal(size, 0);
    assert_null(capffi_cb_result_type(NULL, NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, lib_fx_teardown)
        T(cb_qsort_from_libc_calls_the_comparator),
        T(cb_sqlite3_exec_delivers_rows),
        T(cb_native_callback_native_recursion),
        T(cb_every_scalar_round_trips),
        T(cb_small_arguments_are_extended),
        T(cb_small_results_are_range_checked),
        T(cb_default_results),
        T(cb_structs_by_value),
        T(cb_nine_mixed_arguments),
        T(cb_handler_failure_is_reported_not_thrown),
        T(cb_function_parameters_take_handles),
        T(cb_ref_unref_and_keepalive),
        T(cb_bad_input_is_refused_and_audited),
        T(cb_closed_callback_fails_closed),
        T(cb_revoked_callback_fails_closed),
        T(cb_many_closed_callbacks_stay_mapped),
        T(cb_types_describe_the_signature),
#undef T
    };
    return RUN_TESTS("cb", tests);
}
