/*
 * test_sig.c - the signature language and named types (suites: unit, sig).
 *
 * The parser is reached directly (capffi__sig_parse, capffi__type_parse),
 * through the public type functions, and end to end through
 * capffi_fn_from_ptr with functions of this program as the code. Every
 * refusal must be CAPFFI_ESIG with the byte in the message, and nothing
 * may leak: the allocator's count of live blocks is compared before and
 * after each parse (and its capffi__sig_free).
 */
#include "helpers.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>

#include "base/internal.h"
#include "types/sig.h"

struct fx {
    capffi_ctx *ctx;
    capffi_token tok; /* CAPFFI_RIGHT_FNPTR only */
};

struct pt {
    double x, y;
};

struct rect {
    struct pt min, max;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_scope sc;
    memset(&sc, 0, sizeof sc);
    sc.rights = CAPFFI_RIGHT_FNPTR | CAPFFI_RIGHT_POINTER; /* not safe mode */
    assert_ok(capffi_token_new(&f->tok, f->ctx, "sig", &sc));
    assert_ok(capffi_type_define(f->ctx, "Point", "{ x: f64, y: f64 }"));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    capffi_ctx_free(f->ctx);
    free(f);
    return 0;
}

/* ---- helpers ----------------------------------------------------------- */

/* Parse text, which must be accepted; the caller frees sig. */
static void
parse_ok(capffi_ctx *ctx, struct capffi__sig *sig, const char *text)
{
    int rc = capffi__sig_parse(ctx, sig, text);
    if (rc)
        fail_msg("'%s' refused (%s): %s", text, capffi_err_name(rc),
                 capffi_ctx_errmsg(ctx));
    assert_non_null(sig->ret);
    assert_true(sig->nfixed <= sig->nargs);
    assert_true(sig->nargs <= CAPFFI_MAX_ARGS);
}

/* Parse text, which must be refused with CAPFFI_ESIG and a message that
 * contains want; the failed sig is freed and nothing may leak. */
static void
sig_refused(capffi_ctx *ctx, const char *text, const char *want)
{
    struct capffi__sig sig;
    long live = capffi__alloc_live();
    int rc = capffi__sig_parse(ctx, &sig, text);
    capffi__sig_free(&sig);
    if (rc != CAPFFI_ESIG)
        fail_msg("'%s' gave %s, expected CAPFFI_ESIG (%s)", text,
                 capffi_err_name(rc), capffi_ctx_errmsg(ctx));
    const char *msg = capffi_ctx_errmsg(ctx);
    if (strncmp(msg, "signature ", 10) != 0 || !strstr(msg, want))
        fail_msg("'%s': message \"%s\" lacks \"%s\"", text, msg, want);
    if (capffi__alloc_live() != live)
        fail_msg("'%s': %ld blocks leaked", text, capffi__alloc_live() - live);
}

/* The same for one type expression (capffi__type_parse). */
static void
type_refused(capffi_ctx *ctx, const char *text, const char *want)
{
    struct capffi__arena a = { NULL };
    const struct capffi__type *t = NULL;
    long live = capffi__alloc_live();
    int rc = capffi__type_parse(ctx, &a, "type", text, &t);
    capffi__arena_free(&a);
    if (rc != CAPFFI_ESIG)
        fail_msg("type '%s' gave %s, expected CAPFFI_ESIG (%s)", text,
                 capffi_err_name(rc), capffi_ctx_errmsg(ctx));
    const char *msg = capffi_ctx_errmsg(ctx);
    if (strncmp(msg, "type ", 5) != 0 || !strstr(msg, want))
        fail_msg("type '%s': message \"%s\" lacks \"%s\"", text, msg, want);
    assert_int_equal(capffi__alloc_live(), live);
}

static size_t
size_of(capffi_ctx *ctx, const char *type, size_t *align)
{
    size_t size = 0;
    int rc = capffi_type_size(&size, align, ctx, type);
    if (rc)
        fail_msg("capffi_type_size('%s'): %s: %s", type, capffi_err_name(rc),
                 capffi_ctx_errmsg(ctx));
    return size;
}

static size_t
offset_of(capffi_ctx *ctx, const char *type, const char *field)
{
    size_t off = 0;
    int rc = capffi_type_offset(&off, ctx, type, field);
    if (rc)
        fail_msg("capffi_type_offset('%s', '%s'): %s: %s", type, field,
                 capffi_err_name(rc), capffi_ctx_errmsg(ctx));
    return off;
}

/* A malloc'd string: prefix, then unit repeated n times with sep between,
 * then suffix. */
static char *
repeat(const char *prefix, const char *unit, const char *sep, size_t n,
       const char *suffix)
{
    size_t len =
        strlen(prefix) + n * (strlen(unit) + strlen(sep)) + strlen(suffix) + 1;
    char *s = malloc(len);
    assert_non_null(s);
    strcpy(s, prefix);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(s, sep);
        strcat(s, unit);
    }
    strcat(s, suffix);
    return s;
}

/* Function addresses as the void * capffi wants, without the pedantic
 * warning a direct cast would raise. */
typedef void (*any_fn)(void);

static void *
code_of(any_fn fp)
{
    void *p;
    memcpy(&p, &fp, sizeof p);
    return p;
}

#define CODE(f) code_of((any_fn)(f))

static const struct {
    const char *word;
    enum capffi__kind kind;
    size_t size, align;
    ffi_type *ffi; /* the signedness and width libffi passes */
} scalar_table[] = {
    { "bool", CAPFFI__BOOL, sizeof(bool), alignof(bool), &ffi_type_uint8 },
    { "i8", CAPFFI__I8, sizeof(int8_t), alignof(int8_t), &ffi_type_sint8 },
    { "u8", CAPFFI__U8, sizeof(uint8_t), alignof(uint8_t), &ffi_type_uint8 },
    { "i16", CAPFFI__I16, sizeof(int16_t), alignof(int16_t), &ffi_type_sint16 },
    { "u16", CAPFFI__U16, sizeof(uint16_t), alignof(uint16_t),
      &ffi_type_uint16 },
    { "i32", CAPFFI__I32, sizeof(int32_t), alignof(int32_t), &ffi_type_sint32 },
    { "u32", CAPFFI__U32, sizeof(uint32_t), alignof(uint32_t),
      &ffi_type_uint32 },
    { "i64", CAPFFI__I64, sizeof(int64_t), alignof(int64_t), &ffi_type_sint64 },
    { "u64", CAPFFI__U64, sizeof(uint64_t), alignof(uint64_t),
      &ffi_type_uint64 },
    { "isize", CAPFFI__ISIZE, sizeof(ptrdiff_t), alignof(ptrdiff_t),
      &ffi_type_sint64 },
    { "usize", CAPFFI__USIZE, sizeof(size_t), alignof(size_t),
      &ffi_type_uint64 },
    { "f32", CAPFFI__F32, sizeof(float), alignof(float), &ffi_type_float },
    { "f64", CAPFFI__F64, sizeof(double), alignof(double), &ffi_type_double },
    { "pointer", CAPFFI__POINTER, sizeof(void *), alignof(void *),
      &ffi_type_pointer },
    { "buffer", CAPFFI__BUFFER, sizeof(void *), alignof(void *),
      &ffi_type_pointer },
    { "function", CAPFFI__FUNCTION, sizeof(any_fn), alignof(any_fn),
      &ffi_type_pointer },
    { "cstring", CAPFFI__CSTRING, sizeof(char *), alignof(char *),
      &ffi_type_pointer },
};

#define NSCALARS (sizeof scalar_table / sizeof scalar_table[0])

/* ---- scalars ----------------------------------------------------------- */

static void
sig_scalars_as_params_and_results(void **state)
{
    struct fx *f = *state;
    for (size_t i = 0; i < NSCALARS; i++) {
        char text[64];
        struct capffi__sig sig;
        const char *w = scalar_table[i].word;
        bool is_buffer = scalar_table[i].kind == CAPFFI__BUFFER;
        snprintf(text, sizeof text, "(%s) -> %s", w, is_buffer ? "i32" : w);
        parse_ok(f->ctx, &sig, text);
        assert_int_equal(sig.nargs, 1);
        assert_int_equal(sig.nfixed, 1);
        assert_false(sig.variadic);
        assert_int_equal(sig.args[0]->kind, scalar_table[i].kind);
        assert_string_equal(sig.args[0]->name, w);
        assert_ptr_equal(sig.args[0]->ffi, scalar_table[i].ffi);
        assert_ptr_equal(sig.atypes[0], scalar_table[i].ffi);
        assert_null(sig.atypes[1]);
        if (!is_buffer) {
            assert_int_equal(sig.ret->kind, scalar_table[i].kind);
            assert_string_equal(sig.ret->name, w);
        }
        capffi__sig_free(&sig);
    }
    /* Several at once keep their order. */
    struct capffi__sig sig;
    parse_ok(f->ctx, &sig,
             "(bool, i8, u8, i16, u16, i32, u32, i64, u64, isize, usize, "
             "f32, f64, pointer, buffer, function, cstring) -> void");
    assert_int_equal(sig.nargs, NSCALARS);
    for (size_t i = 0; i < NSCALARS; i++)
        assert_int_equal(sig.args[i]->kind, scalar_table[i].kind);
    assert_int_equal(sig.ret->kind, CAPFFI__VOID);
    capffi__sig_free(&sig);
    /* No parameters at all. */
    parse_ok(f->ctx, &sig, "() -> i32");
    assert_int_equal(sig.nargs, 0);
    assert_int_equal(sig.ret->kind, CAPFFI__I32);
    capffi__sig_free(&sig);
}

