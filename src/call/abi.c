/*
 * abi.c - direct calls under the x86-64 System V calling convention.
 *
 * The plan follows the psABI's argument classification (section 3.2.3 of
 * the System V AMD64 psABI):
 * - integers, bools, pointers: the next integer register, else a stack
 *   word, sign- or zero-extended to 64 bits as gcc and clang expect;
 * - f32, f64: the next SSE register, else a stack word;
 * - a struct of at most 16 bytes: each eightbyte is INTEGER if any
 *   non-float member overlaps it, else SSE; it goes in registers when
 *   enough of both kinds remain, else wholly on the stack (and the
 *   registers it did not take stay free for later arguments);
 * - a larger struct: copied to the stack;
 * - a struct result over 16 bytes: the caller passes its memory in the
 *   first integer register; one of at most 16 bytes comes back in rax,
 *   rdx, xmm0 and xmm1 by the same classes.
 * Stack arguments are 8-byte words in order, starting at the stack pointer
 * at the call; every capffi type has alignment 8 or less.
 *
 * The call itself goes through a pointer to a variadic function whose
 * named parameters are six uint64_t; it passes eight double after them and
 * then as many uint64_t as there are stack words (on the stack, since no
 * register remains for them), so the C compiler emits exactly the planned
 * register and stack contents. What the callee's own prototype does not
 * name, it never reads. Being a variadic call, it also sets %al to the
 * number of SSE registers passed (0 or 8), an upper bound of those used,
 * which is what a variadic callee needs and what libffi always sets: so
 * variadic signatures take the direct call too, and a variadic function
 * bound with a fixed signature works as it does with libffi.
 */
#include "call/abi.h"

#include "types/value.h"

#include <string.h>

enum move_op {
    MV_I8,
    MV_U8,
    MV_I16,
    MV_U16,
    MV_I32,
    MV_U32,
    MV_64,   /* 8 bytes: 64-bit integers, pointers, f64, full eightbytes */
    MV_F32,  /* 4 bytes, upper half zero */
    MV_BYTES /* len bytes (under 8): the last, partial eightbyte of a struct */
};

/* How the result comes back: the return type of the call's pointer. */
enum ret_kind {
    R_INT, /* rax (also void, and a struct result in memory) */
    R_SSE, /* xmm0 */
    R_II,  /* rax, rdx */
    R_SS,  /* xmm0, xmm1 */
    R_IS,  /* rax, xmm0 */
    R_SI,  /* xmm0, rax */
    R_KINDS
};

/* Which argument registers and stack words the call passes. */
enum tier {
    T_GP,   /* integer registers only */
    T_REGS, /* integer and SSE registers */
    T_S4,   /* registers and 4 stack words */
    T_S16   /* registers and 16 stack words */
};

/* How the result is written for the caller, as ffi_call would. */
enum store {
    ST_NONE,
    ST_I8,
    ST_U8,
    ST_I16,
    ST_U16,
    ST_I32,
    ST_U32,
    ST_8,
    ST_4,
    ST_STRUCT
};

#define SHAPE(tier, kind) ((uint8_t)(1 + (tier)*R_KINDS + (kind)))

enum cls { CLS_NONE, CLS_SSE, CLS_INT };

static bool
is_float(enum capffi__kind k)
{
    return k == CAPFFI__F32 || k == CAPFFI__F64;
}

/*
 * The classes of the eightbytes of a struct of at most 16 bytes, merged
 * over its scalar members (INTEGER wins over SSE). False when a member
 * straddles an eightbyte, which natural alignment never produces.
 */
static bool
classify(const struct capffi__type *t, size_t base, uint8_t cls[2])
{
    if (t->kind == CAPFFI__STRUCT) {
        for (size_t i = 0; i < t->nfields; i++)
            if (!classify(t->fields[i].type, base + t->fields[i].offset, cls))
                return false;
        return true;
    }
    if (base / 8 != (base + t->size - 1) / 8 || base / 8 > 1)
        return false;
    uint8_t *c = &cls[base / 8];
    if (!is_float(t->kind))
        *c = CLS_INT;
    else if (*c == CLS_NONE)
        *c = CLS_SSE;
    return true;
}

