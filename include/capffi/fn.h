/*
 * capffi/fn.h - calling bound functions.
 *
 * The call path does no allocation, no locking and no cryptography: one
 * atomic load tells whether the function's library was closed or its token
 * revoked, then the arguments are converted on the stack and the function
 * is called: on x86-64 System V by capffi's direct call, planned at bind
 * time; elsewhere, past 128 bytes of stack arguments and with
 * CAPFFI_FN_LIBFFI by libffi's ffi_call. docs/API.md, "How a call is
 * made".
 *
 * Thread safety: capffi_fn_call and capffi_fn_call_raw may be called from
 * any thread, concurrently. The rest: owner thread.
 */
#ifndef CAPFFI_FN_H
#define CAPFFI_FN_H

#include "common.h"
#include "token.h"
#include "type.h"
#include "value.h"

CAPFFI_BEGIN_DECLS

/* Flags of capffi_lib_bind and capffi_fn_from_ptr (CAPFFI_FN_*). */

/** Allow a symbol that lives in one of the library's dependencies. */
#define CAPFFI_FN_DEPS 0x1u
/** Small integers wrap like C casts instead of failing with ERANGE. */
#define CAPFFI_FN_WRAP 0x2u
/** Capture errno right after each call (see capffi_last_errno). */
#define CAPFFI_FN_ERRNO 0x4u
/** A missing symbol is expected: CAPFFI_ENOTFOUND, no audit event. */
#define CAPFFI_FN_OPTIONAL 0x8u
/** Make every call through libffi's ffi_call, even where capffi's direct
 *  call applies (docs/API.md, "How a call is made"): for comparing the
 *  two, or to rule the direct call out when a call misbehaves. */
#define CAPFFI_FN_LIBFFI 0x10u

/** Most parameters a signature may have (fixed and variadic together). */
#define CAPFFI_MAX_ARGS 64

/**
 * Call a bound function with converted values.
 * @param args one value per parameter (fixed and variadic), in order; may
 *             be NULL when there are none.
 * @param ret  receives the result; may be NULL to discard it (not for a
 *             struct result, whose memory the caller provides in
 *             ret->agg).
 * @return CAPFFI_OK; CAPFFI_EINVAL (fn NULL, args NULL with parameters, a
 *         struct result without memory, a struct argument whose agg.ptr is
 *         NULL, a buffer argument that is not a live capffi_buf);
 *         CAPFFI_EBUSY (a buffer argument is lent to a nonblocking call);
 *         CAPFFI_ERANGE (a small integer
 *         out of range; the message names the argument); CAPFFI_ETYPE (a
 *         struct argument of the wrong size); CAPFFI_ECLOSED (library
 *         closed); CAPFFI_EREVOKED (token revoked). Nothing is audited on
 *         the call path; failures set the message only on the owner
 *         thread (elsewhere, that thread's message).
 */
CAPFFI_API int capffi_fn_call(capffi_fn *fn, const capffi_value *args,
                              capffi_value *ret);

/**
 * Call a bound function the way ffi_call does: args[i] points to the
 * i-th argument in its native representation, ret to memory for the
 * result, which must be at least 8 bytes for scalar results (libffi
 * widens them to a full register) and the struct's size for struct
 * results. No conversion and no range check; `args` is not modified.
 * @return CAPFFI_OK; CAPFFI_EINVAL (fn NULL, args NULL with parameters,
 *         ret NULL for a struct result); CAPFFI_ECLOSED; CAPFFI_EREVOKED.
 */
CAPFFI_API int capffi_fn_call_raw(capffi_fn *fn, void **args, void *ret);

/**
 * Make a callable function from a raw code address, such as a function
 * pointer returned by native code.
 * @param tok a token with CAPFFI_RIGHT_FNPTR. The function is revoked with
 *            it.
 * @param flags CAPFFI_FN_WRAP, CAPFFI_FN_ERRNO and CAPFFI_FN_LIBFFI
 *            apply; CAPFFI_FN_DEPS and CAPFFI_FN_OPTIONAL mean nothing
 *            here and are ignored.
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL code); CAPFFI_ETOKEN;
 *         CAPFFI_EREVOKED; CAPFFI_EPERM; CAPFFI_ESIG; CAPFFI_ETHREAD;
 *         CAPFFI_ENOMEM. Audited (CAPFFI_OP_FN_FROM_PTR).
 * Ownership: the caller owns *out; capffi_fn_free it.
 */
CAPFFI_API int capffi_fn_from_ptr(capffi_fn **out, capffi_ctx *ctx,
                                  const capffi_token *tok, void *code,
                                  const char *signature, uint32_t flags);

