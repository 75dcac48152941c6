/*
 * internal.h - private helpers shared by every module: the allocator,
 * error-message helpers, and the one inclusion of uthash.
 *
 * Nothing here is exported; the capffi__ names have hidden visibility.
 */
#ifndef CAPFFI_INTERNAL_H
#define CAPFFI_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capffi.h"

#define CAPFFI__HIDDEN __attribute__((visibility("hidden")))
/*
 * Thread-locals read on the callback path: initial-exec, so reading one is
 * one instruction instead of a call into the dynamic linker. They are a
 * few bytes, well within the static TLS a dlopen'ed library may use.
 */
#define CAPFFI__TLS_FAST __attribute__((tls_model("initial-exec")))

#if defined(__GNUC__)
#define CAPFFI__PRINTF(f, a) __attribute__((format(printf, f, a)))
#define CAPFFI__LIKELY(x) __builtin_expect(!!(x), 1)
#define CAPFFI__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define CAPFFI__PRINTF(f, a)
#define CAPFFI__LIKELY(x) (x)
#define CAPFFI__UNLIKELY(x) (x)
#endif

/* ---- allocation ------------------------------------------------------- */

/*
 * Every allocation in src/ goes through these, so tests can fail the Nth
 * one (capffi__alloc_fail_after) and check that each failure path is clean.
 */
CAPFFI__HIDDEN void *capffi__malloc(size_t n);
CAPFFI__HIDDEN void *capffi__calloc(size_t count, size_t size);
CAPFFI__HIDDEN void *capffi__realloc(void *p, size_t n);
CAPFFI__HIDDEN void capffi__free(void *p);
CAPFFI__HIDDEN char *capffi__strdup(const char *s);
/* Guarded memory for secrets (sodium_malloc), under the same hook. */
CAPFFI__HIDDEN void *capffi__secure_alloc(size_t n);
CAPFFI__HIDDEN void capffi__secure_free(void *p);

/* A libffi closure (writable address; *code gets the executable one),
 * under the same hook. */
CAPFFI__HIDDEN void *capffi__closure_alloc(void **code);
CAPFFI__HIDDEN void capffi__closure_free(void *closure);

/*
 * Test hook: the next n allocations succeed, the one after fails, and all
 * later ones succeed again. n < 0 turns the hook off. Process-wide.
 */
CAPFFI__HIDDEN void capffi__alloc_fail_after(long n);
/* Test hook: 1 if the hook made an allocation fail since it was armed. */
CAPFFI__HIDDEN int capffi__alloc_failed(void);
/* Test hook: blocks allocated through these functions and not yet freed. */
CAPFFI__HIDDEN long capffi__alloc_live(void);

/*
 * An arena: many small allocations freed together (a parsed signature and
 * its types). Allocations are 16-byte aligned and zeroed.
 */
struct capffi__arena {
    struct capffi__arena_block *head;
};
CAPFFI__HIDDEN void *capffi__arena_alloc(struct capffi__arena *a, size_t n);
CAPFFI__HIDDEN char *capffi__arena_strndup(struct capffi__arena *a,
                                           const char *s, size_t n);
CAPFFI__HIDDEN void capffi__arena_free(struct capffi__arena *a);

/* ---- uthash ----------------------------------------------------------- */

/* Out of memory is an error, never exit(); a failed HASH_ADD leaves
 * elt->hh.tbl == NULL and the element out of the table. */
#define HASH_NONFATAL_OOM 1
#define uthash_malloc(sz) capffi__malloc(sz)
#define uthash_free(ptr, sz) capffi__free(ptr)
#include <uthash.h>

/* ---- messages --------------------------------------------------------- */

#define CAPFFI__MSG_MAX 512

/*
 * Record the detail of a failure for capffi_ctx_errmsg and return code, so
 * a failing path reads `return capffi__fail(ctx, CAPFFI_EINVAL, "...")`.
 * ctx may be NULL (the thread's own buffer is used).
 */
CAPFFI__HIDDEN int capffi__fail(capffi_ctx *ctx, int code, const char *fmt, ...)
    CAPFFI__PRINTF(3, 4);
CAPFFI__HIDDEN int capffi__vfail(capffi_ctx *ctx, int code, const char *fmt,
                                 va_list ap) CAPFFI__PRINTF(3, 0);

/* Monotonic clock in nanoseconds. */
CAPFFI__HIDDEN int64_t capffi__now_ns(void);

#endif
