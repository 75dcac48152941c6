/*
 * recycle.c - dead handles waiting for reuse, first in, first out (recycle.h).
 */
#include "base/recycle.h"

void *
capffi__recycle_take(struct capffi__recycle *p)
{
    if (p->n <= CAPFFI__RECYCLE_KEEP)
        return NULL;
    void *rec = p->ring[p->head];
    p->head = (p->head + 1) % p->cap;
    p->n--;
    return rec;
}

/* Double the ring, keeping the order: the oldest goes first again. */
static bool
grow(struct capffi__recycle *p)
{
    size_t cap = p->cap ? 2 * p->cap : 64;
    void **ring = capffi__calloc(cap, sizeof *ring);
    if (!ring)
        return false;
    for (size_t i = 0; i < p->n; i++)
        ring[i] = p->ring[(p->head + i) % p->cap];
    capffi__free(p->ring);
    p->ring = ring;
    p->cap = cap;
    p->head = 0;
    return true;
}

void
capffi__recycle_put(struct capffi__recycle *p, void *rec)
{
    if (p->n == p->cap && !grow(p)) {
        capffi__free(rec);
        return;
    }
    p->ring[(p->head + p->n) % p->cap] = rec;
    p->n++;
}

void
capffi__recycle_fini(struct capffi__recycle *p)
{
    for (size_t i = 0; i < p->n; i++)
        capffi__free(p->ring[(p->head + i) % p->cap]);
    capffi__free(p->ring);
    p->ring = NULL;
    p->cap = p->head = p->n = 0;
}
