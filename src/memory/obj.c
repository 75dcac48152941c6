/*
 * obj.c - SafeFFI instances: memory reached by class and field path,
 * never as a raw address (capffi/obj.h).
 *
 * Every access resolves its path against the class (types/type.c), so it
 * is bounds- and type-checked, then loads the instance's state: a
 * borrowed instance whose library was closed or whose token was revoked
 * is refused before its memory is touched. An accessor does the path
 * work once; its reads and writes are a class compare, two loads and the
 * value's own load or store.
 *
 * Threats answered here: forged pointers (an instance's address is never
 * given to the host, and a `*NAME` argument takes only an instance of
 * NAME); use after close or revoke of native memory; double release of
 * an owned native object (its destructor runs once; a second free is
 * recognised while its struct waits for reuse, and refused).
 */
#include "memory/obj.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "perm/token.h"
#include "types/value.h"

/* ---- modes and states ------------------------------------------------- */

bool
capffi__raw_ok(const capffi_ctx *ctx, const struct capffi__tok *t)
{
    if (capffi__safe(ctx, t))
        return false;
    uint32_t rights =
        t ? t->rights : capffi__perm_rights(&capffi__perm_of(ctx)->perm);
    return (rights & CAPFFI_RIGHT_POINTER) != 0;
}

/* Whether magic is that of an instance freed (and not yet forgotten). */
static bool
freed_magic(uint32_t magic)
{
    return magic == CAPFFI__OBJ_FREEING || magic == CAPFFI__OBJ_BURYING ||
           magic == CAPFFI__OBJ_KEPT || magic == CAPFFI__OBJ_DEAD;
}

/* The error for an instance that cannot be used now, with its message;
 * 0 when it can. ctx may be NULL (o unknown). Any thread. */
static int
unusable(const capffi_obj *o, const char *what)
{
    if (!o)
        return capffi__fail(NULL, CAPFFI_EINVAL, "%s: the instance is NULL",
                            what);
    uint32_t magic = atomic_load_explicit(&o->magic, memory_order_acquire);
    if (magic != CAPFFI__OBJ_LIVE)
        return capffi__fail(
            freed_magic(magic) ? o->ctx : NULL, CAPFFI_EINVAL, "%s: %s", what,
            freed_magic(magic) ? "the instance was freed" : "not a capffi_obj");
    if (atomic_load_explicit(&o->released, memory_order_acquire))
        return capffi__fail(o->ctx, CAPFFI_ECLOSED,
                            "%s: the owned instance was released (its "
                            "library was closed)",
                            what);
    int s = o->state ? atomic_load_explicit(o->state, memory_order_acquire)
                     : CAPFFI__LIVE;
    if (s != CAPFFI__LIVE) {
        bool revoked = o->tok_state || s == CAPFFI__REVOKED;
        return capffi__fail(o->ctx, revoked ? CAPFFI_EREVOKED : CAPFFI_ECLOSED,
                            "%s: the instance's %s", what,
                            revoked ? "token was revoked"
                                    : "library was closed");
    }
    if (atomic_load_explicit(&o->lent, memory_order_acquire))
        return capffi__fail(o->ctx, CAPFFI_EBUSY,
                            "%s: the instance is lent to a nonblocking call",
                            what);
    return CAPFFI_OK;
}

/* ---- the destructor call ---------------------------------------------- */

static ffi_cif dtor_cif;
static ffi_type *dtor_args[1] = { &ffi_type_pointer };
static pthread_once_t dtor_once = PTHREAD_ONCE_INIT;

static void
dtor_prep(void)
{
    /* (pointer) -> void: a destructor's int result, if any, is ignored */
    ffi_prep_cif(&dtor_cif, FFI_DEFAULT_ABI, 1, &ffi_type_void, dtor_args);
}

/* Run an owned instance's destructor, once (owner thread). */
static void
release(capffi_obj *o)
{
    if (o->kind != CAPFFI__OBJ_OWNED || atomic_load(&o->released))
        return;
    atomic_store(&o->released, true);
    capffi__objs_of(o->ctx)->owned--;
    pthread_once(&dtor_once, dtor_prep);
    void *av[1] = { &o->addr };
    ffi_arg rv;
    ffi_call(&dtor_cif, FFI_FN(o->dtor), &rv, av);
}

/* ---- making and burying ------------------------------------------------ */

/* Drop one hold of o (a call's, a pin's, a child's). A freed instance
 * whose last hold this was is buried on the owner thread, or queued for
 * it (capffi__obj_reap). Any thread. */
static void drop(capffi_obj *o);

/*
 * A freed instance nothing holds any more (claimed: burying): its
 * destructor runs, its pins and parent are let go, its bytes are freed,
 * and the struct waits for reuse, dead. An owned instance whose source
 * is no longer live keeps its native object until the context is freed:
 * it stays in the list, kept. Owner thread; instances it lets go are
 * queued, not buried here, so a long chain is no deep recursion.
 */
