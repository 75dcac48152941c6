/*
 * bench_lua_util.h - what the benchmarks from Lua share (bench_lua_util.c):
 * running the program in a protected call, and the plain C bridges a
 * hand-written binding would have, the baselines of capffi-lua.
 */
#ifndef CAPFFI_BENCH_LUA_UTIL_H
#define CAPFFI_BENCH_LUA_UTIL_H

#include <stdint.h>

#include <lua.h>

/* A new Lua state in which run(arg) is called, protected, with arg as a
 * light userdata. On an error, prints "NAME: message" and exits with a
 * failure status. Returns the state with run's one result on top.
 * Ownership: the caller closes the state. */
lua_State *bench_lua_run(lua_CFunction run, void *arg);

/* make_cb(handler): a lua_CFunction closed over handler that checks its
 * two integers, calls the handler with lua_pcall (a C function reached
 * from native code must not let a Lua error unwind through it), checks
 * that it returned an integer and pushes it as an i32. */
int bench_lua_make_cb(lua_State *L);

/* The arguments of (i32, f64, i64, f32, u8, f64), checked at stack
 * positions 1 to 6 as a Lua C function checks them. */
struct bench_mixed6 {
    int32_t a;
    double b;
    int64_t c;
    float d;
    uint8_t e;
    double f;
};

void bench_lua_check_mixed6(lua_State *L, struct bench_mixed6 *m);

#endif
