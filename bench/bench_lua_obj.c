/*
 * bench_lua_obj.c - SafeFFI from Lua: what reading and writing a field of
 * an instance (`obj.y`) costs next to a view and a plain Lua C function,
 * and a qsort of 10^5 i32 from Lua with a typed comparator next to the
 * view-based comparators a script writes without SafeFFI, C, and
 * LuaJIT's ffi.
 *
 * Fields. The class Point = { x: i32, y: i32, z: f64 }, per access from a
 * Lua loop, in nanoseconds:
 *
 *   1. a Lua table field (`t.y`): the floor;
 *   2. a plain Lua C function reading or writing the field of a C struct
 *      held in a userdata (`get_y(u)`, `set_y(u, i)`): the baseline;
 *   3. a view of a buffer holding a Point (`v:get("i32", 4)`,
 *      `v:set("i32", 4, i)`);
 *   4. an instance (`capffi.new("Point")`): `o.y`, `o.y = i`.
 *
 * qsort. N random i32, the same for every variant (generated here from
 * one seed), sorted by libc's qsort:
 *
 *   1. C: qsort called from C with a C comparator, the baseline;
 *   2. typed: qsort bound as (*[$1]i32, usize, usize, function) -> void
 *      on a capffi.new("[N]i32") instance, with the comparator
 *      `function(a, b) return a[0] < b[0] and -1 or (a[0] > b[0] and 1 or
 *      0) end` for the callback (*i32, *i32) -> i32;
 *   3. view per argument: qsort bound with `pointer` on a buffer
 *      (tok:pointer_of), the comparator (pointer, pointer) -> i32 making a
 *      4-byte view of each argument (tok:view, audited), reading and
 *      freeing it: what docs/lua.md says to do with a pointer;
 *   4. one view, addresses: the same qsort, the comparator reading both
 *      values through one view of the whole buffer at
 *      capffi.address(p) - base (what tests/lua/callbacks.lua does);
 *   5. LuaJIT: `luajit` (from $BENCH_LUAJIT, else the PATH) runs an
 *      equivalent script with ffi.C.qsort and an ffi.cast comparator of
 *      type int (*)(const int32_t *, const int32_t *) on the same data,
 *      timing itself with clock_gettime; skipped, with the reason
 *      printed, when luajit is not installed (`sh scripts/deps.sh
 *      luajit` installs it on Debian).
 *
 * Each time covers the qsort call only (the array is refilled before each
 * sort, untimed); each result is compared with C's sort, and a difference
 * is an error. Rounds interleave the variants after a warm-up round; the
 * table gives median and minimum per sort and per comparison, and the
 * ratios to the typed comparator. The field loops interleave as
 * bench_lua.c's do. Nothing is asserted about time: the program exits 0
 * whatever it measures, 1 on a failure, 2 on a usage error.
 *
 * Usage: bench_lua_obj [--quick] [N]
 *   N        elements to sort (default 100000).
 *   --quick  few samples and a 10^4-element sort, a smoke test for CI.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "bench_lua_util.h"
#include "bench_util.h"
#include "capffi_lua.h"

#define MAX_SAMPLES 31

/* ---- the plain Lua C functions ------------------------------------------ */

struct point {
    int32_t x;
    int32_t y;
    double z;
};

static int
plain_get_y(lua_State *L)
{
    const struct point *p = luaL_checkudata(L, 1, "bench.point");
    lua_pushinteger(L, p->y);
    return 1;
}

static int
plain_set_y(lua_State *L)
{
    struct point *p = luaL_checkudata(L, 1, "bench.point");
    lua_Integer v = luaL_checkinteger(L, 2);
    if (v < INT32_MIN || v > INT32_MAX)
        return luaL_argerror(L, 2, "out of range for i32");
    p->y = (int32_t)v;
    return 0;
}

/* ---- the Lua side ------------------------------------------------------- */

