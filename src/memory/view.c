/*
 * view.c - bounded views on memory (C4): every access is checked against
 * the view's bounds, access mode and token before a byte moves.
 */
#include <stdatomic.h>
#include <string.h>

#include "base/handle.h"
#include "base/maps.h"
#include "memory/view.h"
#include "memory/buf.h"
#include "perm/token.h"
#include "types/value.h"

#define VIEW_MAGIC 0x63617076u /* "capv" */
#define VIEW_ACCESS (CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE)

struct capffi_view {
    uint32_t magic;
    uint32_t access;  /* CAPFFI_VIEW_* */
    atomic_int state; /* CAPFFI__LIVE or CAPFFI__REVOKED */
    unsigned char *base;
    size_t len;
    capffi_ctx *ctx;
    capffi_buf *buf;         /* a view of a buffer: pinned; else NULL */
    struct capffi__tok *tok; /* the token it was made through, or NULL */
    bool pointers;           /* H3: may read pointers (its token has POINTER) */
    struct capffi__res res;
    struct capffi__link link; /* the context's list */
};

/* ---- the scalar types a view reads and writes -------------------------- */

/*
 * A view's types, in the order vtype() finds them: their words, value ops
 * (types/value.h), sizes and the one-compare range of the small integers
 * (capffi__vop_range's, written out so a write looks nothing up).
 */
struct vtype {
    const char *word;
    uint8_t op; /* enum capffi__vop */
    uint8_t size;
    bool address; /* reading one makes a pointer value (H3) */
    uint64_t off, span;
};

#define ANY UINT64_MAX
static const struct vtype vtypes[] = {
    { "bool", CAPFFI__V_BOOL, 1, false, 0, ANY },
    { "i8", CAPFFI__V_I8, 1, false, 0x80, 0xff },
    { "u8", CAPFFI__V_U8, 1, false, 0, 0xff },
    { "i16", CAPFFI__V_I16, 2, false, 0x8000, 0xffff },
    { "u16", CAPFFI__V_U16, 2, false, 0, 0xffff },
    { "i32", CAPFFI__V_I32, 4, false, 0x80000000, 0xffffffff },
    { "u32", CAPFFI__V_U32, 4, false, 0, 0xffffffff },
    { "i64", CAPFFI__V_W64, 8, false, 0, ANY },
    { "u64", CAPFFI__V_W64, 8, false, 0, ANY },
    { "isize", CAPFFI__V_W64, 8, false, 0, ANY },
    { "usize", CAPFFI__V_W64, 8, false, 0, ANY },
    { "f32", CAPFFI__V_F32, 4, false, 0, ANY },
    { "f64", CAPFFI__V_W64, 8, false, 0, ANY },
    { "pointer", CAPFFI__V_W64, 8, true, 0, ANY },
    { "function", CAPFFI__V_W64, 8, true, 0, ANY },
};
#undef ANY

_Static_assert(sizeof(void *) == 8 && sizeof(size_t) == 8,
               "the type table assumes LP64");

/* Index of a width suffix ("8", "16", "32", "64", "size") in the i/u rows
 * of vtypes, or -1. */
static int
width_row(const char *w)
{
    switch (w[0]) {
    case '8':
        return w[1] ? -1 : 0;
    case '1':
        return w[1] == '6' && !w[2] ? 1 : -1;
    case '3':
        return w[1] == '2' && !w[2] ? 2 : -1;
    case '6':
        return w[1] == '4' && !w[2] ? 3 : -1;
    case 's':
        return strcmp(w, "size") == 0 ? 4 : -1;
    default:
        return -1;
    }
}

/* The scalar type named `type`, or NULL. Called on every access, so it
 * decodes the name byte by byte instead of searching the table. */
static const struct vtype *
vtype(const char *type)
{
    int row;
    switch (type[0]) {
    case 'b':
        return strcmp(type, "bool") == 0 ? &vtypes[0] : NULL;
    case 'i':
    case 'u':
        /* i8 u8 i16 u16 i32 u32 i64 u64 isize usize: rows 1..10 */
        row = width_row(type + 1);
        return row < 0 ? NULL : &vtypes[1 + 2 * row + (type[0] == 'u')];
    case 'f':
        if (type[1] == '3' && type[2] == '2' && !type[3])
            return &vtypes[11];
        if (type[1] == '6' && type[2] == '4' && !type[3])
            return &vtypes[12];
        return strcmp(type, "function") == 0 ? &vtypes[14] : NULL;
    case 'p':
        return strcmp(type, "pointer") == 0 ? &vtypes[13] : NULL;
    default:
        return NULL;
    }
}

