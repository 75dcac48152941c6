/*
 * bench_cb.c - what invoking a callback costs, next to libffi itself.
 *
 * Same thread. A C loop calls a function pointer, as native code calls a
 * callback, for two signatures:
 *
 *   add    (i32, i32) -> i32                       returns a + b
 *   mixed6 (i32, f64, i64, f32, u8, f64) -> f64    returns the sum
 *
 * and for each, per call, in nanoseconds:
 *
 *   1. a plain C function: the floor;
 *   2. a raw libffi closure (ffi_closure_alloc, ffi_prep_closure_loc)
 *      whose handler reads its arguments from libffi's array and writes
 *      the result widened as libffi requires: the baseline the ratios are
 *      taken against;
 *   3. a capffi callback (capffi_cb_new), whose handler reads capffi_value
 *      arguments and sets a capffi_value result.
 *
 * The budget is capffi <= 1.3x the libffi closure's median. Every variant
 * is called through the same loop, which loads the pointer from a volatile
 * variable before each call so the compiler can neither inline nor hoist
 * it. Samples interleave the variants, starting with a different one each
 * round, so slow drifts of the machine hit them alike; one warm-up round
 * is discarded. The table gives the median and minimum per-call time of
 * each variant, the ratio of its median to the closure's ("x clos") and
 * the median of per-round ratios ("paired"). Each variant's result is
 * checked once before timing and summed into a volatile while timed.
 *
 * Across threads. A thread of this program calls a CAPFFI_CB_THREADSAFE
 * callback ROUNDS times, timing each call (the round trip: queued to the
 * owner, run there, result back), while the owner thread runs
 * capffi_ctx_poll(ctx, 100) in a loop: p50, p90, p99 and the maximum. A
 * second measurement does the same in a context made with
 * CAPFFI_OPT_LEND_OWNER while the owner is blocked inside a native call
 * (made through capffi_fn_call) that joins the thread: the thread then
 * runs the handler itself, with the lent host.
 *
 * Usage: bench_cb [--quick]
 *   --quick  fewer samples, calls and rounds, for a smoke test in CI. Its
 *            numbers are rough.
 *
 * Exits 0 on success, whatever the budget says (a benchmark never fails
 * on time); on any failure, prints why to stderr and exits 1 (2 for a
 * usage error).
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ffi.h>

#include <capffi.h>

#include "bench_ffi.h"
#include "bench_util.h"

/* Cross-thread round trips, full and --quick, after WARMUP untimed ones. */
#define ROUNDS_FULL 20000u
#define ROUNDS_QUICK 1000u
#define WARMUP 500u

/* The budget, as a ratio to the libffi closure's median. */
#define BUDGET 1.3

enum variant { V_DIRECT, V_CLOSURE, V_CAPFFI, N_VARIANTS };

static const char *const variant_names[N_VARIANTS] = {
    "plain C function",
    "libffi closure (raw handler)",
    "capffi callback",
};

/* ---- the functions called ----------------------------------------------- */

/* add: bench_add_i32, bench_raw_add and bench_cb_add (bench_util.c,
 * bench_ffi.c). */
typedef int32_t (*add_fn)(int32_t, int32_t);
typedef double (*mixed_fn)(int32_t, double, int64_t, float, uint8_t, double);

static double
c_mixed(int32_t a, double b, int64_t c, float d, uint8_t e, double f)
{
    return a + b + (double)c + d + e + f;
}

/* Raw libffi handler: arguments from avalue. */
static void
raw_mixed(ffi_cif *cif, void *ret, void **args, void *user)
{
    (void)cif;
    (void)user;
    *(double *)ret = *(const int32_t *)args[0] + *(const double *)args[1] +
                     (double)*(const int64_t *)args[2] +
                     *(const float *)args[3] + *(const uint8_t *)args[4] +
                     *(const double *)args[5];
}

/* capffi handler. */
static void
cb_mixed(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    ret->f64 = (double)args[0].i64 + args[1].f64 + (double)args[2].i64 +
               args[3].f32 + (double)args[4].u64 + args[5].f64;
}

