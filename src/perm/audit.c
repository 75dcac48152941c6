/*
 * audit.c - the audit trail: sink, in-memory recorder, JSON Lines.
 *
 * Threat answered here: T6 (events carry token ids and labels, never tags
 * or the secret; nothing here can reach either).
 */
#include "perm/audit.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct capffi__rec {
    capffi_event ev;
    char label[CAPFFI_LABEL_MAX + 1];
    char *strings; /* target NUL detail NUL; NULL when out of memory */
    size_t next;   /* the next slot of its class's list, or of the free list */
};

#define NONE SIZE_MAX

int
capffi__audit_init(struct capffi__audit *a)
{
    memset(a, 0, sizeof *a);
    a->window_ns = 1000000000;
    return pthread_mutex_init(&a->lock, NULL) ? CAPFFI_ENOMEM : CAPFFI_OK;
}

/* Empty the recorder: every slot free, nothing dropped. */
static void
ring_reset(struct capffi__audit *a)
{
    for (size_t i = 0; i < a->cap; i++) {
        capffi__free(a->ring[i].strings);
        memset(&a->ring[i], 0, sizeof a->ring[i]);
        a->ring[i].next = i + 1 < a->cap ? i + 1 : NONE;
    }
    a->free = a->cap ? 0 : NONE;
    for (int t = 0; t < CAPFFI__TIERS; t++) {
        a->tier[t].head = a->tier[t].tail = NONE;
        a->tier[t].len = 0;
    }
    a->len = 0;
    a->order_stale = false;
    a->dropped = 0;
    memset(a->dropped_op, 0, sizeof a->dropped_op);
}

static void deliver(struct capffi__audit *a, capffi_event *ev);
static void flush_slot(struct capffi__audit *a, struct capffi__coalesce *c);

void
capffi__audit_fini(struct capffi__audit *a)
{
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < CAPFFI__AUDIT_COALESCE; i++) {
        struct capffi__coalesce *c = &a->coalesce[i];
        if (c->pending)
            flush_slot(a, c);
        capffi__free(c->strings);
    }
    ring_reset(a);
    pthread_mutex_unlock(&a->lock);
    capffi__free(a->ring);
    capffi__free(a->order);
    pthread_mutex_destroy(&a->lock);
}

static void
update_listening(struct capffi__audit *a)
{
    atomic_store(&a->listening, a->sink != NULL || a->cap != 0);
}

/*
 * Which class the recorder keeps an event in (A1). Successes of the
 * operations a script can repeat in a loop (checks, queries, calls, views,
 * pointers, invocations, frees, and what any token holder may do without
 * a right: attenuating, revoking its own descendants, defining type
 * names) are bulk; every refusal or failure is a denial; the rest grant
 * power (minted tokens, permissions, libraries, bindings, callbacks) and
 * are kept longest.
 */
static int
tier_of(const capffi_event *ev)
{
    if (ev->status != CAPFFI_OK)
        return CAPFFI__TIER_DENIAL;
    switch (ev->op) {
    case CAPFFI_OP_TOKEN_CHECK:
    case CAPFFI_OP_TOKEN_ATTENUATE:
    case CAPFFI_OP_TOKEN_REVOKE:
    case CAPFFI_OP_TYPE_DEFINE:
    case CAPFFI_OP_PERM_QUERY:
    case CAPFFI_OP_FN_CALL:
    case CAPFFI_OP_CB_INVOKE:
    case CAPFFI_OP_PTR_OF:
    case CAPFFI_OP_PTR_FROM_ADDR:
    case CAPFFI_OP_VIEW_NEW:
    case CAPFFI_OP_VIEW_ACCESS:
    case CAPFFI_OP_BUF_FREE:
    case CAPFFI_OP_CTX_POLL:
    case CAPFFI_OP_JOB_CANCEL:
        return CAPFFI__TIER_BULK;
    default:
        return CAPFFI__TIER_CONTROL;
    }
}

static void
count_drop(struct capffi__audit *a, capffi_op op)
{
    a->dropped++;
    if (op >= 0 && op < CAPFFI_OP__COUNT)
        a->dropped_op[op]++;
}

/*
 * How many events of a class a higher class may not evict: denials keep a
 * quarter of the recorder against a flood of control-plane decisions (a
 * principal that can repeat one, binding or defining type names, must not
 * wash the refusals out); successes keep nothing.
 */
static size_t
reserve(const struct capffi__audit *a, int tier)
{
    return tier == CAPFFI__TIER_DENIAL ? a->cap / 4 : 0;
}

/*
 * Record ev. A full recorder makes room by dropping the oldest event of
 * the lowest class below ev's that holds more than its reserve, else the
 * oldest of ev's own class; when that class is empty (every recorded
 * event is of a higher class, or reserved), ev itself is dropped. So a
 * flood of successes never evicts a denial or a control-plane decision, a
 * flood of denials never evicts a control-plane decision, and a flood of
 * control-plane decisions leaves the denials their reserve (A1). Either
 * way the drop is counted by op. With the lock held.
 */
