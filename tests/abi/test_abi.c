/*
 * test_abi.c - the differential ABI test (suites: unit, call).
 *
 * gen.py writes a few hundred random signatures as C functions
 * (libcapffi_abicases.so) and, for each, a function that draws arguments
 * and calls it directly, as the C compiler passes them. Every case is bound
 * through capffi twice, with the default flags (the direct call of
 * src/call/abi.c wherever it applies) and with CAPFFI_FN_LIBFFI, and called
 * through capffi_fn_call and capffi_fn_call_raw with several argument sets;
 * each of the four must receive every argument and return the result
 * exactly as the direct C call did. The callee records each scalar it
 * received (abi_seen), so a mismatch names the argument or the result
 * member that differed.
 *
 * libffi before 3.4.7 mis-passes one struct shape on x86-64
 * (docs/limits.md). Built against such a libffi (ABI_LIBFFI_DEFECT, from
 * meson), capffi refuses to bind a signature of that shape whenever the
 * call would go through libffi: with CAPFFI_FN_LIBFFI, and without flags
 * for a signature over the direct call's 16 stack words. gen.py models
 * the shape independently; each case it flags must be refused with
 * CAPFFI_ESIG, naming the argument, and no other case may be. Everything
 * that binds must match C.
 */
#include "helpers.h"

#include "abi_cases.h"
#include "abi_table.h"
#include "call/fn.h"
#include "callback/invoke.h"

#ifndef ABI_LIBFFI_DEFECT
#define ABI_LIBFFI_DEFECT 0
#endif

#define SETS 8         /* argument sets per case */
#define MAX_REPORTS 40 /* mismatches printed before the rest are counted */
#define GUARD 0xa5

/* Mismatches reported so far in this test case. */
static unsigned reports;

static int
setup(void **state)
{
    struct lib_fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    lib_fx_open(f, 0, "CAPFFI_ABICASES_DIR", "CAPFFI_ABICASES", "abi");
    reports = 0;
    *state = f;
    return 0;
}

/* Whether binding case k with flags must be refused: the call would go
 * through a libffi with the defect, and the case has its shape. */
static bool
refused(const struct abi_case *k, uint32_t flags)
{
    return ABI_LIBFFI_DEFECT && k->libffi_defect &&
           ((flags & CAPFFI_FN_LIBFFI) || k->libffi_only);
}

/* Bind case k; NULL when it is refused, as it must be. */
static capffi_fn *
bind_case(struct lib_fx *f, const struct abi_case *k, uint32_t flags)
{
    capffi_fn *fn = NULL;
    int rc = capffi_lib_bind(&fn, f->lib, k->symbol, k->signature, flags);
    if (refused(k, flags)) {
        if (rc != CAPFFI_ESIG ||
            !strstr(capffi_ctx_errmsg(f->ctx), "this libffi"))
            fail_msg("case %u \"%s\" (libffi defect shape, through libffi): "
                     "bind gave %s (%s), expected CAPFFI_ESIG",
                     k->id, k->signature, capffi_err_name(rc),
                     rc ? capffi_ctx_errmsg(f->ctx) : "bound");
        return NULL;
    }
    if (rc)
        fail_msg("case %u: bind %s \"%s\": %s: %s", k->id, k->symbol,
                 k->signature, capffi_err_name(rc), capffi_ctx_errmsg(f->ctx));
    return fn;
}

/* The arguments of set `set` of case k, and the direct call's result. */
static void
draw(const struct abi_case *k, unsigned set, struct abi_call *c, void **raw)
{
    memset(c, 0, sizeof *c);
    k->run(c, abi_seed ^ ((uint64_t)k->id << 32) ^ set);
    for (unsigned i = 0; i < ABI_MAX_ARGS; i++)
        raw[i] = c->arg[i];
}

static void
hex(char *out, size_t cap, const void *p, size_t n)
{
    uint64_t v = 0;
    memcpy(&v, p, n < sizeof v ? n : sizeof v);
    snprintf(out, cap, "0x%0*llx", (int)(2 * n), (unsigned long long)v);
}

/* What the psABI says of a case, for failure messages. */
static const char *
tags(const struct abi_case *k)
{
    if (k->libffi_only)
        return k->libffi_defect ? " [over 16 stack words: libffi even "
                                  "without flags; libffi defect shape]"
                                : " [over 16 stack words: libffi even "
                                  "without flags]";
    return k->libffi_defect ? " [libffi defect shape]" : "";
}