/* ---- the timed loops ----------------------------------------------------- */

/* The mixed6 loop calls through this, reloaded before every call; the
 * add loop is bench_loop_add. */
static mixed_fn volatile p_mixed;
static volatile double sink_f64;

static __attribute__((noinline)) double
loop_mixed(void *code, size_t iters)
{
    memcpy((void *)&p_mixed, &code, sizeof code);
    double acc = 0;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++)
        acc += p_mixed(1, 2.5, 3, 0.5f, 4, 8.0);
    uint64_t t1 = bench_now_ns();
    sink_f64 = acc;
    return bench_per_call(t0, t1, iters);
}

/* One signature and its three variants. */
struct bcase {
    const char *name;
    const char *signature;
    double (*loop)(void *code, size_t iters);
    void *code[N_VARIANTS];
    double s[N_VARIANTS][SAMPLES_MAX];
};

/* ---- statistics -----------------------------------------------------------
 */

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* ---- same thread -----------------------------------------------------------
 */

static ffi_type *mixed_types[] = { &ffi_type_sint32, &ffi_type_double,
                                   &ffi_type_sint64, &ffi_type_float,
                                   &ffi_type_uint8,  &ffi_type_double };

static void
check_results(const struct bcase *add, const struct bcase *mixed)
{
    for (int v = 0; v < N_VARIANTS; v++) {
        add_fn a;
        mixed_fn m;
        memcpy(&a, &add->code[v], sizeof a);
        memcpy(&m, &mixed->code[v], sizeof m);
        if (a(40, 2) != 42 || a(INT32_MAX, 1) != INT32_MIN)
            bench_die("an add variant returned a wrong result");
        if (m(1, 2.5, 3, 0.5f, 4, 8.0) != 19.0)
            bench_die("a mixed6 variant returned a wrong result");
    }
}

static void
measure(struct bcase *cases, size_t ncases, size_t samples, size_t iters)
{
    for (size_t round = 0; round <= samples; round++) {
        for (size_t k = 0; k < ncases; k++) {
            struct bcase *c = &cases[k];
            for (int j = 0; j < N_VARIANTS; j++) {
                enum variant v =
                    (enum variant)((round + (size_t)j) % N_VARIANTS);
                double ns = c->loop(c->code[v], iters);
                if (round > 0) /* round 0 warms up */
                    c->s[v][round - 1] = ns;
            }
        }
    }
}

static int
report_same_thread(const struct bcase *cases, size_t ncases, size_t samples)
{
    int over = 0;
    printf("  %-34s %7s %7s %7s %7s  %s\n", "signature / variant", "med ns",
           "min ns", "x clos", "paired", "budget");
    printf("  %-34s %7s %7s %7s %7s  %s\n",
           "----------------------------------", "-------", "-------",
           "-------", "-------", "------------");
    for (size_t k = 0; k < ncases; k++) {
        const struct bcase *c = &cases[k];
        printf("%s %s\n", c->name, c->signature);
        double base = bench_median(c->s[V_CLOSURE], samples, NULL);
        for (int v = 0; v < N_VARIANTS; v++) {
            double ratios[SAMPLES_MAX], min;
            for (size_t i = 0; i < samples; i++)
                ratios[i] = c->s[v][i] / c->s[V_CLOSURE][i];
            double med = bench_median(c->s[v], samples, &min);
            double ratio = med / base;
            printf("  %-34s %7.2f %7.2f %6.2fx %6.2fx", variant_names[v], med,
                   min, ratio, bench_median(ratios, samples, NULL));
            if (v == V_CAPFFI) {
                bool ok = ratio <= BUDGET;
                over += !ok;
                printf("  <=%.2fx %s", BUDGET, ok ? "PASS" : "over");
            }
            printf("\n");
        }
        printf("  %-34s %7.2f\n", "capffi - closure (ns)",
               bench_median(c->s[V_CAPFFI], samples, NULL) - base);
    }
    return over;
}

