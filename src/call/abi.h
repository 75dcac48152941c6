/*
 * abi.h - direct calls under the platform's calling convention.
 *
 * On x86-64 System V (Linux, the BSDs), most signatures need nothing but
 * registers and a few stack words: every argument is an integer, a pointer,
 * a float or a struct. For those, capffi works out at bind time where each
 * argument goes (which register, which stack word) and calls the function
 * through a C function pointer of a fixed shape that fills all six integer
 * registers, all eight SSE registers when any is used and, when needed, a
 * block of stack words. The callee reads the registers its prototype names
 * and ignores the rest, which the convention allows. That call costs a few
 * nanoseconds; libffi's ffi_call classifies every argument again on every
 * call (about 20 ns for two integers). Signatures the plan cannot express
 * (more stack than CAPFFI__ABI_STACK words, other platforms, or a function
 * bound with CAPFFI_FN_LIBFFI) keep libffi.
 */
#ifndef CAPFFI_SRC_ABI_H
#define CAPFFI_SRC_ABI_H

#include <stdbool.h>
#include <stdint.h>

#include "capffi/value.h"
#include "types/sig.h"

#if defined(__x86_64__) && !defined(_WIN32) && !defined(__ILP32__)
#define CAPFFI__ABI_SYSV64 1
#else
#define CAPFFI__ABI_SYSV64 0
#endif

#define CAPFFI__ABI_GP 6     /* integer argument registers */
#define CAPFFI__ABI_SSE 8    /* SSE argument registers */
#define CAPFFI__ABI_STACK 16 /* stack words a direct call may pass */
#define CAPFFI__ABI_SLOTS (CAPFFI__ABI_GP + CAPFFI__ABI_SSE + CAPFFI__ABI_STACK)

/* One load of (part of) an argument into a register or stack slot. */
struct capffi__abi_move {
    uint8_t op;  /* enum in abi.c */
    uint8_t arg; /* which argument */
    uint8_t off; /* byte offset in it (a struct's eightbyte) */
    uint8_t len; /* bytes, for a partial eightbyte */
    uint8_t dst; /* slot: integer registers, SSE registers, stack words */
};

/* Where a function's arguments go and how its result comes back: planned
 * once at bind time, read by every call. shape 0 means "use libffi". */
struct capffi__abi {
    uint8_t shape;    /* which fixed function-pointer type to call through */
    uint8_t store;    /* how the result is written to the caller's memory */
    uint8_t ret_size; /* bytes of a struct result in registers */
    bool ret_memory;  /* a struct result the callee writes through rdi */
    uint8_t nmoves;
    struct capffi__abi_move
        moves[CAPFFI__ABI_GP + CAPFFI__ABI_SSE + CAPFFI__ABI_STACK];
};

/*
 * Plan a direct call for a parsed signature. Returns false (and leaves
 * plan->shape 0) when the signature needs libffi.
 */
CAPFFI__HIDDEN bool capffi__abi_plan(struct capffi__abi *plan,
                                     const struct capffi__sig *sig);

/*
 * Whether ffi_call of libffi before 3.4.7 would pass this signature's
 * arguments wrongly on x86-64: a struct over 8 bytes whose first eightbyte
 * is INTEGER and second SSE, placed in the last integer register after a
 * floating-point argument took an SSE register (libffi copies the whole
 * struct into that register's slot and overwrites the first SSE slot).
 * Returns the 1-based position of the first such argument, or 0.
 */
CAPFFI__HIDDEN size_t capffi__abi_libffi_defect(const struct capffi__sig *sig);

/*
 * A call through a signature stub (abi.c, "signature stubs"): code called
 * with the arguments a[ix[0..5]] in the integer registers and
 * a[ix[6..13]] in the SSE registers, as many as the stub's shape has; the
 * result's 8 register bytes returned.
 */
typedef uint64_t (*capffi__abi_stub)(void *code, const capffi_value *a,
                                     const uint8_t *ix);

struct capffi__abi_stub_plan {
    capffi__abi_stub call; /* NULL: no stub fits */
    uint8_t ix[CAPFFI__ABI_GP + CAPFFI__ABI_SSE];
    /* Each argument's enum capffi__vop, for capffi_fn_call_raw, whose
     * arguments arrive in their native widths. */
    uint8_t vop[CAPFFI__ABI_GP + CAPFFI__ABI_SSE];
};

#if CAPFFI__ABI_SYSV64
/*
 * Where each argument of a scalar signature arrives (integers, pointers,
 * f32, f64; a scalar or void result; not variadic): reg[i] is argument
 * i's register word, 0-5 the integer registers and 6-13 the SSE ones, in
 * the convention's order; *gp and *sse count those used. False when an
 * argument is a struct or the registers run out. Stubs (calls) and thunks
 * (callbacks) share it.
 */
CAPFFI__HIDDEN bool
capffi__abi_scalar_regs(const struct capffi__sig *sig,
                        uint8_t reg[CAPFFI__ABI_GP + CAPFFI__ABI_SSE],
                        unsigned *gp, unsigned *sse);

/*
 * Choose the stub for a scalar signature whose arguments a caller passes
 * straight from capffi_value (no conversion, small integers range-checked,
 * no bool): false (p->call NULL) when none fits.
 */
CAPFFI__HIDDEN bool capffi__abi_plan_stub(struct capffi__abi_stub_plan *p,
                                          const struct capffi__sig *sig);

/*
 * Call code as planned. av[i] points to argument i in its native
 * representation (a struct's bytes for a struct); it is only read. ret
 * receives the result the way ffi_call writes it: integers widened to 8
 * bytes, f32 in 4 bytes, f64 in 8, a struct in its size. Returns 0, so
 * callers can tail-call it.
 */
CAPFFI__HIDDEN int capffi__abi_call(const struct capffi__abi *plan, void *code,
                                    void *ret, void **av);
#endif

#endif
