/*
 * test_obj.c - SafeFFI: classes, instances, typed and counted pointers,
 * borrowed and owned results, out-parameters, callbacks that take
 * instances, safe mode, leaks and nonblocking calls (suites: unit, obj,
 * security, threads).
 *
 * The fixture's records (struct fx_rec) are what native code allocates,
 * hands out and frees; fx_rec_frees counts the frees, so a case sees a
 * destructor run exactly once. Cases that free memory natively before
 * capffi refuses an access prove, under AddressSanitizer and valgrind,
 * that the refusal reads nothing.
 */
#include "helpers.h"

#include <stddef.h>
#include <unistd.h>

#include "fixture.h"

#define WAIT_MS 10000 /* a bound on every wait: a hang fails the case */

/* The fixture's record, as the host declares it. Node has the same
 * layout under another name: an instance of one is not one of the
 * other. */
#define REC_LAYOUT "{ readonly id: i32, score: f64, name: [16]u8, next: *Node }"
#define NODE_LAYOUT "{ id: i32, score: f64, name: [16]u8, next: pointer }"

static void
define_classes(capffi_ctx *ctx)
{
    assert_ok(capffi_type_define(ctx, "Node", NODE_LAYOUT));
    assert_ok(capffi_type_define(ctx, "Rec", REC_LAYOUT));
    assert_ok(capffi_type_define(ctx, "Point", "{ x: f64, y: f64 }"));
    assert_ok(capffi_type_define(ctx, "Shape",
                                 "{ readonly origin: Point, pts: [3]Point, "
                                 "tag: [4]u8, label: cstring, rec: *Rec, "
                                 "small: i8, count: u16 }"));
    assert_ok(capffi_type_define(ctx, "Handle", "opaque"));
}

static int
setup_with(void **state, uint32_t flags, unsigned workers)
{
    struct lib_fx *f = calloc(1, sizeof *f);
    f->ctx = ctx_for_fixtures(flags, workers);
    assert_ok(capffi_audit_record(f->ctx, 4096));
    assert_ok(capffi_token_new(&f->tok, f->ctx, "obj", NULL));
    assert_ok(capffi_lib_open(&f->lib, f->ctx, &f->tok,
                              env_path("CAPFFI_FIXTURE"), 0));
    define_classes(f->ctx);
    fx_rec_reset();
    fx_gate_close();
    *state = f;
    return 0;
}

static int
setup(void **state)
{
    return setup_with(state, 0, 0);
}

static int
setup_safe(void **state)
{
    return setup_with(state, CAPFFI_OPT_SAFE, 0);
}

static int
setup_one_worker(void **state)
{
    return setup_with(state, 0, 1);
}

static int
teardown(void **state)
{
    fx_gate_open(); /* no job of a failed case stays at the gate */
    return lib_fx_teardown(state);
}

static capffi_fn *
bind(struct lib_fx *f, const char *sym, const char *sig)
{
    return lib_fx_bind(f, sym, sig, 0);
}

static capffi_obj *
new_obj(struct lib_fx *f, const char *cls)
{
    capffi_obj *o = NULL;
    int rc = capffi_obj_new(&o, f->ctx, cls);
    if (rc)
        fail_msg("capffi_obj_new %s: %s: %s", cls, capffi_err_name(rc),
                 capffi_ctx_errmsg(f->ctx));
    return o;
}

static int64_t
get_i64(const capffi_obj *o, const char *path)
{
    capffi_value v;
    assert_ok(capffi_obj_get(&v, o, path));
    return v.i64;
}

static void
assert_msg_has(capffi_ctx *ctx, const char *part)
{
    const char *msg = capffi_ctx_errmsg(ctx);
    if (!strstr(msg, part))
        fail_msg("message '%s' lacks '%s'", msg, part);
}

/* The record fx_rec_new(id) makes, as an owned instance. */
static capffi_obj *
owned_rec(struct lib_fx *f, capffi_fn *mk, int32_t id)
{
    capffi_value a = { .i64 = id }, r = { .obj = NULL };
    assert_ok(capffi_fn_call(mk, &a, &r));
    assert_non_null(r.obj);
    return r.obj;
}

/* ---- classes ------------------------------------------------------------ */

static void
obj_class_layout_matches_the_c_struct(void **state)
{
    struct lib_fx *f = *state;
    size_t size, align, off;
    assert_ok(capffi_type_size(&size, &align, f->ctx, "Rec"));
    assert_int_equal(size, sizeof(struct fx_rec));
    assert_int_equal(align, _Alignof(struct fx_rec));
    assert_ok(capffi_type_offset(&off, f->ctx, "Rec", "name"));
    assert_int_equal(off, offsetof(struct fx_rec, name));
    assert_ok(capffi_type_offset(&off, f->ctx, "Rec", "next"));
    assert_int_equal(off, offsetof(struct fx_rec, next));

    /* Nested class, array of classes, byte array, cstring, *NAME. */
    struct shape {
        struct {
            double x, y;
        } origin, pts[3];
        uint8_t tag[4];
        const char *label;
        void *rec;
        int8_t small;
        uint16_t count;
    };
    assert_ok(capffi_type_size(&size, NULL, f->ctx, "Shape"));
    assert_int_equal(size, sizeof(struct shape));
    assert_ok(capffi_type_offset(&off, f->ctx, "Shape", "tag"));
    assert_int_equal(off, offsetof(struct shape, tag));
    assert_ok(capffi_type_offset(&off, f->ctx, "Shape", "count"));
    assert_int_equal(off, offsetof(struct shape, count));
    assert_ok(capffi_type_define(f->ctx, "Grid", "{ c: [2][3]u16, z: u8 }"));
    assert_ok(capffi_type_size(&size, NULL, f->ctx, "Grid"));
    assert_int_equal(size, 14);
}

static void
obj_malformed_layouts_name_the_byte(void **state)
{
    struct lib_fx *f = *state;
    static const struct {
        const char *layout, *where;
    } bad[] = {
        { "{ a: i32 ", "layout byte 9:" },
        { "{ a: [0]u8 }", "layout byte 6:" },
        { "{ a: [16777217]u8 }", "layout byte 6:" },
        { "{ a: [3 u8 }", "layout byte 8:" },
        { "{ a: Handle }", "layout byte 5:" },
        { "{ a: [2]Handle }", "layout byte 8:" },
        { "{ a: *Nope }", "layout byte 6:" },
        { "{ a: *[$1]i32 }", "layout byte 7:" },
        { "{ a: out i32 }", "layout byte 5:" },
        { "{ a: void }", "layout byte 5:" },
        { "{ a: i32, a: u8 }", "layout byte 10:" },
        { "{ }", "layout byte 2:" },
        { "opaque x", "layout byte 0:" },
        { "i32", "layout byte 0:" },
        { "  [4]i32", "layout byte 2:" },
        { "{ a: u8 } \x1b", "layout byte 10:" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t mark = capffi_audit_mark(f->ctx);
        int rc = capffi_type_define(f->ctx, "Bad", bad[i].layout);
        if (rc != CAPFFI_ESIG)
            fail_msg("'%s': %s", bad[i].layout, capffi_err_name(rc));
        assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT,
                      "type.define ESIG Bad");
        assert_msg_has(f->ctx, bad[i].where);
        for (const char *p = capffi_ctx_errmsg(f->ctx); *p; p++)
            assert_true(*p >= 0x20 && *p < 0x7f);
        /* A refused layout defines nothing. */
        capffi_obj *o;
        assert_rc(capffi_obj_new(&o, f->ctx, "Bad"), CAPFFI_ENOTFOUND);
        assert_null(o);
    }
}

static void
obj_reserved_words_are_not_class_names(void **state)
{
    struct lib_fx *f = *state;
    static const char *const words[] = { "out",    "own", "by",     "readonly",
                                         "opaque", "i32", "cstring" };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        assert_rc(capffi_type_define(f->ctx, words[i], "{ a: i32 }"),
                  CAPFFI_EINVAL);
        assert_msg_has(f->ctx, words[i]);
    }
    /* As field names they are plain names. */
    assert_ok(capffi_type_define(f->ctx, "Words",
                                 "{ out: i32, own: u8, by: u8, "
                                 "readonly readonly: u16 }"));
    capffi_obj *o = new_obj(f, "Words");
    assert_ok(capffi_obj_set(o, "by", (capffi_value){ .u64 = 9 }));
    assert_int_equal(get_i64(o, "by"), 9);
    assert_rc(capffi_obj_set(o, "readonly", (capffi_value){ .u64 = 1 }),
              CAPFFI_EPERM);
    assert_ok(capffi_obj_set(o, "out", (capffi_value){ .i64 = -3 }));
    assert_int_equal(get_i64(o, "out"), -3);
    capffi_obj_free(o);
}

static void
obj_opaque_class_has_no_fields_and_no_host_instances(void **state)
{
    struct lib_fx *f = *state;
    capffi_obj *o;
    assert_rc(capffi_obj_new(&o, f->ctx, "Handle"), CAPFFI_ETYPE);
    assert_null(o);
    assert_msg_has(f->ctx, "opaque");
    /* Reached through *Handle only: a field, a parameter, a result. */
    assert_ok(capffi_type_define(f->ctx, "Holder", "{ h: *Handle, n: i32 }"));
    capffi_fn *fn = bind(f, "fx_id_ptr", "(?*Handle) -> *Handle");
    capffi_value a = { .obj = NULL }, r = { .obj = (capffi_obj *)1 };
    assert_ok(capffi_fn_call(fn, &a, &r));
    assert_null(r.obj);
    /* A handle from native code: not a value, no field. */
    capffi_fn *st = bind(f, "fx_rec_static", "() -> *Handle");
    assert_ok(capffi_fn_call(st, NULL, &r));
    assert_non_null(r.obj);
    assert_string_equal(capffi_obj_class(r.obj), "Handle");
    capffi_value v;
    assert_rc(capffi_obj_get(&v, r.obj, ""), CAPFFI_ETYPE);
    assert_rc(capffi_obj_get(&v, r.obj, "id"), CAPFFI_ETYPE);
    assert_msg_has(f->ctx, "opaque");
    /* It goes back to native code as it came. */
    capffi_value back = { .obj = r.obj }, same = { .obj = NULL };
    assert_ok(capffi_fn_call(fn, &back, &same));
    assert_string_equal(capffi_obj_class(same.obj), "Handle");
    capffi_obj_free(same.obj);
    capffi_obj_free(r.obj);
}

