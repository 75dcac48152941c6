/*
 * test_security.c - attacks on tokens and path grants (suite: security).
 * Each case names the THREATS.md item it defends.
 */
#include "helpers.h"

#include <signal.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctx.h" /* to read the secret in the leak test */

/* ---- a replayable RNG, so two contexts can draw the same bytes ---------- */

static uint64_t rng_counter;

static void
rng_buf(void *const buf, const size_t size)
{
    unsigned char seed[randombytes_SEEDBYTES] = { 0 };
    memcpy(seed, &rng_counter, sizeof rng_counter);
    rng_counter++;
    randombytes_buf_deterministic(buf, size, seed);
}

static uint32_t
rng_random(void)
{
    uint32_t r;
    rng_buf(&r, sizeof r);
    return r;
}

static const char *
rng_name(void)
{
    return "capffi-test-replay";
}

static struct randombytes_implementation replay_rng = { rng_name, rng_random,
                                                        NULL,     NULL,
                                                        rng_buf,  NULL };

/* Independent of the library's RNG: the attacker's guesses. */
static uint64_t xs = 0x9e3779b97f4a7c15u;

static uint64_t
guess(void)
{
    xs ^= xs << 13;
    xs ^= xs >> 7;
    xs ^= xs << 17;
    return xs;
}

struct fx {
    struct scratch s;
    capffi_ctx *ctx;
    capffi_token tok;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    scratch_make(&f->s);
    f->ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    assert_ok(capffi_token_new(&f->tok, f->ctx, "real", NULL));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    capffi_ctx_free(f->ctx);
    scratch_remove(&f->s);
    free(f);
    return 0;
}

/* A token of f's context with only these rights. */
static capffi_token
with_rights(struct fx *f, const char *label, uint32_t rights)
{
    capffi_scope sc = { .rights = rights, .label = label };
    capffi_token t;
    assert_ok(capffi_token_attenuate(&t, f->ctx, &f->tok, &sc));
    return t;
}

static void
ignore_args(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    (void)args;
    (void)ret;
}

/*
 * H3 (measured): a u64 written into a buffer and read back as a pointer
 * made a pointer with no token at all. Every path that makes a pointer
 * value out of memory or out of native code's arguments needs the pointer
 * right: views, statics, callback parameters.
 */
