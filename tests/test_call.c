/*
 * test_call.c - calling bound functions: every type as argument and
 * result, structs of every shape, many arguments, variadic calls, errno,
 * range and size checks, the raw call, and calls from several threads
 * (suites: unit, call).
 */
#include "helpers.h"

#include <math.h>
#include <pthread.h>

#include "call/abi.h"
#include "fixture.h"

static int
setup(void **state)
{
    struct lib_fx *f = calloc(1, sizeof *f);
    lib_fx_open(f, 0, "CAPFFI_FIXTURE_DIR", "CAPFFI_FIXTURE", "calls");
    *state = f;
    return 0;
}

static capffi_value
call1(capffi_fn *fn, capffi_value a)
{
    capffi_value r;
    memset(&r, 0xcc, sizeof r);
    assert_ok(capffi_fn_call(fn, &a, &r));
    return r;
}

#define I(v) ((capffi_value){ .i64 = (v) })
#define U(v) ((capffi_value){ .u64 = (v) })
#define D(v) ((capffi_value){ .f64 = (v) })

static void
call_every_scalar_round_trips(void **state)
{
    struct lib_fx *f = *state;
    capffi_value v;
    v.b = true;
    assert_true(call1(lib_fx_bind(f, "fx_id_bool", "(bool) -> bool", 0), v).b);
    v.b = false;
    assert_false(call1(lib_fx_bind(f, "fx_id_bool", "(bool) -> bool", 0), v).b);
    assert_int_equal(
        call1(lib_fx_bind(f, "fx_id_i8", "(i8)->i8", 0), I(-128)).i64, -128);
    assert_int_equal(
        call1(lib_fx_bind(f, "fx_id_u8", "(u8)->u8", 0), U(255)).u64, 255);
    assert_int_equal(
        call1(lib_fx_bind(f, "fx_id_i16", "(i16)->i16", 0), I(-32768)).i64,
        -32768);
    assert_int_equal(
        call1(lib_fx_bind(f, "fx_id_u16", "(u16)->u16", 0), U(65535)).u64,
        65535);
    assert_int_equal(
        call1(lib_fx_bind(f, "fx_id_i32", "(i32)->i32", 0), I(INT32_MIN)).i64,
        INT32_MIN);
    assert_true(
        call1(lib_fx_bind(f, "fx_id_u32", "(u32)->u32", 0), U(UINT32_MAX))
            .u64 == UINT32_MAX);
    assert_true(
        call1(lib_fx_bind(f, "fx_id_i64", "(i64)->i64", 0), I(INT64_MIN)).i64 ==
        INT64_MIN);
    assert_true(
        call1(lib_fx_bind(f, "fx_id_u64", "(u64)->u64", 0), U(UINT64_MAX))
            .u64 == UINT64_MAX);
    assert_true(
        call1(lib_fx_bind(f, "fx_id_isize", "(isize)->isize", 0), I(-5)).i64 ==
        -5);
    assert_true(
        call1(lib_fx_bind(f, "fx_id_usize", "(usize)->usize", 0), U(SIZE_MAX))
            .u64 == SIZE_MAX);
    v.f32 = 1.5f;
    assert_true(call1(lib_fx_bind(f, "fx_id_f32", "(f32)->f32", 0), v).f32 ==
                1.5f);
    assert_true(
        call1(lib_fx_bind(f, "fx_id_f64", "(f64)->f64", 0), D(-2.25)).f64 ==
        -2.25);
    v.p = &v;
    assert_ptr_equal(
        call1(lib_fx_bind(f, "fx_id_ptr", "(pointer)->pointer", 0), v).p, &v);
    v.p = NULL;
    assert_null(
        call1(lib_fx_bind(f, "fx_id_ptr", "(function)->function", 0), v).p);
}

/* Results narrower than a register are sign- or zero-extended from the
 * declared type, whatever libffi leaves in the upper bits. */