static void
bury(capffi_obj *o)
{
    capffi_ctx *ctx = o->ctx;
    if (o->kind == CAPFFI__OBJ_OWNED && !atomic_load(&o->released)) {
        int s = o->state ? atomic_load(o->state) : CAPFFI__LIVE;
        if (s != CAPFFI__LIVE) {
            atomic_store(&o->magic, CAPFFI__OBJ_KEPT);
            return;
        }
        release(o);
    }
    for (size_t i = 0; i < o->npins; i++)
        drop(o->pins[i].obj);
    capffi__free(o->pins);
    o->pins = NULL;
    o->npins = o->cap_pins = 0;
    if (o->parent)
        drop(o->parent);
    o->parent = NULL;
    capffi__list_remove(&capffi__objs_of(ctx)->objs, &o->link);
    if (o->kind == CAPFFI__OBJ_HOST)
        capffi__free(o->addr);
    o->addr = NULL;
    atomic_store(&o->magic, CAPFFI__OBJ_DEAD);
    /* Its library may be unloaded now: a dead instance reads no state. */
    struct capffi__source *src = o->src;
    o->src = NULL;
    o->state = NULL;
    capffi__recycle_put(&capffi__objs_of(ctx)->dead, o);
    capffi__source_drop(src);
}

/* Claim a freed instance nothing holds for burial: true for one caller,
 * however many threads let go of it at once. */
static bool
claim(capffi_obj *o)
{
    if (atomic_load(&o->magic) != CAPFFI__OBJ_FREEING ||
        atomic_load(&o->calls) != 0 || atomic_load(&o->lent))
        return false;
    uint32_t freeing = CAPFFI__OBJ_FREEING;
    return atomic_compare_exchange_strong(&o->magic, &freeing,
                                          CAPFFI__OBJ_BURYING);
}

/* Queue a claimed instance for burial on the owner thread. */
static void
queue(capffi_obj *o)
{
    struct capffi__ctx_obj *c = capffi__objs_of(o->ctx);
    capffi_obj *top = atomic_load(&c->to_bury);
    do
        o->bury_next = top;
    while (!atomic_compare_exchange_weak(&c->to_bury, &top, o));
}

static void
drop(capffi_obj *o)
{
    if (atomic_fetch_sub(&o->calls, 1) == 1 && claim(o))
        queue(o);
}

void
capffi__obj_reap(capffi_ctx *ctx)
{
    struct capffi__ctx_obj *c = capffi__objs_of(ctx);
    while (atomic_load_explicit(&c->to_bury, memory_order_relaxed)) {
        capffi_obj *o = atomic_exchange(&c->to_bury, NULL);
        while (o) {
            capffi_obj *next = o->bury_next;
            bury(o);
            o = next;
        }
    }
}

/*
 * Set every member an instance's uses read: live, unheld, of kind, with
 * no source, parent, pins or destructor. Member by member: a callback
 * argument is set up on every invocation, and that is cheaper than
 * clearing the struct (its list link and bury_next are never used).
 */
static void
init(capffi_obj *o, capffi_ctx *ctx, uint8_t kind,
     const struct capffi__type *cls, size_t count, bool array, void *addr)
{
    atomic_init(&o->magic, CAPFFI__OBJ_LIVE);
    atomic_init(&o->lent, false);
    atomic_init(&o->released, false);
    atomic_init(&o->calls, 0);
    o->kind = kind;
    o->array = array;
    o->raw_ok = false;
    o->tok_state = false;
    o->cls = cls;
    o->count = count;
    o->bytes = cls->size * count;
    o->addr = addr;
    o->parent = NULL;
    o->pins = NULL;
    o->npins = o->cap_pins = 0;
    o->state = NULL;
    o->src = NULL;
    o->ctx = ctx;
    o->dtor = NULL;
}

static capffi_obj *
make(capffi_ctx *ctx, uint8_t kind, const struct capffi__type *cls,
     size_t count, bool array, void *addr)
{
    capffi_obj *o = capffi__recycle_take(&capffi__objs_of(ctx)->dead);
    if (!o && !(o = capffi__malloc(sizeof *o)))
        return NULL;
    init(o, ctx, kind, cls, count, array, addr);
    capffi__list_add(&capffi__objs_of(ctx)->objs, &o->link);
    return o;
}

