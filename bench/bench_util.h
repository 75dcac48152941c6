/*
 * bench_util.h - what every benchmark program needs: failing loudly and a
 * monotonic clock (bench_util.c).
 */
#ifndef CAPFFI_BENCH_UTIL_H
#define CAPFFI_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <capffi.h>

/* The libffi version meson found, for the banner of the libffi benchmarks. */
#ifndef BENCH_LIBFFI_VERSION
#define BENCH_LIBFFI_VERSION "unknown"
#endif

/* Samples per measurement, full and --quick (odd: the median is one). */
#define SAMPLES_FULL 31
#define SAMPLES_QUICK 7
#define SAMPLES_MAX SAMPLES_FULL

/* Calls per sample, full and --quick. */
#define ITERS_FULL 200000u
#define ITERS_QUICK 10000u

/* The program's name, for messages; set first thing in main. */
extern const char *bench_name;

/* Print "NAME: what" and exit with a failure status. */
_Noreturn void bench_die(const char *what);

/* Print which capffi call failed, with its code and the context's detail,
 * and exit with a failure status. */
_Noreturn void bench_die_capffi(const capffi_ctx *ctx, const char *what,
                                int rc);

/* The arguments of a benchmark that sorts or fills N elements:
 * [--quick] [N], N from 2 to max; *quick set by --quick. Returns N, by
 * default 10^4 with --quick and 10^5 without; prints the usage and exits
 * with status 2 on anything else. */
size_t bench_args_n(int argc, char **argv, bool *quick, size_t max);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Nanoseconds per iteration of a loop timed from t0 to t1. */
double bench_per_call(uint64_t t0, uint64_t t1, size_t iters);

/* The median of v[0..n-1] (n > 0; v is not reordered); *min, when not
 * NULL, gets the smallest. */
double bench_median(const double *v, size_t n, double *min);

#endif