static void
security_no_pointer_without_the_pointer_right(void **state)
{
    struct fx *f = *state;
    assert_ok(capffi_audit_record(f->ctx, 256));
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, f->ctx, 16));
    capffi_view *v;
    assert_ok(capffi_view_of_buf(&v, b, CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE));
    capffi_value x = { .u64 = 0x7fffdeadbeefULL }, out = { .u64 = 1 };
    assert_ok(capffi_view_set(v, 0, "u64", x));
    assert_rc(capffi_view_get(&out, v, 0, "pointer"), CAPFFI_EPERM);
    assert_null(out.p);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "pointer right"));
    assert_rc(capffi_view_get(&out, v, 0, "function"), CAPFFI_EPERM);
    assert_ok(capffi_view_get(&out, v, 0, "u64")); /* integers still read */
    assert_int_equal(out.u64, x.u64);
    capffi_view *sub;
    assert_ok(capffi_view_sub(&sub, v, 0, 8, CAPFFI_VIEW_READ));
    assert_rc(capffi_view_get(&out, sub, 0, "pointer"), CAPFFI_EPERM);
    capffi_view_free(sub);
    assert_int_equal(audited(f->ctx, CAPFFI_OP_VIEW_ACCESS, CAPFFI_EPERM), 3);

    /* A token with read but not pointer: the same through its views. */
    capffi_token rd = with_rights(f, "read-only", CAPFFI_RIGHT_READ);
    void *data;
    assert_ok(capffi_buf_data(&data, NULL, b));
    capffi_view *rv;
    assert_ok(capffi_view_new(&rv, f->ctx, &rd, data, 16, CAPFFI_VIEW_READ));
    assert_rc(capffi_view_get(&out, rv, 0, "pointer"), CAPFFI_EPERM);
    capffi_view_free(rv);
    assert_rc(capffi_view_of_buf_tok(&rv, f->ctx, &rd, b, CAPFFI_VIEW_READ),
              CAPFFI_EPERM);
    /* Nor may its bounded views reach beyond the memory mapped at the
     * pointer: a length to the end of the address space would be an
     * unbounded view, and offsets would reach any address. */
    assert_rc(
        capffi_view_new(&rv, f->ctx, &rd, data, SIZE_MAX / 2, CAPFFI_VIEW_READ),
        CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "beyond its mapping"));
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *two = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(two != MAP_FAILED);
    assert_ok(capffi_view_new(&rv, f->ctx, &rd, two, (size_t)page * 2,
                              CAPFFI_VIEW_READ));
    capffi_view_free(rv);
    assert_int_equal(munmap(two + page, (size_t)page), 0);
    assert_rc(capffi_view_new(&rv, f->ctx, &rd, two, (size_t)page + 1,
                              CAPFFI_VIEW_READ),
              CAPFFI_EPERM);
    assert_ok(
        capffi_view_new(&rv, f->ctx, &rd, two, (size_t)page, CAPFFI_VIEW_READ));
    capffi_view_free(rv);
    assert_int_equal(munmap(two, (size_t)page), 0);
    /* Adjacent mappings are other objects: a view never joins them, and a
     * mapping the process may not read (a guard page) is refused. */
    two = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(two != MAP_FAILED);
    assert_int_equal(mprotect(two + page, (size_t)page, PROT_NONE), 0);
    assert_rc(capffi_view_new(&rv, f->ctx, &rd, two, (size_t)page * 2,
                              CAPFFI_VIEW_READ),
              CAPFFI_EPERM);
    assert_rc(
        capffi_view_new(&rv, f->ctx, &rd, two + page, 8, CAPFFI_VIEW_READ),
        CAPFFI_EPERM);
    assert_int_equal(mprotect(two, (size_t)page, PROT_READ), 0);
    capffi_token rw =
        with_rights(f, "read-write", CAPFFI_RIGHT_READ | CAPFFI_RIGHT_WRITE);
    assert_rc(capffi_view_new(&rv, f->ctx, &rw, two, 8,
                              CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE),
              CAPFFI_EPERM); /* read-only memory is not viewed writable */
    assert_ok(capffi_view_new(&rv, f->ctx, &rw, two, 8, CAPFFI_VIEW_READ));
    capffi_view_free(rv);
    assert_int_equal(munmap(two, (size_t)page * 2), 0);
    /* With the pointer right the length is the host's word. */
    assert_ok(capffi_view_new(&rv, f->ctx, &f->tok, data, SIZE_MAX / 2,
                              CAPFFI_VIEW_READ));
    capffi_view_free(rv);

    /* With the pointer right the address reads back. */
    capffi_view *pv;
    assert_ok(
        capffi_view_of_buf_tok(&pv, f->ctx, &f->tok, b, CAPFFI_VIEW_READ));
    assert_ok(capffi_view_get(&out, pv, 0, "pointer"));
    assert_int_equal((uintptr_t)out.p, (uintptr_t)x.u64);
    capffi_view_free(pv);
    capffi_view_free(v);
    capffi_buf_free(b);

    /* Statics of pointer types: the library's token needs the right. */
    capffi_token dl = with_rights(f, "dlopen-only", CAPFFI_RIGHT_DLOPEN);
    capffi_lib *lib;
    assert_ok(
        capffi_lib_open(&lib, f->ctx, &dl, env_path("CAPFFI_FIXTURE"), 0));
    const char *ptr_types[] = { "pointer", "cstring", "function" };
    for (size_t i = 0; i < 3; i++)
        assert_rc(capffi_lib_static(&out, lib, "fx_name", ptr_types[i]),
                  CAPFFI_EPERM);
    assert_ok(capffi_lib_static(&out, lib, "fx_counter", "i32"));
    capffi_lib_close(lib);
    assert_ok(
        capffi_lib_open(&lib, f->ctx, &f->tok, env_path("CAPFFI_FIXTURE"), 0));
    assert_ok(capffi_lib_static(&out, lib, "fx_name", "cstring"));
    assert_string_equal(out.str, "fixture");
    capffi_lib_close(lib);

    /* Callback parameters that would hand the handler an address. */
    capffi_token cbt = with_rights(f, "callback-only", CAPFFI_RIGHT_CALLBACK);
    const char *sigs[] = { "(pointer) -> void", "(i32, cstring) -> void",
                           "(function) -> void", "(buffer) -> void" };
    capffi_cb *cb;
    for (size_t i = 0; i < 4; i++) {
        assert_rc(
            capffi_cb_new(&cb, f->ctx, &cbt, sigs[i], ignore_args, NULL, 0),
            CAPFFI_EPERM);
        assert_null(cb);
    }
    assert_int_equal(
        capffi_audit_count(f->ctx, CAPFFI_OP_CB_NEW, CAPFFI_EPERM, NULL), 4);
    /* Without POINTER, READ and WRITE the token is in safe mode: a raw
     * pointer result is refused too (SafeFFI). */
    assert_rc(capffi_cb_new(&cb, f->ctx, &cbt, "(i32) -> pointer", ignore_args,
                            NULL, 0),
              CAPFFI_EPERM);
    capffi_token cbr = with_rights(f, "callback-read",
                                   CAPFFI_RIGHT_CALLBACK | CAPFFI_RIGHT_READ);
    assert_ok(capffi_cb_new(&cb, f->ctx, &cbr, "(i32) -> pointer", ignore_args,
                            NULL, 0));
    capffi_cb_close(cb);
    assert_ok(capffi_cb_new(&cb, f->ctx, &f->tok, "(pointer) -> void",
                            ignore_args, NULL, 0));
    capffi_cb_close(cb);
}

