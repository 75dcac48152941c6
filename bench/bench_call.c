/*
 * bench_call.c - what a call through capffi costs, next to libffi itself.
 *
 * Four signatures of the fixture library (tests/fixtures/fixture.h):
 *
 *   fx_nop      () -> void
 *   fx_add_i32  (i32, i32) -> i32
 *   fx_mixed6   (i32, f64, i64, f32, u8, f64) -> f64
 *   fx_big_sum  ({ i64, i64, i64 }) -> i64   (24 bytes by value: MEMORY)
 *
 * and for each of them, per call, in nanoseconds:
 *
 *   1. a direct C call through a volatile function pointer (the fixture is
 *      linked into this program), so the compiler can neither inline nor
 *      hoist it: the floor;
 *   2. ffi_call with a cif prepared once by this program: the baseline the
 *      ratios are taken against;
 *   3. capffi_fn_call_raw: libffi's argument convention, plus capffi's
 *      liveness check;
 *   4. capffi_fn_call: capffi_value arguments and result, converted and
 *      range-checked on every call;
 *   5, 6. the same two, bound with CAPFFI_FN_LIBFFI: the call made by
 *      ffi_call, as on platforms without capffi's direct call and for
 *      signatures it does not plan (variadic ones, large stack areas).
 *
 * On x86-64 the default rows use the direct call (src/call/abi.c), which does
 * not go through ffi_call at all and so beats it; the libffi rows show
 * what capffi adds around ffi_call itself.
 *
 * The budgets are capffi_fn_call_raw <= 1.05x and capffi_fn_call <= 1.25x
 * the ffi_call median, on both paths. The table marks each ratio PASS or
 * over and counts each path's misses; the program exits 0 either way,
 * since a benchmark never fails on time.
 *
 * How: the context is created with CAPFFI_OPT_ALLOW_ALL, a token is minted
 * from it and the fixture is loaded with capffi_lib_open and bound with
 * capffi_lib_bind, as an application would. The ffi_call and direct rows
 * call the copy of the fixture this program is linked with; the loader
 * maps a file only once, so that is the copy capffi calls too. Arguments
 * are the same values in every variant and are prepared outside the timed
 * loops: the argument arrays, the capffi_value array, the struct. One
 * exception is forced by libffi: its x86-64 ffi_call replaces the
 * argument pointer of a struct over 16 bytes with a pointer into its own
 * (then dead) frame, so the ffi_call loop stores that one pointer again
 * before every call, the least a correct caller must do
 * (capffi_fn_call_raw copies the caller's array for the same reason).
 *
 * A sample times a loop of `iters` calls with clock_gettime(
 * CLOCK_MONOTONIC) and divides by `iters`. The variants are interleaved:
 * each sample runs the six variants of a signature back to back, starting
 * with a different variant each sample, so that slow drifts of the machine
 * (frequency, other load) hit every variant alike. One warm-up round is
 * run and discarded, then SAMPLES rounds. The table shows the median and
 * the minimum of each variant's per-call times and the ratio of its median
 * to the ffi_call median; "paired" is the median over the samples of the
 * ratio to the ffi_call time of the same round, which is less sensitive to
 * noise that lasts longer than one round. The verdict uses the ratio of
 * the medians. Every capffi call's return code is tested inside the timed
 * loop; the direct calls' results are summed into a volatile; every
 * variant's result is checked once before timing.
 *
 * Usage: bench_call [--quick] [--only SYMBOL] [FIXTURE]
 *   FIXTURE        path of libcapffi_fixture.so; default: $CAPFFI_FIXTURE.
 *   --quick        fewer samples and calls, for a smoke test in CI. Its
 *                  numbers are rough.
 *   --only SYMBOL  measure one signature (fx_nop, ...), e.g. under a
 *                  profiler, where every loop function then belongs to it.
 *
 * Exits 0 on success; on any failure, prints why to stderr and exits 1
 * (2 for a usage error).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ffi.h>

#include <capffi.h>

#include "bench_ffi.h"
#include "bench_util.h"

#include "fixture.h"

/* The budgets, as ratios to the ffi_call median. */
#define BUDGET_RAW 1.05
#define BUDGET_VALUE 1.25

