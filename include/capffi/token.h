/*
 * capffi/token.h - capability tokens.
 *
 * A token snapshots the context's permission when it is minted: its rights,
 * its path scope and the context's deny list. Withdrawing the context's
 * permission afterwards (capffi_perm_revoke) stops new tokens and
 * token-less operations, not tokens already minted. A module takes a token
 * at load time, the application withdraws FFI, the module keeps working and
 * no other code can start using FFI.
 *
 * Tokens are unforgeable for code that holds only values: the tag is a
 * keyed MAC (BLAKE2b) under a per-context secret over the token's id, its
 * context, rights, path scope, limits and parent. Verification is a table
 * lookup plus a constant-time compare. Native code, and any host code
 * granted READ, WRITE, POINTER, FNPTR or DLOPEN, can read the whole process
 * and is out of this promise (see SECURITY.md).
 *
 * Thread safety: owner thread, except capffi_token_revoke (any thread).
 */
#ifndef CAPFFI_TOKEN_H
#define CAPFFI_TOKEN_H

#include "common.h"

CAPFFI_BEGIN_DECLS

/** Load a library file (capffi_lib_open with a path). */
#define CAPFFI_RIGHT_DLOPEN 0x01u
/** Open the process scope (capffi_lib_open with NULL): every symbol. */
#define CAPFFI_RIGHT_DLOPEN_GLOBAL 0x02u
/** Create callbacks native code can call. */
#define CAPFFI_RIGHT_CALLBACK 0x04u
/** Take the address of a buffer; turn an integer into a pointer. */
#define CAPFFI_RIGHT_POINTER 0x08u
/** Read native memory through views. */
#define CAPFFI_RIGHT_READ 0x10u
/** Write native memory through views. */
#define CAPFFI_RIGHT_WRITE 0x20u
/** Call a raw function pointer. */
#define CAPFFI_RIGHT_FNPTR 0x40u
/** Every right. */
#define CAPFFI_RIGHTS_ALL 0x7fu
/** The rights that are not about library files. */
#define CAPFFI_RIGHTS_NONPATH                                                  \
    (CAPFFI_RIGHT_CALLBACK | CAPFFI_RIGHT_POINTER | CAPFFI_RIGHT_READ |        \
     CAPFFI_RIGHT_WRITE | CAPFFI_RIGHT_FNPTR)

/** Longest label, in bytes, without the terminating NUL. */
#define CAPFFI_LABEL_MAX 63
/** Deepest chain of attenuations below a minted token. */
#define CAPFFI_TOKEN_DEPTH_MAX 16

/**
 * What a new token may do. Zero-initialise and set only what you narrow:
 * every zero field means "as much as the source allows".
 *
 * Rights and paths must be a subset of the source (the context's grants for
 * capffi_token_new, the parent for capffi_token_attenuate); asking for more
 * is CAPFFI_EPERM. A path without '/' (not "." or "..") is a soname,
 * resolved once, when the token is made, to the file capffi_lib_open would
 * load for it ("libz.so.1": that file by every spelling, no other). Uses
 * and lifetime combine with the parent's: the tighter limit wins.
 */
typedef struct capffi_scope {
    uint32_t rights;          /**< CAPFFI_RIGHT_* bits; 0: all the source has */
    const char *const *paths; /**< files, dirs, sonames; NULL: the source's */
    size_t n_paths;           /**< entries in paths */
    uint64_t max_uses;        /**< successful checks allowed; 0: no limit */
    uint64_t ttl_ms;          /**< lifetime from now; 0: no limit */
    const char *label; /**< attenuate only; NULL: parent's label + "+" (the
                            parent's alone when it is CAPFFI_LABEL_MAX long) */
} capffi_scope;

/** Facts about a token, for diagnostics (capffi_token_info). */
typedef struct capffi_token_desc {
    char label[CAPFFI_LABEL_MAX + 1];
    uint32_t rights;       /**< CAPFFI_RIGHT_* bits */
    uint64_t parent_id;    /**< 0 for a token minted from the context */
    unsigned depth;        /**< 0 for a minted token, parent's depth + 1 */
    uint64_t uses_left;    /**< UINT64_MAX when unlimited */
    int64_t expires_in_ms; /**< -1 when it never expires; 0 when expired */
    int all_paths;         /**< 1: every path the deny list leaves */
    size_t n_paths;        /**< files and directories in scope otherwise */
    int revoked;           /**< 1 when it or an ancestor was revoked */
} capffi_token_desc;