int
capffi__obj_wrap(capffi_obj **out, capffi_ctx *ctx,
                 const struct capffi__type *cls, size_t count, bool array,
                 void *addr, const atomic_int *state, bool tok_state, bool raw,
                 void *dtor)
{
    capffi__obj_reap(ctx);
    capffi_obj *o = make(ctx, dtor ? CAPFFI__OBJ_OWNED : CAPFFI__OBJ_BORROWED,
                         cls, count, array, addr);
    if (!o) {
        if (dtor) { /* released at once: nothing leaks */
            capffi_obj tmp = { .kind = CAPFFI__OBJ_OWNED,
                               .addr = addr,
                               .dtor = dtor,
                               .ctx = ctx };
            atomic_init(&tmp.released, false);
            capffi__objs_of(ctx)->owned++;
            release(&tmp);
        }
        *out = NULL;
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    }
    o->state = state;
    o->tok_state = tok_state;
    if (state && !tok_state) {
        o->src =
            (struct capffi__source *)(uintptr_t)((const char *)state -
                                                 offsetof(struct capffi__source,
                                                          state));
        capffi__source_hold(o->src);
    }
    o->raw_ok = raw;
    o->dtor = dtor;
    if (dtor)
        capffi__objs_of(ctx)->owned++;
    *out = o;
    return CAPFFI_OK;
}

void
capffi__obj_arg(capffi_obj *o, capffi_ctx *ctx, const struct capffi__type *cls,
                size_t count, bool array, void *addr, bool raw)
{
    init(o, ctx, CAPFFI__OBJ_ARG, cls, count, array, addr);
    o->raw_ok = raw;
}

/* The class of a type expression or name: a named class or a scalar
 * (they live as long as the context), or an array of one: its element
 * class, with its count. */
static int
resolve_class(capffi_ctx *ctx, const struct capffi__tok *scope, const char *cls,
              const struct capffi__type **out, size_t *count, bool *array)
{
    struct capffi__arena scratch = { NULL };
    const struct capffi__type *t;
    int rc = capffi__type_parse_in(ctx, scope, &scratch, "type", cls, &t);
    if (rc) {
        capffi__arena_free(&scratch);
        return rc == CAPFFI_ESIG &&
                       strstr(capffi_ctx_errmsg(ctx), "unknown type name")
                   ? capffi__fail(ctx, CAPFFI_ENOTFOUND, "no class '%s'", cls)
                   : rc;
    }
    *array = t->kind == CAPFFI__ARRAY;
    *count = *array ? t->count : 1;
    const struct capffi__type *e = *array ? t->elem : t;
    /* Scalars and named classes live as long as the context; anything
     * else would have to be kept for the instance's sake. */
    bool lasting =
        e->kind < CAPFFI__STRUCT
            ? e == capffi__type_scalar(e->kind)
            : e->name && e == capffi__type_lookup(ctx, scope, e->name,
                                                  strlen(e->name));
    capffi__arena_free(&scratch);
    if (!lasting)
        return capffi__fail(ctx, CAPFFI_ETYPE,
                            "'%s': an instance is of a named class, a "
                            "scalar, or an array of one ([N]NAME); define "
                            "the struct first (capffi_type_define)",
                            cls);
    if (e->kind == CAPFFI__OPAQUE)
        return capffi__fail(ctx, CAPFFI_ETYPE,
                            "'%s' is opaque: its instances come from native "
                            "code",
                            cls);
    if (e->kind == CAPFFI__VOID || e->kind == CAPFFI__BUFFER ||
        e->kind == CAPFFI__TPTR || e->kind == CAPFFI__OUTVAL)
        return capffi__fail(ctx, CAPFFI_ETYPE, "'%s' cannot be instantiated",
                            cls);
    *out = e;
    return CAPFFI_OK;
}

static int
obj_new(capffi_obj **out, capffi_ctx *ctx, const struct capffi__tok *t,
        const char *cls)
{
    const struct capffi__type *e = NULL;
    size_t count = 0;
    bool array = false;
    int rc = resolve_class(ctx, t, cls, &e, &count, &array);
    if (rc)
        return rc;
    capffi__obj_reap(ctx);
    void *bytes = capffi__calloc(1, e->size * count != 0 ? e->size * count : 1);
    capffi_obj *o =
        bytes ? make(ctx, CAPFFI__OBJ_HOST, e, count, array, bytes) : NULL;
    if (!o) {
        capffi__free(bytes);
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    }
    o->raw_ok = capffi__raw_ok(ctx, t);
    *out = o;
    return CAPFFI_OK;
}

int
capffi_obj_new(capffi_obj **out, capffi_ctx *ctx, const char *cls)
{
    if (out)
        *out = NULL;
    int rc = capffi__ctx_owner_check(ctx, "capffi_obj_new");
    if (rc)
        return rc;
    if (!out || !cls)
        return capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL",
                            out ? "cls" : "out");
    return obj_new(out, ctx, NULL, cls);
}