/*
 * H7 (measured): an untrusted plugin defined a context-wide type name
 * first, and the trusted module's definition then failed, its binds
 * getting the plugin's layout. Names belong to principals.
 */
static void
security_type_names_belong_to_their_principal(void **state)
{
    struct fx *f = *state;
    assert_ok(capffi_audit_record(f->ctx, 256));
    capffi_token module, plugin;
    assert_ok(capffi_token_new(&module, f->ctx, "module", NULL));
    assert_ok(capffi_token_new(&plugin, f->ctx, "plugin", NULL));
    /* The host revokes FFI: the context's own names are closed. */
    capffi_perm_state st;
    assert_ok(capffi_perm_revoke(&st, f->ctx, NULL));
    assert_rc(capffi_type_define(f->ctx, "Blob", "{ u64 }"), CAPFFI_EPERM);
    assert_int_equal(
        capffi_audit_count(f->ctx, CAPFFI_OP_TYPE_DEFINE, CAPFFI_EPERM, "Blob"),
        1);
    /* The plugin takes the name first, in its own namespace. */
    assert_ok(capffi_type_define_tok(f->ctx, &plugin, "Blob", "{ u64 }"));
    assert_rc(capffi_type_define_tok(f->ctx, &plugin, "Blob", "{ u8 }"),
              CAPFFI_EINVAL);
    /* The module's definition still succeeds and keeps its meaning. */
    assert_ok(capffi_type_define_tok(f->ctx, &module, "Blob",
                                     "{ a: u64, b: u64, c: u64, d: u64, "
                                     "e: u64, f: u64, g: u64, h: u64 }"));
    size_t size;
    assert_ok(capffi_type_size_tok(&size, NULL, f->ctx, &module, "Blob"));
    assert_int_equal(size, 64);
    assert_ok(capffi_type_size_tok(&size, NULL, f->ctx, &plugin, "Blob"));
    assert_int_equal(size, 8);
    assert_rc(capffi_type_size(&size, NULL, f->ctx, "Blob"), CAPFFI_ESIG);
    size_t off;
    assert_ok(capffi_type_offset_tok(&off, f->ctx, &module, "Blob", "h"));
    assert_int_equal(off, 56);
    assert_rc(capffi_type_offset_tok(&off, f->ctx, &plugin, "Blob", "h"),
              CAPFFI_ENOTFOUND);
    capffi_field fld;
    assert_ok(capffi_type_field_tok(&fld, f->ctx, &module, "Blob", "b"));
    assert_int_equal(fld.offset, 8);
    assert_string_equal(fld.type, "u64");

    /* Binds and callbacks see their own token's names, and its
     * ancestors': a child of the module sees the module's Blob. */
    capffi_lib *lib;
    assert_ok(
        capffi_lib_open(&lib, f->ctx, &module, env_path("CAPFFI_FIXTURE"), 0));
    capffi_fn *fn;
    assert_ok(capffi_lib_bind(&fn, lib, "fx_nop", "(Blob) -> void", 0));
    size_t psize;
    capffi_fn_param_type(fn, 0, &psize);
    assert_int_equal(psize, 64);
    capffi_fn_free(fn);
    capffi_lib_close(lib);
    capffi_token child;
    assert_ok(capffi_token_attenuate(&child, f->ctx, &module, NULL));
    assert_ok(capffi_type_size_tok(&size, NULL, f->ctx, &child, "Blob"));
    assert_int_equal(size, 64);
    capffi_cb *cb;
    assert_ok(capffi_cb_new(&cb, f->ctx, &plugin, "(Blob) -> void", ignore_args,
                            NULL, 0));
    assert_int_equal(capffi_cb_arity(cb), 1);
    capffi_cb_param_type(cb, 0, &psize);
    assert_int_equal(psize, 8);
    capffi_cb_close(cb);
}

