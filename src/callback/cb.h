/*
 * cb.h - the callback struct (cb.c) and the handle check shared with the
 * call path (fn.c).
 */
#ifndef CAPFFI_SRC_CB_H
#define CAPFFI_SRC_CB_H

#include <stdatomic.h>

#include "types/sig.h"
#include "perm/token.h"

/*
 * The first word of a capffi_cb and of a capffi_fn: a `function` value is
 * either, and the call path tells them apart by it.
 */
#define CAPFFI__CB_MAGIC 0x63616263u /* "cbac" */
#define CAPFFI__FN_MAGIC 0x63616e66u /* "fnac" */

struct capffi_cb {
    uint32_t magic; /* CAPFFI__CB_MAGIC */
    uint32_t flags; /* CAPFFI_CB_* */
    atomic_int state;
    bool ret_struct; /* the handler writes a struct result */
    uint8_t ret_op;  /* how the result is stored (cb.c) */
    uint8_t arg_op[CAPFFI_MAX_ARGS];
    uint64_t ret_off, ret_span; /* range check of a small-integer result */
    /* The owner thread's key (capffi__thread_key), NULL when the context
     * lends the host: equal means "run the handler right here". */
    const void *owner_key;
    capffi_ctx *ctx;
    capffi_cb_fn fn;
    void *payload;
    void *code; /* executable address of the closure */
    ffi_closure *closure;
    ffi_cif cif;
    struct capffi__sig sig;
    capffi_value dflt;  /* the default result, as the handler's ret starts */
    void *dflt_bytes;   /* a struct default (ret_size bytes), else NULL */
    char *dflt_str;     /* a cstring default's copy, else NULL */
    uint64_t dflt_word; /* the default, stored for native code (not struct) */
    int timeout_ms;
    uint32_t refs;   /* owner thread */
    bool closed;     /* owner thread */
    char target[24]; /* the code address, for audit events */
    struct capffi__tok *tok;
    struct capffi__res res;
    /* Under the context's loop lock: any thread records failures. */
    int st_first;
    uint64_t st_failures;
    char st_detail[CAPFFI_CB_DETAIL_MAX];
    struct capffi_cb *next; /* the context's list */
};

/*
 * The code a `function` value passes: a callback's or a function's, or
 * NULL for NULL. CAPFFI_EINVAL (not a handle, or another context's),
 * CAPFFI_ECLOSED, CAPFFI_EREVOKED, with a message naming argument `arg`
 * (counted from 1; 0 names the result).
 */
CAPFFI__HIDDEN int capffi__handle_code(capffi_ctx *ctx, const void *handle,
                                       size_t arg, void **code);

/* Live thread-safe callbacks with references (capffi_ctx_keepalive). */
CAPFFI__HIDDEN size_t capffi__cb_keepalive(const capffi_ctx *ctx);

/* Make every callback fail closed, without events (capffi_ctx_free, before
 * libraries are unloaded); then free them all with their closures. */
CAPFFI__HIDDEN void capffi__cb_close_all(capffi_ctx *ctx);
CAPFFI__HIDDEN void capffi__cb_free_all(capffi_ctx *ctx);

#endif
