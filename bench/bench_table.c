/*
 * bench_table.c - the overview table: one operation, every way of making
 * it, per call, each next to a direct C call measured in the same run.
 *
 * Rows (the fixture library, tests/fixtures/fixture.h, and libc):
 *
 *   nop()          fx_nop         () -> void
 *   add_i32        fx_add_i32     (i32, i32) -> i32
 *   mixed6         fx_mixed6      (i32, f64, i64, f32, u8, f64) -> f64
 *   struct24 in    fx_big_sum     ({ i64, i64, i64 }) -> i64
 *   struct24 out   fx_big_make    (i64, i64, i64) -> { i64, i64, i64 }
 *   callback       native code calling a (i32, i32) -> i32 callback
 *   callback, Lua  the same callback reached from Lua through tok:fnptr
 *   qsort          libc qsort of N i32 with a host comparator, per
 *                  comparison
 *
 * The fixture has no function that takes a 24-byte struct and returns
 * one, so that row is two: the struct in (fx_big_sum) and out
 * (fx_big_make). Nor one that calls a (i32, i32) -> i32 callback: native
 * code is this program's C loop calling the function pointer (for
 * capffi-lua, a C function of this program bound with tok:fnptr that runs
 * that loop: a capffi-lua callback runs only while its Lua state is inside
 * a native call or capffi.poll, and fails closed otherwise).
 *
 * Columns:
 *
 *   direct C   a call through a volatile function pointer (the fixture is
 *              linked into this program), so the compiler can neither
 *              inline nor hoist it; for the callback rows a plain C
 *              function called the same way, for qsort a C comparator;
 *   ffi_call   with a cif prepared once; for the callback and qsort rows a
 *              raw libffi closure (ffi_prep_closure_loc) instead;
 *   capffi_fn_call, capffi_fn_call_raw
 *              the function bound with capffi_lib_bind; for the callback
 *              and qsort rows a capffi callback (capffi_cb_new) in the
 *              capffi_fn_call column and nothing in the raw one;
 *   Lua C      a Lua loop calling a lua_CFunction this program registers,
 *              which checks its arguments, calls the fixture function
 *              directly and pushes the result: what a hand-written
 *              binding does. For the callbacks: a lua_CFunction that calls
 *              the Lua handler with lua_pcall (a C bridge from native code
 *              must not let a Lua error unwind through it). No qsort;
 *   capffi-lua the same Lua loop calling the function bound by
 *              tok:dlopen in a state opened with capffi_lua_open on a
 *              context that grants the fixture and libc. For the
 *              callback row: one call from Lua of drive_cb (a C loop
 *              like the direct column's, bound with tok:fnptr) that calls
 *              tok:callback("(i32, i32) -> i32", handler) `iters` times;
 *              for "callback from Lua": a Lua loop calling that callback
 *              through tok:fnptr(cb:pointer(), ...), one native call per
 *              invocation; for qsort: qsort bound as
 *              (*[$1]i32, usize, usize, function) -> void, called from Lua
 *              with a typed (*i32, *i32) -> i32 comparator.
 *
 * A sample times a loop of `iters` calls with clock_gettime(
 * CLOCK_MONOTONIC) and divides by `iters`; nothing is subtracted (the Lua
 * columns include the Lua loop). A qsort sample times one sort (the array
 * is refilled before, untimed) and divides by the number of comparisons
 * glibc's qsort makes on that input, counted once with a C comparator.
 * Within a round every column of a row runs back to back, starting with a
 * different column each round, so slow drifts of the machine hit all
 * alike; one warm-up round is discarded. The table shows the median and
 * minimum per call and the ratio of each column's median to the direct
 * column's median. Every variant's result is checked once before timing,
 * every sort after each sample.
 *
 * Targets, from this run's own figures: capffi_fn_call <= 1.5x direct for
 * nop, add_i32 and mixed6; capffi-lua <= 1.5x the Lua C function per call
 * and per callback. They are informational: the exit status never
 * depends on timing.
 *
 * Usage: bench_table [--quick] [FIXTURE]
 *   FIXTURE  path of libcapffi_fixture.so; default: $CAPFFI_FIXTURE.
 *   --quick  few samples and calls, a 10^4-element sort: a smoke test.
 *
 * Exits 0 on success; on any failure prints why to stderr and exits 1
 * (2 for a usage error).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ffi.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <capffi.h>
#include <capffi/lua.h>

#include "bench_ffi.h"
#include "bench_lua_util.h"
#include "bench_util.h"

#include "fixture.h"

/* The targets, as ratios. */
#define TARGET_FN 1.5
#define TARGET_LUA 1.5

/* qsort: samples and elements, full and --quick. */
#define QSORT_SAMPLES_FULL 15
#define QSORT_SAMPLES_QUICK 3
#define QSORT_N_FULL 100000
#define QSORT_N_QUICK 10000

enum col { C_DIRECT, C_FFI, C_VALUE, C_RAW, C_LUAC, C_LUA, N_COLS };

static const char *const col_names[N_COLS] = {
    "direct C",           "ffi_call",       "capffi_fn_call",
    "capffi_fn_call_raw", "Lua C function", "capffi-lua",
};

