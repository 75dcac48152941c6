/*
 * token.c - minting, attenuating, verifying and revoking tokens.
 *
 * Threats answered here (THREATS.md): T1 (a tag is a 128-bit MAC of the
 * id under a per-context secret, compared in constant time, so guessing
 * needs 2^128 tries), T2 (the MAC covers the context's serial and
 * instance under that context's own secret; the table is per context),
 * T3 (revoked tokens answer EREVOKED while their slot waits for reuse and,
 * through the MAC of their id, after it; ids never repeat in a context;
 * expiry and use limits), T4 (children are checked as subsets and linked
 * under their parent, which cascades revocation), T6 (tags never reach a
 * message or an event), T7 (attach and revoke serialise on the token lock;
 * a check reads the revoked flag with acquire, so no check starts after a
 * revocation returned).
 *
 * The id. A token's id is its slot (bits 0-23), the slot's generation
 * (bits 24-43, from 1) and the epoch of its tag's key (bits 44-63), so a
 * check is a direct index and a compare of the id and the tag, with no
 * hash walk. A slot is reused with the next generation and retired when
 * its generation is used up, so an id is never handed out twice by one
 * context.
 *
 * Secrets. The master secret lives in guarded memory, no-access at rest.
 * Tags are keyed by a per-epoch key derived from it (an epoch is
 * EPOCH_MINTS mints); the current epoch's keyed MAC state lives in guarded
 * memory that stays readable, so minting makes no system call. The
 * master is opened only to start an epoch and to recognise a token whose
 * slot was reused since (SECURITY.md: "Token secrets").
 */
#include "perm/token.h"

#include <inttypes.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "perm/perm.h"

/* ---- the id ----------------------------------------------------------- */

#define SLOT_BITS 24
#define GEN_BITS 20
#define EPOCH_BITS 20
#define SLOT_LIMIT (UINT32_C(1) << SLOT_BITS)
#define GEN_MAX ((UINT32_C(1) << GEN_BITS) - 1)
#define EPOCH_MASK ((UINT32_C(1) << EPOCH_BITS) - 1)

/* Mints per epoch: the master is opened once per EPOCH_MINTS mints. */
#define EPOCH_MINTS 1024

/* Slots come in chunks that never move: SMALL_CHUNKS of 64, 128, ...
 * 2048 entries (a context with few tokens stays small), then chunks of
 * 2^BIG_BITS entries (the last chunk's unused room stays under 4096
 * entries, whatever the table's size). */
#define CHUNK0_BITS 6
#define CHUNK0 (UINT64_C(1) << CHUNK0_BITS)
#define SMALL_CHUNKS 6u
#define SMALL_SLOTS ((CHUNK0 << SMALL_CHUNKS) - CHUNK0)
#define BIG_BITS 12
#define BIG_CHUNK (UINT32_C(1) << BIG_BITS)

/* Entry flags (struct capffi__tok.flags), written under tok_lock. */
#define TOK_PINNED 0x01u /* something was attached: never reused */
#define TOK_QUEUED 0x02u /* waiting in the free queue */

static uint32_t
id_slot(uint64_t id)
{
    return (uint32_t)(id & (SLOT_LIMIT - 1));
}

static uint32_t
id_gen(uint64_t id)
{
    return (uint32_t)(id >> SLOT_BITS) & GEN_MAX;
}

static uint32_t
id_epoch(uint64_t id)
{
    return (uint32_t)(id >> (SLOT_BITS + GEN_BITS)) & EPOCH_MASK;
}

static uint64_t
id_make(uint32_t slot, uint32_t gen, uint32_t epoch)
{
    return (uint64_t)slot | (uint64_t)gen << SLOT_BITS |
           (uint64_t)epoch << (SLOT_BITS + GEN_BITS);
}

/* Chunk of slot s, and s's place in it. */
static uint32_t
chunk_of(uint32_t s, uint32_t *at)
{
    if (s < SMALL_SLOTS) {
        uint64_t v = (uint64_t)s + CHUNK0;
        unsigned k = (unsigned)(63 - __builtin_clzll(v)) - CHUNK0_BITS;
        *at = (uint32_t)(v - (CHUNK0 << k));
        return k;
    }
    s -= (uint32_t)SMALL_SLOTS;
    *at = s & (BIG_CHUNK - 1);
    return SMALL_CHUNKS + (s >> BIG_BITS);
}

