/*
 * capffi/buf.h - host memory that may be handed to native code.
 *
 * A `buffer` parameter takes a capffi_buf: native code receives a pointer
 * to its bytes for the length of the call (an empty buffer passes NULL, as
 * Deno does). Buffers are made without a token: they are the host's own
 * memory. Taking a buffer's address for longer than a call is
 * capffi_ptr_of's business (CAPFFI_RIGHT_POINTER).
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
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL, or not a live buffer).
 */
CAPFFI_API int capffi_buf_data(void **ptr, size_t *len, capffi_buf *buf);

/** Free a buffer. Accepts NULL. */
CAPFFI_API void capffi_buf_free(capffi_buf *buf);

CAPFFI_END_DECLS

#endif
