/*
 * bench_lua.c - what a native call from Lua costs through capffi, next to
 * a plain Lua C function doing the same work.
 *
 * Fixture functions (tests/fixtures/fixture.h), bound through the Lua
 * binding exactly as a script binds them:
 *
 *   fx_nop      () -> void
 *   fx_add_i32  (i32, i32) -> i32
 *   fx_mixed6   (i32, f64, i64, f32, u8, f64) -> f64
 *   fx_pair_sum ({ a: i32, b: i32 }) -> i32, given an 8-byte string
 *
 * For each, per call from a Lua loop, in nanoseconds:
 *
 *   1. a Lua function doing the work (`function() end`, `a + b`, ...);
 *   2. a plain Lua C function doing the same work (lua_CFunction: nothing;
 *      a luaL_check* per argument and a lua_push* of the result computed
 *      as C computes it), the baseline the ratio is taken against;
 *   3. the capffi function: argument count, conversion and range checks,
 *      capffi_fn_call, the result pushed.
 *
 * And a callback round trip, (i32, i32) -> i32: the handler
 * `function(a, b) return a + b end` reached from Lua through native code.
 *
 *   1. a Lua function calling the handler;
 *   2. a plain Lua C function that checks its two integers and calls the
 *      handler with lua_pcall (a C function reached from native code must
 *      not let a Lua error unwind through it: what any C bridge from
 *      native code to Lua does), then checks and pushes its result: the
 *      baseline;
 *   3. capffi: tok:callback("(i32, i32) -> i32", handler), called through
 *      tok:fnptr(cb:pointer(), "(i32, i32) -> i32"): a bound function
 *      call, capffi's callback entry, the handler, and back.
 *
 * A sample times one Lua loop of `iters` calls (clock_gettime around
 * lua_call) and divides by `iters`. The three variants of a signature are
 * interleaved, starting with a different one each sample; one warm-up
 * round is discarded. The table shows the median and minimum per-call
 * times and the ratio of the capffi median to the Lua C function median.
 * Results are checked once before timing. A benchmark never fails on time:
 * the program exits 0 whatever the ratios.
 *
 * Then nonblocking calls of fx_nop (f:async, bench_job.c measures the
 * same from C): a round trip, f:async() then job:wait() and job:close(),
 * per call next to the synchronous fx_nop() of the same run, the two
 * interleaved; and throughput: TP_JOBS coroutines, each submitting one job
 * and awaiting it (job:await()), resumed by capffi.poll until all have
 * ended, in jobs per second from the first submission to the last
 * resumption.
 *
 * Usage: bench_lua [--quick] [FIXTURE]
 *   FIXTURE  path of libcapffi_fixture.so; default: $CAPFFI_FIXTURE.
 *   --quick  few samples and calls, a smoke test for CI.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "bench_lua_util.h"
#include "bench_util.h"
#include "capffi_lua.h"

#define MAX_SAMPLES 31
#define VARIANTS 3

/* Jobs per throughput sample (the context's job_queue), full and quick. */
#define TP_JOBS 100000
#define TP_JOBS_QUICK 10000

static int
plain_nop(lua_State *L)
{
    (void)L;
    return 0;
}

static int
plain_add(lua_State *L)
{
    lua_Integer a = luaL_checkinteger(L, 1), b = luaL_checkinteger(L, 2);
    lua_pushinteger(L, (int32_t)(a + b));
    return 1;
}

static int
plain_mixed6(lua_State *L)
{
    struct bench_mixed6 m;
    bench_lua_check_mixed6(L, &m);
    lua_pushnumber(L, (double)m.a + m.b + (double)m.c + (double)m.d +
                          (double)m.e + m.f);
    return 1;
}

static int
plain_pair_sum(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    int32_t p[2];
    if (len != sizeof p)
        return luaL_error(L, "expected %d bytes", (int)sizeof p);
    memcpy(p, s, sizeof p);
    lua_pushinteger(L, (int32_t)(p[0] + p[1]));
    return 1;
}

