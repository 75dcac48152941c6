/*
 * perm.h - the context's permission state (perm.c).
 */
#ifndef CAPFFI_SRC_PERM_H
#define CAPFFI_SRC_PERM_H

#include "internal.h"
#include "path.h"

struct capffi__perm {
    uint32_t flags;                    /* CAPFFI_OPT_* */
    bool all;                          /* unscoped FFI granted */
    struct capffi__pathset *allow;     /* path grants (mutable) */
    struct capffi__pathset *deny;      /* fixed at creation; shared */
    struct capffi__pathset *withdrawn; /* revoked below a broader grant */
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

#endif