/* T1: none of 10^5 forged tokens verifies. */
static void
security_forged_tokens_never_verify(void **state)
{
    struct fx *f = *state;
    size_t tried = 0, accepted = 0;
    capffi_token t;
    /* Random ids and tags. */
    for (int i = 0; i < 60000; i++, tried++) {
        t.id = guess();
        uint64_t g[2] = { guess(), guess() };
        memcpy(t.tag, g, 16);
        accepted += capffi_token_check(f->ctx, &t, 0, NULL) != CAPFFI_ETOKEN;
    }
    /* Sequential ids around the real one and from 0, with the real tag
     * and with a zero tag. */
    for (uint64_t k = 0; k < 20000; k++) {
        t = f->tok;
        t.id = f->tok.id + k + 1;
        accepted += capffi_token_check(f->ctx, &t, 0, NULL) != CAPFFI_ETOKEN;
        t.id = f->tok.id - k - 1;
        accepted += capffi_token_check(f->ctx, &t, 0, NULL) != CAPFFI_ETOKEN;
        memset(&t, 0, sizeof t);
        t.id = k;
        accepted += capffi_token_check(f->ctx, &t, 0, NULL) != CAPFFI_ETOKEN;
        tried += 3;
    }
    /* The real id with every single bit of the tag flipped, and with
     * random tags. */
    for (int bit = 0; bit < 128; bit++, tried++) {
        t = f->tok;
        t.tag[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        accepted += capffi_token_check(f->ctx, &t, 0, NULL) != CAPFFI_ETOKEN;
    }
    for (int i = 0; i < 1000; i++, tried++) {
        t = f->tok;
        uint64_t g[2] = { guess(), guess() };
        memcpy(t.tag, g, 16);
        accepted += capffi_token_check(f->ctx, &t, 0, NULL) != CAPFFI_ETOKEN;
    }
    /* A forged token with a path learns nothing about the path. */
    t = f->tok;
    t.tag[7] ^= 4;
    assert_rc(capffi_token_check(f->ctx, &t, CAPFFI_RIGHT_DLOPEN,
                                 "/nonexistent/secret/lib.so"),
              CAPFFI_ETOKEN);
    /* The all-zero token. */
    memset(&t, 0, sizeof t);
    accepted += capffi_token_check(f->ctx, &t, 0, NULL) != CAPFFI_ETOKEN;
    tried++;
    assert_true(tried >= 100000);
    assert_int_equal(accepted, 0);
    /* The real token still works, and forgeries are audited as such. */
    assert_ok(capffi_token_check(f->ctx, &f->tok, 0, NULL));
    assert_ok(capffi_audit_record(f->ctx, 8));
    t = f->tok;
    t.tag[15] ^= 0x80;
    assert_rc(capffi_token_check(f->ctx, &t, 0, NULL), CAPFFI_ETOKEN);
    capffi_event ev;
    assert_ok(capffi_audit_get(&ev, f->ctx, 0));
    assert_int_equal(ev.reason, CAPFFI_REASON_FORGED);
    assert_int_equal(ev.status, CAPFFI_ETOKEN);
}

/* T2: a token of context A is refused in B, reported as foreign. */
static void
security_token_is_bound_to_its_context(void **state)
{
    struct fx *f = *state;
    capffi_ctx *b = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token tb;
    assert_ok(capffi_token_new(&tb, b, "b", NULL));
    assert_ok(capffi_audit_record(b, 8));
    assert_rc(capffi_token_check(b, &f->tok, 0, NULL), CAPFFI_ETOKEN);
    assert_non_null(strstr(capffi_ctx_errmsg(b), "another context"));
    capffi_event ev;
    assert_ok(capffi_audit_get(&ev, b, 0));
    assert_int_equal(ev.reason, CAPFFI_REASON_FOREIGN);
    assert_rc(capffi_token_check(f->ctx, &tb, 0, NULL), CAPFFI_ETOKEN);
    assert_rc(capffi_token_revoke(b, &f->tok), CAPFFI_ETOKEN);
    capffi_token x;
    assert_rc(capffi_token_attenuate(&x, b, &f->tok, NULL), CAPFFI_ETOKEN);
    assert_ok(capffi_token_check(f->ctx, &f->tok, 0, NULL));
    capffi_ctx_free(b);
}

/* T2: even when two contexts draw identical random bytes (same secret,
 * same token id), a token of one is refused by the other. */
static void
security_same_id_in_two_contexts(void **state)
{
    (void)state;
    rng_counter = 1000;
    capffi_ctx *a = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token ta;
    assert_ok(capffi_token_new(&ta, a, "same", NULL));
    rng_counter = 1000;
    capffi_ctx *b = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token tb;
    assert_ok(capffi_token_new(&tb, b, "same", NULL));
    assert_true(ta.id == tb.id); /* the RNG really did repeat */
    assert_memory_not_equal(ta.tag, tb.tag, 16);
    assert_rc(capffi_token_check(b, &ta, 0, NULL), CAPFFI_ETOKEN);
    assert_rc(capffi_token_check(a, &tb, 0, NULL), CAPFFI_ETOKEN);
    assert_ok(capffi_token_check(a, &ta, 0, NULL));
    assert_ok(capffi_token_check(b, &tb, 0, NULL));
    capffi_ctx_free(a);
    /* A's token, A gone: still refused by B, now as forged. */
    assert_ok(capffi_audit_record(b, 8));
    assert_rc(capffi_token_check(b, &ta, 0, NULL), CAPFFI_ETOKEN);
    capffi_event ev;
    assert_ok(capffi_audit_get(&ev, b, 0));
    assert_int_equal(ev.reason, CAPFFI_REASON_FORGED);
    assert_ok(capffi_token_check(b, &tb, 0, NULL));
    capffi_ctx_free(b);
}

/* T3: stale tokens. */
static void
security_stale_tokens_are_refused(void **state)
{
    struct fx *f = *state;
    capffi_scope sc;
    capffi_token once, brief, gone;
    memset(&sc, 0, sizeof sc);
    sc.max_uses = 1;
    assert_ok(capffi_token_attenuate(&once, f->ctx, &f->tok, &sc));
    assert_ok(capffi_token_check(f->ctx, &once, 0, NULL));
    assert_rc(capffi_token_check(f->ctx, &once, 0, NULL), CAPFFI_EREVOKED);
    memset(&sc, 0, sizeof sc);
    sc.ttl_ms = 1;
    assert_ok(capffi_token_attenuate(&brief, f->ctx, &f->tok, &sc));
    usleep(5000);
    assert_rc(capffi_token_check(f->ctx, &brief, 0, NULL), CAPFFI_EREVOKED);
    assert_ok(capffi_token_attenuate(&gone, f->ctx, &f->tok, NULL));
    assert_ok(capffi_token_revoke(f->ctx, &gone));
    assert_rc(capffi_token_check(f->ctx, &gone, 0, NULL), CAPFFI_EREVOKED);
    /* A token of a context that has been freed. */
    capffi_ctx *other = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token dead;
    assert_ok(capffi_token_new(&dead, other, "dead", NULL));
    capffi_ctx_free(other);
    assert_rc(capffi_token_check(f->ctx, &dead, 0, NULL), CAPFFI_ETOKEN);
}

/* T4: a child never does more than its parent, nor outlives it. */
static void
security_children_never_widen_or_outlive(void **state)
{
    struct fx *f = *state;
    capffi_scope sc;
    capffi_token narrow, child, grandchild;
    memset(&sc, 0, sizeof sc);
    sc.rights = CAPFFI_RIGHT_READ;
    assert_ok(capffi_token_attenuate(&narrow, f->ctx, &f->tok, &sc));
    for (uint32_t r = 1; r <= CAPFFI_RIGHTS_ALL; r++) {
        sc.rights = r;
        int rc = capffi_token_attenuate(&child, f->ctx, &narrow, &sc);
        assert_int_equal(rc, r == CAPFFI_RIGHT_READ ? 0 : CAPFFI_EPERM);
    }
    memset(&sc, 0, sizeof sc);
    assert_ok(capffi_token_attenuate(&child, f->ctx, &narrow, &sc));
    assert_ok(capffi_token_attenuate(&grandchild, f->ctx, &child, &sc));
    assert_ok(capffi_token_revoke(f->ctx, &narrow));
    assert_rc(capffi_token_check(f->ctx, &grandchild, CAPFFI_RIGHT_READ, NULL),
              CAPFFI_EREVOKED);
    capffi_token again;
    assert_rc(capffi_token_attenuate(&again, f->ctx, &grandchild, NULL),
              CAPFFI_EREVOKED);
}

/* T5: every public function that takes a token refuses a forged one and
 * (where it uses the token) a revoked one. Later modules add rows. */
struct row {
    const char *name;
    int (*call)(capffi_ctx *ctx, const capffi_token *t);
    int on_revoked;
};

static int
call_check(capffi_ctx *ctx, const capffi_token *t)
{
    return capffi_token_check(ctx, t, 0, NULL);
}

static int
call_attenuate(capffi_ctx *ctx, const capffi_token *t)
{
    capffi_token out;
    return capffi_token_attenuate(&out, ctx, t, NULL);
}

static int
call_revoke(capffi_ctx *ctx, const capffi_token *t)
{
    return capffi_token_revoke(ctx, t);
}

static int
call_info(capffi_ctx *ctx, const capffi_token *t)
{
    capffi_token_desc d;
    return capffi_token_info(&d, ctx, t);
}

static int
call_lib_open(capffi_ctx *ctx, const capffi_token *t)
{
    capffi_lib *lib = NULL;
    int rc = capffi_lib_open(&lib, ctx, t, "libz.so.1", 0);
    capffi_lib_close(lib);
    return rc;
}

static int
call_lib_open_process(capffi_ctx *ctx, const capffi_token *t)
{
    capffi_lib *lib = NULL;
    int rc = capffi_lib_open(&lib, ctx, t, NULL, 0);
    capffi_lib_close(lib);
    return rc;
}

static void
any_code(void)
{
}

static int
call_fn_from_ptr(capffi_ctx *ctx, const capffi_token *t)
{
    void (*fp)(void) = any_code;
    void *code;
    memcpy(&code, &fp, sizeof code);
    capffi_fn *fn = NULL;
    int rc = capffi_fn_from_ptr(&fn, ctx, t, code, "() -> void", 0);
    capffi_fn_free(fn);
    return rc;
}

static int
call_ptr_of(capffi_ctx *ctx, const capffi_token *t)
{
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, ctx, 8));
    void *p = NULL;
    int rc = capffi_ptr_of(&p, ctx, t, b);
    if (!rc)
        assert_ok(capffi_buf_unpin(b));
    capffi_buf_free(b);
    return rc;
}