int
capffi_obj_new_tok(capffi_obj **out, capffi_ctx *ctx, const capffi_token *tok,
                   const char *cls)
{
    if (out)
        *out = NULL;
    int rc = capffi__ctx_owner_check(ctx, "capffi_obj_new_tok");
    if (rc)
        return rc;
    if (!out || !cls)
        return capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL",
                            out ? "cls" : "out");
    struct capffi__tok *t = NULL;
    rc = capffi__token_peek(ctx, tok, 0, CAPFFI_OP_TYPE_DEFINE, cls, &t);
    if (rc)
        return rc;
    return obj_new(out, ctx, t, cls);
}

/* ---- fields ------------------------------------------------------------ */

/* The place of path in o, which is usable. */
static int
place(const capffi_obj *o, const char *path, struct capffi__place *pl)
{
    if (!path)
        return capffi__fail(o->ctx, CAPFFI_EINVAL, "path is NULL");
    if (o->cls->kind == CAPFFI__OPAQUE)
        return capffi__fail(o->ctx, CAPFFI_ETYPE,
                            "path '%s': %s is opaque: it has no field the "
                            "host reads",
                            path, capffi__type_class(o->cls));
    int rc = capffi__type_place(o->ctx, o->cls, o->count, o->array, path, pl);
    if (!rc && !pl->type)
        return capffi__fail(o->ctx, CAPFFI_ETYPE,
                            "path '': an array instance is not a value; "
                            "index it ('[0]')");
    return rc;
}

static int
not_a_value(const capffi_obj *o, const char *path, const struct capffi__type *t)
{
    return capffi__fail(o->ctx, CAPFFI_ETYPE,
                        "'%s' of %s is %s: name a field or element inside it",
                        path, capffi__type_class(o->cls),
                        t->kind == CAPFFI__ARRAY    ? "an array"
                        : t->kind == CAPFFI__OPAQUE ? "opaque"
                                                    : "a struct");
}

static int
raw_refused(const capffi_obj *o, const char *path)
{
    return capffi__fail(o->ctx, CAPFFI_EPERM,
                        "'%s' is a raw pointer: reading or writing it needs "
                        "the pointer right outside safe mode (declare the "
                        "field as *NAME)",
                        path);
}

/*
 * The start of every query of a field (fn names it): out (size bytes)
 * cleared, o usable, out given, then the place of path in o.
 */
static int
lookup(void *out, size_t size, const capffi_obj *o, const char *path,
       const char *fn, struct capffi__place *pl)
{
    if (out)
        memset(out, 0, size);
    int rc = unusable(o, fn);
    if (rc)
        return rc;
    if (!out)
        return capffi__fail(o->ctx, CAPFFI_EINVAL, "%s: out is NULL", fn);
    return place(o, path, pl);
}

int
capffi_obj_get(capffi_value *out, const capffi_obj *o, const char *path)
{
    struct capffi__place pl;
    int rc = lookup(out, sizeof *out, o, path, "capffi_obj_get", &pl);
    if (rc)
        return rc;
    const struct capffi__type *t = pl.type;
    const unsigned char *p = (const unsigned char *)o->addr + pl.offset;
    switch (t->kind) {
    case CAPFFI__STRUCT:
    case CAPFFI__ARRAY:
    case CAPFFI__OPAQUE:
        return not_a_value(o, path, t);
    case CAPFFI__POINTER:
    case CAPFFI__FUNCTION:
        if (!o->raw_ok)
            return raw_refused(o, path);
        break;
    case CAPFFI__TPTR: {
        void *addr;
        memcpy(&addr, p, sizeof addr);
        if (!addr)
            return CAPFFI_OK;
        if (o->kind == CAPFFI__OBJ_ARG)
            return capffi__fail(o->ctx, CAPFFI_ETYPE,
                                "'%s': a callback argument's pointer fields "
                                "are not followed (declare what the callback "
                                "needs in its signature)",
                                path);
        if (!capffi__ctx_on_owner(o->ctx))
            return capffi__fail(o->ctx, CAPFFI_ETHREAD,
                                "'%s': a *NAME field is read on the owner "
                                "thread",
                                path);
        size_t n = t->count ? t->count : 1;
        rc = capffi__obj_wrap(&out->obj, o->ctx, t->elem, n, t->count != 0,
                              addr, o->state, o->tok_state, o->raw_ok, NULL);
        if (!rc) { /* it lives no longer than o: it holds o */
            atomic_fetch_add(&((capffi_obj *)(uintptr_t)o)->calls, 1);
            out->obj->parent = (capffi_obj *)(uintptr_t)o;
        }
        return rc;
    }
    default:
        break;
    }
    capffi__value_load(out, capffi__vop(t->kind), p);
    return CAPFFI_OK;
}

