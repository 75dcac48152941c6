/*
 * bench_obj.c - what SafeFFI instances cost (capffi/obj.h): a field read
 * and written by name and through a precompiled accessor, next to a view
 * access and a direct C access of the same field; then libc's qsort of
 * 10^5 random i32 bound with capffi, with a typed comparator against the
 * view-based one a host without SafeFFI writes.
 *
 * Fields. A class Point = { x: i32, y: i32, z: f64 } laid out as
 * struct point. For the fields y (i32) and z (f64), per access, in
 * nanoseconds:
 *
 *   1. direct: a load or store of the field of a struct point through a
 *      function the compiler cannot inline (as bench_view's memcpy
 *      baseline), so each access is a real one;
 *   2. view: capffi_view_get / capffi_view_set at the field's offset, on a
 *      view of that struct made through a token (read and write);
 *   3. accessor: capffi_obj_read / capffi_obj_write with an accessor
 *      compiled once (capffi_obj_accessor) on a capffi_obj_new instance;
 *   4. by name: capffi_obj_get / capffi_obj_set with the path.
 *
 * Samples interleave the variants (each round starts with a different
 * one); one warm-up round is discarded; the table gives the median and
 * minimum per access and the ratios of medians accessor/view,
 * accessor/direct and by-name/accessor. Every access's status is checked.
 *
 * qsort. The same N random i32 (one seed) sorted by libc's qsort, bound
 * through capffi from "libc.so.6", three ways:
 *
 *   typed: qsort bound as (*[$1]i32, usize, usize, function) -> void on a
 *      capffi_obj_new("[N]i32") instance, with a callback
 *      (*i32, *i32) -> i32 whose handler reads both arguments with
 *      capffi_obj_read through one accessor;
 *   view-based: qsort bound as (pointer, usize, usize, function) -> void
 *      on a C array, with a callback (pointer, pointer) -> i32 whose
 *      handler makes a 4-byte view of each argument through a token with
 *      the read and pointer rights (capffi_view_new, audited), reads it
 *      with capffi_view_get and frees it: what a host without SafeFFI
 *      does to read through the pointers it is given;
 *   C: qsort called directly with a C comparator: the baseline.
 *
 * Each sort's time covers the qsort call only (the array is refilled
 * before, untimed); each result is compared with the C sort's and the
 * program aborts if they differ or a callback reported a failure. Rounds
 * interleave the variants after a warm-up round; the table gives median
 * and minimum per sort, per comparison (the C comparator counts them) and
 * the ratios view-based/typed and typed/C.
 *
 * Nothing is asserted about time: the program exits 0 whatever it
 * measures, 1 on any failure, 2 on a usage error.
 *
 * Usage: bench_obj [--quick] [N]
 *   N        elements to sort (default 100000).
 *   --quick  few samples and a 10^4-element sort, a smoke test for CI.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

static capffi_ctx *ctx;

#define CHECK(what, expr)                                                      \
    do {                                                                       \
        int rc_ = (expr);                                                      \
        if (rc_)                                                               \
            bench_die_capffi(ctx, what, rc_);                                  \
    } while (0)

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
median_of(double *v, int n, double *min)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *min = v[0];
    return v[n / 2];
}

/* ---- fields ---------------------------------------------------------------
 */

struct point {
    int32_t x;
    int32_t y;
    double z;
};

static struct point pt = { 1, 2, 3.5 };

/* Out of line, so the compiler emits a real access per call. */
static __attribute__((noinline)) int32_t
direct_get_y(const struct point *p)
{
    __asm__ volatile("" ::: "memory");
    return p->y;
}

static __attribute__((noinline)) void
direct_set_y(struct point *p, int32_t v)
{
    p->y = v;
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) double
direct_get_z(const struct point *p)
{
    __asm__ volatile("" ::: "memory");
    return p->z;
}

static __attribute__((noinline)) void
direct_set_z(struct point *p, double v)
{
    p->z = v;
    __asm__ volatile("" ::: "memory");
}

enum {
    F_DIRECT_GET,
    F_VIEW_GET,
    F_ACC_READ,
    F_NAME_GET,
    F_DIRECT_SET,
    F_VIEW_SET,
    F_ACC_WRITE,
    F_NAME_SET,
    N_FVARIANTS
};

static const char *const fvariant_name[N_FVARIANTS] = {
    "direct C load",           "capffi_view_get",
    "capffi_obj_read (acc.)",  "capffi_obj_get (name)",
    "direct C store",          "capffi_view_set",
    "capffi_obj_write (acc.)", "capffi_obj_set (name)",
};

