/*
 * bench_util.c - see bench_util.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
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
