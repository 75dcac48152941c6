/*
 * token.c - minting, attenuating, verifying and revoking tokens.
 *
 * Threats answered here (THREATS.md): T1 (ids and tags are random; the tag
 * is compared in constant time, so guessing needs 2^128 tries), T2 (the
 * MAC covers the context's serial and instance; lookups are per context),
 * T3 (revoked entries stay in the table and answer EREVOKED; expiry and use
 * limits), T4 (children are checked as subsets and linked under their
 * parent, which cascades revocation), T6 (tags never reach a message or an
 * event), T7 (check, attach and revoke serialise on the token lock).
 */
#include "perm/token.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "perm/perm.h"

/* ---- process-wide registry: tells "foreign" from "forged" ------------- */

/*
 * Every live token of every context, keyed by id. Consulted only when a
 * token fails to verify in a context, to say whether it is a genuine token
 * of another live context (reason FOREIGN) or not (FORGED). Foreign tokens
 * are still refused: the registry never makes anything succeed.
 */
struct reg_entry {
    uint64_t id;
    uint64_t serial;
    uint8_t tag[16];
    struct reg_entry *next_same_id;
    UT_hash_handle hh;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reg_entry *registry;

static int
reg_add(uint64_t id, uint64_t serial, const uint8_t tag[16])
{
    struct reg_entry *r = capffi__calloc(1, sizeof *r);
    if (!r)
        return CAPFFI_ENOMEM;
    r->id = id;
    r->serial = serial;
    memcpy(r->tag, tag, 16);
    pthread_mutex_lock(&reg_lock);
    struct reg_entry *head;
    HASH_FIND(hh, registry, &id, sizeof id, head);
    if (head) {
        /* Same id in another context: chain it behind the first. */
        r->next_same_id = head->next_same_id;
        head->next_same_id = r;
    } else {
        HASH_ADD(hh, registry, id, sizeof r->id, r);
        if (!r->hh.tbl) {
            pthread_mutex_unlock(&reg_lock);
            capffi__free(r);
            return CAPFFI_ENOMEM;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return CAPFFI_OK;
}

static void
reg_remove(uint64_t id, uint64_t serial)
{
    pthread_mutex_lock(&reg_lock);
    struct reg_entry *head;
    HASH_FIND(hh, registry, &id, sizeof id, head);
    if (head && head->serial == serial) {
        HASH_DEL(registry, head);
        struct reg_entry *next = head->next_same_id;
        if (next) {
            HASH_ADD(hh, registry, id, sizeof next->id, next);
            if (!next->hh.tbl) {
                /* The table could not be rebuilt: drop the chain rather
                 * than keep it unreachable. This only loses the FOREIGN
                 * diagnosis for those tokens. */
                while (next) {
                    struct reg_entry *n = next->next_same_id;
                    capffi__free(next);
                    next = n;
                }
            }
        }
        capffi__free(head);
    } else if (head) {
        for (struct reg_entry *p = head; p->next_same_id; p = p->next_same_id)
            if (p->next_same_id->serial == serial) {
                struct reg_entry *victim = p->next_same_id;
                p->next_same_id = victim->next_same_id;
                capffi__free(victim);
                break;
            }
    }
    pthread_mutex_unlock(&reg_lock);
}

static bool
reg_is_foreign(const capffi_token *tok, uint64_t serial)
{
    bool foreign = false;
    pthread_mutex_lock(&reg_lock);
    struct reg_entry *r;
    HASH_FIND(hh, registry, &tok->id, sizeof tok->id, r);
    for (; r; r = r->next_same_id)
        if (r->serial != serial && crypto_verify_16(r->tag, tok->tag) == 0)
            foreign = true;
    pthread_mutex_unlock(&reg_lock);
    return foreign;
}

/* ---- helpers ---------------------------------------------------------- */

struct capffi__who
capffi__token_who(const struct capffi__tok *t)
{
    struct capffi__who w = { 0, 0, "" };
    if (t) {
        w.token_id = t->id;
        w.parent_id = t->parent ? t->parent->id : 0;
        w.label = t->label;
    }
    return w;
}

void
capffi__token_audit(capffi_ctx *ctx, capffi_op op, int rc, capffi_reason why,
                    const struct capffi__tok *t, uint32_t rights,
                    const char *target, const char *done)
{
    struct capffi__who who = capffi__token_who(t);
    capffi__audit_emit(ctx, op, rc, rc ? why : CAPFFI_REASON_NONE, &who, rights,
                       target, "%s", rc ? capffi_ctx_errmsg(ctx) : done);
}

static void
rights_text(char *buf, size_t cap, uint32_t rights)
{
    static const char *const names[] = { "dlopen",  "dlopen_global", "callback",
                                         "pointer", "read",          "write",
                                         "fnptr" };
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(rights & (1u << i)))
            continue;
        int n =
            snprintf(buf + used, cap - used, "%s%s", used ? "," : "", names[i]);
        if (n < 0 || (size_t)n >= cap - used)
            break;
        used += (size_t)n;
    }
    if (!used)
        snprintf(buf, cap, "none");
}

static bool
label_ok(const char *label)
{
    if (!label)
        return false;
    size_t n = strnlen(label, CAPFFI_LABEL_MAX + 1);
    if (n == 0 || n > CAPFFI_LABEL_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)label[i] < 0x20 || (unsigned char)label[i] >= 0x7f)
            return false;
    return true;
}

