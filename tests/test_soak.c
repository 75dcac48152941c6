/*
 * test_soak.c - a long-lived host in bounded memory (suite: slow).
 *
 * A host that mints and revokes tokens, or opens and closes libraries, for
 * as long as it runs must not grow: a revoked token's entry is reused once
 * nothing refers to it (src/perm/token.c); a closed library is unloaded
 * once no function or instance of it is left, its record reused and its
 * descriptor closed, or kept once per file the process holds anyway
 * (src/call/lib.c). After a warm-up, more rounds, in two halves, leave the
 * number of live allocations, the heap and the open descriptors where
 * they were. Counts, never times.
 */
#include "helpers.h"

#include <malloc.h>

#include "base/internal.h"

#define WARM 100000
#define ROUNDS 1000000
/* Library rounds cost a path walk and a load each (about 0.1 ms), so the
 * suite runs 10^5 of them, 10^4 under AddressSanitizer; CAPFFI_SOAK_SCALE=10
 * in the environment makes it the 10^6 of a long soak. */
#ifdef __SANITIZE_ADDRESS__
#define LIB_ROUNDS_BASE 10000L
#else
#define LIB_ROUNDS_BASE 100000L
#endif
#define LIB_WARM 1000

/* Mint a token, with a label of its own half of the time, and revoke it. */
static void
mint_and_revoke(capffi_ctx *ctx, long i)
{
    char label[32];
    capffi_token t;
    snprintf(label, sizeof label, "soak-%ld", i % 1000);
    assert_ok(capffi_token_new(&t, ctx, (i & 1) ? label : "soak", NULL));
    assert_ok(capffi_token_revoke(ctx, &t));
}

static void
soak_tokens_stay_bounded(void **state)
{
    (void)state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    long live[3];
    size_t heap[3];
    for (int phase = 0; phase < 3; phase++) {
        for (long i = 0; i < (phase ? ROUNDS / 2 : WARM); i++)
            mint_and_revoke(ctx, i);
        live[phase] = capffi__alloc_live();
        heap[phase] = mallinfo2().uordblks;
    }
    print_message("# warm-up %d rounds, then %d and %d more: live "
                  "allocations %ld, %ld, %ld; heap %zu, %zu, %zu bytes\n",
                  WARM, ROUNDS / 2, ROUNDS / 2, live[0], live[1], live[2],
                  heap[0], heap[1], heap[2]);
    /* Flat: half a million rounds add nothing that stays. The entries
     * waiting for reuse keep their labels, so the count may differ by the
     * one or two labels they hold at the moment (any allocation a round
     * kept would show as half a million); the heap may move by what the
     * allocator keeps for itself. */
    assert_true(live[2] <= live[1] + 2 && live[1] <= live[0] + 2);
    assert_true(heap[2] <= heap[1] + 64 * 1024);
    capffi_ctx_free(ctx);
}

/* CAPFFI_SOAK_SCALE: how many times the suite's rounds to run (1 to 100). */
static long
soak_scale(void)
{
    const char *e = getenv("CAPFFI_SOAK_SCALE");
    long k = e ? strtol(e, NULL, 10) : 1;
    return k < 1 ? 1 : k > 100 ? 100 : k;
}

/* Open a library, bind and call one of its functions, free it and close
 * the library: unloaded at the close (the fixture) or kept loaded by the
 * process (libc), whose descriptor is reused. */
static void
open_call_close(capffi_ctx *ctx, const capffi_token *tok, const char *path,
                const char *sym, long i)
{
    capffi_lib *lib;
    capffi_fn *fn;
    assert_ok(capffi_lib_open(&lib, ctx, tok, path, 0));
    assert_ok(capffi_lib_bind(&fn, lib, sym, "(i32) -> i32", 0));
    capffi_value a = { .i64 = -(i % 1000) }, r;
    assert_ok(capffi_fn_call(fn, &a, &r));
    assert_int_equal(r.i64 < 0 ? -r.i64 : r.i64, i % 1000);
    capffi_fn_free(fn);
    capffi_lib_close(lib);
}

static void
soak_libraries_stay_bounded(void **state)
{
    (void)state;
    capffi_ctx *fx = ctx_for_fixtures(0, 0);
    capffi_token fxtok = mint(fx, "fixture", CAPFFI_RIGHT_DLOPEN);
    capffi_ctx *sys = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token systok = mint(sys, "libc", CAPFFI_RIGHT_DLOPEN);
    const char *fixture = env_path("CAPFFI_FIXTURE");
    const long rounds = LIB_ROUNDS_BASE * soak_scale();
    long live[3], fds[3];
    size_t heap[3];
    for (int phase = 0; phase < 3; phase++) {
        for (long i = 0; i < (phase ? rounds / 2 : LIB_WARM); i++) {
            if (i & 1)
                open_call_close(fx, &fxtok, fixture, "fx_id_i32", i);
            else
                open_call_close(sys, &systok, "libc.so.6", "abs", i);
        }
        live[phase] = capffi__alloc_live();
        heap[phase] = mallinfo2().uordblks;
        fds[phase] = open_fds();
    }
    print_message("# libraries: warm-up %d rounds, then %ld and %ld more: "
                  "live allocations %ld, %ld, %ld; heap %zu, %zu, %zu "
                  "bytes; descriptors %ld, %ld, %ld\n",
                  LIB_WARM, rounds / 2, rounds / 2, live[0], live[1], live[2],
                  heap[0], heap[1], heap[2], fds[0], fds[1], fds[2]);
    assert_true(live[2] <= live[1] && live[1] <= live[0]);
    assert_true(heap[2] <= heap[1] + 64 * 1024);
    assert_true(fds[2] == fds[1] && fds[1] == fds[0]);
    capffi_ctx_free(fx);
    capffi_ctx_free(sys);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(soak_tokens_stay_bounded),
        cmocka_unit_test(soak_libraries_stay_bounded),
    };
    return RUN_TESTS("soak", tests);
}