/* The eightbyte classes of a struct by value; false when it travels in
 * memory (over 16 bytes) or has an eightbyte of no class. */
static bool
struct_classes(const struct capffi__type *t, uint8_t cls[2], unsigned *n)
{
    cls[0] = cls[1] = CLS_NONE;
    if (t->size > 16 || !classify(t, 0, cls))
        return false;
    *n = t->size > 8 ? 2 : 1;
    for (unsigned k = 0; k < *n; k++)
        if (cls[k] == CLS_NONE)
            return false;
    return true;
}

/*
 * Whether the plan can express type t: every capffi type can (alignment 8
 * or less, naturally aligned members), but a type that could not is left
 * to libffi rather than guessed at.
 */
static bool
expressible(const struct capffi__type *t)
{
    if (t->align > 8)
        return false;
    if (t->kind != CAPFFI__STRUCT || t->size > 16)
        return true;
    uint8_t cls[2];
    unsigned n;
    return struct_classes(t, cls, &n);
}

static uint8_t
scalar_op(enum capffi__kind k)
{
    switch (k) {
    case CAPFFI__BOOL:
    case CAPFFI__U8:
        return MV_U8;
    case CAPFFI__I8:
        return MV_I8;
    case CAPFFI__I16:
        return MV_I16;
    case CAPFFI__U16:
        return MV_U16;
    case CAPFFI__I32:
        return MV_I32;
    case CAPFFI__U32:
        return MV_U32;
    case CAPFFI__F32:
        return MV_F32;
    default: /* 64-bit integers, f64, pointers of every kind */
        return MV_64;
    }
}

static uint8_t
scalar_store(enum capffi__kind k)
{
    switch (k) {
    case CAPFFI__VOID:
        return ST_NONE;
    case CAPFFI__BOOL:
    case CAPFFI__U8:
        return ST_U8;
    case CAPFFI__I8:
        return ST_I8;
    case CAPFFI__I16:
        return ST_I16;
    case CAPFFI__U16:
        return ST_U16;
    case CAPFFI__I32:
        return ST_I32;
    case CAPFFI__U32:
        return ST_U32;
    case CAPFFI__F32:
        return ST_4;
    default:
        return ST_8;
    }
}

/* Registers and stack words handed out so far. */
struct alloc {
    unsigned gp, sse, stack;
};

static void
add_move(struct capffi__abi *p, uint8_t op, size_t arg, size_t off, size_t len,
         unsigned dst)
{
    p->moves[p->nmoves++] = (struct capffi__abi_move){
        .op = op,
        .arg = (uint8_t)arg,
        .off = (uint8_t)off,
        .len = (uint8_t)len,
        .dst = (uint8_t)dst,
    };
}

/* Copy argument arg of size bytes to the next stack words, a word per
 * move (a scalar's op extends it to its word). */
static bool
to_stack(struct capffi__abi *p, struct alloc *a, size_t arg, uint8_t op,
         size_t size)
{
    size_t words = (size + 7) / 8;
    if (a->stack + words > CAPFFI__ABI_STACK)
        return false;
    unsigned base = CAPFFI__ABI_GP + CAPFFI__ABI_SSE + a->stack;
    if (op != MV_BYTES) {
        add_move(p, op, arg, 0, 0, base);
    } else {
        for (size_t k = 0; k < words; k++) {
            size_t len = size - 8 * k < 8 ? size - 8 * k : 8;
            add_move(p, len == 8 ? MV_64 : MV_BYTES, arg, 8 * k, len,
                     base + (unsigned)k);
        }
    }
    a->stack += (unsigned)words;
    return true;
}

