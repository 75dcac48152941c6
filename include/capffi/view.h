/*
 * capffi/view.h - reading and writing memory through bounded views.
 *
 * A view is a pointer, a length and an access mode. Every access names a
 * byte offset and is refused unless it lies wholly inside the view
 * (CAPFFI_EBOUNDS) and the view allows it (CAPFFI_EPERM); nothing is read
 * or written then. Typed access is done with memcpy, so any offset may be
 * used, aligned or not.
 *
 * Views of native memory are made through a token (CAPFFI_RIGHT_READ
 * and/or CAPFFI_RIGHT_WRITE) and die with it: once the token is revoked,
 * every access reports CAPFFI_EREVOKED. Views of a buffer the host owns
 * need no token and pin the buffer, so they never dangle.
 *
 *     capffi_view *v;
 *     capffi_view_new(&v, ctx, &tok, p, 16, CAPFFI_VIEW_READ);
 *     capffi_value x;
 *     capffi_view_get(&x, v, 8, "u32");          // x.u64
 *     capffi_view_get(&x, v, 14, "u32");         // CAPFFI_EBOUNDS
 *
 * Audit: making a view through a token is audited (CAPFFI_OP_VIEW_NEW);
 * so is every access refused for its bounds, access mode, token or lend
 * (CAPFFI_OP_VIEW_ACCESS, with the reason). Argument errors (a NULL
 * pointer, an unknown type, CAPFFI_ERANGE) leave only the message, and
 * accesses that succeed leave nothing, so reading through a view costs
 * about as much as a memcpy.
 *
 * Thread safety: views are made and freed on the owner thread. Accesses
 * may come from any thread; the host orders them with its own writes.
 */
#ifndef CAPFFI_VIEW_H
#define CAPFFI_VIEW_H

#include "common.h"
#include "value.h"

CAPFFI_BEGIN_DECLS

/** The view may be read (needs CAPFFI_RIGHT_READ). */
#define CAPFFI_VIEW_READ 0x1u
/** The view may be written (needs CAPFFI_RIGHT_WRITE). */
#define CAPFFI_VIEW_WRITE 0x2u
/**
 * The length is unknown: the view reaches to the end of the address
 * space. Needs CAPFFI_RIGHT_READ and CAPFFI_RIGHT_POINTER, whatever the
 * access, and is audited as "unbounded". Only for memory whose size
 * native code does not tell (a C string it returned, say).
 */
#define CAPFFI_VIEW_UNBOUNDED 0x4u

/**
 * A view of len bytes of native memory at ptr.
 * @param access CAPFFI_VIEW_READ and/or CAPFFI_VIEW_WRITE, optionally with
 *               CAPFFI_VIEW_UNBOUNDED (len is then ignored).
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL out, ctx or ptr, no access bit,
 *         unknown bits, ptr + len past the end of the address space);
 *         CAPFFI_ETOKEN; CAPFFI_EREVOKED; CAPFFI_EPERM (a right missing);
 *         CAPFFI_ETHREAD; CAPFFI_ENOMEM. Audited (CAPFFI_OP_VIEW_NEW).
 * Ownership: the caller owns *out (capffi_view_free); freeing the context
 *            frees it. The memory stays native code's: a view does not
 *            keep it alive.
 */
CAPFFI_API int capffi_view_new(capffi_view **out, capffi_ctx *ctx,
                               const capffi_token *tok, const void *ptr,
                               size_t len, uint32_t access);

/**
 * A view of a buffer's bytes (for instance a struct result written into
 * it). No token is needed: the memory is the host's. The view pins the
 * buffer until capffi_view_free, so freeing the buffer first is
 * deferred; while the buffer is lent, accesses report CAPFFI_EBUSY.
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL, freed buffer, bad access bits;
 *         CAPFFI_VIEW_UNBOUNDED is refused); CAPFFI_EBUSY (lent);
 *         CAPFFI_ETHREAD; CAPFFI_ENOMEM.
 */
CAPFFI_API int capffi_view_of_buf(capffi_view **out, capffi_buf *buf,
                                  uint32_t access);

