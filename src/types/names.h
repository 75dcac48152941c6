/*
 * names.h - the context's registry of named struct types (names.c), which
 * the signature parser reads and capffi_type_define writes.
 *
 * H7: names are registered per principal: a token's own
 * (capffi_type_define_tok), else its nearest ancestor's, else the
 * context's (capffi_type_define, which only a context that still grants
 * FFI may extend). A principal therefore never sees a name another
 * principal registered beside or below it.
 */
#ifndef CAPFFI_SRC_TYPES_NAMES_H
#define CAPFFI_SRC_TYPES_NAMES_H

#include "base/internal.h"
#include "perm/token.h"

/* Longest type name, in bytes. */
#define CAPFFI__NAME_MAX 63

struct capffi__tok;
struct capffi__type;
struct capffi__named; /* the registry's entries (ctx->types) */

/* The type named name (len bytes) as seen from scope (NULL: the
 * context's names only), or NULL. */
CAPFFI__HIDDEN const struct capffi__type *
capffi__type_lookup(const capffi_ctx *ctx, const struct capffi__tok *scope,
                    const char *name, size_t len);

/* Whether owner (a token id, 0 for the context) registered name. */
CAPFFI__HIDDEN bool capffi__type_named(const capffi_ctx *ctx, uint64_t owner,
                                       const char *name, size_t len);

/*
 * Register type under name (len bytes, at most CAPFFI__NAME_MAX) for
 * owner; *stored is the registry's copy of the name, which lives as long
 * as the context. CAPFFI_ENOMEM with the message set.
 */
CAPFFI__HIDDEN int capffi__type_name_add(capffi_ctx *ctx, uint64_t owner,
                                         const char *name, size_t len,
                                         const struct capffi__type *type,
                                         const char **stored);

/* Free the registry and the types it names (capffi_ctx_free). */
CAPFFI__HIDDEN void capffi__type_free_all(capffi_ctx *ctx);

/* The context as far as named types (perm/audit.h). Owner thread only. */
struct capffi__ctx_names {
    struct capffi__ctx_tok up;
    struct capffi__named *types;
    struct capffi__arena type_arena;
};

static inline struct capffi__ctx_names *
capffi__names_of(const capffi_ctx *ctx)
{
    return (struct capffi__ctx_names *)(uintptr_t)ctx;
}

#endif
