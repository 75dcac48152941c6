/*
 * sig.h - types and signatures: what the text language describes, parsed
 * once (sig.c) and laid out by libffi (type.c).
 */
#ifndef CAPFFI_SRC_SIG_H
#define CAPFFI_SRC_SIG_H

#include <ffi.h>

#include "base/internal.h"
#include "types/names.h"

/* Limits that keep hostile text from exhausting memory or the stack. */
#define CAPFFI__SIG_MAX_LEN 4096 /* bytes of signature or layout text */
#define CAPFFI__SIG_MAX_DEPTH 16 /* struct nesting */
#define CAPFFI__SIG_MAX_FIELDS 256
#define CAPFFI__SIG_MAX_NODES 1024 /* types made while parsing one text */
#define CAPFFI__STRUCT_MAX_SIZE ((size_t)1 << 24) /* 16 MiB by value */

enum capffi__kind {
    CAPFFI__VOID,
    CAPFFI__BOOL,
    CAPFFI__I8,
    CAPFFI__U8,
    CAPFFI__I16,
    CAPFFI__U16,
    CAPFFI__I32,
    CAPFFI__U32,
    CAPFFI__I64,
    CAPFFI__U64,
    CAPFFI__ISIZE,
    CAPFFI__USIZE,
    CAPFFI__F32,
    CAPFFI__F64,
    CAPFFI__POINTER,
    CAPFFI__BUFFER,
    CAPFFI__FUNCTION,
    CAPFFI__CSTRING,
    CAPFFI__STRUCT, /* by value: {...} or a defined name */
    CAPFFI__TPTR,   /* *NAME, *[N]T: a pointer to instances (obj.h) */
    CAPFFI__ARRAY,  /* [N]T: a fixed array, in structs and instances */
    CAPFFI__OPAQUE, /* a class with no readable field: reached by *NAME */
    CAPFFI__OUTVAL  /* out T: the address of a scalar the callee writes */
};

/* Largest fixed array that libffi is told about element by element: a
 * longer one lives in instances only, never by value. */
#define CAPFFI__ARRAY_FFI_MAX 4096
/* Largest element count of a fixed array. */
#define CAPFFI__ARRAY_MAX ((size_t)1 << 24)

/* What a *NAME says beside its class (capffi__type.pflags). */
enum {
    CAPFFI__P_NULL = 0x1, /* ?*NAME: NULL is allowed */
    CAPFFI__P_OUT = 0x2,  /* out: the callee stores an address in a slot */
    CAPFFI__P_OWN = 0x4   /* own ... by SYMBOL: freeing calls SYMBOL */
};

struct capffi__type;

struct capffi__field {
    const char *name; /* NULL for an unnamed field */
    size_t offset;
    const struct capffi__type *type;
    bool readonly; /* the host may read it, not write it */
};

struct capffi__type {
    enum capffi__kind kind;
    size_t size, align;
    ffi_type *ffi;
    const char *name; /* keyword, defined name, or the text of [N]T */
    size_t nfields;
    struct capffi__field *fields;
    ffi_type st; /* the libffi description of a struct or array */
    /* ARRAY: its element type and count. TPTR: the class pointed to, and
     * for *[N]T the count N (0: one instance, or count_arg's value).
     * OUTVAL: the scalar written. */
    const struct capffi__type *elem;
    size_t count;
    int count_arg;  /* TPTR *[$k]T: the parameter k that counts, else -1 */
    uint8_t pflags; /* TPTR: CAPFFI__P_* */
    const char *by; /* TPTR with CAPFFI__P_OWN: the destructor's symbol */
};

struct capffi__sig {
    size_t nargs, nfixed; /* nfixed < nargs only when variadic */
    bool variadic;
    const struct capffi__type **args;
    const struct capffi__type *ret;
    ffi_type **atypes; /* args' libffi types, for ffi_prep_cif */
    struct capffi__arena arena;
};

/* The shared descriptor of a scalar kind (never freed). */
CAPFFI__HIDDEN const struct capffi__type *
capffi__type_scalar(enum capffi__kind k);

