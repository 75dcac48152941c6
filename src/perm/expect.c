/*
 * expect.c - capffi_expect: whether the events since a mark match a list
 * of `op status [target]` patterns, with a readable report when they do
 * not (capffi/testing.h).
 *
 * It reads the trail only through the public readers (capffi_audit_next),
 * so it sees exactly what a test would.
 */
#include "capffi/testing.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "perm/audit.h"

/* A parsed pattern: fnmatch patterns for op and target, and a status. */
enum { ST_ANY = 1, ST_FAIL = 2, ST_UNKNOWN = 3 }; /* statuses are <= 0 */

struct pat {
    char op[32];
    int status; /* a status, ST_ANY or ST_FAIL */
    const char *target;
    const char *text;
};

/* An event since the mark, copied: the recorder's strings may move. */
struct evt {
    uint64_t seq;
    capffi_op op;
    int status;
    char *target;
    int pat; /* the pattern it matched, or -1 */
};

/* The status word of a pattern or a report: "ok", or the error's name
 * without its prefix. */
static const char *
status_word(int status)
{
    const char *name = capffi_err_name(status);
    if (status == CAPFFI_OK)
        return "ok";
    return strncmp(name, "CAPFFI_", 7) == 0 ? name + 7 : name;
}

static int
bad_pattern(capffi_ctx *ctx, size_t i, const char *text, size_t at,
            const char *what)
{
    return capffi__fail(ctx, CAPFFI_EINVAL, "pattern %zu ('%s'), byte %zu: %s",
                        i + 1, text, at, what);
}

/* Parse pattern i into p: CAPFFI_OK or CAPFFI_EINVAL, naming the byte. */
static int
parse(capffi_ctx *ctx, size_t i, const char *text, struct pat *p)
{
    if (!text)
        return capffi__fail(ctx, CAPFFI_EINVAL, "pattern %zu is NULL", i + 1);
    p->text = text;
    const char *s = text;
    while (*s == ' ')
        s++;
    size_t n = strcspn(s, " ");
    if (n == 0)
        return bad_pattern(ctx, i, text, (size_t)(s - text),
                           "expected an op (\"lib.open\", \"lib.*\", \"*\")");
    if (n >= sizeof p->op)
        return bad_pattern(ctx, i, text, (size_t)(s - text),
                           "the op is too long");
    memcpy(p->op, s, n);
    p->op[n] = '\0';
    bool known = strpbrk(p->op, "*?[") != NULL;
    for (int op = 0; !known && op < CAPFFI_OP__COUNT; op++)
        known = strcmp(capffi_op_name((capffi_op)op), p->op) == 0;
    if (!known)
        return bad_pattern(ctx, i, text, (size_t)(s - text),
                           "unknown op (capffi/audit.h lists them)");
    s += n;
    while (*s == ' ')
        s++;
    n = strcspn(s, " ");
    if (n == 0)
        return bad_pattern(ctx, i, text, (size_t)(s - text),
                           "expected a status (\"ok\", \"fail\", \"*\", "
                           "\"EPERM\")");
    char word[32];
    snprintf(word, sizeof word, "%.*s", (int)(n < 31 ? n : 31), s);
    const char *bare = strncmp(word, "CAPFFI_", 7) == 0 ? word + 7 : word;
    if (strcmp(word, "*") == 0) {
        p->status = ST_ANY;
    } else if (strcmp(word, "fail") == 0) {
        p->status = ST_FAIL;
    } else {
        p->status = ST_UNKNOWN;
        for (int code = 0; code > CAPFFI__ERR_LAST; code--)
            if (strcmp(bare, status_word(code)) == 0 ||
                (code == CAPFFI_OK && strcmp(bare, "OK") == 0))
                p->status = code;
        if (p->status == ST_UNKNOWN || n >= sizeof word)
            return bad_pattern(ctx, i, text, (size_t)(s - text),
                               "unknown status (\"ok\", \"fail\", \"*\" or "
                               "an error's name)");
    }
    s += n;
    while (*s == ' ')
        s++;
    p->target = *s ? s : "*";
    return CAPFFI_OK;
}