/* The variants, in the order of the table. */
enum variant {
    V_DIRECT,
    V_FFI,
    V_RAW,
    V_VALUE,
    V_RAW_LIBFFI,
    V_VALUE_LIBFFI,
    N_VARIANTS
};

static const char *const variant_names[N_VARIANTS] = {
    "direct C call (volatile fn ptr)",
    "ffi_call (prepared cif)",
    "capffi_fn_call_raw",
    "capffi_fn_call",
    "capffi_fn_call_raw, FN_LIBFFI",
    "capffi_fn_call, FN_LIBFFI",
};

/* Keeps the direct calls' results alive. */
static volatile int64_t sink_i64;
static volatile double sink_f64;

/* The direct calls go through these: the compiler cannot see the target. */
static void (*volatile p_nop)(void) = fx_nop;
static int32_t (*volatile p_add_i32)(int32_t, int32_t) = fx_add_i32;
static double (*volatile p_mixed6)(int32_t, double, int64_t, float, uint8_t,
                                   double) = fx_mixed6;
static int64_t (*volatile p_big_sum)(struct fx_big) = fx_big_sum;

/* The arguments, in native form; every variant passes these values. */
struct natives {
    int32_t add_a, add_b;
    int32_t m_a;
    double m_b;
    int64_t m_c;
    float m_d;
    uint8_t m_e;
    double m_f;
    struct fx_big big;
};

/* The kind of a signature's result, for checking it. */
enum rkind { R_VOID, R_I32, R_I64, R_F64 };

struct bcase;

/* One timed sample: `iters` calls, returns nanoseconds per call. */
typedef double (*loop_fn)(struct bcase *c, size_t iters);

/* One signature and everything its six variants need. */
struct bcase {
    const char *symbol;
    const char *signature;
    loop_fn direct;    /* the variant-1 loop for this signature */
    enum rkind rkind;  /* what the result is */
    double expect;     /* the result every call returns */
    capffi_ctx *ctx;   /* for error messages */
    capffi_fn *fn;     /* bound through capffi */
    capffi_fn *fn_ffi; /* bound with CAPFFI_FN_LIBFFI */
    struct bench_call call;
    double s[N_VARIANTS][SAMPLES_MAX]; /* per-call ns, in sample order */
};

/* One line of the table. */
struct vstat {
    double median_ns;
    double min_ns;
    double ratio;  /* median over the ffi_call median */
    double paired; /* median of per-sample ratios to ffi_call */
};

/* ---- the timed loops: direct calls, one per signature ------------------ */

static double
loop_direct_nop(struct bcase *c, size_t iters)
{
    (void)c;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++)
        p_nop();
    uint64_t t1 = bench_now_ns();
    return bench_per_call(t0, t1, iters);
}

static double
loop_direct_add_i32(struct bcase *c, size_t iters)
{
    int32_t a = *(const int32_t *)c->call.av_src[0];
    int32_t b = *(const int32_t *)c->call.av_src[1];
    uint32_t acc = 0;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++)
        acc += (uint32_t)p_add_i32(a, b);
    uint64_t t1 = bench_now_ns();
    sink_i64 = (int64_t)acc;
    return bench_per_call(t0, t1, iters);
}

static double
loop_direct_mixed6(struct bcase *c, size_t iters)
{
    int32_t a = *(const int32_t *)c->call.av_src[0];
    double b = *(const double *)c->call.av_src[1];
    int64_t cc = *(const int64_t *)c->call.av_src[2];
    float d = *(const float *)c->call.av_src[3];
    uint8_t e = *(const uint8_t *)c->call.av_src[4];
    double f = *(const double *)c->call.av_src[5];
    double acc = 0;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++)
        acc += p_mixed6(a, b, cc, d, e, f);
    uint64_t t1 = bench_now_ns();
    sink_f64 = acc;
    return bench_per_call(t0, t1, iters);
}

static double
loop_direct_big_sum(struct bcase *c, size_t iters)
{
    struct fx_big v = *(const struct fx_big *)c->call.av_src[0];
    uint64_t acc = 0;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++)
        acc += (uint64_t)p_big_sum(v);
    uint64_t t1 = bench_now_ns();
    sink_i64 = (int64_t)acc;
    return bench_per_call(t0, t1, iters);
}