static int
call_ptr_from_addr(capffi_ctx *ctx, const capffi_token *t)
{
    void *p;
    return capffi_ptr_from_addr(&p, ctx, t, 0x1000);
}

static int
call_view_new(capffi_ctx *ctx, const capffi_token *t)
{
    static char mem[8];
    capffi_view *v = NULL;
    int rc = capffi_view_new(&v, ctx, t, mem, sizeof mem, CAPFFI_VIEW_READ);
    capffi_view_free(v);
    return rc;
}

static int
call_view_of_buf_tok(capffi_ctx *ctx, const capffi_token *t)
{
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, ctx, 8));
    capffi_view *v = NULL;
    int rc = capffi_view_of_buf_tok(&v, ctx, t, b, CAPFFI_VIEW_READ);
    capffi_view_free(v);
    capffi_buf_free(b);
    return rc;
}

static int
call_type_define_tok(capffi_ctx *ctx, const capffi_token *t)
{
    static unsigned n;
    char name[32];
    snprintf(name, sizeof name, "T5_%u", n++);
    return capffi_type_define_tok(ctx, t, name, "{ i32 }");
}

static int
call_type_size_tok(capffi_ctx *ctx, const capffi_token *t)
{
    size_t size;
    return capffi_type_size_tok(&size, NULL, ctx, t, "i32");
}

