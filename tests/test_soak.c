/*
 * test_soak.c - a long-lived host in bounded memory (suite: slow).
 *
 * A host that mints and revokes tokens for as long as it runs must not
 * grow: a revoked token's entry is reused once nothing refers to it
 * (src/perm/token.c). After a warm-up, a million more mint-and-revoke
 * rounds, in two halves, leave the number of live allocations and the
 * heap where they were. Counts, never times.
 */
#include "helpers.h"

#include <malloc.h>

#include "base/internal.h"

#define WARM 100000
#define ROUNDS 1000000

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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(soak_tokens_stay_bounded),
    };
    return RUN_TESTS("soak", tests);
}