/* ---- making and freeing -------------------------------------------------- */

static void
view_on_revoke(struct capffi__res *r)
{
    capffi_view *v = capffi__container_of(r, capffi_view, res);
    atomic_store_explicit(&v->state, CAPFFI__REVOKED, memory_order_release);
}

static capffi_view *
alloc_view(capffi_ctx *ctx, const void *base, size_t len, uint32_t access)
{
    capffi_view *v = capffi__recycle_take(&capffi__views_of(ctx)->dead);
    if (v)
        memset(v, 0, sizeof *v);
    else
        v = capffi__calloc(1, sizeof *v);
    if (!v) {
        capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
        return NULL;
    }
    v->magic = VIEW_MAGIC;
    v->access = access;
    atomic_init(&v->state, CAPFFI__LIVE);
    v->base = (unsigned char *)(uintptr_t)base;
    v->len = len;
    v->ctx = ctx;
    v->res.on_revoke = view_on_revoke;
    return v;
}

static void
link_view(capffi_view *v)
{
    capffi__list_add(&capffi__views_of(v->ctx)->views, &v->link);
}

/* The rights a view with this access needs from its token. */
static uint32_t
rights_for(uint32_t access)
{
    uint32_t r = 0;
    if (access & CAPFFI_VIEW_READ)
        r |= CAPFFI_RIGHT_READ;
    if (access & CAPFFI_VIEW_WRITE)
        r |= CAPFFI_RIGHT_WRITE;
    if (access & CAPFFI_VIEW_UNBOUNDED)
        r |= CAPFFI_RIGHT_READ | CAPFFI_RIGHT_POINTER;
    return r;
}

static const char *
access_text(uint32_t access)
{
    static const char *const text[] = { "none", "read", "write", "read-write" };
    return text[access & VIEW_ACCESS];
}

/* Attach a view made through t, link it, audit it. */
static int
finish_view(capffi_view *v, struct capffi__tok *t, const char *target,
            const char *what, capffi_view **out)
{
    capffi_ctx *ctx = v->ctx;
    int rc = CAPFFI_OK;
    if (t) {
        v->tok = t;
        v->pointers = (t->rights & CAPFFI_RIGHT_POINTER) != 0;
        rc = capffi__token_attach(ctx, t, &v->res);
    }
    if (rc) {
        capffi__free(v);
    } else {
        link_view(v);
        *out = v;
    }
    if (t) {
        capffi__token_audit(ctx, CAPFFI_OP_VIEW_NEW, rc, CAPFFI_REASON_REVOKED,
                            t, rights_for(v->access), target, what);
    }
    return rc;
}