/* Entries in chunk k. */
static uint32_t
chunk_size(uint32_t k)
{
    return k < SMALL_CHUNKS ? (uint32_t)(CHUNK0 << k) : BIG_CHUNK;
}

/* The entry of slot s (s < n_slots). */
static struct capffi__tok *
slot_entry(const struct capffi__ctx_tok *c, uint32_t s)
{
    uint32_t at, k = chunk_of(s, &at);
    return &c->chunk[k][at];
}

/* Slot number plus one of an entry (links are stored that way). */
static uint32_t
link_of(const struct capffi__tok *t)
{
    return id_slot(t->id) + 1;
}

/* ---- secrets ---------------------------------------------------------- */

/*
 * The keyed MAC state of epoch e: BLAKE2b keyed with a key derived from
 * the master secret, the context's serial and instance and e. The master
 * is readable only for the length of the derivation. Caller holds
 * tok_lock (the master's protection is shared state).
 */
static void
epoch_state(struct capffi__ctx_tok *c, uint32_t e, crypto_generichash_state *st)
{
    struct {
        char domain[16];
        uint64_t serial;
        uint8_t instance[16];
        uint32_t epoch;
    } in;
    unsigned char key[crypto_generichash_KEYBYTES];
    memset(&in, 0, sizeof in);
    memcpy(in.domain, "capffi.token.ep", 15);
    in.serial = c->serial;
    memcpy(in.instance, c->instance, sizeof in.instance);
    in.epoch = e;
    sodium_mprotect_readonly(c->secret);
    crypto_generichash(key, sizeof key, (const unsigned char *)&in, sizeof in,
                       c->secret, crypto_generichash_KEYBYTES);
    sodium_mprotect_noaccess(c->secret);
    crypto_generichash_init(st, key, sizeof key, 16);
    sodium_memzero(key, sizeof key);
}

/*
 * The tag of id: the MAC, under its epoch's key, of the context's serial
 * and instance and the id. Caller holds tok_lock. Only the id is covered:
 * the token's rights, scope, limits and parent live in this context's
 * table, found by the id, and a token whose entry is gone must still be
 * recognised as one this context minted.
 */
static void
tag_of(struct capffi__ctx_tok *c, uint64_t id, uint8_t out[16])
{
    crypto_generichash_state st;
    struct {
        char domain[16];
        uint64_t serial;
        uint8_t instance[16];
        uint64_t id;
    } in;
    memset(&in, 0, sizeof in);
    memcpy(in.domain, "capffi.token.v2", 15);
    in.serial = c->serial;
    memcpy(in.instance, c->instance, sizeof in.instance);
    in.id = id;
    if (id_epoch(id) == c->epoch)
        memcpy(&st, c->epoch_key, sizeof st);
    else
        epoch_state(c, id_epoch(id), &st);
    crypto_generichash_update(&st, (const unsigned char *)&in, sizeof in);
    crypto_generichash_final(&st, out, 16);
    sodium_memzero(&st, sizeof st);
}

/* Start epoch e: its MAC state replaces the last one. Caller holds
 * tok_lock. */
static void
epoch_start(struct capffi__ctx_tok *c, uint32_t e)
{
    crypto_generichash_state st;
    epoch_state(c, e, &st);
    memcpy(c->epoch_key, &st, sizeof st);
    sodium_memzero(&st, sizeof st);
    c->epoch = e;
    c->epoch_left = EPOCH_MINTS;
}

/* ---- the table -------------------------------------------------------- */

/*
 * 0 when the 16 bytes at a and b are equal, else 1, in time independent
 * of where they differ: two 64-bit XORs folded with OR, no early exit
 * (as crypto_verify_16, but inlined into the check).
 */
