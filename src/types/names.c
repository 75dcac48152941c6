/*
 * names.c - the registry of named struct types, a principal's names kept
 * apart from another's (H7: names.h).
 */
#include "types/names.h"

#include <string.h>

#include "perm/token.h"

/*
 * H7: a name is registered per principal, the key being the defining
 * token's id (0: the context's own names), so no principal can pre-empt
 * or change a name that another binds with.
 */
struct named_key {
    uint64_t owner;
    char name[CAPFFI__NAME_MAX + 1]; /* zero-padded: the key is the bytes */
};

struct capffi__named {
    struct named_key key;
    const struct capffi__type *type;
    UT_hash_handle hh;
};

static struct capffi__named *
find_named(const capffi_ctx *ctx, uint64_t owner, const char *name, size_t len)
{
    struct named_key k;
    memset(&k, 0, sizeof k);
    k.owner = owner;
    memcpy(k.name, name, len);
    struct capffi__named *n;
    HASH_FIND(hh, capffi__names_of(ctx)->types, &k, sizeof k, n);
    return n;
}

const struct capffi__type *
capffi__type_lookup(const capffi_ctx *ctx, const struct capffi__tok *scope,
                    const char *name, size_t len)
{
    if (len > CAPFFI__NAME_MAX)
        return NULL;
    struct capffi__named *n = NULL;
    for (const struct capffi__tok *t = scope; t && !n; t = t->parent)
        n = find_named(ctx, t->id, name, len);
    if (!n)
        n = find_named(ctx, 0, name, len);
    return n ? n->type : NULL;
}

void
capffi__type_free_all(capffi_ctx *ctx)
{
    struct capffi__named *n, *tmp;
    HASH_ITER(hh, capffi__names_of(ctx)->types, n, tmp)
    {
        HASH_DEL(capffi__names_of(ctx)->types, n);
        capffi__free(n);
    }
    capffi__arena_free(&capffi__names_of(ctx)->type_arena);
}

bool
capffi__type_named(const capffi_ctx *ctx, uint64_t owner, const char *name,
                   size_t len)
{
    return len <= CAPFFI__NAME_MAX && find_named(ctx, owner, name, len);
}

int
capffi__type_name_add(capffi_ctx *ctx, uint64_t owner, const char *name,
                      size_t len, const struct capffi__type *type,
                      const char **stored)
{
    struct capffi__named *n = capffi__calloc(1, sizeof *n);
    if (!n)
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    n->key.owner = owner;
    memcpy(n->key.name, name, len);
    n->type = type;
    HASH_ADD(hh, capffi__names_of(ctx)->types, key, sizeof n->key, n);
    if (!n->hh.tbl) {
        capffi__free(n);
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    }
    *stored = n->key.name;
    return CAPFFI_OK;
}
