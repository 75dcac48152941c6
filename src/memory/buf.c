/*
 * buf.c - host buffers handed to native code: pins, lending, deferred
 * free and the recycler that recognises a second free (C5).
 */
#include "memory/buf.h"

#include <string.h>

#include "perm/audit.h"

static const char *
state_text(uint32_t magic)
{
    switch (magic) {
    case CAPFFI__BUF_FREEING:
        return "freed (its release waits for pins or a lend to end)";
    case CAPFFI__BUF_BURYING:
    case CAPFFI__BUF_DEAD:
        return "freed";
    default:
        return "not a capffi_buf";
    }
}

int
capffi__buf_usable(const capffi_buf *buf, const char *fn)
{
    if (!buf)
        return capffi__fail(NULL, CAPFFI_EINVAL, "%s: buffer is NULL", fn);
    uint32_t magic = buf->magic;
    if (magic != CAPFFI__BUF_LIVE)
        return capffi__fail(
            magic == CAPFFI__BUF_FREEING || magic == CAPFFI__BUF_BURYING ||
                    magic == CAPFFI__BUF_DEAD
                ? buf->ctx
                : NULL,
            CAPFFI_EINVAL, "%s: the buffer is %s", fn, state_text(magic));
    if (atomic_load_explicit(&buf->lent, memory_order_acquire))
        return capffi__fail(buf->ctx, CAPFFI_EBUSY,
                            "%s: the buffer is lent to a nonblocking call", fn);
    return CAPFFI_OK;
}

int
capffi__buf_call_begin(capffi_ctx *ctx, capffi_buf *buf, void **out)
{
    *out = NULL;
    if (!buf)
        return CAPFFI_OK;
    if (buf->magic != CAPFFI__BUF_LIVE)
        return capffi__fail(ctx, CAPFFI_EINVAL, "a buffer argument is %s",
                            state_text(buf->magic));
    /* Hold first, then look again: a free that ran in between either saw
     * the hold (and deferred) or is seen here (and the hold is undone). */
    atomic_fetch_add(&buf->calls, 1);
    if (buf->magic != CAPFFI__BUF_LIVE) {
        capffi__buf_call_end(buf);
        return capffi__fail(ctx, CAPFFI_EINVAL, "a buffer argument is %s",
                            state_text(buf->magic));
    }
    if (atomic_load_explicit(&buf->lent, memory_order_acquire)) {
        capffi__buf_call_end(buf);
        return capffi__fail(ctx, CAPFFI_EBUSY,
                            "a buffer argument is lent to a nonblocking call");
    }
    *out = buf->len ? buf->data : NULL;
    return CAPFFI_OK;
}

static int
make(capffi_buf **out, capffi_ctx *ctx, void *mem, size_t len, bool owned,
     capffi_release_fn release, void *payload)
{
    capffi_buf *b = capffi__recycle_take(&capffi__bufs_of(ctx)->bufq.dead);
    if (b)
        memset(b, 0, sizeof *b);
    else if (!(b = capffi__calloc(1, sizeof *b)))
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    b->magic = CAPFFI__BUF_LIVE;
    b->ctx = ctx;
    b->data = mem;
    b->len = len;
    b->owned = owned;
    b->release = release;
    b->payload = payload;
    atomic_init(&b->lent, false);
    atomic_init(&b->pins, 0);
    atomic_init(&b->views, 0);
    atomic_init(&b->calls, 0);
    capffi__list_add(&capffi__bufs_of(ctx)->bufs, &b->link);
    *out = b;
    return CAPFFI_OK;
}

int
capffi_buf_new(capffi_buf **out, capffi_ctx *ctx, size_t len)
{
    if (out)
        *out = NULL;
    if (!ctx || !out)
        return capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL",
                            ctx ? "out" : "ctx");
    int rc = capffi__ctx_owner_check(ctx, "capffi_buf_new");
    if (rc)
        return rc;
    capffi__buf_reap(ctx);
    void *mem = capffi__calloc(1, len ? len : 1);
    if (!mem)
        return capffi__fail(ctx, CAPFFI_ENOMEM, "cannot allocate %zu bytes",
                            len);
    rc = make(out, ctx, mem, len, true, NULL, NULL);
    if (rc)
        capffi__free(mem);
    return rc;
}