static int
tag_differs(const uint8_t *a, const uint8_t *b)
{
    uint64_t a0, a1, b0, b1;
    memcpy(&a0, a, 8);
    memcpy(&a1, a + 8, 8);
    memcpy(&b0, b, 8);
    memcpy(&b1, b + 8, 8);
    uint64_t d = (a0 ^ b0) | (a1 ^ b1);
    return (int)((d | (0 - d)) >> 63);
}

/*
 * The entry of a presented token: its slot's entry when the id is that
 * entry's (this generation) and the tag matches, in constant time in the
 * tag; the id is not secret. NULL otherwise. The owner thread calls this
 * without tok_lock (it is the only writer of the table); other threads
 * hold it.
 */
static struct capffi__tok *
lookup(const struct capffi__ctx_tok *c, const capffi_token *tok)
{
    static const uint8_t dummy[16];
    uint32_t s = id_slot(tok->id);
    struct capffi__tok *t = s < c->n_slots ? slot_entry(c, s) : NULL;
    if (t && t->id != tok->id)
        t = NULL;
    /* Compare against a dummy when the id is unknown, so the time taken
     * does not depend on how many tag bytes match either way. */
    int differs = tag_differs(t ? t->tag : dummy, tok->tag);
    return t && !differs ? t : NULL;
}

/*
 * Is tok a token this context minted into a slot that has since been
 * reused (so it was revoked)? Its generation is older than the slot's and
 * its tag is the MAC of its id. Caller holds tok_lock.
 */
static bool
minted_before(struct capffi__ctx_tok *c, const capffi_token *tok)
{
    uint32_t s = id_slot(tok->id), g = id_gen(tok->id);
    if (s >= c->n_slots || g == 0 || g >= id_gen(slot_entry(c, s)->id))
        return false;
    uint8_t want[16];
    tag_of(c, tok->id, want);
    bool same = crypto_verify_16(want, tok->tag) == 0;
    sodium_memzero(want, sizeof want);
    return same;
}

/* Was tok minted here into a slot reused since? Takes tok_lock. */
static bool
reused_token(capffi_ctx *ctx, const capffi_token *tok)
{
    struct capffi__ctx_tok *c = capffi__tok_of(ctx);
    pthread_mutex_lock(&c->tok_lock);
    bool was = minted_before(c, tok);
    pthread_mutex_unlock(&c->tok_lock);
    return was;
}

/* ---- labels and scopes ------------------------------------------------ */

/* An interned label; tokens point at s. Owner thread. */
struct capffi__label {
    unsigned refs;
    UT_hash_handle hh;
    char s[];
};

static const char *
label_intern(struct capffi__ctx_tok *c, const char *label)
{
    size_t n = strlen(label);
    struct capffi__label *l;
    HASH_FIND(hh, c->labels, label, n, l);
    if (l) {
        l->refs++;
        return l->s;
    }
    l = capffi__malloc(sizeof *l + n + 1);
    if (!l)
        return NULL;
    memset(l, 0, sizeof *l);
    l->refs = 1;
    memcpy(l->s, label, n + 1);
    HASH_ADD_KEYPTR(hh, c->labels, l->s, n, l);
    if (!l->hh.tbl) {
        capffi__free(l);
        return NULL;
    }
    return l->s;
}

static void
label_release(struct capffi__ctx_tok *c, const char *label)
{
    if (!label)
        return;
    struct capffi__label *l =
        (struct capffi__label *)(uintptr_t)(label -
                                            offsetof(struct capffi__label, s));
    if (--l->refs == 0) {
        HASH_DEL(c->labels, l);
        capffi__free(l);
    }
}

static void
scope_release(struct capffi__tscope *sc)
{
    if (sc && --sc->refs == 0) {
        capffi__grants_release(&sc->g);
        capffi__free(sc);
    }
}

/* A scope holding g (taken over, released on failure); NULL: no memory. */
static struct capffi__tscope *
scope_wrap(struct capffi__grants *g)
{
    struct capffi__tscope *sc = capffi__malloc(sizeof *sc);
    if (!sc) {
        capffi__grants_release(g);
        return NULL;
    }
    sc->refs = 1;
    sc->g = *g;
    return sc;
}

static bool
fid_same(const struct capffi__fid *a, const struct capffi__fid *b)
{
    return a->dev == b->dev && a->ino == b->ino;
}

