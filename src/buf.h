/*
 * buf.h - the buffer struct (buf.c), read by the call path, pointer-of
 * (ptr.c) and views (view.c).
 */
#ifndef CAPFFI_SRC_BUF_H
#define CAPFFI_SRC_BUF_H

#include <stdatomic.h>

#include "internal.h"

/*
 * A buffer's life:
 *
 *   live --capffi_buf_free--> freeing --last pin or lend ends--> dead
 *     \______________________________________________________/^
 *                (no pins and not lent: at once)
 *
 * While live it may be pinned (capffi_ptr_of, a view over it) any number
 * of times and lent to at most one nonblocking call. Its bytes are
 * released when it is dead; the struct then waits in the context's
 * quarantine (magic BUF_DEAD) so that a second free is recognised.
 */
struct capffi_buf {
    uint32_t magic; /* BUF_LIVE, BUF_FREEING or BUF_DEAD */
    bool owned;     /* data was allocated by capffi_buf_new */
    atomic_bool lent;
    atomic_uint pins;  /* capffi_ptr_of's, released by capffi_buf_unpin */
    atomic_uint views; /* views of the buffer, released by capffi_view_free */
    capffi_ctx *ctx;
    void *data;
    size_t len;
    capffi_release_fn release;
    void *payload;
    struct capffi_buf *prev, *next; /* the context's list while not dead */
};

#define CAPFFI__BUF_LIVE 0x63617062u    /* "capb" */
#define CAPFFI__BUF_FREEING 0x63617066u /* "capf" */
#define CAPFFI__BUF_DEAD 0x64656164u    /* "dead" */
#define CAPFFI__BUF_QUARANTINE 256      /* dead structs kept per context */

/* The quarantine of dead buffer structs (a ring), in the context. */
struct capffi__bufq {
    struct capffi_buf *slot[CAPFFI__BUF_QUARANTINE];
    size_t next;
};

/* The pointer a `buffer` argument passes: NULL for a NULL or empty
 * buffer. CAPFFI_EINVAL for something that is not a live buffer,
 * CAPFFI_EBUSY for a lent one. Any thread. */
CAPFFI__HIDDEN int capffi__buf_arg(capffi_ctx *ctx, const capffi_buf *buf,
                                   void **out);

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

#endif
