/*
 * lib.c - loading libraries through tokens, binding symbols, statics.
 *
 * Threats answered here (THREATS.md): L1 (a bound symbol must live in the
 * library itself, checked with dladdr1's link map), L2 and L3 (the file is
 * opened once; its descriptor's identity is what the token is checked
 * against, and the loader is handed that descriptor, or a kept one of the
 * same file, through /proc/self/fd/N, so a swapped symlink or replaced
 * file is never what loads), L4 (the descriptor stays open while the
 * library is loaded, and for good when the object outlives the close, so
 * its /proc/self/fd name cannot be reused; after loading, the object's
 * mapping is checked to be that file), L5 (perm/soname.c), L6 (NULL needs
 * DLOPEN_GLOBAL), L9 (nothing reaches dlopen before the check), L10 (a
 * library the process could write is flagged in the audit event).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/maps.h"
#include "call/lib.h"
#include "call/fn.h"
#include "perm/soname.h"
#include "types/value.h"

/* The target of lib.open and lib.close events for the process itself
 * (capffi_lib_open with a NULL path): capffi/audit.h, "Targets". */
#define PROCESS_TARGET "(process)"

#define LIB_LIVE 0x6c69626cu /* "libl" */
#define LIB_DEAD 0x6c696264u /* "libd" */

/*
 * A library's life:
 *
 *   open --capffi_lib_close--> closed --last reference goes--> dead
 *
 * The references (src.refs) are the host's handle until it closes it,
 * each function bound from it and each instance its calls made: a call
 * into the library needs a function, and capffi_fn_free may not run while
 * a call of it does (a nonblocking call holds its function until it
 * ends), so when the count is zero no call into it can be running or
 * start. That costs the call path nothing: the count moves when functions
 * and instances are made and freed. Then the library is unloaded, its
 * descriptor closed, and the record waits in the context's recycler, dead, so
 * that a second close is recognised. A library whose code was handed to
 * native code (capffi_lib_symbol, a `function` value) stays loaded until
 * the context is freed, as native code may call it at any time.
 */
struct capffi_lib {
    uint32_t magic; /* LIB_LIVE, LIB_DEAD */
    struct capffi__source src;
    capffi_ctx *ctx;
    void *handle;
    int fd;      /* ours while loaded: its /proc/self/fd name stays unique; -1
                    when the loader was handed a kept descriptor (kept_find) */
    bool closed; /* capffi_lib_close was called (owner thread) */
    struct capffi__fid id; /* the file, when there is one */
    struct capffi__res res;
    struct capffi__tok *tok;
    struct link_map *lm;      /* NULL for the process scope */
    const char *canon;        /* interned: valid until the context is freed */
    struct capffi__link link; /* the context's list, until dead */
};

/* An interned canonical path. Owner thread. */
struct capffi__lib_path {
    UT_hash_handle hh;
    char s[];
};

static const char *
path_intern(capffi_ctx *ctx, const char *path)
{
    struct capffi__ctx_lib *c = capffi__libs_of(ctx);
    size_t n = strlen(path);
    struct capffi__lib_path *p;
    HASH_FIND(hh, c->paths, path, n, p);
    if (p)
        return p->s;
    if (!(p = capffi__malloc(sizeof *p + n + 1)))
        return NULL;
    memcpy(p->s, path, n + 1);
    HASH_ADD_KEYPTR(hh, c->paths, p->s, n, p);
    if (!p->hh.tbl) {
        capffi__free(p);
        return NULL;
    }
    return p->s;
}

/*
 * L4 across unloads. The loader knows an object by the names it was
 * opened by, /proc/self/fd/N among them. When closing an object leaves it
 * loaded (the process or another handle holds it), N must never name
 * another file: N is kept open, in this table of the process's, and a
 * later load of the same file is handed N's name instead of a new one, so
 * the table holds at most a few descriptors per such file, not one per
 * load.
 */
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kept {
    dev_t dev;
    ino_t ino;
    int fd;
} * kept;
static size_t nkept, capkept;