static const char setup_lua[] =
    "local capffi, get_y, set_y, u, d = ...\n"
    "local n, clock, input, want = d.n, d.clock, d.input, d.want\n"
    "local input_str, want_str = d.input_str, d.want_str\n"
    "local tok = capffi.token{ label = 'bench' }\n"
    "-- fields\n"
    "capffi.class('Point', '{ x: i32, y: i32, z: f64 }')\n"
    "local o = capffi.new('Point')\n"
    "local b = capffi.buffer(tok:sizeof('Point'))\n"
    "local v = b:view('rw')\n"
    "local t = { x = 0, y = 0, z = 0.0 }\n"
    "local off = tok:offsetof('Point', 'y')\n"
    "o.y = -77; v:set('i32', off, -77); set_y(u, -77); t.y = -77\n"
    "assert(o.y == -77 and v:get('i32', off) == -77 and get_y(u) == -77)\n"
    "local reads = {\n"
    "  function(k) local s = 0; for _ = 1, k do s = s + t.y end; return s "
    "end,\n"
    "  function(k) local s = 0; for _ = 1, k do s = s + get_y(u) end; "
    "return s end,\n"
    "  function(k) local s = 0; for _ = 1, k do s = s + v:get('i32', off) "
    "end; return s end,\n"
    "  function(k) local s = 0; for _ = 1, k do s = s + o.y end; return s "
    "end,\n"
    "}\n"
    "local writes = {\n"
    "  function(k) for i = 1, k do t.y = i end end,\n"
    "  function(k) for i = 1, k do set_y(u, i) end end,\n"
    "  function(k) for i = 1, k do v:set('i32', off, i) end end,\n"
    "  function(k) for i = 1, k do o.y = i end end,\n"
    "}\n"
    "-- qsort\n"
    "local libc = tok:dlopen('libc.so.6', {\n"
    "  qsort_typed = { name = 'qsort',\n"
    "                  sig = '(*[$1]i32, usize, usize, function) -> void' },\n"
    "  qsort_ptr = { name = 'qsort',\n"
    "                sig = '(pointer, usize, usize, function) -> void' },\n"
    "})\n"
    "local arr = capffi.new('[' .. n .. ']i32')\n"
    "assert(#arr == n)\n"
    "local typed = tok:callback('(*i32, *i32) -> i32', function(a, b)\n"
    "  return a[0] < b[0] and -1 or (a[0] > b[0] and 1 or 0)\n"
    "end)\n"
    "local per_arg = tok:callback('(pointer, pointer) -> i32', "
    "function(pa, pb)\n"
    "  local va = tok:view(pa, 4); local x = va:get('i32'); va:free()\n"
    "  local vb = tok:view(pb, 4); local y = vb:get('i32'); vb:free()\n"
    "  return x < y and -1 or (x > y and 1 or 0)\n"
    "end)\n"
    "local buf = capffi.buffer(4 * n)\n"
    "local bw = buf:view('rw')\n"
    "local base = tok:pointer_of(buf)\n"
    "local at = capffi.address(base)\n"
    "local whole = tok:view(base, 4 * n, 'r')\n"
    "local one_view = tok:callback('(pointer, pointer) -> i32', "
    "function(pa, pb)\n"
    "  local x = whole:get('i32', capffi.address(pa) - at)\n"
    "  local y = whole:get('i32', capffi.address(pb) - at)\n"
    "  return x < y and -1 or (x > y and 1 or 0)\n"
    "end)\n"
    "local function fill_arr()\n"
    "  for i = 0, n - 1 do arr[i] = input[i + 1] end\n"
    "end\n"
    "local function check(cb, what)\n"
    "  local st = cb:status()\n"
    "  assert(st.code == 'CAPFFI_OK', what .. ' comparator failed: ' ..\n"
    "         tostring(st.detail))\n"
    "end\n"
    "local sorts = {\n"
    "  function()\n"
    "    fill_arr()\n"
    "    local t0 = clock()\n"
    "    libc.qsort_typed(arr, n, 4, typed)\n"
    "    local t1 = clock()\n"
    "    check(typed, 'typed')\n"
    "    for i = 0, n - 1 do\n"
    "      if arr[i] ~= want[i + 1] then error('typed: not sorted') end\n"
    "    end\n"
    "    return t1 - t0\n"
    "  end,\n"
    "}\n"
    "local function ptr_sort(cb, what)\n"
    "  return function()\n"
    "    bw:write(0, input_str)\n"
    "    local t0 = clock()\n"
    "    libc.qsort_ptr(base, n, 4, cb)\n"
    "    local t1 = clock()\n"
    "    check(cb, what)\n"
    "    if bw:copy(0, 4 * n) ~= want_str then\n"
    "      error(what .. ': not sorted')\n"
    "    end\n"
    "    return t1 - t0\n"
    "  end\n"
    "end\n"
    "sorts[2] = ptr_sort(per_arg, 'view per argument')\n"
    "sorts[3] = ptr_sort(one_view, 'one view')\n"
    "return { reads = reads, writes = writes, sorts = sorts }\n";

