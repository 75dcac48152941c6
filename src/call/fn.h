/*
 * fn.h - the bound-function struct, shared by lib.c (binding) and fn.c
 * (calling).
 */
#ifndef CAPFFI_SRC_FN_H
#define CAPFFI_SRC_FN_H

#include <stdatomic.h>

#include "base/handle.h"
#include "base/recycle.h"
#include "call/abi.h"
#include "perm/token.h"
#include "types/sig.h"
#include "types/value.h"
#include "memory/obj.h"

/*
 * How the call path treats one argument, chosen once at bind time. On a
 * little-endian LP64 machine every scalar member of capffi_value starts at
 * offset 0, so most arguments are passed straight from the caller's value
 * (ARG_DIRECT); small integers are range-checked first (unless
 * CAPFFI_FN_WRAP, when the low bytes are the wrapped value).
 */
enum capffi__arg_op {
    ARG_DIRECT,
    ARG_BUFFER,
    ARG_STRUCT,
    ARG_FUNCTION, /* a capffi_cb or capffi_fn handle: its code is passed */
    ARG_OBJ,      /* *NAME: an instance, held for the call; its address */
    ARG_OUT       /* out: the address of a slot, read back after the call */
};

/* Internal bit of capffi_fn.flags: the context lends the host around the
 * call (CAPFFI_OPT_LEND_OWNER), so the call takes the careful path. */
#define CAPFFI__FN_LEND 0x80000000u

struct capffi_fn {
    /* magic CAPFFI__FN_MAGIC; state: the library's, or own_state */
    struct capffi__callable call;
    /* What every call reads, next to the head: the stub, the careful bits,
     * how the result is loaded, the range checks. */
    struct capffi__abi_stub_plan stub; /* abi.c: a scalar signature's stub,
                                          or call NULL */
    /* CAPFFI__SLOW_* bits: the call takes call_careful. Atomic because
     * audit switches flip bits while other threads call; the relaxed load
     * is the plain load the call path made anyway. */
    atomic_uchar careful;
    uint8_t ret_op; /* enum capffi__vop: the result into capffi_value */
    uint8_t nargs;  /* sig.nargs */
    /*
     * The small-integer arguments, checked as one unsigned compare each:
     * value.u64 + off > span means out of range (for a signed N-bit type,
     * off = 2^(N-1); for unsigned, off = 0; span = 2^N - 1). Only these
     * are read as 64 bits: other members may be narrower than the value.
     */
    uint8_t n_ranged;
    struct {
        uint8_t arg;
        uint64_t off, span;
    } ranged[CAPFFI_MAX_ARGS];
    /* abi.c: the direct call, when shape != 0. Next to the head, so that a
     * call reads one stretch of the struct. */
    struct capffi__abi abi;
    ffi_cif cif;
    uint32_t flags;
    bool big_struct_args; /* libffi rewrites avalue for these */
    bool ret_struct;
    bool convert_args;     /* buffer, struct or function args */
    bool buffer_args;      /* held for the call (H2) */
    bool objs;             /* *NAME or out arguments, or a *NAME result */
    bool obj_raw_ok;       /* instances it makes may hold raw pointers */
    atomic_uchar raw_slow; /* CAPFFI__SLOW_* bits: call_raw's careful path */
    uint8_t arg_op[CAPFFI_MAX_ARGS]; /* enum capffi__arg_op */
    struct capffi__sig sig;
    const char *name;     /* the symbol (in sig's arena); NULL: from_ptr */
    void **dtors;         /* own ... by SYMBOL: per argument, then the result */
    atomic_int own_state; /* capffi_fn_from_ptr */
    unsigned jobs;        /* jobs not ended (owner thread) */
    const struct capffi__tok *tok; /* made through it, for audit events */
    bool freed;                    /* capffi_fn_free waits for them */
    struct capffi__res res;        /* capffi_fn_from_ptr: linked to its token */
    struct capffi__link link;      /* the context's list */
};

/*
 * Make a function for code with the given signature (type names as seen
 * from scope) and flags, watching the state word of src, its library, which
 * it holds until it is released (NULL: its own state word). Linked into the
 * context's list. CAPFFI_ESIG, CAPFFI_EINVAL (bad flags), CAPFFI_ENOMEM.
 */
CAPFFI__HIDDEN int capffi__fn_new(capffi_fn **out, capffi_ctx *ctx,
                                  const struct capffi__tok *scope, void *code,
                                  const char *signature, uint32_t flags,
                                  struct capffi__source *src);

/*
 * Resolve the destructors (own ... by SYMBOL) of a new function through
 * find (its library's symbol lookup); CAPFFI_ESIG for a function made
 * without a library. The message is set on failure.
 */
CAPFFI__HIDDEN int
capffi__fn_bind_dtors(capffi_fn *fn,
                      int (*find)(void *lib, const char *symbol, void **out),
                      void *lib);

/* The elements a *NAME argument i must have: its *[N]T count, argument
 * k's value for *[$k]T (CAPFFI_ERANGE when negative), else 1. */
CAPFFI__HIDDEN int capffi__fn_arg_need(const capffi_fn *fn, size_t i,
                                       const capffi_value *args,
                                       uint64_t *need);

/* Turn the address a call produced for *NAME type t into an instance
 * of fn's (a result, an out-parameter, a job's result). Owner thread. */
CAPFFI__HIDDEN int capffi__fn_wrap(capffi_fn *fn, const struct capffi__type *t,
                                   void *dtor, void *addr, capffi_obj **out);

/* A job holds its function until it ends: capffi_fn_free then only
 * marks it, and the last job releases it. Owner thread. */
CAPFFI__HIDDEN void capffi__fn_hold(capffi_fn *fn);
CAPFFI__HIDDEN void capffi__fn_unhold(capffi_fn *fn);

CAPFFI__HIDDEN int capffi__fn_call_held(capffi_fn *fn, void **args, void *ret);

/* Set what capffi_last_errno answers on this thread (a job's errno). */
CAPFFI__HIDDEN void capffi__fn_set_errno(int e);

/* What audit events call a function (their target): its symbol, or its
 * address (written into addr) for a function made from a pointer. */
CAPFFI__HIDDEN const char *capffi__fn_target(const capffi_fn *fn,
                                             char addr[32]);

/* Set or clear the context's audit bit of every function (owner thread):
 * capffi_audit_calls. */
CAPFFI__HIDDEN void capffi__fn_audit_all(capffi_ctx *ctx, bool on);

/* Free every function of the context (capffi_ctx_free). */
CAPFFI__HIDDEN void capffi__fn_free_all(capffi_ctx *ctx);

/* The context as far as bound functions (perm/audit.h). */
struct capffi__ctx_fn {
    struct capffi__ctx_obj up;
    struct capffi__list fns;
    struct capffi__recycle dead; /* freed functions, to recognise */
};

static inline struct capffi__ctx_fn *
capffi__fns_of(const capffi_ctx *ctx)
{
    return (struct capffi__ctx_fn *)(uintptr_t)ctx;
}

#endif