static void
record(struct capffi__audit *a, const capffi_event *ev)
{
    int tier = tier_of(ev);
    size_t slot;
    if (a->free != NONE) {
        slot = a->free;
        a->free = a->ring[slot].next;
        a->len++;
    } else {
        int victim = 0;
        while (victim < tier && a->tier[victim].len <= reserve(a, victim))
            victim++;
        if (a->tier[victim].len == 0) {
            count_drop(a, ev->op);
            return;
        }
        slot = a->tier[victim].head;
        a->tier[victim].head = a->ring[slot].next;
        if (--a->tier[victim].len == 0)
            a->tier[victim].tail = NONE;
        count_drop(a, a->ring[slot].ev.op);
        capffi__free(a->ring[slot].strings);
    }
    struct capffi__rec *r = &a->ring[slot];
    size_t nt = strlen(ev->target), nd = strlen(ev->detail);
    r->ev = *ev;
    snprintf(r->label, sizeof r->label, "%s", ev->label);
    r->ev.label = r->label;
    r->strings = capffi__malloc(nt + nd + 2);
    if (r->strings) {
        memcpy(r->strings, ev->target, nt + 1);
        memcpy(r->strings + nt + 1, ev->detail, nd + 1);
        r->ev.target = r->strings;
        r->ev.detail = r->strings + nt + 1;
    } else {
        r->ev.target = r->ev.detail = "";
    }
    r->next = NONE;
    if (a->tier[tier].len++)
        a->ring[a->tier[tier].tail].next = slot;
    else
        a->tier[tier].head = slot;
    a->tier[tier].tail = slot;
    a->order_stale = true;
}

/*
 * Make a->order list the recorded slots oldest first: a merge of the
 * classes' lists, each already in seq order. With the lock held.
 */
static void
order_fresh(struct capffi__audit *a)
{
    if (!a->order_stale)
        return;
    size_t at[CAPFFI__TIERS];
    for (int t = 0; t < CAPFFI__TIERS; t++)
        at[t] = a->tier[t].head;
    for (size_t n = 0; n < a->len; n++) {
        int best = -1;
        for (int t = 0; t < CAPFFI__TIERS; t++)
            if (at[t] != NONE &&
                (best < 0 || a->ring[at[t]].ev.seq < a->ring[at[best]].ev.seq))
                best = t;
        a->order[n] = at[best];
        at[best] = a->ring[at[best]].next;
    }
    a->order_stale = false;
}

/* ---- escaping (A3) ------------------------------------------------------ */

/*
 * The code point of the valid UTF-8 sequence at s, its length in *len; 0
 * in *len when s does not start one.
 */
static unsigned
utf8_decode(const unsigned char *s, size_t *len)
{
    size_t n;
    unsigned min, cp;
    *len = 0;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2, min = 0x80, cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3, min = 0x800, cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4, min = 0x10000, cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *len = n;
    return cp;
}

/*
 * Code points a terminal acts on rather than shows: the C1 controls (CSI
 * is U+009B) and the bidirectional overrides and isolates, which reorder
 * what a reader sees.
 */
static bool
acts_on_terminal(unsigned cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x200e || cp == 0x200f ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/*
 * Escape src into dst (cap bytes, always NUL-terminated when cap > 0):
 * a backslash becomes "\\", newline, tab and carriage return "\n", "\t"
 * and "\r", every other byte below 0x20, 0x7f, each byte of a sequence
 * that is not valid UTF-8 and each byte of a code point that acts on a
 * terminal "\xHH" (lower-case hex); the rest is copied. Output stops at
 * the last whole piece that fits. Returns the length of the full escaped
 * text; *changed tells whether it differs from src.
 */
static size_t
escape(char *dst, size_t cap, const char *src, bool *changed)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0, written = 0;
    bool room = cap > 0;
    *changed = false;
    for (const unsigned char *p = (const unsigned char *)src; *p;) {
        char piece[16];
        size_t k = 0, len = 1;
        unsigned cp = 0;
        if (*p >= 0x80)
            cp = utf8_decode(p, &len);
        if (*p == '\\') {
            piece[k++] = '\\';
            piece[k++] = '\\';
        } else if (*p == '\n' || *p == '\t' || *p == '\r') {
            piece[k++] = '\\';
            piece[k++] = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
        } else if (*p < 0x20 || *p == 0x7f || len == 0) {
            len = 1;
            piece[k++] = '\\';
            piece[k++] = 'x';
            piece[k++] = hex[*p >> 4];
            piece[k++] = hex[*p & 15];
        } else if (*p >= 0x80 && acts_on_terminal(cp)) {
            for (size_t i = 0; i < len; i++) {
                piece[k++] = '\\';
                piece[k++] = 'x';
                piece[k++] = hex[p[i] >> 4];
                piece[k++] = hex[p[i] & 15];
            }
        } else {
            memcpy(piece, p, len);
            k = len;
        }
        if (k != len || memcmp(piece, p, len) != 0)
            *changed = true;
        if (room && written + k < cap) {
            memcpy(dst + written, piece, k);
            written += k;
        } else {
            room = false;
        }
        n += k;
        p += len;
    }
    if (cap)
        dst[written] = '\0';
    return n;
}