/*
 * The label of a token attenuated without one of its own: the parent's with
 * a '+' per attenuation ("mod", "mod+", "mod++"), so an audit event shows
 * that the holder derives from "mod". Labels are at most CAPFFI_LABEL_MAX
 * bytes, so once the parent's label is that long the '+' is left off and the
 * child carries the parent's label unchanged (its depth in capffi_token_info
 * still tells them apart). Dropping the '+' is the only shortening: the
 * parent's own bytes are never cut, so the child never looks unrelated.
 */
static void
derived_label(char out[CAPFFI_LABEL_MAX + 1], const char *parent)
{
    size_t n = strnlen(parent, CAPFFI_LABEL_MAX);
    memcpy(out, parent, n);
    if (n < CAPFFI_LABEL_MAX)
        out[n++] = '+';
    out[n] = '\0';
}

static int
validate_label(capffi_ctx *ctx, const char *label)
{
    if (!label)
        return capffi__fail(ctx, CAPFFI_EINVAL, "label is NULL");
    size_t n = strnlen(label, CAPFFI_LABEL_MAX + 1);
    if (n == 0)
        return capffi__fail(ctx, CAPFFI_EINVAL, "label is empty");
    if (n > CAPFFI_LABEL_MAX)
        return capffi__fail(ctx, CAPFFI_EINVAL, "label is longer than %d bytes",
                            CAPFFI_LABEL_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)label[i];
        if (c < 0x20 || c >= 0x7f)
            return capffi__fail(ctx, CAPFFI_EINVAL,
                                "label has a non-printable byte at %zu", i);
    }
    return CAPFFI_OK;
}

/* Compute the tag of an entry whose other fields are final. */
static void
compute_tag(capffi_ctx *ctx, struct capffi__tok *t)
{
    struct {
        char domain[16];
        uint64_t serial;
        uint8_t instance[16];
        uint64_t id, parent_id, uses;
        int64_t expires;
        uint32_t rights, depth, all_paths;
        uint8_t allow[32], withdrawn[32], deny[32];
        char label[CAPFFI_LABEL_MAX + 1];
    } in;
    memset(&in, 0, sizeof in);
    memcpy(in.domain, "capffi.token.v1", 15);
    in.serial = capffi__tok_of(ctx)->serial;
    memcpy(in.instance, capffi__tok_of(ctx)->instance, 16);
    in.id = t->id;
    in.parent_id = t->parent ? t->parent->id : 0;
    in.uses = t->uses_left;
    in.expires = t->expires_ns;
    in.rights = t->rights;
    in.depth = t->depth;
    in.all_paths = t->g.all;
    capffi__pathset_digest(t->g.allow, in.allow);
    capffi__pathset_digest(t->g.withdrawn, in.withdrawn);
    capffi__pathset_digest(t->g.deny, in.deny);
    memcpy(in.label, t->label, sizeof in.label);

    /* The secret is readable only for the length of this computation. */
    sodium_mprotect_readonly(capffi__tok_of(ctx)->secret);
    crypto_generichash(t->tag, sizeof t->tag, (const unsigned char *)&in,
                       sizeof in, capffi__tok_of(ctx)->secret,
                       crypto_generichash_KEYBYTES);
    sodium_mprotect_noaccess(capffi__tok_of(ctx)->secret);
    sodium_memzero(&in, sizeof in);
}

static void
entry_free(struct capffi__tok *t)
{
    capffi__grants_release(&t->g);
    capffi__free(t);
}

/*
 * Make an entry, give it a fresh id and tag, and link it into the table
 * (and under its parent). Takes ownership of proto's grants whether it
 * succeeds or not.
 */