/* The kind a built-in type name (s, n bytes) names, or -1. */
CAPFFI__HIDDEN int capffi__type_keyword(const char *s, size_t n);

/*
 * The word that describes a declared type to hosts (capffi_fn_param_type,
 * capffi_cb_param_type): its keyword, "struct" for a struct by value,
 * "pointer" for *NAME; NULL for NULL. Its size into *size when size is
 * not NULL (0 for NULL).
 */
CAPFFI__HIDDEN const char *capffi__type_word(const struct capffi__type *t,
                                             size_t *size);

/*
 * True for the kinds whose values are addresses (pointer, buffer,
 * function, cstring, *NAME): H3 needs the pointer right wherever such a
 * value would be made out of memory or handed to a host by native code.
 */
CAPFFI__HIDDEN bool capffi__type_is_pointer(const struct capffi__type *t);

/* Whether t, passed by value, carries a raw address: `pointer`, or a
 * struct with a pointer, *NAME, function or cstring field (its bytes are
 * the host's): what safe mode refuses in signatures. */
CAPFFI__HIDDEN bool capffi__type_carries_raw(const struct capffi__type *t);

struct capffi__tok;

/*
 * Parse a signature into *out (its own arena). CAPFFI_ESIG with "signature
 * byte N: ..." in the message; CAPFFI_ENOMEM. Type names are those of
 * the context (capffi_type_define); the _in form also sees the names
 * defined through scope and its ancestors, which win (capffi__type_lookup).
 */
CAPFFI__HIDDEN int capffi__sig_parse(capffi_ctx *ctx, struct capffi__sig *out,
                                     const char *text);
CAPFFI__HIDDEN int capffi__sig_parse_in(capffi_ctx *ctx,
                                        const struct capffi__tok *scope,
                                        struct capffi__sig *out,
                                        const char *text);
CAPFFI__HIDDEN void capffi__sig_free(struct capffi__sig *sig);

/*
 * Parse one type expression (a scalar, a struct, a name, *NAME) into a
 * type allocated in arena. `what` names the text in messages ("layout",
 * "type"). void is refused.
 */
CAPFFI__HIDDEN int capffi__type_parse(capffi_ctx *ctx,
                                      struct capffi__arena *arena,
                                      const char *what, const char *text,
                                      const struct capffi__type **out);
/* capffi__type_parse_in for the layout of class `self`, whose `*self`
 * fields point to self_type (the struct the caller fills with the
 * result once parsed: a list's next). */
CAPFFI__HIDDEN int
capffi__type_parse_class(capffi_ctx *ctx, const struct capffi__tok *scope,
                         struct capffi__arena *arena, const char *text,
                         const char *self, const struct capffi__type *self_type,
                         const char *what, const struct capffi__type **out);
CAPFFI__HIDDEN int capffi__type_parse_in(capffi_ctx *ctx,
                                         const struct capffi__tok *scope,
                                         struct capffi__arena *arena,
                                         const char *what, const char *text,
                                         const struct capffi__type **out);

/*
 * Find a field by path: names, decimal indices and bracketed array
 * indices joined by dots ("pos.x", "1.0", "str[3]", "[2].id"); "" is the
 * whole type. CAPFFI_ENOTFOUND or CAPFFI_EBOUNDS with a message.
 */
CAPFFI__HIDDEN int capffi__type_field(capffi_ctx *ctx,
                                      const struct capffi__type *t,
                                      const char *path, capffi_field *out);

/* Where a path leads (capffi__type_place): the offset from the start,
 * the type found there, and whether a readonly field was crossed. */
struct capffi__place {
    size_t offset;
    const struct capffi__type *type;
    bool readonly;
};

/*
 * Resolve path in t, as capffi__type_field; `count` elements of t are
 * there (an array instance: the path starts with its index; 1 or 0 for
 * one instance, whose path starts with a field).
 */
CAPFFI__HIDDEN int
capffi__type_place(capffi_ctx *ctx, const struct capffi__type *t, size_t count,
                   bool array, const char *path, struct capffi__place *out);

/* The class text of a type for hosts: its name or its keyword. */
CAPFFI__HIDDEN const char *capffi__type_class(const struct capffi__type *t);

#endif