/* One field measured: where it is and how each variant reaches it. */
struct field {
    const char *path; /* "y" */
    const char *type; /* "i32", for the view */
    bool is_f64;      /* which member of capffi_value */
    size_t offset;    /* in struct point */
    capffi_accessor acc;
};

static volatile int64_t sink_i64;
static volatile double sink_f64;

/* Per-access nanoseconds of one variant over iters accesses. */
static double
run_field(int variant, const struct field *f, capffi_view *v, capffi_obj *o,
          long iters)
{
    uint64_t acc_i = 0; /* wraps: f64 bits are added too */
    double acc_f = 0;
    capffi_value x;
    uint64_t t0 = bench_now_ns();
    switch (variant) {
    case F_DIRECT_GET:
        if (f->is_f64)
            for (long i = 0; i < iters; i++)
                acc_f += direct_get_z(&pt);
        else
            for (long i = 0; i < iters; i++)
                acc_i += (uint64_t)direct_get_y(&pt);
        break;
    case F_DIRECT_SET:
        if (f->is_f64)
            for (long i = 0; i < iters; i++)
                direct_set_z(&pt, (double)i);
        else
            for (long i = 0; i < iters; i++)
                direct_set_y(&pt, (int32_t)i);
        break;
    case F_VIEW_GET:
        for (long i = 0; i < iters; i++) {
            CHECK("capffi_view_get",
                  capffi_view_get(&x, v, f->offset, f->type));
            acc_i += x.u64;
        }
        break;
    case F_VIEW_SET:
        for (long i = 0; i < iters; i++) {
            if (f->is_f64)
                x.f64 = (double)i;
            else
                x.i64 = (int32_t)i;
            CHECK("capffi_view_set", capffi_view_set(v, f->offset, f->type, x));
        }
        break;
    case F_ACC_READ:
        for (long i = 0; i < iters; i++) {
            CHECK("capffi_obj_read", capffi_obj_read(&x, o, &f->acc));
            acc_i += x.u64;
        }
        break;
    case F_ACC_WRITE:
        for (long i = 0; i < iters; i++) {
            if (f->is_f64)
                x.f64 = (double)i;
            else
                x.i64 = (int32_t)i;
            CHECK("capffi_obj_write", capffi_obj_write(o, &f->acc, x));
        }
        break;
    case F_NAME_GET:
        for (long i = 0; i < iters; i++) {
            CHECK("capffi_obj_get", capffi_obj_get(&x, o, f->path));
            acc_i += x.u64;
        }
        break;
    default:
        for (long i = 0; i < iters; i++) {
            if (f->is_f64)
                x.f64 = (double)i;
            else
                x.i64 = (int32_t)i;
            CHECK("capffi_obj_set", capffi_obj_set(o, f->path, x));
        }
    }
    uint64_t t1 = bench_now_ns();
    sink_i64 = (int64_t)acc_i;
    sink_f64 = acc_f;
    return bench_per_call(t0, t1, (size_t)iters);
}

/* Each variant once, and its result checked, before anything is timed. */
static void
check_field(const struct field *f, capffi_view *v, capffi_obj *o)
{
    capffi_value in, out[3];
    if (f->is_f64)
        in.f64 = 6.25;
    else
        in.i64 = -77;
    CHECK("capffi_view_set", capffi_view_set(v, f->offset, f->type, in));
    CHECK("capffi_obj_set", capffi_obj_set(o, f->path, in));
    CHECK("capffi_view_get", capffi_view_get(&out[0], v, f->offset, f->type));
    CHECK("capffi_obj_read", capffi_obj_read(&out[1], o, &f->acc));
    CHECK("capffi_obj_get", capffi_obj_get(&out[2], o, f->path));
    for (int k = 0; k < 3; k++) {
        bool same = f->is_f64 ? out[k].f64 == in.f64 : out[k].i64 == in.i64;
        if (!same)
            bench_die("a field read gave another value than was written");
    }
    bool direct =
        f->is_f64 ? direct_get_z(&pt) == in.f64 : direct_get_y(&pt) == in.i64;
    if (!direct)
        bench_die("the view and the struct disagree");
}

