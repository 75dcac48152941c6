/*
 * path.c - resolving paths to file identities, and identity sets.
 *
 * Threats answered here (THREATS.md): L3 and L7 (a path is its identity,
 * whatever the spelling: relative, "..", "//", ".", a trailing "/", a
 * symlink, or a later chdir), L4 (/proc, /dev and /sys need a grant that
 * names them), L8 (deny entries match by identity too).
 */
#include "path.h"

#include <errno.h>
#include <limits.h>
#include <linux/magic.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "ctx.h"

int
capffi__path_validate(capffi_ctx *ctx, const char *path, const char *what)
{
    if (!path)
        return capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL", what);
    if (!*path)
        return capffi__fail(ctx, CAPFFI_EINVAL, "%s is empty", what);
    size_t n = strnlen(path, PATH_MAX);
    if (n >= PATH_MAX)
        return capffi__fail(ctx, CAPFFI_EINVAL, "%s is longer than %d bytes",
                            what, PATH_MAX - 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c < 0x20 || c == 0x7f)
            return capffi__fail(ctx, CAPFFI_EINVAL,
                                "%s has a control character at byte %zu", what,
                                i);
    }
    return CAPFFI_OK;
}

static bool
under_tree(const char *canon, const char *tree)
{
    size_t n = strlen(tree);
    return strncmp(canon, tree, n) == 0 &&
           (canon[n] == '\0' || canon[n] == '/');
}

/* Pseudo file systems whose files are views of the process or the kernel:
 * /proc/self/fd/N, /proc/self/mem and friends (Deno CVE-2024-34346). */
static bool
is_special(const char *canon, long fstype)
{
    if (under_tree(canon, "/proc") || under_tree(canon, "/dev") ||
        under_tree(canon, "/sys"))
        return true;
    switch (fstype) {
    case PROC_SUPER_MAGIC:
    case SYSFS_MAGIC:
    case DEVPTS_SUPER_MAGIC:
    case DEBUGFS_MAGIC:
    case SECURITYFS_MAGIC:
        return true;
    default:
        return false;
    }
}

/* Fill f->anc with the identities of every directory above f->canon. */
static int
fill_ancestors(capffi_ctx *ctx, struct capffi__file *f)
{
    char buf[PATH_MAX];
    size_t len = strlen(f->canon);
    memcpy(buf, f->canon, len + 1);
    f->n_anc = 0;
    while (len > 1) {
        char *slash = strrchr(buf, '/');
        if (slash == buf)
            slash[1] = '\0';
        else
            *slash = '\0';
        len = strlen(buf);
        if (f->n_anc == CAPFFI__PATH_DEPTH)
            return capffi__fail(ctx, CAPFFI_EINVAL,
                                "path '%s' is deeper than %d components",
                                f->canon, CAPFFI__PATH_DEPTH);
        struct stat st;
        if (stat(buf, &st) != 0)
            return capffi__fail(ctx, CAPFFI_ENOTFOUND,
                                "directory '%s' vanished while resolving: %s",
                                buf, strerror(errno));
        f->anc[f->n_anc].dev = st.st_dev;
        f->anc[f->n_anc].ino = st.st_ino;
        f->n_anc++;
    }
    return CAPFFI_OK;
}

int
capffi__file_resolve(capffi_ctx *ctx, struct capffi__file *out,
                     const char *path)
{
    memset(out, 0, sizeof *out);
    int rc = capffi__path_validate(ctx, path, "path");
    if (rc)
        return rc;
    char canon[PATH_MAX];
    if (!realpath(path, canon)) {
        int e = errno;
        return capffi__fail(ctx, e == ENOMEM ? CAPFFI_ENOMEM : CAPFFI_ENOTFOUND,
                            "cannot resolve '%s': %s", path, strerror(e));
    }
    struct stat st;
    struct statfs sfs;
    if (stat(canon, &st) != 0)
        return capffi__fail(ctx, CAPFFI_ENOTFOUND, "cannot stat '%s': %s",
                            canon, strerror(errno));
    long fstype = statfs(canon, &sfs) == 0 ? (long)sfs.f_type : 0;
    out->canon = capffi__strdup(canon);
    if (!out->canon)
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    out->id.dev = st.st_dev;
    out->id.ino = st.st_ino;
    out->dir = S_ISDIR(st.st_mode);
    out->special = is_special(canon, fstype);
    rc = fill_ancestors(ctx, out);
    if (rc)
        capffi__file_release(out);
    return rc;
}

int
capffi__file_from_fd(capffi_ctx *ctx, struct capffi__file *out, int fd,
                     const char *canon)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    struct statfs sfs;
    if (fstat(fd, &st) != 0)
        return capffi__fail(ctx, CAPFFI_ENOTFOUND, "cannot stat '%s': %s",
                            canon, strerror(errno));
    long fstype = fstatfs(fd, &sfs) == 0 ? (long)sfs.f_type : 0;
    out->canon = capffi__strdup(canon);
    if (!out->canon)
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    out->id.dev = st.st_dev;
    out->id.ino = st.st_ino;
    out->dir = S_ISDIR(st.st_mode);
    out->special = is_special(canon, fstype);
    int rc = fill_ancestors(ctx, out);
    if (rc)
        capffi__file_release(out);
    return rc;
}

void
capffi__file_release(struct capffi__file *f)
{
    if (f) {
        capffi__free(f->canon);
        f->canon = NULL;
    }
}

static bool
fid_eq(struct capffi__fid a, struct capffi__fid b)
{
    return a.dev == b.dev && a.ino == b.ino;
}

struct capffi__pathset *
capffi__pathset_new(void)
{
    struct capffi__pathset *s = capffi__calloc(1, sizeof *s);
    if (s)
        s->refs = 1;
    return s;
}