static int
mint(capffi_ctx *ctx, struct capffi__tok *proto, capffi_token *out,
     struct capffi__tok **entry_out)
{
    struct capffi__tok *t = capffi__malloc(sizeof *t);
    if (!t) {
        capffi__grants_release(&proto->g);
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    }
    *t = *proto;
    atomic_init(&t->revoked, 0);
    t->first_child = t->next_sibling = NULL;
    t->res.prev = t->res.next = &t->res;
    t->res.on_revoke = NULL;

    pthread_mutex_lock(&capffi__tok_of(ctx)->tok_lock);
    if (t->parent && atomic_load(&t->parent->revoked)) {
        pthread_mutex_unlock(&capffi__tok_of(ctx)->tok_lock);
        entry_free(t);
        return capffi__fail(ctx, CAPFFI_EREVOKED,
                            "parent token was revoked during attenuation");
    }
    struct capffi__tok *clash;
    do {
        randombytes_buf(&t->id, sizeof t->id);
        HASH_FIND(hh, capffi__tok_of(ctx)->tokens, &t->id, sizeof t->id, clash);
    } while (t->id == 0 || clash);
    compute_tag(ctx, t);
    HASH_ADD(hh, capffi__tok_of(ctx)->tokens, id, sizeof t->id, t);
    if (!t->hh.tbl) {
        pthread_mutex_unlock(&capffi__tok_of(ctx)->tok_lock);
        entry_free(t);
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    }
    if (reg_add(t->id, capffi__tok_of(ctx)->serial, t->tag)) {
        HASH_DEL(capffi__tok_of(ctx)->tokens, t);
        pthread_mutex_unlock(&capffi__tok_of(ctx)->tok_lock);
        entry_free(t);
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    }
    if (t->parent) {
        t->next_sibling = t->parent->first_child;
        t->parent->first_child = t;
    }
    capffi__tok_of(ctx)->n_tokens++;
    pthread_mutex_unlock(&capffi__tok_of(ctx)->tok_lock);

    out->id = t->id;
    memcpy(out->tag, t->tag, sizeof out->tag);
    if (entry_out)
        *entry_out = t;
    return CAPFFI_OK;
}

/*
 * Find the entry of a presented token. Constant-time in the tag; the id is
 * not secret. Caller holds tok_lock.
 */
static struct capffi__tok *
find(capffi_ctx *ctx, const capffi_token *tok)
{
    static const uint8_t dummy[16];
    struct capffi__tok *t;
    HASH_FIND(hh, capffi__tok_of(ctx)->tokens, &tok->id, sizeof tok->id, t);
    /* Compare against a dummy when the id is unknown, so the time taken
     * does not depend on how many tag bytes match either way. */
    int same = crypto_verify_16(t ? t->tag : dummy, tok->tag);
    return t && same == 0 ? t : NULL;
}

/* Message and reason for a token that did not verify. */
static int
unknown_token(capffi_ctx *ctx, const capffi_token *tok, capffi_reason *why)
{
    if (reg_is_foreign(tok, capffi__tok_of(ctx)->serial)) {
        *why = CAPFFI_REASON_FOREIGN;
        return capffi__fail(ctx, CAPFFI_ETOKEN,
                            "token %016" PRIx64 " belongs to another context",
                            tok->id);
    }
    *why = CAPFFI_REASON_FORGED;
    return capffi__fail(ctx, CAPFFI_ETOKEN,
                        "token %016" PRIx64 " is not a token of this context",
                        tok->id);
}

/* Revoked, expired or used up (this entry or an ancestor's budget). */
static int
stale(capffi_ctx *ctx, const struct capffi__tok *t, capffi_reason *why)
{
    if (atomic_load_explicit(&t->revoked, memory_order_acquire)) {
        *why = CAPFFI_REASON_REVOKED;
        return capffi__fail(ctx, CAPFFI_EREVOKED, "token '%s' was revoked",
                            t->label);
    }
    if (t->expires_ns && capffi__now_ns() >= t->expires_ns) {
        *why = CAPFFI_REASON_EXPIRED;
        return capffi__fail(ctx, CAPFFI_EREVOKED, "token '%s' has expired",
                            t->label);
    }
    for (const struct capffi__tok *a = t; a; a = a->parent)
        if (a->uses_left == 0) {
            *why = CAPFFI_REASON_EXHAUSTED;
            return capffi__fail(ctx, CAPFFI_EREVOKED,
                                a == t ? "token '%s' has no uses left"
                                       : "token '%s': an ancestor has no "
                                         "uses left",
                                t->label);
        }
    return CAPFFI_OK;
}

