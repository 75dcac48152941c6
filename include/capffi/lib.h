/*
 * capffi/lib.h - loading native libraries through a token, and binding
 * their functions and statics.
 *
 * Loading runs the library's constructors: it is arbitrary code execution,
 * so the library file is checked before the loader is reached. The file
 * that is checked is the file that is loaded: capffi walks the path one
 * directory at a time, opens the file, checks the open file's identity
 * (device, inode) and its directories against the token, and loads that
 * same open file, so a symlink swap or a replaced file cannot slip in.
 *
 * Limits: the library's own dependencies (DT_NEEDED) are found and loaded
 * by the system loader, unchecked, as with dlopen; and because the file is
 * loaded through /proc/self/fd/N, a RUNPATH of $ORIGIN does not find
 * dependencies next to the library (put them on the search path, or open
 * them first through capffi). See docs/limits.md.
 *
 * Thread safety: owner thread. The functions bound from a library may be
 * called from any thread (see capffi/fn.h).
 */
#ifndef CAPFFI_LIB_H
#define CAPFFI_LIB_H

#include "common.h"
#include "fn.h"
#include "token.h"
#include "value.h"

CAPFFI_BEGIN_DECLS

/** Resolve symbols lazily (RTLD_LAZY) instead of at load (RTLD_NOW). */
#define CAPFFI_LIB_LAZY 0x1u
/** Make the library's symbols global (RTLD_GLOBAL): needs the
 *  CAPFFI_RIGHT_DLOPEN_GLOBAL right as well, as it lets the library's
 *  symbols interpose on every later lookup. */
#define CAPFFI_LIB_GLOBAL 0x2u

/**
 * Load a library.
 *
 * @param tok   a token with CAPFFI_RIGHT_DLOPEN whose scope covers the file
 *              (for path NULL: CAPFFI_RIGHT_DLOPEN_GLOBAL).
 * @param path  an absolute or relative path, or a bare soname such as
 *              "libz.so.1", which is first resolved the way the dynamic
 *              loader would (LD_LIBRARY_PATH unless the process is
 *              set-uid, /etc/ld.so.cache, the default directories) to a
 *              file; that file is what is checked and loaded. NULL opens
 *              the process scope: every symbol already loaded.
 * @param flags CAPFFI_LIB_* bits.
 * @return CAPFFI_OK; CAPFFI_EINVAL (bad argument or flag); CAPFFI_ETOKEN;
 *         CAPFFI_EREVOKED; CAPFFI_EPERM (right missing, file outside the
 *         token's scope or denied, a /proc, /dev or /sys path without a
 *         grant naming it, not a regular file, not readable);
 *         CAPFFI_ENOTFOUND (no such file, soname not
 *         found); CAPFFI_EDLOPEN (the loader refused: not a library, a
 *         missing dependency; the message has dlerror's text);
 *         CAPFFI_ETHREAD; CAPFFI_ENOMEM. Audited (CAPFFI_OP_LIB_OPEN) with
 *         the resolved file; a library file the process could write is
 *         flagged in the event's detail.
 * Ownership: the caller owns *out; capffi_lib_close it. Freeing the
 *         context closes it too.
 */
CAPFFI_API int capffi_lib_open(capffi_lib **out, capffi_ctx *ctx,
                               const capffi_token *tok, const char *path,
                               uint32_t flags);

/**
 * Bind a function of the library.
 *
 * The signature is parsed and the libffi call interface prepared once,
 * here. The symbol must live in the library itself, not in one of its
 * dependencies (dlsym would find those: libm's handle finds libc's
 * `system`), unless CAPFFI_FN_DEPS is given.
 *
 * @param signature e.g. "(f64) -> f64", "(cstring, ...: i32) -> i32";
 *                  see docs/API.md, "Signatures".
 * @param flags     CAPFFI_FN_* bits.
 * @return CAPFFI_OK; CAPFFI_EINVAL; CAPFFI_ESIG (malformed signature, with
 *         the byte offset in the message; or a struct argument that an
 *         affected libffi would pass wrongly, when the call would go
 *         through it: docs/limits.md); CAPFFI_ENOTFOUND (no such
 *         symbol); CAPFFI_EPERM (the symbol lives in a dependency);
 *         CAPFFI_ECLOSED (library closed); CAPFFI_EREVOKED (its token was
 *         revoked); CAPFFI_ETHREAD; CAPFFI_ENOMEM. Audited
 *         (CAPFFI_OP_LIB_BIND), except a missing CAPFFI_FN_OPTIONAL symbol.
 * Ownership: the caller owns *out and frees it with capffi_fn_free (the
 *         library's closing does not free it; freeing the context does).
 */
