/*
 * capffi/value.h - the value passed to and returned from native calls.
 */
#ifndef CAPFFI_VALUE_H
#define CAPFFI_VALUE_H

#ifndef __cplusplus
#include <stdbool.h>
#endif

#include "common.h"

CAPFFI_BEGIN_DECLS

/**
 * One argument or result. Which member is read or written depends on the
 * declared type (see docs/API.md, "Signatures"):
 *
 * | declared type                          | member |
 * |----------------------------------------|--------|
 * | bool                                   | b      |
 * | i8 i16 i32 i64 isize                   | i64    |
 * | u8 u16 u32 u64 usize                   | u64    |
 * | f32                                    | f32    |
 * | f64                                    | f64    |
 * | pointer                                | p      |
 * | function (argument)                    | cb, fn |
 * | function (result)                      | p      |
 * | cstring                                | str    |
 * | buffer                                 | buf    |
 * | struct ({...} or NAME)                 | agg    |
 * | *NAME, ?*NAME, *[N]T (SafeFFI)          | obj    |
 * | out ... (argument)                     | p      |
 *
 * Small integers are range-checked: an i8 argument must lie in
 * [-128, 127] (CAPFFI_ERANGE otherwise) unless the function was bound with
 * CAPFFI_FN_WRAP. Results are widened to 64 bits with the right sign.
 *
 * A struct passed by value is `agg.ptr` to its bytes, laid out as the C
 * compiler lays out the declared struct, and `agg.len` its size, which
 * must equal the declared size (CAPFFI_ETYPE otherwise). A struct result
 * is written to caller-owned memory: set `agg.ptr` and `agg.len` (at least
 * the declared size) before the call.
 *
 * A `function` argument is a handle, never a raw address: a capffi_cb
 * (`cb`, its code is passed), a capffi_fn (`fn`, its code is passed; make
 * one from a raw address with capffi_fn_from_ptr, which needs
 * CAPFFI_RIGHT_FNPTR) or NULL. Anything else is CAPFFI_EINVAL; a closed or
 * revoked handle is CAPFFI_ECLOSED or CAPFFI_EREVOKED. A `function` result
 * is the raw address, in `p`.
 *
 * SafeFFI (capffi/obj.h, docs/safeffi.md): a `*NAME` argument is an
 * instance of class NAME in `obj` (`?*NAME`: or NULL), anything else
 * CAPFFI_ETYPE, NULL for `*NAME` CAPFFI_EINVAL; `*[N]T` and `*[$k]T` take
 * an instance with at least N (or argument k's value) elements of T. A
 * `*NAME` result is a new instance in `obj` (NULL for NULL), borrowed or,
 * for `own *NAME by SYMBOL`, owned: the caller frees it with
 * capffi_obj_free. An `out` argument is `p`, the address of a
 * capffi_value the call fills: `obj` for `out *NAME` (NULL when the callee
 * stored NULL), the scalar member for `out i32` and the like.
 */
typedef union capffi_value {
    bool b;
    int64_t i64;
    uint64_t u64;
    float f32;
    double f64;
    void *p;
    const char *str;
    capffi_buf *buf;
    const capffi_cb *cb;
    const capffi_fn *fn;
    capffi_obj *obj;
    struct {
        void *ptr;
        size_t len;
    } agg;
} capffi_value;

CAPFFI_END_DECLS

#endif