int
capffi_view_new(capffi_view **out, capffi_ctx *ctx, const capffi_token *tok,
                const void *ptr, size_t len, uint32_t access)
{
    if (out)
        *out = NULL;
    int rc = capffi__entry(ctx, CAPFFI_OP_VIEW_NEW, "capffi_view_new");
    if (rc)
        return rc;
    bool unbounded = access & CAPFFI_VIEW_UNBOUNDED;
    char target[64];
    snprintf(target, sizeof target, unbounded ? "%p+unbounded" : "%p+%zu", ptr,
             len);
    uint32_t rights = rights_for(access);
    if ((rc = capffi__safe_refuse(ctx, CAPFFI_OP_VIEW_NEW, "capffi_view_new",
                                  target)))
        return rc;
    struct capffi__tok *t = NULL;
    /* Verify before looking at the arguments: a holder without the right
     * learns nothing, and the denial is what gets audited. */
    rc = capffi__token_use(ctx, tok, rights ? rights : CAPFFI_RIGHT_READ, NULL,
                           CAPFFI_OP_VIEW_NEW, target, &t);
    if (rc)
        return rc;
    if (!out || !ptr)
        rc =
            capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL", out ? "ptr" : "out");
    else if (!(access & VIEW_ACCESS) ||
             (access & ~(VIEW_ACCESS | CAPFFI_VIEW_UNBOUNDED)))
        rc = capffi__fail(ctx, CAPFFI_EINVAL,
                          "access 0x%x: give CAPFFI_VIEW_READ and/or "
                          "CAPFFI_VIEW_WRITE, optionally CAPFFI_VIEW_UNBOUNDED",
                          access);
    else if (!unbounded && len > UINTPTR_MAX - (uintptr_t)ptr)
        rc = capffi__fail(ctx, CAPFFI_EINVAL,
                          "%zu bytes at %p run past the end of the address "
                          "space",
                          len, ptr);
    /* H3: a bounded view as long as the address space is an unbounded
     * one: offsets from any pointer would reach any address. Without the
     * pointer right, a view stays within the memory mapped at ptr. */
    else if (!unbounded && !(t->rights & CAPFFI_RIGHT_POINTER) &&
             !capffi__maps_within((uintptr_t)ptr, len,
                                  access & CAPFFI_VIEW_WRITE))
        rc = capffi__fail(ctx, CAPFFI_EPERM,
                          "%zu bytes at %p reach past the mapping there, or "
                          "it is not %s: a view beyond its mapping needs the "
                          "pointer right",
                          len, ptr,
                          access & CAPFFI_VIEW_WRITE ? "readable and writable"
                                                     : "readable");
    if (rc) {
        capffi__token_audit(ctx, CAPFFI_OP_VIEW_NEW, rc,
                            rc == CAPFFI_EPERM ? CAPFFI_REASON_RIGHT
                                               : CAPFFI_REASON_INVALID,
                            t, rights, target, "");
        return rc;
    }
    if (unbounded)
        len = UINTPTR_MAX - (uintptr_t)ptr;
    capffi_view *v = alloc_view(ctx, ptr, len, access);
    if (!v) {
        capffi__token_audit(ctx, CAPFFI_OP_VIEW_NEW, CAPFFI_ENOMEM,
                            CAPFFI_REASON_NOMEM, t, rights, target, "");
        return CAPFFI_ENOMEM;
    }
    return finish_view(v, t, target,
                       unbounded ? (access & CAPFFI_VIEW_WRITE
                                        ? "unbounded read-write"
                                        : "unbounded read")
                                 : access_text(access),
                       out);
}

/* The owner-thread and argument checks of the views made without a token
 * (capffi_view_of_buf, capffi_view_sub): no unbounded flag there. */
static int
derive_args(capffi_ctx *ctx, capffi_view **out, uint32_t access, const char *fn)
{
    int rc = capffi__ctx_owner_check(ctx, fn);
    if (rc)
        return rc;
    if (!out)
        return capffi__fail(ctx, CAPFFI_EINVAL, "out is NULL");
    if (!(access & VIEW_ACCESS) || (access & ~VIEW_ACCESS))
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "access 0x%x: give CAPFFI_VIEW_READ and/or "
                            "CAPFFI_VIEW_WRITE",
                            access);
    return CAPFFI_OK;
}

int
capffi_view_of_buf(capffi_view **out, capffi_buf *buf, uint32_t access)
{
    if (out)
        *out = NULL;
    int rc = capffi__buf_usable(buf, "capffi_view_of_buf");
    if (rc)
        return rc;
    capffi_ctx *ctx = buf->ctx;
    if ((rc = derive_args(ctx, out, access, "capffi_view_of_buf")))
        return rc;
    capffi_view *v = alloc_view(ctx, buf->data, buf->len, access);
    if (!v)
        return CAPFFI_ENOMEM;
    v->buf = buf;
    capffi__buf_hold(buf);
    return finish_view(v, NULL, NULL, NULL, out);
}

