/*
 * bench_token.c - what a token check costs, next to a bare tag compare.
 *
 * What is measured, per call, in nanoseconds:
 *
 *   1. crypto_verify_16 on two equal 16-byte buffers: the constant-time
 *      compare at the heart of every check, and the baseline here;
 *   2. capffi_token_check(ctx, &tok, CAPFFI_RIGHT_CALLBACK, NULL) with one
 *      live token in the context;
 *   3. the same with 10^3 live tokens;
 *   4. the same with 10^6 live tokens (10^5 with --quick);
 *
 * and, as extra rows, the check with 10^3 and 10^6 live tokens when every
 * call presents a different token, visited in a shuffled order. Rows 2-4
 * present the same token every time, so its table entry stays in cache;
 * the rotating rows show what a cold lookup in a big table costs (they
 * also include reading the presented token from a shuffled array, a
 * sequential read).
 *
 * How: the context is created with CAPFFI_OPT_ALLOW_ALL and neither an
 * audit sink nor a recorder, so checks are not audited and no event is
 * built. Tokens are minted with capffi_token_new (no scope: unlimited uses,
 * no expiry, so a check never changes a token). Each measurement runs one
 * warm-up sample, then SAMPLES_FULL (31) samples; a sample times a loop of
 * `iters` calls with clock_gettime(CLOCK_MONOTONIC) and divides by `iters`. The
 * table shows the median and the minimum of the per-call times and the
 * ratio of the median to the baseline's median. The baseline's results are
 * OR-ed together and stored into a volatile, so the calls cannot be
 * removed; every check's return value is tested inside the timed loop.
 *
 * After the table, the targets, each against what this run
 * measured: the hot check (1 live token) over crypto_verify_16 (at most
 * 3x); the rotating check with 10^6 live tokens (at most 150 ns); the
 * heap each live token takes, from glibc's mallinfo2 before and after
 * minting up to 10^6 (at most 128 bytes; "n/a" when the allocator is not
 * glibc's, as under a sanitizer); and the time to mint one token, over
 * those mints (at most 1 us). A figure is printed with "ok" or "over";
 * the exit status does not depend on them.
 *
 * Usage: bench_token [--quick]
 *   --quick  fewer calls per sample and 10^5 instead of 10^6 tokens, for a
 *            smoke test in CI. Its numbers are rougher.
 *
 * Exits 0 on success; on any failure, prints why to stderr and exits 1
 * (2 for a usage error).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <malloc.h>

#include <sodium.h>

#include <capffi.h>

#include "bench_util.h"

/* Samples per measurement; the median is sample SAMPLES_FULL / 2 when sorted.
 */
#define SAMPLES_FULL 31

/* The big table: 10^BIG_EXP tokens. */
#define BIG_EXP_FULL 6
#define BIG_EXP_QUICK 5

/* The medium table: 10^3 tokens. */
#define MID_EXP 3

/* The right every measured check asks for. */
#define RIGHT CAPFFI_RIGHT_CALLBACK

/* Rows of the table. */
#define MAX_ROWS 8

/* Keeps the baseline's results alive. */
static volatile int sink;

struct bench {
    capffi_ctx *ctx;
    capffi_token *toks;  /* every live token, in mint order or shuffled */
    size_t n_toks;       /* live tokens */
    size_t cap_toks;     /* room in toks */
    capffi_token hot;    /* the token rows 2-4 present: the first minted */
    size_t n_rotate;     /* rotating rows visit toks[0 .. n_rotate) */
    size_t next;         /* the next token a rotating loop presents */
    unsigned char a[16]; /* baseline operands: equal bytes */
    unsigned char b[16];
};

struct row {
    char name[64];
    double median_ns;
    double min_ns;
};

/* One timed sample: `iters` calls, returns nanoseconds per call. */
typedef double (*loop_fn)(struct bench *b, size_t iters);

static size_t
pow10_size(unsigned exp)
{
    size_t n = 1;
    while (exp--)
        n *= 10;
    return n;
}

/* ---- the timed loops -------------------------------------------------- */

static double
loop_verify(struct bench *b, size_t iters)
{
    int acc = 0;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++)
        acc |= crypto_verify_16(b->a, b->b);
    uint64_t t1 = bench_now_ns();
    sink = acc;
    if (acc != 0)
        bench_die("crypto_verify_16 reported equal buffers as different");
    return (double)(t1 - t0) / (double)iters;
}

static double
loop_check_hot(struct bench *b, size_t iters)
{
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++) {
        int rc = capffi_token_check(b->ctx, &b->hot, RIGHT, NULL);
        if (rc != CAPFFI_OK)
            bench_die_capffi(b->ctx, "capffi_token_check", rc);
    }
    uint64_t t1 = bench_now_ns();
    return (double)(t1 - t0) / (double)iters;
}