/* Same entries in the same order (what a judgement reads of them). */
static bool
sets_same(const struct capffi__pathset *a, const struct capffi__pathset *b)
{
    if (a == b)
        return true;
    if (!a || !b || a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const struct capffi__pathent *x = &a->ent[i], *y = &b->ent[i];
        if (!fid_same(&x->id, &y->id) || x->dir != y->dir ||
            x->special != y->special || x->n_anc != y->n_anc ||
            strcmp(x->canon, y->canon) != 0)
            return false;
        for (size_t k = 0; k < x->n_anc; k++)
            if (!fid_same(&x->anc[k], &y->anc[k]))
                return false;
    }
    return true;
}

/*
 * The scope of a token minted from the context's grants as they are now:
 * the last snapshot when the grants have not changed since (the deny list
 * is shared, not copied, so the same list), else a new snapshot, which
 * becomes the last. The caller owns one reference. Owner thread.
 */
static struct capffi__tscope *
context_scope(capffi_ctx *ctx)
{
    struct capffi__ctx_tok *c = capffi__tok_of(ctx);
    const struct capffi__grants *g = &capffi__perm_of(ctx)->perm.g;
    struct capffi__tscope *s = c->snap;
    if (s && s->g.all == g->all && s->g.deny == g->deny &&
        sets_same(s->g.allow, g->allow) &&
        sets_same(s->g.withdrawn, g->withdrawn)) {
        s->refs++;
        return s;
    }
    struct capffi__grants copy;
    if (capffi__grants_snapshot(&copy, g))
        return NULL;
    s = scope_wrap(&copy);
    if (!s)
        return NULL;
    s->refs++;
    scope_release(c->snap);
    c->snap = s;
    return s;
}

/* ---- slots ------------------------------------------------------------ */

/*
 * Queue t for reuse when nothing refers to it any more: revoked, never
 * attached to (resources, and objects made through them, keep pointers to
 * its revoked flag), no child left in the table (children point at their
 * parent), and a generation left. Caller holds tok_lock. The entry keeps
 * answering for its token, as revoked, until the slot is taken.
 */
static void
maybe_queue(struct capffi__ctx_tok *c, struct capffi__tok *t)
{
    if (!atomic_load_explicit(&t->revoked, memory_order_relaxed) ||
        (t->flags & (TOK_PINNED | TOK_QUEUED)) || t->first_child ||
        id_gen(t->id) == GEN_MAX)
        return;
    t->flags |= TOK_QUEUED;
    t->next_free = 0;
    if (c->free_tail)
        slot_entry(c, c->free_tail - 1)->next_free = link_of(t);
    else
        c->free_head = link_of(t);
    c->free_tail = link_of(t);
    c->n_tokens--;
}

/*
 * A slot for a new token: the oldest queued one (first unlinked from its
 * parent, which may queue the parent, and its label and scope let go), or
 * a new one. *slot is its number, *gen the generation the new token gets. NULL
 * when the table is full or a chunk cannot be allocated. Caller holds tok_lock,
 * on the owner thread.
 */
static struct capffi__tok *
take_slot(struct capffi__ctx_tok *c, uint32_t *slot, uint32_t *gen)
{
    if (c->free_head) {
        struct capffi__tok *t = slot_entry(c, c->free_head - 1);
        c->free_head = t->next_free;
        if (!c->free_head)
            c->free_tail = 0;
        struct capffi__tok *p = t->parent;
        if (p) {
            if (t->prev_sibling)
                slot_entry(c, t->prev_sibling - 1)->next_sibling =
                    t->next_sibling;
            else
                p->first_child = t->next_sibling;
            if (t->next_sibling)
                slot_entry(c, t->next_sibling - 1)->prev_sibling =
                    t->prev_sibling;
            maybe_queue(c, p);
        }
        label_release(c, t->label);
        scope_release(t->sc);
        *slot = id_slot(t->id);
        *gen = id_gen(t->id) + 1;
        return t;
    }
    if (c->n_slots == SLOT_LIMIT)
        return NULL;
    uint32_t at, k = chunk_of(c->n_slots, &at);
    if (at == 0) {
        /* A new chunk; the directory grows by doubling. The owner thread
         * reads it without the lock, and is the one writing it here. The
         * chunk comes first, so a failure leaves the table as it was. */
        struct capffi__tok *chunk =
            capffi__malloc(sizeof(struct capffi__tok) * chunk_size(k));
        if (!chunk)
            return NULL;
        if (k == c->n_chunks) {
            uint32_t cap = c->n_chunks ? 2 * c->n_chunks : 16;
            struct capffi__tok **d = capffi__realloc(c->chunk, cap * sizeof *d);
            if (!d) {
                capffi__free(chunk);
                return NULL;
            }
            c->chunk = d;
            c->n_chunks = cap;
        }
        c->chunk[k] = chunk;
    }
    *slot = c->n_slots++;
    *gen = 1;
    return slot_entry(c, *slot);
}

