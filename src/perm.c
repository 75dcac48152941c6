/*
 * perm.c - the context's FFI permission: grants from the options, and
 * Deno-style query, request and revoke.
 *
 * Precedence, for a resolved file: a deny entry always wins (L8); then the
 * most specific of the path grants and the withdrawals covering the file;
 * then unscoped FFI (CAPFFI_OPT_ALLOW_ALL or an unscoped request), which
 * never covers /proc, /dev or /sys (L4).
 */
#include "perm.h"

#include <string.h>

#include "ctx.h"

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
    p->all = (opts->flags & CAPFFI_OPT_ALLOW_ALL) != 0;
    p->prompt = opts->prompt;
    p->prompt_payload = opts->prompt_payload;
    p->allow = capffi__pathset_new();
    p->deny = capffi__pathset_new();
    p->withdrawn = capffi__pathset_new();
    if (!p->allow || !p->deny || !p->withdrawn)
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    int rc = resolve_list(ctx, p->allow, opts->allow_paths, opts->n_allow,
                          "allow_paths");
    if (!rc)
        rc = resolve_list(ctx, p->deny, opts->deny_paths, opts->n_deny,
                          "deny_paths");
    return rc;
}

void
capffi__perm_fini(struct capffi__perm *p)
{
    capffi__pathset_unref(p->allow);
    capffi__pathset_unref(p->deny);
    capffi__pathset_unref(p->withdrawn);
    memset(p, 0, sizeof *p);
}

uint32_t
capffi__perm_rights(const struct capffi__perm *p)
{
    if (p->all)
        return CAPFFI_RIGHTS_ALL;
    if (p->allow && p->allow->n)
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
        return p->all ? CAPFFI_PERM_GRANTED : ungranted(p);
    if (capffi__pathset_covers(p->deny, f))
        return CAPFFI_PERM_DENIED;
    const struct capffi__pathent *a = capffi__pathset_covers(p->allow, f);
    const struct capffi__pathent *w = capffi__pathset_covers(p->withdrawn, f);
    if (a && (!w || a->n_anc > w->n_anc))
        return CAPFFI_PERM_GRANTED;
    if (!w && p->all && !f->special)
        return CAPFFI_PERM_GRANTED;
    return ungranted(p);
}

static const char *
state_name(capffi_perm_state s)
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

/* Common argument handling: validate, resolve path (if any) into *f. */
static int
begin(capffi_perm_state *out, capffi_ctx *ctx, const char *path,
      struct capffi__file *f, bool *have)
{
    *have = false;
    if (out)
        *out = CAPFFI_PERM_DENIED;
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
                           state_name(st), how);
}

int
capffi_perm_query(capffi_perm_state *out, capffi_ctx *ctx, const char *path)
{
    struct capffi__file f;
    bool have;
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    int rc = begin(out, ctx, path, &f, &have);
    capffi_perm_state st = CAPFFI_PERM_DENIED;
    if (!rc)
        *out = st = capffi__perm_state_of(&ctx->perm, have ? &f : NULL);
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
        p->all = true;
        capffi__pathset_remove_under(p->withdrawn, NULL);
        return CAPFFI_OK;
    }
    if (capffi__pathset_add(p->allow, f))
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    capffi__pathset_remove_under(p->withdrawn, f);
    return CAPFFI_OK;
}

int
capffi_perm_request(capffi_perm_state *out, capffi_ctx *ctx, const char *path)
{
    struct capffi__file f;
    bool have;
    const char *how = "";
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    int rc = begin(out, ctx, path, &f, &have);
    capffi_perm_state st = CAPFFI_PERM_DENIED;
    if (!rc) {
        st = capffi__perm_state_of(&ctx->perm, have ? &f : NULL);
        if (st == CAPFFI_PERM_PROMPT) {
            capffi_perm_state answer = ctx->perm.prompt(
                ctx->perm.prompt_payload, have ? f.canon : NULL);
            if (answer == CAPFFI_PERM_GRANTED) {
                rc = grant(ctx, &ctx->perm, have ? &f : NULL);
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
    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    int rc = begin(out, ctx, path, &f, &have);
    capffi_perm_state st = CAPFFI_PERM_DENIED;
    struct capffi__perm *p = &ctx->perm;
    if (!rc && !have) {
        p->all = false;
        capffi__pathset_remove_under(p->allow, NULL);
        capffi__pathset_remove_under(p->withdrawn, NULL);
    } else if (!rc) {
        capffi__pathset_remove_under(p->allow, &f);
        capffi__pathset_remove_under(p->withdrawn, &f);
        if (capffi__perm_state_of(p, &f) == CAPFFI_PERM_GRANTED &&
            capffi__pathset_add(p->withdrawn, &f)) {
            /* The withdrawal cannot be recorded: fail closed by
             * withdrawing everything. */
            p->all = false;
            capffi__pathset_remove_under(p->allow, NULL);
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