/* ---- across threads --------------------------------------------------------
 */

static void
cb_next(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    ret->i64 = args[0].i64 + 1;
}

struct trip {
    int32_t (*code)(int32_t);
    size_t rounds;
    uint64_t *ns; /* rounds entries */
    atomic_int done;
    int bad; /* wrong results */
    pthread_t th;
};

static void *
trip_thread(void *arg)
{
    struct trip *t = arg;
    for (uint32_t i = 0; i < WARMUP; i++)
        t->bad += t->code((int32_t)i) != (int32_t)i + 1;
    for (size_t i = 0; i < t->rounds; i++) {
        uint64_t t0 = bench_now_ns();
        int32_t r = t->code((int32_t)i);
        uint64_t t1 = bench_now_ns();
        t->ns[i] = t1 - t0;
        t->bad += r != (int32_t)i + 1;
    }
    atomic_store(&t->done, 1);
    return NULL;
}

/* What the owner calls, through capffi, in the lent measurement. */
static void
join_trip(struct trip *t)
{
    pthread_join(t->th, NULL);
}

static void
percentiles(const char *what, struct trip *t)
{
    qsort(t->ns, t->rounds, sizeof *t->ns, cmp_u64);
    size_t n = t->rounds;
    printf("  %-34s %8.1f %8.1f %8.1f %8.1f\n", what, t->ns[n / 2] / 1e3,
           t->ns[n * 90 / 100] / 1e3, t->ns[n * 99 / 100] / 1e3,
           t->ns[n - 1] / 1e3);
}

/* A context that allows everything, with flags, and a token of it. */
static capffi_ctx *
context(capffi_token *tok, uint32_t flags)
{
    capffi_options o;
    memset(&o, 0, sizeof o);
    o.flags = CAPFFI_OPT_ALLOW_ALL | flags;
    return bench_ctx_new(tok, &o);
}

static void
trip_setup(struct trip *t, capffi_ctx *ctx, const capffi_token *tok,
           size_t rounds)
{
    memset(t, 0, sizeof *t);
    capffi_cb *cb = NULL;
    int rc = capffi_cb_new(&cb, ctx, tok, "(i32) -> i32", cb_next, NULL,
                           CAPFFI_CB_THREADSAFE);
    if (rc)
        bench_die_capffi(ctx, "capffi_cb_new", rc);
    void *code = capffi_cb_code(cb);
    memcpy(&t->code, &code, sizeof code);
    t->rounds = rounds;
    t->ns = calloc(rounds, sizeof *t->ns);
    if (!t->ns)
        bench_die("out of memory");
}

static void
across_threads(size_t rounds)
{
    printf("\n%zu round trips after %u untimed, per call, microseconds\n\n",
           rounds, WARMUP);
    printf("  %-34s %8s %8s %8s %8s\n", "thread-safe callback", "p50", "p90",
           "p99", "max");
    printf("  %-34s %8s %8s %8s %8s\n", "----------------------------------",
           "--------", "--------", "--------", "--------");

    /* The owner polls. */
    capffi_token tok;
    capffi_ctx *ctx = context(&tok, 0);
    struct trip t;
    trip_setup(&t, ctx, &tok, rounds);
    if (pthread_create(&t.th, NULL, trip_thread, &t) != 0)
        bench_die("pthread_create failed");
    while (!atomic_load(&t.done)) {
        int rc = capffi_ctx_poll(ctx, 100);
        if (rc && rc != CAPFFI_ETIMEDOUT)
            bench_die_capffi(ctx, "capffi_ctx_poll", rc);
    }
    pthread_join(t.th, NULL);
    if (t.bad)
        bench_die("a cross-thread invocation returned a wrong result");
    percentiles("owner in capffi_ctx_poll", &t);
    free(t.ns);
    capffi_ctx_free(ctx);

    /* The owner is blocked in a native call and lends the host. */
    ctx = context(&tok, CAPFFI_OPT_LEND_OWNER);
    trip_setup(&t, ctx, &tok, rounds);
    void (*jp)(struct trip *) = join_trip;
    void *jcode;
    memcpy(&jcode, &jp, sizeof jcode);
    capffi_fn *join = NULL;
    int rc =
        capffi_fn_from_ptr(&join, ctx, &tok, jcode, "(pointer) -> void", 0);
    if (rc)
        bench_die_capffi(ctx, "capffi_fn_from_ptr", rc);
    if (pthread_create(&t.th, NULL, trip_thread, &t) != 0)
        bench_die("pthread_create failed");
    capffi_value arg;
    arg.p = &t;
    rc = capffi_fn_call(join, &arg, NULL);
    if (rc)
        bench_die_capffi(ctx, "capffi_fn_call", rc);
    if (t.bad)
        bench_die("a lent invocation returned a wrong result");
    percentiles("owner blocked, lending the host", &t);
    free(t.ns);
    capffi_ctx_free(ctx);
}

