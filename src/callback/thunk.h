/*
 * thunk.h - capffi's own callback entry points (thunk.c): a fixed pool of
 * compiled functions that native code calls instead of a libffi closure.
 */
#ifndef CAPFFI_SRC_CALLBACK_THUNK_H
#define CAPFFI_SRC_CALLBACK_THUNK_H

#include "callback/invoke.h"

/* How many callbacks of the whole process can hold a thunk at once. */
#define CAPFFI__THUNKS 500

/*
 * Give cb a thunk when its signature fits one (scalar arguments in at
 * most six integer and eight SSE registers, a scalar or void result, not
 * variadic) and the pool has a free one: cb->call.code becomes the
 * thunk's address and cb->thunk its index, and invocations reach
 * capffi__cb_trampoline with the arguments where libffi would have put
 * them. False (cb untouched) otherwise: the caller uses a libffi closure.
 * Owner thread of cb's context; the pool has its own lock.
 */
CAPFFI__HIDDEN bool capffi__thunk_take(capffi_cb *cb);

/*
 * Give cb's thunk back to the pool (when cb is freed with its context).
 * A native caller that kept the address and calls it later gets a zero
 * result while the thunk is free, and enters whichever callback (of any
 * context) takes it next once it is handed out again: as with a freed
 * libffi closure, the address must not be called after capffi_ctx_free
 * (capffi/cb.h). The pool hands out the other free thunks first.
 */
CAPFFI__HIDDEN void capffi__thunk_release(capffi_cb *cb);

#endif