static int
call_type_offset_tok(capffi_ctx *ctx, const capffi_token *t)
{
    size_t off;
    return capffi_type_offset_tok(&off, ctx, t, "{ a: u8, b: u32 }", "b");
}

static void
no_op_handler(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    (void)args;
    (void)ret;
}

static int
call_cb_new(capffi_ctx *ctx, const capffi_token *t)
{
    capffi_cb *cb = NULL;
    int rc = capffi_cb_new(&cb, ctx, t, "() -> void", no_op_handler, NULL, 0);
    capffi_cb_close(cb);
    return rc;
}

static void
security_every_token_taking_function_verifies(void **state)
{
    struct fx *f = *state;
    static const struct row rows[] = {
        { "capffi_token_check", call_check, CAPFFI_EREVOKED },
        { "capffi_token_attenuate", call_attenuate, CAPFFI_EREVOKED },
        { "capffi_token_revoke", call_revoke, CAPFFI_OK }, /* idempotent */
        { "capffi_token_info", call_info, CAPFFI_OK },     /* diagnostics */
        { "capffi_lib_open", call_lib_open, CAPFFI_EREVOKED },
        { "capffi_lib_open(NULL)", call_lib_open_process, CAPFFI_EREVOKED },
        { "capffi_fn_from_ptr", call_fn_from_ptr, CAPFFI_EREVOKED },
        { "capffi_ptr_of", call_ptr_of, CAPFFI_EREVOKED },
        { "capffi_ptr_from_addr", call_ptr_from_addr, CAPFFI_EREVOKED },
        { "capffi_view_new", call_view_new, CAPFFI_EREVOKED },
        { "capffi_cb_new", call_cb_new, CAPFFI_EREVOKED },
        { "capffi_view_of_buf_tok", call_view_of_buf_tok, CAPFFI_EREVOKED },
        { "capffi_type_define_tok", call_type_define_tok, CAPFFI_EREVOKED },
        { "capffi_type_size_tok", call_type_size_tok, CAPFFI_EREVOKED },
        { "capffi_type_offset_tok", call_type_offset_tok, CAPFFI_EREVOKED },
    };
    capffi_token revoked;
    assert_ok(capffi_token_attenuate(&revoked, f->ctx, &f->tok, NULL));
    assert_ok(capffi_token_revoke(f->ctx, &revoked));
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        capffi_token forged = f->tok;
        forged.tag[3] ^= 0x10;
        int rc = rows[i].call(f->ctx, &forged);
        if (rc != CAPFFI_ETOKEN)
            fail_msg("%s accepted a forged token (%s)", rows[i].name,
                     capffi_err_name(rc));
        rc = rows[i].call(f->ctx, &revoked);
        if (rc != rows[i].on_revoked)
            fail_msg("%s on a revoked token: %s", rows[i].name,
                     capffi_err_name(rc));
        rc = rows[i].call(f->ctx, NULL);
        if (rc != CAPFFI_EINVAL)
            fail_msg("%s accepted a NULL token", rows[i].name);
    }
    /* ...and each works with the genuine token, so no row passes by
     * failing for another reason. */
    assert_ok(call_lib_open(f->ctx, &f->tok));
    assert_ok(call_lib_open_process(f->ctx, &f->tok));
    assert_ok(call_fn_from_ptr(f->ctx, &f->tok));
    assert_ok(call_ptr_of(f->ctx, &f->tok));
    assert_ok(call_ptr_from_addr(f->ctx, &f->tok));
    assert_ok(call_view_new(f->ctx, &f->tok));
    assert_ok(call_cb_new(f->ctx, &f->tok));
    assert_ok(call_check(f->ctx, &f->tok));
    assert_ok(call_attenuate(f->ctx, &f->tok));
    assert_ok(call_info(f->ctx, &f->tok));
}

