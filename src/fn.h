/*
 * fn.h - the bound-function struct, shared by lib.c (binding) and fn.c
 * (calling).
 */
#ifndef CAPFFI_SRC_FN_H
#define CAPFFI_SRC_FN_H

#include <stdatomic.h>

#include "sig.h"
#include "token.h"

/* Values of the state word every call loads. */
enum { CAPFFI__LIVE = 0, CAPFFI__CLOSED = 1, CAPFFI__REVOKED = 2 };

struct capffi_fn {
    ffi_cif cif;
    void *code;
    const atomic_int *state; /* the library's, or own_state */
    uint32_t flags;
    bool big_struct_args; /* libffi rewrites avalue for these */
    bool ret_struct;
    struct capffi__sig sig;
    capffi_ctx *ctx;
    atomic_int own_state;          /* capffi_fn_from_ptr */
    struct capffi__res res;        /* capffi_fn_from_ptr: linked to its token */
    struct capffi_fn *prev, *next; /* the context's list */
};

/*
 * Make a function for code with the given signature and flags, watching
 * *state (NULL: its own state word). Linked into the context's list.
 * CAPFFI_ESIG, CAPFFI_EINVAL (bad flags), CAPFFI_ENOMEM.
 */
CAPFFI__HIDDEN int capffi__fn_new(capffi_fn **out, capffi_ctx *ctx, void *code,
                                  const char *signature, uint32_t flags,
                                  const atomic_int *state);

/* Free every function of the context (capffi_ctx_free). */
CAPFFI__HIDDEN void capffi__fn_free_all(capffi_ctx *ctx);

#endif
