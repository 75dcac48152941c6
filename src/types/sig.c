/*
 * sig.c - the signature language: a hand-written recursive-descent parser
 * with errors that name the byte where the text broke and what was
 * expected there.
 *
 *   signature = "(" [ params ] ")" "->" ptype
 *   params    = ptype { "," ptype } [ "," "..." ":" type { "," type } ]
 *   ptype     = type | [ "out" ] [ "own" ] tptr [ "by" SYMBOL ]
 *             | "out" scalar
 *   type      = scalar | struct | NAME | tptr
 *   tptr      = [ "?" ] "*" [ "[" ( INT | "$" INT ) "]" ] ( NAME | scalar )
 *   struct    = "{" field { "," field } "}"
 *   field     = [ "readonly" ] [ ident ":" ] ftype
 *   ftype     = type | "[" INT "]" ftype
 *
 * A NAME may be a class (capffi_type_define), "opaque" included: an
 * opaque class is reached through *NAME only. `*[$k]T` points to as many
 * elements as parameter k (counted from 0) says.
 *
 * Threat answered here: C6 (malformed text is an error with a position,
 * never a crash; length, depth, field and node limits bound the memory and
 * stack a hostile text can use).
 */
#include "types/sig.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "types/names.h"

/* Where a type stands: what it may be there. */
enum place { AT_TYPE, AT_FIELD, AT_PARAM, AT_RESULT };

struct parser {
    capffi_ctx *ctx;
    const struct capffi__tok *scope; /* whose type names are seen (H7) */
    /* A class being defined: `*self` inside it points to self_type. */
    const char *self;
    const struct capffi__type *self_type;
    struct capffi__arena *arena;
    const char *what; /* "signature", "layout", "type" */
    const char *s;
    size_t len, pos;
    unsigned depth;
    size_t nodes;
};

static const struct {
    const char *word;
    enum capffi__kind kind;
} keywords[] = {
    { "void", CAPFFI__VOID },
    { "bool", CAPFFI__BOOL },
    { "i8", CAPFFI__I8 },
    { "u8", CAPFFI__U8 },
    { "i16", CAPFFI__I16 },
    { "u16", CAPFFI__U16 },
    { "i32", CAPFFI__I32 },
    { "u32", CAPFFI__U32 },
    { "i64", CAPFFI__I64 },
    { "u64", CAPFFI__U64 },
    { "isize", CAPFFI__ISIZE },
    { "usize", CAPFFI__USIZE },
    { "f32", CAPFFI__F32 },
    { "f64", CAPFFI__F64 },
    { "pointer", CAPFFI__POINTER },
    { "buffer", CAPFFI__BUFFER },
    { "function", CAPFFI__FUNCTION },
    { "cstring", CAPFFI__CSTRING },
};

/* ---- errors ----------------------------------------------------------- */

static int error_at(struct parser *p, size_t pos, const char *fmt, ...)
    CAPFFI__PRINTF(3, 4);

static int
error_at(struct parser *p, size_t pos, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return capffi__fail(p->ctx, CAPFFI_ESIG, "%s byte %zu: %s", p->what, pos,
                        msg);
}

/* A description of what stands at pos, for "found ..." */
static void
describe(const struct parser *p, size_t pos, char *buf, size_t cap)
{
    if (pos >= p->len) {
        snprintf(buf, cap, "the end");
        return;
    }
    unsigned char c = (unsigned char)p->s[pos];
    if (isalpha(c) || c == '_') {
        size_t n = 0;
        while (pos + n < p->len && n < 24 &&
               (isalnum((unsigned char)p->s[pos + n]) || p->s[pos + n] == '_'))
            n++;
        snprintf(buf, cap, "'%.*s'", (int)n, p->s + pos);
    } else if (c > 0x20 && c < 0x7f) {
        snprintf(buf, cap, "'%c'", c);
    } else {
        snprintf(buf, cap, "byte 0x%02x", c);
    }
}

static int
expected(struct parser *p, const char *what)
{
    char found[48];
    describe(p, p->pos, found, sizeof found);
    return error_at(p, p->pos, "expected %s, found %s", what, found);
}

/* ---- lexing ----------------------------------------------------------- */