/*
 * The escaped target and detail of one event. When neither needs escaping
 * (the common case) the caller's strings are used as they are; otherwise
 * they go to the heap, or, out of memory, to small buffers here, cut short.
 */
struct texts {
    const char *target, *detail;
    char *heap;
    char small_target[128], small_detail[256];
};

static void
texts_make(struct texts *x, const char *target, const char *detail)
{
    bool ct, cd;
    size_t nt = escape(NULL, 0, target, &ct);
    size_t nd = escape(NULL, 0, detail, &cd);
    x->target = target;
    x->detail = detail;
    x->heap = NULL;
    if (!ct && !cd)
        return;
    x->heap = capffi__malloc(nt + nd + 2);
    if (x->heap) {
        escape(x->heap, nt + 1, target, &ct);
        escape(x->heap + nt + 1, nd + 1, detail, &cd);
        x->target = x->heap;
        x->detail = x->heap + nt + 1;
    } else {
        escape(x->small_target, sizeof x->small_target, target, &ct);
        escape(x->small_detail, sizeof x->small_detail, detail, &cd);
        x->target = x->small_target;
        x->detail = x->small_detail;
    }
}

/* ---- emission ----------------------------------------------------------- */

static int64_t
realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Number ev, then hand it to the sink and the recorder. With the lock held. */
static void
deliver(struct capffi__audit *a, capffi_event *ev)
{
    ev->seq = ++a->seq;
    if (a->sink)
        a->sink(a->payload, ev);
    if (a->cap)
        record(a, ev);
}

/*
 * The event for the refusals coalesced in c: its count is the number of
 * refusals since the object's last event. A new window opens, so the next
 * event for the object comes a window later at the earliest. With the lock
 * held.
 */
static void
flush_slot(struct capffi__audit *a, struct capffi__coalesce *c)
{
    capffi_event ev;
    memset(&ev, 0, sizeof ev);
    ev.time_ns = realtime_ns();
    ev.op = c->op;
    ev.status = c->status;
    ev.reason = c->reason;
    ev.token_id = c->token_id;
    ev.parent_id = c->parent_id;
    ev.label = c->label;
    ev.rights = c->rights;
    ev.target = c->strings ? c->strings : "";
    ev.detail = c->strings ? c->strings + strlen(c->strings) + 1 : "";
    ev.count = c->pending;
    c->pending = 0;
    c->start_ns = capffi__now_ns();
    a->n_pending--;
    deliver(a, &ev);
}

/* Deliver the coalesced refusals whose window has ended. Lock held. */
static void
flush_expired(struct capffi__audit *a, int64_t now)
{
    for (size_t i = 0; i < CAPFFI__AUDIT_COALESCE && a->n_pending; i++) {
        struct capffi__coalesce *c = &a->coalesce[i];
        if (c->pending && now - c->start_ns >= a->window_ns)
            flush_slot(a, c);
    }
}

/* Fill the fields every event shares; target and detail already escaped. */
static void
event_make(capffi_event *ev, capffi_op op, int status, capffi_reason reason,
           const struct capffi__who *who, uint32_t rights,
           const struct texts *x)
{
    memset(ev, 0, sizeof *ev);
    ev->time_ns = realtime_ns();
    ev->op = op;
    ev->status = status;
    ev->reason = reason;
    ev->token_id = who ? who->token_id : 0;
    ev->parent_id = who ? who->parent_id : 0;
    ev->label = who && who->label ? who->label : "";
    ev->rights = rights;
    ev->target = x->target;
    ev->detail = x->detail;
    ev->count = 1;
}

/*
 * Format the detail into the caller's buffer, escape the texts into x (the
 * caller frees x->heap) and fill ev: the event both emitters build.
 */
static void event_build(capffi_event *ev, struct texts *x,
                        char detail[CAPFFI__MSG_MAX], capffi_op op, int status,
                        capffi_reason reason, const struct capffi__who *who,
                        uint32_t rights, const char *target, const char *fmt,
                        va_list ap) CAPFFI__PRINTF(10, 0);

