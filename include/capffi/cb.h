/*
 * capffi/cb.h - callbacks: C function pointers that native code calls and
 * that run a host handler.
 *
 * A callback is made through a token with CAPFFI_RIGHT_CALLBACK, for a
 * signature in the language of docs/API.md ("Signatures"). Its code pointer
 * (capffi_cb_code) is what native code calls; pass the callback itself as a
 * `function` argument of a bound function (capffi_value.cb).
 *
 * The code pointer stays valid and callable until the context is freed,
 * whatever happens to the callback: after capffi_cb_close, or once its
 * token is revoked, it fails closed (the native caller receives the
 * callback's default result, the failure is recorded in the callback's
 * status and audited) and never reaches the handler.
 *
 * Threads (docs/callbacks.md): an invocation on the owner thread runs the
 * handler directly, re-entrantly. An invocation on another thread of a
 * callback made with CAPFFI_CB_THREADSAFE is queued to the owner thread,
 * which runs it in capffi_ctx_poll (capffi/ctx.h) while the calling thread
 * waits; with CAPFFI_OPT_LEND_OWNER it may instead run on the calling
 * thread while the owner is inside a native call. Without the flag, an
 * invocation on another thread fails closed with CAPFFI_ETHREAD. The
 * handlers of one context never run concurrently with each other or with
 * the owner thread's use of the context.
 *
 * Thread safety: capffi_cb_code, capffi_cb_fail, capffi_cb_arity and the
 * type accessors, any thread. The rest: owner thread, checked
 * (CAPFFI_ETHREAD).
 */
#ifndef CAPFFI_CB_H
#define CAPFFI_CB_H

#include "common.h"
#include "token.h"
#include "value.h"

CAPFFI_BEGIN_DECLS

/** The callback may be invoked from any thread (queued to the owner). */
#define CAPFFI_CB_THREADSAFE 0x1u
/** Small-integer results are wrapped to the declared width as a C cast
 *  would, instead of being range-checked. */
#define CAPFFI_CB_WRAP 0x2u
/** Invocations enter through a libffi closure even when one of capffi's
 *  own compiled entry points would do (they are used for scalar
 *  signatures while the process has one free): for comparing the two. */
#define CAPFFI_CB_LIBFFI 0x4u
/** The union of the valid CAPFFI_CB_* bits. */
#define CAPFFI_CB__ALL 0x7u

/** Longest detail kept in a capffi_cb_status, with its NUL. */
#define CAPFFI_CB_DETAIL_MAX 256

/**
 * The handler a callback runs.
 * @param payload as given to capffi_cb_new.
 * @param args    one value per parameter, converted as capffi_fn_call
 *                returns results (docs/API.md, "Values"): small integers
 *                widened into i64 or u64, a struct as `agg` pointing to
 *                its bytes (valid during the handler), a `function` or
 *                `buffer` parameter as the raw address in `p`, a `*NAME`
 *                or `*[$k]T` parameter as an instance in `obj` (NULL for
 *                NULL; the invocation's: never freed or kept by the
 *                host). Valid only during the handler.
 * @param ret     the result: it holds the callback's default result when
 *                the handler starts; set the member of the declared type.
 *                For a struct result, `ret->agg.ptr` points to memory of
 *                `ret->agg.len` bytes holding the default: write the result
 *                there, or point `agg.ptr` at other bytes of that length. A
 *                `function` result is a handle (`cb` or `fn`) or NULL, as
 *                for arguments.
 * To fail, call capffi_cb_fail before returning. A handler must return
 * normally: never longjmp or throw out of it, past native frames.
 */
typedef void (*capffi_cb_fn)(void *payload, const capffi_value *args,
                             capffi_value *ret);

/**
 * Creation options for capffi_cb_new_opts. Zero-initialise, then set what
 * you need; a zeroed struct is what capffi_cb_new(..., 0) makes.
 */
typedef struct capffi_cb_options {
    uint32_t flags; /**< CAPFFI_CB_* */
    /**
     * The default result, which the native caller receives whenever the
     * handler does not produce one (it failed, the callback is closed or
     * revoked, the invocation was refused). NULL: zero (0, false, 0.0,
     * NULL, a struct of zero bytes). Given in the member of the declared
     * result type and checked as a result is: a struct's `agg.len` must be
     * its size, a small integer must fit (unless CAPFFI_CB_WRAP), a
     * `function` is a handle or NULL. Copied, with a struct's bytes and a
     * cstring's characters.
     */
    const capffi_value *result;
    /**
     * How long an invocation from another thread waits for the owner
     * thread to start running it, in milliseconds; past that it fails
     * closed with CAPFFI_ETIMEDOUT. 0: no limit. Once the handler has
     * started, the calling thread waits for it to finish.
     */
    int timeout_ms;
} capffi_cb_options;