static void
skip_ws(struct parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static bool
accept(struct parser *p, const char *tok)
{
    skip_ws(p);
    size_t n = strlen(tok);
    if (p->len - p->pos >= n && memcmp(p->s + p->pos, tok, n) == 0) {
        p->pos += n;
        return true;
    }
    return false;
}

static bool
peek(struct parser *p, char c)
{
    skip_ws(p);
    return p->pos < p->len && p->s[p->pos] == c;
}

/* An identifier at the cursor: its start and length (0 if none). */
static size_t
ident(struct parser *p, size_t *start)
{
    skip_ws(p);
    *start = p->pos;
    size_t i = p->pos;
    if (i < p->len && (isalpha((unsigned char)p->s[i]) || p->s[i] == '_')) {
        while (i < p->len &&
               (isalnum((unsigned char)p->s[i]) || p->s[i] == '_'))
            i++;
    }
    p->pos = i;
    return i - *start;
}

int
capffi__type_keyword(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
        if (strlen(keywords[i].word) == n &&
            memcmp(keywords[i].word, s, n) == 0)
            return (int)keywords[i].kind;
    return -1;
}

/* ---- scalar descriptors ------------------------------------------------ */

#define SCALAR(k, f, sz, word)                                                 \
    {                                                                          \
        .kind = k, .size = sz, .align = sz, .ffi = f, .name = word,            \
        .count_arg = -1                                                        \
    }

static const struct capffi__type scalars[] = {
    SCALAR(CAPFFI__VOID, &ffi_type_void, 1, "void"),
    SCALAR(CAPFFI__BOOL, &ffi_type_uint8, 1, "bool"),
    SCALAR(CAPFFI__I8, &ffi_type_sint8, 1, "i8"),
    SCALAR(CAPFFI__U8, &ffi_type_uint8, 1, "u8"),
    SCALAR(CAPFFI__I16, &ffi_type_sint16, 2, "i16"),
    SCALAR(CAPFFI__U16, &ffi_type_uint16, 2, "u16"),
    SCALAR(CAPFFI__I32, &ffi_type_sint32, 4, "i32"),
    SCALAR(CAPFFI__U32, &ffi_type_uint32, 4, "u32"),
    SCALAR(CAPFFI__I64, &ffi_type_sint64, 8, "i64"),
    SCALAR(CAPFFI__U64, &ffi_type_uint64, 8, "u64"),
    SCALAR(CAPFFI__ISIZE, &ffi_type_sint64, 8, "isize"),
    SCALAR(CAPFFI__USIZE, &ffi_type_uint64, 8, "usize"),
    SCALAR(CAPFFI__F32, &ffi_type_float, 4, "f32"),
    SCALAR(CAPFFI__F64, &ffi_type_double, 8, "f64"),
    SCALAR(CAPFFI__POINTER, &ffi_type_pointer, 8, "pointer"),
    SCALAR(CAPFFI__BUFFER, &ffi_type_pointer, 8, "buffer"),
    SCALAR(CAPFFI__FUNCTION, &ffi_type_pointer, 8, "function"),
    SCALAR(CAPFFI__CSTRING, &ffi_type_pointer, 8, "cstring"),
};

/* The sizes above are the x86-64 and AArch64 LP64 ones. */
_Static_assert(sizeof(void *) == 8 && sizeof(size_t) == 8 &&
                   sizeof(double) == 8 && sizeof(float) == 4,
               "capffi's scalar table assumes an LP64 platform");
_Static_assert(sizeof(bool) == 1, "bool is passed as one byte");

const struct capffi__type *
capffi__type_scalar(enum capffi__kind k)
{
    return &scalars[k];
}

const char *
capffi__type_word(const struct capffi__type *t, size_t *size)
{
    if (size)
        *size = t ? t->size : 0;
    if (!t)
        return NULL;
    switch (t->kind) {
    case CAPFFI__STRUCT:
        return "struct";
    case CAPFFI__TPTR:
        return t->pflags & CAPFFI__P_OUT ? "out" : "object";
    case CAPFFI__OUTVAL:
        return "out";
    case CAPFFI__ARRAY:
        return "array";
    case CAPFFI__OPAQUE:
        return "opaque";
    default:
        return capffi__type_scalar(t->kind)->name;
    }
}

bool
capffi__type_is_pointer(const struct capffi__type *t)
{
    switch (t->kind) {
    case CAPFFI__POINTER:
    case CAPFFI__BUFFER:
    case CAPFFI__FUNCTION:
    case CAPFFI__CSTRING:
    case CAPFFI__TPTR:
    case CAPFFI__OUTVAL:
        return true;
    default:
        return false;
    }
}

/* Whether bytes of type t, inside a struct passed by value, hold an
 * address the host wrote or reads as such. */
static bool
inner_raw(const struct capffi__type *t)
{
    switch (t->kind) {
    case CAPFFI__POINTER:
    case CAPFFI__TPTR:
    case CAPFFI__FUNCTION:
    case CAPFFI__CSTRING:
        return true;
    case CAPFFI__ARRAY:
        return inner_raw(t->elem);
    case CAPFFI__STRUCT:
        for (size_t i = 0; i < t->nfields; i++)
            if (inner_raw(t->fields[i].type))
                return true;
        return false;
    default:
        return false;
    }
}

bool
capffi__type_carries_raw(const struct capffi__type *t)
{
    /* A *NAME or function parameter is checked by its handle; inside a
     * struct by value the same bytes are the host's to forge. */
    return t->kind == CAPFFI__POINTER ||
           (t->kind == CAPFFI__STRUCT && inner_raw(t));
}

/* ---- types ------------------------------------------------------------ */

/* Lay out a struct type whose fields are set: fills st, size, align and
 * the field offsets through libffi. CAPFFI_ESIG if libffi refuses. */
static int
type_layout(capffi_ctx *ctx, struct capffi__arena *arena,
            struct capffi__type *t)
{
    /* Bound the size before libffi adds it up, so nested types cannot
     * wrap size_t (each field is already bounded, so the sum cannot). */
    size_t total = 0;
    for (size_t i = 0; i < t->nfields; i++) {
        if (!t->fields[i].type->ffi)
            return capffi__fail(ctx, CAPFFI_ESIG,
                                "field %zu: an array of more than %d "
                                "elements cannot be a field (point to it: "
                                "*[N]T)",
                                i + 1, CAPFFI__ARRAY_FFI_MAX);
        total += t->fields[i].type->size + t->fields[i].type->align;
    }
    if (total > CAPFFI__STRUCT_MAX_SIZE)
        return capffi__fail(ctx, CAPFFI_ESIG, "struct larger than %zu bytes",
                            CAPFFI__STRUCT_MAX_SIZE);
    ffi_type **elems =
        capffi__arena_alloc(arena, (t->nfields + 1) * sizeof *elems);
    size_t *offsets = capffi__arena_alloc(arena, t->nfields * sizeof *offsets);
    if (!elems || !offsets)
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    for (size_t i = 0; i < t->nfields; i++)
        elems[i] = t->fields[i].type->ffi;
    elems[t->nfields] = NULL;
    t->st.size = 0;
    t->st.alignment = 0;
    t->st.type = FFI_TYPE_STRUCT;
    t->st.elements = elems;
    ffi_status st = ffi_get_struct_offsets(FFI_DEFAULT_ABI, &t->st, offsets);
    if (st != FFI_OK)
        return capffi__fail(ctx, CAPFFI_ESIG,
                            "libffi cannot lay out this struct (status %d)",
                            (int)st);
    for (size_t i = 0; i < t->nfields; i++)
        t->fields[i].offset = offsets[i];
    t->ffi = &t->st;
    t->size = t->st.size;
    t->align = t->st.alignment;
    return CAPFFI_OK;
}

static int parse_type(struct parser *p, enum place at,
                      const struct capffi__type **out);

static struct capffi__type *
new_node(struct parser *p, size_t at, int *rc)
{
    if (++p->nodes > CAPFFI__SIG_MAX_NODES) {
        *rc = error_at(p, at, "more than %d types in one text",
                       CAPFFI__SIG_MAX_NODES);
        return NULL;
    }
    struct capffi__type *t = capffi__arena_alloc(p->arena, sizeof *t);
    if (!t)
        *rc = capffi__fail(p->ctx, CAPFFI_ENOMEM, "out of memory");
    return t;
}

static int
parse_struct(struct parser *p, const struct capffi__type **out)
{
    size_t open = p->pos - 1;
    if (++p->depth > CAPFFI__SIG_MAX_DEPTH)
        return error_at(p, open, "structs nested deeper than %d",
                        CAPFFI__SIG_MAX_DEPTH);
    if (peek(p, '}'))
        return error_at(p, p->pos, "a struct needs at least one field");

    struct capffi__field tmp[CAPFFI__SIG_MAX_FIELDS];
    size_t n = 0;
    int rc;
    do {
        if (n == CAPFFI__SIG_MAX_FIELDS)
            return error_at(p, p->pos, "more than %d fields in a struct",
                            CAPFFI__SIG_MAX_FIELDS);
        struct capffi__field *f = &tmp[n];
        memset(f, 0, sizeof *f);
        size_t save = p->pos, start;
        size_t len = ident(p, &start);
        if (len == 8 && memcmp(p->s + start, "readonly", 8) == 0 &&
            !peek(p, ':')) {
            f->readonly = true;
            save = p->pos;
            len = ident(p, &start);
        }
        if (len && accept(p, ":")) {
            if (len > CAPFFI__NAME_MAX)
                return error_at(p, start, "field name longer than %d bytes",
                                CAPFFI__NAME_MAX);
            for (size_t k = 0; k < n; k++)
                if (tmp[k].name && strlen(tmp[k].name) == len &&
                    memcmp(tmp[k].name, p->s + start, len) == 0)
                    return error_at(p, start, "duplicate field name '%.*s'",
                                    (int)len, p->s + start);
            f->name = capffi__arena_strndup(p->arena, p->s + start, len);
            if (!f->name)
                return capffi__fail(p->ctx, CAPFFI_ENOMEM, "out of memory");
        } else {
            p->pos = save;
        }
        if ((rc = parse_type(p, AT_FIELD, &f->type)))
            return rc;
        n++;
    } while (accept(p, ","));
    if (!accept(p, "}"))
        return expected(p, "',' or '}'");
    p->depth--;

    struct capffi__type *t = new_node(p, open, &rc);
    if (!t)
        return rc;
    t->kind = CAPFFI__STRUCT;
    t->nfields = n;
    t->fields = capffi__arena_alloc(p->arena, n * sizeof *t->fields);
    if (!t->fields)
        return capffi__fail(p->ctx, CAPFFI_ENOMEM, "out of memory");
    memcpy(t->fields, tmp, n * sizeof *t->fields);
    if ((rc = type_layout(p->ctx, p->arena, t)))
        return rc;
    *out = t;
    return CAPFFI_OK;
}

/* An unsigned decimal at the cursor, at most max: false if none, or if
 * it is larger (the cursor then stays where the digits start). */
static bool
number(struct parser *p, size_t max, size_t *v)
{
    skip_ws(p);
    size_t i = p->pos, x = 0;
    while (i < p->len && isdigit((unsigned char)p->s[i])) {
        x = x * 10 + (size_t)(p->s[i] - '0');
        if (x > max)
            return false;
        i++;
    }
    if (i == p->pos)
        return false;
    p->pos = i;
    *v = x;
    return true;
}

/* The text a class is named by in messages and capffi_obj_class. */
const char *
capffi__type_class(const struct capffi__type *t)
{
    if (!t)
        return "";
    if (t->kind == CAPFFI__STRUCT && !t->name)
        return "struct";
    return t->name ? t->name : "";
}

/* Whether kind k is an integer (a count may be one). */
static bool
is_integer(enum capffi__kind k)
{
    return k >= CAPFFI__I8 && k <= CAPFFI__USIZE;
}

/* "[N]T" after the '[' at open: a fixed array of N elements. */
static int
parse_array(struct parser *p, size_t open, const struct capffi__type **out)
{
    size_t n;
    skip_ws(p);
    size_t at = p->pos;
    if (!number(p, CAPFFI__ARRAY_MAX, &n) || n == 0)
        return isdigit((unsigned char)(at < p->len ? p->s[at] : 0))
                   ? error_at(p, at, "an array has 1 to %zu elements",
                              CAPFFI__ARRAY_MAX)
                   : expected(p, "an element count");
    if (!accept(p, "]"))
        return expected(p, "']'");
    if (++p->depth > CAPFFI__SIG_MAX_DEPTH)
        return error_at(p, open, "types nested deeper than %d",
                        CAPFFI__SIG_MAX_DEPTH);
    const struct capffi__type *elem;
    skip_ws(p);
    size_t eat = p->pos;
    int rc = parse_type(p, AT_FIELD, &elem);
    if (rc)
        return rc;
    p->depth--;
    if (elem->kind == CAPFFI__OPAQUE)
        return error_at(p, eat,
                        "an opaque class cannot be an element "
                        "(point to it: *NAME)");
    if (elem->size > CAPFFI__STRUCT_MAX_SIZE / n)
        return error_at(p, open, "array larger than %zu bytes",
                        CAPFFI__STRUCT_MAX_SIZE);
    struct capffi__type *t = new_node(p, open, &rc);
    if (!t)
        return rc;
    memset(t, 0, sizeof *t);
    t->kind = CAPFFI__ARRAY;
    t->elem = elem;
    t->count = n;
    t->count_arg = -1;
    t->size = elem->size * n;
    t->align = elem->align;
    const char *en = capffi__type_class(elem);
    size_t cap = strlen(en) + 24;
    char *name = capffi__arena_alloc(p->arena, cap);
    if (!name)
        return capffi__fail(p->ctx, CAPFFI_ENOMEM, "out of memory");
    snprintf(name, cap, "[%zu]%s", n, en);
    t->name = name;
    if (n <= CAPFFI__ARRAY_FFI_MAX && elem->ffi) {
        /* libffi knows no arrays: a struct of n elements lays out alike */
        ffi_type **elems =
            capffi__arena_alloc(p->arena, (n + 1) * sizeof *elems);
        if (!elems)
            return capffi__fail(p->ctx, CAPFFI_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
            elems[i] = elem->ffi;
        elems[n] = NULL;
        t->st.type = FFI_TYPE_STRUCT;
        t->st.elements = elems;
        if (ffi_get_struct_offsets(FFI_DEFAULT_ABI, &t->st, NULL) != FFI_OK ||
            t->st.size != t->size)
            return error_at(p, open, "libffi cannot lay out this array");
        t->ffi = &t->st;
    }
    *out = t;
    return CAPFFI_OK;
}

/* The kinds a *T may point to besides classes. */
static bool
pointee_scalar(int k)
{
    return (k >= CAPFFI__BOOL && k <= CAPFFI__F64) || k == CAPFFI__CSTRING;
}

/*
 * What follows '*' (the '?' or '*' at `at`): [N] or [$k], then a class
 * or scalar name. pflags: CAPFFI__P_* said before it.
 */
static int
parse_tptr(struct parser *p, enum place at_, size_t at, uint8_t pflags,
           const struct capffi__type **out)
{
    size_t count = 0;
    int count_arg = -1;
    if (accept(p, "[")) {
        skip_ws(p);
        size_t cat = p->pos;
        size_t k;
        if (accept(p, "$")) {
            if (at_ != AT_PARAM)
                return error_at(p, cat,
                                "'$k' counts only in the "
                                "parameters of a signature");
            if (!number(p, CAPFFI_MAX_ARGS - 1, &k))
                return expected(p, "a parameter index after '$'");
            count_arg = (int)k;
        } else if (!number(p, CAPFFI__ARRAY_MAX, &count) || count == 0) {
            return expected(p, "an element count or '$' and a parameter "
                               "index");
        }
        if (!accept(p, "]"))
            return expected(p, "']'");
    }
    size_t start, len = ident(p, &start);
    if (!len)
        return expected(p, "a class name after '*'");
    int k = capffi__type_keyword(p->s + start, len);
    const struct capffi__type *target;
    if (k >= 0) {
        if (!pointee_scalar(k))
            return error_at(p, start,
                            "*%.*s: a typed pointer points to a class, a "
                            "number, bool or cstring",
                            (int)len, p->s + start);
        target = capffi__type_scalar((enum capffi__kind)k);
    } else if (p->self && strlen(p->self) == len &&
               memcmp(p->self, p->s + start, len) == 0) {
        target = p->self_type; /* a list's next, a tree's children */
    } else if (!(target = capffi__type_lookup(p->ctx, p->scope, p->s + start,
                                              len))) {
        return error_at(p, start, "unknown type name '%.*s'", (int)len,
                        p->s + start);
    }
    if (target->kind == CAPFFI__OPAQUE && (count || count_arg >= 0))
        return error_at(p, start, "an opaque class has no elements");
    int rc;
    struct capffi__type *t = new_node(p, at, &rc);
    if (!t)
        return rc;
    *t = *capffi__type_scalar(CAPFFI__POINTER);
    t->kind = CAPFFI__TPTR;
    t->elem = target;
    t->name = target->name;
    t->count = count;
    t->count_arg = count_arg;
    t->pflags = pflags;
    if ((pflags & CAPFFI__P_OUT) && (count || count_arg >= 0))
        return error_at(p, at, "an out pointer receives one instance");
    if ((pflags & CAPFFI__P_OWN) && at_ == AT_PARAM &&
        !(pflags & CAPFFI__P_OUT))
        return error_at(p, at,
                        "own is for results and out-parameters: an "
                        "argument stays the host's");
    if (pflags & CAPFFI__P_OWN) {
        size_t bstart, blen = ident(p, &bstart);
        if (blen != 2 || memcmp(p->s + bstart, "by", 2) != 0) {
            p->pos = bstart;
            return expected(p, "'by' and the destructor's symbol after "
                               "an own pointer");
        }
        size_t sstart, slen = ident(p, &sstart);
        if (!slen)
            return expected(p, "the destructor's symbol after 'by'");
        if (count || count_arg >= 0)
            return error_at(p, at, "an own pointer points to one instance");
        t->by = capffi__arena_strndup(p->arena, p->s + sstart, slen);
        if (!t->by)
            return capffi__fail(p->ctx, CAPFFI_ENOMEM, "out of memory");
    }
    *out = t;
    return CAPFFI_OK;
}

/* C's names for the types the language spells its own way. */
static const struct {
    const char *c, *ours;
} c_names[] = {
    { "int", "i32" },        { "unsigned", "u32" },
    { "long", "i64" },       { "short", "i16" },
    { "char", "i8 or u8" },  { "double", "f64" },
    { "float", "f32" },      { "size_t", "usize" },
    { "ssize_t", "isize" },  { "ptrdiff_t", "isize" },
    { "intptr_t", "isize" }, { "uintptr_t", "usize" },
    { "int8_t", "i8" },      { "uint8_t", "u8" },
    { "int16_t", "i16" },    { "uint16_t", "u16" },
    { "int32_t", "i32" },    { "uint32_t", "u32" },
    { "int64_t", "i64" },    { "uint64_t", "u64" },
    { "_Bool", "bool" },     { "struct", "{ ... } or a defined name" },
};

/* An unknown type name at start: a C type name gets the word the
 * language uses for it ("char *" is cstring, "void *" pointer). */
static int
unknown_name(struct parser *p, size_t start, size_t len)
{
    const char *w = p->s + start;
    size_t after = p->pos;
    skip_ws(p);
    bool star = p->pos < p->len && p->s[p->pos] == '*';
    p->pos = after;
    if (len == 5 && memcmp(w, "const", 5) == 0)
        return error_at(p, start,
                        "unknown type name 'const': signatures have no "
                        "const (a const char * is 'cstring')");
    if (star && len == 4 && memcmp(w, "char", 4) == 0)
        return error_at(p, start,
                        "unknown type name 'char': a C string (char *) is "
                        "'cstring'");
    for (size_t i = 0; i < sizeof c_names / sizeof *c_names; i++)
        if (strlen(c_names[i].c) == len && memcmp(c_names[i].c, w, len) == 0)
            return error_at(p, start,
                            "unknown type name '%.*s': C's %.*s is "
                            "'%s' here%s",
                            (int)len, w, (int)len, w, c_names[i].ours,
                            star ? " (a pointer: 'pointer' or *NAME)" : "");
    return error_at(p, start, "unknown type name '%.*s'", (int)len, w);
}

/* Whether the identifier at the cursor is word; if so it is taken. */
static bool
word(struct parser *p, const char *w)
{
    size_t save = p->pos, start, len = ident(p, &start);
    if (len == strlen(w) && memcmp(p->s + start, w, len) == 0)
        return true;
    p->pos = save;
    return false;
}

static int
parse_type(struct parser *p, enum place at_, const struct capffi__type **out)
{
    int rc;
    skip_ws(p);
    size_t at = p->pos;
    if (accept(p, "{"))
        return parse_struct(p, out);
    if (accept(p, "[")) {
        if (at_ == AT_PARAM || at_ == AT_RESULT)
            return error_at(p, at, "an array is passed by pointer: *[N]T");
        return parse_array(p, at, out);
    }
    uint8_t pflags = 0;
    if (at_ == AT_PARAM || at_ == AT_RESULT) {
        if (word(p, "out")) {
            if (at_ == AT_RESULT)
                return error_at(p, at, "'out' is for parameters");
            pflags |= CAPFFI__P_OUT;
        }
        if (word(p, "own"))
            pflags |= CAPFFI__P_OWN;
        skip_ws(p);
    }
    size_t star = p->pos;
    if (accept(p, "?")) {
        if (pflags & CAPFFI__P_OUT)
            return error_at(p, star, "an out parameter is never NULL");
        if (!accept(p, "*"))
            return expected(p, "'*' after '?'");
        return parse_tptr(p, at_, star, pflags | CAPFFI__P_NULL, out);
    }
    if (accept(p, "*"))
        return parse_tptr(p, at_, star, pflags, out);
    if (pflags & CAPFFI__P_OWN)
        return expected(p, "'*' and a class after 'own'");
    size_t start, len = ident(p, &start);
    if (!len) {
        p->pos = at;
        return expected(p, "a type");
    }
    int k = capffi__type_keyword(p->s + start, len);
    if (pflags & CAPFFI__P_OUT) {
        if (k < CAPFFI__BOOL || k > CAPFFI__F64)
            return error_at(p, start,
                            "'out' takes '*NAME' or a number or bool type");
        struct capffi__type *t = new_node(p, at, &rc);
        if (!t)
            return rc;
        *t = *capffi__type_scalar(CAPFFI__POINTER);
        t->kind = CAPFFI__OUTVAL;
        t->elem = capffi__type_scalar((enum capffi__kind)k);
        t->pflags = CAPFFI__P_OUT;
        t->name = t->elem->name;
        *out = t;
        return CAPFFI_OK;
    }
    if (k == CAPFFI__VOID && at_ == AT_FIELD)
        return error_at(p, start, "void cannot be a struct field");
    if (k == CAPFFI__BUFFER && at_ == AT_FIELD)
        return error_at(p, start,
                        "buffer cannot be a struct field (use pointer)");
    if (k >= 0) {
        *out = capffi__type_scalar((enum capffi__kind)k);
        return CAPFFI_OK;
    }
    const struct capffi__type *named =
        capffi__type_lookup(p->ctx, p->scope, p->s + start, len);
    if (!named)
        return unknown_name(p, start, len);
    if (named->kind == CAPFFI__OPAQUE && at_ != AT_TYPE)
        return error_at(p, start,
                        "'%.*s' is opaque: it is reached through *%.*s",
                        (int)len, p->s + start, (int)len, p->s + start);
    *out = named;
    return CAPFFI_OK;
}

static int
start(struct parser *p, capffi_ctx *ctx, struct capffi__arena *arena,
      const char *what, const char *text)
{
    memset(p, 0, sizeof *p);
    p->ctx = ctx;
    p->arena = arena;
    p->what = what;
    p->s = text;
    if (!text)
        return capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL", what);
    p->len = strnlen(text, CAPFFI__SIG_MAX_LEN + 1);
    if (p->len > CAPFFI__SIG_MAX_LEN)
        return capffi__fail(ctx, CAPFFI_ESIG, "%s is longer than %d bytes",
                            what, CAPFFI__SIG_MAX_LEN);
    return CAPFFI_OK;
}

static int
finish(struct parser *p)
{
    skip_ws(p);
    if (p->pos != p->len)
        return expected(p, "the end");
    return CAPFFI_OK;
}

int
capffi__type_parse(capffi_ctx *ctx, struct capffi__arena *arena,
                   const char *what, const char *text,
                   const struct capffi__type **out)
{
    return capffi__type_parse_in(ctx, NULL, arena, what, text, out);
}

int
capffi__type_parse_in(capffi_ctx *ctx, const struct capffi__tok *scope,
                      struct capffi__arena *arena, const char *what,
                      const char *text, const struct capffi__type **out)
{
    return capffi__type_parse_class(ctx, scope, arena, text, NULL, NULL, what,
                                    out);
}

int
capffi__type_parse_class(capffi_ctx *ctx, const struct capffi__tok *scope,
                         struct capffi__arena *arena, const char *text,
                         const char *self, const struct capffi__type *self_type,
                         const char *what, const struct capffi__type **out)
{
    struct parser p;
    int rc = start(&p, ctx, arena, what, text);
    if (rc)
        return rc;
    p.scope = scope;
    p.self = self;
    p.self_type = self_type;
    skip_ws(&p);
    size_t at = p.pos;
    if ((rc = parse_type(&p, AT_TYPE, out)))
        return rc;
    if ((*out)->kind == CAPFFI__VOID)
        return error_at(&p, at, "void is not a value type");
    return finish(&p);
}

/* ---- signatures -------------------------------------------------------- */

/* Variadic arguments undergo C's default promotions: refuse the types
 * that would be promoted, instead of silently passing the wrong width. */
static int
check_variadic(struct parser *p, size_t at, const struct capffi__type *t)
{
    switch (t->kind) {
    case CAPFFI__F32:
        return error_at(p, at,
                        "f32 cannot be variadic: C promotes it, "
                        "declare f64");
    case CAPFFI__BOOL:
    case CAPFFI__I8:
    case CAPFFI__U8:
    case CAPFFI__I16:
    case CAPFFI__U16:
        return error_at(p, at,
                        "%s cannot be variadic: C promotes it, declare i32",
                        t->name);
    case CAPFFI__STRUCT:
        return error_at(p, at, "structs cannot be variadic arguments");
    case CAPFFI__BUFFER:
        return error_at(p, at, "buffer cannot be variadic (use pointer)");
    case CAPFFI__TPTR:
        if (t->pflags == 0 && t->count == 0 && t->count_arg < 0)
            return CAPFFI_OK;
        return error_at(p, at,
                        "out, own and counted pointers cannot be variadic");
    case CAPFFI__OUTVAL:
        return error_at(p, at, "out parameters cannot be variadic");
    default:
        return CAPFFI_OK;
    }
}

int
capffi__sig_parse(capffi_ctx *ctx, struct capffi__sig *out, const char *text)
{
    return capffi__sig_parse_in(ctx, NULL, out, text);
}

int
capffi__sig_parse_in(capffi_ctx *ctx, const struct capffi__tok *scope,
                     struct capffi__sig *out, const char *text)
{
    struct parser p;
    const struct capffi__type *tmp[CAPFFI_MAX_ARGS];
    memset(out, 0, sizeof *out);
    int rc = start(&p, ctx, &out->arena, "signature", text);
    if (rc)
        return rc;
    p.scope = scope;
    if (!accept(&p, "("))
        return expected(&p, "'('");
    size_t n = 0;
    bool variadic = false;
    size_t nfixed = 0;
    if (!peek(&p, ')')) {
        do {
            skip_ws(&p);
            size_t at = p.pos;
            if (!variadic && accept(&p, "...")) {
                if (n == 0)
                    return error_at(&p, at,
                                    "a variadic function needs a fixed "
                                    "parameter before '...'");
                if (!accept(&p, ":"))
                    return expected(&p, "':' and the variadic types "
                                        "after '...'");
                variadic = true;
                nfixed = n;
                skip_ws(&p);
                at = p.pos;
            }
            if (n == CAPFFI_MAX_ARGS)
                return error_at(&p, at, "more than %d parameters",
                                CAPFFI_MAX_ARGS);
            if ((rc = parse_type(&p, AT_PARAM, &tmp[n])))
                return rc;
            if (tmp[n]->kind == CAPFFI__VOID)
                return error_at(&p, at, "void is only allowed as the result");
            if (variadic && (rc = check_variadic(&p, at, tmp[n])))
                return rc;
            n++;
        } while (accept(&p, ","));
    }
    if (!accept(&p, ")"))
        return expected(&p, "',' or ')'");
    if (!accept(&p, "->"))
        return expected(&p, "'->' and the result type");
    skip_ws(&p);
    size_t at = p.pos;
    if ((rc = parse_type(&p, AT_RESULT, &out->ret)))
        return rc;
    if (out->ret->kind == CAPFFI__BUFFER)
        return error_at(&p, at, "buffer cannot be a result (use pointer)");
    if ((rc = finish(&p)))
        return rc;
    for (size_t i = 0; i < n; i++) {
        int k = tmp[i]->count_arg;
        if (tmp[i]->kind != CAPFFI__TPTR || k < 0)
            continue;
        if ((size_t)k >= n || (size_t)k == i || !is_integer(tmp[k]->kind))
            return capffi__fail(ctx, CAPFFI_ESIG,
                                "signature: parameter %zu (*[$%d]%s): "
                                "parameter %d must be another, integer, "
                                "parameter",
                                i, k, capffi__type_class(tmp[i]->elem), k);
    }

    out->nargs = n;
    out->nfixed = variadic ? nfixed : n;
    out->variadic = variadic;
    out->args = capffi__arena_alloc(&out->arena, (n ? n : 1) * sizeof *tmp);
    out->atypes =
        capffi__arena_alloc(&out->arena, (n + 1) * sizeof *out->atypes);
    if (!out->args || !out->atypes)
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        out->args[i] = tmp[i];
        out->atypes[i] = tmp[i]->ffi;
    }
    return CAPFFI_OK;
}

void
capffi__sig_free(struct capffi__sig *sig)
{
    if (sig) {
        capffi__arena_free(&sig->arena);
        memset(sig, 0, sizeof *sig);
    }
}
