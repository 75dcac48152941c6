/*
 * capffi/type.h - named struct types for signatures.
 *
 * Names belong to principals (THREATS.md H7). The context's own names
 * (capffi_type_define) are seen by everyone, so only a context that still
 * grants FFI may add to them: once the host revokes FFI, no script can
 * pre-empt a name. A name defined through a token
 * (capffi_type_define_tok) is seen only by what is made through that
 * token and its descendants (libraries it opened, callbacks, function
 * pointers, capffi_type_size_tok), and there it wins over the context's
 * name: another principal can neither take nor change it.
 *
 * Thread safety: owner thread.
 */
#ifndef CAPFFI_TYPE_H
#define CAPFFI_TYPE_H

#include "common.h"

CAPFFI_BEGIN_DECLS

/**
 * Define a struct type that signatures can name.
 *
 *     capffi_type_define(ctx, "Point", "{ x: f64, y: f64 }");
 *     capffi_lib_bind(&fn, lib, "point_len", "(Point) -> f64", 0);
 *
 * @param name   an identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes),
 *               not a scalar type name, not a word of the layout language
 *               (out, own, by, readonly, opaque), not already defined.
 * @param layout a struct in the signature language: `{ f64, f64 }` or with
 *               field names `{ x: f64, y: f64 }`; fields may be scalars,
 *               nested structs, names defined earlier, fixed arrays
 *               (`[16]u8`), typed pointers (`*NAME`, the type's own name
 *               included: a list's next) and `readonly` (the host may
 *               read, not write them: capffi/obj.h); a type cannot
 *               contain itself by value. Not `void` or `buffer`; a
 *               `cstring` field is a `const char *`. Or `opaque`: a class
 *               with no readable field, reached through `*NAME` only
 *               (SafeFFI, docs/safeffi.md).
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL argument, bad or taken name);
 *         CAPFFI_EPERM (the context grants no FFI: it was revoked, or
 *         never granted); CAPFFI_ESIG (malformed layout; the message
 *         names the byte); CAPFFI_ETHREAD; CAPFFI_ENOMEM. Audited
 *         (CAPFFI_OP_TYPE_DEFINE).
 * Ownership: the type lives until the context is freed.
 */
CAPFFI_API int capffi_type_define(capffi_ctx *ctx, const char *name,
                                  const char *layout);

/**
 * Define a struct type for one principal: seen by signatures and types
 * parsed for what is made through tok or its descendants, where it hides
 * a context name of the same spelling. Any live token may define; no
 * use is counted. The layout may name the token's (and its ancestors')
 * types and the context's.
 *
 *     capffi_type_define_tok(ctx, &tok, "Blob", "{ n: u64, data: pointer }");
 *
 * @param tok    the principal's token.
 * @param name   as for capffi_type_define; not already defined through
 *               this same token.
 * @param layout as for capffi_type_define.
 * @return CAPFFI_OK; CAPFFI_EINVAL; CAPFFI_ETOKEN; CAPFFI_EREVOKED;
 *         CAPFFI_ESIG; CAPFFI_ETHREAD; CAPFFI_ENOMEM. Audited
 *         (CAPFFI_OP_TYPE_DEFINE).
 * Ownership: the type lives until the context is freed.
 * Thread safety: owner thread.
 */
CAPFFI_API int capffi_type_define_tok(capffi_ctx *ctx, const capffi_token *tok,
                                      const char *name, const char *layout);

/**
 * The size and alignment of a named type, or of any type expression
 * ("i16", "{ u8, f64 }"), as the C compiler lays it out.
 * @param size  receives the size in bytes.
 * @param align receives the alignment in bytes; may be NULL.
 * @return CAPFFI_OK; CAPFFI_EINVAL; CAPFFI_ESIG; CAPFFI_ETHREAD;
 *         CAPFFI_ENOMEM.
 */
CAPFFI_API int capffi_type_size(size_t *size, size_t *align, capffi_ctx *ctx,
                                const char *type);

/**
 * capffi_type_size with the names seen by tok: its own, its ancestors',
 * then the context's. No use of the token is counted.
 * @return as capffi_type_size, plus CAPFFI_ETOKEN and CAPFFI_EREVOKED.
 * Ownership: tok and type are read during the call only.
 * Thread safety: owner thread.
 */
CAPFFI_API int capffi_type_size_tok(size_t *size, size_t *align,
                                    capffi_ctx *ctx, const capffi_token *tok,
                                    const char *type);

/** Where a field lies in a struct (capffi_type_field,
 *  capffi_fn_result_field). */
typedef struct capffi_field {
    size_t offset;    /**< bytes from the start of the outermost struct */
    size_t size;      /**< bytes */
    const char *type; /**< a word capffi_view_get reads ("i32", "f64"...);
                           "pointer" for cstring and *NAME fields; "struct"
                           for a nested struct (read it with a sub-view).
                           Static: valid forever. */
} capffi_field;

/**
 * Find a field of a struct type expression or name by path: field names
 * or zero-based indices joined by dots ("pos.x", "1.0", "0"); "" is the
 * whole struct.
 *
 *     capffi_type_define(ctx, "Seg", "{ a: {x: f64, y: f64}, n: u8 }");
 *     capffi_type_field(&f, ctx, "Seg", "a.y");   // f.offset 8, "f64"
 *
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL argument, not a struct);
 *         CAPFFI_ENOTFOUND (no such field); CAPFFI_ESIG; CAPFFI_ETHREAD;
 *         CAPFFI_ENOMEM.
 */
CAPFFI_API int capffi_type_field(capffi_field *out, capffi_ctx *ctx,
                                 const char *type, const char *path);

/**
 * The byte offset of a field in a struct type expression or name (a path,
 * as capffi_type_field takes).
 * @return CAPFFI_OK; CAPFFI_EINVAL; CAPFFI_ENOTFOUND (no such field);
 *         CAPFFI_ESIG; CAPFFI_ETHREAD; CAPFFI_ENOMEM.
 */
CAPFFI_API int capffi_type_offset(size_t *offset, capffi_ctx *ctx,
                                  const char *type, const char *field);

/**
 * capffi_type_field and capffi_type_offset with the names tok sees: its
 * own, its ancestors', then the context's (capffi_type_define_tok). No
 * use of the token is counted.
 * @return as capffi_type_field and capffi_type_offset, plus CAPFFI_ETOKEN
 *         and CAPFFI_EREVOKED.
 * Ownership: out->type is static; tok, type and the path are read during
 *            the call only.
 * Thread safety: owner thread.
 */
CAPFFI_API int capffi_type_field_tok(capffi_field *out, capffi_ctx *ctx,
                                     const capffi_token *tok, const char *type,
                                     const char *path);
CAPFFI_API int capffi_type_offset_tok(size_t *offset, capffi_ctx *ctx,
                                      const capffi_token *tok, const char *type,
                                      const char *field);

CAPFFI_END_DECLS

#endif
