/*
 * bench_audit.c - what call and invocation auditing (capffi_audit_calls,
 * capffi_fn_audit, capffi_cb_audit) costs per call, off and on.
 *
 * Three cases:
 *
 *   fx_nop () -> void through capffi_fn_call       (the fixture library,
 *   fx_nop () -> void through capffi_fn_call_raw    tests/fixtures)
 *   a callback (i32, i32) -> i32 called from a C loop through its code
 *   pointer, as native code calls it
 *
 * and for each, per call, in nanoseconds, these states:
 *
 *   base      ffi_call with a cif prepared here (the calls), or a raw
 *             libffi closure (the callback): what the ratios are taken
 *             against;
 *   off       a context in which auditing of calls was never switched on:
 *             the normal path, and the reference of the "x off" column;
 *   off+sink  a second context with a sink set (as a host that audits
 *             its permission decisions has) but calls not audited: the
 *             sink must see no event;
 *   ctx drop  capffi_audit_calls on, no sink and no recorder: each event
 *             is dropped before it is built or numbered (the context's
 *             mark must not move);
 *   ctx rec   capffi_audit_calls on and a recorder of RECORDER events, so
 *             that it fills, then evicts its oldest event for every call
 *             (it must hold RECORDER events and count the rest dropped);
 *   ctx sink  capffi_audit_calls on and a sink that counts events and
 *             does nothing else (it must see one event per call);
 *   one sink  the context's switch off, this function's or callback's
 *             own switch on (capffi_fn_audit, capffi_cb_audit), the same
 *             sink;
 *   again     the second context with every switch off again, the sink
 *             and the recorder removed: its ratio to "off" shows whether
 *             switching auditing on and off left anything on the path.
 *
 * "off" and "base" are measured on objects auditing never touched; every
 * other state is the second context, set up for that state just before
 * its loop (outside the timing).
 *
 * A sample times a loop of `iters` calls with CLOCK_MONOTONIC and divides
 * by `iters`. The states of a case are interleaved: each round runs all of
 * them back to back, starting with a different one each round, so that
 * slow drifts of the machine hit every state alike. One warm-up round is
 * run and discarded, then SAMPLES rounds. The table shows the median and
 * minimum per-call time of each state, the ratio of its median to the
 * base median and to the "off" median, and the "paired" forms: the median
 * over rounds of the ratio to the base (or "off") sample of the same
 * round, which is less sensitive to noise lasting longer than one round.
 * Every call's return code is tested inside the timed loop; every result
 * is checked once before timing, and after every audited loop the events
 * it wrote are checked as said above.
 *
 * Usage: bench_audit [--quick] [FIXTURE]
 *   FIXTURE  path of libcapffi_fixture.so; default: $CAPFFI_FIXTURE.
 *   --quick  fewer samples and calls, for a smoke test in CI. Its numbers
 *            are rough.
 *
 * Exits 0 on success; on any failure, prints why to stderr and exits 1
 * (2 for a usage error). A benchmark never fails on time.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ffi.h>

#include <capffi.h>

#include "bench_ffi.h"
#include "bench_util.h"

#include "fixture.h"

/* Events the recorder keeps: far fewer than the calls of a sample. */
#define RECORDER 4096
#define STR_(x) #x
#define STR(x) STR_(x)

enum state {
    S_BASE,
    S_OFF,
    S_OFF_SINK,
    S_CTX_DROP,
    S_CTX_REC,
    S_CTX_SINK,
    S_ONE_SINK,
    S_AGAIN,
    N_STATES
};

static const char *const state_names[N_STATES] = {
    NULL, /* the case's own baseline name */
    "off (never audited)",
    "off, sink set, calls not audited",
    "ctx audit, no sink, no recorder",
    "ctx audit, recorder of " STR(RECORDER),
    "ctx audit, sink (counts)",
    NULL, /* "fn audit, ..." or "cb audit, ..." */
    "off again (switched off)",
};

enum kind { K_CALL, K_RAW, K_CB, N_KINDS };

/* One case: a way of calling and its samples in every state. */
struct bcase {
    enum kind kind;
    const char *title;
    const char *base_name;
    const char *one_name;
    capffi_op op; /* the op of its events */
    double s[N_STATES][SAMPLES_MAX];
};

