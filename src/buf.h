/*
 * buf.h - the buffer struct (buf.c), read by the call path.
 */
#ifndef CAPFFI_SRC_BUF_H
#define CAPFFI_SRC_BUF_H

#include "internal.h"

struct capffi_buf {
    uint32_t magic; /* BUF_MAGIC while live */
    bool owned;     /* data was allocated by capffi_buf_new */
    capffi_ctx *ctx;
    void *data;
    size_t len;
    capffi_release_fn release;
    void *payload;
    struct capffi_buf *prev, *next; /* the context's list */
};

/* The pointer a `buffer` argument passes: NULL for a NULL or empty
 * buffer. CAPFFI_EINVAL for something that is not a live buffer. */
CAPFFI__HIDDEN int capffi__buf_arg(capffi_ctx *ctx, const capffi_buf *buf,
                                   void **out);

CAPFFI__HIDDEN void capffi__buf_free_all(capffi_ctx *ctx);

#endif