static void
event_build(capffi_event *ev, struct texts *x, char detail[CAPFFI__MSG_MAX],
            capffi_op op, int status, capffi_reason reason,
            const struct capffi__who *who, uint32_t rights, const char *target,
            const char *fmt, va_list ap)
{
    vsnprintf(detail, CAPFFI__MSG_MAX, fmt, ap);
    texts_make(x, target ? target : "", detail);
    event_make(ev, op, status, reason, who, rights, x);
}

void
capffi__audit_emit(capffi_ctx *ctx, capffi_op op, int status,
                   capffi_reason reason, const struct capffi__who *who,
                   uint32_t rights, const char *target, const char *fmt, ...)
{
    if (!ctx || !capffi__audit_on(ctx))
        return;
    char detail[CAPFFI__MSG_MAX];
    struct texts x;
    capffi_event ev;
    va_list ap;
    va_start(ap, fmt);
    event_build(&ev, &x, detail, op, status, reason, who, rights, target, fmt,
                ap);
    va_end(ap);

    struct capffi__audit *a = &capffi__audit_of(ctx)->audit;
    pthread_mutex_lock(&a->lock);
    if (a->n_pending)
        flush_expired(a, capffi__now_ns());
    deliver(a, &ev);
    pthread_mutex_unlock(&a->lock);
    capffi__free(x.heap);
}

/* The slot coalescing object's refusals with this op and status, or NULL. */
static struct capffi__coalesce *
slot_find(struct capffi__audit *a, const void *object, capffi_op op, int status)
{
    for (size_t i = 0; i < CAPFFI__AUDIT_COALESCE; i++) {
        struct capffi__coalesce *c = &a->coalesce[i];
        if (c->object == object && c->op == op && c->status == status)
            return c;
    }
    return NULL;
}

/*
 * A slot for a new object: a free one, one whose window ended with nothing
 * pending, or else the one opened longest ago, whose count is delivered
 * first so that no refusal goes uncounted. Lock held.
 */
static struct capffi__coalesce *
slot_take(struct capffi__audit *a, int64_t now)
{
    struct capffi__coalesce *oldest = &a->coalesce[0];
    for (size_t i = 0; i < CAPFFI__AUDIT_COALESCE; i++) {
        struct capffi__coalesce *c = &a->coalesce[i];
        if (!c->object || (!c->pending && now - c->start_ns >= a->window_ns))
            return c;
        if (c->start_ns < oldest->start_ns)
            oldest = c;
    }
    if (oldest->pending)
        flush_slot(a, oldest);
    return oldest;
}

/* Count a refusal of an object whose window is open. Lock held. */
static bool
coalesced(struct capffi__audit *a, const void *object, capffi_op op, int status,
          int64_t now)
{
    struct capffi__coalesce *c = slot_find(a, object, op, status);
    if (!c || now - c->start_ns >= a->window_ns)
        return false;
    if (c->pending++ == 0)
        a->n_pending++;
    return true;
}

void
capffi__audit_refuse(capffi_ctx *ctx, const void *object, capffi_op op,
                     int status, capffi_reason reason,
                     const struct capffi__who *who, uint32_t rights,
                     const char *target, const char *fmt, ...)
{
    if (!ctx || !capffi__audit_on(ctx))
        return;
    struct capffi__audit *a = &capffi__audit_of(ctx)->audit;
    /* Most refusals of a loop end here: counted, nothing formatted. */
    pthread_mutex_lock(&a->lock);
    bool done = coalesced(a, object, op, status, capffi__now_ns());
    pthread_mutex_unlock(&a->lock);
    if (done)
        return;

    char detail[CAPFFI__MSG_MAX];
    struct texts x;
    capffi_event ev;
    va_list ap;
    va_start(ap, fmt);
    event_build(&ev, &x, detail, op, status, reason, who, rights, target, fmt,
                ap);
    va_end(ap);
    size_t nt = strlen(x.target), nd = strlen(x.detail);
    char *copy = capffi__malloc(nt + nd + 2);
    if (copy) {
        memcpy(copy, x.target, nt + 1);
        memcpy(copy + nt + 1, x.detail, nd + 1);
    }

    pthread_mutex_lock(&a->lock);
    int64_t now = capffi__now_ns();
    /* Another thread may have opened the window meanwhile. */
    if (coalesced(a, object, op, status, now)) {
        pthread_mutex_unlock(&a->lock);
        capffi__free(copy);
        capffi__free(x.heap);
        return;
    }
    struct capffi__coalesce *c = slot_find(a, object, op, status);
    if (c) {
        /* The window ended: this event stands for the refusals counted
         * in it as well. */
        ev.count += c->pending;
        if (c->pending)
            a->n_pending--;
        c->pending = 0;
        c->start_ns = now;
        capffi__free(copy);
    }
    if (a->n_pending)
        flush_expired(a, now);
    if (!c) {
        c = slot_take(a, now);
        capffi__free(c->strings);
        c->object = object;
        c->op = op;
        c->status = status;
        c->reason = reason;
        c->token_id = ev.token_id;
        c->parent_id = ev.parent_id;
        c->rights = rights;
        snprintf(c->label, sizeof c->label, "%s", ev.label);
        c->strings = copy;
        c->pending = 0;
    }
    c->start_ns = now;
    deliver(a, &ev);
    pthread_mutex_unlock(&a->lock);
    capffi__free(x.heap);
}