/* ---- statistics ---------------------------------------------------------- */

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
median_of(double *v, int n, double *min)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *min = v[0];
    return v[n / 2];
}

/* ---- fields ---------------------------------------------------------------
 */

#define F_VARIANTS 4

static const char *const field_variant[F_VARIANTS] = {
    "Lua table field", "Lua C function", "view:get / view:set", "obj.y"
};

/* Call cases[kind][variant](iters): nanoseconds per access. */
static double
time_field(lua_State *L, int cases, const char *kind, int variant, long iters)
{
    lua_getfield(L, cases, kind);
    lua_geti(L, -1, variant + 1);
    lua_remove(L, -2);
    lua_pushinteger(L, iters);
    uint64_t t0 = bench_now_ns();
    lua_call(L, 1, 0);
    uint64_t t1 = bench_now_ns();
    return bench_per_call(t0, t1, (size_t)iters);
}

static void
run_fields(lua_State *L, int cases, bool quick)
{
    int samples = quick ? 3 : 15;
    long iters = quick ? 20000 : 2000000;
    static const char *const kinds[2] = { "reads", "writes" };
    printf("field y (i32) of Point from a Lua loop, ns per access "
           "(median / min over %d samples of %ld)\n\n",
           samples, iters);
    printf("| access | variant | median | min |\n");
    printf("|--------|---------|-------:|----:|\n");
    double med[2][F_VARIANTS];
    for (int k = 0; k < 2; k++) {
        double t[F_VARIANTS][MAX_SAMPLES];
        for (int v = 0; v < F_VARIANTS; v++)
            time_field(L, cases, kinds[k], v, iters / 10 + 1); /* warm-up */
        for (int s = 0; s < samples; s++)
            for (int j = 0; j < F_VARIANTS; j++) {
                int v = (s + j) % F_VARIANTS;
                t[v][s] = time_field(L, cases, kinds[k], v, iters);
            }
        for (int v = 0; v < F_VARIANTS; v++) {
            double min;
            med[k][v] = median_of(t[v], samples, &min);
            printf("| %s | %s | %.1f | %.1f |\n", k ? "write" : "read",
                   field_variant[v], med[k][v], min);
        }
    }
    printf("\n| access | obj.y/view | obj.y/C function | view/C function "
           "|\n");
    printf("|--------|-----------:|-----------------:|----------------:|\n");
    for (int k = 0; k < 2; k++)
        printf("| %s | %.2fx | %.2fx | %.2fx |\n", k ? "write" : "read",
               med[k][3] / med[k][2], med[k][3] / med[k][1],
               med[k][2] / med[k][1]);
}

/* ---- qsort ----------------------------------------------------------------
 */

enum { Q_C, Q_TYPED, Q_PER_ARG, Q_ONE_VIEW, Q_LUAJIT, N_Q };