int
main(int argc, char **argv)
{
    bench_name = "bench_cb";
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else {
            fprintf(stderr, "usage: bench_cb [--quick]\n");
            return 2;
        }
    }
    size_t samples = quick ? SAMPLES_QUICK : SAMPLES_FULL;
    size_t iters = quick ? ITERS_QUICK : ITERS_FULL;
    size_t rounds = quick ? ROUNDS_QUICK : ROUNDS_FULL;

    capffi_token tok;
    capffi_ctx *ctx = context(&tok, 0);

    struct bcase cases[2];
    memset(cases, 0, sizeof cases);
    cases[0].name = "add";
    cases[0].signature = "(i32, i32) -> i32";
    cases[0].loop = bench_loop_add;
    cases[1].name = "mixed6";
    cases[1].signature = "(i32, f64, i64, f32, u8, f64) -> f64";
    cases[1].loop = loop_mixed;

    add_fn da = bench_add_i32;
    mixed_fn dm = c_mixed;
    memcpy(&cases[0].code[V_DIRECT], &da, sizeof da);
    memcpy(&cases[1].code[V_DIRECT], &dm, sizeof dm);

    struct bench_closure ra, rm;
    bench_closure_new(&ra, 2, &ffi_type_sint32, bench_add_types, bench_raw_add);
    bench_closure_new(&rm, 6, &ffi_type_double, mixed_types, raw_mixed);
    cases[0].code[V_CLOSURE] = ra.code;
    cases[1].code[V_CLOSURE] = rm.code;

    capffi_cb *ca = NULL, *cm = NULL;
    int rc = capffi_cb_new(&ca, ctx, &tok, cases[0].signature, bench_cb_add,
                           NULL, 0);
    if (rc)
        bench_die_capffi(ctx, "capffi_cb_new", rc);
    rc = capffi_cb_new(&cm, ctx, &tok, cases[1].signature, cb_mixed, NULL, 0);
    if (rc)
        bench_die_capffi(ctx, "capffi_cb_new", rc);
    cases[0].code[V_CAPFFI] = capffi_cb_code(ca);
    cases[1].code[V_CAPFFI] = capffi_cb_code(cm);

    check_results(&cases[0], &cases[1]);

    printf("capffi %s callback benchmark, libffi %s\n\n", capffi_version(),
           BENCH_LIBFFI_VERSION);
    printf("%zu samples per variant, %zu calls per sample, variants "
           "interleaved;\nper-call time = sample time / calls\n\n",
           samples, iters);
    measure(cases, 2, samples, iters);
    int over = report_same_thread(cases, 2, samples);
    printf("\n\"x clos\" is the median over the libffi closure's median; "
           "\"paired\" the\nmedian of the per-sample ratios to it.");
    if (over)
        printf(" Budget exceeded: %d (informational: the exit\nstatus does "
               "not depend on it).",
               over);
    printf("\n");
    if (quick)
        printf("(--quick: rough numbers)\n");

    across_threads(rounds);

    bench_closure_free(&ra);
    bench_closure_free(&rm);
    capffi_ctx_free(ctx);
    return 0;
}
