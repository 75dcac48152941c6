/*
 * handle.h - what every handle capffi gives out shares: the state word
 * its uses load, the magic numbers that tell handles apart, the link that
 * lets revoking a token reach what was made through it, and the head of
 * the handles native code may be passed as a `function` value.
 */
#ifndef CAPFFI_SRC_BASE_HANDLE_H
#define CAPFFI_SRC_BASE_HANDLE_H

#include <stdatomic.h>
#include <stddef.h>

#include "base/internal.h"

/* Values of the state word every use of a handle loads (acquire). */
enum { CAPFFI__LIVE = 0, CAPFFI__CLOSED = 1, CAPFFI__REVOKED = 2 };

/*
 * Why a call leaves the common path (capffi_fn.careful, .raw_slow; a
 * callback's slow): what its signature or flags need, an audit of this
 * function or callback (capffi_fn_audit, capffi_cb_audit), an audit of
 * every call in the context (capffi_audit_calls).
 */
enum {
    CAPFFI__SLOW_PLAN = 1,
    CAPFFI__SLOW_AUDIT = 2,
    CAPFFI__SLOW_AUDIT_CTX = 4,
    CAPFFI__SLOW_AUDITED = CAPFFI__SLOW_AUDIT | CAPFFI__SLOW_AUDIT_CTX
};

/* Set (on) or clear CAPFFI__SLOW_* bits in a slow-path byte. Any thread:
 * a call running elsewhere sees the change at its next load. */
static inline void
capffi__slow_set(atomic_uchar *byte, unsigned bits, bool on)
{
    if (on)
        atomic_fetch_or(byte, (unsigned char)bits);
    else
        atomic_fetch_and(byte, (unsigned char)~bits);
}

/* The struct that holds member m at p. */
#define capffi__container_of(p, type, m)                                       \
    ((type *)(void *)((char *)(p)-offsetof(type, m)))

/*
 * The list a context keeps of the handles of one kind (libraries,
 * functions, buffers, views, callbacks), doubly linked through a member of
 * each handle, so a handle leaves it in constant time. Owner thread.
 */
struct capffi__link {
    struct capffi__link *prev, *next;
};

struct capffi__list {
    struct capffi__link *head;
};

static inline void
capffi__list_add(struct capffi__list *l, struct capffi__link *k)
{
    k->prev = NULL;
    k->next = l->head;
    if (l->head)
        l->head->prev = k;
    l->head = k;
}

static inline void
capffi__list_remove(struct capffi__list *l, struct capffi__link *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        l->head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    k->prev = k->next = NULL;
}

/* Take the first handle off the list: NULL when it is empty. For freeing
 * them all: `while ((k = capffi__list_pop(&l))) free(container_of(k)).` */
static inline struct capffi__link *
capffi__list_pop(struct capffi__list *l)
{
    struct capffi__link *k = l->head;
    if (k)
        capffi__list_remove(l, k);
    return k;
}

/*
 * A resource made through a token (a library, a function from a pointer,
 * a callback, a view). It is embedded in the resource's own struct and
 * linked into its token's list (perm/token.c), so revoking the token can
 * reach it. on_revoke runs with the context's token lock held, on
 * whatever thread revokes: it must only flip state (an atomic store),
 * never call back into capffi.
 */
struct capffi__res {
    struct capffi__res *prev, *next;
    void (*on_revoke)(struct capffi__res *r);
};

/*
 * What the handles made from a library share with it (call/lib.c): the
 * state word they watch (LIVE, CLOSED, REVOKED) and the count of what
 * keeps the library loaded and its record allocated: the host's handle
 * until capffi_lib_close, each function bound from it and each instance
 * its calls made. When the count falls to zero, last unloads the library.
 * pinned: native code was given the address of one of its functions (a
 * `function` value), which it may call at any later time, so the code
 * stays mapped until the context is freed. refs: owner thread.
 */
struct capffi__source {
    atomic_int state;
    atomic_bool pinned;
    unsigned refs;
    void (*last)(struct capffi__source *s);
};

/* Take and let go of a reference to src (NULL: none). Owner thread. */
static inline void
capffi__source_hold(struct capffi__source *src)
{
    if (src)
        src->refs++;
}

static inline void
capffi__source_drop(struct capffi__source *src)
{
    if (src && --src->refs == 0)
        src->last(src);
}

/*
 * Magic numbers of the callable handles. A `function` value is a
 * capffi_fn or a capffi_cb; the call path tells them apart by this.
 */
#define CAPFFI__CB_MAGIC 0x63616263u /* "cbac" */
#define CAPFFI__FN_MAGIC 0x63616e66u /* "fnac" */

/*
 * The first member of capffi_fn and capffi_cb: all a `function` argument
 * or result needs of either, so the call core passes callbacks without
 * knowing the callback module.
 */
struct capffi__callable {
    uint32_t magic;          /* CAPFFI__FN_MAGIC or CAPFFI__CB_MAGIC */
    const atomic_int *state; /* LIVE, CLOSED or REVOKED */
    void *code;              /* the address native code calls */
    capffi_ctx *ctx;
    struct capffi__source *src; /* a bound function's library, else NULL */
};

/*
 * The code a `function` value passes: a callback's or a function's, or
 * NULL for NULL. CAPFFI_EINVAL (not a handle, or another context's),
 * CAPFFI_ECLOSED, CAPFFI_EREVOKED, with a message naming argument `arg`
 * (counted from 1; 0 names the result). Any thread. In error.c.
 */
CAPFFI__HIDDEN int capffi__callable_code(capffi_ctx *ctx, const void *handle,
                                         size_t arg, void **code);

#endif