/* ---- instances ------------------------------------------------------------
 */

static void
obj_new_is_zeroed_and_names_its_class(void **state)
{
    struct lib_fx *f = *state;
    capffi_obj *o = new_obj(f, "Rec");
    assert_string_equal(capffi_obj_class(o), "Rec");
    assert_ok(capffi_obj_status(o));
    assert_int_equal(get_i64(o, "id"), 0);
    capffi_value v;
    assert_ok(capffi_obj_get(&v, o, "score"));
    assert_true(v.f64 == 0.0);
    for (int i = 0; i < 16; i++) {
        char path[32];
        snprintf(path, sizeof path, "name[%d]", i);
        assert_ok(capffi_obj_get(&v, o, path));
        assert_int_equal(v.u64, 0);
    }
    v.obj = (capffi_obj *)1;
    assert_ok(capffi_obj_get(&v, o, "next"));
    assert_null(v.obj);
    size_t n;
    assert_ok(capffi_obj_len(&n, o, "name"));
    assert_int_equal(n, 16);
    capffi_obj_free(o);

    capffi_obj *s = new_obj(f, "Shape");
    assert_ok(capffi_obj_get(&v, s, "pts[2].y"));
    assert_true(v.f64 == 0.0);
    v.str = "x";
    assert_ok(capffi_obj_get(&v, s, "label"));
    assert_null(v.str);
    capffi_obj_free(s);

    assert_rc(capffi_obj_new(&o, f->ctx, "Nope"), CAPFFI_ENOTFOUND);
    assert_null(o);
    assert_rc(capffi_obj_new(&o, f->ctx, "[3"), CAPFFI_ESIG);
    assert_msg_has(f->ctx, "byte 2");
    assert_rc(capffi_obj_new(&o, f->ctx, NULL), CAPFFI_EINVAL);
    assert_rc(capffi_obj_new(NULL, f->ctx, "Rec"), CAPFFI_EINVAL);
    assert_rc(capffi_obj_new(&o, f->ctx, "void"), CAPFFI_ESIG);
    assert_rc(capffi_obj_new(&o, f->ctx, "*Rec"), CAPFFI_ETYPE);
    assert_string_equal(capffi_obj_class(NULL), "");
}

static void
obj_expression_classes_arrays_and_scalars(void **state)
{
    struct lib_fx *f = *state;
    capffi_obj *a = new_obj(f, "[100]i32");
    assert_string_equal(capffi_obj_class(a), "i32");
    size_t n;
    assert_ok(capffi_obj_len(&n, a, ""));
    assert_int_equal(n, 100);
    assert_ok(capffi_obj_set(a, "[99]", (capffi_value){ .i64 = -7 }));
    assert_ok(capffi_obj_set(a, "[0]", (capffi_value){ .i64 = INT32_MAX }));
    assert_int_equal(get_i64(a, "[99]"), -7);
    assert_int_equal(get_i64(a, "[0]"), INT32_MAX);
    assert_int_equal(get_i64(a, "[50]"), 0);
    capffi_value v;
    assert_rc(capffi_obj_get(&v, a, "[100]"), CAPFFI_EBOUNDS);
    assert_rc(capffi_obj_get(&v, a, ""), CAPFFI_ETYPE);
    assert_rc(capffi_obj_get(&v, a, "0"), CAPFFI_ENOTFOUND);
    assert_rc(
        capffi_obj_set(a, "[2]", (capffi_value){ .i64 = INT64_C(1) << 31 }),
        CAPFFI_ERANGE);
    capffi_obj_free(a);

    capffi_obj *i = new_obj(f, "i32");
    assert_string_equal(capffi_obj_class(i), "i32");
    assert_ok(capffi_obj_set(i, "", (capffi_value){ .i64 = 12345 }));
    assert_int_equal(get_i64(i, ""), 12345);
    assert_rc(capffi_obj_get(&v, i, "[0]"), CAPFFI_ENOTFOUND);
    assert_rc(capffi_obj_len(&n, i, ""), CAPFFI_ETYPE);
    capffi_obj_free(i);

    capffi_obj *pts = new_obj(f, "[2]Point");
    assert_string_equal(capffi_obj_class(pts), "Point");
    assert_ok(capffi_obj_set(pts, "[1].y", (capffi_value){ .f64 = 2.5 }));
    assert_ok(capffi_obj_get(&v, pts, "[1].y"));
    assert_true(v.f64 == 2.5);
    assert_rc(capffi_obj_get(&v, pts, "[1]"), CAPFFI_ETYPE);
    assert_rc(capffi_obj_get(&v, pts, "[1]y"), CAPFFI_ENOTFOUND);
    capffi_obj_free(pts);
}

static void
obj_get_and_set_by_path(void **state)
{
    struct lib_fx *f = *state;
    capffi_obj *r = new_obj(f, "Rec");
    const char *text = "hello";
    for (int i = 0; text[i]; i++) {
        char path[32];
        snprintf(path, sizeof path, "name[%d]", i);
        assert_ok(capffi_obj_set(r, path, (capffi_value){ .u64 = text[i] }));
    }
    assert_int_equal(get_i64(r, "name[3]"), 'l');
    assert_int_equal(get_i64(r, "name[5]"), 0);
    assert_ok(capffi_obj_set(r, "score", (capffi_value){ .f64 = -0.25 }));
    capffi_value v;
    assert_ok(capffi_obj_get(&v, r, "score"));
    assert_true(v.f64 == -0.25);
    /* Native code sees what the host wrote. */
    capffi_fn *sum = bind(f, "fx_rec_sum", "(*Rec) -> i64");
    capffi_fn *len = bind(f, "fx_strlen", "(*[16]u8) -> usize");
    assert_ok(capffi_obj_set(r, "score", (capffi_value){ .f64 = 41.75 }));
    capffi_value a = { .obj = r };
    assert_ok(capffi_fn_call(sum, &a, &v));
    assert_int_equal(v.i64, 41);

    capffi_obj *s = new_obj(f, "Shape");
    assert_ok(capffi_obj_set(s, "pts[2].y", (capffi_value){ .f64 = 9.5 }));
    assert_ok(capffi_obj_set(s, "pts[0].x", (capffi_value){ .f64 = 1.5 }));
    assert_ok(capffi_obj_set(s, "tag[3]", (capffi_value){ .u64 = 255 }));
    assert_ok(capffi_obj_set(s, "small", (capffi_value){ .i64 = -128 }));
    assert_ok(capffi_obj_get(&v, s, "pts[2].y"));
    assert_true(v.f64 == 9.5);
    assert_ok(capffi_obj_get(&v, s, "pts[0].x"));
    assert_true(v.f64 == 1.5);
    assert_ok(capffi_obj_get(&v, s, "pts[1].x"));
    assert_true(v.f64 == 0.0);
    assert_int_equal(get_i64(s, "tag[3]"), 255);
    assert_int_equal(get_i64(s, "small"), -128);
    /* An instance of [16]u8 is what *[16]u8 takes; a Rec is not. */
    capffi_obj *name = new_obj(f, "[16]u8");
    for (int i = 0; i < 3; i++) {
        char path[32];
        snprintf(path, sizeof path, "[%d]", i);
        assert_ok(capffi_obj_set(name, path, (capffi_value){ .u64 = 'a' }));
    }
    a.obj = name;
    assert_ok(capffi_fn_call(len, &a, &v));
    assert_int_equal(v.u64, 3);
    a.obj = r;
    assert_rc(capffi_fn_call(len, &a, &v), CAPFFI_ETYPE);
    capffi_obj_free(name);
    capffi_obj_free(s);
    capffi_obj_free(r);
}