enum rowid {
    R_NOP,
    R_ADD,
    R_MIXED6,
    R_BIG_IN,
    R_BIG_OUT,
    R_CB,
    R_CB_LUA,
    R_QSORT,
    N_ROWS
};

/* The kind of a fixture function's result. */
enum rkind { K_VOID, K_I32, K_I64, K_F64, K_BIG };

struct row;

/* One timed sample of column `col` of row r: ns per call. */
typedef double (*loop_fn)(struct row *r, enum col col, size_t iters);

struct row {
    const char *op;        /* what the table calls it */
    const char *symbol;    /* fixture symbol, or NULL */
    const char *signature; /* capffi's */
    const char *lua_key;   /* the Lua variants' entry in the case table */
    loop_fn loop[N_COLS];  /* NULL: not measured ("-") */
    enum rkind rkind;
    /* For ffi_call and capffi. */
    struct bench_call call;
    capffi_fn *fn;
    /* For the callback and qsort rows: the code each column calls. */
    void *cb_code[N_COLS];
    double s[N_COLS][SAMPLES_MAX];
};

/* Everything the loops share. */
static struct {
    capffi_ctx *ctx; /* the C columns' context */
    lua_State *L;
    int cases; /* stack index of the Lua case table */
    size_t qsort_n;
    unsigned long compares;
    int32_t *input, *want, *work;
} g;

/* ---- the fixture, called directly -------------------------------------- */

static volatile int64_t sink_i64;
static volatile double sink_f64;

static void (*volatile p_nop)(void) = fx_nop;
static int32_t (*volatile p_add_i32)(int32_t, int32_t) = fx_add_i32;
static double (*volatile p_mixed6)(int32_t, double, int64_t, float, uint8_t,
                                   double) = fx_mixed6;
static int64_t (*volatile p_big_sum)(struct fx_big) = fx_big_sum;
static struct fx_big (*volatile p_big_make)(int64_t, int64_t,
                                            int64_t) = fx_big_make;

/* The arguments every variant passes. */
static struct {
    int32_t add_a, add_b;
    int32_t m_a;
    double m_b;
    int64_t m_c;
    float m_d;
    uint8_t m_e;
    double m_f;
    struct fx_big big;
    int64_t mk_a, mk_b, mk_c;
} nat = { 20, 22, 1, 2.5, 3, 4.5f, 5, 6.25, { 1000, 200, 30 }, 1000, 200, 30 };

static double
loop_direct_nop(struct row *r, enum col col, size_t iters)
{
    (void)r, (void)col;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++)
        p_nop();
    uint64_t t1 = bench_now_ns();
    return bench_per_call(t0, t1, iters);
}

static double
loop_direct_add(struct row *r, enum col col, size_t iters)
{
    (void)r, (void)col;
    int32_t a = nat.add_a, b = nat.add_b;
    uint32_t acc = 0;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++)
        acc += (uint32_t)p_add_i32(a, b);
    uint64_t t1 = bench_now_ns();
    sink_i64 = acc;
    return bench_per_call(t0, t1, iters);
}

static double
loop_direct_mixed6(struct row *r, enum col col, size_t iters)
{
    (void)r, (void)col;
    double acc = 0;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++)
        acc += p_mixed6(nat.m_a, nat.m_b, nat.m_c, nat.m_d, nat.m_e, nat.m_f);
    uint64_t t1 = bench_now_ns();
    sink_f64 = acc;
    return bench_per_call(t0, t1, iters);
}

static double
loop_direct_big_in(struct row *r, enum col col, size_t iters)
{
    (void)r, (void)col;
    struct fx_big v = nat.big;
    uint64_t acc = 0;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++)
        acc += (uint64_t)p_big_sum(v);
    uint64_t t1 = bench_now_ns();
    sink_i64 = (int64_t)acc;
    return bench_per_call(t0, t1, iters);
}

static double
loop_direct_big_out(struct row *r, enum col col, size_t iters)
{
    (void)r, (void)col;
    int64_t a = nat.mk_a, b = nat.mk_b, c = nat.mk_c;
    uint64_t acc = 0;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++)
        acc += (uint64_t)p_big_make(a, b, c).c;
    uint64_t t1 = bench_now_ns();
    sink_i64 = (int64_t)acc;
    return bench_per_call(t0, t1, iters);
}

/* ---- ffi_call and capffi ----------------------------------------------- */

/* The loops are bench_ffi.c's; these give them the table's signature. */
static double
loop_ffi(struct row *r, enum col col, size_t iters)
{
    (void)col;
    return bench_loop_ffi(&r->call, iters);
}

static double
loop_raw(struct row *r, enum col col, size_t iters)
{
    (void)col;
    return bench_loop_raw(&r->call, g.ctx, r->fn, iters);
}

static double
loop_value(struct row *r, enum col col, size_t iters)
{
    (void)col;
    return bench_loop_value(&r->call, g.ctx, r->fn, iters);
}