static bool
match(const struct pat *p, const struct evt *e)
{
    if (fnmatch(p->op, capffi_op_name(e->op), 0) != 0)
        return false;
    if (p->status == ST_FAIL  ? e->status == CAPFFI_OK
        : p->status != ST_ANY ? e->status != p->status
                              : false)
        return false;
    return fnmatch(p->target, e->target, 0) == 0;
}

/* Kuhn's augmenting path: can pattern i take an event, moving others? */
static bool
augment(const struct pat *pats, struct evt *evs, size_t n_ev, size_t i,
        bool *seen)
{
    for (size_t e = 0; e < n_ev; e++) {
        if (seen[e] || !match(&pats[i], &evs[e]))
            continue;
        seen[e] = true;
        if (evs[e].pat < 0 ||
            augment(pats, evs, n_ev, (size_t)evs[e].pat, seen)) {
            evs[e].pat = (int)i;
            return true;
        }
    }
    return false;
}

/* Give each pattern an event; *matched counts those that got one. */
static int
assign(const struct pat *pats, size_t n, struct evt *evs, size_t n_ev,
       unsigned flags, size_t *matched)
{
    *matched = 0;
    if (flags & CAPFFI_EXPECT_ORDERED) {
        /* Greedy, earliest first: a subsequence is found if one exists.
         * Exact: each event must be the next pattern's. */
        size_t e = 0;
        for (size_t i = 0; i < n; i++) {
            while (e < n_ev && !match(&pats[i], &evs[e]) &&
                   !(flags & CAPFFI_EXPECT_EXACT))
                e++;
            if (e >= n_ev || !match(&pats[i], &evs[e]))
                break;
            evs[e++].pat = (int)i;
            (*matched)++;
        }
        return CAPFFI_OK;
    }
    bool *seen = capffi__calloc(n_ev ? n_ev : 1, sizeof *seen);
    if (!seen)
        return CAPFFI_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        memset(seen, 0, n_ev * sizeof *seen);
        if (augment(pats, evs, n_ev, i, seen))
            (*matched)++;
    }
    capffi__free(seen);
    return CAPFFI_OK;
}

/* The report, appended to with snprintf's rules. */
struct rep {
    char *buf;
    size_t cap, len;
};

static void add(struct rep *r, const char *fmt, ...) CAPFFI__PRINTF(2, 3);

static void
add(struct rep *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = r->len < r->cap ? r->cap - r->len : 0;
    int k = vsnprintf(room ? r->buf + r->len : NULL, room, fmt, ap);
    va_end(ap);
    if (k > 0)
        r->len += (size_t)k;
}

static void
write_report(struct rep *r, const struct pat *pats, size_t n,
             const struct evt *evs, size_t n_ev, unsigned flags, uint64_t mark,
             size_t matched, size_t unexpected, bool ok)
{
    const char *how =
        (flags & CAPFFI_EXPECT_ORDERED)
            ? ((flags & CAPFFI_EXPECT_EXACT) ? "ordered, exact" : "ordered")
            : ((flags & CAPFFI_EXPECT_EXACT) ? "exact" : "any order");
    add(r, "audit: %zu of %zu pattern%s matched", matched, n,
        n == 1 ? "" : "s");
    if (flags & CAPFFI_EXPECT_EXACT)
        add(r, ", %zu event%s unexpected", unexpected,
            unexpected == 1 ? "" : "s");
    add(r, " (since seq %" PRIu64 "; %s)", mark, how);
    if (ok)
        return;
    add(r, "\n");
    for (size_t e = 0; e < n_ev; e++) {
        const struct evt *v = &evs[e];
        char mark_c = v->pat >= 0                     ? '='
                      : (flags & CAPFFI_EXPECT_EXACT) ? '+'
                                                      : ' ';
        add(r, "  %c %" PRIu64 " %s %s %s", mark_c, v->seq,
            capffi_op_name(v->op), status_word(v->status), v->target);
        if (v->pat >= 0)
            add(r, "   [%d]", v->pat + 1);
        add(r, "\n");
    }
    bool *taken = capffi__calloc(n ? n : 1, sizeof *taken);
    for (size_t e = 0; taken && e < n_ev; e++)
        if (evs[e].pat >= 0)
            taken[evs[e].pat] = true;
    for (size_t i = 0; i < n; i++)
        if (!taken || !taken[i])
            add(r, "  - [%zu] %s\n", i + 1, pats[i].text);
    capffi__free(taken);
}