/* A kept descriptor of the file id, still open on it, or -1. */
static int
kept_find(const struct capffi__fid *id)
{
    int fd = -1;
    pthread_mutex_lock(&kept_lock);
    for (size_t i = 0; i < nkept && fd < 0; i++) {
        struct stat st;
        if (kept[i].dev == id->dev && kept[i].ino == id->ino &&
            fstat(kept[i].fd, &st) == 0 && st.st_dev == id->dev &&
            st.st_ino == id->ino)
            fd = kept[i].fd;
    }
    pthread_mutex_unlock(&kept_lock);
    return fd;
}

/* Keep fd, a descriptor of the file id, open for good. */
static void
kept_add(int fd, const struct capffi__fid *id)
{
    pthread_mutex_lock(&kept_lock);
    if (nkept == capkept) {
        size_t cap = capkept ? 2 * capkept : 8;
        struct kept *k = capffi__realloc(kept, cap * sizeof *k);
        if (k) {
            kept = k;
            capkept = cap;
        }
    }
    /* Out of memory: the descriptor still stays open (unlisted). */
    if (nkept < capkept)
        kept[nkept++] = (struct kept){ id->dev, id->ino, fd };
    pthread_mutex_unlock(&kept_lock);
}

static void
lib_on_revoke(struct capffi__res *r)
{
    struct capffi_lib *lib = capffi__container_of(r, struct capffi_lib, res);
    int live = CAPFFI__LIVE;
    atomic_compare_exchange_strong(&lib->src.state, &live, CAPFFI__REVOKED);
}

/*
 * The identity of the file the object `lm` is mapped from: the mapping
 * that holds its dynamic section. That is what the loader really mapped,
 * whatever its name says now.
 */
static bool
mapping_id(const struct link_map *lm, struct capffi__fid *id)
{
    struct capffi__mapping m;
    if (!capffi__maps_find((uintptr_t)lm->l_ld, &m) || m.ino == 0)
        return false;
    id->dev = m.dev;
    id->ino = m.ino;
    return true;
}

/* Is the object `lm` mapped from the file (dev, ino)? */
static bool
mapped_from(const struct link_map *lm, dev_t dev, ino_t ino)
{
    struct capffi__fid id;
    return mapping_id(lm, &id) && id.dev == dev && id.ino == ino;
}

/* Unload the library and close its descriptor, unless the object stays
 * loaded without it: then the descriptor is kept (kept_add). */
static void
lib_unload(struct capffi_lib *lib)
{
    if (lib->handle) {
        dlclose(lib->handle);
        lib->handle = NULL;
        char name[64];
        snprintf(name, sizeof name, "/proc/self/fd/%d", lib->fd);
        void *still =
            lib->fd >= 0 ? dlopen(name, RTLD_NOLOAD | RTLD_LAZY) : NULL;
        if (still) {
            dlclose(still);
            kept_add(lib->fd, &lib->id);
            lib->fd = -1;
        }
    }
    if (lib->fd >= 0)
        close(lib->fd);
    lib->fd = -1;
}

/* Nothing refers to the library any more (capffi__source_drop). */
static void
lib_last(struct capffi__source *src)
{
    struct capffi_lib *lib = capffi__container_of(src, struct capffi_lib, src);
    if (atomic_load_explicit(&src->pinned, memory_order_relaxed))
        return; /* loaded until the context is freed (lib_free_all) */
    capffi_ctx *ctx = lib->ctx;
    lib_unload(lib);
    capffi__list_remove(&capffi__libs_of(ctx)->libs, &lib->link);
    lib->magic = LIB_DEAD;
    lib->tok = NULL; /* its token may be reused: events name none */
    capffi__recycle_put(&capffi__libs_of(ctx)->dead, lib);
}