static void
obj_path_errors_have_their_codes(void **state)
{
    struct lib_fx *f = *state;
    capffi_obj *s = new_obj(f, "Shape");
    capffi_value v;
    static const struct {
        const char *path;
        int rc;
    } gets[] = {
        { "nope", CAPFFI_ENOTFOUND },
        { "tag.x", CAPFFI_ENOTFOUND },
        { "small[0]", CAPFFI_ENOTFOUND },
        { "tag[", CAPFFI_ENOTFOUND },
        { "tag[x]", CAPFFI_ENOTFOUND },
        { "origin.", CAPFFI_ENOTFOUND },
        { "[0]", CAPFFI_ENOTFOUND },
        { "origin.z", CAPFFI_ENOTFOUND },
        { "tag[4]", CAPFFI_EBOUNDS },
        { "pts[3].x", CAPFFI_EBOUNDS },
        { "tag[99999999999999999999]", CAPFFI_ENOTFOUND },
        { "pts", CAPFFI_ETYPE },
        { "pts[1]", CAPFFI_ETYPE },
        { "", CAPFFI_ETYPE },
    };
    for (size_t i = 0; i < sizeof gets / sizeof gets[0]; i++) {
        int rc = capffi_obj_get(&v, s, gets[i].path);
        if (rc != gets[i].rc)
            fail_msg("get '%s': %s, expected %s", gets[i].path,
                     capffi_err_name(rc), capffi_err_name(gets[i].rc));
        rc = capffi_obj_set(s, gets[i].path, (capffi_value){ .u64 = 0 });
        if (rc != gets[i].rc)
            fail_msg("set '%s': %s, expected %s", gets[i].path,
                     capffi_err_name(rc), capffi_err_name(gets[i].rc));
    }
    assert_rc(capffi_obj_get(&v, s, "origin"), CAPFFI_ETYPE);
    /* Readonly: the field itself and everything inside it. */
    assert_rc(capffi_obj_set(s, "origin", (capffi_value){ .f64 = 1 }),
              CAPFFI_EPERM);
    assert_rc(capffi_obj_set(s, "origin.x", (capffi_value){ .f64 = 1 }),
              CAPFFI_EPERM);
    assert_msg_has(f->ctx, "readonly");
    assert_ok(capffi_obj_get(&v, s, "origin.x"));
    capffi_obj *r = new_obj(f, "Rec");
    assert_rc(capffi_obj_set(r, "id", (capffi_value){ .i64 = 1 }),
              CAPFFI_EPERM);
    assert_int_equal(get_i64(r, "id"), 0);
    /* Ranges of small integers. */
    assert_rc(capffi_obj_set(s, "tag[0]", (capffi_value){ .u64 = 256 }),
              CAPFFI_ERANGE);
    assert_rc(capffi_obj_set(s, "tag[0]", (capffi_value){ .i64 = -1 }),
              CAPFFI_ERANGE);
    assert_rc(capffi_obj_set(s, "small", (capffi_value){ .i64 = 128 }),
              CAPFFI_ERANGE);
    assert_rc(capffi_obj_set(s, "count", (capffi_value){ .u64 = 65536 }),
              CAPFFI_ERANGE);
    assert_ok(capffi_obj_set(s, "count", (capffi_value){ .u64 = 65535 }));
    assert_int_equal(get_i64(s, "tag[0]"), 0);
    /* A cstring field is not the host's to write; *NAME takes its class. */
    assert_rc(capffi_obj_set(s, "label", (capffi_value){ .str = "x" }),
              CAPFFI_ETYPE);
    capffi_obj *node = new_obj(f, "Node");
    assert_rc(capffi_obj_set(s, "rec", (capffi_value){ .obj = node }),
              CAPFFI_ETYPE);
    assert_ok(capffi_obj_set(s, "rec", (capffi_value){ .obj = r }));
    assert_ok(capffi_obj_set(r, "score", (capffi_value){ .f64 = 3.0 }));
    v.obj = NULL;
    assert_ok(capffi_obj_get(&v, s, "rec"));
    assert_non_null(v.obj);
    assert_string_equal(capffi_obj_class(v.obj), "Rec");
    capffi_value sc;
    assert_ok(capffi_obj_get(&sc, v.obj, "score"));
    assert_true(sc.f64 == 3.0);
    capffi_obj_free(v.obj);
    assert_ok(capffi_obj_set(s, "rec", (capffi_value){ .obj = NULL }));
    v.obj = (capffi_obj *)1;
    assert_ok(capffi_obj_get(&v, s, "rec"));
    assert_null(v.obj);
    /* NULL arguments. */
    assert_rc(capffi_obj_get(NULL, s, "small"), CAPFFI_EINVAL);
    assert_rc(capffi_obj_get(&v, s, NULL), CAPFFI_EINVAL);
    assert_rc(capffi_obj_get(&v, NULL, "small"), CAPFFI_EINVAL);
    assert_rc(capffi_obj_set(NULL, "small", v), CAPFFI_EINVAL);
    capffi_obj_free(node);
    capffi_obj_free(r);
    capffi_obj_free(s);
}

static void
obj_accessor_reads_writes_and_checks_its_class(void **state)
{
    struct lib_fx *f = *state;
    capffi_obj *r = new_obj(f, "Rec");
    capffi_obj *n = new_obj(f, "Node");
    capffi_accessor score, id, name3;
    assert_ok(capffi_obj_accessor(&score, r, "score"));
    assert_ok(capffi_obj_accessor(&id, r, "id"));
    assert_ok(capffi_obj_accessor(&name3, r, "name[3]"));
    assert_ok(capffi_obj_write(r, &score, (capffi_value){ .f64 = 6.5 }));
    assert_ok(capffi_obj_write(r, &name3, (capffi_value){ .u64 = 'z' }));
    capffi_value v;
    assert_ok(capffi_obj_read(&v, r, &score));
    assert_true(v.f64 == 6.5);
    assert_ok(capffi_obj_get(&v, r, "score"));
    assert_true(v.f64 == 6.5);
    assert_int_equal(get_i64(r, "name[3]"), 'z');
    assert_ok(capffi_obj_read(&v, r, &id));
    assert_int_equal(v.i64, 0);
    assert_rc(capffi_obj_write(r, &id, (capffi_value){ .i64 = 1 }),
              CAPFFI_EPERM);
    assert_rc(capffi_obj_write(r, &name3, (capffi_value){ .u64 = 256 }),
              CAPFFI_ERANGE);
    /* Same layout, other class: refused. */
    assert_rc(capffi_obj_read(&v, n, &score), CAPFFI_ETYPE);
    assert_rc(capffi_obj_write(n, &score, (capffi_value){ .f64 = 1 }),
              CAPFFI_ETYPE);
    assert_ok(capffi_obj_get(&v, n, "score"));
    assert_true(v.f64 == 0.0);
    /* Not scalars. */
    capffi_accessor bad;
    assert_rc(capffi_obj_accessor(&bad, r, "name"), CAPFFI_ETYPE);
    assert_rc(capffi_obj_accessor(&bad, r, "next"), CAPFFI_ETYPE);
    assert_rc(capffi_obj_accessor(&bad, r, "name[16]"), CAPFFI_EBOUNDS);
    assert_rc(capffi_obj_accessor(&bad, r, "nope"), CAPFFI_ENOTFOUND);
    /* An array accessor needs as many elements as its index. */
    capffi_obj *big = new_obj(f, "[10]i32");
    capffi_obj *small = new_obj(f, "[5]i32");
    capffi_obj *one = new_obj(f, "i32");
    capffi_accessor last;
    assert_ok(capffi_obj_accessor(&last, big, "[9]"));
    assert_ok(capffi_obj_write(big, &last, (capffi_value){ .i64 = 99 }));
    assert_int_equal(get_i64(big, "[9]"), 99);
    assert_rc(capffi_obj_read(&v, small, &last), CAPFFI_EBOUNDS);
    assert_rc(capffi_obj_write(small, &last, (capffi_value){ .i64 = 1 }),
              CAPFFI_EBOUNDS);
    assert_rc(capffi_obj_read(&v, one, &last), CAPFFI_ETYPE);
    assert_rc(capffi_obj_read(&v, r, NULL), CAPFFI_EINVAL);
    assert_rc(capffi_obj_read(NULL, r, &score), CAPFFI_EINVAL);
    /* A freed instance. */
    capffi_obj_free(small);
    assert_rc(capffi_obj_read(&v, small, &last), CAPFFI_EINVAL);
    capffi_obj_free(one);
    capffi_obj_free(big);
    capffi_obj_free(n);
    capffi_obj_free(r);
}

static void
obj_class_may_point_to_itself(void **state)
{
    struct lib_fx *f = *state;
    assert_ok(capffi_type_define(
        f->ctx, "List", "{ id: i32, score: f64, name: [16]u8, next: *List }"));
    size_t size;
    assert_ok(capffi_type_size(&size, NULL, f->ctx, "List"));
    assert_int_equal(size, sizeof(struct fx_rec));
    capffi_fn *mk = bind(f, "fx_rec_new", "(i32) -> own *List by fx_rec_free");
    capffi_fn *link = bind(f, "fx_rec_link", "(*List, ?*List) -> void");
    capffi_obj *a = owned_rec(f, mk, 1);
    capffi_obj *b = owned_rec(f, mk, 2);
    capffi_value args[2] = { { .obj = a }, { .obj = b } }, next;
    assert_ok(capffi_fn_call(link, args, NULL));
    assert_ok(capffi_obj_get(&next, a, "next"));
    assert_string_equal(capffi_obj_class(next.obj), "List");
    assert_int_equal(get_i64(next.obj, "id"), 2);
    capffi_obj_free(next.obj);
    args[1].obj = NULL;
    assert_ok(capffi_fn_call(link, args, NULL));
    capffi_obj_free(b);
    capffi_obj_free(a);
    assert_int_equal(fx_rec_frees(), 2);
}

/* A *NAME field the host set holds the instance it points to: freeing
 * that instance leaves its memory (and an owned one's native object)
 * until the field lets go, so a read through the field is never a read
 * of freed memory. */
static void
obj_field_holds_the_instance_it_points_to(void **state)
{
    struct lib_fx *f = *state;
    capffi_obj *s = new_obj(f, "Shape");
    capffi_obj *r = new_obj(f, "Rec");
    assert_ok(capffi_obj_set(r, "score", (capffi_value){ .f64 = 8.5 }));
    assert_ok(capffi_obj_set(s, "rec", (capffi_value){ .obj = r }));
    capffi_obj_free(r);
    capffi_value v = { .obj = NULL }, sc;
    assert_ok(capffi_obj_get(&v, s, "rec"));
    assert_non_null(v.obj);
    assert_ok(capffi_obj_get(&sc, v.obj, "score"));
    assert_true(sc.f64 == 8.5);
    capffi_obj_free(v.obj);

    capffi_fn *mk = bind(f, "fx_rec_new", "(i32) -> own *Rec by fx_rec_free");
    capffi_obj *o = owned_rec(f, mk, 3);
    assert_ok(capffi_obj_set(s, "rec", (capffi_value){ .obj = o }));
    capffi_obj_free(o);
    assert_int_equal(fx_rec_frees(), 0);
    assert_ok(capffi_obj_get(&v, s, "rec"));
    assert_int_equal(get_i64(v.obj, "id"), 3);
    capffi_obj_free(v.obj);
    capffi_obj_free(s);
    assert_int_equal(fx_rec_frees(), 1);
}

/* ---- typed parameters --------------------------------------------------- */