static double
loop_check_rotating(struct bench *b, size_t iters)
{
    size_t next = b->next;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++) {
        int rc = capffi_token_check(b->ctx, &b->toks[next], RIGHT, NULL);
        if (rc != CAPFFI_OK)
            bench_die_capffi(b->ctx, "capffi_token_check", rc);
        if (++next == b->n_rotate)
            next = 0;
    }
    uint64_t t1 = bench_now_ns();
    b->next = next;
    return (double)(t1 - t0) / (double)iters;
}

/* ---- measuring -------------------------------------------------------- */

static int
cmp_double(const void *pa, const void *pb)
{
    double x = *(const double *)pa, y = *(const double *)pb;
    return (x > y) - (x < y);
}

static void
measure(struct row *r, const char *name, struct bench *b, loop_fn fn,
        size_t iters)
{
    double s[SAMPLES_FULL];
    (void)fn(b, iters); /* warm-up: caches, branch predictors, clocks */
    for (size_t k = 0; k < SAMPLES_FULL; k++)
        s[k] = fn(b, iters);
    qsort(s, SAMPLES_FULL, sizeof s[0], cmp_double);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->median_ns = s[SAMPLES_FULL / 2];
    r->min_ns = s[0];
}

/* ---- the token table -------------------------------------------------- */

