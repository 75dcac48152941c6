/*
 * audit.c - the audit trail: sink, in-memory recorder, JSON Lines.
 *
 * Threat answered here: T6 (events carry token ids and labels, never tags
 * or the secret; nothing here can reach either).
 */
#include "audit.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctx.h"

struct capffi__rec {
    capffi_event ev;
    char label[CAPFFI_LABEL_MAX + 1];
    char *strings; /* target NUL detail NUL; NULL when out of memory */
};

int
capffi__audit_init(struct capffi__audit *a)
{
    memset(a, 0, sizeof *a);
    return pthread_mutex_init(&a->lock, NULL) ? CAPFFI_ENOMEM : CAPFFI_OK;
}

static void
ring_clear(struct capffi__audit *a)
{
    for (size_t i = 0; i < a->len; i++)
        capffi__free(a->ring[(a->head + i) % a->cap].strings);
    a->head = a->len = 0;
}

void
capffi__audit_fini(struct capffi__audit *a)
{
    ring_clear(a);
    capffi__free(a->ring);
    pthread_mutex_destroy(&a->lock);
}

bool
capffi__audit_on(const capffi_ctx *ctx)
{
    return atomic_load_explicit(&ctx->audit.listening, memory_order_relaxed);
}

static void
update_listening(struct capffi__audit *a)
{
    atomic_store(&a->listening, a->sink != NULL || a->cap != 0);
}