int
capffi_view_of_buf_tok(capffi_view **out, capffi_ctx *ctx,
                       const capffi_token *tok, capffi_buf *buf,
                       uint32_t access)
{
    if (out)
        *out = NULL;
    int rc = capffi__entry(ctx, CAPFFI_OP_VIEW_NEW, "capffi_view_of_buf_tok");
    if (rc)
        return rc;
    char target[64];
    snprintf(target, sizeof target, "buffer %p", (void *)buf);
    /* Its purpose is reading pointers out of host memory. */
    if ((rc = capffi__safe_refuse(ctx, CAPFFI_OP_VIEW_NEW,
                                  "capffi_view_of_buf_tok", target)))
        return rc;
    struct capffi__tok *t = NULL;
    rc = capffi__token_use(ctx, tok, CAPFFI_RIGHT_POINTER, NULL,
                           CAPFFI_OP_VIEW_NEW, target, &t);
    if (rc)
        return rc;
    if (!(rc = capffi__buf_usable(buf, "capffi_view_of_buf_tok")) &&
        buf->ctx != ctx)
        rc = capffi__fail(ctx, CAPFFI_EINVAL,
                          "capffi_view_of_buf_tok: the buffer belongs to "
                          "another context");
    if (!rc)
        rc = derive_args(ctx, out, access, "capffi_view_of_buf_tok");
    capffi_view *v = NULL;
    if (!rc && !(v = alloc_view(ctx, buf->data, buf->len, access)))
        rc = CAPFFI_ENOMEM;
    if (rc) {
        capffi__token_audit(ctx, CAPFFI_OP_VIEW_NEW, rc,
                            rc == CAPFFI_ENOMEM ? CAPFFI_REASON_NOMEM
                                                : CAPFFI_REASON_INVALID,
                            t, CAPFFI_RIGHT_POINTER, target, "");
        return rc;
    }
    v->buf = buf;
    capffi__buf_hold(buf);
    rc = finish_view(v, t, target, "buffer, pointers readable", out);
    if (rc)
        capffi__buf_unhold(buf);
    return rc;
}

void
capffi_view_free(capffi_view *v)
{
    if (!v || v->magic != VIEW_MAGIC)
        return;
    capffi_ctx *ctx = v->ctx;
    if (!capffi__ctx_on_owner(ctx)) {
        /* No status to return: refuse, say so, keep the view. */
        capffi__fail(ctx, CAPFFI_ETHREAD,
                     "capffi_view_free called off the owner thread; the "
                     "view was not freed");
        return;
    }
    capffi__list_remove(&capffi__views_of(ctx)->views, &v->link);
    if (v->tok)
        capffi__token_detach(ctx, &v->res);
    if (v->buf)
        capffi__buf_unhold(v->buf);
    capffi__audit_forget(ctx, v);
    v->magic = 0; /* recognised as no view until reused */
    capffi__recycle_put(&capffi__views_of(ctx)->dead, v);
}

void
capffi__view_free_all(capffi_ctx *ctx)
{
    struct capffi__link *k;
    while ((k = capffi__list_pop(&capffi__views_of(ctx)->views))) {
        capffi_view *v = capffi__container_of(k, capffi_view, link);
        v->magic = 0;
        capffi__free(v);
    }
    capffi__recycle_fini(&capffi__views_of(ctx)->dead);
}

size_t
capffi_view_len(const capffi_view *v)
{
    return v && v->magic == VIEW_MAGIC ? v->len : 0;
}

/* ---- access -------------------------------------------------------------- */

/*
 * A refused access: the message, an audit event with the reason, the
 * code. Out of line: the common path is the checks that pass.
 */
static __attribute__((noinline, cold)) int
refuse(const capffi_view *v, int code, capffi_reason why, size_t off, size_t n,
       const char *fmt, ...) CAPFFI__PRINTF(6, 7);

static int
refuse(const capffi_view *v, int code, capffi_reason why, size_t off, size_t n,
       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    capffi__vfail(v->ctx, code, fmt, ap);
    va_end(ap);
    char target[64];
    snprintf(target, sizeof target, "%p+%zu [%zu, +%zu)", (void *)v->base,
             v->len, off, n);
    /* A2: coalesced per view, so a loop of refused accesses leaves one
     * event a second with the count (the first refusal's target). */
    struct capffi__who who = capffi__token_who(v->tok);
    capffi__audit_refuse(v->ctx, v, CAPFFI_OP_VIEW_ACCESS, code, why, &who,
                         rights_for(v->access), target, "%s",
                         capffi_ctx_errmsg(v->ctx));
    return code;
}

