/*
 * ctx.c - creating and freeing contexts.
 */
#include "ctx.h"

#include <sodium.h>
#include <stdatomic.h>
#include <string.h>

#include "memory/buf.h"
#include "callback/cb.h"
#include "call/fn.h"
#include "types/sig.h"
#include "perm/token.h"

/* Context serials are never reused, so a token's MAC binds it to one
 * context even if two contexts drew the same random bytes. */
static atomic_uint_fast64_t next_serial = 1;

int
capffi_ctx_new(capffi_ctx **out, const capffi_options *opts)
{
    if (out)
        *out = NULL;
    if (!out)
        return capffi__fail(NULL, CAPFFI_EINVAL, "out is NULL");
    if (sodium_init() < 0)
        return capffi__fail(NULL, CAPFFI_ENOMEM,
                            "libsodium could not be initialised");

    capffi_ctx *ctx = capffi__calloc(1, sizeof *ctx);
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_ENOMEM, "out of memory");
    /* The owner first: failure messages are written for it. */
    if (capffi__owner_init(&capffi__base(ctx)->owner,
                           opts && (opts->flags & CAPFFI_OPT_LEND_OWNER))) {
        capffi__free(ctx);
        return capffi__fail(NULL, CAPFFI_ENOMEM, "out of memory");
    }
    capffi__tok_of(ctx)->serial = atomic_fetch_add(&next_serial, 1);
    randombytes_buf(capffi__tok_of(ctx)->instance,
                    sizeof capffi__tok_of(ctx)->instance);

    bool tok_lock = false, audit = false;
    int rc = CAPFFI_ENOMEM;
    if (pthread_mutex_init(&capffi__tok_of(ctx)->tok_lock, NULL))
        goto fail;
    tok_lock = true;
    if (capffi__audit_init(&capffi__audit_of(ctx)->audit))
        goto fail;
    audit = true;
    capffi__tok_of(ctx)->secret =
        capffi__secure_alloc(crypto_generichash_KEYBYTES);
    if (!capffi__tok_of(ctx)->secret)
        goto fail;
    crypto_generichash_keygen(capffi__tok_of(ctx)->secret);
    sodium_mprotect_noaccess(capffi__tok_of(ctx)->secret);

    rc = capffi__perm_init(ctx, &capffi__perm_of(ctx)->perm, opts);
    if (rc)
        goto fail;
    rc = capffi__loop_init(ctx);
    if (rc)
        goto fail;
    *out = ctx;
    return CAPFFI_OK;

fail:;
    /* The message was written to the context (this is the owner thread);
     * move it where capffi_ctx_errmsg(NULL) finds it. */
    char msg[CAPFFI__MSG_MAX];
    snprintf(msg, sizeof msg, "%s",
             capffi__base(ctx)->errmsg[0] ? capffi__base(ctx)->errmsg
                                          : "out of memory");
    capffi__perm_fini(&capffi__perm_of(ctx)->perm);
    capffi__secure_free(capffi__tok_of(ctx)->secret);
    if (audit)
        capffi__audit_fini(&capffi__audit_of(ctx)->audit);
    if (tok_lock)
        pthread_mutex_destroy(&capffi__tok_of(ctx)->tok_lock);
    capffi__owner_fini(&capffi__base(ctx)->owner);
    capffi__free(ctx);
    return capffi__fail(NULL, rc, "%s", msg);
}

void
capffi_ctx_free(capffi_ctx *ctx)
{
    if (!ctx)
        return;
    capffi__loop_shutdown(ctx);
    /* Closed first: a library's destructor that calls one back while it is
     * unloaded below gets the default result, from mapped code. */
    capffi__cb_close_all(ctx);
    capffi__view_free_all(ctx);
    capffi__fn_free_all(ctx);
    capffi__lib_free_all(ctx);
    capffi__buf_free_all(ctx);
    capffi__cb_free_all(ctx);
    capffi__token_free_all(ctx);
    capffi__type_free_all(ctx);
    capffi__perm_fini(&capffi__perm_of(ctx)->perm);
    capffi__secure_free(capffi__tok_of(ctx)->secret);
    capffi__audit_fini(&capffi__audit_of(ctx)->audit);
    capffi__loop_fini(ctx);
    capffi__owner_fini(&capffi__base(ctx)->owner);
    pthread_mutex_destroy(&capffi__tok_of(ctx)->tok_lock);
    capffi__free(ctx);
}

size_t
capffi_ctx_keepalive(const capffi_ctx *ctx)
{
    if (!ctx || !capffi__ctx_on_owner(ctx))
        return 0;
    return capffi__cb_keepalive(ctx);
}
