/*
 * capffi/audit.h - the audit trail.
 *
 * Every permission decision and every token operation writes an event:
 * mint, attenuation, revocation, each check (allowed or refused, with the
 * reason), each permission query, request and withdrawal, and every
 * operation that reaches the loader, libffi closures, pointers or views.
 * Events go to an optional sink callback and to an optional in-memory
 * recorder that tests query with capffi_audit_count.
 *
 * No event ever contains a token tag or the context's secret.
 *
 * Refusals of bound objects (a function called after its library closed or
 * its token was revoked, a closed or revoked callback invoked by native
 * code) are coalesced: the first refusal of an object is an event at once;
 * the ones that follow within a second are counted, and go out as one
 * event whose `count` says how many refusals it stands for, at the
 * object's next refusal after that second, with the first event emitted
 * after it, at capffi_audit_flush, or when the context is freed. So a loop
 * of refusals writes at most one event per object per second, and every
 * refusal is counted.
 *
 * Escaping: an event's target and detail may carry caller text (a path, a
 * symbol, a handler's message). They are stored escaped, so that printing
 * an event to a terminal or a log cannot inject control sequences: a
 * backslash becomes `\\`; newline, tab and carriage return `\n`, `\t`,
 * `\r`; every other byte below 0x20, 0x7f, each byte that is not part of
 * valid UTF-8, and each byte of a C1 control (U+0080 to U+009F) or of a
 * bidirectional override or isolate (U+200E, U+200F, U+202A to U+202E,
 * U+2066 to U+2069) `\xHH` in lower-case hex. Everything else (printable
 * ASCII and other valid UTF-8) is kept. The sink, capffi_audit_get and
 * capffi_audit_count's glob all see this escaped text; the JSON output
 * encodes that same text as a JSON string, so a JSON decoder gives back
 * exactly what capffi_audit_get returns (`\x1b` in the text is
 * `"\\x1b"` in the JSON). Labels need no escaping: they are printable
 * ASCII (capffi_token_new).
 *
 * Targets: an event's target names what the operation was about, in one
 * form per op, the same for its successes, refusals and failures:
 *   token.new, token.attenuate, token.revoke   "" (the label and ids say
 *                                              which token)
 *   token.check, perm.query, perm.request,     the canonical path checked
 *   perm.revoke                                (the name as given when it
 *                                              resolves to no file), "" for
 *                                              none
 *   lib.open                                   the library's canonical path
 *                                              (a soname resolved as the
 *                                              loader would); the name as
 *                                              given when it resolves to no
 *                                              file; "(process)" for NULL
 * Exception, for lib.open and token.check: a refusal of the token itself
 * (forged, foreign, revoked, expired, out of uses, missing the right)
 * comes before the path is looked at, and names the path as given: a
 * name is never resolved for a token that may not use it, so the trail,
 * which a script may read, says nothing of where a name leads.
 *   lib.close                                  the canonical path;
 *                                              "(process)" for the process
 *   lib.bind                                   the symbol (capffi_lib_bind,
 *                                              capffi_lib_static)
 *   fn.call, job.submit, job.cancel            the function's symbol; the
 *                                              code address for a
 *                                              capffi_fn_from_ptr function
 *   fn.from_ptr, ptr.from_addr                 the address
 *   cb.new, cb.invoke, cb.close                the callback's signature as
 *                                              written (the code address is
 *                                              in the detail: "at 0x...")
 *   ptr.of                                     "buffer of N bytes"
 *   view.new                                   "ADDRESS+LENGTH" ("buffer
 *                                              ADDRESS" for
 *                                              capffi_view_of_buf_tok;
 *                                              capffi_view_of_buf writes no
 *                                              event)
 *   view.access                                "ADDRESS+LENGTH [OFFSET, +N)"
 *   type.define                                the name defined
 *   obj.leak                                   the class
 *   buf.free, obj.free, ctx.poll               ""
 * A call refused because it was made off the owner thread (reason "wrong
 * thread") names the C function refused ("capffi_lib_open"), whatever the
 * op. Addresses are written by %p ("0x7f..."), so CAPFFI_JSONL_STABLE can
 * name them.
 *
 * Thread safety: owner thread for the sink and the recorder's set-up; the
 * readers (count, get, write) may run on any thread. Events caused on other
 * threads (a revoke, a callback failing closed) are delivered on the thread
 * that caused them, serialised with the owner's: a sink is never called
 * concurrently with itself. A sink must not call capffi functions on the same
 * context.
 */