CAPFFI_API int capffi_lib_bind(capffi_fn **out, capffi_lib *lib,
                               const char *symbol, const char *signature,
                               uint32_t flags);

/**
 * Read a static variable of the library.
 * @param type a scalar type ("i32", "f64", "pointer", "cstring", ...);
 *             "pointer" yields the value stored in the variable.
 * @return as capffi_lib_bind (CAPFFI_ESIG for a bad or non-scalar type).
 */
CAPFFI_API int capffi_lib_static(capffi_value *out, capffi_lib *lib,
                                 const char *symbol, const char *type);

/**
 * The address of a function or variable of the library, for a host that
 * calls or reads it by its own means (the Lua runner's package.loadlib
 * turns a `luaopen_*` function of a library opened through a token into a
 * Lua C function). capffi makes no call interface and no capffi value of
 * it: what the host does with the address is the host's affair.
 *
 * The symbol must live in the library itself, not in one of its
 * dependencies (as capffi_lib_bind without CAPFFI_FN_DEPS).
 *
 * @param out    receives the address; NULL on failure.
 * @param lib    a library from capffi_lib_open.
 * @param symbol the symbol's name.
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL lib, out or symbol);
 *         CAPFFI_ENOTFOUND (no such symbol); CAPFFI_EPERM (the symbol
 *         lives in a dependency, or in no loaded object); CAPFFI_ECLOSED
 *         (library closed); CAPFFI_EREVOKED (its token was revoked);
 *         CAPFFI_ETHREAD. Audited (CAPFFI_OP_LIB_BIND, detail
 *         "address: ...").
 * Ownership: the address belongs to the library: it stays valid while the
 *         library is loaded, and once an address was given out the library
 *         stays loaded until the context is freed, capffi_lib_close or not;
 *         after capffi_ctx_free it must not be used.
 * Thread safety: owner thread.
 */
CAPFFI_API int capffi_lib_symbol(void **out, capffi_lib *lib,
                                 const char *symbol);

/**
 * Close a library. Its functions then fail with CAPFFI_ECLOSED instead of
 * calling freed code. The library is unloaded, its descriptor closed and
 * its record let go once nothing refers to it: its functions (until
 * capffi_fn_free; a nonblocking job holds its function until it ends) and
 * the instances its calls made (until freed). So a call already running
 * finishes normally. A library whose code was handed to native code
 * (capffi_lib_symbol, a `function` value) stays loaded until the context
 * is freed. Accepts NULL; a second close does nothing, also after the
 * unload. Audited (CAPFFI_OP_LIB_CLOSE).
 * Ownership: after the close, lib is valid for capffi_lib_path and further
 *         closes until its record is reused, after at least 256 more
 *         libraries of the context were let go (docs/API.md).
 * Thread safety: owner thread.
 */
CAPFFI_API void capffi_lib_close(capffi_lib *lib);

/**
 * The canonical path of the file that was loaded ("" for the process
 * scope). Valid until the context is freed, also after the close.
 */
CAPFFI_API const char *capffi_lib_path(const capffi_lib *lib);

/**
 * Find the file capffi_lib_open would check and load for `name`, without
 * loading anything: a bare soname (no '/') is resolved as capffi_lib_open
 * resolves it; any other name is copied unchanged. Useful to scope a token
 * or a grant, which take paths, to a library known by its soname.
 * @param out receives the path, NUL-terminated; "" on failure.
 * @param cap the size of out; PATH_MAX is always enough.
 * @param ctx for the failure message; may be NULL (the thread's message).
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL out or name, cap 0, an empty,
 *         overlong or control-character name, or a path longer than cap);
 *         CAPFFI_ENOTFOUND (no such library on the search path). Not
 *         audited: nothing is opened.
 * Thread safety: any thread.
 */
CAPFFI_API int capffi_lib_resolve(char *out, size_t cap, capffi_ctx *ctx,
                                  const char *name);

CAPFFI_END_DECLS

#endif