/* T6: no message or event ever holds a tag or the secret. */
struct capture {
    char text[1 << 16];
    size_t len;
};

static void
capture_sink(void *payload, const capffi_event *ev)
{
    struct capture *c = payload;
    size_t n =
        capffi_audit_format_json(c->text + c->len, sizeof c->text - c->len, ev);
    c->len += n < sizeof c->text - c->len ? n : 0;
}

static void
append(struct capture *c, const char *s)
{
    size_t n = strlen(s);
    if (c->len + n < sizeof c->text) {
        memcpy(c->text + c->len, s, n);
        c->len += n;
    }
}

static bool
contains_bytes(const struct capture *c, const uint8_t *b, size_t n)
{
    char hex[2 * 32 + 1];
    sodium_bin2hex(hex, sizeof hex, b, n);
    for (size_t i = 0; i + n <= c->len; i++)
        if (memcmp(c->text + i, b, n) == 0)
            return true;
    /* Hex in either case, and any 8-byte window of it. */
    for (size_t w = 0; w + 16 <= 2 * n; w += 2)
        for (size_t i = 0; i + 16 <= c->len; i++)
            if (strncasecmp(c->text + i, hex + w, 16) == 0)
                return true;
    return false;
}

static void
security_tags_and_secret_never_leak(void **state)
{
    struct fx *f = *state;
    static struct capture cap;
    memset(&cap, 0, sizeof cap);
    assert_ok(capffi_audit_set_sink(f->ctx, capture_sink, &cap));
    capffi_token child, bad;
    capffi_scope sc;
    memset(&sc, 0, sizeof sc);
    sc.rights = CAPFFI_RIGHT_READ;
    assert_ok(capffi_token_attenuate(&child, f->ctx, &f->tok, &sc));
    append(&cap, capffi_ctx_errmsg(f->ctx));
    bad = child;
    bad.tag[0] ^= 1;
    assert_rc(capffi_token_check(f->ctx, &bad, 0, NULL), CAPFFI_ETOKEN);
    append(&cap, capffi_ctx_errmsg(f->ctx));
    assert_rc(capffi_token_check(f->ctx, &child, CAPFFI_RIGHT_WRITE, f->s.a),
              CAPFFI_EPERM);
    append(&cap, capffi_ctx_errmsg(f->ctx));
    assert_ok(capffi_token_revoke(f->ctx, &child));
    assert_rc(capffi_token_check(f->ctx, &child, 0, NULL), CAPFFI_EREVOKED);
    append(&cap, capffi_ctx_errmsg(f->ctx));
    capffi_ctx *other = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    assert_rc(capffi_token_check(other, &f->tok, 0, NULL), CAPFFI_ETOKEN);
    append(&cap, capffi_ctx_errmsg(other));
    capffi_ctx_free(other);
    capffi_audit_set_sink(f->ctx, NULL, NULL);
    assert_true(cap.len > 200); /* the events really were captured */

    assert_false(contains_bytes(&cap, f->tok.tag, 16));
    assert_false(contains_bytes(&cap, child.tag, 16));
    assert_false(contains_bytes(&cap, bad.tag, 16));
    uint8_t secret[crypto_generichash_KEYBYTES];
    sodium_mprotect_readonly(capffi__tok_of(f->ctx)->secret);
    memcpy(secret, capffi__tok_of(f->ctx)->secret, sizeof secret);
    sodium_mprotect_noaccess(capffi__tok_of(f->ctx)->secret);
    assert_false(contains_bytes(&cap, secret, sizeof secret));
    sodium_memzero(secret, sizeof secret);
}