/* A struct result: the caller provides its memory before every call. */
static __attribute__((noinline)) double
loop_value_sret(struct row *r, enum col col, size_t iters)
{
    (void)col;
    capffi_value ret;
    struct fx_big out;
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++) {
        ret.agg.ptr = &out;
        ret.agg.len = sizeof out;
        int rc = capffi_fn_call(r->fn, r->call.vals, &ret);
        if (rc != CAPFFI_OK)
            bench_die_capffi(g.ctx, "capffi_fn_call", rc);
    }
    uint64_t t1 = bench_now_ns();
    sink_i64 = out.c;
    return bench_per_call(t0, t1, iters);
}

/* ---- callbacks called from C ------------------------------------------- */

/* The add callbacks are bench_add_i32, bench_raw_add and bench_cb_add. */
typedef int32_t (*add_fn)(int32_t, int32_t);
typedef int (*cmp_fn)(const void *, const void *);

/* Native code calling a callback: the pointer reloaded before each call
 * (bench_loop_add). */
static double
loop_cb(struct row *r, enum col col, size_t iters)
{
    return bench_loop_add(r->cb_code[col], iters);
}

/* Native code that takes a callback and calls it n times: what the
 * capffi-lua column of the callback row calls, through tok:fnptr. */
static int32_t
drive_cb(add_fn cb, int32_t n)
{
    uint32_t acc = 0;
    for (int32_t i = 0; i < n; i++)
        acc += (uint32_t)cb(i & 0xffff, 7);
    return (int32_t)acc;
}

static int
c_cmp(const void *pa, const void *pb)
{
    int32_t x = *(const int32_t *)pa, y = *(const int32_t *)pb;
    return (x > y) - (x < y);
}

static unsigned long counted;

static int
c_cmp_counting(const void *pa, const void *pb)
{
    counted++;
    return c_cmp(pa, pb);
}

static void
raw_cmp(ffi_cif *cif, void *ret, void **args, void *user)
{
    (void)cif, (void)user;
    int32_t x = **(const int32_t *const *)args[0];
    int32_t y = **(const int32_t *const *)args[1];
    *(ffi_sarg *)ret = (x > y) - (x < y);
}

static void
cb_cmp(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    int32_t x = *(const int32_t *)args[0].p, y = *(const int32_t *)args[1].p;
    ret->i64 = (x > y) - (x < y);
}

/* One sort with the column's comparator: ns per comparison. */
static __attribute__((noinline)) double
loop_qsort(struct row *r, enum col col, size_t iters)
{
    (void)iters;
    cmp_fn cmp;
    memcpy(&cmp, &r->cb_code[col], sizeof cmp);
    memcpy(g.work, g.input, g.qsort_n * sizeof *g.work);
    uint64_t t0 = bench_now_ns();
    qsort(g.work, g.qsort_n, sizeof *g.work, cmp);
    uint64_t t1 = bench_now_ns();
    if (memcmp(g.work, g.want, g.qsort_n * sizeof *g.work) != 0)
        bench_die("a qsort comparator left the array unsorted");
    return bench_per_call(t0, t1, g.compares);
}

/* ---- Lua --------------------------------------------------------------- */

static int
lc_nop(lua_State *L)
{
    (void)L;
    p_nop();
    return 0;
}

static int
lc_add(lua_State *L)
{
    lua_Integer a = luaL_checkinteger(L, 1), b = luaL_checkinteger(L, 2);
    lua_pushinteger(L, p_add_i32((int32_t)a, (int32_t)b));
    return 1;
}

static int
lc_mixed6(lua_State *L)
{
    struct bench_mixed6 m;
    bench_lua_check_mixed6(L, &m);
    lua_pushnumber(L, p_mixed6(m.a, m.b, m.c, m.d, m.e, m.f));
    return 1;
}

static int
lc_big_sum(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    struct fx_big v;
    if (len != sizeof v)
        return luaL_error(L, "expected %d bytes", (int)sizeof v);
    memcpy(&v, s, sizeof v);
    lua_pushinteger(L, p_big_sum(v));
    return 1;
}

static int
lc_big_make(lua_State *L)
{
    int64_t a = luaL_checkinteger(L, 1), b = luaL_checkinteger(L, 2);
    int64_t c = luaL_checkinteger(L, 3);
    struct fx_big v = p_big_make(a, b, c);
    lua_pushlstring(L, (const char *)&v, sizeof v);
    return 1;
}

static int
lc_clock(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)bench_now_ns());
    return 1;
}

/* The Lua side: what is timed and the loops that call it. Each entry of
 * the returned table is { loop, Lua C function, capffi-lua function }. */
