/*
 * soname.h - resolving a bare soname to a file (soname.c).
 *
 * The one place a name without '/' becomes a file: capffi__file_resolve
 * and capffi__file_open (path.c) go through it, so a library opened, a
 * grant, a deny entry, a token's scope and a checked path all name the
 * same file for the same soname.
 */
#ifndef CAPFFI_SRC_SONAME_H
#define CAPFFI_SRC_SONAME_H

#include "base/internal.h"

/*
 * Is path a bare soname ("libz.so.1"): no '/', and neither "." nor ".."
 * (directories, never a library's name)? The caller has validated it.
 */
CAPFFI__HIDDEN bool capffi__soname_is_bare(const char *path);

/*
 * Find the file the dynamic loader would load for `name` (a bare soname),
 * into out (PATH_MAX bytes). CAPFFI_OK or CAPFFI_ENOTFOUND (message set,
 * naming the soname).
 */
CAPFFI__HIDDEN int capffi__soname_resolve(capffi_ctx *ctx, const char *name,
                                          char *out);

#endif