static void
call_small_results_are_extended(void **state)
{
    struct lib_fx *f = *state;
    assert_int_equal(
        call1(lib_fx_bind(f, "fx_id_i8", "(i8)->i8", 0), I(-1)).i64, -1);
    assert_int_equal(
        call1(lib_fx_bind(f, "fx_id_u8", "(u8)->u8", 0), U(200)).u64, 200);
    assert_int_equal(
        call1(lib_fx_bind(f, "fx_i8_to_i32", "(i8)->i32", 0), I(-100)).i64,
        -100);
    assert_int_equal(
        call1(lib_fx_bind(f, "fx_u8_to_u32", "(u8)->u32", 0), U(250)).u64, 250);
    assert_int_equal(
        call1(lib_fx_bind(f, "fx_i16_to_i32", "(i16)->i32", 0), I(-30000)).i64,
        -30000);
    assert_int_equal(
        call1(lib_fx_bind(f, "fx_u16_to_u32", "(u16)->u32", 0), U(60000)).u64,
        60000);
    assert_int_equal(
        call1(lib_fx_bind(f, "fx_id_i32", "(i32)->i32", 0), I(-7)).i64, -7);
}

static void
call_small_integers_are_range_checked(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *u8 = lib_fx_bind(f, "fx_id_u8", "(u8) -> u8", 0);
    capffi_value r, a = U(300);
    assert_rc(capffi_fn_call(u8, &a, &r), CAPFFI_ERANGE);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "argument 1 (u8)"));
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "300"));
    capffi_fn *i8 = lib_fx_bind(f, "fx_id_i8", "(i8) -> i8", 0);
    a = I(-129);
    assert_rc(capffi_fn_call(i8, &a, &r), CAPFFI_ERANGE);
    a = I(128);
    assert_rc(capffi_fn_call(i8, &a, &r), CAPFFI_ERANGE);
    capffi_fn *i16 = lib_fx_bind(f, "fx_id_i16", "(i16) -> i16", 0);
    a = I(40000);
    assert_rc(capffi_fn_call(i16, &a, &r), CAPFFI_ERANGE);
    capffi_fn *u16 = lib_fx_bind(f, "fx_id_u16", "(u16) -> u16", 0);
    a = U(65536);
    assert_rc(capffi_fn_call(u16, &a, &r), CAPFFI_ERANGE);
    capffi_fn *i32 = lib_fx_bind(f, "fx_id_i32", "(i32) -> i32", 0);
    a = I((int64_t)INT32_MAX + 1);
    assert_rc(capffi_fn_call(i32, &a, &r), CAPFFI_ERANGE);
    capffi_fn *u32 = lib_fx_bind(f, "fx_id_u32", "(u32) -> u32", 0);
    a = U((uint64_t)UINT32_MAX + 1);
    assert_rc(capffi_fn_call(u32, &a, &r), CAPFFI_ERANGE);
    /* With CAPFFI_FN_WRAP they wrap as C casts do. */
    capffi_fn *wrap = lib_fx_bind(f, "fx_id_u8", "(u8) -> u8", CAPFFI_FN_WRAP);
    a = U(300);
    assert_ok(capffi_fn_call(wrap, &a, &r));
    assert_int_equal(r.u64, 44);
    capffi_fn *wrap8 = lib_fx_bind(f, "fx_id_i8", "(i8) -> i8", CAPFFI_FN_WRAP);
    a = I(200);
    assert_ok(capffi_fn_call(wrap8, &a, &r));
    assert_int_equal(r.i64, -56);
}

static void
call_strings_and_pointers(void **state)
{
    struct lib_fx *f = *state;
    capffi_value a, r;
    a.str = "capffi";
    r = call1(lib_fx_bind(f, "fx_strlen", "(cstring) -> usize", 0), a);
    assert_int_equal(r.u64, 6);
    a.str = NULL;
    r = call1(lib_fx_bind(f, "fx_strlen", "(cstring) -> usize", 0), a);
    assert_true(r.u64 == (uint64_t)-1);
    assert_ok(capffi_fn_call(lib_fx_bind(f, "fx_greeting", "() -> cstring", 0),
                             NULL, &r));
    assert_string_equal(r.str, "hello from fixture");
    assert_ok(capffi_fn_call(lib_fx_bind(f, "fx_null", "() -> pointer", 0),
                             NULL, &r));
    assert_null(r.p);
}