static void
sig_scalar_sizes_match_c(void **state)
{
    struct fx *f = *state;
    for (size_t i = 0; i < NSCALARS; i++) {
        size_t align = 0;
        size_t size = size_of(f->ctx, scalar_table[i].word, &align);
        if (size != scalar_table[i].size || align != scalar_table[i].align)
            fail_msg("%s: size %zu align %zu, C says %zu and %zu",
                     scalar_table[i].word, size, align, scalar_table[i].size,
                     scalar_table[i].align);
    }
    /* The sizes the documentation promises on LP64. */
    assert_int_equal(size_of(f->ctx, "bool", NULL), 1);
    assert_int_equal(size_of(f->ctx, "isize", NULL), 8);
    assert_int_equal(size_of(f->ctx, "usize", NULL), 8);
    assert_int_equal(size_of(f->ctx, "f32", NULL), 4);
    assert_int_equal(size_of(f->ctx, "f64", NULL), 8);
    assert_int_equal(size_of(f->ctx, "pointer", NULL), 8);
    assert_int_equal(size_of(f->ctx, "function", NULL), 8);
    assert_int_equal(size_of(f->ctx, "cstring", NULL), 8);
    assert_int_equal(size_of(f->ctx, "*Point", NULL), 8);
    /* Keywords are case-sensitive and whole words. */
    type_refused(f->ctx, "I32", "unknown type name 'I32'");
    type_refused(f->ctx, "i32x", "unknown type name 'i32x'");
    type_refused(f->ctx, "int", "type byte 0: unknown type name 'int'");
}

static void
sig_whitespace_is_free(void **state)
{
    struct fx *f = *state;
    struct capffi__sig sig;
    parse_ok(f->ctx, &sig, "\n(\ti32 ,\r\n  f64\t)\n->\n\tu8\n");
    assert_int_equal(sig.nargs, 2);
    assert_int_equal(sig.args[0]->kind, CAPFFI__I32);
    assert_int_equal(sig.args[1]->kind, CAPFFI__F64);
    assert_int_equal(sig.ret->kind, CAPFFI__U8);
    capffi__sig_free(&sig);
    /* None at all. */
    parse_ok(f->ctx, &sig, "(i32,{a:u8,b:u16},*Point,...:f64)->{c:u8}");
    assert_int_equal(sig.nargs, 4);
    assert_int_equal(sig.nfixed, 3);
    assert_string_equal(sig.args[1]->fields[1].name, "b");
    assert_int_equal(sig.args[2]->kind, CAPFFI__TPTR);
    capffi__sig_free(&sig);
    /* Field names may be spaced from their colon. */
    parse_ok(f->ctx, &sig, "({\n\tx\t:\tf64 ,\n y :f64\n}\n)\t->\tvoid");
    assert_string_equal(sig.args[0]->fields[0].name, "x");
    assert_string_equal(sig.args[0]->fields[1].name, "y");
    assert_int_equal(sig.args[0]->size, sizeof(struct pt));
    capffi__sig_free(&sig);
    /* But not inside a token. */
    sig_refused(f->ctx, "(i 32) -> i32", "unknown type name 'i'");
    sig_refused(f->ctx, "(i32) - > i32", "signature byte 6: expected '->'");
    sig_refused(f->ctx, "(i32, . . .: i32) -> i32",
                "signature byte 6: expected a type, found '.'");
}

/* ---- void and buffer ------------------------------------------------------
 */

static void
sig_void_only_as_result(void **state)
{
    struct fx *f = *state;
    struct capffi__sig sig;
    parse_ok(f->ctx, &sig, "() -> void");
    assert_int_equal(sig.nargs, 0);
    assert_int_equal(sig.ret->kind, CAPFFI__VOID);
    capffi__sig_free(&sig);
    sig_refused(f->ctx, "(void) -> i32",
                "signature byte 1: void is only allowed as the result");
    sig_refused(f->ctx, "(i32, void) -> i32",
                "signature byte 6: void is only allowed as the result");
    sig_refused(f->ctx, "(cstring, ...: void) -> i32",
                "signature byte 15: void is only allowed as the result");
    sig_refused(f->ctx, "({ void }) -> i32",
                "signature byte 3: void cannot be a struct field");
    sig_refused(f->ctx, "() -> { a: void }",
                "signature byte 11: void cannot be a struct field");
    type_refused(f->ctx, "void", "type byte 0: void is not a value type");
    size_t sz = 99;
    assert_rc(capffi_type_size(&sz, NULL, f->ctx, "void"), CAPFFI_ESIG);
    assert_int_equal(sz, 0);
}

static void
sig_buffer_refused_as_result_and_field(void **state)
{
    struct fx *f = *state;
    struct capffi__sig sig;
    parse_ok(f->ctx, &sig, "(buffer, usize) -> isize");
    assert_int_equal(sig.args[0]->kind, CAPFFI__BUFFER);
    capffi__sig_free(&sig);
    sig_refused(f->ctx, "() -> buffer",
                "signature byte 6: buffer cannot be a result (use pointer)");
    sig_refused(f->ctx, "({ p: buffer }) -> void",
                "signature byte 6: buffer cannot be a struct field "
                "(use pointer)");
    sig_refused(f->ctx, "() -> { i32, { buffer } }",
                "signature byte 15: buffer cannot be a struct field");
    sig_refused(f->ctx, "(i32, ...: buffer) -> i32",
                "signature byte 11: buffer cannot be variadic (use pointer)");
    assert_rc(capffi_type_define(f->ctx, "Buf", "{ data: buffer, n: usize }"),
              CAPFFI_ESIG);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx),
                           "layout byte 8: buffer cannot be a struct field"));
    size_t sz;
    assert_rc(capffi_type_size(&sz, NULL, f->ctx, "Buf"), CAPFFI_ESIG);
}

/* ---- structs ------------------------------------------------------------ */

static void
sig_struct_by_value_nested(void **state)
{
    struct fx *f = *state;
    struct inner {
        int32_t i;
        int64_t l;
    };
    struct two {
        uint8_t u;
        struct inner in;
    };
    struct ret {
        uint8_t a;
        struct {
            uint16_t c;
        } b;
    };
    struct capffi__sig sig;
    parse_ok(f->ctx, &sig,
             "({ x: f64, y: f64 }, { u8, { i32, i64 } }) -> "
             "{ a: u8, b: { c: u16 } }");
    assert_int_equal(sig.nargs, 2);
    const struct capffi__type *a0 = sig.args[0], *a1 = sig.args[1];
    assert_int_equal(a0->kind, CAPFFI__STRUCT);
    assert_int_equal(a0->nfields, 2);
    assert_string_equal(a0->fields[0].name, "x");
    assert_string_equal(a0->fields[1].name, "y");
    assert_int_equal(a0->fields[1].offset, offsetof(struct pt, y));
    assert_int_equal(a0->size, sizeof(struct pt));
    assert_ptr_equal(sig.atypes[0], a0->ffi);
    assert_int_equal(a0->ffi->type, FFI_TYPE_STRUCT);

    assert_int_equal(a1->nfields, 2);
    assert_null(a1->fields[0].name); /* names are optional */
    assert_null(a1->fields[1].name);
    assert_int_equal(a1->fields[1].type->kind, CAPFFI__STRUCT);
    assert_int_equal(a1->fields[1].type->nfields, 2);
    assert_int_equal(a1->fields[1].offset, offsetof(struct two, in));
    assert_int_equal(a1->fields[1].type->fields[1].offset,
                     offsetof(struct inner, l));
    assert_int_equal(a1->size, sizeof(struct two));
    assert_int_equal(a1->align, alignof(struct two));

    assert_int_equal(sig.ret->kind, CAPFFI__STRUCT);
    assert_int_equal(sig.ret->size, sizeof(struct ret));
    assert_int_equal(sig.ret->fields[1].offset, offsetof(struct ret, b));
    capffi__sig_free(&sig);

    /* Named and unnamed fields may mix. */
    parse_ok(f->ctx, &sig, "({ u8, b: u16, f32 }) -> void");
    assert_null(sig.args[0]->fields[0].name);
    assert_string_equal(sig.args[0]->fields[1].name, "b");
    assert_null(sig.args[0]->fields[2].name);
    assert_int_equal(sig.args[0]->fields[2].offset, 4);
    capffi__sig_free(&sig);

    /* Field names are identifiers of at most 63 bytes. */
    char *text = repeat("({ ", "f", "", 63, ": u8 }) -> void");
    parse_ok(f->ctx, &sig, text);
    assert_int_equal(strlen(sig.args[0]->fields[0].name), 63);
    capffi__sig_free(&sig);
    free(text);
    text = repeat("({ ", "f", "", 64, ": u8 }) -> void");
    sig_refused(f->ctx, text,
                "signature byte 3: field name longer than 63 bytes");
    free(text);

    /* Malformed structs. */
    sig_refused(f->ctx, "({ i32 i32 }) -> void",
                "signature byte 7: expected ',' or '}', found 'i32'");
    sig_refused(f->ctx, "({ i32, }) -> void",
                "signature byte 8: expected a type, found '}'");
    sig_refused(f->ctx, "({ i32 ) -> void",
                "signature byte 7: expected ',' or '}', found ')'");
    sig_refused(f->ctx, "({ a: }) -> void",
                "signature byte 6: expected a type, found '}'");
    sig_refused(f->ctx, "({ : i32 }) -> void",
                "signature byte 3: expected a type, found ':'");
}

