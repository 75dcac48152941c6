/*
 * bench_ffi.h - the libffi side the call and callback benchmarks share
 * (bench_ffi.c): a raw libffi closure, and a fixture call prepared for
 * ffi_call, capffi_fn_call_raw and capffi_fn_call with the same arguments,
 * with the timed loop of each.
 */
#ifndef CAPFFI_BENCH_FFI_H
#define CAPFFI_BENCH_FFI_H

#include <stddef.h>

#include <ffi.h>

#include <capffi.h>

/* Most arguments of a measured signature. */
#define BENCH_MAX_ARGS 6

/* A raw libffi closure: the baseline of a capffi callback. */
struct bench_closure {
    ffi_cif cif;
    ffi_closure *closure;
    void *code;
};

/* Prepare c as a closure of nargs arguments of atypes returning rtype that
 * runs handler. Exits on failure. Ownership: free it with
 * bench_closure_free. */
void bench_closure_new(struct bench_closure *c, unsigned nargs, ffi_type *rtype,
                       ffi_type **atypes,
                       void (*handler)(ffi_cif *, void *, void **, void *));

void bench_closure_free(struct bench_closure *c);

/* (i32, i32) -> i32: the argument types and a raw handler returning the
 * wrapping sum, widened as libffi requires. */
extern ffi_type *bench_add_types[2];
void bench_raw_add(ffi_cif *cif, void *ret, void **args, void *user);

/* libffi's description of { i64, i64, i64 } (the fixture's struct
 * fx_big): 24 bytes, passed in memory. */
extern ffi_type bench_big_type;

/* A result buffer: scalars arrive widened to a full ffi_arg, a struct in
 * bytes. */
union bench_rbuf {
    ffi_arg a;
    ffi_sarg s;
    double f64;
    _Alignas(16) unsigned char bytes[32];
};

/* One call: the same argument values for ffi_call (a cif prepared here),
 * capffi_fn_call_raw and capffi_fn_call. */
struct bench_call {
    ffi_cif cif;
    ffi_type *atypes[BENCH_MAX_ARGS];
    void (*code)(void); /* the linked fixture's function */
    size_t nargs;
    int restore;                  /* argument ffi_call rewrites, or -1 */
    void *av_src[BENCH_MAX_ARGS]; /* pointers to the natives, never passed */
    void *av_ffi[BENCH_MAX_ARGS]; /* what ffi_call gets (and may rewrite) */
    void *av_raw[BENCH_MAX_ARGS]; /* what capffi_fn_call_raw gets */
    capffi_value vals[BENCH_MAX_ARGS];
};

/* Argument k of c: native pointer, libffi type and capffi value; c's
 * argument count grows to k + 1. */
void bench_call_arg(struct bench_call *c, size_t k, void *native, ffi_type *t,
                    capffi_value v);

/* Prepare c's cif (its arguments and code set) for a result of rtype and
 * find the argument ffi_call will rewrite, if any. Exits on failure. */
void bench_call_prep(struct bench_call *c, ffi_type *rtype);

/* One ffi_call of c into rb, the rewritten argument stored again. */
void bench_call_once(struct bench_call *c, union bench_rbuf *rb);

/* Timed loops of `iters` calls of c, nanoseconds per call: ffi_call, and
 * fn (bound in ctx) through capffi_fn_call_raw and capffi_fn_call, every
 * return code tested. A struct result needs its memory set before each
 * capffi_fn_call: those loops stay with their benchmark. */
double bench_loop_ffi(struct bench_call *c, size_t iters);
double bench_loop_raw(struct bench_call *c, const capffi_ctx *ctx,
                      capffi_fn *fn, size_t iters);
double bench_loop_value(const struct bench_call *c, const capffi_ctx *ctx,
                        capffi_fn *fn, size_t iters);

#endif