static const char setup_lua[] =
    "local fixture, lc, clock, qs = ...\n"
    "local capffi = require 'capffi'\n"
    "local tok = capffi.token{ label = 'bench' }\n"
    "local BIG = '{ a: i64, b: i64, c: i64 }'\n"
    "local fx = tok:dlopen(fixture, {\n"
    "  fx_nop = '() -> void',\n"
    "  fx_add_i32 = '(i32, i32) -> i32',\n"
    "  fx_mixed6 = '(i32, f64, i64, f32, u8, f64) -> f64',\n"
    "  fx_big_sum = '(' .. BIG .. ') -> i64',\n"
    "  fx_big_make = '(i64, i64, i64) -> ' .. BIG,\n"
    "})\n"
    "local big = string.pack('=i8i8i8', 1000, 200, 30)\n"
    "assert(select('#', fx.fx_nop()) == 0)\n"
    "assert(fx.fx_add_i32(20, 22) == 42 and lc.add(20, 22) == 42)\n"
    "assert(fx.fx_mixed6(1, 2.5, 3, 4.5, 5, 6.25) == 22.25)\n"
    "assert(lc.mixed6(1, 2.5, 3, 4.5, 5, 6.25) == 22.25)\n"
    "assert(fx.fx_big_sum(big) == 1230 and lc.big_sum(big) == 1230)\n"
    "assert(fx.fx_big_make(1000, 200, 30) == big)\n"
    "assert(lc.big_make(1000, 200, 30) == big)\n"
    "local function handler(a, b) return a + b end\n"
    "local cb = tok:callback('(i32, i32) -> i32', handler)\n"
    "local roundtrip = tok:fnptr(cb:pointer(), '(i32, i32) -> i32')\n"
    "local drive = tok:fnptr(qs.drive, '(function, i32) -> i32')\n"
    "local plain_rt = lc.make_cb(handler)\n"
    "assert(roundtrip(40, 2) == 42 and plain_rt(40, 2) == 42)\n"
    "assert(drive(cb, 3) == 24)\n"
    "local function loop_drive(f, n) drive(f, n) end\n"
    "local function loop0(f, n) for _ = 1, n do f() end end\n"
    "local function loop2(f, n) for i = 1, n do f(i & 0xffff, 7) end end\n"
    "local function loop6(f, n)\n"
    "  for i = 1, n do f(i & 0xffff, 2.5, 3, 4.5, 5, 6.25) end\n"
    "end\n"
    "local function loop_in(f, n) for _ = 1, n do f(big) end end\n"
    "local function loop3(f, n) for i = 1, n do f(i, 200, 30) end end\n"
    "-- qsort\n"
    "local libc = tok:dlopen('libc.so.6', {\n"
    "  qsort = '(*[$1]i32, usize, usize, function) -> void' })\n"
    "local n, input, want = qs.n, qs.input, qs.want\n"
    "local arr = capffi.new('[' .. n .. ']i32')\n"
    "local typed = tok:callback('(*i32, *i32) -> i32', function(a, b)\n"
    "  local x, y = a[0], b[0]\n"
    "  return x < y and -1 or (x > y and 1 or 0)\n"
    "end)\n"
    "local function sort()\n"
    "  for i = 0, n - 1 do arr[i] = input[i + 1] end\n"
    "  local t0 = clock()\n"
    "  libc.qsort(arr, n, 4, typed)\n"
    "  local t1 = clock()\n"
    "  local st = typed:status()\n"
    "  assert(st.code == 'CAPFFI_OK', 'the comparator failed: ' ..\n"
    "         tostring(st.detail))\n"
    "  for i = 0, n - 1 do\n"
    "    if arr[i] ~= want[i + 1] then error('qsort: not sorted') end\n"
    "  end\n"
    "  return t1 - t0\n"
    "end\n"
    "return {\n"
    "  nop = { loop0, lc.nop, fx.fx_nop },\n"
    "  add = { loop2, lc.add, fx.fx_add_i32 },\n"
    "  mixed6 = { loop6, lc.mixed6, fx.fx_mixed6 },\n"
    "  big_in = { loop_in, lc.big_sum, fx.fx_big_sum },\n"
    "  big_out = { loop3, lc.big_make, fx.fx_big_make },\n"
    "  cb = { loop2, plain_rt, cb, loop_drive },\n"
    "  cb_lua = { loop2, plain_rt, roundtrip },\n"
    "  typed_keep = typed,\n"
    "  sort = sort,\n"
    "}\n";

/* A Lua loop: case_table[r->lua_key] = { loop, Lua C fn, capffi fn
 * [, loop of the capffi fn] }. */
static __attribute__((noinline)) double
loop_lua(struct row *r, enum col col, size_t iters)
{
    lua_State *L = g.L;
    lua_getfield(L, g.cases, r->lua_key);
    if (col != C_LUA || lua_geti(L, -1, 4) == LUA_TNIL) {
        if (col == C_LUA)
            lua_pop(L, 1);
        lua_geti(L, -1, 1);
    }
    lua_geti(L, -2, col == C_LUAC ? 2 : 3);
    lua_pushinteger(L, (lua_Integer)iters);
    uint64_t t0 = bench_now_ns();
    lua_call(L, 2, 0);
    uint64_t t1 = bench_now_ns();
    lua_pop(L, 1);
    return bench_per_call(t0, t1, iters);
}

/* The Lua sort: it times its own qsort call. */
static double
loop_lua_sort(struct row *r, enum col col, size_t iters)
{
    (void)r, (void)col, (void)iters;
    lua_State *L = g.L;
    lua_getfield(L, g.cases, "sort");
    lua_call(L, 0, 1);
    lua_Integer ns = lua_tointeger(L, -1);
    lua_pop(L, 1);
    return (double)ns / (double)g.compares;
}

/* ---- setting up -------------------------------------------------------- */