/*
 * Make the *NAME field at offset off of o hold target (NULL: nothing):
 * an instance whose memory capffi frees (the host's, an owned one) stays
 * alive while a field points to it, so reading the field later never
 * finds freed memory. A borrowed target's life is its source's. The
 * hold on what the field held before is dropped. Owner thread.
 */
static int
pin(capffi_obj *o, size_t off, capffi_obj *target)
{
    bool hold = target && (target->kind == CAPFFI__OBJ_HOST ||
                           target->kind == CAPFFI__OBJ_OWNED);
    size_t i = 0;
    while (i < o->npins && o->pins[i].offset != off)
        i++;
    if (hold && i == o->npins) {
        if (o->npins == o->cap_pins) {
            size_t cap = o->cap_pins ? 2 * o->cap_pins : 4;
            struct capffi__pin *np = capffi__realloc(o->pins, cap * sizeof *np);
            if (!np)
                return capffi__fail(o->ctx, CAPFFI_ENOMEM, "out of memory");
            o->pins = np;
            o->cap_pins = cap;
        }
        o->pins[o->npins].offset = off;
        o->pins[o->npins++].obj = NULL;
    }
    capffi_obj *old = i < o->npins ? o->pins[i].obj : NULL;
    if (hold) {
        atomic_fetch_add(&target->calls, 1);
        o->pins[i].obj = target;
    } else if (i < o->npins) {
        o->pins[i] = o->pins[--o->npins];
    }
    if (old) {
        drop(old);
        capffi__obj_reap(o->ctx);
    }
    return CAPFFI_OK;
}

/* Store v at p as type t (a scalar, pointer or *NAME field of o). */
static int
store(capffi_obj *o, const char *path, const struct capffi__type *t, void *p,
      capffi_value v)
{
    switch (t->kind) {
    case CAPFFI__STRUCT:
    case CAPFFI__ARRAY:
    case CAPFFI__OPAQUE:
        return not_a_value(o, path, t);
    case CAPFFI__CSTRING:
        return capffi__fail(o->ctx, CAPFFI_ETYPE,
                            "'%s' is a cstring: the host does not write "
                            "one (its memory would have no owner)",
                            path);
    case CAPFFI__POINTER:
    case CAPFFI__FUNCTION:
        if (!o->raw_ok)
            return raw_refused(o, path);
        break;
    case CAPFFI__TPTR: {
        void *addr = NULL;
        if (!capffi__ctx_on_owner(o->ctx))
            return capffi__fail(o->ctx, CAPFFI_ETHREAD,
                                "'%s': a *NAME field is written on the owner "
                                "thread",
                                path);
        if (v.obj) {
            int rc = unusable(v.obj, "capffi_obj_set");
            if (rc)
                return rc;
            if (v.obj->ctx != o->ctx)
                return capffi__fail(o->ctx, CAPFFI_EINVAL,
                                    "'%s': an instance of another context",
                                    path);
            size_t have = v.obj->array ? v.obj->count : 1;
            if (v.obj->cls != t->elem || have < (t->count ? t->count : 1))
                return capffi__fail(o->ctx, CAPFFI_ETYPE,
                                    "'%s' takes %s%s, not %s", path,
                                    t->count ? "an array of "
                                             : "an instance "
                                               "of ",
                                    capffi__type_class(t->elem),
                                    capffi__type_class(v.obj->cls));
            if (v.obj->kind == CAPFFI__OBJ_ARG)
                return capffi__fail(o->ctx, CAPFFI_ETYPE,
                                    "'%s': a callback argument is not kept "
                                    "past its callback",
                                    path);
            addr = v.obj->addr;
        }
        size_t off = (size_t)((unsigned char *)p - (unsigned char *)o->addr);
        int rc = pin(o, off, v.obj);
        if (!rc)
            memcpy(p, &addr, sizeof addr);
        return rc;
    }
    default:
        break;
    }
    uint8_t op = capffi__vop(t->kind);
    if (capffi__vop_small(op)) {
        uint64_t off, span;
        capffi__vop_range(op, &off, &span);
        if (v.u64 + off > span)
            return capffi__fail(o->ctx, CAPFFI_ERANGE,
                                "'%s' (%s): the value does not fit", path,
                                t->name);
    }
    capffi__value_store(p, op, &v);
    return CAPFFI_OK;
}

int
capffi_obj_set(capffi_obj *o, const char *path, capffi_value v)
{
    int rc = unusable(o, "capffi_obj_set");
    if (rc)
        return rc;
    struct capffi__place pl;
    if ((rc = place(o, path, &pl)))
        return rc;
    if (pl.readonly)
        return capffi__fail(o->ctx, CAPFFI_EPERM,
                            "'%s' of %s is readonly for the host", path,
                            capffi__type_class(o->cls));
    return store(o, path, pl.type, (unsigned char *)o->addr + pl.offset, v);
}

