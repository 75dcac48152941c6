/*
 * perm.c - grants, and the context's FFI permission: grants from the
 * options, and Deno-style query, request and revoke.
 */
#include "perm/perm.h"

#include <string.h>

enum capffi__verdict
capffi__grants_judge(const struct capffi__grants *g,
                     const struct capffi__file *f,
                     const struct capffi__pathent **entry)
{
    const struct capffi__pathent *d = capffi__pathset_covers(g->deny, f, true);
    if (entry)
        *entry = d;
    if (d)
        return CAPFFI__DENIED;
    const struct capffi__pathent *a =
        capffi__pathset_covers(g->allow, f, false);
    const struct capffi__pathent *w =
        capffi__pathset_covers(g->withdrawn, f, true);
    if (a && (!w || a->n_anc > w->n_anc))
        return CAPFFI__GRANTED;
    if (!w && g->all && !f->special)
        return CAPFFI__GRANTED;
    return CAPFFI__UNCOVERED;
}

int
capffi__grants_snapshot(struct capffi__grants *out,
                        const struct capffi__grants *src)
{
    out->all = src->all;
    out->allow = capffi__pathset_copy(src->allow);
    out->withdrawn = capffi__pathset_copy(src->withdrawn);
    out->deny = capffi__pathset_ref(src->deny);
    if (!out->allow || !out->withdrawn) {
        capffi__grants_release(out);
        return CAPFFI_ENOMEM;
    }
    return CAPFFI_OK;
}

void
capffi__grants_share(struct capffi__grants *out,
                     const struct capffi__grants *src)
{
    out->all = src->all;
    out->allow = capffi__pathset_ref(src->allow);
    out->withdrawn = capffi__pathset_ref(src->withdrawn);
    out->deny = capffi__pathset_ref(src->deny);
}

void
capffi__grants_release(struct capffi__grants *g)
{
    capffi__pathset_unref(g->allow);
    capffi__pathset_unref(g->withdrawn);
    capffi__pathset_unref(g->deny);
    memset(g, 0, sizeof *g);
}

static int
resolve_list(capffi_ctx *ctx, struct capffi__pathset *set,
             const char *const *paths, size_t n, const char *what)
{
    if (n && !paths)
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "options.%s is NULL but its count is %zu", what, n);
    for (size_t i = 0; i < n; i++) {
        struct capffi__file f;
        int rc = capffi__file_resolve(ctx, &f, paths[i]);
        if (rc) {
            char inner[CAPFFI__MSG_MAX];
            snprintf(inner, sizeof inner, "%s", capffi_ctx_errmsg(ctx));
            return capffi__fail(ctx, rc, "options.%s[%zu]: %s", what, i, inner);
        }
        rc = capffi__pathset_add(set, &f);
        capffi__file_release(&f);
        if (rc)
            return capffi__fail(ctx, rc, "out of memory");
    }
    return CAPFFI_OK;
}

int
capffi__perm_init(capffi_ctx *ctx, struct capffi__perm *p,
                  const capffi_options *opts)
{
    static const capffi_options deny_all;
    if (!opts)
        opts = &deny_all;
    memset(p, 0, sizeof *p);
    if (opts->flags & ~CAPFFI_OPT__ALL)
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "options.flags has unknown bits 0x%x",
                            opts->flags & ~CAPFFI_OPT__ALL);
    p->flags = opts->flags;
    p->g.all = (opts->flags & CAPFFI_OPT_ALLOW_ALL) != 0;
    p->prompt = opts->prompt;
    p->prompt_payload = opts->prompt_payload;
    p->g.allow = capffi__pathset_new();
    p->g.deny = capffi__pathset_new();
    p->g.withdrawn = capffi__pathset_new();
    if (!p->g.allow || !p->g.deny || !p->g.withdrawn)
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    int rc = resolve_list(ctx, p->g.allow, opts->allow_paths, opts->n_allow,
                          "allow_paths");
    if (!rc)
        rc = resolve_list(ctx, p->g.deny, opts->deny_paths, opts->n_deny,
                          "deny_paths");
    return rc;
}

