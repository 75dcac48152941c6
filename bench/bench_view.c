/*
 * bench_view.c - what a typed access through a view costs, next to a raw
 * memcpy of the same width.
 *
 * For each width (u8, u32, u64, f64), per access, in nanoseconds:
 *
 *   1. memcpy of that many bytes from (or to) the same memory at the same
 *      offsets, through a function the compiler cannot inline, so each
 *      access is a real load or store: the baseline;
 *   2. capffi_view_get with the type name;
 *   3. capffi_view_set with the type name.
 *
 * The offsets walk the 4 KiB buffer, unaligned on purpose, the same in
 * every variant. Samples interleave the variants (each round starts with a
 * different one) so drifts of the machine hit them alike; the table shows
 * the median and minimum per access and the ratio of medians to memcpy.
 * The view is made through a token, as a host would: the cost measured is
 * the checks (liveness, access, bounds) and the type dispatch. Nothing is
 * asserted about time: the program exits 0 whatever it measures.
 *
 * Usage: bench_view [--quick]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#define MEM 4096

static unsigned char mem[MEM + 8];

/* Out of line, so the compiler emits a real access per call. */
static __attribute__((noinline)) void
load(void *dst, size_t off, size_t n)
{
    memcpy(dst, mem + off, n);
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void
store(size_t off, const void *src, size_t n)
{
    memcpy(mem + off, src, n);
    __asm__ volatile("" ::: "memory");
}

struct width {
    const char *type;
    size_t size;
};

enum { V_MEMCPY_GET, V_MEMCPY_SET, V_GET, V_SET, N_VARIANTS };

static const char *const variant_name[N_VARIANTS] = {
    "memcpy load", "memcpy store", "capffi_view_get", "capffi_view_set"
};

static capffi_ctx *ctx;

static double
run(int variant, capffi_view *v, const struct width *w, long iters)
{
    capffi_value x = { .u64 = 0 }, y;
    unsigned char tmp[8] = { 0 };
    uint64_t t0 = bench_now_ns();
    size_t off = 1;
    for (long i = 0; i < iters; i++) {
        int rc = 0;
        switch (variant) {
        case V_MEMCPY_GET:
            load(tmp, off, w->size);
            break;
        case V_MEMCPY_SET:
            store(off, tmp, w->size);
            break;
        case V_GET:
            rc = capffi_view_get(&y, v, off, w->type);
            break;
        default:
            rc = capffi_view_set(v, off, w->type, x);
        }
        if (rc)
            bench_die_capffi(ctx, "view access", rc);
        off = (off + 13) & (MEM - 1);
    }
    return (double)(bench_now_ns() - t0) / (double)iters;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
    bench_name = "bench_view";
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int samples = quick ? 5 : SAMPLES_FULL;
    long iters = quick ? 20000 : 2000000;

    capffi_options o = { .flags = CAPFFI_OPT_ALLOW_ALL };
    int rc = capffi_ctx_new(&ctx, &o);
    if (rc)
        bench_die_capffi(NULL, "capffi_ctx_new", rc);
    capffi_token tok;
    if ((rc = capffi_token_new(&tok, ctx, "bench", NULL)))
        bench_die_capffi(ctx, "capffi_token_new", rc);
    capffi_view *v;
    if ((rc = capffi_view_new(&v, ctx, &tok, mem, sizeof mem,
                              CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE)))
        bench_die_capffi(ctx, "capffi_view_new", rc);

    static const struct width widths[] = {
        { "u8", 1 }, { "u32", 4 }, { "u64", 8 }, { "f64", 8 }
    };
    printf("view access vs memcpy of the same width, ns per access "
           "(median / min over %d samples of %ld)\n\n",
           samples, iters);
    printf("| type | variant | median | min | ratio to memcpy |\n");
    printf("|------|---------|-------:|----:|----------------:|\n");
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        const struct width *w = &widths[wi];
        double t[N_VARIANTS][SAMPLES_FULL];
        for (int s = -1; s < samples; s++) { /* round -1 warms up */
            for (int k = 0; k < N_VARIANTS; k++) {
                int var = (k + (s < 0 ? 0 : s)) % N_VARIANTS;
                double ns = run(var, v, w, iters);
                if (s >= 0)
                    t[var][s] = ns;
            }
        }
        double med[N_VARIANTS], min[N_VARIANTS];
        for (int var = 0; var < N_VARIANTS; var++) {
            qsort(t[var], (size_t)samples, sizeof t[var][0], cmp_double);
            med[var] = t[var][samples / 2];
            min[var] = t[var][0];
        }
        for (int var = 0; var < N_VARIANTS; var++) {
            double base = var == V_GET || var == V_MEMCPY_GET
                              ? med[V_MEMCPY_GET]
                              : med[V_MEMCPY_SET];
            printf("| %s | %s | %.2f | %.2f | %.2fx |\n", w->type,
                   variant_name[var], med[var], min[var], med[var] / base);
        }
    }
    capffi_view_free(v);
    capffi_ctx_free(ctx);
    return 0;
}