static void
bench_fields(const capffi_token *tok, bool quick)
{
    int samples = quick ? 5 : SAMPLES_FULL;
    long iters = quick ? 20000 : 2000000;

    CHECK("capffi_type_define",
          capffi_type_define(ctx, "Point", "{ x: i32, y: i32, z: f64 }"));
    size_t size;
    CHECK("capffi_type_size", capffi_type_size(&size, NULL, ctx, "Point"));
    if (size != sizeof(struct point))
        bench_die("Point is not laid out as struct point");
    capffi_obj *o;
    CHECK("capffi_obj_new", capffi_obj_new(&o, ctx, "Point"));
    capffi_view *v;
    CHECK("capffi_view_new",
          capffi_view_new(&v, ctx, tok, &pt, sizeof pt,
                          CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE));

    struct field fields[] = {
        { "y", "i32", false, offsetof(struct point, y), { 0 } },
        { "z", "f64", true, offsetof(struct point, z), { 0 } },
    };
    printf("field access, ns per access (median / min over %d samples of "
           "%ld)\n\n",
           samples, iters);
    printf("| field | variant | median | min |\n");
    printf("|-------|---------|-------:|----:|\n");
    double ratios[2][6];
    for (size_t fi = 0; fi < sizeof fields / sizeof fields[0]; fi++) {
        struct field *f = &fields[fi];
        size_t off;
        CHECK("capffi_type_offset",
              capffi_type_offset(&off, ctx, "Point", f->path));
        if (off != f->offset)
            bench_die("Point's field is not where struct point has it");
        CHECK("capffi_obj_accessor", capffi_obj_accessor(&f->acc, o, f->path));
        check_field(f, v, o);

        double t[N_FVARIANTS][SAMPLES_FULL];
        for (int s = -1; s < samples; s++) { /* round -1 warms up */
            for (int k = 0; k < N_FVARIANTS; k++) {
                int var = (k + (s < 0 ? 0 : s)) % N_FVARIANTS;
                double ns = run_field(var, f, v, o, s < 0 ? iters / 10 : iters);
                if (s >= 0)
                    t[var][s] = ns;
            }
        }
        double med[N_FVARIANTS], min[N_FVARIANTS];
        for (int var = 0; var < N_FVARIANTS; var++) {
            med[var] = median_of(t[var], samples, &min[var]);
            printf("| %s (%s) | %s | %.2f | %.2f |\n", f->path, f->type,
                   fvariant_name[var], med[var], min[var]);
        }
        ratios[fi][0] = med[F_ACC_READ] / med[F_VIEW_GET];
        ratios[fi][1] = med[F_ACC_READ] / med[F_DIRECT_GET];
        ratios[fi][2] = med[F_NAME_GET] / med[F_ACC_READ];
        ratios[fi][3] = med[F_ACC_WRITE] / med[F_VIEW_SET];
        ratios[fi][4] = med[F_ACC_WRITE] / med[F_DIRECT_SET];
        ratios[fi][5] = med[F_NAME_SET] / med[F_ACC_WRITE];
    }
    printf("\nratios of medians\n\n");
    printf("| field | accessor/view | accessor/direct | by-name/accessor |\n");
    printf("|-------|--------------:|----------------:|-----------------:|\n");
    for (size_t fi = 0; fi < sizeof fields / sizeof fields[0]; fi++)
        for (int w = 0; w < 2; w++)
            printf("| %s %s | %.2fx | %.2fx | %.2fx |\n", fields[fi].path,
                   w ? "write" : "read", ratios[fi][3 * w],
                   ratios[fi][3 * w + 1], ratios[fi][3 * w + 2]);
    printf("\ntarget: accessor read <= 2x view read: %s (%.2fx, %.2fx)\n",
           ratios[0][0] <= 2 && ratios[1][0] <= 2 ? "met" : "NOT met",
           ratios[0][0], ratios[1][0]);
    capffi_view_free(v);
    capffi_obj_free(o);
}

/* ---- qsort ------------------------------------------------------------- */

enum { Q_C, Q_TYPED, Q_VIEW, N_QVARIANTS };

static const char *const qvariant_name[N_QVARIANTS] = {
    "C qsort, C comparator",
    "typed: *[$1]i32, (*i32, *i32) cb",
    "view-based: pointer, views in cb",
};

static unsigned long c_compares;

static int
c_cmp(const void *pa, const void *pb)
{
    int32_t a, b;
    memcpy(&a, pa, sizeof a);
    memcpy(&b, pb, sizeof b);
    c_compares++;
    return (a > b) - (a < b);
}

/* The typed comparator: both arguments are instances of i32. */
static void
cmp_typed(void *payload, const capffi_value *args, capffi_value *ret)
{
    const capffi_accessor *acc = payload;
    capffi_value a, b;
    if (capffi_obj_read(&a, args[0].obj, acc) ||
        capffi_obj_read(&b, args[1].obj, acc)) {
        capffi_cb_fail("capffi_obj_read failed");
        return;
    }
    ret->i64 = (a.i64 > b.i64) - (a.i64 < b.i64);
}