#ifndef CAPFFI_AUDIT_H
#define CAPFFI_AUDIT_H

#include <stdio.h>

#include "common.h"

CAPFFI_BEGIN_DECLS

/* X(name, text) - appended to, never renumbered. */
#define CAPFFI_OP_MAP(X)                                                       \
    X(TOKEN_NEW, "token.new")                                                  \
    X(TOKEN_ATTENUATE, "token.attenuate")                                      \
    X(TOKEN_REVOKE, "token.revoke")                                            \
    X(TOKEN_CHECK, "token.check")                                              \
    X(PERM_QUERY, "perm.query")                                                \
    X(PERM_REQUEST, "perm.request")                                            \
    X(PERM_REVOKE, "perm.revoke")                                              \
    X(LIB_OPEN, "lib.open")                                                    \
    X(LIB_BIND, "lib.bind")                                                    \
    X(LIB_CLOSE, "lib.close")                                                  \
    X(FN_FROM_PTR, "fn.from_ptr")                                              \
    X(FN_CALL, "fn.call")                                                      \
    X(CB_NEW, "cb.new")                                                        \
    X(CB_INVOKE, "cb.invoke")                                                  \
    X(PTR_OF, "ptr.of")                                                        \
    X(PTR_FROM_ADDR, "ptr.from_addr")                                          \
    X(VIEW_NEW, "view.new")                                                    \
    X(VIEW_ACCESS, "view.access")                                              \
    X(BUF_FREE, "buf.free")                                                    \
    X(CB_CLOSE, "cb.close")                                                    \
    X(CTX_POLL, "ctx.poll")                                                    \
    X(TYPE_DEFINE, "type.define")                                              \
    X(JOB_SUBMIT, "job.submit")                                                \
    X(JOB_CANCEL, "job.cancel")                                                \
    X(OBJ_FREE, "obj.free")                                                    \
    X(OBJ_LEAK, "obj.leak")

/** What an event is about. */
typedef enum capffi_op {
    CAPFFI_OP_ANY = -1, /**< matches every op in capffi_audit_count */
#define CAPFFI__OP_ENUM(name, text) CAPFFI_OP_##name,
    CAPFFI_OP_MAP(CAPFFI__OP_ENUM)
#undef CAPFFI__OP_ENUM
        CAPFFI_OP__COUNT
} capffi_op;

/* X(name, text) */
#define CAPFFI_REASON_MAP(X)                                                   \
    X(NONE, "none")                                                            \
    X(FORGED, "forged")                                                        \
    X(FOREIGN, "foreign")                                                      \
    X(REVOKED, "revoked")                                                      \
    X(EXPIRED, "expired")                                                      \
    X(EXHAUSTED, "out of uses")                                                \
    X(RIGHT, "missing right")                                                  \
    X(PATH, "path not granted")                                                \
    X(DENIED, "path denied")                                                   \
    X(WIDEN, "widening")                                                       \
    X(NO_GRANT, "not granted")                                                 \
    X(INVALID, "invalid input")                                                \
    X(NOMEM, "out of memory")                                                  \
    X(CLOSED, "closed")                                                        \
    X(THREAD, "wrong thread")                                                  \
    X(FAILED, "failed")                                                        \
    X(BOUNDS, "out of bounds")                                                 \
    X(BUSY, "busy")

/** Why a decision went the way it did. */
typedef enum capffi_reason {
#define CAPFFI__REASON_ENUM(name, text) CAPFFI_REASON_##name,
    CAPFFI_REASON_MAP(CAPFFI__REASON_ENUM)
#undef CAPFFI__REASON_ENUM
        CAPFFI_REASON__COUNT
} capffi_reason;

/** Matches every status in capffi_audit_count (statuses are <= 0). */
#define CAPFFI_AUDIT_ANY_STATUS 1

/**
 * One audit event. Valid only during the sink call; copy what you keep.
 * target and detail are escaped (see the top of this file).
 */
