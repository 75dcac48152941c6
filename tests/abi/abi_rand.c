/*
 * abi_rand.c - the random argument values of the differential ABI test.
 */
#include "abi_table.h"

#include <string.h>

uint64_t
abi_rand(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

bool
abi_rand_bool(uint64_t *s)
{
    return abi_rand(s) & 1;
}

int64_t
abi_rand_signed(uint64_t *s, unsigned bits)
{
    int64_t max = bits == 64 ? INT64_MAX : (INT64_C(1) << (bits - 1)) - 1;
    int64_t min = -max - 1;
    uint64_t r = abi_rand(s);
    switch (r & 7) {
    case 0:
        return min;
    case 1:
        return max;
    case 2:
        return -1;
    case 3:
        return (int64_t)((r >> 8) & 15) - 8;
    default: {
        /* The low bits, sign-extended from the type's width. */
        uint64_t v = abi_rand(s);
        unsigned shift = 64 - bits;
        int64_t w;
        v <<= shift;
        memcpy(&w, &v, sizeof w);
        return w >> shift;
    }
    }
}

uint64_t
abi_rand_unsigned(uint64_t *s, unsigned bits)
{
    uint64_t max = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
    uint64_t r = abi_rand(s);
    switch (r & 7) {
    case 0:
        return 0;
    case 1:
        return max;
    case 2:
        return max >> 1; /* the largest value a signed type would read */
    case 3:
        return ((max >> 1) + 1) & max;
    default:
        return abi_rand(s) & max;
    }
}

float
abi_rand_f32(uint64_t *s)
{
    uint64_t r = abi_rand(s);
    uint32_t u;
    float f;
    switch (r & 7) {
    case 0:
        return (float)((int64_t)((r >> 8) & 255) - 128);
    case 1:
        u = (uint32_t)(r >> 32) & 0x807fffffu; /* zero or subnormal */
        break;
    default:
        u = (uint32_t)abi_rand(s);
        if (((u >> 23) & 0xff) == 0xff)
            u &= ~(UINT32_C(1) << 30); /* infinity or NaN: make it finite */
        break;
    }
    memcpy(&f, &u, sizeof f);
    return f;
}

double
abi_rand_f64(uint64_t *s)
{
    uint64_t r = abi_rand(s);
    uint64_t u;
    double d;
    switch (r & 7) {
    case 0:
        return (double)((int64_t)((r >> 8) & 255) - 128) / 4;
    case 1:
        u = (r >> 3) & UINT64_C(0x800fffffffffffff); /* zero or subnormal */
        break;
    default:
        u = abi_rand(s);
        if (((u >> 52) & 0x7ff) == 0x7ff)
            u &= ~(UINT64_C(1) << 62);
        break;
    }
    memcpy(&d, &u, sizeof d);
    return d;
}

void *
abi_rand_ptr(uint64_t *s)
{
    uint64_t r = abi_rand(s);
    uint64_t a = r & 1 ? abi_rand(s) : (abi_rand(s) & UINT64_C(0x7ffffffffff8));
    return (void *)(uintptr_t)(a ? a : 8);
}