int
capffi_audit_flush(capffi_ctx *ctx)
{
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    struct capffi__audit *a = &capffi__audit_of(ctx)->audit;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < CAPFFI__AUDIT_COALESCE && a->n_pending; i++)
        if (a->coalesce[i].pending)
            flush_slot(a, &a->coalesce[i]);
    pthread_mutex_unlock(&a->lock);
    return CAPFFI_OK;
}

void
capffi__audit_forget(capffi_ctx *ctx, const void *object)
{
    if (!capffi__audit_on(ctx))
        return;
    struct capffi__audit *a = &capffi__audit_of(ctx)->audit;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < CAPFFI__AUDIT_COALESCE; i++) {
        struct capffi__coalesce *c = &a->coalesce[i];
        if (c->object != object)
            continue;
        if (c->pending)
            flush_slot(a, c);
        c->object = NULL;
    }
    pthread_mutex_unlock(&a->lock);
}

void
capffi__audit_set_window(capffi_ctx *ctx, int64_t ns)
{
    pthread_mutex_lock(&capffi__audit_of(ctx)->audit.lock);
    capffi__audit_of(ctx)->audit.window_ns = ns;
    pthread_mutex_unlock(&capffi__audit_of(ctx)->audit.lock);
}

int
capffi_audit_set_sink(capffi_ctx *ctx, capffi_audit_fn fn, void *payload)
{
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    if (!capffi__ctx_on_owner(ctx))
        return capffi__fail(ctx, CAPFFI_ETHREAD,
                            "capffi_audit_set_sink called off the owner "
                            "thread");
    pthread_mutex_lock(&capffi__audit_of(ctx)->audit.lock);
    capffi__audit_of(ctx)->audit.sink = fn;
    capffi__audit_of(ctx)->audit.payload = fn ? payload : NULL;
    update_listening(&capffi__audit_of(ctx)->audit);
    pthread_mutex_unlock(&capffi__audit_of(ctx)->audit.lock);
    return CAPFFI_OK;
}

int
capffi_audit_record(capffi_ctx *ctx, size_t capacity)
{
    int rc = capffi__ctx_owner_check(ctx, "capffi_audit_record");
    if (rc)
        return rc;
    struct capffi__rec *ring = NULL;
    size_t *order = NULL;
    if (capacity) {
        if (capacity > SIZE_MAX / sizeof *ring)
            return capffi__fail(ctx, CAPFFI_EINVAL, "capacity %zu is too large",
                                capacity);
        ring = capffi__calloc(capacity, sizeof *ring);
        order = capffi__calloc(capacity, sizeof *order);
        if (!ring || !order) {
            capffi__free(ring);
            capffi__free(order);
            return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
        }
    }
    struct capffi__audit *a = &capffi__audit_of(ctx)->audit;
    pthread_mutex_lock(&a->lock);
    ring_reset(a);
    capffi__free(a->ring);
    capffi__free(a->order);
    a->ring = ring;
    a->order = order;
    a->cap = capacity;
    ring_reset(a);
    update_listening(a);
    pthread_mutex_unlock(&a->lock);
    return CAPFFI_OK;
}

/* The audit lock guards reads too; the public readers take a const ctx. */
static struct capffi__audit *
audit_of(const capffi_ctx *ctx)
{
    return (struct capffi__audit *)&capffi__audit_of(ctx)->audit;
}

bool
capffi__audit_recording(const capffi_ctx *ctx)
{
    struct capffi__audit *a = audit_of(ctx);
    pthread_mutex_lock(&a->lock);
    bool on = a->cap != 0;
    pthread_mutex_unlock(&a->lock);
    return on;
}

/* Whether a recorded event passes a filter (NULL passes everything). */
static bool
matches(const capffi_event *ev, const capffi_audit_filter *f)
{
    if (!f)
        return true;
    return ev->seq > f->since && (f->op == CAPFFI_OP_ANY || ev->op == f->op) &&
           (f->status == CAPFFI_AUDIT_ANY_STATUS || ev->status == f->status) &&
           (f->reason == CAPFFI_AUDIT_ANY_REASON || ev->reason == f->reason) &&
           (!f->label || strcmp(f->label, ev->label) == 0) &&
           (!f->target_glob || fnmatch(f->target_glob, ev->target, 0) == 0);
}