static void
init_rows(struct row *rows)
{
    static const char *const ops[N_ROWS] = {
        "nop()",
        "add_i32",
        "mixed6 (6 mixed args)",
        "struct24 in",
        "struct24 out",
        "callback (i32,i32)->i32",
        "callback from Lua (fnptr)",
        "qsort, per comparison",
    };
    capffi_value v;
    memset(rows, 0, N_ROWS * sizeof *rows);
    for (int i = 0; i < N_ROWS; i++)
        rows[i].op = ops[i];
    struct row *r = &rows[R_NOP];
    r->symbol = "fx_nop";
    r->signature = "() -> void";
    r->lua_key = "nop";
    r->loop[C_DIRECT] = loop_direct_nop;
    r->call.code = FFI_FN(fx_nop);
    r->rkind = K_VOID;

    r = &rows[R_ADD];
    r->symbol = "fx_add_i32";
    r->signature = "(i32, i32) -> i32";
    r->lua_key = "add";
    r->loop[C_DIRECT] = loop_direct_add;
    r->call.code = FFI_FN(fx_add_i32);
    r->rkind = K_I32;
    v.i64 = nat.add_a;
    bench_call_arg(&r->call, 0, &nat.add_a, &ffi_type_sint32, v);
    v.i64 = nat.add_b;
    bench_call_arg(&r->call, 1, &nat.add_b, &ffi_type_sint32, v);

    r = &rows[R_MIXED6];
    r->symbol = "fx_mixed6";
    r->signature = "(i32, f64, i64, f32, u8, f64) -> f64";
    r->lua_key = "mixed6";
    r->loop[C_DIRECT] = loop_direct_mixed6;
    r->call.code = FFI_FN(fx_mixed6);
    r->rkind = K_F64;
    v.i64 = nat.m_a;
    bench_call_arg(&r->call, 0, &nat.m_a, &ffi_type_sint32, v);
    v.f64 = nat.m_b;
    bench_call_arg(&r->call, 1, &nat.m_b, &ffi_type_double, v);
    v.i64 = nat.m_c;
    bench_call_arg(&r->call, 2, &nat.m_c, &ffi_type_sint64, v);
    v.f32 = nat.m_d;
    bench_call_arg(&r->call, 3, &nat.m_d, &ffi_type_float, v);
    v.u64 = nat.m_e;
    bench_call_arg(&r->call, 4, &nat.m_e, &ffi_type_uint8, v);
    v.f64 = nat.m_f;
    bench_call_arg(&r->call, 5, &nat.m_f, &ffi_type_double, v);

    r = &rows[R_BIG_IN];
    r->symbol = "fx_big_sum";
    r->signature = "({ a: i64, b: i64, c: i64 }) -> i64";
    r->lua_key = "big_in";
    r->loop[C_DIRECT] = loop_direct_big_in;
    r->call.code = FFI_FN(fx_big_sum);
    r->rkind = K_I64;
    v.agg.ptr = &nat.big;
    v.agg.len = sizeof nat.big;
    bench_call_arg(&r->call, 0, &nat.big, &bench_big_type, v);

    r = &rows[R_BIG_OUT];
    r->symbol = "fx_big_make";
    r->signature = "(i64, i64, i64) -> { a: i64, b: i64, c: i64 }";
    r->lua_key = "big_out";
    r->loop[C_DIRECT] = loop_direct_big_out;
    r->call.code = FFI_FN(fx_big_make);
    r->rkind = K_BIG;
    v.i64 = nat.mk_a;
    bench_call_arg(&r->call, 0, &nat.mk_a, &ffi_type_sint64, v);
    v.i64 = nat.mk_b;
    bench_call_arg(&r->call, 1, &nat.mk_b, &ffi_type_sint64, v);
    v.i64 = nat.mk_c;
    bench_call_arg(&r->call, 2, &nat.mk_c, &ffi_type_sint64, v);

    for (int i = R_NOP; i <= R_BIG_OUT; i++) {
        rows[i].loop[C_FFI] = loop_ffi;
        rows[i].loop[C_VALUE] = i == R_BIG_OUT ? loop_value_sret : loop_value;
        rows[i].loop[C_RAW] = loop_raw;
        rows[i].loop[C_LUAC] = loop_lua;
        rows[i].loop[C_LUA] = loop_lua;
    }

    r = &rows[R_CB];
    r->lua_key = "cb";
    r->loop[C_DIRECT] = r->loop[C_FFI] = r->loop[C_VALUE] = loop_cb;
    r->loop[C_LUAC] = loop_lua;
    r->loop[C_LUA] = loop_lua;

    r = &rows[R_CB_LUA];
    r->lua_key = "cb_lua";
    r->loop[C_LUAC] = r->loop[C_LUA] = loop_lua;

    r = &rows[R_QSORT];
    r->loop[C_DIRECT] = r->loop[C_FFI] = r->loop[C_VALUE] = loop_qsort;
    r->loop[C_LUA] = loop_lua_sort;
}

static ffi_type *const rtypes[] = {
    [K_VOID] = &ffi_type_void,  [K_I32] = &ffi_type_sint32,
    [K_I64] = &ffi_type_sint64, [K_F64] = &ffi_type_double,
    [K_BIG] = &bench_big_type,
};

