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
    X(CTX_POLL, "ctx.poll")

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
    X(BOUNDS, "out of bounds")

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
} capffi_event;

/** The sink signature. */
typedef void (*capffi_audit_fn)(void *payload, const capffi_event *ev);

/**
 * Send every event to fn. NULL removes the sink.
 * @return CAPFFI_OK; CAPFFI_EINVAL (ctx NULL); CAPFFI_ETHREAD.
 */
CAPFFI_API int capffi_audit_set_sink(capffi_ctx *ctx, capffi_audit_fn fn,
                                     void *payload);

/**
 * Keep the last `capacity` events in memory (older ones are dropped and
 * counted in capffi_audit_dropped). A second call empties the recorder and
 * sets the new capacity; capacity 0 stops recording and frees it.
 * @return CAPFFI_OK; CAPFFI_EINVAL (ctx NULL, capacity too large);
 *         CAPFFI_ETHREAD; CAPFFI_ENOMEM (the old recorder is kept).
 */
CAPFFI_API int capffi_audit_record(capffi_ctx *ctx, size_t capacity);

/**
 * Count recorded events.
 * @param op          CAPFFI_OP_ANY or one op.
 * @param status      CAPFFI_AUDIT_ANY_STATUS or one status (0 = allowed).
 * @param target_glob NULL for any target, else an fnmatch(3) pattern
 *                    matched against the event's target.
 * @return the number of matching recorded events (0 without a recorder).
 */
CAPFFI_API size_t capffi_audit_count(const capffi_ctx *ctx, capffi_op op,
                                     int status, const char *target_glob);

/** Events dropped because the recorder was full. */
CAPFFI_API uint64_t capffi_audit_dropped(const capffi_ctx *ctx);

/**
 * The recorded event number i, oldest first.
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL out or ctx); CAPFFI_EBOUNDS
 *         (i >= number recorded). The strings stay valid until the next
 *         event is recorded or the recorder is reset.
 */
CAPFFI_API int capffi_audit_get(capffi_event *out, const capffi_ctx *ctx,
                                size_t i);

/**
 * Write the recorded events as JSON Lines: one object per line with the
 * keys seq, time_ns, op, status, reason, token, parent, label, rights,
 * target, detail. Token ids are written as 16 hex digits.
 * @return CAPFFI_OK; CAPFFI_EINVAL (NULL ctx or f); CAPFFI_EBUSY (a write
 *         error; errno tells which); CAPFFI_ENOMEM.
 */
CAPFFI_API int capffi_audit_write_jsonl(const capffi_ctx *ctx, FILE *f);

/**
 * Format one event as a JSON object (no newline), as
 * capffi_audit_write_jsonl does. Useful in a sink.
 * @return the length of the full text, as snprintf does; the output is
 *         truncated (and NUL-terminated) when it does not fit in cap bytes.
 */
CAPFFI_API size_t capffi_audit_format_json(char *buf, size_t cap,
                                           const capffi_event *ev);

/** The text of an op ("token.check"), "?" for unknown values. */
CAPFFI_API const char *capffi_op_name(capffi_op op);

/** The text of a reason ("revoked"), "?" for unknown values. */
CAPFFI_API const char *capffi_reason_name(capffi_reason reason);

CAPFFI_END_DECLS

#endif