static void
sig_struct_duplicate_field_names(void **state)
{
    struct fx *f = *state;
    sig_refused(f->ctx, "({ a: u8, a: u16 }) -> void",
                "signature byte 10: duplicate field name 'a'");
    sig_refused(f->ctx, "({ a: u8, b: u8, a: u8 }) -> void",
                "duplicate field name 'a'");
    type_refused(f->ctx, "{ xy: u8, x: u8, xy: u8 }",
                 "type byte 17: duplicate field name 'xy'");
    assert_rc(capffi_type_define(f->ctx, "Dup", "{ a: u8, a: u8 }"),
              CAPFFI_ESIG);
    /* Names that merely share a prefix, or repeat in a nested struct, or
     * unnamed fields, are fine. */
    struct capffi__sig sig;
    parse_ok(f->ctx, &sig, "({ a: u8, ab: u8, b: { a: u8 }, u8, u8 }) -> void");
    assert_int_equal(sig.args[0]->nfields, 5);
    capffi__sig_free(&sig);
}

static void
sig_empty_struct_refused(void **state)
{
    struct fx *f = *state;
    sig_refused(f->ctx, "({}) -> void",
                "signature byte 2: a struct needs at least one field");
    sig_refused(f->ctx, "() -> { \n }",
                "signature byte 10: a struct needs at least one field");
    sig_refused(f->ctx, "({ { } }) -> void",
                "signature byte 5: a struct needs at least one field");
    type_refused(f->ctx, "{}", "a struct needs at least one field");
    assert_rc(capffi_type_define(f->ctx, "Empty", "{ }"), CAPFFI_ESIG);
}

static void
sig_unknown_type_names(void **state)
{
    struct fx *f = *state;
    sig_refused(f->ctx, "(int) -> void",
                "signature byte 1: unknown type name 'int'");
    sig_refused(f->ctx, "(i32) -> double",
                "signature byte 9: unknown type name 'double'");
    sig_refused(f->ctx, "({ x: Vec3 }) -> void",
                "signature byte 6: unknown type name 'Vec3'");
    sig_refused(f->ctx, "(point) -> void", "unknown type name 'point'");
    sig_refused(f->ctx, "(Point2) -> void", "unknown type name 'Point2'");
    sig_refused(f->ctx, "(1) -> void",
                "signature byte 1: expected a type, found '1'");
    /* A name too long to be defined is unknown, not a crash. */
    char *text = repeat("(", "A", "", 200, ") -> void");
    sig_refused(f->ctx, text, "signature byte 1: unknown type name 'AAAA");
    free(text);
}

/* A C type name gets the word the signature language uses for it. */
static void
sig_c_type_names_get_their_capffi_name(void **state)
{
    struct fx *f = *state;
    sig_refused(f->ctx, "(int) -> void",
                "unknown type name 'int': C's int is 'i32' here");
    sig_refused(f->ctx, "(size_t, u8) -> void", "C's size_t is 'usize'");
    sig_refused(f->ctx, "(char *) -> i32", "a C string (char *) is 'cstring'");
    sig_refused(f->ctx, "(const char *) -> i32",
                "signatures have no const (a const char * is 'cstring')");
    sig_refused(f->ctx, "(uint8_t *) -> void",
                "C's uint8_t is 'u8' here (a pointer: 'pointer' or *NAME)");
    sig_refused(f->ctx, "(Unknown) -> void", "unknown type name 'Unknown'");
}

static void
sig_typed_pointer_needs_defined_name(void **state)
{
    struct fx *f = *state;
    struct capffi__sig sig;
    parse_ok(f->ctx, &sig, "(*Point, * Point) -> *Point");
    assert_int_equal(sig.nargs, 2);
    assert_int_equal(sig.args[0]->kind, CAPFFI__TPTR);
    assert_string_equal(sig.args[0]->name, "Point");
    assert_int_equal(sig.args[0]->size, sizeof(void *));
    assert_ptr_equal(sig.args[0]->ffi, &ffi_type_pointer);
    assert_int_equal(sig.args[1]->kind, CAPFFI__TPTR);
    assert_int_equal(sig.ret->kind, CAPFFI__TPTR);
    capffi__sig_free(&sig);
    sig_refused(f->ctx, "(*Unknown) -> void",
                "signature byte 2: unknown type name 'Unknown'");
    sig_refused(f->ctx, "(*void) -> void",
                "signature byte 2: *void: a typed pointer points to a class");
    sig_refused(f->ctx, "(*) -> void",
                "signature byte 2: expected a class name after '*', "
                "found ')'");
    sig_refused(f->ctx, "(**Point) -> void",
                "signature byte 2: expected a class name after '*', "
                "found '*'");
    sig_refused(f->ctx, "(*{ i32 }) -> void",
                "expected a class name after '*'");
    type_refused(f->ctx, "*Unknown", "type byte 1: unknown type name");
}

/* ---- named types --------------------------------------------------------- */

static void
sig_type_define_valid_and_nested(void **state)
{
    struct fx *f = *state;
    struct box {
        uint8_t tag;
        struct rect r;
        struct rect *next;
    };
    size_t align;
    assert_int_equal(size_of(f->ctx, "Point", &align), sizeof(struct pt));
    assert_int_equal(align, alignof(struct pt));
    assert_ok(capffi_type_define(f->ctx, "Rect", "{ min: Point, max: Point }"));
    assert_int_equal(size_of(f->ctx, "Rect", &align), sizeof(struct rect));
    assert_int_equal(offset_of(f->ctx, "Rect", "max"),
                     offsetof(struct rect, max));
    assert_ok(capffi_type_define(f->ctx, "Box",
                                 "\n\t{ tag: u8, r: Rect, next: *Rect }"));
    assert_int_equal(size_of(f->ctx, "Box", &align), sizeof(struct box));
    assert_int_equal(align, alignof(struct box));
    assert_int_equal(offset_of(f->ctx, "Box", "r"), offsetof(struct box, r));
    assert_int_equal(offset_of(f->ctx, "Box", "next"),
                     offsetof(struct box, next));
    /* A struct expression may use the names. */
    assert_int_equal(size_of(f->ctx, "{ u8, Box }", NULL),
                     8 + sizeof(struct box));
    assert_ok(capffi_type_define(f->ctx, "_lower_9", "{ b: Box }"));

    struct capffi__sig sig;
    parse_ok(f->ctx, &sig, "(Box, *Box, _lower_9) -> Rect");
    assert_int_equal(sig.args[0]->kind, CAPFFI__STRUCT);
    assert_string_equal(sig.args[0]->name, "Box");
    assert_int_equal(sig.args[0]->size, sizeof(struct box));
    assert_int_equal(sig.args[1]->kind, CAPFFI__TPTR);
    assert_string_equal(sig.args[1]->name, "Box");
    assert_int_equal(sig.args[2]->size, sizeof(struct box));
    assert_string_equal(sig.ret->name, "Rect");
    assert_int_equal(sig.ret->fields[1].type->kind, CAPFFI__STRUCT);
    assert_string_equal(sig.ret->fields[1].type->name, "Point");
    capffi__sig_free(&sig);

    /* Names are case-sensitive and may be 63 bytes long. */
    char name[64];
    memset(name, 'N', 63);
    name[63] = '\0';
    assert_ok(capffi_type_define(f->ctx, name, "{ i16 }"));
    assert_int_equal(size_of(f->ctx, name, NULL), 2);
    type_refused(f->ctx, "point", "unknown type name 'point'");
}