/**
 * Make a callback. Same as capffi_cb_new_opts with options that only set
 * `flags`.
 */
CAPFFI_API int capffi_cb_new(capffi_cb **out, capffi_ctx *ctx,
                             const capffi_token *tok, const char *signature,
                             capffi_cb_fn fn, void *payload, uint32_t flags);

/**
 * Make a callback: a libffi closure with the given signature whose
 * invocations run fn(payload, args, ret).
 * @param tok       a token with CAPFFI_RIGHT_CALLBACK. Revoking it (or an
 *                  ancestor) makes the callback fail closed.
 * @param signature any signature a bound function accepts except a
 *                  variadic one (a C callee cannot receive variadic
 *                  arguments through a closure).
 * @param fn        the handler; not NULL.
 * @param opts      NULL: the defaults (not thread-safe, zero result, no
 *                  timeout).
 * @return CAPFFI_OK; CAPFFI_EINVAL (ctx, out, signature or fn NULL, unknown
 *         flag bits, a negative timeout, a `function` default that is not a
 *         handle of ctx); CAPFFI_ETHREAD; CAPFFI_ETOKEN; CAPFFI_EREVOKED
 *         (also a revoked `function` default); CAPFFI_EPERM (CALLBACK
 *         missing); CAPFFI_ESIG (malformed or variadic signature);
 *         CAPFFI_ETYPE, CAPFFI_ERANGE (a default result that does not
 *         fit); CAPFFI_ECLOSED (a closed `function` default);
 *         CAPFFI_ENOMEM (also when the system refuses executable memory for
 *         the closure). Audited (CAPFFI_OP_CB_NEW).
 * Ownership: the context owns the callback: it is freed by capffi_ctx_free,
 *         never before, so its code pointer stays valid until then. Close
 *         it with capffi_cb_close when it is no longer wanted. fn and
 *         payload must stay valid until the callback is closed.
 * Thread safety: owner thread.
 */
CAPFFI_API int capffi_cb_new_opts(capffi_cb **out, capffi_ctx *ctx,
                                  const capffi_token *tok,
                                  const char *signature, capffi_cb_fn fn,
                                  void *payload, const capffi_cb_options *opts);

/**
 * The C function pointer native code calls.
 * @return the code address; NULL for NULL. It stays callable until the
 *         context is freed, even after the callback is closed or revoked.
 * Thread safety: any thread.
 */
CAPFFI_API void *capffi_cb_code(const capffi_cb *cb);

/**
 * The number of parameters of the callback's signature.
 * @return the count; 0 for NULL.
 * Thread safety: any thread (it reads only what creation fixed).
 */
CAPFFI_API size_t capffi_cb_arity(const capffi_cb *cb);

/**
 * The declared type of parameter i (0-based) or of the result, as
 * capffi_fn_param_type and capffi_fn_result_type describe a bound
 * function's: so that a host's generic handler can convert the arguments
 * it receives and the result it stores.
 * @param size receives the type's size in bytes; may be NULL. 0 when the
 *             result is NULL.
 * @return a keyword of the signature language ("bool", "i8" to "u64",
 *         "isize", "usize", "f32", "f64", "pointer", "buffer",
 *         "function", "cstring"; "void" for a result), "struct" for a
 *         struct by value, "object" for `*NAME` and `*[$k]T` (an
 *         instance in `obj`, valid while the handler runs); NULL when
 *         cb is NULL or i >= capffi_cb_arity(cb). A static string.
 * Thread safety: any thread (it reads only what creation fixed).
 */
CAPFFI_API const char *capffi_cb_param_type(const capffi_cb *cb, size_t i,
                                            size_t *size);
CAPFFI_API const char *capffi_cb_result_type(const capffi_cb *cb, size_t *size);