static void
call_buffers_pass_their_bytes(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *len = lib_fx_bind(f, "fx_strlen", "(buffer) -> usize", 0);
    capffi_buf *b, *empty;
    assert_ok(capffi_buf_new(&b, f->ctx, 16));
    void *p;
    size_t n;
    assert_ok(capffi_buf_data(&p, &n, b));
    assert_int_equal(n, 16);
    memcpy(p, "four", 5);
    capffi_value a = { .buf = b };
    assert_int_equal(call1(len, a).u64, 4);
    /* An empty buffer and a NULL buffer pass NULL, as in Deno. */
    assert_ok(capffi_buf_new(&empty, f->ctx, 0));
    a.buf = empty;
    assert_true(call1(len, a).u64 == (uint64_t)-1);
    a.buf = NULL;
    assert_true(call1(len, a).u64 == (uint64_t)-1);
    char host[] = "wrapped!";
    capffi_buf *w;
    assert_ok(capffi_buf_wrap(&w, f->ctx, host, sizeof host, NULL, NULL));
    a.buf = w;
    assert_int_equal(call1(len, a).u64, 8);
    capffi_buf_free(b);
    capffi_buf_free(empty);
    capffi_buf_free(w);
}

static void
call_structs_in_registers(void **state)
{
    struct lib_fx *f = *state;
    capffi_value a[2], r;
    struct fx_pair_i32 pair;
    a[0] = I(3);
    a[1] = I(-10);
    r.agg.ptr = &pair;
    r.agg.len = sizeof pair;
    assert_ok(capffi_fn_call(
        lib_fx_bind(f, "fx_pair_make", "(i32, i32) -> { a: i32, b: i32 }", 0),
        a, &r));
    assert_int_equal(pair.a, 3);
    assert_int_equal(pair.b, -10);
    a[0].agg.ptr = &pair;
    a[0].agg.len = sizeof pair;
    assert_int_equal(
        call1(lib_fx_bind(f, "fx_pair_sum", "({ i32, i32 }) -> i32", 0), a[0])
            .i64,
        -7);

    struct fx_vec2 v = { 1.5f, -2.0f }, out;
    a[0].agg.ptr = &v;
    a[0].agg.len = sizeof v;
    a[1].f32 = 2.0f;
    r.agg.ptr = &out;
    r.agg.len = sizeof out;
    assert_ok(capffi_fn_call(
        lib_fx_bind(f, "fx_vec2_scale", "({f32, f32}, f32) -> {f32, f32}", 0),
        a, &r));
    assert_true(out.x == 3.0f && out.y == -4.0f);

    struct fx_mixed m;
    a[0] = I(40);
    a[1] = D(2.5);
    r.agg.ptr = &m;
    r.agg.len = sizeof m;
    assert_ok(capffi_fn_call(
        lib_fx_bind(f, "fx_mixed_make", "(i64, f64) -> { i64, f64 }", 0), a,
        &r));
    assert_true(m.i == 40 && m.d == 2.5);
    a[0].agg.ptr = &m;
    a[0].agg.len = sizeof m;
    assert_true(
        call1(lib_fx_bind(f, "fx_mixed_sum", "({ i64, f64 }) -> f64", 0), a[0])
            .f64 == 42.5);

    struct fx_rgb c = { 10, 20, 250 }, inv;
    a[0].agg.ptr = &c;
    a[0].agg.len = sizeof c;
    r.agg.ptr = &inv;
    r.agg.len = sizeof inv;
    assert_ok(
        capffi_fn_call(lib_fx_bind(f, "fx_rgb_invert",
                                   "({ u8, u8, u8 }) -> { u8, u8, u8 }", 0),
                       a, &r));
    assert_true(inv.r == 245 && inv.g == 235 && inv.b == 5);
}

