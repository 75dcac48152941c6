/*
 * soname.h - resolving a bare soname to a file (soname.c).
 */
#ifndef CAPFFI_SRC_SONAME_H
#define CAPFFI_SRC_SONAME_H

#include "base/internal.h"

/*
 * Find the file the dynamic loader would load for `name` (no '/'), into
 * out (PATH_MAX bytes). CAPFFI_OK or CAPFFI_ENOTFOUND (message set).
 */
CAPFFI__HIDDEN int capffi__soname_resolve(capffi_ctx *ctx, const char *name,
                                          char *out);

#endif