/* What the sink saw since it was last zeroed. */
struct seen {
    capffi_op op;    /* the op expected */
    uint64_t hits;   /* events of that op */
    uint64_t others; /* events of any other op */
};

/*
 * Everything the loops need. Context a is never audited; context b goes
 * through the audited states.
 */
struct env {
    capffi_ctx *a, *b;
    capffi_fn *fn_a, *fn_b;
    capffi_cb *cb_a, *cb_b;
    struct bench_call nop;        /* fx_nop, for ffi_call and capffi */
    struct bench_closure closure; /* the raw libffi closure */
    struct seen seen;
};

/* ---- the sink ---------------------------------------------------------- */

/* The sink of the sink states: counts, nothing more. */
static void
count_sink(void *payload, const capffi_event *ev)
{
    struct seen *s = payload;
    if (ev->op == s->op)
        s->hits++;
    else
        s->others++;
}

/* ---- the timed loops (bench_ffi.c, bench_util.c) ----------------------- */

typedef int32_t (*add_fn)(int32_t, int32_t);

static double
run_state(struct env *e, const struct bcase *c, enum state s, size_t iters)
{
    bool on_a = s == S_OFF;
    capffi_ctx *ctx = on_a ? e->a : e->b;
    capffi_fn *fn = on_a ? e->fn_a : e->fn_b;
    if (c->kind != K_CB && s == S_BASE)
        return bench_loop_ffi(&e->nop, iters);
    switch (c->kind) {
    case K_CALL:
        return bench_loop_value(&e->nop, ctx, fn, iters);
    case K_RAW:
        return bench_loop_raw(&e->nop, ctx, fn, iters);
    default:
        return bench_loop_add(s == S_BASE ? e->closure.code
                              : on_a      ? capffi_cb_code(e->cb_a)
                                          : capffi_cb_code(e->cb_b),
                              iters);
    }
}

/* ---- the states of context b -------------------------------------------- */

static void
check(capffi_ctx *ctx, const char *what, int rc)
{
    if (rc != CAPFFI_OK)
        bench_die_capffi(ctx, what, rc);
}

/* Set context b up for state s (the base and off states leave b off). */
static void
apply(struct env *e, const struct bcase *c, enum state s)
{
    bool ctx_on = s == S_CTX_DROP || s == S_CTX_REC || s == S_CTX_SINK;
    bool one_on = s == S_ONE_SINK;
    bool sink = s == S_OFF_SINK || s == S_CTX_SINK || s == S_ONE_SINK;
    capffi_ctx *b = e->b;
    check(b, "capffi_audit_calls",
          capffi_audit_calls(
              b, ctx_on ? CAPFFI_AUDIT_FN_CALLS | CAPFFI_AUDIT_CB_INVOKES : 0));
    check(b, "capffi_fn_audit", capffi_fn_audit(e->fn_b, one_on));
    check(b, "capffi_cb_audit", capffi_cb_audit(e->cb_b, one_on));
    check(b, "capffi_audit_set_sink",
          capffi_audit_set_sink(b, sink ? count_sink : NULL, &e->seen));
    check(b, "capffi_audit_record",
          capffi_audit_record(b, s == S_CTX_REC ? RECORDER : 0));
    e->seen.op = c->op;
    e->seen.hits = e->seen.others = 0;
}

/*
 * After a loop of `iters` calls in state s: did it write the events that
 * state promises? `mark` is context b's mark taken before the loop.
 */