const char *
capffi_obj_class(const capffi_obj *o)
{
    if (!o || atomic_load(&o->magic) != CAPFFI__OBJ_LIVE)
        return "";
    return capffi__type_class(o->cls);
}

int
capffi_obj_len(size_t *n, const capffi_obj *o, const char *path)
{
    if (n)
        *n = 0;
    int rc = unusable(o, "capffi_obj_len");
    if (rc)
        return rc;
    if (!n || !path)
        return capffi__fail(o->ctx, CAPFFI_EINVAL, "an argument is NULL");
    if (o->array && !*path) {
        *n = o->count;
        return CAPFFI_OK;
    }
    struct capffi__place pl;
    if ((rc = place(o, path, &pl)))
        return rc;
    if (pl.type->kind != CAPFFI__ARRAY)
        return capffi__fail(o->ctx, CAPFFI_ETYPE, "'%s' is not an array", path);
    *n = pl.type->count;
    return CAPFFI_OK;
}

int
capffi_obj_field(capffi_field *out, const capffi_obj *o, const char *path)
{
    if (o && out && path && !*path && o->array &&
        atomic_load(&o->magic) == CAPFFI__OBJ_LIVE) {
        memset(out, 0, sizeof *out);
        out->size = o->bytes;
        out->type = "array";
        return CAPFFI_OK;
    }
    struct capffi__place pl;
    int rc = lookup(out, sizeof *out, o, path, "capffi_obj_field", &pl);
    if (rc)
        return rc;
    const struct capffi__type *t = pl.type;
    out->offset = pl.offset;
    out->size = t->size;
    switch (t->kind) {
    case CAPFFI__TPTR:
        out->type = "object";
        break;
    case CAPFFI__STRUCT:
        out->type = "struct";
        break;
    case CAPFFI__ARRAY:
        out->type = "array";
        break;
    default: /* scalars, cstring, pointer, function: their keyword */
        out->type = capffi__type_scalar(t->kind)->name;
        break;
    }
    return CAPFFI_OK;
}

int
capffi_obj_status(const capffi_obj *o)
{
    return unusable(o, "capffi_obj_status");
}

/* ---- accessors --------------------------------------------------------- */

enum { ACC_READONLY = 0x1, ACC_ARRAY = 0x2, ACC_RAW = 0x4 };

int
capffi_obj_accessor(capffi_accessor *out, const capffi_obj *o, const char *path)
{
    struct capffi__place pl;
    int rc = lookup(out, sizeof *out, o, path, "capffi_obj_accessor", &pl);
    if (rc)
        return rc;
    const struct capffi__type *t = pl.type;
    if (t->kind == CAPFFI__STRUCT || t->kind == CAPFFI__ARRAY ||
        t->kind == CAPFFI__OPAQUE)
        return not_a_value(o, path, t);
    if (t->kind == CAPFFI__TPTR || t->kind == CAPFFI__CSTRING)
        return capffi__fail(o->ctx, CAPFFI_ETYPE,
                            "'%s': accessors read and write numbers (use "
                            "capffi_obj_get for %s fields)",
                            path,
                            t->kind == CAPFFI__TPTR ? "*NAME" : "cstring");
    if ((t->kind == CAPFFI__POINTER || t->kind == CAPFFI__FUNCTION) &&
        !o->raw_ok)
        return raw_refused(o, path);
    out->cls = o->cls;
    out->offset = pl.offset;
    out->type = t;
    out->op = capffi__vop(t->kind);
    out->flags =
        (uint8_t)((pl.readonly ? ACC_READONLY : 0) |
                  (o->array ? ACC_ARRAY : 0) |
                  (t->kind == CAPFFI__POINTER || t->kind == CAPFFI__FUNCTION
                       ? ACC_RAW
                       : 0));
    return CAPFFI_OK;
}

/* Whether a may be used on o: o usable, of a's class, and holding the
 * bytes a names (a copy of an accessor may have been damaged). */
static inline bool
fits(const capffi_obj *o, const capffi_accessor *a)
{
    return o && a &&
           atomic_load_explicit(&o->magic, memory_order_relaxed) ==
               CAPFFI__OBJ_LIVE &&
           o->cls == a->cls && o->array == ((a->flags & ACC_ARRAY) != 0) &&
           a->offset <= o->bytes &&
           o->bytes - a->offset >= capffi__vop_bytes(a->op) &&
           (!o->state || atomic_load_explicit(o->state, memory_order_acquire) ==
                             CAPFFI__LIVE) &&
           !atomic_load_explicit(&o->released, memory_order_relaxed) &&
           !atomic_load_explicit(&o->lent, memory_order_relaxed) &&
           (!(a->flags & ACC_RAW) || o->raw_ok);
}