/* Heap in use, by glibc's count (0 when it sees none). */
static size_t
heap_bytes(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

/* Mint tokens until n are live; print how long it took; return the
 * nanoseconds per token. */
static double
mint_up_to(struct bench *b, size_t n)
{
    if (n > b->cap_toks)
        bench_die("internal error: token array too small");
    size_t from = b->n_toks;
    uint64_t t0 = bench_now_ns();
    for (size_t i = from; i < n; i++) {
        int rc = capffi_token_new(&b->toks[i], b->ctx, "bench", NULL);
        if (rc != CAPFFI_OK)
            bench_die_capffi(b->ctx, "capffi_token_new", rc);
    }
    uint64_t t1 = bench_now_ns();
    b->n_toks = n;
    if (from == 0)
        b->hot = b->toks[0];
    double ms = (double)(t1 - t0) / 1e6;
    printf("minted %zu token(s) (%zu -> %zu live) in %.1f ms, "
           "%.2f us per token\n",
           n - from, from, n, ms, ms * 1e3 / (double)(n - from));
    fflush(stdout);
    return (double)(t1 - t0) / (double)(n - from);
}

/*
 * splitmix64: a fast generator for the shuffle. randombytes_uniform would
 * make one getrandom(2) call per token, seconds for 10^6; the order only
 * has to defeat caches and prefetchers, not be unpredictable.
 */
static uint64_t
splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Shuffle toks[0 .. n) (Fisher-Yates) and make it the rotating set. */
static void
shuffle_rotation(struct bench *b, size_t n)
{
    if (n == 0 || n > b->n_toks)
        bench_die("internal error: bad rotation size");
    uint64_t state;
    randombytes_buf(&state, sizeof state);
    for (size_t i = n - 1; i > 0; i--) {
        /* The modulo bias is below 2^-40 for these sizes. */
        size_t j = (size_t)(splitmix64(&state) % (uint64_t)(i + 1));
        capffi_token t = b->toks[i];
        b->toks[i] = b->toks[j];
        b->toks[j] = t;
    }
    b->n_rotate = n;
    b->next = 0;
}

/* Every token in the rotating set must pass once before timing. */
static void
check_rotation(struct bench *b)
{
    for (size_t i = 0; i < b->n_rotate; i++) {
        int rc = capffi_token_check(b->ctx, &b->toks[i], RIGHT, NULL);
        if (rc != CAPFFI_OK)
            bench_die_capffi(b->ctx, "capffi_token_check (rotating set)", rc);
    }
}

/* ---- output ----------------------------------------------------------- */

static void
print_table(const struct row *rows, size_t n, size_t iters)
{
    double base = rows[0].median_ns;
    printf("\n%d samples per row, %zu calls per sample; per-call time = "
           "sample time / calls\n\n",
           SAMPLES_FULL, iters);
    printf("%-44s %10s %10s %9s\n", "measurement", "median ns", "min ns",
           "x verify");
    printf("%-44s %10s %10s %9s\n",
           "--------------------------------------------", "----------",
           "----------", "---------");
    for (size_t i = 0; i < n; i++)
        printf("%-44s %10.1f %10.1f %8.1fx\n", rows[i].name, rows[i].median_ns,
               rows[i].min_ns, base > 0 ? rows[i].median_ns / base : 0.0);
    printf("\n\"x verify\" is the row's median over the crypto_verify_16 "
           "median.\n");
}

/* ---- main ------------------------------------------------------------- */

int
main(int argc, char **argv)
{
    bench_name = "bench_token";
    int quick = 0;
    if (argc == 2 && strcmp(argv[1], "--quick") == 0) {
        quick = 1;
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--quick]\n", argc ? argv[0] : "bench");
        return 2;
    }
    size_t iters = quick ? ITERS_QUICK : ITERS_FULL;
    unsigned big_exp = quick ? BIG_EXP_QUICK : BIG_EXP_FULL;
    size_t n_mid = pow10_size(MID_EXP);
    size_t n_big = pow10_size(big_exp);

    if (sodium_init() < 0)
        bench_die("sodium_init failed");

    printf("capffi %s token-check benchmark, libsodium %s%s\n",
           capffi_version(), sodium_version_string(),
           quick ? " (--quick: rough numbers)" : "");
    fflush(stdout);

    struct bench b;
    memset(&b, 0, sizeof b);
    b.cap_toks = n_big;
    b.toks = calloc(n_big, sizeof *b.toks);
    if (!b.toks)
        bench_die("out of memory for the token array");

    capffi_options opts;
    memset(&opts, 0, sizeof opts);
    opts.flags = CAPFFI_OPT_ALLOW_ALL;
    int rc = capffi_ctx_new(&b.ctx, &opts);
    if (rc != CAPFFI_OK)
        bench_die_capffi(NULL, "capffi_ctx_new", rc);

    struct row rows[MAX_ROWS];
    size_t n_rows = 0;
    char name[64];

    /* 1 live token: the baseline compares its tag with a copy of it. */
    mint_up_to(&b, 1);
    memcpy(b.a, b.hot.tag, sizeof b.a);
    memcpy(b.b, b.hot.tag, sizeof b.b);
    rc = capffi_token_check(b.ctx, &b.hot, RIGHT, NULL);
    if (rc != CAPFFI_OK)
        bench_die_capffi(b.ctx, "capffi_token_check", rc);
    measure(&rows[n_rows++], "crypto_verify_16 (baseline)", &b, loop_verify,
            iters);
    measure(&rows[n_rows++], "token_check, 1 live token", &b, loop_check_hot,
            iters);

    /* 10^3 live tokens. */
    mint_up_to(&b, n_mid);
    snprintf(name, sizeof name, "token_check, 10^%u live tokens", MID_EXP);
    measure(&rows[n_rows++], name, &b, loop_check_hot, iters);
    shuffle_rotation(&b, n_mid);
    check_rotation(&b);
    snprintf(name, sizeof name, "token_check, 10^%u live, rotating", MID_EXP);
    measure(&rows[n_rows++], name, &b, loop_check_rotating, iters);

    /* 10^6 live tokens (10^5 with --quick). */
    size_t heap0 = heap_bytes();
    uint64_t t0 = bench_now_ns();
    double mint_ns = mint_up_to(&b, n_big);
    double mint_s = (double)(bench_now_ns() - t0) / 1e9;
    size_t heap1 = heap_bytes();
    snprintf(name, sizeof name, "token_check, 10^%u live tokens", big_exp);
    measure(&rows[n_rows++], name, &b, loop_check_hot, iters);
    shuffle_rotation(&b, n_big);
    check_rotation(&b);
    snprintf(name, sizeof name, "token_check, 10^%u live, rotating", big_exp);
    measure(&rows[n_rows++], name, &b, loop_check_rotating, iters);

    print_table(rows, n_rows, iters);
    printf("minting tokens %zu -> %zu (10^%u live) took %.2f s\n", n_mid, n_big,
           big_exp, mint_s);

    /* The targets, against this run's own figures. */
    double hot_x = rows[1].median_ns / rows[0].median_ns;
    double rot_ns = rows[n_rows - 1].median_ns;
    printf("\ntargets (this run)%s\n", quick ? ", 10^5 in place of 10^6" : "");
    printf("  hot check / crypto_verify_16    %8.2fx   (<= 3x)      %s\n",
           hot_x, hot_x <= 3.0 ? "ok" : "over");
    printf("  check, 10^%u live, rotating      %8.1f ns (<= 150 ns)  %s\n",
           big_exp, rot_ns, rot_ns <= 150.0 ? "ok" : "over");
    if (heap1 > heap0) {
        double per = (double)(heap1 - heap0) / (double)(n_big - n_mid);
        printf("  heap per live token             %8.1f B  (<= 128 B)   %s\n",
               per, per <= 128.0 ? "ok" : "over");
    } else {
        printf("  heap per live token                  n/a  (<= 128 B)   "
               "(mallinfo2 sees no heap)\n");
    }
    printf("  minting one token               %8.3f us (<= 1 us)    %s\n",
           mint_ns / 1e3, mint_ns <= 1000.0 ? "ok" : "over");

    t0 = bench_now_ns();
    capffi_ctx_free(b.ctx);
    printf("freeing the context (%zu tokens) took %.2f s\n", b.n_toks,
           (double)(bench_now_ns() - t0) / 1e9);
    free(b.toks);

    if (fflush(stdout) != 0 || ferror(stdout))
        bench_die("writing to stdout failed");
    return EXIT_SUCCESS;
}