/* ---- telling "foreign" from "forged" ---------------------------------- */

/*
 * Every live context. Consulted only when a token fails to verify in a
 * context, to say whether another live context minted it (reason
 * FOREIGN) or none did (FORGED). Foreign tokens are still refused: this
 * never makes anything succeed. Lock order: reg_lock, then a context's
 * tok_lock; nothing takes reg_lock while holding a tok_lock.
 */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct capffi__ctx_tok *registry;

static void
reg_add(struct capffi__ctx_tok *c)
{
    pthread_mutex_lock(&reg_lock);
    c->reg_prev = NULL;
    c->reg_next = registry;
    if (registry)
        registry->reg_prev = c;
    registry = c;
    pthread_mutex_unlock(&reg_lock);
}

static void
reg_remove(struct capffi__ctx_tok *c)
{
    pthread_mutex_lock(&reg_lock);
    if (c->reg_prev)
        c->reg_prev->reg_next = c->reg_next;
    else if (registry == c)
        registry = c->reg_next;
    if (c->reg_next)
        c->reg_next->reg_prev = c->reg_prev;
    c->reg_prev = c->reg_next = NULL;
    pthread_mutex_unlock(&reg_lock);
}

static bool
reg_is_foreign(const capffi_token *tok, const struct capffi__ctx_tok *self)
{
    bool foreign = false;
    pthread_mutex_lock(&reg_lock);
    for (struct capffi__ctx_tok *o = registry; o && !foreign; o = o->reg_next) {
        if (o == self)
            continue;
        pthread_mutex_lock(&o->tok_lock);
        foreign = lookup(o, tok) || minted_before(o, tok);
        pthread_mutex_unlock(&o->tok_lock);
    }
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

/*
 * Give the token described by proto (label, scope, parent, rights, depth,
 * limits) a slot, an id and a tag, and link it under its parent. Takes
 * over proto's label and scope references whether it succeeds or not.
 * Owner thread.
 */
static int
mint(capffi_ctx *ctx, const struct capffi__tok *proto, capffi_token *out,
     struct capffi__tok **entry_out)
{
    struct capffi__ctx_tok *c = capffi__tok_of(ctx);
    uint32_t slot, gen;

    pthread_mutex_lock(&c->tok_lock);
    if (proto->parent && atomic_load(&proto->parent->revoked)) {
        pthread_mutex_unlock(&c->tok_lock);
        label_release(c, proto->label);
        scope_release(proto->sc);
        return capffi__fail(ctx, CAPFFI_EREVOKED,
                            "parent token was revoked during attenuation");
    }
    struct capffi__tok *t = take_slot(c, &slot, &gen);
    if (!t) {
        pthread_mutex_unlock(&c->tok_lock);
        label_release(c, proto->label);
        scope_release(proto->sc);
        return capffi__fail(ctx, CAPFFI_ENOMEM,
                            c->n_slots == SLOT_LIMIT ? "the token table is full"
                                                     : "out of memory");
    }
    if (!c->epoch_left)
        epoch_start(c, (c->epoch + 1) & EPOCH_MASK);
    c->epoch_left--;

    t->id = id_make(slot, gen, c->epoch);
    tag_of(c, t->id, t->tag);
    atomic_store_explicit(&t->revoked, 0, memory_order_relaxed);
    t->rights = proto->rights;
    t->depth = proto->depth;
    t->flags = 0;
    t->uses_left = proto->uses_left;
    t->expires_ns = proto->expires_ns;
    t->parent = proto->parent;
    t->first_child = t->prev_sibling = t->next_sibling = t->next_free = 0;
    t->res.prev = t->res.next = &t->res;
    t->res.on_revoke = NULL;
    t->label = proto->label;
    t->sc = proto->sc;
    if (t->parent) {
        t->next_sibling = t->parent->first_child;
        if (t->next_sibling)
            slot_entry(c, t->next_sibling - 1)->prev_sibling = slot + 1;
        t->parent->first_child = slot + 1;
    }
    c->n_tokens++;
    pthread_mutex_unlock(&c->tok_lock);

    out->id = t->id;
    memcpy(out->tag, t->tag, sizeof out->tag);
    if (entry_out)
        *entry_out = t;
    return CAPFFI_OK;
}

/*
 * Message and reason for a token that did not verify: one this context
 * minted into a slot reused since (revoked), another live context's
 * (foreign), or none (forged). Caller does not hold tok_lock.
 */
static int
unknown_token(capffi_ctx *ctx, const capffi_token *tok, capffi_reason *why)
{
    if (reused_token(ctx, tok)) {
        *why = CAPFFI_REASON_REVOKED;
        return capffi__fail(ctx, CAPFFI_EREVOKED,
                            "token %016" PRIx64 " was revoked", tok->id);
    }
    if (reg_is_foreign(tok, capffi__tok_of(ctx))) {
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
    switch (capffi__grants_judge(&t->sc->g, f, &d)) {
    case CAPFFI__GRANTED:
        return CAPFFI_OK;
    case CAPFFI__DENIED:
        *why = CAPFFI_REASON_DENIED;
        return capffi__fail(ctx, CAPFFI_EPERM, "'%s' is denied (by '%s')",
                            f->canon, d->canon);
    default:
        *why = CAPFFI_REASON_PATH;
        return capffi__fail(ctx, CAPFFI_EPERM,
                            f->special && t->sc->g.all
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
    /* Owner thread: the table's only writer, so no lock. Revocation on
     * another thread only sets revoked flags, read here with acquire. */
    t = lookup(capffi__tok_of(ctx), tok);
    if (!t) {
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
    /* What is made through t, and what that hands out, may keep t's
     * revoked flag without being attached (capffi__fn_wrap): never reuse
     * the slot. */
    t->flags |= TOK_PINNED;
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
    uint32_t epoch;
    c->serial = atomic_fetch_add(&next_serial, 1);
    randombytes_buf(c->instance, sizeof c->instance);
    randombytes_buf(&epoch, sizeof epoch);
    c->chunk = NULL;
    c->n_chunks = 0;
    c->n_slots = c->free_head = c->free_tail = 0;
    c->n_tokens = 0;
    c->snap = NULL;
    c->labels = NULL;
    c->reg_prev = c->reg_next = NULL;
    if (pthread_mutex_init(&c->tok_lock, NULL))
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    c->secret = capffi__secure_alloc(crypto_generichash_KEYBYTES);
    c->epoch_key = capffi__secure_alloc(sizeof(crypto_generichash_state));
    if (!c->secret || !c->epoch_key) {
        capffi__secure_free(c->secret);
        capffi__secure_free(c->epoch_key);
        c->secret = c->epoch_key = NULL;
        pthread_mutex_destroy(&c->tok_lock);
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    }
    crypto_generichash_keygen(c->secret);
    sodium_mprotect_noaccess(c->secret);
    pthread_mutex_lock(&c->tok_lock);
    epoch_start(c, epoch & EPOCH_MASK);
    pthread_mutex_unlock(&c->tok_lock);
    reg_add(c);
    return CAPFFI_OK;
}

void
capffi__token_fini(capffi_ctx *ctx)
{
    struct capffi__ctx_tok *c = capffi__tok_of(ctx);
    /* Out of the registry first: no other thread looks at the table
     * once this returns. */
    reg_remove(c);
    for (uint32_t s = 0; s < c->n_slots; s++)
        scope_release(slot_entry(c, s)->sc);
    if (c->n_slots) {
        uint32_t at, last = chunk_of(c->n_slots - 1, &at);
        for (uint32_t k = 0; k <= last; k++)
            capffi__free(c->chunk[k]);
    }
    capffi__free(c->chunk);
    c->chunk = NULL;
    c->n_chunks = 0;
    c->n_slots = c->free_head = c->free_tail = 0;
    c->n_tokens = 0;
    scope_release(c->snap);
    c->snap = NULL;
    struct capffi__label *l, *tmp;
    HASH_ITER(hh, c->labels, l, tmp)
    {
        HASH_DEL(c->labels, l);
        capffi__free(l);
    }
    capffi__secure_free(c->secret);
    capffi__secure_free(c->epoch_key);
    c->secret = c->epoch_key = NULL;
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
    proto.rights = (uint16_t)(scope->rights ? scope->rights : granted);
    proto.uses_left = scope->max_uses ? scope->max_uses : UINT64_MAX;
    proto.expires_ns =
        scope->ttl_ms ? capffi__now_ns() + (int64_t)scope->ttl_ms * 1000000 : 0;
    if (scope->paths || scope->n_paths) {
        struct capffi__grants g;
        rc = scope_grants(ctx, scope, &p->g, &g, &why);
        if (rc)
            goto done;
        proto.sc = scope_wrap(&g);
    } else {
        proto.sc = context_scope(ctx);
    }
    proto.label = proto.sc ? label_intern(capffi__tok_of(ctx), label) : NULL;
    if (!proto.label) {
        scope_release(proto.sc);
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

    pt = lookup(capffi__tok_of(ctx), parent);
    rc = pt ? stale(ctx, pt, &why) : CAPFFI_OK;
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
    char lab[CAPFFI_LABEL_MAX + 1];
    if (narrower->label)
        snprintf(lab, sizeof lab, "%s", narrower->label);
    else
        derived_label(lab, pt->label);
    proto.parent = pt;
    proto.depth = (uint8_t)(pt->depth + 1);
    proto.rights = (uint16_t)(narrower->rights ? narrower->rights : pt->rights);
    proto.uses_left = narrower->max_uses ? narrower->max_uses : UINT64_MAX;
    proto.expires_ns = pt->expires_ns;
    if (narrower->ttl_ms) {
        int64_t e = capffi__now_ns() + (int64_t)narrower->ttl_ms * 1000000;
        if (!proto.expires_ns || e < proto.expires_ns)
            proto.expires_ns = e;
    }
    if (narrower->paths || narrower->n_paths) {
        struct capffi__grants g;
        rc = scope_grants(ctx, narrower, &pt->sc->g, &g, &why);
        if (rc)
            goto done;
        proto.sc = scope_wrap(&g);
    } else {
        proto.sc = pt->sc;
        proto.sc->refs++;
    }
    proto.label = proto.sc ? label_intern(capffi__tok_of(ctx), lab) : NULL;
    if (!proto.label) {
        scope_release(proto.sc);
        why = CAPFFI_REASON_NOMEM;
        rc = capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
        goto done;
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

/* Mark t and its subtree revoked, tell their resources, and queue for
 * reuse what nothing refers to. Caller holds tok_lock. Depth is bounded by
 * CAPFFI_TOKEN_DEPTH_MAX. */
static size_t
revoke_tree(struct capffi__ctx_tok *c, struct capffi__tok *t)
{
    size_t n = 0;
    if (!atomic_exchange_explicit(&t->revoked, 1, memory_order_acq_rel))
        n++;
    for (struct capffi__res *r = t->res.next; r != &t->res; r = r->next)
        if (r->on_revoke)
            r->on_revoke(r);
    for (uint32_t k = t->first_child; k; k = slot_entry(c, k - 1)->next_sibling)
        n += revoke_tree(c, slot_entry(c, k - 1));
    maybe_queue(c, t);
    return n;
}

int
capffi_token_revoke(capffi_ctx *ctx, const capffi_token *tok)
{
    capffi_reason why = CAPFFI_REASON_NONE;
    struct capffi__tok *t = NULL;
    size_t n = 0;
    int rc = CAPFFI_OK;
    /* Who the event names, copied under the lock: once revoked, the slot
     * may be reused by the owner thread as soon as the lock is dropped. */
    char label[CAPFFI_LABEL_MAX + 1] = "";
    struct capffi__who who = { 0, 0, label };

    if (!ctx)
        return capffi__fail(NULL, CAPFFI_EINVAL, "ctx is NULL");
    if (!tok) {
        why = CAPFFI_REASON_INVALID;
        rc = capffi__fail(ctx, CAPFFI_EINVAL, "token is NULL");
    } else {
        struct capffi__ctx_tok *c = capffi__tok_of(ctx);
        pthread_mutex_lock(&c->tok_lock);
        t = lookup(c, tok);
        if (t) {
            struct capffi__who w = capffi__token_who(t);
            who.token_id = w.token_id;
            who.parent_id = w.parent_id;
            snprintf(label, sizeof label, "%s", w.label);
            n = revoke_tree(c, t);
        }
        pthread_mutex_unlock(&c->tok_lock);
        /* A token whose slot was reused was revoked: revoking it again
         * succeeds and changes nothing. */
        if (!t && !reused_token(ctx, tok))
            rc = unknown_token(ctx, tok, &why);
    }
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

/*
 * The common case of a check without a path, in full: the token found,
 * not revoked, without expiry, without a use limit on it or an ancestor
 * (so there is no use to count), holding the rights. False sends the
 * check through verify, which decides and says why. Owner thread.
 */
static bool
plain_pass(const capffi_ctx *ctx, const capffi_token *tok, uint32_t rights)
{
    const struct capffi__tok *t = lookup(capffi__tok_of(ctx), tok);
    if (!t || (rights & ~(uint32_t)t->rights) || t->expires_ns ||
        atomic_load_explicit(&t->revoked, memory_order_acquire))
        return false;
    for (const struct capffi__tok *a = t; a; a = a->parent)
        if (a->uses_left != UINT64_MAX)
            return false;
    return true;
}

/* capffi_token_check past its common case: entry checks, verify, and a
 * path's resolution, in a frame of their own. */
static __attribute__((noinline)) int
check_full(capffi_ctx *ctx, const capffi_token *tok, uint32_t rights,
           const char *path)
{
    int rc = capffi__entry(ctx, CAPFFI_OP_TOKEN_CHECK, "capffi_token_check");
    if (rc)
        return rc;
    if (!path)
        return capffi__token_use(ctx, tok, rights, NULL, CAPFFI_OP_TOKEN_CHECK,
                                 NULL, NULL);
    /* The token first: a forged token learns nothing about the path, and
     * the path is not even looked up for it (its refusal names it as
     * given). */
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
                           &who, rights, path, "%s", capffi_ctx_errmsg(ctx));
        return rc;
    }
    rc = capffi__token_use(ctx, tok, rights, &f, CAPFFI_OP_TOKEN_CHECK, NULL,
                           NULL);
    capffi__file_release(&f);
    return rc;
}

int
capffi_token_check(capffi_ctx *ctx, const capffi_token *tok, uint32_t rights,
                   const char *path)
{
    /* On the owner thread, with nobody listening, a pass builds no event
     * and is answered here; everything else, every refusal and every
     * audited check, takes check_full and verify. */
    if (CAPFFI__LIKELY(ctx && !path && tok && capffi__ctx_on_owner(ctx) &&
                       !capffi__audit_on(ctx) && plain_pass(ctx, tok, rights)))
        return CAPFFI_OK;
    return check_full(ctx, tok, rights, path);
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
    const struct capffi__tok *t = lookup(capffi__tok_of(ctx), tok);
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
        out->all_paths = t->sc->g.all;
        out->n_paths = t->sc->g.allow ? t->sc->g.allow->n : 0;
        out->revoked = atomic_load(&t->revoked);
    }
    pthread_mutex_unlock(&capffi__tok_of(ctx)->tok_lock);
    if (!t && reused_token(ctx, tok)) {
        /* Minted here, revoked, its slot reused: nothing else is known. */
        out->revoked = 1;
        return CAPFFI_OK;
    }
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
