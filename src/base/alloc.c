/*
 * alloc.c - the one allocator, with a fail-the-Nth-allocation test hook.
 */
#include "base/internal.h"

#include <ffi.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Allocations left before the one that fails; negative means "never". */
static atomic_long fail_countdown = -1;
static atomic_int fail_hit;
/* Blocks handed out and not yet freed, for leak tests in any build. */
static atomic_long live;

long
capffi__alloc_live(void)
{
    return atomic_load(&live);
}

static void *
counted(void *p)
{
    if (p)
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    return p;
}

void
capffi__alloc_fail_after(long n)
{
    atomic_store(&fail_hit, 0);
    atomic_store(&fail_countdown, n);
}

int
capffi__alloc_failed(void)
{
    return atomic_load(&fail_hit);
}

/* True when the hook says this allocation must fail. */
static bool
should_fail(void)
{
    long cur = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    while (cur >= 0) {
        long next = cur == 0 ? -1 : cur - 1;
        if (atomic_compare_exchange_weak(&fail_countdown, &cur, next)) {
            if (cur == 0) {
                atomic_store(&fail_hit, 1);
                return true;
            }
            return false;
        }
    }
    return false;
}

void *
capffi__malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return counted(malloc(n ? n : 1));
}

void *
capffi__calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    return counted(calloc(count ? count : 1, size ? size : 1));
}

void *
capffi__realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    void *q = realloc(p, n ? n : 1);
    return p ? q : counted(q);
}

void
capffi__free(void *p)
{
    if (p)
        atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
    free(p);
}

char *
capffi__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = capffi__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void *
capffi__secure_alloc(size_t n)
{
    if (should_fail())
        return NULL;
    return counted(sodium_malloc(n));
}

void
capffi__secure_free(void *p)
{
    if (p) {
        atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
        sodium_free(p);
    }
}

void *
capffi__closure_alloc(void **code)
{
    if (should_fail())
        return NULL;
    return counted(ffi_closure_alloc(sizeof(ffi_closure), code));
}

void
capffi__closure_free(void *closure)
{
    if (closure) {
        atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
        ffi_closure_free(closure);
    }
}

/* ---- arena ------------------------------------------------------------ */

struct capffi__arena_block {
    struct capffi__arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

#define ARENA_BLOCK 2048

void *
capffi__arena_alloc(struct capffi__arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct capffi__arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        b = capffi__malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *
capffi__arena_strndup(struct capffi__arena *a, const char *s, size_t n)
{
    char *d = capffi__arena_alloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

void
capffi__arena_free(struct capffi__arena *a)
{
    struct capffi__arena_block *b = a->head;
    while (b) {
        struct capffi__arena_block *next = b->next;
        capffi__free(b);
        b = next;
    }
    a->head = NULL;
}
