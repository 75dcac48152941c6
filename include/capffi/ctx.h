/*
 * capffi/ctx.h - the context: one permission domain.
 *
 * A context holds the embedder's grants (which library files may be loaded,
 * whether the non-path rights are allowed), the secret that tokens are
 * keyed with, the token table and the audit trail. Several contexts may
 * live in one process; nothing made in one is valid in another.
 *
 * Thread safety (the rule for every capffi object): a context and what was
 * made from it belong to the thread that created the context, its owner
 * thread. Functions that take a context refuse other threads with
 * CAPFFI_ETHREAD where they can tell (it is audited). The exceptions are
 * listed where they apply; in this header, capffi_ctx_errmsg may be called
 * from any thread (it reports that thread's last failure), and so may
 * capffi_ctx_fd.
 */
#ifndef CAPFFI_CTX_H
#define CAPFFI_CTX_H

#include "common.h"
#include "perm.h"

CAPFFI_BEGIN_DECLS

/** Grant FFI for every library file and every right (Deno's --allow-ffi). */
#define CAPFFI_OPT_ALLOW_ALL 0x1u
/**
 * Path grants allow loading those files only. Without this flag a context
 * that has at least one path grant also allows the non-path rights
 * (CALLBACK, POINTER, READ, WRITE, FNPTR), as users of Deno asked for in
 * deno#15511. DLOPEN_GLOBAL is never carried by path grants.
 */
#define CAPFFI_OPT_PATHS_ONLY 0x2u
/**
 * Lend the host to thread-safe callbacks while the owner thread is inside a
 * native call made through capffi_fn_call or capffi_fn_call_raw: such a
 * callback, invoked on another thread, then runs on that thread (one at a
 * time, never while the owner thread runs host code) instead of waiting for
 * capffi_ctx_poll. Without it, an owner blocked in a native call that waits
 * for a thread which calls back deadlocks (or times out). Enable it only if
 * the host's handlers may run on any thread, one at a time: see
 * docs/callbacks.md, "Lending the host".
 */
#define CAPFFI_OPT_LEND_OWNER 0x4u
/**
 * Safe mode (SafeFFI, docs/safeffi.md): native memory is reached only
 * through classes. Signatures of functions and callbacks may not use the
 * raw `pointer` type (refused at bind with CAPFFI_EPERM), and
 * capffi_ptr_of, capffi_ptr_from_addr and views of native memory are
 * refused (CAPFFI_EPERM). What is bound through a token without the
 * POINTER, READ and WRITE rights is in safe mode on any context.
 */
#define CAPFFI_OPT_SAFE 0x8u
/** The union of the valid CAPFFI_OPT_* bits. */
#define CAPFFI_OPT__ALL 0xfu

/**
 * The prompt hook, asked by capffi_perm_request when a permission is
 * neither granted nor denied. It must answer CAPFFI_PERM_GRANTED or
 * CAPFFI_PERM_DENIED; any other answer is taken as DENIED.
 * @param path the canonical path of the file or directory asked for, or
 *             NULL when unscoped FFI (everything) is asked for. It holds
 *             no control characters (capffi refuses such paths earlier),
 *             so it is safe to show on a terminal.
 */
typedef capffi_perm_state (*capffi_prompt_fn)(void *payload, const char *path);

/**
 * Creation options. Zero-initialise, then set what you need; a zeroed
 * struct (or a NULL pointer) denies everything.
 */
typedef struct capffi_options {
    uint32_t flags;                 /**< CAPFFI_OPT_* */
    const char *const *allow_paths; /**< files, directories or sonames */
    size_t n_allow;                 /**< entries in allow_paths */
    const char *const *deny_paths;  /**< files, directories or sonames */
    size_t n_deny;                  /**< entries in deny_paths */
    capffi_prompt_fn prompt;        /**< NULL: requests are denied */
    void *prompt_payload;           /**< passed to prompt */
    /** Worker threads for nonblocking calls (capffi_fn_call_async),
     *  started on first use; 0: the number of cores, at most 8; at most
     *  CAPFFI_WORKERS_MAX. */
    unsigned workers;
    /** Nonblocking calls that may wait for a worker before submission
     *  answers CAPFFI_EBUSY; 0: 1024. */
    unsigned job_queue;
} capffi_options;

/** The most worker threads a context may have. */
#define CAPFFI_WORKERS_MAX 64u

/**
 * Create a context.
 *
 * Every path in allow_paths and deny_paths must exist when the context is
 * created: it is resolved (symlinks followed) and remembered as the
 * identity (device, inode) of the file or directory it names, so later
 * renames, symlink swaps and other spellings cannot change what is granted.
 * A bare soname (no '/', not "." or "..": "libz.so.1") names the file
 * capffi_lib_open would load for it, found by the same search once, now;
 * it then grants or denies that file under every spelling, and no other.
 * Deny always wins over allow, including over CAPFFI_OPT_ALLOW_ALL.
 *
 * @param out  receives the new context; NULL on failure.
 * @param opts NULL denies everything.
 * @return CAPFFI_OK; CAPFFI_EINVAL (out NULL, unknown flag bits, a NULL
 *         list with a non-zero count, an empty, overlong or control-character
 *         path); CAPFFI_ENOTFOUND (a path that does not exist, a soname
 *         found nowhere);
 *         CAPFFI_ENOMEM. Failures of capffi_ctx_new have no context to hold
 *         their message: capffi_ctx_errmsg(NULL) returns it.
 * Ownership: the caller owns *out and frees it with capffi_ctx_free. The
 *         options and their strings are copied.
 * Thread safety: any thread; the calling thread becomes the owner thread.
 */
CAPFFI_API int capffi_ctx_new(capffi_ctx **out, const capffi_options *opts);

/**
 * Free a context, every token in it and every object made from it that
 * the host has not freed. Accepts NULL. No other thread may be using the
 * context or anything made from it.
 * Thread safety: owner thread.
 */
CAPFFI_API void capffi_ctx_free(capffi_ctx *ctx);

/**
 * The detail of the last failure: which path, which right, which byte.
 * @param ctx the context; NULL for the last failure on this thread of a
 *            call that had no usable context (capffi_ctx_new, a NULL ctx).
 * @return a NUL-terminated string, "" when there was no failure. It stays
 *         valid until the next failing call on the same context from the
 *         same thread. It never contains a token tag or secret.
 * Thread safety: any thread. On the owner thread it reports the context's
 *         last failure; on another thread, that thread's last failure.
 */
CAPFFI_API const char *capffi_ctx_errmsg(const capffi_ctx *ctx);

/*
 * The owner thread's loop. Work that must run on a context's owner thread
 * but arrives from other threads (invocations of thread-safe callbacks)
 * is queued to the context. capffi_ctx_fd is a descriptor that becomes
 * readable when something is queued, for hosts that wait in their own
 * poll(2), epoll or event loop; capffi_ctx_poll runs what is queued.
 * capffi_ctx_keepalive tells a host whether anything may still arrive that
 * it should keep polling for.
 */

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
 * that hold references (capffi_cb_ref), plus the nonblocking jobs that
 * have not ended (freed ones included: their buffers come back when they
 * end): while it is above 0, something may still arrive and the host
 * should keep calling capffi_ctx_poll. 0 for NULL or off the owner
 * thread.
 * Thread safety: owner thread.
 */
CAPFFI_API size_t capffi_ctx_keepalive(const capffi_ctx *ctx);

CAPFFI_END_DECLS

#endif