typedef struct capffi_event {
    uint64_t seq;         /**< per-context sequence number, from 1 */
    int64_t time_ns;      /**< CLOCK_REALTIME, nanoseconds */
    capffi_op op;         /**< what was attempted */
    int status;           /**< CAPFFI_OK if allowed, else the error */
    capffi_reason reason; /**< why; CAPFFI_REASON_NONE when allowed */
    uint64_t token_id;    /**< the token used or made; 0 for none */
    uint64_t parent_id;   /**< its parent, for attenuation; else 0 */
    const char *label;    /**< the token's label; "" for none or unknown */
    uint32_t rights;      /**< rights asked for (or held, for new tokens) */
    const char *target;   /**< path, symbol or object; "" for none */
    const char *detail;   /**< a human sentence; "" for none */
    uint64_t count;       /**< occurrences this event stands for: 1, or for a
                               coalesced refusal the refusals of its object since
                               the object's previous event */
} capffi_event;

/** The sink signature. */
typedef void (*capffi_audit_fn)(void *payload, const capffi_event *ev);

/**
 * Send every event to fn, as it happens. NULL removes the sink.
 * @param ctx     the context.
 * @param fn      the sink, or NULL.
 * @param payload passed to fn.
 * @return CAPFFI_OK; CAPFFI_EINVAL (ctx NULL); CAPFFI_ETHREAD (off the
 *         owner thread).
 * Ownership: the caller keeps payload alive until the sink is removed or
 * the context is freed (capffi_ctx_free delivers the refusals still
 * coalesced to the sink before it returns).
 * Thread safety: owner thread. fn is called on the thread that caused the
 * event, never concurrently with itself, and must not call capffi
 * functions on ctx.
 */
CAPFFI_API int capffi_audit_set_sink(capffi_ctx *ctx, capffi_audit_fn fn,
                                     void *payload);

/**
 * Keep up to `capacity` events in memory. When it is full the recorder
 * keeps, in this order of preference: decisions that grant power
 * (token.new, perm.request, perm.revoke, lib.open, lib.bind, lib.close,
 * fn.from_ptr, cb.new, cb.close), then every refusal and failure (any op
 * whose status is not CAPFFI_OK), then the successes of what a loop may
 * repeat without a right (token.check, token.attenuate, token.revoke,
 * type.define, perm.query, fn.call, cb.invoke, ptr.of, ptr.from_addr,
 * view.new, view.access, buf.free, ctx.poll, job.cancel). A new event
 * evicts the oldest event of the lowest class below its own that holds
 * more than its reserve (refusals and failures keep a quarter of the
 * recorder), else the oldest of its own class; when that is empty, the
 * new event itself is dropped. Each drop is counted by op
 * (capffi_audit_dropped, capffi_audit_dropped_op). A second call empties
 * the recorder, zeroes the drop counts and sets the new capacity; capacity
 * 0 stops recording and frees it.
 * @param ctx      the context.
 * @param capacity events kept; 0 to stop.
 * @return CAPFFI_OK; CAPFFI_EINVAL (ctx NULL, capacity too large);
 *         CAPFFI_ETHREAD; CAPFFI_ENOMEM (the old recorder is kept).
 * Ownership: the context owns the recorder.
 * Thread safety: owner thread.
 */
CAPFFI_API int capffi_audit_record(capffi_ctx *ctx, size_t capacity);

/**
 * Count recorded events.
 * @param ctx         the context (NULL: 0).
 * @param op          CAPFFI_OP_ANY or one op.
 * @param status      CAPFFI_AUDIT_ANY_STATUS or one status (0 = allowed).
 * @param target_glob NULL for any target, else an fnmatch(3) pattern
 *                    matched against the event's (escaped) target.
 * @return the number of matching recorded events (0 without a recorder).
 *         A coalesced event counts once, whatever its `count`; refusals
 *         still being coalesced are not recorded yet (capffi_audit_flush).
 * Thread safety: any thread.
 */
CAPFFI_API size_t capffi_audit_count(const capffi_ctx *ctx, capffi_op op,
                                     int status, const char *target_glob);

/**
 * Events the recorder dropped because it was full, of every op.
 * @param ctx the context (NULL: 0).
 * @return the total since the recorder was set up; the sum over ops of
 *         capffi_audit_dropped_op.
 * Thread safety: any thread.
 */
