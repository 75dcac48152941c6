/*
 * cb.h - the callback struct (cb.c), read by the context when it is freed.
 */
#ifndef CAPFFI_SRC_CB_H
#define CAPFFI_SRC_CB_H

#include <stdatomic.h>

#include "base/handle.h"
#include "perm/token.h"
#include "types/sig.h"
#include "callback/loop.h"

struct capffi_cb {
    /* magic CAPFFI__CB_MAGIC; state points to the state below */
    struct capffi__callable call;
    uint32_t flags; /* CAPFFI_CB_* */
    atomic_int state;
    bool ret_struct; /* the handler writes a struct result */
    uint8_t ret_op;  /* how the result is stored (cb.c) */
    uint8_t arg_op[CAPFFI_MAX_ARGS];
    uint64_t ret_off, ret_span; /* range check of a small-integer result */
    /* The owner thread's key (capffi__thread_key), NULL when the context
     * lends the host: equal means "run the handler right here". */
    const void *owner_key;
    capffi_cb_fn fn;
    void *payload;
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
    /* Under the owner lock: any thread records failures. */
    int st_first;
    uint64_t st_failures;
    char st_detail[CAPFFI_CB_DETAIL_MAX];
    struct capffi_cb *next; /* the context's list */
};

/* Live thread-safe callbacks with references (capffi_ctx_keepalive). */
CAPFFI__HIDDEN size_t capffi__cb_keepalive(const capffi_ctx *ctx);

/* Make every callback fail closed, without events (capffi_ctx_free, before
 * libraries are unloaded); then free them all with their closures. */
CAPFFI__HIDDEN void capffi__cb_close_all(capffi_ctx *ctx);
CAPFFI__HIDDEN void capffi__cb_free_all(capffi_ctx *ctx);

/* The context as far as callbacks (perm/audit.h): never freed before
 * the context. */
struct capffi__ctx_cb {
    struct capffi__ctx_loop up;
    struct capffi_cb *cbs;
};

static inline struct capffi__ctx_cb *
capffi__cbs_of(const capffi_ctx *ctx)
{
    return (struct capffi__ctx_cb *)(uintptr_t)ctx;
}

#endif