/* ---- the timed loops: libffi and capffi, any signature ----------------- */

/* The loops (bench_ffi.c) are kept out of main so that under a profiler
 * each is a function of its own. */
static double
run_variant(struct bcase *c, enum variant v, size_t iters)
{
    switch (v) {
    case V_DIRECT:
        return c->direct(c, iters);
    case V_FFI:
        return bench_loop_ffi(&c->call, iters);
    case V_RAW:
        return bench_loop_raw(&c->call, c->ctx, c->fn, iters);
    case V_VALUE:
        return bench_loop_value(&c->call, c->ctx, c->fn, iters);
    case V_RAW_LIBFFI:
        return bench_loop_raw(&c->call, c->ctx, c->fn_ffi, iters);
    default:
        return bench_loop_value(&c->call, c->ctx, c->fn_ffi, iters);
    }
}

/* ---- setting up -------------------------------------------------------- */

static void
init_cases(struct bcase *cases, struct natives *n)
{
    capffi_value v;
    struct bcase *c;

    n->add_a = 20;
    n->add_b = 22;
    n->m_a = 1;
    n->m_b = 2.5;
    n->m_c = 3;
    n->m_d = 4.5f;
    n->m_e = 5;
    n->m_f = 6.25;
    n->big.a = 1000;
    n->big.b = 200;
    n->big.c = 30;
    c = &cases[0];
    c->symbol = "fx_nop";
    c->signature = "() -> void";
    c->direct = loop_direct_nop;
    c->call.code = FFI_FN(fx_nop);
    c->rkind = R_VOID;
    c->expect = 0;

    c = &cases[1];
    c->symbol = "fx_add_i32";
    c->signature = "(i32, i32) -> i32";
    c->direct = loop_direct_add_i32;
    c->call.code = FFI_FN(fx_add_i32);
    c->rkind = R_I32;
    c->expect = 42;
    v.i64 = n->add_a;
    bench_call_arg(&c->call, 0, &n->add_a, &ffi_type_sint32, v);
    v.i64 = n->add_b;
    bench_call_arg(&c->call, 1, &n->add_b, &ffi_type_sint32, v);

    c = &cases[2];
    c->symbol = "fx_mixed6";
    c->signature = "(i32, f64, i64, f32, u8, f64) -> f64";
    c->direct = loop_direct_mixed6;
    c->call.code = FFI_FN(fx_mixed6);
    c->rkind = R_F64;
    c->expect = 22.25;
    v.i64 = n->m_a;
    bench_call_arg(&c->call, 0, &n->m_a, &ffi_type_sint32, v);
    v.f64 = n->m_b;
    bench_call_arg(&c->call, 1, &n->m_b, &ffi_type_double, v);
    v.i64 = n->m_c;
    bench_call_arg(&c->call, 2, &n->m_c, &ffi_type_sint64, v);
    v.f32 = n->m_d;
    bench_call_arg(&c->call, 3, &n->m_d, &ffi_type_float, v);
    v.u64 = n->m_e;
    bench_call_arg(&c->call, 4, &n->m_e, &ffi_type_uint8, v);
    v.f64 = n->m_f;
    bench_call_arg(&c->call, 5, &n->m_f, &ffi_type_double, v);

    c = &cases[3];
    c->symbol = "fx_big_sum";
    c->signature = "({ i64, i64, i64 }) -> i64";
    c->direct = loop_direct_big_sum;
    c->call.code = FFI_FN(fx_big_sum);
    c->rkind = R_I64;
    c->expect = 1230;
    v.agg.ptr = &n->big;
    v.agg.len = sizeof n->big;
    bench_call_arg(&c->call, 0, &n->big, &bench_big_type, v);
}

/* Prepare c's cif; find the argument ffi_call will rewrite, if any. */
static void
prepare_cif(struct bcase *c)
{
    static ffi_type *const rtypes[] = {
        [R_VOID] = &ffi_type_void,
        [R_I32] = &ffi_type_sint32,
        [R_I64] = &ffi_type_sint64,
        [R_F64] = &ffi_type_double,
    };
    bench_call_prep(&c->call, rtypes[c->rkind]);
}

