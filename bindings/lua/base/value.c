/*
 * base/value.c - Lua values to and from C scalars.
 *
 * Bound functions (arguments, results, statics), views (v:get, v:set) and
 * struct values (their fields) convert the same way, so a number that one
 * of them accepts, the others accept too (docs/lua.md, "Values"):
 * integers are exact; a float is taken for an integer type only when it
 * holds an integral value in range; u64 and usize values at or above 2^63
 * travel as the negative integer with the same 64 bits.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"

static const struct {
    const char *word;
    enum capffi_lua__kind kind;
} kinds[] = {
    { "void", CAPFFI_LUA__VOID },       { "bool", CAPFFI_LUA__BOOL },
    { "i8", CAPFFI_LUA__INT },          { "i16", CAPFFI_LUA__INT },
    { "i32", CAPFFI_LUA__INT },         { "u8", CAPFFI_LUA__UINT },
    { "u16", CAPFFI_LUA__UINT },        { "u32", CAPFFI_LUA__UINT },
    { "i64", CAPFFI_LUA__I64 },         { "isize", CAPFFI_LUA__I64 },
    { "u64", CAPFFI_LUA__U64 },         { "usize", CAPFFI_LUA__U64 },
    { "f32", CAPFFI_LUA__F32 },         { "f64", CAPFFI_LUA__F64 },
    { "pointer", CAPFFI_LUA__POINTER }, { "function", CAPFFI_LUA__POINTER },
    { "cstring", CAPFFI_LUA__CSTRING }, { "buffer", CAPFFI_LUA__BUFFER },
    { "struct", CAPFFI_LUA__STRUCT },   { "object", CAPFFI_LUA__OBJECT },
};

int
capffi_lua__kind_of(const char *word)
{
    for (size_t i = 0; word && i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].word, word) == 0)
            return (int)kinds[i].kind;
    return -1;
}

bool
capffi_lua__is_scalar(int kind)
{
    return kind >= CAPFFI_LUA__BOOL && kind <= CAPFFI_LUA__POINTER;
}

/*
 * An integer that is not a Lua integer: a float holding an integral value
 * the kind can hold. For u64 and usize that value may lie in [2^63,
 * 2^64), which no Lua integer holds: it is taken as a value.
 */
static int
float_int(lua_State *L, int idx, int kind, int64_t *out, char *why, size_t n)
{
    if (lua_type(L, idx) != LUA_TNUMBER) {
        snprintf(why, n, "expected an integer, got %s",
                 capffi_lua__typename(L, idx));
        return CAPFFI_ETYPE;
    }
    double d = (double)lua_tonumber(L, idx);
    if (kind == CAPFFI_LUA__U64) {
        if (d >= 0 && d < 18446744073709551616.0 && (double)(uint64_t)d == d) {
            *out = (int64_t)(uint64_t)d;
            return CAPFFI_OK;
        }
    } else if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
               (double)(int64_t)d == d) {
        *out = (int64_t)d;
        return CAPFFI_OK;
    }
    snprintf(why, n, "%.17g is not an integer the type holds", d);
    return CAPFFI_ERANGE;
}