size_t
capffi_audit_count_where(const capffi_ctx *ctx,
                         const capffi_audit_filter *filter)
{
    if (!ctx)
        return 0;
    struct capffi__audit *a = audit_of(ctx);
    size_t n = 0;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->cap; i++) {
        const capffi_event *ev = &a->ring[i].ev;
        /* seq 0 is a free slot: events are numbered from 1 */
        if (ev->seq != 0 && matches(ev, filter))
            n++;
    }
    pthread_mutex_unlock(&a->lock);
    return n;
}

size_t
capffi_audit_count(const capffi_ctx *ctx, capffi_op op, int status,
                   const char *target_glob)
{
    capffi_audit_filter f = CAPFFI_AUDIT_FILTER_ALL;
    f.op = op;
    f.status = status;
    f.target_glob = target_glob;
    return capffi_audit_count_where(ctx, &f);
}

uint64_t
capffi_audit_mark(capffi_ctx *ctx)
{
    if (!ctx)
        return 0;
    capffi_audit_flush(ctx);
    struct capffi__audit *a = audit_of(ctx);
    pthread_mutex_lock(&a->lock);
    uint64_t seq = a->seq;
    pthread_mutex_unlock(&a->lock);
    return seq;
}

int
capffi_audit_next(capffi_event *out, const capffi_ctx *ctx,
                  const capffi_audit_filter *filter, size_t *pos)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!ctx || !out || !pos)
        return capffi__fail((capffi_ctx *)ctx, CAPFFI_EINVAL, "%s is NULL",
                            !ctx   ? "ctx"
                            : !out ? "out"
                                   : "pos");
    struct capffi__audit *a = audit_of(ctx);
    int rc = CAPFFI_EBOUNDS;
    pthread_mutex_lock(&a->lock);
    order_fresh(a);
    for (size_t i = *pos; i < a->len; i++) {
        const capffi_event *ev = &a->ring[a->order[i]].ev;
        if (matches(ev, filter)) {
            *out = *ev;
            *pos = i + 1;
            rc = CAPFFI_OK;
            break;
        }
    }
    if (rc)
        *pos = a->len;
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int
capffi_audit_reset(capffi_ctx *ctx)
{
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    struct capffi__audit *a = audit_of(ctx);
    pthread_mutex_lock(&a->lock);
    ring_reset(a);
    pthread_mutex_unlock(&a->lock);
    return CAPFFI_OK;
}

uint64_t
capffi_audit_dropped(const capffi_ctx *ctx)
{
    return capffi_audit_dropped_op(ctx, CAPFFI_OP_ANY);
}

uint64_t
capffi_audit_dropped_op(const capffi_ctx *ctx, capffi_op op)
{
    if (!ctx || op < CAPFFI_OP_ANY || op >= CAPFFI_OP__COUNT)
        return 0;
    struct capffi__audit *a = audit_of(ctx);
    pthread_mutex_lock(&a->lock);
    uint64_t d = op == CAPFFI_OP_ANY ? a->dropped : a->dropped_op[op];
    pthread_mutex_unlock(&a->lock);
    return d;
}

int
capffi_audit_get(capffi_event *out, const capffi_ctx *ctx, size_t i)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!ctx || !out)
        return capffi__fail((capffi_ctx *)ctx, CAPFFI_EINVAL, "%s is NULL",
                            ctx ? "out" : "ctx");
    struct capffi__audit *a = audit_of(ctx);
    pthread_mutex_lock(&a->lock);
    size_t len = a->len;
    if (i < len) {
        order_fresh(a);
        *out = a->ring[a->order[i]].ev;
    }
    pthread_mutex_unlock(&a->lock);
    if (i >= len)
        return capffi__fail((capffi_ctx *)ctx, CAPFFI_EBOUNDS,
                            "event %zu of %zu recorded", i, len);
    return CAPFFI_OK;
}

/* ---- JSON ------------------------------------------------------------- */

struct out {
    char *buf;
    size_t cap, len;
};

