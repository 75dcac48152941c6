/*
 * helpers.h - shared scaffolding for the cmocka test programs: a scratch
 * directory with files, directories and symlinks to grant and deny, and a
 * few assertion helpers.
 */
#ifndef CAPFFI_TEST_HELPERS_H
#define CAPFFI_TEST_HELPERS_H

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "capffi.h"
#include "capffi/testing.h"

/*
 * A scratch tree, made fresh for each test that asks for it:
 *   DIR/lib/a.so   DIR/lib/b.so   DIR/other/c.so
 *   DIR/link-a -> lib/a.so        DIR/link-c -> other/c.so
 */
struct scratch {
    char dir[PATH_MAX];
    char lib[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
    char other[PATH_MAX], c[PATH_MAX];
    char link_a[PATH_MAX], link_c[PATH_MAX];
};

void scratch_make(struct scratch *s);
void scratch_remove(struct scratch *s);
/* Write a small file at path (creating it). */
void write_file(const char *path);
/* snprintf into a PATH_MAX buffer, failing the test on truncation. */
void pathf(char *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The value of an environment variable meson sets, or a test failure. */
const char *env_path(const char *name);
/* Copy src to dst (created or truncated) with the given mode. */
void copy_file(const char *src, const char *dst, unsigned mode);
/* Whether the file at path is loaded in the process, under any name. */
bool lib_loaded(const char *path);
/* How many descriptors the process has open. */
long open_fds(void);

/* A token of ctx with exactly `rights` (0: everything granted now). */
capffi_token mint(capffi_ctx *ctx, const char *label, uint32_t rights);
/* Call an "(i32, i32) -> i32" function; *rc gets capffi_fn_call's code. */
int32_t add_i32(capffi_fn *fn, int32_t a, int32_t b, int *rc);
/* Bind sym in lib with sig (no flags), or fail the test. */
capffi_fn *bind_sym(capffi_lib *lib, const char *sym, const char *sig);
/*
 * Whether two values are equal in the member a kind letter names: b (b),
 * i (i64), u (u64), f (f32), d (f64), s (str), anything else p.
 */
bool value_same(char kind, const capffi_value *a, const capffi_value *b);
/*
 * How many operations the recorder saw refused or done with op and status:
 * coalesced refusals delivered first (capffi_audit_flush), then each
 * event counted as the refusals it stands for (its count).
 */
size_t audited(capffi_ctx *ctx, capffi_op op, int status);
/*
 * Fail the test, with capffi_expect's report, unless the recorded events
 * since mark match the patterns (capffi/testing.h) under flags
 * (CAPFFI_EXPECT_ORDERED, CAPFFI_EXPECT_EXACT). assert_no_events: nothing
 * was recorded since mark.
 */
#define assert_events(ctx, mark, flags, ...)                                   \
    events_match((ctx), (mark), (flags), __FILE__, __LINE__, __VA_ARGS__,      \
                 (const char *)NULL)
#define assert_no_events(ctx, mark)                                            \
    events_match((ctx), (mark), CAPFFI_EXPECT_EXACT, __FILE__, __LINE__,       \
                 (const char *)NULL)
void events_match(capffi_ctx *ctx, uint64_t mark, unsigned flags,
                  const char *file, int line, ...);
/* A callback's status, read and reset (capffi_cb_take_status must work). */
capffi_cb_status cb_status(capffi_cb *cb);
/* The code of an "(i32) -> i32" callback, as native code calls it. */
typedef int32_t (*unop_fn)(int32_t);
unop_fn cb_unop(const capffi_cb *cb);

/* A context with the given flags and allow/deny lists (NULL-terminated). */
capffi_ctx *ctx_with(uint32_t flags, const char *const *allow,
                     const char *const *deny);

/* A context with flags and a pool of `workers` job threads (0: the
 * default) that allows the fixtures' directory (CAPFFI_FIXTURE_DIR). */
capffi_ctx *ctx_for_fixtures(uint32_t flags, unsigned workers);

/*
 * What the call tests start from: a context, a token of every right it
 * grants, and a library opened through that token.
 */
struct lib_fx {
    capffi_ctx *ctx;
    capffi_token tok;
    capffi_lib *lib;
};

/*
 * Fill f: a context with ctx_flags that allows the directory named by the
 * environment variable dir_env (none when dir_env is NULL), a token
 * labelled label, and the library named by lib_env. Fails the test on any
 * error.
 */
void lib_fx_open(struct lib_fx *f, uint32_t ctx_flags, const char *dir_env,
                 const char *lib_env, const char *label);
/* A cmocka teardown for a calloc'd struct that begins with a struct
 * lib_fx: frees the context, then the struct. */
int lib_fx_teardown(void **state);
/* Bind sym in f's library, or fail the test with the context's message. */
capffi_fn *lib_fx_bind(const struct lib_fx *f, const char *sym, const char *sig,
                       uint32_t flags);

/* Run cmocka with TAP output, so meson lists every case. */
#define RUN_TESTS(name, tests)                                                 \
    (setenv("CMOCKA_MESSAGE_OUTPUT", "TAP", 0),                                \
     cmocka_run_group_tests_name(name, tests, NULL, NULL))

#define assert_ok(expr)                                                        \
    do {                                                                       \
        int rc_ = (expr);                                                      \
        if (rc_ != 0)                                                          \
            fail_msg("%s returned %s", #expr, capffi_err_name(rc_));           \
    } while (0)

#define assert_rc(expr, want)                                                  \
    do {                                                                       \
        int rc_ = (expr);                                                      \
        if (rc_ != (want))                                                     \
            fail_msg("%s returned %s, expected %s", #expr,                     \
                     capffi_err_name(rc_), capffi_err_name(want));             \
    } while (0)

#endif