static void
call_structs_in_memory_and_nested(void **state)
{
    struct lib_fx *f = *state;
    assert_ok(capffi_type_define(f->ctx, "Big", "{ a: i64, b: i64, c: i64 }"));
    capffi_value a[4], r;
    struct fx_big big;
    a[0] = I(1);
    a[1] = I(2);
    a[2] = I(3);
    r.agg.ptr = &big;
    r.agg.len = sizeof big;
    assert_ok(capffi_fn_call(
        lib_fx_bind(f, "fx_big_make", "(i64, i64, i64) -> Big", 0), a, &r));
    assert_true(big.a == 1 && big.b == 2 && big.c == 3);
    struct fx_big other = { 10, 20, 30 };
    a[0].agg.ptr = &big;
    a[0].agg.len = sizeof big;
    a[1].agg.ptr = &other;
    a[1].agg.len = sizeof other;
    capffi_fn *sum2 = lib_fx_bind(f, "fx_big_sum2", "(Big, Big) -> i64", 0);
    for (int i = 0; i < 3; i++) { /* the same args array, again and again */
        assert_ok(capffi_fn_call(sum2, a, &r));
        assert_int_equal(r.i64, 66);
    }

    struct fx_huge h;
    a[0] = D(1.0);
    r.agg.ptr = &h;
    r.agg.len = sizeof h;
    capffi_fn *fill =
        lib_fx_bind(f, "fx_huge_fill",
                    "(f64) -> { f64, f64, f64, f64, f64, f64, f64, f64 }", 0);
    assert_ok(capffi_fn_call(fill, a, &r));
    for (int i = 0; i < 8; i++)
        assert_true(h.v[i] == 1.0 + i);

    assert_ok(capffi_type_define(f->ctx, "Inner", "{ s: i16, d: f64 }"));
    assert_ok(capffi_type_define(f->ctx, "Outer",
                                 "{ tag: i8, in: Inner, tail: i32 }"));
    size_t size, off;
    assert_ok(capffi_type_size(&size, NULL, f->ctx, "Outer"));
    assert_int_equal(size, sizeof(struct fx_outer));
    assert_ok(capffi_type_offset(&off, f->ctx, "Outer", "tail"));
    assert_int_equal(off, offsetof(struct fx_outer, tail));
    struct fx_outer o;
    memset(&o, 0x55, sizeof o);
    a[0] = I(-3);
    a[1] = I(1000);
    a[2] = D(0.5);
    a[3] = I(-70000);
    r.agg.ptr = &o;
    r.agg.len = sizeof o;
    assert_ok(capffi_fn_call(
        lib_fx_bind(f, "fx_outer_make", "(i8, i16, f64, i32) -> Outer", 0), a,
        &r));
    assert_true(o.tag == -3 && o.in.s == 1000 && o.in.d == 0.5 &&
                o.tail == -70000);
    a[0].agg.ptr = &o;
    a[0].agg.len = sizeof o;
    assert_true(
        call1(lib_fx_bind(f, "fx_outer_sum", "(Outer) -> f64", 0), a[0]).f64 ==
        -3 + 1000 + 0.5 - 70000);
}

/*
 * The shape libffi before 3.4.7 mis-passes on x86-64 (docs/limits.md,
 * test_libffi_defect.c): capffi's direct call, the default there, passes
 * it right, also in a variadic signature (the callee ignores the extra
 * variadic argument).
 */
static void
call_struct_in_the_last_integer_register(void **state)
{
    struct lib_fx *f = *state;
    if (!CAPFFI__ABI_SYSV64)
        skip();
    capffi_fn *fn =
        lib_fx_bind(f, "fx_struct_after_ints_and_double",
                    "(i64, i64, i64, i64, i64, f64, { i64, f64 }) -> f64", 0);
    struct fx_mixed m = { 6, 0.5 };
    capffi_value a[8], r;
    for (int i = 0; i < 5; i++)
        a[i].i64 = i + 1;
    a[5].f64 = 100.0;
    a[6].agg.ptr = &m;
    a[6].agg.len = sizeof m;
    a[7].i64 = 7;
    assert_ok(capffi_fn_call(fn, a, &r));
    assert_true(r.f64 == 121.5);
    capffi_value rv;
    assert_ok(capffi_fn_call(
        lib_fx_bind(
            f, "fx_struct_after_ints_and_double",
            "(i64, i64, i64, i64, i64, f64, { i64, f64 }, ...: i32) -> f64", 0),
        a, &rv));
    assert_true(rv.f64 == 121.5);
    void *av[7];
    for (int i = 0; i < 6; i++)
        av[i] = &a[i];
    av[6] = &m;
    double d = 0;
    assert_ok(capffi_fn_call_raw(fn, av, &d));
    assert_true(d == 121.5);
}

/*
 * Where a call would go through an affected libffi (CAPFFI_FN_LIBFFI, or
 * stack arguments past the direct call's 128 bytes), the shape it
 * mis-passes is refused at bind time, naming the argument; the same
 * struct elsewhere is accepted by libffi.
 */
