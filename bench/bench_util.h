/*
 * bench_util.h - what every benchmark program needs: failing loudly and a
 * monotonic clock (bench_util.c).
 */
#ifndef CAPFFI_BENCH_UTIL_H
#define CAPFFI_BENCH_UTIL_H

#include <stdint.h>

#include <capffi.h>

/* The program's name, for messages; set first thing in main. */
extern const char *bench_name;

/* Print "NAME: what" and exit with a failure status. */
_Noreturn void bench_die(const char *what);

/* Print which capffi call failed, with its code and the context's detail,
 * and exit with a failure status. */
_Noreturn void bench_die_capffi(const capffi_ctx *ctx, const char *what,
                                int rc);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

#endif
