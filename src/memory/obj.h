/*
 * obj.h - instances of classes (obj.c), made by the host, by calls
 * (call/fn.c: results and out-parameters) and by callbacks (their
 * `*NAME` arguments).
 */
#ifndef CAPFFI_SRC_MEMORY_OBJ_H
#define CAPFFI_SRC_MEMORY_OBJ_H

#include <stdatomic.h>

#include "capffi/obj.h"
#include "memory/view.h"
#include "types/sig.h"

/* Who owns an instance's memory. */
enum capffi__obj_kind {
    CAPFFI__OBJ_HOST,     /* capffi_obj_new: capffi's, freed with it */
    CAPFFI__OBJ_BORROWED, /* native code's; valid while its source lives */
    CAPFFI__OBJ_OWNED,    /* native code's, released by its destructor */
    CAPFFI__OBJ_ARG       /* a callback's argument: the invocation's */
};

/*
 * An instance's life, as a buffer's (buf.h):
 *
 *   live --capffi_obj_free--> freeing --last hold ends--> burying --> dead
 *                                                            \--> kept
 *
 * Holds are the calls and nonblocking calls that pass it, the instances
 * whose `*NAME` fields point to it (pins) and the instances read from its
 * `*NAME` fields (they keep their parent). Exactly one party buries: the
 * one whose compare-and-swap moves freeing to burying. Dead structs wait
 * in the context's recycler so that a second free is recognised until
 * they are reused (base/recycle.h). An
 * owned instance's destructor runs when it is buried (owner thread),
 * unless its library was closed first (the destructor ran at the close)
 * or its source is no longer live: then it is kept, and the destructor
 * runs when the context is freed, while the library is still mapped.
 */
struct capffi_obj {
    _Atomic uint32_t magic; /* OBJ_LIVE ... OBJ_DEAD */
    uint8_t kind;           /* enum capffi__obj_kind */
    bool array;             /* count elements of cls, indexed first */
    bool raw_ok;            /* pointer fields may be read and written */
    bool tok_state;         /* *state is a token's revoked flag */
    atomic_bool released;   /* owned: the destructor ran */
    atomic_bool lent;       /* held by a nonblocking call */
    atomic_uint calls;      /* holds: calls, pins, children (any thread) */
    const struct capffi__type *cls; /* the element class of an array */
    size_t count;
    size_t bytes; /* cls->size * count: what accesses stay inside */
    void *addr;
    capffi_obj *parent;       /* read from its *NAME field: held */
    struct capffi__pin *pins; /* instances its *NAME fields hold */
    size_t npins, cap_pins;
    /* A token's revoked flag (tok_state), which lives as long as the
     * context, or the state word of a library's source (src, held until
     * the instance is buried); NULL for none. */
    const atomic_int *state;
    struct capffi__source *src;
    capffi_ctx *ctx;
    void *dtor; /* owned: the destructor's code */
    struct capffi__link link;
    struct capffi_obj *bury_next; /* the context's to-bury stack */
};

/* A *NAME field of an instance that holds another instance. */
struct capffi__pin {
    size_t offset;
    capffi_obj *obj;
};

#define CAPFFI__OBJ_LIVE 0x6f626a6cu    /* "objl" */
#define CAPFFI__OBJ_FREEING 0x6f626a66u /* "objf" */
#define CAPFFI__OBJ_BURYING 0x6f626a62u /* "objb" */
#define CAPFFI__OBJ_KEPT 0x6f626a6bu    /* "objk" */
#define CAPFFI__OBJ_DEAD 0x6f626a64u    /* "objd" */

/*
 * A new instance of native memory at addr: borrowed (dtor NULL) or owned
 * (its destructor dtor). The source's state word (state; tok_state: a
 * token's revoked flag, else a library's, whose source the instance holds
 * until it is buried) says when it dies. raw_ok as for the token it
 * was made through. On CAPFFI_ENOMEM an owned address is released at
 * once (its destructor runs), so nothing leaks. Owner thread.
 */
CAPFFI__HIDDEN int capffi__obj_wrap(capffi_obj **out, capffi_ctx *ctx,
                                    const struct capffi__type *cls,
                                    size_t count, bool array, void *addr,
                                    const atomic_int *state, bool tok_state,
                                    bool raw_ok, void *dtor);

/* A callback's argument, in storage the invocation owns (its frame). */
CAPFFI__HIDDEN void capffi__obj_arg(capffi_obj *o, capffi_ctx *ctx,
                                    const struct capffi__type *cls,
                                    size_t count, bool array, void *addr,
                                    bool raw_ok);

/*
 * The address a `*NAME` argument (type t, argument argno counted from 1)
 * passes, with the instance held for the call: NULL for NULL when t is
 * nullable; need is the element count the call requires (a `*[$k]T`'s
 * argument k). CAPFFI_EINVAL (NULL, freed), CAPFFI_ETYPE (another
 * class), CAPFFI_EBOUNDS (too few elements), CAPFFI_ECLOSED,
 * CAPFFI_EREVOKED, CAPFFI_EBUSY (lent): nothing is held then. Any
 * thread. Each success is matched by capffi__obj_call_end.
 */
CAPFFI__HIDDEN int capffi__obj_call_begin(capffi_ctx *ctx, capffi_obj *o,
                                          const struct capffi__type *t,
                                          uint64_t need, size_t argno,
                                          void **addr);
CAPFFI__HIDDEN void capffi__obj_call_end(capffi_obj *o);

/* Lend a held instance to a nonblocking call (owner thread): its fields
 * report CAPFFI_EBUSY until capffi__obj_unlend. */
CAPFFI__HIDDEN void capffi__obj_lend(capffi_obj *o);
CAPFFI__HIDDEN void capffi__obj_unlend(capffi_obj *o);

/* Run the destructors of the live owned instances whose source is state
 * (a library being closed), newest first. Owner thread. */
CAPFFI__HIDDEN void capffi__obj_release_source(capffi_ctx *ctx,
                                               const atomic_int *state);

/* Bury instances whose last hold ended off the owner thread. */
CAPFFI__HIDDEN void capffi__obj_reap(capffi_ctx *ctx);

/* Release every instance (capffi_ctx_free), reporting leaks. */
CAPFFI__HIDDEN void capffi__obj_free_all(capffi_ctx *ctx);

/* Whether instances made through t (NULL: the context) may read and
 * write raw pointer fields: outside safe mode, with the pointer right
 * (H3). */
CAPFFI__HIDDEN bool capffi__raw_ok(const capffi_ctx *ctx,
                                   const struct capffi__tok *t);

/* The context as far as instances (perm/audit.h). */
struct capffi__ctx_obj {
    struct capffi__ctx_view up;
    struct capffi__list objs;    /* every instance not dead, newest first */
    size_t owned;                /* owned instances among them, unreleased */
    struct capffi__recycle dead; /* dead structs, to recognise */
    struct capffi_obj *_Atomic to_bury;
};

static inline struct capffi__ctx_obj *
capffi__objs_of(const capffi_ctx *ctx)
{
    return (struct capffi__ctx_obj *)(uintptr_t)ctx;
}

#endif