static const char *const q_variant[N_Q] = {
    "C qsort, C comparator (from C)",  "typed: *[$1]i32, a[0] < b[0]",
    "view per argument (tok:view)",    "one view, capffi.address",
    "LuaJIT ffi, ffi.cast comparator",
};

static unsigned long c_compares;

static int
c_cmp(const void *pa, const void *pb)
{
    int32_t a, b;
    memcpy(&a, pa, sizeof a);
    memcpy(&b, pb, sizeof b);
    c_compares++;
    return (a > b) - (a < b);
}

/* Call cases.sorts[i](): seconds of its qsort. */
static double
time_sort(lua_State *L, int cases, int i)
{
    lua_getfield(L, cases, "sorts");
    lua_geti(L, -1, i);
    lua_remove(L, -2);
    lua_call(L, 0, 1);
    double sec = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return sec;
}

static int
lua_clock(lua_State *L)
{
    lua_pushnumber(L, (double)bench_now_ns() / 1e9);
    return 1;
}

/* The LuaJIT script: argv data file, sorted file, n, rounds. Prints
 * "luajit MEDIAN_S MIN_S" or fails. */
static const char luajit_script[] =
    "local ffi = require('ffi')\n"
    "ffi.cdef[[\n"
    "void qsort(void *base, size_t n, size_t size,\n"
    "           int (*cmp)(const int32_t *, const int32_t *));\n"
    "typedef struct { long sec, nsec; } bench_ts;\n"
    "int clock_gettime(int clk, bench_ts *ts);\n"
    "]]\n"
    "local data_path, want_path, n, rounds = arg[1], arg[2], "
    "tonumber(arg[3]), tonumber(arg[4])\n"
    "local function slurp(p)\n"
    "  local f = assert(io.open(p, 'rb')); local s = f:read('*a'); "
    "f:close(); return s\n"
    "end\n"
    "local data, want = slurp(data_path), slurp(want_path)\n"
    "assert(#data == 4 * n and #want == 4 * n)\n"
    "local ts = ffi.new('bench_ts')\n"
    "local function now()\n"
    "  ffi.C.clock_gettime(1, ts)\n"
    "  return tonumber(ts.sec) + tonumber(ts.nsec) * 1e-9\n"
    "end\n"
    "local arr = ffi.new('int32_t[?]', n)\n"
    "local cmp = ffi.cast('int (*)(const int32_t *, const int32_t *)',\n"
    "  function(a, b) return a[0] < b[0] and -1 or (a[0] > b[0] and 1 or 0) "
    "end)\n"
    "local t = {}\n"
    "for r = 0, rounds do -- round 0 warms up\n"
    "  ffi.copy(arr, data, 4 * n)\n"
    "  local t0 = now()\n"
    "  ffi.C.qsort(arr, n, 4, cmp)\n"
    "  local t1 = now()\n"
    "  assert(ffi.string(arr, 4 * n) == want, 'luajit: not sorted')\n"
    "  if r > 0 then t[#t + 1] = t1 - t0 end\n"
    "end\n"
    "cmp:free()\n"
    "table.sort(t)\n"
    "local mid = t[math.floor((#t + 1) / 2)]\n"
    "io.write(string.format('luajit %.9f %.9f\\n', mid, t[1]))\n";

/* luajit's path ($BENCH_LUAJIT, else the first on the PATH), or NULL. */
static char *
find_luajit(void)
{
    const char *env = getenv("BENCH_LUAJIT");
    if (env && *env)
        return access(env, X_OK) == 0 ? strdup(env) : NULL;
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    char *dirs = strdup(path), *save = NULL;
    char *found = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d && !found;
         d = strtok_r(NULL, ":", &save)) {
        size_t len = strlen(d) + sizeof "/luajit";
        char *c = malloc(len);
        if (!c)
            break;
        snprintf(c, len, "%s/luajit", d);
        if (access(c, X_OK) == 0)
            found = c;
        else
            free(c);
    }
    free(dirs);
    return found;
}