void
capffi__perm_fini(struct capffi__perm *p)
{
    capffi__grants_release(&p->g);
    memset(p, 0, sizeof *p);
}

uint32_t
capffi__perm_rights(const struct capffi__perm *p)
{
    if (p->g.all)
        return CAPFFI_RIGHTS_ALL;
    if (p->g.allow && p->g.allow->n)
        return CAPFFI_RIGHT_DLOPEN |
               ((p->flags & CAPFFI_OPT_PATHS_ONLY) ? 0 : CAPFFI_RIGHTS_NONPATH);
    return 0;
}

static capffi_perm_state
ungranted(const struct capffi__perm *p)
{
    return p->prompt ? CAPFFI_PERM_PROMPT : CAPFFI_PERM_DENIED;
}

capffi_perm_state
capffi__perm_state_of(const struct capffi__perm *p,
                      const struct capffi__file *f)
{
    if (!f)
        return p->g.all ? CAPFFI_PERM_GRANTED : ungranted(p);
    switch (capffi__grants_judge(&p->g, f, NULL)) {
    case CAPFFI__GRANTED:
        return CAPFFI_PERM_GRANTED;
    case CAPFFI__DENIED:
        return CAPFFI_PERM_DENIED;
    default:
        return ungranted(p);
    }
}

const char *
capffi_perm_state_name(capffi_perm_state s)
{
    switch (s) {
    case CAPFFI_PERM_GRANTED:
        return "granted";
    case CAPFFI_PERM_PROMPT:
        return "prompt";
    default:
        return "denied";
    }
}

/* The checks every function here starts with; their refusals are not
 * audited again by finish() (a wrong thread is audited here). */
static int
guard(capffi_perm_state *out, capffi_ctx *ctx, capffi_op op, const char *fn)
{
    if (out)
        *out = CAPFFI_PERM_DENIED;
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    if (!capffi__ctx_on_owner(ctx))
        return capffi__wrong_thread(ctx, op, fn);
    return CAPFFI_OK;
}

/* Validate out and resolve path (if any) into *f. */
static int
begin(capffi_perm_state *out, capffi_ctx *ctx, const char *path,
      struct capffi__file *f, bool *have)
{
    *have = false;
    if (!out)
        return capffi__fail(ctx, CAPFFI_EINVAL, "out is NULL");
    if (!path)
        return CAPFFI_OK;
    int rc = capffi__file_resolve(ctx, f, path);
    *have = rc == CAPFFI_OK;
    return rc;
}

static void
finish(capffi_ctx *ctx, capffi_op op, int rc, capffi_perm_state st,
       const struct capffi__file *f, const char *how)
{
    if (rc)
        capffi__audit_emit(ctx, op, rc,
                           rc == CAPFFI_ENOMEM ? CAPFFI_REASON_NOMEM
                                               : CAPFFI_REASON_INVALID,
                           NULL, 0, "", "%s", capffi_ctx_errmsg(ctx));
    else
        capffi__audit_emit(ctx, op, 0, CAPFFI_REASON_NONE, NULL,
                           CAPFFI_RIGHTS_ALL, f ? f->canon : "", "%s%s",
                           capffi_perm_state_name(st), how);
}

int
capffi_perm_query(capffi_perm_state *out, capffi_ctx *ctx, const char *path)
{
    struct capffi__file f;
    bool have;
    int rc = guard(out, ctx, CAPFFI_OP_PERM_QUERY, "capffi_perm_query");
    if (rc)
        return rc;
    rc = begin(out, ctx, path, &f, &have);
    capffi_perm_state st = CAPFFI_PERM_DENIED;
    if (!rc)
        *out = st = capffi__perm_state_of(&capffi__perm_of(ctx)->perm,
                                          have ? &f : NULL);
    finish(ctx, CAPFFI_OP_PERM_QUERY, rc, st, have ? &f : NULL, "");
    if (have)
        capffi__file_release(&f);
    return rc;
}