/* The result in rb as a double, for checking. */
static double
rbuf_value(enum rkind k, const union bench_rbuf *rb)
{
    struct fx_big big;
    switch (k) {
    case K_I32:
        return (double)(int32_t)rb->s;
    case K_I64:
        return (double)(int64_t)rb->s;
    case K_F64:
        return rb->f64;
    case K_BIG:
        memcpy(&big, rb->bytes, sizeof big);
        return (double)(big.a + big.b + big.c);
    default:
        return 0;
    }
}

static void
check(const struct row *r, const char *how, double got, double want)
{
    if (got != want) {
        fprintf(stderr, "bench_table: %s via %s returned %g, expected %g\n",
                r->op, how, got, want);
        exit(EXIT_FAILURE);
    }
}

/* Prepare a fixture row's cif and capffi function; call every C variant
 * once and check the result. */
static void
setup_call_row(struct row *r, capffi_lib *lib)
{
    static const double expect[] = {
        [K_VOID] = 0,    [K_I32] = 42,   [K_I64] = 1230,
        [K_F64] = 22.25, [K_BIG] = 1230,
    };
    double want = expect[r->rkind];
    bench_call_prep(&r->call, rtypes[r->rkind]);
    r->fn = bench_lib_bind(g.ctx, lib, r->symbol, r->signature, 0);

    union bench_rbuf rb;
    memset(&rb, 0, sizeof rb);
    bench_call_once(&r->call, &rb);
    check(r, "ffi_call", rbuf_value(r->rkind, &rb), want);

    memset(&rb, 0, sizeof rb);
    int rc = capffi_fn_call_raw(r->fn, r->call.av_raw, &rb);
    if (rc != CAPFFI_OK)
        bench_die_capffi(g.ctx, "capffi_fn_call_raw", rc);
    check(r, "capffi_fn_call_raw", rbuf_value(r->rkind, &rb), want);

    capffi_value ret;
    struct fx_big out = { 0, 0, 0 };
    memset(&ret, 0, sizeof ret);
    if (r->rkind == K_BIG) {
        ret.agg.ptr = &out;
        ret.agg.len = sizeof out;
    }
    rc = capffi_fn_call(r->fn, r->call.vals, &ret);
    if (rc != CAPFFI_OK)
        bench_die_capffi(g.ctx, "capffi_fn_call", rc);
    double got = r->rkind == K_F64    ? ret.f64
                 : r->rkind == K_BIG  ? (double)(out.a + out.b + out.c)
                 : r->rkind == K_VOID ? 0
                                      : (double)ret.i64;
    check(r, "capffi_fn_call", got, want);

    switch (r->rkind) {
    case K_I32:
        got = p_add_i32(nat.add_a, nat.add_b);
        break;
    case K_F64:
        got = p_mixed6(nat.m_a, nat.m_b, nat.m_c, nat.m_d, nat.m_e, nat.m_f);
        break;
    case K_I64:
        got = (double)p_big_sum(nat.big);
        break;
    case K_BIG:
        out = p_big_make(nat.mk_a, nat.mk_b, nat.mk_c);
        got = (double)(out.a + out.b + out.c);
        break;
    default:
        p_nop();
        got = 0;
    }
    check(r, "a direct call", got, want);
}

static ffi_type *cmp_types[] = { &ffi_type_pointer, &ffi_type_pointer };

static void *
cb_make(const capffi_token *tok, const char *sig, capffi_cb_fn fn)
{
    capffi_cb *cb = NULL;
    int rc = capffi_cb_new(&cb, g.ctx, tok, sig, fn, NULL, 0);
    if (rc != CAPFFI_OK)
        bench_die_capffi(g.ctx, "capffi_cb_new", rc);
    return capffi_cb_code(cb);
}

/* The data qsort sorts, its sorted copy and the number of comparisons. */
static void
make_data(size_t n)
{
    g.qsort_n = n;
    g.input = malloc(n * sizeof *g.input);
    g.want = malloc(n * sizeof *g.want);
    g.work = malloc(n * sizeof *g.work);
    if (!g.input || !g.want || !g.work)
        bench_die("out of memory");
    bench_fill_i32(g.input, n);
    memcpy(g.want, g.input, n * sizeof *g.want);
    counted = 0;
    qsort(g.want, n, sizeof *g.want, c_cmp_counting);
    g.compares = counted;
}

