/*
 * capffi/loop.h - the owner thread's loop.
 *
 * Work that must run on a context's owner thread but arrives from other
 * threads (invocations of thread-safe callbacks) is queued to the context.
 * capffi_ctx_fd is a descriptor that becomes readable when something is
 * queued, for hosts that wait in their own poll(2), epoll or event loop;
 * capffi_ctx_poll runs what is queued. capffi_ctx_keepalive tells a host
 * whether anything may still arrive that it should keep polling for.
 *
 * Thread safety: capffi_ctx_fd, any thread. The rest: owner thread.
 */
#ifndef CAPFFI_LOOP_H
#define CAPFFI_LOOP_H

#include "common.h"

CAPFFI_BEGIN_DECLS

/**
 * Run the work queued to the owner thread, waiting for some if there is
 * none.
 * @param timeout_ms how long to wait for work when none is queued: 0 does
 *                   not wait, a negative value waits without limit.
 * @return CAPFFI_OK when queued work ran or the loop was woken (a queued
 *         invocation that another path took meanwhile, a thread-safe
 *         callback revoked elsewhere: re-check capffi_ctx_keepalive);
 *         CAPFFI_ETIMEDOUT when the time passed with nothing to do;
 *         CAPFFI_EINVAL (ctx NULL); CAPFFI_ETHREAD (audited,
 *         CAPFFI_OP_CTX_POLL). Work that arrives while queued work runs
 *         waits for the next call, so one call never runs forever.
 * Thread safety: owner thread. It may be called from inside a handler.
 */
CAPFFI_API int capffi_ctx_poll(capffi_ctx *ctx, int timeout_ms);

/**
 * A descriptor that is readable while work is queued for capffi_ctx_poll.
 * Wait for it to become readable, then call capffi_ctx_poll(ctx, 0); never
 * read, write or close it. It may be readable with nothing queued (poll
 * then returns CAPFFI_OK having run nothing).
 * @return the descriptor (>= 0); CAPFFI_EINVAL for NULL.
 * Ownership: the context's; closed by capffi_ctx_free.
 * Thread safety: any thread.
 */
CAPFFI_API int capffi_ctx_fd(const capffi_ctx *ctx);

/**
 * The number of live (neither closed nor revoked) thread-safe callbacks
 * that hold references (capffi_cb_ref): while it is above 0, other
 * threads may still invoke them and the host should keep calling
 * capffi_ctx_poll. 0 for NULL or off the owner thread.
 * Thread safety: owner thread.
 */
CAPFFI_API size_t capffi_ctx_keepalive(const capffi_ctx *ctx);

CAPFFI_END_DECLS

#endif
