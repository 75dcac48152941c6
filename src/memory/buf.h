/*
 * buf.h - the buffer struct (buf.c), read by the call path, pointer-of
 * (ptr.c) and views (view.c).
 */
#ifndef CAPFFI_SRC_BUF_H
#define CAPFFI_SRC_BUF_H

#include <stdatomic.h>

#include "base/handle.h"
#include "base/recycle.h"
#include "base/internal.h"
#include "types/names.h"

/*
 * A buffer's life:
 *
 *   live --capffi_buf_free--> freeing --last hold ends--> dead
 *     \____________________________________________________/^
 *                (nothing holds it: at once)
 *
 * While live it may be pinned (capffi_ptr_of, a view over it) any number
 * of times, passed to any number of running calls, and lent to at most
 * one nonblocking call. Its bytes are released when it is dead; the
 * struct then waits in the context's recycler (magic BUF_DEAD) so that
 * a second free is recognised until it is reused (base/recycle.h).
 *
 * H2: a call holds every buffer argument from before its pointer is
 * taken until the native function has returned, so a handler (or
 * another thread) that frees the buffer meanwhile only marks it freeing.
 * Calls run on any thread, so taking that hold and freeing race: each
 * side writes its own word (calls, magic) and then reads the other's,
 * all sequentially consistent, so at least one of them sees the other
 * and yields. Exactly one party buries a freed buffer: the one whose
 * compare-and-swap moves magic from BUF_FREEING to BUF_BURYING.
 */
struct capffi_buf {
    _Atomic uint32_t magic; /* BUF_LIVE, BUF_FREEING, BUF_BURYING, BUF_DEAD */
    bool owned;             /* data was allocated by capffi_buf_new */
    atomic_bool lent;
    atomic_uint pins;  /* capffi_ptr_of's, released by capffi_buf_unpin */
    atomic_uint views; /* views of the buffer, released by capffi_view_free */
    atomic_uint calls; /* running calls that pass it (any thread) */
    capffi_ctx *ctx;
    void *data;
    size_t len;
    capffi_release_fn release;
    void *payload;
    struct capffi__link link;       /* the context's list while not dead */
    struct capffi_buf *settle_next; /* the context's to-bury stack */
};

#define CAPFFI__BUF_LIVE 0x63617062u    /* "capb" */
#define CAPFFI__BUF_FREEING 0x63617066u /* "capf" */
#define CAPFFI__BUF_BURYING 0x63617075u /* "capu" */
#define CAPFFI__BUF_DEAD 0x64656164u    /* "dead" */

/*
 * The dead buffer structs, waiting for reuse, and the buffers whose last
 * call ended on another thread after they were freed: their bytes and
 * release function wait for the owner thread (capffi__buf_reap).
 */
struct capffi__bufq {
    struct capffi__recycle dead;
    struct capffi_buf *_Atomic to_bury; /* a lock-free stack */
};

/*
 * The pointer a `buffer` argument passes, with the buffer held for the
 * call: NULL (and no hold) for a NULL buffer, NULL for an empty one.
 * CAPFFI_EINVAL for something that is not a live buffer, CAPFFI_EBUSY
 * for a lent one; nothing is held then. Any thread. Every success is
 * matched by one capffi__buf_call_end once the native call returned.
 */
CAPFFI__HIDDEN int capffi__buf_call_begin(capffi_ctx *ctx, capffi_buf *buf,
                                          void **out);
/* Drop a call's hold (buf may be NULL). A freed buffer whose last hold
 * this was is buried here on the owner thread, or queued for it. */
CAPFFI__HIDDEN void capffi__buf_call_end(capffi_buf *buf);

/* Bury the freed buffers whose last hold ended on another thread. Owner
 * thread: capffi_buf_new and capffi_buf_free call it, and so does
 * capffi_ctx_poll. */
CAPFFI__HIDDEN void capffi__buf_reap(capffi_ctx *ctx);

/* Check that buf is live (CAPFFI_EINVAL with a message naming `fn`
 * otherwise) and not lent (CAPFFI_EBUSY). */
CAPFFI__HIDDEN int capffi__buf_usable(const capffi_buf *buf, const char *fn);

/* Pin a usable buffer for capffi_ptr_of, or hold it for a view / drop
 * that hold (owner thread). Kept apart so capffi_buf_unpin can never
 * release a view's hold. The last release of a freed buffer frees it. */
CAPFFI__HIDDEN void capffi__buf_pin(capffi_buf *buf);
CAPFFI__HIDDEN void capffi__buf_hold(capffi_buf *buf);
CAPFFI__HIDDEN void capffi__buf_unhold(capffi_buf *buf);

/*
 * Lend a usable buffer to a nonblocking call: until capffi__buf_unlend,
 * capffi_buf_data, buffer arguments, capffi_ptr_of and views over it
 * report CAPFFI_EBUSY, and capffi_buf_free is deferred. CAPFFI_EBUSY if
 * it is lent already. Owner thread; unlend too (jobs complete there).
 */
CAPFFI__HIDDEN int capffi__buf_lend(capffi_buf *buf);
CAPFFI__HIDDEN void capffi__buf_unlend(capffi_buf *buf);

CAPFFI__HIDDEN void capffi__buf_free_all(capffi_ctx *ctx);

/* The context as far as buffers (perm/audit.h). */
struct capffi__ctx_buf {
    struct capffi__ctx_names up;
    struct capffi__list bufs;
    struct capffi__bufq bufq; /* dead buffers, to recognise a second free */
};

static inline struct capffi__ctx_buf *
capffi__bufs_of(const capffi_ctx *ctx)
{
    return (struct capffi__ctx_buf *)(uintptr_t)ctx;
}

#endif