/* Grant f (NULL: unscoped) after a positive answer. */
static int
grant(capffi_ctx *ctx, struct capffi__perm *p, const struct capffi__file *f)
{
    if (!f) {
        p->g.all = true;
        capffi__pathset_remove_under(p->g.withdrawn, NULL);
        return CAPFFI_OK;
    }
    if (capffi__pathset_add(p->g.allow, f))
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    capffi__pathset_remove_under(p->g.withdrawn, f);
    return CAPFFI_OK;
}

int
capffi_perm_request(capffi_perm_state *out, capffi_ctx *ctx, const char *path)
{
    struct capffi__file f;
    bool have;
    const char *how = "";
    int rc = guard(out, ctx, CAPFFI_OP_PERM_REQUEST, "capffi_perm_request");
    if (rc)
        return rc;
    rc = begin(out, ctx, path, &f, &have);
    capffi_perm_state st = CAPFFI_PERM_DENIED;
    if (!rc) {
        st = capffi__perm_state_of(&capffi__perm_of(ctx)->perm,
                                   have ? &f : NULL);
        if (st == CAPFFI_PERM_PROMPT) {
            capffi_perm_state answer = capffi__perm_of(ctx)->perm.prompt(
                capffi__perm_of(ctx)->perm.prompt_payload,
                have ? f.canon : NULL);
            if (answer == CAPFFI_PERM_GRANTED) {
                rc = grant(ctx, &capffi__perm_of(ctx)->perm, have ? &f : NULL);
                st = rc ? CAPFFI_PERM_PROMPT : CAPFFI_PERM_GRANTED;
                how = " (prompt answered granted)";
            } else {
                st = CAPFFI_PERM_DENIED;
                how = " (prompt answered denied)";
            }
        } else if (st == CAPFFI_PERM_DENIED) {
            how = " (no prompt)";
        }
        *out = rc ? CAPFFI_PERM_DENIED : st;
    }
    finish(ctx, CAPFFI_OP_PERM_REQUEST, rc, st, have ? &f : NULL, how);
    if (have)
        capffi__file_release(&f);
    return rc;
}

int
capffi_perm_revoke(capffi_perm_state *out, capffi_ctx *ctx, const char *path)
{
    struct capffi__file f;
    bool have;
    int rc = guard(out, ctx, CAPFFI_OP_PERM_REVOKE, "capffi_perm_revoke");
    if (rc)
        return rc;
    rc = begin(out, ctx, path, &f, &have);
    capffi_perm_state st = CAPFFI_PERM_DENIED;
    struct capffi__perm *p = &capffi__perm_of(ctx)->perm;
    if (!rc && !have) {
        p->g.all = false;
        capffi__pathset_remove_under(p->g.allow, NULL);
        capffi__pathset_remove_under(p->g.withdrawn, NULL);
    } else if (!rc) {
        capffi__pathset_remove_under(p->g.allow, &f);
        capffi__pathset_remove_under(p->g.withdrawn, &f);
        if (capffi__perm_state_of(p, &f) == CAPFFI_PERM_GRANTED &&
            capffi__pathset_add(p->g.withdrawn, &f)) {
            /* The withdrawal cannot be recorded: fail closed by
             * withdrawing everything. */
            p->g.all = false;
            capffi__pathset_remove_under(p->g.allow, NULL);
            rc = capffi__fail(ctx, CAPFFI_ENOMEM,
                              "out of memory; all FFI permission withdrawn");
        }
    }
    if (!rc)
        *out = st = capffi__perm_state_of(p, have ? &f : NULL);
    finish(ctx, CAPFFI_OP_PERM_REVOKE, rc, st, have ? &f : NULL, "");
    if (have)
        capffi__file_release(&f);
    return rc;
}