int
capffi_lua__scalar_in(lua_State *L, int idx, int kind, bool wrap,
                      capffi_value *v, char *why, size_t n)
{
    int rc = CAPFFI_OK;
    switch (kind) {
    case CAPFFI_LUA__INT:
    case CAPFFI_LUA__I64:
    case CAPFFI_LUA__U64:
        if (lua_isinteger(L, idx))
            v->i64 = lua_tointeger(L, idx);
        else
            rc = float_int(L, idx, kind, &v->i64, why, n);
        return rc;
    case CAPFFI_LUA__UINT:
        if (lua_isinteger(L, idx))
            v->i64 = lua_tointeger(L, idx);
        else if ((rc = float_int(L, idx, kind, &v->i64, why, n)))
            return rc;
        if (v->i64 < 0 && !wrap) {
            snprintf(why, n, "%lld is negative", (long long)v->i64);
            return CAPFFI_ERANGE;
        }
        return CAPFFI_OK;
    case CAPFFI_LUA__F64:
        if (lua_type(L, idx) != LUA_TNUMBER)
            break;
        v->f64 = (double)lua_tonumber(L, idx);
        return CAPFFI_OK;
    case CAPFFI_LUA__F32: {
        if (lua_type(L, idx) != LUA_TNUMBER)
            break;
        double d = (double)lua_tonumber(L, idx);
        if (isfinite(d) && (d > FLT_MAX || d < -FLT_MAX)) {
            snprintf(why, n, "%.17g is beyond the largest f32", d);
            return CAPFFI_ERANGE;
        }
        v->u64 = 0; /* the unused high bytes: views write the low four */
        v->f32 = (float)d;
        return CAPFFI_OK;
    }
    case CAPFFI_LUA__BOOL:
        if (!lua_isboolean(L, idx))
            break;
        v->b = lua_toboolean(L, idx);
        return CAPFFI_OK;
    case CAPFFI_LUA__POINTER:
        if (lua_islightuserdata(L, idx))
            v->p = lua_touserdata(L, idx);
        else if (lua_isnil(L, idx))
            v->p = NULL;
        else
            break;
        return CAPFFI_OK;
    default:
        snprintf(why, n, "not a scalar type");
        return CAPFFI_ETYPE;
    }
    snprintf(why, n, "expected %s, got %s",
             kind == CAPFFI_LUA__BOOL      ? "a boolean"
             : kind == CAPFFI_LUA__POINTER ? "a pointer or nil"
                                           : "a number",
             capffi_lua__typename(L, idx));
    return CAPFFI_ETYPE;
}

void
capffi_lua__scalar_push(lua_State *L, int kind, const capffi_value *v)
{
    switch (kind) {
    case CAPFFI_LUA__BOOL:
        lua_pushboolean(L, v->b);
        break;
    case CAPFFI_LUA__INT:
    case CAPFFI_LUA__I64:
        lua_pushinteger(L, v->i64);
        break;
    case CAPFFI_LUA__UINT:
    case CAPFFI_LUA__U64:
        lua_pushinteger(L, (lua_Integer)v->u64);
        break;
    case CAPFFI_LUA__F32:
        lua_pushnumber(L, (lua_Number)v->f32);
        break;
    case CAPFFI_LUA__F64:
        lua_pushnumber(L, v->f64);
        break;
    default: /* pointer, function, buffer: an address */
        if (v->p)
            lua_pushlightuserdata(L, v->p);
        else
            lua_pushnil(L);
        break;
    }
}

void
capffi_lua__value_push(lua_State *L, int kind, const capffi_value *v)
{
    if (kind != CAPFFI_LUA__CSTRING)
        capffi_lua__scalar_push(L, kind, v);
    else if (v->str)
        lua_pushstring(L, v->str);
    else
        lua_pushnil(L);
}

/* capffi.address(p): the address of a pointer as an integer (0 for nil).
 * Turning an integer back into a pointer needs a token
 * (tok:pointer_from); reading an address does not. */
int
capffi_lua__address(lua_State *L)
{
    if (!lua_islightuserdata(L, 1) && !lua_isnil(L, 1))
        return capffi_lua__error(L, CAPFFI_ETYPE,
                                 "address: expected a pointer or nil, got %s",
                                 capffi_lua__typename(L, 1));
    lua_pushinteger(L, (lua_Integer)(uintptr_t)lua_touserdata(L, 1));
    return 1;
}

/* capffi.u64tostring(n): the unsigned decimal text of a 64-bit integer. */
int
capffi_lua__u64tostring(lua_State *L)
{
    lua_Integer v = capffi_lua__check_integer(L, 1, "u64tostring");
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, (uint64_t)v);
    lua_pushstring(L, text);
    return 1;
}

/* capffi.u64fromstring(s): decimal text to the integer with those 64
 * bits (values from 2^63 come out negative). */
int
capffi_lua__u64fromstring(lua_State *L)
{
    const char *s = capffi_lua__check_string(L, 1, "u64fromstring");
    uint64_t v = 0;
    const char *p = s;
    if (!*p)
        return capffi_lua__error(L, CAPFFI_EINVAL, "u64fromstring: empty text");
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return capffi_lua__error(L, CAPFFI_EINVAL,
                                     "u64fromstring: '%s' is not a decimal "
                                     "number",
                                     s);
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return capffi_lua__error(L, CAPFFI_ERANGE,
                                     "u64fromstring: %s is above 2^64 - 1", s);
        v = v * 10 + d;
    }
    lua_pushinteger(L, (lua_Integer)v);
    return 1;
}