int
capffi_buf_wrap(capffi_buf **out, capffi_ctx *ctx, void *mem, size_t len,
                capffi_release_fn release, void *payload)
{
    if (out)
        *out = NULL;
    if (!ctx || !out)
        return capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL",
                            ctx ? "out" : "ctx");
    int rc = capffi__ctx_owner_check(ctx, "capffi_buf_wrap");
    if (rc)
        return rc;
    if (!mem && len)
        return capffi__fail(ctx, CAPFFI_EINVAL, "mem is NULL but len is %zu",
                            len);
    return make(out, ctx, mem, len, false, release, payload);
}

int
capffi_buf_data(void **ptr, size_t *len, capffi_buf *buf)
{
    if (ptr)
        *ptr = NULL;
    if (len)
        *len = 0;
    int rc = capffi__buf_usable(buf, "capffi_buf_data");
    if (rc)
        return rc;
    if (ptr)
        *ptr = buf->data;
    if (len)
        *len = buf->len;
    return CAPFFI_OK;
}

size_t
capffi_buf_pins(const capffi_buf *buf)
{
    if (!buf ||
        (buf->magic != CAPFFI__BUF_LIVE && buf->magic != CAPFFI__BUF_FREEING))
        return 0;
    return atomic_load_explicit(&buf->pins, memory_order_relaxed) +
           atomic_load_explicit(&buf->views, memory_order_relaxed);
}

/* Give the bytes back; the struct waits, dead, for reuse. */
static void
bury(capffi_buf *b)
{
    capffi_ctx *ctx = b->ctx;
    capffi__list_remove(&capffi__bufs_of(ctx)->bufs, &b->link);
    if (b->owned)
        capffi__free(b->data);
    else if (b->release)
        b->release(b->payload, b->data);
    b->magic = CAPFFI__BUF_DEAD;
    b->data = NULL;
    capffi__recycle_put(&capffi__bufs_of(ctx)->bufq.dead, b);
}

/*
 * Claim a freed buffer that nothing holds any more for burial: true for
 * exactly one caller, however many threads let go of it at once.
 */
static bool
claim(capffi_buf *b)
{
    if (b->magic != CAPFFI__BUF_FREEING ||
        atomic_load_explicit(&b->pins, memory_order_acquire) != 0 ||
        atomic_load_explicit(&b->views, memory_order_acquire) != 0 ||
        atomic_load_explicit(&b->lent, memory_order_acquire) ||
        atomic_load(&b->calls) != 0)
        return false;
    uint32_t freeing = CAPFFI__BUF_FREEING;
    return atomic_compare_exchange_strong(&b->magic, &freeing,
                                          CAPFFI__BUF_BURYING);
}

/* Release a freed buffer once nothing holds it (owner thread). */
static void
settle(capffi_buf *b)
{
    if (claim(b))
        bury(b);
}

void
capffi__buf_call_end(capffi_buf *buf)
{
    if (!buf || atomic_fetch_sub(&buf->calls, 1) != 1 || !claim(buf))
        return;
    capffi_ctx *ctx = buf->ctx;
    if (capffi__ctx_on_owner(ctx)) {
        bury(buf);
        return;
    }
    /* Its list, the recycler and the release function belong to the
     * owner thread: leave the burial to it. */
    struct capffi_buf *top = atomic_load(&capffi__bufs_of(ctx)->bufq.to_bury);
    do
        buf->settle_next = top;
    while (!atomic_compare_exchange_weak(&capffi__bufs_of(ctx)->bufq.to_bury,
                                         &top, buf));
}

void
capffi__buf_reap(capffi_ctx *ctx)
{
    if (!atomic_load_explicit(&capffi__bufs_of(ctx)->bufq.to_bury,
                              memory_order_relaxed))
        return;
    struct capffi_buf *b =
        atomic_exchange(&capffi__bufs_of(ctx)->bufq.to_bury, NULL);
    while (b) {
        struct capffi_buf *next = b->settle_next;
        bury(b);
        b = next;
    }
}