/* The Lua side: the functions to time and the loops that call them. */
static const char setup_lua[] =
    "local capffi, plain_nop, plain_add, plain_mixed6, plain_pair_sum,\n"
    "      make_plain_cb, fixture = ...\n"
    "local tok = capffi.token{ label = 'bench', paths = { fixture } }\n"
    "local fx = tok:dlopen(fixture, {\n"
    "  fx_nop = '() -> void',\n"
    "  fx_add_i32 = '(i32, i32) -> i32',\n"
    "  fx_mixed6 = '(i32, f64, i64, f32, u8, f64) -> f64',\n"
    "  fx_pair_sum = '({ a: i32, b: i32 }) -> i32',\n"
    "})\n"
    "assert(fx.fx_add_i32(40, 2) == 42 and plain_add(40, 2) == 42)\n"
    "local function mixed6(a, b, c, d, e, f) return a + b + c + d + e + f end\n"
    "assert(fx.fx_mixed6(1, 0.5, 3, 0.25, 5, 2) == 11.75)\n"
    "assert(plain_mixed6(1, 0.5, 3, 0.25, 5, 2) == 11.75)\n"
    "local pair = string.pack('<i4i4', 40, 2)\n"
    "local function pair_sum(s)\n"
    "  local a, b = string.unpack('<i4i4', s) return a + b\n"
    "end\n"
    "assert(fx.fx_pair_sum(pair) == 42 and plain_pair_sum(pair) == 42)\n"
    "local function handler(a, b) return a + b end\n"
    "local cb = tok:callback('(i32, i32) -> i32', handler)\n"
    "local roundtrip = tok:fnptr(cb:pointer(), '(i32, i32) -> i32')\n"
    "local plain_rt = make_plain_cb(handler)\n"
    "assert(roundtrip(40, 2) == 42 and plain_rt(40, 2) == 42)\n"
    "assert(select('#', fx.fx_nop()) == 0)\n"
    "local function loop0(f, n) for _ = 1, n do f() end end\n"
    "local nop = fx.fx_nop\n"
    "local function rt_async(n)\n"
    "  for _ = 1, n do local j = nop:async(); j:wait(); j:close() end\n"
    "end\n"
    "local function rt_sync(n) for _ = 1, n do nop() end end\n"
    "local function drain(n)\n"
    "  local done = 0\n"
    "  local function one()\n"
    "    local j = nop:async(); j:await(); j:close(); done = done + 1\n"
    "  end\n"
    "  for _ = 1, n do coroutine.wrap(one)() end\n"
    "  while done < n do\n"
    "    assert(capffi.poll(10000), 'no job ended in 10 s')\n"
    "  end\n"
    "end\n"
    "rt_async(1); drain(10)\n"
    "local function loop2(f, n) for i = 1, n do f(i, 7) end end\n"
    "local function loop6(f, n)\n"
    "  for i = 1, n do f(i, 0.5, 3, 0.25, 5, 2) end\n"
    "end\n"
    "local function loop_pair(f, n) for _ = 1, n do f(pair) end end\n"
    "return {\n"
    "  async = { rt_async = rt_async, rt_sync = rt_sync, drain = drain },\n"
    "  { name = 'fx_nop () -> void', loop = loop0,\n"
    "    fns = { function() end, plain_nop, fx.fx_nop } },\n"
    "  { name = 'fx_add_i32 (i32, i32) -> i32', loop = loop2,\n"
    "    fns = { function(a, b) return a + b end, plain_add,\n"
    "            fx.fx_add_i32 } },\n"
    "  { name = 'fx_mixed6 (6 mixed) -> f64', loop = loop6,\n"
    "    fns = { mixed6, plain_mixed6, fx.fx_mixed6 } },\n"
    "  { name = 'fx_pair_sum ({i32,i32}) -> i32', loop = loop_pair,\n"
    "    fns = { pair_sum, plain_pair_sum, fx.fx_pair_sum } },\n"
    "  { name = 'callback (i32, i32) -> i32', loop = loop2,\n"
    "    fns = { function(a, b) return handler(a, b) end, plain_rt,\n"
    "            roundtrip } },\n"
    "}\n";

/* Every count of samples here is odd: bench_median's middle element is
 * the median. */
static double
median(const double *v, int n)
{
    return bench_median(v, (size_t)n, NULL);
}

static double
minimum(const double *v, int n)
{
    double m;
    bench_median(v, (size_t)n, &m);
    return m;
}

/* Time one loop: the case table is at index `cases`. */
static double
time_loop(lua_State *L, int cases, int c, int variant, long iters)
{
    lua_geti(L, cases, c);
    lua_getfield(L, -1, "loop");
    lua_getfield(L, -2, "fns");
    lua_geti(L, -1, variant + 1);
    lua_remove(L, -2);
    lua_pushinteger(L, iters);
    uint64_t t0 = bench_now_ns();
    lua_call(L, 2, 0);
    uint64_t t1 = bench_now_ns();
    lua_pop(L, 1);
    return (double)(t1 - t0) / (double)iters;
}

/* Time cases.async[name](n): nanoseconds in all. */
static double
time_async(lua_State *L, int cases, const char *name, long n)
{
    lua_getfield(L, cases, "async");
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
    lua_pushinteger(L, n);
    uint64_t t0 = bench_now_ns();
    lua_call(L, 1, 0);
    uint64_t t1 = bench_now_ns();
    return (double)(t1 - t0);
}