CAPFFI_API uint64_t capffi_audit_dropped(const capffi_ctx *ctx);

/**
 * Events of one op the recorder dropped because it was full.
 * @param ctx the context (NULL: 0).
 * @param op  one op, or CAPFFI_OP_ANY for the total (as
 *            capffi_audit_dropped).
 * @return the number dropped since the recorder was set up; 0 for an op
 *         out of range.
 * Ownership: nothing is handed out.
 * Thread safety: any thread.
 */
CAPFFI_API uint64_t capffi_audit_dropped_op(const capffi_ctx *ctx,
                                            capffi_op op);

/**
 * Deliver now the refusals being coalesced (see the top of this file): one
 * event per object with refusals counted since its last event, to the sink
 * and the recorder. Hosts call it before reading the trail to have every
 * refusal in it.
 * @param ctx the context.
 * @return CAPFFI_OK; CAPFFI_EINVAL (ctx NULL).
 * Ownership: the events go to the sink and the recorder as any event does.
 * Thread safety: any thread; the sink runs on the calling thread.
 */
CAPFFI_API int capffi_audit_flush(capffi_ctx *ctx);

/**
 * The recorded event number i, oldest first (by seq).
 * @param out receives the event.
 * @param ctx the context.
 * @param i   0 for the oldest recorded event.
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL out or ctx); CAPFFI_EBOUNDS
 *         (i >= number recorded).
 * Ownership: the strings belong to the recorder and stay valid until the
 *            next event is recorded or the recorder is reset.
 * Thread safety: any thread.
 */
CAPFFI_API int capffi_audit_get(capffi_event *out, const capffi_ctx *ctx,
                                size_t i);

/**
 * Write the recorded events, oldest first, as JSON Lines: one object per
 * line with the keys seq, time_ns, op, status, reason, token, parent,
 * label, rights, target, detail, count. Token ids are written as 16 hex
 * digits. When the recorder dropped events, one last line says what it
 * dropped:
 *   {"summary":"dropped","dropped":N,"by_op":{"view.new":N1,...}}
 * (by_op lists the ops with drops; it has no seq, which tells it from an
 * event). Every string is valid UTF-8 JSON with no raw control byte.
 * @param ctx the context.
 * @param f   a stream open for writing; flushed, not closed.
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL ctx or f); CAPFFI_EBUSY (a write
 *         error; errno tells which); CAPFFI_ENOMEM.
 * Thread safety: any thread.
 */
CAPFFI_API int capffi_audit_write_jsonl(const capffi_ctx *ctx, FILE *f);

/**
 * Format one event as a JSON object (no newline), as
 * capffi_audit_write_jsonl does. Useful in a sink (a sink that writes each
 * line as it comes keeps a complete trail, whatever the recorder drops).
 * Bytes that are not valid UTF-8 become U+FFFD; control bytes are escaped.
 * @param buf receives the text (may be NULL when cap is 0).
 * @param cap bytes available at buf.
 * @param ev  the event (NULL: empty output).
 * @return the length of the full text, as snprintf does; the output is
 *         truncated (and NUL-terminated) when it does not fit in cap bytes.
 * Thread safety: any thread.
 */
CAPFFI_API size_t capffi_audit_format_json(char *buf, size_t cap,
                                           const capffi_event *ev);

/* ---- reading part of the trail ------------------------------------------ */

/** Matches every reason in a capffi_audit_filter. */
#define CAPFFI_AUDIT_ANY_REASON ((capffi_reason)-1)

/**
 * Which recorded events a reader wants. Start from CAPFFI_AUDIT_FILTER_ALL
 * (zero is not "all": op 0 is token.new) and set what matters; every set
 * field must match.
 */
typedef struct capffi_audit_filter {
    capffi_op op;            /**< CAPFFI_OP_ANY or one op */
    int status;              /**< CAPFFI_AUDIT_ANY_STATUS or one status */
    capffi_reason reason;    /**< CAPFFI_AUDIT_ANY_REASON or one reason */
    const char *label;       /**< NULL for any, else the exact token label */
    const char *target_glob; /**< NULL for any, else an fnmatch(3) pattern
                                  matched against the (escaped) target */
    uint64_t since;          /**< only events with seq > since (a mark) */
} capffi_audit_filter;

