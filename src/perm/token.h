/*
 * token.h - the token table and the interface other modules use to verify
 * tokens and to hang resources off them (token.c).
 */
#ifndef CAPFFI_SRC_TOKEN_H
#define CAPFFI_SRC_TOKEN_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/handle.h"
#include "perm/audit.h"
#include "perm/path.h"
#include "perm/perm.h"

/*
 * A path scope shared by the tokens that have it: tokens minted while the
 * context's grants stay the same, and a child attenuated without paths,
 * point at one copy. Immutable; the count is plain (owner thread).
 */
struct capffi__tscope {
    unsigned refs;
    struct capffi__grants g;
};

/*
 * One slot of the token table (token.c: "the table"). Entries live in
 * chunks that never move, so a pointer to one stays valid until the
 * context is freed; a slot is reused only once its token is revoked,
 * nothing was ever attached to it and it has no child left, and reuse
 * changes its generation, so the old token value no longer finds it.
 * The sibling and free-queue links are slot numbers plus one (0: none).
 */
struct capffi__tok {
    uint64_t id; /* slot, generation and epoch (token.c: "the id") */
    uint8_t tag[16];
    atomic_int revoked; /* set (release) by revocation; cleared only when
                           the slot is reused, which a slot something was
                           ever attached to never is */
    uint16_t rights;
    uint8_t depth;
    uint8_t flags;      /* token.c: TOK_* */
    uint64_t uses_left; /* UINT64_MAX: unlimited */
    int64_t expires_ns; /* monotonic; 0: never */
    struct capffi__tok *parent;
    uint32_t first_child, next_sibling, prev_sibling, next_free;
    struct capffi__res res;    /* sentinel of the resource list */
    const char *label;         /* interned in the context; shared */
    struct capffi__tscope *sc; /* the path scope; immutable, shared */
};

/*
 * Verify tok for one use of `rights` (and of `file`, when not NULL), and
 * count the use. On success *out is the token's entry, valid until the
 * context is freed (a slot is reused only after its token was revoked,
 * and never once something was attached to it). On failure the message is set
 * and a denial event with `op` and `target` is emitted; on success an event is
 * emitted only for CAPFFI_OP_TOKEN_CHECK: other operations emit their own when
 * they finish.
 */
CAPFFI__HIDDEN int capffi__token_use(capffi_ctx *ctx, const capffi_token *tok,
                                     uint32_t rights,
                                     const struct capffi__file *file,
                                     capffi_op op, const char *target,
                                     struct capffi__tok **out);

/*
 * Verify tok for `rights` without counting a use and without looking at a
 * path: the first step of an operation that must resolve its target before
 * it can ask capffi__token_use. Denials are audited as `op` on `target`.
 */
CAPFFI__HIDDEN int capffi__token_peek(capffi_ctx *ctx, const capffi_token *tok,
                                      uint32_t rights, capffi_op op,
                                      const char *target,
                                      struct capffi__tok **out);

/*
 * Is file within the path scope of the entry t (deny lists and special
 * files judged as for capffi_lib_open)? For a check made on behalf of a
 * resource already made through t (a library's dependencies): no use is
 * counted, staleness is the resource's business, nothing is audited.
 * CAPFFI_EPERM with the message set otherwise.
 */
CAPFFI__HIDDEN int capffi__token_covers(capffi_ctx *ctx,
                                        const struct capffi__tok *t,
                                        const struct capffi__file *file);

/*
 * Link r into t's resource list, unless t has been revoked meanwhile
 * (CAPFFI_EREVOKED): the pattern is verify, build, attach; a revocation
 * between verify and attach is caught here, so nothing made through a
 * revoked token outlives the revocation.
 */
CAPFFI__HIDDEN int capffi__token_attach(capffi_ctx *ctx, struct capffi__tok *t,
                                        struct capffi__res *r);
/* Unlink r (a no-op when it was never attached). */
CAPFFI__HIDDEN void capffi__token_detach(capffi_ctx *ctx,
                                         struct capffi__res *r);

/*
 * The event that closes an operation made through the token entry t
 * (NULL: none): status rc; on failure reason why and the context's
 * message as detail, on success reason none and done as detail.
 */
CAPFFI__HIDDEN void capffi__token_audit(capffi_ctx *ctx, capffi_op op, int rc,
                                        capffi_reason why,
                                        const struct capffi__tok *t,
                                        uint32_t rights, const char *target,
                                        const char *done);

/* Whether what is made through t (NULL: the context itself) is in safe
 * mode: CAPFFI_OPT_SAFE, or a token without POINTER, READ and WRITE. */
CAPFFI__HIDDEN bool capffi__safe(const capffi_ctx *ctx,
                                 const struct capffi__tok *t);

/* Refuse a raw memory operation of a context in safe mode: CAPFFI_EPERM,
 * audited as a denial of op on target; 0 outside safe mode. */
CAPFFI__HIDDEN int capffi__safe_refuse(capffi_ctx *ctx, capffi_op op,
                                       const char *fn, const char *target);

/* The who-field of audit events for an entry (NULL: none). */
CAPFFI__HIDDEN struct capffi__who
capffi__token_who(const struct capffi__tok *t);

/* Set up the token table, its lock and the MAC secret (capffi_ctx_new);
 * free every token with them (capffi_ctx_free). */
CAPFFI__HIDDEN int capffi__token_init(capffi_ctx *ctx);
CAPFFI__HIDDEN void capffi__token_fini(capffi_ctx *ctx);

/* The context as far as tokens (audit.h). The table is written on the
 * owner thread under tok_lock; the owner thread reads it without the lock
 * (checks), other threads (revocation, telling a foreign token) read it
 * under the lock. The secrets are only touched under tok_lock. */
struct capffi__ctx_tok {
    struct capffi__ctx_perm up;
    uint64_t serial;       /* process-unique, never reused */
    uint8_t instance[16];  /* random per context */
    unsigned char *secret; /* master key: guarded, no-access at rest */
    void *epoch_key;       /* the current epoch's keyed MAC state: guarded,
                              readable (token.c: "secrets") */
    uint32_t epoch;        /* the current epoch */
    uint32_t epoch_left;   /* mints left before the next epoch */
    pthread_mutex_t tok_lock;
    struct capffi__tok **chunk;    /* chunks of slots (token.c) */
    uint32_t n_chunks;             /* room in chunk */
    uint32_t n_slots;              /* slots ever handed out */
    uint32_t free_head, free_tail; /* FIFO of reusable slots, + 1 */
    size_t n_tokens;               /* slots in use or waiting for reuse */
    struct capffi__tscope *snap;   /* the last context snapshot (1 ref) */
    struct capffi__label *labels;  /* interned labels */
    struct capffi__ctx_tok *reg_prev, *reg_next; /* every live context */
};

static inline struct capffi__ctx_tok *
capffi__tok_of(const capffi_ctx *ctx)
{
    return (struct capffi__ctx_tok *)(uintptr_t)ctx;
}

#endif