/* Plan argument i of type t. */
static bool
plan_arg(struct capffi__abi *p, struct alloc *a, size_t i,
         const struct capffi__type *t)
{
    if (t->kind != CAPFFI__STRUCT) {
        uint8_t op = scalar_op(t->kind);
        if (is_float(t->kind) && a->sse < CAPFFI__ABI_SSE)
            add_move(p, op, i, 0, 0, CAPFFI__ABI_GP + a->sse++);
        else if (!is_float(t->kind) && a->gp < CAPFFI__ABI_GP)
            add_move(p, op, i, 0, 0, a->gp++);
        else
            return to_stack(p, a, i, op, 8);
        return true;
    }
    uint8_t cls[2];
    unsigned n;
    if (!struct_classes(t, cls, &n))
        return to_stack(p, a, i, MV_BYTES, t->size);
    unsigned need_gp = 0, need_sse = 0;
    for (unsigned k = 0; k < n; k++)
        cls[k] == CLS_INT ? need_gp++ : need_sse++;
    if (a->gp + need_gp > CAPFFI__ABI_GP || a->sse + need_sse > CAPFFI__ABI_SSE)
        return to_stack(p, a, i, MV_BYTES, t->size);
    for (unsigned k = 0; k < n; k++) {
        size_t len = k == n - 1 ? t->size - 8 * k : 8;
        unsigned dst = cls[k] == CLS_INT ? a->gp++ : CAPFFI__ABI_GP + a->sse++;
        add_move(p, len == 8 ? MV_64 : MV_BYTES, i, 8 * k, len, dst);
    }
    return true;
}

/* Plan the result: its return kind, store and whether it needs memory. */
static uint8_t
plan_ret(struct capffi__abi *p, struct alloc *a, const struct capffi__type *t)
{
    if (t->kind != CAPFFI__STRUCT) {
        p->store = scalar_store(t->kind);
        return is_float(t->kind) ? R_SSE : R_INT;
    }
    uint8_t cls[2];
    unsigned n;
    if (!struct_classes(t, cls, &n)) {
        p->ret_memory = true; /* its address goes in the first register */
        p->store = ST_NONE;
        a->gp = 1;
        return R_INT;
    }
    p->store = ST_STRUCT;
    p->ret_size = (uint8_t)t->size;
    if (n == 1)
        return cls[0] == CLS_INT ? R_INT : R_SSE;
    if (cls[0] == CLS_INT)
        return cls[1] == CLS_INT ? R_II : R_IS;
    return cls[1] == CLS_INT ? R_SI : R_SS;
}

bool
capffi__abi_plan(struct capffi__abi *p, const struct capffi__sig *s)
{
    memset(p, 0, sizeof *p);
    if (!CAPFFI__ABI_SYSV64 || !expressible(s->ret))
        return false;
    for (size_t i = 0; i < s->nargs; i++)
        if (!expressible(s->args[i]))
            return false;
    struct alloc a = { 0, 0, 0 };
    uint8_t kind = plan_ret(p, &a, s->ret);
    for (size_t i = 0; i < s->nargs; i++) {
        if (!plan_arg(p, &a, i, s->args[i])) {
            memset(p, 0, sizeof *p);
            return false;
        }
    }
    enum tier tier = a.stack > 4 ? T_S16
                     : a.stack   ? T_S4
                     : a.sse     ? T_REGS
                                 : T_GP;
    p->shape = SHAPE(tier, kind);
    return true;
}

size_t
capffi__abi_libffi_defect(const struct capffi__sig *s)
{
    unsigned gp = 0, sse = 0;
    uint8_t cls[2];
    unsigned n;
    if (s->ret->kind == CAPFFI__STRUCT && !struct_classes(s->ret, cls, &n))
        gp = 1; /* the result's memory */
    for (size_t i = 0; i < s->nargs; i++) {
        const struct capffi__type *t = s->args[i];
        if (t->kind != CAPFFI__STRUCT) {
            if (is_float(t->kind))
                sse += sse < CAPFFI__ABI_SSE;
            else
                gp += gp < CAPFFI__ABI_GP;
            continue;
        }
        if (!struct_classes(t, cls, &n))
            continue; /* in memory */
        unsigned need_gp = (cls[0] == CLS_INT) + (n > 1 && cls[1] == CLS_INT);
        unsigned need_sse = n - need_gp;
        if (gp + need_gp > CAPFFI__ABI_GP || sse + need_sse > CAPFFI__ABI_SSE)
            continue; /* on the stack */
        if (n == 2 && cls[0] == CLS_INT && cls[1] == CLS_SSE &&
            gp == CAPFFI__ABI_GP - 1 && sse > 0)
            return i + 1;
        gp += need_gp;
        sse += need_sse;
    }
    return 0;
}