/* The result in r, read as the signature's result type. */
static double
rbuf_value(const struct bcase *c, const union bench_rbuf *r)
{
    switch (c->rkind) {
    case R_I32:
        return (double)(int32_t)r->s;
    case R_I64:
        return (double)(int64_t)r->s;
    case R_F64:
        return r->f64;
    default:
        return 0;
    }
}

static void
check_result(const struct bcase *c, const char *variant, double got)
{
    if (got != c->expect) {
        fprintf(stderr, "bench_call: %s via %s returned %g, expected %g\n",
                c->symbol, variant, got, c->expect);
        exit(EXIT_FAILURE);
    }
}

/* Call fn both ways once and check what it returns. */
static void
check_capffi(const struct bcase *c, capffi_fn *fn)
{
    union bench_rbuf r;
    capffi_value ret;
    memset(&r, 0, sizeof r);
    int rc = capffi_fn_call_raw(fn, (void **)c->call.av_raw, &r);
    if (rc != CAPFFI_OK)
        bench_die_capffi(c->ctx, "capffi_fn_call_raw", rc);
    check_result(c, "capffi_fn_call_raw", rbuf_value(c, &r));
    for (size_t k = 0; k < c->call.nargs; k++)
        if (c->call.av_raw[k] != c->call.av_src[k])
            bench_die("capffi_fn_call_raw modified its argument array");

    memset(&ret, 0, sizeof ret);
    rc = capffi_fn_call(fn, c->call.vals, &ret);
    if (rc != CAPFFI_OK)
        bench_die_capffi(c->ctx, "capffi_fn_call", rc);
    check_result(c, "capffi_fn_call",
                 c->rkind == R_F64    ? ret.f64
                 : c->rkind == R_VOID ? 0
                                      : (double)ret.i64);
}

/* Call every variant once and check what it returns. */
static void
check_case(struct bcase *c)
{
    union bench_rbuf r;

    switch (c->rkind) {
    case R_VOID:
        p_nop();
        check_result(c, "a direct call", 0);
        break;
    case R_I32:
        check_result(c, "a direct call",
                     p_add_i32(*(int32_t *)c->call.av_src[0],
                               *(int32_t *)c->call.av_src[1]));
        break;
    case R_F64:
        check_result(
            c, "a direct call",
            p_mixed6(
                *(int32_t *)c->call.av_src[0], *(double *)c->call.av_src[1],
                *(int64_t *)c->call.av_src[2], *(float *)c->call.av_src[3],
                *(uint8_t *)c->call.av_src[4], *(double *)c->call.av_src[5]));
        break;
    case R_I64:
        check_result(c, "a direct call",
                     (double)p_big_sum(*(struct fx_big *)c->call.av_src[0]));
        break;
    }

    memset(&r, 0, sizeof r);
    bench_call_once(&c->call, &r);
    check_result(c, "ffi_call", rbuf_value(c, &r));

    check_capffi(c, c->fn);
    check_capffi(c, c->fn_ffi);
}

/* ---- statistics and output --------------------------------------------- */

static void
compute(const struct bcase *c, size_t samples, struct vstat st[N_VARIANTS])
{
    for (int v = 0; v < N_VARIANTS; v++)
        st[v].median_ns = bench_median(c->s[v], samples, &st[v].min_ns);
    double base = st[V_FFI].median_ns;
    for (int v = 0; v < N_VARIANTS; v++) {
        double q[SAMPLES_MAX];
        for (size_t k = 0; k < samples; k++)
            q[k] = c->s[V_FFI][k] > 0 ? c->s[v][k] / c->s[V_FFI][k] : 0;
        st[v].ratio = base > 0 ? st[v].median_ns / base : 0;
        st[v].paired = bench_median(q, samples, NULL);
    }
}

/* Prints one signature's rows; adds the budgets exceeded to over[0]
 * (default path) and over[1] (CAPFFI_FN_LIBFFI). */