static __attribute__((noinline, cold)) int
access_refused(const capffi_obj *o, const capffi_accessor *a, const char *fn)
{
    int rc = unusable(o, fn);
    if (rc)
        return rc;
    if (!a)
        return capffi__fail(o->ctx, CAPFFI_EINVAL, "the accessor is NULL");
    if (o->cls != a->cls || o->array != ((a->flags & ACC_ARRAY) != 0))
        return capffi__fail(o->ctx, CAPFFI_ETYPE,
                            "%s: the accessor was made for another class "
                            "than %s",
                            fn, capffi__type_class(o->cls));
    if ((a->flags & ACC_RAW) && !o->raw_ok)
        return raw_refused(o, "the accessor's field");
    return capffi__fail(o->ctx, CAPFFI_EBOUNDS,
                        "%s: the accessor's index is past the end of %zu "
                        "elements",
                        fn, o->count);
}

int
capffi_obj_read(capffi_value *out, const capffi_obj *o,
                const capffi_accessor *a)
{
    if (CAPFFI__UNLIKELY(!fits(o, a) || !out))
        return out ? access_refused(o, a, "capffi_obj_read")
                   : capffi__fail(NULL, CAPFFI_EINVAL, "out is NULL");
    capffi__value_load(out, a->op, (const unsigned char *)o->addr + a->offset);
    return CAPFFI_OK;
}

int
capffi_obj_write(capffi_obj *o, const capffi_accessor *a, capffi_value v)
{
    if (CAPFFI__UNLIKELY(!fits(o, a)))
        return access_refused(o, a, "capffi_obj_write");
    if (CAPFFI__UNLIKELY(a->flags & ACC_READONLY))
        return capffi__fail(o->ctx, CAPFFI_EPERM,
                            "the accessor's field of %s is readonly for the "
                            "host",
                            capffi__type_class(o->cls));
    if (capffi__vop_small(a->op)) {
        uint64_t off, span;
        capffi__vop_range(a->op, &off, &span);
        if (CAPFFI__UNLIKELY(v.u64 + off > span))
            return capffi__fail(o->ctx, CAPFFI_ERANGE,
                                "the value does not fit the accessor's %s",
                                ((const struct capffi__type *)a->type)->name);
    }
    capffi__value_store((unsigned char *)o->addr + a->offset, a->op, &v);
    return CAPFFI_OK;
}

/* ---- calls ------------------------------------------------------------- */

int
capffi__obj_call_begin(capffi_ctx *ctx, capffi_obj *o,
                       const struct capffi__type *t, uint64_t need,
                       size_t argno, void **addr)
{
    *addr = NULL;
    if (!o) {
        if (t->pflags & CAPFFI__P_NULL)
            return CAPFFI_OK;
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "argument %zu (*%s): NULL for a pointer that is "
                            "not nullable (declare ?*%s)",
                            argno, capffi__type_class(t->elem),
                            capffi__type_class(t->elem));
    }
    int rc = unusable(o, "a *NAME argument");
    if (rc)
        return rc;
    if (o->ctx != ctx)
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "argument %zu: an instance of another context",
                            argno);
    if (o->cls != t->elem)
        return capffi__fail(ctx, CAPFFI_ETYPE,
                            "argument %zu: *%s takes an instance of %s, not "
                            "of %s",
                            argno, capffi__type_class(t->elem),
                            capffi__type_class(t->elem),
                            capffi__type_class(o->cls));
    size_t have = o->array ? o->count : 1;
    if (have < need)
        return capffi__fail(ctx, CAPFFI_EBOUNDS,
                            "argument %zu: %" PRIu64 " elements of %s "
                            "needed, the instance has %zu",
                            argno, need, capffi__type_class(t->elem), have);
    atomic_fetch_add(&o->calls, 1);
    if (atomic_load(&o->magic) != CAPFFI__OBJ_LIVE) {
        capffi__obj_call_end(o);
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "argument %zu: the instance was freed", argno);
    }
    *addr = o->addr;
    return CAPFFI_OK;
}

void
capffi__obj_call_end(capffi_obj *o)
{
    if (!o)
        return;
    drop(o);
    if (capffi__ctx_on_owner(o->ctx))
        capffi__obj_reap(o->ctx);
}

void
capffi__obj_lend(capffi_obj *o)
{
    atomic_store_explicit(&o->lent, true, memory_order_release);
}

void
capffi__obj_unlend(capffi_obj *o)
{
    atomic_store_explicit(&o->lent, false, memory_order_release);
}

/* ---- freeing ----------------------------------------------------------- */

static void
refuse_free(capffi_ctx *ctx, int code, const char *why)
{
    capffi__fail(ctx, code, "capffi_obj_free: %s", why);
    if (ctx)
        capffi__audit_emit(ctx, CAPFFI_OP_OBJ_FREE, code,
                           code == CAPFFI_ETHREAD ? CAPFFI_REASON_THREAD
                                                  : CAPFFI_REASON_INVALID,
                           NULL, 0, "", "capffi_obj_free: %s", why);
}

