/*
 * value.h - converting between capffi_value and native bytes, one way for
 * every module that does it: a call's results, a callback's arguments and
 * results, a view's reads and writes, a library's statics.
 *
 * A type's kind (sig.h) is turned once, when a signature is parsed or a
 * view's type read, into a value op, which says how its bytes are held:
 * the conversions below are then one switch, inline, with no lookup.
 * On a little-endian machine every scalar member of capffi_value starts
 * at offset 0, and a small integer widened into a register word (libffi's
 * ffi_arg) starts with its own bytes, so loading "the type's bytes" serves
 * memory and widened results alike.
 */
#ifndef CAPFFI_SRC_TYPES_VALUE_H
#define CAPFFI_SRC_TYPES_VALUE_H

#include <string.h>

#include "types/sig.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "values are loaded from their first bytes");

/* How the bytes of a kind are held. */
enum capffi__vop {
    CAPFFI__V_VOID,
    CAPFFI__V_W64, /* 8 bytes as they are: 64-bit integers, f64, addresses */
    CAPFFI__V_BOOL,
    CAPFFI__V_I8,
    CAPFFI__V_U8,
    CAPFFI__V_I16,
    CAPFFI__V_U16,
    CAPFFI__V_I32,
    CAPFFI__V_U32,
    CAPFFI__V_F32,
    CAPFFI__V_STRUCT /* by value: agg, handled by the caller */
};

static inline uint8_t
capffi__vop(enum capffi__kind k)
{
    switch (k) {
    case CAPFFI__VOID:
        return CAPFFI__V_VOID;
    case CAPFFI__BOOL:
        return CAPFFI__V_BOOL;
    case CAPFFI__I8:
        return CAPFFI__V_I8;
    case CAPFFI__U8:
        return CAPFFI__V_U8;
    case CAPFFI__I16:
        return CAPFFI__V_I16;
    case CAPFFI__U16:
        return CAPFFI__V_U16;
    case CAPFFI__I32:
        return CAPFFI__V_I32;
    case CAPFFI__U32:
        return CAPFFI__V_U32;
    case CAPFFI__F32:
        return CAPFFI__V_F32;
    case CAPFFI__STRUCT:
        return CAPFFI__V_STRUCT;
    default: /* 64-bit integers, f64, pointer, buffer, function, cstring */
        return CAPFFI__V_W64;
    }
}

/* The bytes op loads or stores at most; 8 for an op that is not one
 * (a damaged accessor), so a bounds check on it is never too lenient. */
static inline size_t
capffi__vop_bytes(uint8_t op)
{
    switch (op) {
    case CAPFFI__V_VOID:
    case CAPFFI__V_STRUCT:
        return 0;
    case CAPFFI__V_BOOL:
    case CAPFFI__V_I8:
    case CAPFFI__V_U8:
        return 1;
    case CAPFFI__V_I16:
    case CAPFFI__V_U16:
        return 2;
    case CAPFFI__V_I32:
    case CAPFFI__V_U32:
    case CAPFFI__V_F32:
        return 4;
    default: /* V_W64, and anything else */
        return 8;
    }
}

/* Whether op is a small integer, range-checked on the way in. */
static inline bool
capffi__vop_small(uint8_t op)
{
    return op >= CAPFFI__V_I8 && op <= CAPFFI__V_U32;
}

static inline bool
capffi__vop_signed(uint8_t op)
{
    return op == CAPFFI__V_I8 || op == CAPFFI__V_I16 || op == CAPFFI__V_I32;
}

/*
 * The range of a small integer as one unsigned compare: a value fits when
 * v.u64 + off <= span (signed N bits: off 2^(N-1); unsigned: off 0; span
 * 2^N - 1). For every other op, anything fits (off 0, span all ones).
 */
static inline void
capffi__vop_range(uint8_t op, uint64_t *off, uint64_t *span)
{
    unsigned bits = op == CAPFFI__V_I8 || op == CAPFFI__V_U8     ? 8
                    : op == CAPFFI__V_I16 || op == CAPFFI__V_U16 ? 16
                    : op == CAPFFI__V_I32 || op == CAPFFI__V_U32 ? 32
                                                                 : 64;
    *off = bits < 64 && capffi__vop_signed(op) ? UINT64_C(1) << (bits - 1) : 0;
    *span = bits < 64 ? (UINT64_C(1) << bits) - 1 : UINT64_MAX;
}

