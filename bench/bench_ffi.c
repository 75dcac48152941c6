/*
 * bench_ffi.c - see bench_ffi.h.
 */
#include "bench_ffi.h"

#include <stdint.h>

#include "bench_util.h"

void
bench_closure_new(struct bench_closure *c, unsigned nargs, ffi_type *rtype,
                  ffi_type **atypes,
                  void (*handler)(ffi_cif *, void *, void **, void *))
{
    if (ffi_prep_cif(&c->cif, FFI_DEFAULT_ABI, nargs, rtype, atypes) != FFI_OK)
        bench_die("ffi_prep_cif failed");
    c->closure = ffi_closure_alloc(sizeof(ffi_closure), &c->code);
    if (!c->closure)
        bench_die("ffi_closure_alloc failed");
    if (ffi_prep_closure_loc(c->closure, &c->cif, handler, NULL, c->code) !=
        FFI_OK)
        bench_die("ffi_prep_closure_loc failed");
}

void
bench_closure_free(struct bench_closure *c)
{
    ffi_closure_free(c->closure);
    c->closure = NULL;
    c->code = NULL;
}

ffi_type *bench_add_types[2] = { &ffi_type_sint32, &ffi_type_sint32 };

void
bench_raw_add(ffi_cif *cif, void *ret, void **args, void *user)
{
    (void)cif;
    (void)user;
    int32_t a = *(const int32_t *)args[0], b = *(const int32_t *)args[1];
    *(ffi_sarg *)ret = bench_add_i32(a, b);
}

static ffi_type *big_elements[] = { &ffi_type_sint64, &ffi_type_sint64,
                                    &ffi_type_sint64, NULL };
ffi_type bench_big_type = { 0, 0, FFI_TYPE_STRUCT, big_elements };

void
bench_call_arg(struct bench_call *c, size_t k, void *native, ffi_type *t,
               capffi_value v)
{
    c->av_src[k] = c->av_ffi[k] = c->av_raw[k] = native;
    c->atypes[k] = t;
    c->vals[k] = v;
    if (c->nargs < k + 1)
        c->nargs = k + 1;
}

void
bench_call_prep(struct bench_call *c, ffi_type *rtype)
{
    if (ffi_prep_cif(&c->cif, FFI_DEFAULT_ABI, (unsigned)c->nargs, rtype,
                     c->atypes) != FFI_OK)
        bench_die("ffi_prep_cif failed");
    c->restore = -1;
    for (size_t k = 0; k < c->nargs; k++)
        if (c->atypes[k]->type == FFI_TYPE_STRUCT && c->atypes[k]->size > 16)
            c->restore = (int)k;
}

void
bench_call_once(struct bench_call *c, union bench_rbuf *rb)
{
    ffi_call(&c->cif, c->code, rb, c->av_ffi);
    if (c->restore >= 0)
        c->av_ffi[c->restore] = c->av_src[c->restore];
}

__attribute__((noinline)) double
bench_loop_ffi(struct bench_call *c, size_t iters)
{
    union bench_rbuf rb;
    uint64_t t0, t1;
    if (c->restore < 0) {
        t0 = bench_now_ns();
        for (size_t i = 0; i < iters; i++)
            ffi_call(&c->cif, c->code, &rb, c->av_ffi);
        t1 = bench_now_ns();
    } else {
        /* libffi's x86-64 ffi_call replaces the pointer to a struct over
         * 16 bytes with one into its own dead frame: store it again, the
         * least a correct caller must do. */
        size_t k = (size_t)c->restore;
        void *p = c->av_src[k];
        t0 = bench_now_ns();
        for (size_t i = 0; i < iters; i++) {
            c->av_ffi[k] = p;
            ffi_call(&c->cif, c->code, &rb, c->av_ffi);
        }
        t1 = bench_now_ns();
    }
    return bench_per_call(t0, t1, iters);
}

__attribute__((noinline)) double
bench_loop_raw(struct bench_call *c, const capffi_ctx *ctx, capffi_fn *fn,
               size_t iters)
{
    union bench_rbuf rb;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++) {
        int rc = capffi_fn_call_raw(fn, c->av_raw, &rb);
        if (rc != CAPFFI_OK)
            bench_die_capffi(ctx, "capffi_fn_call_raw", rc);
    }
    uint64_t t1 = bench_now_ns();
    return bench_per_call(t0, t1, iters);
}

__attribute__((noinline)) double
bench_loop_value(const struct bench_call *c, const capffi_ctx *ctx,
                 capffi_fn *fn, size_t iters)
{
    capffi_value ret;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++) {
        int rc = capffi_fn_call(fn, c->vals, &ret);
        if (rc != CAPFFI_OK)
            bench_die_capffi(ctx, "capffi_fn_call", rc);
    }
    uint64_t t1 = bench_now_ns();
    return bench_per_call(t0, t1, iters);
}
