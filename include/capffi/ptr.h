/*
 * capffi/ptr.h - raw addresses: the address of a buffer, and integers
 * turned back into pointers.
 *
 * Both need CAPFFI_RIGHT_POINTER: a raw address lets native code (and a
 * host holding a view) reach memory capffi cannot bound. Both are audited.
 *
 * Thread safety: owner thread.
 */
#ifndef CAPFFI_PTR_H
#define CAPFFI_PTR_H

#include "common.h"

CAPFFI_BEGIN_DECLS

/**
 * The address of a buffer's bytes, for native code to keep beyond one
 * call (a `buffer` argument needs no such thing). The buffer is pinned:
 * until a matching capffi_buf_unpin, capffi_buf_free is deferred and the
 * bytes stay valid, so the pointer cannot dangle while the host believes
 * it valid. Each successful call adds one pin. An empty buffer yields NULL
 * (and is still pinned, so every call pairs with one unpin).
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL argument, freed buffer, a buffer
 *         of another context); CAPFFI_EBUSY (lent to a nonblocking call);
 *         CAPFFI_ETOKEN; CAPFFI_EREVOKED; CAPFFI_EPERM (no
 *         CAPFFI_RIGHT_POINTER); CAPFFI_ETHREAD. Audited
 *         (CAPFFI_OP_PTR_OF).
 * Ownership: the memory stays the buffer's.
 */
CAPFFI_API int capffi_ptr_of(void **out, capffi_ctx *ctx,
                             const capffi_token *tok, capffi_buf *buf);

/**
 * Turn an integer (e.g. one a host stored as a number) back into a
 * pointer. Nothing about the memory is checked: the right is the gate.
 * @return CAPFFI_OK; CAPFFI_EINVAL; CAPFFI_ETOKEN; CAPFFI_EREVOKED;
 *         CAPFFI_EPERM (no CAPFFI_RIGHT_POINTER); CAPFFI_ETHREAD. Audited
 *         (CAPFFI_OP_PTR_FROM_ADDR).
 */
CAPFFI_API int capffi_ptr_from_addr(void **out, capffi_ctx *ctx,
                                    const capffi_token *tok, uintptr_t addr);

CAPFFI_END_DECLS

#endif