/* Is file inside t's path scope? Sets the message and reason if not. */
static int
path_in_scope(capffi_ctx *ctx, const struct capffi__tok *t,
              const struct capffi__file *f, capffi_reason *why)
{
    const struct capffi__pathent *d;
    switch (capffi__grants_judge(&t->g, f, &d)) {
    case CAPFFI__GRANTED:
        return CAPFFI_OK;
    case CAPFFI__DENIED:
        *why = CAPFFI_REASON_DENIED;
        return capffi__fail(ctx, CAPFFI_EPERM, "'%s' is denied (by '%s')",
                            f->canon, d->canon);
    default:
        *why = CAPFFI_REASON_PATH;
        return capffi__fail(ctx, CAPFFI_EPERM,
                            f->special && t->g.all
                                ? "'%s' is under /proc, /dev or /sys and "
                                  "token '%s' has no grant naming it"
                                : "'%s' is not in the scope of token '%s'",
                            f->canon, t->label);
    }
}

static int
check_rights(capffi_ctx *ctx, const struct capffi__tok *t, uint32_t rights,
             capffi_reason *why)
{
    uint32_t missing = rights & ~t->rights;
    if (!missing)
        return CAPFFI_OK;
    char text[96];
    rights_text(text, sizeof text, missing);
    *why = CAPFFI_REASON_RIGHT;
    return capffi__fail(ctx, CAPFFI_EPERM, "token '%s' lacks the right(s) %s",
                        t->label, text);
}

/* ---- the internal interface ------------------------------------------- */

/*
 * The one verification: genuine, of this context, not stale, holding the
 * rights, and (with a file) covering it. With consume, a success counts
 * as a use. Denials are always audited; a success only for a consuming
 * TOKEN_CHECK (other operations audit their own outcome).
 */
static int
verify(capffi_ctx *ctx, const capffi_token *tok, uint32_t rights,
       const struct capffi__file *file, capffi_op op, const char *target,
       bool consume, struct capffi__tok **out)
{
    capffi_reason why = CAPFFI_REASON_NONE;
    struct capffi__tok *t = NULL;
    int rc;

    if (out)
        *out = NULL;
    if (!tok) {
        why = CAPFFI_REASON_INVALID;
        rc = capffi__fail(ctx, CAPFFI_EINVAL, "token is NULL");
        goto done;
    }
    if (rights & ~CAPFFI_RIGHTS_ALL) {
        why = CAPFFI_REASON_INVALID;
        rc = capffi__fail(ctx, CAPFFI_EINVAL, "unknown right bits 0x%x",
                          rights & ~CAPFFI_RIGHTS_ALL);
        goto done;
    }
    pthread_mutex_lock(&capffi__tok_of(ctx)->tok_lock);
    t = find(ctx, tok);
    if (!t) {
        pthread_mutex_unlock(&capffi__tok_of(ctx)->tok_lock);
        rc = unknown_token(ctx, tok, &why);
        goto done;
    }
    rc = stale(ctx, t, &why);
    if (!rc)
        rc = check_rights(ctx, t, rights, &why);
    if (!rc && file)
        rc = path_in_scope(ctx, t, file, &why);
    if (!rc && consume)
        for (struct capffi__tok *a = t; a; a = a->parent)
            if (a->uses_left != UINT64_MAX)
                a->uses_left--;
    pthread_mutex_unlock(&capffi__tok_of(ctx)->tok_lock);

done:
    if (rc || (consume && op == CAPFFI_OP_TOKEN_CHECK)) {
        struct capffi__who who = capffi__token_who(t);
        if (!t && tok)
            who.token_id = tok->id;
        capffi__audit_emit(ctx, op, rc, why, &who, rights,
                           file ? file->canon : (target ? target : ""), "%s",
                           rc ? capffi_ctx_errmsg(ctx) : "allowed");
    }
    if (!rc && out)
        *out = t;
    return rc;
}

int
capffi__token_peek(capffi_ctx *ctx, const capffi_token *tok, uint32_t rights,
                   capffi_op op, const char *target, struct capffi__tok **out)
{
    return verify(ctx, tok, rights, NULL, op, target, false, out);
}

int
capffi__token_use(capffi_ctx *ctx, const capffi_token *tok, uint32_t rights,
                  const struct capffi__file *file, capffi_op op,
                  const char *target, struct capffi__tok **out)
{
    return verify(ctx, tok, rights, file, op, target, true, out);
}

int
capffi__token_covers(capffi_ctx *ctx, const struct capffi__tok *t,
                     const struct capffi__file *file)
{
    capffi_reason why;
    pthread_mutex_lock(&capffi__tok_of(ctx)->tok_lock);
    int rc = path_in_scope(ctx, t, file, &why);
    pthread_mutex_unlock(&capffi__tok_of(ctx)->tok_lock);
    return rc;
}