/* T6: the secret is unreadable at rest (a stray read faults). */
static void
security_secret_is_no_access_at_rest(void **state)
{
    struct fx *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* cmocka traps SIGSEGV; the child wants the default: to die. */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        volatile unsigned char c = capffi__tok_of(f->ctx)->secret[0];
        (void)c;
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_true(WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS);
}

/* T8: after fork the child has a copy; revocation does not cross. */
static void
security_fork_copies_contexts(void **state)
{
    struct fx *f = *state;
    capffi_token c;
    assert_ok(capffi_token_attenuate(&c, f->ctx, &f->tok, NULL));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int ok = capffi_token_check(f->ctx, &c, 0, NULL) == 0 &&
                 capffi_token_revoke(f->ctx, &f->tok) == 0 &&
                 capffi_token_check(f->ctx, &c, 0, NULL) == CAPFFI_EREVOKED;
        _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_ok(capffi_token_check(f->ctx, &c, 0, NULL));
}

/* L4, L7, L8 at the token level. */
static void
security_token_paths_by_identity(void **state)
{
    struct fx *f = *state;
    const char *deny[] = { f->s.a, NULL };
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, deny);
    capffi_token t;
    assert_ok(capffi_token_new(&t, ctx, "all", NULL));
    char spelled[PATH_MAX];
    pathf(spelled, "%s/./other/../lib//a.so", f->s.dir);
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, spelled),
              CAPFFI_EPERM);
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, f->s.link_a),
              CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "denied"));
    assert_ok(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, f->s.b));
    /* Pseudo file systems: not covered by "all". */
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, "/dev/zero"),
              CAPFFI_EPERM);
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, "/proc/cpuinfo"),
              CAPFFI_EPERM);
    /* A memfd reached through /proc/self/fd names no file. */
    int mfd = memfd_create("lib", 0);
    assert_true(mfd >= 0);
    char fdpath[64];
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", mfd);
    assert_true(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, fdpath) != 0);
    close(mfd);
    /* A file swapped in under the granted name is another file. */
    const char *only_b[] = { f->s.b, NULL };
    capffi_ctx *narrow = ctx_with(0, only_b, NULL);
    capffi_token nb;
    assert_ok(capffi_token_new(&nb, narrow, "b", NULL));
    assert_int_equal(unlink(f->s.b), 0);
    assert_int_equal(symlink(f->s.c, f->s.b), 0);
    assert_rc(capffi_token_check(narrow, &nb, CAPFFI_RIGHT_DLOPEN, f->s.b),
              CAPFFI_EPERM);
    capffi_ctx_free(narrow);
    capffi_ctx_free(ctx);
}

int
main(void)
{
    /* Must precede sodium_init, which capffi_ctx_new calls. */
    randombytes_set_implementation(&replay_rng);
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(security_no_pointer_without_the_pointer_right),
        T(security_type_names_belong_to_their_principal),
        T(security_forged_tokens_never_verify),
        T(security_token_is_bound_to_its_context),
        T(security_same_id_in_two_contexts),
        T(security_stale_tokens_are_refused),
        T(security_children_never_widen_or_outlive),
        T(security_every_token_taking_function_verifies),
        T(security_tags_and_secret_never_leak),
        T(security_secret_is_no_access_at_rest),
        T(security_fork_copies_contexts),
        T(security_token_paths_by_identity),
#undef T
    };
    return RUN_TESTS("security", tests);
}