/* The result as capffi_fn_call_raw writes it: integers widened to 8 bytes
 * (as libffi's ffi_arg), an f32 in 4, the rest in their size. */
static uint64_t
widened(enum abi_ret r, const unsigned char *want)
{
    int8_t i8;
    int16_t i16;
    int32_t i32;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64 = 0;
    switch (r) {
    case ABI_R_BOOL:
    case ABI_R_U8:
        return want[0];
    case ABI_R_I8:
        memcpy(&i8, want, 1);
        return (uint64_t)(int64_t)i8;
    case ABI_R_I16:
        memcpy(&i16, want, 2);
        return (uint64_t)(int64_t)i16;
    case ABI_R_U16:
        memcpy(&u16, want, 2);
        return u16;
    case ABI_R_I32:
        memcpy(&i32, want, 4);
        return (uint64_t)(int64_t)i32;
    case ABI_R_U32:
    case ABI_R_F32:
        memcpy(&u32, want, 4);
        return u32;
    default:
        memcpy(&u64, want, 8);
        return u64;
    }
}

/* The result capffi_fn_call gave, in the same form. */
static uint64_t
from_value(enum abi_ret r, const capffi_value *v)
{
    uint32_t u32;
    switch (r) {
    case ABI_R_BOOL:
        return v->b;
    case ABI_R_F32:
        memcpy(&u32, &v->f32, 4);
        return u32;
    case ABI_R_F64:
    case ABI_R_PTR:
    default:
        return v->u64; /* integers widened, by capffi_value's contract */
    }
}

/* One call of case k through fn, compared with the direct call. Prints
 * what differed (the first MAX_REPORTS times) and returns how many things
 * did: arguments as received, the result or its members, bytes written
 * past a struct result. */
static unsigned
check_call(struct lib_fx *f, const struct abi_case *k, capffi_fn *fn, bool raw,
           const char *how, unsigned set, const struct abi_call *c,
           void **rawargs)
{
    _Alignas(16) unsigned char rbuf[ABI_ARG_BYTES];
    capffi_value ret;
    char want[40], got[40], what[200];
    unsigned bad = 0;
    int rc;

    memset(rbuf, GUARD, sizeof rbuf);
    memset(&ret, GUARD, sizeof ret);
    memset(abi_seen, GUARD, k->nseen * sizeof abi_seen[0]);
    abi_last_hash = ~c->want_hash;
    if (raw) {
        rc = capffi_fn_call_raw(fn, rawargs, rbuf);
    } else {
        ret.agg.ptr = rbuf;
        ret.agg.len = k->ret_size;
        rc = capffi_fn_call(fn, c->val, &ret);
    }

#define REPORT(...)                                                            \
    do {                                                                       \
        if (reports++ < MAX_REPORTS) {                                         \
            snprintf(what, sizeof what, __VA_ARGS__);                          \
            print_error("case %u \"%s\"%s %s set %u: %s\n", k->id,             \
                        k->signature, tags(k), how, set, what);                \
        }                                                                      \
        bad++;                                                                 \
    } while (0)

    if (rc) {
        REPORT("%s: %s", capffi_err_name(rc), capffi_ctx_errmsg(f->ctx));
        return bad;
    }
    for (unsigned i = 0; i < k->nseen; i++) {
        if (abi_seen[i] == c->want_seen[i])
            continue;
        hex(want, sizeof want, &c->want_seen[i], 8);
        hex(got, sizeof got, &abi_seen[i], 8);
        REPORT("%s: want %s, got %s", k->seen_names[i], want, got);
    }
    switch (k->ret) {
    case ABI_R_VOID:
        if (abi_last_hash != c->want_hash) {
            hex(want, sizeof want, &c->want_hash, 8);
            hex(got, sizeof got, &abi_last_hash, 8);
            REPORT("result (void, its hash): want %s, got %s", want, got);
        }
        break;
    case ABI_R_STRUCT:
        for (unsigned m = 0; m < k->nmembers; m++) {
            const struct abi_member *mb = &k->members[m];
            if (!memcmp(c->want + mb->offset, rbuf + mb->offset, mb->size))
                continue;
            hex(want, sizeof want, c->want + mb->offset, mb->size);
            hex(got, sizeof got, rbuf + mb->offset, mb->size);
            REPORT("%s: want %s, got %s", mb->name, want, got);
        }
        for (size_t i = k->ret_size; i < sizeof rbuf; i++) {
            if (rbuf[i] != GUARD) {
                REPORT("result: byte %zu written past its %zu bytes", i,
                       k->ret_size);
                break;
            }
        }
        break;
    default: {
        uint64_t w = widened(k->ret, c->want), g;
        size_t n = raw && k->ret == ABI_R_F32 ? 4 : 8;
        if (raw) {
            g = 0;
            memcpy(&g, rbuf, n);
        } else {
            g = from_value(k->ret, &ret);
        }
        if (g != w) {
            hex(want, sizeof want, &w, n);
            hex(got, sizeof got, &g, n);
            REPORT("result: want %s, got %s", want, got);
        }
        break;
    }
    }
#undef REPORT
    return bad;
}