static void
sig_type_define_refusals(void **state)
{
    struct fx *f = *state;
    long live = capffi__alloc_live();
    /* Redefinition, even with the same layout. */
    assert_rc(capffi_type_define(f->ctx, "Point", "{ i32 }"), CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "already defined"));
    assert_rc(capffi_type_define(f->ctx, "Point", "{ x: f64, y: f64 }"),
              CAPFFI_EINVAL);
    assert_int_equal(size_of(f->ctx, "Point", NULL), 16); /* unchanged */
    /* Built-in names. */
    for (size_t i = 0; i < NSCALARS; i++) {
        assert_rc(capffi_type_define(f->ctx, scalar_table[i].word, "{ u8 }"),
                  CAPFFI_EINVAL);
        assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "built-in"));
    }
    assert_rc(capffi_type_define(f->ctx, "void", "{ u8 }"), CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "built-in"));
    assert_int_equal(size_of(f->ctx, "i32", NULL), 4); /* still a scalar */
    /* Not identifiers. */
    const char *bad[] = { "",       "1abc",         "a-b", "a b",
                          "Point ", "P\xc3\xb6int", "*P",  "{ u8 }",
                          "a:b",    "\x1b[2J" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_rc(capffi_type_define(f->ctx, bad[i], "{ u8 }"), CAPFFI_EINVAL);
        assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "identifier"));
    }
    char longname[65];
    memset(longname, 'L', 64);
    longname[64] = '\0';
    assert_rc(capffi_type_define(f->ctx, longname, "{ u8 }"), CAPFFI_EINVAL);
    assert_rc(capffi_type_define(f->ctx, NULL, "{ u8 }"), CAPFFI_EINVAL);
    assert_rc(capffi_type_define(f->ctx, "Ok", NULL), CAPFFI_EINVAL);
    assert_rc(capffi_type_define(NULL, "Ok", "{ u8 }"), CAPFFI_EINVAL);
    /* Layouts that are not a struct. */
    assert_rc(capffi_type_define(f->ctx, "Alias", "i32"), CAPFFI_ESIG);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "expected '{'"));
    assert_rc(capffi_type_define(f->ctx, "Alias", "Point"), CAPFFI_ESIG);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "expected '{'"));
    assert_rc(capffi_type_define(f->ctx, "Alias", "*Point"), CAPFFI_ESIG);
    assert_rc(capffi_type_define(f->ctx, "Alias", "void"), CAPFFI_ESIG);
    assert_rc(capffi_type_define(f->ctx, "Alias", ""), CAPFFI_ESIG);
    assert_rc(capffi_type_define(f->ctx, "Alias", "{ u8 } x"), CAPFFI_ESIG);
    assert_non_null(
        strstr(capffi_ctx_errmsg(f->ctx), "layout byte 7: expected the end"));
    /* A layout cannot contain itself by value: the name does not exist
     * yet. Through a pointer it may (a list's next). */
    assert_rc(capffi_type_define(f->ctx, "Node", "{ next: Node }"),
              CAPFFI_ESIG);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx),
                           "layout byte 8: unknown type name 'Node'"));
    assert_rc(capffi_type_define(f->ctx, "Node", "{ v: i32, next: [2]Node }"),
              CAPFFI_ESIG);
    /* Nothing was defined by the failures, and nothing leaked. */
    type_refused(f->ctx, "Node", "unknown type name 'Node'");
    type_refused(f->ctx, "Alias", "unknown type name 'Alias'");
    type_refused(f->ctx, "Ok", "unknown type name 'Ok'");
    assert_int_equal(capffi__alloc_live(), live);
    /* The names are still free to define properly. */
    assert_ok(capffi_type_define(f->ctx, "Alias", "{ i32 }"));
    assert_ok(capffi_type_define(f->ctx, "Node", "{ v: i32, p: *Alias }"));
    assert_int_equal(offset_of(f->ctx, "Node", "p"), 8);
    assert_ok(capffi_type_define(f->ctx, "List", "{ v: i32, next: *List }"));
    assert_int_equal(offset_of(f->ctx, "List", "next"), 8);
}

static void
sig_type_offset_and_size_match_c(void **state)
{
    struct fx *f = *state;
    struct s1 {
        uint8_t a;
        double b;
        uint16_t c;
    };
    size_t align;
    const char *l1 = "{ a: u8, b: f64, c: u16 }";
    assert_int_equal(size_of(f->ctx, l1, &align), sizeof(struct s1));
    assert_int_equal(align, alignof(struct s1));
    assert_int_equal(offset_of(f->ctx, l1, "a"), offsetof(struct s1, a));
    assert_int_equal(offset_of(f->ctx, l1, "b"), offsetof(struct s1, b));
    assert_int_equal(offset_of(f->ctx, l1, "c"), offsetof(struct s1, c));
    assert_ok(capffi_type_define(f->ctx, "S1", l1));
    assert_int_equal(size_of(f->ctx, "S1", NULL), sizeof(struct s1));
    assert_int_equal(offset_of(f->ctx, "S1", "c"), offsetof(struct s1, c));

    struct s2_in {
        uint16_t c;
        float d;
    };
    struct s2 {
        bool flag;
        struct s2_in in;
        int64_t e;
        int8_t g;
        struct s1 s;
        void *p;
        uint32_t h;
    };
    const char *l2 = "{ flag: bool, in: { c: u16, d: f32 }, e: i64, g: i8,"
                     " s: S1, p: cstring, h: u32 }";
    assert_int_equal(size_of(f->ctx, l2, &align), sizeof(struct s2));
    assert_int_equal(align, alignof(struct s2));
    assert_int_equal(offset_of(f->ctx, l2, "in"), offsetof(struct s2, in));
    assert_int_equal(offset_of(f->ctx, l2, "e"), offsetof(struct s2, e));
    assert_int_equal(offset_of(f->ctx, l2, "g"), offsetof(struct s2, g));
    assert_int_equal(offset_of(f->ctx, l2, "s"), offsetof(struct s2, s));
    assert_int_equal(offset_of(f->ctx, l2, "p"), offsetof(struct s2, p));
    assert_int_equal(offset_of(f->ctx, l2, "h"), offsetof(struct s2, h));

    struct s3 {
        float a;
        uint8_t b[3]; /* three unnamed u8 fields */
    };
    assert_int_equal(size_of(f->ctx, "{ f32, u8, u8, last: u8 }", NULL),
                     sizeof(struct s3));
    assert_int_equal(offset_of(f->ctx, "{ f32, u8, u8, last: u8 }", "last"),
                     offsetof(struct s3, b) + 2);
    assert_int_equal(offset_of(f->ctx, "Point", "y"), offsetof(struct pt, y));

    size_t off = 99;
    assert_rc(capffi_type_offset(&off, f->ctx, l1, "d"), CAPFFI_ENOTFOUND);
    assert_int_equal(off, 0);
    assert_rc(capffi_type_offset(&off, f->ctx, "{ u8, u16 }", ""),
              CAPFFI_ENOTFOUND);
    /* Nested fields are not reached by a plain name, but by a path. */
    assert_rc(capffi_type_offset(&off, f->ctx, l2, "d"), CAPFFI_ENOTFOUND);
    assert_int_equal(offset_of(f->ctx, l2, "in.d"),
                     offsetof(struct s2, in) + offsetof(struct s2_in, d));
    assert_int_equal(offset_of(f->ctx, l2, "1.1"),
                     offsetof(struct s2, in) + offsetof(struct s2_in, d));
    assert_rc(capffi_type_offset(&off, f->ctx, l2, "in."), CAPFFI_ENOTFOUND);
    assert_rc(capffi_type_offset(&off, f->ctx, l2, "e.x"), CAPFFI_ENOTFOUND);
    assert_rc(capffi_type_offset(&off, f->ctx, l2, "7"), CAPFFI_ENOTFOUND);
    assert_rc(capffi_type_offset(&off, f->ctx, "i32", "a"), CAPFFI_EINVAL);
    assert_rc(capffi_type_offset(&off, f->ctx, "*Point", "x"), CAPFFI_EINVAL);
    assert_rc(capffi_type_offset(&off, f->ctx, "{ a: u8 ", "a"), CAPFFI_ESIG);
    assert_rc(capffi_type_offset(&off, f->ctx, l1, NULL), CAPFFI_EINVAL);
    size_t sz;
    assert_rc(capffi_type_size(NULL, NULL, f->ctx, "i32"), CAPFFI_EINVAL);
    assert_rc(capffi_type_size(&sz, NULL, f->ctx, "{ u8 } }"), CAPFFI_ESIG);
}

/* ---- variadic tails ------------------------------------------------------ */

static void
sig_variadic_tail(void **state)
{
    struct fx *f = *state;
    struct capffi__sig sig;
    parse_ok(f->ctx, &sig, "(cstring, ...: i32, f64) -> i32");
    assert_true(sig.variadic);
    assert_int_equal(sig.nfixed, 1);
    assert_int_equal(sig.nargs, 3);
    assert_int_equal(sig.args[0]->kind, CAPFFI__CSTRING);
    assert_int_equal(sig.args[1]->kind, CAPFFI__I32);
    assert_int_equal(sig.args[2]->kind, CAPFFI__F64);
    assert_ptr_equal(sig.atypes[2], &ffi_type_double);
    capffi__sig_free(&sig);
    /* Everything that C does not promote may be variadic. */
    parse_ok(f->ctx, &sig,
             "(i32, u8, ...: i32, u32, i64, u64, isize, usize, f64, pointer,"
             " function, cstring, *Point) -> void");
    assert_true(sig.variadic);
    assert_int_equal(sig.nfixed, 2);
    assert_int_equal(sig.nargs, 13);
    assert_int_equal(sig.args[12]->kind, CAPFFI__TPTR);
    capffi__sig_free(&sig);
    /* A signature without a tail is not variadic. */
    parse_ok(f->ctx, &sig, "(cstring, i32) -> i32");
    assert_false(sig.variadic);
    assert_int_equal(sig.nfixed, 2);
    capffi__sig_free(&sig);
}