/* ---- the call ---------------------------------------------------------- */

#if CAPFFI__ABI_SYSV64

struct ret_ii {
    uint64_t a, b;
};
struct ret_ss {
    double a, b;
};
struct ret_is {
    uint64_t a;
    double b;
};
struct ret_si {
    double a;
    uint64_t b;
};

static inline double
as_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

#define PARAMS (uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, ...)
#define A_GP s[0], s[1], s[2], s[3], s[4], s[5]
#define A_REGS                                                                 \
    A_GP, as_double(s[6]), as_double(s[7]), as_double(s[8]), as_double(s[9]),  \
        as_double(s[10]), as_double(s[11]), as_double(s[12]), as_double(s[13])
#define A_S4 A_REGS, s[14], s[15], s[16], s[17]
#define A_S16                                                                  \
    A_S4, s[18], s[19], s[20], s[21], s[22], s[23], s[24], s[25], s[26],       \
        s[27], s[28], s[29]

/* One case per return kind for one tier: call, keep the registers' bytes.
 * A comes parenthesised: the argument list. */
#define CALL(RT, A)                                                            \
    do {                                                                       \
        RT r_ = ((RT(*) PARAMS)fp)A;                                           \
        memcpy(eb, &r_, sizeof r_);                                            \
    } while (0)
#define TIER(T, A)                                                             \
    case SHAPE(T, R_INT):                                                      \
        CALL(uint64_t, A);                                                     \
        break;                                                                 \
    case SHAPE(T, R_SSE):                                                      \
        CALL(double, A);                                                       \
        break;                                                                 \
    case SHAPE(T, R_II):                                                       \
        CALL(struct ret_ii, A);                                                \
        break;                                                                 \
    case SHAPE(T, R_SS):                                                       \
        CALL(struct ret_ss, A);                                                \
        break;                                                                 \
    case SHAPE(T, R_IS):                                                       \
        CALL(struct ret_is, A);                                                \
        break;                                                                 \
    case SHAPE(T, R_SI):                                                       \
        CALL(struct ret_si, A);                                                \
        break;

/* Zero the slots the shape passes, so no stale stack bytes reach native
 * code in registers it does not read. In pieces of at most 64 bytes, which
 * compilers turn into a few vector stores. */
static inline void
clear(uint64_t *s, uint8_t shape)
{
    memset(s, 0, CAPFFI__ABI_GP * sizeof *s);
    if (shape <= SHAPE(T_GP, R_KINDS - 1))
        return;
    memset(s + CAPFFI__ABI_GP, 0, CAPFFI__ABI_SSE * sizeof *s);
    if (shape <= SHAPE(T_REGS, R_KINDS - 1))
        return;
    memset(s + CAPFFI__ABI_GP + CAPFFI__ABI_SSE, 0, 4 * sizeof *s);
    if (shape <= SHAPE(T_S4, R_KINDS - 1))
        return;
    memset(s + CAPFFI__ABI_GP + CAPFFI__ABI_SSE + 4, 0, 8 * sizeof *s);
    memset(s + CAPFFI__ABI_GP + CAPFFI__ABI_SSE + 12, 0, 4 * sizeof *s);
}

static inline void
load(const struct capffi__abi_move *m, uint64_t *dst, const unsigned char *p)
{
    switch (m->op) {
    case MV_I8: {
        int8_t v;
        memcpy(&v, p, sizeof v);
        *dst = (uint64_t)(int64_t)v;
        break;
    }
    case MV_U8:
        *dst = *p;
        break;
    case MV_I16: {
        int16_t v;
        memcpy(&v, p, sizeof v);
        *dst = (uint64_t)(int64_t)v;
        break;
    }
    case MV_U16: {
        uint16_t v;
        memcpy(&v, p, sizeof v);
        *dst = v;
        break;
    }
    case MV_I32: {
        int32_t v;
        memcpy(&v, p, sizeof v);
        *dst = (uint64_t)(int64_t)v;
        break;
    }
    case MV_U32:
    case MV_F32: {
        uint32_t v;
        memcpy(&v, p, sizeof v);
        *dst = v;
        break;
    }
    case MV_64:
        memcpy(dst, p, 8);
        break;
    default: /* MV_BYTES, into a zeroed slot */
        memcpy(dst, p, m->len);
        break;
    }
}

