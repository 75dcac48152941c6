/*
 * bench_util.c - see bench_util.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *bench_name = "bench";

_Noreturn void
bench_die(const char *what)
{
    fprintf(stderr, "%s: %s\n", bench_name, what);
    exit(EXIT_FAILURE);
}

_Noreturn void
bench_die_capffi(const capffi_ctx *ctx, const char *what, int rc)
{
    const char *detail = capffi_ctx_errmsg(ctx);
    fprintf(stderr, "%s: %s failed: %s (%s)%s%s\n", bench_name, what,
            capffi_err_name(rc), capffi_strerror(rc), detail[0] ? ": " : "",
            detail);
    exit(EXIT_FAILURE);
}

uint64_t
bench_now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        bench_die("clock_gettime(CLOCK_MONOTONIC) failed");
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double
bench_per_call(uint64_t t0, uint64_t t1, size_t iters)
{
    return (double)(t1 - t0) / (double)iters;
}

static int
cmp_double(const void *pa, const void *pb)
{
    double x = *(const double *)pa, y = *(const double *)pb;
    return (x > y) - (x < y);
}

double
bench_median(const double *v, size_t n, double *min)
{
    double *s = malloc(n * sizeof *s);
    if (!s)
        bench_die("out of memory");
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    if (min)
        *min = s[0];
    double m = s[n / 2];
    free(s);
    return m;
}

size_t
bench_args_n(int argc, char **argv, bool *quick, size_t max)
{
    size_t n = 0;
    *quick = false;
    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--quick") == 0) {
            *quick = true;
        } else if (argv[i][0] != '-' && (n = strtoul(argv[i], &end, 10)) > 1 &&
                   *end == '\0' && n <= max) {
            continue;
        } else {
            fprintf(stderr, "usage: %s [--quick] [N]\n", bench_name);
            exit(2);
        }
    }
    return n ? n : *quick ? 10000 : 100000;
}