static void
verify(struct env *e, const struct bcase *c, enum state s, size_t iters,
       uint64_t mark)
{
    char what[160];
    const char *name = s == S_ONE_SINK ? c->one_name : state_names[s];
    uint64_t want = 0;
    switch (s) {
    case S_CTX_SINK:
    case S_ONE_SINK:
        want = iters;
        /* fall through */
    case S_OFF_SINK:
        if (e->seen.hits != want || e->seen.others != 0) {
            snprintf(what, sizeof what,
                     "%s, %s: the sink saw %llu %s events and %llu others "
                     "in %zu calls, expected %llu",
                     c->title, name, (unsigned long long)e->seen.hits,
                     capffi_op_name(c->op), (unsigned long long)e->seen.others,
                     iters, (unsigned long long)want);
            bench_die(what);
        }
        break;
    case S_CTX_DROP:
    case S_AGAIN:
        if (capffi_audit_mark(e->b) != mark) {
            snprintf(what, sizeof what,
                     "%s, %s: events were numbered, none should reach the "
                     "trail",
                     c->title, name);
            bench_die(what);
        }
        break;
    case S_CTX_REC: {
        size_t kept = capffi_audit_count(e->b, c->op, CAPFFI_OK, NULL);
        uint64_t dropped = capffi_audit_dropped_op(e->b, c->op);
        size_t keep = iters < RECORDER ? iters : (size_t)RECORDER;
        if (kept != keep || dropped != iters - keep ||
            capffi_audit_dropped(e->b) != dropped) {
            snprintf(what, sizeof what,
                     "%s, %s: the recorder kept %zu and dropped %llu of %zu "
                     "events, expected %zu and %zu",
                     c->title, name, kept, (unsigned long long)dropped, iters,
                     keep, iters - keep);
            bench_die(what);
        }
        break;
    }
    default:
        break;
    }
}

/* ---- setting up --------------------------------------------------------- */

/* Bind fx_nop and make the callback in ctx; lib receives the library. */
static void
populate(capffi_ctx *ctx, const capffi_token *tok, const char *path,
         capffi_lib **lib, capffi_fn **fn, capffi_cb **cb)
{
    *lib = bench_lib_open(ctx, tok, path);
    *fn = bench_lib_bind(ctx, *lib, "fx_nop", "() -> void", 0);
    check(ctx, "capffi_cb_new",
          capffi_cb_new(cb, ctx, tok, "(i32, i32) -> i32", bench_cb_add, NULL,
                        0));
}

static void
check_results(struct env *e)
{
    add_fn f;
    void *codes[3] = { e->closure.code, capffi_cb_code(e->cb_a),
                       capffi_cb_code(e->cb_b) };
    for (size_t i = 0; i < 3; i++) {
        memcpy(&f, &codes[i], sizeof f);
        if (f(40, 2) != 42 || f(INT32_MAX, 1) != INT32_MIN)
            bench_die("a callback returned a wrong result");
    }
    /* fx_nop returns nothing: its calls are checked by their status. */
    struct bcase call = { .kind = K_CALL }, raw = { .kind = K_RAW };
    enum state states[3] = { S_BASE, S_OFF, S_AGAIN };
    for (size_t i = 0; i < 3; i++) {
        run_state(e, &call, states[i], 1);
        run_state(e, &raw, states[i], 1);
    }
}

/* ---- statistics and output ---------------------------------------------- */

static void
print_case(const struct bcase *c, size_t samples)
{
    double base = bench_median(c->s[S_BASE], samples, NULL);
    double off = bench_median(c->s[S_OFF], samples, NULL);
    printf("%s\n", c->title);
    for (int v = 0; v < N_STATES; v++) {
        double qb[SAMPLES_MAX], qo[SAMPLES_MAX], min;
        for (size_t k = 0; k < samples; k++) {
            qb[k] = c->s[v][k] / c->s[S_BASE][k];
            qo[k] = c->s[v][k] / c->s[S_OFF][k];
        }
        double med = bench_median(c->s[v], samples, &min);
        const char *name = v == S_BASE       ? c->base_name
                           : v == S_ONE_SINK ? c->one_name
                                             : state_names[v];
        printf("  %-34s %7.2f %7.2f %6.2fx %6.2fx", name, med, min, med / base,
               bench_median(qb, samples, NULL));
        if (v == S_BASE)
            printf("\n");
        else
            printf(" %6.2fx %6.2fx %+8.2f\n", med / off,
                   bench_median(qo, samples, NULL), med - off);
    }
}