/** A filter every event matches. */
#define CAPFFI_AUDIT_FILTER_ALL                                                \
    {                                                                          \
        CAPFFI_OP_ANY, CAPFFI_AUDIT_ANY_STATUS, CAPFFI_AUDIT_ANY_REASON, NULL, \
            NULL, 0                                                            \
    }

/**
 * The sequence number of the newest event delivered so far, 0 before the
 * first. Events that come after it have a greater seq, so a test takes a
 * mark, acts, and reads the events since the mark (the `since` field of a
 * filter, capffi_expect in capffi/testing.h). Refusals still being
 * coalesced are delivered first (capffi_audit_flush), so they fall before
 * the mark.
 * @param ctx the context (NULL: 0).
 * @return the newest seq.
 * Ownership: nothing is handed out.
 * Thread safety: any thread.
 */
CAPFFI_API uint64_t capffi_audit_mark(capffi_ctx *ctx);

/**
 * Count the recorded events a filter matches.
 * @param ctx    the context (NULL: 0).
 * @param filter what to count (NULL: every event).
 * @return the number of matching recorded events (0 without a recorder);
 *         a coalesced event counts once.
 * Ownership: the filter and its strings stay the caller's; only read.
 * Thread safety: any thread.
 */
CAPFFI_API size_t capffi_audit_count_where(const capffi_ctx *ctx,
                                           const capffi_audit_filter *filter);

/**
 * The next recorded event a filter matches, oldest first: start with
 * *pos = 0 and call again until CAPFFI_EBOUNDS.
 *   size_t pos = 0; capffi_event ev;
 *   while (capffi_audit_next(&ev, ctx, &f, &pos) == CAPFFI_OK) ...
 * @param out    receives the event.
 * @param ctx    the context.
 * @param filter what to return (NULL: every event).
 * @param pos    in: where to look from (a recorder index, as
 *               capffi_audit_get's); out: past the event returned.
 * @return CAPFFI_OK; CAPFFI_EBOUNDS (no more; *out zeroed, no message
 *         set); CAPFFI_EINVAL (NULL out, ctx or pos).
 * Ownership: as capffi_audit_get: the strings stay valid until the next
 *            event is recorded or the recorder is reset.
 * Thread safety: any thread; *pos stays meaningful while no event is
 *                recorded (a reader of a live context takes a mark and
 *                filters by `since` rather than keeping positions).
 */
CAPFFI_API int capffi_audit_next(capffi_event *out, const capffi_ctx *ctx,
                                 const capffi_audit_filter *filter,
                                 size_t *pos);

/**
 * Empty the recorder and zero its drop counts, keeping its capacity. The
 * sequence numbers go on (a mark taken before stays meaningful), and the
 * sink is not affected.
 * @param ctx the context.
 * @return CAPFFI_OK; CAPFFI_EINVAL (ctx NULL).
 * Ownership: the recorder stays the context's; the strings of events
 *            read before are invalid after it.
 * Thread safety: any thread.
 */
CAPFFI_API int capffi_audit_reset(capffi_ctx *ctx);

/** capffi_audit_write_jsonl_where: the deterministic form (below). */
#define CAPFFI_JSONL_STABLE 0x1u

/**
 * Write the recorded events a filter matches as JSON Lines, as
 * capffi_audit_write_jsonl does (with its dropped-summary line when the
 * recorder dropped events).
 *
 * With CAPFFI_JSONL_STABLE the output depends only on what happened, not
 * on when or where, so that it can be compared with a golden file:
 * - no time_ns;
 * - seq counts the written events from 1;
 * - token and parent ids become "t1", "t2"... in order of first
 *   appearance ("" for none);
 * - every address in target and detail (`0x` and at least four hex
 *   digits) becomes "@1", "@2"... in order of first appearance, the same
 *   address the same name throughout the output.
 * @param ctx    the context.
 * @param f      a stream open for writing; flushed, not closed.
 * @param filter which events (NULL: all).
 * @param flags  0 or CAPFFI_JSONL_STABLE.
 * @return as capffi_audit_write_jsonl; CAPFFI_EINVAL for unknown flags.
 * Ownership: f and the filter stay the caller's.
 * Thread safety: any thread.
 */