static void
obj_typed_param_takes_only_its_class(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *sum = bind(f, "fx_rec_sum", "(*Rec) -> i64");
    capffi_obj *r = new_obj(f, "Rec");
    capffi_obj *n = new_obj(f, "Node");
    assert_ok(capffi_obj_set(r, "score", (capffi_value){ .f64 = 2.5 }));
    capffi_value a = { .obj = r }, v = { .i64 = -1 };
    assert_ok(capffi_fn_call(sum, &a, &v));
    assert_int_equal(v.i64, 2);
    a.obj = n;
    assert_rc(capffi_fn_call(sum, &a, &v), CAPFFI_ETYPE);
    assert_msg_has(f->ctx, "Node");
    a.obj = NULL;
    assert_rc(capffi_fn_call(sum, &a, &v), CAPFFI_EINVAL);
    assert_msg_has(f->ctx, "?*Rec");
    /* A freed instance is not an argument. */
    capffi_obj *gone = new_obj(f, "Rec");
    capffi_obj_free(gone);
    a.obj = gone;
    assert_rc(capffi_fn_call(sum, &a, &v), CAPFFI_EINVAL);

    /* ?*Node accepts NULL; native code writes what it wants. */
    capffi_fn *link = bind(f, "fx_rec_link", "(*Rec, ?*Node) -> void");
    assert_ok(capffi_obj_set(n, "score", (capffi_value){ .f64 = 7.0 }));
    capffi_value args[2] = { { .obj = r }, { .obj = n } };
    assert_ok(capffi_fn_call(link, args, NULL));
    capffi_value next = { .obj = NULL };
    assert_ok(capffi_obj_get(&next, r, "next"));
    assert_non_null(next.obj);
    assert_string_equal(capffi_obj_class(next.obj), "Node");
    assert_ok(capffi_obj_get(&v, next.obj, "score"));
    assert_true(v.f64 == 7.0);
    capffi_obj_free(next.obj);
    args[1].obj = NULL;
    assert_ok(capffi_fn_call(link, args, NULL));
    next.obj = (capffi_obj *)1;
    assert_ok(capffi_obj_get(&next, r, "next"));
    assert_null(next.obj);
    args[1].obj = r; /* a Rec where ?*Node is declared */
    assert_rc(capffi_fn_call(link, args, NULL), CAPFFI_ETYPE);

    /* An instance of another context. */
    struct lib_fx other;
    lib_fx_open(&other, 0, "CAPFFI_FIXTURE_DIR", "CAPFFI_FIXTURE", "other");
    define_classes(other.ctx);
    capffi_obj *foreign = NULL;
    assert_ok(capffi_obj_new(&foreign, other.ctx, "Rec"));
    a.obj = foreign;
    assert_rc(capffi_fn_call(sum, &a, &v), CAPFFI_EINVAL);
    capffi_ctx_free(other.ctx);
    capffi_obj_free(n);
    capffi_obj_free(r);
}

static void
obj_counted_param_checks_the_count(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *sum = bind(f, "fx_sum_i32", "(*[$1]i32, i32) -> i64");
    capffi_obj *v4 = new_obj(f, "[4]i32");
    for (int i = 0; i < 4; i++) {
        char path[32];
        snprintf(path, sizeof path, "[%d]", i);
        assert_ok(capffi_obj_set(v4, path, (capffi_value){ .i64 = i + 1 }));
    }
    capffi_value a[2] = { { .obj = v4 }, { .i64 = 4 } }, r;
    assert_ok(capffi_fn_call(sum, a, &r));
    assert_int_equal(r.i64, 10);
    a[1].i64 = 2;
    assert_ok(capffi_fn_call(sum, a, &r));
    assert_int_equal(r.i64, 3);
    a[1].i64 = 5;
    assert_rc(capffi_fn_call(sum, a, &r), CAPFFI_EBOUNDS);
    assert_msg_has(f->ctx, "5 elements");
    a[1].i64 = -1;
    assert_rc(capffi_fn_call(sum, a, &r), CAPFFI_ERANGE);
    a[1].i64 = 0;
    assert_ok(capffi_fn_call(sum, a, &r));
    assert_int_equal(r.i64, 0);
    /* One scalar instance is one element. */
    capffi_obj *one = new_obj(f, "i32");
    assert_ok(capffi_obj_set(one, "", (capffi_value){ .i64 = 41 }));
    a[0].obj = one;
    a[1].i64 = 1;
    assert_ok(capffi_fn_call(sum, a, &r));
    assert_int_equal(r.i64, 41);
    a[1].i64 = 2;
    assert_rc(capffi_fn_call(sum, a, &r), CAPFFI_EBOUNDS);
    /* Elements of another type. */
    capffi_obj *u = new_obj(f, "[8]u32");
    a[0].obj = u;
    a[1].i64 = 1;
    assert_rc(capffi_fn_call(sum, a, &r), CAPFFI_ETYPE);
    /* A fixed count. */
    capffi_fn *fixed = bind(f, "fx_sum_i32", "(*[4]i32, i32) -> i64");
    capffi_obj *v3 = new_obj(f, "[3]i32");
    a[0].obj = v3;
    a[1].i64 = 3;
    assert_rc(capffi_fn_call(fixed, a, &r), CAPFFI_EBOUNDS);
    a[0].obj = v4;
    a[1].i64 = 4;
    assert_ok(capffi_fn_call(fixed, a, &r));
    assert_int_equal(r.i64, 10);
    /* Signatures that count wrongly. */
    capffi_fn *bad = NULL;
    assert_rc(capffi_lib_bind(&bad, f->lib, "fx_sum_i32",
                              "(*[$0]i32, i32) -> i64", 0),
              CAPFFI_ESIG);
    assert_rc(capffi_lib_bind(&bad, f->lib, "fx_sum_i32",
                              "(*[$1]i32, f64) -> i64", 0),
              CAPFFI_ESIG);
    assert_rc(capffi_lib_bind(&bad, f->lib, "fx_sum_i32",
                              "(*[$2]i32, i32) -> i64", 0),
              CAPFFI_ESIG);
    assert_null(bad);
    capffi_obj_free(v3);
    capffi_obj_free(u);
    capffi_obj_free(one);
    capffi_obj_free(v4);
}

/* ---- borrowed results -----------------------------------------------------
 */

/*
 * A borrowed record whose memory native code frees: after the refusal
 * below, any read of it by capffi is a use after free the sanitizers and
 * valgrind report.
 */
static capffi_obj *
borrowed_then_freed(capffi_fn *mk, capffi_fn *fr, int32_t id)
{
    capffi_value a = { .i64 = id }, r = { .obj = NULL };
    assert_ok(capffi_fn_call(mk, &a, &r));
    assert_non_null(r.obj);
    assert_int_equal(get_i64(r.obj, "id"), id);
    capffi_value b = { .obj = r.obj };
    assert_ok(capffi_fn_call(fr, &b, NULL));
    return r.obj;
}

static void
obj_borrowed_result_dies_with_its_library(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *st = bind(f, "fx_rec_static", "() -> *Rec");
    capffi_fn *mk = bind(f, "fx_rec_new", "(i32) -> *Rec");
    capffi_fn *fr = bind(f, "fx_rec_free", "(*Rec) -> void");
    capffi_value r = { .obj = NULL }, v;
    assert_ok(capffi_fn_call(st, NULL, &r));
    capffi_obj *s = r.obj;
    assert_int_equal(get_i64(s, "id"), 42);
    assert_int_equal(get_i64(s, "name[0]"), 's');
    capffi_accessor acc;
    assert_ok(capffi_obj_accessor(&acc, s, "score"));
    assert_ok(capffi_obj_read(&v, s, &acc));
    assert_true(v.f64 == 4.5);
    capffi_obj *freed = borrowed_then_freed(mk, fr, 3);
    assert_int_equal(fx_rec_frees(), 1);

    capffi_lib_close(f->lib);
    assert_rc(capffi_obj_status(s), CAPFFI_ECLOSED);
    assert_rc(capffi_obj_get(&v, s, "id"), CAPFFI_ECLOSED);
    assert_rc(capffi_obj_read(&v, s, &acc), CAPFFI_ECLOSED);
    assert_rc(capffi_obj_set(s, "score", (capffi_value){ .f64 = 1 }),
              CAPFFI_ECLOSED);
    size_t n;
    assert_rc(capffi_obj_len(&n, s, "name"), CAPFFI_ECLOSED);
    assert_rc(capffi_obj_get(&v, freed, "id"), CAPFFI_ECLOSED);
    assert_rc(capffi_obj_get(&v, freed, "name[2]"), CAPFFI_ECLOSED);
    assert_rc(capffi_obj_accessor(&acc, freed, "id"), CAPFFI_ECLOSED);
    /* A borrowed instance is freed without touching native memory. */
    capffi_obj_free(freed);
    capffi_obj_free(s);
    assert_int_equal(fx_rec_frees(), 1);
}

static void
obj_borrowed_result_dies_with_its_token(void **state)
{
    struct lib_fx *f = *state;
    capffi_token t2 = mint(f->ctx, "t2", 0);
    capffi_lib *lib2;
    assert_ok(
        capffi_lib_open(&lib2, f->ctx, &t2, env_path("CAPFFI_FIXTURE"), 0));
    capffi_fn *st = bind_sym(lib2, "fx_rec_static", "() -> *Rec");
    capffi_fn *mk = bind_sym(lib2, "fx_rec_new", "(i32) -> *Rec");
    capffi_fn *fr = bind_sym(lib2, "fx_rec_free", "(*Rec) -> void");
    capffi_value r = { .obj = NULL }, v;
    assert_ok(capffi_fn_call(st, NULL, &r));
    capffi_obj *s = r.obj;
    capffi_obj *freed = borrowed_then_freed(mk, fr, 8);
    /* A *NAME field read from it lives as long. */
    capffi_obj *kept = new_obj(f, "Rec");
    capffi_fn *link = bind_sym(lib2, "fx_rec_link", "(*Rec, ?*Node) -> void");
    capffi_obj *node = new_obj(f, "Node");
    capffi_value args[2] = { { .obj = s }, { .obj = node } };
    assert_ok(capffi_fn_call(link, args, NULL));
    capffi_value nx = { .obj = NULL };
    assert_ok(capffi_obj_get(&nx, s, "next"));
    assert_non_null(nx.obj);
    args[1].obj = NULL;
    assert_ok(capffi_fn_call(link, args, NULL)); /* the static is shared */

    assert_ok(capffi_token_revoke(f->ctx, &t2));
    assert_rc(capffi_obj_get(&v, s, "id"), CAPFFI_EREVOKED);
    assert_rc(capffi_obj_status(s), CAPFFI_EREVOKED);
    assert_rc(capffi_obj_get(&v, freed, "id"), CAPFFI_EREVOKED);
    assert_rc(capffi_obj_get(&v, nx.obj, "score"), CAPFFI_EREVOKED);
    /* The host's own instances are not affected. */
    assert_ok(capffi_obj_get(&v, kept, "id"));
    assert_ok(capffi_obj_status(node));
    /* Closing a revoked library: closed wins, and still nothing is read. */
    capffi_lib_close(lib2);
    assert_rc(capffi_obj_get(&v, s, "id"), CAPFFI_ECLOSED);
    assert_rc(capffi_obj_get(&v, freed, "id"), CAPFFI_ECLOSED);
    capffi_obj_free(nx.obj);
    capffi_obj_free(freed);
    capffi_obj_free(s);
    capffi_obj_free(node);
    capffi_obj_free(kept);
    assert_int_equal(fx_rec_frees(), 1);
}