static void
print_case(const struct bcase *c, size_t samples, int over[2])
{
    struct vstat st[N_VARIANTS];
    compute(c, samples, st);
    printf("%s %s\n", c->symbol, c->signature);
    for (int v = 0; v < N_VARIANTS; v++) {
        char verdict[32] = "";
        double budget =
            v == V_RAW || v == V_RAW_LIBFFI ? BUDGET_RAW : BUDGET_VALUE;
        if (v != V_DIRECT && v != V_FFI) {
            bool ok = st[v].ratio <= budget;
            over[v >= V_RAW_LIBFFI] += !ok;
            snprintf(verdict, sizeof verdict, "<=%.2fx %s", budget,
                     ok ? "PASS" : "over");
        }
        printf("  %-32s %7.2f %7.2f %6.2fx %6.2fx%s%s\n", variant_names[v],
               st[v].median_ns, st[v].min_ns, st[v].ratio, st[v].paired,
               verdict[0] ? "  " : "", verdict);
    }
    printf("  %-32s %7.2f\n", "capffi_fn_call - ffi_call (ns)",
           st[V_VALUE].median_ns - st[V_FFI].median_ns);
}

static void
print_table(struct bcase *const *cases, size_t n, size_t samples, size_t iters)
{
    int over[2] = { 0, 0 };
    printf("\n%zu samples per variant, %zu calls per sample, variants "
           "interleaved;\nper-call time = sample time / calls\n\n",
           samples, iters);
    printf("  %-32s %7s %7s %7s %7s  %s\n", "signature / variant", "med ns",
           "min ns", "x ffi", "paired", "budget");
    printf("  %-32s %7s %7s %7s %7s  %s\n", "--------------------------------",
           "-------", "-------", "-------", "-------", "------------");
    for (size_t i = 0; i < n; i++)
        print_case(cases[i], samples, over);
    printf("\n\"x ffi\" is the median over the ffi_call median; \"paired\" "
           "the median of the\nper-sample ratios to ffi_call. Budgets "
           "exceeded: %d on the default path,\n%d with CAPFFI_FN_LIBFFI "
           "(informational: the exit status does not depend\non them).\n",
           over[0], over[1]);
}

/* ---- main ------------------------------------------------------------- */

int
main(int argc, char **argv)
{
    bench_name = "bench_call";
    bool quick;
    const char *only;
    const char *path = bench_args_fixture(argc, argv, &quick, &only);
    size_t samples = quick ? SAMPLES_QUICK : SAMPLES_FULL;
    size_t iters = quick ? ITERS_QUICK : ITERS_FULL;

    printf("capffi %s call benchmark, libffi %s%s\nfixture: %s\n",
           capffi_version(), BENCH_LIBFFI_VERSION,
           quick ? " (--quick: rough numbers)" : "", path);
    fflush(stdout);

    capffi_token tok;
    capffi_ctx *ctx = bench_ctx_new(&tok, NULL);
    capffi_lib *lib = bench_lib_open(ctx, &tok, path);

    static struct natives nat;
    static struct bcase all[4];
    init_cases(all, &nat);
    struct bcase *cases[4];
    size_t n = 0;
    for (size_t i = 0; i < 4; i++) {
        struct bcase *c = &all[i];
        if (only && strcmp(only, c->symbol) != 0)
            continue;
        c->ctx = ctx;
        prepare_cif(c);
        c->fn = bench_lib_bind(ctx, lib, c->symbol, c->signature, 0);
        c->fn_ffi =
            bench_lib_bind(ctx, lib, c->symbol, c->signature, CAPFFI_FN_LIBFFI);
        check_case(c);
        cases[n++] = c;
    }
    if (n == 0)
        bench_die("--only names none of fx_nop, fx_add_i32, fx_mixed6, "
                  "fx_big_sum");

    /* Round -1 is the warm-up: caches, branch predictors, clocks. */
    for (int k = -1; k < (int)samples; k++) {
        for (size_t i = 0; i < n; i++) {
            for (int j = 0; j < N_VARIANTS; j++) {
                enum variant v =
                    (enum variant)((unsigned)(j + k + 1) % N_VARIANTS);
                double t = run_variant(cases[i], v, iters);
                if (k >= 0)
                    cases[i]->s[v][k] = t;
            }
        }
    }

    print_table(cases, n, samples, iters);

    for (size_t i = 0; i < n; i++)
        capffi_fn_free(cases[i]->fn), capffi_fn_free(cases[i]->fn_ffi);
    capffi_lib_close(lib);
    capffi_ctx_free(ctx);

    if (fflush(stdout) != 0 || ferror(stdout))
        bench_die("writing to stdout failed");
    return EXIT_SUCCESS;
}