static void
sig_variadic_needs_fixed_param(void **state)
{
    struct fx *f = *state;
    sig_refused(f->ctx, "(...: i32) -> i32",
                "signature byte 1: a variadic function needs a fixed "
                "parameter before '...'");
    sig_refused(f->ctx, "( ...: i32, f64) -> i32", "signature byte 2:");
}

static void
sig_variadic_refuses_promoted_types(void **state)
{
    struct fx *f = *state;
    sig_refused(f->ctx, "(cstring, ...: f32) -> i32",
                "signature byte 15: f32 cannot be variadic: C promotes it, "
                "declare f64");
    const char *small[] = { "bool", "i8", "u8", "i16", "u16" };
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        char text[64], want[96];
        snprintf(text, sizeof text, "(cstring, ...: i32, %s) -> i32", small[i]);
        snprintf(want, sizeof want,
                 "signature byte 20: %s cannot be variadic: C promotes it, "
                 "declare i32",
                 small[i]);
        sig_refused(f->ctx, text, want);
    }
    sig_refused(f->ctx, "(cstring, ...: i32, { i32 }) -> i32",
                "signature byte 20: structs cannot be variadic arguments");
    sig_refused(f->ctx, "(cstring, ...: Point) -> i32",
                "signature byte 15: structs cannot be variadic arguments");
    /* The same types are fine as fixed parameters. */
    struct capffi__sig sig;
    parse_ok(f->ctx, &sig,
             "(f32, bool, i8, u8, i16, u16, Point, ...: i32)"
             " -> f32");
    assert_int_equal(sig.nfixed, 7);
    capffi__sig_free(&sig);
}

static void
sig_variadic_needs_colon(void **state)
{
    struct fx *f = *state;
    sig_refused(f->ctx, "(i32, ...) -> i32",
                "signature byte 9: expected ':' and the variadic types after "
                "'...', found ')'");
    sig_refused(f->ctx, "(i32, ... i32) -> i32",
                "signature byte 10: expected ':' and the variadic types");
    sig_refused(f->ctx, "(i32, ...:) -> i32",
                "signature byte 10: expected a type, found ')'");
    /* Only one tail, and nothing after '...' but types. */
    sig_refused(f->ctx, "(i32, ...: i32, ...: i32) -> i32",
                "signature byte 16: expected a type, found '.'");
    sig_refused(f->ctx, "(i32, ....: i32) -> i32",
                "expected ':' and the variadic types");
}

/* ---- the shape of a signature -------------------------------------------- */

static void
sig_trailing_garbage_refused(void **state)
{
    struct fx *f = *state;
    sig_refused(f->ctx, "(i32) -> i32 x",
                "signature byte 13: expected the end, found 'x'");
    sig_refused(f->ctx, "(i32) -> i32;",
                "signature byte 12: expected the end, found ';'");
    sig_refused(f->ctx, "(i32) -> i32 -> i32",
                "signature byte 13: expected the end, found '-'");
    sig_refused(f->ctx, "(i32) -> { u8 } }",
                "signature byte 16: expected the end, found '}'");
    sig_refused(f->ctx, "(i32) -> i32, f64", "expected the end, found ','");
    /* Trailing whitespace is not garbage. */
    struct capffi__sig sig;
    parse_ok(f->ctx, &sig, "(i32) -> i32 \t\r\n");
    capffi__sig_free(&sig);
}

static void
sig_missing_arrow_or_paren(void **state)
{
    struct fx *f = *state;
    sig_refused(f->ctx, "(i32) i32",
                "signature byte 6: expected '->' and the result type, found "
                "'i32'");
    sig_refused(f->ctx, "(i32)",
                "signature byte 5: expected '->' and the "
                "result type, found the end");
    sig_refused(f->ctx, "(i32) => i32", "signature byte 6: expected '->'");
    sig_refused(f->ctx, "(i32) ->",
                "signature byte 8: expected a type, "
                "found the end");
    sig_refused(f->ctx, "(i32 -> i32",
                "signature byte 5: expected ',' or ')', found '-'");
    sig_refused(f->ctx, "(i32, f64", "signature byte 9: expected ',' or ')'");
    sig_refused(f->ctx, "i32) -> i32",
                "signature byte 0: expected '(', found 'i32'");
    sig_refused(f->ctx, "-> i32", "signature byte 0: expected '('");
    sig_refused(f->ctx, "", "signature byte 0: expected '(', found the end");
    sig_refused(f->ctx, " \t\n",
                "signature byte 3: expected '(', found "
                "the end");
    sig_refused(f->ctx, "[i32] -> i32", "expected '(', found '['");
}

/* ---- limits -------------------------------------------------------------- */

static void
sig_max_args_limit(void **state)
{
    struct fx *f = *state;
    struct capffi__sig sig;
    char *text = repeat("(", "i32", ", ", CAPFFI_MAX_ARGS, ") -> i32");
    parse_ok(f->ctx, &sig, text);
    assert_int_equal(sig.nargs, CAPFFI_MAX_ARGS);
    assert_int_equal(sig.nfixed, CAPFFI_MAX_ARGS);
    capffi__sig_free(&sig);
    free(text);
    /* The 65th parameter starts at byte 1 + 5 * 64. */
    text = repeat("(", "i32", ", ", CAPFFI_MAX_ARGS + 1, ") -> i32");
    sig_refused(f->ctx, text, "signature byte 321: more than 64 parameters");
    free(text);
    /* Fixed and variadic count together. */
    text =
        repeat("(cstring, ...: ", "i32", ", ", CAPFFI_MAX_ARGS - 1, ") -> i32");
    parse_ok(f->ctx, &sig, text);
    assert_int_equal(sig.nargs, CAPFFI_MAX_ARGS);
    assert_int_equal(sig.nfixed, 1);
    capffi__sig_free(&sig);
    free(text);
    text = repeat("(cstring, ...: ", "i32", ", ", CAPFFI_MAX_ARGS, ") -> i32");
    sig_refused(f->ctx, text, "more than 64 parameters");
    free(text);
    /* The limit holds through a function binding too. */
    text = repeat("(", "i32", ", ", CAPFFI_MAX_ARGS + 1, ") -> i32");
    capffi_fn *fn = (capffi_fn *)1;
    assert_rc(capffi_fn_from_ptr(&fn, f->ctx, &f->tok, CODE(abort), text, 0),
              CAPFFI_ESIG);
    assert_null(fn);
    free(text);
}

static void
sig_nesting_depth_limit(void **state)
{
    struct fx *f = *state;
    struct capffi__sig sig;
    char *open = repeat("(", "{", "", 16, "u8");
    char *text = repeat(open, "}", "", 16, ") -> void");
    parse_ok(f->ctx, &sig, text);
    assert_int_equal(sig.args[0]->size, 1);
    capffi__sig_free(&sig);
    free(text);
    free(open);
    /* The 17th '{' is byte 17. */
    open = repeat("(", "{", "", 17, "u8");
    text = repeat(open, "}", "", 17, ") -> void");
    sig_refused(f->ctx, text,
                "signature byte 17: structs nested deeper than 16");
    free(text);
    free(open);
    /* Deep nesting without the closing braces is refused the same way. */
    text = repeat("() -> ", "{", "", 1000, "");
    sig_refused(f->ctx, text, "structs nested deeper than 16");
    free(text);
    /* Depth is per path, not a running total: many siblings are fine. */
    open = repeat("", "{", "", 15, "u8");
    char *deep15 = repeat(open, "}", "", 15, "");
    text = repeat("({", deep15, ",", 20, "}) -> void");
    parse_ok(f->ctx, &sig, text);
    assert_int_equal(sig.args[0]->nfields, 20);
    capffi__sig_free(&sig);
    free(text);
    free(deep15);
    free(open);
    /* Named types do not count as nesting of the text that uses them. */
    open = repeat("", "{", "", 16, "u8");
    text = repeat(open, "}", "", 16, "");
    assert_ok(capffi_type_define(f->ctx, "Deep", text));
    free(text);
    free(open);
    assert_ok(capffi_type_define(f->ctx, "Deeper", "{ Deep }"));
    assert_int_equal(size_of(f->ctx, "{ Deeper }", NULL), 1);
}