/* May n bytes at off be accessed with `need`? */
static inline int
check(const capffi_view *v, uint32_t need, size_t off, size_t n)
{
    if (CAPFFI__UNLIKELY(!v || v->magic != VIEW_MAGIC))
        return capffi__fail(NULL, CAPFFI_EINVAL, "not a live capffi_view");
    if (CAPFFI__UNLIKELY(atomic_load_explicit(
                             &v->state, memory_order_acquire) != CAPFFI__LIVE))
        return refuse(v, CAPFFI_EREVOKED, CAPFFI_REASON_REVOKED, off, n,
                      "the view's token was revoked");
    if (CAPFFI__UNLIKELY(!(v->access & need)))
        return refuse(v, CAPFFI_EPERM, CAPFFI_REASON_RIGHT, off, n,
                      "the view is not %s",
                      need == CAPFFI_VIEW_READ ? "readable" : "writable");
    if (CAPFFI__UNLIKELY(off > v->len || n > v->len - off))
        return refuse(v, CAPFFI_EBOUNDS, CAPFFI_REASON_BOUNDS, off, n,
                      "%zu bytes at offset %zu do not fit in a view of %zu "
                      "bytes",
                      n, off, v->len);
    if (CAPFFI__UNLIKELY(v->buf && atomic_load_explicit(&v->buf->lent,
                                                        memory_order_acquire)))
        return refuse(v, CAPFFI_EBUSY, CAPFFI_REASON_INVALID, off, n,
                      "the view's buffer is lent to a nonblocking call");
    return CAPFFI_OK;
}

static __attribute__((noinline, cold)) int
bad_type(const capffi_view *v, const char *type)
{
    if (!v || v->magic != VIEW_MAGIC)
        return capffi__fail(NULL, CAPFFI_EINVAL, "not a live capffi_view");
    if (!type)
        return capffi__fail(v->ctx, CAPFFI_EINVAL, "type is NULL");
    return capffi__fail(v->ctx, CAPFFI_ETYPE,
                        "'%s' is not a scalar type a view can read or write "
                        "(strings: capffi_view_cstr; structs: sub-views)",
                        type);
}

/*
 * H3: bytes read as a pointer become a pointer value, which any bound
 * function's pointer parameter and capffi_view_new accept. Memory the
 * host filled (a buffer, a struct value) would turn any integer into a
 * pointer, so only a view made through a token with the pointer right
 * reads them.
 */
static __attribute__((noinline, cold)) int
no_pointers(const capffi_view *v, size_t off, const char *type)
{
    return refuse(v, CAPFFI_EPERM, CAPFFI_REASON_RIGHT, off, 8,
                  "reading a %s makes a pointer value: only a view made "
                  "through a token with the pointer right may (%s)",
                  type,
                  v->tok ? "its token lacks it"
                         : "this view was made without a token");
}

int
capffi_view_get(capffi_value *out, const capffi_view *v, size_t off,
                const char *type)
{
    const struct vtype *t = type ? vtype(type) : NULL;
    if (CAPFFI__UNLIKELY(!t || !out || !v || v->magic != VIEW_MAGIC)) {
        if (out)
            out->u64 = 0;
        return !out && t
                   ? capffi__fail(v && v->magic == VIEW_MAGIC ? v->ctx : NULL,
                                  CAPFFI_EINVAL, "out is NULL")
                   : bad_type(v, type);
    }
    int rc = check(v, CAPFFI_VIEW_READ, off, t->size);
    if (CAPFFI__UNLIKELY(!rc && t->address && !v->pointers))
        rc = no_pointers(v, off, type);
    if (CAPFFI__UNLIKELY(rc)) {
        out->u64 = 0;
        return rc;
    }
    capffi__value_load(out, t->op, v->base + off);
    return CAPFFI_OK;
}

