/*
 * capffi/loop.h - the owner thread's loop. Its functions (capffi_ctx_poll,
 * capffi_ctx_fd, capffi_ctx_keepalive) are the context's and are declared
 * in capffi/ctx.h with the other context functions; this header is kept
 * so that code including it still builds.
 */
#ifndef CAPFFI_LOOP_H
#define CAPFFI_LOOP_H

#include "ctx.h"

#endif