/* What run_all found. */
struct tally {
    unsigned failed;  /* cases that differed at least once */
    unsigned refused; /* cases refused at bind, as they must be */
};

/* Every case, every argument set, through both calls of one binding. */
static struct tally
run_all(struct lib_fx *f, uint32_t flags, const char *path)
{
    struct abi_call *c = malloc(sizeof *c);
    void *rawargs[ABI_MAX_ARGS];
    struct tally t = { 0, 0 };
    char how[32];
    assert_non_null(c);
    for (unsigned i = 0; i < abi_ncases; i++) {
        const struct abi_case *k = &abi_cases[i];
        capffi_fn *fn = bind_case(f, k, flags);
        unsigned bad = 0;
        if (!fn) {
            t.refused++;
            continue;
        }
        for (unsigned set = 0; set < SETS; set++) {
            draw(k, set, c, rawargs);
            snprintf(how, sizeof how, "call/%s", path);
            bad += check_call(f, k, fn, false, how, set, c, rawargs);
            snprintf(how, sizeof how, "raw/%s", path);
            bad += check_call(f, k, fn, true, how, set, c, rawargs);
        }
        t.failed += bad != 0;
        capffi_fn_free(fn);
    }
    free(c);
    return t;
}

/* Without flags, every case must match: the direct call's, and libffi's
 * for the cases over 16 stack words. */
static void
abi_direct_matches_c(void **state)
{
    struct lib_fx *f = *state;
    struct tally t = run_all(f, 0, "direct");
    print_message("# %u cases, %d argument sets each, seed %#llx; %u "
                  "refused at bind (libffi defect shape over 16 stack "
                  "words)\n",
                  abi_ncases, SETS, (unsigned long long)abi_seed, t.refused);
    if (t.failed)
        fail_msg("%u of %u cases differ from C on the default path", t.failed,
                 abi_ncases);
}

static void
abi_libffi_matches_c(void **state)
{
    struct lib_fx *f = *state;
    struct tally t = run_all(f, CAPFFI_FN_LIBFFI, "libffi");
    print_message("# %u cases of libffi's defect shape refused at bind\n",
                  t.refused);
    if (t.failed)
        fail_msg("%u of %u cases differ from C on the libffi path", t.failed,
                 abi_ncases);
}

static const char *
where(bool memory)
{
    return memory ? "memory" : "registers";
}

/* The cases within 16 stack words take the direct call; the others, and
 * every case bound with CAPFFI_FN_LIBFFI, take libffi. */
static void
abi_plan_chooses_direct(void **state)
{
    struct lib_fx *f = *state;
    unsigned direct = 0;
    for (unsigned i = 0; i < abi_ncases; i++) {
        const struct abi_case *k = &abi_cases[i];
        capffi_fn *fn = bind_case(f, k, 0);
        if (!fn)
            continue; /* refused: a libffi defect shape */
        if (k->libffi_only && fn->abi.shape != 0)
            fail_msg("case %u \"%s\" (%u stack words): planned direct (shape "
                     "%u), expected libffi",
                     k->id, k->signature, k->stack_words, fn->abi.shape);
        if (!k->libffi_only && fn->abi.shape == 0)
            fail_msg("case %u \"%s\" (%u stack words): not planned direct",
                     k->id, k->signature, k->stack_words);
        bool memory = k->ret == ABI_R_STRUCT && k->ret_size > 16;
        if (fn->abi.shape && fn->abi.ret_memory != memory)
            fail_msg("case %u \"%s\": result planned in %s, expected in %s",
                     k->id, k->signature, where(fn->abi.ret_memory),
                     where(memory));
        direct += fn->abi.shape != 0;
        capffi_fn_free(fn);
        fn = bind_case(f, k, CAPFFI_FN_LIBFFI);
        if (fn && fn->abi.shape != 0)
            fail_msg("case %u: bound with CAPFFI_FN_LIBFFI, planned direct",
                     k->id);
        capffi_fn_free(fn);
    }
    print_message("# %u of %u cases call directly\n", direct, abi_ncases);
}