static void
call_refuses_what_libffi_would_pass_wrongly(void **state)
{
    struct lib_fx *f = *state;
#ifndef CAPFFI_LIBFFI_STRUCT_DEFECT
    (void)f;
    skip();
#else
    const char *sym = "fx_struct_after_ints_and_double";
    capffi_fn *fn = NULL;
    assert_int_equal(
        capffi_lib_bind(&fn, f->lib, sym,
                        "(i64, i64, i64, i64, i64, f64, { i64, f64 }) -> f64",
                        CAPFFI_FN_LIBFFI),
        CAPFFI_ESIG);
    assert_null(fn);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "argument 7"));
    /* 144 bytes of stack arguments: libffi even without flags (bound,
     * never called). */
    assert_int_equal(
        capffi_lib_bind(&fn, f->lib, sym,
                        "(i64, i64, i64, i64, i64, f64, { i64, f32 }, "
                        "{ i64, i64, i64, i64, i64, i64 }, "
                        "{ i64, i64, i64, i64, i64, i64 }, "
                        "{ i64, i64, i64, i64, i64, i64 }) -> f64",
                        0),
        CAPFFI_ESIG);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "argument 7"));
    /* No earlier floating-point argument, or a free register after it:
     * libffi gets these right. */
    capffi_fn_free(lib_fx_bind(f, "fx_struct_after_ints",
                               "(i64, i64, i64, i64, i64, { i64, f64 }) -> f64",
                               CAPFFI_FN_LIBFFI));
    capffi_fn_free(lib_fx_bind(f, "fx_struct_after_four_ints",
                               "(i64, f64, i64, i64, { i64, f64 }) -> f64",
                               CAPFFI_FN_LIBFFI));
#endif
}

static void
call_struct_sizes_are_checked(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *sum = lib_fx_bind(f, "fx_pair_sum", "({ i32, i32 }) -> i32", 0);
    struct fx_pair_i32 pair = { 1, 2 };
    capffi_value a, r;
    a.agg.ptr = &pair;
    a.agg.len = 4;
    assert_rc(capffi_fn_call(sum, &a, &r), CAPFFI_ETYPE);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "4 bytes given, 8"));
    a.agg.ptr = NULL;
    a.agg.len = 8;
    assert_rc(capffi_fn_call(sum, &a, &r), CAPFFI_EINVAL);
    /* A struct result needs memory of at least its size. */
    capffi_fn *make =
        lib_fx_bind(f, "fx_pair_make", "(i32, i32) -> { i32, i32 }", 0);
    capffi_value two[2] = { I(1), I(2) };
    assert_rc(capffi_fn_call(make, two, NULL), CAPFFI_EINVAL);
    r.agg.ptr = &pair;
    r.agg.len = 7;
    assert_rc(capffi_fn_call(make, two, &r), CAPFFI_EINVAL);
}

static void
call_many_arguments_spill_to_the_stack(void **state)
{
    struct lib_fx *f = *state;
    capffi_value a[20], r;
    for (int i = 0; i < 16; i++)
        a[i] = I(i + 1);
    assert_ok(capffi_fn_call(
        lib_fx_bind(
            f, "fx_sum16_i64",
            "(i64,i64,i64,i64,i64,i64,i64,i64,i64,i64,i64,i64,i64,i64,i64,"
            "i64) -> i64",
            0),
        a, &r));
    assert_int_equal(r.i64, 136);
    for (int i = 0; i < 12; i++)
        a[i] = D(0.5 * (i + 1));
    assert_ok(capffi_fn_call(
        lib_fx_bind(f, "fx_sum12_f64",
                    "(f64,f64,f64,f64,f64,f64,f64,f64,f64,f64,f64,f64) -> f64",
                    0),
        a, &r));
    assert_true(r.f64 == 39.0);
    double want = 0;
    for (int i = 0; i < 20; i++) {
        if (i % 2 == 0) {
            a[i] = I(i);
            want += i;
        } else {
            a[i] = D(i + 0.25);
            want += i + 0.25;
        }
    }
    assert_ok(capffi_fn_call(
        lib_fx_bind(
            f, "fx_mixed_many",
            "(i32,f64,i32,f64,i32,f64,i32,f64,i32,f64,i32,f64,i32,f64,i32,"
            "f64,i32,f64,i32,f64) -> f64",
            0),
        a, &r));
    assert_true(r.f64 == want);
    a[0] = I(1);
    a[1] = D(2.5);
    a[2] = I(-3);
    a[3].f32 = 0.25f;
    a[4] = U(200);
    a[5] = D(100);
    assert_ok(capffi_fn_call(
        lib_fx_bind(f, "fx_mixed6", "(i32, f64, i64, f32, u8, f64) -> f64", 0),
        a, &r));
    assert_true(r.f64 == 1 + 2.5 - 3 + 0.25 + 200 + 100);
}