/*
 * The value of the bytes at p: a small integer widened into i64 (signed)
 * or u64, bool from its byte (any nonzero byte is true), f32 with the rest
 * of the value zero, 8 bytes as they are. p holds at least the type's size
 * (a register word holds more). V_VOID and V_STRUCT leave v as it is.
 */
static inline void
capffi__value_load(capffi_value *v, uint8_t op, const void *p)
{
    switch (op) {
    case CAPFFI__V_BOOL:
        v->u64 = 0;
        v->b = *(const uint8_t *)p != 0;
        break;
    case CAPFFI__V_I8:
        v->i64 = *(const int8_t *)p;
        break;
    case CAPFFI__V_U8:
        v->u64 = *(const uint8_t *)p;
        break;
    case CAPFFI__V_I16: {
        int16_t x;
        memcpy(&x, p, sizeof x);
        v->i64 = x;
        break;
    }
    case CAPFFI__V_U16: {
        uint16_t x;
        memcpy(&x, p, sizeof x);
        v->u64 = x;
        break;
    }
    case CAPFFI__V_I32: {
        int32_t x;
        memcpy(&x, p, sizeof x);
        v->i64 = x;
        break;
    }
    case CAPFFI__V_U32: {
        uint32_t x;
        memcpy(&x, p, sizeof x);
        v->u64 = x;
        break;
    }
    case CAPFFI__V_F32:
        v->u64 = 0;
        memcpy(&v->f32, p, sizeof v->f32);
        break;
    case CAPFFI__V_W64:
        memcpy(&v->u64, p, sizeof v->u64);
        break;
    default: /* V_VOID: nothing; V_STRUCT: the caller's */
        break;
    }
}

/*
 * Write v's bytes at p in the type's own size (a view's memory); bool as
 * 0 or 1 from its byte. The caller checked a small integer's range. Not
 * for V_VOID or V_STRUCT.
 */
static inline void
capffi__value_store(void *p, uint8_t op, const capffi_value *v)
{
    switch (op) {
    case CAPFFI__V_BOOL: {
        unsigned char byte;
        memcpy(&byte, &v->b, 1); /* the byte, not the bool: it may be 2 */
        *(uint8_t *)p = byte != 0;
        break;
    }
    case CAPFFI__V_I8:
    case CAPFFI__V_U8:
        *(uint8_t *)p = (uint8_t)v->u64;
        break;
    case CAPFFI__V_I16:
    case CAPFFI__V_U16: {
        uint16_t x = (uint16_t)v->u64;
        memcpy(p, &x, sizeof x);
        break;
    }
    case CAPFFI__V_I32:
    case CAPFFI__V_U32: {
        uint32_t x = (uint32_t)v->u64;
        memcpy(p, &x, sizeof x);
        break;
    }
    case CAPFFI__V_F32:
        memcpy(p, &v->f32, sizeof v->f32);
        break;
    default: /* V_W64 */
        memcpy(p, &v->u64, sizeof v->u64);
        break;
    }
}

/*
 * Write v where native code reads a result: a register word, small
 * integers and bool widened to a whole ffi_arg as libffi requires. The
 * caller checked a small integer's range. Not for V_STRUCT.
 */
static inline void
capffi__value_store_word(void *word, uint8_t op, const capffi_value *v)
{
    switch (op) {
    case CAPFFI__V_VOID:
        break;
    case CAPFFI__V_BOOL: {
        unsigned char byte;
        memcpy(&byte, &v->b, 1);
        *(ffi_arg *)word = byte != 0;
        break;
    }
    case CAPFFI__V_I8:
        *(ffi_sarg *)word = (int8_t)v->i64;
        break;
    case CAPFFI__V_U8:
        *(ffi_arg *)word = (uint8_t)v->u64;
        break;
    case CAPFFI__V_I16:
        *(ffi_sarg *)word = (int16_t)v->i64;
        break;
    case CAPFFI__V_U16:
        *(ffi_arg *)word = (uint16_t)v->u64;
        break;
    case CAPFFI__V_I32:
        *(ffi_sarg *)word = (int32_t)v->i64;
        break;
    case CAPFFI__V_U32:
        *(ffi_arg *)word = (uint32_t)v->u64;
        break;
    default: /* V_F32, V_W64: their own bytes */
        capffi__value_store(word, op, v);
        break;
    }
}

#endif