/* Run the setup script; leave its case table on the stack. */
static void
setup_lua_side(lua_State *L, const char *fixture)
{
    static const luaL_Reg lcs[] = {
        { "nop", lc_nop },
        { "add", lc_add },
        { "mixed6", lc_mixed6 },
        { "big_sum", lc_big_sum },
        { "big_make", lc_big_make },
        { "make_cb", bench_lua_make_cb },
        { NULL, NULL },
    };
    if (luaL_loadbuffer(L, setup_lua, sizeof setup_lua - 1, "=bench_table"))
        lua_error(L);
    lua_pushstring(L, fixture);
    luaL_newlib(L, lcs);
    lua_pushcfunction(L, lc_clock);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)g.qsort_n);
    lua_setfield(L, -2, "n");
    int32_t (*drive)(add_fn, int32_t) = drive_cb;
    void *dp;
    memcpy(&dp, &drive, sizeof dp);
    lua_pushlightuserdata(L, dp);
    lua_setfield(L, -2, "drive");
    const int32_t *const src[2] = { g.input, g.want };
    static const char *const names[2] = { "input", "want" };
    for (int k = 0; k < 2; k++) {
        lua_createtable(L, (int)g.qsort_n, 0);
        for (size_t i = 0; i < g.qsort_n; i++) {
            lua_pushinteger(L, src[k][i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_setfield(L, -2, names[k]);
    }
    lua_call(L, 4, 1);
    g.cases = lua_gettop(L);
}

/* ---- measuring and printing -------------------------------------------- */

static void
measure(struct row *const *rows, size_t nrows, size_t samples, size_t iters)
{
    for (int k = -1; k < (int)samples; k++) { /* round -1 warms up */
        for (size_t i = 0; i < nrows; i++) {
            struct row *r = rows[i];
            for (int j = 0; j < N_COLS; j++) {
                enum col c = (enum col)((unsigned)(j + k + 1) % N_COLS);
                if (!r->loop[c])
                    continue;
                double t = r->loop[c](r, c, iters);
                if (k >= 0)
                    r->s[c][k] = t;
            }
        }
    }
}

struct stat1 {
    double med, min;
};

static struct stat1
stat_of(const struct row *r, enum col c, size_t samples)
{
    struct stat1 s;
    s.med = bench_median(r->s[c], samples, &s.min);
    return s;
}

/* The median over the rounds of column a's time over column b's. */
static double
paired(const struct row *r, enum col a, enum col b, size_t samples)
{
    double q[SAMPLES_MAX];
    for (size_t k = 0; k < samples; k++)
        q[k] = r->s[b][k] > 0 ? r->s[a][k] / r->s[b][k] : 0;
    return bench_median(q, samples, NULL);
}

static void
print_table(const struct row *rows, const size_t *samples)
{
    printf("| op |");
    for (int c = 0; c < N_COLS; c++)
        printf(" %s |", col_names[c]);
    printf("\n|---|");
    for (int c = 0; c < N_COLS; c++)
        printf("---:|");
    printf("\n");
    for (int i = 0; i < N_ROWS; i++) {
        const struct row *r = &rows[i];
        double base = 0;
        if (r->loop[C_DIRECT])
            base = stat_of(r, C_DIRECT, samples[i]).med;
        printf("| %s |", r->op);
        for (int c = 0; c < N_COLS; c++) {
            if (!r->loop[c]) {
                printf(" - |");
                continue;
            }
            struct stat1 s = stat_of(r, (enum col)c, samples[i]);
            printf(" %.1f / %.1f", s.med, s.min);
            if (c != C_DIRECT && base > 0)
                printf(" (%.2fx)", s.med / base);
            printf(" |");
        }
        printf("\n");
    }
}

static void
target(const char *what, double ratio, double pair, double limit)
{
    printf("  %-48s %5.2fx (paired %5.2fx)  <= %.1fx %s\n", what, ratio, pair,
           limit, ratio <= limit ? "PASS" : "over");
}

static void
print_targets(const struct row *rows, const size_t *samples)
{
    printf("\ntargets (this run's medians; informational, the exit status "
           "does not depend on them):\n");
    for (int i = R_NOP; i <= R_MIXED6; i++) {
        const struct row *r = &rows[i];
        char what[64];
        snprintf(what, sizeof what, "capffi_fn_call / direct, %s", r->op);
        target(what,
               stat_of(r, C_VALUE, samples[i]).med /
                   stat_of(r, C_DIRECT, samples[i]).med,
               paired(r, C_VALUE, C_DIRECT, samples[i]), TARGET_FN);
    }
    for (int i = R_NOP; i <= R_CB_LUA; i++) {
        const struct row *r = &rows[i];
        char what[64];
        snprintf(what, sizeof what, "capffi-lua / Lua C, %s", r->op);
        target(what,
               stat_of(r, C_LUA, samples[i]).med /
                   stat_of(r, C_LUAC, samples[i]).med,
               paired(r, C_LUA, C_LUAC, samples[i]), TARGET_LUA);
    }
}

/* ---- main -------------------------------------------------------------- */

struct args {
    const char *fixture;
    bool quick;
};

static int
run(lua_State *L)
{
    const struct args *a = lua_touserdata(L, 1);
    size_t samples = a->quick ? SAMPLES_QUICK : SAMPLES_FULL;
    size_t iters = a->quick ? ITERS_QUICK : ITERS_FULL;
    size_t qsamples = a->quick ? QSORT_SAMPLES_QUICK : QSORT_SAMPLES_FULL;
    g.L = L;
    luaL_openlibs(L);
    make_data(a->quick ? QSORT_N_QUICK : QSORT_N_FULL);

    /* The C columns: a context that allows everything, as bench_call. */
    capffi_token tok;
    g.ctx = bench_ctx_new(&tok, NULL);
    capffi_lib *lib = bench_lib_open(g.ctx, &tok, a->fixture);

    /* The Lua columns: the host's context grants the fixture and libc. */
    const char *allow[] = { a->fixture, "libc.so.6" };
    capffi_options opts;
    memset(&opts, 0, sizeof opts);
    opts.allow_paths = allow;
    opts.n_allow = 2;
    capffi_ctx *lctx = bench_ctx_new(NULL, &opts);
    int rc = capffi_lua_open(L, lctx, NULL);
    if (rc != CAPFFI_OK)
        bench_die_capffi(lctx, "capffi_lua_open", rc);

    static struct row rows[N_ROWS];
    init_rows(rows);
    for (int i = R_NOP; i <= R_BIG_OUT; i++)
        setup_call_row(&rows[i], lib);

    struct bench_closure ra, rq;
    bench_closure_new(&ra, 2, &ffi_type_sint32, bench_add_types, bench_raw_add);
    bench_closure_new(&rq, 2, &ffi_type_sint32, cmp_types, raw_cmp);
    add_fn fa = bench_add_i32;
    cmp_fn fc = c_cmp;
    memcpy(&rows[R_CB].cb_code[C_DIRECT], &fa, sizeof fa);
    memcpy(&rows[R_QSORT].cb_code[C_DIRECT], &fc, sizeof fc);
    rows[R_CB].cb_code[C_FFI] = ra.code;
    rows[R_QSORT].cb_code[C_FFI] = rq.code;
    rows[R_CB].cb_code[C_VALUE] =
        cb_make(&tok, "(i32, i32) -> i32", bench_cb_add);
    rows[R_QSORT].cb_code[C_VALUE] =
        cb_make(&tok, "(pointer, pointer) -> i32", cb_cmp);
    setup_lua_side(L, a->fixture);
    for (int c = 0; c < N_COLS; c++) {
        add_fn f;
        if (!rows[R_CB].cb_code[c])
            continue;
        memcpy(&f, &rows[R_CB].cb_code[c], sizeof f);
        check(&rows[R_CB], col_names[c], f(40, 2), 42);
    }

    printf("capffi %s overview, libffi %s, %s%s\nfixture: %s\n",
           capffi_version(), BENCH_LIBFFI_VERSION, LUA_RELEASE,
           a->quick ? " (--quick: rough numbers)" : "", a->fixture);
    printf("ns per call, median / min of %zu samples of %zu calls (qsort: "
           "ns per comparison,\n%zu sorts of %zu i32, %lu comparisons "
           "each); (Nx) = median / direct C median;\ncolumns interleaved "
           "within each round\n\n",
           samples, iters, qsamples, g.qsort_n, g.compares);
    fflush(stdout);

    struct row *call_rows[R_QSORT];
    for (int i = 0; i < R_QSORT; i++)
        call_rows[i] = &rows[i];
    measure(call_rows, R_QSORT, samples, iters);
    struct row *qrow = &rows[R_QSORT];
    measure(&qrow, 1, qsamples, 1);

    size_t ns[N_ROWS];
    for (int i = 0; i < N_ROWS; i++)
        ns[i] = i == R_QSORT ? qsamples : samples;
    print_table(rows, ns);
    double qc = stat_of(qrow, C_DIRECT, qsamples).med;
    printf("\nqsort, ms per sort (median): C %.2f, libffi closure %.2f, "
           "capffi callback %.2f, capffi-lua %.2f\n",
           qc * (double)g.compares / 1e6,
           stat_of(qrow, C_FFI, qsamples).med * (double)g.compares / 1e6,
           stat_of(qrow, C_VALUE, qsamples).med * (double)g.compares / 1e6,
           stat_of(qrow, C_LUA, qsamples).med * (double)g.compares / 1e6);
    printf("callback row: ffi_call = raw libffi closure, capffi_fn_call = "
           "capffi callback;\nLua C = Lua loop -> lua_CFunction -> lua_pcall "
           "of the handler; capffi-lua = one Lua\ncall of a C loop (bound "
           "with tok:fnptr) calling the tok:callback `iters` times.\n"
           "\"callback from Lua\": Lua loop -> tok:fnptr(cb:pointer()) -> "
           "the callback, per call.\n");
    print_targets(rows, ns);

    lua_settop(L, 0);
    bench_closure_free(&ra);
    bench_closure_free(&rq);
    for (int i = R_NOP; i <= R_BIG_OUT; i++)
        capffi_fn_free(rows[i].fn);
    capffi_lib_close(lib);
    capffi_ctx_free(g.ctx);
    /* lctx outlives L: main closes L, then frees it. */
    lua_pushlightuserdata(L, lctx);
    return 1;
}

int
main(int argc, char **argv)
{
    bench_name = "bench_table";
    struct args a;
    a.fixture = bench_args_fixture(argc, argv, &a.quick, NULL);
    lua_State *L = bench_lua_run(run, &a);
    capffi_ctx *lctx = lua_touserdata(L, -1);
    lua_close(L);
    capffi_ctx_free(lctx);
    if (fflush(stdout) != 0 || ferror(stdout))
        bench_die("writing to stdout failed");
    return 0;
}