static void
write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        bench_die("cannot write a file for luajit");
}

/* Run the LuaJIT variant: true with its median and minimum (seconds),
 * false with why not in why. */
static bool
run_luajit(const int32_t *input, const int32_t *want, size_t n, int rounds,
           double *med, double *min, char *why, size_t cap)
{
    char *luajit = find_luajit();
    const char *env = getenv("BENCH_LUAJIT");
    if (!luajit && env && *env) {
        snprintf(why, cap, "skipped: BENCH_LUAJIT (%.120s) is not executable",
                 env);
        return false;
    }
    if (!luajit) {
        snprintf(why, cap,
                 "skipped: luajit is not installed (set BENCH_LUAJIT or put "
                 "it on the PATH; Debian: sh scripts/deps.sh luajit)");
        return false;
    }
    char dir[] = "/tmp/bench_lua_obj.XXXXXX";
    if (!mkdtemp(dir))
        bench_die("mkdtemp failed");
    char script[64], data[64], sorted[64];
    snprintf(script, sizeof script, "%s/qsort.lua", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(sorted, sizeof sorted, "%s/sorted", dir);
    write_file(script, luajit_script, sizeof luajit_script - 1);
    write_file(data, input, n * sizeof *input);
    write_file(sorted, want, n * sizeof *want);
    /* The paths are ours (mkdtemp's characters); luajit's is quoted. */
    size_t len = strlen(luajit) + 3 * sizeof dir + 128;
    char *cmd = malloc(len);
    if (!cmd)
        bench_die("out of memory");
    snprintf(cmd, len, "'%s' %s %s %s %zu %d", luajit, script, data, sorted, n,
             rounds);
    bool ok = false;
    if (strchr(luajit, '\'')) {
        snprintf(why, cap, "skipped: luajit's path has a quote");
    } else {
        FILE *p = popen(cmd, "r");
        char line[256] = "";
        if (!p)
            bench_die("popen failed");
        bool got = fgets(line, sizeof line, p) != NULL;
        int status = pclose(p);
        ok =
            got && status == 0 && sscanf(line, "luajit %lf %lf", med, min) == 2;
        if (!ok)
            bench_die("the LuaJIT script failed");
    }
    remove(script);
    remove(data);
    remove(sorted);
    rmdir(dir);
    free(cmd);
    free(luajit);
    return ok;
}

static void
run_qsort(lua_State *L, int cases, const int32_t *input, const int32_t *want,
          size_t n, unsigned long compares, bool quick)
{
    int rounds = quick ? 1 : 5;
    double t[N_Q][MAX_SAMPLES];
    int32_t *plain = malloc(n * sizeof *plain);
    if (!plain)
        bench_die("out of memory");
    for (int r = -1; r < rounds; r++) { /* round -1 warms up */
        for (int k = 0; k < Q_LUAJIT; k++) {
            int v = (k + (r < 0 ? 0 : r)) % Q_LUAJIT;
            double sec;
            if (v == Q_C) {
                memcpy(plain, input, n * sizeof *plain);
                uint64_t t0 = bench_now_ns();
                qsort(plain, n, sizeof *plain, c_cmp);
                sec = (double)(bench_now_ns() - t0) / 1e9;
                if (memcmp(plain, want, n * sizeof *plain) != 0)
                    bench_die("the C qsort did not sort the array");
            } else {
                sec = time_sort(L, cases, v);
            }
            if (r >= 0)
                t[v][r] = sec;
        }
    }
    free(plain);
    double med[N_Q], min[N_Q];
    char why[256] = "";
    bool jit = run_luajit(input, want, n, rounds, &med[Q_LUAJIT],
                          &min[Q_LUAJIT], why, sizeof why);
    printf("\nqsort of %zu random i32 from Lua (libc qsort; median / min "
           "over %d rounds; %lu comparisons)\n\n",
           n, rounds, compares);
    printf("| variant | ms per sort | min ms | ns per comparison | /typed |\n");
    printf("|---------|------------:|-------:|------------------:|-------:|\n");
    for (int v = 0; v < Q_LUAJIT; v++)
        med[v] = median_of(t[v], rounds, &min[v]);
    for (int v = 0; v < N_Q; v++) {
        if (v == Q_LUAJIT && !jit) {
            printf("| %s | %s | | | |\n", q_variant[v], why);
            continue;
        }
        printf("| %s | %.2f | %.2f | %.1f | %.2fx |\n", q_variant[v],
               med[v] * 1e3, min[v] * 1e3, med[v] * 1e9 / (double)compares,
               med[v] / med[Q_TYPED]);
    }
    printf("\nview per argument/typed: %.2fx, one view/typed: %.2fx "
           "(target: typed >= 3x faster than view-based: %s)\n",
           med[Q_PER_ARG] / med[Q_TYPED], med[Q_ONE_VIEW] / med[Q_TYPED],
           med[Q_PER_ARG] / med[Q_TYPED] >= 3 ? "met" : "NOT met");
}

/* ---- main ------------------------------------------------------------------
 */

struct args {
    bool quick;
    size_t n;
};

static int
run(lua_State *L)
{
    const struct args *a = lua_touserdata(L, 1);
    bool quick = a->quick;
    size_t n = a->n;
    luaL_openlibs(L);

    /* The data, as bench_obj.c makes it. */
    int32_t *input = lua_newuserdatauv(L, n * sizeof *input, 0);
    int32_t *want = lua_newuserdatauv(L, n * sizeof *want, 0);
    bench_fill_i32(input, n);
    memcpy(want, input, n * sizeof *want);
    c_compares = 0;
    qsort(want, n, sizeof *want, c_cmp);
    unsigned long compares = c_compares;

    capffi_options opts;
    memset(&opts, 0, sizeof opts);
    opts.flags = CAPFFI_OPT_ALLOW_ALL;
    capffi_lua_setup(L, &opts);
    int module = lua_gettop(L);

    if (luaL_loadbuffer(L, setup_lua, sizeof setup_lua - 1, "=bench_lua_obj"))
        return lua_error(L);
    lua_pushvalue(L, module);
    lua_pushcfunction(L, plain_get_y);
    lua_pushcfunction(L, plain_set_y);
    struct point *p = lua_newuserdatauv(L, sizeof *p, 0);
    memset(p, 0, sizeof *p);
    luaL_newmetatable(L, "bench.point");
    lua_setmetatable(L, -2);
    /* The data: as tables (1-based) and as strings of their bytes. */
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, (lua_Integer)n);
    lua_setfield(L, -2, "n");
    lua_pushcfunction(L, lua_clock);
    lua_setfield(L, -2, "clock");
    const int32_t *const src[2] = { input, want };
    static const char *const names[2][2] = { { "input", "input_str" },
                                             { "want", "want_str" } };
    for (int k = 0; k < 2; k++) {
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            lua_pushinteger(L, src[k][i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_setfield(L, -2, names[k][0]);
        lua_pushlstring(L, (const char *)src[k], n * sizeof *src[k]);
        lua_setfield(L, -2, names[k][1]);
    }
    lua_call(L, 5, 1);
    int cases = lua_gettop(L);

    printf("bench_lua_obj: SafeFFI from %s through capffi %s\n\n", LUA_RELEASE,
           capffi_version());
    run_fields(L, cases, quick);
    run_qsort(L, cases, input, want, n, compares, quick);
    return 0;
}

int
main(int argc, char **argv)
{
    bench_name = "bench_lua_obj";
    struct args a;
    a.n = bench_args_n(argc, argv, &a.quick, INT32_MAX / 4);
    lua_close(bench_lua_run(run, &a));
    return 0;
}