void
capffi__lib_free_all(capffi_ctx *ctx)
{
    struct capffi__ctx_lib *c = capffi__libs_of(ctx);
    struct capffi__link *k;
    while ((k = capffi__list_pop(&c->libs))) {
        struct capffi_lib *lib =
            capffi__container_of(k, struct capffi_lib, link);
        lib_unload(lib);
        capffi__free(lib);
    }
    capffi__recycle_fini(&c->dead);
    struct capffi__lib_path *p, *tmp;
    HASH_ITER(hh, c->paths, p, tmp)
    {
        HASH_DEL(c->paths, p);
        capffi__free(p);
    }
}

/* Resolve path (a bare soname as grants and scopes resolve it, through
 * perm/soname.c) and open the file. */
static int
open_file(capffi_ctx *ctx, const char *path, int *fd_out,
          struct capffi__file *f)
{
    int rc = capffi__file_open(ctx, f, path, fd_out);
    if (rc)
        return rc;
    if (!f->regular) {
        close(*fd_out);
        *fd_out = -1;
        rc = capffi__fail(ctx, CAPFFI_EPERM, "'%s' is not a regular file",
                          f->canon);
        capffi__file_release(f);
    }
    return rc;
}

int
capffi_lib_open(capffi_lib **out, capffi_ctx *ctx, const capffi_token *tok,
                const char *path, uint32_t flags)
{
    struct capffi__tok *t = NULL;
    struct capffi__file f;
    struct capffi_lib *lib = NULL;
    bool have_file = false;
    int fd = -1, rc;
    const char *writable = "";

    if (out)
        *out = NULL;
    rc = capffi__entry(ctx, CAPFFI_OP_LIB_OPEN, "capffi_lib_open");
    if (rc)
        return rc;
    uint32_t rights = path ? CAPFFI_RIGHT_DLOPEN : CAPFFI_RIGHT_DLOPEN_GLOBAL;
    if (flags & CAPFFI_LIB_GLOBAL)
        rights |= CAPFFI_RIGHT_DLOPEN_GLOBAL;
    if (!out || (flags & ~(CAPFFI_LIB_LAZY | CAPFFI_LIB_GLOBAL))) {
        rc = capffi__fail(ctx, CAPFFI_EINVAL,
                          out ? "unknown flag bits 0x%x" : "out is NULL",
                          flags & ~(CAPFFI_LIB_LAZY | CAPFFI_LIB_GLOBAL));
        capffi__audit_emit(ctx, CAPFFI_OP_LIB_OPEN, rc, CAPFFI_REASON_INVALID,
                           NULL, rights, path ? path : PROCESS_TARGET, "%s",
                           capffi_ctx_errmsg(ctx));
        return rc;
    }
    /* The token first: a forged token learns nothing about the path, and
     * the path is not even looked up for it, so its refusal names the
     * path as given (the trail a script may read says nothing of where a
     * name leads). */
    rc = capffi__token_peek(ctx, tok, rights, CAPFFI_OP_LIB_OPEN,
                            path ? path : PROCESS_TARGET, &t);
    if (rc)
        return rc;
    if (path) {
        if ((rc = open_file(ctx, path, &fd, &f)))
            goto audit;
        have_file = true;
    }
    if ((rc = capffi__token_use(ctx, tok, rights, have_file ? &f : NULL,
                                CAPFFI_OP_LIB_OPEN,
                                path ? NULL : PROCESS_TARGET, &t)))
        goto out; /* denial already audited */
    if (have_file && faccessat(AT_FDCWD, f.canon, W_OK, AT_EACCESS) == 0)
        writable = "; the file is writable by this process (it could be "
                   "replaced under the grant)";

    const char *canon = path_intern(ctx, have_file ? f.canon : "");
    lib = capffi__recycle_take(&capffi__libs_of(ctx)->dead);
    if (lib)
        memset(lib, 0, sizeof *lib);
    else
        lib = capffi__calloc(1, sizeof *lib);
    if (!lib || !canon) {
        rc = capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
        goto audit;
    }
    lib->magic = LIB_LIVE;
    lib->canon = canon;
    lib->ctx = ctx;
    lib->fd = -1;
    lib->tok = t;
    lib->res.on_revoke = lib_on_revoke;
    atomic_init(&lib->src.state, CAPFFI__LIVE);
    atomic_init(&lib->src.pinned, false);
    lib->src.refs = 1; /* the host's handle */
    lib->src.last = lib_last;
    /* The file's name for the loader: a kept descriptor of the same file
     * when there is one (kept_find), else the one just opened. */
    int via = -1;
    if (have_file) {
        lib->id = f.id;
        via = kept_find(&f.id);
    }
    int mode = ((flags & CAPFFI_LIB_LAZY) ? RTLD_LAZY : RTLD_NOW) |
               ((flags & CAPFFI_LIB_GLOBAL) ? RTLD_GLOBAL : RTLD_LOCAL);
    char name[64];
    if (have_file)
        snprintf(name, sizeof name, "/proc/self/fd/%d", via >= 0 ? via : fd);
    dlerror();
    lib->handle = dlopen(have_file ? name : NULL, mode);
    if (!lib->handle) {
        const char *e = dlerror();
        rc = capffi__fail(ctx, CAPFFI_EDLOPEN, "cannot load '%s': %s",
                          lib->canon, e ? e : "unknown loader error");
        goto audit;
    }
    if (via < 0) {
        lib->fd = fd;
        fd = -1;
    }
    if (have_file) {
        if (dlinfo(lib->handle, RTLD_DI_LINKMAP, &lib->lm) != 0 ||
            !mapped_from(lib->lm, f.id.dev, f.id.ino)) {
            rc = capffi__fail(ctx, CAPFFI_EDLOPEN,
                              "the loader returned an object that is not "
                              "'%s'",
                              lib->canon);
            goto audit;
        }
    }
    if ((rc = capffi__token_attach(ctx, t, &lib->res)))
        goto audit;
    capffi__list_add(&capffi__libs_of(ctx)->libs, &lib->link);
    *out = lib;

audit:;
    struct capffi__who who = capffi__token_who(t);
    capffi__audit_emit(
        ctx, CAPFFI_OP_LIB_OPEN, rc,
        rc ? (rc == CAPFFI_ENOMEM ? CAPFFI_REASON_NOMEM : CAPFFI_REASON_FAILED)
           : CAPFFI_REASON_NONE,
        &who, rights, have_file ? f.canon : (path ? path : PROCESS_TARGET),
        "%s%s", rc ? capffi_ctx_errmsg(ctx) : "loaded", rc ? "" : writable);
out:
    if (rc && lib) {
        lib_unload(lib);
        capffi__free(lib);
    }
    if (fd >= 0)
        close(fd);
    if (have_file)
        capffi__file_release(&f);
    return rc;
}