int
capffi__token_attach(capffi_ctx *ctx, struct capffi__tok *t,
                     struct capffi__res *r)
{
    pthread_mutex_lock(&capffi__tok_of(ctx)->tok_lock);
    if (atomic_load(&t->revoked)) {
        pthread_mutex_unlock(&capffi__tok_of(ctx)->tok_lock);
        return capffi__fail(ctx, CAPFFI_EREVOKED, "token '%s' was revoked",
                            t->label);
    }
    r->next = t->res.next;
    r->prev = &t->res;
    t->res.next->prev = r;
    t->res.next = r;
    pthread_mutex_unlock(&capffi__tok_of(ctx)->tok_lock);
    return CAPFFI_OK;
}

void
capffi__token_detach(capffi_ctx *ctx, struct capffi__res *r)
{
    if (!r->next)
        return;
    pthread_mutex_lock(&capffi__tok_of(ctx)->tok_lock);
    r->prev->next = r->next;
    r->next->prev = r->prev;
    r->next = r->prev = NULL;
    pthread_mutex_unlock(&capffi__tok_of(ctx)->tok_lock);
}

/* Context serials are never reused, so a token's MAC binds it to one
 * context even if two contexts drew the same random bytes. */
static atomic_uint_fast64_t next_serial = 1;

int
capffi__token_init(capffi_ctx *ctx)
{
    struct capffi__ctx_tok *c = capffi__tok_of(ctx);
    c->serial = atomic_fetch_add(&next_serial, 1);
    randombytes_buf(c->instance, sizeof c->instance);
    c->tokens = NULL;
    c->n_tokens = 0;
    if (pthread_mutex_init(&c->tok_lock, NULL))
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    c->secret = capffi__secure_alloc(crypto_generichash_KEYBYTES);
    if (!c->secret) {
        pthread_mutex_destroy(&c->tok_lock);
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    }
    crypto_generichash_keygen(c->secret);
    sodium_mprotect_noaccess(c->secret);
    return CAPFFI_OK;
}

void
capffi__token_fini(capffi_ctx *ctx)
{
    struct capffi__ctx_tok *c = capffi__tok_of(ctx);
    struct capffi__tok *t, *tmp;
    HASH_ITER(hh, c->tokens, t, tmp)
    {
        HASH_DEL(c->tokens, t);
        reg_remove(t->id, c->serial);
        entry_free(t);
    }
    c->n_tokens = 0;
    capffi__secure_free(c->secret);
    c->secret = NULL;
    pthread_mutex_destroy(&c->tok_lock);
}

/* ---- the public interface --------------------------------------------- */

/*
 * The grants of a token scoped to the given paths, out of src: each path
 * must be granted by src (else CAPFFI_EPERM, *why = WIDEN). The new scope
 * is those paths, plus src's own grants that lie below a requested
 * directory, minus src's withdrawals and denials: never more than src.
 */
static int
scope_grants(capffi_ctx *ctx, const capffi_scope *scope,
             const struct capffi__grants *src, struct capffi__grants *out,
             capffi_reason *why)
{
    memset(out, 0, sizeof *out);
    if (scope->n_paths && !scope->paths) {
        *why = CAPFFI_REASON_INVALID;
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "scope.paths is NULL but scope.n_paths is %zu",
                            scope->n_paths);
    }
    out->allow = capffi__pathset_new();
    out->withdrawn = capffi__pathset_copy(src->withdrawn);
    out->deny = capffi__pathset_ref(src->deny);
    int rc = CAPFFI_OK;
    if (!out->allow || !out->withdrawn)
        rc = capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < scope->n_paths; i++) {
        struct capffi__file f;
        rc = capffi__file_resolve(ctx, &f, scope->paths[i]);
        if (rc)
            break;
        if (capffi__grants_judge(src, &f, NULL) != CAPFFI__GRANTED) {
            *why = CAPFFI_REASON_WIDEN;
            rc = capffi__fail(ctx, CAPFFI_EPERM,
                              "scope path '%s' is not granted to the source",
                              f.canon);
        } else if (capffi__pathset_add(out->allow, &f)) {
            rc = capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
        }
        for (size_t k = 0; !rc && k < src->allow->n; k++) {
            const struct capffi__pathent *e = &src->allow->ent[k];
            if (capffi__pathent_below(e, &f) &&
                capffi__pathset_add_entry(out->allow, e))
                rc = capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
        }
        capffi__file_release(&f);
    }
    if (rc) {
        if (*why != CAPFFI_REASON_WIDEN)
            *why = rc == CAPFFI_ENOMEM ? CAPFFI_REASON_NOMEM
                                       : CAPFFI_REASON_INVALID;
        capffi__grants_release(out);
    }
    return rc;
}

