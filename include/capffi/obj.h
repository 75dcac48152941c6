/*
 * capffi/obj.h - SafeFFI: instances of registered classes.
 *
 * A class is a type registered with capffi_type_define (a struct layout,
 * or "opaque" for a handle only native code reads); an instance carries
 * its class, its size and its owner, and is read and written by field
 * path, bounds- and type-checked, never as a raw address. Instances come
 * from three places:
 *
 * - the host: capffi_obj_new gives zeroed memory capffi owns; its address
 *   is handed to native code only as an argument declared `*NAME`;
 * - a call: a `*NAME` result is a borrowed instance (native memory, valid
 *   while its library is open and its token live), an `own *NAME by SYM`
 *   result an owned one (capffi_obj_free calls SYM once);
 * - an out-parameter: an `out *NAME` argument receives what the callee
 *   stored through the slot capffi passed.
 *
 *     capffi_type_define(ctx, "sqlite3", "opaque");
 *     capffi_lib_bind(&open, lib, "sqlite3_open",
 *                     "(cstring, out own *sqlite3 by sqlite3_close) -> i32",
 *                     0);
 *     capffi_value db, args[2] = { { .str = ":memory:" }, { .p = &db } };
 *     capffi_fn_call(open, args, &rc);     // db.obj: the connection
 *     ...
 *     capffi_obj_free(db.obj);             // sqlite3_close(db), once
 *
 * Paths name a field: field names and bracketed indices, joined by dots:
 * "origin.x", "str[3]", "rows[2].id"; an array instance starts with its
 * index ("[0]"); "" is the instance itself (a scalar class such as i32).
 *
 * What a read gives, by the field's type: the scalar members of
 * capffi_value as for calls; `cstring` the native string in `str` (NULL
 * for NULL; valid as long as the memory it is in); `*NAME` a new borrowed
 * instance in `obj` (NULL for NULL) that the caller frees with
 * capffi_obj_free and that lives no longer than the one it was read from;
 * `pointer` and `function` the raw address in `p`, only outside safe mode
 * and with the pointer right (H3). A nested struct or array is not a
 * value: name a field inside it.
 *
 * Errors: no such class or field CAPFFI_ENOTFOUND; an index past an
 * array's end CAPFFI_EBOUNDS; the wrong kind of value or instance
 * CAPFFI_ETYPE; a readonly field, or a raw pointer in safe mode,
 * CAPFFI_EPERM; a borrowed instance whose library was closed or whose
 * token was revoked CAPFFI_ECLOSED or CAPFFI_EREVOKED (nothing is read);
 * a second free of an owned instance CAPFFI_EINVAL (audited, the
 * destructor never runs twice).
 *
 * Thread safety: instances are made and freed on the owner thread; reads
 * and writes may come from any thread, ordered by the host.
 */
#ifndef CAPFFI_OBJ_H
#define CAPFFI_OBJ_H

#include "common.h"
#include "type.h"
#include "value.h"

CAPFFI_BEGIN_DECLS

/**
 * A new zeroed instance of a class, owned by the host.
 * @param cls a class name (capffi_type_define), a scalar, or an array
 *            of either: "Point", "[50]u8", "[100000]i32", "i32". Not an
 *            opaque class (its instances come from native code), not an
 *            unnamed struct (define it first).
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL argument); CAPFFI_ENOTFOUND (no
 *         such class); CAPFFI_ETYPE (opaque, an unnamed struct, an array
 *         of arrays); CAPFFI_ESIG (malformed
 *         type; the message names the byte); CAPFFI_ETHREAD;
 *         CAPFFI_ENOMEM.
 * Ownership: the caller owns *out (capffi_obj_free); freeing the context
 *            frees it.
 * Thread safety: owner thread.
 */
CAPFFI_API int capffi_obj_new(capffi_obj **out, capffi_ctx *ctx,
                              const char *cls);

/**
 * capffi_obj_new with the class names tok sees (capffi_type_define_tok):
 * its own, its ancestors', then the context's. No use is counted.
 * @return as capffi_obj_new, plus CAPFFI_ETOKEN and CAPFFI_EREVOKED.
 * Ownership: as capffi_obj_new.
 * Thread safety: owner thread.
 */
CAPFFI_API int capffi_obj_new_tok(capffi_obj **out, capffi_ctx *ctx,
                                  const capffi_token *tok, const char *cls);

/**
 * Read the field at path.
 * @return CAPFFI_OK; CAPFFI_EINVAL; CAPFFI_ENOTFOUND; CAPFFI_EBOUNDS;
 *         CAPFFI_ETYPE (a struct or array, or an opaque instance);
 *         CAPFFI_EPERM (a raw pointer in safe mode); CAPFFI_ECLOSED;
 *         CAPFFI_EREVOKED; CAPFFI_ENOMEM (a `*NAME` field).
 * Ownership: a `*NAME` field's instance in out->obj is the caller's.
 * Thread safety: any thread; `*NAME` fields on the owner thread.
 */
CAPFFI_API int capffi_obj_get(capffi_value *out, const capffi_obj *o,
                              const char *path);

