/*
 * invoke.h - the callback struct, and what making a callback (cb.c) needs
 * of invoking one (invoke.c).
 */
#ifndef CAPFFI_SRC_CALLBACK_INVOKE_H
#define CAPFFI_SRC_CALLBACK_INVOKE_H

#include <stdatomic.h>

#include "base/handle.h"
#include "callback/loop.h"
#include "perm/token.h"
#include "types/sig.h"
#include "types/value.h"

struct capffi_cb {
    /* magic CAPFFI__CB_MAGIC; state points to the state below */
    struct capffi__callable call;
    uint32_t flags; /* CAPFFI_CB_* */
    atomic_int state;
    bool ret_struct; /* the handler writes a struct result */
    bool ret_handle; /* the result is a `function` value: a handle's code */
    bool obj_args;   /* *NAME parameters: instances for the handler */
    /* CAPFFI__SLOW_* bits (call/fn.h): the invocation takes run_slow */
    atomic_uchar slow;
    bool obj_raw_ok; /* their raw pointer fields may be read (H3) */
    uint8_t ret_op;  /* how the result is stored (invoke.c) */
    uint8_t arg_op[CAPFFI_MAX_ARGS];
    uint64_t ret_off, ret_span; /* range check of a small-integer result */
    /* The owner thread's key (capffi__thread_key), NULL when the context
     * lends the host: equal means "run the handler right here". */
    const void *owner_key;
    capffi_cb_fn fn;
    void *payload;
    ffi_closure *closure; /* NULL for a thunk */
    int thunk;            /* thunk.c: the pool index, or -1 */
    uint8_t thunk_ix[14]; /* thunk.c: each argument's register word */
    ffi_cif cif;
    struct capffi__sig sig;
    capffi_value dflt;  /* the default result, as the handler's ret starts */
    void *dflt_bytes;   /* a struct default (ret_size bytes), else NULL */
    char *dflt_str;     /* a cstring default's copy, else NULL */
    uint64_t dflt_word; /* the default, stored for native code (not struct) */
    int timeout_ms;
    uint32_t refs;      /* owner thread */
    bool closed;        /* owner thread */
    const char *target; /* the signature (sig's arena): audit events' */
    struct capffi__tok *tok;
    struct capffi__res res;
    /* Under the owner lock: any thread records failures. */
    int st_first;
    uint64_t st_failures;
    char st_detail[CAPFFI_CB_DETAIL_MAX];
    struct capffi__link link; /* the context's list */
};

/* Most *NAME parameters a callback may have (their instances live in the
 * invocation's frame). */
#define CAPFFI__CB_MAX_OBJS 8

/* Choose how each argument reaches the handler and how its result is
 * stored (cb->sig parsed); wrap: CAPFFI_CB_WRAP. */
CAPFFI__HIDDEN void capffi__cb_plan(capffi_cb *cb, bool wrap);

/*
 * Store the value v of the declared result type where native code reads
 * it. Fails, writing nothing, with CAPFFI_ERANGE (a small integer out of
 * range), CAPFFI_ETYPE (a struct of the wrong size) or a handle's error;
 * *why gets the detail.
 */
CAPFFI__HIDDEN int capffi__cb_store(const capffi_cb *cb, const capffi_value *v,
                                    void *ret, char *why, size_t cap);

/* What libffi calls: every callback's code lands here, user being the
 * callback. */
CAPFFI__HIDDEN void capffi__cb_trampoline(ffi_cif *cif, void *ret, void **args,
                                          void *user);

#endif