void
capffi_obj_free(capffi_obj *o)
{
    if (!o)
        return;
    switch (atomic_load(&o->magic)) {
    case CAPFFI__OBJ_LIVE:
        break;
    case CAPFFI__OBJ_FREEING:
    case CAPFFI__OBJ_BURYING:
    case CAPFFI__OBJ_KEPT:
    case CAPFFI__OBJ_DEAD:
        refuse_free(o->ctx, CAPFFI_EINVAL, "the instance was already freed");
        return;
    default:
        refuse_free(NULL, CAPFFI_EINVAL, "not a capffi_obj");
        return;
    }
    if (o->kind == CAPFFI__OBJ_ARG) {
        refuse_free(o->ctx, CAPFFI_EINVAL,
                    "a callback's argument belongs to its invocation");
        return;
    }
    if (!capffi__ctx_on_owner(o->ctx)) {
        refuse_free(o->ctx, CAPFFI_ETHREAD, "called off the owner thread");
        return;
    }
    atomic_store(&o->magic, CAPFFI__OBJ_FREEING); /* then claim reads holds */
    if (claim(o))
        bury(o);
    capffi__obj_reap(o->ctx);
}

void
capffi__obj_release_source(capffi_ctx *ctx, const atomic_int *state)
{
    struct capffi__link *k = capffi__objs_of(ctx)->objs.head;
    for (; k; k = k->next) {
        capffi_obj *o = capffi__container_of(k, capffi_obj, link);
        /* One a call or a nonblocking call still uses is released when
         * the context is freed (the library stays mapped until then). */
        if (o->state == state && !o->tok_state && atomic_load(&o->calls) == 0 &&
            !atomic_load(&o->lent))
            release(o);
    }
}

size_t
capffi_ctx_leaks(const capffi_ctx *ctx)
{
    if (!ctx || !capffi__ctx_on_owner(ctx))
        return 0;
    size_t n = 0;
    for (struct capffi__link *k = capffi__objs_of(ctx)->objs.head; k;
         k = k->next) {
        const capffi_obj *o = capffi__container_of(k, capffi_obj, link);
        n += o->kind == CAPFFI__OBJ_OWNED && !atomic_load(&o->released) &&
             atomic_load(&o->magic) == CAPFFI__OBJ_LIVE;
    }
    return n;
}

/* The leak report: one event per class with its count. */
static void
report_leaks(capffi_ctx *ctx)
{
    enum { MAX = 64 };
    const struct capffi__type *cls[MAX];
    size_t count[MAX], n = 0, other = 0;
    for (struct capffi__link *k = capffi__objs_of(ctx)->objs.head; k;
         k = k->next) {
        const capffi_obj *o = capffi__container_of(k, capffi_obj, link);
        if (o->kind != CAPFFI__OBJ_OWNED || atomic_load(&o->released) ||
            atomic_load(&o->magic) != CAPFFI__OBJ_LIVE)
            continue;
        size_t i = 0;
        while (i < n && cls[i] != o->cls)
            i++;
        if (i == n && n == MAX) {
            other++;
            continue;
        }
        if (i == n) {
            cls[n] = o->cls;
            count[n++] = 0;
        }
        count[i]++;
    }
    for (size_t i = 0; i < n; i++)
        capffi__audit_emit(ctx, CAPFFI_OP_OBJ_LEAK, CAPFFI_OK,
                           CAPFFI_REASON_NONE, NULL, 0,
                           capffi__type_class(cls[i]),
                           "%zu owned instance%s not freed: released when "
                           "the context was freed",
                           count[i], count[i] == 1 ? "" : "s");
    if (other)
        capffi__audit_emit(
            ctx, CAPFFI_OP_OBJ_LEAK, CAPFFI_OK, CAPFFI_REASON_NONE, NULL, 0, "",
            "%zu owned instances of other classes not freed", other);
}

void
capffi__obj_free_all(capffi_ctx *ctx)
{
    struct capffi__ctx_obj *c = capffi__objs_of(ctx);
    atomic_store(&c->to_bury, NULL); /* they are still in the list */
    report_leaks(ctx);
    struct capffi__link *k;
    /* Newest first: the reverse order of creation. */
    while ((k = capffi__list_pop(&c->objs))) {
        capffi_obj *o = capffi__container_of(k, capffi_obj, link);
        release(o);
        if (o->kind == CAPFFI__OBJ_HOST)
            capffi__free(o->addr);
        capffi__free(o->pins);
        capffi__source_drop(o->src);
        capffi__free(o);
    }
    capffi__recycle_fini(&c->dead);
}