static void
call_variadic(void **state)
{
    struct lib_fx *f = *state;
    capffi_value a[5], r;
    a[0] = I(3);
    a[1] = I(10);
    a[2] = I(20);
    a[3] = I(-5);
    assert_ok(capffi_fn_call(
        lib_fx_bind(f, "fx_sum_ints", "(i32, ...: i32, i32, i32) -> i32", 0), a,
        &r));
    assert_int_equal(r.i64, 25);
    a[0] = I(2);
    a[1] = D(1.25);
    a[2] = D(2.5);
    assert_ok(capffi_fn_call(
        lib_fx_bind(f, "fx_sum_doubles", "(i32, ...: f64, f64) -> f64", 0), a,
        &r));
    assert_true(r.f64 == 3.75);
    /* A variadic function bound with a fixed signature gets the count of
     * SSE registers in %al, as libffi gives it. */
    assert_ok(capffi_fn_call(
        lib_fx_bind(f, "fx_sum_doubles", "(i32, f64, f64) -> f64", 0), a, &r));
    assert_true(r.f64 == 3.75);
    char out[64];
    a[0].p = out;
    a[1] = U(sizeof out);
    a[2].str = "%s=%d (%.1f)";
    a[3].str = "x";
    a[4] = I(42);
    capffi_value six[6];
    memcpy(six, a, sizeof a);
    six[5] = D(0.5);
    assert_ok(capffi_fn_call(
        lib_fx_bind(f, "fx_format",
                    "(pointer, usize, cstring, ...: cstring, i32, f64) -> i32",
                    0),
        six, &r));
    assert_string_equal(out, "x=42 (0.5)");
    assert_int_equal(r.i64, 10);
    assert_int_equal(capffi_fn_arity(lib_fx_bind(f, "fx_sum_ints",
                                                 "(i32, ...: i32) -> i32", 0)),
                     2);

    /* Past the registers, on both paths: 11 ints, 11 doubles. */
    const uint32_t paths[] = { 0, CAPFFI_FN_LIBFFI };
    for (size_t p = 0; p < 2; p++) {
        capffi_value v[12];
        char sig[128] = "(i32, ...:";
        for (int i = 0; i < 11; i++)
            strcat(sig, i ? ", i32" : " i32");
        strcat(sig, ") -> i32");
        v[0] = I(11);
        for (int i = 1; i <= 11; i++)
            v[i] = I(i * (i % 2 ? -1 : 1) * 1000);
        assert_ok(capffi_fn_call(lib_fx_bind(f, "fx_sum_ints", sig, paths[p]),
                                 v, &r));
        assert_int_equal(r.i64, -6000);
        strcpy(sig, "(i32, ...:");
        for (int i = 0; i < 11; i++)
            strcat(sig, i ? ", f64" : " f64");
        strcat(sig, ") -> f64");
        for (int i = 1; i <= 11; i++)
            v[i] = D(i + 0.5);
        assert_ok(capffi_fn_call(
            lib_fx_bind(f, "fx_sum_doubles", sig, paths[p]), v, &r));
        assert_true(r.f64 == 66 + 5.5);
    }
}

static void
call_captures_errno(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *set =
        lib_fx_bind(f, "fx_set_errno", "(i32) -> i32", CAPFFI_FN_ERRNO);
    assert_int_equal(call1(set, I(34)).i64, -1);
    assert_int_equal(capffi_last_errno(), 34);
    assert_int_equal(call1(set, I(0)).i64, -1);
    assert_int_equal(capffi_last_errno(), 0);
    capffi_value raw_arg = I(0);
    int32_t e = 22, rr;
    void *args[] = { &e };
    (void)raw_arg;
    int64_t wide;
    assert_ok(capffi_fn_call_raw(set, args, &wide));
    rr = (int32_t)wide;
    assert_int_equal(rr, -1);
    assert_int_equal(capffi_last_errno(), 22);
}