static void
print_table(const struct bcase *cases, size_t n, size_t samples, size_t iters)
{
    printf("\n%zu samples per state, %zu calls per sample, states "
           "interleaved;\nper-call time = sample time / calls\n\n",
           samples, iters);
    printf("  %-34s %7s %7s %7s %7s %7s %7s %8s\n", "case / state", "med ns",
           "min ns", "x base", "paired", "x off", "paired", "ns - off");
    printf("  %-34s %7s %7s %7s %7s %7s %7s %8s\n",
           "----------------------------------", "-------", "-------",
           "-------", "-------", "-------", "-------", "--------");
    for (size_t i = 0; i < n; i++)
        print_case(&cases[i], samples);
    printf("\n\"x base\" is the median over the base median (ffi_call, or "
           "the libffi closure);\n\"x off\" the median over the \"off\" "
           "median; \"paired\" the median of the\nper-round ratios to the "
           "same. \"ns - off\" is what the state adds per call.\n");
}

/* ---- main --------------------------------------------------------------- */

int
main(int argc, char **argv)
{
    bench_name = "bench_audit";
    bool quick;
    const char *path = bench_args_fixture(argc, argv, &quick, NULL);
    size_t samples = quick ? SAMPLES_QUICK : SAMPLES_FULL;
    size_t iters = quick ? ITERS_QUICK : ITERS_FULL;

    printf("capffi %s audit benchmark, libffi %s%s\nfixture: %s\n",
           capffi_version(), BENCH_LIBFFI_VERSION,
           quick ? " (--quick: rough numbers)" : "", path);
    fflush(stdout);

    static struct env e;
    capffi_token tok_a, tok_b;
    capffi_lib *lib_a = NULL, *lib_b = NULL;
    e.a = bench_ctx_new(&tok_a, NULL);
    e.b = bench_ctx_new(&tok_b, NULL);
    populate(e.a, &tok_a, path, &lib_a, &e.fn_a, &e.cb_a);
    populate(e.b, &tok_b, path, &lib_b, &e.fn_b, &e.cb_b);

    e.nop.code = FFI_FN(fx_nop);
    bench_call_prep(&e.nop, &ffi_type_void);
    bench_closure_new(&e.closure, 2, &ffi_type_sint32, bench_add_types,
                      bench_raw_add);
    check_results(&e);

    static struct bcase cases[N_KINDS] = {
        { K_CALL,
          "fx_nop () -> void, capffi_fn_call",
          "ffi_call (prepared cif)",
          "fn audit, sink (counts)",
          CAPFFI_OP_FN_CALL,
          { { 0 } } },
        { K_RAW,
          "fx_nop () -> void, capffi_fn_call_raw",
          "ffi_call (prepared cif)",
          "fn audit, sink (counts)",
          CAPFFI_OP_FN_CALL,
          { { 0 } } },
        { K_CB,
          "callback (i32, i32) -> i32, called from C",
          "libffi closure (raw handler)",
          "cb audit, sink (counts)",
          CAPFFI_OP_CB_INVOKE,
          { { 0 } } },
    };

    /* Round -1 is the warm-up: caches, branch predictors, clocks, and
     * every state of context b switched on and off once. */
    for (int k = -1; k < (int)samples; k++) {
        for (size_t i = 0; i < N_KINDS; i++) {
            struct bcase *c = &cases[i];
            for (int j = 0; j < N_STATES; j++) {
                enum state s = (enum state)((unsigned)(j + k + 1) % N_STATES);
                apply(&e, c, s);
                uint64_t mark = capffi_audit_mark(e.b);
                double t = run_state(&e, c, s, iters);
                if (s != S_BASE && s != S_OFF)
                    verify(&e, c, s, iters, mark);
                if (k >= 0)
                    c->s[s][k] = t;
            }
        }
    }
    apply(&e, &cases[0], S_AGAIN);

    print_table(cases, N_KINDS, samples, iters);

    capffi_fn_free(e.fn_a);
    capffi_fn_free(e.fn_b);
    capffi_lib_close(lib_a);
    capffi_lib_close(lib_b);
    capffi_ctx_free(e.a);
    capffi_ctx_free(e.b);
    bench_closure_free(&e.closure);

    if (fflush(stdout) != 0 || ferror(stdout))
        bench_die("writing to stdout failed");
    return EXIT_SUCCESS;
}
