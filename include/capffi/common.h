/*
 * capffi/common.h - types and macros shared by every capffi header.
 *
 * Every public header includes this one; it compiles alone under
 * -std=c11 -pedantic and from C++.
 */
#ifndef CAPFFI_COMMON_H
#define CAPFFI_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define CAPFFI_API
#elif defined(CAPFFI_BUILDING) && defined(__GNUC__)
#define CAPFFI_API __attribute__((visibility("default")))
#else
#define CAPFFI_API
#endif

#ifdef __cplusplus
#define CAPFFI_BEGIN_DECLS extern "C" {
#define CAPFFI_END_DECLS }
#else
#define CAPFFI_BEGIN_DECLS
#define CAPFFI_END_DECLS
#endif

#define CAPFFI_VERSION_MAJOR 0
#define CAPFFI_VERSION_MINOR 1
#define CAPFFI_VERSION_PATCH 0
#define CAPFFI_VERSION_STRING "0.1.0"

CAPFFI_BEGIN_DECLS

/** A permission domain: grants, tokens, audit trail. Opaque. */
typedef struct capffi_ctx capffi_ctx;
/** A loaded native library. Opaque. */
typedef struct capffi_lib capffi_lib;
/** A bound native function, ready to call. Opaque. */
typedef struct capffi_fn capffi_fn;
/** Host memory that may be handed to native code. Opaque. */
typedef struct capffi_buf capffi_buf;
/** A bounded window on memory, with read and/or write access. Opaque. */
typedef struct capffi_view capffi_view;
/** A callback: a C function pointer that runs a host handler. Opaque. */
typedef struct capffi_cb capffi_cb;
/** A nonblocking call of a bound function. Opaque. */
typedef struct capffi_job capffi_job;
/** An instance of a registered class (SafeFFI, capffi/obj.h). Opaque. */
typedef struct capffi_obj capffi_obj;

/**
 * A capability token. A value, not a handle: copy it, store it, pass it.
 * It verifies only in the context that minted it, and only while neither
 * it nor an ancestor has been revoked. The fields are public so hosts can
 * move tokens through their own value systems; changing any bit makes the
 * token fail verification.
 */
typedef struct capffi_token {
    uint64_t id;     /**< random, unique within its context */
    uint8_t tag[16]; /**< keyed MAC, never printed or logged by capffi */
} capffi_token;

/** @return the library's version string, e.g. "0.1.0". Never NULL.
 *  Thread safety: any thread. */
CAPFFI_API const char *capffi_version(void);

CAPFFI_END_DECLS

#endif