/**
 * Close a callback: from now on its code fails closed (the default result,
 * a recorded status and an audit event), its reference count is 0, and its
 * handler is never called again, except that invocations already running
 * on the owner thread's stack finish. The host may then release fn's
 * payload. The memory stays until capffi_ctx_free. Accepts NULL; closing
 * twice does nothing. Audited (CAPFFI_OP_CB_CLOSE).
 * Thread safety: owner thread; on another thread nothing is closed and a
 * CAPFFI_ETHREAD event is audited.
 */
CAPFFI_API void capffi_cb_close(capffi_cb *cb);

/**
 * Audit every invocation of this callback: one cb.invoke event per stored
 * result, as capffi_audit_calls does for every callback of a context
 * (capffi/audit.h says what the event holds). A callback is audited when
 * its own switch or its context's is on. Off by default, and then free.
 * @param cb the callback.
 * @param on true to audit its invocations, false to stop.
 * @return CAPFFI_OK; CAPFFI_EINVAL (cb NULL or not a callback).
 * Ownership: nothing is handed out; cb stays the caller's.
 * Thread safety: any thread; an invocation running on another thread
 * sees the change at its next invocation.
 */
CAPFFI_API int capffi_cb_audit(capffi_cb *cb, bool on);

/**
 * Count a reference to a thread-safe callback (Deno's ref): while a live
 * thread-safe callback has references, capffi_ctx_keepalive counts it, so
 * a host's loop knows to keep polling for it.
 * @param count receives the new count; may be NULL.
 * @return CAPFFI_OK; CAPFFI_EINVAL (cb NULL, not made with
 *         CAPFFI_CB_THREADSAFE, or the count would overflow);
 *         CAPFFI_ECLOSED; CAPFFI_EREVOKED; CAPFFI_ETHREAD.
 * Thread safety: owner thread.
 */
CAPFFI_API int capffi_cb_ref(uint32_t *count, capffi_cb *cb);

/**
 * Drop a reference taken with capffi_cb_ref.
 * @param count receives the new count; may be NULL.
 * @return CAPFFI_OK (also when the count is already 0: it stays 0);
 *         CAPFFI_EINVAL (cb NULL); CAPFFI_ETHREAD.
 * Thread safety: owner thread.
 */
CAPFFI_API int capffi_cb_unref(uint32_t *count, capffi_cb *cb);

/**
 * Fail the invocation whose handler is running on this thread: when the
 * handler returns, the native caller receives the default result (whatever
 * the handler put in ret), the callback's status records CAPFFI_ECALLBACK
 * with the message, and an event is audited (CAPFFI_OP_CB_INVOKE, reason
 * "failed"). Calling it again in the same handler keeps the first message.
 * @param message a short text for the status and the audit event; NULL
 *                means "the handler failed". Copied (up to
 *                CAPFFI_CB_DETAIL_MAX - 1 bytes).
 * @return CAPFFI_OK; CAPFFI_EINVAL when no handler is running on this
 *         thread.
 * Thread safety: any thread (it acts on that thread's innermost handler).
 */
CAPFFI_API int capffi_cb_fail(const char *message);

/**
 * What went wrong with a callback's invocations since its status was last
 * taken (capffi_cb_take_status).
 */
typedef struct capffi_cb_status {
    /**
     * The first failure: CAPFFI_OK when every invocation since the last
     * take produced the handler's result; else CAPFFI_ECALLBACK (the
     * handler failed), CAPFFI_ERANGE, CAPFFI_ETYPE or CAPFFI_EINVAL (its
     * result did not fit the declared type), CAPFFI_ECLOSED,
     * CAPFFI_EREVOKED, CAPFFI_ETHREAD (invoked on another thread without
     * CAPFFI_CB_THREADSAFE), CAPFFI_ETIMEDOUT (the owner did not start it
     * in time) or CAPFFI_ECANCELED (the context was freed while it
     * waited).
     */
    int first;
    uint64_t failures;                 /**< invocations that failed */
    char detail[CAPFFI_CB_DETAIL_MAX]; /**< the first failure's detail */
} capffi_cb_status;

/**
 * Read and reset a callback's status: after a native call returns, this
 * tells the host whether a callback it passed failed meanwhile, and why.
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL out or cb); CAPFFI_ETHREAD. On
 *         failure *out is zeroed.
 * Thread safety: owner thread. Invocations on other threads record their
 *         failures under a lock, so none is lost or counted twice.
 */
CAPFFI_API int capffi_cb_take_status(capffi_cb_status *out, capffi_cb *cb);

CAPFFI_END_DECLS

#endif