static int
validate_scope(capffi_ctx *ctx, const capffi_scope *s)
{
    if (s->rights & ~CAPFFI_RIGHTS_ALL)
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "scope.rights has unknown bits 0x%x",
                            s->rights & ~CAPFFI_RIGHTS_ALL);
    if (s->ttl_ms > (uint64_t)INT64_MAX / 2000000)
        return capffi__fail(ctx, CAPFFI_EINVAL, "scope.ttl_ms is too large");
    return CAPFFI_OK;
}

int
capffi_token_new(capffi_token *out, capffi_ctx *ctx, const char *label,
                 const capffi_scope *scope)
{
    static const capffi_scope everything;
    capffi_reason why = CAPFFI_REASON_INVALID;
    struct capffi__tok proto, *made = NULL;
    char rtext[96];
    int rc;

    if (out)
        memset(out, 0, sizeof *out);
    rc = capffi__entry(ctx, CAPFFI_OP_TOKEN_NEW, "capffi_token_new");
    if (rc)
        return rc;
    if (!out) {
        rc = capffi__fail(ctx, CAPFFI_EINVAL, "out is NULL");
        goto done;
    }
    if ((rc = validate_label(ctx, label)))
        goto done;
    if (!scope)
        scope = &everything;
    if ((rc = validate_scope(ctx, scope)))
        goto done;
    if (scope->label) {
        rc = capffi__fail(ctx, CAPFFI_EINVAL,
                          "scope.label must be NULL for capffi_token_new "
                          "(the label is a parameter)");
        goto done;
    }

    const struct capffi__perm *p = &capffi__perm_of(ctx)->perm;
    uint32_t granted = capffi__perm_rights(p);
    if (!granted) {
        why = CAPFFI_REASON_NO_GRANT;
        rc = capffi__fail(ctx, CAPFFI_EPERM, "no FFI permission is granted");
        goto done;
    }
    if (scope->rights & ~granted) {
        rights_text(rtext, sizeof rtext, scope->rights & ~granted);
        why = CAPFFI_REASON_WIDEN;
        rc = capffi__fail(ctx, CAPFFI_EPERM,
                          "right(s) %s are not granted to this context", rtext);
        goto done;
    }

    memset(&proto, 0, sizeof proto);
    snprintf(proto.label, sizeof proto.label, "%s", label);
    proto.rights = scope->rights ? scope->rights : granted;
    proto.uses_left = scope->max_uses ? scope->max_uses : UINT64_MAX;
    proto.expires_ns =
        scope->ttl_ms ? capffi__now_ns() + (int64_t)scope->ttl_ms * 1000000 : 0;
    if (scope->paths || scope->n_paths) {
        rc = scope_grants(ctx, scope, &p->g, &proto.g, &why);
        if (rc)
            goto done;
    } else if (capffi__grants_snapshot(&proto.g, &p->g)) {
        why = CAPFFI_REASON_NOMEM;
        rc = capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
        goto done;
    }
    rc = mint(ctx, &proto, out, &made);
    if (rc)
        why = CAPFFI_REASON_NOMEM;

done:
    if (!capffi__audit_on(ctx))
        return rc;
    struct capffi__who who = capffi__token_who(made);
    if (!made)
        who.label = label_ok(label) ? label : "";
    rights_text(rtext, sizeof rtext, made ? made->rights : 0);
    capffi__audit_emit(ctx, CAPFFI_OP_TOKEN_NEW, rc,
                       rc ? why : CAPFFI_REASON_NONE, &who,
                       made ? made->rights : (scope ? scope->rights : 0), "",
                       "%s", rc ? capffi_ctx_errmsg(ctx) : rtext);
    return rc;
}