static void
obj_borrowed_result_of_fn_from_ptr_dies_with_its_token(void **state)
{
    struct lib_fx *f = *state;
    void *c_static, *c_new, *c_free;
    assert_ok(capffi_lib_symbol(&c_static, f->lib, "fx_rec_static"));
    assert_ok(capffi_lib_symbol(&c_new, f->lib, "fx_rec_new"));
    assert_ok(capffi_lib_symbol(&c_free, f->lib, "fx_rec_free"));
    capffi_token t2 = mint(f->ctx, "fnptr", 0);
    capffi_fn *st, *mk, *fr;
    assert_ok(capffi_fn_from_ptr(&st, f->ctx, &t2, c_static, "() -> *Rec", 0));
    assert_ok(capffi_fn_from_ptr(&mk, f->ctx, &t2, c_new, "(i32) -> *Rec", 0));
    assert_ok(
        capffi_fn_from_ptr(&fr, f->ctx, &t2, c_free, "(*Rec) -> void", 0));
    /* own ... by SYMBOL names a symbol of a library. */
    capffi_fn *own = NULL;
    assert_rc(capffi_fn_from_ptr(&own, f->ctx, &t2, c_new,
                                 "(i32) -> own *Rec by fx_rec_free", 0),
              CAPFFI_ESIG);
    assert_null(own);
    capffi_value r = { .obj = NULL }, v;
    assert_ok(capffi_fn_call(st, NULL, &r));
    capffi_obj *s = r.obj;
    assert_int_equal(get_i64(s, "id"), 42);
    capffi_obj *freed = borrowed_then_freed(mk, fr, 11);
    /* Closing the library the address came from does not reach it:
     * capffi does not know where a raw address lives; the token does. */
    assert_ok(capffi_token_revoke(f->ctx, &t2));
    assert_rc(capffi_obj_get(&v, s, "id"), CAPFFI_EREVOKED);
    assert_rc(capffi_obj_get(&v, freed, "score"), CAPFFI_EREVOKED);
    assert_rc(capffi_fn_call(st, NULL, &r), CAPFFI_EREVOKED);
    capffi_obj_free(freed);
    capffi_obj_free(s);
    assert_int_equal(fx_rec_frees(), 1);
}

/* ---- owned results ---------------------------------------------------------
 */

static void
obj_owned_destructor_runs_exactly_once(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *mk = bind(f, "fx_rec_new", "(i32) -> own *Rec by fx_rec_free");
    capffi_obj *o = owned_rec(f, mk, 7);
    assert_int_equal(get_i64(o, "id"), 7);
    assert_int_equal(get_i64(o, "name[3]"), '7');
    assert_int_equal(capffi_ctx_leaks(f->ctx), 1);
    assert_int_equal(fx_rec_frees(), 0);
    capffi_obj_free(o);
    assert_int_equal(fx_rec_frees(), 1);
    assert_int_equal(capffi_ctx_leaks(f->ctx), 0);
    assert_rc(capffi_obj_status(o), CAPFFI_EINVAL);
    assert_string_equal(capffi_obj_class(o), "");
    uint64_t mark = capffi_audit_mark(f->ctx);
    capffi_obj_free(o);
    assert_msg_has(f->ctx, "already freed");
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, "obj.free EINVAL");
    assert_int_equal(fx_rec_frees(), 1);
    /* Host-made and borrowed instances have no destructor. */
    capffi_obj *h = new_obj(f, "Rec");
    mark = capffi_audit_mark(f->ctx);
    capffi_obj_free(h);
    capffi_obj_free(h);
    assert_int_equal(fx_rec_frees(), 1);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, "obj.free EINVAL");
    mark = capffi_audit_mark(f->ctx);
    capffi_obj_free(NULL);
    assert_no_events(f->ctx, mark);
}

static void
obj_owned_result_nobody_takes_is_released_at_once(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *mk = bind(f, "fx_rec_new", "(i32) -> own *Rec by fx_rec_free");
    capffi_value a = { .i64 = 3 };
    assert_ok(capffi_fn_call(mk, &a, NULL));
    assert_int_equal(fx_rec_frees(), 1);
    assert_int_equal(capffi_ctx_leaks(f->ctx), 0);
    /* NULL from native code is no instance, and nothing to release. */
    capffi_value r = { .obj = (capffi_obj *)1 };
    a.i64 = -1;
    assert_ok(capffi_fn_call(mk, &a, &r));
    assert_null(r.obj);
    assert_int_equal(fx_rec_frees(), 1);
    assert_int_equal(capffi_ctx_leaks(f->ctx), 0);
    /* A destructor that is not in the library is refused at bind. */
    capffi_fn *bad = NULL;
    assert_rc(capffi_lib_bind(&bad, f->lib, "fx_rec_new",
                              "(i32) -> own *Rec by no_such_free", 0),
              CAPFFI_ENOTFOUND);
    assert_null(bad);
    assert_rc(
        capffi_lib_bind(&bad, f->lib, "fx_rec_new", "(i32) -> own *Rec", 0),
        CAPFFI_ESIG);
    assert_rc(capffi_lib_bind(&bad, f->lib, "fx_rec_new",
                              "(i32) -> own *[2]Rec by fx_rec_free", 0),
              CAPFFI_ESIG);
}

static void
obj_library_close_runs_owned_destructors(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *mk = bind(f, "fx_rec_new", "(i32) -> own *Rec by fx_rec_free");
    capffi_obj *a = owned_rec(f, mk, 1);
    capffi_obj *b = owned_rec(f, mk, 2);
    capffi_obj *c = owned_rec(f, mk, 3);
    capffi_obj_free(b);
    assert_int_equal(fx_rec_frees(), 1);
    assert_int_equal(capffi_ctx_leaks(f->ctx), 2);
    capffi_lib_close(f->lib);
    assert_int_equal(fx_rec_frees(), 3);
    assert_int_equal(capffi_ctx_leaks(f->ctx), 0);
    capffi_value v;
    assert_rc(capffi_obj_get(&v, a, "id"), CAPFFI_ECLOSED);
    assert_rc(capffi_obj_status(c), CAPFFI_ECLOSED);
    capffi_obj_free(a);
    capffi_obj_free(c);
    assert_int_equal(fx_rec_frees(), 3);
    capffi_obj_free(c);
    assert_msg_has(f->ctx, "already freed");
    capffi_ctx_free(f->ctx);
    f->ctx = NULL;
    assert_int_equal(fx_rec_frees(), 3);
}

static void
obj_revoked_owned_instance_is_released_when_the_context_is_freed(void **state)
{
    struct lib_fx *f = *state;
    capffi_token t2 = mint(f->ctx, "t2", 0);
    capffi_lib *lib2;
    assert_ok(
        capffi_lib_open(&lib2, f->ctx, &t2, env_path("CAPFFI_FIXTURE"), 0));
    capffi_fn *mk =
        bind_sym(lib2, "fx_rec_new", "(i32) -> own *Rec by fx_rec_free");
    capffi_obj *o = owned_rec(f, mk, 5);
    capffi_obj *kept = owned_rec(f, mk, 6);
    assert_ok(capffi_token_revoke(f->ctx, &t2));
    capffi_value v;
    assert_rc(capffi_obj_get(&v, o, "id"), CAPFFI_EREVOKED);
    capffi_obj_free(o);
    assert_int_equal(fx_rec_frees(), 0);
    capffi_obj_free(o);
    assert_msg_has(f->ctx, "already freed");
    capffi_lib_close(lib2);
    assert_int_equal(fx_rec_frees(), 0);
    capffi_ctx_free(f->ctx);
    f->ctx = NULL;
    assert_int_equal(fx_rec_frees(), 2);
    (void)kept;
}

/* ---- leaks --------------------------------------------------------------- */

struct leak_log {
    int events;
    char target[2][32];
    char detail[2][160];
};

static void
leak_sink(void *payload, const capffi_event *ev)
{
    struct leak_log *l = payload;
    if (ev->op != CAPFFI_OP_OBJ_LEAK)
        return;
    if (l->events < 2) {
        snprintf(l->target[l->events], sizeof l->target[0], "%s", ev->target);
        snprintf(l->detail[l->events], sizeof l->detail[0], "%s", ev->detail);
    }
    l->events++;
}

