/*
 * thunk.c - capffi's own callback entry points, compiled in, so a callback
 * needs no libffi closure: no executable memory made at run time, and no
 * classification of the arguments on every invocation (libffi's closure
 * entry works out again, per call, where each argument of the cif lies).
 *
 * On x86-64 System V, integer-class arguments arrive in rdi, rsi, rdx,
 * rcx, r8, r9 and floating-point ones in xmm0-xmm7, each class in argument
 * order. A thunk is a C function whose parameters are exactly those six
 * uint64_t and eight double: whatever the native caller's prototype, the
 * registers it filled are the thunk's parameters (the ones it did not fill
 * are read and ignored). The thunk stores them in an array and calls the
 * common entry with its own index, which finds the callback in the pool
 * and points each argument at its register's word, as libffi would have
 * pointed at its copy. The result goes back as a struct of a uint64_t and
 * a double, which the convention returns in rax and xmm0: an integer or
 * pointer result is where native code reads it, and so is an f64 or f32.
 *
 * Each callback keeps its thunk until its context frees it (a closed or
 * revoked callback fails closed through it, as through a closure, C2);
 * the pool is the process's, CAPFFI__THUNKS entries, and a callback made
 * when it is empty (or whose signature needs the stack, a struct or
 * variadic arguments, or made with CAPFFI_CB_LIBFFI) gets a libffi
 * closure as before.
 */
#include "callback/thunk.h"

#include <pthread.h>
#include <string.h>

#include "call/abi.h"

#if CAPFFI__ABI_SYSV64

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
/* The callback holding each thunk, NULL when free. Read by invocations
 * on any thread (acquire), written under pool_lock. */
static _Atomic(capffi_cb *) holder[CAPFFI__THUNKS];
static unsigned next; /* where the next search starts (pool_lock) */

/* The registers of an invocation: six integer, then eight SSE words. */
#define REGS (CAPFFI__ABI_GP + CAPFFI__ABI_SSE)

_Static_assert(sizeof((capffi_cb *)0)->thunk_ix == REGS,
               "a thunk's callback has one register word per argument");

struct thunk_ret {
    uint64_t i; /* rax */
    double d;   /* xmm0 */
};

static __attribute__((noinline)) struct thunk_ret
common(unsigned k, uint64_t *regs)
{
    union {
        uint64_t u;
        double d;
        _Alignas(16) unsigned char bytes[16];
    } r;
    memset(&r, 0, sizeof r);
    capffi_cb *cb = atomic_load_explicit(&holder[k], memory_order_acquire);
    if (CAPFFI__LIKELY(cb != NULL)) {
        void *av[REGS];
        for (size_t i = 0; i < cb->sig.nargs; i++)
            av[i] = &regs[cb->thunk_ix[i]];
        capffi__cb_trampoline(NULL, &r, av, cb);
    }
    struct thunk_ret out = { r.u, r.d };
    return out;
}

#define THUNK(n)                                                               \
    static struct thunk_ret thunk_##n(                                         \
        uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,       \
        uint64_t a5, double x0, double x1, double x2, double x3, double x4,    \
        double x5, double x6, double x7)                                       \
    {                                                                          \
        uint64_t regs[REGS] = { a0, a1, a2, a3, a4, a5 };                      \
        double x[CAPFFI__ABI_SSE] = { x0, x1, x2, x3, x4, x5, x6, x7 };        \
        memcpy(&regs[CAPFFI__ABI_GP], x, sizeof x);                            \
        return common(n - 100, regs);                                          \
    }
/* Thunks 100 to 599, named by decimal digits: index n - 100. */
#define D10(p)                                                                 \
    THUNK(p##0)                                                                \
    THUNK(p##1)                                                                \
    THUNK(p##2)                                                                \
    THUNK(p##3)                                                                \
    THUNK(p##4)                                                                \
    THUNK(p##5)                                                                \
    THUNK(p##6)                                                                \
    THUNK(p##7)                                                                \
    THUNK(p##8)                                                                \
    THUNK(p##9)
#define D100(p)                                                                \
    D10(p##0)                                                                  \
    D10(p##1)                                                                  \
    D10(p##2)                                                                  \
    D10(p##3)                                                                  \
    D10(p##4)                                                                  \
    D10(p##5)                                                                  \
    D10(p##6)                                                                  \
    D10(p##7)                                                                  \
    D10(p##8)                                                                  \
    D10(p##9)
D100(1)
D100(2)
D100(3)
D100(4)
D100(5)
#undef THUNK

typedef struct thunk_ret (*thunk_fn)(uint64_t, uint64_t, uint64_t, uint64_t,
                                     uint64_t, uint64_t, double, double, double,
                                     double, double, double, double, double);
#define THUNK(n) [n - 100] = thunk_##n,
static const thunk_fn thunks[CAPFFI__THUNKS] = { D100(1) D100(2) D100(3) D100(4)
                                                     D100(5) };
#undef THUNK

bool
capffi__thunk_take(capffi_cb *cb)
{
    unsigned gp, sse;
    if ((cb->flags & CAPFFI_CB_LIBFFI) ||
        !capffi__abi_scalar_regs(&cb->sig, cb->thunk_ix, &gp, &sse))
        return false;
    bool taken = false;
    pthread_mutex_lock(&pool_lock);
    /* Round the pool from after the last thunk handed out, so a thunk
     * given back waits as long as it can before it is handed out again. */
    for (unsigned i = 0; i < CAPFFI__THUNKS && !taken; i++) {
        unsigned k = (next + i) % CAPFFI__THUNKS;
        if (atomic_load_explicit(&holder[k], memory_order_relaxed))
            continue;
        next = (k + 1) % CAPFFI__THUNKS;
        cb->thunk = (int)k;
        void (*fp)(void);
        memcpy(&fp, &thunks[k], sizeof fp);
        cb->call.code = (void *)(uintptr_t)fp;
        atomic_store_explicit(&holder[k], cb, memory_order_release);
        taken = true;
    }
    pthread_mutex_unlock(&pool_lock);
    return taken;
}

void
capffi__thunk_release(capffi_cb *cb)
{
    if (cb->thunk < 0)
        return;
    pthread_mutex_lock(&pool_lock);
    atomic_store_explicit(&holder[cb->thunk], NULL, memory_order_release);
    pthread_mutex_unlock(&pool_lock);
    cb->thunk = -1;
}

#else /* no thunks on this ABI: every callback is a libffi closure */

bool
capffi__thunk_take(capffi_cb *cb)
{
    (void)cb;
    return false;
}

void
capffi__thunk_release(capffi_cb *cb)
{
    (void)cb;
}

#endif