/* The view-based comparator: a view per argument, read, freed. */
struct view_cmp {
    capffi_ctx *ctx;
    const capffi_token *tok; /* read and pointer rights */
};

static int
read_through_view(capffi_value *out, const struct view_cmp *c, void *p)
{
    capffi_view *v;
    int rc = capffi_view_new(&v, c->ctx, c->tok, p, sizeof(int32_t),
                             CAPFFI_VIEW_READ);
    if (rc)
        return rc;
    rc = capffi_view_get(out, v, 0, "i32");
    capffi_view_free(v);
    return rc;
}

static void
cmp_view(void *payload, const capffi_value *args, capffi_value *ret)
{
    const struct view_cmp *c = payload;
    capffi_value a, b;
    if (read_through_view(&a, c, args[0].p) ||
        read_through_view(&b, c, args[1].p)) {
        capffi_cb_fail("a read through a view failed");
        return;
    }
    ret->i64 = (a.i64 > b.i64) - (a.i64 < b.i64);
}

struct sorts {
    size_t n;
    int32_t *input;  /* the random values, never sorted */
    int32_t *want;   /* sorted by the C variant */
    int32_t *plain;  /* what the C and view-based variants sort */
    capffi_obj *arr; /* what the typed variant sorts */
    capffi_fn *qs_typed, *qs_view;
    capffi_cb *cb_typed, *cb_view;
    unsigned long compares; /* of the C sort of input */
};

static void
fill_obj(capffi_obj *arr, const int32_t *src, size_t n)
{
    char path[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "[%zu]", i);
        CHECK("capffi_obj_set",
              capffi_obj_set(arr, path, (capffi_value){ .i64 = src[i] }));
    }
}

static void
check_obj(const capffi_obj *arr, const int32_t *want, size_t n)
{
    char path[32];
    capffi_value x;
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "[%zu]", i);
        CHECK("capffi_obj_get", capffi_obj_get(&x, arr, path));
        if (x.i64 != want[i])
            bench_die("the typed qsort did not sort the array");
    }
}

static void
check_status(capffi_cb *cb, const char *what)
{
    capffi_cb_status st;
    CHECK("capffi_cb_take_status", capffi_cb_take_status(&st, cb));
    if (st.first != CAPFFI_OK || st.failures) {
        fprintf(stderr, "%s: the %s comparator failed %llu times: %s: %s\n",
                bench_name, what, (unsigned long long)st.failures,
                capffi_err_name(st.first), st.detail);
        exit(EXIT_FAILURE);
    }
}

/* One sort of s->input by one variant, checked: seconds of the qsort. */
static double
run_sort(struct sorts *s, int variant)
{
    capffi_value a[4];
    uint64_t t0, t1;
    switch (variant) {
    case Q_C:
        memcpy(s->plain, s->input, s->n * sizeof *s->plain);
        c_compares = 0;
        t0 = bench_now_ns();
        qsort(s->plain, s->n, sizeof *s->plain, c_cmp);
        t1 = bench_now_ns();
        s->compares = c_compares;
        if (memcmp(s->plain, s->want, s->n * sizeof *s->plain) != 0)
            bench_die("the C qsort did not sort the array");
        break;
    case Q_TYPED:
        fill_obj(s->arr, s->input, s->n);
        a[0].obj = s->arr;
        a[1].u64 = s->n;
        a[2].u64 = sizeof(int32_t);
        a[3].cb = s->cb_typed;
        t0 = bench_now_ns();
        CHECK("qsort (typed)", capffi_fn_call(s->qs_typed, a, NULL));
        t1 = bench_now_ns();
        check_status(s->cb_typed, "typed");
        check_obj(s->arr, s->want, s->n);
        break;
    default:
        memcpy(s->plain, s->input, s->n * sizeof *s->plain);
        a[0].p = s->plain;
        a[1].u64 = s->n;
        a[2].u64 = sizeof(int32_t);
        a[3].cb = s->cb_view;
        t0 = bench_now_ns();
        CHECK("qsort (view-based)", capffi_fn_call(s->qs_view, a, NULL));
        t1 = bench_now_ns();
        check_status(s->cb_view, "view-based");
        if (memcmp(s->plain, s->want, s->n * sizeof *s->plain) != 0)
            bench_die("the view-based qsort did not sort the array");
    }
    return (double)(t1 - t0) / 1e9;
}