/**
 * Write the field at path: integers range-checked (CAPFFI_ERANGE), a
 * `*NAME` field takes an instance of NAME or NULL, a `cstring` field is
 * not written by the host (CAPFFI_ETYPE: its memory would be the host's
 * to keep alive).
 * @return as capffi_obj_get, plus CAPFFI_EPERM (readonly field) and
 *         CAPFFI_ERANGE.
 * Ownership: v is read during the call; a `*NAME` field then holds
 *            the instance in v.obj, which is not freed while the
 *            field points to it.
 * Thread safety: any thread.
 */
CAPFFI_API int capffi_obj_set(capffi_obj *o, const char *path, capffi_value v);

/**
 * The class of an instance: its name ("Point") or keyword ("i32"); for
 * an array instance the class of its elements (capffi_obj_len with ""
 * gives their count). "" for NULL or a freed instance.
 * Ownership: the string is capffi's, valid while the context lives.
 * Thread safety: any thread.
 */
CAPFFI_API const char *capffi_obj_class(const capffi_obj *o);

/**
 * The number of elements of the array at path ("" for an array
 * instance, "str" for a `[50]u8` field).
 * @return CAPFFI_OK; CAPFFI_EINVAL; CAPFFI_ENOTFOUND; CAPFFI_ETYPE (not an
 *         array); CAPFFI_ECLOSED; CAPFFI_EREVOKED.
 * Ownership: o and path are read during the call only.
 * Thread safety: any thread.
 */
CAPFFI_API int capffi_obj_len(size_t *n, const capffi_obj *o, const char *path);

/**
 * What the field at path is: out->offset and out->size, and out->type
 * a word saying how capffi_obj_get reads it: a scalar keyword ("i32",
 * "f64", "bool"...), "cstring", "object" (a `*NAME` field: an instance),
 * "pointer" or "function" (raw), "struct" or "array" (not values: name a
 * field inside). "" on an array instance is its "array". For hosts that
 * convert values by type (the Lua binding).
 * @return CAPFFI_OK; CAPFFI_EINVAL; CAPFFI_ENOTFOUND; CAPFFI_EBOUNDS;
 *         CAPFFI_ETYPE (an opaque instance); CAPFFI_ECLOSED;
 *         CAPFFI_EREVOKED.
 * Ownership: out->type is static.
 * Thread safety: any thread.
 */
CAPFFI_API int capffi_obj_field(capffi_field *out, const capffi_obj *o,
                                const char *path);

/**
 * Whether an instance may be used: CAPFFI_OK; CAPFFI_ECLOSED (its library
 * was closed, or an owned instance was released); CAPFFI_EREVOKED (its
 * token was revoked; once the library is closed too, closed is what
 * stays); CAPFFI_EINVAL (NULL or freed).
 * Ownership: o is read during the call only.
 * Thread safety: any thread.
 */
CAPFFI_API int capffi_obj_status(const capffi_obj *o);

/**
 * Free an instance. An owned one's destructor runs first, exactly once,
 * unless its library was closed (the destructor ran then) or its token
 * revoked (it runs when the context is freed, by the host). A host-owned
 * instance's memory is freed; a borrowed one's memory is native code's
 * and is not touched. An instance lent to a nonblocking call is freed
 * when the call ends. NULL is a no-op; a second free of the same instance
 * is refused (CAPFFI_EINVAL in capffi_ctx_errmsg, audited as
 * CAPFFI_OP_OBJ_FREE) until its struct is reused, after at least 256 more
 * frees (docs/API.md, "Conventions"): do not keep using it.
 * Ownership: o is the caller's no more once the call returns.
 * Thread safety: owner thread.
 */
CAPFFI_API void capffi_obj_free(capffi_obj *o);

/**
 * The owned instances of the context not yet freed: what capffi_ctx_free
 * would release (in reverse order of creation, with one
 * CAPFFI_OP_OBJ_LEAK event per class with the count). For tests.
 * Ownership: ctx is read during the call only.
 * Thread safety: owner thread (0 elsewhere).
 */
CAPFFI_API size_t capffi_ctx_leaks(const capffi_ctx *ctx);

/**
 * A field path compiled once for a class, so a repeated access costs a
 * check of the class and the instance's state and a load: a few
 * nanoseconds. Valid while the context lives, for any instance of the
 * class it was made from. Treat as opaque.
 */
typedef struct capffi_accessor {
    const void *cls;  /**< the class */
    size_t offset;    /**< of the field, from the instance's start */
    const void *type; /**< the field's type */
    uint8_t op;       /**< how its bytes are held */
    uint8_t flags;    /**< readonly, pointer */
} capffi_accessor;

/**
 * Compile path for o's class.
 * @return as capffi_obj_get (a struct, array or cstring field is
 *         CAPFFI_ETYPE: accessors read and write scalars).
 * Ownership: *out is a plain value, the caller's to copy freely.
 * Thread safety: any thread.
 */
CAPFFI_API int capffi_obj_accessor(capffi_accessor *out, const capffi_obj *o,
                                   const char *path);

/**
 * Read or write through an accessor: as capffi_obj_get and capffi_obj_set
 * on the path it was compiled from. CAPFFI_ETYPE when o is not of the
 * accessor's class.
 * Ownership: o, a and v are read during the call only.
 * Thread safety: any thread.
 */
CAPFFI_API int capffi_obj_read(capffi_value *out, const capffi_obj *o,
                               const capffi_accessor *a);
CAPFFI_API int capffi_obj_write(capffi_obj *o, const capffi_accessor *a,
                                capffi_value v);

CAPFFI_END_DECLS

#endif
