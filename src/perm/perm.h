/*
 * perm.h - grants (what a context or a token covers) and the context's
 * permission state (perm.c).
 */
#ifndef CAPFFI_SRC_PERM_H
#define CAPFFI_SRC_PERM_H

#include "base/internal.h"
#include "perm/path.h"
#include "perm/audit.h"

/*
 * A set of grants: the context holds one (mutable), every token holds an
 * immutable snapshot. One judgement serves both, so a token covers exactly
 * what its source covered when it was made.
 *
 * Precedence, for a resolved file: a deny entry always wins (L8); then the
 * most specific of the allow entries and the withdrawals covering the
 * file; then `all`, which never covers /proc, /dev or /sys (L4).
 */
struct capffi__grants {
    bool all;
    struct capffi__pathset *allow;
    struct capffi__pathset *withdrawn;
    struct capffi__pathset *deny;
};

enum capffi__verdict {
    CAPFFI__GRANTED,
    CAPFFI__DENIED,   /* a deny entry covers it (*entry says which) */
    CAPFFI__UNCOVERED /* nothing grants it */
};

CAPFFI__HIDDEN enum capffi__verdict
capffi__grants_judge(const struct capffi__grants *g,
                     const struct capffi__file *f,
                     const struct capffi__pathent **entry);

/* An immutable copy of src for a token: allow and withdrawn are copied,
 * deny is shared. CAPFFI_ENOMEM leaves *out empty. */
CAPFFI__HIDDEN int capffi__grants_snapshot(struct capffi__grants *out,
                                           const struct capffi__grants *src);
/* Share every set of src (src must be immutable: a token's). */
CAPFFI__HIDDEN void capffi__grants_share(struct capffi__grants *out,
                                         const struct capffi__grants *src);
CAPFFI__HIDDEN void capffi__grants_release(struct capffi__grants *g);

struct capffi__perm {
    uint32_t flags; /* CAPFFI_OPT_* */
    struct capffi__grants g;
    capffi_prompt_fn prompt;
    void *prompt_payload;
};

/* Set up from the options (paths resolved). Sets the message on failure. */
CAPFFI__HIDDEN int capffi__perm_init(capffi_ctx *ctx, struct capffi__perm *p,
                                     const capffi_options *opts);
CAPFFI__HIDDEN void capffi__perm_fini(struct capffi__perm *p);

/* The rights granted now: all, or DLOPEN plus the non-path rights when
 * there are path grants (unless CAPFFI_OPT_PATHS_ONLY), or 0. */
CAPFFI__HIDDEN uint32_t capffi__perm_rights(const struct capffi__perm *p);

/* The state of a resolved file (NULL: unscoped) right now. */
CAPFFI__HIDDEN capffi_perm_state capffi__perm_state_of(
    const struct capffi__perm *p, const struct capffi__file *f);

/* The context as far as the permission (audit.h). */
struct capffi__ctx_perm {
    struct capffi__ctx_audit up;
    struct capffi__perm perm;
};

static inline struct capffi__ctx_perm *
capffi__perm_of(const capffi_ctx *ctx)
{
    return (struct capffi__ctx_perm *)(uintptr_t)ctx;
}

#endif