/* A callback's handler that calls the case it stands for with the values
 * it received, and returns what the case returned. */
static void
forward(void *payload, const capffi_value *args, capffi_value *ret)
{
    capffi_fn *fn = payload;
    if (capffi_fn_call(fn, args, ret) != CAPFFI_OK)
        capffi_cb_fail(capffi_ctx_errmsg(NULL));
}

/*
 * Every case (but the variadic ones, which a callback cannot be, and the
 * libffi defect shapes) as a callback: native code calls the callback
 * (through capffi_fn_from_ptr, whose calls the tests above check against
 * C), its handler calls the case through capffi_fn_call, and the case must
 * receive every argument and the caller every result as in the direct C
 * call. Without flags the scalar signatures enter through capffi's thunks
 * (callback/thunk.c), the others through libffi closures; with
 * CAPFFI_CB_LIBFFI all of them through closures. The thunks are the
 * process's and stay with their callbacks until the context is freed, so
 * the cases run in batches, a context each.
 */
static unsigned
run_callbacks(uint32_t cb_flags, const char *path, unsigned *thunked)
{
    struct abi_call *c = malloc(sizeof *c);
    void *rawargs[ABI_MAX_ARGS];
    unsigned failed = 0;
    char how[32];
    assert_non_null(c);
    *thunked = 0;
    for (unsigned i0 = 0; i0 < abi_ncases; i0 += 200) {
        struct lib_fx f;
        lib_fx_open(&f, 0, "CAPFFI_ABICASES_DIR", "CAPFFI_ABICASES", "abi");
        for (unsigned i = i0; i < abi_ncases && i < i0 + 200; i++) {
            const struct abi_case *k = &abi_cases[i];
            if (strstr(k->signature, "...") || k->libffi_defect)
                continue;
            capffi_fn *fn = bind_case(&f, k, 0), *via = NULL;
            capffi_cb *cb = NULL;
            int rc = capffi_cb_new(&cb, f.ctx, &f.tok, k->signature, forward,
                                   fn, cb_flags);
            if (!rc)
                rc = capffi_fn_from_ptr(&via, f.ctx, &f.tok, capffi_cb_code(cb),
                                        k->signature, 0);
            if (rc)
                fail_msg("case %u \"%s\": callback: %s: %s", k->id,
                         k->signature, capffi_err_name(rc),
                         capffi_ctx_errmsg(f.ctx));
            *thunked += cb->thunk >= 0;
            unsigned bad = 0;
            for (unsigned set = 0; set < SETS; set++) {
                draw(k, set, c, rawargs);
                snprintf(how, sizeof how, "callback/%s", path);
                bad += check_call(&f, k, via, false, how, set, c, rawargs);
            }
            failed += bad != 0;
            capffi_fn_free(via);
            capffi_cb_close(cb);
            capffi_fn_free(fn);
        }
        capffi_ctx_free(f.ctx);
    }
    free(c);
    return failed;
}

static void
abi_callbacks_match_c(void **state)
{
    (void)state;
    unsigned thunked, closures;
    unsigned failed = run_callbacks(0, "thunk", &thunked);
    print_message("# %u cases entered through thunks\n", thunked);
    if (failed)
        fail_msg("%u cases differ from C as callbacks", failed);
    failed = run_callbacks(CAPFFI_CB_LIBFFI, "closure", &closures);
    if (failed)
        fail_msg("%u cases differ from C as callbacks through libffi "
                 "closures",
                 failed);
    if (closures != 0)
        fail_msg("%u callbacks made with CAPFFI_CB_LIBFFI took a thunk",
                 closures);
    if (thunked == 0)
        fail_msg("no case entered through a thunk");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(abi_plan_chooses_direct, setup,
                                        lib_fx_teardown),
        cmocka_unit_test_setup_teardown(abi_direct_matches_c, setup,
                                        lib_fx_teardown),
        cmocka_unit_test_setup_teardown(abi_libffi_matches_c, setup,
                                        lib_fx_teardown),
        cmocka_unit_test(abi_callbacks_match_c),
    };
    return RUN_TESTS("abi", tests);
}