static __attribute__((noinline, cold)) int
set_out_of_range(const capffi_view *v, const struct vtype *t, capffi_value val)
{
    int bits = t->size * 8;
    if (capffi__vop_signed(t->op))
        return capffi__fail(
            v->ctx, CAPFFI_ERANGE, "%s: %lld is outside [%lld, %lld]", t->word,
            (long long)val.i64, -(1LL << (bits - 1)), (1LL << (bits - 1)) - 1);
    return capffi__fail(v->ctx, CAPFFI_ERANGE, "%s: %llu is outside [0, %llu]",
                        t->word, (unsigned long long)val.u64,
                        (1ULL << bits) - 1);
}

int
capffi_view_set(capffi_view *v, size_t off, const char *type, capffi_value val)
{
    const struct vtype *t = type ? vtype(type) : NULL;
    if (CAPFFI__UNLIKELY(!t || !v || v->magic != VIEW_MAGIC))
        return bad_type(v, type);
    int rc = check(v, CAPFFI_VIEW_WRITE, off, t->size);
    if (CAPFFI__UNLIKELY(rc))
        return rc;
    /* The same one-compare range check as call arguments. */
    if (CAPFFI__UNLIKELY(val.u64 + t->off > t->span))
        return set_out_of_range(v, t, val);
    capffi__value_store(v->base + off, t->op, &val);
    return CAPFFI_OK;
}

int
capffi_view_cstr(const char **s, size_t *len, const capffi_view *v, size_t off)
{
    if (s)
        *s = NULL;
    if (len)
        *len = 0;
    int rc = check(v, CAPFFI_VIEW_READ, off, 0);
    if (rc)
        return rc;
    if (!s)
        return capffi__fail(v->ctx, CAPFFI_EINVAL, "s is NULL");
    const char *start = (const char *)v->base + off;
    const char *nul = memchr(start, '\0', v->len - off);
    if (!nul)
        return refuse(v, CAPFFI_EBOUNDS, CAPFFI_REASON_BOUNDS, off,
                      v->len - off,
                      "no NUL terminator in the %zu bytes from offset %zu to "
                      "the end of the view",
                      v->len - off, off);
    *s = start;
    if (len)
        *len = (size_t)(nul - start);
    return CAPFFI_OK;
}

int
capffi_view_copy(void *dst, const capffi_view *v, size_t off, size_t n)
{
    int rc = check(v, CAPFFI_VIEW_READ, off, n);
    if (rc)
        return rc;
    if (!dst && n)
        return capffi__fail(v->ctx, CAPFFI_EINVAL, "dst is NULL");
    if (n)
        memcpy(dst, v->base + off, n);
    return CAPFFI_OK;
}

int
capffi_view_write(capffi_view *v, size_t off, const void *src, size_t n)
{
    int rc = check(v, CAPFFI_VIEW_WRITE, off, n);
    if (rc)
        return rc;
    if (!src && n)
        return capffi__fail(v->ctx, CAPFFI_EINVAL, "src is NULL");
    if (n)
        memmove(v->base + off, src, n);
    return CAPFFI_OK;
}

int
capffi_view_sub(capffi_view **out, const capffi_view *v, size_t off, size_t len,
                uint32_t access)
{
    if (out)
        *out = NULL;
    if (!v || v->magic != VIEW_MAGIC)
        return capffi__fail(NULL, CAPFFI_EINVAL, "not a live capffi_view");
    capffi_ctx *ctx = v->ctx;
    int rc = derive_args(ctx, out, access, "capffi_view_sub");
    if (rc)
        return rc;
    if (access & ~v->access)
        return refuse(v, CAPFFI_EPERM, CAPFFI_REASON_WIDEN, off, len,
                      "a sub-view cannot be %s: the view is %s",
                      access_text(access), access_text(v->access));
    /* Any access the view has: only the bounds and state matter here. */
    rc = check(v, v->access & VIEW_ACCESS, off, len);
    if (rc)
        return rc;
    capffi_view *sub = alloc_view(ctx, v->base + off, len, access);
    if (!sub)
        return CAPFFI_ENOMEM;
    if (v->buf) {
        sub->buf = v->buf;
        capffi__buf_hold(v->buf);
        return finish_view(sub, NULL, NULL, NULL, out);
    }
    char target[64];
    snprintf(target, sizeof target, "%p+%zu", (void *)sub->base, len);
    return finish_view(sub, v->tok, target, "sub-view", out);
}