/**
 * Mint a token from the permission in force now.
 * @param out   receives the token; zeroed on failure.
 * @param label names the holder in audit events: 1 to CAPFFI_LABEL_MAX
 *              printable ASCII bytes (no control characters).
 * @param scope NULL: everything granted now. Otherwise a narrowing of it;
 *              scope->label must be NULL (the label is the parameter).
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL out or ctx, bad label, bad scope
 *         field); CAPFFI_EPERM (nothing is granted, or the scope asks for a
 *         right or path the context does not grant now);
 *         CAPFFI_ENOTFOUND (a scope path does not exist or a soname is
 *         found nowhere); CAPFFI_ETHREAD;
 *         CAPFFI_ENOMEM. Audited (CAPFFI_OP_TOKEN_NEW).
 */
CAPFFI_API int capffi_token_new(capffi_token *out, capffi_ctx *ctx,
                                const char *label, const capffi_scope *scope);

/**
 * Derive a narrower child token. No permission is needed to narrow; a
 * child can never do more than its parent, and revoking the parent revokes
 * it. Each successful check of a child also counts against the use limits
 * of its ancestors.
 * @param parent a valid token of ctx, not revoked, expired or used up.
 * @param narrower NULL copies the parent's scope.
 * @return CAPFFI_OK; CAPFFI_EINVAL; CAPFFI_ETOKEN (parent forged or
 *         foreign); CAPFFI_EREVOKED (parent revoked, expired or used up);
 *         CAPFFI_EPERM (widening: a right or path the parent lacks, or the
 *         chain would be deeper than CAPFFI_TOKEN_DEPTH_MAX);
 *         CAPFFI_ENOTFOUND; CAPFFI_ETHREAD; CAPFFI_ENOMEM. Audited
 *         (CAPFFI_OP_TOKEN_ATTENUATE).
 */
CAPFFI_API int capffi_token_attenuate(capffi_token *out, capffi_ctx *ctx,
                                      const capffi_token *parent,
                                      const capffi_scope *narrower);

/**
 * Revoke a token, every token derived from it and every object made
 * through them: libraries refuse calls, callbacks fail closed, views refuse
 * access. Once this returns, no operation through these tokens starts.
 * Revoking a revoked token succeeds and changes nothing.
 * @return CAPFFI_OK; CAPFFI_EINVAL; CAPFFI_ETOKEN (forged or foreign).
 *         Audited (CAPFFI_OP_TOKEN_REVOKE).
 * Thread safety: any thread.
 */
CAPFFI_API int capffi_token_revoke(capffi_ctx *ctx, const capffi_token *tok);

/**
 * Verify a token for a use: it must be genuine and of this context, not
 * revoked, expired or used up, hold every right in `rights`, and (when path
 * is not NULL) have the file or directory at `path` in its scope and not
 * denied. A bare soname ("libz.so.1") as path means the file
 * capffi_lib_open would load for it. A successful check counts as one
 * use. Every capffi function that takes a token performs exactly this
 * check.
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL ctx or tok, unknown right bits,
 *         bad path); CAPFFI_ETOKEN (forged or from another context);
 *         CAPFFI_EREVOKED (revoked, expired, used up); CAPFFI_EPERM (a
 *         right missing, path outside the scope or denied);
 *         CAPFFI_ENOTFOUND (path does not exist, soname found nowhere);
 *         CAPFFI_ETHREAD;
 *         CAPFFI_ENOMEM. The token is verified before the path is looked
 *         at. Audited (CAPFFI_OP_TOKEN_CHECK) with the reason.
 */
CAPFFI_API int capffi_token_check(capffi_ctx *ctx, const capffi_token *tok,
                                  uint32_t rights, const char *path);

/**
 * Describe a token. Revoked tokens can be described; no use is counted.
 * @return CAPFFI_OK; CAPFFI_EINVAL; CAPFFI_ETOKEN (forged or foreign);
 *         CAPFFI_ETHREAD. Not audited.
 */
CAPFFI_API int capffi_token_info(capffi_token_desc *out, capffi_ctx *ctx,
                                 const capffi_token *tok);

CAPFFI_END_DECLS

#endif
