/*
 * capffi/perm.h - querying, requesting and revoking the context's FFI
 * permission, in the shape of Deno's permissions API.
 *
 * The permission in force decides what capffi_token_new may mint and what
 * token-less ("ambient") operations may do. Tokens already minted keep the
 * grants they were minted with: revoking here stops new tokens, not old
 * ones (capffi_token_revoke stops those).
 *
 * Paths are compared as files, never as strings: a query or request for a
 * path resolves it (symlinks followed) to a file or directory identity
 * (device, inode); a grant of a directory covers every file below it.
 * A bare name without '/' (a soname such as "libz.so.1") names the file
 * capffi_lib_open would load for it, found when it is given.
 * Paths under /proc, /dev and /sys are covered only by a grant that names
 * them (or a directory below those trees), never by CAPFFI_OPT_ALLOW_ALL
 * alone: loading from those trees is a known way around path checks.
 *
 * Thread safety: owner thread.
 */
#ifndef CAPFFI_PERM_H
#define CAPFFI_PERM_H

#include "common.h"

CAPFFI_BEGIN_DECLS

/** Permission states, as in Deno. */
typedef enum capffi_perm_state {
    CAPFFI_PERM_GRANTED = 0, /**< allowed now */
    CAPFFI_PERM_PROMPT = 1,  /**< not allowed; a request would ask */
    CAPFFI_PERM_DENIED = 2   /**< not allowed; a request would be refused */
} capffi_perm_state;

/**
 * The name of a permission state: "granted", "prompt" or "denied" (also
 * for any value that is not a capffi_perm_state).
 * Ownership: a static string. Thread safety: any thread.
 */
CAPFFI_API const char *capffi_perm_state_name(capffi_perm_state s);

/**
 * The state of FFI permission for a path, or unscoped.
 * @param out  receives the state.
 * @param path a library file or directory, or a soname; NULL asks about
 *             unscoped FFI
 *             (every file and every right), which is GRANTED only under
 *             CAPFFI_OPT_ALLOW_ALL (or after an unscoped request).
 * @return CAPFFI_OK; CAPFFI_EINVAL (out or ctx NULL, empty, overlong or
 *         control-character path); CAPFFI_ENOTFOUND (the path does not
 *         exist); CAPFFI_ETHREAD (not the owner thread); CAPFFI_ENOMEM.
 *         On failure *out is CAPFFI_PERM_DENIED. Audited
 *         (CAPFFI_OP_PERM_QUERY).
 */
CAPFFI_API int capffi_perm_query(capffi_perm_state *out, capffi_ctx *ctx,
                                 const char *path);

/**
 * Ask for FFI permission for a path (NULL: unscoped). If the state is
 * PROMPT, the context's prompt hook is asked; with no hook the answer is
 * DENIED. A GRANTED answer adds the grant (an unscoped one grants every
 * right, like CAPFFI_OPT_ALLOW_ALL); a DENIED answer adds nothing (a later
 * request asks again). The hook must not call capffi on this context.
 * @param out receives the resulting state.
 * @return as capffi_perm_query. Audited (CAPFFI_OP_PERM_REQUEST), with the
 *         prompt's answer.
 */
CAPFFI_API int capffi_perm_request(capffi_perm_state *out, capffi_ctx *ctx,
                                   const char *path);

/**
 * Withdraw FFI permission.
 * @param path NULL withdraws everything: unscoped FFI, every path grant and
 *             the non-path rights. A path withdraws that file or directory
 *             (and everything below it): grants naming it or something below
 *             it are removed, and a grant of an enclosing directory (or
 *             CAPFFI_OPT_ALLOW_ALL) no longer covers it until a request
 *             grants it again.
 * @param out  receives the new state: PROMPT when the context has a prompt
 *             hook, DENIED otherwise (or DENIED when a deny entry covers it).
 * @return as capffi_perm_query. If the withdrawal of one path cannot be
 *         recorded for lack of memory, everything is withdrawn (fail
 *         closed) and CAPFFI_ENOMEM is returned. Audited
 *         (CAPFFI_OP_PERM_REVOKE).
 */
CAPFFI_API int capffi_perm_revoke(capffi_perm_state *out, capffi_ctx *ctx,
                                  const char *path);

CAPFFI_END_DECLS

#endif
