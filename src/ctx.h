/*
 * ctx.h - the context struct: the last link of the chain each module's
 * header extends with its own part (perm/audit.h), so only ctx.c, which
 * makes and frees every part, needs it whole.
 */
#ifndef CAPFFI_SRC_CTX_H
#define CAPFFI_SRC_CTX_H

#include "callback/cb.h"

struct capffi_ctx {
    struct capffi__ctx_cb up;
};

#endif
