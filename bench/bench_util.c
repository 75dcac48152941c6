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

static _Noreturn void
usage_fixture(const char *argv0, bool only)
{
    fprintf(stderr, "usage: %s [--quick]%s [FIXTURE]\n",
            argv0 ? argv0 : bench_name, only ? " [--only SYMBOL]" : "");
    exit(2);
}

const char *
bench_args_fixture(int argc, char **argv, bool *quick, const char **only)
{
    const char *argv0 = argc ? argv[0] : NULL;
    const char *path = NULL;
    *quick = false;
    if (only)
        *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            *quick = true;
        else if (only && strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            *only = argv[++i];
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else
            usage_fixture(argv0, only != NULL);
    }
    if (!path)
        path = getenv("CAPFFI_FIXTURE");
    if (!path || !path[0]) {
        fprintf(stderr, "%s: no fixture: pass its path or set CAPFFI_FIXTURE\n",
                bench_name);
        usage_fixture(argv0, only != NULL);
    }
    return path;
}

capffi_ctx *
bench_ctx_new(capffi_token *tok, const capffi_options *opts)
{
    capffi_options all;
    if (!opts) {
        memset(&all, 0, sizeof all);
        all.flags = CAPFFI_OPT_ALLOW_ALL;
        opts = &all;
    }
    capffi_ctx *ctx = NULL;
    int rc = capffi_ctx_new(&ctx, opts);
    if (rc != CAPFFI_OK)
        bench_die_capffi(NULL, "capffi_ctx_new", rc);
    if (tok) {
        rc = capffi_token_new(tok, ctx, "bench", NULL);
        if (rc != CAPFFI_OK)
            bench_die_capffi(ctx, "capffi_token_new", rc);
    }
    return ctx;
}

capffi_lib *
bench_lib_open(capffi_ctx *ctx, const capffi_token *tok, const char *path)
{
    capffi_lib *lib = NULL;
    int rc = capffi_lib_open(&lib, ctx, tok, path, 0);
    if (rc != CAPFFI_OK)
        bench_die_capffi(ctx, "capffi_lib_open", rc);
    return lib;
}

capffi_fn *
bench_lib_bind(capffi_ctx *ctx, capffi_lib *lib, const char *symbol,
               const char *signature, uint32_t flags)
{
    capffi_fn *fn = NULL;
    int rc = capffi_lib_bind(&fn, lib, symbol, signature, flags);
    if (rc != CAPFFI_OK)
        bench_die_capffi(ctx, "capffi_lib_bind", rc);
    return fn;
}

void
bench_fill_i32(int32_t *v, size_t n)
{
    uint64_t x = 0x9e3779b97f4a7c15u; /* the seed: the same for all */
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v[i] = (int32_t)(uint32_t)(x >> 32);
    }
}

int32_t
bench_add_i32(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

void
bench_cb_add(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    ret->i64 = (int32_t)((uint32_t)args[0].i64 + (uint32_t)args[1].i64);
}

/* The pointer bench_loop_add calls through, reloaded before every call,
 * and where its results go. */
static int32_t (*volatile p_add)(int32_t, int32_t);
static volatile int64_t add_sink;

__attribute__((noinline)) double
bench_loop_add(void *code, size_t iters)
{
    memcpy((void *)&p_add, &code, sizeof code);
    uint32_t acc = 0;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++)
        acc += (uint32_t)p_add((int32_t)(i & 0xffff), 7);
    uint64_t t1 = bench_now_ns();
    add_sink = acc;
    return bench_per_call(t0, t1, iters);
}