/* Library state, as an error (0 when live). */
static int
lib_usable(const struct capffi_lib *lib)
{
    switch (lib->magic != LIB_LIVE ? CAPFFI__CLOSED
                                   : atomic_load(&lib->src.state)) {
    case CAPFFI__LIVE:
        return CAPFFI_OK;
    case CAPFFI__CLOSED:
        return capffi__fail(lib->ctx, CAPFFI_ECLOSED, "library '%s' is closed",
                            lib->canon);
    default:
        return capffi__fail(lib->ctx, CAPFFI_EREVOKED,
                            "the token of library '%s' was revoked",
                            lib->canon);
    }
}

/*
 * H1: a symbol found through the library's dependencies (CAPFFI_FN_DEPS)
 * is allowed only when the file that defines it is within the scope of
 * the library's token, judged as a capffi_lib_open of that file would be.
 * The file is the one the loader mapped (its identity from the maps),
 * found by the name in its link map; a name that no longer leads to the
 * mapped file, or that cannot be resolved (the vDSO), fails closed.
 */
static int
dependency_in_scope(struct capffi_lib *lib, const char *symbol,
                    const struct link_map *owner)
{
    capffi_ctx *ctx = lib->ctx;
    char exe[PATH_MAX];
    const char *name = owner->l_name;
    if (!name || !name[0]) { /* the main program */
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = '\0';
        name = exe;
    }
    struct capffi__fid mapped;
    struct capffi__file f;
    if (name[0] != '/' || !mapping_id(owner, &mapped))
        return capffi__fail(ctx, CAPFFI_EPERM,
                            "symbol '%s' lives in '%s', whose file cannot be "
                            "identified, so it is not in the scope of the "
                            "token of '%s'",
                            symbol, name[0] ? name : "?", lib->canon);
    char why[CAPFFI__MSG_MAX]; /* the message is rewritten below */
    int rc = capffi__file_resolve(ctx, &f, name);
    if (rc) {
        snprintf(why, sizeof why, "%s", capffi_ctx_errmsg(ctx));
        return capffi__fail(ctx, CAPFFI_EPERM,
                            "symbol '%s' lives in '%s', which cannot be "
                            "resolved: %s",
                            symbol, name, why);
    }
    if (f.id.dev != mapped.dev || f.id.ino != mapped.ino) {
        rc = capffi__fail(ctx, CAPFFI_EPERM,
                          "symbol '%s' lives in the file loaded as '%s', "
                          "which has been replaced since it was loaded",
                          symbol, name);
    } else if (capffi__token_covers(ctx, lib->tok, &f)) {
        snprintf(why, sizeof why, "%s", capffi_ctx_errmsg(ctx));
        rc = capffi__fail(ctx, CAPFFI_EPERM,
                          "symbol '%s' lives in '%s', a dependency of '%s': "
                          "%s",
                          symbol, f.canon, lib->canon, why);
    }
    capffi__file_release(&f);
    return rc;
}