/* Copy the events since mark: CAPFFI_OK, CAPFFI_ENOMEM. */
static int
collect(capffi_ctx *ctx, uint64_t mark, struct evt **out, size_t *n_out)
{
    capffi_audit_filter f = CAPFFI_AUDIT_FILTER_ALL;
    f.since = mark;
    size_t n = capffi_audit_count_where(ctx, &f), k = 0, pos = 0;
    struct evt *evs = capffi__calloc(n ? n : 1, sizeof *evs);
    if (!evs)
        return CAPFFI_ENOMEM;
    capffi_event ev;
    while (k < n && capffi_audit_next(&ev, ctx, &f, &pos) == CAPFFI_OK) {
        evs[k].seq = ev.seq;
        evs[k].op = ev.op;
        evs[k].status = ev.status;
        evs[k].pat = -1;
        evs[k].target = capffi__strdup(ev.target);
        if (!evs[k++].target) {
            *out = evs;
            *n_out = k;
            return CAPFFI_ENOMEM;
        }
    }
    *out = evs;
    *n_out = k;
    return CAPFFI_OK;
}

int
capffi_expect(capffi_ctx *ctx, uint64_t mark, unsigned flags,
              const char *const *patterns, size_t n, char *report, size_t cap)
{
    struct rep r = { report, report ? cap : 0, 0 };
    if (report && cap)
        report[0] = '\0';
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    if (!patterns && n)
        return capffi__fail(ctx, CAPFFI_EINVAL, "patterns is NULL");
    if (flags & ~(CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT))
        return capffi__fail(ctx, CAPFFI_EINVAL, "unknown flag bits 0x%x",
                            flags &
                                ~(CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT));
    if (!capffi__audit_recording(ctx))
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "the audit trail is not recorded: call "
                            "capffi_audit_record first");
    struct pat *pats = capffi__calloc(n ? n : 1, sizeof *pats);
    if (!pats)
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    int rc = CAPFFI_OK;
    for (size_t i = 0; i < n && !rc; i++)
        rc = parse(ctx, i, patterns[i], &pats[i]);
    if (rc) {
        capffi__free(pats);
        return rc;
    }
    uint64_t newest = capffi_audit_mark(ctx); /* flushes the coalesced */
    struct evt *evs = NULL;
    size_t n_ev = 0, matched = 0;
    rc = collect(ctx, mark, &evs, &n_ev);
    if (!rc && newest > mark && n_ev < newest - mark) {
        rc = capffi__fail(ctx, CAPFFI_EBUSY,
                          "the recorder dropped %" PRIu64
                          " of the events since seq %" PRIu64
                          ": record more (capffi_audit_record)",
                          newest - mark - n_ev, mark);
    } else if (!rc) {
        rc = assign(pats, n, evs, n_ev, flags, &matched);
        if (rc)
            capffi__fail(ctx, rc, "out of memory");
    } else {
        capffi__fail(ctx, rc, "out of memory");
    }
    if (!rc) {
        size_t unexpected = 0;
        for (size_t e = 0; e < n_ev; e++)
            unexpected += evs[e].pat < 0;
        bool ok =
            matched == n && (!(flags & CAPFFI_EXPECT_EXACT) || unexpected == 0);
        /* Measured, then written whole, so the message gets its first
         * line however small the caller's buffer. */
        struct rep all = { NULL, 0, 0 };
        write_report(&all, pats, n, evs, n_ev, flags, mark, matched, unexpected,
                     ok);
        all.buf = capffi__malloc(all.len + 1);
        if (all.buf) {
            all.cap = all.len + 1;
            all.len = 0;
            write_report(&all, pats, n, evs, n_ev, flags, mark, matched,
                         unexpected, ok);
            add(&r, "%s", all.buf);
        }
        if (!ok)
            rc = capffi__fail(ctx, CAPFFI_ENOTFOUND, "%.*s",
                              all.buf ? (int)strcspn(all.buf, "\n") : 0,
                              all.buf ? all.buf : "");
        capffi__free(all.buf);
    }
    for (size_t e = 0; e < n_ev; e++)
        capffi__free(evs[e].target);
    capffi__free(evs);
    capffi__free(pats);
    return rc;
}
