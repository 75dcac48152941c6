/*
 * capffi/testing.h - asserting what the audit trail says, in tests.
 *
 * A test records the trail (capffi_audit_record), takes a mark
 * (capffi_audit_mark), acts, and asks whether the events since the mark
 * match a list of patterns:
 *
 *   uint64_t mark = capffi_audit_mark(ctx);
 *   ... open libm, bind cos, call it ...
 *   const char *want[] = { "lib.open ok *libm.so.6",
 *                          "lib.bind ok cos" };
 *   char report[2048];
 *   if (capffi_expect(ctx, mark, CAPFFI_EXPECT_ORDERED, want, 2, report,
 *                     sizeof report) != CAPFFI_OK)
 *       fail(report);
 *
 * A pattern is `op status [target]`, separated by spaces:
 * - op: an op's name ("lib.open") or an fnmatch(3) pattern ("lib.*", "*");
 * - status: "ok", "fail" (any error), "*", or an error's name with or
 *   without its prefix ("EPERM", "CAPFFI_EPERM");
 * - target: the rest of the pattern, an fnmatch(3) pattern matched against
 *   the event's (escaped) target; omitted, any target. capffi/audit.h says
 *   what each op's target is.
 *
 * Without flags the patterns match distinct events in any order, and other
 * events may come between them. CAPFFI_EXPECT_ORDERED asks for the
 * patterns' order; CAPFFI_EXPECT_EXACT for no event besides the matched
 * ones.
 *
 * On a mismatch the report lists the events since the mark, the pattern
 * each matched, the unexpected ones (with CAPFFI_EXPECT_EXACT) and the
 * patterns nothing matched, e.g.:
 *
 *   audit: 1 of 2 patterns matched, 1 event unexpected (since seq 12;
 *   ordered, exact)
 *     = 13 lib.open ok /usr/lib/x86_64-linux-gnu/libm.so.6   [1]
 *     + 14 lib.bind ENOTFOUND cosf
 *     - [2] lib.bind ok cos
 */
#ifndef CAPFFI_TESTING_H
#define CAPFFI_TESTING_H

#include "audit.h"

CAPFFI_BEGIN_DECLS

/** capffi_expect: the patterns match in the order given. */
#define CAPFFI_EXPECT_ORDERED 0x1u
/** capffi_expect: no event since the mark besides the matched ones. */
#define CAPFFI_EXPECT_EXACT 0x2u

/**
 * Whether the recorded events since a mark match a list of patterns (the
 * top of this file says how).
 * @param ctx      the context; its recorder must be on
 *                 (capffi_audit_record). Refusals still being coalesced
 *                 are delivered first (capffi_audit_flush).
 * @param mark     from capffi_audit_mark; 0 for every recorded event.
 * @param flags    0, CAPFFI_EXPECT_ORDERED, CAPFFI_EXPECT_EXACT, or both.
 * @param patterns n patterns.
 * @param n        how many (0 with CAPFFI_EXPECT_EXACT: nothing happened).
 * @param report   receives the report (may be NULL when cap is 0): on a
 *                 mismatch the listing above, else a one-line summary;
 *                 always NUL-terminated, cut short to fit.
 * @param cap      bytes available at report.
 * @return CAPFFI_OK when they match; CAPFFI_ENOTFOUND when they do not
 *         (the message is the report's first line); CAPFFI_EINVAL (NULL
 *         ctx or patterns with n > 0, unknown flags, no recorder, a
 *         malformed pattern: the message names it and the byte);
 *         CAPFFI_EBUSY (the recorder dropped events since the mark, so
 *         the answer would be a guess: record more); CAPFFI_ENOMEM.
 * Ownership: patterns and report stay the caller's; nothing is kept.
 * Thread safety: any thread; events recorded while it reads may or may
 *                not be seen.
 */
CAPFFI_API int capffi_expect(capffi_ctx *ctx, uint64_t mark, unsigned flags,
                             const char *const *patterns, size_t n,
                             char *report, size_t cap);

CAPFFI_END_DECLS

#endif