static void
obj_leaks_are_released_and_reported_per_class(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *rec = bind(f, "fx_rec_new", "(i32) -> own *Rec by fx_rec_free");
    capffi_fn *node =
        bind(f, "fx_rec_new", "(i32) -> own *Node by fx_rec_free");
    assert_int_equal(capffi_ctx_leaks(f->ctx), 0);
    capffi_obj *r1 = owned_rec(f, rec, 1);
    owned_rec(f, node, 2);
    owned_rec(f, rec, 3);
    owned_rec(f, node, 4);
    owned_rec(f, rec, 5);
    new_obj(f, "Rec"); /* the host's: freed, never a leak */
    capffi_value st;
    capffi_fn *stat = bind(f, "fx_rec_static", "() -> *Rec");
    assert_ok(capffi_fn_call(stat, NULL, &st)); /* borrowed: no leak */
    assert_int_equal(capffi_ctx_leaks(f->ctx), 5);
    capffi_obj_free(r1);
    assert_int_equal(capffi_ctx_leaks(f->ctx), 4);
    assert_int_equal(fx_rec_frees(), 1);

    struct leak_log log;
    memset(&log, 0, sizeof log);
    assert_ok(capffi_audit_set_sink(f->ctx, leak_sink, &log));
    capffi_ctx_free(f->ctx);
    f->ctx = NULL;
    assert_int_equal(fx_rec_frees(), 5);
    assert_int_equal(log.events, 2);
    /* One event per class, with its count, in either order. */
    int ri = strcmp(log.target[0], "Rec") == 0 ? 0 : 1;
    assert_string_equal(log.target[ri], "Rec");
    assert_string_equal(log.target[1 - ri], "Node");
    if (strncmp(log.detail[ri], "2 owned instances", 17) != 0 ||
        strncmp(log.detail[1 - ri], "2 owned instances", 17) != 0)
        fail_msg("leak details: '%s', '%s'", log.detail[0], log.detail[1]);
}

static void
obj_single_leak_is_reported_in_the_singular(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *rec = bind(f, "fx_rec_new", "(i32) -> own *Rec by fx_rec_free");
    owned_rec(f, rec, 1);
    struct leak_log log;
    memset(&log, 0, sizeof log);
    assert_ok(capffi_audit_set_sink(f->ctx, leak_sink, &log));
    capffi_ctx_free(f->ctx);
    f->ctx = NULL;
    assert_int_equal(log.events, 1);
    assert_string_equal(log.target[0], "Rec");
    assert_true(strncmp(log.detail[0], "1 owned instance not", 20) == 0);
    assert_int_equal(fx_rec_frees(), 1);
}

/*
 * The order of release, seen through fx_keep as the destructor: it
 * remembers the last address it was given, and fx_kept_sum(4) reads the
 * id there. The records are the test's, so nothing native leaks.
 */
static void
obj_leaks_are_released_newest_first(void **state)
{
    struct lib_fx *f = *state;
    static struct fx_rec recs[4] = {
        { 1, 0, "a", NULL },
        { 2, 0, "b", NULL },
        { 3, 0, "c", NULL },
        { 99, 0, "x", NULL },
    };
    capffi_fn *wrap = bind(f, "fx_id_ptr", "(pointer) -> own *Rec by fx_keep");
    capffi_obj *o[3];
    for (int i = 0; i < 3; i++) {
        capffi_value a = { .p = &recs[i] }, r = { .obj = NULL };
        assert_ok(capffi_fn_call(wrap, &a, &r));
        o[i] = r.obj;
        assert_int_equal(get_i64(o[i], "id"), i + 1);
    }
    fx_keep(&recs[3]);
    assert_int_equal(fx_kept_sum(4), 99);
    capffi_obj_free(o[1]);
    assert_int_equal(fx_kept_sum(4), 2);
    fx_keep(&recs[3]);
    assert_int_equal(capffi_ctx_leaks(f->ctx), 2);
    capffi_ctx_free(f->ctx);
    f->ctx = NULL;
    /* 3 was released, then 1: the oldest last; 2 not again. */
    assert_int_equal(fx_kept_sum(4), 1);
    fx_keep(NULL);
}

/* ---- out-parameters ------------------------------------------------------ */

static void
obj_out_scalar_receives_what_the_callee_stored(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *parse = bind(f, "fx_parse_i32", "(cstring, out i32) -> void");
    capffi_value out;
    memset(&out, 0xa5, sizeof out);
    capffi_value a[2] = { { .str = "-123" }, { .p = &out } };
    assert_ok(capffi_fn_call(parse, a, NULL));
    assert_int_equal(out.i64, -123);
    a[0].str = "2147483647";
    assert_ok(capffi_fn_call(parse, a, NULL));
    assert_int_equal(out.i64, INT32_MAX);
    a[1].p = NULL;
    assert_rc(capffi_fn_call(parse, a, NULL), CAPFFI_EINVAL);
    assert_msg_has(f->ctx, "argument 2");
    /* The slot is capffi's: i64 receives the i32 and nothing else. */
    capffi_fn *wide = bind(f, "fx_parse_i32", "(cstring, out u8) -> void");
    a[0].str = "258";
    a[1].p = &out;
    assert_ok(capffi_fn_call(wide, a, NULL));
    assert_int_equal(out.u64, 2);
    capffi_fn *bad = NULL;
    assert_rc(capffi_lib_bind(&bad, f->lib, "fx_parse_i32",
                              "(cstring, out cstring) -> void", 0),
              CAPFFI_ESIG);
    assert_rc(capffi_lib_bind(&bad, f->lib, "fx_parse_i32",
                              "(cstring, out ?*Rec) -> void", 0),
              CAPFFI_ESIG);
    assert_rc(
        capffi_lib_bind(&bad, f->lib, "fx_rec_static", "() -> out i32", 0),
        CAPFFI_ESIG);
}

static void
obj_out_owned_instance_like_sqlite3_open(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *open =
        bind(f, "fx_rec_open", "(i32, out own *Rec by fx_rec_free) -> i32");
    capffi_value db = { .obj = (capffi_obj *)1 }, rc;
    capffi_value a[2] = { { .i64 = 5 }, { .p = &db } };
    assert_ok(capffi_fn_call(open, a, &rc));
    assert_int_equal(rc.i64, 0);
    assert_non_null(db.obj);
    assert_string_equal(capffi_obj_class(db.obj), "Rec");
    assert_int_equal(get_i64(db.obj, "id"), 5);
    assert_int_equal(capffi_ctx_leaks(f->ctx), 1);
    capffi_obj_free(db.obj);
    assert_int_equal(fx_rec_frees(), 1);
    capffi_obj_free(db.obj);
    assert_int_equal(fx_rec_frees(), 1);
    /* NULL stored: no instance. */
    a[0].i64 = -1;
    db.obj = (capffi_obj *)1;
    assert_ok(capffi_fn_call(open, a, &rc));
    assert_int_equal(rc.i64, 1);
    assert_null(db.obj);
    assert_int_equal(capffi_ctx_leaks(f->ctx), 0);
    a[1].p = NULL;
    assert_rc(capffi_fn_call(open, a, &rc), CAPFFI_EINVAL);
    assert_int_equal(capffi_ctx_leaks(f->ctx), 0);
    /* Left to the context: released there. */
    a[0].i64 = 6;
    a[1].p = &db;
    assert_ok(capffi_fn_call(open, a, &rc));
    capffi_ctx_free(f->ctx);
    f->ctx = NULL;
    assert_int_equal(fx_rec_frees(), 2);
}

static void
obj_out_borrowed_instance(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *open = bind(f, "fx_rec_open", "(i32, out *Rec) -> i32");
    capffi_fn *fr = bind(f, "fx_rec_free", "(*Rec) -> void");
    capffi_value rec = { .obj = NULL }, rc;
    capffi_value a[2] = { { .i64 = 9 }, { .p = &rec } };
    assert_ok(capffi_fn_call(open, a, &rc));
    assert_non_null(rec.obj);
    assert_int_equal(get_i64(rec.obj, "id"), 9);
    assert_int_equal(capffi_ctx_leaks(f->ctx), 0);
    capffi_value b = { .obj = rec.obj };
    assert_ok(capffi_fn_call(fr, &b, NULL));
    assert_int_equal(fx_rec_frees(), 1);
    capffi_obj_free(rec.obj); /* borrowed: native memory not touched */
    assert_int_equal(fx_rec_frees(), 1);
}

/* ---- callbacks ------------------------------------------------------------
 */

struct rows {
    capffi_ctx *ctx;
    int calls;
    double ud_score;
    bool ud_null;
    char seen[64];
    int len_rc, bounds_rc, free_rc, id_rc;
    char free_msg[128];
};

static void
on_row(void *payload, const capffi_value *args, capffi_value *ret)
{
    struct rows *r = payload;
    r->calls++;
    ret->i64 = 0;
    if (args[0].obj) {
        capffi_value v;
        if (capffi_obj_get(&v, args[0].obj, "score") == 0)
            r->ud_score = v.f64;
        capffi_value nx;
        r->id_rc = capffi_obj_get(&nx, args[0].obj, "id");
    } else {
        r->ud_null = true;
    }
    size_t n = 0;
    r->len_rc = capffi_obj_len(&n, args[2].obj, "");
    for (size_t i = 0; i < n; i++) {
        char path[32];
        capffi_value val, name;
        snprintf(path, sizeof path, "[%zu]", i);
        if (capffi_obj_get(&val, args[2].obj, path) ||
            capffi_obj_get(&name, args[3].obj, path))
            return;
        size_t used = strlen(r->seen);
        snprintf(r->seen + used, sizeof r->seen - used, "%s=%s;", name.str,
                 val.str);
    }
    capffi_value v;
    r->bounds_rc = capffi_obj_get(&v, args[2].obj, "[2]");
    capffi_obj_free(args[2].obj);
    snprintf(r->free_msg, sizeof r->free_msg, "%s", capffi_ctx_errmsg(r->ctx));
    r->free_rc = capffi_obj_status(args[2].obj);
    capffi_obj_free(args[0].obj);
}