static void
sig_text_length_limit(void **state)
{
    struct fx *f = *state;
    struct capffi__sig sig;
    const char *tail = "i32) -> i32";
    size_t pad = CAPFFI__SIG_MAX_LEN - 1 - strlen(tail);
    char *text = repeat("(", " ", "", pad, tail);
    assert_int_equal(strlen(text), 4096);
    parse_ok(f->ctx, &sig, text);
    capffi__sig_free(&sig);
    free(text);
    text = repeat("(", " ", "", pad + 1, tail);
    assert_int_equal(strlen(text), 4097);
    sig_refused(f->ctx, text, "signature is longer than 4096 bytes");
    free(text);
    /* Much longer text is refused without being read to its end. */
    text = repeat("(", "i32", ", ", 100000, ") -> i32");
    sig_refused(f->ctx, text, "longer than 4096 bytes");
    free(text);
    /* The same limit for layouts and type expressions. */
    text = repeat("{", " ", "", 4097 - 5, "u8 }");
    assert_int_equal(strlen(text), 4097);
    assert_rc(capffi_type_define(f->ctx, "Long", text), CAPFFI_ESIG);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "longer than 4096"));
    type_refused(f->ctx, text, "type is longer than 4096 bytes");
    free(text);
    text = repeat("{", " ", "", 4096 - 5, "u8 }");
    assert_int_equal(strlen(text), 4096);
    assert_ok(capffi_type_define(f->ctx, "Long", text));
    assert_int_equal(size_of(f->ctx, "Long", NULL), 1);
    free(text);
}

static void
sig_field_count_limit(void **state)
{
    struct fx *f = *state;
    struct capffi__sig sig;
    char *text = repeat("({", "u8", ",", 256, "}) -> void");
    parse_ok(f->ctx, &sig, text);
    assert_int_equal(sig.args[0]->nfields, 256);
    assert_int_equal(sig.args[0]->size, 256);
    capffi__sig_free(&sig);
    free(text);
    /* The 257th field starts at byte 2 + 3 * 256. */
    text = repeat("({", "u8", ",", 257, "}) -> void");
    sig_refused(f->ctx, text,
                "signature byte 770: more than 256 fields in a struct");
    free(text);
    text = repeat("{", "u8", ",", 257, "}");
    assert_rc(capffi_type_define(f->ctx, "Wide", text), CAPFFI_ESIG);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx),
                           "layout byte 769: more than 256 fields"));
    free(text);
}

static void
sig_type_count_limit(void **state)
{
    struct fx *f = *state;
    assert_ok(capffi_type_define(f->ctx, "P", "{ u8 }"));
    /* Each *P and each struct is a type made while parsing: three structs
     * of 256 make 771, four make more than 1024. */
    char *inner = repeat("{", "*P", ",", 256, "}");
    char *text = repeat("{", inner, ",", 3, "}");
    assert_int_equal(size_of(f->ctx, text, NULL), 3 * 256 * sizeof(void *));
    free(text);
    text = repeat("{", inner, ",", 4, "}");
    assert_true(strlen(text) <= 4096);
    type_refused(f->ctx, text, "more than 1024 types in one text");
    free(text);
    text = repeat("(", inner, ",", 4, ") -> void");
    sig_refused(f->ctx, text, "more than 1024 types in one text");
    free(text);
    free(inner);
}

/* ---- messages and failures ------------------------------------------------
 */

static void
sig_nonprintable_bytes_named_in_hex(void **state)
{
    struct fx *f = *state;
    sig_refused(f->ctx, "(\x01) -> i32",
                "signature byte 1: expected a type, found byte 0x01");
    sig_refused(f->ctx, "(i32) -> i32\x1b[2J",
                "signature byte 12: expected the end, found byte 0x1b");
    sig_refused(f->ctx, "(i32)\x7f-> i32",
                "signature byte 5: expected '->' and the result type, "
                "found byte 0x7f");
    sig_refused(f->ctx, "(\xc3\xa9) -> i32",
                "signature byte 1: expected a type, found byte 0xc3");
    sig_refused(f->ctx, "\xff",
                "signature byte 0: expected '(', found byte "
                "0xff");
    sig_refused(f->ctx, "(i32\v) -> i32", "found byte 0x0b");
    sig_refused(f->ctx, "({ a: u8\x80 }) -> void",
                "signature byte 8: expected ',' or '}', found byte 0x80");
    /* The raw bytes never reach the message. */
    const char *msg = capffi_ctx_errmsg(f->ctx);
    for (const char *p = msg; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
    type_refused(f->ctx, "{ u8,\x1b }",
                 "type byte 5: expected a type, found "
                 "byte 0x1b");
}

static void
sig_null_text_is_einval(void **state)
{
    struct fx *f = *state;
    struct capffi__sig sig;
    long live = capffi__alloc_live();
    assert_rc(capffi__sig_parse(f->ctx, &sig, NULL), CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "signature is NULL"));
    capffi__sig_free(&sig);
    struct capffi__arena a = { NULL };
    const struct capffi__type *t;
    assert_rc(capffi__type_parse(f->ctx, &a, "type", NULL, &t), CAPFFI_EINVAL);
    capffi__arena_free(&a);
    size_t sz;
    assert_rc(capffi_type_size(&sz, NULL, f->ctx, NULL), CAPFFI_EINVAL);
    assert_rc(capffi_type_size(&sz, NULL, NULL, "i32"), CAPFFI_EINVAL);
    capffi_fn *fn = (capffi_fn *)1;
    assert_rc(capffi_fn_from_ptr(&fn, f->ctx, &f->tok, CODE(abort), NULL, 0),
              CAPFFI_EINVAL);
    assert_null(fn);
    assert_int_equal(capffi__alloc_live(), live);
}

static void
sig_failed_parse_leaks_nothing(void **state)
{
    struct fx *f = *state;
    /* Structs are made (in the sig's arena) before the failure is found:
     * the failed sig holds memory that capffi__sig_free must release. */
    const char *late[] = {
        "({ a: u8 }, { b: u16 }, { c: { d: i32 } }, nope) -> void",
        "({ a: u8 }, *Point, { u16 }) -> { x: f64, y: nope }",
        "({ a: u8 }, { b: u16 }) -> i32 trailing",
        "({ a: u8 }, ...: { u8 }) -> void",
        "({ a: u8 }, ...: i32) -> buffer",
    };
    for (size_t i = 0; i < sizeof late / sizeof late[0]; i++) {
        struct capffi__sig sig;
        long live = capffi__alloc_live();
        assert_rc(capffi__sig_parse(f->ctx, &sig, late[i]), CAPFFI_ESIG);
        assert_true(capffi__alloc_live() > live);
        capffi__sig_free(&sig);
        assert_int_equal(capffi__alloc_live(), live);
        /* capffi__sig_free leaves a freed sig harmless to free again. */
        capffi__sig_free(&sig);
        assert_int_equal(capffi__alloc_live(), live);
    }
    /* The same through capffi_fn_from_ptr, which frees it itself. */
    for (size_t i = 0; i < sizeof late / sizeof late[0]; i++) {
        long live = capffi__alloc_live();
        capffi_fn *fn = (capffi_fn *)1;
        assert_rc(
            capffi_fn_from_ptr(&fn, f->ctx, &f->tok, CODE(abort), late[i], 0),
            CAPFFI_ESIG);
        assert_null(fn);
        assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "signature byte "));
        assert_int_equal(capffi__alloc_live(), live);
    }
    /* And through the type functions. */
    long live = capffi__alloc_live();
    struct capffi__arena a = { NULL };
    const struct capffi__type *t;
    assert_rc(
        capffi__type_parse(f->ctx, &a, "type", "{ { u8 }, { u16 }, nope }", &t),
        CAPFFI_ESIG);
    assert_true(capffi__alloc_live() > live);
    capffi__arena_free(&a);
    assert_int_equal(capffi__alloc_live(), live);
    assert_rc(capffi_type_define(f->ctx, "Late", "{ { u8 }, { u16 }, nope }"),
              CAPFFI_ESIG);
    size_t sz;
    assert_rc(capffi_type_size(&sz, NULL, f->ctx, "{ { u8 }, nope }"),
              CAPFFI_ESIG);
    size_t off;
    assert_rc(capffi_type_offset(&off, f->ctx, "{ a: { u8 }, nope }", "a"),
              CAPFFI_ESIG);
    assert_int_equal(capffi__alloc_live(), live);
    /* A successful parse is released completely too. */
    struct capffi__sig sig;
    parse_ok(f->ctx, &sig, "({ a: u8 }, *Point) -> f64");
    assert_true(capffi__alloc_live() > live);
    capffi__sig_free(&sig);
    assert_int_equal(capffi__alloc_live(), live);
}

/* Deterministic pseudo-random mutations of valid signatures: every result
 * is accepted or CAPFFI_ESIG with a printable message, and leaks nothing. */