static void
call_raw_is_libffi_style(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *add = lib_fx_bind(f, "fx_add_i32", "(i32, i32) -> i32", 0);
    int32_t x = 40, y = 2;
    void *args[] = { &x, &y };
    uint64_t ret = 0;
    assert_ok(capffi_fn_call_raw(add, args, &ret));
    assert_int_equal((int32_t)ret, 42);
    /* Large struct arguments: libffi 3.4 rewrites avalue[i]; the caller's
     * array must come back untouched and be reusable. */
    capffi_fn *sum2 = lib_fx_bind(f, "fx_big_sum2",
                                  "({i64,i64,i64}, {i64,i64,i64}) -> i64", 0);
    struct fx_big v = { 1, 2, 3 }, w = { 4, 5, 6 };
    void *sargs[] = { &v, &w };
    int64_t s = 0;
    for (int i = 0; i < 3; i++) {
        assert_ok(capffi_fn_call_raw(sum2, sargs, &s));
        assert_int_equal(s, 21);
        assert_ptr_equal(sargs[0], &v);
        assert_ptr_equal(sargs[1], &w);
    }
    capffi_fn *nop = lib_fx_bind(f, "fx_nop", "() -> void", 0);
    assert_ok(capffi_fn_call_raw(nop, NULL, NULL));
    assert_ok(capffi_fn_call(nop, NULL, NULL));
    assert_rc(capffi_fn_call_raw(NULL, NULL, NULL), CAPFFI_EINVAL);
    assert_rc(capffi_fn_call(NULL, NULL, NULL), CAPFFI_EINVAL);
    assert_rc(capffi_fn_call(add, NULL, NULL), CAPFFI_EINVAL);
}

static void
call_after_close_is_an_error(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *add = lib_fx_bind(f, "fx_add_i32", "(i32, i32) -> i32", 0);
    capffi_value a[2] = { I(1), I(2) }, r;
    assert_ok(capffi_fn_call(add, a, &r));
    capffi_lib_close(f->lib);
    for (int i = 0; i < 100; i++)
        assert_rc(capffi_fn_call(add, a, &r), CAPFFI_ECLOSED);
    int32_t x = 1;
    void *args[] = { &x, &x };
    assert_rc(capffi_fn_call_raw(add, args, &r), CAPFFI_ECLOSED);
    capffi_fn *again = NULL;
    assert_rc(
        capffi_lib_bind(&again, f->lib, "fx_add_i32", "(i32,i32)->i32", 0),
        CAPFFI_ECLOSED);
    assert_null(again);
    capffi_fn_free(add);
}

struct worker {
    capffi_fn *fn;
    int32_t base;
    int failures;
};

static void *
hammer(void *arg)
{
    struct worker *w = arg;
    for (int32_t i = 0; i < 20000; i++) {
        capffi_value a[2] = { I(w->base), I(i) }, r;
        if (capffi_fn_call(w->fn, a, &r) != 0 || r.i64 != w->base + i)
            w->failures++;
    }
    return NULL;
}

/* Bound functions may be called from any thread, concurrently. */
static void
call_from_several_threads(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *add = lib_fx_bind(f, "fx_add_i32", "(i32, i32) -> i32", 0);
    struct worker w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ add, i * 1000000, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, lib_fx_teardown)
        T(call_every_scalar_round_trips),
        T(call_small_results_are_extended),
        T(call_small_integers_are_range_checked),
        T(call_strings_and_pointers),
        T(call_buffers_pass_their_bytes),
        T(call_structs_in_registers),
        T(call_structs_in_memory_and_nested),
        T(call_struct_in_the_last_integer_register),
        T(call_refuses_what_libffi_would_pass_wrongly),
        T(call_struct_sizes_are_checked),
        T(call_many_arguments_spill_to_the_stack),
        T(call_variadic),
        T(call_captures_errno),
        T(call_raw_is_libffi_style),
        T(call_after_close_is_an_error),
        T(call_from_several_threads),
#undef T
    };
    return RUN_TESTS("call", tests);
}
