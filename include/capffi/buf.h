/*
 * capffi/buf.h - host memory that may be handed to native code.
 *
 * A `buffer` parameter takes a capffi_buf: native code receives a pointer
 * to its bytes for the length of the call (an empty buffer passes NULL, as
 * Deno does). Buffers are made without a token: they are the host's own
 * memory. Keeping a buffer's address beyond a call is capffi_ptr_of's
 * business (capffi/ptr.h, CAPFFI_RIGHT_POINTER).
 *
 * A buffer is live until capffi_buf_free. Two things can hold it beyond
 * that, and the release of its bytes then waits for them:
 *   - pins: each capffi_ptr_of adds one, released by capffi_buf_unpin;
 *     each view of the buffer holds it too, until capffi_view_free;
 *   - a lend: a nonblocking call owns the buffer until it ends; meanwhile
 *     capffi_buf_data, buffer arguments, capffi_ptr_of and views over it
 *     report CAPFFI_EBUSY.
 * After capffi_buf_free the handle is good only for capffi_buf_unpin.
 * A second capffi_buf_free of the same handle is recognised until its
 * struct is reused, after at least 256 more frees (docs/API.md,
 * "Conventions"), and refused with a message and an audit event
 * (CAPFFI_OP_BUF_FREE).
 *
 * Thread safety: owner thread. A buffer argument may be used by calls on
 * any thread; the host must not free it while such a call runs.
 */
#ifndef CAPFFI_BUF_H
#define CAPFFI_BUF_H

#include "common.h"

CAPFFI_BEGIN_DECLS

/** The signature of a wrapped buffer's release callback. */
typedef void (*capffi_release_fn)(void *payload, void *mem);

/**
 * Allocate a zero-filled buffer of len bytes (len may be 0).
 * @return CAPFFI_OK; CAPFFI_EINVAL; CAPFFI_ETHREAD; CAPFFI_ENOMEM.
 * Ownership: the caller owns *out; capffi_buf_free it. Freeing the context
 *            frees it too.
 */
CAPFFI_API int capffi_buf_new(capffi_buf **out, capffi_ctx *ctx, size_t len);

/**
 * Wrap host memory. capffi never frees mem itself: when the buffer is
 * freed (or its context is), release(payload, mem) is called once, if
 * release is not NULL.
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL mem with len > 0); CAPFFI_ETHREAD;
 *         CAPFFI_ENOMEM (release is then not called).
 */
CAPFFI_API int capffi_buf_wrap(capffi_buf **out, capffi_ctx *ctx, void *mem,
                               size_t len, capffi_release_fn release,
                               void *payload);

/**
 * The buffer's bytes and length.
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL, or freed); CAPFFI_EBUSY (lent to
 *         a nonblocking call: the host may not touch the bytes until it
 *         ends).
 */
CAPFFI_API int capffi_buf_data(void **ptr, size_t *len, capffi_buf *buf);

/**
 * Free a buffer: at once, or when its last pin or lend ends. Accepts NULL.
 * A wrapped buffer's release callback runs then, once.
 */
CAPFFI_API void capffi_buf_free(capffi_buf *buf);

/**
 * Drop one pin taken by capffi_ptr_of. The last unpin of a freed buffer
 * releases it; native code must not use the address afterwards.
 * A view's hold is not a pin: only capffi_view_free releases it.
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL, no capffi_ptr_of pin left, or
 *         released);
 *         CAPFFI_ETHREAD.
 */
CAPFFI_API int capffi_buf_unpin(capffi_buf *buf);

/** @return the pins plus the views holding a buffer (0 for NULL or a
 *  released buffer). For diagnostics and tests. */
CAPFFI_API size_t capffi_buf_pins(const capffi_buf *buf);

CAPFFI_END_DECLS

#endif
