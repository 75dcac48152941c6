/*
 * path.h - files as identities: resolving a path to the (device, inode) of
 * what it names, and sets of such identities (grants, deny lists, scopes).
 *
 * Grants are never compared as strings. A path is resolved once (symlinks
 * followed, "." and ".." folded, relative to the working directory at that
 * moment) and then only its identity and its ancestors' identities count.
 * A bare soname (no '/': "libz.so.1") is first found as the loader would
 * find it (soname.h), so every caller, from capffi_lib_open to a deny
 * list, means the same file by it.
 */
#ifndef CAPFFI_PATH_H
#define CAPFFI_PATH_H

#include <sys/types.h>

#include "base/internal.h"

/* Deepest path (in components) that can be checked against grants. */
#define CAPFFI__PATH_DEPTH 128

struct capffi__fid {
    dev_t dev;
    ino_t ino;
};

/* A resolved path. */
struct capffi__file {
    char *canon; /* absolute, no symlinks; owned */
    struct capffi__fid id;
    bool dir;
    bool regular; /* a regular file */
    bool special; /* under /proc, /dev or /sys, or on such a file system */
    size_t n_anc; /* ancestors, parent first, "/" last */
    struct capffi__fid anc[CAPFFI__PATH_DEPTH];
};

/*
 * Check that a caller's path is usable text: not empty, shorter than
 * PATH_MAX, no control characters. Sets the message and returns
 * CAPFFI_EINVAL otherwise. `what` names the argument in the message.
 */
CAPFFI__HIDDEN int capffi__path_validate(capffi_ctx *ctx, const char *path,
                                         const char *what);

/*
 * Resolve path into *out (validated first; a bare soname found through
 * capffi__soname_resolve): symlinks followed, then walked
 * from "/" one directory at a time, so the identities recorded are those
 * of what was actually traversed. A path spelled under /proc, /dev or /sys
 * is special even when it resolves elsewhere. Returns CAPFFI_OK,
 * CAPFFI_EINVAL, CAPFFI_ENOTFOUND or CAPFFI_ENOMEM with the message set.
 * On success the caller releases *out with capffi__file_release.
 */
CAPFFI__HIDDEN int capffi__file_resolve(capffi_ctx *ctx,
                                        struct capffi__file *out,
                                        const char *path);

/*
 * Resolve path like capffi__file_resolve and open the file itself
 * (O_RDONLY): *fd is the descriptor whose identity *out describes, to be
 * closed by the caller. Same errors.
 */
CAPFFI__HIDDEN int capffi__file_open(capffi_ctx *ctx, struct capffi__file *out,
                                     const char *path, int *fd);

CAPFFI__HIDDEN void capffi__file_release(struct capffi__file *f);

/* One grant or deny entry. */
struct capffi__pathent {
    struct capffi__fid id;
    bool dir;
    bool special;
    char *canon; /* for messages and audit; owned */
    size_t n_anc;
    struct capffi__fid *anc; /* ancestors, parent first; owned */
};

/*
 * A set of entries. Sets handed to tokens are immutable and shared by
 * reference count (owner thread only, so the count is plain).
 */
struct capffi__pathset {
    unsigned refs;
    size_t n, cap;
    struct capffi__pathent *ent;
};

CAPFFI__HIDDEN struct capffi__pathset *capffi__pathset_new(void);
CAPFFI__HIDDEN struct capffi__pathset *
capffi__pathset_copy(const struct capffi__pathset *s);
CAPFFI__HIDDEN struct capffi__pathset *
capffi__pathset_ref(struct capffi__pathset *s);
CAPFFI__HIDDEN void capffi__pathset_unref(struct capffi__pathset *s);

/* Add f (a no-op when the same identity is present). CAPFFI_ENOMEM. */
CAPFFI__HIDDEN int capffi__pathset_add(struct capffi__pathset *s,
                                       const struct capffi__file *f);

/* Add a copy of entry e (a no-op when its identity is present). */
CAPFFI__HIDDEN int capffi__pathset_add_entry(struct capffi__pathset *s,
                                             const struct capffi__pathent *e);

/* True when e lies strictly below the directory dir. */
CAPFFI__HIDDEN bool capffi__pathent_below(const struct capffi__pathent *e,
                                          const struct capffi__file *dir);

/*
 * The most specific (deepest) entry that covers f: the same identity, or a
 * directory that is one of f's ancestors. Unless any_entry is set (deny
 * lists), a special file (/proc, /dev, /sys) is covered only by a special
 * entry. NULL when none does; s may be NULL.
 */
CAPFFI__HIDDEN const struct capffi__pathent *
capffi__pathset_covers(const struct capffi__pathset *s,
                       const struct capffi__file *f, bool any_entry);

/* Remove every entry that is f or lies below f (when f is a directory);
 * f NULL removes every entry. */
CAPFFI__HIDDEN void capffi__pathset_remove_under(struct capffi__pathset *s,
                                                 const struct capffi__file *f);

/* A digest of the set's identities for the token MAC (order-free). */
CAPFFI__HIDDEN void capffi__pathset_digest(const struct capffi__pathset *s,
                                           uint8_t out[32]);

#endif