CAPFFI_API int capffi_audit_write_jsonl_where(const capffi_ctx *ctx, FILE *f,
                                              const capffi_audit_filter *filter,
                                              unsigned flags);

/* ---- calls and invocations ---------------------------------------------- */

/** capffi_audit_calls: a fn.call event for every call of a function. */
#define CAPFFI_AUDIT_FN_CALLS 0x1u
/** capffi_audit_calls: a cb.invoke event for every callback invocation. */
#define CAPFFI_AUDIT_CB_INVOKES 0x2u

/**
 * Audit every call of the context's functions and every invocation of its
 * callbacks, present and future (capffi_fn_audit and capffi_cb_audit do
 * it for one). Off by default, and then free: the call path reads a flag
 * it reads anyway. On, each call or invocation takes the careful path and
 * writes one event (a lock and a formatted event: bench/bench_audit
 * measures it):
 * - fn.call: the status of the call (CAPFFI_OK once the native function
 *   returned, or the error that stopped it before), target the function's
 *   symbol (a capffi_fn_from_ptr function: its address), detail
 *   "returned" or the error's message. Calls from nonblocking jobs are
 *   audited on the worker thread that makes them.
 * - cb.invoke: CAPFFI_OK once the handler's result was stored, target the
 *   callback's signature as written, detail "at " and its code address; a
 *   refused or failed invocation writes its
 *   refusal event as it always does (coalesced: at most one per second per
 *   callback, with a count), and no success.
 * @param ctx  the context.
 * @param what CAPFFI_AUDIT_FN_CALLS, CAPFFI_AUDIT_CB_INVOKES, both, or 0
 *             to stop (what capffi_audit_calls_hold holds stays on).
 * @return CAPFFI_OK; CAPFFI_EINVAL (ctx NULL, unknown bits);
 *         CAPFFI_ETHREAD.
 * Ownership: nothing is handed out.
 * Thread safety: owner thread. Calls on other threads see the change at
 *                their next call.
 */
CAPFFI_API int capffi_audit_calls(capffi_ctx *ctx, unsigned what);

/**
 * Keep call or invocation auditing on for a part of the program (an
 * embedded script's binding, a test fixture) whatever the host sets with
 * capffi_audit_calls, until the part releases it: what is audited is the
 * host's setting and every bit held at least once. Holds are counted per
 * bit; each hold is undone by one release.
 * @param ctx  the context.
 * @param what CAPFFI_AUDIT_FN_CALLS, CAPFFI_AUDIT_CB_INVOKES or both.
 * @return CAPFFI_OK; CAPFFI_EINVAL (ctx NULL, unknown bits, a count that
 *         would overflow); CAPFFI_ETHREAD.
 * Ownership: the hold is the caller's to release (capffi_audit_calls_release);
 *            the context drops every hold when it is freed.
 * Thread safety: owner thread.
 */
CAPFFI_API int capffi_audit_calls_hold(capffi_ctx *ctx, unsigned what);

/**
 * Undo one capffi_audit_calls_hold of each bit in what. A part can take
 * back only what it held: the host's setting and other parts' holds stay.
 * @param ctx  the context.
 * @param what the bits to release.
 * @return CAPFFI_OK; CAPFFI_EINVAL (ctx NULL, unknown bits, a bit not
 *         held: nothing is released); CAPFFI_ETHREAD.
 * Ownership: nothing is handed out.
 * Thread safety: owner thread.
 */
CAPFFI_API int capffi_audit_calls_release(capffi_ctx *ctx, unsigned what);

/**
 * What is audited now: the host's setting (capffi_audit_calls) and every
 * held bit (capffi_audit_calls_hold).
 * @param ctx the context (NULL: 0).
 * @return CAPFFI_AUDIT_FN_CALLS, CAPFFI_AUDIT_CB_INVOKES, both, or 0.
 * Ownership: nothing is handed out.
 * Thread safety: owner thread.
 */
CAPFFI_API unsigned capffi_audit_calls_get(const capffi_ctx *ctx);

/** The text of an op ("token.check"), "?" for unknown values. */
CAPFFI_API const char *capffi_op_name(capffi_op op);

/** The text of a reason ("revoked"), "?" for unknown values. */
CAPFFI_API const char *capffi_reason_name(capffi_reason reason);

CAPFFI_END_DECLS

#endif