int
capffi_token_attenuate(capffi_token *out, capffi_ctx *ctx,
                       const capffi_token *parent, const capffi_scope *narrower)
{
    static const capffi_scope same;
    capffi_reason why = CAPFFI_REASON_INVALID;
    struct capffi__tok proto, *pt = NULL, *made = NULL;
    capffi_token parent_copy;
    char rtext[96];
    int rc;

    /* out may alias parent (t = attenuate(t)): read it before zeroing. */
    if (parent) {
        parent_copy = *parent;
        parent = &parent_copy;
    }
    if (out)
        memset(out, 0, sizeof *out);
    rc =
        capffi__entry(ctx, CAPFFI_OP_TOKEN_ATTENUATE, "capffi_token_attenuate");
    if (rc)
        return rc;
    if (!out || !parent) {
        rc = capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL",
                          out ? "parent" : "out");
        goto done;
    }
    if (!narrower)
        narrower = &same;
    if ((rc = validate_scope(ctx, narrower)))
        goto done;
    if (narrower->label && (rc = validate_label(ctx, narrower->label)))
        goto done;

    pthread_mutex_lock(&capffi__tok_of(ctx)->tok_lock);
    pt = find(ctx, parent);
    rc = pt ? stale(ctx, pt, &why) : CAPFFI_OK;
    pthread_mutex_unlock(&capffi__tok_of(ctx)->tok_lock);
    if (!pt) {
        rc = unknown_token(ctx, parent, &why);
        goto done;
    }
    if (rc)
        goto done;
    if (narrower->rights & ~pt->rights) {
        rights_text(rtext, sizeof rtext, narrower->rights & ~pt->rights);
        why = CAPFFI_REASON_WIDEN;
        rc = capffi__fail(ctx, CAPFFI_EPERM,
                          "token '%s' cannot grant right(s) it lacks: %s",
                          pt->label, rtext);
        goto done;
    }
    if (pt->depth >= CAPFFI_TOKEN_DEPTH_MAX) {
        why = CAPFFI_REASON_WIDEN;
        rc = capffi__fail(ctx, CAPFFI_EPERM,
                          "token '%s' is already %u attenuations deep",
                          pt->label, pt->depth);
        goto done;
    }

    memset(&proto, 0, sizeof proto);
    if (narrower->label)
        snprintf(proto.label, sizeof proto.label, "%s", narrower->label);
    else
        derived_label(proto.label, pt->label);
    proto.parent = pt;
    proto.depth = pt->depth + 1;
    proto.rights = narrower->rights ? narrower->rights : pt->rights;
    proto.uses_left = narrower->max_uses ? narrower->max_uses : UINT64_MAX;
    proto.expires_ns = pt->expires_ns;
    if (narrower->ttl_ms) {
        int64_t e = capffi__now_ns() + (int64_t)narrower->ttl_ms * 1000000;
        if (!proto.expires_ns || e < proto.expires_ns)
            proto.expires_ns = e;
    }
    if (narrower->paths || narrower->n_paths) {
        rc = scope_grants(ctx, narrower, &pt->g, &proto.g, &why);
        if (rc)
            goto done;
    } else {
        capffi__grants_share(&proto.g, &pt->g);
    }
    rc = mint(ctx, &proto, out, &made);
    if (rc)
        why =
            rc == CAPFFI_EREVOKED ? CAPFFI_REASON_REVOKED : CAPFFI_REASON_NOMEM;

done:;
    struct capffi__who who = capffi__token_who(made);
    if (!made) {
        who.parent_id = pt ? pt->id : (parent ? parent->id : 0);
        who.label = pt ? pt->label : "";
    }
    rights_text(rtext, sizeof rtext, made ? made->rights : 0);
    capffi__audit_emit(ctx, CAPFFI_OP_TOKEN_ATTENUATE, rc,
                       rc ? why : CAPFFI_REASON_NONE, &who,
                       made ? made->rights : (narrower ? narrower->rights : 0),
                       "", "%s", rc ? capffi_ctx_errmsg(ctx) : rtext);
    return rc;
}

/* Mark t and its subtree revoked and tell their resources. Caller holds
 * tok_lock. Depth is bounded by CAPFFI_TOKEN_DEPTH_MAX. */
static size_t
revoke_tree(struct capffi__tok *t)
{
    size_t n = 0;
    if (!atomic_exchange_explicit(&t->revoked, 1, memory_order_acq_rel))
        n++;
    for (struct capffi__res *r = t->res.next; r != &t->res; r = r->next)
        if (r->on_revoke)
            r->on_revoke(r);
    for (struct capffi__tok *c = t->first_child; c; c = c->next_sibling)
        n += revoke_tree(c);
    return n;
}

int
capffi_token_revoke(capffi_ctx *ctx, const capffi_token *tok)
{
    capffi_reason why = CAPFFI_REASON_NONE;
    struct capffi__tok *t = NULL;
    size_t n = 0;
    int rc = CAPFFI_OK;

    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    if (!tok) {
        why = CAPFFI_REASON_INVALID;
        rc = capffi__fail(ctx, CAPFFI_EINVAL, "token is NULL");
    } else {
        pthread_mutex_lock(&capffi__tok_of(ctx)->tok_lock);
        t = find(ctx, tok);
        if (t)
            n = revoke_tree(t);
        pthread_mutex_unlock(&capffi__tok_of(ctx)->tok_lock);
        if (!t)
            rc = unknown_token(ctx, tok, &why);
    }
    struct capffi__who who = capffi__token_who(t);
    if (!t && tok)
        who.token_id = tok->id;
    if (rc)
        capffi__audit_emit(ctx, CAPFFI_OP_TOKEN_REVOKE, rc, why, &who, 0, "",
                           "%s", capffi_ctx_errmsg(ctx));
    else
        capffi__audit_emit(ctx, CAPFFI_OP_TOKEN_REVOKE, rc, why, &who, 0, "",
                           "%zu token(s) revoked", n);
    return rc;
}