/** Free a bound function. Accepts NULL. Nonblocking calls of it still
 *  pending keep it until the last one ends (capffi/job.h). A second free
 *  does nothing and a call is refused (CAPFFI_EINVAL) until its struct is
 *  reused, after at least 256 more frees (docs/API.md, "Conventions").
 *  Thread safety: owner thread; no synchronous call of it may be
 *  running. */
CAPFFI_API void capffi_fn_free(capffi_fn *fn);

/**
 * Audit every call of this function: one fn.call event per call, as
 * capffi_audit_calls does for every function of a context (capffi/audit.h
 * says what the event holds). A function is audited when its own switch
 * or its context's is on. Off by default, and then free.
 * @param fn the function.
 * @param on true to audit its calls, false to stop.
 * @return CAPFFI_OK; CAPFFI_EINVAL (fn NULL or not a function).
 * Ownership: nothing is handed out; fn stays the caller's.
 * Thread safety: any thread; a call running on another thread sees the
 * change at its next call.
 */
CAPFFI_API int capffi_fn_audit(capffi_fn *fn, bool on);

/**
 * Where a field of the function's struct result lies, so a host that
 * received the result into a buffer (capffi_view_of_buf) can read fields
 * by name:
 *
 *     // "() -> { x: i32, y: f64 }"
 *     capffi_buf_new(&b, ctx, capffi_fn_result_size(fn));
 *     capffi_buf_data(&ret.agg.ptr, &ret.agg.len, b);
 *     capffi_fn_call(fn, NULL, &ret);
 *     capffi_view_of_buf(&v, b, CAPFFI_VIEW_READ);
 *     capffi_fn_result_field(&f, fn, "y");
 *     capffi_view_get(&y, v, f.offset, f.type);
 *
 * @param path as capffi_type_field takes it.
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL argument); CAPFFI_ETYPE (the
 *         result is not a struct); CAPFFI_ENOTFOUND (no such field).
 * Thread safety: any thread.
 */
CAPFFI_API int capffi_fn_result_field(capffi_field *out, const capffi_fn *fn,
                                      const char *path);

/** @return the size in bytes of the function's result (0 for void or
 *  NULL): the memory a struct result needs in ret->agg. */
CAPFFI_API size_t capffi_fn_result_size(const capffi_fn *fn);

/** The number of parameters (fixed and variadic), or 0 for NULL. */
CAPFFI_API size_t capffi_fn_arity(const capffi_fn *fn);

/**
 * The declared type of parameter i (0-based; fixed then variadic), so a
 * host can convert its own values before capffi_fn_call.
 * @param size receives the type's size in bytes (a struct's declared size);
 *             may be NULL. 0 when the result is NULL.
 * @return a keyword of the signature language: "bool", "i8" to "u64",
 *         "isize", "usize", "f32", "f64", "pointer", "buffer", "function",
 *         "cstring"; "struct" for a struct by value (`{...}` or a defined
 *         name); "object" for a typed pointer (`*NAME`, `?*NAME`,
 *         `*[N]T`: an instance in `obj`); "out" for an out-parameter
 *         (capffi_fn_param_class tells what it receives). NULL when fn
 *         is NULL or i >= capffi_fn_arity(fn). A static string.
 * Thread safety: any thread (it reads only what binding fixed).
 */
CAPFFI_API const char *capffi_fn_param_type(const capffi_fn *fn, size_t i,
                                            size_t *size);

/**
 * The class behind an "object" or "out" parameter i (SafeFFI): for
 * `*NAME`, `*[N]NAME` and `out *NAME` the class name ("Point", or a
 * keyword for `*i32`); for a scalar `out T` the keyword T ("i32"), so a
 * host knows which member of the capffi_value the call fills. Use
 * SIZE_MAX for the result. NULL for other types, a NULL fn or i out of
 * range.
 * Ownership: the string is capffi's, valid while the context lives.
 * Thread safety: any thread.
 */
CAPFFI_API const char *capffi_fn_param_class(const capffi_fn *fn, size_t i);

/**
 * The declared result type, as capffi_fn_param_type, or "void".
 * @return NULL when fn is NULL.
 */
CAPFFI_API const char *capffi_fn_result_type(const capffi_fn *fn, size_t *size);

/**
 * The errno captured right after this thread's last call of a function
 * bound with CAPFFI_FN_ERRNO. Thread safety: any thread (per thread).
 */
CAPFFI_API int capffi_last_errno(void);

CAPFFI_END_DECLS

#endif