/*
 * Look up symbol and check it lives in the library, or (deps) in a file
 * the library's token covers (L1, H1).
 */
static int
find_symbol(struct capffi_lib *lib, const char *symbol, bool deps, void **out)
{
    capffi_ctx *ctx = lib->ctx;
    dlerror();
    void *sym = dlsym(lib->handle, symbol);
    if (!sym)
        return capffi__fail(ctx, CAPFFI_ENOTFOUND,
                            "symbol '%s' not found in '%s'", symbol,
                            lib->canon[0] ? lib->canon : "the process");
    if (lib->lm) {
        Dl_info info;
        struct link_map *owner = NULL;
        if (!dladdr1(sym, &info, (void **)&owner, RTLD_DL_LINKMAP) || !owner)
            return capffi__fail(ctx, CAPFFI_EPERM,
                                "symbol '%s' of '%s' lies in no loaded object",
                                symbol, lib->canon);
        if (owner != lib->lm && !deps)
            return capffi__fail(
                ctx, CAPFFI_EPERM,
                "symbol '%s' lives in '%s', not in '%s' (bind with "
                "CAPFFI_FN_DEPS to allow dependencies the token covers)",
                symbol, info.dli_fname ? info.dli_fname : "?", lib->canon);
        if (owner != lib->lm) {
            int rc = dependency_in_scope(lib, symbol, owner);
            if (rc)
                return rc;
        }
    }
    *out = sym;
    return CAPFFI_OK;
}

/* The destructor of an own result (own *NAME by SYMBOL): a symbol of the
 * library itself, as a bound function's. */
static int
find_dtor(void *lib, const char *symbol, void **out)
{
    return find_symbol(lib, symbol, false, out);
}

/*
 * The event of an operation on one symbol of lib (lib.bind): denied when
 * rc is CAPFFI_EPERM, failed for another error. The detail is prefix and
 * then, on success, done, else the context's message.
 */
static void
audit_symbol(struct capffi_lib *lib, int rc, const char *symbol,
             const char *prefix, const char *done)
{
    struct capffi__who who = capffi__token_who(lib->tok);
    capffi__audit_emit(lib->ctx, CAPFFI_OP_LIB_BIND, rc,
                       rc == CAPFFI_EPERM ? CAPFFI_REASON_DENIED
                       : rc               ? CAPFFI_REASON_FAILED
                                          : CAPFFI_REASON_NONE,
                       &who, 0, symbol ? symbol : "", "%s%s", prefix,
                       rc ? capffi_ctx_errmsg(lib->ctx) : done);
}