static inline void
store(const struct capffi__abi *plan, void *ret, const uint64_t eb[2])
{
    uint64_t w;
    switch (plan->store) {
    case ST_I8:
        w = (uint64_t)(int64_t)(int8_t)eb[0];
        break;
    case ST_U8:
        w = (uint8_t)eb[0];
        break;
    case ST_I16:
        w = (uint64_t)(int64_t)(int16_t)eb[0];
        break;
    case ST_U16:
        w = (uint16_t)eb[0];
        break;
    case ST_I32:
        w = (uint64_t)(int64_t)(int32_t)eb[0];
        break;
    case ST_U32:
        w = (uint32_t)eb[0];
        break;
    case ST_8:
        w = eb[0];
        break;
    case ST_4:
        memcpy(ret, eb, 4);
        return;
    case ST_STRUCT:
        memcpy(ret, eb, plan->ret_size);
        return;
    default:
        return;
    }
    memcpy(ret, &w, sizeof w);
}

#if defined(__clang__)
/* The call's pointer type is the plan's, not the callee's prototype: that
 * is the point. Clang's function sanitizer would report it. */
__attribute__((no_sanitize("function")))
#endif
int
capffi__abi_call(const struct capffi__abi *plan, void *code, void *ret,
                 void **av)
{
    uint64_t s[CAPFFI__ABI_SLOTS]; /* registers, then stack words */
    uint64_t eb[2] = { 0, 0 };
    void (*fp)(void); /* an address from dlsym or native code */
    memcpy(&fp, &code, sizeof fp);
    clear(s, plan->shape);
    if (plan->ret_memory)
        s[0] = (uint64_t)(uintptr_t)ret;
    for (unsigned i = 0; i < plan->nmoves; i++) {
        const struct capffi__abi_move *m = &plan->moves[i];
        load(m, &s[m->dst], (const unsigned char *)av[m->arg] + m->off);
    }
    switch (plan->shape) {
        TIER(T_GP, (A_GP))
        TIER(T_REGS, (A_REGS))
        TIER(T_S4, (A_S4))
        TIER(T_S16, (A_S16))
    default:
        break;
    }
    store(plan, ret, eb);
    return 0;
}

/* ---- signature stubs ---------------------------------------------------- */

/*
 * A scalar signature (integers, pointers, f32, f64; no struct, not
 * variadic) with at most six integer-class and eight SSE arguments is
 * called with exactly that many uint64_t and double arguments: the
 * compiler loads exactly the registers the callee reads, straight from the
 * caller's capffi_value array, with no plan to interpret and no slots to
 * clear. The pointer's prototype names the first of them and leaves the
 * rest variadic: uint64_t and double take the same registers either way,
 * and a variadic call also sets %al to the number of SSE registers used,
 * which a variadic C function bound with a fixed signature needs (as the
 * planned call and libffi give it). The convention assigns integer
 * and SSE registers independently, in argument order, so a stub needs only
 * the two counts and, per register, which argument fills it (ix: six
 * integer registers, then eight SSE). An f32 travels as the low half of a
 * double's bits, which is where the callee reads it; small integers were
 * range-checked, so their 64 bits are already the extension gcc and clang
 * expect. The result comes back as the 8 bytes of rax or xmm0.
 */

#define GP1 G(0)
#define GP2 GP1, G(1)
#define GP3 GP2, G(2)
#define GP4 GP3, G(3)
#define GP5 GP4, G(4)
#define GP6 GP5, G(5)
#define SS1 S(0)
#define SS2 SS1, S(1)
#define SS3 SS2, S(2)
#define SS4 SS3, S(3)
#define SS5 SS4, S(4)
#define SS6 SS5, S(5)
#define SS7 SS6, S(6)
#define SS8 SS7, S(7)