static void
bench_qsort(const capffi_token *tok, size_t n, bool quick)
{
    int samples = quick ? 1 : 5;
    struct sorts s = { .n = n };
    s.input = malloc(n * sizeof *s.input);
    s.want = malloc(n * sizeof *s.want);
    s.plain = malloc(n * sizeof *s.plain);
    if (!s.input || !s.want || !s.plain)
        bench_die("out of memory");
    bench_fill_i32(s.input, n);
    memcpy(s.want, s.input, n * sizeof *s.want);
    qsort(s.want, n, sizeof *s.want, c_cmp);

    char cls[32];
    snprintf(cls, sizeof cls, "[%zu]i32", n);
    CHECK("capffi_obj_new", capffi_obj_new(&s.arr, ctx, cls));

    capffi_lib *libc;
    CHECK("capffi_lib_open libc.so.6",
          capffi_lib_open(&libc, ctx, tok, "libc.so.6", 0));
    CHECK("capffi_lib_bind qsort (typed)",
          capffi_lib_bind(&s.qs_typed, libc, "qsort",
                          "(*[$1]i32, usize, usize, function) -> void", 0));
    CHECK("capffi_lib_bind qsort (pointer)",
          capffi_lib_bind(&s.qs_view, libc, "qsort",
                          "(pointer, usize, usize, function) -> void", 0));

    /* One accessor for every i32 instance a comparison receives. */
    capffi_obj *one;
    capffi_accessor acc;
    CHECK("capffi_obj_new i32", capffi_obj_new(&one, ctx, "i32"));
    CHECK("capffi_obj_accessor", capffi_obj_accessor(&acc, one, ""));
    CHECK("capffi_cb_new (typed)",
          capffi_cb_new(&s.cb_typed, ctx, tok, "(*i32, *i32) -> i32", cmp_typed,
                        &acc, 0));

    capffi_token vtok;
    capffi_scope narrow = { .rights =
                                CAPFFI_RIGHT_READ | CAPFFI_RIGHT_POINTER };
    CHECK("capffi_token_attenuate",
          capffi_token_attenuate(&vtok, ctx, tok, &narrow));
    struct view_cmp vc = { ctx, &vtok };
    CHECK("capffi_cb_new (view-based)",
          capffi_cb_new(&s.cb_view, ctx, tok, "(pointer, pointer) -> i32",
                        cmp_view, &vc, 0));

    double t[N_QVARIANTS][SAMPLES_FULL];
    for (int r = -1; r < samples; r++) { /* round -1 warms up */
        for (int k = 0; k < N_QVARIANTS; k++) {
            int var = (k + (r < 0 ? 0 : r)) % N_QVARIANTS;
            double sec = run_sort(&s, var);
            if (r >= 0)
                t[var][r] = sec;
        }
    }
    printf("\nqsort of %zu random i32 (libc qsort bound through capffi; "
           "median / min over %d rounds; %lu comparisons)\n\n",
           n, samples, s.compares);
    printf("| variant | ms per sort | min ms | ns per comparison |\n");
    printf("|---------|------------:|-------:|------------------:|\n");
    double med[N_QVARIANTS], min[N_QVARIANTS];
    for (int var = 0; var < N_QVARIANTS; var++) {
        med[var] = median_of(t[var], samples, &min[var]);
        printf("| %s | %.2f | %.2f | %.1f |\n", qvariant_name[var],
               med[var] * 1e3, min[var] * 1e3,
               med[var] * 1e9 / (double)s.compares);
    }
    double speedup = med[Q_VIEW] / med[Q_TYPED];
    printf("\nview-based/typed: %.2fx; typed/C: %.2fx\n", speedup,
           med[Q_TYPED] / med[Q_C]);
    printf("target: typed >= 3x faster than view-based: %s\n",
           speedup >= 3 ? "met" : "NOT met");

    capffi_cb_close(s.cb_typed);
    capffi_cb_close(s.cb_view);
    capffi_obj_free(one);
    capffi_obj_free(s.arr);
    capffi_lib_close(libc);
    free(s.input);
    free(s.want);
    free(s.plain);
}

int
main(int argc, char **argv)
{
    bench_name = "bench_obj";
    bool quick;
    size_t n = bench_args_n(argc, argv, &quick, INT32_MAX / 4);

    capffi_options o = { .flags = CAPFFI_OPT_ALLOW_ALL };
    CHECK("capffi_ctx_new", capffi_ctx_new(&ctx, &o));
    capffi_token tok;
    CHECK("capffi_token_new", capffi_token_new(&tok, ctx, "bench", NULL));
    printf("bench_obj: capffi %s\n\n", capffi_version());
    bench_fields(&tok, quick);
    bench_qsort(&tok, n, quick);
    capffi_ctx_free(ctx);
    return 0;
}