static uint64_t
xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void
sig_mutations_fail_cleanly(void **state)
{
    struct fx *f = *state;
    assert_ok(capffi_type_define(f->ctx, "Rect", "{ min: Point, max: Point }"));
    static const char *seeds[] = {
        "(cstring, ...: i32, f64) -> i32",
        "({ a: u8, b: { c: u16, d: f32 } }, *Point) -> { x: f64 }",
        "(Rect, *Rect, function, buffer, usize) -> void",
        "(bool, i8, u8, i16, u16, i32, u32, i64, u64) -> isize",
    };
    static const char alphabet[] = "(){},:*.->_ \t\naAz09";
    uint64_t rng = 0x9e3779b97f4a7c15u;
    long live = capffi__alloc_live();
    size_t accepted = 0, refused = 0;
    for (int iter = 0; iter < 20000; iter++) {
        char buf[160];
        const char *seed = seeds[iter % 4];
        size_t n = strlen(seed);
        memcpy(buf, seed, n + 1);
        int edits = 1 + (int)(xorshift(&rng) % 4);
        for (int e = 0; e < edits; e++) {
            size_t pos = n ? xorshift(&rng) % n : 0;
            uint64_t r = xorshift(&rng);
            char c = (r >> 8) % 4 == 0
                         ? (char)(1 + (r >> 16) % 255)
                         : alphabet[(r >> 16) % (sizeof alphabet - 1)];
            switch (r % 3) {
            case 0: /* replace */
                if (n)
                    buf[pos] = c;
                break;
            case 1: /* insert */
                if (n + 2 < sizeof buf) {
                    memmove(buf + pos + 1, buf + pos, n - pos + 1);
                    buf[pos] = c;
                    n++;
                }
                break;
            default: /* delete */
                if (n) {
                    memmove(buf + pos, buf + pos + 1, n - pos);
                    n--;
                }
                break;
            }
        }
        struct capffi__sig sig;
        int rc = capffi__sig_parse(f->ctx, &sig, buf);
        if (rc == CAPFFI_OK) {
            accepted++;
            assert_non_null(sig.ret);
            assert_true(sig.nargs <= CAPFFI_MAX_ARGS);
            assert_true(sig.nfixed <= sig.nargs);
            assert_true(sig.variadic == (sig.nfixed < sig.nargs));
            assert_true(!sig.variadic || sig.nfixed > 0);
            assert_true(sig.ret->kind != CAPFFI__BUFFER);
            for (size_t i = 0; i < sig.nargs; i++)
                assert_true(sig.args[i]->kind != CAPFFI__VOID);
        } else if (rc == CAPFFI_ESIG) {
            refused++;
            const char *msg = capffi_ctx_errmsg(f->ctx);
            if (strncmp(msg, "signature byte ", 15) != 0)
                fail_msg("'%s': message \"%s\"", buf, msg);
            for (const char *p = msg; *p; p++)
                if (*p < 0x20 || *p >= 0x7f)
                    fail_msg("'%s': raw byte in message", buf);
            /* The byte named is inside the text (or its end). */
            size_t at = strtoul(msg + 15, NULL, 10);
            assert_true(at <= n);
        } else {
            fail_msg("'%s' gave %s", buf, capffi_err_name(rc));
        }
        capffi__sig_free(&sig);
        assert_int_equal(capffi__alloc_live(), live);
    }
    /* The mutations reached both outcomes. */
    assert_true(accepted > 100);
    assert_true(refused > 1000);

    /* Every proper prefix of a signature is refused. */
    const char *full =
        "(cstring, { a: u8, b: Point }, ...: i32, f64) -> { x: f64 }";
    for (size_t len = 0; len < strlen(full); len++) {
        char prefix[128];
        memcpy(prefix, full, len);
        prefix[len] = '\0';
        sig_refused(f->ctx, prefix, "signature byte ");
    }
}

/* ---- end to end ------------------------------------------------------------
 */

#define IDENTITY(name, T)                                                      \
    static T name(T x)                                                         \
    {                                                                          \
        return x;                                                              \
    }

IDENTITY(id_bool, bool)
IDENTITY(id_i8, int8_t)
IDENTITY(id_u8, uint8_t)
IDENTITY(id_i16, int16_t)
IDENTITY(id_u16, uint16_t)
IDENTITY(id_i32, int32_t)
IDENTITY(id_u32, uint32_t)
IDENTITY(id_i64, int64_t)
IDENTITY(id_u64, uint64_t)
IDENTITY(id_isize, ptrdiff_t)
IDENTITY(id_usize, size_t)
IDENTITY(id_f32, float)
IDENTITY(id_f64, double)
IDENTITY(id_ptr, void *)
IDENTITY(id_fn, any_fn)
IDENTITY(id_str, const char *)

static int32_t
twice(int32_t x)
{
    return 2 * x;
}

static int32_t
apply(int32_t (*g)(int32_t), int32_t x)
{
    return g(x);
}

static double
weigh(int8_t a, uint8_t b, int16_t c, uint16_t d, int32_t e, uint32_t g,
      int64_t h, uint64_t i, ptrdiff_t j, size_t k, float l, double m, bool n)
{
    return a * 1.0 + b * 2.0 + c * 3.0 + d * 4.0 + e * 5.0 + g * 6.0 +
           (double)h * 7.0 + (double)i * 8.0 + (double)j * 9.0 +
           (double)k * 10.0 + l * 11.0 + m * 12.0 + (n ? 13.0 : 0.0);
}

struct abc {
    uint8_t a;
    double b;
    uint16_t c;
};

static double
abc_sum(struct abc s, int32_t k)
{
    return (s.a + s.b * 2 + s.c * 4) * k;
}

static struct pt
rect_center(struct rect r)
{
    struct pt c = { (r.min.x + r.max.x) / 2, (r.min.y + r.max.y) / 2 };
    return c;
}

static double
pt_manhattan(const struct pt *p)
{
    return (p->x < 0 ? -p->x : p->x) + (p->y < 0 ? -p->y : p->y);
}

static double
vsum(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    double s = 0;
    for (const char *p = fmt; *p; p++) {
        if (*p == 'i')
            s += va_arg(ap, int32_t);
        else if (*p == 'd')
            s += va_arg(ap, double);
        else if (*p == 'l')
            s += (double)va_arg(ap, int64_t);
    }
    va_end(ap);
    return s;
}

static capffi_fn *
bind(struct fx *f, void *code, const char *sig)
{
    capffi_fn *fn = NULL;
    int rc = capffi_fn_from_ptr(&fn, f->ctx, &f->tok, code, sig, 0);
    if (rc)
        fail_msg("binding '%s': %s: %s", sig, capffi_err_name(rc),
                 capffi_ctx_errmsg(f->ctx));
    return fn;
}

