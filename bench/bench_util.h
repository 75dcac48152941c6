/*
 * bench_util.h - what every benchmark program needs: failing loudly, its
 * arguments, a context to measure in, a monotonic clock and medians
 * (bench_util.c). What needs libffi is in bench_ffi.h, what needs Lua in
 * bench_lua_util.h.
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

/* The arguments of a benchmark on the fixture library:
 * [--quick] [--only SYMBOL] [FIXTURE], --only accepted only when only is
 * not NULL; *quick set by --quick, *only (when given) to SYMBOL or NULL.
 * Returns FIXTURE, by default $CAPFFI_FIXTURE; prints the usage and exits
 * with status 2 on anything else or when there is no fixture. */
const char *bench_args_fixture(int argc, char **argv, bool *quick,
                               const char **only);

/* A new context made with opts (NULL: CAPFFI_OPT_ALLOW_ALL and nothing
 * else) and, when tok is not NULL, a token labelled "bench" minted from
 * it. Exits on failure. Ownership: the caller frees the context. */
capffi_ctx *bench_ctx_new(capffi_token *tok, const capffi_options *opts);

/* path opened in ctx through tok. Exits on failure. Ownership: the caller
 * closes the library. */
capffi_lib *bench_lib_open(capffi_ctx *ctx, const capffi_token *tok,
                           const char *path);

/* symbol bound from lib with signature and flags; ctx is lib's, for the
 * message. Exits on failure. Ownership: the caller frees the function. */
capffi_fn *bench_lib_bind(capffi_ctx *ctx, capffi_lib *lib, const char *symbol,
                          const char *signature, uint32_t flags);

/* n pseudo-random i32 in v, from a fixed seed: the same input for every
 * benchmark that sorts. */
void bench_fill_i32(int32_t *v, size_t n);

/* The (i32, i32) -> i32 sum as native code computes it (wrapping), and the
 * capffi callback handler that computes it. */
int32_t bench_add_i32(int32_t a, int32_t b);
void bench_cb_add(void *payload, const capffi_value *args, capffi_value *ret);

/* Native code calling an (i32, i32) -> i32 function at code, `iters`
 * times through a volatile pointer, so the compiler can neither inline
 * nor hoist the call; the results are summed into a volatile. Returns
 * nanoseconds per call. */
double bench_loop_add(void *code, size_t iters);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Nanoseconds per iteration of a loop timed from t0 to t1. */
double bench_per_call(uint64_t t0, uint64_t t1, size_t iters);

/* The median of v[0..n-1] (n > 0; v is not reordered); *min, when not
 * NULL, gets the smallest. */
double bench_median(const double *v, size_t n, double *min);

#endif