/**
 * A view of a buffer's bytes that may also read pointers out of them.
 * Reading an address out of memory the host filled would turn any
 * integer into a pointer value (THREATS.md
 * H3), so capffi_view_get refuses type "pointer" and "function" with
 * CAPFFI_EPERM on views made without a token holding
 * CAPFFI_RIGHT_POINTER, such as capffi_view_of_buf's. This one is made
 * through such a token (one use of it), otherwise it is
 * capffi_view_of_buf: it pins the buffer, and its accesses report
 * CAPFFI_EBUSY while the buffer is lent. Revoking the token revokes the
 * view.
 * @param out    receives the view; NULL on failure.
 * @param ctx    the buffer's context.
 * @param tok    a token with CAPFFI_RIGHT_POINTER.
 * @param buf    a live buffer of ctx.
 * @param access CAPFFI_VIEW_READ and/or CAPFFI_VIEW_WRITE.
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL ctx or out, freed buffer, a
 *         buffer of another context, bad access bits); CAPFFI_ETOKEN;
 *         CAPFFI_EREVOKED; CAPFFI_EPERM (no pointer right); CAPFFI_EBUSY
 *         (lent); CAPFFI_ETHREAD; CAPFFI_ENOMEM. Audited
 *         (CAPFFI_OP_VIEW_NEW).
 * Ownership: the caller owns *out (capffi_view_free); freeing the context
 *            frees it.
 * Thread safety: owner thread.
 */
CAPFFI_API int capffi_view_of_buf_tok(capffi_view **out, capffi_ctx *ctx,
                                      const capffi_token *tok, capffi_buf *buf,
                                      uint32_t access);

/**
 * A view of part of another: [off, off + len) of v, with access a subset
 * of v's. It can only shrink, never grow or gain access, and lives and
 * dies with the same token (or buffer) as v, independently of v itself.
 * @return CAPFFI_OK; CAPFFI_EINVAL; CAPFFI_EBOUNDS (outside v);
 *         CAPFFI_EPERM (more access than v); CAPFFI_EREVOKED;
 *         CAPFFI_EBUSY; CAPFFI_ETHREAD; CAPFFI_ENOMEM. Audited
 *         (CAPFFI_OP_VIEW_NEW) when v was made through a token.
 */
CAPFFI_API int capffi_view_sub(capffi_view **out, const capffi_view *v,
                               size_t off, size_t len, uint32_t access);

/**
 * Read a scalar at byte offset off. type is one of bool, i8, u8, i16,
 * u16, i32, u32, i64, u64, isize, usize, f32, f64, pointer, function;
 * the result is in the member value.h names for it (signed integers
 * widened into i64, unsigned into u64).
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL argument, freed view);
 *         CAPFFI_ETYPE (not a scalar type: read strings with
 *         capffi_view_cstr, structs with sub-views); CAPFFI_EPERM (not
 *         readable, or type pointer or function on a view whose token
 *         lacks CAPFFI_RIGHT_POINTER or that has none: such a read would
 *         make a pointer of any integer the host wrote, THREATS.md H3);
 *         CAPFFI_EBOUNDS; CAPFFI_EREVOKED; CAPFFI_EBUSY. Refusals are
 *         audited (CAPFFI_OP_VIEW_ACCESS).
 */
CAPFFI_API int capffi_view_get(capffi_value *out, const capffi_view *v,
                               size_t off, const char *type);

/**
 * Write a scalar at byte offset off, from the member value.h names for
 * type. Small integers are range-checked (300 into a u8 is
 * CAPFFI_ERANGE); bool writes 0 or 1.
 * @return as capffi_view_get, plus CAPFFI_ERANGE; CAPFFI_EPERM when the
 *         view is not writable.
 */
CAPFFI_API int capffi_view_set(capffi_view *v, size_t off, const char *type,
                               capffi_value val);

/**
 * The NUL-terminated string at off, found without reading past the view.
 * @param s   receives a pointer into the viewed memory (valid as long as
 *            that memory is).
 * @param len receives strlen(*s); may be NULL.
 * @return CAPFFI_OK; CAPFFI_EINVAL; CAPFFI_EPERM; CAPFFI_EBOUNDS (off
 *         outside the view, or no NUL before its end); CAPFFI_EREVOKED;
 *         CAPFFI_EBUSY.
 */
CAPFFI_API int capffi_view_cstr(const char **s, size_t *len,
                                const capffi_view *v, size_t off);

/**
 * Copy n bytes from the view at off into dst.
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL dst with n > 0); CAPFFI_EPERM;
 *         CAPFFI_EBOUNDS; CAPFFI_EREVOKED; CAPFFI_EBUSY.
 */
CAPFFI_API int capffi_view_copy(void *dst, const capffi_view *v, size_t off,
                                size_t n);

/**
 * Copy n bytes from src into the view at off.
 * @return as capffi_view_copy; CAPFFI_EPERM when the view is not writable.
 */
CAPFFI_API int capffi_view_write(capffi_view *v, size_t off, const void *src,
                                 size_t n);

/** @return the view's length in bytes (SIZE_MAX-ish for an unbounded
 *  view; 0 for NULL). */
CAPFFI_API size_t capffi_view_len(const capffi_view *v);

/** Free a view (and drop its hold on a buffer). Accepts NULL. Owner
 *  thread: elsewhere it is refused (message only) and the view stays. */
CAPFFI_API void capffi_view_free(capffi_view *v);

CAPFFI_END_DECLS

#endif