/* X(integer count, SSE count, parameter types, arguments) */
#define STUB_SHAPES(X)                                                         \
    X(0, 0, (void), ())                                                        \
    X(0, 1, (double, ...), (SS1))                                              \
    X(0, 2, (double, ...), (SS2))                                              \
    X(0, 3, (double, ...), (SS3))                                              \
    X(0, 4, (double, ...), (SS4))                                              \
    X(0, 5, (double, ...), (SS5))                                              \
    X(0, 6, (double, ...), (SS6))                                              \
    X(0, 7, (double, ...), (SS7))                                              \
    X(0, 8, (double, ...), (SS8))                                              \
    X(1, 0, (uint64_t, ...), (GP1))                                            \
    X(1, 1, (uint64_t, ...), (GP1, SS1))                                       \
    X(1, 2, (uint64_t, ...), (GP1, SS2))                                       \
    X(1, 3, (uint64_t, ...), (GP1, SS3))                                       \
    X(1, 4, (uint64_t, ...), (GP1, SS4))                                       \
    X(1, 5, (uint64_t, ...), (GP1, SS5))                                       \
    X(1, 6, (uint64_t, ...), (GP1, SS6))                                       \
    X(1, 7, (uint64_t, ...), (GP1, SS7))                                       \
    X(1, 8, (uint64_t, ...), (GP1, SS8))                                       \
    X(2, 0, (uint64_t, ...), (GP2))                                            \
    X(2, 1, (uint64_t, ...), (GP2, SS1))                                       \
    X(2, 2, (uint64_t, ...), (GP2, SS2))                                       \
    X(2, 3, (uint64_t, ...), (GP2, SS3))                                       \
    X(2, 4, (uint64_t, ...), (GP2, SS4))                                       \
    X(2, 5, (uint64_t, ...), (GP2, SS5))                                       \
    X(2, 6, (uint64_t, ...), (GP2, SS6))                                       \
    X(2, 7, (uint64_t, ...), (GP2, SS7))                                       \
    X(2, 8, (uint64_t, ...), (GP2, SS8))                                       \
    X(3, 0, (uint64_t, ...), (GP3))                                            \
    X(3, 1, (uint64_t, ...), (GP3, SS1))                                       \
    X(3, 2, (uint64_t, ...), (GP3, SS2))                                       \
    X(3, 3, (uint64_t, ...), (GP3, SS3))                                       \
    X(3, 4, (uint64_t, ...), (GP3, SS4))                                       \
    X(3, 5, (uint64_t, ...), (GP3, SS5))                                       \
    X(3, 6, (uint64_t, ...), (GP3, SS6))                                       \
    X(3, 7, (uint64_t, ...), (GP3, SS7))                                       \
    X(3, 8, (uint64_t, ...), (GP3, SS8))                                       \
    X(4, 0, (uint64_t, ...), (GP4))                                            \
    X(4, 1, (uint64_t, ...), (GP4, SS1))                                       \
    X(4, 2, (uint64_t, ...), (GP4, SS2))                                       \
    X(4, 3, (uint64_t, ...), (GP4, SS3))                                       \
    X(4, 4, (uint64_t, ...), (GP4, SS4))                                       \
    X(4, 5, (uint64_t, ...), (GP4, SS5))                                       \
    X(4, 6, (uint64_t, ...), (GP4, SS6))                                       \
    X(4, 7, (uint64_t, ...), (GP4, SS7))                                       \
    X(4, 8, (uint64_t, ...), (GP4, SS8))                                       \
    X(5, 0, (uint64_t, ...), (GP5))                                            \
    X(5, 1, (uint64_t, ...), (GP5, SS1))                                       \
    X(5, 2, (uint64_t, ...), (GP5, SS2))                                       \
    X(5, 3, (uint64_t, ...), (GP5, SS3))                                       \
    X(5, 4, (uint64_t, ...), (GP5, SS4))                                       \
    X(5, 5, (uint64_t, ...), (GP5, SS5))                                       \
    X(5, 6, (uint64_t, ...), (GP5, SS6))                                       \
    X(5, 7, (uint64_t, ...), (GP5, SS7))                                       \
    X(5, 8, (uint64_t, ...), (GP5, SS8))                                       \
    X(6, 0, (uint64_t, ...), (GP6))                                            \
    X(6, 1, (uint64_t, ...), (GP6, SS1))                                       \
    X(6, 2, (uint64_t, ...), (GP6, SS2))                                       \
    X(6, 3, (uint64_t, ...), (GP6, SS3))                                       \
    X(6, 4, (uint64_t, ...), (GP6, SS4))                                       \
    X(6, 5, (uint64_t, ...), (GP6, SS5))                                       \
    X(6, 6, (uint64_t, ...), (GP6, SS6))                                       \
    X(6, 7, (uint64_t, ...), (GP6, SS7))                                       \
    X(6, 8, (uint64_t, ...), (GP6, SS8))

