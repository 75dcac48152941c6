/*
 * capffi/error.h - error codes.
 *
 * Every fallible capffi function returns 0 (CAPFFI_OK) or one of the
 * negative codes below. Numbers never change once released; new codes are
 * appended. The human detail of the last failure is in capffi_ctx_errmsg().
 */
#ifndef CAPFFI_ERROR_H
#define CAPFFI_ERROR_H

#include "common.h"

CAPFFI_BEGIN_DECLS

/* X(name, value, message) */
#define CAPFFI_ERRNO_MAP(X)                                                    \
    X(OK, 0, "success")                                                        \
    X(EINVAL, -1, "invalid argument")                                          \
    X(ENOMEM, -2, "out of memory")                                             \
    X(EPERM, -3, "permission denied")                                          \
    X(ETOKEN, -4, "invalid token")                                             \
    X(EREVOKED, -5, "token revoked, expired or used up")                       \
    X(ENOTFOUND, -6, "not found")                                              \
    X(ESIG, -7, "malformed signature")                                         \
    X(ERANGE, -8, "value does not fit the declared type")                      \
    X(EBOUNDS, -9, "access out of bounds")                                     \
    X(EBUSY, -10, "resource busy")                                             \
    X(ETYPE, -11, "wrong type")                                                \
    X(ETHREAD, -12, "wrong thread")                                            \
    X(ECLOSED, -13, "resource closed")                                         \
    X(ECANCELED, -14, "operation canceled")                                    \
    X(ETIMEDOUT, -15, "timed out")                                             \
    X(EDLOPEN, -16, "dynamic loader error")                                    \
    X(ECALLBACK, -17, "callback handler failed")

/** Error codes. */
typedef enum capffi_error {
#define CAPFFI__ERR_ENUM(name, value, msg) CAPFFI_##name = (value),
    CAPFFI_ERRNO_MAP(CAPFFI__ERR_ENUM)
#undef CAPFFI__ERR_ENUM
        CAPFFI__ERR_LAST = -18
} capffi_error;

/**
 * A short English description of an error code.
 * @return a static string; "unknown error" for codes not in the table.
 *         Never NULL, never allocates.
 * Thread safety: any thread.
 */
CAPFFI_API const char *capffi_strerror(int code);

/**
 * The symbolic name of an error code, e.g. "CAPFFI_EPERM".
 * @return a static string; "CAPFFI_E?" for codes not in the table.
 * Thread safety: any thread.
 */
CAPFFI_API const char *capffi_err_name(int code);

CAPFFI_END_DECLS

#endif