static void
obj_callback_gets_instances_and_counted_rows(void **state)
{
    struct lib_fx *f = *state;
    struct rows r;
    memset(&r, 0, sizeof r);
    r.ctx = f->ctx;
    capffi_cb *cb;
    assert_ok(capffi_cb_new(&cb, f->ctx, &f->tok,
                            "(?*Rec, i32, *[$1]cstring, *[$1]cstring) -> i32",
                            on_row, &r, 0));
    assert_int_equal(capffi_cb_arity(cb), 4);
    capffi_fn *rows = bind(f, "fx_rows", "(function, ?*Rec) -> i32");
    capffi_obj *ud = new_obj(f, "Rec");
    assert_ok(capffi_obj_set(ud, "score", (capffi_value){ .f64 = 1.25 }));
    capffi_value a[2] = { { .cb = cb }, { .obj = ud } }, rc;
    assert_ok(capffi_fn_call(rows, a, &rc));
    assert_int_equal(rc.i64, 0);
    assert_int_equal(r.calls, 2);
    assert_true(r.ud_score == 1.25);
    assert_false(r.ud_null);
    assert_int_equal(r.id_rc, CAPFFI_OK);
    assert_string_equal(r.seen, "id=1;name=one;id=2;name=two;");
    assert_int_equal(r.len_rc, CAPFFI_OK);
    assert_int_equal(r.bounds_rc, CAPFFI_EBOUNDS);
    /* A free of an argument is refused: it stays usable in the handler. */
    assert_int_equal(r.free_rc, CAPFFI_OK);
    if (!strstr(r.free_msg, "invocation"))
        fail_msg("free of a callback argument: '%s'", r.free_msg);
    assert_int_equal(cb_status(cb).failures, 0);
    /* The host's instance came through, unharmed. */
    assert_ok(capffi_obj_status(ud));
    /* NULL for the nullable one. */
    memset(&r, 0, sizeof r);
    r.ctx = f->ctx;
    a[1].obj = NULL;
    assert_ok(capffi_fn_call(rows, a, &rc));
    assert_true(r.ud_null);
    assert_int_equal(r.calls, 2);
    capffi_cb_close(cb);
    capffi_obj_free(ud);
}

static void
obj_callback_signatures_refuse_out_own_and_instance_results(void **state)
{
    struct lib_fx *f = *state;
    static const char *const sigs[] = {
        "(out i32) -> void",
        "(out *Rec) -> void",
        "(own *Rec by fx_rec_free) -> void",
        "(i32) -> *Rec",
        "(out own *Rec by fx_rec_free) -> i32",
    };
    struct rows r;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        capffi_cb *cb = (capffi_cb *)1;
        int rc = capffi_cb_new(&cb, f->ctx, &f->tok, sigs[i], on_row, &r, 0);
        if (rc != CAPFFI_ESIG)
            fail_msg("'%s': %s", sigs[i], capffi_err_name(rc));
        assert_null(cb);
    }
}

/* ---- safe mode ------------------------------------------------------------
 */

static void
obj_safe_mode_refuses_raw_pointers_at_bind(void **state)
{
    struct lib_fx *f = *state;
    static const struct {
        const char *sym, *sig;
    } raw[] = {
        { "fx_id_ptr", "(pointer) -> *Rec" },
        { "fx_id_ptr", "(*Rec) -> pointer" },
        { "fx_get_adder", "() -> function" },
        { "fx_keep", "({ p: pointer, n: i32 }) -> void" },
        { "fx_sum_ints", "(i32, ...: pointer) -> i32" },
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        capffi_fn *fn = NULL;
        int rc = capffi_lib_bind(&fn, f->lib, raw[i].sym, raw[i].sig, 0);
        if (rc != CAPFFI_EPERM)
            fail_msg("'%s': %s", raw[i].sig, capffi_err_name(rc));
        assert_null(fn);
        assert_msg_has(f->ctx, "class");
    }
    capffi_cb *cb = NULL;
    struct rows r;
    assert_rc(
        capffi_cb_new(&cb, f->ctx, &f->tok, "(pointer) -> i32", on_row, &r, 0),
        CAPFFI_EPERM);
    assert_msg_has(f->ctx, "class");
    assert_rc(
        capffi_cb_new(&cb, f->ctx, &f->tok, "() -> function", on_row, &r, 0),
        CAPFFI_EPERM);
    /* Classes work: typed pointers, out-parameters, callbacks with rows. */
    capffi_fn *sum = bind(f, "fx_rec_sum", "(*Rec) -> i64");
    capffi_fn *open =
        bind(f, "fx_rec_open", "(i32, out own *Rec by fx_rec_free) -> i32");
    capffi_value db = { .obj = NULL }, rc;
    capffi_value a[2] = { { .i64 = 12 }, { .p = &db } };
    assert_ok(capffi_fn_call(open, a, &rc));
    capffi_value s = { .obj = db.obj };
    assert_ok(capffi_fn_call(sum, &s, &rc));
    assert_int_equal(rc.i64, 12 + 18);
    capffi_obj_free(db.obj);
    assert_int_equal(fx_rec_frees(), 1);
    memset(&r, 0, sizeof r);
    r.ctx = f->ctx;
    assert_ok(capffi_cb_new(&cb, f->ctx, &f->tok,
                            "(?*Rec, i32, *[$1]cstring, *[$1]cstring) -> i32",
                            on_row, &r, 0));
    capffi_fn *rows = bind(f, "fx_rows", "(function, ?*Rec) -> i32");
    capffi_value ra[2] = { { .cb = cb }, { .obj = NULL } };
    assert_ok(capffi_fn_call(rows, ra, &rc));
    assert_string_equal(r.seen, "id=1;name=one;id=2;name=two;");
    capffi_cb_close(cb);
}

static void
obj_safe_mode_refuses_ptr_of_from_addr_and_views(void **state)
{
    struct lib_fx *f = *state;
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, f->ctx, 16));
    uint64_t mark = capffi_audit_mark(f->ctx);
    void *p = (void *)1;
    assert_rc(capffi_ptr_of(&p, f->ctx, &f->tok, b), CAPFFI_EPERM);
    assert_null(p);
    assert_msg_has(f->ctx, "safe mode");
    assert_rc(capffi_ptr_from_addr(&p, f->ctx, &f->tok, 0x1000), CAPFFI_EPERM);
    capffi_view *v = (capffi_view *)1;
    static char bytes[8];
    assert_rc(capffi_view_new(&v, f->ctx, &f->tok, bytes, sizeof bytes,
                              CAPFFI_VIEW_READ),
              CAPFFI_EPERM);
    assert_null(v);
    char view_refused[64];
    snprintf(view_refused, sizeof view_refused, "view.new EPERM %p+8",
             (void *)bytes);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  "ptr.of EPERM buffer of 16 bytes",
                  "ptr.from_addr EPERM 0x1000", view_refused);
    capffi_buf_free(b);
}

static void
obj_ptr_of_and_views_work_outside_safe_mode(void **state)
{
    struct lib_fx *f = *state;
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, f->ctx, 16));
    uint64_t mark = capffi_audit_mark(f->ctx);
    void *p = NULL;
    assert_ok(capffi_ptr_of(&p, f->ctx, &f->tok, b));
    assert_non_null(p);
    capffi_view *v;
    assert_ok(capffi_view_new(&v, f->ctx, &f->tok, p, 16, CAPFFI_VIEW_READ));
    capffi_view_free(v);
    char view_made[64];
    snprintf(view_made, sizeof view_made, "view.new ok %p+16", p);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  "ptr.of ok buffer of 16 bytes", view_made);
    capffi_buf_free(b);
}

/* A `pointer` field: refused in safe mode (read, write, accessor), a
 * plain address outside it; the other fields are readable either way. */
static void
pointer_field(struct lib_fx *f, bool safe)
{
    capffi_obj *n = new_obj(f, "Node");
    capffi_value v = { .p = (void *)1 };
    capffi_accessor acc;
    if (safe) {
        assert_rc(capffi_obj_get(&v, n, "next"), CAPFFI_EPERM);
        assert_msg_has(f->ctx, "*NAME");
        assert_rc(capffi_obj_set(n, "next", (capffi_value){ .p = &v }),
                  CAPFFI_EPERM);
        assert_rc(capffi_obj_accessor(&acc, n, "next"), CAPFFI_EPERM);
    } else {
        assert_ok(capffi_obj_get(&v, n, "next"));
        assert_null(v.p);
        assert_ok(capffi_obj_set(n, "next", (capffi_value){ .p = &v }));
        assert_ok(capffi_obj_get(&v, n, "next"));
        assert_ptr_equal(v.p, &v);
        assert_ok(capffi_obj_accessor(&acc, n, "next"));
    }
    assert_ok(capffi_obj_set(n, "id", (capffi_value){ .i64 = 4 }));
    assert_int_equal(get_i64(n, "id"), 4);
    capffi_obj_free(n);
}

static void
obj_pointer_fields_refused_in_safe_mode(void **state)
{
    pointer_field(*state, true);
}

static void
obj_pointer_fields_readable_outside_safe_mode(void **state)
{
    pointer_field(*state, false);
}

/* A token without POINTER, READ and WRITE puts what it makes in safe
 * mode, in a context that is not. */
static void
obj_token_without_memory_rights_is_safe_mode(void **state)
{
    struct lib_fx *f = *state;
    capffi_token t =
        mint(f->ctx, "script", CAPFFI_RIGHT_DLOPEN | CAPFFI_RIGHT_CALLBACK);
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, f->ctx, &t, env_path("CAPFFI_FIXTURE"), 0));
    capffi_fn *fn = NULL;
    assert_rc(capffi_lib_bind(&fn, lib, "fx_id_ptr", "(pointer) -> pointer", 0),
              CAPFFI_EPERM);
    assert_msg_has(f->ctx, "class");
    capffi_cb *cb = NULL;
    struct rows r;
    assert_rc(capffi_cb_new(&cb, f->ctx, &t, "(pointer) -> i32", on_row, &r, 0),
              CAPFFI_EPERM);
    capffi_obj *o = NULL;
    assert_ok(capffi_obj_new_tok(&o, f->ctx, &t, "Node"));
    capffi_value v;
    assert_rc(capffi_obj_get(&v, o, "next"), CAPFFI_EPERM);
    capffi_obj_free(o);
    /* A borrowed result of its functions is in safe mode too. */
    capffi_fn *st = bind_sym(lib, "fx_rec_static", "() -> *Node");
    assert_ok(capffi_fn_call(st, NULL, &v));
    capffi_value p;
    assert_rc(capffi_obj_get(&p, v.obj, "next"), CAPFFI_EPERM);
    assert_int_equal(get_i64(v.obj, "id"), 42);
    capffi_obj_free(v.obj);
    /* The same through the context's token. */
    st = bind(f, "fx_rec_static", "() -> *Node");
    assert_ok(capffi_fn_call(st, NULL, &v));
    assert_ok(capffi_obj_get(&p, v.obj, "next"));
    capffi_obj_free(v.obj);
}

