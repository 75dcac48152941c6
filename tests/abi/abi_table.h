/*
 * abi_table.h - the cases of the differential ABI test, as gen.py writes
 * them into abi_table.c, and the random values that table fills in.
 */
#ifndef CAPFFI_TEST_ABI_TABLE_H
#define CAPFFI_TEST_ABI_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capffi.h"

#define ABI_MAX_ARGS 20    /* gen.py's MAX_ARITY */
#define ABI_ARG_BYTES 64   /* the largest argument or result, rounded up */
#define ABI_MAX_LEAVES 512 /* scalars one case receives, struct members too */

/* What a case returns: how to compare the result. */
enum abi_ret {
    ABI_R_VOID, /* compare abi_last_hash */
    ABI_R_BOOL,
    ABI_R_I8,
    ABI_R_U8,
    ABI_R_I16,
    ABI_R_U16,
    ABI_R_I32,
    ABI_R_U32,
    ABI_R_I64, /* i64, isize */
    ABI_R_U64, /* u64, usize */
    ABI_R_F32,
    ABI_R_F64,
    ABI_R_PTR,
    ABI_R_STRUCT /* compare member by member */
};

/* One scalar member of a struct result. */
struct abi_member {
    const char *name; /* "result.f1.f0 (f32)" */
    size_t offset, size;
};

/* One set of arguments for a case, and what the direct C call gave. */
struct abi_call {
    capffi_value val[ABI_MAX_ARGS]; /* for capffi_fn_call */
    /* Each argument in its native representation (capffi_fn_call_raw's
     * args[i] point here, and a struct's val[i].agg.ptr). */
    _Alignas(16) unsigned char arg[ABI_MAX_ARGS][ABI_ARG_BYTES];
    _Alignas(16) unsigned char want[ABI_ARG_BYTES]; /* the result */
    uint64_t want_hash;                 /* a void case's abi_last_hash */
    uint64_t want_seen[ABI_MAX_LEAVES]; /* abi_seen after the call */
};

struct abi_case {
    unsigned id;
    const char *symbol;    /* abi_case_N */
    const char *signature; /* capffi's signature language */
    unsigned nargs;
    unsigned nseen;                /* scalars received: abi_seen[0..nseen) */
    const char *const *seen_names; /* "args[6].f1 (f64)" */
    enum abi_ret ret;
    size_t ret_size;
    const struct abi_member *members; /* a struct result's scalars */
    unsigned nmembers;
    unsigned stack_words; /* the psABI's stack need of the arguments */
    bool libffi_only;     /* over the direct call's 16 stack words */
    /* The shape libffi before 3.4.7 passes wrongly (docs/limits.md). */
    bool libffi_defect;
    /* Fill c (zeroed by the caller) with the arguments drawn from seed, call
     * the function directly and record its result and abi_seen. */
    void (*run)(struct abi_call *c, uint64_t seed);
};

extern const struct abi_case abi_cases[];
extern const unsigned abi_ncases;
extern const uint64_t abi_seed; /* gen.py's */

/* A splitmix64 step. */
uint64_t abi_rand(uint64_t *s);
bool abi_rand_bool(uint64_t *s);
/* An integer of `bits` bits over its whole range: the extremes, -1, 0 and
 * small values often, else any. */
int64_t abi_rand_signed(uint64_t *s, unsigned bits);
uint64_t abi_rand_unsigned(uint64_t *s, unsigned bits);
/* Floats of varied bits (signs, zeros, subnormals, huge), never NaN. */
float abi_rand_f32(uint64_t *s);
double abi_rand_f64(uint64_t *s);
/* A non-NULL address that is never dereferenced. */
void *abi_rand_ptr(uint64_t *s);

#endif