static void
record(struct capffi__audit *a, const capffi_event *ev)
{
    size_t slot;
    if (a->len == a->cap) {
        slot = a->head;
        capffi__free(a->ring[slot].strings);
        a->head = (a->head + 1) % a->cap;
        a->dropped++;
    } else {
        slot = (a->head + a->len) % a->cap;
        a->len++;
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
}

void
capffi__audit_emit(capffi_ctx *ctx, capffi_op op, int status,
                   capffi_reason reason, const struct capffi__who *who,
                   uint32_t rights, const char *target, const char *fmt, ...)
{
    if (!ctx || !capffi__audit_on(ctx))
        return;
    char detail[CAPFFI__MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    capffi_event ev;
    memset(&ev, 0, sizeof ev);
    ev.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    ev.op = op;
    ev.status = status;
    ev.reason = reason;
    ev.token_id = who ? who->token_id : 0;
    ev.parent_id = who ? who->parent_id : 0;
    ev.label = who && who->label ? who->label : "";
    ev.rights = rights;
    ev.target = target ? target : "";
    ev.detail = detail;

    struct capffi__audit *a = &ctx->audit;
    pthread_mutex_lock(&a->lock);
    ev.seq = ++a->seq;
    if (a->sink)
        a->sink(a->payload, &ev);
    if (a->cap)
        record(a, &ev);
    pthread_mutex_unlock(&a->lock);
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
    pthread_mutex_lock(&ctx->audit.lock);
    ctx->audit.sink = fn;
    ctx->audit.payload = fn ? payload : NULL;
    update_listening(&ctx->audit);
    pthread_mutex_unlock(&ctx->audit.lock);
    return CAPFFI_OK;
}

int
capffi_audit_record(capffi_ctx *ctx, size_t capacity)
{
    int rc = capffi__ctx_owner_check(ctx, "capffi_audit_record");
    if (rc)
        return rc;
    struct capffi__rec *ring = NULL;
    if (capacity) {
        if (capacity > SIZE_MAX / sizeof *ring)
            return capffi__fail(ctx, CAPFFI_EINVAL, "capacity %zu is too large",
                                capacity);
        ring = capffi__calloc(capacity, sizeof *ring);
        if (!ring)
            return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    }
    struct capffi__audit *a = &ctx->audit;
    pthread_mutex_lock(&a->lock);
    ring_clear(a);
    capffi__free(a->ring);
    a->ring = ring;
    a->cap = capacity;
    a->dropped = 0;
    update_listening(a);
    pthread_mutex_unlock(&a->lock);
    return CAPFFI_OK;
}

/* The audit lock guards reads too; the public readers take a const ctx. */
static struct capffi__audit *
audit_of(const capffi_ctx *ctx)
{
    return (struct capffi__audit *)&ctx->audit;
}

size_t
capffi_audit_count(const capffi_ctx *ctx, capffi_op op, int status,
                   const char *target_glob)
{
    if (!ctx)
        return 0;
    struct capffi__audit *a = audit_of(ctx);
    size_t n = 0;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->len; i++) {
        const capffi_event *ev = &a->ring[(a->head + i) % a->cap].ev;
        if (op != CAPFFI_OP_ANY && ev->op != op)
            continue;
        if (status != CAPFFI_AUDIT_ANY_STATUS && ev->status != status)
            continue;
        if (target_glob && fnmatch(target_glob, ev->target, 0) != 0)
            continue;
        n++;
    }
    pthread_mutex_unlock(&a->lock);
    return n;
}

uint64_t
capffi_audit_dropped(const capffi_ctx *ctx)
{
    if (!ctx)
        return 0;
    struct capffi__audit *a = audit_of(ctx);
    pthread_mutex_lock(&a->lock);
    uint64_t d = a->dropped;
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
    if (i < len)
        *out = a->ring[(a->head + i) % a->cap].ev;
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

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t
utf8_len(const unsigned char *s)
{
    size_t n;
    unsigned min;
    unsigned cp;
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
    return n;
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
            size_t n = utf8_len(p);
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

size_t
capffi_audit_format_json(char *buf, size_t cap, const capffi_event *ev)
{
    struct out o = { buf, cap, 0 };
    if (!ev) {
        if (cap)
            buf[0] = '\0';
        return 0;
    }
    putf(&o, "{\"seq\":%" PRIu64 ",\"time_ns\":%" PRId64 ",\"op\":", ev->seq,
         ev->time_ns);
    put_str(&o, capffi_op_name(ev->op));
    putf(&o, ",\"status\":");
    put_str(&o, capffi_err_name(ev->status));
    putf(&o, ",\"reason\":");
    put_str(&o, capffi_reason_name(ev->reason));
    putf(&o,
         ",\"token\":\"%016" PRIx64 "\",\"parent\":\"%016" PRIx64
         "\",\"label\":",
         ev->token_id, ev->parent_id);
    put_str(&o, ev->label ? ev->label : "");
    putf(&o, ",\"rights\":%" PRIu32 ",\"target\":", ev->rights);
    put_str(&o, ev->target ? ev->target : "");
    putf(&o, ",\"detail\":");
    put_str(&o, ev->detail ? ev->detail : "");
    put(&o, "}", 1);
    if (cap)
        buf[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len;
}

int
capffi_audit_write_jsonl(const capffi_ctx *ctx, FILE *f)
{
    if (!ctx || !f)
        return capffi__fail((capffi_ctx *)ctx, CAPFFI_EINVAL, "%s is NULL",
                            ctx ? "f" : "ctx");
    struct capffi__audit *a = audit_of(ctx);
    int rc = CAPFFI_OK;
    char small[1024];
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->len && !rc; i++) {
        const capffi_event *ev = &a->ring[(a->head + i) % a->cap].ev;
        size_t n = capffi_audit_format_json(small, sizeof small, ev);
        char *line = small;
        if (n >= sizeof small) {
            line = capffi__malloc(n + 1);
            if (!line) {
                rc = CAPFFI_ENOMEM;
                break;
            }
            capffi_audit_format_json(line, n + 1, ev);
        }
        if (fwrite(line, 1, n, f) != n || fputc('\n', f) == EOF)
            rc = CAPFFI_EBUSY;
        if (line != small)
            capffi__free(line);
    }
    pthread_mutex_unlock(&a->lock);
    if (!rc && fflush(f) != 0)
        rc = CAPFFI_EBUSY;
    if (rc)
        return capffi__fail(
            (capffi_ctx *)ctx, rc, "writing the audit trail failed: %s",
            rc == CAPFFI_ENOMEM ? "out of memory" : strerror(errno));
    return CAPFFI_OK;
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