static void
obj_call_raw_is_refused_for_instances(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *sum = bind(f, "fx_rec_sum", "(*Rec) -> i64");
    capffi_fn *st = bind(f, "fx_rec_static", "() -> *Rec");
    capffi_fn *parse = bind(f, "fx_parse_i32", "(cstring, out i32) -> void");
    struct fx_rec rec = { 1, 2.0, "r", NULL };
    void *p = &rec;
    void *args[2] = { &p, &p };
    int64_t r = -1;
    assert_rc(capffi_fn_call_raw(sum, args, &r), CAPFFI_ETYPE);
    assert_int_equal(r, -1);
    assert_msg_has(f->ctx, "capffi_fn_call");
    void *rp = NULL;
    assert_rc(capffi_fn_call_raw(st, NULL, &rp), CAPFFI_ETYPE);
    assert_null(rp);
    assert_rc(capffi_fn_call_raw(parse, args, NULL), CAPFFI_ETYPE);
    /* The raw path itself still works for raw signatures. */
    capffi_fn *raw = bind(f, "fx_rec_sum", "(pointer) -> i64");
    assert_ok(capffi_fn_call_raw(raw, args, &r));
    assert_int_equal(r, 3);
}

/* ---- nonblocking calls -------------------------------------------------- */

static void
gate_reached(int32_t n)
{
    for (int i = 0; i < WAIT_MS && fx_gate_inside() < n; i++)
        usleep(1000);
    assert_int_equal(fx_gate_inside(), n);
}

/* With one worker held at the gate, a job that passes an instance waits
 * in the queue: the instance is lent from submission to the job's end. */
static capffi_job *
hold_the_worker(struct lib_fx *f)
{
    capffi_fn *gate = bind(f, "fx_gate_wait", "(i32, i32) -> i32");
    capffi_value a[2] = { { .i64 = 1 }, { .i64 = WAIT_MS } };
    capffi_job *job;
    assert_ok(capffi_fn_call_async(&job, gate, a));
    gate_reached(1);
    return job;
}

static void
obj_async_instance_is_lent_until_the_job_ends(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *sum = bind(f, "fx_rec_sum", "(*Rec) -> i64");
    capffi_obj *r = new_obj(f, "Rec");
    assert_ok(capffi_obj_set(r, "score", (capffi_value){ .f64 = 20.0 }));
    capffi_accessor acc;
    assert_ok(capffi_obj_accessor(&acc, r, "score"));
    capffi_job *gate = hold_the_worker(f);
    capffi_value a = { .obj = r }, v;
    capffi_job *job;
    assert_ok(capffi_fn_call_async(&job, sum, &a));
    assert_rc(capffi_obj_get(&v, r, "score"), CAPFFI_EBUSY);
    assert_rc(capffi_obj_set(r, "score", (capffi_value){ .f64 = 1 }),
              CAPFFI_EBUSY);
    assert_rc(capffi_obj_read(&v, r, &acc), CAPFFI_EBUSY);
    assert_rc(capffi_obj_write(r, &acc, (capffi_value){ .f64 = 1 }),
              CAPFFI_EBUSY);
    assert_rc(capffi_obj_status(r), CAPFFI_EBUSY);
    assert_rc(capffi_fn_call(sum, &a, &v), CAPFFI_EBUSY);
    capffi_job *twice = NULL;
    assert_rc(capffi_fn_call_async(&twice, sum, &a), CAPFFI_EBUSY);
    assert_null(twice);
    fx_gate_open();
    assert_ok(capffi_job_wait(&v, gate, WAIT_MS));
    assert_int_equal(v.i64, 1);
    assert_ok(capffi_job_wait(&v, job, WAIT_MS));
    assert_int_equal(v.i64, 20);
    assert_ok(capffi_obj_get(&v, r, "score"));
    assert_true(v.f64 == 20.0);
    assert_ok(capffi_obj_write(r, &acc, (capffi_value){ .f64 = 5 }));
    capffi_job_free(job);
    capffi_job_free(gate);
    capffi_obj_free(r);
}

static void
obj_async_free_while_lent_is_deferred(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *sum = bind(f, "fx_rec_sum", "(*Rec) -> i64");
    capffi_fn *mk = bind(f, "fx_rec_new", "(i32) -> own *Rec by fx_rec_free");
    capffi_obj *h = new_obj(f, "Rec");
    assert_ok(capffi_obj_set(h, "score", (capffi_value){ .f64 = 30.0 }));
    capffi_obj *o = owned_rec(f, mk, 4);
    capffi_job *gate = hold_the_worker(f);
    capffi_value a = { .obj = h }, b = { .obj = o }, v;
    capffi_job *j1, *j2;
    assert_ok(capffi_fn_call_async(&j1, sum, &a));
    assert_ok(capffi_fn_call_async(&j2, sum, &b));
    capffi_obj_free(h); /* the job still reads its memory */
    capffi_obj_free(o); /* the destructor waits for the job */
    assert_int_equal(fx_rec_frees(), 0);
    assert_rc(capffi_obj_status(h), CAPFFI_EINVAL);
    capffi_obj_free(o);
    assert_msg_has(f->ctx, "already freed");
    fx_gate_open();
    assert_ok(capffi_job_wait(&v, gate, WAIT_MS));
    assert_ok(capffi_job_wait(&v, j1, WAIT_MS));
    assert_int_equal(v.i64, 30);
    assert_ok(capffi_job_wait(&v, j2, WAIT_MS));
    assert_int_equal(v.i64, 4 + 6);
    assert_int_equal(fx_rec_frees(), 1);
    assert_int_equal(capffi_ctx_leaks(f->ctx), 0);
    capffi_obj_free(h);
    assert_msg_has(f->ctx, "already freed");
    capffi_job_free(j1);
    capffi_job_free(j2);
    capffi_job_free(gate);
    assert_int_equal(fx_rec_frees(), 1);
}

static void
obj_async_refuses_out_params_and_instance_results(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *open =
        bind(f, "fx_rec_open", "(i32, out own *Rec by fx_rec_free) -> i32");
    capffi_fn *mk = bind(f, "fx_rec_new", "(i32) -> own *Rec by fx_rec_free");
    capffi_fn *st = bind(f, "fx_rec_static", "() -> *Rec");
    capffi_value db, a[2] = { { .i64 = 1 }, { .p = &db } };
    capffi_job *job = (capffi_job *)1;
    assert_rc(capffi_fn_call_async(&job, open, a), CAPFFI_ETYPE);
    assert_null(job);
    assert_rc(capffi_fn_call_async(&job, mk, a), CAPFFI_ETYPE);
    assert_rc(capffi_fn_call_async(&job, st, NULL), CAPFFI_ETYPE);
    assert_int_equal(fx_rec_frees(), 0);
    assert_int_equal(capffi_ctx_leaks(f->ctx), 0);
    /* A refused submission lends nothing. */
    capffi_fn *link = bind(f, "fx_rec_link", "(*Rec, *Node) -> void");
    capffi_obj *r = new_obj(f, "Rec");
    capffi_value l[2] = { { .obj = r }, { .obj = NULL } };
    assert_rc(capffi_fn_call_async(&job, link, l), CAPFFI_EINVAL);
    assert_ok(capffi_obj_status(r));
    capffi_obj_free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define S(name) cmocka_unit_test_setup_teardown(name, setup_safe, teardown)
#define W(name)                                                                \
    cmocka_unit_test_setup_teardown(name, setup_one_worker, teardown)
        T(obj_class_layout_matches_the_c_struct),
        T(obj_malformed_layouts_name_the_byte),
        T(obj_reserved_words_are_not_class_names),
        T(obj_opaque_class_has_no_fields_and_no_host_instances),
        T(obj_new_is_zeroed_and_names_its_class),
        T(obj_expression_classes_arrays_and_scalars),
        T(obj_get_and_set_by_path),
        T(obj_path_errors_have_their_codes),
        T(obj_accessor_reads_writes_and_checks_its_class),
        T(obj_class_may_point_to_itself),
        T(obj_field_holds_the_instance_it_points_to),
        T(obj_typed_param_takes_only_its_class),
        T(obj_counted_param_checks_the_count),
        T(obj_borrowed_result_dies_with_its_library),
        T(obj_borrowed_result_dies_with_its_token),
        T(obj_borrowed_result_of_fn_from_ptr_dies_with_its_token),
        T(obj_owned_destructor_runs_exactly_once),
        T(obj_owned_result_nobody_takes_is_released_at_once),
        T(obj_library_close_runs_owned_destructors),
        T(obj_revoked_owned_instance_is_released_when_the_context_is_freed),
        T(obj_leaks_are_released_and_reported_per_class),
        T(obj_single_leak_is_reported_in_the_singular),
        T(obj_leaks_are_released_newest_first),
        T(obj_out_scalar_receives_what_the_callee_stored),
        T(obj_out_owned_instance_like_sqlite3_open),
        T(obj_out_borrowed_instance),
        T(obj_callback_gets_instances_and_counted_rows),
        T(obj_callback_signatures_refuse_out_own_and_instance_results),
        S(obj_safe_mode_refuses_raw_pointers_at_bind),
        S(obj_safe_mode_refuses_ptr_of_from_addr_and_views),
        T(obj_ptr_of_and_views_work_outside_safe_mode),
        S(obj_pointer_fields_refused_in_safe_mode),
        T(obj_pointer_fields_readable_outside_safe_mode),
        T(obj_token_without_memory_rights_is_safe_mode),
        T(obj_call_raw_is_refused_for_instances),
        W(obj_async_instance_is_lent_until_the_job_ends),
        W(obj_async_free_while_lent_is_deferred),
        T(obj_async_refuses_out_params_and_instance_results),
#undef T
#undef S
#undef W
    };
    return RUN_TESTS("obj", tests);
}