/* The nonblocking rows: round trips next to the sync call, interleaved,
 * then coroutines drained by capffi.poll. */
static void
run_async(lua_State *L, int cases, int samples, bool quick)
{
    long rounds = quick ? 200 : 5000, sync_iters = quick ? 20000 : 2000000;
    long jobs = quick ? TP_JOBS_QUICK : TP_JOBS;
    int tp_samples = quick ? 1 : 5;
    double rt[2][MAX_SAMPLES], tp[MAX_SAMPLES];
    time_async(L, cases, "rt_async", rounds / 10 + 1); /* warm-up */
    time_async(L, cases, "rt_sync", sync_iters / 10 + 1);
    for (int s = 0; s < samples; s++) {
        for (int k = 0; k < 2; k++) {
            int v = (s + k) % 2;
            rt[v][s] = v == 0 ? time_async(L, cases, "rt_async", rounds) /
                                    (double)rounds
                              : time_async(L, cases, "rt_sync", sync_iters) /
                                    (double)sync_iters;
        }
    }
    for (int s = 0; s < tp_samples; s++)
        tp[s] = (double)jobs / (time_async(L, cases, "drain", jobs) / 1e9);
    double a = median(rt[0], samples), y = median(rt[1], samples);
    printf("\nnonblocking fx_nop from Lua (bench_job measures the same from "
           "C)\n");
    printf("%-44s %10.1f / %8.1f ns\n", "fx_nop() sync (median / min)", y,
           minimum(rt[1], samples));
    printf("%-44s %10.1f / %8.1f ns  %8.1fx sync\n",
           "f:async() + job:wait() + job:close()", a, minimum(rt[0], samples),
           y > 0 ? a / y : 0);
    printf("%-44s %10.0f jobs/s (median of %d, %ld jobs each)\n",
           "coroutines awaiting, drained by capffi.poll",
           median(tp, tp_samples), tp_samples, jobs);
}

struct args {
    const char *fixture;
    bool quick;
};

static int
run(lua_State *L)
{
    const struct args *a = lua_touserdata(L, 1);
    const char *fixture = a->fixture;
    bool quick = a->quick;
    int samples = quick ? 3 : 15;
    long iters = quick ? 20000 : 2000000;
    luaL_openlibs(L);

    capffi_options opts;
    memset(&opts, 0, sizeof opts);
    const char *allow[] = { fixture };
    opts.allow_paths = allow;
    opts.n_allow = 1;
    opts.job_queue = TP_JOBS;
    capffi_lua_setup(L, &opts);
    int module = lua_gettop(L);
    if (luaL_loadbuffer(L, setup_lua, sizeof setup_lua - 1, "=bench_lua"))
        return lua_error(L);
    lua_pushvalue(L, module);
    lua_pushcfunction(L, plain_nop);
    lua_pushcfunction(L, plain_add);
    lua_pushcfunction(L, plain_mixed6);
    lua_pushcfunction(L, plain_pair_sum);
    lua_pushcfunction(L, bench_lua_make_cb);
    lua_pushstring(L, fixture);
    lua_call(L, 7, 1);
    int cases = lua_gettop(L);
    int ncases = (int)luaL_len(L, cases);

    printf("bench_lua: calls from %s through capffi %s; %d samples of %ld "
           "calls\n",
           LUA_RELEASE, capffi_version(), samples, iters);
    printf("%-32s %14s %14s %14s %9s\n", "ns per call (median / min)",
           "Lua function", "Lua C function", "capffi", "capffi/C");
    for (int c = 1; c <= ncases; c++) {
        double t[VARIANTS][MAX_SAMPLES];
        for (int v = 0; v < VARIANTS; v++)
            time_loop(L, cases, c, v, iters / 10 + 1); /* warm-up */
        for (int s = 0; s < samples; s++)
            for (int k = 0; k < VARIANTS; k++) {
                int v = (s + k) % VARIANTS;
                t[v][s] = time_loop(L, cases, c, v, iters);
            }
        lua_geti(L, cases, c);
        lua_getfield(L, -1, "name");
        printf("%-32s", lua_tostring(L, -1));
        lua_pop(L, 2);
        for (int v = 0; v < VARIANTS; v++)
            printf(" %6.1f / %5.1f", median(t[v], samples),
                   minimum(t[v], samples));
        printf(" %8.2fx\n", median(t[2], samples) / median(t[1], samples));
    }
    run_async(L, cases, samples, quick);
    return 0;
}

int
main(int argc, char **argv)
{
    bench_name = "bench_lua";
    struct args a;
    a.fixture = bench_args_fixture(argc, argv, &a.quick, NULL);
    lua_close(bench_lua_run(run, &a));
    return 0;
}