int
capffi_token_check(capffi_ctx *ctx, const capffi_token *tok, uint32_t rights,
                   const char *path)
{
    int rc = capffi__entry(ctx, CAPFFI_OP_TOKEN_CHECK, "capffi_token_check");
    if (rc)
        return rc;
    if (!path)
        return capffi__token_use(ctx, tok, rights, NULL, CAPFFI_OP_TOKEN_CHECK,
                                 NULL, NULL);
    /* The token first: a forged token learns nothing about the path. */
    struct capffi__tok *t;
    rc = capffi__token_peek(ctx, tok, rights, CAPFFI_OP_TOKEN_CHECK, path, &t);
    if (rc)
        return rc;
    struct capffi__file f;
    rc = capffi__file_resolve(ctx, &f, path);
    if (rc) {
        struct capffi__who who = capffi__token_who(t);
        capffi__audit_emit(ctx, CAPFFI_OP_TOKEN_CHECK, rc,
                           rc == CAPFFI_ENOMEM ? CAPFFI_REASON_NOMEM
                                               : CAPFFI_REASON_INVALID,
                           &who, rights, "", "%s", capffi_ctx_errmsg(ctx));
        return rc;
    }
    rc = capffi__token_use(ctx, tok, rights, &f, CAPFFI_OP_TOKEN_CHECK, NULL,
                           NULL);
    capffi__file_release(&f);
    return rc;
}

int
capffi_token_info(capffi_token_desc *out, capffi_ctx *ctx,
                  const capffi_token *tok)
{
    if (out)
        memset(out, 0, sizeof *out);
    int rc = capffi__ctx_owner_check(ctx, "capffi_token_info");
    if (rc)
        return rc;
    if (!out || !tok)
        return capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL",
                            out ? "token" : "out");
    pthread_mutex_lock(&capffi__tok_of(ctx)->tok_lock);
    const struct capffi__tok *t = find(ctx, tok);
    if (t) {
        snprintf(out->label, sizeof out->label, "%s", t->label);
        out->rights = t->rights;
        out->parent_id = t->parent ? t->parent->id : 0;
        out->depth = t->depth;
        out->uses_left = UINT64_MAX;
        for (const struct capffi__tok *a = t; a; a = a->parent)
            if (a->uses_left < out->uses_left)
                out->uses_left = a->uses_left;
        out->expires_in_ms = -1;
        if (t->expires_ns) {
            int64_t left = t->expires_ns - capffi__now_ns();
            out->expires_in_ms = left > 0 ? (left + 999999) / 1000000 : 0;
        }
        out->all_paths = t->g.all;
        out->n_paths = t->g.allow ? t->g.allow->n : 0;
        out->revoked = atomic_load(&t->revoked);
    }
    pthread_mutex_unlock(&capffi__tok_of(ctx)->tok_lock);
    if (!t) {
        capffi_reason why;
        return unknown_token(ctx, tok, &why);
    }
    return CAPFFI_OK;
}

bool
capffi__safe(const capffi_ctx *ctx, const struct capffi__tok *t)
{
    if (capffi__perm_of(ctx)->perm.flags & CAPFFI_OPT_SAFE)
        return true;
    return t && !(t->rights & (CAPFFI_RIGHT_POINTER | CAPFFI_RIGHT_READ |
                               CAPFFI_RIGHT_WRITE));
}

int
capffi__safe_refuse(capffi_ctx *ctx, capffi_op op, const char *fn,
                    const char *target)
{
    if (!(capffi__perm_of(ctx)->perm.flags & CAPFFI_OPT_SAFE))
        return CAPFFI_OK;
    capffi__audit_emit(ctx, op, CAPFFI_EPERM, CAPFFI_REASON_DENIED, NULL, 0,
                       target, "%s: refused in safe mode", fn);
    return capffi__fail(ctx, CAPFFI_EPERM,
                        "%s: the context is in safe mode (CAPFFI_OPT_SAFE): "
                        "native memory is reached through classes "
                        "(docs/safeffi.md)",
                        fn);
}