void
capffi__buf_pin(capffi_buf *buf)
{
    atomic_fetch_add_explicit(&buf->pins, 1, memory_order_relaxed);
}

void
capffi__buf_hold(capffi_buf *buf)
{
    atomic_fetch_add_explicit(&buf->views, 1, memory_order_relaxed);
}

void
capffi__buf_unhold(capffi_buf *buf)
{
    atomic_fetch_sub_explicit(&buf->views, 1, memory_order_acq_rel);
    settle(buf);
}

int
capffi_buf_unpin(capffi_buf *buf)
{
    if (!buf ||
        (buf->magic != CAPFFI__BUF_LIVE && buf->magic != CAPFFI__BUF_FREEING))
        return capffi__fail(buf && buf->magic == CAPFFI__BUF_DEAD ? buf->ctx
                                                                  : NULL,
                            CAPFFI_EINVAL, "capffi_buf_unpin: the buffer is %s",
                            buf ? state_text(buf->magic) : "NULL");
    if (!capffi__ctx_on_owner(buf->ctx))
        return capffi__fail(buf->ctx, CAPFFI_ETHREAD,
                            "capffi_buf_unpin called off the owner thread");
    if (atomic_load_explicit(&buf->pins, memory_order_relaxed) == 0)
        return capffi__fail(buf->ctx, CAPFFI_EINVAL,
                            "capffi_buf_unpin: the buffer is not pinned by "
                            "capffi_ptr_of");
    atomic_fetch_sub_explicit(&buf->pins, 1, memory_order_acq_rel);
    settle(buf);
    return CAPFFI_OK;
}

int
capffi__buf_lend(capffi_buf *buf)
{
    int rc = capffi__buf_usable(buf, "lending a buffer");
    if (rc)
        return rc;
    atomic_store_explicit(&buf->lent, true, memory_order_release);
    return CAPFFI_OK;
}

void
capffi__buf_unlend(capffi_buf *buf)
{
    atomic_store_explicit(&buf->lent, false, memory_order_release);
    settle(buf);
}

/*
 * A second free, a free off the owner thread or of something that is not
 * a buffer cannot return an error: it is refused, leaves a message and an
 * audit event, and changes nothing.
 */
static void
refuse_free(capffi_ctx *ctx, int code, const char *why)
{
    capffi__fail(ctx, code, "capffi_buf_free: %s", why);
    if (ctx)
        capffi__audit_emit(ctx, CAPFFI_OP_BUF_FREE, code,
                           code == CAPFFI_ETHREAD ? CAPFFI_REASON_THREAD
                                                  : CAPFFI_REASON_INVALID,
                           NULL, 0, "", "capffi_buf_free: %s", why);
}

void
capffi_buf_free(capffi_buf *buf)
{
    if (!buf)
        return;
    switch (atomic_load(&buf->magic)) {
    case CAPFFI__BUF_LIVE:
        break;
    case CAPFFI__BUF_FREEING:
    case CAPFFI__BUF_BURYING:
    case CAPFFI__BUF_DEAD:
        refuse_free(buf->ctx, CAPFFI_EINVAL, "the buffer was already freed");
        return;
    default:
        refuse_free(NULL, CAPFFI_EINVAL, "not a capffi_buf");
        return;
    }
    if (!capffi__ctx_on_owner(buf->ctx)) {
        refuse_free(buf->ctx, CAPFFI_ETHREAD, "called off the owner thread");
        return;
    }
    capffi__buf_reap(buf->ctx);
    buf->magic = CAPFFI__BUF_FREEING; /* then settle reads the holds */
    settle(buf);
}

void
capffi__buf_free_all(capffi_ctx *ctx)
{
    /* Pins, lends and calls cannot outlive the context: release
     * everything. Buffers waiting in to_bury are still in the list. */
    atomic_store(&capffi__bufs_of(ctx)->bufq.to_bury, NULL);
    while (capffi__bufs_of(ctx)->bufs.head)
        bury(capffi__container_of(capffi__bufs_of(ctx)->bufs.head, capffi_buf,
                                  link));
    capffi__recycle_fini(&capffi__bufs_of(ctx)->bufq.dead);
}