int
capffi_lib_bind(capffi_fn **out, capffi_lib *lib, const char *symbol,
                const char *signature, uint32_t flags)
{
    if (out)
        *out = NULL;
    if (!lib)
        return capffi__fail(NULL, CAPFFI_EINVAL, "lib is NULL");
    capffi_ctx *ctx = lib->ctx;
    if (!capffi__ctx_on_owner(ctx))
        return capffi__wrong_thread(ctx, CAPFFI_OP_LIB_BIND, "capffi_lib_bind");
    void *code = NULL;
    int rc;
    if (!out || !symbol || !signature)
        rc = capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL",
                          !out      ? "out"
                          : !symbol ? "symbol"
                                    : "signature");
    else if (!(rc = lib_usable(lib)))
        rc = find_symbol(lib, symbol, flags & CAPFFI_FN_DEPS, &code);
    if (rc == CAPFFI_ENOTFOUND && (flags & CAPFFI_FN_OPTIONAL))
        return rc;
    if (!rc)
        rc = capffi__fn_new(out, ctx, lib->tok, code, signature, flags,
                            &lib->src);
    if (!rc && !((*out)->name = capffi__arena_strndup(&(*out)->sig.arena,
                                                      symbol, strlen(symbol))))
        rc = capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    if (!rc)
        rc = capffi__fn_bind_dtors(*out, find_dtor, lib);
    if (rc && out && *out) {
        capffi_fn_free(*out);
        *out = NULL;
    }
    audit_symbol(lib, rc, symbol, "", lib->canon);
    return rc;
}

int
capffi_lib_static(capffi_value *out, capffi_lib *lib, const char *symbol,
                  const char *type)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!lib)
        return capffi__fail(NULL, CAPFFI_EINVAL, "lib is NULL");
    capffi_ctx *ctx = lib->ctx;
    if (!capffi__ctx_on_owner(ctx))
        return capffi__wrong_thread(ctx, CAPFFI_OP_LIB_BIND,
                                    "capffi_lib_static");
    if (!out || !symbol || !type)
        return capffi__fail(ctx, CAPFFI_EINVAL, "an argument is NULL");
    if (lib->magic != LIB_LIVE) { /* its token is gone: nothing to parse */
        int rc = lib_usable(lib);
        audit_symbol(lib, rc, symbol, "static: ", "read");
        return rc;
    }
    struct capffi__arena a = { NULL };
    const struct capffi__type *t;
    void *addr = NULL;
    int rc = capffi__type_parse_in(ctx, lib->tok, &a, "type", type, &t);
    if (!rc && (t->kind == CAPFFI__STRUCT || t->kind == CAPFFI__BUFFER))
        rc = capffi__fail(ctx, CAPFFI_ESIG,
                          "type byte 0: a static must have a scalar type");
    /* H3: what a static holds, the host may have put there through the
     * library's functions: read as a pointer it would make one. */
    if (!rc && capffi__type_is_pointer(t) && capffi__safe(ctx, lib->tok))
        rc = capffi__fail(ctx, CAPFFI_EPERM,
                          "reading static '%s' as %s makes a pointer value: "
                          "refused in safe mode",
                          symbol, type);
    if (!rc && capffi__type_is_pointer(t) &&
        !(lib->tok && (lib->tok->rights & CAPFFI_RIGHT_POINTER)))
        rc = capffi__fail(ctx, CAPFFI_EPERM,
                          "reading static '%s' as %s makes a pointer value: "
                          "the library's token lacks the pointer right",
                          symbol, type);
    if (!rc)
        rc = lib_usable(lib);
    if (!rc)
        rc = find_symbol(lib, symbol, false, &addr);
    if (!rc)
        capffi__value_load(out, capffi__vop(t->kind), addr);
    capffi__arena_free(&a);
    char prefix[128]; /* a longer type text is cut in the event only */
    snprintf(prefix, sizeof prefix, "static %.100s: ", type ? type : "");
    audit_symbol(lib, rc, symbol, prefix, "read");
    return rc;
}