static void
put(struct out *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t room = o->cap - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void putf(struct out *o, const char *fmt, ...) CAPFFI__PRINTF(2, 3);

static void
putf(struct out *o, const char *fmt, ...)
{
    char tmp[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(o, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string; bytes that are not valid UTF-8 become U+FFFD. */
static void
put_str(struct out *o, const char *s)
{
    put(o, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        if (*p == '\n' || *p == '\t' || *p == '\r') {
            put(o, *p == '\n' ? "\\n" : *p == '\t' ? "\\t" : "\\r", 2);
            p++;
        } else if (*p == '"' || *p == '\\') {
            put(o, "\\", 1);
            put(o, (const char *)p, 1);
            p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            putf(o, "\\u%04x", *p);
            p++;
        } else if (*p < 0x80) {
            put(o, (const char *)p, 1);
            p++;
        } else {
            size_t n;
            utf8_decode(p, &n);
            if (n) {
                put(o, (const char *)p, n);
                p += n;
            } else {
                put(o, "\\ufffd", 6);
                p++;
            }
        }
    }
    put(o, "\"", 1);
}

/*
 * What CAPFFI_JSONL_STABLE renames, in order of first appearance: token
 * ids ("t1") and addresses ("@1"). The output counts its own lines.
 */
struct stable {
    uint64_t *ids, *addrs;
    size_t n_ids, n_addrs, cap_ids, cap_addrs;
    uint64_t lines;
    bool nomem;
};

/* The 1-based name of v in a list, appending it when new (0 when out of
 * memory). */
static size_t
name_of(uint64_t **list, size_t *n, size_t *cap, bool *nomem, uint64_t v)
{
    for (size_t i = 0; i < *n; i++)
        if ((*list)[i] == v)
            return i + 1;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        uint64_t *grown = capffi__realloc(*list, c * sizeof **list);
        if (!grown) {
            *nomem = true;
            return 0;
        }
        *list = grown;
        *cap = c;
    }
    (*list)[(*n)++] = v;
    return *n;
}

static bool
is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

/* A JSON string of s with every address (0x and at least four hex digits,
 * not inside a word) renamed "@N". */
static void
put_str_stable(struct out *o, struct stable *st, const char *s)
{
    /* "@N" (N up to 20 digits) replaces at least six bytes. */
    char *copy = capffi__malloc(4 * strlen(s) + 1);
    if (!copy) {
        st->nomem = true;
        put_str(o, s);
        return;
    }
    char *w = copy;
    for (const char *p = s; *p;) {
        size_t k = 0;
        bool word = p > s && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
        if (!word && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
            while (is_hex((unsigned char)p[2 + k]))
                k++;
        if (k >= 4 && !isalnum((unsigned char)p[2 + k]) && p[2 + k] != '_') {
            uint64_t v = strtoull(p + 2, NULL, 16);
            size_t name = name_of(&st->addrs, &st->n_addrs, &st->cap_addrs,
                                  &st->nomem, v);
            w += sprintf(w, "@%zu", name);
            p += 2 + k;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    put_str(o, copy);
    capffi__free(copy);
}

/* A token id as JSON: 16 hex digits, or in stable form "tN" ("" for 0). */
static void
put_id(struct out *o, struct stable *st, uint64_t id)
{
    if (!st) {
        putf(o, "\"%016" PRIx64 "\"", id);
    } else if (!id) {
        put(o, "\"\"", 2);
    } else {
        putf(o, "\"t%zu\"",
             name_of(&st->ids, &st->n_ids, &st->cap_ids, &st->nomem, id));
    }
}

/* One event as a JSON object; st: the stable form. */
static void
format_event(struct out *o, const capffi_event *ev, struct stable *st)
{
    if (st)
        putf(o, "{\"seq\":%" PRIu64 ",\"op\":", ++st->lines);
    else
        putf(o, "{\"seq\":%" PRIu64 ",\"time_ns\":%" PRId64 ",\"op\":", ev->seq,
             ev->time_ns);
    put_str(o, capffi_op_name(ev->op));
    putf(o, ",\"status\":");
    put_str(o, capffi_err_name(ev->status));
    putf(o, ",\"reason\":");
    put_str(o, capffi_reason_name(ev->reason));
    putf(o, ",\"token\":");
    put_id(o, st, ev->token_id);
    putf(o, ",\"parent\":");
    put_id(o, st, ev->parent_id);
    putf(o, ",\"label\":");
    put_str(o, ev->label ? ev->label : "");
    putf(o, ",\"rights\":%" PRIu32 ",\"target\":", ev->rights);
    if (st)
        put_str_stable(o, st, ev->target ? ev->target : "");
    else
        put_str(o, ev->target ? ev->target : "");
    putf(o, ",\"detail\":");
    if (st)
        put_str_stable(o, st, ev->detail ? ev->detail : "");
    else
        put_str(o, ev->detail ? ev->detail : "");
    putf(o, ",\"count\":%" PRIu64 "}", ev->count);
}

size_t
capffi_audit_format_json(char *buf, size_t cap, const capffi_event *ev)
{
    struct out o = { buf, cap, 0 };
    if (!ev) {
        if (cap)
            buf[0] = '\0';
        return 0;
    }
    format_event(&o, ev, NULL);
    if (cap)
        buf[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len;
}

/* Write one line: the JSON object of ev and a newline. Lock held. */
static int
write_event(FILE *f, const capffi_event *ev, struct stable *st)
{
    char small[1024];
    uint64_t lines = st ? st->lines : 0;
    struct out o = { small, sizeof small, 0 };
    format_event(&o, ev, st);
    char *line = small;
    if (o.len >= sizeof small) {
        line = capffi__malloc(o.len + 1);
        if (!line)
            return CAPFFI_ENOMEM;
        if (st)
            st->lines = lines; /* the same line, formatted again */
        o = (struct out){ line, o.len + 1, 0 };
        format_event(&o, ev, st);
    }
    int rc = CAPFFI_OK;
    if (st && st->nomem)
        rc = CAPFFI_ENOMEM;
    else if (fwrite(line, 1, o.len, f) != o.len || fputc('\n', f) == EOF)
        rc = CAPFFI_EBUSY;
    if (line != small)
        capffi__free(line);
    return rc;
}

/*
 * The last line when the recorder dropped events: what it dropped, by op,
 * so a reader of the file knows the trail above is not the whole story.
 * Lock held.
 */
static int
write_summary(FILE *f, const struct capffi__audit *a)
{
    if (fprintf(f,
                "{\"summary\":\"dropped\",\"dropped\":%" PRIu64 ",\"by_op\":{",
                a->dropped) < 0)
        return CAPFFI_EBUSY;
    const char *sep = "";
    for (int op = 0; op < CAPFFI_OP__COUNT; op++) {
        if (!a->dropped_op[op])
            continue;
        if (fprintf(f, "%s\"%s\":%" PRIu64, sep, capffi_op_name((capffi_op)op),
                    a->dropped_op[op]) < 0)
            return CAPFFI_EBUSY;
        sep = ",";
    }
    return fputs("}}\n", f) == EOF ? CAPFFI_EBUSY : CAPFFI_OK;
}

int
capffi_audit_write_jsonl_where(const capffi_ctx *ctx, FILE *f,
                               const capffi_audit_filter *filter,
                               unsigned flags)
{
    if (!ctx || !f)
        return capffi__fail((capffi_ctx *)ctx, CAPFFI_EINVAL, "%s is NULL",
                            ctx ? "f" : "ctx");
    if (flags & ~CAPFFI_JSONL_STABLE)
        return capffi__fail((capffi_ctx *)ctx, CAPFFI_EINVAL,
                            "unknown flag bits 0x%x",
                            flags & ~CAPFFI_JSONL_STABLE);
    struct capffi__audit *a = audit_of(ctx);
    struct stable stable = { 0 };
    struct stable *st = (flags & CAPFFI_JSONL_STABLE) ? &stable : NULL;
    int rc = CAPFFI_OK;
    pthread_mutex_lock(&a->lock);
    order_fresh(a);
    for (size_t i = 0; i < a->len && !rc; i++)
        if (matches(&a->ring[a->order[i]].ev, filter))
            rc = write_event(f, &a->ring[a->order[i]].ev, st);
    if (!rc && a->dropped)
        rc = write_summary(f, a);
    pthread_mutex_unlock(&a->lock);
    capffi__free(stable.ids);
    capffi__free(stable.addrs);
    if (!rc && fflush(f) != 0)
        rc = CAPFFI_EBUSY;
    if (rc)
        return capffi__fail(
            (capffi_ctx *)ctx, rc, "writing the audit trail failed: %s",
            rc == CAPFFI_ENOMEM ? "out of memory" : strerror(errno));
    return CAPFFI_OK;
}

int
capffi_audit_write_jsonl(const capffi_ctx *ctx, FILE *f)
{
    return capffi_audit_write_jsonl_where(ctx, f, NULL, 0);
}

const char *
capffi_op_name(capffi_op op)
{
    switch (op) {
#define OP_CASE(name, text)                                                    \
    case CAPFFI_OP_##name:                                                     \
        return text;
        CAPFFI_OP_MAP(OP_CASE)
#undef OP_CASE
    case CAPFFI_OP_ANY:
        return "any";
    default:
        return "?";
    }
}

const char *
capffi_reason_name(capffi_reason reason)
{
    switch (reason) {
#define REASON_CASE(name, text)                                                \
    case CAPFFI_REASON_##name:                                                 \
        return text;
        CAPFFI_REASON_MAP(REASON_CASE)
#undef REASON_CASE
    default:
        return "?";
    }
}

int
capffi__wrong_thread(capffi_ctx *ctx, capffi_op op, const char *fn)
{
    int rc = capffi__fail(ctx, CAPFFI_ETHREAD,
                          "%s called off the context's owner thread", fn);
    capffi__audit_emit(ctx, op, rc, CAPFFI_REASON_THREAD, NULL, 0, fn, "%s",
                       capffi_ctx_errmsg(ctx));
    return rc;
}

int
capffi__entry(capffi_ctx *ctx, capffi_op op, const char *fn)
{
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    if (!capffi__ctx_on_owner(ctx))
        return capffi__wrong_thread(ctx, op, fn);
    return CAPFFI_OK;
}