static void
sig_binds_every_scalar_end_to_end(void **state)
{
    struct fx *f = *state;
    int marker;
    /* A function value is a handle; its code is what native code gets. */
    capffi_fn *twice_fn = bind(f, CODE(twice), "(i32) -> i32");
    struct {
        const char *sig;
        void *code;
        char member; /* b i u f d p s, F: a handle in, its code out */
        capffi_value in;
    } cases[] = {
        { "(bool) -> bool", CODE(id_bool), 'b', { .b = true } },
        { "(i8) -> i8", CODE(id_i8), 'i', { .i64 = INT8_MIN } },
        { "(u8) -> u8", CODE(id_u8), 'u', { .u64 = UINT8_MAX } },
        { "(i16) -> i16", CODE(id_i16), 'i', { .i64 = INT16_MIN } },
        { "(u16) -> u16", CODE(id_u16), 'u', { .u64 = UINT16_MAX } },
        { "(i32) -> i32", CODE(id_i32), 'i', { .i64 = INT32_MIN } },
        { "(u32) -> u32", CODE(id_u32), 'u', { .u64 = UINT32_MAX } },
        { "(i64) -> i64", CODE(id_i64), 'i', { .i64 = INT64_MIN } },
        { "(u64) -> u64", CODE(id_u64), 'u', { .u64 = UINT64_MAX } },
        { "(isize) -> isize", CODE(id_isize), 'i', { .i64 = -(1LL << 40) } },
        { "(usize) -> usize", CODE(id_usize), 'u', { .u64 = SIZE_MAX - 1 } },
        { "(f32) -> f32", CODE(id_f32), 'f', { .f32 = -1.5f } },
        { "(f64) -> f64", CODE(id_f64), 'd', { .f64 = 1e300 } },
        { "(pointer) -> pointer", CODE(id_ptr), 'p', { .p = &marker } },
        { "(function) -> function", CODE(id_fn), 'F', { .fn = twice_fn } },
        { "(cstring) -> cstring", CODE(id_str), 's', { .str = "hello" } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        capffi_fn *fn = bind(f, cases[i].code, cases[i].sig);
        assert_int_equal(capffi_fn_arity(fn), 1);
        capffi_value out;
        memset(&out, 0x5a, sizeof out);
        assert_ok(capffi_fn_call(fn, &cases[i].in, &out));
        bool same = cases[i].member == 'F'
                        ? out.p == CODE(twice)
                        : value_same(cases[i].member, &out, &cases[i].in);
        if (!same)
            fail_msg("'%s' did not return its argument", cases[i].sig);
        capffi_fn_free(fn);
    }

    /* Thirteen parameters of different widths keep their order. */
    capffi_fn *fn = bind(f, CODE(weigh),
                         "(i8, u8, i16, u16, i32, u32, i64, u64, isize, usize,"
                         " f32, f64, bool) -> f64");
    capffi_value a[13];
    a[0].i64 = -3;
    a[1].u64 = 200;
    a[2].i64 = -30000;
    a[3].u64 = 60000;
    a[4].i64 = -2000000000;
    a[5].u64 = 4000000000u;
    a[6].i64 = -5000000000LL;
    a[7].u64 = 6000000000ULL;
    a[8].i64 = -7;
    a[9].u64 = 8;
    a[10].f32 = 0.5f;
    a[11].f64 = 0.25;
    a[12].b = true;
    capffi_value r;
    assert_ok(capffi_fn_call(fn, a, &r));
    assert_true(r.f64 == weigh(-3, 200, -30000, 60000, -2000000000, 4000000000u,
                               -5000000000LL, 6000000000ULL, -7, 8, 0.5f, 0.25,
                               true));
    capffi_fn_free(fn);

    /* A function parameter is called back through. */
    fn = bind(f, CODE(apply), "(function, i32) -> i32");
    a[0].fn = twice_fn;
    a[1].i64 = 21;
    assert_ok(capffi_fn_call(fn, a, &r));
    assert_int_equal(r.i64, 42);
    capffi_fn_free(fn);
    capffi_fn_free(twice_fn);
}

static void
sig_binds_structs_and_variadics_end_to_end(void **state)
{
    struct fx *f = *state;
    assert_ok(capffi_type_define(f->ctx, "Abc", "{ a: u8, b: f64, c: u16 }"));
    assert_ok(capffi_type_define(f->ctx, "Rect", "{ min: Point, max: Point }"));
    capffi_value a[4], r;

    /* A struct by value, declared inline and by name. */
    struct abc s = { 3, 1.5, 10 };
    const char *sigs[] = { "({ a: u8, b: f64, c: u16 }, i32) -> f64",
                           "(Abc, i32) -> f64" };
    for (int i = 0; i < 2; i++) {
        capffi_fn *fn = bind(f, CODE(abc_sum), sigs[i]);
        a[0].agg.ptr = &s;
        a[0].agg.len = sizeof s;
        a[1].i64 = 2;
        assert_ok(capffi_fn_call(fn, a, &r));
        assert_true(r.f64 == abc_sum(s, 2)); /* 2 * (3 + 3 + 40) */
        capffi_fn_free(fn);
    }

    /* A nested struct (in memory, 32 bytes) in, a struct out. */
    capffi_fn *fn = bind(f, CODE(rect_center), "(Rect) -> Point");
    struct rect rc = { { -2, 4 }, { 6, 10 } };
    struct pt out = { 0, 0 };
    a[0].agg.ptr = &rc;
    a[0].agg.len = sizeof rc;
    r.agg.ptr = &out;
    r.agg.len = sizeof out;
    assert_ok(capffi_fn_call(fn, a, &r));
    assert_true(out.x == 2 && out.y == 7);
    capffi_fn_free(fn);

    /* A typed pointer takes an instance (SafeFFI), never an address. */
    fn = bind(f, CODE(pt_manhattan), "(*Point) -> f64");
    capffi_obj *p;
    assert_ok(capffi_obj_new(&p, f->ctx, "Point"));
    assert_ok(capffi_obj_set(p, "x", (capffi_value){ .f64 = -1.25 }));
    assert_ok(capffi_obj_set(p, "y", (capffi_value){ .f64 = 2.5 }));
    a[0].obj = p;
    assert_ok(capffi_fn_call(fn, a, &r));
    assert_true(r.f64 == 3.75);
    a[0].p = &out;
    assert_rc(capffi_fn_call(fn, a, &r), CAPFFI_EINVAL);
    capffi_fn_free(fn);
    /* ... and gives one back: a borrowed instance of the same memory. */
    fn = bind(f, CODE(id_ptr), "(*Point) -> *Point");
    a[0].obj = p;
    assert_ok(capffi_fn_call(fn, a, &r));
    capffi_value x;
    assert_ok(capffi_obj_get(&x, r.obj, "x"));
    assert_true(x.f64 == -1.25);
    assert_string_equal(capffi_obj_class(r.obj), "Point");
    capffi_obj_free(r.obj);
    capffi_obj_free(p);
    capffi_fn_free(fn);

    /* A variadic function. */
    fn = bind(f, CODE(vsum), "(cstring, ...: i32, f64, i64) -> f64");
    assert_int_equal(capffi_fn_arity(fn), 4);
    a[0].str = "idl";
    a[1].i64 = -7;
    a[2].f64 = 0.5;
    a[3].i64 = 1LL << 40;
    assert_ok(capffi_fn_call(fn, a, &r));
    assert_true(r.f64 == -6.5 + (double)(1LL << 40));
    capffi_fn_free(fn);
    fn = bind(f, CODE(vsum), "(cstring, ...: f64, f64) -> f64");
    a[0].str = "dd";
    a[1].f64 = 1.25;
    a[2].f64 = 2.5;
    assert_ok(capffi_fn_call(fn, a, &r));
    assert_true(r.f64 == 3.75);
    capffi_fn_free(fn);

    /* A refused signature binds nothing. */
    capffi_fn *bad = (capffi_fn *)1;
    assert_rc(capffi_fn_from_ptr(&bad, f->ctx, &f->tok, CODE(vsum),
                                 "(cstring, ...: f32) -> f64", 0),
              CAPFFI_ESIG);
    assert_null(bad);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx),
                           "signature byte 15: f32 cannot be variadic"));
}

/* Sizes cannot wrap: nested named types are refused past 16 MiB. */
static void
sig_struct_size_is_bounded(void **state)
{
    (void)state;
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    char layout[4096];
    size_t n = 0;
    n += (size_t)snprintf(layout + n, sizeof layout - n, "{ ");
    for (int i = 0; i < 256; i++)
        n += (size_t)snprintf(layout + n, sizeof layout - n, "%su64",
                              i ? ", " : "");
    snprintf(layout + n, sizeof layout - n, " }");
    assert_ok(capffi_type_define(ctx, "T0", layout)); /* 2 KiB */
    const char *prev = "T0";
    char name[8], body[4096];
    int level = 1;
    int rc = 0;
    for (; level < 8 && rc == 0; level++) {
        size_t m = 0;
        m += (size_t)snprintf(body + m, sizeof body - m, "{ ");
        for (int i = 0; i < 256; i++)
            m += (size_t)snprintf(body + m, sizeof body - m, "%s%s",
                                  i ? ", " : "", prev);
        snprintf(body + m, sizeof body - m, " }");
        snprintf(name, sizeof name, "T%d", level);
        rc = capffi_type_define(ctx, name, body);
        prev = level == 1 ? "T1" : prev;
    }
    /* T1 is 512 KiB; T2 would be 128 MiB. */
    assert_int_equal(level, 3);
    assert_int_equal(rc, CAPFFI_ESIG);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "larger than"));
    size_t size;
    assert_ok(capffi_type_size(&size, NULL, ctx, "T1"));
    assert_int_equal(size, 256 * 2048);
    assert_rc(capffi_type_size(&size, NULL, ctx, "  void"), CAPFFI_ESIG);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "type byte 2:"));
    assert_rc(capffi_type_define(ctx, "A", "  i32"), CAPFFI_ESIG);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "layout byte 2:"));
    capffi_ctx_free(ctx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(sig_scalars_as_params_and_results),
        T(sig_scalar_sizes_match_c),
        T(sig_whitespace_is_free),
        T(sig_void_only_as_result),
        T(sig_buffer_refused_as_result_and_field),
        T(sig_struct_by_value_nested),
        T(sig_struct_duplicate_field_names),
        T(sig_empty_struct_refused),
        T(sig_unknown_type_names),
        T(sig_c_type_names_get_their_capffi_name),
        T(sig_typed_pointer_needs_defined_name),
        T(sig_type_define_valid_and_nested),
        T(sig_type_define_refusals),
        T(sig_type_offset_and_size_match_c),
        T(sig_variadic_tail),
        T(sig_variadic_needs_fixed_param),
        T(sig_variadic_refuses_promoted_types),
        T(sig_variadic_needs_colon),
        T(sig_trailing_garbage_refused),
        T(sig_missing_arrow_or_paren),
        T(sig_max_args_limit),
        T(sig_nesting_depth_limit),
        T(sig_text_length_limit),
        T(sig_field_count_limit),
        T(sig_type_count_limit),
        T(sig_nonprintable_bytes_named_in_hex),
        T(sig_null_text_is_einval),
        T(sig_failed_parse_leaks_nothing),
        T(sig_mutations_fail_cleanly),
        T(sig_binds_every_scalar_end_to_end),
        T(sig_binds_structs_and_variadics_end_to_end),
        T(sig_struct_size_is_bounded),
#undef T
    };
    return RUN_TESTS("sig", tests);
}