void
capffi_lib_close(capffi_lib *lib)
{
    if (!lib || lib->magic != LIB_LIVE || lib->closed)
        return;
    if (!capffi__ctx_on_owner(lib->ctx)) {
        capffi__wrong_thread(lib->ctx, CAPFFI_OP_LIB_CLOSE, "capffi_lib_close");
        return;
    }
    /* Closed wins over revoked from now on: the state word only says why
     * calls are refused. */
    lib->closed = true;
    /* What the library owns goes before it: its destructors run now,
     * unless the token was revoked (then when the context is freed). */
    if (atomic_load(&lib->src.state) == CAPFFI__LIVE)
        capffi__obj_release_source(lib->ctx, &lib->src.state);
    atomic_store(&lib->src.state, CAPFFI__CLOSED);
    capffi__token_detach(lib->ctx, &lib->res);
    capffi__token_audit(lib->ctx, CAPFFI_OP_LIB_CLOSE, 0, CAPFFI_REASON_NONE,
                        lib->tok, 0,
                        lib->canon[0] ? lib->canon : PROCESS_TARGET, "closed");
    capffi__source_drop(&lib->src); /* the host's handle */
}

const char *
capffi_lib_path(const capffi_lib *lib)
{
    return lib ? lib->canon : "";
}

int
capffi_lib_resolve(char *out, size_t cap, capffi_ctx *ctx, const char *name)
{
    if (out && cap)
        out[0] = '\0';
    if (!out || !cap || !name)
        return capffi__fail(ctx, CAPFFI_EINVAL, "%s",
                            !name ? "name is NULL"
                            : out ? "cap is 0"
                                  : "out is NULL");
    char found[PATH_MAX];
    int rc = capffi__path_validate(ctx, name, "name");
    if (rc)
        return rc;
    if (capffi__soname_is_bare(name)) {
        if ((rc = capffi__soname_resolve(ctx, name, found)))
            return rc;
        name = found;
    }
    size_t n = strlen(name);
    if (n >= cap)
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "'%s' needs %zu bytes, out has %zu", name, n + 1,
                            cap);
    memcpy(out, name, n + 1);
    return CAPFFI_OK;
}

/*
 * The address of a symbol of the library, for a host that calls it by its
 * own means (the Lua runner hands package.loadlib's function to Lua this
 * way, so that what loads is the file checked: H4). The symbol must live
 * in the library itself (L1), as for capffi_lib_bind without
 * CAPFFI_FN_DEPS; a closed or revoked library gives no address.
 */
int
capffi_lib_symbol(void **out, capffi_lib *lib, const char *symbol)
{
    if (out)
        *out = NULL;
    if (!lib)
        return capffi__fail(NULL, CAPFFI_EINVAL, "lib is NULL");
    capffi_ctx *ctx = lib->ctx;
    if (!capffi__ctx_on_owner(ctx))
        return capffi__wrong_thread(ctx, CAPFFI_OP_LIB_BIND,
                                    "capffi_lib_symbol");
    void *addr = NULL;
    int rc;
    if (!out || !symbol)
        rc = capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL",
                          !out ? "out" : "symbol");
    else if (capffi__perm_of(ctx)->perm.flags & CAPFFI_OPT_SAFE)
        rc = capffi__fail(ctx, CAPFFI_EPERM,
                          "capffi_lib_symbol: a raw address is refused in "
                          "a context in safe mode (bind the symbol: "
                          "capffi_lib_bind)");
    else if (!(rc = lib_usable(lib)))
        rc = find_symbol(lib, symbol, false, &addr);
    if (!rc) {
        /* The host may call or read it at any time: the library stays
         * loaded until the context is freed. */
        atomic_store_explicit(&lib->src.pinned, true, memory_order_relaxed);
        *out = addr;
    }
    audit_symbol(lib, rc, symbol, "address: ", lib->canon);
    return rc;
}
