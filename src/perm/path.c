/*
 * path.c - resolving paths to file identities, and identity sets.
 *
 * Threats answered here (THREATS.md): L3 and L7 (a path is its identity,
 * whatever the spelling: relative, "..", "//", ".", a trailing "/", a
 * symlink, or a later chdir), L4 (/proc, /dev and /sys need a grant that
 * names them), L5 (a bare soname names the file the loader would load,
 * found by soname.c, wherever a path is taken), L8 (deny entries match by
 * identity too).
 */
#include "perm/path.h"
#include "perm/soname.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

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

/*
 * Was the path, as the caller spelled it, under /proc, /dev or /sys?
 * Judged lexically on its absolute form ("." and ".." folded, no symlink
 * followed), because /proc/self/fd/N resolves to an ordinary file name.
 */
static bool
spelled_special(const char *path)
{
    char abs[PATH_MAX * 2];
    size_t len = 0;
    if (path[0] != '/') {
        if (!getcwd(abs, PATH_MAX))
            return false;
        len = strlen(abs);
    }
    abs[len] = '\0';
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (n == 0)
            break;
        if (n == 1 && p[0] == '.') {
            /* nothing */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            char *slash = strrchr(abs, '/');
            len = slash ? (size_t)(slash - abs) : 0;
            abs[len] = '\0';
        } else if (len + 1 + n < sizeof abs) {
            abs[len++] = '/';
            memcpy(abs + len, p, n);
            len += n;
            abs[len] = '\0';
        }
        p += n;
    }
    if (len == 0)
        return false;
    return under_tree(abs, "/proc") || under_tree(abs, "/dev") ||
           under_tree(abs, "/sys");
}

/*
 * Walk canon (absolute, no symlinks) from "/" one component at a time
 * with openat(O_NOFOLLOW), recording each directory's identity, and open
 * the last component with final_flags. What is checked is therefore what
 * was traversed: a directory or file swapped for a symlink meanwhile makes
 * the walk fail instead of silently leading elsewhere (L2, L7).
 */
static int
walk(capffi_ctx *ctx, struct capffi__file *f, const char *canon,
     int final_flags, int *fd_out)
{
    struct capffi__fid chain[CAPFFI__PATH_DEPTH];
    size_t depth = 0;
    struct stat st;
    int dfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fstat(dfd, &st) != 0) {
        if (dfd >= 0)
            close(dfd);
        return capffi__fail(ctx, CAPFFI_ENOTFOUND, "cannot open '/': %s",
                            strerror(errno));
    }
    chain[depth].dev = st.st_dev;
    chain[depth].ino = st.st_ino;
    depth++;

    const char *p = canon + 1;
    int fd = -1;
    if (!*p) { /* the root itself */
        fd = final_flags == O_PATH ? dfd : openat(dfd, ".", final_flags);
        if (fd != dfd)
            close(dfd);
        depth = 0; /* no ancestors */
    }
    while (*p) {
        char comp[NAME_MAX + 1];
        size_t n = strcspn(p, "/");
        if (n > NAME_MAX) {
            close(dfd);
            return capffi__fail(ctx, CAPFFI_EINVAL,
                                "a component of '%s' is too long", canon);
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        p += n;
        while (*p == '/')
            p++;
        bool last = *p == '\0';
        int flags = last ? final_flags : O_PATH | O_DIRECTORY;
        int nfd = openat(dfd, comp, flags | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(dfd);
        if (nfd < 0)
            return capffi__fail(
                ctx,
                e == ENOENT || e == ELOOP || e == ENOTDIR ? CAPFFI_ENOTFOUND
                                                          : CAPFFI_EPERM,
                "cannot open '%s' at '%s': %s%s", canon, comp, strerror(e),
                e == ELOOP ? " (it changed while being "
                             "resolved)"
                           : "");
        if (last) {
            fd = nfd;
            break;
        }
        if (depth >= CAPFFI__PATH_DEPTH) {
            close(nfd);
            return capffi__fail(ctx, CAPFFI_EINVAL,
                                "path '%s' is deeper than %d components", canon,
                                CAPFFI__PATH_DEPTH);
        }
        if (fstat(nfd, &st) != 0) {
            close(nfd);
            return capffi__fail(ctx, CAPFFI_ENOTFOUND, "cannot stat in '%s'",
                                canon);
        }
        chain[depth].dev = st.st_dev;
        chain[depth].ino = st.st_ino;
        depth++;
        dfd = nfd;
    }
    struct statfs sfs;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return capffi__fail(ctx, CAPFFI_ENOTFOUND, "cannot open '%s': %s",
                            canon, strerror(errno));
    }
    f->id.dev = st.st_dev;
    f->id.ino = st.st_ino;
    f->dir = S_ISDIR(st.st_mode);
    f->regular = S_ISREG(st.st_mode);
    f->special |=
        is_special(canon, fstatfs(fd, &sfs) == 0 ? (long)sfs.f_type : 0);
    f->n_anc = depth;
    for (size_t i = 0; i < depth; i++)
        f->anc[i] = chain[depth - 1 - i];
    if (fd_out)
        *fd_out = fd;
    else
        close(fd);
    return CAPFFI_OK;
}

static int
resolve(capffi_ctx *ctx, struct capffi__file *out, const char *path,
        int final_flags, int *fd_out)
{
    memset(out, 0, sizeof *out);
    int rc = capffi__path_validate(ctx, path, "path");
    if (rc)
        return rc;
    char found[PATH_MAX];
    if (capffi__soname_is_bare(path)) {
        if ((rc = capffi__soname_resolve(ctx, path, found)))
            return rc;
        path = found;
    }
    char canon[PATH_MAX];
    if (!realpath(path, canon)) {
        int e = errno;
        return capffi__fail(ctx, e == ENOMEM ? CAPFFI_ENOMEM : CAPFFI_ENOTFOUND,
                            "cannot resolve '%s': %s", path, strerror(e));
    }
    out->canon = capffi__strdup(canon);
    if (!out->canon)
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    out->special = spelled_special(path);
    rc = walk(ctx, out, canon, final_flags, fd_out);
    if (rc)
        capffi__file_release(out);
    return rc;
}

int
capffi__file_resolve(capffi_ctx *ctx, struct capffi__file *out,
                     const char *path)
{
    return resolve(ctx, out, path, O_PATH, NULL);
}

int
capffi__file_open(capffi_ctx *ctx, struct capffi__file *out, const char *path,
                  int *fd)
{
    *fd = -1;
    return resolve(ctx, out, path, O_RDONLY, fd);
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