static inline double
arg_double(const capffi_value *v)
{
    double d;
    memcpy(&d, v, sizeof d);
    return d;
}

#define G(i) a[ix[i]].u64
#define S(j) arg_double(&a[ix[CAPFFI__ABI_GP + (j)]])

#if defined(__clang__)
#define STUB_ATTR __attribute__((no_sanitize("function")))
#else
#define STUB_ATTR
#endif

#define STUB_DEFINE(g, s, T, A)                                                \
    STUB_ATTR static uint64_t stub_i_##g##_##s(                                \
        void *code, const capffi_value *a, const uint8_t *ix)                  \
    {                                                                          \
        uint64_t(*f) T;                                                        \
        memcpy(&f, &code, sizeof f);                                           \
        return f A;                                                            \
    }                                                                          \
    STUB_ATTR static uint64_t stub_f_##g##_##s(                                \
        void *code, const capffi_value *a, const uint8_t *ix)                  \
    {                                                                          \
        double(*f) T;                                                          \
        memcpy(&f, &code, sizeof f);                                           \
        double r = f A;                                                        \
        uint64_t u;                                                            \
        memcpy(&u, &r, sizeof u);                                              \
        return u;                                                              \
    }
STUB_SHAPES(STUB_DEFINE)

#define STUB_ENTRY(g, s, T, A)                                                 \
    [0][g][s] = stub_i_##g##_##s, [1][g][s] = stub_f_##g##_##s,
static const capffi__abi_stub stubs[2][CAPFFI__ABI_GP + 1]
                                   [CAPFFI__ABI_SSE + 1] = { STUB_SHAPES(
                                       STUB_ENTRY) };

bool
capffi__abi_scalar_regs(const struct capffi__sig *s,
                        uint8_t reg[CAPFFI__ABI_GP + CAPFFI__ABI_SSE],
                        unsigned *gp, unsigned *sse)
{
    if (s->variadic || s->ret->kind == CAPFFI__STRUCT ||
        s->nargs > CAPFFI__ABI_GP + CAPFFI__ABI_SSE)
        return false;
    unsigned g = 0, x = 0;
    for (size_t i = 0; i < s->nargs; i++) {
        enum capffi__kind k = s->args[i]->kind;
        if (k == CAPFFI__STRUCT)
            return false;
        if (is_float(k)) {
            if (x == CAPFFI__ABI_SSE)
                return false;
            reg[i] = (uint8_t)(CAPFFI__ABI_GP + x++);
        } else {
            if (g == CAPFFI__ABI_GP)
                return false;
            reg[i] = (uint8_t)g++;
        }
    }
    *gp = g;
    *sse = x;
    return true;
}

bool
capffi__abi_plan_stub(struct capffi__abi_stub_plan *p,
                      const struct capffi__sig *s)
{
    uint8_t reg[CAPFFI__ABI_GP + CAPFFI__ABI_SSE];
    unsigned g, x;
    memset(p, 0, sizeof *p);
    if (!capffi__abi_scalar_regs(s, reg, &g, &x))
        return false;
    for (size_t i = 0; i < s->nargs; i++) {
        p->ix[reg[i]] = (uint8_t)i;
        p->vop[i] = capffi__vop(s->args[i]->kind);
    }
    p->call = stubs[is_float(s->ret->kind)][g][x];
    return true;
}

#endif /* CAPFFI__ABI_SYSV64 */
