/*
 * error.c - the error table, failure messages, and small shared helpers.
 */
#include "base/internal.h"

#include <stdio.h>
#include <time.h>

#include "base/owner.h"

const char *
capffi_version(void)
{
    return CAPFFI_VERSION_STRING;
}

const char *
capffi_strerror(int code)
{
    switch (code) {
#define MSG_CASE(name, value, msg)                                             \
    case value:                                                                \
        return msg;
        CAPFFI_ERRNO_MAP(MSG_CASE)
#undef MSG_CASE
    default:
        return "unknown error";
    }
}

const char *
capffi_err_name(int code)
{
    switch (code) {
#define NAME_CASE(name, value, msg)                                            \
    case value:                                                                \
        return "CAPFFI_" #name;
        CAPFFI_ERRNO_MAP(NAME_CASE)
#undef NAME_CASE
    default:
        return "CAPFFI_E?";
    }
}

/* The message of failures on threads that do not own the context. */
static _Thread_local char thread_msg[CAPFFI__MSG_MAX];

int
capffi__vfail(capffi_ctx *ctx, int code, const char *fmt, va_list ap)
{
    char *buf = thread_msg;
    if (ctx && capffi__ctx_on_owner(ctx))
        buf = capffi__base(ctx)->errmsg;
    vsnprintf(buf, CAPFFI__MSG_MAX, fmt, ap);
    return code;
}

int
capffi__fail(capffi_ctx *ctx, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    capffi__vfail(ctx, code, fmt, ap);
    va_end(ap);
    return code;
}

const char *
capffi_ctx_errmsg(const capffi_ctx *ctx)
{
    if (ctx && capffi__ctx_on_owner(ctx))
        return capffi__base(ctx)->errmsg;
    return thread_msg;
}

int
capffi__ctx_owner_check(capffi_ctx *ctx, const char *fn)
{
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    if (!capffi__ctx_on_owner(ctx))
        return capffi__fail(ctx, CAPFFI_ETHREAD,
                            "%s called off the owner thread", fn);
    return CAPFFI_OK;
}

int64_t
capffi__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