static void
ent_release(struct capffi__pathent *e)
{
    capffi__free(e->canon);
    capffi__free(e->anc);
}

static int
ent_fill(struct capffi__pathent *e, const char *canon, struct capffi__fid id,
         bool dir, bool special, const struct capffi__fid *anc, size_t n_anc)
{
    memset(e, 0, sizeof *e);
    e->canon = capffi__strdup(canon);
    e->anc = capffi__malloc((n_anc ? n_anc : 1) * sizeof *anc);
    if (!e->canon || !e->anc) {
        ent_release(e);
        return CAPFFI_ENOMEM;
    }
    memcpy(e->anc, anc, n_anc * sizeof *anc);
    e->n_anc = n_anc;
    e->id = id;
    e->dir = dir;
    e->special = special;
    return CAPFFI_OK;
}

static int
reserve(struct capffi__pathset *s, size_t want)
{
    if (want <= s->cap)
        return CAPFFI_OK;
    size_t cap = s->cap ? s->cap * 2 : 4;
    while (cap < want)
        cap *= 2;
    struct capffi__pathent *ent = capffi__realloc(s->ent, cap * sizeof *ent);
    if (!ent)
        return CAPFFI_ENOMEM;
    s->ent = ent;
    s->cap = cap;
    return CAPFFI_OK;
}

struct capffi__pathset *
capffi__pathset_copy(const struct capffi__pathset *s)
{
    struct capffi__pathset *c = capffi__pathset_new();
    if (!c)
        return NULL;
    if (!s || !s->n)
        return c;
    if (reserve(c, s->n)) {
        capffi__pathset_unref(c);
        return NULL;
    }
    for (size_t i = 0; i < s->n; i++) {
        const struct capffi__pathent *e = &s->ent[i];
        if (ent_fill(&c->ent[i], e->canon, e->id, e->dir, e->special, e->anc,
                     e->n_anc)) {
            capffi__pathset_unref(c);
            return NULL;
        }
        c->n = i + 1;
    }
    return c;
}

struct capffi__pathset *
capffi__pathset_ref(struct capffi__pathset *s)
{
    if (s)
        s->refs++;
    return s;
}

void
capffi__pathset_unref(struct capffi__pathset *s)
{
    if (!s || --s->refs)
        return;
    for (size_t i = 0; i < s->n; i++)
        ent_release(&s->ent[i]);
    capffi__free(s->ent);
    capffi__free(s);
}

int
capffi__pathset_add(struct capffi__pathset *s, const struct capffi__file *f)
{
    for (size_t i = 0; i < s->n; i++)
        if (fid_eq(s->ent[i].id, f->id))
            return CAPFFI_OK;
    if (reserve(s, s->n + 1))
        return CAPFFI_ENOMEM;
    if (ent_fill(&s->ent[s->n], f->canon, f->id, f->dir, f->special, f->anc,
                 f->n_anc))
        return CAPFFI_ENOMEM;
    s->n++;
    return CAPFFI_OK;
}

int
capffi__pathset_add_entry(struct capffi__pathset *s,
                          const struct capffi__pathent *e)
{
    for (size_t i = 0; i < s->n; i++)
        if (fid_eq(s->ent[i].id, e->id))
            return CAPFFI_OK;
    if (reserve(s, s->n + 1))
        return CAPFFI_ENOMEM;
    if (ent_fill(&s->ent[s->n], e->canon, e->id, e->dir, e->special, e->anc,
                 e->n_anc))
        return CAPFFI_ENOMEM;
    s->n++;
    return CAPFFI_OK;
}

bool
capffi__pathent_below(const struct capffi__pathent *e,
                      const struct capffi__file *dir)
{
    for (size_t a = 0; dir->dir && a < e->n_anc; a++)
        if (fid_eq(e->anc[a], dir->id))
            return true;
    return false;
}

const struct capffi__pathent *
capffi__pathset_covers(const struct capffi__pathset *s,
                       const struct capffi__file *f, bool any_entry)
{
    const struct capffi__pathent *best = NULL;
    for (size_t i = 0; s && i < s->n; i++) {
        const struct capffi__pathent *e = &s->ent[i];
        bool hit = fid_eq(e->id, f->id);
        if (f->special && !e->special && !any_entry)
            continue;
        for (size_t a = 0; !hit && e->dir && a < f->n_anc; a++)
            hit = fid_eq(e->id, f->anc[a]);
        if (hit && (!best || e->n_anc > best->n_anc))
            best = e;
    }
    return best;
}

void
capffi__pathset_remove_under(struct capffi__pathset *s,
                             const struct capffi__file *f)
{
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct capffi__pathent *e = &s->ent[i];
        bool below = !f || fid_eq(e->id, f->id);
        for (size_t a = 0; !below && f->dir && a < e->n_anc; a++)
            below = fid_eq(e->anc[a], f->id);
        if (below)
            ent_release(e);
        else
            s->ent[w++] = *e;
    }
    s->n = w;
}

void
capffi__pathset_digest(const struct capffi__pathset *s, uint8_t out[32])
{
    /* Lane-wise sum of per-entry hashes: independent of order, and only
     * ever used as MAC input. */
    uint64_t lane[4] = { 0, 0, 0, 0 };
    for (size_t i = 0; s && i < s->n; i++) {
        const struct capffi__pathent *e = &s->ent[i];
        uint64_t in[3] = { (uint64_t)e->id.dev, (uint64_t)e->id.ino,
                           (uint64_t)e->dir };
        uint64_t h[4];
        crypto_generichash((unsigned char *)h, sizeof h,
                           (const unsigned char *)in, sizeof in, NULL, 0);
        for (int k = 0; k < 4; k++)
            lane[k] += h[k];
    }
    memcpy(out, lane, 32);
}
